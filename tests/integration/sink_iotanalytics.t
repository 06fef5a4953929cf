#!/bin/sh
# The iotAnalytics action against the recorder (tests/backends/svc_iot.py
# answers BatchPutMessage with the API's shapes and checks every SigV4
# signature): 500 QoS 1 messages through a rule as AWS's page writes it,
# the channel name templated, every accepted message read back (channel,
# messageId, payload), messages batched (at most 100 a request); batchMode:
# one message per array element, more than 100 a failure; a partial
# failure (entries rejected in batchPutMessageErrorEntries) gives one
# error document per rejected message and resends none of the accepted;
# entries throttled, and whole requests throttled or 503, are retried; a
# missing channel gives one error document per message; a channelArn
# picks the channel's name and its region's AWS host.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../backends/lib.sh"
. "$(dirname "$0")/awslib.sh"
echo "1..13"
backends_start recorder || exit 1
aws_env
mkdir -p "$T/rules"
ROLE=arn:aws:iam::123456789012:role/analyticsRole
cat > "$T/rules/to_analytics.json" <<JSON
{"topicRulePayload": {"sql": "SELECT * FROM 'an/+/data'", "ruleDisabled": false, "awsIotSqlVersion": "2016-03-23",
 "actions": [{"iotAnalytics": {"channelName": "ch_\${topic(2)}", "roleArn": "$ROLE"}}],
 "errorAction": {"republish": {"topic": "errors/an", "qos": 1, "roleArn": "$ROLE"}}}}
JSON
cat > "$T/rules/batch.json" <<JSON
{"sql": "SELECT VALUE readings FROM 'anb/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"iotAnalytics": {"channelName": "batch_ch", "batchMode": true, "roleArn": "$ROLE"}}],
 "errorAction": {"republish": {"topic": "errors/anb", "qos": 1, "roleArn": "$ROLE"}}}
JSON
cat > "$T/rules/missing.json" <<JSON
{"sql": "SELECT * FROM 'anmiss/#'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"iotAnalytics": {"channelName": "gone_ch", "roleArn": "$ROLE"}}],
 "errorAction": {"republish": {"topic": "errors/anm", "qos": 1, "roleArn": "$ROLE"}}}
JSON
cat > "$T/rules/arn.json" <<JSON
{"sql": "SELECT * FROM 'anarn/#'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"iotAnalytics": {"channelArn": "arn:aws:iotanalytics:us-east-1:123456789012:channel/arn_ch", "roleArn": "$ROLE"}}]}
JSON
aws_pipeline || exit 1
wait_until 20 sink_ready iotanalytics
ok "sink_ready iotanalytics" "the iotanalytics sink runs"
errors_sub

# Read-back: fetch saves the accepted messages and the recorded requests;
# chk.py CMD ARGS checks them, printing "ok" or what is wrong; svc_iot
# (rejected, throttled) has the checks the three IoT batch sinks share.
fetch() { bk_ctl GET svc/iotanalytics/accepted > "$T/acc.json" && bk_requests iotanalytics > "$T/reqs.json"; }
chk() { "$BK_PY" "$T/chk.py" "$T" "$@"; }
svc_iot() { "$BK_PY" "$BK_HOME/svc_iot.py" "$T" "$@"; }
cat > "$T/chk.py" <<'PY'
import base64, json, re, sys
T, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3:]
acc = json.load(open(T + "/acc.json"))
reqs = [r for r in json.load(open(T + "/reqs.json")) if r["path"] == "/messages/batch"]
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
def msg(s): return {"device": "d%d" % (s % 7), "seq": s, "temp": s % 50}
def seq(b64): return json.loads(base64.b64decode(b64))["seq"]
def docs(topic):
    out = []
    for line in open(T + "/errors.txt"):
        t, _, d = line.rstrip("\n").partition(" ")
        if t == topic and d.startswith("{"):
            out.append(json.loads(d))
    return out
def count(prefix, lo="1", hi="1e9"):
    print(sum(1 for a in acc if a["channelName"].startswith(prefix) and int(lo) <= json.loads(a["payload_text"])["seq"] <= float(hi)))
