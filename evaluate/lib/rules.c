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
#include "common/xalloc.h"
#include "evaluate/lib/ruleschema.h"
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
	buf b = BUF_ZERO;
	/* AWS limits the whole rule payload to 256 KB. */
	if (buf_read_file(&b, path, 256 * 1024) < 0) {
		if (errno == EFBIG)
			snprintf(err, errcap, "rule is larger than 256 KB");
		else
			snprintf(err, errcap, "cannot read: %s", strerror(errno));
		buf_free(&b);
		return NULL;
	}
	*len = b.len;
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

/* The action type key names in the file: exact API key, or (cfn) its
 * CloudFormation spelling. */
static const action_type *
action_named(const char *key, int cfn)
{
	const action_type *t;
	for (int i = 0; (t = action_at(i)) != NULL; i++) {
		char nm[64];
		ruleschema_spell(t->key, cfn, nm, sizeof(nm));
		if (strcmp(nm, key) == 0)
			return t;
	}
	return NULL;
}

static int
unknown_action(const char *key, int cfn, const char *what, char *err, size_t errcap)
{
	const char *names[64];
	const action_type *t;
	int n = 0;
	for (int i = 0; (t = action_at(i)) != NULL && n < 64; i++)
		names[n++] = t->key;
	const char *near = ruleschema_closest(key, names, n, cfn);
	char nm[64] = "";
	if (near)
		ruleschema_spell(near, cfn, nm, sizeof(nm));
	snprintf(err, errcap, "%s: unknown action type '%s'%s%s%s", what, key, near ? " (did you mean '" : "", nm,
	    near ? "'?)" : "");
	return -1;
}

