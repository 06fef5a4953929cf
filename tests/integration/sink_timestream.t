#!/bin/sh
# The timestream action against the recorder (tests/backends/svc_timestream.py)
# reached by Timestream's production host names (IOTRULES_AWS_CONNECT_TO,
# no endpoint configured): endpoint discovery (one DescribeEndpoints to
# ingest.timestream.us-east-1.amazonaws.com, WriteRecords to the address it
# names, rediscovered when that address answers InvalidEndpointException);
# 500 QoS 1 messages through AWS's example rule, one record per attribute
# with its MeasureValueType, the dimensions and the time, each record
# checked; every request's signature verified; records batched (100 a
# request); throttling and 503 retried; rejected records give one error
# document per message and nothing is resent; a missing table one error
# document per message; with AWS_ENDPOINT_URL set, no discovery at all.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../backends/lib.sh"
. "$(dirname "$0")/awslib.sh"
echo "1..17"
backends_start recorder || exit 1
aws_env
unset AWS_ENDPOINT_URL   # any configured endpoint turns discovery off
R=us-east-1.amazonaws.com
export IOTRULES_AWS_CONNECT_TO="ingest.timestream.$R:443:127.0.0.1:$BK_RECORDER_PORT,ingest-cell1.timestream.$R:443:127.0.0.1:$BK_RECORDER_PORT,ingest-cell2.timestream.$R:443:127.0.0.1:$BK_RECORDER_PORT,ingest-cell3.timestream.$R:443:127.0.0.1:$BK_RECORDER_PORT"
bk_ctl POST 'svc/timestream/missing?db=record_devices&table=no_such_table' > /dev/null
mkdir -p "$T/rules"
# AWS's example (timestream-rule-action), a dimension with the message's
# seq added so each record can be traced to its message.
cat > "$T/rules/to_timestream.json" <<'JSON'
{"topicRulePayload": {"sql": "SELECT * FROM 'iot/topic'", "ruleDisabled": false, "awsIotSqlVersion": "2016-03-23",
 "actions": [{"timestream": {"roleArn": "arn:aws:iam::123456789012:role/aws_iot_timestream",
   "tableName": "devices_metrics",
   "dimensions": [{"name": "device_id", "value": "${clientId()}"},
                  {"name": "device_firmware_sku", "value": "My Static Metadata"},
                  {"name": "seq", "value": "${seq}"}],
   "databaseName": "record_devices"}}],
 "errorAction": {"republish": {"topic": "errors/ts", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}}}
JSON
cat > "$T/rules/ts_time.json" <<'JSON'
{"sql": "SELECT seq, temp FROM 'iot/timed'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"timestream": {"roleArn": "arn:aws:iam::123456789012:role/aws_iot_timestream",
   "databaseName": "record_devices", "tableName": "devices_metrics",
   "dimensions": [{"name": "seq", "value": "${seq}"}],
   "timestamp": {"value": "${1700000000 + seq}", "unit": "SECONDS"}}}]}
JSON
cat > "$T/rules/missing.json" <<'JSON'
{"sql": "SELECT * FROM 'missing/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"timestream": {"roleArn": "arn:aws:iam::123456789012:role/aws_iot_timestream",
   "databaseName": "record_devices", "tableName": "no_such_table",
   "dimensions": [{"name": "seq", "value": "${seq}"}]}}],
 "errorAction": {"republish": {"topic": "errors/missing", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}}
JSON
# check.py RECORDS FIRST LAST [ERRSEQS]: the records of messages
# FIRST..LAST (grouped by their seq dimension) against what pub_ts sent;
# prints "GOOD PROBLEMS first-problem".  With ERRSEQS (a file of seqs that
# got an error document), those messages may miss records (rejected) but
# must miss at least one, and no record may be there twice.
cat > "$T/check.py" <<'PY'
import json, sys
recs = json.load(open(sys.argv[1]))
first, last = int(sys.argv[2]), int(sys.argv[3])
errs = set(int(x) for x in open(sys.argv[4]).read().split()) if len(sys.argv) > 4 else set()
def expect(i):
    return {"seq": (str(i), "BIGINT"), "temp": ("%d.5" % (i % 50), "DOUBLE"),
            "ok": ("true" if i % 2 else "false", "BOOLEAN"), "name": ("d%d" % (i % 7), "VARCHAR"),
            "as_str": ("123", "VARCHAR"), "obj": ('{"a":[1,2],"s":"x"}', "VARCHAR"), "arr": ('[%d,"x"]' % i, "VARCHAR")}
