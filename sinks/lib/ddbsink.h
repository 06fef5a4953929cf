/* ddbsink: what the dynamoDB and dynamoDBv2 sinks share (ACTIONS.md
 * §2.4-2.5), on top of awssink: a job's write as its entry, and the
 * requests that carry the writes for one table.
 *
 * The action's prepare turns a job into one write with ddbsink_put,
 * ddbsink_delete or ddbsink_update (or refuses it with ddbsink_refuse);
 * jobs are batched per table and role, and sent:
 *
 *   one write: PutItem, DeleteItem or UpdateItem (an update is always
 *   sent alone);
 *   several: BatchWriteItem (25 writes, 16 MB).  An item DynamoDB
 *   returns in UnprocessedItems is matched back to its job (the same item
 *   or key) and only that job is retried, as throttled.
 *
 * BatchWriteItem refuses a request holding two writes to one key
 * ("Provided list of item keys contains duplicates"), and refuses the
 * whole request for one bad item (ValidationException: a key of the
 * wrong type, an item over 400 KB).  So:
 *
 *   - writes to one key within a batch are folded: only the last one (in
 *     arrival order) is sent, and it stands for the earlier ones, which
 *     get its verdict; the table ends as if each had been written in
 *     turn.  This needs the key, which the dynamoDB action knows
 *     (hashKeyField, rangeKeyField); for dynamoDBv2 the key is the
 *     table's, so its writes are not folded;
 *   - a batch refused with ValidationException is sent again one write
 *     per request, so DynamoDB judges each item alone: a bad item fails
 *     with the service's message and its neighbours are written (as are
 *     dynamoDBv2's writes to one key, then in no particular order). */
#ifndef IOTRULES_DDBSINK_H
#define IOTRULES_DDBSINK_H

#include "common/buf.h"
#include "sinks/lib/awssink.h"

/* Each sets j's dest (table and roleArn), resource and entry, and returns
 * 0, or -1 (with j's message set) when the write cannot be sent: what
 * prepare returns.  key: the item's key as a map of names to DynamoDB
 * values ({"id":{"S":"a"}}), NULL when not known (ddbsink_put only);
 * item, value: DynamoDB JSON (sinks/lib/ddbjson.h). */
int ddbsink_put(sink_job *j, const char *table, const buf *key, const buf *item);
int ddbsink_delete(sink_job *j, const char *table, const buf *key);
/* UpdateItem: SET field = value on the item with that key (sent alone). */
int ddbsink_update(sink_job *j, const char *table, const buf *key, const char *field, const buf *value);

/* Refuses j: resource table, message "Failed to write the item. The
 * error received was <why>...".  Returns -1. */
int ddbsink_refuse(sink_job *j, const char *table, const char *why);

/* Runs a DynamoDB sink: the action ("dynamodb") and its prepare, with
 * this module's send and DynamoDB's limits.  The exit code. */
int ddbsink_main(int argc, char **argv, const char *action,
    int (*prepare)(void *state, sink_job *j));

#endif
