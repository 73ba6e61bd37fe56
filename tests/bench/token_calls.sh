#!/usr/bin/env bash
# Token calls per request, and throughput against a slow token.
#
# Starts credsignd on tests/fault/fault_pkcs11.c in front of a fresh SoftHSM2
# token; the fault module counts every PKCS#11 call by function
# ($CREDSIGN_FAULT_COUNTS) and can add latency to each call ("delay-ms").
#
#   token_calls.sh [options]
#     --build DIR        build directory (default: ./build)
#     --state DIR        scratch directory (default: BUILD/test-state/token-calls)
#     --pki DIR          development PKI (default: BUILD/test-state/pki, made if missing)
#     --module PATH      SoftHSM2 module (default: found under /usr/lib)
#     --fault PATH       the fault module (default: found under BUILD/tests)
#     --pairs N          requests per counting phase (default 200)
#     --slow             also measure pairs/s with every token call slowed down
#     --delay-ms MS      the added latency per call for --slow (default 10)
#     --sessions LIST    pkcs11.sessions values for --slow (default "4 16")
#     --workers N        server.workers for --slow (default 16)
#     --connections N    keep-alive connections for --slow (default 32)
#     --seconds S        seconds of pairs per --slow run (default 10), after
#     --warmup S         seconds of pairs not counted (default 3: sessions open)
#     --spread           open the connections one by one while the earlier ones
#                        already run pairs (see pairs.py), not all up front
#
# Prints, per function, the token calls of one generate, one certify, one
# generate + certify pair (over one keep-alive connection, after warm-up) and
# one new TLS connection (handshake + GET /healthz); with --slow, pairs/s per
# sessions value next to the model sessions / (calls per pair x latency).
# Exit status 1 when the daemon could not be run or a request failed.
# Not part of the timed test suite (ctest runs it once, tiny, as
# bench_token_calls_smoke); see docs/performance.md, "Slow HSMs".
set -uo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
build=$src/build
state=
pki=
softhsm=
fault=
pairs=200
slow=0
delay=10
sessions_list="4 16"
workers=16
connections=32
seconds=10
warmup=3
spread=0
while [ $# -gt 0 ]; do
	case $1 in
	--build) build=$(cd "$2" && pwd); shift ;;
	--state) state=$2; shift ;;
	--pki) pki=$2; shift ;;
	--module) softhsm=$2; shift ;;
	--fault) fault=$2; shift ;;
	--pairs) pairs=$2; shift ;;
	--slow) slow=1 ;;
	--delay-ms) delay=$2; shift ;;
	--sessions) sessions_list=$2; shift ;;
	--workers) workers=$2; shift ;;
	--connections) connections=$2; shift ;;
	--seconds) seconds=$2; shift ;;
	--warmup) warmup=$2; shift ;;
	--spread) spread=1 ;;
	-h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
state=${state:-$build/test-state/token-calls}
pki=${pki:-$build/test-state/pki}
if [ -z "$softhsm" ]; then
	for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so \
		/usr/lib64/softhsm/libsofthsm2.so; do
		[ -f "$m" ] && softhsm=$m && break
	done
fi
[ -n "$fault" ] || fault=$(find "$build/tests" -name libfault-pkcs11.so | head -n 1)
for f in "$build/bin/credsignd" "$build/bin/credsign-admin" "$fault" "$softhsm"; do
	[ -n "$f" ] && [ -e "$f" ] || { echo "missing: ${f:-fault module or SoftHSM2} (build first)" >&2; exit 1; }
done

rm -rf "$state"
mkdir -p "$state/data"
chmod 700 "$state"
state=$(cd "$state" && pwd) # the configuration names files by absolute paths
# as root, the daemon's network process runs as credsign (hsm-setup/service-user)
run_as=""
if [ "$(id -u)" = 0 ]; then
	run_as="user = \"$("$src/hsm-setup/service-user" "$state/data" | tail -1)\";"
	chmod 711 "$state"
	chown credsign: "$state/data"
fi
[ -f "$pki/ca.pem" ] || "$src/hsm-setup/dev-pki" "$pki" > /dev/null || exit 1
pki=$(cd "$pki" && pwd)
"$src/hsm-setup/token-init" "$state/token" cstest > /dev/null || exit 1
export SOFTHSM2_CONF=$state/token/softhsm2.conf
export CREDSIGN_FAULT_REAL_MODULE=$softhsm
export CREDSIGN_FAULT_CONTROL=$state/fault.control
: > "$CREDSIGN_FAULT_CONTROL"
counts=$state/counts
conf=$state/credsignd.conf
log=$state/credsignd.log
daemon=

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
write_conf() { # write_conf SESSIONS WORKERS
	cat > "$conf" <<CONF
server = { listen = "127.0.0.1:$port"; public_base_url = "https://127.0.0.1:$port"; node_id = "token-calls";
           workers = $2; presets_file = "$src/conf/presets.conf"; max_connections = 1024;
           max_handshakes_per_source = 64; $run_as };
tls = { cert = "$pki/server.pem"; key = "$pki/server.key"; ca = "$pki/ca.pem"; crl = "$pki/crl.pem";
        crl_check = true; };
pkcs11 = { module = "$fault"; token_uri = "pkcs11:token=cstest"; pin_file = "$state/token/user.pin";
           signing_key = "pkcs11:token=cstest;object=bench-es256"; sessions = $1; };
store = { path = "$state/data/credsign.db"; };
log = { level = "warn"; };
access = { grants = ( { identity = "spiffe://credsign.test/ci-deployer"; role = "generator";
                        projects = [ "payments" ]; environments = [ "production" ]; } ); };
CONF
}

