# Shared by the kafka tests and bench/kafka (sourced; uses $T, $PIDS and
# $here as tests/integration/lib.sh sets them): the librdkafka mock
# cluster (build/tests/kafkamock) as a process of the test.
KAFKAMOCK=${KAFKAMOCK:-$here/build/tests/kafkamock}

# kafka_tools: kafkamock is built and kcat installed.
kafka_tools() { [ -x "$KAFKAMOCK" ] && command -v kcat > /dev/null; }

# kafka_skip COUNT: the plan's COUNT tests skipped, saying why.
kafka_skip() {
	_i=1
	while [ "$_i" -le "$1" ]; do echo "ok $_i # skip no kafkamock (make) or no kcat"; _i=$((_i + 1)); done
}

# kafka_mock [TOPIC:PARTITIONS ...]: starts a 3-broker mock cluster with
# those topics; its bootstrap list goes to $BS, its command input ("down",
# "up", "missing NAME") is fd 3 (`echo down >&3`), its answers go to
# $T/kafka.out.  It runs until the test exits.  1 if it did not start.
kafka_mock() {
	mkfifo "$T/kafka.ctl" || return 1
	"$KAFKAMOCK" -b 3 -r "$T/kafka.bootstrap" "$@" < "$T/kafka.ctl" > "$T/kafka.out" 2> "$T/kafka.log" &
	PIDS="$PIDS $!"
	exec 3> "$T/kafka.ctl"
	for _ in $(seq 200); do
		if [ -s "$T/kafka.bootstrap" ]; then
			BS=$(cat "$T/kafka.bootstrap")
			return 0
		fi
		sleep 0.1
	done
	echo "# the Kafka mock cluster did not start"; sed 's/^/# /' "$T/kafka.log"
	return 1
}
