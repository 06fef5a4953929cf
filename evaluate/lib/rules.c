#include "evaluate/lib/rules.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/actions.h"
#include "common/log.h"
#include "sinks/lib/httpout.h"
#include "sinks/lib/kafkaconf.h"

/* What the loader knows of the pipeline beyond the rule files. */
static rules_context CTX = {.mqtt_version = 5};

void
rules_set_context(const rules_context *c)
{
	CTX = *c;
}

/* salesforce (ACTIONS.md §2.18): a token of 40 characters or more (the
 * schema's); a url that is not a Salesforce IoT input stream's (the
 * schema's pattern, which AWS enforces) only warns, so that the action can
 * be pointed at another endpoint, a test server for one. */
static int
check_salesforce(const cJSON *p, char *msg, size_t cap)
{
	const char *token = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, "token"));
	const char *url = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, "url"));
	if (token == NULL || strlen(token) < 40 || url == NULL || strlen(url) > 2000) {
		snprintf(msg, cap, "needs a 'token' of 40 characters or more and a 'url' of at most 2000");
		return -1;
	}
	size_t n = strlen(url);
	if (strncmp(url, "https://ingestion-", 18) != 0 || n < 6 || strcmp(url + n - 6, "/event") != 0 ||
	    (!strstr(url, ".sfdc-matrix.net/streams/") && !strstr(url, ".sfdcnow.com/streams/"))) {
		snprintf(msg, cap, "%.200s is not a Salesforce IoT input stream URL "
		    "(https://ingestion-*.sfdc-matrix.net/streams/.../event): AWS refuses it", url);
		return 1;
	}
	return 0;
}

/* The checks of one action type's parameters that need more than the
 * schema (the action's own module decides): a warning is logged, a
 * refusal is the load error. */
static int
check_action(const action_type *t, const cJSON *p, const char *what, char *err, size_t errcap)
{
	static const dest_list none = DEST_LIST_ZERO;
	char msg[512] = "";
	int rc = 0;
	if (strcmp(t->key, "kafka") == 0) {
		rc = kafkaconf_check_action(p, msg, sizeof(msg));
		if (rc > 0) {
			log_warn("%s: %s: %s", what, t->key, msg);
			rc = 0;
		}
		const char *arn = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, "destinationArn"));
		const dest *d = arn && CTX.dests ? dest_find(CTX.dests, arn) : NULL;
		if (rc == 0 && CTX.dests && arn && (d == NULL || !d->vpc)) {
			/* As AWS would not run it; here it runs, outside any VPC. */
			rc = 1;
			snprintf(msg, sizeof(msg), "destinationArn %.300s is not a VPC destination of the config: "
			    "the kafka sink does not run in its network namespace", arn);
		}
	}
	else if (strcmp(t->key, "http") == 0)
		rc = httpout_check_action(p, CTX.dests ? CTX.dests : &none, msg, sizeof(msg));
	else if (strcmp(t->key, "salesforce") == 0)
		rc = check_salesforce(p, msg, sizeof(msg));
	else if (strcmp(t->key, "republish") == 0 && CTX.mqtt_version == 3 &&
	    cJSON_GetObjectItemCaseSensitive(p, "headers")) {
		rc = 1;
		snprintf(msg, sizeof(msg), "headers are MQTT 5 properties: dropped, the pipeline speaks MQTT 3.1.1");
	}
	if (rc < 0) {
		snprintf(err, errcap, "%s: %s: %s", what, t->key, msg);
		return -1;
	}
	if (rc > 0)
		log_warn("%s: %s: %s", what, t->key, msg);
	return 0;
}

int
rule_action_known(const char *type)
{
	const action_type *a = action_by_key(type);
	return a != NULL && action_built(a);
}

/* The parameters AWS's schema requires of the action (actions.def):
 * each must be there.  roleArn only warns: it matters only with
 * assume_role, and rules written for tests and examples often leave it
 * out, while AWS refuses them. */
static int
check_required(const action_type *t, const cJSON *p, const char *what, char *err, size_t errcap)
{
	const char *r = t->required;
	while (*r) {
		size_t n = strcspn(r, " ");
		char name[64];
		snprintf(name, sizeof(name), "%.*s", (int)n, r);
		if (cJSON_GetObjectItemCaseSensitive(p, name) == NULL) {
			if (strcmp(name, "roleArn") != 0) {
				snprintf(err, errcap, "%s: %s needs '%s' (topic-rule-schema.json)", what, t->key, name);
				return -1;
			}
			log_warn("%s: %s has no 'roleArn' (AWS requires one; used only with assume_role)", what, t->key);
		}
		r += n;
		r += strspn(r, " ");
	}
	return 0;
}

