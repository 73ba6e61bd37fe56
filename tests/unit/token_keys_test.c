/*
 * token_keys_test: how the token layer finds, caches, generates and refuses
 * keys when the token's objects are not what it expects (issue 18): a
 * missing or ambiguous public half, two private keys under one name, a
 * cached handle gone stale, a generated key that breaks the template (its
 * objects destroyed), and ec_util's refusals of malformed token data.
 *
 * The token is SoftHSM2 behind the fault module (tests/fault/fault_pkcs11.c);
 * objects are changed behind the token layer's back through the raw module
 * (SoftHSM2 loaded a second time, unmanaged: the same instance and login).
 * A pool of one session, so the cache a test fills is the one it meets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <p11-kit/p11-kit.h>

#include "cs_log.h"
#include "ec_util.h"
#include "test_support.h"
#include "token.h"

static ts_fault_token tok; /* the fault module's token (test_support.h) */
static char log_path[600];

typedef struct {
	cs_token *t;
	CK_FUNCTION_LIST *fl; /* the raw module */
	CK_SESSION_HANDLE h;  /* a raw read/write session */
} fixture;

static int setup(void **state)
{
	const char *real = getenv("CREDSIGN_FAULT_REAL_MODULE");
	if (ts_fault_token_init(&tok, 0) != 0)
		return -1;
	if (real == NULL) {
		fprintf(stderr, "run through ctest: CREDSIGN_FAULT_REAL_MODULE is missing\n");
		return -1;
	}
	snprintf(log_path, sizeof(log_path), "%s/token-keys.log", tok.dir);
	ts_faults("");
	fixture *f = calloc(1, sizeof(*f));
	if (f == NULL || ts_fault_open(NULL, tok.pin, 1, NULL, &f->t) != CS_OK)
		return -1;
	cs_token_info info;
	if (cs_token_get_info(f->t, &info) != CS_OK)
		return -1;
	f->fl = p11_kit_module_load(real, P11_KIT_MODULE_UNMANAGED);
	if (f->fl == NULL)
		return -1;
	CK_RV rv = f->fl->C_Initialize(NULL);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
		return -1;
	if (f->fl->C_OpenSession(info.slot_id, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &f->h) != CKR_OK)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	ts_faults("");
	(void)f->fl->C_CloseSession(f->h);
	p11_kit_module_release(f->fl);
	cs_token_close(f->t);
	free(f);
	return 0;
}

/* A label of this run (the token outlives a run only within one build). */
static void run_label(char *out, size_t size, const char *what)
{
	snprintf(out, size, "keys-%s-%ld", what, (long)getpid());
}

/* Handles of objects of class cls (or any class: (CK_ULONG)-1) with this
 * label and/or id, as the raw module sees them; how many. */
static CK_ULONG raw_find(fixture *f, CK_ULONG cls, const char *label, const cs_key_ref *id,
			 CK_OBJECT_HANDLE *out, CK_ULONG max)
{
	CK_OBJECT_CLASS c = cls;
	CK_ATTRIBUTE tmpl[3];
	CK_ULONG n = 0, found = 0;
	if (cls != (CK_ULONG)-1)
		tmpl[n++] = (CK_ATTRIBUTE){CKA_CLASS, &c, sizeof(c)};
	if (label != NULL)
		tmpl[n++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)label, strlen(label)};
	if (id != NULL)
		tmpl[n++] = (CK_ATTRIBUTE){CKA_ID, (void *)id->id, id->id_len};
	assert_int_equal(f->fl->C_FindObjectsInit(f->h, tmpl, n), CKR_OK);
	assert_int_equal(f->fl->C_FindObjects(f->h, out, max, &found), CKR_OK);
	assert_int_equal(f->fl->C_FindObjectsFinal(f->h), CKR_OK);
	return found;
}

/* The one object of class cls of key `key` (by its id). */
static CK_OBJECT_HANDLE raw_one(fixture *f, CK_OBJECT_CLASS cls, const cs_key_ref *key)
{
	CK_OBJECT_HANDLE h[4];
	assert_int_equal(raw_find(f, cls, NULL, key, h, 4), 1);
	return h[0];
}

/* A token copy of obj, labelled `label` (NULL: the same label). */
static CK_OBJECT_HANDLE raw_copy(fixture *f, CK_OBJECT_HANDLE obj, const char *label)
{
	CK_BBOOL yes = CK_TRUE;
	CK_ATTRIBUTE tmpl[2] = {{CKA_TOKEN, &yes, sizeof(yes)}};
	CK_ULONG n = 1;
	CK_OBJECT_HANDLE copy = CK_INVALID_HANDLE;
	if (label != NULL)
		tmpl[n++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)label, strlen(label)};
	assert_int_equal(f->fl->C_CopyObject(f->h, obj, tmpl, n, &copy), CKR_OK);
	return copy;
}

static void raw_relabel(fixture *f, CK_OBJECT_HANDLE obj, const char *label)
{
	CK_ATTRIBUTE a = {CKA_LABEL, (void *)label, strlen(label)};
	assert_int_equal(f->fl->C_SetAttributeValue(f->h, obj, &a, 1), CKR_OK);
}

static void generate(fixture *f, const char *label, cs_key_ref *key)
{
	assert_int_equal(cs_token_generate_p256(f->t, label, key), CS_OK);
}

/* Everything with this id destroyed through the raw module. */
static void raw_destroy_all(fixture *f, const cs_key_ref *key)
{
	CK_OBJECT_HANDLE h[8];
	CK_ULONG n = raw_find(f, (CK_ULONG)-1, NULL, key, h, 8);
	for (CK_ULONG i = 0; i < n; i++)
		assert_int_equal(f->fl->C_DestroyObject(f->h, h[i]), CKR_OK);
}

static const uint8_t zero_sig[sizeof(cs_es256_sig)];

