/* Unit tests of get_secret, get_thing_shadow and get_registry_data: the
 * SQL side (arguments, results) through a fake host, and the parts of
 * evaluate/lib/sqlaws that need no network (picking from a secret, the
 * checks made before a request). */
#include <stdlib.h>
#include <string.h>

#include "evaluate/lib/sqlaws.h"
#include "evaluate/sql/sql.h"
#include "tests/unit/tap.h"

static char seen[1024];
static const char *answer;   /* NULL: the host fails with "nope" */

/* The fake host's answer: answer, or a failure saying "nope". */
static int
reply(buf *out, char *err, size_t cap)
{
	if (answer)
		buf_adds(out, answer);
	else
		snprintf(err, cap, "nope");
	return answer ? 0 : -1;
}

static int
fake_secret(const char *id, int binary, const char *key, const char *role, buf *out, char *err, size_t cap)
{
	snprintf(seen, sizeof(seen), "GetSecretValue %s %s %s %s", id, binary ? "binary" : "string",
	    key ? key : "-", role);
	return reply(out, err, cap);
}

static int
fake_shadow(const char *thing, const char *shadow, const char *role, buf *out, char *err, size_t cap)
{
	snprintf(seen, sizeof(seen), "GetThingShadow %s %s %s", thing, shadow ? shadow : "-", role);
	return reply(out, err, cap);
}

static int
fake_registry(const char *api, const char *thing, const char *role, buf *out, char *err, size_t cap)
{
	snprintf(seen, sizeof(seen), "%s %s %s", api, thing, role);
	return reply(out, err, cap);
}

static const sql_external host = {.get_secret = fake_secret, .get_thing_shadow = fake_shadow,
    .get_registry_data = fake_registry};

/* Runs text (2016-03-23) on payload with h: a statement's result,
 * "NOMATCH", "FAIL: msg" or "ERROR msg"; with tpl, text is a template
 * and the result its rendering. */
static const char *
eval_text(const char *text, int tpl, const char *payload, const sql_external *h)
{
	static char out[2048];
	sql_error err;
	sql_stmt *st = tpl ? NULL : sql_compile(text, SQL_2016, &err);
	sql_template *tp = tpl ? sql_template_compile(text, SQL_2016, &err) : NULL;
	seen[0] = 0;
	if (st == NULL && tp == NULL) {
		snprintf(out, sizeof(out), "ERROR %s", err.msg);
		return out;
	}
	sql_msg m = {.topic = "a/b", .payload = payload, .payload_len = strlen(payload), .timestamp_ms = 1};
	sql_ctx c;
	sql_ctx_init(&c);
	c.ext = h;
	sql_ctx_begin(&c, &m);
	buf b = BUF_ZERO;
	enum sql_result r = SQL_MATCH;
	if (tp)
		sql_template_render(tp, NULL, &c, &b);
	else
		r = sql_run(st, &c, &b, &err);
	if (r == SQL_FAIL)
		snprintf(out, sizeof(out), "FAIL: %s", err.msg);
	else
		snprintf(out, sizeof(out), "%s", r == SQL_MATCH ? (b.data ? b.data : "") : "NOMATCH");
	buf_free(&b);
	sql_ctx_fini(&c);
	sql_free(st);
	sql_template_free(tp);
	return out;
}

/* sqlaws_secret_pick's answer, or "ERR: why". */
static const char *
pick(const char *string, const char *binary, int want_binary, const char *key)
{
	static char out[512];
	char err[256] = "";
	buf b = BUF_ZERO;
	if (sqlaws_secret_pick(string, binary, want_binary, key, &b, err, sizeof(err)) < 0)
		snprintf(out, sizeof(out), "ERR: %s", err);
	else
		snprintf(out, sizeof(out), "%s", b.data ? b.data : "");
	buf_free(&b);
	return out;
}

