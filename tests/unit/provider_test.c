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
#include <openssl/params.h>
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
	cs_token_params p = {.module = module, .token_uri = "pkcs11:token=cstest", .pin_file = pin, .pool_size = 4,
			     .read_write = 1};
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

/* ---- refusals and every provider function, through OpenSSL's API (issue 18) ---- */

/* The reason of the last error on the queue, cleared. */
static int last_reason(void)
{
	int reason = ERR_GET_REASON(ERR_peek_last_error());
	ERR_clear_error();
	return reason;
}

/* Is `reason` among the errors on the queue (then cleared)? */
static int queue_has_reason(int reason)
{
	int found = 0;
	unsigned long e;
	while ((e = ERR_get_error()) != 0)
		found |= ERR_GET_REASON(e) == reason;
	return found;
}

/* Token keys sign SHA-256 only: any other digest is refused at init, by
 * name or as a signature parameter, with the provider's reason. */
static void test_digest_other_than_sha256_refused(void **state)
{
	fixture *f = *state;
	static const char *const refused[] = {"SHA384", "SHA512", "SHA1", "SHA3-256"};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		ERR_clear_error();
		assert_int_not_equal(EVP_DigestSignInit_ex(md, NULL, refused[i], f->libctx,
							   CS_PROVIDER_SIGN_PROPQ, f->key, NULL), 1);
		assert_int_equal(last_reason(), CS_E_INVALID_ARG + 1);
		EVP_MD_CTX_free(md);
	}
	/* the digest as a parameter of a sign operation */
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(f->libctx, f->key, CS_PROVIDER_PROPQ);
	assert_non_null(ctx);
	assert_int_equal(EVP_PKEY_sign_init(ctx), 1);
	ERR_clear_error();
	assert_int_not_equal(EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha384()), 1);
	assert_int_equal(last_reason(), CS_E_INVALID_ARG + 1);
	assert_int_equal(EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()), 1);
	/* SHA-256 by any of its names */
	static const char *const names[] = {"SHA2-256", "SHA-256", "2.16.840.1.101.3.4.2.1", "sha256", ""};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char name[32];
		snprintf(name, sizeof(name), "%s", names[i]);
		OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, name, 0),
				       OSSL_PARAM_construct_end()};
		assert_int_equal(EVP_PKEY_CTX_set_params(ctx, params), 1);
	}
	/* what the operation reports and accepts */
	const OSSL_PARAM *settable = EVP_PKEY_CTX_settable_params(ctx);
	assert_non_null(OSSL_PARAM_locate_const(settable, OSSL_SIGNATURE_PARAM_DIGEST));
	const OSSL_PARAM *gettable = EVP_PKEY_CTX_gettable_params(ctx);
	assert_non_null(OSSL_PARAM_locate_const(gettable, OSSL_SIGNATURE_PARAM_ALGORITHM_ID));
	assert_non_null(OSSL_PARAM_locate_const(gettable, OSSL_SIGNATURE_PARAM_DIGEST_SIZE));
	uint8_t alg[32];
	size_t digest_size = 0;
	char digest[16] = "";
	OSSL_PARAM get[] = {
		OSSL_PARAM_construct_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, alg, sizeof(alg)),
		OSSL_PARAM_construct_size_t(OSSL_SIGNATURE_PARAM_DIGEST_SIZE, &digest_size),
		OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, digest, sizeof(digest)),
		OSSL_PARAM_construct_end(),
	};
	assert_int_equal(EVP_PKEY_CTX_get_params(ctx, get), 1);
	static const uint8_t ecdsa_with_sha256[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48,
						    0xce, 0x3d, 0x04, 0x03, 0x02};
	assert_int_equal(get[0].return_size, sizeof(ecdsa_with_sha256));
	assert_memory_equal(alg, ecdsa_with_sha256, sizeof(ecdsa_with_sha256));
	assert_int_equal(digest_size, 32);
	assert_string_equal(digest, "SHA256");
	EVP_PKEY_CTX_free(ctx);
	/* the same lists from the algorithm itself */
	EVP_SIGNATURE *sig = EVP_SIGNATURE_fetch(f->libctx, "ECDSA", CS_PROVIDER_PROPQ);
	assert_non_null(sig);
	assert_non_null(OSSL_PARAM_locate_const(EVP_SIGNATURE_settable_ctx_params(sig), OSSL_SIGNATURE_PARAM_DIGEST));
	assert_non_null(OSSL_PARAM_locate_const(EVP_SIGNATURE_gettable_ctx_params(sig),
						OSSL_SIGNATURE_PARAM_ALGORITHM_ID));
	EVP_SIGNATURE_free(sig);
}

/* The public-key object of a token key has no private half: the
 * provider's ECDSA refuses to start signing with it. */
