/*
 * sigformat_test: the formats of delegated signing (sigformat.h) and the
 * signer's message and digest signatures (certsign.h) against a SoftHSM2
 * token: the DSSE PAE of the specification's example, the JWS claims a
 * profile gives and the reserved claims it refuses, signatures checked by
 * OpenSSL alone (EVP_PKEY_verify, EVP_DigestVerify), DER and raw agreeing,
 * and the offline verifiers refusing tampered signatures, unknown kids and
 * compromised keys.
 *
 *   sigformat_test                 the cmocka tests
 *   sigformat_test --fixtures DIR  writes signed artifacts and JWKS
 *                                  documents for tests/cli/sign_verify.sh
 * Both want CREDSIGN_TEST_TOKEN_DIR (token-init DIR cstest) and
 * CREDSIGN_TEST_MODULE (libsofthsm2.so).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/sha.h>

#include "certsign.h"
#include "ec_util.h"
#include "jose.h"
#include "provider.h"
#include "sigformat.h"
#include "test_support.h"
#include "token.h"

#define KEY_LABEL "sigformat-key"
#define OTHER_LABEL "sigformat-other"
#define KEY_URI "pkcs11:token=cstest;object=" KEY_LABEL
#define OTHER_URI "pkcs11:token=cstest;object=" OTHER_LABEL

static cs_token *token;
static OSSL_LIB_CTX *libctx;
static OSSL_PROVIDER *prov, *deflt;
static cs_signer *signer, *other;
static EVP_PKEY *pub; /* the signer's public key, from its JWK */

static cs_err key_in_token(const char *label)
{
	cs_key_ref q = {0}, found;
	snprintf(q.label, sizeof(q.label), "%s", label);
	cs_err r = cs_token_find_key(token, &q, &found);
	return r == CS_E_KEY_NOT_FOUND ? cs_token_generate_p256(token, label, &found) : r;
}

static int open_all(void)
{
	const char *dir = getenv("CREDSIGN_TEST_TOKEN_DIR");
	const char *module = getenv("CREDSIGN_TEST_MODULE");
	char pin[600];
	if (dir == NULL || module == NULL) {
		fprintf(stderr, "sigformat_test: CREDSIGN_TEST_TOKEN_DIR and CREDSIGN_TEST_MODULE are required\n");
		return -1;
	}
	snprintf(pin, sizeof(pin), "%s/user.pin", dir);
	cs_token_params tp = {.module = module, .token_uri = "pkcs11:token=cstest", .pin_file = pin, .pool_size = 2,
			      .read_write = 1};
	if (cs_token_open(&tp, &token) != CS_OK || key_in_token(KEY_LABEL) != CS_OK ||
	    key_in_token(OTHER_LABEL) != CS_OK || (libctx = OSSL_LIB_CTX_new()) == NULL ||
	    cs_provider_load(libctx, token, &prov) != CS_OK || (deflt = OSSL_PROVIDER_load(libctx, "default")) == NULL ||
	    !EVP_set_default_properties(libctx, "?provider!=credsign-pkcs11") ||
	    cs_signer_open(libctx, KEY_URI, &signer) != CS_OK || cs_signer_open(libctx, OTHER_URI, &other) != CS_OK ||
	    (pub = cs_jwk_to_pkey(cs_signer_jwk(signer), cs_signer_kid(signer))) == NULL)
		return -1;
	return 0;
}

static void close_all(void)
{
	EVP_PKEY_free(pub);
	cs_signer_free(signer);
	cs_signer_free(other);
	if (deflt != NULL)
		OSSL_PROVIDER_unload(deflt);
	if (prov != NULL)
		OSSL_PROVIDER_unload(prov);
	OSSL_LIB_CTX_free(libctx);
	if (token != NULL)
		cs_token_close(token);
}

static int setup(void **state)
{
	(void)state;
	return open_all();
}

static int teardown(void **state)
{
	(void)state;
	close_all();
	return 0;
}

/* A JWKS of the given signers' JWKs, each with the status given. */
static json_t *jwks_of(cs_signer *a, const char *status_a, cs_signer *b, const char *status_b)
{
	json_t *keys = json_array();
	cs_signer *s[2] = {a, b};
	const char *st[2] = {status_a, status_b};
	for (int i = 0; i < 2; i++) {
		if (s[i] == NULL)
			continue;
		json_t *k = json_deep_copy(cs_signer_jwk(s[i]));
		json_object_set_new(k, "status", json_string(st[i]));
		if (strcmp(st[i], "compromised") == 0)
			json_object_set_new(k, "compromised_at", json_string("2026-01-01T00:00:00Z"));
		json_array_append_new(keys, k);
	}
	return json_pack("{s:o}", "keys", keys);
}

