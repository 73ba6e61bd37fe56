# Shared helpers for the integration tests: a real credsignd on 127.0.0.1,
# the SoftHSM2 test token, the development PKI, curl and the credsign client.
#
# The caller sets: BUILD (build dir), STATE (test-state dir), SOFTHSM (module)
# and sources this file; then calls it_setup NAME [MODULE].

set -uo pipefail

passed=0
failed=0
pids=()
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

check() { # check DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@"; then
		passed=$((passed + 1))
		echo "ok - $what"
	else
		failed=$((failed + 1))
		echo "not ok - $what"
	fi
}

# daemons and helpers started by the test stop with it, also when it
# aborts before finish (set -u, a failed source)
# (and a development cluster: cluster_start below)
stop_started() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	[ -z "${CLUSTER_DEV:-}" ] || cluster_stop
}
trap stop_started EXIT

finish() {
	stop_started
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}

# The account the daemon's network process drops to (issue 16): tests run as
# root configure the system user credsign, which the dev_pki fixture makes
# (hsm-setup/service-user); as another user the daemon runs as that user.
# RUN_AS goes into a test configuration's server group; service_files WORK
# DATA gives the account what it needs: WORK traversable, the configuration
# files in it readable (a SIGHUP reads them again), DATA (the store's
# directory) its own.
if [ "$(id -u)" = 0 ] && getent passwd credsign > /dev/null; then
	SERVICE_USER=credsign
	RUN_AS='user = "credsign";'
else
	SERVICE_USER=$(id -un)
	RUN_AS=''
fi
service_files() { # service_files WORK DATA
	[ -n "$RUN_AS" ] || return 0
	chmod 711 "$1"
	find "$1" -maxdepth 1 -name '*.conf' -exec chmod 644 {} +
	mkdir -p "$2"
	chown -R "$SERVICE_USER:" "$2"
}

# service_store: the store's directory (store.path in $conf) and its files
# the account's: a test may put the store anywhere under its work directory,
# and credsign-admin (run as root) may have created it
service_store() {
	[ -n "$RUN_AS" ] || return 0
	local store dir f # (f: not the caller's, bash scoping is dynamic)
	store=$(sed -n 's/^store = {[^}]*path = "\([^"]*\)".*/\1/p' "$conf" | tail -1)
	[ -n "$store" ] || return 0
	dir=$(dirname "$store")
	mkdir -p "$dir"
	chown "$SERVICE_USER:" "$dir"
	for f in "$store" "$store-wal" "$store-shm" "$store-journal"; do
		[ ! -e "$f" ] || chown "$SERVICE_USER:" "$f"
	done
	return 0
}

