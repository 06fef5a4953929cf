/* sqlaws: the AWS host of the SQL engine's external functions
 * (sql_external in evaluate/sql/sql.h): get_dynamodb by DynamoDB GetItem,
 * aws_lambda by a synchronous (RequestResponse) Lambda Invoke, get_secret
 * by Secrets Manager GetSecretValue, get_thing_shadow by IoT
 * GetThingShadow, get_registry_data by IoT DescribeThing or
 * ListThingGroupsForThing.
 *
 * All use common/aws's blocking aws_call on one client, opened on the
 * first call: credentials, region and endpoints come from the
 * environment and the shared files as the SDKs find them
 * (AWS_ENDPOINT_URL_DYNAMODB, _LAMBDA, _SECRETS_MANAGER, _IOT_DATA_PLANE,
 * _IOT, ...).  A client that cannot open fails the call with the reason,
 * and is tried again no sooner than 10 s later.  Each request may take
 * 2,000 ms (AWS's limit for aws_lambda), and is not retried: a failed
 * call fails the statement, as in AWS.  The function's roleArn goes with
 * the request and is assumed when sqlaws_set_assume_role(1) was called
 * (the config's assume_role), else ignored.
 *
 * get_thing_shadow and get_registry_data call only a configured endpoint
 * (AWS_ENDPOINT_URL_IOT_DATA_PLANE / AWS_ENDPOINT_URL_IOT, AWS_ENDPOINT_URL
 * or the profile's): the IoT data endpoint is account-specific, and a
 * rules engine of its own need not keep its things in AWS IoT.  Without
 * one they fail saying so.  A thing name with ':' fails: libcurl 7.88
 * signs a path holding it wrongly (BACKENDS.md caveat 1d).
 *
 * get_secret answers are cached (the secret, per secretId and roleArn)
 * for 15 minutes, as AWS IoT does; failures are not cached.
 *
 * Thread-safe: statements on several threads share the client and the
 * cache. */
#ifndef IOTRULES_SQLAWS_H
#define IOTRULES_SQLAWS_H

#include "common/buf.h"
#include "evaluate/sql/sql.h"

/* The host (static; put it in sql_ctx.ext). */
const sql_external *sqlaws_external(void);

/* Assume each function's roleArn with STS AssumeRole (on) or ignore it
 * (off, the default).  Takes effect when the client opens: call it
 * before the first statement runs. */
void sqlaws_set_assume_role(int on);

/* Closes the client if it was opened (waits for calls in flight) and
 * drops the cached secrets.  For single-threaded programs at exit; no
 * call may start afterwards. */
void sqlaws_close(void);

/* get_secret's answer from a secret's two fields (either may be NULL, as
 * GetSecretValue returns one of them): with binary, SecretBinary as a
 * JSON string (the base64 text); else SecretString as a JSON string when
 * key is NULL, or the value of member key of the JSON object it holds,
 * as JSON.  0 with out appended, or -1 with err saying why (never
 * quoting the secret). */
int sqlaws_secret_pick(const char *string, const char *binary, int want_binary, const char *key, buf *out,
    char *err, size_t errcap);

#endif
