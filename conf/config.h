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

#include "cs_error.h"
#include "cs_log.h"

typedef struct {
	char *file; /* absolute path of the loaded file */
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
	} server;
	struct {
		char *cert, *key; /* key: file path, or a pkcs11: URI (issue 3) */
		char *ca;
		char *crl; /* NULL when unset */
		bool crl_check;
		int verify_depth;
		bool identity_from_cn; /* subject CN when there is no URI SAN */
	} tls;
	struct {
		char *module;
		char *token_uri;
		char *pin_file; /* NULL when the token URI has pin-source */
		int sessions;
		char *signing_key; /* pkcs11: URI of the ES256 key */
		char *validation;  /* operator text, e.g. a FIPS 140-3 cert number */
	} pkcs11;
	struct {
		char *path;
		int session_retention_seconds; /* keep expired, uncertified sessions */
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
		char **readers; /* identities allowed to read the audit log; NULL-terminated */
	} audit;
	struct {
		char **readers; /* identities allowed to read GET /metrics; NULL-terminated */
	} metrics;
} cs_config;

typedef struct {
	char **messages;
	size_t count;
} cs_config_diag;

cs_err cs_config_load(const char *path, cs_config **out, cs_config_diag *diag)
	__attribute__((warn_unused_result));
void cs_config_free(cs_config *cfg);
void cs_config_diag_free(cs_config_diag *diag);
/* Append a copy of msg (dropped only if memory runs out). Also used by the
 * preset loader, which reports in the same format. */
void cs_config_diag_add(cs_config_diag *diag, const char *msg);

#endif
