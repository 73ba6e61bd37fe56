#!/usr/bin/env bash
# The credsign-pkcs11 provider with the stock openssl command: public key,
# signatures, CSR, refusal to export the private key, and a TLS 1.3
# handshake whose server key is in the token (and that fails cleanly when
# the token is unavailable).
#
#   provider_cli.sh BUILD_DIR TOKEN_DIR PKI_DIR SOFTHSM_MODULE FAULT_MODULE
set -euo pipefail
build=${1:?}; tokendir=${2:?}; pki=${3:?}; softhsm=${4:?}; fault=${5:?}
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

export SOFTHSM2_CONF=$tokendir/softhsm2.conf
export CREDSIGN_PKCS11_MODULE=$softhsm
export CREDSIGN_PIN_FILE=$tokendir/user.pin
export CREDSIGN_TOKEN_URI="pkcs11:token=cstest"
P=(-provider-path "$build/lib" -provider credsign-pkcs11 -provider default)
KEY="pkcs11:token=cstest;object=cli-sign"
TLSKEY="pkcs11:token=cstest;object=cli-tls"

src=$(cd "$(dirname "$0")/../.." && pwd)
cat > "$tmp/admin.conf" <<CONF
server = { presets_file = "$src/conf/presets.conf"; };
tls = { cert = "$pki/server.pem"; key = "$pki/server.key"; ca = "$pki/ca.pem"; };
pkcs11 = { module = "$softhsm"; token_uri = "pkcs11:token=cstest";
           pin_file = "$tokendir/user.pin"; signing_key = "$KEY"; };
CONF
admin=("$build/bin/credsign-admin" --config "$tmp/admin.conf")
for label in cli-sign cli-tls; do
  "${admin[@]}" key jwk --key "pkcs11:token=cstest;object=$label" >/dev/null 2>&1 ||
    "${admin[@]}" key generate --label "$label" >/dev/null
done
echo "credsign provider test" > "$tmp/msg"

# 1. the public key
openssl pkey "${P[@]}" -in "$KEY" -pubout -out "$tmp/pub.pem"
openssl pkey -pubin -in "$tmp/pub.pem" -noout -text | grep -q "NIST CURVE: P-256" || fail "pubout is not a P-256 key"

# 2. dgst -sign through the provider, verify with the default provider only
openssl dgst "${P[@]}" -sha256 -sign "$KEY" -out "$tmp/sig" "$tmp/msg"
openssl dgst -sha256 -verify "$tmp/pub.pem" -signature "$tmp/sig" "$tmp/msg" | grep -q "Verified OK"
echo tampered >> "$tmp/msg"
if openssl dgst -sha256 -verify "$tmp/pub.pem" -signature "$tmp/sig" "$tmp/msg" >/dev/null 2>&1; then
  fail "a signature verified over different data"
fi

# 3. pkeyutl -sign of a digest
openssl dgst -sha256 -binary -out "$tmp/digest" "$tmp/msg"
openssl pkeyutl "${P[@]}" -sign -inkey "$KEY" -in "$tmp/digest" -out "$tmp/sig2"
openssl pkeyutl -verify -pubin -inkey "$tmp/pub.pem" -in "$tmp/digest" -sigfile "$tmp/sig2" |
  grep -q "Signature Verified Successfully"

# 4. a CSR signed by the token key
openssl req "${P[@]}" -new -key "$KEY" -subj "/O=credsign/CN=credsign signing key" -out "$tmp/req.pem"
openssl req -verify -in "$tmp/req.pem" -noout 2>&1 | grep -q "verify OK"
openssl req -in "$tmp/req.pem" -pubkey -noout | cmp -s - "$tmp/pub.pem" || fail "CSR key differs"

# 5. the private key cannot be exported
if openssl pkey "${P[@]}" -in "$KEY" -out "$tmp/priv.pem" 2> "$tmp/err"; then
  fail "private key export succeeded"
