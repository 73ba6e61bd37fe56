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
 * Thread-safe after cs_signer_open (and cs_signer_set_x5c, which comes
 * before the signer is shared).
 *
 * A signer is reference counted: cs_signer_open gives the caller one
 * reference, cs_signer_ref adds one, cs_signer_free drops one (the last
 * frees). The daemon's key in force lives in a cs_signer_slot (below),
 * which a key switch swaps: each request holds the signer it took at its
 * start to its end, so a request in flight finishes with that key.
 */
#ifndef CS_CERTSIGN_H
#define CS_CERTSIGN_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "cs_error.h"
#include "token.h"

#define CS_CERT_TYP "credsign-cert+jwt"
#define CS_CHECKPOINT_TYP "credsign-audit-checkpoint+jwt"
#define CS_REVOCATIONS_TYP "credsign-revocations+jwt"

/* x5c (RFC 7515 4.1.6): at most this many certificates, this many bytes
 * of JSON in all */
#define CS_X5C_MAX_CERTS 10
#define CS_X5C_MAX_BYTES 32768

typedef struct cs_signer cs_signer;

cs_err cs_signer_open(OSSL_LIB_CTX *libctx, const char *key_uri, cs_signer **out)
	__attribute__((warn_unused_result));
/* The same for a key that signs for `purpose` (NULL or NONE: as
 * cs_signer_open): loaded with cs_provider_load_key_for, so a key process
 * binds the key to the purpose or refuses it (CS_E_KEY_PURPOSE, logged). */
cs_err cs_signer_open_for(OSSL_LIB_CTX *libctx, const char *key_uri, const cs_key_purpose *purpose,
			  cs_signer **out) __attribute__((warn_unused_result));
/* Another reference to signer (NULL: NULL). */
cs_signer *cs_signer_ref(cs_signer *signer);
/* Drop a reference; the last one frees. NULL is ignored. */
void cs_signer_free(cs_signer *signer);
const char *cs_signer_kid(const cs_signer *signer);
const char *cs_signer_uri(const cs_signer *signer);
/* The public JWK (with kid), owned by the signer. */
const json_t *cs_signer_jwk(const cs_signer *signer);
/* The key's registered X.509 chain for the JWS header: x5c_json is a JSON
 * array of 1..CS_X5C_MAX_CERTS standard base64 DER certificates, leaf
 * first, at most CS_X5C_MAX_BYTES; each must be one whole certificate and
 * the leaf must certify this signer's public key. NULL removes it.
 * CS_E_INVALID_ARG (nothing changed) otherwise, with why[why_len] saying
 * which check failed. Not thread-safe: call before the signer is shared. */
cs_err cs_signer_set_x5c(cs_signer *signer, const char *x5c_json, char *why, size_t why_len)
	__attribute__((warn_unused_result));
/* The chain set (a JSON array owned by the signer), or NULL. */
const json_t *cs_signer_x5c(const cs_signer *signer);
/* JWS compact of claims with header {"alg":"ES256","typ":typ,"kid":..},
 * and "x5c" when a chain is set and typ is CS_CERT_TYP (certificates only:
 * audit checkpoints, revocation lists and rollover statements keep the
 * three members their verifiers require). */
cs_err cs_signer_jws(cs_signer *signer, const char *typ, const json_t *claims, char **jws)
	__attribute__((warn_unused_result));

/* ---- delegated signing -------------------------------------------------------
 * ECDSA P-256 over SHA-256(msg) (cs_signer_sign_message: EVP_DigestSign) or
 * over a given SHA-256 digest (cs_signer_sign_digest: EVP_PKEY_sign), in
 * the token through the provider. Each signature is verified with the
 * key's public half before it returns; an invalid one is retried once,
 * then CS_E_SIGNATURE_INVALID. Outputs: raw r || s (JOSE, RFC 7518 3.4)
 * and the DER ECDSA-Sig-Value; der_len in: der's capacity (at least
 * CS_ES256_DER_MAX, else CS_E_BUFFER_TOO_SMALL), out: its length. Token
 * failures come back as the token layer's error. Thread-safe. */
#define CS_ES256_DER_MAX 72
cs_err cs_signer_sign_message(cs_signer *signer, const uint8_t *msg, size_t len, uint8_t raw[64], uint8_t *der,
			      size_t *der_len) __attribute__((warn_unused_result));
cs_err cs_signer_sign_digest(cs_signer *signer, const uint8_t digest[32], uint8_t raw[64], uint8_t *der,
			     size_t *der_len) __attribute__((warn_unused_result));

/* ---- the key in force --------------------------------------------------------
 * A slot holds the signer in force, or none (no active key: fail closed).
 * Acquiring is "lock, take a reference, unlock": a bare atomic pointer
 * would leave a window between loading it and counting the reference in
 * which a swap could free it. Thread-safe. */
typedef struct cs_signer_slot cs_signer_slot;

/* Takes over the caller's reference to initial (NULL: an empty slot). */
cs_err cs_signer_slot_new(cs_signer *initial, cs_signer_slot **out) __attribute__((warn_unused_result));
void cs_signer_slot_free(cs_signer_slot *slot);
/* The signer in force with a reference of the caller's own (release it
 * with cs_signer_free), or NULL when the slot is empty (or slot is NULL). */
cs_signer *cs_signer_acquire(cs_signer_slot *slot);
/* Put next in force (taking over the caller's reference; NULL empties the
 * slot); the previous signer is released (holders keep theirs). */
void cs_signer_slot_swap(cs_signer_slot *slot, cs_signer *next);
/* The kid in force into kid[44], "" when the slot is empty. */
void cs_signer_slot_kid(cs_signer_slot *slot, char kid[44]);

#endif
