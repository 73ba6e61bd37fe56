/*
 * store: durable state of the appliance behind one interface: storage
 * only. What the rows mean and the rules writes follow (audit seq, ts and
 * chain hashes, one certificate per session, one active signing key per
 * profile, append-only audit, write deadlines, group commit) live above
 * it, in ledger.h; a backend persists and reads back.
 *
 * Holds generation sessions (parameters and the credential's commitment,
 * never the credential; the claims only until certified), compliance
 * certificates (the one copy of what was signed: the JWS, its payload
 * kept decoded), the signatures made for signing profiles, signing keys
 * (the certificates' or a profile's) and their lifecycle, dual-control
 * ceremonies with their approvals, key rollover statements, certificate
 * revocations, the node ids in use and the audit log with its signed
 * checkpoints. Two backends implement it (store_backend.h): SQLite, embedded,
 * one node (store_sqlite.c: WAL, synchronous=FULL), and PostgreSQL, shared by
 * several nodes (store_pg*.c: every write transaction serialised by one
 * advisory lock, so the ledger's rules hold across nodes as they do across
 * SQLite's single writer). Both refuse updates and deletes of the audit log
 * and the other append-only records in the schema, as defence in depth.
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

#include <stddef.h>
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

/* ---- where the store is ----------------------------------------------------
 * A target names the backend and how to reach it (conf.h fills one from the
 * store group; the strings stay the caller's). SQLite: one file, path.
 * PostgreSQL: a database shared by every node (docs/deployment.md), reached
 * with libpq; the password, when one is needed, read from password_file at
 * each connection and wiped, never kept in a string of the configuration.
 * Each cs_store is still one connection for one thread; pool_size caps how
 * many one process opens (CS_E_STORE beyond, logged naming the cap). */
typedef enum { CS_STORE_SQLITE = 0, CS_STORE_POSTGRESQL = 1 } cs_store_backend;
typedef struct {
	cs_store_backend backend;
	const char *path; /* sqlite: the database file */
	/* postgresql */
	const char *conninfo;      /* libpq keyword/value string or URI, without a password */
	const char *sslmode;       /* NULL: verify-full */
	const char *ca_file;       /* sslrootcert; NULL: libpq's default (~/.postgresql/root.crt) */
	const char *password_file; /* the password alone (first line); NULL: none, or libpq's passfile */
	const char *application_name; /* NULL: "credsignd" (the node id, for pg_stat_activity) */
	int statement_timeout_ms;  /* every statement outside a write's deadline; 0: none */
	int connect_timeout_s;     /* each connection attempt (and reconnect); 0: 10 */
	int pool_size;             /* connections this process may open at once; 0: no cap */
	/* the group role the migrations grant a node's rights to (SELECT,
	 * INSERT; UPDATE and DELETE only where the ledger changes rows, never
	 * on the audit log or another append-only table); NULL: credsign_node */
	const char *node_role;
} cs_store_target;

/* Open (create, migrate) the store a target names; the same contract as
 * cs_store_open below, for either backend. A PostgreSQL connection that
 * breaks (a restart, a failover) fails the call in progress (CS_E_STORE;
 * a write transaction open on it is lost, never half-committed) and is
 * made again at the next call, so the daemon recovers by itself. */
cs_err cs_store_connect(const cs_store_target *target, cs_store **out) __attribute__((warn_unused_result));
/* As cs_store_open_existing_readonly, for either backend. */
cs_err cs_store_connect_existing_readonly(const cs_store_target *target, cs_store **out)
	__attribute__((warn_unused_result));
/* The setting a failed connection of this thread points at (the
 * PostgreSQL backend: "store.postgresql.password_file" after a refused
 * password, ".ca_file" after a certificate that does not verify, else
 * ".connection"); NULL when none failed. For --check-config's report. */
const char *cs_store_failure_setting(void);
/* What messages call the store: the SQLite path, or
 * "postgresql://USER@HOST:PORT/DBNAME" (never a password), written into buf
 * (truncated to size), which is returned. */