static void test_public_only_key_cannot_sign(void **state)
{
	fixture *f = *state;
	EVP_PKEY *pubonly = load_public(f->libctx, KEY_URI);
	assert_non_null(pubonly);
	assert_string_equal(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(pubonly)), CS_PROVIDER_NAME);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(f->libctx, pubonly, CS_PROVIDER_PROPQ);
	assert_non_null(ctx);
	ERR_clear_error();
	assert_int_not_equal(EVP_PKEY_sign_init(ctx), 1);
	assert_int_equal(last_reason(), CS_E_KEY_FORBIDDEN + 1);
	EVP_PKEY_CTX_free(ctx);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	assert_int_not_equal(EVP_DigestSignInit_ex(md, NULL, "SHA256", f->libctx, CS_PROVIDER_PROPQ, pubonly, NULL), 1);
	assert_int_equal(last_reason(), CS_E_KEY_FORBIDDEN + 1);
	EVP_MD_CTX_free(md);
	/* the private-key object beside it signs */
	uint8_t digest[32], sig[80];
	size_t siglen = sizeof(sig);
	SHA256((const uint8_t *)"p", 1, digest);
	ctx = EVP_PKEY_CTX_new_from_pkey(f->libctx, f->key, CS_PROVIDER_PROPQ);
	assert_int_equal(EVP_PKEY_sign_init(ctx), 1);
	assert_int_equal(EVP_PKEY_sign(ctx, sig, &siglen, digest, sizeof(digest)), 1);
	EVP_PKEY_CTX_free(ctx);
	assert_true(ts_verify_der(f->pub, digest, sig, siglen));
	assert_int_equal(EVP_PKEY_eq(pubonly, f->pub), 1);
	EVP_PKEY_free(pubonly);
}

/* A signature buffer too small for the DER signature: refused with the
 * provider's reason, nothing written into it. */
static void test_short_signature_buffer(void **state)
{
	fixture *f = *state;
	uint8_t digest[32], sig[80], untouched[80];
	SHA256((const uint8_t *)"s", 1, digest);
	memset(sig, 0x5a, sizeof(sig));
	memcpy(untouched, sig, sizeof(sig));
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(f->libctx, f->key, CS_PROVIDER_PROPQ);
	assert_int_equal(EVP_PKEY_sign_init(ctx), 1);
	size_t siglen = 0;
	assert_int_equal(EVP_PKEY_sign(ctx, NULL, &siglen, digest, sizeof(digest)), 1);
	assert_int_equal(siglen, 72); /* the most a DER P-256 signature takes */
	siglen = 16;
	ERR_clear_error();
	assert_int_not_equal(EVP_PKEY_sign(ctx, sig, &siglen, digest, sizeof(digest)), 1);
	assert_int_equal(last_reason(), CS_E_BUFFER_TOO_SMALL + 1);
	assert_memory_equal(sig, untouched, sizeof(sig));
	EVP_PKEY_CTX_free(ctx);
	/* the same through EVP_DigestSign and EVP_DigestSignFinal */
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestSignInit_ex(md, NULL, "SHA256", f->libctx, CS_PROVIDER_SIGN_PROPQ, f->key, NULL), 1);
	siglen = 16;
	assert_int_not_equal(EVP_DigestSign(md, sig, &siglen, (const uint8_t *)"s", 1), 1);
	assert_int_equal(last_reason(), CS_E_BUFFER_TOO_SMALL + 1);
	assert_memory_equal(sig, untouched, sizeof(sig));
	assert_int_equal(EVP_DigestSignInit_ex(md, NULL, "SHA256", f->libctx, CS_PROVIDER_SIGN_PROPQ, f->key, NULL), 1);
	assert_int_equal(EVP_DigestSignUpdate(md, "s", 1), 1);
	siglen = 0;
	assert_int_equal(EVP_DigestSignFinal(md, NULL, &siglen), 1);
	assert_int_equal(siglen, 72);
	siglen = 16;
	assert_int_not_equal(EVP_DigestSignFinal(md, sig, &siglen), 1);
	assert_int_equal(last_reason(), CS_E_BUFFER_TOO_SMALL + 1);
	assert_memory_equal(sig, untouched, sizeof(sig));
	EVP_MD_CTX_free(md);
}

/* The provider's own parameters, and the key manager's lists, dup and
 * import (of public keys only). */
