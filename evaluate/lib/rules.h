/* rules: loading AWS topic rules from files and directories (DESIGN.md
 * "Rules", docs/rules.md).
 *
 * A rule file holds one of the forms users have (RULE_FORM_*): the bare
 * topicRulePayload (what `aws iot create-topic-rule --topic-rule-payload`
 * takes), named by its file; `--cli-input-json` input {"ruleName",
 * "topicRulePayload"}; `aws iot get-topic-rule` output {"ruleArn",
 * "rule": {...}}; a CloudFormation AWS::IoT::TopicRule resource or a
 * whole template (JSON), one rule per resource, named by RuleName or the
 * logical id, CloudFormation's PascalCase keys converted to the API's.
 * Every key is checked against AWS's schema (evaluate/lib/ruleschema.h):
 * an unknown key, a wrong type or an unresolved CloudFormation intrinsic
 * function refuses the whole file, with the key path and the cause.  A
 * rule is compiled once: its SQL, its topic filter, and every action
 * parameter that holds a ${} substitution template.
 *
 * Ownership: a rule_file owns its rules until they are added to a
 * ruleset; a ruleset owns its rules; the *_free functions free
 * everything.  A loaded ruleset is immutable and may be shared by
 * threads (each with its own sql_ctx). */
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
	int n, cap;
	topic_index *ix;      /* FROM filters → rule index */
	char **refused;       /* "FILE: reason" per file refused, in load order */
	int nrefused;
} ruleset;

/* The forms of a rule file (rule_file.form). */
#define RULE_FORM_PAYLOAD "topicRulePayload"
#define RULE_FORM_CREATE  "create-topic-rule input"
#define RULE_FORM_GET     "get-topic-rule output"
#define RULE_FORM_CFN_RES "CloudFormation resource"
#define RULE_FORM_CFN_TPL "CloudFormation template"

/* The rules of one file: one, or one per AWS::IoT::TopicRule resource of
 * a CloudFormation template. */
typedef struct rule_file {
	const char *form;     /* a RULE_FORM_* (static) */
	rule **rules;         /* owned */
	int n;
} rule_file;

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

/* Loads one rule file: all its rules, or none (a template with one bad
 * rule is refused whole, as CloudFormation refuses the stack).  0, or -1
 * with "reason" in err: a key path and the cause ("actions[0].republish.
 * qoss: unknown key (did you mean 'qos'?)"), SQL errors with
 * "line:column"; a file of no accepted form says which forms are. */
int rule_file_load(const char *path, rule_file *out, char *err, size_t errcap);
void rule_file_free(rule_file *f);

/* Loads a file of exactly one rule (rule_file_load; a template of
 * several rules is an error here).  NULL on error with "reason" in err. */
rule *rule_load_file(const char *path, char *err, size_t errcap);
void rule_free(rule *r);

/* Action types (rule JSON keys) this build can deliver (its sink is
 * built: common/actions.h). */
int rule_action_known(const char *type);

/* The rule files of dir, as every stage reads them: each *.json whose
 * name does not start with '.', in byte order of their names (the order
 * decides which of two rules of one name is refused).  *paths ("dir/x.
 * json" each) is the caller's: rules_dir_list_free.  0, or -1 with err
 * ("rules directory DIR: cause"). */
int rules_dir_list(const char *dir, char ***paths, int *n, char *err, size_t errcap);
void rules_dir_list_free(char **paths, int n);

/* An empty ruleset, for ruleset_add_file. */
ruleset *ruleset_new(void);

/* Adds the rules of the file at path (rule_file_load), unless one of them
 * has the name of a rule already in rs: then none is added.  Returns the
 * number added (the last ones of rs->rules), *form set to the file's
 * form; or -1 with the reason in err (nothing added, rs->refused not
 * touched). */
int ruleset_add_file(ruleset *rs, const char *path, const char **form, char *err, size_t errcap);

/* Loads every rule file of dir (rules_dir_list) with ruleset_add_file.
 * A refused file is logged (file and reason), listed in rs->refused and
 * skipped; the others load.  NULL only if dir cannot be read (err says
 * why). */
ruleset *ruleset_load(const char *dir, char *err, size_t errcap);
void ruleset_free(ruleset *rs);

/* Appends the union of the enabled rules' topic filters, one per line. */
void ruleset_filters(const ruleset *rs, buf *out);

/* Resolves an action's parameters for the ctx's current message: the
 * params JSON with every template replaced by its text (§11).  stmt gives
 * the SET variables. */
void rule_action_params(const rule_action *a, const sql_stmt *stmt, sql_ctx *c, buf *out);

#endif
