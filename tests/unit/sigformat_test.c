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
#include <unistd.h>

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
	/* through the fault module when the test gives it (it forwards every
	 * call while its control file is empty): test_token_faults */
	if (getenv("CREDSIGN_TEST_FAULT_MODULE") != NULL && getenv("CREDSIGN_FAULT_CONTROL") != NULL) {
		module = getenv("CREDSIGN_TEST_FAULT_MODULE");
		ts_write_file(getenv("CREDSIGN_FAULT_CONTROL"), "", 0600);
	}
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

/* ---- refusals of the offline verifiers -------------------------------------------------- */

/* A compact JWS of the given header and payload texts (any bytes: crafted
 * inputs), signed by s (raw r || s over the signing input), or with the
 * signature bytes given (sig != NULL). */
static char *craft_jws(const char *header, const char *payload, cs_signer *s, const uint8_t *sig, size_t sig_len)
{
	char *h = cs_b64url_encode((const uint8_t *)header, strlen(header));
	char *p = cs_b64url_encode((const uint8_t *)payload, strlen(payload));
	assert_non_null(h);
	assert_non_null(p);
	size_t in_len = strlen(h) + 1 + strlen(p);
	char *input = malloc(in_len + 1);
	assert_non_null(input);
	snprintf(input, in_len + 1, "%s.%s", h, p);
	uint8_t raw[64], der[CS_ES256_DER_MAX];
	size_t der_len = sizeof(der);
	if (sig == NULL) {
		assert_int_equal(cs_signer_sign_message(s, (const uint8_t *)input, in_len, raw, der, &der_len), CS_OK);
		sig = raw;
		sig_len = sizeof(raw);
	}
	char *sg = cs_b64url_encode(sig, sig_len);
	assert_non_null(sg);
	size_t n = in_len + 1 + strlen(sg) + 1;
	char *jws = malloc(n);
	assert_non_null(jws);
	snprintf(jws, n, "%s.%s", input, sg);
	free(h);
	free(p);
	free(input);
	free(sg);
	return jws;
}

/* verify_jws_code JWS JWKS TYP NOW CODE: refused with that code, no claims */
static void verify_jws_code(const char *jws, const json_t *jwks, const char *typ, int64_t now, const char *code)
{
	cs_sig_verdict v;
	json_t *out = NULL;
	assert_int_equal(cs_sig_verify_jws(jws, jwks, typ, now, &out, &v), CS_E_SIGNATURE_INVALID);
	assert_null(out);
	if (strcmp(v.code, code) != 0)
		fail_msg("expected %s, got %s (%s) for %.120s", code, v.code, v.why, jws != NULL ? jws : "(null)");
	assert_true(v.why[0] != '\0');
}

/* Every verifier refuses a JWKS that is not {"keys":[objects, distinct kids]}
 * with jwks_invalid, before it reads the signature. */
static void test_jwks_refused(void **state)
{
	(void)state;
	json_t *bad[5];
	bad[0] = json_pack("{s:s}", "keys", "none");
	bad[1] = json_pack("[]");
	bad[2] = json_pack("{s:[s]}", "keys", "not a key");
	json_t *dup = jwks_of(signer, "active", signer, "active");
	bad[3] = dup;
	bad[4] = NULL;
	const char *why[] = {"not a JSON Web Key Set", "not a JSON Web Key Set", "not a key", "more than once"};
	uint8_t digest[32] = {1}, sig[64] = {2}, *body = NULL;
	size_t body_len = 0;
	json_t *env = json_pack("{s:s, s:s, s:[{s:s, s:s}]}", "payloadType", "text/plain", "payload", "aGk=",
				"signatures", "keyid", cs_signer_kid(signer), "sig", "AAAA");
	for (int i = 0; i < 5; i++) {
		cs_sig_verdict v;
		verify_jws_code("a.b.c", bad[i], NULL, 0, "jwks_invalid");
		assert_int_equal(cs_sig_verify_dsse(env, bad[i], NULL, &body, &body_len, &v), CS_E_SIGNATURE_INVALID);
		assert_string_equal(v.code, "jwks_invalid");
		assert_null(body);
		assert_int_equal(cs_sig_verify_digest(digest, sig, sizeof(sig), bad[i], NULL, &v), CS_E_SIGNATURE_INVALID);
		assert_string_equal(v.code, "jwks_invalid");
		if (i < 4)
			assert_non_null(strstr(v.why, why[i]));
		if (i == 3) /* the kid named: it is a thumbprint */
			assert_non_null(strstr(v.why, cs_signer_kid(signer)));
	}
	/* a duplicate kid that is not a thumbprint is not quoted (texts from
	 * the input) */
	json_t *k = json_pack("{s:[{s:s}, {s:s}]}", "keys", "kid", "x\ny", "kid", "x\ny");
	cs_sig_verdict v;
	assert_int_equal(cs_sig_verify_digest(digest, sig, sizeof(sig), k, NULL, &v), CS_E_SIGNATURE_INVALID);
	assert_string_equal(v.code, "jwks_invalid");
	assert_non_null(strstr(v.why, "(not a thumbprint)"));
	json_decref(k);
	/* members without a kid are keys, not duplicates */
	k = json_pack("{s:[{s:s}, {s:s}]}", "keys", "kty", "EC", "kty", "EC");
	assert_int_equal(cs_sig_verify_digest(digest, sig, sizeof(sig), k, NULL, &v), CS_E_SIGNATURE_INVALID);
	assert_string_equal(v.code, "bad_signature");
	json_decref(k);
	for (int i = 0; i < 4; i++)
		json_decref(bad[i]);
	json_decref(env);
}

