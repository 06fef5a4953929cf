/* iotrules-sink-stdout: writes jobs as JSON lines on stdout, for shell
 * pipelines and debugging.  --action NAME chooses which action's jobs it
 * takes (default "stdout"), so it can stand in for any sink. */
#include <stdio.h>
#include <string.h>

#include "sinks/lib/sink.h"

static char action[64] = "stdout";

static void
write_value(FILE *f, env_slice s)
{
	buf b = BUF_ZERO;
	/* Results are JSON, except binary passthrough: those go as strings. */
	int json = s.n > 0 && (s.p[0] == '{' || s.p[0] == '[' || s.p[0] == '"');
	if (json)
		buf_add(&b, s.p, s.n);
	else
		buf_add_json_str(&b, s.p, s.n);
	fwrite(b.data, 1, b.len, f);
	buf_free(&b);
}

static void
send_jobs(void *state, sink_job **jobs, int n)
{
	(void)state;
	for (int i = 0; i < n; i++) {
		const envelope *j = &jobs[i]->env;
		char id[37];
		env_id_str(j, id);
		buf b = BUF_ZERO;
		buf_adds(&b, "{\"id\":\"");
		buf_adds(&b, id);
		buf_adds(&b, "\",\"rule\":");
		buf_add_json_str(&b, j->s[ENV_RULE].p, j->s[ENV_RULE].n);
		buf_adds(&b, ",\"action\":");
		buf_add_json_str(&b, j->s[ENV_ACTION].p, j->s[ENV_ACTION].n);
		buf_adds(&b, ",\"topic\":");
		buf_add_json_str(&b, j->s[ENV_TOPIC].p, j->s[ENV_TOPIC].n);
		buf_adds(&b, ",\"params\":");
		fwrite(b.data, 1, b.len, stdout);
		write_value(stdout, j->s[ENV_PARAMS]);
		fputs(",\"result\":", stdout);
		write_value(stdout, j->s[ENV_RESULT]);
		fputs("}\n", stdout);
		buf_free(&b);
	}
	/* A line is delivered only once it left our buffer: judge after the
	 * flush (a full pipe or disk shows up there, not in fwrite). */
	int failed = fflush(stdout) != 0 || ferror(stdout);
	clearerr(stdout);
	for (int i = 0; i < n; i++) {
		snprintf(jobs[i]->resource, sizeof(jobs[i]->resource), "stdout");
		if (failed)
			sink_job_fail(jobs[i], SINK_RETRY, "Failed to write to standard output", "a write error");
		else
			sink_job_done(jobs[i], SINK_OK);
	}
}

static int
option(void *state, int argc, char **argv, int *i)
{
	(void)state;
	if (strcmp(argv[*i], "--action") != 0)
		return 0;
	if (*i + 1 >= argc)
		return -1;
	snprintf(action, sizeof(action), "%s", argv[++*i]);
	return 1;
}

int
main(int argc, char **argv)
{
	sink_ops ops = {0};
	/* --action must be known before sink_main names the hop. */
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--action") == 0 && i + 1 < argc)
			snprintf(action, sizeof(action), "%s", argv[i + 1]);
		else if (strncmp(argv[i], "--action=", 9) == 0)
			snprintf(action, sizeof(action), "%s", argv[i] + 9);
	ops.action = action;
	ops.usage = "  --action NAME    take the jobs of this action (default stdout)\n";
	ops.option = option;
	ops.send = send_jobs;
	ops.batch_max = 256;
	ops.max_inflight = 1;   /* lines keep their spool order */
	return sink_main(argc, argv, &ops);
}
