/* iotrules-bench-sql: the SQL engine on one core (issue 3's figures).
 *
 * For three statements — (a) a filter, (b) a 10-item projection with
 * functions and CASE, (c) a nested query over a 50-element array — and two
 * payloads (about 200 B and 2 KB), measures evaluations per second of
 * sql_ctx_begin + sql_run (parse the payload, WHERE, SELECT, write the
 * result), next to bare cJSON parse + print of the same payload in the same
 * run.  Then the whole engine (topic index, SQL, action parameters, job
 * envelope) with one rule loaded and with 10,000 rules of which one
 * matches, and the memory a loaded rule takes.
 *
 * Single-threaded.  Each figure is the best of --reps timed runs of
 * --ms milliseconds (the least disturbed by other load on the machine).
 * Prints a table, and with --json one JSON object per figure. */
#include <cjson/cJSON.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "evaluate/lib/engine.h"
#include "evaluate/lib/rules.h"
#include "evaluate/sql/sql.h"

static int run_ms = 700, reps = 3, json_out, no_engine;
static const char *only;   /* --case a|b|c: that statement only */

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Best rate (calls/s) of fn over reps runs of run_ms. */
static double
rate(void (*fn)(void *), void *arg)
{
	double best = 0;
	for (int r = 0; r < reps; r++) {
		long n = 0;
		double t0 = now_s(), t;
		do {
			for (int i = 0; i < 256; i++)
				fn(arg);
			n += 256;
			t = now_s();
		} while (t - t0 < run_ms / 1000.0);
		double x = (double)n / (t - t0);
		if (x > best)
			best = x;
	}
	return best;
}

/* ---- payloads ----------------------------------------------------------- */

static char small[512], small_obj[1024], large[4096];

static void
make_payloads(void)
{
	/* ~200 B: a typical telemetry object. */
	buf b = BUF_ZERO;
	buf_adds(&b, "{\"device\":\"dev-0042\",\"temp\":25.5,\"humidity\":61,\"pressure\":1013.25,\"battery\":0.87,"
	    "\"rssi\":-67,\"seq\":1234,\"status\":\"ok\",\"site\":{\"building\":\"B7\",\"floor\":3},"
	    "\"ts\":1700000000123,\"fw\":\"4.2.17\"}");
	snprintf(small, sizeof(small), "%.*s", (int)b.len, b.data);
	/* A nested query can only name members of object elements, and 50
	 * objects do not fit in 200 B: (c)'s small payload is the smallest
	 * that holds 50 one-key objects. */
	buf_reset(&b);
	buf_adds(&b, "{\"device\":\"dev-0042\",\"temp\":25.5,\"seq\":1234,\"readings\":[");
	for (int i = 0; i < 50; i++) {
		char x[16];
		snprintf(x, sizeof(x), "%s{\"v\":%d}", i ? "," : "", (i * 7) % 30);
		buf_adds(&b, x);
	}
	buf_adds(&b, "]}");
	snprintf(small_obj, sizeof(small_obj), "%.*s", (int)b.len, b.data);
	/* ~2 KB: more fields, and the 50 readings as objects. */
	buf_reset(&b);
	buf_adds(&b, "{\"device\":\"dev-0042\",\"temp\":25.5,\"seq\":1234,\"site\":{\"building\":\"B7\",\"floor\":3,"
	    "\"room\":\"lab-311\",\"geo\":{\"lat\":47.3769,\"lon\":8.5417}},\"firmware\":\"4.2.17-rc3\","
	    "\"battery\":0.87,\"rssi\":-67,\"tags\":[\"indoor\",\"hvac\",\"critical\"],"
	    "\"owner\":{\"team\":\"facilities-zurich\",\"contact\":\"ops@example.com\",\"escalation\":[\"l1\",\"l2\",\"l3\"]},"
	    "\"calibration\":{\"offset\":-0.25,\"gain\":1.013,\"date\":\"2026-10-01T08:00:00Z\",\"by\":\"tech-17\"},"
	    "\"readings\":[");
	for (int i = 0; i < 50; i++) {
		char x[64];
		snprintf(x, sizeof(x), "%s{\"n\":%d,\"v\":%d.%d,\"unit\":\"C\",\"ok\":%s}", i ? "," : "", i,
		    (i * 7) % 30, i % 10, i % 3 ? "true" : "false");
		buf_adds(&b, x);
	}
	buf_adds(&b, "]}");
	snprintf(large, sizeof(large), "%.*s", (int)b.len, b.data);
	buf_free(&b);
}