static void test_provider_and_key_manager_queries(void **state)
{
	fixture *f = *state;
	const OSSL_PARAM *gettable = OSSL_PROVIDER_gettable_params(f->prov);
	assert_non_null(OSSL_PARAM_locate_const(gettable, OSSL_PROV_PARAM_NAME));
	assert_non_null(OSSL_PARAM_locate_const(gettable, OSSL_PROV_PARAM_STATUS));
	char *name = NULL, *version = NULL, *buildinfo = NULL;
	int status = 0;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_ptr(OSSL_PROV_PARAM_NAME, &name, 0),
		OSSL_PARAM_construct_utf8_ptr(OSSL_PROV_PARAM_VERSION, &version, 0),
		OSSL_PARAM_construct_utf8_ptr(OSSL_PROV_PARAM_BUILDINFO, &buildinfo, 0),
		OSSL_PARAM_construct_int(OSSL_PROV_PARAM_STATUS, &status),
		OSSL_PARAM_construct_end(),
	};
	assert_int_equal(OSSL_PROVIDER_get_params(f->prov, params), 1);
	assert_string_equal(name, "credsign PKCS#11 provider");
	assert_non_null(version);
	assert_true(version[0] != '\0');
	assert_non_null(buildinfo);
	assert_int_equal(strncmp(buildinfo, "credsign ", 9), 0);
	assert_int_equal(status, 1);
	/* a query the provider has no algorithms for */
	assert_null(EVP_CIPHER_fetch(f->libctx, "AES-128-GCM", CS_PROVIDER_PROPQ));
	ERR_clear_error();

	/* the key's parameters: the public ones listed, no private one */
	const OSSL_PARAM *kp = EVP_PKEY_gettable_params(f->key);
	assert_non_null(OSSL_PARAM_locate_const(kp, OSSL_PKEY_PARAM_EC_PUB_X));
	assert_non_null(OSSL_PARAM_locate_const(kp, OSSL_PKEY_PARAM_GROUP_NAME));
	assert_null(OSSL_PARAM_locate_const(kp, OSSL_PKEY_PARAM_PRIV_KEY));
	int max_size = 0;
	char dd[16] = "", encoding[32] = "", format[32] = "";
	assert_true(EVP_PKEY_get_int_param(f->key, OSSL_PKEY_PARAM_MAX_SIZE, &max_size));
	assert_int_equal(max_size, 72);
	assert_true(EVP_PKEY_get_utf8_string_param(f->key, OSSL_PKEY_PARAM_DEFAULT_DIGEST, dd, sizeof(dd), NULL));
	assert_string_equal(dd, "SHA256");
	assert_true(EVP_PKEY_get_utf8_string_param(f->key, OSSL_PKEY_PARAM_EC_ENCODING, encoding,
						   sizeof(encoding), NULL));
	assert_string_equal(encoding, "named_curve");
	assert_true(EVP_PKEY_get_utf8_string_param(f->key, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, format,
						   sizeof(format), NULL));
	assert_string_equal(format, "uncompressed");
	uint8_t point[65], small[8];
	size_t len = 0;
	assert_true(EVP_PKEY_get_octet_string_param(f->key, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point), &len));
	assert_int_equal(len, 65);
	assert_false(EVP_PKEY_get_octet_string_param(f->key, OSSL_PKEY_PARAM_PUB_KEY, small, sizeof(small), &len));
	ERR_clear_error();

	/* a copy of the key (the reference) is the same key and signs */
	EVP_PKEY *dup = EVP_PKEY_dup(f->key);
	assert_non_null(dup);
	assert_string_equal(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(dup)), CS_PROVIDER_NAME);
	assert_int_equal(EVP_PKEY_eq(dup, f->pub), 1);
	EVP_PKEY_free(f->key);
	f->key = dup; /* the original is gone: the copy stands alone */
	digest_sign_and_verify(f->libctx, f->key, f->pub, "signed by a copy of the key");

	/* import: what it takes, a public key taken, private material refused */
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(f->libctx, "EC", CS_PROVIDER_PROPQ);
	assert_non_null(ctx);
	const OSSL_PARAM *types = EVP_PKEY_fromdata_settable(ctx, EVP_PKEY_PUBLIC_KEY);
	assert_non_null(OSSL_PARAM_locate_const(types, OSSL_PKEY_PARAM_PUB_KEY));
	assert_null(OSSL_PARAM_locate_const(types, OSSL_PKEY_PARAM_PRIV_KEY));
	assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
	char group[] = "P-256", other_group[] = "secp384r1";
	OSSL_PARAM pub_params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
		OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)),
		OSSL_PARAM_construct_end(),
	};
	EVP_PKEY *imported = NULL;
	assert_int_equal(EVP_PKEY_fromdata(ctx, &imported, EVP_PKEY_PUBLIC_KEY, pub_params), 1);
	assert_string_equal(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(imported)), CS_PROVIDER_NAME);
	assert_int_equal(EVP_PKEY_eq(imported, f->pub), 1);
	assert_int_equal(EVP_PKEY_eq(imported, f->key), 1);
	EVP_PKEY_free(imported);
	imported = NULL;
	/* another curve, a compressed point, a private key: refused */
	pub_params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, other_group, 0);
	assert_int_not_equal(EVP_PKEY_fromdata(ctx, &imported, EVP_PKEY_PUBLIC_KEY, pub_params), 1);
	pub_params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
	pub_params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, 33);
	assert_int_not_equal(EVP_PKEY_fromdata(ctx, &imported, EVP_PKEY_PUBLIC_KEY, pub_params), 1);
	pub_params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point));
	assert_int_not_equal(EVP_PKEY_fromdata(ctx, &imported, EVP_PKEY_KEYPAIR, pub_params), 1);
	assert_null(imported);
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
}

