#!/bin/sh
# The s3 action against s3rver behind the recorder's signature-checking
# proxy: 1,000 QoS 1 messages through a rule as AWS's docs write it (key
# made unique per message), every object read back with its key and
# body, every request's signature verified, cannedAcl sent as x-amz-acl,
# Content-Type by result; keys with characters S3 signs escaped, binary
# payloads stored as received, AWS's own ${topic()}/${timestamp()} key;
# SlowDown and 503 answers retried (and counted in status); a missing
# bucket sends one error document per message through the errorAction.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../backends/lib.sh"
. "$(dirname "$0")/awslib.sh"
echo "1..13"
backends_start recorder s3rver || exit 1
aws_env
# s3rver knows one key only; the recorder accepts it too.
export AWS_ACCESS_KEY_ID="$BK_S3_AK" AWS_SECRET_ACCESS_KEY="$BK_S3_SK"
bk_tool s3-create-bucket iot-bucket > /dev/null
mkdir -p "$T/rules"
cat > "$T/rules/to_s3.json" <<'JSON'
{"sql": "SELECT *, topic(2) AS dev FROM 's3/+/data'", "ruleDisabled": false,
 "awsIotSqlVersion": "2016-03-23",
 "actions": [{"s3": {"bucketName": "iot-bucket", "cannedAcl": "public-read", "key": "${topic()}/${seq}.json",
   "roleArn": "arn:aws:iam::123456789012:role/aws_iot_s3"}}]}
JSON
cat > "$T/rules/doc_key.json" <<'JSON'
{"sql": "SELECT * FROM 'some/topic'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"s3": {"bucketName": "iot-bucket", "key": "${topic()}/${timestamp()}",
   "roleArn": "arn:aws:iam::123456789012:role/aws_iot_s3"}}]}
JSON
cat > "$T/rules/odd_keys.json" <<'JSON'
{"sql": "SELECT * FROM 'odd/#'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"s3": {"bucketName": "iot-bucket", "key": "odd/${topic(2)} (v1)!*'+é/${newuuid()}",
   "roleArn": "arn:aws:iam::123456789012:role/aws_iot_s3"}}]}
JSON
cat > "$T/rules/missing.json" <<'JSON'
{"sql": "SELECT * FROM 'missing/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"s3": {"bucketName": "no-such-bucket", "key": "${topic()}/${newuuid()}",
   "roleArn": "arn:aws:iam::123456789012:role/aws_iot_s3"}}],
 "errorAction": {"republish": {"topic": "errors/s3", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}}
JSON
aws_pipeline || exit 1
wait_until 10 sink_ready s3
ok "sink_ready s3" "the s3 sink runs"

# s3_read PREFIX [keys]: every object under PREFIX, {key: body (text, or
# "b64:" + base64 when not UTF-8)}, or only the keys, into $T/s3.json;
# one process.  (Listed by prefix: s3rver pages past 1,000 keys wrongly.)
s3_read() {
	"$BK_PY" - "$BK_HOME" "$1" "${2:-}" > "$T/s3.json" <<'PY'
import base64, json, sys
import xml.etree.ElementTree as ET
from urllib.parse import quote
sys.path.insert(0, sys.argv[1])
import bk
raw, prefix, res, token = bk.env("BK_S3_RAW"), sys.argv[2], {}, None
while True:
    q = "list-type=2&max-keys=1000&prefix=" + quote(prefix, safe="") + ("&continuation-token=" + quote(token, safe="") if token else "")
    root = ET.fromstring(bk.call("s3", raw, "GET", "/iot-bucket?" + q)[1])
    ns = root.tag.split("}")[0] + "}" if root.tag.startswith("{") else ""
    for k in (c.findtext(ns + "Key") for c in root.findall(ns + "Contents")):
        if sys.argv[3]:
            res[k] = None
            continue
        data = bk.call("s3", raw, "GET", "/iot-bucket/" + quote(k, safe="/~"))[1]
        try:
            res[k] = data.decode("utf-8")
        except UnicodeDecodeError:
            res[k] = "b64:" + base64.b64encode(data).decode()
    token = root.findtext(ns + "NextContinuationToken")
    if root.findtext(ns + "IsTruncated") != "true" or not token:
        break
json.dump(res, sys.stdout)
PY
}
count() { s3_read "$1" keys && [ "$(pyq "$T/s3.json" "len(d)")" -ge "$2" ]; }

