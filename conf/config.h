/*
 * config: credsignd.conf (libconfig syntax) loaded into one typed struct.
 *
 * cs_config_load() parses the file, checks every setting against one schema
 * table (config.c) and fills defaults. It reports every problem, not only the
 * first, each as
 *
 *     FILE:LINE: setting 'group.name': reason
 *
 * (unknown settings, wrong types, out-of-range values, unreadable files,
 * over-permissive PIN files, bad pkcs11: URIs and URLs). On any error no
 * config is returned. Relative paths in the file are resolved against the
 * file's directory; @include is resolved the same way.
 *
 * Ownership: the returned cs_config owns all its strings; free it with
 * cs_config_free(). The diagnostics are owned by the cs_config_diag and
 * freed with cs_config_diag_free(). Not thread-safe while loading; a loaded
 * config is read-only and may be shared.
 */
#ifndef CS_CONFIG_H
#define CS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cs_error.h"
#include "cs_log.h"

/* access.grants: one grant of a role to an identity, within a scope
 * (access.h decides with them). Lists are NULL-terminated; "*" alone in a
 * list covers every value. */
typedef enum {
	CS_ROLE_GENERATOR = 1,
	CS_ROLE_AUDITOR,
	CS_ROLE_OPERATOR,
	CS_ROLE_SIGNER /* signs with its profiles (issue 15) */
} cs_config_role;
typedef struct {
	char *identity; /* exact, or a pattern ending in slash-asterisk (a prefix) */
	cs_config_role role;
	char **projects;     /* generator, auditor: required; NULL for signer and operator */
	char **environments; /* generator: required; NULL otherwise */
	char **presets;      /* generator: optional, NULL = any preset */
	/* signing profiles (names in signing.profiles, or "*"): signer:
	 * required (the profiles it signs with); auditor: optional (whose
	 * signature records it reads; NULL: none); NULL otherwise */
	char **profiles;
	double rate;         /* requests per second; 0: no limit */
	int burst;           /* token bucket size; 0 without rate */
} cs_config_grant;
#define CS_CONFIG_RATE_MAX 100000
/* the smallest rate: one request a day (a wait must fit Retry-After) */
#define CS_CONFIG_RATE_MIN (1.0 / 86400.0)
#define CS_CONFIG_BURST_MAX 100000

/* ceremony.officers: one officer allowed to approve ceremonies (ceremony.h). */
/* A certificate's fingerprint as officers are named by it: "SHA256:" and
 * the lower-case hex of the SHA-256 of its DER ("" when it cannot be
 * computed). */
#define CS_CONFIG_FPR_SIZE 72
struct x509_st;
void cs_config_cert_fingerprint(struct x509_st *x, char out[CS_CONFIG_FPR_SIZE]);
/* The same of the certificate's DER SubjectPublicKeyInfo: officers are
 * distinct by key too. */
void cs_config_spki_fingerprint(struct x509_st *x, char out[CS_CONFIG_FPR_SIZE]);

typedef struct {
	char *name;        /* unique; 1..CS_CONFIG_OFFICER_NAME_MAX printable ASCII */
	char *certificate; /* absolute path of the officer's PEM certificate */
	char fingerprint[CS_CONFIG_FPR_SIZE]; /* "SHA256:" + hex of its DER, unique (computed at load) */
} cs_config_officer;
#define CS_CONFIG_OFFICER_NAME_MAX 64
#define CS_CONFIG_OFFICERS_MAX 64
/* ceremony.expiry_minutes at most: one week */
#define CS_CONFIG_EXPIRY_MINUTES_MAX 10080