/* A compact JWS is refused as malformed unless it is exactly three parts, a
 * JSON object header (no duplicate members, alg ES256, no crit, typ a
 * string) and a JSON object payload; algorithm confusion never reaches the
 * key. */
static void test_jws_malformed(void **state)
{
	(void)state;
	json_t *jwks = jwks_of(signer, "active", NULL, NULL);
	char hdr[256];
	snprintf(hdr, sizeof(hdr), "{\"alg\":\"ES256\",\"kid\":\"%s\",\"typ\":\"release+jwt\"}", cs_signer_kid(signer));
	char *good = craft_jws(hdr, "{\"a\":1}", signer, NULL, 0);
	json_t *out = NULL;
	cs_sig_verdict v;
	assert_int_equal(cs_sig_verify_jws(good, jwks, "release+jwt", 1700000000, &out, &v), CS_OK);
	json_decref(out);

	/* not three parts */
	verify_jws_code(NULL, jwks, NULL, 0, "malformed");
	verify_jws_code("", jwks, NULL, 0, "malformed");
	verify_jws_code("abc", jwks, NULL, 0, "malformed");
	verify_jws_code("abc.def", jwks, NULL, 0, "malformed");
	size_t n = strlen(good) + 3;
	char *four = malloc(n);
	snprintf(four, n, "%s.x", good);
	verify_jws_code(four, jwks, NULL, 0, "malformed");
	free(four);
	/* parts that are not base64url JSON objects */
	const char *const parts[][2] = {
		{"not json", "{}"},
		{"[1]", "{}"},
		{"{\"alg\":\"ES256\",\"alg\":\"ES256\"}", "{}"}, /* duplicate member */
		{NULL, "[]"},
		{NULL, "\"text\""},
		{NULL, "{\"a\":1,\"a\":2}"},
		{NULL, "{\"a\":1} trailing"},
	};
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		char *t = craft_jws(parts[i][0] != NULL ? parts[i][0] : hdr, parts[i][1], signer, NULL, 0);
		verify_jws_code(t, jwks, NULL, 0, "malformed");
		free(t);
	}
	/* the signature part not base64url */
	char *t = strdup(good);
	t[strlen(t) - 1] = '=';
	verify_jws_code(t, jwks, NULL, 0, "malformed");
	free(t);
	/* algorithm confusion: none, HS256, RS256, ES384, no alg, alg not a
	 * string, crit: malformed, whatever the signature */
	static const char *const algs[] = {"\"none\"", "\"HS256\"", "\"RS256\"", "\"ES384\"", "\"es256\"", "null", "256"};
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		char h[256];
		snprintf(h, sizeof(h), "{\"alg\":%s,\"kid\":\"%s\"}", algs[i], cs_signer_kid(signer));
		t = craft_jws(h, "{\"a\":1}", signer, NULL, 0);
		verify_jws_code(t, jwks, NULL, 0, "malformed");
		free(t);
	}
	snprintf(hdr, sizeof(hdr), "{\"kid\":\"%s\"}", cs_signer_kid(signer));
	t = craft_jws(hdr, "{\"a\":1}", signer, NULL, 0);
	verify_jws_code(t, jwks, NULL, 0, "malformed");
	free(t);
	snprintf(hdr, sizeof(hdr), "{\"alg\":\"ES256\",\"kid\":\"%s\",\"crit\":[\"exp\"]}", cs_signer_kid(signer));
	t = craft_jws(hdr, "{\"a\":1}", signer, NULL, 0);
	verify_jws_code(t, jwks, NULL, 0, "malformed");
	free(t);
	/* typ not a string */
	snprintf(hdr, sizeof(hdr), "{\"alg\":\"ES256\",\"kid\":\"%s\",\"typ\":7}", cs_signer_kid(signer));
	t = craft_jws(hdr, "{\"a\":1}", signer, NULL, 0);
	verify_jws_code(t, jwks, NULL, 0, "malformed");
	free(t);
	/* no kid, a kid that is not a string: unknown_kid, the kid not quoted */
	t = craft_jws("{\"alg\":\"ES256\"}", "{\"a\":1}", signer, NULL, 0);
	verify_jws_code(t, jwks, NULL, 0, "unknown_kid");
	assert_int_equal(cs_sig_verify_jws(t, jwks, NULL, 0, &out, &v), CS_E_SIGNATURE_INVALID);
	assert_non_null(strstr(v.why, "(not a thumbprint)"));
	free(t);
	t = craft_jws("{\"alg\":\"ES256\",\"kid\":[1]}", "{\"a\":1}", signer, NULL, 0);
	verify_jws_code(t, jwks, NULL, 0, "unknown_kid");
	free(t);
	json_decref(jwks);
	free(good);
}

