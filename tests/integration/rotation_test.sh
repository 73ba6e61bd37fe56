#!/usr/bin/env bash
# The daemon follows the store's key lifecycle without a restart (issue 14,
# the daemon's side), but only to keys whose activation it verifies itself
# under its own configuration: dual control does not rest on
# credsign-admin, nor on the store's rows.
# - a second key activated by a ceremony (two officers of the configured
#   group) while a load client runs generate + certify pairs: the daemon
#   switches within about 2 s, zero failed requests, certificates before
#   carry the old kid and after the new one, all verify against the served
#   JWKS (credsign verify and python3-jwcrypto), which shows both keys with
#   their states and dates; the switch is audited (key.switch); the
#   revocation list is signed by the new key;
# - the active key compromised by a ceremony: certify and /readyz 503
#   no_active_key, the revocation list it signed withdrawn (503
#   revocations_unavailable); another key activated: all back;
# - a chain registered for the active key: certificates carry x5c, the
#   JWKS too;
# - a revocation: the signed list (application/jwt, verified with jwcrypto
#   against the JWKS) lists it within about 2 s, GET /cert/{id} says
#   revoked with time and reason;
# - the rollover statements served as stored, to any client;
# - the store edited as an attacker with the database file would, or a
#   ceremony run by credsign-admin under a rogue configuration: a pending
#   key made active by an UPDATE naming a made-up ceremony; a ceremony
#   approved by officer-x passed off as officer-b (a copy of the
#   configuration listing officer-x.pem under that name: credsign-admin
#   executes it); two keys active (the one-active index dropped): each time
#   the daemon refuses the key, stops signing (certify and /readyz 503
#   no_active_key), logs why and audits key.switch failure once
#   (unverified_ceremony, several_active_keys); a ceremony of the real
#   officers brings signing back;
# - restarted with a retired (or compromised) key configured: reported,
#   and the store's active key signs; restarted on a forged activation:
#   starts not ready, audited; a guard trigger of the store dropped:
#   --check-config and start-up refuse the store, naming the trigger; put
#   back, the daemon starts and signs; it stops cleanly each time.
#
#   rotation_test.sh BUILD_DIR STATE_DIR SOFTHSM_MODULE
BUILD=${1:?}
STATE=${2:?}
SOFTHSM=${3:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_token hot || exit 1
EXTRA_CONF=$(ceremony_group)
it_setup hot || exit 1
py=/usr/bin/python3
officers=$STATE/pki/officers
key_a="pkcs11:token=cstest;object=it-es256-hot"
kid_of() { "${admin[@]}" key jwk --key "$1" | json_field "$(cat)" kid; }
kid_a=$(kid_of "$key_a")
load=$work/load
daemon_at_start=$daemon

now() { date +%s.%N; }
served() { # served PATH FILE: a public document of the daemon (mTLS, any client)
	curl -sf $(client auditor) "$url$1" -o "$2"
}
# sql STATEMENTS...: one transaction on the store, as someone with the
# database file would make it
sql() {
	$py - "$db" "$@" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=10)
db.create_function("now_ms", 0, lambda: __import__("datetime").datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z")
with db:
    for s in sys.argv[2:]:
        db.execute(s)
PY
}
sql_value() { $py -c 'import sqlite3,sys; r=sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone(); print("" if r is None else r[0])' "$db" "$1"; }
# ceremony ACTION KID: a whole ceremony on the daemon's configuration (officers a and b)
ceremony() {
	ceremony_run "$conf" --action "$1" --key "$2" --reason "rotation test" > "$work/ceremony.out" 2>&1 ||
		{ cat "$work/ceremony.out"; return 1; }
}
new_key() { # new_key LABEL: generated in the token, recorded pending; prints its kid
	local out
	out=$("${admin[@]}" key generate --label "$1") || { echo "key generate: $out" >&2; return 1; }
	json_field "$out" kid
}

# certify_to FILE: a fresh certificate's JWS into FILE, its id on stdout
certify_to() {
	local got sid
	got=$(call ci-deployer POST /api/generate "{\"preset\":\"soc2\",$PAYMENTS}")
	[[ "$got" == "200 "* ]] || { echo "generate: $got" >&2; return 1; }
	sid=$(json_field "${got#200 }" generation_session_id)
	got=$(call ci-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$sid\"}")
	[[ "$got" == "201 "* ]] || { echo "certify: $got" >&2; return 1; }
	json_field "${got#201 }" certificate > "$1"
	json_field "${got#201 }" cert_id
}
header_of() { # header_of FILE NAME: a member of a compact JWS's header
	$py -c '
import base64, json, sys
h = open(sys.argv[1]).read().split(".")[0]
print(json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4))).get(sys.argv[2]))' "$1" "$2"
}
# within SECONDS COMMAND...: true once COMMAND succeeds, polled every 0.1 s
within() {
	local limit=$1 start
	shift
	start=$(now)
	while ! "$@" > "$work/within.out" 2>&1; do
		$py -c 'import sys; sys.exit(float(sys.argv[1]) - float(sys.argv[2]) > float(sys.argv[3]))' \
			"$(now)" "$start" "$limit" || { sed 's/^/  /' "$work/within.out"; return 1; }
		sleep 0.1
	done
	echo "  after $($py -c 'import sys; print("%.2f s" % (float(sys.argv[1]) - float(sys.argv[2])))' "$(now)" "$start")"
}
audited() { # audited ACTION OBJECT OUTCOME [ERROR_CODE]: such an entry exists
	$py - "$db" "$@" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=10)
