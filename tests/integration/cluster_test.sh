#!/usr/bin/env bash
# Several nodes on one PostgreSQL store (issue 17), on a development cluster
# of the test's own (hsm-setup/dev-cluster start 3: the split daemons as the
# system user credsign when run as root, TLS to PostgreSQL with verify-full,
# the nodes' login in the group role credsign_node):
#   - dev-cluster: status says every node ready; start again changes
#     nothing (the same processes)
#   - generate on node 1, certify on node 2, the certificate served by node 3;
#     the certificate's claim "node" and the audit entries name the node
#     that did each step
#   - the same session certified from the 3 nodes at once, 20 times: one 201
#     and two 409 session_already_certified each time (cluster_load.py race)
#   - the JWKS is the same on every node (byte for byte)
#   - a key rotation: key generate + an activate ceremony with credsign-admin
#     (CREDSIGN_CONF: node 1's configuration) reaches every node: each
#     node's certificates carry the new kid within 5 s; the JWKS still the
#     same everywhere
#   - `credsign-admin audit verify` passes against PostgreSQL
#   - a second daemon with a node id in use (node2's) refused at start
#     (status 1, naming the id), the node it collided with still serving
#   - roles: the nodes' login may read the audit log but not UPDATE,
#     DELETE or TRUNCATE it (nor certificates); the schema is the owner's;
#     even the owner cannot UPDATE the audit log (the trigger); the nodes'
#     login may neither EXECUTE audit_purge nor record a purge checkpoint
#   - a purge ceremony's execution without --owner-connection is refused
#     naming the options, nothing signed; with the owner's it runs
#   - the database's guards re-checked by every node: a trigger of the
#     audit log disabled by the owner makes every node's /readyz 503
#     (store "tampered") within 5 s, logged once per node; enabled again,
#     every node is ready again
#   - the nodes stop cleanly (no sanitizer report in their logs)
#
#   cluster_test.sh BUILD_DIR STATE_DIR
BUILD=${1:?}
STATE=${2:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
nodes=3
cluster_start cluster $nodes || exit 1
echo "# nodes: $CREDSIGN_NODE_URLS; store: $CREDSIGN_PG_URL"

generate() { call ci-deployer POST /api/generate "{\"preset\":\"soc2\",$PAYMENTS}"; }
certify() { call ci-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$1\"}"; }
# jws_part JWS header|claims FIELD
jws_part() {
	$py -c 'import base64,json,sys
p = sys.argv[1].split(".")[0 if sys.argv[2] == "header" else 1]
print(json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))).get(sys.argv[3], ""))' "$1" "$2" "$3"
}
node_pids() { local i; for i in $(seq $nodes); do cat "$CREDSIGN_CLUSTER_DIR/node$i/pid"; done; }

# ---- the cluster itself ---------------------------------------------------------------------
status() { "$src/hsm-setup/dev-cluster" status > "$work/status.out" 2>&1; }
check "dev-cluster status: PostgreSQL running, every node ready" status
sed 's/^/#   /' "$work/status.out"
check "  it names each node's /readyz" test "$(grep -c '^node[0-9]*: pid .* /readyz 200' "$work/status.out")" = $nodes
before=$(node_pids)
check "dev-cluster start again: nothing restarted (idempotent)" \
	bash -c "'$src/hsm-setup/dev-cluster' start $nodes > '$work/start2.out' 2>&1 && [ \"\$(for i in \$(seq $nodes); do cat '$CREDSIGN_CLUSTER_DIR'/node\$i/pid; done)\" = '$before' ]"

# ---- generate on one node, certify on another ------------------------------------------------
got=$(on 1 generate)
sid=$(json_field "${got#* }" generation_session_id 2>/dev/null)
check "generate on node 1" test -n "$sid"
got=$(on 2 certify "$sid")
check "certify that session on node 2: 201" test "${got%% *}" = 201
cert_jws=$(json_field "${got#* }" certificate 2>/dev/null)
cert_id=$(json_field "${got#* }" cert_id 2>/dev/null)
check "  the certificate served by node 3 (GET /cert/ID.jws), the same JWS" \
	test "$(on 3 call auditor GET "/cert/$cert_id.jws")" = "200 $cert_jws"
