/* jose: see jose.h. */
#include "jose.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/sha.h>

#include "ec_util.h"
#include "json_text.h"

char *cs_b64url_encode(const uint8_t *data, size_t len)
{
	if (len > 1u << 28)
		return NULL;
	size_t cap = 4 * ((len + 2) / 3) + 1;
	char *out = malloc(cap);
	if (out == NULL)
		return NULL;
	int n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	while (n > 0 && out[n - 1] == '=')
		n--;
	out[n] = '\0';
	for (int i = 0; i < n; i++) {
		if (out[i] == '+')
			out[i] = '-';
		else if (out[i] == '/')
			out[i] = '_';
	}
	return out;
}

cs_err cs_b64url_decode(const char *text, uint8_t **out, size_t *out_len)
{
	*out = NULL;
	*out_len = 0;
	size_t n = strlen(text);
	if (n % 4 == 1 || n > 1u << 28)
		return CS_E_INVALID_ARG;
	size_t padded = (n + 3) / 4 * 4;
	char *tmp = malloc(padded + 1);
	uint8_t *buf = malloc(padded / 4 * 3 + 1);
	cs_err r = CS_E_INVALID_ARG;
	if (tmp == NULL || buf == NULL) {
		r = CS_E_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		char c = text[i];
		if (c == '-')
			c = '+';
		else if (c == '_')
			c = '/';
		else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
			goto out;
		tmp[i] = c;
	}
	for (size_t i = n; i < padded; i++)
		tmp[i] = '=';
	tmp[padded] = '\0';
	int got = padded ? EVP_DecodeBlock(buf, (unsigned char *)tmp, (int)padded) : 0;
	if (got < 0)
		goto out;
	/* EVP_DecodeBlock counts padding as zero bytes: take them off */
	size_t len = (size_t)got - (padded - n);
	/* only the canonical encoding (RFC 4648 3.5): the unused low bits of
	 * the last character are zero exactly when encoding the bytes gives the
	 * text back, so no two texts decode to the same bytes */
	char *again = cs_b64url_encode(buf, len);
	if (again == NULL) {
		r = CS_E_NOMEM;
		goto out;
	}
	int canonical = strcmp(again, text) == 0;
	free(again);
	if (!canonical)
		goto out;
	*out_len = len;
	*out = buf;
	buf = NULL;
	r = CS_OK;
out:
	free(tmp);
	free(buf);
	return r;
}

cs_err cs_p256_coordinates(const EVP_PKEY *pkey, uint8_t x[32], uint8_t y[32])
{
	uint8_t point[65];
	size_t len = 0;
	char group[32];
	if (pkey == NULL || !EVP_PKEY_is_a(pkey, "EC") ||
	    !EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
					    NULL) ||
	    strcmp(group, "prime256v1") != 0)
		return CS_E_KEY_TYPE;
	if (!EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
					     sizeof(point), &len) ||
	    len != 65 || point[0] != 0x04)
		return CS_E_KEY_TYPE;
	memcpy(x, point + 1, 32);
	memcpy(y, point + 33, 32);
	return CS_OK;
}

/* RFC 7638: the required members in lexicographic order, no whitespace. */
cs_err cs_jwk_thumbprint(const EVP_PKEY *pkey, char kid[44])
{
	uint8_t x[32], y[32], digest[32];
	cs_err r = cs_p256_coordinates(pkey, x, y);
	if (r != CS_OK)
		return r;
	char *bx = cs_b64url_encode(x, 32), *by = cs_b64url_encode(y, 32);
	char canon[160];
	r = CS_E_NOMEM;
	if (bx != NULL && by != NULL) {
		int n = snprintf(canon, sizeof(canon),
				 "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", bx, by);
		SHA256((const unsigned char *)canon, (size_t)n, digest);
		char *t = cs_b64url_encode(digest, sizeof(digest));
		if (t != NULL) {
			memcpy(kid, t, 44);
			free(t);
			r = CS_OK;
		}
	}
	free(bx);
	free(by);
	return r;
}

