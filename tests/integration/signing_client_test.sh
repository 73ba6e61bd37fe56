#!/usr/bin/env bash
# The credsign client against a daemon with signing profiles, and the
# daemon's own warnings about profiles, over real mTLS:
#  - start-up and --check-config warn (not refuse) of a profile that allows
#    digest beside jws/dsse ("digest shares key K with jws/dsse");
#  - credsign sign, then verify-signature with the profile's JWKS fetched
#    (--profile, CONN): signed_sha256 printed is the record's, and the
#    caution that the key also signs bare digests; signature get ID prints
#    the record; signature find --sha256 (the JWS's signed_sha256) and
#    --file (the artifact of a digest signature) find it; bytes never
#    signed: exit 1;
#  - SIGHUP: grants naming a signing profile not in force (a profile added
#    to the file) are refused ("signing profile nightly is not in force: a
#    new profile needs a restart"), audited access.reload failure
#    config_invalid, the rules in force stay; a reload whose signing group
#    differs (a profile's formats) but whose grants name profiles in force
#    is applied, with a warning that the signing settings take effect at
#    restart;
#  - a key that has signed digests (its records), its profile now jws/dsse
#    only: --check-config (also --offline) and start-up warn "key K of
#    profile P has signed bare digests ... rotate the key"; the profile's
#    JWKS lists digest in the key's formats_signed, and verify-signature
#    of its JWS cautions from that history alone;
#  - a profile taken out of the configuration whose keys the store holds:
#    --check-config and start-up warn (its JWKS stays served, it cannot
#    sign; a key of it that has signed digests is named), neither refuses.
#
#   signing_client_test.sh BUILD_DIR STATE_DIR SOFTHSM_MODULE
BUILD=${1:?}
STATE=${2:?}
SOFTHSM=${3:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_token signing-client || exit 1

INTOTO=application/vnd.in-toto+json
RELEASE='{ name = "release"; key = "pkcs11:token=cstest;object=it-scl-release";
      formats = [ "jws", "dsse", "digest" ]; typ = "release+jwt"; payload_types = [ "'$INTOTO'" ]; }'
TOKENS='{ name = "tokens"; key = "pkcs11:token=cstest;object=it-scl-tokens"; formats = [ "jws" ]; typ = "JWT"; }'
SIGNING_GROUP="signing = { profiles = ( $RELEASE, $TOKENS ); };"
SIGNER_GRANTS="$DEFAULT_GRANTS"',
    { identity = "spiffe://credsign.test/ci-deployer"; role = "signer"; profiles = [ "release", "tokens" ]; },
    { identity = "spiffe://credsign.test/auditor"; role = "auditor"; projects = [ "*" ]; profiles = [ "*" ]; }'

# the profile keys, made before the daemon's first start (lib.sh)
profile_keys signing-client "$SIGNING_GROUP" it-scl release tokens || exit 1

GRANTS="$SIGNER_GRANTS" EXTRA_CONF="$SIGNING_GROUP" it_setup signing-client || exit 1
cs=("$BUILD/bin/credsign" --url "$url" --cacert "$pki/ca.pem" --cert "$clients/ci-deployer.pem"
	--key "$clients/ci-deployer.key")
auditor=("$BUILD/bin/credsign" --url "$url" --cacert "$pki/ca.pem" --cert "$clients/auditor.pem"
	--key "$clients/auditor.key")
sql() { sqlite3 "$db" "$1"; }
t=$work/client
mkdir -p "$t"

# ---- the digest-sharing warning ----------------------------------------------------------
warn_digest='digest shares key pkcs11:token=cstest;object=it-scl-release with jws/dsse: a signer can obtain a JWS or DSSE signature of this key over any bytes (claims, typ, payload type unchecked); give digest a profile of its own (docs/delegated-signing.md)'
check "start-up warns that profile release's digest shares its key with jws/dsse" \
	grep -qF "setting 'signing.profiles.[0].formats': profile release: $warn_digest" "$log"
check "start-up does not warn of profile tokens (no digest)" bash -c "! grep -q 'profile tokens: digest' '$log'"
check_config_warns_digest() {
	"$BUILD/bin/credsignd" --check-config "$conf" > "$t/cc.out" 2> "$t/cc.err" || { cat "$t/cc.err"; return 1; }
	grep -q "configuration valid" "$t/cc.out" &&
		grep -qF "warning: setting 'signing.profiles.[0].formats': profile release: $warn_digest" "$t/cc.err"
}
check "--check-config: the same warning, and the configuration valid" check_config_warns_digest

