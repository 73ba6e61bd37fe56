/* certsign: see certsign.h. */
#include "certsign.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/store.h>
#include <openssl/x509.h>

#include "cs_log.h"
#include "ec_util.h"
#include "jose.h"
#include "provider.h"

struct cs_signer {
	atomic_long refs;
	OSSL_LIB_CTX *libctx;
	EVP_PKEY *key; /* token key through the provider */
	EVP_PKEY *pub; /* its public half, software */
	char kid[44];
	char *uri;
	json_t *jwk;
	json_t *x5c; /* the registered chain, or NULL */
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
	return cs_signer_open_for(libctx, key_uri, NULL, out);
}

cs_err cs_signer_open_for(OSSL_LIB_CTX *libctx, const char *key_uri, const cs_key_purpose *purpose,
			  cs_signer **out)
{
	uint8_t point[65];
	size_t len = 0;
	*out = NULL;
	cs_signer *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return CS_E_NOMEM;
	atomic_init(&s->refs, 1);
	s->libctx = libctx;
	cs_err r = CS_E_KEY_NOT_FOUND;
	if ((s->uri = strdup(key_uri)) == NULL || (s->key = cs_provider_load_key_for(libctx, key_uri, purpose)) == NULL) {
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

cs_signer *cs_signer_ref(cs_signer *s)
{
	if (s != NULL)
		atomic_fetch_add(&s->refs, 1);
	return s;
}

void cs_signer_free(cs_signer *s)
{
	if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	EVP_PKEY_free(s->key);
	EVP_PKEY_free(s->pub);
	json_decref(s->jwk);
	json_decref(s->x5c);
	free(s->uri);
	free(s);
}

const char *cs_signer_kid(const cs_signer *s) { return s->kid; }
const char *cs_signer_uri(const cs_signer *s) { return s->uri; }
const json_t *cs_signer_jwk(const cs_signer *s) { return s->jwk; }
const json_t *cs_signer_x5c(const cs_signer *s) { return s->x5c; }

/* One x5c member: standard base64 (RFC 4648 section 4, padded, no
 * whitespace) of exactly one DER certificate. NULL with why when not. */
static X509 *x5c_cert(const char *b64, size_t i, char *why, size_t why_len)
{
	size_t n = strlen(b64);
	size_t pad = n > 0 && b64[n - 1] == '=' ? (n > 1 && b64[n - 2] == '=' ? 2 : 1) : 0;
	int good = n > 0 && n % 4 == 0 && n <= CS_X5C_MAX_BYTES;
	for (size_t k = 0; good && k < n - pad; k++) {
		char c = b64[k];
		good = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
		       c == '/';
	}
	if (!good) {
		snprintf(why, why_len, "x5c[%zu] is not standard base64", i);
		return NULL;
	}
	unsigned char *der = malloc(n / 4 * 3);
	int len = der != NULL ? EVP_DecodeBlock(der, (const unsigned char *)b64, (int)n) : -1;
	X509 *x = NULL;
	if (len >= (int)pad) {
		const unsigned char *p = der;
		long total = len - (long)pad;
		x = d2i_X509(NULL, &p, total);
		if (x != NULL && p != der + total) { /* bytes after the certificate */
			X509_free(x);
			x = NULL;
		}
	}
	free(der);
	ERR_clear_error();
	if (x == NULL)
		snprintf(why, why_len, "x5c[%zu] is not one DER X.509 certificate", i);
	return x;
}

cs_err cs_signer_set_x5c(cs_signer *s, const char *x5c_json, char *why, size_t why_len)
{
	if (why_len > 0)
		why[0] = '\0';
	if (x5c_json == NULL) {
		json_decref(s->x5c);
		s->x5c = NULL;
		return CS_OK;
	}
	json_t *chain =
		strlen(x5c_json) <= CS_X5C_MAX_BYTES ? json_loads(x5c_json, JSON_REJECT_DUPLICATES, NULL) : NULL;
	size_t count = json_is_array(chain) ? json_array_size(chain) : 0;
	if (count == 0 || count > CS_X5C_MAX_CERTS) {
		snprintf(why, why_len, "x5c is not a JSON array of 1 to %d certificates (at most %d bytes)",
			 CS_X5C_MAX_CERTS, CS_X5C_MAX_BYTES);
		json_decref(chain);
		return CS_E_INVALID_ARG;
	}
	cs_err r = CS_OK;
	for (size_t i = 0; i < count && r == CS_OK; i++) {
		const char *b64 = json_string_value(json_array_get(chain, i));
		X509 *x = b64 != NULL ? x5c_cert(b64, i, why, why_len) : NULL;
		if (b64 == NULL)
			snprintf(why, why_len, "x5c[%zu] is not a string", i);
		if (x == NULL)
			r = CS_E_INVALID_ARG;
		else if (i == 0 && EVP_PKEY_eq(X509_get0_pubkey(x), s->pub) != 1) {
			snprintf(why, why_len, "the leaf certificate x5c[0] does not certify key %s", s->kid);
			r = CS_E_INVALID_ARG;
		}
		X509_free(x);
		ERR_clear_error();
	}
	if (r != CS_OK) {
		json_decref(chain);
		return r;
	}
	json_decref(s->x5c);
	s->x5c = chain;
	return CS_OK;
}

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
	/* x5c on certificates only: checkpoints, revocation lists and rollover
	 * statements keep the header {alg, kid, typ} their verifiers require */
	int with_x5c = s->x5c != NULL && strcmp(typ, CS_CERT_TYP) == 0;
	if (header == NULL || (with_x5c && json_object_set(header, "x5c", s->x5c) != 0)) {
		json_decref(header);
		return CS_E_NOMEM;
	}
	cs_err r = cs_jws_es256_sign(header, claims, sign_verified, s, jws);
	json_decref(header);
	return r;
}

/* ---- delegated signing -------------------------------------------------------- */

/* One token signature, message (digest NULL: EVP_DigestSign of SHA-256(msg))
 * or digest (EVP_PKEY_sign), checked with the public half; DER into
 * der[*der_len], raw r || s into raw. */
static cs_err sign_checked(cs_signer *s, const uint8_t *msg, size_t len, const uint8_t *digest, uint8_t raw[64],
			   uint8_t *der, size_t *der_len)
{
	size_t cap = *der_len;
	cs_err r = CS_OK;
	int good = 0;
	if (digest == NULL) {
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		if (md == NULL)
			return CS_E_NOMEM;
		if (EVP_DigestSignInit_ex(md, NULL, "SHA256", s->libctx, CS_PROVIDER_SIGN_PROPQ, s->key, NULL) != 1 ||
		    EVP_DigestSign(md, der, der_len, msg, len) != 1)
			r = error_from_queue();
		EVP_MD_CTX_free(md);
	} else {
		EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_pkey(s->libctx, s->key, CS_PROVIDER_SIGN_PROPQ);
		if (pc == NULL)
			return error_from_queue();
		if (EVP_PKEY_sign_init(pc) != 1 || EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) != 1 ||
		    EVP_PKEY_sign(pc, der, der_len, digest, 32) != 1)
			r = error_from_queue();
		EVP_PKEY_CTX_free(pc);
	}
	if (r != CS_OK) {
		*der_len = cap;
		return r;
	}
	/* verify with the public half (software) before the signature is used */
	if (digest == NULL) {
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		good = md != NULL &&
		       EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, CS_NOT_TOKEN_PROVIDER, s->pub, NULL) == 1 &&
		       EVP_DigestVerify(md, der, *der_len, msg, len) == 1;
		EVP_MD_CTX_free(md);
	} else {
		EVP_PKEY_CTX *vc = EVP_PKEY_CTX_new_from_pkey(NULL, s->pub, CS_NOT_TOKEN_PROVIDER);
		good = vc != NULL && EVP_PKEY_verify_init(vc) == 1 &&
		       EVP_PKEY_CTX_set_signature_md(vc, EVP_sha256()) == 1 &&
		       EVP_PKEY_verify(vc, der, *der_len, digest, 32) == 1;
		EVP_PKEY_CTX_free(vc);
	}
	ERR_clear_error();
	/* the DER must be the canonical encoding of r || s (a token's loose DER
	 * would make the two forms disagree) */
	uint8_t again[CS_ES256_DER_MAX];
	size_t again_len = 0;
	if (good && (cs_ecdsa_der_to_raw(der, *der_len, raw) != CS_OK ||
		     cs_ecdsa_raw_to_der(raw, again, &again_len) != CS_OK || again_len != *der_len ||
		     memcmp(again, der, again_len) != 0))
		good = 0;
	if (!good) {
		OPENSSL_cleanse(raw, 64);
		*der_len = cap;
		return CS_E_SIGNATURE_INVALID;
	}
	return CS_OK;
}

