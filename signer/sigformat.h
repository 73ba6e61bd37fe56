/*
 * sigformat: the signature formats of delegated signing (signing profiles).
 *
 * - jws: a compact JWS (RFC 7515, ES256 raw r || s) of the claims the
 *   appliance builds from a requester's JSON object payload (it adds iss,
 *   sub, iat, jti, exp, aud and refuses a payload that sets them);
 * - dsse: a DSSE v1 envelope, one signature over PAE(payloadType, body),
 *   sig = standard base64 of the DER ECDSA signature (as cosign/sigstore),
 *   keyid = the key's RFC 7638 thumbprint;
 * - digest: an ECDSA P-256 signature over a given SHA-256 digest, raw
 *   r || s (base64url) and DER (standard base64).
 * "Signed bytes" and their SHA-256: the JWS signing input, the PAE, the
 * digest itself. Signing goes through cs_signer (certsign.h: in the token,
 * verified before it returns); everything else here is pure. The offline
 * verifiers (for the client and tests; the daemon does not use them) check
 * a signature against a JWKS document {"keys":[...]} as the appliance
 * serves it: the key the kid names, its RFC 7638 thumbprint, its status
 * (active or retired, or none given, are trusted; compromised and others
 * are not).
 *
 * Returned strings and buffers are malloc'd and the caller's; JSON
 * returned carries the caller's reference. Errors: CS_E_INVALID_ARG for an
 * input out of its bounds (with a reason where a why buffer is given),
 * CS_E_NOMEM, and the signer's errors. Thread-safe.
 */
#ifndef CS_SIGFORMAT_H
#define CS_SIGFORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "certsign.h"
#include "config.h"
#include "cs_error.h"

/* ---- encodings ----------------------------------------------------------------- */

/* Standard base64 (RFC 4648 section 4, padded, no line breaks) of
 * data[len]; NULL on allocation failure. */
char *cs_sig_b64_encode(const uint8_t *data, size_t len);
/* Decode standard base64: only the canonical padded form (alphabet
 * A-Za-z0-9+/, length a multiple of 4, '=' only as padding, unused bits
 * zero, no whitespace) of at most max decoded bytes; CS_E_TOO_LARGE past
 * max, CS_E_INVALID_ARG otherwise. *out (malloc'd, may be empty) is the
 * caller's. */
cs_err cs_sig_b64_decode(const char *text, size_t max, uint8_t **out, size_t *out_len)
	__attribute__((warn_unused_result));
/* Lower-case hex of SHA-256(data[len]) into out[65]. */
cs_err cs_sig_sha256_hex(const uint8_t *data, size_t len, char out[65]);
/* Lower-case hex of bytes[len] into out[2 * len + 1]. */
void cs_sig_hex(const uint8_t *bytes, size_t len, char *out);

/* ---- jws ------------------------------------------------------------------------ */

/* The first claim of the payload the appliance reserves (iss, sub, iat,
 * exp, nbf, jti; aud when the profile sets aud), NULL when none. */
const char *cs_sig_jws_reserved_claim(const cs_config_profile *p, const json_t *payload);
/* The claims of a profile JWS: the payload (a JSON object) + iss (the
 * profile's iss), sub, iat (now_s), jti, exp (iat + lifetime_seconds when
 * the profile sets a lifetime), aud (the profile's aud: a string when it
 * has one, else an array; absent when it has none). A payload that sets a
 * reserved claim: CS_E_INVALID_ARG, why = "the payload sets reserved claim
 * 'iat' (the appliance sets iss, sub, iat, jti, exp)" (", aud" added when
 * the profile sets aud). A payload that is not an object, an empty sub or
 * jti, now_s < 0: CS_E_INVALID_ARG with a reason. */
cs_err cs_sig_jws_claims(const cs_config_profile *p, const json_t *payload, const char *sub, const char *jti,
			 int64_t now_s, json_t **claims, char *why, size_t why_len)
	__attribute__((warn_unused_result));
/* Compact JWS with the header {"alg":"ES256","typ":typ,"kid":kid} and the
 * claims (compact, sorted keys), signed with cs_signer_sign_message over
 * the signing input; signed_sha256 = hex SHA-256 of the signing input. */
cs_err cs_sig_jws(cs_signer *s, const char *typ, const json_t *claims, char **jws, char signed_sha256[65])
	__attribute__((warn_unused_result));

/* ---- dsse ----------------------------------------------------------------------- */

/* DSSE v1 pre-authentication encoding:
 * "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, LEN in ASCII decimal
 * without leading zeros. payload_type must not be empty. */
