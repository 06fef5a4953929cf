/* The AWS IoT SQL lexer: text → tokens with line:column positions. */
#include "evaluate/sql/ast.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int
lex_fail(sql_error *err, int line, int col, const char *msg)
{
	err->line = line;
	err->col = col;
	snprintf(err->msg, sizeof(err->msg), "%s", msg);
	return -1;
}

/* Appends the UTF-8 encoding of cp. */
static void
put_utf8(buf *b, unsigned cp)
{
	if (cp < 0x80) {
		buf_addc(b, (char)cp);
	} else if (cp < 0x800) {
		buf_addc(b, (char)(0xC0 | (cp >> 6)));
		buf_addc(b, (char)(0x80 | (cp & 0x3F)));
	} else if (cp < 0x10000) {
		buf_addc(b, (char)(0xE0 | (cp >> 12)));
		buf_addc(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
		buf_addc(b, (char)(0x80 | (cp & 0x3F)));
	} else {
		buf_addc(b, (char)(0xF0 | (cp >> 18)));
		buf_addc(b, (char)(0x80 | ((cp >> 12) & 0x3F)));
		buf_addc(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
		buf_addc(b, (char)(0x80 | (cp & 0x3F)));
	}
}

/* What an unquoted FROM topic filter may hold (SQL.md §1). */
static int
topic_char(unsigned char c)
{
	return isalnum(c) || c == '_' || c == '/' || c == '+' || c == '#' || c == '$' || c == '.' || c == '-';
}

int
sql_lex(arena *a, const char *text, token **out, sql_error *err)
{
	size_t cap = 64, n = 0;
	token *toks = malloc(cap * sizeof(token));
	int line = 1, col = 1;
	const char *p = text;
	buf sb = BUF_ZERO;
	int rc = -1;
	int depth = 0;   /* parentheses open: FROM at 0 is the statement's */

	if (toks == NULL)
		return lex_fail(err, 1, 1, "out of memory");
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
			if (*p == '\n') {
				line++;
				col = 1;
			} else {
				col++;
			}
			p++;
		}
		if (n + 1 >= cap) {
			cap *= 2;
			token *t = realloc(toks, cap * sizeof(token));
			if (t == NULL) {
				lex_fail(err, line, col, "out of memory");
				goto done;
			}
			toks = t;
		}
		token *t = &toks[n];
		memset(t, 0, sizeof(*t));
		t->line = line;
		t->col = col;
		const char *start = p;
		unsigned char c = (unsigned char)*p;
		if (c == 0) {
			t->kind = T_EOF;
			n++;
			break;
		}
		if (depth == 0 && n > 0 && toks[n - 1].kind == T_IDENT && toks[n - 1].n == 4 &&
		    strncasecmp(toks[n - 1].s, "FROM", 4) == 0 && topic_char(c)) {
			/* An unquoted topic filter, as some AWS pages write it
			 * (SQL.md §1: FROM topic/#, FROM $aws/things/...): the
			 * whole run, since '#' and '$' are no tokens of their own.
			 * The parser accepts it with a warning. */
			while (topic_char((unsigned char)*p))
				p++;
			t->kind = T_TOPIC;
			t->s = start;
			t->n = (size_t)(p - start);
		} else if (isalpha(c) || c == '_' || c == '@') {
			t->kind = c == '@' ? T_VAR : T_IDENT;
			if (c == '@')
				p++;
			if (!(isalpha((unsigned char)*p) || *p == '_') && c == '@') {
				lex_fail(err, line, col, "expected a variable name after '@'");
				goto done;
			}
			while (isalnum((unsigned char)*p) || *p == '_')
				p++;
			t->s = c == '@' ? start + 1 : start;
			t->n = (size_t)(p - t->s);
		} else if (isdigit(c)) {
			int dec = 0;
			while (isdigit((unsigned char)*p))
				p++;
			if (*p == '.' && isdigit((unsigned char)p[1])) {
				dec = 1;
				p++;
				while (isdigit((unsigned char)*p))
					p++;
			}
			if ((*p == 'e' || *p == 'E') &&
			    (isdigit((unsigned char)p[1]) ||
				((p[1] == '-' || p[1] == '+') && isdigit((unsigned char)p[2])))) {
				dec = 1;
				p += 2;
				while (isdigit((unsigned char)*p))
					p++;
			}
			char tmp[128];
			size_t len = (size_t)(p - start);
			if (len >= sizeof(tmp)) {
				lex_fail(err, line, col, "number literal too long");
				goto done;
			}
			memcpy(tmp, start, len);
			tmp[len] = 0;
			t->s = start;
			t->n = len;
			errno = 0;
			if (!dec) {
				long long v = strtoll(tmp, NULL, 10);
				if (errno == ERANGE)
					dec = 1;
				else {
					t->kind = T_INT;
					t->i = v;
				}
			}
			if (dec) {
				t->kind = T_DEC;
				t->d = strtod(tmp, NULL);
			}
		} else if (c == '\'' || c == '"') {
			char q = (char)c;
			buf_reset(&sb);
			p++;
			for (;;) {
				if (*p == 0) {
					lex_fail(err, line, col, "unterminated string literal");
					goto done;
				}
				if (*p == q) {
					if (p[1] == q) {  /* doubled quote */
						buf_addc(&sb, q);
						p += 2;
						continue;
					}
					p++;
					break;
				}
				if (*p == '\\' && p[1]) {
					p++;
					switch (*p) {
					case 'n': buf_addc(&sb, '\n'); break;
					case 't': buf_addc(&sb, '\t'); break;
					case 'r': buf_addc(&sb, '\r'); break;
					case 'b': buf_addc(&sb, '\b'); break;
					case 'f': buf_addc(&sb, '\f'); break;
					case 'u': {
						unsigned cp = 0;
						int k;
						for (k = 1; k <= 4 && isxdigit((unsigned char)p[k]); k++)
							cp = cp * 16 + (unsigned)(isdigit((unsigned char)p[k]) ? p[k] - '0' : (tolower((unsigned char)p[k]) - 'a' + 10));
						if (k != 5) {
							/* Not an escape: keep the text as written. */
							buf_add(&sb, "\\u", 2);
							break;
						}
						put_utf8(&sb, cp);
						p += 4;
						break;
					}
					case '\\': case '\'': case '"': case '/':
						buf_addc(&sb, *p);
						break;
					default:
						/* Unknown escapes keep their backslash so that
						 * regular expressions like '\d+' survive. */
						buf_addc(&sb, '\\');
						buf_addc(&sb, *p);
					}
					p++;
					continue;
				}
				if (*p == '\n') {
					line++;
					col = 0;
				}
				buf_addc(&sb, *p++);
			}
			t->kind = T_STRING;
			t->s = arena_strndup(a, sb.data ? sb.data : "", sb.len);
			t->n = sb.len;
			t->p[0] = q;
		} else {
			static const char *two[] = {"<>", "!=", "<=", ">=", NULL};
			t->kind = T_PUNCT;
			int k;
			for (k = 0; two[k]; k++)
				if (p[0] == two[k][0] && p[1] == two[k][1])
					break;
			if (two[k]) {
				t->p[0] = p[0];
				t->p[1] = p[1];
				p += 2;
			} else if (strchr("*,()[]{}.:+-/%=<>", c)) {
				t->p[0] = (char)c;
				depth += c == '(' ? 1 : c == ')' && depth > 0 ? -1 : 0;
				p++;
			} else {
				char m[64];
				snprintf(m, sizeof(m), "unexpected character '%c'", c);
				lex_fail(err, line, col, m);
				goto done;
			}
			t->s = start;
			t->n = (size_t)(p - start);
		}
		/* Columns count source characters; strings may contain newlines
		 * (handled above), everything else is on one line. */
		for (const char *q = start; q < p; q++)
			if (*q != '\n')
				col++;
		n++;
	}
	/* The array is the caller's (freed after parsing: a compiled
	 * statement keeps no tokens, only what the arena holds). */
	*out = toks;
	toks = NULL;
	rc = (int)n;
done:
	free(toks);
	buf_free(&sb);
	return rc;
}
