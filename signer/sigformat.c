/* sigformat: see sigformat.h. */
#include "sigformat.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "ec_util.h"
#include "jose.h"
#include "json_text.h"

/* The largest text the encoders take and the decoders give (the largest
 * profile payload is 16 MiB, its base64 a third more). */
#define B64_MAX_DECODED ((size_t)64 << 20)
/* The largest compact JWS the verifier reads. */
#define JWS_TEXT_MAX ((size_t)64 << 20)

/* ---- encodings ------------------------------------------------------------------- */

char *cs_sig_b64_encode(const uint8_t *data, size_t len)
{
	if (len > B64_MAX_DECODED || (data == NULL && len > 0))
		return NULL;
	char *out = malloc(4 * ((len + 2) / 3) + 1);
	if (out == NULL)
		return NULL;
	if (len == 0)
		out[0] = '\0';
	else
		(void)EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

static int b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

cs_err cs_sig_b64_decode(const char *text, size_t max, uint8_t **out, size_t *out_len)
{
	*out = NULL;
	*out_len = 0;
	if (text == NULL)
		return CS_E_INVALID_ARG;
	size_t n = strnlen(text, B64_MAX_DECODED / 3 * 4 + 5);
	if (n % 4 != 0 || n > B64_MAX_DECODED / 3 * 4)
		return n > B64_MAX_DECODED / 3 * 4 ? CS_E_TOO_LARGE : CS_E_INVALID_ARG;
	size_t pad = n > 0 && text[n - 1] == '=' ? (text[n - 2] == '=' ? 2 : 1) : 0;
	for (size_t i = 0; i < n - pad; i++)
		if (!b64_char(text[i]))
			return CS_E_INVALID_ARG;
	size_t len = n / 4 * 3 - pad;
	if (len > max)
		return CS_E_TOO_LARGE;
	uint8_t *buf = malloc(n / 4 * 3 + 1);
	if (buf == NULL)
		return CS_E_NOMEM;
	int got = n > 0 ? EVP_DecodeBlock(buf, (const unsigned char *)text, (int)n) : 0;
	/* canonical: encoding the bytes again gives the text (unused bits zero) */
	char *again = got >= 0 ? cs_sig_b64_encode(buf, len) : NULL;
	int canonical = again != NULL && strcmp(again, text) == 0;
	cs_err r = got < 0 || again != NULL ? CS_E_INVALID_ARG : CS_E_NOMEM;
	free(again);
	if (!canonical) {
		OPENSSL_cleanse(buf, n / 4 * 3 + 1);
		free(buf);
		return r;
	}
	*out = buf;
	*out_len = len;
	return CS_OK;
}

void cs_sig_hex(const uint8_t *bytes, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 15];
	}
	out[2 * len] = '\0';
}

cs_err cs_sig_sha256_hex(const uint8_t *data, size_t len, char out[65])
{
	uint8_t md[32];
	unsigned int md_len = 0;
	out[0] = '\0';
	if ((data == NULL && len > 0) || EVP_Digest(data != NULL ? data : (const uint8_t *)"", len, md, &md_len,
						    EVP_sha256(), NULL) != 1 || md_len != 32) {
		ERR_clear_error();
		return CS_E_CRYPTO;
	}
	cs_sig_hex(md, 32, out);
	return CS_OK;
}

/* ---- jws ------------------------------------------------------------------------- */

static const char *const reserved_claims[] = {"iss", "sub", "iat", "exp", "nbf", "jti", NULL};

static size_t aud_count(const cs_config_profile *p)
{
	size_t n = 0;
	while (p->aud != NULL && p->aud[n] != NULL)
		n++;
	return n;
}

const char *cs_sig_jws_reserved_claim(const cs_config_profile *p, const json_t *payload)
{
	for (size_t i = 0; reserved_claims[i] != NULL; i++)
		if (json_object_get(payload, reserved_claims[i]) != NULL)
			return reserved_claims[i];
	if (aud_count(p) > 0 && json_object_get(payload, "aud") != NULL)
		return "aud";
	return NULL;
}

