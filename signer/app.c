/* app: see app.h. The token's description (the certificates'
 * entropy_source claim) and its FIPS 140 validation; the key watch. */
#include "app.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "audit.h"
#include "cs_log.h"

int cs_validation_meets(const char *validated, const char *required)
{
	if (required == NULL)
		return 1;
	if (validated == NULL)
		return 0;
	return strcmp(validated, required) == 0 ||
	       (strcmp(required, "FIPS 140-2") == 0 && strcmp(validated, "FIPS 140-3") == 0);
}

/* One configured version against the token's: added to checked when set. */
static int check_token_version(json_t *checked, const char *name, const char *configured,
			       unsigned major, unsigned minor, char *problem, size_t cap)
{
	if (configured == NULL)
		return 1;
	char reported[16];
	snprintf(reported, sizeof(reported), "%u.%u", major, minor);
	int match = strcmp(configured, reported) == 0;
	json_object_set_new(checked, name,
			    json_pack("{s:s, s:s, s:b}", "configured", configured, "token", reported, "match",
				      match));
	if (!match) {
		size_t used = strlen(problem);
		snprintf(problem + used, cap - used, "%sthe token reports %s %s, validated at %s",
			 used > 0 ? "; " : "", name, reported, configured);
	}
	return match;
}

cs_err cs_app_validation_claim(const cs_config *cfg, const cs_token_info *info, const char *today,
			       json_t **claim, char *problem, size_t cap)
{
	const char *program =
		cfg->pkcs11.validation.program != NULL ? cfg->pkcs11.validation.program : "none";
	int none = strcmp(program, "none") == 0;
	problem[0] = '\0';
	json_t *checked = json_object();
	int ok = !none;
	if (!none && checked != NULL) {
		const char *hw = cfg->pkcs11.validation.hardware_version,
			   *fw = cfg->pkcs11.validation.firmware_version,
			   *lib = cfg->pkcs11.validation.library_version;
		ok &= check_token_version(checked, "hardware_version", hw, info->hw_major,
					  info->hw_minor, problem, cap);
		ok &= check_token_version(checked, "firmware_version", fw, info->fw_major,
					  info->fw_minor, problem, cap);
		ok &= check_token_version(checked, "library_version", lib, info->module_major,
					  info->module_minor, problem, cap);
	}
	if (ok && strcmp(program, "FIPS 140-2") == 0 && strcmp(today, CS_FIPS_140_2_SUNSET) > 0) {
		ok = 0;
		snprintf(problem, cap,
			 "FIPS 140-2 validations are historical since their sunset on " CS_FIPS_140_2_SUNSET
			 " (the CMVP's historical list): not an active validation");
	}
	/* s? is null when unset (program "none") */
	*claim = json_pack("{s:b, s:s, s:s?, s:s?, s:o, s:o}", "validated", ok, "program", program,
			   "certificate", cfg->pkcs11.validation.certificate, "module",
			   cfg->pkcs11.validation.module, "level",
			   none ? json_null() : json_integer(cfg->pkcs11.validation.level),
			   "checked_versions", checked);
	return *claim != NULL ? CS_OK : CS_E_NOMEM;
}

/* Build the entropy_source claim from what the token reports now; sets
 * *validated_program and problem[320]. Logs nothing. */