def main():
    mine = [a for a in acc if a["channelName"] in ("ch_dev1", "ch_dev2")]
    seqs = sorted(json.loads(a["payload_text"])["seq"] for a in mine)
    if seqs != list(range(1, 501)):
        return "accepted seqs are not 1..500 once each (%d accepted)" % len(seqs)
    for a in mine:
        p = json.loads(a["payload_text"])
        want = "ch_dev1" if p["seq"] <= 250 else "ch_dev2"
        if p != msg(p["seq"]) or a["channelName"] != want:
            return "message %r went to %s as %r" % (p["seq"], a["channelName"], p)
    ids = [a["messageId"] for a in mine]
    if len(set(ids)) != 500 or not all(UUID.match(i) for i in ids):
        return "messageIds are not 500 distinct UUIDs"
    main = [r for r in reqs if json.loads(r["body"])["channelName"] in ("ch_dev1", "ch_dev2")]
    n = [len(json.loads(r["body"])["messages"]) for r in main]
    bad = [r for r in main if r["method"] != "POST" or r["headers"]["content-type"] != "application/json"
           or set(json.loads(r["body"])) != {"channelName", "messages"} or r["status"] != 200]
    if bad or max(n) > 100 or sum(n) != 500 or len(main) >= 500:
        return "requests: %d bad, %d requests, sizes %s" % (len(bad), len(main), n)
    return "ok %d requests, at most %d messages each" % (len(main), max(n))
def batch():
    b = sorted((json.loads(a["payload_text"])["seq"], json.loads(a["payload_text"]).get("k")) for a in acc if a["channelName"] == "batch_ch")
    want = sorted([(i, k) for i in range(1, 21) for k in range(5)] + [(i, None) for i in range(101, 106)])
    if b != want:
        return "batch_ch holds %d messages, not the 105 expected" % len(b)
    d = docs("errors/anb")
    if len(d) != 1 or "too many elements (at most 100)" not in d[0]["failures"][0]["errorMessage"] or any(s[0] == 999 for s in b):
        return "the 101-element array: %d documents %s" % (len(d), [x["failures"] for x in d])
    return "ok"
def missing():
    d = docs("errors/anm")
    ok = len(d) == 10 and all(x["failures"][0]["failedAction"] == "IotAnalyticsAction" and x["failures"][0]["failedResource"] == "gone_ch"
                              and "ResourceNotFoundException" in x["failures"][0]["errorMessage"] for x in d)
    return "ok" if ok else "%d documents: %s" % (len(d), d[:1])
def arn():
    a = [x for x in acc if x["channelName"] == "arn_ch"]
    r = [x for x in reqs if json.loads(x["body"])["channelName"] == "arn_ch"]
    ok = (len(a) == 5 and all(x["host"] == "iotanalytics.us-east-1.amazonaws.com" for x in a)
          and all("/us-east-1/iotanalytics/aws4_request" in x["headers"]["authorization"] for x in r))
    return "ok" if ok else "%d accepted, hosts %s" % (len(a), sorted({x["host"] for x in a}))
r = {"count": lambda: count(*args)}.get(cmd)
if r:
    r()
else:
    print({"main": main, "batch": batch, "missing": missing, "arn": arn}[cmd]())
PY
have() { fetch && [ "$(chk count "$1" "${3:-1}" "${4:-1e9}")" -ge "$2" ]; }
errs() { [ "$(grep -c "^$1 {" "$T/errors.txt")" -ge "$2" ]; }
pass() { case "$res" in ok*) true ;; *) false ;; esac; }

publish an/dev1/data 250 1 &
P1=$!
publish an/dev2/data 250 251
wait $P1
wait_until 30 have ch_dev 500
fetch
res=$(chk main)
ok 'case "$res" in ok*) true ;; *) false ;; esac' \
    "500 messages accepted once each in ch_\${topic(2)}, payload the SQL result, messageId a fresh UUID; POST /messages/batch, batched ($res)"
set -- $(sigs_checked iotanalytics)
reqs=$1 valid=$2
ok '[ "$reqs" -gt 0 ] && [ "$reqs" -eq "$valid" ]' "every request's SigV4 signature verified by the recorder ($valid of $reqs)"

# batchMode: 20 arrays of 5 → 100 messages; 5 objects → one each; an
# array of 101 → a failure, nothing sent.
awk 'BEGIN { for (i = 1; i <= 20; i++) { printf "{\"readings\":["; for (k = 0; k < 5; k++) printf "%s{\"seq\":%d,\"k\":%d}", k ? "," : "", i, k; print "]}" } }' \
    | mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t anb/arr -l
awk 'BEGIN { for (i = 101; i <= 105; i++) printf "{\"readings\":{\"seq\":%d}}\n", i }' \
    | mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t anb/one -l
awk 'BEGIN { printf "{\"readings\":["; for (k = 0; k < 101; k++) printf "%s{\"seq\":999,\"k\":%d}", k ? "," : "", k; print "]}" }' \
    | mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t anb/big -l
