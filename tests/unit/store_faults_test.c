/*
 * store_faults_test: the SQLite store when something goes wrong (issue 18),
 * with real databases in a temporary directory.
 *
 *  - open: a path in a missing directory, a directory, a file that is not
 *    a database, a store the service account may not write or read (a
 *    child that drops to the credsign account when the test runs as root), and the
 *    read-only open of a missing file, of a store at another schema
 *    version and of garbage: each refused (CS_E_STORE), nothing created
 *    or changed;
 *  - migration 5 refuses a certificate that is not a compact JWS (one dot,
 *    three, a payload not base64url or holding a NUL): the store stays at
 *    version 3, unchanged, and migrates once the row is a JWS;
 *  - migrations under allocation failure: each of SQLite's allocations
 *    during the open of a new store fails in turn; a failed open leaves
 *    the store at version 0 or 9, never between, and the next open
 *    migrates it;
 *  - every write of store.h in one write transaction, each of SQLite's
 *    allocations failed in turn on a fresh connection (every statement
 *    prepared anew): the transaction commits all of its rows or none;
 *    then every read of store.h the same way (rows held as BLOBs among
 *    them: their text is a conversion that allocates): an error, or the
 *    right data;
 *  - the write deadline aborts a write that is running (a statement slowed
 *    by a trigger), in time, through the store and through the ledger: the
 *    row is not stored, a later read on the connection is not cut short; a
 *    deadline already passed refuses to begin;
 *  - certify failing part-way (the certificate insert refused after the
 *    session was claimed): CS_E_STORE, the session still unclaimed with
 *    its claims, no certificate, no audit entry; then certified; a second
 *    certification of the session (no row changed by the claim) is
 *    CS_E_SESSION_USED and stores nothing;
 *  - a key's status set directly: retired stays retired (the schema's
 *    trigger refuses active again), an unknown key event is refused;
 *  - rows edited outside credsign: an audit head whose hash is not 32
 *    bytes, whose ts is too long, a missing revocations' count: CS_E_STORE;
 *  - a configuration whose store is incomplete (no path, no connection):
 *    CS_E_CONFIG, nothing opened.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "audit_chain.h"
#include "cs_log.h"
#include "ledger.h"
#include "sqlite_fault.h"
#include "store.h"
#include "store_target.h"
#include "test_support.h"

static char dir[512];
static int db_counter;

static void new_db(char *path, size_t n)
{
	snprintf(path, n, "%s/faults-%d.db", dir, ++db_counter);
}

/* Expected errors by the thousand: to /dev/null while fn runs. */
static int quiet_fd = -1;
static void quiet(int on)
{
	if (on) {
		quiet_fd = open("/dev/null", O_WRONLY);
		cs_log_configure(CS_LOG_ERROR, CS_LOG_LOGFMT, quiet_fd);
	} else {
		cs_log_configure(CS_LOG_INFO, CS_LOG_LOGFMT, 2);
		close(quiet_fd);
		quiet_fd = -1;
	}
}

/* ---- open failures ----------------------------------------------------------- */

static void file_of(const char *path, char *buf, size_t n, size_t *len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	*len = fread(buf, 1, n, f);
	fclose(f);
}

