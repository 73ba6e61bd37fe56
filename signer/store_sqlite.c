/*
 * store_sqlite: the SQLite backend of store.h. WAL journal, synchronous=FULL
 * (a commit is on disk before it returns), foreign keys on, busy timeout.
 * Migrations run in one IMMEDIATE transaction guarded by user_version.
 *
 * Storage only: the rules (seq, ts, chain hashes, one active key, the
 * deadline's length) come from ledger.c. Every statement is prepared once
 * per connection, on first use, and reset (bindings cleared) after each
 * use, on every path. A write transaction's deadline is SQLite's busy
 * timeout (waiting for the lock) plus a progress handler (statements);
 * cs_store_write_end disarms both on every path, including a failed begin.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "cs_log.h"
#include "jose.h"
#include "store_backend.h"

#define BUSY_TIMEOUT_MS 5000

/* The statements of a connection, prepared on first use. */
enum {
	Q_BEGIN_WRITE,
	Q_BEGIN_READ,
	Q_COMMIT,
	Q_ROLLBACK,
	Q_SAVEPOINT,
	Q_RELEASE,
	Q_ROLLBACK_TO,
	Q_PING,
	Q_SESSION_INSERT,
	Q_CLAIMS_INSERT,
	Q_SESSION_GET,
	Q_SESSION_CLAIM,
	Q_CLAIMS_DELETE,
	Q_CERT_INSERT,
	Q_CERT_GET,
	Q_CLAIMS_PRUNE,
	Q_SESSIONS_DELETE,
	Q_PROBE,
	Q_KEY_UPSERT,
	Q_KEY_STATUS,
	Q_KEYS_EACH,
	Q_KEYS_INFO,
	Q_AUDIT_LAST,
	Q_AUDIT_INSERT,
	Q_AUDIT_HASH_AT,
	Q_AUDIT_FIRST,
	Q_AUDIT_DELETE,
	Q_TS_ORDERED,
	Q_AUDIT_EACH,
	Q_PURGE_BOUNDARY,
	Q_CP_INSERT,
	Q_CHECKPOINTED,
	Q_PURGE_BASE,
	Q_CP_LATEST,
	Q_CP_EACH,
	Q_CP_RANGE,
	Q_KEY_INFO,
	Q_KEY_ACTIVE,
	Q_KEY_INSERT,
	Q_KEY_ACTIVATED,
	Q_KEY_RETIRED,
	Q_KEY_COMPROMISED,
	Q_KEY_DESTROYED,
	Q_KEY_CHAIN,
	Q_CEREMONY_GET,
	Q_APPROVALS,
	Q_CEREMONIES_EACH,
	Q_CEREMONY_INSERT,
	Q_APPROVAL_INSERT,
	Q_CEREMONY_CLOSE,
	Q_ROLLOVERS_EACH,
	Q_ROLLOVER_INSERT,
	Q_REVOCATIONS_EACH,
	Q_REVOCATION_GET,
	Q_REVOCATIONS_VERSION,
	Q_REVOCATION_INSERT,
	Q_CERT_EXISTS,
	Q_CERT_OTHER_KEY,
	Q_KEY_IS_COMPROMISED,
	Q_KEYS_EVER_IN,
	Q_SIG_OTHER_KEY,
	Q_SIG_INSERT,
	Q_SIG_GET,
	Q_SIGS_BY_SHA256,
	Q_KEY_FORMATS,
	Q_NODE_GET,
	Q_NODE_PUT,
	Q_INV_ALL,
	Q_INV_PROJECT,
	Q_INV_PROJECT_ENV,
	Q_INV_ENV,
	Q_COUNT
};

/* The columns of a key, in cs_key_info's order. */
#define KEY_COLUMNS                                                                                        \
	"kid, uri, status, created_at, activated_at, retired_at, jwk_json, label, cka_id, created_by, "      \
	"activated_by, activated_ceremony, retired_by, retired_ceremony, compromised_at, compromised_by, "   \
	"compromised_ceremony, destroyed_at, destroyed_by, destroyed_ceremony, x5c_json, profile"
#define KEY_NCOLS 22
#define CEREMONY_COLUMNS                                                                                   \
	"id, action, subject, reason, params_json, nonce, node, created_at, expires_at, started_by, "         \
	"canonical, state, executed_at, executed_by, result_json"
#define CEREMONY_NCOLS 15
/* The text columns of a signature, in cs_signature_record's order, then
 * payload and audit_seq. */
#define SIG_COLUMNS                                                                                        \
	"id, profile, format, requester, requester_cert_sha256, created_at, signed_sha256, kid, signature, "  \
	"signature_der, payload_type, payload, audit_seq"
#define SIG_NTEXT 11
/* The inventory's rows (cs_inventory_row's order) and their order: the
 * index certificates_inventory's (NULL sorts first in SQLite), no sort. */
#define INV_SELECT                                                                                         \
	"SELECT c.id, c.project, c.environment, c.system, c.claims_json, c.created_ms, r.revoked_at, r.reason " \
	"FROM certificates c LEFT JOIN cert_revocations r ON r.cert_id = c.id "
#define INV_ORDER " ORDER BY c.project, c.environment, c.system, c.created_ms, c.id"

static const char *const sql_text[Q_COUNT] = {
	[Q_BEGIN_WRITE] = "BEGIN IMMEDIATE",
	[Q_BEGIN_READ] = "BEGIN",
	[Q_COMMIT] = "COMMIT",
	[Q_ROLLBACK] = "ROLLBACK",
	[Q_SAVEPOINT] = "SAVEPOINT job",
	[Q_RELEASE] = "RELEASE job",
	[Q_ROLLBACK_TO] = "ROLLBACK TO job",
	[Q_PING] = "SELECT count(*) FROM signing_keys",
	[Q_SESSION_INSERT] = "INSERT INTO generation_sessions (id, created_ms, expires_ms, cert_sha256) "
			     "VALUES (?, ?, ?, ?)",
	[Q_CLAIMS_INSERT] = "INSERT INTO session_claims (session_id, claims_json) VALUES (?, ?)",
	[Q_SESSION_GET] = "SELECT s.cert_sha256, s.expires_ms, s.cert_id IS NOT NULL, c.claims_json "
			  "FROM generation_sessions s LEFT JOIN session_claims c ON c.session_id = s.id "
			  "WHERE s.id = ?",
	[Q_SESSION_CLAIM] = "UPDATE generation_sessions SET cert_id = ? WHERE id = ? AND cert_id IS NULL",
	[Q_CLAIMS_DELETE] = "DELETE FROM session_claims WHERE session_id = ?",
	[Q_CERT_INSERT] = "INSERT INTO certificates (id, session_id, kid, header, claims_json, signature, "
			  "created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
	[Q_CERT_GET] = "SELECT header, claims_json, signature FROM certificates WHERE id = ?",
	[Q_CLAIMS_PRUNE] = "DELETE FROM session_claims WHERE session_id IN (SELECT id FROM generation_sessions "
			   "WHERE cert_id IS NULL AND expires_ms < ?)",
	[Q_SESSIONS_DELETE] = "DELETE FROM generation_sessions WHERE cert_id IS NULL AND expires_ms < ?",
	[Q_PROBE] = "INSERT INTO store_probe (id, at_ms) VALUES (1, ?) "
		    "ON CONFLICT(id) DO UPDATE SET at_ms = excluded.at_ms",
	[Q_KEY_UPSERT] = "INSERT INTO signing_keys (kid, uri, jwk_json, status) VALUES (?, ?, ?, ?) "
			 "ON CONFLICT(kid) DO UPDATE SET status = excluded.status, uri = excluded.uri",
	[Q_KEY_STATUS] = "UPDATE signing_keys SET status = ? WHERE kid = ?",
	[Q_KEYS_EACH] = "SELECT kid, jwk_json, status, created_at FROM signing_keys ORDER BY created_at, kid",
	[Q_KEYS_INFO] = "SELECT " KEY_COLUMNS " FROM signing_keys ORDER BY created_at, kid",
	[Q_AUDIT_LAST] = "SELECT seq, entry_hash, ts FROM audit_log ORDER BY seq DESC LIMIT 1",
	[Q_AUDIT_INSERT] = "INSERT INTO audit_log (seq, ts, node, actor, actor_cert_sha256, role, action, "
			   "object, project, environment, outcome, error_code, request_id, prev_hash, "
			   "entry_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
	[Q_AUDIT_HASH_AT] = "SELECT entry_hash FROM audit_log WHERE seq = ?",
	[Q_AUDIT_FIRST] = "SELECT coalesce(min(seq), 0) FROM audit_log",
	[Q_AUDIT_DELETE] = "DELETE FROM audit_log WHERE seq <= ?",
	[Q_TS_ORDERED] = "SELECT value FROM store_meta WHERE name = 'audit_ts_ordered_from_seq'",
	[Q_AUDIT_EACH] = "SELECT seq, ts, node, actor, actor_cert_sha256, role, action, object, project, "
			 "environment, outcome, error_code, request_id, prev_hash, entry_hash "
			 "FROM audit_log WHERE seq >= ? ORDER BY seq LIMIT ?",
	[Q_PURGE_BOUNDARY] = "SELECT (SELECT min(seq) FROM audit_log), seq, entry_hash FROM audit_log "
			     "WHERE ts < ? ORDER BY seq DESC LIMIT 1",
	[Q_CP_INSERT] = "INSERT INTO audit_checkpoints (first_seq, last_seq, head_hash, ts, node, kind, jws) "
			"VALUES (?,?,?,?,?,?,?)",
	[Q_CHECKPOINTED] = "SELECT coalesce(max(last_seq), 0) FROM audit_checkpoints",
	[Q_PURGE_BASE] = "SELECT last_seq, head_hash FROM audit_checkpoints WHERE kind = 'purge' "
			 "ORDER BY last_seq DESC LIMIT 1",
	[Q_CP_LATEST] = "SELECT jws FROM audit_checkpoints ORDER BY id DESC LIMIT 1",
	[Q_CP_EACH] = "SELECT first_seq, last_seq, head_hash, ts, node, kind, jws "
		      "FROM audit_checkpoints ORDER BY id",
	/* the index on last_seq gives this order (rowid breaks ties) */
	[Q_CP_RANGE] = "SELECT first_seq, last_seq, head_hash, ts, node, kind, jws "
		       "FROM audit_checkpoints WHERE last_seq BETWEEN ? AND ? ORDER BY last_seq, id",
	[Q_KEY_INFO] = "SELECT " KEY_COLUMNS " FROM signing_keys WHERE kid = ?",
	/* through the partial unique index of the one active key per profile
	 * (its expression, coalesce(profile, ''); polled every second) */
	[Q_KEY_ACTIVE] = "SELECT kid, uri, x5c_json FROM signing_keys WHERE status = 'active' "
			 "AND coalesce(profile, '') = coalesce(?1, '')",
	[Q_KEY_INSERT] = "INSERT INTO signing_keys (kid, uri, jwk_json, status, label, cka_id, created_by, "
			 "activated_at, activated_by, activated_ceremony, profile) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
	[Q_KEY_ACTIVATED] = "UPDATE signing_keys SET status = 'active', activated_at = ?2, activated_by = ?3, "
			    "activated_ceremony = ?4 WHERE kid = ?1",
	[Q_KEY_RETIRED] = "UPDATE signing_keys SET status = 'retired', retired_at = ?2, retired_by = ?3, "
			  "retired_ceremony = ?4 WHERE kid = ?1",
	[Q_KEY_COMPROMISED] = "UPDATE signing_keys SET status = 'compromised', compromised_at = ?2, "
			      "compromised_by = ?3, compromised_ceremony = ?4 WHERE kid = ?1",
	[Q_KEY_DESTROYED] = "UPDATE signing_keys SET destroyed_at = ?2, destroyed_by = ?3, destroyed_ceremony = ?4 "
			    "WHERE kid = ?1",
	[Q_KEY_CHAIN] = "UPDATE signing_keys SET x5c_json = ? WHERE kid = ?",
	[Q_CEREMONY_GET] = "SELECT " CEREMONY_COLUMNS " FROM ceremonies WHERE id = ?",
	[Q_APPROVALS] = "SELECT ceremony_id, officer, fingerprint, cert_pem, sig_alg, signature_b64, approved_at, "
			"approved_by FROM ceremony_approvals WHERE ceremony_id = ? ORDER BY id",
	[Q_CEREMONIES_EACH] = "SELECT " CEREMONY_COLUMNS " FROM ceremonies ORDER BY created_at DESC, rowid DESC",
	[Q_CEREMONY_INSERT] = "INSERT INTO ceremonies (id, action, subject, reason, params_json, nonce, node, "
			      "created_at, expires_at, started_by, canonical) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
	[Q_APPROVAL_INSERT] = "INSERT INTO ceremony_approvals (ceremony_id, officer, fingerprint, cert_pem, sig_alg, "
			      "signature_b64, approved_at, approved_by) VALUES (?,?,?,?,?,?,?,?)",
	[Q_CEREMONY_CLOSE] = "UPDATE ceremonies SET state = 'executed', executed_at = ?, executed_by = ?, "
			     "result_json = ? WHERE id = ? AND state = 'open'",
	[Q_ROLLOVERS_EACH] = "SELECT ceremony_id, old_kid, new_kid, statement_json, created_at FROM key_rollovers "
			     "ORDER BY id",
	[Q_ROLLOVER_INSERT] = "INSERT INTO key_rollovers (ceremony_id, old_kid, new_kid, statement_json, created_at) "
			      "VALUES (?,?,?,?,?)",
	[Q_REVOCATIONS_EACH] = "SELECT cert_id, reason, revoked_at, revoked_by, ceremony_id FROM cert_revocations "
			       "ORDER BY revoked_at, cert_id",
	[Q_REVOCATION_GET] = "SELECT cert_id, reason, revoked_at, revoked_by, ceremony_id FROM cert_revocations "
			     "WHERE cert_id = ?",
	/* a primary-key lookup and the last rowid: no scan (polled every second) */
	[Q_REVOCATIONS_VERSION] = "SELECT (SELECT value FROM store_meta WHERE name = 'revocations_count'), "
				  "(SELECT coalesce(max(id), 0) FROM cert_revocations)",
	[Q_REVOCATION_INSERT] = "INSERT INTO cert_revocations (cert_id, reason, revoked_at, revoked_by, ceremony_id) "
				"VALUES (?,?,?,?,?)",
	[Q_CERT_EXISTS] = "SELECT 1 FROM certificates WHERE id = ?",
	[Q_CERT_OTHER_KEY] = "SELECT 1 FROM certificates WHERE kid != ? LIMIT 1",
	[Q_KEY_IS_COMPROMISED] = "SELECT status = 'compromised' FROM signing_keys WHERE kid = ?",
	[Q_KEYS_EVER_IN] = "SELECT EXISTS (SELECT 1 FROM signing_keys WHERE status IN ('active', 'retired', "
			   "'compromised') AND profile IS ?1)",
	/* through the index on (profile, kid) */
	[Q_SIG_OTHER_KEY] = "SELECT 1 FROM signatures WHERE profile = ?1 AND kid != ?2 LIMIT 1",
	[Q_SIG_INSERT] = "INSERT INTO signatures (id, profile, format, requester, requester_cert_sha256, created_at, "
			 "signed_sha256, kid, signature, signature_der, payload_type, payload, audit_seq) "
			 "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
	[Q_SIG_GET] = "SELECT " SIG_COLUMNS " FROM signatures WHERE id = ?",
	/* through the index on (signed_sha256, audit_seq): no sort */
	[Q_SIGS_BY_SHA256] = "SELECT " SIG_COLUMNS " FROM signatures WHERE signed_sha256 = ?1 "
			     "ORDER BY audit_seq DESC LIMIT ?2",
	/* one lookup of the index on (profile, kid, format) per format, in
	 * cs_store_key_formats_signed's order */
	[Q_KEY_FORMATS] = "SELECT "
			  "EXISTS (SELECT 1 FROM signatures WHERE profile = ?1 AND kid = ?2 AND format = 'digest'), "
			  "EXISTS (SELECT 1 FROM signatures WHERE profile = ?1 AND kid = ?2 AND format = 'dsse'), "
			  "EXISTS (SELECT 1 FROM signatures WHERE profile = ?1 AND kid = ?2 AND format = 'jws')",
	[Q_NODE_GET] = "SELECT instance, host, pid, seen_ms FROM store_nodes WHERE node_id = ?",
	[Q_NODE_PUT] = "INSERT INTO store_nodes (node_id, instance, host, pid, started_ms, seen_ms) "
		       "VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT(node_id) DO UPDATE SET instance = excluded.instance, "
		       "host = excluded.host, pid = excluded.pid, seen_ms = excluded.seen_ms, "
		       "started_ms = CASE WHEN store_nodes.instance = excluded.instance THEN store_nodes.started_ms "
		       "ELSE excluded.started_ms END",
	[Q_INV_ALL] = INV_SELECT INV_ORDER,
	[Q_INV_PROJECT] = INV_SELECT "WHERE c.project = ?1" INV_ORDER,
	[Q_INV_PROJECT_ENV] = INV_SELECT "WHERE c.project = ?1 AND c.environment = ?2" INV_ORDER,
	[Q_INV_ENV] = INV_SELECT "WHERE c.environment = ?1" INV_ORDER,
};

