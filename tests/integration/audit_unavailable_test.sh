#!/usr/bin/env bash
# The audit log refusing entries while the rest of the store writes (issue
# 18): a trigger added beside the running daemon makes every insert into
# audit_log fail (RAISE(ABORT)), store_probe and the other tables still
# write. Over real mTLS (curl) against a real credsignd:
#  - generate and certify, whose entry commits in their own transaction,
#    answer 503 store_unavailable: no credential, no certificate, nothing
#    stored (no session, no certificate row, the session still uncertified);
#  - POST /api/sign (one transaction, each item's entry and record in a
#    savepoint of its own): an item whose entry fails answers 503
#    audit_unavailable (a single item: the request's answer; in a batch:
#    the item's, every item refused), no JWS, no signature, no record
#    stored; the whole transaction failing (the write lock held past
#    audit.write_timeout_ms) answers 503 audit_unavailable for the request
#    (service_sign.c);
#  - reads whose entry is written before the answer leaves (GET /cert/{id},
#    GET /api/signatures/{id}, GET /api/audit) answer 503 audit_unavailable
#    and nothing else: the certificate, the record, the entries stay home;
#  - no entry is written meanwhile, and /readyz answers 503, also after
#    its 1 s trust in the last write (its probe appends an audit entry in a
#    savepoint it rolls back)
#    store_unavailable ("writes fail") right after a failed write (the
#    ledger's write health, docs/design.md);
#  - once the trigger is dropped: /readyz 200, every request above succeeds
#    again (the session refused meanwhile certifies now), and
#    `credsign-admin audit verify` finds the log intact.
#
#   audit_unavailable_test.sh BUILD_DIR STATE_DIR SOFTHSM_MODULE
BUILD=${1:?}
STATE=${2:?}
SOFTHSM=${3:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=sqlite_lock.sh
. "$(dirname "$0")/sqlite_lock.sh" # lock_on, lock_off: the write lock held
it_token audit-unavailable || exit 1

SIGNING_GROUP='signing = { profiles = (
    { name = "release"; key = "pkcs11:token=cstest;object=it-aun-release";
      formats = [ "jws", "digest" ]; typ = "release+jwt"; max_payload_bytes = 1024; store_payload = true; }
  ); };'
GRANTS="$DEFAULT_GRANTS"',
    { identity = "spiffe://credsign.test/ci-deployer"; role = "signer"; profiles = [ "release" ]; },
    { identity = "spiffe://credsign.test/auditor"; role = "auditor"; projects = [ "*" ]; profiles = [ "release" ]; }'
profile_keys audit-unavailable "$SIGNING_GROUP" it-aun release || exit 1
EXTRA_CONF="$SIGNING_GROUP audit = { write_timeout_ms = 800; };" it_setup audit-unavailable || exit 1

sql() { sqlite3 "$db" "$1"; }
DIGEST=ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
JWS_ITEM='{"profile":"release","format":"jws","payload":{"artifact":"app.tar.gz"}}'
SIGN_BODY='{"items":['"$JWS_ITEM"',{"profile":"release","format":"digest","digest":{"alg":"SHA-256","value":"'$DIGEST'"}}]}'
generate() { call ci-deployer POST /api/generate "{$PAYMENTS,\"preset\":\"soc2\"}"; }
certify() { call ci-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$1\"}"; }
counts() { sql "SELECT (SELECT count(*) FROM audit_log) || ' ' || (SELECT count(*) FROM generation_sessions) || ' ' ||
                       (SELECT count(*) FROM certificates) || ' ' || (SELECT count(*) FROM signatures)"; }

# ---- before the fault: a certificate, a session to certify later, a signature ----------
got=$(generate)
sid=$(json_field "${got#200 }" generation_session_id) || { echo "generate: $got"; exit 1; }
got=$(certify "$sid")
cert_id=$(json_field "${got#201 }" cert_id) || { echo "certify: $got"; exit 1; }
got=$(generate)
pending=$(json_field "${got#200 }" generation_session_id) || { echo "generate: $got"; exit 1; }
got=$(call ci-deployer POST /api/sign "$SIGN_BODY")
sig_id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["items"][0]["signature_id"])' "${got#200 }") ||
	{ echo "sign: $got"; exit 1; }
