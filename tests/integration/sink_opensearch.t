#!/bin/sh
# The openSearch and elasticsearch actions (one source, two sinks) against
# the recorder and its OpenSearch module (tests/backends/svc_es.py), which
# checks every SigV4 signature and keeps the documents (the read-back):
# 500 QoS 1 messages through each, a rule as AWS's pages write it, every
# templated field (index, type, id) checked on each document; openSearch
# reaches a production domain host (search-...us-east-1.es.amazonaws.com,
# connected to the recorder by IOTRULES_AWS_CONNECT_TO), elasticsearch
# the recorder's own URL: the action's endpoint wins over AWS_ENDPOINT_URL.
# Document ids with a space, unicode, '+', '%', ':', '?', '#', ',', ';',
# '&', '=' are sent percent-encoded and signed so that the recorder and
# botocore's own signer agree; one with '/' (%2F) is checked against
# botocore's signer and the recorder (which once decoded %2F first, see
# README).  429 and 503 are retried; OpenSearch's 400s
# (mapper_parsing_exception, a second type) and a non-object result give
# one error document per message, named by each action.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../backends/lib.sh"
. "$(dirname "$0")/awslib.sh"
echo "1..14"
backends_start recorder || exit 1
aws_env
DOMAIN=search-iot-abc123.us-east-1.es.amazonaws.com
export IOTRULES_AWS_CONNECT_TO="$DOMAIN:443:127.0.0.1:$BK_RECORDER_PORT"
mkdir -p "$T/rules"
cat > "$T/rules/to_os.json" <<JSON
{"topicRulePayload": {"sql": "SELECT *, timestamp() as timestamp FROM 'os/+/data'", "ruleDisabled": false,
 "awsIotSqlVersion": "2016-03-23",
 "actions": [{"openSearch": {"endpoint": "https://$DOMAIN", "index": "iot-\${topic(2)}", "type": "_doc",
   "id": "\${device}-\${seq}", "roleArn": "arn:aws:iam::123456789012:role/aws_iot_os"}}],
 "errorAction": {"republish": {"topic": "errors/os/\${topic(2)}", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}}}
JSON
cat > "$T/rules/to_es.json" <<JSON
{"topicRulePayload": {"sql": "SELECT *, timestamp() as timestamp FROM 'es/+/data'", "ruleDisabled": false,
 "awsIotSqlVersion": "2016-03-23",
 "actions": [{"elasticsearch": {"endpoint": "$BK_RECORDER", "index": "legacy", "type": "\${topic(2)}",
   "id": "\${newuuid()}", "roleArn": "arn:aws:iam::123456789012:role/aws_iot_es"}}],
 "errorAction": {"republish": {"topic": "errors/es/\${topic(2)}", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}}}
JSON
cat > "$T/rules/ids.json" <<JSON
{"sql": "SELECT * FROM 'osid/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"openSearch": {"endpoint": "https://$DOMAIN", "index": "ids", "type": "_doc", "id": "\${id}",
   "roleArn": "arn:aws:iam::123456789012:role/aws_iot_os"}}],
 "errorAction": {"republish": {"topic": "errors/ids", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}}
JSON
cat > "$T/rules/value.json" <<JSON
{"sql": "SELECT VALUE temp FROM 'osval/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"openSearch": {"endpoint": "https://$DOMAIN", "index": "values", "type": "_doc", "id": "\${seq}",
   "roleArn": "arn:aws:iam::123456789012:role/aws_iot_os"}}],
 "errorAction": {"republish": {"topic": "errors/value", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}}
JSON
aws_pipeline || exit 1
wait_until 20 sink_ready opensearch && wait_until 20 sink_ready elasticsearch
ok "sink_ready opensearch && sink_ready elasticsearch" "the opensearch and elasticsearch sinks run (one source, two binaries)"
errors_sub

