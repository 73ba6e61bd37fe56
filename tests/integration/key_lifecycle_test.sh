#!/usr/bin/env bash
# The signing key's lifecycle (issue 14, first step): a retired key never
# becomes active again. Start with key A, restart with key B (A retired),
# point pkcs11.signing_key back at A: --check-config reports it and the
# daemon refuses to start (fail closed), the store unchanged; key list
# shows both keys with their states and dates.
#
#   key_lifecycle_test.sh BUILD_DIR STATE_DIR SOFTHSM_MODULE
BUILD=${1:?}
STATE=${2:?}
SOFTHSM=${3:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_token keys || exit 1
it_setup keys || exit 1

key_a="pkcs11:token=cstest;object=it-es256-keys"
key_b="pkcs11:token=cstest;object=it-es256-keys-b"
kid_of() { "${admin[@]}" key jwk --key "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["kid"])'; }
use_key() { sed -i "s|signing_key = \"[^\"]*\"|signing_key = \"$1\"|" "$conf"; }
# the keys table and the audit log, as rows (what "unchanged" compares)
store_dump() {
	python3 - "$db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for row in db.execute("SELECT kid, uri, status, created_at FROM signing_keys ORDER BY kid"):
    print(row)
for row in db.execute("SELECT seq, action, object, outcome FROM audit_log ORDER BY seq"):
    print(row)
PY
}
kid_a=$(kid_of "$key_a")

rotate_to_b() {
	stop_daemon
	"${admin[@]}" key generate --label it-es256-keys-b > /dev/null || return 1
	kid_b=$(kid_of "$key_b")
	use_key "$key_b"
	start_daemon || return 1
	grep -q "signing key $kid_b is now the active key" "$log" || { cat "$log"; return 1; }
	stop_daemon
}
check "restart with key B: B active" rotate_to_b

list_shows_both() {
	"${admin[@]}" key list --format json > "$work/keys.json" || return 1
	python3 - "$work/keys.json" "$kid_a" "$kid_b" "$key_a" <<'PY' || { cat "$work/keys.json"; return 1; }
import json, sys
keys = {k["kid"]: k for k in json.load(open(sys.argv[1]))["keys"]}
a, b = keys[sys.argv[2]], keys[sys.argv[3]]
assert len(keys) == 2, keys
assert a["state"] == "retired" and b["state"] == "active", keys
assert a["uri"] == sys.argv[4], a
assert a["created"] and a["activated"] and a["retired"], a
assert b["activated"] and b["retired"] is None, b
assert a["retired"] >= a["activated"] and b["activated"] >= a["retired"], (a, b)
PY
	"${admin[@]}" key list > "$work/keys.txt" || return 1
	grep -q "^$kid_a  *retired " "$work/keys.txt" && grep -q "^$kid_b  *active " "$work/keys.txt" ||
		{ cat "$work/keys.txt"; return 1; }
}
check "key list: A retired, B active, with their dates (text and json)" list_shows_both

back_to_a_refused() {
	local before after since rc
	before=$(store_dump)
	since=$(python3 -c 'import json,sys; print({k["kid"]: k for k in json.load(open(sys.argv[1]))["keys"]}[sys.argv[2]]["retired"])' \
		"$work/keys.json" "$kid_a")
	use_key "$key_a"
	local want="key $kid_a is retired (since $since): a retired or compromised key never becomes active again; rotation is a ceremony (credsign-admin, issue 14)"
	# --check-config (online) reports it as a problem of the setting
	"$BUILD/bin/credsignd" --check-config "$conf" > "$work/check.out" 2>&1 && { cat "$work/check.out"; return 1; }
	grep -qF "setting 'pkcs11.signing_key': $want" "$work/check.out" || { cat "$work/check.out"; return 1; }
	grep -q "configuration invalid" "$work/check.out" || return 1
	# the daemon refuses to start: fail closed
	timeout 60 "$BUILD/bin/credsignd" --config "$conf" > "$log" 2>&1
	rc=$?
	[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || { echo "  credsignd exited $rc"; cat "$log"; return 1; }
	grep -qF "setting 'pkcs11.signing_key': $want" "$log" || { cat "$log"; return 1; }
	after=$(store_dump)
	[ "$before" = "$after" ] || { echo "  the store changed:"; diff <(echo "$before") <(echo "$after"); return 1; }
}
check "configured back to retired key A: --check-config reports it, start refused, store unchanged" back_to_a_refused

b_still_starts() {
	use_key "$key_b"
	"$BUILD/bin/credsignd" --check-config "$conf" > "$work/check.out" 2>&1 || { cat "$work/check.out"; return 1; }
	start_daemon || return 1
	stop_daemon
	"${admin[@]}" key list --format json | python3 -c '
import json, sys
keys = {k["kid"]: k["state"] for k in json.load(sys.stdin)["keys"]}
assert keys == {sys.argv[1]: "retired", sys.argv[2]: "active"}, keys' "$kid_a" "$kid_b"
}
check "with key B again: valid, starts, states unchanged" b_still_starts

finish