cert_body=$(call auditor GET "/cert/$cert_id")
[[ "$cert_body" == "200 "* ]] || { echo "GET /cert: $cert_body"; exit 1; }

# ---- the fault --------------------------------------------------------------------------
fault_on() { sql "CREATE TRIGGER it_audit_fault BEFORE INSERT ON audit_log
                  BEGIN SELECT RAISE(ABORT, 'audit log fault injected by the test'); END;"; }
fault_off() { sql "DROP TRIGGER IF EXISTS it_audit_fault"; }
trap 'fault_off 2>/dev/null; stop_started' EXIT
# credsign_audit_write_failures_total (GET /metrics, itself audited: read
# before and after the fault)
write_failures() {
	call operator GET /metrics | sed -n 's/^credsign_audit_write_failures_total \([0-9]*\)$/\1/p'
}
failures_before=$(write_failures)
before=$(counts)
check "the fault is in place (a trigger refusing audit_log inserts)" fault_on

# no_secret GOT: the answer carries an error and none of what a success carries
no_secret() {
	[[ "$1" != *'"credential"'* && "$1" != *'"certificate"'* && "$1" != *'"jws"'* && "$1" != *'"signature"'* &&
		"$1" != *'"signature_id"'* && "$1" != *'"entries"'* && "$1" != *eyJ* ]]
}
# refused GOT CODE: 503, the JSON error CODE, nothing else
refused() {
	[[ "$1" == "503 "* ]] && [ "$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(sorted(d), d["error"]["code"])' \
		"${1#503 }" 2>/dev/null)" = "['error'] $2" ] && no_secret "$1" || {
		echo "  expected 503 $2 and nothing else, got: ${1:0:300}"
		return 1
	}
}

gen_refused() {
	local got try
	got=$(generate)
	refused "$got" store_unavailable || return 1
	# /readyz trusts the last write's outcome for 1 s, then probes with a
	# write that appends an audit entry in a savepoint rolled back: both
	# right after the failed write and 1.5 s later (the probe's turn) it
	# says the store cannot write
	for wait in 0 1.5; do
		sleep "$wait"
		got=$(call operator GET /readyz)
		[[ "$got" == "503 "* && "$got" == *'"code":"store_unavailable"'* && "$got" == *'"store":"writes fail"'* ]] || {
			echo "  /readyz (after ${wait} s): ${got:0:300}"
			return 1
		}
	done
}
check "generate -> 503 store_unavailable, no credential; /readyz 503 store_unavailable (writes fail), also once the idle probe answers" gen_refused
check "certify -> 503 store_unavailable, no certificate" refused "$(certify "$pending")" store_unavailable
check "sign (one item) -> 503 audit_unavailable, no signature" \
	refused "$(call ci-deployer POST /api/sign "$JWS_ITEM")" audit_unavailable
batch_refused() { # a batch answers per item: every item 503 audit_unavailable, nothing signed
	local got
	got=$(call ci-deployer POST /api/sign "$SIGN_BODY")
	[[ "$got" == "200 "* ]] && python3 - "${got#200 }" <<'PY' || { echo "  ${got:0:300}"; return 1; }
import json, sys
d = json.loads(sys.argv[1])
assert list(d) == ["items"] and len(d["items"]) == 2, d
for i in d["items"]:
    assert sorted(i) == ["error", "status"] and i["status"] == 503, i
    assert i["error"]["code"] == "audit_unavailable", i
PY
	no_secret "${got/\"items\"/}"
}
check "sign (a batch: jws and digest) -> every item 503 audit_unavailable, no signature" batch_refused
check "GET /cert/{id} -> 503 audit_unavailable, not the certificate" \
	refused "$(call auditor GET "/cert/$cert_id")" audit_unavailable
check "GET /api/signatures/{id} -> 503 audit_unavailable, not the record" \
	refused "$(call ci-deployer GET "/api/signatures/$sig_id")" audit_unavailable
check "GET /api/audit -> 503 audit_unavailable, no entries" refused "$(call auditor GET /api/audit)" audit_unavailable
nothing_stored() {
	local now
	now=$(counts)
	[ "$now" = "$before" ] || { echo "  audit_log sessions certificates signatures: $before before, $now now"; return 1; }
	[ "$(sql "SELECT cert_id IS NULL FROM generation_sessions WHERE id = '$pending'")" = 1 ] ||
		{ echo "  the refused session is marked certified"; return 1; }
}
check "nothing stored: no entry, session, certificate or signature record; the session still uncertified" nothing_stored
check "the daemon logs each signed item whose entry it could not write" \
	grep -q 'the entry of item 1 (1 item(s)) not written' "$log"
check "the daemon is still up" test "$(curl -s -o /dev/null -w '%{http_code}' $(client operator) "$url/healthz")" = 200

# ---- the fault removed: everything works again -----------------------------------------
check "the fault is removed" fault_off
counted() {
	local now
	now=$(write_failures)
	[ -n "$failures_before" ] && [ -n "$now" ] && [ "$now" -ge $((failures_before + 3)) ] ||
		{ echo "  credsign_audit_write_failures_total: '$failures_before' before, '$now' after"; return 1; }
}
check "GET /metrics counts the entries not written (credsign_audit_write_failures_total, the three reads at least)" counted

# ---- the signing transaction failing as a whole: the write lock held -------------------
# (past audit.write_timeout_ms, by another process; readers still read: WAL)
sign_locked() {
	local got now
	before=$(counts)
	lock_on || { echo "  could not take the write lock"; return 1; }
	got=$(call ci-deployer POST /api/sign "$SIGN_BODY")
	lock_off
	refused "$got" audit_unavailable || return 1
	now=$(counts)
	[ "$now" = "$before" ] || { echo "  audit_log sessions certificates signatures: $before before, $now now"; return 1; }
	grep -q 'signing entries not written' "$log" || { echo "  not logged"; return 1; }
}
check "sign while the write lock is held -> 503 audit_unavailable for the batch, nothing stored, logged" sign_locked
recovered() {
	local got
	for _ in $(seq 30); do
		got=$(call operator GET /readyz)
		[[ "$got" == "200 "* ]] && break
		sleep 0.1
	done
	[[ "$got" == "200 "* ]] || { echo "  /readyz: ${got:0:300}"; return 1; }
	got=$(generate)
	[[ "$got" == "200 "* && "$got" == *'"credential"'* ]] || { echo "  generate: ${got:0:300}"; return 1; }
	got=$(certify "$pending")
	[[ "$got" == "201 "* ]] || { echo "  certify of the refused session: ${got:0:300}"; return 1; }
	got=$(call ci-deployer POST /api/sign "$SIGN_BODY")
	[[ "$got" == "200 "* && "$got" == *'"jws"'* && "$got" != *'"error"'* ]] || { echo "  sign: ${got:0:300}"; return 1; }
	got=$(call auditor GET "/cert/$cert_id")
	[ "$got" = "$cert_body" ] || { echo "  GET /cert: ${got:0:300}"; return 1; }
	got=$(call ci-deployer GET "/api/signatures/$sig_id")
	[[ "$got" == "200 "* ]] || { echo "  GET /api/signatures: ${got:0:300}"; return 1; }
}
check "recovery: /readyz 200; generate, certify (the refused session), sign and the reads succeed" recovered
# the idle probes above (after 1.5 s of the fault, and at the recovery)
# appended their entry in a savepoint they rolled back: none is in the log
probe_ready() { sleep 1.2; [[ "$(call operator GET /readyz)" == "200 "* ]]; } # past 1 s: a probe of its own
check "an idle /readyz probes and answers 200" probe_ready
check "no readiness probe left an entry in the audit log" \
	test "$(sql "SELECT count(*) FROM audit_log WHERE action = 'readiness.probe'")" = 0
stop_daemon
check "the daemon stops cleanly" test $? -eq 0
verify() {
	local out
	out=$("$BUILD/bin/credsign-admin" --config "$conf" audit verify 2>&1) &&
		[[ "$out" == *"audit log intact"* ]] || { echo "  $out"; return 1; }
}
check "credsign-admin audit verify: the log is intact" verify
finish