/* ---- bare cJSON ------------------------------------------------------------ */

static const char *cur_payload;
static size_t cur_len;

static void
bare_cjson(void *arg)
{
	(void)arg;
	cJSON *j = cJSON_ParseWithLength(cur_payload, cur_len);
	char *s = cJSON_PrintUnformatted(j);
	free(s);
	cJSON_Delete(j);
}

/* ---- the SQL engine -------------------------------------------------------- */

typedef struct sqlrun {
	sql_stmt *st;
	sql_ctx c;
	sql_msg m;
	buf out;
	long matched;
} sqlrun;

static void
one_sql(void *arg)
{
	sqlrun *r = arg;
	sql_error err;
	sql_ctx_begin(&r->c, &r->m);
	buf_reset(&r->out);
	if (sql_run(r->st, &r->c, &r->out, &err) == SQL_MATCH)
		r->matched++;
}

static const char *Q[3] = {
	"SELECT * FROM 'a/+' WHERE temp > 20",
	"SELECT device, upper(device) AS dev, temp * 1.8 + 32 AS temp_f, round(temp) AS t, abs(temp - 50) AS dist, "
	"concat(device, '-', seq) AS id, CASE WHEN temp > 30 THEN 'hot' WHEN temp > 20 THEN 'warm' ELSE 'cold' END AS band, "
	"timestamp() AS ts, topic(2) AS src, substring(device, 0, 3) AS kind FROM 'a/+'",
	"SELECT device, (SELECT VALUE v FROM readings WHERE v > 10) AS high FROM 'a/+'",
};

static void
report(const char *what, const char *payload_name, double r, double base)
{
	if (json_out)
		printf("{\"case\":\"%s\",\"payload\":\"%s\",\"per_s\":%.0f,\"bare_cjson_per_s\":%.0f,\"ratio\":%.3f}\n",
		    what, payload_name, r, base, base > 0 ? r / base : 0);
	else
		printf("%-34s %-6s %12.0f %12.0f %7.0f%%\n", what, payload_name, r, base, base > 0 ? 100 * r / base : 0);
}

static int
sql_cases(void)
{
	const char *names[3] = {"(a) filter", "(b) 10 items, functions, CASE", "(c) nested query, 50 elements"};
	const char *pl[2] = {small, large};
	if (!json_out)
		printf("%-34s %-6s %12s %12s %8s\n", "statement", "input", "evals/s", "cJSON p+p/s", "ratio");
	for (int p = 0; p < 2; p++) {
		for (int q = 0; q < 3; q++) {
			if (only && only[0] != 'a' + q)
				continue;
			/* (c) on the small size takes the object-array payload. */
			const char *payload = q == 2 && p == 0 ? small_obj : pl[p];
			char name[32];
			snprintf(name, sizeof(name), "%zuB", strlen(payload));
			cur_payload = payload;
			cur_len = strlen(payload);
			double base = rate(bare_cjson, NULL);
			sqlrun r = {0};
			sql_error err;
			const char *text = Q[q];
			r.st = sql_compile(text, SQL_2016, &err);
			if (r.st == NULL) {
				fprintf(stderr, "compile %s: %d:%d %s\n", text, err.line, err.col, err.msg);
				return 1;
			}
			sql_ctx_init(&r.c);
			r.m.topic = "a/dev-0042";
			r.m.payload = payload;
			r.m.payload_len = cur_len;
			r.m.timestamp_ms = 1700000000000;
			one_sql(&r);
			if (r.matched != 1) {
				fprintf(stderr, "statement %s did not match\n", text);
				return 1;
			}
			report(names[q], name, rate(one_sql, &r), base);
			sql_ctx_fini(&r.c);
			buf_free(&r.out);
			sql_free(r.st);
		}
	}
	return 0;
}

/* ---- the engine with 1 and 10,000 rules ------------------------------------ */

typedef struct engrun {
	ruleset *rs;
	sql_ctx c;
	buf msgbuf;
	envelope msg;
	engine_stats st;
	long jobs;
} engrun;

static void
count_job(void *arg, const envelope *job)
{
	(void)job;
	((engrun *)arg)->jobs++;
}

static void
one_engine(void *arg)
{
	engrun *e = arg;
	engine_run(e->rs, &e->c, &e->msg, count_job, e, &e->st);
}