/* After the header: the signature's size, the typ asked for, exp and nbf. */
static void test_jws_signature_and_times(void **state)
{
	(void)state;
	json_t *jwks = jwks_of(signer, "active", other, "active"), *out = NULL;
	cs_sig_verdict v;
	char hdr[256], hdr_no_typ[256];
	snprintf(hdr, sizeof(hdr), "{\"alg\":\"ES256\",\"kid\":\"%s\",\"typ\":\"release+jwt\"}", cs_signer_kid(signer));
	snprintf(hdr_no_typ, sizeof(hdr_no_typ), "{\"alg\":\"ES256\",\"kid\":\"%s\"}", cs_signer_kid(signer));
	/* a signature that is not 64 bytes: 63, 65, a DER signature (what
	 * DSSE carries) of the same input */
	char *good = craft_jws(hdr, "{\"a\":1}", signer, NULL, 0);
	const char *sig_part = strrchr(good, '.') + 1;
	uint8_t *raw = NULL, der[CS_ES256_DER_MAX], longer[65];
	size_t raw_len = 0, der_len = 0;
	assert_int_equal(cs_b64url_decode(sig_part, &raw, &raw_len), CS_OK);
	assert_int_equal(raw_len, 64);
	assert_int_equal(cs_ecdsa_raw_to_der(raw, der, &der_len), CS_OK);
	memcpy(longer, raw, 64);
	longer[64] = 0;
	const uint8_t *sigs[] = {raw, longer, der};
	size_t lens[] = {63, 65, der_len};
	for (size_t i = 0; i < 3; i++) {
		char *t = craft_jws(hdr, "{\"a\":1}", NULL, sigs[i], lens[i]);
		verify_jws_code(t, jwks, NULL, 1700000000, "bad_signature");
		free(t);
	}
	free(raw);
	/* signed by the other key under this kid */
	char *t = craft_jws(hdr, "{\"a\":1}", other, NULL, 0);
	verify_jws_code(t, jwks, NULL, 1700000000, "bad_signature");
	free(t);
	/* a typ asked for and none in the header */
	t = craft_jws(hdr_no_typ, "{\"a\":1}", signer, NULL, 0);
	verify_jws_code(t, jwks, "release+jwt", 1700000000, "wrong_typ");
	assert_int_equal(cs_sig_verify_jws(t, jwks, NULL, 1700000000, &out, &v), CS_OK); /* none asked: fine */
	assert_string_equal(v.typ, "");
	json_decref(out);
	free(t);
	/* a typ too long for the verdict is not copied there */
	char long_hdr[400];
	snprintf(long_hdr, sizeof(long_hdr), "{\"alg\":\"ES256\",\"kid\":\"%s\",\"typ\":\"%0200d\"}",
		 cs_signer_kid(signer), 0);
	t = craft_jws(long_hdr, "{\"a\":1}", signer, NULL, 0);
	assert_int_equal(cs_sig_verify_jws(t, jwks, NULL, 1700000000, &out, &v), CS_OK);
	assert_string_equal(v.typ, "");
	json_decref(out);
	free(t);
	/* exp and nbf: NumericDates (integers) or malformed */
	static const char *const not_dates[] = {"{\"exp\":\"tomorrow\"}", "{\"exp\":1.5}", "{\"nbf\":null}",
						"{\"nbf\":true}"};
	for (size_t i = 0; i < 4; i++) {
		t = craft_jws(hdr, not_dates[i], signer, NULL, 0);
		verify_jws_code(t, jwks, NULL, 1700000000, "malformed");
		free(t);
	}
	t = craft_jws(hdr, "{\"nbf\":1700000100,\"exp\":1700000200}", signer, NULL, 0);
	verify_jws_code(t, jwks, NULL, 1700000099, "not_yet_valid");
	assert_int_equal(cs_sig_verify_jws(t, jwks, NULL, 1700000100, &out, &v), CS_OK); /* nbf: from then on */
	json_decref(out);
	verify_jws_code(t, jwks, NULL, 1700000200, "expired"); /* exp: not at that second */
	assert_int_equal(cs_sig_verify_jws(t, jwks, NULL, 1700000200, &out, &v), CS_E_SIGNATURE_INVALID);
	assert_non_null(strstr(v.why, "2023-11-14T22:16:40Z"));
	free(t);
	/* an exp no calendar holds is given as the number */
	t = craft_jws(hdr, "{\"exp\":9223372036854775807}", signer, NULL, 0);
	assert_int_equal(cs_sig_verify_jws(t, jwks, NULL, INT64_MAX, &out, &v), CS_E_SIGNATURE_INVALID);
	assert_string_equal(v.code, "expired");
	assert_non_null(strstr(v.why, "9223372036854775807"));
	free(t);
	/* a key the JWKS lists but cannot use (not EC P-256): unknown_kid */
	json_t *rsa = json_pack("{s:[{s:s, s:s, s:s, s:s}]}", "keys", "kty", "RSA", "kid", cs_signer_kid(signer), "n",
				"AQAB", "e", "AQAB");
	verify_jws_code(good, rsa, NULL, 1700000000, "unknown_kid");
	assert_int_equal(cs_sig_verify_jws(good, rsa, NULL, 1700000000, &out, &v), CS_E_SIGNATURE_INVALID);
	assert_non_null(strstr(v.why, "not a usable EC P-256 key"));
	json_decref(rsa);
	/* a member without status is trusted (an older JWKS) */
	json_t *plain = json_pack("{s:[O]}", "keys", cs_signer_jwk(signer));
	assert_int_equal(cs_sig_verify_jws(good, plain, NULL, 1700000000, &out, &v), CS_OK);
	json_decref(out);
	json_decref(plain);
	free(good);
	json_decref(jwks);
}

