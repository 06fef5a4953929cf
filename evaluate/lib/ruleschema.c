#include "evaluate/lib/ruleschema.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"

const rs_shape *
ruleschema_action(const char *key)
{
	for (const rs_action *a = ruleschema_actions; a->key; a++)
		if (strcmp(a->key, key) == 0)
			return a->shape;
	return NULL;
}

void
ruleschema_spell(const char *name, int cfn, char *out, size_t cap)
{
	snprintf(out, cap, "%s", name);
	if (cfn && out[0])
		out[0] = (char)toupper((unsigned char)out[0]);
}

int
ruleschema_rename(cJSON *node, const char *name)
{
	char *s = strdup(name);
	if (s == NULL)
		return -1;
	if (!(node->type & cJSON_StringIsConst))
		free(node->string);
	node->type &= ~cJSON_StringIsConst;
	node->string = s;
	return 0;
}

const char *
ruleschema_intrinsic(const cJSON *node)
{
	if (!cJSON_IsObject(node) || node->child == NULL || node->child->next != NULL)
		return NULL;
	const char *k = node->child->string;
	return strcmp(k, "Ref") == 0 || strncmp(k, "Fn::", 4) == 0 ? k : NULL;
}

/* Edits (insert, delete, change) from a to b, ignoring case, up to 3. */
static int
edits(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 63 || lb > 63 || (la > lb ? la - lb : lb - la) > 2)
		return 3;
	int d[64][64];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = (int)i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = (int)j;
	for (size_t i = 1; i <= la; i++)
		for (size_t j = 1; j <= lb; j++) {
			int c = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
			int m = d[i - 1][j - 1] + c;
			if (d[i - 1][j] + 1 < m)
				m = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < m)
				m = d[i][j - 1] + 1;
			d[i][j] = m;
		}
	return d[la][lb];
}

const char *
ruleschema_closest(const char *key, const char *const *names, int n, int cfn)
{
	const char *best = NULL;
	int bd = 3;
	for (int i = 0; i < n; i++) {
		char nm[64];
		ruleschema_spell(names[i], cfn, nm, sizeof(nm));
		/* Short names ("s3", "sns") are too near everything: one edit. */
		int e = edits(key, nm), limit = strlen(nm) <= 4 ? 1 : 2;
		if (e <= limit && e < bd) {
			bd = e;
			best = names[i];
		}
	}
	return best;
}

static int
fail(char *err, size_t cap, const char *path, const char *fmt, const char *a, const char *b)
{
	char msg[400];
	snprintf(msg, sizeof(msg), fmt, a, b);
	snprintf(err, cap, "%s: %s", path, msg);
	return -1;
}

/* The member of structure s that the key of c names (cfn: in
 * CloudFormation's spelling), or NULL. */
static const rs_member *
find_member(const rs_shape *s, cJSON *c, int cfn)
{
	for (const rs_member *m = s->members; m->name; m++) {
		char nm[64];
		ruleschema_spell(m->name, cfn, nm, sizeof(nm));
		if (strcmp(nm, c->string) == 0)
			return m;
	}
	return NULL;
}

/* CloudFormation's leniency with scalar types: its templates often quote
 * booleans and numbers. */
static int
cfn_coerce(cJSON *n, const rs_shape *s)
{
	if (s->type == 'b' && cJSON_IsString(n) &&
	    (strcasecmp(n->valuestring, "true") == 0 || strcasecmp(n->valuestring, "false") == 0)) {
		int t = strcasecmp(n->valuestring, "true") == 0;
		free(n->valuestring);
		n->valuestring = NULL;
		n->type = (n->type & cJSON_StringIsConst) | (t ? cJSON_True : cJSON_False);
	} else if (s->type == 'i' && cJSON_IsString(n) && n->valuestring[0] &&
	    strspn(n->valuestring, "-0123456789") == strlen(n->valuestring)) {
		double v = strtod(n->valuestring, NULL);
		free(n->valuestring);
		n->valuestring = NULL;
		n->type = (n->type & cJSON_StringIsConst) | cJSON_Number;
		cJSON_SetNumberValue(n, v);
	} else if (s->type == 's' && cJSON_IsNumber(n)) {
		char *t = cJSON_PrintUnformatted(n);
		if (t == NULL)
			return -1;
		n->type = (n->type & cJSON_StringIsConst) | cJSON_String;
		n->valuestring = t;
	}
	return 0;
}

static const char *
type_name(char t)
{
	switch (t) {
	case 's': return "a string";
	case 'b': return "true or false";
	case 'i': return "a whole number";
	case 'l': return "a list ([...])";
	case 'm': return "an object of strings";
	default: return "an object ({...})";
	}
}

static int check(cJSON *n, const rs_shape *s, int cfn, int top, const char *path, char *err, size_t cap);