typedef struct {
	cs_store base; /* the ops: first */
	sqlite3 *db;
	sqlite3_stmt *st[Q_COUNT];
	int64_t deadline_ms; /* of the running write, for the progress handler */
	uint64_t several_active; /* several active keys found, logged (again once it was fixed):
	                            bit 0 the certificate keys, else a bit per profile (hashed) */
} sq_store;

static const cs_store_ops sqlite_ops;
static void sq_close(cs_store *store);

/* Migration N brings the schema from version N-1 to N: its SQL, then a
 * conversion in C and more SQL when needed, in one transaction. Append
 * only. */
typedef struct {
	const char *sql;
	cs_err (*convert)(sq_store *s);
	const char *sql_after;
} migration;

static cs_err certificates_v5(sq_store *s);

static const migration migrations[] = {
	/* 1: sessions, certificates, keys */
	{.sql = "CREATE TABLE generation_sessions ("
	        "  id TEXT PRIMARY KEY,"
	        "  created_ms INTEGER NOT NULL,"
	        "  expires_ms INTEGER NOT NULL,"
	        "  cert_sha256 TEXT NOT NULL,"
	        "  claims_json TEXT NOT NULL,"
	        "  cert_id TEXT UNIQUE"
	        ");"
	        "CREATE TABLE certificates ("
	        "  id TEXT PRIMARY KEY,"
	        "  session_id TEXT NOT NULL UNIQUE REFERENCES generation_sessions(id),"
	        "  kid TEXT NOT NULL REFERENCES signing_keys(kid),"
	        "  jws TEXT NOT NULL,"
	        "  claims_json TEXT NOT NULL,"
	        "  created_ms INTEGER NOT NULL"
	        ");"
	        "CREATE TABLE signing_keys ("
	        "  kid TEXT PRIMARY KEY,"
	        "  uri TEXT NOT NULL,"
	        "  jwk_json TEXT NOT NULL,"
	        "  status TEXT NOT NULL,"
	        "  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))"
	        ");"},
	/* 2: the append-only audit log and its signed checkpoints */
	{.sql = "CREATE TABLE audit_log ("
	        "  seq INTEGER PRIMARY KEY,"
	        "  ts TEXT NOT NULL, node TEXT NOT NULL, actor TEXT NOT NULL, actor_cert_sha256 TEXT,"
	        "  role TEXT NOT NULL, action TEXT NOT NULL, object TEXT, project TEXT, environment TEXT,"
	        "  outcome TEXT NOT NULL, error_code TEXT, request_id TEXT,"
	        "  prev_hash BLOB NOT NULL, entry_hash BLOB NOT NULL"
	        ");"
	        "CREATE TABLE audit_checkpoints ("
	        "  id INTEGER PRIMARY KEY,"
	        "  first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL, head_hash BLOB NOT NULL,"
	        "  ts TEXT NOT NULL, node TEXT NOT NULL, kind TEXT NOT NULL, jws TEXT NOT NULL"
	        ");"
	        "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log"
	        "  BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;"
	        "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log"
	        "  WHEN OLD.seq > (SELECT coalesce(max(last_seq), 0) FROM audit_checkpoints WHERE kind = 'purge')"
	        "  BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;"
	        "CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints"
	        "  BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;"
	        "CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints"
	        "  BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;"},
	/* 3: finding uncertified sessions by expiry, for pruning */
	{.sql = "CREATE INDEX generation_sessions_uncertified_expiry ON generation_sessions(expires_ms)"
	        "  WHERE cert_id IS NULL;"},
	/* 4: the row a readiness probe writes; where the ordered ts of audit
	 * entries begins (entries written before this version may decrease) */
	{.sql = "CREATE TABLE store_probe (id INTEGER PRIMARY KEY CHECK (id = 1), at_ms INTEGER NOT NULL);"
	        "CREATE TABLE store_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
	        "INSERT INTO store_meta (name, value) SELECT 'audit_ts_ordered_from_seq', 1 + max("
	        "  coalesce((SELECT max(seq) FROM audit_log), 0),"
	        "  coalesce((SELECT max(last_seq) FROM audit_checkpoints), 0));"},
	/* 5: one copy of what was signed. A certificate keeps its JWS in its
	 * three parts with the payload decoded (the claims as signed: the JWS
	 * is rebuilt exactly, base64url having one form), not the JWS and a
	 * JSON copy; a session's claims live in their own table until it is
	 * certified (deleting them there frees their space: a row shrunk in
	 * place would keep its page) */
	{.sql = "CREATE TABLE session_claims ("
	        "  id INTEGER PRIMARY KEY,"
	        "  session_id TEXT NOT NULL UNIQUE REFERENCES generation_sessions(id),"
	        "  claims_json TEXT NOT NULL"
	        ");"
	        "INSERT INTO session_claims (session_id, claims_json)"
	        "  SELECT id, claims_json FROM generation_sessions WHERE cert_id IS NULL;"
	        "ALTER TABLE generation_sessions DROP COLUMN claims_json;"
	        "CREATE TABLE certificates_v5 ("
	        "  id TEXT PRIMARY KEY,"
	        "  session_id TEXT NOT NULL UNIQUE REFERENCES generation_sessions(id),"
	        "  kid TEXT NOT NULL REFERENCES signing_keys(kid),"
	        "  header TEXT NOT NULL,"
	        "  claims_json TEXT NOT NULL,"
	        "  signature TEXT NOT NULL,"
	        "  created_ms INTEGER NOT NULL"
	        ");",
	 .convert = certificates_v5,
	 .sql_after = "DROP TABLE certificates; ALTER TABLE certificates_v5 RENAME TO certificates;"},
	/* 6: checkpoints found by what they cover. With one every few seconds
	 * the table grows large: the coverage (max(last_seq), read at every
	 * checkpoint, inside its write transaction too), the purge base and
	 * the delete trigger's bound must not scan it */
	{.sql = "CREATE INDEX audit_checkpoints_last ON audit_checkpoints(last_seq);"
	        "CREATE INDEX audit_checkpoints_kind_last ON audit_checkpoints(kind, last_seq);"},
	/* 7: the key lifecycle (who did what when, under which ceremony),
	 * dual-control ceremonies and their approvals, the signed rollovers,
	 * certificate revocations. Existing keys get the times and actors of
	 * their events from the audit log (NULL where it no longer holds them).
	 * The rules live in ledger.c; the schema refuses, as defence in depth,
	 * a second active key, a retired or compromised key made active again,
	 * an undone destruction, and any change to approvals, rollovers and
	 * revocations. The daemon polls the active key and the revocations'
	 * version every second: both are index lookups. */
	{.sql = "ALTER TABLE signing_keys ADD COLUMN label TEXT;"
	        "ALTER TABLE signing_keys ADD COLUMN cka_id TEXT;"
	        "ALTER TABLE signing_keys ADD COLUMN created_by TEXT;"
	        "ALTER TABLE signing_keys ADD COLUMN activated_at TEXT;"
	        "ALTER TABLE signing_keys ADD COLUMN activated_by TEXT;"
	        "ALTER TABLE signing_keys ADD COLUMN activated_ceremony TEXT;"
	        "ALTER TABLE signing_keys ADD COLUMN retired_at TEXT;"
	        "ALTER TABLE signing_keys ADD COLUMN retired_by TEXT;"
	        "ALTER TABLE signing_keys ADD COLUMN retired_ceremony TEXT;"
	        "ALTER TABLE signing_keys ADD COLUMN compromised_at TEXT;"
	        "ALTER TABLE signing_keys ADD COLUMN compromised_by TEXT;"
	        "ALTER TABLE signing_keys ADD COLUMN compromised_ceremony TEXT;"
	        "ALTER TABLE signing_keys ADD COLUMN destroyed_at TEXT;"
	        "ALTER TABLE signing_keys ADD COLUMN destroyed_by TEXT;"
	        "ALTER TABLE signing_keys ADD COLUMN destroyed_ceremony TEXT;"
	        "ALTER TABLE signing_keys ADD COLUMN x5c_json TEXT;"
	        "UPDATE signing_keys SET"
	        /* the first activation: before issue 14 a key could be made active
	         * again by configuration, and its certificates of every period must
	         * fall inside activated_at .. retired_at (credsign verify) */
	        "  activated_at = (SELECT a.ts FROM audit_log a WHERE a.object = signing_keys.kid"
	        "    AND a.action = 'key.activate' AND a.outcome = 'success' ORDER BY a.seq ASC LIMIT 1),"
	        "  activated_by = (SELECT a.actor FROM audit_log a WHERE a.object = signing_keys.kid"
	        "    AND a.action = 'key.activate' AND a.outcome = 'success' ORDER BY a.seq ASC LIMIT 1),"
	        "  retired_at = CASE WHEN status IN ('retired', 'compromised') THEN (SELECT a.ts FROM audit_log a"
	        "    WHERE a.object = signing_keys.kid AND a.action = 'key.retire' AND a.outcome = 'success'"
	        "    ORDER BY a.seq DESC LIMIT 1) END,"
	        "  retired_by = CASE WHEN status IN ('retired', 'compromised') THEN (SELECT a.actor FROM audit_log a"
	        "    WHERE a.object = signing_keys.kid AND a.action = 'key.retire' AND a.outcome = 'success'"
	        "    ORDER BY a.seq DESC LIMIT 1) END,"
	        "  compromised_at = CASE WHEN status = 'compromised' THEN (SELECT a.ts FROM audit_log a"
	        "    WHERE a.object = signing_keys.kid AND a.action = 'key.compromise' AND a.outcome = 'success'"
	        "    ORDER BY a.seq DESC LIMIT 1) END,"
	        "  compromised_by = CASE WHEN status = 'compromised' THEN (SELECT a.actor FROM audit_log a"
	        "    WHERE a.object = signing_keys.kid AND a.action = 'key.compromise' AND a.outcome = 'success'"
	        "    ORDER BY a.seq DESC LIMIT 1) END;"
	        "CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys(status) WHERE status = 'active';"
	        "CREATE TRIGGER signing_keys_lifecycle BEFORE UPDATE OF status ON signing_keys"
	        "  WHEN (OLD.status = 'compromised' AND NEW.status <> 'compromised')"
	        "    OR (OLD.status = 'retired' AND NEW.status NOT IN ('retired', 'compromised'))"
	        "  BEGIN SELECT RAISE(ABORT, 'a retired or compromised key never becomes active again'); END;"
	        "CREATE TRIGGER signing_keys_destroyed BEFORE UPDATE OF destroyed_at ON signing_keys"
	        "  WHEN OLD.destroyed_at IS NOT NULL"
	        "  BEGIN SELECT RAISE(ABORT, 'a destroyed key stays destroyed'); END;"
	        "CREATE TRIGGER signing_keys_no_delete BEFORE DELETE ON signing_keys"
	        "  BEGIN SELECT RAISE(ABORT, 'signing keys are never forgotten'); END;"
	        "CREATE TABLE ceremonies ("
	        "  id TEXT PRIMARY KEY,"
	        "  action TEXT NOT NULL CHECK (action IN ('activate', 'retire', 'compromise', 'destroy', 'purge',"
	        "    'revoke')),"
	        "  subject TEXT NOT NULL, reason TEXT, params_json TEXT NOT NULL, nonce TEXT NOT NULL,"
	        "  node TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT NOT NULL, started_by TEXT NOT NULL,"
	        "  canonical TEXT NOT NULL,"
	        "  state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'executed')),"
	        "  executed_at TEXT, executed_by TEXT, result_json TEXT"
	        ");"
	        "CREATE INDEX ceremonies_created ON ceremonies(created_at);"
	        "CREATE TRIGGER ceremonies_once BEFORE UPDATE ON ceremonies"
	        "  WHEN OLD.state <> 'open' OR NEW.id IS NOT OLD.id OR NEW.action IS NOT OLD.action"
	        "    OR NEW.subject IS NOT OLD.subject OR NEW.canonical IS NOT OLD.canonical"
	        "    OR NEW.expires_at IS NOT OLD.expires_at OR NEW.created_at IS NOT OLD.created_at"
	        "  BEGIN SELECT RAISE(ABORT, 'a ceremony is only ever executed, once'); END;"
	        "CREATE TRIGGER ceremonies_no_delete BEFORE DELETE ON ceremonies"
	        "  BEGIN SELECT RAISE(ABORT, 'ceremonies are append-only'); END;"
	        "CREATE TABLE ceremony_approvals ("
	        "  id INTEGER PRIMARY KEY,"
	        "  ceremony_id TEXT NOT NULL REFERENCES ceremonies(id),"
	        "  officer TEXT NOT NULL, fingerprint TEXT NOT NULL, cert_pem TEXT NOT NULL, sig_alg TEXT NOT NULL,"
	        "  signature_b64 TEXT NOT NULL, approved_at TEXT NOT NULL, approved_by TEXT NOT NULL,"
	        "  UNIQUE (ceremony_id, fingerprint),"
	        "  UNIQUE (ceremony_id, officer)"
	        ");"
	        "CREATE TRIGGER ceremony_approvals_no_update BEFORE UPDATE ON ceremony_approvals"
	        "  BEGIN SELECT RAISE(ABORT, 'approvals are append-only'); END;"
	        "CREATE TRIGGER ceremony_approvals_no_delete BEFORE DELETE ON ceremony_approvals"
	        "  BEGIN SELECT RAISE(ABORT, 'approvals are append-only'); END;"
	        "CREATE TABLE key_rollovers ("
	        "  id INTEGER PRIMARY KEY,"
	        "  ceremony_id TEXT NOT NULL UNIQUE REFERENCES ceremonies(id),"
	        "  old_kid TEXT REFERENCES signing_keys(kid),"
	        "  new_kid TEXT NOT NULL REFERENCES signing_keys(kid),"
	        "  statement_json TEXT NOT NULL, created_at TEXT NOT NULL"
	        ");"
	        "CREATE TRIGGER key_rollovers_no_update BEFORE UPDATE ON key_rollovers"
	        "  BEGIN SELECT RAISE(ABORT, 'rollovers are append-only'); END;"
	        "CREATE TRIGGER key_rollovers_no_delete BEFORE DELETE ON key_rollovers"
	        "  BEGIN SELECT RAISE(ABORT, 'rollovers are append-only'); END;"
	        "CREATE TABLE cert_revocations ("
	        "  id INTEGER PRIMARY KEY,"
	        "  cert_id TEXT NOT NULL UNIQUE REFERENCES certificates(id),"
	        "  reason TEXT NOT NULL, revoked_at TEXT NOT NULL, revoked_by TEXT NOT NULL,"
	        "  ceremony_id TEXT REFERENCES ceremonies(id)"
	        ");"
	        "CREATE INDEX cert_revocations_order ON cert_revocations(revoked_at, cert_id);"
	        "INSERT INTO store_meta (name, value) VALUES ('revocations_count', 0);"
	        "CREATE TRIGGER cert_revocations_count AFTER INSERT ON cert_revocations"
	        "  BEGIN UPDATE store_meta SET value = value + 1 WHERE name = 'revocations_count'; END;"
	        "CREATE TRIGGER cert_revocations_no_update BEFORE UPDATE ON cert_revocations"
	        "  BEGIN SELECT RAISE(ABORT, 'a revocation is final'); END;"
	        "CREATE TRIGGER cert_revocations_no_delete BEFORE DELETE ON cert_revocations"
	        "  BEGIN SELECT RAISE(ABORT, 'a revocation is final'); END;"},
	/* 8: delegated signing. A key belongs to a signing profile or (NULL)
	 * signs certificates, for good; one active key per profile (and one
	 * certificate key): the one-active index is remade on the profile.
	 * Each signature made for a profile is recorded once, with the seq of
	 * its audit entry, and never changed nor deleted (no reference to the
	 * audit log: a purge may delete the entry, the record stays), and
	 * found again by the SHA-256 of the bytes signed, newest first; what
	 * formats a key signed is a few lookups of (profile, kid, format).
	 * Existing keys are certificate keys. */
	{.sql = "ALTER TABLE signing_keys ADD COLUMN profile TEXT;"
	        "CREATE TRIGGER signing_keys_profile BEFORE UPDATE OF profile ON signing_keys"
	        "  WHEN NEW.profile IS NOT OLD.profile"
	        "  BEGIN SELECT RAISE(ABORT, 'the profile of a signing key never changes'); END;"
	        "DROP INDEX signing_keys_one_active;"
	        "CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys(coalesce(profile, ''))"
	        " WHERE status = 'active';"
	        "CREATE TABLE signatures ("
	        "  id TEXT PRIMARY KEY,"
	        "  profile TEXT NOT NULL,"
	        "  format TEXT NOT NULL CHECK (format IN ('jws', 'dsse', 'digest')),"
	        "  requester TEXT NOT NULL, requester_cert_sha256 TEXT NOT NULL,"
	        "  created_at TEXT NOT NULL, signed_sha256 TEXT NOT NULL,"
	        "  kid TEXT NOT NULL REFERENCES signing_keys(kid),"
	        "  signature TEXT NOT NULL, signature_der TEXT, payload_type TEXT, payload BLOB,"
	        "  audit_seq INTEGER NOT NULL UNIQUE"
	        ");"
	        "CREATE INDEX signatures_profile_kid ON signatures(profile, kid, format);"
	        "CREATE INDEX signatures_sha256 ON signatures(signed_sha256, audit_seq);"
	        "CREATE TRIGGER signatures_no_update BEFORE UPDATE ON signatures"
	        "  BEGIN SELECT RAISE(ABORT, 'signatures are append-only'); END;"
	        "CREATE TRIGGER signatures_no_delete BEFORE DELETE ON signatures"
	        "  BEGIN SELECT RAISE(ABORT, 'signatures are append-only'); END;"},
	/* 9: the node ids in use (several nodes share a PostgreSQL store; the
	 * table is in both schemas so that they stay one): a node claims its
	 * id at start and renews the claim; another running instance may not
	 * take it while the claim is fresh */
	{.sql = "CREATE TABLE store_nodes ("
	        "  node_id TEXT PRIMARY KEY, instance TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,"
	        "  started_ms INTEGER NOT NULL, seen_ms INTEGER NOT NULL"
	        ");"},
	/* 10: the inventory (the credential register) reads the certificates
	 * by their claims' project, environment and system: columns derived
	 * from the claims as signed (generated, never written: inserts are
	 * unchanged and the certificates already stored have them at once),
	 * and one index in the inventory's order (cs_store_inventory_each).
	 * Claims that are not JSON (never signed so) derive NULLs rather than
	 * fail the insert or this migration */
	{.sql = "ALTER TABLE certificates ADD COLUMN project TEXT GENERATED ALWAYS AS"
	        "  (CASE WHEN json_valid(claims_json) THEN json_extract(claims_json, '$.project') END) VIRTUAL;"
	        "ALTER TABLE certificates ADD COLUMN environment TEXT GENERATED ALWAYS AS"
	        "  (CASE WHEN json_valid(claims_json) THEN json_extract(claims_json, '$.environment') END) VIRTUAL;"
	        "ALTER TABLE certificates ADD COLUMN system TEXT GENERATED ALWAYS AS"
	        "  (CASE WHEN json_valid(claims_json) THEN json_extract(claims_json, '$.system') END) VIRTUAL;"
	        "CREATE INDEX certificates_inventory ON certificates(project, environment, system, created_ms, id);"},
};
#define SCHEMA_VERSION (int)(sizeof(migrations) / sizeof(migrations[0]))

