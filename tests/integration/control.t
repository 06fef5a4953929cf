#!/bin/sh
# Every command of `iotrules` with good and bad arguments (exit codes and
# messages), the conventions every binary shares (--help, --version,
# --opt=value, one-line usage errors exiting 2), a config with three
# problems (three errors, exit 100, nothing started) and
# IOTRULES_LOG_LEVEL.
. "$(dirname "$0")/lib.sh"
echo "1..55"
start_mosquitto || exit 1
mkdir -p "$T/rules"
cat > "$T/rules/fahrenheit.json" <<'JSON'
{"sql": "SELECT device, temp * 1.8 + 32 AS temp_f FROM 'sensors/+/telemetry'",
 "actions": [{"republish": {"topic": "out/${topic(2)}", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}]}
JSON
cat > "$T/config.json" <<JSON
{"broker": "mqtt://127.0.0.1:$PORT", "rules": "rules", "run_dir": "run", "state_dir": "state",
 "bin_dir": "$BIN", "metrics_listen": false}
JSON
C="$T/config.json"
# run NAME CMD...: runs CMD, stdout in $T/NAME.out, stderr in $T/NAME.err,
# exit status in $rc.
run() {
	_name=$1
	shift
	"$@" > "$T/$_name.out" 2> "$T/$_name.err"
	rc=$?
}
out() { cat "$T/$1.out"; }
err() { cat "$T/$1.err"; }
one_line() { [ "$(wc -l < "$T/$1.err")" -eq 1 ]; }
IOT="$BIN/iotrules"

# --- acceptance 1: a config with a misspelt key, a wrong type and a bad URL
mkdir -p "$T/bad"
cat > "$T/bad/config.json" <<JSON
{
  "brokr": "mqtt://127.0.0.1:$PORT",
  "tries": "three",
  "broker": "htp://127.0.0.1:$PORT",
  "run_dir": "run", "state_dir": "state", "bin_dir": "$BIN"
}
JSON
run badsup "$BIN/iotrules-supervisor" --config "$T/bad/config.json"
ok '[ $rc -eq 100 ] && [ "$(grep -c "\"level\":\"error\"" "$T/badsup.err")" -eq 4 ]' \
	"the supervisor on a config with three problems exits 100 with three errors and a summary (rc $rc)"
three_named() {
	grep -Fq 'config.json:2: unknown key \"brokr\" (did you mean \"broker\"?)' "$T/badsup.err" &&
	grep -Fq 'config.json:3: \"tries\" must be an integer' "$T/badsup.err" &&
	grep -Fq "config.json:4: \\\"broker\\\": \\\"htp://127.0.0.1:$PORT\\\" is not a broker URL" "$T/badsup.err"
}
ok 'three_named' \
	"... each names the file, the line, the key and the cause"
ok '[ ! -e "$T/bad/run" ] && [ ! -e "$T/bad/state" ] && ! pgrep -f "$T/bad/run" > /dev/null' \
	"... and nothing was started (no run_dir, no state_dir, no process)"
run cc "$IOT" check-config "$T/bad/config.json"
ok '[ $rc -eq 100 ] && [ "$(wc -l < "$T/cc.err")" -eq 3 ] && grep -q "did you mean \"broker\"" "$T/cc.err"' \
	"check-config FILE: the same three errors, exit 100 (rc $rc)"
run cc "$IOT" check-config "$C"
ok '[ $rc -eq 0 ] && [ "$(out cc)" = "OK $C" ]' "check-config on a good config: OK, exit 0 (rc $rc)"
run cc "$IOT" --config "$C" check-config
ok '[ $rc -eq 0 ]' "check-config takes --config instead of an argument (rc $rc)"
run cc "$IOT" check-config "$T/nonexistent.json"
ok '[ $rc -eq 100 ] && grep -q "nonexistent.json: No such file" "$T/cc.err"' "check-config on a missing file: 100 (rc $rc)"
run cc "$IOT" check-config
ok '[ $rc -eq 2 ] && one_line cc' "check-config without a file: usage error, exit 2 (rc $rc)"
printf '{"instances": {"ingest": 2}}\n' > "$T/bad/shared.json"
run cc "$IOT" check-config "$T/bad/shared.json"
ok '[ $rc -eq 100 ] && grep -q "ingest 2 needs \"share_group\"" "$T/cc.err"' \
	"two ingest instances without share_group are refused (rc $rc)"

# --- the front door: help, version, usage errors
run h "$IOT" --help
ok '[ $rc -eq 0 ] && out h | grep -q "^usage: iotrules" && out h | grep -q check-config' "--help: synopsis on stdout, exit 0"
run v "$IOT" --version
ok '[ $rc -eq 0 ] && out v | grep -Eq "^iotrules [0-9]+\.[0-9]+\.[0-9]+$"' "--version (rc $rc: $(out v))"
run u "$IOT"
ok '[ $rc -eq 2 ] && one_line u && grep -q "a command is needed" "$T/u.err"' "no command: exit 2, one line (rc $rc)"
run u "$IOT" --config "$C" frobnicate
ok '[ $rc -eq 2 ] && one_line u && grep -q "unknown command .frobnicate." "$T/u.err"' "unknown command: exit 2 (rc $rc)"
run u "$IOT" --config "$C" status --bogus
ok '[ $rc -eq 2 ] && one_line u && grep -q "unknown option --bogus" "$T/u.err"' "unknown option: exit 2 (rc $rc)"
run u env -u IOTRULES_CONFIG "$IOT" status
ok '[ $rc -eq 2 ] && one_line u && grep -q "status needs --config FILE" "$T/u.err"' "status without a config: exit 2 (rc $rc)"
run u "$IOT" --config "$C" status
ok '[ $rc -eq 1 ] && grep -q "cannot reach the supervisor" "$T/u.err"' "status with no supervisor running: exit 1 (rc $rc)"
run u "$IOT" --config "$T/bad/config.json" status
ok '[ $rc -eq 100 ] && grep -q "unknown key" "$T/u.err"' "status with a bad config: exit 100 (rc $rc)"
run u "$IOT" --config "$C" status extra
ok '[ $rc -eq 2 ] && one_line u' "status with an extra argument: exit 2 (rc $rc)"

# --- a running pipeline
start_supervisor || exit 1
run s "$IOT" --config "$C" status
ok '[ $rc -eq 0 ] && out s | grep -q "^STAGE" && out s | grep -q "^evaluate  *evaluate-1"' "status: a table of instances (rc $rc)"
run s "$IOT" --config "$C" status --json
json_ok() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert {"instances","stages","rules","actions"} <= set(d) and any(i["stage"] == "evaluate" for i in d["instances"])' "$T/s.out"; }
ok '[ $rc -eq 0 ] && json_ok' "status --json: one JSON document with instances, stages, rules and actions (rc $rc)"
# Nobody subscribes to out/# yet: MQTT 5 brokers answer such a publish
# with reason 0x10 (no matching subscribers), a success.
for i in 1 2 3 4 5; do
	mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t sensors/n$i/telemetry -m '{"device":"n","temp":1}'
done
delivered() {
	"$IOT" --config "$C" status --json > "$T/dj.out" 2>/dev/null &&
	python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))["actions"].get("republish",{}); sys.exit(0 if a.get("delivered",0) >= 5 and a.get("retried",0) == 0 else 1)' "$T/dj.out"
}
for _ in $(seq 100); do delivered && break; sleep 0.1; done
ok 'delivered' "a republish nobody subscribes to is delivered (MQTT 5 reason 0x10), not retried: $(cat "$T/dj.out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["actions"].get("republish"))' 2>&1 | cut -c1-120)"
run s "$IOT" status --config "$C"
ok '[ $rc -eq 0 ] && out s | grep -q "^ingest"' "options after the command (status --config F) (rc $rc)"
run s "$IOT" status --config="$C"
ok '[ $rc -eq 0 ] && out s | grep -q "^ingest"' "--config=FILE (rc $rc)"
run s env IOTRULES_CONFIG="$C" "$IOT" status
ok '[ $rc -eq 0 ] && out s | grep -q "^ingest"' "\$IOTRULES_CONFIG (rc $rc)"
run s "$IOT" --config "$C" reload --json
ok '[ $rc -eq 2 ] && one_line s' "--json is only for status: exit 2 (rc $rc)"

