/*
 * notify: systemd's service notifications (sd_notify(3), libsystemd) for
 * credsignd run as a Type=notify unit with WatchdogSec.
 *
 * systemd passes NOTIFY_SOCKET (and, with WatchdogSec, WATCHDOG_USEC and
 * WATCHDOG_PID) in the environment. Without NOTIFY_SOCKET every call here
 * does nothing: the daemon started by hand, by the tests or by another
 * supervisor behaves as before. The environment is left as it is.
 *
 * The server's main thread (cs_server_run, the one that takes signals with
 * sigtimedwait) is the only caller, in this order:
 *   cs_notify_init()      reads the watchdog interval (sd_watchdog_enabled);
 *   cs_notify_ready()     "READY=1" and "STATUS=<text>", once the workers
 *                         run (the listener, bound earlier, is accepting)
 *                         and daemon.start is recorded; never before; and
 *                         again after a SIGHUP reload;
 *   cs_notify_reloading() "RELOADING=1" (with MONOTONIC_USEC) before the
 *                         SIGHUP reload of the TLS context and access rules;
 *   cs_notify_stopping()  "STOPPING=1" and a STATUS when SIGTERM/SIGINT
 *                         arrives, before the drain;
 *   cs_notify_watchdog()  "WATCHDOG=1" once half the watchdog interval has
 *                         passed since the last one (the first at once),
 *                         then shortens the main loop's wait so that the
 *                         next one is not late. Called at the top of each
 *                         turn of the main loop, so only while it runs:
 *                         none before READY=1 (systemd arms the watchdog
 *                         when start-up completes) and none after
 *                         STOPPING=1 (systemd stops it then; the drain is
 *                         bounded by 10 s and TimeoutStopSec).
 *
 * What WATCHDOG=1 proves: the main thread came round its loop within the
 * interval, so signals are taken (reload, stop) and the periodic work it
 * does (signed audit checkpoints, refusal summaries, session pruning)
 * finishes; a main thread stuck in any of them (a token that never answers
 * a checkpoint's signature, a store lock never released) stops the pings
 * and systemd kills and restarts the daemon. So WatchdogSec must exceed
 * the token's worst signature time. What it does not prove: that the
 * worker threads serve requests (a worker loop wedged on a slow token, or
 * every worker dead, leaves the pings going), that the token answers
 * between checkpoints, or that clients can complete a TLS handshake; the
 * /healthz and /readyz probes (api.h) answer those from outside.
 *
 * A message that cannot be sent is logged (a warning, once) and otherwise
 * ignored: notification never stops the daemon.
 */
#ifndef CS_NOTIFY_H
#define CS_NOTIFY_H

#include <stdint.h>
#include <time.h>

typedef struct {
	uint64_t ping_usec;   /* half of WATCHDOG_USEC; 0: no watchdog */
	uint64_t last_ping;   /* CLOCK_MONOTONIC, microseconds; 0: none yet */
	int warned;           /* a failed send was logged */
} cs_notify;

void cs_notify_init(cs_notify *n);
void cs_notify_ready(cs_notify *n, const char *status_fmt, ...) __attribute__((format(printf, 2, 3)));
void cs_notify_reloading(cs_notify *n);
void cs_notify_stopping(cs_notify *n, const char *status_fmt, ...) __attribute__((format(printf, 2, 3)));
/* WATCHDOG=1 when due; *wait (the main loop's sigtimedwait timeout) is
 * shortened to the time left until the next one is due. */
void cs_notify_watchdog(cs_notify *n, struct timespec *wait);

#endif