wait_until 20 have batch_ch 105
wait_until 10 errs errors/anb 1
fetch
res=$(chk batch)
ok '[ "$res" = ok ]' "batchMode: one message per element (100 from 20 arrays), a non-array result one message (5), 101 elements one error document ($res)"

# Entries rejected by the service: one error document each, the accepted
# ones never sent again.
bk_ctl POST 'partial?service=iotanalytics&count=3&every=4&code=InvalidRequestException' > /dev/null
publish an/dev3/data 100 3001
rej() { fetch && [ $(($(chk count ch_dev3) + $(grep -c '^errors/an {' "$T/errors.txt"))) -ge 100 ]; }
wait_until 20 rej
fetch
res=$(svc_iot rejected iotanalytics 3001 3100 errors/an InvalidRequestException IotAnalyticsAction ch_dev3)
ok 'case "$res" in ok*) true ;; *) false ;; esac' \
    "partial failure: one error document per rejected message (IotAnalyticsAction, the channel, the code), accepted ones not resent ($res)"
bk_ctl POST reset > /dev/null   # the partial rule's uses left (the batches were fewer)

# Throttled entries, then whole requests throttled (429) and unavailable
# (503): all retried until accepted, each message once.
bk_ctl POST 'partial?service=iotanalytics&count=2&every=3&code=ThrottlingException' > /dev/null
publish an/dev4/data 100 4001
wait_until 5 have ch_dev4 1
bk_ctl POST 'fail?status=429&code=ThrottlingException&count=2&service=iotanalytics' > /dev/null
bk_ctl POST 'fail?status=503&code=ServiceUnavailableException&count=2&service=iotanalytics' > /dev/null
publish an/dev4/data 100 4101
wait_until 30 have ch_dev4 200
fetch
res=$(svc_iot throttled iotanalytics 4001 4200)
ok 'case "$res" in ok*) true ;; *) false ;; esac' "throttling: entries and whole requests retried, every message accepted once ($res)"
retried=$(status_retried 4 sink-iotanalytics)
ok '[ "$retried" -ge 4 ]' "status counts the retries (retried: $retried)"

# An entry's InternalFailureException (these APIs' 500 fault) is retried
# too, not taken for a rejection.
bk_ctl POST reset > /dev/null   # a throttling rule's uses left, if any
bk_ctl POST 'partial?service=iotanalytics&count=2&every=2&code=InternalFailureException' > /dev/null
publish an/dev6/data 40 6001
wait_until 20 have ch_dev6 40
fetch
res=$(svc_iot throttled iotanalytics 6001 6040 InternalFailureException)
ok pass "an entry's InternalFailureException retried, every message accepted once ($res)"
bk_ctl POST reset > /dev/null

# A missing channel: the service answers 404 for the whole request.
bk_ctl POST 'svc/iotanalytics/missing?name=gone_ch' > /dev/null
publish anmiss/x 10
wait_until 20 errs errors/anm 10
res=$(chk missing)
ok '[ "$res" = ok ]' "missing channel: one error document per message, naming IotAnalyticsAction, the channel and ResourceNotFoundException ($res)"
grep "^errors/anm {" "$T/errors.txt" | head -1 | cut -c1-600 | sed 's/^/# /'
stop_checked
ok '[ -z "$restarts" ] && [ -z "$sanitizer" ]' "no stage restarted, no sanitizer report"
printf '%s\n%s\n' "$restarts" "$sanitizer" | grep . | sed 's/^/# /'

# AWS's own host: no endpoint configured, connections to AWS's name sent
# to the recorder; the client's region is another, so the region (host
# and signature) can only come from the channelArn.
unset AWS_ENDPOINT_URL
export AWS_REGION=eu-west-1 IOTRULES_AWS_CONNECT_TO="iotanalytics.us-east-1.amazonaws.com:443:127.0.0.1:$BK_RECORDER_PORT"
restart_pipeline || exit 1
wait_until 20 sink_ready iotanalytics
publish anarn/x 5 7001
wait_until 20 have arn_ch 5
fetch
res=$(chk arn)
ok '[ "$res" = ok ]' "channelArn: its name as channelName, to iotanalytics.us-east-1.amazonaws.com signed for us-east-1 though the client's region is eu-west-1 ($res)"
set -- $(sigs_checked iotanalytics)
reqs=$1 valid=$2
ok '[ "$reqs" -gt 0 ] && [ "$reqs" -eq "$valid" ]' "every request's signature valid, all phases ($valid of $reqs)"
stop_checked
ok '[ -z "$restarts" ] && [ -z "$sanitizer" ]' "after the restart too: no stage restarted, no sanitizer report"
