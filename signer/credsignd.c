/*
 * credsignd: the signing appliance daemon.
 *
 *   credsignd --config FILE          serve (foreground, logs to stderr)
 *   credsignd --check-config FILE    validate a configuration and exit 0/1
 *   credsignd --version
 *
 * Start-up: configuration, presets, token (login), the credsign provider in
 * the daemon's own OpenSSL library context with the token RNG as its DRBG,
 * the signing key (recorded in the store's key table), the store schema,
 * then the TLS listener. Any failure stops start-up with exit status 1.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <openssl/conf.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>

#include "app.h"
#include "audit.h"
#include "config.h"
#include "cs_log.h"
#include "provider.h"
#include "server.h"
#include "token_meter.h"
#include "wipe_alloc.h"

static int print_diag(cs_config_diag *diag)
{
	for (size_t i = 0; i < diag->count; i++)
		fprintf(stderr, "%s\n", diag->messages[i]);
	size_t n = diag->count;
	cs_config_diag_free(diag);
	return (int)n;
}

/* The audit log is kept as long as the standards of the configured presets
 * ask (HIPAA: 6 years): a shorter audit.retention_days is allowed, with a
 * warning at start and in --check-config. 1 with the warning in msg. */
static int retention_warning(const cs_config *cfg, const cs_preset_set *presets, char *msg,
			     size_t len)
{
	const cs_preset *p = NULL;
	int days = cs_presets_audit_retention(presets, &p);
	if (p == NULL || days <= cfg->audit.retention_days)
		return 0;
	const char *cite = json_string_value(json_object_get(p->cites, "retention"));
	snprintf(msg, len,
		 "setting 'audit.retention_days': %d days is shorter than the %d days preset %s needs, "
		 "%s; credsign-admin audit purge would remove audit entries its standard keeps",
		 cfg->audit.retention_days, days, p->name, cite != NULL ? cite : p->standards[0]);
	return 1;
}

/* crypto.openssl_fips: load OpenSSL's FIPS provider (and base, for key and
 * certificate decoding) into libctx (NULL: the default context, which
 * EVP_sha256() and HMAC() use; it also gets the fips=yes default property)
 * and make sure SHA-256 now comes from it. In the daemon's own context the
 * caller loads these instead of the default provider, so software crypto
 * has nowhere else to come from. On failure *why says so and nothing is
 * left loaded. */
static cs_err openssl_fips_load(OSSL_LIB_CTX *libctx, OSSL_PROVIDER **fips, OSSL_PROVIDER **base,
				char *why, size_t len)
{
	*fips = *base = NULL;
	if (libctx != NULL) {
		/* the FIPS provider's own settings (its installation's MAC) come
		 * from the system's OpenSSL configuration, as in the default context */
		char *file = CONF_get1_default_config_file();
		if (file == NULL || !OSSL_LIB_CTX_load_config(libctx, file))
			cs_log_warn("crypto.openssl_fips: cannot load the OpenSSL configuration %s",
				    file != NULL ? file : "(none)");
		OPENSSL_free(file);
	}
	*fips = OSSL_PROVIDER_load(libctx, "fips");
	*base = *fips != NULL ? OSSL_PROVIDER_load(libctx, "base") : NULL;
	EVP_MD *md = NULL;
	const char *from = NULL;
	if (*base != NULL && (libctx != NULL || EVP_default_properties_enable_fips(NULL, 1)) &&
	    (md = EVP_MD_fetch(libctx, "SHA256", NULL)) != NULL)
		from = OSSL_PROVIDER_get0_name(EVP_MD_get0_provider(md));
	/* in the daemon's context nothing but fips, base and the token's provider */
	int ok = from != NULL && strcmp(from, "fips") == 0 &&
		 (libctx == NULL || !OSSL_PROVIDER_available(libctx, "default"));
	EVP_MD_free(md);
	if (ok)
		return CS_OK;
	/* the first error says why (e.g. fips.so: no such file), the last only
	 * that the provider's initialisation failed */
	char err[256] = "";
	const char *data = NULL;
	int flags = 0;
	unsigned long e = ERR_peek_error_data(&data, &flags);
	if (e != 0) {
		const char *reason = ERR_reason_error_string(e);
		int text = (flags & ERR_TXT_STRING) && data != NULL && data[0] != '\0';
		snprintf(err, sizeof(err), "%s%s%s", reason != NULL ? reason : "OpenSSL error",
			 text ? ": " : "", text ? data : "");
	}
	ERR_clear_error();
	if (*fips == NULL)
		snprintf(why, len,
			 "setting 'crypto.openssl_fips': OpenSSL's FIPS provider is not available "
			 "(modules directory %s: %s); install a FIPS provider and configure it "
			 "(openssl fipsinstall), or set crypto.openssl_fips = false",
			 OPENSSL_info(OPENSSL_INFO_MODULES_DIR), err[0] ? err : "not found");
	else
		snprintf(why, len,
			 "setting 'crypto.openssl_fips': OpenSSL's FIPS provider is not available "
			 "alone: SHA-256 comes from provider '%s'%s (%s)",
			 from != NULL ? from : "none",
			 from != NULL && strcmp(from, "fips") == 0
				 ? " but the OpenSSL configuration activates the default provider too"
				 : "",
			 err[0] ? err : "check the OpenSSL configuration");
	if (libctx == NULL)
		EVP_default_properties_enable_fips(NULL, 0);
	OSSL_PROVIDER_unload(*base);
	OSSL_PROVIDER_unload(*fips);
	*fips = *base = NULL;
	return CS_E_CONFIG;
}

