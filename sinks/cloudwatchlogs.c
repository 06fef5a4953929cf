/* iotrules-sink-cloudwatchlogs: the cloudwatchLogs action (ACTIONS.md
 * §2.2): log events put into the log group logGroupName, in the log
 * stream named after the rule (§6 decision 4), created on first use.
 *
 * A message is one event {timestamp: its processing time (ms), message:
 * the result text}; in batchMode the result must be a JSON array of
 * {"timestamp": epoch ms, "message": "text"}, one event each (an element
 * without a whole-number timestamp or a string message, an empty array,
 * more than 10,000 events, more than 1,048,576 bytes or a span of 24 h
 * fail the message at once).  A message must be UTF-8 text and not empty
 * (PutLogEvents refuses it otherwise, and with it the whole request).
 *
 * Jobs are batched per group, stream and role; sinks/lib/cwlogs sends
 * them (sorted, cut at 24 h, the stream created when missing) and judges
 * each message by the service's rejectedLogEventsInfo. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/utf8.h"
#include "sinks/lib/cwlogs.h"

static const char *
add_event(sink_job *j, int64_t ts, const char *msg, size_t n, size_t *bytes)
{
	if (n == 0)
		return "a log event message is empty";
	if (!utf8_valid(msg, n))
		return "a log event message is not UTF-8 text";
	*bytes += n + CWLOGS_EVENT_OVERHEAD;
	cwlogs_add_event(j, ts, msg, n);
	return NULL;
}

static const char *
batch_events(sink_job *j, size_t *bytes)
{
	cJSON *doc = awssink_result_json(j), *e;
	int64_t lo = INT64_MAX, hi = INT64_MIN;
	int k = cJSON_IsArray(doc) ? cJSON_GetArraySize(doc) : 0;
	const char *why = k == 0 ? "in batchMode the result must be a non-empty JSON array"
	    : k > CWLOGS_MAX_EVENTS ? "in batchMode the array has more than 10,000 log events" : NULL;
	cJSON *list = why ? NULL : doc;
	cJSON_ArrayForEach(e, list) {
		cJSON *t = cJSON_GetObjectItemCaseSensitive(e, "timestamp");
		cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
		double v = cJSON_GetNumberValue(t);
		if (!cJSON_IsNumber(t) || !cJSON_IsString(m) || v < 0 || v > 1e15 || v != floor(v)) {
			why = "a batchMode element has no whole-number timestamp (epoch ms) or no string message";
			break;
		}
		if ((why = add_event(j, (int64_t)v, m->valuestring, strlen(m->valuestring), bytes)) != NULL)
			break;
		lo = (int64_t)v < lo ? (int64_t)v : lo;
		hi = (int64_t)v > hi ? (int64_t)v : hi;
	}
	cJSON_Delete(doc);
	return why ? why : hi - lo >= CWLOGS_MAX_SPAN_MS ? "the batchMode log events span 24 hours or more" : NULL;
}

static int
prepare(void *state, sink_job *j)
{
	(void)state;
	const char *group = sink_param(j, "logGroupName");
	const env_slice *d = &j->env.s[ENV_RESULT], *rule = &j->env.s[ENV_RULE];
	size_t bytes = 0;
	j->units = 0;
	snprintf(j->resource, sizeof(j->resource), "%s", group);
	const char *why = group[0] == 0 ? "the logGroupName is empty"
	    : cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j->params, "batchMode")) ? batch_events(j, &bytes)
	    : add_event(j, (int64_t)j->env.ts_ms, d->p, d->n, &bytes);
	if (why == NULL && bytes > CWLOGS_MAX_BYTES)
		why = "the log events are larger than 1,048,576 bytes (26 bytes counted per event)";
	if (why) {
		sink_error_message(j, cwlogs_put.what, why);
		return -1;
	}
	snprintf(j->dest, sizeof(j->dest), "%s\n%.*s\n%s", group, (int)rule->n, rule->p, sink_param(j, "roleArn"));
	return 0;
}

static void
send_jobs(void *state, sink_job **jobs, int n)
{
	(void)state;
	const env_slice *rule = &jobs[0]->env.s[ENV_RULE];
	char stream[256];
	snprintf(stream, sizeof(stream), "%.*s", (int)rule->n, rule->p);
	cwlogs_send(jobs, n, sink_param(jobs[0], "logGroupName"), stream, awssink_role(jobs[0]));
}

int
main(int argc, char **argv)
{
	sink_ops ops = {0};
	ops.prepare = prepare;
	ops.send = send_jobs;
	ops.batch_max = CWLOGS_MAX_EVENTS;
	ops.batch_bytes = CWLOGS_MAX_BYTES;
	return awssink_main(argc, argv, &ops);
}
