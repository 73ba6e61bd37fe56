#!/usr/bin/env bash
# Key rotation in a dual-control ceremony under load (issue 14, must show):
# a load client runs generate + certify pairs on 4 keep-alive connections
# while a new key is generated, a ceremony started, approved by two
# officers and executed; the running daemon switches keys without a restart.
# Zero failed requests; certificates from before carry the old kid and
# still verify (credsign verify, python3-jwcrypto) against the served JWKS,
# those after carry the new kid; the rollover statement's two signatures
# verify. Then: pointing the configuration back at the retired key changes
# nothing but is reported; compromising the old key makes its certificates
# fail with key_compromised; a revoked certificate fails --online.
#
#   rotation_ceremony_test.sh BUILD_DIR STATE_DIR SOFTHSM_MODULE
BUILD=${1:?}
STATE=${2:?}
SOFTHSM=${3:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_token rotation || exit 1
officers=$STATE/pki/officers
EXTRA_CONF=$(ceremony_group)
it_setup rotation || exit 1
py=/usr/bin/python3
old_uri="pkcs11:token=cstest;object=it-es256-rotation"
kid_old=$("${admin[@]}" key jwk --key "$old_uri" | json_field "$(cat)" kid)
load=$work/load
sql_count() { $py -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' "$db" "$1"; }
served() { # served PATH FILE: a public document of the daemon
	curl -sf $(client auditor) "$url$1" -o "$2"
}

rotate_under_load() {
	local stop=$work/stop-load out id kid_new
	rm -f "$stop"
	$py "$src/tests/integration/rotation_load.py" 127.0.0.1 "$port" "$pki/ca.pem" \
		"$clients/ci-deployer.pem" "$clients/ci-deployer.key" 4 "$load" "$stop" > "$work/load.json" &
	local loader=$!
	sleep 2 # pairs with the old key
	out=$("${admin[@]}" key generate --label it-rotation-new) || { echo "  $out"; kill "$loader"; return 1; }
	kid_new=$(json_field "$out" kid)
	echo "$kid_new" > "$work/kid_new"
	json_field "$out" uri > "$work/uri_new"
	[ "$(json_field "$out" state)" = pending ] || { echo "  $out"; return 1; }
	out=$("${admin[@]}" ceremony start --action activate --key "$kid_new" --reason "scheduled rotation") ||
		{ echo "  start: $out"; touch "$stop"; return 1; }
	id=$(json_field "$out" id)
	echo "$id" > "$work/ceremony_id"
	for o in officer-a officer-b; do
		"${admin[@]}" ceremony approve "$id" --officer-cert "$officers/$o.pem" --officer-key "$officers/$o.key" \
			> "$work/approve-$o.out" 2>&1 || { cat "$work/approve-$o.out"; touch "$stop"; return 1; }
	done
	"${admin[@]}" ceremony execute "$id" > "$work/execute.out" 2>&1 || { cat "$work/execute.out"; touch "$stop"; return 1; }
	# the daemon takes the new key within its poll; keep the load on a while after
	for _ in $(seq 50); do
		grep -q -- "$kid_new" "$load"/certs.tsv 2>/dev/null && break
		[ -n "$(grep -l "\"kid\":\"$kid_new\"" "$load"/cert-*.jws 2>/dev/null | head -1)" ] && break
		sleep 0.1
	done
	sleep 2
	touch "$stop"
	wait "$loader" || return 1
	cat "$work/load.json"
	$py - "$load" "$kid_old" "$kid_new" <<'PY' || { head -5 "$load/errors.txt"; return 1; }
import sys
load, old, new = sys.argv[1:4]
errors = open(load + "/errors.txt").read().splitlines()
rows = [l.split("\t") for l in open(load + "/certs.tsv").read().splitlines()]
assert not errors, "%d failed requests" % len(errors)
kids = [r[1] for r in rows]
assert kids.count(old) >= 10 and kids.count(new) >= 10, (kids.count(old), kids.count(new))
assert set(kids) == {old, new}, set(kids)
# the switch is one point: once a certificate with the new key was
# answered, no request sent after that gets the old key (one in flight at
# the switch finishes with the key it started with)
first_new_answered = min(float(r[3]) for r in rows if r[1] == new)
late_old = [r for r in rows if r[1] == old and float(r[2]) > first_new_answered]
assert not late_old, "old key used for requests sent after the switch: %s" % late_old[:3]
PY
}
check "rotation under load: key generate (pending), ceremony start, two approvals, execute; zero failed requests" \
	rotate_under_load
kid_new=$(cat "$work/kid_new" 2>/dev/null)
id=$(cat "$work/ceremony_id" 2>/dev/null)

all_verify() {
	served /.well-known/jwks.json "$work/jwks.json" || return 1
	local n=0 f
	for f in "$load"/cert-*.jws; do
		n=$((n + 1))
		# every tenth with the client (each is a process), all with jwcrypto below
		[ $((n % 10)) -eq 0 ] || continue
		"$BUILD/bin/credsign" verify "$f" --jwks "$work/jwks.json" > /dev/null 2> "$work/verify.err" ||
			{ echo "  $f"; cat "$work/verify.err"; return 1; }
	done
	$py - "$work/jwks.json" "$load" "$kid_old" "$kid_new" <<'PY'
import glob, json, sys
from jwcrypto import jwk, jws
keys = json.load(open(sys.argv[1]))["keys"]
by_kid = {k["kid"]: k for k in keys}
old, new = sys.argv[3], sys.argv[4]
assert by_kid[old]["status"] == "retired" and by_kid[new]["status"] == "active", by_kid
assert by_kid[old]["activated_at"] <= by_kid[old]["retired_at"] and by_kid[new]["activated_at"], by_kid
seen = set()
for f in glob.glob(sys.argv[2] + "/cert-*.jws"):
    token = jws.JWS()
    token.deserialize(open(f).read())
    kid = token.jose_header["kid"]
    token.verify(jwk.JWK(**{k: v for k, v in by_kid[kid].items() if k in ("kty", "crv", "x", "y", "kid")}))
    seen.add(kid)
assert seen == {old, new}, seen
PY
}
check "certificates from before (old kid) and after (new kid) verify against the served JWKS (credsign verify, jwcrypto)" all_verify

rollover_verifies() {
	served /.well-known/credsign-rollover "$work/rollover.json" || return 1
	$py - "$work/rollover.json" "$work/jwks.json" "$kid_old" "$kid_new" "$id" <<'PY'
import base64, json, sys
from jwcrypto import jwk, jws
doc = json.load(open(sys.argv[1]))
keys = {k["kid"]: k for k in json.load(open(sys.argv[2]))["keys"]}
old, new, ceremony = sys.argv[3:6]
assert len(doc["rollovers"]) == 1, doc
statement = doc["rollovers"][0]
payload = json.loads(base64.urlsafe_b64decode(statement["payload"] + "=" * (-len(statement["payload"]) % 4)))
assert payload["old_kid"] == old and payload["new_kid"] == new and payload["ceremony_id"] == ceremony, payload
assert payload["new_jwk"]["x"] == keys[new]["x"] and payload["time"], payload
assert len(payload["approvals"]) == 2, payload
signers = [json.loads(base64.urlsafe_b64decode(s["protected"] + "=" * (-len(s["protected"]) % 4)))["kid"]
           for s in statement["signatures"]]
assert signers == [old, new], signers
for kid in (old, new):
    token = jws.JWS()
    token.deserialize(json.dumps(statement))
    token.verify(jwk.JWK(**{k: v for k, v in keys[kid].items() if k in ("kty", "crv", "x", "y")}))
# jwcrypto verifies any one signature that matches; check each explicitly too
for s in statement["signatures"]:
    one = {"payload": statement["payload"], "protected": s["protected"], "signature": s["signature"]}
    token = jws.JWS()
    token.deserialize(json.dumps(one))
    kid = json.loads(base64.urlsafe_b64decode(s["protected"] + "=" * (-len(s["protected"]) % 4)))["kid"]
    token.verify(jwk.JWK(**{k: v for k, v in keys[kid].items() if k in ("kty", "crv", "x", "y")}))
PY
}
check "the rollover statement is served and both signatures (old key, new key) verify" rollover_verifies

config_back_to_retired() {
	stop_daemon
	sed -i "s|signing_key = \"[^\"]*\"|signing_key = \"$old_uri\"|" "$conf"
	"$BUILD/bin/credsignd" --check-config "$conf" > "$work/check.out" 2>&1 || { cat "$work/check.out"; return 1; }
	grep -q -- "$kid_old" "$work/check.out" && grep -q "retired" "$work/check.out" && grep -q -- "$kid_new" "$work/check.out" ||
		{ cat "$work/check.out"; return 1; }
	start_daemon || return 1
	grep -q -- "$kid_old.*retired" "$log" || { cat "$log"; return 1; }
	local got sid
	got=$(call ci-deployer POST /api/generate "{\"preset\":\"soc2\",$PAYMENTS}")
	sid=$(json_field "${got#* }" generation_session_id)
	got=$(call ci-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$sid\"}")
	[[ "$got" == "201 "* ]] || { echo "  $got"; return 1; }
	json_field "${got#* }" certificate > "$work/after-restart.jws"
	[ "$($py -c 'import base64,json,sys; h=open(sys.argv[1]).read().split(".")[0]; print(json.loads(base64.urlsafe_b64decode(h+"="*(-len(h)%4)))["kid"])' "$work/after-restart.jws")" = "$kid_new" ]
}
check "the configuration pointed back at the retired key: reported at --check-config and start, the active key keeps signing" \
	config_back_to_retired

register_chain() {
	# key csr for the active key -> a throwaway CA issues it -> key register-chain
	local ca=$work/chain-ca uri
	uri=$(cat "$work/uri_new")
	mkdir -p "$ca"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$ca/ca.key" -out "$ca/ca.pem" \
		-subj "/CN=rotation test CA" -days 30 -addext "basicConstraints=critical,CA:true" 2> /dev/null || return 1
	"${admin[@]}" key csr --key "$uri" --subject "/CN=credsign signing key" --out "$ca/key.csr" || return 1
	openssl x509 -req -in "$ca/key.csr" -CA "$ca/ca.pem" -CAkey "$ca/ca.key" -CAcreateserial -days 30 \
		-out "$ca/leaf.pem" 2> /dev/null || return 1
	cat "$ca/leaf.pem" "$ca/ca.pem" > "$ca/chain.pem"
	cat "$ca/ca.pem" "$ca/leaf.pem" > "$ca/reversed.pem"
	# refused: the chain out of order; a leaf of another key (the old one's kid)
	"${admin[@]}" key register-chain --kid "$kid_new" --chain "$ca/reversed.pem" > /dev/null 2> "$work/chain.err" && return 1
	grep -q "certifies .*not key $kid_new" "$work/chain.err" || { cat "$work/chain.err"; return 1; }
	"${admin[@]}" key register-chain --kid "$kid_old" --chain "$ca/chain.pem" > /dev/null 2> "$work/chain.err" && return 1
	grep -q "not key $kid_old" "$work/chain.err" || { cat "$work/chain.err"; return 1; }
	# a file of many certificates: refused without reading it all
	for _ in $(seq 40); do cat "$ca/ca.pem"; done > "$ca/many.pem"
	"${admin[@]}" key register-chain --kid "$kid_new" --chain "$ca/many.pem" > /dev/null 2> "$work/chain.err" && return 1
	grep -q "holds more than 10 PEM certificates" "$work/chain.err" || { cat "$work/chain.err"; return 1; }
	"${admin[@]}" key register-chain --kid "$kid_new" --chain "$ca/chain.pem" || return 1
	[ "$(sql_count "SELECT count(*) FROM audit_log WHERE action = 'key.chain' AND object = '$kid_new'")" = 1 ] || return 1
	# the daemon takes the chain within its poll: new certificates carry x5c
	local got sid i
	for i in $(seq 30); do
		got=$(call ci-deployer POST /api/generate "{\"preset\":\"soc2\",$PAYMENTS}")
		sid=$(json_field "${got#* }" generation_session_id)
		got=$(call ci-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$sid\"}")
		json_field "${got#* }" certificate > "$work/x5c.jws"
		grep -q . "$work/x5c.jws" && $py - "$work/x5c.jws" <<'PY' && break
import base64, json, sys
h = open(sys.argv[1]).read().split(".")[0]
sys.exit(0 if "x5c" in json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4))) else 1)
PY
		sleep 0.1
	done
	served /.well-known/jwks.json "$work/jwks-x5c.json" || return 1
	"$BUILD/bin/credsign" verify "$work/x5c.jws" --jwks "$work/jwks-x5c.json" > /dev/null || return 1
	# checkpoints signed meanwhile keep the header audit verify requires (no x5c)
	local cps
	cps=$(sql_count "SELECT count(*) FROM audit_checkpoints")
	for i in $(seq 80); do
		[ "$(sql_count "SELECT count(*) FROM audit_checkpoints")" -gt "$cps" ] && break
		sleep 0.1
	done
	[ "$(sql_count "SELECT count(*) FROM audit_checkpoints")" -gt "$cps" ] || { echo "  no checkpoint came"; return 1; }
	"${admin[@]}" audit verify --jwks "$work/jwks-x5c.json" > "$work/verify-audit.out" 2>&1 ||
		{ cat "$work/verify-audit.out"; return 1; }
	$py - "$work/x5c.jws" "$ca/leaf.pem" "$work/jwks-x5c.json" "$kid_new" <<'PY'
