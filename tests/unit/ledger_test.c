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
 *    compromised, and a compromised one is refused too;
 *  - issue 14, the lifecycle by ceremony: a pending key recorded once;
 *    bootstrap only when no key was ever active (from pending or
 *    unrecorded), a retired/compromised kid refused; activate retires the
 *    old key and activates the new one with times, actor and ceremony,
 *    stores the rollover, audits key.retire, key.activate and
 *    ceremony.execute (chained); retired, compromised, active or unknown
 *    subjects, a stale expected_active, an executed or expired ceremony
 *    are refused and write nothing; the active key is never retired alone;
 *    compromise from every state (none active after the active one);
 *    destroy retired/compromised keys once; approvals distinct by
 *    fingerprint and by officer name, none after execution or expiry;
 *    a clock set back (the log's newest entry later than the caller's
 *    time and the lock's) revives no expired ceremony, and an execution
 *    is dated no earlier than its approvals and the log's newest entry;
 *    concurrent executions of one ceremony (two processes, one writer
 *    thread): one wins, the others CS_E_CEREMONY_CLOSED; revocations of
 *    existing certificates once, listed by time then id, their version
 *    moving with each; the x5c chain validated; key_put records dates;
 *    a schema-6 store migrates with the dates and actors of its audit log,
 *    and the daemon's polls are index lookups;
 *  - issue 15, signing profiles: one active key per profile (the ledger
 *    and the schema): a profile is bootstrapped while a certificate key
 *    is active, activating a profile's key retires that profile's active
 *    key only (and a certificate key the certificate key only), a stale
 *    expected_active is judged within the profile, a key of another
 *    profile is refused, a key's profile never changes; signatures_put
 *    writes records and refusals in one transaction, each record with its
 *    entry's seq and ts (raised like any), a failing job (an id recorded
 *    already, a key of another profile, a malformed record, a key
 *    compromised meanwhile: CS_E_NO_ACTIVE_KEY, no seq taken, the
 *    refusals beside it and a second write of its refusal go on) rolled
 *    back alone, a failed transaction
 *    failing every job with nothing written; signatures read back
 *    (payload not stored, empty, binary) and are never updated nor deleted.
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
#include "test_support.h"

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
	sqlite3 *raw = ts_sqlite_open(path);
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM certificates"), THREADS * ROUNDS);
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM generation_sessions WHERE cert_id IS NOT NULL"),
			 THREADS * ROUNDS);
	assert_int_equal(ts_sqlite_int(raw, "SELECT max(seq) - min(seq) + 1 - count(*) FROM audit_log"), 0);
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
	sqlite3 *raw = ts_sqlite_open(path);
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM certificates"), 1);
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM audit_log WHERE action = 'certify'"), 1);
	/* the certificate is the one the session names */
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM certificates c JOIN generation_sessions s "
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
	sqlite3 *raw = ts_sqlite_open(path);
	ts_sqlite_exec(raw, "BEGIN IMMEDIATE");
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
	ts_sqlite_exec(raw, "ROLLBACK");
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
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM certificates"), 2); /* cert-0, j-20 */
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM certificates WHERE id = 'j-10'"), 0);
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM audit_log WHERE object = 'j-10'"), 0);
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM generation_sessions WHERE id LIKE 'j-%'"), 16);
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
	sqlite3 *raw = ts_sqlite_open(path);
	ts_sqlite_exec(raw, "BEGIN IMMEDIATE");
	/* one write waiting on the lock, three queued behind it */
	one_job jobs[4];
	pthread_t t[4];
	int64_t t0 = ts_mono_ms();
	for (int i = 0; i < 4; i++) {
		jobs[i] = (one_job){.l = l, .kind = i % 2, .id = i == 1 ? "late-1" : "late-3"};
		assert_int_equal(pthread_create(&t[i], NULL, run_one, &jobs[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	int64_t took = ts_mono_ms() - t0;
	print_message("4 writes failed within %lld ms (write timeout 300 ms)\n", (long long)took);
	for (int i = 0; i < 4; i++)
		assert_int_equal(jobs[i].result, CS_E_STORE);
	assert_true(took >= 250 && took < 2000);
	assert_int_equal(cs_ledger_write_health(l, 60000), CS_E_STORE);
	/* answered means done: released now, none of them is written later */
	ts_sqlite_exec(raw, "ROLLBACK");
	cs_audit_entry e = entry("after");
	assert_int_equal(cs_ledger_audit_append(l, &e), CS_OK);
	assert_int_equal(e.seq, 1);
	assert_int_equal(cs_ledger_write_health(l, 60000), CS_OK);
	cs_ledger_close(l);
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM audit_log"), 1);
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM generation_sessions"), 0);
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
	sqlite3 *raw = ts_sqlite_open(path);
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM signing_keys WHERE status = 'active'"), 1);
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM signing_keys WHERE kid = 'k2' AND status = 'active'"), 1);
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM audit_log WHERE seq = 2 AND action = 'key.retire' "
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
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM generation_sessions"), 2);
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
	sqlite3 *raw = ts_sqlite_open(path);
	char retired_at[32] = "";
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_prepare_v2(raw, "SELECT ts FROM audit_log WHERE action = 'key.retire' AND "
						 "object = 'kA'", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	snprintf(retired_at, sizeof(retired_at), "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM audit_log"), 3);

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
		assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM audit_log"), 3);
		assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM signing_keys WHERE status = 'active'"), 1);
		assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM signing_keys WHERE kid = 'kB' AND "
						    "status = 'active'"), 1);
		assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM signing_keys WHERE kid = 'kA' AND "
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
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM signing_keys WHERE kid = 'kB' AND status = 'active'"),
			 1);
	sqlite3_close(raw);
	cs_ledger_close(l);
	verify_chain(path, 4);
}

/* ---- issue 14: key lifecycle, ceremonies, revocations ------------------------------- */

#define FAR_FUTURE "2099-01-01T00:00:00.000Z"
#define RAW_DIGEST                                                                                           \
	"SELECT json_array("                                                                                 \
	" (SELECT json_group_array(json_array(kid, status, uri, activated_at, activated_by, activated_ceremony," \
	"   retired_at, retired_by, retired_ceremony, compromised_at, compromised_by, compromised_ceremony,"    \
	"   destroyed_at, destroyed_by, destroyed_ceremony, x5c_json, profile))"                                \
	"   FROM (SELECT * FROM signing_keys ORDER BY kid)),"                                                   \
	" (SELECT json_group_array(json_array(id, kid, signature, audit_seq, created_at))"                      \
	"   FROM (SELECT * FROM signatures ORDER BY id)),"                                                      \
	" (SELECT json_group_array(json_array(id, state, executed_at, executed_by, result_json))"            \
	"   FROM (SELECT * FROM ceremonies ORDER BY id)),"                                                     \
	" (SELECT count(*) FROM ceremony_approvals), (SELECT count(*) FROM key_rollovers),"                  \
	" (SELECT count(*) FROM cert_revocations), (SELECT count(*) FROM audit_log),"                        \
	" (SELECT value FROM store_meta WHERE name = 'revocations_count'))"

/* A text of one row and column (malloc'd; NULL for SQL NULL or no row). */
static char *raw_text(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	char *v = NULL;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		v = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return v;
}

/* Everything the lifecycle writes, to show a refusal wrote nothing. */
static char *digest(sqlite3 *db)
{
	char *d = raw_text(db, RAW_DIGEST);
	assert_non_null(d);
	return d;
}

static void assert_unchanged(sqlite3 *db, char *before)
{
	char *after = digest(db);
	assert_string_equal(after, before);
	free(after);
	free(before);
}

/* The audit entry seq as "action object actor outcome". */
static char *audit_line(sqlite3 *db, int64_t seq)
{
	char q[200];
	snprintf(q, sizeof(q), "SELECT action || ' ' || coalesce(object, '-') || ' ' || actor || ' ' || outcome "
			       "FROM audit_log WHERE seq = %lld", (long long)seq);
	return raw_text(db, q);
}

static void assert_audit(sqlite3 *db, int64_t seq, const char *expect)
{
	char *line = audit_line(db, seq);
	if (line == NULL || strcmp(line, expect) != 0)
		fail_msg("audit entry %lld: '%s', expected '%s'", (long long)seq, line ? line : "(none)", expect);
	free(line);
}

static char *audit_ts(sqlite3 *db, int64_t seq)
{
	char q[120];
	snprintf(q, sizeof(q), "SELECT ts FROM audit_log WHERE seq = %lld", (long long)seq);
	char *ts = raw_text(db, q);
	assert_non_null(ts);
	return ts;
}

static cs_audit_entry admin_entry(const char *action, const char *object)
{
	cs_audit_entry e = {.node = "test-1", .actor = "local:alice", .role = "admin", .action = action,
			    .object = object, .outcome = "success"};
	return e;
}

/* A key as cs_store_key_info gives it (copies). */
enum { K_KID, K_URI, K_STATUS, K_CREATED, K_ACT_AT, K_RET_AT, K_JWK, K_LABEL, K_CKA, K_CREATED_BY, K_ACT_BY,
       K_ACT_CER, K_RET_BY, K_RET_CER, K_COMP_AT, K_COMP_BY, K_COMP_CER, K_DES_AT, K_DES_BY, K_DES_CER, K_X5C,
       K_N };
typedef struct {
	char *v[K_N];
} key_row;

static void grab_key(void *arg, const cs_key_info *k)
{
	key_row *r = arg;
	const char *f[K_N] = {k->kid, k->uri, k->status, k->created_at, k->activated_at, k->retired_at,
			      k->jwk_json, k->label, k->cka_id, k->created_by, k->activated_by,
			      k->activated_ceremony, k->retired_by, k->retired_ceremony, k->compromised_at,
			      k->compromised_by, k->compromised_ceremony, k->destroyed_at, k->destroyed_by,
			      k->destroyed_ceremony, k->x5c_json};
	for (int i = 0; i < K_N; i++)
		r->v[i] = f[i] != NULL ? strdup(f[i]) : NULL;
}

static key_row get_key(const char *path, const char *kid)
{
	cs_store *s = NULL;
	key_row r = {{NULL}};
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	assert_int_equal(cs_store_key_info(s, kid, grab_key, &r), CS_OK);
	cs_store_close(s);
	return r;
}

static void key_row_free(key_row *r)
{
	for (int i = 0; i < K_N; i++)
		free(r->v[i]);
}

static void assert_field(const key_row *r, int i, const char *expect)
{
	if (expect == NULL) {
		if (r->v[i] != NULL)
			fail_msg("key %s field %d: '%s', expected NULL", r->v[K_KID], i, r->v[i]);
	} else if (r->v[i] == NULL || strcmp(r->v[i], expect) != 0) {
		fail_msg("key %s field %d: '%s', expected '%s'", r->v[K_KID], i, r->v[i] ? r->v[i] : "(NULL)", expect);
	}
}

static cs_err add_pending(cs_ledger *l, const char *kid, cs_audit_entry *e)
{
	char uri[128], jwk[128];
	snprintf(uri, sizeof(uri), "pkcs11:token=t;object=%s;id=%%0a%%1b", kid);
	snprintf(jwk, sizeof(jwk), "{\"crv\":\"P-256\",\"kid\":\"%s\",\"kty\":\"EC\"}", kid);
	cs_key_info k = {.kid = kid, .uri = uri, .jwk_json = jwk, .label = kid, .cka_id = "0a1b",
			 .created_by = "local:alice", .status = "active" /* ignored */};
	*e = admin_entry("key.generate", kid);
	return cs_ledger_key_add_pending(l, &k, e);
}

static void pending(cs_ledger *l, const char *kid)
{
	cs_audit_entry e;
	assert_int_equal(add_pending(l, kid, &e), CS_OK);
}

static cs_err bootstrap(cs_ledger *l, const char *kid, int *changed, cs_audit_entry *e)
{
	char uri[128], jwk[128];
	snprintf(uri, sizeof(uri), "pkcs11:token=cfg;object=%s", kid);
	snprintf(jwk, sizeof(jwk), "{\"kid\":\"%s\",\"kty\":\"EC\"}", kid);
	cs_key_info k = {.kid = kid, .uri = uri, .jwk_json = jwk};
	*e = entry("key.activate");
	e->actor = "system";
	e->object = kid;
	return cs_ledger_key_bootstrap(l, &k, "config:pkcs11.signing_key", changed, e);
}

static void start_ceremony(cs_ledger *l, const char *id, const char *action, const char *subject,
			   const char *created, const char *expires)
{
	cs_ceremony_record c = {.id = id, .action = action, .subject = subject, .reason = "scheduled rotation",
				.params_json = "{}", .nonce = "bm9uY2Utbm9uY2U", .node = "test-1",
				.created_at = created, .expires_at = expires, .started_by = "local:alice",
				.canonical = "{\"type\":\"credsign-ceremony/v1\"}"};
	cs_audit_entry e = admin_entry("ceremony.start", id);
	assert_int_equal(cs_ledger_ceremony_create(l, &c, &e), CS_OK);
	assert_true(e.seq > 0);
}

static cs_err approve(cs_ledger *l, const char *id, const char *officer, const char *fingerprint,
		      cs_audit_entry *e)
{
	cs_approval_record a = {.ceremony_id = id, .officer = officer, .fingerprint = fingerprint,
				.cert_pem = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n",
				.sig_alg = "ecdsa-with-SHA256", .signature_b64 = "MEUCIQDfake==",
				.approved_at = "2026-01-01T00:00:01.000Z", .approved_by = "local:bob"};
	*e = admin_entry("ceremony.approve", id);
	e->actor = "local:bob";
	return cs_ledger_ceremony_approve(l, &a, e);
}

static char exec_at[32];

static cs_err execute(cs_ledger *l, const char *id, const char *action, const char *subject, const char *expected,
		      cs_audit_entry *e)
{
	cs_audit_now(exec_at);
	cs_ceremony_exec x = {.ceremony_id = id, .action = action, .subject = subject, .expected_active = expected,
			      .rollover_json = "{\"payload\":\"e30\",\"signatures\":[]}", .reason = "key compromise",
			      .at = exec_at, .actor = "local:carol", .result_json = "{\"done\":true}"};
	*e = admin_entry("ceremony.execute", id);
	e->actor = "local:carol";
	return cs_ledger_ceremony_execute(l, &x, e);
}

/* A ceremony of action on subject, started, approved by two officers and
 * executed: its result. */
