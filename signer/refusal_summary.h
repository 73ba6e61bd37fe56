/*
 * refusal_summary: refused TLS handshakes of peers whose certificate did
 * not verify, counted instead of audited one by one.
 *
 * Anyone can present a self-signed certificate naming any identity; an
 * audit entry (and an fsync) per such handshake would let an
 * unauthenticated peer grow the retained audit log without bound. So these
 * refusals are counted per (source address, reason) and written as one
 * audit entry per key and interval (audit.refusal_summary_seconds):
 *
 *   action "tls.handshake.refusals", outcome "refused", actor "unverified",
 *   role "unverified", error_code the verification reason, object
 *   "src=ADDR count=N first=TS last=TS claimed=NAME,NAME,NAME (+K naming others)"
 *
 * The claimed names (the first 3 distinct per key, each cut at 64 bytes
 * and sanitised to printable ASCII; K counts the refusals that named
 * another) are what the certificates said, never verified. The table holds at most CS_REFUSAL_KEYS keys; refusals beyond
 * it are counted under the source "*". So each interval adds at most
 * CS_REFUSAL_KEYS + 1 entries, whatever the flood.
 *
 * Certificates our CA did issue (revoked, expired, wrong usage) name a real
 * client, but TLS 1.3 verifies the chain before the peer proves it holds
 * the key: anyone can replay such a certificate (the server's own, a
 * revoked one). So the server audits the first refusal of each
 * (certificate, reason) per interval as an entry of its own
 * (cs_refusal_summary_first) and counts the rest here like any other.
 *
 * Thread-safe: workers add, the server's timer thread flushes.
 */
#ifndef CS_REFUSAL_SUMMARY_H
#define CS_REFUSAL_SUMMARY_H

#include <stdint.h>

#include "cs_error.h"

#define CS_REFUSAL_KEYS 256

typedef struct cs_refusal_summary cs_refusal_summary;

cs_err cs_refusal_summary_new(cs_refusal_summary **out) __attribute__((warn_unused_result));
void cs_refusal_summary_free(cs_refusal_summary *s);
/* Count one refusal. Returns 1 when it is the first of its key in the
 * current interval (worth a log line), else 0. */
int cs_refusal_summary_add(cs_refusal_summary *s, const char *source, const char *reason,
			   const char *claimed_name);

/* 1 when this is the first refusal of (cert_sha256, reason) since the last
 * flush (audit it individually), else 0. At most CS_REFUSAL_KEYS pairs are
 * remembered per interval; beyond them the answer is 0. */
int cs_refusal_summary_first(cs_refusal_summary *s, const char *cert_sha256, const char *reason);

/* One summarised key, as handed to the flush callback. */
typedef struct {
	const char *source, *reason;
	int64_t count;
	const char *first_ts, *last_ts;
	const char *object; /* the "src=... count=..." text above */
} cs_refusal_row;
/* Hand every key counted since the last flush to fn and empty the table.
 * Returns the number of refusals flushed. A key whose fn call fails
 * (returns non-zero) is kept for the next flush. */
typedef int (*cs_refusal_flush_fn)(void *arg, const cs_refusal_row *row);
int64_t cs_refusal_summary_flush(cs_refusal_summary *s, cs_refusal_flush_fn fn, void *arg);

#endif
