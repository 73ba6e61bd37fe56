/*
 * jose_test: what cs_jws_es256_verify, cs_jws_peek and the JWK functions
 * refuse (jose.h), with keys made by OpenSSL in the test:
 *
 *  - algorithm confusion: a JWS whose header names any alg but ES256
 *    (none, HS256 with the public key as the HMAC secret, RS256, ES384,
 *    es256, a missing or non-string alg, a duplicated alg member) is
 *    refused even when its signature is a valid ES256 signature over its
 *    signing input; nothing is returned;
 *  - the signature: only raw r || s of exactly 64 bytes (0, 32, 63, 65,
 *    96 bytes, the DER form of a valid signature, r = s = 0 are refused);
 *    a valid signature under another key, or over a changed payload, is
 *    CS_E_SIGNATURE_INVALID; a key that cannot verify ES256 (Ed25519) is
 *    CS_E_CRYPTO;
 *  - the form: two or four parts, more than 64 KiB, a header or payload
 *    that is not a JSON object (an array, not JSON, a NUL in a string);
 *  - signing: a signer's failure is returned and no JWS is made;
 *  - JWKs: a key of another type or curve, coordinates of the wrong length
 *    or not canonical, a point off the curve, a kid that is not the key's
 *    thumbprint; coordinates of a key that is not P-256.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "ec_util.h"
#include "jose.h"
#include "test_support.h"

static EVP_PKEY *key, *other;

/* The DER ECDSA signature of input by key. */
static size_t der_sign(const char *input, uint8_t der[80])
{
	size_t der_len = 80;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	assert_non_null(md);
	assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key), 1);
	assert_int_equal(EVP_DigestSign(md, der, &der_len, (const uint8_t *)input, strlen(input)), 1);
	EVP_MD_CTX_free(md);
	return der_len;
}

static char *b64(const void *data, size_t len)
{
	char *t = cs_b64url_encode(data, len);
	assert_non_null(t);
	return t;
}

/* BASE64URL(header) "." BASE64URL(payload), the texts as given. */
static char *signing_input(const char *header, const char *payload)
{
	char *h = b64(header, strlen(header)), *p = b64(payload, strlen(payload));
	size_t n = strlen(h) + strlen(p) + 2;
	char *input = malloc(n);
	assert_non_null(input);
	snprintf(input, n, "%s.%s", h, p);
	free(h);
	free(p);
	return input;
}

/* input "." BASE64URL(sig) */
static char *with_signature(const char *input, const uint8_t *sig, size_t sig_len)
{
	char *s = b64(sig, sig_len);
	size_t n = strlen(input) + strlen(s) + 2;
	char *jws = malloc(n);
	assert_non_null(jws);
	snprintf(jws, n, "%s.%s", input, s);
	free(s);
	return jws;
}

/* A JWS of these header and payload texts with a valid ES256 signature by
 * key over its signing input (whatever the header says). */
static char *es256_signed(const char *header, const char *payload)
{
	char *input = signing_input(header, payload);
	uint8_t raw[64];
	assert_int_equal(ts_soft_sign(key, (const uint8_t *)input, strlen(input), raw), CS_OK);
	char *jws = with_signature(input, raw, sizeof(raw));
	free(input);
	return jws;
}

/* Verify with key: the error, and nothing returned unless CS_OK. */
static cs_err verify(const char *jws, EVP_PKEY *pub)
{
	json_t *h = (json_t *)1, *p = (json_t *)1;
	cs_err r = cs_jws_es256_verify(jws, pub, &h, &p);
	if (r != CS_OK) {
		assert_null(h);
		assert_null(p);
	}
	json_decref(h);
	json_decref(p);
	return r;
}

#define PAYLOAD "{\"iss\":\"https://credsign.test\",\"jti\":\"cert-1\"}"