static int
write_rules(const char *dir, int n)
{
	char path[4200];
	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/rule_%05d.json", dir, i);
		FILE *f = fopen(path, "w");
		if (f == NULL)
			return -1;
		/* Rule 0 matches the benchmark topic; the others listen on
		 * their own topics, some with wildcards. */
		if (i == 0)
			fprintf(f, "{\"sql\": \"SELECT * FROM 'a/+' WHERE temp > 20\", \"awsIotSqlVersion\": \"2016-03-23\", "
			           "\"actions\": [{\"republish\": {\"topic\": \"out/${topic(2)}\", \"qos\": 1}}]}\n");
		else
			fprintf(f, "{\"sql\": \"SELECT * FROM 'site%d/%s/telemetry' WHERE temp > %d\", \"awsIotSqlVersion\": \"2016-03-23\", "
			           "\"actions\": [{\"republish\": {\"topic\": \"out/%d/${topic(2)}\", \"qos\": 1}}]}\n",
			    i, i % 3 == 0 ? "+" : "dev", i % 50, i);
		fclose(f);
	}
	return 0;
}

static int
engine_cases(void)
{
	char dir[] = "/tmp/iotrules-bench-sql-XXXXXX";
	if (mkdtemp(dir) == NULL)
		return 1;
	char one[4200], many[4200], err[512];
	snprintf(one, sizeof(one), "%s/one", dir);
	snprintf(many, sizeof(many), "%s/many", dir);
	mkdir(one, 0755);
	mkdir(many, 0755);
	if (write_rules(one, 1) < 0 || write_rules(many, 10000) < 0)
		return 1;
	double rates[2] = {0, 0};
	size_t mem = 0;
	for (int k = 0; k < 2; k++) {
		struct mallinfo2 before = mallinfo2();
		engrun e = {0};
		e.rs = ruleset_load(k ? many : one, err, sizeof(err));
		struct mallinfo2 after = mallinfo2();
		if (e.rs == NULL) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		if (k)
			mem = (after.uordblks - before.uordblks) / (size_t)e.rs->n;
		sql_ctx_init(&e.c);
		e.msg.kind = ENV_MESSAGE;
		e.msg.s[ENV_TOPIC] = env_str("a/dev-0042");
		e.msg.s[ENV_CLIENTID] = env_str("");
		e.msg.s[ENV_PAYLOAD] = (env_slice){small, (uint32_t)strlen(small)};
		one_engine(&e);
		if (e.jobs != 1) {
			fprintf(stderr, "engine with %d rules emitted %ld jobs for one message\n", e.rs->n, e.jobs);
			return 1;
		}
		rates[k] = rate(one_engine, &e);
		sql_ctx_fini(&e.c);
		ruleset_free(e.rs);
	}
	if (json_out) {
		printf("{\"case\":\"engine, 1 rule\",\"payload\":\"200B\",\"per_s\":%.0f}\n", rates[0]);
		printf("{\"case\":\"engine, 10000 rules, 1 matches\",\"payload\":\"200B\",\"per_s\":%.0f,\"ratio_to_1_rule\":%.3f}\n",
		    rates[1], rates[1] / rates[0]);
		printf("{\"case\":\"memory per loaded rule\",\"bytes\":%zu}\n", mem);
	} else {
		printf("\n%-34s %-6s %12s %12s\n", "engine (index, SQL, params, job)", "input", "msgs/s", "vs 1 rule");
		printf("%-34s %-6s %12.0f\n", "1 rule", "200B", rates[0]);
		printf("%-34s %-6s %12.0f %11.0f%%\n", "10,000 rules, 1 matches", "200B", rates[1], 100 * rates[1] / rates[0]);
		printf("\nmemory per loaded rule (10,000 rules, malloc'd bytes): %zu\n", mem);
	}
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json_out = 1;
		else if (!strcmp(argv[i], "--ms") && i + 1 < argc)
			run_ms = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--case") && i + 1 < argc)
			only = argv[++i], no_engine = 1;
		else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
			reps = atoi(argv[++i]);
		else {
			printf("usage: iotrules-bench-sql [--ms MS] [--reps N] [--json] [--case a|b|c]\n");
			return !strcmp(argv[i], "--help") ? 0 : 1;
		}
	}
	make_payloads();
	if (!json_out)
		printf("# payloads: %zu B and %zu B; best of %d runs of %d ms; one thread\n", strlen(small), strlen(large), reps,
		    run_ms);
	if (sql_cases() != 0 || (!no_engine && engine_cases() != 0))
		return 1;
	return 0;
}
