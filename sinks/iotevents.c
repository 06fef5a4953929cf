/* iotrules-sink-iotevents: the iotEvents action (ACTIONS.md §2.10): the
 * result as a message to an IoT Events input, its messageId the templated
 * messageId or a new UUID; in batchMode an array result gives one message
 * per element (at most 10), each with a new UUID, and a messageId may not
 * be set.  Messages carry their input, so jobs of one role go together in
 * BatchPutMessage of the iotevents-data API (signing name ioteventsdata,
 * AWS host data.iotevents.REGION.amazonaws.com, POST /inputs/messages): at
 * most 10 messages and 1 KiB of payloads a request, messageIds unique in
 * it; each message's own answer (BatchPutMessageErrorEntries) decides its
 * job (sinks/lib/iotbatch.h).
 *
 * The names the API constrains are checked here, so that one job's bad
 * templated inputName or messageId cannot fail a whole request of
 * others: inputName ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$ (1-128), messageId
 * ^[a-zA-Z0-9_-]+$ (1-64, the data API's limit). */
#include <stdio.h>

#include "sinks/lib/iotbatch.h"

#define MAX_MESSAGES 10
#define MAX_PAYLOAD 1024   /* bytes of payload per BatchPutMessage */

static const char *prepare(sink_job *j);

/* AWS's host has "data."; a configured AWS_ENDPOINT_URL_IOT_EVENTS_DATA
 * is used as given, nothing added (common/aws.h). */
static const iotbatch_api API = {
	.call = {.what = "Failed to send message to IoT Events", .service = "AWS IoT Events"},
	.service = "ioteventsdata",
	.endpoint_id = "IOT_EVENTS_DATA",
	.host = "data.iotevents.{region}.amazonaws.com",
	.path = "/inputs/messages",
	.list_key = "messages",
	.id_key = "messageId",
	.errors_key = "BatchPutMessageErrorEntries",
	.payload_key = "payload",
	.max_entries = MAX_MESSAGES,
	.max_payload = MAX_PAYLOAD,
	.prepare = prepare,
};

/* Messages carry their input: all of one role share requests.  (A
 * messageId with batchMode never gets here: the rule loader refuses it.) */
static const char *
prepare(sink_job *j)
{
	const char *input = sink_param(j, "inputName");
	cJSON *id = cJSON_GetObjectItemCaseSensitive(j->params, "messageId");
	snprintf(j->resource, sizeof(j->resource), "%s", input);
	if (!iotbatch_name_ok(input, 128, "_.-", 1))
		return "the inputName is not 1-128 characters of [a-zA-Z0-9_.-] starting with a letter or digit";
	if (id && !iotbatch_name_ok(cJSON_IsString(id) ? id->valuestring : "", 64, "_-", 0))
		return "the messageId is not 1-64 characters of [a-zA-Z0-9_-]";
	return iotbatch_messages(j, MAX_MESSAGES, MAX_PAYLOAD, input, id ? id->valuestring : NULL);
}

int
main(int argc, char **argv)
{
	return iotbatch_main(argc, argv, &API);
}
