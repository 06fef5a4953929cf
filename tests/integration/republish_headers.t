#!/bin/sh
# The republish action's MQTT 5 headers (ACTIONS.md §2.16), end to end:
# every header templated from the message reaches an MQTT 5 subscriber
# (mosquitto_sub -V mqttv5 -F) as the publish property it names; a header
# AWS would refuse sends the message to the errorAction; with MQTT 3.1.1
# the headers are dropped (the message still goes, one warning).
. "$(dirname "$0")/lib.sh"
echo "1..9"
start_mosquitto || exit 1
mkdir -p "$T/rules"
cat > "$T/rules/hdr.json" <<'JSON'
{"sql": "SELECT * FROM 'hdr/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"republish": {"topic": "out/${topic(2)}", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r",
   "headers": {"payloadFormatIndicator": "${fmt}", "contentType": "${ct}", "responseTopic": "reply/${topic(2)}",
     "correlationData": "${cd}", "messageExpiry": "${exp}",
     "userProperties": [{"key": "device", "value": "${topic(2)}"}, {"key": "seq", "value": "${seq}"}, {"key": "seq", "value": "again"}]}}}],
 "errorAction": {"republish": {"topic": "errors", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}}
JSON
config() {
	cat > "$T/config.json" <<JSON
{"broker": "mqtt://127.0.0.1:$PORT", "rules": "rules", "run_dir": "run", "state_dir": "state",
 "bin_dir": "$BIN", "mqtt_version": $1}
JSON
}
config 5
start_supervisor || exit 1
mosquitto_sub -h 127.0.0.1 -p "$PORT" -V mqttv5 -q 1 -t 'out/#' -t errors -F '%t|%F|%C|%R|%D|%E|%P|%p' > "$T/out.txt" 2>/dev/null &
PIDS="$PIDS $!"
for _ in $(seq 100); do
	mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t out/probe -m probe 2>/dev/null
	grep -q '^out/probe|' "$T/out.txt" 2>/dev/null && break
	sleep 0.1
done
for i in $(seq 1 10); do
	# correlationData: base64 of "id-$i"
	cd=$(printf 'id-%s' "$i" | base64)
	printf '{"seq":%d,"fmt":"UTF8_DATA","ct":"application/json","cd":"%s","exp":"3600"}\n' "$i" "$cd"
done | mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t hdr/dev1 -l
# A correlationData that is not base64: AWS refuses the publish.
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t hdr/dev2 -m '{"seq":99,"fmt":"UTF8_DATA","ct":"x","cd":"no base64!","exp":"5"}'
# Headers that render empty (fields missing) are left out.
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t hdr/dev3 -m '{"seq":7}'
for _ in $(seq 100); do [ "$(grep -c '^out/dev[13]|\|^errors|' "$T/out.txt")" -ge 12 ] && break; sleep 0.1; done

good=0
for i in $(seq 1 10); do
	cd=$(printf 'id-%s' "$i")
	grep -q "^out/dev1|1|application/json|reply/dev1|$cd|3[56][0-9][0-9]|device:dev1 seq:$i seq:again|{\"seq\":$i," "$T/out.txt" && good=$((good + 1))
done
ok '[ "$good" -eq 10 ]' "all 10 messages carry every header as templated ($good of 10)"
line=$(grep '^out/dev1|.*|{"seq":1,' "$T/out.txt" | head -1)   # the message with seq 1 (arrival order is not publish order)
ok 'echo "$line" | grep -q "^out/dev1|1|application/json|reply/dev1|id-1|"' "payloadFormatIndicator, contentType, responseTopic, correlationData (decoded): $line"
ok 'echo "$line" | grep -Eq "\|3(600|599|598)\|"' "messageExpiry 3600 s (the broker counts it down)"
ok 'echo "$line" | grep -q "|device:dev1 seq:1 seq:again|"' "userProperties in order, a repeated key kept"
line3=$(grep '^out/dev3|' "$T/out.txt")
ok 'echo "$line3" | grep -q "^out/dev3|||reply/dev3|||device:dev3 seq:7 seq:again|{\"seq\":7}$"' "headers that render empty are left out: $line3"
err=$(grep '^errors|' "$T/out.txt")
ok 'echo "$err" | grep -q "\"failedAction\":\"RepublishAction\"" && echo "$err" | grep -q "correlationData is not base64"' \
	"a correlationData that is not base64 goes to the errorAction: $(echo "$err" | head -c 300)"
ok '! grep -q "^out/dev2|" "$T/out.txt"' "... and is not published"

# MQTT 3.1.1: the headers are dropped, the message still goes, one warning.
kill "$SUP"; wait "$SUP" 2>/dev/null; rm -rf "$T/run/stats"
config 3
: > "$T/out.txt"
start_supervisor || exit 1
for _ in $(seq 100); do
	mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t out/probe -m probe 2>/dev/null
	grep -q '^out/probe|' "$T/out.txt" 2>/dev/null && break
	sleep 0.1
done
for i in 1 2; do
	mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t hdr/dev4 -m "{\"seq\":$i,\"fmt\":\"UTF8_DATA\",\"ct\":\"text/plain\",\"cd\":\"YWI=\",\"exp\":\"60\"}"
done
for _ in $(seq 100); do [ "$(grep -c '^out/dev4|' "$T/out.txt")" -ge 2 ] && break; sleep 0.1; done
ok '[ "$(grep -c "^out/dev4||||||" "$T/out.txt")" -eq 2 ]' "MQTT 3.1.1: both messages published without properties: $(grep '^out/dev4' "$T/out.txt" | head -1)"
ok '[ "$(grep -c "dropped on this MQTT 3.1.1 connection" "$T/sup.log")" -eq 1 ]' "... with one warning"
