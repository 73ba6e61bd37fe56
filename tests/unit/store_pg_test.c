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
 *  - the guards as made: a function's body replaced, a trigger disabled
 *    (or made a replica's), moved, dropped or given a WHEN, audit_purge
 *    made SECURITY INVOKER, dropped or given to another owner, a trigger
 *    function's search_path changed, the one-active index redefined, a rule
 *    added: each refuses every open and is noticed by
 *    cs_store_guards_check (the daemon's periodic check) on a store opened
 *    before it; put back, the check passes again;
 *  - roles: the owner's migration grants the node role its rights: a
 *    login member of it writes through the store, but UPDATE, DELETE and
 *    TRUNCATE of the audit log are refused by the database (privileges,
 *    and TRUNCATE by the trigger for the owner too); the purge is the
 *    owner's: the node role may neither execute audit_purge nor insert a
 *    purge checkpoint (SQL or the store's calls), the owner and its
 *    members may, and audit_purge then deletes what the checkpoint covers;
 *    a version 9 schema (the node role granted EXECUTE) is migrated to 10 (and 11)
 *    by the owner's open, which revokes it from every role;
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
 *  - a connection killed (pg_terminate_backend) while idle: the next call
 *    runs again on a new one; inside a write: its later statements and
 *    the commit fail, nothing stored, the outage logged once, the next
 *    write succeeds; inside a read: the snapshot's reads fail; the row
 *    callbacks and the purge cutoff are required (CS_E_INVALID_ARG);
 *  - the pool cap: pool_size connections and no more, until one closes;
 *  - node ids: a fresh claim of another instance is CS_E_CONFLICT naming
 *    the holder, a stale one is taken;
 *  - sessions, certificates and keys through the ops, a password read
 *    from password_file (one missing, empty or too long refused, never
 *    logged), the target's name;
 *  - failures (issue 18): a key's status set directly, retired never
 *    active again (the trigger); certify failing part-way (the
 *    certificate refused after the claim) stores nothing, the session
 *    unclaimed with its claims; a session claimed already changes no row;
 *    a statement after a failed one and a write begun inside a
 *    transaction are refused; an audit head edited to a hash that is not
 *    32 bytes is CS_E_STORE.
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
	assert_string_equal(buf, "1/11");
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
	assert_int_equal(sql_on("newer", NULL, "UPDATE credsign.schema_version SET version = 12"), 0);
	log_capture();
	assert_int_equal(open_as("newer", NULL, 0, &s), CS_E_STORE_SCHEMA);
	assert_null(s);
	assert_int_equal(open_as("newer", NULL, 1, &s), CS_E_STORE_SCHEMA);
	assert_int_equal(log_count("has schema version 12, newer than this program's 11"), 2);
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


/* Each guard is checked for what it is, not only its name: every trigger
 * of the schema (the audit log's, the TRUNCATE ones, the purge
 * checkpoint's) on its table, enabled and defined as made, every function
 * with its body, SECURITY DEFINER or not, settings and owner, the
 * one-active index's definition, and no rule. Each change refuses every
 * open (logged naming it) and is noticed by cs_store_guards_check on a
 * store opened before it (the daemon's periodic check: unlogged). */
static const struct {
	const char *db, *sql, *why;
} tampering[] = {
	{"g_body",
	 "CREATE OR REPLACE FUNCTION credsign.audit_log_no_update_fn() RETURNS trigger LANGUAGE plpgsql "
	 "SET search_path = credsign, pg_temp AS $f$ BEGIN RETURN NEW; END $f$",
	 "function audit_log_no_update_fn altered (its body is not as credsign made it)"},
	{"g_disabled", "ALTER TABLE credsign.audit_log DISABLE TRIGGER audit_log_no_delete",
	 "trigger audit_log_no_delete disabled"},
	{"g_replica", "ALTER TABLE credsign.certificates ENABLE REPLICA TRIGGER certificates_no_truncate",
	 "trigger certificates_no_truncate disabled (it fires on replicas only)"},
	{"g_moved",
	 "DROP TRIGGER audit_log_no_truncate ON credsign.audit_log;"
	 "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON credsign.store_probe"
	 " FOR EACH STATEMENT EXECUTE FUNCTION credsign.audit_log_no_truncate_fn()",
	 "trigger audit_log_no_truncate moved (on table store_probe, not audit_log)"},
	{"g_dropped", "DROP TRIGGER audit_checkpoints_purge_owner ON credsign.audit_checkpoints",
	 "trigger audit_checkpoints_purge_owner missing"},
	{"g_when",
	 "DROP TRIGGER signing_keys_no_delete ON credsign.signing_keys;"
	 "CREATE TRIGGER signing_keys_no_delete BEFORE DELETE ON credsign.signing_keys FOR EACH ROW WHEN (false)"
	 " EXECUTE FUNCTION credsign.signing_keys_no_delete_fn()",
	 "trigger signing_keys_no_delete altered (not as credsign made it)"},
	{"g_invoker", "ALTER FUNCTION credsign.audit_purge(bigint) SECURITY INVOKER",
	 "function audit_purge altered (SECURITY INVOKER; credsign made it SECURITY DEFINER)"},
	{"g_path", "CREATE SCHEMA evil; ALTER FUNCTION credsign.audit_log_no_delete_fn() SET search_path = evil",
	 "function audit_log_no_delete_fn altered (its settings: search_path)"},
	{"g_owner",
	 "DO $d$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'g_other') THEN CREATE ROLE g_other;"
	 " END IF; END $d$; ALTER FUNCTION credsign.audit_purge(bigint) OWNER TO g_other",
	 "function audit_purge owned by another role than the schema owner"},
	{"g_dropfn", "DROP FUNCTION credsign.audit_purge(bigint)", "function audit_purge missing"},
	{"g_index",
	 "DROP INDEX credsign.signing_keys_one_active;"
	 "CREATE UNIQUE INDEX signing_keys_one_active ON credsign.signing_keys((coalesce(profile, '')))"
	 " WHERE status = 'ACTIVE'",
	 "index signing_keys_one_active altered (not as credsign made it)"},
	{"g_rule", "CREATE RULE audit_quiet AS ON INSERT TO credsign.audit_log DO INSTEAD NOTHING",
	 "rule audit_quiet on table audit_log (credsign makes none)"},
};

static void test_guards_as_made(void **state)
{
	(void)state;
	char why[512];
	for (size_t i = 0; i < sizeof(tampering) / sizeof(tampering[0]); i++) {
		make_db(tampering[i].db);
		cs_store *s = NULL, *again = NULL;
		assert_int_equal(open_as(tampering[i].db, NULL, 0, &s), CS_OK);
		assert_int_equal(cs_store_guards_check(s, why, sizeof(why)), CS_OK);
		assert_string_equal(why, "");
		assert_int_equal(sql_on(tampering[i].db, NULL, tampering[i].sql), 0);
		/* the periodic check on the store opened before: noticed, not logged */
		log_capture();
		assert_int_equal(cs_store_guards_check(s, why, sizeof(why)), CS_E_STORE);
		assert_int_equal(log_count_keep("tampered"), 0);
		if (strstr(why, tampering[i].why) == NULL)
			fail_msg("%s: \"%s\" does not say \"%s\"", tampering[i].db, why, tampering[i].why);
		assert_non_null(strstr(why, "tampered or damaged: "));
		/* every open refused, logged naming it; read-only too, but for the
		 * audit log's own guards: audit verify reads on (warned), its chain
		 * and checkpoints say what changed */
		int audit = strncmp(tampering[i].why, "trigger audit_", 14) == 0 ||
			    strncmp(tampering[i].why, "function audit_", 15) == 0;
		assert_int_equal(open_as(tampering[i].db, NULL, 0, &again), CS_E_STORE);
		assert_null(again);
		assert_int_equal(open_as(tampering[i].db, NULL, 1, &again), audit ? CS_OK : CS_E_STORE);
		cs_store_close(again);
		assert_int_equal(log_count(tampering[i].why), 2);
		cs_store_close(s);
	}

	/* put back as made: the periodic check says so, opens succeed again */
	cs_store *s = NULL;
	make_db("g_ok");
	assert_int_equal(open_as("g_ok", NULL, 0, &s), CS_OK);
	assert_int_equal(sql_on("g_ok", NULL, "ALTER TABLE credsign.audit_log DISABLE TRIGGER audit_log_no_update"), 0);
	assert_int_equal(cs_store_guards_check(s, why, sizeof(why)), CS_E_STORE);
	assert_int_equal(sql_on("g_ok", NULL, "ALTER TABLE credsign.audit_log ENABLE TRIGGER audit_log_no_update"), 0);
	assert_int_equal(cs_store_guards_check(s, why, sizeof(why)), CS_OK);
	assert_string_equal(why, "");
	cs_store *again = NULL;
	assert_int_equal(open_as("g_ok", NULL, 1, &again), CS_OK);
	cs_store_close(again);
	/* a SQLite store checks its guards at open only */
	char dir[] = "/tmp/store_pg_test_sq_XXXXXX", path[64];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/store.db", dir);
	assert_int_equal(cs_store_open(path, &again), CS_OK);
	assert_int_equal(cs_store_guards_check(again, why, sizeof(why)), CS_OK);
	cs_store_close(again);
	unlink(path);
	rmdir(dir);
	/* a store that does not answer: its own failure, why "" */
	assert_int_equal(ts_pg_ctl(&pg, "stop"), 0);
	log_capture();
	assert_int_not_equal(cs_store_guards_check(s, why, sizeof(why)), CS_OK);
	assert_string_equal(why, "");
	free(log_end());
	assert_int_equal(ts_pg_ctl(&pg, "start"), 0);
	cs_store_close(s);
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
	/* the purge is the owner's: the node role can neither purge nor forge
	 * the purge checkpoint that would let the delete trigger pass */
	const char *purge_cp = "INSERT INTO credsign.audit_checkpoints (first_seq, last_seq, head_hash, ts, node, kind, "
			       "jws) VALUES (1, 1, '\\x01', 't', 'n', 'purge', 'j')";
	assert_int_equal(sql_on("roles", "node1", "SELECT credsign.audit_purge(1)"), -1);
	assert_int_equal(sql_on("roles", "node1", purge_cp), -1);
	assert_int_equal(sql_on("roles", "node1",
				"INSERT INTO credsign.audit_checkpoints (first_seq, last_seq, head_hash, ts, node, kind, "
				"jws) VALUES (1, 1, '\\x01', 't', 'n', 'periodic', 'j')"),
			 0); /* the nodes' own checkpoints still go in */
	/* nor through the store's calls */
	uint8_t h[32] = {1};
	assert_int_equal(cs_store_write_begin(node, 0), CS_OK);
	assert_int_equal(cs_store_checkpoint_insert(node, 1, 1, h, "t", "n", "purge", "j"), CS_E_STORE);
	assert_int_equal(cs_store_write_end(node, CS_OK), CS_E_STORE);
	assert_int_equal(cs_store_write_begin(node, 0), CS_OK);
	assert_int_equal(cs_store_audit_delete_through(node, 1), CS_E_STORE);
	assert_int_equal(cs_store_write_end(node, CS_OK), CS_E_STORE);
	/* the owner may; audit_purge then removes only what the checkpoint covers */
	assert_int_equal(cs_store_write_begin(owner, 0), CS_OK);
	assert_int_equal(cs_store_checkpoint_insert(owner, 1, 1, h, "t", "n", "purge", "j"), CS_OK);
	assert_int_equal(cs_store_audit_delete_through(owner, 2), CS_E_STORE); /* 2: no purge covers it */
	assert_int_equal(cs_store_write_end(owner, CS_OK), CS_E_STORE);
	assert_int_equal(sql_on("roles", "cs_owner", purge_cp), 0);
	assert_int_equal(cs_store_write_begin(owner, 0), CS_OK);
	assert_int_equal(cs_store_audit_delete_through(owner, 1), CS_OK);
	assert_int_equal(cs_store_write_end(owner, CS_OK), CS_OK);
	/* a member of the owner role may too */
	assert_int_equal(ts_pg_sql(&pg, "CREATE ROLE owner_member LOGIN IN ROLE cs_owner"), 0);
	assert_int_equal(sql_on("roles", "owner_member", purge_cp), 0);
	assert_int_equal(sql_on("roles", "owner_member", "SELECT credsign.audit_purge(1)"), 0);
	char ci[256], buf[16];
	snprintf(ci, sizeof(ci), "host=%s port=%d dbname=roles user=pgsuper", pg.dir, pg.port);
	PGconn *c = PQconnectdb(ci);
	PGresult *res = PQexec(c, "SELECT min(seq) || '/' || (SELECT count(*) FROM credsign.audit_checkpoints "
				  "WHERE kind = 'purge') FROM credsign.audit_log");
	snprintf(buf, sizeof(buf), "%s", PQgetvalue(res, 0, 0));
	assert_string_equal(buf, "2/2"); /* entry 1 purged; the purge checkpoints of the owner and its member */
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
	assert_int_equal(sql_on("roles", "late1", "SELECT credsign.audit_purge(1)"), -1);
}

/* A store made at schema version 9 (the node role granted EXECUTE on
 * audit_purge, no purge-checkpoint trigger): the nodes cannot open it
 * until the owner's open migrates it to 10, which takes the purge from
 * every role but the owner. */
static void test_purge_v9_migrated(void **state)
{
	(void)state;
	make_db("v9");
	assert_int_equal(sql_on("v9", NULL, "GRANT CREATE ON DATABASE v9 TO cs_owner"), 0);
	cs_store *s = NULL;
	assert_int_equal(open_as("v9", "cs_owner", 0, &s), CS_OK);
	cs_store_close(s);
	/* back to what version 9 made */
	assert_int_equal(sql_on("v9", NULL,
				"DROP TRIGGER audit_checkpoints_purge_owner ON credsign.audit_checkpoints;"
				"DROP FUNCTION credsign.audit_checkpoints_purge_owner_fn();"
				"GRANT EXECUTE ON FUNCTION credsign.audit_purge(bigint) TO credsign_node, node1;"
				"DROP INDEX credsign.certificates_inventory;"
				"ALTER TABLE credsign.certificates DROP COLUMN project, DROP COLUMN environment,"
				" DROP COLUMN system;"
				"UPDATE credsign.schema_version SET version = 9"),
			 0);
	const char *purge_cp = "INSERT INTO credsign.audit_checkpoints (first_seq, last_seq, head_hash, ts, node, kind, "
			       "jws) VALUES (1, 1, '\\x01', 't', 'n', 'purge', 'j')";
	assert_int_equal(sql_on("v9", "node1", "SELECT credsign.audit_purge(0)"), 0); /* what F2 found */
	log_capture();
	assert_int_equal(open_as("v9", "node1", 0, &s), CS_E_STORE_SCHEMA);
	assert_null(s);
	assert_int_equal(log_count_keep("schema version 9, this program needs 11, and role node1 cannot migrate it"), 1);
	assert_int_equal(open_as("v9", "cs_owner", 0, &s), CS_OK);
	cs_store_close(s);
	assert_int_equal(log_count("schema migrated to version 1"), 2); /* 10, then 11 */
	assert_int_equal(sql_on("v9", "node1", "SELECT credsign.audit_purge(0)"), -1);
	assert_int_equal(sql_on("v9", "node1", purge_cp), -1);
	assert_int_equal(sql_on("v9", "node1", "SELECT count(*) FROM credsign.audit_checkpoints"), 0);
	char ci[256], buf[64];
	snprintf(ci, sizeof(ci), "host=%s port=%d dbname=v9 user=pgsuper", pg.dir, pg.port);
	PGconn *c = PQconnectdb(ci);
	PGresult *res = PQexec(c, "SELECT (SELECT max(version) FROM credsign.schema_version) || '/' || "
				  "(SELECT count(*) FROM pg_proc p, aclexplode(p.proacl) a WHERE "
				  "p.oid = 'credsign.audit_purge(bigint)'::regprocedure AND a.grantee <> p.proowner)");
	assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
	snprintf(buf, sizeof(buf), "%s", PQgetvalue(res, 0, 0));
	assert_string_equal(buf, "11/0");
	PQclear(res);
	PQfinish(c);
	assert_int_equal(open_as("v9", "node1", 0, &s), CS_OK);
	cs_store_close(s);
	assert_int_equal(sql_on("v9", "cs_owner", purge_cp), 0);
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

/* ---- failures (issue 18) ------------------------------------------------------------------ */

/* One integer of sql on database db, as the superuser. */
static int64_t value_on(const char *db, const char *sql)
{
	char ci[256];
	snprintf(ci, sizeof(ci), "host=%s port=%d dbname=%s user=pgsuper", pg.dir, pg.port, db);
	PGconn *c = PQconnectdb(ci);
	PGresult *res = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	int64_t v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	PQfinish(c);
	return v;
}

static char status_seen[32];
static void on_key_row(void *arg, const char *kid, const char *jwk, const char *status, const char *created)
{
	assert_non_null(jwk);
	assert_non_null(created);
	if (strcmp(kid, (const char *)arg) == 0)
		snprintf(status_seen, sizeof(status_seen), "%s", status);
}

/* A key's status set directly: retired stays retired (the schema's
 * trigger); certify failing part-way (the certificate refused after the
 * claim) stores nothing; a session claimed already changes no row; a
 * write inside a transaction and a statement after a failed one are
 * refused; rows edited outside credsign are refused when read. */
static void test_failures(void **state)
{
	(void)state;
	cs_store *s = NULL;
	make_db("faults");
	assert_int_equal(open_as("faults", NULL, 0, &s), CS_OK);
	status_seen[0] = '\0';
	assert_int_equal(cs_store_write_begin(s, 0), CS_OK);
	assert_int_equal(cs_store_key_upsert(s, "f-kid", "pkcs11:object=f", "{}", "active"), CS_OK);
	assert_int_equal(cs_store_key_set_status(s, "f-kid", "retired"), CS_OK);
	assert_int_equal(cs_store_write_end(s, CS_OK), CS_OK);
	assert_int_equal(cs_store_keys_each(s, on_key_row, "f-kid"), CS_OK);
	assert_string_equal(status_seen, "retired");
	assert_int_equal(cs_store_write_begin(s, 0), CS_OK);
	cs_err r = cs_store_key_set_status(s, "f-kid", "active");
	assert_int_equal(r, CS_E_STORE);
	assert_int_equal(cs_store_write_end(s, r), CS_E_STORE);
	assert_int_equal(cs_store_keys_each(s, on_key_row, "f-kid"), CS_OK);
	assert_string_equal(status_seen, "retired");

	/* compromised, then destroyed (a mark: the status stays); an event that
	 * is none of the four; a destruction is never undone */
	assert_int_equal(cs_store_write_begin(s, 0), CS_OK);
	assert_int_equal(cs_store_key_event(s, "f-kid", CS_KEY_COMPROMISED, "2026-01-01T00:00:00.000Z", "o", NULL),
			 CS_OK);
	assert_int_equal(cs_store_key_event(s, "f-kid", CS_KEY_DESTROYED, "2026-01-01T00:00:01.000Z", "o", NULL),
			 CS_OK);
	assert_int_equal(cs_store_key_event(s, "f-kid", (cs_key_event)7, "2026-01-01T00:00:02.000Z", "o", NULL),
			 CS_E_INVALID_ARG);
	assert_int_equal(cs_store_write_end(s, CS_OK), CS_OK);
	assert_int_equal(cs_store_keys_each(s, on_key_row, "f-kid"), CS_OK);
	assert_string_equal(status_seen, "compromised");
	assert_int_equal(cs_store_write_begin(s, 0), CS_OK);
	r = cs_store_key_event(s, "f-kid", CS_KEY_DESTROYED, "2026-01-01T00:00:03.000Z", "o", NULL);
	assert_int_equal(r, CS_E_STORE);
	assert_int_equal(cs_store_write_end(s, r), CS_E_STORE);
	assert_int_equal(value_on("faults", "SELECT count(*) FROM credsign.signing_keys WHERE kid = 'f-kid' AND "
					    "destroyed_at = '2026-01-01T00:00:01.000Z'"),
			 1);

	/* certify part-way: the claim succeeds, the certificate's key is not
	 * recorded; the whole transaction is rolled back */
	cs_gen_session g = {.id = "f-s1", .created_ms = 1, .expires_ms = INT64_MAX / 2, .cert_sha256 = "x",
			    .claims_json = "{\"sub\":\"f\"}"};
	assert_int_equal(cs_store_write_begin(s, 0), CS_OK);
	assert_int_equal(cs_store_session_insert(s, &g), CS_OK);
	assert_int_equal(cs_store_write_end(s, CS_OK), CS_OK);
	cs_cert_parts parts = {.header_b64 = "h", .claims_json = "{\"sub\":\"f\"}", .signature_b64 = "s"};
	int claimed = 0;
	assert_int_equal(cs_store_write_begin(s, 0), CS_OK);
	assert_int_equal(cs_store_session_claim(s, "f-s1", "f-c1", &claimed), CS_OK);
	assert_int_equal(claimed, 1);
	r = cs_store_cert_insert(s, "f-c1", "f-s1", "f-no-such-kid", &parts, 2);
	assert_int_equal(r, CS_E_STORE);
	/* the transaction failed: a further statement is not sent */
	assert_int_equal(cs_store_probe_write(s, 5), CS_E_STORE);
	/* a write begun inside it is a caller's error */
	assert_int_equal(cs_store_write_begin(s, 0), CS_E_INTERNAL);
	assert_int_equal(cs_store_write_end(s, r), CS_E_STORE);
	ts_assert_unclaimed(s, "f-s1", "{\"sub\":\"f\"}", "f-c1");
	/* with a recorded key: claimed and stored; a second claim changes nothing */
	assert_int_equal(cs_store_write_begin(s, 0), CS_OK);
	assert_int_equal(cs_store_session_claim(s, "f-s1", "f-c1", &claimed), CS_OK);
	assert_int_equal(claimed, 1);
	assert_int_equal(cs_store_cert_insert(s, "f-c1", "f-s1", "f-kid", &parts, 2), CS_OK);
	assert_int_equal(cs_store_write_end(s, CS_OK), CS_OK);
	assert_int_equal(cs_store_write_begin(s, 0), CS_OK);
	assert_int_equal(cs_store_session_claim(s, "f-s1", "f-c2", &claimed), CS_OK);
	assert_int_equal(claimed, 0);
	assert_int_equal(cs_store_write_end(s, CS_OK), CS_OK);
	cs_cert_row cert;
	assert_int_equal(cs_store_cert_get(s, "f-c2", &cert), CS_E_NOT_FOUND);
	assert_int_equal(cs_store_cert_get(s, "f-c1", &cert), CS_OK);
	assert_string_equal(cert.signature_b64, "s");
	cs_cert_row_free(&cert);

	/* whether a key is recorded (no callback) */
	assert_int_equal(cs_store_key_info(s, "f-kid", NULL, NULL), CS_OK);
	assert_int_equal(cs_store_key_info(s, "f-none", NULL, NULL), CS_E_NOT_FOUND);
	/* calls out of order are the caller's error, refused */
	assert_int_equal(cs_store_write_end(s, CS_E_CONFLICT), CS_E_CONFLICT); /* no write: r as given */
	assert_int_equal(cs_store_savepoint(s), CS_E_INTERNAL);
	assert_int_equal(cs_store_savepoint_end(s, CS_OK), CS_E_INTERNAL);
	assert_int_equal(cs_store_write_end(s, CS_OK), CS_E_STORE); /* no write to end */
	assert_int_equal(cs_store_read_begin(s), CS_OK);
	assert_int_equal(cs_store_read_begin(s), CS_E_INTERNAL);
	/* a statement failing inside a read ends it with a rollback; the
	 * connection reads again afterwards */
	pg_store *p = (pg_store *)s;
	assert_int_equal(pg_exec(p, "dividing", "SELECT 1/0", 0, NULL, NULL), CS_E_STORE);
	cs_store_read_end(s);
	assert_int_equal(cs_store_cert_get(s, "f-c1", &cert), CS_OK);
	cs_cert_row_free(&cert);
	/* a failure the store did not see (a statement sent around it): the
	 * COMMIT answers ROLLBACK, reported as a failure, nothing kept */
	assert_int_equal(cs_store_write_begin(s, 0), CS_OK);
	assert_int_equal(cs_store_probe_write(s, 77), CS_OK);
	PQclear(PQexec(p->conn, "SELECT 1/0"));
	assert_int_equal(cs_store_write_end(s, CS_OK), CS_E_STORE);
	assert_int_equal(value_on("faults", "SELECT count(*) FROM credsign.store_probe"), 0);

	/* an audit head edited outside credsign: its hash is not 32 bytes */
	make_db("edited");
	cs_store *e = NULL;
	assert_int_equal(open_as("edited", NULL, 0, &e), CS_OK);
	assert_int_equal(sql_on("edited", NULL,
				"INSERT INTO credsign.audit_log (seq, ts, node, actor, role, action, outcome, prev_hash, "
				"entry_hash) VALUES (1, '2026-01-01T00:00:00.000Z', 'n', 'a', 'system', 'x', 'success', "
				"'\\x00', '\\x00')"),
			 0);
	int64_t seq = 0;
	uint8_t h[32];
	char ts[32];
	assert_int_equal(cs_store_audit_last(e, &seq, h, ts), CS_E_STORE);
	cs_store_close(e);
	cs_store_close(s);
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
	/* a password file missing, empty or longer than a password: refused,
	 * nothing sent */
	char none[80], empty[80], longer[80], text[1200];
	snprintf(none, sizeof(none), "%s/none", dir);
	snprintf(empty, sizeof(empty), "%s/empty", dir);
	snprintf(longer, sizeof(longer), "%s/long", dir);
	ts_write_file(empty, "", 0600);
	memset(text, 'p', sizeof(text) - 2);
	text[sizeof(text) - 2] = '\n';
	text[sizeof(text) - 1] = '\0';
	ts_write_file(longer, text, 0600);
	log_capture();
	t.password_file = none;
	assert_int_equal(cs_store_connect(&t, &s), CS_E_STORE);
	assert_null(s);
	t.password_file = empty;
	assert_int_equal(cs_store_connect(&t, &s), CS_E_STORE);
	t.password_file = longer;
	assert_int_equal(cs_store_connect(&t, &s), CS_E_STORE);
	log = log_end();
	assert_int_equal(count_in(log, "No such file"), 1);
	assert_int_equal(count_in(log, "is empty"), 1);
	assert_int_equal(count_in(log, "a password longer than"), 1);
	assert_int_equal(count_in(log, "pppppppp"), 0);
	free(log);
	unlink(empty);
	unlink(longer);
	t.password_file = good;
	assert_int_equal(cs_store_connect(&t, &s), CS_OK);
	assert_int_equal(cs_store_ping(s), CS_OK);
	cs_store_close(s);
	unlink(good);
	unlink(bad);
	rmdir(dir);

	char name[256];
	cs_store_target n = {.backend = CS_STORE_POSTGRESQL, .conninfo = "postgresql://alice:secret@db.example:6543/cs"};
	name[0] = 'x';
	assert_ptr_equal(cs_store_target_name(&n, name, 0), name); /* no room: nothing written */
	assert_int_equal(name[0], 'x');
	assert_string_equal(cs_store_target_name(&n, name, sizeof(name)), "postgresql://alice@db.example:6543/cs");
	n.conninfo = "host=h1 user=bob dbname=d password=x port=1";
	assert_string_equal(cs_store_target_name(&n, name, sizeof(name)), "postgresql://bob@h1:1/d");
	cs_store_target q = {.backend = CS_STORE_SQLITE, .path = "/var/lib/credsign/store.db"};
	assert_string_equal(cs_store_target_name(&q, name, sizeof(name)), "/var/lib/credsign/store.db");
}

/* ---- a connection killed mid-call (issue 18, round 2) ------------------------------------ */

/* End every client connection to credsign but the one doing it (what an
 * operator's pg_terminate_backend, a failover or an OOM kill does). */
static void kill_backends(void)
{
	assert_int_equal(ts_pg_sql(&pg, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> "
					"pg_backend_pid() AND datname = 'credsign' AND backend_type = 'client backend'"),
			 0);
}

static int count_rows(void *arg, const cs_audit_entry *e, const uint8_t prev[32], const uint8_t hash[32])
{
	(void)e;
	(void)prev;
	(void)hash;
	(*(int *)arg)++;
	return 0;
}

static int count_cps(void *arg, int64_t first, int64_t last, const uint8_t head[32], const char *ts,
		     const char *node, const char *kind, const char *jws)
{
	(void)first, (void)last, (void)head, (void)ts, (void)node, (void)kind, (void)jws;
	(*(int *)arg)++;
	return 0;
}

static void test_connection_killed(void **state)
{
	(void)state;
	cs_store *s = open_ok();
	int rows = 0;
	int64_t first = 0, boundary = 0;
	uint8_t hash[32];

	/* the callbacks are required: refused before any statement */
	assert_int_equal(cs_store_audit_each(s, 1, 0, NULL, NULL), CS_E_INVALID_ARG);
	assert_int_equal(cs_store_checkpoints_each(s, NULL, NULL), CS_E_INVALID_ARG);
	assert_int_equal(cs_store_checkpoints_range(s, 1, 2, NULL, NULL), CS_E_INVALID_ARG);
	assert_int_equal(cs_store_audit_purge_boundary(s, NULL, &first, &boundary, hash), CS_E_INVALID_ARG);
	/* an empty range reads nothing */
	assert_int_equal(cs_store_checkpoints_range(s, 5, 4, count_cps, &rows), CS_OK);
	assert_int_equal(rows, 0);

	/* killed while idle: the next call runs again on a new connection */
	assert_int_equal(cs_store_ping(s), CS_OK);
	log_capture();
	kill_backends();
	assert_int_equal(cs_store_audit_each(s, 1, 0, count_rows, &rows), CS_OK);
	char *log = log_end();
	assert_int_equal(count_in(log, "connection lost"), 1);
	assert_int_equal(count_in(log, "reconnected"), 1);
	free(log);
	log_capture();

	/* killed inside a write: each later statement of it fails, nothing is
	 * committed, the outage logged once; the next write succeeds */
	int64_t before = value_int("SELECT count(*) FROM credsign.store_probe");
	assert_int_equal(cs_store_write_begin(s, 0), CS_OK);
	assert_int_equal(cs_store_probe_write(s, 21), CS_OK);
	kill_backends();
	assert_int_equal(cs_store_probe_write(s, 22), CS_E_STORE);
	assert_int_equal(cs_store_savepoint(s), CS_E_STORE);
	assert_int_equal(cs_store_write_end(s, CS_OK), CS_E_STORE);
	assert_int_equal(value_int("SELECT count(*) FROM credsign.store_probe"), before);
	assert_int_equal(cs_store_write_begin(s, 0), CS_OK);
	assert_int_equal(cs_store_probe_write(s, 23), CS_OK);
	assert_int_equal(cs_store_write_end(s, CS_OK), CS_OK);
	assert_int_equal(value_int("SELECT at_ms FROM credsign.store_probe"), 23);
	log = log_end();
	assert_int_equal(count_in(log, "connection lost"), 1);
	assert_int_equal(count_in(log, "reconnected"), 1);
	free(log);

	/* killed inside a read: the reads of that snapshot fail (never
	 * answered from a new connection's other moment) */
	log_capture();
	assert_int_equal(cs_store_read_begin(s), CS_OK);
	kill_backends();
	rows = 0;
	assert_int_equal(cs_store_audit_each(s, 1, 0, count_rows, &rows), CS_E_STORE);
	assert_int_equal(cs_store_checkpoints_each(s, count_cps, &rows), CS_E_STORE);
	assert_int_equal(cs_store_audit_purge_boundary(s, "2000-01-01T00:00:00.000Z", &first, &boundary, hash),
			 CS_E_STORE);
	assert_int_equal(rows, 0);
	cs_store_read_end(s);
	assert_int_equal(cs_store_ping(s), CS_OK);
	assert_int_equal(log_count("connection lost"), 1);

	cs_store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_migrate_once_concurrently),
		cmocka_unit_test(test_newer_schema_refused),
		cmocka_unit_test(test_node_role_cannot_migrate),
		cmocka_unit_test(test_guards),
		cmocka_unit_test(test_guards_as_made),
		cmocka_unit_test(test_roles),
		cmocka_unit_test(test_purge_v9_migrated),
		cmocka_unit_test(test_conflicts),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_write_lock),
		cmocka_unit_test(test_node_claim),
		cmocka_unit_test(test_sessions_and_readonly),
		cmocka_unit_test(test_pool_cap),
		cmocka_unit_test(test_password_and_name),
		cmocka_unit_test(test_failures),
		cmocka_unit_test(test_connection_killed),
		cmocka_unit_test(test_reconnect),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
