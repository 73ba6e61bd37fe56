/* codec_test: base64url, JWK thumbprints, EC point and signature formats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "ec_util.h"
#include "jose.h"

static void test_b64url_vectors(void **state)
{
	(void)state;
	/* RFC 4648 section 10 vectors, without padding */
	static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	static const char *const out[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
	for (size_t i = 0; i < 7; i++) {
		char *e = cs_b64url_encode((const uint8_t *)in[i], strlen(in[i]));
		assert_string_equal(e, out[i]);
		uint8_t *d = NULL;
		size_t n = 0;
		assert_int_equal(cs_b64url_decode(e, &d, &n), CS_OK);
		assert_int_equal(n, strlen(in[i]));
		assert_memory_equal(d, in[i], n);
		free(d);
		free(e);
	}
	/* URL-safe alphabet */
	const uint8_t bytes[] = {0xfb, 0xff, 0xbf};
	char *e = cs_b64url_encode(bytes, 3);
	assert_string_equal(e, "-_-_");
	free(e);
	uint8_t *d = NULL;
	size_t n = 0;
	assert_int_equal(cs_b64url_decode("Zm9v=", &d, &n), CS_E_INVALID_ARG);
	assert_int_equal(cs_b64url_decode("Zm+v", &d, &n), CS_E_INVALID_ARG);
	assert_int_equal(cs_b64url_decode("Z", &d, &n), CS_E_INVALID_ARG);
	assert_null(d);
}

/* RFC 7517 appendix A.1 EC key; thumbprint computed by python3-jwcrypto */
static EVP_PKEY *rfc7517_key(void)
{
	uint8_t *x = NULL, *y = NULL, point[65];
	size_t xn = 0, yn = 0;
	assert_int_equal(cs_b64url_decode("f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", &x, &xn), CS_OK);
	assert_int_equal(cs_b64url_decode("x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", &y, &yn), CS_OK);
	assert_int_equal(xn, 32);
	assert_int_equal(yn, 32);
	point[0] = 0x04;
	memcpy(point + 1, x, 32);
	memcpy(point + 33, y, 32);
	free(x);
	free(y);
	EVP_PKEY *pkey = NULL;
	assert_int_equal(cs_ec_point_to_pkey(point, sizeof(point), &pkey), CS_OK);
	return pkey;
}

static void test_jwk_thumbprint(void **state)
{
	(void)state;
	EVP_PKEY *pkey = rfc7517_key();
	char kid[44];
	assert_int_equal(cs_jwk_thumbprint(pkey, kid), CS_OK);
	assert_string_equal(kid, "oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U");
	json_t *jwk = NULL;
	assert_int_equal(cs_jwk_from_pkey(pkey, &jwk), CS_OK);
	assert_string_equal(json_string_value(json_object_get(jwk, "x")),
			    "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU");
	assert_string_equal(json_string_value(json_object_get(jwk, "kid")), kid);
	assert_string_equal(json_string_value(json_object_get(jwk, "alg")), "ES256");
	json_decref(jwk);
	EVP_PKEY_free(pkey);
}

static void test_ec_point_forms(void **state)
{
	(void)state;
	EVP_PKEY *pkey = rfc7517_key(), *again = NULL;
	uint8_t point[65], wrapped[67];
	size_t len = 0;
	assert_true(EVP_PKEY_get_octet_string_param(pkey, "encoded-pub-key", point, sizeof(point), &len));
	/* the DER OCTET STRING form PKCS#11 specifies */
	wrapped[0] = 0x04;
	wrapped[1] = 65;
	memcpy(wrapped + 2, point, 65);
	assert_int_equal(cs_ec_point_to_pkey(wrapped, sizeof(wrapped), &again), CS_OK);
	assert_int_equal(EVP_PKEY_eq(pkey, again), 1);
	EVP_PKEY_free(again);
	again = NULL;
	/* trailing garbage, truncation, a point off the curve */
	uint8_t longer[68];
	memcpy(longer, wrapped, 67);
	longer[67] = 0;
	assert_int_equal(cs_ec_point_to_pkey(longer, sizeof(longer), &again), CS_E_TOKEN_DATA);
	assert_int_equal(cs_ec_point_to_pkey(wrapped, 40, &again), CS_E_TOKEN_DATA);
	point[64] ^= 1;
	assert_int_equal(cs_ec_point_to_pkey(point, 65, &again), CS_E_TOKEN_DATA);
	assert_null(again);
	EVP_PKEY_free(pkey);
}

static void test_signature_forms(void **state)
{
	(void)state;
	uint8_t raw[64], back[64], der[72], from_token[64];
	size_t der_len = 0;
	for (int i = 0; i < 64; i++)
		raw[i] = (uint8_t)(i * 7 + 1);
	raw[0] = 0x80; /* r needs a leading zero in DER */
	assert_int_equal(cs_ecdsa_raw_to_der(raw, der, &der_len), CS_OK);
	assert_int_equal(der[0], 0x30);
	assert_int_equal(cs_ecdsa_der_to_raw(der, der_len, back), CS_OK);
	assert_memory_equal(raw, back, 64);
	/* tokens may answer raw or DER: both normalise to the same raw form */
	assert_int_equal(cs_ecdsa_sig_to_raw(raw, 64, from_token), CS_OK);
	assert_memory_equal(from_token, raw, 64);
	assert_int_equal(cs_ecdsa_sig_to_raw(der, der_len, from_token), CS_OK);
	assert_memory_equal(from_token, raw, 64);
	assert_int_equal(cs_ecdsa_sig_to_raw(raw, 63, from_token), CS_E_TOKEN_DATA);
	der[1] ^= 0x01; /* broken length */
	assert_int_equal(cs_ecdsa_sig_to_raw(der, der_len, from_token), CS_E_TOKEN_DATA);
	uint8_t zero[64] = {0};
	assert_int_equal(cs_ecdsa_raw_to_der(zero, der, &der_len), CS_E_CRYPTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64url_vectors),
		cmocka_unit_test(test_jwk_thumbprint),
		cmocka_unit_test(test_ec_point_forms),
		cmocka_unit_test(test_signature_forms),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
