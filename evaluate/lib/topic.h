/* topic: MQTT topic filters as AWS IoT uses them (SQL.md §3.1).
 *
 * topic_matches tests one filter; a topic_index holds many filters, each
 * with an integer id, and finds all filters that match a topic with a cost
 * that depends on the topic's depth and the number of matches, not on the
 * number of filters (a trie over levels with one hash table of edges).
 *
 * AWS differences from MQTT: `a/#` does not match `a`.  As in MQTT, a
 * filter starting with `+` or `#` does not match a topic starting with
 * `$`. */
#ifndef IOTRULES_TOPIC_H
#define IOTRULES_TOPIC_H

#include <stddef.h>

int topic_matches(const char *filter, const char *topic);

typedef struct topic_index topic_index;

topic_index *topic_index_new(void);
void topic_index_free(topic_index *ix);
/* Adds filter with id (ids need not be unique per filter).  0 or -1 (ENOMEM). */
int topic_index_add(topic_index *ix, const char *filter, int id);

/* Calls fn(id, arg) for each matching filter's id (order unspecified). */
void topic_index_match(const topic_index *ix, const char *topic,
    void (*fn)(int id, void *arg), void *arg);



/* Basic Ingest (SQL.md §3.4): for "$aws/rules/<rule>/<rest>" returns
 * <rest> and sets rule and rulelen; for any other topic returns NULL. */
const char *topic_basic_ingest(const char *topic, const char **rule, size_t *rulelen);
#endif
