/* service_certify: a compliance certificate for a generation session
 * (service.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_log.h"
#include "ledger.h"
#include "service_internal.h"

/* A fresh identifier from the token (one C_GenerateRandom call). */
static cs_err new_id(cs_app *app, char out[CS_SERVICE_ID_CHARS + 1])
{
	uint8_t raw[CS_SERVICE_ID_BYTES];
	cs_err r = cs_token_random(app->token, raw, sizeof(raw));
	if (r != CS_OK)
		return r;
	return cs_service_id_from_raw(raw, out);
}

/* Add the certification claims to the session's and sign (outside any
 * store transaction: the token may be slow). The JWS is the one copy of
 * the claims stored. */
static cs_err make_certificate(cs_app *app, cs_signer *signer, const json_t *session_claims, const char *cert_id,
			       int64_t now, char **jws)
{
	char when[32];
	/* every claim or no certificate: a copy compared with its original
	 * (json_equal allocates nothing) and each member's addition checked,
	 * so that a failed allocation never signs a certificate without one
	 * (json_text.h) */
	json_t *claims = json_deep_copy(session_claims);
	if (claims == NULL || !json_equal(claims, session_claims)) {
		json_decref(claims);
		return CS_E_NOMEM;
	}
	cs_service_rfc3339(now, when);
	/* the node that certified (server.node_id, unique among the nodes
	 * sharing the store) */
	if (json_object_set_new(claims, "iss", json_string(app->cfg->server.public_base_url)) != 0 ||
	    json_object_set_new(claims, "jti", json_string(cert_id)) != 0 ||
	    json_object_set_new(claims, "iat", json_integer(now / 1000)) != 0 ||
	    json_object_set_new(claims, "certified_at", json_string(when)) != 0 ||
	    json_object_set_new(claims, "node", json_string(app->cfg->server.node_id)) != 0) {
		json_decref(claims);
		return CS_E_NOMEM;
	}
	cs_err r = cs_signer_jws(signer, CS_CERT_TYP, claims, jws);
	json_decref(claims);
	return r;
}

static const char *claim(const json_t *claims, const char *name)
{
	return json_string_value(json_object_get(claims, name));
}

/* The session belongs to another client certificate: refused, with the
 * scope it was generated for in the entry (read here for the audit only,
 * never returned). */
static cs_err foreign_session(cs_service_req *rq, const char *session_id)
{
	cs_session_row row;
	if (cs_store_session_get(rq->store, session_id, &row) == CS_OK) {
		json_t *sc = row.claims_json != NULL ? json_loads(row.claims_json, 0, NULL) : NULL;
		cs_service_set_scope(rq, claim(sc, "project"), claim(sc, "environment"));
		json_decref(sc);
		cs_session_row_free(&row);
	}
	return cs_service_refuse(rq, "forbidden", 0,
				 "the generation session belongs to another client certificate (only the "
				 "certificate that generated may certify)");
}

void cs_certify_result_free(cs_certify_result *out)
{
	free(out->jws);
	memset(out, 0, sizeof(*out));
}

cs_err cs_service_certify(cs_service_req *rq, const char *session_id, cs_certify_result *out)
{
	cs_app *app = rq->app;
	char *session_claims = NULL;
	json_t *sc = NULL;
	memset(out, 0, sizeof(*out));
	cs_service_set_object(rq, session_id);
	/* the scope is the session's: first whether the caller may certify at
	 * all, then, once the session is read, for its scope */
	cs_err r = cs_service_admit(rq, CS_ACTION_CERTIFY);
	if (r != CS_OK)
		return r;
	int64_t now = cs_service_now_ms();
	r = cs_ledger_session_claims(rq->store, session_id, rq->caller->cert_sha256, now, &session_claims);
	if (r == CS_E_FORBIDDEN)
		return foreign_session(rq, session_id);
	if (r != CS_OK)
		return cs_service_fail(rq, r, NULL, "certification");
	if ((sc = json_loads(session_claims, 0, NULL)) == NULL) {
		free(session_claims);
		return cs_service_fail(rq, CS_E_STORE, NULL, "certification");
	}
	free(session_claims);
	cs_access_scope scope = {claim(sc, "project"), claim(sc, "environment"), claim(sc, "preset"), NULL};
	if ((r = cs_service_authorize(rq, CS_ACTION_CERTIFY, &scope)) != CS_OK)
		goto out;
	/* the key the request took at its start; none: fail closed */
	if (rq->signer == NULL) {
		r = cs_service_fail(rq, CS_E_NO_ACTIVE_KEY, "no_active_key",
				    "no active signing key: the store has none in force (the last one was "
				    "compromised or cannot be used); certification resumes when a key is activated");
		goto out;
	}
	if ((r = new_id(app, out->cert_id)) != CS_OK ||
	    (r = make_certificate(app, rq->signer, sc, out->cert_id, now, &out->jws)) != CS_OK) {
		cs_service_fail(rq, r, NULL, "certification");
		goto out;
	}
	/* the entry commits with the certificate */
	cs_service_actor(rq);
	cs_service_set_object(rq, out->cert_id);
	rq->audit.outcome = "success";
	cs_audit_complete(app->audit, &rq->audit);
	r = cs_ledger_certify(app->ledger, session_id, out->cert_id, cs_signer_kid(rq->signer), out->jws, now,
			      &rq->audit);
	if (r != CS_OK) {
		cs_service_set_object(rq, session_id);
		cs_service_fail(rq, r, NULL, "certification");
		goto out;
	}
	rq->audited = 1;
	cs_audit_committed(app->audit, app->ledger, &rq->audit);
	snprintf(out->url, sizeof(out->url), "%s/cert/%s", app->cfg->server.public_base_url, out->cert_id);
	cs_log_info("certified session=%s cert=%s identity=%s", session_id, out->cert_id, rq->caller->identity);
out:
	json_decref(sc);
	if (r != CS_OK)
		cs_certify_result_free(out);
	return r;
}
