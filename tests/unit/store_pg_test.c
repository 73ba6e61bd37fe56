/*
 * store_pg_test: the PostgreSQL backend's core (store_pg.c) against a
 * throwaway cluster (ts_pg_start: initdb, a Unix socket in a temporary
 * directory, run as an unprivileged account):
 *
 *  - the schema is made once: concurrent first opens both succeed, one
 *    version row; a schema newer than the program is CS_E_STORE_SCHEMA;
 *    a role that cannot migrate a missing schema is CS_E_STORE_SCHEMA
 *    naming the role and `credsign-admin store init`;
 *  - guards: a guard trigger disabled or dropped, or the one-active index
 *    dropped, refuses every open (read-write and read-only), naming it;
 *  - roles: the owner's migration grants the node role its rights: a
 *    login member of it writes through the store, but UPDATE, DELETE and
 *    TRUNCATE of the audit log are refused by the database (privileges,
 *    and TRUNCATE by the trigger for the owner too); audit_purge works;
 *  - conflicts as outcomes: a duplicate session, certificate or key is
 *    CS_E_CONFLICT and the transaction goes on and commits; a raw unique
 *    violation (a second active key) is CS_E_CONFLICT that fails the
 *    commit, unless a savepoint rolled it back;
 *  - the write lock serialises two connections; a writer waiting past its
 *    deadline fails (CS_E_STORE) and writes nothing; a statement past the
 *    deadline is refused before it runs;
 *  - reconnect: after `pg_ctl restart` the first call succeeds on a new
 *    connection ("connection lost" and "reconnected" logged once each); a
 *    write broken midway fails, calls while the database is down are
 *    CS_E_STORE_UNREACHABLE, and the first after it is back succeeds;
 *  - the pool cap: pool_size connections and no more, until one closes;
 *  - node ids: a fresh claim of another instance is CS_E_CONFLICT naming
 *    the holder, a stale one is taken;
 *  - sessions, certificates and keys through the ops, a password read
 *    from password_file, the target's name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cs_log.h"
#include "store.h"
#include "store_pg_internal.h"
#include "test_support.h"

static ts_pg pg;

static int64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* ---- log capture --------------------------------------------------------------- */

static char log_path[64];
static int log_fd = -1;

static void log_capture(void)
{
	snprintf(log_path, sizeof(log_path), "/tmp/store_pg_test_log_XXXXXX");
	log_fd = mkstemp(log_path);
	assert_true(log_fd >= 0);
	cs_log_configure(CS_LOG_DEBUG, CS_LOG_LOGFMT, log_fd);
}

/* The captured log (malloc'd, echoed to stderr); ends the capture. */
static char *log_end(void)
{
	cs_log_configure(CS_LOG_INFO, CS_LOG_LOGFMT, 2);
	FILE *f = fopen(log_path, "r");
	assert_non_null(f);
	char *text = calloc(1, 1 << 20);
	assert_non_null(text);
	size_t n = fread(text, 1, (1 << 20) - 1, f);
	text[n] = '\0';
	fputs(text, stderr);
	fclose(f);
	close(log_fd);
	unlink(log_path);
	return text;
}

static int count_in(const char *log, const char *text)
{
	int n = 0;
	for (const char *p = log; (p = strstr(p, text)) != NULL; p += strlen(text))
		n++;
	return n;
}

/* How many times the captured log holds text; ends the capture. */
static int log_count(const char *text)
{
	char *log = log_end();
	int n = count_in(log, text);
	free(log);
	return n;
}

/* The same, capturing again. */
static int log_count_keep(const char *text)
{
	int n = log_count(text);
	log_capture();
	return n;
}

/* ---- helpers ----------------------------------------------------------------------- */

/* A store on database db (NULL: credsign) as user (NULL: superuser). */
static cs_err open_as(const char *db, const char *user, int readonly, cs_store **out)
{
	char ci[256];
	cs_store_target t;
	ts_pg_target(&pg, user, ci, sizeof(ci), &t);
	if (db != NULL) {
		char *p = strstr(ci, "dbname=credsign");
		assert_non_null(p);
		char rest[128];
		snprintf(rest, sizeof(rest), "%s", p + strlen("dbname=credsign"));
		snprintf(p, sizeof(ci) - (size_t)(p - ci), "dbname=%s%s", db, rest);
	}
	return readonly ? cs_store_connect_existing_readonly(&t, out) : cs_store_connect(&t, out);
}

static cs_store *open_ok(void)
{
	cs_store *s = NULL;
	assert_int_equal(open_as(NULL, NULL, 0, &s), CS_OK);
	return s;
}

static void make_db(const char *db)
{
	char sql[128];
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", db);
	assert_int_equal(ts_pg_sql(&pg, sql), 0);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
	assert_int_equal(ts_pg_sql(&pg, sql), 0);
}