/* signing.profiles: one delegated-signing profile (issue 15): a token key
 * used by this profile only, the signature formats it allows and what the
 * appliance adds to a signature. Checked at load: name
 * ^[a-z0-9][a-z0-9._-]{0,31}$ and unique; key a pkcs11: key URI of the
 * token pkcs11.token_uri selects, not the text of pkcs11.signing_key nor
 * of another profile's key; formats a non-empty subset without repeats;
 * typ required iff jws is allowed ([A-Za-z0-9!#$&^_.+/-]{1,64}, not
 * starting with "credsign-" in any case); payload_types required iff dsse
 * is allowed (1..CS_CONFIG_PAYLOAD_TYPES_MAX entries, each 1..128
 * printable ASCII characters without space, unique); max_payload_bytes
 * fits signing.max_request_bytes once base64-encoded
 * (4 * ceil(n / 3) + 4096 <= max_request_bytes); aud 1..16 strings of
 * at most 256 characters. */
#define CS_SIG_FORMAT_JWS 1u
#define CS_SIG_FORMAT_DSSE 2u
#define CS_SIG_FORMAT_DIGEST 4u
#define CS_CONFIG_PROFILE_NAME_MAX 32
#define CS_CONFIG_PROFILES_MAX 64
#define CS_CONFIG_TYP_MAX 64
#define CS_CONFIG_PAYLOAD_TYPES_MAX 32
#define CS_CONFIG_PAYLOAD_TYPE_MAX 128
#define CS_CONFIG_AUD_MAX 16
#define CS_CONFIG_AUD_LEN_MAX 256
typedef struct {
	char *name, *key;
	unsigned formats;     /* CS_SIG_FORMAT_* bits, at least one */
	char *typ;            /* NULL unless jws */
	char **payload_types; /* NULL-terminated; NULL unless dsse */
	int max_payload_bytes; /* 1..16777216 (default 65536) */
	char *iss;            /* never NULL after load (default server.public_base_url) */
	char **aud;           /* NULL-terminated or NULL */
	int lifetime_seconds; /* 0: no exp (default) .. 31536000 */
	bool store_payload;   /* keep the payload with the signature record */
} cs_config_profile;

/* store.backend */
typedef enum { CS_CONFIG_STORE_SQLITE = 0, CS_CONFIG_STORE_POSTGRESQL = 1 } cs_config_store_backend;
/* store.postgresql.sslmode: whether a libpq sslmode is one the loader
 * accepts (disable, allow, prefer, require, verify-ca, verify-full). */
bool cs_config_sslmode_known(const char *sslmode);
/* libpq's complaint about conninfo (PQconninfoParse's err) for a message:
 * its first line, every quoted text of it replaced by "(not shown)" but
 * libpq's own keywords and single punctuation characters (a quoted text
 * may be the password, or a token of it), trailing punctuation dropped;
 * into out (size bytes, truncated). */
void cs_config_conninfo_error(const char *conninfo, const char *err, char *out, size_t size);

