#!/usr/bin/env bash
# credsignd against hostile and careless peers (issue 9): connection
# exhaustion before authentication, deadlines and connection lifetime,
# audit flooding by unverified peers, identities taken from the subject CN,
# request framing that RFC 9112 says to refuse, JSON for libevent's own
# errors, the audited failed reload, and the files the daemon creates.
#
#   attack_test.sh BUILD_DIR STATE_DIR SOFTHSM_MODULE
BUILD=${1:?}
STATE=${2:?}
SOFTHSM=${3:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
peer=("/usr/bin/python3" "$(dirname "$0")/hostile_peer.py")
it_token attack || exit 1

# The daemon starts under umask 022: what it creates must still be private.
umask 022
EXTRA_SERVER='handshake_timeout_ms = 1000; request_timeout_ms = 1500; max_connection_seconds = 3;
              max_handshakes = 32; max_handshakes_per_source = 8; max_connections_per_identity = 6;' \
# legacy-client: the CN-only client of section 4 (tls.identity_from_cn)
EXTRA_CONF='audit = { refusal_summary_seconds = 1; };' \
GRANTS="$DEFAULT_GRANTS,
    { identity = \"legacy-client\"; role = \"operator\"; }" \
	it_setup attack || exit 1
umask 077
certs=$work/certs
mkdir -p "$certs"
"${peer[@]}" certs "$certs" "$pki/ca.pem" "$pki/ca-db/main/ca.key" > /dev/null || exit 1
tls_args() { echo "$pki/ca.pem" "$clients/$1.pem" "$clients/$1.key"; }
audit_count() { sqlite3 "$db" "SELECT count(*) FROM audit_log"; }
pyget() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

# ---- 8. files the daemon creates ------------------------------------------------
private_files() {
	local f bad=0
	for f in "$db" "$db-wal" "$db-shm"; do
		[ -e "$f" ] || continue
		[ "$(stat -c %a "$f")" = 600 ] || { echo "  $f is $(stat -c %a "$f")"; bad=1; }
	done
	[ -e "$db" ] && [ $bad -eq 0 ]
}
check "store, WAL and SHM files are 0600 although started under umask 022" private_files

# ---- 1. connection exhaustion before authentication --------------------------------
silent_closed() {
	local got t
	got=$("${peer[@]}" silent "$port")
	t=$(pyget "$got" closed_after)
	# handshake_timeout_ms = 1000: total time, closed soon after
	python3 -c "import sys; t=float(sys.argv[1]); sys.exit(0 if 0.8 <= t <= 4 else 1)" "$t" ||
		{ echo "  $got"; return 1; }
}
check "a connection that never sends a byte is closed at the handshake deadline" silent_closed

trickle_closed() {
	local got t
	read -r -a t_args <<< "$(tls_args ci-deployer)"
	got=$("${peer[@]}" trickle "$port" "${t_args[@]}" 0.3)
	t=$(pyget "$got" closed_after)
	# one byte every 0.3 s keeps the idle timer alive; request_timeout_ms
	# = 1500 is total time from the first byte
	python3 -c "import sys; t=float(sys.argv[1]); sys.exit(0 if 1.2 <= t <= 5 else 1)" "$t" ||
		{ echo "  $got"; return 1; }
}
check "a request trickled one byte at a time is cut at the request deadline" trickle_closed

lifetime_ends() {
	local got
	read -r -a t_args <<< "$(tls_args ci-deployer)"
	got=$("${peer[@]}" lifetime "$port" "${t_args[@]}" 0.25 8)
	# max_connection_seconds = 3: the answer after it says Connection: close
	python3 - "$got" <<'PY' || { echo "  $got"; return 1; }
import json, sys
d = json.loads(sys.argv[1])
# at a request boundary: a client that sends within a second of the end
# (every 0.25 s here) gets its answer with Connection: close, never a
# connection closed under its request
assert d["ended"] == "connection-close", d
assert 2.9 <= d["after"] <= 5, d
assert d["answers"] >= 8, d
PY
}
check "a busy keep-alive connection ends at server.max_connection_seconds" lifetime_ends

oldest_evicted() {
	local got
	# 20 silent connections from one address, budget 8 per source: the
	# oldest 12 are closed to make room, the newest kept
	got=$("${peer[@]}" evicted "$port" 20 127.0.0.2)
	python3 - "$got" <<'PY' || { echo "  $got"; return 1; }
import json, sys
d = json.loads(sys.argv[1])
assert d["closed"] >= 12 and d["kept_newest"] and d["closed_first"][:1] == [0], d
PY
}
check "per-source budget: the oldest handshaking connections are evicted first" oldest_evicted

served_under_flood() {
	local flood_out=$work/flood.out ok=0 slow=0 i code t
	"${peer[@]}" flood "$port" 1000 12 > "$flood_out" &
	local flooder=$!
	sleep 3 # all 1,000 open and being re-opened as they are evicted
	read -r -a args <<< "$(client ci-deployer)"
	for i in $(seq 10); do
		read -r code t err <<< "$(curl -s -o /dev/null -w '%{http_code} %{time_total} %{errormsg}' \
			--max-time 5 "${args[@]}" "$url/healthz" | tr ' ' '_' | sed 's/_/ /; s/_/ /')"
		[ "$code" = 200 ] || echo "  healthz $i: $code after $t s: $err"
		[ "$code" = 200 ] && ok=$((ok + 1))
		python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < 2 else 1)" "$t" || slow=$((slow + 1))
	done
	# a generate + certify round trip as well, through the client
	local got sid
	got=$(call ci-deployer POST /api/generate '{"project":"payments","environment":"production","preset":"soc2"}')
	sid=$(pyget "${got#* }" generation_session_id 2>/dev/null)
	got=$(call ci-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$sid\"}")
	wait $flooder
	echo "  flood: $(cat "$flood_out"); healthz 200: $ok/10, slower than 2 s: $slow"
	[ $ok -eq 10 ] && [ $slow -eq 0 ] && [[ "$got" == "201 "* ]] &&
		[ "$(pyget "$(cat "$flood_out")" held)" = 1000 ]
}
check "authenticated clients are served while 1,000 unauthenticated connections are held open" served_under_flood
check "the daemon survived the flood" kill -0 "$daemon"

# ---- 2. audit flooding by unverified peers ------------------------------------------
bounded_audit() {
	local before after got summed
	sleep 1.5 # the previous interval's summary is written
	before=$(audit_count)
	got=$("${peer[@]}" badhandshakes "$port" "$pki/ca.pem" "$certs/selfsigned.pem" "$certs/selfsigned.key" 500)
	[ "$(pyget "$got" refused)" = 500 ] || { echo "  $got"; return 1; }
	for _ in $(seq 50); do # the summary is written within the interval
		summed=$(sqlite3 "$db" "SELECT object FROM audit_log WHERE seq > $before AND action = 'tls.handshake.refusals'" |
			sed -n 's/.*count=\([0-9]*\).*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
		[ "$summed" -ge 500 ] && break
		sleep 0.1
	done
	after=$(audit_count)
	echo "  500 refused handshakes: $((after - before)) audit entries, summary counts $summed"
	[ "$summed" = 500 ] && [ $((after - before)) -le 10 ] &&
		sqlite3 "$db" "SELECT actor, role, error_code, object FROM audit_log WHERE seq > $before AND action = 'tls.handshake.refusals'" |
		grep -q '^unverified|unverified|self-signed certificate|src=127.0.0.1 count=.*claimed=spiffe://credsign.test/auditor'
}
check "500 unverified handshakes: a bounded number of audit entries, the summary counts all 500" bounded_audit

anonymous_counted() {
	local before got summed
	sleep 1.5
	before=$(audit_count)
	got=$("${peer[@]}" badhandshakes "$port" "$pki/ca.pem" "" "" 20)
	[ "$(pyget "$got" refused)" = 20 ] || { echo "  $got"; return 1; }
	for _ in $(seq 50); do
		summed=$(sqlite3 "$db" "SELECT object FROM audit_log WHERE seq > $before AND action = 'tls.handshake.refusals' AND error_code = 'no client certificate'" |
			sed -n 's/.*count=\([0-9]*\).*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
		[ "$summed" -ge 20 ] && break
		sleep 0.1
	done
	[ "$summed" = 20 ]
}
check "20 handshakes without a client certificate: counted in one summary entry" anonymous_counted

summary_count() { # summary_count SEQ REASON -> refusals counted in summaries after SEQ
	sqlite3 "$db" "SELECT object FROM audit_log WHERE seq > $1 AND action = 'tls.handshake.refusals' AND error_code = '$2'" |
		sed -n 's/.*count=\([0-9]*\).*/\1/p' | awk '{ s += $1 } END { print s + 0 }'
}
revoked_individual() {
	local before summed
	sleep 1.5
	before=$(audit_count)
	read -r -a t_args <<< "$(tls_args revoked)"
	"${peer[@]}" badhandshakes "$port" "${t_args[@]}" 3 > /dev/null
	for _ in $(seq 50); do
		summed=$(summary_count "$before" "certificate revoked")
		[ "$summed" -ge 2 ] && break
		sleep 0.1
	done
	[ "$(sqlite3 "$db" "SELECT count(*) FROM audit_log WHERE seq > $before AND action = 'tls.handshake' AND actor = 'spiffe://credsign.test/revoked'")" = 1 ] &&
		[ "$summed" = 2 ]
}
check "a revoked certificate our CA issued: its first refusal an entry of its own, the rest counted" revoked_individual
replayed_certificate() {
	local before after summed got
	"${peer[@]}" fakekey "$pki/server.pem" "$work/fake-server.key" > /dev/null
	sleep 1.5
	before=$(audit_count)
	got=$("${peer[@]}" badhandshakes "$port" "$pki/ca.pem" "$pki/server.pem" "$work/fake-server.key" 200)
	[ "$(pyget "$got" refused)" = 200 ] || { echo "  $got"; return 1; }
	for _ in $(seq 50); do
		summed=$(summary_count "$before" "unsuitable certificate purpose")
		[ "$summed" -ge 195 ] && break
		sleep 0.1
	done
	after=$(audit_count)
	local single
	single=$(sqlite3 "$db" "SELECT count(*) FROM audit_log WHERE seq > $before AND action = 'tls.handshake'")
	echo "  200 handshakes replaying the server's certificate: $((after - before)) audit entries ($single of their own, one per interval), summary counts $summed"
	[ $((summed + single)) = 200 ] && [ "$single" -le 4 ] && [ $((after - before)) -le 10 ]
}
check "replaying a CA-issued certificate without its key cannot flood the audit log" replayed_certificate
log_not_flooded() {
	local before after
	before=$(wc -l < "$log")
	"${peer[@]}" connectclose "$port" 300 > /dev/null
	sleep 0.5
	after=$(wc -l < "$log")
	echo "  300 connect-and-close: $((after - before)) log lines"
	[ $((after - before)) -le 10 ]
}
check "300 connections closed mid-handshake do not write 300 log lines" log_not_flooded

# ---- 3. identity from the subject CN ----------------------------------------------------
as_cert() { # as_cert CERTNAME PATH -> status
	curl -s -o "$work/out" -w '%{http_code}' --cacert "$pki/ca.pem" --cert "$certs/$1.pem" \
		--key "$certs/$1.key" "$url$2"
}
cn_uri_refused() {
	local code
	code=$(as_cert cn-uri /api/audit)
	[ "$code" = 403 ] || { echo "  got $code $(cat "$work/out")"; return 1; }
	[ "$(sqlite3 "$db" "SELECT count(*) FROM audit_log WHERE action = 'audit.read' AND outcome = 'success' AND actor_cert_sha256 = '$(openssl x509 -in "$certs/cn-uri.pem" -outform DER | sha256sum | cut -c1-64)'")" = 0 ]
}
check "a CN that reads spiffe://.../auditor (no URI SAN) is not the auditor: 403" cn_uri_refused
check "a CN is not an identity by default (tls.identity_from_cn = false)" \
	test "$(as_cert cn-plain /healthz)" = 403

# a caller without a usable identity names no one: its refusals are audited
# once per (action, code) and interval, the rest summarised with a count
unidentified_flood_summarised() {
	local before after summary
	before=$(sqlite3 "$db" "SELECT count(*) FROM audit_log WHERE actor = 'unidentified'")
	for _ in $(seq 40); do as_cert cn-plain /api/presets > /dev/null; done
	# the summary comes within audit.refusal_summary_seconds (1 s here)
	for _ in $(seq 40); do
		summary=$(sqlite3 "$db" "SELECT object FROM audit_log WHERE action = 'request.refusals'
		                         AND actor = 'unidentified' ORDER BY seq DESC LIMIT 1")
		[ -n "$summary" ] && break
		sleep 0.1
	done
	after=$(sqlite3 "$db" "SELECT count(*) FROM audit_log WHERE actor = 'unidentified'")
	echo "  40 refusals: $((after - before)) entries; summary: $summary"
	[[ "$summary" == *"count="* ]] && [ $((after - before)) -le 6 ]
}
check "refusals of a caller without a usable identity are summarised, not audited one by one" unidentified_flood_summarised

stop_daemon
sed -i 's/crl_check = true;/crl_check = true; identity_from_cn = true;/' "$conf"
start_daemon || exit 1
cn_allowed() {
	[ "$(as_cert cn-plain /api/presets)" = 200 ] &&
		[ "$(sqlite3 "$db" "SELECT actor FROM audit_log WHERE action = 'presets.read' ORDER BY seq DESC LIMIT 1")" = legacy-client ]
}
check "with tls.identity_from_cn the CN names a client without a URI SAN" cn_allowed
check "with tls.identity_from_cn a CN that parses as a URI is refused" test "$(as_cert cn-uri /healthz)" = 403
check "with tls.identity_from_cn a 300-byte CN is refused, not truncated" test "$(as_cert cn-long /healthz)" = 403
check "with tls.identity_from_cn a CN containing NUL is refused" test "$(as_cert cn-nul /healthz)" = 403
check "with tls.identity_from_cn a CN with a leading space is refused" test "$(as_cert cn-space /healthz)" = 403
check "a URI SAN with a trailing space is not an identity (403)" test "$(as_cert uri-space /healthz)" = 403

# ---- 5. framing that RFC 9112 says to refuse ------------------------------------------
raw_send() { # raw_send NAME printf-FORMAT -> JSON of hostile_peer raw
	printf "$2" > "$work/raw-$1"
	read -r -a t_args <<< "$(tls_args ci-deployer)"
	"${peer[@]}" raw "$port" "${t_args[@]}" "$work/raw-$1"
}
refused_and_closed() { # refused_and_closed NAME STATUS CODE FORMAT
	local got
	got=$(raw_send "$1" "$4")
	python3 - "$got" "$2" "$3" <<'PY' || { echo "  $got"; return 1; }
import json, sys
d = json.loads(sys.argv[1])
status, code = sys.argv[2], sys.argv[3]
head, _, body = d["answer"].partition("\r\n\r\n")
assert head.startswith("HTTP/1.1 " + status), head
assert "Content-Type: application/json" in head, head
assert "Content-Length: " in head, head  # framed, whatever the method
assert json.loads(body)["error"]["code"] == code, body
assert d["responses"] == 1 and d["closed"], d
PY
}
smuggle='POST /api/presets HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nContent-Length: 38\r\n\r\nGET /api/smuggled HTTP/1.1\r\nHost: x\r\n\r\n'
check "two Content-Length fields: 400, closed, the leftover never runs" \
	refused_and_closed twocl 400 bad_request "$smuggle"
check "  ... and no request for the smuggled path reached the router" \
	test "$(grep -c 'smuggled' "$log")" = 0
check "'Content-Length :' (space before the colon): 400, closed" refused_and_closed spacecolon 400 bad_request \
	'POST /api/generate HTTP/1.1\r\nHost: localhost\r\nContent-Length : 38\r\n\r\nGET /api/smuggled HTTP/1.1\r\nHost: x\r\n\r\n'
check "obs-fold continuation line: 400, closed" refused_and_closed fold 400 bad_request \
	'GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-A: a\r\n folded\r\n\r\n'
check "bare LF line ends: 400, closed" refused_and_closed barelf 400 bad_request \
	'GET /healthz HTTP/1.1\nHost: localhost\n\n'
check "HTTP/1.1 without Host: 400, closed" refused_and_closed nohost 400 bad_request \
	'GET /healthz HTTP/1.1\r\n\r\n'
check "Content-Length with Transfer-Encoding: 400, closed" refused_and_closed clte 400 bad_request \
	'POST /api/generate HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'
check "a header line without a colon (libevent's own 400) is JSON" refused_and_closed nocolon 400 bad_request \
	'GET /healthz HTTP/1.1\r\nHost: localhost\r\nNoColonHere\r\n\r\n'
check "an unknown method (libevent's own 501) is JSON" refused_and_closed foo 501 not_implemented \
	'FOO /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n'
check "an unknown HTTP version is JSON" refused_and_closed version 400 bad_request \
	'GET /healthz HTTP/2.7\r\nHost: localhost\r\n\r\n'
big_header() {
	local pad
	pad=$(head -c 9000 /dev/zero | tr '\0' a)
	refused_and_closed bighdr 431 headers_too_large "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: $pad\r\n\r\n"
}
check "headers over server.max_header_bytes: JSON 431 (libevent says only 'invalid header')" big_header
methods_json() {
	local m got
	for m in PUT DELETE TRACE OPTIONS PATCH; do
		got=$(call ci-deployer "$m" /api/generate)
		[[ "$got" == 4* ]] && [[ "$got" == *'"error":{"code":"'* ]] || { echo "  $m: $got"; return 1; }
	done
}
check "PUT, DELETE, TRACE, OPTIONS, PATCH on a route answer a JSON error" methods_json
check "Transfer-Encoding identity (unknown to libevent): 411, closed, the leftover never runs" \
	refused_and_closed teid 411 length_required \
	'POST /api/generate HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: identity\r\n\r\nGET /api/smuggled HTTP/1.1\r\nHost: x\r\n\r\n'
check "chunked bodies: 411 (send Content-Length)" refused_and_closed chunked 411 length_required \
	'POST /api/generate HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n'
head_with_body() { # the refusal of a HEAD has headers only
	local got
	got=$(raw_send headbody 'HEAD /healthz HTTP/1.1\r\nHost: localhost\r\nContent-Length: 38\r\n\r\nGET /api/smuggled HTTP/1.1\r\nHost: x\r\n\r\n')
	python3 -c 'import json,sys; d=json.loads(sys.argv[1]); a=d["answer"]; assert a.startswith("HTTP/1.1 400 ") and a.endswith("\r\n\r\n") and d["closed"] and d["responses"] == 1, d' "$got" ||
		{ echo "  $got"; return 1; }
}
check "HEAD with a body: 400 (headers only), closed, the body never runs" head_with_body
check "Content-Length: +17 is 400" refused_and_closed plus 400 bad_request \
	'POST /api/generate HTTP/1.1\r\nHost: localhost\r\nContent-Length: +2\r\n\r\n{}'
check "a space in the request target is 400" refused_and_closed target 400 bad_request \
	'GET /a b HTTP/1.1\r\nHost: localhost\r\n\r\n'
check "HTTP/1.10 is 400" refused_and_closed v110 400 bad_request 'GET /healthz HTTP/1.10\r\nHost: localhost\r\n\r\n'
check "Host: a, b is 400" refused_and_closed twohost 400 bad_request 'GET /healthz HTTP/1.1\r\nHost: a, b\r\n\r\n'
check "CONNECT is 405, framed, and the connection closed (a pipelined request never runs)" \
	refused_and_closed connect 405 method_not_allowed \
	'CONNECT /healthz HTTP/1.1\r\nHost: localhost\r\n\r\nGET /api/smuggled-connect HTTP/1.1\r\nHost: x\r\n\r\n'
check "a control character in a header value is 400" refused_and_closed ctl 400 bad_request \
	'GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-A: a\001b\r\n\r\n'
check "  ... and no smuggled request reached the router" test "$(grep -c 'smuggled' "$log")" = 0
head_no_body() {
	local got
	got=$(raw_send head 'HEAD /healthz HTTP/1.1\r\nHost: localhost\r\n\r\nGET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n')
	python3 - "$got" <<'PY' || { echo "  $got"; return 1; }
import json, sys
d = json.loads(sys.argv[1])
first, _, rest = d["answer"].partition("\r\n\r\n")
assert "Content-Length: 15" in first, first
assert rest.startswith("HTTP/1.1 200 OK"), rest[:80]  # no body after HEAD's headers
assert rest.endswith('{"status":"ok"}'), rest[-40:]
PY
}
check "HEAD: the headers GET would send, no body; the next answer is read right" head_no_body
pipelined_without_reading() {
	local rss_before rss_after got
	rss_before=$(awk '/VmRSS/ { print $2 }' "/proc/$daemon/status")
	read -r -a t_args <<< "$(tls_args ci-deployer)"
	got=$("${peer[@]}" pipeline "$port" "${t_args[@]}" 4)
	rss_after=$(awk '/VmRSS/ { print $2 }' "/proc/$daemon/status")
	echo "  pipelined $(pyget "$got" sent) bytes without reading: RSS ${rss_before} kB -> ${rss_after} kB"
	[ $((rss_after - rss_before)) -lt 204800 ]
}
check "pipelining without reading the answers does not grow the daemon without bound" pipelined_without_reading
one_identity_cannot_take_all() {
	local got
	read -r -a t_args <<< "$(tls_args stranger)"
	got=$("${peer[@]}" hold "$port" "${t_args[@]}" 10)
	echo "  10 connections of one identity: $got"
	[ "$(pyget "$got" served)" -le 6 ] && [ "$(call ci-deployer GET /healthz | cut -c1-3)" = 200 ]
}
check "one identity holds at most server.max_connections_per_identity connections" one_identity_cannot_take_all
pipelined_ok() {
	local got
	got=$(raw_send pipe 'GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\nGET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n')
	python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["responses"] == 2 and d["answer"].count("200 OK") == 2, d' "$got" ||
		{ echo "  $got"; return 1; }
}
check "well-formed pipelined requests are both answered" pipelined_ok

# ---- 7. a failed SIGHUP reload is audited --------------------------------------------------
reload_failure_audited() {
	local ca_backup=$work/ca.pem.bak
	sed -i "s|ca = \"$pki/ca.pem\"|ca = \"$work/ca.pem\"|" "$conf"
	stop_daemon
	cp "$pki/ca.pem" "$work/ca.pem" && chmod 644 "$work/ca.pem" # the network process's user reads it
	start_daemon || return 1
	echo garbage > "$work/ca.pem"
	kill -HUP "$daemon"
	for _ in $(seq 50); do
		[ "$(sqlite3 "$db" "SELECT count(*) FROM audit_log WHERE action = 'tls.reload' AND outcome = 'failure'")" = 1 ] && break
		sleep 0.1
	done
	cp "$pki/ca.pem" "$work/ca.pem"
	[ "$(sqlite3 "$db" "SELECT count(*) FROM audit_log WHERE action = 'tls.reload' AND outcome = 'failure'")" = 1 ] &&
		[ "$(call ci-deployer GET /healthz | cut -c1-3)" = 200 ]
}
check "a failed SIGHUP reload is audited (and the old context keeps serving)" reload_failure_audited

check "the audit log still verifies" "$BUILD/bin/credsign-admin" --config "$conf" audit verify
stop_daemon
finish
