#include "common/config.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/actions.h"
#include "common/buf.h"
#include "common/dest.h"
#include "common/mqtturl.h"

/* Every key the file may hold.  "destinations" is read by common/dest. */
static const char *const known_keys[] = {
	"broker", "rules", "run_dir", "state_dir", "bin_dir", "instances", "mqtt_version", "share_group",
	"tries", "account_id", "retry_s", "session_expiry_s", "assume_role", "spool_max_bytes",
	"metrics_listen", "username", "password", "password_file", "cafile", "certfile", "keyfile",
	"destinations", "ingest_journal", "transport", "stages", NULL};

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

/* Reading the keys: each problem is one line "FILE:LINE: reason" added to
 * errs, and reading goes on, so that one run names every problem. */
#define MAX_PROBLEMS 64

struct problem {
	int line;
	char *text;   /* "FILE:LINE: reason", malloc'd */
};

typedef struct reader {
	cJSON *obj;
	const char *text;   /* the file, for line numbers */
	const char *path, *base;
	struct problem prob[MAX_PROBLEMS];
	int nerr;
} reader;

/* The line of the first `"key":` at or after from (1 if not found). */
static int
line_of(const char *text, const char *key, const char *from)
{
	size_t kl = strlen(key);
	const char *p = from ? from : text;
	while ((p = strchr(p, '"')) != NULL) {
		if (strncmp(p + 1, key, kl) == 0 && p[kl + 1] == '"') {
			const char *q = p + kl + 2;
			while (isspace((unsigned char)*q))
				q++;
			if (*q == ':')
				break;
		}
		p++;
	}
	if (p == NULL)
		return 1;
	int line = 1;
	for (const char *c = text; c < p; c++)
		line += *c == '\n';
	return line;
}

static void
vproblem(reader *r, int line, const char *fmt, va_list ap)
{
	if (r->nerr == MAX_PROBLEMS)
		return;
	buf b = BUF_ZERO;
	char why[600];
	vsnprintf(why, sizeof(why), fmt, ap);
	buf_printf(&b, "%s:%d: %s", r->path, line, why);
	r->prob[r->nerr].line = line;
	r->prob[r->nerr++].text = b.data;
}

/* A problem with top-level key. */
static void
problem(reader *r, const char *key, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vproblem(r, line_of(r->text, key, NULL), fmt, ap);
	va_end(ap);
}

/* A problem at a line. */
static void
problem_at(reader *r, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vproblem(r, line, fmt, ap);
	va_end(ap);
}

/* Levenshtein distance, for "did you mean". */
static size_t
distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[64];
	if (la >= 63 || lb >= 63)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
			size_t best = diag + cost;
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* The nearest of names to key if it is close enough to be a typo, else NULL. */
static const char *
nearest(const char *key, const char *const *names)
{
	const char *best = NULL;
	size_t bd = 99;
	for (int i = 0; names[i]; i++) {
		size_t d = distance(key, names[i]);
		if (d < bd) {
			bd = d;
			best = names[i];
		}
	}
	size_t limit = strlen(key) / 3 + 1;
	return bd <= (limit < 3 ? limit : 3) ? best : NULL;
}

static int
get_str(reader *r, const char *key, const char *def, int path, char **out)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(r->obj, key);
	const char *s = def;
	*out = NULL;
	if (v != NULL && !cJSON_IsNull(v)) {
		if (!cJSON_IsString(v)) {
			problem(r, key, "\"%s\" must be a string", key);
			return -1;
		}
		s = v->valuestring;
		if (s[0] == 0) {
			problem(r, key, "\"%s\" must not be empty", key);
			return -1;
		}
	}
	if (s == NULL)
		return 0;
	*out = path ? resolve(r->base, s) : strdup(s);
	if (*out == NULL) {
		problem(r, key, "\"%s\": out of memory", key);
		return -1;
	}
	return 0;
}

