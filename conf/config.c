/* config: see config.h. One schema table drives parsing and validation. */
#include "config.h"

#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <grp.h>
#include <pwd.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/http.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <libpq-fe.h>
#include <p11-kit/uri.h>

#include "cs_secret.h"
#include "token.h"

typedef enum {
	K_GROUP,
	K_STRING,   /* any non-empty printable string */
	K_IDENT,    /* [A-Za-z0-9._-]+ */
	K_INT,
	K_BOOL,
	K_FILE,     /* readable regular file */
	K_PIN_FILE, /* readable, owner-only */
	K_OUT_FILE, /* file that may not exist yet, in a writable directory */
	K_MODULE,   /* module path (readable file) or p11-kit module name */
	K_TOKEN_URI,
	K_KEY_URI,
	K_KEY_SOURCE, /* key file or pkcs11: key URI */
	K_LISTEN,     /* HOST:PORT */
	K_URL,        /* https URL */
	K_TEXT,       /* document text: 1..max code points (cs_config_text_problem) */
	K_DATE,       /* YYYY-MM-DD, a real date */
	K_LOG_LEVEL,
	K_LOG_FORMAT,
	K_PROGRAM,    /* "FIPS 140-3", "FIPS 140-2" or "none" */
	K_CMVP_CERT,  /* a CMVP certificate number: digits */
	K_VERSION,    /* a CK_VERSION: MAJOR.MINOR, each 0..255 */
	K_GRANTS,     /* access.grants: a list of groups (apply_grants) */
	K_OFFICERS,   /* ceremony.officers: a list of groups (apply_officers) */
	K_PROFILES,   /* signing.profiles: a list of groups (apply_profiles) */
	K_STORE_BACKEND, /* "sqlite" or "postgresql" */
	K_PG_CONNINFO,   /* libpq conninfo or URI, without a password */
	K_PG_SSLMODE,    /* a libpq sslmode */
	K_PG_ROLE,       /* a PostgreSQL role name (plain identifier) */
	K_SECRET_FILE,   /* a password file: regular, owner-only (check_secret_owner) */
} kind;

typedef struct {
	const char *path;
	kind kind;
	bool required;
	const char *def; /* default for strings and enums (NULL = unset) */
	long def_int, min, max;
	size_t offset;
} schema_entry;

#define F(member) offsetof(cs_config, member)
static const schema_entry schema[] = {
	{"server", K_GROUP, false, NULL, 0, 0, 0, 0},
	{"server.listen", K_LISTEN, false, "127.0.0.1:8443", 0, 0, 0, F(server.listen)},
	{"server.public_base_url", K_URL, false, "https://127.0.0.1:8443", 0, 0, 0,
	 F(server.public_base_url)},
	{"server.node_id", K_IDENT, false, "node-1", 0, 0, 0, F(server.node_id)},
	{"server.workers", K_INT, false, NULL, 4, 1, 64, F(server.workers)},
	{"server.max_connections", K_INT, false, NULL, 256, 1, 100000, F(server.max_connections)},
	{"server.max_connections_per_identity", K_INT, false, NULL, 64, 1, 100000,
	 F(server.max_connections_per_identity)},
	{"server.max_body_bytes", K_INT, false, NULL, 65536, 1024, 1048576, F(server.max_body_bytes)},
	{"server.max_header_bytes", K_INT, false, NULL, 8192, 1024, 65536, F(server.max_header_bytes)},
	{"server.timeout_ms", K_INT, false, NULL, 10000, 100, 600000, F(server.timeout_ms)},
	{"server.handshake_timeout_ms", K_INT, false, NULL, 5000, 100, 60000,
	 F(server.handshake_timeout_ms)},
	{"server.request_timeout_ms", K_INT, false, NULL, 10000, 100, 600000,
	 F(server.request_timeout_ms)},
	{"server.max_connection_seconds", K_INT, false, NULL, 300, 1, 86400,
	 F(server.max_connection_seconds)},
	{"server.max_handshakes", K_INT, false, NULL, 64, 1, 100000, F(server.max_handshakes)},
	{"server.max_handshakes_per_source", K_INT, false, NULL, 8, 1, 100000,
	 F(server.max_handshakes_per_source)},
	{"server.health_listen", K_LISTEN, false, NULL, 0, 0, 0, F(server.health_listen)},
	{"server.presets_file", K_FILE, false, "presets.conf", 0, 0, 0, F(server.presets_file)},
	{"server.wordlist_file", K_FILE, false,
	 "/usr/lib/python3/dist-packages/diceware/wordlists/wordlist_en_eff.txt", 0, 0, 0,
	 F(server.wordlist_file)},
	/* checked by check_accounts: an account of this machine */
	{"server.user", K_STRING, false, NULL, 0, 0, 0, F(server.user)},
	{"server.group", K_STRING, false, NULL, 0, 0, 0, F(server.group)},
	{"server.allow_root", K_BOOL, false, NULL, 0, 0, 1, F(server.allow_root)},
	{"tls", K_GROUP, true, NULL, 0, 0, 0, 0},
	{"tls.cert", K_FILE, true, NULL, 0, 0, 0, F(tls.cert)},
	{"tls.key", K_KEY_SOURCE, true, NULL, 0, 0, 0, F(tls.key)},
	{"tls.ca", K_FILE, true, NULL, 0, 0, 0, F(tls.ca)},
	{"tls.crl", K_FILE, false, NULL, 0, 0, 0, F(tls.crl)},
	{"tls.crl_check", K_BOOL, false, NULL, 0, 0, 1, F(tls.crl_check)},
	{"tls.verify_depth", K_INT, false, NULL, 4, 1, 10, F(tls.verify_depth)},
	{"tls.identity_from_cn", K_BOOL, false, NULL, 0, 0, 1, F(tls.identity_from_cn)},
	{"tls.groups", K_STRING, false, NULL, 0, 0, 0, F(tls.groups)},
	{"pkcs11", K_GROUP, true, NULL, 0, 0, 0, 0},
	{"pkcs11.module", K_MODULE, true, NULL, 0, 0, 0, F(pkcs11.module)},
	{"pkcs11.init_args", K_STRING, false, NULL, 0, 0, 0, F(pkcs11.init_args)},
	{"pkcs11.token_uri", K_TOKEN_URI, true, NULL, 0, 0, 0, F(pkcs11.token_uri)},
	{"pkcs11.pin_file", K_PIN_FILE, false, NULL, 0, 0, 0, F(pkcs11.pin_file)},
	{"pkcs11.sessions", K_INT, false, NULL, 4, 1, 64, F(pkcs11.sessions)},
	{"pkcs11.signing_key", K_KEY_URI, true, NULL, 0, 0, 0, F(pkcs11.signing_key)},
	{"pkcs11.validation", K_GROUP, false, NULL, 0, 0, 0, 0},
	{"pkcs11.validation.program", K_PROGRAM, false, "none", 0, 0, 0,
	 F(pkcs11.validation.program)},
	{"pkcs11.validation.certificate", K_CMVP_CERT, false, NULL, 0, 0, 0,
	 F(pkcs11.validation.certificate)},
	{"pkcs11.validation.module", K_STRING, false, NULL, 0, 0, 0, F(pkcs11.validation.module)},
	{"pkcs11.validation.level", K_INT, false, NULL, 0, 1, 4, F(pkcs11.validation.level)},
	{"pkcs11.validation.hardware_version", K_VERSION, false, NULL, 0, 0, 0,
	 F(pkcs11.validation.hardware_version)},
	{"pkcs11.validation.firmware_version", K_VERSION, false, NULL, 0, 0, 0,
	 F(pkcs11.validation.firmware_version)},
	{"pkcs11.validation.library_version", K_VERSION, false, NULL, 0, 0, 0,
	 F(pkcs11.validation.library_version)},
	{"crypto", K_GROUP, false, NULL, 0, 0, 0, 0},
	{"crypto.openssl_fips", K_BOOL, false, NULL, 0, 0, 1, F(crypto.openssl_fips)},
	{"crypto.profile", K_IDENT, false, NULL, 0, 0, 0, F(crypto.profile)},
	{"store", K_GROUP, false, NULL, 0, 0, 0, 0},
	/* before store.path: which backend decides whether a path is wanted */
	{"store.backend", K_STORE_BACKEND, false, "sqlite", 0, 0, 0, F(store.backend)},
	/* with sqlite only (check_store: refused with postgresql) */
	{"store.path", K_OUT_FILE, false, "credsign.db", 0, 0, 0, F(store.path)},
	{"store.session_retention_seconds", K_INT, false, NULL, 86400, 60, 31536000,
	 F(store.session_retention_seconds)},
	/* with postgresql only; connection required with it (check_store) */
	{"store.postgresql", K_GROUP, false, NULL, 0, 0, 0, 0},
	{"store.postgresql.connection", K_PG_CONNINFO, false, NULL, 0, 0, 0, F(store.postgresql.connection)},
	{"store.postgresql.sslmode", K_PG_SSLMODE, false, "verify-full", 0, 0, 0, F(store.postgresql.sslmode)},
	{"store.postgresql.ca_file", K_FILE, false, NULL, 0, 0, 0, F(store.postgresql.ca_file)},
	{"store.postgresql.password_file", K_SECRET_FILE, false, NULL, 0, 0, 0,
	 F(store.postgresql.password_file)},
	{"store.postgresql.pool_size", K_INT, false, NULL, 16, 2, 1000, F(store.postgresql.pool_size)},
	{"store.postgresql.statement_timeout_ms", K_INT, false, NULL, 5000, 100, 600000,
	 F(store.postgresql.statement_timeout_ms)},
	{"store.postgresql.connect_timeout_seconds", K_INT, false, NULL, 5, 1, 60,
	 F(store.postgresql.connect_timeout_seconds)},
	{"store.postgresql.node_role", K_PG_ROLE, false, "credsign_node", 0, 0, 0, F(store.postgresql.node_role)},
	{"log", K_GROUP, false, NULL, 0, 0, 0, 0},
	{"log.level", K_LOG_LEVEL, false, "info", 0, 0, 0, F(log.level)},
	{"log.format", K_LOG_FORMAT, false, "logfmt", 0, 0, 0, F(log.format)},
	{"audit", K_GROUP, false, NULL, 0, 0, 0, 0},
	{"audit.checkpoint_entries", K_INT, false, NULL, 1000, 1, 1000000, F(audit.checkpoint_entries)},
	{"audit.checkpoint_seconds", K_INT, false, NULL, 5, 1, 86400, F(audit.checkpoint_seconds)},
	{"audit.write_timeout_ms", K_INT, false, NULL, 2000, 100, 60000, F(audit.write_timeout_ms)},
	{"audit.retention_days", K_INT, false, NULL, 2192, 365, 36500, F(audit.retention_days)},
	{"audit.refusal_summary_seconds", K_INT, false, NULL, 60, 1, 3600,
	 F(audit.refusal_summary_seconds)},
	{"audit.syslog", K_BOOL, false, NULL, 0, 0, 1, F(audit.syslog)},
	{"metrics", K_GROUP, false, NULL, 0, 0, 0, 0},
	{"hardening", K_GROUP, false, NULL, 0, 0, 0, 0},
	{"hardening.privsep", K_BOOL, false, NULL, 1, 0, 1, F(hardening.privsep)},
	{"hardening.seccomp", K_BOOL, false, NULL, 1, 0, 1, F(hardening.seccomp)},
	{"hardening.mlock", K_BOOL, false, NULL, 1, 0, 1, F(hardening.mlock)},
	{"access", K_GROUP, false, NULL, 0, 0, 0, 0},
	{"access.grants", K_GRANTS, false, NULL, 0, 0, 0, F(access)},
	{"signing", K_GROUP, false, NULL, 0, 0, 0, 0},
	{"signing.max_request_bytes", K_INT, false, NULL, 1048576, 1024, 16777216,
	 F(signing.max_request_bytes)},
	{"signing.batch_max", K_INT, false, NULL, 100, 1, 1000, F(signing.batch_max)},
	{"signing.profiles", K_PROFILES, false, NULL, 0, 0, 0, F(signing)},
	{"certificates", K_GROUP, false, NULL, 0, 0, 0, 0},
	{"certificates.public", K_BOOL, false, NULL, 0, 0, 1, F(certificates.public)},
	{"policy", K_GROUP, false, NULL, 0, 0, 0, 0},
	{"policy.organisation", K_TEXT, false, NULL, 0, 1, CS_CONFIG_POLICY_TEXT_MAX, F(policy.organisation)},
	{"policy.owner", K_TEXT, false, NULL, 0, 1, CS_CONFIG_POLICY_TEXT_MAX, F(policy.owner)},
	{"policy.scope", K_TEXT, false, NULL, 0, 1, CS_CONFIG_POLICY_SCOPE_MAX, F(policy.scope)},
	{"policy.version", K_TEXT, false, NULL, 0, 1, CS_CONFIG_POLICY_TEXT_MAX, F(policy.version)},
	{"policy.effective_date", K_DATE, false, NULL, 0, 0, 0, F(policy.effective_date)},
	{"policy.review_months", K_INT, false, NULL, 12, 1, 12, F(policy.review_months)},
	{"inventory", K_GROUP, false, NULL, 0, 0, 0, 0},
	{"inventory.due_soon_days", K_INT, false, NULL, 14, 1, 365, F(inventory.due_soon_days)},
	/* above 90 refused by check_inventory, naming 8.3.9 */
	{"inventory.pci_password_change_days", K_INT, false, NULL, 0, 0, 36500,
	 F(inventory.pci_password_change_days)},
	{"ceremony", K_GROUP, false, NULL, 0, 0, 0, 0},
	/* required when the group is there */
	{"ceremony.officer_ca", K_FILE, true, NULL, 0, 0, 0, F(ceremony.officer_ca)},
	{"ceremony.officer_crl", K_FILE, false, NULL, 0, 0, 0, F(ceremony.officer_crl)},
	/* below 2 refused by check_ceremony, with why */
	{"ceremony.quorum", K_INT, false, NULL, 2, 1, CS_CONFIG_OFFICERS_MAX, F(ceremony.quorum)},
	{"ceremony.revoke_quorum", K_INT, false, NULL, 1, 1, CS_CONFIG_OFFICERS_MAX, F(ceremony.revoke_quorum)},
	{"ceremony.expiry_minutes", K_INT, false, NULL, 60, 1, CS_CONFIG_EXPIRY_MINUTES_MAX,
	 F(ceremony.expiry_minutes)},
	{"ceremony.officers", K_OFFICERS, true, NULL, 0, 0, 0, F(ceremony)},
};
#undef F
#define SCHEMA_LEN (sizeof(schema) / sizeof(schema[0]))

