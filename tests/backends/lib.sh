# tests/backends/lib.sh: local AWS backends for the sink tests (sourced by a
# TAP test, after tests/integration/lib.sh if that is used too).
#
#   backends_start [recorder] [dynalite] [kinesalite] [s3rver] [fauxqs]
#
# starts the chosen emulators on free 127.0.0.1 ports (each picks its own
# port and reports it, so parallel tests never collide) and always the
# recorder (tests/backends/recorder.py): its HTTPS port checks SigV4 and
# answers Firehose, Lambda, STS and the services without an emulator; one
# signature-checking HTTPS proxy port sits in front of each emulator; a
# plain-HTTP port serves IMDSv2 and container credentials.  Returns non-zero,
# loudly, when a backend cannot start (e.g. `npm ci --prefix tests/backends`
# was never run): a test should `backends_start ... || exit 1`.
# Everything is stopped by backends_stop, which also runs on EXIT.
#
# Exported after backends_start (URLs have no trailing slash):
#   BK_DIR          working directory (logs, certs, s3rver data)
#   BK_CA           test CA file (pass as CURLOPT_CAINFO / --cacert)
#   BK_CERT BK_KEY  the server certificate and key (localhost, 127.0.0.1, *.amazonaws.com ...)
#   BK_AK BK_SK     test credentials the recorder accepts (AKIDEXAMPLE:...)
#   BK_S3_AK BK_S3_SK   S3RVER:S3RVER, the only key s3rver accepts: S3 tests sign with these
#                       (the recorder accepts them too)
#   BK_REGION       us-east-1
#   BK_RECORDER BK_RECORDER_PORT            https://127.0.0.1:PORT (main recorder port)
#   BK_RECORDER_HTTP BK_RECORDER_HTTP_PORT  http://127.0.0.1:PORT (IMDSv2 under /latest/, container creds at /creds)
#   BK_CONTAINER_TOKEN          the Authorization value /creds requires
#   BK_WEB_IDENTITY_TOKEN_FILE  the token STS AssumeRoleWithWebIdentity requires
#   BK_LOG          the recorder's JSONL log of every request
#   BK_DYNAMODB BK_KINESIS BK_S3 BK_SQS (= BK_SNS): the signature-checking proxies, https
#   BK_DYNAMODB_PORT ... BK_SQS_PORT: their ports (for CURLOPT_CONNECT_TO)
#   BK_DYNAMODB_RAW BK_KINESIS_RAW BK_S3_RAW BK_SQS_RAW: the emulators themselves, http
# Inputs (optional, set before backends_start): BK_TEMP_CREDS_TTL (seconds,
# default 3600), BK_RECORDER_ARGS (extra recorder options), BK_S3_BUCKETS
# (buckets s3rver creates at start).
#
# Helpers: bk_requests [SERVICE] (recorded requests, a JSON list),
# bk_clear, bk_ctl METHOD 'fail?status=503&count=2' (any control endpoint),
# bk_curl SERVICE CURL_ARGS... (curl signed with BK_AK/BK_SK and BK_CA),
# bk_tool CMD ARGS... (tests/backends/bk.py: ddb-create, ddb-scan,
# kinesis-create, kinesis-read, s3-create-bucket, s3-list, s3-get,
# sqs-create, sqs-receive, sns-create-topic; see bk.py --help).

BK_HOME=${BK_HOME:-$(cd "$(dirname "$0")/../backends" && pwd)}
BK_PY=/usr/bin/python3
BK_PIDS=""

_bk_fail() {
	echo "# backends_start: $*" >&2
	echo "# backends_start: $*"
	return 1
}