static cs_err ceremony(cs_ledger *l, const char *id, const char *action, const char *subject, const char *expected)
{
	cs_audit_entry e;
	start_ceremony(l, id, action, subject, "2026-01-01T00:00:00.000Z", FAR_FUTURE);
	assert_int_equal(approve(l, id, "officer-a", "SHA256:aa", &e), CS_OK);
	assert_int_equal(approve(l, id, "officer-b", "SHA256:bb", &e), CS_OK);
	return execute(l, id, action, subject, expected, &e);
}

/* A ceremony started and approved whose execution is refused with err,
 * writing nothing. */
static void refused(cs_ledger *l, sqlite3 *raw, const char *id, const char *action, const char *subject,
		    const char *expected, cs_err err)
{
	cs_audit_entry e;
	start_ceremony(l, id, action, subject, "2026-01-01T00:00:00.000Z", FAR_FUTURE);
	assert_int_equal(approve(l, id, "officer-a", "SHA256:aa", &e), CS_OK);
	assert_int_equal(approve(l, id, "officer-b", "SHA256:bb", &e), CS_OK);
	char *before = digest(raw);
	cs_err r = execute(l, id, action, subject, expected, &e);
	if (r != err)
		fail_msg("%s %s: %s, expected %s", action, subject, cs_strerror(r), cs_strerror(err));
	assert_int_equal(e.seq, 0);
	assert_unchanged(raw, before);
}

static int64_t audit_count(sqlite3 *raw)
{
	return ts_sqlite_int(raw, "SELECT count(*) FROM audit_log");
}

static void test_pending_and_bootstrap(void **state)
{
	(void)state;
	char path[600];
	new_db(path, sizeof(path));
	cs_ledger *l = NULL;
	assert_int_equal(cs_ledger_open(path, 2000, &l), CS_OK);
	sqlite3 *raw = ts_sqlite_open(path);
	cs_store *s = NULL;
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	int ever = 1, changed = 0;
	cs_active_key act;
	assert_int_equal(cs_store_keys_ever_active(s, &ever), CS_OK);
	assert_int_equal(ever, 0);
	assert_int_equal(cs_store_key_active(s, &act), CS_E_NOT_FOUND);
	assert_null(act.kid);

	/* pending: recorded with its label, CKA_ID and creator; once */
	cs_audit_entry e;
	assert_int_equal(add_pending(l, "kP", &e), CS_OK);
	assert_int_equal(e.seq, 1);
	assert_audit(raw, 1, "key.generate kP local:alice success");
	key_row k = get_key(path, "kP");
	assert_field(&k, K_STATUS, "pending");
	assert_field(&k, K_LABEL, "kP");
	assert_field(&k, K_CKA, "0a1b");
	assert_field(&k, K_CREATED_BY, "local:alice");
	assert_field(&k, K_URI, "pkcs11:token=t;object=kP;id=%0a%1b");
	assert_field(&k, K_JWK, "{\"crv\":\"P-256\",\"kid\":\"kP\",\"kty\":\"EC\"}");
	assert_field(&k, K_ACT_AT, NULL);
	assert_field(&k, K_RET_AT, NULL);
	assert_field(&k, K_X5C, NULL);
	assert_non_null(k.v[K_CREATED]);
	key_row_free(&k);
	char *before = digest(raw);
	assert_int_equal(add_pending(l, "kP", &e), CS_E_KEY_EXISTS);
	assert_int_equal(e.seq, 0);
	assert_unchanged(raw, before);
	assert_int_equal(cs_store_key_info(s, "nope", NULL, NULL), CS_E_NOT_FOUND);
	/* a pending key is no active key, and no key was ever active */
	assert_int_equal(cs_store_keys_ever_active(s, &ever), CS_OK);
	assert_int_equal(ever, 0);
	assert_int_equal(cs_store_key_active(s, &act), CS_E_NOT_FOUND);
	/* malformed: a JWK of another kid, CKA_ID not lowercase hex, no URI */
	cs_key_info bad = {.kid = "kX", .uri = "u", .jwk_json = "{\"kid\":\"kY\"}"};
	assert_int_equal(cs_ledger_key_add_pending(l, &bad, NULL), CS_E_INVALID_ARG);
	bad.jwk_json = "{}";
	bad.cka_id = "0A";
	assert_int_equal(cs_ledger_key_add_pending(l, &bad, NULL), CS_E_INVALID_ARG);
	bad.cka_id = NULL;
	bad.uri = NULL;
	assert_int_equal(cs_ledger_key_add_pending(l, &bad, NULL), CS_E_INVALID_ARG);
	bad.uri = "u";
	bad.jwk_json = "[1]";
	assert_int_equal(cs_ledger_key_add_pending(l, &bad, NULL), CS_E_INVALID_ARG);

	/* bootstrap: the store never had an active key: the pending key
	 * configured becomes active (its record, uri included, stays) */
	assert_int_equal(bootstrap(l, "kP", &changed, &e), CS_OK);
	assert_int_equal(changed, 1);
	assert_int_equal(e.seq, 2);
	assert_audit(raw, 2, "key.activate kP system success");
	k = get_key(path, "kP");
	assert_field(&k, K_STATUS, "active");
	assert_field(&k, K_URI, "pkcs11:token=t;object=kP;id=%0a%1b");
	assert_field(&k, K_ACT_AT, e.ts);
	assert_field(&k, K_ACT_BY, "config:pkcs11.signing_key");
	assert_field(&k, K_ACT_CER, NULL);
	key_row_free(&k);
	assert_int_equal(cs_store_key_active(s, &act), CS_OK);
	assert_string_equal(act.kid, "kP");
	assert_string_equal(act.uri, "pkcs11:token=t;object=kP;id=%0a%1b");
	assert_null(act.x5c_json);
	cs_active_key_free(&act);
	assert_null(act.kid);
	assert_int_equal(cs_store_keys_ever_active(s, &ever), CS_OK);
	assert_int_equal(ever, 1);
	/* a key is active: the configuration changes nothing, nothing written */
	before = digest(raw);
	assert_int_equal(bootstrap(l, "kOther", &changed, &e), CS_OK);
	assert_int_equal(changed, 0);
	assert_int_equal(e.seq, 0);
	assert_int_equal(bootstrap(l, "kP", &changed, &e), CS_OK);
	assert_int_equal(changed, 0);
	assert_unchanged(raw, before);
	assert_int_equal(cs_store_key_info(s, "kOther", NULL, NULL), CS_E_NOT_FOUND);

	/* a key that was active (now retired, none active): still the store decides */
	pending(l, "kQ");
	assert_int_equal(ceremony(l, "cer_1", "activate", "kQ", "kP"), CS_OK);
	assert_int_equal(ceremony(l, "cer_2", "compromise", "kQ", NULL), CS_OK);
	assert_int_equal(cs_store_key_active(s, &act), CS_E_NOT_FOUND);
	before = digest(raw);
	assert_int_equal(bootstrap(l, "kNew", &changed, &e), CS_OK);
	assert_int_equal(changed, 0);
	/* a retired or compromised kid is refused */
	assert_int_equal(bootstrap(l, "kP", &changed, &e), CS_E_KEY_FORBIDDEN);
	assert_int_equal(changed, 0);
	assert_int_equal(bootstrap(l, "kQ", &changed, &e), CS_E_KEY_FORBIDDEN);
	assert_int_equal(e.seq, 0);
	assert_unchanged(raw, before);
	int64_t entries = audit_count(raw);
	cs_store_close(s);
	sqlite3_close(raw);
	cs_ledger_close(l);

	/* an unrecorded configured key on a fresh store: recorded active */
	char path2[600];
	new_db(path2, sizeof(path2));
	assert_int_equal(cs_ledger_open(path2, 2000, &l), CS_OK);
	assert_int_equal(bootstrap(l, "kC", &changed, &e), CS_OK);
	assert_int_equal(changed, 1);
	k = get_key(path2, "kC");
	assert_field(&k, K_STATUS, "active");
	assert_field(&k, K_URI, "pkcs11:token=cfg;object=kC");
	assert_field(&k, K_ACT_AT, e.ts);
	assert_field(&k, K_ACT_BY, "config:pkcs11.signing_key");
	key_row_free(&k);
	cs_ledger_close(l);
	verify_chain(path2, 1);
	verify_chain(path, entries);
}

static void test_activate_ceremony(void **state)
{
	(void)state;
	char path[600];
	new_db(path, sizeof(path));
	cs_ledger *l = NULL;
	assert_int_equal(cs_ledger_open(path, 2000, &l), CS_OK);
	sqlite3 *raw = ts_sqlite_open(path);
	cs_store *s = NULL;
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	int changed = 0;
	cs_audit_entry e;
	assert_int_equal(bootstrap(l, "kA", &changed, &e), CS_OK);
	pending(l, "kB");
	start_ceremony(l, "cer_act", "activate", "kB", "2026-01-01T00:00:00.000Z", FAR_FUTURE);
	assert_int_equal(approve(l, "cer_act", "officer-a", "SHA256:aa", &e), CS_OK);
	assert_int_equal(approve(l, "cer_act", "officer-b", "SHA256:bb", &e), CS_OK);
	int64_t n0 = audit_count(raw);
	assert_int_equal(n0, 5);
	assert_int_equal(execute(l, "cer_act", "activate", "kB", "kA", &e), CS_OK);
	/* the old key retired, the new one active, the rollover kept, all audited, in one go */
	assert_int_equal(e.seq, n0 + 3);
	assert_audit(raw, n0 + 1, "key.retire kA local:carol success");
	assert_audit(raw, n0 + 2, "key.activate kB local:carol success");
	assert_audit(raw, n0 + 3, "ceremony.execute cer_act local:carol success");
	char *ts_retire = audit_ts(raw, n0 + 1), *ts_activate = audit_ts(raw, n0 + 2);
	key_row a = get_key(path, "kA"), b = get_key(path, "kB");
	assert_field(&a, K_STATUS, "retired");
	assert_field(&a, K_RET_AT, ts_retire);
	assert_field(&a, K_RET_BY, "local:carol");
	assert_field(&a, K_RET_CER, "cer_act");
	assert_non_null(a.v[K_ACT_AT]); /* still says when it was active */
	assert_field(&b, K_STATUS, "active");
	assert_field(&b, K_ACT_AT, ts_activate);
	assert_field(&b, K_ACT_BY, "local:carol");
	assert_field(&b, K_ACT_CER, "cer_act");
	assert_field(&b, K_RET_AT, NULL);
	assert_true(strcmp(ts_activate, exec_at) >= 0);
	key_row_free(&a);
	key_row_free(&b);
	cs_active_key act;
	assert_int_equal(cs_store_key_active(s, &act), CS_OK);
	assert_string_equal(act.kid, "kB");
	cs_active_key_free(&act);
	char *r = raw_text(raw, "SELECT ceremony_id || ' ' || old_kid || ' ' || new_kid || ' ' || statement_json || ' ' "
				"|| created_at FROM key_rollovers");
	char expect[256];
	snprintf(expect, sizeof(expect), "cer_act kA kB {\"payload\":\"e30\",\"signatures\":[]} %s", ts_activate);
	assert_string_equal(r, expect);
	free(r);
	r = raw_text(raw, "SELECT state || ' ' || executed_by || ' ' || result_json FROM ceremonies WHERE id = 'cer_act'");
	assert_string_equal(r, "executed local:carol {\"done\":true}");
	free(r);
	/* executed at the execution's time: its entries', never before the time given */
	r = raw_text(raw, "SELECT executed_at FROM ceremonies WHERE id = 'cer_act'");
	char *ts_exec = audit_ts(raw, n0 + 3);
	assert_string_equal(r, ts_exec);
	assert_string_equal(e.ts, ts_exec);
	assert_true(strcmp(r, exec_at) >= 0);
	free(ts_exec);
	free(r);
	free(ts_retire);
	free(ts_activate);

	/* refusals write nothing (not even an audit entry: the caller audits them) */
	char *before = digest(raw);
	assert_int_equal(execute(l, "cer_act", "activate", "kB", "kA", &e), CS_E_CEREMONY_CLOSED);
	assert_int_equal(e.seq, 0);
	assert_unchanged(raw, before);
	refused(l, raw, "cer_ret", "activate", "kA", "kB", CS_E_KEY_FORBIDDEN);  /* the retired key */
	refused(l, raw, "cer_again", "activate", "kB", "kB", CS_E_CONFLICT);    /* the active key */
	refused(l, raw, "cer_unknown", "activate", "kZ", "kB", CS_E_NOT_FOUND); /* an unknown key */
	/* a stale rollover: signed when kA was active (or none), kB is now */
	pending(l, "kC");
	refused(l, raw, "cer_c", "activate", "kC", "kA", CS_E_CONFLICT);
	before = digest(raw);
	assert_int_equal(execute(l, "cer_c", "activate", "kC", NULL, &e), CS_E_CONFLICT);
	/* what the ceremony is not */
	assert_int_equal(execute(l, "cer_c", "activate", "kD", "kB", &e), CS_E_INVALID_ARG);
	assert_int_equal(execute(l, "cer_c", "retire", "kC", NULL, &e), CS_E_INVALID_ARG);
	assert_int_equal(execute(l, "cer_none", "activate", "kC", "kB", &e), CS_E_NOT_FOUND);
	assert_int_equal(e.seq, 0);
	assert_unchanged(raw, before);
	/* the compromised key: never active again */
	pending(l, "kX");
	assert_int_equal(ceremony(l, "cer_x1", "compromise", "kX", NULL), CS_OK);
	refused(l, raw, "cer_x2", "activate", "kX", "kB", CS_E_KEY_FORBIDDEN);
	/* and the up-to-date rollover goes through */
	assert_int_equal(execute(l, "cer_c", "activate", "kC", "kB", &e), CS_OK);
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM signing_keys WHERE status = 'active'"), 1);
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM signing_keys WHERE kid = 'kB' AND status = 'retired' "
					    "AND retired_ceremony = 'cer_c'"), 1);
	/* rollovers, oldest first */
	r = raw_text(raw, "SELECT group_concat(ceremony_id || ':' || old_kid || '>' || new_kid, ',') FROM "
			  "(SELECT * FROM key_rollovers ORDER BY id)");
	assert_string_equal(r, "cer_act:kA>kB,cer_c:kB>kC");
	free(r);
	/* the schema itself refuses a retired key made active, or a second active key */
	char *msg = NULL;
	assert_int_not_equal(sqlite3_exec(raw, "UPDATE signing_keys SET status = 'active' WHERE kid = 'kA'", NULL, NULL,
					  &msg), SQLITE_OK);
	sqlite3_free(msg);
	assert_int_not_equal(sqlite3_exec(raw, "UPDATE signing_keys SET status = 'pending' WHERE kid = 'kX'", NULL,
					  NULL, &msg), SQLITE_OK);
	sqlite3_free(msg);
	assert_int_not_equal(sqlite3_exec(raw, "INSERT INTO signing_keys (kid, uri, jwk_json, status) VALUES "
					       "('k2', 'u', '{}', 'active')", NULL, NULL, &msg), SQLITE_OK);
	sqlite3_free(msg);
	int64_t entries = audit_count(raw);
	cs_store_close(s);
	sqlite3_close(raw);
	cs_ledger_close(l);
	verify_chain(path, entries);
}

