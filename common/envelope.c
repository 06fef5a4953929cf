#include "common/envelope.h"

#include <string.h>
#include <uuid/uuid.h>

#define ENV_HEADER 32

static uint32_t
rd32(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;
	return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}

static uint16_t
rd16(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;
	return (uint16_t)(u[0] | u[1] << 8);
}

void
env_append(buf *b, const envelope *e)
{
	size_t total = ENV_HEADER;
	for (int i = 0; i < ENV_NSLICES; i++)
		total += 4 + e->s[i].n;
	buf_reserve(b, total + 4);
	buf_add_u32(b, (uint32_t)total);
	unsigned char h[16] = {e->kind, e->qos, (unsigned char)e->action_index,
	    (unsigned char)(e->action_index >> 8), (unsigned char)e->action_count,
	    (unsigned char)(e->action_count >> 8), 0, 0};
	buf_add(b, h, 8);
	buf_add_u64(b, e->ts_ms);
	buf_add(b, e->id, 16);
	for (int i = 0; i < ENV_NSLICES; i++) {
		buf_add_u32(b, e->s[i].n);
		buf_add(b, e->s[i].p, e->s[i].n);
	}
}

int
env_decode(const char *p, size_t n, envelope *e)
{
	if (n < ENV_HEADER)
		return -1;
	e->kind = (uint8_t)p[0];
	e->qos = (uint8_t)p[1];
	e->action_index = rd16(p + 2);
	e->action_count = rd16(p + 4);
	e->ts_ms = (uint64_t)rd32(p + 8) | (uint64_t)rd32(p + 12) << 32;
	memcpy(e->id, p + 16, 16);
	size_t off = ENV_HEADER;
	for (int i = 0; i < ENV_NSLICES; i++) {
		if (off == n && i > ENV_ERROR) {
			e->s[i].p = p + off;   /* an older record: no such slice */
			e->s[i].n = 0;
			continue;
		}
		if (n - off < 4)
			return -1;
		uint32_t len = rd32(p + off);
		off += 4;
		if (len > n - off)
			return -1;
		e->s[i].p = p + off;
		e->s[i].n = len;
		off += len;
	}
	return off == n ? 0 : -1;
}

void
env_batch_begin(buf *b)
{
	buf_add_u32(b, ENV_BATCH_MAGIC);
	buf_add_u32(b, 0);
}

uint32_t
env_batch_end(buf *b, size_t start)
{
	uint32_t count = 0;
	size_t off = start + 8;
	while (off + 4 <= b->len) {
		off += 4 + rd32(b->data + off);
		count++;
	}
	unsigned char c[4] = {count, count >> 8, count >> 16, count >> 24};
	memcpy(b->data + start + 4, c, 4);
	return count;
}

int
env_batch_open(env_iter *it, const void *data, size_t len)
{
	const char *p = data;
	if (len < 8 || rd32(p) != ENV_BATCH_MAGIC)
		return -1;
	it->p = p + 8;
	it->end = p + len;
	it->left = rd32(p + 4);
	it->bad = 0;   /* callers declare the iterator uninitialised */
	return (int)it->left;
}

int
env_batch_next(env_iter *it, const char **rec, uint32_t *n)
{
	if (it->left == 0 || it->end - it->p < 4)
		return 0;
	uint32_t len = rd32(it->p);
	if ((size_t)(it->end - it->p - 4) < len)
		return -1;
	*rec = it->p + 4;
	*n = len;
	it->p += 4 + len;
	it->left--;
	return 1;
}

int
env_batch_next_env(env_iter *it, enum env_kind kind, envelope *e)
{
	const char *rec;
	uint32_t n;
	int r;
	while ((r = env_batch_next(it, &rec, &n)) > 0) {
		if (env_decode(rec, n, e) == 0 && e->kind == kind)
			return 1;
		it->bad++;
	}
	if (r < 0)
		it->bad++;
	return 0;
}

void
env_id_str(const envelope *e, char out[37])
{
	uuid_unparse_lower(e->id, out);
}
