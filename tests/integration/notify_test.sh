#!/usr/bin/env bash
# systemd notification (signer/notify.h): credsignd started as a Type=notify
# unit with WatchdogSec would be, with NOTIFY_SOCKET and WATCHDOG_USEC set
# and notify_listener.py playing systemd's side of the socket. READY=1 only
# once the daemon listens and answers /healthz; WATCHDOG=1 every half
# interval from the main loop; RELOADING=1 then READY=1 around SIGHUP;
# STOPPING=1 at SIGTERM and no ping after it. Without NOTIFY_SOCKET the
# daemon starts, reloads and stops as before.
#
#   notify_test.sh BUILD_DIR STATE_DIR SOFTHSM_MODULE
BUILD=${1:?}
STATE=${2:?}
SOFTHSM=${3:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
unset NOTIFY_SOCKET WATCHDOG_USEC WATCHDOG_PID # whatever runs the tests
it_token notify || exit 1

# 1. no NOTIFY_SOCKET: nothing changes (it_setup waited for /healthz)
it_setup notify || exit 1
healthz() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 $(client operator) "$url/healthz")" = 200 ]; }
kill -HUP "$daemon"
check "without NOTIFY_SOCKET: SIGHUP reloads" wait_for_log "SIGHUP: client CA and CRL reloaded"
check "  /healthz answers after the reload" healthz
check "  SIGTERM stops it with status 0" stop_daemon
check "  no systemd line in its log" bash -c "! grep -i 'systemd' '$log'"

# 2. NOTIFY_SOCKET and WATCHDOG_USEC set, as systemd sets them
sock=$work/notify.sock
if [ ${#sock} -gt 100 ]; then # sun_path holds 108 bytes
	sock=$(mktemp -d /tmp/credsign-notify.XXXXXX)/notify.sock
fi
events=$work/notify.jsonl
log=$work/credsignd-notify.log
read -r -a client_args <<< "$(client operator)"
/usr/bin/python3 "$(dirname "$0")/notify_listener.py" "$sock" "$events" "$log" \
	curl -s -o /dev/null -w '%{http_code}' --max-time 5 "${client_args[@]}" "$url/healthz" > "$work/listener.out" &
pids+=($!)
for _ in $(seq 50); do grep -q ready "$work/listener.out" 2>/dev/null && break; sleep 0.1; done
# WATCHDOG_PID as systemd sets it: the main process (the supervisor); the
# network process, which pings, is another
DAEMON_WRAP=(sh -c 'WATCHDOG_PID=$$ exec "$@"' sh)
NOTIFY_SOCKET=$sock WATCHDOG_USEC=2000000 start_daemon || { finish; exit 1; }
DAEMON_WRAP=()
sleep 4.5 # READY=1, then 4 s of pings (and /healthz probed at READY)

# analyse CHECK: python over the recorded events; exits 0 when CHECK holds
analyse() {
	python3 - "$events" "$1" <<'PY'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
msgs = [e for e in ev if "msg" in e]
def has(e, line): return line in e["msg"]
ready = [e for e in msgs if has(e, "READY=1")]
pings = [e["t"] for e in msgs if has(e, "WATCHDOG=1")]
state = [e for e in msgs if not has(e, "WATCHDOG=1")]
what = sys.argv[2]
if what == "ready":
    ok = len(ready) >= 1 and any(l.startswith("STATUS=listening on ") for l in ready[0]["msg"])
elif what == "ready-after-listening":
    ok = [e["ready_log_listening"] for e in ev if "ready_log_listening" in e] == [True]
elif what == "ready-healthz":
    ok = [e["ready_healthz"] for e in ev if "ready_healthz" in e] == ["200"]
elif what == "no-ping-before-ready":
    ok = len(ready) >= 1 and all(t >= ready[0]["t"] for t in pings)
elif what == "pings":
    t0 = ready[0]["t"]
    window = [t for t in pings if t0 <= t <= t0 + 4.0]
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    gaps.sort()
    median = gaps[len(gaps) // 2] if gaps else 0
    print(f"  {len(window)} pings in the 4 s after READY=1; gaps median {median:.3f} s, max {max(gaps or [0]):.3f} s")
    # every WATCHDOG_USEC/2 = 1 s; never as late as WATCHDOG_USEC
    ok = len(window) >= 3 and 0.8 <= median <= 1.3 and max(gaps) < 1.9
elif what == "reload":
    seq = ["READY=1" if has(e, "READY=1") else "RELOADING=1" if has(e, "RELOADING=1") else "?" for e in state]
    print("  state messages:", seq)
    rel = [e for e in state if has(e, "RELOADING=1")]
    ok = seq == ["READY=1", "RELOADING=1", "READY=1"] and \
        any(l.startswith("MONOTONIC_USEC=") for l in rel[0]["msg"]) and \
        any("SIGHUP reload: TLS reloaded, access rules reloaded" in l for l in state[2]["msg"])
elif what == "ping-after-reload":
    ok = any(t > state[-1]["t"] for t in pings)
elif what == "stopping":
    ok = len(state) == 4 and has(state[3], "STOPPING=1") and \
        any(l.startswith("STATUS=signal 15: draining") for l in state[3]["msg"])
elif what == "no-ping-after-stopping":
    stop = [e["t"] for e in state if has(e, "STOPPING=1")]
    ok = bool(stop) and all(t < stop[0] for t in pings)
else:
    ok = False
sys.exit(0 if ok else 1)
PY
}

check "READY=1 with STATUS=listening on ..." analyse ready
check "  sent after the \"listening on\" log line" analyse ready-after-listening
check "  /healthz answers 200 when READY=1 arrives" analyse ready-healthz
check "  no WATCHDOG=1 before READY=1" analyse no-ping-before-ready
check "  the daemon logs the watchdog interval" wait_for_log "systemd watchdog: WATCHDOG=1 every 1000 ms"
check "WATCHDOG=1 about every WATCHDOG_USEC/2 (at least 3 in 4 s, none 2 s late)" analyse pings

kill -HUP "$daemon"
wait_for_log "SIGHUP: client CA and CRL reloaded"
sleep 1.5
check "SIGHUP: RELOADING=1 (with MONOTONIC_USEC), then READY=1 with the outcome" analyse reload
check "  WATCHDOG=1 goes on after the reload" analyse ping-after-reload
check "  /healthz answers after the reload" healthz

check "SIGTERM stops it with status 0" stop_daemon
sleep 0.3 # the listener polls every 0.1 s
check "  STOPPING=1 with STATUS=signal 15: draining ..." analyse stopping
check "  no WATCHDOG=1 after STOPPING=1" analyse no-ping-after-stopping
check "  no failed notification logged" bash -c "! grep -q 'not sent' '$log'"
if [ "$failed" -gt 0 ]; then
	echo "--- notifications:"
	cat "$events"
fi
finish
