#!/usr/bin/env bash
# The tamper-evident audit log: complete and attributed entries, signed
# checkpoints, fail-closed writes, tamper detection by credsign-admin audit
# verify and by an independent verifier, what a verification authenticates
# (exit 3 when nothing; pages; a kept checkpoint), export, retention purge
# and the clock it trusts (clock.ahead/behind at start, clock jumps refused).
#
#   audit_test.sh BUILD_DIR STATE_DIR SOFTHSM_MODULE
BUILD=${1:?}
STATE=${2:?}
SOFTHSM=${3:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_token audit || exit 1

EXTRA_CONF="${EXTRA_CONF:-}
$(ceremony_group)" EXTRA_SERVER='' it_setup audit || exit 1
# started: the listener is up before the start-up entries are written (a
# stop before them would leave a log of varying length)
started() { wait_for_log 'msg="credsignd .* starting'; }
started
# small checkpoint interval: restart with an audit group (the auditor
# reads the log by its grant, lib.sh)
stop_daemon
cat >> "$conf" <<'CONF'
audit = { checkpoint_entries = 5; checkpoint_seconds = 2; write_timeout_ms = 1500; retention_days = 400; };
CONF
start_daemon || exit 1
sql() { sqlite3 "$1" "$2"; }
jwks=$work/jwks.json
call auditor GET /.well-known/jwks.json | cut -d' ' -f2- > "$jwks"

# ---- every action and refusal class, attributed -----------------------------------
start_seq=$(sql "$db" 'SELECT max(seq) FROM audit_log')
got=$(call ci-deployer POST /api/generate '{"preset":"soc2","project":"payments","environment":"production"}')
sid=$(json_field "${got#200 }" generation_session_id)
got=$(call ci-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$sid\"}")
cid=$(json_field "${got#201 }" cert_id)
call web-deployer GET "/cert/$cid" > /dev/null                                                       # 403: payments
call auditor GET "/cert/$cid" > /dev/null
call web-deployer GET /.well-known/jwks.json > /dev/null
call web-deployer GET '/api/policy?standards=soc2' > /dev/null
call web-deployer GET /api/presets > /dev/null
call web-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$sid\"}" > /dev/null  # 403
call ci-deployer POST /api/generate '{"project":"payments","environment":"production","preset":"soc2","colour":"red"}' > /dev/null                   # 400
call ci-deployer POST /api/generate '{"project":"payments","environment":"production","preset":"soc2","length":4}' > /dev/null                       # 422
call stranger GET /api/audit > /dev/null                                                             # 403
call auditor GET /api/audit/checkpoint > /dev/null
curl -s -o /dev/null --max-time 5 $(client revoked) "$url/healthz"                                  # TLS refusal
call operator GET /healthz > /dev/null                                                               # not audited

expected_entries() {
	sql "$db" "SELECT actor, role, action, outcome, coalesce(error_code,''), coalesce(object,''),
	           coalesce(project,''), coalesce(environment,''), (actor_cert_sha256 IS NOT NULL),
	           (request_id IS NOT NULL) FROM audit_log WHERE seq > $start_seq ORDER BY seq" > "$work/got.txt"
	cat > "$work/want.txt" <<WANT
spiffe://credsign.test/ci-deployer|generator|generate|success||$sid|payments|production|1|1
spiffe://credsign.test/ci-deployer|generator|certify|success||$cid|payments|production|1|1
spiffe://credsign.test/web-deployer|client|cert.read|refused|forbidden|$cid: no auditor or generator grant for project payments|payments|production|1|1
spiffe://credsign.test/auditor|auditor|cert.read|success||$cid|payments|production|1|1
spiffe://credsign.test/web-deployer|client|jwks.read|success|||||1|1
spiffe://credsign.test/web-deployer|generator|policy.read|success|||||1|1
spiffe://credsign.test/web-deployer|generator|presets.read|success|||||1|1
spiffe://credsign.test/web-deployer|client|certify|refused|forbidden|$sid: the generation session belongs to another client certificate (only the certificate that generated may certify)|||1|1
spiffe://credsign.test/ci-deployer|client|generate|refused|unknown_field||||1|1
spiffe://credsign.test/ci-deployer|client|generate|refused|below_minimum||||1|1
spiffe://credsign.test/stranger|client|audit.read|refused|forbidden|no auditor grant (audit.read needs one)|||1|1
spiffe://credsign.test/auditor|auditor|audit.checkpoint.read|success|||||1|1
spiffe://credsign.test/revoked|client|tls.handshake|refused|certificate revoked||||1|0
WANT
	diff "$work/want.txt" "$work/got.txt"
}
check "every API action and refusal class produces exactly the expected attributed entry" expected_entries

timestamps_utc_ms() {
	[ "$(sql "$db" "SELECT count(*) FROM audit_log WHERE ts NOT GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'")" = 0 ] &&
		[ "$(sql "$db" "SELECT count(DISTINCT node) FROM audit_log")" = 1 ]
}
check "timestamps are RFC 3339 UTC with milliseconds and Z; node recorded" timestamps_utc_ms

no_secrets_in_audit() {
	! sql "$db" "SELECT * FROM audit_log" | grep -qiE 'salt|credential|pin'
}
check "no credential, PIN or salt field in the audit log" no_secrets_in_audit

append_only() {
	[ "$(sql "$db" 'SELECT count(*) FROM audit_checkpoints')" -gt 0 ] &&
	! sql "$db" "UPDATE audit_log SET actor = 'x' WHERE seq = 1" 2>/dev/null &&
		! sql "$db" "DELETE FROM audit_log WHERE seq = 1" 2>/dev/null &&
		! sql "$db" "DELETE FROM audit_checkpoints" 2>/dev/null &&
		[[ "$(sql "$db" "UPDATE audit_log SET actor = 'x' WHERE seq = 1" 2>&1)" == *append-only* ]]
}
check "triggers refuse UPDATE and DELETE" append_only

checkpoint_signed() {
	local got
	got=$(call auditor GET /api/audit/checkpoint)
	[[ "$got" == "200 "* ]] && /usr/bin/python3 - "${got#200 }" "$jwks" <<'PY'
import json, sys
from jwcrypto import jwk, jws
doc = json.loads(sys.argv[1]); keys = {k["kid"]: k for k in json.load(open(sys.argv[2]))["keys"]}
t = jws.JWS(); t.deserialize(doc["checkpoint"])
k = keys[t.jose_header["kid"]]
t.verify(jwk.JWK(**{n: k[n] for n in ("kty", "crv", "x", "y")}), alg="ES256")
c = json.loads(t.payload)
assert t.jose_header["typ"] == "credsign-audit-checkpoint+jwt"
assert {"first_seq", "last_seq", "head_hash", "time", "node"} <= set(c) and c["last_seq"] >= c["first_seq"] >= 1
PY
}
check "GET /api/audit/checkpoint: the newest ES256 checkpoint, verifiable with the JWKS" checkpoint_signed
every_five() {
	# entry 10 completes a block of 5: some checkpoint ends exactly there
	[ "$(sql "$db" "SELECT count(*) FROM audit_checkpoints WHERE last_seq = 10")" -ge 1 ] &&
		[ "$(sql "$db" "SELECT count(*) FROM audit_checkpoints WHERE last_seq = 15")" -ge 1 ]
}
check "a checkpoint ends at every block of audit.checkpoint_entries (10, 15)" every_five

timed_checkpoint() {
	# an entry that does not complete a block of 5 is covered within seconds
	call web-deployer GET /api/presets > /dev/null
	local last
	last=$(sql "$db" 'SELECT max(seq) FROM audit_log')
	for _ in $(seq 80); do
		[ "$(sql "$db" "SELECT count(*) FROM audit_checkpoints WHERE last_seq >= $last")" -gt 0 ] && return 0
		sleep 0.1
	done
	return 1
}
check "checkpoints also come every audit.checkpoint_seconds" timed_checkpoint

auditor_export() {
	local got
	got=$(call auditor GET '/api/audit?from_seq=1&limit=5')
	[[ "$got" == "200 "* ]] && python3 - "${got#200 }" <<'PY'
import json, sys
d = json.loads(sys.argv[1])
assert [e["seq"] for e in d["entries"]] == [1, 2, 3, 4, 5] and d["next_from_seq"] == 6, d["next_from_seq"]
assert all(e["type"] == "entry" and len(e) == 16 and e["prev_hash"] and e["entry_hash"] for e in d["entries"])
# the checkpoints that end inside the page (one at 5: checkpoint_entries),
# each with its unsigned head_hash, the entry_hash of its last entry
cps = d["checkpoints"]
assert cps and cps[-1]["last_seq"] == 5 and all(1 <= c["last_seq"] <= 5 for c in cps), cps
assert all(c["type"] == "checkpoint" and c["kind"] in ("periodic", "stop") and
           c["head_hash"] == d["entries"][c["last_seq"] - 1]["entry_hash"] for c in cps)
PY
}
check "GET /api/audit (auditor): a page of typed entries, the checkpoints ending in it, next_from_seq" auditor_export

one_format() {
	# the API's objects are the export's lines, member for member
	local got
	got=$(call auditor GET '/api/audit?from_seq=1&limit=10000')
	[[ "$got" == "200 "* ]] || return 1
	echo "${got#200 }" > "$work/api.json"
	"$BUILD/bin/credsign-admin" --config "$conf" audit export --format jsonl > "$work/one.jsonl" || return 1
	python3 - "$work/api.json" "$work/one.jsonl" <<'PY'
import json, sys
api = json.load(open(sys.argv[1]))
lines = [json.loads(l) for l in open(sys.argv[2])]
assert api["next_from_seq"] is None
by_seq = {l["seq"]: l for l in lines if l["type"] == "entry"}
by_range = {(l["first_seq"], l["last_seq"]): l for l in lines if l["type"] == "checkpoint"}
assert len(api["entries"]) > 20 and all(by_seq[e["seq"]] == e for e in api["entries"])
assert api["checkpoints"] and all(by_range[(c["first_seq"], c["last_seq"])] == c for c in api["checkpoints"])
PY
}
check "GET /api/audit and credsign-admin audit export: one format" one_format

partial_exports() {
	# --since 7 and API pages put together verify, with the tool and the
	# independent verifier; an edit in a partial export is caught
	local out ref
	"$BUILD/bin/credsign-admin" --config "$conf" audit export --since 7 > "$work/since7.jsonl" || return 1
	out=$("$BUILD/bin/credsign-admin" --config "$conf" audit verify --file "$work/since7.jsonl" --jwks "$jwks")
	echo "  $out" | head -2
	[[ "$out" == "audit log intact: "*"(seq 7.."* ]] && [[ "$out" == *"partial: begins at seq 7"* ]] || return 1
	ref=$(/usr/bin/python3 "$(dirname "$0")/audit_reference.py" "$work/since7.jsonl" "$jwks") || return 1
	[[ "$ref" == "intact "*" partial" ]] || return 1
	rm -f "$work/pages.jsonl"
	local from=1 page
	while [ "$from" != None ]; do
		page=$(call auditor GET "/api/audit?from_seq=$from&limit=7") || return 1
		python3 -c 'import json,sys; d=json.loads(sys.argv[1]); [print(json.dumps(o)) for o in d["entries"] + d["checkpoints"]]; print(d["next_from_seq"], file=sys.stderr)' \
			"${page#200 }" >> "$work/pages.jsonl" 2> "$work/next" || return 1
		from=$(cat "$work/next")
	done
	"$BUILD/bin/credsign-admin" --config "$conf" audit verify --file "$work/pages.jsonl" --jwks "$jwks" | grep -q '^audit log intact' &&
		/usr/bin/python3 "$(dirname "$0")/audit_reference.py" "$work/pages.jsonl" "$jwks" > /dev/null || return 1
	python3 - "$work/since7.jsonl" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
for l in lines:
    if l["type"] == "entry" and l["seq"] == 9:
        l["actor"] = "spiffe://credsign.test/someone-else"
open(sys.argv[1], "w").write("".join(json.dumps(l) + "\n" for l in lines))
PY
	out=$("$BUILD/bin/credsign-admin" --config "$conf" audit verify --file "$work/since7.jsonl" --jwks "$jwks")
	[[ "$out" == "audit log NOT intact at seq 9: "*"was modified"* ]] || { echo "  $out"; return 1; }
}
check "partial exports (--since, API pages put together) verify; an edit in one is caught" partial_exports

page_carries_its_checkpoint() {
	# a page cut inside a checkpoint carries it (ending past the page), and
	# verify says what it covers; alone the page authenticates nothing: exit 3
	local first last got out rc
	read -r first last <<< "$(sql "$db" "SELECT first_seq, last_seq FROM audit_checkpoints
	                                      WHERE kind != 'purge' AND last_seq - first_seq >= 2 ORDER BY id LIMIT 1" | tr '|' ' ')"
	got=$(call auditor GET "/api/audit?from_seq=$first&limit=$((last - first))")
	[[ "$got" == "200 "* ]] || return 1
	python3 -c 'import json,sys; d=json.loads(sys.argv[1]); [print(json.dumps(o)) for o in d["entries"] + d["checkpoints"]]' \
		"${got#200 }" > "$work/page.jsonl" || return 1
	[ "$(grep -c '"type": "checkpoint"' "$work/page.jsonl")" = 1 ] &&
		grep -q "\"first_seq\": $first, .*\"last_seq\": $last" "$work/page.jsonl" || { cat "$work/page.jsonl"; return 1; }
	out=$("$BUILD/bin/credsign-admin" --config "$conf" audit verify --file "$work/page.jsonl" --jwks "$jwks")
	rc=$?
	echo "$out" | sed 's/^/  /'
	[ $rc = 3 ] && [[ "$out" == "nothing authenticated: $((last - first)) entries (seq $first..$((last - 1)))"* ]] &&
		[[ "$out" == *"covered by checkpoint $first..$last, which ends after this file"* ]] || return 1
	/usr/bin/python3 "$(dirname "$0")/audit_reference.py" "$work/page.jsonl" "$jwks" > /dev/null
	[ $? = 3 ]
}
check "a page cut inside a checkpoint carries it; alone it authenticates nothing (exit 3)" page_carries_its_checkpoint

forged_exports() {
	# the review's files: every checkpoint removed; a fabricated export (every
	# actor changed, the chain recomputed); an empty one. Each used to print
	# "audit log intact" and exit 0: now "nothing authenticated", exit 3. An
	# entry with a member more (unsigned text riding along) is refused.
	local f out rc
	"$BUILD/bin/credsign-admin" --config "$conf" audit export > "$work/full.jsonl" || return 1
	python3 - "$work/full.jsonl" "$work" <<'PY' || return 1
import base64, hashlib, json, sys
FIELDS = ("seq", "ts", "node", "actor", "actor_cert_sha256", "role", "action", "object", "project",
          "environment", "outcome", "error_code", "request_id")
def b64d(s): return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
def b64e(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
def canon(e):
    out = b""
    for f in FIELDS:
        v = e[f]
        out += b"\xff\xff\xff\xff" if v is None else len(str(v).encode()).to_bytes(4, "big") + str(v).encode()
    return out
def write(name, ls):
    open("%s/t_%s.jsonl" % (sys.argv[2], name), "w").write("".join(json.dumps(l, sort_keys=True) + "\n" for l in ls))
lines = [json.loads(l) for l in open(sys.argv[1])]
entries = [l for l in lines if l["type"] == "entry"]
write("no_cps", entries)
fab = [dict(e, actor="someone-else") for e in entries]
running = b64d(fab[0]["prev_hash"])
for e in fab:
    e["prev_hash"] = b64e(running)
    running = hashlib.sha256(running + canon(e)).digest()
    e["entry_hash"] = b64e(running)
write("fabricated", fab)
write("empty", [])
extra = [dict(l) for l in lines]
extra[len(entries) // 2]["note"] = "x"
write("extra", extra)
PY
	for f in no_cps fabricated empty; do
		out=$("$BUILD/bin/credsign-admin" --config "$conf" audit verify --file "$work/t_$f.jsonl" --jwks "$jwks")
		rc=$?
		echo "  $f: exit $rc: ${out%%$'\n'*}"
		[ $rc = 3 ] && [[ "$out" == "nothing authenticated: "* ]] || return 1
		/usr/bin/python3 "$(dirname "$0")/audit_reference.py" "$work/t_$f.jsonl" "$jwks" > /dev/null
		[ $? = 3 ] || return 1
	done
	out=$("$BUILD/bin/credsign-admin" --config "$conf" audit verify --file "$work/t_extra.jsonl" --jwks "$jwks")
	rc=$?
	echo "  extra member: exit $rc: $out"
	[ $rc = 1 ] && [[ "$out" == "audit log NOT intact at seq "*"members not in the format"* ]] &&
		! /usr/bin/python3 "$(dirname "$0")/audit_reference.py" "$work/t_extra.jsonl" "$jwks" > /dev/null
}
check "exports with nothing authenticated exit 3 (no checkpoints, fabricated, empty); a member more is refused" forged_exports

kept_checkpoint() {
	# the auditor keeps GET /api/audit/checkpoint; an export reaches it and
	# agrees; cut before its end (the checkpoints over the cut dropped too)
	# the export still verifies alone, but not against the kept checkpoint
	local got out rc first
	got=$(call auditor GET /api/audit/checkpoint)
	[[ "$got" == "200 "* ]] || return 1
	echo "${got#200 }" > "$work/kept.json"
	"$BUILD/bin/credsign-admin" --config "$conf" audit export > "$work/full.jsonl" || return 1
	out=$("$BUILD/bin/credsign-admin" --config "$conf" audit verify --file "$work/full.jsonl" --jwks "$jwks" \
		--checkpoint "$work/kept.json")
	rc=$?
	echo "$out" | sed 's/^/  /'
	[ $rc = 0 ] && [[ "$out" == *"kept checkpoint "*"reached, and the log agrees with it"* ]] || return 1
	first=$(json_field "$(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["claims"]))' "$work/kept.json")" first_seq)
	python3 - "$work/full.jsonl" "$first" > "$work/cut.jsonl" <<'PY'
import json, sys
cut = int(sys.argv[2])
for l in open(sys.argv[1]):
    o = json.loads(l)
    if o.get("seq", 0) < cut and o.get("last_seq", 0) < cut:
        print(l, end="")
PY
	"$BUILD/bin/credsign-admin" --config "$conf" audit verify --file "$work/cut.jsonl" --jwks "$jwks" | grep -q '^audit log intact' || return 1
	out=$("$BUILD/bin/credsign-admin" --config "$conf" audit verify --file "$work/cut.jsonl" --jwks "$jwks" \
		--checkpoint "$work/kept.json")
	rc=$?
	echo "  cut: exit $rc: $out"
	[ $rc = 1 ] && [[ "$out" == *"before the end of the kept checkpoint"* ]]
}
check "audit verify --checkpoint: an export must reach the kept checkpoint and agree with it" kept_checkpoint

# ---- fail closed: the audit write cannot finish in time ---------------------------------
fail_closed() {
	local sid2 start elapsed gen cert
	sid2=$(json_field "$(call ci-deployer POST /api/generate '{"project":"payments","environment":"production","preset":"soc2"}' | cut -d' ' -f2-)" generation_session_id)
	# another process holds the database's write lock (a stuck store)
	( echo "BEGIN EXCLUSIVE;"; sleep 6; echo "COMMIT;" ) | sqlite3 "$db" &
	local locker=$!
	for _ in $(seq 50); do # until the lock is really held
		sqlite3 -cmd '.timeout 0' "$db" 'BEGIN IMMEDIATE; ROLLBACK;' 2>/dev/null || break
		sleep 0.1
	done
	start=$(date +%s%N)
	gen=$(call ci-deployer POST /api/generate '{"project":"payments","environment":"production","preset":"soc2"}')
	cert=$(call ci-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$sid2\"}")
	elapsed=$((($(date +%s%N) - start) / 1000000))
	wait $locker
	echo "  two requests failed in ${elapsed} ms (write_timeout_ms = 1500)"
	[[ "$gen" == "503 "* ]] && [[ "$gen" != *credential* ]] || { echo "  generate: ${gen:0:200}"; return 1; }
	[[ "$cert" == "503 "* ]] && [[ "$cert" != *certificate\"* ]] || { echo "  certify: ${cert:0:200}"; return 1; }
	[ "$elapsed" -lt 5000 ] || return 1
	# the lock is gone: the same session certifies now
	[[ "$(call ci-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$sid2\"}")" == "201 "* ]]
}
check "audit write blocked: generate and certify return 503 within the bound, no credential" fail_closed

stop_daemon
check "the daemon stops cleanly" test $? -eq 0

# ---- a new signing key (ceremony): the previous one retires, both stay in the JWKS -----
key_rotation() {
	local old new
	old=$(sql "$db" "SELECT kid FROM signing_keys WHERE status = 'active'")
	local out kid
	out=$("${admin[@]}" key generate --label it-es256-audit-2) || return 1
	kid=$(json_field "$out" kid)
	# rotation is a ceremony (two officers); the configuration is not read for it
	out=$(ceremony_run "$conf" --action activate --key "$kid" --reason "rotation") || { echo "  $out"; return 1; }
	start_daemon || return 1
	started
	new=$(sql "$db" "SELECT kid FROM signing_keys WHERE status = 'active'")
	call auditor GET /.well-known/jwks.json | cut -d' ' -f2- > "$jwks"
	[ -n "$new" ] && [ "$new" != "$old" ] &&
		[ "$(sql "$db" "SELECT status FROM signing_keys WHERE kid = '$old'")" = retired ] &&
		python3 -c 'import json,sys; s={k["kid"]: k["status"] for k in json.load(open(sys.argv[1]))["keys"]}; assert s[sys.argv[2]] == "retired" and s[sys.argv[3]] == "active"' "$jwks" "$old" "$new" &&
		[ "$(sql "$db" "SELECT count(*) FROM audit_log WHERE action = 'key.activate' AND object = '$new'")" = 1 ] &&
		[ "$(sql "$db" "SELECT count(*) FROM audit_log WHERE action = 'key.retire' AND object = '$old'")" = 1 ] || return 1
	stop_daemon
	start_daemon || return 1   # the same key again: no new key event
	started
	stop_daemon
	[ "$(sql "$db" "SELECT count(*) FROM audit_log WHERE action = 'key.activate' AND object = '$new'")" = 1 ]
}
check "a new signing key becomes active, the old one retired (JWKS; both audited once)" key_rotation

# ---- syslog mirror ------------------------------------------------------------------
syslog_mirror() {
	# glibc's syslog() writes to /dev/log. Without a syslog daemon the test
	# listens there itself; when one owns /dev/log, the daemon runs in its
	# own mount namespace with the test's socket bound over /dev/log.
	local sock=/dev/log
	DAEMON_WRAP=()
	if [ -e /dev/log ]; then
		sock=$work/dev-log.sock
		# shellcheck disable=SC2016 # expanded by the inner shell
		# (root: a mount namespace; otherwise a user namespace as well)
		DAEMON_WRAP=(unshare --mount --propagation private)
		[ "$(id -u)" = 0 ] || DAEMON_WRAP=(unshare --user --map-root-user --mount --propagation private)
		DAEMON_WRAP+=(sh -c 'mount --bind "$0" /dev/log && exec "$@"' "$sock")
		echo "  /dev/log has a syslog daemon: binding the listener over it in a private mount namespace"
	fi
	/usr/bin/python3 "$(dirname "$0")/syslog_listener.py" "$sock" 6 > "$work/syslog.out" &
	local listener=$!
	for _ in $(seq 50); do grep -q ready "$work/syslog.out" 2>/dev/null && break; sleep 0.1; done
	sed -i 's/write_timeout_ms = 1500;/write_timeout_ms = 1500; syslog = true;/' "$conf"
	start_daemon
	local started=$?
	DAEMON_WRAP=()
	[ $started -eq 0 ] || return 1
	call web-deployer GET /api/presets > /dev/null
	stop_daemon
	sed -i 's/ syslog = true;//' "$conf"
	wait $listener
	grep -q 'credsignd\[[0-9]*\]: {.*"actor":"spiffe://credsign.test/web-deployer".*"action":"presets.read"' "$work/syslog.out" &&
		grep -q '"action":"daemon.start"' "$work/syslog.out"
}
check "audit.syslog mirrors each entry to syslog as one JSON line" syslog_mirror

# ---- verification ----------------------------------------------------------------
admin_verify() { # admin_verify DB -> output of audit verify on a copy
	local copy=$work/verify.db
	cp "$1" "$copy"
	sed "s|path = \"$db\"|path = \"$copy\"|" "$conf" > "$work/verify.conf"
	"$BUILD/bin/credsign-admin" --config "$work/verify.conf" audit verify --jwks "$jwks" 2>/dev/null
}
intact() { admin_verify "$db" | grep -q '^audit log intact'; }
check "audit verify: the untouched log is intact" intact

tampered() { # tampered NAME SQL EXPECTED-SEQ EXPECTED-WORDS
	local t=$work/$1.db out
	cp "$db" "$t"
	sql "$t" "$2" || return 1
	out=$(admin_verify "$t")
	echo "  $out"
	[[ "$out" == "audit log NOT intact at seq $3: "*"$4"* ]]
}
last=$(sql "$db" 'SELECT max(seq) FROM audit_log')
cp_last=$(sql "$db" "SELECT max(last_seq) FROM audit_checkpoints WHERE last_seq < $last")
check "an edited field is detected at its seq" tampered edit \
	"DROP TRIGGER audit_log_no_update; UPDATE audit_log SET actor = 'spiffe://evil' WHERE seq = 4" 4 modified
check "a deleted entry is detected" tampered delete \
	"DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE seq = 6" 6 missing
check "two swapped entries are detected" tampered swap \
	"DROP TRIGGER audit_log_no_update;
	 CREATE TEMP TABLE a AS SELECT * FROM audit_log WHERE seq = 3;
	 CREATE TEMP TABLE b AS SELECT * FROM audit_log WHERE seq = 7;
	 UPDATE audit_log SET (ts, actor, action, outcome, prev_hash, entry_hash) =
	   (SELECT ts, actor, action, outcome, prev_hash, entry_hash FROM b) WHERE seq = 3;
	 UPDATE audit_log SET (ts, actor, action, outcome, prev_hash, entry_hash) =
	   (SELECT ts, actor, action, outcome, prev_hash, entry_hash FROM a) WHERE seq = 7;" 3 "does not chain"
check "truncating the tail below the last checkpoint is detected" tampered truncate \
	"DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE seq > $((cp_last - 2))" $((cp_last - 1)) truncated
check "a forged checkpoint is detected" tampered forge \
	"DROP TRIGGER audit_checkpoints_no_update;
	 UPDATE audit_checkpoints SET jws = replace(jws, substr(jws, instr(jws, '.') + 5, 4), 'AAAA') WHERE id = 1" 1 "bad signature"
rechained() {
	# rewrite entry 2 and every hash after it: only the signed checkpoints catch it
	local t=$work/rechain.db out
	cp "$db" "$t"
	python3 - "$t" <<'PY'
import hashlib, sqlite3, sys
FIELDS = ("seq", "ts", "node", "actor", "actor_cert_sha256", "role", "action", "object", "project",
          "environment", "outcome", "error_code", "request_id")
db = sqlite3.connect(sys.argv[1])
db.executescript("DROP TRIGGER audit_log_no_update;")
db.execute("UPDATE audit_log SET outcome = 'refused' WHERE seq = 2")
rows = db.execute("SELECT %s FROM audit_log ORDER BY seq" % ", ".join(FIELDS)).fetchall()
prev = bytes(32)
for r in rows:
    data = b""
    for v in r:
        if v is None:
            data += b"\xff\xff\xff\xff"
        else:
            b = str(v).encode()
            data += len(b).to_bytes(4, "big") + b
    h = hashlib.sha256(prev + data).digest()
    db.execute("UPDATE audit_log SET prev_hash = ?, entry_hash = ? WHERE seq = ?", (prev, h, r[0]))
    prev = h
db.commit()
PY
	out=$(admin_verify "$t")
	echo "  $out"
	[[ "$out" == "audit log NOT intact at seq 1: "*"do not match the signed checkpoint"* ]]
}
check "an entry modified and re-chained is caught by the signed checkpoint" rechained

# ---- export and an independent verifier -----------------------------------------
export_and_reference() {
	"$BUILD/bin/credsign-admin" --config "$conf" audit export --format jsonl > "$work/export.jsonl" &&
		grep -q '"type":"checkpoint"' "$work/export.jsonl" &&
		/usr/bin/python3 "$(dirname "$0")/audit_reference.py" "$work/export.jsonl" "$jwks" &&
		[ "$(sql "$db" "SELECT action || ':' || actor FROM audit_log ORDER BY seq DESC LIMIT 1")" = "audit.export:local:$(id -un)" ]
}
check "audit export (JSONL) verifies with an independent implementation; the export is audited" export_and_reference
since_time() {
	local ts
	ts=$(sql "$db" 'SELECT ts FROM audit_log WHERE seq = 10')
	[ "$("$BUILD/bin/credsign-admin" --config "$conf" audit export --since "$ts" | grep -c '"type":"entry"')" -ge \
	  "$(sql "$db" "SELECT count(*) - 1 FROM audit_log WHERE ts >= '$ts'")" ]
}
check "audit export --since RFC3339" since_time

# ---- retention -------------------------------------------------------------------------
# ages are measured against the newest signed checkpoint's time, not the local clock alone
clock_ahead_purge() {
	# the issue's case: a copy of the store, its entries minutes old; with
	# the clock 500 days ahead the purge used to delete them all
	command -v faketime >/dev/null || { echo "  faketime missing (hsm-setup/install-deps)"; return 1; }
	local c=$work/ahead.db out before rc
	cp "$db" "$c"
	sed "s|path = \"$db\"|path = \"$c\"|" "$conf" > "$work/ahead.conf"
	before=$(sql "$c" 'SELECT max(seq) FROM audit_log')
	# the purge is a ceremony: every step under the same wrong clock (its
	# entries carry that clock: the ledger keeps ts ordered along seq)
	local CEREMONY_WRAP=(env ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0 faketime -f '+500d')
	out=$(ceremony_run "$work/ahead.conf" --action purge)
	rc=$?
	CEREMONY_WRAP=()
	[ $rc = 0 ] || { echo "  $out"; return 1; }
	echo "$out" | sed 's/^/  /'
	[[ "$out" == *"warning: local clock "*" days ahead of the newest signed checkpoint"* ]] &&
		[[ "$out" == *"nothing to purge"* ]] || return 1
	# nothing removed; the clock is on record
	[ "$(sql "$c" 'SELECT min(seq) FROM audit_log')" = 1 ] &&
		[ "$(sql "$c" "SELECT count(*) FROM audit_checkpoints WHERE kind = 'purge'")" = 0 ] &&
		[ "$(sql "$c" "SELECT count(*) FROM audit_log WHERE seq > $before AND action = 'clock.ahead' AND outcome = 'failure'")" = 1 ]
}
check "purge with the clock 500 days ahead removes nothing; the clock is reported and audited" clock_ahead_purge

retention_purge() {
	command -v faketime >/dev/null || { echo "  faketime missing"; return 1; }
	# entries 500 days old (key events recorded by the admin tool in the
	# past), then the daemon runs once (its stop checkpoint, now, is the
	# time reference), then the purge removes the old entries and only them
	local p=$work/purge.db out saved=$conf first
	rm -f "$p"
	sed "s|path = \"$db\"|path = \"$p\"|" "$conf" > "$work/purge.conf"
	for i in 1 2 3; do
		ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0 faketime -f '-500d' \
			"$BUILD/bin/credsign-admin" --config "$work/purge.conf" key generate --label "old-$i" >/dev/null || return 1
	done
	"$BUILD/bin/credsign-admin" --config "$work/purge.conf" key generate --label "new-1" >/dev/null || return 1
	out=$(ceremony_run "$work/purge.conf" --action purge) || { echo "  $out"; return 1; }
	[[ "$out" == *"nothing to purge: no signed periodic or stop checkpoint"* ]] || { echo "  $out"; return 1; }
	conf=$work/purge.conf
	start_daemon || { conf=$saved; return 1; }
	started
	stop_daemon
	conf=$saved
	[ "$(sql "$p" "SELECT count(*) FROM audit_checkpoints WHERE kind = 'stop'")" = 1 ] || return 1
	out=$(ceremony_run "$work/purge.conf" --action purge) || { echo "  $out"; return 1; }
	echo "$out" | sed 's/^/  /'
	[[ "$out" == *"purged entries 1..3 "*"purge checkpoint over 1..3"* ]] || return 1
	first=$(sql "$p" 'SELECT min(seq) FROM audit_log')
	[ "$first" = 4 ] && [ "$(sql "$p" "SELECT action FROM audit_log WHERE seq = 4")" = key.generate ] &&
		[ "$(sql "$p" "SELECT first_seq || '..' || last_seq FROM audit_checkpoints WHERE kind = 'purge'")" = 1..3 ] || return 1
	"$BUILD/bin/credsign-admin" --config "$work/purge.conf" audit verify --jwks "$jwks" | grep -q '^audit log intact' &&
		"$BUILD/bin/credsign-admin" --config "$work/purge.conf" audit export > "$work/purged.jsonl" &&
		/usr/bin/python3 "$(dirname "$0")/audit_reference.py" "$work/purged.jsonl" "$jwks" > /dev/null
}
check "retention purge removes only old entries behind a signed purge checkpoint over them; still verifies" retention_purge

# ---- ts along seq under concurrent requests -------------------------------------------
concurrent_ts() {
	local from args out
	start_daemon || return 1
	from=$(sql "$db" 'SELECT max(seq) FROM audit_log')
	read -r -a args <<< "$(client web-deployer)"
	seq 90 | xargs -P 9 -I{} curl -s -o /dev/null "${args[@]}" "$url/api/presets?n={}"
	stop_daemon
	[ "$(sql "$db" "SELECT count(*) FROM audit_log WHERE seq > $from AND action = 'presets.read'")" = 90 ] || return 1
	# no entry earlier than the one before it, and verify agrees (no warning either)
	[ "$(sql "$db" "SELECT count(*) FROM audit_log a JOIN audit_log b ON b.seq = a.seq + 1 WHERE b.ts < a.ts")" = 0 ] || return 1
	out=$(admin_verify "$db")
	[[ "$out" == "audit log intact"* ]] && [[ "$out" != *note:* ]] || { echo "  $out"; return 1; }
}
check "90 concurrent requests: ts never decreases along seq" concurrent_ts

# ---- the clock: the purge's reference is only as good as the daemon's clock -----------
clock_jump() {
	# the review's case: on a copy of the store the daemon runs with its clock
	# 2500 days ahead, then the purge runs with the same clock. It used to
	# delete every entry (minutes old) behind a validly signed purge
	# checkpoint, with no warning. Now the daemon warns and audits
	# clock.ahead, the purge refuses the leap of the signed times (audited),
	# and goes ahead only with --accept-clock-jump (audited); back on the right
	# clock the daemon warns and audits clock.behind.
	# libfaketime preloaded by env, which execs: $daemon is the daemon
	# itself (the faketime wrapper would stay its parent, and a TERM to it
	# would orphan the daemon)
	local lib j=$work/jump.db saved=$conf out rc
	lib=$(ls /usr/lib/*/faketime/libfaketimeMT.so.1 2>/dev/null | head -1)
	[ -n "$lib" ] || { echo "  libfaketime missing (hsm-setup/install-deps)"; return 1; }
	local ahead=(env ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0 LD_PRELOAD="$lib" FAKETIME=+2500d)
	cp "$db" "$j"
	sed "s|path = \"$db\"|path = \"$j\"|" "$conf" > "$work/jump.conf"
	conf=$work/jump.conf
	DAEMON_WRAP=("${ahead[@]}")
	start_daemon
	rc=$?
	DAEMON_WRAP=()
	[ $rc = 0 ] && started
	[ $rc = 0 ] && stop_daemon
	conf=$saved
	[ $rc = 0 ] || return 1
	grep -q 'is 2500.0 days ahead of the log.s newest time' "$log" || { echo "  no warning in the log"; return 1; }
	[ "$(sql "$j" "SELECT count(*) FROM audit_log WHERE action = 'clock.ahead' AND outcome = 'failure' AND actor = 'system'
	               AND object LIKE '%is 2500.0 days ahead of the log''s newest time%'")" = 1 ] || return 1
	local CEREMONY_WRAP=("${ahead[@]}")
	out=$(ceremony_run "$work/jump.conf" --action purge -- --jwks "$jwks")
	rc=$?
	echo "$out" | sed 's/^/  /'
	[ $rc = 1 ] && [[ "$out" == *"refused: checkpoint "*" is 2500.0 days after checkpoint "* ]] || return 1
	[ "$(sql "$j" "SELECT count(*) FROM audit_checkpoints WHERE kind = 'purge'")" = 0 ] &&
		[ "$(sql "$j" 'SELECT min(seq) FROM audit_log')" = 1 ] &&
		[ "$(sql "$j" "SELECT outcome FROM audit_log WHERE action = 'clock.jump'")" = refused ] || return 1
	out=$(ceremony_run "$work/jump.conf" --action purge --accept-clock-jump -- --jwks "$jwks")
	rc=$?
	CEREMONY_WRAP=()
	echo "$out" | sed 's/^/  /'
	[ $rc = 0 ] && [[ "$out" == *"purged entries 1.."* ]] &&
		[ "$(sql "$j" "SELECT count(*) FROM audit_log WHERE action = 'clock.jump' AND outcome = 'success'
		               AND object LIKE 'accepted: checkpoint %'")" = 1 ] || return 1
	conf=$work/jump.conf
	start_daemon || { conf=$saved; return 1; }
	started
	stop_daemon
	conf=$saved
	grep -q 'days behind the log.s newest time' "$log" &&
		[ "$(sql "$j" "SELECT count(*) FROM audit_log WHERE action = 'clock.behind' AND outcome = 'failure'")" = 1 ] &&
		"$BUILD/bin/credsign-admin" --config "$work/jump.conf" audit verify --jwks "$jwks" | grep -q '^audit log intact'
}
check "clock 2500 days ahead: daemon audits clock.ahead, purge refuses the leap unless --accept-clock-jump; clock.behind after" clock_jump

finish
