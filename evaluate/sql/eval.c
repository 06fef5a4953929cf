/* The AWS IoT SQL evaluator: statements and templates over typed values,
 * with the operator tables of SQL.md §7 and the result rules of §8. */
#include "evaluate/sql/ast.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- messages and contexts ------------------------------------------- */

void
sql_ctx_init(sql_ctx *c)
{
	memset(c, 0, sizeof(*c));
	c->ar.chunk_size = 64 * 1024;
}

void
sql_ctx_begin(sql_ctx *c, const sql_msg *m)
{
	arena_reset(&c->ar);
	c->msg = m;
	c->payload_parsed[0] = c->payload_parsed[1] = 0;
	c->payload_is_json = 0;
	c->payload_dups = 0;
	c->payload_v[0] = c->payload_v[1] = v_undef();
	c->vars = NULL;
}

void
sql_ctx_fini(sql_ctx *c)
{
	arena_free(&c->ar);
}

value
sql_payload(sql_ctx *c, enum sql_version ver)
{
	if (!c->payload_parsed[ver]) {
		int dups;
		c->payload_parsed[ver] = 1;
		const sql_msg *m = c->msg;
		if (m->payload_len == 0) {
			/* An empty payload counts as {} (SQL.md §5). */
			value o = {0};
			o.t = VT_OBJ;
			c->payload_v[ver] = o;
			c->payload_is_json = 1;
		} else if ((dups = value_parse_json(&c->ar, m->payload, m->payload_len, ver, &c->payload_v[ver])) >= 0) {
			c->payload_is_json = 1;
			c->payload_dups = dups;
		} else {
			c->payload_v[ver] = v_undef();
		}
	}
	return c->payload_v[ver];
}

value
sql_raw_payload(sql_ctx *c)
{
	return v_str(c->msg->payload, c->msg->payload_len);
}

int
sql_version_parse(const char *s, enum sql_version *v)
{
	if (s == NULL || strcmp(s, "2015-10-08") == 0)
		*v = SQL_2015;
	else if (strcmp(s, "2016-03-23") == 0 || strcmp(s, "beta") == 0)
		*v = SQL_2016;
	else
		return -1;
	return 0;
}

/* ---- operators -------------------------------------------------------- */

/* Int or Decimal (Strings that look like numbers converted) → double.
 * Returns 1 for Int operands that stayed Int. */
static int
num_operand(value v, int snum, value *out)
{
	if (value_is_num(v)) {
		*out = v;
		return 1;
	}
	double d;
	if (snum && value_snum(v, &d)) {
		*out = value_from_double(d, 0);   /* "1E99999": Undefined */
		return out->t == VT_DEC;
	}
	return 0;
}

