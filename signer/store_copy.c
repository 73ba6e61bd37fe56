/*
 * store_copy: a SQLite store into a PostgreSQL one, row for row (store_copy.h).
 *
 * The rows travel through COPY ... FROM STDIN in its text format: one line a
 * row, columns separated by tabs, \N for NULL, text with backslash, tab,
 * newline and carriage return escaped, bytea as its hex input (\\x...).
 * Every column's SQLite type is checked against the schema's (text,
 * integer, blob): a value of another type is refused, never converted.
 */
#include "store_copy.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <sqlite3.h>

#include "cs_log.h"
#include "store_backend.h"

/* The SQLite schema version whose tables are listed below (store_sqlite.c's
 * SCHEMA_VERSION; PostgreSQL's, PG_SCHEMA_VERSION, holds the same tables
 * and more guards): a migration that changes a table must change this
 * list and this number. */
#define COPY_SCHEMA_VERSION 10 /* 10: only derived (generated) columns added, not copied */
/* The write lock every node takes (store_pg.c's PG_WRITE_LOCK). */
#define COPY_WRITE_LOCK "7163220305711862835"
/* A node may hold the write lock for a write's deadline: wait longer. */
#define COPY_LOCK_TIMEOUT "60s"
#define FLUSH_AT (64 * 1024)

/* One table: its columns (in the order given to SELECT and COPY) and their
 * types, one letter each: T text, I integer, B blob. */
typedef struct {
	const char *name;
	const char *columns;
	const char *types;
	int has_id; /* an "id" column the PostgreSQL schema may number (identity) */
} table_spec;

/* References before referrers; store_meta last (its values overwrite what
 * the destination's triggers counted while the rows went in). */
static const table_spec tables[CS_STORE_COPY_TABLES] = {
	{"signing_keys",
	 "kid, uri, jwk_json, status, created_at, label, cka_id, created_by, activated_at, activated_by, "
	 "activated_ceremony, retired_at, retired_by, retired_ceremony, compromised_at, compromised_by, "
	 "compromised_ceremony, destroyed_at, destroyed_by, destroyed_ceremony, x5c_json, profile",
	 "TTTTTTTTTTTTTTTTTTTTTT", 0},
	{"generation_sessions", "id, created_ms, expires_ms, cert_sha256, cert_id", "TIITT", 0},
	{"session_claims", "id, session_id, claims_json", "ITT", 1},
	{"certificates", "id, session_id, kid, header, claims_json, signature, created_ms", "TTTTTTI", 0},
	{"ceremonies",
	 "id, action, subject, reason, params_json, nonce, node, created_at, expires_at, started_by, canonical, "
	 "state, executed_at, executed_by, result_json",
	 "TTTTTTTTTTTTTTT", 0},
	{"ceremony_approvals",
	 "id, ceremony_id, officer, fingerprint, cert_pem, sig_alg, signature_b64, approved_at, approved_by",
	 "ITTTTTTTT", 1},
	{"key_rollovers", "id, ceremony_id, old_kid, new_kid, statement_json, created_at", "ITTTTT", 1},
	{"cert_revocations", "id, cert_id, reason, revoked_at, revoked_by, ceremony_id", "ITTTTT", 1},
	{"signatures",
	 "id, profile, format, requester, requester_cert_sha256, created_at, signed_sha256, kid, signature, "
	 "signature_der, payload_type, payload, audit_seq",
	 "TTTTTTTTTTTBI", 0},
	{"audit_log",
	 "seq, ts, node, actor, actor_cert_sha256, role, action, object, project, environment, outcome, error_code, "
	 "request_id, prev_hash, entry_hash",
	 "ITTTTTTTTTTTTBB", 0},
	{"audit_checkpoints", "id, first_seq, last_seq, head_hash, ts, node, kind, jws", "IIIBTTTT", 1},
	{"store_probe", "id, at_ms", "II", 1},
	{"store_nodes", "node_id, instance, host, pid, started_ms, seen_ms", "TTTIII", 0},
	{"store_meta", "name, value", "TI", 0},
};
#define META (CS_STORE_COPY_TABLES - 1)

