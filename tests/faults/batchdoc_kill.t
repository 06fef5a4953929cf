#!/bin/sh
# A failed http batch's error document survives a kill -9 of the error
# handler while it holds the batch (ERRORS.md 2.2, c2d2196): the failure
# reports are in the handler's spool, the batch group keeps their spool
# tickets open until its one document is sent, so a new handler replays
# them and sends the document.  Here the errorAction's sink (republish) is
# not running at first, so the handler cannot send and must hold the
# batch; it is killed then, and restarted with the republish sink.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/../integration/awslib.sh"
BK_PY=python3
echo "1..4"
"$here/tests/backends/gen-certs.sh" "$T/tls" > /dev/null || exit 1
python3 "$here/tests/backends/httpd.py" --cert "$T/tls/server.pem" --key "$T/tls/server.key" > "$T/httpd.out" 2> "$T/httpd.err" &
PIDS="$PIDS $!"
wait_until 20 grep -q '^listening ' "$T/httpd.out" || { echo "# httpd.py did not start"; exit 1; }
H="https://localhost:$(sed -n 's/^listening \([0-9]*\)$/\1/p' "$T/httpd.out")"
curl -sS --cacert "$T/tls/ca.pem" -X POST "$H/__httpd/fail?path=/in&status=400&count=100" > /dev/null
start_mosquitto || exit 1
cat > "$T/config.json" <<JSON
{"destinations": [{"arn": "arn:aws:iot:us-east-1:123456789012:ruledestination/http/t", "status": "ENABLED",
  "httpUrlConfiguration": {"confirmationUrl": "$H/in"}, "ca_file": "$T/tls/ca.pem"}]}
JSON
mkdir -p "$T/rules"
cat > "$T/rules/bf.json" <<JSON
{"sql": "SELECT * FROM 'bf/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"http": {"url": "$H/in", "enableBatching": true,
   "batchConfig": {"maxBatchSize": 4, "maxBatchOpenMs": 200, "batchAcrossTopics": true}}}],
 "errorAction": {"republish": {"topic": "errors/bf", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}}
JSON
R=$T/run
c="--run-dir $R --state-dir $T/state"
"$BIN/iotrules-sink-http" $c --name sink-http-1 --config "$T/config.json" --retry-s 0 2> "$T/http.log" & PIDS="$PIDS $!"
"$BIN/iotrules-error-handler" $c --name error-handler-1 2> "$T/eh1.log" & EH=$!; PIDS="$PIDS $EH"
"$BIN/iotrules-evaluate" --run-dir "$R" --rules "$T/rules" --name evaluate-1 2> "$T/eval.log" & PIDS="$PIDS $!"
"$BIN/iotrules-ingest" $c --name ingest-1 --broker "mqtt://127.0.0.1:$PORT" --rules "$T/rules" 2> "$T/ingest.log" & PIDS="$PIDS $!"
ready() { [ "$(grep -l '"ready":true' "$R"/stats/*.json 2>/dev/null | wc -l)" -ge 4 ]; }
wait_until 20 ready || { echo "# the stages did not become ready"; exit 1; }
for i in 1 2 3 4; do mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t "bf/d$i" -m "{\"i\":$i}"; done
held() { [ "$(sed -n 's/.*"in":\([0-9]*\).*/\1/p' "$R/stats/error-handler-1.json")" -ge 4 ] 2>/dev/null; }
wait_until 20 held
ok 'held' "the error handler has the batch's 4 failure reports (its errorAction's sink is not running)"
sleep 1
kill -9 "$EH"; wait "$EH" 2>/dev/null
mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -t 'errors/#' -v > "$T/errors.txt" 2>/dev/null &
PIDS="$PIDS $!"
sleep 0.5
"$BIN/iotrules-sink-republish" $c --name sink-republish-1 --broker "mqtt://127.0.0.1:$PORT" 2> "$T/rep.log" & PIDS="$PIDS $!"
"$BIN/iotrules-error-handler" $c --name error-handler-1 2> "$T/eh2.log" & PIDS="$PIDS $!"
got() { grep -q '^errors/bf ' "$T/errors.txt"; }
wait_until 60 got
sleep 1
grep '^errors/bf ' "$T/errors.txt" | cut -c1-600 | sed 's/^/# /'
ok 'got' "after kill -9 and a restart, the batch's error document arrives"
docs=$(grep -c '^errors/bf ' "$T/errors.txt")
grep '^errors/bf ' "$T/errors.txt" | head -1 | cut -d' ' -f2- > "$T/doc.json"
ok '[ "$(pyq "$T/doc.json" "sorted(p[\"topic\"] for p in d[\"payloadsWithMetadata\"]) == [\"bf/d1\",\"bf/d2\",\"bf/d3\",\"bf/d4\"] and d[\"failures\"][0][\"affectedIds\"] == [0,1,2,3]")" = True ]' \
	"one document for the 4 messages: payloadsWithMetadata with each topic, affectedIds"
ok '[ "$docs" -ge 1 ] && [ "$docs" -le 2 ]' "sent once, or twice after the replay (never lost): $docs"