/* Sign a fixed digest with `key`; verified against pub when given. */
static cs_err sign_with(fixture *f, const cs_key_ref *key, EVP_PKEY *pub, cs_es256_sig *sig)
{
	uint8_t digest[32];
	SHA256((const uint8_t *)"token keys", 10, digest);
	memset(sig, 0xa5, sizeof(*sig));
	cs_err r = cs_token_sign_es256(f->t, key, digest, sig);
	if (r == CS_OK && pub != NULL)
		assert_true(ts_verify_der(pub, digest, sig->der, sig->der_len));
	return r;
}

/* ---- the public half ---------------------------------------------------------- */

/* The public object goes away after the key was found (its handle cached):
 * the stale handle sends the layer to search again, which finds no public
 * half: CS_E_KEY_NO_PUBLIC, from every operation, nothing signed. */
static void test_public_half_missing(void **state)
{
	fixture *f = *state;
	char label[64];
	cs_key_ref key, found;
	cs_es256_sig sig;
	EVP_PKEY *pub = NULL;
	run_label(label, sizeof(label), "nopub");
	generate(f, label, &key);
	assert_int_equal(cs_token_public_key(f->t, &key, &pub), CS_OK); /* cached */
	EVP_PKEY_free(pub);
	pub = NULL;
	assert_int_equal(f->fl->C_DestroyObject(f->h, raw_one(f, CKO_PUBLIC_KEY, &key)), CKR_OK);

	assert_int_equal(cs_token_public_key(f->t, &key, &pub), CS_E_KEY_NO_PUBLIC);
	assert_null(pub);
	assert_int_equal(cs_token_find_key(f->t, &key, &found), CS_E_KEY_NO_PUBLIC);
	assert_int_equal(sign_with(f, &key, NULL, &sig), CS_E_KEY_NO_PUBLIC);
	assert_memory_equal(&sig, zero_sig, sizeof(sig)); /* nothing partial */
	/* the private key alone is destroyed by its name */
	assert_int_equal(cs_token_destroy_key(f->t, &key), CS_OK);
	CK_OBJECT_HANDLE h[4];
	assert_int_equal(raw_find(f, (CK_ULONG)-1, NULL, &key, h, 4), 0);
}

/* The public object is replaced (a new handle) after its handle was
 * cached: the next read finds it again, the same key. */
static void test_stale_public_handle(void **state)
{
	fixture *f = *state;
	char label[64];
	cs_key_ref key;
	EVP_PKEY *before = NULL, *after = NULL;
	run_label(label, sizeof(label), "stalepub");
	generate(f, label, &key);
	assert_int_equal(cs_token_public_key(f->t, &key, &before), CS_OK);
	CK_OBJECT_HANDLE old = raw_one(f, CKO_PUBLIC_KEY, &key);
	(void)raw_copy(f, old, NULL);
	assert_int_equal(f->fl->C_DestroyObject(f->h, old), CKR_OK);
	unsigned long recoveries = cs_token_recoveries(f->t);
	assert_int_equal(cs_token_public_key(f->t, &key, &after), CS_OK);
	assert_int_equal(EVP_PKEY_eq(before, after), 1);
	assert_int_equal(cs_token_recoveries(f->t), recoveries); /* searched again, no recovery */
	EVP_PKEY_free(before);
	EVP_PKEY_free(after);
	assert_int_equal(cs_token_destroy_key(f->t, &key), CS_OK);
}

/* Signing with the token object (a token without C_CopyObject) whose
 * handle went stale: the key is searched again and signs; once the key is
 * gone, CS_E_KEY_NOT_FOUND and nothing is returned. */
static void test_stale_signing_handle(void **state)
{
	fixture *f = *state;
	char label[64], rules[64];
	cs_key_ref key;
	cs_es256_sig sig;
	EVP_PKEY *pub = NULL;
	run_label(label, sizeof(label), "stalesign");
	generate(f, label, &key);
	snprintf(rules, sizeof(rules), "C_CopyObject %#lx\n", (unsigned long)CKR_FUNCTION_NOT_SUPPORTED);
	ts_faults(rules);
	assert_int_equal(cs_token_public_key(f->t, &key, &pub), CS_OK);
	assert_int_equal(sign_with(f, &key, pub, &sig), CS_OK); /* the handle is cached */
	CK_OBJECT_HANDLE old = raw_one(f, CKO_PRIVATE_KEY, &key);
	(void)raw_copy(f, old, NULL);
	assert_int_equal(f->fl->C_DestroyObject(f->h, old), CKR_OK);
	unsigned long recoveries = cs_token_recoveries(f->t);
	assert_int_equal(sign_with(f, &key, pub, &sig), CS_OK);
	assert_int_equal(cs_token_recoveries(f->t), recoveries);

	/* the private key gone for good */
	assert_int_equal(f->fl->C_DestroyObject(f->h, raw_one(f, CKO_PRIVATE_KEY, &key)), CKR_OK);
	assert_int_equal(sign_with(f, &key, NULL, &sig), CS_E_KEY_NOT_FOUND);
	assert_memory_equal(&sig, zero_sig, sizeof(sig));
	EVP_PKEY_free(pub);
	ts_faults("");
	raw_destroy_all(f, &key);
}

/* Two private keys under one name: nothing is signed, no public key read. */
static void test_ambiguous_private_key(void **state)
{
	fixture *f = *state;
	char label[64];
	cs_key_ref key, found, by_label = {0};
	cs_es256_sig sig;
	EVP_PKEY *pub = NULL;
	run_label(label, sizeof(label), "twopriv");
	generate(f, label, &key);
	(void)raw_copy(f, raw_one(f, CKO_PRIVATE_KEY, &key), NULL);
	snprintf(by_label.label, sizeof(by_label.label), "%s", label);
	assert_int_equal(cs_token_find_key(f->t, &by_label, &found), CS_E_KEY_AMBIGUOUS);
	assert_int_equal(cs_token_find_key(f->t, &key, &found), CS_E_KEY_AMBIGUOUS);
	assert_int_equal(cs_token_public_key(f->t, &key, &pub), CS_E_KEY_AMBIGUOUS);
	assert_null(pub);
	assert_int_equal(sign_with(f, &key, NULL, &sig), CS_E_KEY_AMBIGUOUS);
	assert_memory_equal(&sig, zero_sig, sizeof(sig));
	/* and destroying by that name destroys nothing */
	assert_int_equal(cs_token_destroy_key(f->t, &key), CS_E_KEY_AMBIGUOUS);
	CK_OBJECT_HANDLE h[4];
	assert_int_equal(raw_find(f, (CK_ULONG)-1, NULL, &key, h, 4), 3);
	raw_destroy_all(f, &key);
}

