#include "common/subid.h"

#include <openssl/sha.h>
#include <string.h>

uint32_t
subid_of(const char *filter)
{
	unsigned char d[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)filter, strlen(filter), d);
	uint32_t v = ((uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3]) & 0x0FFFFFFFu;
	return v ? v : 1;
}

/* Calls fn on each line of set (without its '\n'); stops when fn
 * returns non-zero and returns that. */
static int
each_line(const char *set, int (*fn)(void *, const char *, size_t), void *arg)
{
	for (const char *p = set; p && *p;) {
		const char *e = strchr(p, '\n');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		char line[1100];
		if (l < sizeof(line)) {
			memcpy(line, p, l);
			line[l] = 0;
			int r = fn(arg, line, l);
			if (r)
				return r;
		}
		p = e ? e + 1 : NULL;
	}
	return 0;
}

struct seen {
	uint32_t ids[4096];
	int n;
};

static int
check_one(void *arg, const char *f, size_t l)
{
	(void)l;
	struct seen *s = arg;
	uint32_t id = subid_of(f);
	for (int i = 0; i < s->n; i++)
		if (s->ids[i] == id)
			return 1;
	if (s->n == 4096)
		return 1;   /* more filters than we track: do without */
	s->ids[s->n++] = id;
	return 0;
}

int
subid_distinct(const char *set)
{
	struct seen s;
	s.n = 0;
	return each_line(set, check_one, &s) == 0;
}

struct pick {
	const uint32_t *ids;
	int n, found;
	buf *out;
};

static int
pick_one(void *arg, const char *f, size_t l)
{
	struct pick *p = arg;
	uint32_t id = subid_of(f);
	for (int i = 0; i < p->n; i++)
		if (p->ids[i] == id) {
			buf_add(p->out, f, l);
			buf_addc(p->out, '\n');
			p->found++;
			break;
		}
	return 0;
}

void
subid_filters(const char *set, const uint32_t *ids, int n, buf *out)
{
	if (n <= 0)
		return;
	size_t start = out->len;
	struct pick p = {ids, n, 0, out};
	each_line(set, pick_one, &p);
	/* Every id must name a filter of set (ids are distinct). */
	if (p.found != n) {
		out->len = start;
		if (out->data)
			out->data[start] = 0;
	}
}
