#!/bin/sh
# The SQL functions that call AWS, in the evaluate stage: get_dynamodb
# against dynalite behind the recorder's signature-checking proxy (a hash
# key table and a hash + range key table) and aws_lambda against the
# recorder (a RequestResponse invoke, which echoes its event back), the
# results republished to MQTT and checked message by message; every
# request signed; a missing item or a missing function fails the rule's
# SQL (no action, a log line naming why), as in AWS; iotrules-sql calls
# them only with --aws or an endpoint configured.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../backends/lib.sh"
. "$(dirname "$0")/awslib.sh"
echo "1..10"
backends_start recorder dynalite || exit 1
aws_env
bk_tool ddb-create devices id:S > /dev/null
bk_tool ddb-create readings dev:S ts:N > /dev/null
ddb() { bk_curl dynamodb -H "X-Amz-Target: DynamoDB_20120810.$1" -H 'Content-Type: application/x-amz-json-1.0' -d "$2" "$BK_DYNAMODB/"; }
for i in 0 1 2 3 4 5 6; do
	ddb PutItem "{\"TableName\":\"devices\",\"Item\":{\"id\":{\"S\":\"d$i\"},\"room\":{\"S\":\"r$i\"},\"limits\":{\"M\":{\"max\":{\"N\":\"3$i.5\"},\"on\":{\"BOOL\":true}}},\"tags\":{\"L\":[{\"S\":\"t$i\"},{\"NULL\":true}]}}}" > /dev/null
