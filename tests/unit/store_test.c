/*
 * store_test: the SQLite store's write discipline, the ledger's rules over
 * it and the audit log's ordering, with real databases in a temporary
 * directory.
 *
 *  - every write ends its write: a write transaction that could not begin
 *    (the lock held by another connection), failed in a statement or
 *    committed leaves no deadline behind: a long read on the same
 *    connection afterwards is not cut short; a savepoint rolls back alone;
 *  - every write of the ledger fails with CS_E_STORE within its write
 *    timeout while another process holds the lock, writes nothing, and
 *    writes succeed again once it is released;
 *  - write health: a failed write makes cs_ledger_write_health() report
 *    the store unavailable, a probe write after the lock is released
 *    reports it available again; a refusal (409) changes nothing;
 *  - no NULL from SQLite's text is used: every allocation SQLite makes
 *    while reading is failed in turn, and each read returns an error or the
 *    right data, never a crash or a NULL field;
 *  - checkpoints never overlap: two ledgers (two writers) append and
 *    checkpoint concurrently while a third purges;
 *  - ts never decreases along seq with concurrent writers (one ledger's
 *    writer thread and two other ledgers), including callers that take
 *    the time before waiting for the write lock and a clock that steps
 *    back; audit verify holds ts to that order from where the store began
 *    to guarantee it, and only counts decreases before;
 *  - an old store is migrated: one copy of each certificate's claims (its
 *    JWS), answered exactly as before; a newer schema is refused;
 *  - the schema's guards: a store whose guard trigger or one-active index
 *    was dropped (or replaced by one that guards nothing) is refused at
 *    every open, read-write and read-only, naming it; one without the
 *    audit log's triggers still opens (its chain proves it); several
 *    active keys (the index gone) make the active key a conflict;
 *  - issue 15: the guards of schema 8 (a key's profile fixed, signatures
 *    append-only) are checked like the others; a schema-7 store migrates
 *    (its keys certificate keys, profile NULL; its active key still the
 *    one) and takes a profile's active key beside the certificate key;
 *    several active keys of one profile (the index gone) are that
 *    profile's conflict, logged once naming it, the others unaffected;
 *  - signatures found again by the SHA-256 of their bytes: only that
 *    digest's, newest first (by audit seq), at most the limit, stopped
 *    when the callback says so, every field as recorded (a stored payload,
 *    an empty one, none), through the index migration 8 makes, without a
 *    sort; under allocation failure (the reads above) an error or the
 *    right data.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "audit_chain.h"
#include "audit_verify.h"
#include "cs_log.h"
#include "ledger.h"
#include "sqlite_fault.h"
#include "store.h"
#include "test_support.h"

static char dir[512];
static int db_counter;

/* A fresh database path in the test directory. */
static void new_db(char *path, size_t n)
{
	snprintf(path, n, "%s/store-%d.db", dir, ++db_counter);
}

static void sleep_ms(long ms)
{
	struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&t, NULL);
}

/* ---- every write path ends its write ------------------------------------------- */

static cs_err fake_sign(void *arg, int64_t first, int64_t last, const uint8_t head[32], const char *ts,
			const char *node, const char *kind, char **jws)
{
	(void)head;
	(void)ts;
	(void)node;
	atomic_int *signatures = arg;
	if (signatures != NULL) {
		atomic_fetch_add(signatures, 1);
		sleep_ms(1); /* a token takes a while: others write meanwhile */
	}
	char buf[96];
	snprintf(buf, sizeof(buf), "h.%s-%lld-%lld.s", kind, (long long)first, (long long)last);
	*jws = strdup(buf);
	return *jws != NULL ? CS_OK : CS_E_NOMEM;
}

static cs_audit_entry entry(const char *action)
{
	cs_audit_entry e = {.node = "test-1", .actor = "system", .role = "system", .action = action,
			    .outcome = "success"};
	return e;
}

/* 3,000 entries to read, a session to certify */
static sqlite3 *fill_3000(const char *path)
{
	sqlite3 *raw = ts_sqlite_open(path);
	ts_sqlite_exec(raw, "BEGIN;"
			    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) "
			    "INSERT INTO audit_log SELECT i, '2026-01-01T00:00:00.000Z', 'test-1', 'system', NULL, "
			    "'system', 'bulk', NULL, NULL, NULL, 'success', NULL, NULL, zeroblob(32), zeroblob(32) "
			    "FROM n;"
			    "INSERT INTO generation_sessions (id, created_ms, expires_ms, cert_sha256) "
			    "VALUES ('sess-1', 1, 9e15, 'ab');"
			    "INSERT INTO session_claims (session_id, claims_json) VALUES ('sess-1', '{}');"
			    "COMMIT");
	return raw;
}

/* A long read on the connection, well after the deadline a write armed. */
static void read_3000(cs_store *s, const char *what)
{
	sleep_ms(20);
	int rows = 0;
	cs_err r = cs_store_audit_each(s, 1, 0, ts_count_entry, &rows);
	if (r != CS_OK || rows != 3000)
		fail_msg("%s left its deadline armed: read %d of 3000 rows (%s)", what, rows, cs_strerror(r));
}

/* The store's own discipline: a write transaction that failed to begin,
 * failed in a statement or committed leaves no deadline behind. */
static void test_store_write_ends_its_deadline(void **state)
{
	(void)state;
	char path[600];
	new_db(path, sizeof(path));
	cs_store *s = NULL;
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	sqlite3 *raw = fill_3000(path);

	ts_sqlite_exec(raw, "BEGIN IMMEDIATE"); /* another writer holds the lock */
	cs_err r = cs_store_write_begin(s, ts_mono_ms() + 100);
	assert_int_equal(r, CS_E_STORE);
	assert_int_equal(cs_store_write_end(s, r), CS_E_STORE);
	ts_sqlite_exec(raw, "ROLLBACK");
	read_3000(s, "a write that could not begin");

	cs_gen_session g = {.id = "sess-1", .created_ms = 1, .expires_ms = 2, .cert_sha256 = "ab",
			    .claims_json = "{}"};
	assert_int_equal(cs_store_write_begin(s, ts_mono_ms() + 100), CS_OK);
	r = cs_store_session_insert(s, &g); /* the id exists */
	assert_int_equal(r, CS_E_STORE);
	assert_int_equal(cs_store_write_end(s, r), CS_E_STORE);
	read_3000(s, "a write whose statement failed");

	snprintf(g.id, sizeof(g.id), "sess-2");
	int64_t changes = cs_store_changes(s); /* rows this connection changed */
	assert_int_equal(cs_store_write_begin(s, ts_mono_ms() + 100), CS_OK);
	assert_int_equal(cs_store_session_insert(s, &g), CS_OK);
	assert_int_equal(cs_store_write_end(s, CS_OK), CS_OK);
	assert_int_equal(cs_store_changes(s) - changes, 2); /* the session and its claims */
	read_3000(s, "a committed write");

	/* a savepoint that fails rolls back alone */
	snprintf(g.id, sizeof(g.id), "sess-3");
	assert_int_equal(cs_store_write_begin(s, ts_mono_ms() + 1000), CS_OK);
	assert_int_equal(cs_store_savepoint(s), CS_OK);
	assert_int_equal(cs_store_session_insert(s, &g), CS_OK);
	assert_int_equal(cs_store_savepoint_end(s, CS_E_SESSION_USED), CS_OK);
	snprintf(g.id, sizeof(g.id), "sess-4");
	assert_int_equal(cs_store_savepoint(s), CS_OK);
	assert_int_equal(cs_store_session_insert(s, &g), CS_OK);
	assert_int_equal(cs_store_savepoint_end(s, CS_OK), CS_OK);
	assert_int_equal(cs_store_write_end(s, CS_OK), CS_OK);
	cs_session_row row;
	assert_int_equal(cs_store_session_get(s, "sess-3", &row), CS_E_NOT_FOUND);
	assert_int_equal(cs_store_session_get(s, "sess-4", &row), CS_OK);
	cs_session_row_free(&row);
	sqlite3_close(raw);
	cs_store_close(s);
}

