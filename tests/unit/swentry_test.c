/* Unit tests of swentry: an iotSiteWise action entry, templates resolved,
 * as a BatchPutAssetPropertyValue entry with the API's types. */
#include <stdlib.h>
#include <string.h>

#include "sinks/lib/swentry.h"
#include "tests/unit/tap.h"

/* The converted entry as JSON text, or "REFUSED: why". */
static char out[2048];

static const char *
convert(const char *json)
{
	char why[256];
	cJSON *in = cJSON_Parse(json), *e = cJSON_CreateObject();
	const char *bad = swentry_convert(in, e, why, sizeof(why));
	if (bad)
		snprintf(out, sizeof(out), "REFUSED: %s", bad);
	else {
		char *t = cJSON_PrintUnformatted(e);
		snprintf(out, sizeof(out), "%s", t);
		free(t);
	}
	cJSON_Delete(in);
	cJSON_Delete(e);
	return out;
}

#define PV(v, ts) "\"propertyValues\":[{\"value\":{" v "},\"timestamp\":{" ts "}}]"
#define ALIAS "{\"entryId\":\"e1\",\"propertyAlias\":\"/plant/t1\","

static void
refused(const char *json, const char *want, const char *name)
{
	const char *got = convert(json);
	ok(strncmp(got, "REFUSED: ", 9) == 0 && strstr(got, want) != NULL, "%s: %s", name, got);
}

int
main(void)
{
	is_str(convert(ALIAS PV("\"integerValue\":\"42\"", "\"timeInSeconds\":\"1700000000\",\"offsetInNanos\":\"500\"") "}"),
	    "{\"entryId\":\"e1\",\"propertyAlias\":\"/plant/t1\",\"propertyValues\":[{\"value\":{\"integerValue\":42},"
	    "\"timestamp\":{\"timeInSeconds\":1700000000,\"offsetInNanos\":500}}]}",
	    "integerValue and timestamps become integers");
	is_str(convert(ALIAS PV("\"doubleValue\":\"21.5\"", "\"timeInSeconds\":\"1700000000.0\"") ",\"quality\":\"GOOD\"}"),
	    "{\"entryId\":\"e1\",\"propertyAlias\":\"/plant/t1\",\"propertyValues\":[{\"value\":{\"doubleValue\":21.5},"
	    "\"timestamp\":{\"timeInSeconds\":1700000000}}]}",
	    "doubleValue a number; \"1700000000.0\" is the integer it names; quality only on a value");
	is_str(convert(ALIAS "\"propertyValues\":[{\"value\":{\"booleanValue\":\"TRUE\"},\"timestamp\":{\"timeInSeconds\":\"1\"},\"quality\":\"BAD\"}]}"),
	    "{\"entryId\":\"e1\",\"propertyAlias\":\"/plant/t1\",\"propertyValues\":[{\"value\":{\"booleanValue\":true},"
	    "\"timestamp\":{\"timeInSeconds\":1},\"quality\":\"BAD\"}]}",
	    "booleanValue true/false (any case), quality kept");
	is_str(convert("{\"entryId\":\"e2\",\"assetId\":\"0e4f0c5b-8a3e-4d4f-9c0e-123456789abc\",\"propertyId\":"
	    "\"1e4f0c5b-8a3e-4d4f-9c0e-123456789abc\"," PV("\"stringValue\":\"on\"", "\"timeInSeconds\":\"5\"") "}"),
	    "{\"entryId\":\"e2\",\"assetId\":\"0e4f0c5b-8a3e-4d4f-9c0e-123456789abc\",\"propertyId\":"
	    "\"1e4f0c5b-8a3e-4d4f-9c0e-123456789abc\",\"propertyValues\":[{\"value\":{\"stringValue\":\"on\"},"
	    "\"timestamp\":{\"timeInSeconds\":5}}]}",
	    "assetId + propertyId instead of an alias");
	const char *got = convert("{\"propertyAlias\":\"/a\"," PV("\"stringValue\":\"x\"", "\"timeInSeconds\":\"5\"") "}");
	ok(strncmp(got, "{\"entryId\":\"", 12) == 0 && strlen(got) > 12 + 36 && got[12 + 36] == '"',
	    "no entryId: a new UUID (%.60s)", got);

	refused(ALIAS PV("\"integerValue\":\"2147483648\"", "\"timeInSeconds\":\"1\"") "}", "32-bit", "integerValue over 32 bits");
	refused(ALIAS PV("\"integerValue\":\"1.5\"", "\"timeInSeconds\":\"1\"") "}", "32-bit", "integerValue with a fraction");
	refused(ALIAS PV("\"doubleValue\":\"0x10\"", "\"timeInSeconds\":\"1\"") "}", "number", "hex doubleValue");
	refused(ALIAS PV("\"doubleValue\":\"nan\"", "\"timeInSeconds\":\"1\"") "}", "number", "nan doubleValue");
	refused(ALIAS PV("\"booleanValue\":\"yes\"", "\"timeInSeconds\":\"1\"") "}", "true or false", "booleanValue yes");
	refused(ALIAS PV("\"stringValue\":\"\"", "\"timeInSeconds\":\"1\"") "}", "1-1024", "empty stringValue");
	refused(ALIAS PV("\"stringValue\":\"a\",\"integerValue\":\"1\"", "\"timeInSeconds\":\"1\"") "}", "exactly one", "two values");
	refused(ALIAS PV("\"stringValue\":\"a\"", "\"timeInSeconds\":\"-1\"") "}", "timeInSeconds", "negative timeInSeconds");
	refused(ALIAS PV("\"stringValue\":\"a\"", "\"timeInSeconds\":\"1\",\"offsetInNanos\":\"1000000000\"") "}",
	    "offsetInNanos", "offsetInNanos of a whole second");
	refused(ALIAS "\"propertyValues\":[{\"value\":{\"stringValue\":\"a\"},\"timestamp\":{\"timeInSeconds\":\"1\"},\"quality\":\"OK\"}]}",
	    "quality", "quality OK");
	refused("{\"entryId\":\"e1\"," PV("\"stringValue\":\"a\"", "\"timeInSeconds\":\"1\"") "}", "neither", "no property named");
	refused("{\"entryId\":\"e1\",\"assetId\":\"ABC\",\"propertyId\":\"x\"," PV("\"stringValue\":\"a\"", "\"timeInSeconds\":\"1\"") "}",
	    "lower-case UUIDs", "assetId not a UUID");
	refused("{\"entryId\":\"e 1\",\"propertyAlias\":\"/a\"," PV("\"stringValue\":\"a\"", "\"timeInSeconds\":\"1\"") "}",
	    "entryId", "entryId with a space");
	refused(ALIAS "\"propertyValues\":[]}", "1 to 10", "no propertyValues");
	return done_testing();
}
