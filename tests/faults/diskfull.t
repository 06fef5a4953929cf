#!/bin/sh
# A disk that fills and frees: every spool on a 2 MB tmpfs (in a mount
# namespace of this test), a QoS 1 stream through the pipeline, and the
# disk filled to the last byte for 5 s mid-stream.  Back-pressure, never
# loss: every message arrives, and the stages say what happened.
. "$(dirname "$0")/mountns.sh"
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/lib.sh"
mkdir -p "$T/run" "$T/state"
# Unmounted before the directory is removed (else "Device or resource
# busy" leaves an empty $T behind).
cleanup_hook() { umount "$T/state" 2>/dev/null; }
if ! mount -t tmpfs -o size=2m,mode=0700 tmpfs "$T/state" 2>/dev/null; then
	echo "1..0 # SKIP cannot mount a tmpfs here"
	exit 0
fi
echo "1..4"
start_mosquitto || exit 1
fault_rule "$T/rules"
common="--run-dir $T/run --state-dir $T/state"
"$BIN/iotrules-evaluate" --run-dir "$T/run" --rules "$T/rules" --name evaluate-1 2> "$T/eval.log" &
PIDS="$PIDS $!"
"$BIN/iotrules-sink-republish" $common --name sink-republish-1 --broker "mqtt://127.0.0.1:$PORT" 2> "$T/sink.log" &
PIDS="$PIDS $!"
"$BIN/iotrules-error-handler" $common --name error-handler-1 2> "$T/eh.log" &
PIDS="$PIDS $!"
"$BIN/iotrules-ingest" $common --name ingest-1 --broker "mqtt://127.0.0.1:$PORT" --rules "$T/rules" 2> "$T/ingest.log" &
PIDS="$PIDS $!"
for _ in $(seq 100); do grep -q '"msg":"subscribed to' "$T/ingest.log" 2>/dev/null && break; sleep 0.1; done
mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -t 'out/#' -v > "$T/out.txt" 2>/dev/null &
PIDS="$PIDS $!"
sub_ready "$T/out.txt" out/probe

N=20000
stream $N 2000 f1
stream $N 2000 f2
sleep 2
dd if=/dev/zero of="$T/state/filler" bs=4k 2>/dev/null
echo "# disk full: $(df -k "$T/state" | awk 'NR == 2 { print $4 }') KiB left"
sleep 5
rm -f "$T/state/filler"
echo "# disk freed"
wait_streams
wait_distinct "$T/out.txt" $((2 * N)) 120
got=$(distinct "$T/out.txt"); all=$(total "$T/out.txt")
ok '[ "$got" -eq $((2 * N)) ]' "every message arrived through a full disk: $got of $((2 * N)) distinct (lost $((2 * N - got))), duplicates $((all - got))"
ok 'cat "$T"/*.log | grep -q "no space left on device"' "a stage said the disk was full"
ok 'cat "$T"/*.log | grep -q "space is back"' "and when space was back"
ok '! cat "$T"/*.log | grep -q "spool append failed"' "no message was dropped for lack of space"
cat "$T"/*.log | grep -E "no space|space is back|holding it|is spooled after" | cut -c1-220 | sed 's/^/# /'
