/*
 * store_pg: the PostgreSQL backend (store_backend.h), its core: the
 * connection (open, the pool cap, reconnect), the query helpers of
 * store_pg_internal.h, transactions, the schema (migrations, guards,
 * grants), sessions, certificates, keys and node ids. store_pg_records.c
 * holds the other records.
 *
 * Every write transaction takes one advisory lock (PG_WRITE_LOCK) after
 * BEGIN, so writes of every node are serialised as SQLite's single writer
 * serialises them; the ledger's rules (audit seq and chain, one
 * certificate per session, one active key) hold across nodes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "cs_log.h"
#include "store_pg_internal.h"

/* The write lock every write transaction takes, and the lock the
 * migrations run under (pg_advisory_xact_lock / pg_advisory_lock keys). */
#define PG_WRITE_LOCK "7163220305711862835"
#define PG_MIGRATE_LOCK "7163220305711862836"
#define PG_PASSWORD_MAX 1024
#define PG_NAME_MAX 512

/* What a reconnect needs: the target's strings, copied at open. */
struct pg_target_copy {
	char *conninfo, *sslmode, *ca_file, *password_file, *application_name, *node_role;
	char *options; /* search_path, statement_timeout, read-only */
	int connect_timeout_s;
	int statement_timeout_ms;
};

/* Prepared statements of one connection, keyed by the SQL text's address. */
typedef struct {
	const char *sql;
	char name[16];
} pg_stmt;
struct pg_stmt_cache {
	pg_stmt *e;
	size_t n, cap;
	unsigned next;
};

static atomic_int pg_connections; /* open PostgreSQL stores of this process */

static int64_t mono_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* ---- the statement cache ------------------------------------------------------- */

static void stmts_reset(pg_store *s)
{
	if (s->stmts != NULL)
		s->stmts->n = 0;
}

static void stmts_free(pg_store *s)
{
	if (s->stmts == NULL)
		return;
	free(s->stmts->e);
	free(s->stmts);
	s->stmts = NULL;
}

/* The name of sql's prepared statement on this connection, preparing it
 * the first time; NULL when it cannot be prepared (*res: the error). */
static const char *stmt_prepare(pg_store *s, const char *sql, int n, PGresult **res)
{
	pg_stmt_cache *c = s->stmts;
	*res = NULL;
	for (size_t i = 0; i < c->n; i++)
		if (c->e[i].sql == sql)
			return c->e[i].name;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		pg_stmt *e = realloc(c->e, cap * sizeof(*e));
		if (e == NULL)
			return NULL;
		c->e = e;
		c->cap = cap;
	}
	pg_stmt *st = &c->e[c->n];
	snprintf(st->name, sizeof(st->name), "cs%u", c->next++);
	PGresult *pr = PQprepare(s->conn, st->name, sql, n, NULL);
	if (pr == NULL || PQresultStatus(pr) != PGRES_COMMAND_OK) {
		*res = pr;
		return NULL;
	}
	PQclear(pr);
	st->sql = sql;
	c->n++;
	return st->name;
}

/* ---- connecting ----------------------------------------------------------------- */

static void lost(pg_store *s, const char *msg)
{
	if (msg == NULL || *msg == '\0')
		msg = "no answer";
	if (!s->outage_logged)
		cs_log_error("store %s: connection lost: %.*s; reconnecting at the next call", s->name,
			     (int)strcspn(msg, "\n"), msg);
	s->outage_logged = 1;
}

/* The first line of the password file (at most PG_PASSWORD_MAX bytes). */
static cs_err read_password(const char *name, const char *path, char *out, size_t size)
{
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		cs_log_error("store %s: password_file %s: %s", name, path, strerror(errno));
		return CS_E_STORE;
	}
	cs_err r = CS_OK;
	if (fgets(out, (int)size, f) == NULL) {
		cs_log_error("store %s: password_file %s is empty", name, path);
		r = CS_E_STORE;
	} else {
		size_t len = strcspn(out, "\r\n");
		if (len == strlen(out) && len == size - 1 && !feof(f)) {
			cs_log_error("store %s: password_file %s: a password longer than %d bytes", name, path,
				     PG_PASSWORD_MAX);
			r = CS_E_STORE;
		}
		out[len] = '\0';
	}
	fclose(f);
	return r;
}

/* A new connection to the target; *msg (static or libpq's, until
 * PQfinish) says why not. NULL on failure with *conn left to finish. */
static cs_err connect_target(const struct pg_target_copy *t, const char *name, PGconn **out)
{
	char password[PG_PASSWORD_MAX + 2];
	char timeout[16];
	const char *keys[10], *vals[10];
	int n = 0;
	*out = NULL;
	password[0] = '\0';
	if (t->password_file != NULL && read_password(name, t->password_file, password, sizeof(password)) != CS_OK) {
		OPENSSL_cleanse(password, sizeof(password));
		return CS_E_STORE;
	}
	snprintf(timeout, sizeof(timeout), "%d", t->connect_timeout_s > 0 ? t->connect_timeout_s : 10);
	keys[n] = "dbname", vals[n++] = t->conninfo;
	keys[n] = "sslmode", vals[n++] = t->sslmode != NULL ? t->sslmode : "verify-full";
	if (t->ca_file != NULL)
		keys[n] = "sslrootcert", vals[n++] = t->ca_file;
	if (password[0] != '\0')
		keys[n] = "password", vals[n++] = password;
	keys[n] = "application_name", vals[n++] = t->application_name != NULL ? t->application_name : "credsignd";
	keys[n] = "connect_timeout", vals[n++] = timeout;
	keys[n] = "options", vals[n++] = t->options;
	keys[n] = "client_encoding", vals[n++] = "UTF8";
	keys[n] = NULL, vals[n] = NULL;
	PGconn *c = PQconnectdbParams(keys, vals, 1);
	OPENSSL_cleanse(password, sizeof(password));
	if (c == NULL) {
		cs_log_error("store %s: out of memory connecting", name);
		return CS_E_NOMEM;
	}
	*out = c;
	return PQstatus(c) == CONNECTION_OK ? CS_OK : CS_E_STORE;
}

/* Why a connection failed, for the operator: the first line of libpq's
 * message and the setting to look at. A server that cannot be reached
 * (refused, timed out, starting, shutting down, a name that does not
 * resolve) is CS_E_STORE_UNREACHABLE: it may answer later. One that
 * answered and refused (password, certificate, role, database, pg_hba)
 * is CS_E_STORE: the configuration must change. Logged once. */
static _Thread_local const char *failure_setting;

const char *cs_store_failure_setting(void)
{
	return failure_setting;
}

static cs_err connect_failed(const char *name, PGconn *c)
{
	const char *msg = c != NULL ? PQerrorMessage(c) : "out of memory";
	static const struct {
		const char *says, *setting, *hint;
	} causes[] = {
		{"password authentication failed", "store.postgresql.password_file", "check store.postgresql.password_file (the password of the user the "
						   "connection names)"},
		{"no password supplied", "store.postgresql.password_file", "the server asks for a password: set store.postgresql.password_file"},
		{"root certificate file", "store.postgresql.ca_file", "set store.postgresql.ca_file to the CA that issued the server's certificate"},
		{"certificate verify failed", "store.postgresql.ca_file", "check store.postgresql.ca_file: it must hold the CA that issued the "
					      "server's certificate"},
		{"does not match host name", "store.postgresql.connection", "the server's certificate does not name the host of "
					     "store.postgresql.connection (sslmode verify-full)"},
		{"server does not support SSL", "store.postgresql.sslmode", "the server offers no TLS: enable it there (store.postgresql.sslmode "
						"requires it)"},
		{"pg_hba.conf", "store.postgresql.connection", "the server's pg_hba.conf refuses this host, user or database"},
		{"does not exist", "store.postgresql.connection", "check the database and user of store.postgresql.connection"},
		{"unsupported protocol", "store.postgresql.sslmode", "the server and this node share no TLS version"},
	};
	const char *hint = NULL;
	failure_setting = "store.postgresql.connection";
	for (size_t i = 0; hint == NULL && i < sizeof(causes) / sizeof(causes[0]); i++)
		if (strstr(msg, causes[i].says) != NULL) {
			hint = causes[i].hint;
			failure_setting = causes[i].setting;
		}
	/* libpq's text may span lines (one per address tried): the first says it */
	cs_log_error("store %s: cannot connect: %.*s%s%s", name, (int)strcspn(msg, "\n"), msg, hint != NULL ? ": " : "",
		     hint != NULL ? hint : " (the database may be down or starting: credsignd tries again)");
	return hint != NULL ? CS_E_STORE : CS_E_STORE_UNREACHABLE;
}

/* Outside a transaction, make a broken connection again. */
static cs_err ensure_connected(pg_store *s)
{
	if (s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK)
		return CS_OK;
	if (s->in_tx) {
		lost(s, s->conn != NULL ? PQerrorMessage(s->conn) : NULL);
		s->tx_failed = 1;
		return CS_E_STORE;
	}
	if (s->conn != NULL && !s->outage_logged)
		lost(s, PQerrorMessage(s->conn));
	PQfinish(s->conn);
	s->conn = NULL;
	stmts_reset(s);
	PGconn *c = NULL;
	cs_err r = connect_target(s->target, s->name, &c);
	if (r != CS_OK) {
		if (c != NULL)
			r = s->outage_logged ? CS_E_STORE_UNREACHABLE : connect_failed(s->name, c);
		s->outage_logged = 1;
		PQfinish(c);
		return r;
	}
	s->conn = c;
	if (s->outage_logged)
		cs_log_info("store %s: reconnected", s->name);
	s->outage_logged = 0;
	return CS_OK;
}

/* ---- queries -------------------------------------------------------------------- */

static int sqlstate_is(const PGresult *res, const char *state)
{
	const char *st = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	return st != NULL && strcmp(st, state) == 0;
}

/* What a failed statement means: the connection lost, a unique violation
 * (CS_E_CONFLICT, not logged) or a failure logged as "store: WHAT: MSG". */
static cs_err query_failed(pg_store *s, const char *what, PGresult *res)
{
	if (s->in_tx)
		s->tx_failed = 1;
	if (PQstatus(s->conn) == CONNECTION_BAD) {
		lost(s, PQerrorMessage(s->conn));
		return CS_E_STORE;
	}
	if (sqlstate_is(res, "23505"))
		return CS_E_CONFLICT;
	const char *msg = res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(s->conn);
	if (msg == NULL || *msg == '\0')
		msg = PQerrorMessage(s->conn);
	if (s->in_tx == 2 && s->deadline_ms > 0 && (sqlstate_is(res, "57014") || sqlstate_is(res, "55P03")))
		cs_log_error("store: the write deadline passed: %s: %.*s", what, (int)strcspn(msg, "\n"), msg);
	else
		cs_log_error("store: %s: %.*s", what, (int)strcspn(msg, "\n"), msg);
	return CS_E_STORE;
}

/* The one path of every statement. cached: sql is a literal, prepared
 * once; in_failed: run even in a failed transaction (its rollback). */
static cs_err run_once(pg_store *s, const char *what, const char *sql, int n, const char *const *params,
		       const int *lengths, const int *formats, int cached, int in_failed, PGresult **out);

/* A connection that broke while idle (a database restart, a failover)
 * is found broken only when used: a statement that opens a transaction
 * or runs outside one (nothing of it can have been done) is tried once
 * more on a new connection, so that a request after an outage does not
 * fail for each connection the outage left behind. */
static cs_err run(pg_store *s, const char *what, const char *sql, int n, const char *const *params,
		  const int *lengths, const int *formats, int cached, int in_failed, PGresult **out)
{
	/* the open's own statements (migrations in transactions of their own,
	 * under a session lock) are never retried: the open fails instead */
	int opens = !s->no_retry && (s->in_tx == 0 || s->opening);
	cs_err r = run_once(s, what, sql, n, params, lengths, formats, cached, in_failed, out);
	if (r == CS_OK || !opens || s->conn == NULL || PQstatus(s->conn) != CONNECTION_BAD)
		return r;
	int in_tx = s->in_tx;
	s->in_tx = 0; /* the transaction being opened is gone with the connection */
	s->tx_failed = 0;
	r = ensure_connected(s);
	s->in_tx = in_tx;
	return r != CS_OK ? r : run_once(s, what, sql, n, params, lengths, formats, cached, in_failed, out);
}