# ---- sign, verify-signature with the fetched JWKS, signature get / find -------------------
echo '{"artifact":"app-1.0.tar.gz","build":7}' > "$t/payload.json"
printf 'app 1.0 artifact bytes\n' > "$t/artifact.bin"
sign_and_verify_jws() {
	"${cs[@]}" sign --profile release --format jws --out "$t/token.jws" "$t/payload.json" > "$t/sign.json" ||
		return 1
	jws_id=$(json_field "$(cat "$t/sign.json")" signature_id) || return 1
	"${cs[@]}" verify-signature --profile release --jws "$t/token.jws" > "$t/v.out" 2> "$t/v.err" ||
		{ cat "$t/v.err"; return 1; }
	jws_sha=$(awk '/^  signed_sha256: / { print $2 }' "$t/v.out")
	local recorded
	recorded=$(sql "SELECT signed_sha256 FROM signatures WHERE id = '$jws_id'")
	[ -n "$jws_sha" ] && [ "$jws_sha" = "$recorded" ] || { echo "  printed '$jws_sha', recorded '$recorded'"; return 1; }
	# the audit entry names it too
	[ "$(sql "SELECT count(*) FROM audit_log WHERE action = 'sign' AND object LIKE '$jws_id %sha256=$jws_sha'")" = 1 ]
}
check "verify-signature --profile (JWKS fetched): VERIFIED, signed_sha256 = the record's and the entry's" \
	sign_and_verify_jws
check "verify-signature: the caution that the profile's key also signs bare digests" \
	grep -q "^credsign: caution: key .* also signs bare digests" "$t/v.err"
check "verify-signature of profile tokens (no digest): no caution" bash -c '
	"$@" sign --profile tokens --format jws --out "'"$t"'/tok.jws" "'"$t"'/payload.json" > /dev/null &&
	"$@" verify-signature --profile tokens --jws "'"$t"'/tok.jws" > /dev/null 2> "'"$t"'/tok.err" &&
	[ ! -s "'"$t"'/tok.err" ]' x "${cs[@]}"
signature_get() {
	"${auditor[@]}" signature get "$jws_id" > "$t/get.json" || return 1
	[ "$(json_field "$(cat "$t/get.json")" signature_id)" = "$jws_id" ] &&
		[ "$(json_field "$(cat "$t/get.json")" signed_sha256)" = "$jws_sha" ]
}
check "signature get ID: the record (auditor)" signature_get
check "signature get of an unknown id: exit 1, the server's 404" bash -c '
	! "$@" signature get AAAAAAAAAAAAAAAAAAAAAA > /dev/null 2> "'"$t"'/nf.err" && grep -q "HTTP 404 not_found" "'"$t"'/nf.err"' \
	x "${auditor[@]}"
find_by_sha() {
	"${auditor[@]}" signature find --sha256 "$jws_sha" > "$t/find.json" || return 1
	python3 - "$t/find.json" "$jws_id" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
ids = [r["signature_id"] for r in doc["signatures"]]
sys.exit(0 if ids == [sys.argv[2]] else f"  found {ids}")
PY
}
check "signature find --sha256 (the JWS's signed_sha256): its record" find_by_sha
find_by_file() {
	"${cs[@]}" sign --profile release --format digest "$t/artifact.bin" > "$t/dsign.json" || return 1
	local id
	id=$(json_field "$(cat "$t/dsign.json")" signature_id) || return 1
	"${cs[@]}" signature find --file "$t/artifact.bin" > "$t/ffind.json" || return 1
	python3 - "$t/ffind.json" "$id" "$(sha256sum "$t/artifact.bin" | cut -d' ' -f1)" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
recs = doc["signatures"]
ok = [r["signature_id"] for r in recs] == [sys.argv[2]] and recs[0]["signed_sha256"] == sys.argv[3] \
    and recs[0]["format"] == "digest"
sys.exit(0 if ok else f"  found {recs}")
PY
}
check "signature find --file (the signer): the digest signature of the file" find_by_file
never_signed() {
	printf 'never signed\n' > "$t/other.bin"
	! "${auditor[@]}" signature find --file "$t/other.bin" > "$t/none.json" 2> "$t/none.err" &&
		grep -q '"signatures": \[\]' "$t/none.json" && grep -q "no signature over bytes with SHA-256" "$t/none.err"
}
check "signature find of bytes never signed: [] and exit 1" never_signed

