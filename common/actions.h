/* actions: the table of action types (common/actions.def), for the rule
 * loader, the supervisor and the sink runtime.
 *
 * Rows are static and live for the whole process; every pointer returned
 * points into the table (never freed).  Lookups by key are
 * case-insensitive, as the loader has always been (AWS's own keys are
 * camelCase: "dynamoDBv2"). */
#ifndef IOTRULES_ACTIONS_H
#define IOTRULES_ACTIONS_H

#define ACT_AWS  1   /* calls AWS: takes --assume-role */
#define ACT_MQTT 2   /* talks to the broker: --broker, MQTT credentials */
#define ACT_DEST 4   /* uses the config's destinations: takes --config FILE */
#define ACT_VPC  8   /* sends through a VPC destination: runs in its netns */

typedef struct action_type {
	const char *key;            /* "dynamoDBv2" */
	const char *stage;          /* "dynamodbv2": iotrules-sink-<stage> */
	const char *source;         /* "dynamodbv2": sinks/<source>.c */
	const char *failed_action;  /* "DynamoDBv2Action" */
	int flags;                  /* ACT_* */
	const char *required;       /* "roleArn putItem" */
} action_type;

/* 1 when this build has the action's sink (its source was there at build
 * time), else 0. */
int action_built(const action_type *a);

/* The row of a rule JSON key, or NULL when AWS has no such action. */
const action_type *action_by_key(const char *key);

/* The row of a stage name, with or without its "sink-" prefix ("sqs",
 * "sink-sqs"), or NULL. */
const action_type *action_by_stage(const char *stage);

/* The i-th row (0..), NULL past the last: for listing them all. */
const action_type *action_at(int i);

#endif
