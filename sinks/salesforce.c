/* iotrules-sink-salesforce: the salesforce action (ACTIONS.md §2.18): the
 * result POSTed to the Salesforce IoT input stream `url` with
 * `Authorization: Bearer <token>` and `Content-Type: application/json`;
 * 2xx is success.  The requests, AWS's retry rules and the verdicts are
 * sinks/lib/httpout's (as for the http action), with no topic rule
 * destination needed: the URL is Salesforce's own.  Salesforce IoT is
 * retired; this stays minimal. */
#include <stdio.h>
#include <string.h>

#include "common/xalloc.h"
#include "sinks/lib/httpout.h"

static void
header(cJSON *hs, const char *key, const char *value)
{
	cJSON *h = xmust(cJSON_CreateObject());
	cJSON_AddItemToArray(hs, h);
	xmust(cJSON_AddStringToObject(h, "key", key));
	xmust(cJSON_AddStringToObject(h, "value", value));
}

/* The action as httpout knows an http action: the token as a bearer
 * header, JSON as the content type (Salesforce takes nothing else). */
static int
as_http(sink_job *j)
{
	const char *token = sink_param(j, "token");
	char bearer[4096];
	if (strlen(token) < 40 || strlen(token) > 4000 || strpbrk(token, "\r\n")) {
		snprintf(j->resource, sizeof(j->resource), "%s", sink_param(j, "url"));
		sink_error_message(j, "Failed to send a message to Salesforce",
		    "the token is not 40 to 4,000 characters on one line");
		return -1;
	}
	snprintf(bearer, sizeof(bearer), "Bearer %s", token);
	cJSON_DeleteItemFromObjectCaseSensitive(j->params, "headers");
	cJSON *hs = xmust(cJSON_AddArrayToObject(j->params, "headers"));
	header(hs, "Authorization", bearer);
	header(hs, "content-type", "application/json");
	return 0;
}

int
main(int argc, char **argv)
{
	sink_ops ops = {.action = "salesforce"};
	httpout_sink_ops(&ops, 0, 1, as_http);
	return sink_main(argc, argv, &ops);
}