docs() { bk_ctl GET svc/es/docs > "$T/docs.json"; }
ndocs() { docs && [ "$(pyq "$T/docs.json" "sum(1 for x in d if x['_index'] $1)")" -ge "$2" ]; }
errs() { [ "$(grep -c "^errors/$1 {" "$T/errors.txt")" -ge "$2" ]; }

publish os/dev1/data 250 1 &
P1=$!
publish os/dev2/data 250 251 &
P2=$!
publish es/reading/data 500 1001
wait $P1 $P2
wait_until 40 ndocs "in ('iot-dev1', 'iot-dev2')" 500
wait_until 10 ndocs "== 'legacy'" 500
ok '[ "$(pyq "$T/docs.json" "sum(1 for x in d if x[\"_index\"] == \"iot-dev%d\" % (1 if x[\"_source\"][\"seq\"] <= 250 else 2) and x[\"_type\"] == \"_doc\" and x[\"_id\"] == \"%s-%d\" % (x[\"_source\"][\"device\"], x[\"_source\"][\"seq\"]) and x[\"_version\"] == 1)")" -eq 500 ]' \
    "openSearch: 500 messages, 500 documents, each in index iot-\${topic(2)}, type _doc, id \${device}-\${seq}"
ok '[ "$(pyq "$T/docs.json" "len(set(x[\"_source\"][\"seq\"] for x in d if x[\"_index\"].startswith(\"iot-\") and set(x[\"_source\"]) == {\"device\", \"seq\", \"temp\", \"timestamp\"} and x[\"_source\"][\"temp\"] == x[\"_source\"][\"seq\"] % 50))")" -eq 500 ]' \
    "each document is the SQL result (device, seq, temp, timestamp), every seq once"
uuid_re='[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}'
ok '[ "$(pyq "$T/docs.json" "len(set(x[\"_id\"] for x in d if x[\"_index\"] == \"legacy\" and x[\"_type\"] == \"reading\" and __import__(\"re\").fullmatch(\"$uuid_re\", x[\"_id\"]) and 1001 <= x[\"_source\"][\"seq\"] <= 1500))")" -eq 500 ]' \
    "elasticsearch: 500 messages, 500 documents in index legacy, type \${topic(2)}, 500 distinct \${newuuid()} ids"
bk_requests es > "$T/es.json"
ok '[ "$(pyq "$T/es.json" "sum(1 for r in d if r[\"method\"] == \"PUT\" and r[\"status\"] == 201 and r[\"headers\"][\"host\"] == \"$DOMAIN\" and r[\"headers\"][\"content-type\"] == \"application/json\" and \"/us-east-1/es/aws4_request\" in r[\"headers\"][\"authorization\"])")" -eq 500 ] && [ "$(pyq "$T/es.json" "sum(1 for r in d if r[\"headers\"][\"host\"] == \"127.0.0.1:$BK_RECORDER_PORT\" and r[\"path\"].startswith(\"/legacy/reading/\"))")" -eq 500 ]' \
    "one PUT per message: openSearch to its domain host (Host $DOMAIN, signed for es in us-east-1), elasticsearch to the endpoint it names"
set -- $(sigs_checked es)
reqs=$1 valid=$2
ok '[ "$reqs" -eq 1000 ] && [ "$reqs" -eq "$valid" ]' "every request's SigV4 signature verified by the recorder ($valid of $reqs)"

# Document ids that need percent-encoding (libcurl 7.88 alone signs them wrongly).
bk_clear
printf '%s\n' 'a b' 'ünïcødé-✓' 'x+y' '100%' 'k:v' 'q?x=1&y=2' 'h#1' 'a,b;c' '[x]@(y)!*'"'" '~.-_' | while IFS= read -r id; do
	"$BK_PY" -c 'import json,sys; print(json.dumps({"id": sys.argv[1], "v": 1}))' "$id"
done > "$T/ids.txt"
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t osid/x -l < "$T/ids.txt"
wait_until 20 ndocs "== 'ids'" 10
pyq "$T/docs.json" "sorted(x['_id'] for x in d if x['_index'] == 'ids')" > "$T/got.txt"
"$BK_PY" -c 'import json,sys; print(sorted(json.loads(l)["id"] for l in open(sys.argv[1])))' "$T/ids.txt" > "$T/want.txt"
set -- $(sigs_checked es)
reqs=$1 valid=$2
ok 'cmp -s "$T/got.txt" "$T/want.txt" && [ "$reqs" -eq 10 ] && [ "$valid" -eq 10 ]' \
    "10 ids with space, unicode, + % : ? & = # , ; [ ] @ ( ) ! * quote ~: each document under its exact id, $valid of $reqs signatures valid for the recorder"
bk_requests es | "$BK_PY" -c 'import json,sys; [print(r["path"]) for r in json.load(sys.stdin)]' | head -4 | sed 's/^/# sent: /'

# '/' in an id goes as %2F.  botocore's client signer (as the SDKs sign:
# the path as sent, encoded once more) must give the same signature.
cat > "$T/botosig.py" <<'PY'
import base64, json, re, sys
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials
ak, sk = sys.argv[1], sys.argv[2]
good = 0
for r in json.load(sys.stdin):
    m = re.search(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})", r["headers"]["authorization"])
    signed = m.group(3).split(";")
    class Signer(SigV4Auth):
        def headers_to_sign(self, request):
            h = HTTPHeaders()
            for k in signed:
                h[k] = r["headers"][k]
            return h
    req = AWSRequest(method=r["method"], url="https://" + r["headers"]["host"] + r["path"], data=base64.b64decode(r["body_b64"]))
    req.context["timestamp"] = r["headers"]["x-amz-date"]
    s = Signer(Credentials(ak, sk), m.group(2), m.group(1))
    good += s.signature(s.string_to_sign(req, s.canonical_request(req)), req) == m.group(4)