static char *
read_file(const char *path, size_t *len, char *err, size_t errcap)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		snprintf(err, errcap, "cannot read: %s", strerror(errno));
		return NULL;
	}
	buf b = BUF_ZERO;
	char tmp[16384];
	size_t n;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0) {
		buf_add(&b, tmp, n);
		if (b.len > 256 * 1024) {
			/* AWS limits the whole rule payload to 256 KB. */
			snprintf(err, errcap, "rule is larger than 256 KB");
			fclose(f);
			buf_free(&b);
			return NULL;
		}
	}
	fclose(f);
	*len = b.len;
	if (b.data == NULL)
		buf_add(&b, "", 0);
	return b.data;
}

static int
collect_templates(rule_action *a, cJSON *node, enum sql_version ver, char *err, size_t errcap)
{
	for (cJSON *c = node->child; c; c = c->next) {
		if (cJSON_IsString(c) && strstr(c->valuestring, "${")) {
			sql_error se;
			sql_template *t = sql_template_compile(c->valuestring, ver, &se);
			if (t == NULL) {
				snprintf(err, errcap, "action %s: parameter %s: template column %d: %s",
				    a->aws_key, c->string ? c->string : "?", se.col, se.msg);
				return -1;
			}
			rule_tpl *nt = realloc(a->tpls, sizeof(rule_tpl) * (size_t)(a->ntpls + 1));
			if (nt == NULL) {
				sql_template_free(t);
				snprintf(err, errcap, "out of memory");
				return -1;
			}
			a->tpls = nt;
			a->tpls[a->ntpls].node = c;
			a->tpls[a->ntpls++].tpl = t;
		} else if (cJSON_IsObject(c) || cJSON_IsArray(c)) {
			if (collect_templates(a, c, ver, err, errcap) < 0)
				return -1;
		}
	}
	return 0;
}

static int
load_action(rule_action *a, cJSON *obj, enum sql_version ver, const char *what, char *err, size_t errcap)
{
	if (!cJSON_IsObject(obj) || obj->child == NULL || obj->child->next != NULL) {
		snprintf(err, errcap, "%s: each action is an object with exactly one action type", what);
		return -1;
	}
	cJSON *p = obj->child;
	snprintf(a->aws_key, sizeof(a->aws_key), "%s", p->string);
	const action_type *t = action_by_key(p->string);
	if (t == NULL) {
		snprintf(err, errcap, "%s: unknown action type '%s'", what, p->string);
		return -1;
	}
	if (!action_built(t)) {
		snprintf(err, errcap, "%s: action type '%s' has no sink in this build yet", what, p->string);
		return -1;
	}
	snprintf(a->type, sizeof(a->type), "%s", t->stage);
	if (!cJSON_IsObject(p)) {
		snprintf(err, errcap, "%s: %s parameters must be an object", what, p->string);
		return -1;
	}
	if (check_required(t, p, what, err, errcap) < 0 || check_action(t, p, what, err, errcap) < 0)
		return -1;
	if (strcmp(t->key, "iotEvents") == 0 && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "batchMode")) &&
	    cJSON_GetObjectItemCaseSensitive(p, "messageId")) {
		/* ACTIONS.md 2.10: each element of the batch gets its own id. */
		snprintf(err, errcap, "%s: iotEvents: a messageId may not be set when batchMode is true", what);
		return -1;
	}
	if (strcmp(a->type, "republish") == 0 && !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(p, "topic"))) {
		snprintf(err, errcap, "%s: republish needs a string 'topic'", what);
		return -1;
	}
	a->params = cJSON_Duplicate(p, 1);
	if (a->params == NULL) {
		snprintf(err, errcap, "out of memory");
		return -1;
	}
	if (collect_templates(a, a->params, ver, err, errcap) < 0)
		return -1;
	if (a->ntpls == 0)
		a->const_params = cJSON_PrintUnformatted(a->params);
	return 0;
}

static void
action_free(rule_action *a)
{
	for (int i = 0; i < a->ntpls; i++)
		sql_template_free(a->tpls[i].tpl);
	free(a->tpls);
	free(a->const_params);
	cJSON_Delete(a->params);
}

void
rule_free(rule *r)
{
	if (r == NULL)
		return;
	for (int i = 0; i < r->nactions; i++)
		action_free(&r->actions[i]);
	if (r->error_action) {
		action_free(r->error_action);
		free(r->error_action);
	}
	sql_free(r->stmt);
	free(r->sql_text);
	free(r->name);
	free(r->file);
	free(r);
}

