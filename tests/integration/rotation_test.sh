#!/usr/bin/env bash
# The daemon follows the store's key lifecycle without a restart (issue 14,
# the daemon's side). The store is changed directly, as a committed
# ceremony leaves it (credsign-admin ceremonies have their own test):
# - a second key activated (the first retired) while a load client runs
#   generate + certify pairs: the daemon switches within about 2 s, zero
#   failed requests, certificates before carry the old kid and after the
#   new one, all verify against the served JWKS (credsign verify and
#   python3-jwcrypto), which shows both keys with their states and dates;
#   the switch is audited (key.switch);
# - the active key compromised: certify 503 no_active_key and /readyz not
#   ready naming it; another key activated: both back;
# - a chain registered for the active key: certificates carry x5c, the
#   JWKS too;
# - a revocation: the signed list (application/jwt, verified with jwcrypto
#   against the JWKS) lists it within about 2 s, GET /cert/{id} says
#   revoked with time and reason;
# - the rollover statements served as stored, to any client;
# - restarted with a retired (or compromised) key configured: reported,
#   and the store's active key signs; the daemon stops cleanly each time.
#
#   rotation_test.sh BUILD_DIR STATE_DIR SOFTHSM_MODULE
BUILD=${1:?}
STATE=${2:?}
SOFTHSM=${3:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_token hot || exit 1
it_setup hot || exit 1
py=/usr/bin/python3
key_a="pkcs11:token=cstest;object=it-es256-hot"
kid_of() { "${admin[@]}" key jwk --key "$1" | json_field "$(cat)" kid; }
kid_a=$(kid_of "$key_a")
load=$work/load
daemon_at_start=$daemon

now() { date +%s.%N; }
served() { # served PATH FILE: a public document of the daemon (mTLS, any client)
	curl -sf $(client auditor) "$url$1" -o "$2"
}
# sql STATEMENTS...: one transaction on the store, as a ceremony commits it
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
# activate KID (the active one retired, unless none) in ceremony CER
activate() {
	sql "UPDATE signing_keys SET status='retired', retired_at=now_ms(), retired_by='local:test', retired_ceremony='$2' WHERE status='active'" \
		"UPDATE signing_keys SET status='active', activated_at=now_ms(), activated_by='local:test', activated_ceremony='$2' WHERE kid='$1'"
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

switch_under_load() {
	local stop=$work/stop-load t_change
	rm -rf "$stop" "$load"
	kid_b=$(new_key it-hot-b) || return 1
	echo "$kid_b" > "$work/kid_b"
	$py "$src/tests/integration/rotation_load.py" 127.0.0.1 "$port" "$pki/ca.pem" \
		"$clients/ci-deployer.pem" "$clients/ci-deployer.key" 4 "$load" "$stop" > "$work/load.json" &
	local loader=$!
	sleep 1.5 # pairs with A
	t_change=$(now)
	activate "$kid_b" cer_hot_1 || { touch "$stop"; wait "$loader"; return 1; }
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
	$py - "$load" "$kid_a" "$kid_b" "$t_change" <<'PY' || { head -5 "$load/errors.txt"; return 1; }
import sys
load, a, b, t_change = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
errors = open(load + "/errors.txt").read().splitlines()
assert not errors, "%d failed requests" % len(errors)
rows = [l.split("\t") for l in open(load + "/certs.tsv").read().splitlines()]
kids = [r[1] for r in rows]
assert set(kids) == {a, b}, set(kids)
assert kids.count(a) >= 5 and kids.count(b) >= 5, (kids.count(a), kids.count(b))
# before the store changed: A; more than a poll and a switch after: B
early_b = [r for r in rows if r[1] == b and float(r[3]) < t_change]
late_a = [r for r in rows if r[1] == a and float(r[2]) > t_change + 2.5]
assert not early_b and not late_a, (early_b[:2], late_a[:2])
# a request sent once a B certificate had come back began after the
# switch: it carries B (the order of sending alone says nothing: a request
# sent earlier on another connection may be taken up later)
first_b_back = min(float(r[3]) for r in rows if r[1] == b)
late = [r for r in rows if r[1] == a and float(r[2]) > first_b_back]
assert not late, "A in requests sent after a B certificate came back: %s" % late[:3]
PY
	audited key.switch "$kid_b" success || { echo "  no key.switch entry"; return 1; }
}
check "B activated under load: switched within 2.5 s without a restart, zero failed requests, A before, B after, audited" \
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
	local got kid_c
	sql "UPDATE signing_keys SET status='compromised', compromised_at=now_ms(), compromised_by='local:test', compromised_ceremony='cer_hot_2' WHERE kid='$kid_b'" ||
		return 1
	within 2.5 expect_error ci-deployer GET /readyz "" 503 no_active_key || return 1
	got=$(call operator GET /readyz)
	[[ "$got" == *'"signing_key":"none"'* ]] || { echo "  $got"; return 1; }
	got=$(call ci-deployer POST /api/generate "{\"preset\":\"soc2\",$PAYMENTS}")
	local sid
	sid=$(json_field "${got#200 }" generation_session_id)
	expect_error ci-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$sid\"}" 503 no_active_key ||
		return 1
	audited key.switch none failure no_active_key || { echo "  no key.switch failure entry"; return 1; }
	served /.well-known/jwks.json "$work/jwks.json" || return 1
	$py - "$work/jwks.json" "$kid_b" <<'PY' || return 1
import json, sys
b = {k["kid"]: k for k in json.load(open(sys.argv[1]))["keys"]}[sys.argv[2]]
assert b["status"] == "compromised" and b["compromised_at"] >= b["activated_at"], b
PY
	# another key activated: certification and readiness back
	kid_c=$(new_key it-hot-c) || return 1
	echo "$kid_c" > "$work/kid_c"
	activate "$kid_c" cer_hot_3 || return 1
	within 2.5 grep -q "signing key switched to $kid_c" "$log" || { cat "$log"; return 1; }
	got=$(call operator GET /readyz)
	[[ "$got" == "200 "* && "$got" == *"\"signing_key\":\"$kid_c\""* ]] || { echo "  $got"; return 1; }
	certify_to "$work/c.jws" > /dev/null || return 1
	[ "$(header_of "$work/c.jws" kid)" = "$kid_c" ] || return 1
	# the session refused meanwhile was not used up
	got=$(call ci-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$sid\"}")
	[[ "$got" == "201 "* ]] || { echo "  $got"; return 1; }
}
check "B compromised: certify and /readyz 503 no_active_key; C activated: both back, C signs" compromise_and_recover
kid_c=$(cat "$work/kid_c" 2>/dev/null)

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
	$py - "$work/revocations.jwt" "$work/jwks.json" "$url" "$kid_c" <<'PY'
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
	[ "$(cat "$work/rollover.json")" = '{"rollovers":[]}' ] || { cat "$work/rollover.json"; return 1; }
	# a statement as an activate ceremony stores it (its signatures are the ceremony test's)
	local statement='{"payload":"eyJ0eXBlIjoiY3JlZHNpZ24tcm9sbG92ZXIvdjEifQ","signatures":[{"protected":"e30","signature":"AA"}]}'
	sql "INSERT INTO key_rollovers (ceremony_id, old_kid, new_kid, statement_json, created_at) VALUES ('cer_hot_3', '$kid_b', '$kid_c', '$statement', now_ms())" ||
		return 1
	served /.well-known/credsign-rollover "$work/rollover.json" || return 1
	$py - "$work/rollover.json" "$statement" <<'PY' || return 1
import json, sys
assert json.load(open(sys.argv[1])) == {"rollovers": [json.loads(sys.argv[2])]}, open(sys.argv[1]).read()
PY
	local ctype
	ctype=$(curl -s -o /dev/null -w '%{content_type}' $(client stranger) "$url/.well-known/credsign-rollover")
	[ "$ctype" = application/json ] || { echo "  Content-Type $ctype (an identity without a grant)"; return 1; }
}
check "GET /.well-known/credsign-rollover: the stored statements, to any client (public like the JWKS)" rollover_served

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
		grep -q "warning: setting 'pkcs11.signing_key': $key: names key .*, \(retired\|compromised\) since .*the store's active key $kid_c signs (active since .* by local:test in ceremony cer_hot_3)" \
			"$work/check.out" || { cat "$work/check.out"; return 1; }
	done
	grep -q "names key $kid_b, compromised since " "$work/check.out" || { cat "$work/check.out"; return 1; }
	sed -i "s|signing_key = \"[^\"]*\"|signing_key = \"$key_a\"|" "$conf"
	start_daemon || return 1
	grep -q "level=warn .*setting 'pkcs11.signing_key': $key_a: names key $kid_a, retired since " "$log" ||
		{ cat "$log"; return 1; }
	certify_to "$work/after-restart.jws" > /dev/null || return 1
	[ "$(header_of "$work/after-restart.jws" kid)" = "$kid_c" ] || return 1
	# the list is signed at start, and still lists the revocation
	[ -n "$(revoked_ids)" ] || return 1
}
check "restarted with retired A configured (and compromised B checked): reported, C signs" retired_configured
check "and stops cleanly, no sanitizer report" stops_cleanly

finish
