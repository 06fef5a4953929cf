/* iotrules-sink-lambda: the lambda action (ACTIONS.md §2.14): an
 * asynchronous Invoke (X-Amz-Invocation-Type: Event, 202 = accepted) of
 * the function with the result JSON as the event, one request per job.
 * A binary (non-JSON) result cannot be sent: AWS wants it wrapped
 * (SELECT encode(*, 'base64') AS data).
 *
 * functionArn is a name, a partial or a full ARN, with an optional
 * :version or :alias suffix; it goes out as the bare name in the path and
 * ?Qualifier= (aws_lambda_target_parse); a full ARN's region picks the
 * endpoint. */
#include <stdio.h>
#include <string.h>

#include "sinks/lib/awssink.h"

static const awssink_call CALL = {.what = "Failed to invoke lambda function", .service = "AWS Lambda"};

static int
prepare(void *state, sink_job *j)
{
	(void)state;
	const char *arn = sink_param(j, "functionArn");
	aws_lambda_target t;
	snprintf(j->resource, sizeof(j->resource), "%s", arn);
	cJSON *doc = awssink_result_json(j);
	const char *why = aws_lambda_target_parse(arn, &t) < 0 ? "the functionArn is not a function name or ARN"
	    : doc == NULL ? "the result is not JSON: a binary payload must be wrapped, e.g. SELECT encode(*, 'base64') AS data"
	    : NULL;
	cJSON_Delete(doc);
	if (why) {
		sink_error_message(j, CALL.what, why);
		return -1;
	}
	snprintf(j->dest, sizeof(j->dest), "%s", arn);
	return 0;
}

/* One job a send (batch_max 1). */
static void
send_jobs(void *state, sink_job **jobs, int n)
{
	(void)state;
	(void)n;
	sink_job *j = jobs[0];
	aws_lambda_target t;
	aws_lambda_target_parse(sink_param(j, "functionArn"), &t);   /* checked in prepare */
	aws_request rq = {.service = "lambda", .endpoint_id = "LAMBDA", .region = t.region,
	    .path = t.path, .query = t.query[0] ? t.query : NULL,
	    .content_type = "application/json", .headers = {"X-Amz-Invocation-Type: Event"},
	    .body = j->env.s[ENV_RESULT].p, .body_len = j->env.s[ENV_RESULT].n,
	    .role_arn = awssink_role(j)};
	awssink_send(&rq, jobs, 1, &CALL);
}

int
main(int argc, char **argv)
{
	sink_ops ops = {0};
	ops.action = "lambda";
	ops.prepare = prepare;
	ops.send = send_jobs;
	ops.batch_max = 1;
	return awssink_main(argc, argv, &ops);
}