static cs_config_profile profile(char **aud, int lifetime)
{
	static char name[] = "release", typ[] = "release+jwt", iss[] = "https://credsign.example";
	cs_config_profile p = {.name = name, .formats = CS_SIG_FORMAT_JWS | CS_SIG_FORMAT_DSSE | CS_SIG_FORMAT_DIGEST,
			       .typ = typ, .max_payload_bytes = 65536, .iss = iss, .aud = aud,
			       .lifetime_seconds = lifetime};
	return p;
}

/* ---- pure ------------------------------------------------------------------------ */

/* The DSSE v1 specification's example ("Pre-Authentication Encoding"). */
static void test_pae_spec_vector(void **state)
{
	(void)state;
	uint8_t *pae = NULL;
	size_t len = 0;
	static const char want[] = "DSSEv1 29 http://example.com/HelloWorld 11 hello world";
	assert_int_equal(cs_sig_dsse_pae("http://example.com/HelloWorld", (const uint8_t *)"hello world", 11, &pae,
					 &len), CS_OK);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(pae, want, len);
	free(pae);
	/* an empty body, a body with NUL bytes (lengths count bytes) */
	assert_int_equal(cs_sig_dsse_pae("t", NULL, 0, &pae, &len), CS_OK);
	assert_int_equal(len, 13);
	assert_memory_equal(pae, "DSSEv1 1 t 0 ", 13);
	free(pae);
	assert_int_equal(cs_sig_dsse_pae("t", (const uint8_t *)"a\0b", 3, &pae, &len), CS_OK);
	assert_int_equal(len, 16);
	assert_memory_equal(pae, "DSSEv1 1 t 3 a\0b", 16);
	free(pae);
	assert_int_equal(cs_sig_dsse_pae("", (const uint8_t *)"x", 1, &pae, &len), CS_E_INVALID_ARG);
	assert_null(pae);
}

static void test_reserved_claims_refused(void **state)
{
	(void)state;
	static const char *const names[] = {"iss", "sub", "iat", "exp", "nbf", "jti"};
	char why[256], want[256];
	json_t *claims = NULL;
	cs_config_profile p = profile(NULL, 0);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		json_t *payload = json_pack("{s:s, s:i}", "artifact", "a.tar.gz", names[i], 1);
		assert_int_equal(cs_sig_jws_claims(&p, payload, "ci-deployer", "jti-1", 1700000000, &claims, why,
						   sizeof(why)), CS_E_INVALID_ARG);
		assert_null(claims);
		snprintf(want, sizeof(want),
			 "the payload sets reserved claim '%s' (the appliance sets iss, sub, iat, jti, exp)", names[i]);
		assert_string_equal(why, want);
		assert_string_equal(cs_sig_jws_reserved_claim(&p, payload), names[i]);
		json_decref(payload);
	}
	/* aud: the payload's own unless the profile sets aud */
	json_t *payload = json_pack("{s:s}", "aud", "mine");
	assert_int_equal(cs_sig_jws_claims(&p, payload, "ci-deployer", "jti-1", 1700000000, &claims, why, sizeof(why)),
			 CS_OK);
	assert_string_equal(json_string_value(json_object_get(claims, "aud")), "mine");
	json_decref(claims);
	char aud0[] = "https://consumer.example", *aud[] = {aud0, NULL};
	p = profile(aud, 0);
	assert_int_equal(cs_sig_jws_claims(&p, payload, "ci-deployer", "jti-1", 1700000000, &claims, why, sizeof(why)),
			 CS_E_INVALID_ARG);
	assert_string_equal(why, "the payload sets reserved claim 'aud' (the appliance sets iss, sub, iat, jti, exp, aud)");
	json_decref(payload);
	/* not an object */
	payload = json_pack("[s]", "x");
	assert_int_equal(cs_sig_jws_claims(&p, payload, "ci-deployer", "jti-1", 1700000000, &claims, why, sizeof(why)),
			 CS_E_INVALID_ARG);
	json_decref(payload);
}

