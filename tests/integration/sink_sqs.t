#!/bin/sh
# The sqs action against fauxqs behind the recorder's signature-checking
# proxy: 1,000 QoS 1 messages through a rule as AWS's docs write it (the
# queue URL templated), every message read back from its queue, every
# request's signature verified, messages batched (SendMessageBatch);
# useBase64 (binary payloads too); a binary result without useBase64 that
# is not UTF-8 fails; throttling and 503 answers retried (and counted in
# status); a partial failure resends only the failed entries; a missing
# queue sends one error document per message through the errorAction.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../backends/lib.sh"
. "$(dirname "$0")/awslib.sh"
echo "1..14"
backends_start recorder fauxqs || exit 1
aws_env
bk_tool sqs-create dev1 > /dev/null
bk_tool sqs-create dev2 > /dev/null
B64_URL=$(bk_tool sqs-create b64-queue)
mkdir -p "$T/rules"
cat > "$T/rules/to_sqs.json" <<'JSON'
{"sql": "SELECT *, topic(2) AS dev FROM 'sqs/+/data'", "ruleDisabled": false, "awsIotSqlVersion": "2016-03-23",
 "actions": [{"sqs": {"queueUrl": "https://sqs.us-east-1.amazonaws.com/000000000000/${topic(2)}",
   "roleArn": "arn:aws:iam::123456789012:role/aws_iot_sqs", "useBase64": false}}]}
JSON
cat > "$T/rules/b64.json" <<JSON
{"sql": "SELECT * FROM 'b64/#'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"sqs": {"queueUrl": "$B64_URL", "useBase64": true,
   "roleArn": "arn:aws:iam::123456789012:role/aws_iot_sqs"}}]}
JSON
cat > "$T/rules/plain_bin.json" <<'JSON'
{"sql": "SELECT * FROM 'plain/#'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"sqs": {"queueUrl": "https://sqs.us-east-1.amazonaws.com/000000000000/dev1",
   "roleArn": "arn:aws:iam::123456789012:role/aws_iot_sqs"}}],
 "errorAction": {"republish": {"topic": "errors/plain", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}}
JSON
cat > "$T/rules/missing.json" <<'JSON'
{"sql": "SELECT * FROM 'missing/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"sqs": {"queueUrl": "https://sqs.us-east-1.amazonaws.com/000000000000/no-such-queue",
   "roleArn": "arn:aws:iam::123456789012:role/aws_iot_sqs"}}],
 "errorAction": {"republish": {"topic": "errors/sqs", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}}
JSON
aws_pipeline || exit 1
wait_until 10 sink_ready sqs
ok "sink_ready sqs" "the sqs sink runs"

# seqs QUEUE DEV: "N M": bodies in QUEUE, and distinct seqs among them whose
# dev field is DEV.
seqs() { pyq "$T/$1.json" "'%d %d' % (len(d), len(set(j['seq'] for j in map(__import__('json').loads, d) if j['dev'] == '$2')))"; }

publish sqs/dev1/data 500 1 &
P1=$!
publish sqs/dev2/data 500 501
wait $P1
wait_until 60 count dev1 500
wait_until 30 count dev2 500
ok '[ "$(seqs dev1 dev1)" = "500 500" ] && [ "$(seqs dev2 dev2)" = "500 500" ]' \
    "1,000 messages, 500 in each queue its \${topic(2)} names, every seq once, bodies the SQL result ($(seqs dev1 dev1), $(seqs dev2 dev2))"
ok '[ "$(pyq "$T/dev1.json" "sorted(__import__(\"json\").loads(b)[\"seq\"] for b in d) == list(range(1, 501))")" = True ]' \
    "dev1 holds seq 1..500, dev2 501..1000"
bk_requests sqs > "$T/reqs.json"
set -- $(sigs_checked sqs)
reqs=$1 valid=$2
ok '[ "$reqs" -gt 0 ] && [ "$reqs" -eq "$valid" ] && [ "$reqs" -le 200 ]' \
    "every request's SigV4 signature verified by the recorder ($valid of $reqs), batched ($reqs requests for 1,000)"
