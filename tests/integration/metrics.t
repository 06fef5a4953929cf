#!/bin/sh
# The supervisor's Prometheus endpoint and `iotrules status [--json]`:
# 10,000 messages through one pipeline (metrics_listen 127.0.0.1:0, the
# bound address in run/metrics.addr); /metrics passes `promtool check
# metrics` and its counters equal status --json's; then rolling restarts
# of evaluate, the sink and ingest and a kill -9 of evaluate, 2,000 more
# messages over two sinks, one of them scaled away: sampled all along, no counter ever went down, and the totals
# are what was sent.  promtool (Debian's prometheus package) is required:
# without it the test fails.
. "$(dirname "$0")/lib.sh"
echo "1..20"
start_mosquitto || exit 1
mkdir -p "$T/rules"
cat > "$T/rules/warm.json" <<'JSON'
{"sql": "SELECT device, temp FROM 'm/+' WHERE temp > 20", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"republish": {"topic": "out/${topic(2)}", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}]}
JSON
cat > "$T/rules/frozen.json" <<'JSON'
{"sql": "SELECT * FROM 'm/+' WHERE temp < 0", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"republish": {"topic": "frozen/${topic(2)}", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}]}
JSON
cat > "$T/config.json" <<JSON
{"broker": "mqtt://127.0.0.1:$PORT", "rules": "rules", "run_dir": "run", "state_dir": "state",
 "bin_dir": "$BIN", "metrics_listen": "127.0.0.1:0"}
JSON
start_supervisor || exit 1
ctl() { "$BIN/iotrules" --config "$T/config.json" "$@"; }
for _ in $(seq 50); do [ -s "$T/run/metrics.addr" ] && break; sleep 0.1; done
ADDR=$(cat "$T/run/metrics.addr" 2>/dev/null)
# Someone listens: a republish to a topic nobody subscribes to is
# answered "no matching subscribers", which the sink takes for a refusal.
mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -t 'out/#' -t 'frozen/#' -v > "$T/out.txt" 2>/dev/null &
PIDS="$PIDS $!"
sub_ready "$T/out.txt" out/probe || exit 1
ok 'echo "$ADDR" | grep -Eq "^127\.0\.0\.1:[0-9]+$" && ! echo "$ADDR" | grep -q ":0$"' "port 0: the bound address is in run/metrics.addr ($ADDR)"

# metric NAME LABELS FILE: the sample's value ("" if absent).
metric() { awk -v k="$1{$2}" '$1 == k { print $2 }' "$3"; }
scrape() { curl -s -m 5 "http://$ADDR/metrics" > "$1"; }
# wait_json PATTERN...: waits until status --json (one line) matches
# every grep -E PATTERN.  (No python in the loop: it starts slowly here.)
wait_json() {
	for _ in $(seq 300); do
		if ctl status --json > "$T/st.json" 2>/dev/null; then
			miss=0
			for p in "$@"; do grep -Eq "$p" "$T/st.json" || miss=1; done
			[ $miss -eq 0 ] && return 0
		fi
		sleep 0.1
	done
	echo "# waited in vain for: $*"; sed 's/^/# /' "$T/st.json"
	return 1
}

