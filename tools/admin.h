/*
 * admin: what the parts of credsign-admin share. credsign_admin.c holds
 * main, the token, key and audit commands; admin_ceremony.c the
 * dual-control ceremonies (ceremony start/approve/execute/list/show/
 * transcript/verify-transcript), certificate revocation (cert revoke) and
 * the audit purge, which is a ceremony action.
 *
 * Identities: the local unix user acts as "local:<user>" (admin_actor).
 * Output: JSON or text on stdout, errors on stderr; exit 0 success, 1
 * failure or refusal, 2 usage.
 */
#ifndef CS_ADMIN_H
#define CS_ADMIN_H

#include <jansson.h>

#include "config.h"
#include "cs_error.h"
#include "cs_log.h"
#include "store.h"
#include "token.h"

typedef struct {
	cs_config *cfg;
	cs_token *token; /* NULL until admin_open_token */
	/* --owner-connection CONNINFO, --owner-password-file F (NULL: not
	 * given): the PostgreSQL schema owner, whom the audit purge needs */
	const char *owner_connection, *owner_password_file;
} admin_ctx;

/* Load the configuration (path: --config, else $CREDSIGN_CONF; NULL:
 * neither) and set up logging; diagnostics on stderr. 0, or the exit
 * status (1 bad configuration, 2 none given). */
int admin_load(admin_ctx *a, const char *config_path, cs_log_level level);
/* Open the configured token (read_write to create or destroy objects); 0 or
 * 1 with what the token reported on stderr. */
int admin_open_token(admin_ctx *a, int read_write);
/* Free what admin_load and admin_open_token made. */
void admin_close(admin_ctx *a);
/* "local:<unix user>" into actor[96]. */
void admin_actor(char actor[96]);
/* Record an administrative event as the local user at ts (NULL: now);
 * error_code NULL on success. A failure to record is on stderr. */
cs_err admin_event_at(admin_ctx *a, const char *action, const char *object, const char *outcome,
		      const char *error_code, const char *ts);
/* "credsign-admin: WHAT: MESSAGE (CODE)[: PKCS#11 call]" on stderr; returns 1. */
int admin_fail(const char *what, cs_err r);
/* Print j (consumed) indented on stdout; 0, or 1 when j is NULL. */
int admin_print_json(json_t *j);
/* The store's active signing key's PKCS#11 URI (malloc'd) into *uri, or
 * the configured pkcs11.signing_key when the store has no key yet. */
cs_err admin_active_key_uri(admin_ctx *a, char **uri);
/* The audit purge (audit.retention_days, measured against the newest
 * signed checkpoint; see credsign_admin.c). Needs the token open; on a
 * PostgreSQL store a->owner_connection too (the schema owner purges:
 * without it, refused on stderr before anything is signed). 0 when
 * purged or nothing was old enough, 1 on failure; *purged 1 when entries
 * were removed (may be NULL). */
int admin_audit_purge(admin_ctx *a, const char *jwks_path, int accept_clock_jump, int *purged);

/* admin_ceremony.c: `credsign-admin [OPTIONS] ceremony|cert ...` and
 * `audit purge`, parsed there from the whole command line. */
int admin_ceremony_main(int argc, char **argv);
/* Whether argv's command (its first two words after the options) is one
 * admin_ceremony_main runs. */
int admin_ceremony_command(int argc, char **argv);

/* admin_store.c: `credsign-admin [OPTIONS] store init|migrate ...` (the
 * PostgreSQL store's schema; a SQLite store copied into it), parsed there
 * from the whole command line. */
int admin_store_main(int argc, char **argv);
/* Whether argv's command (its first word after the options) is store. */
int admin_store_command(int argc, char **argv);
/* --owner-connection's value: libpq's syntax and no password in it (a
 * command line is visible to every user); 1, or 0 with why on stderr. */
int admin_owner_connection_ok(const char *conninfo);
/* The configuration's PostgreSQL store as the schema owner: *t from
 * a->cfg's store (which must be PostgreSQL), the connection replaced by
 * owner_connection and its password read from owner_password_file (NULL:
 * none; the nodes' password file is not the owner's; the file's owner and
 * mode checked), application_name "credsign-admin", no statement timeout.
 * owner_connection NULL: the configuration's own connection. 0, or the
 * exit status (2 usage, 1 otherwise) with why on stderr. The strings of
 * *t point into a->cfg and the arguments. */
int admin_owner_target(admin_ctx *a, const char *owner_connection, const char *owner_password_file,
		       cs_store_target *t);

/* admin_evidence.c: `credsign-admin [OPTIONS] evidence export ...`, the
 * auditor's evidence package (docs/evidence.md), parsed there from the
 * whole command line. */
int admin_evidence_main(int argc, char **argv);
/* Whether argv's command (its first word after the options) is evidence. */
int admin_evidence_command(int argc, char **argv);

#endif
