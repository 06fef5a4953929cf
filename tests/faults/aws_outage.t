#!/bin/sh
# An AWS destination killed mid-stream: kinesalite (its streams on disk)
# is killed -9 for FAULT_OUTAGE_S seconds (default 60) while 200 QoS 1
# messages a second flow to the kinesis sink, then started again on the
# same port.  With the default retry_s every message is in the stream
# afterwards and none went to the error action; with "retry_s": 0 (AWS's
# behaviour) the messages of an outage go to the error action instead.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../backends/lib.sh"
. "$(dirname "$0")/../integration/awslib.sh"
echo "1..7"
OUTAGE=${FAULT_OUTAGE_S:-60}
RATE=200
BK_KINESALITE_DISK=1   # its streams survive the kill
backends_start recorder kinesalite || exit 1
aws_env
bk_tool kinesis-create iot-stream 2 > /dev/null
mkdir -p "$T/rules"
cat > "$T/rules/relay.json" <<'JSON'
{"sql": "SELECT device, seq FROM 'sensors/+/telemetry'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"kinesis": {"streamName": "iot-stream", "partitionKey": "${topic(2)}",
   "roleArn": "arn:aws:iam::123456789012:role/k"}}],
 "errorAction": {"republish": {"topic": "errors/${topic(2)}", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}}
JSON
aws_pipeline || exit 1
mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -t 'errors/#' -v > "$T/errors.txt" 2>/dev/null &
PIDS="$PIDS $!"
sub_ready "$T/errors.txt" errors/probe
errs() { grep -c '^errors/d' "$T/errors.txt"; }
# seqs DEVICE: distinct seqs of DEVICE in the stream.
seqs() {
	bk_tool kinesis-read iot-stream > "$T/read.json" 2>/dev/null &&
	    pyq "$T/read.json" "len(set(__import__('json').loads(r['data'])['seq'] for r in d if r['partition_key'] == '$1'))"
}
have() { [ "$(seqs "$1")" -ge "$2" ]; }

N=$((RATE * (OUTAGE + 10)))
stream "$N" "$RATE" d1
sleep 4
bk_kill kinesalite
t_kill=$(date +%s)
echo "# kinesalite killed; down for $OUTAGE s while the stream goes on"
sleep "$OUTAGE"
"$BIN/iotrules" --config "$T/config.json" status > "$T/status.txt"
sed 's/^/# /' "$T/status.txt"
spooled=$(awk '$1 == "sink-kinesis" { print $10 }' "$T/status.txt")
oldest=$(awk '$1 == "sink-kinesis" { print $12 }' "$T/status.txt")
bk_restart kinesalite || exit 1
echo "# kinesalite back after $(($(date +%s) - t_kill)) s"
wait_streams
wait_until 120 have d1 "$N"
got=$(seqs d1)
ok '[ "$got" -eq "$N" ]' "every one of the $N messages is in the stream after a ${OUTAGE} s outage ($got)"
ok '[ "$(errs)" -eq 0 ]' "none went to the error action ($(errs))"
ok '[ "${spooled:-0}" -gt 0 ] && [ "${oldest:-0}" -ge $((OUTAGE / 2)) ]' \
    "status during the outage: $spooled job(s) spooled, the oldest waiting ${oldest} s"
ok 'grep -q "destination unavailable" "$T/sup.log" && grep -q "destination back after" "$T/sup.log"' \
    "the sink logged the outage and the recovery"

# The same with retry_s 0: AWS's quick tries, then the error action.
kill "$SUP"
wait "$SUP"
rm -rf "$T/run" "$T/state"
python3 - "$T/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p)); c["retry_s"] = 0; json.dump(c, open(p, "w"))
PY
start_supervisor
before=$(seqs d2)
bk_kill kinesalite
M=$((RATE * 5))
stream "$M" "$RATE" d2
wait_streams
want_errs() { [ "$(errs)" -ge "$1" ]; }
wait_until 60 want_errs "$M"
bk_restart kinesalite || exit 1
sleep 2
ok '[ "$(errs)" -eq "$M" ]' "retry_s 0: every message of the outage went to the error action ($(errs) of $M)"
ok '[ "$(seqs d2)" -eq "${before:-0}" ]' "and none reached the stream ($(seqs d2))"
ok 'grep "^errors/d2 " "$T/errors.txt" | head -1 | grep -q "\"failedAction\":\"KinesisAction\""' "the documents name KinesisAction"
grep '^errors/d2 ' "$T/errors.txt" | head -1 | cut -c1-500 | sed 's/^/# /'