# _bk_launch NAME CMD...: runs CMD in the background, output in
# $BK_DIR/NAME.out/.err (pid in _bk_pid_NAME).  _bk_wait NAME waits (20 s)
# for its "listening PORT" line and sets _bk_port.
_bk_launch() {
	_bk_name=$1
	shift
	"$@" > "$BK_DIR/$_bk_name.out" 2> "$BK_DIR/$_bk_name.err" &
	_bk_pid=$!
	eval "_bk_pid_$_bk_name=$_bk_pid"
	BK_PIDS="$BK_PIDS $_bk_pid"
	if [ -n "${PIDS+x}" ]; then PIDS="$PIDS $_bk_pid"; fi
}
_bk_wait() {
	eval "_bk_pid=\$_bk_pid_$1"
	for _ in $(seq 200); do
		_bk_port=$(sed -n 's/^listening \([0-9]*\)$/\1/p' "$BK_DIR/$1.out")
		[ -n "$_bk_port" ] && return 0
		kill -0 "$_bk_pid" 2>/dev/null || break
		sleep 0.1
	done
	sed 's/^/# /' "$BK_DIR/$1.err" >&2
	_bk_fail "$1 did not start (log: $BK_DIR/$1.err)"
}

backends_start() {
	"$BK_PY" -c 'import botocore' 2>/dev/null ||
		{ _bk_fail "/usr/bin/python3 with botocore is missing: run scripts/deps test (apt-get install python3-botocore)"; return 1; }
	command -v openssl > /dev/null || { _bk_fail "openssl is missing"; return 1; }
	_bk_need_node=""
	for _bk_b in "$@"; do
		case $_bk_b in
		recorder) ;;
		dynalite | kinesalite | s3rver | fauxqs) _bk_need_node=1 ;;
		*) _bk_fail "unknown backend $_bk_b"; return 1 ;;
		esac
	done
	if [ -n "$_bk_need_node" ]; then
		command -v node > /dev/null ||
			{ _bk_fail "node is missing: install nodejs and npm (apt-get install nodejs npm), then npm ci --prefix tests/backends"; return 1; }
		for _bk_b in "$@"; do
			[ "$_bk_b" = recorder ] && continue
			[ -f "$BK_HOME/node_modules/$_bk_b/package.json" ] ||
				{ _bk_fail "the emulator $_bk_b is not installed: run 'npm ci --prefix tests/backends' (or scripts/deps test)"; return 1; }
		done
	fi
	if [ -n "${T:-}" ] && [ -d "$T" ]; then
		BK_DIR=$T/backends
		mkdir -p "$BK_DIR"
	else
		BK_DIR=$(mktemp -d /tmp/iotrules-backends.XXXXXX)
		_bk_rmdir=1
	fi
	trap _bk_exit EXIT
	trap '_bk_exit; trap - EXIT; exit 129' HUP INT PIPE TERM
	export BK_EXIT_WITH_PARENT=1
	export BK_DIR BK_CA="$BK_DIR/tls/ca.pem" BK_CERT="$BK_DIR/tls/server.pem" BK_KEY="$BK_DIR/tls/server.key"
	export BK_AK=AKIDEXAMPLE BK_SK='wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' BK_S3_AK=S3RVER BK_S3_SK=S3RVER
	export BK_REGION=us-east-1 BK_LOG="$BK_DIR/recorder.jsonl"
	export BK_WEB_IDENTITY_TOKEN_FILE="$BK_DIR/web-identity-token"
	BK_CONTAINER_TOKEN=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
	export BK_CONTAINER_TOKEN
	echo "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ0ZXN0In0.test-$BK_CONTAINER_TOKEN" > "$BK_WEB_IDENTITY_TOKEN_FILE"
	_bk_proxies=""
	_bk_vars=""
	for _bk_b in "$@"; do
		case $_bk_b in
		dynalite) _bk_launch dynalite node "$BK_HOME/emulators/dynalite-loopback.js" 0 ;;
		# shellcheck disable=SC2086
		kinesalite) _bk_launch kinesalite node "$BK_HOME/emulators/kinesalite-loopback.js" 0 ${BK_KINESALITE_DISK:+"$BK_DIR/kinesalite-data"} ;;
		s3rver)
			# shellcheck disable=SC2086
			_bk_launch s3rver node "$BK_HOME/emulators/s3rver-loopback.js" 0 "$BK_DIR/s3data" ${BK_S3_BUCKETS:-}
			;;
		fauxqs) _bk_launch fauxqs node "$BK_HOME/emulators/fauxqs-loopback.mjs" 0 ;;
		esac
	done
	"$BK_HOME/gen-certs.sh" "$BK_DIR/tls" || { _bk_fail "gen-certs.sh failed"; return 1; }
	for _bk_b in "$@"; do
		case $_bk_b in
		dynalite) _bk_v=DYNAMODB ;;
		kinesalite) _bk_v=KINESIS ;;
		s3rver) _bk_v=S3 ;;
		fauxqs) _bk_v=SQS ;;
		*) continue ;;
		esac
		_bk_wait "$_bk_b" || return 1
		export "BK_${_bk_v}_RAW=http://127.0.0.1:$_bk_port"
		_bk_proxies="$_bk_proxies --proxy 0=http://127.0.0.1:$_bk_port"
		_bk_vars="$_bk_vars $_bk_v"
	done
	rm -f "$BK_DIR/recorder.ready"
	# shellcheck disable=SC2086
	_bk_spawn_recorder $_bk_proxies || return 1
	_bk_i=0
	for _bk_v in $_bk_vars; do
		_bk_p=$("$BK_PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["proxies"][int(sys.argv[2])]["port"])' "$BK_DIR/recorder.ready" "$_bk_i")
		export "BK_${_bk_v}=https://127.0.0.1:$_bk_p" "BK_${_bk_v}_PORT=$_bk_p"
		_bk_i=$((_bk_i + 1))
	done
	# shellcheck disable=SC2153
	[ -n "${BK_SQS:-}" ] && export BK_SNS="$BK_SQS" BK_SNS_PORT="$BK_SQS_PORT" BK_SNS_RAW="$BK_SQS_RAW"
	return 0
}

