#!/bin/sh
# The cloudwatchLogs, cloudwatchMetric and cloudwatchAlarm actions against
# the recorder (tests/backends/svc_cloudwatch.py answers CloudWatch Logs
# and CloudWatch, checks every SigV4 signature and records each request;
# those records are the read-back), rules as AWS's pages write them:
#   logs: 500 QoS 1 messages, each one event of its templated log group in
#     the stream named after the rule (created with CreateLogStream when
#     PutLogEvents says it is missing), batched, each request's events in
#     time order; batchMode arrays (out of order) as sorted events, a bad
#     element or a span of 24 h one error document; rejectedLogEventsInfo
#     ranges (too old: the first events, too new: the last) give one error
#     document per rejected message and nothing is sent again; throttling
#     and 503 retried; a missing log group one error document per message;
#   metric: 500 messages, one PutMetricData each (query protocol) with
#     every templated field, the timestamp in seconds; a value that is no
#     number, an unknown unit and a datum CloudWatch refuses: one error
#     document each; 503 retried;
#   alarm: 500 messages, one SetAlarmState each with every templated field,
#     none for messages the WHERE clause drops; a bad stateValue and a
#     missing alarm: one error document each.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../backends/lib.sh"
. "$(dirname "$0")/awslib.sh"
echo "1..24"
backends_start recorder || exit 1
aws_env
ROLE=arn:aws:iam::123456789012:role/aws_iot_cw
mkdir -p "$T/rules"
rule() { # FILE SQL ACTION-JSON ERROR-TOPIC
	cat > "$T/rules/$1.json" <<JSON
{"topicRulePayload": {"sql": "$2", "ruleDisabled": false, "awsIotSqlVersion": "2016-03-23",
 "actions": [$3],
 "errorAction": {"republish": {"topic": "$4", "qos": 1, "roleArn": "$ROLE"}}}}
JSON
}
rule to_logs "SELECT * FROM 'cwl/+'" \
    '{"cloudwatchLogs": {"logGroupName": "iot-${topic(2)}", "roleArn": "'$ROLE'", "batchMode": false}}' errors/cwl
rule logs_batch "SELECT VALUE logs FROM 'cwlb/+'" \
    '{"cloudwatchLogs": {"logGroupName": "iot-batch", "roleArn": "'$ROLE'", "batchMode": true}}' errors/cwlb
rule to_metric "SELECT * FROM 'cwm/+'" \
    '{"cloudwatchMetric": {"metricName": "${topic()}", "metricNamespace": "IoT/${topic(2)}", "metricUnit": "${unit}", "metricValue": "${temp}", "metricTimestamp": "${ts}", "roleArn": "'$ROLE'"}}' errors/cwm
rule to_alarm "SELECT * FROM 'cwa/+' WHERE state <> 'skip'" \
    '{"cloudwatchAlarm": {"alarmName": "alarm-${topic(2)}", "stateReason": "${reason}", "stateValue": "${state}", "roleArn": "'$ROLE'"}}' errors/cwa
aws_pipeline || exit 1
wait_until 20 sink_ready cloudwatchlogs && wait_until 20 sink_ready cloudwatchmetric && wait_until 20 sink_ready cloudwatchalarm
ok "sink_ready cloudwatchlogs && sink_ready cloudwatchmetric && sink_ready cloudwatchalarm" "the three CloudWatch sinks run"
errors_sub

# cw.py: the recorder's requests (stdin) turned into what the tests check.
#   logs   -> {"acc": [[group, stream, ts, message]] accepted events,
#              "rej": [[group, message]] rejected ones, "sent": all events of
#              200 answers, "puts": PutLogEvents requests, "unsorted": those
#              whose events were out of order, "notfound": PutLogEvents
#              answered ResourceNotFoundException, "creates": [[group,
#              stream, status]] CreateLogStream}
#   form ACTION -> [params of each 200 request of that query-protocol action]
#   errs TOPIC (errors.txt on stdin) -> [[seq or None, document]]
cat > "$T/cw.py" <<'PY'
import base64, json, sys
from urllib.parse import parse_qsl
kind = sys.argv[1]
if kind == "errs":
    out = []
    for line in sys.stdin:
        topic, _, doc = line.rstrip("\n").partition(" ")
        if topic != sys.argv[2]:
            continue
        d = json.loads(doc)
        try:
            seq = json.loads(base64.b64decode(d["base64OriginalPayload"]))["seq"]
        except (ValueError, KeyError, TypeError):
            seq = None
        out.append([seq, d])
    json.dump(out, sys.stdout)
    sys.exit()
