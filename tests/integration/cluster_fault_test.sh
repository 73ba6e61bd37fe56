#!/usr/bin/env bash
# Faults of a cluster of 3 nodes on one PostgreSQL store (issue 17), on a
# development cluster of the test's own (hsm-setup/dev-cluster start 3),
# under load: generate + certify pairs on 6 mTLS keep-alive connections
# spread over the nodes (cluster_load.py load: a connection whose node does
# not answer moves to the next one, as behind a TCP load balancer).
#   1. node 3 killed with SIGKILL (its supervisor: the key and network
#      processes follow it): the others go on; the only failures are
#      unanswered requests to node 3.
#   2. PostgreSQL stopped (fast) for a few seconds, then started: meanwhile
#      requests fail with 503 store_unavailable only (or audit_unavailable:
#      a read whose audit entry could not be written, the store being the
#      audit log) and /readyz answers 503 store_unavailable; afterwards the nodes recover by themselves (the
#      same processes, no restart) within 15 s.
#   3. `pg_ctl restart -m fast` under load: the same.
#   4. node 3 started again (dev-cluster start 3): its id's claim, which the
#      killed node could not release, is taken over (its process is gone
#      from this host; or after 30 s from another host).
# At the end: no session acknowledged twice; every acknowledged certificate
# served by every node as acknowledged and verifying (cluster_load.py check);
# in the store, no session with two certificates and each acknowledged
# session's certificate the one acknowledged; seq without gaps or
# duplicates; `credsign-admin audit verify` passes.
#
#   cluster_fault_test.sh BUILD_DIR STATE_DIR
BUILD=${1:?}
STATE=${2:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
nodes=3
cluster_start cluster_fault $nodes || exit 1
cdir=$CREDSIGN_CLUSTER_DIR
echo "# nodes: $CREDSIGN_NODE_URLS; store: $CREDSIGN_PG_URL"

now() { date +%s.%N; }
acks() { cat "$load/acks.jsonl" 2> /dev/null | wc -l; }
# acks_after T [NODE-URL]: pairs begun after T and acknowledged (by NODE-URL)
acks_after() {
	$py -c 'import json,sys
t, node = float(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None
print(sum(1 for a in map(json.loads, open(sys.argv[1])) if a["began"] > t and node in (None, a["node"])))' \
		"$load/acks.jsonl" "$@"
}
# wait_acks_after T COUNT SECONDS: until COUNT pairs begun after T are
# acknowledged; prints how long after T the COUNT-th was
wait_acks_after() {
	local t
	for _ in $(seq $(($3 * 10))); do
		t=$($py -c 'import json,sys
ts = sorted(a["t"] for a in map(json.loads, open(sys.argv[1])) if a["began"] > float(sys.argv[2]))
n = int(sys.argv[3])
print("%.2f" % (ts[n - 1] - float(sys.argv[2])) if len(ts) >= n else "")' "$load/acks.jsonl" "$1" "$2")
		[ -n "$t" ] && { echo "$t"; return 0; }
		sleep 0.1
	done
	return 1
}
# failures T0 T1 [EXCEPT-NODE-URL]: "status/code" of the failed requests in
# [T0, T1], distinct, counted (a retry that found its session used is none)
failures() {
	$py -c 'import json,sys, collections
t0, t1 = float(sys.argv[2]), float(sys.argv[3])
skip = sys.argv[4] if len(sys.argv) > 4 else None
c = collections.Counter("%s/%s" % (e["status"], e["code"]) for e in map(json.loads, open(sys.argv[1]))
                        if t0 <= e["t"] <= t1 and e["step"] != "retry-used" and e["node"] != skip)
print(" ".join("%s x%d" % kv for kv in sorted(c.items())))' "$load/events.jsonl" "$@"
}
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u "$(stat -c %U "$cdir/pg")" -- "$@"; else "$@"; fi; }
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
pg_ctl_() { as_pg "$pg_bin/pg_ctl" -D "$cdir/pg" "$@" > /dev/null; }
health() { echo $((${urls[$1 - 1]##*:} + 100)); }
readyz() { curl -s --max-time 3 -w ' %{http_code}' "http://127.0.0.1:$(health "$1")/readyz"; }
# wait_readyz I STATUS [CODE] SECONDS
wait_readyz() {
	local got
	for _ in $(seq $(($4 * 10))); do
		got=$(readyz "$1")
		[[ "$got" == *" $2" ]] && [[ -z "$3" || "$got" == *"\"$3\""* ]] && return 0
		sleep 0.1
	done
	echo "  node $1 /readyz: $got"
	return 1
}
processes() { # the node's supervisor and its children
	local p
	p=$(cat "$cdir/node$1/pid")
	echo "$p $(pgrep -P "$p" | sort -n | tr '\n' ' ')"
}

load=$work/load
mkdir -p "$load"
$py "$here/cluster_load.py" load "$CREDSIGN_NODE_URLS" "$pki/ca.pem" "$clients/ci-deployer.pem" \
	"$clients/ci-deployer.key" 6 "$load" "$work/stop" 0.05 > "$work/load.out" 2>&1 &
loader=$!
pids+=($loader)
for _ in $(seq 200); do [ "$(acks)" -ge 30 ] && break; sleep 0.1; done
check "the load runs on the 3 nodes (30 certificates acknowledged)" test "$(acks)" -ge 30
for i in 1 2 3; do
	check "  node $i acknowledges" test "$(acks_after 0 "${urls[$i - 1]}")" -gt 0
done

# ---- 1. node 3 killed -----------------------------------------------------------------------------
read -r -a p3 <<< "$(processes 3)"
t0=$(now)
kill -KILL "${p3[0]}"
for _ in $(seq 50); do
	alive=0
	for p in "${p3[@]}"; do [ -d "/proc/$p" ] && alive=1; done
	[ "$alive" = 0 ] && break
	sleep 0.1
done
check "node 3 killed (SIGKILL): its key and network processes end with it" test "$alive" = 0
delay=$(wait_acks_after "$t0" 30 15)
t1=$(now)
echo "# node 3 killed: 30 more pairs acknowledged after ${delay:-never} s; failures: $(failures "$t0" "$t1")"
check "  the others go on (30 pairs acknowledged within 15 s)" test -n "$delay"
check "  no failure but from node 3" test -z "$(failures "$t0" "$t1" "${urls[2]}")"
before1=$(processes 1)
before2=$(processes 2)

# ---- 2. PostgreSQL stopped, then started ------------------------------------------------------------------
t0=$(now)
check "PostgreSQL stopped (pg_ctl stop -m fast)" pg_ctl_ -m fast -w stop
check "  node 1 /readyz: 503 store_unavailable" wait_readyz 1 503 store_unavailable 15
check "  node 2 /readyz: 503 store_unavailable" wait_readyz 2 503 store_unavailable 15
check "  a generate meanwhile: 503 store_unavailable" \
	on 1 expect_error ci-deployer POST /api/generate "{\"preset\":\"soc2\",$PAYMENTS}" 503 store_unavailable
sleep 2
t1=$(now)
check "PostgreSQL started again" pg_ctl_ -l "$cdir/pg/postgresql.log" -w start
delay=$(wait_acks_after "$t1" 10 15)
t2=$(now)
echo "# PostgreSQL down $($py -c "print('%.1f' % ($t1 - $t0))") s: pairs again ${delay:-never} s after its start; failures meanwhile: $(failures "$t0" "$t2" "${urls[2]}")"
check "  the nodes recover by themselves: 10 pairs begun after the start acknowledged within 15 s" test -n "$delay"
check "  node 1 /readyz 200 again" wait_readyz 1 200 "" 15
check "  node 2 /readyz 200 again" wait_readyz 2 200 "" 15
check "  the failures meanwhile: 503 store_unavailable (or audit_unavailable) only" \
	bash -c '[[ "$1" =~ ^(503/(store|audit)_unavailable\ x[0-9]+\ ?)*$ ]]' _ "$(failures "$t0" "$t2" "${urls[2]}")"
check "  the same processes (no credsignd restarted)" test "$(processes 1)|$(processes 2)" = "$before1|$before2"
check "  each node logged the outage and the reconnection" \
	bash -c "grep -q 'connection lost' '$cdir/node1/credsignd.log' && grep -q 'reconnected' '$cdir/node1/credsignd.log'"

# ---- 3. pg_ctl restart -m fast under load -------------------------------------------------------------------
t0=$(now)
check "pg_ctl restart -m fast" pg_ctl_ -l "$cdir/pg/postgresql.log" -m fast -w restart
t1=$(now)
delay=$(wait_acks_after "$t1" 10 15)
t2=$(now)
echo "# restart took $($py -c "print('%.1f' % ($t1 - $t0))") s: pairs again ${delay:-never} s after it; failures: $(failures "$t0" "$t2" "${urls[2]}")"
check "  10 pairs begun after it acknowledged within 15 s" test -n "$delay"
check "  the failures meanwhile: 503 store_unavailable (or audit_unavailable) only" \
	bash -c '[[ "$1" =~ ^(503/(store|audit)_unavailable\ x[0-9]+\ ?)*$ ]]' _ "$(failures "$t0" "$t2" "${urls[2]}")"
check "  the same processes" test "$(processes 1)|$(processes 2)" = "$before1|$before2"

# ---- 4. node 3 back --------------------------------------------------------------------------------------------
t0=$(now)
back=
for _ in $(seq 12); do
	if "$src/hsm-setup/dev-cluster" start 3 > "$work/restart3.out" 2>&1; then
		back=$($py -c "print('%.1f' % ($(now) - $t0))")
		break
	fi
	sleep 4
done
echo "# node 3 started again after ${back:-never} s: $(grep -o 'server.node_id node3[^"]*' "$cdir/node3/credsignd.log" | tail -1)"
check "node 3 starts again (dev-cluster start 3) within 50 s" test -n "$back"
t1=$(now)
resumed=$(wait_acks_after "$t1" 1 20)
check "  the cluster acknowledges pairs" test -n "$resumed"

# ---- the end ----------------------------------------------------------------------------------------------
sleep 1
touch "$work/stop"
wait "$loader"
echo "# load: $(cat "$work/load.out")"
check "no session acknowledged twice (the load's own count)" \
	$py -c 'import json,sys; sys.exit(json.loads(open(sys.argv[1]).read().splitlines()[-1])["doubles"] != 0)' "$work/load.out"
served() {
	$py "$here/cluster_load.py" check "$CREDSIGN_NODE_URLS" "$pki/ca.pem" "$clients/auditor.pem" \
		"$clients/auditor.key" "$load" > "$work/check.out" 2>&1
}
check "every acknowledged certificate served by every node, as acknowledged, and verifies" served
sed 's/^/#   /' "$work/check.out" | tail -6
pg_sql owner "SELECT session_id || ' ' || id FROM certificates" > "$work/store-certs.txt"
check "the store: each acknowledged session's certificate is the one acknowledged, and only one" $py -c '
import json, sys, collections
store = collections.defaultdict(list)
for line in open(sys.argv[2]):
    s, c = line.split()
    store[s].append(c)
bad = [a["session"] for a in map(json.loads, open(sys.argv[1]))
       if store.get(a["session"]) != [a["cert_url"].rsplit("/", 1)[1]]]
twice = [s for s, c in store.items() if len(c) > 1]
print("#   %d sessions certified in the store; acknowledged but not so: %s; twice: %s" % (len(store), bad[:3], twice[:3]))
sys.exit(1 if bad or twice else 0)' "$load/acks.jsonl" "$work/store-certs.txt"
check "no duplicate seq, no gap (psql)" \
	test "$(pg_sql owner "SELECT count(*) = count(DISTINCT seq) AND max(seq) - min(seq) + 1 = count(*) FROM audit_log")" = t
verify() { "$BUILD/bin/credsign-admin" audit verify > "$work/verify.out" 2>&1; }
check "credsign-admin audit verify passes" verify
sed 's/^/#   /' "$work/verify.out" | head -5
stop() { "$src/hsm-setup/dev-cluster" stop > "$work/stop.out" 2>&1; }
check "dev-cluster stop" stop
CLUSTER_DEV=
check "  no sanitizer report in the nodes' logs" \
	bash -c "! grep -l -E 'AddressSanitizer|LeakSanitizer|runtime error:' '$cdir'/node*/credsignd.log"
finish