static cs_err run_once(pg_store *s, const char *what, const char *sql, int n, const char *const *params,
		       const int *lengths, const int *formats, int cached, int in_failed, PGresult **out)
{
	*out = NULL;
	cs_err r = ensure_connected(s);
	if (r != CS_OK)
		return r;
	if (s->in_tx && s->tx_failed && !in_failed) {
		cs_log_error("store: %s: the transaction failed already", what);
		return CS_E_STORE;
	}
	if (s->in_tx == 2 && s->deadline_ms > 0 && !in_failed && mono_ms() >= s->deadline_ms) {
		cs_log_error("store: the write deadline passed");
		s->tx_failed = 1;
		return CS_E_STORE;
	}
	PGresult *res = NULL;
	if (cached) {
		const char *name = stmt_prepare(s, sql, n, &res);
		if (name == NULL) {
			if (res == NULL && PQstatus(s->conn) == CONNECTION_OK) {
				cs_log_error("store: %s: out of memory", what);
				return CS_E_NOMEM;
			}
			r = query_failed(s, what, res);
			PQclear(res);
			return r;
		}
		res = PQexecPrepared(s->conn, name, n, params, lengths, formats, 0);
	} else if (n == 0) {
		res = PQexec(s->conn, sql); /* may hold several statements (write_begin) */
	} else {
		res = PQexecParams(s->conn, sql, n, NULL, params, lengths, formats, 0);
	}
	ExecStatusType st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		r = query_failed(s, what, res);
		PQclear(res);
		return r;
	}
	*out = res;
	return CS_OK;
}

/* Rows a statement changed (an INSERT, UPDATE or DELETE; a SELECT's rows
 * are not changes) go to s->changes. */
static void count_changes(pg_store *s, PGresult *res, int64_t *affected)
{
	const char *t = PQcmdTuples(res), *cmd = PQcmdStatus(res);
	int64_t n = (t != NULL && *t) ? strtoll(t, NULL, 10) : 0;
	if (cmd != NULL && (strncmp(cmd, "INSERT", 6) == 0 || strncmp(cmd, "UPDATE", 6) == 0 ||
			    strncmp(cmd, "DELETE", 6) == 0 || strncmp(cmd, "MERGE", 5) == 0))
		s->changes += n;
	if (affected != NULL)
		*affected = n;
}

cs_err pg_query(pg_store *s, const char *what, const char *sql, int n, const char *const *params, PGresult **res)
{
	cs_err r = run(s, what, sql, n, params, NULL, NULL, 1, 0, res);
	if (r == CS_OK)
		count_changes(s, *res, NULL);
	return r;
}

cs_err pg_query_bin(pg_store *s, const char *what, const char *sql, int n, const char *const *params,
		    const int *lengths, const int *formats, PGresult **res)
{
	cs_err r = run(s, what, sql, n, params, lengths, formats, 1, 0, res);
	if (r == CS_OK)
		count_changes(s, *res, NULL);
	return r;
}

cs_err pg_exec(pg_store *s, const char *what, const char *sql, int n, const char *const *params, int64_t *affected)
{
	PGresult *res = NULL;
	if (affected != NULL)
		*affected = 0;
	cs_err r = run(s, what, sql, n, params, NULL, NULL, 1, 0, &res);
	if (r == CS_OK)
		count_changes(s, res, affected);
	PQclear(res);
	return r;
}

/* A statement not worth preparing (transaction control, the schema). */
static cs_err pg_exec_once(pg_store *s, const char *what, const char *sql, int n, const char *const *params,
			   int in_failed)
{
	PGresult *res = NULL;
	cs_err r = run(s, what, sql, n, params, NULL, NULL, 0, in_failed, &res);
	PQclear(res);
	return r;
}

/* ---- results -------------------------------------------------------------------- */

cs_err pg_text(PGresult *res, int row, int col, int optional, const char **out)
{
	*out = NULL;
	if (row >= PQntuples(res) || col >= PQnfields(res)) {
		cs_log_error("store: no column %d of row %d", col, row);
		return CS_E_STORE;
	}
	if (PQgetisnull(res, row, col)) {
		if (optional)
			return CS_OK;
		cs_log_error("store: column %s is NULL", PQfname(res, col));
		return CS_E_STORE;
	}
	*out = PQgetvalue(res, row, col);
	return CS_OK;
}

cs_err pg_dup(PGresult *res, int row, int col, char **out)
{
	const char *t;
	*out = NULL;
	cs_err r = pg_text(res, row, col, 0, &t);
	if (r != CS_OK)
		return r;
	*out = strdup(t);
	return *out != NULL ? CS_OK : CS_E_NOMEM;
}

