/* iotrules-sink-iotanalytics: the iotAnalytics action (ACTIONS.md §2.9):
 * the result as a message of an IoT Analytics channel, with a fresh UUID
 * as its messageId; in batchMode an array result gives one message per
 * element (at most 100).  Jobs for one channel go together in
 * BatchPutMessage (100 messages, POST /messages/batch, rest-json); each
 * message's own answer (batchPutMessageErrorEntries) decides its job
 * (sinks/lib/iotbatch.h).
 *
 * The channel is channelName, or the name in the deprecated channelArn
 * (arn:aws:iotanalytics:REGION:ACCOUNT:channel/NAME), whose region then
 * picks the endpoint. */
#include <stdio.h>
#include <string.h>

#include "sinks/lib/iotbatch.h"

#define MAX_MESSAGES 100
#define MAX_PAYLOAD (128 << 10)   /* IoT Analytics' message size quota */

static void head(const sink_job *j, buf *body, char *region);
static const char *prepare(sink_job *j);

static const iotbatch_api API = {
	.call = {.what = "Failed to send message to IoT Analytics", .service = "AWS IoT Analytics"},
	.service = "iotanalytics",
	.endpoint_id = "IOTANALYTICS",
	.path = "/messages/batch",
	.list_key = "messages",
	.id_key = "messageId",
	.errors_key = "batchPutMessageErrorEntries",
	.max_entries = MAX_MESSAGES,
	.head = head,
	.prepare = prepare,
};

/* The channel's name and region (64 bytes; "" for the client's) of job
 * j; -1 when neither channelName nor a channel ARN is there. */
static int
channel(const sink_job *j, char *name, size_t cap, char *region)
{
	const char *n = sink_param(j, "channelName"), *arn = sink_param(j, "channelArn");
	const char *slash = strstr(arn, ":channel/");
	region[0] = 0;
	if (n[0] == 0 && slash && slash[9] && aws_arn_region(arn, region, 64) == 0)
		n = slash + 9;
	else if (n[0] == 0)
		return -1;
	snprintf(name, cap, "%s", n);
	return 0;
}

/* Messages of one channel (and region and role) share requests. */
static const char *
prepare(sink_job *j)
{
	char name[256] = "", region[64];
	if (channel(j, name, sizeof(name), region) < 0)
		return "neither channelName nor a channel ARN (channelArn) is given";
	snprintf(j->resource, sizeof(j->resource), "%s", name);
	snprintf(j->dest, sizeof(j->dest), "%s\n%s\n%s", name, region, sink_param(j, "roleArn"));
	return iotbatch_messages(j, MAX_MESSAGES, MAX_PAYLOAD, NULL, NULL);
}

/* "channelName":..., before the messages; the ARN's region. */
static void
head(const sink_job *j, buf *body, char *region)
{
	char name[256];
	channel(j, name, sizeof(name), region);   /* checked in prepare */
	buf_adds(body, "\"channelName\":");
	buf_add_json_str(body, name, strlen(name));
	buf_addc(body, ',');
}

int
main(int argc, char **argv)
{
	return iotbatch_main(argc, argv, &API);
}