/* DSSE envelopes: each malformed part, the payload type bound, a raw r || s
 * sig accepted, and which signature's refusal is reported. */
static void test_dsse_refused(void **state)
{
	(void)state;
	static const char type[] = "application/vnd.in-toto+json";
	static const char body[] = "{}";
	json_t *env = NULL, *jwks = jwks_of(signer, "active", NULL, NULL);
	char *der_b64 = NULL, sha[65];
	uint8_t *got = NULL;
	size_t got_len = 0;
	cs_sig_verdict v;
	assert_int_equal(cs_sig_dsse(signer, type, (const uint8_t *)body, 2, &env, &der_b64, sha), CS_OK);
	const char *kid = cs_signer_kid(signer);
	/* malformed envelopes */
	json_t *bad[] = {
		json_pack("{s:s, s:[{s:s, s:s}]}", "payload", "e30=", "signatures", "keyid", kid, "sig", der_b64),
		json_pack("{s:s, s:s, s:[{s:s, s:s}]}", "payloadType", "", "payload", "e30=", "signatures", "keyid", kid,
			  "sig", der_b64),
		json_pack("{s:s, s:s, s:{s:s, s:s}}", "payloadType", type, "payload", "e30=", "signatures", "keyid", kid,
			  "sig", der_b64),
		json_pack("{s:s, s:s, s:[]}", "payloadType", type, "payload", "e30=", "signatures"),
		json_pack("{s:s, s:[{s:s, s:s}]}", "payloadType", type, "signatures", "keyid", kid, "sig", der_b64),
		json_pack("{s:s, s:s, s:[{s:s, s:s}]}", "payloadType", type, "payload", "e30", "signatures", "keyid",
			  kid, "sig", der_b64),
		json_pack("{s:s, s:s, s:[{s:s}]}", "payloadType", type, "payload", "e30=", "signatures", "keyid", kid),
		json_pack("{s:s, s:s, s:[{s:s, s:s}]}", "payloadType", type, "payload", "e30=", "signatures", "keyid",
			  kid, "sig", "not base64!"),
		json_pack("{s:s, s:s, s:[{s:s, s:s}]}", "payloadType", type, "payload", "e30=", "signatures", "keyid",
			  kid, "sig", "AAAA"), /* 3 bytes: neither DER nor raw */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_non_null(bad[i]);
		assert_int_equal(cs_sig_verify_dsse(bad[i], jwks, NULL, &got, &got_len, &v), CS_E_SIGNATURE_INVALID);
		if (strcmp(v.code, "malformed") != 0)
			fail_msg("envelope %zu: %s (%s)", i, v.code, v.why);
		assert_null(got);
		assert_int_equal(got_len, 0);
		json_decref(bad[i]);
	}
	/* a payload type of 4096 bytes or more: refused, never signed over */
	char *long_type = malloc(5000);
	memset(long_type, 'a', 4999);
	long_type[4999] = '\0';
	json_t *t = json_deep_copy(env);
	json_object_set_new(t, "payloadType", json_string(long_type));
	assert_int_equal(cs_sig_verify_dsse(t, jwks, NULL, &got, &got_len, &v), CS_E_SIGNATURE_INVALID);
	assert_string_equal(v.code, "malformed");
	assert_non_null(strstr(v.why, "too long"));
	json_decref(t);
	uint8_t *pae = NULL;
	size_t pae_len = 0;
	assert_int_equal(cs_sig_dsse_pae(long_type, (const uint8_t *)body, 2, &pae, &pae_len), CS_E_INVALID_ARG);
	assert_null(pae);
	free(long_type);
	/* the sig as raw r || s (standard base64) verifies too */
	uint8_t *der = NULL, raw[64];
	size_t der_len = 0;
	assert_int_equal(cs_sig_b64_decode(der_b64, CS_ES256_DER_MAX, &der, &der_len), CS_OK);
	assert_int_equal(cs_ecdsa_der_to_raw(der, der_len, raw), CS_OK);
	free(der);
	char *raw_b64 = cs_sig_b64_encode(raw, 64);
	t = json_deep_copy(env);
	json_object_set_new(json_array_get(json_object_get(t, "signatures"), 0), "sig", json_string(raw_b64));
	assert_int_equal(cs_sig_verify_dsse(t, jwks, type, &got, &got_len, &v), CS_OK);
	assert_string_equal(v.code, "");
	assert_string_equal(v.kid, kid);
	assert_int_equal(got_len, 2);
	free(got);
	got = NULL;
	json_decref(t);
	/* several signatures: the first that verifies wins; else the refusal of
	 * the first whose key the JWKS knows (not unknown_kid) */
	json_t *unknown = json_pack("{s:s, s:s}", "keyid", "nobody", "sig", raw_b64);
	raw[63] ^= 1; /* a signature of this kid that does not verify */
	char *flipped_b64 = cs_sig_b64_encode(raw, 64);
	json_t *forged = json_pack("{s:s, s:s}", "keyid", kid, "sig", flipped_b64);
	free(flipped_b64);
	t = json_deep_copy(env);
	json_t *sigs = json_object_get(t, "signatures");
	json_array_insert(sigs, 0, unknown);
	assert_int_equal(cs_sig_verify_dsse(t, jwks, NULL, &got, &got_len, &v), CS_OK);
	free(got);
	got = NULL;
	json_array_remove(sigs, 1); /* the good one: only the unknown kid left */
	assert_int_equal(cs_sig_verify_dsse(t, jwks, NULL, &got, &got_len, &v), CS_E_SIGNATURE_INVALID);
	assert_string_equal(v.code, "unknown_kid");
	assert_string_equal(v.signed_sha256, sha); /* the PAE's, whatever the refusal */
	json_array_append(sigs, forged); /* then a known kid's bad signature: reported */
	assert_int_equal(cs_sig_verify_dsse(t, jwks, NULL, &got, &got_len, &v), CS_E_SIGNATURE_INVALID);
	assert_string_equal(v.code, "bad_signature");
	assert_string_equal(v.kid, kid);
	json_array_clear(sigs);
	json_array_append(sigs, forged);
	json_array_append(sigs, unknown); /* the first refusal stays */
	assert_int_equal(cs_sig_verify_dsse(t, jwks, NULL, &got, &got_len, &v), CS_E_SIGNATURE_INVALID);
	assert_string_equal(v.code, "bad_signature");
	assert_null(got);
	json_decref(t);
	json_decref(unknown);
	json_decref(forged);
	free(raw_b64);
	free(der_b64);
	json_decref(env);
	json_decref(jwks);
}