/* Run sql on database db as the superuser. */
static int sql_on(const char *db, const char *user, const char *sql)
{
	char ci[256];
	snprintf(ci, sizeof(ci), "host=%s port=%d dbname=%s user=%s", pg.dir, pg.port, db,
		 user != NULL ? user : "pgsuper");
	PGconn *c = PQconnectdb(ci);
	PGresult *res = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
	ExecStatusType st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
	if (!ok)
		fprintf(stderr, "(expected or not) %s: %s", sql, PQerrorMessage(c));
	PQclear(res);
	PQfinish(c);
	return ok ? 0 : -1;
}

static int64_t value_int(const char *sql)
{
	char buf[64];
	assert_int_equal(ts_pg_value(&pg, sql, buf, sizeof(buf)), 0);
	return strtoll(buf, NULL, 10);
}

static void key(cs_key_info *k, const char *kid, const char *status)
{
	memset(k, 0, sizeof(*k));
	k->kid = kid;
	k->uri = "pkcs11:object=k";
	k->jwk_json = "{}";
	k->status = status;
}

/* ---- fixture ----------------------------------------------------------------------- */

static int group_setup(void **state)
{
	(void)state;
	if (ts_pg_start(&pg) != 0)
		return -1;
	/* the owner of the schema, the nodes' group role and one node's login */
	return ts_pg_sql(&pg, "CREATE ROLE cs_owner LOGIN; GRANT CREATE ON DATABASE credsign TO cs_owner;"
			      "CREATE ROLE credsign_node NOLOGIN; CREATE ROLE node1 LOGIN IN ROLE credsign_node;"
			      "CREATE ROLE pw_user LOGIN PASSWORD 'correct horse';"
			      "GRANT CREATE ON DATABASE credsign TO pw_user;");
}

static int group_teardown(void **state)
{
	(void)state;
	ts_pg_stop(&pg);
	return 0;
}

/* ---- the schema, once ---------------------------------------------------------------- */

static void *open_thread(void *arg)
{
	const char *db = arg;
	cs_store *s = NULL;
	cs_err r = open_as(db, NULL, 0, &s);
	cs_store_close(s);
	return (void *)(intptr_t)r;
}

static void test_migrate_once_concurrently(void **state)
{
	(void)state;
	make_db("once");
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, open_thread, "once"), 0);
	for (int i = 0; i < 4; i++) {
		void *r = NULL;
		pthread_join(t[i], &r);
		assert_int_equal((intptr_t)r, CS_OK);
	}
	char ci[256], buf[32];
	snprintf(ci, sizeof(ci), "host=%s port=%d dbname=once user=pgsuper", pg.dir, pg.port);
	PGconn *c = PQconnectdb(ci);
	PGresult *res = PQexec(c, "SELECT count(*), max(version) FROM credsign.schema_version");
	assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
	snprintf(buf, sizeof(buf), "%s/%s", PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
	assert_string_equal(buf, "1/9");
	PQclear(res);
	PQfinish(c);
}

static void test_newer_schema_refused(void **state)
{
	(void)state;
	make_db("newer");
	cs_store *s = NULL;
	assert_int_equal(open_as("newer", NULL, 0, &s), CS_OK);
	cs_store_close(s);
	assert_int_equal(sql_on("newer", NULL, "UPDATE credsign.schema_version SET version = 10"), 0);
	log_capture();
	assert_int_equal(open_as("newer", NULL, 0, &s), CS_E_STORE_SCHEMA);
	assert_null(s);
	assert_int_equal(open_as("newer", NULL, 1, &s), CS_E_STORE_SCHEMA);
	assert_int_equal(log_count("has schema version 10, newer than this program's 9"), 2);
}

static void test_node_role_cannot_migrate(void **state)
{
	(void)state;
	make_db("nomig");
	cs_store *s = NULL;
	log_capture();
	assert_int_equal(open_as("nomig", "node1", 0, &s), CS_E_STORE_SCHEMA);
	assert_null(s);
	assert_int_equal(log_count("role node1 cannot migrate it: run `credsign-admin store init"), 1);
	/* read-only: nothing is created */
	assert_int_equal(open_as("nomig", "node1", 1, &s), CS_E_STORE);
}

/* ---- guards ------------------------------------------------------------------------- */

