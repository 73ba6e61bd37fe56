/* service_sign: delegated signing with the signing profiles' keys, and the
 * signature records (service.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "cs_log.h"
#include "jose.h"
#include "json_text.h"
#include "ledger.h"
#include "service_internal.h"
#include "sigformat.h"

#define SIGN_PATH "/api/sign"
#define OBJECT_MAX 255 /* an entry's object from client text is cut here (docs/audit.md) */
#define JTI_BYTES 16    /* a JWS's jti: 128 random bits from the token, base64url */
#define JTI_CHARS 22
#define CODES_MAX 160 /* " codes=..." of a grouped refusal */

/* One item on its way to the ledger: its audit entry, its record and what
 * they point to. A refused item's entry may record others refused alike
 * (grouped, see plan_entries): holder names the job whose entry records
 * the item. */
typedef struct {
	cs_audit_entry audit;
	char object[CS_SERVICE_OBJECT_BYTES];
	char error_code[48];
	char role[32];
	cs_signature_record record;
	const cs_sign_item *item; /* the request's item */
	int signed_item;          /* record is filled: the item was signed */
	char signed_sha256[65];
	char *detached;           /* jws: HEADER..SIGNATURE, the record's signature */
	uint8_t *payload;         /* jws with store_payload: the caller's payload (compact JSON) */
	int authorized;           /* the access rules allowed the item (refusals before: one group) */
	const char *group_profile; /* a refusal's group (plan_entries): the profile when in force, else "" */
	unsigned group_format;     /* and the format when known (CS_SIG_FORMAT_*), else 0 */
	size_t holder;            /* the job whose entry records this item (itself when signed) */
	size_t items;             /* a holder: how many items its entry records */
	size_t put_at;            /* a holder: its job in the ledger write */
} sign_job;

static int64_t monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* text into out, printable ASCII only, then suffix (ours, ASCII): client
 * text in an entry's object, cut ("...") so that the whole stays within
 * OBJECT_MAX bytes and suffix is kept. */
