#!/usr/bin/env bash
# Least privilege by identity, project and environment (access.grants):
#  - a table of 7 identities over the whole API: every allowed call
#    succeeds, every other gets 403 forbidden and an audit entry that names
#    the missing grant (and, where the request said, the project and
#    environment asked for);
#  - certify by another identity than the generator's: refused, audited;
#  - the project-filtered audit view of a project's auditor;
#  - SIGHUP: a grant removed, the next request is denied; a grant added
#    takes effect; certificates.public switched on and off; a file that
#    does not load keeps the rules in force;
#  - a burst over a grant's rate limit: 429 rate_limited with Retry-After,
#    audited, and the limit recovers;
#  - start-up warns of and audits an identity with generator and auditor
#    rights (access.conflict).
#
#   access_test.sh BUILD_DIR STATE_DIR SOFTHSM_MODULE
BUILD=${1:?}
STATE=${2:?}
SOFTHSM=${3:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_token access || exit 1

# ---- identities: the dev PKI's, and three more from its CA -----------------------
pki=$STATE/pki
extra=$STATE/it-access-clients
rm -rf "$extra"
mkdir -p "$extra"
chmod 700 "$extra"
issue_client() { # issue_client NAME: clientAuth, URI SAN spiffe://credsign.test/access/NAME
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$extra/$1.key" 2> /dev/null &&
		openssl req -new -key "$extra/$1.key" -subj "/O=credsign dev/CN=$1" -out "$extra/$1.csr" &&
		printf '%s\n' "basicConstraints = critical, CA:false" "keyUsage = critical, digitalSignature" \
			"extendedKeyUsage = clientAuth" "subjectAltName = URI:spiffe://credsign.test/access/$1" > "$extra/$1.ext" &&
		openssl x509 -req -in "$extra/$1.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca-db/main/ca.key" \
			-set_serial "0x$(openssl rand -hex 16)" -days 30 -sha256 -extfile "$extra/$1.ext" \
			-out "$extra/$1.pem" 2> /dev/null
}
for n in payments-auditor dual limited; do
	issue_client "$n" || { echo "cannot issue $n"; exit 1; }
done
id_of() { # the identity of a client name
	case $1 in
	payments-auditor | dual | limited) echo "spiffe://credsign.test/access/$1" ;;
	*) echo "spiffe://credsign.test/$1" ;;
	esac
}
# client NAME (lib.sh): curl arguments, for these three as well
client() {
	local d=$pki/clients
	[ -f "$d/$1.pem" ] || d=$extra
	echo --cacert "$pki/ca.pem" --cert "$d/$1.pem" --key "$d/$1.key"
}

EXTRA_GRANTS='
    { identity = "spiffe://credsign.test/access/payments-auditor"; role = "auditor"; projects = [ "payments" ]; },
    { identity = "spiffe://credsign.test/access/dual"; role = "generator"; projects = [ "web" ]; environments = [ "*" ]; },
    { identity = "spiffe://credsign.test/access/dual"; role = "auditor"; projects = [ "web" ]; },
    { identity = "spiffe://credsign.test/access/limited"; role = "generator"; projects = [ "web" ];
      environments = [ "dev" ]; rate = 0.5; burst = 3; }'
EXTRA_CONF='audit = { checkpoint_seconds = 1; };' GRANTS="$DEFAULT_GRANTS,$EXTRA_GRANTS" it_setup access || exit 1
wait_for_log 'msg="credsignd .* starting' || true

