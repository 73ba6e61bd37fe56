/*
 * audit_log_test: the audit log's export format, the verification of an
 * export (whole and partial) and retention's time reference, with real
 * stores and checkpoints signed by a software P-256 key.
 *
 *  - one format: entries carry "type":"entry", their 13 fields (null when
 *    absent) and both hashes; checkpoints "type":"checkpoint" with
 *    head_hash; a page stops at its limit and says where to go on; its
 *    checkpoints are the base, those ending inside it and the one over its
 *    last entry that ends past it (all past it only when the export
 *    reaches the end of the log); --since by time never leaves a gap;
 *  - intact is not authenticated: a page, an export stripped of its
 *    checkpoints, a fabricated re-chained one, an empty one are reported
 *    with what is authenticated (nothing); a member more in an entry, a
 *    checkpoint line or a signed payload is refused; a kept checkpoint
 *    (JWS or GET /api/audit/checkpoint's answer) must be reached and
 *    agreed with, and authenticates up to itself;
 *  - the clock: at start, ahead (> 1 day) of or behind the log's newest
 *    time, recorded as clock.ahead; the largest step forward between the
 *    signed times of consecutive checkpoints over the entries kept (the
 *    review's faketime +2500d daemon), its checkpoints verified;
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
 *  - the cutoff is min(local, reference) - retention;
 *  - each kind of tampering an export's verification refuses, with the
 *    line or seq it names: a line without a type, an entry without its
 *    seq or a field, a checkpoint without a member, an unknown type, two
 *    validly signed checkpoints over one range with different heads, a
 *    signed header with a member more, entries before a purge base; a kept
 *    checkpoint given as an export line (a lying or extra member refused);
 *    a stored checkpoint time that is not a time;
 *  - more refusals (round 2): a signed payload of six members of a wrong
 *    type or value, a header of another typ or naming no kid or another,
 *    members beside the JWS differing from it, a checkpoint line or entry
 *    lacking a member; a kept checkpoint's file forms (the answer with or
 *    without header/claims, lying ones, over 64 KiB, a NUL, a node or time
 *    too long), one before a partial export's first entry, a kept purge
 *    checkpoint (the base agreed with, another refused, one not verifying);
 *    the time reference (none, a purge never, not verifying, too long); a
 *    store failing under the verification fails it;
 *  - an export fails (CS_E_STORE) rather than skip: a consumer that stops
 *    it, an entry that is not UTF-8; times only in the one format.
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
#include "test_support.h"

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

/* A cs_checkpoint_sign_fn: the payload cs_audit_sign_checkpoint signs. */
static cs_err sign_checkpoint(void *arg, int64_t first, int64_t last, const uint8_t head[32], const char *ts,
			      const char *node, const char *kind, char **jws)
{
	(void)arg;
	char *h = cs_b64url_encode(head, 32);
	json_t *claims = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s}", "first_seq", (json_int_t)first, "last_seq",
				   (json_int_t)last, "head_hash", h, "time", ts, "node", node, "kind", kind);
	json_t *header = json_pack("{s:s, s:s, s:s}", "alg", "ES256", "typ", CS_CHECKPOINT_TYP, "kid", kid);
	cs_err r = cs_jws_es256_sign(header, claims, ts_soft_sign, key, jws);
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
	assert_int_equal(cs_audit_verify_export(path, jwks, NULL, &rep), CS_OK);
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

	/* pages: the checkpoints ending inside, the one over the last entry
	 * (ending past the page: before, 7..9 came without it and 1..3 with
	 * none, so nothing said a checkpoint covered them), where to go on */
	json_t *page = export_of(path, 7, NULL, 3, &next);
	shape(page, got, sizeof(got));
	assert_string_equal(got, "7 8 9 | 6-10e");
	assert_int_equal(next, 10);
	json_decref(page);
	page = export_of(path, 1, NULL, 3, &next);
	shape(page, got, sizeof(got));
	assert_string_equal(got, "1 2 3 | 1-5e");
	json_decref(page);
	page = export_of(path, 5, NULL, 2, &next);
	shape(page, got, sizeof(got));
	assert_string_equal(got, "5 6 | 1-5e 6-10e");
	json_decref(page);
	page = export_of(path, 1, NULL, 5, &next); /* ends where a checkpoint ends: not the next one */
	shape(page, got, sizeof(got));
	assert_string_equal(got, "1 2 3 4 5 | 1-5e");
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
	for (int i = 0; i < 8; i++)
		json_array_remove(cut, 5); /* entries 6..13 gone, checkpoints kept */
	rep = verify_file(write_lines(cut, "truncated"));
	assert_false(rep.intact);
	assert_int_equal(rep.bad_seq, 6);
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

/* ---- what a verification authenticates ------------------------------------------------ */

/* Copies of the entries alone. */
static json_t *entries_only(const json_t *objects)
{
	json_t *out = json_array();
	size_t i;
	json_t *o;
	json_array_foreach(objects, i, o)
		if (strcmp(json_string_value(json_object_get(o, "type")), "entry") == 0)
			json_array_append_new(out, json_deep_copy(o));
	return out;
}

static const char *text_or_null(const json_t *o, const char *name)
{
	return json_string_value(json_object_get(o, name));
}

/* Recompute every entry's hashes from the first one's prev_hash: what a
 * forger who changed entries does so that the chain holds. */
static void rechain(json_t *objects)
{
	uint8_t running[32], hash[32];
	int started = 0;
	size_t i;
	json_t *o;
	json_array_foreach(objects, i, o) {
		if (strcmp(json_string_value(json_object_get(o, "type")), "entry") != 0)
			continue;
		if (!started) {
			uint8_t *raw = NULL;
			size_t n = 0;
			assert_int_equal(cs_b64url_decode(text_or_null(o, "prev_hash"), &raw, &n), CS_OK);
			assert_int_equal(n, 32);
			memcpy(running, raw, 32);
			free(raw);
			started = 1;
		}
		cs_audit_entry e = {
			.seq = (int64_t)json_integer_value(json_object_get(o, "seq")), .ts = text_or_null(o, "ts"),
			.node = text_or_null(o, "node"), .actor = text_or_null(o, "actor"),
			.actor_cert_sha256 = text_or_null(o, "actor_cert_sha256"), .role = text_or_null(o, "role"),
			.action = text_or_null(o, "action"), .object = text_or_null(o, "object"),
			.project = text_or_null(o, "project"), .environment = text_or_null(o, "environment"),
			.outcome = text_or_null(o, "outcome"), .error_code = text_or_null(o, "error_code"),
			.request_id = text_or_null(o, "request_id")};
		assert_int_equal(cs_audit_hash(NULL, running, &e, hash), CS_OK);
		char *p = cs_b64url_encode(running, 32), *h = cs_b64url_encode(hash, 32);
		json_object_set_new(o, "prev_hash", json_string(p));
		json_object_set_new(o, "entry_hash", json_string(h));
		free(p);
		free(h);
		memcpy(running, hash, 32);
	}
}

