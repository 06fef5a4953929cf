/* iotrules-sql: evaluate one AWS IoT SQL statement (or a substitution
 * template) against one payload, offline.  The rule tester.
 *
 * Exit: 0 the rule fires (its result printed); 1 the topic or WHERE did
 * not match (no result printed, with or without --explain); 2 invalid
 * SQL, a failed statement or usage (one line on stderr). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "common/buf.h"
#include "common/version.h"
#include "evaluate/sql/sql.h"
#include "evaluate/lib/sqlaws.h"
#include "evaluate/lib/topic.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: iotrules-sql [--sql-version V] [--topic T] [--client-id C]\n"
	    "                    [--payload-file F] [--explain] SQL\n"
	    "       iotrules-sql [options] --template TEMPLATE\n"
	    "       iotrules-sql --help | --version\n"
	    "\n"
	    "Evaluates one AWS IoT SQL statement against one message, offline.\n"
	    "The payload is read from F, or from standard input without\n"
	    "--payload-file.  Options take their value as --opt VALUE or --opt=VALUE.\n"
	    "\n"
	    "  --sql-version V   2015-10-08 (default, as AWS), 2016-03-23 or beta\n"
	    "  --topic T         topic the message arrived on (default 't')\n"
	    "  --client-id C     MQTT client id of the publisher (also --clientid)\n"
	    "  --timestamp MS    value of timestamp(), epoch milliseconds (default: now)\n"
	    "  --mqtt-properties JSON   MQTT 5 publish properties for\n"
	    "                    get_mqtt_property/get_user_properties, e.g.\n"
	    "                    '{\"content_type\":\"text/plain\",\"format_indicator\":1,\n"
	    "                    \"user_properties\":[[\"env\",\"prod\"]]}'\n"
	    "  --principal P --source-ip IP --trace-id ID --account-id A\n"
	    "                    values of the context functions (default: Undefined;\n"
	    "                    also --sourceip, --traceid, --accountid)\n"
	    "  --template TPL    resolve a substitution template instead of SQL\n"
	    "  --aws             let get_dynamodb() and aws_lambda() call AWS (also\n"
	    "                    when AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_DYNAMODB or\n"
	    "                    AWS_ENDPOINT_URL_LAMBDA is set); otherwise they fail\n"
	    "                    the statement (exit 2)\n"
	    "  --explain         also print, per clause, the values computed (on\n"
	    "                    stdout, after the result when the rule fires)\n"
	    "  --version         print the version\n"
	    "\n"
	    "Exit status: 0 the rule fires (result printed); 1 the topic or WHERE\n"
	    "did not match (no result, with or without --explain); 2 invalid SQL,\n"
	    "a failed statement or usage.\n");
}

/* A usage error: one line, exit 2. */
static int
bad_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "iotrules-sql: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see iotrules-sql --help)\n");
	return 2;
}

static int
read_all(FILE *f, buf *b)
{
	char tmp[65536];
	size_t n;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		buf_add(b, tmp, n);
	return ferror(f) ? -1 : 0;
}

/* An endpoint for DynamoDB or Lambda is configured in the environment. */
static int
endpoint_set(void)
{
	static const char *const vars[] = {"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_LAMBDA"};
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		if (getenv(vars[i]) && getenv(vars[i])[0])
			return 1;
	return 0;
}

/* What the command line asks for. */
typedef struct args {
	const char *version, *topic, *pfile, *tpl, *sql;
	sql_msg msg;
	int explain, aws;
} args;

/* Parses argv into a; 0, or the exit code (--help, --version: 0 after
 * printing; a usage error: 2 after its one line) plus 1 in *stop. */