# req NAME METHOD PATH [BODY]: "STATUS BODY" like call (lib.sh); the
# response's headers in $work/headers, its X-Request-Id in $work/rid
req() {
	local who=$1 method=$2 path=$3 body=${4:-} args
	read -r -a args <<< "$(client "$who")"
	if [ -n "$body" ]; then
		curl -s -D "$work/headers" -o "$work/out" -w '%{http_code}' -X "$method" "${args[@]}" \
			-H 'Content-Type: application/json' --data-binary "$body" "$url$path"
	else
		curl -s -D "$work/headers" -o "$work/out" -w '%{http_code}' -X "$method" "${args[@]}" "$url$path"
	fi
	echo -n " "
	cat "$work/out"
	tr -d '\r' < "$work/headers" | sed -n 's/^[Xx]-[Rr]equest-[Ii]d: //p' > "$work/rid"
}
# entry_of RID: the audit entry of a request, '|'-separated
entry_of() {
	sqlite3 "$db" "SELECT actor, action, outcome, coalesce(error_code,''), coalesce(object,''),
	               coalesce(project,''), coalesce(environment,''), role FROM audit_log WHERE request_id = '$1'"
}
pay='{"project":"payments","environment":"production","preset":"soc2"}'
web='{"project":"web","environment":"dev","preset":"soc2"}'

# ---- fixtures: one certificate of each project --------------------------------------
certified() { # certified NAME BODY -> the cert id
	local got sid
	got=$(call "$1" POST /api/generate "$2")
	sid=$(json_field "${got#200 }" generation_session_id) || return 1
	got=$(call "$1" POST /api/generate-certificate "{\"generation_session_id\":\"$sid\"}")
	json_field "${got#201 }" cert_id
}
pay_cert=$(certified ci-deployer "$pay")
web_cert=$(certified web-deployer "$web")
check "fixtures: a payments certificate (ci-deployer) and a web certificate (web-deployer)" \
	test -n "$pay_cert" -a -n "$web_cert"
checkpointed() { # a signed checkpoint over them (audit.checkpoint_seconds)
	for _ in $(seq 50); do
		[ "$(sqlite3 "$db" "SELECT count(*) FROM audit_checkpoints")" -gt 0 ] && return 0
		sleep 0.1
	done
	return 1
}
check "fixtures: a signed audit checkpoint" checkpointed

# ---- the table --------------------------------------------------------------------
# One row per call: NAME METHOD PATH BODY MISSING, MISSING the grant a
# refusal names. CERTIFY stands for the caller's own session when it may
# generate (web or payments), else for ci-deployer's.
calls=(
	"gen_payments|POST|/api/generate|$pay|no generator grant"
	"gen_web|POST|/api/generate|$web|no generator grant"
	"certify|POST|/api/generate-certificate|CERTIFY|no generator grant (certify needs one)"
	"cert_payments|GET|/cert/$pay_cert||no auditor or generator grant"
	"jws_payments|GET|/cert/$pay_cert.jws||no auditor or generator grant"
	"cert_web|GET|/cert/$web_cert||no auditor or generator grant"
	"jwks|GET|/.well-known/jwks.json||-"
	"presets|GET|/api/presets||no grant (presets.read needs a grant of any role)"
	"policy|GET|/api/policy?standards=soc2||no grant (policy.read needs a grant of any role)"
	"audit|GET|/api/audit?limit=3||no auditor grant"
	"audit_payments|GET|/api/audit?project=payments&limit=3||no auditor grant"
	"audit_web|GET|/api/audit?project=web&limit=3||no auditor grant"
	"checkpoint|GET|/api/audit/checkpoint||no auditor grant"
	"metrics|GET|/metrics||no operator grant"
	"healthz|GET|/healthz||-"
	"readyz|GET|/readyz||-"
)
# The calls each identity may make (anything else: 403).
declare -A allowed=(
	[ci-deployer]="gen_payments certify cert_payments jws_payments jwks presets policy healthz readyz"
	[web-deployer]="gen_web certify cert_web jwks presets policy healthz readyz"
	[auditor]="cert_payments jws_payments cert_web jwks presets policy audit audit_payments audit_web checkpoint healthz readyz"
	[operator]="jwks presets policy metrics healthz readyz"
	[stranger]="jwks healthz readyz"
	[payments-auditor]="cert_payments jws_payments jwks presets policy audit_payments healthz readyz"
	[dual]="gen_web certify cert_web jwks presets policy audit_web healthz readyz"
)