#define STRING_MAX 4096

typedef struct {
	cs_config *cfg;
	cs_config_diag *diag;
	const char *file; /* the main file as given, for messages */
	const char *abs;  /* the main file's absolute path, as libconfig names it */
	char *dir;        /* directory of the main file */
	bool failed;
	bool no_secrets; /* cs_config_reload: the PIN and key files are not opened */
} loader;

void cs_config_diag_add(cs_config_diag *diag, const char *msg)
{
	char **grown = realloc(diag->messages, (diag->count + 1) * sizeof(char *));
	if (grown == NULL)
		return;
	diag->messages = grown;
	if ((grown[diag->count] = strdup(msg)) != NULL)
		diag->count++;
}

static void diag_push(loader *l, const char *msg)
{
	l->failed = true;
	cs_config_diag_add(l->diag, msg);
}

static void diag_add(loader *l, const char *file, int line, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void diag_add(loader *l, const char *file, int line, const char *path, const char *fmt, ...)
{
	char reason[512], msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(msg, sizeof(msg), "%s:%d: setting '%s': %s", file, line, path, reason);
	else
		snprintf(msg, sizeof(msg), "%s: setting '%s': %s", file, path, reason);
	diag_push(l, msg);
}

static const schema_entry *schema_find(const char *path)
{
	for (size_t i = 0; i < SCHEMA_LEN; i++)
		if (strcmp(schema[i].path, path) == 0)
			return &schema[i];
	return NULL;
}

/* The file that sets s: the main file named as the operator gave it. */
static const char *setting_file(const config_setting_t *s, const loader *l)
{
	const char *f = config_setting_source_file(s);
	return f != NULL && (l->abs == NULL || strcmp(f, l->abs) != 0) ? f : l->file;
}

#define SERR(l, s, path, ...) \
	diag_add(l, setting_file(s, l), (int)config_setting_source_line(s), path, __VA_ARGS__)

static const char *type_name(int type)
{
	switch (type) {
	case CONFIG_TYPE_GROUP: return "a group";
	case CONFIG_TYPE_INT: case CONFIG_TYPE_INT64: return "an integer";
	case CONFIG_TYPE_FLOAT: return "a float";
	case CONFIG_TYPE_STRING: return "a string";
	case CONFIG_TYPE_BOOL: return "a boolean";
	case CONFIG_TYPE_ARRAY: return "an array";
	case CONFIG_TYPE_LIST: return "a list";
	default: return "an unknown type";
	}
}

/* Resolve a path against the config file's directory. */
static char *resolve_path(const loader *l, const char *value)
{
	if (value[0] == '/')
		return strdup(value);
	size_t n = strlen(l->dir) + 1 + strlen(value) + 1;
	char *p = malloc(n);
	if (p != NULL)
		snprintf(p, n, "%s/%s", l->dir, value);
	return p;
}

/* ---- per-kind checks: return NULL when fine, else a reason -------------- */

static const char *check_printable(const char *v)
{
	if (v[0] == '\0')
		return "must not be empty";
	if (strlen(v) > STRING_MAX)
		return "too long";
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return "contains control characters";
	return NULL;
}

static const char *check_ident(const char *v)
{
	if (v[0] == '\0' || strlen(v) > 64)
		return "must be 1 to 64 characters of A-Z a-z 0-9 . _ -";
	for (const char *p = v; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
			return "must be 1 to 64 characters of A-Z a-z 0-9 . _ -";
	return NULL;
}

static void check_file(loader *l, const config_setting_t *s, const char *path, const char *file)
{
	struct stat st;
	if (stat(file, &st) != 0)
		SERR(l, s, path, "file '%s' is not readable: %s", file, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		SERR(l, s, path, "'%s' is not a regular file", file);
	else if (access(file, R_OK) != 0)
		SERR(l, s, path, "file '%s' is not readable: %s", file, strerror(errno));
}

static void check_uri(loader *l, const config_setting_t *s, const char *path, const char *v,
		      bool want_object)
{
	if (strncmp(v, "pkcs11:", 7) != 0) {
		SERR(l, s, path, "not a pkcs11: URI (RFC 7512)");
		return;
	}
	P11KitUri *uri = p11_kit_uri_new();
	if (uri == NULL)
		return;
	int rc = p11_kit_uri_parse(v, P11_KIT_URI_FOR_ANY, uri);
	if (rc != P11_KIT_URI_OK)
		SERR(l, s, path, "invalid pkcs11: URI: %s", p11_kit_uri_message(rc));
	else if (p11_kit_uri_any_unrecognized(uri))
		SERR(l, s, path, "pkcs11: URI has unrecognized attributes");
	else if (p11_kit_uri_get_pin_value(uri) != NULL)
		SERR(l, s, path, "PINs must not appear in the URI (use pin-source=file:PATH)");
	else if (want_object && p11_kit_uri_get_attribute(uri, CKA_LABEL) == NULL &&
		 p11_kit_uri_get_attribute(uri, CKA_ID) == NULL)
		SERR(l, s, path, "pkcs11: key URI must name the key with object= or id=");
	else if (!want_object && (p11_kit_uri_get_attribute(uri, CKA_LABEL) != NULL ||
				  p11_kit_uri_get_attribute(uri, CKA_ID) != NULL))
		SERR(l, s, path, "token URI must not name an object");
	else if (p11_kit_uri_get_pin_source(uri) != NULL) {
		const char *src = p11_kit_uri_get_pin_source(uri);
		const char *why = NULL;
		const char *file = strncmp(src, "file:", 5) == 0 ? src + 5 : src;
		if (file[0] != '/')
			SERR(l, s, path, "pin-source must be file:/ABSOLUTE/PATH");
		else if (!l->no_secrets && cs_secret_check_file(file, &why) != CS_OK)
			SERR(l, s, path, "PIN file '%s': %s", file, why);
	}
	p11_kit_uri_free(uri);
}

static void check_listen(loader *l, const config_setting_t *s, const char *path, const char *v)
{
	const char *colon = strrchr(v, ':');
	char *end = NULL;
	if (colon == NULL || colon == v) {
		SERR(l, s, path, "expected HOST:PORT");
		return;
	}
	errno = 0;
	long port = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno != 0 || port < 1 || port > 65535)
		SERR(l, s, path, "port must be 1 to 65535");
}

static void check_url(loader *l, const config_setting_t *s, const char *path, const char *v)
{
	char *host = NULL, *port = NULL, *rest = NULL, *frag = NULL;
	if (!OSSL_HTTP_parse_url(v, NULL, NULL, &host, &port, NULL, &rest, NULL, &frag) ||
	    strncmp(v, "https://", 8) != 0)
		SERR(l, s, path, "must be an https:// URL");
	else if (frag != NULL && frag[0] != '\0')
		SERR(l, s, path, "must not have a fragment");
	OPENSSL_free(host);
	OPENSSL_free(port);
	OPENSSL_free(rest);
	OPENSSL_free(frag);
}

/* A CK_VERSION as MAJOR.MINOR, each 0..255 in decimal digits; written
 * back normalized ("2.06" -> "2.6") into out[8]. */
static const char *check_version(const char *v, char out[8])
{
	static const char *const why =
		"must be MAJOR.MINOR as the token reports it, each 0..255 (e.g. \"2.6\")";
	unsigned part[2] = {0, 0};
	int digits = 0, i = 0;
	for (const char *p = v; *p; p++) {
		if (*p == '.' && i == 0 && digits > 0) {
			i = 1;
			digits = 0;
		} else if (*p >= '0' && *p <= '9' && digits < 3) {
			part[i] = part[i] * 10 + (unsigned)(*p - '0');
			digits++;
		} else {
			return why;
		}
	}
	if (i != 1 || digits == 0 || part[0] > 255 || part[1] > 255)
		return why;
	snprintf(out, 8, "%u.%u", part[0], part[1]);
	return NULL;
}

static bool program_known(const char *v)
{
	return strcmp(v, "FIPS 140-3") == 0 || strcmp(v, "FIPS 140-2") == 0 ||
	       strcmp(v, "none") == 0;
}

static const char *check_cmvp_certificate(const char *v)
{
	static const char *const why =
		"must be the CMVP certificate number, digits only (e.g. \"4745\" for #4745)";
	size_t n = strlen(v);
	if (n > 8 || strspn(v, "0123456789") != n || strspn(v, "0") == n)
		return why;
	return NULL;
}

bool cs_config_date_valid(const char *s)
{
	static const char shape[] = "dddd-dd-dd";
	if (s == NULL || strlen(s) != sizeof(shape) - 1)
		return false;
	for (size_t i = 0; shape[i]; i++)
		if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
			return false;
	struct tm tm = {0};
	const char *end = strptime(s, "%Y-%m-%d", &tm);
	if (end == NULL || *end != '\0')
		return false;
	/* timegm normalizes 2025-02-29 to 2025-03-01: a date that exists
	 * comes back unchanged */
	struct tm back = tm;
	time_t t = timegm(&back);
	return t != (time_t)-1 && back.tm_year == tm.tm_year && back.tm_mon == tm.tm_mon &&
	       back.tm_mday == tm.tm_mday;
}

/* One code point of well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF) from s: its length, or 0. */
static size_t utf8_decode(const unsigned char *s, uint32_t *cp)
{
	size_t len;
	uint32_t v, min;
	if (s[0] < 0x80) {
		*cp = s[0];
		return s[0] != 0;
	} else if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2, v = s[0] & 0x1fu, min = 0x80;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3, v = s[0] & 0x0fu, min = 0x800;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4, v = s[0] & 0x07u, min = 0x10000;
	} else {
		return 0;
	}
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80) /* also stops at the NUL */
			return 0;
		v = v << 6 | (s[i] & 0x3fu);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return len;
}

bool cs_config_char_refused(uint32_t cp)
{
	static const uint32_t refused[][2] = {
		{0x0000, 0x001f},   {0x007f, 0x009f},   {0x00ad, 0x00ad},   {0x0600, 0x0605},
		{0x061c, 0x061c},   {0x06dd, 0x06dd},   {0x070f, 0x070f},   {0x0890, 0x0891},
		{0x08e2, 0x08e2},   {0x115f, 0x1160},   {0x180e, 0x180e},   {0x200b, 0x200f},
		{0x2028, 0x202e},   {0x2060, 0x2064},   {0x2066, 0x206f},   {0x3164, 0x3164},
		{0xd800, 0xdfff},   {0xfdd0, 0xfdef},   {0xfeff, 0xfeff},   {0xffa0, 0xffa0},
		{0xfff9, 0xfffb},   {0x110bd, 0x110bd}, {0x110cd, 0x110cd}, {0x13430, 0x1343f},
		{0x1bca0, 0x1bca3}, {0x1d173, 0x1d17a}, {0xe0001, 0xe0001}, {0xe0020, 0xe007f},
	};
	if (cp > 0x10ffff || (cp & 0xfffeu) == 0xfffeu)
		return true;
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (cp >= refused[i][0] && cp <= refused[i][1])
			return true;
	return false;
}

const char *cs_config_text_problem(const char *s, size_t max_chars)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t chars = 0;
	while (*p) {
		uint32_t cp;
		size_t n = utf8_decode(p, &cp);
		if (n == 0)
			return "must be UTF-8 text";
		if (cs_config_char_refused(cp))
			return "must not contain control characters, bidirectional controls or other "
			       "invisible format characters";
		p += n;
		chars++;
	}
	if (chars == 0)
		return "must not be empty";
	if (chars > max_chars)
		return "is too long";
	return NULL;
}

/* ---- storing values ----------------------------------------------------- */

/* value: a copy the config takes; NULL when making it ran out of memory */
static void store_string(loader *l, const schema_entry *e, char *value)
{
	if (value == NULL)
		diag_push(l, "out of memory loading the configuration");
	char **slot = (char **)((char *)l->cfg + e->offset);
	free(*slot);
	*slot = value;
}

static bool wants_path(kind k)
{
	return k == K_FILE || k == K_PIN_FILE || k == K_OUT_FILE || k == K_SECRET_FILE;
}

/* ---- store.postgresql ----------------------------------------------------- */

static const char *const sslmodes[] = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"};

bool cs_config_sslmode_known(const char *sslmode)
{
	for (size_t i = 0; sslmode != NULL && i < sizeof(sslmodes) / sizeof(sslmodes[0]); i++)
		if (strcmp(sslmode, sslmodes[i]) == 0)
			return true;
	return false;
}

/* Whether a text libpq quotes in a parse error is safe to show: one
 * punctuation character ("=") or one of libpq's keywords ("dbname"). All
 * else (a value, a URI's part, a token it could not decode) may hold the
 * password, wherever it was written in the string. */
