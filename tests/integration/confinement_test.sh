#!/usr/bin/env bash
# Privilege separation and confinement (issue 16), read from /proc of the
# running daemon started as root with server.user = credsign: a supervisor
# and two children; only the key process maps the PKCS#11 module; the
# network process runs as the configured user and group with no
# capabilities, NoNewPrivs 1 and a seccomp filter (Seccomp 2), the key
# process with Seccomp 2 too; no process may dump core; the PIN file is not
# readable by the network process's user and no descriptor of the network
# process reaches the token; a round trip works through the split.
#
#   confinement_test.sh BUILD_DIR STATE_DIR SOFTHSM_MODULE
BUILD=${1:?}
STATE=${2:?}
SOFTHSM=${3:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ] || [ -z "$RUN_AS" ]; then
	echo "ok - skipped: needs root and the credsign user (hsm-setup/service-user)"
	exit 0
fi
asan=0
grep -q '^CMAKE_BUILD_TYPE:STRING=Asan' "$BUILD/CMakeCache.txt" && asan=1

it_token confine || exit 1
it_setup confine || exit 1
sup=$daemon
uid=$(id -u credsign)
gid=$(id -g credsign)

status_field() { awk -v k="$2:" '$1 == k { $1 = ""; sub(/^ /, ""); print }' "/proc/$1/status"; }
maps_module() { grep -q "$(basename "$SOFTHSM")" "/proc/$1/maps"; }

mapfile -t kids < <(pgrep -P "$sup" | sort -n)
key=""
net=""
for p in "${kids[@]}"; do
	if maps_module "$p"; then key=$p; else net=$p; fi
done
check "three processes: the supervisor and two children (${kids[*]})" test "${#kids[@]}" -eq 2
check "  one child maps the PKCS#11 module (the key process: $key)" test -n "$key"
check "  the other does not (the network process: $net)" test -n "$net"
check "  the supervisor does not map the module" bash -c "! grep -q '$(basename "$SOFTHSM")' /proc/$sup/maps"
check "  nor libp11-kit's modules in the network process" bash -c "! grep -q 'softhsm\|pkcs11/' /proc/$net/maps"

echo "# network process $net: $(status_field "$net" Uid) / $(status_field "$net" Gid)"
check "network process: uid $uid (credsign), real, effective, saved, fs" \
	test "$(status_field "$net" Uid)" = "$uid $uid $uid $uid"
check "  gid $gid, all four" test "$(status_field "$net" Gid)" = "$gid $gid $gid $gid"
check "  supplementary groups: its own only" test "$(status_field "$net" Groups | xargs)" = "$gid"
for cap in CapInh CapPrm CapEff CapBnd CapAmb; do
	check "  $cap 0" test "$(status_field "$net" $cap)" = 0000000000000000
done
check "  NoNewPrivs 1" test "$(status_field "$net" NoNewPrivs)" = 1
check "  Seccomp 2 (a filter)" test "$(status_field "$net" Seccomp)" = 2
check "key process: Seccomp 2" test "$(status_field "$key" Seccomp)" = 2
check "  NoNewPrivs 1" test "$(status_field "$key" NoNewPrivs)" = 1
check "  CapEff 0 (root's files by owner only)" test "$(status_field "$key" CapEff)" = 0000000000000000
for p in "$sup" "$key" "$net"; do
	check "pid $p: no core dumps (RLIMIT_CORE 0)" \
		bash -c "grep '^Max core file size' /proc/$p/limits | awk '{ exit !(\$5 == 0 && \$6 == 0) }'"
done
if [ "$asan" = 0 ]; then
	# PR_SET_DUMPABLE 0 makes a process's /proc files root's
	check "network process not dumpable (/proc/$net/status is root's)" test "$(stat -c %u "/proc/$net/status")" = 0
	check "network process memory locked (VmLck > 0)" test "$(status_field "$net" VmLck | awk '{print $1}')" -gt 0
	check "key process memory locked (VmLck > 0)" test "$(status_field "$key" VmLck | awk '{print $1}')" -gt 0
fi

pin=$TOKEN_DIR/user.pin
check "the PIN file is not readable by credsign" bash -c "! runuser -u credsign -- cat '$pin' > /dev/null 2>&1"
check "  nor the token's directory" bash -c "! runuser -u credsign -- ls '$TOKEN_DIR' > /dev/null 2>&1"
check "  root reads it (the test is not vacuous)" bash -c "cat '$pin' > /dev/null"
check "no descriptor of the network process reaches the token" \
	bash -c "! ls -l /proc/$net/fd 2>/dev/null | grep -q '$TOKEN_DIR'"
check "  the key process's do not reach the store" bash -c "! ls -l /proc/$key/fd 2>/dev/null | grep -q 'credsign.db'"

r=$(call ci-deployer POST /api/generate "{\"preset\":\"soc2\",$PAYMENTS}")
sid=$(json_field "$(cat "$work/out")" generation_session_id)
check "a credential through the split daemon (200)" test "${r%% *}" = 200
r=$(call ci-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$sid\"}")
check "  its certificate (201)" test "${r%% *}" = 201
json_field "$(cat "$work/out")" certificate > "$work/cert.jws"
call auditor GET /.well-known/jwks.json > /dev/null
cp "$work/out" "$work/jwks.json"
check "  which verifies offline" "$BUILD/bin/credsign" verify "$work/cert.jws" --jwks "$work/jwks.json"

check "SIGTERM to the supervisor: status 0" stop_daemon
for p in "$key" "$net"; do
	check "  child $p gone" bash -c "! kill -0 $p 2>/dev/null"
done
finish