static int check_config(const char *path)
{
	cs_config *cfg = NULL;
	cs_config_diag diag;
	cs_err r = cs_config_load(path, &cfg, &diag);
	print_diag(&diag);
	if (r == CS_OK) {
		cs_preset_set *presets = NULL;
		cs_wordlist *wordlist = NULL;
		char why[512];
		r = cs_presets_load(cfg->server.presets_file, cfg->file, &presets, &diag);
		print_diag(&diag);
		if (r == CS_OK &&
		    (r = cs_wordlist_load_diag(cfg->server.wordlist_file, &wordlist, why, sizeof(why))) != CS_OK)
			fprintf(stderr, "%s: setting 'server.wordlist_file': %s\n", cfg->file, why);
		/* a preset that can never be met is refused now, not per request */
		if (r == CS_OK && (r = cs_presets_check(presets, wordlist, why, sizeof(why))) != CS_OK)
			fprintf(stderr, "%s: %s\n", cfg->file, why);
		if (r == CS_OK && retention_warning(cfg, presets, why, sizeof(why)))
			fprintf(stderr, "%s: warning: %s\n", cfg->file, why);
		cs_presets_free(presets);
		cs_wordlist_free(wordlist);
		OSSL_PROVIDER *fips = NULL, *base = NULL;
		if (r == CS_OK && cfg->crypto.openssl_fips &&
		    (r = openssl_fips_load(NULL, &fips, &base, why, sizeof(why))) != CS_OK)
			fprintf(stderr, "%s: %s\n", cfg->file, why);
		OSSL_PROVIDER_unload(base);
		OSSL_PROVIDER_unload(fips);
	}
	if (r != CS_OK) {
		fprintf(stderr, "%s: configuration invalid\n", path);
		cs_config_free(cfg);
		return 1;
	}
	printf("%s: configuration valid\n", cfg->file);
	cs_config_free(cfg);
	return 0;
}

/* No core dumps and no ptrace by other users: credentials pass through
 * this process's memory. Everything the daemon creates (the store and its
 * WAL and SHM files, any directory) is private to its user, whatever the
 * caller's umask. The descriptor limit is raised to its hard limit: the
 * connection guard keeps a flood of unauthenticated connections bounded,
 * but accepts them (to evict the oldest) faster than they are closed. */
static void harden_process(void)
{
	struct rlimit none = {0, 0};
	setrlimit(RLIMIT_CORE, &none);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	umask(077);
	struct rlimit files;
	if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
		files.rlim_cur = files.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &files);
	}
}

/* A store made before the daemon set its umask, or by hand, may be open
 * to other users: the daemon's files are private to it. */
