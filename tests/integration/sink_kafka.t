#!/bin/sh
# The kafka action against the librdkafka mock cluster (build/tests/
# kafkamock, 3 brokers, PLAINTEXT: the only protocol it speaks): 10,000
# QoS 1 messages through a rule written as AWS's page writes it, every
# record read back with kcat and checked for its key, partition and
# headers as templated from its message, and its payload byte for byte;
# a partition the topic does not have sends one error document per
# message through the errorAction.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/awslib.sh"
. "$(dirname "$0")/kafkalib.sh"
BK_PY=python3
echo "1..10"
if ! kafka_tools; then
	kafka_skip 10
	exit 0
fi
kafka_mock iot-events:4 || exit 1
echo "# mock cluster at $BS"

mkdir -p "$T/rules"
cat > "$T/rules/to_kafka.json" <<JSON
{"topicRulePayload": {
  "sql": "SELECT *, topic(2) AS dev FROM 'kf/+/data'", "ruleDisabled": false, "awsIotSqlVersion": "2016-03-23",
  "actions": [{"kafka": {
    "destinationArn": "arn:aws:iot:us-east-1:123456789012:ruledestination/vpc/1a2b3c4d",
    "topic": "iot-events",
    "key": "\${device}-\${seq}",
    "partition": "\${seq % 4}",
    "clientProperties": {"bootstrap.servers": "$BS", "security.protocol": "PLAINTEXT", "acks": "1",
      "compression.type": "lz4",
      "key.serializer": "org.apache.kafka.common.serialization.StringSerializer",
      "value.serializer": "org.apache.kafka.common.serialization.ByteBufferSerializer"},
    "headers": [{"key": "static_header_key", "value": "static_header_value"},
                {"key": "dev", "value": "\${topic(2)}"}, {"key": "temp", "value": "\${temp}"}]}}]}}
JSON
cat > "$T/rules/bad_partition.json" <<JSON
{"sql": "SELECT * FROM 'kbad/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"kafka": {"destinationArn": "arn:aws:iot:us-east-1:123456789012:ruledestination/vpc/1a2b3c4d",
   "topic": "\${topic(2)}", "partition": "7",
   "clientProperties": {"bootstrap.servers": "$BS", "security.protocol": "PLAINTEXT"}}}],
 "errorAction": {"republish": {"topic": "errors/k", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}}
JSON
aws_pipeline || exit 1
wait_until 20 sink_ready kafka
ok "sink_ready kafka" "the kafka sink runs"

# read: every record of iot-events as JSON lines (partition, key, headers,
# payload), via kcat's own format strings.
read_all() {
	kcat -C -b "$BS" -t iot-events -o beginning -e -q -f '%p\t%k\t%h\t%s\n' > "$T/read.tsv" 2> "$T/kcat.err"
}
records() { read_all && [ "$(wc -l < "$T/read.tsv")" -ge "$1" ]; }
t0=$(date +%s)
publish kf/dev1/data 5000 1 &
P1=$!
publish kf/dev2/data 5000 5001
wait $P1
wait_until 90 records 10000
echo "# 10,000 published and read back in $(($(date +%s) - t0)) s"
check=$(python3 - "$T/read.tsv" <<'PY'
import sys
lines = open(sys.argv[1]).read().split("\n")[:-1]
seqs, bad = set(), []
for ln in lines:
    p, k, h, s = ln.split("\t", 3)
    import json
    m = json.loads(s)
    i = m["seq"]
    dev = "dev1" if i <= 5000 else "dev2"
    want = '{"device":"d%d","seq":%d,"temp":%d,"dev":"%s"}' % (i % 7, i, i % 50, dev)
    hdr = "static_header_key=static_header_value,dev=%s,temp=%d" % (dev, i % 50)
    if s != want: bad.append("payload " + s)
    elif k != "d%d-%d" % (i % 7, i): bad.append("key " + k)
    elif int(p) != i % 4: bad.append("partition %s for seq %d" % (p, i))
    elif h != hdr: bad.append("headers " + h)
    seqs.add(i)
print(len(lines), len(seqs), len(bad), bad[:1])
PY
)
echo "# records, distinct seqs, mismatches: $check"
set -- $check
nrec=$1 nseq=$2 nbad=$3
ok '[ "$nrec" -eq 10000 ] && [ "$nseq" -eq 10000 ]' "10,000 messages, 10,000 records in iot-events, every seq once ($nrec records, $nseq seqs)"
ok '[ "$nbad" -eq 0 ]' "every record's key, partition and headers as templated from its message, payload the SQL result byte for byte ($nbad mismatches)"
parts=$(cut -f1 "$T/read.tsv" | sort | uniq -c | awk '{printf "%s:%s ", $2, $1}')
ok '[ "$(cut -f1 "$T/read.tsv" | sort -u | wc -l)" -eq 4 ]' "records spread over the 4 partitions by \${seq % 4} ($parts)"
ok '[ "$(grep -c "Kafka producer for" "$T/sup.log")" -eq 1 ]' "one producer served every job of the configuration"

# A partition the topic does not have: permanent, to the errorAction.
errors_sub
publish kbad/iot-events 20
errs() { [ "$(grep -c '^errors/k {' "$T/errors.txt")" -ge "$1" ]; }
wait_until 40 errs 20
ok '[ "$(grep -c "^errors/k {" "$T/errors.txt")" -eq 20 ]' "partition 7 of 4: one error document per message (20)"
ok 'grep "^errors/k {" "$T/errors.txt" | head -1 | grep -q "\"failedAction\":\"KafkaAction\".*\"failedResource\":\"iot-events\".*Unknown partition"' \
    "the document names KafkaAction, the topic and librdkafka's error"
grep "^errors/k {" "$T/errors.txt" | head -1 | cut -c1-600 | sed 's/^/# /'

# A topic the cluster does not have (and does not create): permanent once
# librdkafka's 5 s metadata propagation time is over, to the errorAction.
echo "missing no-such-topic" >&3
publish kbad/no-such-topic 10
errs2() { [ "$(grep -c '^errors/k {.*no-such-topic' "$T/errors.txt")" -ge "$1" ]; }
wait_until 40 errs2 10
ok '[ "$(grep -c "^errors/k {.*\"failedResource\":\"no-such-topic\"" "$T/errors.txt")" -eq 10 ]' \
    "a topic that does not exist: one error document per message (10)"
ok 'grep "^errors/k {.*no-such-topic" "$T/errors.txt" | head -1 | grep -q "Unknown topic"' "naming the unknown topic"
grep "^errors/k {.*no-such-topic" "$T/errors.txt" | head -1 | cut -c1-600 | sed 's/^/# /'

# Stopped: the sink flushes its producer; no stage restarted on the way,
# no sanitizer report (under make asan).
stop_checked
ok '[ -z "$restarts" ] && [ -z "$sanitizer" ]'  \
    "stopped cleanly: no restarts, no sanitizer reports${restarts:+ (restarts: $restarts)}${sanitizer:+ ($sanitizer)}"
