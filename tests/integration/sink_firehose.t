#!/bin/sh
# The firehose action against the recorder (which answers Firehose itself
# and checks every SigV4 signature; its records, with its answers, are the
# read-back): 1,000 QoS 1 messages through a rule as AWS's docs write it,
# every record read back with its templated stream name and separator,
# records batched in PutRecordBatch; batchMode: one record per array
# element, a non-array result as one record, more than 500 elements a
# failure; throttling and 503 answers retried (and counted in status); a
# partial failure resends only the failed records, of batchMode jobs too;
# a missing stream sends one error document per message through the
# errorAction.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../backends/lib.sh"
. "$(dirname "$0")/awslib.sh"
echo "1..13"
backends_start recorder || exit 1
aws_env
mkdir -p "$T/rules"
cat > "$T/rules/to_firehose.json" <<'JSON'
{"sql": "SELECT *, topic(2) AS dev FROM 'f/+/data'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"firehose": {"deliveryStreamName": "iot-${topic(2)}", "separator": "\n",
   "roleArn": "arn:aws:iam::123456789012:role/iot-firehose"}}]}
JSON
cat > "$T/rules/batch.json" <<'JSON'
{"sql": "SELECT VALUE readings FROM 'fb/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"firehose": {"deliveryStreamName": "iot-batch", "separator": ",", "batchMode": true,
   "roleArn": "arn:aws:iam::123456789012:role/iot-firehose"}}],
 "errorAction": {"republish": {"topic": "errors/fb", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}}
JSON
cat > "$T/rules/missing.json" <<'JSON'
{"sql": "SELECT * FROM 'missing/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"firehose": {"deliveryStreamName": "no-such-stream",
   "roleArn": "arn:aws:iam::123456789012:role/iot-firehose"}}],
 "errorAction": {"republish": {"topic": "errors/f", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}}
JSON
aws_pipeline || exit 1
wait_until 20 sink_ready firehose
ok "sink_ready firehose" "the firehose sink runs"
errors_sub

# The records the recorder accepted (entries of a 200 answer without an
# ErrorCode), in order: [{stream, data}], in $T/read.json.
cat > "$T/read.py" <<'PY'
import base64, json, sys
out = []
for r in json.load(sys.stdin):
    if r["target"] != "Firehose_20150804.PutRecordBatch" or r["status"] != 200:
        continue
    body, reply = json.loads(r["body"]), json.loads(r["reply"])
    for rec, ans in zip(body["Records"], reply["RequestResponses"]):
        if "ErrorCode" not in ans:
            out.append({"stream": body["DeliveryStreamName"], "data": base64.b64decode(rec["Data"]).decode()})
json.dump(out, sys.stdout)
PY
read_back() { bk_requests firehose | "$BK_PY" "$T/read.py" > "$T/read.json"; }
count() { read_back && [ "$(pyq "$T/read.json" "sum(1 for r in d if r['stream'].startswith('$1'))")" -ge "$2" ]; }
# Records of stream prefix $1 whose data is a JSON line, decoded.
# The iot-batch records with seq in [$1, $2], sorted; and what they should be
# (format $3 with seq and k for k < $4).
batch_set() { pyq "$T/read.json" "sorted(r['data'] for r in d if r['stream'] == 'iot-batch' and $1 <= __import__('json').loads(r['data'][:-1])['seq'] <= $2)"; }
expect_set() { "$BK_PY" -c 'import sys; a = sys.argv; print(sorted((a[3] % ((i, k) if a[3].count("%d") == 2 else i)) for i in range(int(a[1]), int(a[2]) + 1) for k in range(int(a[4]))))' "$@"; }
lines() { pyq "$T/read.json" "__import__('json').dumps([__import__('json').loads(r['data'][:-1]) for r in d if r['stream'].startswith('$1') and r['data'].endswith('\n') and r['data'].count('\n') == 1])"; }

publish f/dev1/data 500 1 &
P1=$!
publish f/dev2/data 500 501
wait $P1
wait_until 30 count iot-dev 1000
lines iot-dev > "$T/dev.json"
ok '[ "$(pyq "$T/read.json" "len(d)")" -eq 1000 ] && [ "$(pyq "$T/dev.json" "len(set(r[\"seq\"] for r in d))")" -eq 1000 ]' \
    "1,000 messages, 1,000 records, every seq once, each one line ending in the separator ($(pyq "$T/read.json" 'len(d)') read)"
ok '[ "$(pyq "$T/read.json" "sum(1 for r in d if r[\"stream\"] == \"iot-\" + __import__(\"json\").loads(r[\"data\"])[\"dev\"] and __import__(\"json\").loads(r[\"data\"])[\"dev\"] == (\"dev1\" if __import__(\"json\").loads(r[\"data\"])[\"seq\"] <= 500 else \"dev2\"))")" -eq 1000 ]' \
    "every record went to its stream iot-\${topic(2)} and its data is the SQL result"
set -- $(sigs_checked firehose)
reqs=$1 valid=$2
ok '[ "$reqs" -gt 0 ] && [ "$reqs" -eq "$valid" ] && [ "$reqs" -lt 1000 ]' \
    "every request's SigV4 signature verified by the recorder ($valid of $reqs), records batched ($reqs PutRecordBatch for 1,000)"

# batchMode: 100 arrays of 3 → 300 records; 10 objects → one record each;
# one array of 501 elements → a failure.
awk 'BEGIN { for (i = 1; i <= 100; i++) printf "{\"readings\":[{\"seq\":%d,\"k\":0},{\"seq\":%d,\"k\":1}, {\"seq\":%d,\"k\":2}]}\n", i, i, i }' \
    | mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t fb/arr -l
