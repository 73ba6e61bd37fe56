/*
 * jose: the JOSE pieces credsign needs (RFC 7515/7517/7518/7638).
 *
 * base64url without padding, P-256 public keys as JWKs, and RFC 7638 JWK
 * thumbprints used as key ids. Encoding uses OpenSSL's base64; no hand-made
 * crypto. Returned strings are malloc'd and owned by the caller. Thread-safe.
 */
#ifndef CS_JOSE_H
#define CS_JOSE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "cs_error.h"

/* base64url of data[len], no padding. NULL on allocation failure. */
char *cs_b64url_encode(const uint8_t *data, size_t len);
/* Decode base64url into a new buffer. Only the canonical encoding is
 * accepted (what cs_b64url_encode gives): the URL-safe alphabet, no padding,
 * no whitespace, length mod 4 != 1 and the unused low bits of the last
 * character zero, so a signature or key has exactly one text form.
 * CS_E_INVALID_ARG otherwise. */
cs_err cs_b64url_decode(const char *text, uint8_t **out, size_t *out_len);

/* The affine coordinates of a P-256 public key, 32 bytes each. */
cs_err cs_p256_coordinates(const EVP_PKEY *pkey, uint8_t x[32], uint8_t y[32]);
/* RFC 7638 thumbprint (SHA-256, base64url): 43 characters + NUL. */
cs_err cs_jwk_thumbprint(const EVP_PKEY *pkey, char kid[44]);
/* {"kty":"EC","crv":"P-256","x":..,"y":..,"kid":..,"alg":"ES256","use":"sig"} */
cs_err cs_jwk_from_pkey(const EVP_PKEY *pkey, json_t **out);
/* The P-256 public key of a JWK {"kty":"EC","crv":"P-256","x","y"} (x and
 * y canonical base64url of 32 bytes, a point on the curve; other members
 * ignored); when kid is not NULL, the key's RFC 7638 thumbprint must be
 * kid. NULL otherwise. */
EVP_PKEY *cs_jwk_to_pkey(const json_t *jwk, const char *kid);

/* JWS compact serialization (RFC 7515) with ES256 (RFC 7518 3.4).
 * The signing input is BASE64URL(header) "." BASE64URL(payload); the
 * signature is raw r || s. Header and payload are serialized compactly with
 * sorted keys. */
typedef cs_err (*cs_es256_sign_fn)(void *ctx, const uint8_t *input, size_t len, uint8_t raw[64]);
cs_err cs_jws_es256_sign(const json_t *header, const json_t *payload, cs_es256_sign_fn sign,
			 void *ctx, char **jws_out);
/* Verify a compact ES256 JWS with a public key; on success return the
 * decoded header and payload (owned by the caller). Rejects any alg but
 * ES256, malformed parts and signatures of the wrong size. */
cs_err cs_jws_es256_verify(const char *jws, EVP_PKEY *pub, json_t **header, json_t **payload);
/* Split a compact JWS and decode its header without verifying (to read kid). */
cs_err cs_jws_peek_header(const char *jws, json_t **header);
/* Header and payload without verifying (for display; verifiers verify). */
cs_err cs_jws_peek(const char *jws, json_t **header, json_t **payload);

#endif
