/* awscreds: the AWS client's credentials, kept fresh (issue 8).
 *
 * The chain, in the SDKs' order, is walked once at open and the first
 * source that answers is the client's for its life:
 *
 *   1. the environment (AWS_ACCESS_KEY_ID, ...: awsconf);
 *   2. the profile (AWS_PROFILE): role_arn with source_profile or
 *      credential_source (Environment, Ec2InstanceMetadata, EcsContainer)
 *      → STS AssumeRole; role_arn with web_identity_token_file → STS
 *      AssumeRoleWithWebIdentity; else its static keys or
 *      credential_process (awsconf);
 *   3. web identity: AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE
 *      (+ AWS_ROLE_SESSION_NAME) → STS AssumeRoleWithWebIdentity;
 *   4. container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (on
 *      http://169.254.170.2) or AWS_CONTAINER_CREDENTIALS_FULL_URI, with
 *      AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE or
 *      AWS_CONTAINER_AUTHORIZATION_TOKEN as the Authorization header;
 *   5. EC2 IMDSv2 (unless AWS_EC2_METADATA_DISABLED=true) on
 *      AWS_EC2_METADATA_SERVICE_ENDPOINT, else http://169.254.169.254.
 *
 * STS is awsconf_endpoint("STS"), else https://sts.{region}.amazonaws.com.
 * Besides the chain's own credentials ("base"), the credentials of roles
 * assumed for actions (awscreds_get with a role ARN: STS AssumeRole signed
 * with the base credentials) are cached per role.
 *
 * Temporary credentials are refreshed by a thread of awscreds' own, with
 * blocking requests on their own curl handles and short timeouts (1 s to
 * connect to IMDS, 2 s elsewhere), so nobody else waits on a credential
 * server: 5 minutes before they expire, or at half their lifetime when
 * that is shorter; and at once after awscreds_expired.  A failed refresh
 * keeps the old credentials while they last and is retried after 1 s,
 * then less often (up to 30 s).
 *
 * Secrets (keys, tokens, web identity tokens) are never logged nor put in
 * error texts. */
#ifndef IOTRULES_AWSCREDS_H
#define IOTRULES_AWSCREDS_H

#include <stddef.h>
#include <stdint.h>

#include "common/awsconf.h"

typedef struct awscreds awscreds;

/* Called on awscreds' thread when a fetch ended (credentials available,
 * or a failure): a waiter should call awscreds_get again.  Must not block
 * nor call back into awscreds. */
typedef void (*awscreds_notify_fn)(void *arg);

/* Walks the chain and fetches the first credentials (blocking, a few
 * seconds at most), then starts the refresh thread.  region signs STS;
 * ca_file (or NULL) verifies HTTPS credential servers.  NULL with err set
 * when no source has credentials or the one configured is broken (err
 * names the variable, file or endpoint, never a secret). */
awscreds *awscreds_open(const char *region, const char *ca_file, awscreds_notify_fn notify, void *arg,
    char *err, size_t errcap);

/* Stops the thread and frees everything.  No notify after it returns. */
void awscreds_close(awscreds *cr);

/* The chain's source: "environment", "profile dev", "credential_process",
 * "assume role (profile dev)", "web identity", "container", "imds". */
const char *awscreds_source(const awscreds *cr);

/* Current credentials of the chain (role_arn NULL or "") or of role_arn
 * (assumed with the chain's).  0: *out filled, *gen identifies this set
 * (for awscreds_expired); 1: being fetched, notify will be called; -1:
 * the last fetch failed less than a second ago (err says why). */
int awscreds_get(awscreds *cr, const char *role_arn, awsconf_creds *out, uint64_t *gen, char *err,
    size_t errcap);

/* A service answered that the set gen of role_arn's credentials has
 * expired: they are dropped and fetched again at once (once per set, not
 * once per answer). */
void awscreds_expired(awscreds *cr, const char *role_arn, uint64_t gen);

/* When to refresh credentials fetched at now_ms that expire at expires_ms
 * (0: never → 0): 5 minutes before, or at half-life if sooner. */
int64_t awscreds_refresh_at(int64_t now_ms, int64_t expires_ms);

/* Parses an STS reply (AssumeRole or AssumeRoleWithWebIdentity XML):
 * Credentials/AccessKeyId, SecretAccessKey, SessionToken, Expiration.  0,
 * or -1 with err set (the service's error code and message when it is an
 * error reply). */
int awscreds_parse_sts(const char *xml, awsconf_creds *c, char *err, size_t errcap);

/* Parses a container or IMDS credentials document (JSON: AccessKeyId,
 * SecretAccessKey, Token, Expiration; IMDS's Code must be "Success" when
 * present).  0, or -1 with err set. */
int awscreds_parse_json(const char *json, awsconf_creds *c, char *err, size_t errcap);

#endif
