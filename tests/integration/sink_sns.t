#!/bin/sh
# The sns action against fauxqs behind the recorder's signature-checking
# proxy: 1,000 QoS 1 messages through a rule as AWS's docs write it (the
# target ARN templated), every message read back from the SQS queue
# subscribed to its topic (raw delivery), every request's signature
# verified, messages batched (PublishBatch, query protocol, parameters in
# the body); Throttling retried; messageFormat JSON sends MessageStructure=json; an entry the
# batch answer marks failed fails alone; an endpoint ARN goes alone to
# Publish as TargetArn; a missing topic sends one error document per
# message through the errorAction.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../backends/lib.sh"
. "$(dirname "$0")/awslib.sh"
echo "1..12"
backends_start recorder fauxqs || exit 1
aws_env
for t in dev1 dev2 fmt big; do bk_tool sns-create-topic "$t" "q-$t" > /dev/null; done
ARN=arn:aws:sns:us-east-1:000000000000
ERR='"errorAction": {"republish": {"topic": "errors/sns", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}'
mkdir -p "$T/rules"
cat > "$T/rules/to_sns.json" <<JSON
{"sql": "SELECT *, topic(2) AS dev FROM 'sns/+/data'", "ruleDisabled": false, "awsIotSqlVersion": "2016-03-23",
 "actions": [{"sns": {"targetArn": "$ARN:\${topic(2)}", "roleArn": "arn:aws:iam::123456789012:role/aws_iot_sns"}}]}
JSON
cat > "$T/rules/json_fmt.json" <<JSON
{"sql": "SELECT concat('temp ', temp) AS default, topic() AS sqs FROM 'fmt/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"sns": {"targetArn": "$ARN:fmt", "messageFormat": "JSON",
   "roleArn": "arn:aws:iam::123456789012:role/aws_iot_sns"}}]}
JSON
cat > "$T/rules/big.json" <<JSON
{"sql": "SELECT CASE s WHEN 'small' THEN s ELSE concat(s, s, s) END AS big FROM 'big/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"sns": {"targetArn": "$ARN:big", "roleArn": "arn:aws:iam::123456789012:role/aws_iot_sns"}}], $ERR}
JSON
cat > "$T/rules/endpoint.json" <<JSON
{"sql": "SELECT * FROM 'endpoint/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"sns": {"targetArn": "$ARN:endpoint/GCM/iot-app/5e3f9c1a-0000-4d7c-9b1e-1234567890ab",
   "roleArn": "arn:aws:iam::123456789012:role/aws_iot_sns"}}], $ERR}