/* A file holding text; returns its path (static). */
static const char *write_text(const char *text, const char *name)
{
	static char path[600];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

/* The JWS of the checkpoint first..last in the store at path (malloc'd). */
static char *stored_jws(const char *path, int64_t first, int64_t last)
{
	char sql[160], *jws = NULL;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	snprintf(sql, sizeof(sql), "SELECT jws FROM audit_checkpoints WHERE first_seq = %lld AND last_seq = %lld",
		 (long long)first, (long long)last);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	jws = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return jws;
}

static cs_audit_report verify_pinned(const char *file, const char *kept)
{
	cs_audit_pin pin;
	cs_audit_report rep;
	char why[256];
	assert_int_equal(cs_audit_pin_load(kept, jwks, &pin, why), CS_OK);
	assert_int_equal(cs_audit_verify_export(file, jwks, &pin, &rep), CS_OK);
	cs_audit_pin_free(&pin);
	return rep;
}

static void test_verify_says_what_is_authenticated(void **state)
{
	(void)state;
	char path[600];
	int64_t next = 0;
	thirteen(path, sizeof(path));
	json_t *all = export_of(path, 1, NULL, 0, &next);

	/* whole: 1..10 authenticated (heads at 5 and 10), 11..13 the unsigned tail */
	cs_audit_report rep = verify_file(write_lines(all, "auth-whole"));
	assert_true(rep.intact);
	assert_int_equal(rep.authenticated, 10);
	assert_int_equal(rep.unsigned_entries, 3);
	assert_int_equal(rep.beyond_entries, 0);

	/* a page 5..8: entry 5 authenticated by 1..5; 6..8 covered by 6..10,
	 * which ends past the page (before: reported as not covered at all) */
	json_t *page = export_of(path, 5, NULL, 4, &next);
	rep = verify_file(write_lines(page, "auth-page"));
	assert_true(rep.intact);
	assert_int_equal(rep.authenticated, 1);
	assert_int_equal(rep.beyond_first, 6);
	assert_int_equal(rep.beyond_last, 10);
	assert_int_equal(rep.beyond_entries, 3);
	assert_int_equal(rep.unsigned_entries, 0);
	json_decref(page);
	/* a page 1..3 authenticates nothing by itself, and says why */
	page = export_of(path, 1, NULL, 3, &next);
	rep = verify_file(write_lines(page, "auth-page-1-3"));
	assert_true(rep.intact);
	assert_int_equal(rep.authenticated, 0);
	assert_int_equal(rep.beyond_entries, 3);
	json_decref(page);

	/* every checkpoint removed: the chain holds, nothing is authenticated */
	json_t *bare = entries_only(all);
	rep = verify_file(write_lines(bare, "auth-bare"));
	assert_true(rep.intact);
	assert_int_equal(rep.entries, 13);
	assert_int_equal(rep.authenticated, 0);
	assert_int_equal(rep.unsigned_entries, 13);
	/* fabricated: every actor changed and the chain recomputed; without
	 * the checkpoints it still chains, but nothing is authenticated */
	size_t i;
	json_t *o;
	json_array_foreach(bare, i, o)
		json_object_set_new(o, "actor", json_string("someone-else"));
	rechain(bare);
	rep = verify_file(write_lines(bare, "auth-fabricated"));
	assert_true(rep.intact);
	assert_int_equal(rep.authenticated, 0);
	/* the empty export */
	json_t *none = json_array();
	rep = verify_file(write_lines(none, "auth-empty"));
	assert_true(rep.intact);
	assert_int_equal(rep.entries, 0);
	assert_int_equal(rep.authenticated, 0);
	json_decref(none);

	/* a member more: unsigned text riding along is refused (before: intact) */
	json_t *extra = json_deep_copy(all);
	json_object_set_new(json_array_get(extra, 6), "note", json_string("x"));
	rep = verify_file(write_lines(extra, "auth-extra-entry"));
	assert_false(rep.intact);
	assert_int_equal(rep.bad_seq, 7);
	assert_non_null(strstr(rep.reason, "members not in the format"));
	json_decref(extra);
	extra = json_deep_copy(all);
	json_object_set_new(json_array_get(extra, 13), "note", json_string("x"));
	rep = verify_file(write_lines(extra, "auth-extra-checkpoint"));
	assert_false(rep.intact);
	assert_non_null(strstr(rep.reason, "members not in the format"));
	json_decref(extra);
	/* a signed payload with a member more */
	uint8_t head[32];
	int found = 0;
	cs_store *s = NULL;
	char *jws = NULL, *h = NULL;
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	assert_int_equal(cs_store_audit_hash_at(s, 5, head, &found), CS_OK);
	cs_store_close(s);
	h = cs_b64url_encode(head, 32);
	json_t *claims = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:s}", "first_seq", (json_int_t)1, "last_seq",
				   (json_int_t)5, "head_hash", h, "time", "2026-01-01T00:00:00.000Z", "node", "test-1",
				   "kind", "periodic", "note", "x");
	json_t *header = json_pack("{s:s, s:s, s:s}", "alg", "ES256", "typ", CS_CHECKPOINT_TYP, "kid", kid);
	assert_int_equal(cs_jws_es256_sign(header, claims, ts_soft_sign, key, &jws), CS_OK);
	extra = json_deep_copy(all);
	json_t *cp = json_array_get(extra, 13);
	json_object_set_new(cp, "time", json_string("2026-01-01T00:00:00.000Z"));
	json_object_set_new(cp, "jws", json_string(jws));
	rep = verify_file(write_lines(extra, "auth-extra-payload"));
	assert_false(rep.intact);
	assert_non_null(strstr(rep.reason, "payload is not exactly"));
	json_decref(extra);
	json_decref(claims);
	json_decref(header);
	free(jws);
	free(h);

	/* --checkpoint: the kept checkpoint 6..10 as its bare JWS */
	jws = stored_jws(path, 6, 10);
	char kept[600];
	snprintf(kept, sizeof(kept), "%s", write_text(jws, "kept-6-10.jws"));
	rep = verify_pinned(write_lines(all, "pin-whole"), kept);
	assert_true(rep.intact);
	assert_true(rep.pinned);
	assert_int_equal(rep.pin_last, 10);
	assert_int_equal(rep.authenticated, 10);
	/* an export cut at 8, the checkpoints past it dropped too: alone it
	 * verifies (1..5 authenticated); against the kept checkpoint it is cut */
	json_t *cut = json_array();
	json_array_foreach(all, i, o)
		if (json_integer_value(json_object_get(o, "seq")) <= 8 &&
		    json_integer_value(json_object_get(o, "last_seq")) <= 8)
			json_array_append(cut, o);
	char cut_path[600];
	snprintf(cut_path, sizeof(cut_path), "%s", write_lines(cut, "pin-cut"));
	rep = verify_file(cut_path);
	assert_true(rep.intact);
	assert_int_equal(rep.authenticated, 5);
	rep = verify_pinned(cut_path, kept);
	assert_false(rep.intact);
	assert_non_null(strstr(rep.reason, "before the end of the kept checkpoint 6..10"));
	json_decref(cut);
	/* the fabricated export does not agree with it */
	rep = verify_pinned(write_lines(bare, "pin-fabricated"), kept);
	assert_false(rep.intact);
	assert_non_null(strstr(rep.reason, "kept checkpoint 6..10"));
	/* a partial export that begins after it cannot be checked against it */
	json_t *late = export_of(path, 11, NULL, 0, &next);
	rep = verify_pinned(write_lines(late, "pin-late"), kept);
	assert_false(rep.intact);
	assert_non_null(strstr(rep.reason, "cannot be checked"));
	json_decref(late);
	/* the answer of GET /api/audit/checkpoint; a changed decoded member, a
	 * member more, another key, not a checkpoint: refused */
	json_t *peek_h = NULL, *peek_c = NULL;
	assert_int_equal(cs_jws_peek(jws, &peek_h, &peek_c), CS_OK);
	json_t *answer = json_pack("{s:s, s:O, s:O}", "checkpoint", jws, "header", peek_h, "claims", peek_c);
	char *text = json_dumps(answer, JSON_COMPACT);
	rep = verify_pinned(write_lines(all, "pin-answer"), write_text(text, "kept-answer.json"));
	assert_true(rep.intact);
	assert_true(rep.pinned);
	free(text);
	cs_audit_pin pin;
	char why[256];
	json_object_set_new(json_object_get(answer, "claims"), "last_seq", json_integer(13));
	text = json_dumps(answer, JSON_COMPACT);
	assert_int_equal(cs_audit_pin_load(write_text(text, "kept-lied.json"), jwks, &pin, why), CS_E_INVALID_ARG);
	assert_non_null(strstr(why, "differ"));
	free(text);
	json_object_set_new(answer, "claims", json_deep_copy(peek_c));
	json_object_set_new(answer, "note", json_string("x"));
	text = json_dumps(answer, JSON_COMPACT);
	assert_int_equal(cs_audit_pin_load(write_text(text, "kept-extra.json"), jwks, &pin, why), CS_E_INVALID_ARG);
	free(text);
	json_t *other_jwks = NULL, *other_jwk = NULL;
	EVP_PKEY *other = EVP_EC_gen("P-256");
	assert_int_equal(cs_jwk_from_pkey(other, &other_jwk), CS_OK);
	other_jwks = json_pack("{s:[o]}", "keys", other_jwk);
	assert_int_equal(cs_audit_pin_load(kept, other_jwks, &pin, why), CS_E_SIGNATURE_INVALID);
	assert_non_null(strstr(why, "bad signature"));
	json_decref(other_jwks);
	EVP_PKEY_free(other);
	assert_int_equal(cs_audit_pin_load(write_text("not a checkpoint", "kept-junk"), jwks, &pin, why),
			 CS_E_SIGNATURE_INVALID);
	json_decref(answer);
	json_decref(peek_h);
	json_decref(peek_c);
	free(jws);

	/* a kept checkpoint newer than the export's own: it authenticates
	 * the tail the export could not */
	cs_ledger *l = open_ledger(path);
	checkpoint(l, 11, 13);
	cs_ledger_close(l);
	jws = stored_jws(path, 11, 13);
	rep = verify_pinned(write_lines(all, "pin-tail"), write_text(jws, "kept-11-13.jws"));
	assert_true(rep.intact);
	assert_int_equal(rep.authenticated, 13);
	assert_int_equal(rep.unsigned_entries, 0);
	free(jws);
	/* and the store itself, pinned */
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	assert_int_equal(cs_audit_pin_load(kept, jwks, &pin, why), CS_OK);
	assert_int_equal(cs_audit_verify_pinned(s, jwks, 0, &pin, &rep), CS_OK);
	assert_true(rep.intact);
	assert_true(rep.pinned);
	assert_int_equal(rep.authenticated, 13);
	assert_int_equal(rep.checkpoints, 3); /* the kept one is one of them: counted once */
	cs_audit_pin_free(&pin);
	cs_store_close(s);
	json_decref(bare);
	json_decref(all);
}