const char *cs_store_target_name(const cs_store_target *target, char *buf, size_t size);

/* Open (create, migrate) a store. Every open, this one and the read-only
 * one, checks the schema's guards: the unique index of the one active key
 * (per signing profile, and of the certificate keys) and the triggers that
 * refuse changes to the key lifecycle, a key's profile, ceremonies,
 * approvals, rollovers, revocations and signatures. One missing or not as the
 * migrations made it (dropped or replaced outside credsign) refuses the
 * store: CS_E_STORE, logged as "store PATH tampered or damaged: trigger
 * NAME missing" (or altered). The audit log's own triggers are left to
 * its hash chain and signed checkpoints (audit verify reads a log whose
 * triggers were removed). */
cs_err cs_store_open(const char *path, cs_store **out) __attribute__((warn_unused_result));
/* Open an existing store for reading only: nothing is created, migrated
 * or written (credsignd --check-config). A store of another schema
 * version is refused (CS_E_STORE, logged), and one whose guards are not
 * all there (as cs_store_open). */
cs_err cs_store_open_existing_readonly(const char *path, cs_store **out) __attribute__((warn_unused_result));
void cs_store_close(cs_store *store);
/* A cheap query that proves the database answers (for /readyz). */
cs_err cs_store_ping(cs_store *store);
/* The database server's own clock (Unix ms, PostgreSQL's clock_timestamp()):
 * the one time every node sharing it can be compared with. CS_E_NOT_FOUND
 * for SQLite, which has no clock but the caller's. */
cs_err cs_store_clock(cs_store *store, int64_t *now_ms);
/* Check again, on an open store, the schema's guards its open checked (the
 * daemon's periodic check: one query). CS_OK: all there and as made, or the
 * backend checks them at open only (SQLite). A guard missing or altered:
 * CS_E_STORE with why[why_len] saying which ("store NAME tampered or
 * damaged: trigger T disabled"), not logged (the caller logs it once); the
 * store's own failure: CS_E_STORE logged, why "". */
cs_err cs_store_guards_check(cs_store *store, char *why, size_t why_len) __attribute__((warn_unused_result));

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
/* Every key ever recorded, oldest first (created_at, then kid), with its
 * lifecycle: each event's time, actor and ceremony as recorded when it
 * happened (NULL: it did not happen, or, for a key recorded before schema
 * 7, the audit log no longer held it when the store was migrated). The
 * strings live during the call. */
typedef struct {
	const char *kid, *uri, *status, *created_at;
	const char *activated_at, *retired_at; /* NULL: not known / not happened */
	const char *jwk_json, *label, *cka_id, *created_by;
	const char *activated_by, *activated_ceremony;
	const char *retired_by, *retired_ceremony;
	const char *compromised_at, *compromised_by, *compromised_ceremony;
	const char *destroyed_at, *destroyed_by, *destroyed_ceremony;
	const char *x5c_json; /* JSON array of base64 DER, leaf first */
	const char *profile;  /* the signing profile whose key it is; NULL: a
	                         certificate-signing key. Fixed once recorded. */
} cs_key_info;
typedef void (*cs_key_info_fn)(void *arg, const cs_key_info *key);
cs_err cs_store_keys_info(cs_store *store, cs_key_info_fn fn, void *arg) __attribute__((warn_unused_result));
/* One key; CS_E_NOT_FOUND. fn may be NULL (whether the kid is recorded). */
cs_err cs_store_key_info(cs_store *store, const char *kid, cs_key_info_fn fn, void *arg);

typedef struct {
	char *kid, *uri, *x5c_json; /* x5c_json NULL: none */
} cs_active_key;
/* The active key (malloc'd strings); CS_E_NOT_FOUND when no key is active;
 * CS_E_CONFLICT when several are (the schema forbids it: the store was
 * edited), *out empty, logged as "store: N keys are active" once on this
 * connection until one or none is active again. One lookup in the index
 * of the active key: cheap enough to poll every second. cs_active_key_free
 * frees and zeroes (NULL and twice: fine). */
