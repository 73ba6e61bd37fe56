/* jose: see jose.h. */
#include "jose.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/sha.h>

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
	*out_len = (size_t)got - (padded - n);
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