static cs_err describe(cs_app *app, const cs_token_info *info, json_t **claim, const char **validated_program,
		       char problem[320])
{
	json_t *validation = NULL;
	char version[16], hw[16], fw[16], today[11];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(today, sizeof(today), "%Y-%m-%d", &tm);
	cs_err r = cs_app_validation_claim(app->cfg, info, today, &validation, problem, 320);
	if (r != CS_OK)
		return r;
	snprintf(version, sizeof(version), "%u.%u", info->module_major, info->module_minor);
	snprintf(hw, sizeof(hw), "%u.%u", info->hw_major, info->hw_minor);
	snprintf(fw, sizeof(fw), "%u.%u", info->fw_major, info->fw_minor);
	const char *program = app->cfg->pkcs11.validation.program;
	int validated = json_is_true(json_object_get(validation, "validated"));
	*validated_program = validated ? program : NULL;
	/* what the token and module report, as they report it (through a proxy
	 * or network HSM client: the remote token's, and the client library's);
	 * software: where the commitment, hashes and TLS ran (OpenSSL, outside
	 * the token's boundary), and with which provider */
	*claim = json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s, s:b, s:s, s:s}, s:{s:s, s:s, s:s}, s:o, "
			   "s:{s:s, s:s}}",
			   "interface", "PKCS#11", "function", "C_GenerateRandom", "token", "label", info->label,
			   "manufacturer", info->manufacturer, "model", info->model, "serial", info->serial, "rng",
			   (info->flags & CKF_RNG) != 0, "hardware_version", hw, "firmware_version", fw, "module",
			   "description", info->module_description, "manufacturer", info->module_manufacturer,
			   "version", version, "validation", validation, "software", "library",
			   OpenSSL_version(OPENSSL_VERSION), "provider",
			   app->cfg->crypto.openssl_fips ? "fips" : "default");
	return *claim != NULL ? CS_OK : CS_E_NOMEM;
}

static void log_validation(const cs_app *app, const cs_token_info *info, const char *validated_program,
			   const char *problem)
{
	const cs_config *c = app->cfg;
	if (validated_program != NULL)
		cs_log_info("token validated: %s certificate #%s, module \"%s\", level %d; the token reports "
			    "hardware %u.%u and firmware %u.%u%s as configured",
			    c->pkcs11.validation.program, c->pkcs11.validation.certificate,
			    c->pkcs11.validation.module, c->pkcs11.validation.level, info->hw_major,
			    info->hw_minor, info->fw_major, info->fw_minor,
			    c->pkcs11.validation.library_version != NULL ? ", and the library version" : "");
	else if (problem[0] != '\0')
		cs_log_error("pkcs11.validation (%s certificate #%s) does not hold: %s; the token counts as not "
			     "validated and presets that require validation are refused",
			     c->pkcs11.validation.program, c->pkcs11.validation.certificate, problem);
	else
		cs_log_info("token not declared validated (pkcs11.validation program \"none\"): presets "
			    "that require validation are refused");
}

cs_err cs_app_describe_token(cs_app *app)
{
	cs_token_info info;
	unsigned long recoveries = cs_token_recoveries(app->token);
	cs_err r = cs_token_get_info(app->token, &info);
	if (r != CS_OK)
		return r;
	if ((r = describe(app, &info, &app->entropy_source, &app->validated_program, app->validation_problem)) !=
	    CS_OK)
		return r;
	pthread_mutex_init(&app->token_lock, NULL);
	app->described_recoveries = recoveries;
	snprintf(app->described_serial, sizeof(app->described_serial), "%s", info.serial);
	log_validation(app, &info, app->validated_program, app->validation_problem);
	return CS_OK;
}

/* Describe the token again after the pool recovered; the caller holds
 * token_lock. A changed description replaces the old one, logged and
 * audited; on failure the old one stays (the next request tries again). */
static void redescribe(cs_app *app, unsigned long recoveries)
{
	cs_token_info info;
	json_t *claim = NULL;
	const char *program = NULL;
	char problem[320];
	if (cs_token_get_info(app->token, &info) != CS_OK ||
	    describe(app, &info, &claim, &program, problem) != CS_OK)
		return;
	app->described_recoveries = recoveries;
	if (json_equal(claim, app->entropy_source)) {
		json_decref(claim);
		return;
	}
	int replaced = strcmp(info.serial, app->described_serial) != 0;
	cs_log_warn("the token's description changed after the pool recovered%s%s%s; certificates from now "
		    "on record the new one",
		    replaced ? " (serial " : "", replaced ? app->described_serial : "",
		    replaced ? " before): a different token" : "");
	log_validation(app, &info, program, problem);
	char object[96];
	snprintf(object, sizeof(object), "serial %s", info.serial);
	cs_audit_entry e = {.actor = "system", .role = "system", .action = "token.changed",
			    .object = object, .outcome = program != NULL || problem[0] == '\0' ? "success" : "failure",
			    .error_code = program == NULL && problem[0] != '\0' ? "validation_mismatch" : NULL};
	if (cs_audit_record(app->audit, app->ledger, &e) != CS_OK)
		cs_log_error("the token change could not be audited");
	json_decref(app->entropy_source);
	app->entropy_source = claim;
	app->validated_program = program;
	memcpy(app->validation_problem, problem, sizeof(problem));
	snprintf(app->described_serial, sizeof(app->described_serial), "%s", info.serial);
}

