#!/bin/sh
# examples/aws/ holds, for every action type this build has (common/
# actions.def rows whose sink is built; stdout is iotrules' own), a rule
# written as that action's AWS page shows it, and `iotrules check`
# accepts each of them; the default example rules pass too.
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")/../.." && pwd)
keys=$(awk -F'"' '/^ACTION/ && $2 != "stdout" { print $2 ":" $6 }' "$here/common/actions.def")
built=""
for k in $keys; do
	[ -f "$here/sinks/${k#*:}.c" ] && built="$built ${k%%:*}"
done
nb=$(echo $built | wc -w)
echo "1..$((nb + 2))"
for key in $built; do
	f="$here/examples/aws/$key.json"
	out=$("$BIN/iotrules" check "$f" 2>&1)
	ok '[ -f "$f" ] && echo "$out" | grep -q "^OK "' "examples/aws/$key.json: iotrules check accepts it ($(echo "$out" | grep -v '"level":"warn"' | head -1 | cut -c1-200))"
done
out=$("$BIN/iotrules" check "$here"/examples/rules/*.json 2>&1)
ok '! echo "$out" | grep -q "^ERROR"' "the default example rules pass iotrules check"
# A rule with an unquoted FROM, as some AWS pages write it: accepted, warned.
printf '{"sql": "SELECT * FROM $aws/things/+/shadow/update/accepted", "actions": [{"republish": {"topic": "x", "roleArn": "arn:aws:iam::123456789012:role/r"}}]}\n' > "$T/unquoted.json"
out=$("$BIN/iotrules" check "$T/unquoted.json" 2>&1)
ok 'echo "$out" | grep -q "^OK " && echo "$out" | grep -q "unquoted FROM topic .\$aws/things/+/shadow/update/accepted. accepted"' \
    "an unquoted FROM topic with '\$' and '+' is accepted with a warning"