fi
grep -q "cannot be exported" "$tmp/err" || { cat "$tmp/err"; fail "no clear error for private export"; }
! grep -q "PRIVATE KEY" "$tmp/priv.pem" 2>/dev/null || fail "private key material written"

# 6. TLS 1.3 with the server key in the token
openssl req "${P[@]}" -new -key "$TLSKEY" -subj "/CN=localhost" -out "$tmp/tls.csr"
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n' > "$tmp/ext"
openssl x509 -req -in "$tmp/tls.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca-db/main/ca.key" \
  -CAcreateserial -CAserial "$tmp/serial" -days 2 -extfile "$tmp/ext" -out "$tmp/tls.pem" 2>/dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_listen() { for _ in $(seq 100); do ss -ltn | grep -q "127.0.0.1:$1 " && return 0; sleep 0.05; done; return 1; }

port=$(free_port)
openssl s_server "${P[@]}" -key "$TLSKEY" -cert "$tmp/tls.pem" -accept "127.0.0.1:$port" \
  -tls1_3 -naccept 1 -www > "$tmp/server.log" 2>&1 &
pids+=($!)
wait_listen "$port" || { cat "$tmp/server.log"; fail "s_server did not start"; }
openssl s_client -connect "127.0.0.1:$port" -CAfile "$pki/ca.pem" -verify_return_error \
  -verify_ip 127.0.0.1 -tls1_3 -brief < /dev/null > "$tmp/client.log" 2>&1 || { cat "$tmp/client.log"; fail "handshake failed"; }
grep -q "Protocol version: TLSv1.3" "$tmp/client.log" || fail "not TLS 1.3"
grep -q "Verification: OK" "$tmp/client.log" || fail "server certificate not verified"
grep -q "Signature type: ECDSA" "$tmp/client.log" || fail "server did not sign with ECDSA"

# 7a. once the first key has opened the token, a later key URI naming another
#     token fails instead of resolving in the open one (two CMS signers)
openssl req "${P[@]}" -new -x509 -key "$KEY" -subj "/CN=cli-sign" -days 2 -out "$tmp/sign.pem"
cms_two_signers() {
  openssl cms "${P[@]}" -sign -binary -in "$tmp/msg" -outform DER -out "$tmp/cms.der" \
    -signer "$tmp/sign.pem" -inkey "$KEY" -signer "$tmp/tls.pem" -inkey "$1"
}
cms_two_signers "$TLSKEY" > "$tmp/cms.log" 2>&1 || { cat "$tmp/cms.log"; fail "two signers in one token"; }
for other in "pkcs11:token=other-token;object=cli-tls" "pkcs11:serial=0000deadbeef0000;object=cli-tls" \
             "pkcs11:model=HSM-9000;object=cli-tls" "pkcs11:token=cstest;manufacturer=Another%20Vendor;object=cli-tls"; do
  if cms_two_signers "$other" > "$tmp/cms.log" 2>&1; then
    fail "$other resolved in the open token"
  fi
  grep -q "names a token other than the one in use" "$tmp/cms.log" || { cat "$tmp/cms.log"; fail "no clear error for $other"; }
done

# 7. the token goes away after start-up: the handshake fails with an alert
#    and the server reports the token error
export CREDSIGN_PKCS11_MODULE=$fault CREDSIGN_FAULT_REAL_MODULE=$softhsm
export CREDSIGN_FAULT_CONTROL=$tmp/fault.control
: > "$CREDSIGN_FAULT_CONTROL"
port=$(free_port)
openssl s_server "${P[@]}" -key "$TLSKEY" -cert "$tmp/tls.pem" -accept "127.0.0.1:$port" \
  -tls1_3 -naccept 1 -www > "$tmp/server2.log" 2>&1 &
