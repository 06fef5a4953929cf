/* Unit tests of dest (the config's topic rule destinations) and of the
 * http action's pure parts in httpout: which destination covers a URL,
 * what a config entry may say, the verdict on a try (AWS's retry rules)
 * and the rule loader's check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/dest.h"
#include "sinks/lib/httpout.h"
#include "tests/unit/tap.h"

static char dir[] = "/tmp/iotrules-dest-XXXXXX";
static char path[256];

/* Writes a config whose "destinations" is list; dest_load's result. */
static int
load(const char *list, dest_list *l, char *err, size_t cap)
{
	FILE *f = fopen(path, "w");
	if (f == NULL)
		return -2;
	fprintf(f, "{\"broker\": \"mqtt://127.0.0.1:1883\", \"destinations\": %s}\n", list);
	fclose(f);
	return dest_load(path, l, err, cap);
}

static void
refused(const char *list, const char *want, const char *name)
{
	dest_list l;
	char err[800] = "";
	int rc = load(list, &l, err, sizeof(err));
	ok(rc == -1 && strstr(err, want) != NULL && strstr(err, path) != NULL, "refused: %s", name);
	if (rc == 0)
		dest_free(&l);
	else if (strstr(err, want) == NULL)
		printf("#   err: %s\n#   want: %s\n", err, want);
}

static int
check(const char *params_json, const dest_list *l, char *msg, size_t cap)
{
	cJSON *p = cJSON_Parse(params_json);
	msg[0] = 0;
	int rc = httpout_check_action(p, l, msg, cap);
	cJSON_Delete(p);
	return rc;
}

