#!/usr/bin/env bash
# Certificates an outside verifier can check from the README alone: every
# preset and type the development token may issue (and an api-key with a
# prefix, a request with project, environment and system), each certified
# and checked by tests/integration/cert_reference.py: signature and kid,
# every claim present (null when it does not apply), the commitment over
# the credential's bytes (prefix_ included), length without the prefix,
# charset, classes, run limits, exact entropy with the run limits, the
# preset's hash and version, a word-list id that is not a host path.
#
#   cert_spec_test.sh BUILD_DIR STATE_DIR SOFTHSM_MODULE
BUILD=${1:?}
STATE=${2:?}
SOFTHSM=${3:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_token certspec || exit 1
it_setup certspec || exit 1

call ci-deployer GET /api/presets | cut -d' ' -f2- > "$work/presets.json"
call ci-deployer GET /.well-known/jwks.json | cut -d' ' -f2- > "$work/jwks.json"

# certify BODY [WHO]: a generated credential and its certificate appended
# to the cases; a preset the token may not serve (token_not_validated) is
# skipped. WHO defaults to ci-deployer, and a body without a project gets
# its grant's: payments, production.
echo '[]' > "$work/cases.json"
certify() {
	local got sid body=$1 who=${2:-ci-deployer}
	[[ "$body" == *'"project"'* ]] || body="{$PAYMENTS,${body#\{}"
	got=$(call "$who" POST /api/generate "$body")
	[[ "$got" == "422 "*token_not_validated* ]] && { echo "  skipped (token not validated): $1"; return 0; }
	[[ "$got" == "200 "* ]] || { echo "  $1: ${got:0:200}"; return 1; }
	echo "${got#200 }" > "$work/gen.json"
	sid=$(json_field "${got#200 }" generation_session_id)
	got=$(call "$who" POST /api/generate-certificate "{\"generation_session_id\":\"$sid\"}")
	[[ "$got" == "201 "* ]] || { echo "  $1: ${got:0:200}"; return 1; }
	echo "${got#201 }" > "$work/cert.json"
	python3 - "$work/cases.json" "$work/gen.json" "$work/cert.json" <<'PY'
import json, sys
cases = json.load(open(sys.argv[1]))
cases.append({"credential": json.load(open(sys.argv[2]))["credential"],
              "jws": json.load(open(sys.argv[3]))["certificate"]})
json.dump(cases, open(sys.argv[1], "w"))
PY
}

every_preset_and_type() {
	local preset ctype
	while read -r preset ctype; do
		certify "{\"preset\":\"$preset\",\"type\":\"$ctype\"}" || return 1
	done < <(python3 -c 'import json,sys; [print(p["name"], t) for p in json.load(open(sys.argv[1]))["presets"] for t in p["types"]]' "$work/presets.json")
	certify '{"preset":"dod-stig","length":20}' &&
		certify '{"preset":"pci-dss-4","type":"api-key","prefix":"ci_deploy"}' &&
		certify '{"preset":"soc2","project":"payments","environment":"production","system":"db-prod"}' &&
		certify '{"preset":"soc2","project":"web"}' web-deployer  # no environment, no system (its grant: every environment)
}
check "a certificate for every preset and type the token may issue" every_preset_and_type

reference_verifies() {
	local out
	out=$(/usr/bin/python3 "$(dirname "$0")/cert_reference.py" "$work/cases.json" "$work/jwks.json" "$work/presets.json")
	local rc=$?
	echo "$out" | sed 's/^/  /'
	[ $rc -eq 0 ] && [ "$(echo "$out" | grep -c '^ok ')" -ge 20 ]
}
check "each verifies with the reference verifier written from the README" reference_verifies

null_not_absent() {
	python3 - "$work/cases.json" <<'PY'
import base64, json, sys
cases = json.load(open(sys.argv[1]))
def claims(c):
    p = c["jws"].split(".")[1]
    return json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
all_claims = [claims(c) for c in cases]
# absent claims are null, never left out
plain = [c for c in all_claims if c["project"] == "web"]
assert plain and all(c["environment"] is None and c["system"] is None for c in plain)
given = [c for c in all_claims if c["project"] == "payments"]
assert [c["system"] for c in given].count("db-prod") == 1 and all(c["system"] in (None, "db-prod") for c in given)
chars = [c["credential"] for c in all_claims if c["credential"]["length_unit"] == "characters"]
assert any(k["max_identical_run"] is None and k["max_class_run"] is None and k["prefix"] is None for k in chars)
assert any(k["max_identical_run"] == 3 and k["max_class_run"] == 4 for k in chars)
key = [k for k in chars if k["prefix"] is not None][0]
assert key["prefix"] == "ci_deploy" and key["type"] == "api-key"
# dod-stig at 20 characters: the run limits count (130.92 without them)
stig = [c["credential"] for c in all_claims if c["preset"] == "dod-stig" and c["credential"]["length"] == 20]
assert stig and stig[0]["entropy_bits"] == 130.8, stig
words = [c["credential"]["wordlist"] for c in all_claims if c["credential"]["length_unit"] == "words"]
assert words and all(w["id"] == "wordlist_en_eff" for w in words)
PY
}
check "absent claims are null; run limits in entropy (dod-stig 20: 130.8); word list by name" null_not_absent

tampered_is_caught() {
	# the reference verifier is not a rubber stamp: a credential that is
	# not the certified one, and a claim changed after signing, fail
	python3 - "$work/cases.json" "$work/bad.json" <<'PY'
import json, sys
cases = json.load(open(sys.argv[1]))
wrong = dict(cases[0], credential=cases[0]["credential"][:-1] + ("A" if cases[0]["credential"][-1] != "A" else "B"))
h, p, s = cases[1]["jws"].split(".")
forged = dict(cases[1], jws=".".join((h, p[:-2] + ("AA" if p[-2:] != "AA" else "BA"), s)))
json.dump([wrong, forged], open(sys.argv[2], "w"))
PY
	local out
	out=$(/usr/bin/python3 "$(dirname "$0")/cert_reference.py" "$work/bad.json" "$work/jwks.json" "$work/presets.json")
	[ "$(echo "$out" | grep -c '^BAD')" = 2 ] || { echo "$out"; return 1; }
}
check "a wrong credential and a changed certificate fail the reference verifier" tampered_is_caught

stop_daemon
check "the daemon stops cleanly" test $? -eq 0
finish
