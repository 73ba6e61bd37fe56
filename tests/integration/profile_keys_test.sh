#!/usr/bin/env bash
# The signing profiles' keys in the daemon (issue 15): each profile's key
# is its own. Refused at start and by --check-config, naming FILE:LINE and
# the setting: a profile key that is the certificate key, another
# profile's key, a key the store records as a certificate key or under
# another profile. A profile's first key is bootstrapped from its
# configured key (audited as config:signing.profiles.NAME.key); an
# activate ceremony on a profile key rotates that profile only (the old
# key of the rollover is the profile's active key) and the running daemon
# switches without a restart (key.switch audited with request_id
# profile=NAME) while the certificate key stays; the certificate key's
# bootstrap warrant still holds after the profile's rollover (restart);
# compromising the profile key empties only the profile's slot.
#
#   profile_keys_test.sh BUILD_DIR STATE_DIR SOFTHSM_MODULE
BUILD=${1:?}
STATE=${2:?}
SOFTHSM=${3:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_token profkeys || exit 1
py=/usr/bin/python3
CEREMONY=$(ceremony_group)
EXTRA_CONF=$CEREMONY
GRANTS="$DEFAULT_GRANTS,
    { identity = \"spiffe://credsign.test/ci-deployer\"; role = \"signer\"; profiles = [ \"release\" ]; }"
# the daemon first without profiles: the certificate key bootstrapped
GRANTS=$DEFAULT_GRANTS it_setup profkeys || exit 1
stop_daemon
base_conf=$work/base.conf
cp "$conf" "$base_conf"
cert_label=it-es256-profkeys
kid_cert=$("${admin[@]}" key jwk --key "pkcs11:token=cstest;object=$cert_label" | json_field "$(cat)" kid)

sql() { $py -c 'import sqlite3,sys; r=sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone(); print("" if r is None else r[0])' "$db" "$1"; }

# profiles_conf PROFILES...: the base configuration with a signing group of
# the given profile entries ("NAME=URI") and the signer grant
profiles_conf() {
	local list="" entry
	for entry in "$@"; do
		list+="${list:+, }{ name = \"${entry%%=*}\"; key = \"${entry#*=}\"; formats = [ \"jws\", \"digest\" ]; typ = \"it+jwt\"; }"
	done
	cp "$base_conf" "$conf"
	sed -i '/^access = /,/); };$/d' "$conf"
	cat >> "$conf" <<CONF
access = { grants = ( $GRANTS ); };
signing = { profiles = ( $list ); };
CONF
}

# refused SETTING-LINE REASON: --check-config and start-up both refuse,
# naming where the file sets the setting and why
refused() {
	local setting=$1 reason=$2 line
	line=$(grep -n "signing = " "$conf" | cut -d: -f1)
	"$BUILD/bin/credsignd" --check-config "$conf" > "$work/check.out" 2>&1 && { cat "$work/check.out"; return 1; }
	grep -q "^$conf:$line: setting '$setting': .*$reason" "$work/check.out" || { cat "$work/check.out"; return 1; }
	timeout 60 "$BUILD/bin/credsignd" --config "$conf" > "$work/start.out" 2>&1 && { cat "$work/start.out"; return 1; }
	grep -q "$conf:$line: setting '$setting': .*$reason" "$work/start.out" || { cat "$work/start.out"; return 1; }
}

refuse_certificate_key() {
	# the certificate key under another URI text (the loader refuses the same text)
	profiles_conf "release=pkcs11:object=$cert_label;token=cstest"
	refused "signing.profiles.\[0\].key" "key $kid_cert is the certificate-signing key"
}
check "a profile key that is the certificate key: refused at --check-config and start, naming FILE:LINE and the setting" \
	refuse_certificate_key

refuse_shared_key() {
	local out
	out=$("${admin[@]}" key generate --label it-profkeys-shared) || { echo "  $out"; return 1; }
	profiles_conf "release=pkcs11:token=cstest;object=it-profkeys-shared" \
		"tokens=pkcs11:object=it-profkeys-shared;token=cstest"
	refused "signing.profiles.\[1\].key" "is the key of signing profile release too"
}
check "two profiles with one key: refused (the second names the first)" refuse_shared_key

refuse_recorded_elsewhere() {
	local out
	# recorded as a certificate key (key generate without --profile above)
	profiles_conf "release=pkcs11:token=cstest;object=it-profkeys-shared"
	refused "signing.profiles.\[0\].key" "recorded in the store as a certificate-signing key" || return 1
	# recorded under another profile
	profiles_conf "release=pkcs11:token=cstest;object=it-profkeys-release-1" \
		"other=pkcs11:token=cstest;object=it-profkeys-other"
	out=$("${admin[@]}" key generate --label it-profkeys-other --profile other) || { echo "  $out"; return 1; }
	[ "$(json_field "$out" profile)" = other ] || { echo "  $out"; return 1; }
	profiles_conf "release=pkcs11:token=cstest;object=it-profkeys-other"
	refused "signing.profiles.\[0\].key" "recorded in the store as a key of signing profile other"
}
check "a key recorded as a certificate key or under another profile: refused" refuse_recorded_elsewhere

generate_unknown_profile() {
	profiles_conf "release=pkcs11:token=cstest;object=it-profkeys-release-1"
	"${admin[@]}" key generate --label it-profkeys-nowhere --profile nowhere > /dev/null 2> "$work/gen.err" && return 1
	grep -q "no such signing profile (signing.profiles: release)" "$work/gen.err" || { cat "$work/gen.err"; return 1; }
	[ -z "$(sql "SELECT kid FROM signing_keys WHERE label = 'it-profkeys-nowhere'")" ]
}
check "key generate --profile NAME: NAME must be a configured profile" generate_unknown_profile

kid_r1=""
bootstrap() {
	local out
	out=$("${admin[@]}" key generate --label it-profkeys-release-1 --profile release) || { echo "  $out"; return 1; }
	kid_r1=$(json_field "$out" kid)
	echo "$kid_r1" > "$work/kid_r1"
	[ "$(json_field "$out" state)" = pending ] && [ "$(json_field "$out" profile)" = release ] || { echo "  $out"; return 1; }
	"$BUILD/bin/credsignd" --check-config "$conf" > "$work/check.out" 2>&1 || { cat "$work/check.out"; return 1; }
	start_daemon || return 1
	wait_for_log "signing profile release: key kid=$kid_r1" || { cat "$log"; return 1; }
	grep -q "signing key $kid_r1 is now the active key of signing profile release" "$log" || { cat "$log"; return 1; }
	[ "$(sql "SELECT status || ' ' || profile || ' ' || activated_by FROM signing_keys WHERE kid = '$kid_r1'")" = \
		"active release config:signing.profiles.release.key" ] || return 1
	[ "$(sql "SELECT count(*) FROM audit_log WHERE action = 'key.activate' AND object = '$kid_r1'
		AND actor = 'config:signing.profiles.release.key' AND outcome = 'success'")" = 1 ] || return 1
	# the certificate key is untouched
	[ "$(sql "SELECT status FROM signing_keys WHERE kid = '$kid_cert'")" = active ] || return 1
	"${admin[@]}" key list > "$work/list.txt" || return 1
	grep -A4 "^$kid_r1  active" "$work/list.txt" | grep -q "profile      release" || { cat "$work/list.txt"; return 1; }
	grep -A4 "^$kid_cert  active" "$work/list.txt" | grep -q "profile      (none: signs certificates)" ||
		{ cat "$work/list.txt"; return 1; }
}
check "a profile's first key is bootstrapped from its configured key (audited, key list shows the profile)" bootstrap

# the API (H5's /api/sign) when it is there: the kid a digest is signed with
signed_kid() {
	local got
	got=$(call ci-deployer POST /api/sign \
		'{"profile":"release","format":"digest","digest":{"alg":"SHA-256","value":"'"$(printf x | sha256sum | cut -c1-64)"'"}}')
	echo "$got" > "$work/sign.out"
	[[ "$got" == "200 "* ]] && json_field "${got#* }" kid
}

certify_works() { # a certificate is issued, with the certificate key
	local got sid
	got=$(call ci-deployer POST /api/generate "{\"preset\":\"soc2\",$PAYMENTS}")
	sid=$(json_field "${got#* }" generation_session_id) || { echo "  $got"; return 1; }
	got=$(call ci-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$sid\"}")
	[[ "$got" == "201 "* ]] || { echo "  $got"; return 1; }
	json_field "${got#* }" certificate > "$work/cert.jws"
	[ "$($py -c 'import base64,json,sys; h=open(sys.argv[1]).read().split(".")[0]; print(json.loads(base64.urlsafe_b64decode(h+"="*(-len(h)%4)))["kid"])' "$work/cert.jws")" = "$kid_cert" ]
}

kid_r2=""
rotate_profile() {
	local out id
	[ "$(signed_kid)" = "$kid_r1" ] || { cat "$work/sign.out"; return 1; }
	# a JWS signed by the first key, for after the rotation
	out=$(call ci-deployer POST /api/sign '{"profile":"release","format":"jws","payload":{"before":"rotation"}}')
	[[ "$out" == "200 "* ]] || { echo "  $out"; return 1; }
	json_field "${out#* }" jws > "$work/old.jws"
	out=$("${admin[@]}" key generate --label it-profkeys-release-2 --profile release) || { echo "  $out"; return 1; }
	kid_r2=$(json_field "$out" kid)
	echo "$kid_r2" > "$work/kid_r2"
	out=$(ceremony_run "$conf" --action activate --key "$kid_r2" --reason "profile rotation") || { echo "  $out"; return 1; }
	wait_for_log "signing key of profile release switched to $kid_r2 (was $kid_r1)" || { cat "$log"; return 1; }
	# audited as the profile's switch; the certificate key did not switch
	[ "$(sql "SELECT count(*) FROM audit_log WHERE action = 'key.switch' AND object = '$kid_r2'
		AND request_id = 'profile=release' AND outcome = 'success'")" = 1 ] || return 1
	[ "$(sql "SELECT count(*) FROM audit_log WHERE action = 'key.switch'")" = 1 ] || return 1
	[ "$(sql "SELECT status FROM signing_keys WHERE kid = '$kid_r1'")" = retired ] || return 1
	[ "$(sql "SELECT status FROM signing_keys WHERE kid = '$kid_cert'")" = active ] || return 1
	# the rollover's old key is the profile's active key; the statement names the profile
	id=$(sql "SELECT activated_ceremony FROM signing_keys WHERE kid = '$kid_r2'")
	$py - "$(sql "SELECT statement_json FROM key_rollovers WHERE ceremony_id = '$id'")" \
		"$(sql "SELECT params_json FROM ceremonies WHERE id = '$id'")" "$kid_r1" "$kid_r2" <<'PY' || return 1
import base64, json, sys
st, params, old, new = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
p = st["payload"]
claims = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
assert claims["old_kid"] == old and claims["new_kid"] == new and claims["profile"] == "release", claims
assert params == {"old_kid": old, "profile": "release"}, params
kids = [json.loads(base64.urlsafe_b64decode(s["protected"] + "=" * (-len(s["protected"]) % 4)))["kid"]
        for s in st["signatures"]]
assert kids == [old, new], kids
PY
	[ "$(signed_kid)" = "$kid_r2" ] || { cat "$work/sign.out"; return 1; }
	# the old key stays in the profile's JWKS, retired, and what it signed
	# still verifies there; neither key is in the certificate JWKS
	curl -s $(client ci-deployer) "$url/.well-known/jwks.json?profile=release" > "$work/jwks-release.json"
	curl -s $(client ci-deployer) "$url/.well-known/jwks.json" > "$work/jwks-certs.json"
	$py - "$work/jwks-release.json" "$work/jwks-certs.json" "$kid_r1" "$kid_r2" <<'PY' || return 1
import json, sys
rel = {k["kid"]: k["status"] for k in json.load(open(sys.argv[1]))["keys"]}
cer = {k["kid"] for k in json.load(open(sys.argv[2]))["keys"]}
assert rel == {sys.argv[3]: "retired", sys.argv[4]: "active"}, rel
assert not (cer & set(rel)), cer
PY
	"$BUILD/bin/credsign" verify-signature --jwks "$work/jwks-release.json" --jws "$work/old.jws" > /dev/null || return 1
	certify_works
}
check "an activate ceremony rotates the profile's key: the daemon switches without restart, the certificate key stays" \
	rotate_profile

restart_scoped_warrant() {
	# the certificate key was bootstrapped; the store now holds a rollover
	# statement, of the profile: the certificate key's warrant still holds
	stop_daemon
	"$BUILD/bin/credsignd" --check-config "$conf" > "$work/check.out" 2>&1 || { cat "$work/check.out"; return 1; }
	# the configured key (release-1) is not the profile's active key: a warning naming it
	grep -q "setting 'signing.profiles.\[0\].key': .*names key $kid_r1, retired.*the store's active key $kid_r2 of the profile signs" \
		"$work/check.out" || { cat "$work/check.out"; return 1; }
	start_daemon || return 1
	wait_for_log "signing profile release: key kid=$kid_r2" || { cat "$log"; return 1; }
	grep -q "signing key kid=$kid_cert" "$log" || { cat "$log"; return 1; }
	[ "$(curl -s -o /dev/null -w '%{http_code}' $(client operator) "$url/readyz")" = 200 ] || return 1
	certify_works && [ "$(signed_kid)" = "$kid_r2" ]
}
check "restart after the profile's rollover: the certificate key's bootstrap still holds, the profile keeps its new key" \
	restart_scoped_warrant

compromise_profile_key() {
	local out
	out=$(ceremony_run "$conf" --action compromise --key "$kid_r2" --reason "lost") || { echo "  $out"; return 1; }
	wait_for_log "the store has no active signing key of profile release" || { cat "$log"; return 1; }
	[ "$(sql "SELECT count(*) FROM audit_log WHERE action = 'key.switch' AND object = 'none'
		AND request_id = 'profile=release' AND outcome = 'failure' AND error_code = 'no_active_key'")" = 1 ] || return 1
	# only the profile's slot: certification goes on, the daemon stays ready
	[ "$(sql "SELECT count(*) FROM audit_log WHERE action = 'key.switch' AND request_id IS NULL")" = 0 ] || return 1
	[ "$(curl -s -o /dev/null -w '%{http_code}' $(client operator) "$url/readyz")" = 200 ] || return 1
	certify_works || return 1
	signed_kid > /dev/null && return 1
	grep -q '^503 .*"no_active_key"' "$work/sign.out" || { cat "$work/sign.out"; return 1; }
	# a restart starts with the profile's slot empty, not refused
	stop_daemon
	start_daemon || return 1
	wait_for_log "signing profile release: key kid=none" || { cat "$log"; return 1; }
	certify_works
}
check "compromise of the profile's key empties only the profile's slot (503 no_active_key there, certificates go on)" \
	compromise_profile_key

finish
