/* The AWS IoT SQL function library (SQL.md §10).  Each function takes
 * evaluated arguments and returns a value in the ctx arena; a bad
 * argument gives Undefined, never an error. */
#include "evaluate/sql/ast.h"

#include <ctype.h>
#include <math.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#define AR (&e->c->ar)
#define VER (e->st->ver)

/* ---- helpers ---------------------------------------------------------- */

value
sql_base64(arena *a, const void *p, size_t n)
{
	char *out = arena_alloc(a, 4 * ((n + 2) / 3) + 1);
	int len = EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	return v_str(out, (size_t)len);
}

static value
str_arg(sql_ectx *e, value v)
{
	return value_to_string(AR, v, VER);
}

static const char *
cstr(sql_ectx *e, value s)  /* s is a String: NUL-terminated copy */
{
	return arena_strndup(AR, s.u.s, s.n);
}

/* A number argument: Int, Decimal or S-num → Int/Decimal; else Undefined. */
static value
num_arg(value v)
{
	if (v.t == VT_NULL)
		return v_undef();
	return value_to_decimal(v);
}

/* "rounded down" Int conversion of the per-function tables. */
static int
int_floor_arg(value v, int64_t *out)
{
	value n = num_arg(v);
	if (n.t == VT_INT) {
		*out = n.u.i;
		return 1;
	}
	if (n.t == VT_DEC) {
		double d = floor(n.u.d);
		if (d > 9.2e18)
			d = 9.2e18;
		if (d < -9.2e18)
			d = -9.2e18;
		return value_d2i(d, out);   /* 0 for NaN */
	}
	return 0;
}

/* ---- context functions ------------------------------------------------ */

static value
f_topic(sql_ectx *e, node *call, value *a, int n)
{
	(void)call;
	const char *t = e->c->msg->topic ? e->c->msg->topic : "";
	/* Basic Ingest: topic() is the part after $aws/rules/<rule>/ (§3.4). */
	if (strncmp(t, "$aws/rules/", 11) == 0) {
		const char *r = strchr(t + 11, '/');
		t = r ? r + 1 : "";
	}
	if (n == 0)
		return v_cstr(t);
	int64_t k;
	value x = num_arg(a[0]);
	if (x.t == VT_INT)
		k = x.u.i;
	else if (x.t != VT_DEC || !value_d2i(trunc(x.u.d), &k))
		return v_undef();
	if (k < 1)
		return v_undef();
	const char *p = t;
	for (int64_t lv = 1; lv < k; lv++) {
		p = strchr(p, '/');
		if (p == NULL)
			return v_undef();
		p++;
	}
	const char *q = strchr(p, '/');
	return v_str(p, q ? (size_t)(q - p) : strlen(p));
}

static value
f_clientid(sql_ectx *e, node *call, value *a, int n)
{
	(void)call; (void)a; (void)n;
	return v_cstr(e->c->msg->clientid ? e->c->msg->clientid : "n/a");
}

static value
opt_str(const char *s)
{
	return s ? v_cstr(s) : v_undef();
}

static value f_principal(sql_ectx *e, node *c, value *a, int n) { (void)c; (void)a; (void)n; return opt_str(e->c->msg->principal); }
static value f_sourceip(sql_ectx *e, node *c, value *a, int n) { (void)c; (void)a; (void)n; return opt_str(e->c->msg->sourceip); }
static value f_traceid(sql_ectx *e, node *c, value *a, int n) { (void)c; (void)a; (void)n; return opt_str(e->c->msg->traceid); }
static value f_accountid(sql_ectx *e, node *c, value *a, int n) { (void)c; (void)a; (void)n; return opt_str(e->c->msg->accountid); }

static value
f_timestamp(sql_ectx *e, node *call, value *a, int n)
{
	(void)call; (void)a; (void)n;
	return v_int(e->c->msg->timestamp_ms);
}

static value
f_sql_version(sql_ectx *e, node *call, value *a, int n)
{
	(void)call; (void)a; (void)n;
	return v_cstr(VER == SQL_2016 ? "2016-03-23" : "2015-10-08");
}

static value
f_newuuid(sql_ectx *e, node *call, value *a, int n)
{
	(void)call; (void)a; (void)n;
	uuid_t u;
	char *s = arena_alloc(AR, 37);
	uuid_generate_random(u);
	uuid_unparse_lower(u, s);
	return v_str(s, 36);
}

static value
f_rand(sql_ectx *e, node *call, value *a, int n)
{
	(void)e; (void)call; (void)a; (void)n;
	uint64_t r;
	arc4random_buf(&r, sizeof(r));
	return v_dbl((double)(r >> 11) / 9007199254740992.0);
}

static value
f_external(sql_ectx *e, node *call, value *a, int n)
{
	(void)a; (void)n;
	e->failed = 1;
	snprintf(e->err->msg, sizeof(e->err->msg),
	    "%s() needs an AWS service this build does not call", call->name);
	return v_undef();
}

/* ---- external functions that call AWS (§10.4) --------------------------- */

/* Why a call fails where no host (or none for this function) is set. */
#define NO_HOST "needs AWS, which this evaluation is not set up to call"

/* Fails the statement: the function's name and why.  The first failure
 * is the one reported. */
static value
ext_fail(sql_ectx *e, node *call, const char *why)
{
	if (!e->failed)
		snprintf(e->err->msg, sizeof(e->err->msg), "%s(): %s", call->name, why);
	e->failed = 1;
	return v_undef();
}

/* The host's answer (JSON text) as a value; a failure when it is not. */
static value
ext_answer(sql_ectx *e, node *call, int rc, buf *out, const char *err)
{
	value v;
	if (rc < 0)
		v = ext_fail(e, call, err);
	else if (value_parse_json(AR, out->data ? out->data : "", out->len, VER, &v) < 0)
		v = ext_fail(e, call, "the answer is not JSON");
	buf_free(out);
	return v;
}

/* {"S":"text"} or {"N":"number"}: one key attribute in DynamoDB's JSON
 * form; -1 for any other type. */
static int
ddb_key_value(sql_ectx *e, buf *key, value v)
{
	if (v.t == VT_STR) {
		buf_adds(key, "{\"S\":");
		buf_add_json_str(key, v.u.s, v.n);
	} else if (value_is_num(v)) {
		buf_adds(key, "{\"N\":\"");
		value_write_number(key, v, VER);
		buf_adds(key, "\"");
	} else {
		return -1;
	}
	buf_addc(key, '}');
	return 0;
}

/* get_dynamodb(tableName, partitionKeyName, partitionKeyValue,
 * [sortKeyName, sortKeyValue,] roleArn): the item, by GetItem. */
static value
f_get_dynamodb(sql_ectx *e, node *call, value *a, int n)
{
	if (e->failed)   /* the statement has failed: no more AWS calls */
		return v_undef();
	if (e->c->ext == NULL)
		return ext_fail(e, call, NO_HOST);
	if (n == 5)
		return ext_fail(e, call, "takes 4 arguments, or 6 with a sort key");
	if (e->ddb_calls++ > 0)
		return ext_fail(e, call, "may be called only once per SQL statement");
	const int names[] = {0, 1, n == 6 ? 3 : 1, n - 1};   /* table, key names, roleArn */
	for (int i = 0; i < 4; i++)
		if (a[names[i]].t != VT_STR || a[names[i]].n == 0)
			return ext_fail(e, call, "the table, key names and roleArn must be non-empty strings");
	buf key = BUF_ZERO, out = BUF_ZERO;
	int bad = 0;
	buf_addc(&key, '{');
	for (int k = 1; k + 1 < n; k += 2) {
		if (k > 1)
			buf_addc(&key, ',');
		buf_add_json_str(&key, a[k].u.s, a[k].n);
		buf_addc(&key, ':');
		bad |= ddb_key_value(e, &key, a[k + 1]);
	}
	buf_addc(&key, '}');
	buf_addc(&key, 0);
	char err[sizeof(e->err->msg) - 64] = "";
	int rc = bad ? -1 : e->c->ext->get_item(cstr(e, a[0]), key.data, cstr(e, a[n - 1]), &out, err, sizeof(err));
	buf_free(&key);
	if (bad)
		snprintf(err, sizeof(err), "a key value must be a string or a number");
	return ext_answer(e, call, rc, &out, err);
}