static cs_err why_invalid(char *why, size_t why_len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static cs_err why_invalid(char *why, size_t why_len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (why != NULL && why_len > 0)
		vsnprintf(why, why_len, fmt, ap);
	va_end(ap);
	return CS_E_INVALID_ARG;
}

static json_t *aud_claim(const cs_config_profile *p)
{
	size_t n = aud_count(p);
	if (n == 1)
		return json_string(p->aud[0]);
	json_t *a = json_array();
	for (size_t i = 0; a != NULL && i < n; i++)
		if (json_array_append_new(a, json_string(p->aud[i])) != 0) {
			json_decref(a);
			a = NULL;
		}
	return a;
}

cs_err cs_sig_jws_claims(const cs_config_profile *p, const json_t *payload, const char *sub, const char *jti,
			 int64_t now_s, json_t **claims, char *why, size_t why_len)
{
	*claims = NULL;
	if (why != NULL && why_len > 0)
		why[0] = '\0';
	if (p == NULL || !json_is_object(payload))
		return why_invalid(why, why_len, "the payload is not a JSON object");
	/* (the lifetime checked before it is subtracted: INT64_MAX - -1 overflows) */
	if (sub == NULL || sub[0] == '\0' || jti == NULL || jti[0] == '\0' || now_s < 0 || p->lifetime_seconds < 0 ||
	    now_s > INT64_MAX - p->lifetime_seconds)
		return why_invalid(why, why_len, "the claims need a subject, an id and a time");
	const char *claim = cs_sig_jws_reserved_claim(p, payload);
	if (claim != NULL)
		return why_invalid(why, why_len,
				   "the payload sets reserved claim '%s' (the appliance sets iss, sub, iat, jti, exp%s)",
				   claim, aud_count(p) > 0 ? ", aud" : "");
	json_t *c = json_deep_copy(payload);
	if (c != NULL && !json_equal(c, payload)) { /* a member lost to a failed allocation */
		json_decref(c);
		c = NULL;
	}
	int bad = c == NULL;
	if (!bad && p->iss != NULL && p->iss[0] != '\0')
		bad |= json_object_set_new(c, "iss", json_string(p->iss)) != 0;
	if (!bad)
		bad |= json_object_set_new(c, "sub", json_string(sub)) != 0 ||
		       json_object_set_new(c, "iat", json_integer((json_int_t)now_s)) != 0 ||
		       json_object_set_new(c, "jti", json_string(jti)) != 0;
	if (!bad && p->lifetime_seconds > 0)
		bad |= json_object_set_new(c, "exp", json_integer((json_int_t)(now_s + p->lifetime_seconds))) != 0;
	if (!bad && aud_count(p) > 0)
		bad |= json_object_set_new(c, "aud", aud_claim(p)) != 0;
	if (bad) {
		/* json_string of text that is not UTF-8 gives NULL too */
		json_decref(c);
		return c == NULL ? CS_E_NOMEM : why_invalid(why, why_len, "a claim is not valid UTF-8");
	}
	*claims = c;
	return CS_OK;
}

typedef struct {
	cs_signer *signer;
	char *signed_sha256; /* [65] */
} jws_sign_ctx;

static cs_err jws_sign_input(void *arg, const uint8_t *input, size_t len, uint8_t raw[64])
{
	jws_sign_ctx *x = arg;
	uint8_t der[CS_ES256_DER_MAX];
	size_t der_len = sizeof(der);
	cs_err r = cs_sig_sha256_hex(input, len, x->signed_sha256);
	return r != CS_OK ? r : cs_signer_sign_message(x->signer, input, len, raw, der, &der_len);
}

cs_err cs_sig_jws(cs_signer *s, const char *typ, const json_t *claims, char **jws, char signed_sha256[65])
{
	*jws = NULL;
	signed_sha256[0] = '\0';
	if (s == NULL || typ == NULL || typ[0] == '\0' || !json_is_object(claims))
		return CS_E_INVALID_ARG;
	json_t *header = json_pack("{s:s, s:s, s:s}", "alg", "ES256", "typ", typ, "kid", cs_signer_kid(s));
	if (header == NULL)
		return CS_E_NOMEM;
	jws_sign_ctx x = {s, signed_sha256};
	cs_err r = cs_jws_es256_sign(header, claims, jws_sign_input, &x, jws);
	json_decref(header);
	if (r != CS_OK)
		signed_sha256[0] = '\0';
	return r;
}

/* ---- dsse ------------------------------------------------------------------------ */

cs_err cs_sig_dsse_pae(const char *payload_type, const uint8_t *body, size_t len, uint8_t **pae, size_t *pae_len)
{
	*pae = NULL;
	*pae_len = 0;
	if (payload_type == NULL || payload_type[0] == '\0' || (body == NULL && len > 0) || len > B64_MAX_DECODED)
		return CS_E_INVALID_ARG;
	size_t tl = strnlen(payload_type, 4096);
	if (tl == 4096)
		return CS_E_INVALID_ARG;
	char head[64];
	/* "DSSEv1" SP LEN(type) SP */
	int hn = snprintf(head, sizeof(head), "DSSEv1 %zu ", tl);
	char mid[32];
	/* SP LEN(body) SP */
	int mn = snprintf(mid, sizeof(mid), " %zu ", len);
	size_t total = (size_t)hn + tl + (size_t)mn + len;
	uint8_t *out = malloc(total > 0 ? total : 1);
	if (out == NULL)
		return CS_E_NOMEM;
	uint8_t *p = out;
	memcpy(p, head, (size_t)hn);
	p += hn;
	memcpy(p, payload_type, tl);
	p += tl;
	memcpy(p, mid, (size_t)mn);
	p += mn;
	if (len > 0)
		memcpy(p, body, len);
	*pae = out;
	*pae_len = total;
	return CS_OK;
}

cs_err cs_sig_dsse(cs_signer *s, const char *payload_type, const uint8_t *body, size_t len, json_t **envelope,
		   char **der_b64, char signed_sha256[65])
{
	uint8_t *pae = NULL, raw[64], der[CS_ES256_DER_MAX];
	size_t pae_len = 0, der_len = sizeof(der);
	char *body_b64 = NULL;
	*envelope = NULL;
	*der_b64 = NULL;
	signed_sha256[0] = '\0';
	if (s == NULL)
		return CS_E_INVALID_ARG;
	cs_err r = cs_sig_dsse_pae(payload_type, body, len, &pae, &pae_len);
	if (r != CS_OK || (r = cs_sig_sha256_hex(pae, pae_len, signed_sha256)) != CS_OK ||
	    (r = cs_signer_sign_message(s, pae, pae_len, raw, der, &der_len)) != CS_OK)
		goto out;
	r = CS_E_NOMEM;
	if ((body_b64 = cs_sig_b64_encode(body, len)) == NULL || (*der_b64 = cs_sig_b64_encode(der, der_len)) == NULL)
		goto out;
	*envelope = json_pack("{s:s, s:s, s:[{s:s, s:s}]}", "payloadType", payload_type, "payload", body_b64,
			      "signatures", "keyid", cs_signer_kid(s), "sig", *der_b64);
	if (*envelope == NULL) {
		/* json_pack refuses a payload type that is not UTF-8 */
		r = CS_E_INVALID_ARG;
		goto out;
	}
	r = CS_OK;
out:
	if (r != CS_OK) {
		free(*der_b64);
		*der_b64 = NULL;
		signed_sha256[0] = '\0';
	}
	free(pae);
	free(body_b64);
	return r;
}

/* ---- digest ---------------------------------------------------------------------- */

cs_err cs_sig_digest(cs_signer *s, const uint8_t digest[32], char **raw_b64url, char **der_b64)
{
	uint8_t raw[64], der[CS_ES256_DER_MAX];
	size_t der_len = sizeof(der);
	*raw_b64url = *der_b64 = NULL;
	if (s == NULL || digest == NULL)
		return CS_E_INVALID_ARG;
	cs_err r = cs_signer_sign_digest(s, digest, raw, der, &der_len);
	if (r != CS_OK)
		return r;
	*raw_b64url = cs_b64url_encode(raw, sizeof(raw));
	*der_b64 = cs_sig_b64_encode(der, der_len);
	if (*raw_b64url == NULL || *der_b64 == NULL) {
		free(*raw_b64url);
		free(*der_b64);
		*raw_b64url = *der_b64 = NULL;
		return CS_E_NOMEM;
	}
	return CS_OK;
}

/* ---- offline verification --------------------------------------------------------- */

static cs_err refuse(cs_sig_verdict *v, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static cs_err refuse(cs_sig_verdict *v, const char *code, const char *fmt, ...)
{
	va_list ap;
	snprintf(v->code, sizeof(v->code), "%s", code);
	va_start(ap, fmt);
	vsnprintf(v->why, sizeof(v->why), fmt, ap);
	va_end(ap);
	for (char *p = v->why; *p != '\0'; p++) /* texts from the inputs */
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return CS_E_SIGNATURE_INVALID;
}

static void verdict_clear(cs_sig_verdict *v)
{
	memset(v, 0, sizeof(*v));
}

bool cs_sig_typ_reserved(const char *typ)
{
	if (typ == NULL)
		return false;
	if (strncasecmp(typ, "application/", 12) == 0)
		typ += 12;
	return strncasecmp(typ, "credsign-", 9) == 0;
}

/* A kid for messages: the text when it looks like a thumbprint, else "?". */
static const char *kid_text(const char *kid)
{
	if (kid == NULL || strlen(kid) != 43)
		return "(not a thumbprint)";
	for (const char *p = kid; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		      *p == '_'))
			return "(not a thumbprint)";
	return kid;
}

/* The JWKS's keys array; NULL after refusing (jwks_invalid) a document that
 * is not {"keys":[objects with distinct kids]}. */
static const json_t *jwks_keys(const json_t *jwks, cs_sig_verdict *v)
{
	const json_t *keys = json_object_get(jwks, "keys"), *k;
	size_t i;
	if (!json_is_array(keys)) {
		refuse(v, "jwks_invalid", "the JWKS is not a JSON Web Key Set {\"keys\":[...]}");
		return NULL;
	}
	json_array_foreach(keys, i, k) {
		const char *kid = json_string_value(json_object_get(k, "kid"));
		if (!json_is_object(k)) {
			refuse(v, "jwks_invalid", "the JWKS has a member that is not a key");
			return NULL;
		}
		for (size_t j = 0; kid != NULL && j < i; j++) {
			const char *other = json_string_value(json_object_get(json_array_get(keys, j), "kid"));
			if (other != NULL && strcmp(other, kid) == 0) {
				refuse(v, "jwks_invalid", "the JWKS lists the kid %s more than once", kid_text(kid));
				return NULL;
			}
		}
	}
	return keys;
}

/* Whether the JWKS member's status lets its signatures be trusted; refuses
 * (key_compromised, key_status) otherwise. */
static int key_trusted(const json_t *key, const char *kid, cs_sig_verdict *v)
{
	const char *status = json_string_value(json_object_get(key, "status"));
	const char *since = json_string_value(json_object_get(key, "compromised_at"));
	if (status != NULL && strcmp(status, "compromised") == 0) {
		refuse(v, "key_compromised", "signing key %s is compromised since %s", kid_text(kid),
		       since != NULL ? since : "an unknown time");
		return 0;
	}
	if (status != NULL && strcmp(status, "active") != 0 && strcmp(status, "retired") != 0) {
		refuse(v, "key_status", "signing key %s has the status '%s': only active and retired keys are trusted",
		       kid_text(kid), status);
		return 0;
	}
	return 1;
}

/* The public key of a JWKS member, checked against its kid (RFC 7638);
 * NULL after refusing (malformed key: unknown_kid; kid_mismatch). */
static EVP_PKEY *member_key(const json_t *key, const char *kid, cs_sig_verdict *v)
{
	EVP_PKEY *pub = cs_jwk_to_pkey(key, NULL);
	char thumb[44];
	ERR_clear_error();
	if (pub == NULL) {
		refuse(v, "unknown_kid", "the JWKS's key %s is not a usable EC P-256 key", kid_text(kid));
		return NULL;
	}
	if (cs_jwk_thumbprint(pub, thumb) != CS_OK || kid == NULL || strcmp(thumb, kid) != 0) {
		refuse(v, "kid_mismatch", "the JWKS's key %s has another RFC 7638 thumbprint", kid_text(kid));
		EVP_PKEY_free(pub);
		return NULL;
	}
	return pub;
}

/* The trusted key kid names: its public key (the caller's) and member; NULL
 * after refusing. */
static EVP_PKEY *trusted_key(const json_t *keys, const char *kid, cs_sig_verdict *v)
{
	const json_t *k, *key = NULL;
	size_t i;
	json_array_foreach(keys, i, k) {
		const char *kk = json_string_value(json_object_get(k, "kid"));
		if (kid != NULL && kk != NULL && strcmp(kk, kid) == 0)
			key = k;
	}
	if (key == NULL) {
		refuse(v, "unknown_kid", "the JWKS has no key with the kid %s", kid_text(kid));
		return NULL;
	}
	snprintf(v->kid, sizeof(v->kid), "%s", kid);
	v->key = key;
	EVP_PKEY *pub = member_key(key, kid, v);
	if (pub != NULL && !key_trusted(key, kid, v)) {
		EVP_PKEY_free(pub);
		return NULL;
	}
	return pub;
}

/* A signature's bytes as r || s: DER (parsed whole) or raw. */
static int sig_raw(const uint8_t *sig, size_t len, uint8_t raw[64])
{
	if (cs_ecdsa_der_to_raw(sig, len, raw) == CS_OK)
		return 1;
	ERR_clear_error();
	if (len != 64)
		return 0;
	memcpy(raw, sig, 64);
	return 1;
}

/* ECDSA P-256 verification of raw r || s over SHA-256(msg) (digest NULL)
 * or over the digest, in software. */
static int es256_verify(EVP_PKEY *pub, const uint8_t *msg, size_t len, const uint8_t *digest, const uint8_t raw[64])
{
	uint8_t der[CS_ES256_DER_MAX];
	size_t der_len = 0;
	int good = 0;
	if (cs_ecdsa_raw_to_der(raw, der, &der_len) != CS_OK) {
		ERR_clear_error();
		return 0;
	}
	if (digest == NULL) {
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		good = md != NULL &&
		       EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, CS_NOT_TOKEN_PROVIDER, pub, NULL) == 1 &&
		       EVP_DigestVerify(md, der, der_len, msg, len) == 1;
		EVP_MD_CTX_free(md);
	} else {
		EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_pkey(NULL, pub, CS_NOT_TOKEN_PROVIDER);
		good = pc != NULL && EVP_PKEY_verify_init(pc) == 1 &&
		       EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) == 1 &&
		       EVP_PKEY_verify(pc, der, der_len, digest, 32) == 1;
		EVP_PKEY_CTX_free(pc);
	}
	ERR_clear_error();
	return good;
}

