/* iotrules-sink-cloudwatchalarm: the cloudwatchAlarm action (ACTIONS.md
 * §2.1): CloudWatch SetAlarmState{AlarmName, StateValue, StateReason},
 * one request per message, in the query protocol (sinks/lib/cwquery).
 * The SQL result is not sent: it only decides, through WHERE, whether the
 * call happens.  A stateValue that is not OK, ALARM or INSUFFICIENT_DATA
 * once its templates are resolved fails at once; the alarm's existence
 * and the reason's length are CloudWatch's to judge (ResourceNotFound,
 * ValidationError: permanent, one error document). */
#include <stdio.h>
#include <string.h>

#include "sinks/lib/cwquery.h"

static const awssink_call CALL = {.what = "Failed to set alarm state", .service = "Amazon CloudWatch"};

static int
prepare(void *state, sink_job *j)
{
	(void)state;
	const char *name = sink_param(j, "alarmName"), *value = sink_param(j, "stateValue");
	snprintf(j->resource, sizeof(j->resource), "%s", name);
	const char *why = name[0] == 0 ? "the alarmName is empty"
	    : strcmp(value, "OK") != 0 && strcmp(value, "ALARM") != 0 && strcmp(value, "INSUFFICIENT_DATA") != 0
	    ? "the stateValue is not OK, ALARM or INSUFFICIENT_DATA" : NULL;
	if (why) {
		sink_error_message(j, CALL.what, why);
		return -1;
	}
	snprintf(j->dest, sizeof(j->dest), "%s\n%s", name, sink_param(j, "roleArn"));
	cwq_param(&j->entry, "AlarmName", name);
	cwq_param(&j->entry, "StateValue", value);
	cwq_param(&j->entry, "StateReason", sink_param(j, "stateReason"));
	return 0;
}

int
main(int argc, char **argv)
{
	return cwq_main(argc, argv, prepare, "SetAlarmState", &CALL);
}