reqs = json.load(sys.stdin)
if kind == "form":
    json.dump([dict(parse_qsl(r["body"])) for r in reqs if r["status"] == 200 and
               dict(parse_qsl(r["body"])).get("Action") == sys.argv[2]], sys.stdout)
    sys.exit()
o = {"acc": [], "rej": [], "sent": [], "puts": 0, "unsorted": 0, "notfound": 0, "creates": []}
for r in reqs:
    op, b = (r["target"] or "").split(".")[-1], json.loads(r["body"] or "{}")
    if op == "CreateLogStream":
        o["creates"].append([b["logGroupName"], b["logStreamName"], r["status"]])
    if op != "PutLogEvents":
        continue
    o["puts"] += 1
    o["notfound"] += "ResourceNotFoundException" in (r["reply"] or "") and r["status"] == 400
    if r["status"] != 200:
        continue
    ev, info = b["logEvents"], json.loads(r["reply"]).get("rejectedLogEventsInfo", {})
    ts = [e["timestamp"] for e in ev]
    o["unsorted"] += ts != sorted(ts)
    lo = max(info.get("tooOldLogEventEndIndex", 0), info.get("expiredLogEventEndIndex", 0))
    hi = info.get("tooNewLogEventStartIndex", len(ev))
    for i, e in enumerate(ev):
        row = [b["logGroupName"], b["logStreamName"], e["timestamp"], e["message"]]
        o["sent"].append(row)
        o["acc" if lo <= i < hi else "rej"].append(row)
json.dump(o, sys.stdout)
PY
logs_read() { bk_requests logs | "$BK_PY" "$T/cw.py" logs > "$T/logs.json"; }
# acc_n PREFIX N: at least N accepted events in groups starting with PREFIX.
acc_n() { logs_read && [ "$(pyq "$T/logs.json" "sum(1 for a in d['acc'] if a[0].startswith('$1'))")" -ge "$2" ]; }
errs() { "$BK_PY" "$T/cw.py" errs "$1" < "$T/errors.txt" > "$T/errs.json"; }
errs_n() { errs "$1" && [ "$(pyq "$T/errs.json" 'len(d)')" -ge "$2" ]; }
# seqs_of GROUP-PREFIX LIST: sorted seqs of the messages in LIST (acc, rej, sent).
seqs_of() { pyq "$T/logs.json" "sorted(__import__('json').loads(a[3])['seq'] for a in d['$2'] if a[0].startswith('$1'))"; }

# ---- cloudwatchLogs ----
t0=$(date +%s%3N)
publish cwl/dev1 250 1 &
P1=$!
publish cwl/dev2 250 251
wait $P1
wait_until 30 acc_n iot-dev 500
t1=$(date +%s%3N)
ok '[ "$(seqs_of iot-dev acc)" = "$("$BK_PY" -c "print(list(range(1, 501)))")" ] && [ "$(seqs_of iot-dev sent)" = "$(seqs_of iot-dev acc)" ]' \
    "logs: 500 messages, 500 events, every seq once ($(pyq "$T/logs.json" 'len(d["acc"])') accepted)"
ok '[ "$(pyq "$T/logs.json" "all(a[1] == \"to_logs\" and a[0] == \"iot-dev\" + (\"1\" if __import__(\"json\").loads(a[3])[\"seq\"] <= 250 else \"2\") and __import__(\"json\").loads(a[3]) == {\"device\": \"d%d\" % (__import__(\"json\").loads(a[3])[\"seq\"] % 7), \"seq\": __import__(\"json\").loads(a[3])[\"seq\"], \"temp\": __import__(\"json\").loads(a[3])[\"seq\"] % 50} and $t0 <= a[2] <= $t1 for a in d[\"acc\"])")" = True ]' \
    "logs: each event in log group iot-\${topic(2)}, stream to_logs (the rule), message = the SQL result, timestamp = its processing time"