/* A base64url part of a compact JWS: a JSON object (no duplicate members),
 * or NULL. Parsed exactly (json_text.h): the claims returned are the ones
 * signed, never a string or number cut short when memory ran out. */
static json_t *jws_json_part(const char *text, size_t len)
{
	char *part = strndup(text, len);
	uint8_t *bytes = NULL;
	size_t n = 0;
	int nomem = 0;
	json_t *j = NULL;
	if (part != NULL && cs_b64url_decode(part, &bytes, &n) == CS_OK)
		j = cs_json_load_exact((const char *)bytes, n, JSON_REJECT_DUPLICATES, &nomem);
	free(part);
	free(bytes);
	if (!json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static cs_err jws_times(const json_t *claims, int64_t now_s, cs_sig_verdict *v)
{
	const json_t *exp = json_object_get(claims, "exp"), *nbf = json_object_get(claims, "nbf");
	char when[32];
	if ((exp != NULL && !json_is_integer(exp)) || (nbf != NULL && !json_is_integer(nbf)))
		return refuse(v, "malformed", "the claim exp or nbf is not a NumericDate");
	if (exp != NULL && now_s >= json_integer_value(exp)) {
		time_t t = (time_t)json_integer_value(exp);
		struct tm tm;
		if (gmtime_r(&t, &tm) == NULL || strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
			snprintf(when, sizeof(when), "%lld", (long long)json_integer_value(exp));
		return refuse(v, "expired", "the JWS expired at %s (exp)", when);
	}
	if (nbf != NULL && now_s < json_integer_value(nbf))
		return refuse(v, "not_yet_valid", "the JWS is not valid before %lld (nbf)",
			      (long long)json_integer_value(nbf));
	return CS_OK;
}

cs_err cs_sig_verify_jws(const char *jws, const json_t *jwks, const char *typ, int64_t now_s, json_t **claims,
			 cs_sig_verdict *v)
{
	json_t *header = NULL, *payload = NULL;
	EVP_PKEY *pub = NULL;
	uint8_t *sig = NULL;
	size_t sig_len = 0;
	*claims = NULL;
	verdict_clear(v);
	const json_t *keys = jwks_keys(jwks, v);
	if (keys == NULL)
		return CS_E_SIGNATURE_INVALID;
	size_t n = jws != NULL ? strnlen(jws, JWS_TEXT_MAX + 1) : 0;
	const char *d1 = n > 0 && n <= JWS_TEXT_MAX ? memchr(jws, '.', n) : NULL;
	const char *d2 = d1 != NULL ? memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - jws)) : NULL;
	cs_err r = CS_E_SIGNATURE_INVALID;
	if (d2 == NULL || strchr(d2 + 1, '.') != NULL || (header = jws_json_part(jws, (size_t)(d1 - jws))) == NULL ||
	    (payload = jws_json_part(d1 + 1, (size_t)(d2 - d1 - 1))) == NULL ||
	    cs_b64url_decode(d2 + 1, &sig, &sig_len) != CS_OK) {
		refuse(v, "malformed", "not a JWS compact serialization of a JSON object");
		goto out;
	}
	const char *alg = json_string_value(json_object_get(header, "alg"));
	const char *kid = json_string_value(json_object_get(header, "kid"));
	const char *htyp = json_string_value(json_object_get(header, "typ"));
	if (htyp != NULL && strlen(htyp) < sizeof(v->typ))
		snprintf(v->typ, sizeof(v->typ), "%s", htyp);
	if (alg == NULL || strcmp(alg, "ES256") != 0 || json_object_get(header, "crit") != NULL) {
		refuse(v, "malformed", "the JWS header's alg is not ES256 (or it has crit)");
		goto out;
	}
	if ((r = cs_sig_sha256_hex((const uint8_t *)jws, (size_t)(d2 - jws), v->signed_sha256)) != CS_OK)
		goto out;
	r = CS_E_SIGNATURE_INVALID;
	if (json_object_get(header, "typ") != NULL && htyp == NULL) {
		refuse(v, "malformed", "the JWS header's typ is not a string");
		goto out;
	}
	/* credsign's own documents (certificates, revocation lists) are checked
	 * by `credsign verify`, never accepted as a profile signature */
	if (cs_sig_typ_reserved(htyp)) {
		refuse(v, "wrong_typ", "typ %.80s is a credsign document, not a profile signature (credsign verify "
		       "checks certificates)", htyp);
		goto out;
	}
	if ((pub = trusted_key(keys, kid, v)) == NULL)
		goto out;
	if (sig_len != 64 || !es256_verify(pub, (const uint8_t *)jws, (size_t)(d2 - jws), NULL, sig)) {
		refuse(v, "bad_signature", "the signature does not verify with key %s", kid_text(kid));
		goto out;
	}
	if (typ != NULL && (htyp == NULL || strcmp(htyp, typ) != 0)) {
		refuse(v, "wrong_typ", "the header typ is not %s", typ);
		goto out;
	}
	if (jws_times(payload, now_s, v) != CS_OK)
		goto out;
	*claims = payload;
	payload = NULL;
	r = CS_OK;
out:
	json_decref(header);
	json_decref(payload);
	free(sig);
	EVP_PKEY_free(pub);
	return r;
}

/* One DSSE signature: 1 verified, 0 refused (v says why). */
static int dsse_one(const json_t *sig, const json_t *keys, const uint8_t *pae, size_t pae_len, cs_sig_verdict *v)
{
	const char *kid = json_string_value(json_object_get(sig, "keyid"));
	const char *text = json_string_value(json_object_get(sig, "sig"));
	uint8_t *bytes = NULL, raw[64];
	size_t len = 0;
	if (text == NULL || cs_sig_b64_decode(text, 1024, &bytes, &len) != CS_OK || !sig_raw(bytes, len, raw)) {
		free(bytes);
		refuse(v, "malformed", "a signature's sig is not standard base64 of an ECDSA signature");
		return 0;
	}
	free(bytes);
	EVP_PKEY *pub = trusted_key(keys, kid, v);
	int good = pub != NULL && es256_verify(pub, pae, pae_len, NULL, raw);
	if (pub != NULL && !good)
		refuse(v, "bad_signature", "the signature does not verify with key %s", kid_text(kid));
	EVP_PKEY_free(pub);
	return good;
}

cs_err cs_sig_verify_dsse(const json_t *envelope, const json_t *jwks, const char *payload_type, uint8_t **body,
			  size_t *body_len, cs_sig_verdict *v)
{
	uint8_t *data = NULL, *pae = NULL;
	size_t len = 0, pae_len = 0, i;
	*body = NULL;
	*body_len = 0;
	verdict_clear(v);
	const json_t *keys = jwks_keys(jwks, v);
	if (keys == NULL)
		return CS_E_SIGNATURE_INVALID;
	const char *type = json_string_value(json_object_get(envelope, "payloadType"));
	const json_t *sigs = json_object_get(envelope, "signatures"), *sig;
	cs_err r = CS_E_SIGNATURE_INVALID;
	if (type == NULL || type[0] == '\0' || !json_is_array(sigs) || json_array_size(sigs) == 0 ||
	    cs_sig_b64_decode(json_string_value(json_object_get(envelope, "payload")), B64_MAX_DECODED, &data, &len) !=
		    CS_OK) {
		refuse(v, "malformed", "not a DSSE envelope (payloadType, payload in standard base64, signatures)");
		goto out;
	}
	if (payload_type != NULL && strcmp(type, payload_type) != 0) {
		refuse(v, "wrong_payload_type", "the payloadType is not %s", payload_type);
		goto out;
	}
	if ((r = cs_sig_dsse_pae(type, data, len, &pae, &pae_len)) != CS_OK) {
		r = refuse(v, "malformed", "the payloadType is too long");
		goto out;
	}
	char signed_sha256[65];
	if ((r = cs_sig_sha256_hex(pae, pae_len, signed_sha256)) != CS_OK)
		goto out;
	r = CS_E_SIGNATURE_INVALID;
	/* the first signature that verifies with a trusted key; else the
	 * reason of the first one whose key the JWKS knows */
	cs_sig_verdict first, one;
	verdict_clear(&first);
	json_array_foreach(sigs, i, sig) {
		verdict_clear(&one);
		if (dsse_one(sig, keys, pae, pae_len, &one)) {
			*v = one;
			v->code[0] = v->why[0] = '\0';
			r = CS_OK;
			break;
		}
		if (first.code[0] == '\0' || (strcmp(first.code, "unknown_kid") == 0 && strcmp(one.code, "unknown_kid") != 0))
			first = one;
	}
	if (r != CS_OK) {
		*v = first;
		memcpy(v->signed_sha256, signed_sha256, sizeof(v->signed_sha256));
		goto out;
	}
	memcpy(v->signed_sha256, signed_sha256, sizeof(v->signed_sha256));
	*body = data;
	*body_len = len;
	data = NULL;
out:
	free(data);
	free(pae);
	return r;
}

cs_err cs_sig_verify_digest(const uint8_t digest[32], const uint8_t *sig, size_t sig_len, const json_t *jwks,
			    const char *kid, cs_sig_verdict *v)
{
	uint8_t raw[64];
	verdict_clear(v);
	const json_t *keys = jwks_keys(jwks, v), *k;
	size_t i;
	if (keys == NULL)
		return CS_E_SIGNATURE_INVALID;
	if (digest == NULL)
		return refuse(v, "malformed", "no digest");
	cs_sig_hex(digest, 32, v->signed_sha256);
	if (sig == NULL || !sig_raw(sig, sig_len, raw))
		return refuse(v, "malformed", "the signature is neither a DER ECDSA signature nor raw r || s");
	if (kid != NULL) {
		EVP_PKEY *pub = trusted_key(keys, kid, v);
		int good = pub != NULL && es256_verify(pub, NULL, 0, digest, raw);
		EVP_PKEY_free(pub);
		if (pub != NULL && !good)
			return refuse(v, "bad_signature", "the signature does not verify with key %s", kid_text(kid));
		return good ? CS_OK : CS_E_SIGNATURE_INVALID;
	}
	/* no kid: the key of the JWKS that verifies it, which must be trusted */
	json_array_foreach(keys, i, k) {
		const char *kk = json_string_value(json_object_get(k, "kid"));
		cs_sig_verdict ignored;
		verdict_clear(&ignored);
		EVP_PKEY *pub = member_key(k, kk, &ignored);
		int good = pub != NULL && es256_verify(pub, NULL, 0, digest, raw);
		EVP_PKEY_free(pub);
		if (!good)
			continue;
		snprintf(v->kid, sizeof(v->kid), "%s", kk);
		v->key = k;
		return key_trusted(k, kk, v) ? CS_OK : CS_E_SIGNATURE_INVALID;
	}
	return refuse(v, "bad_signature", "no key of the JWKS verifies the signature");
}