/* what: the action's key path in the file ("actions[0]"). */
static int
load_action(rule_action *a, cJSON *obj, enum sql_version ver, int cfn, const char *what, char *err, size_t errcap)
{
	const char *fn = cfn ? ruleschema_intrinsic(obj) : NULL;
	if (fn) {
		snprintf(err, errcap, "%s: %s is a CloudFormation intrinsic function: iotrules does not resolve them; "
		    "write the value itself", what, fn);
		return -1;
	}
	if (!cJSON_IsObject(obj) || obj->child == NULL || obj->child->next != NULL) {
		snprintf(err, errcap, "%s: each action is an object with exactly one action type", what);
		return -1;
	}
	cJSON *p = obj->child;
	const action_type *t = action_named(p->string, cfn);
	if (t == NULL)
		return unknown_action(p->string, cfn, what, err, errcap);
	if (!action_built(t)) {
		snprintf(err, errcap, "%s: action type '%s' has no sink in this build yet", what, p->string);
		return -1;
	}
	snprintf(a->aws_key, sizeof(a->aws_key), "%s", t->key);
	snprintf(a->type, sizeof(a->type), "%s", t->stage);
	char at[512];
	snprintf(at, sizeof(at), "%s.%s", what, p->string);
	const rs_shape *shape = ruleschema_action(t->key);
	if (shape == NULL) {
		snprintf(err, errcap, "%s: no schema for action type '%s'", what, t->key);
		return -1;
	}
	if (ruleschema_check(p, shape, cfn, at, err, errcap) < 0)
		return -1;
	if (cfn && ruleschema_rename(p, t->key) < 0) {
		snprintf(err, errcap, "out of memory");
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

/* The shapes of the levels above the actions: which keys each form's
 * objects take ('x': checked where it is read).  The API forms' keys are
 * AWS's CLI's; CloudFormation's are its resource and template keys. */
static const rs_shape ANY = {'x', -1, -1, NULL, NULL, NULL};
static const rs_shape STR = {'s', -1, -1, NULL, NULL, NULL};
static const rs_shape BOOL = {'b', -1, -1, NULL, NULL, NULL};
static const rs_shape SQLVER = {'s', -1, -1, "2015-10-08 2016-03-23 beta", NULL, NULL};
#define PAYLOAD_MEMBERS \
	{"sql", &STR, 0}, {"description", &STR, 0}, {"actions", &ANY, 0}, {"ruleDisabled", &BOOL, 0}, \
	{"awsIotSqlVersion", &SQLVER, 0}, {"errorAction", &ANY, 0}
static const rs_member PAYLOAD_M[] = {PAYLOAD_MEMBERS, {NULL, NULL, 0}};
static const rs_shape PAYLOAD = {'S', -1, -1, NULL, PAYLOAD_M, NULL};
/* get-topic-rule's "rule": the payload, its name and when it was made. */
static const rs_member GOT_M[] = {PAYLOAD_MEMBERS, {"ruleName", &STR, 0}, {"createdAt", &ANY, 0}, {NULL, NULL, 0}};
static const rs_shape GOT = {'S', -1, -1, NULL, GOT_M, NULL};
static const rs_member GET_M[] = {{"ruleArn", &STR, 0}, {"rule", &ANY, 0}, {NULL, NULL, 0}};
static const rs_shape GET = {'S', -1, -1, NULL, GET_M, NULL};
/* create-topic-rule's input (its --generate-cli-skeleton), and the
 * {"topicRulePayload"} of AWS's action pages, some with a ruleArn. */
static const rs_member CREATE_M[] = {{"ruleName", &STR, 0}, {"topicRulePayload", &ANY, 0}, {"tags", &STR, 0},
    {"ruleArn", &STR, 0}, {NULL, NULL, 0}};
static const rs_shape CREATE = {'S', -1, -1, NULL, CREATE_M, NULL};
/* AWS::IoT::TopicRule's Properties, in the API's spelling (cfn=1). */
static const rs_member PROPS_M[] = {{"ruleName", &STR, 0}, {"topicRulePayload", &ANY, 0}, {"tags", &ANY, 0},
    {NULL, NULL, 0}};
static const rs_shape PROPS = {'S', -1, -1, NULL, PROPS_M, NULL};
static const rs_member RESOURCE_M[] = {{"Type", &STR, 0}, {"Properties", &ANY, 0}, {"DependsOn", &ANY, 0},
    {"Condition", &ANY, 0}, {"DeletionPolicy", &ANY, 0}, {"UpdateReplacePolicy", &ANY, 0},
    {"UpdatePolicy", &ANY, 0}, {"CreationPolicy", &ANY, 0}, {"Metadata", &ANY, 0}, {NULL, NULL, 0}};
static const rs_shape RESOURCE = {'S', -1, -1, NULL, RESOURCE_M, NULL};
static const rs_member TEMPLATE_M[] = {{"AWSTemplateFormatVersion", &STR, 0}, {"Description", &STR, 0},
    {"Metadata", &ANY, 0}, {"Parameters", &ANY, 0}, {"Rules", &ANY, 0}, {"Mappings", &ANY, 0},
    {"Conditions", &ANY, 0}, {"Transform", &ANY, 0}, {"Resources", &ANY, 0}, {"Outputs", &ANY, 0},
    {NULL, NULL, 0}};
static const rs_shape TEMPLATE = {'S', -1, -1, NULL, TEMPLATE_M, NULL};

#define FORMS_ACCEPTED "a rule file is one of: a topicRulePayload {\"sql\", \"actions\", ...}; " \
	"{\"ruleName\", \"topicRulePayload\"} (aws iot create-topic-rule --cli-input-json); " \
	"{\"ruleArn\", \"rule\"} (aws iot get-topic-rule output); a CloudFormation AWS::IoT::TopicRule " \
	"resource {\"Type\", \"Properties\"} or a template {\"Resources\"} (JSON)"

/* Where a rule's name comes from, for the error when it is not valid. */
static int
check_name(const char *name, const char *from, char *err, size_t errcap)
{
	int ok = name[0] != 0 && strlen(name) <= 128;
	for (const char *p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_')
			ok = 0;
	if (!ok)
		snprintf(err, errcap, "rule name '%.200s' (%s) must be 1-128 characters of [a-zA-Z0-9_] (AWS's rule)",
		    name, from);
	return ok ? 0 : -1;
}

/* Compiles the rule of payload (checked against shape; pre: its key path
 * with a trailing '.', or "") into a new rule of f named name. */
static int
add_rule(rule_file *f, const char *path, cJSON *payload, const rs_shape *shape, int cfn, const char *pre,
    const char *name, const char *name_from, char *err, size_t errcap)
{
	char at[512];
	snprintf(at, sizeof(at), "%.*s", pre[0] ? (int)strlen(pre) - 1 : 0, pre);
	if (!cJSON_IsObject(payload)) {
		snprintf(err, errcap, "%s: must be an object ({\"sql\", \"actions\", ...})", at[0] ? at : "the file");
		return -1;
	}
	if (check_name(name, name_from, err, errcap) < 0 || ruleschema_check(payload, shape, cfn, at, err, errcap) < 0)
		return -1;
	for (int i = 0; i < f->n; i++)
		if (strcmp(f->rules[i]->name, name) == 0) {
			snprintf(err, errcap, "%.100s: rule name %s is there twice in this file", at, name);
			return -1;
		}
	rule *r = xcalloc(sizeof(*r));
	r->file = xmust(strdup(path));
	r->name = xmust(strdup(name));
	rule **nr = xmust(realloc(f->rules, sizeof(rule *) * (size_t)(f->n + 1)));
	f->rules = nr;
	f->rules[f->n++] = r;
	cJSON *sql = cJSON_GetObjectItemCaseSensitive(payload, "sql");
	if (sql == NULL) {
		snprintf(err, errcap, "%smissing \"%s\" (a string)", pre, cfn ? "Sql" : "sql");
		return -1;
	}
	r->sql_text = xmust(strdup(sql->valuestring));
	cJSON *ver = cJSON_GetObjectItemCaseSensitive(payload, "awsIotSqlVersion");
	enum sql_version v;
	if (sql_version_parse(ver ? ver->valuestring : NULL, &v) < 0) {
		snprintf(err, errcap, "%sunknown awsIotSqlVersion '%s'", pre, ver->valuestring);
		return -1;
	}
	sql_error se;
	r->stmt = sql_compile(sql->valuestring, v, &se);
	if (r->stmt == NULL) {
		snprintf(err, errcap, "%ssql: line %d, column %d: %s", pre, se.line, se.col, se.msg);
		return -1;
	}
	if (sql_stmt_warning(r->stmt))
		log_warn("rule %s (%s): %s", r->name, path, sql_stmt_warning(r->stmt));
	if (ver && strcmp(ver->valuestring, "beta") == 0)
		log_warn("rule %s (%s): awsIotSqlVersion 'beta' is evaluated as 2016-03-23 (SQL.md §2)", r->name, path);
	r->disabled = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(payload, "ruleDisabled"));
	cJSON *acts = cJSON_GetObjectItemCaseSensitive(payload, "actions");
	const char *an = cfn ? "Actions" : "actions";
	if (acts && !cJSON_IsArray(acts)) {
		snprintf(err, errcap, "%s%s: must be a list ([...])", pre, an);
		return -1;
	}
	if (cJSON_GetArraySize(acts) > RULE_MAX_ACTIONS) {
		snprintf(err, errcap, "%s%s: %d actions: AWS allows at most %d per rule", pre, an, cJSON_GetArraySize(acts),
		    RULE_MAX_ACTIONS);
		return -1;
	}
	cJSON *a;
	cJSON_ArrayForEach(a, acts) {
		char what[600];
		snprintf(what, sizeof(what), "%s%s[%d]", pre, an, r->nactions);
		r->nactions++;
		if (load_action(&r->actions[r->nactions - 1], a, v, cfn, what, err, errcap) < 0)
			return -1;
	}
	cJSON *ea = cJSON_GetObjectItemCaseSensitive(payload, "errorAction");
	if (ea) {
		char what[600];
		snprintf(what, sizeof(what), "%s%s", pre, cfn ? "ErrorAction" : "errorAction");
		r->error_action = xcalloc(sizeof(rule_action));
		if (load_action(r->error_action, ea, v, cfn, what, err, errcap) < 0)
			return -1;
	}
	return 0;
}

/* A CloudFormation AWS::IoT::TopicRule resource: at is its key path
 * ("" or "Resources.ID"), def_name/def_from the name when it has no
 * RuleName (the logical id, or the file's). */
static int
add_cfn_rule(rule_file *f, const char *path, cJSON *res, const char *at, const char *def_name, const char *def_from,
    char *err, size_t errcap)
{
	char pre[512];
	snprintf(pre, sizeof(pre), "%s%s", at, at[0] ? "." : "");
	if (ruleschema_check(res, &RESOURCE, 0, at, err, errcap) < 0)
		return -1;
	if (cJSON_GetObjectItemCaseSensitive(res, "Condition")) {
		/* Whether the rule exists would depend on the stack's parameters. */
		snprintf(err, errcap, "%sCondition: a resource with a Condition is refused: iotrules does not evaluate "
		    "CloudFormation conditions", pre);
		return -1;
	}
	cJSON *props = cJSON_GetObjectItemCaseSensitive(res, "Properties");
	char ppath[600];
	snprintf(ppath, sizeof(ppath), "%sProperties", pre);
	if (!cJSON_IsObject(props)) {
		snprintf(err, errcap, "%s: an AWS::IoT::TopicRule needs Properties (an object)", ppath);
		return -1;
	}
	if (ruleschema_check(props, &PROPS, 1, ppath, err, errcap) < 0)
		return -1;
	cJSON *rn = cJSON_GetObjectItemCaseSensitive(props, "ruleName");
	cJSON *trp = cJSON_GetObjectItemCaseSensitive(props, "topicRulePayload");
	char ppre[700], from[700];
	snprintf(ppre, sizeof(ppre), "%s.TopicRulePayload.", ppath);
	if (trp == NULL) {
		snprintf(err, errcap, "%s: needs TopicRulePayload", ppath);
		return -1;
	}
	snprintf(from, sizeof(from), "%s.RuleName", ppath);
	return add_rule(f, path, trp, &PAYLOAD, 1, ppre, rn ? rn->valuestring : def_name, rn ? from : def_from, err,
	    errcap);
}

static int
load_template(rule_file *f, const char *path, cJSON *doc, char *err, size_t errcap)
{
	if (ruleschema_check(doc, &TEMPLATE, 0, "", err, errcap) < 0)
		return -1;
	if (cJSON_GetObjectItemCaseSensitive(doc, "Transform")) {
		/* A macro (AWS::Serverless, AWS::Include) rewrites the template
		 * in AWS: what it would make of the rules is unknown here. */
		snprintf(err, errcap, "Transform: a template with a Transform is refused: iotrules does not run "
		    "CloudFormation macros");
		return -1;
	}
	cJSON *res = cJSON_GetObjectItemCaseSensitive(doc, "Resources"), *r;
	if (!cJSON_IsObject(res)) {
		snprintf(err, errcap, "Resources: a template needs Resources (an object)");
		return -1;
	}
	cJSON_ArrayForEach(r, res) {
		char at[300], from[400];
		snprintf(at, sizeof(at), "Resources.%.200s", r->string);
		const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "Type"));
		if (type == NULL) {
			snprintf(err, errcap, "%s: a resource needs a Type (a string)", at);
			return -1;
		}
		/* The other resources (the role, the topic, the table the rule
		 * uses) are AWS's to create: nothing for iotrules to run. */
		if (strcmp(type, "AWS::IoT::TopicRule") != 0)
			continue;
		snprintf(from, sizeof(from), "the logical id %s", at);
		if (add_cfn_rule(f, path, r, at, r->string, from, err, errcap) < 0)
			return -1;
	}
	if (f->n == 0) {
		snprintf(err, errcap, "Resources: no AWS::IoT::TopicRule resource in this template");
		return -1;
	}
	return 0;
}

