#!/bin/sh
# The sink tests' local backends (tests/backends): every emulator starts
# behind the recorder's signature-checking proxy; libcurl's SigV4 (curl
# --aws-sigv4, what the sinks use) is accepted there and reaches the
# emulator, a wrong secret or no signature is refused before it does; the
# recorder answers and records Firehose, injects failures and partial batch
# failures, issues temporary credentials (STS AssumeRole and
# AssumeRoleWithWebIdentity, IMDSv2, container endpoint) that it then
# accepts until they expire.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../backends/lib.sh"
echo "1..23"
backends_start recorder dynalite kinesalite s3rver fauxqs || exit 1
ok true "backends started (recorder $BK_RECORDER, dynamodb $BK_DYNAMODB -> $BK_DYNAMODB_RAW)"

# code FILE CURL_ARGS...: runs curl (CA of the test), body in FILE, prints the HTTP status.
code() { f=$1; shift; curl -sS --cacert "$BK_CA" -o "$f" -w '%{http_code}' "$@"; }
sig() { s=$1; shift; code "$@" --aws-sigv4 "aws:amz:$BK_REGION:$s"; }
jget() { /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {"d": d}))' "$@"; }
ddb() { op=$1; shift; sig dynamodb "$@" -H "X-Amz-Target: DynamoDB_20120810.$op" -H 'Content-Type: application/x-amz-json-1.0' "$BK_DYNAMODB/"; }
FH=firehose.us-east-1.amazonaws.com
fh() { sig firehose "$@" -H 'X-Amz-Target: Firehose_20150804.PutRecord' -H 'Content-Type: application/x-amz-json-1.1' \
	-d '{"DeliveryStreamName":"iot-fh","Record":{"Data":"eyJ0ZW1wIjoyMS41fQo="}}' \
	--connect-to "$FH:443:127.0.0.1:$BK_RECORDER_PORT" "https://$FH/"; }

c=$(ddb CreateTable "$T/ct.json" --user "$BK_AK:$BK_SK" -d '{"TableName":"iot-verify","BillingMode":"PAY_PER_REQUEST","AttributeDefinitions":[{"AttributeName":"deviceId","AttributeType":"S"}],"KeySchema":[{"AttributeName":"deviceId","KeyType":"HASH"}]}')
ok '[ "$c" = 200 ] && grep -q TableDescription "$T/ct.json"' "signed CreateTable through the proxy reaches dynalite ($c)"
sleep 0.2
c=$(ddb PutItem "$T/put.json" --user "$BK_AK:$BK_SK" -d '{"TableName":"iot-verify","Item":{"deviceId":{"S":"dev-1"},"temp":{"N":"21.5"}}}')
ok '[ "$c" = 200 ]' "signed PutItem through the proxy ($c: $(cat "$T/put.json"))"
bk_tool ddb-scan iot-verify > "$T/scan.json"
ok '[ "$(jget "$T/scan.json" "d[0][\"temp\"][\"N\"] if len(d) == 1 else None")" = 21.5 ]' "the item reads back from dynalite"

c=$(ddb PutItem "$T/bad.json" --user "$BK_AK:wrong-secret" -d '{"TableName":"iot-verify","Item":{"deviceId":{"S":"dev-2"}}}')
ok '[ "$c" = 403 ] && [ "$(jget "$T/bad.json" "d[\"__type\"]")" = InvalidSignatureException ]' "a wrong secret gets 403 InvalidSignatureException ($c)"
c=$(code "$T/unsigned.json" -H 'X-Amz-Target: DynamoDB_20120810.PutItem' -H 'Content-Type: application/x-amz-json-1.0' \
	-d '{"TableName":"iot-verify","Item":{"deviceId":{"S":"dev-3"}}}' "$BK_DYNAMODB/")
ok '[ "$c" = 403 ] && [ "$(jget "$T/unsigned.json" "d[\"__type\"]")" = MissingAuthenticationTokenException ]' "an unsigned request gets 403 MissingAuthenticationTokenException ($c)"
bk_tool ddb-scan iot-verify > "$T/scan2.json"
ok '[ "$(jget "$T/scan2.json" "len(d)")" = 1 ]' "neither refused request reached dynalite"

bk_clear
c=$(fh "$T/fh.json" --user "$BK_AK:$BK_SK")
bk_requests firehose > "$T/req.json"
ok '[ "$c" = 200 ] && [ -n "$(jget "$T/fh.json" "d[\"RecordId\"]")" ]' "Firehose PutRecord answered by the recorder ($c)"
ok '[ "$(jget "$T/req.json" "[(r[\"sigv4\"][\"valid\"], r[\"access_key\"], r[\"headers\"][\"host\"], r[\"target\"]) for r in d]")" = "[(True, '"'AKIDEXAMPLE'"', '"'$FH'"', '"'Firehose_20150804.PutRecord'"')]" ]' "... and recorded with a valid signature, host and target"

