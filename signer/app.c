/* app: see app.h. The token's description (the certificates'
 * entropy_source claim) and its FIPS 140 validation; a key's warrant (the
 * daemon's own check of dual control); the key watch. */
#include "app.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <unistd.h>

#include "audit.h"
#include "ceremony.h"
#include "cs_log.h"
#include "ec_util.h"
#include "jose.h"
#include "ledger.h"
#include "service.h"
#include "store_target.h"

/* who activated a key before ceremonies existed (schema 7 copied it from
 * the audit log; NULL when the log no longer held it): a store's first key
 * then, as CS_BOOTSTRAP_ACTOR now */
#define LEGACY_ACTOR "system"
/* the rollover statement (tools/admin_ceremony.c signs it) */
#define ROLLOVER_TYPE "credsign-rollover/v1"
#define ROLLOVER_TYP "credsign-rollover+jws"

int cs_validation_meets(const char *validated, const char *required)
{
	if (required == NULL)
		return 1;
	if (validated == NULL)
		return 0;
	return strcmp(validated, required) == 0 ||
	       (strcmp(required, "FIPS 140-2") == 0 && strcmp(validated, "FIPS 140-3") == 0);
}

cs_err cs_app_profiles_new(cs_app *app)
{
	const cs_config *cfg = app->cfg;
	size_t n = cfg != NULL ? cfg->signing.nprofiles : 0;
	app->profiles = NULL;
	app->nprofiles = 0;
	if (n == 0)
		return CS_OK;
	cs_app_profile *p = calloc(n, sizeof(*p));
	if (p == NULL)
		return CS_E_NOMEM;
	for (size_t i = 0; i < n; i++) {
		p[i].cfg = &cfg->signing.profiles[i];
		if (cs_signer_slot_new(NULL, &p[i].signer) != CS_OK) {
			for (size_t j = 0; j < i; j++)
				cs_signer_slot_free(p[j].signer);
			free(p);
			return CS_E_NOMEM;
		}
	}
	app->profiles = p;
	app->nprofiles = n;
	return CS_OK;
}

void cs_app_profiles_free(cs_app *app)
{
	for (size_t i = 0; i < app->nprofiles; i++)
		cs_signer_slot_free(app->profiles[i].signer);
	free(app->profiles);
	app->profiles = NULL;
	app->nprofiles = 0;
}

cs_app_profile *cs_app_profile_find(cs_app *app, const char *name)
{
	for (size_t i = 0; app != NULL && name != NULL && i < app->nprofiles; i++)
		if (app->profiles[i].cfg != NULL && app->profiles[i].cfg->name != NULL &&
		    strcmp(app->profiles[i].cfg->name, name) == 0)
			return &app->profiles[i];
	return NULL;
}

void cs_app_bootstrap_actor(const char *profile, char actor[CS_BOOTSTRAP_ACTOR_MAX])
{
	if (profile == NULL)
		snprintf(actor, CS_BOOTSTRAP_ACTOR_MAX, "%s", CS_BOOTSTRAP_ACTOR);
	else
		snprintf(actor, CS_BOOTSTRAP_ACTOR_MAX, CS_PROFILE_BOOTSTRAP_PREFIX "%.*s.key",
			 CS_CONFIG_PROFILE_NAME_MAX, profile);
}

/* One configured version against the token's: added to checked when set
 * (*nomem set when it could not be: the claim is signed, never without it). */
