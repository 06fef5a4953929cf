/* Unit tests of seen (the bounded memory of recent keys that drops
 * duplicates after a failover). */
#include <stdio.h>
#include <string.h>

#include "common/seen.h"
#include "tests/unit/tap.h"

static int
has(seen *s, const char *k)
{
	return seen_has(s, k, strlen(k));
}

int
main(void)
{
	seen *s = seen_new(4);
	ok(s != NULL, "seen_new");
	seen_add(s, "a", 1);
	seen_add(s, "bb", 2);
	seen_add(s, "bb", 2);
	ok(has(s, "a") && has(s, "bb") && !has(s, "b") && !has(s, "c"), "added keys are there, others not");
	seen_add(s, "c", 1);
	seen_add(s, "d", 1);
	seen_add(s, "e", 1);
	ok(!has(s, "a") && has(s, "bb") && has(s, "c") && has(s, "d") && has(s, "e"),
	    "the fifth key in a memory of 4 forgets the oldest (adding one twice counts once)");
	seen_free(s);

	/* Many keys through a small memory: the index must stay exact while
	 * the ring overwrites and entries are removed from probe runs. */
	s = seen_new(1000);
	char k[32];
	for (int i = 0; i < 20000; i++) {
		snprintf(k, sizeof(k), "key-%d", i);
		seen_add(s, k, strlen(k));
	}
	int present = 0, absent = 0;
	for (int i = 0; i < 20000; i++) {
		snprintf(k, sizeof(k), "key-%d", i);
		if (i >= 19000)
			present += has(s, k);
		else
			absent += !has(s, k);
	}
	ok(present == 1000 && absent == 19000, "after 20,000 keys the last 1,000 are there (%d), the rest not (%d)",
	    present, absent);
	seen_free(s);

	s = seen_new(8);
	char long1[100], long2[100];
	memset(long1, 'x', sizeof(long1));
	memcpy(long2, long1, sizeof(long2));
	long2[99] = 'y';
	seen_add(s, long1, sizeof(long1));
	ok(seen_has(s, long2, sizeof(long2)), "keys longer than SEEN_KEY_MAX are compared on their first %d bytes",
	    SEEN_KEY_MAX);
	seen_free(s);
	return done_testing();
}