/* The token RNG as an EVP_RAND: its parameters, and the batch of drawn
 * bytes (secret, like a DRBG's state) wiped on reseed and uninstantiate. */
static void test_token_rand_lifecycle(void **state)
{
	fixture *f = *state;
	EVP_RAND *rand = EVP_RAND_fetch(f->libctx, CS_PROVIDER_RAND_NAME, CS_PROVIDER_PROPQ);
	assert_non_null(rand);
	assert_non_null(OSSL_PARAM_locate_const(EVP_RAND_gettable_ctx_params(rand), OSSL_RAND_PARAM_STATE));
	EVP_RAND_CTX *ctx = EVP_RAND_CTX_new(rand, NULL);
	assert_non_null(ctx);
	const OSSL_PARAM *gettable = EVP_RAND_CTX_gettable_params(ctx);
	assert_non_null(OSSL_PARAM_locate_const(gettable, OSSL_RAND_PARAM_MAX_REQUEST));
	assert_int_equal(EVP_RAND_get_state(ctx), EVP_RAND_STATE_UNINITIALISED);
	assert_int_equal(EVP_RAND_enable_locking(ctx), 1);
	assert_int_equal(EVP_RAND_instantiate(ctx, 128, 0, NULL, 0, NULL), 1);
	assert_int_equal(EVP_RAND_get_state(ctx), EVP_RAND_STATE_READY);
	assert_int_equal(EVP_RAND_get_strength(ctx), 256);
	size_t max_request = 0;
	OSSL_PARAM get[] = {OSSL_PARAM_construct_size_t(OSSL_RAND_PARAM_MAX_REQUEST, &max_request),
			    OSSL_PARAM_construct_end()};
	assert_int_equal(EVP_RAND_CTX_get_params(ctx, get), 1);
	assert_int_equal(max_request, 1 << 16);

	uint8_t a[16], b[16];
	assert_int_equal(EVP_RAND_verify_zeroization(ctx), 1); /* nothing drawn yet */
	assert_int_equal(EVP_RAND_generate(ctx, a, sizeof(a), 0, 0, NULL, 0), 1);
	assert_int_equal(EVP_RAND_verify_zeroization(ctx), 0); /* the rest of the batch */
	assert_int_equal(EVP_RAND_reseed(ctx, 0, NULL, 0, NULL, 0), 1);
	assert_int_equal(EVP_RAND_verify_zeroization(ctx), 1);
	assert_int_equal(EVP_RAND_generate(ctx, b, sizeof(b), 0, 0, NULL, 0), 1);
	assert_memory_not_equal(a, b, sizeof(a));
	/* prediction resistance: drawn directly, the batch untouched */
	assert_int_equal(EVP_RAND_generate(ctx, b, sizeof(b), 0, 1, NULL, 0), 1);
	assert_int_equal(EVP_RAND_uninstantiate(ctx), 1);
	assert_int_equal(EVP_RAND_verify_zeroization(ctx), 1);
	assert_int_equal(EVP_RAND_get_state(ctx), EVP_RAND_STATE_UNINITIALISED);
	/* no output from an uninstantiated generator */
	assert_int_not_equal(EVP_RAND_generate(ctx, b, sizeof(b), 0, 0, NULL, 0), 1);
	ERR_clear_error();
	EVP_RAND_CTX_free(ctx);
	EVP_RAND_free(rand);
}

/* A forked child never hands out what its parent drew ahead: the batch
 * filled before fork() is wiped in the child before its first use. */
