/*
 * prov_internal: shared by the provider's parts (prov_*.c). Not installed.
 */
#ifndef CS_PROV_INTERNAL_H
#define CS_PROV_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/evp.h>

#include "token.h"

typedef struct {
	const OSSL_CORE_HANDLE *handle;
	OSSL_LIB_CTX *hash_ctx; /* private context for SHA-256 */
	EVP_MD *sha256;         /* fetched once from hash_ctx */
	OSSL_FUNC_core_new_error_fn *core_new_error;
	OSSL_FUNC_core_set_error_debug_fn *core_set_error_debug;
	OSSL_FUNC_core_vset_error_fn *core_vset_error;

	pthread_mutex_t lock; /* guards the lazy token open */
	cs_token *token;
	int owns_token;
	char *module;   /* for the lazy open (module mode) */
	char *pin_file; /* used when a URI has no pin-source */
	char *token_uri; /* token for operations without a key URI (RAND) */
} prov_ctx;

/* A key in the token as the provider's keymgmt sees it. */
typedef struct {
	prov_ctx *pctx;
	cs_key_ref ref;
	int has_private;
	int has_public;
	uint8_t point[65]; /* uncompressed public point */
} prov_key;

/* The reference the store hands to keymgmt's load(): plain bytes. */
typedef struct {
	uint32_t magic;
	prov_ctx *pctx; /* the provider instance that made it (same process) */
	int has_private;
	cs_key_ref ref;
	uint8_t point[65];
} prov_key_reference;
#define PROV_KEY_REF_MAGIC 0x63736b31u /* "csk1" */

/* The token for a key URI (NULL: the configured token, for the RAND);
 * opened at first use in module mode, under the lock. */
cs_err prov_token(prov_ctx *p, const char *uri, cs_token **out);
/* Raise an OpenSSL error from this provider (reason = cs_err + 1). */
void prov_raise(prov_ctx *p, cs_err err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

extern const OSSL_DISPATCH prov_keymgmt_functions[];
extern const OSSL_DISPATCH prov_signature_functions[];
extern const OSSL_DISPATCH prov_store_functions[];
extern const OSSL_DISPATCH prov_rand_functions[];

prov_key *prov_key_new(prov_ctx *p);
void prov_key_free(void *key);

#endif
