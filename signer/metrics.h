/*
 * metrics: the daemon's counters and histograms, rendered in the
 * Prometheus text exposition format (version 0.0.4) for GET /metrics.
 *
 *   credsign_requests_total{route,code}            counter
 *   credsign_request_duration_seconds{route}        histogram
 *   credsign_token_calls_total{function,result}      counter (result ok|error)
 *   credsign_token_call_duration_seconds{function}   histogram
 *   credsign_store_commits_total, credsign_store_commit_duration_seconds,
 *   credsign_store_commit_batch_size                 commits (group commit)
 *   credsign_audit_entries_total                     counter
 *   credsign_connections{state}                      gauge (handshaking|authenticated)
 *   credsign_connections_evicted_total, credsign_connections_timed_out_total,
 *   credsign_tls_handshakes_failed_total
 *   credsign_signing_key_info{kid}                   gauge, 1 for the active key
 *   credsign_jwks_keys_withheld_total                counter: recorded keys without a warrant
 *                                                    the JWKS left out (app.h), once per kid
 *   credsign_process_restarts_total{process}         counter (key|network): counted by the
 *                                                    supervisor, in the shared mapping
 *
 * Routes, status codes and token functions are fixed sets (unknown ones
 * count as "other"), so the output is bounded whatever clients send.
 * Recording is lock-free (relaxed atomics) and safe from any thread; the
 * process has one set of metrics (cs_metrics_reset() for tests).
 * cs_metrics_share() moves them into a shared anonymous mapping before the
 * supervisor forks (privsep.h): the key process records the PKCS#11 calls,
 * the network process the requests, and GET /metrics shows both. The
 * counters only count; no process decides anything on them.
 */
#ifndef CS_METRICS_H
#define CS_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "cs_error.h"

/* Put the metrics in memory shared with the processes forked after. */
cs_err cs_metrics_share(void);

/* A request answered: route name (see metrics.c; unknown -> "other"),
 * status and duration. */
void cs_metrics_request(const char *route, int status, uint64_t duration_ns);
/* A PKCS#11 call: function name ("C_Sign"), duration, return value. */
void cs_metrics_token_call(const char *function, uint64_t duration_ns, unsigned long rv);
/* A store commit of batch_size jobs. */
void cs_metrics_commit(uint64_t duration_ns, unsigned batch_size);
void cs_metrics_audit_entry(void);
/* An audit entry cs_audit_record could not write (audit.h): its request
 * was refused with 503, or the event is only in the log. */
void cs_metrics_audit_entry_failed(void);
/* A recorded key the JWKS leaves out for want of a warrant (once per kid). */
void cs_metrics_key_withheld(void);
/* The supervisor started a key or network process again (privsep.h). */
typedef enum { CS_METRICS_KEY_PROCESS = 0, CS_METRICS_NETWORK_PROCESS = 1 } cs_metrics_process;
void cs_metrics_process_restart(cs_metrics_process process);

/* Values read when rendering. */
typedef struct {
	int handshaking, authenticated;
	long evicted, timed_out;
	long handshakes_failed;
	const char *active_kid; /* NULL when unknown */
	/* the credential inventory (issue 19, every project): records by
	 * state, current records past their rotation due date and due within
	 * inventory.due_soon_days; left out unless inventory_known */
	int inventory_known;
	int64_t inventory_current, inventory_superseded, inventory_revoked;
	int64_t inventory_overdue, inventory_due_soon;
} cs_metrics_gauges;

/* The exposition text (malloc'd, NUL-terminated) into *out. */
cs_err cs_metrics_render(const cs_metrics_gauges *gauges, char **out)
	__attribute__((warn_unused_result));
void cs_metrics_reset(void);

#endif
