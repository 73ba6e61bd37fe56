#!/usr/bin/env bash
# credsign evidence verify (docs/evidence.md): a package exported by
# credsign-admin evidence export from a real daemon verifies offline; every
# file changed by one byte, a certificate removed, an audit entry removed
# from entries.jsonl or from chain.jsonl, a hostile archive (.., absolute,
# link, duplicate, a second top directory) and a kept JWKS of other keys
# each fail, naming the package file (or member) concerned. Round two
# (an attacker's review): a sparse-member memory bomb is refused quickly
# with a bounded RSS, data after the end-of-archive blocks is refused, a
# forger's re-signed (unpinned) package missing an in-scope audit entry or
# with another inventory range fails, and an intact package verified
# against its own keys exits 3, not 0 (0 only with --jwks). Each inventory,
# scope, policy and audit check fails on its own in a re-signed package: a
# file not in the manifest, another scope project or range, a record's
# system or requester, a revoked or superseded record said current, a
# record removed, the CSV alone, the policy's text, an entry past the last
# checkpoint, a certify entry left out with the chain re-hashed.
#
#   evidence_verify_test.sh BUILD_DIR STATE_DIR SOFTHSM_MODULE
BUILD=${1:?}
STATE=${2:?}
SOFTHSM=${3:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_token evidence_verify || exit 1

EXTRA_CONF='audit = { checkpoint_entries = 5; checkpoint_seconds = 1; };' it_setup evidence_verify || exit 1
tamper() { python3 "$src/tests/integration/evidence_tamper.py" "$@"; }
verify() { "$BUILD/bin/credsign" evidence verify "$@"; }

# ---- three certificates for two systems (db rotated), one in another project -------
certify() { # certify CLIENT BODY: the new certificate's id
	local got sid
	got=$(call "$1" POST /api/generate "$2")
	sid=$(json_field "${got#200 }" generation_session_id)
	got=$(call "$1" POST /api/generate-certificate "{\"generation_session_id\":\"$sid\"}")
	json_field "${got#201 }" cert_id
}
c1=$(certify ci-deployer "{$PAYMENTS,\"preset\":\"soc2\",\"system\":\"db\"}")
c2=$(certify ci-deployer "{$PAYMENTS,\"preset\":\"soc2\",\"system\":\"db\"}")
c3=$(certify ci-deployer "{$PAYMENTS,\"preset\":\"soc2\",\"system\":\"web\"}")
other=$(certify web-deployer '{"project":"web","environment":"production","preset":"soc2","system":"www"}')
[ -n "$c1" ] && [ -n "$c2" ] && [ -n "$c3" ] && [ -n "$other" ] || { echo "certification failed"; exit 1; }
# a cert.read and a cert.revoke entry in scope
call ci-deployer GET "/cert/$c1" > /dev/null
"${admin[@]}" cert revoke "$c3" --reason "evidence test: revoked in scope" > /dev/null || echo "cert revoke failed"
kept=$work/kept-jwks.json
call auditor GET /.well-known/jwks.json | cut -d' ' -f2- > "$kept"
# the entries under a signed checkpoint (checkpoint_seconds = 1)
sleep 2.5

today=$(date -u +%F)
pkg=$work/evidence.tar
export_pkg() {
	"${admin[@]}" evidence export --project payments --environment production --from "$today" --to "$today" \
		--standards soc2 --out "$pkg" --auditor-cert "$clients/auditor.pem" --auditor-key "$clients/auditor.key"
}
for _ in 1 2 3 4 5; do
	export_pkg > "$work/export.out" 2>&1 && break
	sleep 1 # the last entry not yet under a checkpoint: the next one comes within a second
done
check "the export writes the package" test -s "$pkg"
[ -s "$pkg" ] || { cat "$work/export.out"; finish; exit 1; }

# ---- the package verifies ---------------------------------------------------------------
created=$(python3 -c '
import json,sys,tarfile; t=tarfile.open(sys.argv[1])
print(json.loads(t.extractfile([m for m in t if m.name.endswith("/manifest.json")][0]).read())["created_at"])' "$pkg")
verify "$pkg" > "$work/v.out" 2>&1
rc=$?
check "an exported package verified against its own keys: intact but unpinned (exit 3, not 0)" test "$rc" = 3
check "... the summary says VERIFIED against its own keys, NOT independently pinned" bash -c "
	grep -q '^VERIFIED evidence package .* against its own keys (NOT independently pinned' '$work/v.out' &&
	grep -q 'NOT independently pinned: give --jwks' '$work/v.out'"
check "... and prints the manifest's created_at" grep -qF "  created:       $created, by " "$work/v.out"
[ "$rc" = 3 ] || cat "$work/v.out"
verify "$pkg" --jwks "$kept" > "$work/v.out" 2>&1
rc=$?
check "with the kept JWKS it verifies (exit 0)" test "$rc" = 0
check "... and says the keys are pinned" grep -q 'pinned: the JWKS you kept' "$work/v.out"
check "... with the created_at" grep -qF "  created:       $created, by " "$work/v.out"
[ "$rc" = 0 ] || cat "$work/v.out"
verify "$pkg" --format json > "$work/v.json"
rc=$?
check "the JSON report says verified, not pinned (exit 3), with created_at and the counts" python3 -c '
import json,sys; r=json.load(open(sys.argv[1]))
assert sys.argv[2] == "3", sys.argv[2]
assert r["verified"] is True and r["pinned"] is False and r["failures"] == [] and r["counts"]["certificates"] == 3, r
assert r["created_at"] == sys.argv[3], r
assert r["counts"]["audit_entries"] >= 8 and r["keys"] == "package", r' "$work/v.json" "$rc" "$created"
verify "$pkg" --format json --jwks "$kept" > "$work/v.json"
rc=$?
check "... with --jwks: pinned true, exit 0" python3 -c '
import json,sys; r=json.load(open(sys.argv[1]))
assert sys.argv[2] == "0" and r["verified"] is True and r["pinned"] is True and r["keys"] == "pinned", r
' "$work/v.json" "$rc"
tamper list "$pkg" > "$work/files.txt"
check "the other project's certificate is not in it" bash -c "! grep -q '$other' '$work/files.txt'"
# usage_error DESCRIPTION STDERR-TEXT ARGS...: exit 2, stderr names it, no FAIL or summary on stdout
usage_error() {
	local what=$1 want=$2 rc
	shift 2
	"$BUILD/bin/credsign" evidence "$@" > "$work/u.out" 2> "$work/u.err"
	rc=$?
	if [ "$rc" = 2 ] && grep -qF -- "$want" "$work/u.err" && ! grep -q 'FAIL\|VERIFIED' "$work/u.out"; then
		passed=$((passed + 1))
		echo "ok - $what"
	else
		failed=$((failed + 1))
		echo "not ok - $what (exit $rc)"
		sed 's/^/    /' "$work/u.out" "$work/u.err" | head -10
	fi
}
usage_error "no FILE: exit 2, FILE required" "FILE (the package) is required" verify
usage_error "--format xml: exit 2 naming the option and value" "--format xml: not a format (text or json)" \
	verify "$pkg" --format xml
usage_error "an option evidence verify does not take is named" "--project is not an option of evidence verify" \
	verify "$pkg" --project payments
usage_error "an unknown subcommand is named" "unknown subcommand check" check "$pkg"
usage_error "a package that is not a regular file: exit 2 naming it" "/dev/null: cannot read it: not a regular file" \
	verify /dev/null
usage_error "a package that does not exist: exit 2 naming it and why" "$work/none.tar: cannot read it: No such file" \
	verify "$work/none.tar"
# a kept JWKS that cannot be read or is not one: the caller's input, not the package's failure
echo '{"keys":[]}' > "$work/empty-jwks.json"
echo '{"kty":"EC"}' > "$work/key-only.json"
printf 'not json' > "$work/text-jwks.json"
usage_error "--jwks missing: exit 2 naming the file and why" "--jwks $work/none.json: cannot read it: No such file or directory" \
	verify "$pkg" --jwks "$work/none.json"
usage_error "--jwks a directory: exit 2 naming it" "--jwks $work: a directory" verify "$pkg" --jwks "$work"
usage_error "--jwks not JSON: exit 2 naming it" "--jwks $work/text-jwks.json: not JSON" \
	verify "$pkg" --jwks "$work/text-jwks.json"
usage_error "--jwks a key, not a set: exit 2 naming it" "--jwks $work/key-only.json: not a JSON Web Key Set: no \"keys\" array" \
	verify "$pkg" --jwks "$work/key-only.json"
usage_error "--jwks an empty set: exit 2 naming it" "--jwks $work/empty-jwks.json: not a JSON Web Key Set" \
	verify "$pkg" --jwks "$work/empty-jwks.json"
usage_error "--jwks the package itself: exit 2 naming it" "--jwks $pkg: not JSON" verify "$pkg" --jwks "$pkg"

# a range without certificates: an empty package verifies too
"${admin[@]}" evidence export --project payments --from 2020-01-01 --to 2020-01-02 --standards soc2 \
	--out "$work/empty.tar" --auditor-cert "$clients/auditor.pem" --auditor-key "$clients/auditor.key" \
	> "$work/export.out" 2>&1
verify "$work/empty.tar" --jwks "$kept" > "$work/v.out" 2>&1
rc=$?
check "a package of a range without certificates verifies (exit 0 with --jwks)" test "$rc" = 0
[ "$rc" = 0 ] || cat "$work/export.out" "$work/v.out"

# fails_naming DESCRIPTION FILE-NAMED PACKAGE [VERIFY ARGS...]: exit 1 and a FAIL line for it
fails_naming() {
	local what=$1 name=$2 p=$3 out rc
	shift 3
	out=$(verify "$p" "$@" 2>&1)
	rc=$?
	if [ "$rc" = 1 ] && grep -qF "FAIL $name:" <<< "$out" && grep -q '^NOT VERIFIED' <<< "$out"; then
		passed=$((passed + 1))
		echo "ok - $what"
	else
		failed=$((failed + 1))
		echo "not ok - $what (exit $rc)"
		echo "$out" | head -20 | sed 's/^/    /'
	fi
}

# ---- every file, one byte changed ------------------------------------------------------
files=$(tamper list "$pkg")
count=0
for f in $files; do
	tamper flip "$pkg" "$work/t.tar" "$f" || { echo "cannot flip $f"; exit 1; }
	fails_naming "one byte of $f changed: fails naming it" "$f" "$work/t.tar"
	count=$((count + 1))
done
check "every kind of file was tampered with (13+ files)" test "$count" -ge 13
for f in README.md manifest.json manifest.jws policy/policy.json policy/policy.md inventory/inventory.json \
	inventory/inventory.csv "certificates/$c1.jws" "certificates/$c2.jws" "certificates/$c3.jws" \
	keys/jwks.json keys/rollovers.json keys/revocations.jws audit/chain.jsonl audit/entries.jsonl \
	access/grants.json; do
	check "the package holds $f" grep -qxF "$f" <<< "$files"
done

# ---- a certificate removed ---------------------------------------------------------------
tamper remove "$pkg" "$work/t.tar" "certificates/$c2.jws"
fails_naming "a certificate removed: fails naming it" "certificates/$c2.jws" "$work/t.tar"
fails_naming "... and its inventory record is without certificate" "inventory/inventory.json" "$work/t.tar"

# ---- an audit entry removed --------------------------------------------------------------
tamper drop-line "$pkg" "$work/t.tar" audit/entries.jsonl "\"object\":\"$c3\""
fails_naming "an entry removed from entries.jsonl: fails naming it" "audit/entries.jsonl" "$work/t.tar"
verify "$work/t.tar" > "$work/v.out" 2>&1
check "... its count named in entries.jsonl, the signed manifest not blamed" bash -c "
	grep -q '^FAIL audit/entries.jsonl: count_mismatch: holds [0-9]*, the signed manifest' '$work/v.out' &&
	! grep -q '^FAIL manifest' '$work/v.out'"
tamper drop-line "$pkg" "$work/t.tar" audit/chain.jsonl "\"object\":\"$c1\""
fails_naming "an entry removed from chain.jsonl: fails naming it" "audit/chain.jsonl" "$work/t.tar"
# ... a short, true report: the chain's break once, the hash; what needs the chain not checked
verify "$work/t.tar" > "$work/v.out" 2>&1
check "... exactly two FAIL lines: the chain's break and the manifest hash" \
	test "$(grep -c '^FAIL' "$work/v.out")" = 2
check "... the break named once, in chain.jsonl, with its seq" \
	test "$(grep -c '^FAIL audit/chain.jsonl: audit_broken: the chain fails at seq [0-9]*: entry [0-9]* is missing' "$work/v.out")" = 1
check "... the hash mismatch of chain.jsonl" grep -q '^FAIL audit/chain.jsonl: \(size\|sha256\)_mismatch' "$work/v.out"
check "... no false missing-entry or unauthenticated lines, no seq ranges" \
	bash -c "! grep -q 'entry_missing\|entry_not_authenticated\|entry_not_in_chain\|count_mismatch\|seq [0-9]*\.\.' '$work/v.out'"
check "... the entries' and counts' checks said not checked" bash -c "
	grep -q '^NOT CHECKED audit/entries.jsonl: certificate_entries:' '$work/v.out' &&
	grep -q '^NOT CHECKED audit/entries.jsonl: entries_in_chain:' '$work/v.out' &&
	grep -q '^NOT CHECKED manifest.json: counts.chain_entries:' '$work/v.out' &&
	grep -q '^NOT VERIFIED: 2 failures in .* (3 checks not run because of them)' '$work/v.out'"
[ "$(grep -c '^FAIL' "$work/v.out")" = 2 ] || cat "$work/v.out"
verify "$work/t.tar" --format json > "$work/v.json"
check "... the JSON report: the same two failures, three not checked" python3 -c '
import json,sys; r=json.load(open(sys.argv[1]))
assert r["verified"] is False and len(r["failures"]) == 2, r
assert all(f["file"] == "audit/chain.jsonl" for f in r["failures"]), r
assert sorted(n["check"] for n in r["not_checked"]) == ["certificate_entries", "counts.chain_entries",
    "entries_in_chain"], r' "$work/v.json"

# ---- hostile archives ---------------------------------------------------------------------
top=$(tar tf "$pkg" | head -1 | cut -d/ -f1)
for kind in dotdot:"$top/../evil" absolute:/tmp/evil symlink:"$top/link" hardlink:"$top/hard" \
	duplicate:"$top/README.md" outside:other/x fifo:"$top/fifo"; do
	tamper hostile "$pkg" "$work/t.tar" "${kind%%:*}"
	fails_naming "hostile archive (${kind%%:*}) refused naming the member" "${kind#*:}" "$work/t.tar"
	check "... as archive_hostile" bash -c "'$BUILD/bin/credsign' evidence verify '$work/t.tar' | grep -q archive_hostile"
done
head -c 3000 "$pkg" > "$work/t.tar"
verify "$work/t.tar" > "$work/v.out" 2>&1
rc=$?
check "a truncated archive is refused (exit 1, archive_invalid naming the member cut)" \
	bash -c "[ $rc = 1 ] && grep -q '^FAIL $top/.*: archive_invalid: .*Truncated' '$work/v.out'"

# ---- round two: a memory bomb of sparse members -------------------------------------------
mkdir -p "$work/bomb/top"
for i in $(seq 16); do
	truncate -s 268435455 "$work/bomb/top/f$i" && printf x >> "$work/bomb/top/f$i"
done
(cd "$work/bomb" && tar --sparse --format=pax -cf ../bomb.tar top)
rm -rf "$work/bomb"
start=$(date +%s)
/usr/bin/time -v "$BUILD/bin/credsign" evidence verify "$work/bomb.tar" > "$work/v.out" 2> "$work/time.out"
rc=$?
took=$(($(date +%s) - start))
rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/time.out")
check "a sparse-member bomb ($(stat -c %s "$work/bomb.tar") bytes, 16 x 256 MiB) is refused naming the member" \
	bash -c "[ $rc = 1 ] && grep -q '^FAIL top/f[0-9]*: archive_hostile: a sparse member' '$work/v.out'"
check "... quickly (${took} s) with a bounded RSS (${rss} KB < 200 MB)" \
	bash -c "[ '$took' -le 10 ] && [ -n '$rss' ] && [ '$rss' -lt 204800 ]"
[ "$rc" = 1 ] || cat "$work/v.out" "$work/time.out"
rm -f "$work/bomb.tar"

# ---- round two: bytes after the end-of-archive blocks ---------------------------------------
tamper append "$pkg" "$work/t.tar" tar
fails_naming "a member after the end-of-archive blocks (tar -i would extract it) is refused" "$work/t.tar" \
	"$work/t.tar" --jwks "$kept"
check "... as archive_trailing_data" bash -c "'$BUILD/bin/credsign' evidence verify '$work/t.tar' |
	grep -q '^FAIL $work/t.tar: archive_trailing_data: non-zero data at offset'"
tamper append "$pkg" "$work/t.tar" byte
fails_naming "one stray byte after the end-of-archive blocks is refused" "$work/t.tar" "$work/t.tar" --jwks "$kept"
tamper append "$pkg" "$work/t.tar" zeros
verify "$work/t.tar" --jwks "$kept" > "$work/v.out" 2>&1
rc=$?
check "zero padding after the end-of-archive blocks is accepted (exit 0)" test "$rc" = 0
[ "$rc" = 0 ] || cat "$work/v.out"

# ---- round two: a forger's re-signed package (keys its own, unpinned) ------------------------
tamper resign "$pkg" "$work/t.tar"
verify "$work/t.tar" > "$work/v.out" 2>&1
rc=$?
check "a forger's re-signed package without changes passes the unpinned checks (exit 3: the control)" \
	test "$rc" = 3
[ "$rc" = 3 ] || cat "$work/v.out"
fails_naming "... and --jwks KEPT refuses it (the manifest's key is not the appliance's)" "manifest.jws" \
	"$work/t.tar" --jwks "$kept"
for action in cert.read cert.revoke; do
	tamper resign "$pkg" "$work/t.tar" drop-line audit/entries.jsonl "\"action\":\"$action\""
	fails_naming "a $action line dropped from entries.jsonl (re-signed): fails naming it" \
		"audit/entries.jsonl" "$work/t.tar"
	check "... as the in-scope entry of chain.jsonl that is missing" bash -c "'$BUILD/bin/credsign' evidence \
		verify '$work/t.tar' | grep -q '^FAIL audit/entries.jsonl: entries_incomplete: the in-scope entry \
seq [0-9]* of audit/chain.jsonl ($action '"
done
tamper resign "$pkg" "$work/t.tar" set inventory/inventory.json from "2020-01-01T00:00:00.000Z"
fails_naming "inventory.json's from not the manifest's scope (re-signed): fails naming it" \
	"inventory/inventory.json" "$work/t.tar"
check "... saying which member" bash -c "'$BUILD/bin/credsign' evidence verify '$work/t.tar' |
	grep -q '^FAIL inventory/inventory.json: out_of_scope: its from is 2020-01-01T00:00:00.000Z'"

# ---- each inventory, scope, policy and audit check on its own (a forger's package) ----------
# fails_with DESCRIPTION FILE CODE TEXT FAILS PACKAGE: exit 1, a line "FAIL FILE: CODE: ...TEXT...",
# and FAILS FAIL lines in all (- for any number): the edit is what is reported, nothing else
fails_with() {
	local what=$1 name=$2 code=$3 text=$4 n=$5 p=$6 out rc
	out=$(verify "$p" 2>&1)
	rc=$?
	if [ "$rc" = 1 ] && grep "^FAIL $name: $code: " <<< "$out" | grep -qF -- "$text" &&
		{ [ "$n" = - ] || [ "$(grep -c '^FAIL' <<< "$out")" = "$n" ]; }; then
		passed=$((passed + 1))
		echo "ok - $what"
	else
		failed=$((failed + 1))
		echo "not ok - $what (exit $rc)"
		echo "$out" | head -20 | sed 's/^/    /'
	fi
}
inv=inventory/inventory.json
tamper resign "$pkg" "$work/t.tar" set $inv project payments csv
verify "$work/t.tar" > "$work/v.out" 2>&1
rc=$?
check "inventory.json and its CSV rendered again unchanged (re-signed): exit 3 (the control of the CSV rendering)" \
	test "$rc" = 3
[ "$rc" = 3 ] || cat "$work/v.out"
tamper add "$pkg" "$work/t.tar" extra.txt
fails_with "a file inside the top directory the manifest does not list: not_in_manifest" extra.txt \
	not_in_manifest "the manifest does not list" 1 "$work/t.tar"
tamper resign "$pkg" "$work/t.tar" set manifest.json scope.project forged set $inv project forged
for c in "$c1" "$c2" "$c3"; do
	fails_with "the scope's project changed (re-signed): certificate $c out_of_scope" "certificates/$c.jws" \
		out_of_scope "project payments, the scope's is forged" - "$work/t.tar"
done
# the certificates' certified_at (whole seconds), as RFC 3339 with milliseconds
at() { python3 -c '
import json,sys,tarfile; t=tarfile.open(sys.argv[1])
inv=json.loads(t.extractfile([m for m in t if m.name.endswith("/inventory/inventory.json")][0]).read())
print([r for r in inv["records"] if r["cert_id"] == sys.argv[2]][0]["certified_at"][:19] + sys.argv[3])' "$pkg" "$@"; }
tamper resign "$pkg" "$work/t.tar" set manifest.json scope.from "$(at "$c1" .000Z)" set $inv from "$(at "$c1" .000Z)" \
	set manifest.json scope.to "$(at "$c3" .000Z)" set $inv to "$(at "$c3" .000Z)"
verify "$work/t.tar" > "$work/v.out" 2>&1
rc=$?
check "the scope narrowed to exactly the first and last certified_at (re-signed): both ends included (exit 3)" \
	test "$rc" = 3
[ "$rc" = 3 ] || cat "$work/v.out"
tamper resign "$pkg" "$work/t.tar" set manifest.json scope.from "$(at "$c1" .001Z)" set $inv from "$(at "$c1" .001Z)"
fails_with "the scope's from narrowed 1 ms past a certificate (re-signed): out_of_scope naming it" \
	"certificates/$c1.jws" out_of_scope "certified at $(at "$c1" Z), outside the scope's" - "$work/t.tar"
tamper resign "$pkg" "$work/t.tar" set $inv "records.cert_id=$c1.system" db2 \
	set $inv "records.cert_id=$c2.requester" spiffe://credsign.test/forger csv
fails_with "a record's system edited (re-signed): record_mismatch" $inv record_mismatch \
	"the record of $c1: system is not the certificate's" 2 "$work/t.tar"
fails_with "... and another's requester: record_mismatch" $inv record_mismatch \
	"the record of $c2: requester is not the certificate's" 2 "$work/t.tar"
tamper resign "$pkg" "$work/t.tar" set $inv "records.cert_id=$c3.state" current csv
fails_with "the revoked certificate's record said current (re-signed): state_mismatch" $inv state_mismatch \
	"the record of $c3 says current, but the revocation list lists it" 1 "$work/t.tar"
tamper resign "$pkg" "$work/t.tar" set $inv "records.cert_id=$c1.state" current csv
fails_with "a superseded record said current, two current for db (re-signed): state_mismatch" $inv state_mismatch \
	"two current records for project payments, environment production, system db" 1 "$work/t.tar"
tamper resign "$pkg" "$work/t.tar" del $inv "records.cert_id=$c2" csv
fails_with "a record removed from inventory.json and the CSV (re-signed): certificate_without_record" $inv \
	certificate_without_record "certificate $c2 has no record" 1 "$work/t.tar"
tamper resign "$pkg" "$work/t.tar" replace inventory/inventory.csv '"web"' '"www"'
fails_with "one field of the CSV edited, the JSON not (re-signed): csv_mismatch" inventory/inventory.csv \
	csv_mismatch "not the CSV rendering" 1 "$work/t.tar"
tamper resign "$pkg" "$work/t.tar" set policy/policy.json title "Credential policy (lenient)"
fails_with "policy.json's text edited, its content_sha256 kept (re-signed): content_mismatch" policy/policy.json \
	content_mismatch "content_sha256 is not the SHA-256 of its content" 1 "$work/t.tar"
tamper resign "$pkg" "$work/t.tar" append-entry "$c1"
fails_with "an entry chained past the last checkpoint, in both files (re-signed): entry_not_authenticated only" \
	audit/entries.jsonl entry_not_authenticated "is not authenticated by a signed checkpoint" 1 "$work/t.tar"
tamper resign "$pkg" "$work/t.tar" drop-entry "\"object\":\"$c2\""
fails_with "a certify entry left out of both files, the chain re-hashed and its checkpoints re-signed: entry_missing" \
	audit/entries.jsonl entry_missing "no successful certify entry for certificate $c2" 1 "$work/t.tar"

# ---- a kept JWKS of other keys ---------------------------------------------------------------
tamper jwks "$work/other-jwks.json"
fails_naming "--jwks with a different key set: keys/jwks.json named" "keys/jwks.json" "$pkg" --jwks "$work/other-jwks.json"
fails_naming "... and the manifest's key is unknown" "manifest.jws" "$pkg" --jwks "$work/other-jwks.json"

finish