/* ---- the two connections ---------------------------------------------------- */

static cs_err pg_fail(PGconn *conn, const char *what)
{
	const char *msg = conn != NULL ? PQerrorMessage(conn) : "out of memory";
	size_t n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		n--;
	cs_log_error("store copy: %s: %.*s", what, (int)n, msg);
	return CS_E_STORE;
}

static cs_err sq_fail(sqlite3 *db, const char *what)
{
	cs_log_error("store copy: %s: %s", what, db != NULL ? sqlite3_errmsg(db) : "out of memory");
	return CS_E_STORE;
}

/* A statement without parameters whose rows (if any) are not needed. */
static cs_err pg_run(PGconn *conn, const char *what, const char *sql)
{
	PGresult *res = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(res);
	cs_err r = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? CS_OK : pg_fail(conn, what);
	PQclear(res);
	return r;
}

/* One integer from the first row and column of sql (n text parameters);
 * *found 0 when there is no row or it is NULL. */
static cs_err pg_int(PGconn *conn, const char *what, const char *sql, int n, const char *const *params, int64_t *v,
		     int *found)
{
	PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
	*v = 0;
	*found = 0;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pg_fail(conn, what);
		PQclear(res);
		return CS_E_STORE;
	}
	if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0)) {
		*v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		*found = 1;
	}
	PQclear(res);
	return CS_OK;
}

/* The SQLite file, read-only (never created), at the version copied. */
static cs_err sq_open(const char *path, sqlite3 **out, char why[256])
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct stat sb;
	*out = NULL;
	errno = 0;
	if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		cs_log_error("store copy: the SQLite store %s: %s", path,
			     errno != 0 ? strerror(errno) : "not a regular file");
		return CS_E_IO;
	}
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		sq_fail(db, "opening the SQLite store");
		sqlite3_close(db);
		return CS_E_IO;
	}
	sqlite3_busy_timeout(db, 10000);
	int v = -1;
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (v < 0) {
		sq_fail(db, "reading the SQLite store's schema version");
		sqlite3_close(db);
		return CS_E_STORE;
	}
	if (v != COPY_SCHEMA_VERSION) {
		snprintf(why, 256,
			 "the SQLite store %s has schema version %d; this program copies version %d%s", path, v,
			 COPY_SCHEMA_VERSION,
			 v < COPY_SCHEMA_VERSION ? ": open it once with this version (credsignd, or credsign-admin "
						   "with a configuration naming it) to migrate it, then copy"
						 : "");
		sqlite3_close(db);
		return CS_E_STORE_SCHEMA;
	}
	*out = db;
	return CS_OK;
}

/* ---- COPY's text format ---------------------------------------------------- */

typedef struct {
	char *buf;
	size_t len, cap;
	int nomem;
} line_buf;

static void put(line_buf *b, const char *p, size_t n)
{
	if (b->nomem)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap != 0 ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *nb = realloc(b->buf, cap);
		if (nb == NULL) {
			b->nomem = 1;
			return;
		}
		b->buf = nb;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, p, n);
	b->len += n;
}

static void put_text(line_buf *b, const unsigned char *s, size_t n)
{
	size_t from = 0;
	for (size_t i = 0; i < n; i++) {
		const char *esc = s[i] == '\\' ? "\\\\" : s[i] == '\t' ? "\\t" : s[i] == '\n' ? "\\n"
							 : s[i] == '\r' ? "\\r" : NULL;
		if (esc == NULL)
			continue;
		put(b, (const char *)s + from, i - from);
		put(b, esc, 2);
		from = i + 1;
	}
	put(b, (const char *)s + from, n - from);
}

static void put_blob(line_buf *b, const unsigned char *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char chunk[128];
	put(b, "\\\\x", 3);
	for (size_t i = 0; i < n;) {
		size_t k = 0;
		for (; i < n && k + 2 <= sizeof(chunk); i++) {
			chunk[k++] = hex[p[i] >> 4];
			chunk[k++] = hex[p[i] & 15];
		}
		put(b, chunk, k);
	}
}