/* Two public keys with the key's CKA_ID: the label breaks the tie; when it
 * does not (both or neither carry the private key's label), the public half
 * is ambiguous: CS_E_KEY_AMBIGUOUS, and a destroy leaves everything. */
static void test_ambiguous_public_half(void **state)
{
	fixture *f = *state;
	char label[64], other[80], third[80];
	cs_key_ref key, found;
	EVP_PKEY *pub = NULL, *want = NULL;
	run_label(label, sizeof(label), "twopub");
	snprintf(other, sizeof(other), "%s-other", label);
	snprintf(third, sizeof(third), "%s-third", label);
	generate(f, label, &key);
	assert_int_equal(cs_token_public_key(f->t, &key, &want), CS_OK);
	CK_OBJECT_HANDLE orig = raw_one(f, CKO_PUBLIC_KEY, &key);
	CK_OBJECT_HANDLE copy = raw_copy(f, orig, NULL);

	/* both labelled like the private key */
	assert_int_equal(cs_token_find_key(f->t, &key, &found), CS_E_KEY_AMBIGUOUS);
	/* one labelled apart: the other, labelled like the private key, is it */
	raw_relabel(f, copy, other);
	assert_int_equal(cs_token_find_key(f->t, &key, &found), CS_OK);
	assert_string_equal(found.label, label);
	assert_int_equal(cs_token_public_key(f->t, &key, &pub), CS_OK);
	assert_int_equal(EVP_PKEY_eq(pub, want), 1);
	EVP_PKEY_free(pub);
	pub = NULL;
	/* both labelled apart (as vendor tools label halves): no tie-break */
	raw_relabel(f, orig, third);
	assert_int_equal(cs_token_find_key(f->t, &key, &found), CS_E_KEY_AMBIGUOUS);
	assert_int_equal(cs_token_destroy_key(f->t, &key), CS_E_KEY_AMBIGUOUS);
	CK_OBJECT_HANDLE h[4];
	assert_int_equal(raw_find(f, (CK_ULONG)-1, NULL, &key, h, 4), 3); /* nothing destroyed */
	EVP_PKEY_free(want);
	raw_destroy_all(f, &key);
}

/* ---- generation ----------------------------------------------------------------- */

/* A token that does not honour the template (the private key comes out
 * extractable and not sensitive): the pair is destroyed and the generate
 * fails, with the layer's id or the caller's; nothing is left in the token. */
static void test_generated_key_breaking_template_is_destroyed(void **state)
{
	fixture *f = *state;
	char label[64];
	cs_key_ref key, q = {0}, found;
	CK_OBJECT_HANDLE h[4];
	run_label(label, sizeof(label), "weak");
	ts_faults("weak-private-key\n");
	ts_log_capture(log_path);
	assert_int_equal(cs_token_generate_p256(f->t, label, &key), CS_E_TOKEN_DATA);
	assert_true(ts_log_release("token did not honour the key template"));
	assert_int_equal(raw_find(f, (CK_ULONG)-1, label, NULL, h, 4), 0);
	snprintf(q.label, sizeof(q.label), "%s", label);
	assert_int_equal(cs_token_find_key(f->t, &q, &found), CS_E_KEY_NOT_FOUND);

	static const uint8_t id[3] = {0x4b, 0x45, 0x59};
	cs_key_ref by_id = {.id_len = sizeof(id)};
	memcpy(by_id.id, id, sizeof(id));
	assert_int_equal(cs_token_generate_p256_id(f->t, label, id, sizeof(id), &key), CS_E_TOKEN_DATA);
	assert_int_equal(raw_find(f, (CK_ULONG)-1, label, NULL, h, 4), 0);
	assert_int_equal(raw_find(f, (CK_ULONG)-1, NULL, &by_id, h, 4), 0);

	/* the template read back fails: the pair goes too */
	char rules[64];
	snprintf(rules, sizeof(rules), "C_GetAttributeValue %#lx 1\n", (unsigned long)CKR_FUNCTION_FAILED);
	ts_faults(rules);
	assert_int_equal(cs_token_generate_p256(f->t, label, &key), CS_E_TOKEN_FAILED);
	assert_int_equal(raw_find(f, (CK_ULONG)-1, label, NULL, h, 4), 0);

	/* and an honest token gets its key */
	ts_faults("");
	generate(f, label, &key);
	assert_int_equal(raw_find(f, (CK_ULONG)-1, label, NULL, h, 4), 2);
	assert_int_equal(cs_token_destroy_key(f->t, &key), CS_OK);
}

/* ---- refusals of the token's answers inside an operation ------------------------ */

/* "nth FN:N:RV" of the fault module: the Nth call of FN from now answers RV. */
static void fault_nth(const char *fn, int n, CK_RV rv)
{
	char rules[96];
	snprintf(rules, sizeof(rules), "nth %s:%d:%#lx\n", fn, n, (unsigned long)rv);
	ts_faults(rules);
}

/* A token error at any call of a key search: the search fails with the
 * token's error or (a refused session copy) succeeds with the right key;
 * never a wrong key, and the next search and signature work (no cache
 * entry is left half filled). */