/* An integer in [min, max]. */
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
		problem(r, key, "\"%s\" must be %s", key, what);
		*out = def;
		return -1;
	}
	return 0;
}

static void
check_unknown(reader *r)
{
	cJSON *it;
	cJSON_ArrayForEach(it, r->obj) {
		int known = 0;
		for (int i = 0; known_keys[i]; i++)
			known |= strcmp(it->string, known_keys[i]) == 0;
		if (known)
			continue;
		const char *hint = nearest(it->string, known_keys);
		if (hint)
			problem(r, it->string, "unknown key \"%s\" (did you mean \"%s\"?)", it->string, hint);
		else
			problem(r, it->string, "unknown key \"%s\" (the keys are listed in iotrules.conf(5))",
			    it->string);
	}
}

/* "HOST:PORT" (IPv6 as [ADDR]:PORT), PORT 0-65535 (0: any free port). */
static int
listen_ok(const char *s)
{
	const char *colon = strrchr(s, ':');
	if (colon == NULL || colon == s || colon[1] == 0)
		return 0;
	if (s[0] == '[' && colon[-1] != ']')
		return 0;
	char *end;
	errno = 0;
	long port = strtol(colon + 1, &end, 10);
	return *end == 0 && errno == 0 && port >= 0 && port <= 65535;
}

static int
is_stage(const char *s)
{
	if (strcmp(s, "ingest") == 0 || strcmp(s, "evaluate") == 0 || strcmp(s, "error-handler") == 0)
		return 1;
	return strncmp(s, "sink-", 5) == 0 && action_by_stage(s) != NULL;
}

static void
read_instances(reader *r, config *c)
{
	cJSON *inst = cJSON_GetObjectItemCaseSensitive(r->obj, "instances");
	if (inst == NULL || cJSON_IsNull(inst))
		return;
	if (!cJSON_IsObject(inst)) {
		problem(r, "instances", "\"instances\" must be an object like {\"evaluate\": 2}");
		return;
	}
	const char *names[80];
	int nn = 0;
	names[nn++] = "ingest";
	names[nn++] = "evaluate";
	names[nn++] = "error-handler";
	static char sinknames[64][64];
	for (int i = 0; action_at(i) && nn < 79; i++, nn++) {
		snprintf(sinknames[i], sizeof(sinknames[i]), "sink-%s", action_at(i)->stage);
		names[nn] = sinknames[i];
	}
	names[nn] = NULL;
	const char *from = strstr(r->text, "\"instances\"");
	cJSON *it;
	cJSON_ArrayForEach(it, inst) {
		long long v;
		if (!is_stage(it->string)) {
			const char *hint = nearest(it->string, names);
			int line = line_of(r->text, it->string, from);
			if (hint)
				problem_at(r, line, "\"instances\": unknown stage \"%s\" (did you mean \"%s\"?)",
				    it->string, hint);
			else
				problem_at(r, line, "\"instances\": unknown stage \"%s\" (ingest, evaluate, "
				    "error-handler or sink-<action>)", it->string);
			continue;
		}
		if (int_value(it, 0, 64, &v) < 0) {
			problem_at(r, line_of(r->text, it->string, from),
			    "\"instances\": \"%s\" must be an integer from 0 to 64", it->string);
			continue;
		}
		if (c->ninst == 64) {
			problem(r, "instances", "\"instances\": too many stages");
			return;
		}
		snprintf(c->inst[c->ninst].stage, sizeof(c->inst[0].stage), "%s", it->string);
		c->inst[c->ninst++].n = (int)v;
	}
}

/* "transport": {"amqp": ["amqp://host:port", ...], "prefix": "iotrules"}
 * (null or absent: the NNG hops). */