/* Each write of the ledger, once. */
static cs_err write_number(cs_ledger *l, int i)
{
	cs_audit_entry e = entry("test.write");
	cs_gen_session g = {.id = "sess-w", .created_ms = 1, .expires_ms = 2, .cert_sha256 = "ab",
			    .claims_json = "{}"};
	int64_t n = 0, m = 0;
	int changed = 0;
	switch (i) {
	case 0: return cs_ledger_audit_append(l, &e);
	case 1: return cs_ledger_session_put(l, &g, &e);
	case 2: return cs_ledger_certify(l, "sess-1", "cert-w", "kid-1", "h.e30.s", 1, &e);
	case 3: return cs_ledger_sessions_prune(l, INT64_MAX, &n);
	case 4: return cs_ledger_key_put(l, "kid-w", "pkcs11:object=w", "{}", "active", &changed, &e);
	case 5: return cs_ledger_checkpoint_make(l, "test-1", "periodic", fake_sign, NULL, &n, &m);
	case 6: return cs_ledger_audit_purge(l, "9999-12-31T00:00:00.000Z", "test-1", fake_sign, NULL, &n, &m);
	case 7: return cs_ledger_write_health(l, 0);
	default: return CS_E_INTERNAL;
	}
}
#define WRITE_PATHS 8

static void test_failed_write_fails_in_time(void **state)
{
	(void)state;
	char path[600];
	new_db(path, sizeof(path));
	cs_ledger *l = NULL;
	assert_int_equal(cs_ledger_open(path, 100, &l), CS_OK);
	assert_int_equal(cs_ledger_start(l), CS_OK);
	sqlite3 *raw = fill_3000(path);
	cs_store *s = NULL;
	assert_int_equal(cs_store_open(path, &s), CS_OK);

	for (int i = 0; i < WRITE_PATHS; i++) {
		ts_sqlite_exec(raw, "BEGIN IMMEDIATE"); /* another writer holds the lock */
		int64_t t0 = ts_mono_ms();
		cs_err r = write_number(l, i);
		int64_t took = ts_mono_ms() - t0;
		if (r != CS_E_STORE)
			fail_msg("write path %d: %s instead of a store error", i, cs_strerror(r));
		if (took > 1000)
			fail_msg("write path %d failed after %lld ms (write timeout 100 ms)", i, (long long)took);
		/* the failure is the store's state now */
		assert_int_equal(cs_ledger_write_health(l, 60000), CS_E_STORE);
		ts_sqlite_exec(raw, "ROLLBACK");
		read_3000(s, "the failed write");
	}
	/* nothing of them was written, and writes succeed again */
	int rows = 0;
	assert_int_equal(cs_store_audit_each(s, 1, 0, ts_count_entry, &rows), CS_OK);
	assert_int_equal(rows, 3000);
	assert_int_equal(cs_ledger_write_health(l, 0), CS_OK);
	assert_int_equal(write_number(l, 0), CS_OK);
	sqlite3_close(raw);
	cs_store_close(s);
	cs_ledger_close(l);
}

static void test_write_health_recovers(void **state)
{
	(void)state;
	char path[600];
	new_db(path, sizeof(path));
	cs_ledger *a = NULL;
	assert_int_equal(cs_ledger_open(path, 100, &a), CS_OK);
	assert_int_equal(cs_ledger_start(a), CS_OK);

	/* no write yet: a probe write answers */
	assert_int_equal(cs_ledger_write_health(a, 60000), CS_OK);
	sqlite3 *raw = ts_sqlite_open(path);
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_prepare_v2(raw, "SELECT count(*) FROM store_probe", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 1);
	sqlite3_finalize(st);

	/* a recent success answers without a write: even a held lock is not seen */
	ts_sqlite_exec(raw, "BEGIN IMMEDIATE");
	assert_int_equal(cs_ledger_write_health(a, 60000), CS_OK);
	/* an old one does not: the probe waits for the lock, then fails */
	assert_int_equal(cs_ledger_write_health(a, 0), CS_E_STORE);
	assert_int_equal(cs_ledger_write_health(a, 60000), CS_E_STORE); /* recorded */
	ts_sqlite_exec(raw, "ROLLBACK");
	assert_int_equal(cs_ledger_write_health(a, 60000), CS_E_STORE); /* still recent */
	assert_int_equal(cs_ledger_write_health(a, 0), CS_OK);          /* probe: writes again */
	assert_int_equal(cs_ledger_write_health(a, 60000), CS_OK);
	/* any committed write counts, a refusal does not */
	ts_sqlite_exec(raw, "BEGIN IMMEDIATE");
	assert_int_equal(cs_ledger_write_health(a, 0), CS_E_STORE);
	ts_sqlite_exec(raw, "ROLLBACK");
	cs_audit_entry e = entry("test.refused");
	assert_int_equal(cs_ledger_certify(a, "no-such-session", "cert-x", "kid", "h.e30.s", 1, &e),
			 CS_E_SESSION_USED);
	assert_int_equal(cs_ledger_write_health(a, 60000), CS_E_STORE);
	e = entry("test.write");
	assert_int_equal(cs_ledger_audit_append(a, &e), CS_OK);
	assert_int_equal(cs_ledger_write_health(a, 60000), CS_OK);
	sqlite3_close(raw);
	cs_ledger_close(a);
}

/* ---- reads under allocation failure ------------------------------------------ */

/* 62 bytes stored as a BLOB: SQLite must grow its buffer to give it as text */
#define BLOB62 "X'" \
	"41414141414141414141414141414141414141414141414141414141414141" \
	"41414141414141414141414141414141414141414141414141414141414141" "'"
#define TEXT62 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
static const char text62[] = TEXT62;
/* the JWS of header "h", payload text62 and signature "s" */
static const char jws_text[] =
	"h.QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE.s";

static int keys_seen;
static void check_key(void *arg, const char *kid, const char *jwk, const char *status, const char *created)
{
	(void)arg;
	assert_non_null(kid);
	assert_non_null(jwk);
	assert_non_null(status);
	assert_non_null(created);
	assert_string_equal(kid, text62);
	keys_seen++;
}

static int entries_seen;
static int check_entry(void *arg, const cs_audit_entry *e, const uint8_t prev[32], const uint8_t hash[32])
{
	(void)arg;
	(void)prev;
	(void)hash;
	const char *required[] = {e->ts, e->node, e->actor, e->role, e->action, e->outcome};
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		assert_non_null(required[i]);
	assert_string_equal(e->ts, text62);
	assert_null(e->object);
	entries_seen++;
	return 0;
}

static int signatures_seen;
static void check_sig(void *arg, const cs_signature_record *g)
{
	(void)arg;
	const char *text[] = {g->profile, g->requester, g->requester_cert_sha256, g->created_at, g->signed_sha256,
			      g->kid, g->signature, g->signature_der, g->payload_type};
	for (size_t i = 0; i < sizeof(text) / sizeof(text[0]); i++) {
		assert_non_null(text[i]);
		assert_string_equal(text[i], text62);
	}
	assert_string_equal(g->id, "sig-1");
	assert_string_equal(g->format, "jws");
	assert_non_null(g->payload);
	assert_int_equal(g->payload_len, 62);
	assert_memory_equal(g->payload, text62, 62);
	assert_int_equal(g->audit_seq, 1);
	signatures_seen++;
}

static int check_sig_row(void *arg, const cs_signature_record *g)
{
	check_sig(arg, g);
	return 0;
}

static int checkpoints_seen;
static int check_cp(void *arg, int64_t first, int64_t last, const uint8_t head[32], const char *ts,
		    const char *node, const char *kind, const char *jws)
{
	(void)arg;
	(void)first;
	(void)last;
	(void)head;
	assert_non_null(ts);
	assert_non_null(node);
	assert_non_null(kind);
	assert_non_null(jws);
	assert_string_equal(jws, text62);
	checkpoints_seen++;
	return 0;
}

