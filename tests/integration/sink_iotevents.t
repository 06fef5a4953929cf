#!/bin/sh
# The iotEvents action against the recorder (tests/backends/svc_iot.py
# answers the iotevents-data BatchPutMessage with the API's shapes and
# checks every SigV4 signature, signing name ioteventsdata): 500 QoS 1
# messages through a rule as AWS's page writes it (messageId
# ${newuuid()}), the input name templated, every accepted message read
# back; messages batched, at most 10 and 1 KiB of payloads a request; a
# configured AWS_ENDPOINT_URL_IOT_EVENTS_DATA used as given, AWS's own
# host data.iotevents.REGION.amazonaws.com without one; a templated
# messageId that repeats never twice in one request; batchMode (at most
# 10 elements, no messageId with it); a missing input and entries rejected
# by the service give one error document per message, the accepted ones
# never resent; entries throttled and whole requests throttled or 503 are
# retried.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../backends/lib.sh"
. "$(dirname "$0")/awslib.sh"
echo "1..15"
backends_start recorder || exit 1
aws_env
export AWS_ENDPOINT_URL_IOT_EVENTS_DATA="https://localhost:$BK_RECORDER_PORT"
mkdir -p "$T/rules"
ROLE=arn:aws:iam::123456789012:role/aws_iot_events
errors() { printf '"errorAction": {"republish": {"topic": "%s", "qos": 1, "roleArn": "%s"}}' "$1" "$ROLE"; }
cat > "$T/rules/to_events.json" <<JSON
{"topicRulePayload": {"sql": "SELECT * FROM 'ev/+/data'", "ruleDisabled": false, "awsIotSqlVersion": "2016-03-23",
 "actions": [{"iotEvents": {"inputName": "In_\${topic(2)}", "messageId": "\${newuuid()}", "roleArn": "$ROLE"}}],
 $(errors errors/ev)}}
