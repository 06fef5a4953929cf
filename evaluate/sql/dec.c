#include "evaluate/sql/dec.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIGITS 34
#define EMAX 999   /* AWS: largest magnitude 9.99...E999, smallest 1E-999 */

typedef unsigned __int128 u128;

/* 256-bit unsigned, little-endian 64-bit limbs: room for a 34-digit
 * coefficient scaled by 10^42, or the product of two coefficients. */
typedef struct u256 {
	uint64_t w[4];
} u256;

static u128 P10[39];
static pthread_once_t p10_once = PTHREAD_ONCE_INIT;

static void
fill_pow10(void)
{
	P10[0] = 1;
	for (int i = 1; i < 39; i++)
		P10[i] = P10[i - 1] * 10;
}

/* Once per process: evaluate's workers parse numbers concurrently, and a
 * table filled lazily without this let one thread read powers another
 * was still writing (ThreadSanitizer in make tsan). */
static void
init_pow10(void)
{
	pthread_once(&p10_once, fill_pow10);
}

static int
digits128(u128 c)
{
	int n = 1;
	while (n < 39 && c >= P10[n])
		n++;
	return n;
}

static u256
u256_from(u128 x)
{
	u256 r = {{(uint64_t)x, (uint64_t)(x >> 64), 0, 0}};
	return r;
}

static u128
u256_low(const u256 *a)
{
	return (u128)a->w[1] << 64 | a->w[0];
}

static void
u256_mul_small(u256 *a, uint64_t m)
{
	u128 carry = 0;
	for (int i = 0; i < 4; i++) {
		u128 t = (u128)a->w[i] * m + carry;
		a->w[i] = (uint64_t)t;
		carry = t >> 64;
	}
}

static void
u256_mul_pow10(u256 *a, int k)
{
	while (k >= 19) {
		u256_mul_small(a, 10000000000000000000ull);
		k -= 19;
	}
	if (k > 0)
		u256_mul_small(a, (uint64_t)P10[k]);
}

/* a /= d; returns the remainder. */
static uint64_t
u256_div_small(u256 *a, uint64_t d)
{
	u128 r = 0;
	for (int i = 3; i >= 0; i--) {
		u128 cur = r << 64 | a->w[i];
		a->w[i] = (uint64_t)(cur / d);
		r = cur % d;
	}
	return (uint64_t)r;
}

static int
u256_cmp(const u256 *a, const u256 *b)
{
	for (int i = 3; i >= 0; i--)
		if (a->w[i] != b->w[i])
			return a->w[i] < b->w[i] ? -1 : 1;
	return 0;
}

static void
u256_add(u256 *a, const u256 *b)
{
	u128 carry = 0;
	for (int i = 0; i < 4; i++) {
		u128 t = (u128)a->w[i] + b->w[i] + carry;
		a->w[i] = (uint64_t)t;
		carry = t >> 64;
	}
}

/* a -= b, for a >= b. */
static void
u256_sub(u256 *a, const u256 *b)
{
	uint64_t borrow = 0;
	for (int i = 0; i < 4; i++) {
		uint64_t x = a->w[i], y = b->w[i];
		uint64_t d1 = x - y, b1 = x < y;
		uint64_t d2 = d1 - borrow, b2 = d1 < borrow;
		a->w[i] = d2;
		borrow = b1 | b2;
	}
}

static u256
u256_mul128(u128 a, u128 b)
{
	uint64_t x[2] = {(uint64_t)a, (uint64_t)(a >> 64)}, y[2] = {(uint64_t)b, (uint64_t)(b >> 64)};
	u256 r = {{0, 0, 0, 0}};
	for (int i = 0; i < 2; i++) {
		u128 carry = 0;
		for (int j = 0; j < 2; j++) {
			u128 t = (u128)x[i] * y[j] + r.w[i + j] + carry;
			r.w[i + j] = (uint64_t)t;
			carry = t >> 64;
		}
		r.w[i + 2] = (uint64_t)carry;
	}
	return r;
}