/* Read everything once; 1 when all data was right, 0 when a read failed
 * cleanly; the assertions catch anything else. */
static int read_all(cs_store *s)
{
	char *jws = NULL, *claims = NULL;
	int ok = 1;
	cs_err r = cs_ledger_cert_get(s, "cert-1", &jws, &claims);
	if (r == CS_OK) {
		assert_string_equal(jws, jws_text);
		assert_string_equal(claims, text62); /* the payload, as signed */
	} else {
		assert_true(r == CS_E_NOMEM || r == CS_E_STORE);
		assert_null(jws);
		assert_null(claims);
		ok = 0;
	}
	free(jws);
	free(claims);
	r = cs_ledger_session_claims(s, "sess-1", text62, 0, &claims);
	if (r == CS_OK)
		assert_string_equal(claims, text62);
	else {
		assert_true(r == CS_E_NOMEM || r == CS_E_STORE);
		assert_null(claims);
		ok = 0;
	}
	free(claims);
	r = cs_store_checkpoint_latest(s, &jws);
	if (r == CS_OK)
		assert_string_equal(jws, text62);
	else {
		assert_true(r == CS_E_NOMEM || r == CS_E_STORE);
		assert_null(jws);
		ok = 0;
	}
	free(jws);
	keys_seen = entries_seen = checkpoints_seen = signatures_seen = 0;
	r = cs_store_signature_get(s, "sig-1", check_sig, NULL);
	if (r != CS_OK) {
		assert_true(r == CS_E_NOMEM || r == CS_E_STORE);
		assert_int_equal(signatures_seen, 0);
		ok = 0;
	} else {
		assert_int_equal(signatures_seen, 1);
	}
	signatures_seen = 0;
	r = cs_store_signatures_by_sha256(s, text62, 10, check_sig_row, NULL);
	if (r != CS_OK) {
		assert_true(r == CS_E_NOMEM || r == CS_E_STORE);
		ok = 0;
	} else {
		assert_int_equal(signatures_seen, 1);
	}
	r = cs_store_keys_each(s, check_key, NULL);
	ok &= r == CS_OK && keys_seen == 1;
	r = cs_store_audit_each(s, 1, 0, check_entry, NULL);
	ok &= r == CS_OK && entries_seen == 1;
	r = cs_store_checkpoints_each(s, check_cp, NULL);
	ok &= r == CS_OK && checkpoints_seen == 1;
	return ok;
}

static void test_reads_under_allocation_failure(void **state)
{
	(void)state;
	char path[600];
	new_db(path, sizeof(path));
	cs_store *s = NULL;
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	sqlite3 *raw = ts_sqlite_open(path);
	ts_sqlite_exec(raw, "INSERT INTO generation_sessions (id, created_ms, expires_ms, cert_sha256, cert_id) "
			    "VALUES ('sess-1', 1, 9e15, " BLOB62 ", NULL);"
			    "INSERT INTO session_claims (session_id, claims_json) VALUES ('sess-1', " BLOB62 ");"
			    "INSERT INTO certificates (id, session_id, kid, header, claims_json, signature, created_ms) "
			    "VALUES ('cert-1', 'sess-0', 'k', X'68', " BLOB62 ", X'73', 1);"
			    "INSERT INTO signing_keys (kid, uri, jwk_json, status, created_at) "
			    "VALUES (" BLOB62 ", 'u', " BLOB62 ", " BLOB62 ", " BLOB62 ");"
			    "INSERT INTO audit_log VALUES (1, " BLOB62 ", " BLOB62 ", " BLOB62 ", NULL, " BLOB62 ", "
			    BLOB62 ", NULL, NULL, NULL, " BLOB62 ", NULL, NULL, zeroblob(32), zeroblob(32));"
			    "INSERT INTO audit_checkpoints (first_seq, last_seq, head_hash, ts, node, kind, jws) "
			    "VALUES (1, 1, zeroblob(32), " BLOB62 ", " BLOB62 ", " BLOB62 ", " BLOB62 ");"
			    /* signed_sha256 as text: what the lookup by digest compares */
			    "INSERT INTO signatures VALUES ('sig-1', " BLOB62 ", 'jws', " BLOB62 ", " BLOB62 ", " BLOB62
			    ", '" TEXT62 "', " BLOB62 ", " BLOB62 ", " BLOB62 ", " BLOB62 ", " BLOB62 ", 1);");
	sqlite3_close(raw);
	assert_int_equal(read_all(s), 1);

	int failures = 0, n;
	int devnull = open("/dev/null", O_WRONLY);
	cs_log_configure(CS_LOG_ERROR, CS_LOG_LOGFMT, devnull); /* thousands of expected errors */
	for (n = 0; n < 5000; n++) {
		sqlf_fail_at(n);
		int ok = read_all(s);
		long left = sqlf_disarm();
		if (left >= 0) { /* fewer allocations than n: every one has failed once */
			assert_int_equal(ok, 1);
			break;
		}
		failures += !ok;
	}
	cs_log_configure(CS_LOG_INFO, CS_LOG_LOGFMT, 2);
	close(devnull);
	print_message("failed each of %d allocations in turn: %d reads failed cleanly\n", n, failures);
	assert_true(n < 5000);
	assert_true(failures > 0);
	assert_int_equal(read_all(s), 1); /* and the connection still works */
	cs_store_close(s);
}

/* ---- concurrent checkpoints never overlap -------------------------------------- */

typedef struct {
	const char *path;
	int purger;
	atomic_int *signatures;
} writer_arg;

/* A writer of its own (as another process would be): appends and
 * checkpoints through a ledger with its writer thread, or purges through
 * one without (as credsign-admin does). */
static void *checkpoint_writer(void *p)
{
	writer_arg *w = p;
	cs_ledger *l = NULL;
	if (cs_ledger_open(w->path, 5000, &l) != CS_OK || (!w->purger && cs_ledger_start(l) != CS_OK)) {
		cs_ledger_close(l);
		return (void *)1;
	}
	uintptr_t bad = 0;
	for (int i = 0; i < (w->purger ? 12 : 120) && !bad; i++) {
		int64_t first = 0, last = 0;
		if (w->purger) {
			sleep_ms(8);
			bad = cs_ledger_audit_purge(l, "9999-12-31T00:00:00.000Z", "purger", fake_sign,
						    w->signatures, &first, &last) != CS_OK;
		} else {
			cs_audit_entry e = entry("test.write");
			bad = cs_ledger_audit_append(l, &e) != CS_OK ||
			      cs_ledger_checkpoint_make(l, "writer", "periodic", fake_sign, w->signatures, &first,
							&last) != CS_OK;
		}
	}
	cs_ledger_close(l);
	return (void *)bad;
}

typedef struct {
	int64_t first, last, id;
	uint8_t head[32];
	int purge;
} cp_row;

typedef struct {
	cp_row rows[1024];
	int n;
} cp_list;

static int collect_cp(void *arg, int64_t first, int64_t last, const uint8_t head[32], const char *ts,
		      const char *node, const char *kind, const char *jws)
{
	(void)ts;
	(void)node;
	(void)jws;
	cp_list *l = arg;
	assert_true(l->n < 1024);
	cp_row *c = &l->rows[l->n++];
	c->first = first;
	c->last = last;
	memcpy(c->head, head, 32);
	c->purge = strcmp(kind, "purge") == 0;
	return 0;
}

static int check_heads(void *arg, const cs_audit_entry *e, const uint8_t prev[32], const uint8_t hash[32])
{
	const cp_list *l = arg;
	for (int i = 0; i < l->n; i++) {
		if (l->rows[i].last == e->seq)
			assert_memory_equal(l->rows[i].head, hash, 32);
		if (l->rows[i].last + 1 == e->seq && l->rows[i].purge)
			assert_memory_equal(l->rows[i].head, prev, 32); /* the chain goes on from it */
	}
	return 0;
}