typedef struct {
	const char *path;
	cs_ledger *shared; /* or NULL: a ledger of its own (another process) */
	const char *id, *subject, *expected;
	atomic_int *go;
	cs_err result;
} executor;

static void *execute_race(void *p)
{
	executor *x = p;
	cs_ledger *l = x->shared;
	if (l == NULL && cs_ledger_open(x->path, 5000, &l) != CS_OK) {
		x->result = CS_E_INTERNAL;
		return NULL;
	}
	char at[32];
	cs_audit_now(at);
	cs_ceremony_exec ex = {.ceremony_id = x->id, .action = "activate", .subject = x->subject,
			       .expected_active = x->expected, .rollover_json = "{}", .at = at,
			       .actor = "local:carol"};
	cs_audit_entry e = admin_entry("ceremony.execute", x->id);
	while (!atomic_load(x->go))
		;
	x->result = cs_ledger_ceremony_execute(l, &ex, &e);
	if (x->shared == NULL)
		cs_ledger_close(l);
	return NULL;
}

/* Of concurrent executions of a ceremony one wins, the others find it closed:
 * writers of two processes, and two submitters of one writer thread. */
static void test_execute_once(void **state)
{
	(void)state;
	char path[600];
	new_db(path, sizeof(path));
	cs_ledger *l = NULL;
	assert_int_equal(cs_ledger_open(path, 5000, &l), CS_OK);
	int changed = 0;
	cs_audit_entry e;
	assert_int_equal(bootstrap(l, "k0", &changed, &e), CS_OK);
	assert_int_equal(cs_ledger_start(l), CS_OK);
	enum { ROUNDS_X = 8, RACERS = 4 };
	for (int round = 1; round <= ROUNDS_X; round++) {
		char kid[16], prev[16], id[16];
		snprintf(kid, sizeof(kid), "k%d", round);
		snprintf(prev, sizeof(prev), "k%d", round - 1);
		snprintf(id, sizeof(id), "cer_%d", round);
		pending(l, kid);
		start_ceremony(l, id, "activate", kid, "2026-01-01T00:00:00.000Z", FAR_FUTURE);
		atomic_int go = 0;
		executor x[RACERS];
		pthread_t t[RACERS];
		for (int i = 0; i < RACERS; i++) {
			/* odd rounds: each its own ledger; even rounds: one writer thread */
			x[i] = (executor){path, round % 2 ? NULL : l, id, kid, prev, &go, CS_E_INTERNAL};
			assert_int_equal(pthread_create(&t[i], NULL, execute_race, &x[i]), 0);
		}
		atomic_store(&go, 1);
		int won = 0, closed = 0;
		for (int i = 0; i < RACERS; i++) {
			pthread_join(t[i], NULL);
			won += x[i].result == CS_OK;
			closed += x[i].result == CS_E_CEREMONY_CLOSED;
		}
		assert_int_equal(won, 1);
		assert_int_equal(closed, RACERS - 1);
	}
	cs_ledger_close(l);
	sqlite3 *raw = ts_sqlite_open(path);
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM key_rollovers"), ROUNDS_X);
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM audit_log WHERE action = 'ceremony.execute'"), ROUNDS_X);
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM audit_log WHERE action = 'key.activate'"), ROUNDS_X + 1);
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM signing_keys WHERE status = 'retired'"), ROUNDS_X);
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM signing_keys WHERE kid = 'k8' AND status = 'active'"), 1);
	int64_t entries = audit_count(raw);
	sqlite3_close(raw);
	verify_chain(path, entries);
}

/* A certification committed after its key's compromise is refused: the
 * daemon may still hold the key for up to its poll. */
static void test_no_certificate_under_compromised_key(void **state)
{
	(void)state;
	char path[600];
	new_db(path, sizeof(path));
	cs_ledger *l = NULL;
	assert_int_equal(cs_ledger_open(path, 2000, &l), CS_OK);
	sqlite3 *raw = ts_sqlite_open(path);
	int changed = 0;
	cs_audit_entry e;
	assert_int_equal(bootstrap(l, "kA", &changed, &e), CS_OK);
	cs_gen_session s1 = session("s-1"), s2 = session("s-2");
	assert_int_equal(cs_ledger_session_put(l, &s1, NULL), CS_OK);
	assert_int_equal(cs_ledger_session_put(l, &s2, NULL), CS_OK);
	assert_int_equal(cs_ledger_certify(l, "s-1", "c-1", "kA", "h.eyJhIjoxfQ.s", 1, NULL), CS_OK);
	assert_int_equal(ceremony(l, "cer_x1", "compromise", "kA", NULL), CS_OK);
	cs_audit_entry c = entry("certify");
	assert_int_equal(cs_ledger_certify(l, "s-2", "c-2", "kA", "h.eyJhIjoxfQ.s", 1, &c), CS_E_NO_ACTIVE_KEY);
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM certificates"), 1);
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM generation_sessions WHERE id = 's-2' AND cert_id IS NULL"), 1);
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM audit_log WHERE action = 'certify'"), 0);
	sqlite3_close(raw);
	cs_ledger_close(l);
}

static void test_retire_compromise_destroy(void **state)
{
	(void)state;
	char path[600];
	new_db(path, sizeof(path));
	cs_ledger *l = NULL;
	assert_int_equal(cs_ledger_open(path, 2000, &l), CS_OK);
	sqlite3 *raw = ts_sqlite_open(path);
	int changed = 0;
	cs_audit_entry e;
	assert_int_equal(bootstrap(l, "kA", &changed, &e), CS_OK);
	pending(l, "kP");
	pending(l, "kQ");
	pending(l, "kR");

	/* retire: a pending key; the active key only by activating a successor */
	refused(l, raw, "cer_r0", "retire", "kZ", NULL, CS_E_NOT_FOUND);
	refused(l, raw, "cer_r1", "retire", "kA", NULL, CS_E_KEY_FORBIDDEN);
	int64_t n = audit_count(raw);
	assert_int_equal(ceremony(l, "cer_r2", "retire", "kP", NULL), CS_OK);
	assert_audit(raw, n + 4, "key.retire kP local:carol success");
	assert_audit(raw, n + 5, "ceremony.execute cer_r2 local:carol success");
	char *ts = audit_ts(raw, n + 4);
	key_row k = get_key(path, "kP");
	assert_field(&k, K_STATUS, "retired");
	assert_field(&k, K_RET_AT, ts);
	assert_field(&k, K_RET_BY, "local:carol");
	assert_field(&k, K_RET_CER, "cer_r2");
	assert_field(&k, K_ACT_AT, NULL);
	key_row_free(&k);
	free(ts);
	refused(l, raw, "cer_r3", "retire", "kP", NULL, CS_E_CONFLICT);

	/* compromise from every state: pending, retired, active */
	const char *subjects[] = {"kQ", "kP", "kA"};
	for (int i = 0; i < 3; i++) {
		char id[24];
		snprintf(id, sizeof(id), "cer_c%d", i);
		n = audit_count(raw);
		assert_int_equal(ceremony(l, id, "compromise", subjects[i], NULL), CS_OK);
		char line[96];
		snprintf(line, sizeof(line), "key.compromise %s local:carol success", subjects[i]);
		assert_audit(raw, n + 4, line);
		ts = audit_ts(raw, n + 4);
		k = get_key(path, subjects[i]);
		assert_field(&k, K_STATUS, "compromised");
		assert_field(&k, K_COMP_AT, ts);
		assert_field(&k, K_COMP_BY, "local:carol");
		assert_field(&k, K_COMP_CER, id);
		key_row_free(&k);
		free(ts);
	}
	/* the active key compromised: none is active now (certify fails closed) */
	cs_store *s = NULL;
	cs_active_key act;
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	assert_int_equal(cs_store_key_active(s, &act), CS_E_NOT_FOUND);
	k = get_key(path, "kP"); /* retired, then compromised: both dates kept */
	assert_non_null(k.v[K_RET_AT]);
	assert_non_null(k.v[K_COMP_AT]);
	key_row_free(&k);
	refused(l, raw, "cer_c9", "compromise", "kA", NULL, CS_E_CONFLICT);
	/* a compromised key is not retired */
	refused(l, raw, "cer_r4", "retire", "kQ", NULL, CS_E_KEY_FORBIDDEN);
	/* a new key activated after a compromise: no predecessor */
	assert_int_equal(ceremony(l, "cer_new", "activate", "kR", NULL), CS_OK);
	assert_int_equal(cs_store_key_active(s, &act), CS_OK);
	assert_string_equal(act.kid, "kR");
	cs_active_key_free(&act);
	char *r = raw_text(raw, "SELECT coalesce(old_kid, 'none') || '>' || new_kid FROM key_rollovers "
				"WHERE ceremony_id = 'cer_new'");
	assert_string_equal(r, "none>kR");
	free(r);

	/* destroy: retired or compromised keys, once; never pending or active */
	pending(l, "kS");
	refused(l, raw, "cer_d1", "destroy", "kS", NULL, CS_E_KEY_FORBIDDEN);
	refused(l, raw, "cer_d2", "destroy", "kR", NULL, CS_E_KEY_FORBIDDEN);
	for (int i = 0; i < 2; i++) { /* kP compromised after retired, kQ compromised */
		const char *kid = i == 0 ? "kP" : "kQ";
		char id[24];
		snprintf(id, sizeof(id), "cer_d%d", 3 + i);
		n = audit_count(raw);
		assert_int_equal(ceremony(l, id, "destroy", kid, NULL), CS_OK);
		char line[96];
		snprintf(line, sizeof(line), "key.destroy %s local:carol success", kid);
		assert_audit(raw, n + 4, line);
		ts = audit_ts(raw, n + 4);
		k = get_key(path, kid);
		assert_field(&k, K_STATUS, "compromised"); /* a mark, not a state */
		assert_field(&k, K_DES_AT, ts);
		assert_field(&k, K_DES_BY, "local:carol");
		assert_field(&k, K_DES_CER, id);
		key_row_free(&k);
		free(ts);
	}
	pending(l, "kT");
	assert_int_equal(ceremony(l, "cer_t", "retire", "kT", NULL), CS_OK);
	assert_int_equal(ceremony(l, "cer_d5", "destroy", "kT", NULL), CS_OK);
	refused(l, raw, "cer_d6", "destroy", "kT", NULL, CS_E_CONFLICT);
	/* the destruction cannot be undone underneath either */
	char *msg = NULL;
	assert_int_not_equal(sqlite3_exec(raw, "UPDATE signing_keys SET destroyed_at = NULL WHERE kid = 'kT'", NULL,
					  NULL, &msg), SQLITE_OK);
	sqlite3_free(msg);
	/* purge: marks the ceremony executed, nothing else */
	n = audit_count(raw);
	assert_int_equal(ceremony(l, "cer_p", "purge", "", NULL), CS_OK);
	assert_audit(raw, n + 4, "ceremony.execute cer_p local:carol success");
	assert_int_equal(audit_count(raw), n + 4);
	int64_t entries = audit_count(raw);
	cs_store_close(s);
	sqlite3_close(raw);
	cs_ledger_close(l);
	verify_chain(path, entries);
}

typedef struct {
	int n, napp;
	char ids[8][32];
	char officers[8][32];
	char state[16];
} ceremony_seen;

static void see_ceremony(void *arg, const cs_ceremony_record *c)
{
	ceremony_seen *cs = arg;
	if (cs->n < 8)
		snprintf(cs->ids[cs->n++], 32, "%s", c->id);
	snprintf(cs->state, sizeof(cs->state), "%s", c->state);
	assert_non_null(c->canonical);
	assert_non_null(c->nonce);
	assert_string_equal(c->reason, "scheduled rotation");
}

static void see_approval(void *arg, const cs_approval_record *a)
{
	ceremony_seen *cs = arg;
	if (cs->napp < 8)
		snprintf(cs->officers[cs->napp++], 32, "%s", a->officer);
	assert_string_equal(a->sig_alg, "ecdsa-with-SHA256");
	assert_string_equal(a->approved_by, "local:bob");
	assert_non_null(strstr(a->cert_pem, "BEGIN CERTIFICATE"));
}