static cs_err db_fail(sq_store *s, const char *what)
{
	cs_log_error("store: %s: %s", what, sqlite3_errmsg(s->db));
	return CS_E_STORE;
}

static cs_err exec(sq_store *s, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		cs_log_error("store: %s", msg != NULL ? msg : sqlite3_errmsg(s->db));
		sqlite3_free(msg);
		return CS_E_STORE;
	}
	return CS_OK;
}

/* ---- prepared statements ----------------------------------------------------- */

/* The connection's statement q, ready to bind (prepared on first use). */
static cs_err stmt(sq_store *s, int q, sqlite3_stmt **out)
{
	*out = NULL;
	if (s->st[q] == NULL &&
	    sqlite3_prepare_v3(s->db, sql_text[q], -1, SQLITE_PREPARE_PERSISTENT, &s->st[q], NULL) != SQLITE_OK) {
		s->st[q] = NULL;
		return db_fail(s, "prepare");
	}
	*out = s->st[q];
	return CS_OK;
}

/* Done with a statement: back to the start, no bindings left. */
static void done(sqlite3_stmt *st)
{
	if (st != NULL) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
}

/* Step a statement that returns no rows; resets it. */
static cs_err step_done(sq_store *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	cs_err r = rc == SQLITE_DONE ? CS_OK : db_fail(s, what);
	done(st);
	return r;
}