check "  its claim \"node\" is node2 (the node that certified)" test "$(jws_part "$cert_jws" claims node)" = node2
check "  node 1 refuses the session now: 409 session_already_certified" \
	on 1 expect_error ci-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$sid\"}" 409 session_already_certified
check "  the audit log: generate by node1, certify by node2" \
	test "$(pg_sql owner "SELECT action || '=' || node FROM audit_log WHERE (action = 'generate' AND object = '$sid')
	                       OR (action = 'certify' AND object = '$cert_id' AND outcome = 'success') ORDER BY seq" | tr '\n' ' ')" \
	= "generate=node1 certify=node2 "
got=$(on 3 generate)
sid3=$(json_field "${got#* }" generation_session_id 2>/dev/null)
got=$(on 3 certify "$sid3")
check "generate and certify on node 3: the claim \"node\" is node3" \
	test "$(jws_part "$(json_field "${got#* }" certificate 2>/dev/null)" claims node)" = node3

# ---- exactly once across nodes ------------------------------------------------------------------
race() {
	$py "$here/cluster_load.py" race "$CREDSIGN_NODE_URLS" "$pki/ca.pem" "$clients/ci-deployer.pem" \
		"$clients/ci-deployer.key" 20 > "$work/race.out" 2>&1
}
check "the same session certified from the 3 nodes at once, 20 times: one 201 and two 409 each time" race
grep -E 'WRONG|Traceback|Error' "$work/race.out" | head -5 | sed 's/^/#   /'
echo "# race: $(tail -1 "$work/race.out")"
check "  no session has two certificates in the store" \
	test "$(pg_sql owner "SELECT count(*) FROM (SELECT session_id FROM certificates GROUP BY session_id HAVING count(*) > 1) d")" = 0

# ---- one JWKS ------------------------------------------------------------------------------------
jwks_same() { # every node serves the same JWKS; $work/jwks-1.json is node 1's
	local i
	for i in $(seq $nodes); do
		curl -sf $(client auditor) "${urls[$i - 1]}/.well-known/jwks.json" -o "$work/jwks-$i.json" || return 1
	done
	for i in $(seq 2 $nodes); do cmp -s "$work/jwks-1.json" "$work/jwks-$i.json" || return 1; done
}
check "the JWKS is the same on every node" jwks_same

