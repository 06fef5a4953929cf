# tests/backends/rabbitmq.sh: a private RabbitMQ cluster on loopback for
# tests (POSIX sh, sourced).  Groundwork for issue 13 (hops over quorum
# queues); needs `apt-get install rabbitmq-server` (the Debian service is
# never used: its unit is not started, and the /usr/sbin wrappers, which
# `su rabbitmq`, are bypassed).  Works as root.
#
#   rmq_cluster_start N DIR   start N nodes rabbit1@localhost ... rabbitN@localhost
#                             (data, logs, config, cookie under DIR), join
#                             them into one cluster, wait until all N run
#   rmq_node_kill I           kill -9 node I's beam (its pid file)
#   rmq_node_start I          start node I again, wait until it runs in the cluster
#   rmq_node_stop I           stop node I cleanly (rabbitmqctl stop)
#   rmq_nodes_start I...      start several stopped nodes at once (a node
#                             restarting waits for its peers: after a
#                             whole-cluster stop they must boot together)
#   rmq_cluster_stop          stop every node, kill leftovers and the private epmd
#   rmq_ctl I ARGS...         rabbitmqctl against node I
#   rmq_queues I ARGS...      rabbitmq-queues against node I
#   rmq_queue_leader I QUEUE  prints the node name of QUEUE's leader (asked of node I)
#   rmq_node_index NODE       rabbit2@localhost -> 2
#
# Exported after rmq_cluster_start:
#   RMQ_DIR          DIR
#   RMQ_N            N
#   RMQ_PORTS        "p1 p2 ... pN": AMQP ports (127.0.0.1), node I on the I-th
#   RMQ_NODES        "rabbit1@localhost ..."
#   RMQ_EPMD_PORT    the cluster's own epmd port (epmd listens on 127.0.0.1 only)
#   RMQ_DIST_PORTS   Erlang distribution ports, node I on the I-th
#   RMQ_USER RMQ_PASS  guest/guest (guest may log in over loopback only)
#   RMQ_TLS_PORTS    with RMQ_TLS set: the AMQPS ports, node I on the I-th
#
# RMQ_TLS=DIR (set before rmq_cluster_start; N <= 3): each node also
# listens for AMQP over TLS on 127.0.0.1, with DIR/ca.pem, DIR/server.pem
# and DIR/server.key (no client certificate asked for).
#
# Ports: one block of 31 free ports picked at random in 20000-32000 (below
# the kernel's ephemeral range): epmd, N AMQP ports, N distribution ports, 11
# ports for the CLI tools' own Erlang node (RABBITMQ_CTL_DIST_PORT_MIN/MAX,
# which default to 35672-35682 for everybody), so parallel clusters do not
# collide.  Node names use short names @localhost, which resolve offline.
#
# Cleanup: rmq_cluster_start does not set traps; call rmq_cluster_stop from
# the test's own EXIT trap.  A watchdog (one sh per cluster) also stops the
# cluster when the shell that started it is gone (kill -9 of the test).

RMQ_SBIN=${RMQ_SBIN:-/usr/lib/rabbitmq/bin}
RMQ_USER=guest
RMQ_PASS=guest
RMQ_N=0
RMQ_DIR=""
RMQ_WATCHDOG=""
export RMQ_USER RMQ_PASS

_rmq_log() { echo "# rabbitmq: $*" >&2; }

_rmq_port_used() {
	ss -Hltn "sport = :$1" 2>/dev/null | grep -q . && return 0
	ss -Hltn6 "sport = :$1" 2>/dev/null | grep -q . && return 0
	return 1
}

# _rmq_pick_base COUNT: a base port B with B..B+COUNT-1 all free
_rmq_pick_base() {
	for _rmq_try in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
		_rmq_r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
		_rmq_b=$((20000 + (_rmq_r % 300) * 40))
		_rmq_ok=1
		_rmq_p=$_rmq_b
		while [ "$_rmq_p" -lt $((_rmq_b + $1)) ]; do
			if _rmq_port_used "$_rmq_p"; then _rmq_ok=""; break; fi
			_rmq_p=$((_rmq_p + 1))
		done
		[ -n "$_rmq_ok" ] && { echo "$_rmq_b"; return 0; }
	done
	return 1
}

_rmq_nth() { # _rmq_nth I WORDS...
	_rmq_i=$1
	shift
	eval "echo \${$_rmq_i}"
}

