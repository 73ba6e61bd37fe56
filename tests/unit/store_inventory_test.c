/*
 * store_inventory_test: cs_store_inventory_each (issue 19) on both
 * backends: the rows in the inventory's order (project, environment,
 * system, NULL first, byte order, then created_ms, cert_id), the filters
 * (none, project, project and environment, environment), NULL system and
 * environment, revocations joined, a stop from the callback, and the
 * migration that adds the derived columns filling the certificates
 * already stored (SQLite 9 -> 10, PostgreSQL 10 -> 11) with the guards
 * still checked. PostgreSQL: a throwaway cluster (ts_pg_start).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store.h"
#include "test_support.h"

static char dir[512];
static ts_pg pg;
static int pg_up;

/* ---- the certificates every backend is given ------------------------------------ */

typedef struct {
	const char *id, *claims;
	int64_t created_ms;
} cert_spec;

static const cert_spec certs[] = {
	{"c1", "{\"project\":\"alpha\",\"environment\":\"prod\",\"system\":\"db1\",\"n\":1}", 3000},
	{"c2", "{\"project\":\"alpha\",\"environment\":\"prod\",\"system\":\"db1\",\"n\":2}", 1000},
	{"c3", "{\"project\":\"alpha\",\"environment\":\"prod\",\"system\":null,\"n\":3}", 2000},
	{"c4", "{\"project\":\"alpha\",\"system\":\"x\",\"n\":4}", 500},
	{"c5", "{\"project\":\"beta\",\"environment\":\"prod\",\"system\":\"db1\",\"n\":5}", 100},
	{"c6", "{\"project\":\"alpha\",\"environment\":\"dev\",\"system\":\"db1\",\"n\":6}", 100},
	{"c7", "{\"project\":\"alpha\",\"environment\":\"prod\",\"system\":\"db1\",\"n\":7}", 1000},
	/* byte order: "Alpha" before "alpha", "a_b" before "ab" (whatever
	 * the database's locale would say) */
	{"c8", "{\"project\":\"Alpha\",\"environment\":\"prod\",\"system\":\"db1\",\"n\":8}", 100},
	{"c9", "{\"project\":\"ab\",\"environment\":\"prod\",\"system\":\"s\",\"n\":9}", 100},
	{"c10", "{\"project\":\"a_b\",\"environment\":\"prod\",\"system\":\"s\",\"n\":10}", 100},
};
#define NCERTS (sizeof(certs) / sizeof(certs[0]))

static const cert_spec *spec_of(const char *id)
{
	for (size_t i = 0; i < NCERTS; i++)
		if (strcmp(certs[i].id, id) == 0)
			return &certs[i];
	return NULL;
}

/* Store every certificate (a key, a session each), and revoke c2. */
static void fill(cs_store *s)
{
	assert_int_equal(cs_store_write_begin(s, 0), CS_OK);
	cs_err r = cs_store_key_upsert(s, "inv-k", "pkcs11:object=k", "{}", "active");
	for (size_t i = 0; r == CS_OK && i < NCERTS; i++) {
		cs_gen_session g = {.created_ms = 1, .expires_ms = 10, .cert_sha256 = "x", .claims_json = "{}"};
		snprintf(g.id, sizeof(g.id), "s-%s", certs[i].id);
		cs_cert_parts parts = {.header_b64 = "h", .claims_json = certs[i].claims, .signature_b64 = "sig"};
		int claimed = 0;
		if ((r = cs_store_session_insert(s, &g)) == CS_OK &&
		    (r = cs_store_session_claim(s, g.id, certs[i].id, &claimed)) == CS_OK)
			r = cs_store_cert_insert(s, certs[i].id, g.id, "inv-k", &parts, certs[i].created_ms);
	}
	cs_revocation_record rv = {.cert_id = "c2", .reason = "keyCompromise", .revoked_at = "2026-01-01T00:00:00.000Z",
				   .revoked_by = "tester"};
	if (r == CS_OK)
		r = cs_store_revocation_insert(s, &rv);
	assert_int_equal(cs_store_write_end(s, r), CS_OK);
}

/* ---- what a read gives ----------------------------------------------------------- */

typedef struct {
	char ids[32][8];
	int n;
	int stop_after; /* 0: never */
} seen;