static int check_token_version(json_t *checked, const char *name, const char *configured,
			       unsigned major, unsigned minor, char *problem, size_t cap, int *nomem)
{
	if (configured == NULL)
		return 1;
	char reported[16];
	snprintf(reported, sizeof(reported), "%u.%u", major, minor);
	int match = strcmp(configured, reported) == 0;
	if (json_object_set_new(checked, name,
				json_pack("{s:s, s:s, s:b}", "configured", configured, "token", reported, "match",
					  match)) != 0)
		*nomem = 1;
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
	int ok = !none, nomem = 0;
	if (!none && checked != NULL) {
		const char *hw = cfg->pkcs11.validation.hardware_version,
			   *fw = cfg->pkcs11.validation.firmware_version,
			   *lib = cfg->pkcs11.validation.library_version;
		ok &= check_token_version(checked, "hardware_version", hw, info->hw_major,
					  info->hw_minor, problem, cap, &nomem);
		ok &= check_token_version(checked, "firmware_version", fw, info->fw_major,
					  info->fw_minor, problem, cap, &nomem);
		ok &= check_token_version(checked, "library_version", lib, info->module_major,
					  info->module_minor, problem, cap, &nomem);
	}
	if (nomem) {
		json_decref(checked);
		*claim = NULL;
		return CS_E_NOMEM;
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

/* ---- the daemon's own check of dual control: a key's warrant -----------------------
 * credsign-admin runs ceremonies, but as the user who owns the store and
 * the token's PIN, with whatever configuration it is given; and that user
 * can edit the store's rows. So the daemon puts no key in force on the
 * store's word: it recomputes what the officers signed and checks their
 * signatures under its own configuration (its officer CA, CRL, roster and
 * quorum), and the new key's signature of the rollover statement. Reads
 * only, in the caller's snapshot; nothing logged (the watch and start-up
 * report). */

static int same_text(const char *a, const char *b)
{
	return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

static void whyf(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void whyf(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
}

/* Every recorded key: whether it is of the scope (the profile asked
 * about; NULL: the certificate keys), for the rollover statements. */
typedef struct {
	char *kid;
	int in_scope;
} scoped_kid;

/* The key asked about, the keys of its scope and, for a bootstrap,
 * another key of the scope that ever signed. */
typedef struct {
	const char *profile; /* the scope */
	const char *kid;
	int found;
	char *activated_by, *activated_ceremony, *recorded_profile;
	char other[64], other_status[16]; /* "" none */
	/* for the JWKS (cs_app_key_publishable): kid's recorded JWK, and the
	 * other keys of the scope that say they were made active without a
	 * ceremony as its first key (actor: the scope's bootstrap actor) */
	char *jwk_json;
	char actor[CS_BOOTSTRAP_ACTOR_MAX];
	size_t claimants;
	scoped_kid *kids;
	size_t nkids, cap;
	cs_err err;
} key_scan;

/* Whether a key of profile activated without a ceremony by activated_by
 * says it was the scope's first key: by the scope's bootstrap actor, or,
 * a certificate key, before ceremonies existed ("system" or not recorded). */
static int bootstrap_claim(const char *profile, const char *activated_by, const char *actor)
{
	return same_text(activated_by, actor) ||
	       (profile == NULL && (activated_by == NULL || strcmp(activated_by, LEGACY_ACTOR) == 0));
}

static void scan_key(void *arg, const cs_key_info *k)
{
	key_scan *ks = arg;
	int in_scope = same_text(k->profile, ks->profile);
	if (ks->err == CS_OK && ks->nkids == ks->cap) {
		size_t cap = ks->cap == 0 ? 16 : ks->cap * 2;
		scoped_kid *more = realloc(ks->kids, cap * sizeof(*more));
		if (more == NULL)
			ks->err = CS_E_NOMEM;
		else
			ks->kids = more, ks->cap = cap;
	}
	if (ks->err == CS_OK) {
		ks->kids[ks->nkids].in_scope = in_scope;
		if ((ks->kids[ks->nkids].kid = strdup(k->kid)) == NULL)
			ks->err = CS_E_NOMEM;
		else
			ks->nkids++;
	}
	if (strcmp(k->kid, ks->kid) == 0) {
		ks->found = 1;
		free(ks->activated_by);
		free(ks->activated_ceremony);
		free(ks->recorded_profile);
		free(ks->jwk_json);
		ks->activated_by = k->activated_by != NULL ? strdup(k->activated_by) : NULL;
		ks->activated_ceremony = k->activated_ceremony != NULL ? strdup(k->activated_ceremony) : NULL;
		ks->recorded_profile = k->profile != NULL ? strdup(k->profile) : NULL;
		ks->jwk_json = k->jwk_json != NULL ? strdup(k->jwk_json) : NULL;
		if ((k->activated_by != NULL && ks->activated_by == NULL) ||
		    (k->activated_ceremony != NULL && ks->activated_ceremony == NULL) ||
		    (k->profile != NULL && ks->recorded_profile == NULL) || (k->jwk_json != NULL && ks->jwk_json == NULL))
			ks->err = CS_E_NOMEM;
	} else if (in_scope && ks->other[0] == '\0' && cs_service_key_published(k)) {
		snprintf(ks->other, sizeof(ks->other), "%s", k->kid);
		snprintf(ks->other_status, sizeof(ks->other_status), "%s", k->status);
	}
	if (in_scope && strcmp(k->kid, ks->kid) != 0 && k->activated_ceremony == NULL && cs_service_key_published(k) &&
	    bootstrap_claim(ks->profile, k->activated_by, ks->actor))
		ks->claimants++;
}

static void key_scan_free(key_scan *ks)
{
	for (size_t i = 0; i < ks->nkids; i++)
		free(ks->kids[i].kid);
	free(ks->kids);
	free(ks->activated_by);
	free(ks->activated_ceremony);
	free(ks->recorded_profile);
	free(ks->jwk_json);
}

/* Whether a rollover statement making new_kid active is of the scope: its
 * new key is; a key the store has not recorded counts in every scope (a
 * statement nothing explains is never ignored). */
static int rollover_in_scope(const key_scan *ks, const char *new_kid)
{
	for (size_t i = 0; i < ks->nkids; i++)
		if (strcmp(ks->kids[i].kid, new_kid) == 0)
			return ks->kids[i].in_scope;
	return 1;
}

/* The rollover statement of one ceremony, and the newest of all those of
 * the scope (keys: its keys). */
typedef struct {
	const key_scan *keys;
	const char *ceremony;
	char *statement, *new_kid; /* of ceremony; NULL: none */
	size_t count;
	char last_ceremony[64], last_new_kid[64];
	cs_err err;
} rollover_scan;

static void scan_rollover(void *arg, const cs_rollover_record *ro)
{
	rollover_scan *rs = arg;
	if (!rollover_in_scope(rs->keys, ro->new_kid))
		return;
	rs->count++;
	snprintf(rs->last_ceremony, sizeof(rs->last_ceremony), "%s", ro->ceremony_id);
	snprintf(rs->last_new_kid, sizeof(rs->last_new_kid), "%s", ro->new_kid);
	if (rs->ceremony == NULL || strcmp(ro->ceremony_id, rs->ceremony) != 0)
		return;
	free(rs->statement);
	free(rs->new_kid);
	rs->statement = strdup(ro->statement_json);
	rs->new_kid = strdup(ro->new_kid);
	if (rs->statement == NULL || rs->new_kid == NULL)
		rs->err = CS_E_NOMEM;
}

/* Whether one signature of a general JWS (RFC 7515 7.2.1) is kid's
 * rollover signature over payload, verified with pub. */
static int rollover_signed_by(const json_t *sig, const char *payload, const char *kid, EVP_PKEY *pub)
{
	const char *prot = json_string_value(json_object_get(sig, "protected"));
	const char *value = json_string_value(json_object_get(sig, "signature"));
	uint8_t *raw = NULL;
	size_t n = 0;
	json_t *hdr = NULL, *h = NULL, *p = NULL;
	int ok = 0;
	if (prot == NULL || value == NULL || cs_b64url_decode(prot, &raw, &n) != CS_OK)
		return 0;
	hdr = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, NULL);
	free(raw);
	if (same_text(json_string_value(json_object_get(hdr, "kid")), kid)) {
		size_t len = strlen(prot) + strlen(payload) + strlen(value) + 3;
		char *compact = malloc(len);
		if (compact != NULL) {
			snprintf(compact, len, "%s.%s.%s", prot, payload, value);
			ok = cs_jws_es256_verify(compact, pub, &h, &p) == CS_OK &&
			     same_text(json_string_value(json_object_get(h, "typ")), ROLLOVER_TYP);
			free(compact);
		}
	}
	json_decref(h);
	json_decref(p);
	json_decref(hdr);
	return ok;
}

/* The rollover statement of ceremony id makes kid (a key of profile; NULL:
 * a certificate key, and the statement names no profile) active and kid
 * signed it. old[old_len] (when old is not NULL): the old_kid it signed
 * ("" none). */
static cs_err rollover_check(const char *statement, const char *id, const char *kid, const char *profile, char *old,
			     size_t old_len, char *why, size_t len)
{
	json_t *st = json_loads(statement, JSON_REJECT_DUPLICATES, NULL), *claims = NULL;
	const char *payload = json_string_value(json_object_get(st, "payload"));
	uint8_t *raw = NULL;
	size_t n = 0;
	EVP_PKEY *pub = NULL;
	cs_err r = CS_E_CEREMONY_REFUSED;
	if (payload != NULL && cs_b64url_decode(payload, &raw, &n) == CS_OK)
		claims = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, NULL);
	free(raw);
	const char *new_kid = json_string_value(json_object_get(claims, "new_kid"));
	const char *for_id = json_string_value(json_object_get(claims, "ceremony_id"));
	const json_t *sigs = json_object_get(st, "signatures");
	size_t i;
	const json_t *sig;
	if (!same_text(json_string_value(json_object_get(claims, "type")), ROLLOVER_TYPE) || !json_is_array(sigs)) {
		whyf(why, len, "the rollover statement stored for ceremony %s is not a %s statement", id,
		     ROLLOVER_TYPE);
	} else if (!same_text(for_id, id) || !same_text(new_kid, kid)) {
		whyf(why, len, "the rollover statement stored for ceremony %s is for ceremony %.64s and key %.64s", id,
		     for_id != NULL ? for_id : "(none)", new_kid != NULL ? new_kid : "(none)");
	} else if (json_object_get(claims, "profile") != NULL
			   ? !same_text(json_string_value(json_object_get(claims, "profile")), profile)
			   : profile != NULL) {
		whyf(why, len, "the rollover statement of ceremony %s is not one of %s%.64s", id,
		     profile != NULL ? "signing profile " : "the certificate keys", profile != NULL ? profile : "");
	} else if ((pub = cs_jwk_to_pkey(json_object_get(claims, "new_jwk"), kid)) == NULL) {
		whyf(why, len, "the rollover statement of ceremony %s: its new_jwk is not the P-256 key %s", id, kid);
	} else {
		json_array_foreach(sigs, i, sig) if (rollover_signed_by(sig, payload, kid, pub)) r = CS_OK;
		if (r != CS_OK)
			whyf(why, len, "the rollover statement of ceremony %s carries no valid signature by key %s", id,
			     kid);
		else if (old != NULL)
			snprintf(old, old_len, "%s", json_is_string(json_object_get(claims, "old_kid"))
							     ? json_string_value(json_object_get(claims, "old_kid"))
							     : "");
	}
	EVP_PKEY_free(pub);
	json_decref(claims);
	json_decref(st);
	return r;
}

/* RFC 3339 to milliseconds (cs_ceremony_time_parse and up to 3 digits of
 * fraction); 0 when unreadable. */
static int time_ms(const char *text, int64_t *ms)
{
	time_t s = 0;
	if (text == NULL || cs_ceremony_time_parse(text, &s) != CS_OK)
		return 0;
	int64_t frac = 0;
	const char *dot = strchr(text, '.');
	for (int i = 1; i <= 3; i++)
		frac = frac * 10 + (dot != NULL && dot[i] >= '0' && dot[i] <= '9' ? dot[i] - '0' : 0);
	*ms = (int64_t)s * 1000 + frac;
	return 1;
}

/* Why approval i of doc does not count under o (bad[0] '\0': it counts);
 * ids[0..i-1] the officers of the approvals before (code "" and a name:
 * counted), ids[i] filled. Each is checked at its own approval time,
 * within the ceremony's life and not after its execution. */
static void approval_refusal(const struct cs_officers *o, const cs_ceremony_doc *doc, const char *canonical,
			     size_t i, cs_officer_id *ids, char bad[CS_CEREMONY_WHY_MAX])
{
	const cs_ceremony_record *c = &doc->c;
	const cs_approval_record *a = &doc->approvals[i];
	cs_officer_id *v = &ids[i];
	time_t at = 0; /* the officer is checked as of this second */
	int64_t created = 0, expires = 0, executed = 0, at_ms = 0; /* compared to the millisecond */
	bad[0] = '\0';
	if (!same_text(a->ceremony_id, c->id)) {
		snprintf(bad, CS_CEREMONY_WHY_MAX, "recorded for another ceremony");
	} else if (!time_ms(c->created_at, &created) || !time_ms(c->expires_at, &expires) ||
		   !time_ms(c->executed_at, &executed) || !time_ms(a->approved_at, &at_ms) ||
		   cs_ceremony_time_parse(a->approved_at, &at) != CS_OK || at_ms < created || at_ms > expires ||
		   at_ms > executed) {
		snprintf(bad, CS_CEREMONY_WHY_MAX, "approved at %.40s, outside the ceremony's life (%.40s to %.40s, "
			 "executed %.40s)", a->approved_at, c->created_at, c->expires_at, c->executed_at);
	} else if (cs_officers_check_historic(o, a->cert_pem, at, v) != CS_OK) {
		snprintf(bad, CS_CEREMONY_WHY_MAX, "%s", v->why);
	} else if (!same_text(a->fingerprint, v->fingerprint) || !same_text(a->officer, v->name)) {
		snprintf(bad, CS_CEREMONY_WHY_MAX, "recorded as officer '%.64s' (%.80s), its certificate is %s's (%s)",
			 a->officer, a->fingerprint, v->name, v->fingerprint);
	} else if (cs_approval_verify(a->cert_pem, a->sig_alg, a->signature_b64, (const uint8_t *)canonical,
				      strlen(canonical), bad) != CS_OK) {
		return; /* bad says why */
	} else {
		for (size_t j = 0; j < i; j++)
			if (ids[j].code[0] == '\0' && ids[j].name[0] != '\0' &&
			    (strcmp(ids[j].fingerprint, v->fingerprint) == 0 || strcmp(ids[j].name, v->name) == 0 ||
			     (v->spki[0] != '\0' && strcmp(ids[j].spki, v->spki) == 0))) {
				snprintf(bad, CS_CEREMONY_WHY_MAX,
					 "officer %s counted already (the same name, certificate or key)", v->name);
				break;
			}
	}
	if (bad[0] != '\0' && v->code[0] == '\0')
		snprintf(v->code, sizeof(v->code), "not_counted");
}

/* The fewest approvals an activation ever needed (cs_officers_quorum's
 * floor): what the JWKS judges a past activation by, as the store does not
 * record the quorum in force when it was executed (docs/keys.md). */
#define ACTIVATE_QUORUM_EVER 2

/* Whether the approvals of doc reach the quorum of activate under o
 * (historic: ACTIVATE_QUORUM_EVER, not today's). */
static cs_err approvals_count(const struct cs_officers *o, const cs_ceremony_doc *doc, const char *canonical,
			      int historic, char *why, size_t len)
{
	cs_officer_id *ids = doc->napprovals > 0 ? calloc(doc->napprovals, sizeof(*ids)) : NULL;
	if (doc->napprovals > 0 && ids == NULL)
		return CS_E_NOMEM;
	char first[CS_CEREMONY_WHY_MAX + 128] = "", bad[CS_CEREMONY_WHY_MAX];
	int counted = 0, required = historic ? ACTIVATE_QUORUM_EVER : cs_officers_quorum(o, CS_CEREMONY_ACTIVATE);
	for (size_t i = 0; i < doc->napprovals; i++) {
		approval_refusal(o, doc, canonical, i, ids, bad);
		if (bad[0] == '\0')
			counted++;
		else if (first[0] == '\0')
			snprintf(first, sizeof(first), "; approval %zu (%.64s) does not count: %s", i + 1,
				 doc->approvals[i].officer, bad);
	}
	free(ids);
	if (counted >= required)
		return CS_OK;
	whyf(why, len,
	     "ceremony %s: %d valid approval(s) by distinct officers of this configuration, activate needs %d%s%s",
	     doc->c.id, counted, required, historic ? " (the fewest it ever needed)" : "", first);
	return CS_E_CEREMONY_REFUSED;
}

/* Whether a ceremony was executed within its lifetime (created_at ..
 * expires_at, which the officers signed): credsign-admin refuses to execute
 * an expired one, so a record that says otherwise was not made by it. */
static int executed_in_time(const cs_ceremony_record *c)
{
	int64_t created = 0, expires = 0, executed = 0;
	return c->executed_at != NULL && time_ms(c->created_at, &created) && time_ms(c->expires_at, &expires) &&
	       time_ms(c->executed_at, &executed) && created <= executed && executed <= expires;
}

/* An executed ceremony that took kid out of use (retire, compromise,
 * destroy): such a key is never warranted again, whatever its row says. */
typedef struct {
	const char *kid;
	char found[CS_ID_MAX + 16];
} retiring_scan;

static void scan_retiring(void *arg, const cs_ceremony_record *c)
{
	retiring_scan *rs = arg;
	if (rs->found[0] == '\0' && same_text(c->subject, rs->kid) && same_text(c->state, "executed") &&
	    (same_text(c->action, "retire") || same_text(c->action, "compromise") || same_text(c->action, "destroy")))
		snprintf(rs->found, sizeof(rs->found), "%s %s", c->action, c->id);
}

/* The activating ceremony of kid: recorded as signed, approved under o,
 * and its rollover statement; the newest of the scope unless any (the
 * JWKS: a key superseded since signed while it was active; its approvals
 * judged against the fewest activate ever needed, not today's quorum, so
 * that raising the quorum withholds no key activated before). old[old_len]
 * (not NULL): the old_kid its statement signed. */
static cs_err ceremony_check(cs_store *store, const struct cs_officers *o, const char *officers_why,
			     const key_scan *keys, const char *id, int any, char *old, size_t old_len,
			     cs_key_warrant *out, char *why, size_t len)
{
	const char *kid = keys->kid;
	cs_ceremony_doc doc = {0};
	rollover_scan rs = {.keys = keys, .ceremony = id};
	char *canonical = NULL;
	cs_err r = cs_store_ceremony_get(store, id, cs_ceremony_doc_on_ceremony, cs_ceremony_doc_on_approval, &doc);
	if (r == CS_OK)
		r = doc.status;
	if (r == CS_OK && (r = cs_store_rollovers_each(store, scan_rollover, &rs)) == CS_OK)
		r = rs.err;
	if (r == CS_E_NOT_FOUND) {
		whyf(why, len, "its activating ceremony %s is not in the store", id);
		r = CS_E_CEREMONY_REFUSED;
	} else if (r != CS_OK) {
		/* the store's error */
	} else if (!same_text(doc.c.action, "activate") || !same_text(doc.c.subject, kid)) {
		whyf(why, len, "its activating ceremony %s is a%s %s of %.64s, not the activation of this key", id,
		     same_text(doc.c.action, "activate") ? "n" : "", doc.c.action, doc.c.subject);
		r = CS_E_CEREMONY_REFUSED;
	} else if (!same_text(doc.c.state, "executed") || doc.c.executed_at == NULL) {
		whyf(why, len, "its activating ceremony %s was not executed", id);
		r = CS_E_CEREMONY_REFUSED;
	} else if (!executed_in_time(&doc.c)) {
		whyf(why, len, "its activating ceremony %s is recorded executed at %s, outside its lifetime %s .. %s",
		     id, doc.c.executed_at, doc.c.created_at != NULL ? doc.c.created_at : "?",
		     doc.c.expires_at != NULL ? doc.c.expires_at : "?");
		r = CS_E_CEREMONY_REFUSED;
	} else if (o == NULL) {
		whyf(why, len, "its activating ceremony %s cannot be verified here: %s", id, officers_why);
		r = CS_E_CEREMONY_REFUSED;
	} else if ((r = cs_ceremony_canonical(&doc.c, &canonical)) != CS_OK ||
		   strcmp(canonical, doc.c.canonical) != 0) {
		if (r != CS_E_NOMEM) {
			whyf(why, len, "ceremony %s: its recorded fields are not the bytes the officers signed", id);
			r = CS_E_CEREMONY_REFUSED;
		}
	} else if ((r = approvals_count(o, &doc, canonical, any, why, len)) != CS_OK) {
		/* why says it */
	} else if (rs.statement == NULL || !same_text(rs.new_kid, kid)) {
		whyf(why, len, "ceremony %s has no rollover statement making key %s active", id, kid);
		r = CS_E_CEREMONY_REFUSED;
	} else if ((r = rollover_check(rs.statement, id, kid, keys->profile, old, old_len, why, len)) != CS_OK) {
		/* why says it */
	} else if (!any && strcmp(rs.last_ceremony, id) != 0) {
		whyf(why, len, "a later activation superseded ceremony %s: the newest rollover statement%s%s (ceremony "
			       "%s) makes key %s active",
		     id, keys->profile != NULL ? " of signing profile " : "", keys->profile != NULL ? keys->profile : "",
		     rs.last_ceremony, rs.last_new_kid);
		r = CS_E_CEREMONY_REFUSED;
	} else {
		snprintf(out->ceremony, sizeof(out->ceremony), "%s", id);
		snprintf(out->created_at, sizeof(out->created_at), "%s", doc.c.created_at);
		snprintf(out->executed_at, sizeof(out->executed_at), "%s", doc.c.executed_at);
	}
	free(canonical);
	free(rs.statement);
	free(rs.new_kid);
	cs_ceremony_doc_free(&doc);
	return r;
}

/* What a key of the scope is recorded as, for messages: "a certificate
 * key" or "a key of signing profile NAME" into buf. */
static const char *scope_text(const char *profile, char *buf, size_t len)
{
	if (profile == NULL)
		snprintf(buf, len, "a certificate key");
	else
		snprintf(buf, len, "a key of signing profile %.64s", profile);
	return buf;
}

/* Without a ceremony: the scope's first and only key (ks: the scan). */
static cs_err bootstrap_check(cs_store *store, const key_scan *ks, cs_key_warrant *out, char *why, size_t why_len)
{
	char actor[CS_BOOTSTRAP_ACTOR_MAX], first[96];
	const char *by = ks->activated_by != NULL ? ks->activated_by : "nobody recorded";
	rollover_scan rs = {.keys = ks};
	cs_app_bootstrap_actor(ks->profile, actor);
	if (ks->profile != NULL)
		snprintf(first, sizeof(first), "signing profile %.40s's first", ks->profile);
	else
		snprintf(first, sizeof(first), "a store's first");
	/* before ceremonies existed (certificate keys only): "system" or none */
	int legacy = ks->profile == NULL && (ks->activated_by == NULL || strcmp(ks->activated_by, LEGACY_ACTOR) == 0);
	cs_err r;
	if (!legacy && !same_text(ks->activated_by, actor)) {
		whyf(why, why_len,
		     "it was made active without a ceremony (by %.128s): only %s key, recorded from %s by %s, is "
		     "active without one",
		     by, first, ks->profile != NULL ? actor + strlen("config:") : "pkcs11.signing_key", actor);
		return CS_E_CEREMONY_REFUSED;
	}
	if ((r = cs_store_rollovers_each(store, scan_rollover, &rs)) != CS_OK)
		return r; /* the store's error */
	if (rs.count > 0) {
		whyf(why, why_len,
		     "it was activated without a ceremony (by %s), as only %s and only active key is, but the store "
		     "holds %zu rollover statement(s)%s: key %s was activated by ceremony %s",
		     by, first, rs.count, ks->profile != NULL ? " of the profile" : "", rs.last_new_kid,
		     rs.last_ceremony);
		return CS_E_CEREMONY_REFUSED;
	}
	if (ks->other[0] != '\0') {
		whyf(why, why_len,
		     "it was activated without a ceremony (by %s), as only %s and only active key is, but key %s (%s) "
		     "was active too",
		     by, first, ks->other, ks->other_status);
		return CS_E_CEREMONY_REFUSED;
	}
	r = ks->profile == NULL ? cs_store_cert_by_other_key(store, ks->kid)
				: cs_store_signature_by_other_key(store, ks->profile, ks->kid);
	if (r == CS_OK) {
		whyf(why, why_len,
		     "it was activated without a ceremony (by %s), as only %s key is, but the store holds %s signed "
		     "by another key",
		     by, first, ks->profile == NULL ? "certificates" : "signatures of the profile");
		return CS_E_CEREMONY_REFUSED;
	}
	if (r != CS_E_NOT_FOUND)
		return r; /* the store's error */
	out->bootstrap = 1;
	return CS_OK;
}

cs_err cs_app_key_warrant_in(cs_store *store, const struct cs_officers *officers, const char *officers_why,
			     const char *profile, const char *kid, cs_key_warrant *out, char *why, size_t why_len)
{
	key_scan ks = {.profile = profile, .kid = kid};
	char scope[96], recorded[96];
	memset(out, 0, sizeof(*out));
	why[0] = '\0';
	retiring_scan retiring = {.kid = kid};
	cs_err r = cs_store_keys_info(store, scan_key, &ks);
	if (r == CS_OK)
		r = ks.err;
	if (r == CS_OK)
		r = cs_store_ceremonies_each(store, scan_retiring, &retiring);
	if (r != CS_OK) {
		/* the store's error */
	} else if (retiring.found[0] != '\0') {
		whyf(why, why_len, "ceremony %s took key %s out of use: it never signs again", retiring.found, kid);
		r = CS_E_CEREMONY_REFUSED;
	} else if (!ks.found) {
		whyf(why, why_len, "the store has not recorded key %s", kid);
		r = CS_E_CEREMONY_REFUSED;
	} else if (!same_text(ks.recorded_profile, profile)) {
		whyf(why, why_len, "key %s is recorded as %s, not as %s", kid,
		     scope_text(ks.recorded_profile, recorded, sizeof(recorded)), scope_text(profile, scope, sizeof(scope)));
		r = CS_E_CEREMONY_REFUSED;
	} else if (ks.activated_ceremony != NULL && !cs_ceremony_id_valid(ks.activated_ceremony)) {
		whyf(why, why_len, "its activating ceremony '%.64s' is not a ceremony id", ks.activated_ceremony);
		r = CS_E_CEREMONY_REFUSED;
	} else if (ks.activated_ceremony != NULL) {
		r = ceremony_check(store, officers, officers_why, &ks, ks.activated_ceremony, 0, NULL, 0, out, why,
				   why_len);
	} else {
		r = bootstrap_check(store, &ks, out, why, why_len);
	}
	key_scan_free(&ks);
	return r;
}

cs_err cs_app_key_warrant(cs_store *store, const struct cs_officers *officers, const char *officers_why,
			  const char *kid, cs_key_warrant *out, char *why, size_t why_len)
{
	return cs_app_key_warrant_in(store, officers, officers_why, NULL, kid, out, why, why_len);
}

int cs_app_key_warrant_newer(const cs_key_warrant *floor, const cs_key_warrant *next, char *why, size_t why_len)
{
	if (floor->bootstrap || (!next->bootstrap && strcmp(floor->ceremony, next->ceremony) == 0))
		return 1; /* anything follows a bootstrap; the same ceremony again (its chain changed) */
	int64_t fc = 0, fe = 0, nc = 0, ne = 0;
	int older = next->bootstrap || !time_ms(next->created_at, &nc) || !time_ms(next->executed_at, &ne) ||
		    !time_ms(floor->created_at, &fc) || !time_ms(floor->executed_at, &fe) || nc < fc || ne < fe;
	if (!older)
		return 1;
	if (next->bootstrap)
		whyf(why, why_len,
		     "it is recorded as bootstrapped from pkcs11.signing_key, while the key in force came from "
		     "ceremony %s (executed %s): a key goes back to no older activation",
		     floor->ceremony, floor->executed_at);
	else
		whyf(why, why_len,
		     "its activating ceremony %s (started %s, executed %s) is older than ceremony %s (started %s, "
		     "executed %s) of the key put in force before: a key goes back to no older activation",
		     next->ceremony, next->created_at, next->executed_at, floor->ceremony, floor->created_at,
		     floor->executed_at);
	return 0;
}

/* ---- the keys the JWKS publishes (app.h) -------------------------------------------
 * The key watch puts in force only a key whose warrant holds; the JWKS
 * lists only keys that signed under such a warrant: the same checks, on
 * every key it lists, the newest-statement rule aside (a key superseded
 * since signed while it was active). */

/* The rollover statements of a scope (keys: its keys), as recorded. */
typedef struct {
	char *ceremony, *new_kid;
} rollover_row;

typedef struct {
	const key_scan *keys;
	rollover_row *rows;
	size_t n, cap;
	cs_err err;
} rollover_list;

static void collect_rollover(void *arg, const cs_rollover_record *ro)
{
	rollover_list *l = arg;
	if (l->err != CS_OK || !rollover_in_scope(l->keys, ro->new_kid))
		return;
	if (l->n == l->cap) {
		size_t cap = l->cap == 0 ? 8 : l->cap * 2;
		rollover_row *more = realloc(l->rows, cap * sizeof(*more));
		if (more == NULL) {
			l->err = CS_E_NOMEM;
			return;
		}
		l->rows = more, l->cap = cap;
	}
	rollover_row *row = &l->rows[l->n];
	row->ceremony = strdup(ro->ceremony_id);
	row->new_kid = strdup(ro->new_kid);
	l->n++;
	if (row->ceremony == NULL || row->new_kid == NULL)
		l->err = CS_E_NOMEM;
}

static void rollover_list_free(rollover_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->rows[i].ceremony);
		free(l->rows[i].new_kid);
	}
	free(l->rows);
}