static void test_token_rand_batch_not_shared_across_fork(void **state)
{
	fixture *f = *state;
	EVP_RAND *rand = EVP_RAND_fetch(f->libctx, CS_PROVIDER_RAND_NAME, CS_PROVIDER_PROPQ);
	EVP_RAND_CTX *ctx = rand != NULL ? EVP_RAND_CTX_new(rand, NULL) : NULL;
	assert_non_null(ctx);
	assert_int_equal(EVP_RAND_instantiate(ctx, 128, 0, NULL, 0, NULL), 1);
	uint8_t first[16], parent[16], child[16];
	assert_int_equal(EVP_RAND_generate(ctx, first, sizeof(first), 0, 0, NULL, 0), 1);
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		int ok = EVP_RAND_generate(ctx, child, sizeof(child), 0, 0, NULL, 0) == 1 &&
			 write(fds[1], child, sizeof(child)) == (ssize_t)sizeof(child);
		_exit(ok ? 0 : 1);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], child, sizeof(child)), (ssize_t)sizeof(child));
	close(fds[0]);
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* the parent's next bytes come from the batch; the child's did not */
	assert_int_equal(EVP_RAND_generate(ctx, parent, sizeof(parent), 0, 0, NULL, 0), 1);
	assert_memory_not_equal(child, parent, sizeof(child));
	EVP_RAND_CTX_free(ctx);
	EVP_RAND_free(rand);
}

/* The store: no search, and a key purpose by name. */
static void test_store_key_purpose(void **state)
{
	fixture *f = *state;
	/* no search: OpenSSL asks the settable parameters for a search key */
	OSSL_STORE_CTX *open = OSSL_STORE_open_ex(KEY_URI, f->libctx, CS_PROVIDER_PROPQ, NULL, NULL, NULL, NULL, NULL);
	assert_non_null(open);
	assert_int_equal(OSSL_STORE_supports_search(open, OSSL_STORE_SEARCH_BY_NAME), 0);
	assert_int_equal(OSSL_STORE_supports_search(open, OSSL_STORE_SEARCH_BY_ALIAS), 0);
	OSSL_STORE_close(open);

	const cs_key_purpose purposes[] = {
		{CS_KEY_PURPOSE_CERTIFICATE, ""},
		{CS_KEY_PURPOSE_TLS, ""},
		{CS_KEY_PURPOSE_PROFILE, "release-2.x_y"},
	};
	for (size_t i = 0; i < sizeof(purposes) / sizeof(purposes[0]); i++) {
		EVP_PKEY *k = cs_provider_load_key_for(f->libctx, KEY_URI, &purposes[i]);
		assert_non_null(k);
		assert_int_equal(EVP_PKEY_eq(k, f->pub), 1);
		EVP_PKEY_free(k);
	}
	/* not a purpose: no key, the reason on the error queue (the store
	 * opens: OpenSSL 3.0 hands out a freed context when it does not) */
	static const char *const bad[] = {"signing", "profile:", "profile:Upper", "profile:a/b",
					  "profile:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[64];
		snprintf(text, sizeof(text), "%s", bad[i]);
		OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(CS_PROVIDER_STORE_PARAM_PURPOSE, text, 0),
				       OSSL_PARAM_construct_end()};
		ERR_clear_error();
		OSSL_STORE_CTX *st = OSSL_STORE_open_ex(KEY_URI, f->libctx, CS_PROVIDER_PROPQ, NULL, NULL, params,
							NULL, NULL);
		assert_non_null(st);
		OSSL_STORE_INFO *info = OSSL_STORE_load(st);
		if (info != NULL)
			fprintf(stderr, "purpose accepted: %s\n", bad[i]);
		assert_null(info);
		assert_true(OSSL_STORE_eof(st));
		OSSL_STORE_close(st);
		assert_true(queue_has_reason(CS_E_INVALID_ARG + 1));
	}
}

/* Parameters asked for or given in a type they do not have are refused,
 * by the provider, the key manager, the signature and the RAND alike. */