/* Run a statement without parameters or rows. */
static cs_err run(sq_store *s, int q, const char *what)
{
	sqlite3_stmt *st = NULL;
	cs_err r = stmt(s, q, &st);
	return r == CS_OK ? step_done(s, st, what) : r;
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
	if (v != NULL)
		sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

/* A text column of the current row. A NULL value is an error unless the
 * column is optional (CS_E_STORE: the schema forbids it); SQLite failing to
 * produce the text is CS_E_NOMEM. The type is read before the text: a
 * failed conversion leaves the value NULL. */
static cs_err text_col(sqlite3_stmt *st, int i, int optional, const char **out)
{
	*out = NULL;
	if (sqlite3_column_type(st, i) == SQLITE_NULL) {
		if (optional)
			return CS_OK;
		cs_log_error("store: column %s is NULL where the schema forbids it",
			     sqlite3_column_name(st, i) ?: "?");
		return CS_E_STORE;
	}
	if ((*out = (const char *)sqlite3_column_text(st, i)) == NULL) {
		cs_log_error("store: out of memory reading column %s", sqlite3_column_name(st, i) ?: "?");
		return CS_E_NOMEM;
	}
	return CS_OK;
}

/* A 32-byte hash column of the current row, or NULL when it is anything
 * else (the blob is read first, then its size, as SQLite recommends). */
static const uint8_t *hash_col(sqlite3_stmt *st, int i)
{
	const uint8_t *p = sqlite3_column_blob(st, i);
	return p != NULL && sqlite3_column_bytes(st, i) == 32 ? p : NULL;
}

/* A malloc'd copy of a column that must not be NULL. */
static cs_err dup_col(sqlite3_stmt *st, int i, char **out)
{
	const char *v = NULL;
	*out = NULL;
	cs_err r = text_col(st, i, 0, &v);
	if (r == CS_OK && (*out = strdup(v)) == NULL)
		r = CS_E_NOMEM;
	return r;
}

/* A query returning one integer in one row. */
static cs_err one_int(sq_store *s, int q, int64_t *out, const char *what)
{
	sqlite3_stmt *st = NULL;
	cs_err r = stmt(s, q, &st);
	if (r != CS_OK)
		return r;
	if (sqlite3_step(st) == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	else
		r = db_fail(s, what);
	done(st);
	return r;
}

/* ---- open, close, migrations ------------------------------------------------- */

static int user_version(sq_store *s)
{
	sqlite3_stmt *st = NULL;
	int v = -1;
	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* Migration 5, from certificates (id, session_id, kid, jws, claims_json,
 * created_ms) into certificates_v5: each JWS split at its two dots, the
 * payload decoded from the JWS itself (whatever the JSON copy beside it
 * said). A JWS that does not split or decode stops the migration. */
static cs_err certificates_v5(sq_store *s)
{
	sqlite3_stmt *rd = NULL, *wr = NULL;
	cs_err r = CS_OK;
	int rc = SQLITE_DONE;
	if (sqlite3_prepare_v2(s->db, "SELECT id, session_id, kid, jws, created_ms FROM certificates", -1, &rd,
			       NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "INSERT INTO certificates_v5 (id, session_id, kid, header, claims_json, "
				      "signature, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
			       -1, &wr, NULL) != SQLITE_OK)
		r = db_fail(s, "migrating the certificates");
	while (r == CS_OK && (rc = sqlite3_step(rd)) == SQLITE_ROW) {
		const char *jws = NULL, *a = NULL, *b = NULL;
		uint8_t *payload = NULL;
		size_t n = 0;
		if ((r = text_col(rd, 3, 0, &jws)) != CS_OK)
			break;
		if ((a = strchr(jws, '.')) != NULL)
			b = strchr(a + 1, '.');
		char *part = b != NULL ? strndup(a + 1, (size_t)(b - a - 1)) : NULL;
		if (b == NULL || strchr(b + 1, '.') != NULL ||
		    (part != NULL && cs_b64url_decode(part, &payload, &n) != CS_OK) ||
		    (payload != NULL && memchr(payload, '\0', n) != NULL)) {
			cs_log_error("store: certificate %.64s does not hold a compact JWS; not migrated",
				     (const char *)sqlite3_column_text(rd, 0));
			r = CS_E_STORE;
		} else if (part == NULL || payload == NULL) {
			r = CS_E_NOMEM;
		} else {
			for (int i = 0; i < 3; i++)
				sqlite3_bind_value(wr, i + 1, sqlite3_column_value(rd, i));
			sqlite3_bind_text(wr, 4, jws, (int)(a - jws), SQLITE_STATIC);
			sqlite3_bind_text(wr, 5, (const char *)payload, (int)n, SQLITE_STATIC);
			sqlite3_bind_text(wr, 6, b + 1, -1, SQLITE_STATIC);
			sqlite3_bind_value(wr, 7, sqlite3_column_value(rd, 4));
			r = step_done(s, wr, "migrating a certificate");
		}
		free(part);
		free(payload);
	}
	if (r == CS_OK && rc != SQLITE_DONE)
		r = db_fail(s, "reading the certificates to migrate");
	sqlite3_finalize(rd);
	sqlite3_finalize(wr);
	return r;
}

/* ---- the schema's guards ----------------------------------------------------------
 * The unique index and the triggers that refuse, as defence in depth, what
 * the ledger never writes: a second active key, a retired or compromised
 * key made active again, an undone destruction, a key forgotten or moved
 * to another profile, a ceremony changed after its execution or deleted,
 * approvals, rollovers, revocations and signatures changed or deleted. Anyone who can write the database
 * file can drop one (and put it back after an edit); one missing or not as
 * the migrations made it means the store was edited outside credsign, or
 * is damaged: it is refused at every open. The audit log's triggers are
 * not among them: its hash chain and signed checkpoints prove it
 * (credsign-admin audit verify), which must still read a log whose
 * triggers were removed. */
static const struct {
	const char *type, *name;
} guards[] = {
	{"index", "signing_keys_one_active"},
	{"trigger", "signing_keys_lifecycle"},
	{"trigger", "signing_keys_destroyed"},
	{"trigger", "signing_keys_no_delete"},
	{"trigger", "ceremonies_once"},
	{"trigger", "ceremonies_no_delete"},
	{"trigger", "ceremony_approvals_no_update"},
	{"trigger", "ceremony_approvals_no_delete"},
	{"trigger", "key_rollovers_no_update"},
	{"trigger", "key_rollovers_no_delete"},
	{"trigger", "cert_revocations_count"},
	{"trigger", "cert_revocations_no_update"},
	{"trigger", "cert_revocations_no_delete"},
	{"trigger", "signing_keys_profile"},
	{"trigger", "signatures_no_update"},
	{"trigger", "signatures_no_delete"},
};

/* A guard's CREATE statement as its newest migration wrote it (one may
 * remake a guard: the one-active index, version 8) and sqlite_master keeps
 * it (without the ';'): *len bytes from the pointer returned; NULL when no
 * migration makes it. */
static const char *guard_sql(const char *type, const char *name, size_t *len)
{
	int index = strcmp(type, "index") == 0;
	char head[128];
	snprintf(head, sizeof(head), "%s %s ", index ? "CREATE UNIQUE INDEX" : "CREATE TRIGGER", name);
	for (int i = SCHEMA_VERSION - 1; i >= 0; i--) {
		const char *start = strstr(migrations[i].sql, head);
		if (start == NULL)
			continue;
		const char *end = index ? strchr(start, ';') : strstr(start, " END;");
		if (end == NULL)
			return NULL;
		*len = (size_t)(end - start) + (index ? 0 : 4);
		return start;
	}
	return NULL;
}

/* Every guard there, as made (see above); else CS_E_STORE, logged naming it. */
static cs_err check_guards(sq_store *s, const char *path)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(s->db, "SELECT type, sql FROM sqlite_master WHERE name = ?", -1, &st, NULL) !=
	    SQLITE_OK)
		return db_fail(s, "reading the schema");
	cs_err r = CS_OK;
	for (size_t i = 0; r == CS_OK && i < sizeof(guards) / sizeof(guards[0]); i++) {
		size_t len = 0;
		const char *want = guard_sql(guards[i].type, guards[i].name, &len);
		sqlite3_bind_text(st, 1, guards[i].name, -1, SQLITE_STATIC);
		int rc = sqlite3_step(st);
		const char *type = NULL, *sql = NULL;
		if (rc == SQLITE_ROW &&
		    ((r = text_col(st, 0, 0, &type)) != CS_OK || (r = text_col(st, 1, 1, &sql)) != CS_OK)) {
			/* said why */
		} else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			r = db_fail(s, "reading the schema");
		} else if (type == NULL || strcmp(type, guards[i].type) != 0) {
			cs_log_error("store %s tampered or damaged: %s %s missing (dropped outside credsign); refused: "
				     "restore the store from a backup",
				     path, guards[i].type, guards[i].name);
			r = CS_E_STORE;
		} else if (want == NULL || sql == NULL || strlen(sql) != len || memcmp(sql, want, len) != 0) {
			cs_log_error("store %s tampered or damaged: %s %s altered (not as credsign made it); refused: "
				     "restore the store from a backup",
				     path, guards[i].type, guards[i].name);
			r = CS_E_STORE;
		}
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	return r;
}

static cs_err migrate(sq_store *s)
{
	cs_err r = exec(s, "BEGIN IMMEDIATE");
	if (r != CS_OK)
		return r;
	int v = user_version(s);
	if (v < 0) {
		r = db_fail(s, "reading the schema version");
	} else if (v > SCHEMA_VERSION) {
		cs_log_error("store schema version %d is newer than this program's %d", v, SCHEMA_VERSION);
		r = CS_E_STORE_SCHEMA;
	}
	for (int n = v + 1; r == CS_OK && n <= SCHEMA_VERSION; n++) {
		char pragma[64];
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", n);
		const migration *m = &migrations[n - 1];
		if ((r = exec(s, m->sql)) == CS_OK && m->convert != NULL)
			r = m->convert(s);
		if (r == CS_OK && m->sql_after != NULL)
			r = exec(s, m->sql_after);
		if (r == CS_OK)
			r = exec(s, pragma);
		if (r == CS_OK)
			cs_log_info("store schema migrated to version %d", n);
	}
	if (r == CS_OK)
		return exec(s, "COMMIT");
	(void)exec(s, "ROLLBACK");
	return r;
}

cs_err cs_store_sqlite_open(const char *path, cs_store **out)
{
	*out = NULL;
	sq_store *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return CS_E_NOMEM;
	s->base.ops = &sqlite_ops;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
	cs_err r = CS_E_STORE;
	if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
		cs_log_error("store: cannot open %s: %s", path,
			     s->db != NULL ? sqlite3_errmsg(s->db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	if ((r = exec(s, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
			 "PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;")) != CS_OK ||
	    (r = migrate(s)) != CS_OK || (r = check_guards(s, path)) != CS_OK)
		goto fail;
	*out = &s->base;
	return CS_OK;
fail:
	sq_close(&s->base);
	return r;
}

cs_err cs_store_sqlite_open_existing_readonly(const char *path, cs_store **out)
{
	*out = NULL;
	sq_store *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return CS_E_NOMEM;
	s->base.ops = &sqlite_ops;
	cs_err r = CS_E_STORE;
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		cs_log_error("store: cannot open %s: %s", path,
			     s->db != NULL ? sqlite3_errmsg(s->db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	int v = user_version(s);
	if (v < 0) { /* not a database, or not readable: not "version -1" */
		r = db_fail(s, "reading the schema version");
		goto fail;
	}
	if (v != SCHEMA_VERSION) {
		cs_log_error("store %s has schema version %d, this program %d: read at start, after its migration",
			     path, v, SCHEMA_VERSION);
		r = CS_E_STORE;
		goto fail;
	}
	if ((r = check_guards(s, path)) != CS_OK)
		goto fail;
	*out = &s->base;
	return CS_OK;
fail:
	sq_close(&s->base);
	return r;
}

/* Never NULL: cs_store_close checks, the opens pass their own. */
static void sq_close(cs_store *store)
{
	sq_store *s = (sq_store *)store;
	for (int q = 0; q < Q_COUNT; q++)
		sqlite3_finalize(s->st[q]);
	sqlite3_close(s->db);
	free(s);
}

static cs_err sq_ping(cs_store *store)
{
	sq_store *s = (sq_store *)store;
	int64_t n = 0;
	return one_int(s, Q_PING, &n, "ping");
}

/* ---- transactions, bounded in time --------------------------------------------- */

static int64_t mono_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static int past_deadline(void *arg)
{
	sq_store *s = arg;
	return mono_ms() >= s->deadline_ms;
}

static void disarm(sq_store *s)
{
	sqlite3_progress_handler(s->db, 0, NULL, NULL);
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	s->deadline_ms = 0;
}

static cs_err sq_write_begin(cs_store *store, int64_t deadline_ms)
{
	sq_store *s = (sq_store *)store;
	if (deadline_ms > 0) {
		int64_t left = deadline_ms - mono_ms();
		if (left <= 0) {
			cs_log_error("store: the write deadline passed before the write began");
			return CS_E_STORE;
		}
		s->deadline_ms = deadline_ms;
		sqlite3_busy_timeout(s->db, left > 0x7fffffff ? 0x7fffffff : (int)left);
		sqlite3_progress_handler(s->db, 1000, past_deadline, s);
	}
	cs_err r = run(s, Q_BEGIN_WRITE, "beginning a write");
	if (r != CS_OK) /* also here: a caller that returns early leaves nothing armed */
		disarm(s);
	return r;
}

static cs_err sq_write_end(cs_store *store, cs_err r)
{
	sq_store *s = (sq_store *)store;
	if (r == CS_OK && sqlite3_get_autocommit(s->db)) {
		/* the transaction is gone (SQLite rolled it back): nothing was kept */
		cs_log_error("store: the write transaction ended before its commit");
		r = CS_E_STORE;
	} else if (r == CS_OK) {
		r = run(s, Q_COMMIT, "committing");
	}
	disarm(s); /* the rollback must not be interrupted */
	if (!sqlite3_get_autocommit(s->db) && run(s, Q_ROLLBACK, "rolling back") != CS_OK)
		(void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

static cs_err sq_savepoint(cs_store *store)
{
	sq_store *s = (sq_store *)store;
	return run(s, Q_SAVEPOINT, "beginning a savepoint");
}

static cs_err sq_savepoint_end(cs_store *store, cs_err r)
{
	sq_store *s = (sq_store *)store;
	if (r == CS_OK)
		return run(s, Q_RELEASE, "releasing a savepoint");
	cs_err e = run(s, Q_ROLLBACK_TO, "rolling back a savepoint");
	return e == CS_OK ? run(s, Q_RELEASE, "releasing a savepoint") : e;
}

static cs_err sq_read_begin(cs_store *store)
{
	sq_store *s = (sq_store *)store;
	return run(s, Q_BEGIN_READ, "beginning a read");
}

static void sq_read_end(cs_store *store)
{
	sq_store *s = (sq_store *)store;
	if (!sqlite3_get_autocommit(s->db) && run(s, Q_COMMIT, "ending a read") != CS_OK)
		(void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

static int64_t sq_changes(cs_store *store)
{
	sq_store *s = (sq_store *)store;
	return sqlite3_total_changes64(s->db);
}

/* ---- sessions and certificates ------------------------------------------------- */

static cs_err sq_session_insert(cs_store *store, const cs_gen_session *g)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	cs_err r = stmt(s, Q_SESSION_INSERT, &st);
	if (r != CS_OK)
		return r;
	sqlite3_bind_text(st, 1, g->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, g->created_ms);
	sqlite3_bind_int64(st, 3, g->expires_ms);
	sqlite3_bind_text(st, 4, g->cert_sha256, -1, SQLITE_STATIC);
	if ((r = step_done(s, st, "storing the generation session")) != CS_OK ||
	    (r = stmt(s, Q_CLAIMS_INSERT, &st)) != CS_OK)
		return r;
	sqlite3_bind_text(st, 1, g->id, -1, SQLITE_STATIC);
	bind_text(st, 2, g->claims_json);
	return step_done(s, st, "storing the generation session's claims");
}

static cs_err sq_session_get(cs_store *store, const char *session_id, cs_session_row *row)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	*row = (cs_session_row){0};
	cs_err r = stmt(s, Q_SESSION_GET, &st);
	if (r != CS_OK)
		return r;
	sqlite3_bind_text(st, 1, session_id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	const char *claims = NULL;
	if (rc == SQLITE_ROW) {
		row->expires_ms = sqlite3_column_int64(st, 1);
		row->certified = sqlite3_column_int(st, 2);
		/* the claims are gone once certified, and only then */
		if ((r = dup_col(st, 0, &row->cert_sha256)) == CS_OK &&
		    (r = text_col(st, 3, row->certified, &claims)) == CS_OK &&
		    (row->claims_json = strdup(claims != NULL ? claims : "")) == NULL)
			r = CS_E_NOMEM;
	} else {
		r = rc == SQLITE_DONE ? CS_E_NOT_FOUND : db_fail(s, "reading the generation session");
	}
	done(st);
	if (r != CS_OK)
		cs_session_row_free(row);
	return r;
}

static cs_err sq_session_claim(cs_store *store, const char *session_id, const char *cert_id, int *claimed)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	*claimed = 0;
	cs_err r = stmt(s, Q_SESSION_CLAIM, &st);
	if (r != CS_OK)
		return r;
	sqlite3_bind_text(st, 1, cert_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, session_id, -1, SQLITE_STATIC);
	if ((r = step_done(s, st, "marking the session certified")) != CS_OK || sqlite3_changes(s->db) != 1 ||
	    (r = stmt(s, Q_CLAIMS_DELETE, &st)) != CS_OK)
		return r;
	sqlite3_bind_text(st, 1, session_id, -1, SQLITE_STATIC);
	if ((r = step_done(s, st, "dropping the certified session's claims")) == CS_OK)
		*claimed = 1;
	return r;
}

static cs_err sq_cert_insert(cs_store *store, const char *cert_id, const char *session_id, const char *kid,
			    const cs_cert_parts *cert, int64_t created_ms)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	cs_err r = stmt(s, Q_CERT_INSERT, &st);
	if (r != CS_OK)
		return r;
	sqlite3_bind_text(st, 1, cert_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, session_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, kid, -1, SQLITE_STATIC);
	bind_text(st, 4, cert->header_b64);
	bind_text(st, 5, cert->claims_json);
	bind_text(st, 6, cert->signature_b64);
	sqlite3_bind_int64(st, 7, created_ms);
	return step_done(s, st, "storing the certificate");
}

static cs_err sq_cert_get(cs_store *store, const char *cert_id, cs_cert_row *row)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	*row = (cs_cert_row){0};
	cs_err r = stmt(s, Q_CERT_GET, &st);
	if (r != CS_OK)
		return r;
	sqlite3_bind_text(st, 1, cert_id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if ((r = dup_col(st, 0, &row->header_b64)) == CS_OK &&
		    (r = dup_col(st, 1, &row->claims_json)) == CS_OK)
			r = dup_col(st, 2, &row->signature_b64);
	} else {
		r = rc == SQLITE_DONE ? CS_E_NOT_FOUND : db_fail(s, "reading the certificate");
	}
	done(st);
	if (r != CS_OK)
		cs_cert_row_free(row);
	return r;
}

static cs_err sq_sessions_delete_expired(cs_store *store, int64_t expired_before_ms, int64_t *removed)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	*removed = 0;
	cs_err r = stmt(s, Q_CLAIMS_PRUNE, &st);
	if (r != CS_OK)
		return r;
	sqlite3_bind_int64(st, 1, expired_before_ms);
	if ((r = step_done(s, st, "pruning expired sessions' claims")) != CS_OK ||
	    (r = stmt(s, Q_SESSIONS_DELETE, &st)) != CS_OK)
		return r;
	sqlite3_bind_int64(st, 1, expired_before_ms);
	if ((r = step_done(s, st, "pruning expired sessions")) == CS_OK)
		*removed = sqlite3_changes64(s->db);
	return r;
}

static cs_err sq_probe_write(cs_store *store, int64_t now_ms)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	cs_err r = stmt(s, Q_PROBE, &st);
	if (r != CS_OK)
		return r;
	sqlite3_bind_int64(st, 1, now_ms);
	return step_done(s, st, "probing a write");
}

/* ---- signing keys ---------------------------------------------------------------- */

static cs_err sq_key_upsert(cs_store *store, const char *kid, const char *uri, const char *jwk_json,
			   const char *status)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	cs_err r = stmt(s, Q_KEY_UPSERT, &st);
	if (r != CS_OK)
		return r;
	sqlite3_bind_text(st, 1, kid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, uri, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, jwk_json, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, status, -1, SQLITE_STATIC);
	return step_done(s, st, "storing the signing key");
}

static cs_err sq_key_set_status(cs_store *store, const char *kid, const char *status)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	cs_err r = stmt(s, Q_KEY_STATUS, &st);
	if (r != CS_OK)
		return r;
	sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, kid, -1, SQLITE_STATIC);
	return step_done(s, st, "changing a signing key's status");
}