int
main(void)
{
	char err[800], ca[300];
	dest_list l;
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/config.json", dir);
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	FILE *f = fopen(ca, "w");
	fputs("not read here\n", f);
	fclose(f);

	ok(load("null", &l, err, sizeof(err)) == 0 && l.n == 0, "no destinations: an empty list");
	dest_free(&l);
	const char *good =
	    "[{\"arn\": \"a:main\", \"status\": \"ENABLED\", \"httpUrlConfiguration\": "
	    "{\"confirmationUrl\": \"https://h.example/ingest\"}, \"ca_file\": \"ca.pem\"},"
	    " {\"arn\": \"a:sub\", \"status\": \"DISABLED\", \"httpUrlConfiguration\": "
	    "{\"confirmationUrl\": \"https://h.example/ingest/sub\"}},"
	    " {\"arn\": \"a:host\", \"status\": \"IN_PROGRESS\", \"httpUrlConfiguration\": "
	    "{\"confirmationUrl\": \"https://other.example\"}},"
	    " {\"arn\": \"a:plain\", \"status\": \"ENABLED\", \"allow_http\": true, \"httpUrlConfiguration\": "
	    "{\"confirmationUrl\": \"http://127.0.0.1:8080\"}},"
	    " {\"arn\": \"a:vpc\", \"status\": \"ENABLED\", \"vpcConfiguration\": {\"vpcId\": \"v\"}, \"netns\": \"iot\"}]";
	int rc = load(good, &l, err, sizeof(err));
	ok(rc == 0 && l.n == 5, "five entries load (%s)", rc ? err : "ok");
	if (rc != 0)
		return 1;
	const dest *d = dest_find(&l, "a:main");
	ok(d && d->status == DEST_ENABLED && !d->vpc && d->ca_file && strcmp(d->ca_file, ca) == 0,
	    "ca_file is taken relative to the config's directory");
	d = dest_find(&l, "a:vpc");
	ok(d && d->vpc && d->netns && strcmp(d->netns, "iot") == 0 && d->confirmation_url == NULL,
	    "a VPC entry: its namespace");
	ok(dest_find(&l, "a:none") == NULL, "dest_find: an unknown arn");

	d = dest_for_url(&l, "https://h.example/ingest/dev1");
	is_str(d ? d->arn : "", "a:main", "a URL under a confirmationUrl is covered");
	d = dest_for_url(&l, "https://h.example/ingest/sub/x");
	is_str(d ? d->arn : "", "a:main", "the ENABLED cover wins over a longer DISABLED one");
	d = dest_for_url(&l, "https://other.example/x");
	is_str(d ? d->arn : "", "a:host", "a host-only confirmationUrl covers its paths (IN_PROGRESS reported)");
	ok(dest_for_url(&l, "https://other.example.evil.net/x") == NULL, "but not a longer host name");
	ok(dest_for_url(&l, "https://h.example/other") == NULL, "a URL outside every confirmationUrl: none");
	ok(dest_for_url(&l, "http://127.0.0.1:8080/p") != NULL && dest_for_url(&l, "http://127.0.0.1:80801/p") == NULL,
	    "a port is part of the host");
	ok(dest_url_covers("https://h.example/in", "https://h.example/in") &&
	    dest_url_covers("https://h.example", "https://h.example?x") &&
	    !dest_url_covers("https://h.example/in", "https://h.example/i"), "dest_url_covers");
	is_str(dest_status_name(DEST_IN_PROGRESS), "IN_PROGRESS", "status names");

	/* The loader's check. */
	char msg[600];
	ok(check("{\"url\": \"https://h.example/ingest/x\"}", &l, msg, sizeof(msg)) == 0, "check: a covered url: ok");
	ok(check("{\"url\": \"https://other.example/x\"}", &l, msg, sizeof(msg)) == 1 &&
	    strstr(msg, "https://other.example/x") && strstr(msg, "a:host is IN_PROGRESS"),
	    "check: an uncovered url loads with a warning naming it and the destination's state");
	ok(check("{\"url\": \"https://h.example/ingest/${topic()}\", \"confirmationUrl\": \"https://h.example/ingest\"}",
	    &l, msg, sizeof(msg)) == 0, "check: a templated url under an ENABLED confirmationUrl");
	ok(check("{\"url\": \"https://h.example/ingest/${topic()}\"}", &l, msg, sizeof(msg)) == -1 &&
	    strstr(msg, "confirmationUrl"), "check: a templated url without confirmationUrl is refused");
	ok(check("{\"url\": \"https://h.example/x\", \"confirmationUrl\": \"https://h.example/ingest\"}", &l, msg,
	    sizeof(msg)) == -1, "check: a confirmationUrl that is not a prefix is refused");
	ok(check("{\"url\": \"ftp://h.example/x\"}", &l, msg, sizeof(msg)) == -1, "check: not http(s): refused");
	ok(check("{\"url\": \"https://h.example/ingest\", \"method\": \"PUT\"}", &l, msg, sizeof(msg)) == -1 &&
	    strstr(msg, "method"), "check: an unknown parameter is refused");
	ok(check("{\"url\": \"https://h.example/ingest\", \"enableBatching\": true, \"batchConfig\": "
	    "{\"maxBatchSize\": 11}}", &l, msg, sizeof(msg)) == -1, "check: maxBatchSize 11 is refused");
	ok(check("{\"url\": \"https://h.example/ingest\", \"enableBatching\": true, \"batchConfig\": "
	    "{\"maxBatchSize\": 2, \"maxBatchSizeBytes\": 100, \"maxBatchOpenMs\": 200, \"batchAcrossTopics\": true}}",
	    &l, msg, sizeof(msg)) == 0, "check: batchConfig at its limits");
	ok(check("{\"url\": \"https://h.example/ingest\", \"auth\": {\"sigv4\": {\"signingRegion\": \"us-east-1\"}}}",
	    &l, msg, sizeof(msg)) == -1, "check: auth.sigv4 without serviceName and roleArn is refused");
	ok(check("{\"url\": \"https://h.example/ingest\", \"headers\": [{\"key\": \"\", \"value\": \"v\"}]}", &l, msg,
	    sizeof(msg)) == -1, "check: an empty header key is refused");
	dest_free(&l);

	refused("{}", "must be a list", "destinations not a list");
	refused("[{\"status\": \"ENABLED\", \"httpUrlConfiguration\": {\"confirmationUrl\": \"https://a\"}}]",
	    "destinations[0]: \"arn\"", "no arn");
	refused("[{\"arn\": \"x\", \"status\": \"ON\", \"httpUrlConfiguration\": {\"confirmationUrl\": \"https://a\"}}]",
	    "destinations[0] (x): \"status\"", "a bad status");
	refused("[{\"arn\": \"x\", \"status\": \"ENABLED\"}]", "exactly one of", "neither configuration");
	refused("[{\"arn\": \"x\", \"status\": \"ENABLED\", \"httpUrlConfiguration\": {\"confirmationUrl\": "
	    "\"http://a/b\"}}]", "allow_http", "plain http without allow_http");
	refused("[{\"arn\": \"x\", \"status\": \"ENABLED\", \"ca_file\": \"missing.pem\", \"httpUrlConfiguration\": "
	    "{\"confirmationUrl\": \"https://a/b\"}}]", "ca_file", "an unreadable ca_file");
	refused("[{\"arn\": \"x\", \"status\": \"ENABLED\", \"vpcConfiguration\": {}, \"netns\": \"../x\"}]",
	    "netns", "a netns that is not a name");
	refused("[{\"arn\": \"x\", \"status\": \"ENABLED\", \"vpcConfiguration\": {}, \"netns\": \"n\"},"
	    " {\"arn\": \"x\", \"status\": \"ENABLED\", \"vpcConfiguration\": {}, \"netns\": \"n\"}]",
	    "destinations[1] (x)", "a duplicate arn");

	/* The verdict on a try: AWS's rules (retry_s 0), then with a budget. */
	char why[200];
	ok(httpout_verdict(HTTPOUT_ANSWERED, 204, 0, 0, 0, 10, why, sizeof(why)) == SINK_OK, "2xx: OK");
	ok(httpout_verdict(HTTPOUT_ANSWERED, 429, 10, 0, 0, 10, why, sizeof(why)) == SINK_THROTTLED, "429: throttled");
	ok(httpout_verdict(HTTPOUT_ANSWERED, 503, 10, 0, 0, 10, why, sizeof(why)) == SINK_RETRY, "503: retried");
	ok(httpout_verdict(HTTPOUT_ANSWERED, 400, 10, 0, 0, 10, why, sizeof(why)) == SINK_FATAL, "400: final");
	ok(httpout_verdict(HTTPOUT_ANSWERED, 302, 10, 0, 3600, 10, why, sizeof(why)) == SINK_FATAL, "302: final");
	ok(httpout_verdict(HTTPOUT_ANSWERED, 500, 16385, 0, 3600, 10, why, sizeof(why)) == SINK_FATAL &&
	    strstr(why, "16384"), "a 16,385-byte answer stops retries, even with a budget");
	ok(httpout_verdict(HTTPOUT_ANSWERED, 500, 16384, 0, 0, 10, why, sizeof(why)) == SINK_RETRY,
	    "a 16,384-byte answer does not");
	ok(httpout_verdict(HTTPOUT_ANSWERED, 503, 10, 1, 3600, 10, why, sizeof(why)) == SINK_FATAL,
	    "Connection: close stops retries");
	ok(httpout_verdict(HTTPOUT_CLOSED, 0, 0, 0, 3600, 10, why, sizeof(why)) == SINK_FATAL,
	    "a connection closed without an answer is not retried");
	ok(httpout_verdict(HTTPOUT_NO_CONNECT, 0, 0, 0, 0, 10, why, sizeof(why)) == SINK_RETRY,
	    "connection refused: retried");
	ok(httpout_verdict(HTTPOUT_TIMEOUT, 0, 0, 0, 0, 3000, why, sizeof(why)) == SINK_FATAL &&
	    httpout_verdict(HTTPOUT_TIMEOUT, 0, 0, 0, 3600, 3000, why, sizeof(why)) == SINK_RETRY,
	    "a timeout: final under AWS's rules, retried with a budget");
	ok(httpout_verdict(HTTPOUT_ANSWERED, 503, 10, 0, 0, 3001, why, sizeof(why)) == SINK_FATAL &&
	    httpout_verdict(HTTPOUT_ANSWERED, 503, 10, 0, 60, 3001, why, sizeof(why)) == SINK_RETRY,
	    "past 3,000 ms since the first try: final under AWS's rules only");
	ok(httpout_verdict(HTTPOUT_TLS, 0, 0, 0, 3600, 10, why, sizeof(why)) == SINK_FATAL, "a TLS failure: final");

	unlink(ca);
	unlink(path);
	rmdir(dir);
	return done_testing();
}
