/*
 * token_test: the PKCS#11 token layer against a real SoftHSM2 token
 * (created by the token_fixture test; see tests/CMakeLists.txt).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/objects.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <p11-kit/p11-kit.h>

#include "cs_log.h"
#include "ec_util.h"
#include "test_support.h"
#include "token.h"

#define KEY_LABEL "test-sign"

static const char *module_path;
static char token_dir[512];
static char pin_path[600];
static const char *token_uri = "pkcs11:token=cstest";

static cs_token_params params(const char *uri, const char *pin)
{
	cs_token_params p = {
		.module = module_path,
		.token_uri = uri,
		.pin_file = pin,
		.pool_size = 2,
		.read_write = 1,
	};
	return p;
}

static int group_setup(void **state)
{
	(void)state;
	const char *dir;
	if (ts_token_fixture(&module_path, &dir, pin_path, sizeof(pin_path)) != 0)
		return -1;
	snprintf(token_dir, sizeof(token_dir), "%s", dir);

	/* the signing key used by the tests: generated once per token */
	cs_token *t = NULL;
	cs_token_params p = params(token_uri, pin_path);
	if (cs_token_open(&p, &t) != CS_OK)
		return -1;
	cs_key_ref q = {.label = KEY_LABEL}, found;
	cs_err r = cs_token_find_key(t, &q, &found);
	if (r == CS_E_KEY_NOT_FOUND)
		r = cs_token_generate_p256(t, KEY_LABEL, &found);
	cs_token_close(t);
	return r == CS_OK ? 0 : -1;
}

static int open_token(void **state)
{
	cs_token *t = NULL;
	cs_token_params p = params(token_uri, pin_path);
	assert_int_equal(cs_token_open(&p, &t), CS_OK);
	*state = t;
	return 0;
}

static int close_token(void **state)
{
	cs_token_close(*state);
	return 0;
}

static void test_token_info(void **state)
{
	cs_token_info info;
	assert_int_equal(cs_token_get_info(*state, &info), CS_OK);
	assert_string_equal(info.label, "cstest");
	assert_true(strlen(info.manufacturer) > 0);
	assert_true(strlen(info.model) > 0);
	assert_true(strlen(info.serial) > 0);
	assert_true(strlen(info.module_description) > 0);
	assert_true(info.flags & CKF_RNG);
	assert_true(info.flags & CKF_TOKEN_INITIALIZED);
	assert_int_equal(info.cryptoki_major, 2);
}

static void sign_and_verify(cs_token *t, const cs_key_ref *key, EVP_PKEY *pub, const char *msg)
{
	uint8_t digest[32], raw_from_der[64];
	cs_es256_sig sig;
	SHA256((const unsigned char *)msg, strlen(msg), digest);
	assert_int_equal(cs_token_sign_es256(t, key, digest, &sig), CS_OK);
	assert_true(sig.der_len >= 8 && sig.der_len <= 72);
	assert_true(ts_verify_der(pub, digest, sig.der, sig.der_len));
	/* both encodings carry the same (r, s) */
	assert_int_equal(cs_ecdsa_der_to_raw(sig.der, sig.der_len, raw_from_der), CS_OK);
	assert_memory_equal(raw_from_der, sig.raw, 64);
	/* and the signature does not verify another digest */
	digest[0] ^= 1;
	assert_false(ts_verify_der(pub, digest, sig.der, sig.der_len));
}

static void test_sign_verify_round_trip(void **state)
{
	cs_token *t = *state;
	cs_key_ref q = {.label = KEY_LABEL}, key;
	EVP_PKEY *pub = NULL;
	assert_int_equal(cs_token_find_key(t, &q, &key), CS_OK);
	assert_string_equal(key.label, KEY_LABEL);
	assert_int_equal(key.id_len, 16);
	assert_int_equal(cs_token_public_key(t, &key, &pub), CS_OK);
	assert_true(EVP_PKEY_is_a(pub, "EC"));
	assert_int_equal(EVP_PKEY_get_bits(pub), 256);
	for (int i = 0; i < 5; i++)
		sign_and_verify(t, &key, pub, i % 2 ? "credsign" : "compliance certificate");

	/* the key can also be named by id alone, as a key URI would */
	cs_key_ref by_id = {.id_len = key.id_len}, found;
	memcpy(by_id.id, key.id, key.id_len);
	assert_int_equal(cs_token_find_key(t, &by_id, &found), CS_OK);
	assert_string_equal(found.label, KEY_LABEL);
	EVP_PKEY_free(pub);
}

