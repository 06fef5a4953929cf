#!/bin/sh
# The AWS client's credential sources (common/aws, common/awscreds) against
# the recorder (tests/backends), which checks every SigV4 signature and
# issues temporary credentials: the environment, the shared files, a
# credential_process, STS AssumeRole (a profile's role_arn + source_profile,
# an action's role with assume_role, cached), web identity, the container
# endpoint and IMDSv2; temporary credentials of 10 s refreshed during runs
# of 16 s with no failed request; an expired-token answer refetches them at
# once.  No secret appears in any output.  Requests are Firehose PutRecord
# sent by build/tests/awscall.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../backends/lib.sh"
AWSCALL=${AWSCALL:-$here/build/tests/awscall}
echo "1..26"
BK_TEMP_CREDS_TTL=10
backends_start recorder || exit 1
ok true "recorder started ($BK_RECORDER, credentials on $BK_RECORDER_HTTP, temporary credentials last 10 s)"

for v in $(env | sed -n 's/^\(AWS_[A-Z0-9_]*\)=.*/\1/p'); do unset "$v"; done
export HOME="$T" AWS_CONFIG_FILE="$T/config" AWS_SHARED_CREDENTIALS_FILE="$T/credentials" AWS_REGION=us-east-1
export AWS_CA_BUNDLE="$BK_CA" AWS_EC2_METADATA_DISABLED=true
export AWS_ENDPOINT_URL_FIREHOSE="$BK_RECORDER" AWS_ENDPOINT_URL_STS="$BK_RECORDER"
: > "$T/config"
: > "$T/credentials"

jget() { /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {"d": d}))' "$@"; }
# fh NAME [AWSCALL ARGS...]: PutRecord to stream NAME; output in $T/NAME.out,
# stderr in $T/NAME.err, exit status in $T/NAME.rc.
fh() {
	_n=$1
	shift
	"$AWSCALL" --service firehose --endpoint-id FIREHOSE --target Firehose_20150804.PutRecord \
		--content-type application/x-amz-json-1.1 \
		--body "{\"DeliveryStreamName\":\"$_n\",\"Record\":{\"Data\":\"eyJ0ZW1wIjoyMS41fQo=\"}}" "$@" \
		> "$T/$_n.out" 2> "$T/$_n.err"
	echo $? > "$T/$_n.rc"
}
# first NAME: the status line of the first answer; lines NAME: how many OK.
first() { head -1 "$T/$1.out"; }
oks() { grep -c '^200 OK - ' "$T/$1.out"; }
# rec NAME EXPR: EXPR over the recorded firehose requests of stream NAME (r).
rec() {
	bk_requests firehose > "$T/req.json"
	/usr/bin/python3 -c 'import json,sys; d=[r for r in json.load(open(sys.argv[1])) if "\"%s\"" % sys.argv[2] in (r["body"] or "")]; print(eval(sys.argv[3], {"d": d}))' "$T/req.json" "$1" "$2"
}
assumed() { bk_ctl GET assumed > "$T/assumed.json"; jget "$T/assumed.json" "$1"; }

# ---- static sources ----
AWS_ACCESS_KEY_ID=$BK_AK AWS_SECRET_ACCESS_KEY=$BK_SK fh env
ok '[ "$(first env)" = "200 OK - " ] && [ "$(rec env "[(r[\"sigv4\"][\"valid\"], r[\"access_key\"]) for r in d]")" = "[(True, '"'AKIDEXAMPLE'"')]" ]' \
	"environment: signed, accepted ($(first env))"
AWS_ACCESS_KEY_ID=$BK_AK AWS_SECRET_ACCESS_KEY=wrong-secret fh badenv
ok 'first badenv | grep -q "^403 PERMANENT InvalidSignatureException "' "a wrong secret is refused by the recorder: PERMANENT ($(first badenv | cut -c1-40))"

printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n[src]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
	"$BK_AK" "$BK_SK" "$BK_AK" "$BK_SK" > "$T/credentials"
fh prof
ok '[ "$(first prof)" = "200 OK - " ] && grep -q "credentials from profile default" "$T/prof.err"' "shared credentials file, default profile"
: > "$T/credentials"

printf '[profile proc]\ncredential_process = printf "{\\"Version\\": 1, \\"AccessKeyId\\": \\"%s\\", \\"SecretAccessKey\\": \\"%s\\"}"\n' \
	"$BK_AK" "$BK_SK" > "$T/config"
