/*
 * credsignd: the signing appliance daemon.
 *
 *   credsignd [-v] --config FILE     serve (foreground, logs to stderr)
 *   credsignd [-v] --check-config FILE [--offline]
 *                                    validate a configuration and exit 0/1
 *   credsignd --version
 *
 * --check-config loads the file (every setting, the files it names, the
 * presets) and then does what start-up does with the token (unless
 * --offline) and the TLS material without serving or writing anything:
 * opens the module and the token, logs in, checks the mechanisms and the
 * RNG (CKF_RNG, one C_GenerateRandom), finds every configured key (the
 * signing key signs once), and checks the server certificate and key
 * (they match, within their dates; a pkcs11: key only with the token), the
 * client CA and the CRL (loads, not expired). Each problem names its
 * setting and the file as given; a failing PKCS#11 call names the function
 * and its CKR_ value; what the layers below logged follows, indented.
 * -v/--verbose: debug level for the run, whatever log.level says.
 *
 * Start-up checks and binds everything before it changes any state: the
 * configuration, presets, the listeners (server.listen,
 * server.health_listen), the token (login, mechanisms, RNG), the credsign provider in the
 * daemon's own OpenSSL library context with the token RNG as its DRBG, the
 * configured signing key when there is no store yet (it signs once), the TLS
 * material; only then the store (created or migrated), the signing key in
 * force, the audit log. Any failure stops start-up with exit status 1.
 *
 * The store decides which key signs (its lifecycle, ledger.h): a store
 * that never had an active key is bootstrapped with pkcs11.signing_key
 * (recorded active, audited key.activate by config:pkcs11.signing_key);
 * otherwise the store's active key signs, whatever the configuration says,
 * once the daemon verified its activation itself (cs_app_key_warrant: the
 * ceremony's approvals under this configuration's officers and quorum,
 * the new key's signature of the rollover statement; or the bootstrap of
 * the only key ever active), and it must be in the token under its kid,
 * with its registered chain, and sign once, or start-up stops. A
 * configured key that is not it is reported: a warning at start and in
 * --check-config naming its state and since when, and the active key with
 * who activated it in which ceremony. A store without an active key (the
 * last one compromised), with several, or whose active key's activation
 * does not verify starts not ready: certification fails closed (503
 * no_active_key), and the key watch's first poll logs and audits why
 * (key.switch failure). A store whose guards (the triggers and the index
 * of store.h) are missing is refused: start-up stops, and --check-config
 * names the guard. While it runs, the key watch (app.h) follows the
 * store's active key, forward only, and signs the revocation list.
 *
 * Start-up and --check-config warn (neither refuses) of a signing profile
 * that allows digest beside jws or dsse (its key's JWS or DSSE signature
 * over any bytes can be had as a digest signature), of keys the store
 * records for a profile the configuration does not have (its JWKS stays
 * served; it cannot sign), and of a key whose records include digests
 * (it has signed bare digests) that is the configured or active key of a
 * profile allowing jws or dsse (rotate it), or a key of a profile no
 * longer configured (for relying parties). SIGHUP reloads the access
 * rules alone (service.h): grants naming a profile not in force are
 * refused.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <openssl/conf.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

#include "access.h"
#include "app.h"
#include "audit.h"
#include "ceremony.h"
#include "config.h"
#include "confine.h"
#include "cs_log.h"
#include "jose.h"
#include "keyproc.h"
#include "privsep.h"
#include "provider.h"
#include "server.h"
#include "service.h"
#include "store_target.h"
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

/* ---- checks that change nothing: the token, its keys, the TLS material ------ */

/* --check-config's own output, on stderr: the loader's lines, then each
 * problem as "FILE:LINE: setting 'tls.cert': reason" (FILE as given on the
 * command line), and what the layers below logged about it (the token
 * layer: "C_Initialize of ...: CKR_ARGUMENTS_BAD ...") indented under it,
 * "    error: ...". Those lines are captured (cs_log in its text format, to
 * a memory file) rather than mixed in as log lines; what no problem
 * explains is printed before the verdict as "FILE: warning: ...". */
typedef struct {
	int fd;    /* the memory file cs_log writes to; -1: log lines go to stderr */
	off_t off; /* how much of it was printed */
} capture;

static capture check_log = {.fd = -1};

/* Capture log lines at `level` and above (again: a new level). */
static void capture_start(cs_log_level level)
{
	if (check_log.fd < 0) {
		check_log.fd = memfd_create("credsignd-check-config", MFD_CLOEXEC);
		check_log.off = 0;
	}
	cs_log_configure(level, CS_LOG_TEXT, check_log.fd >= 0 ? check_log.fd : STDERR_FILENO);
}

/* Print what was logged since the last call: indented under the line just
 * printed, or, with file, each on its own as "FILE: LEVEL: ..." (warning,
 * error, note, debug). */
static void capture_print(const char *file)
{
	char buf[4096];
	ssize_t n;
	if (check_log.fd < 0)
		return;
	while ((n = pread(check_log.fd, buf, sizeof(buf) - 1, check_log.off)) > 0) {
		/* whole lines only; a line longer than buf is printed in pieces */
		char *end = memrchr(buf, '\n', (size_t)n);
		size_t take = end != NULL ? (size_t)(end - buf) + 1 : (size_t)n;
		buf[take] = '\0';
		check_log.off += (off_t)take;
		for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line != NULL;
		     line = strtok_r(NULL, "\n", &save)) {
			if (file != NULL)
				fprintf(stderr, "%s: %s\n", file, line);
			else
				fprintf(stderr, "    %s\n", line);
		}
	}
}

static void capture_stop(void)
{
	if (check_log.fd >= 0)
		close(check_log.fd);
	check_log.fd = -1;
	cs_log_configure(CS_LOG_INFO, CS_LOG_LOGFMT, STDERR_FILENO);
}

/* Problems found with a setting after the file loaded. --check-config
 * prints each like the loader (above); the daemon logs them. */
typedef struct {
	const cs_config *cfg;
	int to_log;
	int problems;
} checker;

static void report(checker *c, int is_warning, const char *setting, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));
static void report(checker *c, int is_warning, const char *setting, const char *fmt, va_list ap)
{
	char reason[1024], where[PATH_MAX + 16];
	vsnprintf(reason, sizeof(reason), fmt, ap);
	c->problems += !is_warning;
	cs_config_where(c->cfg, setting, where, sizeof(where));
	if (c->to_log) {
		cs_log_write(is_warning ? CS_LOG_WARN : CS_LOG_ERROR, "serve", "%s: setting '%s': %s", where, setting,
			     reason);
		return;
	}
	fprintf(stderr, "%s: %ssetting '%s': %s\n", where, is_warning ? "warning: " : "", setting, reason);
	capture_print(NULL); /* what the layers below said about it */
}

