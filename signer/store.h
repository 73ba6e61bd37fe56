/*
 * store: durable state of the appliance behind one interface.
 *
 * Holds generation sessions (parameters and the credential's commitment,
 * never the credential), compliance certificates and signing-key metadata.
 * The embedded backend is SQLite (store_sqlite.c: WAL, synchronous=FULL);
 * another backend implements this same header.
 *
 * Each cs_store is one connection for one thread; open one per worker. The
 * schema is versioned and migrated by cs_store_open (serialized by the
 * database itself). Every write is committed durably before the call
 * returns CS_OK, and every write ends its transaction and its deadline
 * whatever the outcome (a failed write never leaves state behind on the
 * connection). Errors: CS_E_STORE when the database cannot do its part
 * (also a NULL where the schema forbids one), CS_E_NOMEM (also when SQLite
 * cannot produce a column's text), CS_E_NOT_FOUND, and the session errors
 * documented below. Text handed to callbacks is never NULL unless the
 * field is optional.
 *
 * Write health: the outcome of the last write transaction (committed, or
 * failed in the database: disk full, read-only file, lock held past the
 * write timeout) and its time are shared by every connection of the
 * process to the same database file; cs_store_write_health() reads it for
 * readiness.
 */
#ifndef CS_STORE_H
#define CS_STORE_H

#include <stdint.h>

#include "audit_chain.h"
#include "cs_error.h"

typedef struct cs_store cs_store;

#define CS_ID_MAX 64
#define CS_SHA256_HEX 65

typedef struct {
	char id[CS_ID_MAX];
	int64_t created_ms;
	int64_t expires_ms;
	char cert_sha256[CS_SHA256_HEX]; /* the client certificate that generated */
	const char *claims_json;         /* certificate claims known at generation */
} cs_gen_session;

cs_err cs_store_open(const char *path, cs_store **out) __attribute__((warn_unused_result));
void cs_store_close(cs_store *store);
/* A cheap query that proves the database answers (for /readyz). */
cs_err cs_store_ping(cs_store *store);

/* Whether writes succeed (for /readyz): CS_OK or CS_E_STORE. When any
 * connection of this process finished a write transaction on this database
 * less than max_age_ms ago, that outcome answers (no write per probe under
 * load); otherwise a probe write is made and committed (one row of the
 * store_probe table, bounded by the write timeout like any write) and its
 * outcome answers and is recorded. */
#define CS_STORE_READY_MAX_AGE_MS 1000
cs_err cs_store_write_health(cs_store *store, int max_age_ms);

/* Bound the time a write may wait for the database (busy timeout) and run
 * (statement progress), in milliseconds. */
void cs_store_set_write_timeout(cs_store *store, int ms);

/* Store a generation session and its audit entry in one transaction. */
cs_err cs_store_session_put(cs_store *store, const cs_gen_session *session, cs_audit_entry *audit)
	__attribute__((warn_unused_result));

/* The claims of a session that cert_sha256 may certify at now_ms: it must
 * exist (CS_E_NOT_FOUND), belong to cert_sha256 (CS_E_FORBIDDEN), not be
 * certified (CS_E_SESSION_USED) nor expired (CS_E_SESSION_EXPIRED).
 * *claims_json is malloc'd. No lock is held afterwards: signing, which may
 * wait on the token, happens outside any transaction. */
cs_err cs_store_session_claims(cs_store *store, const char *session_id, const char *cert_sha256,
			       int64_t now_ms, char **claims_json) __attribute__((warn_unused_result));
/* Store a certificate for a session and mark the session certified, in one
 * transaction, committed before CS_OK. If the session was certified
 * meanwhile (a concurrent request won), nothing is stored and
 * CS_E_SESSION_USED is returned. */
cs_err cs_store_cert_put(cs_store *store, const char *session_id, const char *cert_id,
			 const char *kid, const char *jws, const char *claims_json, int64_t now_ms,
			 cs_audit_entry *audit) __attribute__((warn_unused_result));

/* Delete the sessions never certified whose expiry is before
 * expired_before_ms (they hold a commitment only; their generate entries
 * stay in the audit log). Certified sessions stay: certificates reference
 * them. A pruned session id answers CS_E_NOT_FOUND afterwards. */
cs_err cs_store_sessions_prune(cs_store *store, int64_t expired_before_ms, int64_t *removed);

/* A stored certificate; *jws and *claims_json are malloc'd. */
cs_err cs_store_cert_get(cs_store *store, const char *cert_id, char **jws, char **claims_json);

/* Signing keys: record (or update the status of) a key by kid. At most one
 * key is active: activating one retires the one before. *changed says
 * whether anything changed; then the audit entry (if any) is appended in
 * the same transaction. */
cs_err cs_store_key_put(cs_store *store, const char *kid, const char *uri, const char *jwk_json,
			const char *status, int *changed, cs_audit_entry *audit)
	__attribute__((warn_unused_result));