ok '[ "$(pyq "$T/reqs.json" "all(r[\"target\"] == \"AmazonSQS.SendMessageBatch\" and r[\"path\"] == \"/\" and __import__(\"json\").loads(r[\"body\"])[\"QueueUrl\"].startswith(\"https://sqs.us-east-1.amazonaws.com/000000000000/dev\") and r[\"headers\"][\"authorization\"].find(\"/us-east-1/sqs/\") > 0 for r in d)")" = True ]' \
    "SendMessageBatch, JSON protocol, to the SQS endpoint with QueueUrl in the body, region from the queue URL"

# useBase64: JSON and binary payloads, decoded back to the bytes.
printf '\377\000\001binary\200' > "$T/bin.dat"
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t b64/bin -f "$T/bin.dat"
publish b64/json 5 9001
wait_until 30 count b64-queue 6
ok '[ "$(pyq "$T/b64-queue.json" "sorted(__import__(\"base64\").b64decode(b) for b in d) == sorted([open(\"$T/bin.dat\", \"rb\").read()] + [(\"{\\\"device\\\":\\\"d%d\\\",\\\"seq\\\":%d,\\\"temp\\\":%d}\" % (i % 7, i, i % 50)).encode() for i in range(9001, 9006)])")" = True ]' \
    "useBase64: 6 messages, each the base64 of the result (binary included)"

# Binary, not UTF-8, without useBase64: a failure at once.
errors_sub
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t plain/bin -f "$T/bin.dat"
errs() { [ "$(grep -c "^$1 {" "$T/errors.txt")" -ge "$2" ]; }
wait_until 20 errs errors/plain 1
ok 'grep "^errors/plain {" "$T/errors.txt" | grep -q "\"failedAction\":\"SqsAction\".*not valid UTF-8; set useBase64"' \
    "a binary result that is not UTF-8, without useBase64: an error document, nothing sent"

# Throttling, then 503s: retried until they pass; counted in status.
bk_clear
bk_ctl POST 'fail?status=400&code=RequestThrottled&count=3&service=sqs' > /dev/null
bk_ctl POST 'fail?status=503&code=ServiceUnavailable&count=3&service=sqs' > /dev/null
publish sqs/dev1/data 100 2001
wait_until 60 count dev1 600
ok '[ "$(seqs dev1 dev1)" = "600 600" ]' "100 more through 3 throttling and 3 503 answers: all there, once ($(seqs dev1 dev1))"
retried=$(status_retried 6 sink-sqs)
ok '[ "$retried" -ge 6 ]' "status counts the retries (retried: $retried)"

# A partial failure: every 2nd entry of the next 4 batches fails.
bk_clear
bk_ctl POST 'partial?service=sqs&count=4&every=2' > /dev/null
publish sqs/dev2/data 100 3001
wait_until 60 count dev2 600
ok '[ "$(seqs dev2 dev2)" = "600 600" ]' "partial failures: only the failed entries resent, none twice ($(seqs dev2 dev2))"
bk_requests sqs > "$T/reqs.json"
ok '[ "$(pyq "$T/reqs.json" "sum(len(__import__(\"json\").loads(r[\"body\"])[\"Entries\"]) for r in d)")" -lt 200 ]' \
    "the resends carry only the failed entries ($(pyq "$T/reqs.json" "sum(len(__import__(\"json\").loads(r[\"body\"])[\"Entries\"]) for r in d)") entries sent for 100 messages)"

# Permanent: the queue does not exist.
publish missing/x 20
wait_until 30 errs errors/sqs 20
ok '[ "$(grep -c "^errors/sqs {" "$T/errors.txt")" -eq 20 ]' "missing queue: one error document per message (20)"
ok 'grep "^errors/sqs {" "$T/errors.txt" | head -1 | grep -q "\"failedAction\":\"SqsAction\".*\"failedResource\":\"https://sqs.us-east-1.amazonaws.com/000000000000/no-such-queue\".*QueueDoesNotExist"' \
    "the document names SqsAction, the queue URL and the service's error"
grep "^errors/sqs {" "$T/errors.txt" | head -1 | cut -c1-700 | sed 's/^/# /'
# Every stage ran through without a restart, and stops cleanly (under
# ASan: no report, leaks included).
stop_checked
ok '[ -z "$restarts" ] && [ -z "$sanitizer" ]' "no stage restarted, no sanitizer report"
printf '%s\n%s\n' "$restarts" "$sanitizer" | grep . | sed 's/^/# /'