static void test_parameters_of_the_wrong_type_refused(void **state)
{
	fixture *f = *state;
	char text[64];
	int number = 0;
	uint8_t tiny[1];
	/* integers asked as strings, strings as integers, too little room */
	static const char *const key_ints[] = {OSSL_PKEY_PARAM_BITS, OSSL_PKEY_PARAM_SECURITY_BITS,
					       OSSL_PKEY_PARAM_MAX_SIZE};
	static const char *const key_strings[] = {OSSL_PKEY_PARAM_GROUP_NAME, OSSL_PKEY_PARAM_DEFAULT_DIGEST,
						  OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
						  OSSL_PKEY_PARAM_EC_ENCODING};
	static const char *const key_octets[] = {OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, OSSL_PKEY_PARAM_PUB_KEY,
						 OSSL_PKEY_PARAM_EC_PUB_X, OSSL_PKEY_PARAM_EC_PUB_Y};
	for (size_t i = 0; i < sizeof(key_ints) / sizeof(key_ints[0]); i++) {
		OSSL_PARAM q[] = {OSSL_PARAM_construct_utf8_string(key_ints[i], text, sizeof(text)),
				  OSSL_PARAM_construct_end()};
		assert_int_equal(EVP_PKEY_get_params(f->key, q), 0);
	}
	for (size_t i = 0; i < sizeof(key_strings) / sizeof(key_strings[0]); i++) {
		OSSL_PARAM q[] = {OSSL_PARAM_construct_int(key_strings[i], &number), OSSL_PARAM_construct_end()};
		assert_int_equal(EVP_PKEY_get_params(f->key, q), 0);
	}
	for (size_t i = 0; i < sizeof(key_octets) / sizeof(key_octets[0]); i++) {
		OSSL_PARAM q[] = {OSSL_PARAM_construct_int(key_octets[i], &number), OSSL_PARAM_construct_end()};
		assert_int_equal(EVP_PKEY_get_params(f->key, q), 0);
	}
	/* the provider's own */
	static const char *const prov_strings[] = {OSSL_PROV_PARAM_NAME, OSSL_PROV_PARAM_VERSION,
						   OSSL_PROV_PARAM_BUILDINFO};
	for (size_t i = 0; i < sizeof(prov_strings) / sizeof(prov_strings[0]); i++) {
		OSSL_PARAM q[] = {OSSL_PARAM_construct_int(prov_strings[i], &number), OSSL_PARAM_construct_end()};
		assert_int_equal(OSSL_PROVIDER_get_params(f->prov, q), 0);
	}
	OSSL_PARAM status[] = {OSSL_PARAM_construct_utf8_string(OSSL_PROV_PARAM_STATUS, text, sizeof(text)),
			       OSSL_PARAM_construct_end()};
	assert_int_equal(OSSL_PROVIDER_get_params(f->prov, status), 0);
	/* a sign operation's */
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(f->libctx, f->key, CS_PROVIDER_PROPQ);
	assert_int_equal(EVP_PKEY_sign_init(ctx), 1);
	OSSL_PARAM alg[] = {OSSL_PARAM_construct_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, tiny, sizeof(tiny)),
			    OSSL_PARAM_construct_end()};
	assert_int_equal(EVP_PKEY_CTX_get_params(ctx, alg), 0);
	OSSL_PARAM md[] = {OSSL_PARAM_construct_int(OSSL_SIGNATURE_PARAM_DIGEST, &number), OSSL_PARAM_construct_end()};
	assert_int_equal(EVP_PKEY_CTX_get_params(ctx, md), 0);
	OSSL_PARAM size[] = {OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST_SIZE, text, sizeof(text)),
			     OSSL_PARAM_construct_end()};
	assert_int_equal(EVP_PKEY_CTX_get_params(ctx, size), 0);
	ERR_clear_error();
	assert_int_equal(EVP_PKEY_CTX_set_params(ctx, md), 0); /* a digest given as a number */
	assert_int_equal(last_reason(), CS_E_INVALID_ARG + 1);
	EVP_PKEY_CTX_free(ctx);
	/* the RAND's */
	EVP_RAND *rand = EVP_RAND_fetch(f->libctx, CS_PROVIDER_RAND_NAME, CS_PROVIDER_PROPQ);
	EVP_RAND_CTX *rctx = EVP_RAND_CTX_new(rand, NULL);
	assert_non_null(rctx);
	static const char *const rand_params[] = {OSSL_RAND_PARAM_STATE, OSSL_RAND_PARAM_STRENGTH,
						  OSSL_RAND_PARAM_MAX_REQUEST};
	for (size_t i = 0; i < sizeof(rand_params) / sizeof(rand_params[0]); i++) {
		OSSL_PARAM q[] = {OSSL_PARAM_construct_utf8_string(rand_params[i], text, sizeof(text)),
				  OSSL_PARAM_construct_end()};
		assert_int_equal(EVP_RAND_CTX_get_params(rctx, q), 0);
	}
	EVP_RAND_CTX_free(rctx);
	EVP_RAND_free(rand);
	/* a key imported with its group named by a number */
	EVP_PKEY_CTX *ictx = EVP_PKEY_CTX_new_from_name(f->libctx, "EC", CS_PROVIDER_PROPQ);
	EVP_PKEY *k = NULL;
	OSSL_PARAM group[] = {OSSL_PARAM_construct_int(OSSL_PKEY_PARAM_GROUP_NAME, &number), OSSL_PARAM_construct_end()};
	assert_int_equal(EVP_PKEY_fromdata_init(ictx), 1);
	assert_int_not_equal(EVP_PKEY_fromdata(ictx, &k, EVP_PKEY_KEY_PARAMETERS, group), 1);
	assert_null(k);
	EVP_PKEY_CTX_free(ictx);
	ERR_clear_error();
}

/* A key of domain parameters only (no point): it says what a P-256 key
 * is, matches other P-256 parameters, has no public key to give. */
