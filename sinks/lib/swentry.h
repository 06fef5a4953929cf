/* swentry: one entry of the iotSiteWise action (ACTIONS.md §2.11), its
 * templates resolved, as an entry of BatchPutAssetPropertyValue, with its
 * strings converted to the API's types: integerValue → integer (32-bit),
 * doubleValue → double, booleanValue → true/false, timeInSeconds and
 * offsetInNanos → integers (a rendered "123000000.0" is the integer it
 * names), quality GOOD/BAD/UNCERTAIN; entryId a new UUID when not given.
 * A value that does not convert, or a name the API would refuse, is
 * refused here, so that one message cannot fail a request of others. */
#ifndef IOTRULES_SWENTRY_H
#define IOTRULES_SWENTRY_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* Fills e (an empty object, the caller's) from the action's entry in.
 * NULL, or why the entry cannot be sent: a constant or why (cap bytes,
 * the caller's).  On refusal e holds what was converted so far. */
const char *swentry_convert(const cJSON *in, cJSON *e, char *why, size_t cap);

#endif