cs_err cs_store_key_active(cs_store *store, cs_active_key *out) __attribute__((warn_unused_result));
/* The same for the keys of one signing profile (NULL: the certificate
 * keys; cs_store_key_active(s, out) is cs_store_key_active_in(s, NULL,
 * out)). One active key per profile: the schema's rule, the conflict and
 * its log line ("store: N keys of profile P are active") as above. */
cs_err cs_store_key_active_in(cs_store *store, const char *profile, cs_active_key *out)
	__attribute__((warn_unused_result));
void cs_active_key_free(cs_active_key *key);
/* Whether the store ever had an active certificate key (a key active,
 * retired or compromised); _in: a key of that profile (NULL: certificate
 * keys, as cs_store_keys_ever_active). */
cs_err cs_store_keys_ever_active(cs_store *store, int *ever) __attribute__((warn_unused_result));
cs_err cs_store_keys_ever_active_in(cs_store *store, const char *profile, int *ever)
	__attribute__((warn_unused_result));

/* Key lifecycle writes (inside a write transaction; which transitions are
 * allowed is decided in ledger.c; the schema refuses a second active key,
 * a retired or compromised key made active again and an undone
 * destruction). */
/* Insert a key: kid, uri, jwk_json, status; label, cka_id, created_by,
 * activated_at/_by/_ceremony, profile may be NULL; other fields ignored.
 * CS_E_CONFLICT when the kid is recorded. */
cs_err cs_store_key_insert(cs_store *store, const cs_key_info *key) __attribute__((warn_unused_result));
typedef enum { CS_KEY_ACTIVATED, CS_KEY_RETIRED, CS_KEY_COMPROMISED, CS_KEY_DESTROYED } cs_key_event;
/* Record an event of a key: its status becomes active, retired or
 * compromised (destroyed: a mark, the status stays) with the event's time,
 * actor and ceremony (by, ceremony may be NULL). CS_E_NOT_FOUND: no kid. */
cs_err cs_store_key_event(cs_store *store, const char *kid, cs_key_event event, const char *at, const char *by,
			  const char *ceremony) __attribute__((warn_unused_result));
/* Set (x5c_json NULL: remove) a key's registered chain; CS_E_NOT_FOUND. */
cs_err cs_store_key_set_chain(cs_store *store, const char *kid, const char *x5c_json)
	__attribute__((warn_unused_result));

/* ---- ceremonies, rollovers, revocations ------------------------------------ */

typedef struct {
	const char *id, *action, *subject, *reason, *params_json, *nonce, *node;
	const char *created_at, *expires_at, *started_by, *canonical;
	const char *state;                                   /* open | executed */
	const char *executed_at, *executed_by, *result_json; /* NULL while open */
} cs_ceremony_record;
typedef struct {
	const char *ceremony_id, *officer, *fingerprint, *cert_pem, *sig_alg, *signature_b64;
	const char *approved_at, *approved_by;
} cs_approval_record;
typedef void (*cs_ceremony_fn)(void *arg, const cs_ceremony_record *c);
typedef void (*cs_approval_fn)(void *arg, const cs_approval_record *a);
/* One ceremony and its approvals (in the order recorded), read in one
 * snapshot; CS_E_NOT_FOUND. fn, afn may be NULL. */
cs_err cs_store_ceremony_get(cs_store *store, const char *id, cs_ceremony_fn fn, cs_approval_fn afn, void *arg);
/* Every ceremony, newest first (no approvals). */
cs_err cs_store_ceremonies_each(cs_store *store, cs_ceremony_fn fn, void *arg);
/* Writes (inside a write transaction). A new open ceremony (all fields
 * but state and executed_*; reason may be NULL): CS_E_CONFLICT when the id
 * exists. */
cs_err cs_store_ceremony_insert(cs_store *store, const cs_ceremony_record *c) __attribute__((warn_unused_result));
/* An approval: CS_E_CONFLICT when this fingerprint or this officer name
 * approved the ceremony already (a missing ceremony: CS_E_STORE). */
