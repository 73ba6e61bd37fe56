#!/usr/bin/env bash
# "Did our appliance sign this?" from the bytes, and the JWKS of profiles,
# over real mTLS (curl), against a daemon with signing profiles:
#  - GET /api/signatures?sha256=HEX: the records whose signed bytes have
#    that SHA-256 (a digest signed under two profiles, a JWS's signing
#    input), newest first, each as GET /api/signatures/{id} answers it
#    but never with the payload (a profile with store_payload: the record
#    by id has it, the lookup not); only the profiles the caller may read
#    (an auditor of one profile, a signer of another: []); at most 100 (of
#    103); "truncated": false when that is all the caller may read, true
#    when more readable records exist (103 readable; 100 readable of 101
#    is false for the reader of 100, true for the reader of all) or the
#    scan of the newest 10000 records left some unread (10000 unreadable:
#    false; 10001: true); [] for bytes never signed; audited
#    (signature.read, object sha256=HEX, the role);
#    refused (403, audited) for an operator, an auditor grant without
#    profiles and an identity without a grant; the grant's rate limit pays
#    one token per request (429); a malformed, missing or repeated sha256
#    or another parameter: 400;
#  - the ?profile= JWKS names the profile: formats, typ, payload types,
#    configured true; no "profile" member without ?profile=; each key says
#    the formats it signed ("formats_signed", sorted, from its records:
#    [] before it signed), the certificate JWKS's keys do not;
#  - a profile taken out of the configuration whose keys the store holds:
#    its JWKS and rollovers still served (its key, configured false, what
#    it signed: digest), its
#    records still found by a "*" grant (not by grants naming profiles);
#    a name neither configured nor recorded stays 404 unknown_profile;
#  - the client: credsign signature get ID, credsign signature find
#    --sha256 HEX | --file FILE.
#
#   signing_lookup_test.sh BUILD_DIR STATE_DIR SOFTHSM_MODULE
BUILD=${1:?}
STATE=${2:?}
SOFTHSM=${3:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_token signing-lookup || exit 1

INTOTO=application/vnd.in-toto+json
profiles_group() { # profiles_group WITH_OLD
	local old=''
	[ "$1" = 1 ] && old=',
    { name = "old"; key = "pkcs11:token=cstest;object=it-slk-old"; formats = [ "digest" ]; }'
	echo 'signing = { batch_max = 101; profiles = (
    { name = "release"; key = "pkcs11:token=cstest;object=it-slk-release";
      formats = [ "jws", "dsse", "digest" ]; typ = "release+jwt"; payload_types = [ "'$INTOTO'" ]; },
    { name = "tokens"; key = "pkcs11:token=cstest;object=it-slk-tokens"; formats = [ "jws" ]; typ = "JWT";
      store_payload = true; }'"$old"'
  ); };'
}
grants() { # grants WITH_OLD
	local ci='"release", "tokens", "old"' aud='"release"'
	[ "$1" = 1 ] || { ci='"release", "tokens"'; aud='"*"'; }
	echo '{ identity = "spiffe://credsign.test/ci-deployer"; role = "signer"; profiles = [ '"$ci"' ]; },
    { identity = "spiffe://credsign.test/web-deployer"; role = "signer"; profiles = [ "tokens" ];
      rate = 0.001; burst = 2; },
    { identity = "spiffe://credsign.test/auditor"; role = "auditor"; projects = [ "*" ]; profiles = [ '"$aud"' ]; },
    { identity = "spiffe://credsign.test/operator"; role = "operator"; },
    { identity = "spiffe://credsign.test/operator"; role = "auditor"; projects = [ "*" ]; }'
}

# the profile keys, made before the daemon's first start (lib.sh)
profile_keys signing-lookup "$(profiles_group 1)" it-slk release tokens old || exit 1

GRANTS=$(grants 1) EXTRA_CONF=$(profiles_group 1) it_setup signing-lookup || exit 1

