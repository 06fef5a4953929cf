#!/bin/sh
# Scribbled spool files: 16 bytes written into the middle of a sink's
# segment and one byte changed in its ack file while it is stopped.  At
# the restart the damaged records are reported (with where the bytes were
# saved), every other record is delivered, and nothing is deleted.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/lib.sh"
echo "1..5"
start_mosquitto || exit 1
fault_rule "$T/rules"
mkdir -p "$T/run" "$T/state"
common="--run-dir $T/run --state-dir $T/state"
SP="$T/state/sinks/republish/sink-republish-1"
start_sink() {
	"$BIN/iotrules-sink-republish" $common --name sink-republish-1 --broker "mqtt://127.0.0.1:$1" 2>> "$T/sink.log" &
	SINK=$!
	PIDS="$PIDS $SINK"
}
"$BIN/iotrules-evaluate" --run-dir "$T/run" --rules "$T/rules" --name evaluate-1 2> "$T/eval.log" &
PIDS="$PIDS $!"
"$BIN/iotrules-ingest" $common --name ingest-1 --broker "mqtt://127.0.0.1:$PORT" --rules "$T/rules" 2> "$T/ingest.log" &
PIDS="$PIDS $!"
for _ in $(seq 100); do grep -q '"msg":"subscribed to' "$T/ingest.log" 2>/dev/null && break; sleep 0.1; done
mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -t 'out/#' -v > "$T/out.txt" 2>/dev/null &
PIDS="$PIDS $!"
sub_ready "$T/out.txt" out/probe

# 1,000 delivered (the ack file is written), then 5,000 held in the spool
# while the sink's broker is unreachable.
start_sink "$PORT"
stream 1000 2000 c1; wait_streams
wait_distinct "$T/out.txt" 1000 30
kill $SINK; wait $SINK
start_sink "$(free_port)"
stream 5000 2000 c2; wait_streams
for _ in $(seq 200); do grep -q '"in":5000' "$T/run/stats/sink-republish-1.json" 2>/dev/null && break; sleep 0.1; done
kill $SINK; wait $SINK
seg=$(ls "$SP"/seg-* | tail -1)
size=$(stat -c %s "$seg")
# 16 bytes in the middle of the held records, one byte of the ack file.
printf 'SCRIBBLED-BYTES!' | dd of="$seg" bs=1 seek=$((size / 2)) conv=notrunc status=none
printf '\377' | dd of="$SP/ack" bs=1 seek=9 conv=notrunc status=none
echo "# scribbled 16 bytes at offset $((size / 2)) of $(basename "$seg") ($size bytes) and byte 9 of ack"
: > "$T/sink.log"
start_sink "$PORT"
for _ in $(seq 300); do grep -q '"pending":0' "$T/run/stats/sink-republish-1.json" 2>/dev/null && [ "$(distinct "$T/out.txt")" -ge 5900 ] && break; sleep 0.1; done
sleep 1
got=$(distinct "$T/out.txt"); all=$(total "$T/out.txt")
damaged=$(grep -o '"records":[0-9]*' "$T/sink.log" | awk -F: '{ s += $2 } END { print s + 0 }')
lost=$((6000 - got))
grep -E 'damaged|ack slot|both ack' "$T/sink.log" | sed 's/^/# /'
ok '[ "$damaged" -ge 1 ] && [ "$damaged" -le 2 ]' "the scribble is reported as $damaged damaged record(s)"
ok '[ "$lost" -eq "$damaged" ]' "every other record was delivered: $got of 6000 distinct, missing $lost = reported $damaged (duplicates $((all - got)))"
ok 'grep -q "ack slot" "$T/sink.log"' "the damaged ack slot is noticed and the other one used"
saved=$(ls "$SP"/damaged-* 2>/dev/null | head -1)
ok '[ -n "$saved" ] && grep -q "SCRIBBLED-BYTES!" "$saved"' "the damaged bytes were moved aside ($(basename "${saved:-none}")), not deleted"
ok '[ "$(stat -c %a "$saved")" = 600 ] && [ "$(stat -c %a "$SP")" = 700 ]' "spool files are 0600 in 0700 directories"
