/* aws: the one AWS client of iotrules (sinks and SQL functions).
 *
 * Sends SigV4-signed HTTPS requests on one libcurl multi handle, driven by
 * one thread of the client's own, with connection reuse; finds
 * credentials, region and endpoints as the AWS SDKs do (common/awsconf for
 * the environment and the shared files, plus the sources that need a
 * server: web identity, container credentials, EC2 IMDSv2, and STS
 * AssumeRole for a profile's role_arn + source_profile or an action's
 * roleArn when assume_role is set), refreshes them before they expire and
 * after an expired-token answer, and never logs a secret.
 *
 * Signing is libcurl's CURLOPT_AWS_SIGV4 with the workarounds libcurl
 * 7.88 needs (it mis-signs otherwise; list below): the body is always in
 * memory, x-amz-content-sha256 is added for S3, the session token is added
 * as a header, Content-Type is always set (application/octet-stream when a
 * request with a body names none), "aws:amz:REGION:SERVICE" is always
 * explicit, and callers pass paths and queries already encoded
 * (aws_uri_encode) and queries already sorted.  One more 7.88 pitfall: an
 * emptied header ("Expect:", to turn 100-continue off) is listed in
 * SignedHeaders but not sent, which breaks every signature; so no header
 * is emptied, and a body over 1 MB goes with libcurl's own (unsigned)
 * "Expect: 100-continue".  And the path: libcurl 7.88 puts it into the
 * canonical request as CURLOPT_URL holds it, while every service but S3
 * wants it URI-encoded once more (the server encodes what it received),
 * so a path with %-escapes (an OpenSearch document id with a space, ':'
 * or 'é') would be signed wrongly (caveat 1d).  For those, libcurl is
 * given the URL with each '%' encoded again (what the server signs) and
 * sends the path as it is through CURLOPT_REQUEST_TARGET.
 *
 * Endpoints: a request's url when it has one (a rule's OpenSearch domain
 * endpoint: the rule names it, as in AWS); else awsconf_endpoint(
 * endpoint_id) used as given (scheme, host, port, base path), resolved
 * once per endpoint_id; else https:// and the host template.  HTTPS is verified against AWS_CA_BUNDLE (or the
 * profile's ca_bundle) when set.  HTTP/1.1, at most max_connections per
 * host, connections kept and reused.
 *
 * Every answer is classified as the SDKs' "standard" retry mode does
 * (ERRORS.md §6): aws_classify.
 *
 * For tests and private DNS: IOTRULES_AWS_CONNECT_TO, a comma-separated
 * list of "HOST:PORT:CONNECT-TO-HOST:CONNECT-TO-PORT" entries (libcurl's
 * CURLOPT_CONNECT_TO, curl's --connect-to), sends the connections for
 * HOST:PORT to another address while the URL, the Host header, the
 * signature and the TLS name check stay those of HOST, e.g.
 * "ingest.timestream.us-east-1.amazonaws.com:443:127.0.0.1:14443".  An
 * empty HOST or PORT matches any.  It applies to the requests of
 * aws_send/aws_call (not to the credential sources' own calls); a
 * malformed entry fails aws_client_open, naming it.
 *
 * Threads: aws_send may be called from any thread; done callbacks run on
 * the client's thread and must not block (hand the result over and
 * return).  aws_call blocks its caller and must not be called from a done
 * callback. */
#ifndef IOTRULES_AWS_H
#define IOTRULES_AWS_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

typedef struct aws_client aws_client;

typedef enum aws_verdict {
	AWS_OK = 0,
	AWS_TRANSIENT = 1,   /* connection error, timeout, 5xx, retryable codes */
	AWS_THROTTLED = 2,   /* 429 and the throttling codes: retry after a backoff */
	AWS_PERMANENT = 3,   /* every other 4xx: do not retry */
} aws_verdict;

typedef struct aws_client_opts {
	/* When true, a request's role_arn is assumed with STS AssumeRole
	 * (credentials cached per role); when false, role_arn is ignored. */
	int assume_role;
	int timeout_ms;           /* whole request, default 10000 */
	int connect_timeout_ms;   /* default 3000 */
	int max_connections;      /* per host; default 16 */
} aws_client_opts;

/* What a request needs.  Every pointer is the caller's and only has to
 * live until aws_send/aws_call returns (they copy what they keep). */
typedef struct aws_request {
	/* The signing name ("dynamodb", "kinesis", "firehose", "s3", "sqs",
	 * "sns", "lambda", "ioteventsdata", "es", ...). */
	const char *service;
	/* The SDKs' name for endpoint overrides, AWS_ENDPOINT_URL_<id>
	 * ("DYNAMODB", "KINESIS", "FIREHOSE", "S3", "SQS", "SNS", "LAMBDA",
	 * "IOT_EVENTS_DATA", ...). */
	const char *endpoint_id;
	/* AWS's host name when no endpoint is configured, with "{region}"
	 * replaced; NULL: "{service}.{region}.amazonaws.com". */
	const char *host;
	/* Region; NULL or "": the client's region (aws_region). */
	const char *region;
	const char *method;        /* NULL: "POST" */
	const char *path;          /* already encoded; NULL: "/" */
	const char *query;         /* without '?', sorted and encoded; or NULL */
	const char *content_type;  /* NULL: none is sent for GET, else required */
	const char *target;        /* X-Amz-Target (JSON 1.0/1.1), or NULL */
	/* Further headers, "Name: value", up to 8, NULL-terminated early. */
	const char *headers[8];
	const void *body;
	size_t body_len;
	/* S3: the bucket.  Virtual-hosted ({bucket}.s3.{region}.amazonaws.com)
	 * without a configured endpoint, path-style (/{bucket}{path}) with one;
	 * adds x-amz-content-sha256. */
	const char *s3_bucket;
	/* The action's roleArn (used only when opts.assume_role), or NULL. */
	const char *role_arn;
	/* A base URL ("https://host[:port][/base]") used as given instead of
	 * a configured endpoint or the host template: OpenSearch's domain
	 * endpoint, which the rule's action names.  NULL: none. */
	const char *url;
} aws_request;