import base64, json, ssl, sys
from jwcrypto import jwk, jws
token = jws.JWS()
token.deserialize(open(sys.argv[1]).read().strip())
leaf_der = ssl.PEM_cert_to_DER_cert(open(sys.argv[2]).read())
x5c = token.jose_header["x5c"]
assert base64.b64decode(x5c[0]) == leaf_der and len(x5c) == 2, x5c
keys = {k["kid"]: k for k in json.load(open(sys.argv[3]))["keys"]}
assert keys[sys.argv[4]]["x5c"] == x5c, keys[sys.argv[4]]
# the leaf's public key is the JWKS key
from cryptography import x509
nums = x509.load_der_x509_certificate(leaf_der).public_key().public_numbers()
b64 = lambda n: base64.urlsafe_b64encode(n.to_bytes(32, "big")).rstrip(b"=").decode()
assert (b64(nums.x), b64(nums.y)) == (keys[sys.argv[4]]["x"], keys[sys.argv[4]]["y"]), keys[sys.argv[4]]
PY
}
check "key csr -> a CA -> key register-chain (order and key checked, audited): certificates carry x5c, the JWKS too; they verify" \
	register_chain

compromise_old() {
	local out cid f
	out=$("${admin[@]}" ceremony start --action compromise --key "$kid_old" --reason "test: key exposed") ||
		{ echo "  $out"; return 1; }
	cid=$(json_field "$out" id)
	for o in officer-b officer-c; do
		"${admin[@]}" ceremony approve "$cid" --officer-cert "$officers/$o.pem" --officer-key "$officers/$o.key" \
			> /dev/null || return 1
	done
	"${admin[@]}" ceremony execute "$cid" > /dev/null || return 1
	served /.well-known/jwks.json "$work/jwks2.json" || return 1
	f=$(grep -l "" $(awk -v k="$kid_old" '$2 == k {print "'"$load"'/" $1}' "$load/certs.tsv") | head -1)
	"$BUILD/bin/credsign" verify "$f" --jwks "$work/jwks2.json" > /dev/null 2> "$work/verify.err" && return 1
	grep -q "(key_compromised)" "$work/verify.err" || { cat "$work/verify.err"; return 1; }
	# the appliance says so too: GET /cert/{id}
	local cert_id got
	cert_id=$($py -c 'import base64,json,sys; p=open(sys.argv[1]).read().split(".")[1]; print(json.loads(base64.urlsafe_b64decode(p+"="*(-len(p)%4)))["jti"])' "$f")
	got=$(call auditor GET "/cert/$cert_id")
	$py - "${got#* }" <<'PY' || { echo "  ${got:0:300}"; return 1; }
import json, sys
c = json.loads(sys.argv[1])
assert c["status"] == "key_compromised", c["status"]
assert c["signing_key"]["status"] == "compromised" and c["signing_key"]["compromised_at"], c["signing_key"]
PY
	# audit verify: the old key's checkpoints no longer authenticate; the new key's cover the chain
	"${admin[@]}" audit verify --jwks "$work/jwks2.json" > "$work/audit2.out" 2>&1 || { cat "$work/audit2.out"; return 1; }
	grep -qE "^not counted: [1-9][0-9]* checkpoints signed by a key the JWKS marks compromised" "$work/audit2.out" &&
		grep -q "^authenticated: " "$work/audit2.out" || { cat "$work/audit2.out"; return 1; }
	# the new key's certificates are untouched
	f=$(awk -v k="$kid_new" '$2 == k {print "'"$load"'/" $1; exit}' "$load/certs.tsv")
	"$BUILD/bin/credsign" verify "$f" --jwks "$work/jwks2.json" > /dev/null
}
check "compromise of the old key (ceremony): its certificates fail credsign verify with key_compromised" compromise_old