# _rmq_env I CMD...: runs CMD with node I's environment
_rmq_env() {
	_rmq_e=$1
	shift
	_rmq_nd=$RMQ_DIR/n$_rmq_e
	# shellcheck disable=SC2086
	env HOME="$RMQ_DIR" \
		RABBITMQ_CONF_ENV_FILE="$RMQ_DIR/rabbitmq-env.conf" \
		RABBITMQ_NODENAME="rabbit$_rmq_e@localhost" \
		RABBITMQ_USE_LONGNAME=false \
		RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
		RABBITMQ_NODE_PORT="$(_rmq_nth "$_rmq_e" $RMQ_PORTS)" \
		RABBITMQ_DIST_PORT="$(_rmq_nth "$_rmq_e" $RMQ_DIST_PORTS)" \
		RABBITMQ_CTL_DIST_PORT_MIN="$RMQ_CTL_PORT_MIN" \
		RABBITMQ_CTL_DIST_PORT_MAX="$((RMQ_CTL_PORT_MIN + 10))" \
		ERL_EPMD_PORT="$RMQ_EPMD_PORT" \
		ERL_EPMD_ADDRESS=127.0.0.1 \
		RABBITMQ_CONFIG_FILE="$_rmq_nd/rabbitmq.conf" \
		RABBITMQ_ADVANCED_CONFIG_FILE="$_rmq_nd/advanced.config" \
		RABBITMQ_ENABLED_PLUGINS_FILE="$_rmq_nd/enabled_plugins" \
		RABBITMQ_MNESIA_BASE="$_rmq_nd/mnesia" \
		RABBITMQ_LOG_BASE="$_rmq_nd/log" \
		RABBITMQ_PID_FILE="$_rmq_nd/pid" \
		RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
		"$@"
}

rmq_ctl() {
	_rmq_c=$1
	shift
	_rmq_env "$_rmq_c" "$RMQ_SBIN/rabbitmqctl" -n "rabbit$_rmq_c@localhost" "$@"
}

rmq_queues() {
	_rmq_c=$1
	shift
	_rmq_env "$_rmq_c" "$RMQ_SBIN/rabbitmq-queues" -n "rabbit$_rmq_c@localhost" "$@"
}

rmq_node_index() { echo "$1" | sed -n 's/^rabbit\([0-9]*\)@.*/\1/p'; }

rmq_queue_leader() {
	rmq_ctl "$1" -q list_queues --no-table-headers name leader 2>/dev/null |
		awk -v q="$2" '$1 == q { print $2 }'
}

# _rmq_launch I: start node I's server in the background (output in n$I/server.out)
_rmq_launch() {
	_rmq_nd=$RMQ_DIR/n$1
	rm -f "$_rmq_nd/pid"
	# setsid: the node is not in the test's process group (a ^C to the test
	# must not kill it half-way; rmq_cluster_stop does the stopping).
	_rmq_env "$1" setsid "$RMQ_SBIN/rabbitmq-server" \
		> "$_rmq_nd/server.out" 2>&1 < /dev/null &
}

# _rmq_running_count I: how many cluster nodes node I sees running
_rmq_running_count() {
	rmq_ctl "$1" -q eval 'length(rabbit_nodes:all_running()).' 2>/dev/null | tr -d '\r'
}

# _rmq_await I [TIMEOUT]: wait for node I to boot (pid file, then the app)
_rmq_await() {
	_rmq_to=${2:-90}
	rmq_ctl "$1" -q wait --timeout "$_rmq_to" "$RMQ_DIR/n$1/pid" > /dev/null 2>&1 &&
		rmq_ctl "$1" -q await_startup --timeout "$_rmq_to" > /dev/null 2>&1 && return 0
	_rmq_log "node rabbit$1 did not start; log: $RMQ_DIR/n$1/server.out and $RMQ_DIR/n$1/log"
	tail -n 20 "$RMQ_DIR/n$1/server.out" | sed 's/^/# /' >&2
	return 1
}

_rmq_watchdog() {
	_rmq_parent=$1
	(
		trap '' HUP INT
		while kill -0 "$_rmq_parent" 2> /dev/null && [ -d "$RMQ_DIR" ]; do
			sleep 1
		done
		[ -d "$RMQ_DIR" ] && rmq_cluster_stop > /dev/null 2>&1
	) < /dev/null > /dev/null 2>&1 &
	RMQ_WATCHDOG=$!
}