AWS_PROFILE=proc fh proc
ok '[ "$(first proc)" = "200 OK - " ] && grep -q "credentials from credential_process" "$T/proc.err"' "credential_process ($(first proc))"

# ---- STS AssumeRole ----
printf '[profile role]\nrole_arn = arn:aws:iam::123456789012:role/prof\nsource_profile = src\n' > "$T/config"
printf '[src]\naws_access_key_id = %s\naws_secret_access_key = %s\n' "$BK_AK" "$BK_SK" > "$T/credentials"
AWS_PROFILE=role fh role
ok '[ "$(first role)" = "200 OK - " ] && [ "$(rec role "[(r[\"sigv4\"][\"valid\"], r[\"access_key\"][:4]) for r in d]")" = "[(True, '"'ASIA'"')]" ]' \
	"profile role_arn + source_profile: the request is signed with the role's credentials"
ok '[ "$(assumed "[(a[\"action\"], a[\"caller\"]) for a in d if a[\"role_arn\"].endswith(\"/prof\")]")" = "[('"'AssumeRole'"', '"'AKIDEXAMPLE'"')]" ]' \
	"... which STS issued to the source profile's key"
: > "$T/config"
: > "$T/credentials"

export AWS_ACCESS_KEY_ID=$BK_AK AWS_SECRET_ACCESS_KEY=$BK_SK
fh act --assume-role --role-arn arn:aws:iam::123456789012:role/action --repeat 3
ok '[ "$(oks act)" = 3 ] && [ "$(rec act "sorted(set((r[\"sigv4\"][\"valid\"], r[\"access_key\"][:4]) for r in d))")" = "[(True, '"'ASIA'"')]" ]' \
	"an action's role_arn with assume_role: 3 requests signed with the role's credentials"
ok '[ "$(assumed "len([a for a in d if a[\"role_arn\"].endswith(\"/action\")])")" = 1 ]' "... assumed once for the 3 (cached)"
fh noact --role-arn arn:aws:iam::123456789012:role/ignored
ok '[ "$(first noact)" = "200 OK - " ] && [ "$(rec noact "[r[\"access_key\"] for r in d]")" = "['"'AKIDEXAMPLE'"']" ]' \
	"without assume_role the role_arn is ignored"
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY

# ---- web identity, container, IMDSv2 ----
export AWS_ROLE_ARN=arn:aws:iam::123456789012:role/web AWS_WEB_IDENTITY_TOKEN_FILE=$BK_WEB_IDENTITY_TOKEN_FILE
AWS_ROLE_SESSION_NAME=it-session fh web
ok '[ "$(first web)" = "200 OK - " ] && [ "$(rec web "[(r[\"sigv4\"][\"valid\"], r[\"access_key\"][:4]) for r in d]")" = "[(True, '"'ASIA'"')]" ]' \
	"web identity: STS AssumeRoleWithWebIdentity, its credentials sign"
ok '[ "$(assumed "[(a[\"action\"], a[\"session_name\"]) for a in d if a[\"role_arn\"].endswith(\"/web\")]")" = "[('"'AssumeRoleWithWebIdentity'"', '"'it-session'"')]" ]' \
	"... with AWS_ROLE_SESSION_NAME"
echo "not-the-token" > "$T/badtoken"
AWS_WEB_IDENTITY_TOKEN_FILE=$T/badtoken fh badweb
ok '[ "$(cat "$T/badweb.rc")" = 111 ] && grep -q "InvalidIdentityToken" "$T/badweb.err" && ! grep -q "not-the-token" "$T/badweb.err"' \
	"a refused web identity token: the client does not open, says why, never shows the token"
unset AWS_ROLE_ARN AWS_WEB_IDENTITY_TOKEN_FILE

export AWS_CONTAINER_CREDENTIALS_FULL_URI=$BK_RECORDER_HTTP/creds
AWS_CONTAINER_AUTHORIZATION_TOKEN=$BK_CONTAINER_TOKEN fh cont
ok '[ "$(first cont)" = "200 OK - " ] && [ "$(rec cont "[(r[\"sigv4\"][\"valid\"], r[\"access_key\"][:4]) for r in d]")" = "[(True, '"'ASIA'"')]" ]' \
	"container endpoint with AWS_CONTAINER_AUTHORIZATION_TOKEN"
