#!/bin/sh
# "assume_role": true in the config: the SQL functions that call AWS
# assume their roleArn (STS AssumeRole, once per role) and sign with it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../backends/lib.sh"
. "$(dirname "$0")/awslib.sh"
echo "1..2"
backends_start recorder || exit 1
aws_env
export AWS_ENDPOINT_URL_IOT_DATA_PLANE="$BK_RECORDER"
curl -sS --cacert "$BK_CA" -X POST -d '{"SecretString": "s"}' "$BK_RECORDER/__recorder/svc/secretsmanager/secret?name=k" > /dev/null
curl -sS --cacert "$BK_CA" -X POST -d '{"state": {"reported": {"t": 1}}}' "$BK_RECORDER/__recorder/svc/iotdata/shadow?thing=d1" > /dev/null
mkdir -p "$T/rules"
cat > "$T/rules/r.json" <<'JSON'
{"sql": "SELECT get_secret('k', 'SecretString', 'arn:aws:iam::123456789012:role/secrets') AS s, get_thing_shadow('d1', 'arn:aws:iam::123456789012:role/shadows').state.reported.t AS t FROM 'as/+'",
 "awsIotSqlVersion": "2016-03-23",
 "actions": [{"republish": {"topic": "out/as", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}]}
JSON
aws_pipeline '"assume_role": true' || exit 1
mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -t 'out/#' -v > "$T/out.txt" 2>/dev/null &
PIDS="$PIDS $!"
sub_ready "$T/out.txt" out/probe
publish as/x 5
got() { [ "$(grep -c '^out/as {"s":"s","t":1}$' "$T/out.txt")" -ge 5 ]; }
wait_until 20 got
ok got "5 messages with the secret and the shadow, read with the assumed roles"
bk_ctl GET assumed > "$T/assumed.json"
bk_requests > "$T/reqs.json"
cat "$T/assumed.json" | sed 's/^/# /' | cut -c1-300
ok '[ "$(pyq "$T/assumed.json" "sorted(a[\"role_arn\"].rsplit(\"/\")[1] for a in d if a[\"action\"] == \"AssumeRole\") == [\"secrets\", \"shadows\"]")" = True ] && [ "$(pyq "$T/reqs.json" "all(r[\"sigv4\"][\"valid\"] and r[\"access_key\"].startswith(\"ASIA\") for r in d if r[\"service\"] in (\"secretsmanager\", \"iotdata\")) and sum(1 for r in d if r[\"service\"] == \"iotdata\") == 5")" = True ]' \
    "each function's roleArn assumed once (STS AssumeRole of role/secrets and role/shadows), and all its requests (GetSecretValue, 5 GetThingShadow) signed with the role's temporary keys"
