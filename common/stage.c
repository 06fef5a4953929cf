#include "common/stage.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/envelope.h"
#include "common/log.h"

int
stage_input_opt(stage_input *in, int argc, char **argv, int *i)
{
	if (strcmp(argv[*i], "--spool-max-bytes") != 0)
		return 0;
	char *end;
	if (*i + 1 >= argc)
		return -1;
	unsigned long long v = strtoull(argv[++*i], &end, 10);
	if (*argv[*i] == 0 || *end != 0 || v == 0)
		return -1;
	in->spool_max = v;
	return 1;
}

/* A record's identity for duplicate dropping: kind, message id, action
 * index and the rule name's hash (KEY_LEN bytes); 0 for a malformed
 * record. */
enum { KEY_LEN = 23 };

static int
record_key(const char *rec, uint32_t n, unsigned char key[KEY_LEN])
{
	envelope e;
	if (env_decode(rec, n, &e) < 0)
		return 0;
	uint32_t h = 2166136261u;   /* FNV-1a of the rule name */
	for (uint32_t i = 0; i < e.s[ENV_RULE].n; i++)
		h = (h ^ (unsigned char)e.s[ENV_RULE].p[i]) * 16777619u;
	key[0] = e.kind;
	memcpy(key + 1, e.id, 16);
	memcpy(key + 17, &e.action_index, 2);
	memcpy(key + 19, &h, 4);
	return 1;
}

/* Looks each record of the batch up among those taken: keys gets, per
 * record, a status byte (0 no key, 1 new, 2 taken) and its key.  Only
 * when some were taken is the batch rebuilt without them into kept.  The
 * number taken. */
static uint32_t
sift(stage_input *in, const void *data, size_t len, buf *keys, buf *kept)
{
	env_iter it;
	const char *rec;
	uint32_t n, taken = 0;
	unsigned char k[1 + KEY_LEN];
	if (env_batch_open(&it, data, len) < 0)
		return 0;
	while (env_batch_next(&it, &rec, &n)) {
		k[0] = (unsigned char)record_key(rec, n, k + 1);
		if (k[0] && seen_has(in->taken, k + 1, KEY_LEN)) {
			k[0] = 2;
			taken++;
		}
		buf_add(keys, k, sizeof(k));
	}
	if (taken == 0)
		return 0;
	env_batch_open(&it, data, len);
	env_batch_begin(kept);
	for (size_t i = 0; env_batch_next(&it, &rec, &n); i++) {
		if (keys->data[i * sizeof(k)] == 2)
			continue;
		buf_add_u32(kept, n);
		buf_add(kept, rec, n);
	}
	env_batch_end(kept, 0);
	return taken;
}

static int
on_batch(void *arg, const void *data, size_t len)
{
	stage_input *in = arg;
	buf keys = BUF_ZERO, kept = BUF_ZERO;
	if (in->taken) {
		uint32_t dropped = sift(in, data, len, &keys, &kept);
		if (dropped) {
			log_info("%s hop: %u duplicate record(s) dropped (taken before a failover)",
			    in->what ? in->what : "input", dropped);
			if (kept.len <= 8) {     /* the header alone: all were taken */
				buf_free(&keys);
				buf_free(&kept);
				return HOP_OK;
			}
			data = kept.data;
			len = kept.len;
		}
	}
	int n = spool_append_batch(in->sp, data, len);
	/* Taken only once spooled: a batch refused here comes again. */
	for (size_t off = 0; n >= 0 && off + 1 + KEY_LEN <= keys.len; off += 1 + KEY_LEN)
		if (keys.data[off] == 1)
			seen_add(in->taken, keys.data + off + 1, KEY_LEN);
	buf_free(&keys);
	buf_free(&kept);
	if (n == SPOOL_EBATCH) {
		log_error("%s hop: malformed batch of %zu bytes dropped", in->what ? in->what : "input", len);
		return HOP_OK;
	}
	if (n < 0)
		return HOP_RETRY;
	proc_count_in((uint64_t)n);
	if (in->appended)
		in->appended();
	return HOP_OK;
}

int
stage_input_open(stage_input *in, const proc_conf *pc, const char *kind, const char *hopdir,
    int workers, char *err, size_t errcap)
{
	char path[4400], e[512];
	in->name = pc->name;
	snprintf(in->parent, sizeof(in->parent), "%s/%s", pc->state_dir, kind);
	snprintf(path, sizeof(path), "%s/%s", in->parent, pc->name);
	if (proc_mkdirs(path) < 0) {
		snprintf(err, errcap, "cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	spool_opts so = SPOOL_OPTS_DEFAULT;
	if (in->spool_max)
		so.max_bytes = in->spool_max;
	in->sp = spool_open(path, &so, e, sizeof(e));
	if (in->sp == NULL) {
		snprintf(err, errcap, "spool: %s", e);
		return -1;
	}
	if (strcmp(hop_transport(), "amqp") == 0 && (in->taken = seen_new(STAGE_SEEN)) == NULL) {
		snprintf(err, errcap, "out of memory");
		return -1;
	}
	in->rx = hop_receiver_open(pc->run_dir, hopdir, workers, on_batch, in, e, sizeof(e));
	if (in->rx == NULL) {
		snprintf(err, errcap, "%s hop: %s", hopdir, e);
		spool_close(in->sp);
		in->sp = NULL;
		return -1;
	}
	return 0;
}

int
stage_input_adopt(stage_input *in, void (*fn)(spool *orphan, const char *name, void *arg), void *arg)
{
	return spool_adopt_orphans(in->parent, in->name, fn, arg);
}

void
stage_input_stop(stage_input *in)
{
	spool_shutdown(in->sp);
	hop_receiver_close(in->rx);
	in->rx = NULL;
}

void
stage_input_close(stage_input *in)
{
	spool_close(in->sp);
	in->sp = NULL;
	seen_free(in->taken);
	in->taken = NULL;
}