static void
read_transport(reader *r, config *c)
{
	cJSON *t = cJSON_GetObjectItemCaseSensitive(r->obj, "transport");
	if (t == NULL || cJSON_IsNull(t))
		return;
	cJSON *urls = cJSON_GetObjectItemCaseSensitive(t, "amqp");
	if (!cJSON_IsObject(t) || !cJSON_IsArray(urls) || cJSON_GetArraySize(urls) == 0) {
		problem(r, "transport", "\"transport\" must be an object like {\"amqp\": [\"amqp://host:5672\", ...]}");
		return;
	}
	buf b = BUF_ZERO;
	cJSON *it;
	cJSON_ArrayForEach(it, t) {
		static const char *const keys[] = {"amqp", "prefix", "cafile", "certfile", "keyfile", NULL};
		int known = 0;
		for (int i = 0; keys[i]; i++)
			known |= strcmp(it->string, keys[i]) == 0;
		if (!known)
			problem(r, "transport", "\"transport\": unknown key \"%s\" (amqp, prefix, cafile, certfile, keyfile)",
			    it->string);
	}
	/* TLS files for amqps:// nodes, relative to the config file. */
	const char *fk[] = {"cafile", "certfile", "keyfile"};
	char **fv[] = {&c->amqp_cafile, &c->amqp_certfile, &c->amqp_keyfile};
	for (int i = 0; i < 3; i++) {
		cJSON *f = cJSON_GetObjectItemCaseSensitive(t, fk[i]);
		if (f == NULL || cJSON_IsNull(f))
			continue;
		if (!cJSON_IsString(f) || f->valuestring[0] == 0)
			problem(r, "transport", "\"transport\": \"%s\" must be a file name", fk[i]);
		else
			*fv[i] = resolve(r->base, f->valuestring);
	}
	if ((c->amqp_certfile == NULL) != (c->amqp_keyfile == NULL))
		problem(r, "transport", "\"transport\": \"certfile\" and \"keyfile\" go together");
	cJSON_ArrayForEach(it, urls) {
		if (!cJSON_IsString(it) ||
		    (strncmp(it->valuestring, "amqp://", 7) != 0 && strncmp(it->valuestring, "amqps://", 8) != 0) ||
		    strpbrk(it->valuestring, " ,\t\n")) {
			problem(r, "transport", "\"transport\": \"amqp\" lists URLs like \"amqp://user:pass@host:5672\" (or amqps://)");
			buf_free(&b);
			return;
		}
		buf_printf(&b, "%s%s", b.len ? " " : "", it->valuestring);
	}
	c->amqp = b.data;   /* the buffer is the config's now */
	cJSON *p = cJSON_GetObjectItemCaseSensitive(t, "prefix");
	if (p && !cJSON_IsNull(p)) {
		if (!cJSON_IsString(p) || p->valuestring[0] == 0 || strlen(p->valuestring) > 100)
			problem(r, "transport", "\"transport\": \"prefix\" must be a short string (queue names are "
			    "<prefix>.<hop>)");
		else
			c->amqp_prefix = strdup(p->valuestring);
	}
}

/* "stages": ["ingest", "evaluate", "sinks", "error-handler", "sink-kafka",
 * ...] (null or absent: every stage). */
static void
read_stages(reader *r, config *c)
{
	cJSON *s = cJSON_GetObjectItemCaseSensitive(r->obj, "stages");
	if (s == NULL || cJSON_IsNull(s))
		return;
	if (!cJSON_IsArray(s)) {
		problem(r, "stages", "\"stages\" must be an array like [\"ingest\", \"evaluate\", \"sinks\"]");
		return;
	}
	c->stages_set = 1;
	cJSON *it;
	cJSON_ArrayForEach(it, s) {
		if (!cJSON_IsString(it) || !(is_stage(it->valuestring) || strcmp(it->valuestring, "sinks") == 0)) {
			problem(r, "stages", "\"stages\": \"%s\" is not a stage (ingest, evaluate, error-handler, "
			    "sinks or sink-<action>)", cJSON_IsString(it) ? it->valuestring : "?");
			continue;
		}
		if (c->nstages == 64)
			break;
		snprintf(c->stages[c->nstages++], sizeof(c->stages[0]), "%s", it->valuestring);
	}
	if (c->amqp == NULL)
		problem(r, "stages", "\"stages\" needs \"transport\": without it the stages talk over local "
		    "sockets and must all run under one supervisor");
}