static void test_ceremony_approvals_and_expiry(void **state)
{
	(void)state;
	char path[600];
	new_db(path, sizeof(path));
	cs_ledger *l = NULL;
	assert_int_equal(cs_ledger_open(path, 2000, &l), CS_OK);
	sqlite3 *raw = ts_sqlite_open(path);
	cs_audit_entry e;
	int changed = 0;
	assert_int_equal(bootstrap(l, "kA", &changed, &e), CS_OK);
	pending(l, "kB");
	start_ceremony(l, "cer_1", "activate", "kB", "2026-01-01T00:00:00.000Z", FAR_FUTURE);
	start_ceremony(l, "cer_2", "retire", "kB", "2026-01-02T00:00:00.000Z", FAR_FUTURE);
	/* an id once */
	cs_ceremony_record dup = {.id = "cer_1", .action = "purge", .subject = "", .params_json = "{}", .nonce = "n",
				  .node = "test-1", .created_at = "2026-01-03T00:00:00.000Z",
				  .expires_at = FAR_FUTURE, .started_by = "local:alice", .canonical = "{}"};
	assert_int_equal(cs_ledger_ceremony_create(l, &dup, NULL), CS_E_CONFLICT);
	/* malformed: an unknown action, a time of another form, expiry before creation */
	dup.id = "cer_bad";
	dup.action = "rekey";
	assert_int_equal(cs_ledger_ceremony_create(l, &dup, NULL), CS_E_INVALID_ARG);
	dup.action = "purge";
	dup.created_at = "2026-01-03T00:00:00Z";
	assert_int_equal(cs_ledger_ceremony_create(l, &dup, NULL), CS_E_INVALID_ARG);
	dup.created_at = FAR_FUTURE;
	dup.expires_at = "2026-01-03T00:00:00.000Z";
	assert_int_equal(cs_ledger_ceremony_create(l, &dup, NULL), CS_E_INVALID_ARG);

	/* approvals: distinct officers by fingerprint and by name */
	assert_int_equal(approve(l, "cer_1", "officer-a", "SHA256:aa", &e), CS_OK);
	assert_audit(raw, e.seq, "ceremony.approve cer_1 local:bob success");
	char *before = digest(raw);
	assert_int_equal(approve(l, "cer_1", "officer-a2", "SHA256:aa", &e), CS_E_CONFLICT); /* same certificate */
	assert_int_equal(e.seq, 0);
	assert_int_equal(approve(l, "cer_1", "officer-a", "SHA256:a2", &e), CS_E_CONFLICT); /* same name, new cert */
	assert_int_equal(approve(l, "cer_none", "officer-b", "SHA256:bb", &e), CS_E_NOT_FOUND);
	assert_unchanged(raw, before);
	assert_int_equal(approve(l, "cer_1", "officer-b", "SHA256:bb", &e), CS_OK);
	/* the same officer approves another ceremony */
	assert_int_equal(approve(l, "cer_2", "officer-a", "SHA256:aa", &e), CS_OK);

	cs_store *s = NULL;
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	ceremony_seen seen = {0};
	assert_int_equal(cs_store_ceremony_get(s, "cer_1", see_ceremony, see_approval, &seen), CS_OK);
	assert_int_equal(seen.n, 1);
	assert_int_equal(seen.napp, 2);
	assert_string_equal(seen.state, "open");
	assert_string_equal(seen.officers[0], "officer-a");
	assert_string_equal(seen.officers[1], "officer-b");
	assert_int_equal(cs_store_ceremony_get(s, "cer_none", see_ceremony, see_approval, &seen), CS_E_NOT_FOUND);
	assert_int_equal(cs_store_ceremony_get(s, "cer_1", NULL, NULL, NULL), CS_OK);
	/* newest first */
	seen = (ceremony_seen){0};
	assert_int_equal(cs_store_ceremonies_each(s, see_ceremony, &seen), CS_OK);
	assert_int_equal(seen.n, 2);
	assert_string_equal(seen.ids[0], "cer_2");
	assert_string_equal(seen.ids[1], "cer_1");

	/* executed: closed to approvals and executions */
	assert_int_equal(execute(l, "cer_1", "activate", "kB", "kA", &e), CS_OK);
	before = digest(raw);
	assert_int_equal(approve(l, "cer_1", "officer-c", "SHA256:cc", &e), CS_E_CEREMONY_CLOSED);
	assert_int_equal(execute(l, "cer_1", "activate", "kB", "kA", &e), CS_E_CEREMONY_CLOSED);
	assert_unchanged(raw, before);
	seen = (ceremony_seen){0};
	assert_int_equal(cs_store_ceremony_get(s, "cer_1", see_ceremony, NULL, &seen), CS_OK);
	assert_string_equal(seen.state, "executed");

	/* expired: by the execution time given, and by the clock when the
	 * execution time given is earlier (a caller's stale time) */
	pending(l, "kC");
	start_ceremony(l, "cer_old", "activate", "kC", "2000-01-01T00:00:00.000Z", "2000-01-01T01:00:00.000Z");
	before = digest(raw);
	assert_int_equal(execute(l, "cer_old", "activate", "kC", "kB", &e), CS_E_CEREMONY_EXPIRED);
	assert_int_equal(e.seq, 0);
	cs_ceremony_exec x = {.ceremony_id = "cer_old", .action = "activate", .subject = "kC", .expected_active = "kB",
			      .rollover_json = "{}", .at = "2000-01-01T00:30:00.000Z", .actor = "local:carol"};
	assert_int_equal(cs_ledger_ceremony_execute(l, &x, NULL), CS_E_CEREMONY_EXPIRED);
	assert_int_equal(approve(l, "cer_old", "officer-c", "SHA256:cc", &e), CS_E_CEREMONY_EXPIRED);
	/* malformed execution: no rollover statement for activate, a bad time */
	x.ceremony_id = "cer_2";
	x.rollover_json = NULL;
	assert_int_equal(cs_ledger_ceremony_execute(l, &x, NULL), CS_E_INVALID_ARG);
	x.rollover_json = "{}";
	x.at = "yesterday";
	assert_int_equal(cs_ledger_ceremony_execute(l, &x, NULL), CS_E_INVALID_ARG);
	assert_unchanged(raw, before);
	/* the refusal the caller audits goes in alone */
	cs_audit_entry refusal = admin_entry("ceremony.execute", "cer_old");
	refusal.outcome = "failure";
	refusal.error_code = "ceremony_expired";
	assert_int_equal(cs_ledger_audit_append(l, &refusal), CS_OK);
	assert_audit(raw, refusal.seq, "ceremony.execute cer_old local:alice failure");
	int64_t entries = audit_count(raw);
	cs_store_close(s);
	sqlite3_close(raw);
	cs_ledger_close(l);
	verify_chain(path, entries);
}

/* M5: a clock set back (or the caller's stale time) revives no expired
 * ceremony: the ledger judges approvals and executions at the latest of
 * the caller's time, the time it took the write lock and the newest audit
 * entry's ts; and an execution is never dated before an approval. Here the
 * log's newest entry (written by a host whose clock was right) is later
 * than this process's clock, as after `faketime -f -2m`. */
static void test_clock_set_back(void **state)
{
	(void)state;
	char path[600];
	new_db(path, sizeof(path));
	cs_ledger *l = NULL;
	assert_int_equal(cs_ledger_open(path, 2000, &l), CS_OK);
	sqlite3 *raw = ts_sqlite_open(path);
	cs_audit_entry e;
	int changed = 0;
	assert_int_equal(bootstrap(l, "kA", &changed, &e), CS_OK);
	pending(l, "kB");
	pending(l, "kC");
	start_ceremony(l, "cer_late", "retire", "kB", "2026-01-01T00:00:00.000Z", "2090-01-01T00:00:00.000Z");
	start_ceremony(l, "cer_ok", "retire", "kC", "2026-01-01T00:00:00.000Z", FAR_FUTURE);
	assert_int_equal(approve(l, "cer_late", "officer-a", "SHA256:aa", &e), CS_OK);
	assert_int_equal(approve(l, "cer_late", "officer-b", "SHA256:bb", &e), CS_OK);
	/* the approval's time is its audit entry's, never before the log's newest */
	cs_audit_entry mark = admin_entry("key.csr", "kA");
	mark.ts = "2070-01-01T00:00:00.000Z";
	assert_int_equal(cs_ledger_audit_append(l, &mark), CS_OK);
	assert_int_equal(approve(l, "cer_ok", "officer-b", "SHA256:bb", &e), CS_OK); /* approved_at 2026-01-01 given */
	assert_string_equal(e.ts, "2070-01-01T00:00:00.000Z");
	char *t = raw_text(raw, "SELECT approved_at FROM ceremony_approvals WHERE ceremony_id = 'cer_ok' AND "
				"officer = 'officer-b'");
	assert_string_equal(t, "2070-01-01T00:00:00.000Z");
	free(t);
	/* an approval recorded without an audit entry, later than any clock here */
	cs_approval_record late = {.ceremony_id = "cer_ok", .officer = "officer-a", .fingerprint = "SHA256:aa",
				   .cert_pem = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n",
				   .sig_alg = "ecdsa-with-SHA256", .signature_b64 = "MEUCIQDfake==",
				   .approved_at = "2080-01-01T00:00:00.000Z", .approved_by = "local:bob"};
	assert_int_equal(cs_ledger_ceremony_approve(l, &late, NULL), CS_OK);
	/* executed now (2026 here): dated at its latest approval (2080), after the log's newest (2070) */
	assert_int_equal(execute(l, "cer_ok", "retire", "kC", NULL, &e), CS_OK);
	assert_string_equal(e.ts, "2080-01-01T00:00:00.000Z");
	t = raw_text(raw, "SELECT executed_at || ' ' || (SELECT retired_at FROM signing_keys WHERE kid = 'kC') "
			  "FROM ceremonies WHERE id = 'cer_ok'");
	assert_string_equal(t, "2080-01-01T00:00:00.000Z 2080-01-01T00:00:00.000Z");
	free(t);

	/* the log's newest entry is now past cer_late's expiry (2090): this
	 * process's clock (2026) and the time it gives do not revive it */
	mark = admin_entry("key.csr", "kA");
	mark.ts = "2095-01-01T00:00:00.000Z";
	assert_int_equal(cs_ledger_audit_append(l, &mark), CS_OK);
	char *before = digest(raw);
	assert_int_equal(execute(l, "cer_late", "retire", "kB", NULL, &e), CS_E_CEREMONY_EXPIRED);
	assert_int_equal(e.seq, 0);
	cs_ceremony_exec x = {.ceremony_id = "cer_late", .action = "retire", .subject = "kB",
			      .at = "2089-12-31T23:59:59.000Z", .actor = "local:carol"};
	assert_int_equal(cs_ledger_ceremony_execute(l, &x, NULL), CS_E_CEREMONY_EXPIRED);
	assert_int_equal(approve(l, "cer_late", "officer-c", "SHA256:cc", &e), CS_E_CEREMONY_EXPIRED);
	assert_int_equal(e.seq, 0);
	assert_unchanged(raw, before);
	key_row b = get_key(path, "kB");
	assert_field(&b, K_STATUS, "pending");
	key_row_free(&b);
	int64_t entries = audit_count(raw);
	sqlite3_close(raw);
	cs_ledger_close(l);
	verify_chain(path, entries);
}

typedef struct {
	int n;
	char line[8][160];
} revocations_seen;

static void see_revocation(void *arg, const cs_revocation_record *r)
{
	revocations_seen *rs = arg;
	if (rs->n < 8)
		snprintf(rs->line[rs->n++], 160, "%s %s %s %s %s", r->cert_id, r->revoked_at, r->reason, r->revoked_by,
			 r->ceremony_id != NULL ? r->ceremony_id : "-");
}

typedef struct {
	char ts[32], line[160];
} rev_expect;

static int rev_cmp(const void *a, const void *b)
{
	const rev_expect *x = a, *y = b;
	int c = strcmp(x->ts, y->ts);
	return c != 0 ? c : strcmp(x->line, y->line);
}

static void test_revocations(void **state)
{
	(void)state;
	char path[600];
	new_db(path, sizeof(path));
	cs_ledger *l = open_ledger(path, 2000, 0);
	sqlite3 *raw = ts_sqlite_open(path);
	const char *certs[] = {"c-a", "c-b", "c-c", "c-d"};
	for (int i = 0; i < 4; i++) {
		char sid[16];
		snprintf(sid, sizeof(sid), "s-%d", i);
		cs_gen_session g = session(sid);
		assert_int_equal(cs_ledger_session_put(l, &g, NULL), CS_OK);
		assert_int_equal(cs_ledger_certify(l, sid, certs[i], "kid-1", "h.eyJhIjoxfQ.s", 1, NULL), CS_OK);
	}
	cs_store *s = NULL;
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	int64_t count = -1, last = -1, count2 = 0, last2 = 0;
	assert_int_equal(cs_store_revocations_version(s, &count, &last), CS_OK);
	assert_int_equal(count, 0);
	assert_int_equal(last, 0);
	assert_int_equal(cs_store_cert_exists(s, "c-a"), CS_OK);
	assert_int_equal(cs_store_cert_exists(s, "c-z"), CS_E_NOT_FOUND);
	assert_int_equal(cs_store_revocation_get(s, "c-a", see_revocation, NULL), CS_E_NOT_FOUND);

	/* without a ceremony; times out of order (no audit: the times as given) */
	char *before = digest(raw);
	assert_int_equal(cs_ledger_cert_revoke(l, "c-z", "superseded", "2026-03-01T00:00:00.000Z", "local:alice", NULL),
			 CS_E_NOT_FOUND);
	assert_unchanged(raw, before);
	assert_int_equal(cs_ledger_cert_revoke(l, "c-c", "superseded", "2026-03-01T00:00:00.000Z", "local:alice", NULL),
			 CS_OK);
	assert_int_equal(cs_store_revocations_version(s, &count, &last), CS_OK);
	assert_int_equal(count, 1);
	assert_true(last > 0);
	assert_int_equal(cs_ledger_cert_revoke(l, "c-b", "key compromise", "2026-02-01T00:00:00.000Z", "local:alice",
					       NULL), CS_OK);
	assert_int_equal(cs_store_revocations_version(s, &count2, &last2), CS_OK);
	assert_int_equal(count2, 2);
	assert_true(last2 > last);
	/* twice: refused, nothing changes */
	before = digest(raw);
	cs_audit_entry e = admin_entry("cert.revoke", "c-b");
	assert_int_equal(cs_ledger_cert_revoke(l, "c-b", "again", "2026-04-01T00:00:00.000Z", "local:alice", &e),
			 CS_E_CONFLICT);
	assert_int_equal(e.seq, 0);
	assert_int_equal(cs_ledger_cert_revoke(l, "c-b", "", "2026-04-01T00:00:00.000Z", "local:alice", &e),
			 CS_E_INVALID_ARG);
	assert_unchanged(raw, before);
	assert_int_equal(cs_store_revocations_version(s, &count, &last), CS_OK);
	assert_int_equal(count, 2);
	assert_int_equal(last, last2);
	/* audited: cert.revoke, its time the revocation's */
	e = admin_entry("something", NULL);
	assert_int_equal(cs_ledger_cert_revoke(l, "c-a", "cessation", "2026-01-01T00:00:00.000Z", "local:dave", &e),
			 CS_OK);
	assert_true(e.seq > 0);
	assert_audit(raw, e.seq, "cert.revoke c-a local:dave success");
	/* by a ceremony */
	start_ceremony(l, "cer_rv", "revoke", "c-d", "2026-01-01T00:00:00.000Z", FAR_FUTURE);
	assert_int_equal(execute(l, "cer_rv", "revoke", "c-d", NULL, &e), CS_OK);
	assert_audit(raw, e.seq - 1, "cert.revoke c-d local:carol success");
	assert_audit(raw, e.seq, "ceremony.execute cer_rv local:carol success");
	char *ts_d = audit_ts(raw, e.seq - 1);
	refused(l, raw, "cer_rv2", "revoke", "c-d", NULL, CS_E_CONFLICT);
	refused(l, raw, "cer_rv3", "revoke", "c-y", NULL, CS_E_NOT_FOUND);
	assert_int_equal(cs_store_revocations_version(s, &count, &last), CS_OK);
	assert_int_equal(count, 4);
	/* a revocation without a reason (none given, none on the ceremony), and
	 * parameters left out: stored as the canonical bytes have them, {} */
	cs_ceremony_record c = {.id = "cer_rv4", .action = "revoke", .subject = "c-a", .nonce = "n", .node = "test-1",
				.created_at = "2026-01-01T00:00:00.000Z", .expires_at = FAR_FUTURE,
				.started_by = "local:alice", .canonical = "{}"};
	assert_int_equal(cs_ledger_ceremony_create(l, &c, NULL), CS_OK);
	char *params = raw_text(raw, "SELECT params_json FROM ceremonies WHERE id = 'cer_rv4'");
	assert_string_equal(params, "{}");
	free(params);
	before = digest(raw);
	char at[32];
	cs_audit_now(at);
	cs_ceremony_exec x = {.ceremony_id = "cer_rv4", .action = "revoke", .subject = "c-a", .at = at,
			      .actor = "local:carol"};
	assert_int_equal(cs_ledger_ceremony_execute(l, &x, NULL), CS_E_INVALID_ARG);
	assert_unchanged(raw, before);

	/* listed by revoked_at, then cert id */
	revocations_seen rs = {0};
	assert_int_equal(cs_store_revocations_each(s, see_revocation, &rs), CS_OK);
	assert_int_equal(rs.n, 4);
	char *ts_a = audit_ts(raw, ts_sqlite_int(raw, "SELECT seq FROM audit_log WHERE action = 'cert.revoke' AND "
						      "object = 'c-a'"));
	/* c-b and c-c at the times given (no audit entry); c-a and c-d at their entries' */
	rev_expect expect[4] = {{"2026-02-01T00:00:00.000Z", ""}, {"2026-03-01T00:00:00.000Z", ""}, {"", ""}, {"", ""}};
	snprintf(expect[0].line, 160, "c-b 2026-02-01T00:00:00.000Z key compromise local:alice -");
	snprintf(expect[1].line, 160, "c-c 2026-03-01T00:00:00.000Z superseded local:alice -");
	snprintf(expect[2].ts, 32, "%s", ts_a);
	snprintf(expect[2].line, 160, "c-a %s cessation local:dave -", ts_a);
	snprintf(expect[3].ts, 32, "%s", ts_d);
	snprintf(expect[3].line, 160, "c-d %s key compromise local:carol cer_rv", ts_d);
	assert_string_equal(ts_a, "2026-01-01T00:00:00.000Z"); /* the first entry: the time given */
	qsort(expect, 4, sizeof(expect[0]), rev_cmp);
	for (int i = 0; i < 4; i++)
		assert_string_equal(rs.line[i], expect[i].line);
	assert_string_equal(rs.line[0], "c-a 2026-01-01T00:00:00.000Z cessation local:dave -");
	rs = (revocations_seen){0};
	assert_int_equal(cs_store_revocation_get(s, "c-d", see_revocation, &rs), CS_OK);
	assert_string_equal(rs.line[0], expect[3].line);
	free(ts_a);
	free(ts_d);
	/* final: the schema refuses to change or delete one */
	char *msg = NULL;
	assert_int_not_equal(sqlite3_exec(raw, "DELETE FROM cert_revocations", NULL, NULL, &msg), SQLITE_OK);
	sqlite3_free(msg);
	assert_int_not_equal(sqlite3_exec(raw, "UPDATE cert_revocations SET reason = 'x'", NULL, NULL, &msg),
			     SQLITE_OK);
	sqlite3_free(msg);
	int64_t entries = audit_count(raw);
	cs_store_close(s);
	sqlite3_close(raw);
	cs_ledger_close(l);
	verify_chain(path, entries);
}