/* A key made active without a ceremony (ks: the scan of its scope): this
 * node's configured key of the scope (configured: its kid; "" when the
 * scope is configured but its key could not be read), or the scope's
 * first key as a verified rollover statement of the scope says (its
 * old_kid). In a scope this node configures, never by counting the rows
 * that claim so: whoever writes the store adds rows. In a scope no longer
 * configured here (configured NULL: a signing profile removed, whose key
 * must still verify what it signed), the one row that claims to be its
 * first key, when no other does and no verified rollover says otherwise:
 * a second claimant withholds both. */
static cs_err first_key_check(cs_store *store, const struct cs_officers *o, const char *officers_why,
			      const key_scan *ks, const char *configured, char *why, size_t len)
{
	char scope[96];
	const char *by = ks->activated_by != NULL ? ks->activated_by : "nobody recorded";
	scope_text(ks->profile, scope, sizeof(scope));
	if (!bootstrap_claim(ks->profile, ks->activated_by, ks->actor)) {
		whyf(why, len, "it was made active without a ceremony (by %.128s): only the first key of its scope (%s), "
			       "recorded by %s, is",
		     by, scope, ks->actor);
		return CS_E_CEREMONY_REFUSED;
	}
	if (configured != NULL && configured[0] != '\0' && strcmp(configured, ks->kid) == 0)
		return CS_OK; /* the key this node bootstraps the scope with */
	rollover_list rl = {.keys = ks};
	cs_err r = cs_store_rollovers_each(store, collect_rollover, &rl);
	if (r == CS_OK)
		r = rl.err;
	size_t verified = 0;
	int named = 0;
	for (size_t i = 0; r == CS_OK && !named && i < rl.n; i++) {
		/* the successor's activation, checked as its own key's would be */
		key_scan next = *ks;
		next.kid = rl.rows[i].new_kid;
		char old[96] = "", sub[CS_KEY_WHY_MAX];
		cs_key_warrant w;
		cs_err c = ceremony_check(store, o, officers_why, &next, rl.rows[i].ceremony, 1, old, sizeof(old), &w,
					  sub, sizeof(sub));
		if (c == CS_OK) {
			verified++;
			named = strcmp(old, ks->kid) == 0;
		} else if (c != CS_E_CEREMONY_REFUSED) {
			r = c; /* the store's error */
		}
	}
	rollover_list_free(&rl);
	if (r != CS_OK || named)
		return r;
	if (configured == NULL && verified == 0 && ks->claimants == 0)
		return CS_OK; /* a scope not configured here: its one first key */
	if (configured == NULL && verified == 0) {
		whyf(why, len,
		     "it was made active without a ceremony (by %.128s), as the first key of its scope (%s), which this "
		     "node does not configure, and so were %zu other key(s): no verified rollover statement tells which "
		     "was",
		     by, scope, ks->claimants);
		return CS_E_CEREMONY_REFUSED;
	}
	whyf(why, len,
	     "it was made active without a ceremony (by %.128s), as the first key of its scope (%s), but it is not "
	     "this node's configured key of the scope (%s), and none of the %zu verified rollover statement(s) of "
	     "the scope names it as the key replaced",
	     by, scope, configured != NULL ? configured : "none known", verified);
	return CS_E_CEREMONY_REFUSED;
}

