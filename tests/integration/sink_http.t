#!/bin/sh
# The http action against tests/backends/httpd.py (HTTPS with a CA made
# here): 1,000 QoS 1 messages through a rule with a templated URL and
# headers, every request checked; AWS's retry rules (429 retried, 400 not,
# an answer over 16 KiB stops retries, a closed connection is not retried,
# 5xx tried 3 times, a slow answer times out); batching within
# batchConfig's limits; a SigV4-signed request verified by botocore; a URL
# no ENABLED destination covers fails to the errorAction until the
# confirmation exchange enables it; plain http only where allowed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/awslib.sh"
BK_PY=/usr/bin/python3
echo "1..20"
"$BK_PY" -c 'import botocore' 2>/dev/null || { echo "# /usr/bin/python3 with botocore is missing (apt-get install python3-botocore)"; exit 1; }
"$here/tests/backends/gen-certs.sh" "$T/tls" || exit 1

AK=AKIDEXAMPLE SK='wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY'
"$BK_PY" "$here/tests/backends/httpd.py" --cert "$T/tls/server.pem" --key "$T/tls/server.key" --http-port 0 \
    --cred "$AK:$SK" > "$T/httpd.out" 2> "$T/httpd.err" &
PIDS="$PIDS $!"
port_of() { sed -n "s/^$1 \([0-9]*\)$/\1/p" "$T/httpd.out"; }
wait_until 20 sh -c "grep -q '^listening-http ' '$T/httpd.out'" || { echo "# httpd.py did not start"; sed 's/^/# /' "$T/httpd.err"; exit 1; }
HP=$(port_of listening) PP=$(port_of listening-http)
H="https://localhost:$HP"
ctl() { curl -sS --cacert "$T/tls/ca.pem" -X "$1" "$H/__httpd/$2" > /dev/null; }
reqs() { curl -sS --cacert "$T/tls/ca.pem" "$H/__httpd/requests" > "$T/reqs.json"; }
# nreq PREFIX: requests recorded so far whose path starts with PREFIX.
nreq() { reqs && pyq "$T/reqs.json" "sum(1 for r in d if r['path'].startswith('$1'))"; }
have() { [ "$(nreq "$1")" -ge "$2" ]; }

# The stages get test credentials (auth.sigv4) and nothing of the machine's.
for _v in $(env | sed -n 's/^\(AWS_[A-Z0-9_]*\)=.*/\1/p'); do unset "$_v"; done
export HOME="$T" AWS_CONFIG_FILE="$T/aws-config" AWS_SHARED_CREDENTIALS_FILE="$T/aws-credentials"
: > "$T/aws-config"; : > "$T/aws-credentials"
export AWS_ACCESS_KEY_ID="$AK" AWS_SECRET_ACCESS_KEY="$SK" AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
export AWS_CA_BUNDLE="$T/tls/ca.pem"

ARN=arn:aws:iot:us-east-1:123456789012:ruledestination/http
mkdir -p "$T/rules"
cat > "$T/rules/to_http.json" <<JSON
{"sql": "SELECT *, topic(2) AS dev FROM 'h/+/data'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"http": {"url": "$H/ingest/\${topic(2)}", "confirmationUrl": "$H/ingest",
   "headers": [{"key": "x-device", "value": "\${topic(2)}"}, {"key": "x-seq", "value": "\${seq}"}]}}],
 "errorAction": {"republish": {"topic": "errors/h", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}}
JSON
cat > "$T/rules/retry.json" <<JSON
{"sql": "SELECT * FROM 'r/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"http": {"url": "$H/ingest/retry/\${topic(2)}", "confirmationUrl": "$H/ingest"}}],
 "errorAction": {"republish": {"topic": "errors/r/\${topic(2)}", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}}
JSON
cat > "$T/rules/batch.json" <<JSON
{"sql": "SELECT * FROM 'b/+/data'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"http": {"url": "$H/ingest/batch", "headers": [{"key": "x-seq", "value": "\${seq}"}],
   "enableBatching": true, "batchConfig": {"maxBatchSize": 10, "maxBatchSizeBytes": 300, "maxBatchOpenMs": 100}}}]}
JSON
cat > "$T/rules/batchfail.json" <<JSON
{"sql": "SELECT * FROM 'bf/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"http": {"url": "$H/ingest/batchfail", "enableBatching": true,
   "batchConfig": {"maxBatchSize": 4, "maxBatchOpenMs": 200, "batchAcrossTopics": true}}}],
 "errorAction": {"republish": {"topic": "errors/bf", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}}
JSON
cat > "$T/rules/signed.json" <<JSON
{"sql": "SELECT * FROM 's/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"http": {"url": "$H/ingest/signed", "headers": [{"key": "x-dev", "value": "\${topic(2)}"}],
   "auth": {"sigv4": {"signingRegion": "us-east-1", "serviceName": "execute-api",
     "roleArn": "arn:aws:iam::123456789012:role/r"}}}}]}