action, obj, outcome = sys.argv[2:5]
code = sys.argv[5] if len(sys.argv) > 5 else None
n = db.execute("SELECT count(*) FROM audit_log WHERE action=? AND object=? AND outcome=? AND error_code IS ?",
               (action, obj, outcome, code)).fetchone()[0]
sys.exit(0 if n >= 1 else 1)
PY
}

audit_n() { # audit_n ACTION OBJECT OUTCOME ERROR_CODE: how many such entries
	sql_value "SELECT count(*) FROM audit_log WHERE action='$1' AND object='$2' AND outcome='$3' AND error_code IS '$4'"
}
# kid_signing KID: the list, a certificate and /readyz say KID signs
kid_signing() {
	local got
	got=$(call operator GET /readyz)
	[[ "$got" == "200 "* && "$got" == *"\"signing_key\":\"$1\""* ]] || { echo "  $got"; return 1; }
	certify_to "$work/signing.jws" > /dev/null || return 1
	[ "$(header_of "$work/signing.jws" kid)" = "$1" ] || return 1
}
# fails_closed KID CODE LOG-PATTERN: within 2.5 s certify and /readyz answer
# 503 no_active_key; the log says why; one key.switch failure for KID, CODE
fails_closed() {
	local got sid
	within 2.5 expect_error ci-deployer GET /readyz "" 503 no_active_key || return 1
	got=$(call operator GET /readyz)
	[[ "$got" == *'"signing_key":"none"'* ]] || { echo "  $got"; return 1; }
	# /readyz says why (the key watch's code), when the watch refused a key
	case $2 in
	no_active_key) ;;
	*) [[ "$got" == *"\"signing_key_problem\":\"$2\""* ]] || { echo "  no problem $2 in: $got"; return 1; } ;;
	esac
	got=$(call ci-deployer POST /api/generate "{\"preset\":\"soc2\",$PAYMENTS}")
	sid=$(json_field "${got#200 }" generation_session_id)
	expect_error ci-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$sid\"}" 503 no_active_key ||
		return 1
	grep -q -- "$3" "$log" || { echo "  no '$3' in the log:"; tail -5 "$log"; return 1; }
	sleep 1.2 # another poll or two: no second entry
	[ "$(audit_n key.switch "$1" failure "$2")" = 1 ] ||
		{ echo "  key.switch $1 failure $2: $(audit_n key.switch "$1" failure "$2") entries"; return 1; }
}
# back_by_ceremony LABEL: a new key activated by a ceremony of the real
# officers: in force within 2.5 s, signing; its kid in $work/kid_LABEL
back_by_ceremony() {
	local kid
	kid=$(new_key "$1") || return 1
	echo "$kid" > "$work/kid_$1"
	ceremony activate "$kid" || return 1
	within 2.5 grep -q "signing key switched to $kid" "$log" || { tail -5 "$log"; return 1; }
	kid_signing "$kid"
}
# list_kid: the kid of the served revocation list's signature
list_kid() {
	served /.well-known/credsign-revocations "$work/list.jwt" || return 1
	header_of "$work/list.jwt" kid
}
list_by() { [ "$(list_kid)" = "$1" ]; }