set -- $(sigs_checked logs)
reqs=$1 valid=$2
ok '[ "$reqs" -gt 0 ] && [ "$reqs" -eq "$valid" ] && [ "$(pyq "$T/logs.json" "d[\"puts\"]")" -lt 250 ] && [ "$(pyq "$T/logs.json" "d[\"unsorted\"]")" -eq 0 ]' \
    "logs: every request's SigV4 signature verified ($valid of $reqs), events batched ($(pyq "$T/logs.json" 'd["puts"]') PutLogEvents for 500), each request in time order"
ok '[ "$(pyq "$T/logs.json" "sorted(set(tuple(c[:2]) for c in d[\"creates\"] if c[2] == 200)) == [(\"iot-dev1\", \"to_logs\"), (\"iot-dev2\", \"to_logs\")]")" = True ] && [ "$(pyq "$T/logs.json" "d[\"notfound\"]")" -ge 2 ]' \
    "logs: the missing streams were created once PutLogEvents said so ($(pyq "$T/logs.json" 'd["notfound"]') ResourceNotFoundException, CreateLogStream $(pyq "$T/logs.json" 'd["creates"]'))"

# batchMode: 50 arrays of 3 events out of time order; one element without a
# timestamp; one array spanning 25 h.
now=$(date +%s%3N)
awk -v now="$now" 'BEGIN { for (i = 1; i <= 50; i++) { b = now - 100000 + i * 10; printf "{\"logs\":[{\"timestamp\":%.0f,\"message\":\"m%d-2\"},{\"timestamp\":%.0f,\"message\":\"m%d-0\"},{\"timestamp\":%.0f,\"message\":\"m%d-1\"}],\"seq\":%d}\n", b + 2, i, b, i, b + 1, i, 2000 + i } }' \
    | mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t cwlb/arr -l
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t cwlb/bad -m '{"seq":2101,"logs":[{"timestamp":'"$now"',"message":"ok"},{"message":"no time"}]}'
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t cwlb/span -m '{"seq":2102,"logs":[{"timestamp":'"$now"',"message":"a"},{"timestamp":'$((now - 90000000))',"message":"b"}]}'
wait_until 30 acc_n iot-batch 150
wait_until 15 errs_n errors/cwlb 2
ok '[ "$(pyq "$T/logs.json" "sorted(a[3] for a in d[\"acc\"] if a[0] == \"iot-batch\") == sorted(\"m%d-%d\" % (i, k) for i in range(1, 51) for k in range(3)) and all(a[1] == \"logs_batch\" and a[2] == $now - 100000 + int(a[3][1:].split(\"-\")[0]) * 10 + int(a[3].split(\"-\")[1]) for a in d[\"acc\"] if a[0] == \"iot-batch\")")" = True ] && [ "$(pyq "$T/logs.json" "d[\"unsorted\"]")" -eq 0 ]' \
    "logs batchMode: 50 arrays of 3 gave 150 events, each with its own timestamp and message, sent in time order"
ok '[ "$(pyq "$T/errs.json" "sorted(e[0] for e in d)")" = "[2101, 2102]" ] && [ "$(pyq "$T/errs.json" "all(e[1][\"failures\"][0][\"failedAction\"] == \"CloudwatchLogsAction\" and e[1][\"failures\"][0][\"failedResource\"] == \"iot-batch\" for e in d)")" = True ] && grep -q "no whole-number timestamp" "$T/errors.txt" && grep -q "span 24 hours" "$T/errors.txt" && [ "$(pyq "$T/logs.json" "sum(1 for a in d[\"sent\"] if a[3] in (\"ok\", \"a\", \"b\"))")" -eq 0 ]' \
    "logs batchMode: an element without a timestamp and a 25 h span: one error document each, nothing sent"