/* Every key ever recorded, oldest first. */
typedef void (*cs_key_row_fn)(void *arg, const char *kid, const char *jwk_json, const char *status,
			      const char *created_at);
cs_err cs_store_keys_each(cs_store *store, cs_key_row_fn fn, void *arg);

/* ---- audit log (append-only; see audit_chain.h for the hash chain) ---- */

/* Every function that appends an entry (audit_append, and session_put,
 * cert_put and key_put with an entry) assigns its seq and fixes its ts
 * inside the write transaction, so ts never decreases along seq: ts is the
 * caller's (when set) or the time the write lock was obtained (when NULL),
 * raised to the previous entry's ts when earlier (a clock stepped back, or
 * a time taken before waiting for the lock). Afterwards, whatever the
 * outcome, audit->seq and audit->ts hold what was (or would have been)
 * written; audit->ts then points into the connection and stays valid until
 * its next append. */

/* Append an entry in its own transaction. The entry is durable when CS_OK
 * returns. */
cs_err cs_store_audit_append(cs_store *store, cs_audit_entry *audit) __attribute__((warn_unused_result));
/* The first seq written with ts ordered as above (entries before it come
 * from versions that did not order ts; audit verify only warns of them). */
cs_err cs_store_audit_ts_ordered_from(cs_store *store, int64_t *seq);
/* The newest entry's seq and hash (0 and the chain base when empty), and
 * the last seq covered by a checkpoint (a snapshot: see checkpoint_make). */
cs_err cs_store_audit_head(cs_store *store, int64_t *last_seq, uint8_t hash[32],
			   int64_t *checkpointed_seq);

/* Signs a checkpoint payload (cs_audit_sign_checkpoint with its signer);
 * *jws is malloc'd. Called outside any transaction: the token may be slow
 * and must not hold the write lock. */
typedef cs_err (*cs_checkpoint_sign_fn)(void *arg, int64_t first_seq, int64_t last_seq,
					const uint8_t head_hash[32], const char *ts, const char *node,
					const char *kind, char **jws);
/* Sign and record a checkpoint (kind periodic or stop) over the entries no
 * checkpoint covers yet: first_seq is one past the last seq any checkpoint
 * covers. The head is read, signed, then re-checked and the checkpoint
 * inserted in one write transaction: if another connection or process
 * (credsign-admin audit purge beside the daemon) recorded a checkpoint
 * meanwhile, nothing is inserted and it starts over from the new head
 * (a few times), so checkpoints never overlap. *first and *last (either
 * may be NULL) are the range recorded, 0 when there was nothing to cover. */
cs_err cs_store_checkpoint_make(cs_store *store, const char *node, const char *kind,
				cs_checkpoint_sign_fn sign, void *sign_arg, int64_t *first, int64_t *last)
	__attribute__((warn_unused_result));
/* The newest checkpoint's JWS (malloc'd); CS_E_NOT_FOUND if none. */
cs_err cs_store_checkpoint_latest(cs_store *store, char **jws);

typedef int (*cs_audit_row_fn)(void *arg, const cs_audit_entry *entry, const uint8_t prev_hash[32],
			       const uint8_t entry_hash[32]);
/* Entries with seq >= from_seq in order, at most limit (0 = all); the
 * callback returns non-zero to stop. */
cs_err cs_store_audit_each(cs_store *store, int64_t from_seq, int64_t limit, cs_audit_row_fn fn,
			   void *arg);
typedef int (*cs_checkpoint_row_fn)(void *arg, int64_t first_seq, int64_t last_seq,
				    const uint8_t head_hash[32], const char *ts, const char *node,
				    const char *kind, const char *jws);
cs_err cs_store_checkpoints_each(cs_store *store, cs_checkpoint_row_fn fn, void *arg);

/* Retention: the last entry older than cutoff_ts (RFC 3339), with its hash;
 * *boundary = 0 when nothing is old enough (a preview: see audit_purge). */
cs_err cs_store_audit_purge_boundary(cs_store *store, const char *cutoff_ts, int64_t *first_seq,
				     int64_t *boundary, uint8_t hash[32]);
/* Purge the entries older than cutoff_ts behind a signed purge checkpoint
 * over first_seq (the oldest entry kept so far) .. boundary. The boundary
 * is read, signed, then re-checked and the checkpoint inserted and the
 * entries deleted in one write transaction (the append-only triggers allow
 * deleting only what a purge checkpoint covers); if the log's start moved
 * meanwhile (another purge) it starts over. *first and *boundary are the
 * range purged, 0 when nothing was old enough. */
cs_err cs_store_audit_purge(cs_store *store, const char *cutoff_ts, const char *node,
			    cs_checkpoint_sign_fn sign, void *sign_arg, int64_t *first,
			    int64_t *boundary) __attribute__((warn_unused_result));


#endif