/* Column i of the current row, as its type letter says, into b. */
static cs_err put_column(line_buf *b, sqlite3_stmt *st, int i, char type, const table_spec *t)
{
	int have = sqlite3_column_type(st, i);
	if (have == SQLITE_NULL) {
		put(b, "\\N", 2);
		return CS_OK;
	}
	int want = type == 'I' ? SQLITE_INTEGER : type == 'B' ? SQLITE_BLOB : SQLITE_TEXT;
	if (have != want) {
		cs_log_error("store copy: table %s, column %s: a value of SQLite type %d where the schema has %s",
			     t->name, sqlite3_column_name(st, i), have,
			     type == 'I' ? "integer" : type == 'B' ? "blob" : "text");
		return CS_E_STORE;
	}
	if (type == 'I') {
		char num[24];
		int n = snprintf(num, sizeof(num), "%lld", (long long)sqlite3_column_int64(st, i));
		put(b, num, (size_t)n);
		return CS_OK;
	}
	const unsigned char *p = type == 'B' ? sqlite3_column_blob(st, i) : sqlite3_column_text(st, i);
	size_t n = (size_t)sqlite3_column_bytes(st, i);
	if (p == NULL && n > 0) {
		b->nomem = 1;
		return CS_E_NOMEM;
	}
	if (type == 'T' && n > 0 && memchr(p, '\0', n) != NULL) {
		cs_log_error("store copy: table %s, column %s: text holding a NUL byte (PostgreSQL's text cannot)",
			     t->name, sqlite3_column_name(st, i));
		return CS_E_STORE;
	}
	if (type == 'B')
		put_blob(b, p != NULL ? p : (const unsigned char *)"", n);
	else
		put_text(b, p != NULL ? p : (const unsigned char *)"", n);
	return CS_OK;
}

/* ---- the copy ------------------------------------------------------------------ */

/* Table t's rows (by rowid) into the open COPY; *rows counts them. */
static cs_err copy_rows(sqlite3 *db, PGconn *conn, const table_spec *t, int64_t *rows)
{
	char sql[1024], what[96];
	sqlite3_stmt *st = NULL;
	line_buf b = {0};
	cs_err r = CS_OK;
	int ncols = (int)strlen(t->types), rc;
	*rows = 0;
	snprintf(what, sizeof(what), "reading table %s", t->name);
	snprintf(sql, sizeof(sql), "SELECT %s FROM %s ORDER BY rowid", t->columns, t->name);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK || sqlite3_column_count(st) != ncols)
		r = sq_fail(db, what);
	while (r == CS_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		for (int i = 0; r == CS_OK && i < ncols; i++) {
			if (i > 0)
				put(&b, "\t", 1);
			r = put_column(&b, st, i, t->types[i], t);
		}
		put(&b, "\n", 1);
		if (r == CS_OK && b.nomem)
			r = CS_E_NOMEM;
		(*rows)++;
		if (r == CS_OK && b.len >= FLUSH_AT) {
			if (PQputCopyData(conn, b.buf, (int)b.len) != 1)
				r = pg_fail(conn, "sending rows");
			b.len = 0;
		}
	}
	if (r == CS_OK && rc != SQLITE_DONE)
		r = sq_fail(db, what);
	if (r == CS_OK && b.len > 0 && PQputCopyData(conn, b.buf, (int)b.len) != 1)
		r = pg_fail(conn, "sending rows");
	sqlite3_finalize(st);
	free(b.buf);
	return r;
}