# ---- SIGHUP: grants naming a profile not in force --------------------------------------
# set_conf SIGNING GRANTS: the signing group and the access group of $conf replaced
set_conf() {
	python3 - "$conf" "$1" "$2" <<'PY'
import re, sys
path, signing, grants = sys.argv[1:4]
text = open(path).read()
text = re.sub(r"access = \{ grants = \(.*?\); \};\n", lambda m: "access = { grants = ( %s ); };\n" % grants,
              text, count=1, flags=re.S)
text = re.sub(r"signing = \{.*?\); \};", lambda m: signing, text, count=1, flags=re.S)
open(path, "w").write(text)
PY
}
reload() { # SIGHUP, then wait until the daemon says the rules were (not) reloaded
	local n
	n=$(grep -c 'access rules reloaded\|not reloaded' "$log")
	kill -HUP "$daemon"
	for _ in $(seq 50); do
		[ "$(grep -c 'access rules reloaded\|not reloaded' "$log")" -gt "$n" ] && return 0
		sleep 0.1
	done
	return 1
}
NIGHTLY='{ name = "nightly"; key = "pkcs11:token=cstest;object=it-scl-nightly"; formats = [ "digest" ]; }'
new_profile_refused() {
	# web-deployer would sign with the new profile nightly and with release
	set_conf "signing = { profiles = ( $RELEASE, $TOKENS, $NIGHTLY ); };" "$SIGNER_GRANTS"',
    { identity = "spiffe://credsign.test/web-deployer"; role = "signer"; profiles = [ "release", "nightly" ]; }'
	reload || return 1
	grep -q "setting 'access.grants.\[6\].profiles': element 2: signing profile nightly is not in force: a new profile needs a restart" "$log" &&
		grep -q "SIGHUP: $conf not reloaded" "$log" || return 1
	[ "$(sql "SELECT outcome || '|' || error_code FROM audit_log WHERE action = 'access.reload' ORDER BY seq DESC LIMIT 1")" = 'failure|config_invalid' ] || return 1
	# the rules in force stay: web-deployer has no signer grant
	expect_error web-deployer POST /api/sign \
		'{"profile":"release","format":"digest","digest":{"alg":"SHA-256","value":"'"$jws_sha"'"}}' 403 forbidden
}
check "SIGHUP with a grant naming a profile not in force: refused, logged, audited; the rules in force stay" \
	new_profile_refused
RELEASE_NO_DIGEST='{ name = "release"; key = "pkcs11:token=cstest;object=it-scl-release";
      formats = [ "jws", "dsse" ]; typ = "release+jwt"; payload_types = [ "'$INTOTO'" ]; }'
changed_signing_warned() {
	# the grants name profiles in force: reloaded; the signing group differs
	set_conf "signing = { profiles = ( $RELEASE_NO_DIGEST, $TOKENS ); };" "$SIGNER_GRANTS"',
    { identity = "spiffe://credsign.test/web-deployer"; role = "signer"; profiles = [ "release" ]; }'
	reload || return 1
	grep -q "SIGHUP: $conf: its signing settings differ from those in force (profile release: its formats): they take effect at restart" "$log" &&
		grep -q "access rules reloaded from $conf" "$log" || return 1
	[ "$(sql "SELECT outcome FROM audit_log WHERE action = 'access.reload' ORDER BY seq DESC LIMIT 1")" = success ] || return 1
	# the grant is in force; the profile still signs digests until restart
	local got
	got=$(call web-deployer POST /api/sign \
		'{"profile":"release","format":"digest","digest":{"alg":"SHA-256","value":"'"$jws_sha"'"}}')
	[[ "$got" == "200 "* ]] || { echo "  ${got:0:300}"; return 1; }
}
check "SIGHUP with a changed signing group: reloaded (grants), warned that signing changes need a restart" \
	changed_signing_warned

# ---- a key that has signed bare digests, its profile now without digest --------------------
# the first start: the release key had signed nothing yet
check "the first start-up did not warn of keys that have signed bare digests" \
	bash -c "! grep -q 'has signed bare digests' '$log'"
release_kid=$(json_field "$(cat "$t/sign.json")" kid)
stop_daemon
cp "$log" "$log.first"
check "the first daemon (the reloads included) stopped without a sanitizer report" \
	bash -c "! grep -E 'Sanitizer|runtime error' '$log.first'"
# the file already says release signs jws and dsse only (the reload above)
warn_history="key $release_kid of profile release has signed bare digests: any JWS or DSSE signature of it may be a signer's own; rotate the key (docs/delegated-signing.md)"
check_config_history() {
	"$BUILD/bin/credsignd" --check-config "$conf" > "$t/cc-h.out" 2> "$t/cc-h.err" || { cat "$t/cc-h.err"; return 1; }
	grep -q "configuration valid" "$t/cc-h.out" &&
		grep -qF "warning: setting 'signing.profiles.[0].key': $warn_history" "$t/cc-h.err" &&
		[ "$(grep -c 'has signed bare digests' "$t/cc-h.err")" = 1 ] &&
		! grep -q 'digest shares key' "$t/cc-h.err" || { cat "$t/cc-h.err"; return 1; }
}
check "--check-config: the release key has signed digests, its profile now jws/dsse only: warned (once), valid" \
	check_config_history
