#!/bin/sh
# MQTT 5 publish properties and the context functions, end to end: a
# message published with properties through mosquitto reaches the rule's
# get_mqtt_property/get_user_properties, traceid() is the message id, and
# accountid() is the configured account id.
. "$(dirname "$0")/lib.sh"
echo "1..4"
start_mosquitto || exit 1
mkdir -p "$T/rules"
cat > "$T/rules/props.json" <<'JSON'
{"sql": "SELECT get_mqtt_property('content_type') AS ct, get_mqtt_property('format_indicator') AS fi, get_mqtt_property('response_topic') AS rt, get_mqtt_property('correlation_data') AS cd, get_user_properties('env') AS env, get_user_properties() AS up, accountid() AS acct, traceid() AS tid, v FROM 'props/+'",
 "awsIotSqlVersion": "2016-03-23",
 "actions": [{"republish": {"topic": "out/${topic(2)}/${get(get_user_properties('env'), 0)}", "qos": 1}}]}
JSON
cat > "$T/config.json" <<JSON
{"broker": "mqtt://127.0.0.1:$PORT", "rules": "rules", "run_dir": "run", "state_dir": "state",
 "bin_dir": "$BIN", "account_id": "123456789012"}
JSON
start_supervisor
mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -t 'out/#' -v > "$T/out.txt" 2>/dev/null &
PIDS="$PIDS $!"
sub_ready "$T/out.txt" out/probe
mosquitto_pub -h 127.0.0.1 -p "$PORT" -V 5 -q 1 -t props/d1 -m '{"v":1}' \
	-D publish content-type application/json -D publish payload-format-indicator 1 \
	-D publish response-topic reply/d1 -D publish correlation-data abc \
	-D publish user-property env prod -D publish user-property zone eu -D publish user-property env test
mosquitto_pub -h 127.0.0.1 -p "$PORT" -V 5 -q 1 -t props/d2 -m '{"v":2}'
for _ in $(seq 50); do [ "$(grep -vc '^out/probe ' "$T/out.txt")" -ge 2 ] && break; sleep 0.1; done

line=$(grep '^out/d1/prod ' "$T/out.txt" | cut -d' ' -f2-)
ok '[ -n "$line" ]' "the message with properties arrives on a topic built from a user property (out/d1/prod)"
ok 'echo "$line" | grep -q "\"ct\":\"application/json\",\"fi\":\"UTF8_DATA\",\"rt\":\"reply/d1\",\"cd\":\"YWJj\",\"env\":\[\"prod\",\"test\"\],\"up\":\[{\"env\":\"prod\"},{\"zone\":\"eu\"},{\"env\":\"test\"}\]"' \
	"get_mqtt_property and get_user_properties see the MQTT 5 properties: $line"
ok 'echo "$line" | grep -Eq "\"acct\":\"123456789012\",\"tid\":\"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\",\"v\":1"' \
	"accountid() is the configured account id, traceid() a UUID"
line2=$(grep '^out/d2/ ' "$T/out.txt" | cut -d' ' -f2-)
ok 'echo "$line2" | grep -Eqx "\{\"acct\":\"123456789012\",\"tid\":\"[0-9a-f-]{36}\",\"v\":2\}"' \
	"without properties those functions are Undefined (template part empty): $line2"