# rejectedLogEventsInfo: the next request's first quarter too old; then
# the next one's last quarter too new.
rejected_round() { # CODE DEV FIRST
	bk_ctl POST "partial?service=logs&count=1&every=4&code=$1" > /dev/null
	publish "cwl/$2" 100 "$3"
	wait_until 30 done_n "iot-$2" 100
}
done_n() { logs_read && errs errors/cwl && [ $(($(pyq "$T/logs.json" "sum(1 for a in d['acc'] if a[0] == '$1')") + $(pyq "$T/errs.json" "sum(1 for e in d if e[1]['failures'][0]['failedResource'] == '$1')"))) -ge "$2" ]; }
# check_rejected GROUP FIRST: the error documents are exactly the rejected
# events' messages, the accepted ones the others, each sent once.
check_rejected() {
	pyq "$T/logs.json" "(lambda rej, acc, sent, errs: (len(rej) > 0, rej == errs, sorted(acc + rej) == list(range($2, $2 + 100)), sorted(sent) == list(range($2, $2 + 100))))(sorted(__import__('json').loads(a[3])['seq'] for a in d['rej'] if a[0] == '$1'), sorted(__import__('json').loads(a[3])['seq'] for a in d['acc'] if a[0] == '$1'), [__import__('json').loads(a[3])['seq'] for a in d['sent'] if a[0] == '$1'], sorted(e[0] for e in __import__('json').load(open('$T/errs.json')) if e[0] is not None and $2 <= e[0] < $2 + 100))"
}
rejected_round tooOld dev3 3001
ok '[ "$(check_rejected iot-dev3 3001)" = "(True, True, True, True)" ] && [ "$(pyq "$T/logs.json" "d[\"unsorted\"]")" -eq 0 ]' \
    "logs: too old events (tooOldLogEventEndIndex, the first of a request): one error document per rejected message ($(pyq "$T/logs.json" "sum(1 for a in d['rej'] if a[0] == 'iot-dev3')")), the other messages accepted, none sent twice"
rejected_round tooNew dev4 4001
ok '[ "$(check_rejected iot-dev4 4001)" = "(True, True, True, True)" ]' \
    "logs: too new events (tooNewLogEventStartIndex, the last of a request): one error document per rejected message ($(pyq "$T/logs.json" "sum(1 for a in d['rej'] if a[0] == 'iot-dev4')")), none sent twice"
ok 'grep "^errors/cwl {" "$T/errors.txt" | head -1 | grep -q "\"failedAction\":\"CloudwatchLogsAction\",\"failedResource\":\"iot-dev3\".*1 of its 1 log events rejected: 1 too old"' \
    "logs: the document names CloudwatchLogsAction, the log group and why"
grep "^errors/cwl {" "$T/errors.txt" | head -1 | cut -c1-500 | sed 's/^/# /'

# Throttling and 503: retried until they pass.
bk_ctl POST 'fail?status=400&code=ThrottlingException&count=3&service=logs' > /dev/null
bk_ctl POST 'fail?status=503&code=ServiceUnavailableException&count=2&service=logs' > /dev/null
publish cwl/dev5 50 5001
wait_until 30 acc_n iot-dev5 50
ok '[ "$(seqs_of iot-dev5 sent)" = "$("$BK_PY" -c "print(list(range(5001, 5051)))")" ]' \
    "logs: 50 more through 3 throttling and 2 503 answers: all there, each once"
retried=$(status_retried 5 sink-cloudwatchlogs)
ok '[ "$retried" -ge 5 ]' "logs: status counts the retries (retried: $retried)"

# A missing log group: CreateLogStream fails too; one document per message.
bk_ctl POST 'svc/logs/missing-group?name=iot-gone' > /dev/null
publish cwl/gone 20 6001
gone() { errs errors/cwl && [ "$(pyq "$T/errs.json" "sum(1 for e in d if e[1]['failures'][0]['failedResource'] == 'iot-gone')")" -ge 20 ]; }
wait_until 30 gone
ok '[ "$(pyq "$T/errs.json" "sorted(e[0] for e in d if e[1][\"failures\"][0][\"failedResource\"] == \"iot-gone\")")" = "$("$BK_PY" -c "print(list(range(6001, 6021)))")" ] && grep "iot-gone" "$T/errors.txt" | head -1 | grep -q "Failed to create log stream.*log group does not exist.*ResourceNotFoundException"' \
    "logs: missing log group: one error document per message (20), naming the service's error"

