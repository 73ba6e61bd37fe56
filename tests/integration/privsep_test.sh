#!/usr/bin/env bash
# Privilege separation (issue 16, signer/privsep.h): credsignd starts as a
# supervisor with a key process and a network process; a certificate round
# trip works through the split; SIGHUP reaches the network process; a key
# process killed with SIGKILL is restarted and requests succeed again
# within 5 s (keyproc.restart audited); a network process killed with
# SIGKILL is restarted with a new key process and serves again
# (daemon.restart audited); SIGTERM to the supervisor stops all three with
# exit status 0; as root, a configuration without server.user and without
# server.allow_root is refused at start (exit 1, the reason logged).
# What it says (fix round): each child's confinement in one line, its
# process name (credsignd-key, credsignd-net), the restarts in
# GET /metrics, "credsignd VERSION starting" once (a restarted network
# process says so), a clean stop without errors, the mlock warning at most
# once per start; hardening.seccomp = false warned of and "seccomp off";
# as root, hardening.privsep = false refused without server.allow_root, and
# a file the network process's account cannot read refused at start,
# naming the setting, the account and the fix. A node whose
# server.node_id another instance took (a row written into the store)
# stops: no SIGSYS under seccomp, no restart, exit status 1.
#
#   privsep_test.sh BUILD_DIR STATE_DIR SOFTHSM_MODULE
BUILD=${1:?}
STATE=${2:?}
SOFTHSM=${3:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_token privsep || exit 1
it_setup privsep || exit 1
export CREDSIGN_URL=$url CREDSIGN_CACERT=$pki/ca.pem
export CREDSIGN_CERT=$clients/ci-deployer.pem CREDSIGN_KEY=$clients/ci-deployer.key

# the pid of the last key or network process the supervisor started
started_pid() { # started_pid "key process"|"network process"
	grep -o "supervisor: $1 pid [0-9]* started" "$log" | tail -1 | awk '{print $5}'
}
children() { pgrep -P "$daemon" | sort | tr '\n' ' '; }

# ---- the split -----------------------------------------------------------------------
split() {
	local key net
	key=$(started_pid "key process")
	net=$(started_pid "network process")
	[ -n "$key" ] && [ -n "$net" ] && [ "$key" != "$net" ] || { echo "  key '$key' network '$net'"; return 1; }
	# both are the supervisor's children, and nothing else is
	[ "$(children)" = "$(printf '%s\n' "$key" "$net" | sort | tr '\n' ' ')" ] || {
		echo "  children of $daemon: $(children); key $key network $net"
		return 1
	}
	grep -q "key process: serving" "$log" && grep -q "ready" "$log"
}
check "the daemon starts as a supervisor, a key process and a network process" split

# ---- a round trip through the key process ------------------------------------------------
round_trip() {
	"$BUILD/bin/credsign" generate --preset soc2 --project payments --environment production \
		--system db-prod --certify --format env > "$work/gen.env" 2> "$work/gen.err" || { cat "$work/gen.err"; return 1; }
	# shellcheck source=/dev/null
	. "$work/gen.env"
	"$BUILD/bin/credsign" cert get "$CREDSIGN_CERT_ID" --jws > "$work/cert.jws" || return 1
	"$BUILD/bin/credsign" jwks > "$work/jwks.json" || return 1
	printf '%s' "$CREDSIGN_CREDENTIAL" > "$work/credential"
	"$BUILD/bin/credsign" verify "$work/cert.jws" --jwks "$work/jwks.json" \
		--credential-file "$work/credential" > "$work/verify.out" || { cat "$work/verify.out"; return 1; }
	grep -q "VERIFIED certificate $CREDSIGN_CERT_ID" "$work/verify.out"
}
check "generate -> certify -> fetch -> verify through the key process" round_trip

# ---- SIGHUP ---------------------------------------------------------------------------
kill -HUP "$daemon"
check "SIGHUP to the supervisor reaches the network process (access rules reloaded)" \
	wait_for_log "SIGHUP: access rules reloaded"

# audited ACTION: an audit entry of ACTION, outcome failure, error_code
# naming the end of the process PID, in the audit log
audited() { # audited ACTION PID
	local got
	got=$(call auditor GET '/api/audit?limit=10000')
	[[ "$got" == "200 "* ]] || { echo "  ${got:0:200}"; return 1; }
	python3 - "${got#200 }" "$1" "$2" <<'PY'
import json, sys
d = json.loads(sys.argv[1])
hits = [e for e in d["entries"] if e["action"] == sys.argv[2]]
ok = [e for e in hits if e["actor"] == "system" and e["outcome"] == "failure"
      and f"pid {sys.argv[3]} killed by signal SIGKILL" in (e.get("error_code") or "")]
if not ok:
    print("  entries of", sys.argv[2], hits)
    sys.exit(1)
PY
}

# requests succeed again within SECONDS
serves_within() { # serves_within SECONDS
	local end=$((SECONDS + $1))
	while [ $SECONDS -lt $end ]; do
		round_trip > /dev/null 2>&1 && return 0
		sleep 0.2
	done
	round_trip
}

# a new PROCESS (other than OLD) started within 5 s
restarted() { # restarted "key process"|"network process" OLD
	for _ in $(seq 50); do
		local now
		now=$(started_pid "$1")
		[ -n "$now" ] && [ "$now" != "$2" ] && kill -0 "$now" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "  no new $1 (old $2)"
	return 1
}

# ---- kill -9 of the key process ---------------------------------------------------------
old_key=$(started_pid "key process")
old_net=$(started_pid "network process")
kill -9 "$old_key"
check "key process killed: the supervisor logs its end" \
	wait_for_log "supervisor: key process pid $old_key killed by signal SIGKILL"
check "  and restarts it" restarted "key process" "$old_key"
check "  requests succeed again within 5 s" serves_within 5
check "  the network process is the same" kill -0 "$old_net"
check "  keyproc.restart is audited with the reason" audited keyproc.restart "$old_key"

# ---- kill -9 of the network process ---------------------------------------------------------
old_key=$(started_pid "key process")
kill -9 "$old_net"
check "network process killed: the supervisor logs its end" \
	wait_for_log "supervisor: network process pid $old_net killed by signal SIGKILL"
check "  and restarts it" restarted "network process" "$old_net"
check "  with a new key process" restarted "key process" "$old_key"
check "  it serves again" serves_within 10
check "  daemon.restart is audited with the reason" audited daemon.restart "$old_net"

# ---- what it says -----------------------------------------------------------------------------
names() {
	local key net
	key=$(started_pid "key process")
	net=$(started_pid "network process")
	[ "$(cat /proc/"$daemon"/comm)" = credsignd ] && [ "$(cat /proc/"$key"/comm)" = credsignd-key ] &&
		[ "$(cat /proc/"$net"/comm)" = credsignd-net ] ||
		{ echo "  names: $(cat /proc/"$daemon"/comm) $(cat /proc/"$key"/comm) $(cat /proc/"$net"/comm)"; return 1; }
}
check "process names: credsignd, credsignd-key, credsignd-net" names
summaries() {
	local uid
	uid=$(id -u "$SERVICE_USER")
	grep -qE "msg=\"key process: uid $(id -u) \($(id -un)\), no capabilities, NoNewPrivs, seccomp on, memory (locked|not locked \(secure heap only\))\"" "$log" &&
		grep -qE "msg=\"network process: uid $uid \($SERVICE_USER\), no capabilities, NoNewPrivs, seccomp on, memory (locked|not locked \(secure heap only\))\"" "$log" ||
		{ grep -E "process: uid" "$log"; return 1; }
}
check "each child logs its confinement in one line" summaries
restart_metrics() {
	local args
	read -r -a args <<< "$(client operator)"
	curl -s "${args[@]}" "$url/metrics" > "$work/metrics" || return 1
	# the key process: killed, then restarted with the network process
	grep -qx 'credsign_process_restarts_total{process="key"} 2' "$work/metrics" &&
		grep -qx 'credsign_process_restarts_total{process="network"} 1' "$work/metrics" ||
		{ grep restarts "$work/metrics"; return 1; }
}
check "GET /metrics counts the restarts (key 2, network 1)" restart_metrics
check "credsignd VERSION starting once; the restarted network process says so" \
	eval '[ "$(grep -c "credsignd .* starting" "$log")" = 1 ] && grep -q "network process restarted (network process pid $old_net killed" "$log"'
check "the mlock warning at most once per start" eval '[ "$(grep -c "hardening.mlock: mlockall skipped" "$log")" -le 1 ]'

# ---- SIGTERM to the supervisor ----------------------------------------------------------------
sigterm_stops_all() {
	local kids
	kids=$(children)
	[ -n "$kids" ] || return 1
	kill -TERM "$daemon"
	wait "$daemon" || { echo "  exit status $?"; return 1; }
	for p in $kids; do
		! kill -0 "$p" 2>/dev/null || { echo "  $p still runs"; return 1; }
	done
	grep -q "supervisor: stopped" "$log"
}
check "SIGTERM to the supervisor: all three processes end, exit status 0" sigterm_stops_all
check "  a clean stop logs no error" eval '! sed -n "/SIGTERM: stopping/,\$p" "$log" | grep "level=error"'

# ---- server.node_id taken by another node: a final stop, under seccomp -------------------------
node_id_taken() {
	local kids now status
	start_daemon || return 1
	wait_for_log "network process pid [0-9]* ready" || wait_for_log "credsignd .* starting" || return 1
	kids=$(children)
	# another instance renewed the id (seen in the future: it stays live)
	now=$(date +%s%3N)
	sqlite3 "$db" "PRAGMA busy_timeout = 5000; UPDATE store_nodes SET instance = 'intruder', host = 'elsewhere',
		pid = 4242, seen_ms = $((now + 600000)) WHERE node_id = 'it-privsep';" > /dev/null || return 1
	# the next renewal (every 5 s) finds it; the server stops within 1 s
	for _ in $(seq 200); do
		kill -0 "$daemon" 2>/dev/null || break
		sleep 0.1
	done
	wait "$daemon"
	status=$?
	# the intruder gives the id up again, for the starts below
	sqlite3 "$db" "PRAGMA busy_timeout = 5000; UPDATE store_nodes SET seen_ms = 0 WHERE node_id = 'it-privsep';" \
		> /dev/null || return 1
	[ $status = 1 ] || { echo "  exit status $status"; tail -20 "$log"; return 1; }
	for p in $kids; do
		! kill -0 "$p" 2>/dev/null || { echo "  $p still runs"; return 1; }
	done
	grep -q "server.node_id it-privsep is now held by another running node" "$log" &&
		grep -q "network process pid [0-9]* exited with status 5" "$log" &&
		grep -q "supervisor: the network process gave up server.node_id" "$log" &&
		[ "$(grep -c "supervisor: network process pid [0-9]* started" "$log")" = 1 ] &&
		! grep -q "SIGSYS\|restarting the key and network" "$log" || { tail -20 "$log"; return 1; }
}
check "server.node_id taken by another node: drained, not restarted, exit status 1 (no SIGSYS)" node_id_taken

# ---- hardening.seccomp = false ------------------------------------------------------------------------
no_seccomp() {
	local c=$work/noseccomp.conf l=$work/noseccomp.log pid
	{ cat "$conf"; echo 'hardening = { seccomp = false; };'; } > "$c"
	chmod 644 "$c"
	"$BUILD/bin/credsignd" --config "$c" > "$l" 2>&1 &
	pid=$!
	for _ in $(seq 100); do grep -q "network process: uid" "$l" && break; sleep 0.1; done
	kill -TERM "$pid"
	wait "$pid"
	grep -q 'level=warn .*hardening.seccomp = false' "$l" &&
		grep -q 'key process: uid .*, seccomp off' "$l" && grep -q 'network process: uid .*, seccomp off' "$l" ||
		{ cat "$l"; return 1; }
}
check "hardening.seccomp = false: a warning at start, \"seccomp off\" in both summaries" no_seccomp

# ---- root without an account ------------------------------------------------------------------------
root_refused() {
	local bad=$work/root.conf out status
	sed -e 's/user = "[a-z]*";//' "$conf" > "$bad"
	grep -q 'user =' "$bad" && return 1
	out=$(timeout 20 "$BUILD/bin/credsignd" --config "$bad" 2>&1)
	status=$?
	[ $status = 1 ] || { echo "  exit status $status: $out"; return 1; }
	[[ "$out" == *"credsignd runs as root: set server.user"* ]] || { echo "  $out"; return 1; }
	# nothing was started: no child's line
	[[ "$out" != *"key process pid"* ]] || { echo "  $out"; return 1; }
}
# as root, one process serving the network as root needs server.allow_root
unsplit_refused() {
	local bad=$work/unsplit.conf out status
	{ cat "$conf"; echo 'hardening = { privsep = false; };'; } > "$bad"
	out=$(timeout 20 "$BUILD/bin/credsignd" --config "$bad" 2>&1)
	status=$?
	[ $status = 1 ] && [[ "$out" == *"setting 'hardening.privsep': credsignd runs as root with hardening.privsep = false"* ]] ||
		{ echo "  exit status $status: $out"; return 1; }
	out=$("$BUILD/bin/credsignd" --check-config "$bad" --offline 2>&1) && { echo "  check passed: $out"; return 1; }
	[[ "$out" == *"setting 'hardening.privsep'"* ]] || { echo "  $out"; return 1; }
}
# a CA the account cannot read: refused at start, before any process is forked
unreadable_refused() {
	local bad=$work/private.conf out status
	mkdir -p "$work/private"
	chmod 700 "$work/private"
	cp "$pki/ca.pem" "$work/private/ca.pem"
	sed -e "s|ca = \"$pki/ca.pem\"|ca = \"$work/private/ca.pem\"|" "$conf" > "$bad"
	chmod 644 "$bad"
	grep -q "$work/private/ca.pem" "$bad" || return 1
	out=$(timeout 20 "$BUILD/bin/credsignd" --config "$bad" 2>&1)
	status=$?
	[ $status = 1 ] || { echo "  exit status $status: $out"; return 1; }
	[[ "$out" == *"setting 'tls.ca': $work/private/ca.pem: directory $work/private is not searchable by user $SERVICE_USER"*"chgrp $SERVICE_USER $work/private && chmod g+x $work/private"* ]] ||
		{ echo "  $out"; return 1; }
	[[ "$out" != *"key process pid"* ]] || { echo "  $out"; return 1; }
	chmod 711 "$work/private"
	chmod 600 "$work/private/ca.pem"
	out=$("$BUILD/bin/credsignd" --check-config "$bad" --offline 2>&1) && { echo "  check passed: $out"; return 1; }
	[[ "$out" == *"setting 'tls.ca': $work/private/ca.pem is not readable by user $SERVICE_USER"*"chgrp $SERVICE_USER $work/private/ca.pem && chmod 640 $work/private/ca.pem"* ]] ||
		{ echo "  $out"; return 1; }
}
if [ "$(id -u)" = 0 ]; then
	check "as root without server.user or server.allow_root: start refused, exit 1" root_refused
	check "as root, hardening.privsep = false without server.allow_root: refused" unsplit_refused
	if [ -n "$RUN_AS" ]; then
		check "a file the network process cannot read: start and --check-config refuse it" unreadable_refused
	fi
else
	echo "ok - as root without server.user: skipped (not run as root)"
fi

finish
