/*
 * store_pg_records: the PostgreSQL backend's records (store.h): ceremonies
 * and their approvals, key rollovers, certificate revocations, the
 * signatures of the signing profiles, the audit log and its checkpoints.
 * The connection, transactions, the schema and the other tables are
 * store_pg.c's; this file reaches the database through
 * store_pg_internal.h only.
 *
 * The SQL is the SQLite backend's (store_sqlite.c), with the same
 * semantics and orderings, except:
 *  - an insert whose conflict is an outcome of the contract is written
 *    ON CONFLICT DO NOTHING (an error would abort the whole transaction):
 *    no row inserted is CS_E_CONFLICT. An insert that must never conflict
 *    (an audit entry, a checkpoint: their seq is fixed under the write
 *    lock) is CS_E_STORE when it does, logged;
 *  - where SQLite ordered by rowid, the identity column id orders; the
 *    ceremonies, whose key is their text id, tie on created_at by id;
 *  - text compares and sorts byte by byte (COLLATE "C"), as SQLite does,
 *    whatever the database's collation;
 *  - reads that may return many rows (the audit log, the checkpoints) are
 *    fetched in pages of PAGE_ROWS inside one snapshot: what one SQLite
 *    statement saw, without holding the whole log in memory, and a
 *    callback that stops ends the reading;
 *  - the purge is credsign.audit_purge (its delete trigger lets only rows
 *    a purge checkpoint covers go).
 * A hash of the wrong size is, as in SQLite, a zero hash in audit_each and
 * the checkpoint rows (audit verify then reports the break) and an error
 * elsewhere.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_log.h"
#include "store_pg_internal.h"

/* Rows fetched at once by the paged reads. */
#define PAGE_ROWS 512

#define CEREMONY_COLUMNS                                                                                   \
	"id, action, subject, reason, params_json, nonce, node, created_at, expires_at, started_by, "         \
	"canonical, state, executed_at, executed_by, result_json"
#define CEREMONY_NCOLS 15
/* reason, executed_at, executed_by, result_json may be NULL */
#define CEREMONY_OPTIONAL ((1u << 3) | (1u << 12) | (1u << 13) | (1u << 14))
#define APPROVAL_NCOLS 8
/* The text columns of a signature, in cs_signature_record's order, then
 * payload and audit_seq. */
#define SIG_COLUMNS                                                                                        \
	"id, profile, format, requester, requester_cert_sha256, created_at, signed_sha256, kid, signature, "  \
	"signature_der, payload_type, payload, audit_seq"
#define SIG_NTEXT 11
/* signature_der, payload_type may be NULL */
#define SIG_OPTIONAL ((1u << 9) | (1u << 10))
#define AUDIT_COLUMNS                                                                                      \
	"seq, ts, node, actor, actor_cert_sha256, role, action, object, project, environment, outcome, "      \
	"error_code, request_id, prev_hash, entry_hash"
/* actor_cert_sha256, object, project, environment, error_code, request_id
 * may be NULL (bits by column, 1..12) */
#define AUDIT_OPTIONAL ((1u << 4) | (1u << 7) | (1u << 8) | (1u << 9) | (1u << 11) | (1u << 12))
#define CP_COLUMNS "first_seq, last_seq, head_hash, ts, node, kind, jws, id"

/* ---- the statements -------------------------------------------------------------- */

static const char SQL_CEREMONY_GET[] = "SELECT " CEREMONY_COLUMNS " FROM ceremonies WHERE id = $1";
static const char SQL_APPROVALS[] = "SELECT ceremony_id, officer, fingerprint, cert_pem, sig_alg, signature_b64, "
				    "approved_at, approved_by FROM ceremony_approvals WHERE ceremony_id = $1 "
				    "ORDER BY id";
static const char SQL_CEREMONIES_EACH[] = "SELECT " CEREMONY_COLUMNS " FROM ceremonies "
					  "ORDER BY created_at COLLATE \"C\" DESC, id COLLATE \"C\" DESC";
static const char SQL_CEREMONY_INSERT[] =
	"INSERT INTO ceremonies (id, action, subject, reason, params_json, nonce, node, created_at, expires_at, "
	"started_by, canonical) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING";
/* either unique key, (ceremony_id, fingerprint) or (ceremony_id, officer) */
static const char SQL_APPROVAL_INSERT[] =
	"INSERT INTO ceremony_approvals (ceremony_id, officer, fingerprint, cert_pem, sig_alg, signature_b64, "
	"approved_at, approved_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING";
static const char SQL_CEREMONY_CLOSE[] = "UPDATE ceremonies SET state = 'executed', executed_at = $1, "
					 "executed_by = $2, result_json = $3 WHERE id = $4 AND state = 'open'";
static const char SQL_ROLLOVERS_EACH[] = "SELECT ceremony_id, old_kid, new_kid, statement_json, created_at "
					 "FROM key_rollovers ORDER BY id";
static const char SQL_ROLLOVER_INSERT[] =
	"INSERT INTO key_rollovers (ceremony_id, old_kid, new_kid, statement_json, created_at) "
	"VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";
static const char SQL_REVOCATIONS_EACH[] = "SELECT cert_id, reason, revoked_at, revoked_by, ceremony_id "
					   "FROM cert_revocations "
					   "ORDER BY revoked_at COLLATE \"C\", cert_id COLLATE \"C\"";
