/* iotrules-sink-dynamodb: the dynamoDB action (ACTIONS.md §2.4): one item
 * per message, keyed by hashKeyField/Value/Type (and rangeKey*), the SQL
 * result in payloadField (default "payload"): a JSON object as a map, a
 * bare JSON value by its own type, anything else (binary) as B.
 * operation, templated: INSERT (default) puts the item, UPDATE sets
 * payloadField on it, DELETE deletes it.  Batching, folding of writes to
 * one key and retries: sinks/lib/ddbsink.h. */
#include <stdio.h>
#include <string.h>

#include "sinks/lib/ddbjson.h"
#include "sinks/lib/ddbsink.h"

/* Appends "field":{"S"|"N":"value"} to key for the hash or range key
 * (which: "hashKey", "rangeKey").  0, or -1 with why set. */
static int
add_key(buf *key, const sink_job *j, const char *which, char *why, size_t cap)
{
	char name[3][32];
	snprintf(name[0], sizeof(name[0]), "%sField", which);
	snprintf(name[1], sizeof(name[1]), "%sValue", which);
	snprintf(name[2], sizeof(name[2]), "%sType", which);
	const char *field = sink_param(j, name[0]), *value = sink_param(j, name[1]), *type = sink_param(j, name[2]);
	int num = strcmp(type, "NUMBER") == 0;
	if (field[0] == 0)
		snprintf(why, cap, "%s is empty", name[0]);
	else if (value[0] == 0)   /* DynamoDB's own words */
		snprintf(why, cap, "One or more parameter values are not valid. The AttributeValue for a key attribute "
		    "cannot contain an empty string value. Key: %.200s", field);
	else if (!num && type[0] && strcmp(type, "STRING") != 0)
		snprintf(why, cap, "%s is \"%.50s\", not STRING or NUMBER", name[2], type);
	else if (num && !ddbjson_is_number(value, strlen(value)))
		snprintf(why, cap, "%s \"%.200s\" of the NUMBER key %.100s is not a number", name[1], value, field);
	else {
		buf_adds(key, key->len > 1 ? "," : "");
		buf_add_json_str(key, field, strlen(field));
		buf_adds(key, num ? ":{\"N\":" : ":{\"S\":");
		buf_add_json_str(key, value, strlen(value));
		buf_addc(key, '}');
		return 0;
	}
	return -1;
}

/* The SQL result as the payload attribute's value. */
static int
add_payload(buf *v, const sink_job *j, char *why, size_t cap)
{
	const env_slice *d = &j->env.s[ENV_RESULT];
	int e = ddbjson_from_json(v, d->p, d->n);
	if (e == DDBJSON_ESYNTAX) {
		buf_adds(v, "{\"B\":\"");
		awssink_add_base64(v, d->p, d->n, NULL);
		buf_adds(v, "\"}");
	} else if (e != DDBJSON_OK) {
		snprintf(why, cap, "the SQL result is %s", ddbjson_strerror(e));
		return -1;
	}
	return 0;
}

/* The key (a map of its attributes) and, unless op is DELETE, the
 * payload attribute's value.  0, or -1 with why set. */
static int
build(const sink_job *j, const char *op, const char *field, buf *key, buf *value, char *why, size_t cap)
{
	int ranged = sink_param(j, "rangeKeyField")[0] || sink_param(j, "rangeKeyValue")[0];
	buf_addc(key, '{');
	if (add_key(key, j, "hashKey", why, cap) < 0 || (ranged && add_key(key, j, "rangeKey", why, cap) < 0))
		return -1;
	buf_addc(key, '}');
	if (op[0] && strcmp(op, "INSERT") != 0 && strcmp(op, "UPDATE") != 0 && strcmp(op, "DELETE") != 0) {
		snprintf(why, cap, "the operation \"%.100s\" is not INSERT, UPDATE or DELETE", op);
		return -1;
	}
	if (strcmp(field, sink_param(j, "hashKeyField")) == 0 || (ranged && strcmp(field, sink_param(j, "rangeKeyField")) == 0)) {
		snprintf(why, cap, "the payloadField \"%.100s\" is a key attribute", field);
		return -1;
	}
	return strcmp(op, "DELETE") == 0 ? 0 : add_payload(value, j, why, cap);
}

static int
prepare(void *state, sink_job *j)
{
	(void)state;
	const char *table = sink_param(j, "tableName"), *op = sink_param(j, "operation");
	const char *field = sink_param(j, "payloadField")[0] ? sink_param(j, "payloadField") : "payload";
	char why[512];
	buf key = BUF_ZERO, value = BUF_ZERO, item = BUF_ZERO;
	int r;
	if (build(j, op, field, &key, &value, why, sizeof(why)) < 0) {
		r = ddbsink_refuse(j, table, why);
	} else if (strcmp(op, "UPDATE") == 0) {
		r = ddbsink_update(j, table, &key, field, &value);
	} else if (strcmp(op, "DELETE") == 0) {
		r = ddbsink_delete(j, table, &key);
	} else {
		/* The item: the key's attributes and the payload. */
		buf_add(&item, key.data, key.len - 1);
		buf_addc(&item, ',');
		buf_add_json_str(&item, field, strlen(field));
		buf_addc(&item, ':');
		buf_add(&item, value.data, value.len);
		buf_addc(&item, '}');
		r = ddbsink_put(j, table, &key, &item);
	}
	buf_free(&key);
	buf_free(&value);
	buf_free(&item);
	return r;
}

int
main(int argc, char **argv)
{
	return ddbsink_main(argc, argv, "dynamodb", prepare);
}