static cJSON *
parse_file(const char *path, char *err, size_t errcap)
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
		/* Not even the start of a JSON object: likely another format (a
		 * YAML template), so say what is read. */
		size_t lead = strspn(text, " \t\r\n");
		snprintf(err, errcap, "invalid JSON at line %d, column %d%s%s", line, col,
		    lead < len && text[lead] == '{' ? "" : "; ", lead < len && text[lead] == '{' ? "" :
		    FORMS_ACCEPTED ", JSON only (convert a YAML template to JSON)");
	}
	free(text);
	return doc;
}

/* The form of doc, from the keys that only it has; NULL: none. */
static const char *
form_of(const cJSON *doc)
{
	if (!cJSON_IsObject(doc))
		return NULL;
	if (cJSON_GetObjectItemCaseSensitive(doc, "Resources") ||
	    cJSON_GetObjectItemCaseSensitive(doc, "AWSTemplateFormatVersion"))
		return RULE_FORM_CFN_TPL;
	if (cJSON_GetObjectItemCaseSensitive(doc, "Type") || cJSON_GetObjectItemCaseSensitive(doc, "Properties"))
		return RULE_FORM_CFN_RES;
	if (cJSON_GetObjectItemCaseSensitive(doc, "rule"))
		return RULE_FORM_GET;
	if (cJSON_GetObjectItemCaseSensitive(doc, "topicRulePayload"))
		return RULE_FORM_CREATE;
	for (const rs_member *m = PAYLOAD_M; m->name; m++)
		if (cJSON_GetObjectItemCaseSensitive(doc, m->name))
			return RULE_FORM_PAYLOAD;
	return NULL;
}