static void test_key_uri_parsing(void **state)
{
	(void)state;
	cs_key_ref ref;
	assert_int_equal(cs_key_ref_from_uri("pkcs11:token=cstest;object=test-sign", &ref), CS_OK);
	assert_string_equal(ref.label, "test-sign");
	assert_int_equal(ref.id_len, 0);
	assert_int_equal(cs_key_ref_from_uri("pkcs11:id=%01%02%ff", &ref), CS_OK);
	assert_int_equal(ref.id_len, 3);
	assert_int_equal(ref.id[2], 0xff);
	assert_int_equal(cs_key_ref_from_uri("pkcs11:token=cstest", &ref), CS_E_URI_INVALID);
	assert_int_equal(cs_key_ref_from_uri("file:/etc/passwd", &ref), CS_E_URI_INVALID);
	assert_int_equal(cs_key_ref_from_uri("pkcs11:object=a%zz", &ref), CS_E_URI_INVALID);
}

static void test_key_not_found_and_exists(void **state)
{
	cs_token *t = *state;
	cs_key_ref q = {.label = "no-such-key"}, out;
	EVP_PKEY *pub = NULL;
	uint8_t digest[32] = {0};
	cs_es256_sig sig;
	assert_int_equal(cs_token_find_key(t, &q, &out), CS_E_KEY_NOT_FOUND);
	assert_int_equal(cs_token_public_key(t, &q, &pub), CS_E_KEY_NOT_FOUND);
	assert_null(pub);
	assert_int_equal(cs_token_sign_es256(t, &q, digest, &sig), CS_E_KEY_NOT_FOUND);
	assert_int_equal(cs_token_generate_p256(t, KEY_LABEL, &out), CS_E_KEY_EXISTS);
	assert_int_equal(cs_token_generate_p256(t, "", &out), CS_E_INVALID_ARG);
}

/* Open the module a second time, unmanaged: the raw function list of the
 * same SoftHSM2 instance, as another component of the process would see it. */
static CK_FUNCTION_LIST *raw_module(void)
{
	CK_FUNCTION_LIST *fl = p11_kit_module_load(module_path, P11_KIT_MODULE_UNMANAGED);
	assert_non_null(fl);
	CK_RV rv = fl->C_Initialize(NULL);
	assert_true(rv == CKR_OK || rv == CKR_CRYPTOKI_ALREADY_INITIALIZED);
	return fl;
}

static CK_SESSION_HANDLE raw_session(CK_FUNCTION_LIST *fl, CK_SLOT_ID slot)
{
	CK_SESSION_HANDLE h;
	assert_int_equal(fl->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK);
	return h;
}

static void test_private_key_value_unreadable(void **state)
{
	cs_token_info info;
	assert_int_equal(cs_token_get_info(*state, &info), CS_OK);
	CK_FUNCTION_LIST *fl = raw_module();
	CK_SESSION_HANDLE h = raw_session(fl, info.slot_id);
	/* the pool keeps the token logged in; our session shares that state */
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof(cls)},
			       {CKA_LABEL, KEY_LABEL, strlen(KEY_LABEL)}};
	CK_OBJECT_HANDLE obj;
	CK_ULONG n = 0;
	assert_int_equal(fl->C_FindObjectsInit(h, tmpl, 2), CKR_OK);
	assert_int_equal(fl->C_FindObjects(h, &obj, 1, &n), CKR_OK);
	assert_int_equal(fl->C_FindObjectsFinal(h), CKR_OK);
	assert_int_equal(n, 1);

	uint8_t value[128];
	CK_ATTRIBUTE a = {CKA_VALUE, value, sizeof(value)};
	CK_RV rv = fl->C_GetAttributeValue(h, obj, &a, 1);
	assert_int_equal(rv, CKR_ATTRIBUTE_SENSITIVE);
	assert_int_equal(cs_err_from_ckr(rv), CS_E_SENSITIVE);
	assert_int_equal((CK_LONG)a.ulValueLen, -1); /* CK_UNAVAILABLE_INFORMATION */

	CK_BBOOL sensitive = 0, extractable = 1, never_extractable = 0, always_sensitive = 0;
	CK_ATTRIBUTE flags[] = {
		{CKA_SENSITIVE, &sensitive, 1},
		{CKA_EXTRACTABLE, &extractable, 1},
		{CKA_NEVER_EXTRACTABLE, &never_extractable, 1},
		{CKA_ALWAYS_SENSITIVE, &always_sensitive, 1},
	};
	assert_int_equal(fl->C_GetAttributeValue(h, obj, flags, 4), CKR_OK);
	assert_true(sensitive && !extractable && never_extractable && always_sensitive);
	assert_int_equal(fl->C_CloseSession(h), CKR_OK);
	p11_kit_module_release(fl);
}