cs_err pg_int(PGresult *res, int row, int col, int64_t *out)
{
	const char *t;
	*out = 0;
	cs_err r = pg_text(res, row, col, 0, &t);
	if (r != CS_OK)
		return r;
	char *end;
	errno = 0;
	long long v = strtoll(t, &end, 10);
	if (errno != 0 || end == t || *end != '\0') {
		cs_log_error("store: column %s is not an integer", PQfname(res, col));
		return CS_E_STORE;
	}
	*out = v;
	return CS_OK;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

cs_err pg_hash(PGresult *res, int row, int col, uint8_t out[32])
{
	const char *t;
	memset(out, 0, 32);
	cs_err r = pg_text(res, row, col, 0, &t);
	if (r != CS_OK)
		return r;
	if (strncmp(t, "\\x", 2) != 0 || strlen(t) != 66) {
		cs_log_error("store: column %s is not a 32-byte hash", PQfname(res, col));
		return CS_E_STORE;
	}
	for (int i = 0; i < 32; i++) {
		int hi = hexval(t[2 + 2 * i]), lo = hexval(t[3 + 2 * i]);
		if (hi < 0 || lo < 0) {
			cs_log_error("store: column %s is not a 32-byte hash", PQfname(res, col));
			memset(out, 0, 32);
			return CS_E_STORE;
		}
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return CS_OK;
}

cs_err pg_bytea(PGresult *res, int row, int col, unsigned char **out, size_t *len)
{
	const char *t;
	*out = NULL;
	*len = 0;
	cs_err r = pg_text(res, row, col, 1, &t);
	if (r != CS_OK || t == NULL)
		return r;
	size_t n = 0;
	unsigned char *raw = PQunescapeBytea((const unsigned char *)t, &n);
	if (raw == NULL) {
		cs_log_error("store: column %s: out of memory", PQfname(res, col));
		return CS_E_NOMEM;
	}
	unsigned char *copy = malloc(n ? n : 1);
	if (copy == NULL) {
		PQfreemem(raw);
		return CS_E_NOMEM;
	}
	memcpy(copy, raw, n);
	PQfreemem(raw);
	*out = copy;
	*len = n;
	return CS_OK;
}

const char *pg_i64(char buf[24], int64_t v)
{
	snprintf(buf, 24, "%lld", (long long)v);
	return buf;
}

const char *pg_hash_param(char buf[67], const uint8_t hash[32])
{
	static const char hex[] = "0123456789abcdef";
	buf[0] = '\\';
	buf[1] = 'x';
	for (int i = 0; i < 32; i++) {
		buf[2 + 2 * i] = hex[hash[i] >> 4];
		buf[3 + 2 * i] = hex[hash[i] & 15];
	}
	buf[66] = '\0';
	return buf;
}

/* ---- transactions ---------------------------------------------------------------- */

static cs_err pg_read_begin(cs_store *store);
static void pg_read_end(cs_store *store);

cs_err pg_snapshot_begin(pg_store *s, int *began)
{
	*began = 0;
	if (s->in_tx)
		return CS_OK;
	cs_err r = pg_read_begin(&s->base);
	if (r == CS_OK)
		*began = 1;
	return r;
}

void pg_snapshot_end(pg_store *s, int began)
{
	if (began)
		pg_read_end(&s->base);
}

static void tx_reset(pg_store *s);

static cs_err pg_write_begin(cs_store *store, int64_t deadline_ms)
{
	pg_store *s = (pg_store *)store;
	if (s->in_tx) {
		cs_log_error("store %s: a write begun inside a transaction", s->name);
		return CS_E_INTERNAL;
	}
	if (s->readonly) {
		cs_log_error("store %s: opened read-only: no writes", s->name);
		return CS_E_STORE;
	}
	/* BEGIN, the deadline and the write lock in one round trip: the lock
	 * is held until the commit, so every round trip under it costs every
	 * node's writes */
	char sql[384];
	int64_t left = 0;
	if (deadline_ms > 0) {
		left = deadline_ms - mono_ms();
		if (left <= 0) {
			cs_log_error("store: the write deadline passed before the write began");
			return CS_E_STORE;
		}
		if (left > 0x7fffffff)
			left = 0x7fffffff;
		snprintf(sql, sizeof(sql),
			 "BEGIN; SELECT set_config('lock_timeout', '%lld', true), "
			 "set_config('statement_timeout', '%lld', true); SELECT pg_advisory_xact_lock(" PG_WRITE_LOCK
			 "); " PG_AUDIT_HEAD,
			 (long long)left, (long long)left);
	} else {
		snprintf(sql, sizeof(sql), "BEGIN; SELECT pg_advisory_xact_lock(" PG_WRITE_LOCK "); " PG_AUDIT_HEAD);
	}
	cs_err r = ensure_connected(s); /* a broken connection is made again first */
	if (r != CS_OK)
		return r;
	s->in_tx = 2; /* before the call: a failure in it fails the transaction */
	s->tx_failed = 0;
	s->deadline_ms = deadline_ms > 0 ? deadline_ms : 0;
	s->opening = 1;
	pg_head_drop(s);
	/* the head, the last statement's answer: the ledger reads it first */
	r = run(s, "beginning a write (taking the write lock)", sql, 0, NULL, NULL, NULL, 0, 0, &s->head);
	s->opening = 0;
	if (r != CS_OK && s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK &&
	    PQtransactionStatus(s->conn) == PQTRANS_IDLE)
		tx_reset(s); /* the BEGIN itself failed: no transaction to end */
	return r;
}

PGresult *pg_head_take(pg_store *s)
{
	PGresult *h = s->in_tx == 2 ? s->head : NULL;
	if (h == NULL)
		pg_head_drop(s);
	s->head = NULL;
	return h;
}

void pg_head_drop(pg_store *s)
{
	PQclear(s->head);
	s->head = NULL;
}

static void tx_reset(pg_store *s)
{
	pg_head_drop(s);
	s->in_tx = 0;
	s->tx_failed = 0;
	s->deadline_ms = 0;
}

/* End the open transaction: commit (when r is CS_OK and nothing failed)
 * or roll back. A lost connection loses the transaction (PostgreSQL rolls
 * it back). */
static cs_err tx_end(pg_store *s, cs_err r, const char *what)
{
	if (r == CS_OK && s->tx_failed) {
		cs_log_error("store: %s: a statement failed: rolled back", what);
		r = CS_E_STORE;
	}
	s->deadline_ms = 0; /* neither the commit nor the rollback is interrupted */
	if (r == CS_OK) {
		PGresult *res = NULL;
		r = run(s, what, "COMMIT", 0, NULL, NULL, NULL, 0, 1, &res);
		/* COMMIT of a failed transaction answers ROLLBACK */
		if (r == CS_OK && strcmp(PQcmdStatus(res), "COMMIT") != 0) {
			cs_log_error("store: %s: the transaction was rolled back", what);
			r = CS_E_STORE;
		}
		PQclear(res);
	} else if (s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK &&
		   PQtransactionStatus(s->conn) != PQTRANS_IDLE) {
		(void)pg_exec_once(s, "rolling back", "ROLLBACK", 0, NULL, 1);
	}
	tx_reset(s);
	return r;
}

static cs_err pg_write_end(cs_store *store, cs_err r)
{
	pg_store *s = (pg_store *)store;
	if (s->in_tx != 2)
		return r != CS_OK ? r : CS_E_STORE;
	return tx_end(s, r, "committing");
}

static cs_err pg_savepoint(cs_store *store)
{
	pg_store *s = (pg_store *)store;
	if (s->in_tx != 2) {
		cs_log_error("store %s: a savepoint outside a write", s->name);
		return CS_E_INTERNAL;
	}
	return pg_exec_once(s, "beginning a savepoint", "SAVEPOINT job", 0, NULL, 0);
}

static cs_err pg_savepoint_end(cs_store *store, cs_err r)
{
	pg_store *s = (pg_store *)store;
	if (s->in_tx != 2) {
		cs_log_error("store %s: a savepoint ended outside a write", s->name);
		return CS_E_INTERNAL;
	}
	if (r == CS_OK)
		return pg_exec_once(s, "releasing a savepoint", "RELEASE SAVEPOINT job", 0, NULL, 0);
	cs_err e = pg_exec_once(s, "rolling back a savepoint", "ROLLBACK TO SAVEPOINT job", 0, NULL, 1);
	if (e != CS_OK)
		return e;
	s->tx_failed = 0; /* the failure was after the savepoint: undone */
	return pg_exec_once(s, "releasing a savepoint", "RELEASE SAVEPOINT job", 0, NULL, 0);
}

static cs_err pg_read_begin(cs_store *store)
{
	pg_store *s = (pg_store *)store;
	if (s->in_tx) {
		cs_log_error("store %s: a read begun inside a transaction", s->name);
		return CS_E_INTERNAL;
	}
	s->opening = 1;
	cs_err r = pg_exec_once(s, "beginning a read", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, 0);
	s->opening = 0;
	if (r == CS_OK) {
		s->in_tx = 1;
		s->tx_failed = 0;
	}
	return r;
}

static void pg_read_end(cs_store *store)
{
	pg_store *s = (pg_store *)store;
	if (s->in_tx == 1)
		(void)tx_end(s, s->tx_failed ? CS_E_STORE : CS_OK, "ending a read");
}

static int64_t pg_changes(cs_store *store)
{
	return ((pg_store *)store)->changes;
}

static cs_err pg_clock(cs_store *store, int64_t *now_ms)
{
	pg_store *s = (pg_store *)store;
	PGresult *res = NULL;
	cs_err r = pg_query(s, "reading the database's clock",
			    "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint", 0, NULL, &res);
	if (r == CS_OK)
		r = PQntuples(res) == 1 ? pg_int(res, 0, 0, now_ms) : CS_E_STORE;
	PQclear(res);
	return r;
}

static cs_err pg_ping(cs_store *store)
{
	pg_store *s = (pg_store *)store;
	return pg_exec(s, "ping", "SELECT 1", 0, NULL, NULL);
}

/* ---- the schema ----------------------------------------------------------------- */

/* A plpgsql trigger function that refuses with msg when cond holds (cond
 * "true": always); row-level BEFORE triggers return the row, statement
 * ones NULL. */
#define REFUSE_FN(fn, cond, msg, ret)                                                                      \
	"CREATE FUNCTION " fn "() RETURNS trigger LANGUAGE plpgsql SET search_path = credsign, pg_temp AS $f$" \
	" BEGIN IF " cond " THEN RAISE EXCEPTION '" msg "' USING ERRCODE = 'restrict_violation'; END IF;"      \
	" RETURN " ret "; END $f$;"
#define REFUSE_ROW(trigger, event, table, cond, msg, ret)                                                   \
	REFUSE_FN(trigger "_fn", cond, msg, ret)                                                              \
	"CREATE TRIGGER " trigger " BEFORE " event " ON " table " FOR EACH ROW EXECUTE FUNCTION " trigger "_fn();"
#define NO_TRUNCATE(table, msg)                                                                             \
	REFUSE_FN(table "_no_truncate_fn", "true", msg, "NULL")                                               \
	"CREATE TRIGGER " table "_no_truncate BEFORE TRUNCATE ON " table                                      \
	" FOR EACH STATEMENT EXECUTE FUNCTION " table "_no_truncate_fn();"

/* Schema version 9 at once: the SQLite schema of that version (its
 * migrations in store_sqlite.c say why each part is there), in PostgreSQL's
 * types, with the same guards, plus TRUNCATE refused on the append-only
 * tables and the audit purge as a function of the owner. */
static const char schema_v9[] =
	"CREATE SCHEMA IF NOT EXISTS credsign;"
	"SET LOCAL search_path = credsign, pg_temp;"
	"CREATE TABLE schema_version (version int NOT NULL);"
	"CREATE TABLE generation_sessions ("
	"  id text PRIMARY KEY, created_ms bigint NOT NULL, expires_ms bigint NOT NULL,"
	"  cert_sha256 text NOT NULL, cert_id text UNIQUE);"
	"CREATE INDEX generation_sessions_uncertified_expiry ON generation_sessions(expires_ms)"
	"  WHERE cert_id IS NULL;"
	"CREATE TABLE session_claims ("
	"  id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
	"  session_id text NOT NULL UNIQUE REFERENCES generation_sessions(id), claims_json text NOT NULL);"
	"CREATE TABLE signing_keys ("
	"  kid text PRIMARY KEY, uri text NOT NULL, jwk_json text NOT NULL, status text NOT NULL,"
	"  created_at text NOT NULL"
	"    DEFAULT (to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')),"
	"  label text, cka_id text, created_by text, activated_at text, activated_by text,"
	"  activated_ceremony text, retired_at text, retired_by text, retired_ceremony text,"
	"  compromised_at text, compromised_by text, compromised_ceremony text, destroyed_at text,"
	"  destroyed_by text, destroyed_ceremony text, x5c_json text, profile text);"
	"CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys((coalesce(profile, '')))"
	"  WHERE status = 'active';"
	"CREATE TABLE certificates ("
	"  id text PRIMARY KEY,"
	"  session_id text NOT NULL UNIQUE REFERENCES generation_sessions(id),"
	"  kid text NOT NULL REFERENCES signing_keys(kid),"
	"  header text NOT NULL, claims_json text NOT NULL, signature text NOT NULL, created_ms bigint NOT NULL);"
	"CREATE TABLE audit_log ("
	"  seq bigint PRIMARY KEY,"
	"  ts text NOT NULL, node text NOT NULL, actor text NOT NULL, actor_cert_sha256 text,"
	"  role text NOT NULL, action text NOT NULL, object text, project text, environment text,"
	"  outcome text NOT NULL, error_code text, request_id text,"
	"  prev_hash bytea NOT NULL, entry_hash bytea NOT NULL);"
	"CREATE TABLE audit_checkpoints ("
	"  id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
	"  first_seq bigint NOT NULL, last_seq bigint NOT NULL, head_hash bytea NOT NULL,"
	"  ts text NOT NULL, node text NOT NULL, kind text NOT NULL, jws text NOT NULL);"
	"CREATE INDEX audit_checkpoints_last ON audit_checkpoints(last_seq);"
	"CREATE INDEX audit_checkpoints_kind_last ON audit_checkpoints(kind, last_seq);"
	"CREATE TABLE store_probe (id bigint PRIMARY KEY CHECK (id = 1), at_ms bigint NOT NULL);"
	"CREATE TABLE store_meta (name text PRIMARY KEY, value bigint NOT NULL);"
	"INSERT INTO store_meta (name, value) VALUES ('audit_ts_ordered_from_seq', 1), ('revocations_count', 0);"
	"CREATE TABLE ceremonies ("
	"  id text PRIMARY KEY,"
	"  action text NOT NULL CHECK (action IN ('activate', 'retire', 'compromise', 'destroy', 'purge',"
	"    'revoke')),"
	"  subject text NOT NULL, reason text, params_json text NOT NULL, nonce text NOT NULL,"
	"  node text NOT NULL, created_at text NOT NULL, expires_at text NOT NULL, started_by text NOT NULL,"
	"  canonical text NOT NULL,"
	"  state text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'executed')),"
	"  executed_at text, executed_by text, result_json text);"
	"CREATE INDEX ceremonies_created ON ceremonies(created_at);"
	"CREATE TABLE ceremony_approvals ("
	"  id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
	"  ceremony_id text NOT NULL REFERENCES ceremonies(id),"
	"  officer text NOT NULL, fingerprint text NOT NULL, cert_pem text NOT NULL, sig_alg text NOT NULL,"
	"  signature_b64 text NOT NULL, approved_at text NOT NULL, approved_by text NOT NULL,"
	"  UNIQUE (ceremony_id, fingerprint), UNIQUE (ceremony_id, officer));"
	"CREATE TABLE key_rollovers ("
	"  id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
	"  ceremony_id text NOT NULL UNIQUE REFERENCES ceremonies(id),"
	"  old_kid text REFERENCES signing_keys(kid), new_kid text NOT NULL REFERENCES signing_keys(kid),"
	"  statement_json text NOT NULL, created_at text NOT NULL);"
	"CREATE TABLE cert_revocations ("
	"  id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
	"  cert_id text NOT NULL UNIQUE REFERENCES certificates(id),"
	"  reason text NOT NULL, revoked_at text NOT NULL, revoked_by text NOT NULL,"
	"  ceremony_id text REFERENCES ceremonies(id));"
	"CREATE INDEX cert_revocations_order ON cert_revocations(revoked_at, cert_id);"
	"CREATE TABLE signatures ("
	"  id text PRIMARY KEY, profile text NOT NULL,"
	"  format text NOT NULL CHECK (format IN ('jws', 'dsse', 'digest')),"
	"  requester text NOT NULL, requester_cert_sha256 text NOT NULL,"
	"  created_at text NOT NULL, signed_sha256 text NOT NULL,"
	"  kid text NOT NULL REFERENCES signing_keys(kid),"
	"  signature text NOT NULL, signature_der text, payload_type text, payload bytea,"
	"  audit_seq bigint NOT NULL UNIQUE);"
	"CREATE INDEX signatures_profile_kid ON signatures(profile, kid, format);"
	"CREATE INDEX signatures_sha256 ON signatures(signed_sha256, audit_seq);"
	"CREATE TABLE store_nodes ("
	"  node_id text PRIMARY KEY, instance text NOT NULL, host text NOT NULL, pid bigint NOT NULL,"
	"  started_ms bigint NOT NULL, seen_ms bigint NOT NULL);"
	/* the guards, as SQLite's (a trigger's condition is tested in its function) */
	REFUSE_ROW("audit_log_no_update", "UPDATE", "audit_log", "true", "audit log is append-only", "NEW")
	REFUSE_ROW("audit_log_no_delete", "DELETE", "audit_log",
		   "OLD.seq > (SELECT coalesce(max(last_seq), 0) FROM audit_checkpoints WHERE kind = 'purge')",
		   "audit log is append-only", "OLD")
	REFUSE_ROW("audit_checkpoints_no_update", "UPDATE", "audit_checkpoints", "true",
		   "audit checkpoints are append-only", "NEW")
	REFUSE_ROW("audit_checkpoints_no_delete", "DELETE", "audit_checkpoints", "true",
		   "audit checkpoints are append-only", "OLD")
	REFUSE_ROW("signing_keys_lifecycle", "UPDATE OF status", "signing_keys",
		   "(OLD.status = 'compromised' AND NEW.status <> 'compromised')"
		   " OR (OLD.status = 'retired' AND NEW.status NOT IN ('retired', 'compromised'))",
		   "a retired or compromised key never becomes active again", "NEW")
	REFUSE_ROW("signing_keys_destroyed", "UPDATE OF destroyed_at", "signing_keys", "OLD.destroyed_at IS NOT NULL",
		   "a destroyed key stays destroyed", "NEW")
	REFUSE_ROW("signing_keys_no_delete", "DELETE", "signing_keys", "true", "signing keys are never forgotten", "OLD")
	REFUSE_ROW("signing_keys_profile", "UPDATE OF profile", "signing_keys",
		   "NEW.profile IS DISTINCT FROM OLD.profile", "the profile of a signing key never changes", "NEW")
	REFUSE_ROW("ceremonies_once", "UPDATE", "ceremonies",
		   "OLD.state <> 'open' OR NEW.id IS DISTINCT FROM OLD.id OR NEW.action IS DISTINCT FROM OLD.action"
		   " OR NEW.subject IS DISTINCT FROM OLD.subject OR NEW.canonical IS DISTINCT FROM OLD.canonical"
		   " OR NEW.expires_at IS DISTINCT FROM OLD.expires_at"
		   " OR NEW.created_at IS DISTINCT FROM OLD.created_at",
		   "a ceremony is only ever executed, once", "NEW")
	REFUSE_ROW("ceremonies_no_delete", "DELETE", "ceremonies", "true", "ceremonies are append-only", "OLD")
	REFUSE_ROW("ceremony_approvals_no_update", "UPDATE", "ceremony_approvals", "true", "approvals are append-only", "NEW")
	REFUSE_ROW("ceremony_approvals_no_delete", "DELETE", "ceremony_approvals", "true", "approvals are append-only", "OLD")
	REFUSE_ROW("key_rollovers_no_update", "UPDATE", "key_rollovers", "true", "rollovers are append-only", "NEW")
	REFUSE_ROW("key_rollovers_no_delete", "DELETE", "key_rollovers", "true", "rollovers are append-only", "OLD")
	"CREATE FUNCTION cert_revocations_count_fn() RETURNS trigger LANGUAGE plpgsql"
	"  SET search_path = credsign, pg_temp AS $f$"
	"  BEGIN UPDATE store_meta SET value = value + 1 WHERE name = 'revocations_count'; RETURN NULL; END $f$;"
	"CREATE TRIGGER cert_revocations_count AFTER INSERT ON cert_revocations"
	"  FOR EACH ROW EXECUTE FUNCTION cert_revocations_count_fn();"
	REFUSE_ROW("cert_revocations_no_update", "UPDATE", "cert_revocations", "true", "a revocation is final", "NEW")
	REFUSE_ROW("cert_revocations_no_delete", "DELETE", "cert_revocations", "true", "a revocation is final", "OLD")
	REFUSE_ROW("signatures_no_update", "UPDATE", "signatures", "true", "signatures are append-only", "NEW")
	REFUSE_ROW("signatures_no_delete", "DELETE", "signatures", "true", "signatures are append-only", "OLD")
	NO_TRUNCATE("audit_log", "audit log is append-only")
	NO_TRUNCATE("audit_checkpoints", "audit checkpoints are append-only")
	NO_TRUNCATE("certificates", "certificates are append-only")
	NO_TRUNCATE("signatures", "signatures are append-only")
	NO_TRUNCATE("cert_revocations", "a revocation is final")
	NO_TRUNCATE("key_rollovers", "rollovers are append-only")
	NO_TRUNCATE("ceremony_approvals", "approvals are append-only")
	NO_TRUNCATE("ceremonies", "ceremonies are append-only")
	NO_TRUNCATE("signing_keys", "signing keys are never forgotten")
	/* the purge: the one delete of the audit log, as the owner (the
	 * trigger above still lets only what a purge checkpoint covers go) */
	"CREATE FUNCTION audit_purge(through bigint) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER"
	"  SET search_path = credsign, pg_temp AS $f$"
	"  DECLARE n bigint; BEGIN DELETE FROM audit_log WHERE seq <= through; GET DIAGNOSTICS n = ROW_COUNT;"
	"  RETURN n; END $f$;"
	"REVOKE ALL ON FUNCTION audit_purge(bigint) FROM PUBLIC;";

/* Schema version 10 (PostgreSQL only: the SQLite store stays at 9, the
 * same intent versioned per backend): the purge is the schema owner's
 * alone. A purge checkpoint, which lets the audit log's delete trigger
 * remove what it covers, is refused unless the inserting role is the
 * owner or a member of it, and audit_purge is no longer executable by any
 * other role (the node role held EXECUTE up to version 9): the nodes'
 * password alone can neither purge nor forge a purge. */
static const char schema_v10[] =
	"SET LOCAL search_path = credsign, pg_temp;"
	REFUSE_ROW("audit_checkpoints_purge_owner", "INSERT", "audit_checkpoints",
		   "NEW.kind = 'purge' AND NOT pg_has_role(current_user,"
		   " (SELECT nspowner FROM pg_namespace WHERE nspname = 'credsign'), 'MEMBER')",
		   "permission denied: only the schema owner records a purge checkpoint", "NEW")
	"DO $d$ DECLARE g text; BEGIN"
	"  FOR g IN SELECT DISTINCT r.rolname FROM pg_proc p CROSS JOIN LATERAL aclexplode(p.proacl) a"
	"    JOIN pg_roles r ON r.oid = a.grantee"
	"    WHERE p.oid = 'credsign.audit_purge(bigint)'::regprocedure AND a.grantee <> p.proowner LOOP"
	"    EXECUTE format('REVOKE EXECUTE ON FUNCTION credsign.audit_purge(bigint) FROM %I', g);"
	"  END LOOP; END $d$;";

/* Schema version 11 (the SQLite backend's version 10): the inventory reads
 * the certificates by their claims' project, environment and system:
 * columns derived from the claims as signed (generated and stored: inserts
 * are unchanged, the certificates already stored are filled by this
 * migration's rewrite of the table), compared byte by byte (COLLATE "C",
 * as SQLite's BINARY) and one index in the inventory's order, NULL first
 * as SQLite sorts it (cs_store_inventory_each). json, not jsonb: claims
 * json accepts but jsonb refuses (an escaped NUL in a member) never fail
 * an insert. */
static const char schema_v11[] =
	"SET LOCAL search_path = credsign, pg_temp;"
	"ALTER TABLE certificates"
	"  ADD COLUMN project text COLLATE \"C\" GENERATED ALWAYS AS (claims_json::json ->> 'project') STORED,"
	"  ADD COLUMN environment text COLLATE \"C\" GENERATED ALWAYS AS (claims_json::json ->> 'environment') STORED,"
	"  ADD COLUMN system text COLLATE \"C\" GENERATED ALWAYS AS (claims_json::json ->> 'system') STORED;"
	"CREATE INDEX certificates_inventory ON certificates"
	"  (project NULLS FIRST, environment NULLS FIRST, system NULLS FIRST, created_ms, id COLLATE \"C\");";

/* The migrations: each brings the schema to its version, in one
 * transaction with the version's row. Append only (and to both backends). */
static const struct {
	int version;
	const char *sql;
} pg_migrations[] = {
	{9, schema_v9},
	{10, schema_v10},
	{11, schema_v11},
};
#define PG_MIGRATIONS (int)(sizeof(pg_migrations) / sizeof(pg_migrations[0]))

/* What the node role may do (target->node_role: " TO " and its quoted name follow). */
static const struct {
	const char *what, *to; /* "WHAT TO|FROM role" */
} pg_grants[] = {
	{"GRANT USAGE ON SCHEMA credsign", "TO"},
	{"GRANT SELECT ON ALL TABLES IN SCHEMA credsign", "TO"},
	/* the schema's version and the bookkeeping values are the migrations' */
	{"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON schema_version", "FROM"},
	{"REVOKE INSERT, DELETE, TRUNCATE ON store_meta", "FROM"},
	{"GRANT INSERT ON generation_sessions, session_claims, certificates, signing_keys, audit_log, "
	 "audit_checkpoints, store_probe, ceremonies, ceremony_approvals, key_rollovers, cert_revocations, "
	 "signatures, store_nodes",
	 "TO"},
	{"GRANT UPDATE ON generation_sessions, signing_keys, ceremonies, store_meta, store_probe, store_nodes", "TO"},
	{"GRANT DELETE ON generation_sessions, session_claims", "TO"},
	{"GRANT USAGE ON ALL SEQUENCES IN SCHEMA credsign", "TO"},
	/* the purge is the schema owner's (version 10; granted up to 9) */
	{"REVOKE EXECUTE ON FUNCTION audit_purge(bigint)", "FROM"},
};

/* A script of several statements (the migrations): CS_E_STORE logged, or
 * *denied set when the role lacks the right (SQLSTATE 42501). */
static cs_err exec_script(pg_store *s, const char *what, const char *sql, int *denied)
{
	PGresult *res = PQexec(s->conn, sql);
	cs_err r = CS_OK;
	if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
		if (denied != NULL && sqlstate_is(res, "42501")) {
			*denied = 1;
			r = CS_E_STORE_SCHEMA;
		} else {
			r = query_failed(s, what, res);
		}
	}
	PQclear(res);
	return r;
}

/* The schema's version: 0 when there is none yet. */
static cs_err schema_version(pg_store *s, int *version)
{
	PGresult *res = NULL;
	int64_t v = 0;
	*version = 0;
	cs_err r = pg_query(s, "reading the schema version",
			    "SELECT CASE WHEN to_regclass('credsign.schema_version') IS NULL THEN 0 ELSE -1 END", 0,
			    NULL, &res);
	if (r == CS_OK)
		r = pg_int(res, 0, 0, &v);
	PQclear(res);
	res = NULL;
	if (r == CS_OK && v < 0) {
		r = pg_query(s, "reading the schema version",
			     "SELECT coalesce(max(version), 0) FROM credsign.schema_version", 0, NULL, &res);
		if (r == CS_OK)
			r = pg_int(res, 0, 0, &v);
		PQclear(res);
	}
	if (r == CS_OK)
		*version = (int)v;
	return r;
}

/* Grant the node role its rights (the migrating connection, the schema's
 * owner); a role that does not exist: warned, skipped. */
static cs_err grant_node_role(pg_store *s)
{
	const char *role = s->target->node_role;
	const char *p[] = {role};
	PGresult *res = NULL;
	cs_err r = pg_query(s, "looking up the node role", "SELECT 1 FROM pg_roles WHERE rolname = $1", 1, p, &res);
	int exists = r == CS_OK && PQntuples(res) > 0;
	PQclear(res);
	if (r != CS_OK)
		return r;
	if (!exists) {
		cs_log_warn("store %s: role %s does not exist: no rights granted to the nodes' role", s->name, role);
		return CS_OK;
	}
	char *q = PQescapeIdentifier(s->conn, role, strlen(role));
	if (q == NULL) {
		cs_log_error("store %s: quoting the role %s: %s", s->name, role, PQerrorMessage(s->conn));
		return CS_E_STORE;
	}
	for (size_t i = 0; r == CS_OK && i < sizeof(pg_grants) / sizeof(pg_grants[0]); i++) {
		char sql[512];
		snprintf(sql, sizeof(sql), "%s %s %s", pg_grants[i].what, pg_grants[i].to, q);
		r = exec_script(s, "granting the node role its rights", sql, NULL);
	}
	PQfreemem(q);
	if (r == CS_OK)
		cs_log_info("store %s: role %s granted its rights", s->name, role);
	return r;
}

/* The schema is up to date: when this role owns it and the node role
 * (made since) lacks its rights, grant them (credsign-admin store init). */
static cs_err regrant(pg_store *s)
{
	const char *p[] = {s->target->node_role};
	PGresult *res = NULL;
	cs_err r = pg_query(s, "reading the node role's rights",
			    "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) THEN 0 "
			    "WHEN (SELECT nspowner FROM pg_namespace WHERE nspname = 'credsign') <> "
			    "(SELECT oid FROM pg_roles WHERE rolname = current_user) THEN 0 "
			    "WHEN has_schema_privilege($1, 'credsign', 'USAGE') THEN 0 ELSE 1 END",
			    1, p, &res);
	int64_t needed = 0;
	if (r == CS_OK)
		r = pg_int(res, 0, 0, &needed);
	PQclear(res);
	if (r != CS_OK || !needed)
		return r;
	if ((r = exec_script(s, "granting the node role its rights", "BEGIN", NULL)) != CS_OK)
		return r;
	r = grant_node_role(s);
	if (r == CS_OK)
		return exec_script(s, "granting the node role its rights", "COMMIT", NULL);
	if (PQstatus(s->conn) == CONNECTION_OK)
		(void)exec_script(s, "granting the node role its rights", "ROLLBACK", NULL);
	return r;
}

/* Run the migrations the schema lacks, in one transaction. */
static cs_err migrate_tx(pg_store *s, int from)
{
	char v[24];
	int denied = 0;
	cs_err r = exec_script(s, "migrating the schema", "BEGIN", NULL);
	for (int i = 0; r == CS_OK && i < PG_MIGRATIONS; i++) {
		if (pg_migrations[i].version <= from)
			continue;
		const char *p[] = {pg_i64(v, pg_migrations[i].version)};
		if ((r = exec_script(s, "migrating the schema", pg_migrations[i].sql, &denied)) == CS_OK &&
		    (r = pg_exec_once(s, "migrating the schema", "DELETE FROM credsign.schema_version", 0, NULL, 0)) ==
			    CS_OK &&
		    (r = pg_exec_once(s, "migrating the schema",
				      "INSERT INTO credsign.schema_version (version) VALUES ($1::int)", 1, p, 0)) == CS_OK)
			cs_log_info("store %s: schema migrated to version %d", s->name, pg_migrations[i].version);
	}
	if (r == CS_OK)
		r = grant_node_role(s);
	if (r == CS_OK)
		r = exec_script(s, "migrating the schema", "COMMIT", NULL);
	else if (PQstatus(s->conn) == CONNECTION_OK)
		(void)exec_script(s, "migrating the schema", "ROLLBACK", NULL);
	if (denied)
		cs_log_error("store %s: schema version %d, this program needs %d, and role %s cannot migrate it: run "
			     "`credsign-admin store init --owner-connection ...` as the schema owner",
			     s->name, from, PG_SCHEMA_VERSION, PQuser(s->conn));
	return r;
}

/* Create or migrate the schema once across nodes (under the migration
 * lock), or, read-only, check its version. */
static cs_err migrate(pg_store *s)
{
	int v = 0;
	cs_err r;
	if (s->readonly) {
		if ((r = schema_version(s, &v)) != CS_OK)
			return r;
	} else {
		if ((r = pg_exec(s, "taking the migration lock", "SELECT pg_advisory_lock(" PG_MIGRATE_LOCK ")", 0, NULL,
				 NULL)) != CS_OK)
			return r;
		r = schema_version(s, &v);
		if (r == CS_OK && v < PG_SCHEMA_VERSION)
			r = migrate_tx(s, v);
		else if (r == CS_OK && v == PG_SCHEMA_VERSION)
			r = regrant(s);
		if (PQstatus(s->conn) == CONNECTION_OK &&
		    pg_exec(s, "releasing the migration lock", "SELECT pg_advisory_unlock(" PG_MIGRATE_LOCK ")", 0, NULL,
			    NULL) != CS_OK)
			cs_log_warn("store %s: the migration lock stays until the connection closes", s->name);
		if (r != CS_OK)
			return r;
	}
	if (v > PG_SCHEMA_VERSION) {
		cs_log_error("store %s has schema version %d, newer than this program's %d", s->name, v,
			     PG_SCHEMA_VERSION);
		return CS_E_STORE_SCHEMA;
	}
	if (s->readonly && v != PG_SCHEMA_VERSION) {
		cs_log_error("store %s has schema version %d, this program %d: run `credsign-admin store init` first",
			     s->name, v, PG_SCHEMA_VERSION);
		return CS_E_STORE;
	}
	return CS_OK;
}

/* ---- the guards ----------------------------------------------------------------------
 * What keeps the store append-only and the key lifecycle forward-only in
 * the database itself: every trigger the migrations make (the audit log's,
 * the TRUNCATE ones, the purge checkpoint's), each on its table and
 * enabled, every function they make (the triggers' and audit_purge) with
 * its body (pg_proc.prosrc) exactly as written, its language, SECURITY
 * DEFINER or not, its settings (search_path) and the schema owner as its
 * owner, the unique indexes they make (signing_keys_one_active) with
 * their definitions, and no rule on a table of the schema (a rule may
 * rewrite a write around the triggers). What is expected is read from the
 * migrations' text itself (the newest that makes each object), not from a
 * second copy; one query reads what the database holds. One missing or
 * not as made means the database was changed outside credsign (its owner
 * or a superuser) or is damaged: refused at every open, and the daemon's
 * periodic check (cs_store_guards_check) makes /readyz report it. */

#define GUARDS_MAX 128

typedef struct {
	const char *p;
	size_t n;
} span;

typedef struct {
	char kind;  /* 't' trigger, 'f' function, 'i' unique index */
	span name;  /* the object's name */
	span rel;   /* 't', 'i': its table; 'f': its arguments, "(...)" */
	span def;   /* 't', 'i': the CREATE statement (no ';'); 'f': its header, up to " AS $" */
	span body;  /* 'f': between its dollar quotes */
	int secdef; /* 'f': SECURITY DEFINER */
	span lang;  /* 'f': LANGUAGE */
	span conf;  /* 'f': what follows SET in its header ("" none) */
} pg_guard;

static pg_guard guards_want[GUARDS_MAX];
static size_t guards_n;
static const char *guards_bad; /* the migrations' text could not be read: why */
static pthread_once_t guards_once = PTHREAD_ONCE_INIT;

static int ident_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static span ident_at(const char *p)
{
	span sp = {p, 0};
	while (ident_char(p[sp.n]))
		sp.n++;
	return sp;
}

/* The first occurrence of needle in [from, end), or NULL. */
static const char *find_in(const char *from, const char *end, const char *needle)
{
	size_t n = strlen(needle);
	for (const char *p = from; p + n <= end; p++)
		if (memcmp(p, needle, n) == 0)
			return p;
	return NULL;
}

static int span_eq(span a, span b)
{
	return a.n == b.n && memcmp(a.p, b.p, a.n) == 0;
}

/* Record g, replacing what an older migration made of the same kind and name. */
static void guard_put(const pg_guard *g)
{
	for (size_t i = 0; i < guards_n; i++)
		if (guards_want[i].kind == g->kind && span_eq(guards_want[i].name, g->name)) {
			guards_want[i] = *g;
			return;
		}
	if (guards_n == GUARDS_MAX) /* GCOVR_EXCL_BR_LINE: the migrations' text is a compile-time constant: no input reaches it */
		guards_bad = "more guards than GUARDS_MAX"; /* GCOVR_EXCL_LINE: the migrations' text is a compile-time constant: no input reaches it */
	else
		guards_want[guards_n++] = *g;
}

/* A CREATE TRIGGER or CREATE UNIQUE INDEX statement at p (its head hlen long). */
static const char *parse_rel_guard(char kind, const char *p, size_t hlen)
{
	pg_guard g = {.kind = kind};
	const char *end = strchr(p, ';');
	const char *on = end != NULL ? find_in(p, end, " ON ") : NULL; /* GCOVR_EXCL_BR_LINE: the migrations' text is a compile-time constant: no input reaches it */
	if (on == NULL) { /* GCOVR_EXCL_START: the migrations' text is a compile-time constant: no input reaches it */
		guards_bad = "a trigger or index without ON or ';'";
		return NULL;
	} /* GCOVR_EXCL_STOP */
	g.name = ident_at(p + hlen);
	g.rel = ident_at(on + 4);
	g.def = (span){p, (size_t)(end - p)};
	if (g.name.n == 0 || g.rel.n == 0) { /* GCOVR_EXCL_START: the migrations' text is a compile-time constant: no input reaches it */
		guards_bad = "a trigger or index without its name or table";
		return NULL;
	} /* GCOVR_EXCL_STOP */
	guard_put(&g);
	return end;
}

/* A CREATE [OR REPLACE] FUNCTION statement at p (its head hlen long). */
static const char *parse_function(const char *p, size_t hlen)
{
	pg_guard g = {.kind = 'f'};
	g.name = ident_at(p + hlen);
	const char *args = g.name.p + g.name.n, *args_end = *args == '(' ? strchr(args, ')') : NULL; /* GCOVR_EXCL_BR_LINE: the migrations' text is a compile-time constant */
	const char *as = args_end != NULL ? strstr(args_end, " AS $") : NULL; /* GCOVR_EXCL_BR_LINE: the migrations' text is a compile-time constant */
	const char *tag_end = as != NULL ? strchr(as + 5, '$') : NULL; /* GCOVR_EXCL_BR_LINE: the migrations' text is a compile-time constant */
	if (g.name.n == 0 || tag_end == NULL) { /* GCOVR_EXCL_START: the migrations' text is a compile-time constant: no input reaches it */
		guards_bad = "a function without its name, arguments or dollar-quoted body";
		return NULL;
	} /* GCOVR_EXCL_STOP */
	g.rel = (span){args, (size_t)(args_end + 1 - args)};
	span tag = {as + 4, (size_t)(tag_end + 1 - (as + 4))};
	g.body.p = tag_end + 1;
	const char *close = g.body.p;
	while ((close = strstr(close, "$")) != NULL && strncmp(close, tag.p, tag.n) != 0)
		close++;
	if (close == NULL) { /* GCOVR_EXCL_START: the migrations' text is a compile-time constant: no input reaches it */
		guards_bad = "a function whose body does not end";
		return NULL;
	} /* GCOVR_EXCL_STOP */
	g.body.n = (size_t)(close - g.body.p);
	g.def = (span){p, (size_t)(as - p)};
	g.secdef = find_in(p, as, " SECURITY DEFINER") != NULL;
	const char *lang = find_in(p, as, " LANGUAGE ");
	g.lang = lang != NULL ? ident_at(lang + 10) : (span){"sql", 3}; /* GCOVR_EXCL_BR_LINE: the migrations' text is a compile-time constant: no input reaches it */
	const char *set = find_in(p, as, " SET ");
	g.conf = set != NULL ? (span){set + 5, (size_t)(as - (set + 5))} : (span){"", 0}; /* GCOVR_EXCL_BR_LINE: the migrations' text is a compile-time constant: no input reaches it */
	guard_put(&g);
	return close + tag.n;
}

/* What the migrations make, newest last (later ones replace earlier ones). */
static void guards_init(void)
{
	static const struct {
		char kind;
		const char *head;
	} heads[] = {
		{'t', "CREATE TRIGGER "},
		{'i', "CREATE UNIQUE INDEX "},
		{'f', "CREATE FUNCTION "},
		{'f', "CREATE OR REPLACE FUNCTION "},
	};
	for (int m = 0; m < PG_MIGRATIONS && guards_bad == NULL; m++) {
		const char *p = pg_migrations[m].sql;
		while (p != NULL && *p != '\0' && guards_bad == NULL) { /* GCOVR_EXCL_BR_LINE: the migrations' text is a compile-time constant: no input reaches it */
			const char *next = NULL;
			size_t h = 0;
			for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
				const char *at = strstr(p, heads[i].head);
				if (at != NULL && (next == NULL || at < next)) { /* GCOVR_EXCL_BR_LINE: the migrations' text is a compile-time constant: no input reaches it */
					next = at;
					h = i;
				}
			}
			if (next == NULL)
				break;
			size_t hlen = strlen(heads[h].head);
			p = heads[h].kind == 'f' ? parse_function(next, hlen) : parse_rel_guard(heads[h].kind, next, hlen);
		}
	}
	if (guards_bad == NULL && guards_n == 0) /* GCOVR_EXCL_BR_LINE: the migrations' text is a compile-time constant: no input reaches it */
		guards_bad = "no guard found"; /* GCOVR_EXCL_LINE: the migrations' text is a compile-time constant: no input reaches it */
}