switch_under_load() {
	local stop=$work/stop-load t_start t_done
	rm -rf "$stop" "$load"
	kid_b=$(new_key it-hot-b) || return 1
	echo "$kid_b" > "$work/kid_b"
	$py "$src/tests/integration/rotation_load.py" 127.0.0.1 "$port" "$pki/ca.pem" \
		"$clients/ci-deployer.pem" "$clients/ci-deployer.key" 4 "$load" "$stop" > "$work/load.json" &
	local loader=$!
	sleep 1.5 # pairs with A
	t_start=$(now)
	ceremony activate "$kid_b" || { touch "$stop"; wait "$loader"; return 1; }
	t_done=$(now)
	within 2.5 grep -q "signing key switched to $kid_b (was $kid_a)" "$log" || {
		echo "  no switch within 2.5 s"
		touch "$stop"
		wait "$loader"
		cat "$log"
		return 1
	}
	sleep 1.5 # pairs with B
	touch "$stop"
	wait "$loader" || return 1
	echo "  load: $(cat "$work/load.json")"
	# no restart: the daemon that started signs on
	kill -0 "$daemon_at_start" && [ "$daemon" = "$daemon_at_start" ] || return 1
	[ "$(grep -c 'credsignd .* starting' "$log")" = 1 ] || return 1
	$py - "$load" "$kid_a" "$kid_b" "$t_start" "$t_done" <<'PY' || { head -5 "$load/errors.txt"; return 1; }
import sys
load, a, b, t_start, t_done = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
errors = open(load + "/errors.txt").read().splitlines()
assert not errors, "%d failed requests" % len(errors)
rows = [l.split("\t") for l in open(load + "/certs.tsv").read().splitlines()]
kids = [r[1] for r in rows]
assert set(kids) == {a, b}, set(kids)
assert kids.count(a) >= 5 and kids.count(b) >= 5, (kids.count(a), kids.count(b))
# before the ceremony began: A; more than a poll and a switch after it ended: B
early_b = [r for r in rows if r[1] == b and float(r[3]) < t_start]
late_a = [r for r in rows if r[1] == a and float(r[2]) > t_done + 2.5]
assert not early_b and not late_a, (early_b[:2], late_a[:2])
# a request sent once a B certificate had come back began after the
# switch: it carries B (the order of sending alone says nothing: a request
# sent earlier on another connection may be taken up later)
first_b_back = min(float(r[3]) for r in rows if r[1] == b)
late = [r for r in rows if r[1] == a and float(r[2]) > first_b_back]
assert not late, "A in requests sent after a B certificate came back: %s" % late[:3]
PY
	audited key.switch "$kid_b" success || { echo "  no key.switch entry"; return 1; }
	# the revocation list: signed by B since the switch
	within 2.5 list_by "$kid_b" || return 1
}
check "B activated by a ceremony under load: switched within 2.5 s without a restart, zero failed requests, A before, B after, audited; B signs the revocation list" \
	switch_under_load
kid_b=$(cat "$work/kid_b" 2>/dev/null)

all_verify() {
	served /.well-known/jwks.json "$work/jwks.json" || return 1
	local f kid n=0 seen=""
	for f in "$load"/cert-*.jws; do
		kid=$(header_of "$f" kid)
		[[ " $seen " == *" $kid "* ]] && [ $((n++ % 20)) -ne 0 ] && continue
		seen="$seen $kid"
		"$BUILD/bin/credsign" verify "$f" --jwks "$work/jwks.json" > "$work/verify.out" 2>&1 ||
			{ echo "  $f ($kid)"; cat "$work/verify.out"; return 1; }
	done
	[[ "$seen" == *"$kid_a"* && "$seen" == *"$kid_b"* ]] || { echo "  verified: $seen"; return 1; }
	$py - "$work/jwks.json" "$load" "$kid_a" "$kid_b" <<'PY'
import glob, json, sys
from jwcrypto import jwk, jws
keys = {k["kid"]: k for k in json.load(open(sys.argv[1]))["keys"]}
a, b = keys[sys.argv[3]], keys[sys.argv[4]]
assert a["status"] == "retired" and b["status"] == "active", keys
assert a["created_at"] and b["created_at"], keys
assert a["activated_at"] <= a["retired_at"] <= b["activated_at"], (a, b)
assert "retired_at" not in b and "compromised_at" not in a and "destroyed_at" not in a, (a, b)
seen = set()
for f in glob.glob(sys.argv[2] + "/cert-*.jws"):
    token = jws.JWS()
    token.deserialize(open(f).read())
    kid = token.jose_header["kid"]
    token.verify(jwk.JWK(**{k: v for k, v in keys[kid].items() if k in ("kty", "crv", "x", "y")}))
    seen.add(kid)
assert seen == {sys.argv[3], sys.argv[4]}, seen
PY
}
check "certificates of A and of B verify against the served JWKS (credsign verify, jwcrypto); JWKS with states and dates" \
	all_verify

