#!/usr/bin/env bash
# Diagnostics that name the cause, against a real SoftHSM2 token and the
# development PKI:
#  - credsignd --check-config opens the token, logs in, checks its RNG,
#    finds every configured key and checks the TLS material, each problem
#    naming its setting (and the failing PKCS#11 call, the PIN's state as
#    the token reports it, the serials an ambiguous URI matches), the file
#    named as given, what the token layer logged indented under it (no log
#    lines); --offline skips the token only;
#  - start-up binds its listeners and checks the token (its RNG too) and
#    the TLS material before it creates the store or changes its mode: a
#    port in use, a wrong PIN, a token without RNG or an expired server
#    certificate stop it with exit 1 and no store file; -v logs at debug;
#  - credsign-admin --version, -v showing each failing PKCS#11 call once,
#    no configuration, a key named by its URI, a --key of another token;
#    credsign-bench --version;
#  - at run time, a token fault is logged with the call at the default level.
#
#   diagnostics_test.sh BUILD_DIR STATE_DIR SOFTHSM_MODULE FAULT_MODULE
BUILD=${1:?}
STATE=${2:?}
SOFTHSM=${3:?}
FAULT=${4:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_token diagnostics || exit 1
it_setup diagnostics || exit 1
stop_daemon # the configuration works; below, variants of it that do not
credsignd=$BUILD/bin/credsignd
key_uri="pkcs11:token=cstest;object=it-es256-diagnostics"

# variant NAME SED-EXPRESSION...: $work/NAME.conf, the working file changed
variant() {
	local name=$1 e args=()
	shift
	for e in "$@"; do args+=(-e "$e"); done
	sed "${args[@]}" "$conf" > "$work/$name.conf"
	chmod 644 "$work/$name.conf" # server.user reads it (a SIGHUP would)
	cmp -s "$conf" "$work/$name.conf" && { echo "  variant $name: the edit changed nothing"; return 1; }
	return 0
}

# invalid NAME [--offline] PATTERN...: --check-config exits 1 and says each
# PATTERN (extended regex) and "configuration invalid"
invalid() {
	local name=$1 opts=() p rc
	shift
	[ "${1:-}" = --offline ] && { opts=(--offline); shift; }
	"$credsignd" "${opts[@]}" --check-config "$work/$name.conf" > "$work/$name.out" 2> "$work/$name.err"
	rc=$?
	[ "$rc" -eq 1 ] || { echo "  exit $rc"; cat "$work/$name.err"; return 1; }
	for p in "$@" "$name.conf: configuration invalid"; do
		grep -qE -- "$p" "$work/$name.err" || { echo "  no '$p' in:"; sed 's/^/    /' "$work/$name.err"; return 1; }
	done
	no_log_lines "$work/$name.err" || return 1
	! grep -q "configuration valid" "$work/$name.out"
}

# --check-config prints problems and, indented under them, what the layers
# below said: never a log line (logfmt)
no_log_lines() {
	! grep -qE '(^|[[:space:]])(ts|level|fn)=' "$1" || { echo "  log lines in the output:"; cat "$1"; return 1; }
}

valid() { # valid NAME [--offline]
	"$credsignd" ${2:+"$2"} --check-config "$work/$1.conf" > "$work/$1.out" 2> "$work/$1.err" &&
		grep -q "$1.conf: configuration valid" "$work/$1.out" || { cat "$work/$1.err"; return 1; }
	no_log_lines "$work/$1.err"
}

# ---- --check-config against the token -------------------------------------------------
cp "$conf" "$work/good.conf"
check "--check-config: the working configuration is valid" valid good

variant no-token 's/token=cstest/token=no-such-token/g'
check "--check-config: a token label that does not exist is named (it was 'configuration valid')" \
	invalid no-token "no-token.conf:[0-9]+: setting 'pkcs11.token_uri': pkcs11:token=no-such-token: no token matches the URI"
check "--offline skips the token: the same file passes" valid no-token --offline
given_path() { # the file as given (relative here), in every line
	(cd "$work" && "$credsignd" --check-config no-token.conf > /dev/null 2> "$work/given.err")
	grep -q "^no-token.conf:[0-9]*: setting 'pkcs11.token_uri'" "$work/given.err" &&
		grep -qx "no-token.conf: configuration invalid" "$work/given.err" &&
		! grep -q "^$work" "$work/given.err" || { cat "$work/given.err"; return 1; }
}
check "--check-config: problem lines name the file as given, like the verdict" given_path
variant other-token 's/signing_key = "pkcs11:token=cstest;/signing_key = "pkcs11:token=other;/'
check "a signing key URI naming another token than token_uri is refused at load, naming both settings" \
	invalid other-token --offline "setting 'pkcs11.signing_key': pkcs11:token=other;object=it-es256-diagnostics: names token=other, but pkcs11.token_uri selects token=cstest"

# pkcs11.signing_key only bootstraps a store that never had an active key:
# for a new store a missing key is a problem, for one with an active key a
# warning that says which key signs
variant no-key-new-store "s/object=it-es256-diagnostics/object=no-such-key/" "s|path = \"[^\"]*\"|path = \"$work/new.db\"|"
check "--check-config (new store): a signing key missing from the token is named; no store is created" \
	invalid no-key-new-store "no-key-new-store.conf:[0-9]+: setting 'pkcs11.signing_key': pkcs11:token=cstest;object=no-such-key: key not found in the token"
check "  ... and nothing was written" test ! -e "$work/new.db"
variant no-key "s/object=it-es256-diagnostics/object=no-such-key/"
key_warned() {
	valid no-key || return 1
	grep -qE "no-key.conf:[0-9]+: warning: setting 'pkcs11.signing_key': pkcs11:token=cstest;object=no-such-key: .*key not found in the token.*the store's active key [A-Za-z0-9_-]{43} signs" \
		"$work/no-key.err" || { cat "$work/no-key.err"; return 1; }
}
check "--check-config (store with an active key): a configured key missing from the token is a warning naming the active key" \
	key_warned

umask 077
echo 000000 > "$work/wrong.pin"
variant wrong-pin "s|pin_file = \"[^\"]*\"|pin_file = \"$work/wrong.pin\"|"
check "--check-config: a wrong PIN names C_Login and CKR_PIN_INCORRECT" \
	invalid wrong-pin "setting 'pkcs11.pin_file': $work/wrong.pin: token PIN rejected \(C_Login: CKR_PIN_INCORRECT\)"

variant tls-key-missing "s|key = \"$pki/server.key\"|key = \"pkcs11:token=cstest;object=no-tls-key\"|"
check "--check-config: a tls.key pkcs11: URI is looked up in the token" \
	invalid tls-key-missing "setting 'tls.key': pkcs11:token=cstest;object=no-tls-key: key not found in the token"

# ---- --check-config: the TLS material ---------------------------------------------------
variant mismatch "s|key = \"$pki/server.key\"|key = \"$clients/ci-deployer.key\"|"
check "--check-config: a server key that does not match tls.cert" \
	invalid mismatch "setting 'tls.key': $clients/ci-deployer.key: the key does not match the certificate of tls.cert"

variant expired "s|cert = \"$pki/server.pem\"|cert = \"$clients/expired.pem\"|" \
	"s|key = \"$pki/server.key\"|key = \"$clients/expired.key\"|"
check "--check-config: an expired server certificate, with its date" \
	invalid expired "setting 'tls.cert': $clients/expired.pem: the server certificate \(O=credsign dev,CN=expired\) expired on 2021-01-01T00:00:00Z"
check "--offline skips only the token: an expired server certificate is named" \
	invalid expired --offline "setting 'tls.cert': $clients/expired.pem: the server certificate \(O=credsign dev,CN=expired\) expired on 2021-01-01T00:00:00Z"
check "--offline: a server key that does not match tls.cert is named" \
	invalid mismatch --offline "setting 'tls.key': $clients/ci-deployer.key: the key does not match the certificate of tls.cert"

# CRLs made here from copies of the dev CAs (the shared PKI is left alone)
crl() { # crl CA OUT [openssl ca arguments]
	local ca=$1 out=$2
	shift 2
	rm -rf "$work/ca-$ca" && cp -r "$pki/ca-db/$ca" "$work/ca-$ca" &&
		CA_DIR="$work/ca-$ca" EKU=x SAN=x openssl ca -config "$pki/ca.cnf" -gencrl -out "$out" "$@" 2> /dev/null
}
crl main "$work/expired-crl.pem" -crl_lastupdate 20200101000000Z -crl_nextupdate 20210101000000Z || exit 1
crl other "$work/other-crl.pem" || exit 1
variant crl-expired "s|crl = \"$pki/crl.pem\"|crl = \"$work/expired-crl.pem\"|"
check "--check-config: an expired CRL (every client would be refused)" \
	invalid crl-expired "setting 'tls.crl': $work/expired-crl.pem: the CRL of CN=credsign dev CA,O=credsign dev expired on 2021-01-01T00:00:00Z"
variant crl-other "s|crl = \"$pki/crl.pem\"|crl = \"$work/other-crl.pem\"|"
check "--check-config: a CRL from a CA that is not tls.ca" \
	invalid crl-other "setting 'tls.crl': $work/other-crl.pem: the CRL's issuer CN=unrelated CA,O=credsign dev is not a CA of tls.ca"

# an expired CA kept in the bundle beside a valid one: a warning, still valid
old_ca() {
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/old-ca.key" 2> /dev/null &&
		CA_DIR="$work/ca-main" EKU=x SAN=x openssl req -new -config "$pki/ca.cnf" -key "$work/old-ca.key" \
			-subj "/O=credsign dev/CN=old CA" -out "$work/old-ca.csr" &&
		CA_DIR="$work/ca-main" EKU=x SAN=x openssl ca -batch -notext -selfsign -config "$pki/ca.cnf" \
			-keyfile "$work/old-ca.key" -extensions v3_ca -in "$work/old-ca.csr" -out "$work/old-ca.pem" \
			-startdate 20200101000000Z -enddate 20210101000000Z 2> /dev/null &&
		cat "$pki/ca.pem" "$work/old-ca.pem" > "$work/ca-bundle.pem"
		chmod 644 "$work/ca-bundle.pem"
}
old_ca || exit 1
variant ca-old "s|ca = \"$pki/ca.pem\"|ca = \"$work/ca-bundle.pem\"|"
ca_warning() {
	valid ca-old || return 1
	grep -qE "ca-old.conf:[0-9]+: warning: setting 'tls.ca': $work/ca-bundle.pem: the CA certificate \(O=credsign dev,CN=old CA\) expired on 2021-01-01T00:00:00Z" \
		"$work/ca-old.err" || { cat "$work/ca-old.err"; return 1; }
}
check "--check-config: an expired CA beside a valid one is a warning, the file stays valid" ca_warning

variant several "s/object=it-es256-diagnostics/object=no-such-key/" \
	"s|cert = \"$pki/server.pem\"|cert = \"$clients/expired.pem\"|" "s|key = \"$pki/server.key\"|key = \"$clients/expired.key\"|"
check "--check-config reports every problem, not only the first" \
	invalid several "setting 'pkcs11.signing_key'" "setting 'tls.cert': .* expired on"

# ---- start-up: bind and check before anything is written ------------------------------
# refused NAME PATTERN: credsignd --config exits 1 saying PATTERN (fixed
# string), before the store exists
refused() {
	local name=$1 rc
	rm -f "$db" "$db-wal" "$db-shm"
	timeout 60 "$credsignd" --config "$work/$name.conf" > "$work/$name.log" 2>&1
	rc=$?
	[ "$rc" -eq 1 ] || { echo "  exit $rc"; cat "$work/$name.log"; return 1; }
	grep -qF -- "$2" "$work/$name.log" || { echo "  no '$2' in:"; sed 's/^/    /' "$work/$name.log"; return 1; }
	# (the daemon's start line; not "restarting the key process", which a
	# supervisor may log while the network process fails its start)
	! grep -q " starting: node=" "$work/$name.log" || { echo "  it started"; return 1; }
	[ ! -e "$db" ] || { echo "  the store $db was created"; return 1; }
}

# a socket of another process holds the port (listening)
hold_port() { # hold_port PORT: sets holder
	python3 -c '
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
time.sleep(120)' "$1" &
	holder=$!
	pids+=($holder)
	for _ in $(seq 100); do
		ss -ltn | grep -q "127.0.0.1:$1 " && return 0
		sleep 0.05
	done
	echo "  the port holder did not listen"
	return 1
}
taken=$(free_port)
hold_port "$taken" || exit 1
variant port-taken "s/listen = \"127.0.0.1:$port\"/listen = \"127.0.0.1:$taken\"/"
check "start-up: server.listen in use is named, exit 1, no store created" \
	refused port-taken "server.listen 127.0.0.1:$taken: address already in use"
variant probe-taken "s/server = { /server = { health_listen = \"127.0.0.1:$taken\"; /"
check "start-up: server.health_listen in use is named, exit 1, no store created" \
	refused probe-taken "server.health_listen 127.0.0.1:$taken: address already in use"
kill "$holder" 2> /dev/null

check "start-up: a wrong PIN names C_Login: CKR_PIN_INCORRECT, no store created" \
	refused wrong-pin "C_Login: CKR_PIN_INCORRECT"
check "start-up: an expired server certificate stops it before the store is created" \
	refused expired "expired on 2021-01-01T00:00:00Z"
check "start-up: a missing signing key is named, no store created" \
	refused no-key "setting 'pkcs11.signing_key': pkcs11:token=cstest;object=no-such-key: key not found in the token"

# a store left by an earlier run keeps its mode when start-up fails: it is
# made private only once every check passed ("nothing changed")
store_untouched() {
	local rc mode
	rm -f "$db" "$db-wal" "$db-shm"
	: > "$db" && chmod 644 "$db"
	timeout 60 "$credsignd" --config "$work/wrong-pin.conf" > "$work/mode.log" 2>&1
	rc=$?
	mode=$(stat -c %a "$db")
	rm -f "$db"
	[ "$rc" -eq 1 ] && [ "$mode" = 644 ] || { echo "  exit $rc, store mode $mode"; cat "$work/mode.log"; return 1; }
}
check "start-up: a failed start leaves an existing store's mode alone (it was made 600 before the checks)" store_untouched

# -v/--verbose: debug level for the run, whatever log.level says
verbose_daemon() {
	rm -f "$db"
	timeout 60 "$credsignd" -v --config "$work/wrong-pin.conf" > "$work/verbose.log" 2>&1
	grep -q 'level=debug fn=pkcs11 msg="PKCS#11 call failed: C_Login: CKR_PIN_INCORRECT' "$work/verbose.log" ||
		{ cat "$work/verbose.log"; return 1; }
	"$credsignd" --verbose --check-config "$work/wrong-pin.conf" > /dev/null 2> "$work/verbose.err"
	grep -A3 "setting 'pkcs11.pin_file'" "$work/verbose.err" |
		grep -q "^    debug: PKCS#11 call failed: C_Login: CKR_PIN_INCORRECT" || { cat "$work/verbose.err"; return 1; }
	no_log_lines "$work/verbose.err"
}
check "credsignd -v: the daemon logs at debug level; --check-config shows the failing call under its problem" verbose_daemon

# ---- what the token reports: its RNG, its PIN, its C_Initialize, its twins ---------------
# (tests/fault/fault_pkcs11.c in front of SoftHSM2)
export CREDSIGN_FAULT_REAL_MODULE=$SOFTHSM CREDSIGN_FAULT_CONTROL=$STATE/fault-diagnostics.control
fault_rules() { printf '%b' "$1" > "$CREDSIGN_FAULT_CONTROL"; }
variant faulty "s|module = \"$SOFTHSM\"|module = \"$FAULT\"|"
fault_rules 'no-rng\n'
check "--check-config: a token without CKF_RNG is named under pkcs11.token_uri (it was 'configuration valid')" \
	invalid faulty "faulty.conf:[0-9]+: setting 'pkcs11.token_uri': pkcs11:token=cstest: the token reports no random number generator \(CKF_RNG not set in C_GetTokenInfo\)"
check "start-up: a token without CKF_RNG is named (it was 'the TLS material is not usable'), no store created" \
	refused faulty "setting 'pkcs11.token_uri': pkcs11:token=cstest: the token reports no random number generator (CKF_RNG not set in C_GetTokenInfo)"
fault_rules 'C_GenerateRandom 0x120\n'
check "--check-config: a failing C_GenerateRandom is named with its CKR under pkcs11.token_uri" \
	invalid faulty "faulty.conf:[0-9]+: setting 'pkcs11.token_uri': pkcs11:token=cstest: the token's random number generator does not work \(C_GenerateRandom: CKR_RANDOM_SEED_NOT_SUPPORTED\)"
check "start-up: a failing C_GenerateRandom is named with its CKR, no store created" \
	refused faulty "the token's random number generator does not work (C_GenerateRandom: CKR_RANDOM_SEED_NOT_SUPPORTED)"
fault_rules 'C_Login 0xA4\n'
check "--check-config: a locked PIN is reported under pkcs11.pin_file (it was pkcs11.token_uri)" \
	invalid faulty "faulty.conf:[0-9]+: setting 'pkcs11.pin_file': $TOKEN_DIR/user.pin: the token's user PIN is locked \(C_Login: CKR_PIN_LOCKED\)"
fault_rules 'C_Login 0xA3\n'
check "--check-config: an expired PIN is reported under pkcs11.pin_file" \
	invalid faulty "faulty.conf:[0-9]+: setting 'pkcs11.pin_file': $TOKEN_DIR/user.pin: the token's user PIN has expired or must be changed \(C_Login: CKR_PIN_EXPIRED\)"
fault_rules 'C_Login 0x102\n'
check "--check-config: CKR_USER_PIN_NOT_INITIALIZED reads so (it read 'token PIN expired or must be changed')" \
	invalid faulty "setting 'pkcs11.token_uri': pkcs11:token=cstest: the token's user PIN is not initialized \(C_Login: CKR_USER_PIN_NOT_INITIALIZED\)"
fault_rules 'init-args configdir=/etc/diagnostics\n'
check "--check-config: a refused C_Initialize names the call and its CKR on the setting's line" \
	invalid faulty "faulty.conf:[0-9]+: setting 'pkcs11.module': $FAULT: PKCS#11 module failed to initialize \(C_Initialize: CKR_ARGUMENTS_BAD\)" \
	"^    error: C_Initialize of $FAULT: CKR_ARGUMENTS_BAD"
variant wrong-args "s|module = \"$SOFTHSM\";|module = \"$FAULT\"; init_args = \"configdir=/elsewhere\";|"
check "--check-config: initialisation arguments the module refuses are named under pkcs11.init_args" \
	invalid wrong-args "wrong-args.conf:[0-9]+: setting 'pkcs11.init_args': configdir=/elsewhere: the module $FAULT refused these initialisation arguments \(C_Initialize: CKR_ARGUMENTS_BAD\)"
fault_rules ''

# tokens of another SoftHSM2 directory: one whose user PIN was never set
# (initialised with the SO PIN only), and two with the same label
other=$work/other-tokens
rm -rf "$other" && mkdir -p "$other/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
	"$other" > "$other/softhsm2.conf"
{ SOFTHSM2_CONF=$other/softhsm2.conf pkcs11-tool --module "$SOFTHSM" --init-token --label nopin --so-pin 12345678 &&
	for _ in 1 2; do
		SOFTHSM2_CONF=$other/softhsm2.conf softhsm2-util --init-token --free --label twin --so-pin 12345678 --pin 123456 || exit 1
	done; } > /dev/null 2>&1 || { echo "cannot make the other tokens"; exit 1; }
variant nopin 's/token=cstest/token=nopin/g'
SOFTHSM2_CONF=$other/softhsm2.conf check "--check-config: a token whose user PIN was never set says so, from the token's flags" \
	invalid nopin "nopin.conf:[0-9]+: setting 'pkcs11.token_uri': pkcs11:token=nopin: the token's user PIN is not initialized \(C_GetTokenInfo: CKF_USER_PIN_INITIALIZED not set\); set it with the token's tools"
variant twin 's/token=cstest/token=twin/g'
SOFTHSM2_CONF=$other/softhsm2.conf check "--check-config: a token URI that matches two tokens lists their serials" \
	invalid twin "twin.conf:[0-9]+: setting 'pkcs11.token_uri': pkcs11:token=twin: more than one token matches the URI: serials [0-9a-f]+ \(slot [0-9]+\), [0-9a-f]+ \(slot [0-9]+\); add serial=SERIAL to the URI"
admin_twin() {
	SOFTHSM2_CONF=$other/softhsm2.conf "$BUILD/bin/credsign-admin" --config "$work/twin.conf" token info > /dev/null 2> "$work/twin-admin.err"
	[ $? -eq 1 ] && grep -qE "credsign-admin: tokens matching pkcs11:token=twin: serials [0-9a-f]+ \(slot [0-9]+\), [0-9a-f]+ \(slot [0-9]+\)" \
		"$work/twin-admin.err" || { cat "$work/twin-admin.err"; return 1; }
}
check "credsign-admin: a token URI that matches two tokens lists their serials" admin_twin

# ---- credsign-admin ----------------------------------------------------------------------
admin=$BUILD/bin/credsign-admin
check "credsign-admin --version" bash -c '"$1" --version | grep -qE "^credsign-admin [0-9]+\.[0-9]+"' x "$admin"
admin_pin() { # admin_pin [-v]: token info with the wrong PIN
	"$admin" "$@" --config "$work/wrong-pin.conf" token info > "$work/admin.out" 2> "$work/admin.err"
	[ $? -eq 1 ] || { echo "  did not fail"; return 1; }
	grep -q "credsign-admin: opening the token: token PIN rejected (CS_E_PIN_INCORRECT): C_Login: CKR_PIN_INCORRECT" \
		"$work/admin.err" || { cat "$work/admin.err"; return 1; }
}
quiet_pin() {
	admin_pin || return 1
	! grep -q "level=debug" "$work/admin.err" || { echo "  debug lines without -v"; return 1; }
}
check "credsign-admin names the failing PKCS#11 call without -v (no debug lines)" quiet_pin
verbose_pin() {
	admin_pin -v || return 1
	grep -q 'level=debug .*PKCS#11 call failed: C_Login: CKR_PIN_INCORRECT' "$work/admin.err" ||
		{ cat "$work/admin.err"; return 1; }
}
check "credsign-admin -v logs at debug level, every failing PKCS#11 call" verbose_pin
once_pin() {
	admin_pin -v || return 1
	local n
	n=$(grep -c 'C_Login: CKR_PIN_INCORRECT (token PIN rejected)' "$work/admin.err")
	[ "$n" -eq 1 ] || { echo "  $n lines for one failing call:"; cat "$work/admin.err"; return 1; }
}
check "credsign-admin -v logs a failing PKCS#11 call once (it was twice: fn=pkcs11 and fn=tok_ckr_fail)" once_pin
admin_no_config() {
	local rc=0
	env -u CREDSIGN_CONF "$admin" token info > /dev/null 2> "$work/noconf.err" || rc=$?
	[ "$rc" -eq 2 ] && grep -q "^credsign-admin: no configuration: give --config FILE or set CREDSIGN_CONF" "$work/noconf.err" ||
		{ echo "  exit $rc"; cat "$work/noconf.err"; return 1; }
}
check "credsign-admin without a configuration says so (it printed only the usage)" admin_no_config
admin_key_uri() {
	"$admin" --config "$conf" key jwk --key "pkcs11:token=cstest;object=no-such-key" > /dev/null 2> "$work/nokey.err"
	grep -q "credsign-admin: finding the key pkcs11:token=cstest;object=no-such-key: key not found in the token" "$work/nokey.err" ||
		{ cat "$work/nokey.err"; return 1; }
}
check "credsign-admin: a key not found is named by its URI" admin_key_uri
admin_other_token() {
	local rc=0
	"$admin" --config "$conf" key jwk --key "pkcs11:token=other;object=it-es256-diagnostics" > "$work/other.out" 2> "$work/other.err" || rc=$?
	[ "$rc" -eq 2 ] && [ ! -s "$work/other.out" ] &&
		grep -q "names token=other, but pkcs11.token_uri selects token=cstest" "$work/other.err" ||
		{ echo "  exit $rc"; cat "$work/other.out" "$work/other.err"; return 1; }
}
check "credsign-admin: a --key naming another token is refused (it returned the configured token's key)" admin_other_token
check "credsign-admin usage shows URI: for --san" bash -c '"$1" --help | grep -qF -- "--san DNS:name,IP:addr,URI:uri"' x "$admin"
check "credsign-bench --version" bash -c '"$1" --version | grep -qE "^credsign-bench [0-9]+\.[0-9]+"' x "$BUILD/bin/credsign-bench"
verbose_ok() {
	"$admin" --verbose --config "$conf" key jwk > "$work/jwk.json" 2> "$work/jwk.err" &&
		python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["kty"] == "EC"' "$work/jwk.json" ||
		{ cat "$work/jwk.err"; return 1; }
}
check "credsign-admin --verbose on a good configuration still answers" verbose_ok

# ---- at run time: a token fault reaches the log with its call ------------------------------
# (tests/fault/fault_pkcs11.c in front of SoftHSM2; 0x32 is CKR_DEVICE_REMOVED)
: > "$CREDSIGN_FAULT_CONTROL"
variant fault "s|module = \"$SOFTHSM\"|module = \"$FAULT\"|"
conf=$work/fault.conf
start_daemon || exit 1
runtime_fault() {
	printf 'C_GenerateRandom 0x32 1\n' > "$CREDSIGN_FAULT_CONTROL"
	sleep 0.05
	call ci-deployer POST /api/generate '{"project":"payments","environment":"production","preset":"soc2"}' > /dev/null
	: > "$CREDSIGN_FAULT_CONTROL"
	wait_for_log 'level=warn fn=pkcs11 msg="PKCS#11 call failed: C_GenerateRandom: CKR_DEVICE_REMOVED (token device removed)' ||
		{ grep -i pkcs11 "$log"; return 1; }
	for _ in $(seq 50); do # and it serves again
		[[ "$(call ci-deployer POST /api/generate '{"project":"payments","environment":"production","preset":"soc2"}')" == "200 "* ]] && return 0
		sleep 0.1
	done
	echo "  it did not serve again"
	return 1
}
check "run time: a token fault is logged (warn) naming the call and CKR_DEVICE_REMOVED" runtime_fault
stop_daemon

finish
