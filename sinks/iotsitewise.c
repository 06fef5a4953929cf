/* iotrules-sink-iotsitewise: the iotSiteWise action (ACTIONS.md §2.11):
 * each of putAssetPropertyValueEntries, its templates resolved, becomes
 * an entry of BatchPutAssetPropertyValue (POST /properties, signing name
 * iotsitewise, AWS host data.iotsitewise.REGION.amazonaws.com) with its
 * strings converted to the API's types (sinks/lib/swentry.h).  A value
 * that does not convert, or a name the API would refuse (so one job
 * cannot fail a whole request of others), fails the job before anything
 * is sent.
 *
 * Entries carry their own property, so jobs of one role go together, 10
 * entries a request; a job with more entries than that goes out in
 * several requests.  Each entry's own answer (errorEntries) decides:
 * only failed entries are resent, and a failure names the property of
 * the failed entry (its alias, or assetId/propertyId) as failedResource
 * (sinks/lib/iotbatch.h). */
#include <stdio.h>
#include <stdlib.h>

#include "common/xalloc.h"
#include "sinks/lib/iotbatch.h"
#include "sinks/lib/swentry.h"

static void resource(sink_job *j, const cJSON *entry);
static const char *prepare(sink_job *j);

/* AWS's host has "data."; a configured AWS_ENDPOINT_URL_IOTSITEWISE is
 * used as given, nothing added (common/aws.h). */
static const iotbatch_api API = {
	.call = {.what = "Failed to put asset property values to IoT SiteWise", .service = "AWS IoT SiteWise"},
	.service = "iotsitewise",
	.endpoint_id = "IOTSITEWISE",
	.host = "data.iotsitewise.{region}.amazonaws.com",
	.path = "/properties",
	.list_key = "entries",
	.id_key = "entryId",
	.errors_key = "errorEntries",
	.max_entries = 10,
	.resource = resource,
	.prepare = prepare,
};

static const char *
str(const cJSON *o, const char *key)
{
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
	return s ? s : "";
}

/* failedResource: the entry's alias, else assetId/propertyId. */
static void
resource(sink_job *j, const cJSON *e)
{
	if (str(e, "propertyAlias")[0])
		snprintf(j->resource, sizeof(j->resource), "%s", str(e, "propertyAlias"));
	else
		snprintf(j->resource, sizeof(j->resource), "%s/%s", str(e, "assetId"), str(e, "propertyId"));
}

/* Entries carry their own property: all jobs of one role share requests. */
static const char *
prepare(sink_job *j)
{
	/* prepare runs on the runtime's one thread: the reason can live here. */
	static char why[256];
	const cJSON *in, *all = cJSON_GetObjectItemCaseSensitive(j->params, "putAssetPropertyValueEntries");
	const cJSON *each = cJSON_IsArray(all) ? all : NULL;
	cJSON *list = xmust(cJSON_CreateArray());
	const char *bad = cJSON_GetArraySize(each) ? NULL : "putAssetPropertyValueEntries is empty";
	cJSON_ArrayForEach(in, each) {
		cJSON *e = xmust(cJSON_CreateObject());
		cJSON_AddItemToArray(list, e);
		resource(j, in);
		if ((bad = swentry_convert(in, e, why, sizeof(why))) != NULL)
			break;
	}
	if (bad == NULL) {
		char *t = xmust(cJSON_PrintUnformatted(list));
		buf_reset(&j->entry);
		buf_adds(&j->entry, t);
		j->units = cJSON_GetArraySize(list);
		free(t);
	}
	cJSON_Delete(list);
	return bad;
}

int
main(int argc, char **argv)
{
	return iotbatch_main(argc, argv, &API);
}
