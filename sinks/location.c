/* iotrules-sink-location: the location action (ACTIONS.md §2.15): the
 * device's position as one update of an Amazon Location tracker:
 * BatchUpdateDevicePosition (REST-JSON, POST /tracking/v0/trackers/
 * {TrackerName}/positions) with {DeviceId, Position: [longitude,
 * latitude], SampleTime: the timestamp parameter, or the time the message
 * came in, as ISO 8601 with milliseconds}.
 *
 * Jobs for one tracker go together (10 updates a request).  The answer
 * lists failed updates in Errors[] by DeviceId and SampleTime, not by
 * position: each error is matched to the update with that device id and
 * sample time, and two updates of one device at one sample time never
 * share a request, so an error names exactly one message.  What would
 * make Location refuse a whole request (a bad tracker name, device id or
 * position) fails that one message in prepare instead. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "sinks/lib/awssink.h"
#include "sinks/lib/entrylist.h"
#include "sinks/lib/ruletime.h"

#define MAX_UPDATES 10
#define NAME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._"

static void judge(sink_job **jobs, int n, const aws_response *r, cJSON *body, const awssink_call *call);

static const awssink_call CALL = {.what = "Failed to update the device position",
    .service = "Amazon Location Service", .judge = judge};

/* A coordinate's text as a decimal number within ±limit: 0, else -1. */
static int
coordinate(const char *s, double limit, double *out)
{
	char *end;
	*out = strtod(s, &end);
	return end != s && *end == 0 && !strpbrk(s, "xX \t\n") && isfinite(*out) && fabs(*out) <= limit ? 0 : -1;
}

/* DeviceId: 1-100 characters, letters, digits and -._ (the bytes of a
 * multibyte UTF-8 character are taken for a letter's). */
static int
device_ok(const char *s)
{
	size_t chars = 0;
	for (; *s; s++) {
		if ((unsigned char)*s < 0x80 && strchr(NAME_CHARS, *s) == NULL)
			return 0;
		chars += (*s & 0xC0) != 0x80;
	}
	return chars >= 1 && chars <= 100;
}

static int
prepare(void *state, sink_job *j)
{
	(void)state;
	const char *tracker = sink_param(j, "trackerName"), *dev = sink_param(j, "deviceId"), *why = NULL;
	double lon, lat;
	ruletime t;
	char iso[32];
	snprintf(j->resource, sizeof(j->resource), "%s", tracker);
	if (!tracker[0] || strlen(tracker) > 100 || strspn(tracker, NAME_CHARS) != strlen(tracker))
		why = "the trackerName is not 1-100 characters of A-Z a-z 0-9 - . _";
	else if (!device_ok(dev))
		why = "the deviceId is not 1-100 characters of letters, digits, - . _";
	else if (coordinate(sink_param(j, "latitude"), 90, &lat) || coordinate(sink_param(j, "longitude"), 180, &lon))
		why = "the latitude (-90..90) or longitude (-180..180) is not a number in range";
	else
		why = ruletime_get(j, "timestamp", &t);
	if (why) {
		sink_error_message(j, CALL.what, why);
		return -1;
	}
	ruletime_iso(t.ms, iso, sizeof(iso));
	snprintf(j->dest, sizeof(j->dest), "%s\n%s", tracker, sink_param(j, "roleArn"));
	/* cJSON writes the shortest text that reads back as the same double. */
	cJSON *u = cJSON_CreateObject(), *pos = cJSON_AddArrayToObject(u, "Position");
	cJSON_AddStringToObject(u, "DeviceId", dev);
	cJSON_AddItemToArray(pos, cJSON_CreateNumber(lon));
	cJSON_AddItemToArray(pos, cJSON_CreateNumber(lat));
	cJSON_AddStringToObject(u, "SampleTime", iso);
	char *text = cJSON_PrintUnformatted(u);
	if (text == NULL)
		log_die(111, "out of memory");
	buf_adds(&j->entry, text);
	cJSON_free(text);
	cJSON_Delete(u);
	return 0;
}

/* The job's sample time in ms (its timestamp was checked in prepare). */
static int64_t
sample_ms(const sink_job *j)
{
	ruletime t;
	ruletime_get(j, "timestamp", &t);
	return t.ms;
}

static int
same_update(const sink_job *a, const sink_job *b)
{
	return strcmp(sink_param(a, "deviceId"), sink_param(b, "deviceId")) == 0 && sample_ms(a) == sample_ms(b);
}

/* Sends jobs[0..n) in as few requests as keep (DeviceId, SampleTime)
 * unique within each. */
static void
send_jobs(void *state, sink_job **jobs, int n)
{
	(void)state;
	sink_job *left[MAX_UPDATES], *group[MAX_UPDATES];
	buf path = BUF_ZERO, body = BUF_ZERO;
	buf_printf(&path, "/tracking/v0/trackers/%s/positions", sink_param(jobs[0], "trackerName"));   /* NAME_CHARS */
	memcpy(left, jobs, (size_t)n * sizeof(*jobs));
	while (n > 0) {
		int ng = entrylist_take_distinct(left, &n, group, same_update);
		buf_reset(&body);
		buf_adds(&body, "{\"Updates\":");
		entrylist_add(&body, group, ng);
		buf_addc(&body, '}');
		aws_request rq = {.service = "geo", .endpoint_id = "LOCATION", .host = "tracking.geo.{region}.amazonaws.com",
		    .path = path.data, .content_type = "application/json", .body = body.data, .body_len = body.len,
		    .role_arn = awssink_role(group[0])};
		awssink_send(&rq, group, ng, &CALL);
	}
	buf_free(&path);
	buf_free(&body);
}

/* Errors[] names failed updates by DeviceId and SampleTime (ISO 8601 in
 * whatever precision the service writes it: compared in ms; without one
 * the device's first update not yet matched). */
static void
judge(sink_job **jobs, int n, const aws_response *r, cJSON *body, const awssink_call *call)
{
	const char *code[MAX_UPDATES] = {0}, *msg[MAX_UPDATES] = {0};
	cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(body, "Errors")) {
		const char *dev = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "DeviceId"));
		const char *st = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "SampleTime"));
		cJSON *err = cJSON_GetObjectItemCaseSensitive(e, "Error");
		int64_t ms = ruletime_parse_iso(st);
		int i = 0;
		while (i < n && (code[i] || !dev || strcmp(sink_param(jobs[i], "deviceId"), dev) ||
		    (ms >= 0 && sample_ms(jobs[i]) != ms)))
			i++;
		if (i == n)
			continue;
		code[i] = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(err, "Code"));
		code[i] = code[i] && code[i][0] ? code[i] : "InternalServerError";
		msg[i] = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(err, "Message"));
	}
	for (int i = 0; i < n; i++)
		awssink_entry(jobs[i], call, r->status, code[i], msg[i] ? msg[i] : "");
}

int
main(int argc, char **argv)
{
	sink_ops ops = {0};
	ops.action = "location";
	ops.prepare = prepare;
	ops.send = send_jobs;
	ops.batch_max = MAX_UPDATES;
	return awssink_main(argc, argv, &ops);
}