static int see(void *arg, const cs_inventory_row *row)
{
	seen *v = arg;
	const cert_spec *c = spec_of(row->cert_id);
	assert_non_null(c);
	assert_string_equal(row->claims_json, c->claims);
	assert_int_equal(row->created_ms, c->created_ms);
	/* the derived columns say what the claims say */
	char want[64];
	if (strstr(c->claims, "\"environment\"") == NULL)
		assert_null(row->environment);
	else
		assert_non_null(row->environment);
	if (strstr(c->claims, "\"system\":null") != NULL) {
		assert_null(row->system);
	} else {
		assert_non_null(row->system);
		snprintf(want, sizeof(want), "\"system\":\"%s\"", row->system);
		assert_non_null(strstr(c->claims, want));
	}
	assert_non_null(row->project);
	snprintf(want, sizeof(want), "{\"project\":\"%s\",", row->project);
	assert_int_equal(strncmp(c->claims, want, strlen(want)), 0);
	if (row->environment != NULL) {
		snprintf(want, sizeof(want), "\"environment\":\"%s\"", row->environment);
		assert_non_null(strstr(c->claims, want));
	}
	if (strcmp(row->cert_id, "c2") == 0) {
		assert_string_equal(row->revoked_at, "2026-01-01T00:00:00.000Z");
		assert_string_equal(row->revocation_reason, "keyCompromise");
	} else {
		assert_null(row->revoked_at);
		assert_null(row->revocation_reason);
	}
	assert_true(v->n < 32);
	snprintf(v->ids[v->n++], sizeof(v->ids[0]), "%s", row->cert_id);
	return v->stop_after > 0 && v->n >= v->stop_after;
}

/* The ids read for project/environment, joined by ",". */
static void read_ids(cs_store *s, const char *project, const char *environment, char *out, size_t size)
{
	seen v = {0};
	assert_int_equal(cs_store_inventory_each(s, project, environment, see, &v), CS_OK);
	out[0] = '\0';
	for (int i = 0; i < v.n; i++) {
		size_t len = strlen(out);
		snprintf(out + len, size - len, "%s%s", i > 0 ? "," : "", v.ids[i]);
	}
}

/* Every read of the inventory a store of fill()'s certificates gives. */
static void check_reads(cs_store *s)
{
	char ids[256];
	read_ids(s, NULL, NULL, ids, sizeof(ids));
	assert_string_equal(ids, "c8,c10,c9,c4,c6,c3,c2,c7,c1,c5");
	read_ids(s, "alpha", NULL, ids, sizeof(ids));
	assert_string_equal(ids, "c4,c6,c3,c2,c7,c1");
	read_ids(s, "alpha", "prod", ids, sizeof(ids));
	assert_string_equal(ids, "c3,c2,c7,c1");
	read_ids(s, NULL, "prod", ids, sizeof(ids));
	assert_string_equal(ids, "c8,c10,c9,c3,c2,c7,c1,c5");
	read_ids(s, "alpha", "staging", ids, sizeof(ids));
	assert_string_equal(ids, "");
	read_ids(s, "zeta", NULL, ids, sizeof(ids));
	assert_string_equal(ids, "");
	read_ids(s, "ALPHA", NULL, ids, sizeof(ids)); /* no case folding */
	assert_string_equal(ids, "");
	/* the callback stops the read */
	seen v = {.stop_after = 2};
	assert_int_equal(cs_store_inventory_each(s, "alpha", NULL, see, &v), CS_OK);
	assert_int_equal(v.n, 2);
	assert_string_equal(v.ids[1], "c6");
	assert_int_equal(cs_store_inventory_each(s, NULL, NULL, NULL, NULL), CS_E_INVALID_ARG);
	/* inside a read snapshot too */
	assert_int_equal(cs_store_read_begin(s), CS_OK);
	read_ids(s, "beta", NULL, ids, sizeof(ids));
	assert_string_equal(ids, "c5");
	cs_store_read_end(s);
}

/* ---- SQLite ---------------------------------------------------------------------- */

static void sqlite_path(char *path, size_t size, const char *name)
{
	snprintf(path, size, "%s/%s.db", dir, name);
}

static void test_sqlite_reads(void **state)
{
	(void)state;
	char path[600];
	sqlite_path(path, sizeof(path), "reads");
	cs_store *s = NULL;
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	assert_int_equal(cs_store_inventory_each(s, NULL, NULL, see, &(seen){0}), CS_OK); /* empty */
	fill(s);
	check_reads(s);
	cs_store_close(s);
	/* the read-only open reads it as well; the plan uses the index, no sort */
	assert_int_equal(cs_store_open_existing_readonly(path, &s), CS_OK);
	check_reads(s);
	cs_store_close(s);
	sqlite3 *raw = ts_sqlite_open(path);
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_prepare_v2(raw,
					    "EXPLAIN QUERY PLAN SELECT c.id FROM certificates c LEFT JOIN cert_revocations r "
					    "ON r.cert_id = c.id WHERE c.project = 'alpha' AND c.environment = 'prod' "
					    "ORDER BY c.project, c.environment, c.system, c.created_ms, c.id",
					    -1, &st, NULL),
			 SQLITE_OK);
	int uses_index = 0, sorts = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *d = (const char *)sqlite3_column_text(st, 3);
		uses_index |= d != NULL && strstr(d, "certificates_inventory") != NULL;
		sorts |= d != NULL && strstr(d, "TEMP B-TREE") != NULL;
	}
	sqlite3_finalize(st);
	sqlite3_close(raw);
	assert_true(uses_index);
	assert_false(sorts);
}

