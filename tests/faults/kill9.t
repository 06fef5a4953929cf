#!/bin/sh
# kill -9 of every stage in turn (ingest, evaluate, the sink, the error
# handler) during a paced QoS 1 stream through the supervised pipeline:
# each is restarted and every message arrives (duplicates are counted).
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/lib.sh"
echo "1..6"
start_mosquitto || exit 1
fault_rule "$T/rules"
cat > "$T/config.json" <<JSON
{"broker": "mqtt://127.0.0.1:$PORT", "rules": "rules", "run_dir": "run", "state_dir": "state", "bin_dir": "$BIN"}
JSON
start_supervisor || exit 1
mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -t 'out/#' -v > "$T/out.txt" 2>/dev/null &
PIDS="$PIDS $!"
sub_ready "$T/out.txt" out/probe

N=8000   # per device, two devices at 1,000/s each: 8 s of stream
stream $N 1000 k1
stream $N 1000 k2
sleep 1
for stage in ingest evaluate sink-republish error-handler; do
	pid=$(stage_pid $stage)
	kill -9 "$pid"
	if wait_pid_change $stage "$pid"; then echo "# $stage (pid $pid) killed and restarted"; fi
	eval "killed_$(echo $stage | tr - _)=$pid"
	sleep 1.2
done
wait_streams
wait_distinct "$T/out.txt" $((2 * N)) 120
got=$(distinct "$T/out.txt"); all=$(total "$T/out.txt")
for stage in ingest evaluate sink-republish error-handler; do
	eval "pid=\$killed_$(echo $stage | tr - _)"
	ok 'grep -q "(pid $pid) killed by signal 9" "$T/sup.log"' "kill -9 of $stage (pid $pid) noticed and restarted"
done
ok '[ "$got" -eq $((2 * N)) ]' "every message arrived: $got of $((2 * N)) distinct (lost $((2 * N - got)): k1 $(missing "$T/out.txt" k1 $N), k2 $(missing "$T/out.txt" k2 $N)), duplicates $((all - got))"
ok '! grep -q "malformed record" "$T/sup.log"' "no stage reported malformed records"
echo "# sent $((2 * N)), received $all, distinct $got, duplicates $((all - got))"
kill $SUP; wait $SUP 2>/dev/null
