/* The supervisor's Prometheus text rendering (supervisor/metrics.c):
 * label escaping, the families and their HELP/TYPE lines, the histogram's
 * cumulative buckets.  The supervisor's modules are not in libiotrules.a
 * (the Makefile builds them into iotrules-supervisor only), so the
 * rendering is compiled in here; its socket half is not called. */
#include "tests/unit/tap.h"

#include "supervisor/metrics.c"

static int
has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == 0))
			return 1;
	return 0;
}

static void
label(const char *in, const char *want, const char *name)
{
	buf b = BUF_ZERO;
	metrics_label_value(&b, in);
	is_str(b.data ? b.data : "", want, name);
	buf_free(&b);
}

int
main(void)
{
	label("plain_rule", "plain_rule", "a plain value is as it is");
	label("a\\b\"c\nd", "a\\\\b\\\"c\\nd", "backslash, quote and newline are escaped");
	label("caf\xc3\xa9", "caf\xc3\xa9", "UTF-8 stays");
	label("x\xff" "y", "x\xef\xbf\xbdy", "a byte that is not UTF-8 becomes U+FFFD");

	stats_view v = STATS_VIEW_ZERO;
	stats_stage st[3];
	memset(st, 0, sizeof(st));
	snprintf(st[0].stage, sizeof(st[0].stage), "ingest");
	st[0].has_spool = 1;
	st[0].spool_messages = 7;
	st[0].spool_bytes = 700;
	st[0].spool_oldest_ms = 1500;
	st[0].restarts = 2;
	st[0].in = 10;
	snprintf(st[1].stage, sizeof(st[1].stage), "evaluate");
	snprintf(st[2].stage, sizeof(st[2].stage), "sink-republish");
	st[2].out = 5;
	st[2].failed = 1;
	st[2].retried = 3;
	st[2].has_lat = 1;
	st[2].lat.counts[0] = 2;            /* <= 1 ms */
	st[2].lat.counts[3] = 2;            /* <= 10 ms */
	st[2].lat.counts[PROC_LATENCY_NLE] = 1;   /* beyond 300 s */
	st[2].lat.sum_ms = 301234;
	v.stage = st;
	v.nstage = 3;
	stats_rule r[2] = {{"we\"ird", 4, 3, 1, 0}, {"warm", 10, 7, 2, 1}};
	v.rule = r;
	v.nrule = 2;

	buf out = BUF_ZERO;
	metrics_render(&v, &out);
	const char *t = out.data;
	ok(has_line(t, "# TYPE iotrules_rule_matched_total counter"), "rule counters are typed counter");
	ok(has_line(t, "iotrules_rule_matched_total{rule=\"we\\\"ird\"} 4"), "a rule name's quote is escaped");
	ok(has_line(t, "iotrules_rule_fired_total{rule=\"warm\"} 7") &&
	    has_line(t, "iotrules_rule_no_result_total{rule=\"warm\"} 2") &&
	    has_line(t, "iotrules_rule_sql_errors_total{rule=\"warm\"} 1"), "fired, no result and SQL errors per rule");
	ok(has_line(t, "iotrules_action_delivered_total{action=\"republish\"} 5") &&
	    has_line(t, "iotrules_action_failed_total{action=\"republish\"} 1") &&
	    has_line(t, "iotrules_action_retried_total{action=\"republish\"} 3"), "per action, named without sink-");
	ok(!strstr(t, "action=\"ingest\"") && !strstr(t, "action=\"evaluate\""), "no action series for stages that are no sink");
	ok(has_line(t, "# TYPE iotrules_action_delivery_seconds histogram"), "the latency is a histogram");
	ok(has_line(t, "iotrules_action_delivery_seconds_bucket{action=\"republish\",le=\"0.001\"} 2") &&
	    has_line(t, "iotrules_action_delivery_seconds_bucket{action=\"republish\",le=\"0.005\"} 2") &&
	    has_line(t, "iotrules_action_delivery_seconds_bucket{action=\"republish\",le=\"0.01\"} 4") &&
	    has_line(t, "iotrules_action_delivery_seconds_bucket{action=\"republish\",le=\"300\"} 4") &&
	    has_line(t, "iotrules_action_delivery_seconds_bucket{action=\"republish\",le=\"+Inf\"} 5"),
	    "buckets are cumulative, +Inf last");
	ok(has_line(t, "iotrules_action_delivery_seconds_sum{action=\"republish\"} 301.234") &&
	    has_line(t, "iotrules_action_delivery_seconds_count{action=\"republish\"} 5"), "_sum in seconds, _count");
	ok(has_line(t, "iotrules_stage_spool_messages{stage=\"ingest\"} 7") &&
	    has_line(t, "iotrules_stage_spool_bytes{stage=\"ingest\"} 700") &&
	    has_line(t, "iotrules_stage_spool_oldest_seconds{stage=\"ingest\"} 1.500"), "spool gauges of a stage with a spool");
	ok(!strstr(t, "iotrules_stage_spool_messages{stage=\"evaluate\"}"), "none for a stage without one");
	ok(has_line(t, "iotrules_stage_restarts_total{stage=\"ingest\"} 2") &&
	    has_line(t, "iotrules_stage_restarts_total{stage=\"evaluate\"} 0"), "restarts of every stage");
	/* Every family has its HELP and TYPE before its first sample, once. */
	int fam_ok = 1, nfam = 0;
	char prev[128] = "";
	for (const char *p = t; *p;) {
		const char *e = strchr(p, '\n');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		char line[512];
		snprintf(line, sizeof(line), "%.*s", (int)n, p);
		if (strncmp(line, "# HELP ", 7) == 0) {
			nfam++;
			sscanf(line + 7, "%127s", prev);
		} else if (line[0] != '#') {
			char name[128];
			sscanf(line, "%127[^{ ]", name);
			size_t pl = strlen(prev);
			if (strncmp(name, prev, pl) != 0 ||
			    (name[pl] && strcmp(name + pl, "_bucket") && strcmp(name + pl, "_sum") && strcmp(name + pl, "_count")))
				fam_ok = 0;
		}
		p += n + (e != NULL);
	}
	ok(fam_ok && nfam >= 15, "each sample follows its own family's HELP (%d families)", nfam);
	buf_free(&out);

	stats_view empty = STATS_VIEW_ZERO;
	buf e = BUF_ZERO;
	metrics_render(&empty, &e);
	ok(e.len == 0, "nothing at all: no families");
	buf_free(&e);
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}
