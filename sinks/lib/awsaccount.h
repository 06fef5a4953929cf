/* awsaccount: the partition and account id a sink puts into the ARNs it
 * builds (Step Functions' stateMachineArn, ACTIONS.md §2.21), learnt as
 * the caller's own with STS GetCallerIdentity: once per role (with
 * --assume-role each action's roleArn is the caller, and a role may
 * belong to another account), then kept for the life of the process (the
 * account of a set of credentials never changes).  Jobs that ask while
 * the call for their role is out wait for its answer: one call per role.
 *
 * ACTIONS.md §2.21 puts the pipeline config's account_id first: when
 * the sink has it (--account-id, given by the supervisor), that account
 * is used and STS is not asked; the partition then follows the region.
 *
 * Owned by the stepFunctions sink; the AWS client is awssink's. */
#ifndef IOTRULES_AWSACCOUNT_H
#define IOTRULES_AWSACCOUNT_H

#include "common/aws.h"
#include "sinks/lib/sink.h"

/* What fn gets: the partition ("aws", "aws-cn", ...) and account id, or
 * (NULL, NULL) and STS's error answer (err) when they could not be
 * learnt: the job is then to be failed with err's verdict. */
typedef void (*awsaccount_fn)(sink_job *j, const char *partition, const char *account, const aws_response *err);

/* Calls fn for job j once the account of role (NULL or "": the process's
 * own credentials) is known: at once, on the caller's thread, when it
 * is; else on the AWS client's thread when STS answers (fn must not
 * block).  Thread-safe. */
void awsaccount_get(sink_job *j, const char *role, awsaccount_fn fn);

#endif
