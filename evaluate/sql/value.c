#include "evaluate/sql/value.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

value
v_cstr(const char *s)
{
	return v_str(s, strlen(s));
}

value
value_from_dec(arena *a, const dec *x, int big)
{
	dec *c = arena_alloc(a, sizeof(dec));
	*c = *x;
	value v = v_dec(dec_to_double(x));
	v.x = c;
	v.big = (uint8_t)(big != 0);
	return v;
}

int
value_exact(value v, dec *out)
{
	if (v.t == VT_INT) {
		dec_from_int(v.u.i, out);
		return 1;
	}
	if (v.t != VT_DEC || v.dbl)
		return 0;
	if (v.x) {
		*out = *v.x;
		return 1;
	}
	/* A Decimal computed through a double (functions such as round):
	 * its shortest digits are its value. */
	return dec_from_double(v.u.d, out) == 0;
}

value
value_from_double(double d, int dbl)
{
	if (isnan(d) || isinf(d))
		return v_undef();
	value v = v_dec(d);
	v.dbl = (uint8_t)dbl;
	return v;
}

/* cJSON keeps only a double per number; the Int/Decimal distinction of
 * the text (SQL.md §4) comes from the number's own characters, found by
 * number_lexemes in document order, which is the order from_cjson meets
 * the number nodes in. */
typedef struct lexemes {
	const char **p;
	uint32_t *n;
	uint32_t count, next;
} lexemes;

/* Records where every number token of a JSON text starts and how long it
 * is (strings are skipped; their escapes too).  Only called on text cJSON
 * accepted, so tokens are well formed. */
static void
number_lexemes(arena *a, const char *t, size_t len, lexemes *lx)
{
	const char *end = t + len;
	uint32_t count = 0;
	for (int pass = 0; pass < 2; pass++) {
		uint32_t k = 0;
		for (const char *p = t; p < end;) {
			if (*p == '"') {
				for (p++; p < end && *p != '"'; p++)
					if (*p == '\\' && p + 1 < end)
						p++;
				p++;
			} else if (*p == '-' || (*p >= '0' && *p <= '9')) {
				const char *s = p;
				while (p < end && (*p == '-' || *p == '+' || *p == '.' || *p == 'e' || *p == 'E' ||
				    (*p >= '0' && *p <= '9')))
					p++;
				if (pass == 1) {
					lx->p[k] = s;
					lx->n[k] = (uint32_t)(p - s);
				}
				k++;
			} else {
				p++;
			}
		}
		if (pass == 0) {
			count = k;
			lx->p = arena_alloc(a, sizeof(char *) * (count ? count : 1));
			lx->n = arena_alloc(a, sizeof(uint32_t) * (count ? count : 1));
		}
	}
	lx->count = count;
	lx->next = 0;
}

/* A payload number as SQL.md §4 types it: an integer token is an Int
 * (exact, when it fits in int64; else a Decimal), a token with '.' or an
 * exponent is a Decimal, except that 2016-03-23 treats whole ones as
 * Int.  Without its token (lx exhausted) the value decides. */
static value
number_value(arena *a, const cJSON *j, lexemes *lx, enum sql_version ver)
{
	double d = j->valuedouble;
	if (lx->next < lx->count) {
		const char *s = lx->p[lx->next];
		uint32_t n = lx->n[lx->next++];
		if (memchr(s, '.', n) == NULL && memchr(s, 'e', n) == NULL && memchr(s, 'E', n) == NULL) {
			char tmp[32];
			if (n < sizeof(tmp)) {
				memcpy(tmp, s, n);
				tmp[n] = 0;
				errno = 0;
				long long i = strtoll(tmp, NULL, 10);
				if (errno == 0)
					return v_int(i);
			}
			/* Beyond int64: an Int of up to 34 digits, kept exactly;
			 * longer ones are Decimals ([decision] SQL.md §4). */
			dec x;
			if (dec_from_text(s, n, &x) == 0)
				return value_from_dec(a, &x, n - (s[0] == '-') <= 34);
			return value_from_double(d, 0);
		}
		dec x;
		if (dec_from_text(s, n, &x) < 0)
			return v_undef();   /* beyond 9.99E999 */
		int64_t i;
		if (ver == SQL_2016 && dec_to_int(&x, &i))
			return v_int(i);
		return value_from_dec(a, &x, 0);
	}
	if (d == floor(d) && fabs(d) < 9007199254740992.0)
		return v_int((int64_t)d);
	return value_from_double(d, 0);
}

