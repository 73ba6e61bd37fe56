/* service: the request context, authorisation and the request's audit
 * entry (see service.h). */
#include "service.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "cs_log.h"
#include "jose.h"
#include "service_internal.h"

/* ---- the request ----------------------------------------------------------------- */

void cs_service_begin(cs_service_req *rq, cs_app *app, cs_store *store, const cs_caller *caller,
		      const char *action, const char *request_id)
{
	memset(rq, 0, sizeof(*rq));
	rq->app = app;
	rq->store = store;
	rq->caller = caller;
	rq->access = app->access != NULL ? cs_access_acquire(app->access) : NULL;
	rq->signer = cs_signer_acquire(app->signer);
	rq->certificates_public = atomic_load(&app->certificates_public);
	snprintf(rq->request_id, sizeof(rq->request_id), "%s", request_id != NULL ? request_id : "");
	snprintf(rq->role, sizeof(rq->role), "client");
	rq->audit.request_id = rq->request_id[0] ? rq->request_id : NULL;
	rq->audit.action = action;
}

void cs_service_end(cs_service_req *rq)
{
	cs_access_unref(rq->access);
	rq->access = NULL;
	cs_signer_free(rq->signer);
	rq->signer = NULL;
}

/* value into buf[cap]: cut at a character boundary with "..." when it
 * does not fit; ascii_only: bytes that are not printable ASCII become '?'
 * (a raw request path may carry anything; every entry stays exportable
 * as JSON). */
static const char *copy_field(char *buf, size_t cap, const char *value, int ascii_only)
{
	if (value == NULL)
		return NULL;
	size_t n = strlen(value);
	if (n < cap) {
		memmove(buf, value, n + 1);
	} else {
		n = cap - 4;
		while (n > 0 && ((unsigned char)value[n] & 0xc0) == 0x80)
			n--;
		memmove(buf, value, n);
		memcpy(buf + n, "...", 4);
	}
	if (ascii_only)
		cs_audit_sanitize(buf);
	return buf;
}

void cs_service_set_object(cs_service_req *rq, const char *object)
{
	/* 256: an object from a request path is cut at 255 bytes (docs/audit.md) */
	rq->audit.object = copy_field(rq->object, 256, object, 1);
}

void cs_service_set_scope(cs_service_req *rq, const char *project, const char *environment)
{
	/* from parsed JSON or stored claims: valid UTF-8 of at most 128 characters */
	rq->audit.project = copy_field(rq->project, sizeof(rq->project), project, 0);
	rq->audit.environment = copy_field(rq->environment, sizeof(rq->environment), environment, 0);
}

void cs_service_actor(cs_service_req *rq)
{
	rq->audit.actor = rq->caller != NULL ? rq->caller->identity : "unidentified";
	rq->audit.actor_cert_sha256 = rq->caller != NULL ? rq->caller->cert_sha256 : NULL;
	rq->audit.role = rq->role;
}

/* ---- refusals in floods: counted, summarised (service.h) ------------------------------ */

typedef struct {
	char cert[65], identity[256], action[64], code[64];
	int64_t count; /* refusals counted, not audited one by one */
	char first[32], last[32];
} refusal_key;

struct cs_request_refusals {
	pthread_mutex_t lock;
	refusal_key keys[CS_REQUEST_REFUSAL_KEYS + 1]; /* the last: "*" */
	size_t n;
};

/* 1 when this refusal is the first of its key since the last flush (audit
 * it), else 0 (counted). */
static int refusal_first(struct cs_request_refusals *t, const cs_caller *caller, const char *action,
			 const char *code)
{
	const char *cert = caller != NULL ? caller->cert_sha256 : "";
	const char *identity = caller != NULL ? caller->identity : "unidentified";
	int first = 0;
	pthread_mutex_lock(&t->lock);
	refusal_key *k = NULL;
	for (size_t i = 0; i < t->n && k == NULL; i++)
		if (strcmp(t->keys[i].cert, cert) == 0 && strcmp(t->keys[i].identity, identity) == 0 &&
		    strcmp(t->keys[i].action, action) == 0 && strcmp(t->keys[i].code, code) == 0)
			k = &t->keys[i];
	if (k == NULL && t->n < CS_REQUEST_REFUSAL_KEYS) {
		k = &t->keys[t->n++];
		memset(k, 0, sizeof(*k));
		snprintf(k->cert, sizeof(k->cert), "%s", cert);
		snprintf(k->identity, sizeof(k->identity), "%s", identity);
		snprintf(k->action, sizeof(k->action), "%s", action);
		snprintf(k->code, sizeof(k->code), "%s", code);
		first = 1;
	} else if (k == NULL) {
		k = &t->keys[CS_REQUEST_REFUSAL_KEYS]; /* the table is full: "*" */
		if (k->identity[0] == '\0') {
			snprintf(k->identity, sizeof(k->identity), "*");
			snprintf(k->action, sizeof(k->action), "*");
			snprintf(k->code, sizeof(k->code), "*");
		}
	}
	if (!first) {
		char now[32];
		cs_audit_now(now);
		if (k->count++ == 0)
			memcpy(k->first, now, sizeof(now));
		memcpy(k->last, now, sizeof(now));
	}
	pthread_mutex_unlock(&t->lock);
	return first;
}

