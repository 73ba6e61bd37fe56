/*
 * provider_test: the credsign-pkcs11 provider loaded in-process into its own
 * library context, against the SoftHSM2 test token (through the fault module,
 * so the token can be made to fail on purpose).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/store.h>

#include "provider.h"
#include "test_support.h"
#include "token.h"

#define KEY_LABEL "provider-sign"
#define KEY_URI "pkcs11:token=cstest;object=" KEY_LABEL

typedef struct {
	cs_token *token;
	OSSL_LIB_CTX *libctx;
	OSSL_PROVIDER *prov, *deflt;
	EVP_PKEY *key;     /* through the provider */
	EVP_PKEY *pub;     /* the public half, default provider */
} fixture;

static char control[600];

static void faults(const char *rules)
{
	ts_write_file(control, rules, 0600);
	usleep(10000);
}

/* The public-key-only object of a URI (cs_provider_load_key loads the
 * private-key handle). */
static EVP_PKEY *load_public(OSSL_LIB_CTX *libctx, const char *uri)
{
	const int expect = OSSL_STORE_INFO_PUBKEY;
	EVP_PKEY *pkey = NULL;
	OSSL_STORE_CTX *st = OSSL_STORE_open_ex(uri, libctx, NULL, NULL, NULL, NULL, NULL, NULL);
	if (st == NULL)
		return NULL;
	OSSL_STORE_expect(st, expect);
	while (pkey == NULL && !OSSL_STORE_eof(st)) {
		OSSL_STORE_INFO *info = OSSL_STORE_load(st);
		if (info == NULL)
			break;
		if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PUBKEY)
			pkey = OSSL_STORE_INFO_get1_PUBKEY(info);
		OSSL_STORE_INFO_free(info);
	}
	OSSL_STORE_close(st);
	return pkey;
}

static int setup(void **state)
{
	const char *dir = getenv("CREDSIGN_TEST_TOKEN_DIR");
	const char *module = getenv("CREDSIGN_TEST_FAULT_MODULE");
	if (dir == NULL || module == NULL || getenv("CREDSIGN_FAULT_CONTROL") == NULL)
		return -1;
	snprintf(control, sizeof(control), "%s", getenv("CREDSIGN_FAULT_CONTROL"));
	faults("");
	char pin[600];
	snprintf(pin, sizeof(pin), "%s/user.pin", dir);
	fixture *f = calloc(1, sizeof(*f));
	cs_token_params p = {module, "pkcs11:token=cstest", pin, 4, 1, NULL};
	if (f == NULL || cs_token_open(&p, &f->token) != CS_OK)
		return -1;
	cs_key_ref q = {.label = KEY_LABEL}, ref;
	cs_err r = cs_token_find_key(f->token, &q, &ref);
	if (r == CS_E_KEY_NOT_FOUND)
		r = cs_token_generate_p256(f->token, KEY_LABEL, &ref);
	if (r != CS_OK || cs_token_public_key(f->token, &ref, &f->pub) != CS_OK)
		return -1;
	f->libctx = OSSL_LIB_CTX_new();
	if (f->libctx == NULL || cs_provider_load(f->libctx, f->token, &f->prov) != CS_OK)
		return -1;
	f->deflt = OSSL_PROVIDER_load(f->libctx, "default");
	if (f->deflt == NULL)
		return -1;
	f->key = cs_provider_load_key(f->libctx, KEY_URI);
	if (f->key == NULL)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	faults("");
	EVP_PKEY_free(f->key);
	EVP_PKEY_free(f->pub);
	OSSL_PROVIDER_unload(f->prov);
	OSSL_PROVIDER_unload(f->deflt);
	OSSL_LIB_CTX_free(f->libctx);
	cs_token_close(f->token);
	free(f);
	return 0;
}

