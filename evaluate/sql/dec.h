/* dec: AWS IoT SQL's exact Decimal — 34 significant digits (SQL.md §4).
 *
 * A dec is sign × coefficient × 10^exponent with a coefficient below
 * 10^34, kept normalised (no trailing zero digits; zero is 0E0), so equal
 * values have equal representations.  Results that need more than 34
 * digits are rounded half-even, as IEEE 754 decimal128 does.  Exponents
 * are kept within AWS's documented range (magnitudes 1E-999 to
 * 9.99…E999): a result outside it is an error, which callers turn into
 * Undefined.
 *
 * Plain structs, no allocation; every function returns 0 or -1 (no
 * value: division by zero, out of range, malformed text). */
#ifndef IOTRULES_DEC_H
#define IOTRULES_DEC_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

typedef struct dec {
	unsigned __int128 c;   /* coefficient, < 10^34 */
	int32_t e;             /* exponent */
	uint8_t neg;
} dec;

/* Text in JSON/SQL number syntax: -?digits[.digits][(e|E)[+-]digits]. */
int dec_from_text(const char *s, size_t n, dec *out);
void dec_from_int(int64_t i, dec *out);
/* The shortest decimal that reads back to d (NaN/Inf: -1). */
int dec_from_double(double d, dec *out);
/* The coefficient's digits, most significant first, NUL-terminated (out
 * holds at least 40 bytes); returns how many. */
int dec_digits(const dec *x, char *out);
/* The double nearest to x. */
double dec_to_double(const dec *x);
/* x as an int64 if it is whole and fits (1), else 0. */
int dec_to_int(const dec *x, int64_t *out);

int dec_add(const dec *a, const dec *b, dec *out);
int dec_sub(const dec *a, const dec *b, dec *out);
int dec_mul(const dec *a, const dec *b, dec *out);
/* a / b rounded to 34 digits; b == 0 → -1. */
int dec_div(const dec *a, const dec *b, dec *out);
/* a - trunc(a / b) * b (sign of a); b == 0 or too wide apart → -1. */
int dec_rem(const dec *a, const dec *b, dec *out);
/* -1, 0, 1 */
int dec_cmp(const dec *a, const dec *b);

/* Writes x: plain digits when its adjusted exponent is in [-6, 34),
 * otherwise d.dddE±n.  A whole value is written as an integer when
 * whole_int is set (2016-03-23), else with ".0" (2015-10-08). */
void dec_write(buf *out, const dec *x, int whole_int);

#endif