static void test_guards(void **state)
{
	(void)state;
	make_db("guards");
	cs_store *s = NULL;
	assert_int_equal(open_as("guards", NULL, 0, &s), CS_OK);
	cs_store_close(s);

	assert_int_equal(sql_on("guards", NULL, "ALTER TABLE credsign.signatures DISABLE TRIGGER signatures_no_update"),
			 0);
	log_capture();
	assert_int_equal(open_as("guards", NULL, 0, &s), CS_E_STORE);
	assert_int_equal(open_as("guards", NULL, 1, &s), CS_E_STORE);
	assert_int_equal(log_count("tampered or damaged: trigger signatures_no_update disabled"), 2);
	assert_int_equal(sql_on("guards", NULL, "ALTER TABLE credsign.signatures ENABLE TRIGGER signatures_no_update"), 0);
	assert_int_equal(open_as("guards", NULL, 0, &s), CS_OK);
	cs_store_close(s);

	assert_int_equal(sql_on("guards", NULL, "DROP TRIGGER ceremonies_once ON credsign.ceremonies"), 0);
	log_capture();
	assert_int_equal(open_as("guards", NULL, 0, &s), CS_E_STORE);
	assert_int_equal(log_count("tampered or damaged: trigger ceremonies_once missing"), 1);

	make_db("guards2");
	assert_int_equal(open_as("guards2", NULL, 0, &s), CS_OK);
	cs_store_close(s);
	assert_int_equal(sql_on("guards2", NULL, "DROP INDEX credsign.signing_keys_one_active"), 0);
	log_capture();
	assert_int_equal(open_as("guards2", NULL, 1, &s), CS_E_STORE);
	assert_int_equal(log_count("tampered or damaged: index signing_keys_one_active missing"), 1);
}

/* ---- roles ----------------------------------------------------------------------------- */

static void test_roles(void **state)
{
	(void)state;
	make_db("roles");
	assert_int_equal(sql_on("roles", NULL, "GRANT CREATE ON DATABASE roles TO cs_owner"), 0);
	cs_store *owner = NULL, *node = NULL;
	assert_int_equal(open_as("roles", "cs_owner", 0, &owner), CS_OK);
	assert_int_equal(open_as("roles", "node1", 0, &node), CS_OK);

	/* the node writes through the store */
	cs_gen_session g = {.id = "s1", .created_ms = 1, .expires_ms = 2, .cert_sha256 = "ab", .claims_json = "{}"};
	assert_int_equal(cs_store_write_begin(node, 0), CS_OK);
	assert_int_equal(cs_store_session_insert(node, &g), CS_OK);
	assert_int_equal(cs_store_probe_write(node, 5), CS_OK);
	assert_int_equal(cs_store_write_end(node, CS_OK), CS_OK);

	/* the audit log: insert yes, update, delete, truncate no */
	const char *ins = "INSERT INTO credsign.audit_log (seq, ts, node, actor, role, action, outcome, prev_hash, "
			  "entry_hash) VALUES (1, 't', 'n', 'a', 'r', 'x', 'success', '\\x00', '\\x01'), "
			  "(2, 't', 'n', 'a', 'r', 'x', 'success', '\\x01', '\\x02')";
	assert_int_equal(sql_on("roles", "node1", ins), 0);
	assert_int_equal(sql_on("roles", "node1", "UPDATE credsign.audit_log SET actor = 'b'"), -1);
	assert_int_equal(sql_on("roles", "node1", "DELETE FROM credsign.audit_log"), -1);
	assert_int_equal(sql_on("roles", "node1", "TRUNCATE credsign.audit_log"), -1);
	assert_int_equal(sql_on("roles", "node1", "UPDATE credsign.certificates SET kid = 'x'"), -1);
	/* the owner is held by the triggers */
	assert_int_equal(sql_on("roles", "cs_owner", "UPDATE credsign.audit_log SET actor = 'b'"), -1);
	assert_int_equal(sql_on("roles", "cs_owner", "DELETE FROM credsign.audit_log"), -1);
	assert_int_equal(sql_on("roles", "cs_owner", "TRUNCATE credsign.audit_log"), -1);
	/* the purge through the owner's function: only what a purge checkpoint covers */
	assert_int_equal(sql_on("roles", "node1", "SELECT credsign.audit_purge(1)"), -1);
	assert_int_equal(sql_on("roles", "node1",
				"INSERT INTO credsign.audit_checkpoints (first_seq, last_seq, head_hash, ts, node, kind, "
				"jws) VALUES (1, 1, '\\x01', 't', 'n', 'purge', 'j')"),
			 0);
	assert_int_equal(sql_on("roles", "node1", "SELECT credsign.audit_purge(1)"), 0);
	char ci[256], buf[16];
	snprintf(ci, sizeof(ci), "host=%s port=%d dbname=roles user=pgsuper", pg.dir, pg.port);
	PGconn *c = PQconnectdb(ci);
	PGresult *res = PQexec(c, "SELECT min(seq) FROM credsign.audit_log");
	snprintf(buf, sizeof(buf), "%s", PQgetvalue(res, 0, 0));
	assert_string_equal(buf, "2");
	PQclear(res);
	PQfinish(c);
	cs_store_close(node);
	cs_store_close(owner);

	/* a node role made after the schema: the owner's next open grants it */
	assert_int_equal(ts_pg_sql(&pg, "CREATE ROLE late_nodes NOLOGIN; CREATE ROLE late1 LOGIN IN ROLE late_nodes"),
			 0);
	assert_int_equal(sql_on("roles", "late1", "SELECT count(*) FROM credsign.store_probe"), -1);
	cs_store_target t;
	ts_pg_target(&pg, "cs_owner", ci, sizeof(ci), &t);
	char *db = strstr(ci, "dbname=credsign");
	memcpy(db, "dbname=roles   ", strlen("dbname=credsign"));
	t.node_role = "late_nodes";
	log_capture();
	assert_int_equal(cs_store_connect(&t, &owner), CS_OK);
	cs_store_close(owner);
	assert_int_equal(log_count("role late_nodes granted its rights"), 1);
	assert_int_equal(sql_on("roles", "late1", "SELECT count(*) FROM credsign.store_probe"), 0);
	assert_int_equal(sql_on("roles", "late1", "DELETE FROM credsign.audit_log"), -1);
}

