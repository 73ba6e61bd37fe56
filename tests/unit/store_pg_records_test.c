/*
 * store_pg_records_test: the PostgreSQL backend's records
 * (store_pg_records.c) against a throwaway PostgreSQL cluster
 * (test_support.h's ts_pg), a fresh database per test, made with an ICU
 * collation when the server has one (text then sorts otherwise than byte
 * by byte unless the backend says COLLATE "C").
 *
 *  - ceremonies: inserted, read back with their approvals in the order
 *    recorded, listed newest first; an id, a fingerprint or an officer
 *    recorded already is CS_E_CONFLICT and the write transaction goes on
 *    and commits (PostgreSQL aborts a transaction at an error: the
 *    conflicts of the contract must not be errors); an approval of a
 *    missing ceremony is CS_E_STORE; closing once, then
 *    CS_E_CEREMONY_CLOSED (also for a ceremony never recorded);
 *  - rollovers: oldest first, old_kid optional, one per ceremony;
 *  - revocations: by revoked_at then cert_id byte by byte (as SQLite), one
 *    per certificate, their version (count, largest id) moving with each
 *    insert and not with a conflict;
 *  - signatures: every field read back as written, the payload binary
 *    (NUL and high bytes), empty and absent told apart; an id or an
 *    audit_seq recorded already is a conflict that leaves the transaction
 *    usable; found by SHA-256 newest first, at most the limit, stopped by
 *    the callback; another key's signature; the formats a key signed;
 *  - the audit log: the head, hashes by seq, the first seq, entries in
 *    pages (more than one page of the backend), a limit and a callback
 *    that stops, the retention boundary compared byte by byte; a seq
 *    written twice is CS_E_STORE, not a conflict; the purge deletes only
 *    what a purge checkpoint covers, counts as changes, and a delete past
 *    it is refused by the database;
 *  - checkpoints: coverage, the purge base, the latest, every checkpoint
 *    in the order recorded across pages, a range by last_seq with ties in
 *    the order recorded, stopped by the callback;
 *  - a ledger on PostgreSQL: three ledgers (three nodes, each its writer
 *    thread and connections) certify one session at once, 20 times:
 *    exactly one wins each time; entries from every node form one chain
 *    without a gap in seq, which audit verify walks intact.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "audit_chain.h"
#include "audit_verify.h"
#include "cs_log.h"
#include "ledger.h"
#include "store.h"
#include "test_support.h"

/* ---- a throwaway cluster (test_support.h), a database per test -------------------- */

static ts_pg pg;
static int pg_icu; /* the test databases have an ICU collation */
static int db_counter;
static char db_conninfo[512]; /* the current test's database */

static int pg_start(void **state)
{
	(void)state;
	return ts_pg_start(&pg);
}

static int pg_stop(void **state)
{
	(void)state;
	ts_pg_stop(&pg);
	return 0;
}

/* The superuser's connection to database db. */
static PGconn *raw_connect(const char *db)
{
	char ci[512];
	snprintf(ci, sizeof(ci), "host=%s port=%d dbname=%s user=pgsuper", pg.dir, pg.port, db);
	PGconn *c = PQconnectdb(ci);
	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("connecting to %s: %s", db, PQerrorMessage(c));
	return c;
}

static void raw_exec(PGconn *c, const char *sql)
{
	PGresult *res = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	PQclear(res);
}

