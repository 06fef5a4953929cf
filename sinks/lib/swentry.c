#include "sinks/lib/swentry.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/utf8.h"
#include "common/xalloc.h"
#include "sinks/lib/awssink.h"
#include "sinks/lib/iotbatch.h"

static const char *
str(const cJSON *o, const char *key)
{
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
	return s ? s : "";
}

/* 1 when s is a finite number within [lo, hi], integral if asked: plain
 * decimal, fraction or exponent text (no hex, inf, nan or spaces). */
static int
number(const char *s, double lo, double hi, int integral, double *d)
{
	char *end;
	if (s[0] == 0 || strspn(s, "+-0123456789.eE") != strlen(s))
		return 0;
	errno = 0;
	*d = strtod(s, &end);
	return *end == 0 && errno == 0 && isfinite(*d) && *d >= lo && *d <= hi && (!integral || *d == floor(*d));
}

/* A lower-case UUID, as the API wants asset and property ids. */
static int
uuid_ok(const char *s)
{
	if (strlen(s) != 36)
		return 0;
	for (int i = 0; i < 36; i++)
		if (i == 8 || i == 13 || i == 18 || i == 23 ? s[i] != '-' : strchr("0123456789abcdef", s[i]) == NULL)
			return 0;
	return 1;
}

/* A propertyValue (value, timestamp, quality) into o; NULL, or why not
 * (written into why). */
static const char *
property_value(const cJSON *in, cJSON *o, char *why, size_t cap)
{
	static const char *const keys[] = {"stringValue", "integerValue", "doubleValue", "booleanValue"};
	static const char *const wants[] = {"1-1024 characters", "a 32-bit integer", "a number", "true or false"};
	const cJSON *val = cJSON_GetObjectItemCaseSensitive(in, "value"), *ts = cJSON_GetObjectItemCaseSensitive(in, "timestamp");
	cJSON *v = xmust(cJSON_AddObjectToObject(o, "value")), *t = xmust(cJSON_AddObjectToObject(o, "timestamp"));
	int k = -1, n = 0;
	why[0] = 0;
	for (int i = 0; i < 4; i++)
		if (cJSON_GetObjectItemCaseSensitive(val, keys[i]))
			k = i, n++;
	if (n != 1)
		return "a value needs exactly one of stringValue, integerValue, doubleValue, booleanValue";
	const char *s = str(val, keys[k]), *secs = str(ts, "timeInSeconds"), *nanos = str(ts, "offsetInNanos");
	const char *q = str(in, "quality");
	double d;
	if (k == 0 && utf8_chars(s) >= 1 && utf8_chars(s) <= 1024)
		xmust(cJSON_AddStringToObject(v, keys[k], s));
	else if ((k == 1 && number(s, -2147483648.0, 2147483647.0, 1, &d)) || (k == 2 && number(s, -INFINITY, INFINITY, 0, &d)))
		xmust(cJSON_AddNumberToObject(v, keys[k], d));
	else if (k == 3 && (strcasecmp(s, "true") == 0 || strcasecmp(s, "false") == 0))
		xmust(cJSON_AddBoolToObject(v, keys[k], strcasecmp(s, "true") == 0));
	else
		snprintf(why, cap, "the %s \"%.60s\" is not %s", keys[k], s, wants[k]);
	if (why[0])
		return why;
	if (!number(secs, 1, 9223372036854774.0, 1, &d))
		snprintf(why, cap, "the timeInSeconds \"%.60s\" is not a positive integer", secs);
	else if (xmust(cJSON_AddNumberToObject(t, "timeInSeconds", d)) && cJSON_GetObjectItemCaseSensitive(ts, "offsetInNanos")) {
		if (number(nanos, 0, 999999999, 1, &d))
			xmust(cJSON_AddNumberToObject(t, "offsetInNanos", d));
		else
			snprintf(why, cap, "the offsetInNanos \"%.60s\" is not an integer 0-999999999", nanos);
	}
	if (why[0] == 0 && cJSON_GetObjectItemCaseSensitive(in, "quality")) {
		if (strcmp(q, "GOOD") == 0 || strcmp(q, "BAD") == 0 || strcmp(q, "UNCERTAIN") == 0)
			xmust(cJSON_AddStringToObject(o, "quality", q));
		else
			snprintf(why, cap, "the quality \"%.60s\" is not GOOD, BAD or UNCERTAIN", q);
	}
	return why[0] ? why : NULL;
}

const char *
swentry_convert(const cJSON *in, cJSON *e, char *why, size_t cap)
{
	const char *id = str(in, "entryId"), *alias = str(in, "propertyAlias");
	const char *asset = str(in, "assetId"), *prop = str(in, "propertyId"), *bad = NULL;
	const cJSON *vals = cJSON_GetObjectItemCaseSensitive(in, "propertyValues"), *v;
	char uuid[37];
	if (cJSON_GetObjectItemCaseSensitive(in, "entryId") == NULL) {
		awssink_uuid(uuid);
		id = uuid;
	}
	if (!iotbatch_name_ok(id, 64, "_-", 0))
		return "the entryId is not 1-64 characters of [a-zA-Z0-9_-]";
	if (alias[0] == 0 && (asset[0] == 0 || prop[0] == 0))
		return "an entry has neither a propertyAlias nor an assetId and a propertyId";
	if ((asset[0] || prop[0]) && (!uuid_ok(asset) || !uuid_ok(prop)))
		return "the assetId and propertyId must be lower-case UUIDs";
	for (const char *p = alias; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f || p - alias >= 2048)
			return "the propertyAlias is longer than 2048 characters or holds control characters";
	if (cJSON_GetArraySize(vals) < 1 || cJSON_GetArraySize(vals) > 10)
		return "an entry needs 1 to 10 propertyValues";
	xmust(cJSON_AddStringToObject(e, "entryId", id));
	if (alias[0])
		xmust(cJSON_AddStringToObject(e, "propertyAlias", alias));
	if (asset[0] && xmust(cJSON_AddStringToObject(e, "assetId", asset)))
		xmust(cJSON_AddStringToObject(e, "propertyId", prop));
	cJSON *out = xmust(cJSON_AddArrayToObject(e, "propertyValues"));
	cJSON_ArrayForEach(v, vals) {
		cJSON *o = xmust(cJSON_CreateObject());
		cJSON_AddItemToArray(out, o);
		if ((bad = property_value(v, o, why, cap)) != NULL)
			break;
	}
	return bad;
}

