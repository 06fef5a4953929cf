/* config: the pipeline configuration file (one JSON object) read by the
 * supervisor and the `iotrules` control command.
 *
 *   {"broker": "mqtt://127.0.0.1:1883", "rules": "examples/rules",
 *    "run_dir": "/run/iotrules", "state_dir": "/var/lib/iotrules",
 *    "instances": {"evaluate": 2, "sink-republish": 3},
 *    "mqtt_version": 5, "share_group": null, "tries": 3, "bin_dir": null,
 *    "account_id": null,          accountid() in rules; null: Undefined
 *    "retry_s": 3600,             sinks: time budget for retrying transient
 *                                 failures (0: AWS's 3 quick tries)
 *    "session_expiry_s": 86400,   ingest: MQTT 5 Session Expiry Interval
 *    "assume_role": false,        AWS sinks: assume each action's roleArn
 *                                 with STS AssumeRole (false: roleArn is
 *                                 ignored and the stages' own credentials
 *                                 are used, which the supervisor passes on
 *                                 in the environment)
 *    "metrics_listen": "127.0.0.1:9641",
 *                                 supervisor: HOST:PORT of the Prometheus
 *                                 /metrics endpoint (false: none)
 *    "spool_max_bytes": null,     ingest, sinks, error handler: bound on
 *                                 each spool (null: the stage's default)
 *    "username": null, "password": null, "password_file": null,
 *    "cafile": null, "certfile": null, "keyfile": null,
 *    "transport": null,           {"amqp": ["amqp://user:pass@host:5672", ...],
 *                                 "prefix": "iotrules", "cafile": null,
 *                                 "certfile": null, "keyfile": null}
 *                                 (the TLS files for amqps:// nodes,
 *                                 passed as IOTRULES_AMQP_CAFILE etc.):
 *                                 the hops are
 *                                 RabbitMQ quorum queues <prefix>.<hop>
 *                                 on that cluster (common/hop.h), passed
 *                                 to the stages as IOTRULES_AMQP and
 *                                 IOTRULES_AMQP_PREFIX; null: NNG sockets
 *                                 under run_dir
 *    "stages": null,              ["ingest", "evaluate", "sinks",
 *                                 "error-handler", "sink-<action>"]: run
 *                                 only these here (needs "transport");
 *                                 null: every stage
 *    "ingest_journal": null}      ingest: read the journal the mosquitto
 *                                 plugin (lib/iotrules-mosquitto.so, its
 *                                 plugin_opt_journal) writes in this
 *                                 directory instead of subscribing; one
 *                                 ingest instance only
 *                                 broker credentials and TLS, for ingest and
 *                                 sink-republish (through the environment,
 *                                 never argv: see the supervisor)
 *
 * Only broker, rules, run_dir and state_dir matter to most users; every key
 * has a default (the defaults run against a local mosquitto with the
 * example rules).  Relative paths (rules, run_dir, state_dir, bin_dir,
 * ingest_journal, password_file, cafile, certfile, keyfile) are taken relative to the
 * config file's directory.  null is the same as leaving a key out.
 *
 * Errors: an unknown key (with the nearest known one as a "did you mean"
 * hint), a key of the wrong type or out of range, a broker that is not an
 * MQTT URL, a metrics_listen that is not HOST:PORT, an "instances" entry
 * that is not a stage, and more than one ingest instance without a
 * share_group (each would receive every message).  Every problem of the
 * file is reported, not just the first: err holds one line per problem,
 * "FILE:LINE: reason" (LINE: where the key is), lines separated by '\n'.
 *
 * Strings are owned by the config; config_free releases them. */
#ifndef IOTRULES_CONFIG_H
#define IOTRULES_CONFIG_H

#include <stddef.h>

typedef struct config {
	char *broker, *rules, *run_dir, *state_dir, *bin_dir, *share_group, *account_id;
	/* "HOST:PORT" of the metrics endpoint; NULL: none (false in the file). */
	char *metrics_listen;
	/* Broker credentials and TLS files; NULL when not configured.
	 * password and password_file are never both set. */
	char *username, *password, *password_file, *cafile, *certfile, *keyfile;
	/* The broker plugin's journal directory; NULL: ingest subscribes. */
	char *ingest_journal;
	int mqtt_version, tries;
	int assume_role;             /* AWS sinks get --assume-role */
	long long retry_s;           /* >= 0, default 3600 */
	long long session_expiry_s;  /* >= 0, default 86400 */
	long long spool_max_bytes;   /* > 0, or 0 when not configured */
	int ninst;
	struct { char stage[64]; int n; } inst[64];
	/* "transport": the AMQP node URLs, space-separated (NULL: NNG hops),
	 * and the queue name prefix (NULL: "iotrules"). */
	char *amqp, *amqp_prefix;
	/* Its TLS files (amqps:// nodes), NULL when not configured. */
	char *amqp_cafile, *amqp_certfile, *amqp_keyfile;
	/* "stages": the stages this supervisor runs ("sinks": every sink). */
	int stages_set, nstages;
	char stages[64][64];
} config;

/* 0, or -1 with the problems in err (see above); c is then empty. */
int config_load(const char *path, config *c, char *err, size_t errcap);

/* Everything a supervisor refuses a config for: config_load, then the
 * destinations (dest_load) and the namespace of the VPC ones
 * (dest_netns).  On success (0) c and *dests are the caller's to free and
 * *netns points into *dests (NULL: no VPC destination).  -1: err says why
 * and nothing is left to free.  The supervisor runs this before starting
 * anything; `iotrules check-config` runs the same. */
struct dest_list;
int config_check(const char *path, config *c, struct dest_list *dests, const char **netns, char *err,
    size_t errcap);
void config_free(config *c);
/* 1 if this supervisor runs stage ("stages", default every one). */
int config_runs(const config *c, const char *stage);
/* Instances configured for stage (default 1). */
int config_instances(const config *c, const char *stage);

#endif
