/*
 * store: durable state of the appliance behind one interface: storage
 * only. What the rows mean and the rules writes follow (audit seq, ts and
 * chain hashes, one certificate per session, one active signing key,
 * append-only audit, write deadlines, group commit) live above it, in
 * ledger.h; a backend persists and reads back.
 *
 * Holds generation sessions (parameters and the credential's commitment,
 * never the credential; the claims only until certified), compliance
 * certificates (the one copy of what was signed: the JWS, its payload
 * kept decoded), signing-key metadata and the audit log with its signed
 * checkpoints. The embedded backend is SQLite (store_sqlite.c: WAL,
 * synchronous=FULL, triggers refusing updates and deletes of the audit log
 * as defence in depth); another backend implements this same header.
 *
 * Each cs_store is one connection for one thread; open one per thread. The
 * schema is versioned and migrated by cs_store_open (serialized by the
 * database itself); a schema newer than the program is CS_E_STORE_SCHEMA.
 *
 * Writes happen inside a write transaction only: cs_store_write_begin()
 * ... cs_store_write_end(), on every path (write_end also ends a write
 * whose begin failed), optionally split into savepoints that roll back
 * alone. A write transaction is bounded in time by its deadline: waiting
 * for the write lock and every statement until it ends. Reads outside a
 * transaction see the latest commit; cs_store_read_begin/end give several
 * reads one snapshot.
 *
 * Errors: CS_E_STORE when the database cannot do its part (also past the
 * deadline, and a NULL where the schema forbids one), CS_E_NOMEM (also
 * when the database cannot produce a column's text), CS_E_NOT_FOUND. Text
 * handed to callbacks is never NULL unless the field is optional, and
 * valid only during the callback.
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
/* Open an existing store for reading only: nothing is created, migrated
 * or written (credsignd --check-config). A store of another schema
 * version is refused (CS_E_STORE, logged). */
cs_err cs_store_open_existing_readonly(const char *path, cs_store **out) __attribute__((warn_unused_result));
void cs_store_close(cs_store *store);
/* A cheap query that proves the database answers (for /readyz). */
cs_err cs_store_ping(cs_store *store);

/* ---- transactions -------------------------------------------------------- */

/* Take the write lock and begin a write transaction. deadline_ms
 * (CLOCK_MONOTONIC milliseconds; 0 = none) bounds the wait for the lock and
 * every statement until the transaction ends. Whatever it returns, end
 * with cs_store_write_end. */
cs_err cs_store_write_begin(cs_store *store, int64_t deadline_ms) __attribute__((warn_unused_result));
/* End the write transaction: commit when r is CS_OK (durable when CS_OK
 * returns), else roll back (never interrupted by the deadline); the
 * deadline is disarmed. Returns r, or the commit's failure. */
cs_err cs_store_write_end(cs_store *store, cs_err r);
/* Inside a write transaction: a savepoint, ended by cs_store_savepoint_end:
 * kept when r is CS_OK, else everything since the savepoint is undone and
 * the transaction goes on. Returns CS_OK when the savepoint ended so, else
 * the failure (then the transaction must be rolled back). */
cs_err cs_store_savepoint(cs_store *store) __attribute__((warn_unused_result));
cs_err cs_store_savepoint_end(cs_store *store, cs_err r);
/* One snapshot for several reads (outside a write transaction). */
cs_err cs_store_read_begin(cs_store *store) __attribute__((warn_unused_result));
void cs_store_read_end(cs_store *store);
/* Rows this connection has inserted, changed or deleted since it opened
 * (whether a write changed anything). */
int64_t cs_store_changes(cs_store *store);

/* ---- sessions and certificates (writes: inside a write transaction) ---- */

/* A session and, until it is certified, its claims. */
cs_err cs_store_session_insert(cs_store *store, const cs_gen_session *session)
	__attribute__((warn_unused_result));
/* A session as stored; the strings are malloc'd (cs_session_row_free).
 * A certified session's claims are "": the certificate holds them. */
typedef struct {
	char *cert_sha256;
	int64_t expires_ms;
	int certified;
	char *claims_json;
} cs_session_row;
cs_err cs_store_session_get(cs_store *store, const char *session_id, cs_session_row *row)
	__attribute__((warn_unused_result));
void cs_session_row_free(cs_session_row *row);
/* Mark a session certified by cert_id if no certificate claimed it yet,
 * in one conditional statement: *claimed says whether this call did (0:
 * already certified, or no such session). Then the session's claims are
 * deleted: the certificate holds them. */
cs_err cs_store_session_claim(cs_store *store, const char *session_id, const char *cert_id,
			      int *claimed) __attribute__((warn_unused_result));
/* A certificate (a compact JWS) as stored: header "." BASE64URL(claims)
 * "." signature, with the payload kept decoded, the claims as signed. */
typedef struct {
	const char *header_b64;    /* the JWS's first part */
	const char *claims_json;   /* its payload, decoded */
	const char *signature_b64; /* its third part */
} cs_cert_parts;
cs_err cs_store_cert_insert(cs_store *store, const char *cert_id, const char *session_id,
			    const char *kid, const cs_cert_parts *cert, int64_t created_ms)
	__attribute__((warn_unused_result));
/* A stored certificate; the strings are malloc'd (cs_cert_row_free). */
typedef struct {
	char *header_b64, *claims_json, *signature_b64;
} cs_cert_row;
cs_err cs_store_cert_get(cs_store *store, const char *cert_id, cs_cert_row *row);
void cs_cert_row_free(cs_cert_row *row);
/* Delete the sessions never certified whose expiry is before
 * expired_before_ms; *removed counts them. */