/* COPY table t: the rows sent, then the count PostgreSQL took. */
static cs_err copy_table(sqlite3 *db, PGconn *conn, const table_spec *t, cs_store_copy_count *count)
{
	char sql[1024], what[96];
	snprintf(sql, sizeof(sql), "COPY credsign.%s (%s) FROM STDIN", t->name, t->columns);
	snprintf(what, sizeof(what), "copying table %s", t->name);
	PGresult *res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_COPY_IN) {
		PQclear(res);
		return pg_fail(conn, what);
	}
	PQclear(res);
	cs_err r = copy_rows(db, conn, t, &count->source);
	if (PQputCopyEnd(conn, r == CS_OK ? NULL : "the source could not be read") != 1 && r == CS_OK)
		r = pg_fail(conn, what);
	int ok = 0;
	while ((res = PQgetResult(conn)) != NULL) {
		if (PQresultStatus(res) == PGRES_COMMAND_OK) {
			ok = 1;
			count->target = strtoll(PQcmdTuples(res), NULL, 10);
		}
		PQclear(res);
	}
	if (r == CS_OK && !ok)
		r = pg_fail(conn, what);
	if (r == CS_OK && count->target != count->source) {
		cs_log_error("store copy: table %s: %" PRId64 " rows read, %" PRId64 " written", t->name, count->source,
			     count->target);
		r = CS_E_STORE;
	}
	return r;
}

