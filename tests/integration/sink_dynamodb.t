#!/bin/sh
# The dynamoDB and dynamoDBv2 actions against dynalite behind the
# recorder's signature-checking proxy, with rules as AWS's docs write
# them: 1,000 QoS 1 messages per action read back with every templated
# field and every attribute's type checked, every request's signature
# verified, writes batched; throttling and 503 answers retried (counted in
# status); a partial failure (UnprocessedItems) resends only those items;
# writes to one key in one batch (${timestamp()} keys; dynamoDBv2's
# table key) all succeed; UPDATE, DELETE and binary payloads; a NUMBER key
# that is not a number, an unknown operation, a dynamoDBv2 result that is
# not an object and a missing table each give one error document per
# message through the errorAction.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../backends/lib.sh"
. "$(dirname "$0")/awslib.sh"
echo "1..20"
backends_start recorder dynalite || exit 1
aws_env
ddb_pids=""
for t in iot-table:topic:S:seq:N iot-table-v2:dev:S:seq:N iot-ops:id:S iot-ts:topic:S:ts:N iot-dup:dev:S:seq:N; do
	set -- $(echo "$t" | tr : ' ')
	bk_tool ddb-create "$1" "$2:$3" ${4:+"$4:$5"} > /dev/null &
	ddb_pids="$ddb_pids $!"
done
wait $ddb_pids

# rule NAME SQL ACTION_JSON: a rule whose errorAction republishes to errors/NAME.
rule() {
	cat > "$T/rules/$1.json" <<JSON
{"sql": "$2", "awsIotSqlVersion": "2016-03-23", "actions": [$3],
 "errorAction": {"republish": {"topic": "errors/$1", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}}
JSON
}
ROLE='"roleArn": "arn:aws:iam::123456789012:role/iot-dynamodb"'
mkdir -p "$T/rules"
rule v1 "SELECT *, seq > 500 AS late, {'list': [temp, 'x']} AS more FROM 'ddb/+/data'" \
    '{"dynamoDB": {"tableName": "iot-table", "hashKeyField": "topic", "hashKeyValue": "${topic()}", "hashKeyType": "STRING",
      "rangeKeyField": "seq", "rangeKeyValue": "${seq}", "rangeKeyType": "NUMBER", "payloadField": "payload_${topic(2)}", '"$ROLE"'}}'
rule v2 "SELECT topic(2) AS dev, *, {'t': temp, 'flags': [seq > 500, null]} AS extra FROM 'ddb2/+/data'" \
    '{"dynamoDBv2": {"putItem": {"tableName": "iot-table-v2"}, '"$ROLE"'}}'
rule ops "SELECT * FROM 'ops/+'" \
    '{"dynamoDB": {"tableName": "iot-ops", "hashKeyField": "id", "hashKeyValue": "${id}", "operation": "${op}", "payloadField": "body", '"$ROLE"'}}'
rule bin "SELECT * FROM 'bin/+'" \
    '{"dynamoDB": {"tableName": "iot-ops", "hashKeyField": "id", "hashKeyValue": "${topic()}", "payloadField": "body", '"$ROLE"'}}'
rule ts "SELECT * FROM 'ts/+'" \
    '{"dynamoDB": {"tableName": "iot-ts", "hashKeyField": "topic", "hashKeyValue": "${topic()}", "rangeKeyField": "ts",
      "rangeKeyValue": "${timestamp()}", "rangeKeyType": "NUMBER", '"$ROLE"'}}'
rule num "SELECT * FROM 'num/+'" \
    '{"dynamoDB": {"tableName": "iot-table", "hashKeyField": "topic", "hashKeyValue": "${topic()}",
      "rangeKeyField": "seq", "rangeKeyValue": "${seq}", "rangeKeyType": "NUMBER", '"$ROLE"'}}'
rule dup2 "SELECT 'dup' AS dev, 1 AS seq, seq AS n FROM 'dup2/+'" '{"dynamoDBv2": {"putItem": {"tableName": "iot-dup"}, '"$ROLE"'}}'
rule bad2 "SELECT VALUE seq FROM 'bad2/+'" '{"dynamoDBv2": {"putItem": {"tableName": "iot-dup"}, '"$ROLE"'}}'
rule missing "SELECT * FROM 'missing/+'" \
    '{"dynamoDB": {"tableName": "no-such-table", "hashKeyField": "id", "hashKeyValue": "${newuuid()}", '"$ROLE"'}}'
rule missing2 "SELECT * FROM 'missing2/+'" '{"dynamoDBv2": {"putItem": {"tableName": "no-such-table"}, '"$ROLE"'}}'
aws_pipeline || exit 1
sinks_ready() { [ "$(cat "$T"/run/stats/sink-dynamodb-1.json "$T"/run/stats/sink-dynamodbv2-1.json 2>/dev/null | grep -c '"ready":true')" -eq 2 ]; }
wait_until 20 sinks_ready
ok sinks_ready "the dynamodb and dynamodbv2 sinks run"
errors_sub