static cs_err sign_retried(cs_signer *s, const uint8_t *msg, size_t len, const uint8_t *digest, uint8_t raw[64],
			   uint8_t *der, size_t *der_len)
{
	if (s == NULL || raw == NULL || der == NULL || der_len == NULL || (digest == NULL && msg == NULL))
		return CS_E_INVALID_ARG;
	if (*der_len < CS_ES256_DER_MAX)
		return CS_E_BUFFER_TOO_SMALL;
	cs_err r = sign_checked(s, msg, len, digest, raw, der, der_len);
	if (r == CS_E_SIGNATURE_INVALID) {
		cs_log_warn("token signature did not verify with key %s; retrying once", s->kid);
		r = sign_checked(s, msg, len, digest, raw, der, der_len);
		if (r == CS_E_SIGNATURE_INVALID)
			cs_log_error("token signature did not verify twice with key %s", s->kid);
	}
	return r;
}

cs_err cs_signer_sign_message(cs_signer *s, const uint8_t *msg, size_t len, uint8_t raw[64], uint8_t *der,
			      size_t *der_len)
{
	if (msg == NULL && len > 0)
		return CS_E_INVALID_ARG;
	return sign_retried(s, msg != NULL ? msg : (const uint8_t *)"", len, NULL, raw, der, der_len);
}