# --- 10,000 messages: a quarter of them too cold for rule warm -----------
awk 'BEGIN { for (i = 1; i <= 10000; i++) printf "{\"device\":\"d\",\"temp\":%d,\"seq\":%d}\n", (i % 4 == 0) ? 15 : 25, i }' > "$T/pub1.txt"
t0=$(date +%s)
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t m/d1 -l < "$T/pub1.txt"
wait_json '"actions":\{"republish":\{"delivered":7500,' '"warm":\{"matched":10000,'
echo "# 10,000 messages in $(($(date +%s) - t0)) s" 
sleep 0.7   # one more stats round: nothing moves now
scrape "$T/m1.txt"
ctl status --json > "$T/st1.json"
ctl status > "$T/st1.txt"
sed 's/^/# /' "$T/st1.txt"
command -v promtool > /dev/null || echo "# promtool is missing (apt-get install prometheus): failing"
promtool check metrics < "$T/m1.txt" > "$T/promtool.txt" 2>&1
promtool_rc=$?
sed 's/^/# promtool: /' "$T/promtool.txt"
ok '[ "$promtool_rc" -eq 0 ]' "promtool check metrics accepts /metrics ($(wc -l < "$T/m1.txt") lines)"
ok '[ "$(metric iotrules_rule_matched_total "rule=\"warm\"" "$T/m1.txt")" = 10000 ] &&
    [ "$(metric iotrules_rule_fired_total "rule=\"warm\"" "$T/m1.txt")" = 7500 ] &&
    [ "$(metric iotrules_rule_no_result_total "rule=\"warm\"" "$T/m1.txt")" = 2500 ] &&
    [ "$(metric iotrules_rule_sql_errors_total "rule=\"warm\"" "$T/m1.txt")" = 0 ] &&
    [ "$(metric iotrules_rule_no_result_total "rule=\"frozen\"" "$T/m1.txt")" = 10000 ]' \
    "per rule: warm matched 10000, fired 7500, no result 2500, 0 SQL errors; frozen no result 10000"
ok '[ "$(metric iotrules_action_delivered_total "action=\"republish\"" "$T/m1.txt")" = 7500 ] &&
    [ "$(metric iotrules_action_delivery_seconds_count "action=\"republish\"" "$T/m1.txt")" = 7500 ] &&
    [ "$(metric iotrules_action_delivery_seconds_bucket "action=\"republish\",le=\"+Inf\"" "$T/m1.txt")" = 7500 ] &&
    [ "$(metric iotrules_action_failed_total "action=\"republish\"" "$T/m1.txt")" = 0 ]' \
    "per action: republish delivered 7500, the latency histogram counts 7500, 0 failed"
ok 'grep -q "^iotrules_stage_spool_messages{stage=\"ingest\"} 0$" "$T/m1.txt" &&
    grep -q "^iotrules_stage_spool_bytes{stage=\"sink-republish\"} 0$" "$T/m1.txt" &&
    grep -q "^iotrules_stage_spool_oldest_seconds{stage=\"error-handler\"} " "$T/m1.txt" &&
    grep -q "^iotrules_stage_restarts_total{stage=\"evaluate\"} 0$" "$T/m1.txt" &&
    grep -q "^# TYPE iotrules_action_delivery_seconds histogram$" "$T/m1.txt"' \
    "per stage: spool messages, bytes and oldest age, restarts; # TYPE lines"
# Every counter of status --json is in /metrics with the same value.
cat > "$T/compare.py" <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1]))
m = {}
for line in open(sys.argv[2]):
    if line.startswith("#") or not line.strip():
        continue
    k, v = line.rsplit(" ", 1)
    m[k] = float(v)
want = {}
for r, c in d["rules"].items():
    for f in ("matched", "fired", "no_result", "sql_errors"):
        want['iotrules_rule_%s_total{rule="%s"}' % (f, r)] = c[f]
for a, c in d["actions"].items():
    for f in ("delivered", "failed", "retried"):
        want['iotrules_action_%s_total{action="%s"}' % (f, a)] = c[f]
    want['iotrules_action_delivery_seconds_count{action="%s"}' % a] = c["latency"]["count"]
for s, c in d["stages"].items():
    want['iotrules_stage_restarts_total{stage="%s"}' % s] = c["restarts"]
    for f in ("in", "out", "failed"):
        want['iotrules_stage_%s_total{stage="%s"}' % (f, s)] = c[f]
    if "spool" in c:
        want['iotrules_stage_spool_messages{stage="%s"}' % s] = c["spool"]["messages"]