static void test_key_chain(void **state)
{
	(void)state;
	char path[600];
	new_db(path, sizeof(path));
	cs_ledger *l = NULL;
	assert_int_equal(cs_ledger_open(path, 2000, &l), CS_OK);
	int changed = 0;
	cs_audit_entry e;
	assert_int_equal(bootstrap(l, "kA", &changed, &e), CS_OK);
	cs_store *s = NULL;
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	e = admin_entry("key.register_chain", "kA");
	assert_int_equal(cs_ledger_key_set_chain(l, "kA", "[\"MIIBaa==\",\"MIIBbb+/\"]", &e), CS_OK);
	assert_int_equal(e.seq, 2);
	cs_active_key act;
	assert_int_equal(cs_store_key_active(s, &act), CS_OK);
	assert_string_equal(act.x5c_json, "[\"MIIBaa==\",\"MIIBbb+/\"]");
	cs_active_key_free(&act);
	assert_int_equal(cs_ledger_key_set_chain(l, "kZ", "[\"MIIB\"]", NULL), CS_E_NOT_FOUND);
	const char *bad[] = {"[]", "{}", "[\"MI-B\"]", "[\"MIIBa\"]", "[\"MI=B\"]", "[1]", "not json"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(cs_ledger_key_set_chain(l, "kA", bad[i], NULL), CS_E_INVALID_ARG);
	assert_int_equal(cs_ledger_key_set_chain(l, "kA", NULL, NULL), CS_OK);
	assert_int_equal(cs_store_key_active(s, &act), CS_OK);
	assert_null(act.x5c_json);
	cs_active_key_free(&act);
	cs_store_close(s);
	cs_ledger_close(l);
	verify_chain(path, 2);
}

/* key_put, kept for its callers, records the lifecycle's dates too */
static void test_key_put_records_dates(void **state)
{
	(void)state;
	char path[600];
	new_db(path, sizeof(path));
	cs_ledger *l = NULL;
	assert_int_equal(cs_ledger_open(path, 2000, &l), CS_OK);
	sqlite3 *raw = ts_sqlite_open(path);
	int changed = 0;
	cs_audit_entry e1 = entry("key.activate"), e2 = entry("key.activate");
	e1.object = "k1";
	e2.object = "k2";
	assert_int_equal(cs_ledger_key_put(l, "k1", "u1", "{}", "active", &changed, &e1), CS_OK);
	assert_int_equal(cs_ledger_key_put(l, "k2", "u2", "{}", "active", &changed, &e2), CS_OK);
	char *retired = audit_ts(raw, 2);
	key_row k1 = get_key(path, "k1"), k2 = get_key(path, "k2");
	assert_field(&k1, K_ACT_AT, e1.ts);
	assert_field(&k1, K_ACT_BY, "client");
	assert_field(&k1, K_RET_AT, retired);
	assert_field(&k1, K_RET_BY, "client");
	assert_field(&k1, K_STATUS, "retired");
	assert_field(&k2, K_ACT_AT, e2.ts);
	assert_field(&k2, K_STATUS, "active");
	key_row_free(&k1);
	key_row_free(&k2);
	free(retired);
	/* without an audit entry: the dates still, no actor */
	assert_int_equal(cs_ledger_key_put(l, "k3", "u3", "{}", "active", &changed, NULL), CS_OK);
	key_row k3 = get_key(path, "k3");
	assert_non_null(k3.v[K_ACT_AT]);
	assert_field(&k3, K_ACT_BY, NULL);
	key_row_free(&k3);
	sqlite3_close(raw);
	cs_ledger_close(l);
	verify_chain(path, 3);
}

/* A store of schema 6 (as that version made it) with keys in every state
 * and their audit entries: migrated, each key gets its dates and actors
 * from the audit log; the new tables are there and empty. */
static void test_migration_from_v6(void **state)
{
	(void)state;
	char path[600];
	new_db(path, sizeof(path));
	sqlite3 *old = ts_sqlite_open(path);
	ts_sqlite_exec(old,
		       "CREATE TABLE generation_sessions (id TEXT PRIMARY KEY, created_ms INTEGER NOT NULL,"
		       "  expires_ms INTEGER NOT NULL, cert_sha256 TEXT NOT NULL, cert_id TEXT UNIQUE);"
		       "CREATE TABLE signing_keys (kid TEXT PRIMARY KEY, uri TEXT NOT NULL, jwk_json TEXT NOT NULL,"
		       "  status TEXT NOT NULL, created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')));"
		       "CREATE TABLE audit_log (seq INTEGER PRIMARY KEY, ts TEXT NOT NULL, node TEXT NOT NULL,"
		       "  actor TEXT NOT NULL, actor_cert_sha256 TEXT, role TEXT NOT NULL, action TEXT NOT NULL, object TEXT,"
		       "  project TEXT, environment TEXT, outcome TEXT NOT NULL, error_code TEXT, request_id TEXT,"
		       "  prev_hash BLOB NOT NULL, entry_hash BLOB NOT NULL);"
		       "CREATE TABLE audit_checkpoints (id INTEGER PRIMARY KEY, first_seq INTEGER NOT NULL,"
		       "  last_seq INTEGER NOT NULL, head_hash BLOB NOT NULL, ts TEXT NOT NULL, node TEXT NOT NULL,"
		       "  kind TEXT NOT NULL, jws TEXT NOT NULL);"
		       "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log"
		       "  BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;"
		       "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log"
		       "  WHEN OLD.seq > (SELECT coalesce(max(last_seq), 0) FROM audit_checkpoints WHERE kind = 'purge')"
		       "  BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;"
		       "CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints"
		       "  BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;"
		       "CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints"
		       "  BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;"
		       "CREATE INDEX generation_sessions_uncertified_expiry ON generation_sessions(expires_ms)"
		       "  WHERE cert_id IS NULL;"
		       "CREATE TABLE store_probe (id INTEGER PRIMARY KEY CHECK (id = 1), at_ms INTEGER NOT NULL);"
		       "CREATE TABLE store_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
		       "INSERT INTO store_meta (name, value) VALUES ('audit_ts_ordered_from_seq', 1);"
		       "CREATE TABLE session_claims (id INTEGER PRIMARY KEY,"
		       "  session_id TEXT NOT NULL UNIQUE REFERENCES generation_sessions(id), claims_json TEXT NOT NULL);"
		       "CREATE TABLE certificates (id TEXT PRIMARY KEY,"
		       "  session_id TEXT NOT NULL UNIQUE REFERENCES generation_sessions(id),"
		       "  kid TEXT NOT NULL REFERENCES signing_keys(kid), header TEXT NOT NULL, claims_json TEXT NOT NULL,"
		       "  signature TEXT NOT NULL, created_ms INTEGER NOT NULL);"
		       "CREATE INDEX audit_checkpoints_last ON audit_checkpoints(last_seq);"
		       "CREATE INDEX audit_checkpoints_kind_last ON audit_checkpoints(kind, last_seq);"
		       "INSERT INTO signing_keys (kid, uri, jwk_json, status, created_at) VALUES"
		       "  ('kA', 'uA', '{}', 'retired', '2025-01-01T00:00:00.000Z'),"
		       "  ('kB', 'uB', '{}', 'compromised', '2025-01-02T00:00:00.000Z'),"
		       "  ('kC', 'uC', '{}', 'active', '2025-01-03T00:00:00.000Z'),"
		       "  ('kD', 'uD', '{}', 'pending', '2025-01-04T00:00:00.000Z'),"
		       "  ('kE', 'uE', '{}', 'retired', '2025-01-05T00:00:00.000Z');"
		       "INSERT INTO generation_sessions VALUES ('s1', 1, 9e15, 'ab', 'c1');"
		       "INSERT INTO certificates VALUES ('c1', 's1', 'kA', 'h', '{\"a\":1}', 's', 1);"
		       "PRAGMA user_version = 6;");
	/* the key events as the daemon of schema 6 audited them (kE's were purged) */
	const char *events[][4] = {
		{"2025-02-01T00:00:00.000Z", "system", "key.activate", "kA"},
		{"2025-02-01T12:00:00.000Z", "system", "key.activate", "kA"}, /* again, by configuration */
		{"2025-02-02T00:00:00.000Z", "system", "key.retire", "kA"},
		{"2025-02-02T00:00:00.000Z", "system", "key.activate", "kB"},
		{"2025-02-03T00:00:00.000Z", "local:root", "key.activate", "kB"}, /* refused: not counted */
		{"2025-02-04T00:00:00.000Z", "system", "key.retire", "kB"},
		{"2025-02-05T00:00:00.000Z", "local:root", "key.compromise", "kB"},
		{"2025-02-05T00:00:00.000Z", "system", "key.activate", "kC"},
	};
	for (int i = 0; i < 8; i++) {
		char q[400];
		snprintf(q, sizeof(q), "INSERT INTO audit_log VALUES (%d, '%s', 'n', '%s', NULL, 'system', '%s', '%s', NULL, "
				       "NULL, '%s', NULL, NULL, zeroblob(32), zeroblob(32))", i + 1, events[i][0], events[i][1],
			 events[i][2], events[i][3], i == 4 ? "failure" : "success");
		ts_sqlite_exec(old, q);
	}
	sqlite3_close(old);

	cs_store *s = NULL;
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	sqlite3 *raw = ts_sqlite_open(path);
	assert_int_equal(ts_sqlite_int(raw, "SELECT user_version FROM pragma_user_version"), 10);
	key_row k = get_key(path, "kA");
	assert_field(&k, K_STATUS, "retired");
	assert_field(&k, K_CREATED, "2025-01-01T00:00:00.000Z");
	assert_field(&k, K_ACT_AT, "2025-02-01T00:00:00.000Z");
	assert_field(&k, K_ACT_BY, "system");
	assert_field(&k, K_RET_AT, "2025-02-02T00:00:00.000Z");
	assert_field(&k, K_RET_BY, "system");
	assert_field(&k, K_COMP_AT, NULL);
	assert_field(&k, K_LABEL, NULL);
	assert_field(&k, K_X5C, NULL);
	key_row_free(&k);
	k = get_key(path, "kB");
	assert_field(&k, K_ACT_AT, "2025-02-02T00:00:00.000Z"); /* the first that succeeded */
	assert_field(&k, K_RET_AT, "2025-02-04T00:00:00.000Z");
	assert_field(&k, K_COMP_AT, "2025-02-05T00:00:00.000Z");
	assert_field(&k, K_COMP_BY, "local:root");
	key_row_free(&k);
	k = get_key(path, "kC");
	assert_field(&k, K_ACT_AT, "2025-02-05T00:00:00.000Z");
	assert_field(&k, K_RET_AT, NULL);
	key_row_free(&k);
	k = get_key(path, "kD");
	assert_field(&k, K_ACT_AT, NULL);
	key_row_free(&k);
	k = get_key(path, "kE"); /* purged: not known */
	assert_field(&k, K_STATUS, "retired");
	assert_field(&k, K_ACT_AT, NULL);
	assert_field(&k, K_RET_AT, NULL);
	key_row_free(&k);
	/* and the "since" of a refusal comes from the migrated date */
	char why[160];
	assert_int_equal(cs_ledger_key_refusal(s, "kA", "active", why, sizeof(why)), CS_E_KEY_FORBIDDEN);
	assert_string_equal(why, "key kA is retired (since 2025-02-02T00:00:00.000Z)");
	assert_int_equal(cs_ledger_key_refusal(s, "kB", "active", why, sizeof(why)), CS_E_KEY_FORBIDDEN);
	assert_string_equal(why, "key kB is compromised (since 2025-02-05T00:00:00.000Z)");
	/* the reads of the new schema */
	cs_active_key act;
	int ever = 0;
	assert_int_equal(cs_store_key_active(s, &act), CS_OK);
	assert_string_equal(act.kid, "kC");
	assert_string_equal(act.uri, "uC");
	cs_active_key_free(&act);
	assert_int_equal(cs_store_keys_ever_active(s, &ever), CS_OK);
	assert_int_equal(ever, 1);
	int64_t count = -1, last = -1;
	assert_int_equal(cs_store_revocations_version(s, &count, &last), CS_OK);
	assert_int_equal(count, 0);
	assert_int_equal(last, 0);
	assert_int_equal(cs_store_cert_exists(s, "c1"), CS_OK);
	assert_int_equal(cs_store_ceremonies_each(s, NULL, NULL), CS_OK);
	assert_int_equal(cs_store_rollovers_each(s, NULL, NULL), CS_OK);
	assert_int_equal(cs_store_revocations_each(s, NULL, NULL), CS_OK);
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM sqlite_master WHERE name IN ('ceremonies', "
					    "'ceremony_approvals', 'key_rollovers', 'cert_revocations')"), 4);
	/* the daemon's polls are index lookups, not scans */
	const char *polls[] = {"SELECT kid, uri, x5c_json FROM signing_keys WHERE status = 'active' "
			       "AND coalesce(profile, '') = coalesce(?1, '')",
			       "SELECT (SELECT value FROM store_meta WHERE name = 'revocations_count'), "
			       "(SELECT coalesce(max(id), 0) FROM cert_revocations)"};
	for (int i = 0; i < 2; i++) {
		sqlite3_stmt *st = NULL;
		char plan[400] = "";
		char eqp[300];
		snprintf(eqp, sizeof(eqp), "EXPLAIN QUERY PLAN %s", polls[i]);
		assert_int_equal(sqlite3_prepare_v2(raw, eqp, -1, &st, NULL), SQLITE_OK);
		while (sqlite3_step(st) == SQLITE_ROW) {
			size_t n = strlen(plan);
			snprintf(plan + n, sizeof(plan) - n, "%s; ", (const char *)sqlite3_column_text(st, 3));
		}
		sqlite3_finalize(st);
		print_message("plan: %s\n", plan);
		if (strstr(plan, "SCAN signing_keys") != NULL || strstr(plan, "SCAN cert_revocations") != NULL ||
		    strstr(plan, "SCAN store_meta") != NULL || strstr(plan, "USING TEMP") != NULL)
			fail_msg("the poll '%s' scans: %s", polls[i], plan);
	}
	/* the migrated store is used like a new one */
	cs_store_close(s);
	sqlite3_close(raw);
	cs_ledger *l = NULL;
	assert_int_equal(cs_ledger_open(path, 2000, &l), CS_OK);
	cs_audit_entry e;
	pending(l, "kF");
	start_ceremony(l, "cer_m", "activate", "kF", "2026-01-01T00:00:00.000Z", FAR_FUTURE);
	assert_int_equal(execute(l, "cer_m", "activate", "kF", "kC", &e), CS_OK);
	assert_int_equal(e.seq, 8 + 2 + 3);
	cs_ledger_close(l);
}