/* Whether the recorded JWK is the P-256 key whose thumbprint is kid. */
static int jwk_is_kid(const char *jwk_json, const char *kid)
{
	json_t *jwk = jwk_json != NULL ? json_loads(jwk_json, JSON_REJECT_DUPLICATES, NULL) : NULL;
	EVP_PKEY *pub = json_is_object(jwk) ? cs_jwk_to_pkey(jwk, kid) : NULL;
	int ok = pub != NULL;
	EVP_PKEY_free(pub);
	json_decref(jwk);
	return ok;
}

cs_err cs_app_key_publishable(cs_store *store, const struct cs_officers *officers, const char *officers_why,
			      const char *profile, const char *kid, const char *configured_kid, char *why,
			      size_t why_len)
{
	key_scan ks = {.profile = profile, .kid = kid};
	char scope[96], recorded[96];
	cs_key_warrant w;
	why[0] = '\0';
	cs_app_bootstrap_actor(profile, ks.actor);
	cs_err r = cs_store_keys_info(store, scan_key, &ks);
	if (r == CS_OK)
		r = ks.err;
	if (r != CS_OK) {
		/* the store's error */
	} else if (!ks.found) {
		whyf(why, why_len, "the store has not recorded key %s", kid);
		r = CS_E_CEREMONY_REFUSED;
	} else if (!same_text(ks.recorded_profile, profile)) {
		whyf(why, why_len, "key %s is recorded as %s, not as %s", kid,
		     scope_text(ks.recorded_profile, recorded, sizeof(recorded)), scope_text(profile, scope, sizeof(scope)));
		r = CS_E_CEREMONY_REFUSED;
	} else if (!jwk_is_kid(ks.jwk_json, kid)) {
		whyf(why, why_len, "its recorded JWK is not the P-256 key whose RFC 7638 thumbprint is its kid");
		r = CS_E_CEREMONY_REFUSED;
	} else if (ks.activated_ceremony != NULL && !cs_ceremony_id_valid(ks.activated_ceremony)) {
		whyf(why, why_len, "its activating ceremony '%.64s' is not a ceremony id", ks.activated_ceremony);
		r = CS_E_CEREMONY_REFUSED;
	} else if (ks.activated_ceremony != NULL) {
		r = ceremony_check(store, officers, officers_why, &ks, ks.activated_ceremony, 1, NULL, 0, &w, why,
				   why_len);
	} else {
		r = first_key_check(store, officers, officers_why, &ks, configured_kid, why, why_len);
	}
	key_scan_free(&ks);
	return r;
}