bad = [(k, v, m.get(k)) for k, v in want.items() if m.get(k) != v]
print("# compared %d counters; different: %s" % (len(want), bad))
sys.exit(1 if bad or len(want) < 20 else 0)
PY
ok 'python3 "$T/compare.py" "$T/st1.json" "$T/m1.txt"' "every counter of status --json has the same value in /metrics ($(python3 "$T/compare.py" "$T/st1.json" "$T/m1.txt" | head -1))"
ok 'awk '"'"'$1 == "(total)" && $2 == "ingest" && $6 == 10000 && $7 == 10000 && $10 == 0'"'"' "$T/st1.txt" | grep -q . &&
    awk '"'"'$1 == "(total)" && $2 == "sink-republish" && $7 == 7500 && $8 == 0 && $9 == 0'"'"' "$T/st1.txt" | grep -q . &&
    grep -q "^rule warm: matched=10000 fired=7500 no_result=2500 sql_errors=0$" "$T/st1.txt" &&
    grep -q "^action republish: delivered=7500 failed=0 retried=0 latency_avg_ms=" "$T/st1.txt" &&
    [ -z "$(awk '"'"'NR > 1 && $3 ~ /^[0-9]+$/ && $5 != 0'"'"' "$T/st1.txt")" ]' \
    "status: stage totals (in, out, failed, retried, spooled), the rules and the actions (no line that column readers take for a restarted instance)"

# --- restarts while the counters are sampled ------------------------------
# samples: one line per scrape: warm matched, republish delivered, latency
# count, ingest in, evaluate out.
sampler() {
	while :; do
		curl -s -m 2 "http://$ADDR/metrics" 2>/dev/null | awk '
		    $1 == "iotrules_rule_matched_total{rule=\"warm\"}" { v[1] = $2 }
		    $1 == "iotrules_action_delivered_total{action=\"republish\"}" { v[2] = $2 }
		    $1 == "iotrules_action_delivery_seconds_count{action=\"republish\"}" { v[3] = $2 }
		    $1 == "iotrules_stage_in_total{stage=\"ingest\"}" { v[4] = $2 }
		    $1 == "iotrules_stage_out_total{stage=\"evaluate\"}" { v[5] = $2 }
		    END { if (length(v) == 5) print v[1], v[2], v[3], v[4], v[5] }' >> "$T/samples.txt"
		sleep 0.1
	done
}
sampler &
SAMPLER=$!
PIDS="$PIDS $SAMPLER"
t1=$(date +%s)
ctl restart evaluate > "$T/r1.txt" 2>&1
ctl restart sink-republish > "$T/r2.txt" 2>&1
ctl restart ingest > "$T/r3.txt" 2>&1
sed 's/^/# /' "$T/r1.txt" "$T/r2.txt" "$T/r3.txt"
sleep 0.7
# The victim is the new evaluate: under load the one the rolling restart
# replaced may still be exiting (and listed) 0.7 s later, and a kill -9
# of a retiring instance is no restart (failed once in CI under ASan,
# with tests/faults/amqp.t's RabbitMQ cluster loading the machine).
for _ in $(seq 100); do
	[ "$(ctl status | awk '$1 == "evaluate" && $3 ~ /^[0-9]+$/ && $3 > 0' | wc -l)" -eq 1 ] && break
	sleep 0.1
done
victim=$(ctl status | awk '$1 == "evaluate" { print $3; exit }')
kill -9 "$victim"
wait_json '"stages":\{.*"evaluate":\{"instances":1,"restarts":1,' '"stage":"evaluate","name":"[^"]*","ready":true'
scrape "$T/m2.txt"
echo "# restarts in $(($(date +%s) - t1)) s"
ok '[ "$(metric iotrules_rule_matched_total "rule=\"warm\"" "$T/m2.txt")" = 10000 ] &&
    [ "$(metric iotrules_action_delivered_total "action=\"republish\"" "$T/m2.txt")" = 7500 ] &&
    [ "$(metric iotrules_stage_in_total "stage=\"ingest\"" "$T/m2.txt")" = 10000 ]' \
    "after rolling evaluate, the sink and ingest and a kill -9 of evaluate: the counters of the processes that are gone are carried"
