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
 *  - a profile's signature and its audit entry commit together (the
 *    record carries the entry's seq and ts); signatures are never changed;
 *  - the key lifecycle: pending -> active -> retired, compromised from any
 *    state, destroyed a mark on a retired or compromised key; one active
 *    signing key at most per signing profile (and one certificate key):
 *    activating one retires the other of its profile, each change an
 *    audit entry, in the same transaction; a retired or compromised key
 *    never becomes active again; each event records its time (the time of
 *    its audit entry), actor and ceremony on the key;
 *  - a ceremony is executed once, inside one write transaction that
 *    re-checks it open and unexpired and applies its action; of
 *    concurrent executions one wins; its steps (approvals, execution)
 *    are judged and dated at the latest of the caller's time, the time
 *    the write lock was obtained and the newest audit entry's ts, so a
 *    clock set back revives no expired ceremony;
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

/* Open the write connection (and a reader of its own) on the store a
 * target names (cs_store_connect; either backend: two connections of a
 * PostgreSQL store's pool); write_timeout_ms bounds each write from
 * submission to commit. */
cs_err cs_ledger_connect(const cs_store_target *target, int write_timeout_ms, cs_ledger **out)
	__attribute__((warn_unused_result));
/* The same on the SQLite store at path (tests, tools of one file). */
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
/* Record a signing key with a status (active, retired, ...) by kid (kept
 * for compatibility: start-up uses cs_ledger_key_bootstrap, transitions
 * cs_ledger_ceremony_execute). At most one key is active: activating one
 * retires the others, each with an entry like audit (action key.retire,
 * object its kid). The key's activated_at / retired_at / compromised_at
 * are the times of those entries (without audit: when the write lock was
 * obtained), _by audit's actor (NULL without audit). *changed says whether
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
/* ---- the key lifecycle, ceremonies, revocations (issue 14) ------------------
 * Input is validated (CS_E_INVALID_ARG, logged): ids, names and URIs
 * non-empty text without control characters; times RFC 3339 UTC with
 * milliseconds (2026-11-23T10:00:00.123Z, the one form, so that they
 * compare as text); JSON where JSON is said. Refusals (409, 403, 404, 410)
 * write nothing and are not logged here: the caller reports and audits
 * them (cs_ledger_audit_append). */

/* Record a key generated in the token as pending (key: kid, uri, jwk_json
 * (a JSON object; its kid, if any, this kid), label, cka_id (lowercase
 * hex), created_by, profile (NULL: a certificate key; else a profile name,
 * kept for good); other fields ignored). CS_E_KEY_EXISTS when the kid is
 * recorded. Audit: the caller's entry (key.generate). */
cs_err cs_ledger_key_add_pending(cs_ledger *l, const cs_key_info *key, cs_audit_entry *audit);
/* Bootstrap: when the store never had an active key of key->profile (NULL:
 * certificate keys; keys of other profiles do not count), record key (kid,
 * uri, jwk_json, label/cka_id optional, profile) active, activated_by
 * actor; *changed 1. When a key of that profile is or was active: nothing
 * written, *changed 0, CS_OK. A retired/compromised kid: CS_E_KEY_FORBIDDEN;
 * a kid recorded under another profile (or as a certificate key when
 * key->profile is set, and the reverse): CS_E_KEY_FORBIDDEN. The caller's
 * audit entry (key.activate) is appended only when changed. A pending
 * record of the kid is activated as it is (its uri, label, ...); an
 * unrecorded key is recorded with key's fields. */
cs_err cs_ledger_key_bootstrap(cs_ledger *l, const cs_key_info *key, const char *actor, int *changed,
			       cs_audit_entry *audit);
/* Register the key's X.509 chain (x5c JSON array, leaf first, of padded
 * standard base64; NULL removes). CS_E_NOT_FOUND: no such kid. Audit: the
 * caller's entry. */
cs_err cs_ledger_key_set_chain(cs_ledger *l, const char *kid, const char *x5c_json, cs_audit_entry *audit);

/* Record a new open ceremony (all fields of c but state/executed_*;
 * reason may be NULL, params_json NULL is stored as {}; expires_at after
 * created_at). CS_E_CONFLICT: the id exists. */
cs_err cs_ledger_ceremony_create(cs_ledger *l, const cs_ceremony_record *c, cs_audit_entry *audit);
/* Add an approval: CS_E_NOT_FOUND (no ceremony), CS_E_CEREMONY_CLOSED (not
 * open), CS_E_CONFLICT (this fingerprint or this officer name approved it
 * already), CS_E_CEREMONY_EXPIRED (expired at the approval's time: an
 * approval of an expired ceremony could never count). The approval's time
 * is the latest of a->approved_at, the time the write lock was obtained,
 * the newest audit entry's ts and the ceremony's latest approval: it is
 * recorded as approved_at and as audit's ts (audit->ts says it after the
 * call; without audit it is not returned). The caller checked the officer
 * and signature before. */
cs_err cs_ledger_ceremony_approve(cs_ledger *l, const cs_approval_record *a, cs_audit_entry *audit);

