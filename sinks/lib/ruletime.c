#include "sinks/lib/ruletime.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_MS 253402300799999LL   /* 9999-12-31T23:59:59.999Z */

static const struct {
	const char *name;
	int64_t per_ms;    /* units in a ms (> 0), or */
	int64_t ms_per;    /* ms in a unit */
} units[] = {
    {"SECONDS", 0, 1000}, {"MILLISECONDS", 1, 0}, {"MICROSECONDS", 1000, 0}, {"NANOSECONDS", 1000000, 0},
};

const char *
ruletime_get(const sink_job *j, const char *name, ruletime *t)
{
	const cJSON *ts = cJSON_GetObjectItemCaseSensitive(j->params, name);
	t->unit = "MILLISECONDS";
	if (ts == NULL || cJSON_IsNull(ts)) {
		t->ms = (int64_t)j->env.ts_ms;
		snprintf(t->value, sizeof(t->value), "%lld", (long long)t->ms);
		return NULL;
	}
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(ts, "value");
	const cJSON *u = cJSON_GetObjectItemCaseSensitive(ts, "unit");
	if (!cJSON_IsString(v))
		return "the timestamp has no value";
	size_t k = 1;   /* MILLISECONDS */
	if (u && !cJSON_IsNull(u)) {
		for (k = 0; k < sizeof(units) / sizeof(units[0]); k++)
			if (cJSON_IsString(u) && strcmp(u->valuestring, units[k].name) == 0)
				break;
		if (k == sizeof(units) / sizeof(units[0]))
			return "the timestamp unit is not SECONDS, MILLISECONDS, MICROSECONDS or NANOSECONDS";
	}
	/* Digits, or digits and a zero fraction: 2015-10-08 arithmetic
	 * renders ${timestamp() * 1E3} as "1796173748152000.0". */
	const char *s = v->valuestring;
	size_t n = strspn(s, "0123456789");
	if (n == 0 || n >= sizeof(t->value) ||
	    (s[n] != 0 && (s[n] != '.' || strspn(s + n + 1, "0") != strlen(s + n + 1))))
		return "the timestamp value is not a whole number of its unit";
	errno = 0;
	unsigned long long x = strtoull(s, NULL, 10);
	if (errno == ERANGE || x > (unsigned long long)INT64_MAX)
		return "the timestamp value is out of range";
	t->unit = units[k].name;
	t->ms = units[k].ms_per ? ((int64_t)x > MAX_MS / units[k].ms_per ? MAX_MS + 1 : (int64_t)x * units[k].ms_per)
	    : (int64_t)x / units[k].per_ms;
	if (t->ms > MAX_MS)
		return "the timestamp value is out of range (after the year 9999)";
	/* Without leading zeros: the service reads a number. */
	snprintf(t->value, sizeof(t->value), "%llu", x);
	return NULL;
}

void
ruletime_iso(int64_t ms, char *out, size_t cap)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	char d[24];
	gmtime_r(&s, &tm);
	strftime(d, sizeof(d), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, cap, "%s.%03dZ", d, (int)(ms % 1000));
}

int64_t
ruletime_parse_iso(const char *s)
{
	struct tm tm;
	int n = 0, ms = 0, digits = 0, oh = 0, om = 0;
	memset(&tm, 0, sizeof(tm));
	if (s == NULL || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
	    &tm.tm_min, &tm.tm_sec, &n) != 6)
		return -1;
	s += n;
	if (*s == '.')
		for (s++; isdigit((unsigned char)*s); s++, digits++)
			if (digits < 3)
				ms = ms * 10 + (*s - '0');
	for (; digits > 0 && digits < 3; digits++)
		ms *= 10;
	if ((*s == '+' || *s == '-') && sscanf(s + 1, "%2d:%2d%n", &oh, &om, &n) == 2 && s[1 + n] == 0)
		oh = *s == '-' ? -oh : oh, om = *s == '-' ? -om : om;
	else if (strcmp(s, "Z") != 0)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	time_t t = timegm(&tm);
	return t < 0 ? -1 : ((int64_t)t - oh * 3600 - om * 60) * 1000 + ms;
}
