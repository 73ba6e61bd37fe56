/*
 * audit_log_test: the audit log's export format, the verification of an
 * export (whole and partial) and retention's time reference, with real
 * stores and checkpoints signed by a software P-256 key.
 *
 *  - one format: entries carry "type":"entry", their 13 fields (null when
 *    absent) and both hashes; checkpoints "type":"checkpoint" with
 *    head_hash; a page stops at its limit and says where to go on; its
 *    checkpoints are the base and those ending inside it (past it only
 *    when the export reaches the end of the log); --since by time never
 *    leaves a gap;
 *  - an export file verifies whole and from any entry on (partial: from
 *    that entry's own prev_hash; signed as far as the last checkpoint head
 *    inside it); pages put together verify with their repeated
 *    checkpoints counted once; an edit, a deletion and a truncated tail
 *    of a file are caught;
 *  - purge: age is measured against the newest signed periodic or stop
 *    checkpoint, never the local clock alone: with the clock 500 days
 *    ahead, entries made minutes ago stay (before: everything went); old
 *    entries go; entries no checkpoint covers never go; a purge
 *    checkpoint (the purging host's clock) is never the reference, and a
 *    reference that does not verify is refused;
 *  - the cutoff is min(local, reference) - retention.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "audit.h"
#include "audit_verify.h"
#include "certsign.h"
#include "ec_util.h"
#include "jose.h"
#include "ledger.h"
#include "store.h"

#define DAY_MS (86400LL * 1000)

static char dir[512];
static int db_counter;
static EVP_PKEY *key;
static char kid[44];
static json_t *jwks;

static void new_db(char *path, size_t n)
{
	snprintf(path, n, "%s/audit-%d.db", dir, ++db_counter);
}

static int64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* ---- a software signer in place of the token ------------------------------------------ */

static cs_err soft_sign(void *ctx, const uint8_t *input, size_t len, uint8_t raw[64])
{
	uint8_t der[80];
	size_t der_len = sizeof(der);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok = md != NULL && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, ctx) == 1 &&
		 EVP_DigestSign(md, der, &der_len, input, len) == 1;
	EVP_MD_CTX_free(md);
	return ok ? cs_ecdsa_der_to_raw(der, der_len, raw) : CS_E_CRYPTO;
}

/* A cs_checkpoint_sign_fn: the payload cs_audit_sign_checkpoint signs. */
static cs_err sign_checkpoint(void *arg, int64_t first, int64_t last, const uint8_t head[32], const char *ts,
			      const char *node, const char *kind, char **jws)
{
	(void)arg;
	char *h = cs_b64url_encode(head, 32);
	json_t *claims = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s}", "first_seq", (json_int_t)first, "last_seq",
				   (json_int_t)last, "head_hash", h, "time", ts, "node", node, "kind", kind);
	json_t *header = json_pack("{s:s, s:s, s:s}", "alg", "ES256", "typ", CS_CHECKPOINT_TYP, "kid", kid);
	cs_err r = cs_jws_es256_sign(header, claims, soft_sign, key, jws);
	free(h);
	json_decref(claims);
	json_decref(header);
	return r;
}

/* ---- a log ---------------------------------------------------------------------------- */

static cs_ledger *open_ledger(const char *path)
{
	cs_ledger *l = NULL;
	assert_int_equal(cs_ledger_open(path, 5000, &l), CS_OK);
	return l;
}

/* n entries at time ts (NULL: now; the ledger raises an earlier time to
 * the newest entry's), every third with absent optional fields */
static void append(cs_ledger *l, int n, const char *ts)
{
	for (int i = 0; i < n; i++) {
		cs_audit_entry e = {.ts = ts, .node = "test-1", .actor = "spiffe://credsign.test/a",
				    .role = "client", .action = "cert.read", .object = "obj",
				    .project = i % 3 ? "payments" : NULL, .outcome = "success",
				    .request_id = i % 3 ? "test-1-aaaaaaaaaaaa-1" : NULL};
		assert_int_equal(cs_ledger_audit_append(l, &e), CS_OK);
	}
}

