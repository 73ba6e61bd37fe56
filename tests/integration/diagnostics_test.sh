#!/usr/bin/env bash
# Diagnostics that name the cause, against a real SoftHSM2 token and the
# development PKI:
#  - credsignd --check-config opens the token, logs in, finds every
#    configured key and checks the TLS material, each problem naming its
#    setting (and the failing PKCS#11 call); --offline skips the token;
#  - start-up binds its listeners and checks the TLS material before it
#    creates the store: a port in use, a wrong PIN or an expired server
#    certificate stop it with exit 1 and no store file;
#  - credsign-admin --version, and -v showing the failing PKCS#11 call;
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
	! grep -q "configuration valid" "$work/$name.out"
}

valid() { # valid NAME [--offline]
	"$credsignd" ${2:+"$2"} --check-config "$work/$1.conf" > "$work/$1.out" 2> "$work/$1.err" &&
		grep -q "$1.conf: configuration valid" "$work/$1.out" || { cat "$work/$1.err"; return 1; }
}

# ---- --check-config against the token -------------------------------------------------
cp "$conf" "$work/good.conf"
check "--check-config: the working configuration is valid" valid good

variant no-token 's/token_uri = "pkcs11:token=cstest"/token_uri = "pkcs11:token=no-such-token"/'
check "--check-config: a token label that does not exist is named (it was 'configuration valid')" \
	invalid no-token "no-token.conf:[0-9]+: setting 'pkcs11.token_uri': pkcs11:token=no-such-token: no token matches the URI"
check "--offline skips the token: the same file passes" valid no-token --offline

variant no-key "s/object=it-es256-diagnostics/object=no-such-key/"
check "--check-config: a signing key missing from the token is named" \
	invalid no-key "no-key.conf:[0-9]+: setting 'pkcs11.signing_key': pkcs11:token=cstest;object=no-such-key: key not found in the token"

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
check "--offline does not look at the TLS material" valid expired --offline

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
	! grep -q "starting" "$work/$name.log" || { echo "  it started"; return 1; }
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
verbose_ok() {
	"$admin" --verbose --config "$conf" key jwk > "$work/jwk.json" 2> "$work/jwk.err" &&
		python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["kty"] == "EC"' "$work/jwk.json" ||
		{ cat "$work/jwk.err"; return 1; }
}
check "credsign-admin --verbose on a good configuration still answers" verbose_ok

# ---- at run time: a token fault reaches the log with its call ------------------------------
# (tests/fault/fault_pkcs11.c in front of SoftHSM2; 0x32 is CKR_DEVICE_REMOVED)
export CREDSIGN_FAULT_REAL_MODULE=$SOFTHSM CREDSIGN_FAULT_CONTROL=$STATE/fault-diagnostics.control
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