revoke_one() {
	local f cert_id
	f=$(awk -v k="$kid_new" '$2 == k {print "'"$load"'/" $1; exit}' "$load/certs.tsv")
	cert_id=$($py -c 'import base64,json,sys; p=open(sys.argv[1]).read().split(".")[1]; print(json.loads(base64.urlsafe_b64decode(p+"="*(-len(p)%4)))["jti"])' "$f")
	"${admin[@]}" cert revoke "$cert_id" --reason "test: credential leaked" > /dev/null || return 1
	# the daemon re-signs its list within its poll (10 s at most here: a
	# loaded machine)
	for _ in $(seq 100); do
		served /.well-known/credsign-revocations "$work/revocations.jws" && grep -q . "$work/revocations.jws" &&
			$py -c 'import base64,json,sys; p=open(sys.argv[1]).read().split(".")[1]; sys.exit(0 if sys.argv[2] in [r["id"] for r in json.loads(base64.urlsafe_b64decode(p+"="*(-len(p)%4)))["revoked"]] else 1)' \
				"$work/revocations.jws" "$cert_id" && break
		sleep 0.1
	done
	"$BUILD/bin/credsign" --url "$url" --cacert "$pki/ca.pem" --cert "$clients/auditor.pem" --key "$clients/auditor.key" \
		verify "$f" --online > /dev/null 2> "$work/online.err" && return 1
	grep -q "(revoked)" "$work/online.err" && grep -q "credential leaked" "$work/online.err" || { cat "$work/online.err"; return 1; }
	$py - "$work/revocations.jws" "$work/jwks2.json" <<'PY'
import json, sys
from jwcrypto import jwk, jws
token = jws.JWS()
token.deserialize(open(sys.argv[1]).read().strip())
kid = token.jose_header["kid"]
keys = {k["kid"]: k for k in json.load(open(sys.argv[2]))["keys"]}
assert keys[kid]["status"] == "active", keys[kid]
token.verify(jwk.JWK(**{k: v for k, v in keys[kid].items() if k in ("kty", "crv", "x", "y")}))
claims = json.loads(token.payload)
assert token.jose_header["typ"] == "credsign-revocations+jwt" and claims["next_update"] > claims["iat"], claims
PY
}
check "revocation: a revoked certificate fails credsign verify --online with its reason; the list's signature verifies" revoke_one

