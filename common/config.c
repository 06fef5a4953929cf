#include "common/config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *
resolve(const char *base_dir, const char *p)
{
	if (p == NULL)
		return NULL;
	if (p[0] == '/' || strstr(p, "://"))
		return strdup(p);
	size_t n = strlen(base_dir) + strlen(p) + 2;
	char *r = malloc(n);
	if (r)
		snprintf(r, n, "%s/%s", base_dir, p);
	return r;
}

/* Reading one key: each helper returns 0, or -1 with "key: reason" in err.
 * A missing key and null both give the default. */
typedef struct reader {
	cJSON *obj;
	const char *base;
	char *err;
	size_t errcap;
} reader;

static int
get_str(reader *r, const char *key, const char *def, int path, char **out)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(r->obj, key);
	const char *s = def;
	if (v != NULL && !cJSON_IsNull(v)) {
		if (!cJSON_IsString(v)) {
			snprintf(r->err, r->errcap, "\"%s\" must be a string", key);
			return -1;
		}
		s = v->valuestring;
		if (s[0] == 0) {
			snprintf(r->err, r->errcap, "\"%s\" must not be empty", key);
			return -1;
		}
	}
	*out = NULL;
	if (s == NULL)
		return 0;
	*out = path ? resolve(r->base, s) : strdup(s);
	if (*out == NULL) {
		snprintf(r->err, r->errcap, "\"%s\": out of memory", key);
		return -1;
	}
	return 0;
}

/* An integer in [min, max]; what says which in the message. */
static int
int_value(cJSON *v, long long min, long long max, long long *out)
{
	if (!cJSON_IsNumber(v))
		return -1;
	double d = v->valuedouble;
	if (d != floor(d) || d < (double)min || d > (double)max)
		return -1;
	*out = (long long)d;
	return 0;
}

static int
get_int(reader *r, const char *key, long long def, long long min, long long max, const char *what,
    long long *out)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(r->obj, key);
	*out = def;
	if (v == NULL || cJSON_IsNull(v))
		return 0;
	if (int_value(v, min, max, out) < 0) {
		snprintf(r->err, r->errcap, "\"%s\" must be %s", key, what);
		return -1;
	}
	return 0;
}

