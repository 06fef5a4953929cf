/* Unit tests of subid: MQTT 5 subscription identifiers of topic filters. */
#include <string.h>

#include "common/subid.h"
#include "tests/unit/tap.h"

int
main(void)
{
	const char *set = "ov/+\nov/#\nov/x\n";
	uint32_t a = subid_of("ov/+"), b = subid_of("ov/#"), c = subid_of("ov/x");
	ok(a >= 1 && a <= 268435455 && b >= 1 && b <= 268435455, "identifiers in MQTT 5's range");
	ok(a == subid_of("ov/+"), "the same filter, the same identifier (stable across processes)");
	ok(a != b && b != c && a != c, "three filters, three identifiers");
	subid_table t, t2;
	ok(subid_table_build(&t, set) == 0 && t.n == 3, "a table of three filters");
	ok(subid_table_build(&t2, "a/b\na/b\n") == -1 && t2.n == 0, "a filter twice: refused, nothing to free");

	buf out = BUF_ZERO;
	uint32_t one[] = {b};
	subid_filters(&t, one, 1, &out);
	is_str(out.data, "ov/#\n", "one identifier: its filter");
	buf_reset(&out);
	uint32_t two[] = {c, a};
	subid_filters(&t, two, 2, &out);
	is_str(out.data, "ov/x\nov/+\n", "two identifiers (one copy for two subscriptions): both filters");
	buf_reset(&out);
	uint32_t unknown[] = {a, subid_of("other/#")};
	subid_filters(&t, unknown, 2, &out);
	ok(out.len == 0, "an identifier of no current filter: nothing (every matching rule runs)");
	subid_filters(&t, one, 0, &out);
	ok(out.len == 0, "no identifier: nothing");
	buf_free(&out);
	subid_table_free(&t);
	return done_testing();
}
