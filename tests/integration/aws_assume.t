#!/bin/sh
# "assume_role": true in the config: the kinesis sink assumes the rule's
# roleArn with STS AssumeRole (the recorder) and signs with those
# temporary credentials, which last 10 s here: 25 s of messages go
# through with the role's credentials refreshed before they expire, no
# delivery failed and none retried.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../backends/lib.sh"
. "$(dirname "$0")/awslib.sh"
. "$(dirname "$0")/../faults/lib.sh"
echo "1..5"
BK_TEMP_CREDS_TTL=10
backends_start recorder kinesalite || exit 1
aws_env
bk_tool kinesis-create iot-stream 1 > /dev/null
mkdir -p "$T/rules"
cat > "$T/rules/relay.json" <<'JSON'
{"sql": "SELECT device, seq FROM 'sensors/+/telemetry'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"kinesis": {"streamName": "iot-stream", "partitionKey": "${topic(2)}",
   "roleArn": "arn:aws:iam::123456789012:role/iot-to-kinesis"}}]}
JSON
aws_pipeline '"assume_role": true' || exit 1
has_flag() { ps -eo args | grep -q "[i]otrules-sink-kinesis --run-dir $T/run .*--assume-role"; }
wait_until 10 has_flag
ok has_flag "the supervisor gives the AWS sink --assume-role"
N=5000
stream "$N" 200 d1
wait_streams
count() { bk_tool kinesis-read iot-stream > "$T/read.json" && [ "$(pyq "$T/read.json" 'len(d)')" -ge "$1" ]; }
wait_until 60 count "$N"
ok '[ "$(pyq "$T/read.json" "len(set(__import__(\"json\").loads(r[\"data\"])[\"seq\"] for r in d))")" -eq "$N" ]' \
    "all $N messages delivered over 25 s with 10 s credentials"
bk_ctl GET assumed > "$T/assumed.json"
ok '[ "$(pyq "$T/assumed.json" "sum(1 for a in d if a[\"role_arn\"] == \"arn:aws:iam::123456789012:role/iot-to-kinesis\" and a[\"action\"] == \"AssumeRole\")")" -ge 2 ]' \
    "the rule's roleArn was assumed, and again before its credentials expired ($(pyq "$T/assumed.json" 'len(d)') AssumeRole calls)"
bk_requests kinesis > "$T/kreq.json"
ok '[ "$(pyq "$T/kreq.json" "sum(1 for r in d if r[\"access_key\"].startswith(\"ASIA\") and r[\"sigv4\"][\"valid\"])")" -eq "$(pyq "$T/kreq.json" "len(d)")" ]' \
    "every Kinesis request was signed with the role's temporary credentials, every signature valid ($(pyq "$T/kreq.json" 'len(d)') requests)"
"$BIN/iotrules" --config "$T/config.json" status > "$T/status.txt"
line=$(awk '$1 == "sink-kinesis"' "$T/status.txt")
ok '[ "$(echo "$line" | awk "{print \$8}")" -eq 0 ] && [ "$(echo "$line" | awk "{print \$9}")" -eq 0 ]' \
    "no delivery failed or was retried (failed, retried: $(echo "$line" | awk '{print $8", "$9}'))"
