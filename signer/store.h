/*
 * store: durable state of the appliance behind one interface.
 *
 * Holds generation sessions (parameters and the credential's commitment,
 * never the credential), compliance certificates and signing-key metadata.
 * The embedded backend is SQLite (store_sqlite.c: WAL, synchronous=FULL);
 * another backend implements this same header.
 *
 * Each cs_store is one connection for one thread; open one per worker. The
 * schema is versioned and migrated by cs_store_open (serialized by the
 * database itself). Every write is committed durably before the call
 * returns CS_OK. Errors: CS_E_STORE when the database cannot do its part,
 * CS_E_NOT_FOUND, and the session errors documented below.
 */
#ifndef CS_STORE_H
#define CS_STORE_H

#include <stdint.h>

#include "cs_error.h"

typedef struct cs_store cs_store;

#define CS_ID_MAX 64
#define CS_SHA256_HEX 65

typedef struct {
	char id[CS_ID_MAX];
	int64_t created_ms;
	int64_t expires_ms;
	char cert_sha256[CS_SHA256_HEX]; /* the client certificate that generated */
	const char *claims_json;         /* certificate claims known at generation */
} cs_gen_session;

cs_err cs_store_open(const char *path, cs_store **out) __attribute__((warn_unused_result));
void cs_store_close(cs_store *store);
/* A cheap query that proves the database answers (for /readyz). */
cs_err cs_store_ping(cs_store *store);
/* The schema version this program writes. */
int cs_store_schema_version(void);

cs_err cs_store_session_put(cs_store *store, const cs_gen_session *session)
	__attribute__((warn_unused_result));

/* The claims of a session that cert_sha256 may certify at now_ms: it must
 * exist (CS_E_NOT_FOUND), belong to cert_sha256 (CS_E_FORBIDDEN), not be
 * certified (CS_E_SESSION_USED) nor expired (CS_E_SESSION_EXPIRED).
 * *claims_json is malloc'd. No lock is held afterwards: signing, which may
 * wait on the token, happens outside any transaction. */
cs_err cs_store_session_claims(cs_store *store, const char *session_id, const char *cert_sha256,
			       int64_t now_ms, char **claims_json) __attribute__((warn_unused_result));
/* Store a certificate for a session and mark the session certified, in one
 * transaction, committed before CS_OK. If the session was certified
 * meanwhile (a concurrent request won), nothing is stored and
 * CS_E_SESSION_USED is returned. */
cs_err cs_store_cert_put(cs_store *store, const char *session_id, const char *cert_id,
			 const char *kid, const char *jws, const char *claims_json, int64_t now_ms)
	__attribute__((warn_unused_result));

/* A stored certificate; *jws and *claims_json are malloc'd. */
cs_err cs_store_cert_get(cs_store *store, const char *cert_id, char **jws, char **claims_json);

/* Signing keys: record (or update the status of) a key by kid. */
cs_err cs_store_key_put(cs_store *store, const char *kid, const char *uri, const char *jwk_json,
			const char *status);
/* Every key ever recorded, oldest first. */
typedef void (*cs_key_row_fn)(void *arg, const char *kid, const char *jwk_json, const char *status,
			      const char *created_at);
cs_err cs_store_keys_each(cs_store *store, cs_key_row_fn fn, void *arg);

/* Delete sessions that expired before now_ms (housekeeping). */
cs_err cs_store_sessions_prune(cs_store *store, int64_t now_ms);

#endif