static const char SQL_REVOCATION_GET[] = "SELECT cert_id, reason, revoked_at, revoked_by, ceremony_id "
					 "FROM cert_revocations WHERE cert_id = $1";
/* a primary-key lookup and the largest id (polled every second) */
static const char SQL_REVOCATIONS_VERSION[] =
	"SELECT (SELECT value FROM store_meta WHERE name = 'revocations_count'), "
	"(SELECT coalesce(max(id), 0) FROM cert_revocations)";
static const char SQL_REVOCATION_INSERT[] =
	"INSERT INTO cert_revocations (cert_id, reason, revoked_at, revoked_by, ceremony_id) "
	"VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";
/* through the index on (profile, kid) */
static const char SQL_SIG_OTHER_KEY[] = "SELECT 1 FROM signatures WHERE profile = $1 AND kid <> $2 LIMIT 1";
/* the id or the audit_seq recorded already: nothing inserted */
static const char SQL_SIG_INSERT[] =
	"INSERT INTO signatures (id, profile, format, requester, requester_cert_sha256, created_at, signed_sha256, "
	"kid, signature, signature_der, payload_type, payload, audit_seq) "
	"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT DO NOTHING";
static const char SQL_SIG_GET[] = "SELECT " SIG_COLUMNS " FROM signatures WHERE id = $1";
/* through the index on (signed_sha256, audit_seq) */
static const char SQL_SIGS_BY_SHA256[] = "SELECT " SIG_COLUMNS " FROM signatures WHERE signed_sha256 = $1 "
					 "ORDER BY audit_seq DESC LIMIT $2";
/* one lookup of the index on (profile, kid, format) per format, in
 * cs_store_key_formats_signed's order */
static const char SQL_KEY_FORMATS[] =
	"SELECT "
	"EXISTS (SELECT 1 FROM signatures WHERE profile = $1 AND kid = $2 AND format = 'digest')::int, "
	"EXISTS (SELECT 1 FROM signatures WHERE profile = $1 AND kid = $2 AND format = 'dsse')::int, "
	"EXISTS (SELECT 1 FROM signatures WHERE profile = $1 AND kid = $2 AND format = 'jws')::int";
static const char SQL_AUDIT_LAST[] = PG_AUDIT_HEAD;
static const char SQL_AUDIT_INSERT[] =
	"INSERT INTO audit_log (" AUDIT_COLUMNS ") "
	"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";
static const char SQL_AUDIT_HASH_AT[] = "SELECT entry_hash FROM audit_log WHERE seq = $1";
static const char SQL_AUDIT_FIRST[] = "SELECT coalesce(min(seq), 0) FROM audit_log";
static const char SQL_AUDIT_PURGE[] = "SELECT credsign.audit_purge($1)";
static const char SQL_TS_ORDERED[] = "SELECT value FROM store_meta WHERE name = 'audit_ts_ordered_from_seq'";
static const char SQL_AUDIT_EACH[] = "SELECT " AUDIT_COLUMNS " FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2";
static const char SQL_PURGE_BOUNDARY[] = "SELECT (SELECT min(seq) FROM audit_log), seq, entry_hash FROM audit_log "
					 "WHERE ts < $1 COLLATE \"C\" ORDER BY seq DESC LIMIT 1";
static const char SQL_CP_INSERT[] = "INSERT INTO audit_checkpoints (first_seq, last_seq, head_hash, ts, node, kind, "
				    "jws) VALUES ($1, $2, $3, $4, $5, $6, $7)";
static const char SQL_CHECKPOINTED[] = "SELECT coalesce(max(last_seq), 0) FROM audit_checkpoints";
static const char SQL_PURGE_BASE[] = "SELECT last_seq, head_hash FROM audit_checkpoints WHERE kind = 'purge' "
				     "ORDER BY last_seq DESC LIMIT 1";
static const char SQL_CP_LATEST[] = "SELECT jws FROM audit_checkpoints ORDER BY id DESC LIMIT 1";
static const char SQL_CP_EACH[] = "SELECT " CP_COLUMNS " FROM audit_checkpoints WHERE id > $1 ORDER BY id LIMIT $2";
/* through the index on last_seq; a page goes on after the last row read */
static const char SQL_CP_RANGE[] = "SELECT " CP_COLUMNS " FROM audit_checkpoints "
				   "WHERE last_seq BETWEEN $1 AND $2 AND (last_seq, id) > ($3, $4) "
				   "ORDER BY last_seq, id LIMIT $5";

/* ---- helpers ------------------------------------------------------------------------ */

/* An insert whose conflict is the contract's: nothing inserted is
 * CS_E_CONFLICT (unlogged: the caller decides). */
static cs_err insert_once(pg_store *s, const char *what, const char *sql, int n, const char *const *params)
{
	int64_t affected = 0;
	cs_err r = pg_exec(s, what, sql, n, params, &affected);
	return r == CS_OK && affected == 0 ? CS_E_CONFLICT : r;
}

/* An insert that never conflicts unless the store is damaged (its key is
 * fixed under the write lock): a conflict is CS_E_STORE, logged. */