# ---- cloudwatchMetric ----
# 500 messages, value seq + 0.25, a unit by seq, timestamp seq seconds ago.
now_s=$(date +%s)
metric_msgs() { # TOPIC FIRST N
	awk -v f="$2" -v n="$3" -v now="$now_s" 'BEGIN { split("Count Seconds Percent Bytes/Second None", u, " ");
	    for (i = f; i < f + n; i++) printf "{\"seq\":%d,\"temp\":%d.25,\"unit\":\"%s\",\"ts\":\"%d\"}\n", i, i, u[i % 5 + 1], now - i }' \
	    | mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t "$1" -l
}
metric_msgs cwm/dev1 1 250 &
P1=$!
metric_msgs cwm/dev2 251 250
wait $P1
form() { bk_requests monitoring | "$BK_PY" "$T/cw.py" form "$1" > "$T/$1.json"; }
form_n() { form "$1" && [ "$(pyq "$T/$1.json" 'len(d)')" -ge "$2" ]; }
wait_until 40 form_n PutMetricData 500
ok '[ "$(pyq "$T/PutMetricData.json" "len(d)")" -eq 500 ] && [ "$(pyq "$T/PutMetricData.json" "sorted(int(float(p[\"MetricData.member.1.Value\"])) for p in d) == list(range(1, 501))")" = True ]' \
    "metric: 500 messages, one PutMetricData each ($(pyq "$T/PutMetricData.json" 'len(d)')), every value once"
ok '[ "$(pyq "$T/PutMetricData.json" "all((lambda s, dev: p[\"Namespace\"] == \"IoT/\" + dev and p[\"MetricData.member.1.MetricName\"] == \"cwm/\" + dev and float(p[\"MetricData.member.1.Value\"]) == s + 0.25 and p[\"MetricData.member.1.Unit\"] == [\"Count\", \"Seconds\", \"Percent\", \"Bytes/Second\", \"None\"][s % 5] and p[\"MetricData.member.1.Timestamp\"] == __import__(\"time\").strftime(\"%Y-%m-%dT%H:%M:%SZ\", __import__(\"time\").gmtime($now_s - s)) and p[\"Version\"] == \"2010-08-01\" and len(p) == 7)(int(float(p[\"MetricData.member.1.Value\"])), \"dev1\" if float(p[\"MetricData.member.1.Value\"]) < 251 else \"dev2\") for p in d)")" = True ]' \
    "metric: Namespace, MetricName, Value, Unit and Timestamp (metricTimestamp seconds as ISO 8601) are each message's"
set -- $(sigs_checked monitoring)
reqs=$1 valid=$2
ok '[ "$reqs" -ge 500 ] && [ "$reqs" -eq "$valid" ] && [ "$(bk_requests monitoring | "$BK_PY" -c "import json,sys; print(all(r[\"headers\"][\"content-type\"].startswith(\"application/x-www-form-urlencoded\") and r[\"query\"] == \"\" and \"/us-east-1/monitoring/aws4_request\" in r[\"headers\"][\"authorization\"] for r in json.load(sys.stdin)))")" = True ]' \
    "metric: every request's SigV4 signature verified ($valid of $reqs), query protocol with the parameters in the body, signing name monitoring"

# A value that is not a number, an unknown unit, a timestamp 30 days old
# (CloudWatch refuses it); then 3 503s retried.
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t cwm/bad -m '{"seq":7001,"temp":"warm","unit":"Count","ts":"'"$now_s"'"}'
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t cwm/bad -m '{"seq":7002,"temp":1,"unit":"Parsecs","ts":"'"$now_s"'"}'
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t cwm/bad -m '{"seq":7003,"temp":1,"unit":"Count","ts":"'$((now_s - 2592000))'"}'
wait_until 20 errs_n errors/cwm 3
ok '[ "$(pyq "$T/errs.json" "sorted(e[0] for e in d)")" = "[7001, 7002, 7003]" ] && [ "$(pyq "$T/errs.json" "all(e[1][\"failures\"][0][\"failedAction\"] == \"CloudwatchMetricAction\" and e[1][\"failures\"][0][\"failedResource\"] == \"IoT/bad/cwm/bad\" for e in d)")" = True ] && grep -q "metricValue is not a number" "$T/errors.txt" && grep -q "metricUnit is not a CloudWatch unit" "$T/errors.txt" && grep -q "two weeks in the past.*InvalidParameterValue" "$T/errors.txt"' \
    "metric: bad value, unknown unit, a datum CloudWatch refuses: one error document each (CloudwatchMetricAction, namespace/metricName)"