# ---- a key rotation on one node reaches the others -------------------------------------------------
kid_old=$(jws_part "$cert_jws" header kid)
out=$("$BUILD/bin/credsign-admin" key generate --label cluster-rotated 2>&1)
kid_new=$(json_field "$out" kid 2>/dev/null)
check "credsign-admin key generate (CREDSIGN_CONF: node 1's configuration, the PostgreSQL store)" test -n "$kid_new"
[ -n "$kid_new" ] || echo "#   $out"
out=$(ceremony_run "$conf" --action activate --key "$kid_new" --reason "cluster rotation")
rc=$?
check "an activate ceremony: start, two approvals, execute" test $rc = 0
[ $rc = 0 ] || echo "#   $out"
switched=$(date +%s.%N)
# new_kid_on I: a certificate from node I carries the new kid (within 10 s);
# prints how long after the ceremony
new_kid_on() {
	local got s kid
	for _ in $(seq 50); do
		got=$(on "$1" generate)
		s=$(json_field "${got#* }" generation_session_id 2>/dev/null)
		got=$(on "$1" certify "$s")
		kid=$(jws_part "$(json_field "${got#* }" certificate 2>/dev/null)" header kid 2>/dev/null)
		[ "$kid" = "$kid_new" ] && { $py -c "import time; print('%.1f' % (time.time() - $switched))"; return 0; }
		sleep 0.2
	done
	echo "never (last: $kid)"
	return 1
}
for i in $(seq $nodes); do
	delay=$(new_kid_on "$i")
	echo "# node $i: certificates with the new kid $delay s after the ceremony"
	check "node $i certifies with the new key within 5 s" $py -c "import sys; sys.exit(not ('$delay'[:1].isdigit() and float('$delay') < 5))"
done
check "  the JWKS still the same on every node" jwks_same
check "  it lists the new key active and the old one retired" $py -c '
import json, sys
keys = {k["kid"]: k["status"] for k in json.load(open(sys.argv[1]))["keys"]}
sys.exit(not (keys.get(sys.argv[2]) == "active" and keys.get(sys.argv[3]) == "retired"))' \
	"$work/jwks-1.json" "$kid_new" "$kid_old"

# ---- the audit chain --------------------------------------------------------------------------------
sleep 6 # a checkpoint (audit.checkpoint_seconds = 5) covers the latest entries
verify() { "$BUILD/bin/credsign-admin" audit verify > "$work/verify.out" 2>&1; }
check "credsign-admin audit verify passes against PostgreSQL" verify
sed 's/^/#   /' "$work/verify.out" | head -8
check "  the audit log holds the entries of every node" \
	test "$(pg_sql owner "SELECT string_agg(DISTINCT node, ' ' ORDER BY node) FROM audit_log")" = "node1 node2 node3"
check "  seq has no gap and no duplicate" \
	test "$(pg_sql owner "SELECT count(*) = count(DISTINCT seq) AND max(seq) - min(seq) + 1 = count(*) FROM audit_log")" = t

# ---- node ids are unique ------------------------------------------------------------------------------
dup=$work/dup
mkdir -p "$dup"
chmod 755 "$work" "$dup"
p2=${urls[1]##*:}
dport=$(free_port)
dhealth=$(free_port)
sed -e "s/127\.0\.0\.1:$p2\b/127.0.0.1:$dport/g" -e "s/127\.0\.0\.1:$((p2 + 100))\b/127.0.0.1:$dhealth/" \
	"$CREDSIGN_CLUSTER_DIR/node2/credsignd.conf" > "$dup/credsignd.conf"
chmod 644 "$dup/credsignd.conf"
timeout 60 "$BUILD/bin/credsignd" --config "$dup/credsignd.conf" > "$dup/credsignd.log" 2>&1
rc=$?
check "a second daemon with node id node2 (in use): refused at start, status 1" test "$rc" = 1
check "  it says which id and who holds it" grep -q "server.node_id node2 is in use by another running node" "$dup/credsignd.log"
[ "$rc" = 1 ] || tail -5 "$dup/credsignd.log" | sed 's/^/#   /'
check "  node 2 still serves" bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$((p2 + 100))/readyz)\" = 200 ]"
# a node whose clock runs 40 s ahead of the database's: refused at start
# (sessions would expire, and its claim of node2's id be judged, by its clock)
faketime_lib=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -1)
if [ -n "$faketime_lib" ]; then
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
		FAKETIME="+40s" LD_PRELOAD="$faketime_lib" timeout 60 "$BUILD/bin/credsignd" --config "$dup/credsignd.conf" \
		> "$dup/skew.log" 2>&1
	rc=$?
	check "a node 40 s ahead of the database's clock: refused at start, status 1" test "$rc" = 1
	check "  it says by how much and what to do" grep -q "ms ahead of the clock of the store's database.*synchronise" "$dup/skew.log"
	[ "$rc" = 1 ] || tail -5 "$dup/skew.log" | sed 's/^/#   /'
	check "  node 2 still holds its id and serves" bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$((p2 + 100))/readyz)\" = 200 ]"
else
	echo "# libfaketime missing (package faketime): clock-skew check not run"
fi