rule *
rule_load_file(const char *path, char *err, size_t errcap)
{
	size_t len;
	char *text = read_file(path, &len, err, errcap);
	if (text == NULL)
		return NULL;
	const char *end = NULL;
	cJSON *doc = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	if (doc == NULL) {
		/* Say where the JSON broke: line and column of the parse stop. */
		const char *at = cJSON_GetErrorPtr();
		int line = 1, col = 1;
		for (const char *p = text; at && p < at && p < text + len; p++) {
			if (*p == '\n') {
				line++;
				col = 1;
			} else {
				col++;
			}
		}
		snprintf(err, errcap, "invalid JSON at line %d, column %d", line, col);
		free(text);
		return NULL;
	}
	free(text);
	rule *r = calloc(1, sizeof(*r));
	/* The three shapes ACTIONS.md §1.1 accepts: the bare payload;
	 * {"topicRulePayload": {...}} (every AWS action page's example, maybe
	 * with a sibling "ruleArn"), named by its file like the bare one; and
	 * GetTopicRule's {"rule": {"ruleName", ...}}, named by ruleName. */
	cJSON *payload = doc;
	cJSON *wrapped = cJSON_GetObjectItemCaseSensitive(doc, "rule");
	cJSON *trp = cJSON_GetObjectItemCaseSensitive(doc, "topicRulePayload");
	if (cJSON_IsObject(wrapped))
		payload = wrapped;
	else if (cJSON_IsObject(trp))
		payload = trp;
	r->file = strdup(path);
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	size_t bl = strlen(base);
	if (bl > 5 && strcmp(base + bl - 5, ".json") == 0)
		bl -= 5;
	r->name = strndup(base, bl);
	cJSON *rn = cJSON_GetObjectItemCaseSensitive(payload, "ruleName");
	if (cJSON_IsString(rn) && payload == wrapped) {
		free(r->name);
		r->name = strdup(rn->valuestring);
	}
	int name_ok = r->name[0] != 0 && strlen(r->name) <= 128;
	for (const char *p = r->name; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_')
			name_ok = 0;
	if (!name_ok) {
		snprintf(err, errcap, "rule name '%s' must be 1-128 characters of [a-zA-Z0-9_] (AWS's rule)", r->name);
		goto fail;
	}
	cJSON *sql = cJSON_GetObjectItemCaseSensitive(payload, "sql");
	if (!cJSON_IsString(sql)) {
		snprintf(err, errcap, "missing \"sql\" (a string)");
		goto fail;
	}
	r->sql_text = strdup(sql->valuestring);
	cJSON *ver = cJSON_GetObjectItemCaseSensitive(payload, "awsIotSqlVersion");
	enum sql_version v;
	if (sql_version_parse(cJSON_IsString(ver) ? ver->valuestring : NULL, &v) < 0) {
		snprintf(err, errcap, "unknown awsIotSqlVersion '%s'", ver->valuestring);
		goto fail;
	}
	sql_error se;
	r->stmt = sql_compile(sql->valuestring, v, &se);
	if (r->stmt == NULL) {
		snprintf(err, errcap, "sql: line %d, column %d: %s", se.line, se.col, se.msg);
		goto fail;
	}
	if (sql_stmt_warning(r->stmt))
		log_warn("rule %s (%s): %s", r->name, path, sql_stmt_warning(r->stmt));
	if (cJSON_IsString(ver) && strcmp(ver->valuestring, "beta") == 0)
		log_warn("rule %s (%s): awsIotSqlVersion 'beta' is evaluated as 2016-03-23 (SQL.md §2)", r->name, path);
	cJSON *dis = cJSON_GetObjectItemCaseSensitive(payload, "ruleDisabled");
	r->disabled = cJSON_IsTrue(dis);
	cJSON *acts = cJSON_GetObjectItemCaseSensitive(payload, "actions");
	if (acts && !cJSON_IsArray(acts)) {
		snprintf(err, errcap, "\"actions\" must be an array");
		goto fail;
	}
	if (cJSON_GetArraySize(acts) > RULE_MAX_ACTIONS) {
		snprintf(err, errcap, "%d actions: AWS allows at most %d per rule", cJSON_GetArraySize(acts), RULE_MAX_ACTIONS);
		goto fail;
	}
	cJSON *a;
	cJSON_ArrayForEach(a, acts) {
		char what[32];
		snprintf(what, sizeof(what), "actions[%d]", r->nactions);
		if (load_action(&r->actions[r->nactions], a, v, what, err, errcap) < 0) {
			r->nactions++;
			goto fail;
		}
		r->nactions++;
	}
	cJSON *ea = cJSON_GetObjectItemCaseSensitive(payload, "errorAction");
	if (ea) {
		r->error_action = calloc(1, sizeof(rule_action));
		if (load_action(r->error_action, ea, v, "errorAction", err, errcap) < 0)
			goto fail;
	}
	cJSON_Delete(doc);
	return r;
fail:
	cJSON_Delete(doc);
	rule_free(r);
	return NULL;
}

ruleset *
ruleset_load(const char *dir, char *err, size_t errcap)
{
	DIR *d = opendir(dir);
	if (d == NULL) {
		snprintf(err, errcap, "rules directory %s: %s", dir, strerror(errno));
		return NULL;
	}
	ruleset *rs = calloc(1, sizeof(*rs));
	rs->ix = topic_index_new();
	struct dirent *de;
	int cap = 0;
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0 || de->d_name[0] == '.')
			continue;
		char path[4096], why[512], kv[4400];
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		rule *r = rule_load_file(path, why, sizeof(why));
		if (r == NULL) {
			log_kv(LOG_ERROR, (snprintf(kv, sizeof(kv), "\"file\":%s", log_json_str((char[4200]){0}, 4200, path)), kv),
			    "rule %s rejected: %s", path, why);
			continue;
		}
		for (int i = 0; i < rs->n; i++)
			if (strcmp(rs->rules[i]->name, r->name) == 0) {
				log_error("rule %s rejected: rule name %s is already used by %s", path, r->name, rs->rules[i]->file);
				rule_free(r);
				r = NULL;
				break;
			}
		if (r == NULL)
			continue;
		if (rs->n == cap) {
			cap = cap ? cap * 2 : 16;
			rs->rules = realloc(rs->rules, sizeof(rule *) * (size_t)cap);
		}
		rs->rules[rs->n] = r;
		if (!r->disabled && sql_stmt_from(r->stmt))
			topic_index_add(rs->ix, sql_stmt_from(r->stmt), rs->n);
		rs->n++;
	}
	closedir(d);
	return rs;
}

