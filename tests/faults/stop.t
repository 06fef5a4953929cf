#!/bin/sh
# SIGTERM while something is down: every stage exits within 5 s, and what
# it had not finished is not acknowledged (the error handler's documents
# still arrive after a restart).  A run_dir too long for an ipc socket is
# refused at start by every stage.  Stages wired by hand.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/lib.sh"
echo "1..10"
start_mosquitto || exit 1
mkdir -p "$T/rules" "$T/run" "$T/state"
cat > "$T/rules/broken.json" <<'JSON'
{"sql": "SELECT * FROM 'fail/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"republish": {"topic": "bad/#", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}],
 "errorAction": {"stdout": {}}}
JSON
common="--run-dir $T/run --state-dir $T/state"
# stop_time PID: sends SIGTERM; sets MS to the time until PID exited and
# RC to its exit status.
stop_time() {
	t0=$(date +%s%3N)
	kill "$1"
	wait "$1"; RC=$?
	MS=$(($(date +%s%3N) - t0))
}
start_eh() {
	"$BIN/iotrules-error-handler" $common --name error-handler-1 2>> "$T/eh.log" &
	EH=$!
	PIDS="$PIDS $EH"
}
"$BIN/iotrules-evaluate" --run-dir "$T/run" --rules "$T/rules" --name evaluate-1 2> "$T/eval.log" &
EV=$!
PIDS="$PIDS $EV"
"$BIN/iotrules-sink-republish" $common --name sink-republish-1 --broker "mqtt://127.0.0.1:$PORT" 2> "$T/sink.log" &
SINK1=$!
PIDS="$PIDS $SINK1"
start_eh
"$BIN/iotrules-ingest" $common --name ingest-1 --broker "mqtt://127.0.0.1:$PORT" --rules "$T/rules" 2> "$T/ingest.log" &
ING=$!
PIDS="$PIDS $ING"
for _ in $(seq 100); do grep -q '"msg":"subscribed to' "$T/ingest.log" 2>/dev/null && break; sleep 0.1; done

# --- the error handler, while its errorAction's sink (stdout) is down ---
for i in $(seq 100); do echo "{\"n\":$i}"; done | mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t fail/e1 -l
for _ in $(seq 100); do grep -q '"in":100' "$T/run/stats/error-handler-1.json" 2>/dev/null && break; sleep 0.1; done
sleep 0.5
stop_time $EH
ok '[ "$MS" -lt 5000 ] && [ "$RC" -eq 0 ]' "the error handler stops in $MS ms (exit $RC) while its target sink is down"
"$BIN/iotrules-sink-stdout" $common --name sink-stdout-1 > "$T/docs.txt" 2> "$T/stdout.log" &
STDOUT_SINK=$!
PIDS="$PIDS $STDOUT_SINK"
start_eh
for _ in $(seq 200); do [ "$(sort -u "$T/docs.txt" | grep -c '"topic":"fail/e1"')" -ge 100 ] && break; sleep 0.1; done
docs=$(grep '"topic":"fail/e1"' "$T/docs.txt" | python3 -c '
import json, sys, base64
print(len({base64.b64decode(json.loads(l)["result"]["base64OriginalPayload"]) for l in sys.stdin}))')
ok '[ "$docs" -eq 100 ]' "after the restart all 100 error documents arrived ($docs distinct)"

# --- the republish sink, while its broker is down and it retries ---
fault_rule "$T/rules"
kill -HUP $EV $ING
for _ in $(seq 50); do grep -q 'subscribed to sensors' "$T/ingest.log" && break; sleep 0.1; done
kill $SINK1; wait $SINK1 2>/dev/null
DPORT=$(free_port)
start_s9() {
	"$BIN/iotrules-sink-republish" $common --name sink-republish-9 --broker "mqtt://127.0.0.1:$1" 2>> "$T/sink9.log" &
	S9=$!
	PIDS="$PIDS $S9"
}
start_s9 $DPORT
mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -t 'out/#' -v > "$T/out.txt" 2>/dev/null &
PIDS="$PIDS $!"
sub_ready "$T/out.txt" out/probe
stream 500 1000 s9; wait_streams
for _ in $(seq 100); do grep -q '"in":500' "$T/run/stats/sink-republish-9.json" 2>/dev/null && break; sleep 0.1; done
sleep 1
stop_time $S9
ok '[ "$MS" -lt 5000 ] && [ "$RC" -eq 0 ]' "a sink stops in $MS ms (exit $RC) while its broker is down and it retries"
start_s9 $PORT
wait_distinct "$T/out.txt" 500 60
ok '[ "$(distinct "$T/out.txt")" -eq 500 ]' "its jobs stayed in its spool: all 500 delivered after a restart ($(distinct "$T/out.txt"))"

# --- evaluate, while its sink is down (jobs for stdout pile up) ---
kill $STDOUT_SINK; wait $STDOUT_SINK 2>/dev/null
cat > "$T/rules/to_stdout.json" <<'JSON'
{"sql": "SELECT * FROM 'tostdout/+'", "awsIotSqlVersion": "2016-03-23", "actions": [{"stdout": {}}]}
JSON
kill -HUP $EV $ING
sleep 1
for i in $(seq 2000); do echo "{\"n\":$i}"; done | mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t tostdout/x -l
sleep 1
stop_time $EV
ok '[ "$MS" -lt 5000 ] && [ "$RC" -eq 0 ]' "evaluate stops in $MS ms (exit $RC) while a sink it waits for is down"

# --- ingest, while evaluate is down and its hop window is full ---
for i in $(seq 2000); do echo "{\"n\":$i}"; done | mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t tostdout/y -l
sleep 1
stop_time $ING
ok '[ "$MS" -lt 5000 ] && [ "$RC" -eq 0 ]' "ingest stops in $MS ms (exit $RC) while evaluate is down"

# --- a run_dir too long for an ipc socket path is refused at start ---
long="$T/$(printf 'r%.0s' $(seq 90))"
for st in ingest evaluate sink-republish error-handler; do
	case $st in
	ingest) args="--stdin --state-dir $T/state2" ;;
	evaluate) args="--rules $T/rules" ;;
	*) args="--state-dir $T/state2" ;;
	esac
	"$BIN/iotrules-$st" --run-dir "$long" $args < /dev/null 2> "$T/long.log"
	rc=$?
	ok '[ $rc -eq 100 ] && grep -q "is too long" "$T/long.log"' "$st refuses a run_dir too long for its sockets (exit $rc)"
done
