/* The AWS IoT SQL parser: tokens → syntax tree (ast.h), recursive descent
 * with the precedence table of SQL.md §1.3. */
#include "evaluate/sql/ast.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef struct parser {
	sql_stmt *st;
	token *t;
	int n, i;
	sql_error *err;
	int failed;
	int depth;
} parser;

static const char *reserved[] = {"SELECT", "FROM", "WHERE", "AS", "AND", "OR",
    "NOT", "IN", "CONTAINS", "CASE", "WHEN", "THEN", "ELSE", "END", "SET",
    NULL};

static token *
peek(parser *p)
{
	return &p->t[p->i];
}

static int
is_kw(const token *t, const char *kw)
{
	return t->kind == T_IDENT && strlen(kw) == t->n && strncasecmp(t->s, kw, t->n) == 0;
}

static int
is_reserved(const token *t)
{
	for (int k = 0; reserved[k]; k++)
		if (is_kw(t, reserved[k]))
			return 1;
	return 0;
}

static int
is_punct(const token *t, const char *s)
{
	return t->kind == T_PUNCT && strcmp(t->p, s) == 0;
}

static void
describe(const token *t, char *out, size_t cap)
{
	if (t->kind == T_EOF)
		snprintf(out, cap, "end of statement");
	else if (t->kind == T_STRING)
		snprintf(out, cap, "string '%.*s'", (int)(t->n > 40 ? 40 : t->n), t->s);
	else
		snprintf(out, cap, "'%.*s'", (int)(t->n > 40 ? 40 : t->n), t->s);
}

static void *
fail(parser *p, const token *t, const char *fmt, const char *what)
{
	if (p->failed)
		return NULL;
	char found[80], m[160];
	describe(t, found, sizeof(found));
	snprintf(m, sizeof(m), fmt, what);
	p->err->line = t->line;
	p->err->col = t->col;
	snprintf(p->err->msg, sizeof(p->err->msg), "%.150s, found %.80s", m, found);
	p->failed = 1;
	return NULL;
}

static int
accept_punct(parser *p, const char *s)
{
	if (is_punct(peek(p), s)) {
		p->i++;
		return 1;
	}
	return 0;
}

static int
accept_kw(parser *p, const char *kw)
{
	if (is_kw(peek(p), kw)) {
		p->i++;
		return 1;
	}
	return 0;
}

static int
expect_punct(parser *p, const char *s)
{
	if (accept_punct(p, s))
		return 1;
	char m[32];
	snprintf(m, sizeof(m), "'%s'", s);
	fail(p, peek(p), "expected %s", m);
	return 0;
}

static node *
mk(parser *p, int kind, const token *at)
{
	node *n = arena_alloc(&p->st->ar, sizeof(node));
	n->kind = (unsigned char)kind;
	n->line = at->line;
	n->col = at->col;
	return n;
}

/* A decimal literal (or an integer beyond int64) with its exact value
 * from the token's text; negated for a folded "-". */
static value
dec_literal(parser *p, const token *t, int negate)
{
	dec x;
	if (dec_from_text(t->s, t->n, &x) < 0)   /* beyond 9.99E999 */
		return v_undef();
	if (negate && x.c)
		x.neg = !x.neg;
	int big = memchr(t->s, '.', t->n) == NULL && memchr(t->s, 'e', t->n) == NULL &&
	    memchr(t->s, 'E', t->n) == NULL && t->n <= 34;
	return value_from_dec(&p->st->ar, &x, big);
}

static node *parse_expr(parser *p);
static int parse_select(parser *p, select_stmt *s, int nested);

static int
need_2016(parser *p, const token *at, const char *what)
{
	if (p->st->ver == SQL_2016)
		return 1;
	fail(p, at, "%s needs SQL version 2016-03-23", what);
	return 0;
}