static cs_err sq_keys_each(cs_store *store, cs_key_row_fn fn, void *arg)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	cs_err r = stmt(s, Q_KEYS_EACH, &st);
	if (r != CS_OK)
		return r;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *f[4] = {NULL};
		for (int i = 0; r == CS_OK && i < 4; i++)
			r = text_col(st, i, 0, &f[i]);
		if (r != CS_OK)
			break;
		fn(arg, f[0], f[1], f[2], f[3]);
	}
	if (r == CS_OK && rc != SQLITE_DONE)
		r = db_fail(s, "listing signing keys");
	done(st);
	return r;
}

/* The text columns 0..n-1 of the current row into f; bit i of optional
 * set: column i may be NULL. */
static cs_err row_texts(sqlite3_stmt *st, int n, uint32_t optional, const char **f)
{
	cs_err r = CS_OK;
	for (int i = 0; r == CS_OK && i < n; i++)
		r = text_col(st, i, (optional >> i) & 1u, &f[i]);
	return r;
}

/* Columns of a key that may be NULL: all but kid, uri, status, created_at, jwk_json. */
#define KEY_OPTIONAL (((1u << KEY_NCOLS) - 1u) & ~(0xFu | (1u << 6)))

static cs_err key_row(sqlite3_stmt *st, cs_key_info_fn fn, void *arg)
{
	const char *f[KEY_NCOLS] = {NULL};
	cs_err r = row_texts(st, KEY_NCOLS, KEY_OPTIONAL, f);
	if (r != CS_OK || fn == NULL)
		return r;
	cs_key_info k = {.kid = f[0], .uri = f[1], .status = f[2], .created_at = f[3], .activated_at = f[4],
			 .retired_at = f[5], .jwk_json = f[6], .label = f[7], .cka_id = f[8], .created_by = f[9],
			 .activated_by = f[10], .activated_ceremony = f[11], .retired_by = f[12],
			 .retired_ceremony = f[13], .compromised_at = f[14], .compromised_by = f[15],
			 .compromised_ceremony = f[16], .destroyed_at = f[17], .destroyed_by = f[18],
			 .destroyed_ceremony = f[19], .x5c_json = f[20], .profile = f[21]};
	fn(arg, &k);
	return CS_OK;
}

