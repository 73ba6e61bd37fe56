#!/usr/bin/env bash
# The credential inventory (issue 19), over mutual TLS against a real daemon:
#  - one system's credential certified four times in a row, no pause
#    (dod-stig; certifications within one second share certified_at): one
#    current record (the last certified), three superseded with
#    superseded_by chained in certification order, due dates 60 days after
#    certification (DISA GPOS SRG SRG-OS-000076-GPOS-00044);
#  - due dates per preset: nist-800-63b none; pci-dss-4 password 90 days
#    with inventory.pci_password_change_days = 90, an api-key none;
#    without the setting (a second daemon) the password has none;
#  - a certificate revoked with credsign-admin cert revoke shows revoked;
#  - access: an auditor of another project 403 (audited), the project's
#    generator and auditor 200, without a project the records a caller may
#    read, no grant 403; a generator of the project in one environment
#    asking for the whole project gets that environment's records;
#  - format=csv parsed with python's csv equals the JSON; due_before keeps
#    current records only;
#  - PCI DSS 8.3.9 reads the same in the written policy (pci-dss-4 with
#    nist-800-63b: N days as a standing exception) and the inventory;
#    bad parameters 400 naming the parameter;
#  - /metrics gauges, then overdue and due soon with the daemon's clock 80
#    days ahead (libfaketime); credsign inventory (text, json, csv).
#
#   inventory_test.sh BUILD_DIR STATE_DIR SOFTHSM_MODULE
BUILD=${1:?}
STATE=${2:?}
SOFTHSM=${3:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_token inventory || exit 1

# auditor reads payments only; stranger audits web (another project);
# web-deployer generates for web, and for payments in staging only;
# operator has no inventory right
GRANTS='
    { identity = "spiffe://credsign.test/ci-deployer"; role = "generator";
      projects = [ "payments" ]; environments = [ "production", "staging" ]; },
    { identity = "spiffe://credsign.test/web-deployer"; role = "generator";
      projects = [ "web" ]; environments = [ "*" ]; },
    { identity = "spiffe://credsign.test/web-deployer"; role = "generator";
      projects = [ "payments" ]; environments = [ "staging" ]; },
    { identity = "spiffe://credsign.test/auditor"; role = "auditor"; projects = [ "payments" ]; },
    { identity = "spiffe://credsign.test/stranger"; role = "auditor"; projects = [ "web" ]; },
    { identity = "spiffe://credsign.test/operator"; role = "operator"; }'
EXTRA_CONF='inventory = { due_soon_days = 14; pci_password_change_days = 90; };'
it_setup inventory || exit 1

export CREDSIGN_URL=$url CREDSIGN_CACERT=$pki/ca.pem
as_client() { # as_client NAME: the credsign CLI's identity
	export CREDSIGN_CERT=$clients/$1.pem CREDSIGN_KEY=$clients/$1.key
}
as_client ci-deployer
certify() { # certify PRESET TYPE [SYSTEM] [ENVIRONMENT]: prints the certificate id
	local sys=() out
	[ -z "${3:-}" ] || sys=(--system "$3")
	out=$("$BUILD/bin/credsign" generate --preset "$1" --type "$2" --project payments \
		--environment "${4:-production}" "${sys[@]}" --certify --format env) || return 1
	# shellcheck disable=SC1090
	(eval "$out" && echo "$CREDSIGN_CERT_ID")
}
# four in a row, no pause: certified_at has whole seconds, so some share
# it; the store's order of certification must still decide
ids=()
for i in 1 2 3 4; do
	ids+=("$(certify dod-stig password db1)") || { echo "certify failed"; finish; exit 1; }
done
nist=$(certify nist-800-63b password web1) && pci_pw=$(certify pci-dss-4 password pay1) &&
	pci_key=$(certify pci-dss-4 api-key pay2) && nosys=$(certify soc2 password) &&
	rev=$(certify soc2 password rev1) && staging=$(certify soc2 password db1 staging) ||
	{ echo "certify failed"; finish; exit 1; }
"$BUILD/bin/credsign-admin" --config "$conf" cert revoke "$rev" --reason "exposed in a ticket" > /dev/null ||
	{ echo "revoke failed"; finish; exit 1; }

get() { # get NAME QUERY: the answer of GET /api/inventory?QUERY into $work/out; prints the status
	local got
	got=$(call "$1" GET "/api/inventory?$2")
	echo "${got%% *}"
}

# ---- the rotation history of one system ---------------------------------------------
rotation_history() {
	[ "$(get auditor 'project=payments')" = 200 ] || { cat "$work/out"; return 1; }
	cp "$work/out" "$work/payments.json"
	python3 - "$work/payments.json" "${ids[@]}" <<'PY'
import json, sys, datetime as dt
doc = json.load(open(sys.argv[1]))
c1, c2, c3, c4 = sys.argv[2:6]
recs = doc["records"]
db1 = [r for r in recs if r["system"] == "db1" and r["environment"] == "production"]
assert [r["cert_id"] for r in db1] == [c1, c2, c3, c4], db1
assert [r["state"] for r in db1] == ["superseded", "superseded", "superseded", "current"], db1
assert [r["superseded_by"] for r in db1] == [c2, c3, c4, None], db1
# the case under test: certifications within one second (equal certified_at)
same = sum(1 for a, b in zip(db1, db1[1:]) if a["certified_at"] == b["certified_at"])
assert same >= 1, [r["certified_at"] for r in db1]
print("  (%d of 3 successive certifications shared their certified_at second)" % same)
keys = ["project", "environment", "system", "state", "cert_id", "cert_url", "type", "preset", "standards",
        "certified_at", "requester", "rotation_due", "rotation_rule", "rotation", "superseded_by", "revoked_at",
        "revocation_reason"]
for r in recs:
    assert list(r) == keys, list(r)
for r in db1:
    cert = dt.datetime.strptime(r["certified_at"], "%Y-%m-%dT%H:%M:%SZ")
    due = dt.datetime.strptime(r["rotation_due"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert due - cert == dt.timedelta(days=60), r
    assert r["rotation_rule"] == "DISA GPOS SRG SRG-OS-000076-GPOS-00044", r
    assert r["preset"] == "dod-stig" and r["type"] == "password", r
    assert r["cert_url"].endswith("/cert/" + r["cert_id"]), r
    assert r["requester"] == "spiffe://credsign.test/ci-deployer", r
assert doc["counts"]["superseded"] == 3, doc["counts"]
assert doc["project"] == "payments" and doc["environment"] is None and doc["due_before"] is None
# ordered: project, environment, system (null first), certified_at (within
# one second, the order of certification: checked above for db1)
order = [(r["environment"], r["system"] is not None, r["system"] or "", r["certified_at"]) for r in recs]
assert order == sorted(order), order
PY
}
check "four rotations of db1 in a row (same second): the last current, three superseded, chained, 60-day due dates" rotation_history

due_dates() {
	python3 - "$work/payments.json" "$nist" "$pci_pw" "$pci_key" "$nosys" "$rev" "$staging" <<'PY'
import json, sys, datetime as dt
doc = json.load(open(sys.argv[1]))
nist, pci_pw, pci_key, nosys, rev, staging = sys.argv[2:8]
by = {r["cert_id"]: r for r in doc["records"]}
assert by[nist]["rotation_due"] is None and by[nist]["rotation_rule"] is None, by[nist]
assert "compromise" in by[nist]["rotation"], by[nist]
r = by[pci_pw]
cert = dt.datetime.strptime(r["certified_at"], "%Y-%m-%dT%H:%M:%SZ")
assert dt.datetime.strptime(r["rotation_due"], "%Y-%m-%dT%H:%M:%S.%fZ") - cert == dt.timedelta(days=90), r
assert r["rotation_rule"].startswith("PCI DSS v4.0.1 8.3.9"), r
assert by[pci_key]["rotation_due"] is None, by[pci_key]
assert by[nosys]["system"] is None and by[nosys]["state"] == "current", by[nosys]
assert by[rev]["state"] == "revoked" and by[rev]["revocation_reason"] == "exposed in a ticket", by[rev]
assert by[rev]["revoked_at"] is not None and by[rev]["superseded_by"] is None, by[rev]
# another environment's db1 is another key: current, supersedes nothing
assert by[staging]["state"] == "current", by[staging]
assert doc["counts"]["revoked"] == 1, doc["counts"]
assert doc["counts"]["current"] == 6, doc["counts"]
PY
}
check "due dates per preset (800-63B none, PCI password 90 days, api-key none); revoked; no-system record" due_dates

# ---- PCI DSS 8.3.9 reads the same in the written policy and the inventory -------------
pci_policy_agrees() {
	local st
	st=$(call auditor GET '/api/policy?standards=pci-dss-4,nist-800-63b')
	[ "${st%% *}" = 200 ] || { echo "$st"; return 1; }
	cp "$work/out" "$work/policy.json"
	local args
	read -r -a args <<< "$(client auditor)"
	curl -sf "${args[@]}" "$url/api/policy?standards=pci-dss-4,nist-800-63b&format=markdown" > "$work/policy.md" ||
		return 1
	python3 - "$work/policy.json" "$work/policy.md" "$work/payments.json" "$pci_pw" "$pci_key" <<'PY'
import json, sys
pol = json.load(open(sys.argv[1]))
md = open(sys.argv[2]).read()
inv = {r["cert_id"]: r for r in json.load(open(sys.argv[3]))["records"]}
pw, key = inv[sys.argv[4]], inv[sys.argv[5]]
rule = next(r for r in pol["rules"] if r["id"] == "password-only")
assert rule["value"] == 90 and rule["accounts"] == "all", rule
assert "changed at least once every 90 days (PCI DSS v4.0.1 8.3.9)" in rule["rule"], rule
rot = next(c for c in pol["conflicts"] if c["id"] == "rotation")
human = rot["resolution"]["human"]
assert "changed at least every 90 days (PCI DSS v4.0.1 8.3.9)" in human["rule"], human
assert "standing exception" in human["rule"], human
assert any("8.3.9" in c for c in human["cites"]) and any("3.1.1.2" in c for c in human["cites"]), human
ex = next(e for e in pol["exceptions"]["standing"] if e["id"] == "password-only.pci")
assert "at least every 90 days" in ex["text"], ex
assert any("8.3.9" in c for c in ex["cites"]) and any("3.1.1.2" in c for c in ex["cites"]), ex
for text in (json.dumps(pol), md):
    assert "not used" not in text and "does not arise" not in text
assert "every 90 days (PCI DSS v4.0.1 8.3.9)" in md
assert "8.3.9" in md[md.index("Exception"):], "the markdown's exceptions name 8.3.9"
# the inventory applies the same rule, and its rotation text says so
assert pw["rotation_rule"].startswith("PCI DSS v4.0.1 8.3.9"), pw
assert "at least every 90 days (PCI DSS v4.0.1 8.3.9, inventory.pci_password_change_days)" in pw["rotation"], pw
assert "8.3.9" not in key["rotation"] and key["rotation_rule"] is None, key
PY
}
check "PCI DSS 8.3.9 with pci_password_change_days = 90: the policy (JSON, markdown) states 90 days as a standing exception to 800-63B; the inventory's rule and rotation agree" pci_policy_agrees

# ---- access ------------------------------------------------------------------------------
access() {
	[ "$(get stranger 'project=payments')" = 403 ] || return 1
	grep -q '"code":"forbidden"' "$work/out" || return 1
	[ "$(get ci-deployer 'project=payments&environment=production')" = 200 ] || return 1
	[ "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["records"]))' "$work/out")" = 9 ] ||
		return 1
	# the generator's environments only: staging is its too, development is not
	[ "$(get ci-deployer 'project=payments&environment=development')" = 403 ] || return 1
	# without a project: what each may read (web-deployer: payments' staging only)
	[ "$(get web-deployer '')" = 200 ] || return 1
	python3 - "$work/out" "$staging" <<'PY' || return 1
import json, sys
assert [r["cert_id"] for r in json.load(open(sys.argv[1]))["records"]] == [sys.argv[2]]
PY
	[ "$(get auditor '')" = 200 ] || return 1
	[ "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["records"]))' "$work/out")" = 10 ] ||
		return 1
	# a generator of payments in one environment, asking for the whole
	# project: admitted, the records of its environment only
	[ "$(get web-deployer 'project=payments')" = 200 ] || { cat "$work/out"; return 1; }
	python3 - "$work/out" "$staging" <<'PY' || return 1
import json, sys
doc = json.load(open(sys.argv[1]))
assert [r["cert_id"] for r in doc["records"]] == [sys.argv[2]], doc["records"]
assert doc["counts"]["current"] == 1 and doc["counts"]["superseded"] == 0, doc["counts"]
PY
	# ... with an explicit environment the decision stays exact
	[ "$(get web-deployer 'project=payments&environment=production')" = 403 ] || return 1
	[ "$(get web-deployer 'project=payments&environment=staging')" = 200 ] || return 1
	# ... and a project it has no grant for: refused, naming it
	[ "$(get ci-deployer 'project=web')" = 403 ] || return 1
	grep -q 'no auditor grant for project web, nor a generator grant for it in any environment' \
		"$work/out" || { cat "$work/out"; return 1; }
	# the project's auditor sees all of it
	[ "$(get auditor 'project=payments')" = 200 ] || return 1
	[ "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["records"]))' "$work/out")" = 10 ] ||
		return 1
	[ "$(get operator '')" = 403 ] || return 1
	# audited: the refusal names the query and the project asked for
	sqlite3 "$db" "SELECT count(*) FROM audit_log WHERE action = 'inventory.read' AND outcome = 'refused'
	               AND actor = 'spiffe://credsign.test/stranger' AND project = 'payments'
	               AND object LIKE 'project=payments environment=- %'" | grep -qx 1 || return 1
	sqlite3 "$db" "SELECT count(*) FROM audit_log WHERE action = 'inventory.read' AND outcome = 'success'
	               AND actor = 'spiffe://credsign.test/auditor'" | grep -qvx 0
}
check "access: other project's auditor 403 (audited), generator and auditor 200, rows filtered, whole project for a one-environment generator, no grant 403" access

csv_equals_json() {
	call auditor GET "/api/inventory?project=payments&format=csv" > /dev/null
	cp "$work/out" "$work/payments.csv"
	curl -s -o /dev/null -w '%{content_type}' $(client auditor) "$url/api/inventory?project=payments&format=csv" |
		grep -qx 'text/csv; charset=utf-8' || return 1
	python3 - "$work/payments.json" "$work/payments.csv" <<'PY'
import csv, json, sys
doc = json.load(open(sys.argv[1]))
raw = open(sys.argv[2], newline="").read()
assert raw.endswith("\r\n") and "\n" not in raw.replace("\r\n", ""), "CRLF line ends"
rows = list(csv.reader(raw.splitlines(True)))
header, body = rows[0], rows[1:]
assert header == list(doc["records"][0]), header
assert len(body) == len(doc["records"])
for rec, row in zip(doc["records"], body):
    want = []
    for k, v in rec.items():
        want.append("" if v is None else "; ".join(v) if isinstance(v, list) else v)
    assert row == want, (row, want)
PY
}
check "format=csv (text/csv, CRLF, python csv) equals the JSON records" csv_equals_json

due_before() {
	# 70 days from now: the current dod-stig certificate (60 days), not the
	# PCI password (90) nor the superseded dod-stig ones (they keep their
	# rotation_due, but are no longer due)
	local d
	d=$(date -u -d '+70 days' +%Y-%m-%d)
	[ "$(get auditor "project=payments&due_before=$d")" = 200 ] || return 1
	python3 - "$work/out" "$d" "${ids[3]}" <<'PY' || return 1
import json, sys
doc = json.load(open(sys.argv[1]))
assert [r["cert_id"] for r in doc["records"]] == [sys.argv[3]], doc["records"]
assert [r["state"] for r in doc["records"]] == ["current"]
assert doc["due_before"] == sys.argv[2]
PY
	python3 - "$work/payments.json" "$d" <<'PY' || return 1
import json, sys
superseded = [r for r in json.load(open(sys.argv[1]))["records"] if r["state"] == "superseded"]
assert len(superseded) == 3 and all(r["rotation_due"] < sys.argv[2] for r in superseded), superseded
PY
	[ "$(get auditor 'project=payments&due_before=2026-02-30')" = 400 ] &&
		grep -q "'due_before'" "$work/out" &&
		[ "$(get auditor 'project=payments&format=xml')" = 400 ] && grep -q "'format'" "$work/out" &&
		[ "$(get auditor 'project=payments&system=db1')" = 400 ] && grep -q '"unknown_field"' "$work/out"
}
check "due_before keeps current records due before it; bad parameters 400 naming the parameter" due_before

metric() { # metric NAME_WITH_LABELS: its value in $work/metrics
	awk -v n="$1" '$1 == n { print $2 }' "$work/metrics"
}
metrics_now() {
	call operator GET /metrics > /dev/null
	cp "$work/out" "$work/metrics"
	[ "$(metric 'credsign_inventory_records{state="current"}')" = 6 ] &&
		[ "$(metric 'credsign_inventory_records{state="superseded"}')" = 3 ] &&
		[ "$(metric 'credsign_inventory_records{state="revoked"}')" = 1 ] &&
		[ "$(metric credsign_inventory_rotation_overdue)" = 0 ] &&
		[ "$(metric credsign_inventory_rotation_due_soon)" = 0 ] || { grep inventory "$work/metrics"; return 1; }
}
check "/metrics: inventory records by state, nothing overdue or due soon" metrics_now

cli() {
	as_client auditor
	"$BUILD/bin/credsign" inventory --project payments > "$work/cli.txt" || return 1
	grep -q "^state " "$work/cli.txt" && grep -Eq "^superseded +payments +production +db1 " "$work/cli.txt" &&
		grep -q "records: 6 current, 3 superseded, 1 revoked" "$work/cli.txt" || { cat "$work/cli.txt"; return 1; }
	# the rotation rule (short form) and, for a revoked record, when it was revoked
	python3 - "$work/cli.txt" "$work/payments.json" <<'PY' || { cat "$work/cli.txt"; return 1; }
import json, re, sys
lines = open(sys.argv[1]).read().splitlines()
head = lines[0].split()
assert head == ["state", "project", "environment", "system", "cert_id", "type", "preset", "certified_at",
                "rotation_due", "rule", "revoked_at", "superseded_by"], head
starts = [lines[0].index(h) for h in ["rule", "revoked_at", "superseded_by"]]
by = {r["cert_id"]: r for r in json.load(open(sys.argv[2]))["records"]}
seen = 0
for line in lines[1:-1]:
    cert_id = line.split()[4]
    r = by[cert_id]
    rule = line[starts[0]:starts[1]].strip()
    revoked = line[starts[1]:starts[2]].strip()
    want_rule = r["rotation_rule"].split(" (")[0] if r["rotation_rule"] else "-"
    assert rule == want_rule, (line, r)
    assert revoked == (r["revoked_at"] or "-"), (line, r)
    seen += 1
assert seen == len(by), (seen, len(by))
assert any("DISA GPOS SRG SRG-OS-000076-GPOS-00044" in l for l in lines)
assert any(re.search(r"PCI DSS v4\.0\.1 8\.3\.9 ", l) for l in lines)
assert any(l.startswith("revoked ") and re.search(r"\d{4}-\d\d-\d\dT[\d:.]+Z", l.split()[-2]) for l in lines), lines
PY
	"$BUILD/bin/credsign" inventory --project payments --format csv > "$work/cli.csv" &&
		cmp -s "$work/cli.csv" "$work/payments.csv" || return 1
	"$BUILD/bin/credsign" inventory --project payments --format json --due-before "$(date -u -d '+70 days' +%F)" |
		python3 -c 'import json,sys; assert len(json.load(sys.stdin)["records"]) == 1' || return 1
	"$BUILD/bin/credsign" inventory --format yaml > /dev/null 2>&1
	[ $? = 2 ] || return 1
	as_client stranger
	"$BUILD/bin/credsign" inventory --project payments > /dev/null 2>&1
	[ $? = 1 ]
}
check "credsign inventory: text, csv (same bytes as the API), json with --due-before; refusals" cli
stop_daemon

# ---- the clock 80 days on: dod-stig's current record overdue, the PCI password due soon ----
later() {
	local lib
	lib=$(ls /usr/lib/*/faketime/libfaketimeMT.so.1 2>/dev/null | head -1)
	[ -n "$lib" ] || { echo "  libfaketime missing (hsm-setup/install-deps)"; return 1; }
	DAEMON_WRAP=(env ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0 LD_PRELOAD="$lib" FAKETIME=+80d)
	start_daemon
	local rc=$?
	DAEMON_WRAP=()
	[ $rc = 0 ] || return 1
	call operator GET /metrics > /dev/null
	cp "$work/out" "$work/metrics"
	stop_daemon
	[ "$(metric credsign_inventory_rotation_overdue)" = 1 ] &&
		[ "$(metric credsign_inventory_rotation_due_soon)" = 1 ] || { grep inventory "$work/metrics"; return 1; }
}
check "/metrics 80 days later (faketime): 1 overdue (dod-stig), 1 due soon (PCI password, 90 days)" later

# ---- without inventory.pci_password_change_days: the PCI password has no due date --------
without_setting() {
	sed -i 's/pci_password_change_days = 90;/pci_password_change_days = 0;/' "$conf"
	start_daemon || return 1
	get auditor 'project=payments' > /dev/null
	stop_daemon
	python3 - "$work/out" "$pci_pw" <<'PY'
import json, sys
by = {r["cert_id"]: r for r in json.load(open(sys.argv[1]))["records"]}
assert by[sys.argv[2]]["rotation_due"] is None, by[sys.argv[2]]
PY
}
check "without pci_password_change_days the PCI password has no due date" without_setting

finish