rmq_cluster_start() {
	_rmq_n=${1:?rmq_cluster_start N DIR}
	RMQ_DIR=${2:?rmq_cluster_start N DIR}
	[ -x "$RMQ_SBIN/rabbitmq-server" ] ||
		{ _rmq_log "rabbitmq-server is missing: apt-get install rabbitmq-server"; return 1; }
	command -v ss > /dev/null || { _rmq_log "ss (iproute2) is missing"; return 1; }
	mkdir -p "$RMQ_DIR" || return 1
	RMQ_DIR=$(cd "$RMQ_DIR" && pwd)
	RMQ_N=$_rmq_n
	_rmq_base=$(_rmq_pick_base 31) || { _rmq_log "no free block of ports"; return 1; }
	RMQ_EPMD_PORT=$_rmq_base
	RMQ_PORTS=""
	RMQ_TLS_PORTS=""
	RMQ_DIST_PORTS=""
	RMQ_NODES=""
	_rmq_i=1
	while [ "$_rmq_i" -le "$_rmq_n" ]; do
		RMQ_PORTS="${RMQ_PORTS:+$RMQ_PORTS }$((_rmq_base + _rmq_i))"
		RMQ_TLS_PORTS="${RMQ_TLS_PORTS:+$RMQ_TLS_PORTS }$((_rmq_base + 5 + _rmq_i))"
		RMQ_DIST_PORTS="${RMQ_DIST_PORTS:+$RMQ_DIST_PORTS }$((_rmq_base + 9 + _rmq_i))"
		RMQ_NODES="${RMQ_NODES:+$RMQ_NODES }rabbit$_rmq_i@localhost"
		_rmq_i=$((_rmq_i + 1))
	done
	RMQ_CTL_PORT_MIN=$((_rmq_base + 20))
	export RMQ_TLS_PORTS RMQ_DIR RMQ_N RMQ_PORTS RMQ_DIST_PORTS RMQ_NODES RMQ_EPMD_PORT RMQ_CTL_PORT_MIN

	# the shared cookie: HOME=$RMQ_DIR for every server and CLI command
	rm -f "$RMQ_DIR/.erlang.cookie"
	od -An -N20 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F > "$RMQ_DIR/.erlang.cookie"
	chmod 0400 "$RMQ_DIR/.erlang.cookie"
	: > "$RMQ_DIR/rabbitmq-env.conf" # instead of /etc/rabbitmq/rabbitmq-env.conf
	_rmq_i=1
	while [ "$_rmq_i" -le "$_rmq_n" ]; do
		_rmq_nd=$RMQ_DIR/n$_rmq_i
		mkdir -p "$_rmq_nd/mnesia" "$_rmq_nd/log"
		# shellcheck disable=SC2086
		cat > "$_rmq_nd/rabbitmq.conf" <<-EOF
			listeners.tcp.1 = 127.0.0.1:$(_rmq_nth "$_rmq_i" $RMQ_PORTS)
			listeners.ssl = none
			log.console = false
			log.file.level = info
			disk_free_limit.absolute = 50MB
			vm_memory_high_watermark.relative = 0.2
			cluster_partition_handling = pause_minority
		EOF
		if [ -n "${RMQ_TLS:-}" ]; then
			sed -i '/^listeners.ssl = none$/d' "$_rmq_nd/rabbitmq.conf"
			# shellcheck disable=SC2086
			cat >> "$_rmq_nd/rabbitmq.conf" <<-EOF
				listeners.ssl.1 = 127.0.0.1:$(_rmq_nth "$_rmq_i" $RMQ_TLS_PORTS)
				ssl_options.cacertfile = $RMQ_TLS/ca.pem
				ssl_options.certfile = $RMQ_TLS/server.pem
				ssl_options.keyfile = $RMQ_TLS/server.key
				ssl_options.verify = verify_none
				ssl_options.fail_if_no_peer_cert = false
			EOF
		fi
		echo '[].' > "$_rmq_nd/advanced.config"
		echo '[].' > "$_rmq_nd/enabled_plugins" # no management plugin, no plugin at all
		_rmq_i=$((_rmq_i + 1))
	done
	_rmq_watchdog $$

	_rmq_i=1
	while [ "$_rmq_i" -le "$_rmq_n" ]; do
		_rmq_launch "$_rmq_i"
		_rmq_i=$((_rmq_i + 1))
	done
	_rmq_i=1
	while [ "$_rmq_i" -le "$_rmq_n" ]; do
		_rmq_await "$_rmq_i" || return 1
		_rmq_i=$((_rmq_i + 1))
	done
	_rmq_i=2
	while [ "$_rmq_i" -le "$_rmq_n" ]; do
		{ rmq_ctl "$_rmq_i" -q stop_app &&
			rmq_ctl "$_rmq_i" -q join_cluster rabbit1@localhost &&
			rmq_ctl "$_rmq_i" -q start_app; } > "$RMQ_DIR/n$_rmq_i/join.out" 2>&1 ||
			{ _rmq_log "rabbit$_rmq_i could not join: $(cat "$RMQ_DIR/n$_rmq_i/join.out")"; return 1; }
		_rmq_i=$((_rmq_i + 1))
	done
	_rmq_wait_running 1 "$_rmq_n" 60 || return 1
	echo "RMQ_PORTS=\"$RMQ_PORTS\" RMQ_NODES=\"$RMQ_NODES\" RMQ_EPMD_PORT=$RMQ_EPMD_PORT"
}

