/* Unit tests of topic filter matching and the topic index. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evaluate/lib/topic.h"
#include "tests/unit/tap.h"

static void
collect(int id, void *arg)
{
	int *seen = arg;
	seen[id]++;
}

int
main(void)
{
	static const struct { const char *f, *t; int m; } cases[] = {
	    {"sensor/#", "sensor/", 1}, {"sensor/#", "sensor/temp", 1},
	    {"sensor/#", "sensor/temp/room1", 1}, {"sensor/#", "sensor", 0},
	    {"topic/#", "topic-2/x", 0}, {"topic/+", "topic/a/b", 0},
	    {"a/+/c", "a/b/c", 1}, {"a/+/c", "a//c", 1}, {"+", "$SYS", 0},
	    {"#", "$aws/x", 0}, {"$aws/things/+/shadow", "$aws/things/t1/shadow", 1},
	    {"#", "a/b", 1}, {"a", "a", 1}, {"a", "a/", 0}, {"+/+", "a/b", 1},
	};
	topic_index *ix = topic_index_new();
	int n = (int)(sizeof(cases) / sizeof(cases[0]));
	for (int i = 0; i < n; i++) {
		ok(topic_matches(cases[i].f, cases[i].t) == cases[i].m, "'%s' %s '%s'",
		    cases[i].f, cases[i].m ? "matches" : "does not match", cases[i].t);
		topic_index_add(ix, cases[i].f, i);
	}
	/* The index agrees with topic_matches for every (filter, topic). */
	int agree = 1;
	for (int j = 0; j < n; j++) {
		int seen[64] = {0};
		topic_index_match(ix, cases[j].t, collect, seen);
		for (int i = 0; i < n; i++)
			if (seen[i] != topic_matches(cases[i].f, cases[j].t)) {
				agree = 0;
				printf("# index disagrees: filter '%s' topic '%s'\n", cases[i].f, cases[j].t);
			}
	}
	ok(agree, "index matches exactly what topic_matches matches");
	topic_index_free(ix);

	/* 10,000 filters, one of which matches. */
	ix = topic_index_new();
	char f[64];
	for (int i = 0; i < 10000; i++) {
		snprintf(f, sizeof(f), "fleet/%d/+/telemetry", i);
		topic_index_add(ix, f, i);
	}
	int *seen = calloc(10000, sizeof(int));
	topic_index_match(ix, "fleet/4242/dev/telemetry", collect, seen);
	int total = 0;
	for (int i = 0; i < 10000; i++)
		total += seen[i];
	ok(total == 1 && seen[4242] == 1, "one of 10,000 filters matches");
	free(seen);
	topic_index_free(ix);
	const char *rule;
	size_t rl;
	const char *rest = topic_basic_ingest("$aws/rules/R1/a/b", &rule, &rl);
	ok(rest && strcmp(rest, "a/b") == 0 && rl == 2 && strncmp(rule, "R1", 2) == 0, "basic ingest prefix");
	ok(topic_basic_ingest("a/b", &rule, &rl) == NULL, "not basic ingest");
	return done_testing();
}