static void test_token_error_anywhere_in_a_search(void **state)
{
	fixture *f = *state;
	static const char *const fns[] = {"C_FindObjectsInit", "C_FindObjects", "C_FindObjectsFinal",
					  "C_GetAttributeValue", "C_CopyObject"};
	char label[64];
	cs_key_ref key, found;
	cs_es256_sig sig;
	EVP_PKEY *pub = NULL;
	run_label(label, sizeof(label), "sweep");
	generate(f, label, &key);
	assert_int_equal(cs_token_public_key(f->t, &key, &pub), CS_OK);
	int failed = 0;
	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
		for (int n = 1; n <= 6; n++) {
			fault_nth(fns[i], n, CKR_FUNCTION_FAILED);
			cs_err r = cs_token_find_key(f->t, &key, &found);
			if (r == CS_OK) {
				assert_string_equal(found.label, label);
				assert_memory_equal(found.id, key.id, key.id_len);
			} else {
				if (r != CS_E_TOKEN_FAILED)
					fprintf(stderr, "%s #%d: %s\n", fns[i], n, cs_strerror(r));
				assert_int_equal(r, CS_E_TOKEN_FAILED);
				failed++;
			}
			ts_faults("");
			assert_int_equal(cs_token_find_key(f->t, &key, &found), CS_OK);
			assert_int_equal(sign_with(f, &key, pub, &sig), CS_OK);
		}
	}
	assert_true(failed >= 9); /* 3 calls each of the private and public searches, 3 reads */
	EVP_PKEY_free(pub);
	assert_int_equal(cs_token_destroy_key(f->t, &key), CS_OK);
}

/* What the attribute reads of a search make of the token's refusals:
 * CKA_EC_PARAMS unreadable or too large is not a P-256 key; a key that
 * does not know CKA_ALWAYS_AUTHENTICATE does not ask for it; a public
 * point too large is malformed token data. */
static void test_attribute_refusals(void **state)
{
	fixture *f = *state;
	char label[64];
	cs_key_ref key, found;
	EVP_PKEY *pub = NULL;
	run_label(label, sizeof(label), "attrs");
	generate(f, label, &key);
	/* a fresh search reads CKA_LABEL/CKA_ID (twice), CKA_EC_PARAMS, then
	 * CKA_ALWAYS_AUTHENTICATE */
	fault_nth("C_GetAttributeValue", 3, CKR_ATTRIBUTE_TYPE_INVALID);
	assert_int_equal(cs_token_find_key(f->t, &key, &found), CS_E_KEY_TYPE);
	fault_nth("C_GetAttributeValue", 3, CKR_BUFFER_TOO_SMALL);
	assert_int_equal(cs_token_find_key(f->t, &key, &found), CS_E_KEY_TYPE);
	fault_nth("C_GetAttributeValue", 4, CKR_ATTRIBUTE_TYPE_INVALID);
	assert_int_equal(cs_token_find_key(f->t, &key, &found), CS_OK);
	fault_nth("C_GetAttributeValue", 4, CKR_ATTRIBUTE_SENSITIVE);
	assert_int_equal(cs_token_find_key(f->t, &key, &found), CS_OK);
	/* the public point, read from the cached handle */
	fault_nth("C_GetAttributeValue", 1, CKR_BUFFER_TOO_SMALL);
	assert_int_equal(cs_token_public_key(f->t, &key, &pub), CS_E_TOKEN_DATA);
	assert_null(pub);
	/* a token keeping only the private object, failing while it is asked
	 * for the point on the private key */
	ts_faults("no-public-key\nnth C_GetAttributeValue:4:0x6\n");
	assert_int_equal(cs_token_find_key(f->t, &key, &found), CS_E_TOKEN_FAILED);
	ts_faults("");
	assert_int_equal(cs_token_public_key(f->t, &key, &pub), CS_OK);
	EVP_PKEY_free(pub);
	assert_int_equal(cs_token_destroy_key(f->t, &key), CS_OK);
}

/* A P-256 pair made behind the token layer's back (raw module), with the
 * given curve and label. */
static void raw_pair(fixture *f, const uint8_t *params, size_t params_len, const char *label,
		     const cs_key_ref *id)
{
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ULONG ll = strlen(label);
	CK_ATTRIBUTE pub_tmpl[] = {{CKA_TOKEN, &yes, 1}, {CKA_VERIFY, &yes, 1},
				   {CKA_EC_PARAMS, (void *)params, params_len},
				   {CKA_LABEL, (void *)label, ll}, {CKA_ID, (void *)id->id, id->id_len}};
	CK_ATTRIBUTE priv_tmpl[] = {{CKA_TOKEN, &yes, 1},     {CKA_PRIVATE, &yes, 1},
				    {CKA_SENSITIVE, &yes, 1}, {CKA_EXTRACTABLE, &no, 1},
				    {CKA_SIGN, &yes, 1},      {CKA_LABEL, (void *)label, ll},
				    {CKA_ID, (void *)id->id, id->id_len}};
	CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_OBJECT_HANDLE hpub, hpriv;
	assert_int_equal(f->fl->C_GenerateKeyPair(f->h, &mech, pub_tmpl, 5, priv_tmpl, 7, &hpub, &hpriv), CKR_OK);
}

/* Keys credsign cannot take: on another curve (CS_E_KEY_TYPE), or with a
 * label longer than it keeps (CS_E_TOKEN_DATA, the length logged). */
static void test_keys_credsign_cannot_take(void **state)
{
	fixture *f = *state;
	char label[64], long_label[301];
	cs_key_ref id = {.id_len = 4}, q = {0}, found;
	pid_t pid = getpid();
	/* OBJECT IDENTIFIER 1.3.132.0.34 (P-384) */
	static const uint8_t p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
	run_label(label, sizeof(label), "p384");
	id.id[0] = 0x38;
	memcpy(id.id + 1, &pid, 3);
	raw_pair(f, p384, sizeof(p384), label, &id);
	snprintf(q.label, sizeof(q.label), "%s", label);
	assert_int_equal(cs_token_find_key(f->t, &q, &found), CS_E_KEY_TYPE);
	raw_destroy_all(f, &id);

	memset(long_label, 'l', 300);
	long_label[300] = '\0';
	id.id[0] = 0x4c;
	raw_pair(f, cs_p256_ec_params, sizeof(cs_p256_ec_params), long_label, &id);
	ts_log_capture(log_path);
	assert_int_equal(cs_token_find_key(f->t, &id, &found), CS_E_TOKEN_DATA);
	assert_true(ts_log_release("the key's CKA_LABEL is 300 bytes, longer than credsign takes (255 bytes)"));
	raw_destroy_all(f, &id);
}

