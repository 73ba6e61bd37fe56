/*
 * ledger_test: group commit and the rules of the ledger, with real
 * databases in a temporary directory.
 *
 *  - concurrent submitters: 16 threads write sessions, certificates and
 *    audit entries through one writer; every call is answered, every write
 *    is visible from another connection when its call returns, seq has no
 *    gap, the chain verifies, and there were fewer commits than writes;
 *  - of 16 concurrent certifications of one session exactly one wins
 *    (the others: 409), one certificate and one entry are stored;
 *  - a batch really groups, and a write that fails in it rolls back alone:
 *    with the lock held by another process, writes queue up; released,
 *    they commit in one transaction; the one certifying a session
 *    certified meanwhile fails alone and leaves nothing (no seq either);
 *  - the deadline: with the lock held, a write fails with CS_E_STORE after
 *    write_timeout_ms (the one running and the ones queued behind it), and
 *    nothing of them is ever written;
 *  - without a writer thread (credsign-admin, start-up) the same rules:
 *    one active key (activating another retires it, audited), nothing to
 *    record twice, pruning only uncertified expired sessions; a
 *    certificate reads back as the very JWS stored (kept in parts, its
 *    payload decoded), and what is not a compact JWS is not stored;
 *  - the key lifecycle: activate A, activate B (A retired), activate A
 *    again: refused with CS_E_KEY_FORBIDDEN, B still the active key, the
 *    store unchanged, and no audit entry for the refusal (the ledger
 *    writes nothing when it refuses; the caller that stops says why);
 *    the refusal names A, "retired" and the time of its key.retire entry,
 *    with the writer thread as without; a retired key may still become
 *    compromised, and a compromised one is refused too.
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "audit_verify.h"
#include "ledger.h"
#include "store.h"

static char dir[512];
static int db_counter;

static void new_db(char *path, size_t n)
{
	snprintf(path, n, "%s/ledger-%d.db", dir, ++db_counter);
}

static void sleep_ms(long ms)
{
	struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&t, NULL);
}

static int64_t mono_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static sqlite3 *raw_open(const char *path)
{
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	return db;
}

static void raw_exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg != NULL ? msg : "?");
}

static int64_t raw_count(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int64_t n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static cs_audit_entry entry(const char *action)
{
	cs_audit_entry e = {.node = "test-1", .actor = "client", .role = "client", .action = action,
			    .outcome = "success"};
	return e;
}

static cs_gen_session session(const char *id)
{
	cs_gen_session g = {.created_ms = 1, .expires_ms = INT64_MAX / 2, .cert_sha256 = "ab",
			    .claims_json = "{\"a\":1}"};
	snprintf(g.id, sizeof(g.id), "%s", id);
	return g;
}

/* The chain verifies (no checkpoints: nothing to check them against). */
static void verify_chain(const char *path, int64_t entries)
{
	cs_store *s = NULL;
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	json_t *jwks = json_pack("{s:[]}", "keys");
	cs_audit_report rep;
	assert_int_equal(cs_audit_verify(s, jwks, 0, &rep), CS_OK);
	if (!rep.intact)
		fail_msg("audit log not intact at %lld: %s", (long long)rep.bad_seq, rep.reason);
	assert_int_equal(rep.entries, entries);
	assert_int_equal(rep.ts_warnings, 0);
	json_decref(jwks);
	cs_store_close(s);
}

static cs_ledger *open_ledger(const char *path, int timeout_ms, int threaded)
{
	cs_ledger *l = NULL;
	assert_int_equal(cs_ledger_open(path, timeout_ms, &l), CS_OK);
	if (threaded)
		assert_int_equal(cs_ledger_start(l), CS_OK);
	/* the signing key certificates reference */
	int changed = 0;
	assert_int_equal(cs_ledger_key_put(l, "kid-1", "pkcs11:object=k1", "{}", "active", &changed, NULL), CS_OK);
	return l;
}

/* Poll until the writer runs `running` writes (stuck on the lock) and
 * `queued` wait behind them. */
static void wait_writer(cs_ledger *l, uint64_t running, uint64_t queued)
{
	cs_ledger_stats st;
	for (int i = 0; i < 2500; i++) {
		cs_ledger_get_stats(l, &st);
		if (st.queued == queued && st.running == running)
			return;
		sleep_ms(2);
	}
	fail_msg("%llu writes running and %llu queued, expected %llu and %llu", (unsigned long long)st.running,
		 (unsigned long long)st.queued, (unsigned long long)running, (unsigned long long)queued);
}

