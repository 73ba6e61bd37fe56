/* service_sign: delegated signing with the signing profiles' keys, and the
 * signature records (service.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cs_log.h"
#include "jose.h"
#include "ledger.h"
#include "service_internal.h"
#include "sigformat.h"

#define SIGN_PATH "/api/sign"
#define OBJECT_MAX 255 /* an entry's object from client text is cut here (docs/audit.md) */

/* One item on its way to the ledger: its audit entry, its record and what
 * they point to. */
typedef struct {
	cs_audit_entry audit;
	char object[CS_SERVICE_OBJECT_BYTES];
	char error_code[48];
	char role[32];
	cs_signature_record record;
	int signed_item;          /* record is filled: the item was signed */
	char signed_sha256[65];
	char *envelope_text;      /* dsse: the envelope as recorded */
	char *payload_text;       /* jws with store_payload: the payload as signed (compact JSON) */
} sign_job;

static int64_t monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* text into out (OBJECT_MAX bytes at most, "..." when cut), printable
 * ASCII only: client text in an entry's object. */
static void object_text(char out[CS_SERVICE_OBJECT_BYTES], const char *text)
{
	size_t n = strlen(text);
	if (n > OBJECT_MAX) {
		memcpy(out, text, OBJECT_MAX - 3);
		memcpy(out + OBJECT_MAX - 3, "...", 4);
	} else {
		memcpy(out, text, n + 1);
	}
	cs_audit_sanitize(out);
}

/* Client text quoted in a message: at most 64 bytes, printable ASCII. */
static void quote(char out[72], const char *text)
{
	snprintf(out, 72, "%.64s%s", text != NULL ? text : "", text != NULL && strlen(text) > 64 ? "..." : "");
	cs_audit_sanitize(out);
}

static void job_entry(cs_service_req *rq, sign_job *job, const char *outcome, const char *code)
{
	cs_audit_entry *e = &job->audit;
	memset(e, 0, sizeof(*e));
	e->actor = rq->caller->identity;
	e->actor_cert_sha256 = rq->caller->cert_sha256;
	e->role = job->role;
	e->action = "sign";
	e->object = job->object;
	e->outcome = outcome;
	if (code != NULL) {
		snprintf(job->error_code, sizeof(job->error_code), "%s", code);
		e->error_code = job->error_code;
	}
	e->request_id = rq->request_id[0] ? rq->request_id : NULL;
	cs_audit_complete(rq->app->audit, e);
}

/* The item refused (outcome refused) or failed (outcome failure) with
 * code: the caller's answer and the item's entry. */
static void item_problem(cs_service_req *rq, const cs_sign_item *it, sign_job *job, cs_sign_result *res,
			 cs_err err, const char *outcome, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 8, 9)));
static void item_problem(cs_service_req *rq, const cs_sign_item *it, sign_job *job, cs_sign_result *res,
			 cs_err err, const char *outcome, const char *code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(res->problem.message, sizeof(res->problem.message), fmt, ap);
	va_end(ap);
	/* messages quote client text only through quote(): ASCII; a
	 * front end's message is already well-formed UTF-8 */
	snprintf(res->problem.code, sizeof(res->problem.code), "%s", code);
	res->err = err;
	char object[CS_SERVICE_OBJECT_BYTES + 64];
	if (it->profile != NULL && it->format != NULL)
		snprintf(object, sizeof(object), "profile=%.200s format=%.100s", it->profile, it->format);
	else
		snprintf(object, sizeof(object), "%s", SIGN_PATH);
	object_text(job->object, object);
	job_entry(rq, job, outcome, code);
}

/* A failure's code for the caller (the statuses api.c gives them). */
static const char *failure_code(cs_err r)
{
	switch (r) {
	case CS_E_SIGNATURE_INVALID: return "signature_invalid";
	case CS_E_NO_ACTIVE_KEY: return "no_active_key";
	case CS_E_TOKEN_NO_RNG: return "token_has_no_rng";
	default: break;
	}
	switch (cs_err_category_of(r)) {
	case CS_CAT_TOKEN: return "token_unavailable";
	case CS_CAT_STORE: return "store_unavailable";
	default: return "internal_error";
	}
}

static int in_list(char *const *list, const char *value)
{
	for (size_t i = 0; list != NULL && list[i] != NULL; i++)
		if (strcmp(list[i], value) == 0)
			return 1;
	return 0;
}

static void formats_text(unsigned formats, char out[32])
{
	out[0] = '\0';
	for (unsigned f = CS_SIG_FORMAT_JWS; f <= CS_SIG_FORMAT_DIGEST; f <<= 1)
		if (formats & f)
			snprintf(out + strlen(out), 32 - strlen(out), "%s%s", out[0] ? ", " : "", cs_sig_format_name(f));
}

