#!/bin/sh
# make soak: SOAK_COUNT (1,000,000) QoS 1 messages through the supervised
# pipeline while a random stage (ingest, evaluate, the sink, the error
# handler) is killed -9 every SOAK_KILL_S (10) seconds.  Prints sent,
# received, lost (must be 0), duplicates, the kills and the time taken;
# exits 1 if anything was lost.  Not part of make test (minutes long).
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/../faults/lib.sh"
COUNT=${SOAK_COUNT:-1000000}
KILL_S=${SOAK_KILL_S:-10}
RATE=${SOAK_RATE:-1000}    # per publisher; four publishers
DEVICES="s1 s2 s3 s4"
PER=$((COUNT / 4))
COUNT=$((PER * 4))
start_mosquitto || exit 1
# The broker holds what ingest has not read yet while it restarts; let it
# hold the whole run, so a count below is the pipeline's, not the broker's
# max_queued_messages (a dropped message is reported separately anyway).
kill $(echo $PIDS | awk '{ print $NF }')
sleep 0.3
sed -i 's/^max_queued_messages .*/max_queued_messages 2000000/' "$T/mosquitto.conf"
mosquitto -c "$T/mosquitto.conf" > "$T/mosquitto.log" 2>&1 &
PIDS="$PIDS $!"
for _ in $(seq 50); do mosquitto_pub -h 127.0.0.1 -p "$PORT" -t ping -m x 2>/dev/null && break; sleep 0.1; done
fault_rule "$T/rules"
cat > "$T/config.json" <<JSON
{"broker": "mqtt://127.0.0.1:$PORT", "rules": "rules", "run_dir": "run", "state_dir": "state", "bin_dir": "$BIN"}
JSON
start_supervisor || exit 1
mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -t 'out/#' -v > "$T/out.txt" 2>/dev/null &
PIDS="$PIDS $!"
sub_ready "$T/out.txt" out/probe
t0=$(date +%s)
for d in $DEVICES; do stream $PER "$RATE" "$d"; done
kills=0
last=0
stall=0
echo "soak: $COUNT messages ($PER on each of $DEVICES at $RATE/s), a random stage killed -9 every $KILL_S s"
while :; do
	sleep "$KILL_S"
	n=$(grep -c '^out/s' "$T/out.txt")
	running=0
	for p in $STREAMS; do kill -0 "$p" 2>/dev/null && running=1; done
	if [ "$running" = 0 ] && [ "$n" -ge "$COUNT" ]; then break; fi
	if [ "$n" -eq "$last" ]; then
		stall=$((stall + KILL_S))
		[ "$stall" -ge 120 ] && { echo "soak: no progress for 120 s"; break; }
	else
		stall=0
	fi
	last=$n
	if [ "$running" = 1 ] || [ "$n" -lt "$COUNT" ]; then
		stage=$(printf 'ingest\nevaluate\nsink-republish\nerror-handler\n' | shuf -n 1)
		pid=$(stage_pid "$stage")
		if [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; then
			kills=$((kills + 1))
			echo "soak: $(($(date +%s) - t0)) s: $n received; kill -9 $stage (pid $pid)"
		fi
	fi
done
# Let the last redeliveries land.
sleep 3
wait_streams
t1=$(date +%s)
got=$(distinct "$T/out.txt"); all=$(total "$T/out.txt")
lost=$((COUNT - got))
for d in $DEVICES; do echo "soak: $d missing $(missing "$T/out.txt" "$d" $PER)"; done
grep -q "messages are being dropped" "$T/mosquitto.log" && echo "soak: the BROKER dropped messages (its queue for a client overflowed): $(grep "being dropped" "$T/mosquitto.log" | head -3)"
echo "soak: sent $COUNT, received $all, distinct $got, lost $lost, duplicates $((all - got)), kills $kills, $((t1 - t0)) s"
kill $SUP; wait $SUP 2>/dev/null
[ "$lost" -eq 0 ]