/* ---- conflicts ------------------------------------------------------------------------ */

static void test_conflicts(void **state)
{
	(void)state;
	cs_store *s = open_ok();
	cs_gen_session g = {.id = "c-s1", .created_ms = 1, .expires_ms = 2000, .cert_sha256 = "ab",
			    .claims_json = "{\"a\":1}"};
	cs_key_info k;
	key(&k, "c-k1", "retired");
	cs_cert_parts parts = {.header_b64 = "h", .claims_json = "{\"c\":2}", .signature_b64 = "sig"};
	int64_t changes = cs_store_changes(s);

	assert_int_equal(cs_store_write_begin(s, 0), CS_OK);
	assert_int_equal(cs_store_session_insert(s, &g), CS_OK);
	assert_int_equal(cs_store_session_insert(s, &g), CS_E_CONFLICT);
	assert_int_equal(cs_store_key_insert(s, &k), CS_OK);
	assert_int_equal(cs_store_key_insert(s, &k), CS_E_CONFLICT);
	assert_int_equal(cs_store_cert_insert(s, "c-c1", "c-s1", "c-k1", &parts, 3), CS_OK);
	assert_int_equal(cs_store_cert_insert(s, "c-c1", "c-s1", "c-k1", &parts, 3), CS_E_CONFLICT);
	int claimed = 0;
	assert_int_equal(cs_store_session_claim(s, "c-s1", "c-c1", &claimed), CS_OK);
	assert_int_equal(claimed, 1);
	assert_int_equal(cs_store_session_claim(s, "c-s1", "c-c1", &claimed), CS_OK);
	assert_int_equal(claimed, 0);
	assert_int_equal(cs_store_write_end(s, CS_OK), CS_OK);
	assert_true(cs_store_changes(s) >= changes + 5);

	cs_session_row row;
	assert_int_equal(cs_store_session_get(s, "c-s1", &row), CS_OK);
	assert_int_equal(row.certified, 1);
	assert_string_equal(row.claims_json, "");
	assert_string_equal(row.cert_sha256, "ab");
	assert_int_equal(row.expires_ms, 2000);
	cs_session_row_free(&row);
	cs_cert_row cr;
	assert_int_equal(cs_store_cert_get(s, "c-c1", &cr), CS_OK);
	assert_string_equal(cr.claims_json, "{\"c\":2}");
	cs_cert_row_free(&cr);
	assert_int_equal(cs_store_cert_get(s, "nope", &cr), CS_E_NOT_FOUND);
	assert_int_equal(cs_store_cert_exists(s, "c-c1"), CS_OK);
	assert_int_equal(cs_store_cert_by_other_key(s, "c-k1"), CS_E_NOT_FOUND);
	assert_int_equal(cs_store_cert_by_other_key(s, "other"), CS_OK);

	/* a raw unique violation: two active keys; the commit fails, nothing kept */
	cs_key_info a, b;
	key(&a, "c-a", "active");
	key(&b, "c-b", "active");
	assert_int_equal(cs_store_write_begin(s, 0), CS_OK);
	assert_int_equal(cs_store_key_insert(s, &a), CS_OK);
	assert_int_equal(cs_store_key_insert(s, &b), CS_E_CONFLICT);
	assert_int_equal(cs_store_write_end(s, CS_OK), CS_E_STORE);
	assert_int_equal(cs_store_key_info(s, "c-a", NULL, NULL), CS_E_NOT_FOUND);

	/* in a savepoint: rolled back alone, the rest commits */
	assert_int_equal(cs_store_write_begin(s, 0), CS_OK);
	assert_int_equal(cs_store_key_insert(s, &a), CS_OK);
	assert_int_equal(cs_store_savepoint(s), CS_OK);
	cs_err r = cs_store_key_insert(s, &b);
	assert_int_equal(r, CS_E_CONFLICT);
	assert_int_equal(cs_store_savepoint_end(s, r), CS_OK);
	assert_int_equal(cs_store_write_end(s, CS_OK), CS_OK);
	cs_active_key ak;
	assert_int_equal(cs_store_key_active(s, &ak), CS_OK);
	assert_string_equal(ak.kid, "c-a");
	cs_active_key_free(&ak);

	/* the schema refuses a retired key made active again (CS_E_STORE) */
	assert_int_equal(cs_store_write_begin(s, 0), CS_OK);
	assert_int_equal(cs_store_key_event(s, "c-k1", CS_KEY_ACTIVATED, "t", NULL, NULL), CS_E_STORE);
	assert_int_equal(cs_store_write_end(s, CS_E_STORE), CS_E_STORE);
	cs_store_close(s);
}