awk 'BEGIN { for (i = 101; i <= 110; i++) printf "{\"readings\":{\"seq\":%d,\"one\":true}}\n", i }' \
    | mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t fb/one -l
awk 'BEGIN { printf "{\"readings\":["; for (i = 0; i < 501; i++) printf "%s{\"seq\":999,\"k\":%d}", i ? "," : "", i; print "]}" }' \
    | mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t fb/big -l
wait_until 30 count iot-batch 310
ok '[ "$(batch_set 1 100)" = "$(expect_set 1 100 "{\"seq\":%d,\"k\":%d}," 3)" ]' \
    "batchMode: 100 arrays of 3 elements gave 300 records, each element's JSON followed by the separator"
ok '[ "$(batch_set 101 110)" = "$(expect_set 101 110 "{\"seq\":%d,\"one\":true}," 1)" ]' \
    "batchMode: a result that is not an array is one record (10 of 10)"
errs() { [ "$(grep -c "^$1 {" "$T/errors.txt")" -ge "$2" ]; }
wait_until 15 errs errors/fb 1
ok '[ "$(grep -c "^errors/fb {" "$T/errors.txt")" -eq 1 ] && grep "^errors/fb {" "$T/errors.txt" | grep -q "\"failedAction\":\"FirehoseAction\".*\"failedResource\":\"iot-batch\".*more than 500 elements" && [ "$(batch_set 999 999)" = "[]" ]' \
    "batchMode: 501 elements is a failure: one error document, no record sent"

# Throttling, then 503s: retried until they pass; counted in status.
bk_ctl POST 'fail?status=400&code=ThrottlingException&count=3&service=firehose' > /dev/null
bk_ctl POST 'fail?status=503&code=ServiceUnavailableException&count=3&service=firehose' > /dev/null
publish f/dev3/data 100 2001
wait_until 30 count iot-dev 1100
ok '[ "$(pyq "$T/read.json" "sum(1 for r in d if r[\"stream\"] == \"iot-dev3\")")" -eq 100 ]' \
    "100 more through 3 throttling and 3 503 answers: all there ($(pyq "$T/read.json" 'sum(1 for r in d if r["stream"] == "iot-dev3")'))"
retried=$(status_retried 6 sink-firehose)
ok '[ "$retried" -ge 6 ]' "status counts the retries (retried: $retried)"

# A partial failure: every 2nd record of the next 2 batches fails; then
# every 3rd of the next 2 batches of batchMode jobs (3 records each).
bk_ctl POST 'partial?service=firehose&count=2&every=2' > /dev/null
publish f/dev4/data 100 3001
wait_until 30 count iot-dev 1200
lines iot-dev4 > "$T/dev4.json"
ok '[ "$(pyq "$T/dev4.json" "len(d)")" -eq 100 ] && [ "$(pyq "$T/dev4.json" "len(set(r[\"seq\"] for r in d))")" -eq 100 ] && [ "$(bk_requests firehose | "$BK_PY" -c "import json,sys; print(sum(json.loads(r[\"reply\"])[\"FailedPutCount\"] for r in json.load(sys.stdin) if r[\"status\"] == 200))")" -gt 0 ]' \
    "partial failures: only the failed records resent, none twice ($(pyq "$T/dev4.json" 'len(d)') records of 100)"
bk_ctl POST 'partial?service=firehose&count=2&every=3' > /dev/null
awk 'BEGIN { for (i = 201; i <= 220; i++) printf "{\"readings\":[{\"seq\":%d,\"k\":0},{\"seq\":%d,\"k\":1},{\"seq\":%d,\"k\":2}]}\n", i, i, i }' \
    | mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t fb/arr -l
wait_until 30 count iot-batch 370
# "SENT FAILED": entries of seq 201..220 in every request, and those answered with an ErrorCode.
sent_failed() {
	bk_requests firehose | "$BK_PY" -c 'import base64, json, sys
s = f = 0
for r in json.load(sys.stdin):
    if r["status"] != 200 or json.loads(r["body"])["DeliveryStreamName"] != "iot-batch":
        continue
    for rec, ans in zip(json.loads(r["body"])["Records"], json.loads(r["reply"])["RequestResponses"]):
        if json.loads(base64.b64decode(rec["Data"])[:-1])["seq"] >= 201:
            s += 1
            f += "ErrorCode" in ans
print(s, f)'
}
set -- $(sent_failed)
sent=$1 failed=$2
ok '[ "$(batch_set 201 220)" = "$(expect_set 201 220 "{\"seq\":%d,\"k\":%d}," 3)" ] && [ "$failed" -gt 0 ] && [ "$sent" -eq $((60 + failed)) ]' \
    "partial failures in batchMode jobs: each of the 60 records once; $sent sent for $failed failed (a job resends only its failed records)"

# Permanent: the stream does not exist.
bk_ctl POST 'fail?status=400&code=ResourceNotFoundException&count=40&service=firehose' > /dev/null
publish missing/x 20
wait_until 30 errs errors/f 20
bk_ctl POST reset > /dev/null
ok '[ "$(grep -c "^errors/f {" "$T/errors.txt")" -eq 20 ]' "missing stream: one error document per message (20)"
ok 'grep "^errors/f {" "$T/errors.txt" | head -1 | grep -q "\"failedAction\":\"FirehoseAction\".*\"failedResource\":\"no-such-stream\".*ResourceNotFoundException"' \
    "the document names FirehoseAction, the stream and the service's error"
grep "^errors/f {" "$T/errors.txt" | head -1 | cut -c1-600 | sed 's/^/# /'