ok '[ "$(metric iotrules_stage_restarts_total "stage=\"evaluate\"" "$T/m2.txt")" = 1 ] &&
    [ "$(metric iotrules_stage_restarts_total "stage=\"sink-republish\"" "$T/m2.txt")" = 0 ]' "restarts: the kill -9 counts 1 for evaluate, the rolling restarts none"
awk 'BEGIN { for (i = 1; i <= 2000; i++) printf "{\"device\":\"e\",\"temp\":%d,\"seq\":%d}\n", (i % 4 == 0) ? 15 : 25, i }' > "$T/pub2.txt"
# Two sinks share the 2,000; then one is scaled away with what it counted.
t2=$(date +%s)
ctl scale sink-republish 2 > "$T/scale.txt"
wait_json '"stage":"sink-republish","name":"sink-republish-3","ready":true'
# In ten bursts of 200: one burst of 2,000 can reach the sinks as one
# batch, which one instance takes whole (seen 1 run in 2).
for c in 0 1 2 3 4 5 6 7 8 9; do
	sed -n "$((c * 200 + 1)),$((c * 200 + 200))p" "$T/pub2.txt" | mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t m/d2 -l
	sleep 0.2
done
wait_json '"actions":\{"republish":\{"delivered":9000,' '"warm":\{"matched":12000,'
ctl status > "$T/st2.txt"
busy=$(awk '$1 == "sink-republish" && $7 > 0' "$T/st2.txt" | wc -l)
grep "^sink-republish " "$T/st2.txt" | sed "s/^/# /"
ctl scale sink-republish 1 >> "$T/scale.txt"
for _ in $(seq 100); do ctl status | grep -q "^sink-republish  *sink-republish-3 " || break; sleep 0.1; done
ctl status > "$T/st3.txt"
echo "# 2,000 messages over two sinks and the scale-down in $(($(date +%s) - t2)) s"
ok '[ "$busy" -eq 2 ] && [ "$(grep -c "^sink-republish " "$T/st3.txt")" -eq 1 ]' "scale sink-republish 2: both delivered some of the 2,000; scaled back to 1, one instance is left"
sleep 0.7
kill $SAMPLER 2>/dev/null
wait $SAMPLER 2>/dev/null
scrape "$T/m3.txt"
ctl status --json > "$T/st3.json"
sed 's/^/# /' "$T/r1.txt" > /dev/null
ok '[ "$(metric iotrules_rule_matched_total "rule=\"warm\"" "$T/m3.txt")" = 12000 ] &&
    [ "$(metric iotrules_rule_fired_total "rule=\"warm\"" "$T/m3.txt")" = 9000 ] &&
    [ "$(metric iotrules_rule_matched_total "rule=\"frozen\"" "$T/m3.txt")" = 12000 ]' \
    "rules total what was sent: warm matched 12000 (fired 9000), frozen 12000 ($(metric iotrules_rule_matched_total "rule=\"warm\"" "$T/m3.txt"))"
ok '[ "$(metric iotrules_action_delivered_total "action=\"republish\"" "$T/m3.txt")" = 9000 ] &&
    [ "$(metric iotrules_action_delivery_seconds_count "action=\"republish\"" "$T/m3.txt")" = 9000 ] &&
    [ "$(metric iotrules_stage_in_total "stage=\"ingest\"" "$T/m3.txt")" = 12000 ]' \
    "the action totals what was sent: delivered 9000, 9000 latencies, ingest took in 12000 ($(metric iotrules_action_delivered_total "action=\"republish\"" "$T/m3.txt"))"