static void test_store_yields_key_and_public_key(void **state)
{
	fixture *f = *state;
	assert_true(EVP_PKEY_is_a(f->key, "EC"));
	assert_int_equal(EVP_PKEY_get_bits(f->key), 256);
	assert_int_equal(EVP_PKEY_get_security_bits(f->key), 128);
	assert_string_equal(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(f->key)), CS_PROVIDER_NAME);
	/* the same public key as the token layer reads */
	assert_int_equal(EVP_PKEY_eq(f->key, f->pub), 1);
	/* and a public-key-only object when that is what the caller expects */
	EVP_PKEY *pubonly = load_public(f->libctx, KEY_URI);
	assert_non_null(pubonly);
	assert_int_equal(EVP_PKEY_eq(pubonly, f->pub), 1);
	EVP_PKEY_free(pubonly);
	/* unknown keys and non-key URIs are errors, not crashes */
	assert_null(cs_provider_load_key(f->libctx, "pkcs11:token=cstest;object=no-such-key"));
	assert_null(cs_provider_load_key(f->libctx, "pkcs11:token=cstest"));
	ERR_clear_error();
}

static void test_public_half_exports(void **state)
{
	fixture *f = *state;
	BIGNUM *x = NULL, *x_ref = NULL;
	char group[32];
	assert_true(EVP_PKEY_get_bn_param(f->key, OSSL_PKEY_PARAM_EC_PUB_X, &x));
	assert_true(EVP_PKEY_get_bn_param(f->pub, OSSL_PKEY_PARAM_EC_PUB_X, &x_ref));
	assert_int_equal(BN_cmp(x, x_ref), 0);
	assert_true(EVP_PKEY_get_utf8_string_param(f->key, OSSL_PKEY_PARAM_GROUP_NAME, group,
						   sizeof(group), NULL));
	assert_string_equal(group, "prime256v1");
	BN_free(x);
	BN_free(x_ref);
	BIO *mem = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_PUBKEY(mem, f->key), 1);
	EVP_PKEY *back = PEM_read_bio_PUBKEY(mem, NULL, NULL, NULL);
	assert_non_null(back);
	assert_int_equal(EVP_PKEY_eq(back, f->pub), 1);
	EVP_PKEY_free(back);
	BIO_free(mem);
}

static void test_private_half_never_leaves(void **state)
{
	fixture *f = *state;
	BIGNUM *priv = NULL;
	OSSL_PARAM *params = NULL;
	assert_false(EVP_PKEY_get_bn_param(f->key, OSSL_PKEY_PARAM_PRIV_KEY, &priv));
	assert_null(priv);
	assert_int_not_equal(EVP_PKEY_todata(f->key, EVP_PKEY_KEYPAIR, &params), 1);
	assert_null(params);
	BIO *mem = BIO_new(BIO_s_mem());
	assert_int_not_equal(PEM_write_bio_PrivateKey(mem, f->key, NULL, NULL, 0, NULL, NULL), 1);
	assert_int_equal(BIO_pending(mem), 0);
	BIO_free(mem);
	ERR_clear_error();
}

static void digest_sign_and_verify(OSSL_LIB_CTX *libctx, EVP_PKEY *key, EVP_PKEY *pub, const char *msg)
{
	uint8_t sig[80], digest[32];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestSignInit_ex(md, NULL, "SHA256", libctx, NULL, key, NULL), 1);
	assert_int_equal(EVP_DigestSign(md, sig, &siglen, (const uint8_t *)msg, strlen(msg)), 1);
	EVP_MD_CTX_free(md);
	SHA256((const uint8_t *)msg, strlen(msg), digest);
	assert_true(ts_verify_der(pub, digest, sig, siglen));
}

