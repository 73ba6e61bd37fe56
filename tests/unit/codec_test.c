/* codec_test: base64url, JWK thumbprints, EC point and signature formats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/evp.h>

#include "ec_util.h"
#include "jose.h"
#include "test_support.h"

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

static const char b64url_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* text with its last character replaced by the one whose value differs by
 * `flip` (a bit the decoder must find unused or used) */
static char *with_last_flipped(const char *text, unsigned flip)
{
	char *t = strdup(text);
	size_t n = strlen(t);
	unsigned v = (unsigned)(strchr(b64url_alphabet, t[n - 1]) - b64url_alphabet);
	t[n - 1] = b64url_alphabet[v ^ flip];
	return t;
}

static int decodes(const char *text)
{
	uint8_t *d = NULL;
	size_t n = 0;
	cs_err r = cs_b64url_decode(text, &d, &n);
	if (r != CS_OK)
		assert_null(d);
	free(d);
	return r == CS_OK;
}

static void test_b64url_only_canonical(void **state)
{
	(void)state;
	/* "f" is "Zg": 4 unused bits in the last character, so "Zh".."Zv"
	 * would decode to the same byte; "fo" is "Zm8": 2 unused bits */
	assert_true(decodes("Zg"));
	assert_false(decodes("Zh"));
	assert_false(decodes("Zv"));
	assert_true(decodes("Zm8"));
	assert_false(decodes("Zm9"));
	assert_false(decodes("Zm-"));
	/* exactly one text per byte string: of the 64 last characters, 4 are
	 * canonical after 1 byte (16 siblings each), 16 after 2 bytes (4 each) */
	int two = 0, three = 0;
	for (size_t i = 0; i < 64; i++) {
		char t2[3] = {'Z', b64url_alphabet[i], 0}, t3[4] = {'Z', 'm', b64url_alphabet[i], 0};
		two += decodes(t2);
		three += decodes(t3);
	}
	assert_int_equal(two, 4);
	assert_int_equal(three, 16);
	/* padding, whitespace, the standard alphabet, length mod 4 == 1 */
	static const char *const bad[] = {"Zg==", "Zm8=", "Zm9v\n", " Zm9v", "Zm 9v", "Zm9v\t",
					  "Zm9vYg\r\n", "Zm9+", "Zm9/", "Zm9vY", "A", "Zm9v.",
					  "Zm9v=YmFy"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(decodes(bad[i]));
	/* a 32-byte value (a JWK coordinate) and a 64-byte one (a signature) */
	uint8_t bytes[64];
	for (size_t i = 0; i < sizeof(bytes); i++)
		bytes[i] = (uint8_t)(0xa5 ^ i);
	for (size_t len = 32; len <= 64; len += 32) {
		char *e = cs_b64url_encode(bytes, len);
		assert_true(decodes(e));
		for (unsigned flip = 1; flip < (len == 32 ? 4u : 16u); flip++) {
			char *sib = with_last_flipped(e, flip);
			assert_false(decodes(sib));
			free(sib);
		}
		free(e);
	}
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* `credsign verify` of a JWS file against a JWKS file: its exit status. */
static int credsign_verify(const char *jws, const char *jwks)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "'%s' verify '%s' --jwks '%s' >/dev/null 2>&1", CREDSIGN_CLI, jws, jwks);
	int st = system(cmd);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void test_jws_signature_with_sibling_last_character_fails(void **state)
{
	(void)state;
	EVP_PKEY *key = EVP_EC_gen("P-256");
	assert_non_null(key);
	json_t *jwk = NULL;
	assert_int_equal(cs_jwk_from_pkey(key, &jwk), CS_OK);
	const char *kid = json_string_value(json_object_get(jwk, "kid"));
	json_t *header = json_pack("{s:s, s:s, s:s}", "alg", "ES256", "kid", kid, "typ", "credsign-cert+jwt");
	json_t *claims = json_pack(
		"{s:s, s:s, s:i, s:s, s:[s], s:{s:s, s:i, s:f, s:{s:s, s:s, s:s}}, s:{s:s}, s:{s:s}, s:s, "
		"s:s, s:s}",
		"iss", "https://credsign.test", "jti", "cert-1", "iat", 1700000000, "preset", "soc2",
		"standards", "SOC 2 CC6.1", "credential", "type", "password", "length", 20, "entropy_bits",
		128.5, "commitment", "alg", "HMAC-SHA-256", "salt", "c2FsdA", "value",
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "entropy_source", "interface", "PKCS#11",
		"subject", "identity", "spiffe://credsign.test/ci", "generation_session_id", "s-1",
		"generated_at", "2026-01-01T00:00:00Z", "certified_at", "2026-01-01T00:00:01Z");
	assert_non_null(header);
	assert_non_null(claims);
	char *jws = NULL;
	assert_int_equal(cs_jws_es256_sign(header, claims, ts_soft_sign, key, &jws), CS_OK);
	json_t *h = NULL, *p = NULL;
	assert_int_equal(cs_jws_es256_verify(jws, key, &h, &p), CS_OK);
	json_decref(h);
	json_decref(p);

	/* the signature is 64 bytes, 86 characters: the last one carries 4
	 * unused bits, so 15 other texts would decode to the same signature */
	const char *sig = strrchr(jws, '.') + 1;
	assert_int_equal(strlen(sig), 86);
	char dir[] = "/tmp/cs-codec-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char jws_path[64], bad_path[64], jwks_path[64];
	snprintf(jws_path, sizeof(jws_path), "%s/cert.jws", dir);
	snprintf(bad_path, sizeof(bad_path), "%s/sibling.jws", dir);
	snprintf(jwks_path, sizeof(jwks_path), "%s/jwks.json", dir);
	json_t *jwks = json_pack("{s:[O]}", "keys", jwk);
	char *jwks_text = json_dumps(jwks, JSON_COMPACT);
	write_text(jwks_path, jwks_text);
	write_text(jws_path, jws);
	assert_int_equal(credsign_verify(jws_path, jwks_path), 0);
	for (unsigned flip = 1; flip < 16; flip++) {
		char *bad = with_last_flipped(jws, flip);
		assert_int_equal(cs_jws_es256_verify(bad, key, &h, &p), CS_E_INVALID_ARG);
		assert_null(h);
		assert_null(p);
		if (flip == 1) {
			write_text(bad_path, bad);
			assert_int_equal(credsign_verify(bad_path, jwks_path), 1);
		}
		free(bad);
	}
	/* the same for a header or payload character: covered by the signature
	 * anyway, and refused before it is checked */
	char *bad = strdup(jws);
	size_t hlen = (size_t)(strchr(bad, '.') - bad);
	if (hlen % 4 != 0) {
		bad[hlen] = '\0';
		char *h2 = with_last_flipped(bad, 1);
		memcpy(bad, h2, hlen);
		bad[hlen] = '.';
		free(h2);
		assert_int_not_equal(cs_jws_es256_verify(bad, key, &h, &p), CS_OK);
	}
	free(bad);
	unlink(jws_path);
	unlink(bad_path);
	unlink(jwks_path);
	rmdir(dir);
	free(jwks_text);
	json_decref(jwks);
	free(jws);
	json_decref(header);
	json_decref(claims);
	json_decref(jwk);
	EVP_PKEY_free(key);
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
		cmocka_unit_test(test_b64url_only_canonical),
		cmocka_unit_test(test_jws_signature_with_sibling_last_character_fails),
		cmocka_unit_test(test_jwk_thumbprint),
		cmocka_unit_test(test_ec_point_forms),
		cmocka_unit_test(test_signature_forms),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