void
rule_file_free(rule_file *f)
{
	for (int i = 0; i < f->n; i++)
		rule_free(f->rules[i]);
	free(f->rules);
	f->rules = NULL;
	f->n = 0;
}

int
rule_file_load(const char *path, rule_file *f, char *err, size_t errcap)
{
	memset(f, 0, sizeof(*f));
	cJSON *doc = parse_file(path, err, errcap);
	if (doc == NULL)
		return -1;
	/* The name a rule gets when its form does not name it. */
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	size_t bl = strlen(base);
	if (bl > 5 && strcmp(base + bl - 5, ".json") == 0)
		bl -= 5;
	char fname[256], ffrom[400];
	snprintf(fname, sizeof(fname), "%.*s", (int)bl, base);
	snprintf(ffrom, sizeof(ffrom), "from the file name %.300s", base);
	int rc = -1;
	f->form = form_of(doc);
	if (f->form == NULL) {
		const char *k = cJSON_IsObject(doc) && doc->child ? doc->child->string : NULL;
		static const char *const tops[] = {"sql", "actions", "topicRulePayload", "ruleName", "rule", "Resources",
		    "Type", "Properties", "awsIotSqlVersion", "ruleDisabled", "errorAction", "description"};
		const char *near = k ? ruleschema_closest(k, tops, (int)(sizeof(tops) / sizeof(tops[0])), 0) : NULL;
		if (near)
			snprintf(err, errcap, "%s: unknown key (did you mean '%s'?); %s", k, near, FORMS_ACCEPTED);
		else
			snprintf(err, errcap, "not a rule: %s", FORMS_ACCEPTED);
	} else if (strcmp(f->form, RULE_FORM_PAYLOAD) == 0) {
		rc = add_rule(f, path, doc, &PAYLOAD, 0, "", fname, ffrom, err, errcap);
	} else if (strcmp(f->form, RULE_FORM_CREATE) == 0) {
		if (ruleschema_check(doc, &CREATE, 0, "", err, errcap) == 0) {
			cJSON *rn = cJSON_GetObjectItemCaseSensitive(doc, "ruleName");
			rc = add_rule(f, path, cJSON_GetObjectItemCaseSensitive(doc, "topicRulePayload"), &PAYLOAD, 0,
			    "topicRulePayload.", rn ? rn->valuestring : fname, rn ? "ruleName" : ffrom, err, errcap);
		}
	} else if (strcmp(f->form, RULE_FORM_GET) == 0) {
		cJSON *r = cJSON_GetObjectItemCaseSensitive(doc, "rule");
		cJSON *rn = cJSON_GetObjectItemCaseSensitive(r, "ruleName");
		if (ruleschema_check(doc, &GET, 0, "", err, errcap) == 0)
			rc = add_rule(f, path, r, &GOT, 0, "rule.", cJSON_IsString(rn) ? rn->valuestring : fname,
			    cJSON_IsString(rn) ? "rule.ruleName" : ffrom, err, errcap);
	} else if (strcmp(f->form, RULE_FORM_CFN_RES) == 0) {
		const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(doc, "Type"));
		if (type == NULL || strcmp(type, "AWS::IoT::TopicRule") != 0)
			snprintf(err, errcap, "Type: '%.100s' is not AWS::IoT::TopicRule; %s", type ? type : "(none)",
			    FORMS_ACCEPTED);
		else
			rc = add_cfn_rule(f, path, doc, "", fname, ffrom, err, errcap);
	} else {
		rc = load_template(f, path, doc, err, errcap);
	}
	cJSON_Delete(doc);
	if (rc < 0) {
		const char *form = f->form;
		rule_file_free(f);
		f->form = form;
	}
	return rc;
}