sign() { call "$1" POST /api/sign "$2"; }
sql() { sqlite3 -cmd '.timeout 10000' "$db" "$1"; }
body() { cut -d' ' -f2- <<< "$1"; }
DIGEST=ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad # SHA-256("abc")
NEVER=0000000000000000000000000000000000000000000000000000000000000001
OLD_ONLY=00000000000000000000000000000000000000000000000000000000000000aa
digest_item() { echo '{"profile":"'$1'","format":"digest","digest":{"alg":"SHA-256","value":"'$2'"}}'; }
signed_id() { # signed_id WHO BODY: the signature id of a single signed item
	local got
	got=$(sign "$1" "$2")
	[[ "$got" == "200 "* ]] || { echo "  sign: ${got:0:300}" >&2; return 1; }
	json_field "$(body "$got")" signature_id
}

# ---- what each profile key signed, in its profile's JWKS ------------------------------------
jwks() { curl -s $(client stranger) "$url/.well-known/jwks.json$1"; }
# formats_signed QUERY FORMATS-JSON: every key of that JWKS says it signed these
formats_signed() {
	python3 - "$(jwks "$1")" "$2" <<'PY'
import json, sys
doc, want = json.loads(sys.argv[1]), json.loads(sys.argv[2])
assert doc["keys"], doc
got = [k.get("formats_signed") for k in doc["keys"]]
assert got == [want] * len(got), got
PY
}
check "JWKS: a profile key that signed nothing yet: formats_signed []" formats_signed '?profile=release' '[]'
no_formats_signed() {
	python3 - "$(jwks '')" <<'PY'
import json, sys
keys = json.loads(sys.argv[1])["keys"]
assert keys and all("formats_signed" not in k for k in keys), keys
PY
}
check "the certificate JWKS's keys have no formats_signed" no_formats_signed

# the same digest signed under release twice and under old once; a JWS
id_r1=$(signed_id ci-deployer "$(digest_item release $DIGEST)") &&
	id_o1=$(signed_id ci-deployer "$(digest_item old $DIGEST)") &&
	id_r2=$(signed_id ci-deployer "$(digest_item release $DIGEST)") &&
	id_o2=$(signed_id ci-deployer "$(digest_item old $OLD_ONLY)") || { echo "cannot sign"; exit 1; }
jws_answer=$(sign ci-deployer '{"profile":"release","format":"jws","payload":{"artifact":"app.tar.gz"}}')
jws=$(json_field "$(body "$jws_answer")" jws)
jws_id=$(json_field "$(body "$jws_answer")" signature_id)
# the SHA-256 of the JWS signing input, computed here
jws_sha=$(printf '%s' "${jws%.*}" | sha256sum | cut -d' ' -f1)
# a JWS of tokens, whose records keep the payload
tok_answer=$(sign ci-deployer '{"profile":"tokens","format":"jws","payload":{"scope":"deploy"}}')
tok_jws=$(json_field "$(body "$tok_answer")" jws)
tok_id=$(json_field "$(body "$tok_answer")" signature_id)
tok_sha=$(printf '%s' "${tok_jws%.*}" | sha256sum | cut -d' ' -f1)

