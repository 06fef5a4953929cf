#!/bin/sh
# The stepFunctions action against the recorder and its Step Functions
# module (tests/backends/svc_states.py), which checks every SigV4
# signature and keeps the executions started (the read-back): 500 QoS 1
# messages through a rule as AWS's page writes it, one StartExecution
# each, the state machine ARN built from the templated stateMachineName,
# the region and the caller's account (one STS GetCallerIdentity for the
# role), the execution name = templated prefix + a UUID, the SQL result
# as input; no prefix: no name; throttling, 503 and ExecutionLimitExceeded
# retried with the same name; a missing state machine, a prefix over 44
# characters and a binary result give one error document per message;
# with config account_id, the ARN is in that account and STS is not asked.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../backends/lib.sh"
. "$(dirname "$0")/awslib.sh"
echo "1..13"
backends_start recorder || exit 1
aws_env
mkdir -p "$T/rules"
cat > "$T/rules/to_sfn.json" <<'JSON'
{"topicRulePayload": {"sql": "SELECT *, topic(2) AS dev FROM 'sf/+/data'", "ruleDisabled": false,
 "awsIotSqlVersion": "2016-03-23",
 "actions": [{"stepFunctions": {"stateMachineName": "sm-${topic(2)}", "executionNamePrefix": "${topic(2)}-${seq}-",
   "roleArn": "arn:aws:iam::123456789012:role/aws_iot_step_functions"}}],
 "errorAction": {"republish": {"topic": "errors/${topic(2)}", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}}}
JSON
cat > "$T/rules/noprefix.json" <<'JSON'
{"sql": "SELECT seq FROM 'sfn/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"stepFunctions": {"stateMachineName": "plain", "roleArn": "arn:aws:iam::123456789012:role/aws_iot_step_functions"}}]}
JSON
cat > "$T/rules/longprefix.json" <<'JSON'
{"sql": "SELECT * FROM 'sflong/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"stepFunctions": {"stateMachineName": "sm-long", "executionNamePrefix": "${topic(2)}-0123456789012345678901234567890123456789",
   "roleArn": "arn:aws:iam::123456789012:role/aws_iot_step_functions"}}],
 "errorAction": {"republish": {"topic": "errors/long/${topic(2)}", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}}
