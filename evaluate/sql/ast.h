/* ast: the internal syntax tree shared by the SQL lexer, parser and
 * evaluator.  Not a public interface: only the evaluate/sql sources include it.
 * Every node belongs to the statement's arena (sql_stmt.ar). */
#ifndef IOTRULES_SQL_AST_H
#define IOTRULES_SQL_AST_H

#include "evaluate/sql/sql.h"

enum tok_kind {
	T_EOF, T_IDENT, T_VAR, T_STRING, T_INT, T_DEC, T_PUNCT,
	T_TOPIC   /* an unquoted topic filter after the outer FROM */
};

typedef struct token {
	enum tok_kind kind;
	int line, col;
	const char *s;   /* source text (T_STRING: decoded, arena) */
	size_t n;
	char p[3];       /* punctuation, e.g. "<=" */
	int64_t i;
	double d;
} token;

/* Tokenises text into *toks, a malloc'd array the caller frees; token
 * strings live in the arena a.  Returns count, or -1 with err (and
 * nothing to free). */
int sql_lex(arena *a, const char *text, token **toks, sql_error *err);

enum node_kind {
	N_LIT, N_IDENT, N_VAR, N_MEMBER, N_INDEX, N_CALL, N_UNARY, N_BINARY,
	N_CASE, N_OBJ, N_ARR, N_STAR, N_SUBQ, N_CAST
};

enum op {
	OP_NONE, OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MOD, OP_NEG, OP_POS,
	OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_IN, OP_CONTAINS,
	OP_AND, OP_OR, OP_NOT
};

enum cast_type { CAST_STRING, CAST_INT, CAST_DOUBLE, CAST_DECIMAL, CAST_BOOL };

typedef struct node node;
typedef struct select_stmt select_stmt;

struct node {
	unsigned char kind, op;
	int line, col;
	value lit;
	const char *name;     /* identifier, variable, member, function, obj key */
	size_t nlen;
	int fn;               /* function index (N_CALL) / cast type (N_CAST) */
	int nkids;
	node **kids;          /* call args, case whens/thens, array items... */
	node *a, *b;          /* operands; CASE subject in a, ELSE in b */
	select_stmt *sub;     /* N_SUBQ */
	const char **keys;    /* N_OBJ keys */
	size_t *klens;
};

typedef struct select_item {
	node *e;              /* NULL for '*' */
	const char *alias;    /* NULL: derived from e; may contain dots */
	int star;             /* '*' or '* AS alias' */
} select_item;

typedef struct set_item {
	const char *name;     /* without '@' */
	size_t nlen;
	node *e;
} set_item;

struct select_stmt {
	int value;            /* SELECT VALUE */
	int nitems;
	select_item *items;
	node *from;           /* subquery FROM expression */
	node *where;
};

struct sql_stmt {
	arena ar;
	enum sql_version ver;
	int nsets;
	set_item *sets;
	select_stmt sel;
	char *from_topic;     /* top-level FROM filter */
	int from_line, from_col;
	char warning[256];
};

typedef struct sql_vars {
	int n;
	const set_item *defs;
	value *vals;
} sql_vars;

/* Parses tokens into a statement. Returns 0 or -1 with err. */
int sql_parse(sql_stmt *st, token *toks, int ntoks, sql_error *err);
/* Parses a lone expression (templates). */
node *sql_parse_expr(sql_stmt *st, token *toks, int ntoks, sql_error *err);

/* Functions (funcs.c). */
typedef struct sql_ectx sql_ectx;
typedef value (*sql_fn)(sql_ectx *e, node *call, value *args, int n);
typedef struct fn_def {
	const char *name;
	int min, max;          /* argument counts; max -1 = any */
	int v2016;             /* only in 2016-03-23 */
	int external;          /* needs an AWS service */
	sql_fn impl;
} fn_def;
int sql_fn_lookup(const char *name, size_t n);  /* index or -1 */
const fn_def *sql_fn_get(int idx);

/* Evaluation (eval.c). */
struct sql_ectx {
	sql_ctx *c;
	const sql_stmt *st;
	value scope;          /* names resolve here (payload or array element) */
	sql_error *err;
	int failed;           /* an external function failed or cannot run */
	int ddb_calls;        /* get_dynamodb calls so far (one allowed) */
};
value sql_eval(sql_ectx *e, node *n);
/* Evaluates the statement's SET assignments into the ctx's variables. */
void sql_eval_sets(sql_ectx *e);
value sql_payload(sql_ctx *c, enum sql_version ver);  /* parsed for ver */
value sql_raw_payload(sql_ctx *c);   /* the payload bytes as a String */

#endif