# lookup WHO HEX: "STATUS BODY"
lookup() { call "$1" GET "/api/signatures?sha256=$2"; }
# found WHO HEX ID...: 200 and exactly these records, in this order, each
# equal to what GET /api/signatures/{id} answers but for the payload (never
# in a lookup), "truncated" false (TRUNCATED=true: true)
found() {
	local who=$1 hex=$2 got id truncated=${TRUNCATED:-false}
	shift 2
	got=$(lookup "$who" "$hex")
	[[ "$got" == "200 "* ]] || { echo "  ${got:0:300}"; return 1; }
	body "$got" > "$work/found.json"
	: > "$work/records.json"
	for id in "$@"; do
		call "$who" GET "/api/signatures/$id" | cut -d' ' -f2- >> "$work/records.json"
	done
	python3 - "$work/found.json" "$work/records.json" "$truncated" "$hex" "$@" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
want = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
truncated, hex_, ids = json.loads(sys.argv[3]), sys.argv[4], sys.argv[5:]
assert set(doc) == {"signatures", "truncated"}, doc
assert doc["truncated"] is truncated, doc["truncated"]
got = doc["signatures"]
assert [r["signature_id"] for r in got] == ids, ([r["signature_id"] for r in got], ids)
assert all("payload" not in r for r in got), got
for r in want:
    r.pop("payload", None)
assert got == want, (got, want)
assert all(r["signed_sha256"] == hex_ for r in got)
seqs = [r["audit_seq"] for r in got]
assert seqs == sorted(seqs, reverse=True), seqs
PY
}
check "find by digest: the signer of both profiles gets all three records, newest first, as GET by id" \
	found ci-deployer "$DIGEST" "$id_r2" "$id_o1" "$id_r1"
check "find by the SHA-256 of a JWS's signing input (computed by the relying party): its record" \
	found ci-deployer "$jws_sha" "$jws_id"
payload_by_id_only() {
	local got
	got=$(call ci-deployer GET "/api/signatures/$tok_id")
	python3 - "$(body "$got")" "$tok_jws" <<'PY' || return 1
import base64, json, sys
rec, jws = json.loads(sys.argv[1]), sys.argv[2]
# the caller's payload, not the claims as signed (docs/delegated-signing.md)
assert json.loads(base64.b64decode(rec["payload"])) == {"scope": "deploy"}, rec
PY
	TRUNCATED=false found ci-deployer "$tok_sha" "$tok_id"
}
check "a profile that stores payloads: the record by id has it, the lookup by SHA-256 not" payload_by_id_only
check "find: an auditor of release gets release's records only (old's left out)" \
	found auditor "$DIGEST" "$id_r2" "$id_r1"
check "find: bytes never signed: 200 []" found auditor "$NEVER"
check "find: a signer of another profile only: 200 []" found web-deployer "$DIGEST"
check "JWKS: formats_signed from the records (release: digest and jws, sorted)" \
	formats_signed '?profile=release' '["digest","jws"]'