/* ---- keys ---------------------------------------------------------------------------- */

struct keys_seen {
	int n;
	char last[64];
	char profile[64];
};

static void on_key(void *arg, const cs_key_info *k)
{
	struct keys_seen *seen = arg;
	seen->n++;
	snprintf(seen->last, sizeof(seen->last), "%s:%s:%s", k->kid, k->status,
		 k->activated_by != NULL ? k->activated_by : "-");
	snprintf(seen->profile, sizeof(seen->profile), "%s", k->profile != NULL ? k->profile : "(null)");
}

static void test_keys(void **state)
{
	(void)state;
	make_db("keys");
	cs_store *s = NULL;
	assert_int_equal(open_as("keys", NULL, 0, &s), CS_OK);
	cs_key_info p1;
	key(&p1, "p-1", "pending");
	p1.profile = "docs";
	cs_active_key ak;
	int ever = 1;
	assert_int_equal(cs_store_keys_ever_active_in(s, "docs", &ever), CS_OK);
	assert_int_equal(ever, 0);
	assert_int_equal(cs_store_write_begin(s, 0), CS_OK);
	assert_int_equal(cs_store_key_insert(s, &p1), CS_OK);
	assert_int_equal(cs_store_key_event(s, "p-1", CS_KEY_ACTIVATED, "2026", "officer", "cer-1"), CS_OK);
	assert_int_equal(cs_store_key_event(s, "none", CS_KEY_RETIRED, "2026", NULL, NULL), CS_E_NOT_FOUND);
	assert_int_equal(cs_store_key_set_chain(s, "p-1", "[\"x\"]"), CS_OK);
	assert_int_equal(cs_store_key_upsert(s, "c-1", "pkcs11:c", "{}", "active"), CS_OK);
	assert_int_equal(cs_store_write_end(s, CS_OK), CS_OK);
	assert_int_equal(cs_store_key_active_in(s, "docs", &ak), CS_OK);
	assert_string_equal(ak.kid, "p-1");
	assert_string_equal(ak.x5c_json, "[\"x\"]");
	cs_active_key_free(&ak);
	assert_int_equal(cs_store_key_active(s, &ak), CS_OK);
	assert_string_equal(ak.kid, "c-1");
	assert_null(ak.x5c_json);
	cs_active_key_free(&ak);
	assert_int_equal(cs_store_key_active_in(s, "other", &ak), CS_E_NOT_FOUND);
	assert_int_equal(cs_store_keys_ever_active_in(s, "docs", &ever), CS_OK);
	assert_int_equal(ever, 1);
	assert_int_equal(cs_store_keys_ever_active(s, &ever), CS_OK);
	assert_int_equal(ever, 1);
	struct keys_seen seen = {0};
	assert_int_equal(cs_store_key_info(s, "p-1", on_key, &seen), CS_OK);
	assert_string_equal(seen.last, "p-1:active:officer");
	assert_string_equal(seen.profile, "docs");
	seen.n = 0;
	assert_int_equal(cs_store_keys_info(s, on_key, &seen), CS_OK);
	assert_int_equal(seen.n, 2);
	/* several active (the index dropped): a conflict, logged once */
	assert_int_equal(sql_on("keys", NULL,
				"DROP INDEX credsign.signing_keys_one_active; INSERT INTO credsign.signing_keys (kid, uri, "
				"jwk_json, status) VALUES ('c-2', 'u', '{}', 'active')"),
			 0);
	log_capture();
	assert_int_equal(cs_store_key_active(s, &ak), CS_E_CONFLICT);
	assert_int_equal(cs_store_key_active(s, &ak), CS_E_CONFLICT);
	assert_null(ak.kid);
	assert_int_equal(log_count("2 keys are active"), 1);
	int comp = 1;
	assert_int_equal(cs_store_key_compromised(s, "c-1", &comp), CS_OK);
	assert_int_equal(comp, 0);
	cs_store_close(s);
}

/* ---- the write lock and the deadline ------------------------------------------------- */

struct waiter {
	int64_t deadline_ms; /* relative; 0: none */
	cs_err begin, end;
	int64_t waited_ms;
};

static void *wait_write(void *arg)
{
	struct waiter *w = arg;
	cs_store *s = open_ok();
	int64_t t0 = now_ms();
	w->begin = cs_store_write_begin(s, w->deadline_ms ? t0 + w->deadline_ms : 0);
	w->waited_ms = now_ms() - t0;
	if (w->begin == CS_OK)
		w->begin = cs_store_probe_write(s, 42);
	w->end = cs_store_write_end(s, w->begin);
	cs_store_close(s);
	return NULL;
}