/* ---- the clock ----------------------------------------------------------------------- */

/* A checkpoint over first..last signed with the time ts. */
static void checkpoint_at(const char *path, int64_t first, int64_t last, const char *ts)
{
	cs_store *s = NULL;
	uint8_t head[32];
	int found = 0;
	char *jws = NULL;
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	assert_int_equal(cs_store_audit_hash_at(s, last, head, &found), CS_OK);
	assert_true(found);
	assert_int_equal(sign_checkpoint(NULL, first, last, head, ts, "test-1", "periodic", &jws), CS_OK);
	assert_int_equal(cs_store_checkpoint_insert(s, first, last, head, ts, "test-1", "periodic", jws), CS_OK);
	free(jws);
	cs_store_close(s);
}

/* ---- each kind of tampering an export verification refuses ------------------------- */

/* A checkpoint object as the export writes it, first..last over the
 * store's entries at path, its head_hash entry head_seq's hash, kind,
 * signed by key with header (NULL: alg, typ, kid). */
static json_t *checkpoint_object(const char *path, int64_t first, int64_t last, int64_t head_seq,
				 const char *kind, const json_t *header)
{
	cs_store *s = NULL;
	uint8_t head[32];
	int found = 0;
	char *jws = NULL;
	const char *ts = "2026-01-01T00:00:00.000Z";
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	assert_int_equal(cs_store_audit_hash_at(s, head_seq, head, &found), CS_OK);
	cs_store_close(s);
	assert_true(found);
	if (header == NULL) {
		assert_int_equal(sign_checkpoint(NULL, first, last, head, ts, "test-1", kind, &jws), CS_OK);
	} else {
		char *h = cs_b64url_encode(head, 32);
		json_t *claims = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s}", "first_seq", (json_int_t)first,
					   "last_seq", (json_int_t)last, "head_hash", h, "time", ts, "node", "test-1",
					   "kind", kind);
		assert_int_equal(cs_jws_es256_sign(header, claims, ts_soft_sign, key, &jws), CS_OK);
		json_decref(claims);
		free(h);
	}
	json_t *o = cs_audit_checkpoint_json(first, last, head, ts, "test-1", kind, jws);
	assert_non_null(o);
	free(jws);
	return o;
}

/* Verify objects written as an export: refused, at bad_seq, saying says. */
static void assert_export_refused(const json_t *objects, const char *name, int64_t bad_seq, const char *says)
{
	cs_audit_report rep = verify_file(write_lines(objects, name));
	assert_false(rep.intact);
	if (strstr(rep.reason, says) == NULL)
		fail_msg("%s: '%s' does not say '%s'", name, rep.reason, says);
	assert_int_equal(rep.bad_seq, bad_seq);
	assert_int_equal(rep.authenticated, 0);
}

