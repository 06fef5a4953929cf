#!/bin/sh
# Runs the shared AWS IoT SQL conformance corpus against bin/iotrules-sql.
here=$(cd "$(dirname "$0")/../.." && pwd)
bin=${IOTRULES_BIN:-$here/bin}
tool=$here/../shared/tools/sql-conformance
if [ ! -x "$tool" ]; then
	echo "1..0 # SKIP the shared corpus ($tool) is not next to this checkout"
	exit 0
fi
echo "1..1"
out=$("$tool" --bin "$bin/iotrules-sql" 2>&1)
last=$(printf '%s\n' "$out" | tail -1)
printf '%s\n' "$out" | sed 's/^/# /'
case "$last" in
*" 0 failed") echo "ok 1 - conformance corpus: $last" ;;
*) echo "not ok 1 - conformance corpus: $last" ;;
esac