/* Rounds v × 10^e to 34 digits (half-even; sticky: nonzero digits were
 * already dropped below v's last digit, and at least one digit of v
 * itself will be dropped whenever sticky is set), normalises, checks the
 * range. */
static int
finish(u256 v, int32_t e, int neg, int sticky, dec *out)
{
	init_pow10();
	int rd = 0;   /* the most significant dropped digit */
	u256 lim = u256_from(P10[DIGITS]);
	while (u256_cmp(&v, &lim) >= 0) {
		sticky |= rd != 0;
		rd = (int)u256_div_small(&v, 10);
		e++;
	}
	u128 c = u256_low(&v);
	if (rd > 5 || (rd == 5 && (sticky || (c & 1)))) {
		c++;
		if (c == P10[DIGITS]) {
			c = P10[DIGITS - 1];
			e++;
		}
	}
	if (c == 0) {
		out->c = 0;
		out->e = 0;
		out->neg = 0;
		return 0;
	}
	while (c % 10 == 0) {
		c /= 10;
		e++;
	}
	int adj = e + digits128(c) - 1;
	if (adj > EMAX || adj < -EMAX)
		return -1;
	out->c = c;
	out->e = e;
	out->neg = (uint8_t)(neg != 0);
	return 0;
}

int
dec_from_text(const char *s, size_t n, dec *out)
{
	const char *p = s, *end = s + n;
	int neg = 0, any = 0, nd = 0, sticky = 0;
	int32_t e = 0;
	u256 v = {{0, 0, 0, 0}};
	if (p < end && *p == '-') {
		neg = 1;
		p++;
	}
	for (int frac = 0; frac < 2; frac++) {
		if (frac) {
			if (p >= end || *p != '.')
				break;
			p++;
			if (p >= end || *p < '0' || *p > '9')
				return -1;   /* "1." */
		}
		for (; p < end && *p >= '0' && *p <= '9'; p++) {
			int d = *p - '0';
			any = 1;
			if (frac)
				e--;
			if (nd == 0 && d == 0)
				continue;             /* leading zero */
			if (nd < 40) {
				u256_mul_small(&v, 10);
				u256 dd = u256_from((u128)d);
				u256_add(&v, &dd);
				nd++;
			} else {
				sticky |= d != 0;     /* beyond 40 digits: only rounding */
				e++;
			}
		}
	}
	if (!any)
		return -1;
	if (p < end && (*p == 'e' || *p == 'E')) {
		int eneg = 0;
		long x = 0;
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			eneg = *p++ == '-';
		if (p >= end || *p < '0' || *p > '9')
			return -1;
		for (; p < end && *p >= '0' && *p <= '9'; p++)
			if (x < 100000)
				x = x * 10 + (*p - '0');
		e += (int32_t)(eneg ? -x : x);
	}
	if (p != end)
		return -1;
	return finish(v, e, neg, sticky, out);
}

void
dec_from_int(int64_t i, dec *out)
{
	u128 c = i < 0 ? (u128)(0 - (uint64_t)i) : (u128)i;
	finish(u256_from(c), 0, i < 0, 0, out);
}

int
dec_from_double(double d, dec *out)
{
	if (!isfinite(d))
		return -1;
	if (d == 0) {
		out->c = 0;
		out->e = 0;
		out->neg = 0;
		return 0;
	}
	/* The shortest text that reads back to d.  If some k <= 15 digit
	 * decimal reads back to d, rounding d to 15 digits gives it padded
	 * with zeros (a normal double's half-ulp is below half a unit in the
	 * 15th digit), so one try at 15 covers the short cases and trailing
	 * zeros are normalised away; subnormals search from one digit. */
	char t[40];
	for (int prec = fabs(d) < DBL_MIN ? 1 : 15; prec <= 17; prec++) {
		snprintf(t, sizeof(t), "%.*e", prec - 1, d);
		if (prec == 17 || strtod(t, NULL) == d)
			break;
	}
	return dec_from_text(t, strlen(t), out);
}