static void test_verify_refuses_each_tampering(void **state)
{
	(void)state;
	char path[600];
	int64_t next = 0;
	thirteen(path, sizeof(path));
	json_t *all = export_of(path, 1, NULL, 0, &next), *t;
	assert_true(verify_file(write_lines(all, "tamper-none")).intact);

	/* a line that is JSON but no export object (no type) */
	t = json_deep_copy(all);
	json_array_insert_new(t, 3, json_pack("{s:i}", "seq", 4));
	assert_export_refused(t, "tamper-untyped", 0, "line 4 is not an export object");
	json_decref(t);
	/* the first entry without a seq, a later one without a field */
	t = json_deep_copy(all);
	json_object_del(json_array_get(t, 0), "seq");
	assert_export_refused(t, "tamper-no-seq", 0, "line 1: an entry without a valid seq");
	json_decref(t);
	t = json_deep_copy(all);
	json_object_del(json_array_get(t, 6), "role");
	assert_export_refused(t, "tamper-no-role", 7, "line 7: an entry without its 13 fields and two hashes");
	json_decref(t);
	t = json_deep_copy(all);
	json_object_set_new(json_array_get(t, 6), "prev_hash", json_string("not-a-hash"));
	assert_export_refused(t, "tamper-bad-prev", 7, "line 7: an entry without its 13 fields");
	json_decref(t);
	/* a checkpoint without a member, an object of an unknown type */
	t = json_deep_copy(all);
	json_object_del(json_array_get(t, 13), "node");
	assert_export_refused(t, "tamper-cp-no-node", 0, "line 14: a checkpoint without its members");
	json_decref(t);
	t = json_deep_copy(all);
	json_object_set_new(json_array_get(t, 2), "type", json_string("comment"));
	assert_export_refused(t, "tamper-type", 0, "line 3: unknown type \"comment\"");
	json_decref(t);
	/* a second checkpoint over 1..5, validly signed, whose head is the
	 * hash of entry 4: two stories of one range */
	t = json_deep_copy(all);
	json_array_append_new(t, checkpoint_object(path, 1, 5, 4, "periodic", NULL));
	assert_export_refused(t, "tamper-two-stories", 1, "two different checkpoints over 1..5");
	json_decref(t);
	/* a signed header with a member besides alg, kid and typ */
	json_t *header = json_pack("{s:s, s:s, s:s, s:s}", "alg", "ES256", "typ", CS_CHECKPOINT_TYP, "kid", kid,
				   "x5u", "https://attacker.example/key");
	t = json_deep_copy(all);
	json_array_set_new(t, 13, checkpoint_object(path, 1, 5, 5, "periodic", header));
	assert_export_refused(t, "tamper-cp-header", 1, "its signed header has members besides alg, kid and typ");
	json_decref(t);
	json_decref(header);
	/* a purge checkpoint over 1..5 with entries 1..5 still in the file:
	 * they precede the chain's base */
	t = json_deep_copy(all);
	json_array_append_new(t, checkpoint_object(path, 1, 5, 5, "purge", NULL));
	assert_export_refused(t, "tamper-before-base", 1, "entry 1 precedes the chain's base (purge checkpoint ..5)");
	json_decref(t);

	/* a kept checkpoint given as an export's line: taken; with a member
	 * more, or a line of another type: refused */
	cs_audit_pin pin;
	char why[256];
	char *line = json_dumps(json_array_get(all, 14), JSON_COMPACT);
	assert_int_equal(cs_audit_pin_load(write_text(line, "kept-line.json"), jwks, &pin, why), CS_OK);
	assert_int_equal(pin.first, 6);
	assert_int_equal(pin.last, 10);
	cs_audit_pin_free(&pin);
	free(line);
	t = json_deep_copy(json_array_get(all, 14));
	json_object_set_new(t, "last_seq", json_integer(9)); /* decoded beside the JWS, not what it signs */
	line = json_dumps(t, JSON_COMPACT);
	assert_int_equal(cs_audit_pin_load(write_text(line, "kept-line-lied.json"), jwks, &pin, why), CS_E_INVALID_ARG);
	assert_non_null(strstr(why, "differ"));
	free(line);
	json_object_set_new(t, "note", json_string("x"));
	line = json_dumps(t, JSON_COMPACT);
	assert_int_equal(cs_audit_pin_load(write_text(line, "kept-line-extra.json"), jwks, &pin, why), CS_E_INVALID_ARG);
	assert_non_null(strstr(why, "not a checkpoint line of an export"));
	free(line);
	json_decref(t);
	line = json_dumps(json_array_get(all, 0), JSON_COMPACT);
	assert_int_equal(cs_audit_pin_load(write_text(line, "kept-entry.json"), jwks, &pin, why), CS_E_INVALID_ARG);
	assert_non_null(strstr(why, "not a checkpoint line of an export"));
	free(line);
	assert_int_equal(cs_audit_pin_load(write_text("{\"checkpoint\":", "kept-broken.json"), jwks, &pin, why),
			 CS_E_INVALID_ARG);
	assert_non_null(strstr(why, "not JSON"));
	char missing[700];
	snprintf(missing, sizeof(missing), "%s/no-such-file", dir);
	assert_int_equal(cs_audit_pin_load(missing, jwks, &pin, why), CS_E_IO);
	cs_audit_report rep;
	assert_int_equal(cs_audit_verify_export(missing, jwks, NULL, &rep), CS_E_IO);
	json_decref(all);

	/* a stored checkpoint whose signed time is not a time: the clock step
	 * refuses it rather than guess */
	checkpoint_at(path, 11, 13, "yesterday");
	cs_store *s = NULL;
	cs_audit_clock_step step;
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	assert_int_equal(cs_audit_largest_clock_step(s, jwks, 0, 13, &step, why), CS_E_SIGNATURE_INVALID);
	assert_non_null(strstr(why, "checkpoint 11..13: its time 'yesterday' is not RFC 3339"));
	cs_store_close(s);
}

/* ---- an export that cannot be completed --------------------------------------------- */

typedef struct {
	json_t *objects;
	size_t stop_at; /* refuse the object after this many */
} stopping;

static int collect_until(void *arg, json_t *j)
{
	stopping *s = arg;
	if (json_array_size(s->objects) == s->stop_at) {
		json_decref(j);
		return 1;
	}
	return json_array_append_new(s->objects, j) != 0;
}

/* An export never leaves a silent gap: a consumer that stops it (at an
 * entry or at a checkpoint), or an entry that cannot be JSON, fails the
 * whole export with CS_E_STORE; the times it reads are only RFC 3339 UTC
 * with milliseconds; a log without checkpoints has no newest one. */
