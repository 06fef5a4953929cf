/* awsconf: where an AWS client finds its settings, as the AWS SDKs do.
 *
 * The first piece of the AWS client (issue 8): credentials, region and
 * endpoint resolution from the environment and the shared files, with no
 * network.  Signing and sending (libcurl's CURLOPT_AWS_SIGV4) and the
 * credential sources that need a server (web identity, container, IMDSv2,
 * AssumeRole) build on it.
 *
 * Files: the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, else
 * ~/.aws/credentials; sections "[name]") and the config file
 * (AWS_CONFIG_FILE, else ~/.aws/config; sections "[default]",
 * "[profile name]", "[services name]").  The profile is AWS_PROFILE, else
 * "default".  Lines are "key = value"; a line starting with whitespace
 * after "key =" with no value is a sub-section ("dynamodb =" then
 * "  endpoint_url = ..."), as the SDKs read them; '#' and ';' start
 * comments.
 *
 * Secrets are never logged: error texts name files and keys, not values.
 * Every call reads the files afresh (callers cache what they resolve). */
#ifndef IOTRULES_AWSCONF_H
#define IOTRULES_AWSCONF_H

#include <stddef.h>
#include <stdint.h>

typedef struct awsconf_creds {
	char access_key[128];
	char secret_key[128];
	char session_token[4096];   /* "" when none */
	int64_t expires_ms;         /* 0: does not expire */
	char source[64];            /* "environment", "profile dev", "credential_process" */
} awsconf_creds;

/* Fills c from, in order: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY
 * (+ AWS_SESSION_TOKEN); the profile in the shared credentials file; the
 * profile in the config file; the profile's credential_process (its JSON
 * output: Version 1, AccessKeyId, SecretAccessKey, SessionToken,
 * Expiration).  0 found; 1 none of these has credentials (the caller tries
 * the sources that need a server); -1 a source is broken (err says which
 * file or command and why, e.g. a key without its secret, a
 * credential_process that failed or printed no valid JSON). */
int awsconf_creds_resolve(awsconf_creds *c, char *err, size_t errcap);

/* The region: AWS_REGION, AWS_DEFAULT_REGION, the profile's "region".
 * 0 with out set, 1 when none is configured. */
int awsconf_region(char *out, size_t cap);

/* The endpoint for a service, named as the SDKs name it in
 * AWS_ENDPOINT_URL_<SERVICE> ("DYNAMODB", "KINESIS", "S3", ...): that
 * variable; AWS_ENDPOINT_URL; the profile's services section entry
 * (config key: the service name lower case, e.g. "dynamodb"); the
 * profile's endpoint_url.  None of these when
 * AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is "true".  0 with out set (used
 * exactly as given), 1 when none: the caller builds AWS's own host name. */
int awsconf_endpoint(const char *service, char *out, size_t cap);

/* The value of key in the profile's section of the config file.  0
 * found, 1 not. */
int awsconf_profile_value(const char *key, char *out, size_t cap);

/* The same for a named profile ("default", "dev"), e.g. a role profile's
 * source_profile. */
int awsconf_profile_get(const char *profile, const char *key, char *out, size_t cap);

/* The static credentials of a named profile: its section of the shared
 * credentials file, then of the config file, then its
 * credential_process; no environment.  Returns as awsconf_creds_resolve
 * (source "profile NAME" or "credential_process").  For a role profile's
 * source_profile. */
int awsconf_profile_creds(const char *profile, awsconf_creds *c, char *err, size_t errcap);

/* Parses an ISO 8601 UTC time ("2026-12-01T20:00:00Z", fractions and
 * "+00:00" accepted) into ms since the epoch; -1 if malformed. */
int64_t awsconf_parse_time(const char *s);

#endif