cs_err cs_store_approval_insert(cs_store *store, const cs_approval_record *a) __attribute__((warn_unused_result));
/* Mark an open ceremony executed, in one conditional statement:
 * CS_E_CEREMONY_CLOSED when it is not open (or not there). */
cs_err cs_store_ceremony_close(cs_store *store, const char *id, const char *at, const char *by,
			       const char *result_json) __attribute__((warn_unused_result));

typedef struct {
	const char *ceremony_id, *old_kid /* NULL: none */, *new_kid, *statement_json, *created_at;
} cs_rollover_record;
typedef void (*cs_rollover_fn)(void *arg, const cs_rollover_record *r);
/* Every rollover, oldest first. */
cs_err cs_store_rollovers_each(cs_store *store, cs_rollover_fn fn, void *arg);
/* Store a rollover statement (inside a write transaction); CS_E_CONFLICT
 * when the ceremony has one. */
cs_err cs_store_rollover_insert(cs_store *store, const cs_rollover_record *r) __attribute__((warn_unused_result));

typedef struct {
	const char *cert_id, *reason, *revoked_at, *revoked_by, *ceremony_id /* NULL */;
} cs_revocation_record;
typedef void (*cs_revocation_fn)(void *arg, const cs_revocation_record *r);
/* Every revocation, by revoked_at, cert_id. */
cs_err cs_store_revocations_each(cs_store *store, cs_revocation_fn fn, void *arg);
/* One certificate's revocation; CS_E_NOT_FOUND: not revoked. */
cs_err cs_store_revocation_get(cs_store *store, const char *cert_id, cs_revocation_fn fn, void *arg);
/* Changes to the revocations since the store was made: count and the
 * largest rowid (the daemon re-signs its list when these change). Two
 * index lookups: cheap enough to poll every second. */
cs_err cs_store_revocations_version(cs_store *store, int64_t *count, int64_t *last_rowid);
/* Whether a certificate exists (for revoke): CS_OK or CS_E_NOT_FOUND. */
cs_err cs_store_cert_exists(cs_store *store, const char *cert_id);
/* Whether a certificate signed by a key other than kid exists (CS_OK: one
 * does, CS_E_NOT_FOUND: none): a key claimed to be a store's first may not
 * follow certificates of another. Scans the certificates until it finds
 * one (only when the key in force changes). */
cs_err cs_store_cert_by_other_key(cs_store *store, const char *kid);
/* Whether the key kid is compromised (one primary-key read, for the
 * certification's transaction): *compromised 1 or 0; a kid not on record
 * is not. */
cs_err cs_store_key_compromised(cs_store *store, const char *kid, int *compromised);
/* Record a revocation (inside a write transaction; ceremony_id may be
 * NULL): CS_E_CONFLICT when the certificate is revoked already. A
 * revocation is final: never changed nor deleted. */
cs_err cs_store_revocation_insert(cs_store *store, const cs_revocation_record *r)
	__attribute__((warn_unused_result));

/* ---- the inventory (reads) ------------------------------------------------
 * The certificates as the credential register reads them: by the claims'
 * project, environment and system, which the schema indexes (derived from
 * the claims as stored; no policy here: states and due dates are
 * computed above the store, inventory.h). */
typedef struct {
	const char *cert_id;
	const char *project, *environment, *system; /* NULL: null in the claims */
	const char *claims_json;                    /* the claims as signed */
	int64_t created_ms;                         /* when stored */
	const char *revoked_at, *revocation_reason; /* NULL: not revoked */
} cs_inventory_row;
typedef int (*cs_inventory_row_fn)(void *arg, const cs_inventory_row *row);
/* The certificates whose project is project and environment environment
 * (NULL: any), ordered by project, environment, system (NULL first in
 * each), created_ms, cert_id, read in one snapshot through the index on
 * (project, environment, system, created_ms); fn returns non-zero to
 * stop. */
cs_err cs_store_inventory_each(cs_store *store, const char *project, const char *environment,
			       cs_inventory_row_fn fn, void *arg) __attribute__((warn_unused_result));