/* The digest verifier's refusals. */
static void test_digest_refused(void **state)
{
	(void)state;
	uint8_t digest[32], raw[64], der[CS_ES256_DER_MAX];
	size_t der_len = sizeof(der);
	SHA256((const uint8_t *)"x", 1, digest);
	assert_int_equal(cs_signer_sign_digest(signer, digest, raw, der, &der_len), CS_OK);
	json_t *jwks = jwks_of(signer, "active", NULL, NULL);
	cs_sig_verdict v;
	assert_int_equal(cs_sig_verify_digest(NULL, raw, 64, jwks, NULL, &v), CS_E_SIGNATURE_INVALID);
	assert_string_equal(v.code, "malformed");
	assert_string_equal(v.signed_sha256, "");
	assert_int_equal(cs_sig_verify_digest(digest, NULL, 64, jwks, NULL, &v), CS_E_SIGNATURE_INVALID);
	assert_string_equal(v.code, "malformed");
	assert_int_equal(cs_sig_verify_digest(digest, raw, 63, jwks, NULL, &v), CS_E_SIGNATURE_INVALID);
	assert_string_equal(v.code, "malformed");
	assert_int_equal(cs_sig_verify_digest(digest, raw, 64, jwks, "nobody", &v), CS_E_SIGNATURE_INVALID);
	assert_string_equal(v.code, "unknown_kid");
	assert_int_equal(cs_sig_verify_digest(digest, der, der_len, jwks, cs_signer_kid(signer), &v), CS_OK);
	assert_string_equal(v.kid, cs_signer_kid(signer));
	json_decref(jwks);
	/* the kid given names a compromised key, a key of another status */
	jwks = jwks_of(signer, "compromised", NULL, NULL);
	assert_int_equal(cs_sig_verify_digest(digest, raw, 64, jwks, cs_signer_kid(signer), &v), CS_E_SIGNATURE_INVALID);
	assert_string_equal(v.code, "key_compromised");
	json_decref(jwks);
	jwks = jwks_of(signer, "revoked", NULL, NULL);
	assert_int_equal(cs_sig_verify_digest(digest, raw, 64, jwks, NULL, &v), CS_E_SIGNATURE_INVALID);
	assert_string_equal(v.code, "key_status"); /* found without a kid: still not trusted */
	assert_string_equal(v.kid, cs_signer_kid(signer));
	json_decref(jwks);
	/* no kid: a member whose key is not usable, or whose kid is not its
	 * thumbprint, is skipped */
	jwks = jwks_of(signer, "active", NULL, NULL);
	json_t *keys = json_object_get(jwks, "keys");
	json_object_set_new(json_array_get(keys, 0), "kid", json_string("forged"));
	json_array_insert_new(keys, 0, json_pack("{s:s, s:s}", "kty", "oct", "kid", "sym"));
	assert_int_equal(cs_sig_verify_digest(digest, raw, 64, jwks, NULL, &v), CS_E_SIGNATURE_INVALID);
	assert_string_equal(v.code, "bad_signature");
	json_decref(jwks);
}

