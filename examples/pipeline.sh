#!/bin/sh
# examples/pipeline.sh [RULES_DIR] < messages.jsonl
#
# The pipeline wired by hand, without the supervisor: JSON lines on stdin
# go through ingest, evaluate and the republish sink to the MQTT broker.
# Each stage is an ordinary process; they meet in $WORK/run (hops) and
# keep their spools in $WORK/state.  Runs from any directory: RULES_DIR
# (default: the rules/ next to this script) is taken from the current
# directory, the binaries from the bin/ of this script's repository.
#   BROKER          mqtt://127.0.0.1:1883 by default
#   IOTRULES_BIN    where the binaries are (default: ../bin)
#   WORK            working directory (default: a new temporary one,
#                   removed at the end)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
rules=${1:-$here/rules}
bin=${IOTRULES_BIN:-$here/../bin}
broker=${BROKER:-mqtt://127.0.0.1:1883}
if [ -z "${WORK:-}" ]; then
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
else
	work=$WORK
fi
run=$work/run state=$work/state
mkdir -p "$run" "$state"

"$bin/iotrules-evaluate" --run-dir "$run" --rules "$rules" --name evaluate-1 &
eval_pid=$!
"$bin/iotrules-sink-republish" --run-dir "$run" --state-dir "$state" --name sink-republish-1 --broker "$broker" &
sink_pid=$!
"$bin/iotrules-error-handler" --run-dir "$run" --state-dir "$state" --name error-handler-1 &
err_pid=$!

# ingest --stdin returns once every message was accepted by evaluate,
# which in turn waited until the sink had spooled the jobs.
"$bin/iotrules-ingest" --stdin --run-dir "$run" --state-dir "$state" --name ingest-1
# Let the sink deliver what it spooled, then stop the stages.
while grep -q '"pending":[1-9]' "$run/stats/sink-republish-1.json" 2>/dev/null; do sleep 0.1; done
sleep 0.3
kill "$eval_pid" "$sink_pid" "$err_pid"
wait "$eval_pid" "$sink_pid" "$err_pid" || true
