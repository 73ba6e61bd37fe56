/* service_generate: a credential and its generation session (service.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "cs_log.h"
#include "jose.h"
#include "json_text.h"
#include "ledger.h"
#include "service_internal.h"
#include "wipe_alloc.h"

#define SALT_BYTES 16

static cs_err token_rnd(void *ctx, uint8_t *buf, size_t n)
{
	return cs_token_random(ctx, buf, n);
}

/* The claims are signed in the certificate: a member or an element lost
 * to a failed allocation fails the request (each addition is checked; the
 * *_new calls take their value even when they fail), never a certificate
 * without it. */
static json_t *classes_json(unsigned classes)
{
	static const char *const names[] = {"upper", "lower", "digit", "special"};
	json_t *a = json_array();
	for (int i = 0; a != NULL && i < 4; i++)
		if ((classes & (1u << i)) && json_array_append_new(a, json_string(names[i])) != 0) {
			json_decref(a);
			a = NULL;
		}
	return a;
}

/* The credential claim: what was generated and how, never the value. */
static json_t *credential_claim(const cs_app *app, const cs_generate_request *g, const char *salt,
				const char *commitment)
{
	const cs_plan *p = g->plan;
	json_t *cred = json_pack("{s:s, s:i, s:f, s:s, s:{s:s, s:s, s:s}}", "type",
				 cs_type_name(p->type), "length", p->length, "entropy_bits",
				 p->entropy_bits, "entropy_method",
				 p->type == CS_TYPE_PASSPHRASE ? "uniform-words" : "whole-candidate-rejection",
				 "commitment", "alg", "HMAC-SHA-256", "salt", salt, "value", commitment);
	if (cred == NULL)
		return NULL;
	if (p->type == CS_TYPE_PASSPHRASE) {
		/* the list's stable name: its file name without directory or
		 * extension (wordlist_en_eff), never a host path */
		const char *file = app->cfg->server.wordlist_file, *slash = strrchr(file, '/');
		const char *base = slash != NULL ? slash + 1 : file, *dot = strrchr(base, '.');
		json_t *id = json_stringn(base, dot != NULL && dot != base ? (size_t)(dot - base) : strlen(base));
		if (json_object_set_new(cred, "length_unit", json_string("words")) != 0 ||
		    json_object_set_new(cred, "separator", json_string("-")) != 0 ||
		    json_object_set_new(cred, "wordlist",
					json_pack("{s:o, s:s, s:I}", "id", id, "sha256", app->wordlist->sha256,
						  "size", (json_int_t)app->wordlist->count)) != 0) {
			json_decref(cred);
			return NULL;
		}
		return cred;
	}
	/* every member of a character type is present: null when it does not apply */
	if (json_object_set_new(cred, "length_unit", json_string("characters")) != 0 ||
	    json_object_set_new(cred, "charset", json_string(p->charset)) != 0 ||
	    json_object_set_new(cred, "classes", classes_json(p->spec.classes)) != 0 ||
	    json_object_set_new(cred, "max_identical_run",
				p->spec.max_identical_run ? json_integer(p->spec.max_identical_run) : json_null()) != 0 ||
	    json_object_set_new(cred, "max_class_run",
				p->spec.max_class_run ? json_integer(p->spec.max_class_run) : json_null()) != 0 ||
	    json_object_set_new(cred, "prefix", g->prefix != NULL ? json_string(g->prefix) : json_null()) != 0) {
		json_decref(cred);
		return NULL;
	}
	return cred;
}

/* The claims known at generation time, stored with the session. */
static json_t *session_claims(json_t *entropy_source, const cs_generate_request *g, json_t *cred,
			      const cs_caller *caller, const char *session_id, const char *generated_at)
{
	json_t *standards = json_array();
	for (size_t i = 0; standards != NULL && i < g->preset->nstandards; i++)
		if (json_array_append_new(standards, json_string(g->preset->standards[i])) != 0) {
			json_decref(standards);
			standards = NULL;
		}
	return json_pack(
		"{s:s, s:i, s:s, s:o, s:i, s:o, s:O, s:{s:s, s:s}, s:s?, s:s?, s:s?, s:s, s:s}", "preset",
		g->preset->name, "preset_version", g->preset->version, "preset_sha256", g->preset->sha256,
		"standards", standards, "strength_bits", g->plan->strength_bits, "credential", cred,
		"entropy_source", entropy_source, "subject", "identity", caller->identity,
		"cert_sha256", caller->cert_sha256, "project", g->project, "environment", g->environment,
		"system", g->system, "generation_session_id", session_id, "generated_at", generated_at);
}