/* A store of schema version 9 (no derived columns, no index) with
 * certificates is migrated to 10: they are listed, the guards hold. */
static void test_sqlite_migration_backfills(void **state)
{
	(void)state;
	char path[600];
	sqlite_path(path, sizeof(path), "v9");
	cs_store *s = NULL;
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	cs_store_close(s);
	sqlite3 *raw = ts_sqlite_open(path);
	ts_sqlite_exec(raw, "DROP INDEX certificates_inventory;"
			    "ALTER TABLE certificates DROP COLUMN system;"
			    "ALTER TABLE certificates DROP COLUMN environment;"
			    "ALTER TABLE certificates DROP COLUMN project;"
			    "PRAGMA user_version = 9;");
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM pragma_table_xinfo('certificates') "
					    "WHERE name IN ('project', 'environment', 'system')"),
			 0);
	sqlite3_close(raw);
	/* the certificates go in at version 9, as that version wrote them */
	raw = ts_sqlite_open(path);
	ts_sqlite_exec(raw, "INSERT INTO signing_keys (kid, uri, jwk_json, status) VALUES ('inv-k', 'u', '{}', 'active')");
	for (size_t i = 0; i < NCERTS; i++) {
		char *sql = sqlite3_mprintf("INSERT INTO generation_sessions (id, created_ms, expires_ms, cert_sha256, cert_id) "
					    "VALUES ('s-%q', 1, 10, 'x', '%q');"
					    "INSERT INTO certificates (id, session_id, kid, header, claims_json, signature, "
					    "created_ms) VALUES ('%q', 's-%q', 'inv-k', 'h', '%q', 'sig', %lld);",
					    certs[i].id, certs[i].id, certs[i].id, certs[i].id, certs[i].claims,
					    (long long)certs[i].created_ms);
		assert_non_null(sql);
		ts_sqlite_exec(raw, sql);
		sqlite3_free(sql);
	}
	ts_sqlite_exec(raw, "INSERT INTO cert_revocations (cert_id, reason, revoked_at, revoked_by) VALUES "
			    "('c2', 'keyCompromise', '2026-01-01T00:00:00.000Z', 'tester')");
	sqlite3_close(raw);
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	assert_int_equal(ts_sqlite_path_int(path, "SELECT user_version FROM pragma_user_version"), 10);
	assert_int_equal(ts_sqlite_path_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'certificates_inventory'"),
			 1);
	check_reads(s);
	char why[256];
	assert_int_equal(cs_store_guards_check(s, why, sizeof(why)), CS_OK);
	/* a certificate stored after the migration has its columns without
	 * being given them */
	assert_int_equal(cs_store_write_begin(s, 0), CS_OK);
	cs_gen_session g = {.id = "s-new", .created_ms = 1, .expires_ms = 10, .cert_sha256 = "x", .claims_json = "{}"};
	cs_cert_parts parts = {.header_b64 = "h", .claims_json = "{\"project\":\"beta\",\"system\":\"z\"}",
			       .signature_b64 = "s"};
	cs_err r = cs_store_session_insert(s, &g);
	if (r == CS_OK)
		r = cs_store_cert_insert(s, "c-new", "s-new", "inv-k", &parts, 50);
	assert_int_equal(cs_store_write_end(s, r), CS_OK);
	assert_int_equal(ts_sqlite_path_int(path, "SELECT count(*) FROM certificates WHERE id = 'c-new' "
						  "AND project = 'beta' AND environment IS NULL AND system = 'z'"),
			 1);
	cs_store_close(s);
	/* opened again, read-only: the schema and its guards as made */
	assert_int_equal(cs_store_open_existing_readonly(path, &s), CS_OK);
	cs_store_close(s);
}

/* ---- PostgreSQL -------------------------------------------------------------------- */

static cs_store *pg_open_db(const char *db)
{
	char ci[512];
	cs_store_target t;
	ts_pg_target(&pg, NULL, ci, sizeof(ci), &t);
	char *p = strstr(ci, "dbname=credsign");
	assert_non_null(p);
	char rest[256];
	snprintf(rest, sizeof(rest), "%s", p + strlen("dbname=credsign"));
	snprintf(p, sizeof(ci) - (size_t)(p - ci), "dbname=%s%s", db, rest);
	cs_store *s = NULL;
	assert_int_equal(cs_store_connect(&t, &s), CS_OK);
	return s;
}

static void pg_db(const char *db)
{
	char sql[128];
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", db);
	assert_int_equal(ts_pg_sql(&pg, sql), 0);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
	assert_int_equal(ts_pg_sql(&pg, sql), 0);
}