static void test_write_lock(void **state)
{
	(void)state;
	cs_store *a = open_ok();
	assert_int_equal(cs_store_write_begin(a, 0), CS_OK);
	/* a writer with a deadline gives up, writing nothing */
	struct waiter w1 = {.deadline_ms = 300};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, wait_write, &w1), 0);
	pthread_join(t, NULL);
	assert_int_equal(w1.begin, CS_E_STORE);
	assert_int_equal(w1.end, CS_E_STORE);
	assert_true(w1.waited_ms >= 250 && w1.waited_ms < 3000);
	/* one without waits until the first commits */
	struct waiter w2 = {0};
	assert_int_equal(pthread_create(&t, NULL, wait_write, &w2), 0);
	usleep(400 * 1000);
	assert_int_equal(cs_store_probe_write(a, 7), CS_OK);
	assert_int_equal(cs_store_write_end(a, CS_OK), CS_OK);
	pthread_join(t, NULL);
	assert_int_equal(w2.begin, CS_OK);
	assert_int_equal(w2.end, CS_OK);
	assert_true(w2.waited_ms >= 350);
	assert_int_equal(value_int("SELECT at_ms FROM credsign.store_probe"), 42);

	/* a statement past the deadline is refused before it runs; nothing kept */
	pg_store *p = (pg_store *)a;
	log_capture();
	assert_int_equal(cs_store_write_begin(a, now_ms() + 200), CS_OK);
	assert_int_equal(cs_store_probe_write(a, 8), CS_OK);
	usleep(300 * 1000);
	assert_int_equal(cs_store_probe_write(a, 9), CS_E_STORE);
	assert_int_equal(cs_store_write_end(a, CS_OK), CS_E_STORE);
	assert_int_equal(log_count_keep("store: the write deadline passed"), 1);
	assert_int_equal(value_int("SELECT at_ms FROM credsign.store_probe"), 42);
	/* a statement that runs past it is cancelled by the server */
	assert_int_equal(cs_store_write_begin(a, now_ms() + 300), CS_OK);
	assert_int_equal(pg_exec(p, "sleeping", "SELECT pg_sleep(2)", 0, NULL, NULL), CS_E_STORE);
	assert_int_equal(cs_store_write_end(a, CS_OK), CS_E_STORE);
	assert_int_equal(log_count("the write deadline passed: sleeping"), 1);
	/* the deadline is disarmed: a later write without one is not cut short */
	assert_int_equal(cs_store_write_begin(a, 0), CS_OK);
	assert_int_equal(pg_exec(p, "sleeping", "SELECT pg_sleep(0.5)", 0, NULL, NULL), CS_OK);
	assert_int_equal(cs_store_write_end(a, CS_OK), CS_OK);
	/* a deadline already passed: nothing begins */
	assert_int_equal(cs_store_write_begin(a, now_ms() - 1), CS_E_STORE);
	assert_int_equal(cs_store_write_end(a, CS_E_STORE), CS_E_STORE);
	cs_store_close(a);
}

/* ---- reconnect --------------------------------------------------------------------------- */

static void test_reconnect(void **state)
{
	(void)state;
	cs_store *s = open_ok();
	assert_int_equal(cs_store_ping(s), CS_OK);
	log_capture();
	assert_int_equal(ts_pg_ctl(&pg, "restart"), 0);
	/* the connection the restart broke is found broken at the next call,
	 * which runs again on a new one: no call fails after the outage */
	assert_int_equal(cs_store_ping(s), CS_OK);
	assert_int_equal(cs_store_ping(s), CS_OK);
	assert_int_equal(cs_store_write_begin(s, 0), CS_OK);
	assert_int_equal(cs_store_probe_write(s, 11), CS_OK);
	assert_int_equal(cs_store_write_end(s, CS_OK), CS_OK);
	char *log = log_end();
	assert_int_equal(count_in(log, "connection lost"), 1);
	assert_int_equal(count_in(log, "store postgresql://pgsuper@"), 2);
	assert_int_equal(count_in(log, "reconnected"), 1);
	free(log);
	log_capture();

	/* a write broken midway is lost, and the outage logged once */
	assert_int_equal(cs_store_write_begin(s, 0), CS_OK);
	assert_int_equal(cs_store_probe_write(s, 12), CS_OK);
	assert_int_equal(ts_pg_ctl(&pg, "stop"), 0);
	assert_int_equal(cs_store_probe_write(s, 13), CS_E_STORE);
	assert_int_equal(cs_store_write_end(s, CS_OK), CS_E_STORE);
	/* while the database is down: unreachable (it may come back) */
	assert_int_equal(cs_store_ping(s), CS_E_STORE_UNREACHABLE);
	assert_int_equal(cs_store_read_begin(s), CS_E_STORE_UNREACHABLE);
	assert_int_equal(ts_pg_ctl(&pg, "start"), 0);
	assert_int_equal(cs_store_ping(s), CS_OK);
	assert_int_equal(cs_store_ping(s), CS_OK);
	log = log_end();
	assert_int_equal(count_in(log, "connection lost"), 1);
	assert_int_equal(count_in(log, "cannot connect"), 0);
	assert_int_equal(count_in(log, "reconnected"), 1);
	free(log);
	assert_int_equal(value_int("SELECT at_ms FROM credsign.store_probe"), 11);
	log_capture();
	assert_int_equal(cs_store_ping(s), CS_OK);
	assert_int_equal(log_count("reconnected"), 0);
	cs_store_close(s);
}