/* The encoders' and builders' argument checks. */
static void test_builders_refuse_arguments(void **state)
{
	(void)state;
	char why[256], sha[65] = "x", *jws = (char *)1, *s1 = (char *)1, *s2 = (char *)1;
	json_t *claims = (json_t *)1, *payload = json_pack("{s:i}", "a", 1), *env = (json_t *)1;
	cs_config_profile p = profile(NULL, 60);
	/* claims: no subject, no id, a time out of range, a lifetime below zero */
	assert_int_equal(cs_sig_jws_claims(NULL, payload, "s", "j", 1, &claims, why, sizeof(why)), CS_E_INVALID_ARG);
	assert_null(claims);
	assert_int_equal(cs_sig_jws_claims(&p, payload, NULL, "j", 1, &claims, why, sizeof(why)), CS_E_INVALID_ARG);
	assert_string_equal(why, "the claims need a subject, an id and a time");
	assert_int_equal(cs_sig_jws_claims(&p, payload, "", "j", 1, &claims, why, sizeof(why)), CS_E_INVALID_ARG);
	assert_int_equal(cs_sig_jws_claims(&p, payload, "s", NULL, 1, &claims, why, sizeof(why)), CS_E_INVALID_ARG);
	assert_int_equal(cs_sig_jws_claims(&p, payload, "s", "", 1, &claims, why, sizeof(why)), CS_E_INVALID_ARG);
	assert_int_equal(cs_sig_jws_claims(&p, payload, "s", "j", -1, &claims, why, sizeof(why)), CS_E_INVALID_ARG);
	assert_int_equal(cs_sig_jws_claims(&p, payload, "s", "j", INT64_MAX - 59, &claims, why, sizeof(why)),
			 CS_E_INVALID_ARG); /* exp would overflow */
	p.lifetime_seconds = -1;
	assert_int_equal(cs_sig_jws_claims(&p, payload, "s", "j", 1, &claims, NULL, 0), CS_E_INVALID_ARG);
	assert_null(claims);
	/* a subject that is not UTF-8; no issuer configured */
	p = profile(NULL, 0);
	p.iss = NULL;
	assert_int_equal(cs_sig_jws_claims(&p, payload, "\xff\xfe", "j", 1, &claims, why, sizeof(why)), CS_E_INVALID_ARG);
	assert_string_equal(why, "a claim is not valid UTF-8");
	assert_null(claims);
	assert_int_equal(cs_sig_jws_claims(&p, payload, "s", "j", 1, &claims, why, sizeof(why)), CS_OK);
	assert_null(json_object_get(claims, "iss"));
	/* cs_sig_jws: a signer, a typ and an object */
	assert_int_equal(cs_sig_jws(NULL, "t", claims, &jws, sha), CS_E_INVALID_ARG);
	assert_null(jws);
	assert_string_equal(sha, "");
	assert_int_equal(cs_sig_jws(signer, NULL, claims, &jws, sha), CS_E_INVALID_ARG);
	assert_int_equal(cs_sig_jws(signer, "", claims, &jws, sha), CS_E_INVALID_ARG);
	assert_int_equal(cs_sig_jws(signer, "t", payload, &jws, sha), CS_OK);
	free(jws);
	json_t *arr = json_array();
	assert_int_equal(cs_sig_jws(signer, "t", arr, &jws, sha), CS_E_INVALID_ARG);
	json_decref(arr);
	json_decref(claims);
	/* dsse */
	uint8_t *pae = (uint8_t *)1;
	size_t pae_len = 1;
	assert_int_equal(cs_sig_dsse_pae(NULL, NULL, 0, &pae, &pae_len), CS_E_INVALID_ARG);
	assert_null(pae);
	assert_int_equal(pae_len, 0);
	assert_int_equal(cs_sig_dsse_pae("", NULL, 0, &pae, &pae_len), CS_E_INVALID_ARG);
	assert_int_equal(cs_sig_dsse_pae("t", NULL, 1, &pae, &pae_len), CS_E_INVALID_ARG);
	assert_int_equal(cs_sig_dsse_pae("t", NULL, 0, &pae, &pae_len), CS_OK);
	assert_int_equal(pae_len, strlen("DSSEv1 1 t 0 "));
	assert_memory_equal(pae, "DSSEv1 1 t 0 ", pae_len);
	free(pae);
	assert_int_equal(cs_sig_dsse(NULL, "t", (const uint8_t *)"x", 1, &env, &s1, sha), CS_E_INVALID_ARG);
	assert_null(env);
	assert_null(s1);
	assert_int_equal(cs_sig_dsse(signer, NULL, (const uint8_t *)"x", 1, &env, &s1, sha), CS_E_INVALID_ARG);
	assert_string_equal(sha, "");
	/* a payload type that is not UTF-8: refused, no signature returned */
	assert_int_equal(cs_sig_dsse(signer, "text/\xff", (const uint8_t *)"x", 1, &env, &s1, sha), CS_E_INVALID_ARG);
	assert_null(env);
	assert_null(s1);
	assert_string_equal(sha, "");
	/* digest */
	uint8_t digest[32] = {0};
	assert_int_equal(cs_sig_digest(NULL, digest, &s1, &s2), CS_E_INVALID_ARG);
	assert_null(s1);
	assert_null(s2);
	assert_int_equal(cs_sig_digest(signer, NULL, &s1, &s2), CS_E_INVALID_ARG);
	/* encodings */
	assert_null(cs_sig_b64_encode(NULL, 1));
	char *e = cs_sig_b64_encode(NULL, 0);
	assert_string_equal(e, "");
	free(e);
	uint8_t *out = (uint8_t *)1;
	size_t len = 1;
	assert_int_equal(cs_sig_b64_decode(NULL, 16, &out, &len), CS_E_INVALID_ARG);
	assert_null(out);
	assert_int_equal(len, 0);
	assert_int_equal(cs_sig_b64_decode("aA==", 16, &out, &len), CS_OK); /* two pad characters */
	assert_int_equal(len, 1);
	assert_int_equal(out[0], 'h');
	free(out);
	assert_int_equal(cs_sig_b64_decode("aB==", 16, &out, &len), CS_E_INVALID_ARG); /* unused bits set */
	assert_int_equal(cs_sig_b64_decode("====", 16, &out, &len), CS_E_INVALID_ARG);
	assert_int_equal(cs_sig_b64_decode("a===", 16, &out, &len), CS_E_INVALID_ARG);
	char hex[65];
	assert_int_equal(cs_sig_sha256_hex(NULL, 1, hex), CS_E_CRYPTO);
	assert_string_equal(hex, "");
	assert_int_equal(cs_sig_sha256_hex(NULL, 0, hex), CS_OK);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	assert_false(cs_sig_typ_reserved(NULL));
	assert_true(cs_sig_typ_reserved("Application/CREDSIGN-cert+jwt"));
	assert_false(cs_sig_typ_reserved("application/jwt"));
	json_decref(payload);
}