# _rmq_wait_running I COUNT SECONDS: until node I sees COUNT running nodes
_rmq_wait_running() {
	_rmq_end=$(($(date +%s) + $3))
	while :; do
		_rmq_got=$(_rmq_running_count "$1")
		[ "$_rmq_got" = "$2" ] && return 0
		if [ "$(date +%s)" -ge "$_rmq_end" ]; then
			_rmq_log "rabbit$1 sees ${_rmq_got:-no} running nodes, not $2"
			return 1
		fi
		sleep 0.5
	done
}

_rmq_pid() { cat "$RMQ_DIR/n$1/pid" 2> /dev/null; }

rmq_node_kill() {
	_rmq_p=$(_rmq_pid "$1")
	[ -n "$_rmq_p" ] || { _rmq_log "no pid for rabbit$1"; return 1; }
	kill -9 "$_rmq_p" 2> /dev/null
	# wait until it is gone (its epmd registration goes with its socket)
	for _ in $(seq 50); do
		kill -0 "$_rmq_p" 2> /dev/null || break
		sleep 0.1
	done
	rm -f "$RMQ_DIR/n$1/pid"
}

rmq_node_stop() {
	rmq_ctl "$1" -q stop > /dev/null 2>&1 || rmq_node_kill "$1"
}

rmq_node_start() {
	_rmq_p=$(_rmq_pid "$1")
	if [ -n "$_rmq_p" ] && kill -0 "$_rmq_p" 2> /dev/null; then
		_rmq_log "rabbit$1 is already running"
		return 0
	fi
	_rmq_launch "$1"
	_rmq_await "$1" || return 1
	_rmq_wait_running "$1" "$RMQ_N" 60
}

rmq_nodes_start() {
	for _rmq_s in "$@"; do
		_rmq_launch "$_rmq_s"
	done
	for _rmq_s in "$@"; do
		_rmq_await "$_rmq_s" 180 || return 1
	done
	_rmq_wait_running "$1" "$RMQ_N" 90
}

rmq_cluster_stop() {
	[ -n "$RMQ_DIR" ] && [ -d "$RMQ_DIR" ] || return 0
	_rmq_i=1
	while [ "$_rmq_i" -le "$RMQ_N" ]; do
		_rmq_p=$(_rmq_pid "$_rmq_i")
		if [ -n "$_rmq_p" ] && kill -0 "$_rmq_p" 2> /dev/null; then
			rmq_ctl "$_rmq_i" -q stop > /dev/null 2>&1 &
		fi
		_rmq_i=$((_rmq_i + 1))
	done
	wait_end=$(($(date +%s) + 20))
	_rmq_i=1
	while [ "$_rmq_i" -le "$RMQ_N" ]; do
		_rmq_p=$(_rmq_pid "$_rmq_i")
		if [ -n "$_rmq_p" ]; then
			while kill -0 "$_rmq_p" 2> /dev/null && [ "$(date +%s)" -lt "$wait_end" ]; do
				sleep 0.2
			done
			kill -9 "$_rmq_p" 2> /dev/null
		fi
		rm -f "$RMQ_DIR/n$_rmq_i/pid"
		_rmq_i=$((_rmq_i + 1))
	done
	# leftovers: anything still holding our ports (a node that never wrote
	# its pid file, a CLI node, the private epmd)
	for _rmq_port in $RMQ_EPMD_PORT $RMQ_PORTS $RMQ_DIST_PORTS; do
		for _rmq_p in $(ss -Hltnp "sport = :$_rmq_port" 2> /dev/null |
			sed -n 's/.*pid=\([0-9]*\).*/\1/p' | sort -u); do
			kill -9 "$_rmq_p" 2> /dev/null
		done
	done
	if [ -n "$RMQ_WATCHDOG" ] && [ "$RMQ_WATCHDOG" != "$$" ]; then
		kill "$RMQ_WATCHDOG" 2> /dev/null
		RMQ_WATCHDOG=""
	fi
	RMQ_N=0
}