static int conninfo_quote_shown(const char *q, size_t n)
{
	if (n == 1 && strchr("=&?:/@[]'\\", q[0]) != NULL)
		return 1;
	PQconninfoOption *defs = PQconndefaults();
	int known = 0;
	for (const PQconninfoOption *o = defs; o != NULL && o->keyword != NULL && !known; o++)
		known = strlen(o->keyword) == n && memcmp(o->keyword, q, n) == 0 && strcmp(o->keyword, "password") != 0;
	PQconninfoFree(defs);
	return known;
}

void cs_config_conninfo_error(const char *conninfo, const char *err, char *out, size_t size)
{
	(void)conninfo; /* what it holds is never copied: only libpq's words are */
	size_t o = 0;
	if (size == 0)
		return;
	/* the first line; a quoted text is shown only when it cannot hold a secret */
	size_t n = strcspn(err, "\n");
	for (size_t i = 0; i < n && o + 1 < size;) {
		const char *end = err[i] == '"' ? memchr(err + i + 1, '"', n - i - 1) : NULL;
		if (end != NULL) {
			const char *q = err + i + 1;
			size_t qlen = (size_t)(end - q);
			int shown = conninfo_quote_shown(q, qlen);
			const char *put = shown ? err + i : "\"(not shown)\"";
			size_t len = shown ? qlen + 2 : strlen(put);
			for (size_t k = 0; k < len && o + 1 < size; k++)
				out[o++] = put[k];
			i += qlen + 2;
			continue;
		}
		out[o++] = err[i++];
	}
	out[o] = '\0';
	while (o > 0 && strchr(".: ", out[o - 1]) != NULL)
		out[--o] = '\0';
}

/* A libpq connection string (keyword/value or URI), parsed as libpq will:
 * a syntax error, or a password written in it, is refused. */
static void check_conninfo(loader *l, const config_setting_t *s, const char *path, const char *v)
{
	char *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(v, &err);
	if (opts == NULL) {
		if (err == NULL) /* out of memory */
			return;
		/* libpq may quote the string, or a token of it: never the password */
		char why[320];
		cs_config_conninfo_error(v, err, why, sizeof(why));
		SERR(l, s, path, "not a libpq connection string or URI: %s", why);
		PQfreemem(err);
		return;
	}
	for (const PQconninfoOption *o = opts; o->keyword != NULL; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val != NULL)
			SERR(l, s, path,
			     "holds a password: remove it and use password_file (a file only the account that "
			     "connects can read)");
	PQconninfoFree(opts);
}