typedef struct {
	char *file; /* absolute path of the loaded file */
	char *file_given; /* the path as given to cs_config_load: messages name the file so */
	struct {
		char *listen;          /* "HOST:PORT" */
		char *public_base_url; /* https URL, no trailing slash */
		char *node_id;
		int workers;         /* event-loop threads */
		int max_connections; /* concurrent authenticated connections */
		int max_connections_per_identity; /* of one client identity */
		int max_body_bytes;
		int max_header_bytes;
		int timeout_ms;      /* read/write/idle timeout per connection */
		int handshake_timeout_ms;   /* accept to finished TLS handshake, total */
		int request_timeout_ms;     /* first byte to complete request, total */
		int max_connection_seconds; /* lifetime of any connection */
		int max_handshakes;            /* connections not yet authenticated */
		int max_handshakes_per_source; /* the same, per source address */
		char *health_listen; /* plain-HTTP /healthz and /readyz; NULL: off */
		char *presets_file;  /* built-in presets (conf/presets.conf) */
		char *wordlist_file; /* passphrase words (EFF long list) */
		/* the network process's account (confine.h): checked at load to
		 * exist (getpwnam/getgrnam); NULL when unset. group only with user
		 * (NULL: the user's primary group) */
		char *user, *group; /* at most CS_CONFIG_ACCOUNT_MAX characters */
		bool allow_root; /* started as root without user: run as root anyway */
	} server;
	struct { /* hardening (optional group; issue 16, docs/hardening.md) */
		bool privsep; /* key process + network process (default true) */
		bool seccomp; /* seccomp-bpf allowlists (default true) */
		bool mlock;   /* mlockall in both processes (default true) */
	} hardening;
	struct {
		char *cert, *key; /* key: file path, or a pkcs11: URI (issue 3) */
		char *ca;
		char *crl; /* NULL when unset */
		bool crl_check;
		int verify_depth;
		bool identity_from_cn; /* subject CN when there is no URI SAN */
		/* key exchange groups offered, OpenSSL's list syntax ("X25519:P-256"),
		 * names checked at load (cs_config_tls_group_known); NULL: the
		 * default, CS_TLS_GROUPS_DEFAULT (CS_TLS_GROUPS_FIPS with
		 * crypto.openssl_fips): elliptic curves only, no finite-field group */
		char *groups;
	} tls;
	struct {
		char *module;
		/* CK_C_INITIALIZE_ARGS.pReserved for a module given by path; NULL
		 * when unset (refused with a module given by p11-kit name) */
		char *init_args;
		char *token_uri;
		/* NULL when the token URI has pin-source, or the token needs no
		 * login (checked at start against CKF_LOGIN_REQUIRED) */
		char *pin_file;
		int sessions;
		char *signing_key; /* pkcs11: URI of the ES256 key */
		/* pkcs11.validation: what the operator declares the token to be
		 * validated as. A claim, not a fact: credsignd compares the versions
		 * with what the token reports at start (cs_app_describe_token). */
		struct {
			char *program;     /* "FIPS 140-3", "FIPS 140-2" or "none" (default) */
			char *certificate; /* CMVP certificate number (digits); NULL with "none" */
			char *module;      /* the validated module's name; NULL with "none" */
			int level;         /* overall security level 1..4; 0 with "none" */
			/* "MAJOR.MINOR" (normalized) the module was validated at:
			 * CK_TOKEN_INFO hardwareVersion and firmwareVersion, and optionally
			 * CK_INFO libraryVersion; NULL when unset */
			char *hardware_version, *firmware_version, *library_version;
		} validation;
	} pkcs11;
	struct {
		bool openssl_fips; /* software crypto from OpenSSL's FIPS provider only */
		/* "default" or "fips" (NULL: default): with "fips" the TLS listener
		 * offers FIPS-approved algorithms only (CS_TLS_*_FIPS); see
		 * cs_config_fips_tls */
		char *profile;
	} crypto;
	/* store: where the durable state is (store.h, store_target.h). With
	 * backend sqlite, path (default credsign.db) and no postgresql group;
	 * with postgresql, path NULL (store.path refused) and
	 * postgresql.connection set. */
	struct {
		cs_config_store_backend backend; /* store.backend (default sqlite) */
		char *path;
		int session_retention_seconds; /* keep expired, uncertified sessions */
		struct {
			/* libpq keyword/value string or URI: parsed at load
			 * (PQconninfoParse), a password in it refused */
			char *connection;
			char *sslmode;       /* disable .. verify-full (default verify-full) */
			char *ca_file;       /* readable file; NULL: libpq's default */
			/* the password alone: a regular file of the account that
			 * connects (server.user, else the loader's), no group or
			 * other permission bits; NULL: none (or libpq's passfile) */
			char *password_file;
			char *node_role;            /* PostgreSQL role name (default credsign_node) */
			int pool_size;              /* 2..1000 (default 16) */
			int statement_timeout_ms;   /* 100..600000 (default 5000) */
			int connect_timeout_seconds; /* 1..60 (default 5) */
		} postgresql;
	} store;
	struct {
		cs_log_level level;
		cs_log_format format;
	} log;
	struct {
		int checkpoint_entries;
		int checkpoint_seconds;
		int write_timeout_ms;
		int retention_days;
		int refusal_summary_seconds; /* unverified TLS refusals: one entry per source, reason and interval */
		bool syslog;
		/* audit.readers and metrics.readers of earlier versions are refused:
		 * access.grants (roles auditor and operator) replaced them */
	} audit;
	struct { /* access.grants: who may do what (access.h); none: everyone refused */
		cs_config_grant *grants;
		size_t ngrants;
	} access;
	struct { /* signing: delegated signing (issue 15); optional: no profiles,
		  * every profile is unknown */
		int max_request_bytes; /* body limit of POST /api/sign: 1024..16777216 (default 1048576) */
		int batch_max;         /* items per batch: 1..1000 (default 100) */
		cs_config_profile *profiles;
		size_t nprofiles;
	} signing;
	struct {
		/* GET /cert/{id}[.jws] readable by any authenticated client, not
		 * only by auditors and generators of the certificate's project */
		bool public;
	} certificates;
	struct { /* GET /api/policy: the organisation's part (policy.h); NULL when unset */
		char *organisation, *owner, *version; /* CS_CONFIG_POLICY_TEXT_MAX characters */
		char *scope;                           /* CS_CONFIG_POLICY_SCOPE_MAX characters */
		char *effective_date;                  /* YYYY-MM-DD */
		int review_months;                     /* 1..12 */
	} policy;
	struct { /* inventory (optional group; issue 19, inventory.h) */
		int due_soon_days;            /* 1..365 (default 14): /metrics due_soon */
		/* 0 (default): not used; 1..90: rotation due date of password
		 * credentials under a PCI DSS preset, and the written policy's
		 * password-only rule (PCI DSS v4.0.1 8.3.9: at most 90) */
		int pci_password_change_days;
	} inventory;
	/* ceremony: dual-control ceremonies (optional; without the group
	 * ceremonies are impossible). Checked at load: the CA, the CRL (issued
	 * by the CA) and each officer certificate (issued by the CA) readable;
	 * the CA not tls.client_ca's certificate; names and fingerprints
	 * unique; 2 <= quorum <= officers. */
	struct {
		bool present;
		char *officer_ca;  /* PEM CA certificate of the officers */
		char *officer_crl; /* PEM CRL of officer_ca; NULL: revocation not checked */
		int quorum;        /* 2..officers (default 2) */
		int revoke_quorum; /* 1..officers (default 1) */
		int expiry_minutes; /* 1..10080 (default 60) */
		cs_config_officer *officers;
		size_t nofficers;
	} ceremony;
} cs_config;

