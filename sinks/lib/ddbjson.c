#include "sinks/lib/ddbjson.h"

#include <cjson/cJSON.h>
#include <string.h>

#include "common/utf8.h"

/* ---- JSON → DynamoDB: a scanner over the JSON text, so numbers keep their text */

typedef struct scan {
	const char *p, *end;
	buf *out;
	int depth;
} scan;

static void
skip_ws(scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static int
literal(scan *s, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return 0;
	s->p += n;
	return 1;
}

/* A JSON string at s->p, copied as written. */
static int
string(scan *s)
{
	const char *start = s->p;
	if (s->p >= s->end || *s->p != '"')
		return DDBJSON_ESYNTAX;
	s->p++;
	while (s->p < s->end) {
		unsigned char c = (unsigned char)*s->p;
		if (c == '"') {
			s->p++;
			buf_add(s->out, start, (size_t)(s->p - start));
			return DDBJSON_OK;
		}
		if (c < 0x20)
			return DDBJSON_ESYNTAX;
		if (c == '\\') {
			if (++s->p >= s->end)
				return DDBJSON_ESYNTAX;
			if (*s->p == 'u') {
				if (s->end - s->p < 5)
					return DDBJSON_ESYNTAX;
				for (int i = 1; i <= 4; i++)
					if (!strchr("0123456789abcdefABCDEF", s->p[i]) || s->p[i] == 0)
						return DDBJSON_ESYNTAX;
				s->p += 5;
			} else if (strchr("\"\\/bfnrt", *s->p) && *s->p) {
				s->p++;
			} else {
				return DDBJSON_ESYNTAX;
			}
		} else if (c < 0x80) {
			s->p++;
		} else {
			int k = utf8_seq_len((const unsigned char *)s->p, (const unsigned char *)s->end);
			if (k == 0)
				return DDBJSON_ESYNTAX;
			s->p += k;
		}
	}
	return DDBJSON_ESYNTAX;
}

static size_t
digits(const char *p, const char *end)
{
	size_t n = 0;
	while (p + n < end && p[n] >= '0' && p[n] <= '9')
		n++;
	return n;
}

/* A JSON number at s->p: -?(0|[1-9]d*)(.d+)?([eE][+-]?d+)?, as {"N":"text"}. */
static int
number(scan *s)
{
	const char *p = s->p;
	if (p < s->end && *p == '-')
		p++;
	size_t d = digits(p, s->end);
	if (d == 0 || (d > 1 && *p == '0'))
		return DDBJSON_ESYNTAX;
	p += d;
	if (p < s->end && *p == '.') {
		if ((d = digits(++p, s->end)) == 0)
			return DDBJSON_ESYNTAX;
		p += d;
	}
	if (p < s->end && (*p == 'e' || *p == 'E')) {
		if (++p < s->end && (*p == '+' || *p == '-'))
			p++;
		if ((d = digits(p, s->end)) == 0)
			return DDBJSON_ESYNTAX;
		p += d;
	}
	buf_adds(s->out, "{\"N\":\"");
	buf_add(s->out, s->p, (size_t)(p - s->p));
	buf_adds(s->out, "\"}");
	s->p = p;
	return DDBJSON_OK;
}

static int value(scan *s);

/* The members of an object or the elements of an array, s->p after the
 * opening bracket; named: members (name: value). */
static int
members(scan *s, char close, int named)
{
	if (++s->depth > DDBJSON_MAX_DEPTH)
		return DDBJSON_EDEPTH;
	skip_ws(s);
	if (s->p < s->end && *s->p == close) {
		s->p++;
		s->depth--;
		return DDBJSON_OK;
	}
	for (;;) {
		int e;
		skip_ws(s);
		if (named) {
			if ((e = string(s)) != DDBJSON_OK)
				return e;
			skip_ws(s);
			if (s->p >= s->end || *s->p++ != ':')
				return DDBJSON_ESYNTAX;
			buf_addc(s->out, ':');
		}
		if ((e = value(s)) != DDBJSON_OK)
			return e;
		skip_ws(s);
		if (s->p >= s->end)
			return DDBJSON_ESYNTAX;
		char c = *s->p++;
		if (c == close) {
			s->depth--;
			return DDBJSON_OK;
		}
		if (c != ',')
			return DDBJSON_ESYNTAX;
		buf_addc(s->out, ',');
	}
}

static int
value(scan *s)
{
	int e;
	skip_ws(s);
	if (s->p >= s->end)
		return DDBJSON_ESYNTAX;
	switch (*s->p) {
	case '"':
		buf_adds(s->out, "{\"S\":");
		if ((e = string(s)) != DDBJSON_OK)
			return e;
		buf_addc(s->out, '}');
		return DDBJSON_OK;
	case '{':
	case '[':
		buf_adds(s->out, *s->p == '{' ? "{\"M\":{" : "{\"L\":[");
		s->p++;
		if ((e = members(s, s->p[-1] == '{' ? '}' : ']', s->p[-1] == '{')) != DDBJSON_OK)
			return e;
		buf_adds(s->out, s->p[-1] == '}' ? "}}" : "]}");
		return DDBJSON_OK;
	case 't':
	case 'f':
	case 'n':
		if (literal(s, "true"))
			buf_adds(s->out, "{\"BOOL\":true}");
		else if (literal(s, "false"))
			buf_adds(s->out, "{\"BOOL\":false}");
		else if (literal(s, "null"))
			buf_adds(s->out, "{\"NULL\":true}");
		else
			return DDBJSON_ESYNTAX;
		return DDBJSON_OK;
	default:
		return number(s);
	}
}

/* Puts out back to len and returns e. */
static int
undo(buf *out, size_t len, int e)
{
	out->len = len;
	if (out->data)
		out->data[len] = 0;
	return e;
}

int
ddbjson_from_json(buf *out, const char *json, size_t n)
{
	scan s = {json, json + n, out, 0};
	size_t len = out->len;
	int e = value(&s);
	skip_ws(&s);
	if (e == DDBJSON_OK && s.p != s.end)
		e = DDBJSON_ESYNTAX;
	return e == DDBJSON_OK ? e : undo(out, len, e);
}

int
ddbjson_item_from_json(buf *out, const char *json, size_t n)
{
	size_t len = out->len;
	int e = ddbjson_from_json(out, json, n);
	if (e != DDBJSON_OK)
		return e;
	/* {"M":{...}} → {...} */
	if (strncmp(out->data + len, "{\"M\":", 5) != 0)
		return undo(out, len, DDBJSON_ENOTOBJ);
	memmove(out->data + len, out->data + len + 5, out->len - len - 6);
	return undo(out, out->len - 6, DDBJSON_OK);
}

/* ---- DynamoDB → JSON: the service's answer parsed with cJSON (numbers are strings there) */

int
ddbjson_is_number(const char *s, size_t n)
{
	const char *p = s, *end = s + n;
	if (p < end && (*p == '+' || *p == '-'))
		p++;
	size_t whole = digits(p, end), frac = 0;
	p += whole;
	if (p < end && *p == '.') {
		frac = digits(++p, end);
		p += frac;
	}
	if (whole + frac == 0)
		return 0;
	if (p < end && (*p == 'e' || *p == 'E')) {
		if (++p < end && (*p == '+' || *p == '-'))
			p++;
		size_t d = digits(p, end);
		if (d == 0)
			return 0;
		p += d;
	}
	return p == end;
}

/* DynamoDB number text as a JSON number: no '+', no leading zeros, a
 * digit on both sides of the point or no point. */
static int
add_number(buf *out, const char *s)
{
	size_t n = strlen(s);
	if (!ddbjson_is_number(s, n))
		return DDBJSON_ESYNTAX;
	const char *p = s, *end = s + n;
	if (*p == '+' || *p == '-')
		if (*p++ == '-')
			buf_addc(out, '-');
	size_t whole = digits(p, end);
	while (whole > 1 && *p == '0')
		p++, whole--;
	if (whole == 0)
		buf_addc(out, '0');
	buf_add(out, p, whole);
	p += whole;
	if (p < end && *p == '.') {
		size_t frac = digits(++p, end);
		if (frac) {
			buf_addc(out, '.');
			buf_add(out, p, frac);
		}
		p += frac;
	}
	buf_add(out, p, (size_t)(end - p));   /* the exponent */
	return DDBJSON_OK;
}

static int to_json(buf *out, const cJSON *v, int depth);

/* The members of an item or M (object: names) or the elements of an L
 * (array of values), or a set (elems: "S", "N" or "B"). */
static int
children(buf *out, const cJSON *c, int depth, char type)
{
	int obj = cJSON_IsObject(c);
	if (!obj && !cJSON_IsArray(c))
		return DDBJSON_ESYNTAX;
	if (depth > DDBJSON_MAX_DEPTH)
		return DDBJSON_EDEPTH;
	buf_addc(out, obj ? '{' : '[');
	for (const cJSON *m = c->child; m; m = m->next) {
		int e = DDBJSON_OK;
		if (m != c->child)
			buf_addc(out, ',');
		if (obj) {
			buf_add_json_str(out, m->string, strlen(m->string));
			buf_addc(out, ':');
		}
		if (type == 0)
			e = to_json(out, m, depth + 1);
		else if (!cJSON_IsString(m))
			e = DDBJSON_ESYNTAX;
		else if (type == 'N')
			e = add_number(out, m->valuestring);
		else
			buf_add_json_str(out, m->valuestring, strlen(m->valuestring));
		if (e != DDBJSON_OK)
			return e;
	}
	buf_addc(out, obj ? '}' : ']');
	return DDBJSON_OK;
}

static int
to_json(buf *out, const cJSON *v, int depth)
{
	if (!cJSON_IsObject(v) || v->child == NULL || v->child->next != NULL)
		return DDBJSON_ESYNTAX;
	const cJSON *x = v->child;
	const char *t = x->string;
	if (strcmp(t, "S") == 0 || strcmp(t, "B") == 0) {
		if (!cJSON_IsString(x))
			return DDBJSON_ESYNTAX;
		buf_add_json_str(out, x->valuestring, strlen(x->valuestring));
		return DDBJSON_OK;
	}
	if (strcmp(t, "N") == 0)
		return cJSON_IsString(x) ? add_number(out, x->valuestring) : DDBJSON_ESYNTAX;
	if (strcmp(t, "BOOL") == 0 && cJSON_IsBool(x)) {
		buf_adds(out, cJSON_IsTrue(x) ? "true" : "false");
		return DDBJSON_OK;
	}
	if (strcmp(t, "NULL") == 0) {
		buf_adds(out, "null");
		return DDBJSON_OK;
	}
	if (strcmp(t, "M") == 0)
		return cJSON_IsObject(x) ? children(out, x, depth, 0) : DDBJSON_ESYNTAX;
	if (strcmp(t, "L") == 0)
		return cJSON_IsArray(x) ? children(out, x, depth, 0) : DDBJSON_ESYNTAX;
	if (strlen(t) == 2 && t[1] == 'S' && strchr("SNB", t[0]))
		return cJSON_IsArray(x) ? children(out, x, depth, t[0]) : DDBJSON_ESYNTAX;
	return DDBJSON_ESYNTAX;
}

static int
parsed_to_json(buf *out, const char *ddb, size_t n, int item)
{
	cJSON *v = cJSON_ParseWithLength(ddb, n);
	if (v == NULL)
		return DDBJSON_ESYNTAX;
	size_t len = out->len;
	int e = item ? (cJSON_IsObject(v) ? children(out, v, 1, 0) : DDBJSON_ENOTOBJ) : to_json(out, v, 1);
	cJSON_Delete(v);
	return e == DDBJSON_OK ? e : undo(out, len, e);
}

int
ddbjson_to_json(buf *out, const char *ddb, size_t n)
{
	return parsed_to_json(out, ddb, n, 0);
}

int
ddbjson_item_to_json(buf *out, const char *ddb, size_t n)
{
	return parsed_to_json(out, ddb, n, 1);
}

const char *
ddbjson_strerror(int err)
{
	switch (err) {
	case DDBJSON_OK: return "no error";
	case DDBJSON_ESYNTAX: return "not JSON";
	case DDBJSON_ENOTOBJ: return "not a JSON object";
	case DDBJSON_EDEPTH: return "nested more than 64 levels deep";
	default: return "unknown error";
	}
}