static void test_digest_sign(void **state)
{
	fixture *f = *state;
	digest_sign_and_verify(f->libctx, f->key, f->pub, "compliance certificate payload");
	/* streamed in parts (Update/Final, as X.509 and `openssl dgst` do),
	 * twice on one context, with the preference query the daemon uses */
	const char *msg = "compliance certificate payload";
	uint8_t sig[80], digest[32];
	SHA256((const uint8_t *)msg, strlen(msg), digest);
	EVP_MD_CTX *stream = EVP_MD_CTX_new();
	for (int round = 0; round < 2; round++) {
		size_t siglen = sizeof(sig);
		assert_int_equal(EVP_DigestSignInit_ex(stream, NULL, "SHA256", f->libctx,
						       CS_PROVIDER_SIGN_PROPQ, f->key, NULL), 1);
		assert_int_equal(EVP_DigestSignUpdate(stream, msg, 11), 1);
		assert_int_equal(EVP_DigestSignUpdate(stream, msg + 11, strlen(msg) - 11), 1);
		assert_int_equal(EVP_DigestSignFinal(stream, sig, &siglen), 1);
		assert_true(ts_verify_der(f->pub, digest, sig, siglen));
	}
	EVP_MD_CTX_free(stream);
	/* only SHA-256 */
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	assert_int_not_equal(EVP_DigestSignInit_ex(md, NULL, "SHA384", f->libctx, NULL, f->key, NULL), 1);
	EVP_MD_CTX_free(md);
	ERR_clear_error();
}

static void test_pkey_sign_digest(void **state)
{
	fixture *f = *state;
	uint8_t digest[32], sig[80];
	size_t siglen = sizeof(sig);
	SHA256((const uint8_t *)"x", 1, digest);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(f->libctx, f->key, NULL);
	assert_non_null(ctx);
	assert_int_equal(EVP_PKEY_sign_init(ctx), 1);
	assert_int_equal(EVP_PKEY_sign(ctx, sig, &siglen, digest, sizeof(digest)), 1);
	assert_true(ts_verify_der(f->pub, digest, sig, siglen));
	/* a digest of the wrong size is refused */
	siglen = sizeof(sig);
	assert_int_not_equal(EVP_PKEY_sign(ctx, sig, &siglen, digest, 20), 1);
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
}

static void test_token_failure_is_an_error(void **state)
{
	fixture *f = *state;
	uint8_t sig[80];
	size_t siglen = sizeof(sig);
	char rules[96];
	snprintf(rules, sizeof(rules), "C_Sign %#lx\nC_OpenSession %#lx\n",
		 (unsigned long)CKR_DEVICE_REMOVED, (unsigned long)CKR_TOKEN_NOT_PRESENT);
	faults(rules);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestSignInit_ex(md, NULL, "SHA256", f->libctx, NULL, f->key, NULL), 1);
	assert_int_not_equal(EVP_DigestSign(md, sig, &siglen, (const uint8_t *)"m", 1), 1);
	EVP_MD_CTX_free(md);
	/* the reason is on OpenSSL's error queue, from this provider */
	unsigned long e = ERR_peek_last_error();
	assert_int_equal(ERR_GET_REASON(e), CS_E_TOKEN_UNAVAILABLE + 1);
	ERR_clear_error();
	faults("");
	digest_sign_and_verify(f->libctx, f->key, f->pub, "after the token came back");
}

static void test_token_rng_as_drbg(void **state)
{
	fixture *f = *state;
	uint8_t a[64], b[64];
	assert_int_equal(cs_provider_use_token_rng(f->libctx), CS_OK);
	assert_int_equal(RAND_bytes_ex(f->libctx, a, sizeof(a), 0), 1);
	assert_int_equal(RAND_priv_bytes_ex(f->libctx, b, sizeof(b), 0), 1);
	assert_memory_not_equal(a, b, sizeof(a));
	EVP_RAND_CTX *primary = RAND_get0_primary(f->libctx);
	assert_non_null(primary);
	assert_string_equal(EVP_RAND_get0_name(EVP_RAND_CTX_get0_rand(primary)), CS_PROVIDER_RAND_NAME);
	/* the bytes really come from the token: when it fails, so does RAND */
	char rules[64];
	snprintf(rules, sizeof(rules), "C_GenerateRandom %#lx\n", (unsigned long)CKR_FUNCTION_FAILED);
	faults(rules);
	assert_int_not_equal(RAND_bytes_ex(f->libctx, a, sizeof(a), 0), 1);
	ERR_clear_error();
	faults("");
	assert_int_equal(RAND_bytes_ex(f->libctx, a, sizeof(a), 0), 1);
	/* and signing, where the module uses OpenSSL's default context
	 * internally, does not re-enter the token RNG (no deadlock) */
	digest_sign_and_verify(f->libctx, f->key, f->pub, "with the token RNG enabled");
}

