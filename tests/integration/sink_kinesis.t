#!/bin/sh
# The kinesis action against kinesalite behind the recorder's
# signature-checking proxy: 1,000 QoS 1 messages through a rule as AWS's
# docs write it, every record read back with its partition key and data,
# every request's signature verified, records batched; throttling and 503
# answers retried (and counted in status); a partial failure resends only
# the failed records; a missing stream sends one error document per
# message through the errorAction.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../backends/lib.sh"
. "$(dirname "$0")/awslib.sh"
echo "1..9"
backends_start recorder kinesalite || exit 1
aws_env
bk_tool kinesis-create iot-stream 2 > /dev/null
mkdir -p "$T/rules"
cat > "$T/rules/to_kinesis.json" <<'JSON'
{"sql": "SELECT *, topic(2) AS dev FROM 'k/+/data'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"kinesis": {"streamName": "iot-stream", "partitionKey": "${topic(2)}",
   "roleArn": "arn:aws:iam::123456789012:role/iot-kinesis"}}]}
JSON
cat > "$T/rules/missing.json" <<'JSON'
{"sql": "SELECT * FROM 'missing/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"kinesis": {"streamName": "no-such-stream", "partitionKey": "p",
   "roleArn": "arn:aws:iam::123456789012:role/iot-kinesis"}}],
 "errorAction": {"republish": {"topic": "errors/k", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}}
JSON
aws_pipeline || exit 1
wait_until 20 sink_ready kinesis
ok "sink_ready kinesis" "the kinesis sink runs"

count() { bk_tool kinesis-read iot-stream > "$T/read.json" && [ "$(pyq "$T/read.json" 'len(d)')" -ge "$1" ]; }
publish k/dev1/data 500 1 &
P1=$!
publish k/dev2/data 500 501
wait $P1
wait_until 60 count 1000
ok '[ "$(pyq "$T/read.json" "len(d)")" -eq 1000 ] && [ "$(pyq "$T/read.json" "len(set(__import__(\"json\").loads(r[\"data\"])[\"seq\"] for r in d))")" -eq 1000 ]' \
    "1,000 messages, 1,000 records in the stream, every seq once ($(pyq "$T/read.json" 'len(d)') read)"
ok '[ "$(pyq "$T/read.json" "sum(1 for r in d if r[\"partition_key\"] == \"dev\" + (\"1\" if __import__(\"json\").loads(r[\"data\"])[\"seq\"] <= 500 else \"2\") and __import__(\"json\").loads(r[\"data\"])[\"dev\"] == r[\"partition_key\"])")" -eq 1000 ]' \
    "every record's partition key is its \${topic(2)} and its data the SQL result"
set -- $(sigs_checked kinesis)
reqs=$1 valid=$2
ok '[ "$reqs" -gt 0 ] && [ "$reqs" -eq "$valid" ] && [ "$reqs" -lt 1000 ]' \
    "every request's SigV4 signature verified by the recorder ($valid of $reqs), records batched ($reqs PutRecords for 1,000)"

# Throttling, then 503s: retried until they pass; counted in status.
bk_clear
bk_ctl POST 'fail?status=400&code=ProvisionedThroughputExceededException&count=3&service=kinesis' > /dev/null
bk_ctl POST 'fail?status=503&code=ServiceUnavailable&count=3&service=kinesis' > /dev/null
publish k/dev3/data 100 2001
wait_until 60 count 1100
ok '[ "$(pyq "$T/read.json" "len(d)")" -eq 1100 ]' "100 more through 3 throttling and 3 503 answers: all there ($(pyq "$T/read.json" 'len(d)'))"
retried=$(status_retried 6 sink-kinesis)
ok '[ "$retried" -ge 6 ]' "status counts the retries (retried: $retried)"

# A partial failure: every 2nd record of the next 2 batches fails.
bk_ctl POST 'partial?service=kinesis&count=2&every=2' > /dev/null
publish k/dev4/data 100 3001
wait_until 60 count 1200
ok '[ "$(pyq "$T/read.json" "len(d)")" -eq 1200 ] && [ "$(pyq "$T/read.json" "len(set(__import__(\"json\").loads(r[\"data\"])[\"seq\"] for r in d))")" -eq 1200 ]' \
    "partial failures: only the failed records resent, none twice ($(pyq "$T/read.json" 'len(d)') records)"

# Permanent: the stream does not exist.
errors_sub
publish missing/x 20
errs() { [ "$(grep -c '^errors/k {' "$T/errors.txt")" -ge "$1" ]; }
wait_until 30 errs 20
ok '[ "$(grep -c "^errors/k {" "$T/errors.txt")" -eq 20 ]' "missing stream: one error document per message (20)"
ok 'grep "^errors/k {" "$T/errors.txt" | head -1 | grep -q "\"failedAction\":\"KinesisAction\".*\"failedResource\":\"no-such-stream\".*ResourceNotFoundException"' \
    "the document names KinesisAction, the stream and the service's error"
grep "^errors/k {" "$T/errors.txt" | head -1 | cut -c1-600 | sed 's/^/# /'
