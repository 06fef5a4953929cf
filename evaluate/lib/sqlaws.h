/* sqlaws: the AWS host of the SQL engine's external functions
 * (sql_external in evaluate/sql/sql.h): get_dynamodb by DynamoDB GetItem,
 * aws_lambda by a synchronous (RequestResponse) Lambda Invoke.
 *
 * Both use common/aws's blocking aws_call on one client, opened on the
 * first call: credentials, region and endpoints come from the
 * environment and the shared files as the SDKs find them
 * (AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_LAMBDA, ...).  A client
 * that cannot open fails the call with the reason, and is tried again
 * no sooner than 10 s later.  Each request may take 2,000 ms (AWS's limit
 * for aws_lambda), and is not retried: a failed call fails the
 * statement, as in AWS.  A roleArn argument is not assumed.
 *
 * Thread-safe: statements on several threads share the client. */
#ifndef IOTRULES_SQLAWS_H
#define IOTRULES_SQLAWS_H

#include "evaluate/sql/sql.h"

/* The host (static; put it in sql_ctx.ext). */
const sql_external *sqlaws_external(void);

/* Closes the client if it was opened (waits for calls in flight).  For
 * single-threaded programs at exit; no call may start afterwards. */
void sqlaws_close(void);

#endif