JSON
cat > "$T/rules/missing.json" <<JSON
{"sql": "SELECT * FROM 'missing/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"sns": {"targetArn": "$ARN:no-such-topic", "roleArn": "arn:aws:iam::123456789012:role/aws_iot_sns"}}], $ERR}
JSON
aws_pipeline || exit 1
wait_until 10 sink_ready sns
ok "sink_ready sns" "the sns sink runs"

seqs() { pyq "$T/$1.json" "'%d %d' % (len(d), len(set(j['seq'] for j in map(__import__('json').loads, d) if j['dev'] == '$2')))"; }

publish sns/dev1/data 500 1 &
P1=$!
publish sns/dev2/data 500 501
wait $P1
wait_until 60 count q-dev1 500
wait_until 30 count q-dev2 500
ok '[ "$(seqs q-dev1 dev1)" = "500 500" ] && [ "$(seqs q-dev2 dev2)" = "500 500" ]' \
    "1,000 messages, 500 on each topic its \${topic(2)} names, every seq once, messages the SQL result ($(seqs q-dev1 dev1), $(seqs q-dev2 dev2))"
bk_requests sns > "$T/reqs.json"
set -- $(sigs_checked sns)
reqs=$1 valid=$2
ok '[ "$reqs" -gt 0 ] && [ "$reqs" -eq "$valid" ] && [ "$reqs" -le 200 ]' \
    "every request's SigV4 signature verified by the recorder ($valid of $reqs), batched ($reqs requests for 1,000)"
shape=$(pyq "$T/reqs.json" 'all(r["query"] in ("", None) and r["path"] == "/" and r["headers"]["content-type"].startswith("application/x-www-form-urlencoded") and r["body"].startswith("Action=PublishBatch&Version=2010-03-31&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A000000000000%3Adev") and "PublishBatchRequestEntries.member.1.Message=" in r["body"] and "/us-east-1/sns/" in r["headers"]["authorization"] for r in d)')
ok '[ "$shape" = True ]' "PublishBatch with TopicArn, query protocol, parameters in the body, region from the ARN"

# messageFormat JSON: MessageStructure=json per entry (fauxqs ignores it
# and delivers the whole document).
# Two Throttling answers (query-protocol XML) first: retried, counted.
bk_clear
bk_ctl POST 'fail?status=400&code=Throttling&count=2&service=sns' > /dev/null
publish fmt/a 5 7001
wait_until 30 count q-fmt 5
retried=$(status_retried 2 sink-sns)
ok '[ "$retried" -ge 2 ]' "2 Throttling answers retried, counted in status (retried: $retried)"
bk_requests sns > "$T/reqs.json"
ok '[ "$(pyq "$T/reqs.json" "sum(r[\"body\"].count(\"MessageStructure=json\") for r in d if r[\"status\"] == 200)")" -eq 5 ]' \
    "messageFormat JSON: MessageStructure=json sent with each of 5 messages (in the accepted requests)"
ok '[ "$(pyq "$T/q-fmt.json" "sorted(d) == sorted(\"{\\\"default\\\":\\\"temp %d\\\",\\\"sqs\\\":\\\"fmt/a\\\"}\" % (i % 50) for i in range(7001, 7006))")" = True ]' \
    "messageFormat JSON: the message is the JSON result"

# An entry the PublishBatch answer lists as Failed (too long for SNS,
# SenderFault): it alone fails, permanently; the others are published.
errors_sub
"$BK_PY" -c 'print("{\"s\":\"" + "a" * 100000 + "\"}")' > "$T/big.json"
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t big/a -m '{"s":"small"}'
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t big/b -f "$T/big.json"
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t big/c -m '{"s":"small"}'
errs() { [ "$(grep -c '^errors/sns {' "$T/errors.txt")" -ge "$1" ]; }
wait_until 30 errs 1
wait_until 10 count q-big 2
ok '[ "$(pyq "$T/q-big.json" "d")" = "['"'"'{\"big\":\"small\"}'"'"', '"'"'{\"big\":\"small\"}'"'"']" ] && grep "^errors/sns {" "$T/errors.txt" | grep -q "\"topic\":\"big/b\".*\"failedAction\":\"SnsAction\".*Error Code: InvalidParameter"' \
    "a message SNS refuses in the PublishBatch answer: an error document for it alone, the others published"

# An endpoint ARN: Publish with TargetArn, one per message (fauxqs knows
# no endpoints: its refusal comes back as an error document).
bk_clear
publish endpoint/x 2
wait_until 30 errs 3
bk_requests sns > "$T/reqs.json"
ok '[ "$(pyq "$T/reqs.json" "sum(1 for r in d if r[\"body\"].startswith(\"Action=Publish&Version=2010-03-31&TargetArn=arn%3Aaws%3Asns%3Aus-east-1%3A000000000000%3Aendpoint%2FGCM%2Fiot-app%2F\") and r[\"body\"].count(\"&Message=\") == 1)")" -ge 2 ]' \
    "an endpoint ARN: one Publish per message with TargetArn"

# Permanent: the topic does not exist.
base=$(grep -c '^errors/sns {' "$T/errors.txt")
publish missing/x 20
wait_until 30 errs $((base + 20))
grep '^errors/sns {"ruleName":"missing"' "$T/errors.txt" > "$T/missing.txt"
ok '[ "$(grep -c "^errors/sns {" "$T/errors.txt")" -eq $((base + 20)) ] && [ "$(wc -l < "$T/missing.txt")" -eq 20 ]' "missing topic: one error document per message (20)"
ok 'head -1 "$T/missing.txt" | grep -q "\"failedAction\":\"SnsAction\".*\"failedResource\":\"arn:aws:sns:us-east-1:000000000000:no-such-topic\".*Error Code: NotFound"' \
    "the document names SnsAction, the topic ARN and the service's error"
head -1 "$T/missing.txt" | cut -c1-700 | sed 's/^/# /'
# Every stage ran through without a restart, and stops cleanly (under
# ASan: no report, leaks included).
stop_checked
ok '[ -z "$restarts" ] && [ -z "$sanitizer" ]' "no stage restarted, no sanitizer report"
printf '%s\n%s\n' "$restarts" "$sanitizer" | grep . | sed 's/^/# /'