static void problem(checker *c, const char *setting, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void problem(checker *c, const char *setting, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	report(c, 0, setting, fmt, ap);
	va_end(ap);
}

/* ---- the store the configuration names ------------------------------------------
 * SQLite: the file store.path (which may not exist yet: a new store);
 * PostgreSQL: the database of store.postgresql.connection, named in
 * messages as "postgresql://USER@HOST:PORT/DB" (cs_store_target_name). */

/* The setting that names the store, for messages. */
static const char *store_setting(const cs_config *cfg)
{
	return cs_store_target_is_pg(cfg) ? "store.postgresql.connection" : "store.path";
}

/* The store's name for messages (the path, or the database without a
 * password). One buffer: start-up and --check-config are one thread. */
static const char *store_label(const cs_config *cfg)
{
	static char buf[512];
	cs_store_target t;
	if (!cs_store_target_is_pg(cfg))
		return cfg->store.path;
	if (cs_store_target_from_config(cfg, &t) != CS_OK)
		return "store.postgresql";
	return cs_store_target_name(&t, buf, sizeof(buf));
}

/* Set when --check-config found the PostgreSQL store unreachable (reported
 * once): the checks that read it then skip it, as a SQLite store not made
 * yet. */
static int store_unreachable;

/* Open the configured store for reading only, as it is: *out NULL (and
 * CS_OK) when there is none yet (a SQLite file not made, or a PostgreSQL
 * store --check-config already reported unreachable). */
static cs_err store_open_existing(const cs_config *cfg, cs_store **out)
{
	cs_store_target t;
	struct stat st;
	*out = NULL;
	cs_err r = cs_store_target_from_config(cfg, &t);
	if (r != CS_OK)
		return r;
	if (t.backend == CS_STORE_SQLITE ? stat(t.path, &st) != 0 : store_unreachable)
		return CS_OK;
	return cs_store_connect_existing_readonly(&t, out);
}

/* The PostgreSQL connections the network process holds at once: one per
 * worker, the probe listener's, the ledger's writer and reader, the key
 * watch's (the start-up's own are closed before those open). */
static int store_pool_need(const cs_config *cfg)
{
	return cfg->server.workers + (cfg->server.health_listen != NULL) + 2 + 1;
}

/* The store is new: a SQLite file not made yet, or a PostgreSQL store that
 * cannot be read or never had an active key (start-up then records the
 * configured key as its first). */
static int store_is_new(const cs_config *cfg)
{
	cs_store *store = NULL;
	int ever = 0;
	if (!cs_store_target_is_pg(cfg)) {
		struct stat st;
		return stat(cfg->store.path, &st) != 0 && errno == ENOENT;
	}
	if (store_open_existing(cfg, &store) != CS_OK || store == NULL || cs_store_keys_ever_active(store, &ever) != CS_OK)
		ever = 0;
	cs_store_close(store);
	return !ever;
}

static void warning(checker *c, const char *setting, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* --check-config, a PostgreSQL store: TLS weaker than verify-full warned
 * of, the pool too small for the daemon's threads refused, and the
 * database opened for reading as start-up opens it (the connection, its
 * TLS and authentication, the schema version and the guards), what failed
 * printed under the problem. */
static void check_store_pg(checker *c, int offline)
{
	const cs_config *cfg = c->cfg;
	if (!cs_store_target_is_pg(cfg))
		return;
	const char *mode = cfg->store.postgresql.sslmode;
	if (mode != NULL && strcmp(mode, "verify-full") != 0)
		warning(c, "store.postgresql.sslmode",
			"%s: the PostgreSQL server is %s (sslmode %s): set verify-full and ca_file so that "
			"the connection is encrypted to the server the certificate names",
			mode, strcmp(mode, "verify-ca") == 0 ? "not checked against its host name"
			      : strcmp(mode, "require") == 0 ? "not authenticated"
			      : strcmp(mode, "disable") == 0 ? "reached without TLS"
						   : "possibly reached without TLS",
			mode);
	int need = store_pool_need(cfg);
	if (cfg->store.postgresql.pool_size < need)
		problem(c, "store.postgresql.pool_size",
			"%d is too small: the daemon holds %d connections at once (server.workers %d, the "
			"ledger's 2, the key watch's 1%s)",
			cfg->store.postgresql.pool_size, need, cfg->server.workers,
			cfg->server.health_listen != NULL ? ", the probe listener's 1" : "");
	/* --offline too: the store is not the token */
	(void)offline;
	cs_store_target t;
	cs_store *store = NULL;
	cs_err r = cs_store_target_from_config(cfg, &t);
	if (r == CS_OK)
		r = cs_store_connect_existing_readonly(&t, &store);
	cs_store_close(store);
	if (r != CS_OK) {
		const char *setting = cs_store_failure_setting();
		problem(c, setting != NULL ? setting : "store.postgresql.connection",
			"store %s cannot be opened: %s", store_label(cfg), cs_strerror(r));
		store_unreachable = 1;
	}
}

/* Worth knowing, but the configuration works (e.g. an expired CA kept in
 * the bundle beside its successor). */
static void warning(checker *c, const char *setting, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void warning(checker *c, const char *setting, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	report(c, 1, setting, fmt, ap);
	va_end(ap);
}

/* " (C_Login: CKR_PIN_INCORRECT)" when this thread's last failing PKCS#11
 * call explains r, else "". */
static const char *token_cause(cs_err r, char *buf, size_t len)
{
	char call[128];
	if (cs_token_meter_cause(r, call, sizeof(call))[0] == '\0')
		buf[0] = '\0';
	else
		snprintf(buf, len, " (%s)", call);
	return buf;
}

/* A token that cannot be opened: the setting that names what failed, what
 * the token reported (the failing call, the PIN's state, the tokens an
 * ambiguous URI matches) and what to do about it. */
static void token_problem(checker *c, cs_err r)
{
	const cs_config *cfg = c->cfg;
	const char *setting = "pkcs11.token_uri", *value = cfg->pkcs11.token_uri, *advice = "";
	char cause[160], source[128], tokens[512], reason[768];
	const char *fn = NULL;
	CK_RV rv = CKR_OK;
	(void)cs_token_meter_last_failure(&fn, &rv);
	snprintf(reason, sizeof(reason), "%s%s", cs_strerror(r), token_cause(r, cause, sizeof(cause)));
	int pin_setting = cfg->pkcs11.pin_file != NULL;
	switch (r) {
	case CS_E_MODULE_LOAD:
	case CS_E_MODULE_INIT:
		setting = "pkcs11.module";
		value = cfg->pkcs11.module;
		/* arguments the module refused are the setting to change */
		if (r == CS_E_MODULE_INIT && cfg->pkcs11.init_args != NULL && fn != NULL &&
		    strcmp(fn, "C_Initialize") == 0 && rv == CKR_ARGUMENTS_BAD) {
			setting = "pkcs11.init_args";
			value = cfg->pkcs11.init_args;
			snprintf(reason, sizeof(reason), "the module %s refused these initialisation arguments%s",
				 cfg->pkcs11.module, token_cause(r, cause, sizeof(cause)));
			advice = "; give what its documentation says (CK_C_INITIALIZE_ARGS.pReserved)";
		}
		break;
	case CS_E_PIN_LOCKED:
	case CS_E_PIN_EXPIRED:
	case CS_E_PIN_FINAL_TRY:
		/* what the token said (C_Login's answer, or the PIN flags that
		 * stopped the login before it), not the code it was mapped to */
		switch (cs_token_meter_pin_state(r, source, sizeof(source))) {
		case CS_PIN_STATE_NOT_INITIALIZED:
			snprintf(reason, sizeof(reason), "the token's user PIN is not initialized (%s)", source);
			advice = "; set it with the token's tools (e.g. pkcs11-tool --init-pin), then write it to "
				 "pkcs11.pin_file";
			pin_setting = 0; /* the token's state: no file can fix it */
			break;
		case CS_PIN_STATE_EXPIRED:
			snprintf(reason, sizeof(reason), "the token's user PIN has expired or must be changed (%s)",
				 source);
			advice = "; change it with the token's tools and write the new PIN to pkcs11.pin_file";
			break;
		case CS_PIN_STATE_LOCKED:
			snprintf(reason, sizeof(reason), "the token's user PIN is locked (%s)", source);
			advice = "; unlock it with the token's tools (the security officer resets it), then "
				 "write the new PIN to pkcs11.pin_file";
			break;
		case CS_PIN_STATE_FINAL_TRY:
			snprintf(reason, sizeof(reason), "one more wrong PIN locks the token's user PIN (%s)",
				 source);
			advice = "; credsign does not try: check the PIN in pkcs11.pin_file with the token's tools";
			break;
		case CS_PIN_STATE_UNKNOWN:
			break;
		}
		__attribute__((fallthrough));
	case CS_E_PIN_SOURCE:
	case CS_E_PIN_FILE:
	case CS_E_PIN_FILE_PERMS:
	case CS_E_PIN_INCORRECT:
		if (pin_setting) {
			setting = "pkcs11.pin_file";
			value = cfg->pkcs11.pin_file;
		}
		break;
	case CS_E_TOKEN_AMBIGUOUS:
		cs_token_meter_matching_tokens(cfg->pkcs11.token_uri, tokens, sizeof(tokens));
		if (tokens[0] != '\0') {
			snprintf(reason, sizeof(reason), "%s: serials %s", cs_strerror(r), tokens);
			advice = "; add serial=SERIAL to the URI";
		}
		break;
	default:
		break;
	}
	problem(c, setting, "%s: %s%s", value, reason, advice);
}

/* The token's random number generator, which every random value of the
 * daemon comes from (credentials, ids, the TLS DRBG): the token reports it
 * (CKF_RNG) and one C_GenerateRandom draws. */
static cs_err check_token_rng(checker *c, cs_token *token)
{
	const char *uri = c->cfg->pkcs11.token_uri;
	cs_token_info info;
	uint8_t probe[32];
	char cause[160];
	cs_token_meter_clear();
	cs_err r = cs_token_get_info(token, &info);
	if (r == CS_OK && !(info.flags & CKF_RNG)) {
		problem(c, "pkcs11.token_uri",
			"%s: the token reports no random number generator (CKF_RNG not set in C_GetTokenInfo); "
			"credsign draws every random value from the token",
			uri);
		return CS_E_TOKEN_NO_RNG;
	}
	if (r == CS_OK) {
		cs_token_meter_clear();
		r = cs_token_random(token, probe, sizeof(probe));
		OPENSSL_cleanse(probe, sizeof(probe));
	}
	/* the call and its CKR_ say it better than the code it was mapped to */
	if (r != CS_OK && token_cause(r, cause, sizeof(cause))[0] != '\0')
		problem(c, "pkcs11.token_uri", "%s: the token's random number generator does not work%s", uri, cause);
	else if (r != CS_OK)
		problem(c, "pkcs11.token_uri", "%s: the token's random number generator does not work: %s", uri,
			cs_strerror(r));
	return r;
}

/* The purpose of the key a setting names ("pkcs11.signing_key",
 * "tls.key", "signing.profiles.[i].key"): what a key process binds it to. */
static const cs_key_purpose *setting_purpose(const checker *c, const char *setting, cs_key_purpose *out)
{
	size_t i = 0;
	memset(out, 0, sizeof(*out));
	if (strcmp(setting, "tls.key") == 0)
		out->kind = CS_KEY_PURPOSE_TLS;
	else if (sscanf(setting, "signing.profiles.[%zu]", &i) == 1 && i < c->cfg->signing.nprofiles)
		cs_app_key_purpose(c->cfg->signing.profiles[i].name, out);
	else
		cs_app_key_purpose(NULL, out); /* pkcs11.signing_key */
	return out;
}

/* Find a configured key in the token as the daemon will, and with `sign`
 * make a signature with it through the provider (verified, as the daemon
 * verifies every signature). CS_OK when it is there (and signs). */
static cs_err check_token_key(checker *c, cs_token *token, OSSL_LIB_CTX *libctx, const char *setting,
			    const char *uri, int sign)
{
	cs_key_ref query, found;
	char cause[160];
	cs_token_meter_clear();
	cs_err r = cs_key_ref_from_uri(uri, &query);
	if (r == CS_OK)
		r = cs_token_find_key(token, &query, &found);
	if (r != CS_OK) {
		problem(c, setting, "%s: %s%s%s", uri, cs_strerror(r), token_cause(r, cause, sizeof(cause)),
			r == CS_E_KEY_NOT_FOUND
				? " (an EC P-256 private key with its public key; "
				  "credsign-admin key generate --label LABEL makes one)"
				: "");
		return r;
	}
	if (!sign)
		return CS_OK;
	cs_signer *signer = NULL;
	char *jws = NULL;
	json_t *claims = json_pack("{s:s}", "check", "credsignd --check-config");
	cs_token_meter_clear();
	cs_key_purpose purpose;
	r = claims == NULL ? CS_E_NOMEM
			   : cs_signer_open_for(libctx, uri, setting_purpose(c, setting, &purpose), &signer);
	if (r == CS_OK)
		r = cs_signer_jws(signer, "credsign-check+jwt", claims, &jws);
	if (r != CS_OK)
		problem(c, setting, "%s: the key is in the token but does not sign: %s%s", uri, cs_strerror(r),
			token_cause(r, cause, sizeof(cause)));
	free(jws);
	json_decref(claims);
	cs_signer_free(signer);
	return r;
}

/* ---- the signing key: the store decides ---------------------------------------
 * The store's lifecycle (ledger.h) decides which key signs, not the
 * configuration: pkcs11.signing_key only bootstraps a store that never had
 * an active key. Afterwards a configured key that is not the active one
 * changes nothing; start-up (a warning) and --check-config (a warning
 * line) say what it is and which key signs instead, and why. */

/* The kid of the key at uri in the token (kid[44]), without signing. */
static cs_err token_kid(cs_token *token, const char *uri, char kid[44])
{
	cs_key_ref query, found;
	EVP_PKEY *pub = NULL;
	cs_err r = cs_key_ref_from_uri(uri, &query);
	if (r == CS_OK && (r = cs_token_find_key(token, &query, &found)) == CS_OK &&
	    (r = cs_token_public_key(token, &found, &pub)) == CS_OK)
		r = cs_jwk_thumbprint(pub, kid);
	EVP_PKEY_free(pub);
	return r;
}

/* A key's lifecycle as recorded, copied out of the store's callback. */
typedef struct {
	int found;
	char status[16], since[40], by[160], ceremony[64], destroyed[40];
} key_state;

static void copy_state(void *arg, const cs_key_info *k)
{
	key_state *st = arg;
	const char *since = k->created_at, *by = k->created_by, *ceremony = NULL;
	if (strcmp(k->status, "active") == 0)
		since = k->activated_at, by = k->activated_by, ceremony = k->activated_ceremony;
	else if (strcmp(k->status, "retired") == 0)
		since = k->retired_at, by = k->retired_by, ceremony = k->retired_ceremony;
	else if (strcmp(k->status, "compromised") == 0)
		since = k->compromised_at, by = k->compromised_by, ceremony = k->compromised_ceremony;
	st->found = 1;
	snprintf(st->status, sizeof(st->status), "%s", k->status);
	snprintf(st->since, sizeof(st->since), "%s", since != NULL ? since : "");
	snprintf(st->by, sizeof(st->by), "%s", by != NULL ? by : "");
	snprintf(st->ceremony, sizeof(st->ceremony), "%s", ceremony != NULL ? ceremony : "");
	snprintf(st->destroyed, sizeof(st->destroyed), "%s", k->destroyed_at != NULL ? k->destroyed_at : "");
}

/* "retired since TS by WHO in ceremony ID" (each part when known): at most
 * the fields of key_state and the words between them */
#define STATE_TEXT_MAX 448
/* configured_key_report's message: two parts of 512 and the words between */
#define CONFIGURED_REPORT_MAX 1280
static void state_text(const key_state *st, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s%s%s%s%s%s%s", st->status, st->since[0] ? " since " : " (since unknown)",
		 st->since, st->by[0] ? " by " : "", st->by, st->ceremony[0] ? " in ceremony " : "", st->ceremony,
		 st->destroyed[0] ? ", its token objects destroyed at " : "", st->destroyed);
}

/* When a configured key (uri: pkcs11.signing_key, or the key of signing
 * profile `profile`) is not the store's active key (of the profile;
 * active: NULL when there is none): what it is and which key signs
 * instead, into msg[len]; 0 when it is the active key (nothing to say).
 * Reads on store. */
static int configured_key_report(cs_token *token, cs_store *store, const char *uri, const char *profile,
				 const cs_active_key *active, char *msg, size_t len)
{
	char kid[44], configured[512], signs[512];
	if (active != NULL && strcmp(active->uri, uri) == 0)
		return 0;
	cs_err r = token_kid(token, uri, kid);
	if (r == CS_OK && active != NULL && strcmp(kid, active->kid) == 0)
		return 0; /* the same key, named otherwise */
	if (r != CS_OK) {
		snprintf(configured, sizeof(configured), "names no usable key in the token (%s)", cs_strerror(r));
	} else {
		key_state st = {0};
		char state[STATE_TEXT_MAX];
		if (cs_store_key_info(store, kid, copy_state, &st) != CS_OK || !st.found) {
			snprintf(configured, sizeof(configured), "names key %s, which the store has not recorded", kid);
		} else {
			state_text(&st, state, sizeof(state));
			snprintf(configured, sizeof(configured), "names key %s, %s", kid, state);
		}
	}
	if (active == NULL && profile == NULL) {
		snprintf(signs, sizeof(signs),
			 "the store has no active key: certification fails closed until a ceremony activates one");
	} else if (active == NULL) {
		snprintf(signs, sizeof(signs),
			 "the profile has no active key: its signatures fail closed until a ceremony activates one");
	} else {
		key_state st = {0};
		char state[STATE_TEXT_MAX];
		(void)cs_store_key_info(store, active->kid, copy_state, &st);
		state_text(&st, state, sizeof(state));
		snprintf(signs, sizeof(signs), "the store's active key %s%s signs (%s)", active->kid,
			 profile != NULL ? " of the profile" : "", st.found ? state : "active");
	}
	if (profile == NULL)
		snprintf(msg, len,
			 "%s: %s; the configuration does not choose the active key (it only bootstraps a store that "
			 "never had one; keys change by ceremony, credsign-admin ceremony): %s",
			 uri, configured, signs);
	else
		snprintf(msg, len,
			 "%s: %s; the configuration does not choose the profile's active key (it only bootstraps a "
			 "profile that never had one; keys change by ceremony, credsign-admin ceremony): %s",
			 uri, configured, signs);
	return 1;
}

/* --check-config: the signing key as start-up will find it, when the store
 * exists (it is neither created nor written here; one whose guards are
 * missing is refused, naming them): a store that never had an active key
 * bootstraps with pkcs11.signing_key, which must be in the token and sign;
 * otherwise the store's active key must be put in force by its warrant
 * under this configuration's officers (cs_app_key_warrant; the forward
 * rule needs a running daemon) and be usable (its kid, its registered
 * chain, one signature), and a configured key that is not it is reported
 * (a warning). */
static void check_signing_keys(checker *c, cs_token *token, OSSL_LIB_CTX *libctx)
{
	const cs_config *cfg = c->cfg;
	cs_store *store = NULL;
	cs_active_key active = {0};
	cs_officers *officers = NULL;
	char officers_why[CS_CEREMONY_WHY_MAX] = "";
	int ever = 0, reading = 0;
	cs_err r = CS_OK;
	if ((r = store_open_existing(cfg, &store)) == CS_OK && store != NULL &&
	    (r = cs_store_read_begin(store)) == CS_OK) {
		reading = 1;
		r = cs_store_keys_ever_active(store, &ever);
	}
	if (r != CS_OK) {
		problem(c, store_setting(cfg), "%s: the signing keys' states cannot be read: %s", store_label(cfg),
			cs_strerror(r));
	} else if (!ever) {
		/* the key start-up will record as the first active one */
		(void)check_token_key(c, token, libctx, "pkcs11.signing_key", cfg->pkcs11.signing_key, 1);
	} else if ((r = cs_store_key_active(store, &active)) != CS_OK && r != CS_E_NOT_FOUND) {
		problem(c, store_setting(cfg), "%s: the active signing key cannot be read: %s%s", store_label(cfg),
			cs_strerror(r),
			r == CS_E_CONFLICT ? " (several keys are active: the store was edited outside credsign); the "
					     "daemon would start not ready"
					   : "");
	} else {
		char why[CS_KEY_WHY_MAX], msg[CONFIGURED_REPORT_MAX];
		const char *code = NULL;
		cs_signer *signer = NULL;
		cs_key_warrant warrant;
		cs_err w = CS_OK;
		if (r == CS_OK && (cs_officers_load(cfg, &officers, officers_why) == CS_OK || !cfg->ceremony.present))
			w = cs_app_key_warrant(store, officers, officers_why, active.kid, &warrant, why, sizeof(why));
		else if (r == CS_OK)
			problem(c, "ceremony", "%s", officers_why);
		if (r == CS_E_NOT_FOUND)
			warning(c, store_setting(cfg),
				"%s: the store has no active signing key (the last one was compromised): the daemon "
				"starts not ready and certification fails closed (503 no_active_key) until a ceremony "
				"activates one",
				store_label(cfg));
		else if (w == CS_E_CEREMONY_REFUSED)
			problem(c, store_setting(cfg),
				"%s: the store's active signing key %s would not be put in force: %s; the daemon would "
				"start not ready (503 no_active_key)",
				store_label(cfg), active.kid, why);
		else if (w != CS_OK)
			problem(c, store_setting(cfg), "%s: the active signing key's activation cannot be read: %s",
				store_label(cfg), cs_strerror(w));
		else if (cs_app_open_key(libctx, &active, &signer, &code, why, sizeof(why)) != CS_OK)
			problem(c, store_setting(cfg), "%s: the store's active signing key %s cannot be used: %s (%s)",
				store_label(cfg), active.kid, why, code);
		cs_signer_free(signer);
		if (w == CS_OK &&
		    configured_key_report(token, store, cfg->pkcs11.signing_key, NULL, r == CS_OK ? &active : NULL, msg,
					  sizeof(msg)))
			warning(c, "pkcs11.signing_key", "%s", msg);
	}
	if (reading)
		cs_store_read_end(store);
	cs_officers_free(officers);
	cs_active_key_free(&active);
	cs_store_close(store);
}

/* ---- the signing profiles' keys -------------------------------------------------
 * Each signing profile names a token key (signing.profiles.[i].key) used by
 * that profile only: a key that is the certificate-signing key (the one
 * pkcs11.signing_key names, or one the store records as a certificate
 * key), another profile's configured key, or a key the store records under
 * another profile is refused at start and by --check-config, naming the
 * setting where the file sets it. As for the certificate key, the store
 * decides which key of a profile signs: the configured key bootstraps a
 * profile that never had an active key (audited key.activate by
 * config:signing.profiles.NAME.key); afterwards the store's active key of
 * the profile signs once the daemon verified its activation
 * (cs_app_key_warrant_in), and a configured key that is not it is
 * reported (a warning). A profile without a key in force (none active,
 * several, a warrant that does not hold) starts with an empty slot: its
 * signatures fail closed (503 no_active_key) and the key watch's first
 * poll says why. Profiles do not make /readyz unready. */

/* A configured profile key as found in the token. */
typedef struct {
	char setting[48]; /* "signing.profiles.[i].key" */
	char kid[44];     /* "" when not found (err says why) */
	cs_err err;
	int refused;      /* the certificate key, or another profile's */
} profile_key;

/* The token's part: each profile's key found and its kid computed; the
 * certificate key and other profiles' keys refused (problems). A key not
 * in the token is not a problem here: it is one only for a profile that
 * needs it to bootstrap (profile_keys_store_check). keys[nprofiles]. */
static cs_err profile_keys_token_check(checker *c, cs_token *token, profile_key *keys)
{
	const cs_config *cfg = c->cfg;
	char cert_kid[44] = "";
	int before = c->problems;
	if (token_kid(token, cfg->pkcs11.signing_key, cert_kid) != CS_OK)
		cert_kid[0] = '\0'; /* e.g. destroyed after a rotation: the store's records say the rest */
	for (size_t i = 0; i < cfg->signing.nprofiles; i++) {
		const cs_config_profile *p = &cfg->signing.profiles[i];
		profile_key *k = &keys[i];
		snprintf(k->setting, sizeof(k->setting), "signing.profiles.[%zu].key", i);
		cs_token_meter_clear();
		k->err = token_kid(token, p->key, k->kid);
		if (k->err != CS_OK) {
			k->kid[0] = '\0';
			continue;
		}
		if (cert_kid[0] != '\0' && strcmp(k->kid, cert_kid) == 0) {
			problem(c, k->setting,
				"%s: key %s is the certificate-signing key (pkcs11.signing_key %s): a profile's key "
				"signs for its profile only, never certificates (credsign-admin key generate --label "
				"LABEL --profile %s makes one)",
				p->key, k->kid, cfg->pkcs11.signing_key, p->name);
			k->refused = 1;
			continue;
		}
		for (size_t j = 0; j < i; j++)
			if (keys[j].kid[0] != '\0' && strcmp(keys[j].kid, k->kid) == 0) {
				problem(c, k->setting,
					"%s: key %s is the key of signing profile %s too (%s): each profile signs with "
					"a key of its own",
					p->key, k->kid, cfg->signing.profiles[j].name, keys[j].setting);
				k->refused = 1;
				break;
			}
	}
	return c->problems > before ? CS_E_CONFIG : CS_OK;
}

/* The store's lifecycle of one key (its profile), copied out. */
typedef struct {
	int found;
	char status[16];
	char *profile;
	cs_err err;
} key_profile;

static void copy_profile(void *arg, const cs_key_info *k)
{
	key_profile *kp = arg;
	kp->found = 1;
	snprintf(kp->status, sizeof(kp->status), "%s", k->status);
	free(kp->profile);
	kp->profile = k->profile != NULL ? strdup(k->profile) : NULL;
	if (k->profile != NULL && kp->profile == NULL)
		kp->err = CS_E_NOMEM;
}

/* The store's part: no configured profile key recorded as a certificate
 * key or under another profile; a profile that never had an active key
 * needs its configured key (it bootstraps). ever[i]: whether profile i
 * ever had an active key. Problems reported; CS_E_CONFIG when any, the
 * store's error when it cannot be read. */
static cs_err profile_keys_store_check(checker *c, cs_store *store, const profile_key *keys, int *ever)
{
	const cs_config *cfg = c->cfg;
	int before = c->problems;
	for (size_t i = 0; i < cfg->signing.nprofiles; i++) {
		const cs_config_profile *p = &cfg->signing.profiles[i];
		const profile_key *k = &keys[i];
		cs_err r = cs_store_keys_ever_active_in(store, p->name, &ever[i]);
		if (r != CS_OK) {
			problem(c, store_setting(cfg), "%s: the keys of signing profile %s cannot be read: %s", store_label(cfg),
				p->name, cs_strerror(r));
			return r;
		}
		if (k->kid[0] == '\0') {
			char cause[160];
			if (!ever[i])
				problem(c, k->setting,
					"%s: %s%s; the profile never had an active key: its configured key bootstraps "
					"it (an EC P-256 private key with its public key; credsign-admin key generate "
					"--label LABEL --profile %s makes one)",
					p->key, cs_strerror(k->err), token_cause(k->err, cause, sizeof(cause)), p->name);
			continue;
		}
		key_profile kp = {0};
		r = cs_store_key_info(store, k->kid, copy_profile, &kp);
		if (r == CS_OK)
			r = kp.err;
		if (r != CS_OK && r != CS_E_NOT_FOUND) {
			problem(c, store_setting(cfg), "%s: key %s cannot be read: %s", store_label(cfg), k->kid, cs_strerror(r));
			free(kp.profile);
			return r;
		}
		if (kp.found && kp.profile == NULL)
			problem(c, k->setting,
				"%s: key %s is recorded in the store as a certificate-signing key (%s): a profile's key "
				"signs for its profile only, never certificates",
				p->key, k->kid, kp.status);
		else if (kp.found && strcmp(kp.profile, p->name) != 0)
			problem(c, k->setting,
				"%s: key %s is recorded in the store as a key of signing profile %s (%s), not of %s: "
				"each profile signs with a key of its own",
				p->key, k->kid, kp.profile, kp.status, p->name);
		free(kp.profile);
	}
	return c->problems > before ? CS_E_CONFIG : CS_OK;
}

/* ---- keys that have signed bare digests ------------------------------------------
 * A key that ever signed a digest may have signed, for a digest signer,
 * the SHA-256 of any JWS signing input or DSSE pre-authentication
 * encoding: none of its JWS or DSSE signatures proves the appliance
 * checked what it signed, whatever the profile allows now. So start-up
 * and --check-config warn (neither refuses) of each key of a configured
 * profile that allows jws or dsse, its configured key or its active one,
 * whose records include digests (rotate it), and of each key of a profile
 * no longer configured whose records do (its JWKS stays served: relying
 * parties see "formats_signed" there). Compromised keys sign nothing
 * valid and are left out. */

/* A text from the store made printable and bounded into out[len]. */
static void printable(const char *text, char *out, size_t len)
{
	snprintf(out, len, "%s", text != NULL ? text : "");
	for (char *q = out; *q != '\0'; q++)
		if ((unsigned char)*q < 0x20 || (unsigned char)*q >= 0x7f)
			*q = '?';
}

/* Whether key kid of profile has signed digests (*yes); a key recorded
 * compromised counts as none. */
static cs_err signed_digests(cs_store *store, const char *profile, const char *kid, int *yes)
{
	const char *formats[CS_STORE_SIG_FORMATS + 1];
	key_state st = {0};
	*yes = 0;
	cs_err r = cs_store_key_formats_signed(store, profile, kid, formats);
	for (size_t i = 0; r == CS_OK && formats[i] != NULL; i++)
		*yes |= strcmp(formats[i], "digest") == 0;
	if (r == CS_OK && *yes && (r = cs_store_key_info(store, kid, copy_state, &st)) == CS_OK)
		*yes = strcmp(st.status, "compromised") != 0;
	return r == CS_E_NOT_FOUND ? CS_OK : r;
}

/* The keys of profiles not configured, copied out of the store's
 * callback (at most SIGNED_DIGESTS_KEYS_MAX; more are counted). */
#define SIGNED_DIGESTS_KEYS_MAX 256
typedef struct {
	const cs_config *cfg;
	struct {
		char kid[44];
		char *profile;
	} keys[SIGNED_DIGESTS_KEYS_MAX];
	size_t n, more;
	int nomem;
} unconfigured_keys;

static void note_unconfigured_key(void *arg, const cs_key_info *k)
{
	unconfigured_keys *u = arg;
	if (k->profile == NULL || cs_config_profile_find(u->cfg, k->profile) != NULL ||
	    strcmp(k->status, "compromised") == 0)
		return;
	if (u->n == SIGNED_DIGESTS_KEYS_MAX) {
		u->more++;
		return;
	}
	if ((u->keys[u->n].profile = strdup(k->profile)) == NULL) {
		u->nomem = 1;
		return;
	}
	snprintf(u->keys[u->n].kid, sizeof(u->keys[u->n].kid), "%s", k->kid);
	u->n++;
}

/* Profile i's key kid (configured or active) has signed digests: warned of
 * once per kid (seen: the kid already warned of for this profile). */
static cs_err warn_profile_key(checker *c, cs_store *store, size_t i, const char *kid, char seen[44])
{
	const cs_config_profile *p = &c->cfg->signing.profiles[i];
	int yes = 0;
	if (kid == NULL || kid[0] == '\0' || strcmp(kid, seen) == 0)
		return CS_OK;
	cs_err r = signed_digests(store, p->name, kid, &yes);
	if (r != CS_OK || !yes)
		return r;
	char setting[48], shown[44];
	snprintf(setting, sizeof(setting), "signing.profiles.[%zu].key", i);
	printable(kid, shown, sizeof(shown));
	warning(c, setting,
		"key %s of profile %s has signed bare digests: any JWS or DSSE signature of it may be a signer's "
		"own; rotate the key (docs/delegated-signing.md)",
		shown, p->name);
	snprintf(seen, 44, "%s", kid);
	return CS_OK;
}

/* The configured profiles allowing jws or dsse: their configured key
 * (kids[i], "" or kids NULL: not known, e.g. --check-config --offline)
 * and their active key. */
static cs_err warn_configured_signed_digests(checker *c, cs_store *store, const profile_key *kids)
{
	const cs_config *cfg = c->cfg;
	cs_err r = CS_OK;
	for (size_t i = 0; r == CS_OK && i < cfg->signing.nprofiles; i++) {
		const cs_config_profile *p = &cfg->signing.profiles[i];
		char seen[44] = "";
		cs_active_key active = {0};
		if (!(p->formats & (CS_SIG_FORMAT_JWS | CS_SIG_FORMAT_DSSE)))
			continue;
		cs_err a = cs_store_key_active_in(store, p->name, &active);
		if (a == CS_OK)
			r = warn_profile_key(c, store, i, active.kid, seen);
		else if (a != CS_E_NOT_FOUND && a != CS_E_CONFLICT) /* none, several: said elsewhere */
			r = a;
		cs_active_key_free(&active);
		if (r == CS_OK && kids != NULL && !kids[i].refused)
			r = warn_profile_key(c, store, i, kids[i].kid, seen);
	}
	return r;
}

/* The keys of profiles not configured (information for relying parties). */
static cs_err warn_unconfigured_signed_digests(checker *c, cs_store *store)
{
	unconfigured_keys *u = calloc(1, sizeof(*u));
	if (u == NULL)
		return CS_E_NOMEM;
	u->cfg = c->cfg;
	cs_err r = cs_store_keys_info(store, note_unconfigured_key, u);
	if (r == CS_OK && u->nomem)
		r = CS_E_NOMEM;
	for (size_t i = 0; r == CS_OK && i < u->n; i++) {
		int yes = 0;
		char kid[44], name[CS_CONFIG_PROFILE_NAME_MAX + 1];
		if ((r = signed_digests(store, u->keys[i].profile, u->keys[i].kid, &yes)) != CS_OK || !yes)
			continue;
		printable(u->keys[i].kid, kid, sizeof(kid));
		printable(u->keys[i].profile, name, sizeof(name));
		warning(c, "signing.profiles",
			"key %s of signing profile %s, which is not configured, has signed bare digests: any JWS or "
			"DSSE signature of it may be a signer's own (relying parties: its JWKS, "
			"/.well-known/jwks.json?profile=%s, says so in formats_signed; docs/delegated-signing.md)",
			kid, name, name);
	}
	if (r == CS_OK && u->more > 0)
		warning(c, "signing.profiles",
			"the store has %zu more key(s) of signing profiles not configured, not checked for bare digests",
			u->more);
	for (size_t i = 0; i < u->n; i++)
		free(u->keys[i].profile);
	free(u);
	return r;
}

/* Both warnings above, on the store when it exists (one read snapshot; a
 * store that cannot be read is left to the checks that need it). kids:
 * the configured profile keys as found in the token (NULL: not known). */
static void warn_signed_digests(checker *c, const profile_key *kids)
{
	const cs_config *cfg = c->cfg;
	cs_store *store = NULL;
	if (store_open_existing(cfg, &store) != CS_OK || store == NULL)
		return;
	cs_err r = cs_store_read_begin(store);
	if (r == CS_OK) {
		r = warn_configured_signed_digests(c, store, kids);
		if (r == CS_OK)
			r = warn_unconfigured_signed_digests(c, store);
		cs_store_read_end(store);
	}
	cs_store_close(store);
	if (r != CS_OK)
		cs_log_warn("%s: which keys have signed bare digests cannot be read: %s", store_label(cfg),
			    cs_strerror(r));
}

/* --check-config: the profiles' keys as start-up will find them (the
 * store neither created nor written): the refusals above; a profile that
 * never had an active key (or no store yet) needs its configured key to
 * sign; otherwise the store's active key of the profile must be put in
 * force by its warrant and be usable, and a configured key that is not it
 * is reported (a warning). */
static void check_profile_keys(checker *c, cs_token *token, OSSL_LIB_CTX *libctx)
{
	const cs_config *cfg = c->cfg;
	size_t n = cfg->signing.nprofiles;
	cs_store *store = NULL;
	cs_officers *officers = NULL;
	char officers_why[CS_CEREMONY_WHY_MAX] = "";
	int reading = 0, officers_loaded = 0;
	if (n == 0)
		return;
	profile_key *keys = calloc(n, sizeof(*keys));
	int *ever = calloc(n, sizeof(*ever));
	if (keys == NULL || ever == NULL) {
		problem(c, "signing.profiles", "%s", cs_strerror(CS_E_NOMEM));
		goto out;
	}
	if (profile_keys_token_check(c, token, keys) != CS_OK)
		goto out;
	cs_err r = CS_OK;
	if ((r = store_open_existing(cfg, &store)) == CS_OK && store != NULL && (r = cs_store_read_begin(store)) == CS_OK)
		reading = 1;
	if (r != CS_OK) {
		problem(c, store_setting(cfg), "%s: the signing profiles' keys cannot be read: %s", store_label(cfg),
			cs_strerror(r));
		goto out;
	}
	if (store != NULL && profile_keys_store_check(c, store, keys, ever) != CS_OK)
		goto out;
	for (size_t i = 0; i < n; i++) {
		const cs_config_profile *p = &cfg->signing.profiles[i];
		if (!ever[i]) {
			/* the key start-up will record as the profile's first */
			(void)check_token_key(c, token, libctx, keys[i].setting, p->key, 1);
			continue;
		}
		cs_active_key active = {0};
		cs_key_warrant warrant;
		cs_signer *signer = NULL;
		char why[CS_KEY_WHY_MAX], msg[CONFIGURED_REPORT_MAX];
		const char *code = NULL;
		cs_err w = CS_OK;
		r = cs_store_key_active_in(store, p->name, &active);
		if (r == CS_OK && !officers_loaded) {
			officers_loaded = 1;
			if (cs_officers_load(cfg, &officers, officers_why) != CS_OK && cfg->ceremony.present)
				problem(c, "ceremony", "%s", officers_why);
		}
		if (r == CS_OK)
			w = cs_app_key_warrant_in(store, officers, officers_why, p->name, active.kid, &warrant, why,
						  sizeof(why));
		if (r == CS_E_NOT_FOUND)
			warning(c, keys[i].setting,
				"the store has no active key of signing profile %s (the last one was compromised or "
				"retired): its signatures fail closed (503 no_active_key) until a ceremony activates one",
				p->name);
		else if (r != CS_OK)
			problem(c, store_setting(cfg), "%s: the active key of signing profile %s cannot be read: %s%s",
				store_label(cfg), p->name, cs_strerror(r),
				r == CS_E_CONFLICT ? " (several keys of the profile are active: the store was edited "
						     "outside credsign)"
						   : "");
		else if (w == CS_E_CEREMONY_REFUSED)
			problem(c, keys[i].setting,
				"the store's active key %s of signing profile %s would not be put in force: %s; its "
				"signatures would fail closed (503 no_active_key)",
				active.kid, p->name, why);
		else if (w != CS_OK)
			problem(c, store_setting(cfg), "%s: the activation of the active key of signing profile %s cannot be "
				"read: %s", store_label(cfg), p->name, cs_strerror(w));
		else if (cs_app_open_key(libctx, &active, &signer, &code, why, sizeof(why)) != CS_OK)
			problem(c, keys[i].setting, "the store's active key %s of signing profile %s cannot be used: "
				"%s (%s)", active.kid, p->name, why, code);
		cs_signer_free(signer);
		if ((r == CS_OK && w == CS_OK) || r == CS_E_NOT_FOUND) {
			if (configured_key_report(token, store, p->key, p->name, r == CS_OK ? &active : NULL, msg,
						  sizeof(msg)))
				warning(c, keys[i].setting, "%s", msg);
		}
		cs_active_key_free(&active);
	}
out:
	if (reading)
		cs_store_read_end(store);
	cs_store_close(store);
	cs_officers_free(officers);
	/* the keys found in the token: which of them signed bare digests */
	warn_signed_digests(c, keys);
	free(keys);
	free(ever);
}

/* ---- signing profiles worth a warning --------------------------------------------
 * Neither refuses a start: a profile that allows digest beside jws or dsse
 * (its key signs bare digests, so whoever may sign digests with it obtains
 * its JWS or DSSE signature over any bytes), and keys the store records
 * for a profile the configuration no longer has (its JWKS stays served and
 * its records readable; it cannot sign). Start-up logs them, --check-config
 * prints them. */

/* A profile allowing digest and jws or dsse: a warning naming its formats. */
static void warn_digest_sharing(checker *c)
{
	const cs_config *cfg = c->cfg;
	for (size_t i = 0; i < cfg->signing.nprofiles; i++) {
		const cs_config_profile *p = &cfg->signing.profiles[i];
		if (!(p->formats & CS_SIG_FORMAT_DIGEST) || !(p->formats & (CS_SIG_FORMAT_JWS | CS_SIG_FORMAT_DSSE)))
			continue;
		char setting[48];
		snprintf(setting, sizeof(setting), "signing.profiles.[%zu].formats", i);
		warning(c, setting,
			"profile %s: digest shares key %s with jws/dsse: a signer can obtain a JWS or DSSE signature "
			"of this key over any bytes (claims, typ, payload type unchecked); give digest a profile of "
			"its own (docs/delegated-signing.md)",
			p->name, p->key);
	}
}

/* The profiles of the store's keys that the configuration does not have:
 * each name once, with how many keys. */
#define UNCONFIGURED_MAX 64
typedef struct {
	const cs_config *cfg;
	char *names[UNCONFIGURED_MAX];
	size_t keys[UNCONFIGURED_MAX];
	size_t n, more; /* more: keys of profiles past UNCONFIGURED_MAX */
	int nomem;
} unconfigured;

static void note_unconfigured(void *arg, const cs_key_info *k)
{
	unconfigured *u = arg;
	if (k->profile == NULL || cs_config_profile_find(u->cfg, k->profile) != NULL)
		return;
	for (size_t i = 0; i < u->n; i++)
		if (strcmp(u->names[i], k->profile) == 0) {
			u->keys[i]++;
			return;
		}
	if (u->n == UNCONFIGURED_MAX) {
		u->more++;
		return;
	}
	if ((u->names[u->n] = strdup(k->profile)) == NULL) {
		u->nomem = 1;
		return;
	}
	u->keys[u->n++] = 1;
}

/* Keys of profiles not configured, read from the store when it exists (a
 * store that cannot be read is left to the checks that need it). */
static void warn_unconfigured_profiles(checker *c)
{
	const cs_config *cfg = c->cfg;
	cs_store *store = NULL;
	unconfigured u = {.cfg = cfg};
	if (store_open_existing(cfg, &store) != CS_OK || store == NULL)
		return;
	cs_err r = cs_store_keys_info(store, note_unconfigured, &u);
	cs_store_close(store);
	if (r != CS_OK || u.nomem)
		cs_log_warn("%s: the profiles of the store's keys cannot be read: %s", store_label(cfg),
			    cs_strerror(r != CS_OK ? r : CS_E_NOMEM));
	for (size_t i = 0; i < u.n; i++) {
		/* the name as the store has it: printable, bounded */
		char name[CS_CONFIG_PROFILE_NAME_MAX + 1];
		printable(u.names[i], name, sizeof(name));
		warning(c, "signing.profiles",
			"the store has %zu key(s) of signing profile %s, which is not configured: its JWKS stays "
			"served (/.well-known/jwks.json?profile=%s) and its signature records readable to grants of "
			"profiles \"*\", but it cannot sign",
			u.keys[i], name, name);
		free(u.names[i]);
	}
	if (u.more > 0)
		warning(c, "signing.profiles", "the store has %zu more key(s) of signing profiles not configured",
			u.more);
}

/* Open the token as the daemon does (module, the one token the URI names,
 * login with the PIN), check its mechanisms and its RNG, and load the credsign provider
 * over it into a library context of its own (*libctx), for the keys. */
static cs_err check_token(checker *c, cs_token **token, OSSL_LIB_CTX **libctx, OSSL_PROVIDER **prov,
			  OSSL_PROVIDER **deflt)
{
	const cs_config *cfg = c->cfg;
	char why[320];
	cs_token_params tp = {.module = cfg->pkcs11.module, .token_uri = cfg->pkcs11.token_uri,
			      .pin_file = cfg->pkcs11.pin_file, .pool_size = 1, .read_write = 0,
			      .init_args = cfg->pkcs11.init_args};
	cs_token_meter_clear();
	cs_err r = cs_token_open(&tp, token);
	if (r != CS_OK) {
		token_problem(c, r);
		return r;
	}
	if ((r = cs_token_check_mechanisms(*token, CS_TOKEN_NEEDS_SIGN, why, sizeof(why))) != CS_OK) {
		problem(c, "pkcs11.token_uri", "%s: %s", cfg->pkcs11.token_uri,
			r == CS_E_MECHANISM ? why : cs_strerror(r));
		return r;
	}
	if ((r = check_token_rng(c, *token)) != CS_OK)
		return r;
	if ((*libctx = OSSL_LIB_CTX_new()) == NULL || (r = cs_provider_load(*libctx, *token, prov)) != CS_OK ||
	    (*deflt = OSSL_PROVIDER_load(*libctx, "default")) == NULL ||
	    !EVP_set_default_properties(*libctx, "?provider!=credsign-pkcs11")) {
		problem(c, "pkcs11.module", "%s: the credsign OpenSSL provider cannot use the token",
			cfg->pkcs11.module);
		return r != CS_OK ? r : CS_E_CRYPTO;
	}
	return CS_OK;
}

/* The first reason OpenSSL queued ("no start line"), with its detail (the
 * detail alone when it says the reason already, as the credsign provider's
 * "URI: key not found in the token" does). */
static const char *openssl_why(const char *fallback, char *buf, size_t len)
{
	const char *data = NULL;
	int flags = 0;
	unsigned long e = ERR_peek_error_data(&data, &flags);
	const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;
	int text = (flags & ERR_TXT_STRING) && data != NULL && data[0] != '\0';
	if (text && reason != NULL && strstr(data, reason) != NULL)
		reason = NULL;
	snprintf(buf, len, "%s%s%s", reason != NULL ? reason : text ? "" : fallback,
		 reason != NULL && text ? ": " : "", text ? data : "");
	ERR_clear_error();
	return buf;
}

static void name_text(const X509_NAME *name, char *buf, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	int n = b != NULL ? X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) : -1;
	n = n >= 0 ? BIO_read(b, buf, (int)len - 1) : -1;
	buf[n > 0 ? n : 0] = '\0';
	BIO_free(b);
}

static void time_text(const ASN1_TIME *t, char out[32])
{
	struct tm tm;
	if (t == NULL || !ASN1_TIME_to_tm(t, &tm) || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, 32, "(an unreadable date)");
}

/* A validity period that does not hold now: 1 "expired on DATE", 2 "is not
 * valid before DATE" into buf; else 0. */
static int dates_problem(const ASN1_TIME *not_before, const ASN1_TIME *not_after, char *buf,
			 size_t len)
{
	char when[32];
	if (not_after != NULL && X509_cmp_current_time(not_after) <= 0) {
		time_text(not_after, when);
		snprintf(buf, len, "expired on %s", when);
		return 1;
	}
	if (not_before != NULL && X509_cmp_current_time(not_before) >= 0) {
		time_text(not_before, when);
		snprintf(buf, len, "is not valid before %s", when);
		return 2;
	}
	return 0;
}

/* Certificates and CRLs of a PEM file (NULL with *why when it cannot be
 * read). */
static STACK_OF(X509_INFO) *pem_infos(OSSL_LIB_CTX *libctx, const char *path, char *why, size_t len)
{
	ERR_clear_error();
	BIO *b = BIO_new_file(path, "r");
	STACK_OF(X509_INFO) *infos = b != NULL ? PEM_X509_INFO_read_bio_ex(b, NULL, NULL, NULL, libctx, NULL) : NULL;
	if (infos == NULL)
		openssl_why("not a PEM file", why, len);
	ERR_clear_error();
	BIO_free(b);
	return infos;
}

/* tls.cert: every certificate of the chain within its dates; with
 * check_key, the server key loads and matches the first (the caller knows
 * whether a pkcs11: key can be loaded: the token is open and has it). */
static void check_tls_identity(checker *c, OSSL_LIB_CTX *libctx, int check_key)
{
	const cs_config *cfg = c->cfg;
	char why[512], name[256];
	X509 *leaf = NULL;
	STACK_OF(X509_INFO) *infos = pem_infos(libctx, cfg->tls.cert, why, sizeof(why));
	for (int i = 0; infos != NULL && i < sk_X509_INFO_num(infos); i++) {
		X509 *x = sk_X509_INFO_value(infos, i)->x509;
		if (x == NULL)
			continue;
		name_text(X509_get_subject_name(x), name, sizeof(name));
		if (dates_problem(X509_get0_notBefore(x), X509_get0_notAfter(x), why, sizeof(why)) != 0)
			problem(c, "tls.cert", "%s: %s (%s) %s", cfg->tls.cert,
				leaf == NULL ? "the server certificate" : "a chain certificate", name, why);
		if (leaf == NULL)
			leaf = x;
	}
	if (leaf == NULL)
		problem(c, "tls.cert", "%s: no certificate%s%s", cfg->tls.cert, infos == NULL ? ": " : "",
			infos == NULL ? why : "");
	if (check_key) {
		ERR_clear_error();
		const cs_key_purpose tls_purpose = {.kind = CS_KEY_PURPOSE_TLS};
		EVP_PKEY *key = cs_provider_load_key_for(libctx, cfg->tls.key, &tls_purpose);
		if (key == NULL)
			problem(c, "tls.key", "%s: cannot load the server key: %s", cfg->tls.key,
				openssl_why("no PEM key or pkcs11: URI OpenSSL can load", why, sizeof(why)));
		else if (leaf != NULL && X509_check_private_key(leaf, key) != 1)
			problem(c, "tls.key", "%s: the key does not match the certificate of tls.cert (%s)",
				cfg->tls.key, cfg->tls.cert);
		ERR_clear_error();
		EVP_PKEY_free(key);
	}
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
}

/* tls.ca: certificates that load (one outside its dates: a warning); with
 * tls.crl_check, tls.crl: CRLs that load, are current (an expired CRL
 * fails every client) and are signed by a CA of tls.ca. */
static void check_tls_clients(checker *c, OSSL_LIB_CTX *libctx)
{
	const cs_config *cfg = c->cfg;
	char why[512], name[256];
	int n = 0;
	STACK_OF(X509_INFO) *cas = pem_infos(libctx, cfg->tls.ca, why, sizeof(why));
	for (int i = 0; cas != NULL && i < sk_X509_INFO_num(cas); i++) {
		X509 *x = sk_X509_INFO_value(cas, i)->x509;
		if (x == NULL)
			continue;
		n++;
		name_text(X509_get_subject_name(x), name, sizeof(name));
		if (dates_problem(X509_get0_notBefore(x), X509_get0_notAfter(x), why, sizeof(why)) != 0)
			warning(c, "tls.ca", "%s: the CA certificate (%s) %s; clients it issued are refused",
				cfg->tls.ca, name, why);
	}
	if (n == 0)
		problem(c, "tls.ca", "%s: no CA certificate%s%s", cfg->tls.ca, cas == NULL ? ": " : "",
			cas == NULL ? why : "");
	STACK_OF(X509_INFO) *crls = NULL;
	if (cfg->tls.crl_check && cfg->tls.crl != NULL) {
		n = 0;
		crls = pem_infos(libctx, cfg->tls.crl, why, sizeof(why));
		for (int i = 0; crls != NULL && i < sk_X509_INFO_num(crls); i++) {
			X509_CRL *crl = sk_X509_INFO_value(crls, i)->crl;
			if (crl == NULL)
				continue;
			n++;
			name_text(X509_CRL_get_issuer(crl), name, sizeof(name));
			int dates = dates_problem(X509_CRL_get0_lastUpdate(crl), X509_CRL_get0_nextUpdate(crl),
						  why, sizeof(why));
			if (dates != 0)
				problem(c, "tls.crl", "%s: the CRL of %s %s%s", cfg->tls.crl, name, why,
					dates == 1 ? " (its nextUpdate): every client certificate would be refused; "
						     "publish a new CRL"
						   : "");
			X509 *issuer = NULL;
			for (int j = 0; cas != NULL && j < sk_X509_INFO_num(cas) && issuer == NULL; j++) {
				X509 *x = sk_X509_INFO_value(cas, j)->x509;
				if (x != NULL && X509_NAME_cmp(X509_get_subject_name(x), X509_CRL_get_issuer(crl)) == 0)
					issuer = x;
			}
			if (issuer == NULL && cas != NULL)
				problem(c, "tls.crl", "%s: the CRL's issuer %s is not a CA of tls.ca", cfg->tls.crl, name);
			else if (issuer != NULL && X509_CRL_verify(crl, X509_get0_pubkey(issuer)) != 1)
				problem(c, "tls.crl", "%s: the CRL of %s is not signed by that CA of tls.ca", cfg->tls.crl,
					name);
			ERR_clear_error();
		}
		if (n == 0)
			problem(c, "tls.crl", "%s: no CRL%s%s", cfg->tls.crl, crls == NULL ? ": " : "",
				crls == NULL ? why : "");
	}
	sk_X509_INFO_pop_free(crls, X509_INFO_free);
	sk_X509_INFO_pop_free(cas, X509_INFO_free);
}

/* The TLS material, as the daemon will load it (in libctx; NULL: the
 * default context); the server key with check_key. */
static void check_tls(checker *c, OSSL_LIB_CTX *libctx, int check_key)
{
	check_tls_identity(c, libctx, check_key);
	check_tls_clients(c, libctx);
}

/* ---- what the network process's account must reach ---------------------------------
 * The network process runs as server.user (confine.h): it writes the store
 * and, at each SIGHUP, reads the configuration file and the client CA and
 * CRL again; the officers' CA, CRL and certificates, the presets and the
 * wordlist are its files too. --check-config and start-up (before any
 * process is forked) check each as that account would reach it, from the
 * modes (owner, group and other bits against its uid and its groups,
 * the groups it will have; POSIX ACLs too): every directory on the (resolved) path
 * searchable, the file readable, the store's directory writable. Each
 * failure names the setting, the file, the account and the fix. Nothing
 * to check when the account is root (allow_root) or when the process does
 * not split (hardening.privsep = false). */

/* hardening.privsep = false, started as root, without server.allow_root */
#define ROOT_UNSPLIT                                                                                             \
	"credsignd runs as root with hardening.privsep = false: one process would hold the token and serve the " \
	"network as root; keep hardening.privsep = true with server.user, or set server.allow_root = true"

typedef struct {
	const cs_run_as *who;
	gid_t *groups;
	int ngroups;
} reach_account;

/* The account's groups as the network process will have them: after the
 * switch (who->drop), server.group alone (cs_confine_drop sets no other);
 * without one, the process keeps its groups, the user's (getgrouplist). */
static cs_err account_open(const cs_run_as *who, reach_account *a)
{
	int n = 32;
	a->who = who;
	a->groups = NULL;
	a->ngroups = 0;
	if (who->drop)
		return CS_OK; /* account_in_group: who->gid only */
	for (int tries = 0; tries < 4; tries++) {
		gid_t *g = realloc(a->groups, (size_t)n * sizeof(*g));
		if (g == NULL)
			break;
		a->groups = g;
		int got = n;
		if (getgrouplist(who->user, who->gid, a->groups, &got) >= 0) {
			a->ngroups = got;
			return CS_OK;
		}
		n = got > n ? got : 2 * n;
	}
	free(a->groups);
	a->groups = NULL;
	return CS_E_NOMEM;
}

static int account_in_group(const reach_account *a, gid_t gid)
{
	int member = gid == a->who->gid;
	for (int i = 0; i < a->ngroups && !member; i++)
		member = a->groups[i] == gid;
	return member;
}

/* The POSIX ACL of path (its system.posix_acl_access attribute: a version
 * 2 header, then entries of tag u16, permissions u16, id u32, little
 * endian), decided as the kernel does: 1 granted, 0 refused, -1 no ACL
 * (the mode bits decide). */
#define ACL_XATTR_ENTRIES_MAX 256
static int account_acl(const reach_account *a, const char *path, const struct stat *st, unsigned bits)
{
	enum { USER_OBJ = 0x01, USER = 0x02, GROUP_OBJ = 0x04, GROUP = 0x08, MASK = 0x10, OTHER = 0x20 };
	unsigned char buf[4 + 8 * ACL_XATTR_ENTRIES_MAX];
	ssize_t n = getxattr(path, "system.posix_acl_access", buf, sizeof(buf));
	if (n < 4 || (n - 4) % 8 != 0 || ((uint32_t)buf[0] | (uint32_t)buf[1] << 8 | (uint32_t)buf[2] << 16 | (uint32_t)buf[3] << 24) != 2)
		return -1;
	size_t count = (size_t)(n - 4) / 8;
	unsigned mask = 7, other = 0, user_obj = 0;
	for (size_t i = 0; i < count; i++) {
		const unsigned char *e = buf + 4 + 8 * i;
		unsigned tag = (unsigned)e[0] | (unsigned)e[1] << 8, perm = ((unsigned)e[2] | (unsigned)e[3] << 8) & 7u;
		if (tag == MASK)
			mask = perm;
		else if (tag == OTHER)
			other = perm;
		else if (tag == USER_OBJ)
			user_obj = perm;
	}
	if (st->st_uid == a->who->uid)
		return (user_obj & bits) == bits;
	int matched = 0;
	for (size_t i = 0; i < count; i++) {
		const unsigned char *e = buf + 4 + 8 * i;
		unsigned tag = (unsigned)e[0] | (unsigned)e[1] << 8, perm = ((unsigned)e[2] | (unsigned)e[3] << 8) & 7u;
		uint32_t id = (uint32_t)e[4] | (uint32_t)e[5] << 8 | (uint32_t)e[6] << 16 | (uint32_t)e[7] << 24;
		if (tag == USER && id == a->who->uid)
			return (perm & mask & bits) == bits;
		if ((tag == GROUP_OBJ && account_in_group(a, st->st_gid)) || (tag == GROUP && account_in_group(a, id))) {
			matched = 1;
			if ((perm & mask & bits) == bits)
				return 1;
		}
	}
	return matched ? 0 : (other & bits) == bits;
}

/* Whether the account has every permission of `bits` (4 read, 2 write, 1
 * search) on path (st: its stat): its ACL when it has one, else the
 * owner's bits when the account owns it, the group's when it is in the
 * group, the others' otherwise. */
static int account_may(const reach_account *a, const char *path, const struct stat *st, unsigned bits)
{
	int acl = account_acl(a, path, st, bits);
	if (acl >= 0)
		return acl;
	unsigned have = (unsigned)st->st_mode & 7u;
	if (st->st_uid == a->who->uid)
		have = ((unsigned)st->st_mode >> 6) & 7u;
	else if (account_in_group(a, st->st_gid))
		have = ((unsigned)st->st_mode >> 3) & 7u;
	return (have & bits) == bits;
}

typedef enum { REACH_OK, REACH_DIR, REACH_DENIED } reach_result;

/* Can the account reach path with `bits`? REACH_DIR with the directory on
 * the way it cannot search in stop[len]; REACH_DENIED: the path itself.
 * A path that does not resolve is REACH_OK here (its own check says so). */
static reach_result account_reach(const reach_account *a, const char *path, unsigned bits, char *stop, size_t len)
{
	char real[PATH_MAX];
	struct stat st;
	if (realpath(path, real) == NULL)
		return REACH_OK;
	for (size_t i = 0; real[i] != '\0'; i++) {
		if (real[i] != '/')
			continue;
		char keep = real[i + 1];
		real[i + 1] = '\0'; /* "/", "/a/", "/a/b/" */
		int ok = stat(real, &st) != 0 || account_may(a, real, &st, 1);
		real[i + 1] = keep;
		if (!ok) {
			snprintf(stop, len, "%.*s", i == 0 ? 1 : (int)i, real);
			return REACH_DIR;
		}
	}
	if (stat(real, &st) == 0 && !account_may(a, real, &st, bits)) {
		snprintf(stop, len, "%s", real);
		return REACH_DENIED;
	}
	return REACH_OK;
}

/* A file the network process reads (setting names it; when: why it reads it). */
static void account_reads(checker *c, const reach_account *a, const char *setting, const char *file, const char *when)
{
	const cs_run_as *w = a->who;
	char stop[PATH_MAX];
	if (file == NULL)
		return;
	switch (account_reach(a, file, 4, stop, sizeof(stop))) {
	case REACH_DIR:
		problem(c, setting,
			"%s: directory %s is not searchable by user %s (uid %ld), which the network process runs as "
			"(server.user) and %s: chgrp %s %s && chmod g+x %s",
			file, stop, w->user, (long)w->uid, when, w->group, stop, stop);
		break;
	case REACH_DENIED:
		problem(c, setting,
			"%s is not readable by user %s (uid %ld), which the network process runs as (server.user) and "
			"%s: chgrp %s %s && chmod 640 %s",
			file, w->user, (long)w->uid, when, w->group, stop, stop);
		break;
	case REACH_OK:
		break;
	}
}

/* The directory a path names its file in ("." for a bare name). */
static void dir_of(const char *path, char *dir, size_t len)
{
	snprintf(dir, len, "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash == NULL)
		snprintf(dir, len, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
}

/* The store's directory: writable (the store, its WAL and SHM are made
 * there), and the store's files, when they exist, readable and writable. */
static void account_writes_store(checker *c, const reach_account *a, const char *path)
{
	static const char *const suffixes[] = {"", "-wal", "-shm"};
	const cs_run_as *w = a->who;
	char dir[PATH_MAX], stop[PATH_MAX], file[PATH_MAX + 8];
	dir_of(path, dir, sizeof(dir));
	reach_result r = account_reach(a, dir, 3, stop, sizeof(stop));
	for (size_t i = 0; r == REACH_OK && i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(file, sizeof(file), "%s%s", path, suffixes[i]);
		r = account_reach(a, file, 6, stop, sizeof(stop));
	}
	if (r == REACH_DIR)
		problem(c, "store.path",
			"%s: directory %s is not searchable by user %s (uid %ld), which the network process runs as "
			"(server.user) and which writes the store: chgrp %s %s && chmod g+x %s",
			path, stop, w->user, (long)w->uid, w->group, stop, stop);
	else if (r != REACH_OK)
		problem(c, "store.path",
			"%s: %s is not writable by user %s (uid %ld), which the network process runs as (server.user) "
			"and which writes the store: chown -R %s:%s %s && chmod 700 %s",
			path, stop, w->user, (long)w->uid, w->user, w->group, dir, dir);
}

/* Everything above, for the account who (nothing for root). CS_E_CONFIG
 * when a problem was reported. */
static cs_err check_account_access(checker *c, const cs_run_as *who)
{
	const cs_config *cfg = c->cfg;
	reach_account a;
	int before = c->problems;
	if (who->uid == 0)
		return CS_OK;
	if (account_open(who, &a) != CS_OK) {
		problem(c, "server.user", "the groups of user %s cannot be read: %s", who->user, cs_strerror(CS_E_NOMEM));
		return CS_E_CONFIG;
	}
	if (cs_store_target_is_pg(cfg)) { /* what the network process reads to connect */
		account_reads(c, &a, "store.postgresql.ca_file", cfg->store.postgresql.ca_file,
			      "which verifies the PostgreSQL server");
		account_reads(c, &a, "store.postgresql.password_file", cfg->store.postgresql.password_file,
			      "which reads it at each connection to PostgreSQL");
	} else {
		account_writes_store(c, &a, cfg->store.path);
	}
	account_reads(c, &a, "server.user", cfg->file, "which reads the configuration again at each SIGHUP");
	account_reads(c, &a, "tls.ca", cfg->tls.ca, "which reads it again at each SIGHUP");
	if (cfg->tls.crl_check)
		account_reads(c, &a, "tls.crl", cfg->tls.crl, "which reads it again at each SIGHUP");
	account_reads(c, &a, "ceremony.officer_ca", cfg->ceremony.officer_ca, "which verifies the officers");
	account_reads(c, &a, "ceremony.officer_crl", cfg->ceremony.officer_crl, "which verifies the officers");
	for (size_t i = 0; i < cfg->ceremony.nofficers; i++) {
		char setting[64];
		snprintf(setting, sizeof(setting), "ceremony.officers.[%zu].certificate", i);
		account_reads(c, &a, setting, cfg->ceremony.officers[i].certificate, "which verifies the officers");
	}
	account_reads(c, &a, "server.presets_file", cfg->server.presets_file, "which applies the presets");
	account_reads(c, &a, "server.wordlist_file", cfg->server.wordlist_file, "which makes the passphrases");
	free(a.groups);
	return c->problems > before ? CS_E_CONFIG : CS_OK;
}

/* One identity with generator and auditor rights (access.h): a warning. */
static void warn_duties(void *file, const char *identity, const char *generator, const char *auditor)
{
	fprintf(stderr,
		"%s: warning: separation of duties: %s holds generator rights (%s) and auditor "
		"rights (%s)\n",
		(const char *)file, identity, generator, auditor);
}

/* --check-config: every problem reported, each naming its setting (the
 * file named as given); with offline, everything but the token: the file
 * checks and the TLS material (a pkcs11: tls.key is not loaded). verbose
 * (or log.level debug) shows what the layers below log at debug level,
 * every failing PKCS#11 call included. */
static int check_config(const char *path, int offline, int verbose)
{
	cs_config *cfg = NULL;
	cs_config_diag diag;
	/* log lines of the layers below go under the problem they explain */
	capture_start(verbose ? CS_LOG_DEBUG : CS_LOG_WARN);
	cs_err r = cs_config_load(path, &cfg, &diag);
	print_diag(&diag);
	const char *shown = cfg != NULL ? cfg->file_given : path;
	if (r == CS_OK) {
		cs_preset_set *presets = NULL;
		cs_wordlist *wordlist = NULL;
		char why[512];
		if (cfg->log.level == CS_LOG_DEBUG)
			capture_start(CS_LOG_DEBUG);
		r = cs_presets_load(cfg->server.presets_file, shown, &presets, &diag);
		print_diag(&diag);
		/* access.grants naming presets that do not exist */
		if (r == CS_OK && (r = cs_access_check_presets(cfg, presets, &diag)) != CS_OK)
			print_diag(&diag);
		if (r == CS_OK &&
		    (r = cs_wordlist_load_diag(cfg->server.wordlist_file, &wordlist, why, sizeof(why))) != CS_OK)
			fprintf(stderr, "%s: setting 'server.wordlist_file': %s\n", shown, why);
		/* a preset that can never be met is refused now, not per request */
		if (r == CS_OK && (r = cs_presets_check(presets, wordlist, why, sizeof(why))) != CS_OK)
			fprintf(stderr, "%s: %s\n", shown, why);
		if (r == CS_OK && retention_warning(cfg, presets, why, sizeof(why)))
			fprintf(stderr, "%s: warning: %s\n", shown, why);
		cs_access *access = NULL;
		if (r == CS_OK && cs_access_new(cfg, &access) == CS_OK)
			cs_access_each_conflict(access, warn_duties, (void *)shown);
		cs_access_unref(access);
		cs_presets_free(presets);
		cs_wordlist_free(wordlist);
		OSSL_PROVIDER *fips = NULL, *base = NULL;
		if (r == CS_OK && cfg->crypto.openssl_fips &&
		    (r = openssl_fips_load(NULL, &fips, &base, why, sizeof(why))) != CS_OK) {
			fprintf(stderr, "%s: %s\n", shown, why);
			capture_print(NULL);
		}
		OSSL_PROVIDER_unload(base);
		OSSL_PROVIDER_unload(fips);
	}
	if (cfg != NULL) {
		/* what start-up does with the token and the TLS material */
		checker chk = {.cfg = cfg};
		cs_token *token = NULL;
		OSSL_LIB_CTX *libctx = NULL;
		OSSL_PROVIDER *prov = NULL, *deflt = NULL;
		int with_token = 0;
		/* a key in the token is loaded through the provider once it is found */
		int tls_key = strncmp(cfg->tls.key, "pkcs11:", 7) != 0;
		/* first: the checks below that read the store skip one found unreachable */
		check_store_pg(&chk, offline);
		warn_digest_sharing(&chk);
		warn_unconfigured_profiles(&chk);
		/* the account the network process would run as (started as root) */
		cs_run_as run_as;
		char account[512];
		if (cfg->hardening.privsep && cs_confine_run_as(cfg, &run_as, account, sizeof(account)) != CS_OK)
			/* "server.group: ..." is the group's problem */
			problem(&chk, strncmp(account, "server.group", 12) == 0 ? "server.group" : "server.user", "%s",
				account);
		else if (cfg->hardening.privsep)
			(void)check_account_access(&chk, &run_as); /* the files it reads, the store it writes */
		else if (geteuid() == 0 && !cfg->server.allow_root)
			problem(&chk, "hardening.privsep", "%s", ROOT_UNSPLIT);
		if (!offline) {
			cs_token_meter_track_failures();
			with_token = check_token(&chk, &token, &libctx, &prov, &deflt) == CS_OK;
		}
		if (with_token) {
			check_signing_keys(&chk, token, libctx);
			check_profile_keys(&chk, token, libctx); /* and warn_signed_digests */
			if (!tls_key)
				tls_key = check_token_key(&chk, token, libctx, "tls.key", cfg->tls.key, 0) == CS_OK;
		}
		if (!with_token || cfg->signing.nprofiles == 0)
			warn_signed_digests(&chk, NULL); /* without the configured keys' kids */
		check_tls(&chk, with_token ? libctx : NULL, tls_key);
		OSSL_PROVIDER_unload(deflt);
		OSSL_PROVIDER_unload(prov);
		OSSL_LIB_CTX_free(libctx);
		cs_token_close(token);
		if (chk.problems > 0)
			r = CS_E_CONFIG;
	}
	capture_print(shown); /* what no problem explained */
	capture_stop();
	if (r != CS_OK) {
		fprintf(stderr, "%s: configuration invalid\n", shown);
		cs_config_free(cfg);
		return 1;
	}
	printf("%s: configuration valid\n", shown);
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
 * to other users: the daemon's files are private to it. Called once every
 * start-up check passed, so a failed start leaves the store as it was. */
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

/* A store that never had an active key (of profile; NULL: a certificate
 * key): record the key at uri (setting names it) as the active one (it is
 * in the token and signs: checked first), audited as key.activate by the
 * bootstrap actor (cs_app_bootstrap_actor). Nothing when a key of the
 * profile is or was active. */
static cs_err bootstrap_key(cs_app *app, checker *chk, const char *setting, const char *uri, const char *profile)
{
	const cs_config *cfg = app->cfg;
	cs_signer *signer = NULL;
	cs_key_ref query, found;
	char cause[160], cka_id[2 * CS_KEY_ID_MAX + 1] = "", actor[CS_BOOTSTRAP_ACTOR_MAX];
	cs_err r = check_token_key(chk, app->token, app->libctx, setting, uri, 1);
	if (r != CS_OK)
		return r;
	cs_token_meter_clear();
	cs_key_purpose purpose;
	cs_app_key_purpose(profile, &purpose);
	if ((r = cs_signer_open_for(app->libctx, uri, &purpose, &signer)) != CS_OK) {
		cs_log_error("start-up failed: setting '%s': %s%s", setting, cs_strerror(r),
			     token_cause(r, cause, sizeof(cause)));
		return r;
	}
	/* the token's label and CKA_ID, for key list */
	found.label[0] = '\0';
	found.id_len = 0;
	if (cs_key_ref_from_uri(uri, &query) == CS_OK && cs_token_find_key(app->token, &query, &found) == CS_OK)
		for (size_t i = 0; i < found.id_len; i++)
			snprintf(cka_id + 2 * i, 3, "%02x", found.id[i]);
	cs_app_bootstrap_actor(profile, actor);
	char *jwk = json_dumps(cs_signer_jwk(signer), JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(12));
	cs_key_info key = {.kid = cs_signer_kid(signer), .uri = cs_signer_uri(signer), .jwk_json = jwk,
			   .label = found.label[0] ? found.label : NULL, .cka_id = cka_id[0] ? cka_id : NULL,
			   .profile = profile};
	cs_audit_entry e = {.node = cfg->server.node_id, .actor = actor, .role = "system",
			    .action = "key.activate", .object = key.kid, .outcome = "success"};
	int changed = 0;
	r = jwk != NULL ? cs_ledger_key_bootstrap(app->ledger, &key, actor, &changed, &e) : CS_E_NOMEM;
	if (r == CS_OK && changed && profile == NULL)
		cs_log_info("signing key %s is now the active key: the store had none (bootstrap from setting "
			    "'pkcs11.signing_key')",
			    key.kid);
	else if (r == CS_OK && changed)
		cs_log_info("signing key %s is now the active key of signing profile %s: the profile had none "
			    "(bootstrap from setting '%s')",
			    key.kid, profile, setting);
	else if (r == CS_E_KEY_FORBIDDEN)
		problem(chk, setting, "%s: key %s cannot become the first key of %s%s: the store records it "
			"otherwise (another profile's, a certificate key, retired or compromised)",
			uri, key.kid, profile != NULL ? "signing profile " : "the certificate keys",
			profile != NULL ? profile : "");
	else if (r != CS_OK)
		cs_log_error("start-up failed: the signing key %s cannot be recorded: %s", key.kid, cs_strerror(r));
	free(jwk);
	cs_signer_free(signer);
	return r;
}

/* Put the store's active key in force (app->signer), after the bootstrap
 * of a store that never had one, when its warrant holds
 * (cs_app_key_warrant: the daemon's own check of its activation). *in_force
 * and *warrant: the key put in force (for the key watch), its kid NULL when
 * the slot is empty: no active key, several, or a key whose warrant does
 * not hold. Then the daemon starts not ready (certification fails closed)
 * and the key watch's first poll logs and audits why. A key that passes
 * but cannot be used stops start-up. A configured key that is not the
 * store's active one is reported (a warning). */
static cs_err put_signing_key_in_force(cs_app *app, checker *chk, cs_active_key *in_force, cs_key_warrant *warrant)
{
	const cs_config *cfg = app->cfg;
	cs_store *store = NULL;
	cs_signer *signer = NULL;
	int ever = 0, reading = 0;
	char why[CS_KEY_WHY_MAX], msg[CONFIGURED_REPORT_MAX];
	const char *code = NULL;
	memset(in_force, 0, sizeof(*in_force));
	cs_err r = cs_store_connect_config(cfg, &store);
	if (r == CS_OK)
		r = cs_store_keys_ever_active(store, &ever);
	if (r != CS_OK) {
		cs_log_error("start-up failed: the signing keys cannot be read from the store: %s", cs_strerror(r));
		goto out;
	}
	if (!ever && (r = bootstrap_key(app, chk, "pkcs11.signing_key", cfg->pkcs11.signing_key, NULL)) != CS_OK)
		goto out; /* said why */
	/* one snapshot: the active key and what its warrant reads */
	if ((r = cs_store_read_begin(store)) == CS_OK) {
		reading = 1;
		r = cs_store_key_active(store, in_force);
	}
	if (r == CS_OK)
		r = cs_app_key_warrant(store, app->officers, app->officers_why, in_force->kid, warrant, why,
				       sizeof(why));
	/* a key refused is not reported as signing: the watch says why */
	if ((r == CS_OK || r == CS_E_NOT_FOUND) &&
	    configured_key_report(app->token, store, cfg->pkcs11.signing_key, NULL, r == CS_OK ? in_force : NULL, msg,
				  sizeof(msg)))
		warning(chk, "pkcs11.signing_key", "%s", msg);
	if (reading)
		cs_store_read_end(store);
	if (r == CS_E_NOT_FOUND || r == CS_E_CONFLICT || r == CS_E_CEREMONY_REFUSED) {
		/* fail closed: the key watch says why at its first poll */
		cs_active_key_free(in_force);
		r = cs_signer_slot_new(NULL, &app->signer);
		goto out;
	}
	if (r != CS_OK) {
		cs_log_error("start-up failed: the active signing key cannot be read from the store: %s",
			     cs_strerror(r));
		goto out;
	}
	cs_token_meter_clear();
	const cs_key_purpose cert_purpose = {.kind = CS_KEY_PURPOSE_CERTIFICATE};
	if ((r = cs_app_open_key_for(app->libctx, in_force, &cert_purpose, &signer, &code, why, sizeof(why))) != CS_OK) {
		cs_log_error("start-up failed: the store's active signing key %s cannot be used (%s): %s", in_force->kid,
			     code, why);
		goto out;
	}
	if ((r = cs_signer_slot_new(signer, &app->signer)) != CS_OK)
		cs_signer_free(signer);
out:
	cs_store_close(store);
	return r;
}

/* The signing profiles' keys in force (app->profiles, made here with
 * empty slots): the refusals first (the store's records of the configured
 * keys: keys[] as the token check found them), then each profile that
 * never had an active key bootstrapped from its configured key, then the
 * store's active key of each profile put in force when its warrant holds.
 * in_force[i], warrant[i]: what was put in force (kid NULL: the slot is
 * empty, and the key watch's first poll says why). A refusal, a key
 * that passes but cannot be used, or a store that cannot be read stops
 * start-up. */
static cs_err put_profile_keys_in_force(cs_app *app, checker *chk, const profile_key *keys, cs_active_key *in_force,
					cs_key_warrant *warrant)
{
	const cs_config *cfg = app->cfg;
	size_t n = cfg->signing.nprofiles;
	cs_store *store = NULL;
	int *ever = NULL;
	cs_err r = cs_app_profiles_new(app);
	if (r != CS_OK || n == 0)
		return r;
	if ((ever = calloc(n, sizeof(*ever))) == NULL)
		return CS_E_NOMEM;
	if ((r = cs_store_connect_config(cfg, &store)) != CS_OK) {
		cs_log_error("start-up failed: the signing profiles' keys cannot be read from the store: %s",
			     cs_strerror(r));
		goto out;
	}
	if ((r = profile_keys_store_check(chk, store, keys, ever)) != CS_OK)
		goto out; /* said why */
	for (size_t i = 0; i < n; i++)
		if (!ever[i] && (r = bootstrap_key(app, chk, keys[i].setting, cfg->signing.profiles[i].key,
						   cfg->signing.profiles[i].name)) != CS_OK)
			goto out; /* said why */
	for (size_t i = 0; i < n; i++) {
		const cs_config_profile *p = &cfg->signing.profiles[i];
		char why[CS_KEY_WHY_MAX], msg[CONFIGURED_REPORT_MAX];
		const char *code = NULL;
		cs_signer *signer = NULL;
		int reading = 0;
		/* one snapshot: the profile's active key and what its warrant reads */
		if ((r = cs_store_read_begin(store)) == CS_OK) {
			reading = 1;
			r = cs_store_key_active_in(store, p->name, &in_force[i]);
		}
		if (r == CS_OK)
			r = cs_app_key_warrant_in(store, app->officers, app->officers_why, p->name, in_force[i].kid,
						  &warrant[i], why, sizeof(why));
		if ((r == CS_OK || r == CS_E_NOT_FOUND) &&
		    configured_key_report(app->token, store, p->key, p->name, r == CS_OK ? &in_force[i] : NULL, msg,
					  sizeof(msg)))
			warning(chk, keys[i].setting, "%s", msg);
		if (reading)
			cs_store_read_end(store);
		if (r == CS_E_NOT_FOUND || r == CS_E_CONFLICT || r == CS_E_CEREMONY_REFUSED) {
			/* fail closed: the key watch says why at its first poll */
			cs_active_key_free(&in_force[i]);
			r = CS_OK;
			continue;
		}
		if (r != CS_OK) {
			cs_log_error("start-up failed: the active key of signing profile %s cannot be read from the "
				     "store: %s",
				     p->name, cs_strerror(r));
			goto out;
		}
		cs_token_meter_clear();
		cs_key_purpose purpose;
		cs_app_key_purpose(p->name, &purpose);
		if ((r = cs_app_open_key_for(app->libctx, &in_force[i], &purpose, &signer, &code, why, sizeof(why))) !=
		    CS_OK) {
			cs_log_error("start-up failed: the store's active key %s of signing profile %s cannot be used "
				     "(%s): %s",
				     in_force[i].kid, p->name, code, why);
			goto out;
		}
		cs_signer_slot_swap(app->profiles[i].signer, signer);
	}
out:
	free(ever);
	cs_store_close(store);
	return r;
}

/* A start refused for a profile's key (the certificate key, another
 * profile's) is on the record of the store the daemon would have run on,
 * when there is one (a failed start creates none): one entry per refused
 * setting, action daemon.start, outcome failure, error_code
 * profile_key_refused, object "signing.profiles.[i].key kid=KID". Nothing
 * else is written; a store that cannot be opened is only logged. */
static void audit_profile_key_refusal(const cs_config *cfg, const profile_key *keys, size_t n)
{
	struct stat st;
	cs_ledger *ledger = NULL;
	if ((!cs_store_target_is_pg(cfg) && stat(cfg->store.path, &st) != 0) || cs_ledger_connect_config(cfg, &ledger) != CS_OK)
		return;
	for (size_t i = 0; i < n; i++) {
		if (!keys[i].refused)
			continue;
		char object[96];
		snprintf(object, sizeof(object), "%s kid=%s", keys[i].setting, keys[i].kid);
		cs_audit_entry e = {.node = cfg->server.node_id, .actor = "system", .role = "system",
				    .action = "daemon.start", .object = object, .outcome = "failure",
				    .error_code = "profile_key_refused"};
		cs_err r = cs_ledger_audit_append(ledger, &e);
		if (r != CS_OK)
			cs_log_error("the refusal of %s is not audited: %s", keys[i].setting, cs_strerror(r));
	}
	cs_ledger_close(ledger);
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

/* ---- serving ---------------------------------------------------------------------
 * serve() makes what start-up shares (the configuration, presets, wordlist,
 * officers, the listeners: struct daemon) and then either supervises a key
 * process and a network process (hardening.privsep, privsep.h), which
 * inherit it, or serves in this process (hardening.privsep = false). */

typedef struct {
	cs_config *cfg;
	cs_app app;     /* cfg, presets, wordlist, officers here; the rest in serve_token */
	cs_server *srv; /* the listeners, bound before anything else */
	/* crypto.openssl_fips: fips and base in the default context */
	OSSL_PROVIDER *fips0, *base0;
	checker chk;
	cs_run_as run_as; /* the network process's account (hardening.privsep) */
	int mlock;        /* the children lock their memory (memory_lockable) */
} daemon_ctx;

/* The configuration and what it names, checked; the listeners bound. */
static cs_err daemon_start(daemon_ctx *d, const char *path, int verbose)
{
	cs_config_diag diag;
	char why[512];
	cs_err r;
	if ((r = cs_config_load(path, &d->cfg, &diag)) != CS_OK) {
		print_diag(&diag);
		fprintf(stderr, "%s: configuration invalid\n", path);
		return r;
	}
	const cs_config *cfg = d->cfg;
	cs_log_configure(verbose ? CS_LOG_DEBUG : cfg->log.level, cfg->log.format, 2);
	d->app.cfg = cfg;
	d->chk.cfg = cfg;
	d->chk.to_log = 1;
	if ((r = cs_presets_load(cfg->server.presets_file, cfg->file, &d->app.presets, &diag)) != CS_OK) {
		print_diag(&diag);
		cs_log_error("presets %s invalid", cfg->server.presets_file);
		return r;
	}
	if ((r = cs_access_check_presets(cfg, d->app.presets, &diag)) != CS_OK) {
		print_diag(&diag); /* access.grants naming presets that do not exist */
		cs_log_error("%s: configuration invalid", path);
		return r;
	}
	if ((r = cs_wordlist_load_diag(cfg->server.wordlist_file, &d->app.wordlist, why, sizeof(why))) != CS_OK) {
		cs_log_error("setting 'server.wordlist_file': %s", why);
		return r;
	}
	if ((r = cs_presets_check(d->app.presets, d->app.wordlist, why, sizeof(why))) != CS_OK) {
		cs_log_error("%s", why); /* a preset that can never be met */
		return r;
	}
	if (retention_warning(cfg, d->app.presets, why, sizeof(why)))
		cs_log_warn("%s", why);
	warn_digest_sharing(&d->chk);
	if (cfg->crypto.openssl_fips) {
		if ((r = openssl_fips_load(NULL, &d->fips0, &d->base0, why, sizeof(why))) != CS_OK) {
			cs_log_error("%s", why);
			return r;
		}
		cs_log_info("crypto.openssl_fips: software crypto from OpenSSL's FIPS provider");
	}
	/* the officers whose approvals put a key in force (app.h): a
	 * configured ceremony group that cannot be loaded stops start-up;
	 * without one, only a bootstrapped first key is put in force */
	if ((r = cs_officers_load(cfg, &d->app.officers, d->app.officers_why)) != CS_OK && cfg->ceremony.present) {
		cs_log_error("start-up failed: setting 'ceremony': %s", d->app.officers_why);
		return r;
	}
	/* the account the network process will run as: started as root, one
	 * is required (server.user) unless server.allow_root */
	if (cfg->hardening.privsep && (r = cs_confine_run_as(cfg, &d->run_as, why, sizeof(why))) != CS_OK) {
		cs_log_error("start-up failed: %s", why);
		return r;
	}
	/* what it reads (again at a SIGHUP) and writes, as --check-config checks it */
	if (cfg->hardening.privsep && (r = check_account_access(&d->chk, &d->run_as)) != CS_OK) {
		cs_log_error("start-up failed: the network process's account cannot reach its files (above)");
		return r;
	}
	if (!cfg->hardening.privsep && geteuid() == 0 && !cfg->server.allow_root) {
		cs_log_error("start-up failed: setting 'hardening.privsep': %s", ROOT_UNSPLIT);
		return CS_E_CONFIG;
	}
	/* this daemon's instance, kept by every network process it forks */
	if ((r = cs_app_node_instance(&d->app)) != CS_OK)
		return r;
	/* the listeners first: a port in use stops start-up before the token is
	 * logged in to or the store is touched */
	return cs_server_bind(cfg, &d->srv);
}

static void daemon_free(daemon_ctx *d)
{
	cs_server_free(d->srv);
	d->srv = NULL;
	cs_officers_free(d->app.officers);
	cs_app_published_free(&d->app);
	OSSL_PROVIDER_unload(d->base0);
	OSSL_PROVIDER_unload(d->fips0);
	cs_presets_free(d->app.presets);
	cs_wordlist_free(d->app.wordlist);
	cs_config_free(d->cfg);
	memset(d, 0, sizeof(*d));
}

/* The token as the in-process daemon and the key process open it: logged
 * in, its mechanisms and its RNG checked; each problem logged naming its
 * setting. */
static cs_err open_token_checked(daemon_ctx *d, cs_token **out)
{
	const cs_config *cfg = d->cfg;
	char why[512];
	cs_token_params tp = {.module = cfg->pkcs11.module, .token_uri = cfg->pkcs11.token_uri,
			      .pin_file = cfg->pkcs11.pin_file, .pool_size = (unsigned)cfg->pkcs11.sessions,
			      .read_write = 0, .init_args = cfg->pkcs11.init_args};
	cs_token_meter_clear();
	cs_err r = cs_token_open(&tp, out);
	if (r != CS_OK) {
		token_problem(&d->chk, r); /* names the setting and the failing PKCS#11 call */
		return r;
	}
	/* the daemon signs (CKM_ECDSA); keys are generated by credsign-admin */
	if ((r = cs_token_check_mechanisms(*out, CS_TOKEN_NEEDS_SIGN, why, sizeof(why))) != CS_OK)
		cs_log_error("token %s: %s", cfg->pkcs11.token_uri, r == CS_E_MECHANISM ? why : cs_strerror(r));
	/* every random value comes from the token: it must have an RNG that draws */
	else
		r = check_token_rng(&d->chk, *out);
	if (r != CS_OK) {
		cs_token_close(*out);
		*out = NULL;
	}
	return r;
}

/* The network process's account, once the TLS material is loaded and
 * before the store is opened: the store's directory and its files must be
 * the account's (else the error says how to give them to it). */
static cs_err store_usable(const char *path, const cs_run_as *who)
{
	static const char *const suffixes[] = {"", "-wal", "-shm"};
	char dir[PATH_MAX], file[PATH_MAX + 8];
	const char *bad = NULL;
	dir_of(path, dir, sizeof(dir));
	if (access(dir, W_OK | X_OK) != 0 && errno != ENOENT)
		bad = dir;
	for (size_t i = 0; bad == NULL && i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(file, sizeof(file), "%s%s", path, suffixes[i]);
		if (access(file, R_OK | W_OK) != 0 && errno != ENOENT)
			bad = file;
	}
	if (bad == NULL)
		return CS_OK;
	cs_log_error("start-up failed: setting 'store.path' %s: %s is not writable by user %s (uid %ld), which the "
		     "network process runs as (server.user); give the store to it: chown -R %s:%s %s",
		     path, bad, who->user, (long)who->uid, who->user, who->group, dir);
	return CS_E_CONFIG;
}


/* hardening.mlock for the key and network processes, decided once by the
 * supervisor, before it forks: RLIMIT_MEMLOCK made unlimited here (the
 * children inherit it), or, when it cannot be, one warning per start (not
 * one per process and restart) and the children do not try (they keep
 * the locked secure heap). 1: they lock their memory. */
static int memory_lockable(const cs_config *cfg)
{
	return cfg->hardening.mlock && cs_confine_mlock_possible();
}

/* The PIN file the configuration names (pkcs11.pin_file, or a
 * pin-source=file: in the token URI, not percent-decoded); NULL when none
 * can be told. */
static const char *configured_pin_path(const cs_config *cfg, char *buf, size_t len)
{
	if (cfg->pkcs11.pin_file != NULL)
		return cfg->pkcs11.pin_file;
	const char *src = cfg->pkcs11.token_uri != NULL ? strstr(cfg->pkcs11.token_uri, "pin-source=") : NULL;
	if (src == NULL)
		return NULL;
	src += strlen("pin-source=");
	if (strncmp(src, "file:", 5) == 0)
		src += 5;
	size_t n = strcspn(src, ";?&");
	if (n == 0 || n >= len || memchr(src, '%', n) != NULL)
		return NULL;
	memcpy(buf, src, n);
	buf[n] = '\0';
	return buf;
}

/* The network process must not be able to read the PIN: with it (and the
 * token's files) it could load the module itself and use every key,
 * around the key process. Said at every start where it can. */
static void warn_pin_reachable(const cs_config *cfg)
{
	char buf[4096];
	const char *pin = configured_pin_path(cfg, buf, sizeof(buf));
	if (pin != NULL && access(pin, R_OK) == 0)
		cs_log_warn("the network process (uid %ld) can read the PIN file %s: code running in it could log in "
			    "to the token and use every key around the key process; run the key process under "
			    "another account (docs/hardening.md, \"Two accounts\")",
			    (long)getuid(), pin);
}

/* A child's confinement in one line, for the log once it is in force:
 * "network process: uid 999 (credsign), no capabilities, NoNewPrivs,
 * seccomp on, memory locked". Made before seccomp (the account's name
 * comes from the user database). */
static void confinement_text(const char *process, const cs_config *cfg, int locked, char *buf, size_t len)
{
	struct passwd pw, *found = NULL;
	char pwbuf[1024];
	uid_t uid = getuid();
	if (getpwuid_r(uid, &pw, pwbuf, sizeof(pwbuf), &found) != 0)
		found = NULL;
	snprintf(buf, len, "%s: uid %ld (%s), no capabilities, NoNewPrivs, seccomp %s, memory %s", process, (long)uid,
		 found != NULL ? found->pw_name : "no name", cfg->hardening.seccomp ? "on" : "off",
		 locked ? "locked" : "not locked (secure heap only)");
}

static cs_err drop_privileges(daemon_ctx *d)
{
	const cs_run_as *who = &d->run_as;
	char why[512];
	/* the account's home, not root's: libpq looks there for its files
	 * (~/.postgresql: client certificate, root.crt; ~/.pgpass), and one of
	 * root's it cannot read stops the connection */
	struct passwd pw, *found = NULL;
	char pwbuf[1024];
	if (who->drop && getpwuid_r(who->uid, &pw, pwbuf, sizeof(pwbuf), &found) == 0 && found != NULL &&
	    found->pw_dir != NULL && found->pw_dir[0] == '/')
		(void)setenv("HOME", found->pw_dir, 1);
	else if (who->drop)
		(void)unsetenv("HOME");
	cs_err r = cs_confine_drop(who, why, sizeof(why));
	if (r != CS_OK) {
		cs_log_error("start-up failed: the network process cannot drop its privileges: %s", why);
		return r;
	}
	if (!who->drop) {
		cs_log_info("not started as root: the network process keeps uid %ld (no privilege drop)", (long)getuid());
		warn_pin_reachable(d->cfg);
		return CS_OK;
	}
	warn_pin_reachable(d->cfg);
	cs_log_debug("network process: user %s (uid %ld), group %s (gid %ld), no capabilities", who->user,
		    (long)who->uid, who->group, (long)who->gid);
	return cs_store_target_is_pg(d->cfg) ? CS_OK : store_usable(d->cfg->store.path, who);
}

/* A restarted network process says why (the supervisor's words). */
static cs_err record_restart(cs_app *app, const char *reason)
{
	cs_audit_entry e = {.actor = "system", .role = "system", .action = "daemon.restart",
			    .object = "network process", .outcome = "failure", .error_code = reason};
	return cs_audit_record(app->audit, app->ledger, &e);
}

/* Serve with d->app.token (opened: in-process, or a key process's remote
 * token): the rest of start-up and the server until it stops. child: the
 * network process's part (privsep.h): the privilege drop, the restart
 * audit, the receiver of a restarted key process's channels, seccomp and
 * readiness; NULL in-process. Frees what it made, the listeners and the
 * token. Returns the exit status. */
static int serve_token(daemon_ctx *d, cs_privsep_child *child)
{
	const cs_config *cfg = d->cfg;
	cs_app *app = &d->app;
	checker *chk = &d->chk;
	OSSL_PROVIDER *prov = NULL, *deflt = NULL;
	/* crypto.openssl_fips: fips and base in app->libctx (deflt is then the fips provider) */
	OSSL_PROVIDER *base = NULL;
	cs_active_key in_force = {0};
	cs_key_warrant warrant = {0};
	/* the signing profiles' keys: as the token has them, and in force */
	size_t nprofiles = cfg->signing.nprofiles;
	profile_key *pkeys = NULL;
	cs_active_key *pin_force = NULL;
	cs_key_warrant *pwarrant = NULL;
	cs_privsep_receiver *rx = NULL;
	char cause[160], why[512];
	int status = 1;
	cs_err r = CS_OK;

	if (nprofiles > 0 && ((pkeys = calloc(nprofiles, sizeof(*pkeys))) == NULL ||
			      (pin_force = calloc(nprofiles, sizeof(*pin_force))) == NULL ||
			      (pwarrant = calloc(nprofiles, sizeof(*pwarrant))) == NULL)) {
		cs_log_error("start-up failed: %s", cs_strerror(CS_E_NOMEM));
		goto out;
	}
	if ((app->libctx = OSSL_LIB_CTX_new()) == NULL ||
	    (r = cs_provider_load(app->libctx, app->token, &prov)) != CS_OK ||
	    (cfg->crypto.openssl_fips
		     ? (r = openssl_fips_load(app->libctx, &deflt, &base, why, sizeof(why))) != CS_OK
		     : (deflt = OSSL_PROVIDER_load(app->libctx, "default")) == NULL) ||
	    !EVP_set_default_properties(app->libctx, "?provider!=credsign-pkcs11") ||
	    (r = cs_provider_use_token_rng(app->libctx)) != CS_OK) {
		cs_log_error("OpenSSL provider set-up failed%s%s", r == CS_E_CONFIG ? ": " : "",
			     r == CS_E_CONFIG ? why : "");
		goto out;
	}
	cs_token_meter_clear();
	if ((r = cs_app_describe_token(app)) != CS_OK) {
		cs_log_error("start-up failed: %s%s", cs_strerror(r), token_cause(r, cause, sizeof(cause)));
		goto out;
	}
	/* the keys, named when they are not in the token. The signing key is
	 * the store's (put_signing_key_in_force, below); without a store the
	 * configured one will be its first: it signs once, as --check-config
	 * makes it, before anything is written (a key the token will not sign
	 * with stops start-up here, and no store is created) */
	if ((store_is_new(cfg) &&
	     (r = check_token_key(chk, app->token, app->libctx, "pkcs11.signing_key", cfg->pkcs11.signing_key, 1)) !=
		     CS_OK) ||
	    (strncmp(cfg->tls.key, "pkcs11:", 7) == 0 &&
	     (r = check_token_key(chk, app->token, app->libctx, "tls.key", cfg->tls.key, 0)) != CS_OK))
		goto out;
	/* the profiles' keys: neither the certificate key nor another
	 * profile's (the store's records are checked once it is open) */
	if (nprofiles > 0 && (r = profile_keys_token_check(chk, app->token, pkeys)) != CS_OK) {
		cs_log_error("start-up failed: a signing profile's key is refused");
		audit_profile_key_refusal(cfg, pkeys, nprofiles);
		goto out;
	}
	/* the TLS material, checked and loaded before anything is written */
	check_tls(chk, app->libctx, 1);
	if (chk->problems > 0) {
		cs_log_error("start-up failed: the TLS material is not usable");
		goto out;
	}
	if ((r = cs_server_load_tls(d->srv, app->libctx, cfg, why, sizeof(why))) != CS_OK) {
		cs_log_error("start-up failed: the TLS context cannot be made: %s", why);
		goto out;
	}
	/* the network process needs nothing of root's from here on */
	if (child != NULL && drop_privileges(d) != CS_OK)
		goto out;
	/* every check passed: from here on the daemon changes what it owns */
	if (!cs_store_target_is_pg(cfg))
		make_store_private(cfg->store.path);
	else if (cfg->store.postgresql.pool_size < store_pool_need(cfg)) {
		cs_log_error("start-up failed: setting 'store.postgresql.pool_size' %d is too small: the daemon holds %d "
			     "connections at once (server.workers %d, the ledger's 2, the key watch's 1%s)",
			     cfg->store.postgresql.pool_size, store_pool_need(cfg), cfg->server.workers,
			     cfg->server.health_listen != NULL ? ", the probe listener's 1" : "");
		goto out;
	}
	/* the clock against the log's newest time, read before anything is
	 * written: far ahead or behind is warned of and audited */
	cs_audit_clock clock_at_start;
	cs_store_target target;
	if ((r = cs_store_target_from_config(cfg, &target)) != CS_OK ||
	    (r = cs_ledger_connect(&target, cfg->audit.write_timeout_ms, &app->ledger)) != CS_OK ||
	    (r = cs_audit_clock_at_start(&target, &clock_at_start)) != CS_OK) {
		cs_log_error("start-up failed: store %s: %s", store_label(cfg), cs_strerror(r));
		/* the database may be starting or failing over: systemd tries again */
		if (r == CS_E_STORE_UNREACHABLE)
			status = CS_PRIVSEP_EXIT_STORE_UNREACHABLE;
		goto out;
	}
	/* one time for every node sharing the store: generation sessions expire
	 * and audit times order by it across nodes */
	if (clock_at_start.db_clock && llabs(clock_at_start.db_skew_ms) > CS_AUDIT_DB_SKEW_MAX_MS) {
		cs_log_error("start-up failed: this node's clock is %lld ms %s the clock of the store's database (%s); "
			     "nodes sharing a store need one time (sessions expire by it, audit times order by it): "
			     "synchronise the clocks (NTP) and start again",
			     llabs(clock_at_start.db_skew_ms), clock_at_start.db_skew_ms > 0 ? "ahead of" : "behind",
			     store_label(cfg));
		goto out;
	}
	if (clock_at_start.db_clock)
		cs_log_info("clock: %lld ms from the store's database's", (long long)clock_at_start.db_skew_ms);
	/* server.node_id is this node's among those sharing the store */
	if (cs_app_node_claim(app) != CS_OK)
		goto out; /* said why */
	/* the store's active key (a store that never had one: the configured
	 * key, which signs once before it is recorded) */
	if ((r = put_signing_key_in_force(app, chk, &in_force, &warrant)) != CS_OK) {
		if (r == CS_E_STORE_UNREACHABLE) /* gone since the ledger connected */
			status = CS_PRIVSEP_EXIT_STORE_UNREACHABLE;
		goto out; /* said why */
	}
	if ((r = put_profile_keys_in_force(app, chk, pkeys, pin_force, pwarrant)) != CS_OK) {
		if (r == CS_E_CONFIG)
			cs_log_error("start-up failed: a signing profile's key is refused");
		if (r == CS_E_STORE_UNREACHABLE)
			status = CS_PRIVSEP_EXIT_STORE_UNREACHABLE;
		goto out; /* said why */
	}
	warn_unconfigured_profiles(chk);
	warn_signed_digests(chk, pkeys);
	if ((r = cs_audit_open(cfg, app->signer, &app->audit)) != CS_OK ||
	    (r = record_config_load(app)) != CS_OK ||
	    (child != NULL && child->restart_reason != NULL &&
	     (r = record_restart(app, child->restart_reason)) != CS_OK) ||
	    (r = cs_audit_clock_record(app->audit, app->ledger, &clock_at_start)) != CS_OK ||
	    (r = record_token_validation(app)) != CS_OK ||
	    (r = cs_service_rules_start(app, cfg)) != CS_OK ||
	    (r = cs_ledger_start(app->ledger)) != CS_OK ||
	    (r = cs_key_watch_new(app, in_force.kid != NULL ? &in_force : NULL, in_force.kid != NULL ? &warrant : NULL,
				  &app->keys)) != CS_OK) {
		cs_log_error("start-up failed: %s", cs_strerror(r));
		goto out;
	}
	for (size_t i = 0; i < app->nprofiles; i++) {
		int held = pin_force[i].kid != NULL;
		if ((r = cs_key_watch_profile_in_force(app->keys, app->profiles[i].cfg->name, held ? &pin_force[i] : NULL,
						       held ? &pwarrant[i] : NULL)) != CS_OK) {
			cs_log_error("start-up failed: %s", cs_strerror(r));
			goto out;
		}
	}
	if ((r = cs_key_watch_start(app->keys)) != CS_OK) {
		cs_log_error("start-up failed: %s", cs_strerror(r));
		goto out;
	}
	/* a restarted key process's channels come over the control channel */
	if (child != NULL) {
		r = cs_privsep_receiver_start(child->control_fd, app->token, app, &rx);
		child->control_fd = -1; /* taken over */
		if (r != CS_OK)
			goto out; /* logged */
	}
	if (child != NULL && child->restart_reason != NULL)
		cs_log_info("network process restarted (%s): node=%s signing key kid=%s", child->restart_reason,
			    cfg->server.node_id, in_force.kid != NULL ? in_force.kid : "none");
	else
		cs_log_info("credsignd %s starting: node=%s token=\"%s\" signing key kid=%s", CREDSIGN_VERSION,
			    cfg->server.node_id, cfg->pkcs11.token_uri, in_force.kid != NULL ? in_force.kid : "none");
	for (size_t i = 0; i < app->nprofiles; i++)
		cs_log_info("signing profile %s: key kid=%s", app->profiles[i].cfg->name,
			    pin_force[i].kid != NULL ? pin_force[i].kid : "none (its signatures fail closed)");
	if (child != NULL) {
		char summary[256];
		confinement_text("network process", cfg, d->mlock, summary, sizeof(summary));
		/* every start-up thread exists: the allowlist covers them all */
		if (cfg->hardening.seccomp &&
		    (r = cs_confine_seccomp(cs_store_target_is_pg(cfg) ? CS_CONFINE_NETWORK_DB : CS_CONFINE_NETWORK,
					    child->report_fd, why, sizeof(why))) != CS_OK) {
			cs_log_error("start-up failed: %s", why);
			goto out;
		}
		cs_log_info("%s", summary);
		cs_privsep_ready(child);
	}
	if ((r = cs_server_run(d->srv, app)) == CS_OK && atomic_load(&app->node.lost)) {
		/* another node holds server.node_id: final (the supervisor does
		 * not restart the network process for it; the daemon exits 1) */
		status = child != NULL ? CS_PRIVSEP_EXIT_NODE_ID : 1;
		cs_log_info("stopped: server.node_id %s is held by another running node (exit status %d)",
			    cfg->server.node_id, status);
	} else if (r == CS_OK) {
		status = 0;
		cs_log_info("stopped");
	} else {
		cs_log_error("server failed: %s", cs_strerror(r));
	}
out:
	cs_privsep_receiver_stop(rx); /* before the token, audit and ledger it uses */
	cs_server_free(d->srv); /* its TLS context before the library context */
	d->srv = NULL;
	cs_key_watch_free(app->keys); /* before the ledger and audit it writes through */
	cs_app_node_release(app);  /* the key watch renewed it: stopped now */
	cs_service_rules_stop(app);
	cs_ledger_close(app->ledger); /* commits what was submitted */
	cs_audit_free(app->audit);
	cs_signer_slot_free(app->signer);
	cs_app_profiles_free(app);
	cs_active_key_free(&in_force);
	for (size_t i = 0; pin_force != NULL && i < nprofiles; i++)
		cs_active_key_free(&pin_force[i]);
	free(pin_force);
	free(pwarrant);
	free(pkeys);
	json_decref(app->entropy_source);
	OSSL_PROVIDER_unload(base);
	OSSL_PROVIDER_unload(deflt);
	OSSL_PROVIDER_unload(prov);
	OSSL_LIB_CTX_free(app->libctx);
	cs_token_close(app->token);
	app->token = NULL;
	return status;
}

/* The keys the configuration names, with their purposes, as the key
 * process binds them: pkcs11.signing_key (certificates), a pkcs11: tls.key,
 * each signing profile's key. Only keys the token has, each once: a
 * configured key that is missing or shared (the certificate key named as a
 * profile's) is the network process's to report, as the in-process
 * daemon does (a missing signing key is no problem once the store has
 * another; a shared one is refused and audited), and the key process binds
 * it to no purpose. */
typedef struct {
	cs_keyproc_key key;
	cs_key_ref found;
	char setting[80];
} configured_key;

static size_t configured_keys(const cs_config *cfg, cs_token *token, configured_key *keys)
{
	size_t n = 0, total = 2 + cfg->signing.nprofiles;
	for (size_t i = 0; i < total; i++) {
		configured_key *k = &keys[n];
		memset(k, 0, sizeof(*k));
		if (i == 0) {
			k->key.uri = cfg->pkcs11.signing_key;
			k->key.purpose.kind = CS_KEY_PURPOSE_CERTIFICATE;
			snprintf(k->setting, sizeof(k->setting), "pkcs11.signing_key");
		} else if (i == 1) {
			if (strncmp(cfg->tls.key, "pkcs11:", 7) != 0)
				continue;
			k->key.uri = cfg->tls.key;
			k->key.purpose.kind = CS_KEY_PURPOSE_TLS;
			snprintf(k->setting, sizeof(k->setting), "tls.key");
		} else {
			const cs_config_profile *p = &cfg->signing.profiles[i - 2];
			k->key.uri = p->key;
			k->key.purpose.kind = CS_KEY_PURPOSE_PROFILE;
			snprintf(k->key.purpose.profile, sizeof(k->key.purpose.profile), "%s", p->name);
			snprintf(k->setting, sizeof(k->setting), "signing.profiles.%s.key", p->name);
		}
		k->key.setting = k->setting;
		cs_key_ref query;
		cs_token_meter_clear();
		if (cs_key_ref_from_uri(k->key.uri, &query) != CS_OK || cs_token_find_key(token, &query, &k->found) != CS_OK) {
			cs_log_debug("key process: %s %s is not in the token: bound to no purpose", k->setting, k->key.uri);
			continue;
		}
		int twice = 0;
		for (size_t j = 0; j < n && !twice; j++)
			twice = strcmp(keys[j].found.label, k->found.label) == 0 && keys[j].found.id_len == k->found.id_len &&
				memcmp(keys[j].found.id, k->found.id, k->found.id_len) == 0;
		if (twice) {
			cs_log_debug("key process: %s %s is a key configured before: bound to its first purpose only",
				     k->setting, k->key.uri);
			continue;
		}
		n++;
	}
	return n;
}

/* The key process (privsep.h): the token opened and checked as the
 * in-process daemon opens it, the configured keys bound to their purposes,
 * its capabilities dropped and seccomp on (uid 0 stays when started as
 * root: the PIN file is root's), then it serves the network process's
 * channels until they close. */
static int key_main(void *arg, cs_privsep_child *child)
{
	daemon_ctx *d = arg;
	const cs_config *cfg = d->cfg;
	cs_token *token = NULL;
	cs_keyproc *kp = NULL;
	configured_key *keys = NULL;
	cs_keyproc_key *list = NULL;
	char why[512];
	int status = 1;
	cs_err r;
	char summary[256];
	cs_server_free(d->srv); /* the listeners are the network process's */
	d->srv = NULL;
	(void)prctl(PR_SET_NAME, "credsignd-key", 0, 0, 0);
	/* every capability dropped before the module is loaded: capabilities
	 * are per thread, and a module may start threads of its own */
	if ((r = cs_confine_process(d->mlock, 1, why, sizeof(why))) != CS_OK ||
	    (r = cs_confine_drop_caps(why, sizeof(why))) != CS_OK) {
		cs_log_error("key process: start-up failed: %s", why);
		goto out;
	}
	if ((r = open_token_checked(d, &token)) != CS_OK)
		goto out; /* said why */
	size_t total = 2 + cfg->signing.nprofiles, n;
	if ((keys = calloc(total, sizeof(*keys))) == NULL || (list = calloc(total, sizeof(*list))) == NULL) {
		cs_log_error("key process: start-up failed: %s", cs_strerror(CS_E_NOMEM));
		goto out;
	}
	n = configured_keys(cfg, token, keys);
	for (size_t i = 0; i < n; i++)
		list[i] = keys[i].key;
	if ((r = cs_keyproc_prepare(token, list, n, &kp)) != CS_OK)
		goto out; /* logged naming the setting */
	confinement_text("key process", cfg, d->mlock, summary, sizeof(summary));
	if (cfg->hardening.seccomp && (r = cs_confine_seccomp(CS_CONFINE_KEY, child->report_fd, why, sizeof(why))) != CS_OK) {
		cs_log_error("key process: start-up failed: %s", why);
		goto out;
	}
	cs_log_info("%s", summary);
	if (geteuid() == 0)
		cs_log_warn("key process: runs as root (uid 0) without capabilities: taken over (through the "
			    "PKCS#11 module), it could still read and write root's files; start credsignd as a key "
			    "account with CAP_SETUID and CAP_SETGID instead (docs/hardening.md, \"Two accounts\")");
	cs_log_info("key process: serving %zu channel(s), %zu configured key(s) bound", child->nchannels, n);
	cs_privsep_ready(child);
	r = cs_keyproc_serve(kp, child->channels, child->nchannels);
	child->nchannels = 0; /* taken over */
	if (r != CS_OK)
		cs_log_error("key process: %s", cs_strerror(r));
	status = r == CS_OK ? 0 : 1;
out:
	for (size_t i = 0; i < child->nchannels; i++)
		close(child->channels[i]);
	child->nchannels = 0;
	cs_keyproc_free(kp);
	free(list);
	free(keys);
	cs_token_close(token);
	daemon_free(d);
	return status;
}

/* The network process (privsep.h): today's daemon on the key process's
 * remote token, confined (serve_token). */
static int network_main(void *arg, cs_privsep_child *child)
{
	daemon_ctx *d = arg;
	char why[512];
	int status = 1;
	(void)prctl(PR_SET_NAME, "credsignd-net", 0, 0, 0);
	cs_err r = cs_confine_process(d->mlock, 1, why, sizeof(why));
	if (r != CS_OK) {
		cs_log_error("start-up failed: %s", why);
		for (size_t i = 0; i < child->nchannels; i++)
			close(child->channels[i]);
	} else if ((r = cs_token_open_remote(child->channels, child->nchannels, &d->app.token)) != CS_OK) {
		cs_log_error("start-up failed: the key process does not answer: %s", cs_strerror(r));
	}
	child->nchannels = 0; /* taken over */
	if (r == CS_OK)
		status = serve_token(d, child);
	if (child->control_fd >= 0)
		close(child->control_fd);
	child->control_fd = -1;
	daemon_free(d);
	return status;
}

static int serve(const char *path, int verbose)
{
	daemon_ctx d = {0};
	int status = 1;

	harden_process();
	/* SIGHUP waits until the server takes signals: the listener is bound
	 * before start-up ends, so a reload may come early, and must not kill
	 * the daemon with the default action (threads inherit the mask) */
	sigset_t hup;
	sigemptyset(&hup);
	sigaddset(&hup, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &hup, NULL);
	cs_json_wiping_allocator();
	cs_event_wiping_allocator();
	cs_token_meter_observe(cs_metrics_token_call); /* token calls in GET /metrics */
	if (daemon_start(&d, path, verbose) != CS_OK) {
		daemon_free(&d);
		return 1;
	}
	if (d.cfg->hardening.privsep) {
		if (!d.cfg->hardening.seccomp)
			cs_log_warn("hardening.seccomp = false: the key and network processes run without their system "
				    "call allowlists (docs/hardening.md)");
		d.mlock = memory_lockable(d.cfg);
		/* one channel per token session, as many requests at once as in-process */
		int sessions = d.cfg->pkcs11.sessions;
		cs_privsep_params p = {.nchannels = sessions < 1 ? 1 : (size_t)sessions, .key_main = key_main,
				       .network_main = network_main, .arg = &d};
		/* the key process's PKCS#11 calls in the network process's GET /metrics */
		status = cs_metrics_share() == CS_OK ? cs_privsep_supervise(&p) : 1;
	} else {
		cs_log_warn("hardening.privsep = false: one process holds the token and serves the network%s; no key "
			    "process, no privilege drop, no seccomp",
			    geteuid() == 0 ? ", as root" : "");
		if (open_token_checked(&d, &d.app.token) == CS_OK)
			status = serve_token(&d, NULL);
	}
	daemon_free(&d);
	return status;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: credsignd [-v] --config FILE\n"
		   "       credsignd [-v] --check-config FILE [--offline]\n"
		   "       credsignd --version\n"
		   "--check-config opens the token, finds the keys and checks the TLS material;\n"
		   "--offline checks everything but the token (the file, presets, TLS material;\n"
		   "a pkcs11: tls.key is not loaded).\n"
		   "-v, --verbose: log at debug level for this run (log.level = \"debug\"), every\n"
		   "failing PKCS#11 call included.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"check-config", required_argument, NULL, 'C'},
		{"offline", no_argument, NULL, 'O'},
		{"verbose", no_argument, NULL, 'v'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *serve_path = NULL, *check_path = NULL;
	int offline = 0, verbose = 0, c;
	while ((c = getopt_long(argc, argv, "c:hv", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			serve_path = optarg;
			break;
		case 'C':
			check_path = optarg;
			break;
		case 'O':
			offline = 1;
			break;
		case 'v':
			verbose = 1;
			break;
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
	/* one of --config and --check-config; --offline only with the latter */
	if (optind != argc || (serve_path != NULL) == (check_path != NULL) || (offline && check_path == NULL)) {
		usage(stderr);
		return 2;
	}
	/* descriptors inherited from whatever started credsignd (a shell's, a
	 * test harness's) reach neither the supervisor's children nor anything
	 * else: only standard input, output and error stay */
	(void)close_range(3, ~0U, 0);
	return check_path != NULL ? check_config(check_path, offline, verbose) : serve(serve_path, verbose);
}
