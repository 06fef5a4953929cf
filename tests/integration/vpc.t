#!/bin/sh
# VPC destinations (ACTIONS.md §3): a config destination with
# vpcConfiguration names a Linux network namespace, and the supervisor
# starts the sinks that send through VPC destinations (kafka) inside it.
# The test makes a namespace with only its own loopback and runs a Kafka
# mock cluster there, so it is reachable from inside the namespace alone
# (no veth: a veth pair would route the host to it too, and the point is
# that only the namespace reaches it).  The sink in the namespace
# delivers; the same rule with the sink outside cannot reach the broker
# and the message goes to the errorAction.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/awslib.sh"
MOCK=${KAFKAMOCK:-$here/build/tests/kafkamock}
NS=iotr-vpc-$$
echo "1..6"
skip_all() { for i in 1 2 3 4 5 6; do echo "ok $i # skip $1"; done; exit 0; }
[ -x "$MOCK" ] && command -v kcat > /dev/null || skip_all "no kafkamock (make) or no kcat"
if ! out=$(ip netns add "$NS" 2>&1); then
	skip_all "network namespaces are not permitted here: $out"
fi
cleanup_hook() { ip netns del "$NS" 2>/dev/null; }
ip netns exec "$NS" ip link set lo up
start_mosquitto || exit 1
mkfifo "$T/kafka.ctl"
ip netns exec "$NS" "$MOCK" -b 1 -r "$T/kafka.bootstrap" vpc-events:1 < "$T/kafka.ctl" > "$T/kafka.out" 2> "$T/kafka.log" &
PIDS="$PIDS $!"
exec 3> "$T/kafka.ctl"   # the mock runs while this stays open
wait_until 20 test -s "$T/kafka.bootstrap"
BS=$(cat "$T/kafka.bootstrap")
echo "# mock cluster at $BS inside network namespace $NS"
ARN=arn:aws:iot:us-east-1:123456789012:ruledestination/vpc/5f6e7d8c
mkdir -p "$T/rules"
cat > "$T/rules/vpc.json" <<JSON
{"sql": "SELECT * FROM 'vpc/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"kafka": {"destinationArn": "$ARN", "topic": "vpc-events", "key": "\${seq}",
   "clientProperties": {"bootstrap.servers": "$BS", "security.protocol": "PLAINTEXT"}}}],
 "errorAction": {"republish": {"topic": "errors/vpc", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}}
JSON
config() { # netns-member-or-empty
	cat > "$T/config.json" <<JSON
{"broker": "mqtt://127.0.0.1:$PORT", "rules": "rules", "run_dir": "run", "state_dir": "state",
 "bin_dir": "$BIN", "tries": 1, "retry_s": 0,
 "destinations": [{"arn": "$ARN", "status": "ENABLED",
   "vpcConfiguration": {"subnetIds": ["subnet-1"], "vpcId": "vpc-1", "roleArn": "arn:aws:iam::123456789012:role/r"}$1}]}
JSON
}
config ", \"netns\": \"$NS\""
start_supervisor || exit 1
wait_until 20 sink_ready kafka
pid=$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' "$T"/run/stats/sink-kafka-*.json | head -1)
ok '[ -n "$pid" ] && [ "$(ip netns identify "$pid")" = "$NS" ]' "the supervisor started sink-kafka (pid $pid) in network namespace $NS"
ok '[ "$(ip netns identify $$)" = "" ]' "... while the test itself is outside it"
mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -t 'errors/#' > "$T/errors.txt" 2>/dev/null &
PIDS="$PIDS $!"
publish vpc/dev1 50 1
got() { ip netns exec "$NS" kcat -C -b "$BS" -t vpc-events -o beginning -e -q -f '%k\n' 2>/dev/null | sort -n | uniq | wc -l; }
enough() { [ "$(got)" -ge 50 ]; }
wait_until 30 enough
ok '[ "$(got)" -eq 50 ]' "all 50 messages delivered through the namespace ($(got) distinct keys)"

# The same rule with the sink outside the namespace (the stages started
# by hand, as a shell script composes them): the broker is not reachable
# from there.
kill "$SUP"; wait "$SUP" 2>/dev/null
R=$T/run2
c="--run-dir $R --state-dir $T/state2"
"$BIN/iotrules-sink-kafka" $c --name sink-kafka-1 --tries 1 --retry-s 0 2> "$T/kafka2.log" & PIDS="$PIDS $!"
"$BIN/iotrules-sink-republish" $c --name sink-republish-1 --broker "mqtt://127.0.0.1:$PORT" 2> "$T/rep2.log" & PIDS="$PIDS $!"
"$BIN/iotrules-error-handler" $c --name error-handler-1 2> "$T/eh2.log" & PIDS="$PIDS $!"
"$BIN/iotrules-evaluate" --run-dir "$R" --rules "$T/rules" --name evaluate-1 2> "$T/eval2.log" & PIDS="$PIDS $!"
"$BIN/iotrules-ingest" $c --name ingest-2 --broker "mqtt://127.0.0.1:$PORT" --rules "$T/rules" 2> "$T/ingest2.log" & PIDS="$PIDS $!"
ready2() { [ "$(grep -l '"ready":true' "$R"/stats/*.json 2>/dev/null | wc -l)" -ge 5 ]; }
wait_until 20 ready2
pid=$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' "$R"/stats/sink-kafka-1.json)
ok '[ -n "$pid" ] && [ -z "$(ip netns identify "$pid")" ]' "the same rule with sink-kafka (pid $pid) outside the namespace"
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t vpc/dev2 -m '{"seq":1000}'
wait_until 40 grep -q KafkaAction "$T/errors.txt"
ok 'grep -q "\"failedAction\":\"KafkaAction\"" "$T/errors.txt"' "cannot reach the broker: the message fails to the errorAction: $(grep -o '"failures".*' "$T/errors.txt" | head -c 300)"
ok '[ "$(got)" -eq 50 ]' "... and nothing more reached the broker"