static void test_export_fails_rather_than_skips(void **state)
{
	(void)state;
	char path[600];
	int64_t next = -1;
	thirteen(path, sizeof(path));
	cs_store *s = NULL;
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	/* 13 entries then 2 checkpoints: stopped at an entry, at a checkpoint */
	static const size_t stops[] = {0, 5, 13, 14};
	for (size_t i = 0; i < sizeof(stops) / sizeof(stops[0]); i++) {
		stopping st = {json_array(), stops[i]};
		assert_int_equal(cs_audit_export(s, 1, NULL, 0, collect_until, &st, &next), CS_E_STORE);
		assert_int_equal(json_array_size(st.objects), stops[i]);
		json_decref(st.objects);
	}
	/* from before the first entry: from the first */
	collected c = {json_array()};
	assert_int_equal(cs_audit_export(s, -5, NULL, 0, collect, &c, &next), CS_OK);
	assert_int_equal(json_array_size(c.objects), 15);
	json_decref(c.objects);
	cs_store_close(s);

	/* an entry whose actor is not UTF-8 (written by another program):
	 * the export fails, it is not left out */
	new_db(path, sizeof(path));
	cs_ledger *l = open_ledger(path);
	append(l, 2, NULL);
	cs_audit_entry e = {.node = "test-1", .actor = "caf\xe9", .role = "client", .action = "cert.read",
			    .outcome = "success"};
	assert_int_equal(cs_ledger_audit_append(l, &e), CS_OK);
	append(l, 1, NULL);
	cs_ledger_close(l);
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	c.objects = json_array();
	assert_int_equal(cs_audit_export(s, 1, NULL, 0, collect, &c, &next), CS_E_STORE);
	assert_int_equal(json_array_size(c.objects), 2); /* stopped there, and said so */
	json_decref(c.objects);
	assert_null(cs_audit_entry_json(&e, NULL, NULL));
	/* no checkpoint yet */
	char *jws = (char *)1;
	assert_int_equal(cs_audit_newest_checkpoint(s, &jws), CS_E_NOT_FOUND);
	cs_store_close(s);

	/* times: exactly RFC 3339 UTC with milliseconds */
	int64_t ms = 0;
	static const char *const bad[] = {"", "2026-01-01T00:00:00.2500Z", "2026-01-01T00:00:00.2Z0",
					  "2026-01-01T00:00:00.-50Z", "2026-01-01 00:00:00.250Z"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (cs_audit_time_parse(bad[i], &ms) != CS_E_INVALID_ARG)
			fail_msg("'%s' is taken for a time", bad[i]);
	assert_int_equal(cs_audit_time_parse(NULL, &ms), CS_E_INVALID_ARG);
	/* before the epoch, the milliseconds still count forward */
	char text[32];
	cs_audit_time_format(-1, text);
	assert_string_equal(text, "1969-12-31T23:59:59.999Z");
	assert_int_equal(cs_audit_time_parse(text, &ms), CS_OK);
	assert_int_equal(ms, -1);
}

static void test_clock_at_start(void **state)
{
	(void)state;
	char path[600], got[1024];
	int64_t t = 0, next = 0;
	cs_audit_clock c;
	cs_store *s = NULL;
	assert_int_equal(cs_audit_time_parse("2026-03-01T12:00:00.000Z", &t), CS_OK);
	new_db(path, sizeof(path));
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	assert_int_equal(cs_audit_clock_check(s, t, &c), CS_OK); /* empty: nothing to compare */
	assert_false(c.ahead || c.behind);
	cs_store_close(s);
	cs_ledger *l = open_ledger(path);
	append(l, 3, "2026-03-01T12:00:00.000Z");
	cs_ledger_close(l);
	checkpoint_at(path, 1, 3, "2026-03-01T12:00:05.000Z"); /* later than the entries: the newest time */
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	assert_int_equal(cs_audit_clock_check(s, t + 3600 * 1000, &c), CS_OK);
	assert_false(c.ahead || c.behind);
	assert_int_equal(cs_audit_clock_check(s, t + 2 * DAY_MS, &c), CS_OK);
	assert_true(c.ahead);
	assert_false(c.behind);
	assert_string_equal(c.newest, "2026-03-01T12:00:05.000Z");
	assert_string_equal(c.newest_what, "checkpoint 1..3");
	assert_int_equal(cs_audit_clock_check(s, t + 1000, &c), CS_OK); /* before the checkpoint's time */
	assert_true(c.behind);
	assert_int_equal(cs_audit_clock_check(s, t - 2500 * DAY_MS, &c), CS_OK);
	assert_true(c.behind);
	assert_false(c.ahead);
	cs_store_close(s);

	/* recorded: clock.ahead, outcome failure, both times in the object */
	cs_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.server.node_id = "test-1";
	cfg.audit.checkpoint_entries = 1000;
	cs_audit *a = NULL;
	assert_int_equal(cs_audit_open(&cfg, NULL, &a), CS_OK);
	l = open_ledger(path);
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	assert_int_equal(cs_audit_clock_check(s, t + 2500 * DAY_MS, &c), CS_OK);
	cs_store_close(s);
	assert_int_equal(cs_audit_clock_record(a, l, &c), CS_OK);
	cs_ledger_close(l);
	cs_audit_free(a);
	json_t *tail = export_of(path, 4, NULL, 0, &next);
	shape(tail, got, sizeof(got));
	assert_string_equal(got, "4 |");
	json_t *e = json_array_get(tail, 0);
	assert_string_equal(json_string_value(json_object_get(e, "action")), "clock.ahead");
	assert_string_equal(json_string_value(json_object_get(e, "outcome")), "failure");
	assert_string_equal(json_string_value(json_object_get(e, "actor")), "system");
	const char *object = json_string_value(json_object_get(e, "object"));
	assert_non_null(strstr(object, "2033-01-03T12:00:00.000Z")); /* the clock: 2500 days on */
	assert_non_null(strstr(object, "2500.0 days ahead of the log's newest time 2026-03-01T12:00:05.000Z"));
	json_decref(tail);
}

/* The reviewer's case in the store: the daemon ran with its clock 2500 days
 * ahead, signing checkpoints at that time; the purge's reference is one of
 * them. The step from the last checkpoint signed at the right time is
 * found; once purged past it (or with the reference before it), not. */
static void test_clock_step(void **state)
{
	(void)state;
	char path[600], ahead[32], why[256];
	int64_t t = 0;
	cs_audit_clock_step step;
	cs_store *s = NULL;
	assert_int_equal(cs_audit_time_parse("2026-03-01T12:00:00.000Z", &t), CS_OK);
	cs_audit_time_format(t + 2500 * DAY_MS, ahead);
	new_db(path, sizeof(path));
	cs_ledger *l = open_ledger(path);
	append(l, 4, "2026-03-01T11:00:00.000Z");
	cs_ledger_close(l);
	checkpoint_at(path, 1, 2, "2026-03-01T11:00:05.000Z");
	checkpoint_at(path, 3, 4, "2026-03-01T12:00:00.000Z");
	l = open_ledger(path);
	append(l, 4, ahead);
	cs_ledger_close(l);
	checkpoint_at(path, 5, 6, ahead);
	char later[32];
	cs_audit_time_format(t + 2500 * DAY_MS + 5000, later);
	checkpoint_at(path, 7, 8, later); /* the stop checkpoint: a step of 5 s from the one before */
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	assert_int_equal(cs_audit_largest_clock_step(s, jwks, 0, 8, &step, why), CS_OK);
	assert_true(step.found);
	assert_int_equal(step.step_ms, 2500 * DAY_MS);
	assert_int_equal(step.before_first, 3);
	assert_int_equal(step.before_last, 4);
	assert_int_equal(step.after_first, 5);
	assert_int_equal(step.after_last, 6);
	assert_string_equal(step.before_time, "2026-03-01T12:00:00.000Z");
	assert_string_equal(step.after_time, ahead);
	/* up to a reference before the step: only the hour between 1..2 and 3..4 */
	assert_int_equal(cs_audit_largest_clock_step(s, jwks, 0, 4, &step, why), CS_OK);
	assert_true(step.found);
	assert_int_equal(step.step_ms, 3595 * 1000);
	/* entries up to 4 purged: the step is before every entry kept */
	assert_int_equal(cs_audit_largest_clock_step(s, jwks, 4, 8, &step, why), CS_OK);
	assert_true(step.found);
	assert_int_equal(step.step_ms, 5000);
	/* the checkpoints of the step must verify */
	json_t *other_jwk = NULL;
	EVP_PKEY *other = EVP_EC_gen("P-256");
	assert_int_equal(cs_jwk_from_pkey(other, &other_jwk), CS_OK);
	json_t *other_jwks = json_pack("{s:[o]}", "keys", other_jwk);
	assert_int_equal(cs_audit_largest_clock_step(s, other_jwks, 0, 8, &step, why), CS_E_SIGNATURE_INVALID);
	assert_non_null(strstr(why, "bad signature"));
	json_decref(other_jwks);
	EVP_PKEY_free(other);
	cs_store_close(s);
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
	/* the checkpoint to keep (GET /api/audit/checkpoint) is the periodic
	 * one over the newest entries, not the purge one recorded after it */
	json_t *kh = NULL, *kc = NULL;
	assert_int_equal(cs_audit_newest_checkpoint(s, &jws), CS_OK);
	assert_int_equal(cs_jws_peek(jws, &kh, &kc), CS_OK);
	assert_string_equal(json_string_value(json_object_get(kc, "kind")), "periodic");
	assert_int_equal(json_integer_value(json_object_get(kc, "last_seq")), 6);
	json_decref(kh);
	json_decref(kc);
	free(jws);
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

/* ---- more refusals of the verification (issue 18, round 2) ----------------------------- */

/* A JWS of claims under header (NULL: alg, typ, kid), by the test key. */
static char *jws_of(const json_t *header, const json_t *claims)
{
	char *jws = NULL;
	json_t *h = header != NULL ? json_incref((json_t *)header)
				   : json_pack("{s:s, s:s, s:s}", "alg", "ES256", "typ", CS_CHECKPOINT_TYP, "kid", kid);
	assert_int_equal(cs_jws_es256_sign(h, claims, ts_soft_sign, key, &jws), CS_OK);
	json_decref(h);
	return jws;
}

/* The six signed members of a checkpoint line (a new object). */
static json_t *claims_of(const json_t *line)
{
	json_t *c = json_deep_copy(line);
	json_object_del(c, "type");
	json_object_del(c, "jws");
	return c;
}

/* all with its checkpoint line at idx re-signed over claims (taken) under
 * header; the members beside the JWS unchanged. */
static json_t *resigned(const json_t *all, size_t idx, json_t *claims, const json_t *header)
{
	json_t *t = json_deep_copy(all);
	char *jws = jws_of(header, claims);
	json_object_set_new(json_array_get(t, idx), "jws", json_string(jws));
	free(jws);
	json_decref(claims);
	return t;
}

static void test_verify_refuses_signed_payloads(void **state)
{
	(void)state;
	char path[600];
	int64_t next = 0;
	thirteen(path, sizeof(path));
	json_t *all = export_of(path, 1, NULL, 0, &next), *t, *c;
	const json_t *cp = json_array_get(all, 13); /* 1..5 */
	assert_int_equal(json_integer_value(json_object_get(cp, "last_seq")), 5);

	/* re-signed over its own members: still intact (the helpers are right) */
	t = resigned(all, 13, claims_of(cp), NULL);
	assert_true(verify_file(write_lines(t, "resigned-same")).intact);
	json_decref(t);

	/* a signed payload of six members, one of the wrong type or value */
	static const char *const bad_payloads[] = {
		"{\"first_seq\": \"1\"}", "{\"first_seq\": 0}", "{\"last_seq\": \"5\"}", "{\"first_seq\": 6}",
		"{\"time\": 20260101}", "{\"node\": null}", "{\"head_hash\": \"!!\"}", "{\"head_hash\": \"AAAA\"}",
		"{\"kind\": \"weekly\"}", "{\"kind\": 1}"};
	for (size_t i = 0; i < sizeof(bad_payloads) / sizeof(bad_payloads[0]); i++) {
		c = claims_of(cp);
		json_t *patch = json_loads(bad_payloads[i], 0, NULL);
		assert_non_null(patch);
		assert_int_equal(json_object_update(c, patch), 0);
		json_decref(patch);
		assert_int_equal(json_object_size(c), 6);
		t = resigned(all, 13, c, NULL);
		assert_export_refused(t, "payload-shape", 1, "its signed payload is not exactly");
		json_decref(t);
	}
	/* kind replaced by another member: six members, no kind */
	c = claims_of(cp);
	json_object_del(c, "kind");
	json_object_set_new(c, "note", json_string("periodic"));
	t = resigned(all, 13, c, NULL);
	assert_export_refused(t, "payload-no-kind", 1, "its signed payload is not exactly");
	json_decref(t);

	/* a header of another typ, one naming no kid, one naming a kid the JWKS lacks */
	json_t *h = json_pack("{s:s, s:s, s:s}", "alg", "ES256", "typ", "JWT", "kid", kid);
	t = resigned(all, 13, claims_of(cp), h);
	assert_export_refused(t, "header-typ", 1, "checkpoint 1..5: bad signature");
	json_decref(t);
	json_decref(h);
	h = json_pack("{s:s, s:s}", "alg", "ES256", "typ", CS_CHECKPOINT_TYP);
	t = resigned(all, 13, claims_of(cp), h);
	assert_export_refused(t, "header-no-kid", 1, "bad signature (no key in the JWKS for it)");
	json_decref(t);
	json_decref(h);
	h = json_pack("{s:s, s:s, s:s}", "alg", "ES256", "typ", CS_CHECKPOINT_TYP, "kid", "someone-else");
	t = resigned(all, 13, claims_of(cp), h);
	assert_export_refused(t, "header-other-kid", 1, "bad signature (no key in the JWKS for it)");
	json_decref(t);
	json_decref(h);

	/* a JWKS whose first key has no kid: skipped, the right one found */
	json_t *mixed = json_pack("{s:[{s:s}, O]}", "keys", "kty", "EC", json_array_get(json_object_get(jwks, "keys"), 0));
	cs_audit_report rep;
	assert_int_equal(cs_audit_verify_export(write_lines(all, "mixed-jwks"), mixed, NULL, &rep), CS_OK);
	assert_true(rep.intact);
	assert_int_equal(rep.authenticated, 10);
	json_decref(mixed);

	/* the members beside the JWS differing from what it signs, one at a time */
	static const char *const stored[] = {"{\"first_seq\": 2}", "{\"last_seq\": 4}", "{\"kind\": \"stop\"}",
					     "{\"node\": \"test-2\"}", "{\"time\": \"2026-01-01T00:00:00.001Z\"}"};
	for (size_t i = 0; i < sizeof(stored) / sizeof(stored[0]); i++) {
		t = json_deep_copy(all);
		json_t *patch = json_loads(stored[i], 0, NULL);
		assert_int_equal(json_object_update(json_array_get(t, 13), patch), 0);
		json_decref(patch);
		int64_t first = json_integer_value(json_object_get(json_array_get(t, 13), "first_seq"));
		assert_export_refused(t, "stored-differs", first, "stored fields differ from its signed payload");
		json_decref(t);
	}
	t = json_deep_copy(all);
	json_object_set(json_array_get(t, 13), "head_hash", json_object_get(json_array_get(t, 14), "head_hash"));
	assert_export_refused(t, "stored-head-differs", 1, "checkpoint 1..5: stored fields differ from its signed payload");
	json_decref(t);

	/* a checkpoint line lacking each member in turn, or with one of the wrong type */
	static const char *const members[] = {"first_seq", "last_seq", "head_hash", "time", "kind", "jws"};
	for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++) {
		t = json_deep_copy(all);
		json_object_del(json_array_get(t, 13), members[i]);
		assert_export_refused(t, "cp-member", 0, "line 14: a checkpoint without its members");
		json_object_set_new(json_array_get(t, 13), members[i], json_true());
		assert_export_refused(t, "cp-member-type", 0, "line 14: a checkpoint without its members");
		json_decref(t);
	}
	/* an entry without its entry_hash, or with a nullable field not text */
	t = json_deep_copy(all);
	json_object_del(json_array_get(t, 4), "entry_hash");
	assert_export_refused(t, "entry-no-hash", 5, "line 5: an entry without its 13 fields and two hashes");
	json_decref(t);
	t = json_deep_copy(all);
	json_object_set_new(json_array_get(t, 4), "project", json_integer(7));
	assert_export_refused(t, "entry-project", 5, "line 5: an entry without its 13 fields and two hashes");
	json_decref(t);

	/* blank lines between objects are skipped; a directory is no file */
	const char *file = write_lines(all, "blank-lines");
	FILE *f = fopen(file, "a");
	assert_non_null(f);
	fputs("\n  \t\r\n", f);
	fclose(f);
	rep = verify_file(file);
	assert_true(rep.intact);
	assert_int_equal(rep.entries, 13);
	assert_int_equal(cs_audit_verify_export(dir, jwks, NULL, &rep), CS_E_IO);
	json_decref(all);
}

/* A kept checkpoint: the forms of its file, and what the log must show. */
static void test_kept_checkpoint_refusals(void **state)
{
	(void)state;
	char path[600], why[256];
	int64_t next = 0;
	cs_audit_pin pin;
	cs_audit_report rep;
	thirteen(path, sizeof(path));
	json_t *all = export_of(path, 1, NULL, 0, &next), *t;
	const json_t *cp = json_array_get(all, 14); /* 6..10 */
	const char *jws = json_string_value(json_object_get(cp, "jws"));
	json_t *header = NULL;
	assert_int_equal(cs_jws_peek_header(jws, &header), CS_OK);
	json_t *claims = claims_of(cp);

	/* GET /api/audit/checkpoint's answer, whole, without header or claims,
	 * the compact JWS with blank space around it */
	json_t *answer = json_pack("{s:s, s:O, s:O}", "checkpoint", jws, "header", header, "claims", claims);
	char *text = json_dumps(answer, JSON_COMPACT);
	assert_int_equal(cs_audit_pin_load(write_text(text, "kept-answer.json"), jwks, &pin, why), CS_OK);
	assert_int_equal(pin.last, 10);
	assert_string_equal(pin.kind, "periodic");
	cs_audit_pin_free(&pin);
	free(text);
	json_object_del(answer, "header");
	text = json_dumps(answer, JSON_COMPACT);
	assert_int_equal(cs_audit_pin_load(write_text(text, "kept-answer-claims.json"), jwks, &pin, why), CS_OK);
	cs_audit_pin_free(&pin);
	free(text);
	char padded[2048];
	snprintf(padded, sizeof(padded), " \n\t%s \r\n\n", jws);
	assert_int_equal(cs_audit_pin_load(write_text(padded, "kept-padded.jws"), jwks, &pin, why), CS_OK);
	assert_int_equal(pin.first, 6);
	rep = verify_pinned(write_lines(all, "kept-all"), write_text(padded, "kept-padded.jws"));
	assert_true(rep.intact);
	cs_audit_pin_free(&pin);

	/* decoded claims or header beside the JWS that it does not sign; a
	 * member more; a checkpoint that is not text */
	json_object_set_new(answer, "claims", json_pack("{s:i}", "last_seq", 11));
	text = json_dumps(answer, JSON_COMPACT);
	assert_int_equal(cs_audit_pin_load(write_text(text, "kept-answer-lied.json"), jwks, &pin, why), CS_E_INVALID_ARG);
	assert_non_null(strstr(why, "differ from what the JWS signs"));
	free(text);
	json_object_del(answer, "claims");
	json_object_set_new(answer, "header", json_pack("{s:s}", "alg", "none"));
	text = json_dumps(answer, JSON_COMPACT);
	assert_int_equal(cs_audit_pin_load(write_text(text, "kept-answer-header.json"), jwks, &pin, why), CS_E_INVALID_ARG);
	assert_non_null(strstr(why, "differ from what the JWS signs"));
	assert_null(pin.jws);
	free(text);
	json_object_del(answer, "header");
	json_object_set_new(answer, "note", json_string("x"));
	text = json_dumps(answer, JSON_COMPACT);
	assert_int_equal(cs_audit_pin_load(write_text(text, "kept-answer-extra.json"), jwks, &pin, why), CS_E_INVALID_ARG);
	assert_non_null(strstr(why, "not the answer of GET /api/audit/checkpoint"));
	free(text);
	json_decref(answer);
	t = json_deep_copy(cp);
	json_object_set_new(t, "jws", json_integer(1));
	text = json_dumps(t, JSON_COMPACT);
	assert_int_equal(cs_audit_pin_load(write_text(text, "kept-line-jws.json"), jwks, &pin, why), CS_E_INVALID_ARG);
	assert_string_equal(why, "no checkpoint JWS in it");
	free(text);
	json_decref(t);

	/* a file of more than 64 KiB, one holding a NUL */
	char *big = malloc(70000);
	assert_non_null(big);
	memset(big, ' ', 69999);
	memcpy(big, jws, strlen(jws));
	big[69999] = '\0';
	assert_int_equal(cs_audit_pin_load(write_text(big, "kept-big.jws"), jwks, &pin, why), CS_E_IO);
	assert_non_null(strstr(why, "at most 64 KiB"));
	free(big);
	const char *nul = write_text("", "kept-nul.jws");
	FILE *f = fopen(nul, "w");
	assert_non_null(f);
	fwrite("abc\0def", 1, 7, f);
	fclose(f);
	assert_int_equal(cs_audit_pin_load(nul, jwks, &pin, why), CS_E_IO);

	/* validly signed, but its node or time too long to keep */
	char longtext[200];
	memset(longtext, 'n', sizeof(longtext) - 1);
	longtext[sizeof(longtext) - 1] = '\0';
	static const char *const too_long[] = {"node", "time"};
	for (size_t i = 0; i < 2; i++) {
		json_t *c = json_deep_copy(claims);
		json_object_set_new(c, too_long[i], json_string(longtext));
		char *j = jws_of(NULL, c);
		assert_int_equal(cs_audit_pin_load(write_text(j, "kept-long.jws"), jwks, &pin, why), CS_E_INVALID_ARG);
		assert_non_null(strstr(why, "too long"));
		assert_null(pin.jws);
		free(j);
		json_decref(c);
	}

	/* a kept checkpoint before the first entry of a partial export cannot
	 * be checked: refused, saying from where to verify */
	json_t *tail = json_array();
	for (size_t i = 7; i < 13; i++) /* entries 8..13 */
		json_array_append(tail, json_array_get(all, i));
	char *kept_first = json_dumps(json_array_get(all, 13), JSON_COMPACT); /* 1..5 */
	assert_int_equal(cs_audit_pin_load(write_text(kept_first, "kept-1-5.json"), jwks, &pin, why), CS_OK);
	assert_int_equal(cs_audit_verify_export(write_lines(tail, "partial-8"), jwks, &pin, &rep), CS_OK);
	assert_false(rep.intact);
	assert_non_null(strstr(rep.reason, "the kept checkpoint 1..5 ends before the first entry here (seq 8)"));
	assert_int_equal(rep.bad_seq, 5);
	cs_audit_pin_free(&pin);
	free(kept_first);
	json_decref(tail);

	/* a kept purge checkpoint: the base of a log purged through 5 */
	json_t *purged = json_array();
	json_t *base = checkpoint_object(path, 1, 5, 5, "purge", NULL);
	json_array_append(purged, base);
	for (size_t i = 5; i < 13; i++) /* entries 6..13 */
		json_array_append(purged, json_array_get(all, i));
	json_array_append(purged, json_array_get(all, 14)); /* 6..10 */
	const char *purged_file = write_lines(purged, "purged-5");
	text = json_dumps(base, JSON_COMPACT);
	rep = verify_pinned(purged_file, write_text(text, "kept-purge.json"));
	free(text);
	assert_true(rep.intact);
	assert_int_equal(rep.base_seq, 5);
	assert_true(rep.pinned);
	assert_string_equal(rep.pin_kind, "purge");
	assert_int_equal(rep.authenticated, 5);
	/* another purge checkpoint 1..5 (a head that is not the base's) */
	json_t *other = checkpoint_object(path, 1, 5, 4, "purge", NULL);
	text = json_dumps(other, JSON_COMPACT);
	rep = verify_pinned(purged_file, write_text(text, "kept-purge-other.json"));
	free(text);
	assert_false(rep.intact);
	assert_non_null(strstr(rep.reason, "the chain's base ..5 differs from the kept checkpoint 1..5"));
	json_decref(other);
	/* a kept purge checkpoint whose key the JWKS verifying the log lacks */
	text = json_dumps(base, JSON_COMPACT);
	assert_int_equal(cs_audit_pin_load(write_text(text, "kept-purge.json"), jwks, &pin, why), CS_OK);
	free(text);
	json_t *other_jwk = NULL;
	EVP_PKEY *other_key = EVP_EC_gen("P-256");
	assert_int_equal(cs_jwk_from_pkey(other_key, &other_jwk), CS_OK);
	json_t *other_jwks = json_pack("{s:[o]}", "keys", other_jwk);
	json_t *bare = entries_only(purged);
	assert_int_equal(cs_audit_verify_export(write_lines(bare, "purged-bare"), other_jwks, &pin, &rep), CS_OK);
	assert_false(rep.intact);
	assert_non_null(strstr(rep.reason, "the kept checkpoint 1..5: bad signature (no key in the JWKS for it)"));
	cs_audit_pin_free(&pin);
	json_decref(bare);
	json_decref(other_jwks);
	EVP_PKEY_free(other_key);
	json_decref(base);
	json_decref(purged);
	json_decref(header);
	json_decref(claims);
	json_decref(all);
}

/* Retention's time reference and the clock step over a store's checkpoints. */
static void test_time_reference_refusals(void **state)
{
	(void)state;
	char path[600], why[256], time[32];
	int64_t last = 0;
	cs_store *s = NULL;
	new_db(path, sizeof(path));
	cs_ledger *l = open_ledger(path);
	append(l, 6, "2026-03-01T11:00:00.000Z");
	cs_ledger_close(l);
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	/* no checkpoint: no reference */
	assert_int_equal(cs_audit_time_reference(s, jwks, time, &last, why), CS_E_NOT_FOUND);
	cs_store_close(s);
	/* a purge checkpoint is never the reference; the newest periodic one is */
	checkpoint_at(path, 1, 2, "2026-03-01T11:00:05.000Z");
	checkpoint_at(path, 3, 4, "2026-03-01T12:00:00.000Z");
	uint8_t head[32];
	int found = 0;
	char *jws = NULL;
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	assert_int_equal(cs_store_audit_hash_at(s, 2, head, &found), CS_OK);
	assert_int_equal(sign_checkpoint(NULL, 1, 2, head, "2026-03-09T00:00:00.000Z", "test-1", "purge", &jws), CS_OK);
	assert_int_equal(cs_store_checkpoint_insert(s, 1, 2, head, "2026-03-09T00:00:00.000Z", "test-1", "purge", jws),
			 CS_OK);
	free(jws);
	assert_int_equal(cs_audit_time_reference(s, jwks, time, &last, why), CS_OK);
	assert_string_equal(time, "2026-03-01T12:00:00.000Z");
	assert_int_equal(last, 4);
	/* the clock step skips the purge checkpoint (the purging host's clock) */
	cs_audit_clock_step step;
	assert_int_equal(cs_audit_largest_clock_step(s, jwks, 0, 4, &step, why), CS_OK);
	assert_true(step.found);
	assert_int_equal(step.step_ms, 3595 * 1000);
	assert_int_equal(step.before_first, 1);
	/* a reference that does not verify, with the reason */
	json_t *other_jwk = NULL;
	EVP_PKEY *other_key = EVP_EC_gen("P-256");
	assert_int_equal(cs_jwk_from_pkey(other_key, &other_jwk), CS_OK);
	json_t *other_jwks = json_pack("{s:[o]}", "keys", other_jwk);
	assert_int_equal(cs_audit_time_reference(s, other_jwks, time, &last, why), CS_E_SIGNATURE_INVALID);
	assert_non_null(strstr(why, "checkpoint 3..4: bad signature"));
	json_decref(other_jwks);
	EVP_PKEY_free(other_key);
	cs_store_close(s);
	/* a signed time too long to be a time: refused as the reference */
	checkpoint_at(path, 5, 6, "2026-03-01T12:00:00.000Z and some more text");
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	assert_int_equal(cs_audit_time_reference(s, jwks, time, &last, why), CS_E_SIGNATURE_INVALID);
	assert_string_equal(why, "its time is too long");
	cs_store_close(s);
}

/* The verification of a store fails (rather than report) when the store does. */
static void test_verify_store_failures(void **state)
{
	(void)state;
	char path[600];
	cs_audit_report rep;
	cs_store *s = NULL;
	thirteen(path, sizeof(path));
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	assert_int_equal(cs_audit_verify(s, jwks, 0, &rep), CS_OK);
	assert_true(rep.intact);
	assert_int_equal(rep.authenticated, 10);
	cs_store_close(s);
	static const char *const drops[] = {"DROP TABLE audit_log", "DROP TABLE audit_checkpoints"};
	for (size_t i = 0; i < 2; i++) {
		char copy[700], cmd[1500];
		snprintf(copy, sizeof(copy), "%s.drop%zu", path, i);
		snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", path, copy);
		assert_int_equal(system(cmd), 0);
		assert_int_equal(cs_store_open(copy, &s), CS_OK);
		sqlite3 *db = NULL;
		assert_int_equal(sqlite3_open(copy, &db), SQLITE_OK);
		assert_int_equal(sqlite3_exec(db, drops[i], NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(db);
		memset(&rep, 0x55, sizeof(rep));
		assert_int_not_equal(cs_audit_verify(s, jwks, 0, &rep), CS_OK);
		cs_store_close(s);
	}
}

static int setup(void **state)
{
	(void)state;
	json_t *jwk = NULL;
	if (ts_scratch_dir(dir, sizeof(dir), "audit-log-test", 0, 0700) != 0 || (key = EVP_EC_gen("P-256")) == NULL || cs_jwk_thumbprint(key, kid) != CS_OK ||
	    cs_jwk_from_pkey(key, &jwk) != CS_OK)
		return -1;
	jwks = json_pack("{s:[o]}", "keys", jwk);
	return jwks != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(key);
	json_decref(jwks);
	return ts_scratch_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_export_format),
		cmocka_unit_test(test_verify_export_whole_and_partial),
		cmocka_unit_test(test_verify_says_what_is_authenticated),
		cmocka_unit_test(test_verify_refuses_each_tampering),
		cmocka_unit_test(test_export_fails_rather_than_skips),
		cmocka_unit_test(test_clock_at_start),
		cmocka_unit_test(test_clock_step),
		cmocka_unit_test(test_purge_against_the_signed_time),
		cmocka_unit_test(test_cutoff),
		cmocka_unit_test(test_verify_refuses_signed_payloads),
		cmocka_unit_test(test_kept_checkpoint_refusals),
		cmocka_unit_test(test_time_reference_refusals),
		cmocka_unit_test(test_verify_store_failures),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
