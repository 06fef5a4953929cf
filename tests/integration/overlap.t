#!/bin/sh
# Overlapping topic filters of different rules (ov/+, ov/#, ov/x): the
# broker sends ingest one copy of a message per matching subscription
# (mosquitto 2 does), yet each rule fires once per message, as on AWS.
# MQTT 5 subscription identifiers say which subscription each copy came
# through (common/subid.h); evaluate runs only those rules on it.
. "$(dirname "$0")/lib.sh"
echo "1..5"
start_mosquitto || exit 1
mkdir -p "$T/rules"
for r in plus:ov/+ hash:ov/# exact:ov/x; do
	name=${r%%:*}
	filter=${r#*:}
	cat > "$T/rules/$name.json" <<JSON
{"sql": "SELECT seq FROM '$filter'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"republish": {"topic": "got/$name", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}]}
JSON
done
cat > "$T/config.json" <<JSON
{"broker": "mqtt://127.0.0.1:$PORT", "rules": "rules", "run_dir": "run", "state_dir": "state",
 "bin_dir": "$BIN", "metrics_listen": false}
JSON
start_supervisor || exit 1
mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -t 'got/#' -v > "$T/out.txt" 2>/dev/null &
PIDS="$PIDS $!"
sub_ready "$T/out.txt" got/probe
N=300
awk -v n=$N 'BEGIN { for (i = 1; i <= n; i++) printf "{\"seq\":%d}\n", i }' > "$T/pub.txt"
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t ov/x -l < "$T/pub.txt"
count() { grep -c "^got/$1 " "$T/out.txt"; }
for _ in $(seq 300); do
	[ "$(count plus)" -ge $N ] && [ "$(count hash)" -ge $N ] && [ "$(count exact)" -ge $N ] && break
	sleep 0.1
done
sleep 1   # any extra copy would come now
for name in plus hash exact; do
	ok '[ "$(count $name)" -eq $N ] && [ "$(grep "^got/$name " "$T/out.txt" | sort -u | wc -l)" -eq $N ]' \
		"rule on $name's filter fired once per message: $(count $name) of $N, every seq once"
done
ingest_in() {
	"$BIN/iotrules" --config "$T/config.json" status --json |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["stages"]["ingest"]["in"])'
}
got=$(ingest_in)
ok '[ "$got" -ge $((3 * N)) ]' "the broker did send a copy per subscription (ingest took in $got for $N published)"
ok '! grep -q "same subscription identifier" "$T/sup.log"' "the three filters have distinct identifiers"