publish s3/dev1/data 500 1 &
P1=$!
publish s3/dev2/data 500 501
wait $P1
wait_until 60 count s3/ 1000
s3_read s3/
keys=$(pyq "$T/s3.json" 'sum(1 for k, v in d.items() for j in [__import__("json").loads(v)] if k == "s3/%s/data/%d.json" % (j["dev"], j["seq"]) and j["dev"] == ("dev1" if j["seq"] <= 500 else "dev2"))')
ok '[ "$(pyq "$T/s3.json" "len(d)")" -eq 1000 ]' "1,000 messages, 1,000 objects ($(pyq "$T/s3.json" 'len(d)') read)"
ok '[ "$keys" -eq 1000 ]' "every key is its \${topic()}/\${seq}.json and every body the SQL result ($keys)"
bk_requests s3 > "$T/reqs.json"
hdrs=$(pyq "$T/reqs.json" 'sum(1 for r in d if r["method"] == "PUT" and r["headers"].get("x-amz-acl") == "public-read" and r["headers"].get("content-type") == "application/json")')
ok '[ "$hdrs" -eq 1000 ]' "PutObject with x-amz-acl: public-read (cannedAcl) and Content-Type application/json ($hdrs)"
set -- $(sigs_checked s3)
reqs=$1 valid=$2
ok '[ "$reqs" -ge 1000 ] && [ "$reqs" -eq "$valid" ]' "every request's SigV4 signature verified by the recorder ($valid of $reqs)"

# AWS's own key, keys with characters that must be escaped, and a binary
# payload (SELECT * passes it through).
bk_clear
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t some/topic -m '{"doc":1}'
printf '\377\000\001binary\200' > "$T/bin.dat"
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t odd/bin -f "$T/bin.dat"
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t odd/json -m '{"odd":true}'
wait_until 30 count odd/ 2
wait_until 30 count some/topic/ 1
s3_read some/topic/
cp "$T/s3.json" "$T/doc.json"
s3_read odd/
dockey=$(pyq "$T/doc.json" '[k for k, v in d.items() if __import__("re").fullmatch(r"some/topic/[0-9]{13}", k) and v == "{\"doc\":1}"]')
ok '[ "$(echo "$dockey" | grep -c some/topic/)" -eq 1 ]' "AWS's key \${topic()}/\${timestamp()}: $dockey"
odd=$(pyq "$T/s3.json" 'sorted(v for k, v in d.items() if k.startswith(("odd/json (v1)!*\x27+\u00e9/", "odd/bin (v1)!*\x27+\u00e9/"))) == ["b64:/wABYmluYXJ5gA==", "{\"odd\":true}"]')
ok '[ "$odd" = True ]' "keys with spaces, ()!*'+ and é written as named; a binary payload stored byte for byte"
bk_requests s3 > "$T/reqs.json"
ctype=$(pyq "$T/reqs.json" 'sorted(r["headers"].get("content-type") for r in d if r["path"].startswith("/iot-bucket/odd/")) == ["application/json", "application/octet-stream"] and all(r["sigv4"]["valid"] for r in d)')
ok '[ "$ctype" = True ]' "Content-Type application/octet-stream for the binary result; escaped keys signed right"

# SlowDown, then 503s: retried until they pass; counted in status.
bk_ctl POST 'fail?status=503&code=SlowDown&count=3&service=s3' > /dev/null
bk_ctl POST 'fail?status=503&code=ServiceUnavailable&count=3&service=s3' > /dev/null
publish s3/dev3/data 50 2001
wait_until 60 count s3/dev3/ 50
ok 'count s3/dev3/ 50' "50 more through 3 SlowDown and 3 503 answers: all there"
retried=$(status_retried 6 sink-s3)
ok '[ "$retried" -ge 6 ]' "status counts the retries (retried: $retried)"

# Permanent: the bucket does not exist.
errors_sub
publish missing/x 20
errs() { [ "$(grep -c '^errors/s3 {' "$T/errors.txt")" -ge "$1" ]; }
wait_until 30 errs 20
ok '[ "$(grep -c "^errors/s3 {" "$T/errors.txt")" -eq 20 ]' "missing bucket: one error document per message (20)"
ok 'grep "^errors/s3 {" "$T/errors.txt" | head -1 | grep -q "\"failedAction\":\"S3Action\".*\"failedResource\":\"no-such-bucket\".*NoSuchBucket"' \
    "the document names S3Action, the bucket and the service's error"
grep "^errors/s3 {" "$T/errors.txt" | head -1 | cut -c1-600 | sed 's/^/# /'
# Every stage ran through without a restart, and stops cleanly (under
# ASan: no report, leaks included).
stop_checked
ok '[ -z "$restarts" ] && [ -z "$sanitizer" ]' "no stage restarted, no sanitizer report"
printf '%s\n%s\n' "$restarts" "$sanitizer" | grep . | sed 's/^/# /'
