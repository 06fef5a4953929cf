/* iotrules-sink-elasticsearch and iotrules-sink-opensearch: the
 * elasticsearch (legacy) and openSearch actions (ACTIONS.md §2.6).  One
 * source built twice (common/actions.def): ops.action and
 * ops.failed_action stay NULL, so the runtime takes the stage from
 * argv[0] and the failedAction (ElasticsearchAction, OpenSearchAction)
 * from the table.
 *
 * Each job indexes one document: PUT {endpoint}/{index}/{type}/{id} with
 * the result as its body, SigV4-signed for "es".  The endpoint is the
 * one the action names, as in AWS (no AWS_ENDPOINT_URL applies to it);
 * the signing region is an AWS domain host's (search-x.REGION.es.
 * amazonaws.com), else the client's.  index, type and id are templated;
 * each is one path segment, percent-encoded (a '/' in an id is %2F), and
 * the AWS client signs such paths itself (libcurl 7.88 signs them
 * wrongly: BACKENDS.md 1d).  AWS indexes one document per message (no
 * _bulk), and so do we: one request per job.
 *
 * [decision] The result must be a JSON object (a document): anything
 * else fails at once, and so do an endpoint that is not http(s)://host
 * and an index, type or id that is empty, "." or ".." (not a path
 * segment).  OpenSearch's own errors ({"error": {"type", "reason"}},
 * e.g. 400 mapper_parsing_exception) are permanent, as every 4xx but
 * 429; 429 and 5xx are retried. */
#include <stdio.h>
#include <string.h>

#include "sinks/lib/awssink.h"

static const awssink_call CALL = {.what = "Failed to index the document",
    .service = "Amazon OpenSearch Service"};

/* The host of an http(s) URL (length in *n), or NULL. */
static const char *
url_host(const char *url, size_t *n)
{
	const char *h = strncmp(url, "https://", 8) == 0 ? url + 8 : strncmp(url, "http://", 7) == 0 ? url + 7 : NULL;
	if (h == NULL || (*n = strcspn(h, "/?#")) == 0 || h[0] == ':')
		return NULL;
	return h;
}

/* The region of an AWS domain endpoint (host "...REGION.es.amazonaws.com"
 * or ".com.cn"), or "" (the client's region). */
static void
endpoint_region(const char *endpoint, char *out, size_t cap)
{
	size_t n = 0;
	const char *h = url_host(endpoint, &n);
	char host[256];
	snprintf(host, sizeof(host), "%.*s", h ? (int)n : 0, h ? h : "");
	host[strcspn(host, ":")] = 0;
	char *es = strstr(host, ".es.amazonaws.com");
	out[0] = 0;
	if (es == NULL)
		return;
	*es = 0;
	char *dot = strrchr(host, '.');
	snprintf(out, cap, "%s", dot ? dot + 1 : "");
}

static int
bad_segment(const char *s)
{
	return s[0] == 0 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0;
}

static int
prepare(void *state, sink_job *j)
{
	(void)state;
	const char *endpoint = sink_param(j, "endpoint");
	const char *seg[3] = {sink_param(j, "index"), sink_param(j, "type"), sink_param(j, "id")};
	static const char *const names[3] = {"index", "type", "id"};
	snprintf(j->resource, sizeof(j->resource), "%s", endpoint);
	size_t hn;
	char why[160] = "";
	if (url_host(endpoint, &hn) == NULL)
		snprintf(why, sizeof(why), "the endpoint is not an http:// or https:// URL with a host");
	for (int i = 0; i < 3 && why[0] == 0; i++)
		if (bad_segment(seg[i]))
			snprintf(why, sizeof(why), "the %s is empty, \".\" or \"..\"", names[i]);
	cJSON *doc = awssink_result_json(j);
	if (why[0] == 0 && !cJSON_IsObject(doc))
		snprintf(why, sizeof(why), "the result is not a JSON object (a document)");
	cJSON_Delete(doc);
	if (why[0]) {
		sink_error_message(j, CALL.what, why);
		return -1;
	}
	for (int i = 0; i < 3; i++) {
		buf_addc(&j->entry, '/');
		aws_uri_encode(&j->entry, seg[i], strlen(seg[i]), 0);
	}
	snprintf(j->dest, sizeof(j->dest), "%s\n%s", endpoint, sink_param(j, "roleArn"));
	return 0;
}

/* One job a send (batch_max 1). */
static void
send_jobs(void *state, sink_job **jobs, int n)
{
	(void)state;
	(void)n;
	const char *endpoint = sink_param(jobs[0], "endpoint");
	char region[64];
	endpoint_region(endpoint, region, sizeof(region));
	aws_request rq = {.service = "es", .url = endpoint, .region = region, .method = "PUT",
	    .path = jobs[0]->entry.data, .content_type = "application/json",
	    .body = jobs[0]->env.s[ENV_RESULT].p, .body_len = jobs[0]->env.s[ENV_RESULT].n,
	    .role_arn = awssink_role(jobs[0])};
	awssink_send(&rq, jobs, 1, &CALL);
}

int
main(int argc, char **argv)
{
	sink_ops ops = {0};   /* action and failed_action: from argv[0] and the table */
	ops.prepare = prepare;
	ops.send = send_jobs;
	ops.batch_max = 1;
	return awssink_main(argc, argv, &ops);
}