# ---- roles: the nodes' login and the database's own guards ------------------------------------------------
check "the nodes' login (credsign_n) reads the audit log" test "$(pg_sql node "SELECT count(*) > 0 FROM audit_log")" = t
denied() { # denied SQL: the nodes' login is refused it for want of the right
	local out
	out=$(pg_sql node "$1" 2>&1) && { echo "  allowed: $1"; return 1; }
	[[ "$out" == *"permission denied"* || "$out" == *"must be owner"* ]] || { echo "  $out"; return 1; }
}
check "  it may not UPDATE the audit log" denied "UPDATE audit_log SET actor = 'x' WHERE seq = (SELECT max(seq) FROM audit_log)"
check "  it may not DELETE from the audit log" denied "DELETE FROM audit_log WHERE seq = (SELECT min(seq) FROM audit_log)"
check "  it may not TRUNCATE the audit log" denied "TRUNCATE audit_log"
check "  it may not UPDATE certificates" denied "UPDATE certificates SET kid = kid"
check "  it may not DELETE certificates" denied "DELETE FROM certificates"
check "  it may not drop the append-only triggers" denied "ALTER TABLE audit_log DISABLE TRIGGER USER"
check "  it may not EXECUTE audit_purge (the purge is the schema owner's)" denied "SELECT audit_purge(1)"
check "  it may not record a purge checkpoint (which would let the entries it covers be deleted)" denied \
	"INSERT INTO audit_checkpoints (first_seq, last_seq, head_hash, ts, node, kind, jws) VALUES (1, 1, '\\x00', 't', 'n', 'purge', 'j')"
check "  it is a member of credsign_node and owns nothing of the schema" \
	test "$(pg_sql node "SELECT pg_has_role('credsign_node', 'member') AND (SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'credsign') = 'credsign_owner'")" = t