static int
parse_args(int argc, char **argv, args *a, int *stop)
{
	/* The first name of each is the documented one; the others are the
	 * spellings of earlier releases, kept for scripts. */
	static const struct option opts[] = {
	    {"sql-version", required_argument, 0, 'v'},
	    {"topic", required_argument, 0, 't'},
	    {"client-id", required_argument, 0, 'c'},
	    {"clientid", required_argument, 0, 'c'},
	    {"payload-file", required_argument, 0, 'p'},
	    {"template", required_argument, 0, 'T'},
	    {"timestamp", required_argument, 0, 's'},
	    {"explain", no_argument, 0, 'e'},
	    {"mqtt-properties", required_argument, 0, 'P'},
	    {"principal", required_argument, 0, 'r'},
	    {"source-ip", required_argument, 0, 'i'},
	    {"sourceip", required_argument, 0, 'i'},
	    {"trace-id", required_argument, 0, 'd'},
	    {"traceid", required_argument, 0, 'd'},
	    {"account-id", required_argument, 0, 'a'},
	    {"accountid", required_argument, 0, 'a'},
	    {"aws", no_argument, 0, 'A'},
	    {"help", no_argument, 0, 'h'},
	    {"version", no_argument, 0, 'V'},
	    {0, 0, 0, 0}};
	struct timeval tv;
	gettimeofday(&tv, NULL);
	a->msg.timestamp_ms = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
	a->topic = "t";
	*stop = 1;
	opterr = 0;   /* the messages below are ours: one line each */
	int c;
	char *end;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'v': a->version = optarg; break;
		case 't': a->topic = optarg; break;
		case 'c': a->msg.clientid = optarg; break;
		case 'p': a->pfile = optarg; break;
		case 'T': a->tpl = optarg; break;
		case 's':
			errno = 0;
			a->msg.timestamp_ms = strtoll(optarg, &end, 10);
			if (errno || end == optarg || *end)
				return bad_usage("--timestamp '%s' is not a whole number of milliseconds", optarg);
			break;
		case 'e': a->explain = 1; break;
		case 'P': a->msg.mqtt_props = optarg; break;
		case 'r': a->msg.principal = optarg; break;
		case 'i': a->msg.sourceip = optarg; break;
		case 'd': a->msg.traceid = optarg; break;
		case 'a': a->msg.accountid = optarg; break;
		case 'A': a->aws = 1; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("iotrules-sql %s\n", IOTRULES_VERSION); return 0;
		case ':': return bad_usage("option '%s' needs a value", argv[optind - 1]);
		default: return bad_usage("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (a->tpl == NULL && optind >= argc)
		return bad_usage("no SQL statement given%s", "");
	if (optind + (a->tpl ? 0 : 1) < argc)
		return bad_usage(a->tpl ? "'%s': --template takes no SQL statement" : "'%s': one SQL statement only "
		    "(quote it)", argv[a->tpl ? optind : optind + 1]);
	a->sql = a->tpl ? NULL : argv[optind];
	a->msg.topic = a->topic;
	a->msg.mqtt_props_len = a->msg.mqtt_props ? strlen(a->msg.mqtt_props) : 0;
	*stop = 0;
	return 0;
}

static int
run_template(const args *a, enum sql_version ver, sql_ctx *ctx)
{
	sql_error err;
	sql_template *t = sql_template_compile(a->tpl, ver, &err);
	if (t == NULL) {
		fprintf(stderr, "iotrules-sql: template: line %d, column %d: %s\n", err.line, err.col, err.msg);
		return 2;
	}
	buf out = BUF_ZERO;
	sql_template_render(t, NULL, ctx, &out);
	fwrite(out.data ? out.data : "", 1, out.len, stdout);
	fputc('\n', stdout);
	buf_free(&out);
	sql_template_free(t);
	return 0;
}

/* The rule fires (0: its result printed), does not (1: nothing but the
 * explanation), or fails (2).  --explain adds the explanation and never
 * changes which. */
static int
run_sql(const args *a, enum sql_version ver, sql_ctx *ctx)
{
	sql_error err;
	sql_stmt *st = sql_compile(a->sql, ver, &err);
	if (st == NULL) {
		fprintf(stderr, "iotrules-sql: line %d, column %d: %s\n", err.line, err.col, err.msg);
		return 2;
	}
	if (sql_stmt_warning(st))
		fprintf(stderr, "iotrules-sql: warning: %s\n", sql_stmt_warning(st));
	const char *from = sql_stmt_from(st);
	const char *rule, *rest = topic_basic_ingest(a->topic, &rule, &(size_t){0});
	int rc = 0;
	if (from && !topic_matches(from, rest ? rest : a->topic)) {
		if (a->explain)
			printf("FROM '%s' does not match topic '%s' -> rule does not fire\n", from, a->topic);
		sql_free(st);
		return 1;
	}
	buf out = BUF_ZERO;
	enum sql_result r = sql_run(st, ctx, &out, &err);
	if (r == SQL_FAIL) {
		fprintf(stderr, "iotrules-sql: %s\n", err.msg);
		rc = 2;
	} else if (r == SQL_NOMATCH) {
		rc = 1;
	} else {
		fwrite(out.data ? out.data : "", 1, out.len, stdout);
		fputc('\n', stdout);
	}
	if (a->explain) {
		buf ex = BUF_ZERO;
		sql_explain(st, ctx, &ex);
		const char *text = ex.data ? ex.data : "";
		/* A rule that does not fire has no result: the SELECT lines
		 * (values it would have had) are left out. */
		const char *sel = strncmp(text, "SELECT ", 7) == 0 ? text : strstr(text, "\nSELECT ");
		if (rc != 0 && sel) {
			fwrite(text, 1, (size_t)(sel - text) + (sel != text), stdout);
			printf("SELECT not evaluated: the rule does not fire\n");
		} else
			fputs(text, stdout);
		buf_free(&ex);
	}
	buf_free(&out);
	sql_free(st);
	return rc;
}

int
main(int argc, char **argv)
{
	args a = {0};
	int stop, rc = parse_args(argc, argv, &a, &stop);
	if (stop)
		return rc;
	enum sql_version ver;
	if (sql_version_parse(a.version, &ver) < 0)
		return bad_usage("unknown --sql-version '%s' (2015-10-08, 2016-03-23 or beta)", a.version);
	if (a.version && strcmp(a.version, "beta") == 0)
		fprintf(stderr, "iotrules-sql: warning: SQL version 'beta' is treated as 2016-03-23\n");
	buf payload = BUF_ZERO;
	FILE *f = a.pfile ? fopen(a.pfile, "rb") : stdin;
	if (f == NULL) {
		fprintf(stderr, "iotrules-sql: %s: %s\n", a.pfile, strerror(errno));
		return 2;
	}
	int rerr = read_all(f, &payload);
	if (a.pfile)
		fclose(f);
	if (rerr < 0) {
		fprintf(stderr, "iotrules-sql: %s: read error\n", a.pfile ? a.pfile : "stdin");
		buf_free(&payload);
		return 2;
	}
	a.msg.payload = payload.data ? payload.data : "";
	a.msg.payload_len = payload.len;
	sql_ctx ctx;
	sql_ctx_init(&ctx);
	if (a.aws || endpoint_set())
		ctx.ext = sqlaws_external();
	sql_ctx_begin(&ctx, &a.msg);
	rc = a.tpl ? run_template(&a, ver, &ctx) : run_sql(&a, ver, &ctx);
	buf_free(&payload);
	sql_ctx_fini(&ctx);
	sqlaws_close();
	return rc;
}