bk_ctl POST 'fail?status=503&count=1&service=firehose&retry_after=1' > /dev/null
c1=$(fh "$T/f1.json" --user "$BK_AK:$BK_SK" -D "$T/f1.h")
c2=$(fh "$T/f2.json" --user "$BK_AK:$BK_SK")
ok '[ "$c1" = 503 ] && [ "$(jget "$T/f1.json" "d[\"__type\"]")" = ServiceUnavailableException ] && grep -qi "^retry-after: 1" "$T/f1.h" && [ "$c2" = 200 ]' "an injected 503 (with Retry-After), then success ($c1, $c2)"

bk_ctl POST 'partial?service=firehose&count=1&every=2' > /dev/null
c=$(sig firehose "$T/pb.json" --user "$BK_AK:$BK_SK" -H 'X-Amz-Target: Firehose_20150804.PutRecordBatch' -H 'Content-Type: application/x-amz-json-1.1' \
	-d '{"DeliveryStreamName":"iot-fh","Records":[{"Data":"MQ=="},{"Data":"Mg=="},{"Data":"Mw=="},{"Data":"NA=="}]}' \
	--connect-to "$FH:443:127.0.0.1:$BK_RECORDER_PORT" "https://$FH/")
ok '[ "$c" = 200 ] && [ "$(jget "$T/pb.json" "(d[\"FailedPutCount\"], [\"ErrorCode\" in r for r in d[\"RequestResponses\"]])")" = "(2, [False, True, False, True])" ]' "an injected partial PutRecordBatch failure: every 2nd record failed"

bk_tool kinesis-create iot-stream 1
bk_ctl POST 'partial?service=kinesis&count=1&every=2' > /dev/null
c=$(sig kinesis "$T/pr.json" --user "$BK_AK:$BK_SK" -H 'X-Amz-Target: Kinesis_20131202.PutRecords' -H 'Content-Type: application/x-amz-json-1.1' \
	-d '{"StreamName":"iot-stream","Records":[{"Data":"MQ==","PartitionKey":"a"},{"Data":"Mg==","PartitionKey":"a"},{"Data":"Mw==","PartitionKey":"a"}]}' "$BK_KINESIS/")
bk_tool kinesis-read iot-stream > "$T/kr.json"
ok '[ "$c" = 200 ] && [ "$(jget "$T/pr.json" "(d[\"FailedRecordCount\"], [\"ErrorCode\" in r for r in d[\"Records\"]])")" = "(1, [False, True, False])" ] && [ "$(jget "$T/kr.json" "[r[\"data\"] for r in d]")" = "['"'1', '3'"']" ]' "a partial Kinesis PutRecords through the proxy: the 2nd record failed and only 1, 3 reached kinesalite"