/* text with spaces percent-encoded, as a URI attribute value */
static void uri_value(char *out, size_t cap, const char *text)
{
	size_t o = 0;
	for (; *text && o + 4 < cap; text++) {
		if (*text == ' ') {
			memcpy(out + o, "%20", 3);
			o += 3;
		} else {
			out[o++] = *text;
		}
	}
	out[o] = '\0';
}

static void test_key_uri_must_name_the_open_token(void **state)
{
	fixture *f = *state;
	cs_token_info info;
	assert_int_equal(cs_token_get_info(f->token, &info), CS_OK);
	char manufacturer[128], model[64], library[128], uri[512];
	uri_value(manufacturer, sizeof(manufacturer), info.manufacturer);
	uri_value(model, sizeof(model), info.model);
	uri_value(library, sizeof(library), info.module_manufacturer);

	/* another token, by each attribute: the key exists in the open one,
	 * which must not answer for it */
	const char *other[] = {
		"pkcs11:token=other-token;object=" KEY_LABEL,
		"pkcs11:serial=0000deadbeef0000;object=" KEY_LABEL,
		"pkcs11:manufacturer=Another%20Vendor;object=" KEY_LABEL,
		"pkcs11:model=HSM-9000;object=" KEY_LABEL,
		"pkcs11:token=cstest;serial=0000deadbeef0000;object=" KEY_LABEL,
		"pkcs11:library-manufacturer=Another%20Vendor;object=" KEY_LABEL,
		"pkcs11:library-description=Another%20Module;object=" KEY_LABEL,
	};
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		EVP_PKEY *k = cs_provider_load_key(f->libctx, other[i]);
		if (k != NULL)
			fprintf(stderr, "resolved in the open token: %s\n", other[i]);
		assert_null(k);
		assert_int_equal(ERR_GET_REASON(ERR_peek_last_error()), CS_E_TOKEN_NOT_FOUND + 1);
		ERR_clear_error();
		assert_null(load_public(f->libctx, other[i]));
		ERR_clear_error();
	}
	snprintf(uri, sizeof(uri), "pkcs11:slot-id=%lu;object=" KEY_LABEL, info.slot_id + 1);
	assert_null(cs_provider_load_key(f->libctx, uri));
	assert_int_equal(ERR_GET_REASON(ERR_peek_last_error()), CS_E_TOKEN_NOT_FOUND + 1);
	ERR_clear_error();
	/* what cannot be checked against the open token is refused, not ignored */
	static const struct {
		const char *uri;
		cs_err reason;
	} unchecked[] = {
		{"pkcs11:slot-description=Another%20Slot;object=" KEY_LABEL, CS_E_URI_INVALID},
		{"pkcs11:slot-manufacturer=Another%20Vendor;object=" KEY_LABEL, CS_E_URI_INVALID},
		/* in-process, the module is the application's: not comparable */
		{"pkcs11:object=" KEY_LABEL "?module-path=/usr/lib/other-pkcs11.so", CS_E_TOKEN_NOT_FOUND},
		{"pkcs11:object=" KEY_LABEL "?module-name=other", CS_E_TOKEN_NOT_FOUND},
	};
	for (size_t i = 0; i < sizeof(unchecked) / sizeof(unchecked[0]); i++) {
		assert_null(cs_provider_load_key(f->libctx, unchecked[i].uri));
		assert_int_equal(ERR_GET_REASON(ERR_peek_last_error()), unchecked[i].reason + 1);
		ERR_clear_error();
	}

	/* the open token, named by any of its attributes, or not named */
	char same[6][512];
	snprintf(same[0], sizeof(same[0]), "pkcs11:object=%s", KEY_LABEL);
	snprintf(same[1], sizeof(same[1]), "pkcs11:serial=%s;object=%s", info.serial, KEY_LABEL);
	snprintf(same[2], sizeof(same[2]), "pkcs11:token=%s;manufacturer=%s;model=%s;serial=%s;object=%s",
		 info.label, manufacturer, model, info.serial, KEY_LABEL);
	snprintf(same[3], sizeof(same[3]), "pkcs11:slot-id=%lu;object=%s", info.slot_id, KEY_LABEL);
	snprintf(same[4], sizeof(same[4]), "pkcs11:library-manufacturer=%s;library-version=%u.%u;object=%s",
		 library, info.module_major, info.module_minor, KEY_LABEL);
	snprintf(same[5], sizeof(same[5]), "%s", KEY_URI);
	for (size_t i = 0; i < 6; i++) {
		EVP_PKEY *k = cs_provider_load_key(f->libctx, same[i]);
		if (k == NULL) {
			fprintf(stderr, "not resolved: %s\n", same[i]);
			ERR_print_errors_fp(stderr);
		}
		assert_non_null(k);
		assert_int_equal(EVP_PKEY_eq(k, f->pub), 1);
		EVP_PKEY_free(k);
	}
}