out=$(pg_sql owner "UPDATE audit_log SET actor = 'x' WHERE seq = (SELECT max(seq) FROM audit_log)" 2>&1)
# a key row written with the nodes' password alone (a P-256 key of the
# attacker's, "retired" with a wide window): no warrant, so no node
# publishes it (a certificate it signs would not verify against the JWKS)
forged=$(openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl ec -pubout -outform DER 2>/dev/null |
	python3 -c '
import base64, hashlib, json, sys
point = sys.stdin.buffer.read()[-65:]  # the uncompressed point: 04 || x || y
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
jwk = {"crv": "P-256", "kty": "EC", "x": b64(point[1:33]), "y": b64(point[33:])}
kid = b64(hashlib.sha256(json.dumps(jwk, sort_keys=True, separators=(",", ":")).encode()).digest())
print(kid + " " + json.dumps(jwk, separators=(",", ":")))')
forged_kid=${forged%% *}
forged_jwk=${forged#* }
check "the nodes' login can write a key row (INSERT is a node's right)" \
	pg_sql node "INSERT INTO signing_keys (kid, uri, jwk_json, status, activated_at, retired_at) VALUES
		('$forged_kid', 'pkcs11:object=forged', '$forged_jwk', 'retired', '2020-01-01T00:00:00.000Z',
		'2099-01-01T00:00:00.000Z')"
forged_absent() {
	local i
	for i in $(seq $nodes); do
		curl -sf $(client auditor) "${urls[$i - 1]}/.well-known/jwks.json" -o "$work/jwks-f$i.json" || return 1
		grep -q -- "$forged_kid" "$work/jwks-f$i.json" && return 1
		grep -q -- "$kid_new" "$work/jwks-f$i.json" || return 1
	done
}
check "  no node publishes it: it has no warrant (real keys still listed)" forged_absent
check "  the nodes say so" bash -c "grep -q 'key $forged_kid has no warrant' $CREDSIGN_CLUSTER_DIR/node*/credsignd.log"

check "even the owner cannot UPDATE the audit log (the append-only trigger)" \
	bash -c '[[ "$1" == *ERROR*append-only* ]]' _ "$out"
[[ "$out" == *append-only* ]] || echo "#   $out"
check "  nor DELETE an entry no purge covers" \
	bash -c "[[ \"\$1\" == *ERROR* ]]" _ "$(pg_sql owner "DELETE FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log)" 2>&1)"

# ---- the audit purge: a ceremony whose execution runs as the schema owner ---------------------------------
out=$(ceremony_run "$conf" --action purge)
rc=$?
check "a purge ceremony executed without --owner-connection: refused, status 1" test $rc = 1
check "  it names the options (--owner-connection CONNINFO [--owner-password-file FILE])" \
	bash -c '[[ "$1" == *"--owner-connection CONNINFO [--owner-password-file FILE]"* ]]' _ "$out"
[ $rc = 1 ] || echo "#   $out"
check "  nothing signed: no purge checkpoint" \
	test "$(pg_sql owner "SELECT count(*) FROM audit_checkpoints WHERE kind = 'purge'")" = 0
out=$(ceremony_run "$conf" --action purge -- --owner-connection "$CREDSIGN_PG_URL" \
	--owner-password-file "$CREDSIGN_PG_PASSWORD_FILE")
rc=$?
check "  with the owner's connection and password file: executed, status 0" test $rc = 0
check "  it measured the log as the owner (purged, or nothing old enough)" \
	bash -c '[[ "$1" == *"purged entries"* || "$1" == *"nothing to purge"* ]]' _ "$out"
[ $rc = 0 ] || echo "#   $out"
check "credsign-admin audit verify still passes" verify

# ---- the database's guards, checked again by every node (the key watch's poll, each second) ---------------
# readyz_all CODE STORE: every node's /readyz answers CODE with "store":"STORE" (within 5 s)
readyz_all() {
	local i t
	for t in $(seq 50); do
		for i in $(seq $nodes); do
			curl -s --max-time 5 $(client auditor) "${urls[$i - 1]}/readyz" -o "$work/ready$i.json" -w '%{http_code}' \
				> "$work/ready$i.code" || break
			[ "$(cat "$work/ready$i.code")" = "$1" ] && grep -q "\"store\": *\"$2\"" "$work/ready$i.json" || break
			[ "$i" = $nodes ] && return 0
		done
		sleep 0.1
	done
	cat "$work/ready$i.json"
	return 1
}
check "the owner disables an append-only trigger of the audit log" \
	pg_sql owner "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update"
check "  every node notices within 5 s: /readyz 503, store \"tampered\"" readyz_all 503 tampered
sleep 1.5
check "  each node logs it once, naming the trigger" bash -c "for f in '$CREDSIGN_CLUSTER_DIR'/node*/credsignd.log; do
	[ \"\$(grep -c 'tampered or damaged: trigger audit_log_no_update disabled; /readyz reports the store unavailable' \"\$f\")\" = 1 ] || exit 1; done"
pg_sql owner "ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update" > /dev/null
check "  enabled again: every node ready again within 5 s" readyz_all 200 ok
check "  and says so" bash -c "[ \"\$(grep -l 'guards are as credsign made them again' '$CREDSIGN_CLUSTER_DIR'/node*/credsignd.log | wc -l)\" = $nodes ]"

# ---- stop --------------------------------------------------------------------------------------------
stop() { "$src/hsm-setup/dev-cluster" stop > "$work/stop.out" 2>&1; }
check "dev-cluster stop" stop
CLUSTER_DEV=
check "  every node stopped by SIGTERM within 15 s" bash -c "! grep -q 'did not stop' '$work/stop.out'"
check "dev-cluster status after stop: nothing runs (status 1)" bash -c "! '$src/hsm-setup/dev-cluster' status > '$work/status2.out'"
check "  no sanitizer report in the nodes' logs" \
	bash -c "! grep -l -E 'AddressSanitizer|LeakSanitizer|runtime error:' '$CREDSIGN_CLUSTER_DIR'/node*/credsignd.log"
finish
