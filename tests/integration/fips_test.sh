#!/usr/bin/env bash
# FIPS 140 claims are checked, not typed: pkcs11.validation is compared with
# what the token reports at start, certificates record the check, a preset
# that requires validation is refused on a token that is not validated, and
# crypto.openssl_fips refuses to start without OpenSSL's FIPS provider.
#
#   fips_test.sh BUILD_DIR STATE_DIR SOFTHSM_MODULE
BUILD=${1:?}
STATE=${2:?}
SOFTHSM=${3:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_token fips || exit 1

# What the token reports, read independently of credsign (OpenSC's
# pkcs11-tool): CK_TOKEN_INFO hardware/firmware version, CK_INFO library version.
pkcs11-tool --module "$SOFTHSM" -L > "$STATE/fips-slots.txt" 2>&1 &&
	pkcs11-tool --module "$SOFTHSM" -I > "$STATE/fips-info.txt" 2>&1 || {
	echo "pkcs11-tool failed"
	cat "$STATE/fips-slots.txt" "$STATE/fips-info.txt"
	exit 1
}
token_field() { # the first token's "NAME : VALUE"
	awk -F' *: *' -v n="$1" '$1 ~ "^ *"n"$" { print $2; exit }' "$STATE/fips-slots.txt"
}
hw=$(token_field 'hardware version')
fw=$(token_field 'firmware version')
lib=$(sed -n 's/^Library .*(ver \([0-9]*\.[0-9]*\)).*/\1/p' "$STATE/fips-info.txt")
[[ "$hw" =~ ^[0-9]+\.[0-9]+$ && "$fw" =~ ^[0-9]+\.[0-9]+$ && "$lib" =~ ^[0-9]+\.[0-9]+$ ]] || {
	echo "cannot read the token's versions: hw='$hw' fw='$fw' lib='$lib'"
	exit 1
}
echo "# the token reports hardware $hw, firmware $fw, library $lib"
wrong_fw="${fw%%.*}.$(( ${fw#*.} + 1 ))"

# generate_certify PRESET [TYPE]: generate and certify; the certificate's claims in $work/claims.json
generate_certify() {
	local got sid
	got=$(call ci-deployer POST /api/generate "{$PAYMENTS,\"preset\":\"$1\"${2:+,\"type\":\"$2\"}}")
	[[ "$got" == "200 "* ]] || { echo "  generate: ${got:0:300}"; return 1; }
	sid=$(json_field "${got#200 }" generation_session_id)
	got=$(call ci-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$sid\"}")
	[[ "$got" == "201 "* ]] || { echo "  certify: ${got:0:300}"; return 1; }
	python3 -c '
import base64, json, sys
p = json.loads(sys.argv[1])["certificate"].split(".")[1]
print(json.dumps(json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))))' "${got#201 }" > "$work/claims.json"
}

# audit_rows ACTION: "outcome|error_code|object" of each entry with that action
audit_rows() {
	sqlite3 "$db" "SELECT outcome, coalesce(error_code,''), coalesce(object,'') FROM audit_log
	               WHERE action = '$1' ORDER BY seq"
}

# ---- the development token: program "none" ----------------------------------------
it_setup fips-none || exit 1

none_refused() {
	local got
	got=$(call ci-deployer POST /api/generate '{"project":"payments","environment":"production","preset":"fips-140-3"}')
	[[ "$got" == "422 "* && "$got" == *'"code":"token_not_validated"'* &&
		"$got" == *"requires a token validated under FIPS 140-3"* &&
		"$got" == *'program \"none\"'* && "$got" != *'"credential"'* ]] || { echo "  $got"; return 1; }
	# audited as a refusal like any other
	sqlite3 "$db" "SELECT count(*) FROM audit_log WHERE action = 'generate' AND outcome = 'refused'
	               AND error_code = 'token_not_validated' AND actor = 'spiffe://credsign.test/ci-deployer'" |
		grep -qx 1
}
check "program none: a fips-140-3 generate is refused with 422 token_not_validated, audited" none_refused

none_certificate() {
	generate_certify soc2 || return 1
	python3 - "$work/claims.json" "$hw" "$fw" <<'PY' || { cat "$work/claims.json"; return 1; }
import json, sys
c = json.load(open(sys.argv[1]))
es = c["entropy_source"]
assert es["validation"] == {"validated": False, "program": "none", "certificate": None,
                            "module": None, "level": None, "checked_versions": {}}, es["validation"]
assert es["token"]["hardware_version"] == sys.argv[2], es["token"]
assert es["token"]["firmware_version"] == sys.argv[3], es["token"]
assert "validated" not in json.dumps(c["standards"]), c["standards"]
PY
}
check "program none: other presets certify; the certificate says validated: false, no certificate, module or level, and the token's versions" none_certificate