struct worker {
	fixture *f;
	int ok;
};

static void *sign_loop(void *p)
{
	struct worker *w = p;
	for (int i = 0; i < 100; i++) {
		uint8_t sig[80], digest[32];
		size_t siglen = sizeof(sig);
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		int good = EVP_DigestSignInit_ex(md, NULL, "SHA256", w->f->libctx, NULL, w->f->key, NULL) == 1 &&
			   EVP_DigestSign(md, sig, &siglen, (const uint8_t *)"t", 1) == 1;
		EVP_MD_CTX_free(md);
		SHA256((const uint8_t *)"t", 1, digest);
		EVP_PKEY_CTX *v = EVP_PKEY_CTX_new(w->f->pub, NULL);
		good = good && v != NULL && EVP_PKEY_verify_init(v) == 1 &&
		       EVP_PKEY_verify(v, sig, siglen, digest, 32) == 1;
		EVP_PKEY_CTX_free(v);
		if (!good) {
			fprintf(stderr, "thread signature %d failed:\n", i);
			ERR_print_errors_fp(stderr);
		}
		w->ok += good;
	}
	return NULL;
}

static void test_threads(void **state)
{
	fixture *f = *state;
	pthread_t th[4];
	struct worker w[4];
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){f, 0};
		assert_int_equal(pthread_create(&th[i], NULL, sign_loop, &w[i]), 0);
	}
	/* join every thread before asserting: a failed assertion must not
	 * tear the fixture down under running threads */
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 4; i++)
		assert_int_equal(w[i].ok, 100);
}

static void test_fork_child_signs_on_its_own_sessions(void **state)
{
	fixture *f = *state;
	digest_sign_and_verify(f->libctx, f->key, f->pub, "parent before fork");
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		uint8_t sig[80], digest[32];
		size_t siglen = sizeof(sig);
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		int ok = EVP_DigestSignInit_ex(md, NULL, "SHA256", f->libctx, NULL, f->key, NULL) == 1 &&
			 EVP_DigestSign(md, sig, &siglen, (const uint8_t *)"child", 5) == 1;
		SHA256((const uint8_t *)"child", 5, digest);
		EVP_PKEY_CTX *v = EVP_PKEY_CTX_new(f->pub, NULL);
		ok = ok && EVP_PKEY_verify_init(v) == 1 && EVP_PKEY_verify(v, sig, siglen, digest, 32) == 1;
		_exit(ok ? 0 : 1);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* the parent's sessions still work */
	digest_sign_and_verify(f->libctx, f->key, f->pub, "parent after fork");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_store_yields_key_and_public_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_public_half_exports, setup, teardown),
		cmocka_unit_test_setup_teardown(test_private_half_never_leaves, setup, teardown),
		cmocka_unit_test_setup_teardown(test_digest_sign, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pkey_sign_digest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_failure_is_an_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_uri_must_name_the_open_token, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_rng_as_drbg, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fork_child_signs_on_its_own_sessions, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
