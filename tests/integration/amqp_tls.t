#!/bin/sh
# The AMQP hop transport over TLS (amqps://): a one-node RabbitMQ with a
# TLS listener on loopback (tests/backends/rabbitmq.sh, RMQ_TLS) and a
# throw-away CA (tests/backends/gen-certs.sh).  The hop's unit test passes
# over it; a server certificate from another CA is refused; a supervised
# pipeline with "transport": {"amqp": ["amqps://..."], "cafile": ...}
# carries messages.
. "$(dirname "$0")/lib.sh"
. "$here/tests/backends/rabbitmq.sh"
echo "1..6"
cleanup_hook() { rmq_cluster_stop > /dev/null 2>&1; }
sh "$here/tests/backends/gen-certs.sh" "$T/tls"
sh "$here/tests/backends/gen-certs.sh" "$T/other"
RMQ_TLS=$T/tls rmq_cluster_start 1 "$T/rmq" > "$T/rmq.out" 2>&1
rc=$?
ok '[ $rc -eq 0 ]' "a RabbitMQ node with a TLS listener on 127.0.0.1:$RMQ_TLS_PORTS"
[ $rc -eq 0 ] || sed 's/^/# /' "$T/rmq.out"
URL="amqps://guest:guest@localhost:$RMQ_TLS_PORTS"

IOTRULES_AMQP="$URL" IOTRULES_AMQP_CAFILE="$T/tls/ca.pem" IOTRULES_AMQP_PREFIX=tls \
    "${HOP_TEST:-$here/build/tests/hop_test}" > "$T/hop.tap" 2> "$T/hop.log"
ok '[ "$(grep -c "^ok" "$T/hop.tap")" -eq 8 ] && ! grep -q "^not ok" "$T/hop.tap"' \
    "hop_test passes over amqps ($(grep -c '^ok' "$T/hop.tap") of 8)"
ok 'grep -q "connected to localhost:$RMQ_TLS_PORTS" "$T/hop.log"' "it connected to the TLS port"

# Another CA: no connection, and the log says which node and why.
IOTRULES_AMQP="$URL" IOTRULES_AMQP_CAFILE="$T/other/ca.pem" IOTRULES_AMQP_PREFIX=tls \
    timeout 5 "$here/build/bench/hop" --seconds 1 > "$T/bad.out" 2> "$T/bad.log"
ok '[ ! -s "$T/bad.out" ] && grep -q "cannot use AMQP node localhost:$RMQ_TLS_PORTS" "$T/bad.log" &&
    ! grep -q "connected to" "$T/bad.log"' \
    "a server certificate signed by another CA is refused: $(grep -m1 -o 'cannot use AMQP node[^"]*' "$T/bad.log")"

# A supervised pipeline whose hops are on amqps (the CA from its config).
start_mosquitto || exit 1
mkdir -p "$T/rules"
cat > "$T/rules/relay.json" <<'JSON'
{"sql": "SELECT seq FROM 'tls/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"republish": {"topic": "out/${topic(2)}", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}]}
JSON
cat > "$T/config.json" <<JSON
{"broker": "mqtt://127.0.0.1:$PORT", "rules": "rules", "run_dir": "run", "state_dir": "state",
 "bin_dir": "$BIN", "metrics_listen": false,
 "transport": {"amqp": ["$URL"], "cafile": "tls/ca.pem", "prefix": "tlspipe"}}
JSON
start_supervisor || exit 1
mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -t 'out/#' -v > "$T/out.txt" 2>/dev/null &
PIDS="$PIDS $!"
sub_ready "$T/out.txt" out/probe
seq 1 200 | sed 's/.*/{"seq":&}/' | mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t tls/d1 -l
for _ in $(seq 300); do
	[ "$(grep -c '^out/d1 ' "$T/out.txt")" -ge 200 ] && break
	sleep 0.1
done
got=$(grep '^out/d1 ' "$T/out.txt" | sort -u | wc -l)
ok '[ "$got" -eq 200 ]' "200 messages through a pipeline on amqps ($got arrived)"
ok 'grep -q "hop tlspipe.messages (sender): connected to localhost:$RMQ_TLS_PORTS" "$T/sup.log" &&
    grep -q "hop tlspipe.jobs/republish (receiver): connected to localhost" "$T/sup.log"' \
    "its stages use tlspipe.messages and tlspipe.jobs/republish over TLS"