none_logged() {
	grep -q 'token not declared validated' "$log" && [ -z "$(audit_rows token.validation)" ]
}
check "program none: logged at start; no token.validation entry (nothing was claimed)" none_logged

# Nothing the API publishes asserts a validation that was not configured
# and checked: the preset requires it, its texts say so, the policy does
# not claim it.
texts_true() {
	local presets policy
	presets=$(call web-deployer GET /api/presets)
	policy=$(call web-deployer GET '/api/policy?standards=fips-140-3&format=json')
	[[ "$presets" == "200 "* && "$policy" == "200 "* ]] || { echo "  ${presets:0:200} ${policy:0:200}"; return 1; }
	python3 - "${presets#200 }" "${policy#200 }" <<'PY'
import json, re, sys
presets = {p["name"]: p for p in json.loads(sys.argv[1])["presets"]}
f = presets["fips-140-3"]
assert f["requires_validation"] == "FIPS 140-3", f
assert all(p["requires_validation"] is None for n, p in presets.items() if n != "fips-140-3")
# an unconditional claim of a validated module (the old "random bits from
# the validated module's RNG only") appears nowhere
claim = re.compile(r"(?i)\bthe validated module|validated module's")
for doc in (sys.argv[1], sys.argv[2]):
    m = claim.search(doc)
    assert m is None, doc[max(0, m.start() - 120):m.end() + 120]
PY
}
check "/api/presets and /api/policy: fips-140-3 requires FIPS 140-3; no text asserts a validated module unconditionally" texts_true
stop_daemon

# ---- a validation group that matches what SoftHSM2 reports ---------------------------
VALIDATION="{ program = \"FIPS 140-3\"; certificate = \"4745\"; module = \"SoftHSM2 (test fixture)\"; level = 1;
              hardware_version = \"$hw\"; firmware_version = \"$fw\"; library_version = \"$lib\"; }" \
	it_setup fips-match || exit 1

match_validated() {
	generate_certify fips-140-3 || return 1
	python3 - "$work/claims.json" "$hw" "$fw" "$lib" <<'PY' || { cat "$work/claims.json"; return 1; }
import json, sys
c = json.load(open(sys.argv[1]))
hw, fw, lib = sys.argv[2:5]
v = c["entropy_source"]["validation"]
assert v["validated"] is True and v["program"] == "FIPS 140-3", v
assert v["certificate"] == "4745" and v["module"] == "SoftHSM2 (test fixture)" and v["level"] == 1, v
assert v["checked_versions"] == {
    "hardware_version": {"configured": hw, "token": hw, "match": True},
    "firmware_version": {"configured": fw, "token": fw, "match": True},
    "library_version": {"configured": lib, "token": lib, "match": True}}, v
t = c["entropy_source"]["token"]
assert t["hardware_version"] == hw and t["firmware_version"] == fw, t
assert c["entropy_source"]["module"]["version"] == lib
assert c["preset"] == "fips-140-3"
PY
}
check "matching versions: fips-140-3 generates; the certificate says validated: true with each version checked" match_validated

# every type the preset allows, certified under the preset's definition
match_all_types() {
	local presets types t
	presets=$(call web-deployer GET /api/presets)
	types=$(python3 -c 'import json,sys; print(" ".join([p for p in json.loads(sys.argv[1])["presets"] if p["name"] == "fips-140-3"][0]["types"]))' "${presets#200 }")
	[ -n "$types" ] || return 1
	for t in $types; do
		generate_certify fips-140-3 "$t" || return 1
		python3 - "$work/claims.json" "${presets#200 }" "$t" <<'PY' || { echo "  $t"; return 1; }
import json, sys
c = json.load(open(sys.argv[1]))
p = [p for p in json.loads(sys.argv[2])["presets"] if p["name"] == "fips-140-3"][0]
assert c["preset_sha256"] == p["sha256"] and c["standards"] == p["standards"]
assert c["credential"]["type"] == sys.argv[3] and c["credential"]["entropy_bits"] >= 128
assert c["entropy_source"]["validation"]["validated"] is True
PY
	done
}
check "matching versions: every fips-140-3 type certifies under the preset's definition" match_all_types