/* aws_lambda(functionArn, inputJson): the function's answer to a
 * synchronous invoke; * as inputJson passes the whole payload. */
static value
f_aws_lambda(sql_ectx *e, node *call, value *a, int n)
{
	if (e->failed)   /* the statement has failed: no more AWS calls */
		return v_undef();
	if (e->c->ext == NULL)
		return ext_fail(e, call, NO_HOST);
	if (n != 2)
		return ext_fail(e, call, "takes 2 arguments");
	value in = call->kids[1]->kind == N_STAR ? sql_payload(e->c, VER) : a[1];
	if (a[0].t != VT_STR || a[0].n == 0)
		return ext_fail(e, call, "the functionArn must be a non-empty string");
	if (in.t == VT_UNDEF)
		return ext_fail(e, call, "the inputJson is Undefined");
	buf payload = BUF_ZERO, out = BUF_ZERO;
	value_write_json(&payload, in, VER);
	char err[sizeof(e->err->msg) - 64] = "";
	int rc = e->c->ext->invoke(cstr(e, a[0]), payload.data, payload.len, NULL, &out, err, sizeof(err));
	buf_free(&payload);
	return ext_answer(e, call, rc, &out, err);
}

/* Whether a call may go ahead: the statement has not failed (then no
 * more AWS calls), the host has the function (have), and the arguments
 * named in idx (-1 ends the list) are non-empty Strings.  0: the
 * statement has failed, the caller returns Undefined. */
static int
ext_ready(sql_ectx *e, node *call, int have, const value *a, const int *idx, const char *names)
{
	if (e->failed)
		return 0;
	if (!have) {
		ext_fail(e, call, NO_HOST);
		return 0;
	}
	for (int i = 0; idx[i] >= 0; i++)
		if (a[idx[i]].t != VT_STR || a[idx[i]].n == 0) {
			char why[160];
			snprintf(why, sizeof(why), "the %s must be non-empty strings", names);
			ext_fail(e, call, why);
			return 0;
		}
	return 1;
}

/* What a host call fills: the answer, or why there is none. */
typedef struct ext_out {
	buf out;
	char err[sizeof(((sql_error *)0)->msg) - 64];
} ext_out;

/* get_secret(secretId, secretType, [key,] roleArn): the secret (Secrets
 * Manager), a String or, with a key, that member's value. */
static value
f_get_secret(sql_ectx *e, node *call, value *a, int n)
{
	const sql_external *h = e->c->ext;
	if (!ext_ready(e, call, h && h->get_secret, a, (const int[]){0, 1, n - 1, n == 4 ? 2 : -1, -1},
	    "secretId, secretType, key and roleArn"))
		return v_undef();
	int binary = strcmp(cstr(e, a[1]), "SecretBinary") == 0;
	if (!binary && strcmp(cstr(e, a[1]), "SecretString") != 0)
		return ext_fail(e, call, "the secretType must be 'SecretString' or 'SecretBinary'");
	if (binary && n == 4)
		return ext_fail(e, call, "a key is not allowed with 'SecretBinary'");
	ext_out o = {BUF_ZERO, ""};
	int rc = h->get_secret(cstr(e, a[0]), binary, n == 4 ? cstr(e, a[2]) : NULL, cstr(e, a[n - 1]), &o.out,
	    o.err, sizeof(o.err));
	return ext_answer(e, call, rc, &o.out, o.err);
}

/* get_thing_shadow(thingName, [shadowName,] roleArn): the shadow
 * document (IoT GetThingShadow). */
static value
f_get_thing_shadow(sql_ectx *e, node *call, value *a, int n)
{
	const sql_external *h = e->c->ext;
	if (!ext_ready(e, call, h && h->get_thing_shadow, a, (const int[]){0, n - 1, n == 3 ? 1 : -1, -1},
	    "thingName, shadowName and roleArn"))
		return v_undef();
	ext_out o = {BUF_ZERO, ""};
	int rc = h->get_thing_shadow(cstr(e, a[0]), n == 3 ? cstr(e, a[1]) : NULL, cstr(e, a[n - 1]), &o.out, o.err,
	    sizeof(o.err));
	return ext_answer(e, call, rc, &o.out, o.err);
}

/* get_registry_data(registryAPI, thingName, roleArn): the answer of IoT
 * DescribeThing or ListThingGroupsForThing for the thing. */
static value
f_get_registry_data(sql_ectx *e, node *call, value *a, int n)
{
	(void)n;
	const sql_external *h = e->c->ext;
	if (!ext_ready(e, call, h && h->get_registry_data, a, (const int[]){0, 1, 2, -1},
	    "registryAPI, thingName and roleArn"))
		return v_undef();
	const char *api = cstr(e, a[0]);
	if (strcmp(api, "DescribeThing") != 0 && strcmp(api, "ListThingGroupsForThing") != 0)
		return ext_fail(e, call, "the registryAPI must be 'DescribeThing' or 'ListThingGroupsForThing'");
	ext_out o = {BUF_ZERO, ""};
	int rc = h->get_registry_data(api, cstr(e, a[1]), cstr(e, a[2]), &o.out, o.err, sizeof(o.err));
	return ext_answer(e, call, rc, &o.out, o.err);
}

/* ---- math -------------------------------------------------------------- */

static value
f_abs(sql_ectx *e, node *c, value *a, int n)
{
	(void)e; (void)c; (void)n;
	value x = num_arg(a[0]);
	if (x.t == VT_INT)
		return x.u.i == INT64_MIN ? v_dec(9223372036854775808.0) : v_int(x.u.i < 0 ? -x.u.i : x.u.i);
	if (x.t == VT_DEC)
		return value_from_double(fabs(x.u.d), x.dbl);
	return v_undef();
}

typedef double (*d2d)(double);

static value
dbl1(value v, d2d f, double lo, double hi)
{
	value x = num_arg(v);
	if (!value_is_num(x))
		return v_undef();
	double d = value_num_d(x);
	if (d < lo || d > hi)
		return v_undef();
	return value_from_double(f(d), 1);
}

#define DBL1(name, fn, lo, hi) \
	static value f_##name(sql_ectx *e, node *c, value *a, int n) \
	{ (void)e; (void)c; (void)n; return dbl1(a[0], fn, lo, hi); }
DBL1(acos, acos, -1, 1)
DBL1(asin, asin, -1, 1)
DBL1(atan, atan, -INFINITY, INFINITY)
DBL1(cos, cos, -INFINITY, INFINITY)
DBL1(cosh, cosh, -INFINITY, INFINITY)
DBL1(exp, exp, -INFINITY, INFINITY)
DBL1(sin, sin, -INFINITY, INFINITY)
DBL1(sinh, sinh, -INFINITY, INFINITY)
DBL1(tan, tan, -INFINITY, INFINITY)
DBL1(tanh, tanh, -INFINITY, INFINITY)
DBL1(sqrt, sqrt, 0, INFINITY)

static value
f_ln(sql_ectx *e, node *c, value *a, int n)
{
	(void)e; (void)c; (void)n;
	value x = num_arg(a[0]);
	if (!value_is_num(x) || value_num_d(x) <= 0)
		return v_undef();
	return value_from_double(log(value_num_d(x)), 1);
}