/* ---- issue 15: the keys of signing profiles ------------------------------------------- */

static cs_err bootstrap_in(cs_ledger *l, const char *profile, const char *kid, int *changed, cs_audit_entry *e)
{
	char uri[128], jwk[128];
	snprintf(uri, sizeof(uri), "pkcs11:token=cfg;object=%s", kid);
	snprintf(jwk, sizeof(jwk), "{\"kid\":\"%s\",\"kty\":\"EC\"}", kid);
	cs_key_info k = {.kid = kid, .uri = uri, .jwk_json = jwk, .profile = profile};
	*e = entry("key.activate");
	e->actor = "system";
	e->object = kid;
	return cs_ledger_key_bootstrap(l, &k, "config:signing.profiles.release.key", changed, e);
}

static cs_err pending_in(cs_ledger *l, const char *profile, const char *kid)
{
	char uri[128], jwk[128];
	snprintf(uri, sizeof(uri), "pkcs11:token=t;object=%s", kid);
	snprintf(jwk, sizeof(jwk), "{\"kid\":\"%s\",\"kty\":\"EC\"}", kid);
	cs_key_info k = {.kid = kid, .uri = uri, .jwk_json = jwk, .created_by = "local:alice", .profile = profile};
	cs_audit_entry e = admin_entry("key.generate", kid);
	return cs_ledger_key_add_pending(l, &k, &e);
}

static char *profile_of(const char *path, const char *kid)
{
	cs_store *s = NULL;
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	char *q = sqlite3_mprintf("SELECT profile FROM signing_keys WHERE kid = %Q", kid);
	sqlite3 *raw = ts_sqlite_open(path);
	char *p = raw_text(raw, q);
	sqlite3_free(q);
	sqlite3_close(raw);
	cs_store_close(s);
	return p;
}

static void grab_profile(void *arg, const cs_key_info *k)
{
	char **p = arg;
	*p = k->profile != NULL ? strdup(k->profile) : NULL;
}

/* The kid active in profile (NULL: the certificate key), "-" when none. */
static void assert_active_in(cs_store *s, const char *profile, const char *kid)
{
	cs_active_key a;
	cs_err r = cs_store_key_active_in(s, profile, &a);
	const char *got = r == CS_OK ? a.kid : r == CS_E_NOT_FOUND ? "-" : cs_strerror(r);
	if (strcmp(got, kid) != 0)
		fail_msg("active key of %s: %s, expected %s", profile ? profile : "(certificates)", got, kid);
	cs_active_key_free(&a);
}

static void assert_ever_in(cs_store *s, const char *profile, int want)
{
	int ever = -1;
	assert_int_equal(cs_store_keys_ever_active_in(s, profile, &ever), CS_OK);
	assert_int_equal(ever, want);
}

/* One active key per profile: bootstrap, pending and activation by ceremony
 * decided within the profile; the schema agrees. */
static void test_profile_keys(void **state)
{
	(void)state;
	char path[600];
	new_db(path, sizeof(path));
	cs_ledger *l = NULL;
	assert_int_equal(cs_ledger_open(path, 2000, &l), CS_OK);
	sqlite3 *raw = ts_sqlite_open(path);
	cs_store *s = NULL;
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	int changed = 0;
	cs_audit_entry e;
	/* the certificate key first */
	assert_int_equal(bootstrap(l, "kA", &changed, &e), CS_OK);
	assert_int_equal(changed, 1);
	assert_ever_in(s, "release", 0);
	/* a profile that never had an active key is bootstrapped although a
	 * certificate key is active; it retires nothing */
	assert_int_equal(bootstrap_in(l, "release", "kR1", &changed, &e), CS_OK);
	assert_int_equal(changed, 1);
	assert_true(e.seq > 0);
	assert_active_in(s, NULL, "kA");
	assert_active_in(s, "release", "kR1");
	assert_active_in(s, "other", "-");
	cs_active_key act;
	assert_int_equal(cs_store_key_active(s, &act), CS_OK); /* certificates only */
	assert_string_equal(act.kid, "kA");
	cs_active_key_free(&act);
	assert_ever_in(s, "release", 1);
	assert_ever_in(s, "other", 0);
	assert_ever_in(s, NULL, 1);
	char *p = profile_of(path, "kR1");
	assert_string_equal(p, "release");
	free(p);
	p = NULL;
	assert_int_equal(cs_store_key_info(s, "kR1", grab_profile, &p), CS_OK);
	assert_string_equal(p, "release");
	free(p);
	p = (char *)"x";
	assert_int_equal(cs_store_key_info(s, "kA", grab_profile, &p), CS_OK);
	assert_null(p);
	/* the profile had its key: the configuration changes nothing */
	char *before = digest(raw);
	assert_int_equal(bootstrap_in(l, "release", "kR9", &changed, &e), CS_OK);
	assert_int_equal(changed, 0);
	assert_int_equal(e.seq, 0);
	/* a key of another profile (or of the certificates) is not this profile's */
	assert_int_equal(bootstrap_in(l, "other", "kA", &changed, &e), CS_E_KEY_FORBIDDEN);
	assert_int_equal(bootstrap_in(l, "other", "kR1", &changed, &e), CS_E_KEY_FORBIDDEN);
	assert_int_equal(changed, 0);
	/* nor can the old key_put path touch a profile key */
	assert_int_equal(cs_ledger_key_put(l, "kR1", "u", "{}", "retired", &changed, NULL), CS_E_KEY_FORBIDDEN);
	/* a malformed profile name */
	assert_int_equal(pending_in(l, "Release Key", "kBad"), CS_E_INVALID_ARG);
	assert_int_equal(bootstrap_in(l, "", "kBad", &changed, &e), CS_E_INVALID_ARG);
	assert_unchanged(raw, before);

	/* a pending key of the profile, activated by ceremony: retires the
	 * profile's active key only */
	assert_int_equal(pending_in(l, "release", "kR2"), CS_OK);
	p = profile_of(path, "kR2");
	assert_string_equal(p, "release");
	free(p);
	/* a rollover naming the certificate key as the predecessor is stale */
	refused(l, raw, "cer_stale", "activate", "kR2", "kA", CS_E_CONFLICT);
	int64_t n0 = audit_count(raw);
	assert_int_equal(execute(l, "cer_stale", "activate", "kR2", "kR1", &e), CS_OK);
	assert_audit(raw, n0 + 1, "key.retire kR1 local:carol success");
	assert_audit(raw, n0 + 2, "key.activate kR2 local:carol success");
	assert_active_in(s, "release", "kR2");
	assert_active_in(s, NULL, "kA");
	key_row k = get_key(path, "kR1");
	assert_field(&k, K_STATUS, "retired");
	assert_field(&k, K_RET_CER, "cer_stale");
	key_row_free(&k);
	k = get_key(path, "kA");
	assert_field(&k, K_STATUS, "active");
	key_row_free(&k);
	char *r = raw_text(raw, "SELECT old_kid || '>' || new_kid FROM key_rollovers WHERE ceremony_id = 'cer_stale'");
	assert_string_equal(r, "kR1>kR2");
	free(r);
	/* and a certificate key activated retires the certificate key only */
	pending(l, "kB");
	refused(l, raw, "cer_b0", "activate", "kB", "kR2", CS_E_CONFLICT);
	assert_int_equal(ceremony(l, "cer_b", "activate", "kB", "kA"), CS_OK);
	assert_active_in(s, NULL, "kB");
	assert_active_in(s, "release", "kR2");
	/* a second profile: its first key through a ceremony (none active: expected NULL) */
	assert_int_equal(pending_in(l, "tokens", "kT1"), CS_OK);
	assert_int_equal(ceremony(l, "cer_t", "activate", "kT1", NULL), CS_OK);
	assert_active_in(s, "tokens", "kT1");
	assert_active_in(s, "release", "kR2");
	assert_active_in(s, NULL, "kB");
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM signing_keys WHERE status = 'active'"), 3);

	/* the schema: one active key per profile, a key's profile fixed */
	char *msg = NULL;
	assert_int_not_equal(sqlite3_exec(raw, "INSERT INTO signing_keys (kid, uri, jwk_json, status, profile) VALUES "
					       "('kR3', 'u', '{}', 'active', 'release')", NULL, NULL, &msg), SQLITE_OK);
	assert_non_null(strstr(msg, "UNIQUE"));
	sqlite3_free(msg);
	assert_int_not_equal(sqlite3_exec(raw, "INSERT INTO signing_keys (kid, uri, jwk_json, status) VALUES "
					       "('kC', 'u', '{}', 'active')", NULL, NULL, &msg), SQLITE_OK);
	sqlite3_free(msg);
	ts_sqlite_exec(raw, "INSERT INTO signing_keys (kid, uri, jwk_json, status, profile) VALUES "
			    "('kZ', 'u', '{}', 'active', 'zeta')"); /* another profile's first: allowed */
	assert_active_in(s, "zeta", "kZ");
	assert_int_not_equal(sqlite3_exec(raw, "UPDATE signing_keys SET profile = 'other' WHERE kid = 'kR2'", NULL, NULL,
					  &msg), SQLITE_OK);
	assert_non_null(strstr(msg, "profile of a signing key never changes"));
	sqlite3_free(msg);
	assert_int_not_equal(sqlite3_exec(raw, "UPDATE signing_keys SET profile = 'release' WHERE kid = 'kB'", NULL,
					  NULL, &msg), SQLITE_OK);
	sqlite3_free(msg);
	assert_int_not_equal(sqlite3_exec(raw, "UPDATE signing_keys SET profile = NULL WHERE kid = 'kR2'", NULL, NULL,
					  &msg), SQLITE_OK);
	sqlite3_free(msg);
	ts_sqlite_exec(raw, "UPDATE signing_keys SET label = 'fine' WHERE kid = 'kR2'"); /* other columns: not guarded */
	int64_t entries = audit_count(raw);
	cs_store_close(s);
	sqlite3_close(raw);
	cs_ledger_close(l);
	verify_chain(path, entries);
}

/* ---- issue 15: signatures with their audit entries ------------------------------------ */

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static cs_signature_record sig_record(const char *id, const char *kid)
{
	cs_signature_record g = {.id = id, .profile = "release", .format = "jws", .requester = "ci-deployer",
				 .requester_cert_sha256 = SHA_A, .signed_sha256 = SHA_A, .kid = kid,
				 .signature = "eyJhbGciOiJFUzI1NiJ9.e30.c2ln"};
	return g;
}

static cs_audit_entry sign_entry(const char *object, const char *outcome)
{
	cs_audit_entry e = {.node = "test-1", .actor = "ci-deployer", .actor_cert_sha256 = SHA_A, .role = "signer",
			    .action = "sign", .object = object, .outcome = outcome};
	if (strcmp(outcome, "success") != 0)
		e.error_code = "format_not_allowed";
	return e;
}

typedef struct {
	int seen;
	char *id, *profile, *format, *requester, *cert, *created_at, *signed_sha256, *kid, *signature, *der, *ptype;
	unsigned char *payload;
	size_t payload_len;
	int has_payload;
	int64_t audit_seq;
} sig_copy;

static char *dup_or_null(const char *v)
{
	return v != NULL ? strdup(v) : NULL;
}

