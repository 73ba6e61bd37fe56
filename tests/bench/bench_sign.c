/*
 * bench_sign: ES256 signatures per second on one token, four ways, with 1
 * and 2 threads, in the same run:
 *
 *   direct-token    raw C_SignInit/C_Sign on the token key object
 *   direct-session  raw C_Sign on a session-object copy of the key
 *                   (C_CopyObject, CKA_TOKEN false)
 *   token-layer     cs_token_sign_es256 (pool, cache, DER/raw conversion)
 *   provider        EVP_DigestSign through credsign-pkcs11 (SHA-256 in
 *                   OpenSSL + the token layer)
 *   provider+verify the daemon's signing discipline: each signature is
 *                   verified with the public key before use
 *
 * and the ratio of the provider path to the best direct path. SECONDS is
 * the length of one round (five interleaved rounds per path).
 *
 *   bench_sign MODULE TOKEN_URI PIN_FILE [SECONDS]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/store.h>
#include <p11-kit/p11-kit.h>

#include "cs_secret.h"
#include "provider.h"
#include "token.h"

#define LABEL "bench-sign"

static double seconds = 2.0;
static CK_FUNCTION_LIST *raw;
static CK_SLOT_ID slot;
static cs_token *token;
static cs_key_ref key;
static OSSL_LIB_CTX *libctx;
static EVP_PKEY *prov_key;

typedef enum { DIRECT_TOKEN, DIRECT_SESSION, TOKEN_LAYER, PROVIDER, PROVIDER_VERIFY, NPATHS } path;
static const char *const path_names[] = {"direct-token", "direct-session", "token-layer", "provider",
					 "provider+verify"};
static EVP_PKEY *pub_key;

#define ROUNDS 5

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(const double v[ROUNDS])
{
	double sorted[ROUNDS];
	memcpy(sorted, v, sizeof(sorted));
	qsort(sorted, ROUNDS, sizeof(sorted[0]), cmp_double);
	return sorted[ROUNDS / 2];
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static CK_OBJECT_HANDLE find_private(CK_SESSION_HANDLE h)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_LABEL, LABEL, strlen(LABEL)}};
	CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE;
	CK_ULONG n = 0;
	if (raw->C_FindObjectsInit(h, t, 2) != CKR_OK || raw->C_FindObjects(h, &obj, 1, &n) != CKR_OK)
		return CK_INVALID_HANDLE;
	raw->C_FindObjectsFinal(h);
	return n == 1 ? obj : CK_INVALID_HANDLE;
}

struct run {
	path p;
	unsigned long count;
	int failed;
};

static void *worker(void *arg)
{
	struct run *r = arg;
	uint8_t digest[32], sig[128];
	SHA256((const uint8_t *)"bench", 5, digest);
	CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
	CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE;
	if (r->p == DIRECT_TOKEN || r->p == DIRECT_SESSION) {
		if (raw->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &h) != CKR_OK ||
		    (obj = find_private(h)) == CK_INVALID_HANDLE) {
			r->failed = 1;
			return NULL;
		}
		if (r->p == DIRECT_SESSION) {
			CK_BBOOL no = CK_FALSE;
			CK_ATTRIBUTE t = {CKA_TOKEN, &no, sizeof(no)};
			CK_OBJECT_HANDLE copy;
			if (raw->C_CopyObject(h, obj, &t, 1, &copy) != CKR_OK) {
				r->failed = 1;
				return NULL;
			}
			obj = copy;
		}
	}
	double end = now() + seconds;
	while (now() < end) {
		for (int i = 0; i < 64; i++) {
			int ok = 0;
			if (r->p == DIRECT_TOKEN || r->p == DIRECT_SESSION) {
				CK_MECHANISM m = {CKM_ECDSA, NULL, 0};
				CK_ULONG len = sizeof(sig);
				ok = raw->C_SignInit(h, &m, obj) == CKR_OK &&
				     raw->C_Sign(h, digest, 32, sig, &len) == CKR_OK;
			} else if (r->p == TOKEN_LAYER) {
				cs_es256_sig es;
				ok = cs_token_sign_es256(token, &key, digest, &es) == CS_OK;
			} else {
				size_t len = sizeof(sig);
				EVP_MD_CTX *md = EVP_MD_CTX_new();
				ok = EVP_DigestSignInit_ex(md, NULL, "SHA256", libctx, CS_PROVIDER_SIGN_PROPQ, prov_key, NULL) == 1 &&
				     EVP_DigestSign(md, sig, &len, (const uint8_t *)"bench", 5) == 1;
				EVP_MD_CTX_free(md);
				if (ok && r->p == PROVIDER_VERIFY) {
					md = EVP_MD_CTX_new();
					ok = EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, pub_key, NULL) == 1 &&
					     EVP_DigestVerify(md, sig, len, (const uint8_t *)"bench", 5) == 1;
					EVP_MD_CTX_free(md);
				}
			}
			if (!ok) {
				r->failed = 1;
				return NULL;
			}
			r->count++;
		}
	}
	if (h != CK_INVALID_HANDLE)
		raw->C_CloseSession(h);
	return NULL;
}

static double measure(path p, int threads)
{
	pthread_t th[8];
	struct run runs[8];
	double start = now();
	for (int i = 0; i < threads; i++) {
		runs[i] = (struct run){p, 0, 0};
		pthread_create(&th[i], NULL, worker, &runs[i]);
	}
	unsigned long total = 0;
	int failed = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		total += runs[i].count;
		failed |= runs[i].failed;
	}
	double elapsed = now() - start;
	if (failed) {
		fprintf(stderr, "bench_sign: %s failed\n", path_names[p]);
		exit(1);
	}
	return (double)total / elapsed;
}

static int setup(const char *module, const char *uri, const char *pin_file)
{
	cs_token_params params = {module, uri, pin_file, 4, 1, NULL};
	if (cs_token_open(&params, &token) != CS_OK)
		return -1;
	cs_key_ref q = {.label = LABEL};
	cs_err r = cs_token_find_key(token, &q, &key);
	if (r == CS_E_KEY_NOT_FOUND)
		r = cs_token_generate_p256(token, LABEL, &key);
	if (r != CS_OK || cs_token_public_key(token, &key, &pub_key) != CS_OK)
		return -1;
	/* the raw path: the same module, unmanaged, sharing the login */
	raw = p11_kit_module_load(module, P11_KIT_MODULE_UNMANAGED);
	cs_token_info info;
	if (raw == NULL || cs_token_get_info(token, &info) != CS_OK)
		return -1;
	CK_RV rv = raw->C_Initialize(NULL);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
		return -1;
	slot = info.slot_id;
	/* the provider path */
	OSSL_PROVIDER *prov = NULL;
	libctx = OSSL_LIB_CTX_new();
	if (cs_provider_load(libctx, token, &prov) != CS_OK || OSSL_PROVIDER_load(libctx, "default") == NULL)
		return -1;
	char key_uri[256];
	snprintf(key_uri, sizeof(key_uri), "%s;object=%s", uri, LABEL);
	OSSL_STORE_CTX *st = OSSL_STORE_open_ex(key_uri, libctx, NULL, NULL, NULL, NULL, NULL, NULL);
	OSSL_STORE_INFO *si = st != NULL ? OSSL_STORE_load(st) : NULL;
	prov_key = si != NULL ? OSSL_STORE_INFO_get1_PKEY(si) : NULL;
	OSSL_STORE_INFO_free(si);
	OSSL_STORE_close(st);
	return prov_key != NULL ? 0 : -1;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: bench_sign MODULE TOKEN_URI PIN_FILE [SECONDS]\n");
		return 2;
	}
	if (argc > 4)
		seconds = atof(argv[4]);
	if (setup(argv[1], argv[2], argv[3]) != 0) {
		fprintf(stderr, "bench_sign: set-up failed\n");
		return 1;
	}
	/* the paths take turns, ROUNDS times, and each figure is the median of
	 * its rounds: a machine that speeds up or slows down during the run
	 * then affects every path alike instead of skewing the ratios */
	printf("ES256 signatures/s on %s (median of %d interleaved rounds of %.1f s)\n", argv[2],
	       ROUNDS, seconds);
	printf("%-16s %12s %12s\n", "path", "1 thread", "2 threads");
	double rounds[NPATHS][2][ROUNDS], rate[NPATHS][2];
	for (int r = 0; r < ROUNDS; r++)
		for (int p = 0; p < NPATHS; p++)
			for (int t = 0; t < 2; t++)
				rounds[p][t][r] = measure((path)p, t + 1);
	for (int p = 0; p < NPATHS; p++) {
		for (int t = 0; t < 2; t++)
			rate[p][t] = median(rounds[p][t]);
		printf("%-16s %12.0f %12.0f\n", path_names[p], rate[p][0], rate[p][1]);
	}
	for (int t = 0; t < 2; t++) {
		double best = rate[DIRECT_TOKEN][t] > rate[DIRECT_SESSION][t] ? rate[DIRECT_TOKEN][t]
									      : rate[DIRECT_SESSION][t];
		printf("provider / best direct, %d thread%s: %.2f (target >= 0.90)\n", t + 1,
		       t ? "s" : "", rate[PROVIDER][t] / best);
	}
	for (int t = 0; t < 2; t++)
		printf("cost of verifying every signature, %d thread%s: %.1f%% of the signing rate\n", t + 1,
		       t ? "s" : "", 100.0 * (1.0 - rate[PROVIDER_VERIFY][t] / rate[PROVIDER][t]));
	return 0;
}