static void test_valid_es256_verifies(void **state)
{
	(void)state;
	char *jws = es256_signed("{\"alg\":\"ES256\",\"typ\":\"credsign-cert+jwt\"}", PAYLOAD);
	json_t *h = NULL, *p = NULL;
	assert_int_equal(cs_jws_es256_verify(jws, key, &h, &p), CS_OK);
	assert_string_equal(json_string_value(json_object_get(h, "alg")), "ES256");
	assert_string_equal(json_string_value(json_object_get(p, "jti")), "cert-1");
	json_decref(h);
	json_decref(p);
	/* the same under another key, and over a changed payload: a bad signature */
	assert_int_equal(verify(jws, other), CS_E_SIGNATURE_INVALID);
	char *input = signing_input("{\"alg\":\"ES256\",\"typ\":\"credsign-cert+jwt\"}", PAYLOAD);
	char *changed = signing_input("{\"alg\":\"ES256\",\"typ\":\"credsign-cert+jwt\"}",
				      "{\"iss\":\"https://credsign.test\",\"jti\":\"cert-2\"}");
	const char *sig = strrchr(jws, '.') + 1;
	size_t n = strlen(changed) + strlen(sig) + 2;
	char *forged = malloc(n);
	assert_non_null(forged);
	snprintf(forged, n, "%s.%s", changed, sig);
	assert_int_equal(verify(forged, key), CS_E_SIGNATURE_INVALID);
	/* a key that cannot verify ES256 at all */
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_non_null(ed);
	assert_int_equal(verify(jws, ed), CS_E_CRYPTO);
	EVP_PKEY_free(ed);
	free(forged);
	free(changed);
	free(input);
	free(jws);
}

static void test_alg_confusion_refused(void **state)
{
	(void)state;
	/* each with a valid ES256 signature by the very key it is checked
	 * with: only the header's alg is wrong */
	static const char *const headers[] = {
		"{\"alg\":\"none\"}",
		"{\"alg\":\"HS256\",\"typ\":\"credsign-cert+jwt\"}",
		"{\"alg\":\"RS256\"}",
		"{\"alg\":\"ES384\"}",
		"{\"alg\":\"ES512\"}",
		"{\"alg\":\"es256\"}",
		"{\"alg\":\"ES256 \"}",
		"{\"alg\":\"\"}",
		"{\"typ\":\"credsign-cert+jwt\"}",
		"{\"alg\":null}",
		"{\"alg\":256}",
		"{\"alg\":[\"ES256\"]}",
		"{\"alg\":\"none\",\"alg\":\"ES256\"}", /* duplicated: refused, whichever would win */
		"{\"alg\":\"ES256\",\"alg\":\"none\"}",
		"{\"alg\":\"ES256\\u0000none\"}",      /* a NUL would cut the comparison */
		"[\"ES256\"]",
		"\"ES256\"",
		"{\"alg\":\"ES256\"",                  /* not JSON */
	};
	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		char *jws = es256_signed(headers[i], PAYLOAD);
		cs_err r = verify(jws, key);
		if (r != CS_E_INVALID_ARG)
			fail_msg("header %s: %s, not refused as CS_E_INVALID_ARG", headers[i], cs_strerror(r));
		free(jws);
	}

	/* HS256 with the public key (its PEM, as a confused verifier would
	 * take it) as the HMAC secret: refused by its alg, and so is the
	 * same MAC under the ES256 header (32 bytes, not a signature) */
	BIO *bio = BIO_new(BIO_s_mem());
	assert_non_null(bio);
	assert_int_equal(PEM_write_bio_PUBKEY(bio, key), 1);
	char *pem = NULL;
	long pem_len = BIO_get_mem_data(bio, &pem);
	assert_true(pem_len > 0);
	static const char *const macced[] = {"{\"alg\":\"HS256\"}", "{\"alg\":\"ES256\"}"};
	for (size_t i = 0; i < 2; i++) {
		char *input = signing_input(macced[i], PAYLOAD);
		uint8_t mac[64];
		unsigned mac_len = 0;
		assert_non_null(HMAC(EVP_sha256(), pem, (int)pem_len, (const uint8_t *)input, strlen(input), mac,
				     &mac_len));
		assert_int_equal(mac_len, 32);
		char *jws = with_signature(input, mac, mac_len);
		assert_int_equal(verify(jws, key), CS_E_INVALID_ARG);
		free(jws);
		/* HMAC-SHA-512: 64 bytes, the size of a signature, still not one */
		assert_non_null(HMAC(EVP_sha512(), pem, (int)pem_len, (const uint8_t *)input, strlen(input), mac,
				     &mac_len));
		assert_int_equal(mac_len, 64);
		jws = with_signature(input, mac, mac_len);
		assert_int_not_equal(verify(jws, key), CS_OK);
		free(jws);
		free(input);
	}
	BIO_free(bio);
}

