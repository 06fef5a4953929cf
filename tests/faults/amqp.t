#!/bin/sh
# Issue 13: the hops over RabbitMQ quorum queues, the stages spread over
# three "machines".  A private 3-node cluster on loopback
# (tests/backends/rabbitmq.sh: own epmd, ports and data dirs), and three
# supervisors with disjoint "stages", each on its own run and state
# directory: A runs ingest, B two evaluate instances, C the republish sink
# and the error handler.  A paced QoS 1 stream (one device per fault)
# goes through while, in turn: one evaluate is killed -9; the leader node
# of iotrules.messages is killed -9 and restarted after 5 s, twice; two of
# the three nodes are down for 10 s; the whole cluster is stopped and
# started.  Every message must arrive (0 lost); duplicates are counted per
# fault and must stay within one window of the ingest hop (4 batches of
# 256 records).  AMQP_N (messages per fault, default 2000) and AMQP_RATE
# (per second, default 200) size the stream.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/lib.sh"
. "$here/tests/backends/rabbitmq.sh"
N=${AMQP_N:-2000}
RATE=${AMQP_RATE:-200}
WINDOW=1024
echo "1..15"
cleanup_hook() { rmq_cluster_stop > /dev/null 2>&1; }
t0=$(date +%s)
rmq_cluster_start 3 "$T/rmq" > "$T/rmq.out" 2>&1
rc=$?
ok '[ $rc -eq 0 ]' "a 3-node RabbitMQ cluster runs on loopback ($(($(date +%s) - t0)) s to start)" || true
URLS=$(for p in $RMQ_PORTS; do printf '"amqp://guest:guest@127.0.0.1:%s",' "$p"; done | sed 's/,$//')
ENVURLS=$(echo "$URLS" | tr -d '"' | tr , ' ')

# The hop's own unit test, over the cluster.
IOTRULES_AMQP="$ENVURLS" IOTRULES_AMQP_PREFIX=unit "${HOP_TEST:-$here/build/tests/hop_test}" > "$T/hop.tap" 2> "$T/hop.log"
ok 'grep -q "^1\.\.8" "$T/hop.tap" && [ "$(grep -c "^ok" "$T/hop.tap")" -eq 8 ]' \
    "hop_test passes over AMQP ($(grep -c '^ok' "$T/hop.tap") of 8)"

start_mosquitto || exit 1
fault_rule "$T/rules"
# machine NAME STAGES [INSTANCES]: a config of its own in $T/NAME.
machine() {
	mkdir -p "$T/$1"
	cat > "$T/$1/config.json" <<JSON
{"broker": "mqtt://127.0.0.1:$PORT", "rules": "../rules", "run_dir": "run", "state_dir": "state",
 "bin_dir": "$BIN", "metrics_listen": false, "transport": {"amqp": [$URLS]},
 "stages": $2, "instances": {${3:-}}}
JSON
	"$BIN/iotrules-supervisor" --config "$T/$1/config.json" 2> "$T/$1/sup.log" &
	PIDS="$PIDS $!"
}
# ready NAME COUNT: COUNT stages of machine NAME report ready (30 s).
ready() {
	for _ in $(seq 300); do
		[ "$(cat "$T/$1"/run/stats/*.json 2>/dev/null | grep -c '"ready":true')" -ge "$2" ] &&
			return 0
		sleep 0.1
	done
	echo "# machine $1 did not become ready"; sed 's/^/# /' "$T/$1/sup.log"
	return 1
}
machine a '["ingest"]'
machine b '["evaluate"]' '"evaluate": 2'
machine c '["sinks", "error-handler"]'
ready a 1 && ready b 2 && ready c 2
rc=$?
ok '[ $rc -eq 0 ]' "three supervisors (ingest | 2 x evaluate | sink + error handler) ready"
mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -t 'out/#' -v > "$T/out.txt" 2>/dev/null &
PIDS="$PIDS $!"
sub_ready "$T/out.txt" out/probe
# The arrival times (for stalls): "<unix time> <topic>".
mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -t 'out/#' -F '%U %t' > "$T/times.txt" 2>/dev/null &
PIDS="$PIDS $!"
for _ in $(seq 100); do
	mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t out/probe -m probe 2>/dev/null
	grep -q " out/probe$" "$T/times.txt" && break
	sleep 0.1
done
ok 'grep -q "hop iotrules.messages (sender): connected" "$T/a/sup.log" &&
    grep -q "hop iotrules.jobs/republish (receiver): connected" "$T/c/sup.log"' \
    "the stages use the quorum queues iotrules.messages and iotrules.jobs/republish"