/* Parses a comma-separated list up to the closing punctuation. */
static node **
parse_list(parser *p, const char *close, int *count, int allow_star)
{
	node *tmp[256];
	int n = 0;
	if (!accept_punct(p, close)) {
		do {
			if (n == 256)
				return fail(p, peek(p), "%s", "too many list elements");
			if (allow_star && is_punct(peek(p), "*")) {
				tmp[n++] = mk(p, N_STAR, peek(p));
				p->i++;
				continue;
			}
			node *e = parse_expr(p);
			if (e == NULL)
				return NULL;
			tmp[n++] = e;
		} while (accept_punct(p, ","));
		if (!expect_punct(p, close))
			return NULL;
	}
	node **kids = arena_alloc(&p->st->ar, sizeof(node *) * (n ? n : 1));
	memcpy(kids, tmp, sizeof(node *) * n);
	*count = n;
	return kids;
}

static node *
parse_case(parser *p, token *at)
{
	node *n = mk(p, N_CASE, at);
	node *tmp[128];
	int k = 0;
	if (!is_kw(peek(p), "WHEN")) {
		n->a = parse_expr(p);   /* simple form: CASE v WHEN ... */
		if (n->a == NULL)
			return NULL;
	}
	while (accept_kw(p, "WHEN")) {
		if (k + 2 > 128)
			return fail(p, peek(p), "%s", "too many WHEN branches");
		if ((tmp[k++] = parse_expr(p)) == NULL)
			return NULL;
		if (!accept_kw(p, "THEN"))
			return fail(p, peek(p), "expected %s", "THEN");
		if ((tmp[k++] = parse_expr(p)) == NULL)
			return NULL;
	}
	if (k == 0)
		return fail(p, peek(p), "expected %s", "WHEN");
	if (accept_kw(p, "ELSE") && (n->b = parse_expr(p)) == NULL)
		return NULL;
	if (!accept_kw(p, "END"))
		return fail(p, peek(p), "expected %s", "WHEN, ELSE or END");
	n->kids = arena_alloc(&p->st->ar, sizeof(node *) * k);
	memcpy(n->kids, tmp, sizeof(node *) * k);
	n->nkids = k;
	return n;
}

static node *
parse_cast(parser *p, token *at)
{
	static const struct { const char *kw; int type; int v2016; } types[] = {
	    {"String", CAST_STRING, 0}, {"Nvarchar", CAST_STRING, 0},
	    {"Text", CAST_STRING, 0}, {"Ntext", CAST_STRING, 0},
	    {"varchar", CAST_STRING, 0}, {"Int", CAST_INT, 0},
	    {"Integer", CAST_INT, 0}, {"Double", CAST_DOUBLE, 0},
	    {"Decimal", CAST_DECIMAL, 1}, {"Bool", CAST_BOOL, 1},
	    {"Boolean", CAST_BOOL, 1}, {NULL, 0, 0}};
	node *n = mk(p, N_CAST, at);
	if ((n->a = parse_expr(p)) == NULL)
		return NULL;
	if (!accept_kw(p, "AS"))
		return fail(p, peek(p), "expected %s", "AS in cast(value AS type)");
	token *ty = peek(p);
	for (int k = 0; types[k].kw; k++) {
		if (!is_kw(ty, types[k].kw))
			continue;
		if (types[k].v2016 && !need_2016(p, ty, "this cast type"))
			return NULL;
		p->i++;
		n->fn = types[k].type;
		if (!expect_punct(p, ")"))
			return NULL;
		return n;
	}
	return fail(p, ty, "expected %s", "a cast type (String, Int, Double, Decimal, Boolean, ...)");
}