echo "$BK_CONTAINER_TOKEN" > "$T/ctok"
AWS_CONTAINER_AUTHORIZATION_TOKEN=wrong AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=$T/ctok fh contf
ok '[ "$(first contf)" = "200 OK - " ]' "... with AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, which wins over the variable"
AWS_CONTAINER_AUTHORIZATION_TOKEN=wrong fh contbad
ok '[ "$(cat "$T/contbad.rc")" = 111 ] && grep -q "HTTP 401" "$T/contbad.err"' "a refused container token: the client does not open"
unset AWS_CONTAINER_CREDENTIALS_FULL_URI

unset AWS_EC2_METADATA_DISABLED
AWS_EC2_METADATA_SERVICE_ENDPOINT=$BK_RECORDER_HTTP fh imds
ok '[ "$(first imds)" = "200 OK - " ] && [ "$(rec imds "[(r[\"sigv4\"][\"valid\"], r[\"access_key\"][:4]) for r in d]")" = "[(True, '"'ASIA'"')]" ]' \
	"EC2 IMDSv2 (token, role, credentials)"
AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:9 fh noimds
ok '[ "$(cat "$T/noimds.rc")" = 111 ] && grep -q "no AWS credentials.*IMDS" "$T/noimds.err"' "no source at all (IMDS unreachable): the client does not open, says why"
export AWS_EC2_METADATA_DISABLED=true

# ---- refresh of 10 s credentials during 16 s runs, all at once ----
bk_clear
AWS_CONTAINER_CREDENTIALS_FULL_URI=$BK_RECORDER_HTTP/creds AWS_CONTAINER_AUTHORIZATION_TOKEN=$BK_CONTAINER_TOKEN \
	fh rcont --repeat 16 --interval-ms 1000 &
p1=$!
(unset AWS_EC2_METADATA_DISABLED; AWS_EC2_METADATA_SERVICE_ENDPOINT=$BK_RECORDER_HTTP fh rimds --repeat 16 --interval-ms 1000) &
p2=$!
AWS_ROLE_ARN=arn:aws:iam::123456789012:role/web AWS_WEB_IDENTITY_TOKEN_FILE=$BK_WEB_IDENTITY_TOKEN_FILE \
	fh rweb --repeat 16 --interval-ms 1000 &
p3=$!
AWS_ACCESS_KEY_ID=$BK_AK AWS_SECRET_ACCESS_KEY=$BK_SK \
	fh rrole --assume-role --role-arn arn:aws:iam::123456789012:role/refresh --repeat 16 --interval-ms 1000 &
p4=$!
wait $p1 $p2 $p3 $p4
for s in rcont rimds rweb rrole; do
	nk=$(rec $s "len(set(r[\"access_key\"] for r in d))")
	ok '[ "$(oks $s)" = 16 ] && [ "$(rec $s "all(r[\"sigv4\"][\"valid\"] for r in d)")" = True ] && [ "$nk" -ge 2 ]' \
		"$s: 16 of 16 requests OK over 16 s with credentials of 10 s, $nk sets of credentials"
done

# ---- an expired-token answer: fresh credentials at once ----
AWS_CONTAINER_CREDENTIALS_FULL_URI=$BK_RECORDER_HTTP/creds AWS_CONTAINER_AUTHORIZATION_TOKEN=$BK_CONTAINER_TOKEN \
	fh exp --repeat 4 --interval-ms 1000 &
p=$!
sleep 1.5
bk_ctl POST expire > /dev/null
wait $p
ok '[ "$(grep -c "^400 TRANSIENT ExpiredTokenException\|^403 TRANSIENT ExpiredTokenException" "$T/exp.out")" -le 1 ] && [ "$(grep -c " OK - " "$T/exp.out")" -ge 3 ] && tail -2 "$T/exp.out" | head -1 | grep -q "^200 OK"' \
	"credentials expired early by the server: at most one TRANSIENT ExpiredTokenException, the next request OK ($(grep -o '^[0-9]* [A-Z]* [A-Za-z-]*' "$T/exp.out" | tr '\n' ','))"
ok 'grep -q "have expired: fetching new ones" "$T/exp.err" || ! grep -q ExpiredToken "$T/exp.out"' "... the client logged the refetch"

# ---- no secret anywhere ----
secrets_found=$(cat "$T"/*.out "$T"/*.err | grep -c -F -e "$BK_SK" -e "$BK_CONTAINER_TOKEN" -e "$(cat "$BK_WEB_IDENTITY_TOKEN_FILE")")
ok '[ "$secrets_found" = 0 ]' "no secret key, container token or web identity token in any output or log"
ok '! grep -h "^{" "$T"/*.err | grep -q -i "FwoG\|secret"' "no session token or secret in the client's log lines"