cs_err cs_signer_sign_digest(cs_signer *s, const uint8_t digest[32], uint8_t raw[64], uint8_t *der, size_t *der_len)
{
	if (digest == NULL)
		return CS_E_INVALID_ARG;
	return sign_retried(s, NULL, 0, digest, raw, der, der_len);
}

/* ---- the key in force -------------------------------------------------------- */

struct cs_signer_slot {
	pthread_mutex_t mu;
	cs_signer *current; /* NULL: no key in force */
};

cs_err cs_signer_slot_new(cs_signer *initial, cs_signer_slot **out)
{
	*out = NULL;
	cs_signer_slot *slot = calloc(1, sizeof(*slot));
	if (slot == NULL || pthread_mutex_init(&slot->mu, NULL) != 0) {
		free(slot);
		return CS_E_NOMEM;
	}
	slot->current = initial;
	*out = slot;
	return CS_OK;
}

void cs_signer_slot_free(cs_signer_slot *slot)
{
	if (slot == NULL)
		return;
	cs_signer_free(slot->current);
	pthread_mutex_destroy(&slot->mu);
	free(slot);
}

cs_signer *cs_signer_acquire(cs_signer_slot *slot)
{
	if (slot == NULL)
		return NULL;
	pthread_mutex_lock(&slot->mu);
	cs_signer *s = cs_signer_ref(slot->current);
	pthread_mutex_unlock(&slot->mu);
	return s;
}

void cs_signer_slot_swap(cs_signer_slot *slot, cs_signer *next)
{
	pthread_mutex_lock(&slot->mu);
	cs_signer *old = slot->current;
	slot->current = next;
	pthread_mutex_unlock(&slot->mu);
	cs_signer_free(old); /* outside the lock: the last reference frees token objects */
}

void cs_signer_slot_kid(cs_signer_slot *slot, char kid[44])
{
	cs_signer *s = cs_signer_acquire(slot);
	snprintf(kid, 44, "%s", s != NULL ? s->kid : "");
	cs_signer_free(s);
}