/* A definition reduced to what PostgreSQL's catalog keeps of it, to compare
 * the migrations' text with pg_get_triggerdef / pg_get_indexdef and a
 * function's settings: outside quoted literals, no white space nor
 * parentheses, lower case, no "::type" casts, no "credsign." qualifier
 * and no "USING btree". Into out[size]; 0 when it does not fit. */
static int normalize(span in, char *out, size_t size)
{
	size_t o = 0;
	int quoted = 0;
	for (size_t i = 0; i < in.n; i++) {
		char c = in.p[i];
		if (!quoted) {
			if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '(' || c == ')')
				continue;
			if (c == ':' && i + 1 < in.n && in.p[i + 1] == ':') {
				for (i += 2; i < in.n && ident_char(in.p[i]); i++)
					;
				i--;
				continue;
			}
			if (in.n - i >= 9 && strncasecmp(in.p + i, "credsign.", 9) == 0) {
				i += 8;
				continue;
			}
			if (in.n - i >= 11 && strncasecmp(in.p + i, "USING btree", 11) == 0) {
				i += 10;
				continue;
			}
			if (c >= 'A' && c <= 'Z')
				c = (char)(c - 'A' + 'a');
		}
		if (c == '\'')
			quoted = !quoted;
		if (o + 1 >= size)
			return 0;
		out[o++] = c;
	}
	out[o] = '\0';
	return 1;
}