# STS AssumeRole, signed, query protocol in the body.
c=$(sig sts "$T/sts.xml" --user "$BK_AK:$BK_SK" -H 'Content-Type: application/x-www-form-urlencoded; charset=utf-8' \
	--data-binary 'Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fiot-sink&RoleSessionName=iotrules' \
	--connect-to "sts.us-east-1.amazonaws.com:443:127.0.0.1:$BK_RECORDER_PORT" https://sts.us-east-1.amazonaws.com/)
xml() { sed -n "s|.*<$2>\([^<]*\)</$2>.*|\1|p" "$1"; }
TAK=$(xml "$T/sts.xml" AccessKeyId)
TSK=$(xml "$T/sts.xml" SecretAccessKey)
TST=$(xml "$T/sts.xml" SessionToken)
ok '[ "$c" = 200 ] && case $TAK in ASIA*) true ;; *) false ;; esac && [ -n "$TSK" ] && [ -n "$TST" ] && grep -q "<Expiration>20" "$T/sts.xml"' "STS AssumeRole returns temporary credentials ($c, $TAK)"
c1=$(fh "$T/t1.json" --user "$TAK:$TSK" -H "X-Amz-Security-Token: $TST")
c2=$(fh "$T/t2.json" --user "$TAK:$TSK")
ok '[ "$c1" = 200 ] && [ "$c2" = 403 ]' "they sign an accepted request, with their session token only ($c1, $c2)"
bk_ctl GET assumed > "$T/assumed.json"
ok '[ "$(jget "$T/assumed.json" "[(a[\"role_arn\"], a[\"access_key\"]) for a in d]")" = "[('"'arn:aws:iam::123456789012:role/iot-sink'"', '"'$TAK'"')]" ]' "the assumed role is recorded"
bk_ctl POST expire > /dev/null
c=$(fh "$T/t3.json" --user "$TAK:$TSK" -H "X-Amz-Security-Token: $TST")
ok '[ "$c" = 403 ] && [ "$(jget "$T/t3.json" "d[\"__type\"]")" = ExpiredTokenException ]' "once expired they get ExpiredTokenException ($c)"

c1=$(code "$T/w1.xml" --data-binary "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fweb&RoleSessionName=w&WebIdentityToken=$(cat "$BK_WEB_IDENTITY_TOKEN_FILE")" "$BK_RECORDER/")
c2=$(code "$T/w2.xml" --data-binary "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fweb&RoleSessionName=w&WebIdentityToken=forged" "$BK_RECORDER/")
ok '[ "$c1" = 200 ] && grep -q "<AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>ASIA" "$T/w1.xml" && [ "$c2" = 400 ] && grep -q InvalidIdentityToken "$T/w2.xml"' "unsigned AssumeRoleWithWebIdentity: the token file's token works, another does not ($c1, $c2)"

# IMDSv2 and the container credential endpoint, plain HTTP.
c=$(code "$T/i0" "$BK_RECORDER_HTTP/latest/meta-data/iam/security-credentials/")
ok '[ "$c" = 401 ]' "IMDS without a session token: 401 ($c)"
tok=$(curl -sS -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "$BK_RECORDER_HTTP/latest/api/token")
role=$(curl -sS -H "X-aws-ec2-metadata-token: $tok" "$BK_RECORDER_HTTP/latest/meta-data/iam/security-credentials/")
curl -sS -H "X-aws-ec2-metadata-token: $tok" "$BK_RECORDER_HTTP/latest/meta-data/iam/security-credentials/$role" > "$T/imds.json"
c=$(fh "$T/i1.json" --user "$(jget "$T/imds.json" "d[\"AccessKeyId\"]"):$(jget "$T/imds.json" "d[\"SecretAccessKey\"]")" \
	-H "X-Amz-Security-Token: $(jget "$T/imds.json" "d[\"Token\"]")")
ok '[ -n "$tok" ] && [ "$(jget "$T/imds.json" "d[\"Code\"]")" = Success ] && [ "$c" = 200 ]' "IMDSv2 token, role ($role) and credentials that sign an accepted request ($c)"
c1=$(code "$T/c1.json" -H "Authorization: wrong" "$BK_RECORDER_HTTP/creds")
c2=$(code "$T/c2.json" -H "Authorization: $BK_CONTAINER_TOKEN" "$BK_RECORDER_HTTP/creds")
c=$(fh "$T/c3.json" --user "$(jget "$T/c2.json" "d[\"AccessKeyId\"]"):$(jget "$T/c2.json" "d[\"SecretAccessKey\"]")" \
	-H "X-Amz-Security-Token: $(jget "$T/c2.json" "d[\"Token\"]")")
ok '[ "$c1" = 401 ] && [ "$c2" = 200 ] && [ "$c" = 200 ]' "container credentials need the token and sign an accepted request ($c1, $c2, $c)"

# S3 through the proxy (s3rver wants the access key S3RVER).
body='{"temp":21.5}'
h=$(printf %s "$body" | sha256sum | cut -d' ' -f1)
bk_tool s3-create-bucket iot-bucket
c=$(code "$T/s3.out" --aws-sigv4 "aws:amz:$BK_REGION:s3" --user "$BK_S3_AK:$BK_S3_SK" -X PUT -H 'Content-Type: application/json' \
	-H "x-amz-content-sha256: $h" --data-binary "$body" "$BK_S3/iot-bucket/verify/dev-1.json")
ok '[ "$c" = 200 ] && [ "$(bk_tool s3-get iot-bucket verify/dev-1.json)" = "$body" ]' "signed S3 PUT through the proxy reaches s3rver ($c)"
c=$(code "$T/s3b.out" --aws-sigv4 "aws:amz:$BK_REGION:s3" --user "$BK_S3_AK:$BK_S3_SK" -X PUT -H 'Content-Type: application/json' \
	--data-binary "$body" "$BK_S3/iot-bucket/verify/dev-2.json")
ok '[ "$c" = 400 ] && grep -q "<Code>InvalidRequest</Code>" "$T/s3b.out"' "S3 without x-amz-content-sha256 is refused, as by S3 ($c)"

# SQS (fauxqs) through the proxy, under the production queue URL.
bk_tool sqs-create iot-queue > /dev/null
c=$(sig sqs "$T/sqs.json" --user "$BK_AK:$BK_SK" -H 'X-Amz-Target: AmazonSQS.SendMessage' -H 'Content-Type: application/x-amz-json-1.0' \
	-d '{"QueueUrl":"https://sqs.us-east-1.amazonaws.com/123456789012/iot-queue","MessageBody":"{\"temp\":21.5}"}' "$BK_SQS/")
bk_tool sqs-receive iot-queue > "$T/recv.json"
ok '[ "$c" = 200 ] && [ "$(jget "$T/recv.json" "len(d)")" = 1 ] && [ "$(jget "$T/recv.json" "d[0][\"body\"]")" = "$body" ]' "signed SQS SendMessage through the proxy reaches fauxqs ($c)"