ok 'python3 "$T/compare.py" "$T/st3.json" "$T/m3.txt" > /dev/null && promtool check metrics < "$T/m3.txt"' "after the restarts /metrics still passes promtool and equals status --json"
samples=$(wc -l < "$T/samples.txt")
down=$(awk 'NF == 5 { for (i = 1; i <= 5; i++) { if ($i < last[i]) bad++; last[i] = $i } } END { print bad + 0 }' "$T/samples.txt")
ok '[ "$samples" -ge 10 ] && [ "$down" -eq 0 ]' "no counter went down in $samples scrapes taken during the restarts ($down decreases)"

# --- the endpoint itself ------------------------------------------------------
ok '[ "$(curl -s -o /dev/null -w "%{http_code}" "http://$ADDR/other")" = 404 ] &&
    [ "$(curl -s -o /dev/null -w "%{http_code}" -X POST "http://$ADDR/metrics")" = 405 ] &&
    curl -sI "http://$ADDR/metrics" | grep -qi "^content-type: text/plain; version=0.0.4"' "another path is 404, POST 405, the content type is the text format's"
# A client that connects and says nothing holds nothing up.
# (curl's telnet client connects and sends what stdin gives: nothing.)
sleep 5 | curl -s "telnet://$ADDR" > /dev/null 2>&1 &
SILENT=$!
sleep 0.3
t0=$(date +%s%N)
ctl status > /dev/null
scrape "$T/m4.txt"
t1=$(date +%s%N)
kill $SILENT 2>/dev/null
ok '[ $(( (t1 - t0) / 1000000 )) -lt 1500 ] && grep -q "^iotrules_rule_matched_total" "$T/m4.txt"' "a silent client holds up neither status nor another scrape ($(( (t1 - t0) / 1000000 )) ms)"
kill $SUP; wait $SUP 2>/dev/null
ok '[ ! -e "$T/run/metrics.addr" ]' "metrics.addr is removed at stop"

# --- a port that is taken: the pipeline runs, the bind is retried ----------
P2=$(free_port)
/usr/bin/python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); open(sys.argv[2], "w").close(); time.sleep(60)' "$P2" "$T/held" &
HOLDER=$!
PIDS="$PIDS $HOLDER"
sed -e "s/127.0.0.1:0/127.0.0.1:$P2/" -e 's/"run"/"run2"/' "$T/config.json" > "$T/config2.json"
for _ in $(seq 50); do [ -e "$T/held" ] && break; sleep 0.1; done
"$BIN/iotrules-supervisor" --config "$T/config2.json" 2> "$T/sup2.log" &
SUP=$!
PIDS="$PIDS $SUP"
for _ in $(seq 100); do
	[ "$(cat "$T"/run2/stats/*.json 2>/dev/null | grep -c '"ready":true')" -ge 4 ] && break
	sleep 0.1
done
ok '[ "$(cat "$T"/run2/stats/*.json 2>/dev/null | grep -c "\"ready\":true")" -ge 4 ] && grep -q "cannot listen on 127.0.0.1:$P2: Address already in use; the pipeline runs on, retrying every 10 s" "$T/sup2.log" && [ ! -e "$T/run2/metrics.addr" ]' \
    "port $P2 taken: an error is logged and the pipeline runs"
kill $HOLDER
for _ in $(seq 130); do [ -s "$T/run2/metrics.addr" ] && break; sleep 0.1; done
ok '[ "$(cat "$T/run2/metrics.addr" 2>/dev/null)" = "127.0.0.1:$P2" ] && curl -s "http://127.0.0.1:$P2/metrics" | grep -q "^# TYPE iotrules_stage_restarts_total counter"' \
    "once the port is free the endpoint is there (within the 10 s retry)"
kill $SUP; wait $SUP 2>/dev/null
ok '! grep -Eq "AddressSanitizer|LeakSanitizer|runtime error:" "$T/sup.log" "$T/sup2.log"' "no sanitizer report from any process"
