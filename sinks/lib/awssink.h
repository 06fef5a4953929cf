/* awssink: what the AWS sinks share, on top of the sink runtime (sink.h)
 * and the AWS client (common/aws.h).
 *
 * An AWS sink file declares its action (sink_ops: names, limits,
 * prepare, send) and calls awssink_main; this module opens the client at
 * start (credentials, region, endpoints from the environment and the
 * shared files, as the SDKs find them), closes it at stop (completing
 * what is in flight), takes the options every AWS sink has, and turns a
 * service's answer into each job's verdict:
 *
 *   awssink_send(&req, jobs, n, &call): one request for the batch; an
 *   error answer fails every job with the service's code and message (in
 *   AWS's error message shape), transient/throttled/permanent as the SDKs
 *   classify it; a 2xx answer is OK for every job, or is judged entry by
 *   entry by call.judge for batch APIs (partial failures: only the failed
 *   entries are retried). */
#ifndef IOTRULES_AWSSINK_H
#define IOTRULES_AWSSINK_H

#include <cjson/cJSON.h>

#include "common/aws.h"
#include "sinks/lib/sink.h"

/* How an answer is reported. */
typedef struct awssink_call {
	const char *what;      /* "Failed to put record": starts the errorMessage */
	const char *service;   /* "Amazon Kinesis": the "(Service: ...)" part */
	/* For batch APIs: completes every job from a 2xx answer (parsed body
	 * in body, NULL if not JSON), e.g. with awssink_entry.  NULL: all OK. */
	void (*judge)(sink_job **jobs, int n, const aws_response *r, cJSON *body,
	    const struct awssink_call *call);
	/* For APIs whose error answer lists per-entry failures (Timestream's
	 * 400 RejectedRecordsException): completes every job and returns 1,
	 * or returns 0 to fail them all as usual.  NULL: never. */
	int (*judge_error)(sink_job **jobs, int n, const aws_response *r, const struct awssink_call *call);
	/* Sends the request instead of aws_send (endpoint discovery:
	 * awsdisco_send).  NULL: aws_send on awssink's client. */
	void (*send)(const aws_request *rq, aws_done_fn done, void *arg);
} awssink_call;

/* Runs an AWS sink: fills ops' option/start/stop (unless set) with this
 * module's, and runs sink_main.  Returns the exit code. */
int awssink_main(int argc, char **argv, sink_ops *ops);

/* The client (after start). */
aws_client *awssink_client(void);

/* Sends rq for jobs[0..n) (rq's pointers need only live during the
 * call); each job completes when the answer comes.  call must outlive
 * the request (a static). */
void awssink_send(const aws_request *rq, sink_job **jobs, int n, const awssink_call *call);

/* Sends jobs[0..n) as one JSON batch request (Kinesis PutRecords,
 * Firehose PutRecordBatch): rq's body becomes {"<key>":<name as a JSON
 * string>,"<list>":[<each job's entry>,...]}; else as awssink_send. */
void awssink_send_entries(aws_request *rq, const char *key, const char *name, const char *list,
    sink_job **jobs, int n, const awssink_call *call);

/* Fails jobs[0..n) with an error answer (its verdict, the service's code
 * and message), as awssink_send does for a request that was not OK. */
void awssink_fail_all(sink_job **jobs, int n, const aws_response *r, const awssink_call *call);

/* Completes job j with the outcome of its own entry of a batch answer:
 * code NULL or "" is OK; otherwise its verdict by aws_classify_code and
 * a message naming the code and msg. */
void awssink_entry(sink_job *j, const awssink_call *call, long status, const char *code, const char *msg);

/* Batch APIs that answer by entry Id, with whose fault each failure was
 * (SQS SendMessageBatch, SNS PublishBatch: Successful[] and Failed[]).
 * The sink numbers its entries "0".."n-1" and parses the answer into
 * outcomes; awssink_judge_ids completes every job once: a failure that
 * was the sender's fault is permanent, any other is judged by its code,
 * and one whose code is not known to be retryable is still retried (the
 * service said the request was not at fault); an entry the answer does
 * not name is retried too. */
typedef struct awssink_outcome {
	char id[16];
	int failed;           /* listed as failed */
	int sender_fault;
	char code[128];
	char message[512];
} awssink_outcome;

void awssink_judge_ids(sink_job **jobs, int n, long status, const awssink_call *call,
    const awssink_outcome *o, int no);

/* The job's result as JSON (parsed; the caller deletes it), or NULL when
 * the result is not JSON (a binary payload passed through). */
cJSON *awssink_result_json(const sink_job *j);

/* Appends the job's result base64-encoded (Kinesis, Firehose Data
 * fields), followed by extra bytes (a separator) before encoding. */
void awssink_add_base64(buf *out, const void *data, size_t n, const char *extra);

/* The elements of a JSON array result, each as its original text (so
 * numbers keep every digit: batchMode of Firehose, IoT Analytics, IoT
 * Events).  awssink_array is 1 when s[0..n) is a JSON array (it is
 * parsed to make sure: a binary payload may start with '['), with *it
 * before its first element; 0 otherwise.  awssink_array_next gives the
 * next element (blanks around it trimmed) in *p and *len, pointing into s:
 * 1, or 0 after the last. */
typedef struct awssink_elems {
	const char *p, *end;
} awssink_elems;

int awssink_array(const char *s, size_t n, awssink_elems *it);
int awssink_array_next(awssink_elems *it, const char **p, size_t *len);

/* A new random UUID, lower-case, NUL-terminated (37 bytes). */
void awssink_uuid(char *out);

/* The account of the rules given with --account-id (config account_id),
 * or NULL. */
const char *awssink_account_id(void);

/* The "roleArn" parameter, for aws_request.role_arn (NULL when none). */
const char *awssink_role(const sink_job *j);

#endif