/* ---- signatures of the signing profiles ----------------------------------- */

/* One signature as recorded: written once with its audit entry (audit_seq,
 * created_at = that entry's seq and ts), never changed nor deleted (the
 * schema's triggers refuse it). format: jws | dsse | digest; signature:
 * the detached JWS "HEADER..SIGNATURE" (RFC 7515 Appendix F), the DSSE
 * sig (base64 DER) or the digest's base64url raw r||s (never a payload);
 * signature_der (standard base64 DER; dsse, digest), payload_type (dsse)
 * and payload (stored only when the profile says so) may be NULL. */
typedef struct {
	const char *id, *profile, *format, *requester, *requester_cert_sha256, *created_at, *signed_sha256,
		*kid, *signature, *signature_der, *payload_type;
	const unsigned char *payload; /* NULL (payload_len 0): not stored */
	size_t payload_len;
	int64_t audit_seq;
} cs_signature_record;
/* Whether a signature of profile by a key other than kid exists (CS_OK:
 * one does, CS_E_NOT_FOUND: none): a key claimed to be a profile's first
 * may not follow signatures of another. Reads the profile's signatures
 * until it finds one. */
cs_err cs_store_signature_by_other_key(cs_store *store, const char *profile, const char *kid);
/* Record a signature (inside a write transaction; every field but
 * signature_der, payload_type and payload required, kid a recorded key,
 * audit_seq a recorded entry's seq not yet any signature's): CS_E_CONFLICT
 * when the id (or the audit_seq) is recorded already. */
cs_err cs_store_signature_insert(cs_store *store, const cs_signature_record *r) __attribute__((warn_unused_result));
typedef void (*cs_signature_fn)(void *arg, const cs_signature_record *r);
/* One signature by id (fn may be NULL); CS_E_NOT_FOUND. */
cs_err cs_store_signature_get(cs_store *store, const char *id, cs_signature_fn fn, void *arg);
/* The signatures whose signed bytes have this SHA-256 (sha256_hex: 64
 * lower-case hex digits, as recorded), newest first (by audit_seq), at
 * most limit (>= 1) read, through the index on signed_sha256: fn is
 * called for each in turn and returns non-zero to stop. None: CS_OK
 * without a call. CS_E_INVALID_ARG: limit < 1. */
typedef int (*cs_signature_row_fn)(void *arg, const cs_signature_record *r);
cs_err cs_store_signatures_by_sha256(cs_store *store, const char *sha256_hex, int64_t limit,
				     cs_signature_row_fn fn, void *arg) __attribute__((warn_unused_result));
/* The formats key kid has signed for profile (its records'), in one query
 * through the index on (profile, kid, format), a few lookups however many
 * it signed: formats gets their names, sorted ("digest", "dsse", "jws";
 * static strings), then NULL; none: formats[0] NULL. A kid or profile
 * never recorded, or NULL (a certificate key), signed none. */
#define CS_STORE_SIG_FORMATS 3
cs_err cs_store_key_formats_signed(cs_store *store, const char *profile, const char *kid,
				   const char *formats[CS_STORE_SIG_FORMATS + 1]) __attribute__((warn_unused_result));

/* ---- node identity ---------------------------------------------------------- */

/* Claim node_id for this running instance, or renew the claim (inside a
 * write transaction): the row of node_id records instance (random, one per
 * process life), host, pid and seen_ms = now_ms. CS_E_CONFLICT when another
 * instance renewed it less than live_ms before now_ms: nothing is written
 * and *holder (malloc'd, may be NULL on CS_E_NOMEM) says who ("host H pid
 * P, seen N ms ago"). The ids of every node sharing a store stay unique.
 * PostgreSQL: the times are the database's clock, the same for every node
 * (now_ms below live_ms, a release that leaves the claim stale, is stored
 * as given). */
cs_err cs_store_node_claim(cs_store *store, const char *node_id, const char *instance, const char *host,
			   int64_t pid, int64_t now_ms, int64_t live_ms, char **holder)
	__attribute__((warn_unused_result));

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