static cs_err sq_keys_info(cs_store *store, cs_key_info_fn fn, void *arg)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	cs_err r = stmt(s, Q_KEYS_INFO, &st);
	if (r != CS_OK)
		return r;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if ((r = key_row(st, fn, arg)) != CS_OK)
			break;
	if (r == CS_OK && rc != SQLITE_DONE)
		r = db_fail(s, "listing signing keys");
	done(st);
	return r;
}

static cs_err sq_key_info(cs_store *store, const char *kid, cs_key_info_fn fn, void *arg)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	cs_err r = stmt(s, Q_KEY_INFO, &st);
	if (r != CS_OK)
		return r;
	bind_text(st, 1, kid);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = key_row(st, fn, arg);
	else
		r = rc == SQLITE_DONE ? CS_E_NOT_FOUND : db_fail(s, "reading a signing key");
	done(st);
	return r;
}

static cs_err sq_key_active_in(cs_store *store, const char *profile, cs_active_key *out)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	*out = (cs_active_key){0};
	cs_err r = stmt(s, Q_KEY_ACTIVE, &st);
	if (r != CS_OK)
		return r;
	bind_text(st, 1, profile);
	int rc = sqlite3_step(st);
	const char *x5c = NULL;
	if (rc == SQLITE_ROW) {
		if ((r = dup_col(st, 0, &out->kid)) == CS_OK && (r = dup_col(st, 1, &out->uri)) == CS_OK &&
		    (r = text_col(st, 2, 1, &x5c)) == CS_OK && x5c != NULL && (out->x5c_json = strdup(x5c)) == NULL)
			r = CS_E_NOMEM;
		/* one at most: the unique index says so, unless it was dropped */
		int64_t n = 1;
		while (r == CS_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
			n++;
		if (r == CS_OK && rc != SQLITE_DONE)
			r = db_fail(s, "reading the active signing key");
		else if (r == CS_OK)
			r = cs_store_note_active(&s->several_active, profile, n);
	} else {
		r = rc == SQLITE_DONE ? CS_E_NOT_FOUND : db_fail(s, "reading the active signing key");
		if (r == CS_E_NOT_FOUND)
			(void)cs_store_note_active(&s->several_active, profile, 0);
	}
	done(st);
	if (r != CS_OK)
		cs_active_key_free(out);
	return r;
}

static cs_err sq_keys_ever_active_in(cs_store *store, const char *profile, int *ever)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	*ever = 0;
	cs_err r = stmt(s, Q_KEYS_EVER_IN, &st);
	if (r != CS_OK)
		return r;
	bind_text(st, 1, profile);
	if (sqlite3_step(st) == SQLITE_ROW)
		*ever = sqlite3_column_int64(st, 0) != 0;
	else
		r = db_fail(s, "reading the signing keys");
	done(st);
	return r;
}

/* Step an insert: a row that exists already (a UNIQUE or PRIMARY KEY
 * constraint) is CS_E_CONFLICT, not logged: the caller decides. */
static cs_err step_insert(sq_store *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	cs_err r = CS_OK;
	if (rc != SQLITE_DONE) {
		int ext = sqlite3_extended_errcode(s->db);
		r = ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY ? CS_E_CONFLICT
											     : db_fail(s, what);
	}
	done(st);
	return r;
}

/* Step an update of one row: CS_E_NOT_FOUND when none changed. */
static cs_err step_update(sq_store *s, sqlite3_stmt *st, const char *what)
{
	cs_err r = step_done(s, st, what);
	return r == CS_OK && sqlite3_changes(s->db) != 1 ? CS_E_NOT_FOUND : r;
}

static void bind_all(sqlite3_stmt *st, const char *const *v, int n)
{
	for (int i = 0; i < n; i++)
		bind_text(st, i + 1, v[i]);
}

static cs_err sq_key_insert(cs_store *store, const cs_key_info *k)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	cs_err r = stmt(s, Q_KEY_INSERT, &st);
	if (r != CS_OK)
		return r;
	const char *const v[] = {k->kid,	  k->uri,	   k->jwk_json,	   k->status,
				 k->label,	  k->cka_id,	   k->created_by,  k->activated_at,
				 k->activated_by, k->activated_ceremony, k->profile};
	bind_all(st, v, 11);
	return step_insert(s, st, "recording the signing key");
}

static cs_err sq_key_event(cs_store *store, const char *kid, cs_key_event event, const char *at, const char *by,
			  const char *ceremony)
{
	sq_store *s = (sq_store *)store;
	static const int q[] = {[CS_KEY_ACTIVATED] = Q_KEY_ACTIVATED, [CS_KEY_RETIRED] = Q_KEY_RETIRED,
				[CS_KEY_COMPROMISED] = Q_KEY_COMPROMISED, [CS_KEY_DESTROYED] = Q_KEY_DESTROYED};
	if ((unsigned)event > CS_KEY_DESTROYED)
		return CS_E_INVALID_ARG;
	sqlite3_stmt *st = NULL;
	cs_err r = stmt(s, q[event], &st);
	if (r != CS_OK)
		return r;
	const char *const v[] = {kid, at, by, ceremony};
	bind_all(st, v, 4);
	return step_update(s, st, "recording a signing key's lifecycle event");
}

static cs_err sq_key_set_chain(cs_store *store, const char *kid, const char *x5c_json)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	cs_err r = stmt(s, Q_KEY_CHAIN, &st);
	if (r != CS_OK)
		return r;
	const char *const v[] = {x5c_json, kid};
	bind_all(st, v, 2);
	return step_update(s, st, "registering a signing key's chain");
}

/* ---- ceremonies, rollovers, revocations ------------------------------------------ */

/* Several reads of one call see one snapshot (unless the caller's
 * transaction gives it already). */
static cs_err snapshot_begin(sq_store *s, int *began)
{
	*began = 0;
	if (!sqlite3_get_autocommit(s->db))
		return CS_OK;
	cs_err r = sq_read_begin(&s->base);
	*began = r == CS_OK;
	return r;
}

static void snapshot_end(sq_store *s, int began)
{
	if (began)
		sq_read_end(&s->base);
}

/* reason, executed_at, executed_by, result_json may be NULL */
#define CEREMONY_OPTIONAL ((1u << 3) | (1u << 12) | (1u << 13) | (1u << 14))

static cs_err ceremony_row(sqlite3_stmt *st, cs_ceremony_fn fn, void *arg)
{
	const char *f[CEREMONY_NCOLS] = {NULL};
	cs_err r = row_texts(st, CEREMONY_NCOLS, CEREMONY_OPTIONAL, f);
	if (r != CS_OK || fn == NULL)
		return r;
	cs_ceremony_record c = {.id = f[0], .action = f[1], .subject = f[2], .reason = f[3], .params_json = f[4],
				.nonce = f[5], .node = f[6], .created_at = f[7], .expires_at = f[8],
				.started_by = f[9], .canonical = f[10], .state = f[11], .executed_at = f[12],
				.executed_by = f[13], .result_json = f[14]};
	fn(arg, &c);
	return CS_OK;
}

static cs_err sq_ceremony_get(cs_store *store, const char *id, cs_ceremony_fn fn, cs_approval_fn afn, void *arg)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	int began = 0, rc;
	cs_err r = snapshot_begin(s, &began);
	if (r == CS_OK && (r = stmt(s, Q_CEREMONY_GET, &st)) == CS_OK) {
		bind_text(st, 1, id);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			r = ceremony_row(st, fn, arg);
		else
			r = rc == SQLITE_DONE ? CS_E_NOT_FOUND : db_fail(s, "reading a ceremony");
		done(st);
	}
	if (r == CS_OK && afn != NULL && (r = stmt(s, Q_APPROVALS, &st)) == CS_OK) {
		bind_text(st, 1, id);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			const char *f[8] = {NULL};
			if ((r = row_texts(st, 8, 0, f)) != CS_OK)
				break;
			cs_approval_record a = {.ceremony_id = f[0], .officer = f[1], .fingerprint = f[2],
						.cert_pem = f[3], .sig_alg = f[4], .signature_b64 = f[5],
						.approved_at = f[6], .approved_by = f[7]};
			afn(arg, &a);
		}
		if (r == CS_OK && rc != SQLITE_DONE)
			r = db_fail(s, "reading a ceremony's approvals");
		done(st);
	}
	snapshot_end(s, began);
	return r;
}

static cs_err sq_ceremonies_each(cs_store *store, cs_ceremony_fn fn, void *arg)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	cs_err r = stmt(s, Q_CEREMONIES_EACH, &st);
	if (r != CS_OK)
		return r;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if ((r = ceremony_row(st, fn, arg)) != CS_OK)
			break;
	if (r == CS_OK && rc != SQLITE_DONE)
		r = db_fail(s, "listing ceremonies");
	done(st);
	return r;
}

static cs_err sq_ceremony_insert(cs_store *store, const cs_ceremony_record *c)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	cs_err r = stmt(s, Q_CEREMONY_INSERT, &st);
	if (r != CS_OK)
		return r;
	const char *const v[] = {c->id,	       c->action,     c->subject,    c->reason,
				 c->params_json, c->nonce,      c->node,       c->created_at,
				 c->expires_at,  c->started_by, c->canonical};
	bind_all(st, v, 11);
	return step_insert(s, st, "recording the ceremony");
}

static cs_err sq_approval_insert(cs_store *store, const cs_approval_record *a)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	cs_err r = stmt(s, Q_APPROVAL_INSERT, &st);
	if (r != CS_OK)
		return r;
	const char *const v[] = {a->ceremony_id,   a->officer,	   a->fingerprint, a->cert_pem,
				 a->sig_alg,	   a->signature_b64, a->approved_at, a->approved_by};
	bind_all(st, v, 8);
	return step_insert(s, st, "recording the approval");
}

static cs_err sq_ceremony_close(cs_store *store, const char *id, const char *at, const char *by, const char *result_json)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	cs_err r = stmt(s, Q_CEREMONY_CLOSE, &st);
	if (r != CS_OK)
		return r;
	const char *const v[] = {at, by, result_json, id};
	bind_all(st, v, 4);
	r = step_update(s, st, "marking the ceremony executed");
	return r == CS_E_NOT_FOUND ? CS_E_CEREMONY_CLOSED : r;
}

static cs_err sq_rollovers_each(cs_store *store, cs_rollover_fn fn, void *arg)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	cs_err r = stmt(s, Q_ROLLOVERS_EACH, &st);
	if (r != CS_OK)
		return r;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *f[5] = {NULL};
		if ((r = row_texts(st, 5, 1u << 1, f)) != CS_OK)
			break;
		cs_rollover_record ro = {.ceremony_id = f[0], .old_kid = f[1], .new_kid = f[2],
					 .statement_json = f[3], .created_at = f[4]};
		if (fn != NULL)
			fn(arg, &ro);
	}
	if (r == CS_OK && rc != SQLITE_DONE)
		r = db_fail(s, "listing rollovers");
	done(st);
	return r;
}

static cs_err sq_rollover_insert(cs_store *store, const cs_rollover_record *ro)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	cs_err r = stmt(s, Q_ROLLOVER_INSERT, &st);
	if (r != CS_OK)
		return r;
	const char *const v[] = {ro->ceremony_id, ro->old_kid, ro->new_kid, ro->statement_json, ro->created_at};
	bind_all(st, v, 5);
	return step_insert(s, st, "recording the rollover");
}

static cs_err revocation_row(sqlite3_stmt *st, cs_revocation_fn fn, void *arg)
{
	const char *f[5] = {NULL};
	cs_err r = row_texts(st, 5, 1u << 4, f);
	if (r != CS_OK || fn == NULL)
		return r;
	cs_revocation_record rv = {.cert_id = f[0], .reason = f[1], .revoked_at = f[2], .revoked_by = f[3],
				   .ceremony_id = f[4]};
	fn(arg, &rv);
	return CS_OK;
}