print(good)
PY
bk_clear
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t osid/x -m '{"id": "dir/file é", "v": 2}'
slash_sent() { bk_requests es > "$T/slash.json" && [ "$(pyq "$T/slash.json" 'len(d)')" -ge 1 ]; }
wait_until 10 slash_sent
ok '[ "$(pyq "$T/slash.json" "len(d)")" -eq 1 ] && [ "$(pyq "$T/slash.json" "d[0][\"path\"]")" = "/ids/_doc/dir%2Ffile%20%C3%A9" ] && [ "$("$BK_PY" "$T/botosig.py" "$BK_AK" "$BK_SK" < "$T/slash.json")" = 1 ] && [ "$(pyq "$T/slash.json" "d[0][\"sigv4\"][\"valid\"]")" = True ]' \
    "an id with '/' goes as %2F, signed exactly as botocore's signer signs it, and the recorder agrees (status $(pyq "$T/slash.json" "d[0][\"status\"]"))"

# Throttling and 503s: retried until they pass; counted in status.
bk_clear
bk_ctl POST 'fail?status=429&code=TooManyRequestsException&count=3&service=es' > /dev/null
bk_ctl POST 'fail?status=503&count=3&service=es' > /dev/null
publish os/dev3/data 100 2001
wait_until 30 ndocs "== 'iot-dev3'" 100
ok '[ "$(pyq "$T/docs.json" "len(set(x[\"_id\"] for x in d if x[\"_index\"] == \"iot-dev3\"))")" -eq 100 ]' \
    "100 more through 3 throttling and 3 503 answers: all 100 documents there"
retried=$(status_retried 6 sink-opensearch)
ok '[ "$retried" -ge 6 ]' "status counts the retries (retried: $retried)"

# OpenSearch's own 400s are permanent: one error document per message.
# iot-dev1 mapped temp as a number; "hot" does not parse.  legacy has the
# type "reading": a second type is refused.
printf '{"device":"d9","seq":%d,"temp":"hot"}\n' $(seq 3001 3020) | mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t os/dev1/data -l
publish es/other/data 20 4001
wait_until 30 errs os/dev1 20
wait_until 10 errs es/other 20
ok '[ "$(grep -c "^errors/os/dev1 {" "$T/errors.txt")" -eq 20 ] && grep "^errors/os/dev1 {" "$T/errors.txt" | head -1 | grep -q "\"failedAction\":\"OpenSearchAction\",\"failedResource\":\"https://$DOMAIN\".*failed to parse field \[temp\] of type \[long\].*Status Code: 400; Error Code: mapper_parsing_exception"' \
    "openSearch: a mapper_parsing_exception (400) gives one error document per message (20), OpenSearchAction, the endpoint, OpenSearch's type and reason"
grep "^errors/os/dev1 {" "$T/errors.txt" | head -1 | cut -c1-600 | sed 's/^/# /'
ok '[ "$(grep -c "^errors/es/other {" "$T/errors.txt")" -eq 20 ] && grep "^errors/es/other {" "$T/errors.txt" | head -1 | grep -q "\"failedAction\":\"ElasticsearchAction\",\"failedResource\":\"$BK_RECORDER\".*more than 1 type.*Error Code: illegal_argument_exception"' \
    "elasticsearch: a second type (400 illegal_argument_exception): one error document per message (20), ElasticsearchAction"
publish osval/x 5 5001
wait_until 10 errs value 5
ok '[ "$(grep -c "^errors/value {" "$T/errors.txt")" -eq 5 ] && grep "^errors/value {" "$T/errors.txt" | grep -q "the result is not a JSON object" && [ "$(bk_requests es | pyq /dev/stdin "sum(1 for r in d if r[\"path\"].startswith(\"/values/\"))")" -eq 0 ]' \
    "a result that is not a JSON object (SELECT VALUE) is not sent: one error document per message (5)"

stop_checked
ok '[ -z "$restarts" ] && [ -z "$sanitizer" ]' "no stage restarted, no sanitizer report${restarts:+ (restarts: $restarts)}${sanitizer:+ ($sanitizer)}"