static value
from_cjson(arena *a, const cJSON *j, int *dups, lexemes *lx, enum sql_version ver)
{
	if (cJSON_IsNull(j))
		return v_null();
	if (cJSON_IsTrue(j))
		return v_bool(1);
	if (cJSON_IsFalse(j))
		return v_bool(0);
	if (cJSON_IsNumber(j))
		return number_value(a, j, lx, ver);
	if (cJSON_IsString(j)) {
		size_t n = strlen(j->valuestring);
		return v_str(arena_strndup(a, j->valuestring, n), n);
	}
	uint32_t n = 0;
	for (const cJSON *c = j->child; c; c = c->next)
		n++;
	value v = {0};
	v.n = n;
	if (cJSON_IsArray(j)) {
		v.t = VT_ARR;
		v.u.a = arena_alloc(a, sizeof(value) * (n ? n : 1));
		uint32_t i = 0;
		for (const cJSON *c = j->child; c; c = c->next)
			v.u.a[i++] = from_cjson(a, c, dups, lx, ver);
		return v;
	}
	v.t = VT_OBJ;
	v.u.o = arena_alloc(a, sizeof(vmember) * (n ? n : 1));
	/* Duplicate keys in a payload: the last one wins, like every JSON
	 * library that builds a map. */
	uint32_t m = 0;
	for (const cJSON *c = j->child; c; c = c->next) {
		size_t kl = strlen(c->string);
		uint32_t k;
		for (k = 0; k < m; k++)
			if (v.u.o[k].klen == kl && memcmp(v.u.o[k].k, c->string, kl) == 0)
				break;
		if (k == m) {
			v.u.o[m].k = arena_strndup(a, c->string, kl);
			v.u.o[m].klen = (uint32_t)kl;
			m++;
		} else {
			*dups = 1;
		}
		v.u.o[k].v = from_cjson(a, c, dups, lx, ver);
	}
	v.n = m;
	return v;
}

int
value_parse_json(arena *a, const char *text, size_t len, enum sql_version ver, value *out)
{
	const char *stop = NULL;
	cJSON *j = cJSON_ParseWithLengthOpts(text, len, &stop, 0);
	if (j == NULL)
		return -1;
	/* cJSON stops after the first value; anything but whitespace after
	 * it makes the text not JSON ("{}x" is a binary payload). */
	for (; stop && stop < text + len; stop++)
		if (*stop != ' ' && *stop != '\t' && *stop != '\n' && *stop != '\r') {
			cJSON_Delete(j);
			return -1;
		}
	int dups = 0;
	lexemes lx;
	number_lexemes(a, text, len, &lx);
	*out = from_cjson(a, j, &dups, &lx, ver);
	cJSON_Delete(j);
	return dups;
}

/* One number token at *pp (already known to start with '-' or a digit):
 * 1 if value_write_json prints it back as written.  Integers of up to 18
 * digits (not "-0") are Ints written as digits; a decimal token is an
 * exact Decimal written plain when it has at most 34 significant digits,
 * no trailing fraction zero (2016 would make "1.0" an Int, and the exact
 * value drops it), and an adjusted exponent of at least -6 (dec.h). */
static int
canonical_number(const char **pp, const char *end)
{
	const char *p = *pp, *start;
	int neg = 0, idigits, fdigits;
	if (*p == '-') {
		neg = 1;
		p++;
	}
	start = p;
	while (p < end && *p >= '0' && *p <= '9')
		p++;
	idigits = (int)(p - start);
	if (idigits == 0 || (idigits > 1 && *start == '0'))
		return 0;
	if (p < end && (*p == 'e' || *p == 'E'))
		return 0;
	if (p < end && *p == '.') {
		const char *f = ++p;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
		fdigits = (int)(p - f);
		if (fdigits == 0 || p[-1] == '0' || (p < end && (*p == 'e' || *p == 'E')))
			return 0;
		if (idigits == 1 && *start == '0') {
			int lead = 0;   /* zeros of "0.000x": not significant */
			while (f + lead < p && f[lead] == '0')
				lead++;
			if (lead > 5 || fdigits - lead > 34)
				return 0;   /* below 1E-6: exponent form */
		} else if (idigits + fdigits > 34) {
			return 0;
		}
	} else if (idigits > 18 || (neg && idigits == 1 && *start == '0')) {
		return 0;   /* beyond int64 territory, or "-0" */
	}
	*pp = p;
	return 1;
}

int
value_json_is_canonical(const char *text, size_t len)
{
	const char *p = text, *end = text + len;
	while (p < end) {
		char ch = *p;
		if (ch == '"') {
			for (p++; p < end && *p != '"'; p++)
				if (*p == '\\' || (unsigned char)*p < 0x20)
					return 0;
			if (p == end)
				return 0;
			p++;
		} else if (ch == '-' || (ch >= '0' && ch <= '9')) {
			if (!canonical_number(&p, end))
				return 0;
		} else if (ch == '{' || ch == '}' || ch == '[' || ch == ']' || ch == ':' || ch == ',') {
			p++;
		} else if (ch == 't' && end - p >= 4 && memcmp(p, "true", 4) == 0) {
			p += 4;
		} else if (ch == 'f' && end - p >= 5 && memcmp(p, "false", 5) == 0) {
			p += 5;
		} else if (ch == 'n' && end - p >= 4 && memcmp(p, "null", 4) == 0) {
			p += 4;
		} else {
			return 0;   /* whitespace, or anything cJSON tolerates */
		}
	}
	return 1;
}

