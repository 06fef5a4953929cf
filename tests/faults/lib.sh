# Shared helpers of the fault tests (sourced after tests/integration/lib.sh):
# a paced QoS 1 stream, counting what arrived, and the one rule they use.

# fault_rule DIR [ERRACTION_JSON]: sensors/+/telemetry → out/<device>, QoS 1.
fault_rule() {
	mkdir -p "$1"
	ea=""
	[ -n "${2:-}" ] && ea=", \"errorAction\": $2"
	cat > "$1/relay.json" <<JSON
{"sql": "SELECT device, seq FROM 'sensors/+/telemetry'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"republish": {"topic": "out/\${topic(2)}", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}]$ea}
JSON
}

# stream N RATE DEVICE [PORT]: publishes N QoS 1 messages {"device","seq"}
# at RATE per second to sensors/DEVICE/telemetry, in the background
# (pid appended to $STREAMS).  Paced, so faults land mid-stream.
STREAMS=""
stream() {
	python3 -c '
import sys, time
n, rate, dev = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
t0 = time.time()
for i in range(1, n + 1):
    sys.stdout.write("{\"device\":\"%s\",\"temp\":25,\"seq\":%d}\n" % (dev, i))
    if i % 20 == 0:
        sys.stdout.flush()
        d = t0 + i / rate - time.time()
        if d > 0:
            time.sleep(d)
sys.stdout.flush()
' "$1" "$2" "$3" | mosquitto_pub -h 127.0.0.1 -p "${4:-$PORT}" -q 1 -t "sensors/$3/telemetry" -l &
	STREAMS="$STREAMS $!"
	PIDS="$PIDS $!"
}
wait_streams() { for p in $STREAMS; do wait "$p"; done; STREAMS=""; }

# distinct FILE: distinct (device, seq) pairs among the out/ lines of FILE;
# total FILE: all of them (the difference is duplicates).
distinct() { grep '^out/' "$1" | grep -v '^out/probe ' | sort -u | wc -l; }
total() { grep '^out/' "$1" | grep -v '^out/probe ' | wc -l; }
# missing FILE DEVICE N: how many of seq 1..N of DEVICE never arrived.
missing() {
	grep "^out/$2 " "$1" | sed 's/.*"seq":\([0-9]*\).*/\1/' | sort -un |
	    awk -v n="$3" '{ seen[$1] = 1 } END { m = 0; for (i = 1; i <= n; i++) if (!(i in seen)) m++; print m }'
}

# wait_distinct FILE N SECONDS: waits until N distinct outputs arrived.
wait_distinct() {
	for _ in $(seq $(($3 * 10))); do
		[ "$(distinct "$1")" -ge "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

# ctl ARGS: the control command on $T/config.json.
ctl() { "$BIN/iotrules" --config "$T/config.json" "$@"; }
# stage_pid STAGE: the pid of STAGE's first instance.
stage_pid() { ctl status | awk -v s="$1" '$1 == s && $3 > 0 { print $3; exit }'; }
# wait_pid_change STAGE OLDPID: waits (10 s) until STAGE runs under a new pid.
wait_pid_change() {
	for _ in $(seq 100); do
		p=$(stage_pid "$1")
		[ -n "$p" ] && [ "$p" != "$2" ] && return 0
		sleep 0.1
	done
	return 1
}
