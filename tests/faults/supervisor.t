#!/bin/sh
# The supervisor under faults, against a real mosquitto with QoS 1 streams:
# one supervisor per run_dir; kill -9 of the supervisor mid-stream (its
# children die with it, a new one takes over, nothing lost); a rolling
# restart of ingest mid-stream (nothing lost); leftover stage processes of
# an earlier supervisor stopped before anything starts; SIGTERM; config
# validation; credentials never on a command line.
. "$(dirname "$0")/../integration/lib.sh"
echo "1..16"
start_mosquitto || exit 1
mkdir -p "$T/rules"
cat > "$T/rules/relay.json" <<'JSON'
{"sql": "SELECT device, seq FROM 'sensors/+/telemetry'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"republish": {"topic": "out/${topic(2)}", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}]}
JSON
cat > "$T/config.json" <<JSON
{"broker": "mqtt://127.0.0.1:$PORT", "rules": "rules", "run_dir": "run", "state_dir": "state",
 "bin_dir": "$BIN"}
JSON
RUN="$T/run"

# sup CONFIG LOG: starts a supervisor in the background ($SUP).
sup() {
	"$BIN/iotrules-supervisor" --config "$1" 2>> "$2" &
	SUP=$!
	PIDS="$PIDS $SUP"
}
ctl() { "$BIN/iotrules" --config "${CFG:-$T/config.json}" "$@"; }
# ready [CONFIG]: waits (30 s) until the supervisor answers and each of the
# four stages runs under the pid status shows and reports ready with it.
ready() {
	for _ in $(seq 300); do
		st=$(CFG=${1:-$T/config.json} ctl status 2>/dev/null)
		good=0
		for s in ingest evaluate sink-republish error-handler; do
			set -- $(echo "$st" | awk -v s=$s '$1 == s && $3 > 0 { print $2, $3; exit }')
			[ $# -eq 2 ] && grep -q "\"pid\":$2[,}]" "$RUN/stats/$1.json" 2>/dev/null &&
			    grep -q '"ready":true' "$RUN/stats/$1.json" && good=$((good + 1))
		done
		[ $good -eq 4 ] && return 0
		sleep 0.1
	done
	echo "# the pipeline did not become ready"
	return 1
}
# stage_pids DIR: live iotrules-* processes with --run-dir DIR (one pgrep:
# cheap enough to poll on a loaded machine).
stage_pids() { pgrep -f "/iotrules-[a-z-]+ --run-dir $1( |\$)"; }
# gone PID: the process is gone or a zombie.
gone() {
	[ ! -e "/proc/$1/stat" ] && return 0
	[ "$(sed 's/.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null)" = Z ]
}
# stream N RATE DEVICE: N QoS 1 messages {"device","seq"} at RATE/s to
# sensors/DEVICE/telemetry, paced, in the background ($PUB).
stream() {
	python3 -c '
import sys, time
n, rate, dev = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
t0 = time.time()
for i in range(1, n + 1):
    sys.stdout.write("{\"device\":\"%s\",\"seq\":%d}\n" % (dev, i))
    if i % 20 == 0:
        sys.stdout.flush()
        d = t0 + i / rate - time.time()
        if d > 0:
            time.sleep(d)
' "$1" "$2" "$3" | mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t "sensors/$3/telemetry" -l &
	PUB=$!
	PIDS="$PIDS $PUB"
}
distinct() { grep "^out/$1 " "$T/out.txt" | sort -u | wc -l; }
total() { grep -c "^out/$1 " "$T/out.txt"; }
# wait_count DEVICE N SECONDS: until N distinct outputs of DEVICE arrived.
wait_count() {
	for _ in $(seq $(($3 * 10))); do
		[ "$(distinct "$1")" -ge "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

sup "$T/config.json" "$T/sup1.log"
SUP1=$SUP
ready || { sed 's/^/# /' "$T/sup1.log"; exit 1; }
mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -t 'out/#' -v > "$T/out.txt" 2>/dev/null &
PIDS="$PIDS $!"
sub_ready "$T/out.txt" out/probe

# --- 1. one supervisor per run_dir -------------------------------------
timeout 30 "$BIN/iotrules-supervisor" --config "$T/config.json" 2> "$T/second.log"
rc=$?
sed 's/^/# second: /' "$T/second.log"
ok '[ $rc -eq 100 ] && grep -q "\"level\":\"error\".*another supervisor (pid $SUP1) runs on $RUN\"" "$T/second.log"' \
    "a second supervisor on the same run_dir exits 100 naming the first's pid (exit $rc)"
ok '[ "$(stat -c %a "$RUN/supervisor.lock")" = 600 ] && [ "$(cat "$RUN/supervisor.lock")" = "$SUP1" ] &&
    [ "$(stat -c %a "$RUN")" = 700 ] && [ "$(stat -c %a "$T/state")" = 700 ]' \
    "supervisor.lock is 0600 and holds the pid; run_dir and state_dir are 0700"
ok 'ctl status | grep -q "^ingest " && [ -S "$RUN/control.sock" ] && kill -0 $SUP1' \
    "the first supervisor runs on, its control socket untouched"

# --- 2. kill -9 of the supervisor mid-stream -----------------------------
N=10000
stream $N 1000 k
wait_count k 1500 60
children=$(stage_pids "$RUN" | tr '\n' ' ')
echo "# supervisor $SUP1, children: $children"
t0=$(date +%s%N)
kill -9 $SUP1
wait $SUP1 2>/dev/null
left="?"
last=""
for _ in $(seq 150); do
	left=$(stage_pids "$RUN" | tr '\n' ' ')
	[ -z "$left" ] && break
	[ "$left" != "$last" ] && echo "# $((($(date +%s%N) - t0) / 1000000)) ms after the kill, still there:" \
	    "$(pgrep -af "/iotrules-[a-z-]+ --run-dir $RUN( |\$)" | sed 's/.*--name \([^ ]*\).*/\1/' | tr '\n' ' ')"
	last=$left
	sleep 0.1
done
ms=$((($(date +%s%N) - t0) / 1000000))
# They get SIGTERM at once (PR_SET_PDEATHSIG) and stop within 4.5 s.
ok '[ -n "$children" ] && [ -z "$left" ] && [ $ms -le 6000 ]' \
    "after kill -9 of the supervisor its children are gone in ${ms} ms (left: ${left:-none})"
sup "$T/config.json" "$T/sup2.log"
ok 'ready' "a new supervisor starts on the same config"
wait $PUB
wait_count k $N 120
d=$(distinct k); t=$(total k)
ok '[ "$d" -eq $N ]' "every message of the stream arrived across the kill -9 (distinct: $d of $N, total: $t)"
echo "# kill -9 of the supervisor: duplicates $((t - d)) of $t"

# --- 3. iotrules restart ingest mid-stream ------------------------------
# With a backlog queued for ingest's session when it restarts (ingest
# paused for a while first): a replacement under a new client id would
# strand that backlog in the old session.
old=$(ctl status | awk '$1 == "ingest" { print $3; exit }')
stream $N 1000 r
wait_count r 1500 60
kill -STOP $old
sleep 2
kill -CONT $old
ctl restart ingest > "$T/restart.txt" 2>&1
rrc=$?
sed 's/^/# restart: /' "$T/restart.txt"
new=$(ctl status | awk '$1 == "ingest" { print $2, $3; exit }')
ok '[ $rrc -eq 0 ] && grep -q "^OK ingest-1 restarted (stop, then start: the broker session holds messages meanwhile)$" "$T/restart.txt" &&
    [ "$new" != "ingest-1 $old" ] && [ "${new% *}" = ingest-1 ]' \
    "iotrules restart ingest stops ingest-1 and starts it again under its name (pid $old -> ${new#* })"
wait $PUB
wait_count r $N 120
d=$(distinct r); t=$(total r)
ok '[ "$d" -eq $N ]' "every message of the stream arrived across the ingest restart (distinct: $d of $N, total: $t)"
echo "# restart of ingest: duplicates $((t - d)) of $t"

# --- 4. SIGTERM ----------------------------------------------------------
t0=$(date +%s%N)
kill $SUP
wait $SUP
src=$?
ms=$((($(date +%s%N) - t0) / 1000000))
left=$(stage_pids "$RUN" | tr '\n' ' ')
ok '[ $src -eq 0 ] && [ $ms -le 5500 ] && [ -z "$left" ] && [ ! -e "$RUN/control.sock" ]' \
    "SIGTERM: exit $src in ${ms} ms, no stage left (${left:-none}), control.sock removed"

# --- 5. leftovers of an earlier supervisor ------------------------------
# As if an earlier supervisor's children had survived it: an evaluate and
# a republish sink started by hand on the run_dir, the sink frozen so
# that it cannot act on SIGTERM.
"$BIN/iotrules-evaluate" --run-dir "$RUN" --name evaluate-1 --rules "$T/rules" 2> "$T/left1.log" &
L1=$!
"$BIN/iotrules-sink-republish" --run-dir "$RUN" --state-dir "$T/state" --name sink-republish-1 \
    --broker "mqtt://127.0.0.1:$PORT" 2> "$T/left2.log" &
L2=$!
PIDS="$PIDS $L1 $L2"
for _ in $(seq 100); do
	grep -q "\"pid\":$L1[,}]" "$RUN/stats/evaluate-1.json" 2>/dev/null &&
	    grep -q "\"pid\":$L2[,}]" "$RUN/stats/sink-republish-1.json" 2>/dev/null && break
	sleep 0.1
done
kill -STOP $L2
sup "$T/config.json" "$T/sup3.log"
ready
sed 's/^/# sup3: /' "$T/sup3.log" | grep -i leftover
first_start=$(grep -n '"msg":"started ' "$T/sup3.log" | head -1 | cut -d: -f1)
l1_line=$(grep -n "leftover evaluate-1 (pid $L1) stopped" "$T/sup3.log" | cut -d: -f1)
l2_line=$(grep -n "leftover sink-republish-1 (pid $L2) did not stop in 6000 ms; killing it" "$T/sup3.log" | cut -d: -f1)
ok 'grep -q "stopping leftover evaluate-1 (pid $L1) of an earlier supervisor" "$T/sup3.log" && [ -n "$l1_line" ] &&
    [ -n "$first_start" ] && [ "$l1_line" -lt "$first_start" ] && gone $L1' \
    "a leftover evaluate is stopped (SIGTERM) before the new supervisor starts anything"
ok '[ -n "$l2_line" ] && [ "$l2_line" -lt "$first_start" ] && gone $L2' \
    "a leftover sink that does not answer SIGTERM is killed after 6 s, before anything starts"
# (Should either have survived, it must not hang the test: a shell's
# wait on a stopped child misbehaves.)
kill -9 $L1 $L2 2>/dev/null
wait $L1 $L2 2>/dev/null
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t sensors/z/telemetry -m '{"device":"z","seq":1}'
wait_count z 1 30
ok '[ "$(distinct z)" -eq 1 ]' "the new supervisor's pipeline carries a message end to end"
kill $SUP
wait $SUP

# --- 6. configuration errors ------------------------------------------
bad() {
	printf '%s\n' "$1" > "$T/bad.json"
	timeout 10 "$BIN/iotrules-supervisor" --config "$T/bad.json" 2> "$T/bad.log"
	brc=$?
	if [ $brc -eq 100 ] && grep -q "$2" "$T/bad.log"; then return 0; fi
	echo "# $1: exit $brc, $(cat "$T/bad.log")"
	return 1
}
long=$T/$(printf '%0100d' 0)
ok 'bad "{\"retry_s\": \"10\"}" "\"retry_s\\\\\" must be" &&
    bad "{\"session_expiry_s\": -1}" "session_expiry_s" &&
    bad "{\"spool_max_bytes\": 0}" "spool_max_bytes" &&
    bad "{\"username\": 5}" "username" &&
    bad "{\"password\": \"a\", \"password_file\": \"p\"}" "\"password\\\\\" and \\\\\"password_file\\\\\" are exclusive" &&
    bad "{\"run_dir\": \"$long\"}" "run_dir .* is too long"' \
    "bad keys exit 100 naming the key (wrong type, range, password with password_file, run_dir too long)"

# --- 7. credentials and stage options -----------------------------------
cat > "$T/cred.json" <<JSON
{"broker": "mqtt://127.0.0.1:$PORT", "rules": "rules", "run_dir": "run2", "state_dir": "state2",
 "bin_dir": "$BIN", "username": "u1", "password": "s3cr3t-XYZ", "retry_s": 77,
 "session_expiry_s": 555, "spool_max_bytes": 123456789}
JSON
RUN="$T/run2"
sup "$T/cred.json" "$T/sup4.log"
ready "$T/cred.json"
pid_of() { CFG=$T/cred.json ctl status | awk -v s="$1" '$1 == s { print $3; exit }'; }
args() { tr '\0' ' ' < "/proc/$(pid_of "$1")/cmdline"; }
envs() { tr '\0' '\n' < "/proc/$(pid_of "$1")/environ"; }
for s in ingest evaluate sink-republish error-handler; do echo "# $s: $(args $s)"; done
secret_in_argv=$(grep -l 's3cr3t-[X]YZ' /proc/[0-9]*/cmdline 2>/dev/null | wc -l)
ok '[ "$secret_in_argv" -eq 0 ] &&
    envs ingest | grep -qx "IOTRULES_MQTT_PASSWORD=s3cr3t-XYZ" && envs ingest | grep -qx "IOTRULES_MQTT_USERNAME=u1" &&
    envs sink-republish | grep -qx "IOTRULES_MQTT_PASSWORD=s3cr3t-XYZ" &&
    ! envs evaluate | grep -q "^IOTRULES_MQTT_" && ! envs error-handler | grep -q "^IOTRULES_MQTT_"' \
    "the broker password is on no command line; only ingest and sink-republish get it, in the environment"
ok 'args ingest | grep -q -- "--session-expiry-s 555 " && args ingest | grep -q -- "--spool-max-bytes 123456789 " &&
    args sink-republish | grep -q -- "--retry-s 77 " && args sink-republish | grep -q -- "--spool-max-bytes 123456789 " &&
    args error-handler | grep -q -- "--spool-max-bytes 123456789 " && ! args error-handler | grep -q -- "--retry-s" &&
    ! args evaluate | grep -q -- "--spool-max-bytes\|--retry-s\|--session-expiry-s"' \
    "retry_s, session_expiry_s and spool_max_bytes reach exactly the stages they are for"
# Another supervisor's socket now sits at control.sock (as if it had
# replaced ours): SIGTERM must leave it alone.
rm -f "$RUN/control.sock"
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$RUN/control.sock"
t0=$(date +%s%N)
kill $SUP
wait $SUP
src=$?
ms=$((($(date +%s%N) - t0) / 1000000))
ok '[ $src -eq 0 ] && [ $ms -le 5500 ] && [ -S "$RUN/control.sock" ] && [ -z "$(stage_pids "$RUN")" ]' \
    "SIGTERM leaves a control.sock it did not bind in place (exit $src in ${ms} ms)"