bk_ctl POST 'fail?status=503&count=3&service=monitoring' > /dev/null
metric_msgs cwm/dev3 8001 10
wait_until 20 form_n PutMetricData 510
ok '[ "$(pyq "$T/PutMetricData.json" "sorted(int(float(p[\"MetricData.member.1.Value\"])) for p in d if p[\"Namespace\"] == \"IoT/dev3\")")" = "$("$BK_PY" -c "print(list(range(8001, 8011)))")" ]' \
    "metric: 10 more through 3 503 answers: all there, each once"

# ---- cloudwatchAlarm ----
awk 'BEGIN { split("OK ALARM INSUFFICIENT_DATA", s, " ");
    for (i = 1; i <= 510; i++) printf "{\"seq\":%d,\"state\":\"%s\",\"reason\":\"seq %d: \\\"why\\\" & more\"}\n", i, (i > 500 ? "skip" : s[i % 3 + 1]), i }' \
    | mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t cwa/dev1 -l
wait_until 40 form_n SetAlarmState 500
ok '[ "$(pyq "$T/SetAlarmState.json" "len(d)")" -eq 500 ] && [ "$(pyq "$T/SetAlarmState.json" "sorted(int(p[\"StateReason\"].split(\":\")[0][4:]) for p in d) == list(range(1, 501)) and all(p[\"AlarmName\"] == \"alarm-dev1\" and p[\"StateValue\"] == [\"OK\", \"ALARM\", \"INSUFFICIENT_DATA\"][int(p[\"StateReason\"].split(\":\")[0][4:]) % 3] and p[\"StateReason\"].endswith(\": \\\"why\\\" & more\") and len(p) == 5 for p in d)")" = True ]' \
    "alarm: 500 messages, one SetAlarmState each with AlarmName, StateValue and StateReason templated"
set -- $(sigs_checked monitoring)
reqs=$1 valid=$2
ok '[ "$reqs" -ge 1010 ] && [ "$reqs" -eq "$valid" ]' "alarm: every request's SigV4 signature verified ($valid of $reqs to CloudWatch)"
bk_ctl POST 'svc/monitoring/missing-alarm?name=alarm-gone' > /dev/null
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t cwa/dev1 -m '{"seq":9001,"state":"BROKEN","reason":"r"}'
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t cwa/gone -m '{"seq":9002,"state":"ALARM","reason":"r"}'
wait_until 20 errs_n errors/cwa 2
ok '[ "$(pyq "$T/errs.json" "sorted((e[0], e[1][\"failures\"][0][\"failedAction\"], e[1][\"failures\"][0][\"failedResource\"]) for e in d) == [(9001, \"CloudwatchAlarmAction\", \"alarm-dev1\"), (9002, \"CloudwatchAlarmAction\", \"alarm-gone\")]")" = True ] && grep -q "stateValue is not OK" "$T/errors.txt" && grep -q "alarm-gone not found.*Status Code: 404; Error Code: ResourceNotFound" "$T/errors.txt"' \
    "alarm: a bad stateValue and a missing alarm: one error document each"
# By now the 10 messages the WHERE clause drops (published before those two)
# are long through evaluate: still 500 SetAlarmState answered 200, and one
# more (the missing alarm's 404).
form SetAlarmState
ok '[ "$(pyq "$T/SetAlarmState.json" "len(d)")" -eq 500 ] && [ "$(bk_requests monitoring | "$BK_PY" -c "import json,sys; print(sum(1 for r in json.load(sys.stdin) if \"Action=SetAlarmState\" in r[\"body\"]))")" -eq 501 ]' \
    "alarm: no call for the 10 messages the WHERE clause drops (the SQL result only decides whether the call happens)"

stop_checked
ok '[ -z "$restarts" ]' "no stage restarted${restarts:+: $restarts}"
ok '[ -z "$sanitizer" ]' "no sanitizer report${sanitizer:+: $sanitizer}"