/* A PostgreSQL role written as a plain identifier: [a-z_][a-z0-9_]{0,62}. */
static const char *check_pg_role(const char *v)
{
	static const char *const why = "must be a PostgreSQL role name of 1 to 63 characters of a-z 0-9 _, "
				       "not starting with a digit";
	size_t n = strlen(v);
	if (n == 0 || n > 63 || (v[0] >= '0' && v[0] <= '9') ||
	    strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789_") != n)
		return why;
	return NULL;
}

/* A password file: a regular file of the account that reads it (server.user
 * when set: the daemon connects as it; else the loader's), no group or
 * other permission bits. */
static void check_secret_owner(loader *l, const config_setting_t *s, const char *path, const char *file)
{
	struct stat st;
	uid_t owner = geteuid();
	const char *account = "the user loading this configuration";
	const struct passwd *pw;
	if (l->cfg->server.user != NULL && (pw = getpwnam(l->cfg->server.user)) != NULL) {
		owner = pw->pw_uid;
		account = "server.user";
	}
	if (stat(file, &st) != 0)
		SERR(l, s, path, "password file '%s' is not readable: %s", file, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		SERR(l, s, path, "password file '%s' is not a regular file", file);
	else if (st.st_uid != owner)
		SERR(l, s, path, "password file '%s' is owned by uid %ld, not by %s (uid %ld): chown %ld '%s'", file,
		     (long)st.st_uid, account, (long)owner, (long)owner, file);
	else if ((st.st_mode & 077) != 0)
		SERR(l, s, path, "password file '%s': group or others have access (mode %04o): chmod 600 '%s'", file,
		     (unsigned)(st.st_mode & 07777), file);
}

/* Validate a string-valued setting and store it (resolved if a path). */
static void apply_string(loader *l, const schema_entry *e, const config_setting_t *s, const char *v)
{
	const char *why = check_printable(v);
	if (why != NULL) {
		SERR(l, s, e->path, "%s", why);
		return;
	}
	char *value = NULL;
	if (wants_path(e->kind) || (e->kind == K_MODULE && strchr(v, '/') != NULL) ||
	    (e->kind == K_KEY_SOURCE && strncmp(v, "pkcs11:", 7) != 0))
		value = resolve_path(l, v);
	else
		value = strdup(v);
	if (value == NULL) {
		diag_push(l, "out of memory loading the configuration");
		return;
	}

	switch (e->kind) {
	case K_IDENT:
		if ((why = check_ident(v)) != NULL)
			SERR(l, s, e->path, "%s", why);
		break;
	case K_FILE:
		check_file(l, s, e->path, value);
		break;
	case K_PIN_FILE:
		if (!l->no_secrets && cs_secret_check_file(value, &why) != CS_OK)
			SERR(l, s, e->path, "PIN file '%s': %s", value, why);
		break;
	case K_SECRET_FILE:
		check_secret_owner(l, s, e->path, value);
		break;
	case K_STORE_BACKEND:
		if (strcmp(value, "sqlite") == 0)
			l->cfg->store.backend = CS_CONFIG_STORE_SQLITE;
		else if (strcmp(value, "postgresql") == 0)
			l->cfg->store.backend = CS_CONFIG_STORE_POSTGRESQL;
		else
			SERR(l, s, e->path, "must be \"sqlite\" or \"postgresql\"");
		free(value);
		return;
	case K_PG_CONNINFO:
		check_conninfo(l, s, e->path, value);
		break;
	case K_PG_SSLMODE:
		if (!cs_config_sslmode_known(value))
			SERR(l, s, e->path, "must be one of disable, allow, prefer, require, verify-ca, verify-full");
		break;
	case K_PG_ROLE:
		if ((why = check_pg_role(value)) != NULL)
			SERR(l, s, e->path, "%s", why);
		break;
	case K_OUT_FILE: {
		/* with server.user the store is that account's: credsignd checks
		 * it as that account (--check-config, start), not as the caller */
		if (strcmp(e->path, "store.path") == 0 && l->cfg->server.user != NULL)
			break;
		char *slash = strrchr(value, '/');
		*slash = '\0';
		if (access(value[0] ? value : "/", W_OK | X_OK) != 0)
			SERR(l, s, e->path, "directory '%s' is not writable: %s", value, strerror(errno));
		*slash = '/';
		break;
	}
	case K_MODULE:
		if (strchr(value, '/') != NULL)
			check_file(l, s, e->path, value);
		/* p11-kit refuses to load its proxy as a module (at start) */
		if (cs_token_module_is_proxy(value))
			SERR(l, s, e->path,
			     "'%s' is p11-kit's proxy module, which p11-kit does not load as a module: "
			     "give the registered module's name instead (p11-kit list-modules shows "
			     "them, e.g. module = \"softhsm2\")",
			     value);
		break;
	case K_KEY_SOURCE:
		if (strncmp(value, "pkcs11:", 7) == 0)
			check_uri(l, s, e->path, value, true);
		else if (!l->no_secrets)
			check_file(l, s, e->path, value);
		break;
	case K_TOKEN_URI:
		check_uri(l, s, e->path, value, false);
		break;
	case K_KEY_URI:
		check_uri(l, s, e->path, value, true);
		break;
	case K_LISTEN:
		check_listen(l, s, e->path, value);
		break;
	case K_URL:
		check_url(l, s, e->path, value);
		for (size_t n = strlen(value); n > 8 && value[n - 1] == '/'; n--)
			value[n - 1] = '\0';
		break;
	case K_LOG_LEVEL: {
		int lv = cs_log_level_parse(value);
		if (lv < 0)
			SERR(l, s, e->path, "must be one of debug, info, warn, error");
		else
			l->cfg->log.level = (cs_log_level)lv;
		free(value);
		return;
	}
	case K_LOG_FORMAT: {
		int f = cs_log_format_parse(value);
		if (f < 0)
			SERR(l, s, e->path, "must be logfmt or json");
		else
			l->cfg->log.format = (cs_log_format)f;
		free(value);
		return;
	}
	case K_TEXT:
		if ((why = cs_config_text_problem(value, (size_t)e->max)) != NULL)
			SERR(l, s, e->path, "%s (1 to %ld characters)", why, e->max);
		break;
	case K_DATE:
		if (!cs_config_date_valid(value))
			SERR(l, s, e->path, "must be a date YYYY-MM-DD that exists");
		break;
	case K_PROGRAM:
		if (!program_known(value))
			SERR(l, s, e->path, "must be \"FIPS 140-3\", \"FIPS 140-2\" or \"none\"");
		break;
	case K_CMVP_CERT:
		if ((why = check_cmvp_certificate(value)) != NULL)
			SERR(l, s, e->path, "%s", why);
		break;
	case K_VERSION: {
		char normal[8];
		if ((why = check_version(value, normal)) != NULL)
			SERR(l, s, e->path, "%s", why);
		else
			snprintf(value, strlen(value) + 1, "%s", normal); /* never longer */
		break;
	}
	default:
		break;
	}
	store_string(l, e, value);
}

static bool is_string_kind(kind k)
{
	return k != K_GROUP && k != K_INT && k != K_BOOL && k != K_GRANTS && k != K_OFFICERS &&
	       k != K_PROFILES;
}

static void free_list(char **list)
{
	for (size_t i = 0; list != NULL && list[i] != NULL; i++)
		free(list[i]);
	free(list);
}

/* ---- access.grants (access.h) ------------------------------------------- */

static void free_grants(cs_config *c)
{
	for (size_t i = 0; i < c->access.ngrants; i++) {
		cs_config_grant *g = &c->access.grants[i];
		free(g->identity);
		free_list(g->projects);
		free_list(g->environments);
		free_list(g->presets);
		free_list(g->profiles);
	}
	free(c->access.grants);
	c->access.grants = NULL;
	c->access.ngrants = 0;
}

/* A grant's identity: exact, or a pattern whose only '*' ends it after a
 * '/' and a non-empty prefix. NULL when fine, else the reason. */
static const char *check_grant_identity(const char *v)
{
	const char *why = check_printable(v);
	if (why != NULL)
		return why;
	size_t n = strlen(v);
	if (n > 255)
		return "too long (a client identity has at most 255 bytes)";
	const char *star = strchr(v, '*');
	if (star != NULL && (star != v + n - 1 || n < 3 || v[n - 2] != '/'))
		return "'*' is allowed only as a trailing \"/*\" after a prefix (a pattern such as "
		       "\"spiffe://example.org/ns/payments/*\")";
	return NULL;
}

/* A grant's scope list (projects, environments, presets): non-empty, each
 * element printable; "*" (every value) only alone. NULL after a message. */
static char **grant_list(loader *l, const config_setting_t *m, const char *path, const char *what)
{
	int type = config_setting_type(m);
	if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST) {
		SERR(l, m, path, "expected a list of strings [ \"...\" ], got %s", type_name(type));
		return NULL;
	}
	int n = config_setting_length(m);
	if (n == 0) {
		SERR(l, m, path, "must not be empty ([ \"*\" ] for every %s)", what);
		return NULL;
	}
	/* out of memory fails the load: a grant without its list would
	 * cover every value (a generator without presets uses them all) */
	char **list = calloc((size_t)n + 1, sizeof(char *));
	if (list == NULL) {
		diag_push(l, "out of memory loading access.grants");
		return NULL;
	}
	for (int i = 0; i < n; i++) {
		const char *v = config_setting_get_string(config_setting_get_elem(m, (unsigned)i));
		const char *why = v != NULL ? check_printable(v) : "expected a string";
		if (why == NULL && strlen(v) > 255)
			why = "too long";
		else if (why == NULL && strcmp(v, "*") == 0 && n > 1)
			why = "\"*\" covers every value and must be the only element";
		else if (why == NULL && strchr(v, '*') != NULL && strcmp(v, "*") != 0)
			why = "'*' only stands alone (every value); there are no patterns here";
		if (why != NULL) {
			SERR(l, m, path, "element %d: %s", i + 1, why);
			free_list(list);
			return NULL;
		}
		if ((list[i] = strdup(v)) == NULL) {
			diag_push(l, "out of memory loading access.grants");
			free_list(list);
			return NULL;
		}
	}
	return list;
}

static const char *role_name(cs_config_role r)
{
	return r == CS_ROLE_GENERATOR ? "generator"
	       : r == CS_ROLE_AUDITOR ? "auditor"
	       : r == CS_ROLE_SIGNER  ? "signer"
				      : "operator";
}

/* Why a role takes no projects, environments or presets. */
static const char *no_scope_why(cs_config_role r)
{
	return r == CS_ROLE_AUDITOR ? "an auditor's scope is its projects"
	       : r == CS_ROLE_SIGNER ? "a signer's scope is its profiles"
				     : "an operator's rights have no scope";
}

/* A grant's profiles: signer required, auditor optional, refused
 * otherwise. The names are checked against signing.profiles once both
 * are loaded (check_grant_profiles). */
static void apply_grant_profiles(loader *l, const config_setting_t *el, const char *base, cs_config_grant *g)
{
	char path[80];
	const config_setting_t *m = config_setting_get_member(el, "profiles");
	snprintf(path, sizeof(path), "%s.profiles", base);
	if (m != NULL && g->role != CS_ROLE_SIGNER && g->role != CS_ROLE_AUDITOR)
		SERR(l, m, path, "not allowed with role %s (profiles scope signer and auditor grants)",
		     role_name(g->role));
	else if (m != NULL)
		g->profiles = grant_list(l, m, path, "profile");
	else if (g->role == CS_ROLE_SIGNER)
		SERR(l, el, path, "required with role signer (the signing profiles it signs with; [ \"*\" ] "
		     "for every profile)");
}

/* One grant { identity; role; projects; environments; presets; profiles;
 * rate; burst; } at access.grants.[i] (libconfig's path syntax, counting
 * from 0). */
static void apply_grant(loader *l, const config_setting_t *el, int i, cs_config_grant *g)
{
	static const char *const members[] = {"identity", "role", "projects", "environments",
					      "presets",  "profiles", "rate", "burst"};
	char base[48], path[80];
	snprintf(base, sizeof(base), "access.grants.[%d]", i);
	if (config_setting_type(el) != CONFIG_TYPE_GROUP) {
		SERR(l, el, base, "expected a group { identity = \"...\"; role = \"...\"; ... }, got %s",
		     type_name(config_setting_type(el)));
		return;
	}
	for (int k = 0; k < config_setting_length(el); k++) {
		const config_setting_t *m = config_setting_get_elem(el, (unsigned)k);
		size_t j = 0;
		while (j < sizeof(members) / sizeof(members[0]) &&
		       strcmp(members[j], config_setting_name(m)) != 0)
			j++;
		snprintf(path, sizeof(path), "%s.%s", base, config_setting_name(m));
		if (j == sizeof(members) / sizeof(members[0]))
			SERR(l, m, path, "unknown setting");
	}
	const config_setting_t *m;
	const char *v, *why;
	snprintf(path, sizeof(path), "%s.identity", base);
	if ((m = config_setting_get_member(el, "identity")) == NULL)
		SERR(l, el, path, "required setting missing");
	else if ((v = config_setting_get_string(m)) == NULL)
		SERR(l, m, path, "expected a string, got %s", type_name(config_setting_type(m)));
	else if ((why = check_grant_identity(v)) != NULL)
		SERR(l, m, path, "%s", why);
	else if ((g->identity = strdup(v)) == NULL)
		diag_push(l, "out of memory loading access.grants");

	snprintf(path, sizeof(path), "%s.role", base);
	if ((m = config_setting_get_member(el, "role")) == NULL) {
		SERR(l, el, path,
		     "required setting missing (\"generator\", \"auditor\", \"operator\" or \"signer\")");
		return; /* the scope rules depend on the role */
	}
	v = config_setting_get_string(m);
	for (cs_config_role r = CS_ROLE_GENERATOR; v != NULL && r <= CS_ROLE_SIGNER; r++)
		if (strcmp(v, role_name(r)) == 0)
			g->role = r;
	if (g->role == 0) {
		SERR(l, m, path, "must be \"generator\", \"auditor\", \"operator\" or \"signer\"");
		return;
	}

	/* the scope each role takes */
	static const char *const what[] = {"project", "environment", "preset"};
	char ***slot[] = {&g->projects, &g->environments, &g->presets};
	for (size_t k = 0; k < 3; k++) {
		int allowed = g->role == CS_ROLE_GENERATOR || (g->role == CS_ROLE_AUDITOR && k == 0);
		int required = allowed && k < 2;
		char name[16];
		snprintf(name, sizeof(name), "%ss", what[k]);
		snprintf(path, sizeof(path), "%s.%s", base, name);
		m = config_setting_get_member(el, name);
		if (m != NULL && !allowed)
			SERR(l, m, path, "not allowed with role %s (%s)", role_name(g->role),
			     no_scope_why(g->role));
		else if (m != NULL)
			*slot[k] = grant_list(l, m, path, what[k]);
		else if (required)
			SERR(l, el, path, "required with role %s ([ \"*\" ] for every %s)",
			     role_name(g->role), what[k]);
	}
	apply_grant_profiles(l, el, base, g);

	const config_setting_t *rate = config_setting_get_member(el, "rate");
	const config_setting_t *burst = config_setting_get_member(el, "burst");
	snprintf(path, sizeof(path), "%s.rate", base);
	if (rate != NULL) {
		int t = config_setting_type(rate);
		double r = t == CONFIG_TYPE_FLOAT ? config_setting_get_float(rate)
			   : (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64)
				   ? (double)config_setting_get_int64(rate)
				   : -1.0;
		if (t != CONFIG_TYPE_FLOAT && t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
			SERR(l, rate, path, "expected a number (requests per second), got %s", type_name(t));
		else if (!(r >= CS_CONFIG_RATE_MIN && r <= CS_CONFIG_RATE_MAX))
			SERR(l, rate, path,
			     "%g is out of range: at least one request a day (%.8f), at most %d requests per second", r,
			     CS_CONFIG_RATE_MIN, CS_CONFIG_RATE_MAX);
		else
			g->rate = r;
	}
	snprintf(path, sizeof(path), "%s.burst", base);
	if (burst != NULL) {
		int t = config_setting_type(burst);
		long long b = config_setting_get_int64(burst);
		if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
			SERR(l, burst, path, "expected an integer, got %s", type_name(t));
		else if (b < 1 || b > CS_CONFIG_BURST_MAX)
			SERR(l, burst, path, "%lld is out of range 1..%d", b, CS_CONFIG_BURST_MAX);
		else if (rate == NULL)
			SERR(l, burst, path, "requires rate (the requests per second that refill it)");
		else
			g->burst = (int)b;
	} else if (g->rate > 0.0) {
		/* one second's worth of requests, at least one */
		g->burst = (int)g->rate;
		if (g->burst < g->rate || g->burst < 1)
			g->burst++;
	}
}

static void apply_grants(loader *l, const config_setting_t *s)
{
	int type = config_setting_type(s);
	free_grants(l->cfg);
	if (type != CONFIG_TYPE_LIST) {
		SERR(l, s, "access.grants",
		     "expected a list of groups ( { identity = \"...\"; role = \"...\"; ... }, ... ), got %s",
		     type_name(type));
		return;
	}
	int n = config_setting_length(s);
	if (n == 0)
		return;
	if ((l->cfg->access.grants = calloc((size_t)n, sizeof(cs_config_grant))) == NULL) {
		diag_push(l, "out of memory loading access.grants");
		return;
	}
	l->cfg->access.ngrants = (size_t)n;
	for (int i = 0; i < n; i++)
		apply_grant(l, config_setting_get_elem(s, (unsigned)i), i, &l->cfg->access.grants[i]);
}

/* ---- ceremony (ceremony.h) ----------------------------------------------- */

static void free_officers(cs_config *c)
{
	for (size_t i = 0; i < c->ceremony.nofficers; i++) {
		free(c->ceremony.officers[i].name);
		free(c->ceremony.officers[i].certificate);
	}
	free(c->ceremony.officers);
	c->ceremony.officers = NULL;
	c->ceremony.nofficers = 0;
}

/* One officer { name; certificate; } at ceremony.officers.[i]; the
 * certificate's issuer and fingerprint are checked by check_ceremony. */
static void apply_officer(loader *l, const config_setting_t *el, int i, cs_config_officer *o)
{
	char base[48], path[80];
	snprintf(base, sizeof(base), "ceremony.officers.[%d]", i);
	if (config_setting_type(el) != CONFIG_TYPE_GROUP) {
		SERR(l, el, base, "expected a group { name = \"...\"; certificate = \"...\"; }, got %s",
		     type_name(config_setting_type(el)));
		return;
	}
	for (int k = 0; k < config_setting_length(el); k++) {
		const config_setting_t *m = config_setting_get_elem(el, (unsigned)k);
		const char *name = config_setting_name(m);
		snprintf(path, sizeof(path), "%s.%s", base, name);
		if (strcmp(name, "name") != 0 && strcmp(name, "certificate") != 0)
			SERR(l, m, path, "unknown setting");
	}
	const config_setting_t *m;
	const char *v, *why;
	snprintf(path, sizeof(path), "%s.name", base);
	if ((m = config_setting_get_member(el, "name")) == NULL)
		SERR(l, el, path, "required setting missing");
	else if ((v = config_setting_get_string(m)) == NULL)
		SERR(l, m, path, "expected a string, got %s", type_name(config_setting_type(m)));
	else if ((why = check_ident(v)) != NULL)
		SERR(l, m, path, "%s", why);
	else if ((o->name = strdup(v)) == NULL)
		diag_push(l, "out of memory loading ceremony.officers");
	snprintf(path, sizeof(path), "%s.certificate", base);
	if ((m = config_setting_get_member(el, "certificate")) == NULL)
		SERR(l, el, path, "required setting missing (the officer's PEM certificate)");
	else if ((v = config_setting_get_string(m)) == NULL)
		SERR(l, m, path, "expected a string, got %s", type_name(config_setting_type(m)));
	else if ((why = check_printable(v)) != NULL)
		SERR(l, m, path, "%s", why);
	else if ((o->certificate = resolve_path(l, v)) != NULL)
		check_file(l, m, path, o->certificate);
	else
		diag_push(l, "out of memory loading ceremony.officers");
}

static void apply_officers(loader *l, const config_setting_t *s)
{
	int type = config_setting_type(s);
	free_officers(l->cfg);
	if (type != CONFIG_TYPE_LIST) {
		SERR(l, s, "ceremony.officers",
		     "expected a list of groups ( { name = \"...\"; certificate = \"...\"; }, ... ), got %s",
		     type_name(type));
		return;
	}
	int n = config_setting_length(s);
	if (n > CS_CONFIG_OFFICERS_MAX) {
		SERR(l, s, "ceremony.officers", "%d officers: at most %d", n, CS_CONFIG_OFFICERS_MAX);
		return;
	}
	if (n == 0)
		return; /* the quorum check reports it */
	if ((l->cfg->ceremony.officers = calloc((size_t)n, sizeof(cs_config_officer))) == NULL) {
		diag_push(l, "out of memory loading ceremony.officers");
		return;
	}
	l->cfg->ceremony.nofficers = (size_t)n;
	for (int i = 0; i < n; i++)
		apply_officer(l, config_setting_get_elem(s, (unsigned)i), i, &l->cfg->ceremony.officers[i]);
}

/* ---- signing.profiles (issue 15) ------------------------------------------ */

static void free_profiles(cs_config *c)
{
	for (size_t i = 0; i < c->signing.nprofiles; i++) {
		cs_config_profile *p = &c->signing.profiles[i];
		free(p->name);
		free(p->key);
		free(p->typ);
		free_list(p->payload_types);
		free(p->iss);
		free_list(p->aud);
	}
	free(c->signing.profiles);
	c->signing.profiles = NULL;
	c->signing.nprofiles = 0;
}

static const char *const profile_members[] = {
	"name", "key", "formats", "typ", "payload_types", "max_payload_bytes",
	"iss",  "aud", "lifetime_seconds", "store_payload",
};
#define PROFILE_PAYLOAD_MAX 16777216
#define PROFILE_PAYLOAD_DEFAULT 65536
#define PROFILE_LIFETIME_MAX 31536000
#define PROFILE_ISS_MAX 256

/* ^[a-z0-9][a-z0-9._-]{0,31}$ */
static bool profile_name_valid(const char *v)
{
	size_t n = strlen(v);
	if (n == 0 || n > CS_CONFIG_PROFILE_NAME_MAX || v[0] == '.' || v[0] == '_' || v[0] == '-')
		return false;
	return strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

/* A JWS typ: [A-Za-z0-9!#$&^_.+/-]{1,64} (a media type's characters, RFC
 * 6838), not one of the appliance's own: "credsign-..." in any case, with
 * or without the "application/" prefix RFC 7515 4.1.9 lets a typ omit
 * (so "application/credsign-cert+jwt" is "credsign-cert+jwt"): a
 * profile's JWS must never pass for a credential certificate. */
static const char *check_typ(const char *v)
{
	size_t n = strlen(v);
	if (n == 0 || n > CS_CONFIG_TYP_MAX ||
	    strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$&^_.+/-") != n)
		return "must be 1 to 64 characters of A-Z a-z 0-9 ! # $ & ^ _ . + / - (e.g. \"release+jwt\")";
	const char *sub = strncasecmp(v, "application/", 12) == 0 ? v + 12 : v;
	if (strncasecmp(sub, "credsign-", 9) == 0)
		return "the typ prefix \"credsign-\" (with or without \"application/\") is the appliance's own "
		       "(its certificates): a profile's JWS must not pass for one";
	return NULL;
}

/* A DSSE payloadType: 1..128 printable ASCII characters without space. */
static bool payload_type_valid(const char *v)
{
	size_t n = strlen(v);
	if (n == 0 || n > CS_CONFIG_PAYLOAD_TYPE_MAX)
		return false;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f)
			return false;
	return true;
}

/* A copy of v; NULL after a message when memory runs out (the load fails:
 * a loaded profile has every member it needs). */
static char *dup_setting(loader *l, const char *v)
{
	char *copy = strdup(v);
	if (copy == NULL)
		diag_push(l, "out of memory loading signing.profiles");
	return copy;
}

/* A member that must be a string: it, or NULL after a message. */
static const char *member_string(loader *l, const config_setting_t *m, const char *path)
{
	const char *v = config_setting_get_string(m);
	if (v == NULL)
		SERR(l, m, path, "expected a string, got %s", type_name(config_setting_type(m)));
	return v;
}

/* A member that must be a list of strings [ "...", ... ] of 1..max
 * elements, each passing check (NULL: fine, else why) and unique: the
 * NULL-terminated copy, or NULL after a message. */
static char **member_strings(loader *l, const config_setting_t *m, const char *path, int max,
			     const char *(*check)(const char *v))
{
	int type = config_setting_type(m);
	if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST) {
		SERR(l, m, path, "expected a list of strings [ \"...\" ], got %s", type_name(type));
		return NULL;
	}
	int n = config_setting_length(m);
	if (n < 1 || n > max) {
		SERR(l, m, path, n < 1 ? "must not be empty" : "%d elements: at most %d", n, max);
		return NULL;
	}
	char **list = calloc((size_t)n + 1, sizeof(char *));
	if (list == NULL) {
		diag_push(l, "out of memory loading the configuration");
		return NULL;
	}
	for (int i = 0; i < n; i++) {
		const char *v = config_setting_get_string(config_setting_get_elem(m, (unsigned)i));
		const char *why = v != NULL ? check(v) : "expected a string";
		for (int j = 0; why == NULL && j < i; j++)
			if (strcmp(list[j], v) == 0)
				why = "repeated (each at most once)";
		if (why != NULL) {
			SERR(l, m, path, "element %d ('%.128s'): %s", i + 1, v != NULL ? v : "?", why);
			free_list(list);
			return NULL;
		}
		if ((list[i] = strdup(v)) == NULL) {
			diag_push(l, "out of memory loading the configuration");
			free_list(list);
			return NULL;
		}
	}
	return list;
}

static const char *check_format_name(const char *v)
{
	return cs_sig_format_parse(v) != 0 ? NULL : "unknown format (jws, dsse or digest)";
}

static const char *check_payload_type(const char *v)
{
	return payload_type_valid(v) ? NULL : "must be 1 to 128 printable ASCII characters without space";
}

static const char *check_aud(const char *v)
{
	return cs_config_text_problem(v, CS_CONFIG_AUD_LEN_MAX);
}

/* An integer member within [lo, hi] into *out; false after a message. */
static bool member_int(loader *l, const config_setting_t *m, const char *path, long lo, long hi, int *out)
{
	int type = config_setting_type(m);
	if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64) {
		SERR(l, m, path, "expected an integer, got %s", type_name(type));
		return false;
	}
	long long v = config_setting_get_int64(m);
	if (v < lo || v > hi) {
		SERR(l, m, path, "%lld is out of range %ld..%ld", v, lo, hi);
		return false;
	}
	*out = (int)v;
	return true;
}

static void profile_name(loader *l, const config_setting_t *el, const char *base, size_t i)
{
	cs_config_profile *p = &l->cfg->signing.profiles[i];
	char path[80];
	const config_setting_t *m = config_setting_get_member(el, "name");
	const char *v;
	snprintf(path, sizeof(path), "%s.name", base);
	if (m == NULL) {
		SERR(l, el, path, "required setting missing");
		return;
	}
	if ((v = member_string(l, m, path)) == NULL)
		return;
	if (!profile_name_valid(v)) {
		SERR(l, m, path, "'%.64s': must be 1 to %d characters of a-z 0-9 . _ -, starting with a-z or 0-9",
		     v, CS_CONFIG_PROFILE_NAME_MAX);
		return;
	}
	for (size_t j = 0; j < i; j++)
		if (l->cfg->signing.profiles[j].name != NULL && strcmp(l->cfg->signing.profiles[j].name, v) == 0) {
			SERR(l, m, path, "'%s' is also the name of signing.profiles.[%zu]: names must be unique", v, j);
			return;
		}
	p->name = dup_setting(l, v);
}

static void profile_key(loader *l, const config_setting_t *el, const char *base, cs_config_profile *p)
{
	char path[80];
	const config_setting_t *m = config_setting_get_member(el, "key");
	const char *v, *why;
	snprintf(path, sizeof(path), "%s.key", base);
	if (m == NULL)
		SERR(l, el, path, "required setting missing (the pkcs11: URI of the profile's own ES256 key)");
	else if ((v = member_string(l, m, path)) == NULL)
		return;
	else if ((why = check_printable(v)) != NULL)
		SERR(l, m, path, "%s", why);
	else if ((p->key = dup_setting(l, v)) != NULL)
		check_uri(l, m, path, v, true);
}

/* formats, then typ and payload_types, which the formats decide. */
static void profile_formats(loader *l, const config_setting_t *el, const char *base, cs_config_profile *p)
{
	char path[80];
	const config_setting_t *m = config_setting_get_member(el, "formats");
	snprintf(path, sizeof(path), "%s.formats", base);
	if (m == NULL) {
		SERR(l, el, path, "required setting missing ([ \"jws\", \"dsse\", \"digest\" ] or a part of it)");
		return;
	}
	char **names = member_strings(l, m, path, 3, check_format_name);
	for (size_t i = 0; names != NULL && names[i] != NULL; i++)
		p->formats |= cs_sig_format_parse(names[i]);
	free_list(names);
	if (p->formats == 0)
		return; /* reported: typ and payload_types cannot be judged */

	const char *v, *why;
	m = config_setting_get_member(el, "typ");
	snprintf(path, sizeof(path), "%s.typ", base);
	if (m != NULL && !(p->formats & CS_SIG_FORMAT_JWS))
		SERR(l, m, path, "only with format jws (formats does not allow it)");
	else if (m == NULL && (p->formats & CS_SIG_FORMAT_JWS))
		SERR(l, el, path, "required with format jws (the JWS header's typ, e.g. \"release+jwt\")");
	else if (m != NULL && (v = member_string(l, m, path)) != NULL) {
		if ((why = check_typ(v)) != NULL)
			SERR(l, m, path, "%s", why);
		else
			p->typ = dup_setting(l, v);
	}

	m = config_setting_get_member(el, "payload_types");
	snprintf(path, sizeof(path), "%s.payload_types", base);
	if (m != NULL && !(p->formats & CS_SIG_FORMAT_DSSE))
		SERR(l, m, path, "only with format dsse (formats does not allow it)");
	else if (m == NULL && (p->formats & CS_SIG_FORMAT_DSSE))
		SERR(l, el, path,
		     "required with format dsse (the DSSE payloadTypes allowed, e.g. [ \"application/vnd.in-toto+json\" ])");
	else if (m != NULL)
		p->payload_types = member_strings(l, m, path, CS_CONFIG_PAYLOAD_TYPES_MAX, check_payload_type);
}

/* max_payload_bytes, iss, aud, lifetime_seconds, store_payload. */
static void profile_claims(loader *l, const config_setting_t *el, const char *base, cs_config_profile *p)
{
	char path[80];
	const config_setting_t *m;
	const char *v, *why;
	p->max_payload_bytes = PROFILE_PAYLOAD_DEFAULT;
	snprintf(path, sizeof(path), "%s.max_payload_bytes", base);
	if ((m = config_setting_get_member(el, "max_payload_bytes")) != NULL &&
	    !member_int(l, m, path, 1, PROFILE_PAYLOAD_MAX, &p->max_payload_bytes))
		p->max_payload_bytes = 0; /* reported: not compared with the request limit */
	snprintf(path, sizeof(path), "%s.lifetime_seconds", base);
	if ((m = config_setting_get_member(el, "lifetime_seconds")) != NULL)
		member_int(l, m, path, 0, PROFILE_LIFETIME_MAX, &p->lifetime_seconds);
	snprintf(path, sizeof(path), "%s.store_payload", base);
	if ((m = config_setting_get_member(el, "store_payload")) != NULL) {
		if (config_setting_type(m) != CONFIG_TYPE_BOOL)
			SERR(l, m, path, "expected a boolean (true/false), got %s", type_name(config_setting_type(m)));
		else
			p->store_payload = config_setting_get_bool(m) != 0;
	}
	snprintf(path, sizeof(path), "%s.iss", base);
	if ((m = config_setting_get_member(el, "iss")) != NULL && (v = member_string(l, m, path)) != NULL) {
		if ((why = cs_config_text_problem(v, PROFILE_ISS_MAX)) != NULL)
			SERR(l, m, path, "%s (1 to %d characters)", why, PROFILE_ISS_MAX);
		else
			p->iss = dup_setting(l, v);
	}
	snprintf(path, sizeof(path), "%s.aud", base);
	if ((m = config_setting_get_member(el, "aud")) != NULL)
		p->aud = member_strings(l, m, path, CS_CONFIG_AUD_MAX, check_aud);
}

/* One profile at signing.profiles.[i]; the checks across settings
 * (keys, sizes, the iss default) are check_signing's. */
static void apply_profile(loader *l, const config_setting_t *el, size_t i)
{
	cs_config_profile *p = &l->cfg->signing.profiles[i];
	char base[48], path[96];
	snprintf(base, sizeof(base), "signing.profiles.[%zu]", i);
	if (config_setting_type(el) != CONFIG_TYPE_GROUP) {
		SERR(l, el, base, "expected a group { name = \"...\"; key = \"pkcs11:...\"; formats = [ ... ]; ... }, got %s",
		     type_name(config_setting_type(el)));
		return;
	}
	for (int k = 0; k < config_setting_length(el); k++) {
		const config_setting_t *m = config_setting_get_elem(el, (unsigned)k);
		size_t j = 0;
		while (j < sizeof(profile_members) / sizeof(profile_members[0]) &&
		       strcmp(profile_members[j], config_setting_name(m)) != 0)
			j++;
		snprintf(path, sizeof(path), "%s.%s", base, config_setting_name(m));
		if (j == sizeof(profile_members) / sizeof(profile_members[0]))
			SERR(l, m, path, "unknown setting");
	}
	profile_name(l, el, base, i);
	profile_key(l, el, base, p);
	profile_formats(l, el, base, p);
	profile_claims(l, el, base, p);
}

static void apply_profiles(loader *l, const config_setting_t *s)
{
	int type = config_setting_type(s);
	free_profiles(l->cfg);
	if (type != CONFIG_TYPE_LIST) {
		SERR(l, s, "signing.profiles",
		     "expected a list of groups ( { name = \"...\"; key = \"pkcs11:...\"; ... }, ... ), got %s",
		     type_name(type));
		return;
	}
	int n = config_setting_length(s);
	if (n > CS_CONFIG_PROFILES_MAX) {
		SERR(l, s, "signing.profiles", "%d profiles: at most %d", n, CS_CONFIG_PROFILES_MAX);
		return;
	}
	if (n == 0)
		return; /* no profiles: every profile is unknown */
	if ((l->cfg->signing.profiles = calloc((size_t)n, sizeof(cs_config_profile))) == NULL) {
		diag_push(l, "out of memory loading signing.profiles");
		return;
	}
	l->cfg->signing.nprofiles = (size_t)n;
	for (int i = 0; i < n; i++)
		apply_profile(l, config_setting_get_elem(s, (unsigned)i), (size_t)i);
}

static void apply_setting(loader *l, const schema_entry *e, const config_setting_t *s)
{
	int type = config_setting_type(s);
	if (e->kind == K_INT) {
		if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64) {
			SERR(l, s, e->path, "expected an integer, got %s", type_name(type));
			return;
		}
		long long v = config_setting_get_int64(s);
		if (v < e->min || v > e->max) {
			SERR(l, s, e->path, "%lld is out of range %ld..%ld", v, e->min, e->max);
			return;
		}
		*(int *)((char *)l->cfg + e->offset) = (int)v;
	} else if (e->kind == K_BOOL) {
		if (type != CONFIG_TYPE_BOOL) {
			SERR(l, s, e->path, "expected a boolean (true/false), got %s", type_name(type));
			return;
		}
		*(bool *)((char *)l->cfg + e->offset) = config_setting_get_bool(s) != 0;
	} else if (e->kind == K_GRANTS) {
		apply_grants(l, s);
	} else if (e->kind == K_OFFICERS) {
		apply_officers(l, s);
	} else if (e->kind == K_PROFILES) {
		apply_profiles(l, s);
	} else if (is_string_kind(e->kind)) {
		if (type != CONFIG_TYPE_STRING) {
			SERR(l, s, e->path, "expected a string, got %s", type_name(type));
			return;
		}
		apply_string(l, e, s, config_setting_get_string(s));
	}
}

