#!/bin/sh
# The iotSiteWise action against the recorder (tests/backends/svc_iot.py
# answers BatchPutAssetPropertyValue with the API's shapes, checks the
# typed values and the timestamp range, and the recorder every SigV4
# signature): 500 QoS 1 messages through a rule as AWS's page writes it
# (the topic as property alias, timestamp() as timeInSeconds and
# offsetInNanos) with a second entry by assetId/propertyId, every entry
# read back with each templated field converted to its type; entries
# batched, 10 a request, a message with 12 entries split over requests;
# every value type; a value that does not convert fails the message
# before anything is sent; a timestamp out of range and entries rejected
# by the service give one error document per message (naming the failed
# entry's property), the accepted entries never resent; entries
# throttled and whole requests throttled or 503 are retried; a configured
# AWS_ENDPOINT_URL_IOTSITEWISE used as given, AWS's own
# data.iotsitewise.REGION.amazonaws.com without one.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../backends/lib.sh"
. "$(dirname "$0")/awslib.sh"
echo "1..13"
backends_start recorder || exit 1
aws_env
export AWS_ENDPOINT_URL_IOTSITEWISE="https://localhost:$BK_RECORDER_PORT"
mkdir -p "$T/rules"
ROLE=arn:aws:iam::123456789012:role/aws_iot_sitewise
ASSET=a1b2c3d4-0000-4000-8000-00000000000a
PROP=a1b2c3d4-0000-4000-8000-00000000000b
errors() { printf '"errorAction": {"republish": {"topic": "%s", "qos": 1, "roleArn": "%s"}}' "$1" "$ROLE"; }
NOW='${floor(timestamp() / 1E3)}'
cat > "$T/rules/to_sitewise.json" <<JSON
{"topicRulePayload": {"sql": "SELECT * FROM '/company/windfarm/+/turbine/+/+'", "ruleDisabled": false,
 "awsIotSqlVersion": "2016-03-23",
 "actions": [{"iotSiteWise": {"putAssetPropertyValueEntries": [
   {"entryId": "\${seq}_t", "propertyAlias": "\${topic()}",
    "propertyValues": [{"timestamp": {"timeInSeconds": "$NOW", "offsetInNanos": "\${(timestamp() % 1E3) * 1E6}"},
                        "value": {"doubleValue": "\${temp * 1.5}"}}]},
   {"entryId": "\${seq}_n", "assetId": "$ASSET", "propertyId": "$PROP",
    "propertyValues": [{"timestamp": {"timeInSeconds": "$NOW"}, "quality": "GOOD", "value": {"integerValue": "\${seq}"}}]}],
   "roleArn": "$ROLE"}}],
 $(errors errors/sw)}}
JSON
cat > "$T/rules/types.json" <<JSON
{"sql": "SELECT * FROM 'sw/types'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"iotSiteWise": {"putAssetPropertyValueEntries": [
   {"propertyAlias": "/types/string", "propertyValues": [{"timestamp": {"timeInSeconds": "$NOW"}, "value": {"stringValue": "\${device}"}}]},
   {"propertyAlias": "/types/boolean", "propertyValues": [{"timestamp": {"timeInSeconds": "$NOW"}, "quality": "UNCERTAIN", "value": {"booleanValue": "\${temp > 20}"}}]},
   {"propertyAlias": "/types/integer", "propertyValues": [{"timestamp": {"timeInSeconds": "$NOW"}, "quality": "BAD", "value": {"integerValue": "\${seq}"}}]},
   {"propertyAlias": "/types/double", "propertyValues": [{"timestamp": {"timeInSeconds": "$NOW", "offsetInNanos": "5"}, "value": {"doubleValue": "\${temp / 4.0}"}}]}],
   "roleArn": "$ROLE"}}]}
JSON
many=$(awk 'BEGIN { for (i = 0; i < 12; i++) printf "%s{\"entryId\": \"${seq}_%d\", \"propertyAlias\": \"/many/%d\", \"propertyValues\": [{\"timestamp\": {\"timeInSeconds\": \"${floor(timestamp() / 1E3)}\"}, \"value\": {\"integerValue\": \"%d\"}}]}", i ? "," : "", i, i, i }')
cat > "$T/rules/many.json" <<JSON
{"sql": "SELECT * FROM 'sw/many'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"iotSiteWise": {"putAssetPropertyValueEntries": [$many], "roleArn": "$ROLE"}}]}
JSON
cat > "$T/rules/bad.json" <<JSON
{"sql": "SELECT * FROM 'sw/bad/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"iotSiteWise": {"putAssetPropertyValueEntries": [
   {"propertyAlias": "/bad/alias", "propertyValues": [{"timestamp": {"timeInSeconds": "$NOW"}, "value": {"integerValue": "\${topic(3)}"}}]}],
   "roleArn": "$ROLE"}}], $(errors errors/swbad)}