rule *
rule_load_file(const char *path, char *err, size_t errcap)
{
	rule_file f;
	if (rule_file_load(path, &f, err, errcap) < 0)
		return NULL;
	if (f.n != 1) {
		snprintf(err, errcap, "a %s of %d rules: load it with a rules directory or rulecheck", f.form, f.n);
		rule_file_free(&f);
		return NULL;
	}
	rule *r = f.rules[0];
	free(f.rules);
	return r;
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
rules_dir_list(const char *dir, char ***paths, int *n, char *err, size_t errcap)
{
	*paths = NULL;
	*n = 0;
	DIR *d = opendir(dir);
	if (d == NULL) {
		snprintf(err, errcap, "rules directory %s: %s", dir, strerror(errno));
		return -1;
	}
	struct dirent *de;
	int cap = 0;
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		if (l < 6 || strcmp(de->d_name + l - 5, ".json") != 0 || de->d_name[0] == '.')
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			*paths = xmust(realloc(*paths, sizeof(char *) * (size_t)cap));
		}
		char *p = xmust(malloc(strlen(dir) + l + 2));
		sprintf(p, "%s/%s", dir, de->d_name);
		(*paths)[(*n)++] = p;
	}
	closedir(d);
	if (*n > 1)
		qsort(*paths, (size_t)*n, sizeof(char *), by_name);
	return 0;
}

