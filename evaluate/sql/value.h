/* value: the typed values AWS IoT SQL computes with (SQL.md §4).
 *
 * A value is a small struct passed by value.  Strings, arrays and objects
 * point into memory owned by an arena (common/arena.h) or by a parsed
 * payload that lives as long as that arena's evaluation: a value never owns
 * anything and is never freed on its own.  Arrays and objects are immutable
 * once built.
 *
 * Numbers: Int is int64.  A Decimal always has a double in u.d; when it
 * came from decimal text or exact arithmetic it also has its exact
 * 34-digit value in x (evaluate/sql/dec.h), which operators, comparisons
 * and output use.  `big` marks an integer beyond int64 (up to 34 digits),
 * kept as an exact Decimal but written as an Int.  `dbl` marks results
 * that AWS computes "with double precision" (trig, sqrt, ...): they have
 * no x and are written like Java doubles (§8.3). */
#ifndef IOTRULES_VALUE_H
#define IOTRULES_VALUE_H

#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/buf.h"
#include "evaluate/sql/dec.h"

typedef enum vtype {
	VT_UNDEF = 0, VT_NULL, VT_BOOL, VT_INT, VT_DEC, VT_STR, VT_ARR, VT_OBJ
} vtype;

typedef struct value value;
typedef struct vmember vmember;

struct value {
	uint8_t t;     /* vtype */
	uint8_t dbl;   /* VT_DEC computed in double precision */
	uint8_t big;   /* VT_DEC holding an integer beyond int64 */
	uint32_t n;    /* bytes of a string, elements of an array/object */
	union {
		int b;
		int64_t i;
		double d;
		const char *s;  /* not NUL-terminated in general */
		value *a;
		vmember *o;
	} u;
	const dec *x;  /* VT_DEC: the exact value, or NULL */
};

struct vmember {
	const char *k;
	uint32_t klen;
	value v;
};

enum sql_version { SQL_2015 = 0, SQL_2016 = 1 };

static inline value v_undef(void) { value v = {0}; return v; }
static inline value v_null(void) { value v = {0}; v.t = VT_NULL; return v; }
static inline value v_bool(int b) { value v = {0}; v.t = VT_BOOL; v.u.b = !!b; return v; }
static inline value v_int(int64_t i) { value v = {0}; v.t = VT_INT; v.u.i = i; return v; }
static inline value v_dec(double d) { value v = {0}; v.t = VT_DEC; v.u.d = d; return v; }
static inline value v_dbl(double d) { value v = v_dec(d); v.dbl = 1; return v; }
static inline value v_str(const char *s, size_t n) { value v = {0}; v.t = VT_STR; v.u.s = s; v.n = (uint32_t)n; return v; }
value v_cstr(const char *s);

/* Numbers: Int and Decimal; value_num_d reads either as double. */
static inline int value_is_num(value v) { return v.t == VT_INT || v.t == VT_DEC; }
static inline double value_num_d(value v) { return v.t == VT_INT ? (double)v.u.i : v.u.d; }
/* d (already rounded as the caller wants) as an int64: 1, or 0 when d is
 * NaN or outside the int64 range, where a plain cast is undefined. */
static inline int value_d2i(double d, int64_t *out)
{
	if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
		return 0;
	*out = (int64_t)d;
	return 1;
}

/* A number from a double: NaN/Inf → Undefined (SQL.md §8.3). */
value value_from_double(double d, int dbl);
/* An exact Decimal (copied into a); an integer beyond int64 when big. */
value value_from_dec(arena *a, const dec *x, int big);
/* The exact value of an Int or a non-double Decimal (1), or 0 for a
 * double-precision Decimal or a non-number. */
int value_exact(value v, dec *out);

/* Parses a JSON text into a value allocated in a, typing numbers as
 * SQL.md §4 says for ver (2016-03-23 reads whole decimals as Int).
 * Returns 0, 1 when an object had duplicate keys (the last one won, so
 * the value no longer spells the text), or -1 if text is not JSON (out
 * untouched). */
int value_parse_json(arena *a, const char *text, size_t len, enum sql_version ver, value *out);

/* 1 if value_write_json of text's parsed value (without duplicate keys)
 * gives back exactly text, proven from the text alone: no whitespace
 * outside strings, no escapes in strings, numbers in the form the engine
 * writes them (see canonical_number in value.c).  0 when not provable
 * (the caller then writes the value).  Lets SELECT * pass a canonical
 * payload through without printing it (DESIGN.md, JSON cost). */
int value_json_is_canonical(const char *text, size_t len);

/* Looks up key in an object; Undefined if v is not an object or lacks it. */
value value_get(value obj, const char *key, size_t klen);

/* Standard conversions (§4.1).  Results live in a. */
value value_to_string(arena *a, value v, enum sql_version ver);
value value_to_decimal(value v);             /* Int/Dec/S-num/Null */
int value_snum(value v, double *d);          /* String matching the S-num pattern */
int value_sbool(value v, int *b);            /* Boolean or S-bool */

/* Equality per the `=` table (§7.3): 1 true, 0 false, -1 Undefined. */
int value_equal(value a, value b);

/* Writes v as JSON (AWS number rules, §8.3) into out.  Undefined writes
 * nothing (callers decide what Undefined means at their level). */
void value_write_json(buf *out, value v, enum sql_version ver);

/* Writes v as template text (§11.1): strings bare, Undefined/Null empty. */
void value_write_text(buf *out, value v, enum sql_version ver);

/* Writes a number (Int or Decimal) as text. */
void value_write_number(buf *out, value v, enum sql_version ver);

const char *value_type_name(vtype t);

#endif