static void
read_keys(reader *r, config *c)
{
	long long v;
	check_unknown(r);
	get_str(r, "broker", "mqtt://127.0.0.1:1883", 0, &c->broker);
	get_str(r, "rules", "rules", 1, &c->rules);
	get_str(r, "run_dir", "/run/iotrules", 1, &c->run_dir);
	get_str(r, "state_dir", "/var/lib/iotrules", 1, &c->state_dir);
	get_str(r, "bin_dir", NULL, 1, &c->bin_dir);
	get_str(r, "share_group", NULL, 0, &c->share_group);
	get_str(r, "account_id", NULL, 0, &c->account_id);
	get_str(r, "username", NULL, 0, &c->username);
	get_str(r, "password", NULL, 0, &c->password);
	get_str(r, "password_file", NULL, 1, &c->password_file);
	get_str(r, "cafile", NULL, 1, &c->cafile);
	get_str(r, "certfile", NULL, 1, &c->certfile);
	get_str(r, "keyfile", NULL, 1, &c->keyfile);
	get_str(r, "ingest_journal", NULL, 1, &c->ingest_journal);
	char host[256];
	int port, tls;
	if (c->broker && mqtturl_parse(c->broker, host, sizeof(host), &port, &tls) < 0)
		problem(r, "broker", "\"broker\": \"%s\" is not a broker URL (mqtt://HOST[:PORT] or mqtts://HOST[:PORT])",
		    c->broker);
	if (c->share_group && strpbrk(c->share_group, "/+#"))
		problem(r, "share_group", "\"share_group\" must not contain '/', '+' or '#' (MQTT shared subscriptions)");
	if (c->password && c->password_file)
		problem(r, "password_file", "\"password\" and \"password_file\" are exclusive: give one");
	if (get_int(r, "mqtt_version", 5, 3, 5, "3 or 5", &v) == 0 && v == 4) {
		problem(r, "mqtt_version", "\"mqtt_version\" must be 3 or 5");
		v = 5;
	}
	c->mqtt_version = (int)v;
	get_int(r, "tries", 3, 1, 1000000, "an integer >= 1", &v);
	c->tries = (int)v;
	get_int(r, "retry_s", 3600, 0, 100LL * 365 * 86400, "an integer >= 0 (seconds)", &c->retry_s);
	get_int(r, "session_expiry_s", 86400, 0, 4294967295LL, "an integer from 0 to 4294967295 (seconds)",
	    &c->session_expiry_s);
	get_int(r, "spool_max_bytes", 0, 1, 1LL << 53, "an integer > 0 (bytes)", &c->spool_max_bytes);
	cJSON *ml = cJSON_GetObjectItemCaseSensitive(r->obj, "metrics_listen");
	if (cJSON_IsFalse(ml))
		c->metrics_listen = NULL;
	else if (cJSON_IsBool(ml))
		problem(r, "metrics_listen", "\"metrics_listen\" must be \"HOST:PORT\" or false");
	else if (get_str(r, "metrics_listen", "127.0.0.1:9641", 0, &c->metrics_listen) == 0 &&
	    !listen_ok(c->metrics_listen))
		problem(r, "metrics_listen", "\"metrics_listen\": \"%s\" is not HOST:PORT (port 0-65535), or false",
		    c->metrics_listen);
	cJSON *ar = cJSON_GetObjectItemCaseSensitive(r->obj, "assume_role");
	if (ar != NULL && !cJSON_IsNull(ar) && !cJSON_IsBool(ar))
		problem(r, "assume_role", "\"assume_role\" must be true or false");
	c->assume_role = cJSON_IsTrue(ar);
	read_instances(r, c);
	read_transport(r, c);
	read_stages(r, c);
	/* Without a share group every ingest instance subscribes on its own
	 * and the broker gives each a copy: every message twice. */
	/* A journal has one reader (journal.h): instances would wait on its
	 * lock, not share the work. */
	if (config_instances(c, "ingest") > 1 && c->ingest_journal)
		problem(r, "instances", "\"instances\": ingest %d with \"ingest_journal\": one ingest reads "
		    "the broker plugin's journal", config_instances(c, "ingest"));
	else if (config_instances(c, "ingest") > 1 && c->share_group == NULL)
		problem(r, "instances", "\"instances\": ingest %d needs \"share_group\": without a shared "
		    "subscription every ingest instance receives every message (duplicates)",
		    config_instances(c, "ingest"));
}