run sc "$IOT" --config "$C" scale evaluate 2
ok '[ $rc -eq 0 ] && out sc | grep -q "^OK evaluate scaled to 2"' "scale evaluate 2 (rc $rc)"
two() { [ "$("$IOT" --config "$C" status | grep -c "^evaluate ")" -eq 2 ]; }
ok 'two' "... status shows two evaluate instances"
run sc "$IOT" --config "$C" scale evaluate 1
ok '[ $rc -eq 0 ] && out sc | grep -q "^OK evaluate scaled to 1"' "scale back to 1 (rc $rc)"
run sc "$IOT" --config "$C" scale ingest 2
ok '[ $rc -eq 1 ] && out sc | grep -q "^ERROR ingest needs \"share_group\""' \
	"scale ingest 2 without share_group is refused with the reason, exit 1 (rc $rc)"
run sc "$IOT" --config "$C" scale nosuch 1
ok '[ $rc -eq 1 ] && out sc | grep -q "^ERROR unknown stage .nosuch."' "scale of an unknown stage: exit 1 (rc $rc)"
run sc "$IOT" --config "$C" scale evaluate
ok '[ $rc -eq 2 ] && one_line sc' "scale without a count: exit 2 (rc $rc)"
run sc "$IOT" --config "$C" scale evaluate many
ok '[ $rc -eq 2 ] && grep -q "an integer from 0 to 64" "$T/sc.err"' "scale with a count that is not a number: exit 2 (rc $rc)"
run sc "$IOT" --config "$C" scale evaluate 65
ok '[ $rc -eq 2 ]' "scale beyond 64: exit 2 (rc $rc)"

