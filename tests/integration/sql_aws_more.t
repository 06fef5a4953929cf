#!/bin/sh
# get_secret(), get_thing_shadow() and get_registry_data() in the evaluate
# stage, against the recorder (tests/backends/svc_secrets.py and
# svc_iotdata.py) with the IoT endpoints configured as
# AWS_ENDPOINT_URL_IOT_DATA_PLANE / AWS_ENDPOINT_URL_IOT: the results
# republished to MQTT and checked message by message; every request
# signed and holding exactly what the function asked; secrets cached (one
# GetSecretValue per secret for all messages, and a changed secret not
# seen within the 15 minutes); a missing secret, key, shadow or thing
# fails the rule's SQL (no action, no errorAction, a log line naming why);
# without an IoT endpoint the shadow and registry functions fail saying
# which variable to set.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../backends/lib.sh"
. "$(dirname "$0")/awslib.sh"
echo "1..15"
backends_start recorder || exit 1
aws_env
export AWS_ENDPOINT_URL_IOT_DATA_PLANE="$BK_RECORDER" AWS_ENDPOINT_URL_IOT="$BK_RECORDER"
N=100
ROLE=arn:aws:iam::123456789012:role/lookup

# The secrets, shadows and things the functions read.
put() { curl -sS --cacert "$BK_CA" -X POST -H 'Content-Type: application/json' -d "$2" "$BK_RECORDER/__recorder/svc/$1" > /dev/null; }
put 'secretsmanager/secret?name=api' '{"SecretString": "{\"token\":\"tok-123\",\"user\":\"svc\",\"limits\":{\"rps\":5}}"}'
put 'secretsmanager/secret?name=plain' '{"SecretString": "hunter2 text"}'
put 'secretsmanager/secret?name=ks' '{"SecretBinary": "AAECAwQ="}'
for i in 0 1 2 3 4 5 6; do
	put "iotdata/shadow?thing=d$i" "{\"state\":{\"reported\":{\"temp\":2$i.5,\"fw\":\"1.$i\"},\"desired\":{\"temp\":20}}}"
	put "iotdata/shadow?thing=d$i&name=cfg" "{\"state\":{\"desired\":{\"rate\":$i}}}"
	put "iot/thing?name=d$i" "{\"attributes\":{\"room\":\"r$i\"},\"thingTypeName\":\"sensor\",\"groups\":[\"site-$i\",\"all\"]}"
done