static void test_concurrent_checkpoints_do_not_overlap(void **state)
{
	(void)state;
	char path[600];
	new_db(path, sizeof(path));
	cs_store *s = NULL;
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	atomic_int signatures = 0;
	writer_arg args[3] = {{path, 0, &signatures}, {path, 0, &signatures}, {path, 1, &signatures}};
	pthread_t t[3];
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&t[i], NULL, checkpoint_writer, &args[i]), 0);
	for (int i = 0; i < 3; i++) {
		void *bad = NULL;
		pthread_join(t[i], &bad);
		assert_null(bad);
	}
	static cp_list l;
	l.n = 0;
	assert_int_equal(cs_store_checkpoints_each(s, collect_cp, &l), CS_OK);
	int64_t covered = 0, purged = 0;
	int periodic = 0, purges = 0;
	for (int i = 0; i < l.n; i++) {
		const cp_row *c = &l.rows[i];
		assert_true(c->first <= c->last);
		if (c->purge) {
			/* a purge covers from the oldest entry kept: right after the last purge */
			if (c->first != purged + 1)
				fail_msg("purge checkpoint %lld..%lld after a purge up to %lld",
					 (long long)c->first, (long long)c->last, (long long)purged);
			purged = c->last;
			purges++;
		} else {
			/* any other starts right after everything covered before it */
			if (c->first != covered + 1)
				fail_msg("checkpoint %lld..%lld overlaps or leaves a gap after %lld",
					 (long long)c->first, (long long)c->last, (long long)covered);
			periodic++;
		}
		if (c->last > covered)
			covered = c->last;
	}
	assert_int_equal(cs_store_audit_each(s, 1, 0, check_heads, &l), CS_OK);
	print_message("%d periodic and %d purge checkpoints from %d signatures\n", periodic, purges,
		      atomic_load(&signatures));
	assert_true(periodic > 0 && purges > 0);
	cs_store_close(s);
}

/* ---- ts along seq ------------------------------------------------------------ */

/* Threads 0 and 1 share a ledger with its writer thread; 2 and 3 each
 * write through a ledger of their own without one (other processes). */
typedef struct {
	const char *path;
	cs_ledger *shared;
} ts_arg;

static void *ts_writer(void *p)
{
	ts_arg *a = p;
	cs_ledger *own = NULL, *l = a->shared;
	if (l == NULL) {
		if (cs_ledger_open(a->path, 5000, &own) != CS_OK)
			return (void *)1;
		l = own;
	}
	uintptr_t bad = 0;
	for (int i = 0; i < 150 && !bad; i++) {
		char ts[32];
		cs_audit_entry e = entry("test.write");
		if (i % 2) { /* the time taken before the write lock, as some callers do */
			cs_audit_now(ts);
			e.ts = ts;
			if (i % 3 == 0)
				sleep_ms(1);
		}
		bad = cs_ledger_audit_append(l, &e) != CS_OK || e.seq < 1 || e.ts != e.ts_buf;
	}
	cs_ledger_close(own);
	return (void *)bad;
}

typedef struct {
	char prev[32];
	int64_t decreases, entries;
} order_ctx;

static int check_order(void *arg, const cs_audit_entry *e, const uint8_t prev[32], const uint8_t hash[32])
{
	(void)prev;
	(void)hash;
	order_ctx *o = arg;
	if (o->prev[0] != '\0' && strcmp(e->ts, o->prev) < 0)
		o->decreases++;
	snprintf(o->prev, sizeof(o->prev), "%s", e->ts);
	o->entries++;
	return 0;
}

static void test_ts_non_decreasing_along_seq(void **state)
{
	(void)state;
	char path[600];
	new_db(path, sizeof(path));
	cs_store *s = NULL;
	cs_ledger *shared = NULL;
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	assert_int_equal(cs_ledger_open(path, 5000, &shared), CS_OK);
	assert_int_equal(cs_ledger_start(shared), CS_OK);
	ts_arg args[4] = {{path, shared}, {path, shared}, {path, NULL}, {path, NULL}};
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, ts_writer, &args[i]), 0);
	for (int i = 0; i < 4; i++) {
		void *bad = NULL;
		pthread_join(t[i], &bad);
		assert_null(bad);
	}
	order_ctx o = {.prev = ""};
	assert_int_equal(cs_store_audit_each(s, 1, 0, check_order, &o), CS_OK);
	assert_int_equal(o.entries, 600);
	if (o.decreases != 0)
		fail_msg("%lld entries carry a time earlier than the entry before them", (long long)o.decreases);

	/* a clock stepped back: the entry keeps the time of the one before */
	cs_audit_entry e = entry("test.clock");
	e.ts = "2000-01-01T00:00:00.000Z";
	assert_int_equal(cs_ledger_audit_append(shared, &e), CS_OK);
	assert_int_equal(e.seq, 601);
	assert_string_equal(e.ts, o.prev);
	o = (order_ctx){.prev = ""};
	assert_int_equal(cs_store_audit_each(s, 1, 0, check_order, &o), CS_OK);
	assert_int_equal(o.entries, 601);
	assert_int_equal(o.decreases, 0);
	assert_string_equal(o.prev, e.ts); /* what the caller was told is what was written */

	/* and the chain, with those times, verifies */
	json_t *jwks = json_pack("{s:[]}", "keys");
	cs_audit_report rep;
	assert_int_equal(cs_audit_verify(s, jwks, 0, &rep), CS_OK);
	assert_true(rep.intact);
	assert_int_equal(rep.entries, 601);
	assert_int_equal(rep.ts_ordered_from, 1);
	assert_int_equal(rep.ts_warnings, 0);
	json_decref(jwks);
	cs_ledger_close(shared);
	cs_store_close(s);
}

