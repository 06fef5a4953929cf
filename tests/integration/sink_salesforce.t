#!/bin/sh
# The salesforce action (ACTIONS.md §2.18) against tests/backends/httpd.py
# (HTTPS, a CA made here, AWS_CA_BUNDLE): 200 QoS 1 messages, each one
# POST with "Authorization: Bearer <token>" and "Content-Type:
# application/json" and the result as the body; a 400 goes to the
# errorAction as SalesforceAction, a 503 is retried.  The URL is the test
# server's, not a Salesforce one: the loader warns, as it says.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/awslib.sh"
BK_PY=python3
echo "1..7"
"$here/tests/backends/gen-certs.sh" "$T/tls" > /dev/null || exit 1
python3 "$here/tests/backends/httpd.py" --cert "$T/tls/server.pem" --key "$T/tls/server.key" > "$T/httpd.out" 2> "$T/httpd.err" &
PIDS="$PIDS $!"
wait_until 20 grep -q '^listening ' "$T/httpd.out" || { echo "# httpd.py did not start"; exit 1; }
H="https://localhost:$(sed -n 's/^listening \([0-9]*\)$/\1/p' "$T/httpd.out")"
ctl() { curl -sS --cacert "$T/tls/ca.pem" -X "$1" "$H/__httpd/$2" > /dev/null; }
reqs() { curl -sS --cacert "$T/tls/ca.pem" "$H/__httpd/requests" > "$T/reqs.json"; }
have() { reqs && [ "$(pyq "$T/reqs.json" "sum(1 for r in d if r['path'].startswith('$1'))")" -ge "$2" ]; }
export AWS_CA_BUNDLE="$T/tls/ca.pem"
TOKEN=00D5g000004ABCD!AQ4AQ.abcdefghijklmnopqrstuvwxyz0123456789
mkdir -p "$T/rules"
cat > "$T/rules/sf.json" <<JSON
{"topicRulePayload": {"sql": "SELECT *, topic(2) AS dev FROM 'sf/+'", "ruleDisabled": false, "awsIotSqlVersion": "2016-03-23",
 "actions": [{"salesforce": {"token": "$TOKEN", "url": "$H/streams/stream_1/conn_1/event"}}],
 "errorAction": {"republish": {"topic": "errors/sf", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}}}
JSON
aws_pipeline || exit 1
wait_until 20 sink_ready salesforce
ok 'sink_ready salesforce' "the salesforce sink runs"
ok 'grep -q "is not a Salesforce IoT input stream URL" "$T/sup.log"' "the loader warns that the URL is not Salesforce's"
mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -t 'errors/#' > "$T/errors.txt" 2>/dev/null &
PIDS="$PIDS $!"
# A try the loaded machine makes slower than the 3 s request timeout is
# tried again (the retry budget): every message arrives at least once, and
# a request beyond one a message is one of the sink's counted retries.
publish sf/dev1 200 1
distinct() { reqs && pyq "$T/reqs.json" "len(set(__import__('json').loads(r['body'])['seq'] for r in d))"; }
all_in() { [ "$(distinct)" -ge 200 ]; }
wait_until 60 all_in
sleep 1   # the stats file is rewritten every 0.5 s
reqs
total=$(pyq "$T/reqs.json" "len(d)")
retried=$(sed -n 's/.*"retried":\([0-9]*\).*/\1/p' "$T"/run/stats/sink-salesforce-*.json | head -1)
ok '[ "$(distinct)" -eq 200 ] && [ "$total" -ge 200 ] && [ "$total" -le $((200 + ${retried:-0})) ]' \
	"200 messages: every one delivered ($(distinct) distinct in $total requests; the sink retried ${retried:-0})"
check=$(pyq "$T/reqs.json" "sum(1 for r in d if r['method'] == 'POST' and r['path'] == '/streams/stream_1/conn_1/event'
  and r['headers'].get('authorization', r['headers'].get('Authorization')) == 'Bearer $TOKEN'
  and (r['headers'].get('content-type') or r['headers'].get('Content-Type')) == 'application/json'
  and __import__('json').loads(r['body'])['dev'] == 'dev1')")
ok '[ "$check" -eq "$total" ]' "each a POST with the bearer token, application/json and the result ($check of $total checked)"
# A 400 is final: one request, one error document; a 503 is retried.
ctl DELETE requests
ctl POST "fail?count=1&status=400"
publish sf/dev2 1 1000
wait_until 20 grep -q SalesforceAction "$T/errors.txt"
ok 'grep -q "\"failedAction\":\"SalesforceAction\",\"failedResource\":\"$H/streams/stream_1/conn_1/event\"" "$T/errors.txt"' \
	"a 400 goes to the errorAction as SalesforceAction: $(grep -o '"failures".*' "$T/errors.txt" | head -c 300)"
ctl POST "fail?count=2&status=503"
publish sf/dev3 1 2000
wait_until 20 have /streams 4
reqs
answered() { pyq "$T/reqs.json" "sum(1 for r in d if r['answer'] == $1)"; }
ok '[ "$(answered 503)" -eq 2 ] && [ "$(answered 200)" -eq 1 ]' \
	"a 503 is retried until delivered ($(answered 503) refused with 503, $(answered 200) delivered)"
ok '[ "$(grep -c SalesforceAction "$T/errors.txt")" -eq 1 ]' "... and only the 400 reached the errorAction"