static value
arith(sql_ectx *e, int op, value a, value b)
{
	enum sql_version ver = e->st->ver;
	if (op == OP_ADD && (a.t == VT_STR || b.t == VT_STR)) {
		value sa = value_to_string(&e->c->ar, a, ver);
		value sb = value_to_string(&e->c->ar, b, ver);
		if (sa.t != VT_STR || sb.t != VT_STR)
			return v_undef();
		char *s = arena_alloc(&e->c->ar, (size_t)sa.n + sb.n + 1);
		memcpy(s, sa.u.s, sa.n);
		memcpy(s + sa.n, sb.u.s, sb.n);
		return v_str(s, (size_t)sa.n + sb.n);
	}
	value x, y;
	if (!num_operand(a, op != OP_ADD, &x) || !num_operand(b, op != OP_ADD, &y))
		return v_undef();
	if (x.t == VT_INT && y.t == VT_INT) {
		int64_t i = x.u.i, j = y.u.i, r;
		switch (op) {
		case OP_ADD:
			if (__builtin_add_overflow(i, j, &r))
				break;   /* beyond int64: exact below */
			return v_int(r);
		case OP_SUB:
			if (__builtin_sub_overflow(i, j, &r))
				break;
			return v_int(r);
		case OP_MUL:
			if (__builtin_mul_overflow(i, j, &r))
				break;
			return v_int(r);
		case OP_DIV:
			if (j == 0)
				return v_undef();
			if (i == INT64_MIN && j == -1)
				break;
			return v_int(i / j);
		case OP_MOD:
			if (j == 0)
				return v_undef();
			if (j == -1)
				return v_int(0);
			return v_int(i % j);
		}
	}
	int dbl = x.dbl || y.dbl;
	dec dp, dq, dr;
	if (!dbl && value_exact(x, &dp) && value_exact(y, &dq)) {
		/* Exact 34-digit arithmetic (SQL.md §4): 0.1 + 0.2 is 0.3. */
		int rc;
		switch (op) {
		case OP_ADD: rc = dec_add(&dp, &dq, &dr); break;
		case OP_SUB: rc = dec_sub(&dp, &dq, &dr); break;
		case OP_MUL: rc = dec_mul(&dp, &dq, &dr); break;
		case OP_DIV: rc = dec_div(&dp, &dq, &dr); break;
		default:
			rc = dec_rem(&dp, &dq, &dr);
			if (rc < 0 && dq.c != 0)
				goto in_double;   /* operands too far apart */
			break;
		}
		if (rc < 0)
			return v_undef();   /* division by zero, beyond 9.99E999 */
		/* Integers stay integers (+ - * %, and Int / Int): beyond
		 * int64 they are 34-digit Ints held as Decimals. */
		int ints = (x.t == VT_INT || x.big) && (y.t == VT_INT || y.big);
		int64_t iv;
		if (ints && dec_to_int(&dr, &iv))
			return v_int(iv);
		return value_from_dec(&e->c->ar, &dr, ints && dr.e >= 0);
	}
in_double:;
	double p = value_num_d(x), q = value_num_d(y);
	switch (op) {
	case OP_ADD: return value_from_double(p + q, dbl);
	case OP_SUB: return value_from_double(p - q, dbl);
	case OP_MUL: return value_from_double(p * q, dbl);
	case OP_DIV: return q == 0 ? v_undef() : value_from_double(p / q, dbl);
	case OP_MOD: return q == 0 ? v_undef() : value_from_double(fmod(p, q), dbl);
	}
	return v_undef();
}

static value
compare(int op, value a, value b)
{
	if (op == OP_EQ || op == OP_NE) {
		int r = value_equal(a, b);
		if (r < 0)
			return v_undef();
		return v_bool(op == OP_EQ ? r : !r);
	}
	value x, y;
	if (!num_operand(a, 1, &x) || !num_operand(b, 1, &y))
		return v_undef();
	int c;
	dec dp, dq;
	if (x.t == VT_INT && y.t == VT_INT)
		c = (x.u.i > y.u.i) - (x.u.i < y.u.i);
	else if ((x.x || y.x) && value_exact(x, &dp) && value_exact(y, &dq))
		c = dec_cmp(&dp, &dq);
	else {
		double p = value_num_d(x), q = value_num_d(y);
		c = (p > q) - (p < q);
	}
	switch (op) {
	case OP_LT: return v_bool(c < 0);
	case OP_LE: return v_bool(c <= 0);
	case OP_GT: return v_bool(c > 0);
	case OP_GE: return v_bool(c >= 0);
	}
	return v_undef();
}

static value
member_of(value x, value arr)
{
	if (arr.t != VT_ARR)
		return v_undef();
	if (x.t == VT_UNDEF || x.t == VT_NULL || x.t == VT_BOOL)
		return v_undef();
	for (uint32_t i = 0; i < arr.n; i++)
		if (value_equal(arr.u.a[i], x) == 1)
			return v_bool(1);
	return v_bool(0);
}