/* ---- signing ------------------------------------------------------------------- */

/* A key that wants a login before each signature (CKA_ALWAYS_AUTHENTICATE):
 * it signs after a CKU_CONTEXT_SPECIFIC login; a PIN the token rejects
 * there is never offered again; other refusals are logged; a PIN file that
 * cannot be read signs nothing. */
static void test_always_authenticate_refusals(void **state)
{
	fixture *f = *state;
	char label[64], rules[64], moved[700];
	cs_key_ref key;
	cs_es256_sig sig;
	EVP_PKEY *pub = NULL;
	run_label(label, sizeof(label), "always");
	ts_faults("always-authenticate\n");
	generate(f, label, &key);
	ts_faults("");
	assert_int_equal(cs_token_public_key(f->t, &key, &pub), CS_OK);
	assert_int_equal(sign_with(f, &key, pub, &sig), CS_OK);

	/* the PIN file gone: nothing signed, the token not asked */
	snprintf(moved, sizeof(moved), "%s.away", tok.pin);
	assert_int_equal(rename(tok.pin, moved), 0);
	cs_err r = sign_with(f, &key, NULL, &sig);
	assert_int_equal(rename(moved, tok.pin), 0);
	assert_int_equal(r, CS_E_PIN_FILE);
	assert_memory_equal(&sig, zero_sig, sizeof(sig));

	/* the token refuses the context login for another reason: logged */
	snprintf(rules, sizeof(rules), "C_Login %#lx 1\n", (unsigned long)CKR_FUNCTION_FAILED);
	ts_faults(rules);
	ts_log_capture(log_path);
	assert_int_equal(sign_with(f, &key, NULL, &sig), CS_E_TOKEN_FAILED);
	assert_true(ts_log_release("the token refused the login before the signature"));
	assert_memory_equal(&sig, zero_sig, sizeof(sig));
	snprintf(rules, sizeof(rules), "C_Login %#lx 1\n", (unsigned long)CKR_PIN_LOCKED);
	ts_faults(rules);
	assert_int_equal(sign_with(f, &key, NULL, &sig), CS_E_PIN_LOCKED);
	ts_faults("");
	assert_int_equal(sign_with(f, &key, pub, &sig), CS_OK);

	/* the PIN rejected: refused, and never offered again */
	snprintf(rules, sizeof(rules), "C_Login %#lx 1\n", (unsigned long)CKR_PIN_INCORRECT);
	ts_faults(rules);
	assert_int_equal(sign_with(f, &key, NULL, &sig), CS_E_PIN_INCORRECT);
	ts_faults("");
	for (int i = 0; i < 3; i++) {
		assert_int_equal(sign_with(f, &key, NULL, &sig), CS_E_PIN_INCORRECT);
		assert_memory_equal(&sig, zero_sig, sizeof(sig));
	}
	EVP_PKEY_free(pub);
	raw_destroy_all(f, &key);
}

/* A token that lacks CKM_ECDSA: the signature is refused, and the log
 * names the mechanism. */
static void test_sign_mechanism_missing(void **state)
{
	fixture *f = *state;
	char label[64];
	cs_key_ref key;
	cs_es256_sig sig;
	run_label(label, sizeof(label), "nomech");
	generate(f, label, &key);
	ts_faults("no-mechanism CKM_ECDSA\n");
	ts_log_capture(log_path);
	assert_int_equal(sign_with(f, &key, NULL, &sig), CS_E_MECHANISM);
	assert_true(ts_log_release("it lacks the mechanism credsign signs with"));
	assert_memory_equal(&sig, zero_sig, sizeof(sig));
	ts_faults("");
	assert_int_equal(cs_token_destroy_key(f->t, &key), CS_OK);
}

/* ---- generation and destruction under token errors ------------------------------ */

/* A token error at any call of a generation: it fails with the token's
 * error and leaves nothing in the token, or succeeds with a whole pair. */
static void test_token_error_anywhere_in_a_generation(void **state)
{
	fixture *f = *state;
	static const char *const fns[] = {"C_FindObjectsInit", "C_FindObjects", "C_FindObjectsFinal",
					  "C_GenerateRandom", "C_GenerateKeyPair", "C_GetAttributeValue"};
	static const uint8_t caller_id[2] = {0x67, 0x65};
	char label[64];
	CK_OBJECT_HANDLE h[4];
	run_label(label, sizeof(label), "gensweep");
	int failed = 0;
	for (int with_id = 0; with_id < 2; with_id++) {
		for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
			for (int n = 1; n <= 3; n++) {
				cs_key_ref key;
				fault_nth(fns[i], n, CKR_FUNCTION_FAILED);
				cs_err r = with_id ? cs_token_generate_p256_id(f->t, label, caller_id, sizeof(caller_id), &key)
						   : cs_token_generate_p256(f->t, label, &key);
				ts_faults("");
				if (r == CS_OK) {
					assert_int_equal(raw_find(f, (CK_ULONG)-1, label, NULL, h, 4), 2);
					assert_int_equal(cs_token_destroy_key(f->t, &key), CS_OK);
				} else {
					assert_int_equal(r, CS_E_TOKEN_FAILED);
					failed++;
				}
				assert_int_equal(raw_find(f, (CK_ULONG)-1, label, NULL, h, 4), 0);
			}
		}
	}
	assert_true(failed >= 12);
}

/* A token error at any call of a destruction: whatever it left (a public
 * key without its private key), the next destruction finishes. */