JSON
cat > "$T/rules/old.json" <<JSON
{"sql": "SELECT * FROM 'sw/old'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"iotSiteWise": {"putAssetPropertyValueEntries": [
   {"entryId": "\${seq}_new", "propertyAlias": "/old/fresh", "propertyValues": [{"timestamp": {"timeInSeconds": "$NOW"}, "value": {"doubleValue": "\${temp}"}}]},
   {"entryId": "\${seq}_old", "propertyAlias": "/old/stale", "propertyValues": [{"timestamp": {"timeInSeconds": "\${floor(timestamp() / 1E3) - 864000}"}, "value": {"doubleValue": "\${temp}"}}]}],
   "roleArn": "$ROLE"}}], $(errors errors/swold)}
JSON
aws_pipeline || exit 1
wait_until 20 sink_ready iotsitewise
ok "sink_ready iotsitewise" "the iotsitewise sink runs"
errors_sub

# Read-back as in sink_iotanalytics.t: chk.py for this action's own
# checks, svc_iot for the ones the IoT batch sinks share.
fetch() { bk_ctl GET svc/iotsitewise/accepted > "$T/acc.json" && bk_requests iotsitewise > "$T/reqs.json"; }
chk() { "$BK_PY" "$T/chk.py" "$T" "$BK_HOME" "$@"; }
svc_iot() { "$BK_PY" "$BK_HOME/svc_iot.py" "$T" "$@"; }
cat > "$T/chk.py" <<'PY'
import json, re, sys, time
T, home, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
sys.path.insert(0, home)
from svc_iot import seq_of
acc = json.load(open(T + "/acc.json"))
reqs = [r for r in json.load(open(T + "/reqs.json")) if r["body"]]
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
def entries(r): return json.loads(r["body"])["entries"]
def count(lo, hi, prefix=None):
    """Accepted entries of seqs lo..hi, or (prefix) whose alias starts so."""
    if prefix:
        return str(sum(1 for a in acc if a.get("propertyAlias", "").startswith(prefix)))
    return str(sum(1 for a in acc if int(lo) <= (seq_of(a) or 0) <= int(hi)))
def settled(lo, hi, k, topic):
    """Messages of seqs lo..hi with all k entries accepted or an error document."""
    n = {}
    for a in acc:
        n[seq_of(a)] = n.get(seq_of(a), 0) + 1
    docs = {json.loads(__import__("base64").b64decode(json.loads(l.split(" ", 1)[1])["base64OriginalPayload"]))["seq"]
            for l in open(T + "/errors.txt") if l.startswith(topic + " {")}
    return str(sum(1 for q in range(int(lo), int(hi) + 1) if q in docs or n.get(q) == int(k)))
def main(host, asset, prop):
    now, bad, seen = time.time(), [], set()
    for a in acc:
        q = seq_of(a)
        if q is None or not 1 <= q <= 500:
            continue
        seen.add(a["entryId"])
        v, = a["propertyValues"]
        ts = v["timestamp"]
        ok = a["host"] == host and now - 120 <= ts["timeInSeconds"] <= now + 5
        if a["entryId"] == "%d_t" % q:
            ok = ok and a.get("propertyAlias") == "/company/windfarm/3/turbine/%d/rpm" % (1 if q <= 250 else 2) \
                and v["value"] == {"doubleValue": (q % 50) * 1.5} and set(v) == {"timestamp", "value"} \
                and ts["offsetInNanos"] % 1000000 == 0 and 0 <= ts["offsetInNanos"] < 10 ** 9 and type(ts["offsetInNanos"]) is int
        else:
            ok = ok and a["entryId"] == "%d_n" % q and a.get("assetId") == asset and a.get("propertyId") == prop \
                and "propertyAlias" not in a and v["value"] == {"integerValue": q} and v.get("quality") == "GOOD" \
                and set(ts) == {"timeInSeconds"}
        if not ok:
            bad.append(a)
    want = {"%d_%s" % (q, k) for q in range(1, 501) for k in "tn"}
    if bad or seen != want:
        return "%d entries of 1000 accepted, %d wrong: %r" % (len(seen & want), len(bad), bad[:1])
    main = [r for r in reqs if any(1 <= (seq_of(e) or 0) <= 500 and "_" in e["entryId"] for e in entries(r))]
    n = [len(entries(r)) for r in main]
    if any(r["path"] != "/properties" or set(json.loads(r["body"])) != {"entries"} or r["headers"]["content-type"] != "application/json"
           or "/iotsitewise/aws4_request" not in r["headers"]["authorization"] for r in main) or max(n) > 10 or sum(n) != 1000:
        return "requests: %d, sizes %s" % (len(main), n)
    return "ok 1000 entries in %d requests of at most %d, Host %s" % (len(main), max(n), host)
