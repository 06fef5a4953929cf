#include "common/awsconf.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "common/buf.h"

/* ---- the shared files ------------------------------------------------------ */

static void
trim(char *s)
{
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = 0;
	size_t i = 0;
	while (s[i] && isspace((unsigned char)s[i]))
		i++;
	if (i)
		memmove(s, s + i, n - i + 1);
}

/* Looks key up in [section] of the INI file at path; with sub, inside the
 * sub-section "sub =" of that section.  0 found (value in out), 1 not
 * found or no such file. */
static int
ini_get(const char *path, const char *section, const char *sub, const char *key, char *out, size_t cap)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return 1;
	char line[8192], cur[512] = "", cursub[256] = "";
	int found = 1;
	while (found && fgets(line, sizeof(line), f)) {
		int indented = line[0] == ' ' || line[0] == '\t';
		trim(line);
		if (line[0] == 0 || line[0] == '#' || line[0] == ';')
			continue;
		if (line[0] == '[') {
			char *end = strchr(line, ']');
			if (end)
				*end = 0;
			snprintf(cur, sizeof(cur), "%.500s", line + 1);
			trim(cur);
			cursub[0] = 0;
			continue;
		}
		char *eq = strchr(line, '=');
		if (eq == NULL || strcmp(cur, section) != 0)
			continue;
		*eq = 0;
		char *k = line, *v = eq + 1;
		trim(k);
		trim(v);
		if (!indented) {
			/* "name =" with nothing after it opens a sub-section. */
			snprintf(cursub, sizeof(cursub), "%.250s", v[0] ? "" : k);
			if (sub == NULL && v[0] && strcmp(k, key) == 0) {
				snprintf(out, cap, "%s", v);
				found = 0;
			}
		} else if (sub && cursub[0] && strcmp(cursub, sub) == 0 && strcmp(k, key) == 0) {
			snprintf(out, cap, "%s", v);
			found = 0;
		}
	}
	fclose(f);
	return found;
}

static const char *
profile_name(void)
{
	const char *p = getenv("AWS_PROFILE");
	return p && *p ? p : "default";
}

static void
file_path(const char *env, const char *rel, char *out, size_t cap)
{
	const char *v = getenv(env);
	if (v && *v) {
		snprintf(out, cap, "%s", v);
		return;
	}
	const char *home = getenv("HOME");
	snprintf(out, cap, "%s/.aws/%s", home && *home ? home : "/root", rel);
}

/* A profile's section name in the config file. */
static void
config_section(const char *p, char *out, size_t cap)
{
	if (strcmp(p, "default") == 0)
		snprintf(out, cap, "default");
	else
		snprintf(out, cap, "profile %.500s", p);
}

int
awsconf_profile_get(const char *profile, const char *key, char *out, size_t cap)
{
	char path[4096], sect[600];
	file_path("AWS_CONFIG_FILE", "config", path, sizeof(path));
	config_section(profile, sect, sizeof(sect));
	return ini_get(path, sect, NULL, key, out, cap);
}

int
awsconf_profile_value(const char *key, char *out, size_t cap)
{
	return awsconf_profile_get(profile_name(), key, out, cap);
}

/* ---- region and endpoints ---------------------------------------------------- */

int
awsconf_region(char *out, size_t cap)
{
	const char *vars[] = {"AWS_REGION", "AWS_DEFAULT_REGION"};
	for (int i = 0; i < 2; i++) {
		const char *v = getenv(vars[i]);
		if (v && *v) {
			snprintf(out, cap, "%s", v);
			return 0;
		}
	}
	return awsconf_profile_value("region", out, cap);
}

int
awsconf_endpoint(const char *service, char *out, size_t cap)
{
	const char *ign = getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
	if (ign && strcasecmp(ign, "true") == 0)
		return 1;
	char var[128], lower[64];
	snprintf(var, sizeof(var), "AWS_ENDPOINT_URL_%s", service);
	const char *v = getenv(var);
	if (v == NULL || *v == 0)
		v = getenv("AWS_ENDPOINT_URL");
	if (v && *v) {
		snprintf(out, cap, "%s", v);
		return 0;
	}
	/* The config file names services in lower case with underscores,
	 * e.g. "dynamodb", "cloudwatch_logs". */
	size_t i;
	for (i = 0; service[i] && i + 1 < sizeof(lower); i++)
		lower[i] = (char)tolower((unsigned char)service[i]);
	lower[i] = 0;
	char services[256], path[4096], sect[300];
	if (awsconf_profile_value("services", services, sizeof(services)) == 0) {
		file_path("AWS_CONFIG_FILE", "config", path, sizeof(path));
		snprintf(sect, sizeof(sect), "services %s", services);
		if (ini_get(path, sect, lower, "endpoint_url", out, cap) == 0)
			return 0;
	}
	return awsconf_profile_value("endpoint_url", out, cap);
}

/* ---- credentials --------------------------------------------------------------- */

int64_t
awsconf_parse_time(const char *s)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	int n = 0;
	if (s == NULL || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
	    &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
		return -1;
	const char *rest = s + n;
	if (*rest == '.')
		for (rest++; isdigit((unsigned char)*rest); rest++)
			;
	if (strcmp(rest, "Z") != 0 && strcmp(rest, "+00:00") != 0 && strcmp(rest, "") != 0)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	time_t t = timegm(&tm);
	return t < 0 ? -1 : (int64_t)t * 1000;
}

