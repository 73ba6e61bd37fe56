/*
 * store_sqlite: the SQLite backend of store.h. WAL journal, synchronous=FULL
 * (a commit is on disk before it returns), foreign keys on, busy timeout.
 * Migrations run in one IMMEDIATE transaction guarded by user_version.
 *
 * Every write goes write_begin() ... write_end(): write_end ends the
 * transaction (commit or rollback), disarms the write deadline and records
 * the outcome in the write health shared by the process's connections to
 * the same file, on every path, including a failed write_begin.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <time.h>

#include <sqlite3.h>

#include "cs_log.h"
#include "store.h"

#define BUSY_TIMEOUT_MS 5000
/* checkpoint_make and audit_purge start over when another writer recorded
 * a checkpoint between reading the head and inserting: at most this often */
#define CHECKPOINT_ATTEMPTS 8

/* The outcome of the last write transaction on one database file, shared by
 * every connection of the process to it (health_list, under health_lock). */
typedef struct store_health {
	struct store_health *next;
	char *path; /* NULL: a private database (":memory:", temporary) */
	int refs;
	int64_t at_ms; /* CLOCK_MONOTONIC ms of the last outcome, 0 = none yet */
	int ok;
} store_health;

static pthread_mutex_t health_lock = PTHREAD_MUTEX_INITIALIZER;
static store_health *health_list;

struct cs_store {
	sqlite3 *db;
	int write_timeout_ms;
	struct timespec deadline; /* of the running write, for the progress handler */
	sqlite3_int64 changes_at_begin; /* did the running write change anything? */
	store_health *health;
	char ts[32]; /* the ts of the last entry appended (see store.h) */
};

/* Migration N brings the schema from version N-1 to N. Append only. */
static const char *const migrations[] = {
	/* 1: sessions, certificates, keys */
	"CREATE TABLE generation_sessions ("
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
	");",
	/* 2: the append-only audit log and its signed checkpoints */
	"CREATE TABLE audit_log ("
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
	"  BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;",
	/* 3: finding uncertified sessions by expiry, for pruning */
	("CREATE INDEX generation_sessions_uncertified_expiry ON generation_sessions(expires_ms)"
	 "  WHERE cert_id IS NULL;"),
	/* 4: the row a readiness probe writes; where the ordered ts of audit
	 * entries begins (entries written before this version may decrease) */
	"CREATE TABLE store_probe (id INTEGER PRIMARY KEY CHECK (id = 1), at_ms INTEGER NOT NULL);"
	"CREATE TABLE store_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
	"INSERT INTO store_meta (name, value) SELECT 'audit_ts_ordered_from_seq', 1 + max("
	"  coalesce((SELECT max(seq) FROM audit_log), 0),"
	"  coalesce((SELECT max(last_seq) FROM audit_checkpoints), 0));",
};
#define SCHEMA_VERSION (int)(sizeof(migrations) / sizeof(migrations[0]))

static cs_err db_fail(cs_store *s, const char *what)
{
	cs_log_error("store: %s: %s", what, sqlite3_errmsg(s->db));
	return CS_E_STORE;
}

static cs_err exec(cs_store *s, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		cs_log_error("store: %s", msg != NULL ? msg : sqlite3_errmsg(s->db));
		sqlite3_free(msg);
		return CS_E_STORE;
	}
	return CS_OK;
}

static int user_version(cs_store *s)
{
	sqlite3_stmt *st = NULL;
	int v = -1;
	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

static cs_err migrate(cs_store *s)
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
		if ((r = exec(s, migrations[n - 1])) == CS_OK)
			r = exec(s, pragma);
		if (r == CS_OK)
			cs_log_info("store schema migrated to version %d", n);
	}
	if (r == CS_OK)
		return exec(s, "COMMIT");
	(void)exec(s, "ROLLBACK");
	return r;
}

/* ---- write health ------------------------------------------------------------ */

static int64_t mono_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* Share the health of the database file s->db has open. */
static cs_err health_attach(cs_store *s)
{
	const char *path = sqlite3_db_filename(s->db, "main");
	store_health *h = NULL;
	if (path == NULL || path[0] == '\0')
		path = NULL;
	pthread_mutex_lock(&health_lock);
	for (h = path != NULL ? health_list : NULL; h != NULL; h = h->next)
		if (strcmp(h->path, path) == 0)
			break;
	if (h == NULL && (h = calloc(1, sizeof(*h))) != NULL) {
		if (path != NULL && (h->path = strdup(path)) == NULL) {
			free(h);
			h = NULL;
		} else if (path != NULL) {
			h->next = health_list;
			health_list = h;
		}
	}
	if (h != NULL)
		h->refs++;
	pthread_mutex_unlock(&health_lock);
	s->health = h;
	return h != NULL ? CS_OK : CS_E_NOMEM;
}