static cs_err append_row(pg_store *s, const char *what, const char *sql, int n, const char *const *params)
{
	cs_err r = pg_exec(s, what, sql, n, params, NULL);
	if (r == CS_E_CONFLICT) {
		cs_log_error("store: %s: the row is recorded already", what);
		r = CS_E_STORE;
	}
	return r;
}

/* A query of at most one row: CS_OK with *res holding it, or
 * CS_E_NOT_FOUND (*res NULL) when there is none. */
static cs_err one_row(pg_store *s, const char *what, const char *sql, int n, const char *const *params,
		      PGresult **res)
{
	cs_err r = pg_query(s, what, sql, n, params, res);
	if (r == CS_OK && PQntuples(*res) < 1) {
		PQclear(*res);
		*res = NULL;
		r = CS_E_NOT_FOUND;
	}
	return r;
}

/* A query answering one integer (never NULL) in one row. */
static cs_err one_int(pg_store *s, const char *what, const char *sql, int n, const char *const *params,
		      int64_t *out)
{
	PGresult *res = NULL;
	cs_err r = one_row(s, what, sql, n, params, &res);
	if (r == CS_E_NOT_FOUND) {
		cs_log_error("store: %s: no row", what);
		r = CS_E_STORE;
	}
	if (r == CS_OK)
		r = pg_int(res, 0, 0, out);
	PQclear(res);
	return r;
}

/* Whether a query finds a row: CS_OK or CS_E_NOT_FOUND. */
static cs_err exists(pg_store *s, const char *what, const char *sql, int n, const char *const *params)
{
	PGresult *res = NULL;
	cs_err r = one_row(s, what, sql, n, params, &res);
	PQclear(res);
	return r;
}

/* n text columns of a row from column first into f; bit i of optional:
 * column first + i may be NULL. */
static cs_err row_texts(PGresult *res, int row, int first, int n, uint32_t optional, const char **f)
{
	cs_err r = CS_OK;
	for (int i = 0; r == CS_OK && i < n; i++)
		r = pg_text(res, row, first + i, (int)((optional >> i) & 1u), &f[i]);
	return r;
}

/* A hash column as audit_each and the checkpoint rows read it: one of
 * another size (or NULL) is a zero hash, which breaks the chain where
 * audit verify looks (*exact 0). CS_E_NOMEM only when it cannot be
 * decoded. */
static cs_err hash_or_zero(PGresult *res, int row, int col, uint8_t out[32], int *exact)
{
	unsigned char *b = NULL;
	size_t len = 0;
	memset(out, 0, 32);
	*exact = 0;
	cs_err r = pg_bytea(res, row, col, &b, &len);
	if (r == CS_OK && b != NULL && len == 32) {
		memcpy(out, b, 32);
		*exact = 1;
	}
	free(b);
	return r;
}

/* ---- ceremonies ---------------------------------------------------------------------- */

static cs_err ceremony_row(PGresult *res, int row, cs_ceremony_fn fn, void *arg)
{
	const char *f[CEREMONY_NCOLS] = {NULL};
	cs_err r = row_texts(res, row, 0, CEREMONY_NCOLS, CEREMONY_OPTIONAL, f);
	if (r != CS_OK || fn == NULL)
		return r;
	cs_ceremony_record c = {.id = f[0], .action = f[1], .subject = f[2], .reason = f[3], .params_json = f[4],
				.nonce = f[5], .node = f[6], .created_at = f[7], .expires_at = f[8],
				.started_by = f[9], .canonical = f[10], .state = f[11], .executed_at = f[12],
				.executed_by = f[13], .result_json = f[14]};
	fn(arg, &c);
	return CS_OK;
}

static cs_err approval_rows(PGresult *res, cs_approval_fn afn, void *arg)
{
	cs_err r = CS_OK;
	for (int i = 0; r == CS_OK && i < PQntuples(res); i++) {
		const char *f[APPROVAL_NCOLS] = {NULL};
		if ((r = row_texts(res, i, 0, APPROVAL_NCOLS, 0, f)) != CS_OK)
			break;
		cs_approval_record a = {.ceremony_id = f[0], .officer = f[1], .fingerprint = f[2],
					.cert_pem = f[3], .sig_alg = f[4], .signature_b64 = f[5],
					.approved_at = f[6], .approved_by = f[7]};
		afn(arg, &a);
	}
	return r;
}

static cs_err pg_ceremony_get(cs_store *store, const char *id, cs_ceremony_fn fn, cs_approval_fn afn, void *arg)
{
	pg_store *s = (pg_store *)store;
	PGresult *res = NULL;
	const char *const p[] = {id};
	int began = 0;
	if (id == NULL)
		return CS_E_INVALID_ARG;
	cs_err r = pg_snapshot_begin(s, &began);
	if (r == CS_OK && (r = one_row(s, "reading a ceremony", SQL_CEREMONY_GET, 1, p, &res)) == CS_OK)
		r = ceremony_row(res, 0, fn, arg);
	PQclear(res);
	res = NULL;
	if (r == CS_OK && afn != NULL &&
	    (r = pg_query(s, "reading a ceremony's approvals", SQL_APPROVALS, 1, p, &res)) == CS_OK)
		r = approval_rows(res, afn, arg);
	PQclear(res);
	pg_snapshot_end(s, began);
	return r;
}

