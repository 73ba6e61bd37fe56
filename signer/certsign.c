/* certsign: see certsign.h. */
#include "certsign.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/store.h>

#include "cs_log.h"
#include "ec_util.h"
#include "jose.h"
#include "provider.h"

struct cs_signer {
	OSSL_LIB_CTX *libctx;
	EVP_PKEY *key; /* token key through the provider */
	EVP_PKEY *pub; /* its public half, software */
	char kid[44];
	char *uri;
	json_t *jwk;
};

/* The token error behind a failed OpenSSL call, from the provider's reason. */
static cs_err error_from_queue(void)
{
	cs_err r = CS_E_TOKEN_UNAVAILABLE;
	unsigned long e;
	const char *lib;
	while ((e = ERR_get_error()) != 0) {
		lib = ERR_lib_error_string(e);
		int reason = ERR_GET_REASON(e);
		if (lib != NULL && strcmp(lib, "credsign-pkcs11") == 0 && reason > 0 &&
		    reason <= CS_ERR_COUNT)
			r = (cs_err)(reason - 1);
	}
	return r;
}


cs_err cs_signer_open(OSSL_LIB_CTX *libctx, const char *key_uri, cs_signer **out)
{
	uint8_t point[65];
	size_t len = 0;
	*out = NULL;
	cs_signer *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return CS_E_NOMEM;
	s->libctx = libctx;
	cs_err r = CS_E_KEY_NOT_FOUND;
	if ((s->uri = strdup(key_uri)) == NULL || (s->key = cs_provider_load_key(libctx, key_uri)) == NULL) {
		r = s->uri == NULL ? CS_E_NOMEM : error_from_queue();
		cs_log_error("signing key %s: %s", key_uri, cs_strerror(r));
		goto fail;
	}
	if (!EVP_PKEY_get_octet_string_param(s->key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
					     sizeof(point), &len) ||
	    (r = cs_ec_point_to_pkey(point, len, &s->pub)) != CS_OK ||
	    (r = cs_jwk_thumbprint(s->pub, s->kid)) != CS_OK || (r = cs_jwk_from_pkey(s->pub, &s->jwk)) != CS_OK)
		goto fail;
	*out = s;
	return CS_OK;
fail:
	cs_signer_free(s);
	return r;
}

void cs_signer_free(cs_signer *s)
{
	if (s == NULL)
		return;
	EVP_PKEY_free(s->key);
	EVP_PKEY_free(s->pub);
	json_decref(s->jwk);
	free(s->uri);
	free(s);
}

const char *cs_signer_kid(const cs_signer *s) { return s->kid; }
const char *cs_signer_uri(const cs_signer *s) { return s->uri; }
const json_t *cs_signer_jwk(const cs_signer *s) { return s->jwk; }

static cs_err sign_once(cs_signer *s, const uint8_t *input, size_t len, uint8_t raw[64])
{
	uint8_t der[80];
	size_t der_len = sizeof(der);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	cs_err r = CS_OK;
	if (md == NULL)
		return CS_E_NOMEM;
	if (EVP_DigestSignInit_ex(md, NULL, "SHA256", s->libctx, CS_PROVIDER_SIGN_PROPQ, s->key, NULL) != 1 ||
	    EVP_DigestSign(md, der, &der_len, input, len) != 1)
		r = error_from_queue();
	EVP_MD_CTX_free(md);
	if (r != CS_OK)
		return r;
	/* verify with the public half before the signature is used */
	md = EVP_MD_CTX_new();
	int good = md != NULL &&
		   EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, CS_NOT_TOKEN_PROVIDER, s->pub, NULL) == 1 &&
		   EVP_DigestVerify(md, der, der_len, input, len) == 1;
	EVP_MD_CTX_free(md);
	ERR_clear_error();
	if (!good)
		return CS_E_SIGNATURE_INVALID;
	return cs_ecdsa_der_to_raw(der, der_len, raw);
}

static cs_err sign_verified(void *ctx, const uint8_t *input, size_t len, uint8_t raw[64])
{
	cs_signer *s = ctx;
	cs_err r = sign_once(s, input, len, raw);
	if (r == CS_E_SIGNATURE_INVALID) {
		cs_log_warn("token signature did not verify with key %s; retrying once", s->kid);
		r = sign_once(s, input, len, raw);
		if (r == CS_E_SIGNATURE_INVALID) {
			cs_log_error("token signature did not verify twice with key %s", s->kid);
		}
	}
	return r;
}

cs_err cs_signer_jws(cs_signer *s, const char *typ, const json_t *claims, char **jws)
{
	json_t *header = json_pack("{s:s, s:s, s:s}", "alg", "ES256", "typ", typ, "kid", s->kid);
	if (header == NULL)
		return CS_E_NOMEM;
	cs_err r = cs_jws_es256_sign(header, claims, sign_verified, s, jws);
	json_decref(header);
	return r;
}
