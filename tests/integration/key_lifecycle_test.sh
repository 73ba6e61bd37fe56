#!/usr/bin/env bash
# The signing key's lifecycle (issue 14): the store decides which key
# signs, not the configuration. Start with key A (a store that never had
# an active key: A bootstraps it); point pkcs11.signing_key at a new key B
# and restart: A keeps signing, and start-up and --check-config report B
# (not the active key) and name A and who activated it; B activated by a
# ceremony of two officers (A retired), point the
# configuration back at retired A: --check-config is valid and reports A
# retired since when, the daemon starts and B signs, the keys' states
# unchanged.
#
#   key_lifecycle_test.sh BUILD_DIR STATE_DIR SOFTHSM_MODULE
BUILD=${1:?}
STATE=${2:?}
SOFTHSM=${3:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_token keys || exit 1
EXTRA_CONF=$(ceremony_group)
it_setup keys || exit 1

key_a="pkcs11:token=cstest;object=it-es256-keys"
key_b="pkcs11:token=cstest;object=it-es256-keys-b"
kid_of() { "${admin[@]}" key jwk --key "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["kid"])'; }
use_key() { sed -i "s|signing_key = \"[^\"]*\"|signing_key = \"$1\"|" "$conf"; }
# the keys table as rows (what "unchanged" compares)
keys_dump() {
	python3 - "$db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for row in db.execute("SELECT kid, uri, status, activated_at, retired_at, compromised_at FROM signing_keys ORDER BY kid"):
    print(row)
PY
}
# the kid in the header of a fresh certificate
certify_kid() {
	local got sid
	got=$(call ci-deployer POST /api/generate "{\"preset\":\"soc2\",$PAYMENTS}")
	[[ "$got" == "200 "* ]] || { echo "  generate: $got"; return 1; }
	sid=$(json_field "${got#200 }" generation_session_id)
	got=$(call ci-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$sid\"}")
	[[ "$got" == "201 "* ]] || { echo "  certify: $got"; return 1; }
	python3 -c '
import base64, json, sys
h = json.loads(sys.argv[1])["certificate"].split(".")[0]
print(json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)))["kid"])' "${got#201 }"
}
kid_a=$(kid_of "$key_a")

a_bootstrapped() {
	grep -q "signing key $kid_a is now the active key: the store had none (bootstrap from setting 'pkcs11.signing_key')" \
		"$log" || { cat "$log"; return 1; }
	[ "$(certify_kid)" = "$kid_a" ] || return 1
	stop_daemon
}
check "a store that never had an active key: the configured key A bootstraps it" a_bootstrapped

b_configured_a_signs() {
	"${admin[@]}" key generate --label it-es256-keys-b > /dev/null || return 1
	kid_b=$(kid_of "$key_b")
	use_key "$key_b"
	local before
	before=$(keys_dump)
	# --check-config: valid, with a warning naming both keys
	"$BUILD/bin/credsignd" --check-config "$conf" > "$work/check.out" 2>&1 || { cat "$work/check.out"; return 1; }
	grep -q "warning: setting 'pkcs11.signing_key': $key_b: names key $kid_b, pending since .*the store's active key $kid_a signs (active since .* by config:pkcs11.signing_key)" \
		"$work/check.out" || { cat "$work/check.out"; return 1; }
	grep -q "configuration valid" "$work/check.out" || return 1
	start_daemon || return 1
	[ "$(certify_kid)" = "$kid_a" ] || return 1
	wait_for_log "setting 'pkcs11.signing_key': $key_b: names key $kid_b, pending" || { cat "$log"; return 1; }
	grep -q 'level=warn' <(grep "names key $kid_b" "$log") || { cat "$log"; return 1; }
	stop_daemon
	[ "$before" = "$(keys_dump)" ] || { echo "  the keys changed:"; diff <(echo "$before") <(keys_dump); return 1; }
}
check "configured key B (pending): reported at start and by --check-config, A keeps signing, nothing changes" \
	b_configured_a_signs

# B active, A retired: an activate ceremony of two officers
out=$(ceremony_run "$conf" --action activate --key "$kid_b" --reason "lifecycle test") || { echo "$out"; exit 1; }
cer=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT activated_ceremony FROM signing_keys WHERE kid=?", (sys.argv[2],)).fetchone()[0])' "$db" "$kid_b")
actor=local:$(id -un)

back_to_retired_a() {
	local before since
	use_key "$key_a"
	before=$(keys_dump)
	since=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT retired_at FROM signing_keys WHERE kid=?", (sys.argv[2],)).fetchone()[0])' "$db" "$kid_a")
	local want="setting 'pkcs11.signing_key': $key_a: names key $kid_a, retired since $since by $actor in ceremony $cer; the configuration does not choose the active key (it only bootstraps a store that never had one; keys change by ceremony, credsign-admin ceremony): the store's active key $kid_b signs (active since "
	"$BUILD/bin/credsignd" --check-config "$conf" > "$work/check.out" 2>&1 || { cat "$work/check.out"; return 1; }
	grep -qF "warning: $want" "$work/check.out" || { cat "$work/check.out"; return 1; }
	grep -q "by $actor in ceremony $cer)$" "$work/check.out" || { cat "$work/check.out"; return 1; }
	# the daemon starts: B, the store's active key, signs
	start_daemon || return 1
	[ "$(certify_kid)" = "$kid_b" ] || return 1
	grep -qF "$want" "$log" || { cat "$log"; return 1; }
	stop_daemon
	[ "$before" = "$(keys_dump)" ] || { echo "  the keys changed:"; diff <(echo "$before") <(keys_dump); return 1; }
}
check "configured back to retired key A: valid, reported with its state and since when, B signs, states unchanged" \
	back_to_retired_a

b_configured_no_warning() {
	use_key "$key_b"
	"$BUILD/bin/credsignd" --check-config "$conf" > "$work/check.out" 2>&1 || { cat "$work/check.out"; return 1; }
	! grep -q "pkcs11.signing_key" "$work/check.out" || { cat "$work/check.out"; return 1; }
	start_daemon || return 1
	[ "$(certify_kid)" = "$kid_b" ] || return 1
	stop_daemon
	! grep -q "names key" "$log" || { cat "$log"; return 1; }
}
check "configured key B, the active one: nothing to report" b_configured_no_warning

finish