/* An answer.  Pointers are valid only during the done callback (aws_send)
 * or until aws_response_free (aws_call). */
typedef struct aws_response {
	long status;              /* HTTP status; 0: no answer (see error_message) */
	aws_verdict verdict;
	/* The service's error code, shape name only ("ResourceNotFoundException",
	 * from __type "com.amazonaws...#ResourceNotFoundException", the
	 * x-amzn-ErrorType header, or XML <Code>); "" when none.  A Lambda
	 * answer with X-Amz-Function-Error (the function failed) is
	 * "FunctionError:Unhandled" (or :Handled), AWS_PERMANENT, with the
	 * function's errorMessage as the message. */
	const char *error_code;
	/* Its message, or curl's error text when there was no answer; "". */
	const char *error_message;
	/* Retry-After (seconds or an HTTP date) or x-amz-retry-after
	 * (milliseconds, preferred); 0: none. */
	int retry_after_ms;
	const char *body;         /* NUL-terminated */
	size_t body_len;
} aws_response;

typedef void (*aws_done_fn)(void *arg, const aws_response *r);

/* Opens the client: resolves the region and the first credentials
 * (awsconf, then web identity, container, IMDSv2) and starts its thread.
 * NULL with err set when no credentials can be found or a source is
 * broken (the message names the file, variable or endpoint and why). */
aws_client *aws_client_open(const aws_client_opts *o, char *err, size_t errcap);

/* Stops the thread; requests still in flight complete with status 0,
 * AWS_TRANSIENT, "client closed", before this returns. */
void aws_client_close(aws_client *c);

/* The client's region ("us-east-1" when none is configured). */
const char *aws_region(const aws_client *c);

/* Queues a request; done is called exactly once, on the client's thread,
 * with its answer, or with status 0 and AWS_TRANSIENT when it could not
 * be sent (credentials unavailable, connection refused, timeout).  An
 * expired-token answer refreshes the credentials and is reported
 * AWS_TRANSIENT, so the caller's retry uses fresh ones.  A request waits
 * for credentials being fetched at most timeout_ms.  Once
 * aws_client_close has begun, done is called at once on the caller's
 * thread with "client closed". */
void aws_send(aws_client *c, const aws_request *rq, aws_done_fn done, void *arg);

/* Sends and waits.  The answer's strings are copies the caller frees with
 * aws_response_free. */
void aws_call(aws_client *c, const aws_request *rq, aws_response *out);
void aws_response_free(aws_response *r);

/* Requests in flight. */
int aws_inflight(aws_client *c);

/* Classifies an answer: status 0 → TRANSIENT; 2xx → OK; the throttling
 * codes or 429 → THROTTLED; 5xx, the retryable and expired-token codes →
 * TRANSIENT; other 4xx → PERMANENT.  code may be "" or NULL. */
aws_verdict aws_classify(long status, const char *code);

/* Verdict of one entry of a batch API's per-entry failures, by its error
 * code (ProvisionedThroughputExceededException → THROTTLED,
 * InternalFailure/ServiceUnavailable → TRANSIENT, ...); NULL/"" → OK. */
aws_verdict aws_classify_code(const char *code);

/* Percent-encodes s as SigV4 wants it: every byte but A-Za-z0-9-_.~ (and
 * '/' when keep_slash), upper-case hex. */
void aws_uri_encode(buf *out, const char *s, size_t n, int keep_slash);

/* Region of an ARN ("arn:aws:sqs:eu-west-1:1234:q" → "eu-west-1") into
 * out; 0, or -1 when s is not an ARN with a region. */
int aws_arn_region(const char *arn, char *out, size_t cap);

/* The error code and message of an answer (what aws_response carries):
 * code from the x-amzn-ErrorType header (error_type, may be NULL; cut at
 * ':'), else the JSON body's "__type" (after '#', cut at ':'), "code" or
 * "Code", else XML <Code> (query protocol, S3); message from "message",
 * "Message" or <Message>.  Both "" when none. */
void aws_parse_error(const char *body, size_t len, const char *error_type, char *code, size_t codecap,
    char *msg, size_t msgcap);

/* The text of the first <tag>...</tag> in xml (query-protocol and S3
 * replies), the five XML entities decoded, into out (truncated to cap).
 * 0 found, 1 not. */
int aws_xml_text(const char *xml, const char *tag, char *out, size_t cap);

/* Where a Lambda Invoke goes for a FunctionName in any of its forms
 * ("name", "name:qualifier", "ACCOUNT:function:name[:qualifier]",
 * "arn:aws:lambda:REGION:ACCOUNT:function:name[:qualifier]"): path
 * "/2015-03-31/functions/NAME/invocations" with the bare name, query
 * "Qualifier=Q" ("" when none) and the ARN's region ("" when none).
 * libcurl 7.88 signs an ARN or "name:alias" in the path wrongly
 * (BACKENDS.md caveat 1d), hence the bare name; the account is dropped.
 * 0, or -1 when fn is none of these forms. */
typedef struct aws_lambda_target {
	char path[220];
	char query[400];
	char region[64];
} aws_lambda_target;
int aws_lambda_target_parse(const char *fn, aws_lambda_target *t);

#endif
