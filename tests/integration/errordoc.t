#!/bin/sh
# One error document per rule and message (ERRORS.md §2.3): when two of a
# rule's three actions fail for good, one document lists both failures;
# when all actions succeed, there is none; documents survive a kill -9 of
# the error handler.
. "$(dirname "$0")/lib.sh"
echo "1..7"
start_mosquitto || exit 1
mkdir -p "$T/rules"
cat > "$T/rules/three.json" <<'JSON'
{"sql": "SELECT * FROM 'multi/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"republish": {"topic": "good/${topic(2)}", "qos": 1}},
             {"republish": {"topic": "bad/#", "qos": 1}},
             {"republish": {"topic": "bad/+/x", "qos": 0}}],
 "errorAction": {"republish": {"topic": "errors/${topic(2)}", "qos": 1}}}
JSON
cat > "$T/rules/fine.json" <<'JSON'
{"sql": "SELECT * FROM 'fine/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"republish": {"topic": "good/a/${topic(2)}", "qos": 1}},
             {"republish": {"topic": "good/b/${topic(2)}", "qos": 0}}],
 "errorAction": {"republish": {"topic": "errors/${topic(2)}", "qos": 1}}}
JSON
cat > "$T/config.json" <<JSON
{"broker": "mqtt://127.0.0.1:$PORT", "rules": "rules", "run_dir": "run", "state_dir": "state",
 "bin_dir": "$BIN"}
JSON
start_supervisor
mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -t 'errors/#' -t 'good/#' -v > "$T/out.txt" 2>/dev/null &
PIDS="$PIDS $!"
sub_ready "$T/out.txt" errors/probe
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t multi/m1 -m '{"n":1}'
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t fine/f1 -m '{"n":2}'
for _ in $(seq 100); do grep -q '^errors/m1 ' "$T/out.txt" && break; sleep 0.1; done
sleep 1
grep -v '/probe ' "$T/out.txt" | sed 's/^/# /'
ok '[ "$(grep -c "^errors/m1 " "$T/out.txt")" -eq 1 ] && grep -q "^good/m1 " "$T/out.txt"' \
	"two failed actions of one rule and message: exactly one document (and the good action delivered)"
