#!/usr/bin/env bash
# credsignd when the token misbehaves, and with its TLS key in the token.
# The daemon uses tests/fault/fault_pkcs11.c in front of SoftHSM2.
#
#   daemon_fault_test.sh BUILD_DIR STATE_DIR SOFTHSM_MODULE FAULT_MODULE
BUILD=${1:?}
STATE=${2:?}
SOFTHSM=${3:?}
FAULT=${4:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_token faults || exit 1

export CREDSIGN_FAULT_REAL_MODULE=$SOFTHSM
export CREDSIGN_FAULT_CONTROL=$STATE/fault-daemon.control
: > "$CREDSIGN_FAULT_CONTROL"
# the fault module counts the calls it is given (reset when a process loads it)
export CREDSIGN_FAULT_COUNTS=$STATE/fault-daemon.counts
faults() { printf "$1" > "$CREDSIGN_FAULT_CONTROL"; sleep 0.05; }

EXTRA_SERVER='max_connections = 4; timeout_ms = 2500;' it_setup faults "$FAULT" || exit 1
count_certs() { sqlite3 "$db" 'SELECT count(*) FROM certificates'; }

session() { # -> a fresh session id of ci-deployer
	local got
	got=$(call ci-deployer POST /api/generate '{"project":"payments","environment":"production","preset":"soc2"}')
	json_field "${got#* }" generation_session_id
}

# ---- signing discipline: every signature verified before it leaves ----------------
one_bad_signature_is_retried() {
	local sid got
	sid=$(session)
	faults 'corrupt-signature 1\n'
	got=$(call ci-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$sid\"}")
	faults ''
	[[ "$got" == "201 "* ]] || { echo "  $got"; return 1; }
	grep -q 'did not verify with key .*retrying once' "$log" || return 1
	json_field "${got#201 }" certificate > "$work/retried.jws"
	"$BUILD/bin/credsign" verify "$work/retried.jws" --jwks <(call auditor GET /.well-known/jwks.json | cut -d' ' -f2-) >/dev/null
}
check "an invalid token signature is caught and retried once (201, verifies)" one_bad_signature_is_retried

two_bad_signatures_fail_closed() {
	local sid got before
	sid=$(session)
	before=$(count_certs)
	faults 'corrupt-signature 2\n'
	got=$(call ci-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$sid\"}")
	faults ''
	[[ "$got" == '503 {"error":{"code":"signature_invalid"'* ]] || { echo "  $got"; return 1; }
	[ "$(count_certs)" = "$before" ] || { echo "  a certificate was stored"; return 1; }
	# nothing was consumed: the session still certifies
	got=$(call ci-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$sid\"}")
	[[ "$got" == "201 "* ]]
}
check "two invalid signatures -> 503 signature_invalid, nothing stored" two_bad_signatures_fail_closed

# ---- token unavailable: fail closed ---------------------------------------------------
# New handshakes need the token (its RNG is the TLS DRBG), so the API's
# answers show on a connection opened before the outage.
outage() { # outage RULES PRESET SESSION -> JSON [[status, body] x3]
	/usr/bin/python3 "$(dirname "$0")/keepalive.py" 127.0.0.1 "$port" "$pki/ca.pem" \
		"$clients/ci-deployer.pem" "$clients/ci-deployer.key" "$CREDSIGN_FAULT_CONTROL" "$1" "$2" "$3"
}
token_gone() {
	local sid out
	sid=$(session)
	out=$(outage 'C_Sign 0x32\nC_GenerateRandom 0x32\nC_OpenSession 0xe0\nC_GetTokenInfo 0xe0\n' soc2 "$sid")
	python3 - "$out" <<'PY' || { echo "  $out"; return 1; }
import json, sys
gen, cert, ready = json.loads(sys.argv[1])
assert gen[0] == 503 and json.loads(gen[1])["error"]["code"] == "token_unavailable", gen
assert "credential" not in gen[1]
assert cert[0] == 503 and json.loads(cert[1])["error"]["code"] == "token_unavailable", cert
assert ready[0] == 503, ready
PY
	# the token comes back: the pool recovers and the same session certifies
	local got
	got=$(call ci-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$sid\"}")
	[[ "$got" == "201 "* ]] && [[ "$(call operator GET /readyz)" == "200 "* ]]
}
check "token unavailable -> 503 token_unavailable, no credential; recovers after" token_gone

# CKF_RNG is read once per pool generation, not per draw: a token that stops
# reporting it is refused from the pool's next recovery on (here: one
# C_GenerateRandom fails with CKR_DEVICE_ERROR), and served again as soon as
# it reports it again.
no_rng() {
	local out
	out=$(outage 'no-rng\nC_GenerateRandom 0x30 1\n' dod-stig AAAAAAAAAAAAAAAAAAAAAA)
	python3 - "$out" <<'PY' || { echo "  $out"; return 1; }
import json, sys
gen = json.loads(sys.argv[1])[0]
assert gen[0] == 503 and json.loads(gen[1])["error"]["code"] == "token_has_no_rng", gen
assert "credential" not in gen[1]
PY
	grep -q 'the token does not report a random number generator' "$log" &&
		[[ "$(call ci-deployer POST /api/generate '{"project":"payments","environment":"production","preset":"dod-stig"}')" == "200 "* ]]
}
check "a token that stops reporting CKF_RNG is refused from the next recovery (503 token_has_no_rng), served again when it reports it" no_rng

# Token calls per request, counted by the fault module on one keep-alive
# connection: a generate draws all its randomness in one C_GenerateRandom,
# a certify adds one more and the signature; nothing reads the token's
# flags or session state per request.
token_calls_per_request() {
	local out
	out=$(python3 "$src/tests/bench/pairs.py" count 127.0.0.1 "$port" "$pki/ca.pem" \
		"$clients/ci-deployer.pem" "$clients/ci-deployer.key" "$CREDSIGN_FAULT_COUNTS" 20) || return 1
	echo "  per generate: $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["generate"])' "$out")"
	echo "  per pair: $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["pair"])' "$out")"
	echo "  per new connection: $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["handshake"])' "$out")"
	python3 - "$out" <<'PY'
import json, sys
d = json.loads(sys.argv[1])
assert d["generate"] == {"C_GenerateRandom": 1.0, "total": 1.0}, d["generate"]
assert d["pair"] == {"C_GenerateRandom": 2.0, "C_SignInit": 1.0, "C_Sign": 1.0, "total": 4.0}, d["pair"]
assert "C_GetTokenInfo" not in d["handshake"] and d["handshake"]["total"] <= 2, d["handshake"]
PY
}
check "token calls: 1 per generate, 4 per generate + certify pair, at most 2 per TLS handshake" token_calls_per_request

tls_needs_the_token_rng() {
	faults 'C_GenerateRandom 0x32\n'
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 $(client operator) "$url/healthz")
	faults ''
	[ "$code" = "000" ] && [[ "$(call operator GET /healthz)" == "200 "* ]]
}
check "new TLS handshakes draw their randomness from the token" tls_needs_the_token_rng