static void test_claims_from_profile(void **state)
{
	(void)state;
	char why[256];
	json_t *claims = NULL, *payload = json_pack("{s:s, s:{s:i}}", "artifact", "a.tar.gz", "build", "n", 7);
	char a0[] = "https://one.example", a1[] = "https://two.example";
	char *one[] = {a0, NULL}, *two[] = {a0, a1, NULL};

	cs_config_profile p = profile(one, 600);
	assert_int_equal(cs_sig_jws_claims(&p, payload, "ci-deployer", "sig-1", 1700000000, &claims, why, sizeof(why)),
			 CS_OK);
	assert_string_equal(json_string_value(json_object_get(claims, "iss")), "https://credsign.example");
	assert_string_equal(json_string_value(json_object_get(claims, "sub")), "ci-deployer");
	assert_string_equal(json_string_value(json_object_get(claims, "jti")), "sig-1");
	assert_int_equal(json_integer_value(json_object_get(claims, "iat")), 1700000000);
	assert_int_equal(json_integer_value(json_object_get(claims, "exp")), 1700000600);
	assert_string_equal(json_string_value(json_object_get(claims, "aud")), a0); /* one: a string */
	assert_string_equal(json_string_value(json_object_get(claims, "artifact")), "a.tar.gz");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(claims, "build"), "n")), 7);
	assert_int_equal(json_object_size(claims), 8);
	json_decref(claims);

	p = profile(two, 0);
	assert_int_equal(cs_sig_jws_claims(&p, payload, "ci-deployer", "sig-1", 1700000000, &claims, why, sizeof(why)),
			 CS_OK);
	assert_null(json_object_get(claims, "exp")); /* no lifetime: no exp */
	json_t *aud = json_object_get(claims, "aud");
	assert_true(json_is_array(aud));
	assert_int_equal(json_array_size(aud), 2);
	assert_string_equal(json_string_value(json_array_get(aud, 1)), a1);
	json_decref(claims);

	p = profile(NULL, 0);
	assert_int_equal(cs_sig_jws_claims(&p, payload, "ci-deployer", "sig-1", 1700000000, &claims, why, sizeof(why)),
			 CS_OK);
	assert_null(json_object_get(claims, "aud"));
	assert_int_equal(json_object_size(claims), 6);
	json_decref(claims);
	/* the payload itself is not changed */
	assert_int_equal(json_object_size(payload), 2);
	json_decref(payload);
}

static void test_base64(void **state)
{
	(void)state;
	uint8_t *out = NULL;
	size_t len = 0;
	char *t = cs_sig_b64_encode((const uint8_t *)"\xfb\xff", 2);
	assert_string_equal(t, "+/8=");
	free(t);
	assert_int_equal(cs_sig_b64_decode("+/8=", 16, &out, &len), CS_OK);
	assert_int_equal(len, 2);
	assert_memory_equal(out, "\xfb\xff", 2);
	free(out);
	assert_int_equal(cs_sig_b64_decode("", 16, &out, &len), CS_OK);
	assert_int_equal(len, 0);
	free(out);
	/* not canonical, not standard, not padded, whitespace, too large */
	assert_int_equal(cs_sig_b64_decode("+/9=", 16, &out, &len), CS_E_INVALID_ARG);
	assert_int_equal(cs_sig_b64_decode("-_8=", 16, &out, &len), CS_E_INVALID_ARG);
	assert_int_equal(cs_sig_b64_decode("+/8", 16, &out, &len), CS_E_INVALID_ARG);
	assert_int_equal(cs_sig_b64_decode("+/8=\n", 16, &out, &len), CS_E_INVALID_ARG);
	assert_int_equal(cs_sig_b64_decode("a=bc", 16, &out, &len), CS_E_INVALID_ARG);
	assert_int_equal(cs_sig_b64_decode("aGVsbG8=", 4, &out, &len), CS_E_TOO_LARGE);
	assert_null(out);
}

/* ---- token signatures --------------------------------------------------------------- */

static int openssl_verify_digest(EVP_PKEY *key, const uint8_t digest[32], const uint8_t *der, size_t der_len)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
	int ok = c != NULL && EVP_PKEY_verify_init(c) == 1 && EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()) == 1 &&
		 EVP_PKEY_verify(c, der, der_len, digest, 32) == 1;
	EVP_PKEY_CTX_free(c);
	ERR_clear_error();
	return ok;
}

static void assert_der_is_raw(const uint8_t *der, size_t der_len, const uint8_t raw[64])
{
	uint8_t again[CS_ES256_DER_MAX], back[64];
	size_t again_len = 0;
	assert_int_equal(cs_ecdsa_raw_to_der(raw, again, &again_len), CS_OK);
	assert_int_equal(again_len, der_len);
	assert_memory_equal(again, der, der_len);
	assert_int_equal(cs_ecdsa_der_to_raw(der, der_len, back), CS_OK);
	assert_memory_equal(back, raw, 64);
}