static void test_signature_size_and_form(void **state)
{
	(void)state;
	const char *header = "{\"alg\":\"ES256\"}";
	char *input = signing_input(header, PAYLOAD);
	uint8_t der[80], raw[96];
	size_t der_len = der_sign(input, der);
	assert_int_equal(cs_ecdsa_der_to_raw(der, der_len, raw), CS_OK);
	char *good = with_signature(input, raw, 64);
	assert_int_equal(verify(good, key), CS_OK);
	free(good);
	/* the valid signature in DER form (70 to 72 bytes): not the JWS form */
	char *jws = with_signature(input, der, der_len);
	assert_int_equal(verify(jws, key), CS_E_INVALID_ARG);
	free(jws);
	/* sizes around 64, and ES384's 96 */
	memset(raw + 64, 0x5a, 32);
	static const size_t sizes[] = {0, 1, 32, 63, 65, 96};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		jws = with_signature(input, raw, sizes[i]);
		if (verify(jws, key) != CS_E_INVALID_ARG)
			fail_msg("a signature of %zu bytes is not refused", sizes[i]);
		free(jws);
	}
	/* r = s = 0: no ECDSA signature at all */
	uint8_t zero[64] = {0};
	jws = with_signature(input, zero, sizeof(zero));
	assert_int_equal(verify(jws, key), CS_E_INVALID_ARG);
	free(jws);
	/* a signature part that is not base64url */
	size_t n = strlen(input) + 4;
	jws = malloc(n);
	assert_non_null(jws);
	snprintf(jws, n, "%s.+/", input);
	assert_int_equal(verify(jws, key), CS_E_INVALID_ARG);
	free(jws);
	free(input);
}

static void test_malformed_compact_form(void **state)
{
	(void)state;
	char *jws = es256_signed("{\"alg\":\"ES256\"}", PAYLOAD);
	size_t n = strlen(jws);
	char *buf = malloc(n + 8);
	assert_non_null(buf);
	/* two parts, four parts, none */
	memcpy(buf, jws, n + 1);
	*strrchr(buf, '.') = '\0';
	assert_int_equal(verify(buf, key), CS_E_INVALID_ARG);
	snprintf(buf, n + 8, "%s.", jws);
	assert_int_equal(verify(buf, key), CS_E_INVALID_ARG);
	snprintf(buf, n + 8, "%s.AA", jws);
	assert_int_equal(verify(buf, key), CS_E_INVALID_ARG);
	assert_int_equal(verify("", key), CS_E_INVALID_ARG);
	assert_int_equal(verify("..", key), CS_E_INVALID_ARG);
	free(buf);
	/* a payload that is not a JSON object */
	static const char *const payloads[] = {"[1,2]", "\"text\"", "{\"jti\":", "{\"a\":1,\"a\":2}"};
	for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
		char *bad = es256_signed("{\"alg\":\"ES256\"}", payloads[i]);
		assert_int_equal(verify(bad, key), CS_E_INVALID_ARG);
		json_t *h = (json_t *)1, *p = (json_t *)1;
		assert_int_equal(cs_jws_peek(bad, &h, &p), CS_E_INVALID_ARG);
		assert_null(h);
		assert_null(p);
		/* its header alone reads */
		assert_int_equal(cs_jws_peek_header(bad, &h), CS_OK);
		assert_string_equal(json_string_value(json_object_get(h, "alg")), "ES256");
		json_decref(h);
		free(bad);
	}
	/* a header that is not one: peek refuses too */
	char *bad = es256_signed("[]", PAYLOAD);
	json_t *h = (json_t *)1, *p = (json_t *)1;
	assert_int_equal(cs_jws_peek(bad, &h, &p), CS_E_INVALID_ARG);
	assert_null(h);
	assert_null(p);
	free(bad);
	assert_int_equal(cs_jws_peek_header("abc", &h), CS_E_INVALID_ARG);
	assert_null(h);
	/* more than 64 KiB */
	size_t big = 70000;
	char *payload = malloc(big + 32);
	assert_non_null(payload);
	int m = snprintf(payload, 32, "{\"pad\":\"");
	memset(payload + m, 'a', big);
	snprintf(payload + (size_t)m + big, 32, "\"}");
	bad = es256_signed("{\"alg\":\"ES256\"}", payload);
	assert_int_equal(verify(bad, key), CS_E_INVALID_ARG);
	assert_int_equal(cs_jws_peek(bad, &h, &p), CS_E_INVALID_ARG);
	free(bad);
	free(payload);
	free(jws);
}

static cs_err failing_sign(void *ctx, const uint8_t *input, size_t len, uint8_t raw[64])
{
	(void)ctx;
	(void)input;
	(void)len;
	memset(raw, 0xee, 64);
	return CS_E_TOKEN_UNAVAILABLE;
}

