/* explain: "why did (or didn't) my rule fire" — per clause, the values a
 * statement computed on the current message (sql.h, sql_explain).
 *
 *   SET @lim = 20 (Int)
 *   WHERE false (Boolean) -> rule does not fire
 *     temp > @lim AND (hum < 50 OR isNull(x)) = false (Boolean)
 *       temp > @lim = false (Boolean)
 *         temp = 15 (Int)
 *         @lim = 20 (Int)
 *       ...
 *   SELECT item 1 AS device = "d1" (String)
 *
 * Sub-expressions are shown as SQL text rebuilt from the tree (so spacing
 * and quotes are normalised) and evaluated again on their own; literals
 * are not repeated. */
#include <string.h>

#include "evaluate/sql/ast.h"
#include "evaluate/sql/sql.h"

static const char *
op_text(int op)
{
	switch (op) {
	case OP_ADD: return "+";
	case OP_SUB: case OP_NEG: return "-";
	case OP_MUL: return "*";
	case OP_DIV: return "/";
	case OP_MOD: return "%";
	case OP_POS: return "+";
	case OP_EQ: return "=";
	case OP_NE: return "<>";
	case OP_LT: return "<";
	case OP_LE: return "<=";
	case OP_GT: return ">";
	case OP_GE: return ">=";
	case OP_IN: return "IN";
	case OP_CONTAINS: return "CONTAINS";
	case OP_AND: return "AND";
	case OP_OR: return "OR";
	case OP_NOT: return "NOT";
	default: return "?";
	}
}

static void unparse(buf *b, const node *n, enum sql_version ver);

/* Binding strength, for parentheses only where they are needed. */
static int
prec(const node *n)
{
	if (n->kind == N_UNARY)
		return n->op == OP_NOT ? 3 : 7;
	if (n->kind != N_BINARY)
		return 8;
	switch (n->op) {
	case OP_OR: return 1;
	case OP_AND: return 2;
	case OP_ADD: case OP_SUB: return 5;
	case OP_MUL: case OP_DIV: case OP_MOD: return 6;
	default: return 4;   /* comparisons, IN, CONTAINS */
	}
}

/* An operand of an operator: parenthesised when it binds more loosely
 * than its parent (or as loosely, on the right). */
static void
unparse_operand(buf *b, const node *n, const node *parent, int right, enum sql_version ver)
{
	int paren = prec(n) < prec(parent) || (right && prec(n) == prec(parent) && n->kind == N_BINARY);
	if (paren)
		buf_addc(b, '(');
	unparse(b, n, ver);
	if (paren)
		buf_addc(b, ')');
}

static void
unparse_list(buf *b, node **kids, int n, enum sql_version ver)
{
	for (int i = 0; i < n; i++) {
		if (i)
			buf_adds(b, ", ");
		unparse(b, kids[i], ver);
	}
}

/* SQL text for n, rebuilt from the tree. */
static void
unparse(buf *b, const node *n, enum sql_version ver)
{
	static const char *casts[] = {"String", "Int", "Double", "Decimal", "Boolean"};
	switch (n->kind) {
	case N_LIT:
		if (n->lit.t == VT_STR) {   /* SQL quoting: '...' with '' */
			buf_addc(b, '\'');
			for (uint32_t i = 0; i < n->lit.n; i++) {
				if (n->lit.u.s[i] == '\'')
					buf_addc(b, '\'');
				buf_addc(b, n->lit.u.s[i]);
			}
			buf_addc(b, '\'');
		} else {
			value_write_json(b, n->lit, ver);
		}
		return;
	case N_IDENT:
		buf_add(b, n->name, n->nlen);
		return;
	case N_VAR:
		buf_addc(b, '@');
		buf_add(b, n->name, n->nlen);
		return;
	case N_MEMBER:
		unparse_operand(b, n->a, n, 0, ver);
		buf_addc(b, '.');
		buf_add(b, n->name, n->nlen);
		return;
	case N_INDEX:
		unparse_operand(b, n->a, n, 0, ver);
		buf_addc(b, '[');
		unparse(b, n->b, ver);
		buf_addc(b, ']');
		return;
	case N_CALL:
		buf_adds(b, sql_fn_get(n->fn)->name);
		buf_addc(b, '(');
		unparse_list(b, n->kids, n->nkids, ver);
		buf_addc(b, ')');
		return;
	case N_CAST:
		buf_adds(b, "cast(");
		unparse(b, n->a, ver);
		buf_adds(b, " AS ");
		buf_adds(b, n->fn >= 0 && n->fn < 5 ? casts[n->fn] : "?");
		buf_addc(b, ')');
		return;
	case N_UNARY:
		buf_adds(b, op_text(n->op));
		if (n->op == OP_NOT)
			buf_addc(b, ' ');
		unparse_operand(b, n->a, n, 0, ver);
		return;
	case N_BINARY:
		unparse_operand(b, n->a, n, 0, ver);
		buf_addc(b, ' ');
		buf_adds(b, op_text(n->op));
		buf_addc(b, ' ');
		unparse_operand(b, n->b, n, 1, ver);
		return;
	case N_ARR:
		buf_addc(b, '[');
		unparse_list(b, n->kids, n->nkids, ver);
		buf_addc(b, ']');
		return;
	case N_OBJ:
		buf_addc(b, '{');
		for (int i = 0; i < n->nkids; i++) {
			if (i)
				buf_adds(b, ", ");
			buf_add_json_str(b, n->keys[i], n->klens[i]);
			buf_adds(b, ": ");
			unparse(b, n->kids[i], ver);
		}
		buf_addc(b, '}');
		return;
	case N_STAR:
		buf_addc(b, '*');
		return;
	case N_CASE:
		buf_adds(b, "CASE ... END");
		return;
	case N_SUBQ:
		buf_adds(b, "(SELECT ...)");
		return;
	}
}

