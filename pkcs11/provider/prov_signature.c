/*
 * prov_signature: ECDSA P-256 with SHA-256 for token keys. The digest is
 * computed here (OpenSSL, the provider's own library context); the token
 * signs it with CKM_ECDSA. Output is DER (X9.62), as TLS and X.509 expect.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "prov_internal.h"

#define ES256_DER_MAX 72

/* AlgorithmIdentifier ecdsa-with-SHA256 (RFC 5758), no parameters */
static const uint8_t alg_id_ecdsa_sha256[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48,
					      0xce, 0x3d, 0x04, 0x03, 0x02};

typedef struct {
	prov_ctx *pctx;
	prov_key key; /* a copy: the caller's EVP_PKEY may go first */
	int have_key;
	EVP_MD_CTX *mdctx; /* streaming digest, made on the first update */
	int md_started;    /* mdctx holds this operation's digest state */
} sig_ctx;

static void *sig_newctx(void *provctx, const char *propq)
{
	(void)propq;
	sig_ctx *c = calloc(1, sizeof(*c));
	if (c != NULL)
		c->pctx = provctx;
	return c;
}

static void sig_freectx(void *ctx)
{
	sig_ctx *c = ctx;
	if (c == NULL)
		return;
	EVP_MD_CTX_free(c->mdctx);
	free(c);
}

static void *sig_dupctx(void *ctx)
{
	sig_ctx *c = ctx, *d = malloc(sizeof(*d));
	if (d == NULL)
		return NULL;
	*d = *c;
	d->mdctx = NULL;
	if (c->md_started &&
	    ((d->mdctx = EVP_MD_CTX_new()) == NULL || !EVP_MD_CTX_copy_ex(d->mdctx, c->mdctx))) {
		sig_freectx(d);
		return NULL;
	}
	return d;
}

static int is_sha256(const char *name)
{
	return name == NULL || name[0] == '\0' || OPENSSL_strcasecmp(name, "SHA256") == 0 ||
	       OPENSSL_strcasecmp(name, "SHA2-256") == 0 || OPENSSL_strcasecmp(name, "SHA-256") == 0 ||
	       strcmp(name, "2.16.840.1.101.3.4.2.1") == 0;
}

static int sig_set_ctx_params(void *ctx, const OSSL_PARAM params[])
{
	sig_ctx *c = ctx;
	const OSSL_PARAM *p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_DIGEST);
	const char *md = NULL;
	if (p != NULL && (!OSSL_PARAM_get_utf8_string_ptr(p, &md) || !is_sha256(md))) {
		prov_raise(c->pctx, CS_E_INVALID_ARG, "token keys sign with SHA-256 only");
		return 0;
	}
	return 1;
}

static int sig_init(sig_ctx *c, void *key, const OSSL_PARAM params[])
{
	prov_key *k = key;
	if (k == NULL && !c->have_key)
		return 0;
	if (k != NULL) {
		if (!k->has_private) {
			prov_raise(c->pctx, CS_E_KEY_FORBIDDEN, "key has no private half in the token");
			return 0;
		}
		c->key = *k;
		c->have_key = 1;
	}
	return sig_set_ctx_params(c, params);
}

static int sig_sign_init(void *ctx, void *key, const OSSL_PARAM params[])
{
	return sig_init(ctx, key, params);
}

/* Sign a SHA-256 digest in the token; DER into sig[sigsize]. */
static int sign_digest(sig_ctx *c, const uint8_t digest[32], unsigned char *sig, size_t *siglen,
		       size_t sigsize)
{
	cs_token *token = NULL;
	cs_es256_sig es;
	prov_ctx *p = c->key.pctx; /* every key has one: prov_key_new, km_load, km_dup */
	cs_err r = prov_token(p, NULL, &token);
	if (r != CS_OK)
		return 0;
	if ((r = cs_token_sign_es256(token, &c->key.ref, digest, &es)) != CS_OK) {
		prov_raise(p, r, "token signature failed: %s", cs_strerror(r));
		return 0;
	}
	if (es.der_len > sigsize) {
		prov_raise(p, CS_E_BUFFER_TOO_SMALL, "signature buffer too small");
		return 0;
	}
	memcpy(sig, es.der, es.der_len);
	*siglen = es.der_len;
	return 1;
}

static int sig_sign(void *ctx, unsigned char *sig, size_t *siglen, size_t sigsize,
		    const unsigned char *tbs, size_t tbslen)
{
	sig_ctx *c = ctx;
	if (sig == NULL) {
		*siglen = ES256_DER_MAX;
		return 1;
	}
	if (tbslen != 32) {
		prov_raise(c->pctx, CS_E_INVALID_ARG, "expected a 32-byte SHA-256 digest, got %zu bytes",
			   tbslen);
		return 0;
	}
	return sign_digest(c, tbs, sig, siglen, sigsize);
}

