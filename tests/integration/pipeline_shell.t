#!/bin/sh
# examples/pipeline.sh wires ingest, evaluate and a sink by hand (no
# supervisor): JSON lines in, republished MQTT messages out.
. "$(dirname "$0")/lib.sh"
echo "1..3"
start_mosquitto || exit 1
mosquitto_sub -h 127.0.0.1 -p "$PORT" -t 'out/#' -v -C 3 -W 20 > "$T/out.txt" 2>&1 &
SUB=$!
sleep 0.3
printf '%s\n' \
 '{"topic":"sensors/d1/telemetry","payload":{"device":"d1","temp":25,"seq":1}}' \
 '{"topic":"sensors/d2/telemetry","payload":{"device":"d2","temp":10,"seq":2}}' \
 'this line is not JSON' \
 '{"topic":"sensors/d3/telemetry","payload":{"device":"d3","temp":30,"seq":3}}' \
 '{"topic":"sensors/d4/telemetry","payload_b64":"bm90IGpzb24="}' \
 '{"topic":"sensors/d5/telemetry","payload":{"device":"d5","temp":21.5,"seq":5}}' \
 > "$T/in.jsonl"
IOTRULES_BIN=$BIN BROKER="mqtt://127.0.0.1:$PORT" WORK="$T/work" \
	timeout 60 "$here/examples/pipeline.sh" "$here/examples/rules" < "$T/in.jsonl" 2> "$T/pipeline.log"
rc=$?
wait $SUB
sort "$T/out.txt" > "$T/sorted.txt"
ok '[ $rc -eq 0 ]' "pipeline.sh exits 0 at the end of its input (rc=$rc)"
ok 'grep -qx "out/d1 {\"device\":\"d1\",\"temp_f\":77,\"seq\":1}" "$T/sorted.txt" && grep -q "^out/d5 {\"device\":\"d5\",\"temp_f\":70.7" "$T/sorted.txt" && [ $(wc -l < "$T/sorted.txt") -eq 3 ]' \
   "the three messages with temp > 20 arrive reshaped on out/<device>"
ok 'grep -q "stdin line 3: expected a JSON object" "$T/pipeline.log"' "a bad input line is reported with its line number and the rest flows"
sed 's/^/# /' "$T/sorted.txt"