static void test_digest_signature_verifies(void **state)
{
	(void)state;
	uint8_t digest[32], raw[64], der[CS_ES256_DER_MAX];
	size_t der_len = sizeof(der);
	SHA256((const uint8_t *)"release-1.0.tar.gz", 18, digest);
	assert_int_equal(cs_signer_sign_digest(signer, digest, raw, der, &der_len), CS_OK);
	assert_true(der_len >= 8 && der_len <= CS_ES256_DER_MAX);
	assert_true(openssl_verify_digest(pub, digest, der, der_len));
	assert_true(ts_verify_der(pub, digest, der, der_len));
	assert_der_is_raw(der, der_len, raw);
	/* another digest, another key: no */
	uint8_t wrong[32];
	memcpy(wrong, digest, 32);
	wrong[0] ^= 1;
	assert_false(openssl_verify_digest(pub, wrong, der, der_len));
	EVP_PKEY *other_pub = cs_jwk_to_pkey(cs_signer_jwk(other), NULL);
	assert_false(openssl_verify_digest(other_pub, digest, der, der_len));
	EVP_PKEY_free(other_pub);
	/* too small a DER buffer is refused before the token is asked */
	der_len = CS_ES256_DER_MAX - 1;
	assert_int_equal(cs_signer_sign_digest(signer, digest, raw, der, &der_len), CS_E_BUFFER_TOO_SMALL);

	/* cs_sig_digest: the two encodings of one signature */
	char *raw_b64url = NULL, *der_b64 = NULL;
	uint8_t *r = NULL, *d = NULL;
	size_t rl = 0, dl = 0;
	assert_int_equal(cs_sig_digest(signer, digest, &raw_b64url, &der_b64), CS_OK);
	assert_int_equal(strlen(raw_b64url), 86);
	assert_int_equal(cs_b64url_decode(raw_b64url, &r, &rl), CS_OK);
	assert_int_equal(cs_sig_b64_decode(der_b64, CS_ES256_DER_MAX, &d, &dl), CS_OK);
	assert_int_equal(rl, 64);
	assert_der_is_raw(d, dl, r);
	assert_true(openssl_verify_digest(pub, digest, d, dl));
	/* the offline verifier: by kid, by any key, raw and DER */
	json_t *jwks = jwks_of(other, "active", signer, "active");
	cs_sig_verdict v;
	assert_int_equal(cs_sig_verify_digest(digest, d, dl, jwks, NULL, &v), CS_OK);
	assert_string_equal(v.kid, cs_signer_kid(signer));
	char digest_hex[65];
	cs_sig_hex(digest, 32, digest_hex);
	assert_string_equal(v.signed_sha256, digest_hex); /* the digest itself */
	assert_int_equal(cs_sig_verify_digest(digest, r, rl, jwks, cs_signer_kid(signer), &v), CS_OK);
	assert_int_equal(cs_sig_verify_digest(wrong, d, dl, jwks, NULL, &v), CS_E_SIGNATURE_INVALID);
	assert_string_equal(v.code, "bad_signature");
	assert_string_equal(v.kid, ""); /* no key of the JWKS verifies it */
	assert_int_equal(cs_sig_verify_digest(digest, d, dl, jwks, cs_signer_kid(other), &v), CS_E_SIGNATURE_INVALID);
	assert_string_equal(v.code, "bad_signature");
	json_decref(jwks);
	jwks = jwks_of(signer, "compromised", NULL, NULL);
	assert_int_equal(cs_sig_verify_digest(digest, d, dl, jwks, NULL, &v), CS_E_SIGNATURE_INVALID);
	assert_string_equal(v.code, "key_compromised");
	json_decref(jwks);
	free(raw_b64url);
	free(der_b64);
	free(r);
	free(d);
}

static void test_message_signature_verifies(void **state)
{
	(void)state;
	uint8_t raw[64], der[CS_ES256_DER_MAX];
	size_t der_len = sizeof(der);
	static const char msg[] = "DSSEv1 4 text 5 hello";
	assert_int_equal(cs_signer_sign_message(signer, (const uint8_t *)msg, strlen(msg), raw, der, &der_len), CS_OK);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub), 1);
	assert_int_equal(EVP_DigestVerify(md, der, der_len, (const uint8_t *)msg, strlen(msg)), 1);
	EVP_MD_CTX_free(md);
	assert_der_is_raw(der, der_len, raw);
	/* the message signature is one over SHA-256(msg) */
	uint8_t digest[32];
	SHA256((const uint8_t *)msg, strlen(msg), digest);
	assert_true(openssl_verify_digest(pub, digest, der, der_len));
	/* an empty message is a message */
	der_len = sizeof(der);
	assert_int_equal(cs_signer_sign_message(signer, NULL, 0, raw, der, &der_len), CS_OK);
	der_len = sizeof(der);
	assert_int_equal(cs_signer_sign_message(signer, NULL, 1, raw, der, &der_len), CS_E_INVALID_ARG);
}

/* A copy of a compact JWS with one character of part (0 header, 1 payload,
 * 2 signature) changed. */