# as_admin CMD...: a credsign-admin command (run as root), after which the
# store it may have created is the service account's again
as_admin() {
	"$@"
	local rc=$?
	service_store
	return $rc
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# it_token NAME: a fresh SoftHSM2 token of this test script alone (tests
# that run in parallel must not change each other's token underneath).
# Its directory is it-token-NAME: the unit tests' fixtures make token-NAME
# directories in the same state directory, and an integration script
# named like one of them wiped that unit test's token while it ran.
it_token() {
	TOKEN_DIR=$STATE/it-token-$1
	rm -rf "$TOKEN_DIR"
	"$src/hsm-setup/token-init" "$TOKEN_DIR" cstest > /dev/null || return 1
	export SOFTHSM2_CONF=$TOKEN_DIR/softhsm2.conf
}

# The grants every test runs with (README.md, "Access control"): the dev
# PKI's identities as hsm-setup/dev-env grants them. ci-deployer generates
# for payments in production and staging, web-deployer for web in every
# environment, auditor reads everything, operator reads the metrics;
# stranger (and any other identity) has no grant. GRANTS replaces the list.
DEFAULT_GRANTS='
    { identity = "spiffe://credsign.test/ci-deployer"; role = "generator";
      projects = [ "payments" ]; environments = [ "production", "staging" ]; },
    { identity = "spiffe://credsign.test/web-deployer"; role = "generator";
      projects = [ "web" ]; environments = [ "*" ]; },
    { identity = "spiffe://credsign.test/auditor"; role = "auditor"; projects = [ "*" ]; },
    { identity = "spiffe://credsign.test/operator"; role = "operator"; }'
# the fields a generate body needs for ci-deployer's grant
PAYMENTS='"project":"payments","environment":"production"'

# it_setup NAME [PKCS11_MODULE]: config, signing key, daemon started.
# TLS_KEY/TLS_CERT override the server key and certificate; EXTRA_SERVER
# EXTRA_TLS and EXTRA_LOG add settings to the server, tls and log groups,
# EXTRA_CONF whole groups (e.g. audit), VALIDATION replaces the
# pkcs11.validation group ({ program = "none"; }), GRANTS the access.grants
# list (DEFAULT_GRANTS).
it_setup() {
	name=$1
	module=${2:-$SOFTHSM}
	work=$STATE/it-$name
	rm -rf "$work"
	mkdir -p "$work/data"
	chmod 700 "$work"
	[ -n "${TOKEN_DIR:-}" ] || { echo "it_token first"; return 1; }
	pki=$STATE/pki
	clients=$pki/clients
	port=$(free_port)
	url=https://127.0.0.1:$port
	conf=$work/credsignd.conf
	# the SoftHSM2 test token is not validated; VALIDATION overrides the group
	local no_validation='{ program = "none"; }'
	log=$work/credsignd.log
	db=$work/data/credsign.db
	cat > "$conf" <<CONF
server = { listen = "127.0.0.1:$port"; public_base_url = "$url"; node_id = "it-$name";
           workers = 3; presets_file = "$src/conf/presets.conf"; max_body_bytes = 65536;
           $RUN_AS ${EXTRA_SERVER:-} };
tls = { cert = "${TLS_CERT:-$pki/server.pem}"; key = "${TLS_KEY:-$pki/server.key}"; ca = "$pki/ca.pem";
        crl = "$pki/crl.pem"; crl_check = true; ${EXTRA_TLS:-} };
pkcs11 = { module = "$module"; token_uri = "pkcs11:token=cstest";
           pin_file = "$TOKEN_DIR/user.pin"; signing_key = "pkcs11:token=cstest;object=it-es256-$name";
           validation = ${VALIDATION:-$no_validation}; };
store = { path = "$db"; };
log = { level = "info"; ${EXTRA_LOG:-} };
access = { grants = ( ${GRANTS-$DEFAULT_GRANTS} ); };
${EXTRA_CONF:-}
CONF
	admin=(as_admin "$BUILD/bin/credsign-admin" --config "$conf")
	service_files "$work" "$work/data"
	"${admin[@]}" key jwk >/dev/null 2>&1 || "${admin[@]}" key generate --label "it-es256-$name" >/dev/null || return 1
	start_daemon
}

# wait_for_log PATTERN: true once the daemon's log matches (up to 5 s)
wait_for_log() {
	for _ in $(seq 50); do
		grep -q -- "$1" "$log" && return 0
		sleep 0.1
	done
	return 1
}

# start_daemon: credsignd on $conf, logging to $log; a command in the
# DAEMON_WRAP array (if set) runs it, e.g. in its own mount namespace.
start_daemon() {
	service_store
	${DAEMON_WRAP[@]+"${DAEMON_WRAP[@]}"} "$BUILD/bin/credsignd" --config "$conf" > "$log" 2>&1 &
	daemon=$!
	pids+=($daemon)
	# ready when it answers: the listener is bound before start-up ends
	# (the token, the store, the first audit entries come after it)
	for _ in $(seq 200); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 $(client operator) "$url/healthz")" = 200 ] &&
			return 0
		kill -0 "$daemon" 2>/dev/null || break
		sleep 0.05
	done
	echo "credsignd did not start:"
	cat "$log"
	return 1
}

# client NAME: curl arguments for a client certificate of the dev PKI
client() {
	echo --cacert "$pki/ca.pem" --cert "$clients/$1.pem" --key "$clients/$1.key"
}

