/* app: see app.h. The token's description (the certificates'
 * entropy_source claim) and its FIPS 140 validation. */
#include "app.h"

#include <stdio.h>
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
