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
/* Decode base64url (no padding, no whitespace) into a new buffer. */
cs_err cs_b64url_decode(const char *text, uint8_t **out, size_t *out_len);

/* The affine coordinates of a P-256 public key, 32 bytes each. */
cs_err cs_p256_coordinates(const EVP_PKEY *pkey, uint8_t x[32], uint8_t y[32]);
/* RFC 7638 thumbprint (SHA-256, base64url): 43 characters + NUL. */
cs_err cs_jwk_thumbprint(const EVP_PKEY *pkey, char kid[44]);
/* {"kty":"EC","crv":"P-256","x":..,"y":..,"kid":..,"alg":"ES256","use":"sig"} */
cs_err cs_jwk_from_pkey(const EVP_PKEY *pkey, json_t **out);

#endif
