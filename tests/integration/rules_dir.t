#!/bin/sh
# An unreadable rules directory or rule file: a clear error naming the path
# and the cause, and the running pipeline keeps its rules and keeps flowing.
# As root, permissions only bite without CAP_DAC_OVERRIDE/READ_SEARCH, so
# everything here runs with those dropped from the bounding set.
. "$(dirname "$0")/lib.sh"
echo "1..6"
if [ "$(id -u)" = 0 ]; then
	NOCAP="setpriv --bounding-set=-dac_override,-dac_read_search"
else
	NOCAP=""
fi
start_mosquitto || exit 1
mkdir -p "$T/rules"
cat > "$T/rules/fahrenheit.json" <<'JSON'
{"sql": "SELECT device, temp * 1.8 + 32 AS temp_f FROM 'sensors/+/telemetry' WHERE temp > 20",
 "actions": [{"republish": {"topic": "out/${topic(2)}", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}]}
JSON
cat > "$T/config.json" <<JSON
{"broker": "mqtt://127.0.0.1:$PORT", "rules": "rules", "run_dir": "run", "state_dir": "state",
 "bin_dir": "$BIN"}
JSON
start_supervisor $NOCAP
mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -t 'out/#' -v > "$T/out.txt" 2>/dev/null &
PIDS="$PIDS $!"
sub_ready "$T/out.txt" out/probe
pub() { mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t "sensors/$1/telemetry" -m "{\"device\":\"$1\",\"temp\":25}"; }
arrived() { for _ in $(seq 50); do grep -q "^out/$1 " "$T/out.txt" && return 0; sleep 0.1; done; return 1; }

pub d1
ok 'arrived d1' "a message flows before the rules directory becomes unreadable"

chmod 000 "$T/rules"
"$BIN/iotrules" --config "$T/config.json" reload > "$T/reload.out" 2>&1
rc=$?
ok '[ $rc -eq 1 ] && grep "^ERROR rules refused, the running rules are kept" "$T/reload.out" | grep -q "rules directory $T/rules: Permission denied"' \
	"reload of an unreadable rules directory names the directory and the cause, and keeps the rules (rc $rc)"
pub d2
ok 'arrived d2' "messages keep flowing on the rules loaded before"

$NOCAP "$BIN/iotrules-evaluate" --run-dir "$T/run2" --rules "$T/rules" 2> "$T/eval.err"
rc=$?
ok '[ $rc = 100 ] && grep -q "\"level\":\"error\".*rules directory $T/rules: Permission denied" "$T/eval.err"' \
	"evaluate started on an unreadable rules directory exits 100 naming it (rc $rc)"

chmod 755 "$T/rules"
cp "$T/rules/fahrenheit.json" "$T/rules/secret.json"
chmod 000 "$T/rules/secret.json"
$NOCAP "$BIN/iotrules" check "$T/rules/fahrenheit.json" "$T/rules/secret.json" > "$T/check.txt" 2>&1
rc=$?
ok '[ $rc = 1 ] && grep -qx "OK $T/rules/fahrenheit.json (topicRulePayload: fahrenheit)" "$T/check.txt" && grep -qx "ERROR $T/rules/secret.json: cannot read: Permission denied" "$T/check.txt"' \
	"check: an unreadable rule file is an ERROR naming it, the readable one is OK (rc $rc)"
"$BIN/iotrules" --config "$T/config.json" reload > /dev/null 2>&1
for _ in $(seq 50); do grep -q 'secret.json rejected' "$T/sup.log" && break; sleep 0.1; done
pub d3
ok 'grep -q "rule $T/rules/secret.json rejected: cannot read: Permission denied" "$T/sup.log" && arrived d3' \
	"reload with one unreadable rule file rejects that file and runs the rest"
