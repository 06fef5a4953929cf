/* awscall: test tool — sends one request (or --repeat N) with the AWS
 * client (common/aws.h) and prints, per request, one line
 *
 *   STATUS VERDICT CODE MESSAGE
 *
 * (CODE "-" when none; VERDICT OK, TRANSIENT, THROTTLED or PERMANENT)
 * followed by the answer's body and a newline.  Credentials, region and
 * endpoints come from the environment and the shared files, as for the
 * stages.  Exits 0 when every answer was OK, 1 when one was not, 100 on a
 * usage error, 111 when the client cannot open (its reason on stderr).
 *
 *   awscall --service firehose --endpoint-id FIREHOSE \
 *           --target Firehose_20150804.PutRecord \
 *           --content-type application/x-amz-json-1.1 --body '{...}'
 *
 * Options: --service S (required), --endpoint-id ID, --host TEMPLATE,
 * --target T, --content-type CT, --method M, --path P, --query Q,
 * --body TEXT | --body-file FILE, --header 'Name: value' (up to 8),
 * --bucket B (S3), --region R, --role-arn ARN, --assume-role,
 * --timeout-ms N, --repeat N, --interval-ms M. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/aws.h"
#include "common/buf.h"
#include "common/log.h"

static const char *const verdicts[] = {"OK", "TRANSIENT", "THROTTLED", "PERMANENT"};

static int
number(const char *opt, const char *s, int min)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > 1000000000) {
		fprintf(stderr, "awscall: %s: bad value \"%s\"\n", opt, s);
		exit(100);
	}
	return (int)v;
}

static int
read_file(const char *path, buf *out)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return -1;
	char tmp[65536];
	size_t n;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		buf_add(out, tmp, n);
	int bad = ferror(f);
	fclose(f);
	return bad ? -1 : 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"service", required_argument, NULL, 's'}, {"endpoint-id", required_argument, NULL, 'e'},
	    {"host", required_argument, NULL, 'H'}, {"target", required_argument, NULL, 't'},
	    {"content-type", required_argument, NULL, 'c'}, {"method", required_argument, NULL, 'm'},
	    {"path", required_argument, NULL, 'p'}, {"query", required_argument, NULL, 'q'},
	    {"body", required_argument, NULL, 'b'}, {"body-file", required_argument, NULL, 'f'},
	    {"header", required_argument, NULL, 'h'}, {"bucket", required_argument, NULL, 'B'},
	    {"region", required_argument, NULL, 'r'}, {"role-arn", required_argument, NULL, 'R'},
	    {"assume-role", no_argument, NULL, 'A'}, {"timeout-ms", required_argument, NULL, 'T'},
	    {"repeat", required_argument, NULL, 'n'}, {"interval-ms", required_argument, NULL, 'i'},
	    {NULL, 0, NULL, 0}};
	aws_request rq;
	aws_client_opts co;
	memset(&rq, 0, sizeof(rq));
	memset(&co, 0, sizeof(co));
	buf body = BUF_ZERO;
	int repeat = 1, interval = 0, nh = 0, o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 's': rq.service = optarg; break;
		case 'e': rq.endpoint_id = optarg; break;
		case 'H': rq.host = optarg; break;
		case 't': rq.target = optarg; break;
		case 'c': rq.content_type = optarg; break;
		case 'm': rq.method = optarg; break;
		case 'p': rq.path = optarg; break;
		case 'q': rq.query = optarg; break;
		case 'b': buf_reset(&body); buf_adds(&body, optarg); break;
		case 'f':
			buf_reset(&body);
			if (read_file(optarg, &body) < 0) {
				fprintf(stderr, "awscall: --body-file %s: %s\n", optarg, strerror(errno));
				return 100;
			}
			break;
		case 'h':
			if (nh == 8) {
				fprintf(stderr, "awscall: at most 8 --header\n");
				return 100;
			}
			rq.headers[nh++] = optarg;
			break;
		case 'B': rq.s3_bucket = optarg; break;
		case 'r': rq.region = optarg; break;
		case 'R': rq.role_arn = optarg; break;
		case 'A': co.assume_role = 1; break;
		case 'T': co.timeout_ms = number("--timeout-ms", optarg, 1); break;
		case 'n': repeat = number("--repeat", optarg, 1); break;
		case 'i': interval = number("--interval-ms", optarg, 0); break;
		default:
			fprintf(stderr, "usage: awscall --service S [options] (see tests/tools/awscall.c)\n");
			return 100;
		}
	}
	if (rq.service == NULL || optind != argc) {
		fprintf(stderr, "usage: awscall --service S [options] (see tests/tools/awscall.c)\n");
		return 100;
	}
	rq.body = body.data ? body.data : "";
	rq.body_len = body.len;
	log_init("awscall");
	char err[1024];
	aws_client *c = aws_client_open(&co, err, sizeof(err));
	if (c == NULL) {
		fprintf(stderr, "awscall: %s\n", err);
		buf_free(&body);
		return 111;
	}
	int bad = 0;
	for (int i = 0; i < repeat; i++) {
		if (i > 0 && interval > 0) {
			struct timespec ts = {interval / 1000, (long)(interval % 1000) * 1000000};
			nanosleep(&ts, NULL);
		}
		aws_response r;
		aws_call(c, &rq, &r);
		printf("%ld %s %s %s\n", r.status, verdicts[r.verdict], r.error_code[0] ? r.error_code : "-",
		    r.error_message);
		fwrite(r.body, 1, r.body_len, stdout);
		printf("\n");
		fflush(stdout);
		bad |= r.verdict != AWS_OK;
		aws_response_free(&r);
	}
	aws_client_close(c);
	buf_free(&body);
	return bad ? 1 : 0;
}
