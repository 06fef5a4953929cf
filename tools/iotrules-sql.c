/* iotrules-sql: evaluate one AWS IoT SQL statement (or a substitution
 * template) against one payload, offline.  The rule tester.
 *
 * Exit: 0 result printed; 1 the topic or WHERE did not match (nothing
 * printed); 2 invalid SQL or usage (message on stderr). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "common/buf.h"
#include "evaluate/sql/sql.h"
#include "evaluate/lib/sqlaws.h"
#include "evaluate/lib/topic.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: iotrules-sql [--sql-version V] [--topic T] [--clientid C]\n"
	    "                    [--payload-file F] [--explain] SQL\n"
	    "       iotrules-sql [options] --template TEMPLATE\n"
	    "\n"
	    "Evaluates one AWS IoT SQL statement against one message, offline.\n"
	    "The payload is read from F, or from standard input without\n"
	    "--payload-file.\n"
	    "\n"
	    "  --sql-version V   2015-10-08 (default, as AWS), 2016-03-23 or beta\n"
	    "  --topic T         topic the message arrived on (default 't')\n"
	    "  --clientid C      MQTT client id of the publisher\n"
	    "  --timestamp MS    value of timestamp() (default: now)\n"
	    "  --mqtt-properties JSON   MQTT 5 publish properties for\n"
	    "                    get_mqtt_property/get_user_properties, e.g.\n"
	    "                    '{\"content_type\":\"text/plain\",\"format_indicator\":1,\n"
	    "                    \"user_properties\":[[\"env\",\"prod\"]]}'\n"
	    "  --principal P --sourceip IP --traceid ID --accountid A\n"
	    "                    values of the context functions (default: Undefined)\n"
	    "  --template TPL    resolve a substitution template instead of SQL\n"
	    "  --aws             let get_dynamodb() and aws_lambda() call AWS (also\n"
	    "                    when AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_DYNAMODB or\n"
	    "                    AWS_ENDPOINT_URL_LAMBDA is set); otherwise they fail\n"
	    "                    the statement (exit 2)\n"
	    "  --explain         print, per clause, the values computed (stderr\n"
	    "                    stays quiet; the explanation goes to stdout\n"
	    "                    after the result)\n"
	    "\n"
	    "Exit status: 0 result printed; 1 topic or WHERE did not match;\n"
	    "2 invalid SQL or usage.\n");
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

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"sql-version", required_argument, 0, 'v'},
	    {"topic", required_argument, 0, 't'},
	    {"clientid", required_argument, 0, 'c'},
	    {"payload-file", required_argument, 0, 'p'},
	    {"template", required_argument, 0, 'T'},
	    {"timestamp", required_argument, 0, 's'},
	    {"explain", no_argument, 0, 'e'},
	    {"mqtt-properties", required_argument, 0, 'P'},
	    {"principal", required_argument, 0, 'r'},
	    {"sourceip", required_argument, 0, 'i'},
	    {"traceid", required_argument, 0, 'd'},
	    {"accountid", required_argument, 0, 'a'},
	    {"aws", no_argument, 0, 'A'},
	    {"help", no_argument, 0, 'h'},
	    {0, 0, 0, 0}};
	const char *version = NULL, *topic = "t", *clientid = NULL, *pfile = NULL;
	const char *tpl = NULL, *props = NULL, *principal = NULL, *sourceip = NULL, *traceid = NULL;
	const char *accountid = NULL;
	int explain = 0, aws = 0, c;
	struct timeval tv;
	gettimeofday(&tv, NULL);
	int64_t ts = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'v': version = optarg; break;
		case 't': topic = optarg; break;
		case 'c': clientid = optarg; break;
		case 'p': pfile = optarg; break;
		case 'T': tpl = optarg; break;
		case 's': ts = strtoll(optarg, NULL, 10); break;
		case 'e': explain = 1; break;
		case 'P': props = optarg; break;
		case 'r': principal = optarg; break;
		case 'i': sourceip = optarg; break;
		case 'd': traceid = optarg; break;
		case 'a': accountid = optarg; break;
		case 'A': aws = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if ((tpl == NULL) == (optind >= argc) || (tpl && optind < argc)) {
		usage(stderr);
		return 2;
	}
	enum sql_version ver;
	if (sql_version_parse(version, &ver) < 0) {
		fprintf(stderr, "iotrules-sql: unknown SQL version '%s' (use 2015-10-08, 2016-03-23 or beta)\n", version);
		return 2;
	}
	if (version && strcmp(version, "beta") == 0)
		fprintf(stderr, "iotrules-sql: warning: SQL version 'beta' is treated as 2016-03-23\n");

	buf payload = BUF_ZERO;
	FILE *f = pfile ? fopen(pfile, "rb") : stdin;
	if (f == NULL) {
		fprintf(stderr, "iotrules-sql: %s: %s\n", pfile, strerror(errno));
		return 2;
	}
	if (read_all(f, &payload) < 0) {
		fprintf(stderr, "iotrules-sql: %s: read error\n", pfile ? pfile : "stdin");
		return 2;
	}
	if (pfile)
		fclose(f);

	sql_msg msg = {0};
	msg.topic = topic;
	msg.clientid = clientid;
	msg.payload = payload.data ? payload.data : "";
	msg.payload_len = payload.len;
	msg.timestamp_ms = ts;
	msg.principal = principal;
	msg.sourceip = sourceip;
	msg.traceid = traceid;
	msg.accountid = accountid;
	msg.mqtt_props = props;
	msg.mqtt_props_len = props ? strlen(props) : 0;
	sql_ctx ctx;
	sql_ctx_init(&ctx);
	if (aws || endpoint_set())
		ctx.ext = sqlaws_external();
	sql_ctx_begin(&ctx, &msg);
	sql_error err;
	buf out = BUF_ZERO;
	int rc = 0;

	if (tpl) {
		sql_template *t = sql_template_compile(tpl, ver, &err);
		if (t == NULL) {
			fprintf(stderr, "iotrules-sql: template: line %d, column %d: %s\n", err.line, err.col, err.msg);
			rc = 2;
			goto done;
		}
		sql_template_render(t, NULL, &ctx, &out);
		fwrite(out.data ? out.data : "", 1, out.len, stdout);
		fputc('\n', stdout);
		sql_template_free(t);
		goto done;
	}

	sql_stmt *st = sql_compile(argv[optind], ver, &err);
	if (st == NULL) {
		fprintf(stderr, "iotrules-sql: line %d, column %d: %s\n", err.line, err.col, err.msg);
		rc = 2;
		goto done;
	}
	if (sql_stmt_warning(st))
		fprintf(stderr, "iotrules-sql: warning: %s\n", sql_stmt_warning(st));
	const char *from = sql_stmt_from(st);
	const char *rule, *rest = topic_basic_ingest(topic, &rule, &(size_t){0});
	if (from && !topic_matches(from, rest ? rest : topic)) {
		if (explain)
			printf("FROM '%s' does not match topic '%s' -> rule does not fire\n", from, topic);
		rc = explain ? 0 : 1;
		if (!explain)
			goto free_st;
	}
	if (rc == 0) {
		enum sql_result r = sql_run(st, &ctx, &out, &err);
		if (r == SQL_FAIL) {
			fprintf(stderr, "iotrules-sql: %s\n", err.msg);
			rc = 2;
		} else if (r == SQL_NOMATCH) {
			rc = 1;
		} else {
			fwrite(out.data ? out.data : "", 1, out.len, stdout);
			fputc('\n', stdout);
		}
		if (explain) {
			buf ex = BUF_ZERO;
			sql_explain(st, &ctx, &ex);
			fputs(ex.data ? ex.data : "", stdout);
			buf_free(&ex);
		}
	}
free_st:
	sql_free(st);
done:
	buf_free(&out);
	buf_free(&payload);
	sql_ctx_fini(&ctx);
	sqlaws_close();
	return rc;
}