static cs_err sq_revocations_each(cs_store *store, cs_revocation_fn fn, void *arg)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	cs_err r = stmt(s, Q_REVOCATIONS_EACH, &st);
	if (r != CS_OK)
		return r;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if ((r = revocation_row(st, fn, arg)) != CS_OK)
			break;
	if (r == CS_OK && rc != SQLITE_DONE)
		r = db_fail(s, "listing revocations");
	done(st);
	return r;
}

/* ---- the inventory ------------------------------------------------------------------ */

static cs_err sq_inventory_each(cs_store *store, const char *project, const char *environment,
				cs_inventory_row_fn fn, void *arg)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	if (fn == NULL)
		return CS_E_INVALID_ARG;
	int q = project != NULL ? (environment != NULL ? Q_INV_PROJECT_ENV : Q_INV_PROJECT)
				: (environment != NULL ? Q_INV_ENV : Q_INV_ALL);
	cs_err r = stmt(s, q, &st);
	if (r != CS_OK)
		return r;
	if (project != NULL)
		bind_text(st, 1, project);
	if (environment != NULL)
		bind_text(st, project != NULL ? 2 : 1, environment);
	/* one statement: one read of one snapshot (WAL), whatever commits meanwhile */
	int rc = SQLITE_DONE, stop = 0;
	while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		cs_inventory_row row = {.created_ms = sqlite3_column_int64(st, 5)};
		if ((r = text_col(st, 0, 0, &row.cert_id)) != CS_OK || (r = text_col(st, 1, 1, &row.project)) != CS_OK ||
		    (r = text_col(st, 2, 1, &row.environment)) != CS_OK || (r = text_col(st, 3, 1, &row.system)) != CS_OK ||
		    (r = text_col(st, 4, 0, &row.claims_json)) != CS_OK ||
		    (r = text_col(st, 6, 1, &row.revoked_at)) != CS_OK ||
		    (r = text_col(st, 7, 1, &row.revocation_reason)) != CS_OK)
			break;
		stop = fn(arg, &row);
	}
	if (r == CS_OK && !stop && rc != SQLITE_DONE)
		r = db_fail(s, "reading the inventory");
	done(st);
	return r;
}

static cs_err sq_revocation_get(cs_store *store, const char *cert_id, cs_revocation_fn fn, void *arg)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	cs_err r = stmt(s, Q_REVOCATION_GET, &st);
	if (r != CS_OK)
		return r;
	bind_text(st, 1, cert_id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = revocation_row(st, fn, arg);
	else
		r = rc == SQLITE_DONE ? CS_E_NOT_FOUND : db_fail(s, "reading a revocation");
	done(st);
	return r;
}

static cs_err sq_revocations_version(cs_store *store, int64_t *count, int64_t *last_rowid)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	*count = *last_rowid = 0;
	cs_err r = stmt(s, Q_REVOCATIONS_VERSION, &st);
	if (r != CS_OK)
		return r;
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		r = db_fail(s, "reading the revocations' version");
	} else if (sqlite3_column_type(st, 0) == SQLITE_NULL) {
		cs_log_error("store: the revocations' count is missing from store_meta");
		r = CS_E_STORE;
	} else {
		*count = sqlite3_column_int64(st, 0);
		*last_rowid = sqlite3_column_int64(st, 1);
	}
	done(st);
	return r;
}

static cs_err sq_revocation_insert(cs_store *store, const cs_revocation_record *rv)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	cs_err r = stmt(s, Q_REVOCATION_INSERT, &st);
	if (r != CS_OK)
		return r;
	const char *const v[] = {rv->cert_id, rv->reason, rv->revoked_at, rv->revoked_by, rv->ceremony_id};
	bind_all(st, v, 5);
	return step_insert(s, st, "recording the revocation");
}

static cs_err sq_cert_exists(cs_store *store, const char *cert_id)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	cs_err r = stmt(s, Q_CERT_EXISTS, &st);
	if (r != CS_OK)
		return r;
	bind_text(st, 1, cert_id);
	int rc = sqlite3_step(st);
	r = rc == SQLITE_ROW ? CS_OK : rc == SQLITE_DONE ? CS_E_NOT_FOUND : db_fail(s, "reading a certificate");
	done(st);
	return r;
}

static cs_err sq_key_compromised(cs_store *store, const char *kid, int *compromised)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	*compromised = 0;
	cs_err r = stmt(s, Q_KEY_IS_COMPROMISED, &st);
	if (r != CS_OK)
		return r;
	bind_text(st, 1, kid);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*compromised = sqlite3_column_int(st, 0) != 0;
	else if (rc != SQLITE_DONE)
		r = db_fail(s, "reading a signing key's state");
	done(st);
	return r;
}

static cs_err sq_cert_by_other_key(cs_store *store, const char *kid)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	cs_err r = stmt(s, Q_CERT_OTHER_KEY, &st);
	if (r != CS_OK)
		return r;
	bind_text(st, 1, kid);
	int rc = sqlite3_step(st);
	r = rc == SQLITE_ROW ? CS_OK : rc == SQLITE_DONE ? CS_E_NOT_FOUND : db_fail(s, "reading the certificates");
	done(st);
	return r;
}

/* ---- signatures of the signing profiles ------------------------------------------ */

static cs_err sq_signature_by_other_key(cs_store *store, const char *profile, const char *kid)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	cs_err r = stmt(s, Q_SIG_OTHER_KEY, &st);
	if (r != CS_OK)
		return r;
	bind_text(st, 1, profile);
	bind_text(st, 2, kid);
	int rc = sqlite3_step(st);
	r = rc == SQLITE_ROW ? CS_OK : rc == SQLITE_DONE ? CS_E_NOT_FOUND : db_fail(s, "reading the signatures");
	done(st);
	return r;
}

static cs_err sq_signature_insert(cs_store *store, const cs_signature_record *g)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	cs_err r = stmt(s, Q_SIG_INSERT, &st);
	if (r != CS_OK)
		return r;
	const char *const v[SIG_NTEXT] = {g->id,	    g->profile, g->format,	  g->requester,
					  g->requester_cert_sha256, g->created_at, g->signed_sha256,
					  g->kid,	    g->signature, g->signature_der, g->payload_type};
	bind_all(st, v, SIG_NTEXT);
	/* a payload of no bytes is stored (empty), NULL is not */
	if (g->payload != NULL)
		sqlite3_bind_blob64(st, SIG_NTEXT + 1, g->payload, g->payload_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, SIG_NTEXT + 2, g->audit_seq);
	return step_insert(s, st, "recording the signature");
}

/* The signature of the row st is on (SIG_COLUMNS) to fn: *stop gets fn's
 * answer. CS_E_NOMEM when SQLite could not give a column. */
static cs_err signature_row(sq_store *s, sqlite3_stmt *st, cs_signature_row_fn fn, void *arg, int *stop)
{
	/* signature_der, payload_type may be NULL */
	static const uint32_t optional = (1u << 9) | (1u << 10);
	static const unsigned char empty[1];
	const char *f[SIG_NTEXT] = {NULL};
	*stop = 0;
	cs_err r = row_texts(st, SIG_NTEXT, optional, f);
	if (r != CS_OK)
		return r;
	cs_signature_record g = {.id = f[0], .profile = f[1], .format = f[2], .requester = f[3],
				 .requester_cert_sha256 = f[4], .created_at = f[5], .signed_sha256 = f[6],
				 .kid = f[7], .signature = f[8], .signature_der = f[9], .payload_type = f[10],
				 .audit_seq = sqlite3_column_int64(st, SIG_NTEXT + 1)};
	if (sqlite3_column_type(st, SIG_NTEXT) != SQLITE_NULL) {
		/* the blob first, then its size (a blob of no bytes reads as NULL) */
		g.payload = sqlite3_column_blob(st, SIG_NTEXT);
		int n = sqlite3_column_bytes(st, SIG_NTEXT);
		if (g.payload == NULL && (n > 0 || sqlite3_errcode(s->db) == SQLITE_NOMEM)) {
			cs_log_error("store: out of memory reading signature %.64s's payload", f[0]);
			return CS_E_NOMEM;
		}
		g.payload_len = (size_t)n;
		if (g.payload == NULL)
			g.payload = empty;
	}
	if (fn != NULL)
		*stop = fn(arg, &g);
	return CS_OK;
}

typedef struct {
	cs_signature_fn fn;
	void *arg;
} one_signature;

static int call_one(void *arg, const cs_signature_record *r)
{
	one_signature *o = arg;
	if (o->fn != NULL)
		o->fn(o->arg, r);
	return 1;
}

static cs_err sq_signature_get(cs_store *store, const char *id, cs_signature_fn fn, void *arg)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	cs_err r = stmt(s, Q_SIG_GET, &st);
	if (r != CS_OK)
		return r;
	bind_text(st, 1, id);
	int rc = sqlite3_step(st), stop = 0;
	one_signature o = {fn, arg};
	if (rc == SQLITE_ROW)
		r = signature_row(s, st, call_one, &o, &stop);
	else
		r = rc == SQLITE_DONE ? CS_E_NOT_FOUND : db_fail(s, "reading a signature");
	done(st);
	return r;
}

static cs_err sq_signatures_by_sha256(cs_store *store, const char *sha256_hex, int64_t limit, cs_signature_row_fn fn,
				     void *arg)
{
	sq_store *s = (sq_store *)store;
	if (limit < 1 || sha256_hex == NULL)
		return CS_E_INVALID_ARG;
	sqlite3_stmt *st = NULL;
	cs_err r = stmt(s, Q_SIGS_BY_SHA256, &st);
	if (r != CS_OK)
		return r;
	bind_text(st, 1, sha256_hex);
	sqlite3_bind_int64(st, 2, limit);
	int rc = SQLITE_DONE, stop = 0;
	while (r == CS_OK && !stop && (rc = sqlite3_step(st)) == SQLITE_ROW)
		r = signature_row(s, st, fn, arg, &stop);
	if (r == CS_OK && !stop && rc != SQLITE_DONE)
		r = db_fail(s, "reading the signatures of a digest");
	done(st);
	return r;
}

static cs_err sq_key_formats_signed(cs_store *store, const char *profile, const char *kid,
				   const char *formats[CS_STORE_SIG_FORMATS + 1])
{
	sq_store *s = (sq_store *)store;
	static const char *const names[CS_STORE_SIG_FORMATS] = {"digest", "dsse", "jws"};
	formats[0] = NULL;
	if (profile == NULL || kid == NULL)
		return CS_OK; /* a certificate key signs no records */
	sqlite3_stmt *st = NULL;
	cs_err r = stmt(s, Q_KEY_FORMATS, &st);
	if (r != CS_OK)
		return r;
	bind_text(st, 1, profile);
	bind_text(st, 2, kid);
	if (sqlite3_step(st) == SQLITE_ROW) {
		size_t n = 0;
		for (int i = 0; i < CS_STORE_SIG_FORMATS; i++)
			if (sqlite3_column_int(st, i) != 0)
				formats[n++] = names[i];
		formats[n] = NULL;
	} else {
		r = db_fail(s, "reading the formats a key signed");
	}
	done(st);
	return r;
}

/* ---- audit log --------------------------------------------------------------------- */

/* ---- node identity --------------------------------------------------------------- */

static cs_err sq_node_claim(cs_store *store, const char *node_id, const char *instance, const char *host, int64_t pid,
			    int64_t now_ms, int64_t live_ms, char **holder)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	*holder = NULL;
	cs_err r = stmt(s, Q_NODE_GET, &st);
	if (r != CS_OK)
		return r;
	sqlite3_bind_text(st, 1, node_id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *other = NULL, *other_host = NULL;
		int64_t seen = sqlite3_column_int64(st, 3);
		if ((r = text_col(st, 0, 0, &other)) == CS_OK && (r = text_col(st, 1, 0, &other_host)) == CS_OK &&
		    strcmp(other, instance) != 0 && now_ms - seen < live_ms) {
			char buf[320];
			snprintf(buf, sizeof(buf), "host %.200s pid %lld, seen %lld ms ago", other_host,
				 (long long)sqlite3_column_int64(st, 2), (long long)(now_ms - seen));
			*holder = strdup(buf);
			r = CS_E_CONFLICT;
		}
	} else if (rc != SQLITE_DONE) {
		r = db_fail(s, "reading the node ids");
	}
	done(st);
	if (r != CS_OK || (r = stmt(s, Q_NODE_PUT, &st)) != CS_OK)
		return r;
	sqlite3_bind_text(st, 1, node_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, instance, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, host, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, pid);
	sqlite3_bind_int64(st, 5, now_ms);
	return step_done(s, st, "claiming the node id");
}

