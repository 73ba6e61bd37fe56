#!/usr/bin/env bash
# credsignd --check-config on the keys' states an existing store records
# (issue 18), against a real SoftHSM2 token: the certificate key and a
# signing profile's key as start-up will find them. Each case runs on a
# copy of a store the daemon made (the certificate key and profile
# release bootstrapped), edited as a store edited outside credsign:
#  - the certificate key: compromised (a warning: the daemon starts not
#    ready), its token object gone (refused: "cannot be used");
#  - the one-active index dropped (what two active keys need): the store
#    refuses itself, both key checks say the states cannot be read;
#  - a profile's key: not in the token while the profile never had one
#    (refused: its configured key bootstraps it), retired (a warning: its
#    signatures fail closed), activated by nobody credsign knows (refused:
#    "would not be put in force"), its token object gone (refused: "cannot
#    be used");
#  - keys of profiles the configuration no longer has: one warning per
#    profile with its key count, the name made printable.
# The store copies are only read: each is byte-identical afterwards.
#
#   check_config_keys_test.sh BUILD_DIR STATE_DIR SOFTHSM_MODULE
BUILD=${1:?}
STATE=${2:?}
SOFTHSM=${3:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_token chkkeys || exit 1
it_setup chkkeys || exit 1
stop_daemon
credsignd=$BUILD/bin/credsignd
release_uri="pkcs11:token=cstest;object=it-chkkeys-release"
profiles="signing = { profiles = ( { name = \"release\"; key = \"$release_uri\"; formats = [ \"jws\" ]; typ = \"it+jwt\"; } ); };"
base_conf=$work/base.conf
cp "$conf" "$base_conf"
echo "$profiles" >> "$conf"
# profile release's key, bootstrapped by a start
"${admin[@]}" key generate --label it-chkkeys-release --profile release > "$work/gen.out" 2>&1 ||
	{ cat "$work/gen.out"; exit 1; }
kid_release=$(json_field "$(cat "$work/gen.out")" kid)
start_daemon || exit 1
wait_for_log "is now the active key of signing profile release" || { cat "$log"; exit 1; }
stop_daemon
kid_cert=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(
	"SELECT kid FROM signing_keys WHERE status = '"'active'"' AND profile IS NULL").fetchone()[0])' "$db")
profiled_conf=$conf

# scenario NAME CONF [SQL]: $work/NAME.conf, CONF with the store of its own
# $work/NAME/credsign.db, a copy of the daemon's store with SQL applied
scenario() {
	local name=$1 from=$2 sql=${3:-}
	mkdir -p "$work/$name"
	rm -f "$work/$name"/credsign.db*
	python3 - "$db" "$work/$name/credsign.db" "$sql" <<'PY' || return 1
import sqlite3, sys
src, dst = sqlite3.connect(sys.argv[1]), sqlite3.connect(sys.argv[2])
src.backup(dst)
dst.executescript(sys.argv[3])
dst.commit()
dst.execute("PRAGMA journal_mode = DELETE")
PY
	chown -R "$SERVICE_USER:" "$work/$name"
	sed "s|$db|$work/$name/credsign.db|" "$from" > "$work/$name.conf"
	chmod 644 "$work/$name.conf"
	sha256sum "$work/$name/credsign.db" > "$work/$name.sum"
}

# checked NAME RC PATTERN...: --check-config on $work/NAME.conf exits RC,
# says each PATTERN (fixed strings) and leaves the store as it was
checked() {
	local name=$1 want=$2 out rc p
	shift 2
	out=$(timeout 30 "$credsignd" --check-config "$work/$name.conf" 2>&1)
	rc=$?
	[ "$rc" -eq "$want" ] || { echo "  exit $rc: $out"; return 1; }
	for p in "$@"; do
		[[ "$out" == *"$p"* ]] || { echo "  no '$p' in: $out"; return 1; }
	done
	sha256sum -c --quiet "$work/$name.sum" || { echo "  the store changed"; return 1; }
}

