/* fanout: hands batches of jobs to the jobs/<action>/ hops and waits until
 * every sink took its share.  Used by evaluate and the error handler,
 * the two stages that produce jobs.
 *
 * A fanout owns one hop_sender per action type, created on first use and
 * named after the producing instance (jobs/<action>/<name>.ipc).  A
 * fanout_batch collects one request's jobs grouped by action. */
#ifndef IOTRULES_FANOUT_H
#define IOTRULES_FANOUT_H

#include "common/buf.h"
#include "common/envelope.h"

#define FANOUT_MAX_TYPES 32

typedef struct fanout fanout;

typedef struct fanout_batch {
	int n;
	char type[FANOUT_MAX_TYPES][32];
	buf b[FANOUT_MAX_TYPES];
	uint64_t jobs;
} fanout_batch;

fanout *fanout_new(const char *run_dir, const char *name, int window);
/* Makes every fanout_send, running or later, return -1 soon (its hops
 * are shut down: hop_sender_shutdown).  For a stage that must stop while
 * a sink is gone.  Any thread; f stays valid until fanout_free. */
void fanout_shutdown(fanout *f);
void fanout_free(fanout *f);

void fanout_batch_reset(fanout_batch *b);
void fanout_batch_free(fanout_batch *b);
/* Adds a job to the group of its ENV_ACTION. */
void fanout_batch_add(fanout_batch *b, const envelope *job);

/* Sends every group and waits until each was accepted.  0, or -1 if a
 * hop could not be opened or closed meanwhile (send again later). */
int fanout_send(fanout *f, fanout_batch *b);

#endif
