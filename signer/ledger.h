/*
 * ledger: every write of the appliance, and the rules writes follow, above
 * store.h (storage stores; the ledger decides), so that any backend keeps
 * them:
 *  - audit entries get seq = last + 1 and their chain hashes
 *    (audit_chain.h) inside the write transaction, from the head read once
 *    per transaction; ts is the caller's, or the time the write lock was
 *    obtained, raised to the previous entry's ts when earlier (a clock
 *    stepped back, a time taken before waiting): ts never decreases along
 *    seq;
 *  - a session is certified once: its claim and its certificate and audit
 *    entry commit together, and of concurrent claims one wins;
 *  - one active signing key: activating one retires the others, each
 *    retirement an audit entry, in the same transaction; a retired or
 *    compromised key never becomes active again;
 *  - the audit log is append-only: no path updates or deletes entries but
 *    the purge, behind a signed purge checkpoint; checkpoints never overlap
 *    (re-checked inside the write transaction: another process may have
 *    recorded one while this one signed);
 *  - the write deadline: a write not committed within write_timeout_ms of
 *    its submission fails with CS_E_STORE, and is never committed later.
 *
 * Group commit. cs_ledger_start() starts one writer thread that owns the
 * write connection. Callers, on any thread, submit a write and block until
 * the transaction holding it committed (CS_OK: durable) or failed. The
 * writer takes every write waiting, takes the write lock once, applies each
 * inside its own savepoint (one that fails, e.g. a session certified
 * meanwhile, rolls back alone), commits (one fsync for all) and wakes them:
 * the batch grows with concurrency by itself. Without cs_ledger_start
 * (credsign-admin, the daemon's start-up) each call is a batch of one run
 * by the caller. Thread-safe either way.
 *
 * Write health (for /readyz): the outcome of the last write transaction and
 * its time, as cs_ledger_write_health() reports it.
 *
 * Audit entries passed in are completed by the call: seq and ts are set to
 * what was (or would have been) written; ts then points into the entry's
 * own ts_buf. The other fields are only read, during the call.
 */
#ifndef CS_LEDGER_H
#define CS_LEDGER_H

#include <stdint.h>

#include "audit_chain.h"
#include "cs_error.h"
#include "store.h"

typedef struct cs_ledger cs_ledger;

/* Open the write connection (and a reader of its own) on the store at
 * path; write_timeout_ms bounds each write from submission to commit. */
cs_err cs_ledger_open(const char *path, int write_timeout_ms, cs_ledger **out)
	__attribute__((warn_unused_result));
/* Start the writer thread (group commit); signals stay blocked in it. */
cs_err cs_ledger_start(cs_ledger *ledger) __attribute__((warn_unused_result));
/* Commit what was submitted, stop the writer, close. */
void cs_ledger_close(cs_ledger *ledger);

/* ---- writes (durable when CS_OK returns) ------------------------------------ */

/* Store a generation session and its audit entry (may be NULL). */
cs_err cs_ledger_session_put(cs_ledger *ledger, const cs_gen_session *session, cs_audit_entry *audit)
	__attribute__((warn_unused_result));
/* Certify: claim the session for cert_id, store the certificate (its JWS
 * is the one copy of its claims) and the audit entry, together. If the
 * session was certified meanwhile (a concurrent request won), nothing is
 * stored and CS_E_SESSION_USED is returned. */
cs_err cs_ledger_certify(cs_ledger *ledger, const char *session_id, const char *cert_id, const char *kid,
			 const char *jws, int64_t created_ms, cs_audit_entry *audit)
	__attribute__((warn_unused_result));
/* Record a signing key with a status (active, retired, ...) by kid. At most
 * one key is active: activating one retires the others, each with an entry
 * like audit (action key.retire, object its kid). *changed says whether
 * anything changed; only then is audit (when given) appended. A retired or
 * compromised key never becomes active (or pending) again: that put is
 * refused with CS_E_KEY_FORBIDDEN (logged, naming the kid, its state and
 * since when), nothing is written, no audit entry either (the caller that
 * refuses to go on, e.g. the daemon's start-up, says why; the store stays
 * as it was). A retired key may still become compromised. */
cs_err cs_ledger_key_put(cs_ledger *ledger, const char *kid, const char *uri, const char *jwk_json,
			 const char *status, int *changed, cs_audit_entry *audit)
	__attribute__((warn_unused_result));
/* Whether kid may be put with status under the rule above, as the store
 * stands (no lock is kept): CS_OK when it may (not recorded, or its state
 * allows it), CS_E_KEY_FORBIDDEN when not, with why = "key KID is STATE
 * (since TS)" (TS: its newest key.retire or key.compromise audit entry's
 * time), or another error. Nothing is logged. _refusal reads on the
 * caller's connection (--check-config), _check on the ledger's reader. */
cs_err cs_ledger_key_refusal(cs_store *reader, const char *kid, const char *status, char *why, size_t why_len)
	__attribute__((warn_unused_result));
cs_err cs_ledger_key_check(cs_ledger *ledger, const char *kid, const char *status, char *why, size_t why_len)
	__attribute__((warn_unused_result));
