#!/usr/bin/env bash
# The systemd unit's confinement, without a running systemd
# (docs/hardening.md): the template hsm-setup/credsignd.service is filled in
# the way hsm-setup/install-production fills it, then
#  - `systemd-analyze security --offline=yes` accepts it (no parse warning)
#    and its overall exposure is at most MAX_EXPOSURE: the level recorded in
#    docs/hardening.md plus 0.3, a guard against a setting lost or weakened;
#  - it is a Type=notify service with a watchdog (WatchdogSec=, not 0),
#    notifications from the service's processes only (NotifyAccess=all: the
#    network process, not the supervisor, is ready and pings the watchdog),
#    seccomp(2) allowed (each process installs its own allowlist) and an
#    unlimited RLIMIT_MEMLOCK (hardening.mlock);
#  - it runs as the key account (User=, Group=, the network account's group
#    as SupplementaryGroups=), never root, with exactly CAP_SETUID,
#    CAP_SETGID and CAP_SETPCAP (bounding and ambient: the supervisor
#    switches the network process to server.user), the system calls of
#    that switch allowed back after ~@privileged, and no StateDirectory=
#    (the store is the network account's).
# Exits 77 (skipped, ctest SKIP_RETURN_CODE) when systemd-analyze, or its
# --offline mode (systemd 250 and later), is missing.
#
#   unit_test.sh SOURCE_DIR
set -euo pipefail
src=${1:?usage: unit_test.sh SOURCE_DIR}
# docs/hardening.md: 2.0 on systemd 252 (Debian 12); other systemd versions
# weigh other settings and may need this revisited
MAX_EXPOSURE=2.3

if ! command -v systemd-analyze > /dev/null; then
	echo "SKIP: systemd-analyze not found (apt-get install systemd)"
	exit 77
fi
if ! systemd-analyze security --help 2>&1 | grep -q -- --offline; then
	echo "SKIP: this systemd-analyze has no 'security --offline' (systemd >= 250)"
	exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
fail() {
	echo "FAIL: $*"
	failed=1
}

# ---- fill in the template as install-production does (its step 6) ---------------
user=credsign group=credsign key_user=credsign-key key_group=credsign-key prefix=/usr
unit=$tmp/credsignd.service
sed -e "/^[[:space:]]*#/!{s|@KEYUSER@|$key_user|g; s|@KEYGROUP@|$key_group|g;" \
	-e "s|@USER@|$user|g; s|@GROUP@|$group|g; s|@SBINDIR@|$prefix/sbin|g;" \
	-e "s|@DOCDIR@|$prefix/share/doc/credsign|g;}" "$src/hsm-setup/credsignd.service" > "$unit"
if grep -n '@[A-Z][A-Z]*@' "$unit"; then
	fail "a placeholder is left in the filled-in unit"
fi
# the same expressions as install-production's (a change there shows here)
# shellcheck disable=SC2016 # the script's text, not expanded here
if ! grep -qF 's|@KEYUSER@|$key_user|g; s|@KEYGROUP@|$key_group|g;' "$src/hsm-setup/install-production" ||
	! grep -qF 's|@USER@|$user|g; s|@GROUP@|$group|g; s|@SBINDIR@|$prefix/sbin|g;' \
	"$src/hsm-setup/install-production" ||
	! grep -qF 's|@DOCDIR@|$prefix/share/doc/credsign|g;' "$src/hsm-setup/install-production"; then
	fail "install-production fills in the template differently from this test: update the test"
fi

settings() { grep -vE '^[[:space:]]*(#|;|$)' "$unit"; }

# ---- systemd-analyze security --offline=yes ----------------------------------------
if ! (cd "$tmp" && systemd-analyze security --offline=yes --no-pager credsignd.service) \
	> "$tmp/security.out" 2> "$tmp/security.err"; then
	cat "$tmp/security.out" "$tmp/security.err"
	fail "systemd-analyze security --offline=yes failed"
fi
# systemd only warns about an unknown or invalid setting and goes on without it
if grep -Ei "unknown|ignoring|invalid|failed to parse|not valid" "$tmp/security.err"; then
	fail "systemd-analyze does not accept every setting of the unit"
fi
level=$(sed -n 's/^.*Overall exposure level for credsignd\.service: \([0-9][0-9]*\.[0-9]\).*$/\1/p' \
	"$tmp/security.out")
if [ -z "$level" ]; then
	cat "$tmp/security.out"
	fail "no overall exposure level in the output"
elif awk -v l="$level" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(l > m) }'; then
	grep '✗' "$tmp/security.out" || true
	fail "overall exposure $level, more than $MAX_EXPOSURE (docs/hardening.md records the level and each exposed item)"
else
	echo "overall exposure $level (at most $MAX_EXPOSURE)"
fi

# ---- readiness and watchdog ------------------------------------------------------------
settings | grep -qx 'Type=notify' || fail "the unit is not Type=notify"
settings | grep -qx 'NotifyAccess=all' || fail "the unit does not let the network process notify (NotifyAccess=all)"
settings | grep -qx 'SystemCallFilter=seccomp' || fail "the unit does not allow seccomp(2) for the daemon's own filters"
settings | grep -qx 'LimitMEMLOCK=infinity' || fail "the unit does not allow locking memory (LimitMEMLOCK=infinity)"
# ---- the two accounts -------------------------------------------------------------------
settings | grep -qx "User=$key_user" || fail "the unit does not run as the key account (User=$key_user)"
settings | grep -qx "Group=$key_group" || fail "the unit's group is not the key account's (Group=$key_group)"
settings | grep -qx "SupplementaryGroups=$group" ||
	fail "the key account does not read /etc/credsign through the network account's group (SupplementaryGroups=$group)"
settings | grep -qE '^(User|Group)=(root|0)?$' && fail "the unit runs as root"
caps='CAP_SETUID CAP_SETGID CAP_SETPCAP CAP_KILL'
[ "$(settings | grep '^CapabilityBoundingSet=')" = "CapabilityBoundingSet=$caps" ] ||
	fail "the bounding set is not exactly $caps"
[ "$(settings | grep '^AmbientCapabilities=')" = "AmbientCapabilities=$caps" ] ||
	fail "the ambient set is not exactly $caps"
# the switch's calls are allowed back after the line that removes them
filters=$(settings | sed -n 's/^SystemCallFilter=//p')
after=$(printf '%s\n' "$filters" | sed -n '/^~@privileged/,$p' | tail -n +2)
printf '%s\n' "$after" | grep -qx '@setuid capset' ||
	fail "setresuid/setgroups/capset are not allowed back after ~@privileged (SystemCallFilter=@setuid capset)"
settings | grep -q '^StateDirectory' && fail "StateDirectory= would give the store to the key account"
settings | grep -qx 'ReadWritePaths=/var/lib/credsign' || fail "the store is not writable (ReadWritePaths=/var/lib/credsign)"

wd=$(settings | sed -n 's/^WatchdogSec=//p' | tail -n 1)
case $wd in
'' | 0 | 0s | infinity) fail "the unit has no watchdog (WatchdogSec='$wd')" ;;
esac

[ "$failed" -eq 0 ] && echo "systemd unit: ok"
exit "$failed"