static char *tamper_jws(const char *jws, int part)
{
	char *t = strdup(jws);
	char *p = t;
	for (int i = 0; i < part; i++)
		p = strchr(p, '.') + 1;
	p[5] = p[5] == 'A' ? 'B' : 'A';
	return t;
}

static void test_jws_verifies(void **state)
{
	(void)state;
	char why[256], sha[65], want_sha[65], *jws = NULL;
	json_t *claims = NULL, *payload = json_pack("{s:s}", "artifact", "a.tar.gz");
	cs_config_profile p = profile(NULL, 3600);
	time_t now = time(NULL);
	assert_int_equal(cs_sig_jws_claims(&p, payload, "ci-deployer", "sig-1", (int64_t)now, &claims, why, sizeof(why)),
			 CS_OK);
	assert_int_equal(cs_sig_jws(signer, "release+jwt", claims, &jws, sha), CS_OK);
	/* signed_sha256: the signing input's */
	const char *dot = strrchr(jws, '.');
	assert_int_equal(cs_sig_sha256_hex((const uint8_t *)jws, (size_t)(dot - jws), want_sha), CS_OK);
	assert_string_equal(sha, want_sha);

	/* jose's verifier with the public key alone */
	json_t *header = NULL, *got = NULL;
	assert_int_equal(cs_jws_es256_verify(jws, pub, &header, &got), CS_OK);
	assert_int_equal(json_object_size(header), 3);
	assert_string_equal(json_string_value(json_object_get(header, "alg")), "ES256");
	assert_string_equal(json_string_value(json_object_get(header, "typ")), "release+jwt");
	assert_string_equal(json_string_value(json_object_get(header, "kid")), cs_signer_kid(signer));
	assert_true(json_equal(got, claims));
	json_decref(header);
	json_decref(got);

	/* the offline verifier */
	cs_sig_verdict v;
	json_t *jwks = jwks_of(other, "active", signer, "retired"), *out = NULL;
	assert_int_equal(cs_sig_verify_jws(jws, jwks, "release+jwt", (int64_t)now, &out, &v), CS_OK);
	assert_string_equal(v.code, "");
	assert_string_equal(v.kid, cs_signer_kid(signer));
	assert_string_equal(v.typ, "release+jwt");
	assert_string_equal(v.signed_sha256, sha); /* what the record and audit entry name */
	assert_true(json_equal(out, claims));
	json_decref(out);
	/* tampered header, payload, signature */
	for (int part = 0; part < 3; part++) {
		char *t = tamper_jws(jws, part);
		assert_int_equal(cs_sig_verify_jws(t, jwks, NULL, (int64_t)now, &out, &v), CS_E_SIGNATURE_INVALID);
		assert_null(out);
		assert_true(strcmp(v.code, "bad_signature") == 0 || strcmp(v.code, "malformed") == 0 ||
			    strcmp(v.code, "unknown_kid") == 0);
		free(t);
	}
	char *t = tamper_jws(jws, 1);
	assert_int_equal(cs_sig_verify_jws(t, jwks, NULL, (int64_t)now, &out, &v), CS_E_SIGNATURE_INVALID);
	free(t);
	/* wrong typ, expired, unknown kid, compromised */
	assert_int_equal(cs_sig_verify_jws(jws, jwks, "other+jwt", (int64_t)now, &out, &v), CS_E_SIGNATURE_INVALID);
	assert_string_equal(v.code, "wrong_typ");
	assert_string_equal(v.signed_sha256, sha); /* known once the input parsed */
	assert_int_equal(cs_sig_verify_jws(jws, jwks, NULL, (int64_t)now + 3600, &out, &v), CS_E_SIGNATURE_INVALID);
	assert_string_equal(v.code, "expired");
	json_decref(jwks);
	jwks = jwks_of(other, "active", NULL, NULL);
	assert_int_equal(cs_sig_verify_jws(jws, jwks, NULL, (int64_t)now, &out, &v), CS_E_SIGNATURE_INVALID);
	assert_string_equal(v.code, "unknown_kid");
	assert_null(v.key); /* no key of that kid at all (a newer key?) */
	assert_string_equal(v.signed_sha256, sha);
	json_decref(jwks);
	jwks = jwks_of(signer, "compromised", NULL, NULL);
	assert_int_equal(cs_sig_verify_jws(jws, jwks, NULL, (int64_t)now, &out, &v), CS_E_SIGNATURE_INVALID);
	assert_string_equal(v.code, "key_compromised");
	json_decref(jwks);
	jwks = jwks_of(signer, "pending", NULL, NULL);
	assert_int_equal(cs_sig_verify_jws(jws, jwks, NULL, (int64_t)now, &out, &v), CS_E_SIGNATURE_INVALID);
	assert_string_equal(v.code, "key_status");
	json_decref(jwks);
	/* a JWKS that names the other key with this key's kid */
	jwks = jwks_of(other, "active", NULL, NULL);
	json_object_set_new(json_array_get(json_object_get(jwks, "keys"), 0), "kid", json_string(cs_signer_kid(signer)));
	assert_int_equal(cs_sig_verify_jws(jws, jwks, NULL, (int64_t)now, &out, &v), CS_E_SIGNATURE_INVALID);
	assert_string_equal(v.code, "kid_mismatch");
	json_decref(jwks);
	free(jws);
	json_decref(claims);
	json_decref(payload);
}