int64_t cs_service_flush_refusals(cs_app *app)
{
	struct cs_request_refusals *t = app->refusals;
	if (t == NULL)
		return 0;
	/* take the counts, then write outside the lock */
	refusal_key *taken = malloc(sizeof(t->keys));
	size_t n = 0;
	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; taken != NULL && i <= CS_REQUEST_REFUSAL_KEYS; i++)
		if ((i < t->n || i == CS_REQUEST_REFUSAL_KEYS) && t->keys[i].count > 0)
			taken[n++] = t->keys[i];
	t->n = 0; /* a new interval: each key's next refusal is audited again */
	memset(&t->keys[CS_REQUEST_REFUSAL_KEYS], 0, sizeof(t->keys[0]));
	pthread_mutex_unlock(&t->lock);
	int64_t written = 0;
	for (size_t i = 0; i < n; i++) {
		char object[300];
		snprintf(object, sizeof(object), "action=%s count=%lld first=%s last=%s", taken[i].action,
			 (long long)taken[i].count, taken[i].first, taken[i].last);
		cs_audit_entry e = {.actor = taken[i].identity,
				    .actor_cert_sha256 = taken[i].cert[0] != '\0' ? taken[i].cert : NULL,
				    .role = "client", .action = "request.refusals", .object = object,
				    .outcome = "refused", .error_code = taken[i].code};
		if (cs_audit_record(app->audit, app->ledger, &e) == CS_OK)
			written++;
		else
			cs_log_error("a summary of %lld refused requests could not be audited",
				     (long long)taken[i].count);
	}
	free(taken);
	return written;
}

static cs_err refusals_start(cs_app *app)
{
	struct cs_request_refusals *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return CS_E_NOMEM;
	pthread_mutex_init(&t->lock, NULL);
	app->refusals = t;
	return CS_OK;
}

static void refusals_stop(cs_app *app)
{
	if (app->refusals == NULL)
		return;
	(void)cs_service_flush_refusals(app); /* the last interval's counts */
	pthread_mutex_destroy(&app->refusals->lock);
	free(app->refusals);
	app->refusals = NULL;
}

cs_err cs_service_record(cs_service_req *rq, const char *outcome, const char *error_code)
{
	if (rq->audited)
		return rq->audit_failed ? CS_E_STORE : CS_OK;
	rq->audited = 1;
	const char *action = rq->audit.action != NULL ? rq->audit.action : "request";
	/* a verified client's refusals are audited one by one (it is
	 * identified and accountable); a caller without a usable identity is
	 * counted after its first (cs_service_flush_refusals) */
	if (rq->caller == NULL && strcmp(outcome, "refused") == 0 && rq->app->refusals != NULL &&
	    !refusal_first(rq->app->refusals, rq->caller, action, error_code != NULL ? error_code : ""))
		return CS_OK;
	if (rq->store_failed) {
		/* the store could not write within audit.write_timeout_ms: a second
		 * attempt for the failure entry would only double the wait */
		cs_log_error("request %s (%s) failed and could not be audited: the store is unavailable",
			     rq->request_id, action);
		return CS_OK;
	}
	cs_audit_entry *e = &rq->audit;
	cs_service_actor(rq);
	e->action = action;
	e->outcome = outcome;
	e->error_code = copy_field(rq->error_code, sizeof(rq->error_code), error_code, 1);
	cs_err r = cs_audit_record(rq->app->audit, rq->app->ledger, e);
	if (r != CS_OK)
		rq->audit_failed = 1; /* the entry is not durable: nothing else may leave */
	return r;
}

/* ---- failures ----------------------------------------------------------------------- */

/* Make text well-formed UTF-8 without refused characters (an access
 * reason quotes client text, possibly cut inside a character): when it
 * is not, every byte outside printable ASCII becomes '?'. */
