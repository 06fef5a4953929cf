#!/bin/sh
# iotrules restart of every stage in turn (ingest, evaluate, the sink, the
# error handler) during paced QoS 1 streams: every message arrives, and
# every message of a rule whose action fails gets its error document.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/lib.sh"
echo "1..6"
start_mosquitto || exit 1
fault_rule "$T/rules"
cat > "$T/rules/broken.json" <<'JSON'
{"sql": "SELECT * FROM 'fail/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"republish": {"topic": "bad/#", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}],
 "errorAction": {"republish": {"topic": "errors/${topic(2)}", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}}
JSON
cat > "$T/config.json" <<JSON
{"broker": "mqtt://127.0.0.1:$PORT", "rules": "rules", "run_dir": "run", "state_dir": "state", "bin_dir": "$BIN"}
JSON
start_supervisor || exit 1
mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -t 'out/#' -t 'errors/#' -v > "$T/out.txt" 2>/dev/null &
PIDS="$PIDS $!"
sub_ready "$T/out.txt" out/probe

N=8000   # 8 s at 1,000/s each
stream $N 1000 r1
stream $N 1000 r2
python3 -c '
import sys, time
for i in range(1, 1601):
    print("{\"n\":%d}" % i, flush=True)
    time.sleep(0.005)
' | mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t fail/e1 -l &
STREAMS="$STREAMS $!"
sleep 1
for stage in ingest evaluate sink-republish error-handler; do
	ctl restart $stage > "$T/restart-$stage.txt" 2>&1
	echo "# $(tr '\n' ' ' < "$T/restart-$stage.txt")"
done
wait_streams
wait_distinct "$T/out.txt" $((2 * N)) 120
for _ in $(seq 300); do [ "$(grep '^errors/e1 ' "$T/out.txt" | sort -u | wc -l)" -ge 1600 ] && break; sleep 0.1; done
got=$(distinct "$T/out.txt"); all=$(total "$T/out.txt")
docs=$(grep '^errors/e1 ' "$T/out.txt" | sed 's/^errors\/e1 //' | python3 -c '
import json, sys, base64
print(len({base64.b64decode(json.loads(l)["base64OriginalPayload"]) for l in sys.stdin}))')
for stage in ingest evaluate sink-republish error-handler; do
	ok 'grep -q "^OK" "$T/restart-$stage.txt" && ! grep -q "^ERROR" "$T/restart-$stage.txt"' "iotrules restart $stage"
done
ok '[ "$got" -eq $((2 * N)) ]' "every message arrived across the restarts: $got of $((2 * N)) distinct (lost $((2 * N - got))), duplicates $((all - got))"
ok '[ "$docs" -eq 1600 ]' "every failing message got its error document: $docs of 1600 (documents sent: $(grep -c '^errors/e1 ' "$T/out.txt"))"
kill $SUP; wait $SUP 2>/dev/null