static cs_err pg_ceremonies_each(cs_store *store, cs_ceremony_fn fn, void *arg)
{
	pg_store *s = (pg_store *)store;
	PGresult *res = NULL;
	cs_err r = pg_query(s, "listing ceremonies", SQL_CEREMONIES_EACH, 0, NULL, &res);
	for (int i = 0; r == CS_OK && i < PQntuples(res); i++)
		r = ceremony_row(res, i, fn, arg);
	PQclear(res);
	return r;
}

static cs_err pg_ceremony_insert(cs_store *store, const cs_ceremony_record *c)
{
	pg_store *s = (pg_store *)store;
	const char *const p[] = {c->id,		 c->action,	c->subject,    c->reason,
				 c->params_json, c->nonce,	c->node,       c->created_at,
				 c->expires_at,	 c->started_by, c->canonical};
	return insert_once(s, "recording the ceremony", SQL_CEREMONY_INSERT, 11, p);
}

static cs_err pg_approval_insert(cs_store *store, const cs_approval_record *a)
{
	pg_store *s = (pg_store *)store;
	const char *const p[] = {a->ceremony_id, a->officer,	   a->fingerprint, a->cert_pem,
				 a->sig_alg,	 a->signature_b64, a->approved_at, a->approved_by};
	return insert_once(s, "recording the approval", SQL_APPROVAL_INSERT, 8, p);
}

static cs_err pg_ceremony_close(cs_store *store, const char *id, const char *at, const char *by,
				const char *result_json)
{
	pg_store *s = (pg_store *)store;
	const char *const p[] = {at, by, result_json, id};
	int64_t affected = 0;
	cs_err r = pg_exec(s, "marking the ceremony executed", SQL_CEREMONY_CLOSE, 4, p, &affected);
	return r == CS_OK && affected != 1 ? CS_E_CEREMONY_CLOSED : r;
}

/* ---- rollovers ------------------------------------------------------------------------ */

static cs_err pg_rollovers_each(cs_store *store, cs_rollover_fn fn, void *arg)
{
	pg_store *s = (pg_store *)store;
	PGresult *res = NULL;
	cs_err r = pg_query(s, "listing rollovers", SQL_ROLLOVERS_EACH, 0, NULL, &res);
	for (int i = 0; r == CS_OK && i < PQntuples(res); i++) {
		const char *f[5] = {NULL};
		if ((r = row_texts(res, i, 0, 5, 1u << 1, f)) != CS_OK)
			break;
		cs_rollover_record ro = {.ceremony_id = f[0], .old_kid = f[1], .new_kid = f[2],
					 .statement_json = f[3], .created_at = f[4]};
		if (fn != NULL)
			fn(arg, &ro);
	}
	PQclear(res);
	return r;
}

static cs_err pg_rollover_insert(cs_store *store, const cs_rollover_record *ro)
{
	pg_store *s = (pg_store *)store;
	const char *const p[] = {ro->ceremony_id, ro->old_kid, ro->new_kid, ro->statement_json, ro->created_at};
	return insert_once(s, "recording the rollover", SQL_ROLLOVER_INSERT, 5, p);
}

/* ---- revocations ----------------------------------------------------------------------- */

static cs_err revocation_row(PGresult *res, int row, cs_revocation_fn fn, void *arg)
{
	const char *f[5] = {NULL};
	cs_err r = row_texts(res, row, 0, 5, 1u << 4, f);
	if (r != CS_OK || fn == NULL)
		return r;
	cs_revocation_record rv = {.cert_id = f[0], .reason = f[1], .revoked_at = f[2], .revoked_by = f[3],
				   .ceremony_id = f[4]};
	fn(arg, &rv);
	return CS_OK;
}

static cs_err pg_revocations_each(cs_store *store, cs_revocation_fn fn, void *arg)
{
	pg_store *s = (pg_store *)store;
	PGresult *res = NULL;
	cs_err r = pg_query(s, "listing revocations", SQL_REVOCATIONS_EACH, 0, NULL, &res);
	for (int i = 0; r == CS_OK && i < PQntuples(res); i++)
		r = revocation_row(res, i, fn, arg);
	PQclear(res);
	return r;
}

static cs_err pg_revocation_get(cs_store *store, const char *cert_id, cs_revocation_fn fn, void *arg)
{
	pg_store *s = (pg_store *)store;
	PGresult *res = NULL;
	const char *const p[] = {cert_id};
	if (cert_id == NULL)
		return CS_E_INVALID_ARG;
	cs_err r = one_row(s, "reading a revocation", SQL_REVOCATION_GET, 1, p, &res);
	if (r == CS_OK)
		r = revocation_row(res, 0, fn, arg);
	PQclear(res);
	return r;
}

static cs_err pg_revocations_version(cs_store *store, int64_t *count, int64_t *last_rowid)
{
	pg_store *s = (pg_store *)store;
	PGresult *res = NULL;
	*count = *last_rowid = 0;
	cs_err r = one_row(s, "reading the revocations' version", SQL_REVOCATIONS_VERSION, 0, NULL, &res);
	if (r == CS_E_NOT_FOUND) {
		cs_log_error("store: reading the revocations' version: no row");
		r = CS_E_STORE;
	} else if (r == CS_OK && PQgetisnull(res, 0, 0)) {
		cs_log_error("store: the revocations' count is missing from store_meta");
		r = CS_E_STORE;
	} else if (r == CS_OK && (r = pg_int(res, 0, 0, count)) == CS_OK) {
		r = pg_int(res, 0, 1, last_rowid);
	}
	PQclear(res);
	return r;
}

