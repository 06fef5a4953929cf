#include "common/config.h"

#include <cjson/cJSON.h>
#include <errno.h>
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
	snprintf(r, n, "%s/%s", base_dir, p);
	return r;
}

static char *
str_or(cJSON *o, const char *key, const char *def, const char *base, int path)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	const char *s = cJSON_IsString(v) ? v->valuestring : def;
	if (s == NULL)
		return NULL;
	return path ? resolve(base, s) : strdup(s);
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
	c->broker = str_or(j, "broker", "mqtt://127.0.0.1:1883", base, 0);
	c->rules = str_or(j, "rules", "rules", base, 1);
	c->run_dir = str_or(j, "run_dir", "/run/iotrules", base, 1);
	c->state_dir = str_or(j, "state_dir", "/var/lib/iotrules", base, 1);
	c->bin_dir = str_or(j, "bin_dir", NULL, base, 1);
	c->share_group = str_or(j, "share_group", NULL, base, 0);
	c->account_id = str_or(j, "account_id", NULL, base, 0);
	cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "mqtt_version");
	c->mqtt_version = cJSON_IsNumber(v) && v->valueint == 3 ? 3 : 5;
	v = cJSON_GetObjectItemCaseSensitive(j, "tries");
	c->tries = cJSON_IsNumber(v) && v->valueint > 0 ? v->valueint : 3;
	cJSON *inst = cJSON_GetObjectItemCaseSensitive(j, "instances");
	cJSON *it;
	cJSON_ArrayForEach(it, inst) {
		if (!cJSON_IsNumber(it) || it->valueint < 0 || c->ninst == 64)
			continue;
		snprintf(c->inst[c->ninst].stage, 64, "%s", it->string);
		c->inst[c->ninst++].n = it->valueint;
	}
	cJSON_Delete(j);
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
