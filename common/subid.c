#include "common/subid.h"

#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

uint32_t
subid_of(const char *filter)
{
	unsigned char d[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)filter, strlen(filter), d);
	uint32_t v = ((uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3]) & 0x0FFFFFFFu;
	return v ? v : 1;
}

void
subid_table_free(subid_table *t)
{
	for (int i = 0; i < t->n; i++)
		free(t->filter[i]);
	free(t->filter);
	free(t->id);
	*t = (subid_table)SUBID_TABLE_ZERO;
}

int
subid_table_build(subid_table *t, const char *set)
{
	int lines = 0;
	for (const char *p = set; p && *p; p++)
		lines += *p == '\n';
	*t = (subid_table)SUBID_TABLE_ZERO;
	if (lines == 0)
		return 0;
	t->id = calloc((size_t)lines, sizeof(*t->id));
	t->filter = calloc((size_t)lines, sizeof(*t->filter));
	if (t->id == NULL || t->filter == NULL)
		abort();   /* as buf does */
	for (const char *p = set; *p;) {
		const char *e = strchr(p, '\n');
		if (e == NULL)
			break;
		char *f = strndup(p, (size_t)(e - p));
		if (f == NULL)
			abort();
		uint32_t id = subid_of(f);
		for (int i = 0; i < t->n; i++)
			if (t->id[i] == id) {
				free(f);
				subid_table_free(t);
				return -1;
			}
		t->id[t->n] = id;
		t->filter[t->n++] = f;
		p = e + 1;
	}
	return 0;
}

void
subid_filters(const subid_table *t, const uint32_t *ids, int n, buf *out)
{
	size_t start = out->len;
	for (int k = 0; k < n; k++) {
		int i = 0;
		while (i < t->n && t->id[i] != ids[k])
			i++;
		if (i == t->n) {
			/* Not one of ours: the copy is unattributed. */
			out->len = start;
			if (out->data)
				out->data[start] = 0;
			return;
		}
		buf_adds(out, t->filter[i]);
		buf_addc(out, '\n');
	}
}