static void test_token_error_anywhere_in_a_destruction(void **state)
{
	fixture *f = *state;
	static const char *const fns[] = {"C_FindObjectsInit", "C_FindObjects", "C_FindObjectsFinal",
					  "C_GetAttributeValue", "C_DestroyObject"};
	char label[64];
	CK_OBJECT_HANDLE h[4];
	run_label(label, sizeof(label), "destsweep");
	int failed = 0;
	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
		for (int n = 1; n <= 3; n++) {
			cs_key_ref key;
			generate(f, label, &key);
			fault_nth(fns[i], n, CKR_FUNCTION_FAILED);
			cs_err r = cs_token_destroy_key(f->t, &key);
			ts_faults("");
			if (r != CS_OK) {
				assert_int_equal(r, CS_E_TOKEN_FAILED);
				failed++;
				assert_int_equal(cs_token_destroy_key(f->t, &key), CS_OK);
			}
			assert_int_equal(raw_find(f, (CK_ULONG)-1, label, NULL, h, 4), 0);
			assert_int_equal(cs_token_destroy_key(f->t, &key), CS_E_KEY_NOT_FOUND);
		}
	}
	assert_true(failed >= 8);
}

/* ---- arguments ------------------------------------------------------------------ */

static void test_invalid_arguments(void **state)
{
	fixture *f = *state;
	cs_key_ref empty = {0}, ref, key = {.label = "x"};
	cs_es256_sig sig;
	cs_token_info info;
	cs_token_mechanism mech[CS_TOKEN_MECHANISMS];
	EVP_PKEY *pkey = NULL;
	uint8_t digest[32] = {0}, buf[4];
	char why[8];
	assert_int_equal(cs_token_get_info(NULL, &info), CS_E_INVALID_ARG);
	assert_int_equal(cs_token_get_info(f->t, NULL), CS_E_INVALID_ARG);
	assert_int_equal(cs_token_random(NULL, buf, sizeof(buf)), CS_E_INVALID_ARG);
	assert_int_equal(cs_token_random(f->t, NULL, 4), CS_E_INVALID_ARG);
	assert_int_equal(cs_token_random(f->t, NULL, 0), CS_OK);
	assert_int_equal(cs_token_find_key(NULL, &key, &ref), CS_E_INVALID_ARG);
	assert_int_equal(cs_token_find_key(f->t, NULL, &ref), CS_E_INVALID_ARG);
	assert_int_equal(cs_token_find_key(f->t, &key, NULL), CS_E_INVALID_ARG);
	assert_int_equal(cs_token_find_key(f->t, &empty, &ref), CS_E_INVALID_ARG); /* names no key */
	assert_int_equal(cs_token_public_key(NULL, &key, &pkey), CS_E_INVALID_ARG);
	assert_int_equal(cs_token_public_key(f->t, NULL, &pkey), CS_E_INVALID_ARG);
	assert_int_equal(cs_token_public_key(f->t, &key, NULL), CS_E_INVALID_ARG);
	assert_int_equal(cs_token_sign_es256(NULL, &key, digest, &sig), CS_E_INVALID_ARG);
	assert_int_equal(cs_token_sign_es256(f->t, NULL, digest, &sig), CS_E_INVALID_ARG);
	assert_int_equal(cs_token_sign_es256(f->t, &key, NULL, &sig), CS_E_INVALID_ARG);
	assert_int_equal(cs_token_sign_es256(f->t, &key, digest, NULL), CS_E_INVALID_ARG);
	assert_int_equal(cs_token_bind_key(NULL, &key), CS_E_INVALID_ARG);
	assert_int_equal(cs_token_bind_key(f->t, NULL), CS_E_INVALID_ARG);
	assert_int_equal(cs_token_bind_key(f->t, &key), CS_OK); /* in-process: no purpose check */
	assert_int_equal(cs_token_mechanisms(NULL, mech), CS_E_INVALID_ARG);
	assert_int_equal(cs_token_mechanisms(f->t, NULL), CS_E_INVALID_ARG);
	assert_int_equal(cs_token_check_mechanisms(NULL, CS_TOKEN_NEEDS_SIGN, why, sizeof(why)), CS_E_INVALID_ARG);
	assert_int_equal(cs_token_check_mechanisms(f->t, CS_TOKEN_NEEDS_SIGN, why, 0), CS_OK);
	static const uint8_t id[CS_KEY_ID_MAX + 1] = {1};
	assert_int_equal(cs_token_generate_p256(NULL, "l", &ref), CS_E_INVALID_ARG);
	assert_int_equal(cs_token_generate_p256(f->t, NULL, &ref), CS_E_INVALID_ARG);
	assert_int_equal(cs_token_generate_p256(f->t, "l", NULL), CS_E_INVALID_ARG);
	assert_int_equal(cs_token_generate_p256_id(f->t, "l", id, 0, &ref), CS_E_INVALID_ARG);
	assert_int_equal(cs_token_generate_p256_id(f->t, "l", id, sizeof(id), &ref), CS_E_INVALID_ARG);
	cs_key_ref long_id = {.label = "x", .id_len = CS_KEY_ID_MAX + 1}, unterminated;
	memset(&unterminated, 'u', sizeof(unterminated));
	unterminated.id_len = 1;
	assert_int_equal(cs_token_destroy_key(NULL, &key), CS_E_INVALID_ARG);
	assert_int_equal(cs_token_destroy_key(f->t, NULL), CS_E_INVALID_ARG);
	assert_int_equal(cs_token_destroy_key(f->t, &empty), CS_E_INVALID_ARG);
	assert_int_equal(cs_token_destroy_key(f->t, &long_id), CS_E_INVALID_ARG);
	assert_int_equal(cs_token_destroy_key(f->t, &unterminated), CS_E_INVALID_ARG);

	/* key URIs: an empty, NUL-carrying or too long label, an empty or too
	 * long id */
	char uri[512];
	static const char *const bad[] = {"pkcs11:object=", "pkcs11:object=a%00b", "pkcs11:id=",
					  "pkcs11:token=cstest"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&ref, 0x77, sizeof(ref));
		assert_int_equal(cs_key_ref_from_uri(bad[i], &ref), CS_E_URI_INVALID);
	}
	int n = snprintf(uri, sizeof(uri), "pkcs11:object=");
	memset(uri + n, 'a', CS_KEY_LABEL_MAX + 1);
	uri[n + CS_KEY_LABEL_MAX + 1] = '\0';
	assert_int_equal(cs_key_ref_from_uri(uri, &ref), CS_E_URI_INVALID);
	uri[n + CS_KEY_LABEL_MAX] = '\0';
	assert_int_equal(cs_key_ref_from_uri(uri, &ref), CS_OK);
	assert_int_equal(strlen(ref.label), CS_KEY_LABEL_MAX);
	n = snprintf(uri, sizeof(uri), "pkcs11:id=");
	for (int i = 0; i <= CS_KEY_ID_MAX; i++)
		n += snprintf(uri + n, sizeof(uri) - (size_t)n, "%%%02x", i);
	assert_int_equal(cs_key_ref_from_uri(uri, &ref), CS_E_URI_INVALID);
}