value
value_get(value obj, const char *key, size_t klen)
{
	if (obj.t != VT_OBJ)
		return v_undef();
	for (uint32_t i = 0; i < obj.n; i++)
		if (obj.u.o[i].klen == klen && memcmp(obj.u.o[i].k, key, klen) == 0)
			return obj.u.o[i].v;
	return v_undef();
}

value
value_to_string(arena *a, value v, enum sql_version ver)
{
	buf b = BUF_ZERO;
	switch (v.t) {
	case VT_STR:
		return v;
	case VT_UNDEF:
	case VT_NULL:
		return v_undef();
	case VT_BOOL:
		return v_cstr(v.u.b ? "true" : "false");
	default:
		break;
	}
	value_write_json(&b, v, ver);
	value r = v_str(arena_strndup(a, b.data, b.len), b.len);
	buf_free(&b);
	return r;
}

/* ^-?\d+(\.\d+)?((?i)E-?\d+)?$ */
int
value_snum(value v, double *d)
{
	if (v.t != VT_STR || v.n == 0 || v.n > 400)
		return 0;
	const char *s = v.u.s, *e = s + v.n, *p = s;
	if (*p == '-')
		p++;
	const char *q = p;
	while (p < e && *p >= '0' && *p <= '9')
		p++;
	if (p == q)
		return 0;
	if (p < e && *p == '.') {
		q = ++p;
		while (p < e && *p >= '0' && *p <= '9')
			p++;
		if (p == q)
			return 0;
	}
	if (p < e && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < e && *p == '-')
			p++;
		q = p;
		while (p < e && *p >= '0' && *p <= '9')
			p++;
		if (p == q)
			return 0;
	}
	if (p != e)
		return 0;
	char tmp[401];
	memcpy(tmp, s, v.n);
	tmp[v.n] = 0;
	*d = strtod(tmp, NULL);
	return 1;
}

value
value_to_decimal(value v)
{
	double d;
	switch (v.t) {
	case VT_INT:
	case VT_DEC:
		return v;
	case VT_NULL:
		return v_null();
	case VT_STR:
		if (value_snum(v, &d))
			return value_from_double(d, 0);
		return v_undef();
	default:
		return v_undef();
	}
}

int
value_sbool(value v, int *b)
{
	if (v.t == VT_BOOL) {
		*b = v.u.b;
		return 1;
	}
	if (v.t == VT_STR) {
		if (v.n == 4 && strncasecmp(v.u.s, "true", 4) == 0) {
			*b = 1;
			return 1;
		}
		if (v.n == 5 && strncasecmp(v.u.s, "false", 5) == 0) {
			*b = 0;
			return 1;
		}
	}
	return 0;
}

int
value_equal(value a, value b)
{
	if (a.t == VT_UNDEF || b.t == VT_UNDEF)
		return -1;
	if (value_is_num(a) && value_is_num(b)) {
		if (a.t == VT_INT && b.t == VT_INT)
			return a.u.i == b.u.i;
		dec x, y;
		if ((a.x || b.x) && value_exact(a, &x) && value_exact(b, &y))
			return dec_cmp(&x, &y) == 0;
		return value_num_d(a) == value_num_d(b);
	}
	if (a.t != b.t)
		return 0;
	switch (a.t) {
	case VT_NULL:
		return 1;
	case VT_BOOL:
		return a.u.b == b.u.b;
	case VT_STR:
		return a.n == b.n && memcmp(a.u.s, b.u.s, a.n) == 0;
	case VT_ARR:
		if (a.n != b.n)
			return 0;
		for (uint32_t i = 0; i < a.n; i++)
			if (value_equal(a.u.a[i], b.u.a[i]) != 1)
				return 0;
		return 1;
	case VT_OBJ:
		if (a.n != b.n)
			return 0;
		for (uint32_t i = 0; i < a.n; i++) {
			value o = value_get(b, a.u.o[i].k, a.u.o[i].klen);
			if (o.t == VT_UNDEF || value_equal(a.u.o[i].v, o) != 1)
				return 0;
		}
		return 1;
	default:
		return 0;
	}
}