run r "$IOT" --config "$C" restart sink-republish
ok '[ $rc -eq 0 ] && out r | grep -q "^OK sink-republish-1 replaced by sink-republish-"' "restart sink-republish: rolling (rc $rc)"
run r "$IOT" --config "$C" restart nosuch
ok '[ $rc -eq 1 ] && out r | grep -q "^ERROR unknown stage"' "restart of an unknown stage: exit 1 (rc $rc)"
run r "$IOT" --config "$C" restart
ok '[ $rc -eq 2 ] && one_line r' "restart without a stage: exit 2 (rc $rc)"
run r "$IOT" --config "$C" restart a b
ok '[ $rc -eq 2 ]' "restart with two stages: exit 2 (rc $rc)"

run rl "$IOT" --config "$C" reload
ok '[ $rc -eq 0 ] && out rl | grep -q "^OK reload signalled"' "reload (rc $rc)"
# (rules_dir.t does the unreadable directory; here it is not there.)
mv "$T/rules" "$T/rules.away"
run rl "$IOT" --config "$C" reload
mv "$T/rules.away" "$T/rules"
ok '[ $rc -eq 1 ] && out rl | grep -q "^ERROR rules refused, the running rules are kept: .*rules"' \
	"reload of a rules directory that cannot be read: ERROR, exit 1 (rc $rc)"
mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -t 'out/#' -v > "$T/sub.txt" 2>/dev/null &
PIDS="$PIDS $!"
sub_ready "$T/sub.txt" out/probe
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t sensors/d9/telemetry -m '{"device":"d9","temp":10}'
for _ in $(seq 100); do grep -q '^out/d9 ' "$T/sub.txt" && break; sleep 0.1; done
ok 'grep -q "^out/d9 {\"device\":\"d9\",\"temp_f\":50.0}" "$T/sub.txt"' "after the refused reload the rules still run"

echo '{"sql": "SELECT * FROM 'x'", "actoins": []}' > "$T/rules/typo.json"
run rl "$IOT" --config "$C" reload
rm "$T/rules/typo.json"
ok '[ $rc -eq 1 ] && out rl | grep -q "^OK reload signalled" && out rl | grep -q "^ERROR rule refused: $T/rules/typo.json: .*actoins"' \
	"reload with a refused rule file: the rest reloads, the refused file is named, exit 1 (rc $rc)"
run rl "$IOT" --config "$C" reload
ok '[ $rc -eq 0 ] && ! out rl | grep -q ERROR' "reload once the file is gone: exit 0 (rc $rc)"