static cs_err pg_revocation_insert(cs_store *store, const cs_revocation_record *rv)
{
	pg_store *s = (pg_store *)store;
	const char *const p[] = {rv->cert_id, rv->reason, rv->revoked_at, rv->revoked_by, rv->ceremony_id};
	return insert_once(s, "recording the revocation", SQL_REVOCATION_INSERT, 5, p);
}

/* ---- signatures of the signing profiles ---------------------------------------------- */

static cs_err pg_signature_by_other_key(cs_store *store, const char *profile, const char *kid)
{
	pg_store *s = (pg_store *)store;
	const char *const p[] = {profile, kid};
	return exists(s, "reading the signatures", SQL_SIG_OTHER_KEY, 2, p);
}

static cs_err pg_signature_insert(cs_store *store, const cs_signature_record *g)
{
	pg_store *s = (pg_store *)store;
	char seq[24];
	/* a payload of no bytes is stored (empty), NULL is not; libpq takes
	 * a binary parameter's length as an int */
	static const char empty[1];
	if (g->payload != NULL && g->payload_len > (size_t)INT32_MAX) {
		cs_log_error("store: recording the signature: a payload of %zu bytes is too large", g->payload_len);
		return CS_E_TOO_LARGE;
	}
	const char *payload = g->payload == NULL ? NULL : g->payload_len == 0 ? empty : (const char *)g->payload;
	const char *const p[SIG_NTEXT + 2] = {g->id,	     g->profile,	  g->format,	  g->requester,
					      g->requester_cert_sha256, g->created_at, g->signed_sha256,
					      g->kid,	     g->signature,	  g->signature_der, g->payload_type,
					      payload,	     pg_i64(seq, g->audit_seq)};
	int lengths[SIG_NTEXT + 2] = {0}, formats[SIG_NTEXT + 2] = {0};
	lengths[SIG_NTEXT] = (int)g->payload_len;
	formats[SIG_NTEXT] = 1;
	PGresult *res = NULL;
	cs_err r = pg_query_bin(s, "recording the signature", SQL_SIG_INSERT, SIG_NTEXT + 2, p, lengths, formats,
				&res);
	if (r == CS_OK && strcmp(PQcmdTuples(res), "0") == 0)
		r = CS_E_CONFLICT; /* the id or the audit_seq is recorded */
	PQclear(res);
	return r;
}

/* The signature of a row (SIG_COLUMNS) to fn: *stop gets fn's answer. */
static cs_err signature_row(PGresult *res, int row, cs_signature_row_fn fn, void *arg, int *stop)
{
	const char *f[SIG_NTEXT] = {NULL};
	unsigned char *payload = NULL;
	size_t len = 0;
	int64_t seq = 0;
	*stop = 0;
	cs_err r = row_texts(res, row, 0, SIG_NTEXT, SIG_OPTIONAL, f);
	if (r == CS_OK)
		r = pg_int(res, row, SIG_NTEXT + 1, &seq);
	if (r == CS_OK)
		r = pg_bytea(res, row, SIG_NTEXT, &payload, &len);
	if (r != CS_OK)
		return r;
	cs_signature_record g = {.id = f[0], .profile = f[1], .format = f[2], .requester = f[3],
				 .requester_cert_sha256 = f[4], .created_at = f[5], .signed_sha256 = f[6],
				 .kid = f[7], .signature = f[8], .signature_der = f[9], .payload_type = f[10],
				 .payload = payload, .payload_len = len, .audit_seq = seq};
	/* an empty payload stored is not one not stored: pg_bytea gives a
	 * buffer (of no bytes) for it, NULL only for SQL NULL */
	if (fn != NULL)
		*stop = fn(arg, &g);
	free(payload);
	return CS_OK;
}

typedef struct {
	cs_signature_fn fn;
	void *arg;
} one_signature;

static int call_one(void *arg, const cs_signature_record *r)
{
	one_signature *o = arg;
	if (o->fn != NULL)
		o->fn(o->arg, r);
	return 1;
}

static cs_err pg_signature_get(cs_store *store, const char *id, cs_signature_fn fn, void *arg)
{
	pg_store *s = (pg_store *)store;
	PGresult *res = NULL;
	const char *const p[] = {id};
	one_signature o = {fn, arg};
	int stop = 0;
	if (id == NULL)
		return CS_E_INVALID_ARG;
	cs_err r = one_row(s, "reading a signature", SQL_SIG_GET, 1, p, &res);
	if (r == CS_OK)
		r = signature_row(res, 0, call_one, &o, &stop);
	PQclear(res);
	return r;
}

static cs_err pg_signatures_by_sha256(cs_store *store, const char *sha256_hex, int64_t limit,
				      cs_signature_row_fn fn, void *arg)
{
	pg_store *s = (pg_store *)store;
	PGresult *res = NULL;
	char lim[24];
	int stop = 0;
	if (limit < 1 || sha256_hex == NULL)
		return CS_E_INVALID_ARG;
	const char *const p[] = {sha256_hex, pg_i64(lim, limit)};
	cs_err r = pg_query(s, "reading the signatures of a digest", SQL_SIGS_BY_SHA256, 2, p, &res);
	for (int i = 0; r == CS_OK && !stop && i < PQntuples(res); i++)
		r = signature_row(res, i, fn, arg, &stop);
	PQclear(res);
	return r;
}