/* The profile of that name in cfg->signing.profiles; NULL when there is
 * none (or name is NULL). */
const cs_config_profile *cs_config_profile_find(const cs_config *cfg, const char *name);
/* "jws", "dsse", "digest" for one CS_SIG_FORMAT_* bit; "?" otherwise. */
const char *cs_sig_format_name(unsigned one_format);
/* The CS_SIG_FORMAT_* bit of that name (exact, lower case); 0 when unknown
 * or name is NULL. */
unsigned cs_sig_format_parse(const char *name);

/* The TLS key exchange groups offered when tls.groups is not set. X25519
 * and X448 are not in OpenSSL 3.0's FIPS provider. */
#define CS_TLS_GROUPS_DEFAULT "X25519:P-256:P-384:P-521:X448"
#define CS_TLS_GROUPS_FIPS "P-256:P-384:P-521"
#define CS_TLS_GROUPS_MAX 16
/* crypto.profile "fips": TLS 1.3 cipher suites and signature algorithms
 * approved for FIPS (SP 800-52r2: AES-GCM; ECDSA and RSA-PSS with SHA-2;
 * no ChaCha20-Poly1305, no EdDSA) */
#define CS_TLS_CIPHERSUITES_FIPS "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256"
#define CS_TLS_SIGALGS_FIPS                                                                              \
	"ECDSA+SHA256:ECDSA+SHA384:ECDSA+SHA512:rsa_pss_rsae_sha256:rsa_pss_rsae_sha384:rsa_pss_rsae_sha512:" \
	"rsa_pss_pss_sha256:rsa_pss_pss_sha384:rsa_pss_pss_sha512"