static node *
parse_primary(parser *p)
{
	token *t = peek(p);
	node *n;

	if (++p->depth > 200)
		return fail(p, t, "%s", "expression nested too deeply");
	switch (t->kind) {
	case T_INT:
		p->i++;
		n = mk(p, N_LIT, t);
		n->lit = v_int(t->i);
		return n;
	case T_DEC:
		p->i++;
		n = mk(p, N_LIT, t);
		n->lit = dec_literal(p, t, 0);
		return n;
	case T_STRING:
		p->i++;
		n = mk(p, N_LIT, t);
		n->lit = v_str(t->s, t->n);
		return n;
	case T_VAR:
		p->i++;
		n = mk(p, N_VAR, t);
		n->name = t->s;
		n->nlen = t->n;
		return n;
	case T_IDENT:
		if (is_kw(t, "TRUE") || is_kw(t, "FALSE")) {
			p->i++;
			n = mk(p, N_LIT, t);
			n->lit = v_bool(is_kw(t, "TRUE"));
			return n;
		}
		if (is_kw(t, "NULL")) {
			p->i++;
			n = mk(p, N_LIT, t);
			n->lit = v_null();
			return n;
		}
		if (is_kw(t, "CASE")) {
			p->i++;
			return parse_case(p, t);
		}
		if (is_reserved(t))
			return fail(p, t, "expected %s", "an expression");
		p->i++;
		if (is_punct(peek(p), "(")) {
			p->i++;
			if (t->n == 4 && strncasecmp(t->s, "cast", 4) == 0)
				return parse_cast(p, t);
			int fi = sql_fn_lookup(t->s, t->n);
			if (fi < 0) {
				char m[96];
				snprintf(m, sizeof(m), "unknown function '%.*s'", (int)(t->n > 40 ? 40 : t->n), t->s);
				p->i--;
				return fail(p, t, "%s", m);
			}
			const fn_def *fd = sql_fn_get(fi);
			if (fd->impl == NULL) {
				p->i--;
				return fail(p, t, "%s", "machinelearning_predict() is not supported: AWS retired Amazon Machine Learning");
			}
			if (fd->v2016 && p->st->ver != SQL_2016) {
				char m[96];
				snprintf(m, sizeof(m), "function %s() needs SQL version 2016-03-23", fd->name);
				p->i--;
				p->err->line = t->line;
				p->err->col = t->col;
				snprintf(p->err->msg, sizeof(p->err->msg), "%s", m);
				p->failed = 1;
				return NULL;
			}
			n = mk(p, N_CALL, t);
			n->fn = fi;
			n->name = fd->name;
			if ((n->kids = parse_list(p, ")", &n->nkids, 1)) == NULL)
				return NULL;
			if (n->nkids < fd->min || (fd->max >= 0 && n->nkids > fd->max)) {
				char m[96];
				snprintf(m, sizeof(m), "wrong number of arguments for %s() (%d given)", fd->name, n->nkids);
				p->err->line = t->line;
				p->err->col = t->col;
				snprintf(p->err->msg, sizeof(p->err->msg), "%s", m);
				p->failed = 1;
				return NULL;
			}
			return n;
		}
		n = mk(p, N_IDENT, t);
		n->name = t->s;
		n->nlen = t->n;
		return n;
	case T_PUNCT:
		if (is_punct(t, "(")) {
			p->i++;
			if (is_kw(peek(p), "SELECT")) {
				if (!need_2016(p, peek(p), "a nested SELECT"))
					return NULL;
				p->i++;
				n = mk(p, N_SUBQ, t);
				n->sub = arena_alloc(&p->st->ar, sizeof(select_stmt));
				if (parse_select(p, n->sub, 1) < 0)
					return NULL;
				if (!expect_punct(p, ")"))
					return NULL;
				return n;
			}
			n = parse_expr(p);
			if (n == NULL || !expect_punct(p, ")"))
				return NULL;
			return n;
		}
		if (is_punct(t, "[")) {
			if (!need_2016(p, t, "an array literal"))
				return NULL;
			p->i++;
			n = mk(p, N_ARR, t);
			if ((n->kids = parse_list(p, "]", &n->nkids, 0)) == NULL)
				return NULL;
			return n;
		}
		if (is_punct(t, "{")) {
			if (!need_2016(p, t, "an object literal"))
				return NULL;
			p->i++;
			n = mk(p, N_OBJ, t);
			node *vals[256];
			const char *keys[256];
			size_t klens[256];
			int k = 0;
			if (!accept_punct(p, "}")) {
				do {
					token *kt = peek(p);
					if (kt->kind != T_STRING && kt->kind != T_IDENT)
						return fail(p, kt, "expected %s", "an object key");
					if (k == 256)
						return fail(p, kt, "%s", "too many object members");
					p->i++;
					keys[k] = kt->s;
					klens[k] = kt->n;
					if (!expect_punct(p, ":"))
						return NULL;
					if ((vals[k++] = parse_expr(p)) == NULL)
						return NULL;
				} while (accept_punct(p, ","));
				if (!expect_punct(p, "}"))
					return NULL;
			}
			n->nkids = k;
			n->kids = arena_alloc(&p->st->ar, sizeof(node *) * (k ? k : 1));
			n->keys = arena_alloc(&p->st->ar, sizeof(char *) * (k ? k : 1));
			n->klens = arena_alloc(&p->st->ar, sizeof(size_t) * (k ? k : 1));
			memcpy(n->kids, vals, sizeof(node *) * k);
			memcpy(n->keys, keys, sizeof(char *) * k);
			memcpy(n->klens, klens, sizeof(size_t) * k);
			return n;
		}
		break;
	default:
		break;
	}
	return fail(p, t, "expected %s", "an expression");
}

