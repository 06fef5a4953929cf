/* Unit tests of the SQL lexer, parser and evaluator (evaluate/sql). */
#include <stdlib.h>
#include <string.h>

#include "evaluate/sql/sql.h"
#include "tests/unit/tap.h"

/* Runs sql on payload (topic a/b) with host as the external functions'
 * host; returns the result text, "NOMATCH", "FAIL: msg" or
 * "ERROR l:c msg". */
static const char *
run_host(const char *sql, const char *payload, enum sql_version ver, const sql_external *host)
{
	static char out[4096];
	sql_error err;
	sql_stmt *st = sql_compile(sql, ver, &err);
	if (st == NULL) {
		snprintf(out, sizeof(out), "ERROR %d:%d %s", err.line, err.col, err.msg);
		return out;
	}
	sql_msg m = {.topic = "a/b", .clientid = "c1", .payload = payload,
	    .payload_len = strlen(payload), .timestamp_ms = 1000};
	sql_ctx c;
	sql_ctx_init(&c);
	c.ext = host;
	sql_ctx_begin(&c, &m);
	buf b = BUF_ZERO;
	enum sql_result r = sql_run(st, &c, &b, &err);
	if (r == SQL_FAIL)
		snprintf(out, sizeof(out), "FAIL: %s", err.msg);
	else
		snprintf(out, sizeof(out), "%s", r == SQL_MATCH ? (b.data ? b.data : "") : "NOMATCH");
	buf_free(&b);
	sql_ctx_fini(&c);
	sql_free(st);
	return out;
}

/* The same without a host, a failure as "FAIL". */
static const char *
run(const char *sql, const char *payload, enum sql_version ver)
{
	const char *r = run_host(sql, payload, ver, NULL);
	return strncmp(r, "FAIL: ", 6) == 0 ? "FAIL" : r;
}

static const char *
tpl(const char *t, const char *payload)
{
	static char out[1024];
	sql_error err;
	sql_template *tp = sql_template_compile(t, SQL_2016, &err);
	if (tp == NULL) {
		snprintf(out, sizeof(out), "ERROR %d:%d %s", err.line, err.col, err.msg);
		return out;
	}
	sql_msg m = {.topic = "sensors/d7/telemetry", .payload = payload, .payload_len = strlen(payload)};
	sql_ctx c;
	sql_ctx_init(&c);
	sql_ctx_begin(&c, &m);
	buf b = BUF_ZERO;
	sql_template_render(tp, NULL, &c, &b);
	snprintf(out, sizeof(out), "%s", b.data ? b.data : "");
	buf_free(&b);
	sql_ctx_fini(&c);
	sql_template_free(tp);
	return out;
}

/* Runs sql with MQTT 5 properties and context values set. */
static const char *
run_ctx(const char *sql, const char *props)
{
	static char out[2048];
	sql_error err;
	sql_stmt *st = sql_compile(sql, SQL_2016, &err);
	if (st == NULL) {
		snprintf(out, sizeof(out), "ERROR %d:%d %s", err.line, err.col, err.msg);
		return out;
	}
	sql_msg m = {.topic = "a/b", .payload = "{}", .payload_len = 2, .traceid = "t-1", .accountid = "123456789012",
	    .principal = "p", .sourceip = "127.0.0.1", .mqtt_props = props, .mqtt_props_len = props ? strlen(props) : 0};
	sql_ctx c;
	sql_ctx_init(&c);
	sql_ctx_begin(&c, &m);
	buf b = BUF_ZERO;
	enum sql_result r = sql_run(st, &c, &b, &err);
	snprintf(out, sizeof(out), "%s", r == SQL_MATCH ? (b.data ? b.data : "") : "NOMATCH/FAIL");
	buf_free(&b);
	sql_ctx_fini(&c);
	sql_free(st);
	return out;
}

/* A fake host of the external functions: records what it was asked and
 * answers from fake_answer (NULL: fails with "no such thing"). */
static char fake_seen[1024];
static const char *fake_answer;

static int
fake_get_item(const char *table, const char *key, const char *role, buf *out, char *err, size_t cap)
{
	snprintf(fake_seen, sizeof(fake_seen), "GetItem %s %s %s", table, key, role);
	if (fake_answer == NULL) {
		snprintf(err, cap, "no such thing");
		return -1;
	}
	buf_adds(out, fake_answer);
	return 0;
}