static void test_dsse_verifies(void **state)
{
	(void)state;
	static const char body[] = "{\"_type\":\"https://in-toto.io/Statement/v1\"}";
	static const char type[] = "application/vnd.in-toto+json";
	json_t *env = NULL;
	char *der_b64 = NULL, sha[65], want_sha[65];
	uint8_t *pae = NULL, *der = NULL;
	size_t pae_len = 0, der_len = 0;
	assert_int_equal(cs_sig_dsse(signer, type, (const uint8_t *)body, strlen(body), &env, &der_b64, sha), CS_OK);
	assert_string_equal(json_string_value(json_object_get(env, "payloadType")), type);
	char *b64 = cs_sig_b64_encode((const uint8_t *)body, strlen(body));
	assert_string_equal(json_string_value(json_object_get(env, "payload")), b64);
	free(b64);
	json_t *sigs = json_object_get(env, "signatures");
	assert_int_equal(json_array_size(sigs), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(sigs, 0), "keyid")), cs_signer_kid(signer));
	assert_string_equal(json_string_value(json_object_get(json_array_get(sigs, 0), "sig")), der_b64);
	/* sig: DER over the PAE, by OpenSSL alone */
	assert_int_equal(cs_sig_dsse_pae(type, (const uint8_t *)body, strlen(body), &pae, &pae_len), CS_OK);
	assert_int_equal(cs_sig_sha256_hex(pae, pae_len, want_sha), CS_OK);
	assert_string_equal(sha, want_sha);
	assert_int_equal(cs_sig_b64_decode(der_b64, CS_ES256_DER_MAX, &der, &der_len), CS_OK);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub), 1);
	assert_int_equal(EVP_DigestVerify(md, der, der_len, pae, pae_len), 1);
	EVP_MD_CTX_free(md);

	cs_sig_verdict v;
	uint8_t *got = NULL;
	size_t got_len = 0;
	json_t *jwks = jwks_of(signer, "active", other, "active");
	assert_int_equal(cs_sig_verify_dsse(env, jwks, type, &got, &got_len, &v), CS_OK);
	assert_int_equal(got_len, strlen(body));
	assert_memory_equal(got, body, got_len);
	assert_string_equal(v.signed_sha256, sha); /* the PAE's */
	free(got);
	assert_int_equal(cs_sig_verify_dsse(env, jwks, "text/plain", &got, &got_len, &v), CS_E_SIGNATURE_INVALID);
	assert_string_equal(v.code, "wrong_payload_type");
	/* another payload type under the same signature: the PAE binds it */
	json_t *t = json_deep_copy(env);
	json_object_set_new(t, "payloadType", json_string("application/json"));
	assert_int_equal(cs_sig_verify_dsse(t, jwks, NULL, &got, &got_len, &v), CS_E_SIGNATURE_INVALID);
	assert_string_equal(v.code, "bad_signature");
	json_decref(t);
	/* another body */
	t = json_deep_copy(env);
	json_object_set_new(t, "payload", json_string("e30="));
	assert_int_equal(cs_sig_verify_dsse(t, jwks, NULL, &got, &got_len, &v), CS_E_SIGNATURE_INVALID);
	assert_string_equal(v.code, "bad_signature");
	assert_null(got);
	json_decref(t);
	json_decref(jwks);
	/* unknown keyid, compromised key */
	jwks = jwks_of(other, "active", NULL, NULL);
	assert_int_equal(cs_sig_verify_dsse(env, jwks, NULL, &got, &got_len, &v), CS_E_SIGNATURE_INVALID);
	assert_string_equal(v.code, "unknown_kid");
	assert_null(v.key);
	assert_string_equal(v.signed_sha256, sha);
	json_decref(jwks);
	jwks = jwks_of(signer, "compromised", NULL, NULL);
	assert_int_equal(cs_sig_verify_dsse(env, jwks, NULL, &got, &got_len, &v), CS_E_SIGNATURE_INVALID);
	assert_string_equal(v.code, "key_compromised");
	json_decref(jwks);
	free(pae);
	free(der);
	free(der_b64);
	json_decref(env);
}