officer_key_on_a_token() {
	# officer-b keeps the key on a token of their own (here a second token
	# of the same SoftHSM2 configuration), named by a pkcs11: URI with its
	# PIN source; officer-a uses a PEM file: a retire ceremony executes
	local pin=$work/officer-b.pin out kid id
	umask 077
	head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$pin"
	softhsm2-util --init-token --free --label officer-b-token --so-pin "$(cat "$pin")so" --pin "$(cat "$pin")" \
		> /dev/null || return 1
	softhsm2-util --import "$officers/officer-b.key" --token officer-b-token --label officer-b --id 0b \
		--pin "$(cat "$pin")" > /dev/null || return 1
	out=$("${admin[@]}" key generate --label it-rotation-spare) || return 1
	kid=$(json_field "$out" kid)
	out=$("${admin[@]}" ceremony start --action retire --key "$kid" --reason "spare key not needed") || return 1
	id=$(json_field "$out" id)
	"${admin[@]}" ceremony approve "$id" --officer-cert "$officers/officer-a.pem" --officer-key "$officers/officer-a.key" \
		> /dev/null || return 1
	"${admin[@]}" ceremony approve "$id" --officer-cert "$officers/officer-b.pem" --officer-module "$SOFTHSM" \
		--officer-key "pkcs11:token=officer-b-token;object=officer-b?pin-source=file:$pin" > "$work/approve-token.out" 2>&1 ||
		{ cat "$work/approve-token.out"; return 1; }
	"${admin[@]}" ceremony execute "$id" > "$work/execute-token.out" 2>&1 || { cat "$work/execute-token.out"; return 1; }
	[ "$(sql_count "SELECT count(*) FROM ceremony_approvals WHERE ceremony_id = '$id' AND officer = 'officer-b'")" = 1 ] &&
		[ "$(sql_count "SELECT count(*) FROM signing_keys WHERE kid = '$kid' AND status = 'retired'")" = 1 ] || return 1
	# the wrong PIN: refused, nothing recorded
	echo 000000 > "$work/wrong.pin"
	out=$("${admin[@]}" key generate --label it-rotation-spare-2) || return 1
	kid=$(json_field "$out" kid)
	out=$("${admin[@]}" ceremony start --action retire --key "$kid") || return 1
	id=$(json_field "$out" id)
	"${admin[@]}" ceremony approve "$id" --officer-cert "$officers/officer-b.pem" --officer-module "$SOFTHSM" \
		--officer-key "pkcs11:token=officer-b-token;object=officer-b?pin-source=file:$work/wrong.pin" \
		> /dev/null 2> "$work/approve-wrong.err" && return 1
	[ "$(sql_count "SELECT count(*) FROM ceremony_approvals WHERE ceremony_id = '$id'")" = 0 ] ||
		{ cat "$work/approve-wrong.err"; return 1; }
}
check "an officer key on the officer's own token (pkcs11: URI, PIN source): it approves; a wrong PIN is refused" \
	officer_key_on_a_token

finish
