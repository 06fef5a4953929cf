/* iotrules-sink-cloudwatchmetric: the cloudwatchMetric action (ACTIONS.md
 * §2.3): CloudWatch PutMetricData{Namespace, MetricData: [{MetricName,
 * Value, Unit, Timestamp}]}, one datum and one request per message, in
 * the query protocol target-apis.json gives CloudWatch (sinks/lib/cwquery):
 * MetricData.member.1.* form parameters, Timestamp as ISO 8601.
 *
 * metricTimestamp is epoch seconds (AWS's page), empty for the message's
 * processing time; metricValue must parse as a finite number and
 * metricUnit be one of CloudWatch's units, once templates are resolved,
 * or the message fails at once.  The datum goes as one request, as AWS's
 * action does: PutMetricData has no per-entry answers, so a datum
 * CloudWatch refuses (e.g. a timestamp more than two weeks old) would
 * fail every message batched with it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sinks/lib/cwquery.h"

static const awssink_call CALL = {.what = "Failed to put metric data", .service = "Amazon CloudWatch"};

/* StandardUnit (target-apis.json). */
static const char *const UNITS[] = {"Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes",
    "Megabytes", "Gigabytes", "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits",
    "Percent", "Count", "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second",
    "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second",
    "Terabits/Second", "Count/Second", "None", NULL};

/* s as a finite number (spaces around it allowed); 0, or -1. */
static int
number(const char *s, double *v)
{
	char *end;
	*v = strtod(s, &end);
	while (end > s && (*end == ' ' || *end == '\t'))
		end++;
	return end == s || *end != 0 || !isfinite(*v) ? -1 : 0;
}

static int
known_unit(const char *u)
{
	for (int i = 0; UNITS[i]; i++)
		if (strcmp(UNITS[i], u) == 0)
			return 1;
	return 0;
}

/* v in the fewest digits that read back as v ("21.5", not
 * "21.499999999999999"). */
static void
shortest(char *out, size_t cap, double v)
{
	for (int p = 1; p <= 17; p++) {
		snprintf(out, cap, "%.*g", p, v);
		if (strtod(out, NULL) == v)
			return;
	}
}

/* Epoch milliseconds as ISO 8601 UTC, the query protocol's timestamp
 * ("2016-03-01T08:35:14Z", with ".mmm" when not whole seconds). */
static void
iso8601(char *out, size_t cap, int64_t ms)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, cap - n, ms % 1000 ? ".%03dZ" : "Z", (int)(ms % 1000));
}

static int
prepare(void *state, sink_job *j)
{
	(void)state;
	const char *ns = sink_param(j, "metricNamespace"), *name = sink_param(j, "metricName");
	const char *value = sink_param(j, "metricValue"), *unit = sink_param(j, "metricUnit");
	const char *ts = sink_param(j, "metricTimestamp");
	double v, secs = (double)j->env.ts_ms / 1000;
	snprintf(j->resource, sizeof(j->resource), "%s/%s", ns, name);
	const char *why = ns[0] == 0 ? "the metricNamespace is empty"
	    : name[0] == 0 ? "the metricName is empty"
	    : number(value, &v) < 0 ? "the metricValue is not a number"
	    : !known_unit(unit) ? "the metricUnit is not a CloudWatch unit"
	    : ts[0] && (number(ts, &secs) < 0 || secs < 0 || secs > 1e13)
	    ? "the metricTimestamp is not a time in epoch seconds" : NULL;
	if (why) {
		sink_error_message(j, CALL.what, why);
		return -1;
	}
	char text[32], when[40];
	shortest(text, sizeof(text), v);
	iso8601(when, sizeof(when), llround(secs * 1000));
	snprintf(j->dest, sizeof(j->dest), "%s\n%s", ns, sink_param(j, "roleArn"));
	cwq_param(&j->entry, "Namespace", ns);
	cwq_param(&j->entry, "MetricData.member.1.MetricName", name);
	cwq_param(&j->entry, "MetricData.member.1.Value", text);
	cwq_param(&j->entry, "MetricData.member.1.Unit", unit);
	cwq_param(&j->entry, "MetricData.member.1.Timestamp", when);
	return 0;
}

int
main(int argc, char **argv)
{
	return cwq_main(argc, argv, prepare, "PutMetricData", &CALL);
}
