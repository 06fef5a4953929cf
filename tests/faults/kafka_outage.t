#!/bin/sh
# The Kafka brokers down mid-stream: every broker of the librdkafka mock
# cluster (build/tests/kafkamock) refuses connections for FAULT_OUTAGE_S
# seconds (default 60) while 200 QoS 1 messages a second flow to the kafka
# sink, then accepts them again.  Every message is in the topic afterwards
# and none went to the error action: librdkafka gives up on a record after
# 10 s, the runtime keeps its job in the spool and retries it with backoff.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../integration/awslib.sh"
. "$(dirname "$0")/../integration/kafkalib.sh"
BK_PY=python3
echo "1..6"
if ! kafka_tools; then
	kafka_skip 6
	exit 0
fi
OUTAGE=${FAULT_OUTAGE_S:-60}
RATE=200
kafka_mock relay:3 || exit 1
mkdir -p "$T/rules"
cat > "$T/rules/relay.json" <<JSON
{"sql": "SELECT device, seq FROM 'sensors/+/telemetry'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"kafka": {"destinationArn": "arn:aws:iot:us-east-1:123456789012:ruledestination/vpc/x",
   "topic": "relay", "key": "\${topic(2)}",
   "clientProperties": {"bootstrap.servers": "$BS", "security.protocol": "PLAINTEXT"}}}],
 "errorAction": {"republish": {"topic": "errors/\${topic(2)}", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}}
JSON
aws_pipeline || exit 1
errors_sub
errs() { grep -c '^errors/d' "$T/errors.txt"; }
# seqs: distinct seqs in the topic (and the records in $T/read.txt).
seqs() {
	kcat -C -b "$BS" -t relay -o beginning -e -q -f '%s\n' > "$T/read.txt" 2> /dev/null &&
	    sed 's/.*"seq":\([0-9]*\).*/\1/' "$T/read.txt" | sort -un | wc -l
}
have() { [ "$(seqs)" -ge "$1" ]; }

N=$((RATE * (OUTAGE + 10)))
stream "$N" "$RATE" d1
sleep 4
echo down >&3
t_down=$(date +%s)
echo "# brokers down for $OUTAGE s while the stream goes on"
sleep "$OUTAGE"
"$BIN/iotrules" --config "$T/config.json" status > "$T/status.txt"
sed 's/^/# /' "$T/status.txt"
spooled=$(awk '$1 == "sink-kafka" { print $10 }' "$T/status.txt")
retried=$(awk '$1 == "sink-kafka" { print $9 }' "$T/status.txt")
echo up >&3
echo "# brokers up after $(($(date +%s) - t_down)) s"
wait_streams
wait_until 120 have "$N"
got=$(seqs)
ok '[ "$got" -eq "$N" ]' "every one of the $N messages is in the topic after a ${OUTAGE} s outage ($got distinct, $(wc -l < "$T/read.txt") records)"
ok '[ "$(errs)" -eq 0 ]' "none went to the error action ($(errs))"
# (OLD_S counts only jobs waiting outside a send; here most wait inside
# librdkafka, for up to its 10 s message timeout, so it is not checked.)
ok '[ "${spooled:-0}" -gt 0 ] && [ "${retried:-0}" -gt 0 ] && grep -A1 "^sink-kafka" "$T/status.txt" | grep -q "Message timed out"' \
    "status during the outage: $spooled job(s) spooled, $retried retries, librdkafka's timeout as the last error"
ok 'grep -q "destination unavailable" "$T/sup.log" && grep -q "destination back after" "$T/sup.log"' \
    "the sink logged the outage and the recovery"
ok '[ "$(grep -c "^ok" "$T/kafka.out")" -eq 2 ]' "the mock took the brokers down and up ($(tr '\n' ' ' < "$T/kafka.out"))"
stop_checked
ok '[ -z "$restarts" ] && [ -z "$sanitizer" ]' \
    "no stage restarted, no sanitizer report${restarts:+ (restarts: $restarts)}${sanitizer:+ ($sanitizer)}"