by = {}
for r in recs:
    dims = {d["Name"]: (d["Value"], d.get("DimensionValueType")) for d in r["Dimensions"]}
    if "seq" in dims and "device_id" in dims:
        by.setdefault(int(dims["seq"][0]), []).append((r, dims))
good, probs = 0, []
for i in range(first, last + 1):
    got, want = by.get(i, []), expect(i)
    names = [r["MeasureName"] for r, _ in got]
    p = None
    if len(names) != len(set(names)):
        p = "seq %d: a record written twice: %s" % (i, sorted(names))
    elif i in errs and len(names) >= len(want):
        p = "seq %d: has an error document but all its records" % i
    elif i not in errs and sorted(names) != sorted(want):
        p = "seq %d: records %s" % (i, sorted(names))
    for r, dims in got:
        w = want.get(r["MeasureName"])
        if p is None and (w is None or (r["MeasureValue"], r["MeasureValueType"]) != w):
            p = "seq %d: %s = %r %s, want %r" % (i, r["MeasureName"], r["MeasureValue"], r["MeasureValueType"], w)
        if p is None and dims != {"device_id": ("n/a", "VARCHAR"), "device_firmware_sku": ("My Static Metadata", "VARCHAR"), "seq": (str(i), "VARCHAR")}:
            p = "seq %d: dimensions %r" % (i, dims)
        if p is None and (r["TimeUnit"] != "MILLISECONDS" or r["Time"] != got[0][0]["Time"]):
            p = "seq %d: time %s %s" % (i, r["Time"], r["TimeUnit"])
    if p:
        probs.append(p)
    else:
        good += 1