/* Append an audit entry alone. */
cs_err cs_ledger_audit_append(cs_ledger *ledger, cs_audit_entry *audit) __attribute__((warn_unused_result));
/* Delete the sessions never certified whose expiry is before
 * expired_before_ms (their generate entries stay in the audit log;
 * certified sessions stay: certificates reference them). */
cs_err cs_ledger_sessions_prune(cs_ledger *ledger, int64_t expired_before_ms, int64_t *removed)
	__attribute__((warn_unused_result));

/* Signs a checkpoint payload (cs_audit_sign_checkpoint with its signer);
 * *jws is malloc'd. Called outside any transaction: the token may be slow
 * and must not hold the write lock. */
typedef cs_err (*cs_checkpoint_sign_fn)(void *arg, int64_t first_seq, int64_t last_seq,
					const uint8_t head_hash[32], const char *ts, const char *node,
					const char *kind, char **jws);
/* Sign and record a checkpoint (kind periodic or stop) over the entries no
 * checkpoint covers yet (first_seq one past the last seq any checkpoint
 * covers). The head is read and signed, then re-checked and the checkpoint
 * inserted in one write transaction; if another writer (credsign-admin
 * audit purge beside the daemon) recorded a checkpoint meanwhile, it starts
 * over from the new head (a few times), or stops when that one covers the
 * entries. *first and *last (either may be NULL): the range recorded, 0
 * when there was nothing to cover. */
cs_err cs_ledger_checkpoint_make(cs_ledger *ledger, const char *node, const char *kind,
				 cs_checkpoint_sign_fn sign, void *sign_arg, int64_t *first, int64_t *last)
	__attribute__((warn_unused_result));
/* Purge the entries older than cutoff_ts (RFC 3339) behind a signed purge
 * checkpoint over first_seq (the oldest entry kept so far) .. boundary:
 * read, signed, then re-checked, the checkpoint inserted and the entries
 * deleted in one write transaction; if the log's start moved meanwhile it
 * starts over. *first and *boundary: the range purged, 0 when nothing was
 * old enough. */
cs_err cs_ledger_audit_purge(cs_ledger *ledger, const char *cutoff_ts, const char *node,
			     cs_checkpoint_sign_fn sign, void *sign_arg, int64_t *first, int64_t *boundary)
	__attribute__((warn_unused_result));
/* The same, never past entry max_seq (credsign-admin: the last entry the
 * checkpoint its cutoff was measured against signs; entries no checkpoint
 * signs yet stay). */
cs_err cs_ledger_audit_purge_through(cs_ledger *ledger, const char *cutoff_ts, int64_t max_seq, const char *node,
				     cs_checkpoint_sign_fn sign, void *sign_arg, int64_t *first,
				     int64_t *boundary) __attribute__((warn_unused_result));

/* Whether writes succeed (for /readyz): CS_OK or CS_E_STORE. When a write
 * transaction ended less than max_age_ms ago, its outcome answers (no write
 * per probe under load): committed with a change is success, a failure in
 * the database (an error, the lock held past the deadline) failure, a
 * refusal (409) neither. Otherwise a probe write (one row of the
 * store_probe table) is made like any write and its outcome answers. */
#define CS_LEDGER_READY_MAX_AGE_MS 1000
cs_err cs_ledger_write_health(cs_ledger *ledger, int max_age_ms);

/* ---- reads with the rules applied (on the caller's own connection) --------- */

/* The claims of a session that cert_sha256 may certify at now_ms: it must
 * exist (CS_E_NOT_FOUND), belong to cert_sha256 (CS_E_FORBIDDEN), not be
 * certified (CS_E_SESSION_USED) nor expired (CS_E_SESSION_EXPIRED).
 * *claims_json is malloc'd. No lock is held afterwards: signing, which may
 * wait on the token, happens outside any transaction. */
cs_err cs_ledger_session_claims(cs_store *reader, const char *session_id, const char *cert_sha256,
				int64_t now_ms, char **claims_json) __attribute__((warn_unused_result));
/* A certificate: its JWS and its claims, the JWS's payload as signed
 * (compact JSON with sorted keys); both malloc'd. */
cs_err cs_ledger_cert_get(cs_store *reader, const char *cert_id, char **jws, char **claims_json)
	__attribute__((warn_unused_result));

/* ---- figures ---------------------------------------------------------------- */

#define CS_LEDGER_BATCH_BUCKETS 8 /* batch sizes <= 1, 2, 4, ..., 64, more */
typedef struct {
	uint64_t batches;  /* write transactions ended */
	uint64_t commits;  /* of which committed */
	uint64_t jobs;     /* writes applied in those transactions */
	uint64_t max_batch;
	uint64_t batch_size[CS_LEDGER_BATCH_BUCKETS];
	double commit_seconds; /* total time of the transactions, from asking for the lock to the end */
	uint64_t queued;       /* writes waiting now */
	uint64_t running;      /* writes in the transaction being made now (writer thread) */
} cs_ledger_stats;
void cs_ledger_get_stats(cs_ledger *ledger, cs_ledger_stats *out);

#endif
