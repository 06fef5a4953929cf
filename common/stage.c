#include "common/stage.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static int
on_batch(void *arg, const void *data, size_t len)
{
	stage_input *in = arg;
	int n = spool_append_batch(in->sp, data, len);
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
}