static cs_err pg_key_formats_signed(cs_store *store, const char *profile, const char *kid,
				    const char *formats[CS_STORE_SIG_FORMATS + 1])
{
	pg_store *s = (pg_store *)store;
	static const char *const names[CS_STORE_SIG_FORMATS] = {"digest", "dsse", "jws"};
	PGresult *res = NULL;
	formats[0] = NULL;
	if (profile == NULL || kid == NULL)
		return CS_OK; /* a certificate key signs no records */
	const char *const p[] = {profile, kid};
	cs_err r = one_row(s, "reading the formats a key signed", SQL_KEY_FORMATS, 2, p, &res);
	if (r == CS_E_NOT_FOUND) {
		cs_log_error("store: reading the formats a key signed: no row");
		r = CS_E_STORE;
	}
	size_t n = 0;
	for (int i = 0; r == CS_OK && i < CS_STORE_SIG_FORMATS; i++) {
		int64_t v = 0;
		if ((r = pg_int(res, 0, i, &v)) == CS_OK && v != 0)
			formats[n++] = names[i];
	}
	formats[r == CS_OK ? n : 0] = NULL;
	PQclear(res);
	return r;
}

/* ---- audit log ---------------------------------------------------------------------------- */

static cs_err pg_audit_last(cs_store *store, int64_t *seq, uint8_t hash[32], char ts[32])
{
	pg_store *s = (pg_store *)store;
	PGresult *res = NULL;
	const char *t = NULL;
	ts[0] = '\0';
	/* the head the write lock's round trip read, else a query */
	cs_err r = CS_OK;
	if ((res = pg_head_take(s)) != NULL && PQntuples(res) < 1) {
		PQclear(res);
		res = NULL;
		r = CS_E_NOT_FOUND;
	} else if (res == NULL) {
		r = one_row(s, "reading the audit head", SQL_AUDIT_LAST, 0, NULL, &res);
	}
	if (r == CS_OK && (r = pg_int(res, 0, 0, seq)) == CS_OK && (r = pg_hash(res, 0, 1, hash)) == CS_OK &&
	    (r = pg_text(res, 0, 2, 0, &t)) == CS_OK && snprintf(ts, 32, "%s", t) >= 32) {
		cs_log_error("store: the newest audit entry's time '%.40s...' is too long", t);
		ts[0] = '\0';
		r = CS_E_STORE;
	}
	PQclear(res);
	return r;
}

static cs_err pg_audit_insert(cs_store *store, const cs_audit_entry *e, const uint8_t prev[32],
			      const uint8_t hash[32])
{
	pg_store *s = (pg_store *)store;
	char seq[24], ph[67], eh[67];
	pg_head_drop(s); /* the head moves */
	const char *const p[15] = {pg_i64(seq, e->seq), e->ts, e->node, e->actor, e->actor_cert_sha256,
				   e->role, e->action, e->object, e->project, e->environment, e->outcome,
				   e->error_code, e->request_id, pg_hash_param(ph, prev), pg_hash_param(eh, hash)};
	return append_row(s, "appending to the audit log", SQL_AUDIT_INSERT, 15, p);
}

static cs_err pg_audit_hash_at(cs_store *store, int64_t seq, uint8_t hash[32], int *found)
{
	pg_store *s = (pg_store *)store;
	PGresult *res = NULL;
	char b[24];
	const char *const p[] = {pg_i64(b, seq)};
	*found = 0;
	cs_err r = one_row(s, "reading the audit log", SQL_AUDIT_HASH_AT, 1, p, &res);
	/* as in SQLite: an entry whose hash is not one is not found */
	if (r == CS_OK)
		r = hash_or_zero(res, 0, 0, hash, found);
	PQclear(res);
	return r == CS_E_NOT_FOUND ? CS_OK : r;
}

static cs_err pg_audit_first(cs_store *store, int64_t *first)
{
	return one_int((pg_store *)store, "reading the audit log", SQL_AUDIT_FIRST, 0, NULL, first);
}

static cs_err pg_audit_delete_through(cs_store *store, int64_t seq)
{
	pg_store *s = (pg_store *)store;
	char b[24];
	const char *const p[] = {pg_i64(b, seq)};
	int64_t deleted = 0;
	pg_head_drop(s); /* the head may go */
	/* a function's rows are no statement's: count them here */
	cs_err r = one_int(s, "purging the audit log", SQL_AUDIT_PURGE, 1, p, &deleted);
	if (r == CS_OK)
		s->changes += deleted;
	return r;
}

static cs_err pg_audit_ts_ordered_from(cs_store *store, int64_t *seq)
{
	pg_store *s = (pg_store *)store;
	PGresult *res = NULL;
	*seq = 1; /* no record: hold every entry to the ordering */
	cs_err r = one_row(s, "reading the store's metadata", SQL_TS_ORDERED, 0, NULL, &res);
	if (r == CS_OK)
		r = pg_int(res, 0, 0, seq);
	PQclear(res);
	return r == CS_E_NOT_FOUND ? CS_OK : r;
}