static void health_detach(cs_store *s)
{
	store_health *h = s->health;
	if (h == NULL)
		return;
	pthread_mutex_lock(&health_lock);
	int last = --h->refs == 0;
	if (last && h->path != NULL)
		for (store_health **p = &health_list; *p != NULL; p = &(*p)->next)
			if (*p == h) {
				*p = h->next;
				break;
			}
	pthread_mutex_unlock(&health_lock);
	if (last) {
		free(h->path);
		free(h);
	}
	s->health = NULL;
}

/* Record a write's outcome; the changes of state are logged, once. */
static void health_record(cs_store *s, int ok)
{
	store_health *h = s->health;
	pthread_mutex_lock(&health_lock);
	int was_failing = h->at_ms != 0 && !h->ok, was_ok = h->at_ms == 0 || h->ok;
	h->at_ms = mono_ms();
	h->ok = ok;
	pthread_mutex_unlock(&health_lock);
	if (ok && was_failing)
		cs_log_info("store: writes succeed again");
	else if (!ok && was_ok)
		cs_log_error("store: a write failed; /readyz reports the store unavailable until a write succeeds");
}

/* ---- open, close ------------------------------------------------------------- */

cs_err cs_store_open(const char *path, cs_store **out)
{
	*out = NULL;
	cs_store *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return CS_E_NOMEM;
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
	    (r = migrate(s)) != CS_OK || (r = health_attach(s)) != CS_OK)
		goto fail;
	*out = s;
	return CS_OK;
fail:
	cs_store_close(s);
	return r;
}

void cs_store_close(cs_store *s)
{
	if (s == NULL)
		return;
	health_detach(s);
	sqlite3_close(s->db);
	free(s);
}

cs_err cs_store_ping(cs_store *s)
{
	sqlite3_stmt *st = NULL;
	cs_err r = CS_E_STORE;
	if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM signing_keys", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		r = CS_OK;
	else
		db_fail(s, "ping");
	sqlite3_finalize(st);
	return r;
}

static cs_err prepare(cs_store *s, const char *sql, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
		return db_fail(s, "prepare");
	return CS_OK;
}