/* The appliance's own typ ("credsign-...", RFC 7515 4.1.9: with or without
 * "application/", in any case) is never a profile signature's. */
static void test_reserved_typ_refused(void **state)
{
	(void)state;
	static const char *const reserved[] = {"credsign-cert+jwt", "CredSign-x", "application/credsign-cert+jwt",
					       "APPLICATION/CREDSIGN-revocations+jwt", "Application/credsign-",
					       NULL};
	static const char *const not_reserved[] = {"release+jwt", "application/release+jwt", "credsign", "credsignx+jwt",
					    "application/", "application/credsign", "x-credsign-cert+jwt",
					    "applicationcredsign-x", "application//credsign-x", NULL};
	for (size_t i = 0; reserved[i] != NULL; i++)
		assert_true(cs_sig_typ_reserved(reserved[i]));
	for (size_t i = 0; not_reserved[i] != NULL; i++)
		assert_false(cs_sig_typ_reserved(not_reserved[i]));
	assert_false(cs_sig_typ_reserved(NULL));

	/* a JWS of a trusted key with such a typ: refused, whatever typ is
	 * asked for; also one whose typ is too long to be shown */
	char why[256], sha[65], long_typ[160], *jws = NULL;
	json_t *payload = json_pack("{s:s}", "artifact", "a.tar.gz"), *claims = NULL, *out = NULL;
	cs_config_profile p = profile(NULL, 0);
	time_t now = time(NULL);
	snprintf(long_typ, sizeof(long_typ), "application/credsign-%0100d", 0);
	json_t *jwks = jwks_of(signer, "active", NULL, NULL);
	assert_int_equal(cs_sig_jws_claims(&p, payload, "ci", "sig-1", (int64_t)now, &claims, why, sizeof(why)), CS_OK);
	const char *typs[] = {"application/credsign-cert+jwt", "Application/CredSign-cert+jwt", long_typ, NULL};
	for (size_t i = 0; typs[i] != NULL; i++) {
		cs_sig_verdict v;
		assert_int_equal(cs_sig_jws(signer, typs[i], claims, &jws, sha), CS_OK);
		assert_int_equal(cs_sig_verify_jws(jws, jwks, NULL, (int64_t)now, &out, &v), CS_E_SIGNATURE_INVALID);
		assert_null(out);
		assert_string_equal(v.code, "wrong_typ");
		assert_non_null(strstr(v.why, "is a credsign document"));
		assert_int_equal(cs_sig_verify_jws(jws, jwks, typs[i], (int64_t)now, &out, &v), CS_E_SIGNATURE_INVALID);
		assert_string_equal(v.code, "wrong_typ");
		free(jws);
	}
	/* the same claims with a profile's typ verify */
	cs_sig_verdict v;
	assert_int_equal(cs_sig_jws(signer, "application/release+jwt", claims, &jws, sha), CS_OK);
	assert_int_equal(cs_sig_verify_jws(jws, jwks, NULL, (int64_t)now, &out, &v), CS_OK);
	json_decref(out);
	free(jws);
	json_decref(jwks);
	json_decref(claims);
	json_decref(payload);
}

/* ---- fixtures for tests/cli/sign_verify.sh ------------------------------------------ */

static int write_json(const char *dir, const char *name, const json_t *j)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return json_dump_file(j, path, JSON_COMPACT);
}

static int write_text(const char *dir, const char *name, const void *data, size_t len)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	int ok = f != NULL && fwrite(data, 1, len, f) == len;
	return f != NULL && fclose(f) == 0 && ok ? 0 : -1;
}

/* The JWKS with the top-level "profile" the appliance serves for
 * ?profile=release, formats as given (a JSON array text). */
static int write_profile_jwks(const char *dir, const char *name, const json_t *jwks, const char *formats)
{
	json_t *j = json_deep_copy(jwks);
	json_t *p = json_pack("{s:s, s:o, s:b}", "name", "release", "formats", json_loads(formats, 0, NULL),
			      "configured", 1);
	int rc = j == NULL || p == NULL || json_object_set_new(j, "profile", p) != 0 ? -1 : write_json(dir, name, j);
	json_decref(j);
	return rc;
}