static value
contains(value a, value b)
{
	if (a.t == VT_STR && b.t == VT_STR) {
		if (b.n == 0)
			return v_bool(1);
		return v_bool(memmem(a.u.s, a.n, b.u.s, b.n) != NULL);
	}
	if (a.t == VT_ARR)
		return member_of(b, a);
	return v_undef();
}

static value
logic(int op, value a, value b)
{
	int x, y;
	if (!value_sbool(a, &x) || !value_sbool(b, &y))
		return v_undef();
	return v_bool(op == OP_AND ? (x && y) : (x || y));
}

/* ---- object building (§8.1) ------------------------------------------ */

typedef struct objb {
	vmember *m;
	uint32_t n, cap;
} objb;

static void
objb_set(arena *a, objb *o, const char *k, size_t kl, value v)
{
	for (uint32_t i = 0; i < o->n; i++)
		if (o->m[i].klen == kl && memcmp(o->m[i].k, k, kl) == 0) {
			o->m[i].v = v;  /* later wins, first position kept */
			return;
		}
	if (o->n == o->cap) {
		uint32_t cap = o->cap ? o->cap * 2 : 8;
		vmember *m = arena_alloc(a, sizeof(vmember) * cap);
		if (o->n)
			memcpy(m, o->m, sizeof(vmember) * o->n);
		o->m = m;
		o->cap = cap;
	}
	o->m[o->n].k = k;
	o->m[o->n].klen = (uint32_t)kl;
	o->m[o->n].v = v;
	o->n++;
}

static value
objb_value(objb *o)
{
	value v = {0};
	v.t = VT_OBJ;
	v.n = o->n;
	v.u.o = o->m;
	return v;
}

/* Sets a dotted path "a.b.c", merging into objects already there. */
static void
objb_set_path(arena *a, objb *o, const char *path, value v)
{
	const char *dot = strchr(path, '.');
	if (dot == NULL) {
		objb_set(a, o, path, strlen(path), v);
		return;
	}
	size_t kl = (size_t)(dot - path);
	objb inner = {0};
	value cur = v_undef();
	for (uint32_t i = 0; i < o->n; i++)
		if (o->m[i].klen == kl && memcmp(o->m[i].k, path, kl) == 0)
			cur = o->m[i].v;
	if (cur.t == VT_OBJ) {
		for (uint32_t i = 0; i < cur.n; i++)
			objb_set(a, &inner, cur.u.o[i].k, cur.u.o[i].klen, cur.u.o[i].v);
	}
	objb_set_path(a, &inner, dot + 1, v);
	objb_set(a, o, path, kl, objb_value(&inner));
}

/* ---- evaluation ------------------------------------------------------- */

static value run_select(sql_ectx *e, const select_stmt *s, int *matched);

static value
var_lookup(sql_ectx *e, const char *name, size_t n)
{
	sql_vars *v = e->c->vars;
	if (v == NULL)
		return v_undef();
	for (int i = 0; i < v->n; i++)
		if (v->defs[i].nlen == n && memcmp(v->defs[i].name, name, n) == 0)
			return v->vals[i];
	return v_undef();
}

/* Index into an array (or a string's characters) like get(). */
static value
index_value(sql_ectx *e, value c, value k)
{
	if (c.t == VT_OBJ) {
		if (k.t != VT_STR)
			return v_undef();
		return value_get(c, k.u.s, k.n);
	}
	int64_t i;
	if (k.t == VT_INT)
		i = k.u.i;
	else if (k.t == VT_DEC) {
		if (!value_d2i(round(k.u.d), &i))  /* generic Decimal→Int: nearest */
			return v_undef();
	} else {
		double d;
		if (!value_snum(k, &d) || !value_d2i(trunc(d), &i))
			return v_undef();
	}
	if (c.t == VT_ARR) {
		if (i < 0 || i >= c.n)
			return v_undef();
		return c.u.a[i];
	}
	if (c.t == VT_STR) {
		if (i < 0 || i >= c.n)
			return v_undef();
		return v_str(arena_strndup(&e->c->ar, c.u.s + i, 1), 1);
	}
	return v_undef();
}