/* ---- concurrent submitters -------------------------------------------------------- */

#define THREADS 16
#define ROUNDS 20

typedef struct {
	cs_ledger *l;
	const char *path;
	int n;
	int failures;
} submitter;

/* Each round: a session with its entry, its certificate with its entry,
 * an entry alone; each visible from another connection on return. */
static void *submit_many(void *p)
{
	submitter *a = p;
	sqlite3 *peek = NULL;
	if (sqlite3_open(a->path, &peek) != SQLITE_OK)
		a->failures++;
	for (int i = 0; i < ROUNDS && peek != NULL; i++) {
		char sid[32], cid[32], q[160];
		snprintf(sid, sizeof(sid), "s-%d-%d", a->n, i);
		snprintf(cid, sizeof(cid), "c-%d-%d", a->n, i);
		cs_gen_session g = session(sid);
		cs_audit_entry e1 = entry("generate"), e2 = entry("certify"), e3 = entry("cert.read");
		e1.object = sid;
		e2.object = cid;
		if (cs_ledger_session_put(a->l, &g, &e1) != CS_OK ||
		    cs_ledger_certify(a->l, sid, cid, "kid-1", "h.eyJhIjoxfQ.s", 1, &e2) != CS_OK ||
		    cs_ledger_audit_append(a->l, &e3) != CS_OK) {
			a->failures++;
			continue;
		}
		/* committed: another connection sees it already */
		snprintf(q, sizeof(q), "SELECT count(*) FROM certificates WHERE id = '%s'", cid);
		sqlite3_stmt *st = NULL;
		int seen = sqlite3_prepare_v2(peek, q, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
			   sqlite3_column_int(st, 0) == 1;
		sqlite3_finalize(st);
		if (!seen || e1.seq < 1 || e2.seq <= e1.seq || e3.seq <= e2.seq)
			a->failures++;
	}
	sqlite3_close(peek);
	return NULL;
}

static void test_concurrent_submitters(void **state)
{
	(void)state;
	char path[600];
	new_db(path, sizeof(path));
	cs_ledger *l = open_ledger(path, 5000, 1);
	submitter a[THREADS];
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++) {
		a[i] = (submitter){l, path, i, 0};
		assert_int_equal(pthread_create(&t[i], NULL, submit_many, &a[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(a[i].failures, 0);
	}
	cs_ledger_stats st;
	cs_ledger_get_stats(l, &st);
	cs_ledger_close(l);
	uint64_t jobs = THREADS * ROUNDS * 3;
	print_message("%llu writes in %llu commits (largest batch %llu)\n", (unsigned long long)st.jobs,
		      (unsigned long long)st.commits, (unsigned long long)st.max_batch);
	assert_int_equal(st.jobs, jobs + 1); /* and the key */
	assert_true(st.commits < st.jobs);
	assert_int_equal(st.queued, 0);
	sqlite3 *raw = raw_open(path);
	assert_int_equal(raw_count(raw, "SELECT count(*) FROM certificates"), THREADS * ROUNDS);
	assert_int_equal(raw_count(raw, "SELECT count(*) FROM generation_sessions WHERE cert_id IS NOT NULL"),
			 THREADS * ROUNDS);
	assert_int_equal(raw_count(raw, "SELECT max(seq) - min(seq) + 1 - count(*) FROM audit_log"), 0);
	sqlite3_close(raw);
	verify_chain(path, THREADS * ROUNDS * 3);
}

/* ---- one certification of a session wins ------------------------------------------ */

typedef struct {
	cs_ledger *l;
	int n;
	atomic_int *go;
	cs_err result;
} racer;

static void *certify_same(void *p)
{
	racer *r = p;
	char cid[32];
	snprintf(cid, sizeof(cid), "cert-%d", r->n);
	cs_audit_entry e = entry("certify");
	e.object = cid;
	while (!atomic_load(r->go))
		;
	r->result = cs_ledger_certify(r->l, "contested", cid, "kid-1", "h.eyJhIjoxfQ.s", 1, &e);
	return NULL;
}

static void test_one_certify_wins(void **state)
{
	(void)state;
	char path[600];
	new_db(path, sizeof(path));
	cs_ledger *l = open_ledger(path, 5000, 1);
	cs_gen_session g = session("contested");
	cs_audit_entry e = entry("generate");
	assert_int_equal(cs_ledger_session_put(l, &g, &e), CS_OK);
	atomic_int go = 0;
	racer r[THREADS];
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++) {
		r[i] = (racer){l, i, &go, CS_E_INTERNAL};
		assert_int_equal(pthread_create(&t[i], NULL, certify_same, &r[i]), 0);
	}
	atomic_store(&go, 1);
	int won = 0, used = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		won += r[i].result == CS_OK;
		used += r[i].result == CS_E_SESSION_USED;
	}
	cs_ledger_close(l);
	assert_int_equal(won, 1);
	assert_int_equal(used, THREADS - 1);
	sqlite3 *raw = raw_open(path);
	assert_int_equal(raw_count(raw, "SELECT count(*) FROM certificates"), 1);
	assert_int_equal(raw_count(raw, "SELECT count(*) FROM audit_log WHERE action = 'certify'"), 1);
	/* the certificate is the one the session names */
	assert_int_equal(raw_count(raw, "SELECT count(*) FROM certificates c JOIN generation_sessions s "
					"ON s.cert_id = c.id WHERE s.id = 'contested'"), 1);
	sqlite3_close(raw);
	verify_chain(path, 2);
}

/* ---- a batch groups; a failed write rolls back alone -------------------------------- */

typedef struct {
	cs_ledger *l;
	int kind; /* 0 entry, 1 session, 2 certify a certified session, 3 certify */
	const char *id;
	cs_err result;
	cs_audit_entry e;
} one_job;

static void *run_one(void *p)
{
	one_job *j = p;
	cs_gen_session g = session(j->id);
	j->e = entry(j->kind == 0 ? "cert.read" : j->kind == 1 ? "generate" : "certify");
	j->e.object = j->id;
	switch (j->kind) {
	case 0: j->result = cs_ledger_audit_append(j->l, &j->e); break;
	case 1: j->result = cs_ledger_session_put(j->l, &g, &j->e); break;
	case 2: j->result = cs_ledger_certify(j->l, "done", j->id, "kid-1", "h.eyJhIjoxfQ.s", 1, &j->e); break;
	default: j->result = cs_ledger_certify(j->l, "fresh", j->id, "kid-1", "h.eyJhIjoxfQ.s", 1, &j->e); break;
	}
	return NULL;
}

static void test_batch_groups_and_failure_rolls_back_alone(void **state)
{
	(void)state;
	char path[600];
	new_db(path, sizeof(path));
	cs_ledger *l = open_ledger(path, 10000, 1);
	cs_gen_session g1 = session("done"), g2 = session("fresh");
	cs_audit_entry e = entry("generate");
	assert_int_equal(cs_ledger_session_put(l, &g1, &e), CS_OK);
	e = entry("generate");
	assert_int_equal(cs_ledger_session_put(l, &g2, &e), CS_OK);
	e = entry("certify");
	assert_int_equal(cs_ledger_certify(l, "done", "cert-0", "kid-1", "h.eyJhIjoxfQ.s", 1, &e), CS_OK);
	cs_ledger_stats before, after;
	cs_ledger_get_stats(l, &before);

	/* another process holds the write lock: the writer waits on it with
	 * the first write, the others queue up behind */
	sqlite3 *raw = raw_open(path);
	raw_exec(raw, "BEGIN IMMEDIATE");
	enum { N = 32 };
	one_job jobs[N];
	pthread_t t[N];
	for (int i = 0; i < N; i++) {
		char *id = malloc(16);
		assert_non_null(id);
		snprintf(id, 16, "j-%d", i);
		jobs[i] = (one_job){.l = l, .kind = i == 0 ? 0 : i == 10 ? 2 : i == 20 ? 3 : i % 2, .id = id};
		assert_int_equal(pthread_create(&t[i], NULL, run_one, &jobs[i]), 0);
		if (i == 0)
			wait_writer(l, 1, 0); /* the writer took it */
	}
	wait_writer(l, 1, N - 1);
	raw_exec(raw, "ROLLBACK");
	for (int i = 0; i < N; i++)
		pthread_join(t[i], NULL);
	cs_ledger_get_stats(l, &after);
	print_message("%d writes: %llu commits, largest batch %llu\n", N,
		      (unsigned long long)(after.commits - before.commits), (unsigned long long)after.max_batch);
	/* the first alone (it was waiting on the lock), the 31 others together */
	assert_int_equal(after.commits - before.commits, 2);
	assert_int_equal(after.jobs - before.jobs, N);
	assert_int_equal(after.max_batch, N - 1);
	int64_t last_seq = 0;
	for (int i = 0; i < N; i++) {
		if (i == 10) {
			assert_int_equal(jobs[i].result, CS_E_SESSION_USED);
		} else {
			if (jobs[i].result != CS_OK)
				fail_msg("job %d: %s", i, cs_strerror(jobs[i].result));
			if (jobs[i].e.seq > last_seq)
				last_seq = jobs[i].e.seq;
		}
	}
	/* 31 entries after the 3 before; the failed one took no seq */
	assert_int_equal(last_seq, 3 + N - 1);
	assert_int_equal(raw_count(raw, "SELECT count(*) FROM certificates"), 2); /* cert-0, j-20 */
	assert_int_equal(raw_count(raw, "SELECT count(*) FROM certificates WHERE id = 'j-10'"), 0);
	assert_int_equal(raw_count(raw, "SELECT count(*) FROM audit_log WHERE object = 'j-10'"), 0);
	assert_int_equal(raw_count(raw, "SELECT count(*) FROM generation_sessions WHERE id LIKE 'j-%'"), 16);
	sqlite3_close(raw);
	for (int i = 0; i < N; i++)
		free((char *)jobs[i].id);
	cs_ledger_close(l);
	verify_chain(path, 3 + N - 1);
}

/* ---- the deadline -------------------------------------------------------------------- */

static void test_deadline(void **state)
{
	(void)state;
	char path[600];
	new_db(path, sizeof(path));
	cs_ledger *l = open_ledger(path, 300, 1);
	sqlite3 *raw = raw_open(path);
	raw_exec(raw, "BEGIN IMMEDIATE");
	/* one write waiting on the lock, three queued behind it */
	one_job jobs[4];
	pthread_t t[4];
	int64_t t0 = mono_ms();
	for (int i = 0; i < 4; i++) {
		jobs[i] = (one_job){.l = l, .kind = i % 2, .id = i == 1 ? "late-1" : "late-3"};
		assert_int_equal(pthread_create(&t[i], NULL, run_one, &jobs[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	int64_t took = mono_ms() - t0;
	print_message("4 writes failed within %lld ms (write timeout 300 ms)\n", (long long)took);
	for (int i = 0; i < 4; i++)
		assert_int_equal(jobs[i].result, CS_E_STORE);
	assert_true(took >= 250 && took < 2000);
	assert_int_equal(cs_ledger_write_health(l, 60000), CS_E_STORE);
	/* answered means done: released now, none of them is written later */
	raw_exec(raw, "ROLLBACK");
	cs_audit_entry e = entry("after");
	assert_int_equal(cs_ledger_audit_append(l, &e), CS_OK);
	assert_int_equal(e.seq, 1);
	assert_int_equal(cs_ledger_write_health(l, 60000), CS_OK);
	cs_ledger_close(l);
	assert_int_equal(raw_count(raw, "SELECT count(*) FROM audit_log"), 1);
	assert_int_equal(raw_count(raw, "SELECT count(*) FROM generation_sessions"), 0);
	sqlite3_close(raw);
}

/* ---- the rules without a writer thread ----------------------------------------------- */

static void test_rules_without_thread(void **state)
{
	(void)state;
	char path[600];
	new_db(path, sizeof(path));
	cs_ledger *l = NULL;
	assert_int_equal(cs_ledger_open(path, 2000, &l), CS_OK);
	int changed = 0;
	cs_audit_entry e = entry("key.activate");
	e.object = "k1";
	assert_int_equal(cs_ledger_key_put(l, "k1", "u1", "{}", "active", &changed, &e), CS_OK);
	assert_int_equal(changed, 1);
	assert_int_equal(e.seq, 1);
	e = entry("key.activate");
	assert_int_equal(cs_ledger_key_put(l, "k1", "u1", "{}", "active", &changed, &e), CS_OK);
	assert_int_equal(changed, 0); /* already so: nothing recorded */
	assert_int_equal(e.seq, 0);
	e = entry("key.activate");
	e.object = "k2";
	assert_int_equal(cs_ledger_key_put(l, "k2", "u2", "{}", "active", &changed, &e), CS_OK);
	assert_int_equal(changed, 1);
	assert_int_equal(e.seq, 3); /* after k1's retirement */
	sqlite3 *raw = raw_open(path);
	assert_int_equal(raw_count(raw, "SELECT count(*) FROM signing_keys WHERE status = 'active'"), 1);
	assert_int_equal(raw_count(raw, "SELECT count(*) FROM signing_keys WHERE kid = 'k2' AND status = 'active'"), 1);
	assert_int_equal(raw_count(raw, "SELECT count(*) FROM audit_log WHERE seq = 2 AND action = 'key.retire' "
					"AND object = 'k1'"), 1);

	/* pruning: only sessions never certified and expired */
	cs_gen_session old1 = session("old-1"), old2 = session("old-2"), fresh = session("fresh");
	old1.expires_ms = old2.expires_ms = 1000;
	assert_int_equal(cs_ledger_session_put(l, &old1, NULL), CS_OK);
	assert_int_equal(cs_ledger_session_put(l, &old2, NULL), CS_OK);
	assert_int_equal(cs_ledger_session_put(l, &fresh, NULL), CS_OK);
	assert_int_equal(cs_ledger_certify(l, "old-2", "c-2", "k2", "h.eyJhIjoxfQ.s", 1, NULL), CS_OK);
	int64_t removed = 0;
	assert_int_equal(cs_ledger_sessions_prune(l, 2000, &removed), CS_OK);
	assert_int_equal(removed, 1);
	assert_int_equal(raw_count(raw, "SELECT count(*) FROM generation_sessions"), 2);
	/* and the claims, read with the rules */
	cs_store *s = NULL;
	char *claims = NULL;
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	assert_int_equal(cs_ledger_session_claims(s, "fresh", "ab", 0, &claims), CS_OK);
	assert_string_equal(claims, "{\"a\":1}");
	free(claims);
	assert_int_equal(cs_ledger_session_claims(s, "fresh", "cd", 0, &claims), CS_E_FORBIDDEN);
	assert_int_equal(cs_ledger_session_claims(s, "fresh", "ab", INT64_MAX, &claims), CS_E_SESSION_EXPIRED);
	assert_int_equal(cs_ledger_session_claims(s, "old-2", "ab", 0, &claims), CS_E_SESSION_USED);
	assert_int_equal(cs_ledger_session_claims(s, "old-1", "ab", 0, &claims), CS_E_NOT_FOUND);
	/* a certificate answers with the very JWS that was stored, and its claims */
	char *jws = NULL;
	assert_int_equal(cs_ledger_cert_get(s, "c-2", &jws, &claims), CS_OK);
	assert_string_equal(jws, "h.eyJhIjoxfQ.s");
	assert_string_equal(claims, "{\"a\":1}");
	free(jws);
	free(claims);
	assert_int_equal(cs_ledger_cert_get(s, "c-9", &jws, &claims), CS_E_NOT_FOUND);
	/* what is not a compact JWS with a JSON text payload is not stored */
	const char *bad[] = {"h.e30", "h.e30.s.x", "h.e30=.s", "h.AA.s"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(cs_ledger_certify(l, "fresh", "c-bad", "k2", bad[i], 1, NULL), CS_E_INVALID_ARG);
	assert_int_equal(cs_ledger_session_claims(s, "fresh", "ab", 0, &claims), CS_OK); /* not claimed */
	free(claims);
	cs_store_close(s);
	sqlite3_close(raw);
	cs_ledger_close(l);
	verify_chain(path, 3);
}

/* ---- the key lifecycle ---------------------------------------------------------------- */

static void test_retired_key_never_active_again(void **state)
{
	(void)state;
	char path[600];
	new_db(path, sizeof(path));
	cs_ledger *l = NULL;
	assert_int_equal(cs_ledger_open(path, 2000, &l), CS_OK);
	int changed = 0;
	cs_audit_entry e = entry("key.activate");
	e.object = "kA";
	assert_int_equal(cs_ledger_key_put(l, "kA", "uA", "{}", "active", &changed, &e), CS_OK);
	e = entry("key.activate");
	e.object = "kB";
	assert_int_equal(cs_ledger_key_put(l, "kB", "uB", "{}", "active", &changed, &e), CS_OK);
	assert_int_equal(changed, 1);
	sqlite3 *raw = raw_open(path);
	char retired_at[32] = "";
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_prepare_v2(raw, "SELECT ts FROM audit_log WHERE action = 'key.retire' AND "
						 "object = 'kA'", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	snprintf(retired_at, sizeof(retired_at), "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	assert_int_equal(raw_count(raw, "SELECT count(*) FROM audit_log"), 3);

	/* the check says why, naming the kid, its state and since when */
	char why[160], expect[160];
	snprintf(expect, sizeof(expect), "key kA is retired (since %s)", retired_at);
	assert_int_equal(cs_ledger_key_check(l, "kA", "active", why, sizeof(why)), CS_E_KEY_FORBIDDEN);
	assert_string_equal(why, expect);
	assert_int_equal(cs_ledger_key_check(l, "kB", "active", why, sizeof(why)), CS_OK);
	assert_int_equal(cs_ledger_key_check(l, "kC", "active", why, sizeof(why)), CS_OK); /* a new key */
	assert_int_equal(cs_ledger_key_check(l, "kA", "compromised", why, sizeof(why)), CS_OK);

	/* activating A again: refused, without and with the writer thread */
	for (int threaded = 0; threaded < 2; threaded++) {
		if (threaded)
			assert_int_equal(cs_ledger_start(l), CS_OK);
		e = entry("key.activate");
		e.object = "kA";
		changed = 1;
		assert_int_equal(cs_ledger_key_put(l, "kA", "uA2", "{}", "active", &changed, &e), CS_E_KEY_FORBIDDEN);
		assert_int_equal(changed, 0);
		assert_int_equal(e.seq, 0); /* no audit entry */
		assert_int_equal(cs_ledger_key_put(l, "kA", "uA", "{}", "pending", &changed, NULL),
				 CS_E_KEY_FORBIDDEN);
		assert_int_equal(raw_count(raw, "SELECT count(*) FROM audit_log"), 3);
		assert_int_equal(raw_count(raw, "SELECT count(*) FROM signing_keys WHERE status = 'active'"), 1);
		assert_int_equal(raw_count(raw, "SELECT count(*) FROM signing_keys WHERE kid = 'kB' AND "
						"status = 'active'"), 1);
		assert_int_equal(raw_count(raw, "SELECT count(*) FROM signing_keys WHERE kid = 'kA' AND "
						"status = 'retired' AND uri = 'uA'"), 1);
	}
	/* retired -> compromised is allowed; compromised never becomes active */
	e = entry("key.compromise");
	e.object = "kA";
	assert_int_equal(cs_ledger_key_put(l, "kA", "uA", "{}", "compromised", &changed, &e), CS_OK);
	assert_int_equal(changed, 1);
	assert_int_equal(cs_ledger_key_put(l, "kA", "uA", "{}", "active", &changed, NULL), CS_E_KEY_FORBIDDEN);
	assert_int_equal(cs_ledger_key_put(l, "kA", "uA", "{}", "retired", &changed, NULL), CS_E_KEY_FORBIDDEN);
	assert_int_equal(cs_ledger_key_check(l, "kA", "active", why, sizeof(why)), CS_E_KEY_FORBIDDEN);
	assert_non_null(strstr(why, "key kA is compromised (since "));
	assert_int_equal(raw_count(raw, "SELECT count(*) FROM signing_keys WHERE kid = 'kB' AND status = 'active'"),
			 1);
	sqlite3_close(raw);
	cs_ledger_close(l);
	verify_chain(path, 4);
}

static int setup(void **state)
{
	(void)state;
	const char *base = getenv("CREDSIGN_TEST_TMP");
	if (base == NULL)
		base = "/tmp";
	(void)mkdir(base, 0700);
	snprintf(dir, sizeof(dir), "%s/ledger-test-XXXXXX", base);
	return mkdtemp(dir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_concurrent_submitters),
		cmocka_unit_test(test_one_certify_wins),
		cmocka_unit_test(test_batch_groups_and_failure_rolls_back_alone),
		cmocka_unit_test(test_deadline),
		cmocka_unit_test(test_rules_without_thread),
		cmocka_unit_test(test_retired_key_never_active_again),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