/* One field of a row digest: its length (or none) and its bytes. */
static int digest_field(EVP_MD_CTX *md, const char *text)
{
	unsigned char len[5] = {0};
	size_t n = text != NULL ? strlen(text) : 0;
	len[0] = text != NULL;
	for (int i = 0; i < 4; i++)
		len[1 + i] = (unsigned char)(n >> (8 * (3 - i)));
	return EVP_DigestUpdate(md, len, sizeof(len)) == 1 && (n == 0 || EVP_DigestUpdate(md, text, n) == 1);
}

cs_err cs_app_key_row_digest(const cs_key_info *k, unsigned char row[32])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int n = 0;
	int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 && digest_field(md, k->kid) &&
		 digest_field(md, k->profile) && digest_field(md, k->status) && digest_field(md, k->activated_by) &&
		 digest_field(md, k->activated_ceremony) && digest_field(md, k->activated_at) &&
		 digest_field(md, k->retired_ceremony) && digest_field(md, k->compromised_ceremony) &&
		 digest_field(md, k->jwk_json) && EVP_DigestFinal_ex(md, row, &n) == 1 && n == 32;
	EVP_MD_CTX_free(md);
	if (!ok)
		memset(row, 0, 32);
	return ok ? CS_OK : CS_E_INTERNAL;
}

/* The decisions per kid: a key published stays so while its row is the
 * same; one withheld is decided again when its row or the key set
 * changed, once per key set. Past PUBLISHED_MAX kids, a decision made
 * under another key set is evicted (one withheld first); none such: the
 * cache grows (bounded by the keys the store holds, which each JWKS reads
 * anyway), so that rows added to the store never make it decide again
 * what it decided under the current key set. */
#define PUBLISHED_MAX 4096
typedef struct {
	char *kid;
	unsigned char row[32], set[32];
	int published, logged;
	/* decided by the keys of its scope, not its row alone (a scope not
	 * configured here: one claimant more withholds it): again at each
	 * change of the key set, published or not */
	int set_bound;
} published_entry;

/* This node's configured key of a scope (the kid of the token's key the
 * configuration names), looked up once. */
typedef struct {
	char kid[44];
	int known; /* 1: kid ("" none configured); 0: not looked up yet */
} configured_key;

struct cs_published_keys {
	pthread_mutex_t lock;
	published_entry *e;
	size_t n, cap;
	configured_key *configured; /* [0] certificate keys, [1 + i] cfg->signing.profiles[i] */
	size_t nconfigured;
};

static void published_clear(struct cs_published_keys *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->e[i].kid);
	free(c->e);
	c->e = NULL;
	c->n = c->cap = 0;
}

/* Make room for one more entry at PUBLISHED_MAX: evict a decision made
 * under another key set than set (a withheld one first), if any. */
static void published_evict(struct cs_published_keys *c, const unsigned char set[32])
{
	size_t victim = c->n;
	for (size_t i = 0; i < c->n; i++) {
		if (memcmp(c->e[i].set, set, 32) == 0)
			continue;
		victim = i;
		if (!c->e[i].published)
			break;
	}
	if (victim == c->n)
		return; /* every decision is of this key set: grow */
	free(c->e[victim].kid);
	c->e[victim] = c->e[c->n - 1];
	c->n--;
}

/* app's cache, made at the first call; NULL without memory. */
static struct cs_published_keys *published_cache(cs_app *app)
{
	struct cs_published_keys *c = atomic_load(&app->published), *none = NULL;
	if (c != NULL)
		return c;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->nconfigured = 1 + (app->cfg != NULL ? app->cfg->signing.nprofiles : 0);
	if ((c->configured = calloc(c->nconfigured, sizeof(*c->configured))) == NULL) {
		free(c);
		return NULL;
	}
	if (pthread_mutex_init(&c->lock, NULL) != 0) {
		free(c->configured);
		free(c);
		return NULL;
	}
	if (atomic_compare_exchange_strong(&app->published, &none, c))
		return c;
	pthread_mutex_destroy(&c->lock); /* another thread made it first */
	free(c->configured);
	free(c);
	return none;
}

static published_entry *published_find(struct cs_published_keys *c, const char *kid)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->e[i].kid, kid) == 0)
			return &c->e[i];
	return NULL;
}

/* A new entry for kid (NULL without memory). */
static published_entry *published_add(struct cs_published_keys *c, const char *kid, const unsigned char set[32])
{
	if (c->n >= PUBLISHED_MAX)
		published_evict(c, set);
	if (c->n == c->cap) {
		size_t cap = c->cap == 0 ? 16 : c->cap * 2;
		published_entry *more = realloc(c->e, cap * sizeof(*more));
		if (more == NULL)
			return NULL;
		c->e = more, c->cap = cap;
	}
	published_entry *e = &c->e[c->n];
	memset(e, 0, sizeof(*e));
	if ((e->kid = strdup(kid)) == NULL)
		return NULL;
	c->n++;
	return e;
}

/* The index in c->configured of profile's scope, and the key URI the
 * configuration names for it (NULL: none, a profile not configured). */
static size_t configured_slot(const cs_app *app, const char *profile, const char **uri)
{
	*uri = NULL;
	if (profile == NULL) {
		*uri = app->cfg != NULL ? app->cfg->pkcs11.signing_key : NULL;
		return 0;
	}
	const cs_config_profile *p = app->cfg != NULL ? cs_config_profile_find(app->cfg, profile) : NULL;
	if (p == NULL)
		return 0;
	*uri = p->key;
	return 1 + (size_t)(p - app->cfg->signing.profiles);
}

/* This node's configured key of profile's scope into kid[44] ("" none):
 * looked up in the token once, then remembered. CS_OK, or the token's
 * error (nothing remembered: looked up again next time). */
static cs_err configured_kid(cs_app *app, struct cs_published_keys *c, const char *profile, char kid[44],
			     int *configured)
{
	const char *uri;
	size_t slot = configured_slot(app, profile, &uri);
	kid[0] = '\0';
	*configured = uri != NULL;
	if (uri == NULL || app->token == NULL)
		return CS_OK; /* none configured, or no token to read it from */
	int known = 0;
	if (c != NULL) {
		pthread_mutex_lock(&c->lock);
		if (slot < c->nconfigured && (known = c->configured[slot].known) != 0)
			memcpy(kid, c->configured[slot].kid, 44);
		pthread_mutex_unlock(&c->lock);
	}
	if (known)
		return CS_OK;
	cs_key_ref query, found;
	EVP_PKEY *pub = NULL;
	cs_err r = cs_key_ref_from_uri(uri, &query);
	if (r == CS_OK && (r = cs_token_find_key(app->token, &query, &found)) == CS_OK &&
	    (r = cs_token_public_key(app->token, &found, &pub)) == CS_OK)
		r = cs_jwk_thumbprint(pub, kid);
	EVP_PKEY_free(pub);
	if (r != CS_OK) {
		kid[0] = '\0';
		return r;
	}
	if (c != NULL) {
		pthread_mutex_lock(&c->lock);
		if (slot < c->nconfigured) {
			memcpy(c->configured[slot].kid, kid, 44);
			c->configured[slot].known = 1;
		}
		pthread_mutex_unlock(&c->lock);
	}
	return CS_OK;
}

/* kid as a log shows it: base64url of at most 64 characters, else a mark
 * (whoever writes the store chooses it). */