value
sql_eval(sql_ectx *e, node *n)
{
	value a, b;
	switch (n->kind) {
	case N_LIT:
		return n->lit;
	case N_IDENT:
		return value_get(e->scope, n->name, n->nlen);
	case N_VAR:
		return var_lookup(e, n->name, n->nlen);
	case N_MEMBER:
		a = sql_eval(e, n->a);
		return value_get(a, n->name, n->nlen);
	case N_INDEX:
		a = sql_eval(e, n->a);
		b = sql_eval(e, n->b);
		return index_value(e, a, b);
	case N_STAR:
		return sql_payload(e->c, e->st->ver);
	case N_CALL: {
		const fn_def *fd = sql_fn_get(n->fn);
		value args[16];
		int na = n->nkids > 16 ? 16 : n->nkids;
		for (int i = 0; i < na; i++)
			args[i] = n->kids[i]->kind == N_STAR ? v_undef() : sql_eval(e, n->kids[i]);
		return fd->impl(e, n, args, na);
	}
	case N_CAST: {
		extern value sql_cast(sql_ectx *e, value v, int type);
		return sql_cast(e, sql_eval(e, n->a), n->fn);
	}
	case N_UNARY:
		a = sql_eval(e, n->a);
		if (n->op == OP_NOT) {
			int x;
			return value_sbool(a, &x) ? v_bool(!x) : v_undef();
		}
		if (n->op == OP_POS)
			return arith(e, OP_ADD, v_int(0), value_to_decimal(a).t == VT_UNDEF ? v_undef() : a);
		return arith(e, OP_SUB, v_int(0), a);
	case N_BINARY:
		a = sql_eval(e, n->a);
		b = sql_eval(e, n->b);
		switch (n->op) {
		case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_MOD:
			return arith(e, n->op, a, b);
		case OP_EQ: case OP_NE: case OP_LT: case OP_LE: case OP_GT: case OP_GE:
			return compare(n->op, a, b);
		case OP_IN:
			return member_of(a, b);
		case OP_CONTAINS:
			return contains(a, b);
		case OP_AND: case OP_OR:
			return logic(n->op, a, b);
		}
		return v_undef();
	case N_CASE:
		if (n->a) {
			a = sql_eval(e, n->a);
			if (a.t == VT_UNDEF)
				return v_undef();
			for (int i = 0; i + 1 < n->nkids; i += 2)
				if (value_equal(a, sql_eval(e, n->kids[i])) == 1)
					return sql_eval(e, n->kids[i + 1]);
		} else {
			for (int i = 0; i + 1 < n->nkids; i += 2) {
				b = sql_eval(e, n->kids[i]);
				if (b.t == VT_BOOL && b.u.b)
					return sql_eval(e, n->kids[i + 1]);
			}
		}
		return n->b ? sql_eval(e, n->b) : v_undef();
	case N_ARR: {
		value v = {0};
		v.t = VT_ARR;
		v.u.a = arena_alloc(&e->c->ar, sizeof(value) * (n->nkids ? n->nkids : 1));
		for (int i = 0; i < n->nkids; i++) {
			value x = sql_eval(e, n->kids[i]);
			if (x.t != VT_UNDEF)
				v.u.a[v.n++] = x;
		}
		return v;
	}
	case N_OBJ: {
		objb o = {0};
		for (int i = 0; i < n->nkids; i++) {
			value x = sql_eval(e, n->kids[i]);
			if (x.t != VT_UNDEF)
				objb_set(&e->c->ar, &o, n->keys[i], n->klens[i], x);
		}
		return objb_value(&o);
	}
	case N_SUBQ: {
		a = sql_eval(e, n->sub->from);
		value saved = e->scope;
		value r = v_undef();
		int m;
		if (a.t == VT_ARR) {
			value out = {0};
			out.t = VT_ARR;
			out.u.a = arena_alloc(&e->c->ar, sizeof(value) * (a.n ? a.n : 1));
			for (uint32_t i = 0; i < a.n; i++) {
				e->scope = a.u.a[i];
				value x = run_select(e, n->sub, &m);
				if (m && x.t != VT_UNDEF)
					out.u.a[out.n++] = x;
			}
			r = out;
		} else if (a.t == VT_OBJ) {
			e->scope = a;
			r = run_select(e, n->sub, &m);
			if (!m)
				r = v_undef();
		}
		e->scope = saved;
		return r;
	}
	}
	return v_undef();
}