static int
check_struct(cJSON *n, const rs_shape *s, int cfn, int top, const char *path, char *err, size_t cap)
{
	for (cJSON *c = n->child; c; c = c->next) {
		char sub[512];
		snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] ? "." : "", c->string);
		for (cJSON *e = n->child; e != c; e = e->next)
			if (strcmp(e->string, c->string) == 0)
				return fail(err, cap, sub, "the key is there twice%s%s", "", "");
		const rs_member *m = find_member(s, c, cfn);
		if (m == NULL) {
			const char *names[64] = {0};
			int k = 0;
			for (const rs_member *x = s->members; x->name && k < 64; x++)
				names[k++] = x->name;
			const char *near = ruleschema_closest(c->string, names, k, cfn);
			char hint[128] = "";
			if (near) {
				char nm[64];
				ruleschema_spell(near, cfn, nm, sizeof(nm));
				snprintf(hint, sizeof(hint), " (did you mean '%s'?)", nm);
			} else if (k == 0)
				snprintf(hint, sizeof(hint), " (this object takes no key)");
			return fail(err, cap, sub, "unknown key%s%s", hint, "");
		}
		if (check(c, m->shape, cfn, 0, sub, err, cap) < 0)
			return -1;
		if (cfn && ruleschema_rename(c, m->name) < 0)
			return fail(err, cap, sub, "out of memory%s%s", "", "");
	}
	if (top)
		return 0;
	for (const rs_member *m = s->members; m->name; m++)
		if (m->required && strcmp(m->name, "roleArn") != 0 && cJSON_GetObjectItemCaseSensitive(n, m->name) == NULL) {
			char nm[64];
			ruleschema_spell(m->name, cfn, nm, sizeof(nm));
			return fail(err, cap, path, "needs '%s'%s", nm, "");
		}
	return 0;
}

static int
check(cJSON *n, const rs_shape *s, int cfn, int top, const char *path, char *err, size_t cap)
{
	const char *fn = cfn ? ruleschema_intrinsic(n) : NULL;
	if (fn)
		return fail(err, cap, path, "%s is a CloudFormation intrinsic function: iotrules does not resolve "
		    "them; write the value itself%s", fn, "");
	if (s->type == 'x')
		return 0;
	if (cfn && cfn_coerce(n, s) < 0)
		return fail(err, cap, path, "out of memory%s%s", "", "");
	int okt = s->type == 's' ? cJSON_IsString(n) : s->type == 'b' ? cJSON_IsBool(n)
	    : s->type == 'i' ? cJSON_IsNumber(n) && n->valuedouble == (double)(long long)n->valuedouble
	    : s->type == 'l' ? cJSON_IsArray(n) : cJSON_IsObject(n);
	if (!okt)
		return fail(err, cap, path, "must be %s%s", type_name(s->type), "");
	char lim[96];
	if (s->type == 's' && !strstr(n->valuestring, "${")) {
		long len = (long)utf8_chars(n->valuestring);
		if ((s->min >= 0 && len < s->min) || (s->max >= 0 && len > s->max)) {
			snprintf(lim, sizeof(lim), "%ld to %ld", s->min < 0 ? 0 : s->min, s->max);
			if (s->max < 0)
				snprintf(lim, sizeof(lim), "at least %ld", s->min);
			return fail(err, cap, path, "must be %s characters long (AWS's limit)%s", lim, "");
		}
		if (s->enums) {
			size_t l = strlen(n->valuestring);
			const char *p = strstr(s->enums, n->valuestring);
			int found = 0;
			for (; p && !found; p = strstr(p + 1, n->valuestring))
				found = l > 0 && (p == s->enums || p[-1] == ' ') && (p[l] == ' ' || p[l] == 0);
			if (!found)
				return fail(err, cap, path, "'%.100s' is not one of: %s", n->valuestring, s->enums);
		}
	} else if (s->type == 'i' || s->type == 'l') {
		long v = s->type == 'i' ? (long)n->valuedouble : (long)cJSON_GetArraySize(n);
		if ((s->min >= 0 && v < s->min) || (s->max >= 0 && v > s->max)) {
			snprintf(lim, sizeof(lim), s->max < 0 ? "at least %ld" : "%ld to %ld", s->min < 0 ? 0 : s->min, s->max);
			return fail(err, cap, path, s->type == 'i' ? "must be %s%s" : "must hold %s items%s", lim, "");
		}
	}
	if (s->type == 'S')
		return check_struct(n, s, cfn, top, path, err, cap);
	int i = 0;
	for (cJSON *c = n->child; c && (s->type == 'l' || s->type == 'm'); c = c->next, i++) {
		char sub[512];
		if (s->type == 'l')
			snprintf(sub, sizeof(sub), "%s[%d]", path, i);
		else
			snprintf(sub, sizeof(sub), "%s.%s", path, c->string);
		if (check(c, s->elem, cfn, 0, sub, err, cap) < 0)
			return -1;
	}
	return 0;
}

int
ruleschema_check(cJSON *params, const rs_shape *shape, int cfn, const char *path, char *err, size_t errcap)
{
	return check(params, shape, cfn, 1, path, err, errcap);
}