static void apply_default(loader *l, const schema_entry *e)
{
	if (e->kind == K_INT)
		*(int *)((char *)l->cfg + e->offset) = (int)e->def_int;
	else if (e->kind == K_BOOL)
		*(bool *)((char *)l->cfg + e->offset) = e->def_int != 0;
	else if (e->kind == K_LOG_LEVEL)
		l->cfg->log.level = (cs_log_level)cs_log_level_parse(e->def);
	else if (e->kind == K_LOG_FORMAT)
		l->cfg->log.format = (cs_log_format)cs_log_format_parse(e->def);
	else if (e->kind == K_STORE_BACKEND)
		l->cfg->store.backend = CS_CONFIG_STORE_SQLITE;
	else if (e->def != NULL)
		store_string(l, e, wants_path(e->kind) ? resolve_path(l, e->def) : strdup(e->def));
}

/* Settings of earlier versions that access.grants replaced: refused with
 * what to write instead. */
static const struct {
	const char *path, *role, *scope;
} retired[] = {
	{"audit.readers", "auditor", " projects = [ \"*\" ];"},
	{"metrics.readers", "operator", ""},
};

static bool retired_setting(loader *l, const config_setting_t *s, const char *path)
{
	for (size_t i = 0; i < sizeof(retired) / sizeof(retired[0]); i++) {
		if (strcmp(path, retired[i].path) != 0)
			continue;
		const config_setting_t *first = config_setting_get_elem(s, 0);
		const char *who = first != NULL ? config_setting_get_string(first) : NULL;
		SERR(l, s, path,
		     "replaced by access.grants: give each identity listed here a grant of role %s, "
		     "e.g. access = { grants = ( { identity = \"%.200s\"; role = \"%s\";%s } ); }; "
		     "(credsignd.conf(5), access)",
		     retired[i].role, who != NULL && check_printable(who) == NULL ? who : "...", retired[i].role,
		     retired[i].scope);
		return true;
	}
	return false;
}