/* Formats d the way Java's Double.toString does (AWS's engine is Java):
 * plain with at least one fraction digit for 1e-3 <= |d| < 1e7, otherwise
 * d.dddE[-]n.  `whole_int` asks for whole values as plain integers. */
static void
write_double(buf *out, double d, int whole_int)
{
	char digits[48];
	if (d == 0) {
		buf_adds(out, whole_int ? "0" : (signbit(d) ? "-0.0" : "0.0"));
		return;
	}
	if (whole_int && d == floor(d) && fabs(d) < 1e21) {
		buf_printf(out, "%.0f", d);
		return;
	}
	/* The shortest digits that read back to d (dec.c), then Java's
	 * layout around them. */
	dec x;
	if (dec_from_double(d, &x) < 0) {
		buf_adds(out, "null");   /* NaN/Inf are made Undefined before this */
		return;
	}
	int nd = dec_digits(&x, digits);
	int exp10 = x.e + nd - 1, neg = x.neg;
	if (neg)
		buf_addc(out, '-');
	double ad = fabs(d);
	if (ad >= 1e-3 && ad < 1e7) {
		if (exp10 >= 0) {
			for (int i = 0; i <= exp10; i++)
				buf_addc(out, i < nd ? digits[i] : '0');
			buf_addc(out, '.');
			if (nd > exp10 + 1)
				buf_add(out, digits + exp10 + 1, (size_t)(nd - exp10 - 1));
			else
				buf_addc(out, '0');
		} else {
			buf_adds(out, "0.");
			for (int i = 0; i < -exp10 - 1; i++)
				buf_addc(out, '0');
			buf_add(out, digits, (size_t)nd);
		}
		return;
	}
	buf_addc(out, digits[0]);
	buf_addc(out, '.');
	if (nd > 1)
		buf_add(out, digits + 1, (size_t)(nd - 1));
	else
		buf_addc(out, '0');
	buf_printf(out, "E%d", exp10);
}

void
value_write_number(buf *out, value v, enum sql_version ver)
{
	if (v.t == VT_INT) {
		/* Plain digits; the hot case of every result, so no printf. */
		char tmp[24];
		int n = 0;
		uint64_t u = v.u.i < 0 ? 0 - (uint64_t)v.u.i : (uint64_t)v.u.i;
		do {
			tmp[n++] = (char)('0' + u % 10);
			u /= 10;
		} while (u);
		if (v.u.i < 0)
			tmp[n++] = '-';
		buf_reserve(out, (size_t)n);
		while (n > 0)
			out->data[out->len++] = tmp[--n];
		out->data[out->len] = 0;   /* buf keeps its text terminated */
		return;
	}
	if (v.x) {
		dec_write(out, v.x, ver == SQL_2016 || v.big);
		return;
	}
	write_double(out, v.u.d, ver == SQL_2016);
}

void
value_write_json(buf *out, value v, enum sql_version ver)
{
	switch (v.t) {
	case VT_UNDEF:
		return;
	case VT_NULL:
		buf_add(out, "null", 4);
		return;
	case VT_BOOL:
		if (v.u.b)
			buf_add(out, "true", 4);
		else
			buf_add(out, "false", 5);
		return;
	case VT_INT:
	case VT_DEC:
		value_write_number(out, v, ver);
		return;
	case VT_STR:
		buf_add_json_str(out, v.u.s, v.n);
		return;
	case VT_ARR:
		buf_addc(out, '[');
		for (uint32_t i = 0, first = 1; i < v.n; i++) {
			/* Undefined elements cannot be written; they are dropped. */
			if (v.u.a[i].t == VT_UNDEF)
				continue;
			if (!first)
				buf_addc(out, ',');
			first = 0;
			value_write_json(out, v.u.a[i], ver);
		}
		buf_addc(out, ']');
		return;
	case VT_OBJ:
		buf_addc(out, '{');
		for (uint32_t i = 0, first = 1; i < v.n; i++) {
			if (v.u.o[i].v.t == VT_UNDEF)
				continue;
			if (!first)
				buf_addc(out, ',');
			first = 0;
			buf_add_json_str(out, v.u.o[i].k, v.u.o[i].klen);
			buf_addc(out, ':');
			value_write_json(out, v.u.o[i].v, ver);
		}
		buf_addc(out, '}');
		return;
	}
}

void
value_write_text(buf *out, value v, enum sql_version ver)
{
	if (v.t == VT_STR)
		buf_add(out, v.u.s, v.n);
	else if (v.t != VT_UNDEF && v.t != VT_NULL)
		value_write_json(out, v, ver);
}

const char *
value_type_name(vtype t)
{
	static const char *names[] = {"Undefined", "Null", "Boolean", "Int",
	    "Decimal", "String", "Array", "Object"};
	return t <= VT_OBJ ? names[t] : "?";
}