static int sig_digest_sign_init(void *ctx, const char *mdname, void *key, const OSSL_PARAM params[])
{
	sig_ctx *c = ctx;
	if (!is_sha256(mdname)) {
		prov_raise(c->pctx, CS_E_INVALID_ARG, "token keys sign with SHA-256 only, not %s", mdname);
		return 0;
	}
	if (!sig_init(c, key, params))
		return 0;
	c->md_started = 0; /* EVP_DigestSign (one shot) never needs mdctx */
	return 1;
}

/* Start the streaming digest of this operation if not yet started. */
static int md_start(sig_ctx *c)
{
	if (c->md_started)
		return 1;
	if (c->mdctx == NULL && (c->mdctx = EVP_MD_CTX_new()) == NULL)
		return 0;
	if (!EVP_DigestInit_ex2(c->mdctx, c->pctx->sha256, NULL))
		return 0;
	c->md_started = 1;
	return 1;
}

static int sig_digest_sign_update(void *ctx, const unsigned char *data, size_t len)
{
	sig_ctx *c = ctx;
	return md_start(c) && EVP_DigestUpdate(c->mdctx, data, len);
}

static int sig_digest_sign_final(void *ctx, unsigned char *sig, size_t *siglen, size_t sigsize)
{
	sig_ctx *c = ctx;
	uint8_t digest[32];
	unsigned int dlen = 0;
	if (sig == NULL) {
		*siglen = ES256_DER_MAX;
		return 1;
	}
	if (!md_start(c) || !EVP_DigestFinal_ex(c->mdctx, digest, &dlen) || dlen != 32)
		return 0;
	c->md_started = 0;
	return sign_digest(c, digest, sig, siglen, sigsize);
}

/* EVP_DigestSign in one call: SHA-256 of the whole message, then the token. */
static int sig_digest_sign(void *ctx, unsigned char *sig, size_t *siglen, size_t sigsize,
			   const unsigned char *tbs, size_t tbslen)
{
	sig_ctx *c = ctx;
	uint8_t digest[32];
	unsigned int dlen = 0;
	if (sig == NULL) {
		*siglen = ES256_DER_MAX;
		return 1;
	}
	if (!EVP_Digest(tbs, tbslen, digest, &dlen, c->pctx->sha256, NULL) || dlen != 32)
		return 0;
	return sign_digest(c, digest, sig, siglen, sigsize);
}

static int sig_get_ctx_params(void *ctx, OSSL_PARAM params[])
{
	(void)ctx;
	OSSL_PARAM *p;
	if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_ALGORITHM_ID)) != NULL &&
	    !OSSL_PARAM_set_octet_string(p, alg_id_ecdsa_sha256, sizeof(alg_id_ecdsa_sha256)))
		return 0;
	if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST)) != NULL &&
	    !OSSL_PARAM_set_utf8_string(p, "SHA256"))
		return 0;
	if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST_SIZE)) != NULL &&
	    !OSSL_PARAM_set_size_t(p, 32))
		return 0;
	return 1;
}

static const OSSL_PARAM *sig_gettable_ctx_params(void *ctx, void *provctx)
{
	static const OSSL_PARAM params[] = {
		OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
		OSSL_PARAM_size_t(OSSL_SIGNATURE_PARAM_DIGEST_SIZE, NULL),
		OSSL_PARAM_END,
	};
	(void)ctx;
	(void)provctx;
	return params;
}

static const OSSL_PARAM *sig_settable_ctx_params(void *ctx, void *provctx)
{
	static const OSSL_PARAM params[] = {
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
		OSSL_PARAM_END,
	};
	(void)ctx;
	(void)provctx;
	return params;
}

const OSSL_DISPATCH prov_signature_functions[] = {
	{OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))sig_newctx},
	{OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void))sig_freectx},
	{OSSL_FUNC_SIGNATURE_DUPCTX, (void (*)(void))sig_dupctx},
	{OSSL_FUNC_SIGNATURE_SIGN_INIT, (void (*)(void))sig_sign_init},
	{OSSL_FUNC_SIGNATURE_SIGN, (void (*)(void))sig_sign},
	{OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, (void (*)(void))sig_digest_sign_init},
	{OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, (void (*)(void))sig_digest_sign_update},
	{OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL, (void (*)(void))sig_digest_sign_final},
	{OSSL_FUNC_SIGNATURE_DIGEST_SIGN, (void (*)(void))sig_digest_sign},
	{OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS, (void (*)(void))sig_get_ctx_params},
	{OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS, (void (*)(void))sig_gettable_ctx_params},
	{OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, (void (*)(void))sig_set_ctx_params},
	{OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, (void (*)(void))sig_settable_ctx_params},
	{0, NULL},
};