/* Report every setting in the file that the schema does not know. */
static void check_unknown(loader *l, const config_setting_t *group, const char *prefix)
{
	int n = config_setting_length(group);
	for (int i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
		char path[256];
		snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] ? "." : "",
			 config_setting_name(s));
		const schema_entry *e = schema_find(path);
		if (strcmp(path, "presets") == 0 && config_setting_type(s) == CONFIG_TYPE_GROUP)
			continue; /* operator presets: validated by the preset loader */
		if (e == NULL) {
			if (!retired_setting(l, s, path))
				SERR(l, s, path, "unknown setting");
		} else if (e->kind == K_GROUP) {
			if (strcmp(path, "pkcs11.validation") == 0 &&
			    config_setting_type(s) == CONFIG_TYPE_STRING)
				/* the free text of earlier versions claimed what nobody checked */
				SERR(l, s, path,
				     "free text is no longer accepted; declare the validation as a group: "
				     "validation = { program = \"none\"; }; for a token without one, or "
				     "{ program = \"FIPS 140-3\"; certificate = \"NNNN\"; module = \"...\"; "
				     "level = N; hardware_version = \"M.m\"; firmware_version = \"M.m\"; } "
				     "(see credsignd.conf.example)");
			else if (config_setting_type(s) != CONFIG_TYPE_GROUP)
				SERR(l, s, path, "expected a group { ... }, got %s",
				     type_name(config_setting_type(s)));
			else
				check_unknown(l, s, path);
		}
	}
}

static void apply_schema(loader *l, config_t *lc)
{
	for (size_t i = 0; i < SCHEMA_LEN; i++) {
		const schema_entry *e = &schema[i];
		const config_setting_t *s = config_lookup(lc, e->path);
		if (e->kind == K_GROUP) {
			if (s == NULL && e->required)
				diag_add(l, l->file, 0, e->path, "required group missing");
			continue;
		}
		/* a group of the wrong type was reported by check_unknown */
		if (s != NULL) {
			apply_setting(l, e, s);
			continue;
		}
		apply_default(l, e);
		if (e->required) {
			char group[64];
			snprintf(group, sizeof(group), "%.*s", (int)(strchr(e->path, '.') - e->path),
				 e->path);
			const config_setting_t *g = config_lookup(lc, group);
			if (g != NULL && config_setting_type(g) == CONFIG_TYPE_GROUP)
				SERR(l, g, e->path, "required setting missing");
		}
	}
}

/* pkcs11.validation: a program needs its certificate, module, level and
 * the versions it was validated at; "none" takes nothing else. */
static void check_validation(loader *l, config_t *lc)
{
	static const char *const members[] = {"certificate", "module", "level", "hardware_version",
					      "firmware_version", "library_version"};
	const config_setting_t *g = config_lookup(lc, "pkcs11.validation");
	if (g == NULL || config_setting_type(g) != CONFIG_TYPE_GROUP)
		return; /* absent: program "none"; the wrong type was reported */
	const char *program = l->cfg->pkcs11.validation.program;
	if (config_setting_get_member(g, "program") == NULL) {
		SERR(l, g, "pkcs11.validation.program",
		     "required setting missing (\"FIPS 140-3\", \"FIPS 140-2\" or \"none\")");
		return;
	}
	if (program == NULL || !program_known(program))
		return; /* reported */
	int none = strcmp(program, "none") == 0;
	for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++) {
		const config_setting_t *m = config_setting_get_member(g, members[i]);
		char path[64];
		snprintf(path, sizeof(path), "pkcs11.validation.%s", members[i]);
		if (none && m != NULL)
			SERR(l, m, path,
			     "not allowed with program \"none\" (the token is not validated)");
		else if (!none && m == NULL && strcmp(members[i], "library_version") != 0)
			SERR(l, g, path, "required with program \"%s\"", program);
	}
}

/* A blank-padded field of a URI's structures: set when its first byte is
 * not 0 (p11-kit leaves unset fields zeroed). */
typedef struct {
	const char *name; /* the URI attribute */
	int part;         /* 0: CK_TOKEN_INFO, 1: CK_SLOT_INFO, 2: CK_INFO */
	size_t offset, size;
} uri_field;

static const uri_field uri_fields[] = {
	{"token", 0, offsetof(CK_TOKEN_INFO, label), sizeof(((CK_TOKEN_INFO *)0)->label)},
	{"manufacturer", 0, offsetof(CK_TOKEN_INFO, manufacturerID), sizeof(((CK_TOKEN_INFO *)0)->manufacturerID)},
	{"model", 0, offsetof(CK_TOKEN_INFO, model), sizeof(((CK_TOKEN_INFO *)0)->model)},
	{"serial", 0, offsetof(CK_TOKEN_INFO, serialNumber), sizeof(((CK_TOKEN_INFO *)0)->serialNumber)},
	{"slot-description", 1, offsetof(CK_SLOT_INFO, slotDescription),
	 sizeof(((CK_SLOT_INFO *)0)->slotDescription)},
	{"slot-manufacturer", 1, offsetof(CK_SLOT_INFO, manufacturerID), sizeof(((CK_SLOT_INFO *)0)->manufacturerID)},
	{"library-description", 2, offsetof(CK_INFO, libraryDescription),
	 sizeof(((CK_INFO *)0)->libraryDescription)},
	{"library-manufacturer", 2, offsetof(CK_INFO, manufacturerID), sizeof(((CK_INFO *)0)->manufacturerID)},
};

static const unsigned char *uri_part(P11KitUri *uri, int part)
{
	return part == 0   ? (const unsigned char *)p11_kit_uri_get_token_info(uri)
	       : part == 1 ? (const unsigned char *)p11_kit_uri_get_slot_info(uri)
			   : (const unsigned char *)p11_kit_uri_get_module_info(uri);
}

static int padded_len(const unsigned char *v, size_t size)
{
	while (size > 0 && (v[size - 1] == ' ' || v[size - 1] == '\0'))
		size--;
	return (int)size;
}

cs_err cs_config_key_token_conflict(const char *token_uri, const char *key_uri, char *why, size_t len)
{
	P11KitUri *t = p11_kit_uri_new(), *k = p11_kit_uri_new();
	cs_err r = CS_OK;
	if (len > 0)
		why[0] = '\0';
	/* URIs that do not parse are reported by their own checks */
	if (t == NULL || k == NULL || p11_kit_uri_parse(token_uri, P11_KIT_URI_FOR_ANY, t) != P11_KIT_URI_OK ||
	    p11_kit_uri_parse(key_uri, P11_KIT_URI_FOR_ANY, k) != P11_KIT_URI_OK)
		goto out;
	for (size_t i = 0; i < sizeof(uri_fields) / sizeof(uri_fields[0]) && r == CS_OK; i++) {
		const uri_field *f = &uri_fields[i];
		const unsigned char *tv = uri_part(t, f->part) + f->offset, *kv = uri_part(k, f->part) + f->offset;
		if (tv[0] == 0 || kv[0] == 0 || memcmp(tv, kv, f->size) == 0)
			continue;
		snprintf(why, len, "%s=%.*s, but pkcs11.token_uri selects %s=%.*s", f->name,
			 padded_len(kv, f->size), (const char *)kv, f->name, padded_len(tv, f->size),
			 (const char *)tv);
		r = CS_E_CONFIG;
	}
	CK_SLOT_ID ts = p11_kit_uri_get_slot_id(t), ks = p11_kit_uri_get_slot_id(k);
	if (r == CS_OK && ts != (CK_SLOT_ID)-1 && ks != (CK_SLOT_ID)-1 && ts != ks) {
		snprintf(why, len, "slot-id=%lu, but pkcs11.token_uri selects slot-id=%lu", (unsigned long)ks,
			 (unsigned long)ts);
		r = CS_E_CONFIG;
	}
out:
	p11_kit_uri_free(t);
	p11_kit_uri_free(k);
	return r;
}

/* The keys are looked up in the one token pkcs11.token_uri selects: a key
 * URI that names another token (token=, serial=, ...) is a mistake. */
static void check_key_token(loader *l, config_t *lc, const char *path, const char *key_uri)
{
	char why[400];
	const config_setting_t *s = config_lookup(lc, path);
	if (key_uri == NULL || strncmp(key_uri, "pkcs11:", 7) != 0 || s == NULL ||
	    l->cfg->pkcs11.token_uri == NULL ||
	    cs_config_key_token_conflict(l->cfg->pkcs11.token_uri, key_uri, why, sizeof(why)) == CS_OK)
		return;
	SERR(l, s, path, "%s: names %s; keys are looked up only in the token pkcs11.token_uri selects",
	     key_uri, why);
}

/* Two listeners on one port: the same port, and the same host or a
 * wildcard address that covers the other (0.0.0.0 every IPv4 address, ::
 * every address). Host names are compared as written: loading resolves
 * nothing. */
static bool listeners_clash(const char *a, const char *b)
{
	const char *ca = strrchr(a, ':'), *cb = strrchr(b, ':');
	if (ca == NULL || cb == NULL || atol(ca + 1) != atol(cb + 1))
		return false;
	char ha[256], hb[256];
	snprintf(ha, sizeof(ha), "%.*s", (int)(ca - a), a);
	snprintf(hb, sizeof(hb), "%.*s", (int)(cb - b), b);
	unsigned char bin_a[16], bin_b[16];
	int fa = 0, fb = 0; /* 4, 6, or 0: a name */
	for (int side = 0; side < 2; side++) {
		char *h = side == 0 ? ha : hb;
		unsigned char *bin = side == 0 ? bin_a : bin_b;
		int *f = side == 0 ? &fa : &fb;
		size_t n = strlen(h);
		if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
			memmove(h, h + 1, n - 2);
			h[n - 2] = '\0';
		}
		*f = inet_pton(AF_INET, h, bin) == 1 ? 4 : inet_pton(AF_INET6, h, bin) == 1 ? 6 : 0;
	}
	static const unsigned char zero[16] = {0};
	int any_a = fa != 0 && memcmp(bin_a, zero, fa == 4 ? 4 : 16) == 0;
	int any_b = fb != 0 && memcmp(bin_b, zero, fb == 4 ? 4 : 16) == 0;
	if ((any_a && fa == 6) || (any_b && fb == 6))
		return true; /* :: takes the port on every address */
	if ((any_a && fb == 4) || (any_b && fa == 4))
		return true;
	if (fa != 0 && fa == fb)
		return memcmp(bin_a, bin_b, fa == 4 ? 4 : 16) == 0;
	return fa == 0 && fb == 0 && strcasecmp(ha, hb) == 0;
}