# ---- a slow token holds one worker; the others keep serving ------------------------------
# (the signature takes longer than server.timeout_ms: the slow request
# still gets its answer, the countdown restarts when the reply is sent)
slow_token_keeps_serving() {
	local sid start elapsed
	sid=$(session)
	faults 'sign-delay 3500\n'
	call ci-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$sid\"}" > "$work/slow.out" &
	local slow=$!
	sleep 0.3
	start=$(date +%s%N)
	[[ "$(call operator GET /healthz)" == "200 "* ]] || return 1
	[[ "$(call web-deployer POST /api/generate '{"project":"web","environment":"production","preset":"hipaa"}')" == "200 "* ]] || return 1
	elapsed=$((($(date +%s%N) - start) / 1000000))
	wait $slow
	faults ''
	echo "  two requests took ${elapsed} ms while a signature waited 3.5 s (timeout_ms = 2500)"
	echo "  the slow request: $(head -c 40 "$work/slow.out")"
	[ "$elapsed" -lt 1500 ] && [[ "$(cat "$work/slow.out")" == "201 "* ]]
}
check "a slow token does not stop other requests; a signature slower than timeout_ms still answers 201" slow_token_keeps_serving

# ---- connection limit ------------------------------------------------------------------
connection_limit() {
	local holders=() i
	read -r -a args <<< "$(client operator)"
	for i in 1 2 3 4; do
		sleep 5 | openssl s_client -quiet -connect "127.0.0.1:$port" -CAfile "$pki/ca.pem" \
			-cert "$clients/operator.pem" -key "$clients/operator.key" > /dev/null 2>&1 &
		holders+=($!)
	done
	sleep 1
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "${args[@]}" "$url/healthz")
	for p in "${holders[@]}"; do kill "$p" 2>/dev/null; done
	pkill -f "s_client -quiet -connect 127.0.0.1:$port" 2>/dev/null
	[ "$code" = "000" ] && grep -q 'connection refused: 4 authenticated connections open' "$log" || return 1
	# service resumes as soon as the daemon has seen the holders go
	for _ in $(seq 30); do
		[[ "$(call operator GET /healthz)" == "200 "* ]] && return 0
		sleep 0.2
	done
	return 1
}
check "connections over server.max_connections are refused; service continues" connection_limit