static void well_formed(char *text)
{
	if (text[0] != '\0' && cs_config_text_problem(text, CS_SERVICE_OBJECT_BYTES) != NULL)
		cs_audit_sanitize(text);
}

cs_err cs_service_fail(cs_service_req *rq, cs_err r, const char *code, const char *fmt, ...)
{
	char what[sizeof(rq->problem.message)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(rq->problem.code, sizeof(rq->problem.code), "%s", code != NULL ? code : "");
	if (code != NULL)
		snprintf(rq->problem.message, sizeof(rq->problem.message), "%s", what);
	else
		snprintf(rq->problem.message, sizeof(rq->problem.message), "%.300s: %s", what, cs_strerror(r));
	well_formed(rq->problem.message);
	if (cs_err_category_of(r) == CS_CAT_STORE)
		rq->store_failed = 1;
	return r;
}

/* ---- authorisation ------------------------------------------------------------------- */

static int64_t monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

cs_err cs_service_refuse(cs_service_req *rq, const char *code, int retry_after, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rq->problem.message, sizeof(rq->problem.message), fmt, ap);
	va_end(ap);
	well_formed(rq->problem.message);
	snprintf(rq->problem.code, sizeof(rq->problem.code), "%s", code);
	rq->retry_after = retry_after;
	char object[CS_SERVICE_OBJECT_BYTES + 300];
	if (rq->audit.object != NULL)
		snprintf(object, sizeof(object), "%s: %s", rq->audit.object, rq->problem.message);
	else
		snprintf(object, sizeof(object), "%s", rq->problem.message);
	rq->audit.object = copy_field(rq->object, sizeof(rq->object), object, 0);
	snprintf(rq->role, sizeof(rq->role), "client");
	(void)cs_service_record(rq, "refused", code); /* sets audit_failed */
	return CS_E_FORBIDDEN;
}

cs_err cs_service_authorize(cs_service_req *rq, cs_access_action action, const cs_access_scope *scope)
{
	static const cs_access_scope none = {NULL, NULL, NULL, NULL};
	const cs_access_scope *s = scope != NULL ? scope : &none;
	if (s->project != NULL || s->environment != NULL)
		cs_service_set_scope(rq, s->project, s->environment); /* what was asked for */
	if (rq->caller == NULL)
		return cs_service_refuse(rq, "forbidden", 0, "no verified client certificate");
	cs_access_decision d;
	cs_access_decide(rq->access, rq->caller->identity, action, s, 1, monotonic_ms(), &d);
	if (d.allowed) {
		snprintf(rq->role, sizeof(rq->role), "%s", d.role);
		return CS_OK;
	}
	if (action == CS_ACTION_CERT_READ && rq->certificates_public)
		return CS_OK; /* certificates.public: any authenticated client reads them, its
			       * own grant's rate limit notwithstanding */
	if (d.retry_after > 0)
		return cs_service_refuse(rq, "rate_limited", d.retry_after, "%s", d.reason);
	if (action == CS_ACTION_AUDIT_READ && s->project == NULL)
		return cs_service_refuse(rq, "forbidden", 0,
					 "%s; an auditor of some projects reads their entries with "
					 "GET /api/audit?project=NAME",
					 d.reason);
	return cs_service_refuse(rq, "forbidden", 0, "%s", d.reason);
}

typedef struct {
	const char *needed; /* "generator", "auditor or generator", "any", ... */
	int found;
} role_search;

/* Does a grant of this role count for the roles an action needs? */
static void has_role(void *arg, const char *grant, const char *role, int covers, const char *why)
{
	(void)grant;
	(void)why;
	role_search *m = arg;
	if (covers || strcmp(m->needed, "any") == 0) {
		m->found = 1;
		return;
	}
	size_t n = strlen(role);
	for (const char *p = strstr(m->needed, role); p != NULL; p = strstr(p + 1, role))
		if ((p == m->needed || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' '))
			m->found = 1;
}

