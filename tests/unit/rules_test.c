/* Unit tests of the rule forms, the schema checks and rulecheck
 * (evaluate/lib/rules.h, ruleschema.h, rulecheck.h).  The good forms are
 * the files of tests/integration/rule_forms/ (run from the top of the
 * tree, as `make test` does); the malformed ones are written here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "evaluate/lib/engine.h"
#include "evaluate/lib/rulecheck.h"
#include "evaluate/lib/ruleschema.h"
#include "tests/unit/tap.h"

#define FORMS "tests/integration/rule_forms"

static char dir[] = "/tmp/iotrules-rules-XXXXXX";

static char *
write_rule(const char *name, const char *json)
{
	static char p[512];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	if (f == NULL || fputs(json, f) < 0 || fclose(f) != 0) {
		printf("Bail out! cannot write %s\n", p);
		exit(1);
	}
	return p;
}

/* rulecheck_run's output for paths, and its return in *rc. */
static char *
check(int n, char **paths, int *rc)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	*rc = rulecheck_run(n, paths, f);
	fclose(f);
	return out;
}

typedef struct first_job {
	char *out;
	size_t cap;
} first_job;

static void
emit(void *arg, const envelope *j)
{
	first_job *k = arg;
	if (k->out[0] == 0)
		snprintf(k->out, k->cap, "%.*s|%.*s", (int)j->s[ENV_RULE].n, j->s[ENV_RULE].p, (int)j->s[ENV_PARAMS].n,
		    j->s[ENV_PARAMS].p);
}

/* "rule|params" of the first job for a message on topic ("" if none). */
static void
params_of(ruleset *rs, const char *topic, char *out, size_t cap)
{
	envelope e = {0};
	e.kind = ENV_MESSAGE;
	e.ts_ms = 1000;
	e.s[ENV_TOPIC] = env_str(topic);
	e.s[ENV_PAYLOAD] = env_str("{\"v\":1}");
	sql_ctx c;
	sql_ctx_init(&c);
	engine_stats st = {0};
	out[0] = 0;
	first_job k = {out, cap};
	engine_run(rs, &c, &e, emit, &k, &st);
	sql_ctx_fini(&c);
}

/* A malformed rule: written as name, loaded, refused with exactly want. */
static void
refused(const char *name, const char *json, const char *want)
{
	char err[1024] = "", *p = write_rule(name, json);
	rule_file f;
	int rc = rule_file_load(p, &f, err, sizeof(err));
	char label[200];
	snprintf(label, sizeof(label), "%s refused: %.150s", name, want);
	is_str(rc < 0 ? err : "(accepted)", want, label);
	if (rc == 0)
		rule_file_free(&f);
	unlink(p);
}

#define R "\"actions\":[{\"republish\":{\"topic\":\"o\",\"roleArn\":\"arn:aws:iam::1:role/r\"}}]"
#define CFNR "\"Actions\":[{\"Republish\":{\"Topic\":\"o\",\"RoleArn\":\"arn:aws:iam::1:role/r\"}}]"