static node *
parse_postfix(parser *p)
{
	node *n = parse_primary(p);
	while (n) {
		token *t = peek(p);
		if (is_punct(t, ".")) {
			p->i++;
			token *m = peek(p);
			if (m->kind != T_IDENT)
				return fail(p, m, "expected %s", "a member name after '.'");
			p->i++;
			node *x = mk(p, N_MEMBER, m);
			x->a = n;
			x->name = m->s;
			x->nlen = m->n;
			n = x;
		} else if (is_punct(t, "[")) {
			p->i++;
			node *x = mk(p, N_INDEX, t);
			x->a = n;
			if ((x->b = parse_expr(p)) == NULL || !expect_punct(p, "]"))
				return NULL;
			n = x;
		} else {
			break;
		}
	}
	return n;
}

static node *
parse_unary(parser *p)
{
	token *t = peek(p);
	if (is_punct(t, "-") || is_punct(t, "+")) {
		p->i++;
		token *nt = peek(p);
		/* Fold "-5" into a literal so that it prints and compares like
		 * one (and INT64_MIN stays representable). */
		if (is_punct(t, "-") && (nt->kind == T_INT || nt->kind == T_DEC) &&
		    !is_punct(&p->t[p->i + 1], ".") && !is_punct(&p->t[p->i + 1], "[")) {
			p->i++;
			node *n = mk(p, N_LIT, t);
			n->lit = nt->kind == T_INT ? v_int(-nt->i) : dec_literal(p, nt, 1);
			return n;
		}
		node *n = mk(p, N_UNARY, t);
		n->op = is_punct(t, "-") ? OP_NEG : OP_POS;
		if ((n->a = parse_unary(p)) == NULL)
			return NULL;
		return n;
	}
	return parse_postfix(p);
}

static node *
parse_binary_level(parser *p, int level);

static int
binop_at(parser *p, int level, int *op)
{
	token *t = peek(p);
	switch (level) {
	case 0:
		if (is_punct(t, "*")) { *op = OP_MUL; return 1; }
		if (is_punct(t, "/")) { *op = OP_DIV; return 1; }
		if (is_punct(t, "%")) { *op = OP_MOD; return 1; }
		return 0;
	case 1:
		if (is_punct(t, "+")) { *op = OP_ADD; return 1; }
		if (is_punct(t, "-")) { *op = OP_SUB; return 1; }
		return 0;
	case 2:
		if (is_punct(t, "=")) { *op = OP_EQ; return 1; }
		if (is_punct(t, "<>") || is_punct(t, "!=")) { *op = OP_NE; return 1; }
		if (is_punct(t, "<")) { *op = OP_LT; return 1; }
		if (is_punct(t, "<=")) { *op = OP_LE; return 1; }
		if (is_punct(t, ">")) { *op = OP_GT; return 1; }
		if (is_punct(t, ">=")) { *op = OP_GE; return 1; }
		if (is_kw(t, "IN")) { *op = OP_IN; return 1; }
		if (is_kw(t, "CONTAINS")) { *op = OP_CONTAINS; return 1; }
		return 0;
	case 4:
		if (is_kw(t, "AND")) { *op = OP_AND; return 1; }
		return 0;
	case 5:
		if (is_kw(t, "OR")) { *op = OP_OR; return 1; }
		return 0;
	}
	return 0;
}

