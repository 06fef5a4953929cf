# Helpers for the plugin-mode tests (sourced after lib.sh).
#
# plugin_conf LISTENER_LINE...: writes $T/plugin.conf, a mosquitto with
# lib/iotrules-mosquitto.so journaling to $T/journal.  As root, mosquitto
# drops privileges (to user mosquitto) before loading plugins, and $T is
# root's: keep it root here.
PLUGIN=${IOTRULES_PLUGIN:-$here/lib/iotrules-mosquitto.so}
plugin_conf() {
	{
		[ "$(id -u)" -eq 0 ] && echo "user root"
		printf 'per_listener_settings false\nallow_anonymous true\nmax_inflight_messages 1000\n'
		printf 'plugin %s\nplugin_opt_journal %s\n' "$PLUGIN" "$T/journal"
		for l in "$@"; do echo "$l"; done
	} > "$T/plugin.conf"
}
# start_plugin_broker PORT: starts it (pid in $PB, log $T/plugin.log).
start_plugin_broker() {
	run_broker "$T/plugin.conf" "$T/plugin.log"
	PB=$!
	PIDS="$PIDS $PB"
	broker_up "$1" "$T/plugin.log"
}
# plugin_pipeline: the rule seq (SELECT seq FROM 'q/#', republished to
# out/<topic level 2> on the plain broker), besides any rule already in
# $T/rules, and the supervised pipeline reading $T/journal (ingest_journal).
plugin_pipeline() {
	mkdir -p "$T/rules"
	cat > "$T/rules/seq.json" <<'JSON'
{"sql": "SELECT seq FROM 'q/#'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"republish": {"topic": "out/${topic(2)}", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}]}
JSON
	cat > "$T/config.json" <<JSON
{"broker": "mqtt://127.0.0.1:$PORT", "rules": "rules", "run_dir": "run", "state_dir": "state",
 "bin_dir": "$BIN", "ingest_journal": "journal"}
JSON
	start_supervisor
}
# acked_delivered TOPIC: waits until every seq ackpub listed in
# $T/acked.txt came out on TOPIC in $T/out.txt (30 s at most), then sets
# acked (distinct seqs acknowledged), got (distinct delivered), all
# (delivered, duplicates included) and lost (acknowledged, not delivered).
acked_delivered() {
	acked=$(sort -u "$T/acked.txt" | wc -l)
	for _ in $(seq 300); do
		[ "$(grep "^$1 " "$T/out.txt" | sort -u | wc -l)" -ge "$acked" ] && break
		sleep 0.1
	done
	sleep 0.5
	awk '{ print $2 }' "$T/acked.txt" | sort -u > "$T/acked.seq"
	grep "^$1 " "$T/out.txt" | sed 's/.*"seq":\([0-9]*\).*/\1/' | sort -u > "$T/got.seq"
	lost=$(comm -23 "$T/acked.seq" "$T/got.seq" | wc -l)
	all=$(grep -c "^$1 " "$T/out.txt")
	got=$(wc -l < "$T/got.seq")
}