static int
by_line(const void *a, const void *b)
{
	const struct problem *x = a, *y = b;
	return (x->line > y->line) - (x->line < y->line);
}

int
config_load(const char *path, config *c, char *err, size_t errcap)
{
	memset(c, 0, sizeof(*c));
	buf file = BUF_ZERO;
	if (buf_read_file(&file, path, 16u << 20) < 0) {
		snprintf(err, errcap, "%s: %s", path, strerror(errno));
		buf_free(&file);
		return -1;
	}
	char *text = file.data;
	size_t len = file.len;
	const char *end = NULL;
	cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	if (!cJSON_IsObject(j)) {
		if (j == NULL) {
			const char *at = cJSON_GetErrorPtr();
			int line = 1;
			for (const char *p = text; at && p < at && p < text + len; p++)
				line += *p == '\n';
			snprintf(err, errcap, "%s:%d: not valid JSON", path, line);
		} else
			snprintf(err, errcap, "%s:1: not a JSON object", path);
		cJSON_Delete(j);
		free(text);
		return -1;
	}
	char base[4096];
	snprintf(base, sizeof(base), "%s", path);
	char *slash = strrchr(base, '/');
	if (slash)
		*slash = 0;
	else
		snprintf(base, sizeof(base), ".");
	reader r = {.obj = j, .text = text, .path = path, .base = base};
	read_keys(&r, c);
	cJSON_Delete(j);
	free(text);
	if (r.nerr == 0)
		return 0;
	/* In the file's order, as a compiler lists them. */
	qsort(r.prob, (size_t)r.nerr, sizeof(r.prob[0]), by_line);
	buf all = BUF_ZERO;
	for (int i = 0; i < r.nerr; i++) {
		buf_printf(&all, "%s%s", i ? "\n" : "", r.prob[i].text);
		free(r.prob[i].text);
	}
	snprintf(err, errcap, "%s", all.data);
	buf_free(&all);
	config_free(c);
	return -1;
}

int
config_check(const char *path, config *c, dest_list *dests, const char **netns, char *err, size_t errcap)
{
	if (config_load(path, c, err, errcap) < 0)
		return -1;
	*dests = (dest_list)DEST_LIST_ZERO;
	if (dest_load(path, dests, err, errcap) < 0) {
		config_free(c);
		return -1;
	}
	char why[600];
	if (dest_netns(dests, netns, why, sizeof(why)) < 0) {
		snprintf(err, errcap, "%s: %s", path, why);
		dest_free(dests);
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
	free(c->ingest_journal);
	free(c->amqp);
	free(c->amqp_prefix);
	free(c->amqp_cafile);
	free(c->amqp_certfile);
	free(c->amqp_keyfile);
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
config_runs(const config *c, const char *stage)
{
	if (!c->stages_set)
		return 1;
	for (int i = 0; i < c->nstages; i++)
		if (strcmp(c->stages[i], stage) == 0 ||
		    (strcmp(c->stages[i], "sinks") == 0 && strncmp(stage, "sink-", 5) == 0))
			return 1;
	return 0;
}

int
config_instances(const config *c, const char *stage)
{
	for (int i = 0; i < c->ninst; i++)
		if (strcmp(c->inst[i].stage, stage) == 0)
			return c->inst[i].n;
	return 1;
}
