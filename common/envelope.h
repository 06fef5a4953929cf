/* envelope: the binary framing of what travels between stages.
 *
 * A record is one message (ingest → evaluate), one job (evaluate or the
 * error handler → a sink) or one failure report (sink → error handler).
 * All three share one layout so that spools and hops carry opaque bytes
 * and every stage decodes with the same code:
 *
 *   u8 kind, u8 qos, u16 action_index, u16 action_count, u16 reserved,
 *   u64 timestamp_ms, 16 bytes message id,
 *   then ENV_NSLICES byte strings, each u32 length + bytes.  A record
 *   may end early: the slices it lacks are empty (records written before
 *   a slice was added still decode).
 *
 * Integers are little endian.  A batch (one hop request) is
 *   u32 ENV_BATCH_MAGIC, u32 count, then count × (u32 length, record).
 *
 * Decoding never copies: slices point into the bytes given, which must
 * outlive the envelope. */
#ifndef IOTRULES_ENVELOPE_H
#define IOTRULES_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define ENV_BATCH_MAGIC 0x31525449u  /* "ITR1" */

enum env_kind { ENV_MESSAGE = 1, ENV_JOB = 2, ENV_FAILURE = 3, ENV_SUCCESS = 4 };

typedef struct env_slice {
	const char *p;
	uint32_t n;
} env_slice;

enum env_field {
	ENV_TOPIC,        /* topic the message arrived on */
	ENV_CLIENTID,     /* publisher's client id ("" unknown) */
	ENV_PAYLOAD,      /* the original payload bytes */
	ENV_RULE,         /* job: rule name */
	ENV_ACTION,       /* job: action type, e.g. "republish" */
	ENV_PARAMS,       /* job: the action's parameters, templates resolved (JSON) */
	ENV_RESULT,       /* job: the SQL result (what the action delivers) */
	ENV_ERRACTION,    /* job: the rule's errorAction, resolved ({"type":..,"params":..}) or "" */
	ENV_ERROR,        /* failure: {"failedAction","failedResource","errorMessage"} JSON */
	ENV_PROPS,        /* message: MQTT 5 publish properties, JSON ("" none):
	                   * {"content_type","format_indicator" (0|1),
	                   *  "response_topic","correlation_data" (base64),
	                   *  "user_properties":[["k","v"],...]} */
	ENV_FILTERS,      /* message: the rules' topic filters whose subscriptions
	                   * this copy came through, '\n'-terminated lines ("":
	                   * not known; every rule whose filter matches runs).
	                   * See common/subid.h. */
	ENV_USERNAME,     /* message: publisher's MQTT username ("" unknown or
	                   * none); known only through the broker plugin */
	ENV_SOURCEIP,     /* message: publisher's address as the broker saw it
	                   * ("127.0.0.1", "::1"; "" unknown); plugin only */
	ENV_NSLICES
};

typedef struct envelope {
	uint8_t kind, qos;
	uint16_t action_index, action_count;
	uint64_t ts_ms;
	uint8_t id[16];
	env_slice s[ENV_NSLICES];
} envelope;

/* Appends e as one framed record (u32 length + record) to b. */
void env_append(buf *b, const envelope *e);
/* Decodes one record of n bytes.  0, or -1 if malformed. */
int env_decode(const char *p, size_t n, envelope *e);

/* Batches: begin writes the header; each env_append adds a record;
 * end patches the count.  Returns the count. */
void env_batch_begin(buf *b);
uint32_t env_batch_end(buf *b, size_t start);

/* Iterates a batch: env_batch_open checks the header and returns the
 * count (or -1); env_batch_next yields the next record's bytes. */
typedef struct env_iter {
	const char *p, *end;
	uint32_t left;
	uint32_t bad;    /* records env_batch_next_env skipped as malformed */
} env_iter;
int env_batch_open(env_iter *it, const void *data, size_t len);
int env_batch_next(env_iter *it, const char **rec, uint32_t *n);
/* Decodes the next record of the given kind into e (1), or returns 0 at
 * the end.  Malformed records and records of another kind are skipped and
 * counted in it->bad. */
int env_batch_next_env(env_iter *it, enum env_kind kind, envelope *e);

static inline env_slice env_str(const char *s) {
	env_slice x = {s, 0};
	if (s) { while (s[x.n]) x.n++; }
	return x;
}

/* Formats the id as a lowercase UUID (37 bytes with NUL). */
void env_id_str(const envelope *e, char out[37]);

#endif
