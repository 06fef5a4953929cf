/* mqttpub: the one MQTT connection of a sink process that publishes jobs
 * and completes each when the broker has it (sinks/republish.c; also the
 * MQTT error path of any future MQTT-speaking sink).
 *
 * Publishing does not wait: a QoS 1 job completes when its PUBACK comes
 * (libmosquitto's network thread), found through the slot of its message
 * id, or fails transiently when none came within 10 s (mqttpub_tick); a
 * QoS 0 job completes once libmosquitto has taken it.  Every job given to
 * mqttpub_send is completed exactly once (sink_job_done / sink_job_fail),
 * with "what" as the failure's first words.
 *
 * One connection per process: the state is this module's own. */
#ifndef IOTRULES_MQTTPUB_H
#define IOTRULES_MQTTPUB_H

#include <stddef.h>

#include "common/mqttclient.h"
#include "sinks/lib/sink.h"

#include <mosquitto.h>

/* Connects (in the background, reconnecting) with o, which must outlive
 * the connection.  0, or -1 with the reason in err. */
int mqttpub_start(const mqttclient_opts *o, char *err, size_t errcap);

/* The MQTT version the connection speaks: 3 (3.1.1) or 5. */
int mqttpub_version(void);

/* Publishes the job's result to topic (a publishable name, checked by the
 * caller) with qos 0 or 1 and props (MQTT 5 properties, borrowed; NULL:
 * none), and completes the job as the header says.  j->resource must be
 * set. */
void mqttpub_send(sink_job *j, const char *topic, int qos, const mosquitto_property *props, const char *what);

/* Fails, transiently, the jobs whose PUBACK is late (call every ~100 ms). */
void mqttpub_tick(void);

/* Disconnects and fails, transiently, every job still awaiting its
 * PUBACK (the runtime keeps them in its spool for the next start). */
void mqttpub_stop(void);

#endif