# rule NAME SQL TOPIC [ERROR_TOPIC]: a 2016-03-23 rule republishing to
# TOPIC (a template), with a republish errorAction to ERROR_TOPIC.
mkdir -p "$T/rules"
rule() {
	"$BK_PY" - "$@" > "$T/rules/$1.json" <<'PY'
import json, sys
rp = lambda t: {"republish": {"topic": t, "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}
r = {"sql": sys.argv[2], "awsIotSqlVersion": "2016-03-23", "actions": [rp(sys.argv[3])]}
if len(sys.argv) > 4:
    r["errorAction"] = rp(sys.argv[4])
json.dump(r, sys.stdout)
PY
}
rule secrets "SELECT seq, get_secret('api', 'SecretString', 'token', '$ROLE') AS token, get_secret('api', 'SecretString', 'limits', '$ROLE').rps AS rps, get_secret('plain', 'SecretString', '$ROLE') AS plain, get_secret('arn:aws:secretsmanager:us-east-1:123456789012:secret:ks-AbCdEf', 'SecretBinary', '$ROLE') AS bin FROM 'sec/+'" \
    "out/\${get_secret('api', 'SecretString', 'user', '$ROLE')}/\${topic(2)}"
rule shadow "SELECT seq, get_thing_shadow(device, '$ROLE').state.reported AS reported, get_thing_shadow(device, 'cfg', '$ROLE').state.desired.rate AS rate FROM 'sh/+'" \
    "out/shadow/\${topic(2)}" err/shadow
rule registry "SELECT seq, get_registry_data('DescribeThing', device, '$ROLE') AS thing, get_registry_data('ListThingGroupsForThing', device, '$ROLE').thingGroups AS groups FROM 'rg/+'" \
    "out/registry/\${topic(2)}" err/registry
rule badsecret "SELECT get_secret(name, 'SecretString', key, '$ROLE') AS s FROM 'bad/secret'" out/bad err/secret
aws_pipeline || exit 1
mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -t 'out/#' -t 'err/#' -v > "$T/out.txt" 2>/dev/null &
PIDS="$PIDS $!"
sub_ready "$T/out.txt" out/probe
got() { [ "$(grep -c "^$1 {" "$T/out.txt")" -ge "$2" ]; }

# One message first: it fetches each secret once; then the rest.
publish sec/x 1 1
wait_until 20 got out/svc/x 1
publish sec/x $((N - 1)) 2
publish sh/x $N 1
publish rg/x $N 1
wait_until 30 got out/svc/x $N
wait_until 30 got out/shadow/x $N
wait_until 30 got out/registry/x $N

cat > "$T/check.py" <<'PY'
import json, sys
kind, path = sys.argv[1], sys.argv[2]
good = 0
for line in open(path):
    topic, _, body = line.rstrip("\n").partition(" ")
    m = json.loads(body)
    i = m["seq"] % 7
    if kind == "sec":
        good += m == {"seq": m["seq"], "token": "tok-123", "rps": 5, "plain": "hunter2 text", "bin": "AAECAwQ="}
    elif kind == "shadow":
        good += m == {"seq": m["seq"], "reported": {"temp": 20 + i + 0.5, "fw": "1.%d" % i}, "rate": i}
    else:
        t = m["thing"]
        good += (t["thingName"] == "d%d" % i and t["attributes"] == {"room": "r%d" % i} and t["thingTypeName"] == "sensor"
                 and t["thingArn"] == "arn:aws:iot:us-east-1:123456789012:thing/d%d" % i and t["version"] == 1
                 and m["groups"] == [{"groupName": g, "groupArn": "arn:aws:iot:us-east-1:123456789012:thinggroup/" + g}
                                     for g in ("site-%d" % i, "all")])
print(good)
PY
grep '^out/svc/x {' "$T/out.txt" > "$T/sec.txt"
grep '^out/shadow/x {' "$T/out.txt" > "$T/shadow.txt"
grep '^out/registry/x {' "$T/out.txt" > "$T/registry.txt"
chk() { "$BK_PY" "$T/check.py" "$1" "$T/$1.txt"; }
ok '[ "$(wc -l < "$T/sec.txt")" -eq $N ] && [ "$(chk sec)" -eq $N ]' \
    "$N messages republished to out/svc/x (the topic's template read a secret's key), each with the token, a nested key's value, the whole text secret and the binary one as base64 ($(chk sec) of $N)"
ok '[ "$(wc -l < "$T/shadow.txt")" -eq $N ] && [ "$(chk shadow)" -eq $N ]' \
    "$N messages with their device's classic shadow (reported state) and named shadow cfg (desired rate) ($(chk shadow) of $N)"
ok '[ "$(wc -l < "$T/registry.txt")" -eq $N ] && [ "$(chk registry)" -eq $N ]' \
    "$N messages with their device's DescribeThing answer and its thing groups ($(chk registry) of $N)"

bk_requests > "$T/reqs.json"
cat > "$T/reqs.py" <<'PY'
import json, sys
from urllib.parse import parse_qs
d = json.load(open(sys.argv[1]))
what = sys.argv[2]
def sm(r):
    return (r["service"] == "secretsmanager" and r["method"] == "POST" and r["path"] == "/"
            and r["target"] == "secretsmanager.GetSecretValue"
            and r["headers"]["content-type"] == "application/x-amz-json-1.1" and r["status"] == 200)
if what == "secrets":
    rs = [r for r in d if r["service"] == "secretsmanager"]
    ids = sorted(json.loads(r["body"])["SecretId"] for r in rs)
    print(len(rs), sum(1 for r in rs if sm(r) and r["sigv4"]["valid"]), ",".join(ids))
elif what == "shadow":
    rs = [r for r in d if r["service"] == "iotdata"]
    ok = [r for r in rs if r["method"] == "GET" and r["sigv4"]["valid"] and r["status"] == 200 and not r["body"]]
    classic = sum(1 for r in ok if r["path"] in ["/things/d%d/shadow" % i for i in range(7)] and r["query"] == "")
    named = sum(1 for r in ok if r["path"] in ["/things/d%d/shadow" % i for i in range(7)] and r["query"] == "name=cfg")
    print(len(rs), len(ok), classic, named)
else:
    rs = [r for r in d if r["service"] == "iot"]
    ok = [r for r in rs if r["method"] == "GET" and r["sigv4"]["valid"] and r["status"] == 200 and not r["body"]]
    desc = sum(1 for r in ok if r["path"] in ["/things/d%d" % i for i in range(7)] and r["query"] == "")
    groups = sum(1 for r in ok if r["path"] in ["/things/d%d/thing-groups" % i for i in range(7)] and r["query"] == "maxResults=250")
    print(len(rs), len(ok), desc, groups)
PY
read -r reqs good ids <<EOF
$("$BK_PY" "$T/reqs.py" "$T/reqs.json" secrets)
EOF
ok '[ "$reqs" -eq 3 ] && [ "$good" -eq 3 ] && [ "$ids" = "api,arn:aws:secretsmanager:us-east-1:123456789012:secret:ks-AbCdEf,plain" ]' \
    "secrets cached: $reqs GetSecretValue requests for $N messages x 5 calls ($good signed and shaped as Secrets Manager's JSON 1.1 API), one per secret: $ids"
read -r reqs good plain named <<EOF
$("$BK_PY" "$T/reqs.py" "$T/reqs.json" shadow)
EOF
ok '[ "$reqs" -eq $((2 * N)) ] && [ "$good" -eq "$reqs" ] && [ "$plain" -eq $N ] && [ "$named" -eq $N ]' \
    "GetThingShadow: $reqs requests, $good signed as iotdata GETs, $plain of /things/dN/shadow and $named of the same with ?name=cfg"
read -r reqs good plain named <<EOF
$("$BK_PY" "$T/reqs.py" "$T/reqs.json" registry)
EOF
ok '[ "$reqs" -eq $((2 * N)) ] && [ "$good" -eq "$reqs" ] && [ "$plain" -eq $N ] && [ "$named" -eq $N ]' \
    "registry: $reqs requests, $good signed as iot GETs, $plain DescribeThing (/things/dN) and $named ListThingGroupsForThing (/things/dN/thing-groups?maxResults=250)"
ok '[ "$(pyq "$T/reqs.json" "sum(1 for r in d if r[\"headers\"][\"host\"] == \"127.0.0.1:$BK_RECORDER_PORT\" and r[\"service\"] in (\"iotdata\", \"iot\"))")" -eq $((4 * N)) ]' \
    "the IoT requests went to the configured endpoints as given (Host 127.0.0.1:$BK_RECORDER_PORT, no prefix added)"

# A changed secret is not seen while cached (AWS: up to 15 minutes).
put 'secretsmanager/secret?name=plain' '{"SecretString": "rotated"}'
publish sec/later 1 500
wait_until 15 got out/svc/later 1
ok 'grep -q "^out/svc/later {.*\"plain\":\"hunter2 text\"" "$T/out.txt" && [ "$(bk_requests secretsmanager | pyq /dev/stdin "len(d)")" -eq 3 ]' \
    "a secret changed in Secrets Manager: the cached value is used, no new request"

# Failures: the SQL fails, no action and no errorAction, the log says why.
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t bad/secret -m '{"name":"nosuch","key":"k"}'
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t bad/secret -m '{"name":"api","key":"nokey"}'
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t sh/ghost -m '{"device":"ghost","seq":900}'
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t rg/ghost -m '{"device":"ghost","seq":901}'
logged() { grep -q "$1" "$T/sup.log"; }
wait_until 15 logged "rule registry: SQL evaluation failed"
sleep 1
ok 'logged "rule badsecret: SQL evaluation failed.*get_secret(): Secrets Manager GetSecretValue failed: Secrets Manager can.t find the specified secret. (Status Code: 400; Error Code: ResourceNotFoundException)"' \
    "a missing secret fails the rule's SQL with Secrets Manager's answer in the log"
ok 'logged "rule badsecret: SQL evaluation failed.*get_secret(): secret api: the SecretString has no key nokey" && ! grep -q "tok-123" "$T/sup.log"' \
    "a missing key fails it too, naming the key and not the secret's contents"
ok 'logged "rule shadow: SQL evaluation failed.*get_thing_shadow(): IoT GetThingShadow failed: No shadow exists with name: .ghost. (Status Code: 404; Error Code: ResourceNotFoundException)" && logged "rule registry: SQL evaluation failed.*get_registry_data(): IoT DescribeThing failed: Thing ghost cannot be found. (Status Code: 404"' \
    "a missing shadow or thing fails the rule's SQL, the service's answer in the log"
ok '! grep -q "^out/bad \|^out/shadow/ghost \|^out/registry/ghost \|^err/" "$T/out.txt"' \
    "nothing republished for them, and no errorAction ran (SQL failures go to the log only, ERRORS.md 1)"
grep "SQL evaluation failed" "$T/sup.log" | head -4 | cut -c1-300 | sed 's/^/# /'

stop_checked
ok '[ -z "$restarts" ] && [ -z "$sanitizer" ]' "no stage restarted, no sanitizer report"
printf '%s\n%s\n' "$restarts" "$sanitizer" | grep . | sed 's/^/# /'

# The tester: the IoT functions need a configured endpoint; get_secret
# uses Secrets Manager's own.
bk_clear
echo '{"device":"d3"}' > "$T/p.json"
env -u AWS_ENDPOINT_URL -u AWS_ENDPOINT_URL_IOT_DATA_PLANE -u AWS_ENDPOINT_URL_IOT "$BIN/iotrules-sql" --aws --sql-version 2016-03-23 \
    --payload-file "$T/p.json" "SELECT get_thing_shadow(device, 'r') AS s FROM 't'" > /dev/null 2> "$T/noep.err"
rc1=$?
env -u AWS_ENDPOINT_URL -u AWS_ENDPOINT_URL_IOT_DATA_PLANE -u AWS_ENDPOINT_URL_IOT "$BIN/iotrules-sql" --aws --sql-version 2016-03-23 \
    --payload-file "$T/p.json" "SELECT get_registry_data('DescribeThing', device, 'r') AS s FROM 't'" > /dev/null 2>> "$T/noep.err"
rc2=$?
sed 's/^/# /' "$T/noep.err" | cut -c1-300
ok '[ $rc1 -eq 2 ] && [ $rc2 -eq 2 ] && grep -q "get_thing_shadow(): no IoT data endpoint is configured.*AWS_ENDPOINT_URL_IOT_DATA_PLANE" "$T/noep.err" && grep -q "get_registry_data(): no IoT endpoint is configured.*AWS_ENDPOINT_URL_IOT " "$T/noep.err" && [ "$(bk_requests | pyq /dev/stdin "sum(1 for r in d if r[\"service\"] in (\"iot\", \"iotdata\"))")" -eq 0 ]' \
    "without an IoT endpoint both fail at run time naming the variable to set (exit $rc1, $rc2), no request made"
ok '[ "$("$BIN/iotrules-sql" --aws --sql-version 2016-03-23 --payload-file "$T/p.json" "SELECT get_secret(\"api\", \"SecretString\", \"user\", \"r\") AS u, get_thing_shadow(device, \"r\").version AS v FROM \"t\"" 2>/dev/null)" = "{\"u\":\"svc\",\"v\":1}" ]' \
    "iotrules-sql --aws with the endpoints configured reads a secret and a shadow"