json_t *cs_app_entropy_source(cs_app *app, const char **validated_program, char *problem, size_t cap)
{
	unsigned long recoveries = cs_token_recoveries(app->token);
	pthread_mutex_lock(&app->token_lock);
	if (recoveries != app->described_recoveries)
		redescribe(app, recoveries);
	json_t *claim = json_incref(app->entropy_source);
	*validated_program = app->validated_program;
	snprintf(problem, cap, "%s", app->validation_problem);
	pthread_mutex_unlock(&app->token_lock);
	return claim;
}

/* ---- the signing key in force: the key watch -------------------------------------
 * A thread of its own rather than a timer in the server: the daemon's main
 * thread waits for signals (sigtimedwait) and makes the periodic audit
 * checkpoints, which wait on the token, and the workers' loops serve
 * requests; a switch must not wait behind either, nor delay them while it
 * opens a key and signs once. */

struct cs_key_watch {
	cs_app *app;
	/* what the store named active at the last poll (none: no active key)
	 * and whether the slot holds it (a failed switch is retried quietly) */
	int seen_none;
	char *seen_kid, *seen_x5c;
	int loaded;
	int store_failing; /* the store could not be read (logged once) */
	/* the thread */
	pthread_mutex_t mu;
	pthread_cond_t wake;
	pthread_t thread;
	int started, stop;
	/* the revocation list in force (under mu) */
	char *rev_jws;
	int64_t rev_iat, rev_next_update; /* seconds */
	int64_t rev_count, rev_rowid;     /* the revocations it lists */
	char rev_kid[44];                 /* the key that signed it */
	int rev_failing;                  /* signing or reading failed (logged once) */
};