static void
show_value(buf *out, value v, enum sql_version ver)
{
	if (v.t == VT_UNDEF)
		buf_adds(out, "Undefined");
	else
		value_write_json(out, v, ver);
	buf_printf(out, " (%s)", value_type_name(v.t));
}

/* One line for n ("text = value (Type)"), then its operands one level
 * deeper: operators and function arguments are opened up, leaves and
 * literals are not. */
static void
explain_node(sql_ectx *e, buf *out, const node *n, int depth)
{
	if (n->kind == N_LIT)
		return;
	enum sql_version ver = e->st->ver;
	for (int i = 0; i < depth; i++)
		buf_adds(out, "  ");
	unparse(out, n, ver);
	buf_adds(out, " = ");
	show_value(out, sql_eval(e, (node *)n), ver);
	buf_addc(out, '\n');
	if (depth > 12)
		return;
	switch (n->kind) {
	case N_BINARY:
		explain_node(e, out, n->a, depth + 1);
		explain_node(e, out, n->b, depth + 1);
		break;
	case N_UNARY:
	case N_CAST:
		explain_node(e, out, n->a, depth + 1);
		break;
	case N_CALL:
		for (int i = 0; i < n->nkids; i++)
			if (n->kids[i]->kind != N_STAR)
				explain_node(e, out, n->kids[i], depth + 1);
		break;
	default:
		break;
	}
}

void
sql_explain(const sql_stmt *st, sql_ctx *c, buf *out)
{
	sql_error err;
	sql_ectx e = {.c = c, .st = st, .scope = sql_payload(c, st->ver), .err = &err};
	sql_eval_sets(&e);
	if (!c->payload_is_json && c->msg->payload_len > 0)
		buf_adds(out, "payload: not JSON (binary): payload fields are Undefined\n");
	for (int i = 0; i < st->nsets; i++) {
		buf_printf(out, "SET @%.*s = ", (int)st->sets[i].nlen, st->sets[i].name);
		show_value(out, c->vars->vals[i], st->ver);
		buf_addc(out, '\n');
	}
	if (st->sel.where) {
		value v = sql_eval(&e, st->sel.where);
		buf_adds(out, "WHERE ");
		show_value(out, v, st->ver);
		buf_adds(out, v.t == VT_BOOL && v.u.b ? " -> rule fires\n" :
		    v.t == VT_BOOL ? " -> rule does not fire\n" : " -> rule does not fire (WHERE must be Boolean true)\n");
		explain_node(&e, out, st->sel.where, 1);
	}
	for (int i = 0; i < st->sel.nitems; i++) {
		const select_item *it = &st->sel.items[i];
		if (it->star) {
			buf_printf(out, "SELECT *%s%s\n", it->alias ? " AS " : "", it->alias ? it->alias : "");
			continue;
		}
		value v = sql_eval(&e, it->e);
		buf_printf(out, "SELECT item %d", i + 1);
		if (it->alias)
			buf_printf(out, " AS %s", it->alias);
		buf_adds(out, ": ");
		unparse(out, it->e, st->ver);
		buf_adds(out, " = ");
		show_value(out, v, st->ver);
		buf_adds(out, v.t == VT_UNDEF ? " -> omitted from the result\n" : "\n");
		if (it->e->kind == N_BINARY || it->e->kind == N_CALL || it->e->kind == N_UNARY || it->e->kind == N_CAST)
			for (int k = 0; k < (it->e->kind == N_CALL ? it->e->nkids : 1 + (it->e->kind == N_BINARY)); k++) {
				const node *kid = it->e->kind == N_CALL ? it->e->kids[k] : k == 0 ? it->e->a : it->e->b;
				if (kid->kind != N_STAR)
					explain_node(&e, out, kid, 1);
			}
	}
}