int
main(void)
{
	log_set_level(LOG_ERROR + 1);
	if (mkdtemp(dir) == NULL || access(FORMS "/get.json", R_OK) != 0) {
		printf("Bail out! run from the top of the tree (needs %s)\n", FORMS);
		return 1;
	}

	/* The four forms, checked as a directory. */
	int rc;
	char *paths[3] = {FORMS, NULL, NULL};
	char *out = check(1, paths, &rc);
	is_str(out,
	    "OK " FORMS "/bare_payload.json (topicRulePayload: bare_payload)\n"
	    "OK " FORMS "/cfn_resource.json (CloudFormation resource: cfn_resource)\n"
	    "OK " FORMS "/cfn_template.json (CloudFormation template: CfnNamed, CfnLogical)\n"
	    "OK " FORMS "/create.json (create-topic-rule input: CliInput)\n"
	    "OK " FORMS "/get.json (get-topic-rule output: GotRule)\n",
	    "rulecheck: a directory of the four forms, each file OK with its form and its rules' names, in name order");
	ok(rc == 0, "... returns 0 (%d)", rc);
	free(out);

	/* The same files as the pipeline loads them. */
	char err[1024];
	ruleset *rs = ruleset_load(FORMS, err, sizeof(err));
	ok(rs && rs->n == 6 && rs->nrefused == 0, "ruleset_load: 6 rules from 5 files, none refused (%d, %d)",
	    rs ? rs->n : -1, rs ? rs->nrefused : -1);
	char got[1024];
	params_of(rs, "forms/cfnlogical/in", got, sizeof(got));
	is_str(got, "CfnLogical|{\"topic\":\"forms/out/CfnLogical\",\"qos\":1,\"roleArn\":\"arn:aws:iam::123456789012:role/"
	    "iot_republish\",\"headers\":{\"contentType\":\"application/json\",\"userProperties\":[{\"key\":\"form\","
	    "\"value\":\"cfn\"}]}}", "CloudFormation keys become the API's, nested ones too (Headers.UserProperties[].Key)");
	params_of(rs, "forms/cfnres/in", got, sizeof(got));
	is_str(got, "cfn_resource|{\"topic\":\"forms/out/cfn_resource\",\"qos\":1,\"roleArn\":"
	    "\"arn:aws:iam::123456789012:role/iot_republish\"}",
	    "a CloudFormation \"Qos\": \"1\" is the integer 1, \"RuleDisabled\": \"false\" leaves the rule enabled");
	params_of(rs, "forms/create/in", got, sizeof(got));
	is_str(got, "CliInput|{\"topic\":\"forms/out/create\",\"qos\":1,\"roleArn\":"
	    "\"arn:aws:iam::123456789012:role/iot_republish\"}", "create-topic-rule input: named by its ruleName");
	params_of(rs, "forms/get/in", got, sizeof(got));
	ok(strncmp(got, "GotRule|", 8) == 0, "get-topic-rule output: named by rule.ruleName (%s)", got);
	params_of(rs, "forms/bare/in", got, sizeof(got));
	ok(strncmp(got, "bare_payload|", 13) == 0, "the bare payload: named by its file (%s)", got);
	params_of(rs, "forms/cfnnamed/in", got, sizeof(got));
	ok(strncmp(got, "CfnNamed|", 9) == 0, "a template's rule with RuleName: named by it (%s)", got);
	ruleset_free(rs);
	rule *one = rule_load_file(FORMS "/cfn_template.json", err, sizeof(err));
	is_str(one ? "(loaded)" : err, "a CloudFormation template of 2 rules: load it with a rules directory or rulecheck",
	    "rule_load_file (one rule) refuses a template of two, saying why");

	/* Duplicate names: across everything checked, and in a directory. */
	paths[1] = FORMS "/get.json";
	out = check(2, paths, &rc);
	const char *g = strstr(out, "/get.json");
	ok(rc == 0 && g && strstr(g + 1, "/get.json") == NULL,
	    "rulecheck: a file named twice (a directory and one of its files) is checked once (rc %d)", rc);
	free(out);
	char *dup = write_rule("dup.json", "{\"rule\":{\"ruleName\":\"GotRule\",\"sql\":\"SELECT * FROM 'b'\"," R "}}");
	char dupath[600];
	snprintf(dupath, sizeof(dupath), "%s", dup);
	paths[1] = dupath;
	out = check(2, paths, &rc);
	char wantdup[900];
	snprintf(wantdup, sizeof(wantdup), "ERROR %s: rule name GotRule is already used by " FORMS "/get.json\n", dupath);
	ok(rc == 1 && strstr(out, wantdup), "rulecheck: a rule name used twice in what is checked is refused (rc %d)", rc);
	free(out);
	unlink(dupath);
	write_rule("a_first.json", "{\"ruleName\":\"Same\",\"topicRulePayload\":{\"sql\":\"SELECT * FROM 'a'\"," R "}}");
	write_rule("b_second.json", "{\"rule\":{\"ruleName\":\"Same\",\"sql\":\"SELECT * FROM 'b'\"," R "}}");
	rs = ruleset_load(dir, err, sizeof(err));
	char want[700];
	snprintf(want, sizeof(want), "%s/b_second.json: rule name Same is already used by %s/a_first.json", dir, dir);
	ok(rs && rs->n == 1 && rs->nrefused == 1 && strcmp(rs->refused[0], want) == 0,
	    "ruleset_load: the later file (name order) of two with one rule name is refused and listed (%s)",
	    rs && rs->nrefused ? rs->refused[0] : "none");
	ruleset_free(rs);
	paths[0] = dir;
	out = check(1, paths, &rc);
	char want2[1000];
	snprintf(want2, sizeof(want2), "OK %s/a_first.json (create-topic-rule input: Same)\nERROR %s\n", dir, want);
	is_str(out, want2, "rulecheck on that directory says the same as the pipeline");
	ok(rc == 1, "... and returns 1");
	free(out);
	char p[600];
	snprintf(p, sizeof(p), "%s/a_first.json", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/b_second.json", dir);
	unlink(p);

	/* Malformed rules: the key path and the cause. */
	refused("v.json", "{\"sql\":\"SELECT * FROM 'a'\",\"awsIotSqlversion\":\"2016-03-23\"," R "}",
	    "awsIotSqlversion: unknown key (did you mean 'awsIotSqlVersion'?)");
	refused("a.json", "{\"sql\":\"SELECT * FROM 'a'\",\"actoins\":[]}", "actoins: unknown key (did you mean 'actions'?)");
	refused("q.json", "{\"sql\":\"SELECT * FROM 'a'\",\"actions\":[{\"republish\":{\"topic\":\"o\",\"qoss\":1}}]}",
	    "actions[0].republish.qoss: unknown key (did you mean 'qos'?)");
	refused("q2.json", "{\"sql\":\"SELECT * FROM 'a'\",\"actions\":[{\"republish\":{\"topic\":\"o\",\"qos\":2}}]}",
	    "actions[0].republish.qos: must be 0 to 1");
	refused("q3.json", "{\"sql\":\"SELECT * FROM 'a'\",\"actions\":[{\"republish\":{\"topic\":\"o\",\"qos\":\"1\"}}]}",
	    "actions[0].republish.qos: must be a whole number");
	refused("d.json", "{\"sql\":\"SELECT * FROM 'a'\",\"ruleDisabled\":\"true\"," R "}",
	    "ruleDisabled: must be true or false");
	refused("s.json", "{\"sql\":\"SELECT * FROM 'a'\",\"awsIotSqlVersion\":\"2017-01-01\"," R "}",
	    "awsIotSqlVersion: '2017-01-01' is not one of: 2015-10-08 2016-03-23 beta");
	refused("twice.json", "{\"sql\":\"SELECT * FROM 'a'\",\"sql\":\"SELECT 1 FROM 'b'\"," R "}",
	    "sql: the key is there twice");
	refused("sns.json", "{\"sql\":\"SELECT * FROM 'a'\",\"actions\":[{\"sns\":{\"targetArn\":\"t\",\"roleArn\":\"r\","
	    "\"messageFormat\":\"json\"}}]}", "actions[0].sns.messageFormat: 'json' is not one of: RAW JSON");
	refused("ddb.json", "{\"sql\":\"SELECT * FROM 'a'\",\"actions\":[{\"dynamoDBv2\":{\"roleArn\":\"r\",\"putItem\":{}}}]}",
	    "actions[0].dynamoDBv2.putItem: needs 'tableName'");
	refused("ts.json", "{\"sql\":\"SELECT * FROM 'a'\",\"actions\":[{\"timestream\":{\"roleArn\":\"r\",\"databaseName\":\"d\","
	    "\"tableName\":\"t\",\"dimensions\":[{\"name\":\"n\",\"vale\":\"v\"}]}}]}",
	    "actions[0].timestream.dimensions[0].vale: unknown key (did you mean 'value'?)");
	refused("ea.json", "{\"sql\":\"SELECT * FROM 'a'\"," R ",\"errorAction\":{\"republsh\":{\"topic\":\"e\"}}}",
	    "errorAction: unknown action type 'republsh' (did you mean 'republish'?)");
	refused("Republish.json", "{\"sql\":\"SELECT * FROM 'a'\",\"actions\":[{\"Republish\":{\"topic\":\"o\"}}]}",
	    "actions[0]: unknown action type 'Republish' (did you mean 'republish'?)");
	refused("my-rule.json", "{\"sql\":\"SELECT * FROM 'a'\"," R "}",
	    "rule name 'my-rule' (from the file name my-rule.json) must be 1-128 characters of [a-zA-Z0-9_] (AWS's rule)");
	refused("c.json", "{\"ruleName\":\"my rule\",\"topicRulePayload\":{\"sql\":\"SELECT * FROM 'a'\"," R "}}",
	    "rule name 'my rule' (ruleName) must be 1-128 characters of [a-zA-Z0-9_] (AWS's rule)");
	refused("c2.json", "{\"ruleName\":\"x\",\"topicRulePayload\":{\"sql\":\"SELECT * FROM 'a'\"," R "},\"tag\":\"a=b\"}",
	    "tag: unknown key (did you mean 'tags'?)");
	refused("g.json", "{\"rule\":{\"ruleName\":\"G\",\"sql\":\"SELECT * FROM 'a'\",\"createdat\":1," R "}}",
	    "rule.createdat: unknown key (did you mean 'createdAt'?)");
	refused("r.json", "{\"Type\":\"AWS::IoT::TopicRule\",\"Properties\":{\"TopicRulePayload\":{\"sql\":\"SELECT * FROM 'a'\","
	    CFNR "}}}", "Properties.TopicRulePayload.sql: unknown key (did you mean 'Sql'?)");
	refused("r2.json", "{\"Type\":\"AWS::SNS::Topic\",\"Properties\":{}}",
	    "Type: 'AWS::SNS::Topic' is not AWS::IoT::TopicRule; a rule file is one of: a topicRulePayload {\"sql\", "
	    "\"actions\", ...}; {\"ruleName\", \"topicRulePayload\"} (aws iot create-topic-rule --cli-input-json); "
	    "{\"ruleArn\", \"rule\"} (aws iot get-topic-rule output); a CloudFormation AWS::IoT::TopicRule resource "
	    "{\"Type\", \"Properties\"} or a template {\"Resources\"} (JSON)");
	refused("t.json", "{\"Resources\":{\"R\":{\"Type\":\"AWS::IoT::TopicRule\",\"Properties\":{\"RuleName\":{\"Ref\":\"P\"},"
	    "\"TopicRulePayload\":{\"Sql\":\"SELECT * FROM 'a'\"," CFNR "}}}}}",
	    "Resources.R.Properties.RuleName: Ref is a CloudFormation intrinsic function: iotrules does not resolve them; "
	    "write the value itself");
	refused("t2.json", "{\"Resources\":{\"R\":{\"Type\":\"AWS::IoT::TopicRule\",\"Properties\":{\"TopicRulePayload\":{"
	    "\"Sql\":\"SELECT * FROM 'a'\",\"Actions\":[{\"Republish\":{\"Topic\":\"o\",\"RoleArn\":{\"Fn::GetAtt\":[\"Role\","
	    "\"Arn\"]}}}]}}}}}", "Resources.R.Properties.TopicRulePayload.Actions[0].Republish.RoleArn: Fn::GetAtt is a "
	    "CloudFormation intrinsic function: iotrules does not resolve them; write the value itself");
	refused("t3.json", "{\"Resources\":{\"T\":{\"Type\":\"AWS::SNS::Topic\"}}}",
	    "Resources: no AWS::IoT::TopicRule resource in this template");
	refused("t4.json", "{\"Resources\":{\"A\":{\"Type\":\"AWS::IoT::TopicRule\",\"Properties\":{\"RuleName\":\"X\","
	    "\"TopicRulePayload\":{\"Sql\":\"SELECT * FROM 'a'\"," CFNR "}}},\"X\":{\"Type\":\"AWS::IoT::TopicRule\","
	    "\"Properties\":{\"TopicRulePayload\":{\"Sql\":\"SELECT * FROM 'b'\"," CFNR "}}}}}",
	    "Resources.X.Properties.TopicRulePayload: rule name X is there twice in this file");
	refused("t5.json", "{\"Transform\":\"AWS::Serverless-2016-10-31\",\"Resources\":{}}",
	    "Transform: a template with a Transform is refused: iotrules does not run CloudFormation macros");
	refused("t6.json", "{\"Resources\":{\"R\":{\"Type\":\"AWS::IoT::TopicRule\",\"Condition\":\"IsProd\",\"Properties\":{}}}}",
	    "Resources.R.Condition: a resource with a Condition is refused: iotrules does not evaluate CloudFormation "
	    "conditions");
	refused("t7.json", "{\"Resources\":{\"R\":{\"Type\":\"AWS::IoT::TopicRule\",\"Propreties\":{}}}}",
	    "Resources.R.Propreties: unknown key (did you mean 'Properties'?)");
	refused("n.json", "{\"hello\":1}",
	    "not a rule: a rule file is one of: a topicRulePayload {\"sql\", \"actions\", ...}; {\"ruleName\", "
	    "\"topicRulePayload\"} (aws iot create-topic-rule --cli-input-json); {\"ruleArn\", \"rule\"} (aws iot "
	    "get-topic-rule output); a CloudFormation AWS::IoT::TopicRule resource {\"Type\", \"Properties\"} or a "
	    "template {\"Resources\"} (JSON)");
	refused("yaml.json", "Resources:\n  R:\n    Type: AWS::IoT::TopicRule\n",
	    "invalid JSON at line 1, column 1; a rule file is one of: a topicRulePayload {\"sql\", \"actions\", ...}; "
	    "{\"ruleName\", \"topicRulePayload\"} (aws iot create-topic-rule --cli-input-json); {\"ruleArn\", \"rule\"} "
	    "(aws iot get-topic-rule output); a CloudFormation AWS::IoT::TopicRule resource {\"Type\", \"Properties\"} or "
	    "a template {\"Resources\"} (JSON), JSON only (convert a YAML template to JSON)");
	refused("broken.json", "{\"sql\": \"SELECT * FROM 'a'\",\n \"actions\": [}", "invalid JSON at line 2, column 14");
	refused("http.json", "{\"sql\":\"SELECT * FROM 'a'\",\"actions\":[{\"http\":{\"url\":\"https://h/\",\"batchConfig\":"
	    "{\"maxBatchSize\":20}}}]}", "actions[0].http.batchConfig.maxBatchSize: must be 2 to 10");

	/* Did you mean: a case slip, up to two edits, nothing further. */
	static const char *const names[] = {"roleArn", "topic", "qos", "headers"};
	ok(ruleschema_closest("rolearn", names, 4, 0) == names[0] && ruleschema_closest("RoleArn", names, 4, 1) == names[0] &&
	    ruleschema_closest("tpoic", names, 4, 0) == names[1] && ruleschema_closest("qs", names, 4, 0) == names[2] &&
	    ruleschema_closest("payload", names, 4, 0) == NULL, "ruleschema_closest: case, transposition, one letter, none");

	rmdir(dir);
	return done_testing();
}