ok 'grep -q " as iotrules-$(hostname)-ingest-1 " "$T/mosquitto.log"' \
    "ingest's MQTT client id names its host: iotrules-$(hostname)-ingest-1"

# check DEVICE WHAT [MAXSTALL]: every message of DEVICE arrived;
# duplicates within a window; with MAXSTALL, no gap between two arrivals
# of its results longer than that many seconds (the stream is steady, so
# a gap is a stall of the pipeline).
check() {
	wait_distinct_dev "$1" 180
	got=$(grep "^out/$1 " "$T/out.txt" | sort -u | wc -l)
	all=$(grep -c "^out/$1 " "$T/out.txt")
	gap=$(awk -v t="out/$1" '$2 == t { if (p) { d = $1 - p; if (d > m) m = d } p = $1 } END { printf "%.1f", m }' "$T/times.txt")
	echo "# $2: sent $N, distinct $got, duplicates $((all - got)), longest stall $gap s, $(($(date +%s) - f0)) s"
	ok '[ "$got" -eq "$N" ] && [ $((all - got)) -le $WINDOW ] && awk -v g="$gap" -v m="${3:-1e9}" "BEGIN { exit !(g <= m) }"' \
	    "$2: 0 lost ($got of $N, $(missing "$T/out.txt" "$1" "$N") missing), duplicates $((all - got)) (<= $WINDOW), longest stall $gap s${3:+ (<= $3)}"
}
wait_distinct_dev() {
	for _ in $(seq $(($2 * 10))); do
		[ "$(grep "^out/$1 " "$T/out.txt" | sort -u | wc -l)" -ge "$N" ] && return 0
		sleep 0.1
	done
	return 1
}
lead() { for i in 1 2 3; do l=$(rmq_queue_leader "$i" iotrules.messages) && [ -n "$l" ] && { rmq_node_index "$l"; return; }; done; }

# 1. kill -9 of one evaluate mid-stream.
f0=$(date +%s)
stream "$N" "$RATE" e1
sleep 2
B() { "$BIN/iotrules" --config "$T/b/config.json" "$@"; }
pid=$(B status | awk '$1 == "evaluate" && $3 > 0 { print $3; exit }')
kill -9 "$pid"
wait_streams
check e1 "evaluate (pid $pid) killed -9" 15

# 2, 3. the queue leader killed -9, restarted 5 s later; twice.
for k in 1 2; do
	f0=$(date +%s)
	L=$(lead)
	stream "$N" "$RATE" l$k
	sleep 2
	rmq_node_kill "$L"
	sleep 5
	rmq_node_start "$L" > "$T/start$k.out" 2>&1
	rc=$?
	ok '[ $rc -eq 0 ]' "leader rabbit$L of iotrules.messages killed -9 and restarted ($(($(date +%s) - f0)) s)"
	wait_streams
	check l$k "leader kill $k" 15
done

# 4. two of three nodes down for 10 s.
f0=$(date +%s)
stream "$N" "$RATE" m1
sleep 2
rmq_node_kill 2
rmq_node_kill 3
sleep 10
rmq_nodes_start 2 3 > "$T/start23.out" 2>&1
rc=$?
ok '[ $rc -eq 0 ]' "nodes 2 and 3 down for 10 s, back ($(($(date +%s) - f0)) s)"
wait_streams
check m1 "two nodes down"

# 5. the whole cluster stopped and started.
f0=$(date +%s)
stream "$N" "$RATE" w1
sleep 2
stops=""
for i in 1 2 3; do
	rmq_ctl "$i" -q stop > /dev/null 2>&1 &
	stops="$stops $!"
done
for p in $stops; do wait "$p"; done
rmq_nodes_start 1 2 3 > "$T/start123.out" 2>&1
rc=$?
ok '[ $rc -eq 0 ]' "whole cluster stopped and started ($(($(date +%s) - f0)) s)"
wait_streams
check w1 "whole cluster restart"

ok '! grep -q "malformed record" "$T"/*/sup.log' "no stage reported malformed records"
# What the stages' duplicate dropping (common/seen) caught on the way.
echo "# dropped as duplicates: $(grep -ho '[0-9]* duplicate message(s) dropped' "$T"/*/sup.log | awk '{ s += $1 } END { print s + 0 }') message(s) by evaluate, $(grep -ho '[0-9]* duplicate record(s) dropped' "$T"/*/sup.log | awk '{ s += $1 } END { print s + 0 }') job(s) by the sink"