/* Every PEM certificate in path (NULL when it cannot be read). */
static STACK_OF(X509) *read_certs(const char *path)
{
	BIO *b = BIO_new_file(path, "r");
	STACK_OF(X509) *sk = b != NULL ? sk_X509_new_null() : NULL;
	X509 *x;
	while (sk != NULL && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
		if (!sk_X509_push(sk, x))
			X509_free(x);
	BIO_free(b);
	ERR_clear_error(); /* the end of the file */
	return sk;
}

/* The one certificate of a file, or NULL after a message. */
static X509 *one_cert(loader *l, const config_setting_t *s, const char *path, const char *file, const char *what)
{
	if (access(file, R_OK) != 0)
		return NULL; /* reported */
	STACK_OF(X509) *sk = read_certs(file);
	X509 *x = NULL;
	int n = sk != NULL ? sk_X509_num(sk) : 0;
	if (n != 1)
		SERR(l, s, path, "'%s' must hold exactly one PEM certificate (%s), found %d", file, what, n);
	else
		x = X509_dup(sk_X509_value(sk, 0));
	sk_X509_pop_free(sk, X509_free);
	return x;
}

void cs_config_cert_fingerprint(struct x509_st *x, char out[CS_CONFIG_FPR_SIZE])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	out[0] = '\0';
	if (X509_digest(x, EVP_sha256(), md, &n) != 1 || n != 32)
		return;
	memcpy(out, "SHA256:", 7);
	for (unsigned i = 0; i < n; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

/* Whether x was issued (name and signature) by ca. */
static bool issued_by(X509 *ca, X509 *x)
{
	EVP_PKEY *pub = X509_get0_pubkey(ca);
	bool ok = X509_check_issued(ca, x) == X509_V_OK && pub != NULL && X509_verify(x, pub) == 1;
	ERR_clear_error();
	return ok;
}

static void dn_text(const X509_NAME *name, char *buf, size_t len)
{
	buf[0] = '\0';
	X509_NAME_oneline(name, buf, (int)len);
}

/* ceremony.officer_ca: one CA certificate that is not the TLS client CA. */
static X509 *check_officer_ca(loader *l, config_t *lc)
{
	cs_config *c = l->cfg;
	const config_setting_t *s = config_lookup(lc, "ceremony.officer_ca");
	if (s == NULL || c->ceremony.officer_ca == NULL)
		return NULL;
	X509 *ca = one_cert(l, s, "ceremony.officer_ca", c->ceremony.officer_ca, "the officers' CA");
	if (ca == NULL)
		return NULL;
	if (X509_check_ca(ca) == 0) {
		SERR(l, s, "ceremony.officer_ca", "'%s' is not a CA certificate (basicConstraints CA:TRUE)",
		     c->ceremony.officer_ca);
		X509_free(ca);
		return NULL;
	}
	STACK_OF(X509) *tls = c->tls.ca != NULL && access(c->tls.ca, R_OK) == 0 ? read_certs(c->tls.ca) : NULL;
	for (int i = 0; tls != NULL && i < sk_X509_num(tls); i++) {
		X509 *t = sk_X509_value(tls, i);
		if (X509_cmp(ca, t) == 0 || EVP_PKEY_eq(X509_get0_pubkey(ca), X509_get0_pubkey(t)) == 1) {
			SERR(l, s, "ceremony.officer_ca",
			     "'%s' is the TLS client CA (tls.ca '%s'): officers need a CA of their own, so "
			     "that no client certificate can approve a ceremony",
			     c->ceremony.officer_ca, c->tls.ca);
			break;
		}
	}
	sk_X509_pop_free(tls, X509_free);
	ERR_clear_error();
	return ca;
}

/* ceremony.officer_crl: a PEM CRL signed by the officer CA. */
static void check_officer_crl(loader *l, config_t *lc, X509 *ca)
{
	const char *file = l->cfg->ceremony.officer_crl;
	const config_setting_t *s = config_lookup(lc, "ceremony.officer_crl");
	if (s == NULL || file == NULL || access(file, R_OK) != 0)
		return;
	BIO *b = BIO_new_file(file, "r");
	X509_CRL *crl = b != NULL ? PEM_read_bio_X509_CRL(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	if (crl == NULL)
		SERR(l, s, "ceremony.officer_crl", "'%s' is not a PEM CRL", file);
	else if (ca != NULL && (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)) != 0 ||
				X509_CRL_verify(crl, X509_get0_pubkey(ca)) != 1))
		SERR(l, s, "ceremony.officer_crl", "'%s' is not issued by ceremony.officer_ca", file);
	X509_CRL_free(crl);
	ERR_clear_error();
}

/* "SHA256:hex" of the certificate's DER SubjectPublicKeyInfo ("" when it
 * cannot be encoded): officers are distinct by key too. */
void cs_config_spki_fingerprint(struct x509_st *x, char out[CS_CONFIG_FPR_SIZE])
{
	unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	out[0] = '\0';
	int len = i2d_PUBKEY(X509_get0_pubkey(x), &der);
	if (len > 0 && EVP_Digest(der, (size_t)len, md, &n, EVP_sha256(), NULL) == 1 && n == 32) {
		memcpy(out, "SHA256:", 7);
		for (unsigned i = 0; i < n; i++)
			snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
	}
	OPENSSL_free(der);
	ERR_clear_error();
}

/* Each officer: the certificate issued by the CA; names, fingerprints and
 * public keys unique (one key under two certificates would count twice). */
static void check_officers(loader *l, config_t *lc, X509 *ca)
{
	cs_config *c = l->cfg;
	const config_setting_t *list = config_lookup(lc, "ceremony.officers");
	char (*spki)[CS_CONFIG_FPR_SIZE] = c->ceremony.nofficers > 0 ? calloc(c->ceremony.nofficers, CS_CONFIG_FPR_SIZE)
								       : NULL;
	if (c->ceremony.nofficers > 0 && spki == NULL) {
		diag_push(l, "out of memory checking ceremony.officers");
		return;
	}
	for (size_t i = 0; list != NULL && i < c->ceremony.nofficers; i++) {
		cs_config_officer *o = &c->ceremony.officers[i];
		const config_setting_t *el = config_setting_get_elem(list, (unsigned)i);
		const config_setting_t *cs = el != NULL ? config_setting_get_member(el, "certificate") : NULL;
		const config_setting_t *ns = el != NULL ? config_setting_get_member(el, "name") : NULL;
		char path[80];
		snprintf(path, sizeof(path), "ceremony.officers.[%zu].name", i);
		for (size_t j = 0; o->name != NULL && ns != NULL && j < i; j++)
			if (c->ceremony.officers[j].name != NULL && strcmp(o->name, c->ceremony.officers[j].name) == 0) {
				SERR(l, ns, path, "'%s' is also the name of ceremony.officers.[%zu]: names must be unique",
				     o->name, j);
				break;
			}
		if (o->certificate == NULL || cs == NULL)
			continue;
		snprintf(path, sizeof(path), "ceremony.officers.[%zu].certificate", i);
		X509 *x = one_cert(l, cs, path, o->certificate, "the officer's");
		if (x == NULL)
			continue;
		cs_config_cert_fingerprint(x, o->fingerprint);
		if (ca != NULL && !issued_by(ca, x)) {
			char issuer[256];
			dn_text(X509_get_issuer_name(x), issuer, sizeof(issuer));
			SERR(l, cs, path, "'%s' is not issued by ceremony.officer_ca (its issuer: %s)", o->certificate,
			     issuer);
		}
		cs_config_spki_fingerprint(x, spki[i]);
		for (size_t j = 0; j < i; j++) {
			if (o->fingerprint[0] != '\0' && strcmp(o->fingerprint, c->ceremony.officers[j].fingerprint) == 0) {
				SERR(l, cs, path, "'%s' is the certificate of ceremony.officers.[%zu] too (%s): one "
				     "certificate per officer", o->certificate, j, o->fingerprint);
				break;
			}
			if (spki[i][0] != '\0' && strcmp(spki[i], spki[j]) == 0) {
				const char *other = c->ceremony.officers[j].name;
				SERR(l, cs, "ceremony.officers",
				     "officer '%s' (%s) has the public key of officer '%s' (ceremony.officers.[%zu]; key %s): "
				     "one key per officer, or one approval would count twice",
				     o->name != NULL ? o->name : "?", o->certificate, other != NULL ? other : "?", j, spki[i]);
				break;
			}
		}
		X509_free(x);
	}
	free(spki);
}

/* The quorums: dual control needs two officers, and the officers listed
 * must be able to reach each quorum. */
static void check_quorums(loader *l, config_t *lc, const config_setting_t *g)
{
	cs_config *c = l->cfg;
	const config_setting_t *q = config_lookup(lc, "ceremony.quorum");
	const config_setting_t *rq = config_lookup(lc, "ceremony.revoke_quorum");
	const config_setting_t *list = config_lookup(lc, "ceremony.officers");
	int n = (int)c->ceremony.nofficers;
	/* officers reported wrong (or none given): their count means nothing */
	bool counted = list != NULL && config_setting_type(list) == CONFIG_TYPE_LIST;
	for (size_t i = 0; counted && i < c->ceremony.nofficers; i++)
		counted = c->ceremony.officers[i].name != NULL && c->ceremony.officers[i].certificate != NULL;
	if (q != NULL && c->ceremony.quorum == 1)
		SERR(l, q, "ceremony.quorum",
		     "%d is below 2: activate, retire, compromise, destroy and purge need at least two "
		     "officers (dual control)",
		     c->ceremony.quorum);
	else if (counted && c->ceremony.quorum > n)
		SERR(l, q != NULL ? q : g, "ceremony.quorum",
		     "%d officers are needed but ceremony.officers lists %d: no ceremony could complete",
		     c->ceremony.quorum, n);
	if (counted && n > 0 && c->ceremony.revoke_quorum > n)
		SERR(l, rq != NULL ? rq : g, "ceremony.revoke_quorum",
		     "%d officers are needed but ceremony.officers lists %d", c->ceremony.revoke_quorum, n);
}

static void check_ceremony(loader *l, config_t *lc)
{
	const config_setting_t *g = config_lookup(lc, "ceremony");
	if (g == NULL || config_setting_type(g) != CONFIG_TYPE_GROUP)
		return; /* absent: no ceremonies; the wrong type was reported */
	l->cfg->ceremony.present = true;
	X509 *ca = check_officer_ca(l, lc);
	check_officer_crl(l, lc, ca);
	check_officers(l, lc, ca);
	check_quorums(l, lc, g);
	X509_free(ca);
}

/* The member of signing.profiles.[i] (or the element itself when member
 * is NULL or absent): where a message about it points. */
static const config_setting_t *profile_setting(config_t *lc, size_t i, const char *member)
{
	const config_setting_t *list = config_lookup(lc, "signing.profiles");
	const config_setting_t *el = list != NULL ? config_setting_get_elem(list, (unsigned)i) : NULL;
	const config_setting_t *m = el != NULL && member != NULL ? config_setting_get_member(el, member) : NULL;
	return m != NULL ? m : el != NULL ? el : list;
}

/* A profile's key: in the token pkcs11.token_uri selects, and its own --
 * not the certificate-signing key nor another profile's (compared as
 * written; credsignd compares the keys themselves at start). */
static void check_profile_key(loader *l, config_t *lc, size_t i)
{
	const cs_config *c = l->cfg;
	const cs_config_profile *p = &c->signing.profiles[i];
	const config_setting_t *s = profile_setting(lc, i, "key");
	char path[64], why[400];
	snprintf(path, sizeof(path), "signing.profiles.[%zu].key", i);
	if (p->key == NULL || s == NULL)
		return;
	if (c->pkcs11.signing_key != NULL && strcmp(p->key, c->pkcs11.signing_key) == 0) {
		SERR(l, s, path,
		     "%s is pkcs11.signing_key, the certificate-signing key: a profile needs a key of its own",
		     p->key);
		return;
	}
	for (size_t j = 0; j < i; j++)
		if (c->signing.profiles[j].key != NULL && strcmp(p->key, c->signing.profiles[j].key) == 0) {
			SERR(l, s, path, "%s is also the key of signing.profiles.[%zu]: each profile needs a key of its own",
			     p->key, j);
			return;
		}
	if (c->pkcs11.token_uri != NULL && strncmp(p->key, "pkcs11:", 7) == 0 &&
	    cs_config_key_token_conflict(c->pkcs11.token_uri, p->key, why, sizeof(why)) != CS_OK)
		SERR(l, s, path, "%s: names %s; keys are looked up only in the token pkcs11.token_uri selects",
		     p->key, why);
}

/* signing: each profile's key, whether its largest payload fits a request
 * (base64 and the JSON around it), and iss defaulting to the public URL. */
static void check_signing(loader *l, config_t *lc)
{
	cs_config *c = l->cfg;
	long long limit = c->signing.max_request_bytes;
	for (size_t i = 0; i < c->signing.nprofiles; i++) {
		cs_config_profile *p = &c->signing.profiles[i];
		check_profile_key(l, lc, i);
		long long n = p->max_payload_bytes, need = 4 * ((n + 2) / 3) + 4096;
		/* 0: the profile or a limit was reported wrong already */
		if (n > 0 && limit > 0 && need > limit) {
			char path[64];
			snprintf(path, sizeof(path), "signing.profiles.[%zu].max_payload_bytes", i);
			SERR(l, profile_setting(lc, i, "max_payload_bytes"), path,
			     "%lld bytes do not fit signing.max_request_bytes (%lld): a payload this large takes "
			     "%lld bytes of request (base64 and 4096 for the rest); raise "
			     "signing.max_request_bytes or lower this",
			     n, limit, need);
		}
		if (p->iss == NULL && c->server.public_base_url != NULL &&
		    (p->iss = strdup(c->server.public_base_url)) == NULL)
			diag_push(l, "out of memory loading signing.profiles");
	}
}

/* Grants' profiles: each a name in signing.profiles, or "*". */
static void check_grant_profiles(loader *l, config_t *lc)
{
	const cs_config *c = l->cfg;
	const config_setting_t *list = config_lookup(lc, "access.grants");
	for (size_t i = 0; list != NULL && i < c->access.ngrants; i++) {
		char *const *names = c->access.grants[i].profiles;
		const config_setting_t *el = config_setting_get_elem(list, (unsigned)i);
		const config_setting_t *m = el != NULL ? config_setting_get_member(el, "profiles") : NULL;
		char path[64];
		snprintf(path, sizeof(path), "access.grants.[%zu].profiles", i);
		for (size_t k = 0; m != NULL && names != NULL && names[k] != NULL; k++) {
			if (strcmp(names[k], "*") == 0 || cs_config_profile_find(c, names[k]) != NULL)
				continue;
			if (c->signing.nprofiles == 0)
				SERR(l, m, path, "element %zu: unknown profile '%.64s' (signing.profiles defines none)", k + 1,
				     names[k]);
			else
				SERR(l, m, path, "element %zu: unknown profile '%.64s' (not in signing.profiles)", k + 1,
				     names[k]);
		}
	}
}

/* Rules that involve more than one setting. */
bool cs_config_fips_tls(const cs_config *cfg)
{
	return cfg->crypto.openssl_fips || (cfg->crypto.profile != NULL && strcmp(cfg->crypto.profile, "fips") == 0);
}

bool cs_config_tls_group_known(const char *name)
{
	static const char *const known[] = {"X25519",    "X448",      "P-256",     "P-384",     "P-521",
					    "secp256r1", "prime256v1", "secp384r1", "secp521r1", "ffdhe2048",
					    "ffdhe3072", "ffdhe4096", "ffdhe6144", "ffdhe8192"};
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcasecmp(name, known[i]) == 0)
			return true;
	return false;
}

/* tls.groups: 1..CS_TLS_GROUPS_MAX known group names separated by ':',
 * none twice; X25519 and X448 not with crypto.openssl_fips (the FIPS
 * provider has neither). */