cs_err cs_jwk_from_pkey(const EVP_PKEY *pkey, json_t **out)
{
	uint8_t x[32], y[32];
	char kid[44];
	*out = NULL;
	cs_err r = cs_p256_coordinates(pkey, x, y);
	if (r != CS_OK || (r = cs_jwk_thumbprint(pkey, kid)) != CS_OK)
		return r;
	char *bx = cs_b64url_encode(x, 32), *by = cs_b64url_encode(y, 32);
	if (bx != NULL && by != NULL)
		*out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "P-256",
				 "x", bx, "y", by, "kid", kid, "alg", "ES256", "use", "sig");
	free(bx);
	free(by);
	return *out != NULL ? CS_OK : CS_E_NOMEM;
}

/* ---- JWS ------------------------------------------------------------------- */

static char *b64url_json(const json_t *j)
{
	char *text = cs_json_text(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(12));
	if (text == NULL)
		return NULL;
	char *out = cs_b64url_encode((const uint8_t *)text, strlen(text));
	free(text);
	return out;
}

cs_err cs_jws_es256_sign(const json_t *header, const json_t *payload, cs_es256_sign_fn sign,
			 void *ctx, char **jws_out)
{
	cs_err r = CS_E_NOMEM;
	uint8_t raw[64];
	char *h = b64url_json(header), *p = b64url_json(payload), *input = NULL, *s = NULL;
	*jws_out = NULL;
	if (h == NULL || p == NULL)
		goto out;
	size_t len = strlen(h) + 1 + strlen(p);
	if ((input = malloc(len + 1)) == NULL)
		goto out;
	snprintf(input, len + 1, "%s.%s", h, p);
	if ((r = sign(ctx, (const uint8_t *)input, len, raw)) != CS_OK)
		goto out;
	r = CS_E_NOMEM;
	if ((s = cs_b64url_encode(raw, sizeof(raw))) == NULL)
		goto out;
	size_t total = len + 1 + strlen(s) + 1;
	if ((*jws_out = malloc(total)) == NULL)
		goto out;
	snprintf(*jws_out, total, "%s.%s", input, s);
	r = CS_OK;
out:
	free(h);
	free(p);
	free(input);
	free(s);
	return r;
}

/* Split "a.b.c" into three freshly allocated parts. */
static cs_err jws_split(const char *jws, char **a, char **b, char **c)
{
	const char *d1 = strchr(jws, '.');
	const char *d2 = d1 != NULL ? strchr(d1 + 1, '.') : NULL;
	*a = *b = *c = NULL;
	if (d1 == NULL || d2 == NULL || strchr(d2 + 1, '.') != NULL || strlen(jws) > 65536)
		return CS_E_INVALID_ARG;
	*a = strndup(jws, (size_t)(d1 - jws));
	*b = strndup(d1 + 1, (size_t)(d2 - d1 - 1));
	*c = strdup(d2 + 1);
	return (*a != NULL && *b != NULL && *c != NULL) ? CS_OK : CS_E_NOMEM;
}

/* A base64url JSON object into *out: CS_OK; CS_E_INVALID_ARG when it is
 * not one, CS_E_NOMEM when memory ran out (a verifier must not call its
 * own failure the sender's). */
static cs_err decode_json_part(const char *part, json_t **out)
{
	uint8_t *bytes = NULL;
	size_t n = 0;
	int nomem = 0;
	*out = NULL;
	cs_err r = cs_b64url_decode(part, &bytes, &n);
	if (r != CS_OK)
		return r;
	json_t *j = cs_json_load_exact((const char *)bytes, n, JSON_REJECT_DUPLICATES, &nomem);
	free(bytes);
	if (j == NULL)
		return nomem ? CS_E_NOMEM : CS_E_INVALID_ARG;
	if (!json_is_object(j)) {
		json_decref(j);
		return CS_E_INVALID_ARG;
	}
	*out = j;
	return CS_OK;
}