/* Whether the catalog's text have is what want becomes (normalize). */
static int same_def(span want, const char *have)
{
	char a[2048], b[2048];
	return normalize(want, a, sizeof(a)) && normalize((span){have, strlen(have)}, b, sizeof(b)) &&
	       strcmp(a, b) == 0;
}

/* What the database holds: 't' triggers (name, table, tgenabled, definition),
 * 'f' functions (name, arguments, owned by the schema owner 'O',
 * prosrc, "LANGUAGE definer|invoker", settings), 'i' unique indexes but
 * keys and constraints (name, table, usable 'O', definition), 'r' rules
 * (name, table) of the schema's tables. */
static const char guards_sql[] =
	"WITH n AS (SELECT oid, nspowner FROM pg_namespace WHERE nspname = 'credsign') "
	"SELECT 't'::text, t.tgname::text, c.relname::text, t.tgenabled::text, pg_get_triggerdef(t.oid), "
	"  NULL::text, NULL::text "
	"FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN n ON n.oid = c.relnamespace "
	"WHERE NOT t.tgisinternal "
	"UNION ALL SELECT 'f', p.proname::text, pg_get_function_identity_arguments(p.oid), "
	"  CASE WHEN p.proowner = n.nspowner THEN 'O' ELSE 'X' END, p.prosrc, "
	"  l.lanname::text || CASE WHEN p.prosecdef THEN ' definer' ELSE ' invoker' END, "
	"  coalesce(array_to_string(p.proconfig, ' '), '') "
	"FROM pg_proc p JOIN n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang "
	"UNION ALL SELECT 'i', i.relname::text, c.relname::text, "
	"  CASE WHEN x.indisvalid AND x.indisready AND x.indislive THEN 'O' ELSE 'X' END, "
	"  pg_get_indexdef(x.indexrelid), NULL, NULL "
	"FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class c ON c.oid = x.indrelid "
	"JOIN n ON n.oid = i.relnamespace "
	"WHERE x.indisunique AND NOT x.indisprimary "
	"AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid) "
	"UNION ALL SELECT 'r', r.rulename::text, c.relname::text, NULL, NULL, NULL, NULL "
	"FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class JOIN n ON n.oid = c.relnamespace "
	"WHERE c.relkind IN ('r', 'p')";