static void test_random(void **state)
{
	cs_token *t = *state;
	enum { N = 2500 }; /* 20,000 bits */
	uint8_t a[N], b[N];
	assert_int_equal(cs_token_random(t, a, N), CS_OK);
	assert_int_equal(cs_token_random(t, b, N), CS_OK);
	assert_memory_not_equal(a, b, N);
	/* FIPS 140-2 monobit test: ones in 20,000 bits within 9725..10275 */
	unsigned ones = 0;
	for (size_t i = 0; i < N; i++)
		ones += (unsigned)__builtin_popcount(a[i]);
	assert_in_range(ones, 9725, 10275);

	/* byte frequencies over 256 KiB: chi-square with 255 degrees of freedom
	 * below 330.5 (p = 0.001) */
	enum { M = 256 * 1024 };
	uint8_t *big = malloc(M);
	unsigned counts[256] = {0};
	assert_non_null(big);
	assert_int_equal(cs_token_random(t, big, M), CS_OK);
	for (size_t i = 0; i < M; i++)
		counts[big[i]]++;
	double expected = M / 256.0, chi2 = 0;
	for (int i = 0; i < 256; i++)
		chi2 += (counts[i] - expected) * (counts[i] - expected) / expected;
	assert_true(chi2 < 330.5);
	free(big);

	/* sizes around the chunk boundary, and zero */
	uint8_t odd[257];
	assert_int_equal(cs_token_random(t, odd, sizeof(odd)), CS_OK);
	assert_int_equal(cs_token_random(t, odd, 0), CS_OK);
}

static void test_wrong_pin(void **state)
{
	(void)state;
	char path[700];
	snprintf(path, sizeof(path), "%s/wrong.pin", token_dir);
	ts_write_file(path, "000000wrong\n", 0600);
	cs_token *t = NULL;
	cs_token_params p = params(token_uri, path);
	assert_int_equal(cs_token_open(&p, &t), CS_E_PIN_INCORRECT);
	assert_null(t);
	assert_string_equal(cs_strerror(CS_E_PIN_INCORRECT), "token PIN rejected");
	unlink(path);
}

static void test_missing_token(void **state)
{
	(void)state;
	cs_token *t = NULL;
	cs_token_params p = params("pkcs11:token=no-such-token", pin_path);
	assert_int_equal(cs_token_open(&p, &t), CS_E_TOKEN_NOT_FOUND);
	assert_null(t);
	p = params("pkcs11:token=cstest;manufacturer=Nobody", pin_path);
	assert_int_equal(cs_token_open(&p, &t), CS_E_TOKEN_NOT_FOUND);
	p = params("pkcs11:token=cstest;slot-id=987654", pin_path);
	assert_int_equal(cs_token_open(&p, &t), CS_E_TOKEN_NOT_FOUND);
}

static void test_bad_uri(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"token=cstest", "http://example.test/", "pkcs11:token=%zz", "pkcs11:unknown-attr=1",
		"pkcs11:token=cstest;slot-id=notanumber",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cs_token *t = NULL;
		cs_token_params p = params(bad[i], pin_path);
		assert_int_equal(cs_token_open(&p, &t), CS_E_URI_INVALID);
		assert_null(t);
	}
}

