/* sql: AWS IoT SQL statements and substitution templates (spec/SQL.md).
 *
 * Compile once (sql_compile, sql_template_compile), run many times against
 * messages.  A compiled statement or template is immutable and may be run
 * from several threads, each with its own sql_ctx.
 *
 * Ownership: sql_compile returns a statement the caller frees with
 * sql_free.  A sql_ctx belongs to its caller; everything a run produces
 * (values, the parsed payload) lives in the ctx's arena until the next
 * sql_ctx_begin or sql_ctx_fini.  Output text is appended to a caller's
 * buf. */
#ifndef IOTRULES_SQL_H
#define IOTRULES_SQL_H

#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/buf.h"
#include "evaluate/sql/value.h"

typedef struct sql_stmt sql_stmt;
typedef struct sql_template sql_template;

/* A compile error: where (1-based) and what.  Warnings (accepted quirks,
 * such as an unquoted FROM topic) are reported the same way through
 * sql_stmt_warning. */
typedef struct sql_error {
	int line, col;
	char msg[256];
} sql_error;

/* The message a statement runs against, with the context functions'
 * inputs.  Strings are NUL-terminated and borrowed for the run. */
typedef struct sql_msg {
	const char *topic;
	const char *clientid;      /* NULL → "n/a" */
	const void *payload;
	size_t payload_len;
	int64_t timestamp_ms;      /* timestamp(): fixed per message */
	const char *principal;     /* NULL → Undefined */
	const char *sourceip;
	const char *traceid;
	const char *accountid;
	/* MQTT 5 publish properties as JSON (envelope.h, ENV_PROPS), for
	 * get_mqtt_property and get_user_properties; NULL/0 → none. */
	const char *mqtt_props;
	size_t mqtt_props_len;
} sql_msg;

/* The host of the external functions that call AWS (SQL.md §10.4):
 * get_dynamodb, aws_lambda, get_secret, get_thing_shadow and
 * get_registry_data.  Each call blocks the evaluating thread, appends the
 * answer (JSON text) to out and returns 0, or returns -1 with why in err:
 * the statement then fails (SQL_FAIL).  Called from any thread that runs
 * statements.  role_arn is the function's roleArn argument (NULL for
 * aws_lambda, which has none). */
typedef struct sql_external {
	/* DynamoDB GetItem of key (the item's key in DynamoDB's JSON form,
	 * {"id":{"S":"a"}}): the item as plain JSON.  An item that does not
	 * exist is an error, as in AWS. */
	int (*get_item)(const char *table, const char *key, const char *role_arn, buf *out,
	    char *err, size_t errcap);
	/* Lambda Invoke, RequestResponse, of function (a name or ARN, with an
	 * optional :qualifier) with payload as the event: the function's
	 * answer. */
	int (*invoke)(const char *function, const void *payload, size_t n, const char *role_arn, buf *out,
	    char *err, size_t errcap);
	/* Secrets Manager GetSecretValue of secret_id (its current
	 * version): with binary, SecretBinary as base64 text (key is NULL);
	 * else SecretString, whole as a string when key is NULL, else the
	 * value of that member of the JSON object it holds. */
	int (*get_secret)(const char *secret_id, int binary, const char *key, const char *role_arn, buf *out,
	    char *err, size_t errcap);
	/* IoT GetThingShadow: the shadow document of thing; shadow NULL:
	 * the classic (unnamed) shadow. */
	int (*get_thing_shadow)(const char *thing, const char *shadow, const char *role_arn, buf *out,
	    char *err, size_t errcap);
	/* IoT DescribeThing or ListThingGroupsForThing (api, exactly
	 * those names) of thing: the API's answer. */
	int (*get_registry_data)(const char *api, const char *thing, const char *role_arn, buf *out,
	    char *err, size_t errcap);
} sql_external;

typedef struct sql_ctx {
	/* The external functions' host; NULL (sql_ctx_init's default): a
	 * statement that calls them fails, an external function that
	 * cannot run here. */
	const sql_external *ext;
	arena ar;
	const sql_msg *msg;
	/* The payload parsed at most once per message and SQL version (the
	 * versions type whole decimals differently), shared by rules. */
	value payload_v[2];
	int payload_parsed[2];
	int payload_is_json;
	int payload_dups;          /* an object in it had duplicate keys */
	struct sql_vars *vars;     /* SET variables of the running statement */
	char uuid_scratch[40];
} sql_ctx;

void sql_ctx_init(sql_ctx *c);
/* Starts a new message: resets the arena; the payload is parsed lazily. */
void sql_ctx_begin(sql_ctx *c, const sql_msg *m);
void sql_ctx_fini(sql_ctx *c);

/* Parses a SQL version string ("2015-10-08", "2016-03-23", "beta").
 * Returns 0 and sets *v, or -1.  NULL means the AWS default, 2015-10-08. */
int sql_version_parse(const char *s, enum sql_version *v);

sql_stmt *sql_compile(const char *text, enum sql_version ver, sql_error *err);
void sql_free(sql_stmt *st);

/* The FROM topic filter, or NULL when there is none. */
const char *sql_stmt_from(const sql_stmt *st);
/* A warning recorded at compile time (NULL if none). */
const char *sql_stmt_warning(const sql_stmt *st);
enum sql_version sql_stmt_version(const sql_stmt *st);

enum sql_result { SQL_MATCH = 0, SQL_NOMATCH = 1, SQL_FAIL = 2 };

/* Runs st on the ctx's message: WHERE, then SELECT.  On SQL_MATCH the
 * result document is appended to out.  SQL_FAIL (an external function
 * that failed or cannot run here) sets err->msg.  The topic filter is not checked:
 * callers that route messages do that with the topic index. */
enum sql_result sql_run(const sql_stmt *st, sql_ctx *c, buf *out, sql_error *err);

/* Per-clause explanation of the last run, appended as text (see
 * iotrules-sql --explain). */
void sql_explain(const sql_stmt *st, sql_ctx *c, buf *out);

/* Templates: "${expr}" parts inside literal text (§11). */
sql_template *sql_template_compile(const char *text, enum sql_version ver, sql_error *err);
void sql_template_free(sql_template *t);
/* 1 if the template has no ${} part (its text is constant). */
int sql_template_is_const(const sql_template *t);
/* Appends the resolved text to out.  Runs against the ctx's message with
 * the SET variables of stmt (may be NULL). */
void sql_template_render(const sql_template *t, const sql_stmt *stmt, sql_ctx *c, buf *out);

/* Topic filter syntax check (§3.1): 0 ok, else -1 with err->msg. */
int sql_topic_filter_check(const char *filter, sql_error *err);

#endif