check "JWKS: formats_signed of tokens: jws" formats_signed '?profile=tokens' '["jws"]'
check "JWKS: formats_signed of old: digest" formats_signed '?profile=old' '["digest"]'
find_audited() {
	lookup auditor "$DIGEST" > /dev/null &&
		[ "$(sql "SELECT action || '|' || outcome || '|' || role || '|' || actor || '|' || object FROM audit_log
		          ORDER BY seq DESC LIMIT 1")" = \
		  "signature.read|success|auditor|spiffe://credsign.test/auditor|sha256=$DIGEST" ]
}
check "find is audited: signature.read, success, the role, object sha256=HEX" find_audited
find_refused() { # find_refused WHO
	local got
	expect_error "$1" GET "/api/signatures?sha256=$DIGEST" "" 403 forbidden || return 1
	got=$(sql "SELECT action || '|' || outcome || '|' || error_code || '|' || actor || '|' || object FROM audit_log
	           ORDER BY seq DESC LIMIT 1")
	[[ "$got" == "signature.read|refused|forbidden|spiffe://credsign.test/$1|"* ]] || { echo "  $got"; return 1; }
}
check "find: an operator (no signer or auditor grant) is refused, audited" find_refused operator
check "find: an identity without a grant is refused, audited" find_refused stranger
no_profiles() {
	# operator's auditor grant names no profile: refused like an auditor without profiles reading a record
	local got
	got=$(lookup operator "$DIGEST")
	[[ "$got" == *"with profiles"* ]] || { echo "  $got"; return 1; }
}
check "find: an auditor grant without profiles is refused, saying a grant with profiles is needed" no_profiles
# web-deployer's bucket of 2 paid one token by the [] find above
rate_paid() {
	lookup web-deployer "$DIGEST" | grep -q '^200 ' &&
		expect_error web-deployer GET "/api/signatures?sha256=$DIGEST" "" 429 rate_limited &&
		[ "$(sql "SELECT action || '|' || error_code FROM audit_log ORDER BY seq DESC LIMIT 1")" = \
		  "signature.read|rate_limited" ]
}
check "find pays one token of the grant: the third request against a bucket of 2 is 429, audited" rate_paid
malformed() {
	local upper
	upper=$(tr a-f A-F <<< "$DIGEST")
	expect_error auditor GET "/api/signatures?sha256=$upper" "" 400 invalid_field &&
		expect_error auditor GET "/api/signatures?sha256=${DIGEST:1}" "" 400 invalid_field &&
		expect_error auditor GET "/api/signatures?sha256=${DIGEST}0" "" 400 invalid_field &&
		expect_error auditor GET "/api/signatures" "" 400 invalid_field &&
		expect_error auditor GET "/api/signatures?sha256=$DIGEST&sha256=$DIGEST" "" 400 invalid_field &&
		expect_error auditor GET "/api/signatures?sha256=$DIGEST&profile=release" "" 400 unknown_field &&
		expect_error auditor POST "/api/signatures?sha256=$DIGEST" '{}' 405 method_not_allowed &&
		[ "$(sql "SELECT action || '|' || outcome FROM audit_log ORDER BY seq DESC LIMIT 1")" = \
		  "signature.read|refused" ]
}
check "find: sha256 not 64 lower-case hex digits, missing, repeated, or another parameter: 400" malformed

# at most 100: a batch of 100 more of the same digest (103 in all)
many() {
	local items i got
	items=$(digest_item release $DIGEST)
	for i in $(seq 99); do items+=",$(digest_item release $DIGEST)"; done
	got=$(sign ci-deployer '{"items":['"$items"']}')
	[[ "$got" == "200 "* ]] || { echo "  ${got:0:300}"; return 1; }
	got=$(lookup ci-deployer "$DIGEST")
	python3 - "$(body "$got")" "$(sql "SELECT id FROM signatures WHERE signed_sha256 = '$DIGEST'
	                                   ORDER BY audit_seq DESC LIMIT 100")" <<'PY'
import json, sys
doc = json.loads(sys.argv[1])
got = [r["signature_id"] for r in doc["signatures"]]
assert got == sys.argv[2].split(), (len(got), got[:3])
assert len(got) == 100
assert doc["truncated"] is True, doc["truncated"]
PY
}
check "find answers at most 100 records, the newest (of 103), truncated true" many
# count_truncated WHO HEX N TRUNCATED: N records and "truncated" so
count_truncated() {
	local got
	got=$(lookup "$1" "$2")
	[[ "$got" == "200 "* ]] || { echo "  ${got:0:300}"; return 1; }
	python3 - "$(body "$got")" "$3" "$4" <<'PY'
import json, sys
doc, n, truncated = json.loads(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
assert len(doc["signatures"]) == n and doc["truncated"] is truncated, (len(doc["signatures"]), doc["truncated"])
PY
}
# a digest signed under release 100 times and once under old (the oldest)
DIGEST100=00000000000000000000000000000000000000000000000000000000000000bb
hundred() {
	local items i got
	items=$(digest_item old $DIGEST100)
	for i in $(seq 100); do items+=",$(digest_item release $DIGEST100)"; done
	got=$(sign ci-deployer '{"items":['"$items"']}')
	[[ "$got" == "200 "* ]] || { echo "  ${got:0:300}"; return 1; }
	[[ "$got" != *'"error"'* ]] || { echo "  an item refused: ${got:0:300}"; return 1; }
}
check "a batch: one digest 100 times under release and once under old" hundred
check "find: the 100 records the auditor of release may read are all there is: truncated false" \
	count_truncated auditor "$DIGEST100" 100 false
check "find: the signer of both profiles may read 101: 100 answered, truncated true" \
	count_truncated ci-deployer "$DIGEST100" 100 true
# the scan's cap: records written here (not signed: only what the lookup
# reads) of old, which the auditor of release may not read
SCANNED=00000000000000000000000000000000000000000000000000000000000000cc
unreadable() { # unreadable FROM TO: records scan-FROM..scan-TO of old
	local kid
	kid=$(sql "SELECT kid FROM signing_keys WHERE profile = 'old' AND status = 'active'")
	[ -n "$kid" ] && sql "INSERT INTO signatures (id, profile, format, requester, requester_cert_sha256, created_at,
	       signed_sha256, kid, signature, audit_seq)
	     WITH RECURSIVE n(i) AS (SELECT $1 UNION ALL SELECT i + 1 FROM n WHERE i < $2)
	     SELECT 'scan-' || i, 'old', 'digest', 'spiffe://credsign.test/ci-deployer', 'cc', '2025-01-01T00:00:00Z',
	       '$SCANNED', '$kid', 'sig', 1000000000 + i FROM n"
}
check "10000 records of a digest the auditor of release may not read" unreadable 1 10000
check "find: 10000 unread by the auditor of release, all scanned: [] and truncated false" \
	count_truncated auditor "$SCANNED" 0 false
check "one more (10001)" unreadable 10001 10001
check "find: 10001 records: the scan's cap left one unread: [] and truncated true" \
	count_truncated auditor "$SCANNED" 0 true

# ---- the JWKS names its profile --------------------------------------------------------
profile_member() { # profile_member QUERY EXPECTED-JSON
	local got
	got=$(jwks "$1")
	python3 - "$got" "$2" <<'PY'
import json, sys
doc, want = json.loads(sys.argv[1]), json.loads(sys.argv[2])
assert doc.get("profile") == want, doc.get("profile")
assert set(doc) == ({"keys", "profile"} if want is not None else {"keys"}), list(doc)
PY
}
check "the release JWKS says its formats (digest included), typ and payload types, configured" \
	profile_member '?profile=release' '{"name":"release","formats":["jws","dsse","digest"],"typ":"release+jwt",
	"payload_types":["application/vnd.in-toto+json"],"configured":true}'
