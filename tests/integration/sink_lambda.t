#!/bin/sh
# The lambda action against the recorder (which answers Lambda Invoke
# itself and checks every SigV4 signature; its records are the
# read-back): 1,000 QoS 1 messages through a rule as AWS's docs write it,
# each an asynchronous invoke of the templated function (bare name in the
# path, the ARN's alias as ?Qualifier=) with the SQL result as the event;
# a plain function name goes without Qualifier; throttling and 503
# answers retried (and counted in status); a missing function (404) and a
# binary result send one error document per message through the
# errorAction.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../backends/lib.sh"
. "$(dirname "$0")/awslib.sh"
echo "1..11"
backends_start recorder || exit 1
aws_env
mkdir -p "$T/rules"
cat > "$T/rules/to_lambda.json" <<'JSON'
{"sql": "SELECT *, topic(2) AS dev FROM 'l/+/data'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"lambda": {"functionArn": "arn:aws:lambda:us-east-1:123456789012:function:iot-${topic(2)}:prod"}}]}
JSON
cat > "$T/rules/plain.json" <<'JSON'
{"sql": "SELECT seq FROM 'lp/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"lambda": {"functionArn": "iot-plain"}}]}
JSON
cat > "$T/rules/failing.json" <<'JSON'
{"sql": "SELECT * FROM 'lmiss/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"lambda": {"functionArn": "arn:aws:lambda:us-east-1:123456789012:function:iot-${topic(2)}"}}],
 "errorAction": {"republish": {"topic": "errors/${topic(2)}", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}}
JSON
aws_pipeline || exit 1
wait_until 20 sink_ready lambda
ok "sink_ready lambda" "the lambda sink runs"
errors_sub

# The invocations the recorder accepted (202): [{path, query, type, event}].
cat > "$T/read.py" <<'PY'
import json, sys
json.dump([{"path": r["path"], "query": r["query"], "type": r["headers"].get("x-amz-invocation-type"),
            "event": json.loads(r["body"])} for r in json.load(sys.stdin) if r["status"] == 202], sys.stdout)
PY
read_back() { bk_requests lambda | "$BK_PY" "$T/read.py" > "$T/read.json"; }
count() { read_back && [ "$(pyq "$T/read.json" "sum(1 for r in d if r['path'].startswith('$1'))")" -ge "$2" ]; }
fn=/2015-03-31/functions

publish l/dev1/data 500 1 &
P1=$!
publish l/dev2/data 500 501
wait $P1
wait_until 30 count "$fn/iot-dev" 1000
ok '[ "$(pyq "$T/read.json" "len(d)")" -eq 1000 ] && [ "$(pyq "$T/read.json" "len(set(r[\"event\"][\"seq\"] for r in d))")" -eq 1000 ]' \
    "1,000 messages, 1,000 invocations, every seq once ($(pyq "$T/read.json" 'len(d)') read)"
ok '[ "$(pyq "$T/read.json" "sum(1 for r in d if r[\"path\"] == \"$fn/iot-%s/invocations\" % (\"dev1\" if r[\"event\"][\"seq\"] <= 500 else \"dev2\") and r[\"query\"] == \"Qualifier=prod\")")" -eq 1000 ]' \
    "each went to the function of its \${topic(2)} by bare name, the ARN's alias as Qualifier=prod"
ok '[ "$(pyq "$T/read.json" "sum(1 for r in d if r[\"type\"] == \"Event\" and r[\"event\"][\"dev\"] == r[\"path\"].split(\"/\")[3][4:] and set(r[\"event\"]) == {\"device\", \"seq\", \"temp\", \"dev\"})")" -eq 1000 ]' \
    "every invocation asynchronous (X-Amz-Invocation-Type: Event) with the SQL result as its event"
set -- $(sigs_checked lambda)
reqs=$1 valid=$2
ok '[ "$reqs" -eq 1000 ] && [ "$reqs" -eq "$valid" ]' "every request's SigV4 signature verified by the recorder ($valid of $reqs)"

publish lp/x 10 1001
wait_until 15 count "$fn/iot-plain/" 10
ok '[ "$(pyq "$T/read.json" "sorted(r[\"event\"][\"seq\"] for r in d if r[\"path\"] == \"$fn/iot-plain/invocations\" and r[\"query\"] == \"\" and set(r[\"event\"]) == {\"seq\"})")" = "$(seq 1001 1010 | paste -sd, | sed "s/,/, /g; s/^/[/; s/$/]/")" ]' \
    "a plain function name: no Qualifier, the event is the SELECT's result (10 of 10)"

# Throttling, then 503s: retried until they pass; counted in status.
bk_ctl POST 'fail?status=429&code=TooManyRequestsException&count=3&service=lambda' > /dev/null
bk_ctl POST 'fail?status=503&code=ServiceException&count=3&service=lambda' > /dev/null
publish l/dev3/data 100 2001
wait_until 30 count "$fn/iot-dev3/" 100
ok '[ "$(pyq "$T/read.json" "len(set(r[\"event\"][\"seq\"] for r in d if r[\"path\"].startswith(\"$fn/iot-dev3/\")))")" -eq 100 ]' \
    "100 more through 3 throttling and 3 503 answers: all there"
retried=$(status_retried 6 sink-lambda)
ok '[ "$retried" -ge 6 ]' "status counts the retries (retried: $retried)"

# Permanent: the function does not exist (404); a binary result.
bk_ctl POST 'lambda/missing?name=iot-gone' > /dev/null
publish lmiss/gone 20
printf '\377\376binary' | mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t lmiss/bin -s
errs() { [ "$(grep -c "^errors/$1 {" "$T/errors.txt")" -ge "$2" ]; }
wait_until 30 errs gone 20
wait_until 10 errs bin 1
ok '[ "$(grep -c "^errors/gone {" "$T/errors.txt")" -eq 20 ]' "missing function: one error document per message (20)"
ok 'grep "^errors/gone {" "$T/errors.txt" | head -1 | grep -q "\"failedAction\":\"LambdaAction\".*\"failedResource\":\"arn:aws:lambda:us-east-1:123456789012:function:iot-gone\".*Function not found.*Status Code: 404; Error Code: ResourceNotFoundException"' \
    "the document names LambdaAction, the function ARN and the service's error"
grep "^errors/gone {" "$T/errors.txt" | head -1 | cut -c1-700 | sed 's/^/# /'
ok '[ "$(grep -c "^errors/bin {" "$T/errors.txt")" -eq 1 ] && grep "^errors/bin {" "$T/errors.txt" | grep -q "\"failedAction\":\"LambdaAction\".*the result is not JSON" && ! bk_requests lambda | grep -q iot-bin' \
    "a binary result is not sent: one error document saying it must be wrapped"