/* Runs one SELECT over e->scope: *matched says whether WHERE held.  The
 * result is an object (or the VALUE) in the ctx arena. */
static value
run_select(sql_ectx *e, const select_stmt *s, int *matched)
{
	*matched = 0;
	if (s->where) {
		value w = sql_eval(e, s->where);
		if (w.t != VT_BOOL || !w.u.b)
			return v_undef();
	}
	*matched = 1;
	if (s->value)
		return sql_eval(e, s->items[0].e);
	objb o = {0};
	for (int i = 0; i < s->nitems; i++) {
		const select_item *it = &s->items[i];
		if (it->star) {
			value p = e->scope;
			if (it->alias) {
				if (p.t == VT_UNDEF && e->scope.t == VT_UNDEF && !e->c->payload_is_json) {
					/* * AS name over a binary payload: base64 text. */
					extern value sql_base64(arena *a, const void *p, size_t n);
					p = sql_base64(&e->c->ar, e->c->msg->payload, e->c->msg->payload_len);
				}
				objb_set_path(&e->c->ar, &o, it->alias, p);
			} else if (p.t == VT_OBJ) {
				for (uint32_t k = 0; k < p.n; k++)
					objb_set(&e->c->ar, &o, p.u.o[k].k, p.u.o[k].klen, p.u.o[k].v);
			}
			continue;
		}
		value v = sql_eval(e, it->e);
		if (v.t == VT_UNDEF)
			continue;
		objb_set_path(&e->c->ar, &o, it->alias, v);
	}
	return objb_value(&o);
}

/* ---- statements ------------------------------------------------------- */

static sql_stmt *
stmt_new(enum sql_version ver)
{
	sql_stmt *st = calloc(1, sizeof(*st));
	if (st == NULL)
		return NULL;
	st->ar.chunk_size = 1024;   /* most statements fit in one or two */
	st->ver = ver;
	return st;
}

sql_stmt *
sql_compile(const char *text, enum sql_version ver, sql_error *err)
{
	token *toks;
	memset(err, 0, sizeof(*err));
	sql_stmt *st = stmt_new(ver);
	if (st == NULL) {
		snprintf(err->msg, sizeof(err->msg), "out of memory");
		return NULL;
	}
	/* Tokens and names point into the text: keep a copy the statement
	 * owns. */
	char *own = arena_strndup(&st->ar, text, strlen(text));
	int n = sql_lex(&st->ar, own, &toks, err);
	int rc = n < 0 ? -1 : sql_parse(st, toks, n, err);
	if (n >= 0)
		free(toks);
	if (rc < 0) {
		sql_free(st);
		return NULL;
	}
	if (st->from_topic && sql_topic_filter_check(st->from_topic, err) < 0) {
		err->line = st->from_line;   /* point at the FROM topic */
		err->col = st->from_col;
		sql_free(st);
		return NULL;
	}
	return st;
}

void
sql_free(sql_stmt *st)
{
	if (st == NULL)
		return;
	arena_free(&st->ar);
	free(st);
}

const char *
sql_stmt_from(const sql_stmt *st)
{
	return st->from_topic;
}

const char *
sql_stmt_warning(const sql_stmt *st)
{
	return st->warning[0] ? st->warning : NULL;
}