JSON
cat > "$T/rules/same_id.json" <<JSON
{"sql": "SELECT * FROM 'evd/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"iotEvents": {"inputName": "dup_in", "messageId": "\${topic(2)}", "roleArn": "$ROLE"}}], $(errors errors/evd)}
JSON
cat > "$T/rules/batch.json" <<JSON
{"sql": "SELECT VALUE readings FROM 'evb/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"iotEvents": {"inputName": "batch_in", "batchMode": true, "roleArn": "$ROLE"}}], $(errors errors/evb)}
JSON
cat > "$T/both.json" <<JSON
{"sql": "SELECT VALUE readings FROM 'evx/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"iotEvents": {"inputName": "batch_in", "batchMode": true, "messageId": "m1", "roleArn": "$ROLE"}}], $(errors errors/evx)}
JSON
cat > "$T/rules/missing.json" <<JSON
{"sql": "SELECT * FROM 'evmiss/#'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"iotEvents": {"inputName": "gone_in", "roleArn": "$ROLE"}}], $(errors errors/evm)}
JSON
aws_pipeline || exit 1
wait_until 20 sink_ready iotevents
ok "sink_ready iotevents" "the iotevents sink runs"
errors_sub

# Read-back as in sink_iotanalytics.t: chk.py for this action's own
# checks, svc_iot for the ones the IoT batch sinks share.
fetch() { bk_ctl GET svc/ioteventsdata/accepted > "$T/acc.json" && bk_requests ioteventsdata > "$T/reqs.json"; }
chk() { "$BK_PY" "$T/chk.py" "$T" "$@"; }
svc_iot() { "$BK_PY" "$BK_HOME/svc_iot.py" "$T" "$@"; }
cat > "$T/chk.py" <<'PY'
import base64, json, re, sys
T, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3:]
acc = json.load(open(T + "/acc.json"))
reqs = [r for r in json.load(open(T + "/reqs.json")) if r["body"]]
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
def p(a): return json.loads(a["payload_text"])
def docs(topic):
    return [json.loads(l.split(" ", 1)[1]) for l in open(T + "/errors.txt") if l.startswith(topic + " {")]
def msgs(r): return json.loads(r["body"])["messages"]
def count(inp, lo="1", hi="1e9"):
    return str(sum(1 for a in acc if a["inputName"].startswith(inp) and int(lo) <= p(a)["seq"] <= float(hi)))
def main(host):
    mine = [a for a in acc if a["inputName"] in ("In_dev1", "In_dev2")]
    if sorted(p(a)["seq"] for a in mine) != list(range(1, 501)):
        return "accepted seqs are not 1..500 once each (%d)" % len(mine)
    bad = [a for a in mine if p(a) != {"device": "d%d" % (p(a)["seq"] % 7), "seq": p(a)["seq"], "temp": p(a)["seq"] % 50}
           or a["inputName"] != ("In_dev1" if p(a)["seq"] <= 250 else "In_dev2") or not UUID.match(a["messageId"]) or a["host"] != host]
    if bad or len({a["messageId"] for a in mine}) != 500:
        return "bad message %r" % (bad[:1],)
    main = [r for r in reqs if any(m["inputName"] in ("In_dev1", "In_dev2") for m in msgs(r))]
    n = [len(msgs(r)) for r in main]
    if any(r["path"] != "/inputs/messages" or r["headers"]["content-type"] != "application/json" or set(json.loads(r["body"])) != {"messages"}
           or "/ioteventsdata/aws4_request" not in r["headers"]["authorization"] for r in main) or max(n) > 10 or sum(n) != 500:
        return "requests: %d, sizes %s" % (len(main), n)
    return "ok %d requests for 500, at most %d messages each, Host %s" % (len(main), max(n), host)
def same_id():
    a = sorted((x["messageId"], p(x)["seq"]) for x in acc if x["inputName"] == "dup_in")
    want = sorted([("a", i) for i in range(1, 21)] + [("b", i) for i in range(101, 121)])
    rs = [r for r in reqs if any(m["inputName"] == "dup_in" for m in msgs(r))]
    dup = [r for r in rs if len({m["messageId"] for m in msgs(r)}) != len(msgs(r))]
    return "ok %d requests for 40" % len(rs) if a == want and not dup and rs and all(r["status"] == 200 for r in rs) else \
        "accepted %d of 40, %d requests with a messageId twice" % (len(a), len(dup))
def big():
    a = sorted(p(x)["seq"] for x in acc if x["inputName"] == "In_big")
    rs = [[m for m in msgs(r) if m["inputName"] == "In_big"] for r in reqs]
    most = max(len(x) for x in rs)
    total = max(sum(len(base64.b64decode(m["payload"])) for m in msgs(r)) for r in reqs)
    d = docs("errors/ev")
    one = [x for x in d if json.loads(base64.b64decode(x["base64OriginalPayload"]))["seq"] == 999]
    if a != list(range(1, 10)) or most > 2 or total > 1024:
        return "accepted %s; at most %d of them in a request, %d payload bytes" % (a, most, total)
    if len(one) != 1 or "larger than 1024 bytes" not in one[0]["failures"][0]["errorMessage"]:
        return "the 1100-byte message: %r" % one
    return "ok at most %d 400-byte messages a request, at most %d payload bytes in any" % (most, total)
def batch():
    b = sorted((p(x)["seq"], p(x).get("k")) for x in acc if x["inputName"] == "batch_in")
    want = sorted([(i, k) for i in range(1, 11) for k in range(3)] + [(50, None)])
    ids = [x["messageId"] for x in acc if x["inputName"] == "batch_in"]
    big = docs("errors/evb")
    if b != want or len(set(ids)) != len(ids) or not all(UUID.match(i) for i in ids):
        return "batch_in holds %d messages (want 31, each its own UUID)" % len(b)
    if len(big) != 1 or "too many elements (at most 10)" not in big[0]["failures"][0]["errorMessage"] or any(s == 99 for s, _ in b):
        return "11 elements: %r" % big
    return "ok"
def host(want):
    a = [x for x in acc if x["inputName"] == "In_aws"]
    return "ok" if len(a) == 5 and all(x["host"] == want for x in a) else "%d accepted, hosts %s" % (len(a), {x["host"] for x in a})
f = {"count": count, "main": main, "same_id": same_id, "big": big, "batch": batch, "host": host}[cmd]
print(f(*args))
PY
have() { fetch && [ "$(chk count "$1" "${3:-1}" "${4:-1e9}")" -ge "$2" ]; }
errs() { [ "$(grep -c "^$1 {" "$T/errors.txt")" -ge "$2" ]; }
pass() { case "$res" in ok*) true ;; *) false ;; esac; }

publish ev/dev1/data 250 1 &
P1=$!
publish ev/dev2/data 250 251
wait $P1
wait_until 30 have In_dev 500
fetch
res=$(chk main "localhost:$BK_RECORDER_PORT")
ok pass "500 messages accepted once each by In_\${topic(2)}, payload the SQL result, messageId the rendered \${newuuid()}; batched POST /inputs/messages to the configured endpoint as given ($res)"
set -- $(sigs_checked ioteventsdata)
reqs=$1 valid=$2
ok '[ "$reqs" -gt 0 ] && [ "$reqs" -eq "$valid" ]' "every request's SigV4 signature (ioteventsdata) verified by the recorder ($valid of $reqs)"

# A templated messageId that repeats: never twice in one request.
publish evd/a 20 1 &
P1=$!
publish evd/b 20 101
wait $P1
wait_until 20 have dup_in 40
fetch
res=$(chk same_id)
ok pass "messageId \${topic(2)}: 40 messages with 2 ids accepted, no request carrying one id twice ($res)"

# Payloads: at most 1 KiB a request; one message over 1 KiB fails.
pad=$(printf '%0380d' 0)
awk -v pad="$pad" 'BEGIN { for (i = 1; i <= 9; i++) printf "{\"seq\":%d,\"pad\":\"%s\"}\n", i, pad }' \
    | mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t ev/big/data -l
printf '{"seq":999,"pad":"%s"}' "$(printf '%01100d' 0)" | mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t ev/big/data -s
wait_until 20 have In_big 9
wait_until 10 errs errors/ev 1
fetch
res=$(chk big)
ok pass "9 messages of 400 bytes in requests of at most 1 KiB of payloads; one of 1,100 bytes: an error document ($res)"

# batchMode: 10 arrays of 3 → 30 messages, a non-array → 1; 11 elements
# and a messageId with batchMode: failures.
awk 'BEGIN { for (i = 1; i <= 10; i++) printf "{\"readings\":[{\"seq\":%d,\"k\":0},{\"seq\":%d,\"k\":1},{\"seq\":%d,\"k\":2}]}\n", i, i, i }' \
    | mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t evb/arr -l
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t evb/one -m '{"readings":{"seq":50}}'
awk 'BEGIN { printf "{\"readings\":["; for (k = 0; k < 11; k++) printf "%s{\"seq\":99,\"k\":%d}", k ? "," : "", k; print "]}" }' \
    | mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t evb/big -l
wait_until 20 have batch_in 31
fetch
res=$(chk batch)
ok '[ "$res" = ok ]' "batchMode: one message per element, each its own UUID (30), a non-array one message; 11 elements: one error document ($res)"
both=$("$BIN/iotrules" check "$T/both.json" 2>&1)
ok 'echo "$both" | grep -q "^ERROR .*iotEvents: a messageId may not be set when batchMode is true"' "batchMode with a messageId: the rule is refused (ACTIONS.md 2.10): $both"

# A missing input: its messages fail (per entry, ResourceNotFoundException),
# the others of the same requests pass.
bk_ctl POST 'svc/ioteventsdata/missing?name=gone_in' > /dev/null
publish evmiss/x 10 9001 &
P1=$!
publish ev/dev5/data 50 5001
wait $P1
wait_until 20 errs errors/evm 10
wait_until 10 have In_dev5 50
fetch
res=$(svc_iot rejected ioteventsdata 9001 9010 errors/evm ResourceNotFoundException IotEventsAction gone_in)
ok pass "missing input: one error document per message, naming IotEventsAction and the input ($res)"
ok '[ "$(chk count In_dev5)" -eq 50 ]' "the messages sharing those requests all accepted ($(chk count In_dev5) of 50)"

# Entries rejected by the service.
bk_ctl POST 'partial?service=ioteventsdata&count=100&every=4&code=InvalidRequestException' > /dev/null
publish ev/dev3/data 100 3001
rej() { fetch && [ $(($(chk count In_dev3) + $(grep -c '^errors/ev {' "$T/errors.txt") - 1)) -ge 100 ]; }
wait_until 20 rej
fetch
bk_ctl POST reset > /dev/null   # the partial rule's uses left
res=$(svc_iot rejected ioteventsdata 3001 3100 errors/ev InvalidRequestException IotEventsAction In_dev3)
ok pass "partial failure: one error document per rejected message, accepted ones not resent ($res)"

# Throttled entries, then whole requests throttled (429) and 503.
bk_ctl POST 'partial?service=ioteventsdata&count=4&every=3&code=ThrottlingException' > /dev/null
publish ev/dev4/data 50 4001
wait_until 5 have In_dev4 1
bk_ctl POST 'fail?status=429&code=ThrottlingException&count=2&service=ioteventsdata' > /dev/null
bk_ctl POST 'fail?status=503&code=ServiceUnavailableException&count=2&service=ioteventsdata' > /dev/null
publish ev/dev4/data 50 4051
wait_until 30 have In_dev4 100
fetch
res=$(svc_iot throttled ioteventsdata 4001 4100)
ok pass "throttling: entries and whole requests retried, every message accepted once ($res)"
stop_checked
ok '[ -z "$restarts" ] && [ -z "$sanitizer" ]' "no stage restarted, no sanitizer report"
printf '%s\n%s\n' "$restarts" "$sanitizer" | grep . | sed 's/^/# /'

# No endpoint configured: AWS's own host, data.iotevents.REGION.amazonaws.com
# (its connections sent to the recorder).
unset AWS_ENDPOINT_URL AWS_ENDPOINT_URL_IOT_EVENTS_DATA
export IOTRULES_AWS_CONNECT_TO="data.iotevents.us-east-1.amazonaws.com:443:127.0.0.1:$BK_RECORDER_PORT"
restart_pipeline || exit 1
wait_until 20 sink_ready iotevents
publish ev/aws/data 5 7001
wait_until 20 have In_aws 5
fetch
res=$(chk host data.iotevents.us-east-1.amazonaws.com)
ok '[ "$res" = ok ]' "no endpoint configured: to data.iotevents.us-east-1.amazonaws.com ($res)"
set -- $(sigs_checked ioteventsdata)
reqs=$1 valid=$2
ok '[ "$reqs" -gt 0 ] && [ "$reqs" -eq "$valid" ]' "every request's signature valid, all phases ($valid of $reqs)"
stop_checked
ok '[ -z "$restarts" ] && [ -z "$sanitizer" ]' "after the restart too: no stage restarted, no sanitizer report"