static cs_err commit_credential(const uint8_t salt[SALT_BYTES], const char *credential, char **value)
{
	uint8_t mac[32];
	unsigned int mac_len = 0;
	if (HMAC(EVP_sha256(), salt, SALT_BYTES, (const uint8_t *)credential, strlen(credential), mac,
		 &mac_len) == NULL || mac_len != 32)
		return CS_E_CRYPTO;
	*value = cs_b64url_encode(mac, sizeof(mac));
	return *value != NULL ? CS_OK : CS_E_NOMEM;
}

/* Random bytes a generate request draws at once: the salt, the session id
 * and generously what the credential is expected to take (rejection
 * sampling), in whole calls of the token's per-call cap; a refill (one
 * call) follows only when rejections used it all. */
static size_t generate_random_bytes(cs_app *app, const cs_generate_request *g)
{
	size_t need = SALT_BYTES + CS_SERVICE_ID_BYTES +
		      (g->plan->type == CS_TYPE_PASSPHRASE
			       ? cs_passphrase_random_bytes(app->wordlist, (size_t)g->plan->length)
			       : cs_string_random_bytes(&g->plan->spec, g->plan->entropy_bits));
	size_t call = cs_token_random_max(app->token);
	need = (need + call - 1) / call * call;
	return need < CS_RANDOM_BUFFER_MAX ? need : CS_RANDOM_BUFFER_MAX / call * call;
}

/* Draw the credential (with its api-key prefix) into out[cap]. */
static cs_err draw_credential(cs_app *app, const cs_generate_request *g, cs_random_buffer *src, char *out,
			      size_t cap)
{
	if (g->plan->type == CS_TYPE_PASSPHRASE)
		return cs_generate_passphrase_from(app->wordlist, (size_t)g->plan->length, src, out, cap);
	size_t prefix_len = g->prefix != NULL ? strlen(g->prefix) + 1 : 0;
	if (prefix_len > 0)
		snprintf(out, cap, "%s_", g->prefix);
	return cs_generate_string_from(&g->plan->spec, src, out + prefix_len, cap - prefix_len);
}

void cs_generate_result_wipe(cs_generate_result *out)
{
	cs_secret_free(out->credential); /* the whole block, wiped */
	OPENSSL_cleanse(out, sizeof(*out));
	out->credential = NULL;
}