/* Insert entry seq with the given ts, chained to prev; its hash in out. */
static void raw_entry(sqlite3 *db, int64_t seq, const char *ts, const uint8_t prev[32], uint8_t out[32])
{
	cs_audit_entry e = entry("test.raw");
	e.seq = seq;
	e.ts = ts;
	assert_int_equal(cs_audit_hash(NULL, prev, &e, out), CS_OK);
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO audit_log (seq, ts, node, actor, role, action, outcome, "
						"prev_hash, entry_hash) VALUES (?,?,?,?,?,?,?,?,?)", -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_text(st, 2, ts, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, e.node, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, e.actor, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, e.role, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, e.action, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, e.outcome, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 8, prev, 32, SQLITE_STATIC);
	sqlite3_bind_blob(st, 9, out, 32, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
}

static void test_verify_ts_order(void **state)
{
	(void)state;
	char path[600];
	new_db(path, sizeof(path));
	cs_store *s = NULL;
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	/* a log that goes back in time at entry 3 (well chained) */
	sqlite3 *raw = ts_sqlite_open(path);
	uint8_t h[4][32] = {{0}};
	raw_entry(raw, 1, "2026-01-01T00:00:01.000Z", h[0], h[1]);
	raw_entry(raw, 2, "2026-01-01T00:00:03.000Z", h[1], h[2]);
	raw_entry(raw, 3, "2026-01-01T00:00:02.000Z", h[2], h[3]);
	json_t *jwks = json_pack("{s:[]}", "keys");
	cs_audit_report rep;
	/* written where the store guarantees the order: a problem */
	assert_int_equal(cs_audit_verify(s, jwks, 0, &rep), CS_OK);
	assert_false(rep.intact);
	assert_int_equal(rep.bad_seq, 3);
	assert_non_null(strstr(rep.reason, "earlier than entry 2"));
	/* written before the store guaranteed it (an older version): a warning */
	ts_sqlite_exec(raw, "UPDATE store_meta SET value = 4 WHERE name = 'audit_ts_ordered_from_seq'");
	assert_int_equal(cs_audit_verify(s, jwks, 0, &rep), CS_OK);
	assert_true(rep.intact);
	assert_int_equal(rep.entries, 3);
	assert_int_equal(rep.ts_ordered_from, 4);
	assert_int_equal(rep.ts_warnings, 1);
	assert_int_equal(rep.ts_warning_first_seq, 3);
	/* an upgraded store (version 3, as that version created it): the order is
	 * guaranteed from the next entry on, and each certificate's claims are
	 * kept once, in its JWS */
	char path2[600];
	new_db(path2, sizeof(path2));
	sqlite3 *old = ts_sqlite_open(path2);
	ts_sqlite_exec(old, ts_store_v3_schema);
	ts_sqlite_exec(old, "INSERT INTO signing_keys (kid, uri, jwk_json, status) VALUES ('k', 'u', '{}', 'active');"
			    "INSERT INTO generation_sessions VALUES ('s1', 1, 9e15, 'ab', '{\"a\":1}', 'c1');"
			    "INSERT INTO generation_sessions VALUES ('s2', 1, 9e15, 'ab', '{\"b\":2}', NULL);"
			    /* the JSON copy beside the JWS may differ: the JWS is what was signed */
			    "INSERT INTO certificates VALUES ('c1', 's1', 'k', 'h.eyJhIjoxfQ.s', '{\"a\": 1}', 1);");
	raw_entry(old, 1, "2026-01-01T00:00:01.000Z", h[0], h[1]);
	raw_entry(old, 2, "2026-01-01T00:00:00.500Z", h[1], h[2]);
	ts_sqlite_exec(old, "PRAGMA user_version = 3");
	sqlite3_close(old);
	cs_store *up = NULL;
	int64_t from = 0;
	assert_int_equal(cs_store_open(path2, &up), CS_OK);
	assert_int_equal(cs_store_audit_ts_ordered_from(up, &from), CS_OK);
	assert_int_equal(from, 3);
	assert_int_equal(cs_audit_verify(up, jwks, 0, &rep), CS_OK);
	assert_true(rep.intact);
	assert_int_equal(rep.ts_warnings, 1);
	char *jws = NULL, *claims = NULL;
	assert_int_equal(cs_ledger_cert_get(up, "c1", &jws, &claims), CS_OK);
	assert_string_equal(jws, "h.eyJhIjoxfQ.s");
	assert_string_equal(claims, "{\"a\":1}"); /* the JWS's payload */
	free(jws);
	free(claims);
	assert_int_equal(cs_ledger_session_claims(up, "s1", "ab", 0, &claims), CS_E_SESSION_USED);
	assert_int_equal(cs_ledger_session_claims(up, "s2", "ab", 0, &claims), CS_OK);
	assert_string_equal(claims, "{\"b\":2}");
	free(claims);
	cs_store_close(up);
	old = ts_sqlite_open(path2);
	sqlite3_stmt *st = NULL;
	/* no second copy of a certificate's claims, nor a third in its session */
	assert_int_equal(sqlite3_prepare_v2(old, "SELECT (SELECT group_concat(name) FROM pragma_table_info('certificates')), "
						 "(SELECT group_concat(name) FROM pragma_table_info('generation_sessions')), "
						 "(SELECT group_concat(session_id) FROM session_claims), "
						 "(SELECT user_version FROM pragma_user_version)", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0),
			    "id,session_id,kid,header,claims_json,signature,created_ms");
	assert_string_equal((const char *)sqlite3_column_text(st, 1), "id,created_ms,expires_ms,cert_sha256,cert_id");
	assert_string_equal((const char *)sqlite3_column_text(st, 2), "s2");
	assert_int_equal(sqlite3_column_int(st, 3), 10);
	sqlite3_finalize(st);
	/* a schema newer than the program is refused */
	ts_sqlite_exec(old, "PRAGMA user_version = 99");
	sqlite3_close(old);
	assert_int_equal(cs_store_open(path2, &up), CS_E_STORE_SCHEMA);
	assert_null(up);
	json_decref(jwks);
	sqlite3_close(raw);
	cs_store_close(s);
}

/* ---- the schema's guards ---------------------------------------------------------- */

/* The guards every open checks (store.h): a store without one is refused. */
static const char *const guard_names[] = {
	"signing_keys_one_active",     "signing_keys_lifecycle",      "signing_keys_destroyed",
	"signing_keys_no_delete",      "ceremonies_once",             "ceremonies_no_delete",
	"ceremony_approvals_no_update", "ceremony_approvals_no_delete", "key_rollovers_no_update",
	"key_rollovers_no_delete",     "cert_revocations_count",      "cert_revocations_no_update",
	"cert_revocations_no_delete",  "signing_keys_profile",        "signatures_no_update",
	"signatures_no_delete",
};

/* What the store logged at error level while fn ran on path (static). */
static const char *errors_of(cs_err (*fn)(const char *, cs_store **), const char *path, cs_err want)
{
	static char text[4096];
	char file[600];
	snprintf(file, sizeof(file), "%s/log.txt", dir);
	int fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	cs_log_configure(CS_LOG_ERROR, CS_LOG_TEXT, fd);
	cs_store *s = NULL;
	cs_err r = fn(path, &s);
	cs_log_configure(CS_LOG_INFO, CS_LOG_LOGFMT, STDERR_FILENO);
	ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
	close(fd);
	text[n > 0 ? n : 0] = '\0';
	cs_store_close(s);
	if (r != want)
		fail_msg("%s: %s, not %s: %s", path, cs_strerror(r), cs_strerror(want), text);
	assert_true(want != CS_OK || s != NULL);
	return text;
}

/* The CREATE statement of a schema object (malloc'd), NULL when missing. */
static char *schema_sql(sqlite3 *raw, const char *name)
{
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_prepare_v2(raw, "SELECT sql FROM sqlite_master WHERE name = ?", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	char *sql = sqlite3_step(st) == SQLITE_ROW ? strdup((const char *)sqlite3_column_text(st, 0)) : NULL;
	sqlite3_finalize(st);
	return sql;
}

static void test_guards_checked_at_open(void **state)
{
	(void)state;
	char path[600], q[1024], want[256];
	new_db(path, sizeof(path));
	errors_of(cs_store_open, path, CS_OK);
	errors_of(cs_store_open_existing_readonly, path, CS_OK);
	sqlite3 *raw = ts_sqlite_open(path);
	/* each guard dropped: refused, read-write and read-only, naming it */
	for (size_t i = 0; i < sizeof(guard_names) / sizeof(guard_names[0]); i++) {
		const char *name = guard_names[i];
		char *create = schema_sql(raw, name);
		assert_non_null(create);
		int index = strncmp(create, "CREATE UNIQUE INDEX", 19) == 0;
		snprintf(q, sizeof(q), "DROP %s %s", index ? "INDEX" : "TRIGGER", name);
		ts_sqlite_exec(raw, q);
		snprintf(want, sizeof(want), "tampered or damaged: %s %s missing", index ? "index" : "trigger", name);
		if (strstr(errors_of(cs_store_open, path, CS_E_STORE), want) == NULL ||
		    strstr(errors_of(cs_store_open_existing_readonly, path, CS_E_STORE), want) == NULL)
			fail_msg("%s dropped: not '%s'", name, want);
		/* put back as it was: opens again */
		ts_sqlite_exec(raw, create);
		errors_of(cs_store_open, path, CS_OK);
		free(create);
	}
	/* a guard replaced under its name by one that guards nothing */
	char *lifecycle = schema_sql(raw, "signing_keys_lifecycle");
	ts_sqlite_exec(raw, "DROP TRIGGER signing_keys_lifecycle;"
			    "CREATE TRIGGER signing_keys_lifecycle BEFORE UPDATE OF status ON signing_keys WHEN 0"
			    "  BEGIN SELECT RAISE(ABORT, 'never'); END;");
	assert_non_null(strstr(errors_of(cs_store_open_existing_readonly, path, CS_E_STORE),
			       "trigger signing_keys_lifecycle altered"));
	ts_sqlite_exec(raw, "DROP TRIGGER signing_keys_lifecycle");
	ts_sqlite_exec(raw, lifecycle);
	free(lifecycle);
	/* the audit log's triggers are its chain's to prove: audit verify still reads it */
	char *no_update = schema_sql(raw, "audit_log_no_update");
	ts_sqlite_exec(raw, "DROP TRIGGER audit_log_no_update");
	errors_of(cs_store_open, path, CS_OK);
	ts_sqlite_exec(raw, no_update);
	free(no_update);
	/* several keys active (the index dropped): the active key is a conflict,
	 * logged once on the connection */
	cs_store *s = NULL;
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	ts_sqlite_exec(raw, "INSERT INTO signing_keys (kid, uri, jwk_json, status) VALUES "
			    "('k1', 'pkcs11:object=k1', '{}', 'active'), ('k2', 'pkcs11:object=k2', '{}', 'pending');");
	cs_active_key k = {0};
	assert_int_equal(cs_store_key_active(s, &k), CS_OK);
	assert_string_equal(k.kid, "k1");
	cs_active_key_free(&k);
	char *one_active = schema_sql(raw, "signing_keys_one_active");
	ts_sqlite_exec(raw, "DROP INDEX signing_keys_one_active; UPDATE signing_keys SET status = 'active' WHERE kid = 'k2'");
	assert_int_equal(cs_store_key_active(s, &k), CS_E_CONFLICT);
	assert_null(k.kid);
	assert_null(k.uri);
	ts_sqlite_exec(raw, "UPDATE signing_keys SET status = 'pending' WHERE kid = 'k1'");
	assert_int_equal(cs_store_key_active(s, &k), CS_OK);
	assert_string_equal(k.kid, "k2");
	cs_active_key_free(&k);
	ts_sqlite_exec(raw, one_active);
	free(one_active);
	cs_store_close(s);
	sqlite3_close(raw);
}

/* ---- issue 15: schema 8 ------------------------------------------------------------ */

typedef struct {
	int n;
	char profiles[8][32]; /* "-" for NULL */
} profiles_seen;

static void see_profile(void *arg, const cs_key_info *k)
{
	profiles_seen *p = arg;
	if (p->n < 8)
		snprintf(p->profiles[p->n++], 32, "%s", k->profile != NULL ? k->profile : "-");
}

/* A store of schema 7 (what version 7 made, with keys in every state) is
 * migrated: its keys become certificate keys (profile NULL), its active
 * key stays the active one, the new guards are in place, and a profile's
 * key can be active beside the certificate key. */
static void test_migration_from_v7(void **state)
{
	(void)state;
	char path[600];
	new_db(path, sizeof(path));
	cs_store *s = NULL;
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	cs_store_close(s);
	/* back to version 7: what migrations 8 and 10 added, removed (SQLite cannot
	 * drop a column an index uses: the index first) */
	sqlite3 *raw = ts_sqlite_open(path);
	ts_sqlite_exec(raw, "DROP INDEX certificates_inventory; ALTER TABLE certificates DROP COLUMN system;"
			    "ALTER TABLE certificates DROP COLUMN environment; ALTER TABLE certificates DROP COLUMN project;"
			    "DROP TABLE store_nodes; DROP TRIGGER signatures_no_update; DROP TRIGGER signatures_no_delete;"
			    "DROP INDEX signatures_profile_kid; DROP TABLE signatures;"
			    "DROP TRIGGER signing_keys_profile; DROP INDEX signing_keys_one_active;"
			    "ALTER TABLE signing_keys DROP COLUMN profile;"
			    "CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys(status) WHERE status = 'active';"
			    "INSERT INTO signing_keys (kid, uri, jwk_json, status) VALUES"
			    "  ('k1', 'u1', '{}', 'retired'), ('k2', 'u2', '{}', 'active'), ('k3', 'u3', '{}', 'pending');"
			    "PRAGMA user_version = 7;");
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM pragma_table_info('signing_keys') WHERE name = 'profile'"), 0);
	sqlite3_close(raw);
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	raw = ts_sqlite_open(path);
	assert_int_equal(ts_sqlite_int(raw, "SELECT user_version FROM pragma_user_version"), 10);
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM signing_keys WHERE profile IS NULL"), 3);
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM sqlite_master WHERE name IN ('signatures', "
				      "'signatures_no_update', 'signatures_no_delete', 'signing_keys_profile', "
				      "'signatures_sha256')"), 5);
	profiles_seen seen = {0};
	assert_int_equal(cs_store_keys_info(s, see_profile, &seen), CS_OK);
	assert_int_equal(seen.n, 3);
	for (int i = 0; i < 3; i++)
		assert_string_equal(seen.profiles[i], "-");
	cs_active_key k = {0};
	assert_int_equal(cs_store_key_active(s, &k), CS_OK);
	assert_string_equal(k.kid, "k2");
	cs_active_key_free(&k);
	assert_int_equal(cs_store_key_active_in(s, "release", &k), CS_E_NOT_FOUND);
	int ever = 0;
	assert_int_equal(cs_store_keys_ever_active(s, &ever), CS_OK);
	assert_int_equal(ever, 1);
	assert_int_equal(cs_store_keys_ever_active_in(s, "release", &ever), CS_OK);
	assert_int_equal(ever, 0);
	/* a profile key recorded and active beside the certificate key; a
	 * second certificate key active is still refused */
	assert_int_equal(cs_store_write_begin(s, 0), CS_OK);
	cs_key_info rk = {.kid = "r1", .uri = "ur", .jwk_json = "{}", .status = "active", .profile = "release"};
	cs_err r = cs_store_key_insert(s, &rk);
	assert_int_equal(cs_store_write_end(s, r), CS_OK);
	assert_int_equal(cs_store_key_active_in(s, "release", &k), CS_OK);
	assert_string_equal(k.kid, "r1");
	cs_active_key_free(&k);
	assert_int_equal(cs_store_key_active(s, &k), CS_OK);
	assert_string_equal(k.kid, "k2");
	cs_active_key_free(&k);
	char *msg = NULL;
	assert_int_not_equal(sqlite3_exec(raw, "UPDATE signing_keys SET status = 'active' WHERE kid = 'k3'", NULL, NULL,
					  &msg), SQLITE_OK);
	sqlite3_free(msg);
	/* opened again: the guards as migration 8 made them */
	cs_store_close(s);
	assert_int_equal(cs_store_open_existing_readonly(path, &s), CS_OK);
	cs_store_close(s);
	sqlite3_close(raw);
}

/* Several keys of a profile active (the index gone): that profile's
 * active key is a conflict, logged naming the profile; the certificate
 * key and other profiles are not affected. */
static void test_several_active_in_a_profile(void **state)
{
	(void)state;
	char path[600];
	new_db(path, sizeof(path));
	cs_store *s = NULL;
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	sqlite3 *raw = ts_sqlite_open(path);
	ts_sqlite_exec(raw, "INSERT INTO signing_keys (kid, uri, jwk_json, status, profile) VALUES"
			    "  ('c1', 'u', '{}', 'active', NULL), ('r1', 'u', '{}', 'active', 'release'),"
			    "  ('r2', 'u', '{}', 'pending', 'release'), ('t1', 'u', '{}', 'active', 'tokens');");
	char *one_active = schema_sql(raw, "signing_keys_one_active");
	assert_non_null(strstr(one_active, "coalesce(profile, '')"));
	ts_sqlite_exec(raw, "DROP INDEX signing_keys_one_active; UPDATE signing_keys SET status = 'active' WHERE kid = 'r2'");
	char file[600];
	snprintf(file, sizeof(file), "%s/log-several.txt", dir);
	int fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	cs_log_configure(CS_LOG_ERROR, CS_LOG_TEXT, fd);
	cs_active_key k = {0};
	cs_err r1 = cs_store_key_active_in(s, "release", &k);
	cs_err r2 = cs_store_key_active_in(s, "release", &k); /* logged once */
	cs_log_configure(CS_LOG_INFO, CS_LOG_LOGFMT, STDERR_FILENO);
	char text[2048];
	ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
	close(fd);
	text[n > 0 ? n : 0] = '\0';
	assert_int_equal(r1, CS_E_CONFLICT);
	assert_int_equal(r2, CS_E_CONFLICT);
	assert_null(k.kid);
	const char *hit = strstr(text, "store: 2 keys of profile release are active");
	assert_non_null(hit);
	assert_null(strstr(hit + 10, "keys of profile release are active"));
	assert_int_equal(cs_store_key_active(s, &k), CS_OK);
	assert_string_equal(k.kid, "c1");
	cs_active_key_free(&k);
	assert_int_equal(cs_store_key_active_in(s, "tokens", &k), CS_OK);
	assert_string_equal(k.kid, "t1");
	cs_active_key_free(&k);
	/* the index remade: refused at open until then */
	cs_store_close(s);
	ts_sqlite_exec(raw, "UPDATE signing_keys SET status = 'retired' WHERE kid = 'r1'");
	ts_sqlite_exec(raw, one_active);
	free(one_active);
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	assert_int_equal(cs_store_key_active_in(s, "release", &k), CS_OK);
	assert_string_equal(k.kid, "r2");
	cs_active_key_free(&k);
	cs_store_close(s);
	sqlite3_close(raw);
}

/* ---- signatures by the SHA-256 of their bytes ---------------------------------------- */

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

typedef struct {
	int n, stop_after; /* stop_after 0: never */
	char ids[16][32];
	int64_t seqs[16];
	size_t payload_len[16];
	int has_payload[16];
	char fields[256]; /* the first record's other fields, joined */
} found_sigs;

static int see_signature(void *arg, const cs_signature_record *r)
{
	found_sigs *f = arg;
	if (f->n < 16) {
		if (f->n == 0)
			snprintf(f->fields, sizeof(f->fields), "%s|%s|%s|%s|%s|%s|%s|%s|%s|%s", r->profile, r->format,
				 r->requester, r->requester_cert_sha256, r->created_at, r->signed_sha256, r->kid,
				 r->signature, r->signature_der != NULL ? r->signature_der : "-",
				 r->payload_type != NULL ? r->payload_type : "-");
		snprintf(f->ids[f->n], sizeof(f->ids[0]), "%s", r->id);
		f->seqs[f->n] = r->audit_seq;
		f->has_payload[f->n] = r->payload != NULL;
		f->payload_len[f->n] = r->payload_len;
		if (r->payload != NULL && r->payload_len == 5)
			assert_memory_equal(r->payload, "hello", 5);
	}
	f->n++;
	return f->stop_after > 0 && f->n >= f->stop_after;
}

/* s1..s5: SHA_A at seqs 10, 30, 20 (inserted out of order), 40; s4 of
 * SHA_B at 35. s2 keeps a payload, s3 an empty one. */
static void insert_signatures(cs_store *s)
{
	assert_int_equal(cs_store_write_begin(s, 0), CS_OK);
	cs_key_info key = {.kid = "rk", .uri = "u", .jwk_json = "{}", .status = "active", .profile = "release"};
	cs_err r = cs_store_key_insert(s, &key);
	static const struct {
		const char *id, *sha;
		int64_t seq;
		const char *payload;
	} rows[] = {{"s1", SHA_A, 10, NULL}, {"s2", SHA_A, 30, "hello"}, {"s3", SHA_A, 20, ""},
		    {"s4", SHA_B, 35, NULL}, {"s5", SHA_A, 40, NULL}};
	for (size_t i = 0; r == CS_OK && i < sizeof(rows) / sizeof(rows[0]); i++) {
		cs_signature_record g = {.id = rows[i].id, .profile = "release", .format = "digest",
					 .requester = "spiffe://ci", .requester_cert_sha256 = "cc",
					 .created_at = "2025-01-01T00:00:00Z", .signed_sha256 = rows[i].sha,
					 .kid = "rk", .signature = "sig", .signature_der = "der",
					 .audit_seq = rows[i].seq};
		if (rows[i].payload != NULL) {
			g.payload = (const unsigned char *)rows[i].payload;
			g.payload_len = strlen(rows[i].payload);
		}
		r = cs_store_signature_insert(s, &g);
	}
	assert_int_equal(cs_store_write_end(s, r), CS_OK);
	assert_int_equal(r, CS_OK);
}

static void test_signatures_by_sha256(void **state)
{
	(void)state;
	char path[600];
	new_db(path, sizeof(path));
	cs_store *s = NULL;
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	insert_signatures(s);
	/* that digest's only, newest first */
	found_sigs f = {0};
	assert_int_equal(cs_store_signatures_by_sha256(s, SHA_A, 100, see_signature, &f), CS_OK);
	assert_int_equal(f.n, 4);
	static const char *const order[] = {"s5", "s2", "s3", "s1"};
	static const int64_t seqs[] = {40, 30, 20, 10};
	for (int i = 0; i < 4; i++) {
		assert_string_equal(f.ids[i], order[i]);
		assert_int_equal(f.seqs[i], seqs[i]);
	}
	assert_string_equal(f.fields, "release|digest|spiffe://ci|cc|2025-01-01T00:00:00Z|" SHA_A "|rk|sig|der|-");
	/* the payload as stored: none, bytes, none stored, empty */
	assert_false(f.has_payload[0]);
	assert_true(f.has_payload[1]);
	assert_int_equal(f.payload_len[1], 5);
	assert_true(f.has_payload[2]);
	assert_int_equal(f.payload_len[2], 0);
	assert_false(f.has_payload[3]);
	/* the limit, and a callback that stops */
	memset(&f, 0, sizeof(f));
	assert_int_equal(cs_store_signatures_by_sha256(s, SHA_A, 2, see_signature, &f), CS_OK);
	assert_int_equal(f.n, 2);
	assert_string_equal(f.ids[1], "s2");
	memset(&f, 0, sizeof(f));
	f.stop_after = 3;
	assert_int_equal(cs_store_signatures_by_sha256(s, SHA_A, 100, see_signature, &f), CS_OK);
	assert_int_equal(f.n, 3);
	/* the other digest; one never signed: no call; upper case is not the same digest */
	memset(&f, 0, sizeof(f));
	assert_int_equal(cs_store_signatures_by_sha256(s, SHA_B, 100, see_signature, &f), CS_OK);
	assert_int_equal(f.n, 1);
	assert_string_equal(f.ids[0], "s4");
	memset(&f, 0, sizeof(f));
	assert_int_equal(cs_store_signatures_by_sha256(s, "cc", 100, see_signature, &f), CS_OK);
	assert_int_equal(cs_store_signatures_by_sha256(s, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
						       100, see_signature, &f),
			 CS_OK);
	assert_int_equal(f.n, 0);
	assert_int_equal(cs_store_signatures_by_sha256(s, SHA_A, 0, see_signature, &f), CS_E_INVALID_ARG);
	assert_int_equal(f.n, 0);
	/* a NULL callback reads and stops at nothing */
	assert_int_equal(cs_store_signatures_by_sha256(s, SHA_A, 100, NULL, NULL), CS_OK);
	/* through the index of migration 8, no sort */
	sqlite3 *raw = ts_sqlite_open(path);
	char *index = schema_sql(raw, "signatures_sha256");
	assert_non_null(index);
	assert_non_null(strstr(index, "signatures(signed_sha256, audit_seq)"));
	free(index);
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_prepare_v2(raw,
					    "EXPLAIN QUERY PLAN SELECT id FROM signatures WHERE signed_sha256 = ?1 "
					    "ORDER BY audit_seq DESC LIMIT ?2",
					    -1, &st, NULL),
			 SQLITE_OK);
	int uses_index = 0, sorts = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *detail = (const char *)sqlite3_column_text(st, 3);
		uses_index |= detail != NULL && strstr(detail, "signatures_sha256") != NULL;
		sorts |= detail != NULL && strstr(detail, "TEMP B-TREE") != NULL;
	}
	sqlite3_finalize(st);
	assert_true(uses_index);
	assert_false(sorts);
	sqlite3_close(raw);
	cs_store_close(s);
}