static void make_store_private(const char *path)
{
	static const char *const suffixes[] = {"", "-wal", "-shm"};
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		char file[4096];
		struct stat st;
		snprintf(file, sizeof(file), "%s%s", path, suffixes[i]);
		if (stat(file, &st) != 0 || (st.st_mode & 077) == 0)
			continue;
		if (chmod(file, st.st_mode & 0700) == 0)
			cs_log_warn("%s was open to other users (mode %03o); now %03o", file,
				    (unsigned)(st.st_mode & 0777), (unsigned)(st.st_mode & 0700));
		else
			cs_log_error("%s is open to other users (mode %03o) and cannot be changed: %s",
				     file, (unsigned)(st.st_mode & 0777), strerror(errno));
	}
}

/* Record the signing key (the JWKS lists every key ever used); a key that
 * becomes active retires the previous one, an audited key event. */
static cs_err register_signing_key(cs_app *app)
{
	int changed = 0;
	char ts[32];
	cs_err r;
	cs_audit_now(ts);
	cs_audit_entry e = {.ts = ts, .node = app->cfg->server.node_id, .actor = "system",
			    .role = "system", .action = "key.activate",
			    .object = cs_signer_kid(app->signer), .outcome = "success"};
	char *jwk = json_dumps(cs_signer_jwk(app->signer), JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(12));
	r = jwk != NULL ? cs_ledger_key_put(app->ledger, cs_signer_kid(app->signer), cs_signer_uri(app->signer),
					    jwk, "active", &changed, &e)
			: CS_E_NOMEM;
	if (r == CS_OK && changed)
		cs_log_info("signing key %s is now the active key", cs_signer_kid(app->signer));
	free(jwk);
	return r;
}

/* The configuration in force is an audited event, attributed to the system. */
static cs_err record_config_load(cs_app *app)
{
	cs_audit_entry e = {.actor = "system", .role = "system", .action = "config.load",
			    .object = app->cfg->file, .outcome = "success"};
	return cs_audit_record(app->audit, app->ledger, &e);
}

/* A configured validation is checked against the token at start
 * (cs_app_describe_token); the outcome is an audited event. A mismatch
 * leaves the token not validated: presets that require validation are
 * refused, and every certificate says validated: false. */
static cs_err record_token_validation(cs_app *app)
{
	const char *program = app->cfg->pkcs11.validation.program;
	if (program == NULL || strcmp(program, "none") == 0)
		return CS_OK; /* nothing claimed, nothing checked */
	char object[64];
	snprintf(object, sizeof(object), "%s #%s", program, app->cfg->pkcs11.validation.certificate);
	int held = app->validated_program != NULL;
	cs_audit_entry e = {.actor = "system", .role = "system", .action = "token.validation",
			    .object = object, .outcome = held ? "success" : "failure",
			    .error_code = held ? NULL : "validation_mismatch"};
	return cs_audit_record(app->audit, app->ledger, &e);
}