/* store_meta: each of the source's values replaces the destination's. */
static cs_err copy_meta(sqlite3 *db, PGconn *conn, cs_store_copy_count *count)
{
	sqlite3_stmt *st = NULL;
	cs_err r = CS_OK;
	int rc;
	count->source = count->target = 0;
	if (sqlite3_prepare_v2(db, "SELECT name, value FROM store_meta ORDER BY rowid", -1, &st, NULL) != SQLITE_OK)
		r = sq_fail(db, "reading table store_meta");
	while (r == CS_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		char value[24];
		const char *name = (const char *)sqlite3_column_text(st, 0);
		if (name == NULL || sqlite3_column_type(st, 1) != SQLITE_INTEGER) {
			cs_log_error("store copy: table store_meta: a row without its name or integer value");
			r = CS_E_STORE;
			break;
		}
		snprintf(value, sizeof(value), "%lld", (long long)sqlite3_column_int64(st, 1));
		const char *params[2] = {name, value};
		count->source++;
		PGresult *res = PQexecParams(conn,
					     "INSERT INTO credsign.store_meta (name, value) VALUES ($1, $2) "
					     "ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
					     2, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			r = pg_fail(conn, "copying table store_meta");
		else
			count->target++;
		PQclear(res);
	}
	if (r == CS_OK && rc != SQLITE_DONE)
		r = sq_fail(db, "reading table store_meta");
	sqlite3_finalize(st);
	return r;
}

/* Nothing in the destination but store_meta: else CS_E_CONFLICT naming
 * the first table holding rows. */
static cs_err check_empty(PGconn *conn, char why[256])
{
	for (size_t i = 0; i < META; i++) {
		char sql[160];
		int64_t any = 0;
		int found = 0;
		snprintf(sql, sizeof(sql), "SELECT 1 FROM credsign.%s LIMIT 1", tables[i].name);
		cs_err r = pg_int(conn, "reading the destination", sql, 0, NULL, &any, &found);
		if (r != CS_OK)
			return r;
		if (found) {
			snprintf(why, 256,
				 "the PostgreSQL store is not empty (table %s holds rows): store migrate copies "
				 "into an empty store only, never over another store's records",
				 tables[i].name);
			return CS_E_CONFLICT;
		}
	}
	return CS_OK;
}

/* Each identity sequence past the largest id copied. */
static cs_err set_sequences(PGconn *conn)
{
	for (size_t i = 0; i < META; i++) {
		char sql[300];
		if (!tables[i].has_id)
			continue;
		snprintf(sql, sizeof(sql),
			 "SELECT setval(pg_get_serial_sequence('credsign.%s', 'id'), m) FROM "
			 "(SELECT max(id) AS m FROM credsign.%s) x WHERE m IS NOT NULL",
			 tables[i].name, tables[i].name);
		cs_err r = pg_run(conn, "setting an identity sequence", sql);
		if (r != CS_OK)
			return r;
	}
	return CS_OK;
}

static void report_init(cs_store_copy_report *report)
{
	memset(report, 0, sizeof(*report));
	for (size_t i = 0; i < CS_STORE_COPY_TABLES; i++)
		report->tables[i].table = tables[i].name;
	report->ntables = CS_STORE_COPY_TABLES;
}

cs_err cs_store_copy_sqlite_to_pg(const char *sqlite_path, const cs_store_target *target,
				  cs_store_copy_report *report, char why[256])
{
	sqlite3 *db = NULL;
	PGconn *conn = NULL;
	int began = 0, read_began = 0;
	why[0] = '\0';
	report_init(report);
	cs_err r = sq_open(sqlite_path, &db, why);
	if (r == CS_OK)
		r = cs_store_pg_raw_connect(target, &conn);
	/* one snapshot of the source for every table */
	if (r == CS_OK && sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		r = sq_fail(db, "beginning a read of the SQLite store");
	read_began = r == CS_OK;
	if (r == CS_OK && (r = pg_run(conn, "beginning the transaction", "BEGIN ISOLATION LEVEL READ COMMITTED")) == CS_OK)
		began = 1;
	if (r == CS_OK)
		r = pg_run(conn, "setting the timeouts",
			   "SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = '" COPY_LOCK_TIMEOUT "'");
	if (r == CS_OK)
		r = pg_run(conn, "taking the write lock", "SELECT pg_advisory_xact_lock(" COPY_WRITE_LOCK ")");
	if (r == CS_OK)
		r = check_empty(conn, why);
	for (size_t i = 0; r == CS_OK && i < META; i++)
		r = copy_table(db, conn, &tables[i], &report->tables[i]);
	if (r == CS_OK)
		r = copy_meta(db, conn, &report->tables[META]);
	if (r == CS_OK)
		r = set_sequences(conn);
	if (r == CS_OK) {
		began = 0;
		r = pg_run(conn, "committing the copy", "COMMIT");
	}
	if (began)
		(void)pg_run(conn, "rolling the copy back", "ROLLBACK");
	if (read_began)
		sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	PQfinish(conn);
	sqlite3_close(db);
	return r;
}

/* ---- counting again ------------------------------------------------------------ */

static cs_err sq_count(sqlite3 *db, const char *table, int64_t *n)
{
	char sql[128];
	sqlite3_stmt *st = NULL;
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	cs_err r = CS_OK;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW)
		r = sq_fail(db, "counting rows");
	else
		*n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return r;
}

/* store_meta: the source's names whose value the destination holds too. */
static cs_err meta_agree(sqlite3 *db, PGconn *conn, int64_t *agree)
{
	sqlite3_stmt *st = NULL;
	cs_err r = CS_OK;
	int rc;
	*agree = 0;
	if (sqlite3_prepare_v2(db, "SELECT name, value FROM store_meta", -1, &st, NULL) != SQLITE_OK)
		r = sq_fail(db, "reading table store_meta");
	while (r == CS_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		int64_t v = 0;
		int found = 0;
		const char *params[1] = {name != NULL ? name : ""};
		r = pg_int(conn, "reading table store_meta", "SELECT value FROM credsign.store_meta WHERE name = $1", 1,
			   params, &v, &found);
		if (r == CS_OK && found && v == sqlite3_column_int64(st, 1))
			(*agree)++;
	}
	if (r == CS_OK && rc != SQLITE_DONE)
		r = sq_fail(db, "reading table store_meta");
	sqlite3_finalize(st);
	return r;
}

cs_err cs_store_copy_compare(const char *sqlite_path, const cs_store_target *target, cs_store_copy_report *report,
			     int *equal)
{
	sqlite3 *db = NULL;
	PGconn *conn = NULL;
	char why[256];
	*equal = 0;
	report_init(report);
	cs_err r = sq_open(sqlite_path, &db, why);
	if (r == CS_E_STORE_SCHEMA)
		cs_log_error("store copy: %s", why);
	if (r == CS_OK)
		r = cs_store_pg_raw_connect(target, &conn);
	for (size_t i = 0; r == CS_OK && i < META; i++) {
		char sql[128];
		int found = 0;
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM credsign.%s", tables[i].name);
		if ((r = sq_count(db, tables[i].name, &report->tables[i].source)) == CS_OK)
			r = pg_int(conn, "counting rows", sql, 0, NULL, &report->tables[i].target, &found);
	}
	if (r == CS_OK && (r = sq_count(db, "store_meta", &report->tables[META].source)) == CS_OK)
		r = meta_agree(db, conn, &report->tables[META].target);
	if (r == CS_OK) {
		*equal = 1;
		for (size_t i = 0; i < CS_STORE_COPY_TABLES; i++)
			*equal &= report->tables[i].source == report->tables[i].target;
	}
	PQfinish(conn);
	sqlite3_close(db);
	return r;
}

/* ---- describing a schema ---------------------------------------------------- */

/* Each row's (object, privileges) to fn. */
static cs_err grants_each(PGconn *conn, const char *sql, const char *role, cs_store_grant_fn fn, void *arg)
{
	const char *params[1] = {role};
	PGresult *res = PQexecParams(conn, sql, 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		PQclear(res);
		return pg_fail(conn, "reading the grants");
	}
	for (int i = 0; fn != NULL && i < PQntuples(res); i++)
		fn(arg, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
	PQclear(res);
	return CS_OK;
}

cs_err cs_store_pg_describe(const cs_store_target *target, const char *role, cs_store_pg_schema *out,
			    cs_store_grant_fn fn, void *arg)
{
	PGconn *conn = NULL;
	int64_t v = 0;
	int found = 0;
	memset(out, 0, sizeof(*out));
	if (role == NULL)
		role = "credsign_node";
	snprintf(out->role, sizeof(out->role), "%s", role);
	cs_err r = cs_store_pg_raw_connect(target, &conn);
	if (r == CS_OK)
		r = pg_int(conn, "reading the schema version",
			   "SELECT CASE WHEN to_regclass('credsign.schema_version') IS NULL THEN 0 "
			   "ELSE (SELECT max(version) FROM credsign.schema_version) END",
			   0, NULL, &v, &found);
	out->version = (int)v;
	const char *params[1] = {role};
	if (r == CS_OK)
		r = pg_int(conn, "reading the roles", "SELECT 1 FROM pg_roles WHERE rolname = $1", 1, params, &v,
			   &found);
	out->role_exists = r == CS_OK && found;
	if (r == CS_OK && out->role_exists)
		r = grants_each(conn,
				"SELECT c.relname, string_agg(a.privilege_type, ',' ORDER BY a.privilege_type) "
				"FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a "
				"WHERE n.nspname = 'credsign' AND a.grantee = (SELECT oid FROM pg_roles WHERE rolname = $1) "
				"GROUP BY c.relkind, c.relname ORDER BY c.relkind, c.relname",
				role, fn, arg);
	if (r == CS_OK && out->role_exists)
		r = grants_each(conn,
				"SELECT 'schema', string_agg(a.privilege_type, ',' ORDER BY a.privilege_type) "
				"FROM pg_namespace n, aclexplode(n.nspacl) a WHERE n.nspname = 'credsign' "
				"AND a.grantee = (SELECT oid FROM pg_roles WHERE rolname = $1) GROUP BY n.nspname",
				role, fn, arg);
	if (r == CS_OK && out->role_exists)
		r = grants_each(conn,
				"SELECT p.proname, string_agg(a.privilege_type, ',' ORDER BY a.privilege_type) "
				"FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace, aclexplode(p.proacl) a "
				"WHERE n.nspname = 'credsign' AND a.grantee = (SELECT oid FROM pg_roles WHERE rolname = $1) "
				"GROUP BY p.proname ORDER BY p.proname",
				role, fn, arg);
	PQfinish(conn);
	return r;
}