/* Reads the three keys of a section: 0 complete, 1 absent, -1 a key
 * without its secret. */
static int
creds_from_ini(awsconf_creds *c, const char *path, const char *sect, char *err, size_t errcap)
{
	int a = ini_get(path, sect, NULL, "aws_access_key_id", c->access_key, sizeof(c->access_key));
	int b = ini_get(path, sect, NULL, "aws_secret_access_key", c->secret_key, sizeof(c->secret_key));
	if (a && b)
		return 1;
	if (a || b) {
		snprintf(err, errcap, "%s [%s]: aws_access_key_id and aws_secret_access_key must be given together",
		    path, sect);
		return -1;
	}
	if (ini_get(path, sect, NULL, "aws_session_token", c->session_token, sizeof(c->session_token)))
		c->session_token[0] = 0;
	c->expires_ms = 0;
	return 0;
}

/* Runs the profile's credential_process and reads its JSON. */
static int
creds_from_process(awsconf_creds *c, const char *cmd, char *err, size_t errcap)
{
	FILE *p = popen(cmd, "r");
	if (p == NULL) {
		snprintf(err, errcap, "credential_process: cannot run it: %s", strerror(errno));
		return -1;
	}
	buf out = BUF_ZERO;
	char tmp[4096];
	size_t n;
	while ((n = fread(tmp, 1, sizeof(tmp), p)) > 0 && out.len < (1u << 20))
		buf_add(&out, tmp, n);
	int st = pclose(p);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		snprintf(err, errcap, "credential_process failed (exit status %d)",
		    st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		buf_free(&out);
		return -1;
	}
	cJSON *j = cJSON_ParseWithLength(out.data ? out.data : "", out.len);
	buf_free(&out);
	cJSON *ver = cJSON_GetObjectItemCaseSensitive(j, "Version");
	cJSON *ak = cJSON_GetObjectItemCaseSensitive(j, "AccessKeyId");
	cJSON *sk = cJSON_GetObjectItemCaseSensitive(j, "SecretAccessKey");
	cJSON *tok = cJSON_GetObjectItemCaseSensitive(j, "SessionToken");
	cJSON *exp = cJSON_GetObjectItemCaseSensitive(j, "Expiration");
	int rc = -1;
	if (!cJSON_IsNumber(ver) || ver->valueint != 1)
		snprintf(err, errcap, "credential_process: its output is not JSON with \"Version\": 1");
	else if (!cJSON_IsString(ak) || !cJSON_IsString(sk))
		snprintf(err, errcap, "credential_process: its output lacks AccessKeyId or SecretAccessKey");
	else if (exp && (!cJSON_IsString(exp) || awsconf_parse_time(exp->valuestring) < 0))
		snprintf(err, errcap, "credential_process: Expiration is not an ISO 8601 time");
	else {
		snprintf(c->access_key, sizeof(c->access_key), "%s", ak->valuestring);
		snprintf(c->secret_key, sizeof(c->secret_key), "%s", sk->valuestring);
		snprintf(c->session_token, sizeof(c->session_token), "%s",
		    cJSON_IsString(tok) ? tok->valuestring : "");
		c->expires_ms = exp ? awsconf_parse_time(exp->valuestring) : 0;
		snprintf(c->source, sizeof(c->source), "credential_process");
		rc = 0;
	}
	cJSON_Delete(j);
	return rc;
}

int
awsconf_profile_creds(const char *profile, awsconf_creds *c, char *err, size_t errcap)
{
	memset(c, 0, sizeof(*c));
	char path[4096], sect[600] = "";
	file_path("AWS_SHARED_CREDENTIALS_FILE", "credentials", path, sizeof(path));
	int rc = creds_from_ini(c, path, profile, err, errcap);
	if (rc == 1) {
		file_path("AWS_CONFIG_FILE", "config", path, sizeof(path));
		config_section(profile, sect, sizeof(sect));
		rc = creds_from_ini(c, path, sect, err, errcap);
	}
	if (rc <= 0) {
		if (rc == 0)
			snprintf(c->source, sizeof(c->source), "profile %.50s", profile);
		return rc;
	}
	char cmd[4096];
	if (ini_get(path, sect, NULL, "credential_process", cmd, sizeof(cmd)) == 0)
		return creds_from_process(c, cmd, err, errcap);
	return 1;
}

int
awsconf_creds_resolve(awsconf_creds *c, char *err, size_t errcap)
{
	memset(c, 0, sizeof(*c));
	const char *ak = getenv("AWS_ACCESS_KEY_ID"), *sk = getenv("AWS_SECRET_ACCESS_KEY");
	if ((ak && *ak) || (sk && *sk)) {
		if (!(ak && *ak && sk && *sk)) {
			snprintf(err, errcap, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together");
			return -1;
		}
		const char *tok = getenv("AWS_SESSION_TOKEN");
		snprintf(c->access_key, sizeof(c->access_key), "%s", ak);
		snprintf(c->secret_key, sizeof(c->secret_key), "%s", sk);
		snprintf(c->session_token, sizeof(c->session_token), "%s", tok ? tok : "");
		snprintf(c->source, sizeof(c->source), "environment");
		return 0;
	}
	return awsconf_profile_creds(profile_name(), c, err, errcap);
}