static int serve(const char *path)
{
	cs_config *cfg = NULL;
	cs_config_diag diag;
	cs_app app = {0};
	OSSL_PROVIDER *prov = NULL, *deflt = NULL;
	/* crypto.openssl_fips: fips and base in the default context and in
	 * app.libctx (where deflt is then the fips provider) */
	OSSL_PROVIDER *fips0 = NULL, *base0 = NULL, *base = NULL;
	int status = 1;
	cs_err r;

	harden_process();
	cs_json_wiping_allocator();
	cs_event_wiping_allocator();
	cs_token_meter_observe(cs_metrics_token_call); /* token calls in GET /metrics */
	if (cs_config_load(path, &cfg, &diag) != CS_OK) {
		print_diag(&diag);
		fprintf(stderr, "%s: configuration invalid\n", path);
		return 1;
	}
	cs_log_configure(cfg->log.level, cfg->log.format, 2);
	app.cfg = cfg;
	make_store_private(cfg->store.path);
	if ((r = cs_presets_load(cfg->server.presets_file, cfg->file, &app.presets, &diag)) != CS_OK) {
		print_diag(&diag);
		cs_log_error("presets %s invalid", cfg->server.presets_file);
		goto out;
	}
	char why[512];
	if ((r = cs_wordlist_load_diag(cfg->server.wordlist_file, &app.wordlist, why, sizeof(why))) != CS_OK) {
		cs_log_error("setting 'server.wordlist_file': %s", why);
		goto out;
	}
	if ((r = cs_presets_check(app.presets, app.wordlist, why, sizeof(why))) != CS_OK) {
		cs_log_error("%s", why); /* a preset that can never be met */
		goto out;
	}
	if (retention_warning(cfg, app.presets, why, sizeof(why)))
		cs_log_warn("%s", why);
	if (cfg->crypto.openssl_fips) {
		if ((r = openssl_fips_load(NULL, &fips0, &base0, why, sizeof(why))) != CS_OK) {
			cs_log_error("%s", why);
			goto out;
		}
		cs_log_info("crypto.openssl_fips: software crypto from OpenSSL's FIPS provider");
	}
	cs_token_params tp = {cfg->pkcs11.module, cfg->pkcs11.token_uri, cfg->pkcs11.pin_file,
			      (unsigned)cfg->pkcs11.sessions, 0};
	if ((r = cs_token_open(&tp, &app.token)) != CS_OK) {
		cs_log_error("token %s: %s", cfg->pkcs11.token_uri, cs_strerror(r));
		goto out;
	}
	if ((app.libctx = OSSL_LIB_CTX_new()) == NULL ||
	    (r = cs_provider_load(app.libctx, app.token, &prov)) != CS_OK ||
	    (cfg->crypto.openssl_fips
		     ? (r = openssl_fips_load(app.libctx, &deflt, &base, why, sizeof(why))) != CS_OK
		     : (deflt = OSSL_PROVIDER_load(app.libctx, "default")) == NULL) ||
	    !EVP_set_default_properties(app.libctx, "?provider!=credsign-pkcs11") ||
	    (r = cs_provider_use_token_rng(app.libctx)) != CS_OK) {
		cs_log_error("OpenSSL provider set-up failed%s%s", r == CS_E_CONFIG ? ": " : "",
			     r == CS_E_CONFIG ? why : "");
		goto out;
	}
	if ((r = cs_app_describe_token(&app)) != CS_OK ||
	    (r = cs_signer_open(app.libctx, cfg->pkcs11.signing_key, &app.signer)) != CS_OK ||
	    (r = cs_ledger_open(cfg->store.path, cfg->audit.write_timeout_ms, &app.ledger)) != CS_OK ||
	    (r = register_signing_key(&app)) != CS_OK ||
	    (r = cs_audit_open(cfg, app.signer, &app.audit)) != CS_OK ||
	    (r = record_config_load(&app)) != CS_OK ||
	    (r = record_token_validation(&app)) != CS_OK ||
	    (r = cs_ledger_start(app.ledger)) != CS_OK) {
		cs_log_error("start-up failed: %s", cs_strerror(r));
		goto out;
	}
	cs_log_info("credsignd %s starting: node=%s token=\"%s\" signing key kid=%s", CREDSIGN_VERSION,
		    cfg->server.node_id, cfg->pkcs11.token_uri, cs_signer_kid(app.signer));
	if ((r = cs_server_run(&app)) == CS_OK) {
		status = 0;
		cs_log_info("stopped");
	} else {
		cs_log_error("server failed: %s", cs_strerror(r));
	}
out:
	cs_ledger_close(app.ledger); /* commits what was submitted */
	cs_audit_free(app.audit);
	cs_signer_free(app.signer);
	json_decref(app.entropy_source);
	OSSL_PROVIDER_unload(base);
	OSSL_PROVIDER_unload(deflt);
	OSSL_PROVIDER_unload(prov);
	OSSL_LIB_CTX_free(app.libctx);
	OSSL_PROVIDER_unload(base0);
	OSSL_PROVIDER_unload(fips0);
	cs_token_close(app.token);
	cs_presets_free(app.presets);
	cs_wordlist_free(app.wordlist);
	cs_config_free(cfg);
	return status;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: credsignd --config FILE\n"
		   "       credsignd --check-config FILE\n"
		   "       credsignd --version\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"check-config", required_argument, NULL, 'C'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			return serve(optarg);
		case 'C':
			return check_config(optarg);
		case 'V':
			printf("credsignd %s\n", CREDSIGN_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	usage(stderr);
	return 2;
}
