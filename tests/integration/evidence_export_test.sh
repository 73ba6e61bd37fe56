#!/usr/bin/env bash
# credsign-admin evidence export (issue 19, docs/evidence.md): the
# auditor's package from a real daemon's store. Certificates of two
# systems, one rotated twice, one certificate of another project; the
# export refused while the last in-scope entry is not under a signed
# checkpoint, then made: a pax tar with one top directory and every file
# of the format, the manifest's hashes and sizes right (python hashlib),
# manifest.jws verified by jwcrypto against keys/jwks.json, the
# certificates as the daemon serves them, the inventory's states,
# chain.jsonl verified by credsign-admin audit verify --file, entries.jsonl
# a part of it; the export audited; --from and --to inclusive to the
# millisecond. Refusals: no auditor grant, a certificate of another CA or
# without the clientAuth EKU, a key that is not the certificate's, a bad
# date; none leaves a file.
#
#   evidence_export_test.sh BUILD_DIR STATE_DIR SOFTHSM_MODULE
BUILD=${1:?}
STATE=${2:?}
SOFTHSM=${3:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_token evidence || exit 1
py=/usr/bin/python3

# checkpoints only at a stop: the refusal of an uncovered range is certain
EXTRA_CONF='audit = { checkpoint_entries = 100000; checkpoint_seconds = 86400; };' it_setup evidence || exit 1
wait_for_log 'msg="credsignd .* starting' || true

gen() { # gen PROJECT ENVIRONMENT SYSTEM PRESET WHO: prints the certificate id
	local got sid
	got=$(call "$5" POST /api/generate "{\"preset\":\"$4\",\"project\":\"$1\",\"environment\":\"$2\",\"system\":\"$3\"}")
	sid=$(json_field "${got#200 }" generation_session_id) || { echo "generate: $got" >&2; return 1; }
	got=$(call "$5" POST /api/generate-certificate "{\"generation_session_id\":\"$sid\"}")
	json_field "${got#201 }" cert_id || { echo "certify: $got" >&2; return 1; }
}
# (certified_at has whole seconds: a rotation is a later second)
c1=$(gen payments production db1 soc2 ci-deployer) && sleep 1.1 &&
	c2=$(gen payments production db1 dod-stig ci-deployer) && sleep 1.1 &&
	c3=$(gen payments production db1 soc2 ci-deployer) &&
	c4=$(gen payments staging db2 soc2 ci-deployer) &&
	w1=$(gen web production www soc2 web-deployer) || { echo "cannot certify"; exit 1; }
call auditor GET "/cert/$c1" > /dev/null # an in-scope cert.read entry
mkdir -p "$work/served"
for c in "$c1" "$c2" "$c3" "$c4"; do
	curl -s $(client auditor) "$url/cert/$c.jws" > "$work/served/$c.jws"
done
curl -s $(client auditor) "$url/.well-known/jwks.json" > "$work/served/jwks.json"
curl -s $(client auditor) "$url/.well-known/credsign-rollover" > "$work/served/rollovers.json"
today=$(date -u +%F)
out=$work/evidence.tar
export_as() { # export_as CERT KEY [ARGS...]: the export as an auditor presenting CERT and KEY
	local cert=$1 key=$2
	shift 2
	"${admin[@]}" evidence export --project payments --from "$today" --to "$today" --standards soc2,dod-stig \
		--out "$out" --auditor-cert "$cert" --auditor-key "$key" "$@"
}
A=("$clients/auditor.pem" "$clients/auditor.key")

# ---- refusals ---------------------------------------------------------------------------
refused() { # refused WANT-RC WANT-TEXT CMD...: exits WANT-RC, stderr names why, no file left
	local rc=$1 want=$2 got
	shift 2
	got=$("$@" 2>&1 >/dev/null)
	local status=$?
	[ "$status" = "$rc" ] && [[ "$got" == *"$want"* ]] && [ ! -e "$out" ] && [ ! -e "$out.tmp" ] ||
		{ echo "  exit $status, said: $got"; return 1; }
}
check "a range whose last entry no signed checkpoint covers fails (not 'refused'), saying when the next is due" \
	refused 1 "evidence export failed: the last in-scope audit entry (seq" export_as "${A[@]}"
waited_then_refused() { # --wait 2: the range stays uncovered (checkpoints only at a stop)
	local t0=$SECONDS
	refused 1 "not under a signed checkpoint yet" export_as "${A[@]}" --wait 2 && [ $((SECONDS - t0)) -ge 2 ] ||
		{ echo "  returned after $((SECONDS - t0)) s"; return 1; }
}
check "--wait 2 waits two seconds for a checkpoint, then refuses" waited_then_refused
check "--wait takes 0 to 600 seconds" refused 2 "--wait takes 0 to 600 seconds" export_as "${A[@]}" --wait 601
generator_refused() { # the reason once, not doubled
	refused 1 "evidence export refused: spiffe://credsign.test/ci-deployer holds no auditor grant for project payments" \
		export_as "$clients/ci-deployer.pem" "$clients/ci-deployer.key" || return 1
	local got
	got=$(export_as "$clients/ci-deployer.pem" "$clients/ci-deployer.key" 2>&1 >/dev/null)
	[[ "$got" != *"(no auditor grant"* ]] || { echo "  doubled: $got"; return 1; }
}
check "a generator (no auditor grant for the project) is refused, the reason said once" generator_refused
check "a certificate of another CA is refused" \
	refused 1 "does not verify against the client CA" export_as "$clients/other-ca.pem" "$clients/other-ca.key"
check "a revoked auditor certificate is refused (tls.crl)" \
	refused 1 "does not verify against the client CA" export_as "$clients/revoked.pem" "$clients/revoked.key"
# the auditor's identity and key from the client CA, without an extendedKeyUsage
# extension: X509_PURPOSE_SSL_CLIENT accepts it, the export must not
no_eku_refused() {
	printf '%s\n' "basicConstraints = critical, CA:false" "keyUsage = critical, digitalSignature" \
		"subjectAltName = URI:spiffe://credsign.test/auditor" > "$work/no-eku.ext"
	openssl req -new -key "${A[1]}" -subj "/O=credsign dev/CN=auditor" 2> /dev/null |
		openssl x509 -req -CA "$pki/ca.pem" -CAkey "$pki/ca-db/main/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
			-days 2 -sha256 -extfile "$work/no-eku.ext" -out "$work/no-eku.pem" 2> /dev/null || return 1
	refused 1 "evidence export refused: the auditor certificate does not assert the clientAuth extended key usage" \
		export_as "$work/no-eku.pem" "${A[1]}"
}
check "an auditor certificate of the client CA without the clientAuth EKU (none at all) is refused, naming clientAuth" \
	no_eku_refused
check "an auditor certificate of the client CA for serverAuth only is refused (purpose)" \
	refused 1 "certificate purpose" export_as "$clients/server-eku.pem" "$clients/server-eku.key"
check "a key that is not the certificate's is refused (proof of possession)" \
	refused 1 "proof of possession" export_as "$clients/auditor.pem" "$clients/stranger.key"
missing_key() {
	local got
	got=$("${admin[@]}" evidence export --project payments --from "$today" --to "$today" --standards soc2 \
		--out "$out" --auditor-cert "${A[0]}" --auditor-key /nonexistent.key 2>&1 >/dev/null)
	[ $? = 1 ] && [[ "$got" == *"--auditor-key /nonexistent.key failed: the key file cannot be read: No such file or directory"* ]] &&
		[[ "${got,,}" != *officer* ]] && [ ! -e "$out" ] || { echo "  $got"; return 1; }
}
check "a key file that does not exist is refused saying why (errno), of the auditor (never 'officer')" missing_key
stranger_words() {
	local got
	got=$(export_as "$clients/auditor.pem" "$clients/stranger.key" 2>&1 >/dev/null)
	[[ "$got" == *"is not the key of the auditor certificate"* ]] && [[ "${got,,}" != *officer* ]] ||
		{ echo "  $got"; return 1; }
}
check "a key that is not the certificate's speaks of the auditor, never of an officer" stranger_words
check "a day that does not exist names the option, the value and the day" \
	refused 2 "--from 2026-11-31: no such day" "${admin[@]}" evidence export --project payments --from 2026-11-31 \
	--to "$today" --standards soc2 --out "$out" --auditor-cert "${A[0]}" --auditor-key "${A[1]}"
check "a date of the wrong form names the option, the value and the forms" \
	refused 2 "--to 2026-1-31: not YYYY-MM-DD" "${admin[@]}" evidence export --project payments --from "$today" \
	--to 2026-1-31 --standards soc2 --out "$out" --auditor-cert "${A[0]}" --auditor-key "${A[1]}"
check "a missing required option is named" \
	refused 2 "--out is required" "${admin[@]}" evidence export --project payments --from "$today" \
	--to "$today" --standards soc2 --auditor-cert "${A[0]}" --auditor-key "${A[1]}"
no_dir_fails() {
	local got
	got=$("${admin[@]}" evidence export --project payments --from "$today" --to "$today" --standards soc2 \
		--out "$work/no/such/dir/e.tar" --auditor-cert "${A[0]}" --auditor-key "${A[1]}" 2>&1 >/dev/null)
	[ $? = 1 ] && [[ "$got" == *"evidence export failed: --out $work/no/such/dir/e.tar: its directory $work/no/such/dir: No such file or directory"* ]] &&
		[ "$(sqlite3 "$db" "SELECT outcome || '|' || error_code FROM audit_log WHERE action = 'evidence.export'
		                   AND object LIKE '%no/such/dir%'")" = "failure|io_error" ] || { echo "  $got"; return 1; }
}
check "--out in a directory that does not exist fails (audited failure, not refused)" no_dir_fails
check "an unknown standard is a usage error" \
	refused 2 "unknown standard" "${admin[@]}" evidence export --project payments --from "$today" \
	--to "$today" --standards soc2,nope --out "$out" --auditor-cert "${A[0]}" --auditor-key "${A[1]}"
refusals_audited() {
	local n
	n=$(sqlite3 "$db" "SELECT count(*) FROM audit_log WHERE action = 'evidence.export' AND outcome = 'refused'
	                   AND error_code = 'forbidden'")
	[ "$n" = 9 ] || { echo "  $n forbidden refusals audited"; return 1; }
	n=$(sqlite3 "$db" "SELECT count(*) FROM audit_log WHERE action = 'evidence.export' AND outcome = 'failure'
	                   AND error_code = 'not_checkpointed'")
	[ "$n" = 2 ] || { echo "  $n not_checkpointed failures audited"; return 1; }
	[ "$(sqlite3 "$db" "SELECT DISTINCT actor || '|' || role FROM audit_log WHERE action = 'evidence.export'
	                   AND object LIKE '%holds no auditor grant%'")" = "spiffe://credsign.test/ci-deployer|client" ]
}
check "each refusal is audited (evidence.export, refused, forbidden; the uncovered range: failure)" refusals_audited
pop_not_attributed() { # a certificate is public: without its key, the log names the local user
	local got
	got=$(sqlite3 "$db" "SELECT DISTINCT actor || '|' || role FROM audit_log WHERE action = 'evidence.export'
	                     AND object LIKE '%proof of possession%'")
	[[ "$got" == local:*"|admin" ]] || { echo "  proof-of-possession refusals audited as: $got"; return 1; }
}
check "a refusal for want of the key never names the certificate's identity as actor" pop_not_attributed
future_to() { # --to after the export is cut to the export's time; --from in the future is refused
	refused 2 "is in the future" "${admin[@]}" evidence export --project payments --from 2999-01-01 \
		--to 2999-01-02 --standards soc2 --out "$out" --auditor-cert "${A[0]}" --auditor-key "${A[1]}"
}
check "--from in the future is a usage error" future_to

# ---- the export -------------------------------------------------------------------------
# --wait: the export waits while the daemon stops; its stop checkpoint covers the whole log
export_as "${A[@]}" --wait 60 > "$work/exported.json" 2>"$work/export.err" &
export_pid=$!
sleep 1
stop_daemon
wait "$export_pid"
rc=$?
exported=$(cat "$work/exported.json")
check "the export (--wait 60) succeeds once a signed checkpoint covers the range" \
	bash -c "[ $rc = 0 ] && [ -s '$out' ] && [ ! -e '$out.tmp' ]" || cat "$work/export.err"
check "the package is private (mode 0600)" test "$(stat -c %a "$out")" = 600
existing_refused() { # --out naming an existing file: exit 1, the file unchanged
	local before got
	before=$(sha256sum "$out")
	got=$(export_as "${A[@]}" 2>&1 >/dev/null)
	[ $? = 1 ] && [[ "$got" == *"--out $out exists; give --force to replace it"* ]] &&
		[ "$(sha256sum "$out")" = "$before" ] && [ ! -e "$out.tmp" ] || { echo "  $got"; return 1; }
}
check "--out naming an existing file is refused (exit 1), the file unchanged" existing_refused
x=$work/x
rm -rf "$x" && mkdir -p "$x"
tar -xf "$out" -C "$x"
top=$x/credsign-evidence-payments-${today//-/}-${today//-/}

package_checks() {
	"$py" - "$out" "$top" "$c1" "$c2" "$c3" "$c4" "$w1" "$work/served" <<'PY'
import base64, csv, hashlib, io, json, os, sys, tarfile
from jwcrypto import jwk, jws
tar_path, top, c1, c2, c3, c4, w1, served = sys.argv[1:]
name = os.path.basename(top)
fail = []
with tarfile.open(tar_path) as t:
    members = t.getmembers()
    if t.format != tarfile.PAX_FORMAT and not any(m.pax_headers for m in members):
        pass  # a pax archive without extended headers reads as ustar: accepted
    for m in members:
        if not m.isfile():
            fail.append("not a regular file: %s" % m.name)
        if not m.name.startswith(name + "/"):
            fail.append("outside the top directory: %s" % m.name)
        if m.mode != 0o644:
            fail.append("mode %o: %s" % (m.mode, m.name))
    names = sorted(m.name[len(name) + 1:] for m in members)
want = {"README.md", "manifest.json", "manifest.jws", "policy/policy.json", "policy/policy.md",
        "inventory/inventory.json", "inventory/inventory.csv", "keys/jwks.json", "keys/rollovers.json",
        "keys/revocations.jws", "audit/chain.jsonl", "audit/entries.jsonl", "access/grants.json"}
want |= {"certificates/%s.jws" % c for c in (c1, c2, c3, c4)}
if set(names) != want:
    fail.append("files: extra %s missing %s" % (sorted(set(names) - want), sorted(want - set(names))))
raw = open(os.path.join(top, "manifest.json"), "rb").read()
m = json.loads(raw)
if raw != json.dumps(m, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode():
    fail.append("manifest.json is not compact JSON with sorted keys")
if m["format"] != "credsign-evidence/1" or m["scope"]["project"] != "payments" or m["scope"]["environment"] is not None:
    fail.append("manifest scope: %s" % m["scope"])
if m["scope"]["standards"] != ["soc2", "dod-stig"]:
    fail.append("standards %s" % m["scope"]["standards"])
# --to is today, through 23:59:59.999: the range ends at the export instead
if m["scope"]["to"] != m["created_at"]:
    fail.append("scope.to %s is not the export's time %s" % (m["scope"]["to"], m["created_at"]))
if m["auditor"]["identity"] != "spiffe://credsign.test/auditor":
    fail.append("auditor %s" % m["auditor"])
paths = [f["path"] for f in m["files"]]
if paths != sorted(want - {"manifest.json", "manifest.jws"}):
    fail.append("manifest files %s" % paths)
for f in m["files"]:
    data = open(os.path.join(top, f["path"]), "rb").read()
    if hashlib.sha256(data).hexdigest() != f["sha256"] or len(data) != f["size"]:
        fail.append("hash or size of %s" % f["path"])
# manifest.jws: header exactly, payload {iss, created_at, manifest_sha256} of manifest.json's bytes,
# ES256 with the JWKS key of its kid
token = open(os.path.join(top, "manifest.jws")).read()
h64, p64, _ = token.split(".")
if len(token) > 1024:  # the signed part does not grow with the package (JWS parsers bound their input)
    fail.append("manifest.jws is %d bytes" % len(token))
pad = lambda s: s + "=" * (-len(s) % 4)
header = base64.urlsafe_b64decode(pad(h64))
hd = json.loads(header)
if sorted(hd) != ["alg", "kid", "typ"] or hd["alg"] != "ES256" or hd["typ"] != "credsign-evidence+jwt":
    fail.append("header %s" % header)
signed = json.loads(base64.urlsafe_b64decode(pad(p64)))
if signed != {"iss": m["iss"], "created_at": m["created_at"], "manifest_sha256": hashlib.sha256(raw).hexdigest()}:
    fail.append("the JWS payload %s is not manifest.json's iss, created_at and SHA-256" % signed)
keys = json.load(open(os.path.join(top, "keys/jwks.json")))["keys"]
k = [k for k in keys if k["kid"] == hd["kid"]]
if len(k) != 1:
    fail.append("kid %s not in keys/jwks.json" % hd["kid"])
else:
    key = jwk.JWK(kty="EC", crv="P-256", x=k[0]["x"], y=k[0]["y"])
    s = jws.JWS()
    s.deserialize(token)
    try:
        s.verify(key)
    except Exception as e:
        fail.append("manifest.jws does not verify: %s" % e)
# the certificates exactly as served
for c in (c1, c2, c3, c4):
    if open(os.path.join(top, "certificates/%s.jws" % c)).read() != open(os.path.join(served, c + ".jws")).read():
        fail.append("certificate %s differs from GET /cert/ID.jws" % c)
for f in ("jwks.json", "rollovers.json"):
    if open(os.path.join(top, "keys", f), "rb").read() != open(os.path.join(served, f), "rb").read():
        fail.append("keys/%s differs from what the daemon serves" % f)
# the inventory: rotation history of db1, db2 current, no other project
inv = json.load(open(os.path.join(top, "inventory/inventory.json")))
order = ["project", "environment", "system", "state", "cert_id", "cert_url", "type", "preset", "standards",
         "certified_at", "requester", "rotation_due", "rotation_rule", "rotation", "superseded_by", "revoked_at",
         "revocation_reason"]
if list(inv) != ["project", "environment", "from", "to", "generated_at", "records"] or \
        any(list(r) != order for r in inv["records"]):
    fail.append("inventory.json members out of order: %s" % list(inv["records"][0]))
stig = [r for r in inv["records"] if r["cert_id"] == c2][0]
if not stig["rotation_due"] or "SRG-OS-000076" not in (stig["rotation_rule"] or ""):
    fail.append("dod-stig record has no 60-day due date: %s" % stig)
states = {r["cert_id"]: (r["state"], r["superseded_by"]) for r in inv["records"]}
want_states = {c1: ("superseded", c2), c2: ("superseded", c3), c3: ("current", None), c4: ("current", None)}
if states != want_states:
    fail.append("inventory states %s" % states)
if w1 in states or inv["project"] != "payments":
    fail.append("another project's certificate in the inventory")
rows = list(csv.reader(io.StringIO(open(os.path.join(top, "inventory/inventory.csv"), newline="").read())))
if rows[0][:5] != ["project", "environment", "system", "state", "cert_id"] or sorted(r[4] for r in rows[1:]) != sorted(states):
    fail.append("inventory.csv %s" % rows[:2])
# the audit excerpt
chain = open(os.path.join(top, "audit/chain.jsonl"), "rb").read().splitlines()
entries = open(os.path.join(top, "audit/entries.jsonl"), "rb").read().splitlines()
if not entries or any(e not in chain for e in entries):
    fail.append("entries.jsonl is not a part of chain.jsonl")
acts = sorted((json.loads(e)["action"], json.loads(e)["object"]) for e in entries)
for c in (c1, c2, c3, c4):
    if ("certify", c) not in acts:
        fail.append("no certify entry of %s" % c)
if ("cert.read", c1) not in acts or sum(1 for a in acts if a[0] == "generate") != 4:
    fail.append("entries %s" % acts)
objs = [json.loads(l) for l in chain]
if not any(o["type"] == "checkpoint" for o in objs):
    fail.append("no checkpoint in chain.jsonl")
ents = [o for o in objs if o["type"] == "entry"]
c = m["counts"]
want_counts = {"certificates": 4, "inventory_records": 4, "audit_entries": len(entries), "chain_entries": len(ents),
               "other_project_entries": sum(1 for o in ents if o["project"] != "payments")}
if c != want_counts:
    fail.append("counts %s, want %s" % (c, want_counts))
if c["other_project_entries"] == 0:
    fail.append("the web certificate's entries lie inside the range: they must be counted")
grants = json.load(open(os.path.join(top, "access/grants.json")))["grants"]
if [g["index"] for g in grants] != list(range(4)) or grants[2]["role"] != "auditor":
    fail.append("grants %s" % grants)
pol = json.load(open(os.path.join(top, "policy/policy.json")))
if not open(os.path.join(top, "policy/policy.md")).read().strip():
    fail.append("policy.md is empty")
if "credsign evidence verify" not in open(os.path.join(top, "README.md")).read():
    fail.append("README does not say how to verify")
for f in fail:
    print("  " + f)
sys.exit(1 if fail else 0)
PY
}
check "the package holds every file, hashes match, manifest.jws verifies (jwcrypto), inventory and audit excerpt right" \
	package_checks
check "audit/chain.jsonl verifies with credsign-admin audit verify --file" \
	"$BUILD/bin/credsign-admin" --config "$conf" audit verify --file "$top/audit/chain.jsonl" --jwks "$top/keys/jwks.json"
offline_verify() { # an auditor off the appliance: no --config, no CREDSIGN_CONF
	local got
	got=$(cd "$work" && env -u CREDSIGN_CONF "$BUILD/bin/credsign-admin" audit verify --file "$top/audit/chain.jsonl" \
		--jwks "$top/keys/jwks.json" 2>&1) && [[ "$got" == *"audit log intact"* ]] || { echo "  $got"; return 1; }
	got=$(env -u CREDSIGN_CONF "$BUILD/bin/credsign-admin" audit verify --jwks "$top/keys/jwks.json" 2>&1)
	[ $? = 2 ] && [[ "$got" == *"no configuration"* ]] || { echo "  without --file: $got"; return 1; }
}
check "audit verify --file --jwks needs no configuration; without --file it still does" offline_verify
readme_self_contained() {
	local r=$top/README.md
	grep -qF '`evidence.tar`' "$r" && grep -qF "credsign evidence verify evidence.tar --jwks KEPT_JWKS" "$r" &&
		! grep -q "docs/audit.md" "$r" && ! grep -q "${top##*/}\.tar" "$r" &&
		grep -qF "entry_hash = SHA-256(prev_hash || canonical(entry))" "$r" && grep -qF "FF FF FF FF" "$r" ||
		{ echo "  README:"; sed 's/^/    /' "$r" | head -60; return 1; }
}
check "the README names the package by its file name and carries the audit chain's encoding and checks" \
	readme_self_contained
revocations_signed() {
	"$py" - "$top" <<'PY'
import json, sys
from jwcrypto import jwk, jws
top = sys.argv[1]
token = open(top + "/keys/revocations.jws").read()
s = jws.JWS()
s.deserialize(token)
kid = s.jose_header["kid"]
k = [k for k in json.load(open(top + "/keys/jwks.json"))["keys"] if k["kid"] == kid][0]
s.verify(jwk.JWK(kty="EC", crv="P-256", x=k["x"], y=k["y"]))
assert s.jose_header["typ"] == "credsign-revocations+jwt"
claims = json.loads(s.payload)
assert set(claims) == {"iss", "iat", "next_update", "revoked"}, claims
PY
}
check "keys/revocations.jws is a signed revocation list" revocations_signed
export_audited() {
	local sha want got to
	sha=$(sha256sum "$top/manifest.json" | cut -d' ' -f1)
	to=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["scope"]["to"])' "$top/manifest.json")
	want="spiffe://credsign.test/auditor|auditor|success|payments|project=payments environment=- from=${today}T00:00:00.000Z to=$to standards=soc2,dod-stig manifest_sha256=$sha operator=local:$(id -un)|1"
	got=$(sqlite3 "$db" "SELECT actor, role, outcome, project, object, actor_cert_sha256 = '$(openssl x509 -in "${A[0]}" -outform DER | sha256sum | cut -d' ' -f1)'
	                     FROM audit_log WHERE action = 'evidence.export' AND outcome = 'success'")
	[ "$got" = "$want" ] || { echo "  got:  $got"; echo "  want: $want"; return 1; }
}
check "the export is audited: the auditor, its certificate, the scope and the manifest's SHA-256" export_audited

scoped_to_environment() {
	local o=$work/staging.tar got
	: > "$o" # an existing file: replaced with --force
	got=$("${admin[@]}" evidence export --project payments --environment staging --from "$today" --to "$today" \
		--standards soc2 --out "$o" --auditor-cert "${A[0]}" --auditor-key "${A[1]}" --force) || return 1
	[ "$(json_field "$got" counts | tr -d ' ')" != "" ] &&
		"$py" - "$o" "$c4" <<'PY'
import json, sys, tarfile
t = tarfile.open(sys.argv[1])
names = [m.name.split("/", 1)[1] for m in t.getmembers()]
certs = [n for n in names if n.startswith("certificates/")]
m = json.loads(t.extractfile([x for x in t.getmembers() if x.name.endswith("/manifest.json")][0]).read())
assert certs == ["certificates/%s.jws" % sys.argv[2]], certs
assert m["scope"]["environment"] == "staging" and m["counts"]["certificates"] == 1, m
PY
}
check "--environment narrows the package to that environment's certificates" scoped_to_environment

# --from and --to are inclusive to the millisecond: both equal to one
# certificate's certified_at (RFC 3339 with milliseconds) take it, alone
exact_instant() {
	local o=$work/instant.tar at
	at=$("$py" -c 'import json,sys; print([r["certified_at"] for r in json.load(open(sys.argv[1]))["records"]
	                                      if r["cert_id"] == sys.argv[2]][0].replace("Z", ".000Z"))' \
		"$top/inventory/inventory.json" "$c2") || return 1
	"${admin[@]}" evidence export --project payments --from "$at" --to "$at" --standards soc2 --out "$o" \
		--auditor-cert "${A[0]}" --auditor-key "${A[1]}" > /dev/null 2> "$work/instant.err" ||
		{ echo "  $at: $(cat "$work/instant.err")"; return 1; }
	"$py" - "$o" "$c2" "$at" <<'PY'
import json, sys, tarfile
t = tarfile.open(sys.argv[1])
names = [m.name.split("/", 1)[1] for m in t.getmembers()]
certs = [n for n in names if n.startswith("certificates/")]
m = json.loads(t.extractfile([x for x in t.getmembers() if x.name.endswith("/manifest.json")][0]).read())
assert certs == ["certificates/%s.jws" % sys.argv[2]], certs
assert m["scope"]["from"] == m["scope"]["to"] == sys.argv[3], m["scope"]
assert m["counts"]["certificates"] == 1 and m["counts"]["inventory_records"] == 1, m["counts"]
PY
}
check "--from and --to both equal to a certificate's certified_at (with ms) include it, and it alone" exact_instant

# the export's own entry cannot be written: the export fails and leaves no file
audit_fault_removes_file() {
	local o=$work/faulted.tar rc
	sqlite3 "$db" "CREATE TRIGGER it_evidence_fault BEFORE INSERT ON audit_log
	               WHEN NEW.action = 'evidence.export' AND NEW.outcome = 'success'
	               BEGIN SELECT RAISE(ABORT, 'it: refused'); END;"
	"${admin[@]}" evidence export --project payments --from "$today" --to "$today" --standards soc2 --out "$o" \
		--auditor-cert "${A[0]}" --auditor-key "${A[1]}" > /dev/null 2> "$work/faulted.err"
	rc=$?
	sqlite3 "$db" "DROP TRIGGER it_evidence_fault"
	[ "$rc" = 1 ] && [ ! -e "$o" ] && [ ! -e "$o.tmp" ] && grep -q "could not be audited" "$work/faulted.err" ||
		{ echo "  exit $rc: $(cat "$work/faulted.err")"; return 1; }
}
check "an export whose audit entry cannot be written fails and removes the package" audit_fault_removes_file

finish