cs_err cs_store_sessions_delete_expired(cs_store *store, int64_t expired_before_ms, int64_t *removed)
	__attribute__((warn_unused_result));
/* Record the write probe (for readiness): one row, upserted. */
cs_err cs_store_probe_write(cs_store *store, int64_t now_ms) __attribute__((warn_unused_result));

/* ---- signing keys --------------------------------------------------------- */

/* Insert a key, or set the status and URI of the key with this kid. */
cs_err cs_store_key_upsert(cs_store *store, const char *kid, const char *uri, const char *jwk_json,
			   const char *status) __attribute__((warn_unused_result));
cs_err cs_store_key_set_status(cs_store *store, const char *kid, const char *status)
	__attribute__((warn_unused_result));
/* Every key ever recorded, oldest first. */
typedef void (*cs_key_row_fn)(void *arg, const char *kid, const char *jwk_json, const char *status,
			      const char *created_at);
cs_err cs_store_keys_each(cs_store *store, cs_key_row_fn fn, void *arg);
/* Every key ever recorded, oldest first, with the times of its key events
 * as the audit log still holds them: activated, the newest key.activate
 * that succeeded, and retired, the newest key.retire or key.compromise
 * (NULL when none is kept: never happened, or purged). The strings live
 * during the call. */
typedef struct {
	const char *kid, *uri, *status, *created_at;
	const char *activated_at, *retired_at; /* NULL: not in the audit log */
} cs_key_info;
typedef void (*cs_key_info_fn)(void *arg, const cs_key_info *key);
cs_err cs_store_keys_info(cs_store *store, cs_key_info_fn fn, void *arg) __attribute__((warn_unused_result));

/* ---- audit log (see audit_chain.h for entries and the chain) ------------- */

/* The newest entry's seq, entry_hash and ts; CS_E_NOT_FOUND when the log is
 * empty. ts[32]: longer never comes from this store (a longer value is
 * CS_E_STORE). */
cs_err cs_store_audit_last(cs_store *store, int64_t *seq, uint8_t hash[32], char ts[32]);
/* Insert an entry whose seq, ts and hashes are fixed. */
cs_err cs_store_audit_insert(cs_store *store, const cs_audit_entry *entry, const uint8_t prev_hash[32],
			     const uint8_t entry_hash[32]) __attribute__((warn_unused_result));
/* Entry seq's hash; *found 0 when there is no such entry. */
cs_err cs_store_audit_hash_at(cs_store *store, int64_t seq, uint8_t hash[32], int *found);
/* The oldest entry's seq, 0 when empty. */
cs_err cs_store_audit_first(cs_store *store, int64_t *first);
/* Delete the entries up to seq (the purge; the triggers allow only what a
 * purge checkpoint covers). */
cs_err cs_store_audit_delete_through(cs_store *store, int64_t seq) __attribute__((warn_unused_result));
/* The first seq written with ts ordered along seq (entries before it come
 * from versions that did not order ts; audit verify only warns of them). */
cs_err cs_store_audit_ts_ordered_from(cs_store *store, int64_t *seq);
typedef int (*cs_audit_row_fn)(void *arg, const cs_audit_entry *entry, const uint8_t prev_hash[32],
			       const uint8_t entry_hash[32]);
/* Entries with seq >= from_seq in order, at most limit (0 = all); the
 * callback returns non-zero to stop. */
cs_err cs_store_audit_each(cs_store *store, int64_t from_seq, int64_t limit, cs_audit_row_fn fn,
			   void *arg);
/* The last entry older than cutoff_ts (RFC 3339) with its hash, and the
 * oldest entry's seq; *boundary = 0 when nothing is that old. */
cs_err cs_store_audit_purge_boundary(cs_store *store, const char *cutoff_ts, int64_t *first_seq,
				     int64_t *boundary, uint8_t hash[32]);

/* ---- audit checkpoints ------------------------------------------------------ */

cs_err cs_store_checkpoint_insert(cs_store *store, int64_t first_seq, int64_t last_seq,
				  const uint8_t head_hash[32], const char *ts, const char *node,
				  const char *kind, const char *jws) __attribute__((warn_unused_result));
/* The last seq any checkpoint covers, 0 when none. */
cs_err cs_store_checkpointed(cs_store *store, int64_t *covered);
/* The newest purge checkpoint's last_seq and head_hash; CS_E_NOT_FOUND if
 * none. */
cs_err cs_store_purge_base(cs_store *store, int64_t *last_seq, uint8_t head_hash[32]);
/* The newest checkpoint's JWS (malloc'd); CS_E_NOT_FOUND if none. */
cs_err cs_store_checkpoint_latest(cs_store *store, char **jws);
typedef int (*cs_checkpoint_row_fn)(void *arg, int64_t first_seq, int64_t last_seq,
				    const uint8_t head_hash[32], const char *ts, const char *node,
				    const char *kind, const char *jws);
/* Every checkpoint, in the order recorded; fn returns non-zero to stop. */
cs_err cs_store_checkpoints_each(cs_store *store, cs_checkpoint_row_fn fn, void *arg);
/* The checkpoints with min_last <= last_seq <= max_last, by last_seq (ties
 * in the order recorded), read through the last_seq index: what a page of
 * the export or the purge's clock check needs without reading them all. */
cs_err cs_store_checkpoints_range(cs_store *store, int64_t min_last, int64_t max_last, cs_checkpoint_row_fn fn,
				  void *arg);

#endif
