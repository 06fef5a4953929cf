/* awsdisco: endpoint discovery for the AWS APIs that want it (Timestream's
 * DescribeEndpoints), as the SDKs do it.  Owned by the timestream sink.
 *
 * Such a service answers DescribeEndpoints (sent to its well-known host)
 * with the address its data calls must go to and how long that address
 * stays good (CachePeriodInMinutes).  awsdisco_get hands a caller that
 * address: at once while the cached one is good, else after one
 * DescribeEndpoints that every caller arriving meanwhile waits for.  One
 * address per role, as a role may belong to another account.  A data call
 * answered InvalidEndpointException drops the address (awsdisco_forget),
 * so the next awsdisco_get discovers again.
 *
 * Only for AWS's own host names: with a configured endpoint
 * (awsconf_endpoint of the service's endpoint_id: AWS_ENDPOINT_URL_<ID>,
 * AWS_ENDPOINT_URL, the shared config) the SDKs skip discovery, and so
 * does awsdisco_send.
 *
 * Errors: a DescribeEndpoints that fails (its error answer, or an answer
 * without an address, reported TRANSIENT) goes to every caller waiting
 * for it; nothing is cached then, the next call tries again.
 *
 * Threads: any.  The callback runs on the caller's thread (cached
 * address) or on the AWS client's thread (after the answer), exactly once
 * per awsdisco_get, and must not block.  Uses awssink_client(). */
#ifndef IOTRULES_AWSDISCO_H
#define IOTRULES_AWSDISCO_H

#include "common/aws.h"

/* Where DescribeEndpoints goes (aws_request's fields of those names). */
typedef struct awsdisco_service {
	const char *service;        /* signing name */
	const char *endpoint_id;
	const char *host;           /* "ingest.timestream.{region}.amazonaws.com" */
	const char *target;         /* "Timestream_20181101.DescribeEndpoints" */
	const char *content_type;
} awsdisco_service;

/* host: the address (valid during the call only), err NULL; or host NULL
 * and err the failed discovery's answer. */
typedef void (*awsdisco_fn)(void *arg, const char *host, const aws_response *err);

/* Calls fn with the address of s for role (NULL or "": the client's own
 * credentials).  s must outlive the call (a static). */
void awsdisco_get(const awsdisco_service *s, const char *role, awsdisco_fn fn, void *arg);

/* Drops role's address if it is still host (a data call to host was
 * answered InvalidEndpointException). */
void awsdisco_forget(const char *role, const char *host);

/* Sends rq (its host left out) to the address of s for rq->role_arn, or
 * to the configured endpoint when there is one, as aws_send does: done is
 * called once, with the data call's answer or the failed discovery's.  An
 * InvalidEndpointException answer (TRANSIENT) drops the address first,
 * so the caller's retry discovers again.  rq's pointers need only live
 * during the call. */
void awsdisco_send(const awsdisco_service *s, const aws_request *rq, aws_done_fn done, void *arg);

#endif