/* One entry of a page to fn: *stop gets its answer. */
static cs_err audit_row(PGresult *res, int row, cs_audit_row_fn fn, void *arg, int64_t *seq, int *stop)
{
	const char *f[13] = {NULL};
	uint8_t prev[32], hash[32];
	int exact = 0;
	cs_err r = pg_int(res, row, 0, seq);
	if (r == CS_OK)
		r = row_texts(res, row, 1, 12, AUDIT_OPTIONAL >> 1, &f[1]);
	if (r == CS_OK && (r = hash_or_zero(res, row, 13, prev, &exact)) == CS_OK)
		r = hash_or_zero(res, row, 14, hash, &exact);
	if (r != CS_OK)
		return r;
	cs_audit_entry e = {.seq = *seq, .ts = f[1], .node = f[2], .actor = f[3], .actor_cert_sha256 = f[4],
			    .role = f[5], .action = f[6], .object = f[7], .project = f[8],
			    .environment = f[9], .outcome = f[10], .error_code = f[11], .request_id = f[12]};
	*stop = fn(arg, &e, prev, hash);
	return CS_OK;
}

static cs_err pg_audit_each(cs_store *store, int64_t from_seq, int64_t limit, cs_audit_row_fn fn, void *arg)
{
	pg_store *s = (pg_store *)store;
	int began = 0, stop = 0;
	int64_t read = 0;
	if (fn == NULL)
		return CS_E_INVALID_ARG;
	cs_err r = pg_snapshot_begin(s, &began); /* the pages of one moment */
	while (r == CS_OK && !stop) {
		int64_t page = limit > 0 && limit - read < PAGE_ROWS ? limit - read : PAGE_ROWS;
		char b0[24], b1[24];
		const char *const p[] = {pg_i64(b0, from_seq), pg_i64(b1, page)};
		PGresult *res = NULL;
		if (page <= 0 || (r = pg_query(s, "reading the audit log", SQL_AUDIT_EACH, 2, p, &res)) != CS_OK)
			break;
		int n = PQntuples(res);
		for (int i = 0; r == CS_OK && !stop && i < n; i++) {
			int64_t seq = 0;
			if ((r = audit_row(res, i, fn, arg, &seq, &stop)) == CS_OK) {
				read++;
				from_seq = seq + 1;
			}
		}
		PQclear(res);
		if (n < page)
			break;
	}
	pg_snapshot_end(s, began);
	return r;
}

static cs_err pg_audit_purge_boundary(cs_store *store, const char *cutoff, int64_t *first, int64_t *boundary,
				      uint8_t hash[32])
{
	pg_store *s = (pg_store *)store;
	PGresult *res = NULL;
	const char *const p[] = {cutoff};
	*first = *boundary = 0;
	if (cutoff == NULL)
		return CS_E_INVALID_ARG;
	cs_err r = one_row(s, "finding the retention boundary", SQL_PURGE_BOUNDARY, 1, p, &res);
	int64_t f = 0, b = 0;
	if (r == CS_OK && (r = pg_int(res, 0, 0, &f)) == CS_OK && (r = pg_int(res, 0, 1, &b)) == CS_OK &&
	    (r = pg_hash(res, 0, 2, hash)) == CS_OK) {
		*first = f;
		*boundary = b;
	}
	PQclear(res);
	return r == CS_E_NOT_FOUND ? CS_OK : r;
}

/* ---- audit checkpoints ------------------------------------------------------------------ */

static cs_err pg_checkpoint_insert(cs_store *store, int64_t first, int64_t last, const uint8_t hash[32],
				   const char *ts, const char *node, const char *kind, const char *jws)
{
	pg_store *s = (pg_store *)store;
	char b0[24], b1[24], h[67];
	const char *const p[] = {pg_i64(b0, first), pg_i64(b1, last), pg_hash_param(h, hash), ts, node, kind, jws};
	return append_row(s, "storing the audit checkpoint", SQL_CP_INSERT, 7, p);
}

static cs_err pg_checkpointed(cs_store *store, int64_t *covered)
{
	return one_int((pg_store *)store, "reading checkpoints", SQL_CHECKPOINTED, 0, NULL, covered);
}

static cs_err pg_purge_base(cs_store *store, int64_t *seq, uint8_t hash[32])
{
	pg_store *s = (pg_store *)store;
	PGresult *res = NULL;
	int64_t last = 0;
	cs_err r = one_row(s, "reading the audit chain base", SQL_PURGE_BASE, 0, NULL, &res);
	if (r == CS_OK && (r = pg_int(res, 0, 0, &last)) == CS_OK && (r = pg_hash(res, 0, 1, hash)) == CS_OK)
		*seq = last;
	PQclear(res);
	return r;
}

static cs_err pg_checkpoint_latest(cs_store *store, char **jws)
{
	pg_store *s = (pg_store *)store;
	PGresult *res = NULL;
	*jws = NULL;
	cs_err r = one_row(s, "reading checkpoints", SQL_CP_LATEST, 0, NULL, &res);
	if (r == CS_OK)
		r = pg_dup(res, 0, 0, jws);
	PQclear(res);
	return r;
}

