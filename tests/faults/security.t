#!/bin/sh
# Permissions and credentials: the pipeline runs against a mosquitto that
# requires TLS and a password, given in the supervisor config (a password
# file); no secret shows in the process list; spools and run directory
# are the owner's alone, so another local user can neither read a spool
# nor connect to a hop.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/lib.sh"
echo "1..7"
PORT=$(free_port)
SECRET="pw-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
mkdir -p "$T/tls"
(
	cd "$T/tls"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=iotrules test CA" -keyout ca.key -out ca.crt
	openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server.key -out server.csr
	printf 'subjectAltName=IP:127.0.0.1\n' > ext.cnf
	openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile ext.cnf -out server.crt
) > "$T/openssl.log" 2>&1 || { echo "# openssl failed"; sed 's/^/# /' "$T/openssl.log"; exit 1; }
# mosquitto started as root runs as the user mosquitto: it must be able
# to read its own files (test keys only), and another user must get as
# far as our run and state directories for the checks below to mean
# anything.
chmod 755 "$T" "$T/tls"
chmod 644 "$T"/tls/*
mosquitto_passwd -c -b "$T/passwd" iot "$SECRET" 2>/dev/null
chmod 644 "$T/passwd"
cat > "$T/mosquitto.conf" <<CONF
listener $PORT 127.0.0.1
cafile $T/tls/ca.crt
certfile $T/tls/server.crt
keyfile $T/tls/server.key
allow_anonymous false
password_file $T/passwd
max_queued_messages 100000
CONF
: > "$T/mosquitto.log"
run_broker "$T/mosquitto.conf" "$T/mosquitto.log"
PIDS="$PIDS $!"
mq() { "$@" -h 127.0.0.1 -p "$PORT" --cafile "$T/tls/ca.crt" -u iot -P "$SECRET"; }
for _ in $(seq 50); do mq mosquitto_pub -t ping -m x 2>/dev/null && break; sleep 0.1; done
fault_rule "$T/rules"
printf '%s\n' "$SECRET" > "$T/broker.pw"
chmod 600 "$T/broker.pw"
cat > "$T/config.json" <<JSON
{"broker": "mqtts://127.0.0.1:$PORT", "cafile": "tls/ca.crt", "username": "iot", "password_file": "broker.pw",
 "rules": "rules", "run_dir": "run", "state_dir": "state", "bin_dir": "$BIN"}
JSON
start_supervisor || exit 1

# Not through mq: a function run with & is a subshell, whose pid is not
# mosquitto_sub's, so the cleanup would leave the subscriber running.
mosquitto_sub -q 1 -t 'out/#' -v -h 127.0.0.1 -p "$PORT" --cafile "$T/tls/ca.crt" -u iot -P "$SECRET" \
    > "$T/out.txt" 2>/dev/null &
PIDS="$PIDS $!"
for _ in $(seq 100); do
	mq mosquitto_pub -q 1 -t out/probe -m probe
	grep -q '^out/probe' "$T/out.txt" && break
	sleep 0.1
done
seq 1 500 | sed 's/.*/{"device":"s1","seq":&}/' | mq mosquitto_pub -q 1 -t sensors/s1/telemetry -l
wait_distinct "$T/out.txt" 500 30
ok '[ "$(distinct "$T/out.txt")" -eq 500 ]' "the pipeline runs against a broker requiring TLS and a password: $(distinct "$T/out.txt") of 500 arrived"
# (the test's own mosquitto_pub/sub are given -P: only the pipeline counts)
pipeline_args() { ps -eo comm=,args= | awk '$1 ~ /^iotrules-/'; }
ok '[ "$(pipeline_args | wc -l)" -ge 5 ] && ! pipeline_args | grep -q -- "$SECRET"' "no pipeline process shows the password on its command line"
ok '! pipeline_args | grep -q -- "--password"' "no stage was given --password"

as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
seg=$(ls "$T"/state/ingest/ingest-1/seg-* | head -1)
ok '[ "$(stat -c %a "$T/state")" = 700 ] && [ "$(stat -c %a "$T/run")" = 700 ] && [ "$(stat -c %a "$seg")" = 600 ]' "state and run directories 0700, spool files 0600 ($(stat -c %a "$T/state") $(stat -c %a "$T/run") $(stat -c %a "$seg"))"
ok '! as_nobody cat "$seg" > /dev/null 2>&1' "another local user cannot read a spool segment"
hop=$(ls "$T"/run/messages/*.ipc | head -1)
ok '! as_nobody /usr/bin/python3 -c "
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
" "$hop" 2> "$T/nobody.err"' "another local user cannot connect to a hop"
sed 's/^/# /' "$T/nobody.err" | tail -1
ok 'python3 -c "
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
" "$hop"' "while the owner can (the check above can fail)"
kill $SUP; wait $SUP 2>/dev/null