server=$!
pids+=($server)
wait_listen "$port" || { cat "$tmp/server2.log"; fail "s_server (fault) did not start"; }
printf 'C_Sign 0x32\nC_OpenSession 0xe0\n' > "$CREDSIGN_FAULT_CONTROL"  # DEVICE_REMOVED, TOKEN_NOT_PRESENT
if openssl s_client -connect "127.0.0.1:$port" -CAfile "$pki/ca.pem" -tls1_3 -brief \
     < /dev/null > "$tmp/client2.log" 2>&1; then
  fail "handshake succeeded without the token"
fi
grep -qi "alert" "$tmp/client2.log" || { cat "$tmp/client2.log"; fail "client saw no TLS alert"; }
wait "$server" 2>/dev/null || true
grep -q "token unavailable" "$tmp/server2.log" || { cat "$tmp/server2.log"; fail "server did not log the token error"; }
# 8. module mode refusals, each named: no PKCS#11 module; a token that does
#    not open; a key URI whose token is not the configured one (the token
#    opened for it is closed again); an invalid token URI; a key URI naming
#    another module. Then keys named with their module's path, without a
#    configured token, and the provider configured in openssl.cnf instead
#    of the environment.
export CREDSIGN_PKCS11_MODULE=$softhsm
unset CREDSIGN_FAULT_REAL_MODULE CREDSIGN_FAULT_CONTROL
refused() {  # refused "what the error says" openssl args...
  local want=$1; shift
  if "$@" > /dev/null 2> "$tmp/err"; then fail "succeeded: $*"; fi
  grep -q "$want" "$tmp/err" || { cat "$tmp/err"; fail "no '$want' from: $*"; }
}
refused "no PKCS#11 module" env -u CREDSIGN_PKCS11_MODULE openssl pkey "${P[@]}" -in "$KEY" -pubout
refused "opening the token for" openssl pkey "${P[@]}" -in "pkcs11:token=no-such-token;object=cli-sign" -pubout
refused "names a token other than the one in use" \
  env CREDSIGN_TOKEN_URI="pkcs11:token=other-token" openssl pkey "${P[@]}" -in "$KEY" -pubout
refused "invalid PKCS#11 URI" \
  env CREDSIGN_TOKEN_URI="pkcs11:token=%zz" openssl pkey "${P[@]}" -in "$KEY" -pubout
refused "names a PKCS#11 module other than the one in use" \
  openssl pkey "${P[@]}" -in "$KEY?module-name=softhsm2" -pubout
# the module by its path, and no token URI configured: the key's token
for ok in "$KEY?module-path=$softhsm" ; do
  openssl pkey "${P[@]}" -in "$ok" -pubout 2> "$tmp/err" | cmp -s - "$tmp/pub.pem" || { cat "$tmp/err"; fail "$ok"; }
done
env -u CREDSIGN_TOKEN_URI openssl pkey "${P[@]}" -in "$KEY" -pubout 2> "$tmp/err" | cmp -s - "$tmp/pub.pem" ||
  { cat "$tmp/err"; fail "without CREDSIGN_TOKEN_URI"; }
cat > "$tmp/openssl.cnf" <<CNF
openssl_conf = init
[init]
providers = providers
[providers]
credsign-pkcs11 = credsign_sect
default = default_sect
[credsign_sect]
module = $build/lib/credsign-pkcs11.so
pkcs11-module = $softhsm
pkcs11-pin-file = $tokendir/user.pin
pkcs11-token-uri = pkcs11:token=cstest
activate = 1
[default_sect]
activate = 1
CNF
env -u CREDSIGN_PKCS11_MODULE -u CREDSIGN_PIN_FILE -u CREDSIGN_TOKEN_URI OPENSSL_CONF="$tmp/openssl.cnf" \
  openssl pkey -in "$KEY" -pubout -out "$tmp/pub-cnf.pem" 2> "$tmp/err" || { cat "$tmp/err"; fail "provider from openssl.cnf"; }
cmp -s "$tmp/pub-cnf.pem" "$tmp/pub.pem" || fail "openssl.cnf: another public key"
echo "provider_cli: ok"
