# Shared helpers for the integration tests (sourced).  Each test gets its
# own temporary directory and its own mosquitto on a free 127.0.0.1 port,
# and stops everything it started on exit.
here=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${IOTRULES_BIN:-$here/bin}
T=$(mktemp -d /tmp/iotrules-test.XXXXXX)
PIDS=""
n=0
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	sleep 0.3
	for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
	# A test may define cleanup_hook (e.g. to unmount what it mounted).
	if command -v cleanup_hook > /dev/null 2>&1; then cleanup_hook; fi
	rm -rf "$T"
}
trap cleanup EXIT INT TERM
ok() { n=$((n + 1)); if eval "$1"; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# run_broker CONF LOG: starts mosquitto on CONF in the background, its
# output appended to LOG, its pid in $!.  make valgrind-broker sets
# IOTRULES_VALGRIND_BROKER=PREFIX: every broker of the tests then runs
# under valgrind memcheck (reports in PREFIX.<pid>) with the iotrules
# plugin loaded (a CONF without it journals every publish to a directory
# of the test's own that nothing reads), so that the plugin's memory
# errors inside the broker show up in every test.
run_broker() {
	if [ -n "${IOTRULES_VALGRIND_BROKER:-}" ]; then
		if ! grep -q '^plugin ' "$1"; then
			# One journal per broker started: a test may run two
			# brokers on one config (each journal has one writer).
			_j=$(mktemp -d "$T/journal.XXXXXX")
			{
				grep -q '^user ' "$1" || [ "$(id -u)" -ne 0 ] || echo "user root"
				printf 'plugin %s\nplugin_opt_journal %s\n' "${IOTRULES_PLUGIN:-$here/lib/iotrules-mosquitto.so}" "$_j"
			} >> "$1"
		fi
		valgrind -q --log-file="$IOTRULES_VALGRIND_BROKER.%p" --suppressions="$here/tests/valgrind/mosquitto.supp" \
		    --leak-check=full --show-leak-kinds=definite \
		    --errors-for-leak-kinds=definite mosquitto -c "$1" >> "$2" 2>&1 &
	else
		mosquitto -c "$1" >> "$2" 2>&1 &
	fi
}
start_mosquitto() {
	PORT=$(free_port)
	printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100000\nmax_inflight_messages 1000\n' "$PORT" > "$T/mosquitto.conf"
	: > "$T/mosquitto.log"
	run_broker "$T/mosquitto.conf" "$T/mosquitto.log"
	PIDS="$PIDS $!"
	broker_up "$PORT" "$T/mosquitto.log"
}
# broker_up PORT LOG: waits until the broker on PORT answers; up to 20 s (a
# broker under valgrind, make valgrind-broker, takes seconds to start on a
# loaded machine).  1, with LOG shown, if it never does.
broker_up() {
	for _ in $(seq 200); do
		mosquitto_pub -h 127.0.0.1 -p "$1" -t ping -m x 2>/dev/null && return 0
		sleep 0.1
	done
	echo "# mosquitto on port $1 did not start"; sed 's/^/# /' "$2"
	return 1
}
# start_supervisor [WRAPPER...]: runs the supervisor on $T/config.json
# (stderr in $T/sup.log, pid in $SUP) and waits until the four stages of
# a one-sink pipeline report ready.  WRAPPER (e.g. setpriv ...) runs it.
start_supervisor() {
	"$@" "$BIN/iotrules-supervisor" --config "$T/config.json" 2> "$T/sup.log" &
	SUP=$!
	PIDS="$PIDS $SUP"
	for _ in $(seq 300); do
		[ "$(grep -c '"ready":true' "$T"/run/stats/*.json 2>/dev/null | awk -F: '{s+=$2} END {print s+0}')" -ge 4 ] && return 0
		sleep 0.1
	done
	echo "# the pipeline did not become ready"; sed 's/^/# /' "$T/sup.log"
	return 1
}
# sub_ready FILE TOPIC: a mosquitto_sub writing FILE is subscribed once a
# probe published to TOPIC (which its filter must match) shows up there;
# waits for that (a fixed sleep is too short on a loaded machine).
sub_ready() {
	for _ in $(seq 100); do
		mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t "$2" -m probe 2>/dev/null
		grep -q "^$2 probe" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "# subscriber for $2 never became ready"
	return 1
}