static int fixtures(const char *dir)
{
	char why[256], sha[65], *jws = NULL, *expired = NULL, *der_b64 = NULL, *raw_b64url = NULL, *app_typ = NULL;
	char jws_sha[65], dsse_sha[65], digest_hex[65], shas[3 * 65 + 32];
	static const char artifact[] = "release 1.0 artifact bytes\n";
	static const char statement[] = "{\"_type\":\"https://in-toto.io/Statement/v1\",\"subject\":[]}";
	json_t *payload = json_pack("{s:s, s:i}", "artifact", "release-1.0.tar.gz", "build", 42);
	json_t *claims = NULL, *old = NULL, *env = NULL;
	uint8_t digest[32], *der = NULL;
	size_t der_len = 0;
	int64_t now = (int64_t)time(NULL);
	cs_config_profile p = profile(NULL, 3600);
	SHA256((const uint8_t *)artifact, strlen(artifact), digest);
	json_t *good = jwks_of(signer, "active", other, "retired");
	json_t *bad = jwks_of(signer, "compromised", other, "active");
	json_t *unknown = jwks_of(other, "active", NULL, NULL);
	BIO *pem = NULL;
	char path[1024];
	snprintf(path, sizeof(path), "%s/pub.pem", dir);
	int rc = cs_sig_jws_claims(&p, payload, "ci-deployer", "sig-fixture-1", now, &claims, why, sizeof(why)) != CS_OK ||
		 cs_sig_jws(signer, "release+jwt", claims, &jws, jws_sha) != CS_OK ||
		 cs_sig_jws(signer, "application/credsign-cert+jwt", claims, &app_typ, sha) != CS_OK ||
		 cs_sig_jws_claims(&p, payload, "ci-deployer", "sig-fixture-2", now - 7200, &old, why, sizeof(why)) != CS_OK ||
		 cs_sig_jws(signer, "release+jwt", old, &expired, sha) != CS_OK ||
		 cs_sig_dsse(signer, "application/vnd.in-toto+json", (const uint8_t *)statement, strlen(statement), &env,
			     &der_b64, dsse_sha) != CS_OK;
	/* the signed bytes' SHA-256 of token.jws, envelope.json, artifact.sig */
	cs_sig_hex(digest, 32, digest_hex);
	snprintf(shas, sizeof(shas), "jws %s\ndsse %s\ndigest %s\n", jws_sha, dsse_sha, digest_hex);
	free(der_b64);
	der_b64 = NULL;
	rc = rc || cs_sig_digest(signer, digest, &raw_b64url, &der_b64) != CS_OK ||
	     cs_sig_b64_decode(der_b64, CS_ES256_DER_MAX, &der, &der_len) != CS_OK ||
	     write_json(dir, "jwks.json", good) != 0 || write_json(dir, "jwks-compromised.json", bad) != 0 ||
	     write_json(dir, "jwks-unknown.json", unknown) != 0 || write_json(dir, "envelope.json", env) != 0 ||
	     write_text(dir, "token.jws", jws, strlen(jws)) != 0 ||
	     write_text(dir, "app-typ.jws", app_typ, strlen(app_typ)) != 0 ||
	     write_text(dir, "signed-sha256.txt", shas, strlen(shas)) != 0 ||
	     write_profile_jwks(dir, "jwks-profile-digest.json", good, "[\"jws\",\"dsse\",\"digest\"]") != 0 ||
	     write_profile_jwks(dir, "jwks-profile-nodigest.json", good, "[\"jws\",\"dsse\"]") != 0 ||
	     write_text(dir, "expired.jws", expired, strlen(expired)) != 0 ||
	     write_text(dir, "artifact.bin", artifact, strlen(artifact)) != 0 ||
	     write_text(dir, "artifact.sig", der, der_len) != 0 ||
	     write_text(dir, "artifact.sig.b64url", raw_b64url, strlen(raw_b64url)) != 0 ||
	     write_text(dir, "artifact.sig.b64", der_b64, strlen(der_b64)) != 0 ||
	     (pem = BIO_new_file(path, "w")) == NULL || PEM_write_bio_PUBKEY(pem, pub) != 1;
	BIO_free(pem);
	free(jws);
	free(app_typ);
	free(expired);
	free(der_b64);
	free(raw_b64url);
	free(der);
	json_decref(payload);
	json_decref(claims);
	json_decref(old);
	json_decref(env);
	json_decref(good);
	json_decref(bad);
	json_decref(unknown);
	if (rc)
		fprintf(stderr, "sigformat_test: writing the fixtures failed\n");
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--fixtures") == 0) {
		if (open_all() != 0) {
			close_all();
			return 1;
		}
		int rc = fixtures(argv[2]);
		close_all();
		return rc;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pae_spec_vector),
		cmocka_unit_test(test_reserved_claims_refused),
		cmocka_unit_test(test_claims_from_profile),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_digest_signature_verifies),
		cmocka_unit_test(test_message_signature_verifies),
		cmocka_unit_test(test_jws_verifies),
		cmocka_unit_test(test_dsse_verifies),
		cmocka_unit_test(test_reserved_typ_refused),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