check_config_history_offline() {
	"$BUILD/bin/credsignd" --check-config "$conf" --offline > "$t/cc-ho.out" 2> "$t/cc-ho.err" ||
		{ cat "$t/cc-ho.err"; return 1; }
	grep -qF "warning: setting 'signing.profiles.[0].key': $warn_history" "$t/cc-ho.err"
}
check "--check-config --offline: the same warning (the store's active key)" check_config_history_offline
start_daemon || exit 1
check "start-up warns that the release key has signed bare digests (rotate it), and starts" \
	grep -qF "setting 'signing.profiles.[0].key': $warn_history" "$log"
check "start-up does not warn of profile tokens' key (it signed no digest)" \
	bash -c "! grep -q 'of profile tokens has signed bare digests' '$log'"
caution_from_history() {
	"${cs[@]}" jwks --profile release > "$t/jwks-release.json" || return 1
	python3 - "$t/jwks-release.json" "$release_kid" <<'PY' || return 1
import json, sys
doc = json.load(open(sys.argv[1]))
key = [k for k in doc["keys"] if k["kid"] == sys.argv[2]][0]
ok = "digest" in key["formats_signed"] and "digest" not in doc["profile"]["formats"]
sys.exit(0 if ok else f"  formats_signed {key['formats_signed']}, profile {doc['profile']}")
PY
	"${cs[@]}" verify-signature --profile release --jws "$t/token.jws" > "$t/vh.out" 2> "$t/vh.err" ||
		{ cat "$t/vh.err"; return 1; }
	grep -q '^VERIFIED JWS$' "$t/vh.out" &&
		grep -q "^credsign: caution: key $release_kid has signed bare digests (formats_signed in the JWKS): " "$t/vh.err" &&
		! grep -q 'its profile allows format digest' "$t/vh.err" || { cat "$t/vh.err"; return 1; }
}
check "verify-signature (JWKS fetched): the profile no longer allows digest, the key's history still cautions" \
	caution_from_history
stop_daemon
cp "$log" "$log.second"
check "the second daemon stopped without a sanitizer report" \
	bash -c "! grep -E 'Sanitizer|runtime error' '$log.second'"

# ---- a profile no longer configured whose keys the store holds -----------------------------
set_conf "signing = { profiles = ( $TOKENS ); };" "$DEFAULT_GRANTS"',
    { identity = "spiffe://credsign.test/ci-deployer"; role = "signer"; profiles = [ "tokens" ]; },
    { identity = "spiffe://credsign.test/auditor"; role = "auditor"; projects = [ "*" ]; profiles = [ "*" ]; }'
warn_unconfigured="the store has 1 key(s) of signing profile release, which is not configured: its JWKS stays served (/.well-known/jwks.json?profile=release) and its signature records readable to grants of profiles \"*\", but it cannot sign"
check_config_unconfigured() {
	"$BUILD/bin/credsignd" --check-config "$conf" > "$t/cc2.out" 2> "$t/cc2.err" || { cat "$t/cc2.err"; return 1; }
	grep -q "configuration valid" "$t/cc2.out" && grep -qF "warning: setting 'signing.profiles': $warn_unconfigured" "$t/cc2.err" &&
		! grep -q "signing profile tokens, which is not configured" "$t/cc2.err"
}
check "--check-config: keys of a profile not configured are warned of, the configuration valid" \
	check_config_unconfigured
warn_unconfigured_history="key $release_kid of signing profile release, which is not configured, has signed bare digests: any JWS or DSSE signature of it may be a signer's own (relying parties: its JWKS, /.well-known/jwks.json?profile=release, says so in formats_signed; docs/delegated-signing.md)"
check "--check-config: the key of the profile not configured has signed digests (for relying parties)" \
	grep -qF "warning: setting 'signing.profiles': $warn_unconfigured_history" "$t/cc2.err"
start_daemon || exit 1
# (the log's logfmt escapes the quotes of "*")
check "start-up warns of the keys of the profile not configured, and starts" \
	grep -qF "setting 'signing.profiles': ${warn_unconfigured//\"/\\\"}" "$log"
check "start-up warns that the key of the profile not configured has signed digests" \
	grep -qF "setting 'signing.profiles': $warn_unconfigured_history" "$log"
check "the profile not configured cannot sign (400 unknown_profile)" \
	expect_error ci-deployer POST /api/sign \
	'{"profile":"release","format":"digest","digest":{"alg":"SHA-256","value":"'"$jws_sha"'"}}' 400 unknown_profile

finish