compromise_and_recover() {
	local got sid
	ceremony compromise "$kid_b" || return 1
	within 2.5 expect_error ci-deployer GET /readyz "" 503 no_active_key || return 1
	got=$(call operator GET /readyz)
	[[ "$got" == *'"signing_key":"none"'* ]] || { echo "  $got"; return 1; }
	got=$(call ci-deployer POST /api/generate "{\"preset\":\"soc2\",$PAYMENTS}")
	sid=$(json_field "${got#200 }" generation_session_id)
	expect_error ci-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$sid\"}" 503 no_active_key ||
		return 1
	audited key.switch none failure no_active_key || { echo "  no key.switch failure entry"; return 1; }
	# the list B signed is withdrawn at once, long before its next_update
	within 2.5 expect_error auditor GET /.well-known/credsign-revocations "" 503 revocations_unavailable || return 1
	grep -q "revocation list signed by key $kid_b is withdrawn: that key is compromised" "$log" || return 1
	served /.well-known/jwks.json "$work/jwks.json" || return 1
	$py - "$work/jwks.json" "$kid_b" <<'PY' || return 1
import json, sys
b = {k["kid"]: k for k in json.load(open(sys.argv[1]))["keys"]}[sys.argv[2]]
assert b["status"] == "compromised" and b["compromised_at"] >= b["activated_at"], b
PY
	# another key activated by a ceremony: certification, readiness and the list back
	back_by_ceremony it-hot-c || return 1
	kid_c=$(cat "$work/kid_it-hot-c")
	within 2.5 list_by "$kid_c" || return 1
	# the session refused meanwhile was not used up
	got=$(call ci-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$sid\"}")
	[[ "$got" == "201 "* ]] || { echo "  $got"; return 1; }
}
check "B compromised by a ceremony: certify and /readyz 503 no_active_key, its revocation list withdrawn (503); C activated: all back, C signs" \
	compromise_and_recover
kid_c=$(cat "$work/kid_it-hot-c" 2>/dev/null)
kid_now=$kid_c

chain_carried() {
	served /.well-known/jwks.json "$work/jwks.json" || return 1
	# a chain for C from a throwaway CA (what key register-chain records)
	$py - "$work/jwks.json" "$kid_c" > "$work/x5c.json" <<'PY' || return 1
import base64, datetime, json, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
k = {k["kid"]: k for k in json.load(open(sys.argv[1]))["keys"]}[sys.argv[2]]
num = lambda s: int.from_bytes(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)), "big")
pub = ec.EllipticCurvePublicNumbers(num(k["x"]), num(k["y"]), ec.SECP256R1()).public_key()
ca = ec.generate_private_key(ec.SECP256R1())
name = lambda cn: x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
now = datetime.datetime.now(datetime.timezone.utc)
def cert(subject, key, cn):
    return (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(name("rotation test CA"))
            .public_key(key).serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(ca, hashes.SHA256()))
chain = [cert(None, pub, "credsign signing key"), cert(None, ca.public_key(), "rotation test CA")]
print(json.dumps([base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode() for c in chain]))
PY
	sql "UPDATE signing_keys SET x5c_json='$(cat "$work/x5c.json")' WHERE kid='$kid_c'" || return 1
	within 2.5 grep -q "signing key $kid_c in force again (its registered chain changed: x5c)" "$log" || return 1
	certify_to "$work/x5c.jws" > /dev/null || return 1
	served /.well-known/jwks.json "$work/jwks.json" || return 1
	$py - "$work/x5c.jws" "$work/jwks.json" "$work/x5c.json" "$kid_c" <<'PY' || return 1