match_audited() {
	grep -q 'token validated: FIPS 140-3 certificate #4745' "$log" &&
		[ "$(audit_rows token.validation)" = "success||FIPS 140-3 #4745" ]
}
check "matching versions: logged, and audited as token.validation success" match_audited
stop_daemon

# ---- a validation group the token does not match ---------------------------------------
VALIDATION="{ program = \"FIPS 140-3\"; certificate = \"4745\"; module = \"SoftHSM2 (test fixture)\"; level = 1;
              hardware_version = \"$hw\"; firmware_version = \"$wrong_fw\"; }" \
	it_setup fips-mismatch || exit 1

mismatch_logged_audited() {
	grep -q "does not hold: the token reports firmware_version $fw, validated at $wrong_fw" "$log" &&
		[ "$(audit_rows token.validation)" = "failure|validation_mismatch|FIPS 140-3 #4745" ]
}
check "mismatch: logged as an error and audited as token.validation failure" mismatch_logged_audited

mismatch_refused() {
	local got
	got=$(call ci-deployer POST /api/generate '{"project":"payments","environment":"production","preset":"fips-140-3"}')
	[[ "$got" == "422 "* && "$got" == *'"code":"token_not_validated"'* &&
		"$got" == *"firmware_version $fw, validated at $wrong_fw"* ]] || { echo "  $got"; return 1; }
}
check "mismatch: the token counts as not validated (fips-140-3 -> 422 token_not_validated)" mismatch_refused

mismatch_certificate() {
	generate_certify soc2 || return 1
	python3 - "$work/claims.json" "$fw" "$wrong_fw" <<'PY' || { cat "$work/claims.json"; return 1; }
import json, sys
v = json.load(open(sys.argv[1]))["entropy_source"]["validation"]
assert v["validated"] is False and v["program"] == "FIPS 140-3", v
assert v["checked_versions"]["firmware_version"] == {"configured": sys.argv[3], "token": sys.argv[2], "match": False}, v
assert v["checked_versions"]["hardware_version"]["match"] is True, v
PY
}
check "mismatch: certificates record the configured validation with the failed check, validated: false" mismatch_certificate
stop_daemon

# ---- configuration refusals ----------------------------------------------------------
old_string_refused() {
	python3 -c '
import re, sys
text, n = re.subn(r"validation = \{[^}]*\};", "validation = \"FIPS 140-3 certificate #0000\";", open(sys.argv[1]).read())
assert n == 1
open(sys.argv[2], "w").write(text)' "$conf" "$work/old.conf" || return 1
	if "$BUILD/bin/credsignd" --check-config "$work/old.conf" > /dev/null 2> "$work/old.err"; then return 1; fi
	grep -q "old.conf:[0-9]*: setting 'pkcs11.validation': free text is no longer accepted; declare the validation as a group" "$work/old.err" ||
		{ cat "$work/old.err"; return 1; }
}
check "the old free-text validation is refused, saying what to write instead" old_string_refused

# Debian 12 ships no OpenSSL FIPS provider: crypto.openssl_fips = true must
# stop start-up, in --check-config and in the daemon, saying why.
fips_provider_refused() {
	if [ -e "$(openssl version -m | sed 's/.*"\(.*\)"/\1/')/fips.so" ]; then
		echo "  # skipped: this system has a FIPS provider"
		return 0
	fi
	cat "$conf" - > "$work/fips.conf" <<<'crypto = { openssl_fips = true; };'
	if "$BUILD/bin/credsignd" --check-config "$work/fips.conf" > /dev/null 2> "$work/check.err"; then return 1; fi
	grep -q "setting 'crypto.openssl_fips': OpenSSL's FIPS provider is not available" "$work/check.err" ||
		{ cat "$work/check.err"; return 1; }
	timeout 20 "$BUILD/bin/credsignd" --config "$work/fips.conf" > "$work/serve.out" 2>&1
	local rc=$?
	[ "$rc" -eq 1 ] && grep -q "crypto.openssl_fips': OpenSSL's FIPS provider is not available" "$work/serve.out" &&
		! grep -q "starting" "$work/serve.out" || { echo "  exit $rc"; cat "$work/serve.out"; return 1; }
}
check "crypto.openssl_fips = true without a FIPS provider: --check-config and credsignd refuse, naming the setting" fips_provider_refused

finish