/* The open as the service account: its result, or -1 when it cannot run. */
static int open_as_service(const char *path, int readonly)
{
	struct passwd *pw = getpwnam("credsign");
	if (geteuid() != 0 || pw == NULL)
		return -1;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
			_exit(100);
		cs_store *s = NULL;
		cs_err r = readonly ? cs_store_open_existing_readonly(path, &s) : cs_store_open(path, &s);
		cs_store_close(s);
		_exit(r == CS_OK ? 0 : r == CS_E_STORE ? 1 : 2);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void test_open_failures(void **state)
{
	(void)state;
	char path[600], missing[700];
	cs_store *s = (cs_store *)&s; /* set to NULL by every refusal */

	/* a missing directory: refused, nothing created */
	snprintf(missing, sizeof(missing), "%s/no-such-dir/store.db", dir);
	assert_int_equal(cs_store_open(missing, &s), CS_E_STORE);
	assert_null(s);
	/* a directory where the file should be */
	assert_int_equal(cs_store_open(dir, &s), CS_E_STORE);
	assert_null(s);

	/* garbage: refused and left as it was */
	new_db(path, sizeof(path));
	static const char garbage[] = "this is not a SQLite database, but it is long enough to look like "
				      "a header of one; the store must refuse it and not touch it.........";
	ts_write_file(path, garbage, 0600);
	assert_int_equal(cs_store_open(path, &s), CS_E_STORE);
	assert_null(s);
	assert_int_equal(cs_store_open_existing_readonly(path, &s), CS_E_STORE);
	assert_null(s);
	char buf[512];
	size_t len = 0;
	file_of(path, buf, sizeof(buf), &len);
	assert_int_equal(len, strlen(garbage));
	assert_memory_equal(buf, garbage, len);

	/* read-only: a missing file is not created */
	snprintf(missing, sizeof(missing), "%s/absent.db", dir);
	assert_int_equal(cs_store_open_existing_readonly(missing, &s), CS_E_STORE);
	assert_null(s);
	assert_int_equal(access(missing, F_OK), -1);

	/* read-only: a store at another version is not read (nor migrated) */
	new_db(path, sizeof(path));
	sqlite3 *raw = ts_sqlite_open(path);
	ts_sqlite_exec(raw, "CREATE TABLE t (x); PRAGMA user_version = 3");
	sqlite3_close(raw);
	assert_int_equal(cs_store_open_existing_readonly(path, &s), CS_E_STORE);
	assert_null(s);
	assert_int_equal(ts_sqlite_path_int(path, "SELECT user_version FROM pragma_user_version"), 3);
	raw = ts_sqlite_open(path);
	ts_sqlite_exec(raw, "PRAGMA user_version = 99");
	sqlite3_close(raw);
	assert_int_equal(cs_store_open_existing_readonly(path, &s), CS_E_STORE);
	assert_int_equal(cs_store_open(path, &s), CS_E_STORE_SCHEMA);
	assert_null(s);
	assert_int_equal(ts_sqlite_path_int(path, "SELECT user_version FROM pragma_user_version"), 99);

	/* a store the service account may not write: refused at open (it
	 * cannot write), read-only open still works for it when readable */
	new_db(path, sizeof(path));
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	cs_store_close(s);
	assert_int_equal(chmod(dir, 0755), 0);
	assert_int_equal(chmod(path, 0644), 0);
	int rc = open_as_service(path, 0);
	if (rc < 0) {
		print_message("not root or no credsign account: permission cases skipped\n");
		return;
	}
	assert_int_equal(rc, 1);
	/* not even readable: refused both ways */
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(open_as_service(path, 0), 1);
	assert_int_equal(open_as_service(path, 1), 1);
	assert_int_equal(chmod(dir, 0700), 0);
}

/* SQLite's allocations during the open of a new store (its nine
 * migrations) fail one at a time: the first 50 each, then one in every
 * STRIDE (the open makes thousands; each is a new file). A failed open
 * leaves version 0 (the migration rolled back) or 10 (it failed after), and
 * a plain open afterwards works. */
#define STRIDE 241
static void test_migration_under_allocation_failure(void **state)
{
	(void)state;
	char path[600];
	int n, failures = 0, tried = 0;
	int64_t t0 = ts_mono_ms();
	quiet(1);
	for (n = 0; n < 100000; n += n < 50 ? 1 : STRIDE, tried++) {
		new_db(path, sizeof(path));
		cs_store *s = NULL;
		sqlf_fail_at(n);
		cs_err r = cs_store_open(path, &s);
		long left = sqlf_disarm();
		if (left >= 0) { /* every allocation failed once */
			assert_int_equal(r, CS_OK);
			cs_store_close(s);
			break;
		}
		if (r != CS_OK) {
			failures++;
			assert_null(s);
			assert_true(r == CS_E_STORE || r == CS_E_NOMEM);
			if (access(path, F_OK) == 0) {
				int64_t v = ts_sqlite_path_int(path, "SELECT user_version FROM pragma_user_version");
				if (v != 0 && v != 10)
					fail_msg("allocation %d: a failed open left schema version %lld", n,
						 (long long)v);
				if (v == 0)
					assert_int_equal(ts_sqlite_path_int(path, "SELECT count(*) FROM sqlite_master"), 0);
			}
			assert_int_equal(cs_store_open(path, &s), CS_OK);
		}
		cs_store_close(s);
		assert_int_equal(ts_sqlite_path_int(path, "SELECT user_version FROM pragma_user_version"), 10);
		unlink(path);
	}
	quiet(0);
	print_message("an open makes about %d allocations: %d failed, %d opens refused (%lld ms)\n", n, tried,
		      failures, (long long)(ts_mono_ms() - t0));
	assert_true(n < 100000);
	assert_true(failures > 0);
}

/* A version 3 store (as issue 4 left them) whose one certificate is jws. */
static void v3_store(const char *path, const char *jws)
{
	unlink(path);
	sqlite3 *old = ts_sqlite_open(path);
	ts_sqlite_exec(old, ts_store_v3_schema);
	ts_sqlite_exec(old, "INSERT INTO signing_keys (kid, uri, jwk_json, status) VALUES ('k', 'u', '{}', 'active');"
			    "INSERT INTO generation_sessions VALUES ('s1', 1, 9e15, 'ab', '{}', 'c1');"
			    "PRAGMA user_version = 3");
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_prepare_v2(old, "INSERT INTO certificates VALUES ('c1', 's1', 'k', ?, '{}', 1)", -1,
					    &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_text(st, 1, jws, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(old);
}

/* Migration 5 splits each certificate's JWS: one that is not a compact
 * JWS (one dot, three, a payload that is not base64url, a payload holding
 * a NUL) stops the migration; the store stays at version 3 as it was, and
 * migrates once the row is a JWS. */
static void test_migration_refuses_a_certificate_not_a_jws(void **state)
{
	(void)state;
	static const char *const bad[] = {"h.eyJhIjoxfQ", "h.eyJhIjoxfQ.s.x", "h.e!J9.s", "h.AA.s"};
	char path[600];
	new_db(path, sizeof(path));
	quiet(1);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v3_store(path, bad[i]);
		cs_store *s = (cs_store *)&s;
		cs_err r = cs_store_open(path, &s);
		if (r != CS_E_STORE)
			fail_msg("certificate %s: %s", bad[i], cs_strerror(r));
		assert_null(s);
		assert_int_equal(ts_sqlite_path_int(path, "SELECT user_version FROM pragma_user_version"), 3);
		assert_int_equal(ts_sqlite_path_int(path, "SELECT count(*) FROM pragma_table_info('certificates') WHERE name = 'jws'"),
				 1);
		assert_int_equal(ts_sqlite_path_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'session_claims'"), 0);
	}
	quiet(0);
	v3_store(path, "h.eyJhIjoxfQ.s");
	cs_store *s = NULL;
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	char *jws = NULL, *claims = NULL;
	assert_int_equal(cs_ledger_cert_get(s, "c1", &jws, &claims), CS_OK);
	assert_string_equal(jws, "h.eyJhIjoxfQ.s");
	assert_string_equal(claims, "{\"a\":1}");
	free(jws);
	free(claims);
	cs_store_close(s);
}

/* ---- every write and every read under allocation failure ------------------- */

/* The rows write_all(tag) makes, one query: all of them or none. */
#define WRITES_ROWS 14
static int64_t rows_of(const char *path, int tag)
{
	char sql[2048];
	snprintf(sql, sizeof(sql),
		 "SELECT (SELECT count(*) FROM generation_sessions WHERE id = 's-%d' AND cert_id = 'c-%d') + "
		 "(SELECT count(*) FROM certificates WHERE id = 'c-%d') + "
		 "(SELECT count(*) FROM signing_keys WHERE kid = 'k-%d' AND status = 'retired') + "
		 "(SELECT count(*) FROM signing_keys WHERE kid = 'p-%d' AND destroyed_at IS NOT NULL "
		 "  AND x5c_json = '[]') + "
		 "(SELECT count(*) FROM ceremonies WHERE id = 'cer-%d' AND state = 'executed') + "
		 "(SELECT count(*) FROM ceremony_approvals WHERE ceremony_id = 'cer-%d') + "
		 "(SELECT count(*) FROM key_rollovers WHERE ceremony_id = 'cer-%d') + "
		 "(SELECT count(*) FROM cert_revocations WHERE cert_id = 'c-%d') + "
		 "(SELECT count(*) FROM signatures WHERE id = 'g-%d') + "
		 "(SELECT count(*) FROM audit_log WHERE seq = %d) + "
		 "(SELECT count(*) FROM audit_checkpoints WHERE first_seq = %d) + "
		 "(SELECT count(*) FROM store_nodes WHERE node_id = 'n-%d') + "
		 "(SELECT count(*) FROM store_probe WHERE at_ms = %d) + "
		 "(SELECT count(*) FROM generation_sessions WHERE id = 'x-%d')",
		 tag, tag, tag, tag, tag, tag, tag, tag, tag, tag, tag + 1, tag + 1, tag, tag, tag);
	return ts_sqlite_path_int(path, sql);
}

/* One of each write, in one write transaction (a savepoint inside);
 * the ids carry tag. */
static cs_err write_all(cs_store *s, int tag)
{
	char sid[32], cid[32], kid[32], pid[32], cer[32], sig[32], node[32], xid[32];
	snprintf(sid, sizeof(sid), "s-%d", tag);
	snprintf(cid, sizeof(cid), "c-%d", tag);
	snprintf(kid, sizeof(kid), "k-%d", tag);
	snprintf(pid, sizeof(pid), "p-%d", tag);
	snprintf(cer, sizeof(cer), "cer-%d", tag);
	snprintf(sig, sizeof(sig), "g-%d", tag);
	snprintf(node, sizeof(node), "n-%d", tag);
	snprintf(xid, sizeof(xid), "x-%d", tag);
	cs_gen_session g = {.created_ms = 1, .expires_ms = INT64_MAX / 2, .cert_sha256 = "ab",
			    .claims_json = "{\"sub\":\"x\"}"};
	snprintf(g.id, sizeof(g.id), "%s", sid);
	cs_gen_session expired = {.created_ms = 1, .expires_ms = 2, .cert_sha256 = "ab", .claims_json = "{}"};
	snprintf(expired.id, sizeof(expired.id), "e-%d", tag);
	cs_gen_session kept = g;
	snprintf(kept.id, sizeof(kept.id), "%s", xid);
	cs_cert_parts parts = {.header_b64 = "h", .claims_json = "{\"sub\":\"x\"}", .signature_b64 = "s"};
	cs_key_info k = {.kid = pid, .uri = "pkcs11:object=p", .jwk_json = "{}", .status = "retired",
			 .label = "p", .cka_id = "01", .created_by = "system", .profile = "prof"};
	cs_ceremony_record c = {.id = cer, .action = "retire", .subject = kid, .reason = "r", .params_json = "{}",
				.nonce = "n", .node = "test-1", .created_at = "2026-01-01T00:00:00.000Z",
				.expires_at = "2026-01-02T00:00:00.000Z", .started_by = "a", .canonical = "c"};
	cs_approval_record a = {.ceremony_id = cer, .officer = "o", .fingerprint = "f", .cert_pem = "pem",
				.sig_alg = "ES256", .signature_b64 = "sig", .approved_at = "2026-01-01T00:00:01.000Z",
				.approved_by = "o"};
	cs_rollover_record ro = {.ceremony_id = cer, .old_kid = kid, .new_kid = pid, .statement_json = "{}",
				 .created_at = "2026-01-01T00:00:02.000Z"};
	cs_revocation_record rv = {.cert_id = cid, .reason = "keyCompromise", .revoked_at = "2026-01-01T00:00:03.000Z",
				   .revoked_by = "o", .ceremony_id = cer};
	static const unsigned char payload[] = {0, 1, 2, 3};
	cs_signature_record sg = {.id = sig, .profile = "prof", .format = "dsse", .requester = "r",
				  .requester_cert_sha256 = "ab", .created_at = "2026-01-01T00:00:04.000Z",
				  .signed_sha256 = "cd", .kid = pid, .signature = "sg", .signature_der = "der",
				  .payload_type = "t", .payload = payload, .payload_len = sizeof(payload),
				  .audit_seq = tag + 1};
	cs_audit_entry e = {.seq = tag + 1, .ts = "2026-01-01T00:00:05.000Z", .node = "test-1", .actor = "system",
			    .role = "system", .action = "test.write", .outcome = "success"};
	uint8_t h[32] = {1};
	int claimed = 0;
	int64_t removed = 0;
	char *holder = NULL;

	cs_err r = cs_store_write_begin(s, 0);
	if (r == CS_OK)
		r = cs_store_session_insert(s, &g);
	if (r == CS_OK)
		r = cs_store_session_insert(s, &expired);
	if (r == CS_OK)
		r = cs_store_session_claim(s, sid, cid, &claimed);
	if (r == CS_OK && !claimed)
		r = CS_E_SESSION_USED;
	if (r == CS_OK)
		r = cs_store_key_upsert(s, kid, "pkcs11:object=k", "{}", "active");
	if (r == CS_OK)
		r = cs_store_key_set_status(s, kid, "retired");
	if (r == CS_OK)
		r = cs_store_cert_insert(s, cid, sid, kid, &parts, 3);
	if (r == CS_OK)
		r = cs_store_key_insert(s, &k);
	if (r == CS_OK)
		r = cs_store_key_event(s, pid, CS_KEY_DESTROYED, "2026-01-01T00:00:06.000Z", "o", NULL);
	if (r == CS_OK)
		r = cs_store_key_set_chain(s, pid, "[]");
	if (r == CS_OK)
		r = cs_store_ceremony_insert(s, &c);
	if (r == CS_OK)
		r = cs_store_approval_insert(s, &a);
	if (r == CS_OK)
		r = cs_store_ceremony_close(s, cer, "2026-01-01T00:00:07.000Z", "o", "{}");
	if (r == CS_OK)
		r = cs_store_rollover_insert(s, &ro);
	if (r == CS_OK)
		r = cs_store_revocation_insert(s, &rv);
	if (r == CS_OK)
		r = cs_store_signature_insert(s, &sg);
	if (r == CS_OK)
		r = cs_store_audit_insert(s, &e, h, h);
	if (r == CS_OK)
		r = cs_store_checkpoint_insert(s, tag + 1, tag + 1, h, e.ts, "test-1", "periodic", "h.p.s");
	if (r == CS_OK)
		r = cs_store_node_claim(s, node, "i", "host", 1, 10, 1000, &holder);
	if (r == CS_OK)
		r = cs_store_probe_write(s, tag);
	if (r == CS_OK)
		r = cs_store_sessions_delete_expired(s, 3, &removed);
	if (r == CS_OK && removed != 1)
		r = CS_E_INTERNAL;
	if (r == CS_OK && (r = cs_store_savepoint(s)) == CS_OK)
		r = cs_store_savepoint_end(s, cs_store_session_insert(s, &kept));
	free(holder);
	return cs_store_write_end(s, r);
}

static int seen;
static void see_key(void *arg, const cs_key_info *k)
{
	(void)arg;
	assert_non_null(k->kid);
	seen++;
}
static void see_key_row(void *arg, const char *kid, const char *jwk, const char *status, const char *created)
{
	(void)arg;
	assert_non_null(kid);
	assert_non_null(jwk);
	assert_non_null(status);
	assert_non_null(created);
	seen++;
}
static void see_ceremony(void *arg, const cs_ceremony_record *c)
{
	(void)arg;
	assert_non_null(c->canonical);
	assert_string_equal(c->state, strcmp(c->id, "cer-0") == 0 ? "executed" : "open");
	seen++;
}
static void see_approval(void *arg, const cs_approval_record *a)
{
	(void)arg;
	assert_non_null(a->officer);
	assert_non_null(a->approved_by);
	seen++;
}
static void see_rollover(void *arg, const cs_rollover_record *ro)
{
	(void)arg;
	assert_non_null(ro->new_kid);
	seen++;
}
static void see_revocation(void *arg, const cs_revocation_record *rv)
{
	(void)arg;
	assert_string_equal(rv->reason, "keyCompromise");
	seen++;
}
static void see_sig(void *arg, const cs_signature_record *g)
{
	(void)arg;
	assert_int_equal(g->payload_len, 4);
	assert_string_equal(g->format, "dsse");
	seen++;
}
static int see_sig_row(void *arg, const cs_signature_record *g)
{
	see_sig(arg, g);
	return 0;
}
static int see_entry(void *arg, const cs_audit_entry *e, const uint8_t prev[32], const uint8_t hash[32])
{
	(void)arg;
	(void)prev;
	(void)hash;
	assert_string_equal(e->action, "test.write");
	seen++;
	return 0;
}
static int see_cp(void *arg, int64_t first, int64_t last, const uint8_t head[32], const char *ts, const char *node,
		  const char *kind, const char *jws)
{
	(void)arg;
	(void)first;
	(void)last;
	(void)head;
	(void)ts;
	(void)node;
	assert_string_equal(kind, "periodic");
	assert_string_equal(jws, "h.p.s");
	seen++;
	return 0;
}

/* Expect a read's outcome: right (want rows seen) or failed cleanly. */
#define READ(call, want)                                                                                   \
	do {                                                                                               \
		seen = 0;                                                                                  \
		cs_err r_ = (call);                                                                        \
		if (r_ == CS_OK) {                                                                         \
			if (seen != (want))                                                                \
				fail_msg("%s: %d rows seen, %d expected", #call, seen, (int)(want));       \
		} else {                                                                                   \
			if (r_ != CS_E_NOMEM && r_ != CS_E_STORE)                                          \
				fail_msg("%s: %s", #call, cs_strerror(r_));                                \
			ok = 0;                                                                            \
		}                                                                                          \
	} while (0)

/* Rows whose text SQLite holds as 62-byte BLOBs: reading them as text
 * allocates (a conversion), which the reads below must survive failing. */
#define B62(c) "CAST(printf('%.*c', 62, '" c "') AS BLOB)"
static void add_blob_rows(const char *path)
{
	sqlite3 *raw = ts_sqlite_open(path);
	ts_sqlite_exec(raw, "INSERT INTO signing_keys (kid, uri, jwk_json, status, created_at) VALUES (" B62("k") ", " B62("u")
		      ", " B62("j") ", 'retired', " B62("2") ");"
		      "INSERT INTO ceremonies (id, action, subject, reason, params_json, nonce, node, created_at, "
		      "expires_at, started_by, canonical) VALUES ('cer-b', 'retire', " B62("s") ", NULL, " B62("p")
		      ", " B62("n") ", " B62("n") ", " B62("1") ", " B62("3") ", " B62("b") ", " B62("c") ");"
		      "INSERT INTO ceremony_approvals (ceremony_id, officer, fingerprint, cert_pem, sig_alg, "
		      "signature_b64, approved_at, approved_by) VALUES ('cer-b', " B62("o") ", " B62("f") ", " B62("c")
		      ", " B62("a") ", " B62("s") ", " B62("t") ", " B62("o") ");"
		      "INSERT INTO key_rollovers (ceremony_id, old_kid, new_kid, statement_json, created_at) "
		      "VALUES ('cer-b', NULL, 'k-0', " B62("j") ", " B62("t") ");");
	sqlite3_close(raw);
}

/* Every read of store.h over what write_all(0) and add_blob_rows wrote; 1
 * when all answered. */
static int read_everything(cs_store *s)
{
	int ok = 1;
	cs_session_row row;
	cs_err r = cs_store_session_get(s, "x-0", &row);
	if (r == CS_OK) {
		assert_string_equal(row.claims_json, "{\"sub\":\"x\"}");
		assert_int_equal(row.certified, 0);
		cs_session_row_free(&row);
	} else {
		assert_true(r == CS_E_NOMEM || r == CS_E_STORE);
		assert_null(row.cert_sha256);
		ok = 0;
	}
	cs_cert_row cert;
	r = cs_store_cert_get(s, "c-0", &cert);
	if (r == CS_OK) {
		assert_string_equal(cert.header_b64, "h");
		cs_cert_row_free(&cert);
	} else {
		assert_true(r == CS_E_NOMEM || r == CS_E_STORE);
		ok = 0;
	}
	cs_active_key ak;
	r = cs_store_key_active_in(s, "prof", &ak);
	assert_true(r == CS_E_NOT_FOUND || r == CS_E_NOMEM || r == CS_E_STORE);
	ok &= r == CS_E_NOT_FOUND;
	int flag = -1;
	r = cs_store_keys_ever_active_in(s, "prof", &flag);
	ok &= r == CS_OK && flag == 1;
	r = cs_store_key_compromised(s, "k-0", &flag);
	ok &= r == CS_OK && flag == 0;
	ok &= cs_store_cert_exists(s, "c-0") == CS_OK;
	ok &= cs_store_cert_by_other_key(s, "k-0") == CS_E_NOT_FOUND;
	ok &= cs_store_signature_by_other_key(s, "prof", "p-0") == CS_E_NOT_FOUND;
	int64_t a = 0, b = 0;
	r = cs_store_revocations_version(s, &a, &b);
	ok &= r == CS_OK && a == 1 && b == 1;
	const char *formats[CS_STORE_SIG_FORMATS + 1] = {NULL};
	r = cs_store_key_formats_signed(s, "prof", "p-0", formats);
	if (r == CS_OK) {
		assert_string_equal(formats[0], "dsse");
		assert_null(formats[1]);
	} else {
		ok = 0;
	}
	uint8_t h[32];
	char ts[32];
	int found = 0;
	r = cs_store_audit_last(s, &a, h, ts);
	ok &= r == CS_OK && a == 1 && strcmp(ts, "2026-01-01T00:00:05.000Z") == 0;
	r = cs_store_audit_hash_at(s, 1, h, &found);
	ok &= r == CS_OK && found && h[0] == 1;
	ok &= cs_store_audit_first(s, &a) == CS_OK && a == 1;
	ok &= cs_store_audit_ts_ordered_from(s, &a) == CS_OK;
	r = cs_store_audit_purge_boundary(s, "2027-01-01T00:00:00.000Z", &a, &b, h);
	ok &= r == CS_OK && b == 1;
	ok &= cs_store_checkpointed(s, &a) == CS_OK && a == 1;
	r = cs_store_purge_base(s, &a, h);
	assert_true(r == CS_E_NOT_FOUND || r == CS_E_NOMEM || r == CS_E_STORE);
	ok &= r == CS_E_NOT_FOUND;
	char *jws = NULL;
	r = cs_store_checkpoint_latest(s, &jws);
	if (r == CS_OK)
		assert_string_equal(jws, "h.p.s");
	else
		ok = 0;
	free(jws);
	ok &= cs_store_ping(s) == CS_OK;
	READ(cs_store_keys_info(s, see_key, NULL), 3);
	READ(cs_store_key_info(s, "p-0", see_key, NULL), 1);
	READ(cs_store_keys_each(s, see_key_row, NULL), 3);
	READ(cs_store_ceremony_get(s, "cer-0", see_ceremony, see_approval, NULL), 2);
	READ(cs_store_ceremony_get(s, "cer-b", see_ceremony, see_approval, NULL), 2);
	READ(cs_store_ceremonies_each(s, see_ceremony, NULL), 2);
	READ(cs_store_rollovers_each(s, see_rollover, NULL), 2);
	/* no callback: whether it is there */
	READ(cs_store_key_info(s, "p-0", NULL, NULL), 0);
	READ(cs_store_ceremony_get(s, "cer-b", NULL, NULL, NULL), 0);
	READ(cs_store_revocation_get(s, "c-0", NULL, NULL), 0);
	READ(cs_store_rollovers_each(s, NULL, NULL), 0);
	READ(cs_store_revocations_each(s, see_revocation, NULL), 1);
	READ(cs_store_revocation_get(s, "c-0", see_revocation, NULL), 1);
	READ(cs_store_signature_get(s, "g-0", see_sig, NULL), 1);
	READ(cs_store_signatures_by_sha256(s, "cd", 5, see_sig_row, NULL), 1);
	READ(cs_store_audit_each(s, 1, 0, see_entry, NULL), 1);
	READ(cs_store_checkpoints_each(s, see_cp, NULL), 1);
	READ(cs_store_checkpoints_range(s, 0, 10, see_cp, NULL), 1);
	if (cs_store_read_begin(s) == CS_OK)
		cs_store_read_end(s);
	else
		ok = 0;
	return ok;
}

static void test_writes_and_reads_under_allocation_failure(void **state)
{
	(void)state;
	char path[600];
	new_db(path, sizeof(path));
	cs_store *s = NULL;
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	/* the reference: all of it, on a fresh connection */
	assert_int_equal(write_all(s, 0), CS_OK);
	assert_int_equal(rows_of(path, 0), WRITES_ROWS);
	cs_store_close(s);

	int n, tag = 1, failures = 0;
	int64_t t0 = ts_mono_ms();
	quiet(1);
	for (n = 0; n < 20000; n++, tag++) {
		assert_int_equal(cs_store_open(path, &s), CS_OK);
		sqlf_fail_at(n);
		cs_err r = write_all(s, tag);
		long left = sqlf_disarm();
		int64_t rows = rows_of(path, tag);
		if (r == CS_OK) {
			if (rows != WRITES_ROWS)
				fail_msg("allocation %d: committed, %lld of %d rows", n, (long long)rows, WRITES_ROWS);
		} else {
			failures++;
			if (rows != 0)
				fail_msg("allocation %d failed the write (%s) but %lld rows were stored", n,
					 cs_strerror(r), (long long)rows);
			assert_int_equal(write_all(s, tag), CS_OK); /* the connection still writes */
		}
		cs_store_close(s);
		if (left >= 0)
			break;
	}
	print_message("writes: failed each of %d allocations in turn: %d transactions rolled back whole (%lld ms)\n",
		      n, failures, (long long)(ts_mono_ms() - t0));
	t0 = ts_mono_ms();
	assert_true(n < 20000);
	assert_true(failures > 0);

	/* the reads, on a copy holding only what write_all(0) wrote */
	char ref[600];
	new_db(ref, sizeof(ref));
	assert_int_equal(cs_store_open(ref, &s), CS_OK);
	assert_int_equal(write_all(s, 0), CS_OK);
	cs_store_close(s);
	add_blob_rows(ref);
	assert_int_equal(cs_store_open(ref, &s), CS_OK);
	assert_int_equal(read_everything(s), 1);
	cs_store_close(s);
	failures = 0;
	for (n = 0; n < 20000; n++) {
		assert_int_equal(cs_store_open(ref, &s), CS_OK);
		sqlf_fail_at(n);
		int ok = read_everything(s);
		long left = sqlf_disarm();
		failures += !ok;
		if (left >= 0) {
			assert_int_equal(ok, 1);
			cs_store_close(s);
			break;
		}
		assert_int_equal(read_everything(s), 1); /* and the connection still reads */
		cs_store_close(s);
	}
	quiet(0);
	print_message("reads: failed each of %d allocations in turn: %d passes failed cleanly (%lld ms)\n", n,
		      failures, (long long)(ts_mono_ms() - t0));
	assert_true(n < 20000);
	assert_true(failures > 0);
}

/* ---- the write deadline ----------------------------------------------------- */

/* A probe write that would run for seconds: a trigger counting to 3e7
 * (long past any deadline below, short enough that a deadline not enforced
 * fails the test within seconds rather than at ctest's timeout). */
static void slow_probe(const char *path)
{
	sqlite3 *raw = ts_sqlite_open(path);
	ts_sqlite_exec(raw, "CREATE TABLE slow (n INTEGER);"
			    "CREATE TRIGGER slow_probe AFTER INSERT ON store_probe BEGIN "
			    "INSERT INTO slow WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c "
			    "WHERE i < 30000000) SELECT count(*) FROM c; END;"
			    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) "
			    "INSERT INTO audit_log SELECT i, '2026-01-01T00:00:00.000Z', 'test-1', 'system', NULL, "
			    "'system', 'bulk', NULL, NULL, NULL, 'success', NULL, NULL, zeroblob(32), zeroblob(32) FROM n;");
	sqlite3_close(raw);
}

static void test_write_deadline_aborts_a_running_write(void **state)
{
	(void)state;
	char path[600];
	new_db(path, sizeof(path));
	cs_store *s = NULL;
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	slow_probe(path);

	/* through the store: the statement is interrupted at the deadline */
	int64_t t0 = ts_mono_ms();
	assert_int_equal(cs_store_write_begin(s, t0 + 150), CS_OK);
	cs_err r = cs_store_probe_write(s, 42);
	int64_t took = ts_mono_ms() - t0;
	assert_int_equal(r, CS_E_STORE);
	if (took < 140 || took > 1500)
		fail_msg("the write stopped after %lld ms (deadline 150 ms)", (long long)took);
	/* a caller that would commit anyway is told the transaction is gone */
	assert_int_equal(cs_store_write_end(s, CS_OK), CS_E_STORE);
	assert_int_equal(ts_sqlite_path_int(path, "SELECT count(*) FROM store_probe"), 0);
	assert_int_equal(ts_sqlite_path_int(path, "SELECT count(*) FROM slow"), 0);
	/* the deadline is disarmed: a long read is not cut short */
	struct timespec pause = {0, 200 * 1000000L};
	nanosleep(&pause, NULL);
	int rows = 0;
	assert_int_equal(cs_store_audit_each(s, 1, 0, ts_count_entry, &rows), CS_OK);
	assert_int_equal(rows, 3000);

	/* a deadline already passed: the write does not begin */
	assert_int_equal(cs_store_write_begin(s, ts_mono_ms() - 1), CS_E_STORE);
	assert_int_equal(cs_store_write_end(s, CS_E_STORE), CS_E_STORE);
	cs_store_close(s);

	/* through the ledger: the probe write of write health, 150 ms timeout */
	cs_ledger *l = NULL;
	assert_int_equal(cs_ledger_open(path, 150, &l), CS_OK);
	assert_int_equal(cs_ledger_start(l), CS_OK);
	t0 = ts_mono_ms();
	assert_int_equal(cs_ledger_write_health(l, 0), CS_E_STORE);
	took = ts_mono_ms() - t0;
	if (took > 1500)
		fail_msg("the ledger's write failed after %lld ms (timeout 150 ms)", (long long)took);
	assert_int_equal(cs_ledger_write_health(l, 60000), CS_E_STORE); /* recorded */
	assert_int_equal(ts_sqlite_path_int(path, "SELECT count(*) FROM store_probe"), 0);
	/* without the slow trigger the probe writes again */
	sqlite3 *raw = ts_sqlite_open(path);
	ts_sqlite_exec(raw, "DROP TRIGGER slow_probe");
	sqlite3_close(raw);
	assert_int_equal(cs_ledger_write_health(l, 0), CS_OK);
	assert_int_equal(ts_sqlite_path_int(path, "SELECT count(*) FROM store_probe"), 1);
	cs_ledger_close(l);
}

/* ---- certify part-way, a session claimed already ----------------------------------- */

static int64_t audit_rows(cs_store *s)
{
	int rows = 0;
	assert_int_equal(cs_store_audit_each(s, 1, 0, ts_count_entry, &rows), CS_OK);
	return rows;
}

static void test_certify_part_way_stores_nothing(void **state)
{
	(void)state;
	char path[600];
	new_db(path, sizeof(path));
	cs_ledger *l = NULL;
	assert_int_equal(cs_ledger_open(path, 1000, &l), CS_OK);
	assert_int_equal(cs_ledger_start(l), CS_OK);
	cs_store *s = NULL;
	assert_int_equal(cs_store_open(path, &s), CS_OK);

	cs_audit_entry e = {.node = "test-1", .actor = "system", .role = "system", .action = "generate",
			    .outcome = "success"};
	cs_gen_session g = {.id = "sess-a", .created_ms = 1, .expires_ms = INT64_MAX / 2, .cert_sha256 = "ab",
			    .claims_json = "{\"sub\":\"a\"}"};
	assert_int_equal(cs_ledger_session_put(l, &g, &e), CS_OK);
	int64_t entries = audit_rows(s);

	/* the certificate's key is not recorded: the claim succeeds, the
	 * certificate's insert is refused (its reference), all rolled back */
	quiet(1);
	e.action = "certify";
	cs_err r = cs_ledger_certify(l, "sess-a", "cert-a", "kid-unknown", "h.e30.s", 5, &e);
	quiet(0);
	assert_int_equal(r, CS_E_STORE);
	ts_assert_unclaimed(s, "sess-a", "{\"sub\":\"a\"}", "cert-a");
	assert_int_equal(audit_rows(s), entries);

	/* with the key: certified, once */
	int changed = 0;
	e.action = "key.put";
	assert_int_equal(cs_ledger_key_put(l, "kid-1", "pkcs11:object=k", "{}", "active", &changed, &e), CS_OK);
	entries = audit_rows(s);
	e.action = "certify";
	assert_int_equal(cs_ledger_certify(l, "sess-a", "cert-a", "kid-1", "h.e30.s", 5, &e), CS_OK);
	assert_int_equal(audit_rows(s), entries + 1);
	cs_session_row row;
	assert_int_equal(cs_store_session_get(s, "sess-a", &row), CS_OK);
	assert_int_equal(row.certified, 1);
	assert_string_equal(row.claims_json, ""); /* the certificate holds them */
	cs_session_row_free(&row);

	/* claimed already: the claim changes no row; nothing stored */
	assert_int_equal(cs_ledger_certify(l, "sess-a", "cert-b", "kid-1", "h.e30.s", 6, &e), CS_E_SESSION_USED);
	cs_cert_row cert;
	assert_int_equal(cs_store_cert_get(s, "cert-b", &cert), CS_E_NOT_FOUND);
	assert_int_equal(audit_rows(s), entries + 1);
	assert_int_equal(ts_sqlite_path_int(path, "SELECT count(*) FROM certificates"), 1);
	/* and directly: claimed 0, CS_OK */
	int claimed = 1;
	assert_int_equal(cs_store_write_begin(s, 0), CS_OK);
	r = cs_store_session_claim(s, "sess-a", "cert-c", &claimed);
	assert_int_equal(r, CS_OK);
	assert_int_equal(claimed, 0);
	assert_int_equal(cs_store_write_end(s, r), CS_OK);
	assert_int_equal(ts_sqlite_path_int(path, "SELECT count(*) FROM generation_sessions WHERE cert_id = 'cert-a'"), 1);
	cs_store_close(s);
	cs_ledger_close(l);
}

/* ---- a key's status, set directly ------------------------------------------------ */

static char last_status[32];
static void status_of(void *arg, const char *kid, const char *jwk, const char *status, const char *created)
{
	(void)jwk;
	(void)created;
	if (strcmp(kid, (const char *)arg) == 0)
		snprintf(last_status, sizeof(last_status), "%s", status);
}

static void test_key_set_status(void **state)
{
	(void)state;
	char path[600];
	new_db(path, sizeof(path));
	cs_store *s = NULL;
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	assert_int_equal(cs_store_write_begin(s, 0), CS_OK);
	assert_int_equal(cs_store_key_upsert(s, "kid-s", "pkcs11:object=s", "{}", "active"), CS_OK);
	assert_int_equal(cs_store_key_set_status(s, "kid-s", "retired"), CS_OK);
	assert_int_equal(cs_store_write_end(s, CS_OK), CS_OK);
	assert_int_equal(cs_store_keys_each(s, status_of, "kid-s"), CS_OK);
	assert_string_equal(last_status, "retired");

	/* retired never becomes active again: the schema's trigger */
	quiet(1);
	assert_int_equal(cs_store_write_begin(s, 0), CS_OK);
	cs_err r = cs_store_key_set_status(s, "kid-s", "active");
	assert_int_equal(cs_store_write_end(s, r), CS_E_STORE);
	quiet(0);
	assert_int_equal(r, CS_E_STORE);
	assert_int_equal(cs_store_keys_each(s, status_of, "kid-s"), CS_OK);
	assert_string_equal(last_status, "retired");

	/* an event that is none of the four */
	assert_int_equal(cs_store_write_begin(s, 0), CS_OK);
	r = cs_store_key_event(s, "kid-s", (cs_key_event)7, "2026-01-01T00:00:00.000Z", "o", NULL);
	assert_int_equal(cs_store_write_end(s, r), CS_E_INVALID_ARG);
	assert_int_equal(r, CS_E_INVALID_ARG);
	cs_store_close(s);
}

/* ---- rows edited outside credsign ------------------------------------------------- */

static void test_edited_rows_refused(void **state)
{
	(void)state;
	char path[600];
	new_db(path, sizeof(path));
	cs_store *s = NULL;
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	int64_t seq = 0, count = 0, last = 0;
	uint8_t h[32];
	char ts[32];
	sqlite3 *raw = ts_sqlite_open(path);

	quiet(1);
	/* a head hash that is not 32 bytes */
	ts_sqlite_exec(raw, "INSERT INTO audit_log VALUES (1, '2026-01-01T00:00:00.000Z', 'n', 'a', NULL, 'system', "
			    "'x', NULL, NULL, NULL, 'success', NULL, NULL, zeroblob(32), zeroblob(31))");
	assert_int_equal(cs_store_audit_last(s, &seq, h, ts), CS_E_STORE);
	/* its hash by seq: not one, so not found (a checkpoint or purge over
	 * it is not recorded) */
	int found = 1;
	assert_int_equal(cs_store_audit_hash_at(s, 1, h, &found), CS_OK);
	assert_int_equal(found, 0);
	/* a head whose ts does not fit */
	ts_sqlite_exec(raw, "INSERT INTO audit_log VALUES (2, '2026-01-01T00:00:00.000000000000000Z', 'n', 'a', NULL, "
			    "'system', 'x', NULL, NULL, NULL, 'success', NULL, NULL, zeroblob(32), zeroblob(32))");
	assert_int_equal(cs_store_audit_last(s, &seq, h, ts), CS_E_STORE);
	/* the revocations' count gone from store_meta */
	ts_sqlite_exec(raw, "DELETE FROM store_meta WHERE name = 'revocations_count'");
	assert_int_equal(cs_store_revocations_version(s, &count, &last), CS_E_STORE);
	quiet(0);
	sqlite3_close(raw);
	cs_store_close(s);
}

/* ---- an incomplete store configuration, NULL frees ----------------------------- */

/* The loader never gives one, but a configuration built otherwise whose
 * store is incomplete is CS_E_CONFIG, nothing opened. */
static void test_incomplete_target(void **state)
{
	(void)state;
	cs_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cs_store_target t;
	cs_store *s = (cs_store *)&s;
	cs_ledger *l = (cs_ledger *)&l;
	assert_int_equal(cs_store_target_from_config(&cfg, &t), CS_E_CONFIG); /* SQLite, no path */
	cfg.store.path = "";
	assert_int_equal(cs_store_connect_config(&cfg, &s), CS_E_CONFIG);
	assert_null(s);
	assert_int_equal(cs_ledger_connect_config(&cfg, &l), CS_E_CONFIG);
	assert_null(l);
	cfg.store.backend = CS_CONFIG_STORE_POSTGRESQL; /* no connection */
	assert_true(cs_store_target_is_pg(&cfg));
	assert_int_equal(cs_store_target_from_config(&cfg, &t), CS_E_CONFIG);
	cfg.store.postgresql.connection = "";
	assert_int_equal(cs_store_connect_config(&cfg, &s), CS_E_CONFIG);
	assert_int_equal(cs_ledger_connect_config(&cfg, &l), CS_E_CONFIG);

	/* a SQLite store: its guards are checked at open only */
	char path[600];
	new_db(path, sizeof(path));
	cfg.store.backend = CS_CONFIG_STORE_SQLITE;
	cfg.store.path = path;
	assert_int_equal(cs_store_connect_config(&cfg, &s), CS_OK);
	assert_int_equal(cs_store_guards_check(s, NULL, 0), CS_OK);
	cs_store_close(s);
	cs_active_key_free(NULL); /* documented: fine */
}

static int setup(void **state)
{
	(void)state;
	/* thousands of stores, each opened with synchronous=FULL: in memory
	 * when the machine has a tmpfs, so that fsync costs nothing */
	return ts_scratch_dir(dir, sizeof(dir), "store-faults", 1, 0755);
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
		cmocka_unit_test(test_open_failures),
		cmocka_unit_test(test_migration_under_allocation_failure),
		cmocka_unit_test(test_migration_refuses_a_certificate_not_a_jws),
		cmocka_unit_test(test_writes_and_reads_under_allocation_failure),
		cmocka_unit_test(test_write_deadline_aborts_a_running_write),
		cmocka_unit_test(test_certify_part_way_stores_nothing),
		cmocka_unit_test(test_key_set_status),
		cmocka_unit_test(test_edited_rows_refused),
		cmocka_unit_test(test_incomplete_target),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