# own_session NAME: a session the identity generated, or ci-deployer's
own_session() {
	local body got who=$1
	case " ${allowed[$who]} " in
	*" gen_payments "*) body=$pay ;;
	*" gen_web "*) body=$web ;;
	*) who=ci-deployer body=$pay ;;
	esac
	got=$(call "$who" POST /api/generate "$body")
	json_field "${got#200 }" generation_session_id
}

# one_call NAME ROW: the call made as NAME, checked against the table
one_call() {
	local who=$1 name method path body missing got status rid entry want_ok
	IFS='|' read -r name method path body missing <<< "$2"
	[ "$body" = CERTIFY ] && body="{\"generation_session_id\":\"$(own_session "$who")\"}"
	case " ${allowed[$who]} " in *" $name "*) want_ok=1 ;; *) want_ok=0 ;; esac
	got=$(req "$who" "$method" "$path" "$body")
	status=${got%% *}
	rid=$(cat "$work/rid")
	if [ "$want_ok" = 1 ]; then
		[[ "$status" == 20[01] ]] || { echo "  $who $name: expected success, got ${got:0:200}"; return 1; }
		return 0
	fi
	[ "$status" = 403 ] && [[ "$got" == *'"code":"forbidden"'* ]] ||
		{ echo "  $who $name: expected 403 forbidden, got ${got:0:200}"; return 1; }
	entry=$(entry_of "$rid")
	local actor action outcome code object project environment role
	IFS='|' read -r actor action outcome code object project environment role <<< "$entry"
	[ "$actor" = "$(id_of "$who")" ] && [ "$outcome" = refused ] && [ "$code" = forbidden ] &&
		[ "$role" = client ] && [[ "$object" == *"$missing"* ]] ||
		{ echo "  $who $name: audit entry '$entry' (wanted one naming '$missing')"; return 1; }
	# the project and environment asked for, when the request said
	case $name in
	gen_payments) [ "$project|$environment" = "payments|production" ] ;;
	gen_web) [ "$project|$environment" = "web|dev" ] ;;
	audit_payments) [ "$project" = payments ] ;;
	audit_web) [ "$project" = web ] ;;
	esac || { echo "  $who $name: project|environment '$project|$environment' in '$entry'"; return 1; }
}
for who in ci-deployer web-deployer auditor operator stranger payments-auditor dual; do
	for row in "${calls[@]}"; do
		check "$who ${row%%|*}: $(case " ${allowed[$who]} " in *" ${row%%|*} "*) echo allowed ;; *) echo "403, audited naming the missing grant" ;; esac)" \
			one_call "$who" "$row"
	done
done

# ---- separation of duties at start ----------------------------------------------------
conflict_warned() {
	grep -q 'separation of duties: spiffe://credsign.test/access/dual holds generator rights (access.grants\[5\]) and auditor rights (access.grants\[6\])' "$log" &&
		[ "$(sqlite3 "$db" "SELECT count(*) FROM audit_log WHERE action = 'access.conflict' AND actor = 'system'
		     AND outcome = 'failure' AND error_code = 'separation_of_duties'
		     AND object LIKE 'spiffe://credsign.test/access/dual holds generator rights%'")" = 1 ]
}
check "start-up warns of and audits (access.conflict) an identity with generator and auditor rights" conflict_warned