import json, sys
from jwcrypto import jwk, jws
chain = json.load(open(sys.argv[3]))
keys = {k["kid"]: k for k in json.load(open(sys.argv[2]))["keys"]}
assert keys[sys.argv[4]]["x5c"] == chain, keys[sys.argv[4]]
token = jws.JWS()
token.deserialize(open(sys.argv[1]).read().strip())
assert token.jose_header["x5c"] == chain and token.jose_header["kid"] == sys.argv[4], token.jose_header
token.verify(jwk.JWK(**{k: v for k, v in keys[sys.argv[4]].items() if k in ("kty", "crv", "x", "y")}))
PY
	"$BUILD/bin/credsign" verify "$work/x5c.jws" --jwks "$work/jwks.json" > "$work/verify.out" 2>&1 ||
		{ cat "$work/verify.out"; return 1; }
}
check "a chain registered for C: in force within 2.5 s, certificates and the JWKS carry x5c" chain_carried

# revoked_ids: the served list (compact JWS) verified with jwcrypto against
# the JWKS; prints each revocation as "ID REVOKED_AT REASON"
revoked_ids() {
	served /.well-known/credsign-revocations "$work/revocations.jwt" || return 1
	served /.well-known/jwks.json "$work/jwks.json" || return 1
	$py - "$work/revocations.jwt" "$work/jwks.json" "$url" "$kid_now" <<'PY'
import json, sys, time
from jwcrypto import jwk, jws
keys = {k["kid"]: k for k in json.load(open(sys.argv[2]))["keys"]}
token = jws.JWS()
token.deserialize(open(sys.argv[1]).read().strip())
h = token.jose_header
assert h["typ"] == "credsign-revocations+jwt" and h["alg"] == "ES256" and h["kid"] == sys.argv[4], h
token.verify(jwk.JWK(**{k: v for k, v in keys[h["kid"]].items() if k in ("kty", "crv", "x", "y")}))
claims = json.loads(token.payload)
assert claims["iss"] == sys.argv[3] and claims["next_update"] == claims["iat"] + 3600, claims
assert abs(claims["iat"] - time.time()) < 3600, claims
for r in claims["revoked"]:
    print(r["id"], r["revoked_at"], r["reason"])
PY
}
listed() { # listed "ID REVOKED_AT REASON": the served list says so
	revoked_ids > "$work/revoked.txt" && grep -qxF "$1" "$work/revoked.txt"
}
revocation_listed() {
	local id other got
	id=$(certify_to "$work/revoked.jws") || return 1
	other=$(certify_to "$work/kept.jws") || return 1
	revoked_ids > "$work/revoked.txt" || return 1
	[ ! -s "$work/revoked.txt" ] || { cat "$work/revoked.txt"; return 1; }
	local ctype
	ctype=$(curl -s -o /dev/null -w '%{content_type}' $(client auditor) "$url/.well-known/credsign-revocations")
	[ "$ctype" = application/jwt ] || { echo "  Content-Type $ctype"; return 1; }
	sql "INSERT INTO cert_revocations (cert_id, reason, revoked_at, revoked_by) VALUES ('$id', 'credential leaked in a ticket', '2031-02-03T04:05:06.789Z', 'local:test')" ||
		return 1
	within 2.5 listed "$id 2031-02-03T04:05:06.789Z credential leaked in a ticket" || return 1
	got=$(call auditor GET "/cert/$id")
	$py - "${got#200 }" <<'PY' || { echo "  $got"; return 1; }
import json, sys
d = json.loads(sys.argv[1])
assert d["status"] == "revoked", d
assert d["revocation"] == {"revoked_at": "2031-02-03T04:05:06.789Z", "reason": "credential leaked in a ticket"}, d
PY
	got=$(call auditor GET "/cert/$other")
	[[ "$got" == "200 "*'"status":"valid"'* && "$got" != *'"revocation"'* ]] || { echo "  $got"; return 1; }
}
check "a revocation: listed in the signed list within 2.5 s (jwcrypto against the JWKS), /cert/{id} revoked" \
	revocation_listed

rollover_served() {
	served /.well-known/credsign-rollover "$work/rollover.json" || return 1
	# the statements of the two activate ceremonies, as stored, oldest first
	$py - "$work/rollover.json" "$db" "$kid_b" "$kid_c" <<'PY' || return 1
import base64, json, sqlite3, sys
served = json.load(open(sys.argv[1]))["rollovers"]
stored = [json.loads(r[0]) for r in sqlite3.connect(sys.argv[2]).execute("SELECT statement_json FROM key_rollovers ORDER BY id")]
assert served == stored and len(served) == 2, (served, stored)
claims = [json.loads(base64.urlsafe_b64decode(s["payload"] + "=" * (-len(s["payload"]) % 4))) for s in served]
assert [c["new_kid"] for c in claims] == sys.argv[3:5], claims
assert claims[1]["old_kid"] is None, claims[1] # after the compromise: no trusted old key
PY
	local ctype
	ctype=$(curl -s -o /dev/null -w '%{content_type}' $(client stranger) "$url/.well-known/credsign-rollover")
	[ "$ctype" = application/json ] || { echo "  Content-Type $ctype (an identity without a grant)"; return 1; }
}
check "GET /.well-known/credsign-rollover: the stored statements, to any client (public like the JWKS)" rollover_served

