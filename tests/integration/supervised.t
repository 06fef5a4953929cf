#!/bin/sh
# The supervised pipeline against a real mosquitto: 20,000 QoS 1 messages
# while evaluate and the republish sink are rolled and a sink is killed
# with -9; scaling; a permanent failure through the errorAction; bad input.
. "$(dirname "$0")/lib.sh"
echo "1..12"
start_mosquitto || exit 1
mkdir -p "$T/rules"
cat > "$T/rules/fahrenheit.json" <<'JSON'
{"sql": "SELECT device, temp * 1.8 + 32 AS temp_f, seq FROM 'sensors/+/telemetry' WHERE temp > 20",
 "awsIotSqlVersion": "2016-03-23",
 "actions": [{"republish": {"topic": "out/${topic(2)}", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}]}
JSON
cat > "$T/rules/broken_target.json" <<'JSON'
{"sql": "SELECT * FROM 'fail/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"republish": {"topic": "bad/#", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}],
 "errorAction": {"republish": {"topic": "errors/${topic(2)}", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}}
JSON
echo '{"sql": "SELECT FROM WHERE", "actions": []}' > "$T/rules/bad_sql.json"
echo '{"sql": "SELECT * FROM '"'"'x'"'"'", "actions": [{"carrierPigeon": {}}]}' > "$T/rules/bad_action.json"
cat > "$T/config.json" <<JSON
{"broker": "mqtt://127.0.0.1:$PORT", "rules": "rules", "run_dir": "run", "state_dir": "state",
 "bin_dir": "$BIN"}
JSON
start_supervisor
ctl() { "$BIN/iotrules" --config "$T/config.json" "$@"; }
sleep 0.5

# --- bad input is reported and does not stop the flow ---
ok 'grep -q "bad_sql.json rejected: sql: line 1, column 8: expected an expression" "$T/sup.log"' "invalid SQL rejected with file, line and column"
ok 'grep -q "bad_action.json rejected: actions\[0\]: unknown action type .carrierPigeon." "$T/sup.log"' "unknown action type rejected with file and cause"

# --- 20,000 QoS 1 messages with rolling restarts and a kill -9 ---
mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -t 'out/#' -v > "$T/out.txt" 2>/dev/null &
SUB=$!
PIDS="$PIDS $SUB"
sub_ready "$T/out.txt" out/probe
outs() { grep -v '^out/probe ' "$T/out.txt"; }
for d in 1 2 3 4; do
	awk -v d=$d 'BEGIN { for (i = 1; i <= 5000; i++) printf "{\"device\":\"d%d\",\"temp\":%d,\"seq\":%d}\n", d, (i % 4 == 0) ? 15 : 25, i }' > "$T/pub$d.txt"
	mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t "sensors/d$d/telemetry" -l < "$T/pub$d.txt" &
	eval "PUB$d=\$!"
done
sleep 0.5
ctl restart evaluate > "$T/restart1.txt" 2>&1
sleep 0.3
ctl restart sink-republish > "$T/restart2.txt" 2>&1
sleep 0.3
victim=$(ctl status | awk '$1 == "sink-republish" { print $3; exit }')
kill -9 "$victim"
killed=$?
wait $PUB1 $PUB2 $PUB3 $PUB4
# Wait for the flow to settle: 15,000 distinct messages expected.
for _ in $(seq 600); do
	[ "$(outs | sort -u | wc -l)" -ge 15000 ] && break
	sleep 0.1
done
sleep 1
total=$(outs | wc -l)
uniq=$(outs | sort -u | wc -l)
# Each line: out/dN {"device":"dN","temp_f":77,"seq":S}; seq % 4 == 0 had temp 15.
wrong=$(outs | awk '{ match($0, /"seq":[0-9]+/); seq = substr($0, RSTART + 6, RLENGTH - 6) + 0;
	dev = substr($1, 5); if ($2 != "{\"device\":\"" dev "\",\"temp_f\":77,\"seq\":" seq "}" || seq % 4 == 0) bad++ }
	END { print bad + 0 }')
ok 'grep -q "^OK evaluate-1 replaced by evaluate-2" "$T/restart1.txt"' "iotrules restart evaluate rolls the instance ($(tr '\n' ' ' < "$T/restart1.txt"))"
ok 'grep -q "^OK sink-republish-1 replaced by" "$T/restart2.txt"' "iotrules restart sink-republish rolls the instance"
ok '[ "$killed" -eq 0 ] && grep -q "sink-republish-[0-9]* (pid $victim) killed by signal 9" "$T/sup.log"' "kill -9 of sink instance $victim is noticed and it is restarted"
ok '[ "$uniq" -eq 15000 ]' "all 15,000 messages with temp > 20 arrived (distinct: $uniq, total: $total, duplicates: $((total - uniq)))"
ok '[ "$wrong" -eq 0 ]' "every output is reshaped as the rule says and none had temp <= 20 ($wrong wrong)"
echo "# duplicates: $((total - uniq)) of $total"

# --- scale the sink to 3 ---
ctl scale sink-republish 3 > "$T/scale.txt"
sleep 1.5
before=$(ctl status | grep -c '^evaluate ')
for i in $(seq 1 3000); do echo "{\"device\":\"s\",\"temp\":30,\"seq\":$i}"; done > "$T/pub5.txt"
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t sensors/s/telemetry -l < "$T/pub5.txt"
sleep 2
ctl status > "$T/status.txt"
sed 's/^/# /' "$T/status.txt"
sinks=$(grep -c '^sink-republish ' "$T/status.txt")
busy=$(awk '$1 == "sink-republish" && $7 > 0' "$T/status.txt" | wc -l)
ok '[ "$sinks" -eq 3 ] && [ "$busy" -eq 3 ]' "scale sink-republish 3: three instances, each with messages out > 0 ($busy busy)"
ok '[ "$(awk '"'"'$1 == "evaluate" || $1 == "ingest"'"'"' "$T/status.txt" | awk '"'"'$5 != 0'"'"' | wc -l)" -eq 0 ]' "no other stage restarted by the scaling"

# --- a permanent failure produces exactly one AWS error document ---
mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -t 'errors/#' -v > "$T/errors.txt" 2>/dev/null &
PIDS="$PIDS $!"
sub_ready "$T/errors.txt" errors/probe
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t fail/dev9 -m '{"hello":"world"}'
for _ in $(seq 100); do grep -q '^errors/dev9 ' "$T/errors.txt" && break; sleep 0.1; done
sleep 1
doc=$(sed -n 's/^errors\/dev9 //p' "$T/errors.txt")
grep -v '^errors/probe ' "$T/errors.txt" | sed 's/^/# errors.txt: /'
ok '[ "$(grep -vc "^errors/probe " "$T/errors.txt")" -eq 1 ]' "exactly one error document"
ok 'echo "$doc" | python3 -c "
import json, sys, base64
d = json.load(sys.stdin)
assert d[\"ruleName\"] == \"broken_target\" and d[\"topic\"] == \"fail/dev9\" and d[\"clientId\"]
assert base64.b64decode(d[\"base64OriginalPayload\"]) == b\"{\\\"hello\\\":\\\"world\\\"}\"
f = d[\"failures\"][0]
assert f[\"failedAction\"] == \"RepublishAction\" and f[\"failedResource\"] == \"bad/#\" and \"wildcard\" in f[\"errorMessage\"]
assert len(d[\"cloudwatchTraceId\"]) == 36
"' "the document has ruleName, topic, clientId, base64OriginalPayload and failures[]"

# --- oversized payload ---
head -c 1048576 /dev/zero | tr '\0' 'a' > "$T/big.bin"
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t sensors/big/telemetry -f "$T/big.bin"
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t sensors/after/telemetry -m '{"device":"after","temp":50,"seq":1}'
sleep 1.5
ok 'grep -q "topic sensors/big/telemetry rejected: payload of 1048576 bytes exceeds the 128 KB limit" "$T/sup.log" && grep -q "^out/after " "$T/out.txt"' "a 1 MB payload is rejected naming the topic, and the next message flows"
kill $SUB 2>/dev/null
kill $SUP; wait $SUP 2>/dev/null
