#!/bin/sh
# Plugin mode: a mosquitto with lib/iotrules-mosquitto.so journals every
# PUBLISH and the supervised ingest reads the journal (ingest_journal).
# Rules see the publisher's client id, username and address (IPv4, IPv6);
# 2,000 QoS 1 messages arrive once each; kill -9 of the broker five
# times under QoS 1 load loses nothing that was acknowledged, nor does
# kill -9 of ingest (twice) while it moves the journal to its spool; with
# plugin_opt_journal_sync publish each QoS 1 record is synced; a bad option
# value stops the broker with a line that names it.
#
# Two brokers: the one with the plugin (what devices publish to, killed
# here) and the plain one of lib.sh that the republish sink writes to and
# the test reads from, so that the outputs outlive the kill.
. "$(dirname "$0")/lib.sh"
echo "1..17"
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
cat > "$T/rules/tid.json" <<'JSON'
{"sql": "SELECT traceid() AS id FROM 'tid/#'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"republish": {"topic": "ctx/tid", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}]}
JSON
plugin_pipeline || exit 1
mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -t 'ctx/#' -t 'out/#' -v > "$T/out.txt" 2>/dev/null &
PIDS="$PIDS $!"
sub_ready "$T/out.txt" out/probe
ok 'grep -q "iotrules: journaling publishes to $T/journal (bound 1073741824 bytes, synced by iotrules-ingest)" "$T/plugin.log"' "the broker loaded the plugin (the journal synced by ingest by default)"

# --- (a) clientid(), principal(), sourceip() over IPv4 and IPv6 ---
mosquitto_pub -h 127.0.0.1 -p "$PPORT" -q 1 -i dev-v4 -u alice -t t/v4 -m '{}'
mosquitto_pub -h ::1 -p "$PPORT6" -q 1 -i dev-v6 -u bob -t t/v6 -m '{}'
mosquitto_pub -h 127.0.0.1 -p "$PPORT" -q 1 -i dev-anon -t t/anon -m '{}'
for _ in $(seq 100); do [ "$(grep -c '^ctx/' "$T/out.txt")" -ge 3 ] && break; sleep 0.1; done
sed -n 's/^ctx/# ctx/p' "$T/out.txt"
ok 'grep -qx "ctx/v4 {\"c\":\"dev-v4\",\"p\":\"alice\",\"s\":\"127.0.0.1\"}" "$T/out.txt"' "IPv4: client id, username and address of the publisher"
ok 'grep -qx "ctx/v6 {\"c\":\"dev-v6\",\"p\":\"bob\",\"s\":\"::1\"}" "$T/out.txt"' "IPv6: client id, username and address of the publisher"
ok 'grep -qx "ctx/anon {\"c\":\"dev-anon\",\"s\":\"127.0.0.1\"}" "$T/out.txt"' "no username: principal() is Undefined (left out of the result)"

# traceid(): ingest gives each journaled message its id (the plugin
# leaves it to ingest).
mosquitto_pub -h 127.0.0.1 -p "$PPORT" -q 1 -t tid/1 -m '{}'
mosquitto_pub -h 127.0.0.1 -p "$PPORT" -q 1 -t tid/2 -m '{}'
for _ in $(seq 100); do [ "$(grep -c '^ctx/tid ' "$T/out.txt")" -ge 2 ] && break; sleep 0.1; done
tids=$(sed -n 's/^ctx\/tid {"id":"\([0-9a-f-]*\)"}$/\1/p' "$T/out.txt" | grep -E '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' | sort -u | wc -l)
ok '[ "$tids" -eq 2 ]' "traceid(): each journaled message has its own version 4 UUID ($tids distinct)"

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
# The plugin looks at <journal>/filters when a message comes, at most once
# a second: publish (on a topic no rule reads) until it says it took them.
for _ in $(seq 30); do
	grep -q "iotrules: journaling the topics of 3 rule filter(s)" "$T/plugin.log" && break
	mosquitto_pub -h 127.0.0.1 -p "$PPORT" -q 1 -t z/probe -m x
	sleep 0.2
done
ok 'grep -q "iotrules: journaling the topics of 3 rule filter(s)" "$T/plugin.log"' "the plugin took the rules' three topic filters from ingest"
before=$(in_count)
seq 1 50 | mosquitto_pub -h 127.0.0.1 -p "$PPORT" -q 1 -t z/none -l
mosquitto_pub -h 127.0.0.1 -p "$PPORT" -q 1 -t q/d -m '{"seq":1}'
for _ in $(seq 100); do grep -q '^out/d ' "$T/out.txt" && break; sleep 0.1; done
sleep 0.5
after=$(in_count)
ok '[ -n "$before" ] && [ "$((after - before))" -eq 1 ]' "50 messages on a topic no rule reads are not journaled: ingest took $((after - before)) (the q/d one)"

# --- (c) kill -9 of the broker under QoS 1 load, five times ---
# 6,000 messages at 1,000/s; the broker is killed each time another
# 1,000 have been acknowledged, and started again.
"$here/build/tests/ackpub" 127.0.0.1 "$PPORT" q/c 6000 50 1000 > "$T/acked.txt" 2> "$T/ackpub.log" &
AP=$!
PIDS="$PIDS $AP"
kills=""
for k in 1 2 3 4 5; do
	for _ in $(seq 400); do [ "$(wc -l < "$T/acked.txt")" -ge $((k * 1000)) ] && break; sleep 0.05; done
	kill -9 "$PB"
	wait "$PB" 2>/dev/null
	kills="$kills $(wc -l < "$T/acked.txt")"
	start_plugin_broker "$PPORT"
done
wait "$AP"
ap_rc=$?
sed 's/^/# /' "$T/ackpub.log"
acked_delivered out/c
c_all=$all
c_uniq=$got
last_kill=${kills##* }
ok '[ "$ap_rc" -eq 0 ] && [ "$(echo $kills | wc -w)" -eq 5 ] && [ "$last_kill" -lt 6000 ]' "the broker was killed -9 five times mid-stream (acknowledged then:$kills of 6000) and the publisher finished on the restarted one"
ok '[ "$lost" -eq 0 ] && [ "$acked" -eq 6000 ]' "every acknowledged message was delivered: $acked acknowledged, $c_uniq distinct delivered, lost $lost, duplicates $((c_all - c_uniq))"
echo "# 5 kill -9 of the broker: acknowledged $acked, delivered $c_all ($c_uniq distinct, duplicates $((c_all - c_uniq)))"

# --- (g) kill -9 of ingest, twice, while it reads the journal ---
ingest_pid() { "$BIN/iotrules" --config "$T/config.json" status | awk '$1 == "ingest" && $3 > 0 { print $3; exit }'; }
"$here/build/tests/ackpub" 127.0.0.1 "$PPORT" q/g 3000 50 1000 > "$T/acked.txt" 2> "$T/ackpub.log" &
AP=$!
PIDS="$PIDS $AP"
ikills=""
for k in 1 2; do
	for _ in $(seq 400); do [ "$(wc -l < "$T/acked.txt")" -ge $((k * 1000)) ] && break; sleep 0.05; done
	ip=$(ingest_pid)
	[ -n "$ip" ] && kill -9 "$ip" && ikills="$ikills $ip"
	for _ in $(seq 100); do np=$(ingest_pid); [ -n "$np" ] && [ "$np" != "$ip" ] && break; sleep 0.1; done
done
wait "$AP"
ap_rc=$?
sed 's/^/# /' "$T/ackpub.log"
acked_delivered out/g
ok '[ "$ap_rc" -eq 0 ] && [ "$(echo $ikills | wc -w)" -eq 2 ]' "ingest was killed -9 twice mid-stream (pids$ikills) and restarted by the supervisor"
ok '[ "$lost" -eq 0 ] && [ "$acked" -eq 3000 ]' "every acknowledged message was delivered: $acked acknowledged, $got distinct delivered, lost $lost, duplicates $((all - got))"
if [ "$lost" -ne 0 ]; then
	# Seen once (nothing delivered after the first kill): what to look at.
	"$BIN/iotrules" --config "$T/config.json" status | sed 's/^/# status: /'
	grep '"proc":"ingest' "$T/sup.log" | grep -v '"level":"info"' | tail -20 | cut -c1-300 | sed 's/^/# log: /'
	ls -la "$T/journal" | sed 's/^/# journal: /'
	od -A d -t u8 "$T/journal/cursor" | sed 's/^/# cursor: /'
fi

# --- (e) journal_sync publish: each QoS 1 record synced before its PUBACK ---
kill "$PB"
wait "$PB" 2>/dev/null
plugin_conf "listener $PPORT 127.0.0.1" "plugin_opt_journal_sync publish"
start_plugin_broker "$PPORT"
ok 'grep -q "iotrules: journaling publishes to $T/journal (bound 1073741824 bytes, each QoS 1 or 2 record synced before its PUBACK)" "$T/plugin.log"' "plugin_opt_journal_sync publish: the broker says each QoS 1 record is synced"
seq 1 300 | awk '{ printf "{\"seq\":%d}\n", $1 }' | mosquitto_pub -h 127.0.0.1 -p "$PPORT" -q 1 -t q/e -l
for _ in $(seq 100); do [ "$(grep '^out/e ' "$T/out.txt" | sort -u | wc -l)" -ge 300 ] && break; sleep 0.1; done
e_uniq=$(grep '^out/e ' "$T/out.txt" | sort -u | wc -l)
ok '[ "$e_uniq" -eq 300 ]' "... and 300 QoS 1 messages arrive ($e_uniq)"

# --- (f) a bad option value: the broker does not start, and says why ---
kill "$PB"
wait "$PB" 2>/dev/null
plugin_conf "listener $PPORT 127.0.0.1" "plugin_opt_journal_sync soon"
timeout 10 mosquitto -c "$T/plugin.conf" > "$T/bad.log" 2>&1
bad_rc=$?
ok '[ "$bad_rc" -ne 0 ] && [ "$bad_rc" -ne 124 ] && grep -q "iotrules: plugin_opt_journal_sync soon: expected ingest" "$T/bad.log"' "plugin_opt_journal_sync soon: the broker stops (rc $bad_rc) naming the option: $(grep -o 'iotrules: plugin_opt[^:]*: [a-z ]*' "$T/bad.log" | head -1)"
ok '! grep -q "malformed record" "$T/sup.log"' "no stage reported malformed records"
kill $SUP; wait $SUP 2>/dev/null