static int same_text(const char *a, const char *b)
{
	return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

cs_err cs_app_open_key(OSSL_LIB_CTX *libctx, const cs_active_key *key, cs_signer **out, const char **code,
		       char *why, size_t why_len)
{
	cs_signer *s = NULL;
	char *jws = NULL;
	*out = NULL;
	*code = "key_unavailable";
	cs_err r = cs_signer_open(libctx, key->uri, &s);
	if (r != CS_OK) {
		snprintf(why, why_len, "%s: %s", key->uri, cs_strerror(r));
		return r;
	}
	if (strcmp(cs_signer_kid(s), key->kid) != 0) {
		*code = "key_mismatch";
		snprintf(why, why_len, "the token's key at %s is %s, not the store's %s", key->uri, cs_signer_kid(s),
			 key->kid);
		cs_signer_free(s);
		return CS_E_CONFLICT;
	}
	char detail[200];
	if ((r = cs_signer_set_x5c(s, key->x5c_json, detail, sizeof(detail))) != CS_OK) {
		*code = "x5c_invalid";
		snprintf(why, why_len, "the chain registered for key %s: %s", key->kid, detail);
		cs_signer_free(s);
		return r;
	}
	/* it signs (and the signature verifies) before anything depends on it */
	json_t *claims = json_pack("{s:s}", "check", "credsignd key switch");
	r = claims != NULL ? cs_signer_jws(s, "credsign-check+jwt", claims, &jws) : CS_E_NOMEM;
	json_decref(claims);
	free(jws);
	if (r != CS_OK) {
		snprintf(why, why_len, "key %s (%s) does not sign: %s", key->kid, key->uri, cs_strerror(r));
		cs_signer_free(s);
		return r;
	}
	*code = NULL;
	*out = s;
	return CS_OK;
}

static cs_err remember(cs_key_watch *w, const cs_active_key *key)
{
	free(w->seen_kid);
	free(w->seen_x5c);
	w->seen_kid = w->seen_x5c = NULL;
	w->seen_none = key == NULL;
	if (key == NULL)
		return CS_OK;
	w->seen_kid = strdup(key->kid);
	w->seen_x5c = key->x5c_json != NULL ? strdup(key->x5c_json) : NULL;
	return w->seen_kid != NULL && (key->x5c_json == NULL || w->seen_x5c != NULL) ? CS_OK : CS_E_NOMEM;
}

cs_err cs_key_watch_new(cs_app *app, const cs_active_key *in_force, cs_key_watch **out)
{
	*out = NULL;
	cs_key_watch *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return CS_E_NOMEM;
	w->app = app;
	pthread_mutex_init(&w->mu, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&w->wake, &attr);
	pthread_condattr_destroy(&attr);
	w->loaded = in_force != NULL;
	cs_err r = remember(w, in_force);
	if (r != CS_OK) {
		cs_key_watch_free(w);
		return r;
	}
	*out = w;
	return CS_OK;
}

static void audit_switch(cs_app *app, const char *kid, const char *error_code)
{
	cs_audit_entry e = {.actor = "system", .role = "system", .action = "key.switch", .object = kid,
			    .outcome = error_code == NULL ? "success" : "failure", .error_code = error_code};
	if (cs_audit_record(app->audit, app->ledger, &e) != CS_OK)
		cs_log_error("the key switch to %s could not be audited", kid);
}

/* The store names key (NULL: none) and the slot does not hold it: put it
 * in force, or empty the slot. quiet: a retry of a failed switch (logged
 * and audited already). */
static cs_err switch_key(cs_key_watch *w, const cs_active_key *key, int quiet)
{
	cs_app *app = w->app;
	char was[44], why[512];
	cs_signer_slot_kid(app->signer, was);
	if (key == NULL) {
		cs_signer_slot_swap(app->signer, NULL);
		w->loaded = 0;
		cs_log_error("the store has no active signing key (%s%s): certification fails closed (503 "
			     "no_active_key) until a ceremony activates one",
			     was[0] != '\0' ? "the last one was " : "none was in force", was);
		audit_switch(app, "none", "no_active_key");
		return CS_E_NO_ACTIVE_KEY;
	}
	cs_signer *next = NULL;
	const char *code = NULL;
	cs_err r = cs_app_open_key(app->libctx, key, &next, &code, why, sizeof(why));
	if (r != CS_OK) {
		/* fail closed: the previous key is no longer the active one */
		cs_signer_slot_swap(app->signer, NULL);
		w->loaded = 0;
		if (!quiet) {
			cs_log_error("the store's active signing key %s cannot be put in force: %s; certification "
				     "fails closed (503 no_active_key) until it can (tried again every %d ms)",
				     key->kid, why, CS_KEY_POLL_MS);
			audit_switch(app, key->kid, code);
		}
		return r;
	}
	cs_signer_slot_swap(app->signer, next);
	w->loaded = 1;
	if (strcmp(was, key->kid) == 0)
		cs_log_info("signing key %s in force again%s", key->kid,
			    key->x5c_json != NULL ? " (its registered chain changed: x5c)" : " (chain removed)");
	else
		cs_log_info("signing key switched to %s%s%s%s; certificates from now on carry kid %s", key->kid,
			    was[0] != '\0' ? " (was " : "", was, was[0] != '\0' ? ")" : "", key->kid);
	audit_switch(app, key->kid, NULL);
	return CS_OK;
}

static cs_err poll_key(cs_key_watch *w, cs_store *store)
{
	cs_active_key key = {0};
	cs_err r = cs_store_key_active(store, &key);
	if (r != CS_OK && r != CS_E_NOT_FOUND) {
		if (!w->store_failing)
			cs_log_warn("the active signing key cannot be read from the store (%s); the key in force "
				    "stays",
				    cs_strerror(r));
		w->store_failing = 1;
		return r;
	}
	if (w->store_failing)
		cs_log_info("the store answers again: following its active signing key");
	w->store_failing = 0;
	const cs_active_key *now = r == CS_OK ? &key : NULL;
	int changed = now == NULL ? !w->seen_none
				  : w->seen_none || !same_text(w->seen_kid, key.kid) ||
					    !same_text(w->seen_x5c, key.x5c_json);
	r = CS_OK;
	if (changed || (now != NULL && !w->loaded)) {
		r = switch_key(w, now, !changed);
		/* out of memory: what was seen stays unknown and is compared again */
		if (changed && remember(w, now) != CS_OK)
			cs_log_error("the key watch is out of memory");
	}
	cs_active_key_free(&key);
	return r;
}

typedef struct {
	json_t *list;
	int failed;
} revoked_list;

static void add_revoked(void *arg, const cs_revocation_record *rec)
{
	revoked_list *l = arg;
	if (json_array_append_new(l->list, json_pack("{s:s, s:s, s:s}", "id", rec->cert_id, "revoked_at",
						      rec->revoked_at, "reason", rec->reason)) != 0)
		l->failed = 1;
}

/* The revocations (one snapshot: the list and its version agree). */
static cs_err read_revocations(cs_store *store, json_t **list, int64_t *count, int64_t *rowid)
{
	revoked_list l = {json_array(), 0};
	*list = NULL;
	cs_err r = l.list != NULL ? cs_store_read_begin(store) : CS_E_NOMEM;
	if (r != CS_OK) {
		json_decref(l.list);
		return r;
	}
	if ((r = cs_store_revocations_version(store, count, rowid)) == CS_OK)
		r = cs_store_revocations_each(store, add_revoked, &l);
	cs_store_read_end(store);
	if (r == CS_OK && l.failed)
		r = CS_E_NOMEM;
	if (r != CS_OK) {
		json_decref(l.list);
		return r;
	}
	*list = l.list;
	return CS_OK;
}

static void revocations_failed(cs_key_watch *w, const char *what, cs_err r)
{
	pthread_mutex_lock(&w->mu);
	int first = !w->rev_failing;
	w->rev_failing = 1;
	int64_t until = w->rev_next_update;
	pthread_mutex_unlock(&w->mu);
	if (!first)
		return;
	char when[32] = "";
	if (until > 0)
		cs_audit_time_format(until * 1000, when);
	cs_log_error("the revocation list cannot be %s (%s); %s%s", what, cs_strerror(r),
		     until > 0 ? "the last one is served until its next_update " : "none is served",
		     when);
}

static void poll_revocations(cs_key_watch *w, cs_store *store, int64_t now_ms)
{
	cs_app *app = w->app;
	int64_t count = 0, rowid = 0, now = now_ms / 1000;
	cs_err r = cs_store_revocations_version(store, &count, &rowid);
	if (r != CS_OK) {
		revocations_failed(w, "read", r);
		return;
	}
	cs_signer *signer = cs_signer_acquire(app->signer);
	pthread_mutex_lock(&w->mu);
	int current = w->rev_jws != NULL && count == w->rev_count && rowid == w->rev_rowid &&
		      now - w->rev_iat < CS_REVOCATIONS_RESIGN_S &&
		      (signer == NULL || strcmp(w->rev_kid, cs_signer_kid(signer)) == 0);
	pthread_mutex_unlock(&w->mu);
	if (current || signer == NULL) {
		if (!current)
			revocations_failed(w, "signed", CS_E_NO_ACTIVE_KEY);
		cs_signer_free(signer);
		return;
	}
	json_t *list = NULL, *claims = NULL;
	char *jws = NULL;
	if ((r = read_revocations(store, &list, &count, &rowid)) != CS_OK) {
		cs_signer_free(signer);
		revocations_failed(w, "read", r);
		return;
	}
	size_t n = json_array_size(list);
	claims = json_pack("{s:s, s:I, s:I, s:o}", "iss", app->cfg->server.public_base_url, "iat", (json_int_t)now,
			   "next_update", (json_int_t)(now + CS_REVOCATIONS_VALID_S), "revoked", list);
	r = claims != NULL ? cs_signer_jws(signer, CS_REVOCATIONS_TYP, claims, &jws) : CS_E_NOMEM;
	json_decref(claims);
	if (r != CS_OK) {
		cs_signer_free(signer);
		revocations_failed(w, "signed", r);
		return;
	}
	pthread_mutex_lock(&w->mu);
	int was_failing = w->rev_failing, first = w->rev_jws == NULL;
	int changed = first || count != w->rev_count || rowid != w->rev_rowid;
	free(w->rev_jws);
	w->rev_jws = jws;
	w->rev_iat = now;
	w->rev_next_update = now + CS_REVOCATIONS_VALID_S;
	w->rev_count = count;
	w->rev_rowid = rowid;
	snprintf(w->rev_kid, sizeof(w->rev_kid), "%s", cs_signer_kid(signer));
	w->rev_failing = 0;
	pthread_mutex_unlock(&w->mu);
	if (changed || was_failing)
		cs_log_info("revocation list signed with key %s: %zu certificate(s) revoked", cs_signer_kid(signer), n);
	else
		cs_log_debug("revocation list signed again with key %s: %zu certificate(s) revoked",
			     cs_signer_kid(signer), n);
	cs_signer_free(signer);
}

cs_err cs_key_watch_poll(cs_key_watch *w, cs_store *store, int64_t now_ms)
{
	cs_err r = poll_key(w, store);
	poll_revocations(w, store, now_ms);
	return r;
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct {
	cs_key_watch *w;
	cs_store *store;
} watch_thread;

static void *watch_run(void *arg)
{
	watch_thread *t = arg;
	cs_key_watch *w = t->w;
	pthread_mutex_lock(&w->mu);
	while (!w->stop) {
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += CS_KEY_POLL_MS / 1000;
		until.tv_nsec += (long)(CS_KEY_POLL_MS % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		while (!w->stop && pthread_cond_timedwait(&w->wake, &w->mu, &until) != ETIMEDOUT)
			;
		if (w->stop)
			break;
		pthread_mutex_unlock(&w->mu);
		(void)cs_key_watch_poll(w, t->store, wall_ms());
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	cs_store_close(t->store);
	free(t);
	return NULL;
}

cs_err cs_key_watch_start(cs_key_watch *w)
{
	watch_thread *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return CS_E_NOMEM;
	t->w = w;
	cs_err r = cs_store_open(w->app->cfg->store.path, &t->store);
	if (r != CS_OK) {
		cs_log_error("the key watch cannot open the store: %s", cs_strerror(r));
		free(t);
		return r;
	}
	(void)cs_key_watch_poll(w, t->store, wall_ms());
	/* signals go to the main thread (sigtimedwait) only */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int rc = pthread_create(&w->thread, NULL, watch_run, t);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		cs_store_close(t->store);
		free(t);
		cs_log_error("the key watch cannot start: %s", strerror(rc));
		return CS_E_INTERNAL;
	}
	w->started = 1;
	return CS_OK;
}

void cs_key_watch_stop(cs_key_watch *w)
{
	if (w == NULL || !w->started)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = 1;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	w->started = 0;
}

void cs_key_watch_free(cs_key_watch *w)
{
	if (w == NULL)
		return;
	cs_key_watch_stop(w);
	pthread_cond_destroy(&w->wake);
	pthread_mutex_destroy(&w->mu);
	free(w->seen_kid);
	free(w->seen_x5c);
	free(w->rev_jws);
	free(w);
}

cs_err cs_key_watch_revocations(cs_key_watch *w, int64_t now_ms, char **jws)
{
	*jws = NULL;
	if (w == NULL)
		return CS_E_NOT_FOUND;
	pthread_mutex_lock(&w->mu);
	cs_err r = CS_E_NOT_FOUND;
	if (w->rev_jws != NULL && now_ms / 1000 < w->rev_next_update)
		r = (*jws = strdup(w->rev_jws)) != NULL ? CS_OK : CS_E_NOMEM;
	pthread_mutex_unlock(&w->mu);
	return r;
}