stop_daemon() {
	[ -n "$daemon" ] || return 0
	kill -TERM "$daemon" 2>/dev/null
	wait "$daemon" 2>/dev/null
	daemon=
}
trap stop_daemon EXIT

start_daemon() { # start_daemon SESSIONS WORKERS
	write_conf "$1" "$2"
	# the store credsign-admin made (as root) is the network process's
	[ -z "$run_as" ] || chown -R credsign: "$state/data"
	CREDSIGN_FAULT_COUNTS=$counts "$build/bin/credsignd" --config "$conf" > "$log" 2>&1 &
	daemon=$!
	# ready when it answers (the listener is bound before start-up ends)
	for _ in $(seq 400); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$pki/ca.pem" \
			--cert "$pki/clients/operator.pem" --key "$pki/clients/operator.key" \
			"https://127.0.0.1:$port/healthz")" = 200 ] && return 0
		kill -0 "$daemon" 2>/dev/null || break
		sleep 0.05
	done
	echo "credsignd did not start:" >&2
	cat "$log" >&2
	exit 1
}

drive() { # drive MODE ARGS...
	python3 "$src/tests/bench/pairs.py" "$1" 127.0.0.1 "$port" "$pki/ca.pem" \
		"$pki/clients/ci-deployer.pem" "$pki/clients/ci-deployer.key" "${@:2}"
}

write_conf 4 4
"$build/bin/credsign-admin" --config "$conf" key generate --label bench-es256 > /dev/null || exit 1

# ---- token calls per request ----------------------------------------------------
start_daemon 4 4
out=$(drive count "$counts" "$pairs") || { echo "counting failed" >&2; exit 1; }
stop_daemon
echo "token calls per request ($build, $pairs requests per phase, one keep-alive connection)"
python3 - "$out" <<'PY'
import json, sys
d = json.loads(sys.argv[1])
phases = ["generate", "certify", "pair", "handshake"]
fns = sorted({fn for p in phases for fn in d[p] if fn != "total"})
print("  %-22s" % "function" + "".join("%11s" % p for p in phases))
for fn in fns + ["total"]:
    print("  %-22s" % fn + "".join("%11s" % (d[p].get(fn, 0) or "-") for p in phases))
PY
calls_per_pair=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["pair"]["total"])' "$out")
[ -n "${TOKEN_CALLS_JSON:-}" ] && echo "$out" > "$TOKEN_CALLS_JSON"

# ---- a slow token: pairs/s against pkcs11.sessions ---------------------------------
threads_cpu() { # "TID TICKS" for every thread of the daemon (user + system time)
	local t
	for t in /proc/"$daemon"/task/*; do
		awk -v tid="${t##*/}" '{ sub(/^.*\) /, ""); print tid, $12 + $13 }' "$t/stat"
	done
}
if [ "$slow" = 1 ]; then
	echo
	echo "slow token: every call +$delay ms; server.workers = $workers, $connections connections" \
		"($([ "$spread" = 1 ] && echo "opened one by one under load" || echo "opened up front")), ${seconds} s of pairs"
	echo "  model: pairs/s = sessions / ($calls_per_pair token calls per pair x $delay ms); threads: daemon threads that ran"
	printf '  %-9s %10s %10s %9s %9s %8s %8s\n' sessions "pairs/s" model p50_ms p99_ms errors threads
	for s in $sessions_list; do
		: > "$CREDSIGN_FAULT_CONTROL"
		start_daemon "$s" "$workers"
		echo "delay-ms $delay" > "$CREDSIGN_FAULT_CONTROL"
		threads_cpu > "$state/threads.before"
		res=$(drive load "$connections" "$seconds" "$warmup" "$spread") || { echo "load failed" >&2; exit 1; }
		threads_cpu > "$state/threads.after"
		ran=$(join "$state/threads.before" "$state/threads.after" | awk '$3 > $2 { n++ } END { print n + 0 }')
		stop_daemon
		python3 - "$res" "$s" "$calls_per_pair" "$delay" "$ran" <<'PY' || status=1
import json, sys
r = json.loads(sys.argv[1])
s, calls, delay = int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
model = s / (calls * delay / 1000.0) if delay > 0 else float("nan")
print("  %-9d %10.1f %10.1f %9s %9s %8d %8s" % (s, r["pairs_per_s"], model, r["p50_ms"], r["p99_ms"],
                                               r["errors"], sys.argv[5]))
sys.exit(1 if r["errors"] or not r["pairs"] else 0)
PY
	done
	: > "$CREDSIGN_FAULT_CONTROL"
fi
exit "${status:-0}"
