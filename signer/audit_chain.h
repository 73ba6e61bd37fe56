/*
 * audit_chain: the audit log's entries and their hash chain.
 *
 *   entry_hash = SHA-256(prev_hash || canonical(entry))
 *
 * canonical(entry) is the concatenation, in this order, of the fields
 *   seq, ts, node, actor, actor_cert_sha256, role, action, object, project,
 *   environment, outcome, error_code, request_id
 * each as a 4-byte big-endian length followed by its UTF-8 bytes, or the
 * 4 bytes FF FF FF FF for an absent field; seq is written in decimal. The
 * first entry's prev_hash is 32 zero bytes, or after a retention purge the
 * head_hash of the signed purge checkpoint. docs/audit.md specifies this
 * for independent verifiers.
 *
 * An entry never carries a credential, PIN or salt. Pure functions.
 */
#ifndef CS_AUDIT_CHAIN_H
#define CS_AUDIT_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "cs_error.h"

#define CS_AUDIT_FIELDS 13

typedef struct {
	int64_t seq;
	const char *ts; /* RFC 3339 UTC with milliseconds and Z */
	const char *node;
	const char *actor;             /* client identity, or local:<unix user>, or system */
	const char *actor_cert_sha256; /* client certificate, NULL otherwise */
	const char *role;              /* client, admin, system */
	const char *action;            /* generate, certify, cert.read, ... */
	const char *object;            /* session id, cert id, key id */
	const char *project;
	const char *environment;
	const char *outcome; /* success, failure, refused */
	const char *error_code;
	const char *request_id;
	char ts_buf[32]; /* where the ledger writes the ts it fixed (ts then points here) */
} cs_audit_entry;

/* entry_hash of an entry given the previous hash. scratch: a digest
 * context to reuse (faster over millions of entries), or NULL. Fails with
 * CS_E_NOMEM or CS_E_CRYPTO (then out must not be used). */
cs_err cs_audit_hash(EVP_MD_CTX *scratch, const uint8_t prev[32], const cs_audit_entry *entry,
		     uint8_t out[32]) __attribute__((warn_unused_result));
/* Replace every byte that is not printable ASCII with '?', in place. */
void cs_audit_sanitize(char *s);
/* The current time as RFC 3339 UTC with milliseconds: 2026-11-23T10:00:00.123Z */
void cs_audit_now(char out[32]);

#endif