_bk_spawn_recorder() {
	# shellcheck disable=SC2086
	"$BK_PY" "$BK_HOME/recorder.py" --port 0 --http-port 0 --cert "$BK_CERT" --key "$BK_KEY" \
		--cred "$BK_AK:$BK_SK" --cred "$BK_S3_AK:$BK_S3_SK" --log "$BK_LOG" \
		--temp-creds-ttl "${BK_TEMP_CREDS_TTL:-3600}" --web-identity-token-file "$BK_WEB_IDENTITY_TOKEN_FILE" \
		--container-token "$BK_CONTAINER_TOKEN" --ready-file "$BK_DIR/recorder.ready" --exit-with-parent \
		"$@" ${BK_RECORDER_ARGS:-} > "$BK_DIR/recorder.out" 2> "$BK_DIR/recorder.err" &
	_bk_pid=$!
	BK_PIDS="$BK_PIDS $_bk_pid"
	if [ -n "${PIDS+x}" ]; then PIDS="$PIDS $_bk_pid"; fi
	for _ in $(seq 200); do
		if [ -s "$BK_DIR/recorder.ready" ]; then
			BK_RECORDER_PORT=$("$BK_PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$BK_DIR/recorder.ready")
			BK_RECORDER_HTTP_PORT=$("$BK_PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["http_port"])' "$BK_DIR/recorder.ready")
			export BK_RECORDER_PORT BK_RECORDER_HTTP_PORT
			export BK_RECORDER="https://127.0.0.1:$BK_RECORDER_PORT" BK_RECORDER_HTTP="http://127.0.0.1:$BK_RECORDER_HTTP_PORT"
			return 0
		fi
		kill -0 "$_bk_pid" 2>/dev/null || break
		sleep 0.1
	done
	sed 's/^/# /' "$BK_DIR/recorder.err" >&2
	_bk_fail "the recorder did not start (log: $BK_DIR/recorder.err)"
}

# backends_stop: SIGTERM to every backend, SIGKILL after 3 s.
backends_stop() {
	[ -z "$BK_PIDS" ] && return 0
	for _bk_p in $BK_PIDS; do kill "$_bk_p" 2>/dev/null; done
	for _ in $(seq 30); do
		_bk_alive=""
		for _bk_p in $BK_PIDS; do kill -0 "$_bk_p" 2>/dev/null && _bk_alive="$_bk_alive $_bk_p"; done
		[ -z "$_bk_alive" ] && break
		sleep 0.1
	done
	for _bk_p in $BK_PIDS; do kill -9 "$_bk_p" 2>/dev/null; done
	BK_PIDS=""
	if [ -n "${_bk_rmdir:-}" ] && [ -z "${BK_KEEP:-}" ]; then rm -rf "$BK_DIR"; fi
	return 0
}

# bk_kill NAME: kills an emulator (SIGKILL), as a destination outage.
# bk_restart NAME: starts it again on the same port with the same data
# (s3rver keeps its objects on disk, and kinesalite its streams when
# BK_KINESALITE_DISK=1 was set before backends_start (LevelDB: slower);
# dynalite and fauxqs start empty).  The proxies in front of them reconnect by themselves.
bk_kill() {
	eval "_bk_p=\$_bk_pid_$1"
	kill -9 "$_bk_p" 2>/dev/null
	wait "$_bk_p" 2>/dev/null
	return 0
}
bk_restart() {
	_bk_v=$(echo "$1" | sed 's/dynalite/DYNAMODB/; s/kinesalite/KINESIS/; s/s3rver/S3/; s/fauxqs/SQS/')
	eval "_bk_raw=\$BK_${_bk_v}_RAW"
	_bk_rport=${_bk_raw##*:}
	mv "$BK_DIR/$1.out" "$BK_DIR/$1.out.old" 2>/dev/null
	case $1 in
	# shellcheck disable=SC2086
	kinesalite) _bk_launch kinesalite node "$BK_HOME/emulators/kinesalite-loopback.js" "$_bk_rport" ${BK_KINESALITE_DISK:+"$BK_DIR/kinesalite-data"} ;;
	s3rver) _bk_launch s3rver node "$BK_HOME/emulators/s3rver-loopback.js" "$_bk_rport" "$BK_DIR/s3data" ;;
	dynalite) _bk_launch dynalite node "$BK_HOME/emulators/dynalite-loopback.js" "$_bk_rport" ;;
	fauxqs) _bk_launch fauxqs node "$BK_HOME/emulators/fauxqs-loopback.mjs" "$_bk_rport" ;;
	esac
	_bk_wait "$1"
}

_bk_exit() {
	backends_stop || true   # under set -e a failure here must not skip cleanup
	if command -v cleanup > /dev/null 2>&1; then cleanup; fi
}

bk_ctl() { curl -sS --cacert "$BK_CA" -X "$1" "$BK_RECORDER/__recorder/$2"; }
bk_clear() { bk_ctl DELETE requests > /dev/null; }
# bk_requests [SERVICE]: the recorded requests (of SERVICE only), a JSON list.
bk_requests() {
	if [ $# -eq 0 ]; then
		bk_ctl GET requests
	else
		bk_ctl GET requests | "$BK_PY" -c 'import json,sys; print(json.dumps([r for r in json.load(sys.stdin) if r["service"] == sys.argv[1]], indent=1))' "$1"
	fi
}
bk_curl() {
	_bk_s=$1
	shift
	curl -sS --cacert "$BK_CA" --aws-sigv4 "aws:amz:$BK_REGION:$_bk_s" --user "$BK_AK:$BK_SK" "$@"
}
bk_tool() { "$BK_PY" "$BK_HOME/bk.py" "$@"; }