static node *
parse_binary_level(parser *p, int level)
{
	if (level < 0)
		return parse_unary(p);
	if (level == 3) {  /* NOT */
		token *t = peek(p);
		if (is_kw(t, "NOT")) {
			p->i++;
			node *n = mk(p, N_UNARY, t);
			n->op = OP_NOT;
			if ((n->a = parse_binary_level(p, 3)) == NULL)
				return NULL;
			return n;
		}
		return parse_binary_level(p, 2);
	}
	node *l = parse_binary_level(p, level - 1);
	int op;
	while (l && binop_at(p, level, &op)) {
		token *t = peek(p);
		p->i++;
		node *n = mk(p, N_BINARY, t);
		n->op = (unsigned char)op;
		n->a = l;
		if ((n->b = parse_binary_level(p, level - 1)) == NULL)
			return NULL;
		l = n;
		if (level == 2 && binop_at(p, 2, &op))
			return fail(p, peek(p), "%s", "comparisons cannot be chained; use AND");
	}
	return l;
}

static node *
parse_expr(parser *p)
{
	int d = p->depth;
	node *n = parse_binary_level(p, 5);
	p->depth = d;
	return n;
}

/* The output key of an item without AS: the last segment of a path. */
static const char *
default_alias(parser *p, node *e)
{
	if (e->kind == N_IDENT || e->kind == N_MEMBER)
		return arena_strndup(&p->st->ar, e->name, e->nlen);
	return NULL;
}

static int
parse_alias(parser *p, select_item *it)
{
	/* A dotted alias (a.b.c) builds nested objects (SQL.md §1.6). */
	buf b = BUF_ZERO;
	do {
		token *t = peek(p);
		if (t->kind != T_IDENT && t->kind != T_STRING) {
			buf_free(&b);
			fail(p, t, "expected %s", "an alias name after AS");
			return -1;
		}
		if (t->kind == T_IDENT && is_reserved(t) && !is_kw(t, "END")) {
			buf_free(&b);
			fail(p, t, "expected %s", "an alias name after AS");
			return -1;
		}
		p->i++;
		if (b.len)
			buf_addc(&b, '.');
		buf_add(&b, t->s, t->n);
	} while (accept_punct(p, "."));
	it->alias = arena_strndup(&p->st->ar, b.data, b.len);
	buf_free(&b);
	return 0;
}

