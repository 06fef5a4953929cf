#!/bin/sh
# ingest's broker session survives: messages published while ingest is
# down (killed -9) wait in the broker and arrive when it is back, under
# MQTT 5 (Session Expiry Interval) and MQTT 3.1.1 (clean session off).
# Stages wired by hand; evaluate --stdout writes the jobs it makes.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/lib.sh"
echo "1..4"
start_mosquitto || exit 1
fault_rule "$T/rules"
mkdir -p "$T/run" "$T/state"
"$BIN/iotrules-evaluate" --run-dir "$T/run" --rules "$T/rules" --name evaluate-1 --stdout > "$T/jobs.txt" 2> "$T/eval.log" &
PIDS="$PIDS $!"
start_ingest() {
	"$BIN/iotrules-ingest" --run-dir "$T/run" --state-dir "$T/state" --name ingest-1 \
	    --broker "mqtt://127.0.0.1:$PORT" --rules "$T/rules" --mqtt-version "$1" 2>> "$T/ingest.log" &
	ING=$!
	PIDS="$PIDS $ING"
	for _ in $(seq 100); do grep -q '"msg":"subscribed to' "$T/ingest.log" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}
# seqs DEVICE: distinct seq numbers of DEVICE among the jobs evaluate made.
seqs() { grep "\"device\":\"$1\"" "$T/jobs.txt" | sed 's/.*"seq":\([0-9]*\).*/\1/' | sort -un | wc -l; }
wait_seqs() { for _ in $(seq 300); do [ "$(seqs "$1")" -ge "$2" ] && return 0; sleep 0.1; done; return 1; }

for v in 5 3; do
	: > "$T/ingest.log"
	start_ingest $v
	stream 200 1000 "up$v"; wait_streams
	wait_seqs "up$v" 200
	kill -9 $ING; wait $ING 2>/dev/null
	# 1,000 messages while no ingest runs: the broker must keep them.
	stream 1000 2000 "down$v"; wait_streams
	: > "$T/ingest.log"
	start_ingest $v
	wait_seqs "down$v" 1000
	ok '[ "$(seqs "up$v")" -eq 200 ] && [ "$(seqs "down$v")" -eq 1000 ]' "MQTT $v: all 1,000 messages published while ingest was down arrived after its restart ($(seqs "down$v") of 1000)"
	ok 'grep -q "session resumed" "$T/ingest.log"' "MQTT $v: the restarted ingest resumed its session ($(grep -o 'session [a-z]*' "$T/ingest.log" | head -1))"
	kill $ING; wait $ING 2>/dev/null
done