cs_err cs_sig_dsse_pae(const char *payload_type, const uint8_t *body, size_t len, uint8_t **pae, size_t *pae_len)
	__attribute__((warn_unused_result));
/* The envelope {"payloadType":T,"payload":b64(body),"signatures":
 * [{"keyid":kid,"sig":b64(DER)}]} (standard base64); *der_b64 = the sig
 * text again (for the record); signed_sha256 = hex SHA-256 of the PAE. */
cs_err cs_sig_dsse(cs_signer *s, const char *payload_type, const uint8_t *body, size_t len, json_t **envelope,
		   char **der_b64, char signed_sha256[65]) __attribute__((warn_unused_result));

/* ---- digest --------------------------------------------------------------------- */

/* A signature over the SHA-256 digest: raw r || s base64url (no padding)
 * and DER standard base64. The signed bytes' SHA-256 is the digest itself
 * (cs_sig_hex(digest, 32, ..)). */
cs_err cs_sig_digest(cs_signer *s, const uint8_t digest[32], char **raw_b64url, char **der_b64)
	__attribute__((warn_unused_result));

/* ---- offline verification ----------------------------------------------------------- */

/* Whether a JWS typ is one of the appliance's own documents' (credential
 * certificates, revocation lists, ...): after an optional "application/"
 * prefix (RFC 7515 4.1.9 lets a typ omit it; compared case-insensitively,
 * as media types are), it starts with "credsign-" in any case. A profile
 * may not configure such a typ (conf/config.c) and the verifier refuses a
 * profile signature that carries one. NULL: false. */
bool cs_sig_typ_reserved(const char *typ);

/* A verifier's answer. code is "" when verified, else a stable reason:
 * malformed, jwks_invalid, unknown_kid, kid_mismatch, key_compromised,
 * key_status, bad_signature, wrong_typ, wrong_payload_type, expired,
 * not_yet_valid. why explains it (texts from the inputs sanitised). */
typedef struct {
	char code[32];
	char why[320];
	char kid[44];      /* the key that verified or was refused ("": none) */
	const json_t *key; /* its JWKS member (borrowed from jwks), or NULL */
	char typ[72];      /* a JWS header's typ ("": none or too long) */
	/* hex SHA-256 of the signed bytes (the JWS signing input, the DSSE
	 * PAE, the digest itself): what the appliance's record and audit entry
	 * name (GET /api/signatures?sha256=). Set once the input parsed, also
	 * when refused afterwards; "" before. */
	char signed_sha256[65];
} cs_sig_verdict;

/* A compact ES256 JWS against jwks ({"keys":[...]}): the header's kid
 * names a trusted key, the signature verifies, typ is `typ` (NULL: any
 * but the appliance's own, cs_sig_typ_reserved: those are refused with
 * wrong_typ whatever `typ` says), and at now_s exp (when present) has not
 * passed and nbf (when present) has come. CS_OK with *claims (the
 * caller's); CS_E_SIGNATURE_INVALID with the verdict's code otherwise
 * (CS_E_NOMEM on allocation failure). */
cs_err cs_sig_verify_jws(const char *jws, const json_t *jwks, const char *typ, int64_t now_s, json_t **claims,
			 cs_sig_verdict *v) __attribute__((warn_unused_result));
/* A DSSE envelope against jwks: payloadType (must be payload_type unless
 * NULL) and payload (standard base64), and a signature whose keyid names
 * a trusted key and whose sig (standard base64 of DER, or of raw r || s)
 * verifies over the PAE. Signatures of keys the JWKS does not list are
 * skipped; one of a compromised key refuses the envelope. CS_OK with
 * *body (may be NULL) the decoded payload; CS_E_SIGNATURE_INVALID with
 * the verdict otherwise. */
cs_err cs_sig_verify_dsse(const json_t *envelope, const json_t *jwks, const char *payload_type, uint8_t **body,
			  size_t *body_len, cs_sig_verdict *v) __attribute__((warn_unused_result));
/* A signature (DER or raw r || s) over a SHA-256 digest by the key kid
 * names, or (kid NULL) by any key of the JWKS; a key that verifies it but
 * is not trusted refuses it. CS_OK / CS_E_SIGNATURE_INVALID with the
 * verdict. */
cs_err cs_sig_verify_digest(const uint8_t digest[32], const uint8_t *sig, size_t sig_len, const json_t *jwks,
			    const char *kid, cs_sig_verdict *v) __attribute__((warn_unused_result));

#endif
