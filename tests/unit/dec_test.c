/* Unit tests of the 34-digit decimal (evaluate/sql/dec). */
#include <stdlib.h>
#include <string.h>

#include "evaluate/sql/dec.h"
#include "tests/unit/tap.h"

static dec
D(const char *s)
{
	dec x;
	if (dec_from_text(s, strlen(s), &x) < 0)
		x.c = 999, x.e = 999, x.neg = 1;
	return x;
}

static const char *
W(const dec *x, int whole_int)
{
	static char out[128];
	buf b = BUF_ZERO;
	dec_write(&b, x, whole_int);
	snprintf(out, sizeof(out), "%s", b.data ? b.data : "");
	buf_free(&b);
	return out;
}

/* op: + - * / % on two texts; "ERR" when the operation has no value. */
static const char *
OP(const char *a, char op, const char *b)
{
	dec x = D(a), y = D(b), r;
	int rc = op == '+' ? dec_add(&x, &y, &r) : op == '-' ? dec_sub(&x, &y, &r) : op == '*' ? dec_mul(&x, &y, &r)
	    : op == '/' ? dec_div(&x, &y, &r) : dec_rem(&x, &y, &r);
	return rc < 0 ? "ERR" : W(&r, 0);
}

int
main(void)
{
	dec x = D("25.50");
	is_str(W(&x, 0), "25.5", "parse normalises trailing zeros");
	x = D("-0.000001");
	is_str(W(&x, 0), "-0.000001", "adjusted exponent -6 is plain");
	x = D("0.0000001");
	is_str(W(&x, 0), "1E-7", "below 1e-6: exponent form");
	x = D("1e3");
	is_str(W(&x, 0), "1000.0", "whole, 2015-10-08: with .0");
	is_str(W(&x, 1), "1000", "whole, 2016-03-23: an integer");
	x = D("1234567890123456789012345678901234");
	is_str(W(&x, 1), "1234567890123456789012345678901234", "34 digits kept exactly");
	x = D("12345678901234567890123456789012345");
	is_str(W(&x, 1), "1.234567890123456789012345678901234E+34", "35 digits: rounded half-even to 34");
	x = D("0.12345678901234567890123456789012345");
	is_str(W(&x, 0), "0.1234567890123456789012345678901234", "35 fraction digits: rounded (5 then nothing: even)");
	is_str(OP("0.1", '+', "0.2"), "0.3", "0.1 + 0.2 = 0.3 exactly");
	is_str(OP("1.1", '*', "1.1"), "1.21", "1.1 * 1.1 = 1.21");
	is_str(OP("25.5", '*', "1.8"), "45.9", "25.5 * 1.8 = 45.9");
	is_str(OP("1", '/', "3"), "0.3333333333333333333333333333333333", "1 / 3 to 34 digits");
	is_str(OP("2", '/', "3"), "0.6666666666666666666666666666666667", "2 / 3 rounds up the 34th digit");
	is_str(OP("-32.5", '/', "9"), "-3.611111111111111111111111111111111", "negative division");
	is_str(OP("10", '/', "4"), "2.5", "exact division stops early");
	is_str(OP("1", '/', "0"), "ERR", "division by zero has no value");
	is_str(OP("1", '-', "1"), "0.0", "1 - 1 = 0");
	is_str(OP("1", '+', "1E-40"), "1.0", "a term below half a unit in the 34th digit vanishes");
	is_str(OP("1", '+', "1E-33"), "1.000000000000000000000000000000001", "a term at the 34th digit counts");
	is_str(OP("1", '-', "1E-34"), "0.9999999999999999999999999999999999", "borrow across 34 digits");
	is_str(OP("9999999999999999999999999999999999", '+', "1"), "1E+34",
	    "carry past 34 digits: 10^34 has 35 digits, so exponent form");
	is_str(OP("9999999999999999999999999999999999", '+', "16"), "1.000000000000000000000000000000002E+34",
	    "past 34 digits a tie rounds to even (…1|5 → …2)");
	is_str(OP("9999999999999999999999999999999999", '+', "6"), "1E+34",
	    "past 34 digits a tie rounds to even (…0|5 → …0)");
	is_str(OP("-7", '%', "3"), "-1.0", "remainder has the dividend's sign");
	is_str(OP("5.5", '%', "2"), "1.5", "decimal remainder");
	is_str(OP("9.99E999", '*', "10"), "ERR", "beyond 9.99E999 has no value");
	is_str(OP("1E-999", '/', "10"), "ERR", "below 1E-999 has no value");
	dec a = D("0.30000000000000004"), b = D("0.3");
	ok(dec_cmp(&a, &b) == 1 && dec_cmp(&b, &a) == -1, "compare by value");
	a = D("-2"), b = D("1.5");
	ok(dec_cmp(&a, &b) == -1 && dec_cmp(&a, &a) == 0, "compare signs");
	a = D("100"), b = D("1E2");
	ok(dec_cmp(&a, &b) == 0, "1E2 equals 100");
	int64_t i;
	a = D("9223372036854775807");
	ok(dec_to_int(&a, &i) && i == INT64_MAX, "to int at INT64_MAX");
	a = D("9223372036854775808");
	ok(!dec_to_int(&a, &i), "beyond INT64_MAX is not an int64");
	a = D("-9223372036854775808");
	ok(dec_to_int(&a, &i) && i == INT64_MIN, "INT64_MIN");
	a = D("2.5");
	ok(!dec_to_int(&a, &i), "a fraction is not an int");
	a = D("0.1");
	ok(dec_to_double(&a) == 0.1, "to double: 0.1");
	a = D("1.7976931348623157E308");
	ok(dec_to_double(&a) == 1.7976931348623157E308, "to double: DBL_MAX");
	ok(dec_from_double(0.1 + 0.2, &a) == 0 && strcmp(W(&a, 0), "0.30000000000000004") == 0,
	    "from double: shortest digits (%s)", W(&a, 0));
	dec_from_int(-120, &a);
	is_str(W(&a, 1), "-120", "from int");
	ok(D("1.").c == 999 && D("-").c == 999 && D("1e").c == 999 && D("").c == 999, "malformed text is refused");
	return done_testing();
}