cs_err cs_service_admit(cs_service_req *rq, cs_access_action action)
{
	if (rq->caller == NULL)
		return cs_service_refuse(rq, "forbidden", 0, "no verified client certificate");
	if (action == CS_ACTION_CERT_READ && rq->certificates_public)
		return CS_OK;
	cs_access_decision d;
	cs_access_decide(rq->access, rq->caller->identity, action, NULL, 0, monotonic_ms(), &d);
	if (d.allowed)
		return CS_OK;
	/* refused for the empty scope: d.role names the roles the action
	 * needs (access.h); does the caller hold a grant of one of them? */
	role_search m = {d.role != NULL ? d.role : "", 0};
	cs_access_explain(rq->access, rq->caller->identity, action, NULL, has_role, &m);
	if (m.found)
		return CS_OK;
	if (strcmp(m.needed, "any") == 0)
		return cs_service_refuse(rq, "forbidden", 0, "no grant (%s needs a grant of any role)",
					 cs_access_action_name(action));
	return cs_service_refuse(rq, "forbidden", 0, "no %s grant (%s needs one)", m.needed,
				 cs_access_action_name(action));
}

/* ---- the rules in force ------------------------------------------------------------- */

static void system_entry(cs_app *app, const char *action, const char *object, const char *outcome,
			 const char *error_code)
{
	cs_audit_entry e = {.actor = "system", .role = "system", .action = action, .object = object,
			    .outcome = outcome, .error_code = error_code};
	if (cs_audit_record(app->audit, app->ledger, &e) != CS_OK)
		cs_log_error("%s not audited", action);
}

/* One identity with generator and auditor rights: warned of and audited. */
static void conflict(void *arg, const char *identity, const char *generator, const char *auditor)
{
	char object[CS_SERVICE_OBJECT_BYTES];
	snprintf(object, sizeof(object), "%.255s holds generator rights (%s) and auditor rights (%s)", identity,
		 generator, auditor);
	cs_audit_sanitize(object);
	cs_log_warn("separation of duties: %s", object);
	system_entry(arg, "access.conflict", object, "failure", "separation_of_duties");
}

static cs_err build_rules(cs_app *app, const cs_config *cfg, cs_access **out)
{
	cs_config_diag diag = {0};
	cs_err r = cs_access_check_presets(cfg, app->presets, &diag);
	for (size_t i = 0; i < diag.count; i++)
		cs_log_error("%s", diag.messages[i]);
	cs_config_diag_free(&diag);
	if (r != CS_OK)
		return r;
	if ((r = cs_access_new(cfg, out)) != CS_OK)
		return r;
	cs_access_each_conflict(*out, conflict, app);
	return CS_OK;
}

cs_err cs_service_rules_start(cs_app *app, const cs_config *cfg)
{
	cs_access *rules = NULL;
	cs_err r = build_rules(app, cfg, &rules);
	if (r == CS_OK && (r = cs_access_slot_new(rules, &app->access)) != CS_OK)
		cs_access_unref(rules);
	if (r == CS_OK)
		atomic_store(&app->certificates_public, cfg->certificates.public);
	if (r == CS_OK && (r = refusals_start(app)) != CS_OK) {
		cs_access_slot_free(app->access);
		app->access = NULL;
	}
	return r;
}

/* Whether two NULL-terminated string lists (NULL: none) are the same. */
static int lists_equal(char *const *a, char *const *b)
{
	size_t i = 0;
	for (; a != NULL && b != NULL && a[i] != NULL && b[i] != NULL; i++)
		if (strcmp(a[i], b[i]) != 0)
			return 0;
	return (a == NULL || a[i] == NULL) && (b == NULL || b[i] == NULL);
}