/* What a key signed: "formats_signed" of a profile's JWKS. */
static void formats_of(cs_store *s, const char *profile, const char *kid, char *out, size_t n)
{
	const char *f[CS_STORE_SIG_FORMATS + 1] = {"x", "x", "x", "x"};
	assert_int_equal(cs_store_key_formats_signed(s, profile, kid, f), CS_OK);
	out[0] = '\0';
	for (size_t i = 0; i < CS_STORE_SIG_FORMATS && f[i] != NULL; i++)
		snprintf(out + strlen(out), n - strlen(out), "%s%s", i > 0 ? "," : "", f[i]);
}

/* The formats a key signed, sorted, from its records only (not another
 * key's, not another profile's), one query through the index on
 * (profile, kid, format): lookups, never a scan of the key's records;
 * an allocation failing in SQLite fails the read cleanly. */
static void test_key_formats_signed(void **state)
{
	(void)state;
	char path[600];
	new_db(path, sizeof(path));
	cs_store *s = NULL;
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	assert_int_equal(cs_store_write_begin(s, 0), CS_OK);
	static const struct {
		const char *kid, *profile;
	} keys[] = {{"k1", "release"}, {"k2", "release"}, {"t1", "tokens"}, {"c1", NULL}};
	cs_err r = CS_OK;
	for (size_t i = 0; r == CS_OK && i < sizeof(keys) / sizeof(keys[0]); i++) {
		cs_key_info key = {.kid = keys[i].kid, .uri = keys[i].kid, .jwk_json = "{}", .status = "retired",
				   .profile = keys[i].profile};
		r = cs_store_key_insert(s, &key);
	}
	assert_int_equal(cs_store_write_end(s, r), CS_OK);
	assert_int_equal(r, CS_OK);
	char got[64];
	formats_of(s, "release", "k1", got, sizeof(got));
	assert_string_equal(got, ""); /* nothing signed yet */

	static const struct {
		const char *id, *profile, *format, *kid;
	} sigs[] = {{"a", "release", "jws", "k1"},    {"b", "release", "digest", "k1"}, {"c", "release", "jws", "k1"},
		    {"d", "release", "dsse", "k2"},   {"e", "tokens", "jws", "t1"},     {"f", "tokens", "digest", "t1"},
		    {"g", "tokens", "digest", "t1"}};
	assert_int_equal(cs_store_write_begin(s, 0), CS_OK);
	for (size_t i = 0; r == CS_OK && i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		cs_signature_record g = {.id = sigs[i].id, .profile = sigs[i].profile, .format = sigs[i].format,
					 .requester = "spiffe://ci", .requester_cert_sha256 = "cc",
					 .created_at = "2025-01-01T00:00:00Z", .signed_sha256 = SHA_A,
					 .kid = sigs[i].kid, .signature = "sig", .audit_seq = (int64_t)i + 1};
		r = cs_store_signature_insert(s, &g);
	}
	assert_int_equal(cs_store_write_end(s, r), CS_OK);
	assert_int_equal(r, CS_OK);

	formats_of(s, "release", "k1", got, sizeof(got));
	assert_string_equal(got, "digest,jws");
	formats_of(s, "release", "k2", got, sizeof(got));
	assert_string_equal(got, "dsse");
	formats_of(s, "tokens", "t1", got, sizeof(got));
	assert_string_equal(got, "digest,jws");
	/* another profile's name, a kid never recorded, the certificate key, NULL */
	formats_of(s, "tokens", "k1", got, sizeof(got));
	assert_string_equal(got, "");
	formats_of(s, "release", "nope", got, sizeof(got));
	assert_string_equal(got, "");
	formats_of(s, NULL, "c1", got, sizeof(got));
	assert_string_equal(got, "");
	formats_of(s, "release", NULL, got, sizeof(got));
	assert_string_equal(got, "");

	/* the index of migration 8 covers the format: one search per format */
	sqlite3 *raw = ts_sqlite_open(path);
	char *index = schema_sql(raw, "signatures_profile_kid");
	assert_non_null(index);
	assert_non_null(strstr(index, "signatures(profile, kid, format)"));
	free(index);
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_prepare_v2(raw,
					    "EXPLAIN QUERY PLAN SELECT "
					    "EXISTS (SELECT 1 FROM signatures WHERE profile = ?1 AND kid = ?2 AND format = 'digest'), "
					    "EXISTS (SELECT 1 FROM signatures WHERE profile = ?1 AND kid = ?2 AND format = 'dsse'), "
					    "EXISTS (SELECT 1 FROM signatures WHERE profile = ?1 AND kid = ?2 AND format = 'jws')",
					    -1, &st, NULL),
			 SQLITE_OK);
	int searches = 0, scans = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *detail = (const char *)sqlite3_column_text(st, 3);
		searches += detail != NULL && strstr(detail, "SEARCH signatures USING COVERING INDEX signatures_profile_kid "
							 "(profile=? AND kid=? AND format=?)") != NULL;
		scans += detail != NULL && strstr(detail, "SCAN signatures") != NULL;
	}
	sqlite3_finalize(st);
	assert_int_equal(searches, 3);
	assert_int_equal(scans, 0);
	sqlite3_close(raw);

	/* each allocation SQLite makes for it failed in turn: a clean failure */
	int failures = 0, n;
	int devnull = open("/dev/null", O_WRONLY);
	cs_log_configure(CS_LOG_ERROR, CS_LOG_LOGFMT, devnull);
	for (n = 0; n < 1000; n++) {
		const char *f[CS_STORE_SIG_FORMATS + 1] = {"x", "x", "x", "x"};
		sqlf_fail_at(n);
		r = cs_store_key_formats_signed(s, "tokens", "t1", f);
		long left = sqlf_disarm();
		if (r == CS_OK) {
			assert_string_equal(f[0], "digest");
			assert_string_equal(f[1], "jws");
			assert_null(f[2]);
		} else {
			assert_true(r == CS_E_NOMEM || r == CS_E_STORE);
			assert_null(f[0]);
			failures++;
		}
		if (left >= 0)
			break;
	}
	cs_log_configure(CS_LOG_INFO, CS_LOG_LOGFMT, 2);
	close(devnull);
	assert_true(n < 1000);
	formats_of(s, "release", "k1", got, sizeof(got));
	assert_string_equal(got, "digest,jws"); /* and the connection still works */
	cs_store_close(s);
}

static int setup(void **state)
{
	(void)state;
	return ts_scratch_dir(dir, sizeof(dir), "store-test", 0, 0700);
}

static int teardown(void **state)
{
	(void)state;
	return ts_scratch_remove(dir);
}

int main(void)
{
	/* SQLite allocates through sqlite_fault.c, one allocation at a time */
	if (sqlf_install() != 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_store_write_ends_its_deadline),
		cmocka_unit_test(test_failed_write_fails_in_time),
		cmocka_unit_test(test_write_health_recovers),
		cmocka_unit_test(test_reads_under_allocation_failure),
		cmocka_unit_test(test_concurrent_checkpoints_do_not_overlap),
		cmocka_unit_test(test_ts_non_decreasing_along_seq),
		cmocka_unit_test(test_verify_ts_order),
		cmocka_unit_test(test_guards_checked_at_open),
		cmocka_unit_test(test_migration_from_v7),
		cmocka_unit_test(test_several_active_in_a_profile),
		cmocka_unit_test(test_signatures_by_sha256),
		cmocka_unit_test(test_key_formats_signed),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