static int
parse_select(parser *p, select_stmt *s, int nested)
{
	select_item tmp[256];
	int n = 0;
	s->value = accept_kw(p, "VALUE");
	do {
		if (n == 256) {
			fail(p, peek(p), "%s", "too many select items");
			return -1;
		}
		/* A trailing comma before FROM appears in an AWS tutorial and is
		 * accepted there (SQL.md §12 #22). */
		if (n > 0 && is_kw(peek(p), "FROM")) {
			snprintf(p->st->warning, sizeof(p->st->warning),
			    "line %d, column %d: trailing comma before FROM accepted",
			    peek(p)->line, peek(p)->col);
			break;
		}
		select_item *it = &tmp[n];
		memset(it, 0, sizeof(*it));
		token *t = peek(p);
		if (is_punct(t, "*")) {
			p->i++;
			it->star = 1;
			if (accept_kw(p, "AS") && parse_alias(p, it) < 0)
				return -1;
		} else {
			if ((it->e = parse_expr(p)) == NULL)
				return -1;
			if (accept_kw(p, "AS")) {
				if (parse_alias(p, it) < 0)
					return -1;
			} else if (!s->value) {
				it->alias = default_alias(p, it->e);
				if (it->alias == NULL) {
					p->err->line = t->line;
					p->err->col = t->col;
					snprintf(p->err->msg, sizeof(p->err->msg),
					    "this select item needs an alias: write <expression> AS name");
					p->failed = 1;
					return -1;
				}
			}
		}
		n++;
	} while (accept_punct(p, ","));
	if (s->value && (n != 1 || tmp[0].star)) {
		fail(p, peek(p), "%s", "SELECT VALUE takes exactly one expression");
		return -1;
	}
	s->nitems = n;
	s->items = arena_alloc(&p->st->ar, sizeof(select_item) * (n ? n : 1));
	memcpy(s->items, tmp, sizeof(select_item) * n);

	if (accept_kw(p, "FROM")) {
		token *t = peek(p);
		if (nested) {
			if ((s->from = parse_expr(p)) == NULL)
				return -1;
		} else if (t->kind == T_STRING) {
			p->i++;
			if (t->p[0] == '"')
				snprintf(p->st->warning, sizeof(p->st->warning),
				    "line %d, column %d: double-quoted FROM topic accepted; AWS documents single quotes",
				    t->line, t->col);
			p->st->from_topic = arena_strndup(&p->st->ar, t->s, t->n);
			p->st->from_line = t->line;
			p->st->from_col = t->col;
		} else if (t->kind == T_TOPIC) {
			/* Unquoted topic, as some AWS pages show (§1): the lexer
			 * took the run of [A-Za-z0-9_/+#$.-] after FROM whole. */
			p->i++;
			p->st->from_topic = arena_strndup(&p->st->ar, t->s, t->n);
			p->st->from_line = t->line;
			p->st->from_col = t->col;
			snprintf(p->st->warning, sizeof(p->st->warning),
			    "line %d, column %d: unquoted FROM topic '%s' accepted; AWS documents single quotes",
			    t->line, t->col, p->st->from_topic);
		} else {
			fail(p, t, "expected %s", "a topic filter in single quotes");
			return -1;
		}
	} else if (nested) {
		fail(p, peek(p), "expected %s", "FROM in a nested SELECT");
		return -1;
	}
	if (accept_kw(p, "WHERE")) {
		if ((s->where = parse_expr(p)) == NULL)
			return -1;
	}
	return 0;
}

int
sql_parse(sql_stmt *st, token *toks, int ntoks, sql_error *err)
{
	parser p = {st, toks, ntoks, 0, err, 0, 0};
	if (accept_kw(&p, "SET")) {
		set_item tmp[64];
		int n = 0;
		do {
			token *t = peek(&p);
			if (t->kind != T_VAR) {
				fail(&p, t, "expected %s", "a variable (@name) after SET");
				return -1;
			}
			if (t->n > 64) {
				fail(&p, t, "%s", "variable names are limited to 64 characters");
				return -1;
			}
			for (int k = 0; k < n; k++)
				if (tmp[k].nlen == t->n && memcmp(tmp[k].name, t->s, t->n) == 0) {
					fail(&p, t, "%s", "a variable can be assigned only once");
					return -1;
				}
			if (n == 64) {
				fail(&p, t, "%s", "too many variables");
				return -1;
			}
			p.i++;
			if (!expect_punct(&p, "="))
				return -1;
			tmp[n].name = t->s;
			tmp[n].nlen = t->n;
			if ((tmp[n].e = parse_expr(&p)) == NULL)
				return -1;
			n++;
		} while (accept_punct(&p, ","));
		st->nsets = n;
		st->sets = arena_alloc(&st->ar, sizeof(set_item) * n);
		memcpy(st->sets, tmp, sizeof(set_item) * n);
	}
	if (!accept_kw(&p, "SELECT")) {
		fail(&p, peek(&p), "expected %s", "SELECT");
		return -1;
	}
	if (parse_select(&p, &st->sel, 0) < 0)
		return -1;
	if (peek(&p)->kind != T_EOF) {
		fail(&p, peek(&p), "expected %s", "end of statement");
		return -1;
	}
	return 0;
}

node *
sql_parse_expr(sql_stmt *st, token *toks, int ntoks, sql_error *err)
{
	parser p = {st, toks, ntoks, 0, err, 0, 0};
	node *n = parse_expr(&p);
	if (n && peek(&p)->kind != T_EOF) {
		fail(&p, peek(&p), "expected %s", "'}' closing the template expression");
		return NULL;
	}
	return n;
}