static void test_parameters_only_key(void **state)
{
	fixture *f = *state;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(f->libctx, "EC", CS_PROVIDER_PROPQ);
	EVP_PKEY *params = NULL;
	char group[] = "prime256v1";
	OSSL_PARAM in[] = {OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
			   OSSL_PARAM_construct_end()};
	assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
	assert_int_equal(EVP_PKEY_fromdata(ctx, &params, EVP_PKEY_KEY_PARAMETERS, in), 1);
	EVP_PKEY_CTX_free(ctx);
	assert_int_equal(EVP_PKEY_get_bits(params), 256);
	uint8_t point[65];
	size_t len = 0;
	assert_false(EVP_PKEY_get_octet_string_param(params, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point), &len));
	assert_int_equal(EVP_PKEY_parameters_eq(params, f->key), 1);
	assert_int_not_equal(EVP_PKEY_eq(params, f->key), 1); /* no public key: not the same key */
	EVP_PKEY_free(params);
	ERR_clear_error();
}

/* Copies of a signing context (EVP_MD_CTX_copy_ex), before and after data
 * went in, each finish their own signature. */
static void test_signing_context_copies(void **state)
{
	fixture *f = *state;
	const char *msg = "copied contexts";
	uint8_t digest[32], sig[80];
	SHA256((const uint8_t *)msg, strlen(msg), digest);
	EVP_MD_CTX *md = EVP_MD_CTX_new(), *early = EVP_MD_CTX_new(), *late = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestSignInit_ex(md, NULL, "SHA256", f->libctx, CS_PROVIDER_SIGN_PROPQ, f->key, NULL), 1);
	assert_int_equal(EVP_MD_CTX_copy_ex(early, md), 1);
	assert_int_equal(EVP_DigestSignUpdate(md, msg, 6), 1);
	assert_int_equal(EVP_MD_CTX_copy_ex(late, md), 1);
	assert_int_equal(EVP_DigestSignUpdate(md, msg + 6, strlen(msg) - 6), 1);
	assert_int_equal(EVP_DigestSignUpdate(early, msg, strlen(msg)), 1);
	assert_int_equal(EVP_DigestSignUpdate(late, msg + 6, strlen(msg) - 6), 1);
	EVP_MD_CTX *all[] = {md, early, late};
	for (size_t i = 0; i < 3; i++) {
		size_t siglen = sizeof(sig);
		assert_int_equal(EVP_DigestSignFinal(all[i], sig, &siglen), 1);
		assert_true(ts_verify_der(f->pub, digest, sig, siglen));
		EVP_MD_CTX_free(all[i]);
	}
}

/* The RAND on a token that caps its calls below the batch, and on a token
 * whose RNG fails while the batch is filled. */
static void test_token_rand_capped_and_failing(void **state)
{
	fixture *f = *state;
	EVP_RAND *rand = EVP_RAND_fetch(f->libctx, CS_PROVIDER_RAND_NAME, CS_PROVIDER_PROPQ);
	EVP_RAND_CTX *ctx = EVP_RAND_CTX_new(rand, NULL);
	assert_non_null(ctx);
	/* more strength than the token offers */
	assert_int_not_equal(EVP_RAND_instantiate(ctx, 512, 0, NULL, 0, NULL), 1);
	ERR_clear_error();
	assert_int_equal(EVP_RAND_instantiate(ctx, 128, 0, NULL, 0, NULL), 1);
	uint8_t a[32], b[32], zero[32] = {0};
	/* a failing RNG: no output, the reason on the queue */
	char rules[64];
	snprintf(rules, sizeof(rules), "C_GenerateRandom %#lx\n", (unsigned long)CKR_FUNCTION_FAILED);
	faults(rules);
	memset(a, 0x11, sizeof(a));
	ERR_clear_error();
	assert_int_not_equal(EVP_RAND_generate(ctx, a, sizeof(a), 0, 0, NULL, 0), 1);
	assert_true(queue_has_reason(CS_E_TOKEN_FAILED + 1));
	/* 16 bytes a call at most: the batch holds fewer than a request */
	faults("random-cap 16\n");
	assert_int_equal(EVP_RAND_generate(ctx, a, sizeof(a), 0, 0, NULL, 0), 1);
	assert_int_equal(cs_token_random_max(f->token), 16);
	assert_int_equal(EVP_RAND_generate(ctx, b, sizeof(b), 0, 0, NULL, 0), 1);
	assert_memory_not_equal(a, b, sizeof(a));
	assert_memory_not_equal(b, zero, sizeof(b));
	faults("");
	EVP_RAND_CTX_free(ctx);
	EVP_RAND_free(rand);
}

/* The store's objects as the caller expects them, one at a time; a
 * malformed expectation fails the loads; other schemes are not ours. */