done
ddb PutItem '{"TableName":"readings","Item":{"dev":{"S":"d0"},"ts":{"N":"42"},"v":{"N":"7"}}}' > /dev/null
mkdir -p "$T/rules"
cat > "$T/rules/enrich.json" <<'JSON'
{"sql": "SELECT seq, get_dynamodb('devices', 'id', device, 'arn:aws:iam::123456789012:role/ddb') AS info, aws_lambda('arn:aws:lambda:us-east-1:123456789012:function:enrich:live', {'seq': seq, 'twice': seq * 2}) AS fn FROM 'sa/+'",
 "awsIotSqlVersion": "2016-03-23",
 "actions": [{"republish": {"topic": "out/${topic(2)}", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}]}
JSON
cat > "$T/rules/ranged.json" <<'JSON'
{"sql": "SELECT VALUE get_dynamodb('readings', 'dev', device, 'ts', seq, 'arn:aws:iam::123456789012:role/ddb') FROM 'sr/+'",
 "awsIotSqlVersion": "2016-03-23",
 "actions": [{"republish": {"topic": "out/ranged", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}]}
JSON
cat > "$T/rules/whole.json" <<'JSON'
{"sql": "SELECT aws_lambda('iot-echo', *) AS echoed FROM 'sw/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"republish": {"topic": "out/whole", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}]}
JSON
aws_pipeline || exit 1
mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -t 'out/#' -v > "$T/out.txt" 2>/dev/null &
PIDS="$PIDS $!"
sub_ready "$T/out.txt" out/probe
got() { [ "$(grep -c "^$1 {" "$T/out.txt")" -ge "$2" ]; }

publish sa/x 70 1
wait_until 30 got out/x 70
grep '^out/x {' "$T/out.txt" | cut -d' ' -f2- > "$T/x.jsonl"
cat > "$T/check.py" <<'PY'
import json, sys
good = 0
for line in open(sys.argv[1]):
    m = json.loads(line)
    i = m["seq"] % 7
    item = {"id": "d%d" % i, "room": "r%d" % i, "limits": {"max": 30 + i + 0.5, "on": True}, "tags": ["t%d" % i, None]}
    good += m["info"] == item and m["fn"] == {"seq": m["seq"], "twice": 2 * m["seq"]}
print(good)
PY
ok '[ "$(wc -l < "$T/x.jsonl")" -eq 70 ] && [ "$("$BK_PY" "$T/check.py" "$T/x.jsonl")" -eq 70 ]' \
    "70 messages republished, each with its device's DynamoDB item as JSON and the Lambda's answer ($("$BK_PY" "$T/check.py" "$T/x.jsonl") of 70)"
set -- $(sigs_checked dynamodb)
ddb_reqs=$1 ddb_valid=$2
ok '[ "$(bk_requests dynamodb | "$BK_PY" -c "import json,sys; print(sum(1 for r in json.load(sys.stdin) if r[\"target\"] == \"DynamoDB_20120810.GetItem\" and r[\"sigv4\"][\"valid\"] and r[\"listener\"] == \"proxy\"))")" -eq 70 ] && [ "$ddb_reqs" -eq "$ddb_valid" ]' \
    "70 GetItem requests through the proxy, every signature valid ($ddb_valid of $ddb_reqs DynamoDB requests)"
bk_requests lambda > "$T/lambda.json"
ok '[ "$(pyq "$T/lambda.json" "sum(1 for r in d if r[\"path\"] == \"/2015-03-31/functions/enrich/invocations\" and r[\"query\"] == \"Qualifier=live\" and r[\"headers\"][\"x-amz-invocation-type\"] == \"RequestResponse\" and r[\"sigv4\"][\"valid\"] and r[\"status\"] == 200)")" -eq 70 ]' \
    "70 synchronous invokes of enrich by bare name, Qualifier=live, RequestResponse, all signed"

publish sr/x 1 42
publish sw/x 1 43
wait_until 15 got out/ranged 1
wait_until 15 got out/whole 1
ok 'grep -q "^out/ranged {\"dev\":\"d0\",\"ts\":42,\"v\":7}$" "$T/out.txt"' "get_dynamodb with a sort key: the item of (d0, 42)"
ok 'grep -q "^out/whole {\"echoed\":{\"device\":\"d1\",\"seq\":43,\"temp\":43}}$" "$T/out.txt"' "aws_lambda(fn, *): the whole payload is the event"

# Failures: no such item, no such function: the SQL fails, no action.
bk_ctl POST 'lambda/missing?name=enrich' > /dev/null
publish sa/nofn 1 50
publish sr/noitem 1 99
sleep 2
ok '! grep -q "^out/nofn " "$T/out.txt" && grep -q "rule enrich: SQL evaluation failed.*aws_lambda(): Lambda Invoke failed.*ResourceNotFoundException" "$T/sup.log"' \
    "a missing function fails the rule's SQL: nothing republished, the log says why"
ok '[ "$(grep -c "^out/ranged " "$T/out.txt")" -eq 1 ] && grep -q "rule ranged: SQL evaluation failed.*get_dynamodb(): table readings has no item" "$T/sup.log"' \
    "a missing item fails the rule's SQL (as in AWS): nothing republished, the log says why"
grep "SQL evaluation failed" "$T/sup.log" | head -2 | cut -c1-400 | sed 's/^/# /'

# The tester: with an endpoint configured it calls AWS; without, it fails.
echo '{"device":"d2"}' > "$T/p.json"
ok '[ "$("$BIN/iotrules-sql" --sql-version 2016-03-23 --payload-file "$T/p.json" "SELECT get_dynamodb(\"devices\", \"id\", device, \"r\").room AS room FROM \"t\"" 2>/dev/null)" = "{\"room\":\"r2\"}" ]' \
    "iotrules-sql with AWS_ENDPOINT_URL_DYNAMODB set reads the item"
ok 'env -u AWS_ENDPOINT_URL -u AWS_ENDPOINT_URL_DYNAMODB "$BIN/iotrules-sql" --sql-version 2016-03-23 --payload-file "$T/p.json" "SELECT get_dynamodb(\"devices\", \"id\", device, \"r\") AS i FROM \"t\"" 2> "$T/tester.err"; [ $? -eq 2 ] && grep -q "get_dynamodb(): needs AWS" "$T/tester.err"' \
    "iotrules-sql without an endpoint (or --aws) leaves AWS alone: exit 2, the function named"
bk_ctl POST 'lambda/failing?name=iot-fail' > /dev/null
"$BIN/iotrules-sql" --sql-version 2016-03-23 --payload-file "$T/p.json" "SELECT aws_lambda('iot-fail', *) AS r FROM 't'" > "$T/fail.out" 2> "$T/fail.err"
rc=$?
ok '[ $rc -eq 2 ] && [ ! -s "$T/fail.out" ] && grep -q "FunctionError:Unhandled" "$T/fail.err" && grep -q "boom in iot-fail" "$T/fail.err"' \
    "a function that fails (200 with X-Amz-Function-Error) fails the SQL with the function's error message (exit $rc)"