idle_connection_closed() {
	local start elapsed
	start=$(date +%s%N)
	# a TCP connection that never says anything is dropped after timeout_ms
	timeout 10 python3 -c 'import socket,sys; s=socket.create_connection(("127.0.0.1", int(sys.argv[1]))); s.recv(1)' "$port"
	elapsed=$((($(date +%s%N) - start) / 1000000))
	echo "  closed after ${elapsed} ms (timeout_ms = 2500)"
	[ "$elapsed" -ge 2000 ] && [ "$elapsed" -lt 6000 ]
}
check "a silent connection is closed after server.timeout_ms" idle_connection_closed

sighup_reloads() {
	kill -HUP "$daemon" && wait_for_log 'client CA and CRL reloaded' &&
		[[ "$(call operator GET /healthz)" == "200 "* ]]
}
check "SIGHUP reloads the client CA and CRL and keeps serving" sighup_reloads
drain_on_sigterm() {
	local sid
	sid=$(session)
	faults 'sign-delay 2500\n'
	local signs
	signs=$(awk '$1 == "C_Sign" {print $2 + 0}' "$CREDSIGN_FAULT_COUNTS")
	call ci-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$sid\"}" > "$work/drain.out" &
	local inflight=$!
	# the request is inside its 2.5 s signature once the module counted the
	# C_Sign (counted on entry), however loaded the machine is
	for _ in $(seq 100); do
		[ "$(awk '$1 == "C_Sign" {print $2 + 0}' "$CREDSIGN_FAULT_COUNTS")" -gt "$signs" ] && break
		sleep 0.05
	done
	kill -TERM "$daemon"
	wait $inflight
	faults ''
	wait "$daemon"
	local status=$?
	grep -q 'draining 1 request' "$log" && [[ "$(cat "$work/drain.out")" == "201 "* ]] && [ $status -eq 0 ]
}
check "SIGTERM lets the request in flight finish (201), then exits 0" drain_on_sigterm

# ---- the TLS server key in the token (through the provider) -----------------------------
tls_key_in_token() {
	local uri="pkcs11:token=cstest;object=it-tls"
	"${admin[@]}" key jwk --key "$uri" >/dev/null 2>&1 || "${admin[@]}" key generate --label it-tls >/dev/null
	"${admin[@]}" key csr --key "$uri" --subject "/CN=localhost" --san "DNS:localhost,IP:127.0.0.1" \
		--out "$work/tls.csr" || return 1
	printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n' > "$work/ext"
	openssl x509 -req -in "$work/tls.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca-db/main/ca.key" \
		-CAcreateserial -CAserial "$work/serial" -days 2 -extfile "$work/ext" -out "$work/tls.pem" 2>/dev/null
}
check "a TLS key generated in the token and certified by the CA (key csr)" tls_key_in_token
: > "$CREDSIGN_FAULT_CONTROL"
tlsdir=$work
TLS_KEY="pkcs11:token=cstest;object=it-tls" TLS_CERT="$tlsdir/tls.pem" it_setup tokentls "$FAULT" || exit 1
faults() { printf "$1" > "$CREDSIGN_FAULT_CONTROL"; sleep 0.05; }

project_client_over_token_tls() {
	CREDSIGN_URL=$url CREDSIGN_CACERT=$pki/ca.pem CREDSIGN_CERT=$clients/ci-deployer.pem \
		CREDSIGN_KEY=$clients/ci-deployer.key "$BUILD/bin/credsign" generate --project payments --environment production --preset soc2 --certify \
		--format json > "$work/gen.json" && grep -q '"cert_url"' "$work/gen.json"
}
check "the project's client completes TLS 1.3 with a token server key" project_client_over_token_tls

s_client_over_token_tls() {
	openssl s_client -connect "127.0.0.1:$port" -CAfile "$pki/ca.pem" -verify_return_error \
		-cert "$clients/operator.pem" -key "$clients/operator.key" -tls1_3 -brief < /dev/null \
		> "$work/s_client.log" 2>&1
	grep -q "Protocol version: TLSv1.3" "$work/s_client.log" && grep -q "Signature type: ECDSA" "$work/s_client.log" &&
		openssl x509 -in "$tlsdir/tls.pem" -noout -pubkey | cmp -s - <(openssl req -in "$tlsdir/tls.csr" -noout -pubkey)
}
check "openssl s_client completes TLS 1.3 with the token server key" s_client_over_token_tls

handshake_fails_cleanly_without_token() {
	faults 'C_Sign 0x32\nC_OpenSession 0xe0\n'
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 $(client operator) "$url/healthz")
	faults ''
	[ "$code" = "000" ] && grep -q 'TLS handshake aborted.*token unavailable' "$log" &&
		[[ "$(call operator GET /healthz)" == "200 "* ]]
}
check "no token: the handshake fails (alert), the error is logged, service resumes" handshake_fails_cleanly_without_token
stop_daemon
check "SIGTERM: clean exit (token TLS)" test $? -eq 0

finish