static void test_store_expectations(void **state)
{
	fixture *f = *state;
	OSSL_STORE_CTX *st = OSSL_STORE_open_ex(KEY_URI, f->libctx, CS_PROVIDER_PROPQ, NULL, NULL, NULL, NULL, NULL);
	assert_non_null(st);
	assert_int_equal(OSSL_STORE_expect(st, OSSL_STORE_INFO_PKEY), 1);
	OSSL_STORE_INFO *info = OSSL_STORE_load(st);
	assert_non_null(info);
	assert_int_equal(OSSL_STORE_INFO_get_type(info), OSSL_STORE_INFO_PKEY);
	OSSL_STORE_INFO_free(info);
	assert_null(OSSL_STORE_load(st)); /* the public key is not what was asked for */
	assert_true(OSSL_STORE_eof(st));
	OSSL_STORE_close(st);
	/* both objects, in order, when nothing is expected */
	st = OSSL_STORE_open_ex(KEY_URI, f->libctx, CS_PROVIDER_PROPQ, NULL, NULL, NULL, NULL, NULL);
	int types[2] = {0, 0};
	for (int i = 0; i < 2; i++) {
		info = OSSL_STORE_load(st);
		assert_non_null(info);
		types[i] = OSSL_STORE_INFO_get_type(info);
		OSSL_STORE_INFO_free(info);
	}
	assert_int_equal(types[0], OSSL_STORE_INFO_PKEY);
	assert_int_equal(types[1], OSSL_STORE_INFO_PUBKEY);
	assert_null(OSSL_STORE_load(st));
	assert_true(OSSL_STORE_eof(st));
	OSSL_STORE_close(st);
	/* an expectation that is not a number */
	char text[] = "pkey";
	OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_STORE_PARAM_EXPECT, text, 0),
			       OSSL_PARAM_construct_end()};
	ERR_clear_error();
	st = OSSL_STORE_open_ex(KEY_URI, f->libctx, CS_PROVIDER_PROPQ, NULL, NULL, params, NULL, NULL);
	assert_non_null(st);
	assert_null(OSSL_STORE_load(st));
	assert_true(OSSL_STORE_eof(st));
	OSSL_STORE_close(st);
	assert_true(queue_has_reason(CS_E_INVALID_ARG + 1));
}

/* What the provider's loading functions refuse or leave to other
 * providers: no token; a source that does not open; a PEM key file (the
 * default provider's, software); a token that cannot say what it is. */
static void test_loading_edges(void **state)
{
	fixture *f = *state;
	OSSL_PROVIDER *prov = (OSSL_PROVIDER *)1;
	OSSL_LIB_CTX *other = OSSL_LIB_CTX_new();
	assert_int_equal(cs_provider_load(other, NULL, &prov), CS_E_INVALID_ARG);
	assert_null(prov);
	OSSL_LIB_CTX_free(other);
	assert_null(cs_provider_load_key(f->libctx, "/nonexistent/credsign-key.pem"));
	ERR_clear_error();

	char path[700];
	snprintf(path, sizeof(path), "%s/provider-test-key.pem", getenv("CREDSIGN_TEST_TOKEN_DIR"));
	EVP_PKEY *soft = EVP_EC_gen("P-256");
	assert_non_null(soft);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(PEM_write_PrivateKey(fp, soft, NULL, NULL, 0, NULL, NULL), 1);
	fclose(fp);
	/* as the daemon's context: other providers preferred for software keys */
	assert_int_equal(EVP_set_default_properties(f->libctx, "?provider!=" CS_PROVIDER_NAME), 1);
	EVP_PKEY *loaded = cs_provider_load_key(f->libctx, path);
	assert_non_null(loaded);
	assert_int_equal(EVP_PKEY_eq(loaded, soft), 1);
	assert_string_not_equal(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(loaded)), CS_PROVIDER_NAME);
	EVP_PKEY_free(loaded);
	EVP_PKEY_free(soft);
	unlink(path);

	/* the key URI is checked against the token's description: unreadable */
	char rules[64];
	snprintf(rules, sizeof(rules), "C_GetInfo %#lx\n", (unsigned long)CKR_FUNCTION_FAILED);
	faults(rules);
	ERR_clear_error();
	assert_null(cs_provider_load_key(f->libctx, KEY_URI));
	assert_true(queue_has_reason(CS_E_TOKEN_FAILED + 1));
	faults("");
	EVP_PKEY *k = cs_provider_load_key(f->libctx, KEY_URI);
	assert_non_null(k);
	EVP_PKEY_free(k);
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
		cmocka_unit_test_setup_teardown(test_digest_other_than_sha256_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_public_only_key_cannot_sign, setup, teardown),
		cmocka_unit_test_setup_teardown(test_short_signature_buffer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_provider_and_key_manager_queries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_rand_lifecycle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_rand_batch_not_shared_across_fork, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_key_purpose, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parameters_of_the_wrong_type_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parameters_only_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_signing_context_copies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_rand_capped_and_failing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_expectations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loading_edges, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