print(good, len(probs), probs[0] if probs else "")
PY
# tq FILE EXPR: EXPR with d = the JSON in FILE, json and J = json.loads at hand.
tq() { "$BK_PY" -c 'import json,sys; J=json.loads; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }
records() { bk_ctl GET svc/timestream/records > "$T/records.json"; }
# stored FIRST LAST: all records of messages FIRST..LAST are there.
stored() { records && [ "$("$BK_PY" "$T/check.py" "$T/records.json" "$1" "$2" | cut -d' ' -f2)" = 0 ]; }
# pub_ts TOPIC N FIRST: N QoS 1 messages, seq FIRST.., with every kind of
# attribute (expect() above); "nothing" is null, so skipped.  (A
# subscriber does not learn the publisher's client id: clientId() is
# "n/a", see README.)
pub_ts() {
	awk -v n="$2" -v f="$3" 'BEGIN { for (i = f; i < f + n; i++) printf "{\"seq\":%d,\"temp\":%d.5,\"ok\":%s,\"name\":\"d%d\",\"as_str\":\"123\",\"obj\":{\"a\":[1,2],\"s\":\"x\"},\"arr\":[%d,\"x\"],\"nothing\":null}\n", i, i % 50, (i % 2 ? "true" : "false"), i % 7, i }' \
	    | mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -i ts-dev-1 -t "$1" -l
}
aws_pipeline || exit 1
wait_until 20 sink_ready timestream
ok "sink_ready timestream" "the timestream sink runs"
errors_sub

t0=$(date +%s%3N)
pub_ts iot/topic 500 1
t1=$(date +%s%3N)
wait_until 30 stored 1 500
res=$("$BK_PY" "$T/check.py" "$T/records.json" 1 500)
ok '[ "${res%% *}" -eq 500 ] && [ "$(pyq "$T/records.json" "len(d)")" -eq 3500 ]' \
    "500 messages: 3,500 records, 7 a message (null skipped), each once with its MeasureValueType, value and dimensions ($res)"
ok '[ "$(pyq "$T/records.json" "all($t0 - 1000 <= int(r[\"Time\"]) <= $t1 + 1000 for r in d)")" = True ]' \
    "Time: when the message came in, in MILLISECONDS, the same for all records of a message"
bk_requests timestream > "$T/reqs.json"
sigs=$(sigs_checked timestream)
ok '[ "${sigs%% *}" -gt 0 ] && [ "${sigs%% *}" = "${sigs##* }" ]' "every request's SigV4 signature verified by the recorder (${sigs##* } of ${sigs%% *})"
ok '[ "$(pyq "$T/reqs.json" "len([r for r in d if r[\"target\"].endswith(\".DescribeEndpoints\") and r[\"headers\"][\"host\"] == \"ingest.timestream.us-east-1.amazonaws.com\"])")" -eq 1 ] &&
    [ "$(pyq "$T/reqs.json" "all(r[\"headers\"][\"host\"] == \"ingest-cell1.timestream.us-east-1.amazonaws.com\" for r in d if r[\"target\"].endswith(\".WriteRecords\"))")" = True ]' \
    "discovery: one DescribeEndpoints to ingest.timestream.us-east-1.amazonaws.com, every WriteRecords to the address it named (ingest-cell1)"
writes=$(pyq "$T/reqs.json" "len([r for r in d if r['target'].endswith('.WriteRecords')])")
ok '[ "$(tq "$T/reqs.json" "all(len(J(r[\"body\"])[\"Records\"]) <= 100 and J(r[\"body\"])[\"DatabaseName\"] == \"record_devices\" and r[\"headers\"][\"content-type\"] == \"application/x-amz-json-1.0\" for r in d if r[\"target\"].endswith(\".WriteRecords\"))")" = True ] && [ "$writes" -lt 100 ]' \
    "batched: $writes WriteRecords for 3,500 records, at most 100 records each, JSON 1.0"

# The discovered address retires: WriteRecords there is answered 421
# InvalidEndpointException; the sink discovers again and resends.
bk_clear
bk_ctl POST svc/timestream/rotate > /dev/null
pub_ts iot/topic 100 501
wait_until 30 stored 501 600
bk_requests timestream > "$T/reqs.json"
ok 'stored 501 600 && [ "$(tq "$T/reqs.json" "[r[\"headers\"][\"host\"] for r in d if r[\"target\"].endswith(\".DescribeEndpoints\")] == [\"ingest.timestream.us-east-1.amazonaws.com\"]")" = True ] &&
    [ "$(tq "$T/reqs.json" "len([r for r in d if r[\"status\"] == 421 and r[\"headers\"][\"host\"].startswith(\"ingest-cell1.\")])")" -ge 1 ] &&
    [ "$(tq "$T/reqs.json" "all(r[\"headers\"][\"host\"] == \"ingest-cell2.timestream.us-east-1.amazonaws.com\" for r in d if r[\"status\"] == 200 and r[\"target\"].endswith(\".WriteRecords\"))")" = True ]' \
    "InvalidEndpointException from the old address: discovered again (1 DescribeEndpoints), written to the new one (cell2), 100 more messages all there"

# retried_ge N: status counts at least N retries (its stats lag a little).
retried_ge() {
	"$BIN/iotrules" --config "$T/config.json" status > "$T/status.txt"
	retried=$(awk '$1 == "sink-timestream" { print $9 }' "$T/status.txt")
	[ "${retried:-0}" -ge "$1" ]
}
retried_ge 0
before=$retried
# Throttling, then 503s: retried until they pass; counted in status.
bk_ctl POST 'fail?status=400&code=ThrottlingException&count=2&service=timestream' > /dev/null
bk_ctl POST 'fail?status=503&code=ServiceUnavailable&count=2&service=timestream' > /dev/null
pub_ts iot/topic 50 601
wait_until 30 stored 601 650
wait_until 10 retried_ge $((before + 4))
bk_requests timestream > "$T/reqs.json"
answers=$(tq "$T/reqs.json" "'%d %d' % (sum(1 for r in d if r['status'] == 400 and 'ThrottlingException' in r['reply']), sum(1 for r in d if r['status'] == 503))")
ok 'stored 601 650 && [ "${retried:-0}" -ge $((before + 4)) ] && [ "$answers" = "2 2" ]' \
    "2 throttling and 2 503 answers ($answers): retried (retried: $before -> $retried), 50 more messages all there"

# The timestamp parameter: value templated, unit SECONDS.
pub_ts iot/timed 20 9001
timed() { records && [ "$(tq "$T/records.json" "len([r for r in d if r[\"Dimensions\"][0][\"Value\"].startswith(\"90\") and len(r[\"Dimensions\"]) == 1])")" -ge 40 ]; }
wait_until 20 timed
ok '[ "$(tq "$T/records.json" "sorted((r[\"Dimensions\"][0][\"Value\"], r[\"MeasureName\"], r[\"MeasureValue\"], r[\"MeasureValueType\"], r[\"Time\"], r[\"TimeUnit\"]) for r in d if len(r[\"Dimensions\"]) == 1) == sorted([(str(i), \"seq\", str(i), \"BIGINT\", str(1700000000 + i), \"SECONDS\") for i in range(9001, 9021)] + [(str(i), \"temp\", \"%d.5\" % (i % 50), \"DOUBLE\", str(1700000000 + i), \"SECONDS\") for i in range(9001, 9021)])")" = True ]' \
    "timestamp {value: \${1700000000 + seq}, unit: SECONDS}: Time and TimeUnit as given, 2 records for SELECT seq, temp"

# Rejected records: every 5th record of the next 3 requests.  One error
# document per message with a rejected record; its other records and
# the other messages written once (nothing resent).
errs() { [ "$(grep -c "^$1 {" "$T/errors.txt")" -ge "$2" ]; }
bk_clear
bk_ctl POST 'partial?service=timestream&count=3&every=5' > /dev/null
pub_ts iot/topic 200 1001
# part_done: every message of 1001..1200 is either all written, or has
# an error document and some of its records missing.
part_done() {
	grep "^errors/ts {" "$T/errors.txt" | cut -d' ' -f2- > "$T/ts_errors.json"
	"$BK_PY" -c 'import base64,json,sys
for l in open(sys.argv[1]): print(json.loads(base64.b64decode(json.loads(l)["base64OriginalPayload"]))["seq"])' "$T/ts_errors.json" > "$T/errseqs"
	records && [ "$("$BK_PY" "$T/check.py" "$T/records.json" 1001 1200 "$T/errseqs" | cut -d' ' -f1)" = 200 ]
}
wait_until 30 part_done
bk_requests timestream > "$T/reqs.json"
rejected=$(tq "$T/reqs.json" "sum(len(J(r['reply'])['RejectedRecords']) for r in d if r['status'] == 400)")
rejseqs=$(tq "$T/reqs.json" "' '.join(sorted(set(J(r['body'])['Records'][x['RecordIndex']]['Dimensions'][2]['Value'] for r in d if r['status'] == 400 for x in J(r['reply'])['RejectedRecords']), key=int))")
rejmsgs=$(echo $rejseqs | wc -w)
res=$("$BK_PY" "$T/check.py" "$T/records.json" 1001 1200 "$T/errseqs")
ok '[ "$rejected" -gt 0 ] && [ "$(sort -n "$T/errseqs" | tr "\n" " ")" = "$rejseqs " ] && [ "${res%% *}" -eq 200 ]' \
    "$rejected records rejected in 3 requests: one error document for each of the $rejmsgs messages they belong to and no other, the rest written, nothing twice ($res)"
sent=$(tq "$T/reqs.json" "[(x['Dimensions'][2]['Value'], x['MeasureName']) for r in d if r['target'].endswith('.WriteRecords') for x in J(r['body'])['Records']]")
ok '[ "$(echo "$sent" | "$BK_PY" -c "import ast,sys; s=ast.literal_eval(sys.stdin.read()); print(len(s), len(set(s)))")" = "1400 1400" ]' \
    "nothing resent: each of the 1,400 records of the 200 messages was in exactly one WriteRecords"
ok 'head -1 "$T/ts_errors.json" | grep "\"failedAction\":\"TimestreamAction\",\"failedResource\":\"record_devices/devices_metrics\"" | grep "RejectedRecordsException" | grep -q "rejected: injected by recorder"' \
    "the document names TimestreamAction, database/table and the rejection's reason"
head -1 "$T/ts_errors.json" | cut -c1-500 | sed 's/^/# /'

# A missing table: one error document per message.
pub_ts missing/x 20 2001
wait_until 30 errs errors/missing 20
ok '[ "$(grep -c "^errors/missing {" "$T/errors.txt")" -eq 20 ] && grep "^errors/missing {" "$T/errors.txt" | head -1 | grep -q "\"failedResource\":\"record_devices/no_such_table\".*ResourceNotFoundException"' \
    "missing table: one error document per message (20), naming the table and ResourceNotFoundException"

# CachePeriodInMinutes 0: the address is not kept, so each send discovers
# it again (the 1440 minutes before kept one address for every request).
bk_ctl POST 'svc/timestream/endpoint?period=0' > /dev/null
bk_ctl POST svc/timestream/rotate > /dev/null
bk_clear
for k in 0 1 2 3 4 5; do pub_ts iot/topic 5 $((4001 + 5 * k)); sleep 0.3; done
wait_until 20 stored 4001 4030
bk_requests timestream > "$T/reqs.json"
describes=$(tq "$T/reqs.json" "len([r for r in d if r['target'].endswith('.DescribeEndpoints')])")
writes=$(tq "$T/reqs.json" "len([r for r in d if r['target'].endswith('.WriteRecords') and r['status'] == 200 and r['headers']['host'].startswith('ingest-cell3.')])")
ok 'stored 4001 4030 && [ "$describes" -ge 5 ] && [ "$writes" -ge 5 ]' \
    "CachePeriodInMinutes 0: not cached, $describes DescribeEndpoints for $writes WriteRecords (to cell3), 30 messages all there"
stop_checked
ok '[ -z "$restarts" ] && [ -z "$sanitizer" ]' "no stage restarted, no sanitizer report ($restarts$sanitizer)"

# With an endpoint configured (here AWS_ENDPOINT_URL, as the SDKs take
# it): no DescribeEndpoints, WriteRecords to that endpoint.
export AWS_ENDPOINT_URL="$BK_RECORDER"
bk_clear
rm -rf "$T/run/stats"   # the first pipeline's "ready" must not count
aws_pipeline || exit 1
wait_until 20 sink_ready timestream
mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -t 'errors/#' -v > "$T/errors.txt" 2>/dev/null &
PIDS="$PIDS $!"
pub_ts iot/topic 30 3001
wait_until 30 stored 3001 3030
bk_requests timestream > "$T/reqs.json"
ok 'stored 3001 3030 && [ "$(tq "$T/reqs.json" "len([r for r in d if r[\"target\"].endswith(\".DescribeEndpoints\")])")" -eq 0 ] &&
    [ "$(tq "$T/reqs.json" "all(r[\"headers\"][\"host\"] == \"127.0.0.1:$BK_RECORDER_PORT\" and r[\"sigv4\"][\"valid\"] for r in d)")" = True ]' \
    "AWS_ENDPOINT_URL set: no DescribeEndpoints, 30 messages written to that endpoint, signatures valid"
stop_checked
ok '[ -z "$restarts" ] && [ -z "$sanitizer" ]' "no stage restarted, no sanitizer report ($restarts$sanitizer)"
