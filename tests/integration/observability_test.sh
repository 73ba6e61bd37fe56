#!/usr/bin/env bash
# What an operator watches: GET /metrics (Prometheus text, operator grants
# only), the plain-HTTP probe listener (server.health_listen), and request
# log lines in JSON with the request id and latency as fields.
#
#   observability_test.sh BUILD_DIR STATE_DIR SOFTHSM_MODULE
BUILD=${1:?}
STATE=${2:?}
SOFTHSM=${3:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_token observe || exit 1
probe_port=$(free_port)
EXTRA_SERVER="health_listen = \"127.0.0.1:$probe_port\";" \
EXTRA_LOG='format = "json";' \
	it_setup observe || exit 1

metric() { # metric NAME{LABELS} -> value from the last scrape
	python3 - "$work/metrics" "$1" <<'PY'
import sys
want = sys.argv[2] + " "
for line in open(sys.argv[1]):
    if line.startswith(want):
        print(line[len(want):].strip())
        break
else:
    print("absent")
PY
}
scrape() { call operator GET /metrics > "$work/scrape" && sed '1s/^[0-9]* //' "$work/scrape" > "$work/metrics" && [[ "$(cat "$work/scrape")" == "200 "* ]]; }

for _ in 1 2 3; do call ci-deployer POST /api/generate '{"project":"payments","environment":"production","preset":"soc2"}' > /dev/null; done
sid=$(json_field "$(call ci-deployer POST /api/generate '{"project":"payments","environment":"production","preset":"soc2"}' | cut -d' ' -f2-)" generation_session_id)
call ci-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$sid\"}" > /dev/null

check "GET /metrics as an operator: 200, Prometheus text" scrape
check "  4 generates counted" test "$(metric 'credsign_requests_total{route="generate",code="200"}')" = 4
check "  1 certificate counted" test "$(metric 'credsign_requests_total{route="certify",code="201"}')" = 1
check "  the generate latency histogram counts 4" \
	test "$(metric 'credsign_request_duration_seconds_count{route="generate"}')" = 4
buckets_cumulative() {
	python3 - "$work/metrics" <<'PY'
import sys
last = {}
for line in open(sys.argv[1]):
    if "_bucket{" not in line:
        continue
    name, value = line.rsplit(" ", 1)
    series = name.split("le=")[0]
    v = float(value)
    assert v >= last.get(series, 0), line
    last[series] = v
assert last, "no histogram"
PY
}
check "  histogram buckets are cumulative" buckets_cumulative
check "  token calls by function (C_Sign for the certificate)" \
	test "$(metric 'credsign_token_calls_total{function="C_Sign",result="ok"}')" != absent
active_kid() {
	local kid
	kid=$(call auditor GET /.well-known/jwks.json | cut -d' ' -f2- |
		python3 -c 'import json,sys; print([k["kid"] for k in json.load(sys.stdin)["keys"] if k["status"] == "active"][0])')
	[ "$(metric "credsign_signing_key_info{kid=\"$kid\"}")" = 1 ]
}
check "  the active signing key's kid" active_kid
check "  connections by state" test "$(metric 'credsign_connections{state="authenticated"}')" != absent
positive() { python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) > 0 else 1)' "$(metric "$1")" 2>/dev/null; }
check "  store commits and their batch sizes" positive 'credsign_store_commit_batch_size_count'
check "  audit entries written" positive 'credsign_audit_entries_total'
check "  no handshake failed" test "$(metric 'credsign_tls_handshakes_failed_total')" = 0
check "GET /metrics by an identity without an operator grant: 403 JSON" \
	expect_error ci-deployer GET /metrics '' 403 forbidden

# ---- probes on plain HTTP --------------------------------------------------------
probe() { curl -s -o "$work/probe" -w '%{http_code}' "http://127.0.0.1:$probe_port$1"; }
check "probe listener: /healthz 200 without a client certificate" test "$(probe /healthz)" = 200
check "probe listener: /readyz 200" test "$(probe /readyz)" = 200
check "probe listener: nothing else (404 JSON)" \
	eval '[ "$(probe /api/presets)" = 404 ] && grep -q "\"code\":\"not_found\"" "$work/probe"'
check "probe listener: no API there (POST /api/generate: 404 JSON)" \
	eval '[ "$(curl -s -o "$work/probe" -w "%{http_code}" -X POST -d "{}" "http://127.0.0.1:$probe_port/api/generate")" = 404 ] && grep -q "\"code\":\"not_found\"" "$work/probe"'
check "probe listener: POST /readyz is 405 JSON" \
	eval '[ "$(curl -s -o "$work/probe" -w "%{http_code}" -X POST "http://127.0.0.1:$probe_port/readyz")" = 405 ] && grep -q "\"code\":\"method_not_allowed\"" "$work/probe"'

peer=("/usr/bin/python3" "$(dirname "$0")/hostile_peer.py")
probe_cap() {
	local got
	got=$("${peer[@]}" evicted "$probe_port" 40)
	echo "  40 idle connections to the probe listener: $got"
	python3 -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if d["closed"] >= 8 else 1)' "$got"
}
check "probe listener: at most 32 connections at once" probe_cap
sleep 2.2 # every slot is held at most 2 s
probe_deadline() {
	local got
	got=$("${peer[@]}" silent "$probe_port")
	echo "  an idle probe connection: $got"
	python3 -c 'import json,sys; t=json.loads(sys.argv[1])["closed_after"]; sys.exit(0 if 1.5 <= t <= 4 else 1)' "$got"
}
check "probe listener: a connection is closed 2 s after accept" probe_deadline
check "probe listener: still serving afterwards" test "$(probe /healthz)" = 200

# ---- request log lines in JSON ------------------------------------------------------------
json_log() {
	python3 - "$log" <<'PY'
import json, sys
requests = []
for line in open(sys.argv[1]):
    d = json.loads(line)  # every line is JSON
    if d.get("msg") == "request":
        requests.append(d)
gen = [d for d in requests if d["path"] == "/api/generate"]
assert len(gen) == 4, len(gen)
for d in gen:
    assert d["method"] == "POST" and d["status"] == 200, d
    assert isinstance(d["ms"], (int, float)) and d["ms"] >= 0, d
    assert d["identity"] == "spiffe://credsign.test/ci-deployer", d
    assert d["request_id"].startswith("it-observe-"), d
assert len({d["request_id"] for d in requests}) == len(requests)
PY
}
check "every log line is JSON; request lines carry method, path, status, identity, request_id, ms" json_log
ids_match() { # the request id in the log is the one the client got
	local rid
	read -r -a args <<< "$(client ci-deployer)"
	rid=$(curl -s -D - -o /dev/null "${args[@]}" "$url/api/presets" | tr -d '\r' | sed -n 's/^X-Request-Id: //Ip')
	[ -n "$rid" ] && grep -q "\"request_id\":\"$rid\"" "$log"
}
check "the log's request_id is the X-Request-Id the client got" ids_match

stop_daemon
finish