static void grab_sig(void *arg, const cs_signature_record *g)
{
	sig_copy *c = arg;
	c->seen++;
	c->id = dup_or_null(g->id);
	c->profile = dup_or_null(g->profile);
	c->format = dup_or_null(g->format);
	c->requester = dup_or_null(g->requester);
	c->cert = dup_or_null(g->requester_cert_sha256);
	c->created_at = dup_or_null(g->created_at);
	c->signed_sha256 = dup_or_null(g->signed_sha256);
	c->kid = dup_or_null(g->kid);
	c->signature = dup_or_null(g->signature);
	c->der = dup_or_null(g->signature_der);
	c->ptype = dup_or_null(g->payload_type);
	c->has_payload = g->payload != NULL;
	c->payload_len = g->payload_len;
	if (g->payload != NULL) {
		c->payload = malloc(g->payload_len + 1);
		assert_non_null(c->payload);
		memcpy(c->payload, g->payload, g->payload_len);
	}
	c->audit_seq = g->audit_seq;
}

static void sig_copy_free(sig_copy *c)
{
	char *f[] = {c->id, c->profile, c->format, c->requester, c->cert, c->created_at, c->signed_sha256,
		     c->kid, c->signature, c->der, c->ptype};
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		free(f[i]);
	free(c->payload);
	*c = (sig_copy){0};
}

/* Records and refusals in one transaction: each audit entry written with
 * the record carrying its seq and ts; a failing job alone rolled back;
 * the rows never change. */
static void test_signatures_put(void **state)
{
	(void)state;
	char path[600];
	new_db(path, sizeof(path));
	cs_ledger *l = NULL;
	assert_int_equal(cs_ledger_open(path, 2000, &l), CS_OK);
	sqlite3 *raw = ts_sqlite_open(path);
	cs_store *s = NULL;
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	int changed = 0;
	cs_audit_entry e;
	assert_int_equal(bootstrap(l, "kA", &changed, &e), CS_OK);
	assert_int_equal(bootstrap_in(l, "release", "kR1", &changed, &e), CS_OK);
	assert_int_equal(audit_count(raw), 2);
	/* nothing to do */
	assert_int_equal(cs_ledger_signatures_put(l, NULL, 0), CS_OK);

	/* one signature first, then a batch whose second job reuses its id */
	cs_signature_record g0 = sig_record("sig-0", "kR1");
	cs_audit_entry a0 = sign_entry("sig-0 profile=release format=jws", "success");
	cs_ledger_sign_job one = {.record = &g0, .audit = &a0};
	assert_int_equal(cs_ledger_signatures_put(l, &one, 1), CS_OK);
	assert_int_equal(one.result, CS_OK);
	assert_int_equal(a0.seq, 3);
	assert_int_equal(g0.audit_seq, 3);
	assert_ptr_equal(g0.created_at, a0.ts);

	static const unsigned char body[] = {'{', 0, 0xff, '}'};
	cs_signature_record g[5] = {sig_record("sig-1", "kR1"), sig_record("sig-0", "kR1"), sig_record("sig-2", "kR1"),
				    sig_record("sig-3", "kA"), sig_record("sig-4", "kR1")};
	g[2].format = "dsse";
	g[2].signature = "{\"payloadType\":\"application/vnd.in-toto+json\"}";
	g[2].signature_der = "MEUCIQ==";
	g[2].payload_type = "application/vnd.in-toto+json";
	g[2].payload = body;
	g[2].payload_len = sizeof(body);
	g[4].format = "digest";
	g[4].signed_sha256 = "not hex";
	cs_audit_entry a[7];
	const char *objects[] = {"sig-1 profile=release format=jws", "sig-0 (again)", "sig-2 profile=release format=dsse",
				 "sig-3 by the certificate key", "sig-4 malformed", "profile=release format=x",
				 "sig-5 profile=release format=digest"};
	for (int i = 0; i < 7; i++)
		a[i] = sign_entry(objects[i], i == 5 ? "refused" : "success");
	/* a time taken long ago is raised to the log's newest */
	a[0].ts = "2000-01-01T00:00:00.000Z";
	cs_signature_record g5 = sig_record("sig-5", "kR1");
	g5.format = "digest";
	g5.signature_der = "MEQCIA==";
	g5.payload = (const unsigned char *)""; /* stored, of no bytes */
	g5.payload_len = 0;
	cs_ledger_sign_job jobs[7] = {
		{.record = &g[0], .audit = &a[0]}, {.record = &g[1], .audit = &a[1]}, {.record = &g[2], .audit = &a[2]},
		{.record = &g[3], .audit = &a[3]}, {.record = &g[4], .audit = &a[4]}, {.record = NULL, .audit = &a[5]},
		{.record = &g5, .audit = &a[6]}};
	cs_ledger_stats st0, st1;
	cs_ledger_get_stats(l, &st0);
	assert_int_equal(cs_ledger_signatures_put(l, jobs, 7), CS_OK);
	cs_ledger_get_stats(l, &st1);
	assert_int_equal(st1.commits - st0.commits, 1); /* one transaction */
	assert_int_equal(jobs[0].result, CS_OK);
	assert_int_equal(jobs[1].result, CS_E_CONFLICT);    /* the id exists */
	assert_int_equal(jobs[2].result, CS_OK);
	assert_int_equal(jobs[3].result, CS_E_INVALID_ARG); /* not a key of the profile */
	assert_int_equal(jobs[4].result, CS_E_INVALID_ARG); /* malformed */
	assert_int_equal(jobs[5].result, CS_OK);            /* a refusal: its entry */
	assert_int_equal(jobs[6].result, CS_OK);
	/* seq without gaps over what was written; the failed took none */
	assert_int_equal(a[0].seq, 4);
	assert_int_equal(a[2].seq, 5);
	assert_int_equal(a[5].seq, 6);
	assert_int_equal(a[6].seq, 7);
	assert_int_equal(audit_count(raw), 7);
	assert_int_equal(g[0].audit_seq, 4);
	assert_int_equal(g[2].audit_seq, 5);
	assert_int_equal(g5.audit_seq, 7);
	assert_int_equal(g[1].audit_seq, 0);
	assert_null(g[1].created_at);
	assert_int_equal(g[3].audit_seq, 0);
	char *ts3 = audit_ts(raw, 3);
	assert_string_equal(a[0].ts, ts3); /* raised to the entry before it */
	assert_string_equal(g[0].created_at, ts3);
	free(ts3);
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM signatures"), 4);
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM audit_log WHERE object LIKE 'sig-0 (again)%' "
					    "OR object LIKE 'sig-3%' OR object LIKE 'sig-4%'"), 0);
	assert_audit(raw, 6, "sign profile=release format=x ci-deployer refused");
	/* every record matches its entry: created_at its ts, audit_seq its seq */
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM signatures s JOIN audit_log a ON a.seq = s.audit_seq "
					    "AND a.ts = s.created_at AND a.object LIKE s.id || ' %'"), 4);

	/* read back */
	sig_copy c = {0};
	assert_int_equal(cs_store_signature_get(s, "sig-2", grab_sig, &c), CS_OK);
	assert_int_equal(c.seen, 1);
	assert_string_equal(c.id, "sig-2");
	assert_string_equal(c.profile, "release");
	assert_string_equal(c.format, "dsse");
	assert_string_equal(c.requester, "ci-deployer");
	assert_string_equal(c.cert, SHA_A);
	assert_string_equal(c.signed_sha256, SHA_A);
	assert_string_equal(c.kid, "kR1");
	assert_string_equal(c.signature, g[2].signature);
	assert_string_equal(c.der, "MEUCIQ==");
	assert_string_equal(c.ptype, "application/vnd.in-toto+json");
	assert_true(c.has_payload);
	assert_int_equal(c.payload_len, sizeof(body));
	assert_memory_equal(c.payload, body, sizeof(body));
	assert_int_equal(c.audit_seq, 5);
	assert_string_equal(c.created_at, a[2].ts);
	sig_copy_free(&c);
	assert_int_equal(cs_store_signature_get(s, "sig-1", grab_sig, &c), CS_OK);
	assert_false(c.has_payload); /* not stored */
	assert_int_equal(c.payload_len, 0);
	assert_null(c.der);
	assert_null(c.ptype);
	sig_copy_free(&c);
	assert_int_equal(cs_store_signature_get(s, "sig-5", grab_sig, &c), CS_OK);
	assert_true(c.has_payload); /* stored, empty */
	assert_int_equal(c.payload_len, 0);
	sig_copy_free(&c);
	assert_int_equal(cs_store_signature_get(s, "sig-9", grab_sig, &c), CS_E_NOT_FOUND);
	assert_int_equal(c.seen, 0);
	assert_int_equal(cs_store_signature_get(s, "sig-0", NULL, NULL), CS_OK);
	/* a signature of the profile by another key */
	assert_int_equal(cs_store_signature_by_other_key(s, "release", "kR1"), CS_E_NOT_FOUND);
	assert_int_equal(cs_store_signature_by_other_key(s, "release", "kR2"), CS_OK);
	assert_int_equal(cs_store_signature_by_other_key(s, "tokens", "kR2"), CS_E_NOT_FOUND);

	/* the schema refuses changing or deleting a signature */
	char *before = digest(raw);
	int64_t nsig = ts_sqlite_int(raw, "SELECT count(*) FROM signatures");
	const char *edits[] = {"UPDATE signatures SET kid = 'kA' WHERE id = 'sig-1'",
			       "UPDATE signatures SET signature = 'x'", "DELETE FROM signatures WHERE id = 'sig-0'",
			       "DELETE FROM signatures"};
	for (int i = 0; i < 4; i++) {
		char *msg = NULL;
		assert_int_not_equal(sqlite3_exec(raw, edits[i], NULL, NULL, &msg), SQLITE_OK);
		assert_non_null(strstr(msg, "signatures are append-only"));
		sqlite3_free(msg);
	}
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM signatures"), nsig);
	assert_unchanged(raw, before);

	/* a key compromised meanwhile (between the signing and the write): no
	 * signature stored, its entry neither (no seq taken), CS_E_NO_ACTIVE_KEY
	 * for that job alone; the refusals beside it written */
	assert_int_equal(ceremony(l, "cer_x", "compromise", "kR1", NULL), CS_OK);
	int64_t n0 = audit_count(raw);
	cs_signature_record gx = sig_record("sig-x", "kR1");
	cs_audit_entry ax = sign_entry("sig-x profile=release format=jws", "success");
	cs_audit_entry ar = sign_entry("profile=release format=x items=2", "refused");
	cs_ledger_sign_job jx[2] = {{.record = &gx, .audit = &ax}, {.record = NULL, .audit = &ar}};
	assert_int_equal(cs_ledger_signatures_put(l, jx, 2), CS_OK);
	assert_int_equal(jx[0].result, CS_E_NO_ACTIVE_KEY);
	assert_int_equal(jx[1].result, CS_OK);
	assert_int_equal(ar.seq, n0 + 1);
	assert_int_equal(gx.audit_seq, 0);
	assert_null(gx.created_at);
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM signatures WHERE id = 'sig-x'"), 0);
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM audit_log WHERE object LIKE 'sig-x%'"), 0);
	assert_audit(raw, n0 + 1, "sign profile=release format=x items=2 ci-deployer refused");
	/* what the service does then: the item's refusal (no_active_key) in a
	 * second write of refusals only, right after the first's entries */
	cs_audit_entry ay = sign_entry("profile=release format=jws", "refused");
	ay.error_code = "no_active_key";
	cs_ledger_sign_job jy = {.record = NULL, .audit = &ay};
	assert_int_equal(cs_ledger_signatures_put(l, &jy, 1), CS_OK);
	assert_int_equal(jy.result, CS_OK);
	assert_int_equal(ay.seq, n0 + 2);
	assert_audit(raw, n0 + 2, "sign profile=release format=jws ci-deployer refused");
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM audit_log WHERE error_code = 'no_active_key' "
					    "AND outcome = 'refused' AND action = 'sign'"), 1);
	/* a job without an entry: nothing runs */
	jx[0].audit = NULL;
	assert_int_equal(cs_ledger_signatures_put(l, jx, 1), CS_E_INVALID_ARG);
	assert_int_equal(jx[0].result, CS_E_INVALID_ARG);
	int64_t entries = audit_count(raw);
	cs_store_close(s);
	sqlite3_close(raw);
	cs_ledger_close(l);
	verify_chain(path, entries);
}

/* Through the writer thread, and with the transaction failing (the lock held
 * past the write timeout): every job's result is the failure, nothing written. */
static void test_signatures_put_threaded_and_failing(void **state)
{
	(void)state;
	char path[600];
	new_db(path, sizeof(path));
	cs_ledger *l = open_ledger(path, 300, 1);
	sqlite3 *raw = ts_sqlite_open(path);
	int changed = 0;
	cs_audit_entry e;
	assert_int_equal(bootstrap_in(l, "release", "kR1", &changed, &e), CS_OK);
	assert_int_equal(changed, 1);
	enum { N = 50 };
	cs_signature_record g[N];
	cs_audit_entry a[N];
	cs_ledger_sign_job jobs[N];
	char ids[N][16];
	for (int i = 0; i < N; i++) {
		snprintf(ids[i], sizeof(ids[i]), "t-%d", i);
		g[i] = sig_record(ids[i], "kR1");
		a[i] = sign_entry(ids[i], "success");
		jobs[i] = (cs_ledger_sign_job){.record = &g[i], .audit = &a[i]};
	}
	int64_t n0 = audit_count(raw);
	ts_sqlite_exec(raw, "BEGIN IMMEDIATE");
	assert_int_equal(cs_ledger_signatures_put(l, jobs, N), CS_E_STORE);
	ts_sqlite_exec(raw, "ROLLBACK");
	for (int i = 0; i < N; i++) {
		assert_int_equal(jobs[i].result, CS_E_STORE);
		assert_int_equal(g[i].audit_seq, 0);
	}
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM signatures"), 0);
	assert_int_equal(audit_count(raw), n0);
	/* the lock free: all written, in order */
	for (int i = 0; i < N; i++)
		a[i] = sign_entry(ids[i], "success");
	assert_int_equal(cs_ledger_signatures_put(l, jobs, N), CS_OK);
	for (int i = 0; i < N; i++) {
		assert_int_equal(jobs[i].result, CS_OK);
		assert_int_equal(a[i].seq, n0 + 1 + i);
		assert_int_equal(g[i].audit_seq, a[i].seq);
	}
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM signatures"), N);
	sqlite3_close(raw);
	cs_ledger_close(l);
	verify_chain(path, n0 + N);
}

/* Every write checks its input before the transaction: each malformed
 * field is CS_E_INVALID_ARG, and nothing is written (no entry, no row); a
 * signature record at fault fails its own job only. */
