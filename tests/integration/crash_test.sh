#!/usr/bin/env bash
# Crashes under load (issue 16): generate + certify pairs on 4 mTLS
# connections (crash_load.py, 0.1 s between a connection's pairs, so that
# checking every acknowledged certificate after each kill stays quick)
# while parts of the split daemon are killed. A recovery time is from the
# kill to the acknowledgement of the first pair begun after it.
#   1. SIGKILL to the key process: the supervisor starts another; requests
#      meanwhile fail with 503 only, for less than 5 s; keyproc.restart is
#      audited.
#   2. SIGKILL to the network process: the supervisor starts another on the
#      listener it kept; requests fail (no answer, or 503) for less than 10 s;
#      daemon.restart is audited.
#   3. kill -9 at random moments (1 to 2.5 s after the previous recovery
#      and check: a child that ends within 1 s of its start counts towards
#      the supervisor's crash-loop limit), 20 times (CREDSIGN_CRASH_KILLS; the
#      ASan build's suite runs 8): the supervisor (the whole daemon:
#      its children follow it; the test starts it again), the key process
#      or the network process, in a shuffled order. After each restart every
#      acknowledged certificate is served as acknowledged and verifies
#      (crash_check.py), no session has two certificates; every fifth
#      round and at the end the audit chain and its checkpoints verify.
# Prints the recovery times and the counts.
#
#   crash_test.sh BUILD_DIR STATE_DIR SOFTHSM_MODULE
BUILD=${1:?}
STATE=${2:?}
SOFTHSM=${3:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
it_token crash || exit 1
EXTRA_CONF='audit = { checkpoint_entries = 40; checkpoint_seconds = 2; };' it_setup crash || exit 1

children() { pgrep -P "$daemon" | sort -n; }
key_process() { # the child that maps the PKCS#11 module
	local p
	for p in $(children); do grep -q "$(basename "$SOFTHSM")" "/proc/$p/maps" 2>/dev/null && echo "$p"; done
}
network_process() {
	local p k
	k=$(key_process)
	for p in $(children); do [ "$p" != "$k" ] && echo "$p"; done
}
now() { date +%s.%N; }
acks() { cat "$load/acks.jsonl" 2> /dev/null | wc -l; }
# first_ack_after T: when the first pair begun after T was acknowledged
# (empty: none yet)
first_ack_after() {
	python3 -c 'import json,sys
t = float(sys.argv[2])
ts = sorted(a["t"] for a in map(json.loads, open(sys.argv[1])) if a["began"] > t)
print(ts[0] if ts else "")' "$load/acks.jsonl" "$1"
}
# statuses_between T0 T1: the distinct statuses of failed requests in [T0, T1]
statuses_between() {
	python3 -c 'import json,sys
t0, t1 = float(sys.argv[2]), float(sys.argv[3])
print(" ".join(sorted({str(e["status"]) for e in map(json.loads, open(sys.argv[1]))
                       if t0 <= e["t"] <= t1 and e["step"] != "retry-used"})))' "$load/events.jsonl" "$1" "$2"
}
# wait_recovered T SECONDS: until a pair begun after T is acknowledged;
# prints how long after T
wait_recovered() {
	local t0=$1 limit=$2 t
	for _ in $(seq $((limit * 10))); do
		t=$(first_ack_after "$t0")
		[ -n "$t" ] && { python3 -c "print('%.2f' % ($t - $t0))"; return 0; }
		sleep 0.1
	done
	return 1
}
audited() { [ "$(sqlite3 "$db" "SELECT count(*) FROM audit_log WHERE action = '$1'")" -ge "${2:-1}" ]; }
check_acks() { /usr/bin/python3 "$here/crash_check.py" "$url" "$pki/ca.pem" "$clients/auditor.pem" "$clients/auditor.key" "$load" "$db"; }
audit_ok() { "$BUILD/bin/credsign-admin" --config "$conf" audit verify > "$work/verify.out" 2>&1; }

load=$work/load
mkdir -p "$load"
/usr/bin/python3 "$here/crash_load.py" 127.0.0.1 "$port" "$pki/ca.pem" "$clients/ci-deployer.pem" \
	"$clients/ci-deployer.key" 4 "$load" "$work/stop" 0.1 > "$work/load.out" 2>&1 &
loader=$!
pids+=($loader)
for _ in $(seq 100); do [ "$(acks)" -ge 20 ] && break; sleep 0.1; done
check "the load runs (20 certificates acknowledged)" test "$(acks)" -ge 20

# ---- 1. the key process ----------------------------------------------------------------
old=$(key_process)
t0=$(now)
kill -KILL "$old"
delay=$(wait_recovered "$t0" 10)
t1=$(now)
echo "# key process killed: certificates again after ${delay:-never} s; failures: $(statuses_between "$t0" "$t1")"
check "key process killed: certificates again within 5 s" python3 -c "import sys; sys.exit(not ('$delay' and float('$delay') < 5))"
check "  the failures meanwhile are 503s only" bash -c "[[ '$(statuses_between "$t0" "$t1")' =~ ^(503)?$ ]]"
check "  a new key process" bash -c "k=\$(pgrep -P $daemon | while read -r p; do grep -q '$(basename "$SOFTHSM")' /proc/\$p/maps && echo \$p; done); [ -n \"\$k\" ] && [ \"\$k\" != $old ]"
check "  the supervisor logged it" grep -q "key process.*$old.*\(signal 9\|SIGKILL\|Killed\)" "$log"
check "  keyproc.restart audited" audited keyproc.restart

# ---- 2. the network process -------------------------------------------------------------
old=$(network_process)
t0=$(now)
kill -KILL "$old"
delay=$(wait_recovered "$t0" 20)
t1=$(now)
echo "# network process killed: certificates again after ${delay:-never} s; failures: $(statuses_between "$t0" "$t1")"
check "network process killed: certificates again within 10 s" python3 -c "import sys; sys.exit(not ('$delay' and float('$delay') < 10))"
check "  the failures meanwhile: no answer or 503" bash -c "[[ '$(statuses_between "$t0" "$t1")' =~ ^(0)?\ ?(503)?$ ]]"
check "  the supervisor logged it" grep -q "network process.*$old.*\(signal 9\|SIGKILL\|Killed\)" "$log"
check "  daemon.restart audited" audited daemon.restart
check "acknowledged certificates all served and verified" check_acks

# ---- 3. kill -9 at random moments, 20 times (CREDSIGN_CRASH_KILLS) -------------------------
kills=${CREDSIGN_CRASH_KILLS:-20}
targets=()
for ((i = 0; i < kills; i++)); do targets+=("$(echo supervisor key network | cut -d' ' -f$((i % 3 + 1)))"); done
mapfile -t targets < <(printf '%s\n' "${targets[@]}" | shuf)
round=0
bad_rounds=0
for target in "${targets[@]}"; do
	round=$((round + 1))
	sleep "$(python3 -c 'import random; print(round(random.uniform(1.0, 2.5), 2))')"
	before=$(acks)
	t0=$(now)
	case $target in
	supervisor)
		kids=$(children)
		kill -KILL "$daemon"
		wait "$daemon" 2>/dev/null
		for _ in $(seq 50); do
			alive=0
			for p in $kids; do kill -0 "$p" 2>/dev/null && alive=1; done
			[ "$alive" = 0 ] && break
			sleep 0.1
		done
		[ "$alive" = 0 ] || echo "# round $round: children $kids outlived the supervisor"
		cp "$log" "$work/credsignd.log.$round"
		start_daemon || echo "# round $round: the daemon did not start again"
		;;
	key) kill -KILL "$(key_process)" ;;
	network) kill -KILL "$(network_process)" ;;
	esac
	delay=$(wait_recovered "$t0" 20)
	if [ -z "$delay" ] || ! check_acks > "$work/check.$round" 2>&1; then
		bad_rounds=$((bad_rounds + 1))
		echo "# round $round ($target): recovered after ${delay:-never} s; check:"
		sed 's/^/#   /' "$work/check.$round"
	else
		echo "# round $round: $target killed after $before acknowledgements; certificates again after $delay s; $(tail -1 "$work/check.$round")"
	fi
	if [ $((round % 5)) = 0 ] && ! audit_ok; then
		bad_rounds=$((bad_rounds + 1))
		echo "# round $round: the audit log does not verify:"
		sed 's/^/#   /' "$work/verify.out"
	fi
done
check "$kills kills at random moments: each recovered, every acknowledged certificate served and verified" test "$bad_rounds" = 0

touch "$work/stop"
wait "$loader"
echo "# load: $(cat "$work/load.out")"
check "no session certified twice (the load's own count)" \
	python3 -c 'import json,sys; sys.exit(json.loads(open(sys.argv[1]).read().splitlines()[-1])["doubles"] != 0)' "$work/load.out"
check "at the end: every acknowledged certificate served and verified" check_acks
check "  the audit chain and checkpoints verify" audit_ok
grep -q checkpoint "$work/verify.out" || echo "# audit verify said: $(head -3 "$work/verify.out")"
check "SIGTERM: status 0" stop_daemon
finish
