/* notify: see notify.h. */
#include "notify.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#include "cs_log.h"

static uint64_t now_usec(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

/* sd_notify returns 0 without NOTIFY_SOCKET, > 0 once sent */
static void sent(cs_notify *n, int r, const char *what)
{
	if (r < 0 && !n->warned) {
		n->warned = 1;
		cs_log_warn("systemd notification %s not sent: %s (further failures not logged)", what,
			    strerror(-r));
	}
}

/* one line of status text: vsnprintf, cut, line breaks made spaces */
__attribute__((format(printf, 3, 0))) static void status_text(char *buf, size_t len, const char *fmt,
							      va_list ap)
{
	int k = vsnprintf(buf, len, fmt, ap);
	if (k < 0)
		buf[0] = '\0';
	for (char *p = buf; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

void cs_notify_init(cs_notify *n)
{
	uint64_t usec = 0;
	memset(n, 0, sizeof(*n));
	/* > 0: WATCHDOG_USEC set (and WATCHDOG_PID, if set, is ours) */
	int r = sd_watchdog_enabled(0, &usec);
	if (r > 0 && usec >= 2) {
		n->ping_usec = usec / 2;
		cs_log_info("systemd watchdog: WATCHDOG=1 every %llu ms from the main loop",
			    (unsigned long long)(n->ping_usec / 1000));
	} else if (r < 0) {
		cs_log_warn("systemd watchdog: WATCHDOG_USEC not understood (%s); no watchdog", strerror(-r));
	}
}

void cs_notify_ready(cs_notify *n, const char *status_fmt, ...)
{
	char status[256];
	va_list ap;
	va_start(ap, status_fmt);
	status_text(status, sizeof(status), status_fmt, ap);
	va_end(ap);
	sent(n, sd_notifyf(0, "READY=1\nSTATUS=%s", status), "READY=1");
}

void cs_notify_reloading(cs_notify *n)
{
	/* MONOTONIC_USEC: what systemd >= 253 expects with RELOADING=1 */
	sent(n,
	     sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading (SIGHUP)",
			(unsigned long long)now_usec()),
	     "RELOADING=1");
}

void cs_notify_stopping(cs_notify *n, const char *status_fmt, ...)
{
	char status[256];
	va_list ap;
	va_start(ap, status_fmt);
	status_text(status, sizeof(status), status_fmt, ap);
	va_end(ap);
	sent(n, sd_notifyf(0, "STOPPING=1\nSTATUS=%s", status), "STOPPING=1");
}

void cs_notify_watchdog(cs_notify *n, struct timespec *wait)
{
	if (n->ping_usec == 0)
		return;
	uint64_t now = now_usec();
	if (n->last_ping == 0 || now - n->last_ping >= n->ping_usec) {
		sent(n, sd_notify(0, "WATCHDOG=1"), "WATCHDOG=1");
		n->last_ping = now;
	}
	uint64_t left = n->last_ping + n->ping_usec - now;
	uint64_t wait_usec = (uint64_t)wait->tv_sec * 1000000u + (uint64_t)wait->tv_nsec / 1000u;
	if (left < wait_usec) {
		wait->tv_sec = (time_t)(left / 1000000u);
		wait->tv_nsec = (long)(left % 1000000u) * 1000;
	}
}