static const char *const guard_kinds[] = {"trigger", "function", "index"};

static const char *kind_name(char kind)
{
	return guard_kinds[kind == 't' ? 0 : kind == 'f' ? 1 : 2];
}

/* How the database's rows res differ from guard g: NULL when not at all. */
static const char *guard_differs(PGresult *res, const pg_guard *g, char *detail, size_t detail_len)
{
	int rows = PQntuples(res), found = -1, elsewhere = -1;
	char kind[2] = {g->kind, '\0'};
	detail[0] = '\0';
	for (int i = 0; i < rows && found < 0; i++) {
		const char *name = PQgetvalue(res, i, 1);
		if (strcmp(PQgetvalue(res, i, 0), kind) != 0 || strlen(name) != g->name.n ||
		    memcmp(name, g->name.p, g->name.n) != 0)
			continue;
		const char *rel = PQgetvalue(res, i, 2);
		int same_rel = g->kind == 'f' ? same_def(g->rel, rel) : strlen(rel) == g->rel.n &&
										  memcmp(rel, g->rel.p, g->rel.n) == 0;
		if (same_rel)
			found = i;
		else if (elsewhere < 0)
			elsewhere = i;
	}
	if (found < 0 && elsewhere >= 0 && g->kind != 'f') {
		snprintf(detail, detail_len, " (on table %s, not %.*s)", PQgetvalue(res, elsewhere, 2), (int)g->rel.n,
			 g->rel.p);
		return "moved";
	}
	if (found < 0)
		return "missing";
	const char *state = PQgetvalue(res, found, 3), *def = PQgetvalue(res, found, 4);
	if (g->kind == 't') {
		if (strcmp(state, "O") != 0 && strcmp(state, "A") != 0)
			return strcmp(state, "R") == 0 ? "disabled (it fires on replicas only)" : "disabled";
		return same_def(g->def, def) ? NULL : "altered (not as credsign made it)";
	}
	if (g->kind == 'i') {
		if (strcmp(state, "O") != 0)
			return "not valid (a failed or unfinished rebuild)";
		return same_def(g->def, def) ? NULL : "altered (not as credsign made it)";
	}
	if (strcmp(state, "O") != 0)
		return "owned by another role than the schema owner";
	if (strlen(def) != g->body.n || memcmp(def, g->body.p, g->body.n) != 0)
		return "altered (its body is not as credsign made it)";
	const char *how = PQgetvalue(res, found, 5);
	size_t lang = strcspn(how, " ");
	if (lang != g->lang.n || strncasecmp(how, g->lang.p, lang) != 0)
		return "altered (its language)";
	if ((strcmp(how + lang, " definer") == 0) != g->secdef)
		return g->secdef ? "altered (SECURITY INVOKER; credsign made it SECURITY DEFINER)"
				 : "altered (SECURITY DEFINER; credsign made it SECURITY INVOKER)";
	if (!same_def(g->conf, PQgetvalue(res, found, 6)))
		return "altered (its settings: search_path)";
	return NULL;
}

/* Every guard there and as made; else CS_E_STORE with why[why_len]
 * naming the first that is not (unlogged). A query that fails: CS_E_STORE
 * logged (pg_query), why "". */
/* Whether a guard belongs to the audit log (its triggers on audit_log and
 * audit_checkpoints, or their functions): those a read-only open (audit
 * verify, --check-config) lets pass with a warning, as the SQLite backend
 * leaves them to the hash chain and the signed checkpoints: the verifier
 * must still read a log whose guards were removed, and say what it finds. */
static int audit_guard(const pg_guard *g)
{
	return (g->kind == 't' && ((g->rel.n == 9 && memcmp(g->rel.p, "audit_log", 9) == 0) ||
				   (g->rel.n == 17 && memcmp(g->rel.p, "audit_checkpoints", 17) == 0))) ||
	       (g->kind == 'f' && g->name.n >= 5 && memcmp(g->name.p, "audit", 5) == 0);
}

static cs_err guards_compare(pg_store *s, char *why, size_t why_len)
{
	why[0] = '\0';
	pthread_once(&guards_once, guards_init);
	if (guards_bad != NULL) { /* GCOVR_EXCL_START: the migrations' text is a compile-time constant: no input reaches it */
		cs_log_error("store %s: the schema's guards cannot be read from the migrations: %s", s->name,
			     guards_bad);
		return CS_E_INTERNAL;
	} /* GCOVR_EXCL_STOP */
	PGresult *res = NULL;
	cs_err r = pg_query(s, "reading the schema's guards", guards_sql, 0, NULL, &res);
	if (r != CS_OK)
		return r;
	char detail[256];
	for (size_t i = 0; r == CS_OK && i < guards_n; i++) {
		const pg_guard *g = &guards_want[i];
		const char *how = guard_differs(res, g, detail, sizeof(detail));
		if (how != NULL && s->readonly && audit_guard(g)) {
			cs_log_warn("store %s: %s %.*s %s%s (an audit log guard: read on, its hash chain and signed "
				    "checkpoints tell what changed)",
				    s->name, kind_name(g->kind), (int)g->name.n, g->name.p, how, detail);
		} else if (how != NULL) {
			snprintf(why, why_len, "store %s tampered or damaged: %s %.*s %s%s", s->name, kind_name(g->kind),
				 (int)g->name.n, g->name.p, how, detail);
			r = CS_E_STORE;
		}
	}
	for (int i = 0; r == CS_OK && i < PQntuples(res); i++)
		if (strcmp(PQgetvalue(res, i, 0), "r") == 0) {
			snprintf(why, why_len, "store %s tampered or damaged: rule %s on table %s (credsign makes none)",
				 s->name, PQgetvalue(res, i, 1), PQgetvalue(res, i, 2));
			r = CS_E_STORE;
		}
	PQclear(res);
	return r;
}

/* At open: as guards_compare, logged. */
static cs_err check_guards(pg_store *s)
{
	char why[512];
	cs_err r = guards_compare(s, why, sizeof(why));
	if (r != CS_OK && why[0] != '\0')
		cs_log_error("%s; refused: restore the store from a backup", why);
	return r;
}

static cs_err pg_guards_check(cs_store *store, char *why, size_t why_len)
{
	pg_store *s = (pg_store *)store;
	char buf[512];
	cs_err r = guards_compare(s, buf, sizeof(buf));
	if (why_len > 0)
		snprintf(why, why_len, "%s", buf);
	return r;
}

/* ---- open, close ------------------------------------------------------------------- */

static void target_copy_free(struct pg_target_copy *t)
{
	if (t == NULL)
		return;
	free(t->conninfo);
	free(t->sslmode);
	free(t->ca_file);
	free(t->password_file);
	free(t->application_name);
	free(t->node_role);
	free(t->options);
	free(t);
}

static int dup_opt(const char *in, char **out)
{
	*out = NULL;
	return in == NULL || (*out = strdup(in)) != NULL;
}

static struct pg_target_copy *target_copy(const cs_store_target *t, int readonly)
{
	struct pg_target_copy *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	char options[256];
	int n = snprintf(options, sizeof(options), "-c search_path=credsign,pg_temp -c bytea_output=hex");
	/* a node frozen inside a transaction (stopped, paused, cut off) holds
	 * the write lock of every node: PostgreSQL ends its session after the
	 * same bound as a statement's */
	if (t->statement_timeout_ms > 0)
		n += snprintf(options + n, sizeof(options) - (size_t)n,
			      " -c statement_timeout=%d -c idle_in_transaction_session_timeout=%d",
			      t->statement_timeout_ms, t->statement_timeout_ms);
	if (readonly)
		snprintf(options + n, sizeof(options) - (size_t)n, " -c default_transaction_read_only=on");
	c->connect_timeout_s = t->connect_timeout_s;
	c->statement_timeout_ms = t->statement_timeout_ms;
	if (!dup_opt(t->conninfo != NULL ? t->conninfo : "", &c->conninfo) || !dup_opt(t->sslmode, &c->sslmode) ||
	    !dup_opt(t->ca_file, &c->ca_file) || !dup_opt(t->password_file, &c->password_file) ||
	    !dup_opt(t->application_name, &c->application_name) ||
	    !dup_opt(t->node_role != NULL ? t->node_role : "credsign_node", &c->node_role) ||
	    !dup_opt(options, &c->options)) {
		target_copy_free(c);
		return NULL;
	}
	return c;
}

/* Never NULL: cs_store_close checks, the open passes its own. */
static void pg_close(cs_store *store)
{
	pg_store *s = (pg_store *)store;
	pg_head_drop(s);
	if (s->conn != NULL)
		PQfinish(s->conn);
	stmts_free(s);
	target_copy_free(s->target);
	free(s->name);
	if (s->counted)
		atomic_fetch_sub(&pg_connections, 1);
	free(s);
}

static const cs_store_ops *pg_ops(void);

cs_err cs_store_pg_raw_connect(const cs_store_target *target, PGconn **out)
{
	char name[PG_NAME_MAX];
	*out = NULL;
	if (target->backend != CS_STORE_POSTGRESQL || target->conninfo == NULL) {
		cs_log_error("store: not a PostgreSQL store");
		return CS_E_INVALID_ARG;
	}
	cs_store_target_name(target, name, sizeof(name));
	struct pg_target_copy *t = target_copy(target, 0);
	if (t == NULL)
		return CS_E_NOMEM;
	PGconn *c = NULL;
	cs_err r = connect_target(t, name, &c);
	if (r != CS_OK && c != NULL)
		r = connect_failed(name, c);
	if (r != CS_OK)
		PQfinish(c);
	else
		*out = c;
	target_copy_free(t);
	return r;
}

cs_err cs_store_pg_open(const cs_store_target *target, int readonly, cs_store **out)
{
	*out = NULL;
	failure_setting = NULL;
	char name[PG_NAME_MAX];
	cs_store_target_name(target, name, sizeof(name));
	if (target->conninfo == NULL) {
		cs_log_error("store: store.postgresql.connection is not set");
		return CS_E_INVALID_ARG;
	}
	pg_store *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return CS_E_NOMEM;
	s->base.ops = pg_ops();
	s->readonly = readonly;
	cs_err r = CS_E_NOMEM;
	if ((s->name = strdup(name)) == NULL || (s->stmts = calloc(1, sizeof(*s->stmts))) == NULL ||
	    (s->target = target_copy(target, readonly)) == NULL)
		goto fail;
	int n = atomic_fetch_add(&pg_connections, 1) + 1;
	s->counted = 1;
	if (target->pool_size > 0 && n > target->pool_size) {
		cs_log_error("store %s: store.postgresql.pool_size %d reached", s->name, target->pool_size);
		r = CS_E_STORE;
		goto fail;
	}
	PGconn *c = NULL;
	if ((r = connect_target(s->target, s->name, &c)) != CS_OK) {
		if (c != NULL)
			r = connect_failed(s->name, c);
		PQfinish(c);
		goto fail;
	}
	s->conn = c;
	s->no_retry = 1;
	if ((r = migrate(s)) != CS_OK || (r = check_guards(s)) != CS_OK)
		goto fail;
	s->no_retry = 0;
	*out = &s->base;
	return CS_OK;
fail:
	pg_close(&s->base);
	return r;
}

/* One field of a parsed conninfo, or libpq's default for it. */
static const char *conn_field(PQconninfoOption *opts, PQconninfoOption *defs, const char *key)
{
	for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++)
		if (strcmp(o->keyword, key) == 0 && o->val != NULL && *o->val)
			return o->val;
	for (PQconninfoOption *o = defs; o != NULL && o->keyword != NULL; o++)
		if (strcmp(o->keyword, key) == 0 && o->val != NULL && *o->val)
			return o->val;
	return NULL;
}