static value
f_log(sql_ectx *e, node *c, value *a, int n)
{
	(void)e; (void)c; (void)n;
	value x = num_arg(a[0]);
	if (!value_is_num(x) || value_num_d(x) <= 0)
		return v_undef();
	return value_from_double(log10(value_num_d(x)), 1);
}

static value
f_atan2(sql_ectx *e, node *c, value *a, int n)
{
	(void)e; (void)c; (void)n;
	value x = num_arg(a[0]), y = num_arg(a[1]);
	if (!value_is_num(x) || !value_is_num(y))
		return v_undef();
	return value_from_double(atan2(value_num_d(x), value_num_d(y)), 1);
}

static value
f_power(sql_ectx *e, node *c, value *a, int n)
{
	(void)e; (void)c; (void)n;
	value x = num_arg(a[0]), y = num_arg(a[1]);
	if (!value_is_num(x) || !value_is_num(y))
		return v_undef();
	return value_from_double(pow(value_num_d(x), value_num_d(y)), 1);
}

static value
round_with(value v, double (*f)(double))
{
	value x = num_arg(v);
	if (x.t == VT_INT)
		return x;
	if (x.t != VT_DEC)
		return v_undef();
	double d = f(x.u.d);
	if (fabs(d) < 9.2e18)
		return v_int((int64_t)d);
	return value_from_double(d, 0);
}

static value f_ceil(sql_ectx *e, node *c, value *a, int n) { (void)e; (void)c; (void)n; return round_with(a[0], ceil); }
static value f_floor(sql_ectx *e, node *c, value *a, int n) { (void)e; (void)c; (void)n; return round_with(a[0], floor); }
static value f_round(sql_ectx *e, node *c, value *a, int n) { (void)e; (void)c; (void)n; return round_with(a[0], round); }

static value
f_sign(sql_ectx *e, node *c, value *a, int n)
{
	(void)e; (void)c; (void)n;
	value x = num_arg(a[0]);
	if (!value_is_num(x))
		return v_undef();
	double d = value_num_d(x);
	return v_int((d > 0) - (d < 0));
}

static value
f_mod(sql_ectx *e, node *c, value *a, int n)
{
	(void)c; (void)n;
	node fake = {0};
	fake.kind = N_BINARY;
	fake.op = OP_MOD;
	node la = {0}, lb = {0};
	la.kind = lb.kind = N_LIT;
	la.lit = a[0];
	lb.lit = a[1];
	fake.a = &la;
	fake.b = &lb;
	return sql_eval(e, &fake);
}

static value
bitop(value x, value y, int op)
{
	int64_t i, j = 0;
	if (!int_floor_arg(x, &i) || (op != 3 && !int_floor_arg(y, &j)))
		return v_undef();
	switch (op) {
	case 0: return v_int(i & j);
	case 1: return v_int(i | j);
	case 2: return v_int(i ^ j);
	default: return v_int(~i);
	}
}

static value f_bitand(sql_ectx *e, node *c, value *a, int n) { (void)e; (void)c; (void)n; return bitop(a[0], a[1], 0); }
static value f_bitor(sql_ectx *e, node *c, value *a, int n) { (void)e; (void)c; (void)n; return bitop(a[0], a[1], 1); }
static value f_bitxor(sql_ectx *e, node *c, value *a, int n) { (void)e; (void)c; (void)n; return bitop(a[0], a[1], 2); }
static value f_bitnot(sql_ectx *e, node *c, value *a, int n) { (void)e; (void)c; (void)n; return bitop(a[0], v_undef(), 3); }

static value
f_trunc(sql_ectx *e, node *c, value *a, int n)
{
	(void)e; (void)c; (void)n;
	value x = num_arg(a[0]);
	int64_t d;
	if (!value_is_num(x) || !int_floor_arg(a[1], &d))
		return v_undef();
	if (x.t == VT_INT)
		return x;
	if (d < 0)
		d = 0;
	if (d > 34)
		d = 34;
	/* Truncate through the shortest decimal text so that 2.888 → 2.88
	 * (binary 2.888 is slightly below it). */
	char txt[64];
	snprintf(txt, sizeof(txt), "%.17g", x.u.d);
	for (int p = 1; p <= 17; p++) {
		snprintf(txt, sizeof(txt), "%.*g", p, x.u.d);
		if (strtod(txt, NULL) == x.u.d)
			break;
	}
	double v = strtod(txt, NULL);
	char fixed[400];
	snprintf(fixed, sizeof(fixed), "%.*f", 20, v);
	char *dot = strchr(fixed, '.');
	if (dot) {
		/* Re-derive the digits from the shortest text instead, to avoid
		 * binary noise in %.20f. */
		char *ep = strpbrk(txt, "eE");
		if (ep == NULL) {
			snprintf(fixed, sizeof(fixed), "%s", txt);
			dot = strchr(fixed, '.');
		}
		if (dot) {
			size_t keep = (size_t)(dot - fixed) + 1 + (size_t)d;
			if (strlen(fixed) > keep)
				fixed[keep] = 0;
		}
	}
	double r = strtod(fixed, NULL);
	if (r == floor(r) && fabs(r) < 9.2e18)
		return v_int((int64_t)r);
	return value_from_double(r, 0);
}

/* ---- conversions ------------------------------------------------------ */

value
sql_cast(sql_ectx *e, value v, int type)
{
	double d;
	int b;
	switch (type) {
	case CAST_STRING:
		return value_to_string(AR, v, VER);
	case CAST_INT:
		if (v.t == VT_BOOL)
			return v_int(v.u.b);
		if (v.t == VT_INT)
			return v;
		if (v.t == VT_DEC)
			return fabs(v.u.d) < 9.2e18 ? v_int((int64_t)floor(v.u.d)) : v_undef();
		if (value_snum(v, &d))
			return fabs(d) < 9.2e18 ? v_int((int64_t)floor(d)) : v_undef();
		return v_undef();
	case CAST_DOUBLE:
	case CAST_DECIMAL:
		if (v.t == VT_BOOL)
			return type == CAST_DOUBLE ? v_dbl(v.u.b) : v_dec(v.u.b);
		if (value_is_num(v))
			return value_from_double(value_num_d(v), type == CAST_DOUBLE);
		if (value_snum(v, &d))
			return value_from_double(d, type == CAST_DOUBLE);
		return v_undef();
	case CAST_BOOL:
		if (v.t == VT_BOOL)
			return v;
		if (value_is_num(v))
			return v_bool(value_num_d(v) != 0);
		if (v.t == VT_STR && value_sbool(v, &b))
			return v_bool(b);
		return v_undef();
	}
	return v_undef();
}

/* ---- strings ----------------------------------------------------------- */

typedef int (*cmap)(int);

static value
map_chars(sql_ectx *e, value v, cmap f)
{
	value s = str_arg(e, v);
	if (s.t != VT_STR)
		return v_undef();
	char *o = arena_alloc(AR, s.n + 1);
	for (uint32_t i = 0; i < s.n; i++)
		o[i] = (char)f((unsigned char)s.u.s[i]);
	return v_str(o, s.n);
}

static value f_lower(sql_ectx *e, node *c, value *a, int n) { (void)c; (void)n; return map_chars(e, a[0], tolower); }
static value f_upper(sql_ectx *e, node *c, value *a, int n) { (void)c; (void)n; return map_chars(e, a[0], toupper); }

static value
trim_with(sql_ectx *e, value v, int left, int right)
{
	value s = str_arg(e, v);
	if (s.t != VT_STR)
		return v_undef();
	const char *p = s.u.s, *q = s.u.s + s.n;
	while (left && p < q && (*p == ' ' || *p == '\t'))
		p++;
	while (right && q > p && (q[-1] == ' ' || q[-1] == '\t'))
		q--;
	return v_str(p, (size_t)(q - p));
}

