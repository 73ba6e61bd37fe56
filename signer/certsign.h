/*
 * certsign: the ES256 signer of compliance certificates.
 *
 * Signs through the credsign provider (EVP_DigestSign on the token key, so
 * the private key never leaves the token), converts DER to JOSE r || s and
 * verifies every signature with the key's public half before it is used
 * (some tokens have produced well-formed but invalid ECDSA signatures). An
 * invalid signature is retried once; a second one fails with
 * CS_E_SIGNATURE_INVALID. Token failures come back as the token layer's
 * error (CS_E_TOKEN_UNAVAILABLE, ...).
 *
 * Thread-safe after cs_signer_open.
 */
#ifndef CS_CERTSIGN_H
#define CS_CERTSIGN_H

#include <jansson.h>
#include <openssl/evp.h>

#include "cs_error.h"

#define CS_CERT_TYP "credsign-cert+jwt"
#define CS_CHECKPOINT_TYP "credsign-audit-checkpoint+jwt"

typedef struct cs_signer cs_signer;

cs_err cs_signer_open(OSSL_LIB_CTX *libctx, const char *key_uri, cs_signer **out)
	__attribute__((warn_unused_result));
void cs_signer_free(cs_signer *signer);
const char *cs_signer_kid(const cs_signer *signer);
const char *cs_signer_uri(const cs_signer *signer);
/* The public JWK (with kid), owned by the signer. */
const json_t *cs_signer_jwk(const cs_signer *signer);
/* JWS compact of claims with header {"alg":"ES256","typ":typ,"kid":..}. */
cs_err cs_signer_jws(cs_signer *signer, const char *typ, const json_t *claims, char **jws)
	__attribute__((warn_unused_result));

#endif
