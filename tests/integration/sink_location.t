#!/bin/sh
# The location action against the recorder (tests/backends/svc_location.py),
# its endpoint configured (AWS_ENDPOINT_URL_LOCATION, used as given: no
# "tracking." prefix): 500 QoS 1 messages through AWS's example rule with
# substitution templates, each a BatchUpdateDevicePosition update
# {DeviceId, Position [longitude, latitude], SampleTime} read back; every
# request's signature verified; updates batched (10 a request); SampleTime
# from timestamp value and unit (SECONDS, NANOSECONDS); two updates of one
# device at one time never in one request; per-entry Errors[] (matched by
# DeviceId and SampleTime while the same device ids share requests): one
# error document per failed message, no resend of the others; a retryable
# entry error, throttling and 503 retried; a missing tracker and a bad
# latitude one error document per message.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../backends/lib.sh"
. "$(dirname "$0")/awslib.sh"
echo "1..15"
backends_start recorder || exit 1
aws_env
export AWS_ENDPOINT_URL_LOCATION="$BK_RECORDER"
bk_ctl POST 'svc/geo/missing?name=no_such_tracker' > /dev/null
mkdir -p "$T/rules"
# AWS's example with substitution templates (location-rule-action), an
# errorAction added.
cat > "$T/rules/to_location.json" <<'JSON'
{"topicRulePayload": {"sql": "SELECT * FROM 'some/topic'", "ruleDisabled": false, "awsIotSqlVersion": "2016-03-23",
 "actions": [{"location": {"roleArn": "arn:aws:iam::123456789012:role/service-role/ExampleRole",
   "trackerName": "${TrackerName}", "deviceId": "${DeviceID}",
   "timestamp": {"value": "${timestamp()}", "unit": "MILLISECONDS"},
   "latitude": "${get(position, 0)}", "longitude": "${get(position, 1)}"}}],
 "errorAction": {"republish": {"topic": "errors/loc", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}}}
JSON
# The same with the sample time from the payload, in seconds or nanoseconds.
for u in SECONDS NANOSECONDS; do
	v='${seq}'
	[ $u = NANOSECONDS ] && v='${seq * 1000000000 + 123456789}'
	sed -e "s/'some\/topic'/'timed\/$u'/" -e "s/\"\${timestamp()}\", \"unit\": \"MILLISECONDS\"/\"$v\", \"unit\": \"$u\"/" \
	    "$T/rules/to_location.json" > "$T/rules/timed_$u.json"
done
# SQL 2015-10-08 writes ${seq * 1E3} as "1001000.0": a whole number still.
sed -e "s/'some\/topic'/'timed\/v1'/" -e 's/"2016-03-23"/"2015-10-08"/' -e 's/"${timestamp()}"/"${seq * 1E3}"/' \
    "$T/rules/to_location.json" > "$T/rules/timed_v1.json"
# Two messages a second: the same sample time twice.
sed -e "s/'timed\/SECONDS'/'pairs\/x'/" -e 's/"${seq}"/"${floor(seq \/ 2)}"/' "$T/rules/timed_SECONDS.json" > "$T/rules/pairs.json"
cat > "$T/rules/missing.json" <<'JSON'
{"sql": "SELECT * FROM 'missing/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"location": {"roleArn": "arn:aws:iam::123456789012:role/r", "trackerName": "no_such_tracker",
   "deviceId": "${DeviceID}", "latitude": "${get(position, 0)}", "longitude": "${get(position, 1)}"}}],
 "errorAction": {"republish": {"topic": "errors/missing", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}}