/* Where a paged checkpoint read goes on: after the row last read. */
typedef struct {
	int64_t last_seq, id;
} cp_cursor;

/* The rows of a page of checkpoints (CP_COLUMNS) to fn until it returns
 * non-zero (*stop); *at gets the last row read. */
static cs_err checkpoint_rows(PGresult *res, cs_checkpoint_row_fn fn, void *arg, cp_cursor *at, int *stop)
{
	cs_err r = CS_OK;
	for (int i = 0; r == CS_OK && !*stop && i < PQntuples(res); i++) {
		const char *f[4] = {NULL};
		int64_t first = 0, last = 0, id = 0;
		uint8_t h[32];
		int exact = 0;
		if ((r = pg_int(res, i, 0, &first)) != CS_OK || (r = pg_int(res, i, 1, &last)) != CS_OK ||
		    (r = pg_int(res, i, 7, &id)) != CS_OK || (r = hash_or_zero(res, i, 2, h, &exact)) != CS_OK ||
		    (r = row_texts(res, i, 3, 4, 0, f)) != CS_OK)
			break;
		at->last_seq = last;
		at->id = id;
		*stop = fn(arg, first, last, h, f[0], f[1], f[2], f[3]);
	}
	return r;
}

static cs_err pg_checkpoints_each(cs_store *store, cs_checkpoint_row_fn fn, void *arg)
{
	pg_store *s = (pg_store *)store;
	cp_cursor at = {0, 0};
	int began = 0, stop = 0;
	if (fn == NULL)
		return CS_E_INVALID_ARG;
	cs_err r = pg_snapshot_begin(s, &began);
	while (r == CS_OK && !stop) {
		char b0[24], b1[24];
		const char *const p[] = {pg_i64(b0, at.id), pg_i64(b1, PAGE_ROWS)};
		PGresult *res = NULL;
		if ((r = pg_query(s, "reading checkpoints", SQL_CP_EACH, 2, p, &res)) != CS_OK)
			break;
		int n = PQntuples(res);
		r = checkpoint_rows(res, fn, arg, &at, &stop);
		PQclear(res);
		if (n < PAGE_ROWS)
			break;
	}
	pg_snapshot_end(s, began);
	return r;
}

static cs_err pg_checkpoints_range(cs_store *store, int64_t min_last, int64_t max_last, cs_checkpoint_row_fn fn,
				   void *arg)
{
	pg_store *s = (pg_store *)store;
	/* before every row of the range: ids start at 1 */
	cp_cursor at = {min_last, 0};
	int began = 0, stop = 0;
	if (fn == NULL)
		return CS_E_INVALID_ARG;
	if (min_last > max_last)
		return CS_OK;
	cs_err r = pg_snapshot_begin(s, &began);
	while (r == CS_OK && !stop) {
		char b0[24], b1[24], b2[24], b3[24], b4[24];
		const char *const p[] = {pg_i64(b0, min_last), pg_i64(b1, max_last), pg_i64(b2, at.last_seq),
					 pg_i64(b3, at.id), pg_i64(b4, PAGE_ROWS)};
		PGresult *res = NULL;
		if ((r = pg_query(s, "reading checkpoints", SQL_CP_RANGE, 5, p, &res)) != CS_OK)
			break;
		int n = PQntuples(res);
		r = checkpoint_rows(res, fn, arg, &at, &stop);
		PQclear(res);
		if (n < PAGE_ROWS)
			break;
	}
	pg_snapshot_end(s, began);
	return r;
}

/* ---- the ops ---------------------------------------------------------------------------- */

void pg_records_ops(cs_store_ops *ops)
{
	ops->ceremony_get = pg_ceremony_get;
	ops->ceremonies_each = pg_ceremonies_each;
	ops->ceremony_insert = pg_ceremony_insert;
	ops->approval_insert = pg_approval_insert;
	ops->ceremony_close = pg_ceremony_close;
	ops->rollovers_each = pg_rollovers_each;
	ops->rollover_insert = pg_rollover_insert;
	ops->revocations_each = pg_revocations_each;
	ops->revocation_get = pg_revocation_get;
	ops->revocations_version = pg_revocations_version;
	ops->revocation_insert = pg_revocation_insert;
	ops->signature_by_other_key = pg_signature_by_other_key;
	ops->signature_insert = pg_signature_insert;
	ops->signature_get = pg_signature_get;
	ops->signatures_by_sha256 = pg_signatures_by_sha256;
	ops->key_formats_signed = pg_key_formats_signed;
	ops->audit_last = pg_audit_last;
	ops->audit_insert = pg_audit_insert;
	ops->audit_hash_at = pg_audit_hash_at;
	ops->audit_first = pg_audit_first;
	ops->audit_delete_through = pg_audit_delete_through;
	ops->audit_ts_ordered_from = pg_audit_ts_ordered_from;
	ops->audit_each = pg_audit_each;
	ops->audit_purge_boundary = pg_audit_purge_boundary;
	ops->checkpoint_insert = pg_checkpoint_insert;
	ops->checkpointed = pg_checkpointed;
	ops->purge_base = pg_purge_base;
	ops->checkpoint_latest = pg_checkpoint_latest;
	ops->checkpoints_each = pg_checkpoints_each;
	ops->checkpoints_range = pg_checkpoints_range;
}
