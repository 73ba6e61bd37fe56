#!/usr/bin/env bash
# What the daemon does when something it needs is wrong (issue 18), against
# a real SoftHSM2 token and the development PKI:
#  - start-up refusals: each names what failed (the file, the setting, the
#    user, the token URI, the address) and exits 1 without serving or
#    creating a store: a configuration that is missing, unreadable or
#    malformed, a token label no token has, a wrong PIN, a TLS key or
#    certificate that is missing, garbage or does not match, a garbage CA
#    or CRL, server.listen in use or unresolvable, a server.user that does
#    not exist, a store that cannot be created; what the service account
#    reaches, decided as the kernel does (POSIX ACLs: user, group, mask;
#    a directory it cannot search; a store WAL file it cannot write);
#  - libevent's own 417 and 413 in our JSON error format;
#  - a failed SIGHUP reload of the client CA or CRL (garbage, missing): the
#    context in force keeps serving new connections, the failure is logged
#    and audited (tls.reload, outcome failure); a good reload afterwards is
#    audited as a success;
#  - an api-key with a prefix end to end over mutual TLS: the project's
#    client asks for it and certifies it, the certificate records the
#    prefix, an offline verify accepts the credential and refuses it
#    without its prefix; the API refuses a bad prefix, naming the field;
#  - credsign-admin token info; audit verify against the store's own key
#    table (no --jwks): intact, then the first tampered entry named (exit
#    1); --file without --jwks is a usage error (exit 2);
#  - descriptors exhausted (RLIMIT_NOFILE just over the idle need): the
#    TLS and probe listeners pause and log it, the network process lives
#    (it crashed), both serve again;
#  - NOTIFY_SOCKET naming no socket and a bad WATCHDOG_USEC: warned once,
#    the daemon serves and stops cleanly.
#
#   failure_paths_test.sh BUILD_DIR STATE_DIR SOFTHSM_MODULE
BUILD=${1:?}
STATE=${2:?}
SOFTHSM=${3:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_token failpaths || exit 1
EXTRA_CONF='audit = { checkpoint_seconds = 1; };' it_setup failpaths || exit 1
credsignd=$BUILD/bin/credsignd
admin_bin=$BUILD/bin/credsign-admin
good_db=$db

# ---- start-up refusals -------------------------------------------------------------
# variant NAME SED-EXPRESSION...: $work/NAME.conf, the working file changed,
# on a port of its own (the daemon of this test holds $port; "=PORT" as
# the first expression keeps it) and with a store of its own (none yet)
variant() {
	local name=$1 e args=()
	shift
	if [ "${1:-}" = =PORT ]; then
		shift
	else
		args=(-e "s/127.0.0.1:$port/127.0.0.1:$(free_port)/g")
	fi
	args+=(-e "s|$good_db|$work/$name-data/credsign.db|")
	for e in "$@"; do args+=(-e "$e"); done
	sed "${args[@]}" "$conf" > "$work/$name.conf"
	chmod 644 "$work/$name.conf"
	rm -rf "$work/$name-data"
	mkdir -p "$work/$name-data"
	chown "$SERVICE_USER:" "$work/$name-data"
}

# refused NAME PATTERN...: credsignd --config $work/NAME.conf exits 1 within
# 30 s, says each PATTERN (fixed strings), never says it serves, and leaves
# no store behind
refused() {
	local name=$1 rc p
	shift
	timeout 30 "$credsignd" --config "$work/$name.conf" > "$work/$name.log" 2>&1
	rc=$?
	[ "$rc" -eq 1 ] || { echo "  exit $rc"; sed 's/^/    /' "$work/$name.log"; return 1; }
	for p in "$@"; do
		grep -qF -- "$p" "$work/$name.log" || { echo "  no '$p' in:"; sed 's/^/    /' "$work/$name.log"; return 1; }
	done
	! grep -q " starting: node=\|listening on " "$work/$name.log" || { echo "  it started"; return 1; }
	[ ! -e "$work/$name-data/credsign.db" ] || { echo "  a store was created"; return 1; }
}

check "start-up: a configuration that does not exist is named" \
	refused no-such "$work/no-such.conf: cannot read configuration: No such file or directory"
mkdir -p "$work/a-directory.conf"
check "start-up: a configuration that cannot be read (a directory) is named" \
	refused a-directory "$work/a-directory.conf: cannot read configuration" "configuration invalid"
variant syntax 's/^store = {/store = { path = ;/'
check "start-up: a malformed configuration names its file and line" refused syntax "$work/syntax.conf:9: syntax error"
variant label 's/token=cstest/token=no-such-token/g'
check "start-up: a token label no token has names pkcs11.token_uri and the URI" \
	refused label "setting 'pkcs11.token_uri': pkcs11:token=no-such-token: no token matches the URI"
echo 000000 > "$work/wrong.pin"
chmod 600 "$work/wrong.pin"
variant wrong-pin "s|pin_file = \"[^\"]*\"|pin_file = \"$work/wrong.pin\"|"
check "start-up: a wrong PIN names C_Login and CKR_PIN_INCORRECT" refused wrong-pin "C_Login: CKR_PIN_INCORRECT"

echo "not PEM at all" > "$work/garbage.pem"
chmod 644 "$work/garbage.pem"
variant key-missing "s|key = \"$pki/server.key\"|key = \"$work/missing.key\"|"
check "start-up: a missing tls.key names the setting and the file" \
	refused key-missing "setting 'tls.key': file '$work/missing.key' is not readable: No such file or directory"
variant key-garbage "s|key = \"$pki/server.key\"|key = \"$work/garbage.pem\"|"
check "start-up: a tls.key that is no key names the setting and the file" \
	refused key-garbage "setting 'tls.key': $work/garbage.pem: cannot load the server key" \
	"start-up failed: the TLS material is not usable"
variant key-mismatch "s|key = \"$pki/server.key\"|key = \"$clients/auditor.key\"|"
check "start-up: a tls.key of another certificate names both files" \
	refused key-mismatch "setting 'tls.key': $clients/auditor.key: the key does not match the certificate of tls.cert ($pki/server.pem)"
variant cert-missing "s|cert = \"$pki/server.pem\"|cert = \"$work/missing.pem\"|"
check "start-up: a missing tls.cert names the setting and the file" \
	refused cert-missing "setting 'tls.cert': file '$work/missing.pem' is not readable"
variant cert-garbage "s|cert = \"$pki/server.pem\"|cert = \"$work/garbage.pem\"|"
check "start-up: a tls.cert with no certificate names the setting" \
	refused cert-garbage "setting 'tls.cert': $work/garbage.pem: no certificate"
if command -v faketime > /dev/null; then
	# a server certificate (and key) made two days from now
	faketime '+2 days' openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$work/future.key" -out "$work/future.pem" -days 10 -subj /CN=localhost > /dev/null 2>&1
	variant cert-future "s|cert = \"$pki/server.pem\"|cert = \"$work/future.pem\"|" \
		"s|key = \"$pki/server.key\"|key = \"$work/future.key\"|"
	check "start-up: a server certificate not valid yet names its start date" \
		refused cert-future "setting 'tls.cert': $work/future.pem: the server certificate (CN=localhost) is not valid before $(date -u -d '+2 days' +%Y-%m-%d)"
fi
variant ca-garbage "s|ca = \"$pki/ca.pem\"|ca = \"$work/garbage.pem\"|"
check "start-up: a tls.ca with no certificate names the setting" \
	refused ca-garbage "setting 'tls.ca': $work/garbage.pem: no CA certificate"
variant crl-garbage "s|crl = \"$pki/crl.pem\"|crl = \"$work/garbage.pem\"|"
check "start-up: a tls.crl with no CRL names the setting" \
	refused crl-garbage "setting 'tls.crl': $work/garbage.pem: no CRL"
variant presets-garbage "s|presets_file = \"[^\"]*\"|presets_file = \"$work/garbage.pem\"|"
check "start-up: a presets file that does not parse is named, with its line" \
	refused presets-garbage "$work/garbage.pem:1: syntax error" "presets $work/garbage.pem invalid"
variant wordlist-garbage "s|presets_file = |wordlist_file = \"$work/garbage.pem\"; presets_file = |"
check "start-up: a word list with a word that is not one names the file, the line and the rule" \
	refused wordlist-garbage "setting 'server.wordlist_file': wordlist $work/garbage.pem:1: words must be lower-case ASCII letters or '-'"
variant port-taken =PORT
check "start-up: server.listen in use (by this test's daemon) is named" \
	refused port-taken "server.listen 127.0.0.1:$port: address already in use"
variant listen-unresolvable "s/listen = \"127.0.0.1:[0-9]*\"/listen = \"no-such-host.invalid:443\"/"
check "start-up: a server.listen host that does not resolve is named" \
	refused listen-unresolvable "server.listen no-such-host.invalid:443: cannot resolve the address"
if [ -n "$RUN_AS" ]; then
	variant no-user 's/user = "credsign"/user = "no-such-user-18"/'
	check "start-up: a server.user that does not exist is named" \
		refused no-user "setting 'server.user': no such user 'no-such-user-18'"
	# the store's directory is root's: the network process (credsign) cannot
	# create the store in it
	variant store-unwritable
	chown root: "$work/store-unwritable-data"
	chmod 755 "$work/store-unwritable-data"
	check "start-up: a store the service account cannot create is named, exit 1" \
		refused store-unwritable "setting 'store.path': $work/store-unwritable-data/credsign.db: $work/store-unwritable-data is not writable by user credsign" \
		"start-up failed: the network process's account cannot reach its files"
fi
variant store-no-dir "s|$work/store-no-dir-data/credsign.db|$work/no-such-dir/credsign.db|"
check "start-up: a store in a directory that does not exist is named, exit 1" \
	refused store-no-dir "store: cannot open $work/no-such-dir/credsign.db"
# a PostgreSQL store --check-config cannot reach (a port nobody listens
# on): TLS weaker than verify-full warned of in the words of its mode, a
# pool too small for the daemon's threads refused, the store named
pg_port=$(free_port)
pg_store() { # pg_store SSLMODE [EXTRA]: variant pg-SSLMODE
	variant "pg-$1" "s|^store = {.*|store = { backend = \"postgresql\"; postgresql = { connection = \"host=127.0.0.1 port=$pg_port dbname=credsign user=credsign_n connect_timeout=2\"; sslmode = \"$1\"; pool_size = 2; ${2:-} }; };|"
}
pg_refused() { # pg_refused SSLMODE WORDS
	local out rc
	out=$(timeout 30 "$credsignd" --check-config "$work/pg-$1.conf" --offline 2>&1)
	rc=$?
	[ "$rc" -eq 1 ] &&
		[[ "$out" == *"warning: setting 'store.postgresql.sslmode': $1: the PostgreSQL server is $2 (sslmode $1)"* ]] &&
		[[ "$out" == *"setting 'store.postgresql.pool_size': 2 is too small: the daemon holds"* ]] &&
		[[ "$out" == *"store postgresql://credsign_n@127.0.0.1:$pg_port/credsign cannot be opened: store unreachable"* ]] ||
		{ echo "  exit $rc: $out"; return 1; }
}
pg_store require
check "--check-config, PostgreSQL unreachable, sslmode require: warned (not authenticated), pool refused, store named" \
	pg_refused require "not authenticated"
pg_store verify-ca "ca_file = \"$pki/ca.pem\";"
check "  sslmode verify-ca: warned (not checked against its host name)" \
	pg_refused verify-ca "not checked against its host name"
pg_store disable
check "  sslmode disable: warned (reached without TLS)" pg_refused disable "reached without TLS"
pg_store prefer
check "  sslmode prefer: warned (possibly reached without TLS)" pg_refused prefer "possibly reached without TLS"

# what the network process's account reaches is decided as the kernel
# decides it: POSIX ACLs first (a named user, a named group, the mask),
# then the mode bits; --check-config says so before anything starts
# checked NAME valid|PATTERN: --check-config on $work/NAME.conf
checked() {
	local out rc
	out=$(timeout 30 "$credsignd" --check-config "$work/$1.conf" 2>&1)
	rc=$?
	if [ "$2" = valid ]; then
		[ "$rc" -eq 0 ] && [[ "$out" == *"configuration valid"* ]] || { echo "  exit $rc: $out"; return 1; }
	else
		[ "$rc" -eq 1 ] && [[ "$out" == *"$2"* ]] || { echo "  exit $rc: $out"; return 1; }
	fi
}
: > "$work/acl-probe"
if [ -n "$RUN_AS" ] && setfacl -m "u:$SERVICE_USER:r" "$work/acl-probe" 2> /dev/null; then
	group=$(id -gn "$SERVICE_USER")
	mkdir -p "$work/acl"
	chmod 755 "$work/acl"
	cp "$pki/ca.pem" "$work/acl/ca.pem"
	variant acl "s|ca = \"$pki/ca.pem\"|ca = \"$work/acl/ca.pem\"|"
	chmod 600 "$work/acl/ca.pem"
	check "account check: tls.ca readable by root alone is refused, naming the account and the fix" \
		checked acl "$work/acl/ca.pem is not readable by user $SERVICE_USER"
	setfacl -m "u:$SERVICE_USER:r" "$work/acl/ca.pem"
	check "  readable through an ACL entry of the user: valid" checked acl valid
	setfacl -b "$work/acl/ca.pem"
	setfacl -m "g:$group:r" "$work/acl/ca.pem"
	check "  through an ACL entry of its group: valid" checked acl valid
	setfacl -m "m::-" "$work/acl/ca.pem"
	check "  the ACL mask takes it away again: refused" checked acl "is not readable by user $SERVICE_USER"
	setfacl -b "$work/acl/ca.pem"
	chmod 644 "$work/acl/ca.pem"
	setfacl -m "u:$SERVICE_USER:-" "$work/acl/ca.pem"
	check "  world-readable, but an ACL entry denies the user: refused" \
		checked acl "is not readable by user $SERVICE_USER"
	setfacl -b "$work/acl/ca.pem"
	setfacl -m "g:root:r" "$work/acl/ca.pem"
	check "  an ACL entry of another group only: the others' bits decide (valid)" checked acl valid
	setfacl -b "$work/acl/ca.pem"
	chmod 700 "$work/acl"
	check "  a directory on the way the user cannot search: refused, naming it" \
		checked acl "directory $work/acl is not searchable by user $SERVICE_USER"
	chmod 755 "$work/acl"
	# the store's files, when they exist, must be the account's to write
	variant acl-store
	: > "$work/acl-store-data/credsign.db-wal"
	chmod 644 "$work/acl-store-data/credsign.db-wal"
	check "account check: a store WAL file the user cannot write is refused" \
		checked acl-store "$work/acl-store-data/credsign.db-wal is not writable by user $SERVICE_USER"
	chown "$SERVICE_USER:" "$work/acl-store-data/credsign.db-wal"
	chmod 600 "$work/acl-store-data/credsign.db-wal"
	check "  the user's own: valid" checked acl-store valid
fi
check "the daemon under test still serves" \
	test "$(curl -s -o /dev/null -w '%{http_code}' $(client operator) "$url/healthz")" = 200

# ---- libevent's own refusals, in our JSON error format (http_errors.h) ------------------
# json_refusal STATUS CODE CURL-ARGS...: the answer is STATUS with a JSON
# error CODE and the connection is closed
json_refusal() {
	local status=$1 code=$2 head
	shift 2
	curl -s -D "$work/refusal.head" -o "$work/refusal.body" --max-time 5 $(client ci-deployer) "$@"
	head=$(tr -d '\r' < "$work/refusal.head")
	[[ "$head" == "HTTP/1.1 $status "* ]] && [[ "$head" == *"Content-Type: application/json"* ]] &&
		[[ "$head" == *"Connection: close"* ]] &&
		[ "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["error"]["code"])' "$work/refusal.body")" = "$code" ] ||
		{ echo "  $head"; cat "$work/refusal.body"; return 1; }
}
check "an Expect other than 100-continue: libevent's 417 as JSON expectation_failed" \
	json_refusal 417 expectation_failed -H 'Expect: something-else' -H 'Content-Type: application/json' \
	--data-binary "{$PAYMENTS,\"preset\":\"soc2\"}" "$url/api/generate"
check "a declared body far over the limits: libevent's 413 as JSON payload_too_large" \
	json_refusal 413 payload_too_large -X GET -H 'Content-Length: 99999999999' "$url/healthz"

# ---- SIGHUP: a reload that fails keeps the context in force --------------------------
# the daemon's own copies of the CA and the CRL, to spoil and restore
mkdir -p "$work/tls"
cp "$pki/ca.pem" "$pki/crl.pem" "$work/tls/"
chmod 755 "$work/tls"
chmod 644 "$work/tls/"*
stop_daemon
sed -i -e "s|ca = \"$pki/ca.pem\"|ca = \"$work/tls/ca.pem\"|" -e "s|crl = \"$pki/crl.pem\"|crl = \"$work/tls/crl.pem\"|" "$conf"
chmod 644 "$db" # (and a store left open to other users: made private at start)
start_daemon || exit 1
check "a store open to other users is made private at start, and the log says so" \
	bash -c 'grep -q "$1 was open to other users (mode 644); now 600" "$2" && [ "$(stat -c %a "$1")" = 600 ]' x "$db" "$log"

# reload: SIGHUP to the daemon, then wait for one more line saying PATTERN
reload() { # reload PATTERN
	local before
	before=$(grep -c -- "$1" "$log")
	kill -HUP "$daemon"
	for _ in $(seq 100); do
		[ "$(grep -c -- "$1" "$log")" -gt "$before" ] && return 0
		sleep 0.05
	done
	echo "  no new '$1' in the log"
	return 1
}
# the last tls.reload audit entry: OUTCOME|ERROR_CODE
last_reload() { sqlite3 "$db" "SELECT outcome || '|' || ifnull(error_code, '') FROM audit_log WHERE action = 'tls.reload' ORDER BY seq DESC LIMIT 1"; }
reload_failures() { sqlite3 "$db" "SELECT count(*) FROM audit_log WHERE action = 'tls.reload' AND outcome = 'failure'"; }
# new connections: a client of the CA gets its credential
serves() {
	local got
	got=$(call ci-deployer POST /api/generate "{$PAYMENTS,\"preset\":\"soc2\"}")
	[[ "$got" == "200 "* ]] || { echo "  ${got:0:200}"; return 1; }
}
spoiled_reload() { # spoiled_reload DESCRIPTION: the reload fails, is audited, service goes on
	local n
	n=$(reload_failures)
	reload "SIGHUP: TLS reload failed" || return 1
	# (the entry is written after the log line)
	for _ in $(seq 50); do
		[ "$(reload_failures)" -gt "$n" ] && break
		sleep 0.1
	done
	[ "$(reload_failures)" -eq $((n + 1)) ] || { echo "  failures audited: $(reload_failures), before $n"; return 1; }
	[ "$(last_reload)" = "failure|config_invalid" ] || { echo "  audited: $(last_reload)"; return 1; }
	grep -q "keeping the current context" "$log" && serves
}

echo "not a certificate" > "$work/tls/ca.pem"
check "SIGHUP with a garbage tls.ca: the reload fails, logged and audited; new connections still served" \
	spoiled_reload
check "  the access rules are reloaded regardless" grep -q "access rules reloaded\|access.reload\|grants reloaded" "$log"
cp "$pki/ca.pem" "$work/tls/ca.pem"
echo "not a CRL" > "$work/tls/crl.pem"
check "SIGHUP with a garbage tls.crl: the reload fails, logged and audited; still served" spoiled_reload
grep -q "cannot load a CRL from $work/tls/crl.pem" "$log"
check "  the log names the CRL file" test $? -eq 0
rm -f "$work/tls/crl.pem"
check "SIGHUP with tls.crl removed: the reload fails, logged and audited; still served" spoiled_reload
# a client revoked in the CRL still refused: the context in force kept its CRL
check "  the context in force still checks the CRL it had (revoked client refused)" \
	bash -c '[ "$(curl -s -o /dev/null -w "%{http_code}" "$@")" = 000 ]' x $(client revoked) "$url/healthz"
cp "$pki/crl.pem" "$work/tls/crl.pem"
good_reload() {
	reload "SIGHUP: client CA and CRL reloaded" || return 1
	for _ in $(seq 50); do
		[ "$(last_reload)" = "success|" ] && break
		sleep 0.1
	done
	[ "$(last_reload)" = "success|" ] && serves
}
check "SIGHUP with the files restored: reloaded, audited as a success, served" good_reload
check "the daemon's log has no sanitizer report" bash -c '! grep -q Sanitizer "$1"' x "$log"

# ---- an api-key with a prefix, end to end over mutual TLS ----------------------------
client_cs=("$BUILD/bin/credsign" --url "$url" --cacert "$pki/ca.pem" --cert "$clients/ci-deployer.pem"
	--key "$clients/ci-deployer.key")
call auditor GET /.well-known/jwks.json | cut -d' ' -f2- > "$work/jwks.json"
prefixed_key() {
	"${client_cs[@]}" generate --preset pci-dss-4 --type api-key --prefix ci_deploy --length 32 \
		--project payments --environment production --certify --format json > "$work/key.json" ||
		{ cat "$work/key.json"; return 1; }
	python3 - "$work/key.json" "$work" <<'PY'
import base64, json, re, sys
out = json.load(open(sys.argv[1]))
cred = out["credential"]
assert re.fullmatch(r"ci_deploy_[A-Za-z0-9]{32}", cred), cred
jws = out["certificate"]
claims = json.loads(base64.urlsafe_b64decode(jws.split(".")[1] + "=="))
c = claims["credential"]
assert c["type"] == "api-key" and c["prefix"] == "ci_deploy" and c["length"] == 32, c
assert claims["project"] == "payments" and claims["subject"]["identity"].endswith("/ci-deployer"), claims
open(sys.argv[2] + "/key.jws", "w").write(jws)
open(sys.argv[2] + "/key.cred", "w").write(cred)
open(sys.argv[2] + "/key-noprefix.cred", "w").write(cred[len("ci_deploy_"):])
PY
}
check "credsign generate --type api-key --prefix ci_deploy --certify: ci_deploy_ + 32 base62, certified with the prefix" \
	prefixed_key
check "  credsign verify accepts the credential against the certificate" \
	"$BUILD/bin/credsign" verify "$work/key.jws" --jwks "$work/jwks.json" --credential-file "$work/key.cred"
no_prefix_refused() {
	local out
	out=$("$BUILD/bin/credsign" verify "$work/key.jws" --jwks "$work/jwks.json" \
		--credential-file "$work/key-noprefix.cred" 2>&1)
	[ $? -eq 1 ] && [[ "$out" == *credential_mismatch* ]] || { echo "  $out"; return 1; }
}
check "  and refuses it without its prefix (credential_mismatch)" no_prefix_refused
longest_prefix() {
	local got
	got=$(call ci-deployer POST /api/generate "{$PAYMENTS,\"preset\":\"soc2\",\"type\":\"api-key\",\"prefix\":\"abcdefghij_12345\"}")
	[[ "$got" == "200 "*'"credential":"abcdefghij_12345_'* ]] || { echo "  ${got:0:300}"; return 1; }
}
check "a 16-character prefix (the limit) is accepted" longest_prefix
check "a prefix with an upper-case letter -> 400 invalid_field" expect_error ci-deployer POST /api/generate \
	"{$PAYMENTS,\"preset\":\"soc2\",\"type\":\"api-key\",\"prefix\":\"Ci\"}" 400 invalid_field
check "an empty prefix -> 400 invalid_field" expect_error ci-deployer POST /api/generate \
	"{$PAYMENTS,\"preset\":\"soc2\",\"type\":\"api-key\",\"prefix\":\"\"}" 400 invalid_field
check "a prefix that is not a string -> 400 invalid_field" expect_error ci-deployer POST /api/generate \
	"{$PAYMENTS,\"preset\":\"soc2\",\"type\":\"api-key\",\"prefix\":7}" 400 invalid_field
prefix_needs_api_key() {
	local got
	got=$(call ci-deployer POST /api/generate "{$PAYMENTS,\"preset\":\"soc2\",\"type\":\"password\",\"prefix\":\"ci\"}")
	[[ "$got" == "400 "* && "$got" == *invalid_field* && "$got" == *"'prefix' is only allowed with type api-key"* ]] ||
		{ echo "  ${got:0:300}"; return 1; }
}
check "a prefix with type password -> 400 naming the rule" prefix_needs_api_key

# ---- credsign-admin token info, audit verify without --jwks -----------------------------
token_info() {
	"$admin_bin" --config "$conf" token info > "$work/token-info.json" 2> "$work/token-info.err" ||
		{ cat "$work/token-info.err"; return 1; }
	python3 - "$work/token-info.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
t = d["token"]
assert t["label"] == "cstest", t
assert t["flags"]["rng"] is True and t["flags"]["token_initialized"] is True, t
assert t["flags"]["user_pin_initialized"] is True and t["flags"]["login_required"] is True, t
assert t["manufacturer"] and t["serial"], t
assert "SoftHSM" in d["module"]["description"] or d["module"]["description"], d["module"]
assert d["mechanisms"], d
PY
}
check "credsign-admin token info: the token's label, flags, module and mechanisms as JSON" token_info
checkpointed() {
	for _ in $(seq 50); do
		[ "$(sqlite3 "$db" "SELECT count(*) FROM audit_checkpoints")" -gt 0 ] && return 0
		sleep 0.1
	done
	return 1
}
check "a signed audit checkpoint (audit.checkpoint_seconds = 1)" checkpointed
verify_with_store_keys() {
	local out rc
	out=$("$admin_bin" --config "$conf" audit verify 2> "$work/verify.err")
	rc=$?
	service_store
	grep -q "against the store's own key table" "$work/verify.err" || { cat "$work/verify.err"; return 1; }
	[ "$rc" -eq 0 ] && [[ "$out" == "audit log intact"* ]] || { echo "  exit $rc: $out"; return 1; }
}
check "credsign-admin audit verify without --jwks: the store's key table verifies the checkpoints (exit 0)" \
	verify_with_store_keys
stop_daemon
tampered_named() {
	local out rc seq
	cp "$db" "$work/tampered.db"
	seq=$(sqlite3 "$work/tampered.db" "SELECT min(seq) FROM audit_log WHERE action = 'tls.reload'")
	# (an attacker with the file drops the append-only trigger first)
	sqlite3 "$work/tampered.db" "DROP TRIGGER audit_log_no_update; UPDATE audit_log SET outcome = 'success' WHERE seq = $seq"
	sed "s|$db|$work/tampered.db|" "$conf" > "$work/tampered.conf"
	out=$("$admin_bin" --config "$work/tampered.conf" audit verify 2>&1)
	rc=$?
	[ "$rc" -eq 1 ] && [[ "$out" == *"seq $seq"* ]] && [[ "$out" != *"audit log intact"* ]] ||
		{ echo "  exit $rc (seq $seq): $out"; return 1; }
}
check "  a changed entry (a failed reload made a success) is found, its seq named (exit 1)" tampered_named

# ---- descriptors run out: accept() fails, the listeners pause, service resumes --------
# The network process's RLIMIT_NOFILE just over what it holds when idle;
# then more connections than that to the TLS listener and to the probe
# listener (server.health_listen). Each listener pauses (one log line a
# second), the process does not crash (it did: the error callback took
# libevent's argument for ours), and both answer once the connections go.
net_pid() { pgrep -P "$daemon" -f credsignd | while read -r p; do [ "$(cat /proc/$p/comm)" = credsignd-net ] && echo "$p"; done; }
probe_port=$(free_port)
sed -i "s|server = { |server = { health_listen = \"127.0.0.1:$probe_port\"; |" "$conf"
start_daemon || exit 1
idle_fds=$(ls /proc/"$(net_pid)"/fd | wc -l)
stop_daemon
DAEMON_WRAP=(bash -c 'ulimit -n "$0" && exec "$@"' $((idle_fds + 3)))
start_daemon || exit 1
DAEMON_WRAP=()
# hold PORT: more connections to PORT than there are descriptors, for 1.3 s
hold() {
	python3 - "$1" <<'PY'
import socket, sys, time
held = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(8)]
time.sleep(1.3)
PY
}
descriptors_exhausted() {
	local net
	net=$(net_pid)
	# one listener at a time: the log says at most one line a second for both,
	# and a listener that keeps failing would hide the other's failures
	hold "$port" &
	wait_for_log "TLS listener: accept failed .*Too many open files; pausing 100 ms" || { echo "  no TLS listener pause"; return 1; }
	wait $!
	sleep 0.5
	hold "$probe_port" &
	wait_for_log "probe listener: accept failed .*Too many open files; pausing 100 ms" || { echo "  no probe listener pause"; return 1; }
	wait $!
	sleep 0.3
	[ "$(net_pid)" = "$net" ] || { echo "  the network process changed: $net -> $(net_pid)"; grep 'network process' "$log"; return 1; }
	! grep -q "network process pid $net \(killed\|exited\)" "$log" || { grep 'network process' "$log"; return 1; }
	[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 $(client operator) "$url/healthz")" = 200 ] &&
		[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$probe_port/healthz")" = 200 ]
}
check "descriptors exhausted: both listeners pause and log it, the network process lives, both serve again" \
	descriptors_exhausted
