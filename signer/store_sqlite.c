/*
 * store_sqlite: the SQLite backend of store.h. WAL journal, synchronous=FULL
 * (a commit is on disk before it returns), foreign keys on, busy timeout.
 * Migrations run in one IMMEDIATE transaction guarded by user_version.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "cs_log.h"
#include "store.h"

#define BUSY_TIMEOUT_MS 5000

struct cs_store {
	sqlite3 *db;
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
};
#define SCHEMA_VERSION (int)(sizeof(migrations) / sizeof(migrations[0]))

int cs_store_schema_version(void)
{
	return SCHEMA_VERSION;
}

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
	    (r = migrate(s)) != CS_OK)
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

cs_err cs_store_session_put(cs_store *s, const cs_gen_session *g)
{
	sqlite3_stmt *st = NULL;
	cs_err r = prepare(s, "INSERT INTO generation_sessions (id, created_ms, expires_ms, "
			      "cert_sha256, claims_json) VALUES (?, ?, ?, ?, ?)", &st);
	if (r != CS_OK)
		return r;
	sqlite3_bind_text(st, 1, g->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, g->created_ms);
	sqlite3_bind_int64(st, 3, g->expires_ms);
	sqlite3_bind_text(st, 4, g->cert_sha256, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, g->claims_json, -1, SQLITE_STATIC);
	return step_done(s, st, "storing the generation session");
}

cs_err cs_store_session_claims(cs_store *s, const char *session_id, const char *cert_sha256,
			       int64_t now_ms, char **claims)
{
	*claims = NULL;
	sqlite3_stmt *st = NULL;
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
	} else if (strcmp((const char *)sqlite3_column_text(st, 0), cert_sha256) != 0) {
		r = CS_E_FORBIDDEN;
	} else if (sqlite3_column_type(st, 2) != SQLITE_NULL) {
		r = CS_E_SESSION_USED;
	} else if (sqlite3_column_int64(st, 1) <= now_ms) {
		r = CS_E_SESSION_EXPIRED;
	} else if ((*claims = strdup((const char *)sqlite3_column_text(st, 3))) == NULL) {
		r = CS_E_NOMEM;
	}
	sqlite3_finalize(st);
	return r;
}

cs_err cs_store_cert_put(cs_store *s, const char *session_id, const char *cert_id,
			 const char *kid, const char *jws, const char *claims, int64_t now_ms)
{
	sqlite3_stmt *st = NULL;
	cs_err r = exec(s, "BEGIN IMMEDIATE");
	if (r != CS_OK)
		return r;
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
	r = exec(s, "COMMIT");
out:
	if (r != CS_OK)
		(void)exec(s, "ROLLBACK");
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
		*jws = strdup((const char *)sqlite3_column_text(st, 0));
		*claims_json = strdup((const char *)sqlite3_column_text(st, 1));
		r = (*jws != NULL && *claims_json != NULL) ? CS_OK : CS_E_NOMEM;
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

cs_err cs_store_key_put(cs_store *s, const char *kid, const char *uri, const char *jwk_json,
			const char *status)
{
	sqlite3_stmt *st = NULL;
	cs_err r = prepare(s, "INSERT INTO signing_keys (kid, uri, jwk_json, status) VALUES (?, ?, ?, ?) "
			      "ON CONFLICT(kid) DO UPDATE SET status = excluded.status, uri = excluded.uri",
			   &st);
	if (r != CS_OK)
		return r;
	sqlite3_bind_text(st, 1, kid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, uri, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, jwk_json, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, status, -1, SQLITE_STATIC);
	return step_done(s, st, "storing the signing key");
}

cs_err cs_store_keys_each(cs_store *s, cs_key_row_fn fn, void *arg)
{
	sqlite3_stmt *st = NULL;
	cs_err r = prepare(s, "SELECT kid, jwk_json, status, created_at FROM signing_keys "
			      "ORDER BY created_at, kid", &st);
	if (r != CS_OK)
		return r;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		fn(arg, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
		   (const char *)sqlite3_column_text(st, 2), (const char *)sqlite3_column_text(st, 3));
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? CS_OK : db_fail(s, "listing signing keys");
}

cs_err cs_store_sessions_prune(cs_store *s, int64_t now_ms)
{
	sqlite3_stmt *st = NULL;
	cs_err r = prepare(s, "DELETE FROM generation_sessions WHERE cert_id IS NULL AND expires_ms < ?",
			   &st);
	if (r != CS_OK)
		return r;
	sqlite3_bind_int64(st, 1, now_ms);
	return step_done(s, st, "pruning sessions");
}
