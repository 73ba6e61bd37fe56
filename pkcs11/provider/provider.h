/*
 * provider: credsign's OpenSSL 3 provider ("credsign-pkcs11") for token keys
 * and the token RNG.
 *
 * It offers, for EC P-256 keys that stay in the token:
 *   - store     pkcs11: URIs (RFC 7512) -> a private-key handle and the public key
 *   - keymgmt   "EC": public half exportable, private half a reference only
 *   - signature "ECDSA": digest in OpenSSL, CKM_ECDSA in the token, DER out
 *   - rand      "CREDSIGN-TOKEN-RNG": output from C_GenerateRandom
 *
 * Two ways to load it:
 *   - as a module (credsign-pkcs11.so), e.g. by the openssl command with
 *     -provider-path DIR -provider credsign-pkcs11 -provider default. The
 *     PKCS#11 module comes from the provider's "pkcs11-module" parameter or
 *     $CREDSIGN_PKCS11_MODULE; the token and PIN from the key URI
 *     (pin-source=file:...) or "pkcs11-pin-file" / $CREDSIGN_PIN_FILE. The
 *     token is opened at first use, under a lock.
 *   - in-process with cs_provider_load(), sharing the caller's cs_token.
 *
 * Load it only into an application's own OSSL_LIB_CTX, never the default
 * one, when its RAND is used: the PKCS#11 module itself calls OpenSSL through
 * the default context, and would re-enter the token (deadlock).
 */
#ifndef CS_PROVIDER_H
#define CS_PROVIDER_H

#include <openssl/core.h>
#include <openssl/evp.h>
#include <openssl/provider.h>

#include "cs_error.h"
#include "token.h"

#define CS_PROVIDER_NAME "credsign-pkcs11"
#define CS_PROVIDER_RAND_NAME "CREDSIGN-TOKEN-RNG"
#define CS_PROVIDER_PROPQ "provider=credsign-pkcs11"
/* For EVP_DigestSign* with a token key: prefer (not require) this provider.
 * The signature still comes from it: its ECDSA wins the preference, and no
 * other provider could use the key, whose private half never exports. The
 * digest that EVP_DigestSignInit_ex also fetches with the same query then
 * resolves to the default provider's SHA-256 (cached) instead of failing
 * and being looked up again on every call (measured: 4.4 -> 2.5 us per
 * init). */
#define CS_PROVIDER_SIGN_PROPQ "?provider=credsign-pkcs11"

/* Add the provider to libctx as a built-in that uses `token` (borrowed: it
 * must outlive the provider) and load it. */
cs_err cs_provider_load(OSSL_LIB_CTX *libctx, cs_token *token, OSSL_PROVIDER **out);

/* Load a private key through OSSL_STORE in libctx: a pkcs11: URI (this
 * provider) or a PEM file (the default provider). NULL on failure, with the
 * reason on OpenSSL's error queue. */
EVP_PKEY *cs_provider_load_key(OSSL_LIB_CTX *libctx, const char *source);
/* The same for a key that signs for `purpose` (NULL or NONE: as
 * cs_provider_load_key). A pkcs11: key carries the purpose and is bound to
 * it (cs_token_bind_key: a key process refuses a key not configured for
 * it, and the load fails with the reason on the error queue); a PEM file
 * ignores it. The purpose travels as the OSSL_STORE ctx parameter
 * CS_PROVIDER_STORE_PARAM_PURPOSE: "certificate", "tls", "profile:NAME". */
EVP_PKEY *cs_provider_load_key_for(OSSL_LIB_CTX *libctx, const char *source, const cs_key_purpose *purpose);
#define CS_PROVIDER_STORE_PARAM_PURPOSE "credsign-key-purpose"

/* Make the token RNG the DRBG of libctx (primary, public and private). */
cs_err cs_provider_use_token_rng(OSSL_LIB_CTX *libctx);

/* The provider's entry point (exported as OSSL_provider_init by the module). */
int cs_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
		     const OSSL_DISPATCH **out, void **provctx);

#endif
