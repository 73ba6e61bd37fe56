#!/usr/bin/env bash
# Strict input at the request handlers, against a real credsignd: every
# case the outside attack reproduced answers with its documented status
# and JSON error code, nothing is cut or dropped silently, and request ids
# stay unique across restarts.
#
#   input_test.sh BUILD_DIR STATE_DIR SOFTHSM_MODULE
BUILD=${1:?}
STATE=${2:?}
SOFTHSM=${3:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_token input || exit 1
# input rules, not access: here ci-deployer may also generate for any
# project and environment (a project of 128 characters included)
GRANTS="$DEFAULT_GRANTS,
    { identity = \"spiffe://credsign.test/ci-deployer\"; role = \"generator\";
      projects = [ \"*\" ]; environments = [ \"*\" ]; }" it_setup input || exit 1

# expect_message NAME METHOD PATH BODY STATUS CODE TEXT: as expect_error,
# and the message contains TEXT
expect_message() {
	expect_error "$1" "$2" "$3" "$4" "$5" "$6" || return 1
	grep -qF -- "$7" "$work/out" || { echo "  message lacks '$7': $(head -c 300 "$work/out")"; return 1; }
}

expect_status_200() { # expect_status_200 NAME METHOD PATH BODY
	local got
	got=$(call "$@")
	[[ "$got" == "200 "* ]] || { echo "  expected 200, got: ${got:0:300}"; return 1; }
}

a63=$(printf 'a%.0s' $(seq 63))
e_acute=$(printf '\xc3\xa9')

# ---- client text quoted at a character boundary -----------------------------------------
# a 64-character name ending in a two-byte character: "%.64s" cut it in half
# and json_pack failed: 500 "out of memory"
check "64-character preset name ending in U+00E9 -> 400 unknown_preset, quoted whole" \
	expect_message ci-deployer POST /api/generate "{\"preset\":\"$a63$e_acute\"}" 400 unknown_preset "'$a63$e_acute'"
check "64-character field name ending in U+00E9 -> 400 unknown_field, quoted whole" \
	expect_message ci-deployer POST /api/generate "{\"preset\":\"soc2\",\"$a63$e_acute\":1}" 400 unknown_field "'$a63$e_acute'"
check "64-character standard ending in U+00E9 -> 404 unknown_preset, quoted whole" \
	expect_message auditor GET "/api/policy?standards=$a63%C3%A9" '' 404 unknown_preset "'$a63$e_acute'"
check "a standard that is not UTF-8 -> 404 unknown_preset (not 500)" \
	expect_error auditor GET '/api/policy?standards=%FF%FE' '' 404 unknown_preset
long_name=$(python3 -c 'print("\u6771" * 100, end="")')
check "a 100-character name is quoted as 64 characters and '...'" \
	expect_message ci-deployer POST /api/generate "{\"preset\":\"$long_name\"}" 400 unknown_preset \
	"'$(python3 -c 'print("\u6771" * 64, end="")')...'"
check "invalid UTF-8 in the body -> 400 invalid_json (not 500)" \
	expect_error ci-deployer POST /api/generate "$(printf '{"project":"payments","environment":"production","preset":"\xff"}')" 400 invalid_json

# ---- /api/policy?standards= -------------------------------------------------------------
# 32 x pci-dss-4 + hipaa: the 33rd was dropped and the answer said 12, not 16
thirty_three="$(printf 'pci-dss-4,%.0s' $(seq 32))hipaa"
check "33 standards -> 400 invalid_field naming the limit of 32" \
	expect_message auditor GET "/api/policy?standards=$thirty_three" '' 400 invalid_field "the limit is 32"
check "a standard named twice -> 400 invalid_field" \
	expect_message auditor GET '/api/policy?standards=pci-dss-4,hipaa,pci-dss-4' '' 400 invalid_field twice
check "an empty name in standards -> 400 invalid_field" \
	expect_error auditor GET '/api/policy?standards=pci-dss-4,,hipaa' '' 400 invalid_field
check "standards given twice -> 400 invalid_field" \
	expect_error auditor GET '/api/policy?standards=pci-dss-4&standards=hipaa' '' 400 invalid_field
check "an unknown parameter -> 400 unknown_field" \
	expect_error auditor GET '/api/policy?standards=hipaa&colour=red' '' 400 unknown_field
check "%00 in the query -> 400 invalid_field (not cut at the NUL)" \
	expect_error auditor GET '/api/policy?standards=hipaa%00nope' '' 400 invalid_field
pci_hipaa_16() {
	local got
	got=$(call auditor GET '/api/policy?standards=pci-dss-4,hipaa')
	[[ "$got" == "200 "* ]] || { echo "  $got"; return 1; }
	python3 - "${got#200 }" <<'PY'
import json, sys
p = json.loads(sys.argv[1])
human = next(r for r in p["rules"] if r["id"] == "length.human")
assert p["standards"] == ["pci-dss-4", "hipaa"], p["standards"]
assert human["value"] == 16, human
PY
}
check "pci-dss-4 + hipaa: 16-character minimum" pci_hipaa_16

# ---- text limits in characters; no control or invisible format characters ---------------
e128=$(python3 -c 'print("\u00e9" * 128, end="")')
e129=$(python3 -c 'print("\u00e9" * 129, end="")')
check "128 two-byte characters (256 bytes) in project -> 200" \
	expect_status_200 ci-deployer POST /api/generate "{\"preset\":\"soc2\",\"project\":\"$e128\"}"
check "129 characters in project -> 400 invalid_field naming 128" \
	expect_message ci-deployer POST /api/generate "{\"preset\":\"soc2\",\"project\":\"$e129\"}" 400 invalid_field "1 to 128 characters"
for cp in 0085 009f 202e 202a 2066 2069 200e 200f 061c 200b feff 2028; do
	check "U+$cp in system -> 400 invalid_field" \
		expect_error ci-deployer POST /api/generate "{\"preset\":\"soc2\",\"system\":\"db\\u${cp}prod\"}" 400 invalid_field
done
check "raw U+202E (UTF-8) in environment -> 400 invalid_field" \
	expect_error ci-deployer POST /api/generate "$(printf '{"project":"payments","preset":"soc2","environment":"a\xe2\x80\xaeb"}')" 400 invalid_field
check "prefix over 16 -> 400 invalid_field" \
	expect_error ci-deployer POST /api/generate '{"project":"payments","environment":"production","preset":"soc2","type":"api-key","prefix":"abcdefghijklmnopq"}' 400 invalid_field

# ---- integers: digits only, in range, no overflow -----------------------------------------
check "limit=99999999999999999999 (overflow) -> 400" \
	expect_message auditor GET '/api/audit?limit=99999999999999999999' '' 400 invalid_field "1 to 10000"
check "from_seq=99999999999999999999 (overflow) -> 400" \
	expect_error auditor GET '/api/audit?from_seq=99999999999999999999' '' 400 invalid_field
check "from_seq=+5 -> 400" expect_error auditor GET '/api/audit?from_seq=%2B5' '' 400 invalid_field
check "from_seq=5x -> 400" expect_error auditor GET '/api/audit?from_seq=5x' '' 400 invalid_field
check "limit given twice -> 400" expect_error auditor GET '/api/audit?limit=1&limit=2' '' 400 invalid_field
check "unknown audit parameter -> 400 unknown_field" expect_error auditor GET '/api/audit?since=1' '' 400 unknown_field
check "a query on a route that takes none -> 400 unknown_field" \
	expect_error ci-deployer GET '/api/presets?verbose=1' '' 400 unknown_field

# ---- methods and routes ------------------------------------------------------------------
# method_405 METHOD PATH ALLOW: JSON 405 with the Allow header
method_405() {
	local args code
	read -r -a args <<< "$(client ci-deployer)"
	code=$(curl -s -X "$1" -D "$work/headers" -o "$work/out" -w '%{http_code}' "${args[@]}" "$url$2")
	[ "$code" = 405 ] && grep -q '"code":"method_not_allowed"' "$work/out" &&
		tr -d '\r' < "$work/headers" | grep -qix "allow: $3" || {
		echo "  $1 $2: $code $(head -c 200 "$work/out") / $(grep -i '^allow' "$work/headers")"
		return 1
	}
}
for m in PUT DELETE PATCH OPTIONS TRACE; do
	check "$m /api/generate -> JSON 405, Allow: POST" method_405 "$m" /api/generate POST
	check "$m /api/presets -> JSON 405, Allow: GET, HEAD" method_405 "$m" /api/presets 'GET, HEAD'
done
check "GET /api/generate -> JSON 405, Allow: POST" method_405 GET /api/generate POST
check "POST /api/presets -> JSON 405, Allow: GET, HEAD" method_405 POST /api/presets 'GET, HEAD'
head_like_get() {
	local args got
	read -r -a args <<< "$(client ci-deployer)"
	got=$(curl -s -I -o /dev/null -w '%{http_code} %{size_download}' "${args[@]}" "$url/api/presets")
	[ "$got" = "200 0" ] || { echo "  HEAD: $got"; return 1; }
}
check "HEAD /api/presets -> 200 without a body" head_like_get
check "unknown route -> JSON 404 not_found" expect_error ci-deployer GET /api/nothing '' 404 not_found
check "unknown route, other method -> JSON 404 not_found" expect_error ci-deployer DELETE /nothing '' 404 not_found
check "a route with a trailing slash is another route -> 404" expect_error ci-deployer POST /api/generate/ '{}' 404 not_found

# ---- request ids unique across restarts ----------------------------------------------------
request_ids() { # request_ids N: the X-Request-Id of N requests, one per line
	local args
	read -r -a args <<< "$(client ci-deployer)"
	for _ in $(seq "$1"); do
		curl -s -D - -o /dev/null "${args[@]}" "$url/api/presets" | tr -d '\r' |
			sed -n 's/^[Xx]-[Rr]equest-[Ii]d: //p'
	done
}
unique_across_restarts() {
	request_ids 3 > "$work/ids"
	stop_daemon
	start_daemon || return 1
	request_ids 3 >> "$work/ids"
	stop_daemon
	start_daemon || return 1
	request_ids 3 >> "$work/ids"
	[ "$(wc -l < "$work/ids")" = 9 ] || { echo "  ids: $(cat "$work/ids")"; return 1; }
	grep -qvE '^it-input-[0-9a-f]{12}-[0-9]+$' "$work/ids" && { echo "  format: $(cat "$work/ids")"; return 1; }
	[ "$(sort -u "$work/ids" | wc -l)" = 9 ] || { echo "  repeated: $(sort "$work/ids" | uniq -d)"; return 1; }
	local dup
	dup=$(sqlite3 "$db" "SELECT request_id, count(*) FROM audit_log WHERE request_id IS NOT NULL
	                     GROUP BY request_id HAVING count(*) > 1")
	[ -z "$dup" ] || { echo "  duplicate request_id in the audit log: $dup"; return 1; }
}
check "request ids are unique across three starts (responses and audit log)" unique_across_restarts

finish