def types():
    out = {}
    for a in acc:
        if a.get("propertyAlias", "").startswith("/types/"):
            v, = a["propertyValues"]
            val = {"doubleValue": float(v["value"]["doubleValue"])} if "doubleValue" in v["value"] else v["value"]
            out.setdefault(a["propertyAlias"], []).append((val, v.get("quality"), v["timestamp"].get("offsetInNanos"), a["entryId"]))
    want = {"/types/string": [({"stringValue": "d%d" % (i % 7)}, None, None) for i in range(818, 823)],
            "/types/boolean": [({"booleanValue": i % 50 > 20}, "UNCERTAIN", None) for i in range(818, 823)],
            "/types/integer": [({"integerValue": i}, "BAD", None) for i in range(818, 823)],
            "/types/double": [({"doubleValue": (i % 50) / 4}, None, 5) for i in range(818, 823)]}
    got = {k: sorted((x[:3] for x in v), key=json.dumps) for k, v in out.items()}
    ids = [x[3] for v in out.values() for x in v]
    if got != {k: sorted(v, key=json.dumps) for k, v in want.items()}:
        return "values: %r" % got
    if len(set(ids)) != 20 or not all(UUID.match(i) for i in ids):
        return "entryIds are not 20 distinct UUIDs"
    return "ok"
def many():
    got = sorted((seq_of(a), a["propertyAlias"], a["propertyValues"][0]["value"]["integerValue"]) for a in acc if a.get("propertyAlias", "").startswith("/many/"))
    want = sorted((q, "/many/%d" % i, i) for q in (901, 902, 903) for i in range(12))
    n = [len(entries(r)) for r in reqs if any(e.get("propertyAlias", "").startswith("/many/") for e in entries(r))]
    return "ok 36 entries in requests of %s entries" % sorted(n) if got == want and max(n) <= 10 else \
        "%d of 36 accepted, requests %s" % (len(got), n)
def bad():
    d = [json.loads(l.split(" ", 1)[1]) for l in open(T + "/errors.txt") if l.startswith("errors/swbad {")]
    sent = [e for r in reqs for e in entries(r) if e.get("propertyAlias") == "/bad/alias"]
    f = d[0]["failures"][0] if d else {}
    ok = (len(d) == 1 and f.get("failedAction") == "IotSiteWiseAction" and f.get("failedResource") == "/bad/alias"
          and 'the integerValue \\"abc\\" is not a 32-bit integer' in json.dumps(f.get("errorMessage")) and not sent)
    return "ok" if ok else "%d documents %r, %d sent" % (len(d), f, len(sent))
def host(want):
    a = [x for x in acc if x.get("propertyAlias", "").startswith("/company/windfarm/9/")]
    return "ok" if len(a) == 5 and all(x["host"] == want for x in a) else "%d accepted, hosts %s" % (len(a), {x["host"] for x in a})
print({"count": count, "settled": settled, "main": main, "types": types, "many": many, "bad": bad, "host": host}[cmd](*args))
PY
have() { fetch && [ "$(chk count "$2" "$3" "${4:-}")" -ge "$1" ]; }
errs() { [ "$(grep -c "^$1 {" "$T/errors.txt")" -ge "$2" ]; }
pass() { case "$res" in ok*) true ;; *) false ;; esac; }

publish /company/windfarm/3/turbine/1/rpm 250 1 &
P1=$!
publish /company/windfarm/3/turbine/2/rpm 250 251
wait $P1
wait_until 30 have 1000 1 500
fetch
res=$(chk main "localhost:$BK_RECORDER_PORT" "$ASSET" "$PROP")
ok pass "500 messages, 1,000 entries accepted once: alias \${topic()}, doubleValue, integerValue, quality, entryId, timeInSeconds and offsetInNanos converted; to the configured endpoint as given ($res)"
set -- $(sigs_checked iotsitewise)
reqs=$1 valid=$2
ok '[ "$reqs" -gt 0 ] && [ "$reqs" -eq "$valid" ]' "every request's SigV4 signature verified by the recorder ($valid of $reqs)"