static int
coef_text(u128 c, char *out)
{
	char tmp[40];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + (int)(c % 10));
		c /= 10;
	} while (c);
	for (int i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	out[n] = 0;
	return n;
}

int
dec_digits(const dec *x, char *out)
{
	return coef_text(x->c, out);
}

double
dec_to_double(const dec *x)
{
	init_pow10();
	static const double exact[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
	double d;
	if (x->c < ((u128)1 << 53) && x->e >= -22 && x->e <= 22) {
		/* Both operands exact: one correctly rounded operation. */
		d = x->e >= 0 ? (double)x->c * exact[x->e] : (double)x->c / exact[-x->e];
	} else {
		char t[80];
		int n = coef_text(x->c, t);
		snprintf(t + n, sizeof(t) - (size_t)n, "e%d", (int)x->e);
		d = strtod(t, NULL);
	}
	return x->neg ? -d : d;
}

int
dec_to_int(const dec *x, int64_t *out)
{
	init_pow10();
	if (x->e < 0 || digits128(x->c) + x->e > 19)
		return 0;
	u128 v = x->c * P10[x->e];
	if (v > (u128)INT64_MAX + (x->neg ? 1 : 0))
		return 0;
	*out = x->neg ? (int64_t)(0 - (uint64_t)v) : (int64_t)v;
	return 1;
}

static int
addsub(const dec *a, const dec *b, int negate_b, dec *out)
{
	init_pow10();
	int an = a->neg, bn = b->neg ^ negate_b;
	if (b->c == 0) {
		*out = *a;
		return 0;
	}
	if (a->c == 0) {
		*out = *b;
		out->neg = (uint8_t)bn;
		return 0;
	}
	const dec *A = a, *B = b;
	if (A->e < B->e) {
		const dec *t = A;
		A = B;
		B = t;
		int tn = an;
		an = bn;
		bn = tn;
	}
	int adjA = A->e + digits128(A->c) - 1, adjB = B->e + digits128(B->c) - 1;
	if (adjB < adjA - DIGITS) {
		/* |B| is below half a unit in the 34th digit of A: A ± B rounds
		 * to A. */
		*out = *A;
		out->neg = (uint8_t)an;
		return 0;
	}
	int32_t d = A->e - B->e, e;
	u256 va = u256_from(A->c), vb = u256_from(B->c);
	int sticky = 0;
	if (d <= 42) {
		u256_mul_pow10(&va, d);
		e = B->e;
	} else {
		/* Keep 42 digits of headroom below A; B's digits further down
		 * only decide rounding. */
		u256_mul_pow10(&va, 42);
		for (int32_t k = 0; k < d - 42; k++)
			sticky |= u256_div_small(&vb, 10) != 0;
		e = A->e - 42;
	}
	if (an == bn) {
		u256_add(&va, &vb);
		return finish(va, e, an, sticky, out);
	}
	int c = u256_cmp(&va, &vb);
	if (c > 0 || (c == 0 && !sticky)) {
		/* va - (vb + frac) = (va - vb - 1) + (1 - frac) */
		u256_sub(&va, &vb);
		if (sticky) {
			u256 one = u256_from(1);
			u256_sub(&va, &one);
		}
		return finish(va, e, an, sticky, out);
	}
	u256_sub(&vb, &va);
	return finish(vb, e, bn, sticky, out);
}

int
dec_add(const dec *a, const dec *b, dec *out)
{
	return addsub(a, b, 0, out);
}

int
dec_sub(const dec *a, const dec *b, dec *out)
{
	return addsub(a, b, 1, out);
}

int
dec_mul(const dec *a, const dec *b, dec *out)
{
	return finish(u256_mul128(a->c, b->c), a->e + b->e, a->neg ^ b->neg, 0, out);
}

int
dec_div(const dec *a, const dec *b, dec *out)
{
	init_pow10();
	if (b->c == 0)
		return -1;
	u128 q = a->c / b->c, r = a->c % b->c;
	int32_t e = a->e - b->e;
	/* Long division, one digit at a time, to 36 digits or an exact end;
	 * r < b->c < 10^34, so r * 10 fits. */
	while (r != 0 && q < P10[DIGITS + 1]) {
		r *= 10;
		q = q * 10 + r / b->c;
		r %= b->c;
		e--;
	}
	return finish(u256_from(q), e, a->neg ^ b->neg, r != 0, out);
}

/* a mod b for 256-bit values, by shift and subtract. */
static u256
u256_mod(u256 a, const u256 *b)
{
	u256 r = {{0, 0, 0, 0}};
	for (int i = 255; i >= 0; i--) {
		u256 two = r;
		u256_add(&r, &two);   /* r <<= 1 */
		r.w[0] |= (a.w[i / 64] >> (i % 64)) & 1;
		if (u256_cmp(&r, b) >= 0)
			u256_sub(&r, b);
	}
	return r;
}

int
dec_rem(const dec *a, const dec *b, dec *out)
{
	init_pow10();
	if (b->c == 0)
		return -1;
	int32_t e = a->e < b->e ? a->e : b->e;
	int32_t da = a->e - e, db = b->e - e;
	if (da > 42 || db > 42)
		return -1;
	u256 va = u256_from(a->c), vb = u256_from(b->c);
	u256_mul_pow10(&va, da);
	u256_mul_pow10(&vb, db);
	return finish(u256_mod(va, &vb), e, a->neg, 0, out);
}

int
dec_cmp(const dec *a, const dec *b)
{
	init_pow10();
	if (a->c == 0 && b->c == 0)
		return 0;
	int sa = a->c == 0 ? 0 : a->neg ? -1 : 1, sb = b->c == 0 ? 0 : b->neg ? -1 : 1;
	if (sa != sb)
		return sa < sb ? -1 : 1;
	int adjA = a->e + digits128(a->c) - 1, adjB = b->e + digits128(b->c) - 1;
	int mag;
	if (adjA != adjB) {
		mag = adjA < adjB ? -1 : 1;
	} else {
		/* Same leading position: line the coefficients up (the shift
		 * is below 34 digits). */
		u256 va = u256_from(a->c), vb = u256_from(b->c);
		if (a->e > b->e)
			u256_mul_pow10(&va, a->e - b->e);
		else
			u256_mul_pow10(&vb, b->e - a->e);
		mag = u256_cmp(&va, &vb);
	}
	return sa < 0 ? -mag : mag;
}

void
dec_write(buf *out, const dec *x, int whole_int)
{
	char s[48];
	if (x->c == 0) {
		buf_adds(out, whole_int ? "0" : "0.0");
		return;
	}
	int n = coef_text(x->c, s);
	int adj = x->e + n - 1;
	if (x->neg)
		buf_addc(out, '-');
	if (x->e >= 0 && n + x->e <= DIGITS) {
		/* Whole: digits and zeros. */
		buf_add(out, s, (size_t)n);
		for (int i = 0; i < x->e; i++)
			buf_addc(out, '0');
		if (!whole_int)
			buf_adds(out, ".0");
		return;
	}
	if (x->e < 0 && adj >= -6) {
		if (adj >= 0) {
			buf_add(out, s, (size_t)adj + 1);
			buf_addc(out, '.');
			buf_add(out, s + adj + 1, (size_t)(n - adj - 1));
		} else {
			buf_adds(out, "0.");
			for (int i = 0; i < -adj - 1; i++)
				buf_addc(out, '0');
			buf_add(out, s, (size_t)n);
		}
		return;
	}
	buf_addc(out, s[0]);
	if (n > 1) {
		buf_addc(out, '.');
		buf_add(out, s + 1, (size_t)n - 1);
	}
	buf_printf(out, "E%c%d", adj < 0 ? '-' : '+', adj < 0 ? -adj : adj);
}
