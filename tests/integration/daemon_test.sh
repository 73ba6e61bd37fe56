#!/usr/bin/env bash
# credsignd end to end: a real daemon on 127.0.0.1, SoftHSM2, curl and the
# credsign client.
#
#   daemon_test.sh BUILD_DIR STATE_DIR SOFTHSM_MODULE
BUILD=${1:?}
STATE=${2:?}
SOFTHSM=${3:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_token main || exit 1

it_setup main || exit 1
credentials=()
export CREDSIGN_URL=$url CREDSIGN_CACERT=$pki/ca.pem
export CREDSIGN_CERT=$clients/ci-deployer.pem CREDSIGN_KEY=$clients/ci-deployer.key

# ---- round trip ------------------------------------------------------------------
round_trip() {
	"$BUILD/bin/credsign" generate --preset soc2 --project payments --environment production \
		--system db-prod --certify --format env > "$work/gen.env" || return 1
	# shellcheck source=/dev/null
	. "$work/gen.env"
	credentials+=("$CREDSIGN_CREDENTIAL")
	[ ${#CREDSIGN_CREDENTIAL} -ge 16 ] || return 1
	[[ "$CREDSIGN_CERT_URL" == "$url/cert/$CREDSIGN_CERT_ID" ]] || return 1
	"$BUILD/bin/credsign" cert get "$CREDSIGN_CERT_ID" --jws > "$work/cert.jws" || return 1
	"$BUILD/bin/credsign" jwks > "$work/jwks.json" || return 1
	printf '%s' "$CREDSIGN_CREDENTIAL" > "$work/credential"
	"$BUILD/bin/credsign" verify "$work/cert.jws" --jwks "$work/jwks.json" \
		--credential-file "$work/credential" > "$work/verify.out" || { cat "$work/verify.out"; return 1; }
	grep -q "VERIFIED certificate $CREDSIGN_CERT_ID" "$work/verify.out"
}
check "generate -> certify -> fetch -> offline verify with the credential" round_trip

wrong_credential_fails() {
	printf 'not-the-credential' > "$work/wrong"
	! "$BUILD/bin/credsign" verify "$work/cert.jws" --jwks "$work/jwks.json" \
		--credential-file "$work/wrong" 2>/dev/null
}
check "offline verify rejects a different credential" wrong_credential_fails

# a passphrase's length counts words; some words of the list contain the
# separator (t-shirt), so the verifier counts parts as a lower bound
passphrase_verifies() {
	local i
	for i in 1 2 3; do
		"$BUILD/bin/credsign" generate --project payments --environment production --preset nist-800-63b --type passphrase --certify --format env \
			> "$work/pp.env" || return 1
		# shellcheck source=/dev/null
		. "$work/pp.env"
		"$BUILD/bin/credsign" cert get "$CREDSIGN_CERT_ID" --jws > "$work/pp.jws" || return 1
		printf '%s' "$CREDSIGN_CREDENTIAL" > "$work/pp.txt"
		"$BUILD/bin/credsign" verify "$work/pp.jws" --jwks "$work/jwks.json" --credential-file "$work/pp.txt" \
			> "$work/pp.out" || { cat "$work/pp.out"; return 1; }
		grep -q "words" "$work/pp.out" || return 1
		# one word fewer: refused
		printf '%s' "${CREDSIGN_CREDENTIAL%-*}" > "$work/pp-short.txt"
		if "$BUILD/bin/credsign" verify "$work/pp.jws" --jwks "$work/jwks.json" \
			--credential-file "$work/pp-short.txt" > /dev/null 2>&1; then
			echo "  a shortened passphrase verified"
			return 1
		fi
	done
}
check "offline verify of passphrase certificates (words, not characters)" passphrase_verifies

tampered_certificate_fails() {
	python3 - "$work/cert.jws" > "$work/tampered.jws" <<'PY'
import base64, json, sys
h, p, s = open(sys.argv[1]).read().strip().split(".")
claims = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
claims["preset"] = "nist-800-63b"
p2 = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
print(h + "." + p2 + "." + s)
PY
	! "$BUILD/bin/credsign" verify "$work/tampered.jws" --jwks "$work/jwks.json" 2>/dev/null
}
check "offline verify rejects a modified certificate" tampered_certificate_fails

jwcrypto_verifies() {
	/usr/bin/python3 - "$work/cert.jws" "$work/jwks.json" <<'PY'
import json, sys
from jwcrypto import jwk, jws
token = jws.JWS()
token.deserialize(open(sys.argv[1]).read().strip())
keys = json.load(open(sys.argv[2]))["keys"]
kid = token.jose_header["kid"]
key = next(k for k in keys if k["kid"] == kid)
k = jwk.JWK(**{n: key[n] for n in ("kty", "crv", "x", "y")})
assert k.thumbprint() == kid, "kid is not the RFC 7638 thumbprint"
token.verify(k, alg="ES256")
h = token.jose_header
assert h["typ"] == "credsign-cert+jwt" and h["alg"] == "ES256"
c = json.loads(token.payload)
assert "exp" not in c
for n in ("iss", "jti", "iat", "preset", "standards", "credential", "entropy_source", "subject",
          "project", "environment", "system", "generation_session_id", "generated_at",
          "certified_at"):
    assert n in c, n
assert c["entropy_source"]["function"] == "C_GenerateRandom"
assert c["entropy_source"]["interface"] == "PKCS#11"
assert c["subject"]["identity"] == "spiffe://credsign.test/ci-deployer"
assert c["credential"]["commitment"]["alg"] == "HMAC-SHA-256"
assert c["generated_at"].endswith("Z") and c["certified_at"].endswith("Z")
PY
}
check "python3-jwcrypto verifies the JWS against the JWKS (kid = RFC 7638 thumbprint)" jwcrypto_verifies

cert_document() {
	local got
	got=$(call ci-deployer GET "/cert/$CREDSIGN_CERT_ID")
	[[ "$got" == "200 "* ]] && [[ "$got" == *'"claims":{'* ]] && [[ "$got" == *'"kid":"'* ]]
}
check "GET /cert/{id} returns the certificate with decoded claims" cert_document

jws_content_type() {
	local args
	read -r -a args <<< "$(client auditor)"
	curl -s -D "$work/headers" -o /dev/null "${args[@]}" "$url/cert/$CREDSIGN_CERT_ID.jws" &&
		grep -qi '^content-type: application/jose' "$work/headers"
}
check "GET /cert/{id}.jws is application/jose" jws_content_type

health() {
	[[ "$(call operator GET /healthz)" == "200 "* ]] && [[ "$(call operator GET /readyz)" == '200 {"status":"ready"'* ]]
}
check "healthz and readyz answer 200" health

# ---- refused at the TLS layer: never reach a handler ------------------------------------
refused_before_handler() { # refused_before_handler CURL-ARGS...
	local before after
	before=$(requests_logged)
	if curl -s -o /dev/null --max-time 5 "$@" "$url/healthz"; then
		echo "  request succeeded"
		return 1
	fi
	after=$(requests_logged)
	[ "$before" = "$after" ] || { echo "  a handler ran"; return 1; }
}
check "TLS 1.2 client refused" refused_before_handler $(client ci-deployer) --tls-max 1.2
check "no client certificate refused" refused_before_handler --cacert "$pki/ca.pem"
check "certificate from another CA refused" refused_before_handler $(client other-ca)
check "expired client certificate refused" refused_before_handler $(client expired)
check "revoked client certificate refused (CRL)" refused_before_handler $(client revoked)
check "server-auth-only EKU refused" refused_before_handler $(client server-eku)
refusals_logged() {
	grep -q 'client certificate refused.*CN=revoked.*certificate revoked' "$log" &&
		grep -q 'client certificate refused.*CN=expired.*certificate has expired' "$log" &&
		grep -q 'client certificate refused.*CN=server-eku.*unsuitable certificate purpose' "$log"
}
check "refused client certificates are logged with subject and reason" refusals_logged
# the client names the TLS alert the server sent, not only "failed sending data"
client_names_alert() {
	local err=$work/alert.err
	if CREDSIGN_CERT=$clients/expired.pem CREDSIGN_KEY=$clients/expired.key "$BUILD/bin/credsign" jwks \
		> /dev/null 2> "$err"; then
		echo "  an expired certificate was served"
		return 1
	fi
	grep -Eq 'alert ("|)certificate expired' "$err" || { cat "$err"; return 1; }
}
check "credsign reports the server's TLS alert (certificate expired)" client_names_alert
client_usage() {
	local out=$work/usage.out rc=0
	"$BUILD/bin/credsign" > "$out" 2>&1 || rc=$?
	[ "$rc" = 2 ] && grep -q '^usage: credsign' "$out" && "$BUILD/bin/credsign" --version | grep -q '^credsign [0-9]'
}
check "credsign without arguments prints its usage (exit 2); --version" client_usage

# ---- bad requests ------------------------------------------------------------------
check "malformed JSON -> 400 invalid_json" expect_error ci-deployer POST /api/generate '{"project":"payments","environment":"production","preset":' 400 invalid_json
check "not an object -> 400 invalid_json" expect_error ci-deployer POST /api/generate '["soc2"]' 400 invalid_json
check "unknown preset -> 400 unknown_preset" expect_error ci-deployer POST /api/generate '{"project":"payments","environment":"production","preset":"nope"}' 400 unknown_preset
check "wrong type for length -> 400 invalid_field" expect_error ci-deployer POST /api/generate '{"project":"payments","environment":"production","preset":"soc2","length":"24"}' 400 invalid_field
check "wrong type for preset -> 400 invalid_field" expect_error ci-deployer POST /api/generate '{"project":"payments","environment":"production","preset":7}' 400 invalid_field
check "missing preset -> 400 invalid_field" expect_error ci-deployer POST /api/generate '{"type":"password"}' 400 invalid_field
check "unknown field -> 400 unknown_field" expect_error ci-deployer POST /api/generate '{"project":"payments","environment":"production","preset":"soc2","colour":"red"}' 400 unknown_field
check "duplicate keys -> 400 invalid_json" expect_error ci-deployer POST /api/generate '{"project":"payments","environment":"production","preset":"soc2","preset":"hipaa"}' 400 invalid_json
check "below the preset minimum -> 422 below_minimum" expect_error ci-deployer POST /api/generate '{"project":"payments","environment":"production","preset":"soc2","length":8}' 422 below_minimum
check "type not allowed by the preset -> 422" expect_error ci-deployer POST /api/generate '{"project":"payments","environment":"production","preset":"db-production","type":"hex"}' 422 type_not_allowed
check "control characters in project -> 400" expect_error ci-deployer POST /api/generate '{"preset":"soc2","project":"a\u0001b"}' 400 invalid_field
big=$(python3 -c 'print("{\"preset\":\"soc2\",\"project\":\"" + "x"*70000 + "\"}")')
check "oversize body -> 413 body_too_large" expect_error ci-deployer POST /api/generate "$big" 413 body_too_large
huge_body_cut_off() {
	local args code
	read -r -a args <<< "$(client ci-deployer)"
	code=$(head -c 2000000 /dev/zero | tr '\0' 'x' | curl -s -o /dev/null -w '%{http_code}' \
		"${args[@]}" -H 'Content-Type: application/json' --data-binary @- "$url/api/generate")
	[ "$code" = "413" ]
}
check "a body far over the limit is cut off by the HTTP layer with 413" huge_body_cut_off
header_too_large() {
	local args code
	read -r -a args <<< "$(client ci-deployer)"
	code=$(curl -s -o /dev/null -w '%{http_code}' "${args[@]}" -H "X-Padding: $(head -c 20000 /dev/zero | tr '\0' 'x')" "$url/healthz")
	[ "$code" = "431" ]
}
check "headers over server.max_header_bytes are refused" header_too_large
check "wrong method -> 405" expect_error ci-deployer GET /api/generate '' 405 method_not_allowed
check "unknown route -> 404" expect_error ci-deployer GET /nothing-here '' 404 not_found
check "unknown certificate -> 404" expect_error auditor GET /cert/AAAAAAAAAAAAAAAAAAAAAA '' 404 not_found
check "malformed certificate id -> 404" expect_error auditor GET '/cert/..%2f..%2fetc' '' 404 not_found

# ---- session rules -------------------------------------------------------------------
new_session() { # new_session NAME -> session id on stdout (runs in a subshell)
	local got
	got=$(call "$1" POST /api/generate '{"project":"payments","environment":"production","preset":"hipaa"}')
	[[ "$got" == "200 "* ]] || return 1
	json_field "${got#200 }" generation_session_id
}
sid=$(new_session ci-deployer)
credentials+=("$(json_field "$(cat "$work/out")" credential)")
certify_once() {
	local got
	got=$(call ci-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$sid\"}")
	[[ "$got" == "201 "* ]] && [[ "$got" == *"\"cert_url\":\"$url/cert/"* ]]
}
check "a session certifies once -> 201" certify_once
check "a second certification -> 409" expect_error ci-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$sid\"}" 409 session_already_certified
sid2=$(new_session ci-deployer)
credentials+=("$(json_field "$(cat "$work/out")" credential)")
check "another identity cannot certify -> 403" expect_error web-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$sid2\"}" 403 forbidden
check "unknown session -> 404" expect_error ci-deployer POST /api/generate-certificate '{"generation_session_id":"AAAAAAAAAAAAAAAAAAAAAA"}' 404 not_found
check "malformed session id -> 404" expect_error ci-deployer POST /api/generate-certificate '{"generation_session_id":"x"}' 404 not_found
check "session id of the wrong type -> 400" expect_error ci-deployer POST /api/generate-certificate '{"generation_session_id":5}' 400 invalid_field
# time passing: the session's expiry moved into the past in the store
sqlite3 "$db" "UPDATE generation_sessions SET expires_ms = expires_ms - 61000 WHERE id = '$sid2'"
check "expired session (60 s) -> 410" expect_error ci-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$sid2\"}" 410 session_expired
# pruning: sessions expired beyond store.session_retention_seconds (default
# 1 day) and never certified are deleted; certified and recent ones stay
sid3=$(new_session ci-deployer)
credentials+=("$(json_field "$(cat "$work/out")" credential)")
sqlite3 "$db" "UPDATE generation_sessions SET expires_ms = expires_ms - 86400000 - 61000 WHERE id IN ('$sid3', '$sid')"
sessions_pruned() {
	for _ in $(seq 1 40); do
		[[ "$(sqlite3 "$db" "SELECT count(*) FROM generation_sessions WHERE id = '$sid3'")" == 0 ]] && break
		sleep 0.25
	done
	[[ "$(sqlite3 "$db" "SELECT count(*) FROM generation_sessions WHERE id = '$sid3'")" == 0 ]] &&
		[[ "$(sqlite3 "$db" "SELECT count(*) FROM generation_sessions WHERE id IN ('$sid', '$sid2')")" == 2 ]] &&
		grep -q 'pruned 1 expired, uncertified generation session' "$log"
}
check "expired uncertified sessions pruned after the retention; certified and recent kept" sessions_pruned
check "a pruned session -> 404" expect_error ci-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$sid3\"}" 404 not_found
check "a recently expired session is still 410" expect_error ci-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$sid2\"}" 410 session_expired
check "the daemon is still up" health

# ---- every preset: certificate claims match the presets file -------------------------
call auditor GET /api/presets | cut -d' ' -f2- > "$work/presets.json"
claims_match_preset() { # claims_match_preset PRESET TYPE
	local got s body
	body="{$PAYMENTS,\"preset\":\"$1\",\"type\":\"$2\"}"
	got=$(call ci-deployer POST /api/generate "$body") || return 1
	[[ "$got" == "200 "* ]] || { echo "  $got"; return 1; }
	credentials+=("$(json_field "${got#200 }" credential)")
	s=$(json_field "${got#200 }" generation_session_id)
	got=$(call ci-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$s\"}")
	[[ "$got" == "201 "* ]] || { echo "  $got"; return 1; }
	python3 - "$work/presets.json" "${got#201 }" "${credentials[-1]}" "$1" "$2" <<'PY'
import base64, json, math, sys
presets = {p["name"]: p for p in json.load(open(sys.argv[1]))["presets"]}
jws = json.loads(sys.argv[2])["certificate"]
p64 = jws.split(".")[1]
c = json.loads(base64.urlsafe_b64decode(p64 + "=" * (-len(p64) % 4)))
cred, name, ctype = sys.argv[3], sys.argv[4], sys.argv[5]
p = presets[name]
assert c["preset"] == name and c["preset_sha256"] == p["sha256"], "preset hash"
assert c["preset_version"] == p["version"] and c["standards"] == p["standards"], "standards"
k = c["credential"]
assert k["type"] == ctype and k["entropy_bits"] >= p["strength_bits"] >= 112, "strength"
assert k["length"] >= p["enforced_min_length"][ctype], "enforced minimum"
if ctype == "password":
    assert k["charset"] == p["charset_chars"] and k["classes"] == p["classes"], "charset/classes"
    assert len(cred) == k["length"] >= p["min_length"]
    assert all(ch in k["charset"] for ch in cred)
    for cls, test in (("upper", str.isupper), ("lower", str.islower), ("digit", str.isdigit)):
        if cls in p["classes"]:
            assert any(test(ch) for ch in cred), cls
    if p["max_identical_run"]:
        assert k["max_identical_run"] == p["max_identical_run"]
        assert all(len(set(cred[i:i + p["max_identical_run"] + 1])) > 1
                   for i in range(len(cred) - p["max_identical_run"]))
if ctype == "passphrase":
    assert k["length_unit"] == "words" and k["wordlist"]["size"] == 7776
    assert abs(k["entropy_bits"] - math.floor(k["length"] * math.log2(7776) * 100) / 100) < 1e-9
PY
}
for preset in $(python3 -c 'import json,sys; [print(p["name"]) for p in json.load(open(sys.argv[1]))["presets"]]' "$work/presets.json"); do
	for ctype in $(python3 -c 'import json,sys; [print(t) for p in json.load(open(sys.argv[1]))["presets"] if p["name"] == sys.argv[2] for t in p["types"]]' "$work/presets.json" "$preset"); do
		if [ "$(python3 -c 'import json,sys; print([p for p in json.load(open(sys.argv[1]))["presets"] if p["name"] == sys.argv[2]][0]["requires_validation"])' "$work/presets.json" "$preset")" != None ]; then
			# the test token declares program "none"; fips_test.sh runs these on a validated one
			check "preset $preset, $ctype: refused on a token that is not validated" expect_error ci-deployer \
				POST /api/generate "{$PAYMENTS,\"preset\":\"$preset\",\"type\":\"$ctype\"}" 422 token_not_validated
		else
			check "preset $preset, $ctype: certificate claims match the preset" claims_match_preset "$preset" "$ctype"
		fi
	done
done
check "a request below the preset's minimum length -> 422 naming the rule" \
	expect_error ci-deployer POST /api/generate '{"project":"payments","environment":"production","preset":"dod-stig","length":14}' 422 below_minimum
below_min_message() {
	local got
	got=$(call ci-deployer POST /api/generate '{"project":"payments","environment":"production","preset":"dod-stig","length":14}')
	[[ "$got" == *"minimum length of 15 (DISA GPOS SRG SRG-OS-000078-GPOS-00046"* ]]
}
check "the 422 message cites the requirement" below_min_message
check "strength below the preset -> 422" expect_error ci-deployer POST /api/generate '{"project":"payments","environment":"production","preset":"fips-140-3","strength_bits":112}' 422 below_minimum
raise_strength() {
	local got
	got=$(call ci-deployer POST /api/generate '{"project":"payments","environment":"production","preset":"soc2","strength_bits":192}')
	[[ "$got" == "200 "* ]] && python3 -c 'import json,sys; r=json.loads(sys.argv[1]); assert r["entropy_bits"] >= 192 and r["length"] >= 30' "${got#200 }"
}
check "requests may raise the strength (192 bits)" raise_strength
exclude_ambiguous() {
	local got
	got=$(call ci-deployer POST /api/generate '{"project":"payments","environment":"production","preset":"soc2","exclude_ambiguous":true,"length":64}')
	[[ "$got" == "200 "* ]] && python3 -c 'import json,sys; c=json.loads(sys.argv[1])["credential"]; assert not set(c) & set("0O1lI|")' "${got#200 }"
}
check "exclude_ambiguous drops look-alike characters" exclude_ambiguous

# ---- policy generator -----------------------------------------------------------------
policy_pci_dod() {
	local got
	got=$(call auditor GET '/api/policy?standards=pci-dss-4,dod-stig&organisation=Soci%C3%A9t%C3%A9%20X&scope=---')
	[[ "$got" == "200 "* ]] || return 1
	python3 - "${got#200 }" <<'PY'
import hashlib, json, sys
doc = json.loads(sys.argv[1])
rules = {r["id"]: r for r in doc["rules"]}
# PCI DSS sets the organisation-wide rules: 12 characters, a letter and a
# digit (8.3.6), both cases as the preset's own choice
h = rules["length.human"]
assert h["value"] == 12 and "PCI DSS v4.0.1 8.3.6" in h["cites"][0], h
c = rules["classes"]
assert c["value"] == ["upper", "lower", "digit"], c
assert "PCI DSS v4.0.1 8.3.6 (alphabetic and numeric characters)" in c["cites"], c
assert any("pci-dss-4 preset's own choice" in x for x in c["cites"]), c
# the STIG's rules on the systems in its scope: 15, four classes, 60 days
for rid, value in (("length.dod-stig", 15), ("rotation.dod-stig", 60), ("lifetime.minimum", 24)):
    r = rules[rid]
    assert r["value"] == value and r["rule"].startswith("On systems in the scope of DoD: DISA"), r
assert rules["classes.dod-stig"]["value"] == ["upper", "lower", "digit", "special"]
assert "SRG-OS-000076" in rules["rotation.dod-stig"]["cites"][0]
assert {x["id"] for x in doc["conflicts"]} == {"minimum-lifetime"}, doc["conflicts"]
# API keys: the enforced lengths, a letter and a digit included
k = rules["length.api-key"]["value"]
assert k["strength_bits"] == 112 and k["min_length"]["hex"] == 29, k
assert all(rule["cites"] for rule in rules.values()), "every rule cites its source"
# content_sha256 as the README recomputes it, over every signed field
d = dict(doc)
digest = d.pop("content_sha256")
d.pop("approval")
text = json.dumps(d, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
assert hashlib.sha256(text).hexdigest() == digest, digest
assert doc["organisation"] == "Soci\u00e9t\u00e9 X" and doc["scope"] == "---"
PY
}
check "policy for pci-dss-4,dod-stig: PCI's rules everywhere, the STIG's on its systems, digest recomputed" policy_pci_dod
policy_markdown() {
	local args
	read -r -a args <<< "$(client auditor)"
	curl -s "${args[@]}" "$url/api/policy?standards=pci-dss-4,dod-stig&format=markdown&owner=CISO&scope=-%20x" > "$work/policy.md" &&
		grep -q '^# Credential policy' "$work/policy.md" &&
		grep -q '^| Policy owner | CISO |$' "$work/policy.md" &&
		grep -q '^## 9. Approval$' "$work/policy.md" &&
		grep -q '^\\- x$' "$work/policy.md" &&
		grep -q 'at least 12 characters. _Applies to: human accounts._ _Source: PCI DSS v4.0.1 8.3.6' "$work/policy.md" &&
		grep -q 'passwords of operating-system accounts are changed at least every 60 days' "$work/policy.md" &&
		grep -q 'PCI DSS v4.0.1 8.3.4' "$work/policy.md" &&
		grep -q 'SRG-OS-000075-GPOS-00043' "$work/policy.md"
}
check "policy as Markdown: owner from the query, approval block, added rules" policy_markdown
# SP 800-63B-4 with fips-140-3: human accounts get no composition rules, the
# conflict is stated per account type, and no STIG that was not chosen is cited
policy_nist_fips() {
	local got
	got=$(call auditor GET '/api/policy?standards=nist-800-63b,fips-140-3')
	[[ "$got" == "200 "* ]] || { echo "  ${got:0:300}"; return 1; }
	python3 - "${got#200 }" <<'PY'
import json, sys
text = sys.argv[1]
p = json.loads(text)
for word in ("STIG", "DISA", "SRG-OS", "dod-stig", "PCI DSS", "45 CFR", "AICPA", "ISO/IEC"):
    assert word not in text, word
rules = {r["id"]: r for r in p["rules"]}
assert rules["classes.human"]["value"] == [] and rules["classes.human"]["accounts"] == "human"
for r in p["rules"]:
    assert r["accounts"] == "service" or "all four classes" not in r["rule"], r
c = {x["id"]: x for x in p["conflicts"]}["composition"]
assert any("800-63B-4" in x for x in c["resolution"]["human"]["cites"]), c
assert set(c["resolution"]) == {"human", "service"}, c
assert [s["id"] for s in p["sections"]] == ["purpose", "scope", "roles", "effective", "requirements",
                                            "conflicts", "exceptions", "review", "approval"]
PY
}
check "policy nist-800-63b + fips-140-3: no classes for humans, conflict stated, no STIG cited" policy_nist_fips
policy_html() {
	local args
	read -r -a args <<< "$(client auditor)"
	curl -s -D "$work/policy.hdr" "${args[@]}" \
		"$url/api/policy?standards=nist-800-63b,pci-dss-4&format=html&organisation=%3Cscript%3Ealert(1)%3C/script%3E&effective_date=2025-01-31" \
		> "$work/policy.html" || return 1
	grep -qi '^content-type: text/html; charset=utf-8' "$work/policy.hdr" &&
		grep -qi "^content-security-policy: default-src 'none'" "$work/policy.hdr" &&
		grep -q '^<!DOCTYPE html>' "$work/policy.html" &&
		grep -q '@media print' "$work/policy.html" &&
		grep -q '&lt;script&gt;alert(1)&lt;/script&gt;' "$work/policy.html" &&
		! grep -q '<script' "$work/policy.html" &&
		grep -q '<th>Next review</th><td>2026-01-31</td>' "$work/policy.html"
}
check "policy as printable HTML: escaped text, CSP, next review from the effective date" policy_html
check "policy with an invalid effective date -> 400" \
	expect_error auditor GET '/api/policy?standards=soc2&effective_date=2025-02-30' '' 400 invalid_field
check "policy with a bidi control in the owner -> 400" \
	expect_error auditor GET '/api/policy?standards=soc2&owner=a%E2%80%AEb' '' 400 invalid_field
check "policy with an unknown standard -> 404" expect_error auditor GET '/api/policy?standards=pci-dss-4,nope' '' 404 unknown_preset
check "policy without standards -> 400" expect_error auditor GET '/api/policy' '' 400 invalid_field

# ---- no stall: a reply leaves at once (TCP_NODELAY, one write), not after
# the client's delayed ACK (~40 ms). A guard against gross stalls only.
keepalive_latency() {
	local got
	got=$(/usr/bin/python3 "$(dirname "$0")/latency_probe.py" "$port" "$pki/ca.pem" \
		"$clients/ci-deployer.pem" "$clients/ci-deployer.key" 50 POST /api/generate '{"project":"payments","environment":"production","preset":"soc2"}')
	echo "  50 generates on one keep-alive connection: $got"
	python3 -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if d["connections"] == 1 and d["statuses"] == {"200": 50} and d["median_ms"] < 10 else 1)' "$got"
}
check "50 sequential generates on one keep-alive connection: median under 10 ms" keepalive_latency

# ---- no credential anywhere at rest --------------------------------------------------
stop_daemon
check "SIGTERM stops the daemon cleanly (exit 0)" test $? -eq 0
no_credential_at_rest() {
	local n=0 c
	for c in "${credentials[@]}"; do
		[ -n "$c" ] || continue
		n=$((n + 1))
		for f in "$db" "$db-wal" "$log"; do
			[ -f "$f" ] || continue
			if grep -qF -- "$c" "$f"; then
				echo "  a credential was found in $f"
				return 1
			fi
		done
	done
	echo "  scanned for $n credentials"
	[ "$n" -ge 10 ]
}
check "no generated credential appears in the SQLite files or the log" no_credential_at_rest

ids_start_with_a_letter() { # every id this run produced: 127 random bits, a letter first
	local n bad
	n=$(sqlite3 "$db" "SELECT count(*) FROM (SELECT id FROM generation_sessions UNION ALL SELECT id FROM certificates)")
	bad=$(sqlite3 "$db" "SELECT id FROM (SELECT id FROM generation_sessions UNION ALL SELECT id FROM certificates) WHERE substr(id, 1, 1) NOT GLOB '[A-Za-f]'")
	echo "  $n ids, ${bad:-none} not starting with A-Z or a-f"
	[ "$n" -ge 30 ] && [ -z "$bad" ]
}
check "session and certificate ids start with a letter (never read as an option)" ids_start_with_a_letter

finish