cs_err cs_service_generate(cs_service_req *rq, const cs_generate_request *g, cs_generate_result *out)
{
	cs_app *app = rq->app;
	char session_id[CS_SERVICE_ID_CHARS + 1], generated_at[32];
	uint8_t salt[SALT_BYTES], id_raw[CS_SERVICE_ID_BYTES];
	char *salt_b64 = NULL, *commitment = NULL, *claims_text = NULL;
	json_t *claims = NULL, *entropy_source = NULL;
	/* the token's random bytes (the credential is drawn from them) and the
	 * credential: in the secure heap while it has room (wipe_alloc.h) */
	cs_random_buffer *rnd = NULL;
	memset(out, 0, sizeof(*out));
	cs_access_scope scope = {g->project, g->environment, g->preset->name, NULL};
	cs_err r = cs_service_authorize(rq, CS_ACTION_GENERATE, &scope);
	if (r != CS_OK)
		return r;
	/* the token as described now (again after a recovery of the pool), and
	 * its validation as checked then: never assumed */
	const char *validated_program = NULL;
	char problem[sizeof(app->validation_problem)];
	if ((entropy_source = cs_app_entropy_source(app, &validated_program, problem, sizeof(problem))) == NULL)
		return cs_service_fail(rq, CS_E_TOKEN_UNAVAILABLE, NULL, "describing the token");
	if (!cs_validation_meets(validated_program, g->preset->requires_validation)) {
		const char *why = problem[0] ? problem
				  : validated_program != NULL ? "it is validated under FIPS 140-2 only"
							      : "pkcs11.validation declares program \"none\"";
		json_decref(entropy_source);
		return cs_service_fail(rq, CS_E_UNPROCESSABLE, "token_not_validated",
				       "preset '%s' requires a token validated under %s; this token is not: %s",
				       g->preset->name, g->preset->requires_validation, why);
	}
	if ((rnd = cs_secret_alloc(sizeof(*rnd))) == NULL ||
	    (out->credential = cs_secret_alloc(CS_GENERATE_CREDENTIAL_BYTES)) == NULL) {
		r = cs_service_fail(rq, CS_E_NOMEM, NULL, "generation");
		goto out;
	}
	/* the request's randomness: one draw (see generate_random_bytes),
	 * sliced; wiped at the end */
	cs_random_buffer_init(rnd, token_rnd, app->token, cs_token_random_max(app->token));
	if ((r = cs_random_buffer_fill(rnd, generate_random_bytes(app, g))) != CS_OK ||
	    (r = cs_random_take(rnd, salt, sizeof(salt))) != CS_OK ||
	    (r = cs_random_take(rnd, id_raw, sizeof(id_raw))) != CS_OK ||
	    (r = cs_service_id_from_raw(id_raw, session_id)) != CS_OK ||
	    (r = draw_credential(app, g, rnd, out->credential, CS_GENERATE_CREDENTIAL_BYTES)) != CS_OK) {
		cs_service_fail(rq, r, NULL, "generation");
		goto out;
	}
	int64_t now = cs_service_now_ms();
	cs_service_rfc3339(now, generated_at);
	if ((r = commit_credential(salt, out->credential, &commitment)) != CS_OK ||
	    (salt_b64 = cs_b64url_encode(salt, sizeof(salt))) == NULL) {
		r = cs_service_fail(rq, r != CS_OK ? r : CS_E_NOMEM, NULL, "commitment");
		goto out;
	}
	json_t *cred = credential_claim(app, g, salt_b64, commitment);
	claims = cred != NULL ? session_claims(entropy_source, g, cred, rq->caller, session_id, generated_at) : NULL;
	claims_text = claims != NULL ? cs_json_text(claims, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(12))
				     : NULL;
	if (claims_text == NULL) {
		r = cs_service_fail(rq, CS_E_NOMEM, NULL, "claims");
		goto out;
	}
	cs_gen_session session = {.created_ms = now,
				  .expires_ms = now + CS_SESSION_TTL_SECONDS * 1000,
				  .claims_json = claims_text};
	memcpy(session.id, session_id, sizeof(session_id));
	memcpy(session.cert_sha256, rq->caller->cert_sha256, sizeof(session.cert_sha256));
	/* the entry commits with the session */
	cs_service_actor(rq);
	cs_service_set_object(rq, session_id);
	rq->audit.outcome = "success";
	cs_audit_complete(app->audit, &rq->audit);
	if ((r = cs_ledger_session_put(app->ledger, &session, &rq->audit)) != CS_OK) {
		cs_service_fail(rq, r, NULL, "storing the session and its audit entry");
		goto out;
	}
	rq->audited = 1;
	cs_audit_committed(app->audit, app->ledger, &rq->audit);
	memcpy(out->session_id, session_id, sizeof(session_id));
	out->expires_in = CS_SESSION_TTL_SECONDS;
	out->preset = g->preset->name;
	out->type = cs_type_name(g->plan->type);
	out->length = g->plan->length;
	out->entropy_bits = g->plan->entropy_bits;
	cs_log_info("generated preset=%s type=%s length=%d session=%s identity=%s", g->preset->name,
		    out->type, g->plan->length, session_id, rq->caller->identity);
out:
	if (r != CS_OK) {
		cs_secret_free(out->credential);
		out->credential = NULL;
	}
	if (rnd != NULL)
		cs_random_buffer_wipe(rnd);
	cs_secret_free(rnd);
	OPENSSL_cleanse(salt, sizeof(salt));
	free(salt_b64);
	free(commitment);
	free(claims_text);
	json_decref(claims);
	json_decref(entropy_source);
	return r;
}
