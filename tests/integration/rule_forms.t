#!/bin/sh
# The rule forms users have (issue 11, acceptance 2): a rules directory
# holding the bare topicRulePayload, create-topic-rule --cli-input-json
# input, get-topic-rule output, a CloudFormation AWS::IoT::TopicRule
# resource and a template of two rules (tests/integration/rule_forms/):
# the pipeline runs every rule.  22 malformed rules next to them: each is
# an ERROR of `iotrules check` naming the file, the key path and the
# cause, and the pipeline refuses it with the same words; a rule name
# used twice is refused.  Then iotrules-sql: --explain and the exit code,
# --version, the option names, usage errors.
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")/../.." && pwd)
echo "1..38"
start_mosquitto || exit 1
R=$T/rules
mkdir -p "$R"
cp "$here"/tests/integration/rule_forms/*.json "$R/"
ACT='"actions": [{"republish": {"topic": "o", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}]'
CACT='"Actions": [{"Republish": {"Topic": "o", "Qos": 1, "RoleArn": "arn:aws:iam::123456789012:role/r"}}]'
# bad FILE REASON JSON: a malformed rule and the reason it must be refused with.
bad() { printf '%s\n' "$3" > "$R/$1"; printf '%s|%s\n' "$1" "$2" >> "$T/why.txt"; }
bad v.json "awsIotSqlversion: unknown key (did you mean 'awsIotSqlVersion'?)" \
	"{\"sql\": \"SELECT * FROM 'a'\", \"awsIotSqlversion\": \"2016-03-23\", $ACT}"
bad actoins.json "actoins: unknown key (did you mean 'actions'?)" \
	"{\"sql\": \"SELECT * FROM 'a'\", \"actoins\": []}"
bad qoss.json "actions[0].republish.qoss: unknown key (did you mean 'qos'?)" \
	"{\"sql\": \"SELECT * FROM 'a'\", \"actions\": [{\"republish\": {\"topic\": \"o\", \"qoss\": 1}}]}"
bad qos2.json "actions[0].republish.qos: must be 0 to 1" \
	"{\"sql\": \"SELECT * FROM 'a'\", \"actions\": [{\"republish\": {\"topic\": \"o\", \"qos\": 2}}]}"
bad disabled.json "ruleDisabled: must be true or false" \
	"{\"sql\": \"SELECT * FROM 'a'\", \"ruleDisabled\": \"true\", $ACT}"
bad sqlver.json "awsIotSqlVersion: '2017-01-01' is not one of: 2015-10-08 2016-03-23 beta" \
	"{\"sql\": \"SELECT * FROM 'a'\", \"awsIotSqlVersion\": \"2017-01-01\", $ACT}"
bad twice.json "sql: the key is there twice" \
	"{\"sql\": \"SELECT * FROM 'a'\", \"sql\": \"SELECT * FROM 'b'\", $ACT}"
bad sns_fmt.json "actions[0].sns.messageFormat: 'json' is not one of: RAW JSON" \
	"{\"sql\": \"SELECT * FROM 'a'\", \"actions\": [{\"sns\": {\"targetArn\": \"arn:aws:sns:us-east-1:123456789012:t\", \"roleArn\": \"arn:aws:iam::123456789012:role/r\", \"messageFormat\": \"json\"}}]}"
bad ddb_put.json "actions[0].dynamoDBv2.putItem: needs 'tableName'" \
	"{\"sql\": \"SELECT * FROM 'a'\", \"actions\": [{\"dynamoDBv2\": {\"roleArn\": \"arn:aws:iam::123456789012:role/r\", \"putItem\": {}}}]}"
bad http_batch.json "actions[0].http.batchConfig.maxBatchSize: must be 2 to 10" \
	"{\"sql\": \"SELECT * FROM 'a'\", \"actions\": [{\"http\": {\"url\": \"https://example.com/in\", \"enableBatching\": true, \"batchConfig\": {\"maxBatchSize\": 20}}}]}"
bad ts_dim.json "actions[0].timestream.dimensions[0].vale: unknown key (did you mean 'value'?)" \
	"{\"sql\": \"SELECT * FROM 'a'\", \"actions\": [{\"timestream\": {\"roleArn\": \"arn:aws:iam::123456789012:role/r\", \"databaseName\": \"d\", \"tableName\": \"t\", \"dimensions\": [{\"name\": \"n\", \"vale\": \"v\"}]}}]}"
bad ea.json "errorAction: unknown action type 'republsh' (did you mean 'republish'?)" \
	"{\"sql\": \"SELECT * FROM 'a'\", $ACT, \"errorAction\": {\"republsh\": {\"topic\": \"e\"}}}"
bad bad-name.json "rule name 'bad-name' (from the file name bad-name.json) must be 1-128 characters of [a-zA-Z0-9_]" \
	"{\"sql\": \"SELECT * FROM 'a'\", $ACT}"
bad create_tag.json "tag: unknown key (did you mean 'tags'?)" \
	"{\"ruleName\": \"C1\", \"topicRulePayload\": {\"sql\": \"SELECT * FROM 'a'\", $ACT}, \"tag\": \"a=b\"}"
bad create_retain.json "topicRulePayload.actions[0].republish.retain: unknown key" \
	"{\"ruleName\": \"C2\", \"topicRulePayload\": {\"sql\": \"SELECT * FROM 'a'\", \"actions\": [{\"republish\": {\"topic\": \"o\", \"retain\": true}}]}}"
bad get_created.json "rule.createdat: unknown key (did you mean 'createdAt'?)" \
	"{\"ruleArn\": \"arn:aws:iot:us-east-1:123456789012:rule/G\", \"rule\": {\"ruleName\": \"G\", \"sql\": \"SELECT * FROM 'a'\", \"createdat\": 1, $ACT}}"
bad cfn_camel.json "Properties.TopicRulePayload.sql: unknown key (did you mean 'Sql'?)" \
	"{\"Type\": \"AWS::IoT::TopicRule\", \"Properties\": {\"TopicRulePayload\": {\"sql\": \"SELECT * FROM 'a'\", $CACT}}}"
bad cfn_getatt.json "Resources.R.Properties.TopicRulePayload.Actions[0].Republish.RoleArn: Fn::GetAtt is a CloudFormation intrinsic function" \
	"{\"Resources\": {\"R\": {\"Type\": \"AWS::IoT::TopicRule\", \"Properties\": {\"TopicRulePayload\": {\"Sql\": \"SELECT * FROM 'a'\", \"Actions\": [{\"Republish\": {\"Topic\": \"o\", \"RoleArn\": {\"Fn::GetAtt\": [\"Role\", \"Arn\"]}}}]}}}}}"
bad cfn_sub.json "Resources.R.Properties.TopicRulePayload.Sql: Fn::Sub is a CloudFormation intrinsic function" \
	"{\"Resources\": {\"R\": {\"Type\": \"AWS::IoT::TopicRule\", \"Properties\": {\"TopicRulePayload\": {\"Sql\": {\"Fn::Sub\": \"SELECT * FROM '\${Env}/in'\"}, $CACT}}}}}"
bad cfn_qos.json "Resources.R.Properties.TopicRulePayload.Actions[0].Republish.Qos: must be a whole number" \
	"{\"Resources\": {\"R\": {\"Type\": \"AWS::IoT::TopicRule\", \"Properties\": {\"TopicRulePayload\": {\"Sql\": \"SELECT * FROM 'a'\", \"Actions\": [{\"Republish\": {\"Topic\": \"o\", \"Qos\": \"one\"}}]}}}}}"
bad cfn_norule.json "Resources: no AWS::IoT::TopicRule resource in this template" \
	"{\"AWSTemplateFormatVersion\": \"2010-09-09\", \"Resources\": {\"T\": {\"Type\": \"AWS::SNS::Topic\"}}}"
bad not_rule.json "not a rule: a rule file is one of: a topicRulePayload" \
	"{\"hello\": 1}"
# The rule name of create.json again, in a later file: refused.
printf '%s\n' "{\"rule\": {\"ruleName\": \"CliInput\", \"sql\": \"SELECT * FROM 'a'\", $ACT}}" > "$R/zz_dup.json"

cat > "$T/config.json" <<JSON
{"broker": "mqtt://127.0.0.1:$PORT", "rules": "rules", "run_dir": "run", "state_dir": "state", "bin_dir": "$BIN"}
JSON
start_supervisor
mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -t 'forms/#' -v > "$T/out.txt" 2>/dev/null &
PIDS="$PIDS $!"
sub_ready "$T/out.txt" forms/probe
arrived() { for _ in $(seq 100); do grep -q "^forms/out/$1 " "$T/out.txt" && return 0; sleep 0.1; done; return 1; }
for f in bare create get cfnres cfnnamed cfnlogical; do
	mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t "forms/$f/in" -m "{\"from\":\"$f\"}"
done
for f in bare_payload create GotRule cfn_resource CfnNamed CfnLogical; do arrived $f; done
ok 'arrived bare_payload && grep -q "^forms/out/bare_payload {\"from\":\"bare\",\"form\":\"bare\"}" "$T/out.txt"' \
	"the bare topicRulePayload runs (named by its file): $(grep -m1 '^forms/out/bare' "$T/out.txt")"
ok 'arrived create' "create-topic-rule --cli-input-json input runs: $(grep -m1 '^forms/out/create' "$T/out.txt")"
ok 'arrived GotRule' "get-topic-rule output runs: $(grep -m1 '^forms/out/GotRule' "$T/out.txt")"
ok 'arrived cfn_resource' "a CloudFormation AWS::IoT::TopicRule resource runs (Qos \"1\", RuleDisabled \"false\"): $(grep -m1 '^forms/out/cfn_resource' "$T/out.txt")"
ok 'arrived CfnNamed' "a CloudFormation template's rule named by RuleName runs: $(grep -m1 '^forms/out/CfnNamed' "$T/out.txt")"
ok 'arrived CfnLogical' "... and its rule named by its logical id: $(grep -m1 '^forms/out/CfnLogical' "$T/out.txt")"
ok '! grep -q "forms/errors" "$T/out.txt" && ! grep -qE "/rules/(bare_payload|create|get|cfn_resource|cfn_template)\.json rejected" "$T/sup.log"' \
	"none of the good files is refused, no errorAction ran"

# check accepts each form and says which it read.
"$BIN/iotrules" check "$R/bare_payload.json" "$R/create.json" "$R/get.json" "$R/cfn_resource.json" "$R/cfn_template.json" > "$T/forms.txt" 2>&1
rc=$?
forms_named() {
	grep -qx "OK $R/bare_payload.json (topicRulePayload: bare_payload)" "$T/forms.txt" &&
	grep -qx "OK $R/create.json (create-topic-rule input: CliInput)" "$T/forms.txt" &&
	grep -qx "OK $R/get.json (get-topic-rule output: GotRule)" "$T/forms.txt" &&
	grep -qx "OK $R/cfn_resource.json (CloudFormation resource: cfn_resource)" "$T/forms.txt" &&
	grep -qx "OK $R/cfn_template.json (CloudFormation template: CfnNamed, CfnLogical)" "$T/forms.txt"
}
ok '[ $rc = 0 ] && forms_named' \
	"iotrules check accepts the bare payload, create-topic-rule input, get-topic-rule output, a CloudFormation resource and template, naming each form (rc $rc)"
"$BIN/iotrules" check $(cut -d'|' -f1 "$T/why.txt" | sed "s|^|$R/|") > "$T/check.txt" 2>&1
rc=$?
ok '[ $rc = 1 ] && [ "$(grep -c "^ERROR " "$T/check.txt")" = 22 ] && [ "$(grep -c "" "$T/check.txt")" = 22 ]' \
	"iotrules check of the 22 malformed files: 22 ERROR lines, exit 1 (rc $rc)"
while IFS='|' read -r f why; do
	ok 'grep -qF "ERROR $R/$f: $why" "$T/check.txt" && grep -qF "rule $R/$f rejected: $why" "$T/sup.log"' \
		"$f: check and the pipeline refuse it: $why"
done < "$T/why.txt"
ok 'grep -qF "rule $R/zz_dup.json rejected: rule name CliInput is already used by $R/create.json" "$T/sup.log" && arrived create' \
	"a rule name used twice: the later file is refused, the first rule runs"

# iotrules-sql
S=$BIN/iotrules-sql
echo '{"a":1}' > "$T/p.json"
out=$("$S" --payload-file "$T/p.json" --topic x "SELECT a FROM 'y'"); rc1=$?
ex=$("$S" --payload-file "$T/p.json" --topic x --explain "SELECT a FROM 'y'"); rc2=$?
ok '[ $rc1 = 1 ] && [ $rc2 = 1 ] && [ -z "$out" ] && [ "$ex" = "FROM '"'"'y'"'"' does not match topic '"'"'x'"'"' -> rule does not fire" ]' \
	"iotrules-sql: FROM does not match: exit 1 with and without --explain, no result ($ex)"
ex=$("$S" --payload-file "$T/p.json" --topic y --explain "SELECT a AS b FROM 'y' WHERE a = 2"); rc2=$?
ok '[ $rc2 = 1 ] && ! printf "%s\n" "$ex" | grep -q "\"b\"\|SELECT item" && printf "%s\n" "$ex" | grep -q "^WHERE false (Boolean) -> rule does not fire"' \
	"iotrules-sql --explain, WHERE false: exit 1, the WHERE explained, no result nor SELECT values"
ex=$("$S" --payload-file "$T/p.json" --topic y --explain "SELECT a AS b FROM 'y' WHERE a = 1"); rc2=$?
ok '[ $rc2 = 0 ] && [ "$(printf "%s\n" "$ex" | head -1)" = "{\"b\":1}" ]' "iotrules-sql --explain of a rule that fires: exit 0, the result first"
ok '[ "$("$S" --version)" = "iotrules-sql 0.11.0" ]' "iotrules-sql --version"
new=$("$S" --client-id=c1 --account-id 42 --trace-id=t1 --source-ip 10.0.0.1 --sql-version=2016-03-23 "SELECT clientid() AS c, accountid() AS a, traceid() AS t, sourceip() AS s FROM 't'" < "$T/p.json")
old=$("$S" --clientid c1 --accountid=42 --traceid t1 --sourceip=10.0.0.1 --sql-version 2016-03-23 "SELECT clientid() AS c, accountid() AS a, traceid() AS t, sourceip() AS s FROM 't'" < "$T/p.json")
ok '[ "$new" = "{\"c\":\"c1\",\"a\":\"42\",\"t\":\"t1\",\"s\":\"10.0.0.1\"}" ] && [ "$old" = "$new" ]' \
	"iotrules-sql --client-id/--account-id/--trace-id/--source-ip, --opt=value, and the old spellings ($new)"
"$S" --bogus < /dev/null > "$T/u.out" 2> "$T/u.err"; rc1=$?
"$S" --topic < /dev/null 2>> "$T/u.err"; rc2=$?
"$S" < /dev/null 2>> "$T/u.err"; rc3=$?
ok '[ $rc1 = 2 ] && [ $rc2 = 2 ] && [ $rc3 = 2 ] && [ ! -s "$T/u.out" ] && [ "$(wc -l < "$T/u.err")" = 3 ] && grep -q "unknown option .--bogus." "$T/u.err"' \
	"iotrules-sql usage errors: exit 2, one line each ($(tr '\n' '|' < "$T/u.err"))"