static void object_text(char out[CS_SERVICE_OBJECT_BYTES], const char *text, const char *suffix)
{
	size_t n = strlen(text), room = OBJECT_MAX - strlen(suffix);
	if (n > room) {
		memcpy(out, text, room - 3);
		memcpy(out + room - 3, "...", 4);
	} else {
		memcpy(out, text, n + 1);
	}
	cs_audit_sanitize(out);
	strcat(out, suffix);
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

/* The object of a refusal's entry recording items items: "profile=P
 * format=F" of its first item (the request's path when that names no
 * profile or format), " items=N" added when it records more than one. */
/* codes: " codes=A:N,B:M" when the entry records several error codes
 * (ours, ASCII), else "" */
static void refusal_object(sign_job *job, size_t items, const char *codes)
{
	const cs_sign_item *it = job->item;
	char object[CS_SERVICE_OBJECT_BYTES + 64], suffix[CODES_MAX + 32] = "";
	if (it->profile != NULL && it->format != NULL)
		snprintf(object, sizeof(object), "profile=%.200s format=%.100s", it->profile, it->format);
	else
		snprintf(object, sizeof(object), "%s", SIGN_PATH);
	if (items > 1)
		snprintf(suffix, sizeof(suffix), " items=%zu%s", items, codes);
	object_text(job->object, object, suffix);
}

/* The item refused (outcome refused) or failed (outcome failure) with
 * code: the caller's answer and the item's entry. */
static void item_problem(cs_service_req *rq, sign_job *job, cs_sign_result *res, cs_err err, const char *outcome,
			 const char *code, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static void item_problem(cs_service_req *rq, sign_job *job, cs_sign_result *res, cs_err err, const char *outcome,
			 const char *code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(res->problem.message, sizeof(res->problem.message), fmt, ap);
	va_end(ap);
	/* messages quote client text only through quote(): ASCII; a
	 * front end's message is already well-formed UTF-8 */
	snprintf(res->problem.code, sizeof(res->problem.code), "%s", code);
	res->err = err;
	refusal_object(job, 1, "");
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

/* The record of a JWS: the detached form HEADER..SIGNATURE (RFC 7515
 * Appendix F), never the payload: a record of a token profile is no
 * bearer token. With store_payload, the caller's payload (compact JSON),
 * not the claims as signed: without the random jti no reader of the
 * record can rebuild the JWS (a token). */
static cs_err jws_record(const char *jws, const json_t *caller_payload, int store_payload, sign_job *job)
{
	const char *dot1 = strchr(jws, '.');
	const char *dot2 = dot1 != NULL ? strchr(dot1 + 1, '.') : NULL;
	if (dot2 == NULL || strchr(dot2 + 1, '.') != NULL)
		return CS_E_INTERNAL; /* cs_sig_jws gives the compact form */
	size_t hlen = (size_t)(dot1 - jws), slen = strlen(dot2 + 1);
	if ((job->detached = malloc(hlen + 2 + slen + 1)) == NULL)
		return CS_E_NOMEM;
	memcpy(job->detached, jws, hlen);
	memcpy(job->detached + hlen, "..", 2);
	memcpy(job->detached + hlen + 2, dot2 + 1, slen + 1);
	job->record.signature = job->detached;
	if (!store_payload)
		return CS_OK;
	char *text = cs_json_text(caller_payload, JSON_COMPACT);
	if (text == NULL)
		return CS_E_NOMEM;
	size_t len = strlen(text);
	job->payload = (uint8_t *)text;
	job->record.payload = job->payload;
	job->record.payload_len = len;
	return CS_OK;
}

/* Sign an allowed item with signer: the result's format part and the
 * record's fields that depend on the format (the record holds the
 * signature, never the payload unless the profile stores it: jws the
 * detached form, dsse the sig, digest the signature). A JWS's jti is
 * jti (random, not the signature id: a record's reader, who knows the id,
 * the requester, the time and the profile, could otherwise rebuild a
 * token of a guessable payload from the detached form); it is kept
 * nowhere but in the JWS. */
static cs_err sign_item(cs_service_req *rq, const cs_config_profile *p, const cs_sign_item *it, unsigned format,
			cs_signer *signer, const char *jti, sign_job *job, cs_sign_result *res, int *reserved,
			char *why, size_t why_len)
{
	cs_signature_record *rec = &job->record;
	cs_err r = CS_OK;
	if (format == CS_SIG_FORMAT_JWS) {
		json_t *claims = NULL;
		int64_t now_s = cs_service_now_ms() / 1000;
		if (jti == NULL)
			return CS_E_INTERNAL; /* drawn for every item of format jws */
		r = cs_sig_jws_claims(p, it->payload, rq->caller->identity, jti, now_s, &claims, why, why_len);
		*reserved = r == CS_E_INVALID_ARG;
		if (r == CS_OK)
			r = cs_sig_jws(signer, p->typ, claims, &res->jws, job->signed_sha256);
		json_decref(claims);
		if (r == CS_OK)
			r = jws_record(res->jws, it->payload, p->store_payload, job);
	} else if (format == CS_SIG_FORMAT_DSSE) {
		r = cs_sig_dsse(signer, it->payload_type, it->body, it->body_len, &res->envelope, &res->signature_der,
				job->signed_sha256);
		rec->signature = res->signature_der;
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

/* The job's record and what it points to discarded (the item is not
 * signed: its signature never leaves). */
static void job_discard(sign_job *job)
{
	free(job->detached);
	free(job->payload);
	job->detached = NULL;
	job->payload = NULL;
	memset(&job->record, 0, sizeof(job->record));
	job->signed_item = 0;
}

/* Decide and sign one item (signing happens before the ledger write: the
 * token may be slow); its entry (and record) are prepared in job. id: its
 * signature id, jti: its JWS's jti (NULL unless its format is jws),
 * id_err: whether they were drawn. */
static void one_item(cs_service_req *rq, const cs_sign_item *it, const char *id, const char *jti, cs_err id_err,
		     sign_job *job, cs_sign_result *res)
{
	cs_app *app = rq->app;
	char q[72], allowed[32], why[300];
	int reserved = 0;
	job->item = it;
	snprintf(job->role, sizeof(job->role), "client");
	if (it->refused_code != NULL) {
		item_problem(rq, job, res, CS_E_INVALID_ARG, "refused", it->refused_code, "%s",
			     it->refused_message != NULL ? it->refused_message : it->refused_code);
		return;
	}
	cs_app_profile *ap = cs_app_profile_find(app, it->profile);
	if (ap == NULL) {
		quote(q, it->profile);
		item_problem(rq, job, res, CS_E_NOT_FOUND, "refused", "unknown_profile",
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
		item_problem(rq, job, res, CS_E_FORBIDDEN, "refused", d.retry_after > 0 ? "rate_limited" : "forbidden",
			     "%s", d.reason);
		return;
	}
	job->authorized = 1;
	snprintf(job->role, sizeof(job->role), "%s", d.role != NULL ? d.role : "signer");
	unsigned format = cs_sig_format_parse(it->format);
	res->format = format;
	if ((format & p->formats) == 0) {
		quote(q, it->format);
		formats_text(p->formats, allowed);
		item_problem(rq, job, res, CS_E_INVALID_ARG, "refused", "format_not_allowed",
			     "profile %s does not allow format '%s' (it allows %s)", p->name, q, allowed);
		return;
	}
	size_t size = 0;
	if (format == CS_SIG_FORMAT_DSSE) {
		if (it->payload_type == NULL || !in_list(p->payload_types, it->payload_type)) {
			quote(q, it->payload_type);
			item_problem(rq, job, res, CS_E_INVALID_ARG, "refused", "payload_type_not_allowed",
				     "profile %s does not allow payload type '%s'", p->name, q);
			return;
		}
		size = it->body_len;
	} else if (format == CS_SIG_FORMAT_JWS) {
		size = json_dumpb(it->payload, NULL, 0, JSON_COMPACT);
	}
	if (format != CS_SIG_FORMAT_DIGEST && size > (size_t)p->max_payload_bytes) {
		item_problem(rq, job, res, CS_E_TOO_LARGE, "refused", "payload_too_large",
			     "the payload is %zu bytes; profile %s allows %d (max_payload_bytes)", size, p->name,
			     p->max_payload_bytes);
		return;
	}
	cs_signer *signer = cs_signer_acquire(ap->signer);
	if (signer == NULL) {
		item_problem(rq, job, res, CS_E_NO_ACTIVE_KEY, "refused", "no_active_key",
			     "profile %s has no active signing key in force (signing resumes when a ceremony "
			     "activates one)",
			     p->name);
		return;
	}
	why[0] = '\0';
	cs_err r = id_err;
	if (r == CS_OK)
		r = sign_item(rq, p, it, format, signer, jti, job, res, &reserved, why, sizeof(why));
	if (r == CS_OK) {
		snprintf(res->signature_id, sizeof(res->signature_id), "%s", id);
		snprintf(res->kid, sizeof(res->kid), "%s", cs_signer_kid(signer));
	}
	cs_signer_free(signer);
	if (r != CS_OK) {
		cs_sign_results_free(res, 1);
		res->profile = p->name;
		res->format = format;
		job_discard(job);
		if (reserved) {
			item_problem(rq, job, res, r, "refused", "reserved_claim", "%s", why);
		} else {
			cs_log_error("signing with profile %s failed (request %s): %s", p->name, rq->request_id,
				     cs_strerror(r));
			item_problem(rq, job, res, r, "failure", failure_code(r), "signing failed: %s",
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
	object_text(job->object, object, "");
	job_entry(rq, job, "success", NULL);
}

void cs_sign_results_free(cs_sign_result *results, size_t n)
{
	for (size_t i = 0; results != NULL && i < n; i++) {
		if (results[i].jws != NULL) /* a token profile's JWS is a bearer token */
			OPENSSL_cleanse(results[i].jws, strlen(results[i].jws));
		free(results[i].jws);
		json_decref(results[i].envelope);
		free(results[i].signature);
		free(results[i].signature_der);
		memset(&results[i], 0, sizeof(results[i]));
	}
}

static void jobs_free(sign_job *jobs, size_t n)
{
	for (size_t i = 0; jobs != NULL && i < n; i++)
		job_discard(&jobs[i]);
	free(jobs);
}

/* The signature ids of the n items and the jtis of those of format jws
 * (jti_of[i]: the item's jti, NULL for the others; jtis: room for n):
 * one token RNG call. The jtis are 128 random bits each, unrelated to the
 * ids; the raw bytes are wiped. */
static cs_err draw_ids(cs_app *app, const cs_sign_item *items, size_t n, char (*ids)[CS_SERVICE_ID_CHARS + 1],
		       char (*jtis)[JTI_CHARS + 1], const char **jti_of)
{
	size_t njws = 0;
	for (size_t i = 0; i < n; i++)
		njws += cs_sig_format_parse(items[i].format) == CS_SIG_FORMAT_JWS;
	size_t len = n * CS_SERVICE_ID_BYTES + njws * JTI_BYTES;
	uint8_t *raw = malloc(len);
	if (raw == NULL)
		return CS_E_NOMEM;
	cs_err r = cs_token_random(app->token, raw, len);
	const uint8_t *next = raw + n * CS_SERVICE_ID_BYTES;
	for (size_t i = 0; r == CS_OK && i < n; i++) {
		r = cs_service_id_from_raw(raw + i * CS_SERVICE_ID_BYTES, ids[i]);
		if (r != CS_OK || cs_sig_format_parse(items[i].format) != CS_SIG_FORMAT_JWS)
			continue;
		char *jti = cs_b64url_encode(next, JTI_BYTES);
		next += JTI_BYTES;
		if (jti == NULL || strlen(jti) != JTI_CHARS) {
			r = jti == NULL ? CS_E_NOMEM : CS_E_INTERNAL;
		} else {
			memcpy(jtis[i], jti, JTI_CHARS + 1);
			jti_of[i] = jtis[i];
		}
		if (jti != NULL)
			OPENSSL_cleanse(jti, strlen(jti));
		free(jti);
	}
	OPENSSL_cleanse(raw, len);
	free(raw);
	return r;
}

/* A refused item's group: its profile when that is in force (else ""),
 * its format when jws, dsse or digest (else 0): client text that names
 * nothing configured does not make groups. Items refused before or by the
 * access rules (malformed, unknown profile, no grant, rate limit) are one
 * group whatever their codes: what a caller may not do at all costs one
 * entry per request, like any refused request; the groups of allowed
 * items are bounded by the caller's grants. */
static void refusal_group(cs_app *app, sign_job *job)
{
	cs_app_profile *ap = job->authorized ? cs_app_profile_find(app, job->item->profile) : NULL;
	job->group_profile = ap != NULL ? ap->cfg->name : "";
	job->group_format = job->authorized ? cs_sig_format_parse(job->item->format) : 0;
}

static int same_refusal(const sign_job *a, const sign_job *b)
{
	if (!a->authorized && !b->authorized)
		return 1; /* all refused before or by the access rules: outcome refused */
	return a->authorized == b->authorized && strcmp(a->audit.outcome, b->audit.outcome) == 0 &&
	       a->audit.error_code != NULL &&
	       b->audit.error_code != NULL && strcmp(a->audit.error_code, b->audit.error_code) == 0 &&
	       strcmp(a->group_profile, b->group_profile) == 0 && a->group_format == b->group_format;
}

/* The error codes of the items an unauthorized group's entry (leader)
 * records, with their counts, into codes as " codes=A:N,B:M" in the order
 * first seen; "" when they share one code (the entry's error_code says
 * it). Codes are ours (a handful), never client text. */
static void refusal_codes(const sign_job *jobs, const size_t *idx, size_t m, size_t leader, char codes[CODES_MAX])
{
	const char *names[8];
	size_t counts[8], n = 0;
	for (size_t k = 0; k < m; k++) {
		const sign_job *job = &jobs[idx[k]];
		if (job->signed_item || job->holder != leader || job->audit.error_code == NULL)
			continue;
		size_t c = 0;
		while (c < n && strcmp(names[c], job->audit.error_code) != 0)
			c++;
		if (c == n && n < 8) {
			names[n] = job->audit.error_code;
			counts[n++] = 0;
		}
		if (c < n)
			counts[c]++;
	}
	codes[0] = '\0';
	if (n < 2)
		return;
	size_t used = (size_t)snprintf(codes, CODES_MAX, " codes=");
	for (size_t c = 0; c < n && used < CODES_MAX; c++)
		used += (size_t)snprintf(codes + used, CODES_MAX - used, "%s%s:%zu", c > 0 ? "," : "", names[c], counts[c]);
}

/* The entries to write for the jobs idx[0..m) into put[] (returns how
 * many): a signed item's own; for the items not signed, one per group of
 * outcome, error code, profile (when in force) and format (when known),
 * the group's first item's, its object saying how many items it records
 * (" items=N" when N > 1): refusals do not flood the log, and each
 * profile's refusals are recorded under that profile. Entries in the
 * order of their first item. leaders: scratch of m. */
static size_t plan_entries(cs_app *app, sign_job *jobs, const size_t *idx, size_t m, cs_ledger_sign_job *put,
			   size_t *leaders)
{
	size_t np = 0, nl = 0;
	for (size_t k = 0; k < m; k++) {
		size_t i = idx[k];
		sign_job *job = &jobs[i];
		job->holder = i;
		if (!job->signed_item) {
			refusal_group(app, job);
			size_t l = 0;
			while (l < nl && !same_refusal(&jobs[leaders[l]], job))
				l++;
			if (l < nl) {
				job->holder = leaders[l];
				jobs[leaders[l]].items++;
				continue;
			}
			leaders[nl++] = i;
		}
		job->items = 1;
		job->put_at = np;
		put[np++] =
			(cs_ledger_sign_job){.record = job->signed_item ? &job->record : NULL, .audit = &job->audit};
	}
	for (size_t l = 0; l < nl; l++) {
		char codes[CODES_MAX] = "";
		if (jobs[leaders[l]].items <= 1)
			continue;
		if (!jobs[leaders[l]].authorized)
			refusal_codes(jobs, idx, m, leaders[l], codes);
		refusal_object(&jobs[leaders[l]], jobs[leaders[l]].items, codes);
	}
	return np;
}

/* A signed item whose key was compromised between its signing and the
 * write: the signature discarded, the item refused (no_active_key). */
static void key_compromised(cs_service_req *rq, sign_job *job, cs_sign_result *res)
{
	const char *profile = res->profile;
	unsigned format = res->format;
	char kid[sizeof(res->kid)];
	memcpy(kid, res->kid, sizeof(kid));
	cs_sign_results_free(res, 1);
	res->profile = profile;
	res->format = format;
	job_discard(job);
	item_problem(rq, job, res, CS_E_NO_ACTIVE_KEY, "refused", "no_active_key",
		     "key %s of profile %s was compromised while this item was signed: its signature is "
		     "discarded (signing resumes when a ceremony activates a key)",
		     kid, profile != NULL ? profile : "?");
}

/* After a committed write of the entries of idx[0..m) (plan_entries): each
 * item answered by its entry's result. A signed item whose key was
 * compromised meanwhile (CS_E_NO_ACTIVE_KEY: nothing of it written) is
 * refused and listed in again[] (returns how many) for a write of its
 * refusal; again NULL (that write: its caller logs a failure) or any other
 * failure: its entry is not durable, the item answers audit_unavailable
 * (no signature, no refusal leaves). */
static size_t settle(cs_service_req *rq, sign_job *jobs, cs_sign_result *results, const size_t *idx, size_t m,
		     const cs_ledger_sign_job *put, size_t *again)
{
	cs_app *app = rq->app;
	size_t na = 0;
	for (size_t k = 0; k < m; k++) {
		size_t i = idx[k];
		sign_job *holder = &jobs[jobs[i].holder];
		cs_sign_result *res = &results[i];
		cs_err w = put[holder->put_at].result;
		if (w == CS_OK) {
			res->seq = holder->audit.seq;
			if (jobs[i].holder == i)
				cs_audit_committed(app->audit, app->ledger, &holder->audit);
			if (res->err == CS_OK)
				cs_log_info("signed id=%s profile=%s format=%s identity=%s", res->signature_id,
					    res->profile, cs_sig_format_name(res->format), rq->caller->identity);
			continue;
		}
		if (again != NULL && jobs[i].signed_item && w == CS_E_NO_ACTIVE_KEY) {
			key_compromised(rq, &jobs[i], res); /* the ledger said why */
			again[na++] = i;
			continue;
		}
		if (jobs[i].holder == i && again != NULL) /* the second write's caller logs its failure */
			cs_log_error("request %s: the entry of item %zu (%zu item(s)) not written: %s", rq->request_id,
				     i, holder->items, cs_strerror(w));
		const char *profile = res->profile;
		unsigned format = res->format;
		cs_sign_results_free(res, 1);
		res->profile = profile;
		res->format = format;
		res->err = w;
		snprintf(res->problem.code, sizeof(res->problem.code), "audit_unavailable");
		snprintf(res->problem.message, sizeof(res->problem.message), "the audit log cannot record this item");
	}
	return na;
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
	char(*jtis)[JTI_CHARS + 1] = calloc(n, sizeof(*jtis));
	const char **jti_of = calloc(n, sizeof(*jti_of));
	size_t *idx = calloc(3 * n, sizeof(*idx)); /* the items, scratch, the items written again */
	if (jobs == NULL || put == NULL || ids == NULL || jtis == NULL || jti_of == NULL || idx == NULL) {
		free(jobs);
		free(put);
		free(ids);
		free(jtis);
		free(jti_of);
		free(idx);
		return cs_service_fail(rq, CS_E_NOMEM, "internal_error", "out of memory");
	}
	size_t *leaders = idx + n, *again = idx + 2 * n;
	cs_err id_err = draw_ids(app, items, n, ids, jtis, jti_of);
	if (id_err != CS_OK)
		cs_log_error("signature ids: the token's random generator failed: %s", cs_strerror(id_err));
	for (size_t i = 0; i < n; i++) {
		one_item(rq, &items[i], ids[i], jti_of[i], id_err, &jobs[i], &results[i]);
		idx[i] = i;
	}
	OPENSSL_cleanse(jtis, n * sizeof(*jtis)); /* kept nowhere but in the JWSs */
	free(jtis);
	free(jti_of);
	/* every entry and record in one transaction; nothing leaves unless it
	 * committed */
	rq->audited = 1;
	size_t np = plan_entries(app, jobs, idx, n, put, leaders);
	r = cs_ledger_signatures_put(app->ledger, put, np);
	if (r != CS_OK) {
		cs_log_error("request %s: %zu signing entries not written: %s", rq->request_id, np, cs_strerror(r));
		rq->audit_failed = 1;
		cs_sign_results_free(results, n);
		cs_service_fail(rq, r, "audit_unavailable", "the audit log cannot record this request");
	} else {
		size_t na = settle(rq, jobs, results, idx, n, put, again);
		if (na > 0) { /* the refusals of the items whose key was compromised meanwhile */
			np = plan_entries(app, jobs, again, na, put, leaders);
			cs_err w = cs_ledger_signatures_put(app->ledger, put, np);
			if (w != CS_OK)
				cs_log_error("request %s: the refusals of %zu item(s) whose key was compromised "
					     "meanwhile not written: %s",
					     rq->request_id, na, cs_strerror(w));
			(void)settle(rq, jobs, results, again, na, put, NULL);
		}
	}
	jobs_free(jobs, n);
	free(put);
	free(ids);
	free(idx);
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
	snprintf(rr->profile, sizeof(rr->profile), "%s", rec->profile != NULL ? rec->profile : "");
	rr->doc = cs_service_signature_json(rec);
	rr->failed = rr->doc == NULL;
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
