#!/usr/bin/env bash
# credsignd recovers from token failures by itself, without a restart:
#  1. through tests/fault/fault_pkcs11.c, the module answers CKR_GENERAL_ERROR
#     to every call for a few seconds and keeps doing so after that until it
#     is finalized and initialized again ("all 0x5 sticky");
#  2. the real thing: the SoftHSM2 token's storage directory is moved away
#     and back (SoftHSM2 then answers CKR_GENERAL_ERROR until re-initialised).
# While the token is away, requests on an established connection get 503
# token_unavailable at once; after it returns, generate + certify succeed
# again on new connections within 10 s.
#
#   token_recovery_test.sh BUILD_DIR STATE_DIR SOFTHSM_MODULE FAULT_MODULE
BUILD=${1:?}
STATE=${2:?}
SOFTHSM=${3:?}
FAULT=${4:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_token recovery || exit 1

export CREDSIGN_FAULT_REAL_MODULE=$SOFTHSM
export CREDSIGN_FAULT_CONTROL=$STATE/fault-recovery.control
: > "$CREDSIGN_FAULT_CONTROL"
it_setup recovery "$FAULT" || exit 1

# outage SECONDS BREAK RESTORE: on a connection opened while the token works,
# run the shell command BREAK, send requests for SECONDS, run RESTORE; prints
# one JSON line {"generate": [statuses], "codes": [error codes], "readyz":
# [statuses], "slowest_ms": N, "restored": UNIX_TIME}
cat > "$work/outage.py" <<'PY'
import http.client, json, ssl, subprocess, sys, time
host, port, ca, cert, key, seconds, brk, restore = sys.argv[1:9]
ctx = ssl.create_default_context(cafile=ca)
ctx.load_cert_chain(cert, key)
conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=10)
def call(method, path, body=None):
    conn.request(method, path, body=json.dumps(body) if body is not None else None,
                 headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    return r.status, r.read().decode()
call("GET", "/healthz")
out = {"generate": [], "codes": [], "readyz": [], "slowest_ms": 0}
subprocess.run(brk, shell=True, check=True)
end = time.time() + float(seconds)
try:
    while time.time() < end:
        t0 = time.time()
        status, body = call("POST", "/api/generate",
                            {"preset": "soc2", "project": "payments", "environment": "production"})
        out["slowest_ms"] = max(out["slowest_ms"], int((time.time() - t0) * 1000))
        out["generate"].append(status)
        if status != 200:
            out["codes"].append(json.loads(body)["error"]["code"])
        elif "credential" in body:
            out["codes"].append("credential-issued")
        out["readyz"].append(call("GET", "/readyz")[0])
        time.sleep(0.1)
finally:
    subprocess.run(restore, shell=True, check=True)
    out["restored"] = time.time()
print(json.dumps(out))
PY
outage() {
	python3 "$work/outage.py" 127.0.0.1 "$port" "$pki/ca.pem" "$clients/ci-deployer.pem" \
		"$clients/ci-deployer.key" "$@"
}

# the outage's answers: every generate 503 token_unavailable, /readyz 503.
# With a second argument, the first generate may still be 200: a draw is
# C_GenerateRandom alone (the token's flags are not read per draw), which
# SoftHSM2 serves without its storage; the /readyz after it reads the
# token's information, which fails, and from there on everything is refused.
failed_closed() {
	python3 - "$1" "${2:-}" <<'PY' || { echo "  ${1:0:400}"; return 1; }
import json, sys
o = json.loads(sys.argv[1])
if sys.argv[2] and o["generate"] and o["generate"][0] == 200 and o["readyz"][0] == 503:
    o["generate"].pop(0)
    o["codes"].pop(0)
    o["readyz"].pop(0)
assert len(o["generate"]) >= 5, o
assert set(o["generate"]) == {503}, o
assert set(o["codes"]) == {"token_unavailable"}, o
assert set(o["readyz"]) == {503}, o
print("  %d requests during the outage: 503 token_unavailable, slowest %d ms"
      % (len(o["generate"]), o["slowest_ms"]))
assert o["slowest_ms"] < 1000, o
PY
}

# serves_again RESTORED_UNIX_TIME: new connections generate and certify
# (the certificate verifies) within 10 s of the token's return
serves_again() {
	local restored=$1 got sid elapsed
	while :; do
		got=$(call ci-deployer POST /api/generate '{"project":"payments","environment":"production","preset":"soc2"}')
		if [[ "$got" == "200 "* ]]; then
			sid=$(json_field "${got#200 }" generation_session_id)
			got=$(call ci-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$sid\"}")
			[[ "$got" == "201 "* ]] && break
		fi
		elapsed=$(python3 -c 'import sys,time; print(time.time() - float(sys.argv[1]))' "$restored")
		if python3 -c 'import sys; sys.exit(float(sys.argv[1]) < 10)' "$elapsed"; then
			echo "  not serving ${elapsed} s after the token returned; last answer: ${got:0:200}"
			return 1
		fi
		sleep 0.1
	done
	elapsed=$(python3 -c 'import sys,time; print("%.1f" % (time.time() - float(sys.argv[1])))' "$restored")
	echo "  generate + certify succeeded ${elapsed} s after the token returned"
	json_field "${got#201 }" certificate > "$work/after.jws"
	"$BUILD/bin/credsign" verify "$work/after.jws" \
		--jwks <(call auditor GET /.well-known/jwks.json | cut -d' ' -f2-) > /dev/null || return 1
	[[ "$(call operator GET /readyz)" == "200 "* ]]
}

# the same daemon throughout: never restarted
same_daemon() {
	kill -0 "$daemon" 2>/dev/null && [ "$(grep -c 'credsignd .* starting' "$log")" = 1 ]
}

general_error_then_back() {
	local out
	[[ "$(call operator GET /readyz)" == "200 "* ]] || return 1
	out=$(outage 3 "printf 'all 0x5 sticky\n' > '$CREDSIGN_FAULT_CONTROL'" ": > '$CREDSIGN_FAULT_CONTROL'") || return 1
	failed_closed "$out" || return 1
	serves_again "$(json_field "$out" restored)" && same_daemon &&
		grep -q 'token module re-initialised; token available again' "$log"
}
check "CKR_GENERAL_ERROR for 3 s (module stuck until re-initialised): 503 meanwhile, serving again within 10 s, no restart" general_error_then_back

storage_away_then_back() {
	local out tokens=$TOKEN_DIR/tokens
	out=$(outage 2 "mv '$tokens' '$tokens.away'" "mv '$tokens.away' '$tokens'") || return 1
	failed_closed "$out" until-first-failure || return 1
	serves_again "$(json_field "$out" restored)" && same_daemon
}
check "the token's storage moved away for 2 s and back: 503 meanwhile, serving again within 10 s, no restart" storage_away_then_back

# a module re-initialised may find another token behind the same label (a
# network HSM's partner after a fail-over): certificates from then on
# record the token that now answers, and the change is audited
serial_of() { # serial_of JWS
	python3 -c 'import base64, json, sys
p = sys.argv[1].split(".")[1]
print(json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))["entropy_source"]["token"]["serial"])' "$1"
}
pair_certificate() {
	local got sid
	got=$(call ci-deployer POST /api/generate '{"project":"payments","environment":"production","preset":"soc2"}')
	[[ "$got" == "200 "* ]] || { echo "  generate: ${got:0:200}"; return 1; }
	sid=$(json_field "${got#200 }" generation_session_id)
	got=$(call ci-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$sid\"}")
	[[ "$got" == "201 "* ]] || { echo "  certify: ${got:0:200}"; return 1; }
	json_field "${got#201 }" certificate
}
another_token_recorded() {
	local before after out
	before=$(serial_of "$(pair_certificate)") || return 1
	[ -n "$before" ] && [ "$before" != "feedfacecafe0001" ] || return 1
	# the same answer before any recovery: the description is not re-read
	printf 'token-serial feedfacecafe0001\n' > "$CREDSIGN_FAULT_CONTROL"
	[ "$(serial_of "$(pair_certificate)")" = "$before" ] || { echo "  described again without a recovery"; return 1; }
	out=$(outage 1 "printf 'all 0x5 sticky\ntoken-serial feedfacecafe0001\n' > '$CREDSIGN_FAULT_CONTROL'" \
		"printf 'token-serial feedfacecafe0001\n' > '$CREDSIGN_FAULT_CONTROL'") || return 1
	serves_again "$(json_field "$out" restored)" || return 1
	after=$(serial_of "$(pair_certificate)") || return 1
	[ "$after" = "feedfacecafe0001" ] || { echo "  the certificate still records serial $after"; return 1; }
	grep -q "the token's description changed after the pool recovered (serial $before before)" "$log" || return 1
	"${admin[@]}" audit export 2>/dev/null | grep '"action":"token.changed"' | grep -q 'serial feedfacecafe0001' ||
		{ echo "  no token.changed audit entry"; return 1; }
	: > "$CREDSIGN_FAULT_CONTROL"
}
check "after a re-initialisation another token answers: certificates record its serial, token.changed audited" another_token_recorded

stop_daemon
check "SIGTERM: clean exit after the recoveries" test $? -eq 0
finish