publish sw/types 5 818
publish sw/many 3 901
wait_until 20 have 20 0 0 /types/
wait_until 20 have 36 901 903 /many/
fetch
res=$(chk types)
ok '[ "$res" = ok ]' "every value type: stringValue, booleanValue (true/false), integerValue, doubleValue, quality, offsetInNanos; entryId a new UUID when not given ($res)"
res=$(chk many)
ok pass "a message with 12 entries: split over requests of at most 10, all accepted ($res)"

mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t sw/bad/abc -m '{"seq":1}'
wait_until 10 errs errors/swbad 1
fetch
res=$(chk bad)
ok '[ "$res" = ok ]' "a value that does not convert: an error document naming the entry's alias, nothing sent ($res)"

# A timestamp out of range (10 days old): that entry fails, the message's
# other entry is accepted and not resent; the document names the stale one.
publish sw/old 10 8001
wait_until 20 errs errors/swold 10
fetch
res=$(svc_iot rejected iotsitewise 8001 8010 errors/swold TimestampOutOfRangeException IotSiteWiseAction /old/stale)
ok pass "timestamp out of range: one error document per message naming the failed entry's property; its other entry accepted once ($res)"

# Entries rejected by the service.
bk_ctl POST 'partial?service=iotsitewise&count=100&every=3&code=InvalidRequestException' > /dev/null
publish /company/windfarm/3/turbine/3/rpm 100 3001
rej() { fetch && [ "$(chk settled 3001 3100 2 errors/sw)" -ge 100 ]; }
wait_until 20 rej
bk_ctl POST reset > /dev/null   # the partial rule's uses left
res=$(svc_iot rejected iotsitewise 3001 3100 errors/sw InvalidRequestException IotSiteWiseAction '*')
ok pass "partial failure: one error document per message with a rejected entry, accepted entries not resent ($res)"

# Throttled entries, then whole requests throttled (429) and 503.
bk_ctl POST 'partial?service=iotsitewise&count=4&every=3&code=ThrottlingException' > /dev/null
publish /company/windfarm/3/turbine/4/rpm 50 4001
wait_until 5 have 1 4001 4050
bk_ctl POST 'fail?status=429&code=ThrottlingException&count=2&service=iotsitewise' > /dev/null
bk_ctl POST 'fail?status=503&code=ServiceUnavailableException&count=2&service=iotsitewise' > /dev/null
publish /company/windfarm/3/turbine/4/rpm 50 4051
wait_until 30 have 200 4001 4100
fetch
res=$(svc_iot throttled iotsitewise 4001 4100)
ok pass "throttling: entries and whole requests retried, every entry accepted once ($res)"
stop_checked
ok '[ -z "$restarts" ] && [ -z "$sanitizer" ]' "no stage restarted, no sanitizer report"
printf '%s\n%s\n' "$restarts" "$sanitizer" | grep . | sed 's/^/# /'

# No endpoint configured: AWS's own host, data.iotsitewise.REGION.amazonaws.com
# (its connections sent to the recorder).
unset AWS_ENDPOINT_URL AWS_ENDPOINT_URL_IOTSITEWISE
export IOTRULES_AWS_CONNECT_TO="data.iotsitewise.us-east-1.amazonaws.com:443:127.0.0.1:$BK_RECORDER_PORT"
restart_pipeline || exit 1
wait_until 20 sink_ready iotsitewise
publish /company/windfarm/9/turbine/1/rpm 5 7001
wait_until 20 have 10 7001 7005
fetch
res=$(chk host data.iotsitewise.us-east-1.amazonaws.com)
ok '[ "$res" = ok ]' "no endpoint configured: to data.iotsitewise.us-east-1.amazonaws.com ($res)"
set -- $(sigs_checked iotsitewise)
reqs=$1 valid=$2
ok '[ "$reqs" -gt 0 ] && [ "$reqs" -eq "$valid" ]' "every request's signature valid, all phases ($valid of $reqs)"
stop_checked
ok '[ -z "$restarts" ] && [ -z "$sanitizer" ]' "after the restart too: no stage restarted, no sanitizer report"