cs_err cs_jws_peek(const char *jws, json_t **header, json_t **payload)
{
	char *a, *b, *c;
	cs_err r = jws_split(jws, &a, &b, &c);
	*header = NULL;
	if (payload != NULL)
		*payload = NULL;
	if (r == CS_OK)
		r = decode_json_part(a, header);
	if (r == CS_OK && payload != NULL && (r = decode_json_part(b, payload)) != CS_OK) {
		json_decref(*header);
		*header = NULL;
	}
	free(a);
	free(b);
	free(c);
	return r;
}

cs_err cs_jws_peek_header(const char *jws, json_t **header)
{
	return cs_jws_peek(jws, header, NULL);
}

cs_err cs_jws_es256_verify(const char *jws, EVP_PKEY *pub, json_t **header, json_t **payload)
{
	char *a, *b, *c;
	uint8_t *sig = NULL, der[72];
	size_t sig_len = 0, der_len = 0;
	json_t *h = NULL, *p = NULL;
	EVP_MD_CTX *md = NULL;
	*header = *payload = NULL;
	cs_err r = jws_split(jws, &a, &b, &c);
	if (r != CS_OK)
		goto out;
	if ((r = decode_json_part(a, &h)) != CS_OK || (r = decode_json_part(b, &p)) != CS_OK)
		goto out;
	r = CS_E_INVALID_ARG;
	const char *alg = json_string_value(json_object_get(h, "alg"));
	if (alg == NULL || strcmp(alg, "ES256") != 0)
		goto out;
	if ((r = cs_b64url_decode(c, &sig, &sig_len)) != CS_OK)
		goto out;
	r = CS_E_INVALID_ARG;
	if (sig_len != 64)
		goto out;
	if (cs_ecdsa_raw_to_der(sig, der, &der_len) != CS_OK)
		goto out;
	size_t input_len = strlen(a) + 1 + strlen(b);
	md = EVP_MD_CTX_new();
	if (md == NULL || EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, "provider!=credsign-pkcs11", pub, NULL) != 1) {
		r = CS_E_CRYPTO;
		goto out;
	}
	if (EVP_DigestVerifyUpdate(md, jws, input_len) != 1 ||
	    EVP_DigestVerifyFinal(md, der, der_len) != 1) {
		r = CS_E_SIGNATURE_INVALID;
		goto out;
	}
	*header = h;
	*payload = p;
	h = p = NULL;
	r = CS_OK;
out:
	EVP_MD_CTX_free(md);
	json_decref(h);
	json_decref(p);
	free(sig);
	free(a);
	free(b);
	free(c);
	return r;
}

EVP_PKEY *cs_jwk_to_pkey(const json_t *jwk, const char *kid)
{
	const char *kty = json_string_value(json_object_get(jwk, "kty"));
	const char *crv = json_string_value(json_object_get(jwk, "crv"));
	const char *xs = json_string_value(json_object_get(jwk, "x"));
	const char *ys = json_string_value(json_object_get(jwk, "y"));
	uint8_t *x = NULL, *y = NULL, point[65];
	size_t nx = 0, ny = 0;
	EVP_PKEY *pkey = NULL;
	char thumb[44];
	if (kty != NULL && crv != NULL && xs != NULL && ys != NULL && strcmp(kty, "EC") == 0 &&
	    strcmp(crv, "P-256") == 0 && cs_b64url_decode(xs, &x, &nx) == CS_OK &&
	    cs_b64url_decode(ys, &y, &ny) == CS_OK && nx == 32 && ny == 32) {
		point[0] = 0x04;
		memcpy(point + 1, x, 32);
		memcpy(point + 33, y, 32);
		if (cs_ec_point_to_pkey(point, sizeof(point), &pkey) != CS_OK)
			pkey = NULL;
	}
	free(x);
	free(y);
	if (pkey != NULL && kid != NULL && (cs_jwk_thumbprint(pkey, thumb) != CS_OK || strcmp(thumb, kid) != 0)) {
		EVP_PKEY_free(pkey); /* the kid must be the key's thumbprint */
		pkey = NULL;
	}
	return pkey;
}
