/* engine: runs a ruleset on one message and produces its jobs.
 *
 * For each enabled rule whose FROM filter matches the topic (or, for a
 * Basic Ingest topic $aws/rules/<name>/..., only rule <name>), the SQL
 * runs; when it fires, one job per action is emitted, carrying the
 * original message, the SQL result, the action's resolved parameters and
 * the rule's resolved errorAction (ERRORS.md §2.3).  The SQL functions
 * that call AWS (get_dynamodb, aws_lambda) do so through evaluate/lib/
 * sqlaws unless the caller's ctx names another host (sql_ctx.ext).
 *
 * The emitted envelope and its bytes are valid only during the emit
 * call. */
#ifndef IOTRULES_ENGINE_H
#define IOTRULES_ENGINE_H

#include <stdint.h>

#include "common/envelope.h"
#include "evaluate/lib/rules.h"

typedef void (*engine_emit)(void *arg, const envelope *job);

/* What one matched rule made of a message: its SQL fired (jobs
 * emitted), gave no result (WHERE false), or failed. */
enum engine_outcome { ENGINE_FIRED, ENGINE_NO_RESULT, ENGINE_SQL_ERROR };

typedef struct engine_stats {
	uint64_t messages, fired, not_fired, sql_failed, jobs;
	/* Optional (NULL: none): called once per rule the message matched
	 * (its topic filter, or its Basic Ingest name), with the rule's index
	 * in the ruleset, on the caller's thread.  evaluate counts per rule
	 * with it. */
	void (*on_rule)(void *arg, int rule_index, enum engine_outcome o);
	void *on_rule_arg;
} engine_stats;

/* The value of accountid() for every message (a copy is kept; NULL:
 * Undefined).  Set once at startup, before any engine_run. */
void engine_set_account_id(const char *id);

/* Runs msg (an ENV_MESSAGE) through rs.  c is the caller's context (one
 * per thread).  Returns the number of jobs emitted. */
int engine_run(const ruleset *rs, sql_ctx *c, const envelope *msg,
    engine_emit emit, void *arg, engine_stats *st);

#endif