void
rules_dir_list_free(char **paths, int n)
{
	for (int i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
}

ruleset *
ruleset_new(void)
{
	ruleset *rs = xcalloc(sizeof(*rs));
	rs->ix = xmust(topic_index_new());
	return rs;
}

int
ruleset_add_file(ruleset *rs, const char *path, const char **form, char *err, size_t errcap)
{
	rule_file f;
	if (rule_file_load(path, &f, err, errcap) < 0)
		return -1;
	for (int k = 0; k < f.n; k++)
		for (int i = 0; i < rs->n; i++)
			if (strcmp(rs->rules[i]->name, f.rules[k]->name) == 0) {
				snprintf(err, errcap, "rule name %s is already used by %s", f.rules[k]->name, rs->rules[i]->file);
				rule_file_free(&f);
				return -1;
			}
	for (int k = 0; k < f.n; k++) {
		rule *r = f.rules[k];
		if (rs->n == rs->cap) {
			rs->cap = rs->cap ? rs->cap * 2 : 16;
			rs->rules = xmust(realloc(rs->rules, sizeof(rule *) * (size_t)rs->cap));
		}
		rs->rules[rs->n] = r;
		if (!r->disabled && sql_stmt_from(r->stmt))
			topic_index_add(rs->ix, sql_stmt_from(r->stmt), rs->n);
		rs->n++;
	}
	if (form)
		*form = f.form;
	free(f.rules);
	return f.n;
}

ruleset *
ruleset_load(const char *dir, char *err, size_t errcap)
{
	char **paths;
	int np;
	if (rules_dir_list(dir, &paths, &np, err, errcap) < 0)
		return NULL;
	ruleset *rs = ruleset_new();
	for (int i = 0; i < np; i++) {
		char why[1024], kv[4400];
		if (ruleset_add_file(rs, paths[i], NULL, why, sizeof(why)) >= 0)
			continue;
		log_kv(LOG_ERROR, (snprintf(kv, sizeof(kv), "\"file\":%s", log_json_str((char[4200]){0}, 4200, paths[i])), kv),
		    "rule %s rejected: %s", paths[i], why);
		rs->refused = xmust(realloc(rs->refused, sizeof(char *) * (size_t)(rs->nrefused + 1)));
		char *line = xmust(malloc(strlen(paths[i]) + strlen(why) + 3));
		sprintf(line, "%s: %s", paths[i], why);
		rs->refused[rs->nrefused++] = line;
	}
	rules_dir_list_free(paths, np);
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
	for (int i = 0; i < rs->nrefused; i++)
		free(rs->refused[i]);
	free(rs->refused);
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