/* Sign an allowed item with signer: the result's format part and the
 * record's fields that depend on the format. */
static cs_err sign_item(cs_service_req *rq, const cs_config_profile *p, const cs_sign_item *it, unsigned format,
			cs_signer *signer, const char *id, sign_job *job, cs_sign_result *res, int *reserved,
			char *why, size_t why_len)
{
	cs_signature_record *rec = &job->record;
	cs_err r = CS_OK;
	if (format == CS_SIG_FORMAT_JWS) {
		json_t *claims = NULL;
		int64_t now_s = cs_service_now_ms() / 1000;
		r = cs_sig_jws_claims(p, it->payload, rq->caller->identity, id, now_s, &claims, why, why_len);
		*reserved = r == CS_E_INVALID_ARG;
		if (r == CS_OK)
			r = cs_sig_jws(signer, p->typ, claims, &res->jws, job->signed_sha256);
		json_decref(claims);
		if (r == CS_OK && p->store_payload &&
		    (job->payload_text = json_dumps(it->payload, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL)
			r = CS_E_NOMEM;
		rec->signature = res->jws;
		if (job->payload_text != NULL) {
			rec->payload = (const unsigned char *)job->payload_text;
			rec->payload_len = strlen(job->payload_text);
		}
	} else if (format == CS_SIG_FORMAT_DSSE) {
		r = cs_sig_dsse(signer, it->payload_type, it->body, it->body_len, &res->envelope, &res->signature_der,
				job->signed_sha256);
		if (r == CS_OK && (job->envelope_text = json_dumps(res->envelope, JSON_COMPACT | JSON_PRESERVE_ORDER)) ==
					  NULL)
			r = CS_E_NOMEM;
		rec->signature = job->envelope_text;
		rec->signature_der = res->signature_der;
		rec->payload_type = it->payload_type;
		if (p->store_payload) {
			rec->payload = it->body;
			rec->payload_len = it->body_len;
		}
	} else {
		r = cs_sig_digest(signer, it->digest, &res->signature, &res->signature_der);
		cs_sig_hex(it->digest, 32, job->signed_sha256);
		rec->signature = res->signature;
		rec->signature_der = res->signature_der;
	}
	return r;
}

/* Decide and sign one item (signing happens before the ledger write: the
 * token may be slow); its entry (and record) are prepared in job. */
static void one_item(cs_service_req *rq, const cs_sign_item *it, const char *id, cs_err id_err, sign_job *job,
		     cs_sign_result *res)
{
	cs_app *app = rq->app;
	char q[72], allowed[32], why[300];
	int reserved = 0;
	snprintf(job->role, sizeof(job->role), "client");
	if (it->refused_code != NULL) {
		item_problem(rq, it, job, res, CS_E_INVALID_ARG, "refused", it->refused_code, "%s",
			     it->refused_message != NULL ? it->refused_message : it->refused_code);
		return;
	}
	cs_app_profile *ap = cs_app_profile_find(app, it->profile);
	if (ap == NULL) {
		quote(q, it->profile);
		item_problem(rq, it, job, res, CS_E_NOT_FOUND, "refused", "unknown_profile",
			     "unknown signing profile '%s' (signing.profiles)", q);
		return;
	}
	const cs_config_profile *p = ap->cfg;
	res->profile = p->name;
	cs_access_scope scope = {.profile = p->name};
	cs_access_decision d;
	cs_access_decide(rq->access, rq->caller->identity, CS_ACTION_SIGN, &scope, 1, monotonic_ms(), &d);
	if (!d.allowed) {
		res->retry_after = d.retry_after;
		item_problem(rq, it, job, res, CS_E_FORBIDDEN, "refused", d.retry_after > 0 ? "rate_limited" : "forbidden",
			     "%s", d.reason);
		return;
	}
	snprintf(job->role, sizeof(job->role), "%s", d.role != NULL ? d.role : "signer");
	unsigned format = cs_sig_format_parse(it->format);
	res->format = format;
	if ((format & p->formats) == 0) {
		quote(q, it->format);
		formats_text(p->formats, allowed);
		item_problem(rq, it, job, res, CS_E_INVALID_ARG, "refused", "format_not_allowed",
			     "profile %s does not allow format '%s' (it allows %s)", p->name, q, allowed);
		return;
	}
	size_t size = 0;
	if (format == CS_SIG_FORMAT_DSSE) {
		if (it->payload_type == NULL || !in_list(p->payload_types, it->payload_type)) {
			quote(q, it->payload_type);
			item_problem(rq, it, job, res, CS_E_INVALID_ARG, "refused", "payload_type_not_allowed",
				     "profile %s does not allow payload type '%s'", p->name, q);
			return;
		}
		size = it->body_len;
	} else if (format == CS_SIG_FORMAT_JWS) {
		size = json_dumpb(it->payload, NULL, 0, JSON_COMPACT);
	}
	if (format != CS_SIG_FORMAT_DIGEST && size > (size_t)p->max_payload_bytes) {
		item_problem(rq, it, job, res, CS_E_TOO_LARGE, "refused", "payload_too_large",
			     "the payload is %zu bytes; profile %s allows %d (max_payload_bytes)", size, p->name,
			     p->max_payload_bytes);
		return;
	}
	cs_signer *signer = cs_signer_acquire(ap->signer);
	if (signer == NULL) {
		item_problem(rq, it, job, res, CS_E_NO_ACTIVE_KEY, "refused", "no_active_key",
			     "profile %s has no active signing key in force (signing resumes when a ceremony "
			     "activates one)",
			     p->name);
		return;
	}
	why[0] = '\0';
	cs_err r = id_err;
	if (r == CS_OK)
		r = sign_item(rq, p, it, format, signer, id, job, res, &reserved, why, sizeof(why));
	if (r == CS_OK) {
		snprintf(res->signature_id, sizeof(res->signature_id), "%s", id);
		snprintf(res->kid, sizeof(res->kid), "%s", cs_signer_kid(signer));
	}
	cs_signer_free(signer);
	if (r != CS_OK) {
		cs_sign_results_free(res, 1);
		res->profile = p->name;
		res->format = format;
		free(job->envelope_text);
		free(job->payload_text);
		job->envelope_text = job->payload_text = NULL;
		memset(&job->record, 0, sizeof(job->record));
		if (reserved) {
			item_problem(rq, it, job, res, r, "refused", "reserved_claim", "%s", why);
		} else {
			cs_log_error("signing with profile %s failed (request %s): %s", p->name, rq->request_id,
				     cs_strerror(r));
			item_problem(rq, it, job, res, r, "failure", failure_code(r), "signing failed: %s",
				     cs_strerror(r));
		}
		return;
	}
	cs_signature_record *rec = &job->record;
	rec->id = res->signature_id;
	rec->profile = p->name;
	rec->format = cs_sig_format_name(format);
	rec->requester = rq->caller->identity;
	rec->requester_cert_sha256 = rq->caller->cert_sha256;
	rec->signed_sha256 = job->signed_sha256;
	rec->kid = res->kid;
	job->signed_item = 1;
	char object[CS_SERVICE_OBJECT_BYTES];
	snprintf(object, sizeof(object), "%s profile=%s format=%s kid=%s sha256=%s", res->signature_id, p->name,
		 rec->format, res->kid, job->signed_sha256);
	object_text(job->object, object);
	job_entry(rq, job, "success", NULL);
}

void cs_sign_results_free(cs_sign_result *results, size_t n)
{
	for (size_t i = 0; results != NULL && i < n; i++) {
		free(results[i].jws);
		json_decref(results[i].envelope);
		free(results[i].signature);
		free(results[i].signature_der);
		memset(&results[i], 0, sizeof(results[i]));
	}
}

static void jobs_free(sign_job *jobs, size_t n)
{
	for (size_t i = 0; jobs != NULL && i < n; i++) {
		free(jobs[i].envelope_text);
		free(jobs[i].payload_text);
	}
	free(jobs);
}

/* The signature ids of n items: one token RNG call. */
static cs_err draw_ids(cs_app *app, size_t n, char (*ids)[CS_SERVICE_ID_CHARS + 1])
{
	uint8_t *raw = malloc(n * CS_SERVICE_ID_BYTES);
	if (raw == NULL)
		return CS_E_NOMEM;
	cs_err r = cs_token_random(app->token, raw, n * CS_SERVICE_ID_BYTES);
	for (size_t i = 0; r == CS_OK && i < n; i++)
		r = cs_service_id_from_raw(raw + i * CS_SERVICE_ID_BYTES, ids[i]);
	free(raw);
	return r;
}

cs_err cs_service_sign(cs_service_req *rq, const cs_sign_item *items, size_t n, cs_sign_result *results)
{
	cs_app *app = rq->app;
	memset(results, 0, n * sizeof(*results));
	if (n == 0 || n > CS_SIGN_BATCH_MAX)
		return cs_service_fail(rq, CS_E_INVALID_ARG, "invalid_field", "a request signs 1 to %d items",
				       CS_SIGN_BATCH_MAX);
	cs_err r = cs_service_admit(rq, CS_ACTION_SIGN);
	if (r != CS_OK)
		return r;
	sign_job *jobs = calloc(n, sizeof(*jobs));
	cs_ledger_sign_job *put = calloc(n, sizeof(*put));
	char(*ids)[CS_SERVICE_ID_CHARS + 1] = calloc(n, sizeof(*ids));
	if (jobs == NULL || put == NULL || ids == NULL) {
		free(jobs);
		free(put);
		free(ids);
		return cs_service_fail(rq, CS_E_NOMEM, "internal_error", "out of memory");
	}
	cs_err id_err = draw_ids(app, n, ids);
	if (id_err != CS_OK)
		cs_log_error("signature ids: the token's random generator failed: %s", cs_strerror(id_err));
	for (size_t i = 0; i < n; i++) {
		one_item(rq, &items[i], ids[i], id_err, &jobs[i], &results[i]);
		put[i].audit = &jobs[i].audit;
		put[i].record = jobs[i].signed_item ? &jobs[i].record : NULL;
	}
	/* every entry and record in one transaction; nothing leaves unless it
	 * committed */
	rq->audited = 1;
	r = cs_ledger_signatures_put(app->ledger, put, n);
	if (r != CS_OK) {
		cs_log_error("request %s: %zu signing entries not written: %s", rq->request_id, n, cs_strerror(r));
		rq->audit_failed = 1;
		cs_sign_results_free(results, n);
		cs_service_fail(rq, r, "audit_unavailable", "the audit log cannot record this request");
	} else {
		for (size_t i = 0; i < n; i++) {
			cs_sign_result *res = &results[i];
			if (put[i].result != CS_OK) {
				/* its entry is not durable: neither its signature nor its refusal leaves */
				cs_log_error("request %s: the entry of item %zu not written: %s", rq->request_id, i,
					     cs_strerror(put[i].result));
				const char *profile = res->profile;
				unsigned format = res->format;
				cs_sign_results_free(res, 1);
				res->profile = profile;
				res->format = format;
				res->err = put[i].result;
				snprintf(res->problem.code, sizeof(res->problem.code), "audit_unavailable");
				snprintf(res->problem.message, sizeof(res->problem.message),
					 "the audit log cannot record this item");
				continue;
			}
			res->seq = jobs[i].audit.seq;
			cs_audit_committed(app->audit, app->ledger, &jobs[i].audit);
			if (res->err == CS_OK)
				cs_log_info("signed id=%s profile=%s format=%s identity=%s", res->signature_id,
					    res->profile, cs_sig_format_name(res->format), rq->caller->identity);
		}
	}
	jobs_free(jobs, n);
	free(put);
	free(ids);
	return r;
}

/* ---- signature records ---------------------------------------------------------- */

typedef struct {
	json_t *doc;
	char profile[CS_CONFIG_PROFILE_NAME_MAX + 1];
	int failed;
} record_read;

static void record_row(void *arg, const cs_signature_record *rec)
{
	record_read *rr = arg;
	char *payload = rec->payload != NULL ? cs_sig_b64_encode(rec->payload, rec->payload_len) : NULL;
	snprintf(rr->profile, sizeof(rr->profile), "%s", rec->profile != NULL ? rec->profile : "");
	rr->doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s*, s:s*, s:s*, s:I}", "signature_id",
			    rec->id, "profile", rec->profile, "format", rec->format, "requester", rec->requester,
			    "created_at", rec->created_at, "signed_sha256", rec->signed_sha256, "kid", rec->kid,
			    "signature", rec->signature, "signature_der", rec->signature_der, "payload_type",
			    rec->payload_type, "payload", payload, "audit_seq", (json_int_t)rec->audit_seq);
	rr->failed = rr->doc == NULL || (rec->payload != NULL && payload == NULL);
	free(payload);
}

cs_err cs_service_signature_get(cs_service_req *rq, const char *id, json_t **record)
{
	*record = NULL;
	cs_service_set_object(rq, id);
	/* the scope is the record's profile: first whether the caller may
	 * read signature records at all */
	cs_err r = cs_service_admit(rq, CS_ACTION_SIGNATURE_READ);
	if (r != CS_OK)
		return r;
	record_read rr = {0};
	r = cs_store_signature_get(rq->store, id, record_row, &rr);
	if (r == CS_OK && rr.failed)
		r = CS_E_NOMEM;
	if (r != CS_OK) {
		json_decref(rr.doc);
		return r == CS_E_NOT_FOUND ? cs_service_fail(rq, r, "not_found", "no such signature")
					   : cs_service_fail(rq, r, NULL, "signature record");
	}
	cs_access_scope scope = {.profile = rr.profile};
	if ((r = cs_service_authorize(rq, CS_ACTION_SIGNATURE_READ, &scope)) != CS_OK) {
		json_decref(rr.doc);
		return r;
	}
	*record = rr.doc;
	return CS_OK;
}