/* Whether the TLS listener is restricted to FIPS-approved algorithms
 * (crypto.profile "fips" or crypto.openssl_fips, whose provider has no
 * X25519/X448). */
bool cs_config_fips_tls(const cs_config *cfg);
/* Whether name is a TLS 1.3 key exchange group tls.groups may name
 * (case-insensitive): X25519, X448, P-256, P-384, P-521 (and their
 * secpNNNr1/prime256v1 names), ffdhe2048 .. ffdhe8192. */
bool cs_config_tls_group_known(const char *name);

/* server.user and server.group: the longest name (cs_run_as holds it) */
#define CS_CONFIG_ACCOUNT_MAX 63

/* Limits of the policy texts, in Unicode code points. */
#define CS_CONFIG_POLICY_TEXT_MAX 128
#define CS_CONFIG_POLICY_SCOPE_MAX 512

typedef struct {
	char **messages;
	size_t count;
} cs_config_diag;

cs_err cs_config_load(const char *path, cs_config **out, cs_config_diag *diag)
	__attribute__((warn_unused_result));
/* The same for a process that has given up the right to read the secrets
 * (the network process after its privilege drop, reloading on SIGHUP):
 * pkcs11.pin_file, a pin-source in pkcs11.token_uri and a file tls.key are
 * not opened or checked (their paths are resolved as by cs_config_load);
 * everything else is. Not for a process that will use those files. */
cs_err cs_config_reload(const char *path, cs_config **out, cs_config_diag *diag)
	__attribute__((warn_unused_result));
void cs_config_free(cs_config *cfg);
void cs_config_diag_free(cs_config_diag *diag);
/* Append a copy of msg (dropped only if memory runs out). Also used by the
 * preset loader, which reports in the same format. */
void cs_config_diag_add(cs_config_diag *diag, const char *msg);
/* Where a loaded configuration sets `path` ("pkcs11.signing_key"): "FILE:LINE"
 * (the file that sets it, an @include'd one included; the main file named
 * as given to cs_config_load) into buf[len], or
 * "FILE" when the setting is not in the file (a default). For messages
 * about a setting found wrong after loading (credsignd --check-config
 * against the token and the TLS material); reads the file again. */
void cs_config_where(const cs_config *cfg, const char *path, char *buf, size_t len);
/* Whether a pkcs11: key URI (pkcs11.signing_key, a pkcs11: tls.key, a key
 * named on a command line) names the token token_uri selects: CS_E_CONFIG
 * with why ("token=other, but pkcs11.token_uri selects token=cstest") when
 * a token, slot or library attribute set in both differs, else CS_OK (URIs
 * that do not parse included: their own checks report them). Keys are
 * looked up only in the token pkcs11.token_uri selects; the loader refuses
 * such a pkcs11.signing_key or tls.key naming both settings. */
cs_err cs_config_key_token_conflict(const char *token_uri, const char *key_uri, char *why, size_t len);

/* A calendar date "YYYY-MM-DD" that exists (no 2025-02-29)? Used for
 * policy.effective_date and the effective_date of GET /api/policy. */
bool cs_config_date_valid(const char *s);

/* Document text (policy.organisation, ...): NULL when s is 1..max_chars
 * code points of well-formed UTF-8 without control characters (C0, DEL,
 * C1), bidirectional controls or other invisible format characters
 * (Unicode category Cf), line or paragraph separators, surrogates or
 * noncharacters -- the set the API refuses in client text
 * (cs_api_char_refused) -- else the reason. */
const char *cs_config_text_problem(const char *s, size_t max_chars);
/* Whether a code point is refused in text from outside (configuration and
 * client requests alike): Cc, Cf (Unicode 15.1 DerivedGeneralCategory),
 * Zl, Zp, surrogates, the invisible Hangul fillers and noncharacters. */
bool cs_config_char_refused(uint32_t cp);

#endif
