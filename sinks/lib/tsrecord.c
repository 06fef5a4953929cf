#include "sinks/lib/tsrecord.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sinks/lib/ddbjson.h"

#define MAX_VALUE 2048

int
tsrecord_dimensions(buf *out, const cJSON *d, char *why, size_t cap)
{
	const cJSON *e;
	if (!cJSON_IsArray(d) || cJSON_GetArraySize(d) < 1 || cJSON_GetArraySize(d) > 128)
		return snprintf(why, cap, "dimensions must hold 1 to 128 entries"), -1;
	buf_addc(out, '[');
	cJSON_ArrayForEach(e, d) {
		const char *n = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "name"));
		const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "value"));
		if (n == NULL || v == NULL || n[0] == 0)
			return snprintf(why, cap, "a dimension has no name or no value"), -1;
		if (!strcmp(n, "measure_name") || !strcmp(n, "measure_value") || !strcmp(n, "time") ||
		    !strncmp(n, "ts_", 3) || !strncmp(n, "measure_value", 13) || strchr(n, ':'))
			return snprintf(why, cap, "the dimension name %.200s is reserved or holds ':'", n), -1;
		buf_adds(out, out->data[out->len - 1] == '[' ? "{\"Name\":" : ",{\"Name\":");
		buf_add_json_str(out, n, strlen(n));
		buf_adds(out, ",\"Value\":");
		buf_add_json_str(out, v, strlen(v));
		buf_adds(out, ",\"DimensionValueType\":\"VARCHAR\"}");
	}
	buf_addc(out, ']');
	return 0;
}

/* An attribute in DynamoDB form (ddbjson: numbers keep their text) as
 * MeasureValue text and type; NULL for null (skipped). */
static const char *
measure(const cJSON *a, buf *text)
{
	const cJSON *v = a->child;
	const char *k = v ? v->string : "NULL";
	if (!strcmp(k, "S") || !strcmp(k, "N")) {
		buf_adds(text, v->valuestring);
		if (k[0] == 'S')
			return "VARCHAR";
		errno = 0;
		char *end;
		strtoll(v->valuestring, &end, 10);
		return *end == 0 && errno == 0 ? "BIGINT" : "DOUBLE";
	}
	if (!strcmp(k, "BOOL")) {
		buf_adds(text, cJSON_IsTrue(v) ? "true" : "false");
		return "BOOLEAN";
	}
	if (!strcmp(k, "M") || !strcmp(k, "L")) {
		char *ddb = cJSON_PrintUnformatted(a);
		int e = ddb ? ddbjson_to_json(text, ddb, strlen(ddb)) : -1;
		cJSON_free(ddb);
		return e == 0 ? "VARCHAR" : NULL;
	}
	return NULL;
}

int
tsrecord_build(buf *out, const char *json, size_t n, const buf *dims, const char *time, const char *unit,
    char *why, size_t cap)
{
	buf item = BUF_ZERO, text = BUF_ZERO;
	cJSON *attrs = NULL, *a;
	int count = 0;
	why[0] = 0;
	if (ddbjson_item_from_json(&item, json, n) != 0 || (attrs = cJSON_ParseWithLength(item.data, item.len)) == NULL)
		snprintf(why, cap, "the result is not a JSON object");
	cJSON_ArrayForEach(a, attrs) {
		buf_reset(&text);
		const char *type = measure(a, &text);
		if (type == NULL)
			continue;
		if (++count > TSRECORD_MAX || a->string[0] == 0 || text.len == 0 || text.len > MAX_VALUE) {
			snprintf(why, cap, count > TSRECORD_MAX ? "the result has more than 100 attributes"
			    : "the attribute \"%.200s\" has an empty name, or a value empty or longer than 2048", a->string);
			break;
		}
		buf_adds(out, count > 1 ? ",{\"Dimensions\":" : "{\"Dimensions\":");
		buf_add(out, dims->data, dims->len);
		buf_adds(out, ",\"MeasureName\":");
		buf_add_json_str(out, a->string, strlen(a->string));
		buf_adds(out, ",\"MeasureValue\":");
		buf_add_json_str(out, text.data, text.len);
		buf_printf(out, ",\"MeasureValueType\":\"%s\",\"Time\":\"%s\",\"TimeUnit\":\"%s\"}", type, time, unit);
	}
	if (why[0] == 0 && count == 0)
		snprintf(why, cap, "the result has no attribute to write (null ones are skipped)");
	cJSON_Delete(attrs);
	buf_free(&item);
	buf_free(&text);
	return why[0] ? -1 : count;
}