/* Step a statement that returns no rows; finalizes it. */
static cs_err step_done(cs_store *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? CS_OK : db_fail(s, what);
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

/* ---- write transactions, bounded in time -------------------------------- */

static int past_deadline(void *arg)
{
	cs_store *s = arg;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > s->deadline.tv_sec ||
	       (now.tv_sec == s->deadline.tv_sec && now.tv_nsec > s->deadline.tv_nsec);
}

void cs_store_set_write_timeout(cs_store *s, int ms)
{
	s->write_timeout_ms = ms;
	sqlite3_busy_timeout(s->db, ms);
}

/* Begin a write: arm the deadline, take the write lock. Whatever it
 * returns, the caller ends with write_end(s, r). */
static cs_err write_begin(cs_store *s)
{
	if (s->write_timeout_ms > 0) {
		clock_gettime(CLOCK_MONOTONIC, &s->deadline);
		s->deadline.tv_sec += s->write_timeout_ms / 1000;
		s->deadline.tv_nsec += (long)(s->write_timeout_ms % 1000) * 1000000L;
		if (s->deadline.tv_nsec >= 1000000000L) {
			s->deadline.tv_sec++;
			s->deadline.tv_nsec -= 1000000000L;
		}
		sqlite3_progress_handler(s->db, 1000, past_deadline, s);
	}
	s->changes_at_begin = sqlite3_total_changes64(s->db);
	cs_err r = exec(s, "BEGIN IMMEDIATE");
	if (r != CS_OK) /* also here: a caller that returns early leaves nothing armed */
		sqlite3_progress_handler(s->db, 0, NULL, NULL);
	return r;
}

/* End a write begun by write_begin (also when it failed): commit when r is
 * CS_OK, else roll back; disarm the deadline; record the outcome. */
static cs_err write_end(cs_store *s, cs_err r)
{
	if (r == CS_OK)
		r = exec(s, "COMMIT");
	sqlite3_progress_handler(s->db, 0, NULL, NULL); /* the rollback must not be interrupted */
	if (!sqlite3_get_autocommit(s->db))
		(void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	if (r == CS_OK && sqlite3_total_changes64(s->db) != s->changes_at_begin)
		health_record(s, 1); /* something reached the disk */
	else if (r != CS_OK && cs_err_category_of(r) == CS_CAT_STORE)
		health_record(s, 0);
	return r;
}

cs_err cs_store_write_health(cs_store *s, int max_age_ms)
{
	pthread_mutex_lock(&health_lock);
	int64_t at = s->health->at_ms;
	int ok = s->health->ok;
	pthread_mutex_unlock(&health_lock);
	if (at != 0 && mono_ms() - at < max_age_ms)
		return ok ? CS_OK : CS_E_STORE;
	/* no recent write: probe with one, durable like any other */
	sqlite3_stmt *st = NULL;
	cs_err r = write_begin(s);
	if (r == CS_OK && (r = prepare(s, "INSERT INTO store_probe (id, at_ms) VALUES (1, ?) "
					  "ON CONFLICT(id) DO UPDATE SET at_ms = excluded.at_ms", &st)) == CS_OK) {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		sqlite3_bind_int64(st, 1, (sqlite3_int64)now.tv_sec * 1000 + now.tv_nsec / 1000000);
		r = step_done(s, st, "probing a write");
	}
	return write_end(s, r);
}

/* ---- audit ------------------------------------------------------------------- */

/* The chain's base: the newest purge checkpoint's head, or zeros. */
static cs_err chain_base(cs_store *s, int64_t *seq, uint8_t hash[32])
{
	sqlite3_stmt *st = NULL;
	*seq = 0;
	memset(hash, 0, 32);
	cs_err r = prepare(s, "SELECT last_seq, head_hash FROM audit_checkpoints WHERE kind = 'purge' "
			      "ORDER BY last_seq DESC LIMIT 1", &st);
	if (r != CS_OK)
		return r;
	int rc = sqlite3_step(st);
	const uint8_t *h = rc == SQLITE_ROW ? hash_col(st, 1) : NULL;
	if (h != NULL) {
		*seq = sqlite3_column_int64(st, 0);
		memcpy(hash, h, 32);
	} else if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		r = db_fail(s, "reading the audit chain base");
	}
	sqlite3_finalize(st);
	return r;
}

/* The newest entry's seq, hash and ts (ts "" and the chain base when the
 * log is empty). */
static cs_err audit_last(cs_store *s, int64_t *seq, uint8_t hash[32], char ts[32])
{
	sqlite3_stmt *st = NULL;
	const char *t = NULL;
	ts[0] = '\0';
	cs_err r = prepare(s, "SELECT seq, entry_hash, ts FROM audit_log ORDER BY seq DESC LIMIT 1", &st);
	if (r != CS_OK)
		return r;
	int rc = sqlite3_step(st);
	const uint8_t *h = rc == SQLITE_ROW ? hash_col(st, 1) : NULL;
	if (h != NULL) {
		*seq = sqlite3_column_int64(st, 0);
		memcpy(hash, h, 32);
		if ((r = text_col(st, 2, 0, &t)) == CS_OK)
			snprintf(ts, 32, "%s", t); /* longer never comes from this store */
	} else if (rc == SQLITE_DONE) {
		sqlite3_finalize(st);
		return chain_base(s, seq, hash);
	} else {
		r = db_fail(s, "reading the audit head");
	}
	sqlite3_finalize(st);
	return r;
}

static void bind_opt(sqlite3_stmt *st, int i, const char *v)
{
	if (v != NULL)
		sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

/* Inside a write transaction: fix seq and ts (see store.h), chain and
 * insert one entry. */
static cs_err audit_insert(cs_store *s, cs_audit_entry *e)
{
	uint8_t prev[32], hash[32];
	char prev_ts[32], ts[32];
	int64_t last = 0;
	sqlite3_stmt *st = NULL;
	cs_err r = audit_last(s, &last, prev, prev_ts);
	if (r != CS_OK)
		return r;
	if (e->ts == NULL) {
		cs_audit_now(ts); /* the write lock is ours: later entries take later times */
	} else if (strlen(e->ts) >= sizeof(ts)) {
		cs_log_error("store: audit entry time '%.40s...' is too long", e->ts);
		return CS_E_INVALID_ARG;
	} else {
		memcpy(ts, e->ts, strlen(e->ts) + 1); /* e->ts may be s->ts */
	}
	if (strcmp(ts, prev_ts) < 0)
		memcpy(ts, prev_ts, sizeof(ts)); /* never before the entry before it */
	memcpy(s->ts, ts, sizeof(ts));
	e->ts = s->ts;
	e->seq = last + 1;
	if ((r = cs_audit_hash(NULL, prev, e, hash)) != CS_OK)
		return r;
	if ((r = prepare(s, "INSERT INTO audit_log (seq, ts, node, actor, actor_cert_sha256, role, action, "
			    "object, project, environment, outcome, error_code, request_id, prev_hash, "
			    "entry_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", &st)) != CS_OK)
		return r;
	sqlite3_bind_int64(st, 1, e->seq);
	bind_opt(st, 2, e->ts);
	bind_opt(st, 3, e->node);
	bind_opt(st, 4, e->actor);
	bind_opt(st, 5, e->actor_cert_sha256);
	bind_opt(st, 6, e->role);
	bind_opt(st, 7, e->action);
	bind_opt(st, 8, e->object);
	bind_opt(st, 9, e->project);
	bind_opt(st, 10, e->environment);
	bind_opt(st, 11, e->outcome);
	bind_opt(st, 12, e->error_code);
	bind_opt(st, 13, e->request_id);
	sqlite3_bind_blob(st, 14, prev, 32, SQLITE_STATIC);
	sqlite3_bind_blob(st, 15, hash, 32, SQLITE_STATIC);
	return step_done(s, st, "appending to the audit log");
}

cs_err cs_store_audit_append(cs_store *s, cs_audit_entry *e)
{
	cs_err r = write_begin(s);
	if (r == CS_OK)
		r = audit_insert(s, e);
	return write_end(s, r);
}

cs_err cs_store_audit_ts_ordered_from(cs_store *s, int64_t *seq)
{
	sqlite3_stmt *st = NULL;
	*seq = 1; /* no record: hold every entry to the ordering */
	cs_err r = prepare(s, "SELECT value FROM store_meta WHERE name = 'audit_ts_ordered_from_seq'", &st);
	if (r != CS_OK)
		return r;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*seq = sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE)
		r = db_fail(s, "reading the store's metadata");
	sqlite3_finalize(st);
	return r;
}

/* Inside a transaction: the last seq any checkpoint covers. */
static cs_err checkpointed(cs_store *s, int64_t *covered)
{
	sqlite3_stmt *st = NULL;
	cs_err r = prepare(s, "SELECT coalesce(max(last_seq), 0) FROM audit_checkpoints", &st);
	if (r != CS_OK)
		return r;
	if (sqlite3_step(st) == SQLITE_ROW)
		*covered = sqlite3_column_int64(st, 0);
	else
		r = db_fail(s, "reading checkpoints");
	sqlite3_finalize(st);
	return r;
}

cs_err cs_store_audit_head(cs_store *s, int64_t *last_seq, uint8_t hash[32], int64_t *covered)
{
	char ts[32];
	/* one read transaction: the head and the checkpoints of one moment */
	cs_err r = exec(s, "BEGIN");
	if (r != CS_OK)
		return r;
	if ((r = audit_last(s, last_seq, hash, ts)) == CS_OK)
		r = checkpointed(s, covered);
	if (r == CS_OK)
		r = exec(s, "COMMIT");
	if (!sqlite3_get_autocommit(s->db))
		(void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

/* Inside the write transaction: whether entry seq is still there with this
 * hash. */
static cs_err entry_has_hash(cs_store *s, int64_t seq, const uint8_t hash[32], int *same)
{
	sqlite3_stmt *st = NULL;
	*same = 0;
	cs_err r = prepare(s, "SELECT entry_hash FROM audit_log WHERE seq = ?", &st);
	if (r != CS_OK)
		return r;
	sqlite3_bind_int64(st, 1, seq);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*same = hash_col(st, 0) != NULL && memcmp(hash_col(st, 0), hash, 32) == 0;
	else if (rc != SQLITE_DONE)
		r = db_fail(s, "reading the audit log");
	sqlite3_finalize(st);
	return r;
}

static cs_err checkpoint_insert(cs_store *s, int64_t first, int64_t last, const uint8_t hash[32],
				const char *ts, const char *node, const char *kind, const char *jws)
{
	sqlite3_stmt *st = NULL;
	cs_err r = prepare(s, "INSERT INTO audit_checkpoints (first_seq, last_seq, head_hash, ts, node, kind, jws) "
			      "VALUES (?,?,?,?,?,?,?)", &st);
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

cs_err cs_store_checkpoint_make(cs_store *s, const char *node, const char *kind, cs_checkpoint_sign_fn sign,
				void *arg, int64_t *first_out, int64_t *last_out)
{
	if (first_out != NULL)
		*first_out = 0;
	if (last_out != NULL)
		*last_out = 0;
	for (int attempt = 0; attempt < CHECKPOINT_ATTEMPTS; attempt++) {
		int64_t last = 0, covered = 0, now_covered = 0;
		uint8_t head[32];
		char ts[32], *jws = NULL;
		int same = 0;
		cs_err r = cs_store_audit_head(s, &last, head, &covered);
		if (r != CS_OK || last <= covered)
			return r; /* nothing new to cover */
		cs_audit_now(ts);
		if ((r = sign(arg, covered + 1, last, head, ts, node, kind, &jws)) != CS_OK)
			return r;
		/* the head may have been covered meanwhile (a purge beside us) */
		r = write_begin(s);
		if (r == CS_OK && (r = checkpointed(s, &now_covered)) == CS_OK && now_covered == covered &&
		    (r = entry_has_hash(s, last, head, &same)) == CS_OK && same)
			r = checkpoint_insert(s, covered + 1, last, head, ts, node, kind, jws);
		r = write_end(s, r);
		free(jws);
		if (r != CS_OK)
			return r;
		if (now_covered == covered && same) {
			if (first_out != NULL)
				*first_out = covered + 1;
			if (last_out != NULL)
				*last_out = last;
			return CS_OK;
		}
		if (now_covered >= last)
			return CS_OK; /* another writer's checkpoint covers these entries */
		cs_log_info("store: another writer checkpointed the audit log during checkpoint %lld..%lld; "
			    "starting over", (long long)covered + 1, (long long)last);
	}
	cs_log_error("store: the audit checkpoints kept changing; no %s checkpoint made", kind);
	return CS_E_STORE;
}

cs_err cs_store_checkpoint_latest(cs_store *s, char **jws)
{
	sqlite3_stmt *st = NULL;
	*jws = NULL;
	cs_err r = prepare(s, "SELECT jws FROM audit_checkpoints ORDER BY id DESC LIMIT 1", &st);
	if (r != CS_OK)
		return r;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = dup_col(st, 0, jws);
	else
		r = rc == SQLITE_DONE ? CS_E_NOT_FOUND : db_fail(s, "reading checkpoints");
	sqlite3_finalize(st);
	return r;
}

cs_err cs_store_audit_each(cs_store *s, int64_t from_seq, int64_t limit, cs_audit_row_fn fn, void *arg)
{
	/* optional fields of cs_audit_entry, by column (1..12) */
	static const int optional[13] = {[4] = 1, [7] = 1, [8] = 1, [9] = 1, [11] = 1, [12] = 1};
	sqlite3_stmt *st = NULL;
	cs_err r = prepare(s, "SELECT seq, ts, node, actor, actor_cert_sha256, role, action, object, project, "
			      "environment, outcome, error_code, request_id, prev_hash, entry_hash "
			      "FROM audit_log WHERE seq >= ? ORDER BY seq LIMIT ?", &st);
	if (r != CS_OK)
		return r;
	sqlite3_bind_int64(st, 1, from_seq);
	sqlite3_bind_int64(st, 2, limit > 0 ? limit : -1);
	int rc;
	static const uint8_t zero[32];
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *f[13] = {NULL};
		for (int i = 1; r == CS_OK && i <= 12; i++)
			r = text_col(st, i, optional[i], &f[i]);
		if (r != CS_OK)
			break;
		cs_audit_entry e = {sqlite3_column_int64(st, 0), f[1], f[2], f[3], f[4], f[5], f[6],
				    f[7], f[8], f[9], f[10], f[11], f[12]};
		const uint8_t *prev = hash_col(st, 13) ?: zero, *hash = hash_col(st, 14) ?: zero;
		if (fn(arg, &e, prev, hash))
			break;
	}
	sqlite3_finalize(st);
	if (r != CS_OK)
		return r;
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? CS_OK : db_fail(s, "reading the audit log");
}

cs_err cs_store_checkpoints_each(cs_store *s, cs_checkpoint_row_fn fn, void *arg)
{
	sqlite3_stmt *st = NULL;
	cs_err r = prepare(s, "SELECT first_seq, last_seq, head_hash, ts, node, kind, jws "
			      "FROM audit_checkpoints ORDER BY id", &st);
	if (r != CS_OK)
		return r;
	int rc;
	static const uint8_t zero[32];
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
	sqlite3_finalize(st);
	if (r != CS_OK)
		return r;
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? CS_OK : db_fail(s, "reading checkpoints");
}

cs_err cs_store_audit_purge_boundary(cs_store *s, const char *cutoff, int64_t *first, int64_t *boundary,
				     uint8_t hash[32])
{
	sqlite3_stmt *st = NULL;
	*first = *boundary = 0;
	cs_err r = prepare(s, "SELECT (SELECT min(seq) FROM audit_log), seq, entry_hash FROM audit_log "
			      "WHERE ts < ? ORDER BY seq DESC LIMIT 1", &st);
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
	sqlite3_finalize(st);
	return r;
}

/* Inside the write transaction: the oldest entry kept. */
static cs_err audit_first(cs_store *s, int64_t *first)
{
	sqlite3_stmt *st = NULL;
	cs_err r = prepare(s, "SELECT coalesce(min(seq), 0) FROM audit_log", &st);
	if (r != CS_OK)
		return r;
	if (sqlite3_step(st) == SQLITE_ROW)
		*first = sqlite3_column_int64(st, 0);
	else
		r = db_fail(s, "reading the audit log");
	sqlite3_finalize(st);
	return r;
}

cs_err cs_store_audit_purge(cs_store *s, const char *cutoff, const char *node, cs_checkpoint_sign_fn sign,
			    void *arg, int64_t *first_out, int64_t *boundary_out)
{
	*first_out = *boundary_out = 0;
	for (int attempt = 0; attempt < CHECKPOINT_ATTEMPTS; attempt++) {
		int64_t first = 0, boundary = 0, now_first = 0;
		uint8_t head[32];
		char ts[32], *jws = NULL;
		int same = 0;
		sqlite3_stmt *st = NULL;
		cs_err r = cs_store_audit_purge_boundary(s, cutoff, &first, &boundary, head);
		if (r != CS_OK || boundary == 0)
			return r;
		cs_audit_now(ts);
		if ((r = sign(arg, first, boundary, head, ts, node, "purge", &jws)) != CS_OK)
			return r;
		r = write_begin(s);
		if (r == CS_OK && (r = audit_first(s, &now_first)) == CS_OK && now_first == first &&
		    (r = entry_has_hash(s, boundary, head, &same)) == CS_OK && same &&
		    (r = checkpoint_insert(s, first, boundary, head, ts, node, "purge", jws)) == CS_OK &&
		    (r = prepare(s, "DELETE FROM audit_log WHERE seq <= ?", &st)) == CS_OK) {
			sqlite3_bind_int64(st, 1, boundary);
			r = step_done(s, st, "purging the audit log");
		}
		r = write_end(s, r);
		free(jws);
		if (r != CS_OK)
			return r;
		if (now_first == first && same) {
			*first_out = first;
			*boundary_out = boundary;
			return CS_OK;
		}
		cs_log_info("store: the audit log changed during purge %lld..%lld; starting over",
			    (long long)first, (long long)boundary);
	}
	cs_log_error("store: the audit log kept changing; nothing purged");
	return CS_E_STORE;
}

/* ---- sessions and certificates --------------------------------------------- */

cs_err cs_store_session_put(cs_store *s, const cs_gen_session *g, cs_audit_entry *audit)
{
	sqlite3_stmt *st = NULL;
	cs_err r = write_begin(s);
	if (r == CS_OK)
		r = prepare(s, "INSERT INTO generation_sessions (id, created_ms, expires_ms, "
			       "cert_sha256, claims_json) VALUES (?, ?, ?, ?, ?)", &st);
	if (r == CS_OK) {
		sqlite3_bind_text(st, 1, g->id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, g->created_ms);
		sqlite3_bind_int64(st, 3, g->expires_ms);
		sqlite3_bind_text(st, 4, g->cert_sha256, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, g->claims_json, -1, SQLITE_STATIC);
		r = step_done(s, st, "storing the generation session");
	}
	if (r == CS_OK && audit != NULL)
		r = audit_insert(s, audit);
	return write_end(s, r);
}

cs_err cs_store_session_claims(cs_store *s, const char *session_id, const char *cert_sha256,
			       int64_t now_ms, char **claims)
{
	*claims = NULL;
	sqlite3_stmt *st = NULL;
	const char *owner = NULL;
	cs_err r = prepare(s, "SELECT cert_sha256, expires_ms, cert_id, claims_json "
			      "FROM generation_sessions WHERE id = ?", &st);
	if (r != CS_OK)
		return r;
	sqlite3_bind_text(st, 1, session_id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		r = CS_E_NOT_FOUND;
	} else if (rc != SQLITE_ROW) {
		r = db_fail(s, "reading the generation session");
	} else if ((r = text_col(st, 0, 0, &owner)) != CS_OK) {
		/* r says why */
	} else if (strcmp(owner, cert_sha256) != 0) {
		r = CS_E_FORBIDDEN;
	} else if (sqlite3_column_type(st, 2) != SQLITE_NULL) {
		r = CS_E_SESSION_USED;
	} else if (sqlite3_column_int64(st, 1) <= now_ms) {
		r = CS_E_SESSION_EXPIRED;
	} else {
		r = dup_col(st, 3, claims);
	}
	sqlite3_finalize(st);
	return r;
}

cs_err cs_store_cert_put(cs_store *s, const char *session_id, const char *cert_id,
			 const char *kid, const char *jws, const char *claims, int64_t now_ms,
			 cs_audit_entry *audit)
{
	sqlite3_stmt *st = NULL;
	cs_err r = write_begin(s);
	if (r != CS_OK)
		goto out; /* write_end all the same: it disarms the deadline */
	/* claim the session first: only one certificate per session */
	if ((r = prepare(s, "UPDATE generation_sessions SET cert_id = ? WHERE id = ? AND cert_id IS NULL",
			 &st)) != CS_OK)
		goto out;
	sqlite3_bind_text(st, 1, cert_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, session_id, -1, SQLITE_STATIC);
	if ((r = step_done(s, st, "marking the session certified")) != CS_OK)
		goto out;
	if (sqlite3_changes(s->db) != 1) {
		r = CS_E_SESSION_USED;
		goto out;
	}
	if ((r = prepare(s, "INSERT INTO certificates (id, session_id, kid, jws, claims_json, "
			    "created_ms) VALUES (?, ?, ?, ?, ?, ?)", &st)) != CS_OK)
		goto out;
	sqlite3_bind_text(st, 1, cert_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, session_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, kid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, jws, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, claims, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, now_ms);
	if ((r = step_done(s, st, "storing the certificate")) != CS_OK)
		goto out;
	if (audit != NULL)
		r = audit_insert(s, audit);
out:
	return write_end(s, r);
}

cs_err cs_store_sessions_prune(cs_store *s, int64_t expired_before_ms, int64_t *removed)
{
	sqlite3_stmt *st = NULL;
	*removed = 0;
	cs_err r = write_begin(s);
	if (r == CS_OK)
		r = prepare(s, "DELETE FROM generation_sessions WHERE cert_id IS NULL AND expires_ms < ?",
			    &st);
	if (r == CS_OK) {
		sqlite3_bind_int64(st, 1, expired_before_ms);
		if ((r = step_done(s, st, "pruning expired sessions")) == CS_OK)
			*removed = sqlite3_changes(s->db);
	}
	r = write_end(s, r);
	if (r != CS_OK)
		*removed = 0; /* rolled back */
	return r;
}

cs_err cs_store_cert_get(cs_store *s, const char *cert_id, char **jws, char **claims_json)
{
	sqlite3_stmt *st = NULL;
	*jws = *claims_json = NULL;
	cs_err r = prepare(s, "SELECT jws, claims_json FROM certificates WHERE id = ?", &st);
	if (r != CS_OK)
		return r;
	sqlite3_bind_text(st, 1, cert_id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if ((r = dup_col(st, 0, jws)) == CS_OK)
			r = dup_col(st, 1, claims_json);
	} else {
		r = rc == SQLITE_DONE ? CS_E_NOT_FOUND : db_fail(s, "reading the certificate");
	}
	sqlite3_finalize(st);
	if (r != CS_OK) {
		free(*jws);
		free(*claims_json);
		*jws = *claims_json = NULL;
	}
	return r;
}

/* Inside a write transaction: one active key, so activating `kid` retires
 * the others, each retirement an audit entry like `audit` (when given). */
static cs_err retire_others(cs_store *s, const char *kid, const cs_audit_entry *audit)
{
	sqlite3_stmt *st = NULL;
	char old[8][CS_ID_MAX];
	int n = 0, rc = SQLITE_DONE;
	cs_err r = prepare(s, "SELECT kid FROM signing_keys WHERE status = 'active' AND kid <> ?", &st);
	if (r != CS_OK)
		return r;
	sqlite3_bind_text(st, 1, kid, -1, SQLITE_STATIC);
	while (r == CS_OK && n < 8 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *v = NULL;
		if ((r = text_col(st, 0, 0, &v)) == CS_OK &&
		    snprintf(old[n++], CS_ID_MAX, "%s", v) >= CS_ID_MAX) {
			cs_log_error("store: signing key id '%.40s...' is too long", v);
			r = CS_E_STORE;
		}
	}
	if (r == CS_OK && n < 8 && rc != SQLITE_DONE)
		r = db_fail(s, "reading the active signing key");
	sqlite3_finalize(st);
	if (r != CS_OK)
		return r;
	if ((r = prepare(s, "UPDATE signing_keys SET status = 'retired' WHERE status = 'active' AND kid <> ?",
			 &st)) != CS_OK)
		return r;
	sqlite3_bind_text(st, 1, kid, -1, SQLITE_STATIC);
	if ((r = step_done(s, st, "retiring the previous signing key")) != CS_OK)
		return r;
	for (int i = 0; i < n && audit != NULL && r == CS_OK; i++) {
		cs_audit_entry e = *audit;
		e.action = "key.retire";
		e.object = old[i];
		r = audit_insert(s, &e);
	}
	return r;
}

cs_err cs_store_key_put(cs_store *s, const char *kid, const char *uri, const char *jwk_json,
			const char *status, int *changed, cs_audit_entry *audit)
{
	sqlite3_stmt *st = NULL;
	*changed = 0;
	cs_err r = write_begin(s);
	/* is this already the key's state? then there is nothing to record */
	if (r == CS_OK && (r = prepare(s, "SELECT count(*) FROM signing_keys WHERE kid = ? AND status = ? "
					  "AND (? <> 'active' OR (SELECT count(*) FROM signing_keys WHERE "
					  "status = 'active') = 1)", &st)) == CS_OK) {
		sqlite3_bind_text(st, 1, kid, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, status, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			*changed = sqlite3_column_int(st, 0) == 0;
		else
			r = db_fail(s, "reading the signing keys");
		sqlite3_finalize(st);
	}
	if (r == CS_OK && *changed && strcmp(status, "active") == 0)
		r = retire_others(s, kid, audit);
	if (r == CS_OK && *changed &&
	    (r = prepare(s, "INSERT INTO signing_keys (kid, uri, jwk_json, status) VALUES (?, ?, ?, ?) "
			    "ON CONFLICT(kid) DO UPDATE SET status = excluded.status, uri = excluded.uri",
			 &st)) == CS_OK) {
		sqlite3_bind_text(st, 1, kid, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, uri, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, jwk_json, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, status, -1, SQLITE_STATIC);
		r = step_done(s, st, "storing the signing key");
	}
	if (r == CS_OK && *changed && audit != NULL)
		r = audit_insert(s, audit);
	r = write_end(s, r);
	if (r != CS_OK)
		*changed = 0; /* rolled back */
	return r;
}

cs_err cs_store_keys_each(cs_store *s, cs_key_row_fn fn, void *arg)
{
	sqlite3_stmt *st = NULL;
	cs_err r = prepare(s, "SELECT kid, jwk_json, status, created_at FROM signing_keys "
			      "ORDER BY created_at, kid", &st);
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
	sqlite3_finalize(st);
	if (r != CS_OK)
		return r;
	return rc == SQLITE_DONE ? CS_OK : db_fail(s, "listing signing keys");
}