JSON
cat > "$T/rules/pending.json" <<JSON
{"sql": "SELECT * FROM 'p/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"http": {"url": "$H/pending/in"}}],
 "errorAction": {"republish": {"topic": "errors/p", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}}
JSON
cat > "$T/rules/plain.json" <<JSON
{"sql": "SELECT * FROM 'plain/+'", "awsIotSqlVersion": "2016-03-23",
 "actions": [{"http": {"url": "http://127.0.0.1:$PP/plain/in"}}]}
JSON
start_mosquitto || exit 1
cat > "$T/config.json" <<JSON
{"broker": "mqtt://127.0.0.1:$PORT", "rules": "rules", "run_dir": "run", "state_dir": "state",
 "bin_dir": "$BIN", "retry_s": 0,
 "destinations": [
  {"arn": "$ARN/main", "status": "ENABLED", "httpUrlConfiguration": {"confirmationUrl": "$H/ingest"},
   "ca_file": "tls/ca.pem"},
  {"arn": "$ARN/pending", "status": "IN_PROGRESS", "httpUrlConfiguration": {"confirmationUrl": "$H/pending"}},
  {"arn": "$ARN/plain", "status": "ENABLED", "httpUrlConfiguration": {"confirmationUrl": "http://127.0.0.1:$PP"},
   "allow_http": true}]}
JSON
start_supervisor || exit 1
wait_until 20 sink_ready http
ok "sink_ready http" "the http sink runs with the config's destinations"
errors_sub || exit 1

# 2. AWS's retry rules (retry_s 0: the runtime's 3 quick tries).
ctl POST 'fail?path=/ingest/retry/a&status=429&count=2'
ctl POST 'fail?path=/ingest/retry/b&status=400&count=5'
ctl POST 'fail?path=/ingest/retry/c&status=500&body=20000&count=5'
ctl POST 'fail?path=/ingest/retry/d&hangup=1&count=20'
ctl POST 'fail?path=/ingest/retry/e&status=503&count=5'
ctl POST 'fail?path=/ingest/retry/f&status=503&close=1&count=5'
ctl POST 'fail?path=/ingest/retry/g&status=200&delay_ms=3500&count=5'
for k in a b c d e f g; do mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t "r/$k" -m "{\"k\":\"$k\"}"; done
errs() { [ "$(grep -c "^errors/r/" "$T/errors.txt")" -ge "$1" ]; }
wait_until 30 errs 6
sleep 1
reqs
tries() { pyq "$T/reqs.json" "sum(1 for r in d if r['path'] == '/ingest/retry/$1')"; }
errdoc() { grep "^errors/r/$1 " "$T/errors.txt" | head -1; }
ok '[ "$(tries a)" -eq 3 ] && [ -z "$(errdoc a)" ]' "429 twice: retried, delivered on the 3rd try ($(tries a) tries, no error document)"
ok '[ "$(tries b)" -eq 1 ] && errdoc b | grep -q "\"failedAction\":\"HttpAction\".*HTTP 400"' "400: not retried ($(tries b) try), error document with HTTP 400"
ok '[ "$(tries c)" -eq 1 ] && errdoc c | grep -q "larger than 16384 bytes"' "500 with a 20,000-byte body: not retried ($(tries c) try)"
# libcurl itself re-sends a request (up to 5 times) when a kept-alive
# connection it reuses turns out closed before any answer: one try of
# ours, up to 6 requests at the server; 3 tries would be 18.
ok '[ "$(tries d)" -le 6 ] && errdoc d | grep -q "closed the connection without an answer"' "connection closed without an answer: not retried (one try: $(tries d) request(s), libcurl's re-sends on reused connections included)"
ok '[ "$(tries g)" -eq 1 ] && errdoc g | grep -q "request timeout of 3000 ms"' "an answer slower than the 3,000 ms request timeout: not retried ($(tries g) try)"
ok '[ "$(tries f)" -eq 1 ] && errdoc f | grep -q "closed the connection after its answer"' "503 with Connection: close: not retried ($(tries f) try)"
ok '[ "$(tries e)" -eq 3 ] && errdoc e | grep -q "HTTP 503"' "503 every time: 3 tries, then the error document ($(tries e) tries)"
errdoc b | cut -c1-400 | sed 's/^/# /'

# 3. Batching: JSON arrays within maxBatchSize 10 and maxBatchSizeBytes 300,
# one topic per batch, the headers of the batch's last message.
publish b/dev1/data 60 1 &
P1=$!
publish b/dev2/data 60 61
wait $P1
bseqs() { reqs && [ "$(pyq "$T/reqs.json" "sum(len(__import__('json').loads(r['body'])) for r in d if r['path'] == '/ingest/batch')")" -ge "$1" ]; }
wait_until 30 bseqs 120
cat > "$T/batch.py" <<'PY'
import json, sys
rs = [r for r in json.load(open(sys.argv[1])) if r["path"] == "/ingest/batch"]
arrays = [json.loads(r["body"]) for r in rs]
seqs = sorted(m["seq"] for a in arrays for m in a)
ok = all(isinstance(a, list) and 1 <= len(a) <= 10 for a in arrays) and all(len(r["body"].encode()) <= 300 for r in rs)
ok = ok and seqs == list(range(1, 121)) and all(len({m["device"] for m in a} and {m["seq"] <= 60 for m in a}) == 1 for a in arrays)
ok = ok and all(r["headers"]["x-seq"] == str(a[-1]["seq"]) and r["headers"]["content-type"] == "application/json" for r, a in zip(rs, arrays))
print("%d %d %d %d" % (ok, len(rs), max(len(a) for a in arrays), max(len(r["body"].encode()) for r in rs)))
PY
read -r b_ok b_reqs b_len b_bytes <<EOF2
$("$BK_PY" "$T/batch.py" "$T/reqs.json")
EOF2
ok '[ "$b_ok" = 1 ] && [ "$b_reqs" -lt 60 ]' "120 messages in $b_reqs batched requests: JSON arrays of at most 10 (largest $b_len), bodies at most 300 bytes (largest $b_bytes), one topic each, x-seq from the last message"

# A failed batch: one error document for it (ERRORS.md 2.2).
ctl POST 'fail?path=/ingest/batchfail&status=400&count=10'
for i in 1 2 3 4; do mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t "bf/d$i" -m "{\"i\":$i}"; done
bferr() { grep -q "^errors/bf " "$T/errors.txt"; }
wait_until 20 bferr
sleep 1
grep "^errors/bf " "$T/errors.txt" | cut -c1-900 | sed 's/^/# /'
ok '[ "$(grep -c "^errors/bf " "$T/errors.txt")" -eq 1 ] && grep "^errors/bf " "$T/errors.txt" | cut -d" " -f2- > "$T/bf.json" && [ "$(pyq "$T/bf.json" "len(d[\"payloadsWithMetadata\"]) == 4 and sorted(p[\"topic\"] for p in d[\"payloadsWithMetadata\"]) == [\"bf/d1\",\"bf/d2\",\"bf/d3\",\"bf/d4\"] and \"topic\" not in d and d[\"failures\"][0][\"affectedIds\"] == [0,1,2,3] and \"batch\" not in d[\"failures\"][0]")" = True ]' \
    "a failed batch of 4 (batchAcrossTopics): one error document, payloadsWithMetadata with each topic, affectedIds"

# 4. SigV4.
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t s/dev9 -m '{"signed":true}'
wait_until 20 have /ingest/signed 1
reqs
ok '[ "$(pyq "$T/reqs.json" "sum(1 for r in d if r[\"path\"] == \"/ingest/signed\" and r[\"sigv4\"][\"valid\"] and r[\"sigv4\"][\"service\"] == \"execute-api\" and r[\"headers\"][\"x-dev\"] == \"dev9\")")" -eq 1 ]' \
    "auth.sigv4: the request's signature (execute-api, us-east-1) verified by botocore"

# 5. A URL whose destination is IN_PROGRESS: the errorAction, then the
# confirmation exchange, then delivery.
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t p/1 -m '{"before":1}'
perr() { grep -q "^errors/p " "$T/errors.txt"; }
wait_until 20 perr
ok 'grep "^errors/p " "$T/errors.txt" | grep -q "no ENABLED topic rule destination covers $H/pending/in ($ARN/pending is IN_PROGRESS)" && [ "$(nreq /pending)" -eq 0 ]' \
    "an uncovered URL: no request, an error document naming the URL and the destination's state"
confirm() { "$BIN/iotrules" --config "$T/config.json" destination confirm "$1"; }
ctl POST 'confirm?echo=0'
confirm "$ARN/pending" > "$T/confirm.out" 2>&1
rc=$?
ok '[ "$rc" -eq 1 ] && grep -q IN_PROGRESS "$T/config.json"' "an endpoint that does not echo the token leaves the destination IN_PROGRESS (rc $rc)"
ctl POST 'confirm?echo=1'
confirm "$ARN/pending" > "$T/confirm.out" 2>&1
rc=$?
sed 's/^/# /' "$T/confirm.out"
reqs
ok '[ "$rc" -eq 0 ] && pyq "$T/reqs.json" "[r for r in d if r[\"headers\"].get(\"x-amz-rules-engine-message-type\") == \"DestinationConfirmation\"][-1]" > "$T/conf.txt" && "$BK_PY" -c "import json,sys; r=eval(open(sys.argv[1]).read()); b=json.loads(r[\"body\"]); sys.exit(not (r[\"path\"] == \"/pending/?confirmationToken=\" + b[\"confirmationToken\"] and b[\"arn\"] == sys.argv[2] and b[\"messageType\"] == \"DestinationConfirmation\" and b[\"enableUrl\"] and r[\"headers\"][\"x-amz-rules-engine-destination-arn\"] == sys.argv[2]))" "$T/conf.txt" "$ARN/pending"' \
    "the confirmation exchange: POST confirmationUrl/?confirmationToken=, AWS's headers and body, token echoed (rc $rc)"
sleep 1.5   # the sink re-reads the config within a second
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t p/2 -m '{"after":1}'
wait_until 20 have /pending/in 1
ok '[ "$(nreq /pending/in)" -eq 1 ] && [ "$(pyq "$T/config.json" "d[\"destinations\"][1][\"status\"]")" = ENABLED ]' "once ENABLED, the URL is delivered to"

# 6. Plain http where the destination allows it.
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t plain/1 -m '{"plain":1}'
wait_until 20 have /plain/in 1
ok '[ "$(nreq /plain/in)" -eq 1 ]' "plain http to a destination with allow_http"

[ -n "${HTTP_DEBUG:-}" ] && rm -rf "$HTTP_DEBUG" && cp -r "$T" "$HTTP_DEBUG"
stop_checked
first="$restarts$sanitizer"

# 7. With a retry budget (retry_s 20): 503s are retried past AWS's 3 tries
# until the endpoint answers; an answer-shaped failure (400) stays final.
"$BK_PY" -c 'import json,sys; c=json.load(open(sys.argv[1])); c["retry_s"]=20; json.dump(c, open(sys.argv[1], "w"))' "$T/config.json"
restart_pipeline || exit 1
wait_until 20 sink_ready http
ctl POST 'fail?path=/ingest/retry/h&status=503&count=5'
ctl POST 'fail?path=/ingest/retry/i&status=400&count=5'
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t r/h -m '{"k":"h"}'
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t r/i -m '{"k":"i"}'
delivered_h() { reqs && [ "$(pyq "$T/reqs.json" "sum(1 for r in d if r['path'] == '/ingest/retry/h' and r['answer'] == 200)")" -ge 1 ]; }
wait_until 30 delivered_h
reqs
ok '[ "$(tries h)" -eq 6 ] && [ "$(tries i)" -eq 1 ] && [ -z "$(errdoc h)" ]' "retry budget: 503 five times, delivered on the 6th try ($(tries h) tries); 400 still not retried ($(tries i) try)"

# 1. 1,000 messages, URL and headers templated.  With the retry budget:
# a try the loaded machine makes slower than AWS's 3 s request timeout is
# tried again (at least once), so every message arrives, and any request
# beyond one a message is one of the sink's counted retries.
nretried() { sed -n 's/.*"retried":\([0-9]*\).*/\1/p' "$T"/run/stats/sink-http-*.json | head -1; }
retried0=$(nretried)
publish h/dev1/data 500 1 &
P1=$!
publish h/dev2/data 500 501
wait $P1
distinct() { reqs && pyq "$T/reqs.json" "len(set(__import__('json').loads(r['body'])['seq'] for r in d if r['path'].startswith('/ingest/dev')))"; }
all_in() { [ "$(distinct)" -ge 1000 ]; }
wait_until 90 all_in
reqs
total=$(nreq /ingest/dev)
sleep 1   # the stats file is rewritten every 0.5 s
retried=$(($(nretried) - ${retried0:-0}))
ok '[ "$(distinct)" -eq 1000 ] && [ "$total" -ge 1000 ] && [ "$total" -le $((1000 + ${retried:-0})) ]' \
    "1,000 messages, every seq delivered ($(distinct) distinct in $total requests; the sink retried ${retried:-0})"
ok '[ "$(pyq "$T/reqs.json" "sum(1 for r in d if r[\"path\"].startswith(\"/ingest/dev\") and r[\"method\"] == \"POST\" and r[\"path\"] == \"/ingest/\" + r[\"headers\"][\"x-device\"] and r[\"headers\"][\"x-device\"] == __import__(\"json\").loads(r[\"body\"])[\"dev\"] and r[\"headers\"][\"x-seq\"] == str(__import__(\"json\").loads(r[\"body\"])[\"seq\"]) and r[\"headers\"][\"content-type\"] == \"application/json\")")" -eq "$total" ]' \
    "each request: POST to /ingest/\${topic(2)}, x-device and x-seq headers as templated, Content-Type application/json"

stop_checked
ok '[ -z "$first$restarts" ] && [ -z "$sanitizer" ]' "no stage restarted, no sanitizer report${first:+: $first}${restarts:+: $restarts}${sanitizer:+: $sanitizer}"