# ---- the store edited, a ceremony under a rogue configuration ---------------------
forged_activation() {
	local kid
	kid=$(new_key it-hot-forged) || return 1
	sql "UPDATE signing_keys SET status='retired', retired_at=now_ms(), retired_by='local:mallory', retired_ceremony='cer_forgedforgedforgedforgedaa' WHERE status='active'" \
		"UPDATE signing_keys SET status='active', activated_at=now_ms(), activated_by='local:mallory', activated_ceremony='cer_forgedforgedforgedforgedaa' WHERE kid='$kid'" ||
		return 1
	fails_closed "$kid" unverified_ceremony \
		"signing key $kid is not put in force: its activating ceremony cer_forgedforgedforgedforgedaa is not in the store" ||
		return 1
	# no ceremony.execute, no rollover statement: nothing but the edit
	[ "$(sql_value "SELECT count(*) FROM ceremonies WHERE subject='$kid'")" = 0 ] || return 1
	back_by_ceremony it-hot-d
}
check "a pending key made active by an UPDATE naming a made-up ceremony: refused, certify and /readyz 503, audited once (unverified_ceremony); a real ceremony brings signing back" \
	forged_activation

rogue_configuration() {
	local kid id out
	kid=$(new_key it-hot-rogue) || return 1
	# a copy of the configuration listing officer-x (of the officer CA, not
	# an officer here) under the name officer-b: credsign-admin accepts it
	sed "s|$officers/officer-b.pem|$officers/officer-x.pem|" "$conf" > "$work/rogue.conf"
	grep -q "officer-x.pem" "$work/rogue.conf" || return 1
	local rogue=("$BUILD/bin/credsign-admin" --config "$work/rogue.conf")
	out=$("${rogue[@]}" ceremony start --action activate --key "$kid" --reason "rogue") || { echo "  $out"; return 1; }
	id=$(json_field "$out" id)
	"${rogue[@]}" ceremony approve "$id" --officer-cert "$officers/officer-a.pem" \
		--officer-key "$officers/officer-a.key" > /dev/null || return 1
	"${rogue[@]}" ceremony approve "$id" --officer-cert "$officers/officer-x.pem" \
		--officer-key "$officers/officer-x.key" > /dev/null || return 1
	"${rogue[@]}" ceremony execute "$id" > "$work/rogue.out" 2>&1 || { cat "$work/rogue.out"; return 1; }
	[ "$(sql_value "SELECT officer FROM ceremony_approvals WHERE ceremony_id='$id' ORDER BY id DESC")" = officer-b ] ||
		return 1
	fails_closed "$kid" unverified_ceremony "signing key $kid is not put in force: ceremony $id: 1 valid approval" ||
		return 1
	grep -q "officer-x.*not listed in ceremony.officers" "$log" || { tail -3 "$log"; return 1; }
	back_by_ceremony it-hot-e
}
check "a ceremony approved under a rogue configuration (officer-x as officer-b), executed by credsign-admin: the daemon refuses it, stops signing (503), audited once" \
	rogue_configuration
kid_e=$(cat "$work/kid_it-hot-e" 2>/dev/null)

two_active() {
	local kid index
	kid=$(new_key it-hot-second) || return 1
	index=$(sql_value "SELECT sql FROM sqlite_master WHERE name='signing_keys_one_active'")
	sql "DROP INDEX signing_keys_one_active" "UPDATE signing_keys SET status='active' WHERE kid='$kid'" || return 1
	fails_closed several several_active_keys "store: 2 keys are active" || return 1
	grep -q "the store has several active signing keys" "$log" || return 1
	# put right: E alone active, the index back
	sql "UPDATE signing_keys SET status='pending' WHERE kid='$kid'" "$index" || return 1
	within 2.5 kid_signing "$kid_e"
}
check "two keys active (the one-active index dropped): certify and /readyz 503, audited once (several_active_keys); put right: E signs again" \
	two_active
