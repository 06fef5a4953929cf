/* iotbatch: what the IoT Analytics, IoT Events and IoT SiteWise sinks
 * share, on top of awssink.h: batch APIs whose entries each carry an id
 * and whose 200 answer lists only the entries that failed, by that id
 * (BatchPutMessage: batchPutMessageErrorEntries / BatchPutMessageErrorEntries
 * by messageId; BatchPutAssetPropertyValue: errorEntries by entryId, each
 * with its errors[]).
 *
 * A job's entry (sink_job.entry) is a JSON array of the API's entry
 * objects and j->units their count.  The sink's api.prepare builds it:
 * iotbatch_messages for BatchPutMessage (one message, or one per element
 * of an array result in batchMode), or the sink itself (SiteWise).
 *
 * iotbatch_send cuts the entries of the jobs it is given into requests
 * of at most api->max_entries entries and api->max_payload payload bytes,
 * never two entries with the same id in one request (a templated
 * messageId or entryId may repeat, and the APIs want ids unique within a
 * call); a job with more entries than one request holds goes out in
 * several.  Once every request of the send has answered, each job
 * completes once:
 *   - every entry accepted: OK;
 *   - otherwise the job's entry keeps only its failed entries, so a retry
 *     resends just those and never the accepted ones, and the job takes
 *     the verdict of its worst failure (permanent over throttled over
 *     transient) with that failure's code and message, in AWS's error
 *     message shape (awssink_fail_all).
 * An error answer to a whole request (4xx/5xx, no answer) fails the
 * entries it carried with its verdict and Retry-After.  An entry's error
 * code is judged by aws_classify_code, except InternalFailureException
 * (these models' 500 fault, which that table does not know): transient.
 *
 * Ownership: the api is the sink's (a static); iotbatch keeps each send's
 * parsed entries until its last answer and frees them then; the jobs stay
 * the runtime's, their entry is rewritten only while they are in flight.
 * Errors: out of memory ends the process (log_die 111); nothing else
 * fails a call here, every outcome reaches the jobs as their verdicts.
 *
 * Threads: iotbatch_send runs on the runtime's thread; the answers come
 * on the AWS client's; the last request to answer completes the jobs. */
#ifndef IOTRULES_IOTBATCH_H
#define IOTRULES_IOTBATCH_H

#include <cjson/cJSON.h>

#include "sinks/lib/awssink.h"

typedef struct iotbatch_api {
	awssink_call call;         /* what/service of error messages (judge unused) */
	/* The request: signing name, AWS_ENDPOINT_URL_<id>, AWS's host name
	 * (NULL: {service}.{region}.amazonaws.com; only used when no endpoint
	 * is configured, so a configured one is taken as given), POST path;
	 * the body is {<head>"<list_key>":[entries]}, application/json. */
	const char *service, *endpoint_id, *host, *path, *list_key;
	const char *id_key;        /* "messageId", "entryId": an entry's id */
	const char *errors_key;    /* the answer's list of failed entries */
	const char *payload_key;   /* base64 member counted against max_payload, or NULL */
	int max_entries;           /* per request */
	size_t max_payload;        /* decoded payload bytes per request; 0: no limit */
	/* May be NULL.  Appends the body's members before the list, each
	 * followed by ',', and sets region (64 bytes; "" for the client's),
	 * from j, the first job of the send (all share its dest). */
	void (*head)(const sink_job *j, buf *body, char *region);
	/* May be NULL.  Sets j->resource from the entry that failed (SiteWise
	 * names the failed entry's property); else prepare's stays. */
	void (*resource)(sink_job *j, const cJSON *entry);
	/* The sink's own part of ops.prepare: sets j->resource and j->entry
	 * (and j->dest when jobs may share a request only by more than their
	 * roleArn, the default); returns NULL, or why the job can never be
	 * sent, which fails it at once (errorAction) with that reason. */
	const char *(*prepare)(sink_job *j);
} iotbatch_api;

/* Runs the sink (awssink_main): api->prepare for each job, iotbatch_send
 * for each batch of at most api->max_entries entries. */
int iotbatch_main(int argc, char **argv, const iotbatch_api *api);

/* BatchPutMessage entries of job j: {"messageId", ["inputName",]
 * "payload"} with the result's bytes base64-encoded as payload; in
 * batchMode (the job's "batchMode" parameter true) an array result gives
 * one message per element (its JSON text), at most max_elements.
 * message_id NULL: a fresh UUID per message.  input_name NULL: none (IoT
 * Analytics).  Each payload must be at most max_bytes.  Fills j->entry
 * and j->units; NULL, or why the job can never be sent. */
const char *iotbatch_messages(sink_job *j, int max_elements, size_t max_bytes, const char *input_name,
    const char *message_id);

/* Sends jobs[0..n) (one dest) as described above. */
void iotbatch_send(const iotbatch_api *api, sink_job **jobs, int n);

/* 1 when s is 1..max characters, each alphanumeric or in extra, and
 * (first_alnum) the first alphanumeric: the ids and names these APIs
 * constrain (messageId, inputName, entryId). */
int iotbatch_name_ok(const char *s, size_t max, const char *extra, int first_alnum);

#endif