static void test_sign_failure_makes_nothing(void **state)
{
	(void)state;
	json_t *header = json_pack("{s:s}", "alg", "ES256"), *payload = json_pack("{s:s}", "jti", "x");
	char *jws = (char *)1;
	assert_int_equal(cs_jws_es256_sign(header, payload, failing_sign, NULL, &jws), CS_E_TOKEN_UNAVAILABLE);
	assert_null(jws);
	assert_int_equal(cs_jws_es256_sign(header, payload, ts_soft_sign, key, &jws), CS_OK);
	assert_int_equal(verify(jws, key), CS_OK);
	free(jws);
	json_decref(header);
	json_decref(payload);
	/* more than base64url's bound: refused before the data is read */
	uint8_t one = 0;
	assert_null(cs_b64url_encode(&one, (1u << 28) + 1));
}

static void test_jwk_refusals(void **state)
{
	(void)state;
	json_t *jwk = NULL;
	assert_int_equal(cs_jwk_from_pkey(key, &jwk), CS_OK);
	const char *kid = json_string_value(json_object_get(jwk, "kid"));
	EVP_PKEY *back = cs_jwk_to_pkey(jwk, kid);
	assert_non_null(back);
	assert_int_equal(EVP_PKEY_eq(back, key), 1);
	EVP_PKEY_free(back);
	/* another key's kid */
	char other_kid[44];
	assert_int_equal(cs_jwk_thumbprint(other, other_kid), CS_OK);
	assert_null(cs_jwk_to_pkey(jwk, other_kid));
	/* each member changed in turn */
	const char *x = json_string_value(json_object_get(jwk, "x"));
	char x_flipped[64];
	snprintf(x_flipped, sizeof(x_flipped), "%s", x);
	x_flipped[5] = x_flipped[5] == 'A' ? 'B' : 'A'; /* another x: off the curve with this y */
	char x_long[64];
	snprintf(x_long, sizeof(x_long), "%sAAAA", x);
	char x_sibling[64];
	snprintf(x_sibling, sizeof(x_sibling), "%s", x);
	size_t last = strlen(x_sibling) - 1; /* 43 characters: 2 unused bits */
	x_sibling[last] = (char)(x_sibling[last] ^ 1);
	static const char *const members[] = {"kty", "kty", "crv", "crv", "x", "x", "x", "y", "x"};
	const char *values[] = {"RSA", NULL, "P-384", NULL, "AAAA", x_long, x_flipped, NULL, x_sibling};
	for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++) {
		json_t *bad = json_deep_copy(jwk);
		if (values[i] != NULL)
			json_object_set_new(bad, members[i], json_string(values[i]));
		else
			json_object_del(bad, members[i]);
		EVP_PKEY *k = cs_jwk_to_pkey(bad, NULL);
		if (k != NULL)
			fail_msg("a JWK with %s %s is taken", members[i], values[i] != NULL ? values[i] : "missing");
		json_decref(bad);
	}
	json_decref(jwk);
	/* coordinates and JWKs only of P-256 keys */
	uint8_t cx[32], cy[32];
	char t[44];
	EVP_PKEY *p384 = EVP_EC_gen("P-384"), *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_non_null(p384);
	assert_non_null(ed);
	assert_int_equal(cs_p256_coordinates(p384, cx, cy), CS_E_KEY_TYPE);
	assert_int_equal(cs_p256_coordinates(ed, cx, cy), CS_E_KEY_TYPE);
	assert_int_equal(cs_p256_coordinates(NULL, cx, cy), CS_E_KEY_TYPE);
	assert_int_equal(cs_jwk_thumbprint(p384, t), CS_E_KEY_TYPE);
	jwk = (json_t *)1;
	assert_int_equal(cs_jwk_from_pkey(ed, &jwk), CS_E_KEY_TYPE);
	assert_null(jwk);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(ed);
}

static int setup(void **state)
{
	(void)state;
	key = EVP_EC_gen("P-256");
	other = EVP_EC_gen("P-256");
	return key != NULL && other != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_es256_verifies),
		cmocka_unit_test(test_alg_confusion_refused),
		cmocka_unit_test(test_signature_size_and_form),
		cmocka_unit_test(test_malformed_compact_form),
		cmocka_unit_test(test_sign_failure_makes_nothing),
		cmocka_unit_test(test_jwk_refusals),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