static value f_trim(sql_ectx *e, node *c, value *a, int n) { (void)c; (void)n; return trim_with(e, a[0], 1, 1); }
static value f_ltrim(sql_ectx *e, node *c, value *a, int n) { (void)c; (void)n; return trim_with(e, a[0], 1, 0); }
static value f_rtrim(sql_ectx *e, node *c, value *a, int n) { (void)c; (void)n; return trim_with(e, a[0], 0, 1); }

static value
pad(sql_ectx *e, value v, value cnt, int left)
{
	value s = str_arg(e, v);
	int64_t k;
	if (s.t != VT_STR || !value_is_num(num_arg(cnt)) || !int_floor_arg(cnt, &k))
		return v_undef();
	if (k < 0)
		k = 0;
	if (k > 1000)
		k = 1000;
	char *o = arena_alloc(AR, s.n + (size_t)k + 1);
	if (left) {
		memset(o, ' ', (size_t)k);
		memcpy(o + k, s.u.s, s.n);
	} else {
		memcpy(o, s.u.s, s.n);
		memset(o + s.n, ' ', (size_t)k);
	}
	return v_str(o, s.n + (size_t)k);
}

static value f_lpad(sql_ectx *e, node *c, value *a, int n) { (void)c; (void)n; return pad(e, a[0], a[1], 1); }
static value f_rpad(sql_ectx *e, node *c, value *a, int n) { (void)c; (void)n; return pad(e, a[0], a[1], 0); }

static size_t
utf8_count(const char *s, size_t n)
{
	size_t c = 0;
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			c++;
	return c;
}

static value
f_length(sql_ectx *e, node *c, value *a, int n)
{
	(void)c; (void)n;
	value s = str_arg(e, a[0]);
	return s.t == VT_STR ? v_int((int64_t)utf8_count(s.u.s, s.n)) : v_undef();
}

static value
f_numbytes(sql_ectx *e, node *c, value *a, int n)
{
	(void)c; (void)n;
	value s = str_arg(e, a[0]);
	return s.t == VT_STR ? v_int(s.n) : v_undef();
}

static value
f_substring(sql_ectx *e, node *c, value *a, int n)
{
	(void)c;
	value s = str_arg(e, a[0]);
	int64_t st, en;
	if (s.t != VT_STR || !int_floor_arg(a[1], &st))
		return v_undef();
	/* Indices count characters, not bytes. */
	int64_t len = (int64_t)utf8_count(s.u.s, s.n);
	if (n > 2) {
		if (!int_floor_arg(a[2], &en))
			return v_undef();
	} else {
		en = len;
	}
	if (st < 0) st = 0;
	if (st > len) st = len;
	if (en < 0) en = 0;
	if (en > len) en = len;
	if (st >= en)
		return v_str("", 0);
	size_t bs = 0, be = s.n;
	int64_t ci = -1;
	for (size_t i = 0; i < s.n; i++) {
		if (((unsigned char)s.u.s[i] & 0xC0) != 0x80) {
			ci++;
			if (ci == st)
				bs = i;
			if (ci == en) {
				be = i;
				break;
			}
		}
	}
	return v_str(s.u.s + bs, be - bs);
}

static value
f_concat(sql_ectx *e, node *c, value *a, int n)
{
	(void)c;
	if (n == 0)
		return v_undef();
	if (n == 1)
		return a[0];
	int any_arr = 0, any_str = 0;
	for (int i = 0; i < n; i++) {
		any_arr |= a[i].t == VT_ARR;
		any_str |= a[i].t == VT_STR;
	}
	if (any_arr) {
		uint32_t total = 0;
		for (int i = 0; i < n; i++)
			total += a[i].t == VT_ARR ? a[i].n : 1;
		value r = {0};
		r.t = VT_ARR;
		r.u.a = arena_alloc(AR, sizeof(value) * (total ? total : 1));
		for (int i = 0; i < n; i++) {
			if (a[i].t == VT_ARR)
				for (uint32_t k = 0; k < a[i].n; k++)
					r.u.a[r.n++] = a[i].u.a[k];
			else if (a[i].t != VT_UNDEF)
				r.u.a[r.n++] = a[i];
		}
		return r;
	}
	if (!any_str)
		return v_undef();
	buf b = BUF_ZERO;
	for (int i = 0; i < n; i++) {
		value s = str_arg(e, a[i]);
		if (s.t != VT_STR) {
			buf_free(&b);
			return v_undef();
		}
		buf_add(&b, s.u.s, s.n);
	}
	value r = v_str(arena_strndup(AR, b.data ? b.data : "", b.len), b.len);
	buf_free(&b);
	return r;
}

static value
affix(sql_ectx *e, value x, value y, int end)
{
	value s = str_arg(e, x), t = str_arg(e, y);
	if (s.t != VT_STR || t.t != VT_STR)
		return v_undef();
	if (t.n > s.n)
		return v_bool(0);
	return v_bool(memcmp(end ? s.u.s + s.n - t.n : s.u.s, t.u.s, t.n) == 0);
}

static value f_startswith(sql_ectx *e, node *c, value *a, int n) { (void)c; (void)n; return affix(e, a[0], a[1], 0); }
static value f_endswith(sql_ectx *e, node *c, value *a, int n) { (void)c; (void)n; return affix(e, a[0], a[1], 1); }

static value
f_indexof(sql_ectx *e, node *c, value *a, int n)
{
	(void)c; (void)n;
	value s = str_arg(e, a[0]), t = str_arg(e, a[1]);
	if (s.t != VT_STR || t.t != VT_STR)
		return v_undef();
	const char *p = t.n ? memmem(s.u.s, s.n, t.u.s, t.n) : s.u.s;
	return v_int(p ? (int64_t)utf8_count(s.u.s, (size_t)(p - s.u.s)) : -1);
}

static value
f_replace(sql_ectx *e, node *c, value *a, int n)
{
	(void)c; (void)n;
	value s = str_arg(e, a[0]), f = str_arg(e, a[1]), t = str_arg(e, a[2]);
	if (s.t != VT_STR || f.t != VT_STR || t.t != VT_STR)
		return v_undef();
	if (f.n == 0)
		return s;
	buf b = BUF_ZERO;
	const char *p = s.u.s, *end = s.u.s + s.n, *q;
	while ((q = memmem(p, (size_t)(end - p), f.u.s, f.n)) != NULL) {
		buf_add(&b, p, (size_t)(q - p));
		buf_add(&b, t.u.s, t.n);
		p = q + f.n;
	}
	buf_add(&b, p, (size_t)(end - p));
	value r = v_str(arena_strndup(AR, b.data, b.len), b.len);
	buf_free(&b);
	return r;
}

static value
f_chr(sql_ectx *e, node *c, value *a, int n)
{
	(void)c; (void)n;
	int64_t k;
	if (!int_floor_arg(a[0], &k) || k < 0 || k > 127)
		return v_undef();
	char *s = arena_alloc(AR, 2);
	s[0] = (char)k;
	return v_str(s, 1);
}

/* ---- hashes and encodings ---------------------------------------------- */