void
ruleset_free(ruleset *rs)
{
	if (rs == NULL)
		return;
	for (int i = 0; i < rs->n; i++)
		rule_free(rs->rules[i]);
	free(rs->rules);
	topic_index_free(rs->ix);
	free(rs);
}

void
ruleset_filters(const ruleset *rs, buf *out)
{
	for (int i = 0; i < rs->n; i++) {
		const char *f = rs->rules[i]->disabled ? NULL : sql_stmt_from(rs->rules[i]->stmt);
		if (f == NULL)
			continue;
		int dup = 0;
		for (int k = 0; k < i && !dup; k++) {
			const char *g = rs->rules[k]->disabled ? NULL : sql_stmt_from(rs->rules[k]->stmt);
			dup = g && strcmp(f, g) == 0;
		}
		if (!dup) {
			buf_adds(out, f);
			buf_addc(out, '\n');
		}
	}
}

/* Writes node as JSON, with each template node replaced by its rendered
 * text.  The rule stays untouched, so threads can share it. */
static void
write_params(const rule_action *a, const cJSON *n, const sql_stmt *stmt, sql_ctx *c, buf *out)
{
	if (cJSON_IsObject(n) || cJSON_IsArray(n)) {
		int obj = cJSON_IsObject(n);
		buf_addc(out, obj ? '{' : '[');
		for (const cJSON *k = n->child; k; k = k->next) {
			if (k != n->child)
				buf_addc(out, ',');
			if (obj) {
				buf_add_json_str(out, k->string, strlen(k->string));
				buf_addc(out, ':');
			}
			write_params(a, k, stmt, c, out);
		}
		buf_addc(out, obj ? '}' : ']');
		return;
	}
	if (cJSON_IsString(n)) {
		for (int i = 0; i < a->ntpls; i++)
			if (a->tpls[i].node == n) {
				buf tmp = BUF_ZERO;
				sql_template_render(a->tpls[i].tpl, stmt, c, &tmp);
				buf_add_json_str(out, tmp.data ? tmp.data : "", tmp.len);
				buf_free(&tmp);
				return;
			}
		buf_add_json_str(out, n->valuestring, strlen(n->valuestring));
		return;
	}
	char *s = cJSON_PrintUnformatted(n);
	if (s) {
		buf_adds(out, s);
		free(s);
	}
}

void
rule_action_params(const rule_action *a, const sql_stmt *stmt, sql_ctx *c, buf *out)
{
	if (a->const_params) {
		buf_adds(out, a->const_params);
		return;
	}
	write_params(a, a->params, stmt, c, out);
}
