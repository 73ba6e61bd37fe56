/*
 * ec_util: conversions between what PKCS#11 tokens return and OpenSSL.
 *
 * - CKA_EC_POINT comes as a DER OCTET STRING wrapping the X9.62 point (as the
 *   standard says) or, from some tokens, as the bare point; both are accepted.
 * - CKA_EC_PARAMS names the curve by OID, by explicit parameters or by name.
 * - CKA_PUBLIC_KEY_INFO (on a private key whose token keeps no public
 *   object) is a SubjectPublicKeyInfo.
 * - CKM_ECDSA returns r || s; some HSMs return a DER ECDSA-Sig-Value instead.
 *   The shape is detected (length 64 = raw, else a DER SEQUENCE that parses
 *   completely), never guessed twice.
 * Pure functions on caller buffers; thread-safe.
 */
#ifndef CS_EC_UTIL_H
#define CS_EC_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "cs_error.h"

/* Property query that excludes credsign's own provider: software keys made
 * here must come from a provider that implements them in software. */
#define CS_NOT_TOKEN_PROVIDER "provider!=credsign-pkcs11"

/* DER of the P-256 OID as CKA_EC_PARAMS holds it (what credsign asks for
 * when it generates a key). */
extern const uint8_t cs_p256_ec_params[10];

/* Does a CKA_EC_PARAMS value name P-256? Any form of the X9.62 Parameters
 * choice PKCS#11 allows, parsed with OpenSSL: the named curve's OBJECT
 * IDENTIFIER (1.2.840.10045.3.1.7), explicit parameters equal to P-256's,
 * or (PKCS#11 3.0) the curve's name as a PrintableString ("prime256v1",
 * "P-256", "secp256r1"). The whole value must parse. CS_OK or
 * CS_E_KEY_TYPE. */
cs_err cs_ec_params_is_p256(const uint8_t *der, size_t len);

/* Build a P-256 public key from a CKA_EC_POINT value. */
cs_err cs_ec_point_to_pkey(const uint8_t *attr, size_t len, EVP_PKEY **out);
/* Build a P-256 public key from a CKA_PUBLIC_KEY_INFO value (a DER
 * SubjectPublicKeyInfo, parsed whole by OpenSSL); another key type or curve
 * is CS_E_KEY_TYPE, a value that does not parse CS_E_TOKEN_DATA. */
cs_err cs_spki_to_pkey(const uint8_t *der, size_t len, EVP_PKEY **out);
/* Normalise a token's ECDSA P-256 signature to raw r || s. */
cs_err cs_ecdsa_sig_to_raw(const uint8_t *sig, size_t len, uint8_t raw[64]);
/* raw r || s -> DER ECDSA-Sig-Value (at most 72 bytes). */
cs_err cs_ecdsa_raw_to_der(const uint8_t raw[64], uint8_t der[72], size_t *der_len);
/* DER ECDSA-Sig-Value -> raw r || s; rejects trailing bytes and big values. */
cs_err cs_ecdsa_der_to_raw(const uint8_t *der, size_t der_len, uint8_t raw[64]);

#endif
