#!/bin/sh
# Plugin mode with the journal's disk full: the broker's journal on a 2 MB
# tmpfs (in a mount namespace of this test), a QoS 1 stream, the disk
# filled to the last byte for 3 s mid-stream.  The publisher is not
# acknowledged meanwhile (disconnected, it resends), the broker says so
# once and keeps serving other clients, and every acknowledged message
# arrives.
. "$(dirname "$0")/mountns.sh"
. "$(dirname "$0")/../integration/lib.sh"
mkdir -p "$T/journal"
cleanup_hook() { umount "$T/journal" 2>/dev/null; }
if ! mount -t tmpfs -o size=2m,mode=0770 tmpfs "$T/journal" 2>/dev/null; then
	echo "1..0 # SKIP cannot mount a tmpfs here"
	exit 0
fi
echo "1..6"
start_mosquitto || exit 1
. "$(dirname "$0")/../integration/pluginlib.sh"
PPORT=$(free_port)
plugin_conf "listener $PPORT 127.0.0.1"
start_plugin_broker "$PPORT" || exit 1
plugin_pipeline || exit 1
mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -t 'out/#' -v > "$T/out.txt" 2>/dev/null &
PIDS="$PIDS $!"
sub_ready "$T/out.txt" out/probe
# Another client of the plugin broker, on a topic no rule reads.
mosquitto_sub -h 127.0.0.1 -p "$PPORT" -t 'other/#' > "$T/other.txt" 2>/dev/null &
PIDS="$PIDS $!"

"$here/build/tests/ackpub" 127.0.0.1 "$PPORT" q/f 2000 50 500 > "$T/acked.txt" 2> "$T/ackpub.log" &
AP=$!
PIDS="$PIDS $AP"
for _ in $(seq 100); do [ "$(wc -l < "$T/acked.txt")" -ge 300 ] && break; sleep 0.05; done
# The disk stays full for 3 s: what ingest frees by deleting forwarded
# journal files is taken again at once (filler.N), as on a disk that
# something else is filling.
(
	i=0
	while [ ! -e "$T/full.stop" ]; do
		i=$((i + 1))
		dd if=/dev/zero of="$T/journal/filler.$i" bs=4k 2>/dev/null
		sleep 0.05
	done
) &
FILLER=$!
sleep 0.5
full_at=$(wc -l < "$T/acked.txt")
mosquitto_pub -h 127.0.0.1 -p "$PPORT" -t other/x -m still-served
sleep 2.5
full_end=$(wc -l < "$T/acked.txt")
touch "$T/full.stop"
wait "$FILLER"
rm -f "$T"/journal/filler.*
wait "$AP"
ap_rc=$?
sed 's/^/# /' "$T/ackpub.log"
acked_delivered out/f
ok '[ "$full_at" -lt 2000 ] && [ "$full_end" -eq "$full_at" ]' "while the journal's disk is full nothing is acknowledged ($full_at of 2000 acknowledged 0.5 s after it filled, $full_end 2.5 s later)"
ok '[ "$(grep -c "iotrules: cannot write journal .*No space left on device.*refusing publishes" "$T/plugin.log")" -eq 1 ]' "the broker logs it once ($(grep -c 'iotrules: cannot write journal' "$T/plugin.log") line)"
ok 'grep -qx still-served "$T/other.txt"' "the broker keeps serving other clients"
ok 'grep -q "iotrules: journal .* is written again; [0-9]* publish(es) were refused" "$T/plugin.log"' "and logs when it writes again: $(grep -o '[0-9]* publish(es) were refused' "$T/plugin.log")"
ok '[ "$ap_rc" -eq 0 ] && [ "$acked" -eq 2000 ]' "the publisher resent what was refused: $acked of 2000 acknowledged"
ok '[ "$lost" -eq 0 ]' "every acknowledged message was delivered ($got distinct, lost $lost, duplicates $((all - got)))"
kill $SUP; wait $SUP 2>/dev/null