static void test_malformed_writes_refused(void **state)
{
	(void)state;
	char path[600];
	new_db(path, sizeof(path));
	cs_ledger *l = NULL;
	assert_int_equal(cs_ledger_open(path, 2000, &l), CS_OK);
	sqlite3 *raw = ts_sqlite_open(path);
	int changed = 0;
	cs_audit_entry e;
	assert_int_equal(bootstrap(l, "kA", &changed, &e), CS_OK);
	assert_int_equal(bootstrap_in(l, "release", "kR1", &changed, &e), CS_OK);
	start_ceremony(l, "c-1", "retire", "kA", "2026-01-01T00:00:00.000Z", FAR_FUTURE);
	char *before = digest(raw);
	char long_text[5000];
	memset(long_text, 'x', sizeof(long_text) - 1);
	long_text[sizeof(long_text) - 1] = '\0';
	char profile_long[40];
	memset(profile_long, 'a', sizeof(profile_long) - 1);
	profile_long[sizeof(profile_long) - 1] = '\0';

	/* pending keys */
	const cs_key_info good_key = {.kid = "kP", .uri = "pkcs11:object=kP", .jwk_json = "{\"kid\":\"kP\"}",
				      .label = "kP", .cka_id = "0a1b", .created_by = "local:alice"};
	cs_key_info bad_keys[14];
	for (size_t i = 0; i < 14; i++)
		bad_keys[i] = good_key;
	bad_keys[0].kid = NULL;
	bad_keys[1].kid = "";
	bad_keys[2].kid = "k\x01";
	bad_keys[3].kid = long_text;
	bad_keys[4].uri = NULL;
	bad_keys[5].jwk_json = "[]";
	bad_keys[6].jwk_json = "{\"kid\":\"other\"}";
	bad_keys[7].jwk_json = "{\"kid\":7}";
	bad_keys[8].jwk_json = "{\"a\":1,\"a\":2}";
	bad_keys[9].label = "tab\there";
	bad_keys[10].cka_id = "0A1B"; /* lowercase hex only */
	bad_keys[11].cka_id = "";
	bad_keys[12].created_by = "\x7f";
	bad_keys[13].profile = "Release";
	for (size_t i = 0; i < 14; i++) {
		e = admin_entry("key.generate", "kP");
		if (cs_ledger_key_add_pending(l, &bad_keys[i], &e) != CS_E_INVALID_ARG)
			fail_msg("pending key %zu not refused", i);
		assert_int_equal(e.seq, 0);
	}
	e = admin_entry("key.generate", "kP");
	assert_int_equal(cs_ledger_key_add_pending(l, NULL, &e), CS_E_INVALID_ARG);
	/* bootstrap: the same, and the actor */
	const char *bad_profiles[] = {"", "-release", "rel ease", profile_long, "r\xc3\xa9"};
	for (size_t i = 0; i < 5; i++) {
		cs_key_info k = good_key;
		k.profile = bad_profiles[i];
		e = entry("key.activate");
		changed = 1;
		assert_int_equal(cs_ledger_key_bootstrap(l, &k, "config", &changed, &e), CS_E_INVALID_ARG);
		assert_int_equal(changed, 0);
	}
	for (size_t i = 0; i < 14; i++) {
		if (i == 12)
			continue; /* the creator: a pending key's only */
		e = entry("key.activate");
		if (cs_ledger_key_bootstrap(l, &bad_keys[i], "config", &changed, &e) != CS_E_INVALID_ARG)
			fail_msg("bootstrap key %zu not refused", i);
	}
	e = entry("key.activate");
	assert_int_equal(cs_ledger_key_bootstrap(l, NULL, "config", &changed, &e), CS_E_INVALID_ARG);
	assert_int_equal(cs_ledger_key_bootstrap(l, &good_key, NULL, &changed, &e), CS_E_INVALID_ARG);
	assert_int_equal(cs_ledger_key_bootstrap(l, &good_key, "", &changed, &e), CS_E_INVALID_ARG);
	/* a chain: an array of standard base64, padded only at the end */
	static const char *const bad_chains[] = {"{}", "[]", "[1]", "[\"\"]", "[\"abc\"]", "[\"ab=c\"]", "[\"a===\"]",
						 "[\"-_ab\"]", "not json"};
	for (size_t i = 0; i < sizeof(bad_chains) / sizeof(bad_chains[0]); i++) {
		e = admin_entry("key.register-chain", "kA");
		if (cs_ledger_key_set_chain(l, "kA", bad_chains[i], &e) != CS_E_INVALID_ARG)
			fail_msg("chain %s not refused", bad_chains[i]);
	}
	assert_int_equal(cs_ledger_key_set_chain(l, NULL, "[\"AAAA\"]", &e), CS_E_INVALID_ARG);

	/* ceremonies */
	const cs_ceremony_record good_c = {.id = "c-2", .action = "retire", .subject = "kA", .reason = "r",
					   .params_json = "{}", .nonce = "n", .node = "test-1",
					   .created_at = "2026-01-01T00:00:00.000Z", .expires_at = FAR_FUTURE,
					   .started_by = "local:alice", .canonical = "{}"};
	cs_ceremony_record bad_c[16];
	for (size_t i = 0; i < 16; i++)
		bad_c[i] = good_c;
	bad_c[0].id = "";
	bad_c[1].action = "rotate";
	bad_c[2].action = NULL;
	bad_c[3].subject = NULL;
	bad_c[4].subject = "";
	bad_c[5].action = "purge"; /* a purge names no subject */
	bad_c[6].reason = "line\nbreak";
	bad_c[7].params_json = "[]";
	bad_c[8].nonce = NULL;
	bad_c[9].node = "";
	bad_c[10].started_by = NULL;
	bad_c[11].created_at = "2026-01-01T00:00:00Z";
	bad_c[12].expires_at = "2026-01-01 00:00:00.000Z";
	bad_c[13].expires_at = "2025-12-31T23:59:59.999Z"; /* before its creation */
	bad_c[14].canonical = "[]";
	bad_c[15].expires_at = bad_c[15].created_at; /* not later */
	for (size_t i = 0; i < 16; i++) {
		e = admin_entry("ceremony.start", "c-2");
		if (cs_ledger_ceremony_create(l, &bad_c[i], &e) != CS_E_INVALID_ARG)
			fail_msg("ceremony %zu not refused", i);
		assert_int_equal(e.seq, 0);
	}
	assert_int_equal(cs_ledger_ceremony_create(l, NULL, &e), CS_E_INVALID_ARG);
	/* approvals */
	const cs_approval_record good_a = {.ceremony_id = "c-1", .officer = "officer-a", .fingerprint = "SHA256:aa",
					   .cert_pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
					   .sig_alg = "ecdsa-with-SHA256", .signature_b64 = "MEUC",
					   .approved_at = "2026-01-01T00:00:01.000Z", .approved_by = "local:bob"};
	cs_approval_record bad_a[9];
	for (size_t i = 0; i < 9; i++)
		bad_a[i] = good_a;
	bad_a[0].ceremony_id = NULL;
	bad_a[1].officer = "";
	bad_a[2].fingerprint = "SHA256:\x1b";
	bad_a[3].cert_pem = "PEM\x01";
	bad_a[4].sig_alg = NULL;
	bad_a[5].signature_b64 = "";
	bad_a[6].approved_at = "yesterday";
	bad_a[7].approved_by = NULL;
	bad_a[8].approved_at = "2026-01-01T00:00:01.000+00";
	for (size_t i = 0; i < 9; i++) {
		e = admin_entry("ceremony.approve", "c-1");
		if (cs_ledger_ceremony_approve(l, &bad_a[i], &e) != CS_E_INVALID_ARG)
			fail_msg("approval %zu not refused", i);
	}
	assert_int_equal(cs_ledger_ceremony_approve(l, NULL, &e), CS_E_INVALID_ARG);
	/* executions */
	const cs_ceremony_exec good_x = {.ceremony_id = "c-1", .action = "activate", .subject = "kA",
					 .expected_active = "kA", .rollover_json = "{}", .reason = "r",
					 .at = "2026-01-01T00:00:02.000Z", .actor = "local:carol",
					 .result_json = "{}"};
	cs_ceremony_exec bad_x[11];
	for (size_t i = 0; i < 11; i++)
		bad_x[i] = good_x;
	bad_x[0].ceremony_id = "";
	bad_x[1].action = "approve";
	bad_x[2].subject = NULL;
	bad_x[3].subject = "";
	bad_x[4].at = NULL;
	bad_x[5].actor = "";
	bad_x[6].result_json = "{";
	bad_x[7].expected_active = "k\n";
	bad_x[8].rollover_json = NULL; /* activate: a statement required */
	bad_x[9].rollover_json = "[]";
	bad_x[10].reason = "\x7f";
	for (size_t i = 0; i < 11; i++) {
		e = admin_entry("ceremony.execute", "c-1");
		if (cs_ledger_ceremony_execute(l, &bad_x[i], &e) != CS_E_INVALID_ARG)
			fail_msg("execution %zu not refused", i);
	}
	assert_int_equal(cs_ledger_ceremony_execute(l, NULL, &e), CS_E_INVALID_ARG);
	/* revocations */
	e = admin_entry("cert.revoke", "cert-1");
	assert_int_equal(cs_ledger_cert_revoke(l, NULL, "r", "2026-01-01T00:00:00.000Z", "a", &e), CS_E_INVALID_ARG);
	assert_int_equal(cs_ledger_cert_revoke(l, "cert-1", "", "2026-01-01T00:00:00.000Z", "a", &e),
			 CS_E_INVALID_ARG);
	assert_int_equal(cs_ledger_cert_revoke(l, "cert-1", "r", "2026-01-01", "a", &e), CS_E_INVALID_ARG);
	assert_int_equal(cs_ledger_cert_revoke(l, "cert-1", "r", "2026-01-01T00:00:00.000Z", NULL, &e),
			 CS_E_INVALID_ARG);
	assert_int_equal(e.seq, 0);
	assert_unchanged(raw, before);
	/* the well-formed originals pass the checks */
	e = admin_entry("key.generate", "kP");
	assert_int_equal(cs_ledger_key_add_pending(l, &good_key, &e), CS_OK);
	e = admin_entry("key.register-chain", "kA");
	assert_int_equal(cs_ledger_key_set_chain(l, "kA", "[\"AAAA\", \"AA==\"]", &e), CS_OK);
	e = admin_entry("ceremony.start", "c-2");
	assert_int_equal(cs_ledger_ceremony_create(l, &good_c, &e), CS_OK);
	e = admin_entry("ceremony.approve", "c-1");
	assert_int_equal(cs_ledger_ceremony_approve(l, &good_a, &e), CS_OK);
	e = admin_entry("cert.revoke", "cert-1");
	assert_int_equal(cs_ledger_cert_revoke(l, "cert-1", "r", "2026-01-01T00:00:00.000Z", "a", &e), CS_E_NOT_FOUND);

	/* signature records: each at fault fails its job alone; a job
	 * without an entry fails the call */
	cs_signature_record g[15];
	for (size_t i = 0; i < 15; i++)
		g[i] = sig_record("sig-x", "kR1");
	static const unsigned char body[] = "x";
	g[0].id = NULL;
	g[1].profile = "Release";
	g[2].format = "cose";
	g[3].format = NULL;
	g[4].requester = "";
	g[5].requester_cert_sha256 = NULL;
	g[6].signed_sha256 = SHA_A "0"; /* 65 characters */
	g[7].signed_sha256 = "ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789";
	g[8].kid = NULL;
	g[9].signature = "";
	g[10].signature_der = "\x01";
	g[11].payload_type = "";
	g[12].payload = NULL;
	g[12].payload_len = 3;
	g[13].payload = body;
	g[13].payload_len = (size_t)1 << 40;
	g[14].id = "sig-good";
	cs_audit_entry a[15];
	cs_ledger_sign_job jobs[15];
	for (size_t i = 0; i < 15; i++) {
		a[i] = sign_entry("sig-x profile=release format=jws", "success");
		jobs[i] = (cs_ledger_sign_job){.record = &g[i], .audit = &a[i]};
	}
	int64_t entries = audit_count(raw);
	assert_int_equal(cs_ledger_signatures_put(l, jobs, 15), CS_OK);
	for (size_t i = 0; i < 14; i++) {
		if (jobs[i].result != CS_E_INVALID_ARG)
			fail_msg("signature record %zu: %s", i, cs_strerror(jobs[i].result));
		assert_int_equal(a[i].seq, 0);
	}
	assert_int_equal(jobs[14].result, CS_OK); /* the good one beside them */
	assert_int_equal(audit_count(raw), entries + 1);
	assert_int_equal(ts_sqlite_int(raw, "SELECT count(*) FROM signatures"), 1);
	jobs[0].audit = NULL;
	jobs[1].result = CS_OK;
	assert_int_equal(cs_ledger_signatures_put(l, jobs, 2), CS_E_INVALID_ARG);
	assert_int_equal(jobs[0].result, CS_E_INVALID_ARG);
	assert_int_equal(jobs[1].result, CS_E_INVALID_ARG);
	assert_int_equal(cs_ledger_signatures_put(l, NULL, 1), CS_E_INVALID_ARG);
	assert_int_equal(cs_ledger_audit_append(l, NULL), CS_E_INVALID_ARG);
	assert_int_equal(audit_count(raw), entries + 1);
	sqlite3_close(raw);
	cs_ledger_close(l);
}

static int setup(void **state)
{
	(void)state;
	return ts_scratch_dir(dir, sizeof(dir), "ledger-test", 0, 0700);
}

static int teardown(void **state)
{
	(void)state;
	return ts_scratch_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_concurrent_submitters),
		cmocka_unit_test(test_malformed_writes_refused),
		cmocka_unit_test(test_one_certify_wins),
		cmocka_unit_test(test_batch_groups_and_failure_rolls_back_alone),
		cmocka_unit_test(test_deadline),
		cmocka_unit_test(test_rules_without_thread),
		cmocka_unit_test(test_retired_key_never_active_again),
		cmocka_unit_test(test_pending_and_bootstrap),
		cmocka_unit_test(test_activate_ceremony),
		cmocka_unit_test(test_execute_once),
		cmocka_unit_test(test_retire_compromise_destroy),
		cmocka_unit_test(test_no_certificate_under_compromised_key),
		cmocka_unit_test(test_ceremony_approvals_and_expiry),
		cmocka_unit_test(test_clock_set_back),
		cmocka_unit_test(test_revocations),
		cmocka_unit_test(test_key_chain),
		cmocka_unit_test(test_key_put_records_dates),
		cmocka_unit_test(test_migration_from_v6),
		cmocka_unit_test(test_profile_keys),
		cmocka_unit_test(test_signatures_put),
		cmocka_unit_test(test_signatures_put_threaded_and_failing),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
