/* tap: a minimal Test Anything Protocol producer for the C unit tests.
 *
 *   ok(cond, "name %d", i);  is_str(got, want, "name");  done_testing();
 *
 * Each test binary prints its plan at the end ("1..N"), so prove counts
 * whatever ran; a crash before done_testing is a failure. */
#ifndef IOTRULES_TAP_H
#define IOTRULES_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

static inline int __attribute__((format(printf, 2, 3)))
ok(int cond, const char *fmt, ...)
{
	va_list ap;
	printf("%s %d - ", cond ? "ok" : "not ok", ++tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond)
		tap_failed++;
	fflush(stdout);
	return cond;
}

static inline int
is_str(const char *got, const char *want, const char *name)
{
	int c = got && want && strcmp(got, want) == 0;
	ok(c, "%s", name);
	if (!c)
		printf("#   got:  '%s'\n#   want: '%s'\n", got ? got : "(null)", want ? want : "(null)");
	return c;
}

static inline int
done_testing(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