static void check_tls_groups(loader *l, config_t *lc)
{
	const char *v = l->cfg->tls.groups;
	const config_setting_t *s = config_lookup(lc, "tls.groups");
	if (v == NULL || s == NULL)
		return;
	char names[CS_TLS_GROUPS_MAX][32];
	size_t n = 0;
	const char *p = v;
	for (;;) {
		const char *end = strchr(p, ':');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		char name[32];
		if (len == 0 || len >= sizeof(name)) {
			SERR(l, s, "tls.groups", "'%s': a list of group names separated by ':' (e.g. \"%s\")", v,
			     CS_TLS_GROUPS_DEFAULT);
			return;
		}
		memcpy(name, p, len);
		name[len] = '\0';
		if (!cs_config_tls_group_known(name)) {
			SERR(l, s, "tls.groups",
			     "unknown group '%s' (known: X25519, X448, P-256, P-384, P-521, ffdhe2048, ffdhe3072, "
			     "ffdhe4096, ffdhe6144, ffdhe8192)",
			     name);
			return;
		}
		if (cs_config_fips_tls(l->cfg) && (strcasecmp(name, "X25519") == 0 || strcasecmp(name, "X448") == 0)) {
			SERR(l, s, "tls.groups", "%s is not FIPS-approved (crypto.%s); use %s", name,
			     l->cfg->crypto.openssl_fips ? "openssl_fips: OpenSSL's FIPS provider has no X25519 or X448"
							 : "profile \"fips\"",
			     CS_TLS_GROUPS_FIPS);
			return;
		}
		for (size_t i = 0; i < n; i++)
			if (strcasecmp(names[i], name) == 0) {
				SERR(l, s, "tls.groups", "group '%s' is listed twice", name);
				return;
			}
		if (n == CS_TLS_GROUPS_MAX) {
			SERR(l, s, "tls.groups", "at most %d groups", CS_TLS_GROUPS_MAX);
			return;
		}
		memcpy(names[n++], name, len + 1);
		if (end == NULL)
			break;
		p = end + 1;
	}
}

/* server.user and server.group: accounts of this machine (the network
 * process switches to them, confine.h); a group only with a user. */
static void check_accounts(loader *l, config_t *lc)
{
	const cs_config *c = l->cfg;
	const config_setting_t *s;
	if (c->server.user != NULL && (s = config_lookup(lc, "server.user")) != NULL) {
		errno = 0;
		if (strlen(c->server.user) > CS_CONFIG_ACCOUNT_MAX)
			SERR(l, s, "server.user", "longer than %d characters", CS_CONFIG_ACCOUNT_MAX);
		else if (getpwnam(c->server.user) == NULL)
			SERR(l, s, "server.user", "no such user '%.64s'%s%s", c->server.user, errno != 0 ? ": " : "",
			     errno != 0 ? strerror(errno) : "");
	}
	if (c->server.group == NULL || (s = config_lookup(lc, "server.group")) == NULL)
		return;
	if (c->server.user == NULL) {
		SERR(l, s, "server.group", "only with server.user (the group the user runs in)");
		return;
	}
	errno = 0;
	const struct group *gr = NULL;
	if (strlen(c->server.group) > CS_CONFIG_ACCOUNT_MAX)
		SERR(l, s, "server.group", "longer than %d characters", CS_CONFIG_ACCOUNT_MAX);
	else if ((gr = getgrnam(c->server.group)) == NULL)
		SERR(l, s, "server.group", "no such group '%.64s'%s%s", c->server.group, errno != 0 ? ": " : "",
		     errno != 0 ? strerror(errno) : "");
	else if (gr->gr_gid == 0)
		SERR(l, s, "server.group", "group '%.64s' is root's (gid 0): name an unprivileged group",
		     c->server.group);
}

/* store.backend against the settings of each backend: store.path only
 * with sqlite (its default dropped with postgresql), store.postgresql only
 * with postgresql, which needs its connection. */
static void check_store(loader *l, config_t *lc)
{
	cs_config *c = l->cfg;
	const config_setting_t *path = config_lookup(lc, "store.path");
	const config_setting_t *pg = config_lookup(lc, "store.postgresql");
	if (c->store.backend != CS_CONFIG_STORE_POSTGRESQL) {
		if (pg != NULL)
			SERR(l, pg, "store.postgresql",
			     "only with store.backend = \"postgresql\" (the store is the SQLite file store.path)");
		return;
	}
	if (path != NULL)
		SERR(l, path, "store.path",
		     "only with store.backend = \"sqlite\": a PostgreSQL store is reached by "
		     "store.postgresql.connection");
	free(c->store.path);
	c->store.path = NULL;
	/* a server certificate checked against a CA: the CA is named, never
	 * libpq's default ~/.postgresql/root.crt, which depends on the account
	 * that connects (the network process's, not the one running checks) */
	const char *mode = c->store.postgresql.sslmode;
	if (pg != NULL && config_setting_type(pg) == CONFIG_TYPE_GROUP && c->store.postgresql.ca_file == NULL && mode != NULL &&
	    (strcmp(mode, "verify-full") == 0 || strcmp(mode, "verify-ca") == 0))
		SERR(l, pg, "store.postgresql.ca_file",
		     "required with sslmode %s: the CA that issued the PostgreSQL server's certificate", mode);
	if (c->store.postgresql.connection != NULL)
		return;
	if (pg != NULL && config_setting_type(pg) == CONFIG_TYPE_GROUP)
		SERR(l, pg, "store.postgresql.connection", "required setting missing with store.backend = \"postgresql\"");
	else if (pg == NULL)
		SERR(l, config_lookup(lc, "store.backend"), "store.postgresql",
		     "required group missing with store.backend = \"postgresql\" (at least "
		     "postgresql = { connection = \"host=... dbname=...\"; };)");
}

/* PCI DSS v4.0.1 8.3.9 allows at most 90 days between changes of a
 * password-only account's password. */
static void check_inventory(loader *l, config_t *lc)
{
	const config_setting_t *s = config_lookup(lc, "inventory.pci_password_change_days");
	int days = l->cfg->inventory.pci_password_change_days;
	if (s != NULL && days > 90)
		SERR(l, s, "inventory.pci_password_change_days",
		     "%d days is longer than the 90-day maximum of PCI DSS v4.0.1 8.3.9 (password-only "
		     "accounts); 0 turns the rule off",
		     days);
}

static void check_cross(loader *l, config_t *lc)
{
	cs_config *c = l->cfg;
	const config_setting_t *s;
	if (c->tls.crl_check && c->tls.crl == NULL && (s = config_lookup(lc, "tls.crl_check")) != NULL)
		SERR(l, s, "tls.crl_check", "requires tls.crl");
	/* no PIN source is fine for a token that needs no login: the token's
	 * CKF_LOGIN_REQUIRED decides at start */
	if (c->pkcs11.init_args != NULL && c->pkcs11.module != NULL &&
	    strchr(c->pkcs11.module, '/') == NULL && (s = config_lookup(lc, "pkcs11.init_args")) != NULL)
		SERR(l, s, "pkcs11.init_args",
		     "only for a module given by path; the p11-kit module '%s' takes its arguments "
		     "from x-init-reserved in its p11-kit configuration",
		     c->pkcs11.module);
	check_key_token(l, lc, "pkcs11.signing_key", c->pkcs11.signing_key);
	check_key_token(l, lc, "tls.key", c->tls.key);
	if (c->server.listen != NULL && c->server.health_listen != NULL &&
	    listeners_clash(c->server.listen, c->server.health_listen) &&
	    (s = config_lookup(lc, "server.health_listen")) != NULL)
		SERR(l, s, "server.health_listen",
		     "%s takes the port of server.listen (%s): the probes need a port of their own",
		     c->server.health_listen, c->server.listen);
	check_validation(l, lc);
	if (c->crypto.profile != NULL && strcmp(c->crypto.profile, "default") != 0 &&
	    strcmp(c->crypto.profile, "fips") != 0 && (s = config_lookup(lc, "crypto.profile")) != NULL)
		SERR(l, s, "crypto.profile", "'%s': must be \"default\" or \"fips\"", c->crypto.profile);
	check_tls_groups(l, lc);
	check_accounts(l, lc);
	check_store(l, lc);
	check_ceremony(l, lc);
	check_signing(l, lc);
	check_grant_profiles(l, lc);
	check_inventory(l, lc);
}

static char *dir_of(const char *abs)
{
	char *d = strdup(abs);
	if (d == NULL)
		return NULL;
	char *slash = strrchr(d, '/');
	if (slash == d)
		slash[1] = '\0';
	else if (slash != NULL)
		*slash = '\0';
	return d;
}

static void diag_plain(loader *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void diag_plain(loader *l, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	diag_push(l, msg);
}

static cs_err load(const char *path, cs_config **out, cs_config_diag *diag, bool no_secrets)
{
	config_t lc;
	loader l = {0};
	char abs[PATH_MAX];

	*out = NULL;
	memset(diag, 0, sizeof(*diag));
	l.diag = diag;
	l.no_secrets = no_secrets;
	l.file = path;
	if (realpath(path, abs) == NULL) {
		diag_plain(&l, "%s: cannot read configuration: %s", path, strerror(errno));
		return CS_E_CONFIG;
	}
	if ((l.cfg = calloc(1, sizeof(cs_config))) == NULL || (l.dir = dir_of(abs)) == NULL) {
		free(l.cfg);
		return CS_E_NOMEM;
	}
	l.abs = abs;
	l.cfg->file = strdup(abs);
	l.cfg->file_given = strdup(path);
	if (l.cfg->file == NULL || l.cfg->file_given == NULL)
		diag_push(&l, "out of memory loading the configuration");
	config_init(&lc);
	config_set_include_dir(&lc, l.dir);
	if (config_read_file(&lc, abs) != CONFIG_TRUE) {
		if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
			diag_plain(&l, "%s: cannot read configuration: %s", path, strerror(errno));
		else {
			/* libconfig's text is "syntax error" itself, or says what
			 * else failed (an @include) */
			const char *ef = config_error_file(&lc), *text = config_error_text(&lc);
			int plain = text == NULL || strncmp(text, "syntax error", 12) == 0 || strstr(text, "include") != NULL;
			diag_plain(&l, "%s:%d: %s%s", ef != NULL && strcmp(ef, abs) != 0 ? ef : path,
				   config_error_line(&lc), plain ? "" : "syntax error: ", text != NULL ? text : "syntax error");
		}
	} else {
		check_unknown(&l, config_root_setting(&lc), "");
		apply_schema(&l, &lc);
		check_cross(&l, &lc);
	}
	config_destroy(&lc);
	free(l.dir);
	if (l.failed) {
		cs_config_free(l.cfg);
		return CS_E_CONFIG;
	}
	*out = l.cfg;
	return CS_OK;
}

cs_err cs_config_load(const char *path, cs_config **out, cs_config_diag *diag)
{
	return load(path, out, diag, false);
}

cs_err cs_config_reload(const char *path, cs_config **out, cs_config_diag *diag)
{
	return load(path, out, diag, true);
}

void cs_config_free(cs_config *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < SCHEMA_LEN; i++)
		if (is_string_kind(schema[i].kind) && schema[i].kind != K_GROUP &&
		    schema[i].kind != K_LOG_LEVEL && schema[i].kind != K_LOG_FORMAT &&
		    schema[i].kind != K_STORE_BACKEND)
			free(*(char **)((char *)c + schema[i].offset));
	free_grants(c);
	free_officers(c);
	free_profiles(c);
	free(c->file);
	free(c->file_given);
	free(c);
}

void cs_config_diag_free(cs_config_diag *diag)
{
	for (size_t i = 0; i < diag->count; i++)
		free(diag->messages[i]);
	free(diag->messages);
	memset(diag, 0, sizeof(*diag));
}

void cs_config_where(const cs_config *cfg, const char *path, char *buf, size_t len)
{
	config_t lc;
	char *dir = dir_of(cfg->file);
	const config_setting_t *s = NULL;
	config_init(&lc);
	if (dir != NULL)
		config_set_include_dir(&lc, dir);
	if (dir != NULL && config_read_file(&lc, cfg->file) == CONFIG_TRUE)
		s = config_lookup(&lc, path);
	/* the main file as the operator named it; an @include'd one as read */
	const char *shown = cfg->file_given != NULL ? cfg->file_given : cfg->file;
	const char *file = s != NULL ? config_setting_source_file(s) : NULL;
	if (file == NULL || strcmp(file, cfg->file) == 0)
		file = shown;
	if (s != NULL && config_setting_source_line(s) > 0)
		snprintf(buf, len, "%s:%u", file, (unsigned)config_setting_source_line(s));
	else
		snprintf(buf, len, "%s", shown);
	config_destroy(&lc);
	free(dir);
}

const cs_config_profile *cs_config_profile_find(const cs_config *cfg, const char *name)
{
	for (size_t i = 0; cfg != NULL && name != NULL && i < cfg->signing.nprofiles; i++)
		if (cfg->signing.profiles[i].name != NULL && strcmp(cfg->signing.profiles[i].name, name) == 0)
			return &cfg->signing.profiles[i];
	return NULL;
}

static const struct {
	unsigned bit;
	const char *name;
} sig_formats[] = {
	{CS_SIG_FORMAT_JWS, "jws"},
	{CS_SIG_FORMAT_DSSE, "dsse"},
	{CS_SIG_FORMAT_DIGEST, "digest"},
};

const char *cs_sig_format_name(unsigned one_format)
{
	for (size_t i = 0; i < sizeof(sig_formats) / sizeof(sig_formats[0]); i++)
		if (sig_formats[i].bit == one_format)
			return sig_formats[i].name;
	return "?";
}

unsigned cs_sig_format_parse(const char *name)
{
	for (size_t i = 0; name != NULL && i < sizeof(sig_formats) / sizeof(sig_formats[0]); i++)
		if (strcmp(sig_formats[i].name, name) == 0)
			return sig_formats[i].bit;
	return 0;
}