static cs_err sq_audit_last(cs_store *store, int64_t *seq, uint8_t hash[32], char ts[32])
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	const char *t = NULL;
	ts[0] = '\0';
	cs_err r = stmt(s, Q_AUDIT_LAST, &st);
	if (r != CS_OK)
		return r;
	int rc = sqlite3_step(st);
	const uint8_t *h = rc == SQLITE_ROW ? hash_col(st, 1) : NULL;
	if (rc == SQLITE_DONE) {
		r = CS_E_NOT_FOUND;
	} else if (h == NULL) {
		r = db_fail(s, "reading the audit head");
	} else if ((r = text_col(st, 2, 0, &t)) == CS_OK) {
		*seq = sqlite3_column_int64(st, 0);
		memcpy(hash, h, 32);
		if (snprintf(ts, 32, "%s", t) >= 32) {
			cs_log_error("store: the newest audit entry's time '%.40s...' is too long", t);
			r = CS_E_STORE;
		}
	}
	done(st);
	return r;
}

static cs_err sq_audit_insert(cs_store *store, const cs_audit_entry *e, const uint8_t prev[32],
			     const uint8_t hash[32])
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	cs_err r = stmt(s, Q_AUDIT_INSERT, &st);
	if (r != CS_OK)
		return r;
	sqlite3_bind_int64(st, 1, e->seq);
	const char *const f[12] = {e->ts, e->node, e->actor, e->actor_cert_sha256, e->role, e->action,
				   e->object, e->project, e->environment, e->outcome, e->error_code,
				   e->request_id};
	for (int i = 0; i < 12; i++)
		bind_text(st, i + 2, f[i]);
	sqlite3_bind_blob(st, 14, prev, 32, SQLITE_STATIC);
	sqlite3_bind_blob(st, 15, hash, 32, SQLITE_STATIC);
	return step_done(s, st, "appending to the audit log");
}

static cs_err sq_audit_hash_at(cs_store *store, int64_t seq, uint8_t hash[32], int *found)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	*found = 0;
	cs_err r = stmt(s, Q_AUDIT_HASH_AT, &st);
	if (r != CS_OK)
		return r;
	sqlite3_bind_int64(st, 1, seq);
	int rc = sqlite3_step(st);
	const uint8_t *h = rc == SQLITE_ROW ? hash_col(st, 0) : NULL;
	if (h != NULL) {
		memcpy(hash, h, 32);
		*found = 1;
	} else if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		r = db_fail(s, "reading the audit log");
	}
	done(st);
	return r;
}

static cs_err sq_audit_first(cs_store *store, int64_t *first)
{
	sq_store *s = (sq_store *)store;
	return one_int(s, Q_AUDIT_FIRST, first, "reading the audit log");
}

static cs_err sq_audit_delete_through(cs_store *store, int64_t seq)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	cs_err r = stmt(s, Q_AUDIT_DELETE, &st);
	if (r != CS_OK)
		return r;
	sqlite3_bind_int64(st, 1, seq);
	return step_done(s, st, "purging the audit log");
}

static cs_err sq_audit_ts_ordered_from(cs_store *store, int64_t *seq)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	*seq = 1; /* no record: hold every entry to the ordering */
	cs_err r = stmt(s, Q_TS_ORDERED, &st);
	if (r != CS_OK)
		return r;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*seq = sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE)
		r = db_fail(s, "reading the store's metadata");
	done(st);
	return r;
}

static cs_err sq_audit_each(cs_store *store, int64_t from_seq, int64_t limit, cs_audit_row_fn fn, void *arg)
{
	sq_store *s = (sq_store *)store;
	/* optional fields of cs_audit_entry, by column (1..12) */
	static const int optional[13] = {[4] = 1, [7] = 1, [8] = 1, [9] = 1, [11] = 1, [12] = 1};
	static const uint8_t zero[32];
	sqlite3_stmt *st = NULL;
	cs_err r = stmt(s, Q_AUDIT_EACH, &st);
	if (r != CS_OK)
		return r;
	sqlite3_bind_int64(st, 1, from_seq);
	sqlite3_bind_int64(st, 2, limit > 0 ? limit : -1);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *f[13] = {NULL};
		for (int i = 1; r == CS_OK && i <= 12; i++)
			r = text_col(st, i, optional[i], &f[i]);
		if (r != CS_OK)
			break;
		cs_audit_entry e = {.seq = sqlite3_column_int64(st, 0), .ts = f[1], .node = f[2],
				    .actor = f[3], .actor_cert_sha256 = f[4], .role = f[5], .action = f[6],
				    .object = f[7], .project = f[8], .environment = f[9], .outcome = f[10],
				    .error_code = f[11], .request_id = f[12]};
		const uint8_t *prev = hash_col(st, 13) ?: zero, *hash = hash_col(st, 14) ?: zero;
		if (fn(arg, &e, prev, hash))
			break;
	}
	if (r == CS_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
		r = db_fail(s, "reading the audit log");
	done(st);
	return r;
}

static cs_err sq_audit_purge_boundary(cs_store *store, const char *cutoff, int64_t *first, int64_t *boundary,
				     uint8_t hash[32])
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	*first = *boundary = 0;
	cs_err r = stmt(s, Q_PURGE_BOUNDARY, &st);
	if (r != CS_OK)
		return r;
	sqlite3_bind_text(st, 1, cutoff, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	const uint8_t *h = rc == SQLITE_ROW ? hash_col(st, 2) : NULL;
	if (h != NULL) {
		*first = sqlite3_column_int64(st, 0);
		*boundary = sqlite3_column_int64(st, 1);
		memcpy(hash, h, 32);
	} else if (rc != SQLITE_DONE) {
		r = db_fail(s, "finding the retention boundary");
	}
	done(st);
	return r;
}

/* ---- audit checkpoints ------------------------------------------------------------ */

static cs_err sq_checkpoint_insert(cs_store *store, int64_t first, int64_t last, const uint8_t hash[32],
				  const char *ts, const char *node, const char *kind, const char *jws)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	cs_err r = stmt(s, Q_CP_INSERT, &st);
	if (r != CS_OK)
		return r;
	sqlite3_bind_int64(st, 1, first);
	sqlite3_bind_int64(st, 2, last);
	sqlite3_bind_blob(st, 3, hash, 32, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, ts, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, node, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, jws, -1, SQLITE_STATIC);
	return step_done(s, st, "storing the audit checkpoint");
}

static cs_err sq_checkpointed(cs_store *store, int64_t *covered)
{
	sq_store *s = (sq_store *)store;
	return one_int(s, Q_CHECKPOINTED, covered, "reading checkpoints");
}

static cs_err sq_purge_base(cs_store *store, int64_t *seq, uint8_t hash[32])
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	cs_err r = stmt(s, Q_PURGE_BASE, &st);
	if (r != CS_OK)
		return r;
	int rc = sqlite3_step(st);
	const uint8_t *h = rc == SQLITE_ROW ? hash_col(st, 1) : NULL;
	if (h != NULL) {
		*seq = sqlite3_column_int64(st, 0);
		memcpy(hash, h, 32);
	} else {
		r = rc == SQLITE_DONE ? CS_E_NOT_FOUND : db_fail(s, "reading the audit chain base");
	}
	done(st);
	return r;
}

static cs_err sq_checkpoint_latest(cs_store *store, char **jws)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	*jws = NULL;
	cs_err r = stmt(s, Q_CP_LATEST, &st);
	if (r != CS_OK)
		return r;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = dup_col(st, 0, jws);
	else
		r = rc == SQLITE_DONE ? CS_E_NOT_FOUND : db_fail(s, "reading checkpoints");
	done(st);
	return r;
}

/* The rows of a checkpoint query, to fn until it returns non-zero. */
static cs_err checkpoint_rows(sq_store *s, sqlite3_stmt *st, cs_checkpoint_row_fn fn, void *arg)
{
	static const uint8_t zero[32];
	cs_err r = CS_OK;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *f[7] = {NULL};
		for (int i = 3; r == CS_OK && i <= 6; i++)
			r = text_col(st, i, 0, &f[i]);
		if (r != CS_OK)
			break;
		const uint8_t *h = hash_col(st, 2) ?: zero;
		if (fn(arg, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), h, f[3], f[4], f[5], f[6]))
			break;
	}
	if (r == CS_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
		r = db_fail(s, "reading checkpoints");
	done(st);
	return r;
}

static cs_err sq_checkpoints_each(cs_store *store, cs_checkpoint_row_fn fn, void *arg)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	cs_err r = stmt(s, Q_CP_EACH, &st);
	return r == CS_OK ? checkpoint_rows(s, st, fn, arg) : r;
}

static cs_err sq_checkpoints_range(cs_store *store, int64_t min_last, int64_t max_last, cs_checkpoint_row_fn fn,
				  void *arg)
{
	sq_store *s = (sq_store *)store;
	sqlite3_stmt *st = NULL;
	cs_err r = stmt(s, Q_CP_RANGE, &st);
	if (r != CS_OK)
		return r;
	sqlite3_bind_int64(st, 1, min_last);
	sqlite3_bind_int64(st, 2, max_last);
	return checkpoint_rows(s, st, fn, arg);
}


static const cs_store_ops sqlite_ops = {
	.name = "sqlite",
	.close = sq_close,
	.ping = sq_ping,
	.write_begin = sq_write_begin,
	.write_end = sq_write_end,
	.savepoint = sq_savepoint,
	.savepoint_end = sq_savepoint_end,
	.read_begin = sq_read_begin,
	.read_end = sq_read_end,
	.changes = sq_changes,
	.session_insert = sq_session_insert,
	.session_get = sq_session_get,
	.session_claim = sq_session_claim,
	.cert_insert = sq_cert_insert,
	.cert_get = sq_cert_get,
	.sessions_delete_expired = sq_sessions_delete_expired,
	.probe_write = sq_probe_write,
	.key_upsert = sq_key_upsert,
	.key_set_status = sq_key_set_status,
	.keys_each = sq_keys_each,
	.keys_info = sq_keys_info,
	.key_info = sq_key_info,
	.key_active_in = sq_key_active_in,
	.keys_ever_active_in = sq_keys_ever_active_in,
	.key_insert = sq_key_insert,
	.key_event = sq_key_event,
	.key_set_chain = sq_key_set_chain,
	.ceremony_get = sq_ceremony_get,
	.ceremonies_each = sq_ceremonies_each,
	.ceremony_insert = sq_ceremony_insert,
	.approval_insert = sq_approval_insert,
	.ceremony_close = sq_ceremony_close,
	.rollovers_each = sq_rollovers_each,
	.rollover_insert = sq_rollover_insert,
	.revocations_each = sq_revocations_each,
	.revocation_get = sq_revocation_get,
	.revocations_version = sq_revocations_version,
	.revocation_insert = sq_revocation_insert,
	.inventory_each = sq_inventory_each,
	.cert_exists = sq_cert_exists,
	.key_compromised = sq_key_compromised,
	.cert_by_other_key = sq_cert_by_other_key,
	.signature_by_other_key = sq_signature_by_other_key,
	.signature_insert = sq_signature_insert,
	.signature_get = sq_signature_get,
	.signatures_by_sha256 = sq_signatures_by_sha256,
	.key_formats_signed = sq_key_formats_signed,
	.audit_last = sq_audit_last,
	.audit_insert = sq_audit_insert,
	.audit_hash_at = sq_audit_hash_at,
	.audit_first = sq_audit_first,
	.audit_delete_through = sq_audit_delete_through,
	.audit_ts_ordered_from = sq_audit_ts_ordered_from,
	.audit_each = sq_audit_each,
	.audit_purge_boundary = sq_audit_purge_boundary,
	.checkpoint_insert = sq_checkpoint_insert,
	.checkpointed = sq_checkpointed,
	.purge_base = sq_purge_base,
	.checkpoint_latest = sq_checkpoint_latest,
	.checkpoints_each = sq_checkpoints_each,
	.checkpoints_range = sq_checkpoints_range,
	.node_claim = sq_node_claim,
};
