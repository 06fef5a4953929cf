#!/bin/sh
# A destination outage with messages in flight: the republish sink's
# broker (a second mosquitto, with persistence) is stopped for
# FAULT_OUTAGE_S seconds (default 30) mid-stream.  With the default
# retry_s every message arrives after it is back and none goes to the
# error action; with --retry-s 0 (AWS's behaviour) every job goes to the
# error action after its 3 tries.  Stages wired by hand (two brokers).
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/lib.sh"
echo "1..6"
OUTAGE=${FAULT_OUTAGE_S:-30}
start_mosquitto || exit 1
DPORT=$(free_port)
mkdir -p "$T/dest" "$T/run" "$T/state"
# "user": mosquitto started as root otherwise drops to the user mosquitto,
# which cannot write its database into this test's 0700 directory; the
# broker then restarts without the counter's session and loses what it
# had accepted but not yet handed over (seen as a lost message).
printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_queued_messages 1000000\npersistence true\npersistence_location %s/\nuser %s\n' \
    "$DPORT" "$T/dest" "$(id -un)" > "$T/dest.conf"
start_dest() {
	run_broker "$T/dest.conf" "$T/dest.log"
	DEST=$!
	PIDS="$PIDS $DEST"
	broker_up "$DPORT" "$T/dest.log"
}
# The counting subscriber keeps a persistent session on the destination
# broker, so what is delivered while it reconnects waits for it.
start_sub() {
	mosquitto_sub -h 127.0.0.1 -p "$DPORT" -q 1 -c -i fault-counter -t 'out/#' -v >> "$T/out.txt" 2>/dev/null &
	SUBP=$!
	PIDS="$PIDS $SUBP"
}
start_dest || exit 1
start_sub
for _ in $(seq 100); do
	mosquitto_pub -h 127.0.0.1 -p "$DPORT" -q 1 -t out/probe -m probe
	grep -q '^out/probe' "$T/out.txt" && break
	sleep 0.1
done
fault_rule "$T/rules" '{"stdout": {}}'
common="--run-dir $T/run --state-dir $T/state"
start_sink() {
	"$BIN/iotrules-sink-republish" $common --name sink-republish-1 --broker "mqtt://127.0.0.1:$DPORT" "$@" 2>> "$T/sink.log" &
	SINK=$!
	PIDS="$PIDS $SINK"
}
"$BIN/iotrules-evaluate" --run-dir "$T/run" --rules "$T/rules" --name evaluate-1 2> "$T/eval.log" &
PIDS="$PIDS $!"
"$BIN/iotrules-sink-stdout" $common --name sink-stdout-1 > "$T/errors.txt" 2> "$T/stdout.log" &
PIDS="$PIDS $!"
"$BIN/iotrules-error-handler" $common --name error-handler-1 2> "$T/eh.log" &
PIDS="$PIDS $!"
start_sink
"$BIN/iotrules-ingest" $common --name ingest-1 --broker "mqtt://127.0.0.1:$PORT" --rules "$T/rules" 2> "$T/ingest.log" &
PIDS="$PIDS $!"
for _ in $(seq 100); do grep -q '"msg":"subscribed to' "$T/ingest.log" 2>/dev/null && break; sleep 0.1; done

# --- default retry_s: a long outage mid-stream loses nothing ---
N=6000
stream $N 500 o1
sleep 2
kill $DEST; wait $DEST 2>/dev/null; kill $SUBP 2>/dev/null
echo "# destination broker stopped for $OUTAGE s"
sleep "$OUTAGE"
start_dest || exit 1
start_sub
wait_streams
wait_distinct "$T/out.txt" $N $((OUTAGE + 120))
got=$(distinct "$T/out.txt"); all=$(total "$T/out.txt")
grep -h "Error" "$T/dest.log" | sed 's/^/# destination broker: /'
ok '[ "$got" -eq $N ] && ! grep -q "Error saving" "$T/dest.log"' \
    "after a $OUTAGE s outage every message arrived: $got of $N (duplicates $((all - got))); the destination broker kept its database"
ok '[ "$(grep -c sensors/o1 "$T/errors.txt")" -eq 0 ]' "none went to the error action ($(grep -c sensors/o1 "$T/errors.txt"))"
ok 'grep -q "destination unavailable" "$T/sink.log" && grep -q "destination back after" "$T/sink.log"' "the sink logged the outage and the recovery"
grep -h -E 'destination (unavailable|back|still)' "$T/sink.log" | sed 's/^/# /'

# --- retry_s 0: AWS's 3 quick tries, then the error action ---
kill $SINK; wait $SINK 2>/dev/null
start_sink --retry-s 0
kill $DEST; wait $DEST 2>/dev/null
M=300
stream $M 300 z1
wait_streams
for _ in $(seq 600); do [ "$(grep -c '"topic":"sensors/z1/telemetry"' "$T/errors.txt")" -ge $M ] && break; sleep 0.1; done
docs=$(grep '"topic":"sensors/z1/telemetry"' "$T/errors.txt" | sed 's/.*"seq\\":\([0-9]*\).*//' | wc -l)
ok '[ "$docs" -ge $M ]' "with retry_s 0 every job went to the error action: $docs error documents for $M messages"
ok 'grep "sensors/z1/telemetry" "$T/errors.txt" | head -1 | python3 -c "
import json, sys, base64
d = json.loads(sys.stdin.readline())[\"result\"]
assert d[\"failures\"][0][\"failedAction\"] == \"RepublishAction\", d
assert b\"z1\" in base64.b64decode(d[\"base64OriginalPayload\"])
"' "the documents name RepublishAction and carry the original payload"
tries=$(grep -c '"msg":"rule relay: RepublishAction failed for good' "$T/sink.log")
ok '[ "$tries" -ge 1 ]' "the sink says the jobs failed for good after their tries ($tries log lines)"