/* ---- the token failing or returning signatures that do not verify ------------------------- */

static void faults(const char *rules)
{
	ts_write_file(getenv("CREDSIGN_FAULT_CONTROL"), rules, 0600);
	usleep(10000); /* the module notices changes by size and mtime */
}

static int digest_verifies(const uint8_t digest[32], const uint8_t *der, size_t der_len)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(pub, NULL);
	int ok = c != NULL && EVP_PKEY_verify_init(c) == 1 && EVP_PKEY_verify(c, der, der_len, digest, 32) == 1;
	EVP_PKEY_CTX_free(c);
	ERR_clear_error();
	return ok;
}

/* Every signature is checked with the public half before it is used: one
 * that does not verify is asked for again once, twice is
 * CS_E_SIGNATURE_INVALID with nothing returned; a token error comes back
 * as the token layer's error (from the provider's reason). */
static void test_token_faults(void **state)
{
	(void)state;
	if (getenv("CREDSIGN_TEST_FAULT_MODULE") == NULL || getenv("CREDSIGN_FAULT_CONTROL") == NULL)
		skip();
	uint8_t digest[32], raw[64], der[CS_ES256_DER_MAX];
	size_t der_len = sizeof(der);
	SHA256((const uint8_t *)"fault", 5, digest);
	static const uint8_t msg[] = "a message";
	json_t *claims = json_pack("{s:s}", "a", "b"), *env = NULL;
	char *jws = NULL, *s1 = NULL, *s2 = NULL, sha[65];

	/* one bad signature: the retry's is returned, and it verifies */
	faults("corrupt-signature 1\n");
	assert_int_equal(cs_signer_sign_digest(signer, digest, raw, der, &der_len), CS_OK);
	assert_true(digest_verifies(digest, der, der_len));
	assert_der_is_raw(der, der_len, raw);
	faults("corrupt-signature 1\n");
	der_len = sizeof(der);
	assert_int_equal(cs_signer_sign_message(signer, msg, sizeof(msg), raw, der, &der_len), CS_OK);
	faults("corrupt-signature 1\n");
	assert_int_equal(cs_signer_jws(signer, "test+jwt", claims, &jws), CS_OK);
	json_t *h = NULL, *p = NULL;
	assert_int_equal(cs_jws_es256_verify(jws, pub, &h, &p), CS_OK);
	json_decref(h);
	json_decref(p);
	free(jws);
	jws = NULL;

	/* every signature bad: refused, nothing usable left */
	faults("corrupt-signature\n");
	der_len = sizeof(der);
	memset(raw, 0xee, sizeof(raw));
	assert_int_equal(cs_signer_sign_digest(signer, digest, raw, der, &der_len), CS_E_SIGNATURE_INVALID);
	assert_int_equal(der_len, sizeof(der)); /* as given */
	static const uint8_t zero[64];
	assert_memory_equal(raw, zero, 64); /* wiped */
	assert_int_equal(cs_signer_sign_message(signer, msg, sizeof(msg), raw, der, &der_len), CS_E_SIGNATURE_INVALID);
	assert_memory_equal(raw, zero, 64);
	assert_int_equal(cs_signer_jws(signer, "test+jwt", claims, &jws), CS_E_SIGNATURE_INVALID);
	assert_null(jws);
	assert_int_equal(cs_sig_jws(signer, "test+jwt", claims, &jws, sha), CS_E_SIGNATURE_INVALID);
	assert_null(jws);
	assert_string_equal(sha, "");
	assert_int_equal(cs_sig_dsse(signer, "text/plain", msg, sizeof(msg), &env, &s1, sha), CS_E_SIGNATURE_INVALID);
	assert_null(env);
	assert_null(s1);
	assert_string_equal(sha, "");
	assert_int_equal(cs_sig_digest(signer, digest, &s1, &s2), CS_E_SIGNATURE_INVALID);
	assert_null(s1);
	assert_null(s2);

	/* the token failing C_Sign (CKR_FUNCTION_FAILED): a token error */
	faults("C_Sign 0x6\n");
	der_len = sizeof(der);
	cs_err r = cs_signer_sign_digest(signer, digest, raw, der, &der_len);
	assert_int_not_equal(r, CS_OK);
	assert_int_equal(cs_err_category_of(r), CS_CAT_TOKEN);
	assert_int_equal(der_len, sizeof(der));
	r = cs_signer_sign_message(signer, msg, sizeof(msg), raw, der, &der_len);
	assert_int_equal(cs_err_category_of(r), CS_CAT_TOKEN);
	r = cs_signer_jws(signer, "test+jwt", claims, &jws);
	assert_int_equal(cs_err_category_of(r), CS_CAT_TOKEN);
	assert_null(jws);
	assert_int_equal(cs_err_category_of(cs_sig_digest(signer, digest, &s1, &s2)), CS_CAT_TOKEN);
	assert_null(s1);
	faults("");
	der_len = sizeof(der);
	assert_int_equal(cs_signer_sign_digest(signer, digest, raw, der, &der_len), CS_OK);
	json_decref(claims);
}