enum sql_version
sql_stmt_version(const sql_stmt *st)
{
	return st->ver;
}

void
sql_eval_sets(sql_ectx *e)
{
	const sql_stmt *st = e->st;
	sql_vars *v = arena_alloc(&e->c->ar, sizeof(*v));
	v->defs = st->sets;
	v->vals = arena_alloc(&e->c->ar, sizeof(value) * (st->nsets ? st->nsets : 1));
	e->c->vars = v;
	for (int i = 0; i < st->nsets; i++) {
		/* Assign in order: later assignments see earlier ones. */
		v->vals[i] = sql_eval(e, st->sets[i].e);
		v->n = i + 1;
	}
}

enum sql_result
sql_run(const sql_stmt *st, sql_ctx *c, buf *out, sql_error *err)
{
	sql_ectx e = {.c = c, .st = st, .scope = sql_payload(c, st->ver), .err = err};
	int matched;
	sql_eval_sets(&e);
	/* SELECT * alone: a payload that is not a JSON object is the result
	 * as it is (binary payloads included, §8.1, §9); a JSON object is
	 * the result re-serialised, which is its own bytes when those are
	 * provably canonical (no print needed). */
	if (!st->sel.value && st->sel.nitems == 1 && st->sel.items[0].star &&
	    !st->sel.items[0].alias) {
		if (st->sel.where) {
			value w = sql_eval(&e, st->sel.where);
			if (w.t != VT_BOOL || !w.u.b)
				return e.failed ? SQL_FAIL : SQL_NOMATCH;
		}
		if (e.failed)
			return SQL_FAIL;
		value pv = sql_payload(c, st->ver);
		if (c->payload_is_json && pv.t == VT_OBJ &&
		    (c->msg->payload_len == 0 || c->payload_dups ||
			!value_json_is_canonical(c->msg->payload, c->msg->payload_len)))
			value_write_json(out, pv, st->ver);
		else
			buf_add(out, c->msg->payload, c->msg->payload_len);
		return SQL_MATCH;
	}
	value r = run_select(&e, &st->sel, &matched);
	if (e.failed)
		return SQL_FAIL;
	if (!matched)
		return SQL_NOMATCH;
	value_write_json(out, r, st->ver);
	return SQL_MATCH;
}


/* ---- templates (§11) -------------------------------------------------- */

typedef struct tpl_part {
	const char *text;   /* literal, or NULL */
	size_t n;
	node *expr;
} tpl_part;

struct sql_template {
	sql_stmt *holder;   /* owns the arena of the parts */
	int nparts;
	tpl_part *parts;
};