static int
read_keys(reader *r, config *c)
{
	long long v;
	if (get_str(r, "broker", "mqtt://127.0.0.1:1883", 0, &c->broker) < 0 ||
	    get_str(r, "rules", "rules", 1, &c->rules) < 0 ||
	    get_str(r, "run_dir", "/run/iotrules", 1, &c->run_dir) < 0 ||
	    get_str(r, "state_dir", "/var/lib/iotrules", 1, &c->state_dir) < 0 ||
	    get_str(r, "bin_dir", NULL, 1, &c->bin_dir) < 0 ||
	    get_str(r, "share_group", NULL, 0, &c->share_group) < 0 ||
	    get_str(r, "account_id", NULL, 0, &c->account_id) < 0 ||
	    get_str(r, "username", NULL, 0, &c->username) < 0 ||
	    get_str(r, "password", NULL, 0, &c->password) < 0 ||
	    get_str(r, "password_file", NULL, 1, &c->password_file) < 0 ||
	    get_str(r, "cafile", NULL, 1, &c->cafile) < 0 ||
	    get_str(r, "certfile", NULL, 1, &c->certfile) < 0 ||
	    get_str(r, "keyfile", NULL, 1, &c->keyfile) < 0)
		return -1;
	if (c->password && c->password_file) {
		snprintf(r->err, r->errcap, "\"password\" and \"password_file\" are exclusive: give one");
		return -1;
	}
	if (get_int(r, "mqtt_version", 5, 3, 5, "3 or 5", &v) < 0)
		return -1;
	if (v == 4) {
		snprintf(r->err, r->errcap, "\"mqtt_version\" must be 3 or 5");
		return -1;
	}
	c->mqtt_version = (int)v;
	if (get_int(r, "tries", 3, 1, 1000000, "an integer >= 1", &v) < 0)
		return -1;
	c->tries = (int)v;
	if (get_int(r, "retry_s", 3600, 0, 100LL * 365 * 86400, "an integer >= 0 (seconds)", &c->retry_s) < 0 ||
	    get_int(r, "session_expiry_s", 86400, 0, 4294967295LL, "an integer from 0 to 4294967295 (seconds)",
		&c->session_expiry_s) < 0 ||
	    get_int(r, "spool_max_bytes", 0, 1, 1LL << 53, "an integer > 0 (bytes)", &c->spool_max_bytes) < 0)
		return -1;
	cJSON *ml = cJSON_GetObjectItemCaseSensitive(r->obj, "metrics_listen");
	if (cJSON_IsFalse(ml))
		c->metrics_listen = NULL;
	else if (get_str(r, "metrics_listen", "127.0.0.1:9641", 0, &c->metrics_listen) < 0)
		return -1;
	cJSON *ar = cJSON_GetObjectItemCaseSensitive(r->obj, "assume_role");
	if (ar != NULL && !cJSON_IsNull(ar) && !cJSON_IsBool(ar)) {
		snprintf(r->err, r->errcap, "\"assume_role\" must be true or false");
		return -1;
	}
	c->assume_role = cJSON_IsTrue(ar);
	cJSON *inst = cJSON_GetObjectItemCaseSensitive(r->obj, "instances");
	if (inst != NULL && !cJSON_IsNull(inst) && !cJSON_IsObject(inst)) {
		snprintf(r->err, r->errcap, "\"instances\" must be an object like {\"evaluate\": 2}");
		return -1;
	}
	cJSON *it;
	cJSON_ArrayForEach(it, inst) {
		if (int_value(it, 0, 64, &v) < 0) {
			snprintf(r->err, r->errcap, "\"instances\": \"%s\" must be an integer from 0 to 64", it->string);
			return -1;
		}
		if (strlen(it->string) >= sizeof(c->inst[0].stage) || c->ninst == 64) {
			snprintf(r->err, r->errcap, "\"instances\": too many stages or a stage name too long (\"%s\")",
			    it->string);
			return -1;
		}
		snprintf(c->inst[c->ninst].stage, sizeof(c->inst[0].stage), "%s", it->string);
		c->inst[c->ninst++].n = (int)v;
	}
	return 0;
}

int
config_load(const char *path, config *c, char *err, size_t errcap)
{
	memset(c, 0, sizeof(*c));
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		snprintf(err, errcap, "%s: %s", path, strerror(errno));
		return -1;
	}
	char *text = NULL;
	size_t len = 0;
	char tmp[8192];
	size_t n;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0) {
		char *t = realloc(text, len + n + 1);
		if (t == NULL) {
			free(text);
			fclose(f);
			snprintf(err, errcap, "%s: out of memory", path);
			return -1;
		}
		text = t;
		memcpy(text + len, tmp, n);
		len += n;
	}
	fclose(f);
	cJSON *j = cJSON_ParseWithLength(text ? text : "", len);
	free(text);
	if (!cJSON_IsObject(j)) {
		snprintf(err, errcap, "%s: not a JSON object", path);
		cJSON_Delete(j);
		return -1;
	}
	char base[4096];
	snprintf(base, sizeof(base), "%s", path);
	char *slash = strrchr(base, '/');
	if (slash)
		*slash = 0;
	else
		snprintf(base, sizeof(base), ".");
	char why[512];
	reader r = {j, base, why, sizeof(why)};
	int rc = read_keys(&r, c);
	cJSON_Delete(j);
	if (rc < 0) {
		snprintf(err, errcap, "%s: %s", path, why);
		config_free(c);
		return -1;
	}
	return 0;
}

void
config_free(config *c)
{
	free(c->broker);
	free(c->rules);
	free(c->run_dir);
	free(c->state_dir);
	free(c->bin_dir);
	free(c->share_group);
	free(c->account_id);
	free(c->metrics_listen);
	free(c->username);
	if (c->password) {
		/* Not left lying in freed memory. */
		volatile char *p = c->password;
		while (*p)
			*p++ = 0;
		free(c->password);
	}
	free(c->password_file);
	free(c->cafile);
	free(c->certfile);
	free(c->keyfile);
	memset(c, 0, sizeof(*c));
}

int
config_instances(const config *c, const char *stage)
{
	for (int i = 0; i < c->ninst; i++)
		if (strcmp(c->inst[i].stage, stage) == 0)
			return c->inst[i].n;
	return 1;
}
