#!/bin/sh
# tests/backends/rmq_smoke.sh: standalone smoke run of tests/backends/rabbitmq.sh
# (issue 13 groundwork; not a TAP test, not run by make or CI).
#
# Starts a 3-node RabbitMQ cluster on loopback in a temp dir, builds
# tests/backends/rmqsmoke.c (rabbitmq-c), publishes MSGS messages of RECORDS
# records to a quorum queue with publisher confirms while consuming them
# with manual acks, kills the queue leader's node with -9 once mid-stream,
# restarts it, and checks that every confirmed message was consumed.
#
#   sh tests/backends/rmq_smoke.sh
#   RMQ_SMOKE_MSGS=10000 RMQ_SMOKE_RECORDS=100 RMQ_SMOKE_KILL_AT=3000 RMQ_SMOKE_DRAIN_IDLE=5 \
#     RMQ_SMOKE_KEEP=1 sh tests/backends/rmq_smoke.sh   # KILL_AT=0: baseline without a kill
#
# Needs: apt-get install rabbitmq-server librabbitmq-dev (and cc).
# Exit status: 0 nothing lost, 1 something lost or a step failed.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
MSGS=${RMQ_SMOKE_MSGS:-10000}
RECORDS=${RMQ_SMOKE_RECORDS:-100}
KILL_AT=${RMQ_SMOKE_KILL_AT:-$((MSGS * 3 / 10))}
# shellcheck source=tests/backends/rabbitmq.sh
. "$HERE/rabbitmq.sh"

W=$(mktemp -d /tmp/iotrules-rmq-smoke.XXXXXX)
CLIENT_PID=""
# shellcheck disable=SC2317
cleanup() {
	[ -n "$CLIENT_PID" ] && kill "$CLIENT_PID" 2> /dev/null
	rmq_cluster_stop
	if [ -n "${RMQ_SMOKE_KEEP:-}" ]; then
		echo "# kept $W"
	else
		rm -rf "$W"
	fi
}
trap cleanup EXIT
trap 'exit 130' HUP INT TERM

ts() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

echo "# rabbitmq-server $(dpkg-query -W -f '${Version}' rabbitmq-server 2> /dev/null)," \
	"erlang-base $(dpkg-query -W -f '${Version}' erlang-base 2> /dev/null)," \
	"librabbitmq-dev $(dpkg-query -W -f '${Version}' librabbitmq-dev 2> /dev/null)"

cc -O2 -Wall -pthread -o "$W/rmqsmoke" "$ROOT/tests/backends/rmqsmoke.c" -lrabbitmq ||
	{ echo "not ok: rmqsmoke did not build (apt-get install librabbitmq-dev)"; exit 1; }

t0=$(ts)
rmq_cluster_start 3 "$W/cluster" || { echo "not ok: the cluster did not start"; exit 1; }
t1=$(ts)
echo "# 3-node cluster up in $(secs "$t0" "$t1") s: ports $RMQ_PORTS, epmd $RMQ_EPMD_PORT"

# declare first (on node 1, where the leader then is), so that the leader is
# known before the stream starts (rabbitmqctl takes about a second)
"$W/rmqsmoke" -D -P "$RMQ_PORTS" -q smoke 2> "$W/declare.err" ||
	{ echo "not ok: queue.declare failed"; cat "$W/declare.err"; exit 1; }
leader=$(rmq_queue_leader 1 smoke)
li=$(rmq_node_index "$leader")
[ -n "$li" ] || { echo "not ok: no leader for queue smoke"; exit 1; }
echo "# quorum queue smoke declared, leader $leader"

"$W/rmqsmoke" -P "$RMQ_PORTS" -q smoke -n "$MSGS" -r "$RECORDS" -s "$W/confirmed" -t 600 -i "${RMQ_SMOKE_DRAIN_IDLE:-5}" \
	> "$W/client.out" 2> "$W/client.err" &
CLIENT_PID=$!

tk=""
# mid-stream: wait for KILL_AT confirms (RMQ_SMOKE_KILL_AT=0: no kill, a baseline)
while [ "$KILL_AT" -gt 0 ]; do
	n=$(cat "$W/confirmed" 2> /dev/null || echo 0)
	[ "${n:-0}" -ge "$KILL_AT" ] && break
	kill -0 "$CLIENT_PID" 2> /dev/null || break
	sleep 0.05
done
[ "$KILL_AT" -gt 0 ] && tk=$(ts) && rmq_node_kill "$li" && {
	echo "# killed the leader $leader (kill -9) after $(cat "$W/confirmed") confirms"
	others=""
	for i in 1 2 3; do [ "$i" != "$li" ] && others="$others $i"; done
	# shellcheck disable=SC2086
	set -- $others
	newleader=""
	while [ -z "$newleader" ] || [ "$newleader" = "$leader" ]; do
		newleader=$(rmq_queue_leader "$1" smoke)
		[ "$(secs "$tk" "$(ts)" | cut -d. -f1)" -ge 60 ] && break
		sleep 0.2
	done
	te=$(ts)
	echo "# new leader ${newleader:-none} seen by rabbitmqctl $(secs "$tk" "$te") s after the kill"
	rmq_node_start "$li" || { echo "not ok: $leader did not come back"; exit 1; }
	tr=$(ts)
	echo "# $leader restarted and running in the cluster $(secs "$tk" "$tr") s after the kill" \
		"($(secs "$te" "$tr") s for the restart)"
}

wait "$CLIENT_PID"
rc=$?
CLIENT_PID=""
sed 's/^/# client: /' "$W/client.err"
cat "$W/client.out"
[ -n "$tk" ] && awk -v tk="$tk" '
	/longest gap/ { e = $NF; sub(/\)$/, "", e); s = $(NF - 4)
		if (e + 0 > tk + 0) printf "# %s: longest stall %.2f s, ended %.2f s after the kill\n", $1, s, e - tk }
	/first confirm after it/ { e = $(NF - 3); printf "# publisher: first confirm after the reconnect %.2f s after the kill\n", e - tk }
' "$W/client.out"
echo "# queue after the run: $(rmq_ctl 1 -q list_queues --no-table-headers name type leader members messages_ready messages_unacknowledged 2> /dev/null | tr '\t\n' '  ')"
if [ "$rc" -eq 0 ]; then
	echo "ok: no confirmed message lost"
else
	echo "not ok: rmqsmoke exited $rc"
fi
exit "$rc"