const char *cs_store_target_name(const cs_store_target *target, char *buf, size_t size)
{
	if (size == 0)
		return buf;
	if (target->backend != CS_STORE_POSTGRESQL) {
		snprintf(buf, size, "%s", target->path != NULL ? target->path : "(no path)");
		return buf;
	}
	char *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(target->conninfo != NULL ? target->conninfo : "", &err);
	PQconninfoOption *defs = PQconndefaults();
	PQfreemem(err);
	const char *user = conn_field(opts, defs, "user"), *host = conn_field(opts, defs, "host");
	const char *hostaddr = conn_field(opts, NULL, "hostaddr"), *port = conn_field(opts, defs, "port");
	const char *db = conn_field(opts, defs, "dbname");
	if (host == NULL)
		host = hostaddr != NULL ? hostaddr : "localhost";
	snprintf(buf, size, "postgresql://%s%s%s:%s/%s", user != NULL ? user : "", user != NULL ? "@" : "", host,
		 port != NULL ? port : "5432", db != NULL ? db : (user != NULL ? user : ""));
	PQconninfoFree(opts);
	PQconninfoFree(defs);
	return buf;
}

/* ---- sessions and certificates ----------------------------------------------------- */

/* An insert whose conflict is an outcome (ON CONFLICT DO NOTHING): no row
 * inserted is CS_E_CONFLICT, and the transaction goes on. */
static cs_err insert_once(pg_store *s, const char *what, const char *sql, int n, const char *const *params)
{
	int64_t affected = 0;
	cs_err r = pg_exec(s, what, sql, n, params, &affected);
	return r == CS_OK && affected == 0 ? CS_E_CONFLICT : r;
}

/* An update of one row: CS_E_NOT_FOUND when none changed. */
static cs_err update_one(pg_store *s, const char *what, const char *sql, int n, const char *const *params)
{
	int64_t affected = 0;
	cs_err r = pg_exec(s, what, sql, n, params, &affected);
	return r == CS_OK && affected != 1 ? CS_E_NOT_FOUND : r;
}

static cs_err pg_session_insert(cs_store *store, const cs_gen_session *g)
{
	pg_store *s = (pg_store *)store;
	char created[24], expires[24];
	const char *p[] = {g->id, pg_i64(created, g->created_ms), pg_i64(expires, g->expires_ms), g->cert_sha256,
			   g->claims_json};
	int64_t affected = 0;
	/* the session and its claims in one statement */
	cs_err r = pg_exec(s, "storing the generation session",
			   "WITH g AS (INSERT INTO generation_sessions (id, created_ms, expires_ms, cert_sha256) "
			   "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING id) "
			   "INSERT INTO session_claims (session_id, claims_json) SELECT id, $5 FROM g "
			   "ON CONFLICT DO NOTHING",
			   5, p, &affected);
	if (r == CS_OK && affected == 1)
		s->changes++; /* the session's row */
	return r == CS_OK && affected == 0 ? CS_E_CONFLICT : r;
}

static cs_err pg_session_get(cs_store *store, const char *session_id, cs_session_row *row)
{
	pg_store *s = (pg_store *)store;
	PGresult *res = NULL;
	const char *p[] = {session_id};
	*row = (cs_session_row){0};
	cs_err r = pg_query(s, "reading the generation session",
			    "SELECT s.cert_sha256, s.expires_ms, (s.cert_id IS NOT NULL)::int, c.claims_json "
			    "FROM generation_sessions s LEFT JOIN session_claims c ON c.session_id = s.id WHERE s.id = $1",
			    1, p, &res);
	if (r == CS_OK && PQntuples(res) == 0)
		r = CS_E_NOT_FOUND;
	int64_t certified = 0;
	const char *claims = NULL;
	if (r == CS_OK && (r = pg_dup(res, 0, 0, &row->cert_sha256)) == CS_OK &&
	    (r = pg_int(res, 0, 1, &row->expires_ms)) == CS_OK && (r = pg_int(res, 0, 2, &certified)) == CS_OK &&
	    (r = pg_text(res, 0, 3, certified != 0, &claims)) == CS_OK) {
		row->certified = certified != 0;
		/* the claims are gone once certified, and only then */
		if ((row->claims_json = strdup(claims != NULL ? claims : "")) == NULL)
			r = CS_E_NOMEM;
	}
	PQclear(res);
	if (r != CS_OK)
		cs_session_row_free(row);
	return r;
}

static cs_err pg_session_claim(cs_store *store, const char *session_id, const char *cert_id, int *claimed)
{
	pg_store *s = (pg_store *)store;
	PGresult *res = NULL;
	const char *p[] = {cert_id, session_id};
	int64_t n = 0, dropped = 0;
	*claimed = 0;
	/* the conditional mark and the claims' deletion in one statement */
	cs_err r = pg_query(s, "marking the session certified",
			    "WITH u AS (UPDATE generation_sessions SET cert_id = $1 WHERE id = $2 AND cert_id IS NULL "
			    "RETURNING id), d AS (DELETE FROM session_claims WHERE session_id IN (SELECT id FROM u) "
			    "RETURNING 1) SELECT (SELECT count(*) FROM u), (SELECT count(*) FROM d)",
			    2, p, &res);
	if (r == CS_OK && (r = pg_int(res, 0, 0, &n)) == CS_OK && (r = pg_int(res, 0, 1, &dropped)) == CS_OK) {
		s->changes += n + dropped;
		*claimed = n == 1;
	}
	PQclear(res);
	return r;
}

static cs_err pg_cert_insert(cs_store *store, const char *cert_id, const char *session_id, const char *kid,
			     const cs_cert_parts *cert, int64_t created_ms)
{
	pg_store *s = (pg_store *)store;
	char created[24];
	const char *p[] = {cert_id,	       session_id,	   kid, cert->header_b64, cert->claims_json,
			   cert->signature_b64, pg_i64(created, created_ms)};
	return insert_once(s, "storing the certificate",
			   "INSERT INTO certificates (id, session_id, kid, header, claims_json, signature, created_ms) "
			   "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
			   7, p);
}

static cs_err pg_cert_get(cs_store *store, const char *cert_id, cs_cert_row *row)
{
	pg_store *s = (pg_store *)store;
	PGresult *res = NULL;
	const char *p[] = {cert_id};
	*row = (cs_cert_row){0};
	cs_err r = pg_query(s, "reading the certificate",
			    "SELECT header, claims_json, signature FROM certificates WHERE id = $1", 1, p, &res);
	if (r == CS_OK && PQntuples(res) == 0)
		r = CS_E_NOT_FOUND;
	if (r == CS_OK && (r = pg_dup(res, 0, 0, &row->header_b64)) == CS_OK &&
	    (r = pg_dup(res, 0, 1, &row->claims_json)) == CS_OK)
		r = pg_dup(res, 0, 2, &row->signature_b64);
	PQclear(res);
	if (r != CS_OK)
		cs_cert_row_free(row);
	return r;
}

/* ---- the inventory ------------------------------------------------------------------- */

/* The inventory's rows (cs_inventory_row's order) in the order of the
 * index certificates_inventory (schema_v11), one statement per filter. */
#define INV_SELECT                                                                                         \
	"SELECT c.id, c.project, c.environment, c.system, c.claims_json, c.created_ms, r.revoked_at, r.reason " \
	"FROM certificates c LEFT JOIN cert_revocations r ON r.cert_id = c.id "
#define INV_ORDER                                                                                          \
	" ORDER BY c.project NULLS FIRST, c.environment NULLS FIRST, c.system NULLS FIRST, c.created_ms, "  \
	"c.id COLLATE \"C\""

static cs_err pg_inventory_each(cs_store *store, const char *project, const char *environment,
				cs_inventory_row_fn fn, void *arg)
{
	pg_store *s = (pg_store *)store;
	PGresult *res = NULL;
	const char *p[2] = {project, environment};
	int n = 0;
	cs_err r;
	if (fn == NULL)
		return CS_E_INVALID_ARG;
	/* one statement: one snapshot */
	if (project != NULL && environment != NULL)
		r = pg_query(s, "reading the inventory",
			     INV_SELECT "WHERE c.project = $1 AND c.environment = $2" INV_ORDER, 2, p, &res);
	else if (project != NULL)
		r = pg_query(s, "reading the inventory", INV_SELECT "WHERE c.project = $1" INV_ORDER, 1, p, &res);
	else if (environment != NULL)
		r = pg_query(s, "reading the inventory", INV_SELECT "WHERE c.environment = $1" INV_ORDER, 1, p + 1,
			     &res);
	else
		r = pg_query(s, "reading the inventory", INV_SELECT INV_ORDER, 0, NULL, &res);
	if (r == CS_OK)
		n = PQntuples(res);
	for (int i = 0; r == CS_OK && i < n; i++) {
		cs_inventory_row row = {0};
		if ((r = pg_text(res, i, 0, 0, &row.cert_id)) != CS_OK ||
		    (r = pg_text(res, i, 1, 1, &row.project)) != CS_OK ||
		    (r = pg_text(res, i, 2, 1, &row.environment)) != CS_OK ||
		    (r = pg_text(res, i, 3, 1, &row.system)) != CS_OK ||
		    (r = pg_text(res, i, 4, 0, &row.claims_json)) != CS_OK ||
		    (r = pg_int(res, i, 5, &row.created_ms)) != CS_OK ||
		    (r = pg_text(res, i, 6, 1, &row.revoked_at)) != CS_OK ||
		    (r = pg_text(res, i, 7, 1, &row.revocation_reason)) != CS_OK)
			break;
		if (fn(arg, &row) != 0)
			break;
	}
	PQclear(res);
	return r;
}

static cs_err pg_sessions_delete_expired(cs_store *store, int64_t expired_before_ms, int64_t *removed)
{
	pg_store *s = (pg_store *)store;
	char before[24];
	const char *p[] = {pg_i64(before, expired_before_ms)};
	*removed = 0;
	cs_err r = pg_exec(s, "pruning expired sessions' claims",
			   "DELETE FROM session_claims WHERE session_id IN (SELECT id FROM generation_sessions "
			   "WHERE cert_id IS NULL AND expires_ms < $1)",
			   1, p, NULL);
	if (r == CS_OK)
		r = pg_exec(s, "pruning expired sessions",
			    "DELETE FROM generation_sessions WHERE cert_id IS NULL AND expires_ms < $1", 1, p, removed);
	return r;
}

static cs_err pg_probe_write(cs_store *store, int64_t now_ms)
{
	pg_store *s = (pg_store *)store;
	char now[24];
	const char *p[] = {pg_i64(now, now_ms)};
	return pg_exec(s, "probing a write",
		       "INSERT INTO store_probe (id, at_ms) VALUES (1, $1) "
		       "ON CONFLICT (id) DO UPDATE SET at_ms = excluded.at_ms",
		       1, p, NULL);
}

static cs_err pg_cert_exists(cs_store *store, const char *cert_id)
{
	pg_store *s = (pg_store *)store;
	PGresult *res = NULL;
	const char *p[] = {cert_id};
	cs_err r = pg_query(s, "reading a certificate", "SELECT 1 FROM certificates WHERE id = $1", 1, p, &res);
	if (r == CS_OK && PQntuples(res) == 0)
		r = CS_E_NOT_FOUND;
	PQclear(res);
	return r;
}

static cs_err pg_cert_by_other_key(cs_store *store, const char *kid)
{
	pg_store *s = (pg_store *)store;
	PGresult *res = NULL;
	const char *p[] = {kid};
	cs_err r = pg_query(s, "reading the certificates", "SELECT 1 FROM certificates WHERE kid <> $1 LIMIT 1", 1, p,
			    &res);
	if (r == CS_OK && PQntuples(res) == 0)
		r = CS_E_NOT_FOUND;
	PQclear(res);
	return r;
}

/* ---- signing keys -------------------------------------------------------------------- */

#define KEY_COLUMNS                                                                                        \
	"kid, uri, status, created_at, activated_at, retired_at, jwk_json, label, cka_id, created_by, "      \
	"activated_by, activated_ceremony, retired_by, retired_ceremony, compromised_at, compromised_by, "   \
	"compromised_ceremony, destroyed_at, destroyed_by, destroyed_ceremony, x5c_json, profile"
#define KEY_NCOLS 22
/* Columns of a key that may be NULL: all but kid, uri, status, created_at, jwk_json. */
#define KEY_OPTIONAL (((1u << KEY_NCOLS) - 1u) & ~(0xFu | (1u << 6)))