static void checkpoint(cs_ledger *l, int64_t want_first, int64_t want_last)
{
	int64_t first = 0, last = 0;
	assert_int_equal(cs_ledger_checkpoint_make(l, "test-1", "periodic", sign_checkpoint, NULL, &first, &last),
			 CS_OK);
	assert_int_equal(first, want_first);
	assert_int_equal(last, want_last);
}

static int64_t count(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int64_t n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* ---- exports --------------------------------------------------------------------------- */

typedef struct {
	json_t *objects;
} collected;

static int collect(void *arg, json_t *j)
{
	return json_array_append_new(((collected *)arg)->objects, j) != 0;
}

/* An export as an array of objects; *next: where the next page begins. */
static json_t *export_of(const char *path, int64_t from, const char *since, int64_t limit, int64_t *next)
{
	cs_store *s = NULL;
	collected c = {json_array()};
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	assert_int_equal(cs_audit_export(s, from, since, limit, collect, &c, next), CS_OK);
	cs_store_close(s);
	return c.objects;
}

/* The seqs of the entries and the ranges of the checkpoints, as text:
 * "1 2 3 | 1-5p 6-10p" */
static void shape(const json_t *objects, char *out, size_t cap)
{
	size_t i, n = 0;
	json_t *o;
	char cps[512] = "";
	size_t m = 0;
	out[0] = '\0';
	json_array_foreach(objects, i, o) {
		const char *type = json_string_value(json_object_get(o, "type"));
		if (strcmp(type, "entry") == 0)
			n += (size_t)snprintf(out + n, cap - n, "%s%lld", n ? " " : "",
					      (long long)json_integer_value(json_object_get(o, "seq")));
		else
			m += (size_t)snprintf(cps + m, sizeof(cps) - m, " %lld-%lld%c",
					      (long long)json_integer_value(json_object_get(o, "first_seq")),
					      (long long)json_integer_value(json_object_get(o, "last_seq")),
					      json_string_value(json_object_get(o, "kind"))[1]);
	}
	snprintf(out + n, cap - n, " |%s", cps);
}

/* Write objects as JSON lines to a file; returns its path (static). */
static const char *write_lines(const json_t *objects, const char *name)
{
	static char path[600];
	snprintf(path, sizeof(path), "%s/%s.jsonl", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	size_t i;
	json_t *o;
	json_array_foreach(objects, i, o) {
		char *line = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
		fprintf(f, "%s\n", line);
		free(line);
	}
	fclose(f);
	return path;
}

static cs_audit_report verify_file(const char *path)
{
	cs_audit_report rep;
	assert_int_equal(cs_audit_verify_export(path, jwks, &rep), CS_OK);
	return rep;
}

/* 13 entries, checkpoints over 1..5 and 6..10, entries 11..13 unsigned */
static void thirteen(char *path, size_t n)
{
	new_db(path, n);
	cs_ledger *l = open_ledger(path);
	append(l, 5, NULL);
	checkpoint(l, 1, 5);
	append(l, 5, NULL);
	checkpoint(l, 6, 10);
	append(l, 3, NULL);
	cs_ledger_close(l);
}

static void test_export_format(void **state)
{
	(void)state;
	char path[600], got[1024];
	int64_t next = -1;
	thirteen(path, sizeof(path));

	json_t *all = export_of(path, 1, NULL, 0, &next);
	shape(all, got, sizeof(got));
	assert_string_equal(got, "1 2 3 4 5 6 7 8 9 10 11 12 13 | 1-5e 6-10e");
	assert_int_equal(next, 0);
	/* an entry: its 13 fields, absent ones null, both hashes, its type */
	json_t *e = json_array_get(all, 0), *cp = json_array_get(all, 13);
	static const char *const fields[] = {"seq", "ts", "node", "actor", "actor_cert_sha256", "role", "action",
					     "object", "project", "environment", "outcome", "error_code",
					     "request_id", "type", "prev_hash", "entry_hash"};
	assert_int_equal(json_object_size(e), 16);
	for (size_t i = 0; i < 16; i++)
		assert_non_null(json_object_get(e, fields[i]));
	assert_true(json_is_null(json_object_get(e, "project")));
	assert_true(json_is_null(json_object_get(e, "actor_cert_sha256")));
	assert_string_equal(json_string_value(json_object_get(e, "prev_hash")),
			    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
	/* a checkpoint: the signed members unsigned beside the JWS, head_hash
	 * the entry_hash of its last entry */
	static const char *const cpf[] = {"type", "first_seq", "last_seq", "head_hash", "time", "node", "kind", "jws"};
	assert_int_equal(json_object_size(cp), 8);
	for (size_t i = 0; i < 8; i++)
		assert_non_null(json_object_get(cp, cpf[i]));
	assert_string_equal(json_string_value(json_object_get(cp, "head_hash")),
			    json_string_value(json_object_get(json_array_get(all, 4), "entry_hash")));
	json_decref(all);

	/* pages: the checkpoints ending inside, and where to go on */
	json_t *page = export_of(path, 7, NULL, 3, &next);
	shape(page, got, sizeof(got));
	assert_string_equal(got, "7 8 9 |");
	assert_int_equal(next, 10);
	json_decref(page);
	page = export_of(path, 7, NULL, 4, &next);
	shape(page, got, sizeof(got));
	assert_string_equal(got, "7 8 9 10 | 6-10e");
	assert_int_equal(next, 11);
	json_decref(page);
	page = export_of(path, 11, NULL, 3, &next); /* exactly to the end */
	shape(page, got, sizeof(got));
	assert_string_equal(got, "11 12 13 |");
	assert_int_equal(next, 0);
	json_decref(page);
	page = export_of(path, 14, NULL, 0, &next);
	shape(page, got, sizeof(got));
	assert_string_equal(got, " |");
	json_decref(page);

	/* --since a time: from the first entry not earlier, no gap after it */
	new_db(path, sizeof(path));
	cs_ledger *l = open_ledger(path);
	append(l, 2, "2026-01-01T00:00:00.000Z");
	append(l, 2, "2026-01-02T00:00:00.000Z");
	append(l, 1, "2026-01-01T12:00:00.000Z"); /* raised to 01-02 by the ledger */
	cs_ledger_close(l);
	page = export_of(path, 1, "2026-01-01T12:00:00.000Z", 0, &next);
	shape(page, got, sizeof(got));
	assert_string_equal(got, "3 4 5 |");
	json_decref(page);
}

static void test_verify_export_whole_and_partial(void **state)
{
	(void)state;
	char path[600];
	int64_t next = 0;
	thirteen(path, sizeof(path));

	json_t *all = export_of(path, 1, NULL, 0, &next);
	cs_audit_report rep = verify_file(write_lines(all, "whole"));
	assert_true(rep.intact);
	assert_int_equal(rep.entries, 13);
	assert_int_equal(rep.checkpoints, 2);
	assert_false(rep.partial);
	assert_int_equal(rep.signed_through, 10); /* 11..13: not signed yet */

	/* from seq 4 (--since 4): chained from entry 4's own prev_hash */
	json_t *part = export_of(path, 4, NULL, 0, &next);
	rep = verify_file(write_lines(part, "since4"));
	assert_true(rep.intact);
	assert_true(rep.partial);
	assert_int_equal(rep.first_seq, 4);
	assert_int_equal(rep.signed_through, 10);
	json_decref(part);

	/* API pages put together: 1..4, 5..8, 9..13; checkpoints repeated */
	json_t *pages = json_array();
	for (int64_t from = 1; from != 0;) {
		json_t *p = export_of(path, from, NULL, 4, &next);
		json_array_extend(pages, p);
		json_decref(p);
		from = next;
	}
	rep = verify_file(write_lines(pages, "pages"));
	assert_true(rep.intact);
	assert_int_equal(rep.entries, 13);
	assert_int_equal(rep.checkpoints, 2);
	json_decref(pages);

	/* an edited entry, a deleted one, a truncated tail */
	json_t *edited = json_deep_copy(all);
	json_object_set_new(json_array_get(edited, 6), "actor", json_string("spiffe://evil"));
	rep = verify_file(write_lines(edited, "edited"));
	assert_false(rep.intact);
	assert_int_equal(rep.bad_seq, 7);
	assert_non_null(strstr(rep.reason, "modified"));
	json_array_remove(edited, 6);
	rep = verify_file(write_lines(edited, "deleted"));
	assert_false(rep.intact);
	assert_int_equal(rep.bad_seq, 7);
	assert_non_null(strstr(rep.reason, "missing"));
	json_decref(edited);
	json_t *cut = json_deep_copy(all);
	for (int i = 0; i < 5; i++)
		json_array_remove(cut, 8); /* entries 9..13 gone, checkpoints kept */
	rep = verify_file(write_lines(cut, "truncated"));
	assert_false(rep.intact);
	assert_int_equal(rep.bad_seq, 9);
	assert_non_null(strstr(rep.reason, "truncated"));
	json_decref(cut);
	/* a checkpoint whose unsigned members differ from its payload */
	json_t *lied = json_deep_copy(all);
	json_object_set_new(json_array_get(lied, 13), "last_seq", json_integer(4));
	rep = verify_file(write_lines(lied, "lied"));
	assert_false(rep.intact);
	json_decref(lied);
	json_decref(all);
}

/* ---- purge ------------------------------------------------------------------------- */

/* What credsign-admin audit purge does, with the local clock at now. */
static void purge_at(const char *path, int64_t now, int64_t *first, int64_t *boundary, int64_t *ahead)
{
	cs_store *s = NULL;
	char reference[32], cutoff[32], why[256];
	int64_t ref_seq = 0;
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	assert_int_equal(cs_audit_time_reference(s, jwks, reference, &ref_seq, why), CS_OK);
	cs_store_close(s);
	assert_int_equal(cs_audit_purge_cutoff(reference, now, 400, cutoff, ahead), CS_OK);
	cs_ledger *l = open_ledger(path);
	assert_int_equal(cs_ledger_audit_purge_through(l, cutoff, ref_seq, "test-1", sign_checkpoint, NULL, first,
						       boundary),
			 CS_OK);
	cs_ledger_close(l);
}

static void test_purge_against_the_signed_time(void **state)
{
	(void)state;
	char path[600], old[32];
	int64_t first = 0, boundary = 0, ahead = 0;

	/* the case: entries made minutes ago, the local clock 500 days
	 * ahead. Measured against the local clock (cutoff = now + 100 days)
	 * all of them would go; against the checkpoint, none. */
	thirteen(path, sizeof(path));
	purge_at(path, now_ms() + 500 * DAY_MS, &first, &boundary, &ahead);
	assert_int_equal(boundary, 0);
	assert_true(ahead > 499 * DAY_MS && ahead > CS_AUDIT_CLOCK_AHEAD_MS);
	assert_int_equal(count(path, "SELECT count(*) FROM audit_log"), 13);

	/* old entries go, up to the last signed one */
	new_db(path, sizeof(path));
	cs_audit_time_format(now_ms() - 500 * DAY_MS, old);
	cs_ledger *l = open_ledger(path);
	append(l, 3, old);
	cs_ledger_close(l);
	cs_store *s = NULL;
	char reference[32], why[256];
	int64_t ref_seq = 0;
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	assert_int_equal(cs_audit_time_reference(s, jwks, reference, &ref_seq, why), CS_E_NOT_FOUND);
	cs_store_close(s);
	l = open_ledger(path);
	checkpoint(l, 1, 3);
	append(l, 2, old); /* old times, but not signed yet */
	cs_ledger_close(l);
	purge_at(path, now_ms(), &first, &boundary, &ahead);
	assert_int_equal(first, 1);
	assert_int_equal(boundary, 3); /* not 5: entries 4 and 5 are not signed */
	assert_true(ahead >= 0 && ahead < 60000);
	assert_int_equal(count(path, "SELECT min(seq) FROM audit_log"), 4);

	/* a purge checkpoint far in the future is never the reference */
	l = open_ledger(path);
	append(l, 1, NULL);
	checkpoint(l, 4, 6);
	cs_ledger_close(l);
	char future[32], *jws = NULL;
	uint8_t head[32];
	int found = 0;
	cs_audit_time_format(now_ms() + 900 * DAY_MS, future);
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	assert_int_equal(cs_store_audit_hash_at(s, 6, head, &found), CS_OK);
	assert_int_equal(sign_checkpoint(NULL, 4, 6, head, future, "test-1", "purge", &jws), CS_OK);
	assert_int_equal(cs_store_checkpoint_insert(s, 4, 6, head, future, "test-1", "purge", jws), CS_OK);
	free(jws);
	assert_int_equal(cs_audit_time_reference(s, jwks, reference, &ref_seq, why), CS_OK);
	assert_int_equal(ref_seq, 6);
	int64_t ref = 0;
	assert_int_equal(cs_audit_time_parse(reference, &ref), CS_OK);
	assert_true(ref <= now_ms() && ref > now_ms() - 60000);
	/* a reference that does not verify is refused */
	json_t *other = json_pack("{s:[]}", "keys");
	assert_int_equal(cs_audit_time_reference(s, other, reference, &ref_seq, why), CS_E_SIGNATURE_INVALID);
	assert_non_null(strstr(why, "bad signature"));
	json_decref(other);
	cs_store_close(s);
}

static void test_cutoff(void **state)
{
	(void)state;
	char cutoff[32], text[32];
	int64_t ahead = 0, ref = 0;
	assert_int_equal(cs_audit_time_parse("2026-01-01T00:00:00.250Z", &ref), CS_OK);
	assert_int_equal(ref, 1767225600250LL);
	cs_audit_time_format(ref, text);
	assert_string_equal(text, "2026-01-01T00:00:00.250Z");
	/* the clock ahead: the reference counts */
	assert_int_equal(cs_audit_purge_cutoff("2026-01-01T00:00:00.250Z", ref + 500 * DAY_MS, 400, cutoff, &ahead),
			 CS_OK);
	assert_string_equal(cutoff, "2024-11-27T00:00:00.250Z");
	assert_int_equal(ahead, 500 * DAY_MS);
	/* the clock behind: the clock counts (less goes) */
	assert_int_equal(cs_audit_purge_cutoff("2026-01-01T00:00:00.250Z", ref - 10 * DAY_MS, 400, cutoff, &ahead),
			 CS_OK);
	assert_string_equal(cutoff, "2024-11-17T00:00:00.250Z");
	assert_int_equal(ahead, -10 * DAY_MS);
	const char *bad[] = {"2026-01-01", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00.25xZ",
			     "2026-01-01T00:00:00.250+00", "2026-13-01T00:00:00.250Z"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(cs_audit_purge_cutoff(bad[i], ref, 400, cutoff, &ahead), CS_E_INVALID_ARG);
}

static int setup(void **state)
{
	(void)state;
	const char *base = getenv("CREDSIGN_TEST_TMP");
	if (base == NULL)
		base = "/tmp";
	(void)mkdir(base, 0700);
	snprintf(dir, sizeof(dir), "%s/audit-log-test-XXXXXX", base);
	json_t *jwk = NULL;
	if (mkdtemp(dir) == NULL || (key = EVP_EC_gen("P-256")) == NULL || cs_jwk_thumbprint(key, kid) != CS_OK ||
	    cs_jwk_from_pkey(key, &jwk) != CS_OK)
		return -1;
	jwks = json_pack("{s:[o]}", "keys", jwk);
	return jwks != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[600];
	EVP_PKEY_free(key);
	json_decref(jwks);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_export_format),
		cmocka_unit_test(test_verify_export_whole_and_partial),
		cmocka_unit_test(test_purge_against_the_signed_time),
		cmocka_unit_test(test_cutoff),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
