/* config: the pipeline configuration file (one JSON object) read by the
 * supervisor and the `iotrules` control command.
 *
 *   {"broker": "mqtt://127.0.0.1:1883", "rules": "examples/rules",
 *    "run_dir": "/run/iotrules", "state_dir": "/var/lib/iotrules",
 *    "instances": {"evaluate": 2, "sink-republish": 3},
 *    "mqtt_version": 5, "share_group": null, "tries": 3, "bin_dir": null,
 *    "account_id": null}   (accountid() in rules; null: Undefined)
 *
 * Only broker, rules, run_dir and state_dir matter to most users; every key
 * has a default (the defaults run against a local mosquitto with the
 * example rules).  Relative paths are taken relative to the config file's
 * directory.  Strings are owned by the config; config_free releases them. */
#ifndef IOTRULES_CONFIG_H
#define IOTRULES_CONFIG_H

#include <stddef.h>

typedef struct config {
	char *broker, *rules, *run_dir, *state_dir, *bin_dir, *share_group, *account_id;
	int mqtt_version, tries;
	int ninst;
	struct { char stage[64]; int n; } inst[64];
} config;

/* 0, or -1 with "file: reason" in err. */
int config_load(const char *path, config *c, char *err, size_t errcap);
void config_free(config *c);
/* Instances configured for stage (default 1). */
int config_instances(const config *c, const char *stage);

#endif