ok 'grep "^errors/m1 " "$T/out.txt" | cut -d" " -f2- | python3 -c "
import json, sys
d = json.load(sys.stdin)
r = sorted(f[\"failedResource\"] for f in d[\"failures\"])
assert d[\"ruleName\"] == \"three\" and d[\"topic\"] == \"multi/m1\" and r == [\"bad/#\", \"bad/+/x\"], d
assert all(f[\"failedAction\"] == \"RepublishAction\" for f in d[\"failures\"])
"' "the document lists both failures"
ok '! grep -q "^errors/f1 " "$T/out.txt" && grep -q "^good/a/f1 " "$T/out.txt" && grep -q "^good/b/f1 " "$T/out.txt"' \
	"a rule whose actions all succeed sends no document"
ok '! grep -q "rule three: .* actions reported within" "$T/sup.log"' "the document came from complete reports, not the grace period"

# --- kill -9 of the error handler while documents are being gathered ---
seq 1 2000 | awk '{printf "{\"n\":%d}\n", $1}' > "$T/pub.txt"
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t multi/k -l < "$T/pub.txt" &
PUB=$!
for _ in $(seq 50); do [ "$(grep -c '^errors/k ' "$T/out.txt")" -ge 100 ] && break; sleep 0.05; done
victim=$("$BIN/iotrules" --config "$T/config.json" status | awk '$1 == "error-handler" { print $3; exit }')
kill -9 "$victim"
wait $PUB
for _ in $(seq 200); do [ "$(grep '^errors/k ' "$T/out.txt" | sort -u | wc -l)" -ge 2000 ] && break; sleep 0.1; done
docs=$(grep '^errors/k ' "$T/out.txt" | cut -d' ' -f2- | python3 -c "
import sys, json, base64
print(len({base64.b64decode(json.loads(l)['base64OriginalPayload']) for l in sys.stdin}))")
restarts=$("$BIN/iotrules" --config "$T/config.json" status | awk '$1 == "error-handler" { print $5; exit }')
echo "# error documents: $docs distinct of 2000 messages, $(grep -c '^errors/k ' "$T/out.txt") in all; error-handler restarts: $restarts"
ok '[ "$docs" -eq 2000 ] && [ "$restarts" -ge 1 ]' "after a kill -9 of the error handler every message still gets its document"

# --- the grace period: a rule's other action never reports ---
# The error handler alone, fed by hand over its hop (build/tests/hopsend),
# with the stdout sink standing in for the errorAction's republish sink.
G=$T/grace
mkdir -p "$G/run" "$G/state"
"$BIN/iotrules-sink-stdout" --run-dir "$G/run" --state-dir "$G/state" --action republish > "$G/jobs.txt" 2> "$G/sink.log" &
PIDS="$PIDS $!"
"$BIN/iotrules-error-handler" --run-dir "$G/run" --state-dir "$G/state" --grace-ms 300 2> "$G/eh.log" &
PIDS="$PIDS $!"
echo '{"kind":"failure","rule":"two","topic":"g/1","payload":"{\"a\":1}","action_index":1,"action_count":2,"erraction":{"type":"republish","params":{"topic":"errors/g"}},"error":{"failedAction":"RepublishAction","failedResource":"bad/#","errorMessage":"no"}}' \
	| "$here/build/tests/hopsend" "$G/run/failures" test 2> "$G/send.log"
sent=$?
for _ in $(seq 50); do [ -s "$G/jobs.txt" ] && break; sleep 0.1; done
ok '[ $sent = 0 ] && [ "$(wc -l < "$G/jobs.txt")" -eq 1 ] && grep -q "rule two: 1 of 2 actions reported within 300 ms" "$G/eh.log" && python3 -c "
import json, sys
j = json.loads(open(sys.argv[1]).readline())
d = j[\"result\"]
assert j[\"action\"] == \"republish\" and j[\"params\"][\"topic\"] == \"errors/g\"
assert d[\"ruleName\"] == \"two\" and [f[\"failedResource\"] for f in d[\"failures\"]] == [\"bad/#\"]
" "$G/jobs.txt"' "after --grace-ms without the other action's report, the document is sent with what failed"

# --- an error handler that is gone leaves open reports: a sibling adopts them ---
G2=$T/adopt
mkdir -p "$G2/run" "$G2/state"
"$BIN/iotrules-sink-stdout" --run-dir "$G2/run" --state-dir "$G2/state" --action republish > "$G2/jobs.txt" 2> "$G2/sink.log" &
PIDS="$PIDS $!"
"$BIN/iotrules-error-handler" --run-dir "$G2/run" --state-dir "$G2/state" --name eh-1 --grace-ms 60000 2> "$G2/eh1.log" &
EH1=$!
PIDS="$PIDS $EH1"
echo '{"kind":"failure","rule":"two","topic":"g/2","payload":"{}","action_index":0,"action_count":2,"erraction":{"type":"republish","params":{"topic":"errors/g"}},"error":{"failedAction":"RepublishAction","failedResource":"bad/#","errorMessage":"no"}}' \
	| "$here/build/tests/hopsend" "$G2/run/failures" test 2> "$G2/send.log"
kill $EH1; wait $EH1 2>/dev/null   # stops with the report's group still open
"$BIN/iotrules-error-handler" --run-dir "$G2/run" --state-dir "$G2/state" --name eh-2 --grace-ms 300 2> "$G2/eh2.log" &
PIDS="$PIDS $!"
for _ in $(seq 60); do [ -s "$G2/jobs.txt" ] && break; sleep 0.1; done
ok '[ "$(wc -l < "$G2/jobs.txt")" -eq 1 ] && grep -q "adopting 1 report(s) from the spool of eh-1" "$G2/eh2.log" && [ ! -d "$G2/state/error-handler/eh-1" ]' \
	"the report left in a stopped error handler's spool is adopted by the next one and its document sent"