typedef struct {
	const char *ceremony_id;     /* must be open: else CS_E_CEREMONY_CLOSED;
	                                expires_at < at: CS_E_CEREMONY_EXPIRED */
	const char *action;          /* activate | retire | compromise | destroy | revoke | purge */
	const char *subject;         /* kid; cert id for revoke; "" for purge */
	const char *expected_active; /* activate: the kid active (among the keys of the subject's
	                                profile) when the rollover was signed, NULL none;
	                                another active now: CS_E_CONFLICT */
	const char *rollover_json;   /* activate: the rollover statement, stored in key_rollovers */
	const char *reason;          /* revoke: the reason */
	const char *at, *actor;      /* execution time (RFC 3339) and who executed */
	const char *result_json;     /* kept on the ceremony */
} cs_ceremony_exec;
/* Execute in ONE write transaction: re-check the ceremony open and not
 * expired, apply the action under the lifecycle rules (activate: subject
 * pending, else CS_E_KEY_FORBIDDEN for retired/compromised, CS_E_CONFLICT
 * already active; the previous active key of the subject's profile (or of
 * the certificate keys) retired with retired_ceremony, other profiles'
 * keys untouched; the
 * rollover stored; retire/compromise/destroy as above; revoke: the
 * certificate exists (CS_E_NOT_FOUND) and is not revoked (CS_E_CONFLICT);
 * purge: only marks executed, the caller purged before), append an audit
 * entry per key change (key.activate, key.retire, key.compromise,
 * key.destroy, cert.revoke; actor x->actor, object the kid/cert id) and the
 * caller's audit entry (ceremony.execute), mark the ceremony executed. On
 * any refusal nothing is written (the caller audits the refusal with
 * cs_ledger_audit_append).
 * Details: the execution's time is the latest of x->at, the time the
 * write lock was obtained, the newest audit entry's ts (the head read in
 * the transaction) and the ceremony's latest approval: expiry is judged at
 * it (a stale time or a clock set back does not extend a ceremony), and it
 * is the executed_at recorded, the time of every entry written and
 * audit->ts after the call; executed_at is never before an approval. x->action
 * and x->subject must be the ceremony's (else CS_E_INVALID_ARG); retire of
 * a retired key, compromise of a compromised one, destroy of a destroyed
 * one: CS_E_CONFLICT; retire of a compromised key, destroy of a pending or
 * active one: CS_E_KEY_FORBIDDEN; no such key or certificate:
 * CS_E_NOT_FOUND. The per-change entries are copies of audit (node, role,
 * request) with their action, object, actor x->actor and the execution's
 * time; the key's event times and revoked_at are those entries' times.
 * Without audit, nothing is audited and the times are the execution's. revoke:
 * the reason is x->reason, else the ceremony's (none: CS_E_INVALID_ARG). */
cs_err cs_ledger_ceremony_execute(cs_ledger *l, const cs_ceremony_exec *x, cs_audit_entry *audit);
/* Revoke without a ceremony (ceremony.revoke_quorum 1): same rules; the
 * audit entry written is audit with action cert.revoke, object cert_id,
 * actor actor and time at (raised like any ts: revoked_at is its time);
 * audit is completed with its seq and ts. reason: required. */
cs_err cs_ledger_cert_revoke(cs_ledger *l, const char *cert_id, const char *reason, const char *at,
			     const char *actor, cs_audit_entry *audit);

/* ---- signatures of the signing profiles (issue 15) -------------------------- */

typedef struct {
	cs_signature_record *record; /* NULL: a refusal, only its audit entry */
	cs_audit_entry *audit;       /* required; completed with seq and ts */
	cs_err result;               /* out: CS_OK written; else why (other jobs go on) */
} cs_ledger_sign_job;
/* All jobs in ONE write transaction (each in its own savepoint, group
 * committed like any write): the audit entry appended (its ts raised like
 * any entry's), then (record != NULL) record->audit_seq = audit->seq,
 * record->created_at = audit->ts, the row inserted. A job that fails (e.g.
 * CS_E_CONFLICT: its id recorded already; CS_E_NO_ACTIVE_KEY: the record's
 * key was compromised meanwhile, its entry not written either: the caller
 * discards the signature and writes the item's refusal in another call)
 * rolls back alone, its result says why, the others go on. Returns CS_OK when the transaction committed
 * (each job's result says whether it was written); else the transaction's
 * failure: nothing written, every result set to it. n 0: CS_OK, nothing
 * done; jobs NULL with n > 0, a job without audit: CS_E_INVALID_ARG. */
cs_err cs_ledger_signatures_put(cs_ledger *l, cs_ledger_sign_job *jobs, size_t n) __attribute__((warn_unused_result));

/* Append an audit entry alone. */
cs_err cs_ledger_audit_append(cs_ledger *ledger, cs_audit_entry *audit) __attribute__((warn_unused_result));
/* Claim server.node_id for this running instance, or renew the claim
 * (cs_store_node_claim in a write of its own, at now): CS_E_CONFLICT when
 * another instance renewed it less than live_ms ago, with *holder
 * (malloc'd, the caller frees; NULL when memory ran out) saying who; else
 * *holder NULL. Nothing is audited. */
cs_err cs_ledger_node_claim(cs_ledger *ledger, const char *node_id, const char *instance, const char *host,
			    int64_t pid, int64_t live_ms, char **holder) __attribute__((warn_unused_result));
/* Give the claim up (a clean stop): this instance's row is made stale (as
 * renewed at the epoch), so the next start of the node claims at once. A
 * row another instance holds is left as it is (CS_E_CONFLICT). */
#define CS_LEDGER_NODE_RELEASE_LIVE_MS 1000
cs_err cs_ledger_node_release(cs_ledger *ledger, const char *node_id, const char *instance, const char *host,
			      int64_t pid);
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
