#!/usr/bin/env bash
# Dual-control ceremonies with credsign-admin (issue 14): the refusals and
# the actions. A key generated pending is activated by two officers of the
# dev PKI (the rollover statement in the store verifies with both keys,
# python3-jwcrypto); each refusal exits 1 and is in the audit log as a
# failure with its error code: too few approvals, the same officer twice,
# officers of another CA (and a client of the client CA), an unknown and a
# revoked officer, an officer certificate with another's key, an approval
# whose signature was edited in the store, a ceremony whose subject was
# edited, expired ceremonies (expires_at set in the past; and
# expiry_minutes 1 run out), a ceremony executed twice, activating a retired
# and a compromised key. Also: compromise, destroy (the token objects
# gone), transcript + verify-transcript (an edited line fails), cert revoke
# (immediate, and a ceremony with revoke_quorum 2), the audit purge as a
# ceremony. The database edits drop the table's guard trigger, edit, and
# put it back: what an attacker with the file can do. And (issue 14 review):
# a clock set back (faketime) revives no expired ceremony; the audit
# entries of approvals and executions name the officers; one officer key
# under two certificates is refused in the configuration; approve shows
# what is signed; verify-transcript without a roster says it could not
# check the officers (and shows each by certificate), with one (--officers,
# --config) an officer recorded under another's name fails.
#
#   ceremony_test.sh BUILD_DIR STATE_DIR SOFTHSM_MODULE
BUILD=${1:?}
STATE=${2:?}
SOFTHSM=${3:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_token ceremonies || exit 1
officers_dir=$STATE/pki/officers
EXTRA_CONF="ceremony = { officer_ca = \"$STATE/pki/officer-ca.pem\"; officer_crl = \"$STATE/pki/officer-crl.pem\";
  quorum = 2; revoke_quorum = 1; expiry_minutes = 60;
  officers = ( { name = \"officer-a\"; certificate = \"$officers_dir/officer-a.pem\"; },
               { name = \"officer-b\"; certificate = \"$officers_dir/officer-b.pem\"; },
               { name = \"officer-c\"; certificate = \"$officers_dir/officer-c.pem\"; } ); };"
it_setup ceremony || exit 1
unset CREDSIGN_CONF

# three certificates by key A, to revoke later; then the daemon stops (the
# ceremonies are credsign-admin's, on the store and the token)
export CREDSIGN_URL=$url CREDSIGN_CACERT=$pki/ca.pem
export CREDSIGN_CERT=$clients/ci-deployer.pem CREDSIGN_KEY=$clients/ci-deployer.key
certify_one() {
	"$BUILD/bin/credsign" generate --preset soc2 --project payments --environment production --system db \
		--certify --format env > "$work/gen.env" || return 1
	# shellcheck source=/dev/null
	(. "$work/gen.env" && echo "$CREDSIGN_CERT_ID")
}
cert1=$(certify_one) && cert2=$(certify_one) && cert3=$(certify_one) || { echo "certify failed"; finish; exit 1; }
stop_daemon

# the same configuration with other ceremony settings
sed 's/expiry_minutes = 60/expiry_minutes = 1/' "$conf" > "$work/short.conf"
sed 's/revoke_quorum = 1/revoke_quorum = 2/' "$conf" > "$work/rq2.conf"
sed '/^ceremony = {/,$d' "$conf" > "$work/none.conf"

adm() { "$BUILD/bin/credsign-admin" --config "$conf" "$@"; }
key_a="pkcs11:token=cstest;object=it-es256-ceremony"
kid_of() { adm key jwk --key "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["kid"])'; }
kid_a=$(kid_of "$key_a")
jget() { # jget FILE KEY: a member of the JSON object in FILE
	python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))[sys.argv[2]]; print("" if v is None else v)' "$1" "$2"
}
sql() { sqlite3 "$db" "$1"; }
key_state() { sql "SELECT status FROM signing_keys WHERE kid = '$1'"; }
# gen LABEL: a new pending key; its kid on stdout
gen() {
	adm key generate --label "$1" > "$work/gen-$1.json" || return 1
	jget "$work/gen-$1.json" kid
}
# start [--config FILE] ARGS...: a new ceremony; its id on stdout
start() {
	local cfg=$conf
	if [ "$1" = --config ]; then cfg=$2; shift 2; fi
	"$BUILD/bin/credsign-admin" --config "$cfg" ceremony start "$@" > "$work/start.json" || return 1
	jget "$work/start.json" id
}
# approve [--config FILE] ID OFFICER [CERT-OWNER]: OFFICER's key, CERT-OWNER's certificate
approve() {
	local cfg=$conf
	if [ "$1" = --config ]; then cfg=$2; shift 2; fi
	local owner=${3:-$2}
	"$BUILD/bin/credsign-admin" --config "$cfg" ceremony approve "$1" --officer-cert "$(cert_of "$owner")" \
		--officer-key "$(key_of "$2")" > "$work/approve.json"
}
cert_of() { [ -f "$officers_dir/$1.pem" ] && echo "$officers_dir/$1.pem" || echo "$clients/$1.pem"; }
key_of() { [ -f "$officers_dir/$1.key" ] && echo "$officers_dir/$1.key" || echo "$clients/$1.key"; }
audit_count() { # audit_count ACTION OBJECT OUTCOME [CODE]: OBJECT, or OBJECT and more (the officers)
	sql "SELECT count(*) FROM audit_log WHERE action = '$1' AND (object = '$2' OR object LIKE '$2 %')
	     AND outcome = '$3' AND coalesce(error_code, '') = '${4:-}'"
}
# the newest entry's object for ACTION and OUTCOME
last_object() { sql "SELECT object FROM audit_log WHERE action = '$1' AND outcome = '$2' ORDER BY seq DESC LIMIT 1"; }
# fpr CERT: "SHA256:" and the lowercase hex of the SHA-256 of its DER
fpr() { echo "SHA256:$(openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f')"; }
# dn CERT: its subject, RFC 2253
dn() { openssl x509 -in "$1" -noout -subject -nameopt RFC2253 | sed 's/^subject= *//'; }
# faked CLOCK-ARG COMMAND...: COMMAND under libfaketime (its offset CLOCK-ARG)
faked() {
	local off=$1
	shift
	ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0 faketime -f "$off" "$@"
}
# refused EVENT OBJECT CODE PATTERN COMMAND...: exits 1, says PATTERN on
# stderr, one more audit entry EVENT/OBJECT failure CODE, nothing on stdout
refused() {
	local event=$1 object=$2 code=$3 pattern=$4 before after rc
	shift 4
	before=$(audit_count "$event" "$object" failure "$code")
	"$@" > "$work/refused.out" 2> "$work/refused.err"
	rc=$?
	after=$(audit_count "$event" "$object" failure "$code")
	[ "$rc" -eq 1 ] || { echo "  exit $rc, not 1"; cat "$work/refused.out" "$work/refused.err"; return 1; }
	# a sanitizer's report would hide behind the refusal's exit status
	! grep -q "Sanitizer" "$work/refused.err" || { cat "$work/refused.err"; return 1; }
	grep -q -- "$pattern" "$work/refused.err" || { echo "  no '$pattern' in:"; cat "$work/refused.err"; return 1; }
	[ ! -s "$work/refused.out" ] || { echo "  output on a refusal:"; cat "$work/refused.out"; return 1; }
	[ "$after" -eq $((before + 1)) ] || {
		echo "  audit entries $event $object failure $code: $before -> $after"
		cat "$work/refused.err"
		sql "SELECT seq, action, object, outcome, error_code FROM audit_log ORDER BY seq DESC LIMIT 5"
		return 1
	}
}
# tamper TABLE TRIGGER SQL: the edit an attacker with the database file
# makes (the guard trigger dropped, then put back)
tamper() {
	python3 - "$db" "$@" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
trigger, edit = sys.argv[2], sys.argv[3]
(create,) = db.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?", (trigger,)).fetchone()
db.execute("BEGIN IMMEDIATE")
db.execute("DROP TRIGGER " + trigger)
assert db.execute(edit).rowcount == 1, edit
db.execute(create)
db.execute("COMMIT")
PY
}

# ---- configuration and usage ------------------------------------------------------
no_group_refused() {
	"$BUILD/bin/credsign-admin" --config "$work/none.conf" ceremony start --action purge \
		> /dev/null 2> "$work/none.err" && return 1
	grep -q "ceremony" "$work/none.err" || { cat "$work/none.err"; return 1; }
}
check "without a ceremony group: ceremony start refused, saying so" no_group_refused
usage_errors() {
	adm ceremony start --action activate 2> /dev/null; [ $? -eq 2 ] || return 1
	adm ceremony start --action activate --key not-a-kid 2> /dev/null; [ $? -eq 2 ] || return 1
	adm ceremony start --action revoke --cert "$cert1" 2> /dev/null; [ $? -eq 2 ] || return 1
	adm ceremony approve cer_x --officer-cert a --officer-key b 2> /dev/null; [ $? -eq 2 ] || return 1
	adm ceremony execute 2> /dev/null; [ $? -eq 2 ] || return 1
	adm ceremony start --action retire --key "$kid_a" --accept-clock-jump 2> /dev/null; [ $? -eq 2 ]
}
check "usage errors exit 2" usage_errors
# officer-a's key under a second certificate of the officer CA, listed as another officer
same_key_refused() {
	openssl req -new -key "$officers_dir/officer-a.key" -subj "/O=credsign dev/CN=officer-a-2027" \
		-out "$work/officer-a-2027.csr" 2> /dev/null || return 1
	printf 'basicConstraints = critical, CA:false\nkeyUsage = critical, digitalSignature\n' > "$work/leaf.ext"
	openssl x509 -req -in "$work/officer-a-2027.csr" -CA "$pki/officer-ca.pem" -CAkey "$pki/ca-db/officer/ca.key" \
		-set_serial 424242 -days 30 -sha256 -extfile "$work/leaf.ext" -out "$work/officer-a-2027.pem" \
		2> /dev/null || return 1
	sed "s|{ name = \"officer-c\"; certificate = \"$officers_dir/officer-c.pem\"; }|&, { name = \"officer-a-2027\"; certificate = \"$work/officer-a-2027.pem\"; }|" \
		"$conf" > "$work/same-key.conf"
	grep -q officer-a-2027 "$work/same-key.conf" || return 1
	"$BUILD/bin/credsign-admin" --config "$work/same-key.conf" ceremony list > /dev/null 2> "$work/same-key.err" &&
		return 1
	grep -q "setting 'ceremony.officers': officer 'officer-a-2027' (.*) has the public key of officer 'officer-a'" \
		"$work/same-key.err" || { cat "$work/same-key.err"; return 1; }
}
check "one officer key under two certificates: the configuration is refused (setting 'ceremony.officers')" \
	same_key_refused

# ---- a ceremony with expiry_minutes 1, run out by the end of the test ---------------
kid_c=$(gen it-ceremony-c) || { echo "key generate failed"; finish; exit 1; }
short_started() {
	id_short=$(start --config "$work/short.conf" --action compromise --key "$kid_c" --reason "lost") || return 1
	python3 - "$work/start.json" <<'PY' || return 1
import json, sys
from datetime import datetime
s = json.load(open(sys.argv[1]))
t = lambda v: datetime.strptime(v, "%Y-%m-%dT%H:%M:%S.%fZ")
assert (t(s["expires_at"]) - t(s["created_at"])).total_seconds() == 60, s
PY
	short_expires=$(python3 -c 'import calendar, sys, time
print(calendar.timegm(time.strptime(sys.argv[1][:19], "%Y-%m-%dT%H:%M:%S")) + 1)' \
		"$(jget "$work/start.json" expires_at)") || return 1
	approve --config "$work/short.conf" "$id_short" officer-a &&
		approve --config "$work/short.conf" "$id_short" officer-b
}
check "expiry_minutes 1: a ceremony expiring 60 s after its start, approved by two" short_started
kid_e=$(gen it-ceremony-e) || { echo "key generate failed"; finish; exit 1; }
clock_started() {
	id_clock=$(start --config "$work/short.conf" --action retire --key "$kid_e" --reason "set back") || return 1
	clock_expires=$(jget "$work/start.json" expires_at)
	approve --config "$work/short.conf" "$id_clock" officer-a &&
		approve --config "$work/short.conf" "$id_clock" officer-b
}
check "expiry_minutes 1: a second one (for the clock set back at the end)" clock_started

# ---- activate: refusals, then two officers -----------------------------------------
kid_b=$(gen it-ceremony-b) || { echo "key generate failed"; finish; exit 1; }
check "key generate: the new key is pending" test "$(key_state "$kid_b")" = pending
started() {
	id1=$(start --action activate --key "$kid_b" --reason "annual rotation") || return 1
	[ "$(jget "$work/start.json" quorum)" = 2 ] || return 1
	adm ceremony list --format json | python3 -c '
import json, sys
c = {c["id"]: c for c in json.load(sys.stdin)["ceremonies"]}[sys.argv[1]]
assert c["state"] == "open" and c["approvals"] == 0 and c["action"] == "activate", c' "$id1" &&
		[ "$(audit_count ceremony.start "$id1" success)" = 1 ]
}
check "ceremony start --action activate: open, audited" started
check "execute without approvals: refused (quorum), audited" \
	refused ceremony.execute "$id1" quorum "0 valid approval" adm ceremony execute "$id1"
check "approve by officer-a" approve "$id1" officer-a
approve_names_officer() {
	local want
	want="$id1 officer officer-a $(fpr "$officers_dir/officer-a.pem")"
	[ "$(last_object ceremony.approve success)" = "$want" ] ||
		{ echo "  object '$(last_object ceremony.approve success)', not '$want'"; return 1; }
}
check "the approval's audit entry names the officer and the certificate's fingerprint" approve_names_officer
check "execute with one approval: refused (quorum), audited" \
	refused ceremony.execute "$id1" quorum "1 valid approval" adm ceremony execute "$id1"
check "the same officer twice: refused, audited" \
	refused ceremony.approve "$id1" duplicate_officer "approved ceremony $id1 already" approve "$id1" officer-a
check "an officer certificate from another CA: refused, audited" \
	refused ceremony.approve "$id1" other_ca "other-ca" approve "$id1" other-ca
check "a client certificate of the client CA: refused, audited" \
	refused ceremony.approve "$id1" other_ca "ci-deployer" approve "$id1" ci-deployer
check "officer-x (officer CA, not listed): refused as unknown, audited" \
	refused ceremony.approve "$id1" unknown_officer "officer-x" approve "$id1" officer-x
refusal_names_certificate() {
	local got want
	got=$(sql "SELECT object FROM audit_log WHERE action = 'ceremony.approve' AND error_code = 'unknown_officer'
		   ORDER BY seq DESC LIMIT 1")
	want="$id1 certificate $(dn "$officers_dir/officer-x.pem") $(fpr "$officers_dir/officer-x.pem")"
	[ "$got" = "$want" ] || { echo "  object '$got', not '$want'"; return 1; }
	got=$(sql "SELECT object FROM audit_log WHERE action = 'ceremony.approve' AND error_code = 'duplicate_officer'
		   ORDER BY seq DESC LIMIT 1")
	want="$id1 officer officer-a $(fpr "$officers_dir/officer-a.pem")"
	[ "$got" = "$want" ] || { echo "  object '$got', not '$want'"; return 1; }
}
check "refused approvals name the certificate presented (subject, fingerprint) or the officer" \
	refusal_names_certificate
check "officer-revoked (in the officer CRL): refused, audited" \
	refused ceremony.approve "$id1" revoked "officer-revoked" approve "$id1" officer-revoked
check "officer-b's certificate with officer-c's key: refused, audited" \
	refused ceremony.approve "$id1" key_mismatch "officer-key" approve "$id1" officer-c officer-b
approve_shows() {
	adm ceremony approve "$id1" --officer-cert "$officers_dir/officer-b.pem" --officer-key "$officers_dir/officer-b.key" \
		> "$work/approve-b.json" 2> "$work/approve-b.err" || { cat "$work/approve-b.err"; return 1; }
	local digest
	digest=$(sql "SELECT canonical FROM ceremonies WHERE id = '$id1'" | tr -d '\n' | sha256sum | cut -d' ' -f1)
	for want in "officer officer-b ($(dn "$officers_dir/officer-b.pem"), SHA256:" "signs ceremony $id1:" \
		"action: *activate\$" "subject: *$kid_b\$" "reason: *annual rotation\$" "node: " \
		"created: *$(jget "$work/start.json" created_at)\$" "expires: *$(jget "$work/start.json" expires_at)\$" \
		"started by: *local:" "signed bytes SHA-256: *$digest\$"; do
		grep -q -- "$want" "$work/approve-b.err" || { echo "  no '$want' in:"; cat "$work/approve-b.err"; return 1; }
	done
	# stdout: the JSON alone (scripts keep reading it), no prompt
	[ "$(jget "$work/approve-b.json" officer)" = officer-b ]
}
check "approve by officer-b: shows what is signed (action, subject, reason, times, SHA-256) on stderr" approve_shows
shown() {
	adm ceremony show "$id1" > "$work/show.json" || return 1
	python3 - "$work/show.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["quorum"] == "met" and s["required"] == 2, s
assert [a["officer"] for a in s["approvals"]] == ["officer-a", "officer-b"], s
assert all(a["counts"] for a in s["approvals"]), s
PY
}
check "ceremony show: two approvals that count, quorum met" shown
executed() {
	adm ceremony execute "$id1" > "$work/exec.json" 2> "$work/exec.err" || { cat "$work/exec.err"; return 1; }
	[ "$(key_state "$kid_b")" = active ] && [ "$(key_state "$kid_a")" = retired ] || return 1
	adm key list --format json | python3 -c '
import json, sys
keys = {k["kid"]: k for k in json.load(sys.stdin)["keys"]}
a, b, cer = keys[sys.argv[1]], keys[sys.argv[2]], sys.argv[3]
assert b["state"] == "active" and b["activated"]["ceremony"] == cer, b
assert a["state"] == "retired" and a["retired"]["ceremony"] == cer, a' "$kid_a" "$kid_b" "$id1" || return 1
	[ "$(sql "SELECT state FROM ceremonies WHERE id = '$id1'")" = executed ] &&
		[ "$(audit_count ceremony.execute "$id1" success)" = 1 ] &&
		[ "$(audit_count key.activate "$kid_b" success)" -ge 1 ] || return 1
	# the entry names the officers counted; executed_at as recorded, after the approvals
	local want
	want="$id1 officer officer-a $(fpr "$officers_dir/officer-a.pem") officer officer-b $(fpr "$officers_dir/officer-b.pem")"
	[ "$(last_object ceremony.execute success)" = "$want" ] ||
		{ echo "  object '$(last_object ceremony.execute success)', not '$want'"; return 1; }
	[ "$(jget "$work/exec.json" executed_at)" = "$(sql "SELECT executed_at FROM ceremonies WHERE id = '$id1'")" ] &&
		[ "$(sql "SELECT count(*) FROM ceremony_approvals a JOIN ceremonies c ON c.id = a.ceremony_id
			  WHERE c.id = '$id1' AND a.approved_at > c.executed_at")" = 0 ]
}
check "execute: B active, A retired by the ceremony, audited (naming the officers)" executed
# the JWKS of both keys, for the rollover and the transcript
{
	echo '{"keys":['
	adm key jwk --key "$key_a"
	echo ','
	adm key jwk --key "$(jget "$work/gen-it-ceremony-b.json" uri)"
	echo ']}'
} > "$work/jwks.json"
rollover_verifies() {
	sql "SELECT statement_json FROM key_rollovers WHERE ceremony_id = '$id1'" > "$work/rollover.json"
	/usr/bin/python3 - "$work/rollover.json" "$work/jwks.json" "$kid_a" "$kid_b" "$id1" <<'PY'
import json, sys
from jwcrypto import jwk, jws
from jwcrypto.common import base64url_decode
stmt = json.load(open(sys.argv[1]))
keys = {k["kid"]: jwk.JWK(**k) for k in json.load(open(sys.argv[2]))["keys"]}
old, new, cer = sys.argv[3:6]
# RFC 7515 7.2.1: each signature verifies, old key first
sigs = stmt["signatures"]
assert len(sigs) == 2, stmt
kids = []
for s in sigs:
    header = json.loads(base64url_decode(s["protected"]))
    assert header == {"alg": "ES256", "kid": header["kid"], "typ": "credsign-rollover+jws"}, header
    kids.append(header["kid"])
    token = jws.JWS()
    token.deserialize(".".join([s["protected"], stmt["payload"], s["signature"]]))
    token.verify(keys[header["kid"]], alg="ES256")
assert kids == [old, new], kids
# the general serialization as a whole, with each key
for k in (old, new):
    token = jws.JWS()
    token.deserialize(json.dumps(stmt))
    token.verify(keys[k], alg="ES256")
claims = json.loads(base64url_decode(stmt["payload"]))
assert claims["type"] == "credsign-rollover/v1" and claims["old_kid"] == old and claims["new_kid"] == new, claims
assert claims["ceremony_id"] == cer and claims["new_jwk"]["kid"] == new, claims
assert jwk.JWK(**claims["new_jwk"]).thumbprint() == new, claims
assert [a["officer"] for a in claims["approvals"]] == ["officer-a", "officer-b"], claims
assert all(a["fingerprint"].startswith("SHA256:") and a["approved_at"] for a in claims["approvals"]), claims
PY
}
check "the rollover statement in the store: both signatures verify (jwcrypto), old key first" rollover_verifies
check "execute again: refused (executed), audited" \
	refused ceremony.execute "$id1" ceremony_closed "was executed" adm ceremony execute "$id1"
check "approve an executed ceremony: refused, audited" \
	refused ceremony.approve "$id1" ceremony_closed "was executed" approve "$id1" officer-c
check "activating a retired key: refused at start, audited" \
	refused ceremony.start "$kid_a" key_forbidden "retired" adm ceremony start --action activate --key "$kid_a"
check "retiring the active key alone: refused, audited" \
	refused ceremony.start "$kid_b" key_forbidden "activating its successor" \
	adm ceremony start --action retire --key "$kid_b"

# ---- records edited in the store --------------------------------------------------
tampered_approval() {
	id2=$(start --action activate --key "$kid_c") && approve "$id2" officer-a && approve "$id2" officer-b ||
		return 1
	# officer-b's signature replaced by officer-a's over the same bytes
	tamper ceremony_approvals_no_update "UPDATE ceremony_approvals SET signature_b64 = (SELECT signature_b64
	       FROM ceremony_approvals WHERE ceremony_id = '$id2' AND officer = 'officer-a')
	       WHERE ceremony_id = '$id2' AND officer = 'officer-b'" || return 1
	refused ceremony.execute "$id2" bad_signature "officer-b" adm ceremony execute "$id2" || return 1
	[ "$(key_state "$kid_c")" = pending ]
}
check "an approval whose signature was edited: refused (bad_signature), audited, nothing changed" tampered_approval
kid_d=$(gen it-ceremony-d) || { echo "key generate failed"; finish; exit 1; }
edited_subject() {
	id3=$(start --action activate --key "$kid_c") && approve "$id3" officer-a && approve "$id3" officer-b ||
		return 1
	tamper ceremonies_once "UPDATE ceremonies SET subject = '$kid_d' WHERE id = '$id3'" || return 1
	refused ceremony.execute "$id3" invalid_record "does not match" adm ceremony execute "$id3" || return 1
	[ "$(key_state "$kid_d")" = pending ] && [ "$(key_state "$kid_b")" = active ]
}
check "a ceremony whose subject was edited: refused (the officers signed another), audited" edited_subject
expired_by_edit() {
	id4=$(start --action activate --key "$kid_c") && approve "$id4" officer-a && approve "$id4" officer-b ||
		return 1
	tamper ceremonies_once "UPDATE ceremonies SET expires_at = '2020-01-01T00:00:00.000Z' WHERE id = '$id4'" ||
		return 1
	refused ceremony.execute "$id4" ceremony_expired "expired" adm ceremony execute "$id4" || return 1
	refused ceremony.approve "$id4" ceremony_expired "expired" approve "$id4" officer-c || return 1
	adm ceremony list | grep -q "^$id4 .* expired " && [ "$(key_state "$kid_c")" = pending ]
}
check "an expired ceremony (expires_at in the past): execute and approve refused, audited" expired_by_edit

# ---- compromise, and activating a compromised key ------------------------------------
compromised() {
	id6=$(start --action activate --key "$kid_c") && approve "$id6" officer-b && approve "$id6" officer-c ||
		return 1
	id5=$(start --action compromise --key "$kid_c" --reason "token backup exposed") &&
		approve "$id5" officer-a && approve "$id5" officer-c || return 1
	adm ceremony execute "$id5" > /dev/null || return 1
	[ "$(key_state "$kid_c")" = compromised ] &&
		[ "$(sql "SELECT compromised_ceremony FROM signing_keys WHERE kid = '$kid_c'")" = "$id5" ]
}
check "compromise a pending key by ceremony" compromised
check "activating a compromised key: refused at execute (approved before), audited" \
	refused ceremony.execute "$id6" key_forbidden "compromised" adm ceremony execute "$id6"
check "activating a compromised key: refused at start, audited" \
	refused ceremony.start "$kid_c" key_forbidden "compromised" adm ceremony start --action activate --key "$kid_c"

# ---- destroy a retired key ----------------------------------------------------------
destroyed() {
	adm key jwk --key "$key_a" > /dev/null || return 1
	id7=$(start --action destroy --key "$kid_a" --reason "retired a year ago") && approve "$id7" officer-a &&
		approve "$id7" officer-c || return 1
	adm ceremony execute "$id7" > "$work/destroy.json" || return 1
	[ "$(jget "$work/destroy.json" token_objects)" = destroyed ] || return 1
	# the token objects are gone
	adm key jwk --key "$key_a" > /dev/null 2>&1 && return 1
	[ "$(sql "SELECT destroyed_ceremony FROM signing_keys WHERE kid = '$kid_a'")" = "$id7" ] &&
		[ "$(key_state "$kid_a")" = retired ] && [ "$(audit_count key.destroy "$kid_a" success)" = 1 ]
}
check "destroy the retired key A: its token objects gone, recorded" destroyed
check "destroy it again: refused at start, audited" \
	refused ceremony.start "$kid_a" conflict "destroyed already" adm ceremony start --action destroy --key "$kid_a"
check "destroy the active key: refused at start, audited" \
	refused ceremony.start "$kid_b" key_forbidden "only a retired or compromised" \
	adm ceremony start --action destroy --key "$kid_b"
check "the active key B still signs (key jwk, key csr)" \
	adm key csr --key "$(jget "$work/gen-it-ceremony-b.json" uri)" --subject /CN=still-here --out "$work/b.csr"

# ---- transcripts ---------------------------------------------------------------------
transcript_verifies() {
	adm ceremony transcript "$id1" --out "$work/t1.txt" || return 1
	grep -q "officer-a" "$work/t1.txt" && grep -q -- "-----BEGIN CREDSIGN CEREMONY RECORD-----" "$work/t1.txt" ||
		return 1
	adm ceremony verify-transcript "$work/t1.txt" > "$work/vt.out" || { cat "$work/vt.out"; return 1; }
	grep -q "^transcript of ceremony $id1 (activate) VERIFIED" "$work/vt.out" || { cat "$work/vt.out"; return 1; }
	# offline: the officer CA and the JWKS, no configuration
	"$BUILD/bin/credsign-admin" ceremony verify-transcript "$work/t1.txt" --officer-ca "$pki/officer-ca.pem" \
		--jwks "$work/jwks.json" > "$work/vt2.out" || { cat "$work/vt2.out"; return 1; }
	grep -q "old key's signature verified against the JWKS" "$work/vt2.out" || { cat "$work/vt2.out"; return 1; }
}
check "transcript of the activation, verify-transcript (configured, and offline with --jwks)" transcript_verifies
# the officers as an auditor lists them: "NAME SHA256:HEX"
{
	echo "# officers of the credsign appliance"
	for o in officer-a officer-b officer-c; do echo "$o $(fpr "$officers_dir/$o.pem")"; done
} > "$work/roster.txt"
offline_without_roster() {
	"$BUILD/bin/credsign-admin" ceremony verify-transcript "$work/t1.txt" --officer-ca "$pki/officer-ca.pem" \
		> "$work/vt5.out" 2> "$work/vt5.err" || { cat "$work/vt5.out" "$work/vt5.err"; return 1; }
	local warning="officer roster NOT checked: compare these fingerprints with your list of officers"
	grep -q "$warning" "$work/vt5.out" && grep -q "$warning" "$work/vt5.err" || { cat "$work/vt5.out" "$work/vt5.err"; return 1; }
	# each approval by its certificate, the recorded name marked unchecked; nothing claimed not checked
	grep -q "^approval 1: certificate $(dn "$officers_dir/officer-a.pem"), $(fpr "$officers_dir/officer-a.pem") (recorded as 'officer-a', a name NOT checked)" \
		"$work/vt5.out" || { cat "$work/vt5.out"; return 1; }
	grep -q "old key's signature present, not checked (give --jwks)" "$work/vt5.out" &&
		grep -q "VERIFIED; officer roster NOT checked" "$work/vt5.out" || { cat "$work/vt5.out"; return 1; }
}
check "verify-transcript with only --officer-ca: says the roster is not checked, shows certificates" \
	offline_without_roster
offline_with_roster() {
	"$BUILD/bin/credsign-admin" ceremony verify-transcript "$work/t1.txt" --officer-ca "$pki/officer-ca.pem" \
		--officers "$work/roster.txt" > "$work/vt6.out" 2> "$work/vt6.err" || { cat "$work/vt6.out" "$work/vt6.err"; return 1; }
	grep -q "^officers: checked against the roster $work/roster.txt (3 officers)" "$work/vt6.out" &&
		grep -q "^approval 2: officer officer-b ($(dn "$officers_dir/officer-b.pem"), SHA256:.*): listed" "$work/vt6.out" &&
		grep -q "^transcript of ceremony $id1 (activate) VERIFIED\$" "$work/vt6.out" &&
		! grep -q "NOT checked" "$work/vt6.out" "$work/vt6.err" || { cat "$work/vt6.out" "$work/vt6.err"; return 1; }
}
check "verify-transcript --officers ROSTER: names and fingerprints checked" offline_with_roster
# the reviewer's case: officer-x approves as "officer-b" through a configuration of one's own
forged_name() {
	local kid_f id_f
	kid_f=$(gen it-ceremony-f) || return 1
	sed "s|$officers_dir/officer-b.pem|$officers_dir/officer-x.pem|" "$conf" > "$work/x.conf"
	id_f=$(start --config "$work/x.conf" --action retire --key "$kid_f") &&
		approve --config "$work/x.conf" "$id_f" officer-a && approve --config "$work/x.conf" "$id_f" officer-x &&
		"$BUILD/bin/credsign-admin" --config "$work/x.conf" ceremony execute "$id_f" > /dev/null &&
		"$BUILD/bin/credsign-admin" --config "$work/x.conf" ceremony transcript "$id_f" --out "$work/tx.txt" ||
		return 1
	# the CA alone cannot tell: verified, but with the warning and officer-x's certificate shown
	"$BUILD/bin/credsign-admin" ceremony verify-transcript "$work/tx.txt" --officer-ca "$pki/officer-ca.pem" \
		> "$work/vt7.out" 2> "$work/vt7.err" || { cat "$work/vt7.out"; return 1; }
	grep -q "^approval 2: certificate $(dn "$officers_dir/officer-x.pem"), $(fpr "$officers_dir/officer-x.pem") (recorded as 'officer-b', a name NOT checked)" \
		"$work/vt7.out" && grep -q "officer roster NOT checked" "$work/vt7.err" || { cat "$work/vt7.out"; return 1; }
	# with the roster, or the real configuration: refused
	"$BUILD/bin/credsign-admin" ceremony verify-transcript "$work/tx.txt" --officer-ca "$pki/officer-ca.pem" \
		--officers "$work/roster.txt" > "$work/vt8.out" 2>&1 && { cat "$work/vt8.out"; return 1; }
	grep -q "^transcript NOT VERIFIED: approval 2: unknown officer" "$work/vt8.out" || { cat "$work/vt8.out"; return 1; }
	adm ceremony verify-transcript "$work/tx.txt" > "$work/vt9.out" 2>&1 && { cat "$work/vt9.out"; return 1; }
	grep -q "^transcript NOT VERIFIED: approval 2: unknown officer" "$work/vt9.out" || { cat "$work/vt9.out"; return 1; }
	# a roster that lists officer-x under its own name: the recorded name is not its
	echo "officer-x $(fpr "$officers_dir/officer-x.pem")" >> "$work/roster.txt"
	"$BUILD/bin/credsign-admin" ceremony verify-transcript "$work/tx.txt" --officer-ca "$pki/officer-ca.pem" \
		--officers "$work/roster.txt" > "$work/vt10.out" 2>&1 && { cat "$work/vt10.out"; return 1; }
	grep -q "records officer 'officer-b', its certificate is officer-x's" "$work/vt10.out" ||
		{ cat "$work/vt10.out"; return 1; }
}
check "officer-x recorded as officer-b: verified only without a roster (and shown as officer-x); refused with one" \
	forged_name
bad_roster() {
	echo "officer-a SHA256:00" > "$work/roster-bad.txt"
	"$BUILD/bin/credsign-admin" ceremony verify-transcript "$work/t1.txt" --officer-ca "$pki/officer-ca.pem" \
		--officers "$work/roster-bad.txt" > "$work/vt11.out" 2> "$work/vt11.err" && return 1
	grep -q "roster-bad.txt:1: not \"NAME SHA256:HEX\"" "$work/vt11.err" || { cat "$work/vt11.err"; return 1; }
}
check "verify-transcript --officers: a malformed roster is refused (FILE:LINE)" bad_roster
edited_transcript_fails() {
	# one readable line edited: an approval's time
	python3 - "$work/t1.txt" "$work/t1-edited.txt" <<'PY' || return 1
import re, sys
text = open(sys.argv[1]).read()
head, armor = text.split("-----BEGIN CREDSIGN CEREMONY RECORD-----", 1)
edited, n = re.subn(r"officer-b", "officer-z", head, count=1)
assert n == 1
open(sys.argv[2], "w").write(edited + "-----BEGIN CREDSIGN CEREMONY RECORD-----" + armor)
PY
	adm ceremony verify-transcript "$work/t1-edited.txt" > "$work/vt3.out" && return 1
	grep -q "NOT VERIFIED" "$work/vt3.out" || { cat "$work/vt3.out"; return 1; }
	# and the armored record's edit as well
	python3 - "$work/t1.txt" "$work/t1-armor.txt" <<'PY' || return 1
import base64, json, sys
text = open(sys.argv[1]).read()
head, rest = text.split("-----BEGIN CREDSIGN CEREMONY RECORD-----\n", 1)
b64, tail = rest.split("-----END CREDSIGN CEREMONY RECORD-----", 1)
raw = base64.b64decode("".join(b64.split()))
edited = raw.replace(b"officer-b", b"officer-z", 1)
assert edited != raw
enc = base64.b64encode(edited).decode()
lines = "\n".join(enc[i:i + 64] for i in range(0, len(enc), 64))
open(sys.argv[2], "w").write(head + "-----BEGIN CREDSIGN CEREMONY RECORD-----\n" + lines + "\n"
                             + "-----END CREDSIGN CEREMONY RECORD-----" + tail)
PY
	adm ceremony verify-transcript "$work/t1-armor.txt" > "$work/vt4.out" && return 1
	grep -q "NOT VERIFIED" "$work/vt4.out" || { cat "$work/vt4.out"; return 1; }
}
check "an edited transcript (a readable line; the armored record) fails verify-transcript" edited_transcript_fails

# ---- certificate revocation -----------------------------------------------------------
revoked_now() {
	adm cert revoke "$cert1" --reason "credential exposed in a ticket" > "$work/revoke.json" || return 1
	[ "$(sql "SELECT reason FROM cert_revocations WHERE cert_id = '$cert1' AND ceremony_id IS NULL")" = \
		"credential exposed in a ticket" ] && [ "$(audit_count cert.revoke "$cert1" success)" -ge 1 ]
}
check "cert revoke (revoke_quorum 1): revoked at once, audited" revoked_now
check "cert revoke again: refused, audited" \
	refused cert.revoke "$cert1" conflict "revoked already" adm cert revoke "$cert1" --reason again
check "cert revoke of no certificate: refused, audited" \
	refused cert.revoke crt_nosuchcertificate not_found "no certificate" \
	adm cert revoke crt_nosuchcertificate --reason none
revoked_by_ceremony() {
	local rq2=("$BUILD/bin/credsign-admin" --config "$work/rq2.conf")
	"${rq2[@]}" cert revoke "$cert2" --reason "revoked by two" > "$work/rq2.out" 2> "$work/rq2.err" || return 1
	grep -q "revocation is a ceremony" "$work/rq2.err" || return 1
	id8=$(jget "$work/rq2.out" id) ||
		return 1
	[ -z "$(sql "SELECT cert_id FROM cert_revocations WHERE cert_id = '$cert2'")" ] || return 1
	approve --config "$work/rq2.conf" "$id8" officer-a || return 1
	refused ceremony.execute "$id8" quorum "1 valid approval" "${rq2[@]}" ceremony execute "$id8" || return 1
	approve --config "$work/rq2.conf" "$id8" officer-b && "${rq2[@]}" ceremony execute "$id8" > /dev/null ||
		return 1
	[ "$(sql "SELECT ceremony_id FROM cert_revocations WHERE cert_id = '$cert2'")" = "$id8" ]
}
check "cert revoke with revoke_quorum 2: a ceremony, revoked when two approved" revoked_by_ceremony

# ---- the audit purge -------------------------------------------------------------------
purge_refused() {
	adm audit purge > /dev/null 2> "$work/purge.err" && return 1
	grep -q "audit purge is a ceremony" "$work/purge.err" || { cat "$work/purge.err"; return 1; }
	[ "$(audit_count audit.purge - refused ceremony_required)" -ge 1 ]
}
check "audit purge alone: refused, pointing at the ceremony, audited" purge_refused
purge_ceremony() {
	id9=$(start --action purge) && approve "$id9" officer-b && approve "$id9" officer-c || return 1
	adm ceremony execute "$id9" > "$work/purge.out" 2> "$work/purge.err" || { cat "$work/purge.out" "$work/purge.err"; return 1; }
	grep -q "nothing to purge" "$work/purge.out" || { cat "$work/purge.out"; return 1; }
	[ "$(sql "SELECT state FROM ceremonies WHERE id = '$id9'")" = executed ]
}
check "audit purge as a ceremony: two officers, executed" purge_ceremony

# ---- the active key compromised: none active, then a successor signs alone ------------------
active_compromised() {
	id10=$(start --action compromise --key "$kid_b" --reason "HSM partition exposed") &&
		approve "$id10" officer-a && approve "$id10" officer-b || return 1
	adm ceremony execute "$id10" > /dev/null || return 1
	[ "$(key_state "$kid_b")" = compromised ] &&
		[ -z "$(sql "SELECT kid FROM signing_keys WHERE status = 'active'")" ]
}
check "compromise the active key: no key is active" active_compromised
successor_alone() {
	id11=$(start --action activate --key "$kid_d") || return 1
	python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["params"] == {"old_kid": None}' \
		"$work/start.json" || return 1
	approve "$id11" officer-b && approve "$id11" officer-c && adm ceremony execute "$id11" > /dev/null || return 1
	[ "$(key_state "$kid_d")" = active ] || return 1
	sql "SELECT statement_json FROM key_rollovers WHERE ceremony_id = '$id11' AND old_kid IS NULL" \
		> "$work/rollover2.json"
	/usr/bin/python3 - "$work/rollover2.json" "$kid_d" <<'PY'
import json, sys
from jwcrypto import jwk, jws
from jwcrypto.common import base64url_decode
stmt, new = json.load(open(sys.argv[1])), sys.argv[2]
assert len(stmt["signatures"]) == 1, stmt
claims = json.loads(base64url_decode(stmt["payload"]))
assert claims["old_kid"] is None and claims["new_kid"] == new, claims
key = jwk.JWK(**claims["new_jwk"])
assert key.thumbprint() == new
token = jws.JWS()
token.deserialize(json.dumps(stmt))
token.verify(key, alg="ES256")
PY
}
check "activate after the compromise: the new key alone signs the rollover (old_kid null)" successor_alone

# ---- expiry_minutes 1, run out -----------------------------------------------------------
short_expired() {
	local left=$((${short_expires:-0} + 1 - $(date +%s)))
	[ "$left" -le 0 ] || sleep "$left"
	refused ceremony.execute "$id_short" ceremony_expired "expired" \
		"$BUILD/bin/credsign-admin" --config "$work/short.conf" ceremony execute "$id_short"
}
check "the expiry_minutes 1 ceremony, a minute later: refused (expired), audited" short_expired
clock_set_back() {
	command -v faketime > /dev/null || { echo "  faketime missing (hsm-setup/install-deps)"; return 1; }
	local exp now back
	exp=$(python3 -c 'import calendar, sys, time
print(calendar.timegm(time.strptime(sys.argv[1][:19], "%Y-%m-%dT%H:%M:%S")))' "$clock_expires") || return 1
	now=$(date +%s)
	[ "$now" -gt "$exp" ] || sleep $((exp + 1 - now))
	# an entry at the right time after the expiry (here a transcript; on a
	# real appliance the daemon's own entries), then the clock set back
	adm ceremony transcript "$id_clock" --out "$work/t-clock.txt" || return 1
	# -2m, or further back when the test took longer: 30 s before the expiry
	now=$(date +%s)
	back=$((now - exp + 30))
	[ "$back" -ge 120 ] || back=120
	# the faked clock is before the expiry; the audit log's newest entry is not
	[ "$(faked "-${back}s" date +%s)" -lt "$exp" ] || { echo "  faketime did not set the clock back"; return 1; }
	refused ceremony.execute "$id_clock" ceremony_expired "expired" \
		faked "-${back}s" "$BUILD/bin/credsign-admin" --config "$work/short.conf" ceremony execute "$id_clock" ||
		return 1
	grep -q "this host's clock (.*) is behind the audit log's newest entry" "$work/refused.err" ||
		{ cat "$work/refused.err"; return 1; }
	refused ceremony.approve "$id_clock" ceremony_expired "expired" \
		faked "-${back}s" "$BUILD/bin/credsign-admin" --config "$work/short.conf" ceremony approve "$id_clock" \
		--officer-cert "$officers_dir/officer-c.pem" --officer-key "$officers_dir/officer-c.key" || return 1
	[ "$(key_state "$kid_e")" = pending ] &&
		[ "$(sql "SELECT state FROM ceremonies WHERE id = '$id_clock'")" = open ]
}
check "an expired ceremony under a clock set back (faketime): execute and approve refused, audited" clock_set_back

listed() {
	adm ceremony list > "$work/list.txt" || return 1
	[ "$(grep -c '^cer_' "$work/list.txt")" -eq 14 ] && grep -q "^$id1 *activate *executed *2 " "$work/list.txt" ||
		{ cat "$work/list.txt"; return 1; }
}
check "ceremony list: every ceremony with its state" listed
audit_intact() {
	adm audit verify > "$work/verify.out" 2>&1
	local rc=$?
	[ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || { cat "$work/verify.out"; return 1; }
}
check "the audit log's chain is intact after all of it" audit_intact

finish