static int64_t raw_int(PGconn *c, const char *sql)
{
	PGresult *res = PQexec(c, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	int64_t v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return v;
}

/* A fresh database for the test, its conninfo in db_conninfo. */
static void new_database(char *name, size_t n)
{
	char sql[256];
	snprintf(name, n, "rec%d", ++db_counter);
	PGconn *c = raw_connect("postgres");
	snprintf(sql, sizeof(sql),
		 "CREATE DATABASE %s TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'",
		 name);
	PGresult *res = PQexec(c, sql);
	pg_icu = PQresultStatus(res) == PGRES_COMMAND_OK;
	PQclear(res);
	if (!pg_icu) {
		snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
		raw_exec(c, sql);
	}
	PQfinish(c);
	snprintf(db_conninfo, sizeof(db_conninfo), "host=%s port=%d dbname=%s user=pgsuper", pg.dir, pg.port, name);
}

static cs_store_target target(void)
{
	cs_store_target t = {.backend = CS_STORE_POSTGRESQL, .conninfo = db_conninfo, .sslmode = "disable",
			     .application_name = "store_pg_records_test", .connect_timeout_s = 10};
	return t;
}

/* A fresh database and a store on it; *raw: the superuser's connection
 * to it (search_path credsign). */
static cs_store *fresh_store(PGconn **raw)
{
	char name[32];
	new_database(name, sizeof(name));
	cs_store_target t = target();
	cs_store *s = NULL;
	assert_int_equal(cs_store_connect(&t, &s), CS_OK);
	*raw = raw_connect(name);
	raw_exec(*raw, "SET search_path = credsign");
	return s;
}

static void write_begin(cs_store *s)
{
	assert_int_equal(cs_store_write_begin(s, 0), CS_OK);
}

static void write_commit(cs_store *s)
{
	assert_int_equal(cs_store_write_end(s, CS_OK), CS_OK);
}

/* Logs of the calls between capture_begin and capture_end, into a file. */
static FILE *captured;

static void capture_begin(void)
{
	captured = tmpfile();
	assert_non_null(captured);
	cs_log_configure(CS_LOG_ERROR, CS_LOG_TEXT, fileno(captured));
}

/* What was logged (malloc'd). */
static char *capture_end(void)
{
	cs_log_configure(CS_LOG_INFO, CS_LOG_LOGFMT, STDERR_FILENO);
	long n = ftell(captured);
	char *text = calloc(1, (size_t)n + 1);
	assert_non_null(text);
	rewind(captured);
	assert_int_equal(fread(text, 1, (size_t)n, captured), (size_t)n);
	fclose(captured);
	captured = NULL;
	return text;
}

/* A certificate key and a profile key the records may name. */
static void keys(cs_store *s)
{
	cs_key_info k1 = {.kid = "kid-1", .uri = "pkcs11:object=k1", .jwk_json = "{}", .status = "active"};
	cs_key_info k2 = {.kid = "kid-2", .uri = "pkcs11:object=k2", .jwk_json = "{}", .status = "pending"};
	cs_key_info p1 = {.kid = "pk-1", .uri = "pkcs11:object=p1", .jwk_json = "{}", .status = "active",
			  .profile = "release"};
	cs_key_info p2 = {.kid = "pk-2", .uri = "pkcs11:object=p2", .jwk_json = "{}", .status = "pending",
			  .profile = "release"};
	write_begin(s);
	assert_int_equal(cs_store_key_insert(s, &k1), CS_OK);
	assert_int_equal(cs_store_key_insert(s, &k2), CS_OK);
	assert_int_equal(cs_store_key_insert(s, &p1), CS_OK);
	assert_int_equal(cs_store_key_insert(s, &p2), CS_OK);
	write_commit(s);
}

/* ---- ceremonies ---------------------------------------------------------------------- */

static cs_ceremony_record ceremony(const char *id, const char *created_at)
{
	cs_ceremony_record c = {.id = id, .action = "activate", .subject = "kid-2", .reason = NULL,
				.params_json = "{\"p\":1}", .nonce = "n-1", .node = "node1",
				.created_at = created_at, .expires_at = "2999-01-01T00:00:00.000Z",
				.started_by = "admin", .canonical = "canon"};
	return c;
}

static cs_approval_record approval(const char *cid, const char *officer, const char *fp)
{
	cs_approval_record a = {.ceremony_id = cid, .officer = officer, .fingerprint = fp, .cert_pem = "PEM",
				.sig_alg = "ES256", .signature_b64 = "c2ln", .approved_at = "2024-01-01T00:00:01.000Z",
				.approved_by = officer};
	return a;
}

typedef struct {
	char seen[16][160];
	int n;
} lines;

static void add_line(lines *l, const char *text)
{
	assert_true(l->n < 16);
	snprintf(l->seen[l->n++], sizeof(l->seen[0]), "%s", text);
}

static void see_ceremony(void *arg, const cs_ceremony_record *c)
{
	char b[160];
	snprintf(b, sizeof(b), "%s %s %s reason=%s %s %s by=%s result=%s", c->id, c->created_at, c->state,
		 c->reason ? c->reason : "(null)", c->params_json, c->canonical,
		 c->executed_by ? c->executed_by : "(null)", c->result_json ? c->result_json : "(null)");
	add_line(arg, b);
}

static void see_approval(void *arg, const cs_approval_record *a)
{
	char b[160];
	snprintf(b, sizeof(b), "approval %s %s %s %s %s", a->ceremony_id, a->officer, a->fingerprint, a->sig_alg,
		 a->approved_at);
	add_line(arg, b);
}

static void test_ceremonies(void **state)
{
	(void)state;
	PGconn *raw = NULL;
	cs_store *s = fresh_store(&raw);
	keys(s);
	cs_ceremony_record c1 = ceremony("c-1", "2024-01-01T00:00:00.000Z");
	cs_ceremony_record c2 = ceremony("c-2", "2024-01-02T00:00:00.000Z");
	c2.reason = "rotation";
	cs_approval_record a1 = approval("c-1", "alice", "fp-a"), a2 = approval("c-1", "bob", "fp-b");

	/* the conflicts of the contract leave the transaction going */
	capture_begin();
	write_begin(s);
	assert_int_equal(cs_store_ceremony_insert(s, &c1), CS_OK);
	assert_int_equal(cs_store_ceremony_insert(s, &c1), CS_E_CONFLICT);
	assert_int_equal(cs_store_approval_insert(s, &a1), CS_OK);
	cs_approval_record same_fp = approval("c-1", "carol", "fp-a"), same_officer = approval("c-1", "alice", "fp-c");
	assert_int_equal(cs_store_approval_insert(s, &same_fp), CS_E_CONFLICT);
	assert_int_equal(cs_store_approval_insert(s, &same_officer), CS_E_CONFLICT);
	assert_int_equal(cs_store_ceremony_insert(s, &c2), CS_OK);
	assert_int_equal(cs_store_approval_insert(s, &a2), CS_OK);
	write_commit(s);
	char *log = capture_end();
	if (*log != '\0')
		fail_msg("a conflict was logged: %s", log);
	free(log);
	assert_int_equal(raw_int(raw, "SELECT count(*) FROM ceremony_approvals"), 2);

	/* one ceremony with its approvals, in the order recorded */
	lines got = {0};
	assert_int_equal(cs_store_ceremony_get(s, "c-1", see_ceremony, see_approval, &got), CS_OK);
	assert_int_equal(got.n, 3);
	assert_string_equal(got.seen[0],
			    "c-1 2024-01-01T00:00:00.000Z open reason=(null) {\"p\":1} canon by=(null) result=(null)");
	assert_string_equal(got.seen[1], "approval c-1 alice fp-a ES256 2024-01-01T00:00:01.000Z");
	assert_string_equal(got.seen[2], "approval c-1 bob fp-b ES256 2024-01-01T00:00:01.000Z");
	assert_int_equal(cs_store_ceremony_get(s, "c-1", NULL, NULL, NULL), CS_OK);
	assert_int_equal(cs_store_ceremony_get(s, "c-none", see_ceremony, see_approval, &got), CS_E_NOT_FOUND);
	assert_int_equal(got.n, 3);

	/* newest first */
	memset(&got, 0, sizeof(got));
	assert_int_equal(cs_store_ceremonies_each(s, see_ceremony, &got), CS_OK);
	assert_int_equal(got.n, 2);
	assert_non_null(strstr(got.seen[0], "c-2 2024-01-02T00:00:00.000Z open reason=rotation"));
	assert_non_null(strstr(got.seen[1], "c-1 "));

	/* an approval of no ceremony: the store refuses it */
	capture_begin();
	write_begin(s);
	cs_approval_record orphan = approval("c-none", "dave", "fp-d");
	assert_int_equal(cs_store_approval_insert(s, &orphan), CS_E_STORE);
	assert_int_equal(cs_store_write_end(s, CS_E_STORE), CS_E_STORE);
	free(capture_end());

	/* closed once */
	write_begin(s);
	assert_int_equal(cs_store_ceremony_close(s, "c-1", "2024-01-03T00:00:00.000Z", "admin", "{\"ok\":true}"),
			 CS_OK);
	assert_int_equal(cs_store_ceremony_close(s, "c-1", "2024-01-04T00:00:00.000Z", "eve", "{}"),
			 CS_E_CEREMONY_CLOSED);
	assert_int_equal(cs_store_ceremony_close(s, "c-none", "2024-01-04T00:00:00.000Z", "eve", "{}"),
			 CS_E_CEREMONY_CLOSED);
	write_commit(s);
	memset(&got, 0, sizeof(got));
	assert_int_equal(cs_store_ceremony_get(s, "c-1", see_ceremony, NULL, &got), CS_OK);
	assert_int_equal(got.n, 1);
	assert_string_equal(got.seen[0], "c-1 2024-01-01T00:00:00.000Z executed reason=(null) {\"p\":1} canon "
					 "by=admin result={\"ok\":true}");
	PQfinish(raw);
	cs_store_close(s);
}

/* ---- rollovers -------------------------------------------------------------------------- */

static void see_rollover(void *arg, const cs_rollover_record *r)
{
	char b[160];
	snprintf(b, sizeof(b), "%s %s %s %s %s", r->ceremony_id, r->old_kid ? r->old_kid : "(null)", r->new_kid,
		 r->statement_json, r->created_at);
	add_line(arg, b);
}

static void test_rollovers(void **state)
{
	(void)state;
	PGconn *raw = NULL;
	cs_store *s = fresh_store(&raw);
	keys(s);
	cs_ceremony_record c1 = ceremony("c-1", "2024-01-01T00:00:00.000Z"), c2 = ceremony("c-2", "2024-01-01T00:00:00.000Z");
	/* recorded later, dated earlier: the order is the order recorded */
	cs_rollover_record r1 = {"c-2", NULL, "kid-1", "{\"first\":1}", "2024-02-01T00:00:00.000Z"};
	cs_rollover_record r2 = {"c-1", "kid-1", "kid-2", "{\"second\":1}", "2024-01-01T00:00:00.000Z"};
	cs_rollover_record again = {"c-2", "kid-1", "kid-2", "{}", "2024-03-01T00:00:00.000Z"};
	write_begin(s);
	assert_int_equal(cs_store_ceremony_insert(s, &c1), CS_OK);
	assert_int_equal(cs_store_ceremony_insert(s, &c2), CS_OK);
	assert_int_equal(cs_store_rollover_insert(s, &r1), CS_OK);
	assert_int_equal(cs_store_rollover_insert(s, &again), CS_E_CONFLICT);
	assert_int_equal(cs_store_rollover_insert(s, &r2), CS_OK);
	write_commit(s);
	lines got = {0};
	assert_int_equal(cs_store_rollovers_each(s, see_rollover, &got), CS_OK);
	assert_int_equal(got.n, 2);
	assert_string_equal(got.seen[0], "c-2 (null) kid-1 {\"first\":1} 2024-02-01T00:00:00.000Z");
	assert_string_equal(got.seen[1], "c-1 kid-1 kid-2 {\"second\":1} 2024-01-01T00:00:00.000Z");
	assert_int_equal(cs_store_rollovers_each(s, NULL, NULL), CS_OK);
	/* append-only in the database */
	PGresult *res = PQexec(raw, "UPDATE key_rollovers SET statement_json = '{}'");
	assert_int_not_equal(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	PQfinish(raw);
	cs_store_close(s);
}

/* ---- revocations -------------------------------------------------------------------------- */

static void certificate(cs_store *s, const char *id)
{
	char sid[64];
	snprintf(sid, sizeof(sid), "s-%s", id);
	cs_gen_session g = {.created_ms = 1, .expires_ms = INT64_MAX / 2, .cert_sha256 = "ab", .claims_json = "{}"};
	snprintf(g.id, sizeof(g.id), "%s", sid);
	cs_cert_parts parts = {"h", "{\"a\":1}", "sig"};
	int claimed = 0;
	assert_int_equal(cs_store_session_insert(s, &g), CS_OK);
	assert_int_equal(cs_store_cert_insert(s, id, sid, "kid-1", &parts, 1), CS_OK);
	assert_int_equal(cs_store_session_claim(s, sid, id, &claimed), CS_OK);
	assert_int_equal(claimed, 1);
}

static void see_revocation(void *arg, const cs_revocation_record *r)
{
	char b[160];
	snprintf(b, sizeof(b), "%s %s %s %s %s", r->cert_id, r->reason, r->revoked_at, r->revoked_by,
		 r->ceremony_id ? r->ceremony_id : "(null)");
	add_line(arg, b);
}

static void test_revocations(void **state)
{
	(void)state;
	PGconn *raw = NULL;
	cs_store *s = fresh_store(&raw);
	keys(s);
	int64_t count = -1, last = -1;
	assert_int_equal(cs_store_revocations_version(s, &count, &last), CS_OK);
	assert_int_equal(count, 0);
	assert_int_equal(last, 0);
	/* "B-1" before "a-1" byte by byte (an ICU collation says otherwise) */
	static const char *const certs[] = {"a-1", "B-1", "c-1"};
	cs_ceremony_record c1 = ceremony("c-1", "2024-01-01T00:00:00.000Z");
	write_begin(s);
	for (int i = 0; i < 3; i++)
		certificate(s, certs[i]);
	assert_int_equal(cs_store_ceremony_insert(s, &c1), CS_OK);
	cs_revocation_record r1 = {"a-1", "keyCompromise", "2024-01-02T00:00:00.000Z", "admin", NULL};
	cs_revocation_record r2 = {"B-1", "superseded", "2024-01-02T00:00:00.000Z", "admin", "c-1"};
	cs_revocation_record r3 = {"c-1", "other", "2024-01-01T00:00:00.000Z", "admin", NULL};
	assert_int_equal(cs_store_revocation_insert(s, &r1), CS_OK);
	write_commit(s);
	assert_int_equal(cs_store_revocations_version(s, &count, &last), CS_OK);
	assert_int_equal(count, 1);
	int64_t first_id = last;
	assert_true(first_id > 0);
	write_begin(s);
	assert_int_equal(cs_store_revocation_insert(s, &r1), CS_E_CONFLICT);
	assert_int_equal(cs_store_revocation_insert(s, &r2), CS_OK);
	assert_int_equal(cs_store_revocation_insert(s, &r3), CS_OK);
	write_commit(s);
	assert_int_equal(cs_store_revocations_version(s, &count, &last), CS_OK);
	assert_int_equal(count, 3); /* the conflict counted nothing */
	assert_true(last > first_id);
	assert_int_equal(raw_int(raw, "SELECT max(id) FROM cert_revocations"), last);

	lines got = {0};
	assert_int_equal(cs_store_revocations_each(s, see_revocation, &got), CS_OK);
	assert_int_equal(got.n, 3);
	assert_string_equal(got.seen[0], "c-1 other 2024-01-01T00:00:00.000Z admin (null)");
	assert_string_equal(got.seen[1], "B-1 superseded 2024-01-02T00:00:00.000Z admin c-1");
	assert_string_equal(got.seen[2], "a-1 keyCompromise 2024-01-02T00:00:00.000Z admin (null)");
	memset(&got, 0, sizeof(got));
	assert_int_equal(cs_store_revocation_get(s, "B-1", see_revocation, &got), CS_OK);
	assert_int_equal(got.n, 1);
	assert_string_equal(got.seen[0], "B-1 superseded 2024-01-02T00:00:00.000Z admin c-1");
	assert_int_equal(cs_store_revocation_get(s, "b-1", see_revocation, &got), CS_E_NOT_FOUND);
	assert_int_equal(cs_store_revocation_get(s, "a-1", NULL, NULL), CS_OK);
	/* a revocation is final, in the database too */
	PGresult *res = PQexec(raw, "DELETE FROM cert_revocations");
	assert_int_not_equal(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	PQfinish(raw);
	cs_store_close(s);
}

/* ---- signatures ---------------------------------------------------------------------------- */

static const unsigned char blob[] = {0x00, 0xff, 0x5c, 0x78, 0x27, 0x00, 0x80, 0x7f};

static cs_signature_record signature(const char *id, const char *sha, const char *kid, const char *format,
				     int64_t seq)
{
	cs_signature_record g = {.id = id, .profile = "release", .format = format, .requester = "ci",
				 .requester_cert_sha256 = "cafe", .created_at = "2024-01-01T00:00:00.000Z",
				 .signed_sha256 = sha, .kid = kid, .signature = "hdr..sig", .audit_seq = seq};
	return g;
}

typedef struct {
	char id[8][128];
	int64_t seq[8];
	size_t payload_len[8];
	int has_payload[8], payload_ok[8];
	char der[8][32], type[8][32];
	int n, stop_after;
} sigs;

static int see_signature(void *arg, const cs_signature_record *r)
{
	sigs *g = arg;
	assert_true(g->n < 8);
	snprintf(g->id[g->n], sizeof(g->id[0]), "%s/%s/%s/%s/%s/%s/%s/%s", r->id, r->profile, r->format,
		 r->requester, r->requester_cert_sha256, r->created_at, r->kid, r->signature);
	snprintf(g->der[g->n], sizeof(g->der[0]), "%s", r->signature_der ? r->signature_der : "(null)");
	snprintf(g->type[g->n], sizeof(g->type[0]), "%s", r->payload_type ? r->payload_type : "(null)");
	g->seq[g->n] = r->audit_seq;
	g->has_payload[g->n] = r->payload != NULL;
	g->payload_len[g->n] = r->payload_len;
	g->payload_ok[g->n] = r->payload != NULL && r->payload_len == sizeof(blob) &&
			      memcmp(r->payload, blob, sizeof(blob)) == 0;
	g->n++;
	return g->stop_after > 0 && g->n >= g->stop_after;
}

static void see_one_signature(void *arg, const cs_signature_record *r)
{
	(void)see_signature(arg, r);
}

static void test_signatures(void **state)
{
	(void)state;
	PGconn *raw = NULL;
	cs_store *s = fresh_store(&raw);
	keys(s);
	const char *sha_a = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	const char *sha_b = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
	cs_signature_record full = signature("sig-1", sha_a, "pk-1", "dsse", 10);
	full.signature_der = "MEUC";
	full.payload_type = "application/vnd.in-toto+json";
	full.payload = blob;
	full.payload_len = sizeof(blob);
	cs_signature_record empty = signature("sig-2", sha_a, "pk-1", "jws", 12);
	empty.payload = blob;
	empty.payload_len = 0;
	cs_signature_record none = signature("sig-3", sha_a, "pk-1", "jws", 11);
	cs_signature_record other = signature("sig-4", sha_b, "pk-2", "digest", 13);
	cs_signature_record same_id = signature("sig-1", sha_b, "pk-1", "jws", 20);
	cs_signature_record same_seq = signature("sig-9", sha_b, "pk-1", "jws", 10);

	assert_int_equal(cs_store_signature_by_other_key(s, "release", "pk-1"), CS_E_NOT_FOUND);
	const char *formats[CS_STORE_SIG_FORMATS + 1] = {"x"};
	assert_int_equal(cs_store_key_formats_signed(s, "release", "pk-1", formats), CS_OK);
	assert_null(formats[0]);

	capture_begin();
	write_begin(s);
	assert_int_equal(cs_store_signature_insert(s, &full), CS_OK);
	assert_int_equal(cs_store_signature_insert(s, &same_id), CS_E_CONFLICT);
	assert_int_equal(cs_store_signature_insert(s, &same_seq), CS_E_CONFLICT);
	assert_int_equal(cs_store_signature_insert(s, &empty), CS_OK);
	assert_int_equal(cs_store_signature_insert(s, &none), CS_OK);
	write_commit(s);
	char *log = capture_end();
	if (*log != '\0')
		fail_msg("a conflict was logged: %s", log);
	free(log);
	assert_int_equal(raw_int(raw, "SELECT count(*) FROM signatures"), 3);
	assert_int_equal(raw_int(raw, "SELECT length(payload) FROM signatures WHERE id = 'sig-1'"), sizeof(blob));

	/* every field as recorded */
	sigs got = {0};
	assert_int_equal(cs_store_signature_get(s, "sig-1", see_one_signature, &got), CS_OK);
	assert_int_equal(got.n, 1);
	assert_string_equal(got.id[0], "sig-1/release/dsse/ci/cafe/2024-01-01T00:00:00.000Z/pk-1/hdr..sig");
	assert_string_equal(got.der[0], "MEUC");
	assert_string_equal(got.type[0], "application/vnd.in-toto+json");
	assert_int_equal(got.seq[0], 10);
	assert_true(got.payload_ok[0]);
	assert_int_equal(cs_store_signature_get(s, "sig-none", see_one_signature, &got), CS_E_NOT_FOUND);
	assert_int_equal(cs_store_signature_get(s, "sig-2", NULL, NULL), CS_OK);

	/* by digest, newest first: an empty payload is one, none is none */
	memset(&got, 0, sizeof(got));
	assert_int_equal(cs_store_signatures_by_sha256(s, sha_a, 10, see_signature, &got), CS_OK);
	assert_int_equal(got.n, 3);
	assert_int_equal(got.seq[0], 12);
	assert_true(got.has_payload[0]);
	assert_int_equal(got.payload_len[0], 0);
	assert_string_equal(got.der[0], "(null)");
	assert_int_equal(got.seq[1], 11);
	assert_false(got.has_payload[1]);
	assert_int_equal(got.seq[2], 10);
	assert_true(got.payload_ok[2]);
	memset(&got, 0, sizeof(got));
	assert_int_equal(cs_store_signatures_by_sha256(s, sha_a, 2, see_signature, &got), CS_OK);
	assert_int_equal(got.n, 2);
	memset(&got, 0, sizeof(got));
	got.stop_after = 1;
	assert_int_equal(cs_store_signatures_by_sha256(s, sha_a, 10, see_signature, &got), CS_OK);
	assert_int_equal(got.n, 1);
	memset(&got, 0, sizeof(got));
	assert_int_equal(cs_store_signatures_by_sha256(s, sha_b, 10, see_signature, &got), CS_OK);
	assert_int_equal(got.n, 0);
	assert_int_equal(cs_store_signatures_by_sha256(s, sha_a, 0, see_signature, &got), CS_E_INVALID_ARG);
	assert_int_equal(cs_store_signatures_by_sha256(s, NULL, 1, see_signature, &got), CS_E_INVALID_ARG);

	/* another key's, and the formats each key signed */
	assert_int_equal(cs_store_signature_by_other_key(s, "release", "pk-1"), CS_E_NOT_FOUND);
	assert_int_equal(cs_store_signature_by_other_key(s, "release", "pk-2"), CS_OK);
	assert_int_equal(cs_store_signature_by_other_key(s, "other", "pk-2"), CS_E_NOT_FOUND);
	write_begin(s);
	assert_int_equal(cs_store_signature_insert(s, &other), CS_OK);
	write_commit(s);
	assert_int_equal(cs_store_signature_by_other_key(s, "release", "pk-1"), CS_OK);
	assert_int_equal(cs_store_key_formats_signed(s, "release", "pk-1", formats), CS_OK);
	assert_string_equal(formats[0], "dsse");
	assert_string_equal(formats[1], "jws");
	assert_null(formats[2]);
	assert_int_equal(cs_store_key_formats_signed(s, "release", "pk-2", formats), CS_OK);
	assert_string_equal(formats[0], "digest");
	assert_null(formats[1]);
	assert_int_equal(cs_store_key_formats_signed(s, NULL, "kid-1", formats), CS_OK);
	assert_null(formats[0]);
	assert_int_equal(cs_store_key_formats_signed(s, "other", "pk-1", formats), CS_OK);
	assert_null(formats[0]);
	PQfinish(raw);
	cs_store_close(s);
}

/* ---- the audit log and its checkpoints --------------------------------------------------- */

#define ENTRIES 1200

static void hash_of(int64_t seq, uint8_t h[32])
{
	for (int i = 0; i < 32; i++)
		h[i] = (uint8_t)(seq * 31 + i * 7 + (i == 0 ? 0 : 0x5c));
}

static void ts_of(int64_t seq, char ts[32])
{
	snprintf(ts, 32, "2024-01-01T00:%02d:%02d.%03dZ", (int)(seq / 60000 % 60), (int)(seq / 1000 % 60),
		 (int)(seq % 1000));
}

/* Entry seq into *e (ts in its ts_buf). */
static void audit_entry(int64_t seq, cs_audit_entry *e)
{
	*e = (cs_audit_entry){.seq = seq, .node = seq % 2 ? "node1" : "node2", .actor = "client", .role = "client",
			      .action = "certify", .outcome = "success"};
	ts_of(seq, e->ts_buf);
	e->ts = e->ts_buf;
	if (seq % 3 == 0) {
		e->object = "obj";
		e->actor_cert_sha256 = "cafe";
		e->request_id = "req";
	}
}

typedef struct {
	int64_t expect, limit_stop, n;
	int bad;
} walk;

static int walk_entry(void *arg, const cs_audit_entry *e, const uint8_t prev[32], const uint8_t hash[32])
{
	walk *w = arg;
	uint8_t p[32], h[32];
	char ts[32];
	hash_of(e->seq - 1, p);
	hash_of(e->seq, h);
	ts_of(e->seq, ts);
	if (e->seq != w->expect || memcmp(prev, p, 32) != 0 || memcmp(hash, h, 32) != 0 || strcmp(e->ts, ts) != 0 ||
	    strcmp(e->node, e->seq % 2 ? "node1" : "node2") != 0 || (e->seq % 3 == 0) != (e->object != NULL) ||
	    (e->seq % 3 == 0) != (e->request_id != NULL) || e->project != NULL || e->error_code != NULL)
		w->bad++;
	w->expect++;
	w->n++;
	return w->limit_stop > 0 && w->n >= w->limit_stop;
}

typedef struct {
	int64_t first[700], last[700];
	char kind[700][8];
	int n, stop_after, bad;
} cps;

static int see_checkpoint(void *arg, int64_t first, int64_t last, const uint8_t head[32], const char *ts,
			  const char *node, const char *kind, const char *jws)
{
	cps *c = arg;
	uint8_t h[32];
	hash_of(last, h);
	if (memcmp(head, h, 32) != 0 || strcmp(node, "node1") != 0 || strncmp(jws, "jws-", 4) != 0 || ts[0] != '2')
		c->bad++;
	assert_true(c->n < 700);
	c->first[c->n] = first;
	c->last[c->n] = last;
	snprintf(c->kind[c->n], sizeof(c->kind[0]), "%s", kind);
	c->n++;
	return c->stop_after > 0 && c->n >= c->stop_after;
}

static void checkpoint(cs_store *s, int64_t first, int64_t last, const char *kind, int n)
{
	uint8_t h[32];
	char ts[32], jws[32];
	hash_of(last, h);
	ts_of(last, ts);
	snprintf(jws, sizeof(jws), "jws-%d", n);
	assert_int_equal(cs_store_checkpoint_insert(s, first, last, h, ts, "node1", kind, jws), CS_OK);
}

static void test_audit_log(void **state)
{
	(void)state;
	PGconn *raw = NULL;
	cs_store *s = fresh_store(&raw);
	int64_t seq = -1, first = -1, boundary = -1;
	uint8_t h[32], want[32];
	char ts[32];
	int found = -1;
	assert_int_equal(cs_store_audit_last(s, &seq, h, ts), CS_E_NOT_FOUND);
	assert_int_equal(cs_store_audit_first(s, &first), CS_OK);
	assert_int_equal(first, 0);
	assert_int_equal(cs_store_audit_ts_ordered_from(s, &seq), CS_OK);
	assert_int_equal(seq, 1);
	assert_int_equal(cs_store_audit_purge_boundary(s, "2999-01-01T00:00:00.000Z", &first, &boundary, h), CS_OK);
	assert_int_equal(boundary, 0);

	write_begin(s);
	for (int64_t i = 1; i <= ENTRIES; i++) {
		cs_audit_entry e;
		audit_entry(i, &e);
		uint8_t p[32];
		hash_of(i - 1, p);
		hash_of(i, h);
		assert_int_equal(cs_store_audit_insert(s, &e, p, h), CS_OK);
	}
	write_commit(s);
	/* a seq written twice is damage, not a conflict of the contract */
	capture_begin();
	write_begin(s);
	cs_audit_entry again;
	audit_entry(5, &again);
	assert_int_equal(cs_store_audit_insert(s, &again, h, h), CS_E_STORE);
	assert_int_equal(cs_store_write_end(s, CS_E_STORE), CS_E_STORE);
	char *log = capture_end();
	assert_non_null(strstr(log, "appending to the audit log"));
	free(log);

	assert_int_equal(cs_store_audit_last(s, &seq, h, ts), CS_OK);
	assert_int_equal(seq, ENTRIES);
	hash_of(ENTRIES, want);
	assert_memory_equal(h, want, 32);
	char want_ts[32];
	ts_of(ENTRIES, want_ts);
	assert_string_equal(ts, want_ts);
	assert_int_equal(cs_store_audit_hash_at(s, 777, h, &found), CS_OK);
	assert_int_equal(found, 1);
	hash_of(777, want);
	assert_memory_equal(h, want, 32);
	assert_int_equal(cs_store_audit_hash_at(s, ENTRIES + 1, h, &found), CS_OK);
	assert_int_equal(found, 0);

	/* every entry, across pages; from a seq; a limit; a callback that stops */
	walk w = {.expect = 1};
	assert_int_equal(cs_store_audit_each(s, 0, 0, walk_entry, &w), CS_OK);
	assert_int_equal(w.n, ENTRIES);
	assert_int_equal(w.bad, 0);
	w = (walk){.expect = 100};
	assert_int_equal(cs_store_audit_each(s, 100, 700, walk_entry, &w), CS_OK);
	assert_int_equal(w.n, 700);
	assert_int_equal(w.bad, 0);
	w = (walk){.expect = 2, .limit_stop = 600};
	assert_int_equal(cs_store_audit_each(s, 2, 0, walk_entry, &w), CS_OK);
	assert_int_equal(w.n, 600);
	w = (walk){.expect = ENTRIES};
	assert_int_equal(cs_store_audit_each(s, ENTRIES, 0, walk_entry, &w), CS_OK);
	assert_int_equal(w.n, 1);
	w = (walk){.expect = 1, .limit_stop = 512};
	assert_int_equal(cs_store_audit_each(s, 1, 512, walk_entry, &w), CS_OK);
	assert_int_equal(w.n, 512);

	/* the retention boundary: the last entry older than the cutoff */
	char cutoff[32];
	ts_of(300, cutoff);
	assert_int_equal(cs_store_audit_purge_boundary(s, cutoff, &first, &boundary, h), CS_OK);
	assert_int_equal(first, 1);
	assert_int_equal(boundary, 299);
	hash_of(299, want);
	assert_memory_equal(h, want, 32);

	/* checkpoints: coverage, the base, the latest; a purge through one */
	int64_t covered = -1;
	char *jws = NULL;
	assert_int_equal(cs_store_checkpointed(s, &covered), CS_OK);
	assert_int_equal(covered, 0);
	assert_int_equal(cs_store_purge_base(s, &seq, h), CS_E_NOT_FOUND);
	assert_int_equal(cs_store_checkpoint_latest(s, &jws), CS_E_NOT_FOUND);
	assert_null(jws);
	write_begin(s);
	checkpoint(s, 1, 200, "periodic", 0);
	checkpoint(s, 1, 299, "purge", 1);
	write_commit(s);
	assert_int_equal(cs_store_checkpointed(s, &covered), CS_OK);
	assert_int_equal(covered, 299);
	assert_int_equal(cs_store_purge_base(s, &seq, h), CS_OK);
	assert_int_equal(seq, 299);
	hash_of(299, want);
	assert_memory_equal(h, want, 32);
	assert_int_equal(cs_store_checkpoint_latest(s, &jws), CS_OK);
	assert_string_equal(jws, "jws-1");
	free(jws);

	/* past the purge checkpoint the database refuses the delete */
	capture_begin();
	write_begin(s);
	assert_int_equal(cs_store_audit_delete_through(s, 300), CS_E_STORE);
	assert_int_equal(cs_store_write_end(s, CS_E_STORE), CS_E_STORE);
	free(capture_end());
	assert_int_equal(raw_int(raw, "SELECT count(*) FROM audit_log"), ENTRIES);

	int64_t changes = cs_store_changes(s);
	write_begin(s);
	assert_int_equal(cs_store_audit_delete_through(s, 299), CS_OK);
	write_commit(s);
	assert_int_equal(cs_store_changes(s) - changes, 299);
	assert_int_equal(raw_int(raw, "SELECT count(*) FROM audit_log"), ENTRIES - 299);
	assert_int_equal(cs_store_audit_first(s, &first), CS_OK);
	assert_int_equal(first, 300);
	w = (walk){.expect = 300};
	assert_int_equal(cs_store_audit_each(s, 0, 0, walk_entry, &w), CS_OK);
	assert_int_equal(w.n, ENTRIES - 299);
	assert_int_equal(w.bad, 0);
	assert_int_equal(cs_store_audit_hash_at(s, 299, h, &found), CS_OK);
	assert_int_equal(found, 0);
	ts_of(1000, cutoff);
	assert_int_equal(cs_store_audit_purge_boundary(s, cutoff, &first, &boundary, h), CS_OK);
	assert_int_equal(first, 300);
	assert_int_equal(boundary, 999);
	/* no update, no delete by hand */
	PGresult *res = PQexec(raw, "UPDATE audit_log SET actor = 'x' WHERE seq = 500");
	assert_int_not_equal(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	res = PQexec(raw, "DELETE FROM audit_log WHERE seq = 1000");
	assert_int_not_equal(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);

	/* a hash of another size reads as zeros in the walk, as in SQLite:
	 * audit verify sees the break (the row is made by a superuser with
	 * the triggers off) */
	raw_exec(raw, "SET session_replication_role = replica");
	raw_exec(raw, "UPDATE audit_log SET entry_hash = '\\x0102' WHERE seq = 400");
	raw_exec(raw, "SET session_replication_role = origin");
	w = (walk){.expect = 400, .limit_stop = 1};
	assert_int_equal(cs_store_audit_each(s, 400, 0, walk_entry, &w), CS_OK);
	assert_int_equal(w.bad, 1);
	assert_int_equal(cs_store_audit_hash_at(s, 400, h, &found), CS_OK);
	assert_int_equal(found, 0);
	PQfinish(raw);
	cs_store_close(s);
}

static void test_checkpoints(void **state)
{
	(void)state;
	PGconn *raw = NULL;
	cs_store *s = fresh_store(&raw);
	/* 600 checkpoints (more than a page), recorded in an order that is
	 * not last_seq's: last_seq 1000 - i for i < 300, then 2000 + i */
	write_begin(s);
	for (int i = 0; i < 600; i++) {
		int64_t last = i < 300 ? 1000 - i : 2000 + i;
		checkpoint(s, 1, last, i == 10 ? "purge" : "periodic", i);
	}
	/* two more at 900 (ties: the order recorded) */
	checkpoint(s, 5, 900, "periodic", 600);
	checkpoint(s, 6, 900, "periodic", 601);
	write_commit(s);

	cps *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	assert_int_equal(cs_store_checkpoints_each(s, see_checkpoint, c), CS_OK);
	assert_int_equal(c->n, 602);
	assert_int_equal(c->bad, 0);
	for (int i = 0; i < 600; i++)
		assert_int_equal(c->last[i], i < 300 ? 1000 - i : 2000 + i);
	assert_int_equal(c->first[600], 5);
	assert_int_equal(c->first[601], 6);
	assert_string_equal(c->kind[10], "purge");

	memset(c, 0, sizeof(*c));
	c->stop_after = 550;
	assert_int_equal(cs_store_checkpoints_each(s, see_checkpoint, c), CS_OK);
	assert_int_equal(c->n, 550);

	/* a range by last_seq, ties in the order recorded */
	memset(c, 0, sizeof(*c));
	assert_int_equal(cs_store_checkpoints_range(s, 899, 902, see_checkpoint, c), CS_OK);
	assert_int_equal(c->n, 6);
	int64_t want_last[] = {899, 900, 900, 900, 901, 902};
	for (int i = 0; i < 6; i++)
		assert_int_equal(c->last[i], want_last[i]);
	assert_int_equal(c->first[1], 1); /* recorded first */
	assert_int_equal(c->first[2], 5);
	assert_int_equal(c->first[3], 6);
	memset(c, 0, sizeof(*c));
	assert_int_equal(cs_store_checkpoints_range(s, 0, INT64_MAX, see_checkpoint, c), CS_OK);
	assert_int_equal(c->n, 602);
	for (int i = 1; i < c->n; i++)
		assert_true(c->last[i - 1] <= c->last[i]);
	memset(c, 0, sizeof(*c));
	c->stop_after = 3;
	assert_int_equal(cs_store_checkpoints_range(s, 2000, INT64_MAX, see_checkpoint, c), CS_OK);
	assert_int_equal(c->n, 3);
	assert_int_equal(c->last[0], 2300);
	memset(c, 0, sizeof(*c));
	assert_int_equal(cs_store_checkpoints_range(s, 1500, 1600, see_checkpoint, c), CS_OK);
	assert_int_equal(c->n, 0);
	assert_int_equal(cs_store_checkpoints_range(s, 10, 5, see_checkpoint, c), CS_OK);
	assert_int_equal(c->n, 0);

	int64_t covered = 0, base = 0;
	uint8_t h[32], want[32];
	char *jws = NULL;
	assert_int_equal(cs_store_checkpointed(s, &covered), CS_OK);
	assert_int_equal(covered, 2599);
	assert_int_equal(cs_store_purge_base(s, &base, h), CS_OK);
	assert_int_equal(base, 990);
	hash_of(990, want);
	assert_memory_equal(h, want, 32);
	assert_int_equal(cs_store_checkpoint_latest(s, &jws), CS_OK);
	assert_string_equal(jws, "jws-601");
	free(jws);
	/* append-only */
	PGresult *res = PQexec(raw, "DELETE FROM audit_checkpoints");
	assert_int_not_equal(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	res = PQexec(raw, "TRUNCATE audit_checkpoints");
	assert_int_not_equal(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	free(c);
	PQfinish(raw);
	cs_store_close(s);
}

/* ---- a ledger on PostgreSQL: three nodes ----------------------------------------------------- */

#define NODES 3
#define RACES 20

typedef struct {
	cs_ledger *l;
	int node, race;
	atomic_int *go;
	cs_err result;
} racer;

/* ---- refusals (issue 18) ------------------------------------------------------------ */

/* No id: CS_E_INVALID_ARG before a query; a payload libpq cannot carry:
 * CS_E_TOO_LARGE, nothing sent; rows edited outside credsign (the
 * revocations' count gone, an audit head whose ts does not fit): CS_E_STORE. */
static void test_refusals(void **state)
{
	(void)state;
	PGconn *raw = NULL;
	cs_store *s = fresh_store(&raw);
	assert_int_equal(cs_store_ceremony_get(s, NULL, NULL, NULL, NULL), CS_E_INVALID_ARG);
	assert_int_equal(cs_store_revocation_get(s, NULL, NULL, NULL), CS_E_INVALID_ARG);
	assert_int_equal(cs_store_signature_get(s, NULL, NULL, NULL), CS_E_INVALID_ARG);

	keys(s);
	cs_signature_record g = signature("sig-big", "ab", "pk-1", "digest", 1);
	g.payload = blob; /* never read: refused by its length */
	g.payload_len = (size_t)INT32_MAX + 1;
	capture_begin();
	write_begin(s);
	cs_err r = cs_store_signature_insert(s, &g);
	assert_int_equal(r, CS_E_TOO_LARGE);
	write_commit(s); /* nothing failed in the database */
	char *log = capture_end();
	assert_non_null(strstr(log, "too large"));
	free(log);
	assert_int_equal(raw_int(raw, "SELECT count(*) FROM signatures"), 0);

	capture_begin();
	raw_exec(raw, "DELETE FROM store_meta WHERE name = 'revocations_count'");
	int64_t count = -1, last = -1;
	assert_int_equal(cs_store_revocations_version(s, &count, &last), CS_E_STORE);
	raw_exec(raw, "INSERT INTO audit_log (seq, ts, node, actor, role, action, outcome, prev_hash, entry_hash) "
		      "VALUES (1, '2026-01-01T00:00:00.000000000000000000Z', 'n', 'a', 'system', 'x', 'success', "
		      "decode(repeat('00', 32), 'hex'), decode(repeat('00', 32), 'hex'))");
	int64_t seq = 0;
	uint8_t h[32];
	char ts[32];
	assert_int_equal(cs_store_audit_last(s, &seq, h, ts), CS_E_STORE);
	assert_string_equal(ts, "");
	log = capture_end();
	assert_non_null(strstr(log, "the revocations' count is missing"));
	assert_non_null(strstr(log, "is too long"));
	free(log);
	PQfinish(raw);
	cs_store_close(s);
}

static void *certify_race(void *p)
{
	racer *r = p;
	char sid[32], cid[32], node[16];
	snprintf(sid, sizeof(sid), "contested-%d", r->race);
	snprintf(cid, sizeof(cid), "cert-%d-%d", r->race, r->node);
	snprintf(node, sizeof(node), "node%d", r->node + 1);
	cs_audit_entry e = {.node = node, .actor = "client", .role = "client", .action = "certify",
			    .outcome = "success", .object = cid};
	while (!atomic_load(r->go))
		;
	r->result = cs_ledger_certify(r->l, sid, cid, "kid-1", "h.eyJhIjoxfQ.s", 1, &e);
	return NULL;
}

static void test_ledger_nodes(void **state)
{
	(void)state;
	char name[32];
	new_database(name, sizeof(name));
	cs_store_target t = target();
	cs_ledger *l[NODES] = {NULL};
	for (int i = 0; i < NODES; i++) {
		assert_int_equal(cs_ledger_connect(&t, 10000, &l[i]), CS_OK);
		assert_int_equal(cs_ledger_start(l[i]), CS_OK);
	}
	int changed = 0;
	assert_int_equal(cs_ledger_key_put(l[0], "kid-1", "pkcs11:object=k1", "{}", "active", &changed, NULL), CS_OK);
	int won_total = 0;
	for (int k = 0; k < RACES; k++) {
		char sid[32];
		snprintf(sid, sizeof(sid), "contested-%d", k);
		cs_gen_session g = {.created_ms = 1, .expires_ms = INT64_MAX / 2, .cert_sha256 = "ab",
				    .claims_json = "{\"a\":1}"};
		snprintf(g.id, sizeof(g.id), "%s", sid);
		cs_audit_entry e = {.node = "node1", .actor = "client", .role = "client", .action = "generate",
				    .outcome = "success", .object = sid};
		/* generated on one node, certified on all three at once */
		assert_int_equal(cs_ledger_session_put(l[k % NODES], &g, &e), CS_OK);
		atomic_int go = 0;
		racer r[NODES];
		pthread_t th[NODES];
		for (int i = 0; i < NODES; i++) {
			r[i] = (racer){l[i], i, k, &go, CS_E_INTERNAL};
			assert_int_equal(pthread_create(&th[i], NULL, certify_race, &r[i]), 0);
		}
		atomic_store(&go, 1);
		int won = 0, used = 0;
		for (int i = 0; i < NODES; i++) {
			pthread_join(th[i], NULL);
			won += r[i].result == CS_OK;
			used += r[i].result == CS_E_SESSION_USED;
		}
		if (won != 1 || used != NODES - 1)
			fail_msg("race %d: %d won, %d refused as used", k, won, used);
		won_total += won;
	}
	for (int i = 0; i < NODES; i++)
		cs_ledger_close(l[i]);
	assert_int_equal(won_total, RACES);

	PGconn *raw = raw_connect(name);
	raw_exec(raw, "SET search_path = credsign");
	assert_int_equal(raw_int(raw, "SELECT count(*) FROM certificates"), RACES);
	assert_int_equal(raw_int(raw, "SELECT count(*) FROM audit_log WHERE action = 'certify'"), RACES);
	assert_int_equal(raw_int(raw, "SELECT count(*) FROM audit_log"), 2 * RACES);
	assert_int_equal(raw_int(raw, "SELECT max(seq) - min(seq) + 1 - count(*) FROM audit_log"), 0);
	PQfinish(raw);

	/* one chain from every node, walked by audit verify */
	cs_store *s = NULL;
	assert_int_equal(cs_store_connect_existing_readonly(&t, &s), CS_OK);
	json_t *jwks = json_pack("{s:[]}", "keys");
	cs_audit_report rep;
	assert_int_equal(cs_audit_verify(s, jwks, 0, &rep), CS_OK);
	if (!rep.intact)
		fail_msg("audit log not intact at %lld: %s", (long long)rep.bad_seq, rep.reason);
	assert_int_equal(rep.entries, 2 * RACES);
	assert_int_equal(rep.ts_warnings, 0);
	json_decref(jwks);
	cs_store_close(s);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ceremonies),
		cmocka_unit_test(test_rollovers),
		cmocka_unit_test(test_revocations),
		cmocka_unit_test(test_signatures),
		cmocka_unit_test(test_audit_log),
		cmocka_unit_test(test_checkpoints),
		cmocka_unit_test(test_ledger_nodes),
		cmocka_unit_test(test_refusals),
	};
	return cmocka_run_group_tests(tests, pg_start, pg_stop);
}