sql_template *
sql_template_compile(const char *text, enum sql_version ver, sql_error *err)
{
	memset(err, 0, sizeof(*err));
	sql_template *t = calloc(1, sizeof(*t));
	if (t == NULL || (t->holder = stmt_new(ver)) == NULL) {
		free(t);
		snprintf(err->msg, sizeof(err->msg), "out of memory");
		return NULL;
	}
	arena *a = &t->holder->ar;
	size_t cap = 8;
	t->parts = arena_alloc(a, sizeof(tpl_part) * cap);
	const char *p = text, *lit = text;
	while (*p) {
		if (!(p[0] == '$' && p[1] == '{')) {
			p++;
			continue;
		}
		/* Find the closing brace outside quoted strings. */
		const char *q = p + 2;
		char quote = 0;
		int depth = 0;
		for (; *q; q++) {
			if (quote) {
				if (*q == '\\' && q[1])
					q++;
				else if (*q == quote)
					quote = 0;
			} else if (*q == '\'' || *q == '"') {
				quote = *q;
			} else if (*q == '{') {
				depth++;
			} else if (*q == '}') {
				if (depth-- == 0)
					break;
			}
		}
		if (*q != '}') {
			err->line = 1;
			err->col = (int)(p - text) + 1;
			snprintf(err->msg, sizeof(err->msg), "'${' without a closing '}'");
			sql_template_free(t);
			return NULL;
		}
		if ((size_t)t->nparts + 2 > cap) {
			tpl_part *np = arena_alloc(a, sizeof(tpl_part) * cap * 2);
			memcpy(np, t->parts, sizeof(tpl_part) * t->nparts);
			t->parts = np;
			cap *= 2;
		}
		if (p > lit) {
			t->parts[t->nparts].text = lit;
			t->parts[t->nparts++].n = (size_t)(p - lit);
		}
		char *src = arena_strndup(a, p + 2, (size_t)(q - p - 2));
		token *toks;
		int nt = sql_lex(a, src, &toks, err);
		node *e = nt < 0 ? NULL : sql_parse_expr(t->holder, toks, nt, err);
		if (nt >= 0)
			free(toks);
		if (e == NULL) {
			err->col += (int)(p - text) + 2;
			sql_template_free(t);
			return NULL;
		}
		t->parts[t->nparts++].expr = e;
		p = lit = q + 1;
	}
	if (p > lit) {
		if ((size_t)t->nparts + 1 > cap) {
			tpl_part *np = arena_alloc(a, sizeof(tpl_part) * cap * 2);
			memcpy(np, t->parts, sizeof(tpl_part) * t->nparts);
			t->parts = np;
		}
		t->parts[t->nparts].text = lit;
		t->parts[t->nparts++].n = (size_t)(p - lit);
	}
	/* Literal parts point into text, which the caller may free: copy. */
	for (int i = 0; i < t->nparts; i++)
		if (t->parts[i].text)
			t->parts[i].text = arena_strndup(a, t->parts[i].text, t->parts[i].n);
	return t;
}

void
sql_template_free(sql_template *t)
{
	if (t == NULL)
		return;
	sql_free(t->holder);
	free(t);
}

int
sql_template_is_const(const sql_template *t)
{
	for (int i = 0; i < t->nparts; i++)
		if (t->parts[i].expr)
			return 0;
	return 1;
}

void
sql_template_render(const sql_template *t, const sql_stmt *stmt, sql_ctx *c, buf *out)
{
	sql_error err;
	const sql_stmt *sv = stmt ? stmt : t->holder;
	sql_ectx e = {.c = c, .st = sv, .scope = sql_payload(c, sv->ver), .err = &err};
	sql_vars *saved = c->vars;
	if (stmt == NULL || c->vars == NULL || c->vars->defs != stmt->sets)
		c->vars = NULL;
	e.st = t->holder;
	for (int i = 0; i < t->nparts; i++) {
		if (t->parts[i].text)
			buf_add(out, t->parts[i].text, t->parts[i].n);
		else
			value_write_text(out, sql_eval(&e, t->parts[i].expr), t->holder->ver);
	}
	c->vars = saved;
}

/* ---- topic filters (§3.1) -------------------------------------------- */

int
sql_topic_filter_check(const char *f, sql_error *err)
{
	size_t len = strlen(f);
	int slashes = 0;
	const char *why = NULL;
	if (len == 0)
		why = "the FROM topic filter is empty";
	else if (len > 256)
		why = "the FROM topic filter is longer than 256 bytes";
	for (size_t i = 0; !why && i < len; i++) {
		int start = i == 0 || f[i - 1] == '/';
		int end = i + 1 == len || f[i + 1] == '/';
		if (f[i] == '/')
			slashes++;
		else if (f[i] == '+' && !(start && end))
			why = "'+' must be a whole topic level";
		else if (f[i] == '#' && !(start && i + 1 == len))
			why = "'#' must be the last topic level, alone";
	}
	if (!why && slashes > 7)
		why = "the FROM topic filter has more than 7 '/' (8 levels)";
	if (why) {
		err->line = 1;
		err->col = 1;
		snprintf(err->msg, sizeof(err->msg), "invalid topic filter '%.100s': %s", f, why);
		return -1;
	}
	return 0;
}