static value
digest(sql_ectx *e, value v, const char *alg)
{
	value s = str_arg(e, v);
	if (s.t != VT_STR)
		return v_undef();
	const EVP_MD *md = EVP_get_digestbyname(alg);
	unsigned char out[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	if (md == NULL || !EVP_Digest(s.u.s, s.n, out, &len, md, NULL))
		return v_undef();
	char *hex = arena_alloc(AR, len * 2 + 1);
	for (unsigned i = 0; i < len; i++)
		snprintf(hex + 2 * i, 3, "%02x", out[i]);
	return v_str(hex, len * 2);
}

#define DIGEST(name) \
	static value f_##name(sql_ectx *e, node *c, value *a, int n) \
	{ (void)c; (void)n; return digest(e, a[0], #name); }
DIGEST(md5)
DIGEST(sha1)
DIGEST(sha224)
DIGEST(sha256)
DIGEST(sha384)
DIGEST(sha512)

/* MD2 is not in OpenSSL 3's default provider; RFC 1319 is short and has
 * no library on Debian that exposes it, so it is computed here. */
static value
f_md2(sql_ectx *e, node *c, value *a, int n)
{
	(void)c; (void)n;
	static const unsigned char S[256] = {
	    41, 46, 67, 201, 162, 216, 124, 1, 61, 54, 84, 161, 236, 240, 6, 19,
	    98, 167, 5, 243, 192, 199, 115, 140, 152, 147, 43, 217, 188, 76, 130, 202,
	    30, 155, 87, 60, 253, 212, 224, 22, 103, 66, 111, 24, 138, 23, 229, 18,
	    190, 78, 196, 214, 218, 158, 222, 73, 160, 251, 245, 142, 187, 47, 238, 122,
	    169, 104, 121, 145, 21, 178, 7, 63, 148, 194, 16, 137, 11, 34, 95, 33,
	    128, 127, 93, 154, 90, 144, 50, 39, 53, 62, 204, 231, 191, 247, 151, 3,
	    255, 25, 48, 179, 72, 165, 181, 209, 215, 94, 146, 42, 172, 86, 170, 198,
	    79, 184, 56, 210, 150, 164, 125, 182, 118, 252, 107, 226, 156, 116, 4, 241,
	    69, 157, 112, 89, 100, 113, 135, 32, 134, 91, 207, 101, 230, 45, 168, 2,
	    27, 96, 37, 173, 174, 176, 185, 246, 28, 70, 97, 105, 52, 64, 126, 15,
	    85, 71, 163, 35, 221, 81, 175, 58, 195, 92, 249, 206, 186, 197, 234, 38,
	    44, 83, 13, 110, 133, 40, 132, 9, 211, 223, 205, 244, 65, 129, 77, 82,
	    106, 220, 55, 200, 108, 193, 171, 250, 36, 225, 123, 8, 12, 189, 177, 74,
	    120, 136, 149, 139, 227, 99, 232, 109, 233, 203, 213, 254, 59, 0, 29, 57,
	    242, 239, 183, 14, 102, 88, 208, 228, 166, 119, 114, 248, 235, 117, 75, 10,
	    49, 68, 80, 180, 143, 237, 31, 26, 219, 153, 141, 51, 159, 17, 131, 20};
	value s = str_arg(e, a[0]);
	if (s.t != VT_STR)
		return v_undef();
	size_t padn = 16 - s.n % 16, len = s.n + padn;
	unsigned char *m = arena_alloc(AR, len + 16);
	memcpy(m, s.u.s, s.n);
	memset(m + s.n, (int)padn, padn);
	unsigned char cs[16] = {0}, x[48] = {0};
	unsigned char L = 0;
	for (size_t i = 0; i < len / 16; i++)
		for (int j = 0; j < 16; j++)
			L = cs[j] ^= S[m[i * 16 + j] ^ L];
	memcpy(m + len, cs, 16);
	len += 16;
	for (size_t i = 0; i < len / 16; i++) {
		for (int j = 0; j < 16; j++) {
			x[16 + j] = m[i * 16 + j];
			x[32 + j] = x[16 + j] ^ x[j];
		}
		unsigned t = 0;
		for (int j = 0; j < 18; j++) {
			for (int k = 0; k < 48; k++)
				t = x[k] ^= S[t];
			t = (t + (unsigned)j) & 255;
		}
	}
	char *hex = arena_alloc(AR, 33);
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", x[i]);
	return v_str(hex, 32);
}

static value
f_encode(sql_ectx *e, node *c, value *a, int n)
{
	(void)n;
	value scheme = a[1];
	if (scheme.t != VT_STR || scheme.n != 6 || strncasecmp(scheme.u.s, "base64", 6) != 0)
		return v_undef();
	if (c->kids[0]->kind == N_STAR)
		return sql_base64(AR, e->c->msg->payload, e->c->msg->payload_len);
	value s = str_arg(e, a[0]);
	if (s.t != VT_STR)
		return v_undef();
	return sql_base64(AR, s.u.s, s.n);
}

static value
f_decode(sql_ectx *e, node *c, value *a, int n)
{
	(void)n;
	value scheme = a[1];
	if (scheme.t == VT_STR && scheme.n == 5 && strncasecmp(scheme.u.s, "proto", 5) == 0)
		return f_external(e, c, a, n);
	if (scheme.t != VT_STR || scheme.n != 6 || strncasecmp(scheme.u.s, "base64", 6) != 0)
		return v_undef();
	value s = c->kids[0]->kind == N_STAR ? sql_raw_payload(e->c) : str_arg(e, a[0]);
	if (s.t != VT_STR)
		return v_undef();
	/* EVP_DecodeBlock wants no blanks and a length multiple of 4 and
	 * returns padding bytes as data: strip them by counting '='. */
	if (s.n % 4 != 0)
		return v_null();
	unsigned char *out = arena_alloc(AR, s.n / 4 * 3 + 1);
	int len = EVP_DecodeBlock(out, (const unsigned char *)s.u.s, (int)s.n);
	if (len < 0)
		return v_null();
	if (s.n >= 1 && s.u.s[s.n - 1] == '=')
		len--;
	if (s.n >= 2 && s.u.s[s.n - 2] == '=')
		len--;
	value v;
	if (len > 0 && value_parse_json(AR, (const char *)out, (size_t)len, e->st->ver, &v) >= 0)
		return v;
	return v_str((const char *)out, (size_t)len);
}

/* ---- regular expressions (PCRE2, close to Java's syntax) -------------- */

static pcre2_code *
compile_re(value re)
{
	int ec;
	PCRE2_SIZE eo;
	return pcre2_compile((PCRE2_SPTR)re.u.s, re.n, PCRE2_UTF, &ec, &eo, NULL);
}

static value
f_regexp_matches(sql_ectx *e, node *c, value *a, int n)
{
	(void)c; (void)n;
	value s = str_arg(e, a[0]), re = str_arg(e, a[1]);
	if (s.t != VT_STR || re.t != VT_STR)
		return v_undef();
	pcre2_code *code = compile_re(re);
	if (code == NULL)
		return v_undef();
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
	int rc = pcre2_match(code, (PCRE2_SPTR)s.u.s, s.n, 0, 0, md, NULL);
	pcre2_match_data_free(md);
	pcre2_code_free(code);
	if (rc < 0 && rc != PCRE2_ERROR_NOMATCH)
		return v_undef();
	return v_bool(rc >= 0);
}

static value
f_regexp_substr(sql_ectx *e, node *c, value *a, int n)
{
	(void)c; (void)n;
	value s = str_arg(e, a[0]), re = str_arg(e, a[1]);
	if (s.t != VT_STR || re.t != VT_STR)
		return v_undef();
	pcre2_code *code = compile_re(re);
	if (code == NULL)
		return v_undef();
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
	int rc = pcre2_match(code, (PCRE2_SPTR)s.u.s, s.n, 0, 0, md, NULL);
	value r = v_str("", 0);
	if (rc >= 0) {
		PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
		r = v_str(s.u.s + ov[0], ov[1] - ov[0]);
	} else if (rc != PCRE2_ERROR_NOMATCH) {
		r = v_undef();
	}
	pcre2_match_data_free(md);
	pcre2_code_free(code);
	return r;
}

static value
f_regexp_replace(sql_ectx *e, node *c, value *a, int n)
{
	(void)c; (void)n;
	value s = str_arg(e, a[0]), re = str_arg(e, a[1]), rep = str_arg(e, a[2]);
	if (s.t != VT_STR || re.t != VT_STR || rep.t != VT_STR)
		return v_undef();
	pcre2_code *code = compile_re(re);
	if (code == NULL)
		return v_undef();
	/* Java's replacement syntax ($1, \$) is PCRE2's extended syntax. */
	PCRE2_SIZE outlen = s.n * 2 + rep.n * 4 + 64;
	value r = v_undef();
	for (int tries = 0; tries < 2; tries++) {
		PCRE2_UCHAR *out = arena_alloc(AR, outlen + 1);
		PCRE2_SIZE len = outlen;
		int rc = pcre2_substitute(code, (PCRE2_SPTR)s.u.s, s.n, 0,
		    PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH,
		    NULL, NULL, (PCRE2_SPTR)rep.u.s, rep.n, out, &len);
		if (rc >= 0) {
			r = v_str((const char *)out, len);
			break;
		}
		if (rc != PCRE2_ERROR_NOMEMORY)
			break;
		outlen = len;
	}
	pcre2_code_free(code);
	return r;
}

/* ---- collections -------------------------------------------------------- */

static value
f_get(sql_ectx *e, node *c, value *a, int n)
{
	(void)c; (void)n;
	value col = a[0], k = a[1];
	if (col.t == VT_OBJ)
		return k.t == VT_STR ? value_get(col, k.u.s, k.n) : v_undef();
	if (col.t != VT_ARR && col.t != VT_STR)
		return v_undef();
	value x = num_arg(k);
	int64_t i;
	if (x.t == VT_INT)
		i = x.u.i;
	else if (x.t != VT_DEC || !value_d2i(round(x.u.d), &i))
		return v_undef();
	if (i < 0 || i >= col.n)
		return v_undef();
	if (col.t == VT_ARR)
		return col.u.a[i];
	return v_str(arena_strndup(AR, col.u.s + i, 1), 1);
}

static value
f_transform(sql_ectx *e, node *c, value *a, int n)
{
	(void)c; (void)n;
	value mode = a[0], obj = a[1], arr = a[2];
	if (mode.t != VT_STR || mode.n != 11 || memcmp(mode.u.s, "enrichArray", 11) != 0)
		return v_undef();
	if (obj.t != VT_OBJ || arr.t != VT_ARR)
		return v_undef();
	value r = {0};
	r.t = VT_ARR;
	r.u.a = arena_alloc(AR, sizeof(value) * (arr.n ? arr.n : 1));
	for (uint32_t i = 0; i < arr.n; i++) {
		value el = arr.u.a[i];
		if (el.t != VT_OBJ)
			continue;
		value o = {0};
		o.t = VT_OBJ;
		o.u.o = arena_alloc(AR, sizeof(vmember) * (el.n + obj.n + 1));
		for (uint32_t k = 0; k < el.n; k++)
			if (value_get(obj, el.u.o[k].k, el.u.o[k].klen).t == VT_UNDEF)
				o.u.o[o.n++] = el.u.o[k];
		for (uint32_t k = 0; k < obj.n; k++)
			o.u.o[o.n++] = obj.u.o[k];
		r.u.a[r.n++] = o;
	}
	return r;
}

static value
f_isnull(sql_ectx *e, node *c, value *a, int n)
{
	(void)e; (void)c; (void)n;
	return v_bool(a[0].t == VT_NULL);
}

static value
f_isundefined(sql_ectx *e, node *c, value *a, int n)
{
	(void)e; (void)c; (void)n;
	return v_bool(a[0].t == VT_UNDEF);
}

static value
f_nanvl(sql_ectx *e, node *c, value *a, int n)
{
	(void)e; (void)c; (void)n;
	if (a[0].t == VT_UNDEF || a[0].t == VT_NULL || (a[0].t == VT_DEC && isnan(a[0].u.d)))
		return a[1];
	return a[0];
}

static value
f_get_or_default(sql_ectx *e, node *c, value *a, int n)
{
	(void)e; (void)c; (void)n;
	return a[0].t == VT_UNDEF ? a[1] : a[0];
}

/* The message's MQTT 5 properties, parsed from their JSON on first use
 * in this run (Undefined when there are none). */
static value
mqtt_props(sql_ectx *e)
{
	const sql_msg *m = e->c->msg;
	value v;
	if (m->mqtt_props == NULL || m->mqtt_props_len == 0 ||
	    value_parse_json(AR, m->mqtt_props, m->mqtt_props_len, SQL_2016, &v) < 0 || v.t != VT_OBJ)
		return v_undef();
	return v;
}

static value
f_get_mqtt_property(sql_ectx *e, node *c, value *a, int n)
{
	(void)c; (void)n;
	value name = str_arg(e, a[0]);
	if (name.t != VT_STR)
		return v_undef();
	value props = mqtt_props(e);
	static const char *names[] = {"content_type", "format_indicator", "response_topic", "correlation_data"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (name.n != strlen(names[i]) || strncasecmp(name.u.s, names[i], name.n) != 0)
			continue;
		value p = value_get(props, names[i], strlen(names[i]));
		if (i == 1) {   /* the byte, as AWS names it */
			if (p.t != VT_INT)
				return v_undef();
			return p.u.i ? v_str("UTF8_DATA", 9) : v_str("UNSPECIFIED_BYTES", 17);
		}
		return p.t == VT_STR ? p : v_undef();
	}
	return v_undef();
}

/* get_user_properties(): [{"k":"v"}, ...]; get_user_properties(key): the
 * values of key, in publish order (SQL.md §10). */
static value
f_get_user_properties(sql_ectx *e, node *c, value *a, int n)
{
	(void)c;
	value key = v_undef();
	if (n > 0 && (key = str_arg(e, a[0])).t != VT_STR)
		return v_undef();
	value up = value_get(mqtt_props(e), "user_properties", 15);
	if (up.t != VT_ARR || up.n == 0)
		return v_undef();
	value out = {0};
	out.t = VT_ARR;
	out.u.a = arena_alloc(AR, sizeof(value) * up.n);
	for (uint32_t i = 0; i < up.n; i++) {
		value pair = up.u.a[i];
		if (pair.t != VT_ARR || pair.n != 2 || pair.u.a[0].t != VT_STR || pair.u.a[1].t != VT_STR)
			continue;
		value k = pair.u.a[0], v = pair.u.a[1];
		if (n > 0) {
			if (k.n == key.n && memcmp(k.u.s, key.u.s, k.n) == 0)
				out.u.a[out.n++] = v;
			continue;
		}
		value o = {0};
		o.t = VT_OBJ;
		o.n = 1;
		o.u.o = arena_alloc(AR, sizeof(vmember));
		o.u.o[0].k = k.u.s;
		o.u.o[0].klen = k.n;
		o.u.o[0].v = v;
		out.u.a[out.n++] = o;
	}
	return out.n ? out : v_undef();
}

/* ---- time ---------------------------------------------------------------- */

static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *months[] = {"January", "February", "March", "April", "May",
    "June", "July", "August", "September", "October", "November", "December"};
static const char *days[] = {"Sunday", "Monday", "Tuesday", "Wednesday",
    "Thursday", "Friday", "Saturday"};

/* Breaks epoch ms into local time of zone (IANA id).  The C library only
 * converts through $TZ, so zone switches are serialised. */
static int
zone_time(int64_t ms, const char *zone, struct tm *tm, long *off, char *abbr, size_t abbrcap)
{
	/* Floor division, without the overflow of (ms - 999) near INT64_MIN. */
	time_t t = (time_t)(ms / 1000 - (ms % 1000 < 0 ? 1 : 0));
	if (zone == NULL || strcmp(zone, "UTC") == 0 || strcmp(zone, "Z") == 0) {
		if (gmtime_r(&t, tm) == NULL)
			return -1;   /* a year beyond struct tm */
		*off = 0;
		snprintf(abbr, abbrcap, "UTC");
		return 0;
	}
	char path[300];
	snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", zone);
	if (strstr(zone, "..") || access(path, R_OK) != 0)
		return -1;
	pthread_mutex_lock(&tz_lock);
	char *old = getenv("TZ");
	char saved[300] = "";
	if (old)
		snprintf(saved, sizeof(saved), "%s", old);
	setenv("TZ", zone, 1);
	tzset();
	int ok = localtime_r(&t, tm) != NULL;
	*off = ok ? tm->tm_gmtoff : 0;
	snprintf(abbr, abbrcap, "%s", ok && tm->tm_zone ? tm->tm_zone : zone);
	if (old)
		setenv("TZ", saved, 1);
	else
		unsetenv("TZ");
	tzset();
	pthread_mutex_unlock(&tz_lock);
	return ok ? 0 : -1;
}

static value
f_parse_time(sql_ectx *e, node *c, value *a, int n)
{
	(void)c;
	value pat = str_arg(e, a[0]);
	value ms = num_arg(a[1]);
	if (pat.t != VT_STR || !value_is_num(ms))
		return v_undef();
	const char *zone = "UTC";
	if (n > 2) {
		value z = str_arg(e, a[2]);
		if (z.t != VT_STR)
			return v_undef();
		zone = cstr(e, z);
	}
	int64_t t = ms.t == VT_INT ? ms.u.i : 0;
	if (ms.t != VT_INT && !value_d2i(floor(ms.u.d), &t))
		return v_undef();
	struct tm tm;
	long off;
	char abbr[64];
	if (zone_time(t, zone, &tm, &off, abbr, sizeof(abbr)) < 0)
		return v_undef();
	int millis = (int)(((t % 1000) + 1000) % 1000);
	buf b = BUF_ZERO;
	const char *p = pat.u.s, *end = pat.u.s + pat.n;
	while (p < end) {
		char ch = *p;
		if (ch == '\'') {
			p++;
			if (p < end && *p == '\'') {
				buf_addc(&b, '\'');
				p++;
				continue;
			}
			while (p < end && *p != '\'')
				buf_addc(&b, *p++);
			if (p < end)
				p++;
			continue;
		}
		if (!isalpha((unsigned char)ch)) {
			buf_addc(&b, ch);
			p++;
			continue;
		}
		int k = 0;
		while (p + k < end && p[k] == ch)
			k++;
		p += k;
		switch (ch) {
		case 'y': case 'Y': case 'u':
			if (k == 2)
				buf_printf(&b, "%02d", (tm.tm_year + 1900) % 100);
			else
				buf_printf(&b, "%0*d", k, tm.tm_year + 1900);
			break;
		case 'M':
			if (k >= 4) buf_adds(&b, months[tm.tm_mon]);
			else if (k == 3) buf_printf(&b, "%.3s", months[tm.tm_mon]);
			else buf_printf(&b, "%0*d", k, tm.tm_mon + 1);
			break;
		case 'd': buf_printf(&b, "%0*d", k, tm.tm_mday); break;
		case 'D': buf_printf(&b, "%0*d", k, tm.tm_yday + 1); break;
		case 'H': buf_printf(&b, "%0*d", k, tm.tm_hour); break;
		case 'k': buf_printf(&b, "%0*d", k, tm.tm_hour ? tm.tm_hour : 24); break;
		case 'h': buf_printf(&b, "%0*d", k, tm.tm_hour % 12 ? tm.tm_hour % 12 : 12); break;
		case 'K': buf_printf(&b, "%0*d", k, tm.tm_hour % 12); break;
		case 'm': buf_printf(&b, "%0*d", k, tm.tm_min); break;
		case 's': buf_printf(&b, "%0*d", k, tm.tm_sec); break;
		case 'S': {
			char ms3[8];
			snprintf(ms3, sizeof(ms3), "%03d", millis);
			for (int i = 0; i < k; i++)
				buf_addc(&b, i < 3 ? ms3[i] : '0');
			break;
		}
		case 'a': buf_adds(&b, tm.tm_hour < 12 ? "AM" : "PM"); break;
		case 'E':
			if (k >= 4) buf_adds(&b, days[tm.tm_wday]);
			else buf_printf(&b, "%.3s", days[tm.tm_wday]);
			break;
		case 'G': buf_adds(&b, tm.tm_year + 1900 > 0 ? "AD" : "BC"); break;
		case 'z':
			if (k >= 4) buf_adds(&b, zone);
			else buf_adds(&b, abbr);
			break;
		case 'Z': {
			long o = off < 0 ? -off : off;
			if (k == 1)
				buf_printf(&b, "%c%02ld%02ld", off < 0 ? '-' : '+', o / 3600, o / 60 % 60);
			else
				buf_printf(&b, "%c%02ld:%02ld", off < 0 ? '-' : '+', o / 3600, o / 60 % 60);
			break;
		}
		default:
			buf_free(&b);
			return v_undef();
		}
	}
	value r = v_str(arena_strndup(AR, b.data ? b.data : "", b.len), b.len);
	buf_free(&b);
	return r;
}

static int
read_int(const char **p, const char *end, int maxd, int *out)
{
	int v = 0, d = 0;
	while (*p < end && d < maxd && isdigit((unsigned char)**p)) {
		v = v * 10 + (**p - '0');
		(*p)++;
		d++;
	}
	*out = v;
	return d > 0;
}

static value
f_time_to_epoch(sql_ectx *e, node *c, value *a, int n)
{
	(void)c; (void)n;
	value txt = str_arg(e, a[0]), pat = str_arg(e, a[1]);
	if (txt.t != VT_STR || pat.t != VT_STR)
		return v_undef();
	int year = 1970, mon = 1, day = 1, hour = 0, min = 0, sec = 0, ms = 0, pm = -1;
	const char *zone = NULL;
	long offset = 0;
	int have_offset = 0;
	const char *s = txt.u.s, *se = txt.u.s + txt.n;
	const char *p = pat.u.s, *pe = pat.u.s + pat.n;
	while (p < pe) {
		char ch = *p;
		if (ch == '\'') {
			p++;
			while (p < pe && *p != '\'') {
				if (s >= se || *s != *p)
					return v_undef();
				s++;
				p++;
			}
			if (p < pe)
				p++;
			continue;
		}
		if (!isalpha((unsigned char)ch)) {
			if (s >= se || *s != ch)
				return v_undef();
			s++;
			p++;
			continue;
		}
		int k = 0;
		while (p + k < pe && p[k] == ch)
			k++;
		p += k;
		int ok = 1;
		switch (ch) {
		case 'y': case 'u': ok = read_int(&s, se, k == 2 ? 2 : 9, &year); if (k == 2) year += 2000; break;
		case 'M':
			if (k >= 3) {
				ok = 0;
				for (int m = 0; m < 12; m++) {
					size_t ml = k == 3 ? 3 : strlen(months[m]);
					if ((size_t)(se - s) >= ml && strncasecmp(s, months[m], ml) == 0) {
						mon = m + 1;
						s += ml;
						ok = 1;
						break;
					}
				}
			} else {
				ok = read_int(&s, se, 2, &mon);
			}
			break;
		case 'd': ok = read_int(&s, se, 2, &day); break;
		case 'H': ok = read_int(&s, se, 2, &hour); break;
		case 'h': ok = read_int(&s, se, 2, &hour); break;
		case 'm': ok = read_int(&s, se, 2, &min); break;
		case 's': ok = read_int(&s, se, 2, &sec); break;
		case 'S': {
			int v, digits = 0;
			const char *st = s;
			ok = read_int(&s, se, k, &v);
			digits = (int)(s - st);
			while (digits < 3) { v *= 10; digits++; }
			while (digits > 3) { v /= 10; digits--; }
			ms = v;
			break;
		}
		case 'a':
			if (se - s >= 2 && strncasecmp(s, "PM", 2) == 0) pm = 1;
			else if (se - s >= 2 && strncasecmp(s, "AM", 2) == 0) pm = 0;
			else ok = 0;
			s += 2;
			break;
		case 'E':
			while (s < se && isalpha((unsigned char)*s))
				s++;
			break;
		case 'z': case 'V': {
			const char *st = s;
			while (s < se && (isalnum((unsigned char)*s) || strchr("/_+-", *s)))
				s++;
			zone = arena_strndup(AR, st, (size_t)(s - st));
			break;
		}
		case 'Z': case 'X': case 'x': {
			if (s < se && *s == 'Z') {
				s++;
				have_offset = 1;
				break;
			}
			int sign = s < se && *s == '-' ? -1 : 1;
			if (s >= se || (*s != '+' && *s != '-')) { ok = 0; break; }
			s++;
			int hh, mm = 0;
			ok = read_int(&s, se, 2, &hh);
			if (s < se && *s == ':')
				s++;
			read_int(&s, se, 2, &mm);
			offset = sign * (hh * 3600L + mm * 60L);
			have_offset = 1;
			break;
		}
		default:
			ok = 0;
		}
		if (!ok)
			return v_undef();
	}
	if (s != se)
		return v_undef();
	if (pm == 1 && hour < 12)
		hour += 12;
	if (pm == 0 && hour == 12)
		hour = 0;
	struct tm tm = {0};
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	int64_t t = (int64_t)timegm(&tm);
	/* Nine-digit years are accepted by the pattern; beyond ~285 million
	 * years the millisecond arithmetic below would overflow. */
	if (t > 9000000000000000LL || t < -9000000000000000LL)
		return v_undef();
	if (!have_offset && zone && strcmp(zone, "UTC") != 0) {
		/* Find the zone's offset at that local time (two passes settle
		 * DST boundaries well enough). */
		struct tm lt;
		long off;
		char abbr[64];
		if (zone_time(t * 1000, zone, &lt, &off, abbr, sizeof(abbr)) < 0)
			return v_undef();
		if (zone_time((t - off) * 1000, zone, &lt, &off, abbr, sizeof(abbr)) < 0)
			return v_undef();
		offset = off;
	}
	return v_int((t - offset) * 1000 + ms);
}

/* ---- the table ---------------------------------------------------------- */

static const fn_def fns[] = {
    {"abs", 1, 1, 0, 0, f_abs},
    {"accountid", 0, 0, 0, 0, f_accountid},
    {"acos", 1, 1, 0, 0, f_acos},
    {"asin", 1, 1, 0, 0, f_asin},
    {"atan", 1, 1, 0, 0, f_atan},
    {"atan2", 2, 2, 0, 0, f_atan2},
    {"aws_lambda", 2, 2, 0, 1, f_aws_lambda},
    {"bitand", 2, 2, 0, 0, f_bitand},
    {"bitnot", 1, 1, 0, 0, f_bitnot},
    {"bitor", 2, 2, 0, 0, f_bitor},
    {"bitxor", 2, 2, 0, 0, f_bitxor},
    {"ceil", 1, 1, 0, 0, f_ceil},
    {"chr", 1, 1, 0, 0, f_chr},
    {"clientid", 0, 0, 0, 0, f_clientid},
    {"concat", 0, -1, 0, 0, f_concat},
    {"cos", 1, 1, 0, 0, f_cos},
    {"cosh", 1, 1, 0, 0, f_cosh},
    {"decode", 2, -1, 1, 0, f_decode},
    {"encode", 2, 2, 1, 0, f_encode},
    {"endswith", 2, 2, 0, 0, f_endswith},
    {"exp", 1, 1, 0, 0, f_exp},
    {"floor", 1, 1, 0, 0, f_floor},
    {"get", 2, 2, 0, 0, f_get},
    {"get_dynamodb", 4, 6, 1, 1, f_get_dynamodb},
    {"get_mqtt_property", 1, 1, 1, 0, f_get_mqtt_property},
    {"get_or_default", 2, 2, 1, 0, f_get_or_default},
    {"get_registry_data", 3, 3, 1, 1, f_get_registry_data},
    {"get_secret", 3, 4, 0, 1, f_get_secret},
    {"get_thing_shadow", 2, 3, 1, 1, f_get_thing_shadow},
    {"get_user_properties", 0, 1, 1, 0, f_get_user_properties},
    {"indexof", 2, 2, 1, 0, f_indexof},
    {"isnull", 1, 1, 0, 0, f_isnull},
    {"isundefined", 1, 1, 1, 0, f_isundefined},
    {"length", 1, 1, 1, 0, f_length},
    {"ln", 1, 1, 0, 0, f_ln},
    {"log", 1, 1, 0, 0, f_log},
    {"lower", 1, 1, 0, 0, f_lower},
    {"lpad", 2, 2, 0, 0, f_lpad},
    {"ltrim", 1, 1, 0, 0, f_ltrim},
    {"machinelearning_predict", 3, 3, 0, 1, NULL},
    {"md2", 1, 1, 0, 0, f_md2},
    {"md5", 1, 1, 0, 0, f_md5},
    {"mod", 2, 2, 0, 0, f_mod},
    {"nanvl", 2, 2, 0, 0, f_nanvl},
    {"newuuid", 0, 0, 0, 0, f_newuuid},
    {"numbytes", 1, 1, 1, 0, f_numbytes},
    {"parse_time", 2, 3, 1, 0, f_parse_time},
    {"power", 2, 2, 0, 0, f_power},
    {"principal", 0, 0, 0, 0, f_principal},
    {"rand", 0, 0, 0, 0, f_rand},
    {"regexp_matches", 2, 2, 0, 0, f_regexp_matches},
    {"regexp_replace", 3, 3, 0, 0, f_regexp_replace},
    {"regexp_substr", 2, 2, 0, 0, f_regexp_substr},
    {"remainder", 2, 2, 0, 0, f_mod},
    {"replace", 3, 3, 0, 0, f_replace},
    {"round", 1, 1, 0, 0, f_round},
    {"rpad", 2, 2, 0, 0, f_rpad},
    {"rtrim", 1, 1, 0, 0, f_rtrim},
    {"sha1", 1, 1, 0, 0, f_sha1},
    {"sha224", 1, 1, 0, 0, f_sha224},
    {"sha256", 1, 1, 0, 0, f_sha256},
    {"sha384", 1, 1, 0, 0, f_sha384},
    {"sha512", 1, 1, 0, 0, f_sha512},
    {"sign", 1, 1, 0, 0, f_sign},
    {"sin", 1, 1, 0, 0, f_sin},
    {"sinh", 1, 1, 0, 0, f_sinh},
    {"sourceip", 0, 0, 1, 0, f_sourceip},
    {"sql_version", 0, 0, 0, 0, f_sql_version},
    {"sqrt", 1, 1, 0, 0, f_sqrt},
    {"startswith", 2, 2, 0, 0, f_startswith},
    {"substring", 2, 3, 0, 0, f_substring},
    {"tan", 1, 1, 0, 0, f_tan},
    {"tanh", 1, 1, 0, 0, f_tanh},
    {"time_to_epoch", 2, 2, 1, 0, f_time_to_epoch},
    {"timestamp", 0, 0, 0, 0, f_timestamp},
    {"topic", 0, 1, 0, 0, f_topic},
    {"traceid", 0, 0, 0, 0, f_traceid},
    {"transform", 3, 3, 1, 0, f_transform},
    {"trim", 1, 1, 0, 0, f_trim},
    {"trunc", 2, 2, 0, 0, f_trunc},
    {"upper", 1, 1, 0, 0, f_upper},
};

int
sql_fn_lookup(const char *name, size_t n)
{
	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++)
		if (strlen(fns[i].name) == n && strncasecmp(fns[i].name, name, n) == 0)
			return (int)i;
	return -1;
}

const fn_def *
sql_fn_get(int idx)
{
	return &fns[idx];
}