static const char *kid_shown(const char *kid)
{
	size_t n = strspn(kid, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");
	return n > 0 && n <= 64 && kid[n] == '\0' ? kid : "(a kid that is not base64url)";
}

cs_err cs_app_key_published(cs_app *app, cs_store *store, const char *profile, const char *kid,
			    const unsigned char row[32], const unsigned char set[32], int *published)
{
	struct cs_published_keys *c = published_cache(app);
	published_entry *e;
	int hit = 0, pub = 0, log = 0;
	*published = 0;
	if (c != NULL) {
		pthread_mutex_lock(&c->lock);
		if ((e = published_find(c, kid)) != NULL && memcmp(e->row, row, 32) == 0 &&
		    ((e->published && !e->set_bound) || memcmp(e->set, set, 32) == 0))
			hit = 1, pub = e->published;
		pthread_mutex_unlock(&c->lock);
	}
	if (hit) {
		*published = pub;
		return CS_OK;
	}
	char why[CS_KEY_WHY_MAX], mine[44];
	/* the token unreadable: decided without this node's key, not remembered */
	int scoped = 0;
	int sure = configured_kid(app, c, profile, mine, &scoped) == CS_OK;
	/* a scope configured here: its key ("" unknown); else NULL */
	cs_err r = cs_app_key_publishable(store, app->officers, app->officers_why, profile, kid, scoped ? mine : NULL,
					  why, sizeof(why));
	if (r != CS_OK && r != CS_E_CEREMONY_REFUSED)
		return r; /* the store's error: the caller reports it */
	pub = r == CS_OK;
	log = !pub;
	if (c != NULL && (pub || sure)) {
		pthread_mutex_lock(&c->lock);
		if ((e = published_find(c, kid)) != NULL || (e = published_add(c, kid, set)) != NULL) {
			memcpy(e->row, row, 32);
			memcpy(e->set, set, 32);
			e->published = pub;
			e->set_bound = !scoped;
			log = !pub && !e->logged;
			e->logged = !pub;
		}
		pthread_mutex_unlock(&c->lock);
	}
	if (log) {
		cs_log_warn("store: key %s has no warrant (%s): not published", kid_shown(kid), why);
		cs_metrics_key_withheld();
	}
	*published = pub;
	return CS_OK;
}

void cs_app_published_free(cs_app *app)
{
	struct cs_published_keys *c = atomic_exchange(&app->published, NULL);
	if (c == NULL)
		return;
	published_clear(c);
	free(c->configured);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* ---- the signing key in force: the key watch -------------------------------------
 * A thread of its own rather than a timer in the server: the daemon's main
 * thread waits for signals (sigtimedwait) and makes the periodic audit
 * checkpoints, which wait on the token, and the workers' loops serve
 * requests; a switch must not wait behind either, nor delay them while it
 * opens a key and signs once. */

/* What the store named active at the last poll. */
enum { SEEN_UNKNOWN, SEEN_NONE, SEEN_KEY, SEEN_SEVERAL };
#define KEY_DEPARTED_MAX 64 /* the newest are kept */

/* One slot the watch follows: the certificate key's or a signing
 * profile's, each with its own state. */
typedef struct {
	const char *profile;  /* NULL: the certificate keys */
	cs_signer_slot *slot; /* app->signer, or the profile's */
	char *why_code;       /* the profile's why_code (under the watch's mu); NULL: certificate keys */
	/* what the store named active at the last poll (the kid and chain of
	 * SEEN_KEY), whether the slot holds it, and the audit code of the
	 * failure logged for it (NULL: none; a retry logs only a new reason) */
	int seen;
	char *seen_kid, *seen_x5c;
	int loaded;
	const char *failed;
	/* the warrant of the key last put in force: the floor of the
	 * forward-only rule (has_floor 0: none yet) */
	cs_key_warrant floor;
	int has_floor;
	/* keys that went out of force while this daemon ran (the store named
	 * another key, or none): never put in force again, whatever the store
	 * says later (a retired or compromised key edited back to active) */
	char departed[KEY_DEPARTED_MAX][44];
	size_t ndeparted;
	int store_failing; /* the store could not be read (logged once) */
	/* why the slot is empty, as last logged (under mu; "" when a key is in force) */
	char empty_code[32], empty_why[CS_KEY_WHY_MAX];
} key_slot;

struct cs_key_watch {
	cs_app *app;
	key_slot certs;
	key_slot *profiles; /* one per app->profiles, in its order */
	size_t nprofiles;
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
	/* the store's guards as the last poll found them (under mu) */
	int guards_bad;
	char guards_why[512];
};

void cs_app_key_purpose(const char *profile, cs_key_purpose *out)
{
	memset(out, 0, sizeof(*out));
	out->kind = profile == NULL ? CS_KEY_PURPOSE_CERTIFICATE : CS_KEY_PURPOSE_PROFILE;
	if (profile != NULL)
		snprintf(out->profile, sizeof(out->profile), "%.*s", CS_KEY_PROFILE_NAME_MAX, profile);
}

cs_err cs_app_open_key(OSSL_LIB_CTX *libctx, const cs_active_key *key, cs_signer **out, const char **code,
		       char *why, size_t why_len)
{
	return cs_app_open_key_for(libctx, key, NULL, out, code, why, why_len);
}

cs_err cs_app_open_key_for(OSSL_LIB_CTX *libctx, const cs_active_key *key, const cs_key_purpose *purpose,
			   cs_signer **out, const char **code, char *why, size_t why_len)
{
	cs_signer *s = NULL;
	char *jws = NULL;
	*out = NULL;
	*code = "key_unavailable";
	cs_err r = cs_signer_open_for(libctx, key->uri, purpose, &s);
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

static cs_err remember(key_slot *ks, int seen, const cs_active_key *key)
{
	free(ks->seen_kid);
	free(ks->seen_x5c);
	ks->seen_kid = ks->seen_x5c = NULL;
	ks->seen = seen;
	ks->failed = NULL;
	if (seen != SEEN_KEY)
		return CS_OK;
	ks->seen_kid = strdup(key->kid);
	ks->seen_x5c = key->x5c_json != NULL ? strdup(key->x5c_json) : NULL;
	if (ks->seen_kid != NULL && (key->x5c_json == NULL || ks->seen_x5c != NULL))
		return CS_OK;
	ks->seen = SEEN_UNKNOWN; /* compared again at the next poll */
	return CS_E_NOMEM;
}

/* What start-up put in force in ks (NULL, NULL: nothing, the first poll
 * decides). */
static cs_err slot_in_force(key_slot *ks, const cs_active_key *in_force, const cs_key_warrant *warrant)
{
	if ((in_force == NULL) != (warrant == NULL))
		return CS_E_INVALID_ARG;
	ks->loaded = in_force != NULL;
	ks->has_floor = warrant != NULL;
	if (warrant != NULL)
		ks->floor = *warrant;
	return in_force != NULL ? remember(ks, SEEN_KEY, in_force) : remember(ks, SEEN_UNKNOWN, NULL);
}

cs_err cs_key_watch_new(cs_app *app, const cs_active_key *in_force, const cs_key_warrant *warrant,
			cs_key_watch **out)
{
	*out = NULL;
	if ((in_force == NULL) != (warrant == NULL))
		return CS_E_INVALID_ARG;
	for (size_t i = 0; i < app->nprofiles; i++)
		if (app->profiles[i].signer == NULL || app->profiles[i].cfg == NULL)
			return CS_E_INVALID_ARG;
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
	w->certs.slot = app->signer;
	cs_err r = CS_OK;
	if (app->nprofiles > 0 && (w->profiles = calloc(app->nprofiles, sizeof(*w->profiles))) == NULL)
		r = CS_E_NOMEM;
	for (size_t i = 0; r == CS_OK && i < app->nprofiles; i++) {
		key_slot *ks = &w->profiles[i];
		ks->profile = app->profiles[i].cfg->name;
		ks->slot = app->profiles[i].signer;
		ks->why_code = app->profiles[i].why_code;
		w->nprofiles++;
	}
	if (r == CS_OK)
		r = slot_in_force(&w->certs, in_force, warrant);
	if (r != CS_OK) {
		cs_key_watch_free(w);
		return r;
	}
	*out = w;
	return CS_OK;
}

static key_slot *profile_slot(cs_key_watch *w, const char *profile)
{
	for (size_t i = 0; w != NULL && profile != NULL && i < w->nprofiles; i++)
		if (strcmp(w->profiles[i].profile, profile) == 0)
			return &w->profiles[i];
	return NULL;
}

cs_err cs_key_watch_profile_in_force(cs_key_watch *w, const char *profile, const cs_active_key *in_force,
				     const cs_key_warrant *warrant)
{
	key_slot *ks = profile_slot(w, profile);
	return ks != NULL ? slot_in_force(ks, in_force, warrant) : CS_E_NOT_FOUND;
}

/* The slot's key and what fails without it, for log lines. */
static const char *slot_key(const key_slot *ks, char *buf, size_t len)
{
	if (ks->profile == NULL)
		snprintf(buf, len, "signing key");
	else
		snprintf(buf, len, "signing key of profile %s", ks->profile);
	return buf;
}

static const char *slot_fails(const key_slot *ks, char *buf, size_t len)
{
	if (ks->profile == NULL)
		snprintf(buf, len, "certification fails closed");
	else
		snprintf(buf, len, "signing with profile %s fails closed", ks->profile);
	return buf;
}

static void audit_switch(cs_app *app, const key_slot *ks, const char *kid, const char *error_code)
{
	char request[CS_CONFIG_PROFILE_NAME_MAX + 16];
	if (ks->profile != NULL)
		snprintf(request, sizeof(request), "profile=%.*s", CS_CONFIG_PROFILE_NAME_MAX, ks->profile);
	cs_audit_entry e = {.actor = "system", .role = "system", .action = "key.switch", .object = kid,
			    .outcome = error_code == NULL ? "success" : "failure", .error_code = error_code,
			    .request_id = ks->profile != NULL ? request : NULL};
	if (cs_audit_record(app->audit, app->ledger, &e) != CS_OK)
		cs_log_error("the key switch to %s%s%s could not be audited", kid,
			     ks->profile != NULL ? " of signing profile " : "", ks->profile != NULL ? ks->profile : "");
}

/* Why the slot is empty (code "" and why "": a key is in force). */
static void set_empty_why(cs_key_watch *w, key_slot *ks, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void set_empty_why(cs_key_watch *w, key_slot *ks, const char *code, const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&w->mu);
	snprintf(ks->empty_code, sizeof(ks->empty_code), "%s", code);
	if (ks->why_code != NULL)
		snprintf(ks->why_code, sizeof(ks->empty_code), "%s", code);
	va_start(ap, fmt);
	vsnprintf(ks->empty_why, sizeof(ks->empty_why), fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&w->mu);
}

static void slot_why(cs_key_watch *w, const key_slot *ks, char code[32], char *why, size_t why_len)
{
	code[0] = '\0';
	if (why_len > 0)
		why[0] = '\0';
	if (w == NULL || ks == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	snprintf(code, 32, "%s", ks->empty_code);
	snprintf(why, why_len, "%s", ks->empty_why);
	pthread_mutex_unlock(&w->mu);
}

void cs_key_watch_why(cs_key_watch *w, char code[32], char *why, size_t why_len)
{
	slot_why(w, w != NULL ? &w->certs : NULL, code, why, why_len);
}

void cs_key_watch_profile_why(cs_key_watch *w, const char *profile, char code[32], char *why, size_t why_len)
{
	slot_why(w, profile_slot(w, profile), code, why, why_len);
}

/* The store names no key, or several: the slot empties. Logged and
 * audited when it just became so. */
static cs_err empty_slot(cs_key_watch *w, key_slot *ks, int seen, int changed)
{
	cs_app *app = w->app;
	char was[44], key[64], fails[64], of[64] = "";
	cs_signer_slot_kid(ks->slot, was);
	cs_signer_slot_swap(ks->slot, NULL);
	ks->loaded = 0;
	slot_key(ks, key, sizeof(key));
	slot_fails(ks, fails, sizeof(fails));
	if (ks->profile != NULL)
		snprintf(of, sizeof(of), " of profile %s", ks->profile);
	if (seen == SEEN_NONE)
		set_empty_why(w, ks, "no_active_key", "the store has no active %s", key);
	else
		set_empty_why(w, ks, "several_active_keys",
			      "the store has several active signing keys%s (edited outside credsign)", of);
	if (changed && seen == SEEN_NONE) {
		cs_log_error("the store has no active %s (%s%s): %s (503 no_active_key) until a ceremony activates one",
			     key, was[0] != '\0' ? "the last one was " : "none was in force", was, fails);
		audit_switch(app, ks, "none", "no_active_key");
	} else if (changed) {
		cs_log_error("the store has several active signing keys%s, which it never does unless edited outside "
			     "credsign (%s%s): %s (503 no_active_key) until one is active",
			     of, was[0] != '\0' ? "the key in force was " : "none was in force", was, fails);
		audit_switch(app, ks, "several", "several_active_keys");
	}
	return seen == SEEN_NONE ? CS_E_NO_ACTIVE_KEY : CS_E_CONFLICT;
}

/* The store names key and the slot does not hold it (changed: since the
 * last poll; else a retry): put it in force when its warrant holds (refused:
 * why) and it is not older than the floor, or empty the slot. A failure is
 * logged and audited unless this reason was logged for it already. */
static cs_err switch_key(cs_key_watch *w, key_slot *ks, const cs_active_key *key, const cs_key_warrant *warrant,
			 char *why, size_t why_len, int changed)
{
	cs_app *app = w->app;
	char was[44], what[64], fails[64];
	cs_signer_slot_kid(ks->slot, was);
	slot_key(ks, what, sizeof(what));
	slot_fails(ks, fails, sizeof(fails));
	cs_signer *next = NULL;
	const char *code = NULL;
	cs_err r = CS_OK;
	int departed = 0;
	for (size_t i = 0; i < ks->ndeparted && i < KEY_DEPARTED_MAX; i++)
		departed |= strcmp(ks->departed[i], key->kid) == 0;
	if (departed) {
		code = "departed_key";
		whyf(why, why_len, "it went out of force while this daemon ran (the store named another key, or "
				   "none): a key does not come back");
		r = CS_E_CEREMONY_REFUSED;
	} else if (warrant == NULL) {
		code = "unverified_ceremony";
		r = CS_E_CEREMONY_REFUSED;
	} else if (ks->has_floor && !cs_app_key_warrant_newer(&ks->floor, warrant, why, why_len)) {
		code = "stale_ceremony";
		r = CS_E_CEREMONY_REFUSED;
	} else {
		cs_key_purpose purpose;
		cs_app_key_purpose(ks->profile, &purpose);
		r = cs_app_open_key_for(app->libctx, key, &purpose, &next, &code, why, why_len);
	}
	if (r != CS_OK) {
		/* fail closed: the previous key is no longer the active one */
		cs_signer_slot_swap(ks->slot, NULL);
		ks->loaded = 0;
		set_empty_why(w, ks, code, "the store's active %s %s is not in force: %s", what, key->kid, why);
		if (changed || !same_text(ks->failed, code)) {
			if (r == CS_E_CEREMONY_REFUSED)
				cs_log_error("the store's active %s %s is not put in force: %s; %s (503 no_active_key) "
					     "until a key whose activation this daemon verifies is active",
					     what, key->kid, why, fails);
			else
				cs_log_error("the store's active %s %s cannot be put in force: %s; %s (503 "
					     "no_active_key) until it can (tried again every %d ms)",
					     what, key->kid, why, fails, CS_KEY_POLL_MS);
			audit_switch(app, ks, key->kid, code);
		}
		ks->failed = code;
		return r;
	}
	cs_signer_slot_swap(ks->slot, next);
	ks->loaded = 1;
	ks->failed = NULL;
	set_empty_why(w, ks, "", "%s", "");
	ks->floor = *warrant;
	ks->has_floor = 1;
	if (strcmp(was, key->kid) == 0)
		cs_log_info("%s %s in force again%s", what, key->kid,
			    key->x5c_json != NULL ? " (its registered chain changed: x5c)" : " (chain removed)");
	else if (ks->profile == NULL)
		cs_log_info("signing key switched to %s%s%s%s (%s%s); certificates from now on carry kid %s", key->kid,
			    was[0] != '\0' ? " (was " : "", was, was[0] != '\0' ? ")" : "",
			    warrant->bootstrap ? "the store's first key, from pkcs11.signing_key" : "ceremony ",
			    warrant->bootstrap ? "" : warrant->ceremony, key->kid);
	else
		cs_log_info("signing key of profile %s switched to %s%s%s%s (%s%s); its signatures from now on carry "
			    "kid %s",
			    ks->profile, key->kid, was[0] != '\0' ? " (was " : "", was, was[0] != '\0' ? ")" : "",
			    warrant->bootstrap ? "the profile's first key, from its configured key" : "ceremony ",
			    warrant->bootstrap ? "" : warrant->ceremony, key->kid);
	audit_switch(app, ks, key->kid, NULL);
	return CS_OK;
}

/* What cs_store_key_active_in's answer says the store names. */
static int seen_of(cs_err r)
{
	switch (r) {
	case CS_OK:
		return SEEN_KEY;
	case CS_E_NOT_FOUND:
		return SEEN_NONE;
	case CS_E_CONFLICT:
		return SEEN_SEVERAL;
	default:
		return SEEN_UNKNOWN; /* the store's error */
	}
}

static cs_err poll_slot(cs_key_watch *w, key_slot *ks, cs_store *store)
{
	cs_active_key key = {0};
	cs_key_warrant warrant;
	char why[CS_KEY_WHY_MAX] = "", what[64];
	int seen = SEEN_UNKNOWN, changed = 0, warranted = 0;
	/* one snapshot: the key named active, and what its warrant reads */
	cs_err r = cs_store_read_begin(store);
	if (r == CS_OK) {
		r = cs_store_key_active_in(store, ks->profile, &key);
		seen = seen_of(r);
		if (seen != SEEN_UNKNOWN)
			r = CS_OK;
		changed = seen != ks->seen ||
			  (seen == SEEN_KEY &&
			   (!same_text(ks->seen_kid, key.kid) || !same_text(ks->seen_x5c, key.x5c_json)));
		if (r == CS_OK && seen == SEEN_KEY && (changed || !ks->loaded)) {
			r = cs_app_key_warrant_in(store, w->app->officers, w->app->officers_why, ks->profile, key.kid,
						  &warrant, why, sizeof(why));
			warranted = r == CS_OK;
			if (r == CS_E_CEREMONY_REFUSED)
				r = CS_OK;
		}
		cs_store_read_end(store);
	}
	if (r != CS_OK) {
		if (!ks->store_failing)
			cs_log_warn("the active %s cannot be read from the store (%s); the key in force stays",
				    slot_key(ks, what, sizeof(what)), cs_strerror(r));
		ks->store_failing = 1;
		cs_active_key_free(&key);
		return r;
	}
	if (ks->store_failing)
		cs_log_info("the store answers again: following its active %s", slot_key(ks, what, sizeof(what)));
	ks->store_failing = 0;
	/* the key in force leaves when the store names another, or none (not
	 * when it names several: a damaged store, put right later) */
	char in_force[44];
	cs_signer_slot_kid(ks->slot, in_force);
	if (changed && in_force[0] != '\0' &&
	    (seen == SEEN_NONE || (seen == SEEN_KEY && strcmp(key.kid, in_force) != 0))) {
		memcpy(ks->departed[ks->ndeparted % KEY_DEPARTED_MAX], in_force, sizeof(in_force));
		ks->ndeparted++;
	}
	if (seen != SEEN_KEY)
		r = changed ? empty_slot(w, ks, seen, 1) : CS_OK;
	else if (changed || !ks->loaded)
		r = switch_key(w, ks, &key, warranted ? &warrant : NULL, why, sizeof(why), changed);
	/* what was seen, compared at the next poll (out of memory: unknown,
	 * compared again); a retry keeps its failure's code */
	if (changed) {
		const char *failed = ks->failed;
		if (remember(ks, seen, &key) != CS_OK)
			cs_log_error("the key watch is out of memory");
		ks->failed = failed;
	}
	cs_active_key_free(&key);
	return r;
}

/* The certificate key, then each profile's: the certificate key's outcome,
 * else the first profile's that is not CS_OK. */
static cs_err poll_key(cs_key_watch *w, cs_store *store)
{
	cs_err r = poll_slot(w, &w->certs, store);
	for (size_t i = 0; i < w->nprofiles; i++) {
		cs_err p = poll_slot(w, &w->profiles[i], store);
		if (r == CS_OK)
			r = p;
	}
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

cs_err cs_revocations_read(cs_store *store, json_t **list, int64_t *count, int64_t *rowid)
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

static void copy_status(void *arg, const cs_key_info *k)
{
	snprintf(arg, 16, "%s", k->status);
}

/* The list in force was signed by a key compromised since: withdrawn, so
 * that none is served (a stolen key could sign a list that leaves out any
 * revocation). A key retired by a rotation still vouches for its list
 * until the new key signs the next one. */
static void withdraw_if_compromised(cs_key_watch *w, cs_store *store)
{
	char kid[44], status[16] = "";
	pthread_mutex_lock(&w->mu);
	int have = w->rev_jws != NULL;
	snprintf(kid, sizeof(kid), "%s", w->rev_kid);
	pthread_mutex_unlock(&w->mu);
	if (!have || cs_store_key_info(store, kid, copy_status, status) != CS_OK || strcmp(status, "compromised") != 0)
		return;
	pthread_mutex_lock(&w->mu);
	int withdrawn = w->rev_jws != NULL && strcmp(w->rev_kid, kid) == 0;
	if (withdrawn) {
		free(w->rev_jws);
		w->rev_jws = NULL;
		w->rev_next_update = 0;
	}
	pthread_mutex_unlock(&w->mu);
	if (withdrawn)
		cs_log_error("the revocation list signed by key %s is withdrawn: that key is compromised; none is "
			     "served (503 revocations_unavailable) until a key in force signs one",
			     kid);
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
	if (signer == NULL)
		withdraw_if_compromised(w, store);
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
	if ((r = cs_revocations_read(store, &list, &count, &rowid)) != CS_OK) {
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
		withdraw_if_compromised(w, store);
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

/* ---- node identity ------------------------------------------------------------------ */

cs_err cs_app_node_instance(cs_app *app)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[CS_NODE_INSTANCE_LEN / 2];
	if (RAND_bytes(b, (int)sizeof(b)) != 1) {
		cs_log_error("the node's instance id cannot be made: no randomness");
		return CS_E_INTERNAL;
	}
	for (size_t i = 0; i < sizeof(b); i++) {
		app->node.instance[2 * i] = hex[b[i] >> 4];
		app->node.instance[2 * i + 1] = hex[b[i] & 15];
	}
	app->node.instance[CS_NODE_INSTANCE_LEN] = '\0';
	if (gethostname(app->node.host, sizeof(app->node.host)) != 0 || app->node.host[0] == '\0')
		snprintf(app->node.host, sizeof(app->node.host), "unknown");
	app->node.host[sizeof(app->node.host) - 1] = '\0';
	return CS_OK;
}

/* The pid of holder ("host H pid P, seen N ms ago", cs_store_node_claim)
 * when it is a process of this host other than this one; else 0. */
static pid_t holder_pid(const cs_app *app, const char *holder)
{
	char prefix[300];
	int n = snprintf(prefix, sizeof(prefix), "host %s pid ", app->node.host);
	if (holder == NULL || n < 0 || (size_t)n >= sizeof(prefix) || strncmp(holder, prefix, (size_t)n) != 0)
		return 0;
	char *end = NULL;
	errno = 0;
	long long pid = strtoll(holder + n, &end, 10);
	if (errno != 0 || end == holder + n || *end != ',' || pid <= 1 || pid > INT32_MAX || pid == (long long)getpid())
		return 0;
	return (pid_t)pid;
}

/* Whether holder is a process of this host that no longer exists. One
 * that still exists is given a few seconds to end (a node restarted at
 * once after a kill -9 of its supervisor: its network process is
 * ending), *waited set. */
static int holder_gone(const cs_app *app, const char *holder, int *waited)
{
	pid_t pid = holder_pid(app, holder);
	for (int i = 0; pid != 0; i++) {
		if (kill(pid, 0) != 0 && errno == ESRCH)
			return 1;
		if (i >= CS_NODE_END_WAIT_MS / 100)
			break;
		*waited = 1;
		struct timespec pause = {0, 100 * 1000000L};
		nanosleep(&pause, NULL);
	}
	return 0;
}

cs_err cs_app_node_claim(cs_app *app)
{
	const char *id = app->cfg->server.node_id;
	char *holder = NULL;
	cs_err r = cs_ledger_node_claim(app->ledger, id, app->node.instance, app->node.host, (int64_t)getpid(),
					CS_NODE_LIVE_MS, &holder);
	int waited = 0;
	if (r == CS_E_CONFLICT && holder_gone(app, holder, &waited)) {
		cs_log_warn("server.node_id %s: taking over the claim of a process of this host that no longer "
			    "exists (%s)", id, holder);
		free(holder);
		holder = NULL;
		/* live 1 ms: the row is older, whoever wrote it */
		r = cs_ledger_node_claim(app->ledger, id, app->node.instance, app->node.host, (int64_t)getpid(), 1,
					 &holder);
	}
	if (r == CS_E_CONFLICT)
		cs_log_error("start-up failed: server.node_id %s is in use by another running node (%s%s): give each "
			     "node its own id (a node that was stopped gives its id up %d s after it last renewed it)",
			     id, holder != NULL ? holder : "holder unknown", waited ? "; it did not end" : "",
			     CS_NODE_LIVE_MS / 1000);
	else if (r != CS_OK)
		cs_log_error("start-up failed: server.node_id %s cannot be claimed in the store: %s", id, cs_strerror(r));
	free(holder);
	app->node.claimed = r == CS_OK;
	return r;
}

void cs_app_node_renew(cs_app *app, int64_t mono_now_ms)
{
	/* lost: final, the server drains and stops (it checks node.lost each
	 * second; no signal: kill is outside the network process's seccomp
	 * allowlist) */
	if (!app->node.claimed || app->ledger == NULL || atomic_load(&app->node.lost) ||
	    (app->node.renewed_ms != 0 && mono_now_ms - app->node.renewed_ms < CS_NODE_RENEW_MS))
		return;
	app->node.renewed_ms = mono_now_ms;
	const char *id = app->cfg->server.node_id;
	char *holder = NULL;
	cs_err r = cs_ledger_node_claim(app->ledger, id, app->node.instance, app->node.host, (int64_t)getpid(),
					CS_NODE_LIVE_MS, &holder);
	if (r == CS_E_CONFLICT) {
		/* this node went unseen for CS_NODE_LIVE_MS (frozen, paused, cut
		 * off from the database) and another took the id: two nodes must
		 * not write as one, and the other is the id's holder now */
		cs_log_error("server.node_id %s is now held by another running node (%s): this node stops (two "
			     "nodes must not write under one id); give each node its own id",
			     id, holder != NULL ? holder : "holder unknown");
		atomic_store(&app->node.lost, 1);
	}
	/* other failures: the store is down; the ledger and readiness say so */
	free(holder);
}

void cs_app_node_release(cs_app *app)
{
	if (!app->node.claimed || app->ledger == NULL)
		return;
	app->node.claimed = 0;
	cs_err r = cs_ledger_node_release(app->ledger, app->cfg->server.node_id, app->node.instance, app->node.host,
					  (int64_t)getpid());
	if (r != CS_OK && r != CS_E_CONFLICT)
		cs_log_warn("server.node_id %s was not released (%s): the next start waits up to %d s for it",
			    app->cfg->server.node_id, cs_strerror(r), CS_NODE_LIVE_MS / 1000);
}

/* The store's guards again (cs_store_guards_check: one query): a change
 * of their state logged once; a store that does not answer (logged by
 * it) leaves the state as it was. */
static void poll_guards(cs_key_watch *w, cs_store *store)
{
	char why[512];
	cs_err r = cs_store_guards_check(store, why, sizeof(why));
	if (r != CS_OK && why[0] == '\0')
		return;
	pthread_mutex_lock(&w->mu);
	int was = w->guards_bad, same = was && r != CS_OK && strcmp(w->guards_why, why) == 0;
	w->guards_bad = r != CS_OK;
	snprintf(w->guards_why, sizeof(w->guards_why), "%s", r != CS_OK ? why : "");
	pthread_mutex_unlock(&w->mu);
	if (r != CS_OK && !same)
		cs_log_error("%s; /readyz reports the store unavailable until it is restored from a backup", why);
	else if (r == CS_OK && was)
		cs_log_info("store: the schema's guards are as credsign made them again; /readyz reports the store ok");
}

cs_err cs_key_watch_poll(cs_key_watch *w, cs_store *store, int64_t now_ms)
{
	cs_err r = poll_key(w, store);
	poll_revocations(w, store, now_ms);
	poll_guards(w, store);
	return r;
}

cs_err cs_key_watch_guards(cs_key_watch *w, char *why, size_t why_len)
{
	if (why_len > 0)
		why[0] = '\0';
	if (w == NULL)
		return CS_OK;
	pthread_mutex_lock(&w->mu);
	int bad = w->guards_bad;
	if (bad && why_len > 0)
		snprintf(why, why_len, "%s", w->guards_why);
	pthread_mutex_unlock(&w->mu);
	return bad ? CS_E_STORE : CS_OK;
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
		struct timespec mono;
		clock_gettime(CLOCK_MONOTONIC, &mono);
		cs_app_node_renew(w->app, (int64_t)mono.tv_sec * 1000 + mono.tv_nsec / 1000000);
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
	cs_store_target target;
	cs_err r = cs_store_target_from_config(w->app->cfg, &target);
	if (r == CS_OK)
		r = cs_store_connect(&target, &t->store);
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
	free(w->certs.seen_kid);
	free(w->certs.seen_x5c);
	for (size_t i = 0; i < w->nprofiles; i++) {
		free(w->profiles[i].seen_kid);
		free(w->profiles[i].seen_x5c);
	}
	free(w->profiles);
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