int
main(void)
{
	const char *p = "{\"dev\":\"d7\",\"n\":3}";

	/* The SQL side, through the fake host: what the statement (or
	 * template) gives, and what the host was asked (NULL: not checked). */
	static const struct {
		int tpl;
		const char *text, *answer, *want, *asked, *name;
	} cases[] = {
	    {0, "SELECT get_secret('api-key', 'SecretString', 'arn:r') AS k FROM 'a/b'", "\"s3cr3t\"",
		"{\"k\":\"s3cr3t\"}", "GetSecretValue api-key string - arn:r",
		"get_secret without a key: the host's string, asked for the SecretString with the roleArn"},
	    {0, "SELECT get_secret('db', 'SecretString', 'creds', 'arn:r').port AS port FROM 'a/b'",
		"{\"user\":\"u\",\"port\":5432}", "{\"port\":5432}", "GetSecretValue db string creds arn:r",
		"get_secret with a key: the member's value as a value"},
	    {0, "SELECT get_secret('ks', 'SecretBinary', 'arn:r') AS b FROM 'a/b'", "\"AAEC\"", "{\"b\":\"AAEC\"}",
		"GetSecretValue ks binary - arn:r", "get_secret of a SecretBinary: base64 text"},
	    {0, "SELECT get_secret('ks', 'SecretBinary', 'k', 'arn:r') AS b FROM 'a/b'", "\"x\"",
		"FAIL: get_secret(): a key is not allowed with 'SecretBinary'", "", "a key with SecretBinary fails"},
	    {0, "SELECT get_secret('ks', 'secretstring', 'arn:r') AS b FROM 'a/b'", "\"x\"",
		"FAIL: get_secret(): the secretType must be 'SecretString' or 'SecretBinary'", "",
		"an unknown secretType fails"},
	    {0, "SELECT get_secret(n, 'SecretString', 'arn:r') AS b FROM 'a/b'", "\"x\"",
		"FAIL: get_secret(): the secretId, secretType, key and roleArn must be non-empty strings", "",
		"a secretId that is not a string fails"},
	    {0, "SELECT get_secret('x', 'SecretString', '', 'arn:r') AS b FROM 'a/b'", "\"x\"",
		"FAIL: get_secret(): the secretId, secretType, key and roleArn must be non-empty strings", "",
		"an empty key fails"},
	    {0, "SELECT get_secret('x', 'SecretString', 'arn:r') AS b FROM 'a/b'", NULL, "FAIL: get_secret(): nope",
		NULL, "the host's failure fails the statement, with its reason"},
	    {0, "SELECT get_secret('a', 'SecretString', 'arn:r') AS a, get_thing_shadow('t', 'arn:r') AS b FROM 'a/b'",
		NULL, "FAIL: get_secret(): nope", "GetSecretValue a string - arn:r",
		"after a failure no further call is made, and the first failure is reported"},
	    {1, "Bearer ${get_secret('api', 'SecretString', 'token', 'arn:r')}", "\"tok-1\"", "Bearer tok-1",
		"GetSecretValue api string token arn:r", "in a template the secret renders as its text"},
	    {0, "SELECT get_thing_shadow(dev, 'arn:r').state.reported.t AS t FROM 'a/b'",
		"{\"state\":{\"reported\":{\"t\":21}},\"version\":4}", "{\"t\":21}", "GetThingShadow d7 - arn:r",
		"get_thing_shadow: the classic shadow's document, addressable"},
	    {0, "SELECT get_thing_shadow(dev, 'cfg', 'arn:r').version AS v FROM 'a/b'", "{\"version\":4}",
		"{\"v\":4}", "GetThingShadow d7 cfg arn:r", "with a shadowName: that named shadow"},
	    {0, "SELECT get_thing_shadow(nothing, 'arn:r') AS s FROM 'a/b'", "{}",
		"FAIL: get_thing_shadow(): the thingName, shadowName and roleArn must be non-empty strings", "",
		"an Undefined thing name fails"},
	    {0, "SELECT get_registry_data('DescribeThing', dev, 'arn:r').attributes.room AS room FROM 'a/b'",
		"{\"thingName\":\"d7\",\"attributes\":{\"room\":\"r1\"}}", "{\"room\":\"r1\"}",
		"DescribeThing d7 arn:r", "get_registry_data DescribeThing: the thing's description"},
	    {0, "SELECT get_registry_data('ListThingGroupsForThing', dev, 'arn:r').thingGroups AS g FROM 'a/b'",
		"{\"thingGroups\":[]}", "{\"g\":[]}", "ListThingGroupsForThing d7 arn:r", "ListThingGroupsForThing too"},
	    {0, "SELECT get_registry_data('ListThings', dev, 'arn:r') AS g FROM 'a/b'", "{}",
		"FAIL: get_registry_data(): the registryAPI must be 'DescribeThing' or 'ListThingGroupsForThing'", "",
		"another registryAPI fails"},
	    {0, "SELECT get_registry_data('DescribeThing', dev, 'arn:r') AS g FROM 'a/b'", "not json",
		"FAIL: get_registry_data(): the answer is not JSON", NULL, "an answer that is not JSON fails"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		answer = cases[i].answer;
		const char *got = eval_text(cases[i].text, cases[i].tpl, p, &host);
		int asked_ok = cases[i].asked == NULL || strcmp(seen, cases[i].asked) == 0;
		ok(strcmp(got, cases[i].want) == 0 && asked_ok, "%s", cases[i].name);
		if (strcmp(got, cases[i].want) != 0 || !asked_ok)
			printf("#   got:   '%s'\n#   asked: '%s'\n", got, seen);
	}
	is_str(eval_text("SELECT get_secret('x', 'SecretString', 'arn:r') AS b FROM 'a/b'", 0, p, NULL),
	    "FAIL: get_secret(): needs AWS, which this evaluation is not set up to call", "no host: the statement fails");
	ok(strncmp(eval_text("SELECT get_secret('x', 'SecretString') AS b FROM 'a/b'", 0, p, &host), "ERROR", 5) == 0,
	    "get_secret with 2 arguments does not compile");
	sql_error cerr;
	sql_stmt *old = sql_compile("SELECT get_thing_shadow('t', 'arn:r') AS s FROM 'a/b'", SQL_2015, &cerr);
	ok(old == NULL, "get_thing_shadow needs SQL 2016-03-23 (%s)", old ? "compiled" : cerr.msg);
	sql_free(old);

	/* Picking from a secret. */
	is_str(pick("plain text", NULL, 0, NULL), "\"plain text\"", "SecretString, no key: the whole text as a string");
	is_str(pick("{\"a\":\"x\"}", NULL, 0, NULL), "\"{\\\"a\\\":\\\"x\\\"}\"", "... a JSON one too, as its text");
	is_str(pick("{\"a\":\"x\",\"b\":{\"c\":[1]}}", NULL, 0, "b"), "{\"c\":[1]}", "a key: that member as JSON");
	is_str(pick("{\"a\":\"x\"}", NULL, 0, "a"), "\"x\"", "a string member: a JSON string");
	is_str(pick("{\"a\":\"x\"}", NULL, 0, "z"), "ERR: the SecretString has no key z", "a missing key fails");
	is_str(pick("hunter2", NULL, 0, "a"), "ERR: the SecretString is not a JSON object, so it has no key a",
	    "a key into a text secret fails, without quoting the secret");
	is_str(pick(NULL, "AAEC", 1, NULL), "\"AAEC\"", "SecretBinary: the base64 text");
	is_str(pick("text", NULL, 1, NULL), "ERR: the secret has no SecretBinary (it holds a SecretString)",
	    "SecretBinary asked of a string secret fails");
	is_str(pick(NULL, "AAEC", 0, NULL), "ERR: the secret has no SecretString (it holds a SecretBinary)",
	    "SecretString asked of a binary secret fails");

	/* The real host's checks before any request. */
	const sql_external *real = sqlaws_external();
	char err[512] = "";
	buf out = BUF_ZERO;
	setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true", 1);
	ok(real->get_thing_shadow("dev-1", NULL, "arn:r", &out, err, sizeof(err)) < 0 &&
	    strstr(err, "no IoT data endpoint is configured") && strstr(err, "AWS_ENDPOINT_URL_IOT_DATA_PLANE"),
	    "get_thing_shadow without an endpoint fails naming the variable to set (%s)", err);
	ok(real->get_registry_data("DescribeThing", "dev-1", "arn:r", &out, err, sizeof(err)) < 0 &&
	    strstr(err, "no IoT endpoint is configured") && strstr(err, "AWS_ENDPOINT_URL_IOT "),
	    "get_registry_data without an endpoint fails naming the variable to set");
	ok(real->get_thing_shadow("arn:thing", NULL, "arn:r", &out, err, sizeof(err)) < 0 &&
	    strstr(err, "':' is signed wrongly"), "a thing name with ':' fails before any request");
	ok(out.len == 0, "nothing was answered");
	buf_free(&out);
	sqlaws_close();
	return done_testing();
}