scan() { bk_tool ddb-scan "$1" > "$T/$1.json"; }
count() { scan "$1" && [ "$(pyq "$T/$1.json" 'len(d)')" -ge "$2" ]; }
errs() { grep -c "^errors/$1 {" "$T/errors.txt"; }
sstat() { pyq "$T/run/stats/sink-$1-1.json" "d['$2']"; }
# py 'CODE' ARGS...: runs python with argv = ARGS (json and sys imported).
py() { _c=$1; shift; "$BK_PY" -c "import json, sys
$_c" "$@"; }

publish ddb/dev1/data 500 1 &
P1=$!
publish ddb/dev2/data 500 501 &
P2=$!
publish ddb2/dev1/data 500 1 &
P3=$!
publish ddb2/dev2/data 500 501
wait $P1 $P2 $P3
wait_until 60 count iot-table 1000
wait_until 30 count iot-table-v2 1000
ok '[ "$(pyq "$T/iot-table.json" "len(d)")" -eq 1000 ] && [ "$(pyq "$T/iot-table-v2.json" "len(d)")" -eq 1000 ]' \
    "dynamoDB and dynamoDBv2: 1,000 messages each, 1,000 items each ($(pyq "$T/iot-table.json" 'len(d)'), $(pyq "$T/iot-table-v2.json" 'len(d)'))"
v1bad=$(py '
bad = []
for it in json.load(open(sys.argv[1])):
    seq = int(it["seq"]["N"]); dev = "dev1" if seq <= 500 else "dev2"
    want = {"topic": {"S": "ddb/%s/data" % dev}, "seq": {"N": str(seq)}, "payload_" + dev: {"M": {
        "device": {"S": "d%d" % (seq % 7)}, "seq": {"N": str(seq)}, "temp": {"N": str(seq % 50)},
        "late": {"BOOL": seq > 500}, "more": {"M": {"list": {"L": [{"N": str(seq % 50)}, {"S": "x"}]}}}}}}
    if it != want: bad.append(it)
print(len(bad), json.dumps(bad[:1]))' "$T/iot-table.json")
ok '[ "${v1bad%% *}" = 0 ]' "dynamoDB: every item keyed by \${topic()} (S) and \${seq} (N), the result in payload_\${topic(2)} as M with S/N/BOOL/M/L members (bad: $v1bad)"
v2bad=$(py '
bad = []
for it in json.load(open(sys.argv[1])):
    seq = int(it["seq"]["N"])
    want = {"dev": {"S": "dev1" if seq <= 500 else "dev2"}, "device": {"S": "d%d" % (seq % 7)}, "seq": {"N": str(seq)},
        "temp": {"N": str(seq % 50)}, "extra": {"M": {"t": {"N": str(seq % 50)}, "flags": {"L": [{"BOOL": seq > 500}, {"NULL": True}]}}}}
    if it != want: bad.append(it)
print(len(bad), json.dumps(bad[:1]))' "$T/iot-table-v2.json")
ok '[ "${v2bad%% *}" = 0 ]' "dynamoDBv2: one attribute per result member, typed S/N/M/L/BOOL/NULL (bad: $v2bad)"
bk_requests dynamodb > "$T/reqs.json"
sigs=$(py '
r = json.load(open(sys.argv[1]))
tables = [json.loads(x["body"]).get("TableName") or list(json.loads(x["body"])["RequestItems"])[0] for x in r]
print(len(r), sum(1 for x in r if x["sigv4"]["valid"]), tables.count("iot-table"), tables.count("iot-table-v2"),
      sum(1 for x in r if x["target"].endswith("BatchWriteItem")))' "$T/reqs.json")
set -- $sigs
reqs=$1 valid=$2 r1=$3 r2=$4 batches=$5
ok '[ "$reqs" -gt 0 ] && [ "$reqs" -eq "$valid" ] && [ "$r1" -lt 1000 ] && [ "$r2" -lt 1000 ] && [ "$batches" -gt 0 ]' \
    "every request's SigV4 signature verified ($valid of $reqs), writes batched ($r1 requests for 1,000 dynamoDB messages, $r2 for dynamoDBv2; $batches BatchWriteItem)"

# Throttling, then 503s: retried until they pass; counted in status.
bk_clear
bk_ctl POST 'fail?status=400&code=ProvisionedThroughputExceededException&count=3&service=dynamodb' > /dev/null
bk_ctl POST 'fail?status=503&code=ServiceUnavailable&count=3&service=dynamodb' > /dev/null
publish ddb/dev3/data 100 2001 &
P1=$!
publish ddb2/dev3/data 100 2001
wait $P1
wait_until 60 count iot-table 1100
wait_until 30 count iot-table-v2 1100
ok '[ "$(pyq "$T/iot-table.json" "len(d)")" -eq 1100 ] && [ "$(pyq "$T/iot-table-v2.json" "len(d)")" -eq 1100 ]' \
    "100 more per action through 3 throttling and 3 503 answers: all there ($(pyq "$T/iot-table.json" 'len(d)'), $(pyq "$T/iot-table-v2.json" 'len(d)'))"
retried=$(status_retried 6 sink-dynamodb sink-dynamodbv2)
ok '[ "$retried" -ge 6 ]' "status counts the retries (RETRIED of both sinks: $retried)"

# A partial failure: every 2nd item of the next 2 BatchWriteItem requests comes back in UnprocessedItems.
bk_clear
bk_ctl POST 'partial?service=dynamodb&count=2&every=2' > /dev/null
publish ddb/dev4/data 100 3001
wait_until 60 count iot-table 1200
bk_requests dynamodb > "$T/reqs.json"
part=$(py '
sent, unprocessed = {}, {}
for r in json.load(open(sys.argv[1])):
    b, a = json.loads(r["body"]), json.loads(r["reply"] or "{}")
    for e in a.get("UnprocessedItems", {}).get("iot-table", []):
        s = e["PutRequest"]["Item"]["seq"]["N"]
        unprocessed[s] = unprocessed.get(s, 0) + 1
    for it in ([e["PutRequest"]["Item"] for e in b["RequestItems"]["iot-table"]] if "RequestItems" in b else [b["Item"]]):
        sent[it["seq"]["N"]] = sent.get(it["seq"]["N"], 0) + 1
good = len(sent) == 100 and unprocessed and all(n == 1 + unprocessed.get(s, 0) for s, n in sent.items())
print(1 if good else 0, sum(unprocessed.values()), sum(sent.values()))' "$T/reqs.json")
set -- $part
good=$1 unproc=$2 writes=$3
ok '[ "$(pyq "$T/iot-table.json" "len(d)")" -eq 1200 ] && [ "$good" = 1 ]' \
    "UnprocessedItems: only those resent ($unproc items returned unprocessed, $writes writes sent for 100 messages), all 1,200 there"

# UPDATE and DELETE (operation templated), and an operation that is none of the three.
printf '{"id":"k1","op":"INSERT","v":1}\n{"id":"k2","op":"INSERT","v":1}\n{"id":"k3","v":1}\n' |
    mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t ops/a -l
wait_until 20 count iot-ops 3
printf '{"id":"k1","op":"UPDATE","v":2}\n{"id":"k2","op":"DELETE"}\n{"id":"k3","op":"MERGE"}\n' |
    mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t ops/a -l
opsdone() { scan iot-ops && py '
d = {it["id"]["S"]: it for it in json.load(open(sys.argv[1]))}
sys.exit(0 if "k2" not in d and d["k1"]["body"]["M"]["v"] == {"N": "2"} else 1)' "$T/iot-ops.json"; }
wait_until 20 opsdone
ok opsdone "UPDATE set the payload attribute of k1 (v 2), DELETE removed k2, INSERT (the default) wrote k3"
wait_until 20 eval '[ "$(errs ops)" -ge 1 ]'
ok '[ "$(errs ops)" -eq 1 ] && grep "^errors/ops {" "$T/errors.txt" | grep -q "\"failedAction\":\"DynamoDBAction\".*is not INSERT, UPDATE or DELETE"' \
    "operation MERGE: an error document naming DynamoDBAction and why"

# A binary payload is stored as B.
printf '\000\001\002binary\377' > "$T/bin.dat"
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t bin/b1 -f "$T/bin.dat"
binok() { scan iot-ops && py '
d = {it["id"]["S"]: it for it in json.load(open(sys.argv[1]))}
sys.exit(0 if d.get("bin/b1", {}).get("body") == {"B": "AAECYmluYXJ5/w=="} else 1)' "$T/iot-ops.json"; }
wait_until 20 binok
ok binok "a payload that is not JSON: the payload attribute is B, the bytes base64"

# ${timestamp()} as the range key (as AWS's docs): messages of one ms write one key; none may fail.
bk_clear
out0=$(sstat dynamodb out) failed0=$(sstat dynamodb failed)
publish ts/a 300
tsdone() { [ "$(sstat dynamodb out)" -ge $((out0 + 300)) ]; }
wait_until 30 tsdone
scan iot-ts
refused=$(bk_requests dynamodb | pyq /dev/stdin 'sum(1 for r in d if r["status"] != 200)')
ok 'tsdone && [ "$(sstat dynamodb failed)" -eq "$failed0" ] && [ "$refused" -eq 0 ] && [ "$(errs ts)" -eq 0 ]' \
    "\${timestamp()} range key: 300 messages written as $(pyq "$T/iot-ts.json" 'len(d)') items (one per ms), none refused or failed"

# dynamoDBv2 writes to one table key: a batch refused for duplicates is resent item by item.
bk_clear
out0=$(sstat dynamodbv2 out) failed0=$(sstat dynamodbv2 failed)
publish dup2/a 40
dupdone() { [ "$(sstat dynamodbv2 out)" -ge $((out0 + 40)) ]; }
wait_until 30 dupdone
count iot-dup 1
set -- $(bk_requests dynamodb | pyq /dev/stdin '" ".join(str(sum(1 for r in d if r["target"].endswith("BatchWriteItem") and r["status"] == s
    and (s == 200 or "Provided list of item keys contains duplicates" in r["reply"]))) for s in (200, 400))')
batch_ok=$1 batch_refused=$2
ok 'dupdone && [ "$(sstat dynamodbv2 failed)" -eq "$failed0" ] && [ "$(pyq "$T/iot-dup.json" "len(d)")" -eq 1 ] && [ "$(errs dup2)" -eq 0 ] && [ "$batch_ok" -eq 0 ]' \
    "dynamoDBv2, 40 writes to one key: all written, none failed ($(pyq "$T/iot-dup.json" 'len(d)') item; $batch_refused BatchWriteItem refused for duplicates, resent item by item)"

# Failures: one error document per message.
publish num/x 3
printf '{"seq":"abc"}\n{"seq":"12x"}\n' | mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t num/y -l
publish bad2/x 5
publish missing/x 20
publish missing2/x 20
alldocs() { [ "$(errs num)" -ge 2 ] && [ "$(errs bad2)" -ge 5 ] && [ "$(errs missing)" -ge 20 ] && [ "$(errs missing2)" -ge 20 ]; }
wait_until 30 alldocs
ok '[ "$(errs num)" -eq 2 ] && grep "^errors/num {" "$T/errors.txt" | grep -q "\"failedAction\":\"DynamoDBAction\",\"failedResource\":\"iot-table\".*rangeKeyValue .*abc.* of the NUMBER key seq is not a number"' \
    "a NUMBER key whose value is not a number: one error document per message (2; 3 numeric ones written)"
ok '[ "$(errs bad2)" -eq 5 ] && grep "^errors/bad2 {" "$T/errors.txt" | grep -q "\"failedAction\":\"DynamoDBv2Action\".*not a JSON object"' \
    "dynamoDBv2 with a result that is not an object: one error document per message (5)"
ok '[ "$(errs missing)" -eq 20 ] && [ "$(errs missing2)" -eq 20 ]' "missing table: one error document per message and action (20 + 20)"
ok 'grep "^errors/missing {" "$T/errors.txt" | head -1 | grep -q "\"failedAction\":\"DynamoDBAction\",\"failedResource\":\"no-such-table\".*Requested resource not found.*ResourceNotFoundException"' \
    "dynamoDB: the document names DynamoDBAction, the table and the service's message and code"
ok 'grep "^errors/missing2 {" "$T/errors.txt" | head -1 | grep -q "\"failedAction\":\"DynamoDBv2Action\",\"failedResource\":\"no-such-table\".*Requested resource not found.*ResourceNotFoundException"' \
    "dynamoDBv2: the document names DynamoDBv2Action, the table and the service's message and code"
grep "^errors/missing {" "$T/errors.txt" | head -1 | cut -c1-700 | sed 's/^/# /'
ok '[ "$(errs v1)" -eq 0 ] && [ "$(errs v2)" -eq 0 ] && [ "$(errs ts)" -eq 0 ] && [ "$(errs dup2)" -eq 0 ]' \
    "no error document for any message that could be written"
"$BIN/iotrules" --config "$T/config.json" status > "$T/status.txt"
restarts=$(awk '$1 == "sink-dynamodb" || $1 == "sink-dynamodbv2" { s += $5 } END { print s + 0 }' "$T/status.txt")
kill "$SUP"
wait "$SUP"
ok '[ "$restarts" -eq 0 ] && ! grep -q "Sanitizer\|runtime error" "$T/sup.log"' \
    "neither sink restarted; stopped cleanly, no sanitizer report ($restarts restarts)"
if [ "$restarts" -ne 0 ] || grep -q "Sanitizer\|runtime error" "$T/sup.log"; then
	grep "sink-dynamodb" "$T/status.txt" | sed 's/^/# status: /'
	grep -E "Sanitizer|runtime error|exited|killed|signal|restart" "$T/sup.log" | head -20 | cut -c1-300 | sed 's/^/# log: /'
fi
