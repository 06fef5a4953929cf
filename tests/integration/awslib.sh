# Shared by the AWS sink tests (sourced after lib.sh and
# ../backends/lib.sh, once backends_start has run): a supervised pipeline
# whose AWS sinks reach the backends with test credentials, and helpers
# to publish and to wait.

# aws_env: the environment the stages get (through the supervisor):
# credentials, region, the test CA, every endpoint at the backends, and
# nothing of the machine's own AWS settings.
aws_env() {
	for _v in $(env | sed -n 's/^\(AWS_[A-Z0-9_]*\)=.*/\1/p'); do unset "$_v"; done
	export HOME="$T" AWS_CONFIG_FILE="$T/aws-config" AWS_SHARED_CREDENTIALS_FILE="$T/aws-credentials"
	: > "$T/aws-config"
	: > "$T/aws-credentials"
	export AWS_ACCESS_KEY_ID="$BK_AK" AWS_SECRET_ACCESS_KEY="$BK_SK" AWS_REGION="$BK_REGION"
	export AWS_CA_BUNDLE="$BK_CA" AWS_EC2_METADATA_DISABLED=true
	export AWS_ENDPOINT_URL="$BK_RECORDER" AWS_ENDPOINT_URL_STS="$BK_RECORDER"
	[ -n "${BK_DYNAMODB:-}" ] && export AWS_ENDPOINT_URL_DYNAMODB="$BK_DYNAMODB"
	[ -n "${BK_KINESIS:-}" ] && export AWS_ENDPOINT_URL_KINESIS="$BK_KINESIS"
	[ -n "${BK_S3:-}" ] && export AWS_ENDPOINT_URL_S3="$BK_S3"
	[ -n "${BK_SQS:-}" ] && export AWS_ENDPOINT_URL_SQS="$BK_SQS" AWS_ENDPOINT_URL_SNS="$BK_SQS"
	return 0
}

# aws_pipeline [EXTRA_CONFIG_JSON_MEMBERS]: mosquitto, then the supervisor
# on $T/rules with the stages' stderr in $T/sup.log; waits until ready
# (the four stages of a one-sink pipeline).
aws_pipeline() {
	start_mosquitto || return 1
	cat > "$T/config.json" <<JSON
{"broker": "mqtt://127.0.0.1:$PORT", "rules": "rules", "run_dir": "run", "state_dir": "state",
 "bin_dir": "$BIN"${1:+, $1}}
JSON
	start_supervisor
}

# publish TOPIC N [FIRST]: N QoS 1 messages {"device":"dN","seq":I,"temp":I%50}
# for I = FIRST.. (default 1), waits until all are PUBACKed.
publish() {
	awk -v n="$2" -v f="${3:-1}" 'BEGIN { for (i = f; i < f + n; i++) printf "{\"device\":\"d%d\",\"seq\":%d,\"temp\":%d}\n", i % 7, i, i % 50 }' \
	    | mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t "$1" -l
}

# wait_until SECONDS CMD...: runs CMD every 0.5 s until it succeeds; 1 if
# it never did.
wait_until() {
	_s=$1
	shift
	_end=$(($(date +%s) + _s))
	while [ "$(date +%s)" -lt "$_end" ]; do
		"$@" && return 0
		sleep 0.5
	done
	return 1
}

# sigs_checked SERVICE: prints "N M": requests of SERVICE the recorder saw,
# and how many of them had a valid signature.
sigs_checked() {
	bk_requests "$1" | "$BK_PY" -c 'import json,sys; r=json.load(sys.stdin); print(len(r), sum(1 for x in r if x["sigv4"]["valid"]))'
}

# jq-like: pyq FILE EXPR evaluates EXPR with d = the JSON in FILE.
pyq() { "$BK_PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {"d": d}))' "$@"; }

# errors_sub: a subscriber to errors/# (where the tests' errorActions
# republish), writing "TOPIC PAYLOAD" lines to $T/errors.txt; returns once
# it is subscribed.
errors_sub() {
	mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -t 'errors/#' -v > "$T/errors.txt" 2>/dev/null &
	PIDS="$PIDS $!"
	sub_ready "$T/errors.txt" errors/probe
}

# restart_pipeline: the supervisor again on $T/config.json (after
# stop_checked, or a change of environment), waiting for ready as
# start_supervisor does.
restart_pipeline() {
	rm -f "$T"/run/stats/*.json
	start_supervisor
}

# sink_ready ACTION: the sink's stats file says ready.
sink_ready() { grep -q '"ready":true' "$T/run/stats/sink-$1-1.json" 2>/dev/null; }

# drain QUEUE: receives (and deletes) what QUEUE holds, appending the
# bodies to $T/QUEUE.json (a JSON list); count QUEUE N: at least N so far.
drain() {
	bk_tool sqs-receive "$1" > "$T/recv.json" || return 1
	"$BK_PY" -c 'import json,os,sys; f=sys.argv[2]; old=json.load(open(f)) if os.path.exists(f) else []
json.dump(old + [m["body"] for m in json.load(open(sys.argv[1]))], open(f, "w"))' "$T/recv.json" "$T/$1.json"
}
count() { drain "$1" && [ "$(pyq "$T/$1.json" 'len(d)')" -ge "$2" ]; }

# stop_checked: stops the supervised pipeline (its stages with it) after
# noting in $restarts the status lines of stages that restarted, and in
# $sanitizer the first ASan/UBSan/LSan reports of its log (leaks are
# reported at exit); both empty when all went well.
stop_checked() {
	"$BIN/iotrules" --config "$T/config.json" status > "$T/status.txt"
	restarts=$(awk 'NR > 1 && $3 ~ /^[0-9]+$/ && $5 != 0' "$T/status.txt")
	kill "$SUP" 2>/dev/null
	wait "$SUP" 2>/dev/null
	sanitizer=$(grep -m5 "AddressSanitizer\|runtime error:\|LeakSanitizer" "$T/sup.log" | cut -c1-400)
}

# status_retried MIN STAGE...: the RETRIED column of status summed over the
# instances of the STAGEs, polled until it reaches MIN or 5 s pass (each
# process writes its stats file twice a second, so a count can lag the
# requests a test has just seen answered); prints the last sum.
status_retried() {
	_want=$1
	shift
	for _ in $(seq 25); do
		"$BIN/iotrules" --config "$T/config.json" status > "$T/status.txt"
		_r=$(awk -v s=" $* " 'index(s, " " $1 " ") { n += $9 } END { print n + 0 }' "$T/status.txt")
		[ "$_r" -ge "$_want" ] && break
		sleep 0.2
	done
	echo "$_r"
}
