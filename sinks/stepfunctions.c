/* iotrules-sink-stepfunctions: the stepFunctions action (ACTIONS.md
 * §2.21): StartExecution{stateMachineArn, name, input} per job (Step
 * Functions has no batch start), JSON 1.0 to "states".
 *
 * stateMachineArn = arn:PARTITION:states:REGION:ACCOUNT:stateMachine:NAME
 * with the client's region and the caller's partition and account
 * (sinks/lib/awsaccount: STS GetCallerIdentity, once per role).
 * name = executionNamePrefix + a UUID, made once per job in prepare, so
 * that a retried request carries the same name (StartExecution with the
 * same name and input is idempotent while the execution runs); without a
 * prefix no name is sent and Step Functions makes one, as in AWS.
 * input = the result JSON as text.
 *
 * Fails at once [decision]: a prefix over 44 characters (the name is at
 * most 80, the UUID takes 36), an empty stateMachineName, a result that is
 * not JSON (Step Functions takes JSON input only).  The service's 400s
 * (StateMachineDoesNotExist, ExecutionAlreadyExists, InvalidName,
 * InvalidExecutionInput, InvalidArn, ...) are permanent, except
 * ExecutionLimitExceeded (too many executions running: they end), which
 * is retried as throttling. */
#include <stdio.h>
#include <string.h>

#include "common/utf8.h"
#include "sinks/lib/awsaccount.h"
#include "sinks/lib/awssink.h"

#define MAX_PREFIX 44   /* characters: 80 - 36 */

static const awssink_call CALL = {.what = "Failed to start the Step Functions execution",
    .service = "AWS Step Functions"};
static const awssink_call STS = {.what = "Failed to start the Step Functions execution: the account for the state machine ARN is unknown",
    .service = "AWS STS"};

static int
prepare(void *state, sink_job *j)
{
	(void)state;
	const char *sm = sink_param(j, "stateMachineName");
	const char *prefix = sink_param(j, "executionNamePrefix");
	snprintf(j->resource, sizeof(j->resource), "%s", sm);
	cJSON *doc = awssink_result_json(j);
	const char *why = sm[0] == 0 ? "the stateMachineName is empty"
	    : utf8_chars(prefix) > MAX_PREFIX ? "the executionNamePrefix is longer than 44 characters (the execution name, prefix + a UUID, is limited to 80)"
	    : doc == NULL ? "the result is not JSON (Step Functions takes JSON input only)"
	    : NULL;
	cJSON_Delete(doc);
	if (why) {
		sink_error_message(j, CALL.what, why);
		return -1;
	}
	/* The body after the ARN (which needs the account, known at send). */
	if (prefix[0]) {
		char name[MAX_PREFIX * 4 + 40];
		size_t pn = strlen(prefix);
		memcpy(name, prefix, pn);
		awssink_uuid(name + pn);
		buf_adds(&j->entry, ",\"name\":");
		buf_add_json_str(&j->entry, name, strlen(name));
	}
	buf_adds(&j->entry, ",\"input\":");
	buf_add_json_str(&j->entry, j->env.s[ENV_RESULT].p, j->env.s[ENV_RESULT].n);
	buf_addc(&j->entry, '}');
	snprintf(j->dest, sizeof(j->dest), "%s\n%s", sm, sink_param(j, "roleArn"));
	return 0;
}

static void
on_answer(void *arg, const aws_response *r)
{
	sink_job *j = arg;
	aws_response a = *r;
	if (strcmp(r->error_code, "ExecutionLimitExceeded") == 0)
		a.verdict = AWS_THROTTLED;
	if (a.verdict == AWS_OK)
		sink_job_done(j, SINK_OK);
	else
		awssink_fail_all(&j, 1, &a, &CALL);
}

/* The account is known: start the execution. */
static void
start_execution(sink_job *j, const char *partition, const char *account, const aws_response *err)
{
	if (err) {
		awssink_fail_all(&j, 1, err, &STS);
		return;
	}
	buf b = BUF_ZERO, arn = BUF_ZERO;
	buf_printf(&arn, "arn:%s:states:%s:%s:stateMachine:%s", partition, aws_region(awssink_client()), account,
	    sink_param(j, "stateMachineName"));
	buf_adds(&b, "{\"stateMachineArn\":");
	buf_add_json_str(&b, arn.data, arn.len);
	buf_add(&b, j->entry.data, j->entry.len);
	aws_request rq = {.service = "states", .endpoint_id = "SFN", .target = "AWSStepFunctions.StartExecution",
	    .content_type = "application/x-amz-json-1.0", .body = b.data, .body_len = b.len,
	    .role_arn = awssink_role(j)};
	aws_send(awssink_client(), &rq, on_answer, j);
	buf_free(&b);
	buf_free(&arn);
}

static void
send_jobs(void *state, sink_job **jobs, int n)
{
	(void)state;
	for (int i = 0; i < n; i++)
		awsaccount_get(jobs[i], awssink_role(jobs[i]), start_execution);
}

int
main(int argc, char **argv)
{
	sink_ops ops = {0};
	ops.action = "stepfunctions";
	ops.prepare = prepare;
	ops.send = send_jobs;
	ops.batch_max = 1;
	return awssink_main(argc, argv, &ops);
}