stop_daemon
check "  and stops cleanly (exit 0)" test $? -eq 0
check "  no sanitizer report in its log" bash -c '! grep -q Sanitizer "$1"' x "$log"

# ---- systemd's side broken: the daemon says so once and serves -----------------------
# NOTIFY_SOCKET names no socket, WATCHDOG_USEC is not a number
notify_broken() {
	DAEMON_WRAP=(env NOTIFY_SOCKET="$work/no-such-notify.sock" WATCHDOG_USEC=soon)
	start_daemon
	local started=$?
	DAEMON_WRAP=()
	[ $started -eq 0 ] || return 1
	wait_for_log "systemd watchdog: WATCHDOG_USEC not understood (.*); no watchdog" &&
		wait_for_log "systemd notification .* not sent: .*(further failures not logged)" || { cat "$log"; return 1; }
	reload "SIGHUP: client CA and CRL reloaded" || return 1
	# once per process that notifies, not once per notification
	[ "$(grep -c 'systemd notification .* not sent' "$log")" -le 2 ] || { grep 'systemd notification' "$log"; return 1; }
	serves && stop_daemon && ! grep -q Sanitizer "$log"
}
check "a notification socket that does not exist and a bad WATCHDOG_USEC: warned once, served, clean stop" \
	notify_broken