# call NAME METHOD PATH [BODY]: prints "STATUS BODY" (body on one line)
call() {
	local who=$1 method=$2 path=$3 body=${4:-}
	local args
	read -r -a args <<< "$(client "$who")"
	if [ -n "$body" ]; then
		curl -s -o "$work/out" -w '%{http_code}' -X "$method" "${args[@]}" \
			-H 'Content-Type: application/json' --data-binary "$body" "$url$path"
	else
		curl -s -o "$work/out" -w '%{http_code}' -X "$method" "${args[@]}" "$url$path"
	fi
	echo -n " "
	cat "$work/out"
}

# expect_error NAME METHOD PATH BODY STATUS CODE
expect_error() {
	local got
	got=$(call "$1" "$2" "$3" "$4")
	[[ "$got" == "$5 "* ]] && [[ "$got" == *"\"code\":\"$6\""* ]] || {
		echo "  expected $5 $6, got: ${got:0:300}"
		return 1
	}
}

json_field() { # json_field FILE-OR-STRING FIELD
	python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"
}

requests_logged() { grep -c 'fn=on_request' "$log" || true; }

stop_daemon() {
	kill -TERM "$daemon" 2>/dev/null
	wait "$daemon"
}

# ceremony_group [REVOKE_QUORUM]: a ceremony configuration group with the
# dev PKI's officers a, b and c (quorum 2), for EXTRA_CONF
ceremony_group() {
	local o=$STATE/pki/officers
	echo "ceremony = { officer_ca = \"$STATE/pki/officer-ca.pem\"; officer_crl = \"$STATE/pki/officer-crl.pem\";
  quorum = 2; revoke_quorum = ${1:-1}; expiry_minutes = 30;
  officers = ( { name = \"officer-a\"; certificate = \"$o/officer-a.pem\"; },
               { name = \"officer-b\"; certificate = \"$o/officer-b.pem\"; },
               { name = \"officer-c\"; certificate = \"$o/officer-c.pem\"; } ); };"
}

# ceremony_run CONF [START-ARGS...] [-- EXECUTE-ARGS...]: a whole ceremony on
# CONF: start with START-ARGS, approvals by officer-a and officer-b,
# execute; prints what execute printed (stdout and stderr) and returns its
# status (or 1 when an earlier step failed, with that step's output).
# CEREMONY_WRAP (an array, e.g. faketime) runs each step.
ceremony_run() {
	local c=$1 out id o
	shift
	local start=() exec=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do start+=("$1"); shift; done
	[ $# -gt 0 ] && shift
	exec=("$@")
	local run=(${CEREMONY_WRAP[@]+"${CEREMONY_WRAP[@]}"} "$BUILD/bin/credsign-admin" --config "$c")
	out=$("${run[@]}" ceremony start "${start[@]}" 2>&1) || { echo "ceremony start: $out"; return 1; }
	id=$(json_field "$out" id) || { echo "ceremony start: $out"; return 1; }
	for o in officer-a officer-b; do
		out=$("${run[@]}" ceremony approve "$id" --officer-cert "$STATE/pki/officers/$o.pem" \
			--officer-key "$STATE/pki/officers/$o.key" 2>&1) || { echo "ceremony approve: $out"; return 1; }
	done
	"${run[@]}" ceremony execute "$id" ${exec[@]+"${exec[@]}"} 2>&1
}

# profile_keys NAME SIGNING-GROUP LABEL-PREFIX PROFILE...: a key in the test
# token for each signing profile (label LABEL-PREFIX-PROFILE), made before
# the daemon's first start as an operator does (credsign-admin key generate
# --profile), with a configuration of their own whose signing group is
# SIGNING-GROUP (the keys are recorded in a store of their own: the daemon
# bootstraps each profile's first key from its configuration)
profile_keys() {
	local name=$1 group=$2 prefix=$3 pre k
	shift 3
	pre=$STATE/it-$name-pre
	rm -rf "$pre"
	mkdir -p "$pre"
	cat > "$pre/credsignd.conf" <<CONF
server = { listen = "127.0.0.1:1"; public_base_url = "https://127.0.0.1:1"; presets_file = "$src/conf/presets.conf"; };
tls = { cert = "$STATE/pki/server.pem"; key = "$STATE/pki/server.key"; ca = "$STATE/pki/ca.pem"; };
pkcs11 = { module = "$SOFTHSM"; token_uri = "pkcs11:token=cstest"; pin_file = "$TOKEN_DIR/user.pin";
           signing_key = "pkcs11:token=cstest;object=it-es256-$name"; validation = { program = "none"; }; };
store = { path = "$pre/credsign.db"; };
$group
CONF
	for k in "$@"; do
		"$BUILD/bin/credsign-admin" --config "$pre/credsignd.conf" key generate --label "$prefix-$k" --profile "$k" \
			> /dev/null || { echo "cannot generate the $k profile key"; return 1; }
	done
}

# ---- several nodes on PostgreSQL (issue 17) --------------------------------------
# cluster_start NAME N: a development cluster of the test's own
# (hsm-setup/dev-cluster: a private PostgreSQL and N credsignd nodes on this
# build's programs, the test PKI) in $STATE/it-NAME, stopped when the test
# ends. Sources its env (CREDSIGN_CONF: node 1's configuration, the
# CREDSIGN_PG_* URLs) and sets dev, work, pki, clients, conf (node 1's),
# urls (an array: node I is ${urls[I-1]}) and url (node 1).
cluster_start() {
	dev=$STATE/it-$1
	rm -rf "$dev"
	mkdir -p "$dev/work"
	cp -a "$STATE/pki" "$dev/pki" # dev-pki keeps a complete PKI
	work=$dev/work
	pki=$dev/pki
	clients=$pki/clients
	# N node ports and N health ports 100 above them, all free
	CREDSIGN_CLUSTER_PORT=$(python3 - "$2" <<'PY'
import random, socket, sys
n = int(sys.argv[1])
# below the kernel's ephemeral ports (ip_local_port_range), which the
# other tests' free_port and every outgoing connection draw from: a block
# there could be taken between this choice and the nodes' start
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for _ in range(200):
    b = random.randrange(10000, max(low - 200 - n, 10001))
    socks = []
    try:
        for p in list(range(b, b + n)) + list(range(b + 100, b + 100 + n)):
            s = socket.socket()
            socks.append(s)
            s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
    print(b)
    break
PY
)
	export CREDSIGN_CLUSTER_PORT CREDSIGN_DEV_DIR=$dev CREDSIGN_BUILD_DIR=$BUILD CREDSIGN_DEV_NO_BUILD=1
	CLUSTER_DEV=$dev
	"$src/hsm-setup/dev-cluster" start "$2" > "$work/cluster-start.out" 2>&1 || {
		echo "hsm-setup/dev-cluster start $2 failed:"
		cat "$work/cluster-start.out"
		return 1
	}
	# shellcheck source=/dev/null
	. "$dev/cluster/env"
	read -r -a urls <<< "$CREDSIGN_NODE_URLS"
	url=${urls[0]}
	conf=$CREDSIGN_CONF
}
cluster_stop() { CREDSIGN_DEV_DIR=$CLUSTER_DEV "$src/hsm-setup/dev-cluster" stop > /dev/null 2>&1 || true; }
# on I CMD...: CMD (call, expect_error) against node I
on() {
	local url=${urls[$1 - 1]}
	shift
	"$@"
}
# pg_sql owner|node SQL: psql as the schema's owner or the nodes' login (TLS,
# verify-full, the password from its file); prints the rows (-At)
pg_sql() {
	local u=$CREDSIGN_PG_URL f=$CREDSIGN_PG_PASSWORD_FILE
	[ "$1" = owner ] || { u=$CREDSIGN_PG_NODE_URL; f=$CREDSIGN_PG_NODE_PASSWORD_FILE; }
	PGPASSWORD=$(head -1 "$f") psql -X -q -At -v ON_ERROR_STOP=1 -c "SET search_path = credsign" -c "$2" "$u"
}
