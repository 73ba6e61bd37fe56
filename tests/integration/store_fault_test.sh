#!/usr/bin/env bash
# /readyz follows the store's write health: 503 store_unavailable while
# store writes fail, 200 again once they succeed, with requests that write
# failing (503) meanwhile. Three ways a write fails:
#  - another process holds the write lock longer than audit.write_timeout_ms;
#  - the database's files are read-only, even for root (chattr +i);
#  - the disk is full (the store on a small tmpfs in the daemon's own mount
#    namespace).
#
#   store_fault_test.sh BUILD_DIR STATE_DIR SOFTHSM_MODULE
BUILD=${1:?}
STATE=${2:?}
SOFTHSM=${3:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=sqlite_lock.sh
. "$(dirname "$0")/sqlite_lock.sh" # lock_on, lock_off: the write lock held
it_token store_fault || exit 1

EXTRA_SERVER='' it_setup store_fault || exit 1
stop_daemon
cat >> "$conf" <<'CONF'
audit = { write_timeout_ms = 800; };
CONF
start_daemon || exit 1
immutable=()
cleanup() { [ ${#immutable[@]} -eq 0 ] || chattr -i "${immutable[@]}" 2>/dev/null; }
trap cleanup EXIT

# wait_readyz STATUS: poll /readyz until it answers STATUS (up to 10 s);
# prints how long it took
wait_readyz() {
	local start got
	start=$(date +%s%N)
	for _ in $(seq 100); do
		got=$(call operator GET /readyz)
		if [[ "$got" == "$1 "* ]]; then
			echo "  /readyz $1 after $((($(date +%s%N) - start) / 1000000)) ms: ${got:0:160}"
			[ "$1" = 200 ] || [[ "$got" == *'"code":"store_unavailable"'* ]] || return 1
			return 0
		fi
		sleep 0.1
	done
	echo "  /readyz still: ${got:0:200}"
	return 1
}

generate() { call ci-deployer POST /api/generate '{"preset":"soc2","project":"payments","environment":"production"}'; }

# fault_cycle NAME BREAK REPAIR: ready; break; 503 from /readyz and from a
# write; repair; ready again and writes succeed
fault_cycle() {
	local got
	wait_readyz 200 || return 1
	"$2" || { echo "  could not $2"; return 1; }
	wait_readyz 503 || { "$3"; return 1; }
	got=$(generate)
	[[ "$got" == "503 "* ]] && [[ "$got" == *'"code":"store_unavailable"'* ]] && [[ "$got" != *credential* ]] ||
		{ echo "  generate while $1: ${got:0:200}"; "$3"; return 1; }
	"$3" || { echo "  could not $3"; return 1; }
	wait_readyz 200 || return 1
	got=$(generate)
	[[ "$got" == "200 "* ]] || { echo "  generate after $1: ${got:0:200}"; return 1; }
}

# ---- the write lock held past the write timeout ------------------------------------
check "lock held past audit.write_timeout_ms: /readyz 503 store_unavailable, then 200 when released" \
	fault_cycle "the lock is held" lock_on lock_off
# each change of the store's state is logged once
logged_once() {
	[ "$(grep -c 'a write failed; /readyz reports the store unavailable' "$log")" -eq 1 ] &&
		[ "$(grep -c 'writes succeed again' "$log")" -eq 1 ]
}
check "the daemon logs the store's failure and its recovery once each" logged_once

# ---- read-only database files -------------------------------------------------------
readonly_on() {
	immutable=("$db" "$db-wal")
	chattr +i "${immutable[@]}"
}
readonly_off() {
	chattr -i "${immutable[@]}" && immutable=()
}
if touch "$work/attr" && chattr +i "$work/attr" 2>/dev/null; then
	chattr -i "$work/attr"
	check "read-only database files (chattr +i): /readyz 503 store_unavailable, then 200 when writable" \
		fault_cycle "the files are read-only" readonly_on readonly_off
else
	echo "# skipped: read-only files need chattr +i (CAP_LINUX_IMMUTABLE on a filesystem that has it)"
fi

# ---- disk full ------------------------------------------------------------------------
# The store moves to a 2 MB tmpfs mounted in the daemon's own mount
# namespace (gone with the daemon); the test fills and empties it there.
in_daemon_ns() { nsenter -t "$daemon" -m -- "$@"; }
full_on() { in_daemon_ns dd if=/dev/zero of="$work/full/filler" bs=64k 2>/dev/null; in_daemon_ns test -s "$work/full/filler"; }
full_off() { in_daemon_ns rm -f "$work/full/filler"; }
if [ "$(id -u)" = 0 ] && unshare --mount --propagation private true 2>/dev/null && command -v nsenter >/dev/null; then
	stop_daemon
	check "the daemon stops cleanly after the faults" test $? -eq 0
	mkdir -p "$work/full"
	sed -i "s|path = \"$db\"|path = \"$work/full/credsign.db\"|" "$conf"
	DAEMON_WRAP=(unshare --mount --propagation private
		sh -c 'mount -t tmpfs -o size=2m,mode=0700,uid=$1,gid=$2 tmpfs "$0" && shift 2 && exec "$@"' "$work/full" "$(id -u "$SERVICE_USER")" "$(id -g "$SERVICE_USER")")
	start_daemon || exit 1
	DAEMON_WRAP=()
	check "disk full (tmpfs): /readyz 503 store_unavailable, then 200 when space returns" \
		fault_cycle "the disk is full" full_on full_off
else
	echo "# skipped: disk full needs root to mount a tmpfs in a private mount namespace"
fi

stop_daemon
check "the daemon stops cleanly" test $? -eq 0
finish