static int
fake_invoke(const char *fn, const void *p, size_t n, const char *role, buf *out, char *err, size_t cap)
{
	(void)role;
	snprintf(fake_seen, sizeof(fake_seen), "Invoke %s %.*s", fn, (int)n, (const char *)p);
	if (fake_answer == NULL) {
		snprintf(err, cap, "no such thing");
		return -1;
	}
	buf_adds(out, fake_answer);
	return 0;
}

static const sql_external fake_host = {.get_item = fake_get_item, .invoke = fake_invoke};

static const char *
run_ext(const char *sql, const char *payload, const sql_external *host)
{
	fake_seen[0] = 0;
	return run_host(sql, payload, SQL_2016, host);
}

int
main(void)
{
	const char *p = "{\"device\":\"d1\",\"temp\":25,\"a\":{\"b\":[1,2,{\"c\":3}]}}";
	is_str(run("SELECT device, temp * 1.8 + 32 AS temp_f FROM 'a/+' WHERE temp > 20", p, SQL_2016),
	    "{\"device\":\"d1\",\"temp_f\":77}", "projection with arithmetic (2016: whole decimal as Int)");
	is_str(run("SELECT temp * 1.8 + 32 AS f FROM 'a/+'", p, SQL_2015),
	    "{\"f\":77.0}", "2015 keeps the fraction");
	is_str(run("SELECT * FROM 'a/+' WHERE temp > 30", p, SQL_2016), "NOMATCH", "WHERE false: no match");
	is_str(run("SELECT * FROM 'a/+' WHERE temp > 20", p, SQL_2016), p, "SELECT * passes bytes through");
	is_str(run("SELECT a.b[2].c AS x, a.b[5] AS y FROM 'a/b'", p, SQL_2016), "{\"x\":3}",
	    "nested path and index; out of range is Undefined and omitted");
	is_str(run("SELECT topic(2) AS t, clientid() AS c, timestamp() AS ts FROM '#'", p, SQL_2016),
	    "{\"t\":\"b\",\"c\":\"c1\",\"ts\":1000}", "context functions");
	is_str(run("SELECT 7 / 2 AS q, -7 % 3 AS r, 'a' + 1 AS s FROM 'x'", "{}", SQL_2016),
	    "{\"q\":3,\"r\":-1,\"s\":\"a1\"}", "Int division, remainder sign, string concatenation");
	is_str(run("SELECT missing > 1 AS u, NOT (1 = 1) AS n FROM 'x'", "{}", SQL_2016),
	    "{\"n\":false}", "Undefined comparison is omitted");
	is_str(run("SELECT * FROM 'x' WHERE 'true'", "{}", SQL_2016), "NOMATCH", "WHERE String true does not fire");
	is_str(run("SELECT CASE temp WHEN 25 THEN 'hot' ELSE 'cold' END AS c FROM 'x'", p, SQL_2016),
	    "{\"c\":\"hot\"}", "CASE");
	is_str(run("SELECT VALUE (SELECT VALUE c FROM a.b WHERE c > 1) FROM 'x'", p, SQL_2016),
	    "[3]", "nested query over an array");
	is_str(run("SELECT x AS a.b, y AS a.c FROM 'x'", "{\"x\":1,\"y\":2}", SQL_2016),
	    "{\"a\":{\"b\":1,\"c\":2}}", "dotted aliases build nested objects");
	is_str(run("SELECT temp +, FROM 'x'", p, SQL_2016),
	    "ERROR 1:14 expected an expression, found ','", "syntax error with line:column");
	is_str(run("SELECT temp\nFROM 'x' WHERE", p, SQL_2016),
	    "ERROR 2:15 expected an expression, found end of statement", "error on line 2");
	is_str(run("SELECT upper(device) FROM 'x'", p, SQL_2016),
	    "ERROR 1:8 this select item needs an alias: write <expression> AS name", "alias required");
	is_str(run("SELECT nosuch(1) AS x FROM 'x'", p, SQL_2016),
	    "ERROR 1:8 unknown function 'nosuch', found 'nosuch'", "unknown function");
	is_str(run("SELECT * FROM 'a/#/b'", p, SQL_2016),
	    "ERROR 1:15 invalid topic filter 'a/#/b': '#' must be the last topic level, alone", "bad filter: error points at the FROM topic");
	is_str(run("SELECT [1,2] AS x FROM 'a'", p, SQL_2015),
	    "ERROR 1:8 an array literal needs SQL version 2016-03-23, found '['", "2016-only literal in 2015");
	is_str(run("SELECT * FROM 'a'", "not json", SQL_2016), "not json", "binary payload passes through");
	is_str(run("SELECT device AS d FROM 'a'", "not json", SQL_2016), "{}", "fields of a binary payload are Undefined");
	is_str(run("SET @t = temp * 2 SELECT @t AS t FROM 'a'", p, SQL_2016), "{\"t\":50}", "SET variables");
	is_str(run("SELECT sqrt(2) AS s, cast(15000000 AS Double) AS e, power(10, -4) AS p FROM 'a'", "{}", SQL_2015),
	    "{\"s\":1.4142135623730951,\"e\":1.5E7,\"p\":1.0E-4}", "double-precision results are written like Java doubles");
	is_str(tpl("out/${topic(2)}", "{}"), "out/d7", "template with topic(n)");
	is_str(tpl("${device}-${missing}-${'}'}", "{\"device\":\"d7\"}"), "d7--}", "template: Undefined is empty, quoted brace");
	is_str(tpl("${topic(", "{}"), "ERROR 1:1 '${' without a closing '}'", "unclosed template");
	/* Fuzz-ish: every prefix of a statement must compile or fail cleanly. */
	const char *s = "SELECT a.b[1] AS x, CASE y WHEN 1 THEN 'z' END AS c FROM 'a/+' WHERE (x > 1 OR NOT y IN [1,2])";
	int clean = 1;
	for (size_t i = 0; i <= strlen(s); i++) {
		char tmp[256];
		memcpy(tmp, s, i);
		tmp[i] = 0;
		const char *r = run(tmp, p, SQL_2016);
		if (r == NULL)
			clean = 0;
	}
	ok(clean, "every prefix of a statement compiles or fails cleanly");
	/* Number output (SQL.md 8.3): exact arithmetic in 34 digits, plain
	 * unless the exponent is below -6 or the digits exceed 34; double-
	 * precision results with Java's double layout. */
	is_str(run("SELECT 0.1 + 0.2 AS x, 1.0 / 3 AS y, 100000000.5 AS z, 0.000123 AS w, 0.1 + 0.2 = 0.3 AS eq FROM 'a/b'", "{}", SQL_2015),
	    "{\"x\":0.3,\"y\":0.3333333333333333333333333333333333,\"z\":100000000.5,\"w\":0.000123,\"eq\":true}",
	    "exact decimals: 0.1 + 0.2 = 0.3, 34-digit division, plain notation");
	is_str(run("SELECT 25.5 AS a, 1.5e300 * 1 AS b, 5e-324 * 1 AS c, 0.0000001 AS d, 2.0 * 5 AS e FROM 'a/b'", "{}", SQL_2015),
	    "{\"a\":25.5,\"b\":1.5E+300,\"c\":5E-324,\"d\":1E-7,\"e\":10.0}", "exact decimals: exponent form, whole with .0 (2015)");
	is_str(run("SELECT 9223372036854775807 + 1 AS a, 123456789012345678901234567890 * 10 AS b, 2.0 * 5 AS e FROM 'a/b'", "{}", SQL_2016),
	    "{\"a\":9223372036854775808,\"b\":1234567890123456789012345678900,\"e\":10}", "integers beyond int64 stay exact Ints; whole decimals are Ints (2016)");
	is_str(run("SELECT sqrt(0.01) AS a, 0.1 * 3 AS b FROM 'a/b'", "{}", SQL_2016), "{\"a\":0.1,\"b\":0.3}",
	    "double-precision and exact results side by side");
	is_str(run("SELECT -9223372036854775807 - 1 AS lo, 9223372036854775807 AS hi, -7 AS n, 0 AS z FROM 'a/b'", "{}", SQL_2015),
	    "{\"lo\":-9223372036854775808,\"hi\":9223372036854775807,\"n\":-7,\"z\":0}", "integers at the int64 edges");
	/* Found by make fuzz: numbers beyond int64 where an Int is needed
	 * give Undefined (no undefined behaviour in the conversion). */
	is_str(run("SELECT parse_time('yyyy', 1.365e30) AS a, time_to_epoch('999999999-01-01', 'yyyy-MM-dd') AS b, "
	           "get(a.b, 1e300) AS c, topic(1e19) AS d, 1 AS ok FROM 'a/b'", p, SQL_2016),
	    "{\"ok\":1}", "out-of-range Int arguments give Undefined");
	/* SELECT * of a JSON object is the object re-serialised (§8.1):
	 * canonical text passes through as is, anything else is written. */
	is_str(run("SELECT * FROM 'a/b'", "{\"a\":25.5,\"b\":[true,null,{\"c\":-2}],\"d\":\"x\"}", SQL_2016),
	    "{\"a\":25.5,\"b\":[true,null,{\"c\":-2}],\"d\":\"x\"}", "SELECT *: canonical object unchanged");
	is_str(run("SELECT * FROM 'a/b'", "{ \"a\" : 1.0,\n \"b\":\"\\u00e9\", \"c\":0.0001, \"a\":2.50}\n", SQL_2016),
	    "{\"a\":2.5,\"b\":\"\xc3\xa9\",\"c\":0.0001}", "SELECT *: whitespace, escapes, number forms, duplicate keys are normalised");
	is_str(run("SELECT * FROM 'a/b'", "[1, 2]", SQL_2016), "[1, 2]", "SELECT *: a non-object JSON payload passes as is");
	is_str(run("SELECT * FROM 'a/b'", "{\"a\":1}x", SQL_2016), "{\"a\":1}x", "SELECT *: JSON followed by garbage is binary");
	/* Context functions and MQTT 5 properties (SQL.md §10). */
	const char *props = "{\"content_type\":\"application/json\",\"format_indicator\":0,\"response_topic\":\"r/1\","
	                    "\"correlation_data\":\"AAE=\",\"user_properties\":[[\"env\",\"prod\"],[\"zone\",\"eu\"],[\"env\",\"test\"]]}";
	is_str(run_ctx("SELECT get_mqtt_property('content_type') AS ct, get_mqtt_property('format_indicator') AS fi, "
	               "get_mqtt_property('response_topic') AS rt, get_mqtt_property('correlation_data') AS cd, "
	               "get_mqtt_property('nope') AS no FROM 'a/b'", props),
	    "{\"ct\":\"application/json\",\"fi\":\"UNSPECIFIED_BYTES\",\"rt\":\"r/1\",\"cd\":\"AAE=\"}",
	    "get_mqtt_property: each property; unknown name is Undefined");
	is_str(run_ctx("SELECT get(get_user_properties('env'), 0) AS env, get_user_properties('env') AS envs, "
	               "get_user_properties() AS all, get_user_properties('x') AS none FROM 'a/b'", props),
	    "{\"env\":\"prod\",\"envs\":[\"prod\",\"test\"],\"all\":[{\"env\":\"prod\"},{\"zone\":\"eu\"},{\"env\":\"test\"}]}",
	    "get_user_properties: by key in publish order, all as one-member objects, absent key Undefined");
	is_str(run_ctx("SELECT get_mqtt_property('content_type') AS ct, get_user_properties() AS up, traceid() AS t, "
	               "accountid() AS a, principal() AS p, sourceip() AS ip FROM 'a/b'", NULL),
	    "{\"t\":\"t-1\",\"a\":\"123456789012\",\"p\":\"p\",\"ip\":\"127.0.0.1\"}",
	    "no MQTT 5 properties: Undefined; context values from the message");
	/* --explain: the WHERE tree with each operand's value and type. */
	{
		sql_error err;
		sql_stmt *st = sql_compile("SELECT device, temp * 2 AS t2 FROM 'a/b' WHERE temp > 20 AND NOT isNull(device)", SQL_2016, &err);
		const char *pl = "{\"temp\":15,\"device\":\"d1\"}";
		sql_msg m = {.topic = "a/b", .payload = pl, .payload_len = strlen(pl)};
		sql_ctx c;
		sql_ctx_init(&c);
		sql_ctx_begin(&c, &m);
		buf b = BUF_ZERO;
		sql_explain(st, &c, &b);
		is_str(b.data,
		    "WHERE false (Boolean) -> rule does not fire\n"
		    "  temp > 20 AND NOT isnull(device) = false (Boolean)\n"
		    "    temp > 20 = false (Boolean)\n"
		    "      temp = 15 (Int)\n"
		    "    NOT isnull(device) = true (Boolean)\n"
		    "      isnull(device) = false (Boolean)\n"
		    "        device = \"d1\" (String)\n"
		    "SELECT item 1 AS device: device = \"d1\" (String)\n"
		    "SELECT item 2 AS t2: temp * 2 = 30 (Int)\n"
		    "  temp = 15 (Int)\n",
		    "explain: every WHERE operand and SELECT item with value and type");
		buf_free(&b);
		sql_ctx_fini(&c);
		sql_free(st);
	}
	/* Payload numbers are typed from their text (SQL.md §4): a decimal
	 * token stays Decimal under 2015-10-08 even when whole; 2016-03-23
	 * reads whole decimals as Int; integer tokens are exact in int64. */
	const char *nums = "{\"a\":10.0,\"b\":4,\"c\":12345678901234567,\"e\":1e2,\"s\":\"x\\\"1.5\",\"f\":-0.5}";
	is_str(run("SELECT a, a / b AS q, c, c + 1 AS c1, e, f FROM 'a/b'", nums, SQL_2015),
	    "{\"a\":10.0,\"q\":2.5,\"c\":12345678901234567,\"c1\":12345678901234568,\"e\":100.0,\"f\":-0.5}",
	    "2015-10-08: whole decimal tokens stay Decimal, integers exact");
	is_str(run("SELECT a, a / b AS q, e, f FROM 'a/b'", nums, SQL_2016),
	    "{\"a\":10,\"q\":2,\"e\":100,\"f\":-0.5}", "2016-03-23: whole decimal tokens are Int");
	/* The SELECT * fast path is sound: whatever the canonical check
	 * accepts is exactly what writing the parsed value gives. */
	{
		static const char *texts[] = {
		    "{\"a\":0.0001}", "{\"a\":0.000001}", "{\"a\":0.0000001}", "{\"a\":123456789012345678}",
		    "{\"a\":-0.5,\"b\":[1,2.25,-3]}", "{\"a\":1.5}", "{\"a\":10.5,\"b\":{\"c\":null,\"d\":true}}",
		    "{\"a\":1234567890123456789012345678901234.5}", "{\"a\":0.1234567890123456789012345678901234}",
		    "{\"a\":12345678901234567890123456789012.25}", "{\"a\":\"x\",\"b\":false}", "{}", "{\"a\":[]}",
		    "{\"a\":-0}", "{\"a\":1.0}", "{\"a\":1e5}", "{\"a\":01}"};
		int sound = 1, accepted = 0;
		for (size_t k = 0; k < sizeof(texts) / sizeof(texts[0]); k++) {
			for (int ver = 0; ver < 2; ver++) {
				arena ar = {0};
				value v;
				size_t tl = strlen(texts[k]);
				if (value_parse_json(&ar, texts[k], tl, ver ? SQL_2016 : SQL_2015, &v) != 0 ||
				    !value_json_is_canonical(texts[k], tl)) {
					arena_free(&ar);
					continue;
				}
				accepted++;
				buf w = BUF_ZERO;
				value_write_json(&w, v, ver ? SQL_2016 : SQL_2015);
				if (w.len != tl || memcmp(w.data, texts[k], tl) != 0) {
					sound = 0;
					printf("# canonical but written as %s: %s\n", w.data, texts[k]);
				}
				buf_free(&w);
				arena_free(&ar);
			}
		}
		ok(sound && accepted >= 20, "canonical payloads are written back byte for byte (%d checked)", accepted);
	}
	/* Found by make fuzz: a literal beyond AWS's range (9.99E999) is
	 * Undefined, also as a function argument inside a template. */
	is_str(run("SELECT 3E99898 AS a, md5(3E99898) AS b, 1 AS c FROM 'a/b'", "{}", SQL_2016), "{\"c\":1}",
	    "an out-of-range decimal literal is Undefined");
	is_str(tpl("x${md5(3E99898)}y", "{}"), "xy", "... and renders as nothing in a template");
	/* External functions that call AWS, through a host (sql_external). */
	is_str(run_ext("SELECT get_dynamodb('t', 'id', d, 'arn:r') AS i FROM 'a/b'", "{\"d\":\"x\"}", NULL),
	    "FAIL: get_dynamodb(): needs AWS, which this evaluation is not set up to call", "get_dynamodb without a host fails the statement");
	fake_answer = "{\"id\":\"x\",\"n\":1.5}";
	is_str(run_ext("SELECT get_dynamodb('t', 'id', d, 'arn:r').n AS n FROM 'a/b'", "{\"d\":\"x\"}", &fake_host),
	    "{\"n\":1.5}", "get_dynamodb: the item is an object whose members can be read");
	is_str(fake_seen, "GetItem t {\"id\":{\"S\":\"x\"}} arn:r", "... asked for the key as a DynamoDB S value");
	run_ext("SELECT get_dynamodb('t', 'id', d, 'ts', 12.50, 'arn:r') AS i FROM 'a/b'", "{\"d\":7}", &fake_host);
	is_str(fake_seen, "GetItem t {\"id\":{\"N\":\"7\"},\"ts\":{\"N\":\"12.5\"}} arn:r", "a sort key, numbers as N values");
	is_str(run_ext("SELECT get_dynamodb('t', 'id', d, 'arn:r') AS a, get_dynamodb('t', 'id', d, 'arn:r') AS b FROM 'a/b'", "{\"d\":\"x\"}", &fake_host),
	    "FAIL: get_dynamodb(): may be called only once per SQL statement", "a second get_dynamodb in one statement fails it");
	is_str(run_ext("SELECT get_dynamodb('t', 'id', d, 'arn:r') AS i FROM 'a/b'", "{\"d\":true}", &fake_host),
	    "FAIL: get_dynamodb(): a key value must be a string or a number", "a key value of another type fails");
	is_str(run_ext("SELECT get_dynamodb('t', 'id', d, 'x', 'arn:r') AS i FROM 'a/b'", "{\"d\":1}", &fake_host),
	    "FAIL: get_dynamodb(): takes 4 arguments, or 6 with a sort key", "5 arguments fail");
	fake_answer = NULL;
	is_str(run_ext("SELECT get_dynamodb('t', 'id', 'a', 'arn:r') AS i FROM 'a/b'", "{}", &fake_host),
	    "FAIL: get_dynamodb(): no such thing", "the host's failure fails the statement, with its reason");
	fake_answer = "{\"ok\":[1,2]}";
	is_str(run_ext("SELECT aws_lambda('fn:live', {'a': a}).ok AS r FROM 'a/b'", "{\"a\":10.0}", &fake_host),
	    "{\"r\":[1,2]}", "aws_lambda: the function's JSON answer");
	is_str(fake_seen, "Invoke fn:live {\"a\":10}", "... invoked with the expression as the event");
	run_ext("SELECT aws_lambda('fn', *) AS r FROM 'a/b'", "{\"x\": [1, {\"y\": null}]}", &fake_host);
	is_str(fake_seen, "Invoke fn {\"x\":[1,{\"y\":null}]}", "aws_lambda(fn, *): the whole payload");
	fake_answer = "not json";
	is_str(run_ext("SELECT aws_lambda('fn', 1) AS r FROM 'a/b'", "{}", &fake_host),
	    "FAIL: aws_lambda(): the answer is not JSON", "an answer that is not JSON fails");
	is_str(run_ext("SELECT aws_lambda('fn', nothing) AS r FROM 'a/b'", "{}", &fake_host),
	    "FAIL: aws_lambda(): the inputJson is Undefined", "an Undefined event fails");
	fake_answer = "null";
	is_str(run_ext("SELECT aws_lambda('fn', 1) AS r FROM 'a/b'", "{}", &fake_host), "{\"r\":null}",
	    "a null answer is Null");
	return done_testing();
}
