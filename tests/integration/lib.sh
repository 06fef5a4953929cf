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
	rm -rf "$T"
}
trap cleanup EXIT INT TERM
ok() { n=$((n + 1)); if eval "$1"; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start_mosquitto() {
	PORT=$(free_port)
	printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100000\nmax_inflight_messages 1000\n' "$PORT" > "$T/mosquitto.conf"
	mosquitto -c "$T/mosquitto.conf" > "$T/mosquitto.log" 2>&1 &
	PIDS="$PIDS $!"
	for _ in $(seq 50); do
		mosquitto_pub -h 127.0.0.1 -p "$PORT" -t ping -m x 2>/dev/null && return 0
		sleep 0.1
	done
	echo "# mosquitto did not start"; cat "$T/mosquitto.log" | sed 's/^/# /'
	return 1
}
