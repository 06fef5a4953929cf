/* Unit tests of rule loading and the engine (rules → jobs). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "evaluate/lib/engine.h"
#include "tests/unit/tap.h"

static char dir[] = "/tmp/iotrules-engine-XXXXXX";

static void
write_rule(const char *name, const char *json)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	fputs(json, f);
	fclose(f);
}

typedef struct jobs {
	int n;
	char out[8][512];
} jobs;

static void
emit(void *arg, const envelope *j)
{
	jobs *js = arg;
	if (js->n < 8)
		snprintf(js->out[js->n++], 512, "%.*s|%.*s|%.*s|%.*s", (int)j->s[ENV_RULE].n, j->s[ENV_RULE].p,
		    (int)j->s[ENV_ACTION].n, j->s[ENV_ACTION].p, (int)j->s[ENV_PARAMS].n, j->s[ENV_PARAMS].p,
		    (int)j->s[ENV_RESULT].n, j->s[ENV_RESULT].p);
}

static jobs
run(ruleset *rs, const char *topic, const char *payload)
{
	jobs js = {0};
	envelope e = {0};
	e.kind = ENV_MESSAGE;
	e.ts_ms = 1000;
	e.s[ENV_TOPIC] = env_str(topic);
	e.s[ENV_PAYLOAD] = env_str(payload);
	sql_ctx c;
	sql_ctx_init(&c);
	engine_stats st = {0};
	engine_run(rs, &c, &e, emit, &js, &st);
	sql_ctx_fini(&c);
	return js;
}

int
main(void)
{
	log_set_level(LOG_ERROR + 1);
	if (mkdtemp(dir) == NULL)
		return 1;
	write_rule("fahrenheit.json",
	    "{\"sql\":\"SELECT device, temp * 1.8 + 32 AS temp_f FROM 'sensors/+/telemetry' WHERE temp > 20\","
	    "\"awsIotSqlVersion\":\"2016-03-23\",\"actions\":[{\"republish\":{\"topic\":\"out/${topic(2)}\",\"qos\":1}}],"
	    "\"errorAction\":{\"republish\":{\"topic\":\"err/${device}\"}}}");
	write_rule("wrapped.json",
	    "{\"rule\":{\"ruleName\":\"Wrapped\",\"sql\":\"SELECT * FROM 'a/#'\",\"actions\":[{\"republish\":{\"topic\":\"b\"}}]}}");
	write_rule("payload_form.json",
	    "{\"ruleArn\":\"arn:aws:iot:us-east-1:123456789012:rule/x\",\"topicRulePayload\":{\"sql\":\"SELECT n FROM 'tp/+'\","
	    "\"awsIotSqlVersion\":\"2016-03-23\",\"actions\":[{\"republish\":{\"topic\":\"tp-out\"}}]}}");
	write_rule("badsql.json", "{\"sql\":\"SELECT FROM 'x'\",\"actions\":[]}");
	write_rule("badaction.json", "{\"sql\":\"SELECT * FROM 'x'\",\"actions\":[{\"nosuch\":{}}]}");
	write_rule("notjson.json", "{\"sql\": ");
	write_rule("unquoted.json",
	    "{\"sql\":\"SELECT state.reported.t AS t FROM $aws/things/+/shadow/update/documents\",\"actions\":[{\"republish\":{\"topic\":\"sh\"}}]}");
	write_rule("unquoted2.json",
	    "{\"sql\":\"SELECT (SELECT VALUE v FROM a) AS vs FROM uq/#  WHERE k = 1\",\"awsIotSqlVersion\":\"2016-03-23\",\"actions\":[{\"republish\":{\"topic\":\"uq\"}}]}");
	write_rule("noparam.json", "{\"sql\":\"SELECT * FROM 'x'\",\"actions\":[{\"kinesis\":{\"partitionKey\":\"p\"}}]}");
	write_rule("disabled.json", "{\"sql\":\"SELECT * FROM 'a/#'\",\"ruleDisabled\":true,\"actions\":[{\"republish\":{\"topic\":\"c\"}}]}");

	char err[512];
	ruleset *rs = ruleset_load(dir, err, sizeof(err));
	ok(rs != NULL && rs->n == 6, "good rules load, bad ones are skipped (%d loaded)", rs ? rs->n : -1);

	jobs js = run(rs, "sensors/d7/telemetry", "{\"device\":\"d7\",\"temp\":25}");
	ok(js.n == 1, "one job for a matching message");
	is_str(js.out[0], "fahrenheit|republish|{\"topic\":\"out/d7\",\"qos\":1}|{\"device\":\"d7\",\"temp_f\":77}",
	    "job carries rule, action, resolved params and result");
	js = run(rs, "sensors/d7/telemetry", "{\"device\":\"d7\",\"temp\":5}");
	ok(js.n == 0, "WHERE false: no job");
	js = run(rs, "a/x", "{\"k\":1}");
	ok(js.n == 1 && strcmp(js.out[0], "Wrapped|republish|{\"topic\":\"b\"}|{\"k\":1}") == 0,
	    "get-topic-rule output accepted, disabled rule skipped (%s)", js.out[0]);
	js = run(rs, "tp/1", "{\"n\":5}");
	ok(js.n == 1 && strcmp(js.out[0], "payload_form|republish|{\"topic\":\"tp-out\"}|{\"n\":5}") == 0,
	    "{\"topicRulePayload\": ...} (AWS's examples) accepted, named by its file (%s)", js.n ? js.out[0] : "none");
	js = run(rs, "$aws/things/t1/shadow/update/documents", "{\"state\":{\"reported\":{\"t\":3}}}");
	ok(js.n == 1 && strcmp(js.out[0], "unquoted|republish|{\"topic\":\"sh\"}|{\"t\":3}") == 0,
	    "an unquoted FROM topic with '$' and '+' is accepted (SQL.md 1) (%s)", js.n ? js.out[0] : "none");
	js = run(rs, "uq/1/2", "{\"k\":1,\"a\":[{\"v\":1},{\"v\":2}]}");
	ok(js.n == 1 && strcmp(js.out[0], "unquoted2|republish|{\"topic\":\"uq\"}|{\"vs\":[1,2]}") == 0,
	    "... with '#', a nested SELECT's FROM still an expression, WHERE after it (%s)", js.n ? js.out[0] : "none");
	js = run(rs, "$aws/rules/Wrapped/a/y", "{}");
	ok(js.n == 1, "Basic Ingest reaches only the named rule");

	rule *r = rule_load_file("/nonexistent/x.json", err, sizeof(err));
	ok(r == NULL && strstr(err, "cannot read") != NULL, "missing file: %s", err);
	char p[256];
	snprintf(p, sizeof(p), "%s/badsql.json", dir);
	r = rule_load_file(p, err, sizeof(err));
	is_str(err, "sql: line 1, column 8: expected an expression, found 'FROM'", "SQL error names line and column");
	snprintf(p, sizeof(p), "%s/badaction.json", dir);
	r = rule_load_file(p, err, sizeof(err));
	is_str(err, "actions[0]: unknown action type 'nosuch'", "unknown action type");
	snprintf(p, sizeof(p), "%s/noparam.json", dir);
	r = rule_load_file(p, err, sizeof(err));
	is_str(err, "actions[0]: kinesis needs 'streamName' (topic-rule-schema.json)",
	    "a parameter AWS's schema requires is missing: refused, named");
	snprintf(p, sizeof(p), "%s/notjson.json", dir);
	r = rule_load_file(p, err, sizeof(err));
	ok(r == NULL && strstr(err, "invalid JSON at line 1") != NULL, "invalid JSON: %s", err);
	ruleset_free(rs);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	return done_testing();
}
