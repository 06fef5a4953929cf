/* Unit tests of the envelope batch iterator. */
#include <string.h>

#include "common/envelope.h"
#include "tests/unit/tap.h"

int
main(void)
{
	buf b = BUF_ZERO;
	env_batch_begin(&b);
	for (int i = 0; i < 3; i++) {
		envelope e = {0};
		e.kind = ENV_MESSAGE;
		e.s[ENV_TOPIC] = env_str("a/b");
		e.s[ENV_PAYLOAD] = env_str("{}");
		env_append(&b, &e);
	}
	env_batch_end(&b, 0);

	/* Stages declare the iterator on the stack and let env_batch_open
	 * fill it: a stale "bad" count there was logged as malformed records
	 * that never existed. */
	env_iter it;
	memset(&it, 0xAB, sizeof(it));
	ok(env_batch_open(&it, b.data, b.len) == 3, "a batch of 3 opens with its count");
	ok(it.bad == 0, "opening clears the malformed-record count (was %u)", it.bad);
	envelope e;
	int n = 0;
	while (env_batch_next_env(&it, ENV_MESSAGE, &e))
		n++;
	ok(n == 3 && it.bad == 0, "3 records decoded, none counted malformed (%d, bad %u)", n, it.bad);

	memset(&it, 0, sizeof(it));
	ok(env_batch_open(&it, "nope", 4) < 0, "a short batch is refused");
	buf_free(&b);
	return done_testing();
}
