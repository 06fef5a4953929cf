/* rules: loading AWS topic rules from a directory (DESIGN.md "Rules").
 *
 * One rule per file; the file name without ".json" is the rule name; the
 * content is AWS's topicRulePayload JSON (what `aws iot create-topic-rule
 * --topic-rule-payload` takes) or `aws iot get-topic-rule` output
 * ({"rule": {...}}).  A rule is compiled once: its SQL, its topic filter,
 * and every action parameter that holds a ${} substitution template.
 *
 * Ownership: a ruleset owns its rules; ruleset_free frees everything.
 * A loaded ruleset is immutable and may be shared by threads (each with
 * its own sql_ctx). */
#ifndef IOTRULES_RULES_H
#define IOTRULES_RULES_H

#include <cjson/cJSON.h>

#include "common/buf.h"
#include "evaluate/lib/topic.h"
#include "evaluate/sql/sql.h"

#define RULE_MAX_ACTIONS 10

typedef struct rule_tpl {
	cJSON *node;          /* the string node in params holding the template */
	sql_template *tpl;
} rule_tpl;

typedef struct rule_action {
	char type[32];        /* its sink's stage (common/actions.def): "dynamodbv2" */
	char aws_key[32];     /* the key as written in the rule ("dynamoDBv2") */
	cJSON *params;        /* owned */
	char *const_params;   /* params printed once when there is no template */
	rule_tpl *tpls;
	int ntpls;
} rule_action;

typedef struct rule {
	char *name;
	char *file;
	char *sql_text;
	sql_stmt *stmt;
	int disabled;
	int nactions;
	rule_action actions[RULE_MAX_ACTIONS];
	rule_action *error_action;   /* NULL if none */
} rule;

typedef struct ruleset {
	rule **rules;
	int n;
	topic_index *ix;      /* FROM filters → rule index */
} ruleset;

/* What the loader checks actions against beyond the rule files (set
 * before loading; borrowed, must outlive every load): the MQTT version
 * the pipeline speaks (3: republish headers are dropped, with a warning)
 * and the config's destinations (an http URL that no ENABLED destination
 * covers loads with a warning; NULL: none configured). */
struct dest_list;
typedef struct rules_context {
	int mqtt_version;
	const struct dest_list *dests;
} rules_context;
void rules_set_context(const rules_context *c);

/* Loads one rule file.  NULL on error with "reason" in err (SQL errors
 * carry "line:column"). */
rule *rule_load_file(const char *path, char *err, size_t errcap);
void rule_free(rule *r);

/* Action types (rule JSON keys) this build can deliver (its sink is
 * built: common/actions.h). */
int rule_action_known(const char *type);

/* Loads every *.json in dir.  Bad rules are logged (file and reason)
 * and skipped; the others load.  NULL only if dir cannot be read (err
 * says why). */
ruleset *ruleset_load(const char *dir, char *err, size_t errcap);
void ruleset_free(ruleset *rs);

/* Appends the union of the enabled rules' topic filters, one per line. */
void ruleset_filters(const ruleset *rs, buf *out);

/* Resolves an action's parameters for the ctx's current message: the
 * params JSON with every template replaced by its text (§11).  stmt gives
 * the SET variables. */
void rule_action_params(const rule_action *a, const sql_stmt *stmt, sql_ctx *c, buf *out);

#endif