static int texts_equal(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* The first setting of profile q (the file's) that differs from p (in
 * force), NULL when none. */
static const char *profile_change(const cs_config_profile *p, const cs_config_profile *q)
{
	if (!texts_equal(p->key, q->key))
		return "key";
	if (p->formats != q->formats)
		return "formats";
	if (!texts_equal(p->typ, q->typ))
		return "typ";
	if (!lists_equal(p->payload_types, q->payload_types))
		return "payload_types";
	if (p->max_payload_bytes != q->max_payload_bytes)
		return "max_payload_bytes";
	if (!texts_equal(p->iss, q->iss))
		return "iss";
	if (!lists_equal(p->aud, q->aud))
		return "aud";
	if (p->lifetime_seconds != q->lifetime_seconds)
		return "lifetime_seconds";
	if (p->store_payload != q->store_payload)
		return "store_payload";
	return NULL;
}

/* How the file's signing group differs from the one in force (profiles
 * are read at start), into what[len]; 0 when it does not. */
static int signing_change(const cs_config *in_force, const cs_config *file, char *what, size_t len)
{
	const char *change;
	if (in_force->signing.max_request_bytes != file->signing.max_request_bytes ||
	    in_force->signing.batch_max != file->signing.batch_max) {
		snprintf(what, len, "signing.%s", in_force->signing.batch_max != file->signing.batch_max
							  ? "batch_max" : "max_request_bytes");
		return 1;
	}
	for (size_t i = 0; i < file->signing.nprofiles; i++) {
		const cs_config_profile *q = &file->signing.profiles[i];
		const cs_config_profile *p = cs_config_profile_find(in_force, q->name);
		if (p == NULL) {
			snprintf(what, len, "profile %s is new", q->name);
			return 1;
		}
		if ((change = profile_change(p, q)) != NULL) {
			snprintf(what, len, "profile %s: its %s", q->name, change);
			return 1;
		}
	}
	for (size_t i = 0; i < in_force->signing.nprofiles; i++) {
		if (cs_config_profile_find(file, in_force->signing.profiles[i].name) == NULL) {
			snprintf(what, len, "profile %s is not in the file", in_force->signing.profiles[i].name);
			return 1;
		}
	}
	return 0;
}

/* Grants of the file that name a signing profile not in force: each logged
 * (FILE:LINE, the setting); CS_E_CONFIG when there is one. A grant may
 * name only the profiles the daemon opened at start: a new profile (its
 * key, its bootstrap) needs a restart. */
static cs_err grants_profiles_in_force(const cs_config *in_force, const cs_config *file)
{
	cs_err r = CS_OK;
	for (size_t i = 0; i < file->access.ngrants; i++) {
		char *const *names = file->access.grants[i].profiles;
		for (size_t j = 0; names != NULL && names[j] != NULL; j++) {
			if (strcmp(names[j], "*") == 0 || cs_config_profile_find(in_force, names[j]) != NULL)
				continue;
			char path[64], where[1100];
			snprintf(path, sizeof(path), "access.grants.[%zu].profiles", i);
			cs_config_where(file, path, where, sizeof(where));
			cs_log_error("SIGHUP: %s: setting '%s': element %zu: signing profile %s is not in force: a new "
				     "profile needs a restart", where, path, j + 1, names[j]);
			r = CS_E_CONFIG;
		}
	}
	return r;
}

/* SIGHUP reloads the access rules alone; the grants may name only the
 * signing profiles in force (read at start), and a signing group that
 * differs from the one in force is warned of (it takes effect at restart). */
cs_err cs_service_rules_reload(cs_app *app)
{
	cs_config *cfg = NULL;
	cs_config_diag diag = {0};
	cs_access *rules = NULL;
	const char *file = app->cfg->file;
	cs_err r = cs_config_reload(file, &cfg, &diag);
	for (size_t i = 0; i < diag.count; i++)
		cs_log_error("%s", diag.messages[i]);
	cs_config_diag_free(&diag);
	if (r == CS_OK)
		r = grants_profiles_in_force(app->cfg, cfg);
	if (r == CS_OK)
		r = build_rules(app, cfg, &rules);
	if (r != CS_OK) {
		cs_log_error("SIGHUP: %s not reloaded (%s); the access rules in force stay", file, cs_strerror(r));
		system_entry(app, "access.reload", file, "failure", "config_invalid");
		cs_config_free(cfg);
		return r;
	}
	char change[160];
	if (signing_change(app->cfg, cfg, change, sizeof(change)))
		cs_log_warn("SIGHUP: %s: its signing settings differ from those in force (%s): they take effect at "
			    "restart (SIGHUP reloads the access rules alone)", file, change);
	int public = cfg->certificates.public;
	size_t grants = cfg->access.ngrants;
	cs_config_free(cfg);
	cs_access_swap(app->access, rules);
	atomic_store(&app->certificates_public, public);
	cs_log_info("SIGHUP: access rules reloaded from %s: %zu grant(s), certificates.public %s", file, grants,
		    public ? "true" : "false");
	system_entry(app, "access.reload", file, "success", NULL);
	return CS_OK;
}

void cs_service_rules_stop(cs_app *app)
{
	refusals_stop(app);
	cs_access_slot_free(app->access);
	app->access = NULL;
}

/* ---- shared helpers -------------------------------------------------------------------- */

int64_t cs_service_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cs_service_rfc3339(int64_t ms, char out[32])
{
	time_t sec = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&sec, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

cs_err cs_service_id_from_raw(uint8_t raw[CS_SERVICE_ID_BYTES], char out[CS_SERVICE_ID_CHARS + 1])
{
	raw[0] &= 0x7f;
	char *s = cs_b64url_encode(raw, CS_SERVICE_ID_BYTES);
	if (s == NULL)
		return CS_E_NOMEM;
	memcpy(out, s, CS_SERVICE_ID_CHARS + 1);
	free(s);
	return CS_OK;
}