run d "$IOT" --config "$C" destination
ok '[ $rc -eq 2 ] && one_line d' "destination without confirm ARN: exit 2 (rc $rc)"
run d "$IOT" --config "$C" destination confirm
ok '[ $rc -eq 2 ]' "destination confirm without an ARN: exit 2 (rc $rc)"
run d "$IOT" --config "$C" destination confirm arn:aws:iot:us-east-1:123456789012:ruledestination/http/nosuch
ok '[ $rc -eq 1 ] && grep -q "destination confirm arn:.*nosuch" "$T/d.err"' "destination confirm of an ARN not in the config: exit 1 (rc $rc)"

run k "$IOT" check "$T/rules/fahrenheit.json"
ok '[ $rc -eq 0 ] && out k | grep -q "^OK $T/rules/fahrenheit.json"' "check of a good rule file (rc $rc)"
echo '{"sql": "SELECT FROM", "actions": []}' > "$T/bad/rule.json"
run k "$IOT" check "$T/rules/fahrenheit.json" "$T/bad/rule.json"
ok '[ $rc -eq 1 ] && out k | grep -q "^ERROR $T/bad/rule.json: " && out k | grep -q "^OK "' \
	"check of a good and a bad file: OK and ERROR lines, exit 1 (rc $rc)"
run k "$IOT" check "$T/rules"
ok '[ $rc -eq 0 ] && [ "$(out k)" = "OK $T/rules/fahrenheit.json (topicRulePayload: fahrenheit)" ]' "check of a rules directory: each file with its form (rc $rc)"
cp "$T/rules/fahrenheit.json" "$T/bad/fahrenheit.json"
run k "$IOT" check "$T/rules" "$T/bad/fahrenheit.json"
ok '[ $rc -eq 1 ] && out k | grep -q "^ERROR $T/bad/fahrenheit.json: .*already used"' "check: a rule name used twice is refused, as the pipeline refuses it (rc $rc)"
run k "$IOT" check
ok '[ $rc -eq 2 ] && one_line k' "check without a file: exit 2 (rc $rc)"
run k "$IOT" --config "$T/bad/config.json" check "$T/rules/fahrenheit.json"
ok '[ $rc -eq 100 ]' "check with a bad config: exit 100 (rc $rc)"

# --- every binary: --help, --version, --opt=value, one-line usage errors
bad=""
for b in "$BIN"/iotrules*; do
	name=$(basename "$b")
	"$b" --help > "$T/bh.out" 2>&1 || bad="$bad $name:help"
	grep -q "usage" "$T/bh.out" || bad="$bad $name:synopsis"
	[ "$("$b" --version 2>&1)" = "$name $("$IOT" --version | cut -d' ' -f2)" ] || bad="$bad $name:version"
	"$b" --no-such-option > /dev/null 2> "$T/bu.err"
	[ $? -eq 2 ] && [ "$(wc -l < "$T/bu.err")" -eq 1 ] || bad="$bad $name:usage"
done
ok '[ -z "$bad" ]' "every binary: --help, --version, and an unknown option is one line and exit 2 (failures:$bad)"
run eq "$BIN/iotrules-sink-stdout" --run-dir="$T/eqrun" --state-dir="$T/eqstate" --tries=0
ok '[ $rc -eq 2 ] && grep -q "bad value for --tries: .0." "$T/eq.err"' "a sink reads --opt=value and checks the value (rc $rc)"

# --- IOTRULES_LOG_LEVEL
kill "$SUP"
for _ in $(seq 100); do kill -0 "$SUP" 2>/dev/null || break; sleep 0.1; done
# level_run LEVEL: the supervisor (and so every stage) with that level,
# until status answers; its stderr in $T/lv.err.
level_run() {
	IOTRULES_LOG_LEVEL=$1 "$BIN/iotrules-supervisor" --config "$C" 2> "$T/lv.err" &
	LV=$!
	PIDS="$PIDS $LV"
	up=0
	for _ in $(seq 100); do
		"$IOT" --config "$C" status > /dev/null 2>&1 && { up=1; break; }
		sleep 0.1
	done
	sleep 1
	kill "$LV"
	wait "$LV" 2>/dev/null
}
level_run error
ok '[ $up -eq 1 ] && ! grep -q "\"level\":\"info\"" "$T/lv.err"' "IOTRULES_LOG_LEVEL=error: the pipeline ran and no process wrote an info line"
level_run debug
ok '[ $up -eq 1 ] && grep -q "\"level\":\"info\"" "$T/lv.err"' "IOTRULES_LOG_LEVEL=debug: info lines are there"
