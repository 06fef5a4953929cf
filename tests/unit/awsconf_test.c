/* Unit tests of awsconf: credentials, region and endpoints from the
 * environment and the shared files, in the order the AWS SDKs use. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/awsconf.h"
#include "tests/unit/tap.h"

static char dir[] = "/tmp/iotrules-awsconf-XXXXXX";
static char cred_path[256], conf_path[256];

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
}

static void
clear_env(void)
{
	const char *vars[] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
	    "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB",
	    "AWS_ENDPOINT_URL_KINESIS", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", NULL};
	for (int i = 0; vars[i]; i++)
		unsetenv(vars[i]);
}

int
main(void)
{
	char err[512], out[512];
	awsconf_creds c;
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(cred_path, sizeof(cred_path), "%s/credentials", dir);
	snprintf(conf_path, sizeof(conf_path), "%s/config", dir);
	clear_env();
	setenv("HOME", dir, 1);   /* no ~/.aws there */
	setenv("AWS_SHARED_CREDENTIALS_FILE", cred_path, 1);
	setenv("AWS_CONFIG_FILE", conf_path, 1);

	ok(awsconf_creds_resolve(&c, err, sizeof(err)) == 1, "no credentials anywhere: 1 (try the server sources)");
	ok(awsconf_region(out, sizeof(out)) == 1, "no region anywhere: 1");
	ok(awsconf_endpoint("DYNAMODB", out, sizeof(out)) == 1, "no endpoint anywhere: 1 (AWS's own host)");

	write_file(cred_path,
	    "# comment\n[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = secretdefault\n\n"
	    "[dev]\naws_access_key_id=AKIDDEV\naws_secret_access_key=secretdev\naws_session_token = tokdev\n"
	    "[broken]\naws_access_key_id = AKIDBROKEN\n");
	write_file(conf_path,
	    "[default]\nregion = eu-west-1\n\n"
	    "[profile dev]\nregion = us-east-2\nservices = local\nendpoint_url = http://127.0.0.1:9999\n\n"
	    "[profile proc]\ncredential_process = printf '{\"Version\": 1, \"AccessKeyId\": \"AKIDPROC\", "
	    "\"SecretAccessKey\": \"secretproc\", \"SessionToken\": \"tokproc\", \"Expiration\": \"2026-12-01T20:00:00Z\"}'\n"
	    "[profile badproc]\ncredential_process = sh -c 'echo nope; exit 3'\n"
	    "[profile cfgkeys]\naws_access_key_id = AKIDCFG\naws_secret_access_key = secretcfg\n\n"
	    "[services local]\ndynamodb =\n  endpoint_url = http://127.0.0.1:14567\n"
	    "kinesis =\n  endpoint_url = http://127.0.0.1:14568\n");

	ok(awsconf_creds_resolve(&c, err, sizeof(err)) == 0 && strcmp(c.access_key, "AKIDDEFAULT") == 0 &&
	    strcmp(c.secret_key, "secretdefault") == 0 && c.session_token[0] == 0, "default profile from the credentials file");
	ok(awsconf_region(out, sizeof(out)) == 0 && strcmp(out, "eu-west-1") == 0, "region of the default profile (%s)", out);

	setenv("AWS_PROFILE", "dev", 1);
	ok(awsconf_creds_resolve(&c, err, sizeof(err)) == 0 && strcmp(c.access_key, "AKIDDEV") == 0 &&
	    strcmp(c.session_token, "tokdev") == 0 && strcmp(c.source, "profile dev") == 0,
	    "AWS_PROFILE picks [dev], with its session token (source %s)", c.source);
	ok(awsconf_region(out, sizeof(out)) == 0 && strcmp(out, "us-east-2") == 0, "region from [profile dev]");
	ok(awsconf_endpoint("DYNAMODB", out, sizeof(out)) == 0 && strcmp(out, "http://127.0.0.1:14567") == 0,
	    "endpoint from the profile's services section (%s)", out);
	ok(awsconf_endpoint("KINESIS", out, sizeof(out)) == 0 && strcmp(out, "http://127.0.0.1:14568") == 0,
	    "another service of the same section (%s)", out);
	ok(awsconf_endpoint("SQS", out, sizeof(out)) == 0 && strcmp(out, "http://127.0.0.1:9999") == 0,
	    "a service not in the section: the profile's endpoint_url (%s)", out);
	setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1111", 1);
	ok(awsconf_endpoint("DYNAMODB", out, sizeof(out)) == 0 && strcmp(out, "http://127.0.0.1:1111") == 0,
	    "AWS_ENDPOINT_URL before the config file");
	setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:2222", 1);
	ok(awsconf_endpoint("DYNAMODB", out, sizeof(out)) == 0 && strcmp(out, "http://127.0.0.1:2222") == 0,
	    "AWS_ENDPOINT_URL_DYNAMODB before AWS_ENDPOINT_URL");
	setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true", 1);
	ok(awsconf_endpoint("DYNAMODB", out, sizeof(out)) == 1, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true ignores them all");
	unsetenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
	setenv("AWS_REGION", "ap-south-1", 1);
	setenv("AWS_DEFAULT_REGION", "sa-east-1", 1);
	ok(awsconf_region(out, sizeof(out)) == 0 && strcmp(out, "ap-south-1") == 0, "AWS_REGION first");
	unsetenv("AWS_REGION");
	ok(awsconf_region(out, sizeof(out)) == 0 && strcmp(out, "sa-east-1") == 0, "then AWS_DEFAULT_REGION");

	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secretenv", 1);
	setenv("AWS_SESSION_TOKEN", "tokenv", 1);
	ok(awsconf_creds_resolve(&c, err, sizeof(err)) == 0 && strcmp(c.access_key, "AKIDENV") == 0 &&
	    strcmp(c.session_token, "tokenv") == 0 && strcmp(c.source, "environment") == 0,
	    "the environment before any profile");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	ok(awsconf_creds_resolve(&c, err, sizeof(err)) == -1 && strstr(err, "together") && !strstr(err, "AKIDENV"),
	    "a key id without its secret is an error that does not show the key (%s)", err);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SESSION_TOKEN");

	setenv("AWS_PROFILE", "broken", 1);
	ok(awsconf_creds_resolve(&c, err, sizeof(err)) == -1 && strstr(err, "[broken]"),
	    "a profile with a key id and no secret names the file and profile (%s)", err);
	setenv("AWS_PROFILE", "cfgkeys", 1);
	ok(awsconf_creds_resolve(&c, err, sizeof(err)) == 0 && strcmp(c.access_key, "AKIDCFG") == 0,
	    "keys in the config file's profile");
	setenv("AWS_PROFILE", "proc", 1);
	int rc = awsconf_creds_resolve(&c, err, sizeof(err));
	ok(rc == 0 && strcmp(c.access_key, "AKIDPROC") == 0 &&
	    strcmp(c.session_token, "tokproc") == 0 && c.expires_ms == 1796155200000LL &&
	    strcmp(c.source, "credential_process") == 0, "credential_process: keys, token and expiry (%lld)",
	    (long long)c.expires_ms);
	setenv("AWS_PROFILE", "badproc", 1);
	ok(awsconf_creds_resolve(&c, err, sizeof(err)) == -1 && strstr(err, "exit status 3"),
	    "a failing credential_process is an error with its exit status (%s)", err);

	setenv("AWS_PROFILE", "dev", 1);
	ok(awsconf_profile_creds("cfgkeys", &c, err, sizeof(err)) == 0 && strcmp(c.access_key, "AKIDCFG") == 0 &&
	    strcmp(c.source, "profile cfgkeys") == 0, "a named profile's keys, whatever AWS_PROFILE is");
	ok(awsconf_profile_creds("default", &c, err, sizeof(err)) == 0 && strcmp(c.access_key, "AKIDDEFAULT") == 0,
	    "the default profile by name");
	ok(awsconf_profile_creds("proc", &c, err, sizeof(err)) == 0 && strcmp(c.access_key, "AKIDPROC") == 0,
	    "a named profile's credential_process");
	ok(awsconf_profile_creds("nosuch", &c, err, sizeof(err)) == 1, "a named profile without keys: 1");
	ok(awsconf_profile_get("cfgkeys", "aws_access_key_id", out, sizeof(out)) == 0 && strcmp(out, "AKIDCFG") == 0 &&
	    awsconf_profile_get("default", "region", out, sizeof(out)) == 0 && strcmp(out, "eu-west-1") == 0,
	    "a named profile's config value");
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secretenv", 1);
	ok(awsconf_profile_creds("dev", &c, err, sizeof(err)) == 0 && strcmp(c.access_key, "AKIDDEV") == 0,
	    "a named profile's keys are not the environment's");
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");

	ok(awsconf_parse_time("2026-12-01T20:00:00.123+00:00") == 1796155200000LL, "ISO 8601 with fraction and +00:00");
	ok(awsconf_parse_time("yesterday") == -1 && awsconf_parse_time("2026-12-01T20:00:00+02:00") == -1,
	    "malformed or non-UTC times are refused");

	unlink(cred_path);
	unlink(conf_path);
	rmdir(dir);
	return done_testing();
}