# ---- an IPv6 listener: server.listen "[::1]:PORT" ----------------------------------
# (the server certificate names 127.0.0.1: curl connects to ::1 and checks
# the name it was given)
ipv6_serves() {
	local p6 got
	p6=$(free_port)
	sed -i "s|listen = \"127.0.0.1:$port\"|listen = \"[::1]:$p6\"|" "$conf"
	service_store
	"$BUILD/bin/credsignd" --config "$conf" > "$log" 2>&1 &
	daemon=$!
	pids+=($daemon)
	local via=(--connect-to "127.0.0.1:$port:[::1]:$p6")
	for _ in $(seq 100); do
		got=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "${via[@]}" $(client operator) "$url/healthz")
		[ "$got" = 200 ] && break
		sleep 0.05
	done
	sed -i "s|listen = \"\[::1\]:$p6\"|listen = \"127.0.0.1:$port\"|" "$conf"
	[ "$got" = 200 ] || { echo "  healthz over ::1: $got"; cat "$log"; return 1; }
	got=$(curl -s -w ' %{http_code}' "${via[@]}" $(client ci-deployer) -H 'Content-Type: application/json' \
		--data-binary "{$PAYMENTS,\"preset\":\"soc2\"}" "$url/api/generate")
	[[ "$got" == *'"credential"'*" 200" ]] || { echo "  generate over ::1: ${got:0:200}"; return 1; }
	grep -q "listening on \[::1\]:$p6" "$log" || { grep listening "$log"; return 1; }
	stop_daemon
}
if python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2> /dev/null; then
	check "server.listen [::1]:PORT: served over IPv6 (healthz, generate), clean stop" ipv6_serves
fi

file_needs_jwks() {
	local out rc
	out=$("$admin_bin" --config "$conf" audit verify --file "$work/key.json" 2>&1)
	rc=$?
	[ "$rc" -eq 2 ] && [[ "$out" == *"--file needs --jwks"* ]] || { echo "  exit $rc: $out"; return 1; }
}
check "credsign-admin audit verify --file without --jwks: usage error (exit 2), says why" file_needs_jwks

finish
