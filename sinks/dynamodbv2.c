/* iotrules-sink-dynamodbv2: the dynamoDBv2 action (ACTIONS.md §2.5): the
 * SQL result, a JSON object, put as one item of putItem.tableName, one
 * attribute per top-level member (string S, number N with its own text,
 * boolean BOOL, null NULL, object M, array L).  The result must hold the
 * table's key; DynamoDB says so when it does not.  A result that is not
 * an object is a failure.  Batching and retries: sinks/lib/ddbsink.h
 * (the key is the table's, unknown here: writes to one key are not
 * folded, a batch DynamoDB refuses for them is resent item by item). */
#include <string.h>

#include "sinks/lib/ddbjson.h"
#include "sinks/lib/ddbsink.h"

static int
prepare(void *state, sink_job *j)
{
	(void)state;
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j->params, "putItem"), "tableName");
	const char *table = cJSON_IsString(t) ? t->valuestring : "";
	const env_slice *d = &j->env.s[ENV_RESULT];
	buf item = BUF_ZERO;
	int e = ddbjson_item_from_json(&item, d->p, d->n);
	int r = e == DDBJSON_OK ? ddbsink_put(j, table, NULL, &item)
	    : ddbsink_refuse(j, table, e == DDBJSON_EDEPTH ? "the SQL result is nested more than 64 levels deep"
	    : "the SQL result is not a JSON object (dynamoDBv2 writes one attribute per member)");
	buf_free(&item);
	return r;
}

int
main(int argc, char **argv)
{
	return ddbsink_main(argc, argv, "dynamodbv2", prepare);
}
