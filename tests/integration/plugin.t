#!/bin/sh
# Plugin mode: a mosquitto with lib/iotrules-mosquitto.so journals every
# PUBLISH and the supervised ingest reads the journal (ingest_journal).
# Rules see the publisher's client id, username and address (IPv4, IPv6);
# 2,000 QoS 1 messages arrive once each; kill -9 of the broker under
# QoS 1 load loses nothing that was acknowledged.
#
# Two brokers: the one with the plugin (what devices publish to, killed
# here) and the plain one of lib.sh that the republish sink writes to and
# the test reads from, so that the outputs outlive the kill.
. "$(dirname "$0")/lib.sh"
echo "1..11"
start_mosquitto || exit 1
. "$(dirname "$0")/pluginlib.sh"
PPORT=$(free_port)
PPORT6=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1",0)); print(s.getsockname()[1])')
mkdir -p "$T/journal"
plugin_conf "listener $PPORT 127.0.0.1" "listener $PPORT6 ::1"
start_plugin_broker "$PPORT" || exit 1

mkdir -p "$T/rules"
cat > "$T/rules/ctx.json" <<'JSON'
{"sql": "SELECT clientid() AS c, principal() AS p, sourceip() AS s FROM 't/#'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"republish": {"topic": "ctx/${topic(2)}", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}]}
JSON
cat > "$T/rules/seq.json" <<'JSON'
{"sql": "SELECT seq FROM 'q/#'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"republish": {"topic": "out/${topic(2)}", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}]}
JSON
cat > "$T/config.json" <<JSON
{"broker": "mqtt://127.0.0.1:$PORT", "rules": "rules", "run_dir": "run", "state_dir": "state",
 "bin_dir": "$BIN", "ingest_journal": "journal"}
JSON
start_supervisor || exit 1
mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -t 'ctx/#' -t 'out/#' -v > "$T/out.txt" 2>/dev/null &
PIDS="$PIDS $!"
sub_ready "$T/out.txt" out/probe
ok 'grep -q "iotrules: journaling every publish to $T/journal" "$T/plugin.log"' "the broker loaded the plugin"

# --- (a) clientid(), principal(), sourceip() over IPv4 and IPv6 ---
mosquitto_pub -h 127.0.0.1 -p "$PPORT" -q 1 -i dev-v4 -u alice -t t/v4 -m '{}'
mosquitto_pub -h ::1 -p "$PPORT6" -q 1 -i dev-v6 -u bob -t t/v6 -m '{}'
mosquitto_pub -h 127.0.0.1 -p "$PPORT" -q 1 -i dev-anon -t t/anon -m '{}'
for _ in $(seq 100); do [ "$(grep -c '^ctx/' "$T/out.txt")" -ge 3 ] && break; sleep 0.1; done
sed -n 's/^ctx/# ctx/p' "$T/out.txt"
ok 'grep -qx "ctx/v4 {\"c\":\"dev-v4\",\"p\":\"alice\",\"s\":\"127.0.0.1\"}" "$T/out.txt"' "IPv4: client id, username and address of the publisher"
ok 'grep -qx "ctx/v6 {\"c\":\"dev-v6\",\"p\":\"bob\",\"s\":\"::1\"}" "$T/out.txt"' "IPv6: client id, username and address of the publisher"
ok 'grep -qx "ctx/anon {\"c\":\"dev-anon\",\"s\":\"127.0.0.1\"}" "$T/out.txt"' "no username: principal() is Undefined (left out of the result)"

# --- (b) 2,000 QoS 1 messages through the plugin ---
seq 1 2000 | awk '{ printf "{\"seq\":%d}\n", $1 }' > "$T/b.txt"
mosquitto_pub -h 127.0.0.1 -p "$PPORT" -q 1 -t q/b -l < "$T/b.txt"
for _ in $(seq 200); do [ "$(grep -c '^out/b ' "$T/out.txt")" -ge 2000 ] && break; sleep 0.1; done
sleep 0.5
b_all=$(grep -c '^out/b ' "$T/out.txt")
b_uniq=$(grep '^out/b ' "$T/out.txt" | sort -u | wc -l)
b_want=$(seq 1 2000 | awk '{ printf "out/b {\"seq\":%d}\n", $1 }' | sort)
ok '[ "$(grep "^out/b " "$T/out.txt" | sort -u)" = "$b_want" ]' "2,000 QoS 1 messages: every seq arrived ($b_uniq distinct, $b_all in all)"
ok '[ "$b_all" -eq 2000 ]' "... each once without a fault ($b_all)"

# --- (d) only the topics of the rules are journaled ---
in_count() { sed -n 's/.*"in":\([0-9]*\).*/\1/p' "$T"/run/stats/ingest-*.json | head -1; }
ok 'grep -q "iotrules: journaling the topics of 2 rule filter(s)" "$T/plugin.log"' "the plugin took the rules' two topic filters from ingest"
before=$(in_count)
seq 1 50 | mosquitto_pub -h 127.0.0.1 -p "$PPORT" -q 1 -t z/none -l
mosquitto_pub -h 127.0.0.1 -p "$PPORT" -q 1 -t q/d -m '{"seq":1}'
for _ in $(seq 100); do grep -q '^out/d ' "$T/out.txt" && break; sleep 0.1; done
sleep 0.5
after=$(in_count)
ok '[ -n "$before" ] && [ "$((after - before))" -eq 1 ]' "50 messages on a topic no rule reads are not journaled: ingest took $((after - before)) (the q/d one)"

# --- (c) kill -9 of the broker under QoS 1 load ---
"$here/build/tests/ackpub" 127.0.0.1 "$PPORT" q/c 3000 50 > "$T/acked.txt" 2> "$T/ackpub.log" &
AP=$!
PIDS="$PIDS $AP"
for _ in $(seq 100); do [ "$(wc -l < "$T/acked.txt")" -ge 1000 ] && break; sleep 0.05; done
kill -9 "$PB"
wait "$PB" 2>/dev/null
killed_at=$(wc -l < "$T/acked.txt")
start_plugin_broker "$PPORT"
wait "$AP"
ap_rc=$?
sed 's/^/# /' "$T/ackpub.log"
acked_delivered out/c
c_all=$all
c_uniq=$got
ok '[ "$ap_rc" -eq 0 ] && [ "$killed_at" -gt 0 ] && [ "$killed_at" -lt 3000 ]' "the broker was killed -9 mid-stream ($killed_at of 3000 acknowledged then) and the publisher finished on the restarted one"
ok '[ "$lost" -eq 0 ] && [ "$acked" -eq 3000 ]' "every acknowledged message was delivered: $acked acknowledged, $c_uniq distinct delivered, lost $lost, duplicates $((c_all - c_uniq))"
echo "# kill -9 of the broker: acknowledged $acked, delivered $c_all ($c_uniq distinct, duplicates $((c_all - c_uniq)))"
ok '! grep -q "malformed record" "$T/sup.log"' "no stage reported malformed records"
kill $SUP; wait $SUP 2>/dev/null