JSON
# pub_loc TOPIC N FIRST DEVICES: N QoS 1 messages like AWS's example
# payload, seq FIRST.., device "dev-<seq % DEVICES>", latitude
# "-1.<seq, 5 digits>" (so a position names its message), longitude
# "65.4321".
pub_loc() {
	awk -v n="$2" -v f="$3" -v k="$4" 'BEGIN { for (i = f; i < f + n; i++) printf "{\"TrackerName\":\"mytracker\",\"DeviceID\":\"dev-%d\",\"position\":[\"-1.%05d\",\"65.4321\"],\"seq\":%d}\n", i % k, i, i }' \
	    | mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t "$1" -l
}
tq() { "$BK_PY" -c 'import json,sys; J=json.loads; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }
positions() { bk_ctl GET svc/geo/positions > "$T/pos.json"; }
# seqs_of: the seq of each stored position (from its latitude), as a list.
SEQ='int(round(-p["Position"][1] * 100000)) - 100000'
# stored FIRST LAST: each of FIRST..LAST stored (once or more).
stored() { positions && [ "$(tq "$T/pos.json" "set(range($1, $2 + 1)) <= set($SEQ for p in d)")" = True ]; }
aws_pipeline || exit 1
wait_until 20 sink_ready location
ok "sink_ready location" "the location sink runs"
errors_sub

t0=$(date +%s%3N)
pub_loc some/topic 500 1 7
t1=$(date +%s%3N)
wait_until 30 stored 1 500
ok '[ "$(tq "$T/pos.json" "sorted($SEQ for p in d) == list(range(1, 501))")" = True ] &&
    [ "$(tq "$T/pos.json" "all(p[\"TrackerName\"] == \"mytracker\" and p[\"DeviceId\"] == \"dev-%d\" % (($SEQ) % 7) and p[\"Position\"] == [65.4321, -1 - ($SEQ) / 100000] for p in d)")" = True ]' \
    "500 messages: 500 updates, each once, tracker and DeviceId from the templates, Position [longitude, latitude]"
ok '[ "$(tq "$T/pos.json" "all(len(p[\"SampleTime\"]) == 24 and p[\"SampleTime\"].endswith(\"Z\") and $t0 - 1000 <= __import__(\"datetime\").datetime.fromisoformat(p[\"SampleTime\"][:-1] + \"+00:00\").timestamp() * 1000 <= $t1 + 1000 for p in d)")" = True ]' \
    "SampleTime: \${timestamp()} in MILLISECONDS as ISO 8601 (YYYY-MM-DDThh:mm:ss.sssZ), when the message came in"
bk_requests geo > "$T/reqs.json"
sigs=$(sigs_checked geo)
ok '[ "${sigs%% *}" -gt 0 ] && [ "${sigs%% *}" = "${sigs##* }" ]' "every request's SigV4 signature verified by the recorder (${sigs##* } of ${sigs%% *})"
nreq=$(tq "$T/reqs.json" "len(d)")
ok '[ "$nreq" -lt 250 ] && [ "$(tq "$T/reqs.json" "all(r[\"method\"] == \"POST\" and r[\"path\"] == \"/tracking/v0/trackers/mytracker/positions\" and r[\"headers\"][\"host\"] == \"127.0.0.1:$BK_RECORDER_PORT\" and list(J(r[\"body\"])) == [\"Updates\"] and 1 <= len(J(r[\"body\"])[\"Updates\"]) <= 10 and r[\"status\"] == 200 for r in d)")" = True ]' \
    "batched: $nreq requests for 500, at most 10 updates each, POST /tracking/v0/trackers/mytracker/positions to the configured endpoint as given"
ok '[ "$(tq "$T/reqs.json" "all(len(u) == len(set((x[\"DeviceId\"], x[\"SampleTime\"]) for x in u)) for u in (J(r[\"body\"])[\"Updates\"] for r in d))")" = True ]' \
    "no request holds two updates of one device at one sample time"

# SampleTime from the payload: seconds, and nanoseconds (kept to the ms).
pub_loc timed/SECONDS 10 1001 7
pub_loc timed/NANOSECONDS 10 2001 7
wait_until 20 stored 1001 1010
wait_until 20 stored 2001 2010
pub_loc timed/v1 10 2501 7
wait_until 20 stored 2501 2510
ok '[ "$(tq "$T/pos.json" "sorted(p[\"SampleTime\"] for p in d if 1001 <= $SEQ <= 1010) == [\"1970-01-01T00:16:%02d.000Z\" % (i - 960) for i in range(1001, 1011)]")" = True ] &&
    [ "$(tq "$T/pos.json" "sorted(p[\"SampleTime\"] for p in d if 2001 <= $SEQ <= 2010) == [\"1970-01-01T00:33:%02d.123Z\" % (i - 1980) for i in range(2001, 2011)]")" = True ] &&
    [ "$(tq "$T/pos.json" "sorted(p[\"SampleTime\"] for p in d if 2501 <= $SEQ <= 2510) == [\"1970-01-01T00:41:%02d.000Z\" % (i - 2460) for i in range(2501, 2511)]")" = True ]' \
    "timestamp unit SECONDS (\${seq}), NANOSECONDS (\${seq * 1000000000 + 123456789}) and, under SQL 2015-10-08, MILLISECONDS \${seq * 1E3} (\"2501000.0\"): SampleTime 00:16:41.000Z.., 00:33:21.123Z.., 00:41:41.000Z.."

# Two devices only, one time each second: same device ids share requests
# at different sample times; every 3rd update of the next 3 requests
# fails.  The errors must find their own messages.
bk_clear
bk_ctl POST 'partial?service=geo&count=3&every=3' > /dev/null
pub_loc timed/SECONDS 60 3001 2
errs() { [ "$(grep -c "^$1 {" "$T/errors.txt")" -ge "$2" ]; }
failed_seqs() {
	tq "$T/reqs.json" "' '.join(str(s) for s in sorted(round(-u['Position'][1] * 100000) - 100000 for r in d for e in J(r['reply'])['Errors'] for u in J(r['body'])['Updates'] if u['DeviceId'] == e['DeviceId'] and __import__('datetime').datetime.fromisoformat(u['SampleTime'][:-1] + '+00:00') == __import__('datetime').datetime.fromisoformat(e['SampleTime'])))"
}
part_done() {
	bk_requests geo > "$T/reqs.json"
	grep "^errors/loc {" "$T/errors.txt" | cut -d' ' -f2- > "$T/loc_errors.json"
	"$BK_PY" -c 'import base64,json,sys
for l in open(sys.argv[1]): print(json.loads(base64.b64decode(json.loads(l)["base64OriginalPayload"]))["seq"])' "$T/loc_errors.json" | sort -n > "$T/errseqs"
	positions && [ "$(tq "$T/pos.json" "len([p for p in d if 3001 <= $SEQ <= 3060])")" -ge $((60 - $(wc -l < "$T/errseqs"))) ] &&
	    [ "$(wc -l < "$T/errseqs")" -eq "$(failed_seqs | wc -w)" ] && [ -s "$T/errseqs" ]
}
wait_until 30 part_done
fs=$(failed_seqs)
ok '[ -n "$fs" ] && [ "$(tr "\n" " " < "$T/errseqs")" = "$fs " ]' \
    "$(echo $fs | wc -w) updates in Errors[] (by DeviceId and SampleTime): one error document each, for exactly their messages ($fs)"
ok '[ "$(tq "$T/pos.json" "sorted($SEQ for p in d if 3001 <= $SEQ <= 3060)")" = "$(echo "$fs" | "$BK_PY" -c "import sys; f=set(map(int, sys.stdin.read().split())); print(sorted(set(range(3001, 3061)) - f))")" ] &&
    [ "$(tq "$T/reqs.json" "len([u for r in d for u in J(r[\"body\"])[\"Updates\"]])")" -eq 60 ]' \
    "the other messages' updates stored once, none resent (60 updates sent for 60 messages)"
ok 'head -1 "$T/loc_errors.json" | grep "\"failedAction\":\"LocationAction\",\"failedResource\":\"mytracker\"" | grep "Error Code: ValidationError" | grep -q "injected by recorder"' \
    "the document names LocationAction, the tracker and the entry's error code and message"
head -1 "$T/loc_errors.json" | cut -c1-400 | sed 's/^/# /'

# Same device, same sample time (two messages a second): never in one
# request, all stored.
bk_clear
pub_loc pairs/x 40 4001 1
wait_until 20 stored 4001 4040
bk_requests geo > "$T/reqs.json"
ok 'stored 4001 4040 && [ "$(tq "$T/reqs.json" "all(len(u) == len(set((x[\"DeviceId\"], x[\"SampleTime\"]) for x in u)) for u in (J(r[\"body\"])[\"Updates\"] for r in d))")" = True ] &&
    [ "$(tq "$T/reqs.json" "len(d)")" -ge 2 ]' \
    "40 updates of one device, two at each sample time: all stored, never two of one time in a request ($(tq "$T/reqs.json" "len(d)") requests)"

# Retryable: an entry answered ThrottlingError, whole requests answered
# throttling and 503: retried until they pass.
bk_ctl POST 'partial?service=geo&count=2&every=1&code=ThrottlingError' > /dev/null
bk_ctl POST 'fail?status=429&code=ThrottlingException&count=2&service=geo' > /dev/null
bk_ctl POST 'fail?status=503&count=2&service=geo' > /dev/null
pub_loc some/topic 50 5001 7
wait_until 30 stored 5001 5050
# retried_ge N: status counts at least N retries (its stats lag a little).
retried_ge() {
	"$BIN/iotrules" --config "$T/config.json" status > "$T/status.txt"
	retried=$(awk '$1 == "sink-location" { print $9 }' "$T/status.txt")
	[ "${retried:-0}" -ge "$1" ]
}
wait_until 10 retried_ge 4
bk_requests geo > "$T/reqs.json"
answers=$(tq "$T/reqs.json" "'%d %d %d' % (sum(1 for r in d if r['status'] == 200 for e in J(r['reply'])['Errors'] if e['Error']['Code'] == 'ThrottlingError'), sum(1 for r in d if r['status'] == 429), sum(1 for r in d if r['status'] == 503))")
ok 'stored 5001 5050 && [ "$(tq "$T/pos.json" "len([p for p in d if 5001 <= $SEQ <= 5050])")" -eq 50 ] && [ "${retried:-0}" -ge 4 ] && [ "${answers%% *}" -ge 1 ] && [ "${answers#* }" = "2 2" ]' \
    "ThrottlingError entries, 429 and 503 answers ($answers) retried (retried: $retried): 50 more, each once"

# A missing tracker; a latitude that is not a number.
pub_loc missing/x 20 6001 7
echo '{"TrackerName":"mytracker","DeviceID":"dev-1","position":["north","65.4321"],"seq":7001}' |
    mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t some/topic -l
wait_until 30 errs errors/missing 20
wait_until 10 errs errors/loc $(($(wc -l < "$T/errseqs") + 1))
ok '[ "$(grep -c "^errors/missing {" "$T/errors.txt")" -eq 20 ] && grep "^errors/missing {" "$T/errors.txt" | head -1 | grep -q "\"failedResource\":\"no_such_tracker\".*ResourceNotFoundException"' \
    "missing tracker: one error document per message (20), naming the tracker and ResourceNotFoundException"
ok 'grep "^errors/loc {" "$T/errors.txt" | tail -1 | grep -q "latitude (-90..90) or longitude (-180..180) is not a number"' \
    "a latitude that is not a number: an error document at once, saying so"
stop_checked
ok '[ -z "$restarts" ] && [ -z "$sanitizer" ]' "no stage restarted, no sanitizer report ($restarts$sanitizer)"