/* ---- the pool cap ------------------------------------------------------------------------ */

static void test_pool_cap(void **state)
{
	(void)state;
	char ci[256];
	cs_store_target t;
	ts_pg_target(&pg, NULL, ci, sizeof(ci), &t);
	t.pool_size = 2;
	cs_store *a = NULL, *b = NULL, *c = NULL;
	assert_int_equal(cs_store_connect(&t, &a), CS_OK);
	assert_int_equal(cs_store_connect(&t, &b), CS_OK);
	log_capture();
	assert_int_equal(cs_store_connect(&t, &c), CS_E_STORE);
	assert_null(c);
	assert_int_equal(log_count("store.postgresql.pool_size 2 reached"), 1);
	cs_store_close(a);
	assert_int_equal(cs_store_connect(&t, &c), CS_OK);
	cs_store_close(b);
	cs_store_close(c);
}

/* ---- node ids ---------------------------------------------------------------------------- */

static void test_node_claim(void **state)
{
	(void)state;
	cs_store *s = open_ok();
	char *holder = NULL;
	struct timespec wall;
	clock_gettime(CLOCK_REALTIME, &wall);
	int64_t now = (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000;
	assert_int_equal(cs_store_write_begin(s, 0), CS_OK);
	assert_int_equal(cs_store_node_claim(s, "node-a", "inst1", "h1", 100, now, 30000, &holder), CS_OK);
	assert_null(holder);
	assert_int_equal(cs_store_node_claim(s, "node-a", "inst1", "h1", 100, now + 5, 30000, &holder), CS_OK);
	/* a node whose clock runs 40 s ahead: the database's clock judges, and
	 * the live claim stays its holder's */
	assert_int_equal(cs_store_node_claim(s, "node-a", "inst2", "h2", 200, now + 40000, 30000, &holder),
			 CS_E_CONFLICT);
	assert_non_null(holder);
	assert_non_null(strstr(holder, "host h1 pid 100, seen "));
	free(holder);
	holder = NULL;
	/* a release (a time below live_ms, stored as given) leaves it stale */
	assert_int_equal(cs_store_node_claim(s, "node-a", "inst1", "h1", 100, 1, 30000, &holder), CS_OK);
	assert_int_equal(cs_store_node_claim(s, "node-a", "inst2", "h2", 200, now + 40000, 30000, &holder), CS_OK);
	assert_int_equal(cs_store_write_end(s, CS_OK), CS_OK);
	assert_int_equal(value_int("SELECT pid FROM credsign.store_nodes WHERE node_id = 'node-a'"), 200);
	/* the database's time, not the caller's 40 s ahead */
	int64_t seen = value_int("SELECT seen_ms FROM credsign.store_nodes WHERE node_id = 'node-a'");
	assert_true(seen > now - 20000 && seen < now + 20000);
	cs_store_close(s);
}

/* ---- sessions pruned, read snapshots, read-only ------------------------------------------- */

static void test_sessions_and_readonly(void **state)
{
	(void)state;
	cs_store *s = open_ok();
	cs_gen_session g1 = {.id = "p-s1", .created_ms = 1, .expires_ms = 100, .cert_sha256 = "x", .claims_json = "{}"};
	cs_gen_session g2 = {.id = "p-s2", .created_ms = 1, .expires_ms = 900, .cert_sha256 = "x", .claims_json = "{}"};
	assert_int_equal(cs_store_write_begin(s, 0), CS_OK);
	assert_int_equal(cs_store_session_insert(s, &g1), CS_OK);
	assert_int_equal(cs_store_session_insert(s, &g2), CS_OK);
	assert_int_equal(cs_store_write_end(s, CS_OK), CS_OK);
	int64_t removed = 0;
	assert_int_equal(cs_store_write_begin(s, 0), CS_OK);
	assert_int_equal(cs_store_sessions_delete_expired(s, 500, &removed), CS_OK);
	assert_int_equal(cs_store_write_end(s, CS_OK), CS_OK);
	assert_int_equal(removed, 1);
	cs_session_row row;
	assert_int_equal(cs_store_session_get(s, "p-s1", &row), CS_E_NOT_FOUND);
	assert_int_equal(cs_store_session_get(s, "p-s2", &row), CS_OK);
	assert_string_equal(row.claims_json, "{}");
	assert_int_equal(row.certified, 0);
	cs_session_row_free(&row);

	/* a read snapshot does not see a commit made after it began */
	cs_store *other = open_ok();
	assert_int_equal(cs_store_read_begin(s), CS_OK);
	assert_int_equal(cs_store_session_get(s, "p-s3", &row), CS_E_NOT_FOUND);
	cs_gen_session g3 = {.id = "p-s3", .created_ms = 1, .expires_ms = 900, .cert_sha256 = "x", .claims_json = "{}"};
	assert_int_equal(cs_store_write_begin(other, 0), CS_OK);
	assert_int_equal(cs_store_session_insert(other, &g3), CS_OK);
	assert_int_equal(cs_store_write_end(other, CS_OK), CS_OK);
	assert_int_equal(cs_store_session_get(s, "p-s3", &row), CS_E_NOT_FOUND);
	cs_store_read_end(s);
	assert_int_equal(cs_store_session_get(s, "p-s3", &row), CS_OK);
	cs_session_row_free(&row);
	cs_store_close(other);
	cs_store_close(s);

	cs_store *ro = NULL;
	assert_int_equal(open_as(NULL, NULL, 1, &ro), CS_OK);
	assert_int_equal(cs_store_session_get(ro, "p-s2", &row), CS_OK);
	cs_session_row_free(&row);
	assert_int_equal(cs_store_write_begin(ro, 0), CS_E_STORE);
	assert_int_equal(cs_store_write_end(ro, CS_E_STORE), CS_E_STORE);
	cs_store_close(ro);
}

/* ---- the password file, the target's name --------------------------------------------------- */

static void test_password_and_name(void **state)
{
	(void)state;
	char dir[] = "/tmp/store_pg_pw_XXXXXX", good[64], bad[64], ci[256];
	assert_non_null(mkdtemp(dir));
	snprintf(good, sizeof(good), "%s/good", dir);
	snprintf(bad, sizeof(bad), "%s/bad", dir);
	ts_write_file(good, "correct horse\n", 0600);
	ts_write_file(bad, "wrong\n", 0600);
	make_db("pw");
	assert_int_equal(sql_on("pw", NULL, "GRANT CREATE ON DATABASE pw TO pw_user"), 0);
	cs_store_target t;
	ts_pg_target(&pg, "pw_user", ci, sizeof(ci), &t);
	char *p = strstr(ci, "dbname=credsign");
	memcpy(p, "dbname=pw      ", strlen("dbname=credsign"));
	cs_store *s = NULL;
	t.password_file = bad;
	log_capture();
	assert_int_equal(cs_store_connect(&t, &s), CS_E_STORE); /* refused: not worth trying again */
	assert_string_equal(cs_store_failure_setting(), "store.postgresql.password_file");
	/* nothing listens: unreachable (it may come up), naming the connection */
	cs_store_target down = {.backend = CS_STORE_POSTGRESQL, .conninfo = "host=127.0.0.1 port=1 dbname=x",
				.sslmode = "disable", .connect_timeout_s = 2};
	assert_int_equal(cs_store_connect(&down, &s), CS_E_STORE_UNREACHABLE);
	assert_null(s);
	assert_string_equal(cs_store_failure_setting(), "store.postgresql.connection");
	char *log = log_end();
	assert_int_equal(count_in(log, "correct horse"), 0);
	assert_int_equal(count_in(log, "check store.postgresql.password_file"), 1);
	assert_int_equal(count_in(log, "the database may be down or starting"), 1);
	free(log);
	t.password_file = good;
	assert_int_equal(cs_store_connect(&t, &s), CS_OK);
	assert_int_equal(cs_store_ping(s), CS_OK);
	cs_store_close(s);
	unlink(good);
	unlink(bad);
	rmdir(dir);

	char name[256];
	cs_store_target n = {.backend = CS_STORE_POSTGRESQL, .conninfo = "postgresql://alice:secret@db.example:6543/cs"};
	assert_string_equal(cs_store_target_name(&n, name, sizeof(name)), "postgresql://alice@db.example:6543/cs");
	n.conninfo = "host=h1 user=bob dbname=d password=x port=1";
	assert_string_equal(cs_store_target_name(&n, name, sizeof(name)), "postgresql://bob@h1:1/d");
	cs_store_target q = {.backend = CS_STORE_SQLITE, .path = "/var/lib/credsign/store.db"};
	assert_string_equal(cs_store_target_name(&q, name, sizeof(name)), "/var/lib/credsign/store.db");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_migrate_once_concurrently),
		cmocka_unit_test(test_newer_schema_refused),
		cmocka_unit_test(test_node_role_cannot_migrate),
		cmocka_unit_test(test_guards),
		cmocka_unit_test(test_roles),
		cmocka_unit_test(test_conflicts),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_write_lock),
		cmocka_unit_test(test_node_claim),
		cmocka_unit_test(test_sessions_and_readonly),
		cmocka_unit_test(test_pool_cap),
		cmocka_unit_test(test_password_and_name),
		cmocka_unit_test(test_reconnect),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