check "the tokens JWKS: jws only, its typ, no payload types" \
	profile_member '?profile=tokens' '{"name":"tokens","formats":["jws"],"typ":"JWT","configured":true}'
check "the old JWKS: digest only, no typ" \
	profile_member '?profile=old' '{"name":"old","formats":["digest"],"configured":true}'
check "the certificate JWKS has no profile member" profile_member '' 'null'
old_kid=$(sql "SELECT kid FROM signing_keys WHERE profile = 'old' AND status = 'active'")

# ---- a profile taken out of the configuration ------------------------------------------------
# stopped_cleanly: the daemon stops on SIGTERM with status 0 and its log has
# no sanitizer report (the ASan build: no leak, no undefined behaviour)
stopped_cleanly() {
	local rc=0
	kill -TERM "$daemon" 2>/dev/null
	wait "$daemon" || rc=$?
	cp "$log" "$log.$daemon"
	! grep -E "Sanitizer|runtime error" "$log" && [ "$rc" -eq 0 ] || { echo "  exit status $rc"; return 1; }
}
check "the daemon stops cleanly after the lookups" stopped_cleanly
python3 - "$conf" "$(profiles_group 0)" "$(grants 0)" <<'PY'
import re, sys
path, group, grants = sys.argv[1:4]
text = open(path).read()
text = re.sub(r"signing = \{.*?\); \};", lambda m: group, text, flags=re.S)
text = re.sub(r"access = \{ grants = \(.*?\); \};", lambda m: "access = { grants = ( " + grants + " ); };", text,
              flags=re.S)
