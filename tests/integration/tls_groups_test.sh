#!/usr/bin/env bash
# The TLS listener's key exchange groups (tls.groups), seen from outside:
#  - by default elliptic curves only: a client offering only a finite-field
#    group (ffdhe2048) gets no handshake, X25519 and P-256 do;
#  - tls.groups = "P-384" offers P-384 alone;
#  - crypto.profile = "fips": AES-GCM suites and NIST curves only;
#  - testssl (Debian's testssl.sh) finds TLS 1.3 only and no finite-field
#    group in the default configuration (CREDSIGN_SKIP_TESTSSL=1 skips it).
#
#   tls_groups_test.sh BUILD_DIR STATE_DIR SOFTHSM_MODULE
BUILD=${1:?}
STATE=${2:?}
SOFTHSM=${3:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_token tls-groups || exit 1
it_setup tls-groups || exit 1

# handshake GROUPS: the group the server chose (openssl s_client, with a
# client certificate); fails when there is no handshake
handshake() {
	local out
	out=$(openssl s_client -connect "127.0.0.1:$port" -tls1_3 -groups "$1" -CAfile "$pki/ca.pem" \
		-cert "$clients/operator.pem" -key "$clients/operator.key" -brief < /dev/null 2>&1)
	grep -q '^CONNECTION ESTABLISHED' <<< "$out" || return 1
	sed -n 's/^\(Server Temp Key\|Peer Temp Key\|Negotiated TLS1.3 group\): *\([^,]*\).*/\2/p' <<< "$out" | head -1
}
default_groups() {
	[ "$(handshake X25519)" = X25519 ] || return 1
	[ -n "$(handshake P-256)" ] || return 1
	! handshake ffdhe2048 > /dev/null && ! handshake ffdhe4096 > /dev/null
}
check "default: X25519 and P-256 complete a handshake, ffdhe2048 and ffdhe4096 alone do not" default_groups

if [ -z "${CREDSIGN_SKIP_TESTSSL:-}" ] && command -v testssl > /dev/null; then
	testssl_view() {
		rm -f "$work/testssl.json"
		timeout 240 testssl --quiet --color 0 --warnings off --connect-timeout 5 --openssl-timeout 5 \
			-p -f --jsonfile "$work/testssl.json" "127.0.0.1:$port" > "$work/testssl.out" 2>&1
		python3 - "$work/testssl.json" <<'PY'
import json, sys
findings = {f["id"]: f["finding"] for f in json.load(open(sys.argv[1]))}
offered = {k: v for k, v in findings.items() if k in ("SSLv2", "SSLv3", "TLS1", "TLS1_1", "TLS1_2", "TLS1_3")}
assert offered.get("TLS1_3", "").startswith("offered"), offered
for p in ("SSLv2", "SSLv3", "TLS1", "TLS1_1", "TLS1_2"):
    assert offered.get(p, "").startswith("not offered"), (p, offered)
# testssl 3.0: "PFS_ECDHE_curves" (later "FS_ECDHE_curves"); a finite-field
# group offered shows as "DH_groups" (e.g. "ffdhe2048 ffdhe3072")
groups = findings.get("PFS_ECDHE_curves") or findings.get("FS_ECDHE_curves") or ""
assert "X25519" in groups and "prime256v1" in groups, findings
assert "DH_groups" not in findings, findings.get("DH_groups")
assert not any("ffdhe" in str(v).lower() for v in findings.values()), findings
print("  testssl:", offered["TLS1_3"], "|", groups)
PY
	}
	check "testssl: TLS 1.3 only, elliptic-curve groups, no finite-field group" testssl_view
fi

stop_daemon
sed -i 's|crl_check = true;|crl_check = true; groups = "P-384";|' "$conf"
start_daemon || exit 1
only_p384() {
	[ -n "$(handshake P-384)" ] && ! handshake X25519 > /dev/null && ! handshake P-256 > /dev/null
}
check "tls.groups = \"P-384\": P-384 alone completes a handshake" only_p384

# crypto.profile "fips": AES-GCM suites, NIST curves, no ChaCha20 nor X25519
stop_daemon
sed -i 's| groups = "P-384";||' "$conf"
echo 'crypto = { profile = "fips"; };' >> "$conf"
start_daemon || exit 1
suite() { # suite CIPHERSUITE: whether a handshake offering only it completes
	openssl s_client -connect "127.0.0.1:$port" -tls1_3 -ciphersuites "$1" -CAfile "$pki/ca.pem" \
		-cert "$clients/operator.pem" -key "$clients/operator.key" -brief < /dev/null 2>&1 |
		grep -q '^CONNECTION ESTABLISHED'
}
# a client certificate with an Ed25519 key, from the test CA
ed=$work/ed25519
mkdir -p "$ed"
openssl genpkey -algorithm ED25519 -out "$ed/c.key" 2> /dev/null &&
	openssl req -new -key "$ed/c.key" -subj "/O=credsign dev/CN=ed25519" -out "$ed/c.csr" &&
	printf '%s\n' "basicConstraints = critical, CA:false" "keyUsage = critical, digitalSignature" \
		"extendedKeyUsage = clientAuth" "subjectAltName = URI:spiffe://credsign.test/ed25519" > "$ed/c.ext" &&
	openssl x509 -req -in "$ed/c.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca-db/main/ca.key" \
		-set_serial "0x$(openssl rand -hex 16)" -days 2 -extfile "$ed/c.ext" -out "$ed/c.pem" 2> /dev/null ||
	{ echo "cannot issue the Ed25519 client certificate"; exit 1; }
ed25519_client() { # a handshake with the Ed25519 client certificate
	openssl s_client -connect "127.0.0.1:$port" -tls1_3 -CAfile "$pki/ca.pem" -cert "$ed/c.pem" -key "$ed/c.key" \
		-brief < /dev/null 2>&1 | grep -q '^CONNECTION ESTABLISHED' &&
		[ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$pki/ca.pem" --cert "$ed/c.pem" --key "$ed/c.key" \
			"$url/healthz")" = 200 ]
}
fips_profile() {
	! ed25519_client || return 1 # EdDSA is not among the FIPS profile's signature algorithms
	suite TLS_AES_256_GCM_SHA384 && suite TLS_AES_128_GCM_SHA256 && ! suite TLS_CHACHA20_POLY1305_SHA256 &&
		[ -n "$(handshake P-256)" ] && [ -n "$(handshake P-521)" ] && ! handshake X25519 > /dev/null &&
		! handshake ffdhe2048 > /dev/null
}
check "crypto.profile \"fips\": AES-GCM suites and NIST curves only (no ChaCha20-Poly1305, X25519, ffdhe, Ed25519 client key)" \
	fips_profile
default_chacha() { # the default profile still offers ChaCha20-Poly1305
	stop_daemon
	sed -i 's|^crypto = { profile = "fips"; };$||' "$conf"
	start_daemon && suite TLS_CHACHA20_POLY1305_SHA256 && ed25519_client
}
check "the default profile offers ChaCha20-Poly1305 and takes an Ed25519 client certificate (what fips removes)" \
	default_chacha

finish