static cs_err pg_key_upsert(cs_store *store, const char *kid, const char *uri, const char *jwk_json,
			    const char *status)
{
	pg_store *s = (pg_store *)store;
	const char *p[] = {kid, uri, jwk_json, status};
	return pg_exec(s, "storing the signing key",
		       "INSERT INTO signing_keys (kid, uri, jwk_json, status) VALUES ($1, $2, $3, $4) "
		       "ON CONFLICT (kid) DO UPDATE SET status = excluded.status, uri = excluded.uri",
		       4, p, NULL);
}

static cs_err pg_key_set_status(cs_store *store, const char *kid, const char *status)
{
	pg_store *s = (pg_store *)store;
	const char *p[] = {status, kid};
	return pg_exec(s, "changing a signing key's status", "UPDATE signing_keys SET status = $1 WHERE kid = $2", 2,
		       p, NULL);
}

static cs_err pg_keys_each(cs_store *store, cs_key_row_fn fn, void *arg)
{
	pg_store *s = (pg_store *)store;
	PGresult *res = NULL;
	cs_err r = pg_query(s, "listing signing keys",
			    "SELECT kid, jwk_json, status, created_at FROM signing_keys ORDER BY created_at, kid", 0,
			    NULL, &res);
	for (int i = 0; r == CS_OK && i < PQntuples(res); i++) {
		const char *f[4] = {NULL};
		for (int c = 0; r == CS_OK && c < 4; c++)
			r = pg_text(res, i, c, 0, &f[c]);
		if (r == CS_OK)
			fn(arg, f[0], f[1], f[2], f[3]);
	}
	PQclear(res);
	return r;
}

static cs_err key_row(PGresult *res, int i, cs_key_info_fn fn, void *arg)
{
	const char *f[KEY_NCOLS] = {NULL};
	cs_err r = CS_OK;
	for (int c = 0; r == CS_OK && c < KEY_NCOLS; c++)
		r = pg_text(res, i, c, (KEY_OPTIONAL >> c) & 1u, &f[c]);
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

static cs_err pg_keys_info(cs_store *store, cs_key_info_fn fn, void *arg)
{
	pg_store *s = (pg_store *)store;
	PGresult *res = NULL;
	cs_err r = pg_query(s, "listing signing keys", "SELECT " KEY_COLUMNS " FROM signing_keys ORDER BY created_at, kid",
			    0, NULL, &res);
	for (int i = 0; r == CS_OK && i < PQntuples(res); i++)
		r = key_row(res, i, fn, arg);
	PQclear(res);
	return r;
}

static cs_err pg_key_info(cs_store *store, const char *kid, cs_key_info_fn fn, void *arg)
{
	pg_store *s = (pg_store *)store;
	PGresult *res = NULL;
	const char *p[] = {kid};
	cs_err r = pg_query(s, "reading a signing key", "SELECT " KEY_COLUMNS " FROM signing_keys WHERE kid = $1", 1,
			    p, &res);
	if (r == CS_OK)
		r = PQntuples(res) == 0 ? CS_E_NOT_FOUND : key_row(res, 0, fn, arg);
	PQclear(res);
	return r;
}

/* The bit of several_active for a profile (NULL: the certificate keys). */
static cs_err pg_key_active_in(cs_store *store, const char *profile, cs_active_key *out)
{
	pg_store *s = (pg_store *)store;
	PGresult *res = NULL;
	const char *p[] = {profile};
	*out = (cs_active_key){0};
	/* through the partial unique index of the one active key per profile */
	cs_err r = pg_query(s, "reading the active signing key",
			    "SELECT kid, uri, x5c_json FROM signing_keys WHERE status = 'active' "
			    "AND coalesce(profile, '') = coalesce($1::text, '')",
			    1, p, &res);
	int n = r == CS_OK ? PQntuples(res) : 0;
	const char *x5c = NULL;
	if (r == CS_OK)
		r = cs_store_note_active(&s->several_active, profile, n);
	if (r == CS_OK && n == 0) {
		r = CS_E_NOT_FOUND;
	} else if (r == CS_OK) {
		if ((r = pg_dup(res, 0, 0, &out->kid)) == CS_OK && (r = pg_dup(res, 0, 1, &out->uri)) == CS_OK &&
		    (r = pg_text(res, 0, 2, 1, &x5c)) == CS_OK && x5c != NULL && (out->x5c_json = strdup(x5c)) == NULL)
			r = CS_E_NOMEM;
	}
	PQclear(res);
	if (r != CS_OK)
		cs_active_key_free(out);
	return r;
}

static cs_err pg_keys_ever_active_in(cs_store *store, const char *profile, int *ever)
{
	pg_store *s = (pg_store *)store;
	PGresult *res = NULL;
	const char *p[] = {profile};
	int64_t v = 0;
	*ever = 0;
	cs_err r = pg_query(s, "reading the signing keys",
			    "SELECT EXISTS (SELECT 1 FROM signing_keys WHERE status IN ('active', 'retired', "
			    "'compromised') AND profile IS NOT DISTINCT FROM $1::text)::int",
			    1, p, &res);
	if (r == CS_OK && (r = pg_int(res, 0, 0, &v)) == CS_OK)
		*ever = v != 0;
	PQclear(res);
	return r;
}

static cs_err pg_key_insert(cs_store *store, const cs_key_info *k)
{
	pg_store *s = (pg_store *)store;
	const char *const p[] = {k->kid,	  k->uri,	   k->jwk_json,	   k->status,
				 k->label,	  k->cka_id,	   k->created_by,  k->activated_at,
				 k->activated_by, k->activated_ceremony, k->profile};
	return insert_once(s, "recording the signing key",
			   "INSERT INTO signing_keys (kid, uri, jwk_json, status, label, cka_id, created_by, "
			   "activated_at, activated_by, activated_ceremony, profile) "
			   "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (kid) DO NOTHING",
			   11, p);
}

static cs_err pg_key_event(cs_store *store, const char *kid, cs_key_event event, const char *at, const char *by,
			   const char *ceremony)
{
	pg_store *s = (pg_store *)store;
	const char *const p[] = {kid, at, by, ceremony};
	const char *what = "recording a signing key's lifecycle event";
	switch (event) {
	case CS_KEY_ACTIVATED:
		return update_one(s, what,
				  "UPDATE signing_keys SET status = 'active', activated_at = $2, activated_by = $3, "
				  "activated_ceremony = $4 WHERE kid = $1",
				  4, p);
	case CS_KEY_RETIRED:
		return update_one(s, what,
				  "UPDATE signing_keys SET status = 'retired', retired_at = $2, retired_by = $3, "
				  "retired_ceremony = $4 WHERE kid = $1",
				  4, p);
	case CS_KEY_COMPROMISED:
		return update_one(s, what,
				  "UPDATE signing_keys SET status = 'compromised', compromised_at = $2, "
				  "compromised_by = $3, compromised_ceremony = $4 WHERE kid = $1",
				  4, p);
	case CS_KEY_DESTROYED:
		return update_one(s, what,
				  "UPDATE signing_keys SET destroyed_at = $2, destroyed_by = $3, destroyed_ceremony = $4 "
				  "WHERE kid = $1",
				  4, p);
	}
	return CS_E_INVALID_ARG;
}

static cs_err pg_key_set_chain(cs_store *store, const char *kid, const char *x5c_json)
{
	pg_store *s = (pg_store *)store;
	const char *const p[] = {x5c_json, kid};
	return update_one(s, "registering a signing key's chain", "UPDATE signing_keys SET x5c_json = $1 WHERE kid = $2",
			  2, p);
}

static cs_err pg_key_compromised(cs_store *store, const char *kid, int *compromised)
{
	pg_store *s = (pg_store *)store;
	PGresult *res = NULL;
	const char *p[] = {kid};
	int64_t v = 0;
	*compromised = 0;
	cs_err r = pg_query(s, "reading a signing key's state",
			    "SELECT (status = 'compromised')::int FROM signing_keys WHERE kid = $1", 1, p, &res);
	if (r == CS_OK && PQntuples(res) > 0 && (r = pg_int(res, 0, 0, &v)) == CS_OK)
		*compromised = v != 0;
	PQclear(res);
	return r;
}

/* ---- node identity ------------------------------------------------------------------- */

static cs_err pg_node_claim(cs_store *store, const char *node_id, const char *instance, const char *host, int64_t pid,
			    int64_t now_ms, int64_t live_ms, char **holder)
{
	pg_store *s = (pg_store *)store;
	PGresult *res = NULL;
	char pid_s[24], now_s[24];
	*holder = NULL;
	const char *get[] = {node_id};
	/* the database's clock, one for every node: a node whose clock runs
	 * ahead must not find a live node's claim stale (now_ms only tells a
	 * release, below live_ms, which is stored as given) */
	int64_t db_now = 0;
	cs_err r = pg_query(s, "reading the node ids",
			    "SELECT n.instance, n.host, n.pid, n.seen_ms, "
			    "(extract(epoch FROM clock_timestamp()) * 1000)::bigint "
			    "FROM (SELECT 1) one LEFT JOIN store_nodes n ON n.node_id = $1",
			    1, get, &res);
	if (r == CS_OK && (PQntuples(res) != 1 || (r = pg_int(res, 0, 4, &db_now)) != CS_OK))
		r = r != CS_OK ? r : CS_E_STORE;
	if (r == CS_OK && now_ms >= live_ms)
		now_ms = db_now;
	if (r == CS_OK && !PQgetisnull(res, 0, 0)) {
		const char *other = NULL, *other_host = NULL;
		int64_t seen = 0, other_pid = 0;
		if ((r = pg_text(res, 0, 0, 0, &other)) == CS_OK && (r = pg_text(res, 0, 1, 0, &other_host)) == CS_OK &&
		    (r = pg_int(res, 0, 2, &other_pid)) == CS_OK && (r = pg_int(res, 0, 3, &seen)) == CS_OK &&
		    strcmp(other, instance) != 0 && now_ms - seen < live_ms) {
			char buf[320];
			snprintf(buf, sizeof(buf), "host %.200s pid %lld, seen %lld ms ago", other_host,
				 (long long)other_pid, (long long)(now_ms - seen));
			*holder = strdup(buf);
			r = CS_E_CONFLICT;
		}
	}
	PQclear(res);
	if (r != CS_OK)
		return r;
	const char *put[] = {node_id, instance, host, pg_i64(pid_s, pid), pg_i64(now_s, now_ms)};
	return pg_exec(s, "claiming the node id",
		       "INSERT INTO store_nodes (node_id, instance, host, pid, started_ms, seen_ms) "
		       "VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (node_id) DO UPDATE SET instance = excluded.instance, "
		       "host = excluded.host, pid = excluded.pid, seen_ms = excluded.seen_ms, "
		       "started_ms = CASE WHEN store_nodes.instance = excluded.instance THEN store_nodes.started_ms "
		       "ELSE excluded.started_ms END",
		       5, put, NULL);
}

/* ---- the ops ----------------------------------------------------------------------------- */

static cs_store_ops ops_table;
static pthread_once_t ops_once = PTHREAD_ONCE_INIT;

static void ops_init(void)
{
	cs_store_ops *o = &ops_table;
	o->name = "postgresql";
	o->close = pg_close;
	o->ping = pg_ping;
	o->clock = pg_clock;
	o->guards_check = pg_guards_check;
	o->write_begin = pg_write_begin;
	o->write_end = pg_write_end;
	o->savepoint = pg_savepoint;
	o->savepoint_end = pg_savepoint_end;
	o->read_begin = pg_read_begin;
	o->read_end = pg_read_end;
	o->changes = pg_changes;
	o->session_insert = pg_session_insert;
	o->session_get = pg_session_get;
	o->session_claim = pg_session_claim;
	o->cert_insert = pg_cert_insert;
	o->cert_get = pg_cert_get;
	o->inventory_each = pg_inventory_each;
	o->sessions_delete_expired = pg_sessions_delete_expired;
	o->probe_write = pg_probe_write;
	o->key_upsert = pg_key_upsert;
	o->key_set_status = pg_key_set_status;
	o->keys_each = pg_keys_each;
	o->keys_info = pg_keys_info;
	o->key_info = pg_key_info;
	o->key_active_in = pg_key_active_in;
	o->keys_ever_active_in = pg_keys_ever_active_in;
	o->key_insert = pg_key_insert;
	o->key_event = pg_key_event;
	o->key_set_chain = pg_key_set_chain;
	o->cert_exists = pg_cert_exists;
	o->cert_by_other_key = pg_cert_by_other_key;
	o->key_compromised = pg_key_compromised;
	o->node_claim = pg_node_claim;
	pg_records_ops(o);
}

static const cs_store_ops *pg_ops(void)
{
	pthread_once(&ops_once, ops_init);
	return &ops_table;
}