kid_now=$kid_e

stops_cleanly() {
	stop_daemon || { echo "  exit $?"; return 1; }
	! grep -E 'Sanitizer|runtime error:' "$log" || return 1
}
check "the daemon that followed the store stops cleanly, no sanitizer report" stops_cleanly

retired_configured() {
	local key
	for key in "$key_a" "pkcs11:token=cstest;object=it-hot-b"; do
		sed -i "s|signing_key = \"[^\"]*\"|signing_key = \"$key\"|" "$conf"
		"$BUILD/bin/credsignd" --check-config "$conf" > "$work/check.out" 2>&1 || { cat "$work/check.out"; return 1; }
		grep -q "warning: setting 'pkcs11.signing_key': $key: names key .*, \(retired\|compromised\) since .*the store's active key $kid_e signs (active since .* by local:.* in ceremony cer_" \
			"$work/check.out" || { cat "$work/check.out"; return 1; }
	done
	grep -q "names key $kid_b, compromised since " "$work/check.out" || { cat "$work/check.out"; return 1; }
	sed -i "s|signing_key = \"[^\"]*\"|signing_key = \"$key_a\"|" "$conf"
	start_daemon || return 1
	grep -q "level=warn .*setting 'pkcs11.signing_key': $key_a: names key $kid_a, retired since " "$log" ||
		{ cat "$log"; return 1; }
	kid_signing "$kid_e" || return 1
	# the list is signed at start, and still lists the revocation
	[ -n "$(revoked_ids)" ] || return 1
}
check "restarted with retired A configured (and compromised B checked): reported, E signs" retired_configured
check "and stops cleanly, no sanitizer report" stops_cleanly

forged_at_start() {
	local kid got
	kid=$(new_key it-hot-forged2) || return 1
	sql "UPDATE signing_keys SET status='retired', retired_at=now_ms() WHERE status='active'" \
		"UPDATE signing_keys SET status='active', activated_at=now_ms(), activated_by='config:pkcs11.signing_key' WHERE kid='$kid'" ||
		return 1
	"$BUILD/bin/credsignd" --check-config "$conf" > "$work/check.out" 2>&1 && { cat "$work/check.out"; return 1; }
	grep -q "setting 'store.path': .*the store's active signing key $kid would not be put in force: it was activated without a ceremony (by config:pkcs11.signing_key), as only a store's first and only active key is, but the store holds [0-9]* rollover statement(s)" \
		"$work/check.out" || { cat "$work/check.out"; return 1; }
	start_daemon || return 1
	fails_closed "$kid" unverified_ceremony "signing key $kid is not put in force: it was activated without a ceremony" ||
		return 1
	stop_daemon || return 1
	# a real ceremony, the daemon stopped: it starts signing
	kid_now=$(new_key it-hot-f) || return 1
	ceremony activate "$kid_now" || return 1
	start_daemon || return 1
	kid_signing "$kid_now"
}
check "restarted on a forged activation (claimed bootstrapped after rotations): --check-config says why, the daemon starts not ready, audited; a ceremony later it signs" \
	forged_at_start
check "and stops cleanly, no sanitizer report" stops_cleanly

dropped_trigger() {
	local create
	create=$(sql_value "SELECT sql FROM sqlite_master WHERE name='signing_keys_lifecycle'")
	sql "DROP TRIGGER signing_keys_lifecycle" || return 1
	"$BUILD/bin/credsignd" --check-config "$conf" > "$work/check.out" 2>&1 && { cat "$work/check.out"; return 1; }
	grep -q "tampered or damaged: trigger signing_keys_lifecycle missing" "$work/check.out" ||
		{ cat "$work/check.out"; return 1; }
	"$BUILD/bin/credsignd" --config "$conf" > "$work/refused.log" 2>&1 && return 1
	grep -q "store $db tampered or damaged: trigger signing_keys_lifecycle missing" "$work/refused.log" ||
		{ cat "$work/refused.log"; return 1; }
	! grep -E 'Sanitizer|runtime error:' "$work/refused.log" || return 1
	# put back as it was: the daemon starts and signs
	sql "$create" || return 1
	start_daemon || return 1
	kid_signing "$kid_now"
}
check "a guard trigger dropped: --check-config and start-up refuse the store naming it; put back, the daemon starts and signs" \
	dropped_trigger
check "and stops cleanly, no sanitizer report" stops_cleanly

finish