static void test_pin_file_permissions(void **state)
{
	(void)state;
	char path[700], uri[900], pin[64] = {0};
	cs_token *t = NULL;
	int fd = open(pin_path, O_RDONLY);
	assert_true(fd >= 0);
	assert_true(read(fd, pin, sizeof(pin) - 1) > 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/open.pin", token_dir);
	ts_write_file(path, pin, 0644);
	cs_token_params p = params(token_uri, path);
	assert_int_equal(cs_token_open(&p, &t), CS_E_PIN_FILE_PERMS);
	ts_write_file(path, pin, 0640);
	assert_int_equal(cs_token_open(&p, &t), CS_E_PIN_FILE_PERMS);
	/* the same file through pin-source in the URI */
	snprintf(uri, sizeof(uri), "pkcs11:token=cstest?pin-source=file:%s", path);
	p = params(uri, NULL);
	assert_int_equal(cs_token_open(&p, &t), CS_E_PIN_FILE_PERMS);
	/* owner-only: accepted, through pin-source */
	ts_write_file(path, pin, 0600);
	assert_int_equal(cs_token_open(&p, &t), CS_OK);
	cs_token_close(t);
	t = NULL;
	/* a PIN inside the URI is refused */
	p = params("pkcs11:token=cstest?pin-value=1234", NULL);
	assert_int_equal(cs_token_open(&p, &t), CS_E_PIN_SOURCE);
	/* a missing PIN file */
	snprintf(path, sizeof(path), "%s/absent.pin", token_dir);
	p = params(token_uri, path);
	assert_int_equal(cs_token_open(&p, &t), CS_E_PIN_FILE);
	assert_null(t);
}

static void test_session_recovery(void **state)
{
	cs_token *t = *state;
	cs_key_ref q = {.label = KEY_LABEL}, key;
	EVP_PKEY *pub = NULL;
	cs_token_info info;
	assert_int_equal(cs_token_find_key(t, &q, &key), CS_OK);
	assert_int_equal(cs_token_public_key(t, &key, &pub), CS_OK);
	assert_int_equal(cs_token_get_info(t, &info), CS_OK);
	sign_and_verify(t, &key, pub, "before");
	unsigned long recoveries = cs_token_recoveries(t);

	for (int round = 0; round < 3; round++) {
		/* close every session of the application underneath the pool;
		 * this also logs the token out */
		CK_FUNCTION_LIST *fl = raw_module();
		CK_SESSION_HANDLE h = raw_session(fl, info.slot_id);
		(void)h;
		assert_int_equal(fl->C_CloseAllSessions(info.slot_id), CKR_OK);
		p11_kit_module_release(fl);
		/* the next operation recovers: new session, login, retry */
		sign_and_verify(t, &key, pub, "after");
		assert_int_equal(cs_token_recoveries(t), recoveries + (unsigned long)round + 1);
	}
	uint8_t buf[32];
	assert_int_equal(cs_token_random(t, buf, sizeof(buf)), CS_OK);
	EVP_PKEY_free(pub);
}

struct thread_arg {
	cs_token *t;
	cs_key_ref key;
	EVP_PKEY *pub;
	int ok;
};

static void *sign_many(void *p)
{
	struct thread_arg *a = p;
	for (int i = 0; i < 200; i++) {
		uint8_t digest[32];
		cs_es256_sig sig;
		char msg[32];
		snprintf(msg, sizeof(msg), "message %d", i);
		SHA256((const unsigned char *)msg, strlen(msg), digest);
		if (cs_token_sign_es256(a->t, &a->key, digest, &sig) != CS_OK)
			return NULL;
		if (!ts_verify_der(a->pub, digest, sig.der, sig.der_len))
			return NULL;
		a->ok++;
	}
	return NULL;
}

static void test_concurrent_signing(void **state)
{
	cs_token *t = *state;
	cs_key_ref q = {.label = KEY_LABEL}, key;
	EVP_PKEY *pub = NULL;
	assert_int_equal(cs_token_find_key(t, &q, &key), CS_OK);
	assert_int_equal(cs_token_public_key(t, &key, &pub), CS_OK);
	enum { THREADS = 4 }; /* more threads than pooled sessions (2) */
	pthread_t th[THREADS];
	struct thread_arg args[THREADS];
	for (int i = 0; i < THREADS; i++) {
		args[i] = (struct thread_arg){t, key, pub, 0};
		assert_int_equal(pthread_create(&th[i], NULL, sign_many, &args[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(args[i].ok, 200);
	EVP_PKEY_free(pub);
}

static void *search_many(void *p)
{
	struct thread_arg *a = p;
	for (int i = 0; i < 300; i++) {
		cs_key_ref q = {.label = KEY_LABEL}, found;
		cs_err r = cs_token_find_key(a->t, &q, &found); /* searches and copies */
		if (r != CS_OK) {
			fprintf(stderr, "search %d: %s\n", i, cs_strerror(r));
			return NULL;
		}
		a->ok++;
	}
	return NULL;
}

/* Searches in one session while another copies the key for signing: the
 * copy must never be found as a second key (SoftHSM2 publishes a copy with
 * the source's CKA_TOKEN before applying the template). */
static void test_concurrent_key_searches(void **state)
{
	cs_token *t = *state;
	enum { THREADS = 4 };
	pthread_t th[THREADS];
	struct thread_arg args[THREADS];
	for (int i = 0; i < THREADS; i++) {
		args[i] = (struct thread_arg){.t = t};
		assert_int_equal(pthread_create(&th[i], NULL, search_many, &args[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(args[i].ok, 300);
}

static void test_read_only_pool_cannot_generate(void **state)
{
	(void)state;
	cs_token *t = NULL;
	cs_token_params p = params(token_uri, pin_path);
	p.read_write = 0;
	assert_int_equal(cs_token_open(&p, &t), CS_OK);
	cs_key_ref out;
	assert_int_equal(cs_token_generate_p256(t, "should-not-exist", &out), CS_E_TOKEN_READ_ONLY);
	cs_token_close(t);
}

/* CKA_EC_PARAMS in every form the standard allows for P-256, parsed rather
 * than compared byte for byte; other curves and trailing bytes refused. */
static size_t explicit_params(int nid, uint8_t *out, size_t size)
{
	EC_GROUP *g = EC_GROUP_new_by_curve_name(nid);
	assert_non_null(g);
	EC_GROUP_set_asn1_flag(g, OPENSSL_EC_EXPLICIT_CURVE);
	int n = i2d_ECPKParameters(g, NULL);
	assert_true(n > 0 && (size_t)n <= size);
	unsigned char *p = out;
	assert_int_equal(i2d_ECPKParameters(g, &p), n);
	EC_GROUP_free(g);
	return (size_t)n;
}

static void test_ec_params_forms(void **state)
{
	(void)state;
	static const uint8_t p384_oid[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
	uint8_t buf[512];
	assert_int_equal(cs_ec_params_is_p256(cs_p256_ec_params, sizeof(cs_p256_ec_params)), CS_OK);
	assert_int_equal(cs_ec_params_is_p256(p384_oid, sizeof(p384_oid)), CS_E_KEY_TYPE);
	/* PKCS#11 3.0: the curve's name as a PrintableString */
	static const char *const names[] = {"prime256v1", "P-256", "secp256r1"};
	for (size_t i = 0; i < 3; i++) {
		size_t n = strlen(names[i]);
		buf[0] = 0x13;
		buf[1] = (uint8_t)n;
		memcpy(buf + 2, names[i], n);
		assert_int_equal(cs_ec_params_is_p256(buf, n + 2), CS_OK);
	}
	memcpy(buf, "\x13\x09secp384r1", 11);
	assert_int_equal(cs_ec_params_is_p256(buf, 11), CS_E_KEY_TYPE);
	memcpy(buf, "\x0c\x0aprime256v1", 12); /* a UTF8String is not the standard's form */
	assert_int_equal(cs_ec_params_is_p256(buf, 12), CS_E_KEY_TYPE);
	/* explicit parameters equal to P-256's */
	size_t n = explicit_params(NID_X9_62_prime256v1, buf, sizeof(buf));
	assert_int_equal(cs_ec_params_is_p256(buf, n), CS_OK);
	buf[n] = 0;
	assert_int_equal(cs_ec_params_is_p256(buf, n + 1), CS_E_KEY_TYPE); /* trailing byte */
	buf[n - 10] ^= 0x01; /* in the order: another group, or none at all */
	assert_int_equal(cs_ec_params_is_p256(buf, n), CS_E_KEY_TYPE);
	n = explicit_params(NID_secp384r1, buf, sizeof(buf));
	assert_int_equal(cs_ec_params_is_p256(buf, n), CS_E_KEY_TYPE);
	uint8_t oid_trailing[sizeof(cs_p256_ec_params) + 1];
	memcpy(oid_trailing, cs_p256_ec_params, sizeof(cs_p256_ec_params));
	oid_trailing[sizeof(cs_p256_ec_params)] = 0;
	assert_int_equal(cs_ec_params_is_p256(oid_trailing, sizeof(oid_trailing)), CS_E_KEY_TYPE);
	assert_int_equal(cs_ec_params_is_p256((const uint8_t *)"\x05\x00", 2), CS_E_KEY_TYPE); /* implicitlyCA */
	assert_int_equal(cs_ec_params_is_p256((const uint8_t *)"", 0), CS_E_KEY_TYPE);
}

/* p11-kit's proxy is refused as a module with a message; init arguments
 * only with a module given by path. */
static void test_proxy_module_refused(void **state)
{
	(void)state;
	cs_token *t = NULL;
	assert_true(cs_token_module_is_proxy("p11-kit-proxy.so"));
	assert_true(cs_token_module_is_proxy("/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so"));
	assert_false(cs_token_module_is_proxy(module_path));
	assert_false(cs_token_module_is_proxy("softhsm2"));
	/* a link to libp11-kit.so is the proxy too, whatever its name */
	char link_path[700], real_path[700];
	snprintf(link_path, sizeof(link_path), "%s/vendor-module.so", token_dir);
	snprintf(real_path, sizeof(real_path), "%s/libp11-kit.so.0", token_dir);
	ts_write_file(real_path, "not a library\n", 0644);
	unlink(link_path);
	assert_int_equal(symlink(real_path, link_path), 0);
	assert_true(cs_token_module_is_proxy(link_path));
	cs_token_params p = params(token_uri, pin_path);
	p.module = link_path;
	assert_int_equal(cs_token_open(&p, &t), CS_E_MODULE_LOAD);
	assert_null(t);
	unlink(link_path);
	unlink(real_path);
	p = params(token_uri, pin_path);
	p.module = "softhsm2";
	p.init_args = "anything";
	assert_int_equal(cs_token_open(&p, &t), CS_E_INVALID_ARG);
}

/* The caller's CKA_ID, used as given. */
static void test_generate_with_id(void **state)
{
	cs_token *t = *state;
	cs_key_ref key, found;
	char label[40];
	uint8_t id[4] = {0xc5, 0x00, 0x00, 0x00};
	uint32_t pid = (uint32_t)getpid();
	memcpy(id + 1, &pid, 3);
	snprintf(label, sizeof(label), "test-id-%u", pid);
	assert_int_equal(cs_token_generate_p256_id(t, label, id, sizeof(id), &key), CS_OK);
	assert_int_equal(key.id_len, sizeof(id));
	assert_memory_equal(key.id, id, sizeof(id));
	cs_key_ref q = {.id_len = sizeof(id)};
	memcpy(q.id, id, sizeof(id));
	assert_int_equal(cs_token_find_key(t, &q, &found), CS_OK);
	assert_string_equal(found.label, label);
	assert_int_equal(cs_token_generate_p256_id(t, "test-id-other", id, sizeof(id), &key), CS_E_KEY_EXISTS);
	assert_int_equal(cs_token_generate_p256_id(t, "test-id-other", id, 0, &key), CS_E_INVALID_ARG);
}

/* Sign with `key` and verify the signature with its public key. */
static void signs(cs_token *t, const cs_key_ref *key)
{
	EVP_PKEY *pub = NULL;
	uint8_t digest[32];
	cs_es256_sig sig;
	SHA256((const unsigned char *)"label", 5, digest);
	assert_int_equal(cs_token_public_key(t, key, &pub), CS_OK);
	assert_int_equal(cs_token_sign_es256(t, key, digest, &sig), CS_OK);
	assert_true(ts_verify_der(pub, digest, sig.der, sig.der_len));
	EVP_PKEY_free(pub);
}

/* Labels longer than 64 bytes (vendor tools write them; PKCS#11 sets no
 * limit): generated, found, read back, named in a URI; up to
 * CS_KEY_LABEL_MAX, a longer one refused with the limit. */
static void test_long_labels(void **state)
{
	cs_token *t = *state;
	cs_key_ref key, found;
	char label[512], uri[600];
	uint32_t pid = (uint32_t)getpid();
	memset(label, 'L', 80);
	snprintf(label, sizeof(label), "test-long-%u-", pid);
	label[strlen(label)] = 'L';
	label[80] = '\0';
	assert_int_equal(strlen(label), 80);
	assert_int_equal(cs_token_generate_p256(t, label, &key), CS_OK);
	assert_string_equal(key.label, label);
	snprintf(uri, sizeof(uri), "pkcs11:token=cstest;object=%s", label);
	cs_key_ref q;
	assert_int_equal(cs_key_ref_from_uri(uri, &q), CS_OK);
	assert_int_equal(cs_token_find_key(t, &q, &found), CS_OK);
	assert_string_equal(found.label, label);
	signs(t, &found);

	/* a vendor key with a 100-byte label, found by its id */
	cs_token_info info;
	assert_int_equal(cs_token_get_info(t, &info), CS_OK);
	CK_FUNCTION_LIST *fl = raw_module();
	CK_SESSION_HANDLE h;
	assert_int_equal(fl->C_OpenSession(info.slot_id, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h),
			 CKR_OK);
	char vendor[101];
	memset(vendor, 'V', 100);
	vendor[100] = '\0';
	memcpy(vendor, "vendor-", 7);
	uint8_t id[4] = {0xd0, 0, 0, 0};
	memcpy(id + 1, &pid, 3);
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	static const uint8_t p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
	CK_ATTRIBUTE pub_tmpl[] = {{CKA_TOKEN, &yes, 1}, {CKA_VERIFY, &yes, 1}, {CKA_EC_PARAMS, (void *)p256, sizeof(p256)},
				   {CKA_LABEL, vendor, 100}, {CKA_ID, id, sizeof(id)}};
	CK_ATTRIBUTE priv_tmpl[] = {{CKA_TOKEN, &yes, 1}, {CKA_PRIVATE, &yes, 1}, {CKA_SENSITIVE, &yes, 1},
				    {CKA_EXTRACTABLE, &no, 1}, {CKA_SIGN, &yes, 1}, {CKA_LABEL, vendor, 100},
				    {CKA_ID, id, sizeof(id)}};
	CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_OBJECT_HANDLE hpub, hpriv;
	assert_int_equal(fl->C_GenerateKeyPair(h, &mech, pub_tmpl, 5, priv_tmpl, 7, &hpub, &hpriv), CKR_OK);
	assert_int_equal(fl->C_CloseSession(h), CKR_OK);
	p11_kit_module_release(fl);
	cs_key_ref by_id = {.id_len = sizeof(id)};
	memcpy(by_id.id, id, sizeof(id));
	assert_int_equal(cs_token_find_key(t, &by_id, &found), CS_OK);
	assert_string_equal(found.label, vendor);
	signs(t, &found);

	/* the limit, and past it */
	memset(label, 'M', CS_KEY_LABEL_MAX + 1);
	label[CS_KEY_LABEL_MAX + 1] = '\0';
	assert_int_equal(cs_token_generate_p256(t, label, &key), CS_E_INVALID_ARG);
}

/* Objects of any class, token or session, with this CKA_ID, as another
 * component of the process sees them (the raw module). */
static CK_ULONG raw_count_id(CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE h, const uint8_t *id, size_t id_len)
{
	CK_OBJECT_HANDLE found[16];
	CK_ULONG n = 0;
	CK_ATTRIBUTE tmpl = {CKA_ID, (void *)id, (CK_ULONG)id_len};
	assert_int_equal(fl->C_FindObjectsInit(h, &tmpl, 1), CKR_OK);
	assert_int_equal(fl->C_FindObjects(h, found, 16, &n), CKR_OK);
	assert_int_equal(fl->C_FindObjectsFinal(h), CKR_OK);
	return n;
}

/* A P-256 pair made behind the token layer's back (raw module). */
static void raw_pair(CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE h, const char *label, const uint8_t *id,
		     size_t id_len, CK_OBJECT_HANDLE *hpriv)
{
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ULONG ll = strlen(label);
	CK_ATTRIBUTE pub_tmpl[] = {{CKA_TOKEN, &yes, 1}, {CKA_VERIFY, &yes, 1},
				   {CKA_EC_PARAMS, (void *)cs_p256_ec_params, sizeof(cs_p256_ec_params)},
				   {CKA_LABEL, (void *)label, ll}, {CKA_ID, (void *)id, id_len}};
	CK_ATTRIBUTE priv_tmpl[] = {{CKA_TOKEN, &yes, 1},     {CKA_PRIVATE, &yes, 1},
				    {CKA_SENSITIVE, &yes, 1}, {CKA_EXTRACTABLE, &no, 1},
				    {CKA_SIGN, &yes, 1},      {CKA_LABEL, (void *)label, ll},
				    {CKA_ID, (void *)id, id_len}};
	CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_OBJECT_HANDLE hpub;
	assert_int_equal(fl->C_GenerateKeyPair(h, &mech, pub_tmpl, 5, priv_tmpl, 7, &hpub, hpriv), CKR_OK);
}

static void *sign_refused(void *p)
{
	struct thread_arg *a = p;
	uint8_t digest[32] = {1};
	cs_es256_sig sig;
	for (int i = 0; i < 50; i++)
		if (cs_token_sign_es256(a->t, &a->key, digest, &sig) == CS_E_KEY_NOT_FOUND)
			a->ok++;
	return NULL;
}

/* cs_token_destroy_key: the pair is gone from the token, and no pooled
 * session signs with a copy it kept; other keys untouched; a pair destroyed
 * half-way is finished; an ambiguous reference destroys nothing; a
 * read-only pool refuses. */
static void test_destroy_key(void **state)
{
	cs_token *t = *state;
	cs_key_ref key, again, q = {.label = KEY_LABEL}, kept;
	EVP_PKEY *pub = NULL;
	char label[48];
	uint32_t pid = (uint32_t)getpid();
	snprintf(label, sizeof(label), "test-destroy-%u", pid);
	assert_int_equal(cs_token_generate_p256(t, label, &key), CS_OK);
	assert_int_equal(cs_token_public_key(t, &key, &pub), CS_OK);
	/* both pooled sessions sign with it: each keeps a session copy */
	enum { THREADS = 4 };
	pthread_t th[THREADS];
	struct thread_arg args[THREADS];
	for (int i = 0; i < THREADS; i++) {
		args[i] = (struct thread_arg){t, key, pub, 0};
		assert_int_equal(pthread_create(&th[i], NULL, sign_many, &args[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(args[i].ok, 200);

	cs_token_info info;
	assert_int_equal(cs_token_get_info(t, &info), CS_OK);
	CK_FUNCTION_LIST *fl = raw_module();
	CK_SESSION_HANDLE h;
	assert_int_equal(fl->C_OpenSession(info.slot_id, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h),
			 CKR_OK);
	assert_true(raw_count_id(fl, h, key.id, key.id_len) >= 2);

	assert_int_equal(cs_token_destroy_key(t, &key), CS_OK);
	for (int i = 0; i < THREADS; i++) {
		args[i] = (struct thread_arg){t, key, pub, 0};
		assert_int_equal(pthread_create(&th[i], NULL, sign_refused, &args[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(args[i].ok, 50);
	EVP_PKEY_free(pub);
	pub = NULL;
	/* no object with its id is left, token or session (the pool's copies) */
	assert_int_equal(raw_count_id(fl, h, key.id, key.id_len), 0);
	assert_int_equal(cs_token_find_key(t, &key, &again), CS_E_KEY_NOT_FOUND);
	assert_int_equal(cs_token_public_key(t, &key, &pub), CS_E_KEY_NOT_FOUND);
	assert_int_equal(cs_token_destroy_key(t, &key), CS_E_KEY_NOT_FOUND);
	/* the other keys still sign */
	assert_int_equal(cs_token_find_key(t, &q, &kept), CS_OK);
	signs(t, &kept);

	/* half-way: the private key gone, the public key left: finished */
	uint8_t id[4] = {0xde, 0, 0, 0};
	memcpy(id + 1, &pid, 3);
	CK_OBJECT_HANDLE hpriv, hpriv2;
	snprintf(label, sizeof(label), "test-half-%u", pid);
	raw_pair(fl, h, label, id, sizeof(id), &hpriv);
	assert_int_equal(fl->C_DestroyObject(h, hpriv), CKR_OK);
	assert_int_equal(raw_count_id(fl, h, id, sizeof(id)), 1);
	cs_key_ref half = {.id_len = sizeof(id)};
	memcpy(half.id, id, sizeof(id));
	snprintf(half.label, sizeof(half.label), "%s", label);
	assert_int_equal(cs_token_destroy_key(t, &half), CS_OK);
	assert_int_equal(raw_count_id(fl, h, id, sizeof(id)), 0);

	/* two pairs under one label: named by the label alone, nothing goes */
	uint8_t id2[4] = {0xdf, 0, 0, 0};
	memcpy(id2 + 1, &pid, 3);
	snprintf(label, sizeof(label), "test-dup-%u", pid);
	raw_pair(fl, h, label, id, sizeof(id), &hpriv);
	raw_pair(fl, h, label, id2, sizeof(id2), &hpriv2);
	cs_key_ref by_label = {0};
	snprintf(by_label.label, sizeof(by_label.label), "%s", label);
	assert_int_equal(cs_token_destroy_key(t, &by_label), CS_E_KEY_AMBIGUOUS);
	assert_int_equal(raw_count_id(fl, h, id, sizeof(id)), 2);
	assert_int_equal(raw_count_id(fl, h, id2, sizeof(id2)), 2);
	/* named by label and id: that pair only */
	cs_key_ref one = by_label;
	memcpy(one.id, id, sizeof(id));
	one.id_len = sizeof(id);
	assert_int_equal(cs_token_destroy_key(t, &one), CS_OK);
	assert_int_equal(raw_count_id(fl, h, id, sizeof(id)), 0);
	assert_int_equal(raw_count_id(fl, h, id2, sizeof(id2)), 2);
	assert_int_equal(cs_token_destroy_key(t, &by_label), CS_OK);
	assert_int_equal(raw_count_id(fl, h, id2, sizeof(id2)), 0);
	assert_int_equal(fl->C_CloseSession(h), CKR_OK);
	p11_kit_module_release(fl);

	cs_key_ref empty = {0};
	assert_int_equal(cs_token_destroy_key(t, &empty), CS_E_INVALID_ARG);
	assert_int_equal(cs_token_destroy_key(NULL, &kept), CS_E_INVALID_ARG);
	/* a read-only pool destroys nothing */
	cs_token *ro = NULL;
	cs_token_params p = params(token_uri, pin_path);
	p.read_write = 0;
	assert_int_equal(cs_token_open(&p, &ro), CS_OK);
	assert_int_equal(cs_token_destroy_key(ro, &kept), CS_E_TOKEN_READ_ONLY);
	cs_token_close(ro);
	assert_int_equal(cs_token_find_key(t, &q, &kept), CS_OK);
}

/* Error names, categories and token messages of values outside the
 * tables; the text log format with fields, control characters escaped. */
static void test_error_and_log_edges(void **state)
{
	(void)state;
	assert_string_equal(cs_err_name((cs_err)100000), "CS_E_UNKNOWN");
	assert_string_equal(cs_err_name(CS_E_PIN_LOCKED), "CS_E_PIN_LOCKED");
	assert_int_equal(cs_err_category_of((cs_err)100000), CS_CAT_INTERNAL);
	assert_string_equal(cs_ckr_message(CKR_VENDOR_DEFINED | 5), "vendor-defined token error");
	assert_string_equal(cs_ckr_message(0x7fffff0UL), "unknown token error");

	char path[600], buf[512] = "";
	snprintf(path, sizeof(path), "%s/text-format.log", token_dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	cs_log_configure(CS_LOG_INFO, CS_LOG_TEXT, fd);
	cs_log_field fields[] = {{.key = "label", .text = "a\tb\nc"}, {.key = "count", .number = 3}};
	cs_log_fields(CS_LOG_WARN, "test", "text line \n \"x\"", fields, 2);
	cs_log_fields(CS_LOG_DEBUG, "test", "below the level", fields, 2);
	cs_log_configure(CS_LOG_INFO, CS_LOG_LOGFMT, STDERR_FILENO);
	assert_true(pread(fd, buf, sizeof(buf) - 1, 0) > 0);
	close(fd);
	/* one line per event: a newline in a value cannot start another */
	assert_string_equal(buf, "warning: text line \\u000a \"x\" label=a\\u0009b\\u000ac count=3\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_token_info, open_token, close_token),
		cmocka_unit_test_setup_teardown(test_sign_verify_round_trip, open_token, close_token),
		cmocka_unit_test(test_key_uri_parsing),
		cmocka_unit_test_setup_teardown(test_key_not_found_and_exists, open_token, close_token),
		cmocka_unit_test_setup_teardown(test_private_key_value_unreadable, open_token,
						close_token),
		cmocka_unit_test_setup_teardown(test_random, open_token, close_token),
		cmocka_unit_test(test_wrong_pin),
		cmocka_unit_test(test_missing_token),
		cmocka_unit_test(test_bad_uri),
		cmocka_unit_test(test_pin_file_permissions),
		cmocka_unit_test_setup_teardown(test_session_recovery, open_token, close_token),
		cmocka_unit_test_setup_teardown(test_concurrent_signing, open_token, close_token),
		cmocka_unit_test_setup_teardown(test_concurrent_key_searches, open_token, close_token),
		cmocka_unit_test(test_read_only_pool_cannot_generate),
		cmocka_unit_test(test_ec_params_forms),
		cmocka_unit_test(test_proxy_module_refused),
		cmocka_unit_test_setup_teardown(test_generate_with_id, open_token, close_token),
		cmocka_unit_test_setup_teardown(test_long_labels, open_token, close_token),
		cmocka_unit_test_setup_teardown(test_destroy_key, open_token, close_token),
		cmocka_unit_test(test_error_and_log_edges),
	};
	return cmocka_run_group_tests(tests, group_setup, NULL);
}