JSON
cat > "$T/rules/bin.json" <<'JSON'
{"sql": "SELECT * FROM 'sfbin/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"stepFunctions": {"stateMachineName": "sm-bin", "roleArn": "arn:aws:iam::123456789012:role/aws_iot_step_functions"}}],
 "errorAction": {"republish": {"topic": "errors/bin", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}}
JSON
aws_pipeline || exit 1
wait_until 20 sink_ready stepfunctions
ok "sink_ready stepfunctions" "the stepfunctions sink runs"
errors_sub

execs() { bk_ctl GET svc/states/executions > "$T/execs.json"; }
nexecs() { execs && [ "$(pyq "$T/execs.json" "sum(1 for e in d if $1)")" -ge "$2" ]; }
errs() { [ "$(grep -c "^errors/$1 {" "$T/errors.txt")" -ge "$2" ]; }
arn=arn:aws:states:us-east-1:123456789012:stateMachine
uuid_re='[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}'

publish sf/dev1/data 250 1 &
P1=$!
publish sf/dev2/data 250 251
wait $P1
wait_until 40 nexecs "e['stateMachineArn'].startswith('$arn:sm-dev')" 500
cat > "$T/check.py" <<PY
import json, re, sys
d = json.load(open(sys.argv[1]))
good = set()
for e in d:
    inp = json.loads(e["input"])
    dev = "dev1" if inp["seq"] <= 250 else "dev2"
    m = re.fullmatch(r"%s-%d-($uuid_re)" % (dev, inp["seq"]), e["name"])
    if (e["stateMachineArn"] == "$arn:sm-" + dev and e["named"] and m and set(inp) == {"device", "seq", "temp", "dev"}
            and inp["dev"] == dev and inp["temp"] == inp["seq"] % 50):
        good.add(inp["seq"])
print(len(good))
PY
ok '[ "$(pyq "$T/execs.json" "len(d)")" -eq 500 ] && [ "$("$BK_PY" "$T/check.py" "$T/execs.json")" -eq 500 ]' \
    "500 messages, 500 executions: ARN $arn:sm-\${topic(2)}, name \${topic(2)}-\${seq}- + a UUID, input the SQL result, every seq once"
bk_requests states > "$T/req.json"
ok '[ "$(pyq "$T/req.json" "sum(1 for r in d if r[\"target\"] == \"AWSStepFunctions.StartExecution\" and r[\"headers\"][\"content-type\"] == \"application/x-amz-json-1.0\" and r[\"path\"] == \"/\" and r[\"status\"] == 200 and set(__import__(\"json\").loads(r[\"body\"])) == {\"stateMachineArn\", \"name\", \"input\"})")" -eq 500 ]' \
    "one StartExecution per message (JSON 1.0, AWSStepFunctions.StartExecution), the body exactly {stateMachineArn, name, input}"
set -- $(sigs_checked states)
reqs=$1 valid=$2
set -- $(sigs_checked sts)
sts=$1 sts_valid=$2
ok '[ "$reqs" -eq 500 ] && [ "$reqs" -eq "$valid" ] && [ "$sts" -eq 1 ] && [ "$sts_valid" -eq 1 ] && bk_requests sts | grep -q "Action=GetCallerIdentity"' \
    "every request's SigV4 signature verified by the recorder ($valid of $reqs), the account learnt with $sts GetCallerIdentity ($sts_valid valid)"

publish sfn/x 10 1001
wait_until 15 nexecs "e['stateMachineArn'] == '$arn:plain'" 10
ok '[ "$(pyq "$T/execs.json" "sorted(__import__(\"json\").loads(e[\"input\"])[\"seq\"] for e in d if e[\"stateMachineArn\"] == \"$arn:plain\" and not e[\"named\"])" | tr -d " ")" = "[$(seq 1001 1010 | paste -sd,)]" ]' \
    "no executionNamePrefix: no name sent (Step Functions names it), the input the SELECT's result (10 of 10)"

# Throttling, 503s and ExecutionLimitExceeded: retried with the same name.
bk_clear
bk_ctl POST 'fail?status=400&code=ThrottlingException&count=3&service=states' > /dev/null
bk_ctl POST 'fail?status=503&count=3&service=states' > /dev/null
bk_ctl POST 'fail?status=400&code=ExecutionLimitExceeded&count=3&service=states' > /dev/null
publish sf/dev3/data 100 2001
wait_until 30 nexecs "e['stateMachineArn'] == '$arn:sm-dev3'" 100
bk_requests states > "$T/req.json"
cat > "$T/retried.py" <<'PY'
import json, sys
reqs = json.load(open(sys.argv[1]))
started = {e["name"] for e in json.load(open(sys.argv[2]))}
failed = [json.loads(r["body"])["name"] for r in reqs if r["status"] != 200]
print(len(failed), sum(1 for n in failed if n in started), len(reqs) - len(failed))
PY
set -- $("$BK_PY" "$T/retried.py" "$T/req.json" "$T/execs.json")
refused=$1 same=$2 accepted=$3
ok '[ "$(pyq "$T/execs.json" "sum(1 for e in d if e[\"stateMachineArn\"] == \"$arn:sm-dev3\")")" -eq 100 ] && [ "$refused" -eq 9 ] && [ "$same" -eq 9 ] && [ "$accepted" -eq 100 ]' \
    "100 more through 3 throttling, 3 503 and 3 ExecutionLimitExceeded answers: all 100 started once ($accepted accepted requests), the $same of $refused refused requests retried under the same execution name"
retried=$(status_retried 9 sink-stepfunctions)
ok '[ "$retried" -ge 9 ]' "status counts the retries (retried: $retried)"

# Permanent: a missing state machine; a prefix over 44 characters; a binary result.
bk_ctl POST 'svc/states/missing?name=sm-gone' > /dev/null
publish sf/gone/data 20 3001
wait_until 30 errs gone 20
ok '[ "$(grep -c "^errors/gone {" "$T/errors.txt")" -eq 20 ]' "missing state machine: one error document per message (20)"
ok 'grep "^errors/gone {" "$T/errors.txt" | head -1 | grep -q "\"failedAction\":\"StepFunctionsAction\",\"failedResource\":\"sm-gone\".*State Machine Does Not Exist.*Status Code: 400; Error Code: StateMachineDoesNotExist"' \
    "the document names StepFunctionsAction, the state machine and the service's error"
grep "^errors/gone {" "$T/errors.txt" | head -1 | cut -c1-600 | sed 's/^/# /'
bk_clear
publish sflong/abcd 5 4001
wait_until 15 errs long/abcd 5
ok '[ "$(grep -c "^errors/long/abcd {" "$T/errors.txt")" -eq 5 ] && grep "^errors/long/abcd {" "$T/errors.txt" | grep -q "executionNamePrefix is longer than 44 characters" && [ "$(sigs_checked states)" = "0 0" ]' \
    "a prefix of 45 characters: one error document per message (5), nothing sent"
printf '\377\376binary' | mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t sfbin/x -s
wait_until 10 errs bin 1
ok '[ "$(grep -c "^errors/bin {" "$T/errors.txt")" -eq 1 ] && grep "^errors/bin {" "$T/errors.txt" | grep -q "the result is not JSON" && [ "$(sigs_checked states)" = "0 0" ]' \
    "a binary result is not sent: one error document"

stop_checked
ok '[ -z "$restarts" ] && [ -z "$sanitizer" ]' "no stage restarted, no sanitizer report${restarts:+ (restarts: $restarts)}${sanitizer:+ ($sanitizer)}"

# config account_id: the state machine ARN is in the rules' account and
# STS is not asked.
bk_clear
sed 's/^{/{"account_id": "210987654321", /' "$T/config.json" > "$T/config2.json" && mv "$T/config2.json" "$T/config.json"
restart_pipeline
publish sfn/acct 10 5001
started() { [ "$(sigs_checked states)" = "10 10" ]; }
wait_until 20 started
ok '[ "$(bk_requests states | pyq /dev/stdin "sum(1 for r in d if __import__(\"json\").loads(r[\"body\"])[\"stateMachineArn\"] == \"arn:aws:states:us-east-1:210987654321:stateMachine:plain\")")" -eq 10 ] && [ "$(sigs_checked sts)" = "0 0" ]' \
    "config account_id: 10 executions of arn:aws:states:us-east-1:210987654321:stateMachine:plain, no GetCallerIdentity"
kill "$SUP" 2>/dev/null
wait "$SUP" 2>/dev/null
