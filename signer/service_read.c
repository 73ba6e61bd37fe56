/* service_read: certificates, the JWKS, presets, the policy, metrics and
 * readiness (service.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"
#include "metrics.h"
#include "service_internal.h"

cs_err cs_service_cert_get(cs_service_req *rq, const char *cert_id, char **jws, char **claims_json)
{
	*jws = *claims_json = NULL;
	cs_service_set_object(rq, cert_id);
	/* the scope is the certificate's project: first whether the caller
	 * may read certificates at all */
	cs_err r = cs_service_admit(rq, CS_ACTION_CERT_READ);
	if (r != CS_OK)
		return r;
	char *j = NULL, *c = NULL;
	if ((r = cs_ledger_cert_get(rq->store, cert_id, &j, &c)) != CS_OK)
		return cs_service_fail(rq, r, NULL, "certificate");
	json_t *claims = json_loads(c, 0, NULL);
	const char *project = json_string_value(json_object_get(claims, "project"));
	const char *environment = json_string_value(json_object_get(claims, "environment"));
	cs_access_scope scope = {project, environment, NULL};
	r = cs_service_authorize(rq, CS_ACTION_CERT_READ, &scope);
	json_decref(claims);
	if (r != CS_OK) {
		free(j);
		free(c);
		return r;
	}
	*jws = j;
	*claims_json = c;
	return CS_OK;
}

static void add_key_row(void *arg, const char *kid, const char *jwk_json, const char *status,
			const char *created_at)
{
	(void)kid;
	json_t *jwk = json_loads(jwk_json, 0, NULL);
	if (jwk == NULL)
		return;
	json_object_set_new(jwk, "status", json_string(status));
	json_object_set_new(jwk, "created_at", json_string(created_at));
	json_array_append_new(arg, jwk);
}

cs_err cs_service_jwks(cs_service_req *rq, json_t **keys)
{
	/* public by nature: no decision */
	*keys = json_array();
	if (*keys == NULL)
		return cs_service_fail(rq, CS_E_NOMEM, NULL, "signing keys");
	cs_err r = cs_store_keys_each(rq->store, add_key_row, *keys);
	if (r != CS_OK) {
		json_decref(*keys);
		*keys = NULL;
		return cs_service_fail(rq, r, NULL, "signing keys");
	}
	return CS_OK;
}

cs_err cs_service_presets(cs_service_req *rq, json_t **doc)
{
	cs_app *app = rq->app;
	*doc = NULL;
	cs_err r = cs_service_authorize(rq, CS_ACTION_PRESETS_READ, NULL);
	if (r != CS_OK)
		return r;
	json_t *list = json_array();
	for (size_t i = 0; list != NULL && i < app->presets->count; i++) {
		const cs_preset *p = &app->presets->items[i];
		json_t *d = json_deep_copy(p->definition);
		json_object_set_new(d, "sha256", json_string(p->sha256));
		json_object_set_new(d, "source", json_string(p->source));
		json_t *mins = json_object();
		for (int t = 1; t <= CS_TYPE_PASSPHRASE; t <<= 1) {
			cs_plan_request q = {.type = t};
			cs_plan plan;
			char why[256];
			if ((p->types & (unsigned)t) &&
			    cs_preset_plan(p, app->wordlist, &q, &plan, why, sizeof(why)) == CS_OK)
				json_object_set_new(mins, cs_type_name((cs_cred_type)t),
						    json_integer(plan.min_length));
		}
		json_object_set_new(d, "enforced_min_length", mins);
		json_array_append_new(list, d);
	}
	*doc = json_pack("{s:i, s:o}", "version", app->presets->version, "presets", list);
	return *doc != NULL ? CS_OK : cs_service_fail(rq, CS_E_NOMEM, NULL, "presets");
}

cs_err cs_service_policy(cs_service_req *rq, const cs_policy_input *in, json_t **doc)
{
	cs_app *app = rq->app;
	char why[200];
	*doc = NULL;
	cs_err r = cs_service_authorize(rq, CS_ACTION_POLICY_READ, NULL);
	if (r != CS_OK)
		return r;
	/* the request's texts override the configuration's `policy` group */
	cs_policy_options opts = {0};
	if (app->cfg != NULL) {
		opts.organisation = app->cfg->policy.organisation;
		opts.owner = app->cfg->policy.owner;
		opts.scope = app->cfg->policy.scope;
		opts.version = app->cfg->policy.version;
		opts.effective_date = app->cfg->policy.effective_date;
		opts.review_months = app->cfg->policy.review_months;
	}
	if (in->organisation[0])
		opts.organisation = in->organisation;
	if (in->owner[0])
		opts.owner = in->owner;
	if (in->scope[0])
		opts.scope = in->scope;
	if (in->version[0])
		opts.version = in->version;
	if (in->effective_date[0])
		opts.effective_date = in->effective_date;
	r = cs_policy_build_doc(app->presets, app->wordlist, in->presets, in->count, &opts, doc, why, sizeof(why));
	if (r == CS_E_INVALID_ARG) /* the decoders already refuse what this refuses */
		return cs_service_fail(rq, r, "invalid_field", "%s", why);
	if (r != CS_OK)
		return cs_service_fail(rq, r, NULL, "policy");
	return CS_OK;
}

cs_err cs_service_metrics(cs_service_req *rq, char **text)
{
	cs_app *app = rq->app;
	*text = NULL;
	cs_err r = cs_service_authorize(rq, CS_ACTION_METRICS_READ, NULL);
	if (r != CS_OK)
		return r;
	cs_metrics_gauges gauges = {.active_kid = app->signer != NULL ? cs_signer_kid(app->signer) : NULL};
	if (app->read_gauges != NULL)
		app->read_gauges(app->gauges_arg, &gauges);
	if (cs_metrics_render(&gauges, text) != CS_OK)
		return cs_service_fail(rq, CS_E_NOMEM, "internal_error", "out of memory");
	return CS_OK;
}

void cs_service_readiness(cs_app *app, cs_store *store, cs_readiness *out)
{
	cs_token_info info;
	out->token = cs_token_get_info(app->token, &info);
	/* the store answers reads, and its writes succeed: the last write's
	 * outcome when recent, else a probe write (see ledger.h) */
	out->store = cs_store_ping(store);
	out->store_state = out->store == CS_OK ? "ok" : cs_strerror(out->store);
	if (out->store == CS_OK &&
	    (out->store = cs_ledger_write_health(app->ledger, CS_LEDGER_READY_MAX_AGE_MS)) != CS_OK)
		out->store_state = "writes fail";
}