/* ---- ec_util: what tokens hand back, malformed -------------------------------- */

/* DER SubjectPublicKeyInfo and CKA_EC_POINT (OCTET STRING) of a fresh
 * software key on `curve`. */
static size_t spki_of(int nid, uint8_t *out, size_t size, uint8_t point[65])
{
	EVP_PKEY *k = EVP_EC_gen(OBJ_nid2sn(nid));
	assert_non_null(k);
	int n = i2d_PUBKEY(k, NULL);
	assert_true(n > 0 && (size_t)n <= size);
	uint8_t *p = out;
	assert_int_equal(i2d_PUBKEY(k, &p), n);
	if (point != NULL) {
		size_t len = 0;
		assert_true(EVP_PKEY_get_octet_string_param(k, "encoded-pub-key", point, 65, &len));
		assert_int_equal(len, 65);
	}
	EVP_PKEY_free(k);
	return (size_t)n;
}

static void test_ec_params_refusals(void **state)
{
	(void)state;
	static const uint8_t printable[] = {0x13, 0x0a, 'p', 'r', 'i', 'm', 'e', '2', '5', '6', 'v', '1'};
	static const uint8_t sec_name[] = {0x13, 0x09, 's', 'e', 'c', 'p', '2', '5', '6', 'r', '1'};
	static const uint8_t p384_name[] = {0x13, 0x09, 's', 'e', 'c', 'p', '3', '8', '4', 'r', '1'};
	static const uint8_t with_nul[] = {0x13, 0x04, 'P', '-', 0x00, '6'};
	static const uint8_t empty_name[] = {0x13, 0x00};
	/* OBJECT IDENTIFIER 1.3.132.0.34 (P-384) */
	static const uint8_t p384_oid[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
	uint8_t long_name[80] = {0x13, 70};
	memset(long_name + 2, 'a', 70);
	uint8_t trailing[sizeof(cs_p256_ec_params) + 1];
	memcpy(trailing, cs_p256_ec_params, sizeof(cs_p256_ec_params));
	trailing[sizeof(cs_p256_ec_params)] = 0;

	assert_int_equal(cs_ec_params_is_p256(cs_p256_ec_params, sizeof(cs_p256_ec_params)), CS_OK);
	assert_int_equal(cs_ec_params_is_p256(printable, sizeof(printable)), CS_OK);
	assert_int_equal(cs_ec_params_is_p256(sec_name, sizeof(sec_name)), CS_OK);
	assert_int_equal(cs_ec_params_is_p256(p384_name, sizeof(p384_name)), CS_E_KEY_TYPE);
	assert_int_equal(cs_ec_params_is_p256(with_nul, sizeof(with_nul)), CS_E_KEY_TYPE);
	assert_int_equal(cs_ec_params_is_p256(empty_name, sizeof(empty_name)), CS_E_KEY_TYPE);
	assert_int_equal(cs_ec_params_is_p256(long_name, 72), CS_E_KEY_TYPE);
	assert_int_equal(cs_ec_params_is_p256(p384_oid, sizeof(p384_oid)), CS_E_KEY_TYPE);
	assert_int_equal(cs_ec_params_is_p256(trailing, sizeof(trailing)), CS_E_KEY_TYPE);
	uint8_t printable_trailing[sizeof(printable) + 1];
	memcpy(printable_trailing, printable, sizeof(printable));
	printable_trailing[sizeof(printable)] = 0;
	assert_int_equal(cs_ec_params_is_p256(printable_trailing, sizeof(printable_trailing)), CS_E_KEY_TYPE);
	assert_int_equal(cs_ec_params_is_p256(NULL, 10), CS_E_KEY_TYPE);
	assert_int_equal(cs_ec_params_is_p256(cs_p256_ec_params, 0), CS_E_KEY_TYPE);
	assert_int_equal(cs_ec_params_is_p256(cs_p256_ec_params, 4097), CS_E_KEY_TYPE);
}

static void test_ec_point_and_spki_refusals(void **state)
{
	(void)state;
	uint8_t spki[256], point[65], wrapped[80], bad[65];
	EVP_PKEY *k = (EVP_PKEY *)1;
	size_t spki_len = spki_of(NID_X9_62_prime256v1, spki, sizeof(spki), point);

	/* CKA_EC_POINT: bare and wrapped accepted; anything else is token data */
	assert_int_equal(cs_ec_point_to_pkey(point, sizeof(point), &k), CS_OK);
	EVP_PKEY_free(k);
	wrapped[0] = 0x04;
	wrapped[1] = 65;
	memcpy(wrapped + 2, point, 65);
	assert_int_equal(cs_ec_point_to_pkey(wrapped, 67, &k), CS_OK);
	EVP_PKEY_free(k);
	wrapped[67] = 0;
	assert_int_equal(cs_ec_point_to_pkey(wrapped, 68, &k), CS_E_TOKEN_DATA); /* trailing byte */
	assert_null(k);
	assert_int_equal(cs_ec_point_to_pkey(NULL, 65, &k), CS_E_TOKEN_DATA);
	assert_int_equal(cs_ec_point_to_pkey(point, 0, &k), CS_E_TOKEN_DATA);
	assert_int_equal(cs_ec_point_to_pkey(point, 1025, &k), CS_E_TOKEN_DATA);
	assert_int_equal(cs_ec_point_to_pkey((const uint8_t *)"\x30\x00", 2, &k), CS_E_TOKEN_DATA);
	/* compressed (33 bytes), wrapped */
	uint8_t compressed[35] = {0x04, 33, (uint8_t)(0x02 | (point[64] & 1))};
	memcpy(compressed + 3, point + 1, 32);
	assert_int_equal(cs_ec_point_to_pkey(compressed, sizeof(compressed), &k), CS_E_TOKEN_DATA);
	/* 65 bytes that are no uncompressed point, bare or wrapped */
	memcpy(bad, point, sizeof(bad));
	bad[0] = 0x05;
	assert_int_equal(cs_ec_point_to_pkey(bad, sizeof(bad), &k), CS_E_TOKEN_DATA);
	wrapped[2] = 0x05;
	assert_int_equal(cs_ec_point_to_pkey(wrapped, 67, &k), CS_E_TOKEN_DATA);
	assert_null(k);
	/* a point off the curve */
	memcpy(bad, point, sizeof(bad));
	bad[64] ^= 0x01;
	assert_int_equal(cs_ec_point_to_pkey(bad, sizeof(bad), &k), CS_E_TOKEN_DATA);
	assert_null(k);

	/* CKA_PUBLIC_KEY_INFO */
	assert_int_equal(cs_spki_to_pkey(spki, spki_len, &k), CS_OK);
	EVP_PKEY_free(k);
	assert_int_equal(cs_spki_to_pkey(NULL, spki_len, &k), CS_E_TOKEN_DATA);
	assert_int_equal(cs_spki_to_pkey(spki, 0, &k), CS_E_TOKEN_DATA);
	assert_int_equal(cs_spki_to_pkey(spki, 4097, &k), CS_E_TOKEN_DATA);
	assert_int_equal(cs_spki_to_pkey(spki, spki_len - 1, &k), CS_E_TOKEN_DATA); /* cut */
	uint8_t longer[260];
	memcpy(longer, spki, spki_len);
	longer[spki_len] = 0;
	assert_int_equal(cs_spki_to_pkey(longer, spki_len + 1, &k), CS_E_TOKEN_DATA); /* trailing */
	/* another curve, another key type: the wrong kind of key */
	size_t p384_len = spki_of(NID_secp384r1, spki, sizeof(spki), NULL);
	assert_int_equal(cs_spki_to_pkey(spki, p384_len, &k), CS_E_KEY_TYPE);
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_non_null(ed);
	uint8_t *p = spki;
	int ed_len = i2d_PUBKEY(ed, &p);
	EVP_PKEY_free(ed);
	assert_true(ed_len > 0);
	assert_int_equal(cs_spki_to_pkey(spki, (size_t)ed_len, &k), CS_E_KEY_TYPE);
	assert_null(k);
}

static void test_ecdsa_signature_refusals(void **state)
{
	(void)state;
	uint8_t raw[64], der[72], back[64];
	size_t der_len = 0;
	for (int i = 0; i < 64; i++)
		raw[i] = (uint8_t)(i + 1);
	assert_int_equal(cs_ecdsa_raw_to_der(raw, der, &der_len), CS_OK);
	assert_int_equal(cs_ecdsa_sig_to_raw(der, der_len, back), CS_OK);
	assert_memory_equal(back, raw, 64);
	assert_int_equal(cs_ecdsa_sig_to_raw(raw, 64, back), CS_OK);
	/* neither raw nor DER */
	assert_int_equal(cs_ecdsa_sig_to_raw(raw, 63, back), CS_E_TOKEN_DATA);
	assert_int_equal(cs_ecdsa_sig_to_raw((const uint8_t *)"\x30", 1, back), CS_E_TOKEN_DATA);
	/* DER that is empty, too long, not a signature, or followed by bytes */
	assert_int_equal(cs_ecdsa_der_to_raw(der, 0, back), CS_E_TOKEN_DATA);
	assert_int_equal(cs_ecdsa_der_to_raw(der, 73, back), CS_E_TOKEN_DATA);
	assert_int_equal(cs_ecdsa_der_to_raw((const uint8_t *)"\x30\x03\x02\x01", 4, back), CS_E_TOKEN_DATA);
	uint8_t padded[72];
	static const uint8_t two_ints[] = {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01};
	memcpy(padded, two_ints, sizeof(two_ints));
	padded[sizeof(two_ints)] = 0;
	assert_int_equal(cs_ecdsa_der_to_raw(padded, sizeof(two_ints), back), CS_OK);
	assert_int_equal(cs_ecdsa_der_to_raw(padded, sizeof(two_ints) + 1, back), CS_E_TOKEN_DATA);
	/* r of 33 significant bytes does not fit P-256 */
	uint8_t big[72] = {0x30, 38, 0x02, 33, 0x01};
	memset(big + 5, 0xff, 32);
	big[37] = 0x02;
	big[38] = 1;
	big[39] = 1;
	assert_int_equal(cs_ecdsa_der_to_raw(big, 40, back), CS_E_TOKEN_DATA);
	/* and s of 33 */
	uint8_t big_s[72] = {0x30, 38, 0x02, 1, 1, 0x02, 33, 0x01};
	memset(big_s + 8, 0xff, 32);
	assert_int_equal(cs_ecdsa_der_to_raw(big_s, 40, back), CS_E_TOKEN_DATA);
	/* r or s zero is no signature */
	memset(raw, 0, 32);
	assert_int_equal(cs_ecdsa_raw_to_der(raw, der, &der_len), CS_E_CRYPTO);
	assert_int_equal(der_len, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_public_half_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_public_handle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_signing_handle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ambiguous_private_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ambiguous_public_half, setup, teardown),
		cmocka_unit_test_setup_teardown(test_generated_key_breaking_template_is_destroyed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_error_anywhere_in_a_search, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attribute_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keys_credsign_cannot_take, setup, teardown),
		cmocka_unit_test_setup_teardown(test_always_authenticate_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sign_mechanism_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_error_anywhere_in_a_generation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_error_anywhere_in_a_destruction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_arguments, setup, teardown),
		cmocka_unit_test(test_ec_params_refusals),
		cmocka_unit_test(test_ec_point_and_spki_refusals),
		cmocka_unit_test(test_ecdsa_signature_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