scenario intact "$profiled_conf"
check "--check-config: the store as the daemon left it is valid" checked intact 0 "configuration valid"

# ---- the certificate key -----------------------------------------------------------
scenario cert-compromised "$profiled_conf" \
	"UPDATE signing_keys SET status = 'compromised' WHERE kid = '$kid_cert';"
check "certificate key compromised: a warning (starts not ready, 503 no_active_key), still valid" \
	checked cert-compromised 0 \
	"warning: setting 'store.path': $work/cert-compromised/credsign.db: the store has no active signing key (the last one was compromised)" \
	"configuration valid"
# two active keys need the one-active index dropped: the store refuses
# itself then, and both key checks say the states cannot be read
scenario one-active-dropped "$profiled_conf" "DROP INDEX signing_keys_one_active;"
check "a store whose one-active index was dropped: refused as tampered, by the certificate and the profile check" \
	checked one-active-dropped 1 \
	"setting 'store.path': $work/one-active-dropped/credsign.db: the signing keys' states cannot be read" \
	"setting 'store.path': $work/one-active-dropped/credsign.db: the signing profiles' keys cannot be read" \
	"index signing_keys_one_active missing (dropped outside credsign)"
scenario cert-gone "$profiled_conf" \
	"UPDATE signing_keys SET uri = 'pkcs11:token=cstest;object=no-such-key' WHERE kid = '$kid_cert';"
check "certificate key not in the token: refused, the key named (it cannot be used)" \
	checked cert-gone 1 "the store's active signing key $kid_cert cannot be used"

# ---- a signing profile's key ---------------------------------------------------------
# (signing keys are never deleted: a profile of another name never had one)
sed -e "s|$release_uri|pkcs11:token=cstest;object=no-such-release|" -e 's|name = "release"|name = "fresh"|' \
	"$profiled_conf" > "$work/missing.in"
scenario profile-new "$work/missing.in"
check "profile key not in the token, profile never had a key: refused, its key bootstraps it" \
	checked profile-new 1 "setting 'signing.profiles.[0].key': pkcs11:token=cstest;object=no-such-release: " \
	"the profile never had an active key: its configured key bootstraps it"
scenario profile-retired "$profiled_conf" \
	"UPDATE signing_keys SET status = 'retired' WHERE kid = '$kid_release';"
check "profile key retired: a warning (its signatures fail closed), still valid" \
	checked profile-retired 0 \
	"warning: setting 'signing.profiles.[0].key': the store has no active key of signing profile release" \
	"configuration valid"
scenario profile-unwarranted "$profiled_conf" \
	"UPDATE signing_keys SET activated_by = 'mallory' WHERE kid = '$kid_release';"
check "profile key activated by nobody credsign knows: refused, would not be put in force" \
	checked profile-unwarranted 1 \
	"the store's active key $kid_release of signing profile release would not be put in force"
scenario profile-gone "$profiled_conf" \
	"UPDATE signing_keys SET uri = 'pkcs11:token=cstest;object=no-such-key' WHERE kid = '$kid_release';"
check "profile key not in the token: refused, the key named (it cannot be used)" \
	checked profile-gone 1 "the store's active key $kid_release of signing profile release cannot be used"

# ---- keys of profiles no longer configured -------------------------------------------
scenario unconfigured "$base_conf" "
	INSERT INTO signing_keys (kid, uri, jwk_json, status, profile)
	SELECT 'y' || kid, uri, jwk_json, 'retired', 'release' FROM signing_keys WHERE kid = '$kid_release';
	INSERT INTO signing_keys (kid, uri, jwk_json, status, profile)
	SELECT 'z' || kid, uri, jwk_json, 'retired', 'old' || char(1) || 'name' FROM signing_keys WHERE kid = '$kid_release';"
check "keys of profiles not configured: one warning per profile with its count, names made printable" \
	checked unconfigured 0 \
	"the store has 2 key(s) of signing profile release, which is not configured" \
	"the store has 1 key(s) of signing profile old?name, which is not configured" "configuration valid"

finish