open(path, "w").write(text)
PY
grep -q '"old"' "$conf" && { echo "the old profile is still configured"; exit 1; }
start_daemon || exit 1
old_served() {
	local got
	got=$(jwks '?profile=old')
	python3 - "$got" "$old_kid" <<'PY'
import json, sys
doc, kid = json.loads(sys.argv[1]), sys.argv[2]
assert kid and [k["kid"] for k in doc["keys"]] == [kid], doc
assert doc["keys"][0]["status"] == "active", doc
assert doc["keys"][0]["formats_signed"] == ["digest"], doc
assert doc["profile"] == {"name": "old", "configured": False}, doc
PY
}
check "a profile no longer configured: its JWKS still lists its key (what it signed), configured false" old_served
check "a profile no longer configured: its rollovers still served" \
	test "$(call stranger GET '/.well-known/credsign-rollover?profile=old')" = '200 {"rollovers":[]}'
check "a name neither configured nor recorded: JWKS 404 unknown_profile" \
	expect_error stranger GET '/.well-known/jwks.json?profile=nope' "" 404 unknown_profile
check "a name neither configured nor recorded: rollovers 404 unknown_profile" \
	expect_error stranger GET '/.well-known/credsign-rollover?profile=nope' "" 404 unknown_profile
check "a profile no longer configured signs nothing: 400 unknown_profile" \
	expect_error ci-deployer POST /api/sign "$(digest_item old $DIGEST)" 400 unknown_profile
check "a profile no longer configured: an auditor of every profile (\"*\") finds its records" \
	found auditor "$OLD_ONLY" "$id_o2"
check "a profile no longer configured: a signer naming profiles does not (200 [])" found ci-deployer "$OLD_ONLY"
old_record() {
	local got
	got=$(call auditor GET "/api/signatures/$id_o1")
	[[ "$got" == "200 "* && "$got" == *'"profile":"old"'* ]] || { echo "  ${got:0:300}"; return 1; }
	expect_error ci-deployer GET "/api/signatures/$id_o1" "" 403 forbidden
}
check "a record of the profile no longer configured: read by \"*\", refused to grants naming profiles" old_record

# ---- the client: credsign signature get / find -------------------------------------------------
cli() { # cli WHO ARGS...
	local who=$1
	shift
	"$BUILD/bin/credsign" --url "$url" --cacert "$pki/ca.pem" --cert "$clients/$who.pem" --key "$clients/$who.key" "$@"
}
cli_get() {
	cli auditor signature get "$jws_id" > "$work/cli-get.json" || return 1
	python3 - "$work/cli-get.json" "$jws_id" "$jws_sha" <<'PY'
import json, sys
rec = json.load(open(sys.argv[1]))
assert rec["signature_id"] == sys.argv[2] and rec["signed_sha256"] == sys.argv[3], rec
PY
}
check "credsign signature get ID prints the record" cli_get
cli_find() {
	printf 'app build 42\n' > "$work/artifact.bin"
	local hex id
	hex=$(sha256sum "$work/artifact.bin" | cut -d' ' -f1)
	id=$(signed_id ci-deployer "$(digest_item release "$hex")") || return 1
	cli auditor signature find --file "$work/artifact.bin" > "$work/cli-find-file.json" &&
		cli auditor signature find --sha256 "$hex" > "$work/cli-find-hex.json" || return 1
	python3 - "$work/cli-find-file.json" "$work/cli-find-hex.json" "$id" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert a == b and [r["signature_id"] for r in a["signatures"]] == [sys.argv[3]], (a, b)
PY
}
check "credsign signature find --file FILE and --sha256 HEX find the file's digest signature" cli_find
cli_refused() {
	! cli stranger signature find --sha256 "$DIGEST" > /dev/null 2> "$work/cli-refused.err" &&
		grep -q forbidden "$work/cli-refused.err"
}
check "credsign signature find: a refusal fails, saying why" cli_refused

verify_log() {
	"${admin[@]}" audit verify > "$work/verify.out" 2>&1 || { tail -5 "$work/verify.out"; return 1; }
}
check "credsign-admin audit verify: the log verifies" verify_log
check "the daemon serving a profile no longer configured stops cleanly" stopped_cleanly

finish