# ---- certify by another identity ------------------------------------------------------
foreign_certify() {
	local got sid rid entry
	got=$(call ci-deployer POST /api/generate "$pay")
	sid=$(json_field "${got#200 }" generation_session_id)
	got=$(req web-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$sid\"}")
	rid=$(cat "$work/rid")
	[[ "$got" == "403 "*'"code":"forbidden"'*"another client certificate"* ]] || { echo "  ${got:0:200}"; return 1; }
	entry=$(entry_of "$rid")
	[[ "$entry" == "spiffe://credsign.test/web-deployer|certify|refused|forbidden|$sid: the generation session belongs to another client certificate"*"|payments|production|client" ]] ||
		{ echo "  entry: $entry"; return 1; }
	# the session is still the generator's to certify
	[[ "$(call ci-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$sid\"}")" == "201 "* ]]
}
check "certify by another identity than the generator's: 403, audited with the session's project and environment" foreign_certify

# ---- the project-filtered audit view -------------------------------------------------
filtered_view() {
	local got
	got=$(call payments-auditor GET '/api/audit?project=payments&limit=10000')
	[[ "$got" == "200 "* ]] || { echo "  ${got:0:200}"; return 1; }
	python3 - "${got#200 }" <<'PY' || return 1
import json, sys
d = json.loads(sys.argv[1])
assert d["project"] == "payments" and d["checkpoints"] == [], (d["project"], d["checkpoints"])
assert len(d["entries"]) >= 5 and all(e["project"] == "payments" for e in d["entries"]), len(d["entries"])
assert {"generate", "certify", "cert.read"} <= {e["action"] for e in d["entries"]}
PY
	# the whole log and the checkpoint are the "*" auditors'
	got=$(call payments-auditor GET '/api/audit?limit=3')
	[[ "$got" == "403 "*'no auditor grant for every project'*'?project=NAME'* ]] || { echo "  ${got:0:200}"; return 1; }
	got=$(call auditor GET '/api/audit?limit=10000')
	python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["project"] is None and d["checkpoints"] and any(e["project"] is None for e in d["entries"])' "${got#200 }"
}
check "a project's auditor reads its project's entries, without checkpoints; the whole log needs \"*\"" filtered_view

# ---- SIGHUP: grants swapped from the file read again ------------------------------------
# set_grants TEXT [EXTRA]: the access group of $conf replaced (EXTRA: more groups)
set_grants() {
	python3 - "$conf" "$1" "${2:-}" <<'PY'
import re, sys
path, grants, extra = sys.argv[1:4]
text = open(path).read()
text = re.sub(r"access = \{ grants = \(.*?\); \};\n(certificates = .*\n)?",
              lambda m: "access = { grants = ( %s ); };\n%s" % (grants, extra + "\n" if extra else ""),
              text, count=1, flags=re.S)
open(path, "w").write(text)
PY
}
# reload: SIGHUP, then wait until the daemon says the rules were (not) reloaded
reload() {
	local n
	n=$(grep -c 'access rules reloaded\|not reloaded' "$log")
	kill -HUP "$daemon"
	for _ in $(seq 50); do
		[ "$(grep -c 'access rules reloaded\|not reloaded' "$log")" -gt "$n" ] && return 0
		sleep 0.1
	done
	return 1
}
without_web='
    { identity = "spiffe://credsign.test/ci-deployer"; role = "generator";
      projects = [ "payments" ]; environments = [ "production", "staging" ]; },
    { identity = "spiffe://credsign.test/auditor"; role = "auditor"; projects = [ "*" ]; },
    { identity = "spiffe://credsign.test/operator"; role = "operator"; }'
grant_removed() {
	[[ "$(call web-deployer POST /api/generate "$web")" == "200 "* ]] || return 1
	set_grants "$without_web"
	reload || return 1
	local got
	got=$(req web-deployer POST /api/generate "$web")
	[[ "$got" == "403 "*'no generator grant (generate needs one)'* ]] || { echo "  ${got:0:200}"; return 1; }
	[ "$(sqlite3 "$db" "SELECT outcome FROM audit_log WHERE action = 'access.reload' ORDER BY seq DESC LIMIT 1")" = success ] &&
		grep -q "access rules reloaded from $conf: 3 grant(s), certificates.public false" "$log"
}
check "SIGHUP after a grant is removed: the next request is denied; access.reload audited" grant_removed
stranger_grant='
    { identity = "spiffe://credsign.test/stranger"; role = "generator"; projects = [ "web" ]; environments = [ "dev" ]; }'
grant_added() {
	[[ "$(call stranger POST /api/generate "$web")" == "403 "* ]] || return 1
	set_grants "$without_web,$stranger_grant"
	reload || return 1
	[[ "$(call stranger POST /api/generate "$web")" == "200 "* ]] &&
		[[ "$(call stranger GET "/cert/$web_cert")" == "200 "* ]] &&
		[[ "$(call stranger GET "/cert/$pay_cert")" == "403 "* ]]
}
check "SIGHUP after a grant is added: it takes effect (generate, and its project's certificates)" grant_added
public_certificates() {
	set_grants "$without_web,$stranger_grant" 'certificates = { public = true; };'
	reload || return 1
	[[ "$(call operator GET "/cert/$pay_cert")" == "200 "* ]] &&
		[[ "$(call operator GET "/cert/$pay_cert.jws")" == "200 "* ]] || return 1
	[ "$(sqlite3 "$db" "SELECT role || '|' || outcome FROM audit_log WHERE action = 'cert.read' ORDER BY seq DESC LIMIT 1")" = 'client|success' ] || return 1
	set_grants "$without_web,$stranger_grant"
	reload || return 1
	[[ "$(call operator GET "/cert/$pay_cert")" == "403 "* ]]
}
check "certificates.public (reloaded): any authenticated client reads certificates; off again: 403" public_certificates
bad_reload_keeps_rules() {
	set_grants "$without_web,$stranger_grant"',
    { identity = "spiffe://credsign.test/web-deployer"; role = "superuser"; }'
	reload || return 1
	grep -q "not reloaded" "$log" &&
		[ "$(sqlite3 "$db" "SELECT outcome || '|' || error_code FROM audit_log WHERE action = 'access.reload' ORDER BY seq DESC LIMIT 1")" = 'failure|config_invalid' ] &&
		[[ "$(call stranger POST /api/generate "$web")" == "200 "* ]] &&
		[[ "$(call web-deployer POST /api/generate "$web")" == "403 "* ]]
}
check "a file that does not load: the rules in force stay; logged and audited (failure)" bad_reload_keeps_rules
set_grants "$DEFAULT_GRANTS,$EXTRA_GRANTS"
reload

# ---- rate limits ------------------------------------------------------------------------
# limited: one request every 2 s, burst 3. Five at once: three pass, then
# 429 with Retry-After; after that many seconds one passes again.
rate_limited() {
	local i got statuses="" retry rid
	for i in 1 2 3 4 5; do
		got=$(req limited POST /api/generate "$web")
		statuses="$statuses ${got%% *}"
		if [ "${got%% *}" = 429 ]; then
			[[ "$got" == *'"code":"rate_limited"'*'rate limit of access.grants[7] exceeded'* ]] || { echo "  ${got:0:200}"; return 1; }
			retry=$(tr -d '\r' < "$work/headers" | sed -n 's/^[Rr]etry-[Aa]fter: //p')
			rid=$(cat "$work/rid")
		fi
	done
	echo "  statuses:$statuses; Retry-After: $retry"
	[[ "$statuses" == " 200 200 200 429"* ]] && [[ "$retry" =~ ^[1-9][0-9]*$ ]] || return 1
	[[ "$(entry_of "$rid")" == "spiffe://credsign.test/access/limited|generate|refused|rate_limited|rate limit of access.grants[7] exceeded"*"|web|dev|client" ]] ||
		{ echo "  entry: $(entry_of "$rid")"; return 1; }
	sleep "$retry"
	[[ "$(call limited POST /api/generate "$web")" == "200 "* ]]
}
check "a burst over a grant's rate limit: 429 rate_limited with Retry-After, audited; the limit recovers" rate_limited
other_identities_unlimited() {
	# the bucket is the identity's: others are not slowed by it
	local i
	for i in 1 2 3 4 5 6; do
		[[ "$(call web-deployer POST /api/generate "$web")" == "200 "* ]] || return 1
	done
}
check "another identity is not limited by that bucket" other_identities_unlimited

stop_daemon
check "the daemon stops cleanly" test $? -eq 0
check "no sanitizer report in the daemon's log" bash -c '! grep -q Sanitizer "$1"' x "$log"
finish