/* The signer's argument checks, and a key the token does not hold. */
static void test_signer_arguments(void **state)
{
	(void)state;
	uint8_t digest[32] = {0}, raw[64], der[CS_ES256_DER_MAX];
	size_t der_len = sizeof(der);
	assert_int_equal(cs_signer_sign_digest(NULL, digest, raw, der, &der_len), CS_E_INVALID_ARG);
	assert_int_equal(cs_signer_sign_digest(signer, NULL, raw, der, &der_len), CS_E_INVALID_ARG);
	assert_int_equal(cs_signer_sign_digest(signer, digest, NULL, der, &der_len), CS_E_INVALID_ARG);
	assert_int_equal(cs_signer_sign_digest(signer, digest, raw, NULL, &der_len), CS_E_INVALID_ARG);
	assert_int_equal(cs_signer_sign_digest(signer, digest, raw, der, NULL), CS_E_INVALID_ARG);
	der_len = CS_ES256_DER_MAX - 1;
	assert_int_equal(cs_signer_sign_message(signer, digest, 1, raw, der, &der_len), CS_E_BUFFER_TOO_SMALL);
	cs_signer *s = (cs_signer *)1;
	assert_int_equal(cs_signer_open(libctx, "pkcs11:token=cstest;object=sigformat-no-such-key", &s),
			 CS_E_KEY_NOT_FOUND);
	assert_null(s);
	/* the slot: empty, swapped, its kid */
	cs_signer_slot *slot = NULL;
	char kid[44];
	assert_null(cs_signer_acquire(NULL));
	assert_int_equal(cs_signer_slot_new(NULL, &slot), CS_OK);
	cs_signer_slot_kid(slot, kid);
	assert_string_equal(kid, "");
	cs_signer_slot_swap(slot, cs_signer_ref(signer));
	cs_signer_slot_kid(slot, kid);
	assert_string_equal(kid, cs_signer_kid(signer));
	cs_signer_slot_free(slot);
	cs_signer_slot_free(NULL);
	assert_null(cs_signer_ref(NULL));
	cs_signer_free(NULL);
}

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
		cmocka_unit_test(test_jwks_refused),
		cmocka_unit_test(test_jws_malformed),
		cmocka_unit_test(test_jws_signature_and_times),
		cmocka_unit_test(test_dsse_refused),
		cmocka_unit_test(test_digest_refused),
		cmocka_unit_test(test_builders_refuse_arguments),
		cmocka_unit_test(test_signer_arguments),
		cmocka_unit_test(test_token_faults),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
