/* iotrules-sink-s3: the s3 action (ACTIONS.md §2.17): the result as one
 * object, PutObject{Bucket, Key, Body, ACL}.  The key is templated (so
 * each job has its own, and S3 has no batch put: one request per job);
 * the body is the result's bytes as received, binary included; cannedAcl
 * goes as x-amz-acl.  Content-Type [decision, AWS does not say]:
 * application/json when the result is JSON, else application/octet-stream.
 *
 * The key travels in the path, percent-encoded as S3 signs it (every
 * byte but A-Za-z0-9-_.~/); the client adds x-amz-content-sha256 and
 * picks path-style (a configured endpoint) or virtual-hosted addressing. */
#include <stdio.h>
#include <string.h>

#include "sinks/lib/awssink.h"

#define MAX_KEY 1024   /* bytes of UTF-8, S3's limit */

static const awssink_call CALL = {.what = "Failed to put S3 object", .service = "Amazon S3"};

static int
prepare(void *state, sink_job *j)
{
	(void)state;
	const char *bucket = sink_param(j, "bucketName");
	const char *key = sink_param(j, "key");
	snprintf(j->resource, sizeof(j->resource), "%s", bucket);
	if (bucket[0] == 0 || key[0] == 0 || strlen(key) > MAX_KEY) {
		sink_error_message(j, CALL.what, bucket[0] == 0 ? "the bucketName is empty"
		    : key[0] == 0 ? "the key is empty" : "the key is longer than 1024 bytes");
		return -1;
	}
	snprintf(j->dest, sizeof(j->dest), "%s\n%s", bucket, sink_param(j, "roleArn"));
	buf_addc(&j->entry, '/');
	aws_uri_encode(&j->entry, key, strlen(key), 1);
	return 0;
}

static void
send_jobs(void *state, sink_job **jobs, int n)
{
	(void)state;
	for (int i = 0; i < n; i++) {
		sink_job *j = jobs[i];
		const env_slice *d = &j->env.s[ENV_RESULT];
		cJSON *json = awssink_result_json(j);
		const char *acl = sink_param(j, "cannedAcl");
		char acl_hdr[96];
		snprintf(acl_hdr, sizeof(acl_hdr), "x-amz-acl: %s", acl);
		aws_request rq = {.service = "s3", .endpoint_id = "S3",
		    .method = "PUT", .path = j->entry.data, .s3_bucket = sink_param(j, "bucketName"),
		    .content_type = json ? "application/json" : "application/octet-stream",
		    .headers = {acl[0] ? acl_hdr : NULL}, .body = d->p, .body_len = d->n,
		    .role_arn = awssink_role(j)};
		cJSON_Delete(json);
		awssink_send(&rq, &j, 1, &CALL);
	}
}

int
main(int argc, char **argv)
{
	sink_ops ops = {0};
	ops.action = "s3";
	ops.prepare = prepare;
	ops.send = send_jobs;
	ops.batch_max = 1;
	return awssink_main(argc, argv, &ops);
}