static void test_pg_reads(void **state)
{
	(void)state;
	if (!pg_up)
		fail_msg("no PostgreSQL cluster");
	pg_db("inv_reads");
	cs_store *s = pg_open_db("inv_reads");
	assert_int_equal(cs_store_inventory_each(s, NULL, NULL, see, &(seen){0}), CS_OK);
	fill(s);
	check_reads(s);
	char why[256];
	assert_int_equal(cs_store_guards_check(s, why, sizeof(why)), CS_OK);
	cs_store_close(s);
}

/* A store of schema version 10 (no derived columns, no index) with
 * certificates is migrated to 11: they are listed, the guards hold. */
static void test_pg_migration_backfills(void **state)
{
	(void)state;
	if (!pg_up)
		fail_msg("no PostgreSQL cluster");
	/* the database credsign: raw SQL reaches it */
	cs_store *s = pg_open_db("credsign");
	cs_store_close(s);
	assert_int_equal(ts_pg_sql(&pg, "DROP INDEX credsign.certificates_inventory;"
					       "ALTER TABLE credsign.certificates DROP COLUMN project, "
					       "DROP COLUMN environment, DROP COLUMN system;"
					       "UPDATE credsign.schema_version SET version = 10;"
					       "INSERT INTO credsign.signing_keys (kid, uri, jwk_json, status) "
					       "VALUES ('inv-k', 'u', '{}', 'active');"),
			 0);
	for (size_t i = 0; i < NCERTS; i++) {
		char sql[1024];
		snprintf(sql, sizeof(sql),
			 "INSERT INTO credsign.generation_sessions (id, created_ms, expires_ms, cert_sha256, cert_id) "
			 "VALUES ('s-%s', 1, 10, 'x', '%s');"
			 "INSERT INTO credsign.certificates (id, session_id, kid, header, claims_json, signature, "
			 "created_ms) VALUES ('%s', 's-%s', 'inv-k', 'h', '%s', 'sig', %lld);",
			 certs[i].id, certs[i].id, certs[i].id, certs[i].id, certs[i].claims,
			 (long long)certs[i].created_ms);
		assert_int_equal(ts_pg_sql(&pg, sql), 0);
	}
	assert_int_equal(ts_pg_sql(&pg, "INSERT INTO credsign.cert_revocations (cert_id, reason, revoked_at, "
					       "revoked_by) VALUES ('c2', 'keyCompromise', '2026-01-01T00:00:00.000Z', "
					       "'tester')"),
			 0);
	char v[64];
	assert_int_equal(ts_pg_value(&pg, "SELECT count(*) FROM information_schema.columns WHERE table_schema = "
					  "'credsign' AND table_name = 'certificates' AND column_name = 'project'",
				     v, sizeof(v)),
			 0);
	assert_string_equal(v, "0");
	s = pg_open_db("credsign");
	assert_int_equal(ts_pg_value(&pg, "SELECT max(version) FROM credsign.schema_version", v, sizeof(v)), 0);
	assert_string_equal(v, "11");
	assert_int_equal(ts_pg_value(&pg, "SELECT count(*) FROM credsign.certificates WHERE id = 'c4' AND "
					  "project = 'alpha' AND environment IS NULL AND system = 'x'",
				     v, sizeof(v)),
			 0);
	assert_string_equal(v, "1");
	check_reads(s);
	char why[256];
	assert_int_equal(cs_store_guards_check(s, why, sizeof(why)), CS_OK);
	cs_store_close(s);
	/* the index serves the filtered read in its order: no sort (the
	 * planner told to avoid one: a table this small is cheaper to sort) */
	char plan[8192];
	assert_int_equal(ts_pg_value(&pg,
				     "SET enable_seqscan = off; SET enable_sort = off;"
				     "EXPLAIN (FORMAT JSON) SELECT c.id FROM credsign.certificates c "
				     "WHERE c.project = 'alpha' AND c.environment = 'prod' ORDER BY c.project NULLS FIRST, "
				     "c.environment NULLS FIRST, c.system NULLS FIRST, c.created_ms, c.id COLLATE \"C\"",
				     plan, sizeof(plan)),
			 0);
	assert_non_null(strstr(plan, "certificates_inventory"));
	assert_null(strstr(plan, "\"Sort\""));
}

static int group_setup(void **state)
{
	(void)state;
	if (ts_scratch_dir(dir, sizeof(dir), "store-inventory", 1, 0755) != 0)
		return -1;
	pg_up = ts_pg_start(&pg) == 0;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	if (pg_up)
		ts_pg_stop(&pg);
	ts_scratch_remove(dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sqlite_reads),
		cmocka_unit_test(test_sqlite_migration_backfills),
		cmocka_unit_test(test_pg_reads),
		cmocka_unit_test(test_pg_migration_backfills),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
