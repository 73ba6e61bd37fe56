/*
 * token_fault_test: the token layer when the token misbehaves. The token is
 * the SoftHSM2 test token seen through tests/fault/fault_pkcs11.c, which
 * injects the return values written to its control file and counts the
 * calls it is given (the token calls a draw costs are asserted).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "cs_log.h"
#include "test_support.h"
#include "token.h"

#define KEY_LABEL "fault-sign"

static ts_fault_token tok; /* the fault module's token (test_support.h) */
static char log_path[600];

typedef struct {
	cs_token *t;
	cs_key_ref key;
	EVP_PKEY *pub;
} fixture;

static int group_setup(void **state)
{
	(void)state;
	if (ts_fault_token_init(&tok, 1) != 0)
		return -1;
	snprintf(log_path, sizeof(log_path), "%s/fault-test.log", tok.dir);
	return 0;
}

static int setup(void **state)
{
	ts_faults("");
	fixture *f = calloc(1, sizeof(*f));
	if (f == NULL || ts_fault_open(NULL, tok.pin, 4, NULL, &f->t) != CS_OK)
		return -1;
	cs_key_ref q = {.label = KEY_LABEL};
	cs_err r = cs_token_find_key(f->t, &q, &f->key);
	if (r == CS_E_KEY_NOT_FOUND)
		r = cs_token_generate_p256(f->t, KEY_LABEL, &f->key);
	if (r != CS_OK || cs_token_public_key(f->t, &f->key, &f->pub) != CS_OK)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	ts_faults("");
	EVP_PKEY_free(f->pub);
	cs_token_close(f->t);
	free(f);
	return 0;
}

static cs_err sign(fixture *f, int *verified)
{
	uint8_t digest[32];
	cs_es256_sig sig;
	SHA256((const unsigned char *)"fault", 5, digest);
	cs_err r = cs_token_sign_es256(f->t, &f->key, digest, &sig);
	*verified = r == CS_OK && ts_verify_der(f->pub, digest, sig.der, sig.der_len);
	return r;
}

static void test_transient_device_error_is_retried(void **state)
{
	fixture *f = *state;
	int ok = 0;
	unsigned long before = cs_token_recoveries(f->t);
	char rules[64];
	snprintf(rules, sizeof(rules), "C_Sign %#lx 1\n", (unsigned long)CKR_DEVICE_ERROR);
	ts_faults(rules);
	assert_int_equal(sign(f, &ok), CS_OK);
	assert_true(ok);
	assert_int_equal(cs_token_recoveries(f->t), before + 1);
}

static void test_token_unavailable(void **state)
{
	fixture *f = *state;
	int ok = 0;
	uint8_t buf[16];
	char rules[128];
	/* the token is gone: operations fail, and reopening fails too */
	snprintf(rules, sizeof(rules), "C_Sign %#lx\nC_GenerateRandom %#lx\nC_OpenSession %#lx\n",
		 (unsigned long)CKR_DEVICE_REMOVED, (unsigned long)CKR_DEVICE_REMOVED,
		 (unsigned long)CKR_TOKEN_NOT_PRESENT);
	ts_faults(rules);
	assert_int_equal(sign(f, &ok), CS_E_TOKEN_UNAVAILABLE);
	assert_false(ok);
	memset(buf, 0xAA, sizeof(buf));
	assert_int_equal(cs_token_random(f->t, buf, sizeof(buf)), CS_E_TOKEN_UNAVAILABLE);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0); /* no partial output */
	assert_int_equal(cs_err_category_of(CS_E_TOKEN_UNAVAILABLE), CS_CAT_TOKEN);
	/* the token comes back: the pool recovers by itself */
	ts_faults("");
	assert_int_equal(sign(f, &ok), CS_OK);
	assert_true(ok);
	assert_int_equal(cs_token_random(f->t, buf, sizeof(buf)), CS_OK);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sign until it answers something other than CS_E_TOKEN_UNAVAILABLE, for
 * `limit` seconds at most; *waited gets the time it took. */
static cs_err sign_until_available(fixture *f, int *verified, double limit, double *waited)
{
	double start = now_s();
	cs_err r;
	while ((r = sign(f, verified)) == CS_E_TOKEN_UNAVAILABLE && now_s() - start < limit)
		usleep(20000);
	*waited = now_s() - start;
	return r;
}

static void test_general_error_is_recoverable(void **state)
{
	fixture *f = *state;
	int ok = 0;
	unsigned long before = cs_token_recoveries(f->t);
	unsigned long reinits = cs_token_reinitializations(f->t);
	char rules[64];
	/* once: a fresh session cures it, no re-initialisation needed */
	snprintf(rules, sizeof(rules), "C_Sign %#lx 1\n", (unsigned long)CKR_GENERAL_ERROR);
	ts_faults(rules);
	assert_int_equal(sign(f, &ok), CS_OK);
	assert_true(ok);
	assert_int_equal(cs_token_recoveries(f->t), before + 1);
	assert_int_equal(cs_token_reinitializations(f->t), reinits);
}

/* The token's storage goes away and comes back: the module answers
 * CKR_GENERAL_ERROR to everything, and keeps doing so until it is finalized
 * and initialized again. */
static void test_lost_storage_is_recovered_by_reinitialization(void **state)
{
	fixture *f = *state;
	int ok = 0;
	uint8_t buf[16];
	char rules[64];
	unsigned long reinits = cs_token_reinitializations(f->t);
	snprintf(rules, sizeof(rules), "all %#lx sticky\n", (unsigned long)CKR_GENERAL_ERROR);
	ts_faults(rules);
	assert_int_equal(sign(f, &ok), CS_E_TOKEN_UNAVAILABLE);
	assert_false(ok);
	memset(buf, 0xAA, sizeof(buf));
	assert_int_equal(cs_token_random(f->t, buf, sizeof(buf)), CS_E_TOKEN_UNAVAILABLE);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0);
	assert_true(cs_token_reinitializations(f->t) > reinits);

	/* while it is away, callers are answered at once and the module is
	 * re-initialised at a bounded rate (250 ms, doubling to 1 s) */
	unsigned long during = cs_token_reinitializations(f->t);
	unsigned calls = 0;
	double start = now_s(), slowest = 0;
	while (now_s() - start < 1.5) {
		double t0 = now_s();
		assert_int_equal(cs_token_random(f->t, buf, sizeof(buf)), CS_E_TOKEN_UNAVAILABLE);
		if (now_s() - t0 > slowest)
			slowest = now_s() - t0;
		calls++;
	}
	unsigned long attempts = cs_token_reinitializations(f->t) - during;
	print_message("      %u calls in 1.5 s while the token was away (slowest %.1f ms), %lu "
		      "re-initialisation attempts\n",
		      calls, slowest * 1e3, attempts);
	assert_true(calls > 100);
	assert_true(slowest < 0.5);
	assert_true(attempts >= 2 && attempts <= 5);

	/* the storage is back; the module still fails until re-initialised */
	ts_faults("");
	double waited = 0;
	assert_int_equal(sign_until_available(f, &ok, 10, &waited), CS_OK);
	assert_true(ok);
	print_message("      available again %.0f ms after the token came back\n", waited * 1e3);
	assert_true(waited < 3.0); /* the backoff is capped at 1 s */
	assert_int_equal(cs_token_random(f->t, buf, sizeof(buf)), CS_OK);
	cs_token_info info;
	assert_int_equal(cs_token_get_info(f->t, &info), CS_OK);
	assert_string_equal(info.label, "cstest");
}

/* A PIN the token rejected is not tried again after a re-initialisation. */
static void test_rejected_pin_not_retried_after_reinitialization(void **state)
{
	fixture *f = *state;
	int ok = 0;
	double waited = 0;
	char lost[64], rejected[64];
	snprintf(lost, sizeof(lost), "all %#lx sticky\n", (unsigned long)CKR_GENERAL_ERROR);
	snprintf(rejected, sizeof(rejected), "C_Login %#lx 1\n", (unsigned long)CKR_PIN_INCORRECT);
	ts_faults(lost);
	assert_int_equal(sign(f, &ok), CS_E_TOKEN_UNAVAILABLE);
	/* the token comes back and rejects the PIN once */
	ts_faults(rejected);
	assert_int_equal(sign_until_available(f, &ok, 5, &waited), CS_E_PIN_INCORRECT);
	/* it goes away and comes back again: the module is re-initialised,
	 * and the PIN (which would now be accepted) is not offered again */
	unsigned long reinits = cs_token_reinitializations(f->t);
	ts_faults(lost);
	assert_int_equal(sign(f, &ok), CS_E_TOKEN_UNAVAILABLE);
	ts_faults("");
	assert_int_equal(sign_until_available(f, &ok, 5, &waited), CS_E_PIN_INCORRECT);
	assert_true(cs_token_reinitializations(f->t) > reinits);
	assert_int_equal(sign(f, &ok), CS_E_PIN_INCORRECT);
}

struct recovery_worker {
	fixture *f;
	atomic_int *stop;
	unsigned good, unavailable, other, bad_signature; /* read after join */
	_Atomic double last_good; /* read while running */
};

static void *recovery_loop(void *p)
{
	struct recovery_worker *w = p;
	uint8_t buf[32];
	while (!atomic_load(w->stop)) {
		int ok = 0;
		cs_err r = sign(w->f, &ok);
		if (r == CS_OK && ok) {
			w->good++;
			atomic_store(&w->last_good, now_s());
		} else if (r == CS_OK) {
			w->bad_signature++;
		} else if (r == CS_E_TOKEN_UNAVAILABLE) {
			w->unavailable++;
		} else {
			w->other++;
			fprintf(stderr, "worker: %s\n", cs_strerror(r));
		}
		r = cs_token_random(w->f->t, buf, sizeof(buf));
		if (r != CS_OK && r != CS_E_TOKEN_UNAVAILABLE)
			w->other++;
	}
	return NULL;
}

/* Threads keep signing while the token goes away twice and comes back.
 * The fault module aborts the process if C_Finalize runs beside another
 * call or a session of an earlier module instance is used. */
static void test_recovery_with_concurrent_threads(void **state)
{
	fixture *f = *state;
	enum { N = 6 }; /* more threads than pooled sessions (4) */
	pthread_t th[N];
	struct recovery_worker w[N];
	atomic_int stop = 0;
	char lost[64];
	snprintf(lost, sizeof(lost), "all %#lx sticky\n", (unsigned long)CKR_GENERAL_ERROR);
	for (int i = 0; i < N; i++) {
		w[i] = (struct recovery_worker){.f = f, .stop = &stop, .last_good = 0};
		assert_int_equal(pthread_create(&th[i], NULL, recovery_loop, &w[i]), 0);
	}
	double back = 0;
	for (int round = 0; round < 2; round++) {
		usleep(200000);
		ts_faults(lost);
		usleep(700000);
		ts_faults("");
		back = now_s();
	}
	/* every thread signs again within 10 s of the token's return */
	int all_back = 0;
	while (!all_back && now_s() - back < 10) {
		usleep(50000);
		all_back = 1;
		for (int i = 0; i < N; i++)
			all_back &= atomic_load(&w[i].last_good) > back;
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < N; i++)
		pthread_join(th[i], NULL);
	unsigned good = 0, unavailable = 0;
	for (int i = 0; i < N; i++) {
		good += w[i].good;
		unavailable += w[i].unavailable;
		assert_int_equal(w[i].other, 0);
		assert_int_equal(w[i].bad_signature, 0);
	}
	print_message("      %u signatures, %u token_unavailable, %lu re-initialisations\n", good,
		      unavailable, cs_token_reinitializations(f->t));
	assert_true(all_back);
	assert_true(unavailable > 0);
}

static void test_other_errors_are_not_retried(void **state)
{
	fixture *f = *state;
	int ok = 0;
	unsigned long before = cs_token_recoveries(f->t);
	char rules[64];
	snprintf(rules, sizeof(rules), "C_Sign %#lx 1\n", (unsigned long)CKR_FUNCTION_FAILED);
	ts_faults(rules);
	assert_int_equal(sign(f, &ok), CS_E_TOKEN_FAILED);
	assert_int_equal(cs_token_recoveries(f->t), before);
	assert_int_equal(sign(f, &ok), CS_OK);
	assert_true(ok);
}

static void test_stale_key_handle_is_found_again(void **state)
{
	fixture *f = *state;
	int ok = 0;
	unsigned long before = cs_token_recoveries(f->t);
	char rules[64];
	/* the cached handle goes stale (e.g. the token reloaded its objects):
	 * the key is searched again on the same session, no recovery needed */
	snprintf(rules, sizeof(rules), "C_SignInit %#lx 1\n", (unsigned long)CKR_KEY_HANDLE_INVALID);
	ts_faults(rules);
	assert_int_equal(sign(f, &ok), CS_OK);
	assert_true(ok);
	assert_int_equal(cs_token_recoveries(f->t), before);
}

/* CKF_RNG is read with the token information the pool reads anyway (slot
 * selection at open and at every recovery, login, cs_token_get_info), not
 * per draw: a token that stops reporting it is refused from the next such
 * read on, and used again as soon as a refused draw finds it back. */
static void test_token_without_rng(void **state)
{
	fixture *f = *state;
	uint8_t buf[8];
	cs_token_info info;
	char rules[64];
	ts_faults("no-rng\n");
	/* the pool read the flag while the token had one: draws go on, and
	 * do not ask the token for its flags */
	unsigned long infos = ts_fault_calls("C_GetTokenInfo");
	assert_int_equal(cs_token_random(f->t, buf, sizeof(buf)), CS_OK);
	assert_int_equal(ts_fault_calls("C_GetTokenInfo"), infos);
	/* reading the token's information notices it */
	assert_int_equal(cs_token_get_info(f->t, &info), CS_OK);
	assert_false(info.flags & CKF_RNG);
	memset(buf, 0xAA, sizeof(buf));
	assert_int_equal(cs_token_random(f->t, buf, sizeof(buf)), CS_E_TOKEN_NO_RNG);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0);
	unsigned long generated = ts_fault_calls("C_GenerateRandom");
	assert_int_equal(cs_token_random(f->t, buf, sizeof(buf)), CS_E_TOKEN_NO_RNG);
	assert_int_equal(ts_fault_calls("C_GenerateRandom"), generated); /* never asked */
	/* the RNG is reported again: the next draw reads the flag and succeeds */
	ts_faults("");
	assert_int_equal(cs_token_random(f->t, buf, sizeof(buf)), CS_OK);
	infos = ts_fault_calls("C_GetTokenInfo");
	assert_int_equal(cs_token_random(f->t, buf, sizeof(buf)), CS_OK);
	assert_int_equal(ts_fault_calls("C_GetTokenInfo"), infos);

	/* a recovery (one failed call: the pool reopens its sessions and
	 * selects the slot again) notices it too */
	unsigned long before = cs_token_recoveries(f->t);
	snprintf(rules, sizeof(rules), "no-rng\nC_GenerateRandom %#lx 1\n",
		 (unsigned long)CKR_DEVICE_ERROR);
	ts_faults(rules);
	assert_int_equal(cs_token_random(f->t, buf, sizeof(buf)), CS_E_TOKEN_NO_RNG);
	assert_int_equal(cs_token_recoveries(f->t), before + 1);
	ts_faults("");
	assert_int_equal(cs_token_random(f->t, buf, sizeof(buf)), CS_OK);
	assert_int_equal(cs_token_recoveries(f->t), before + 1);
}

/* A token opened while it reports no RNG is refused its draws. */
static void test_token_opened_without_rng(void **state)
{
	(void)state;
	cs_token *t = NULL;
	uint8_t buf[8];
	ts_faults("no-rng\n");
	assert_int_equal(ts_fault_open(NULL, tok.pin, 2, NULL, &t), CS_OK);
	assert_int_equal(cs_token_random(t, buf, sizeof(buf)), CS_E_TOKEN_NO_RNG);
	ts_faults("");
	assert_int_equal(cs_token_random(t, buf, sizeof(buf)), CS_OK);
	cs_token_close(t);
}

/* A draw is C_GenerateRandom alone: the token's flags are not read per draw
 * (C_GetTokenInfo cost SoftHSM2 13 of the 15 us of a draw, and a network
 * HSM a round trip), and n bytes take ceil(n / 256) calls. */
static void test_draw_is_one_call_per_256_bytes(void **state)
{
	fixture *f = *state;
	uint8_t buf[1000];
	unsigned long infos = ts_fault_calls("C_GetTokenInfo"), generated = ts_fault_calls("C_GenerateRandom");
	unsigned long sessions = ts_fault_calls("C_GetSessionInfo");
	for (int i = 0; i < 100; i++)
		assert_int_equal(cs_token_random(f->t, buf, 32), CS_OK);
	assert_int_equal(ts_fault_calls("C_GetTokenInfo"), infos);
	assert_int_equal(ts_fault_calls("C_GetSessionInfo"), sessions);
	assert_int_equal(ts_fault_calls("C_GenerateRandom"), generated + 100);
	assert_int_equal(cs_token_random_max(f->t), CS_TOKEN_RANDOM_MAX_CALL);
	assert_int_equal(cs_token_random(f->t, buf, sizeof(buf)), CS_OK);
	assert_int_equal(ts_fault_calls("C_GenerateRandom"), generated + 100 + 4);
	assert_int_equal(ts_fault_calls("C_GetTokenInfo"), infos);
}

/* A token that caps one C_GenerateRandom call lower is asked less: the cap
 * is learned once and kept. */
static void test_token_with_a_smaller_random_cap(void **state)
{
	fixture *f = *state;
	uint8_t buf[200];
	ts_faults("random-cap 64\n");
	unsigned long before = cs_token_recoveries(f->t);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(cs_token_random(f->t, buf, sizeof(buf)), CS_OK);
	int nonzero = 0;
	for (size_t i = 0; i < sizeof(buf); i++)
		nonzero += buf[i] != 0;
	assert_true(nonzero > 150); /* filled, not a zeroed or partial buffer */
	assert_int_equal(cs_token_random_max(f->t), 64);
	assert_int_equal(cs_token_recoveries(f->t), before);
	unsigned long generated = ts_fault_calls("C_GenerateRandom");
	assert_int_equal(cs_token_random(f->t, buf, sizeof(buf)), CS_OK);
	assert_int_equal(ts_fault_calls("C_GenerateRandom"), generated + 4); /* 64 + 64 + 64 + 8 */
	/* a cap below the smallest call asked is an error, not a loop */
	ts_faults("random-cap 8\n");
	/* CKR_DATA_LEN_RANGE */
	assert_int_equal(cs_token_random(f->t, buf, sizeof(buf)), CS_E_INVALID_ARG);
	assert_int_equal(cs_token_random_max(f->t), CS_TOKEN_RANDOM_MIN_CALL);
	ts_faults("");
}

static void test_corrupt_signature_is_detectable(void **state)
{
	fixture *f = *state;
	int ok = 1;
	ts_faults("corrupt-signature 1\n");
	/* the token layer returns what the token produced; callers verify */
	cs_err r = sign(f, &ok);
	assert_true(r == CS_OK || r == CS_E_TOKEN_DATA);
	assert_false(ok);
	assert_int_equal(sign(f, &ok), CS_OK);
	assert_true(ok);
}

struct worker {
	fixture *f;
	int good;
};

static void *sign_loop(void *p)
{
	struct worker *w = p;
	for (int i = 0; i < 50; i++) {
		int ok = 0;
		if (sign(w->f, &ok) == CS_OK && ok)
			w->good++;
	}
	return NULL;
}

static void test_token_with_fewer_sessions_than_configured(void **state)
{
	(void)state;
	cs_token *t = NULL;
	fixture f2 = {0};
	assert_int_equal(ts_fault_open(NULL, tok.pin, 4, NULL, &t), CS_OK); /* one session opened */
	f2.t = t;
	cs_key_ref q = {.label = KEY_LABEL};
	assert_int_equal(cs_token_find_key(t, &q, &f2.key), CS_OK);
	assert_int_equal(cs_token_public_key(t, &f2.key, &f2.pub), CS_OK);
	/* the token allows one session: the one the pool holds */
	ts_faults("session-cap 1\n");
	pthread_t th[3];
	struct worker w[3];
	for (int i = 0; i < 3; i++) {
		w[i] = (struct worker){&f2, 0};
		assert_int_equal(pthread_create(&th[i], NULL, sign_loop, &w[i]), 0);
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].good, 50);
	}
	/* a failed call discards the only session; a new one must be opened
	 * even though the token refused more than one */
	char rules[96];
	snprintf(rules, sizeof(rules), "session-cap 1\nC_Sign %#lx 1\n",
		 (unsigned long)CKR_FUNCTION_FAILED);
	ts_faults(rules);
	int ok = 0;
	assert_int_equal(sign(&f2, &ok), CS_E_TOKEN_FAILED);
	assert_int_equal(sign(&f2, &ok), CS_OK);
	assert_true(ok);
	ts_faults("");
	EVP_PKEY_free(f2.pub);
	cs_token_close(t);
}

static void test_login_failure_at_open(void **state)
{
	(void)state;
	cs_token *t = NULL;
	char rules[64];
	snprintf(rules, sizeof(rules), "C_Login %#lx\n", (unsigned long)CKR_PIN_LOCKED);
	ts_faults(rules);
	assert_int_equal(ts_fault_open(NULL, tok.pin, 2, NULL, &t), CS_E_PIN_LOCKED);
	assert_null(t);
	ts_faults("");
}

/* ---- tokens that differ from SoftHSM2 (docs/hsm.md) ------------------------- */

/* Sign with the fixture key on a token opened now (no cached handles) and
 * verify the signature with OpenSSL. */
static void sign_on(cs_token *t, fixture *ref)
{
	fixture f2 = {.t = t};
	cs_key_ref q = {.label = KEY_LABEL};
	int ok = 0;
	assert_int_equal(cs_token_find_key(t, &q, &f2.key), CS_OK);
	assert_int_equal(cs_token_public_key(t, &f2.key, &f2.pub), CS_OK);
	if (ref != NULL)
		assert_int_equal(EVP_PKEY_eq(f2.pub, ref->pub), 1);
	assert_int_equal(sign(&f2, &ok), CS_OK);
	assert_true(ok);
	EVP_PKEY_free(f2.pub);
}

/* A module that takes its configuration in CK_C_INITIALIZE_ARGS.pReserved
 * refuses C_Initialize without it; pkcs11.init_args is given at start and
 * at every re-initialisation. */
static void test_module_needs_init_args(void **state)
{
	(void)state;
	cs_token *t = NULL;
	ts_faults("init-args configdir=/etc/hsm\n");
	assert_int_equal(ts_fault_open(NULL, tok.pin, 2, NULL, &t), CS_E_MODULE_INIT);
	assert_null(t);
	assert_int_equal(ts_fault_open(NULL, tok.pin, 2, "configdir=/elsewhere", &t), CS_E_MODULE_INIT);
	assert_int_equal(ts_fault_open(NULL, tok.pin, 2, "configdir=/etc/hsm", &t), CS_OK);
	sign_on(t, NULL);
	/* the token's storage goes and comes back: re-initialised, with the
	 * arguments again */
	unsigned long reinits = cs_token_reinitializations(t);
	char rules[96];
	snprintf(rules, sizeof(rules), "init-args configdir=/etc/hsm\nall %#lx sticky\n",
		 (unsigned long)CKR_GENERAL_ERROR);
	ts_faults(rules);
	uint8_t buf[16];
	assert_int_equal(cs_token_random(t, buf, sizeof(buf)), CS_E_TOKEN_UNAVAILABLE);
	ts_faults("init-args configdir=/etc/hsm\n");
	assert_int_equal(ts_random_after_backoff(t, buf, sizeof(buf)), CS_OK);
	assert_true(cs_token_reinitializations(t) > reinits);
	sign_on(t, NULL);
	/* a module given by p11-kit name takes x-init-reserved instead */
	cs_token *named = NULL;
	cs_token_params p = {.module = "softhsm2", .token_uri = "pkcs11:token=cstest", .pin_file = tok.pin,
			     .pool_size = 1, .init_args = "configdir=/etc/hsm"};
	assert_int_equal(cs_token_open(&p, &named), CS_E_INVALID_ARG);
	cs_token_close(t);
	ts_faults("");
}

/* An HSM that keeps only 2 bytes of CKA_ID: the id shrinks 16 -> 8 -> 4 -> 2. */
static void test_token_with_short_ids(void **state)
{
	fixture *f = *state;
	char label[32];
	cs_key_ref key, found;
	snprintf(label, sizeof(label), "fault-short-%ld", (long)getpid());
	ts_faults("id-max 2\n");
	unsigned long attempts = ts_fault_calls("C_GenerateKeyPair");
	assert_int_equal(cs_token_generate_p256(f->t, label, &key), CS_OK);
	assert_int_equal(key.id_len, 2);
	assert_int_equal(ts_fault_calls("C_GenerateKeyPair"), attempts + 4); /* 16, 8, 4 refused; 2 */
	/* found by its id, and it signs */
	cs_key_ref by_id = {.id_len = 2};
	memcpy(by_id.id, key.id, 2);
	assert_int_equal(cs_token_find_key(f->t, &by_id, &found), CS_OK);
	assert_string_equal(found.label, label);
	fixture f2 = {.t = f->t, .key = found};
	int ok = 0;
	assert_int_equal(cs_token_public_key(f->t, &found, &f2.pub), CS_OK);
	assert_int_equal(sign(&f2, &ok), CS_OK);
	assert_true(ok);
	EVP_PKEY_free(f2.pub);
	/* the caller's id: used as given, refused when too long or taken */
	uint8_t three[3] = {1, 2, 3};
	char other[40];
	snprintf(other, sizeof(other), "%s-b", label);
	assert_int_equal(cs_token_generate_p256_id(f->t, other, three, sizeof(three), &found),
			 CS_E_KEY_TEMPLATE);
	assert_int_equal(cs_token_generate_p256_id(f->t, other, key.id, key.id_len, &found), CS_E_KEY_EXISTS);
	ts_faults("");
}

static void test_token_without_mechanisms(void **state)
{
	fixture *f = *state;
	char why[160];
	cs_key_ref key;
	cs_token_mechanism m[CS_TOKEN_MECHANISMS];
	/* SoftHSM2 has both, for P-256 */
	assert_int_equal(cs_token_mechanisms(f->t, m), CS_OK);
	for (int i = 0; i < CS_TOKEN_MECHANISMS; i++) {
		assert_true(m[i].listed);
		assert_string_equal(m[i].problem, "");
		assert_true(m[i].min_key_size <= 256 && m[i].max_key_size >= 256);
	}
	assert_string_equal(m[0].name, "CKM_ECDSA");
	assert_true(m[0].flags & CKF_SIGN);
	assert_int_equal(cs_token_check_mechanisms(f->t, CS_TOKEN_NEEDS_SIGN | CS_TOKEN_NEEDS_GENERATE, why,
						   sizeof(why)),
			 CS_OK);

	ts_faults("no-mechanism CKM_ECDSA\n");
	assert_int_equal(cs_token_check_mechanisms(f->t, CS_TOKEN_NEEDS_SIGN, why, sizeof(why)), CS_E_MECHANISM);
	assert_string_equal(why, "token lacks CKM_ECDSA (sign)");
	assert_int_equal(cs_token_check_mechanisms(f->t, CS_TOKEN_NEEDS_GENERATE, why, sizeof(why)), CS_OK);

	ts_faults("no-mechanism CKM_EC_KEY_PAIR_GEN\n");
	assert_int_equal(cs_token_check_mechanisms(f->t, CS_TOKEN_NEEDS_SIGN, why, sizeof(why)), CS_OK);
	assert_int_equal(cs_token_check_mechanisms(f->t, CS_TOKEN_NEEDS_SIGN | CS_TOKEN_NEEDS_GENERATE, why,
						   sizeof(why)),
			 CS_E_MECHANISM);
	assert_string_equal(why, "token lacks CKM_EC_KEY_PAIR_GEN (generate key pair)");
	assert_int_equal(cs_token_generate_p256(f->t, "fault-never", &key), CS_E_MECHANISM);
	int ok = 0;
	assert_int_equal(sign(f, &ok), CS_OK); /* signing needs only CKM_ECDSA */
	assert_true(ok);

	/* a token that does not list its mechanisms is asked for each */
	ts_faults("C_GetMechanismList 0x54\n");
	assert_int_equal(cs_token_check_mechanisms(f->t, CS_TOKEN_NEEDS_SIGN | CS_TOKEN_NEEDS_GENERATE, why,
						   sizeof(why)),
			 CS_OK);
	ts_faults("C_GetMechanismList 0x54\nno-mechanism CKM_ECDSA\n");
	assert_int_equal(cs_token_check_mechanisms(f->t, CS_TOKEN_NEEDS_SIGN, why, sizeof(why)), CS_E_MECHANISM);
	assert_string_equal(why, "token lacks CKM_ECDSA (sign)");
	ts_faults("");
}

/* Signatures as DER, no C_CopyObject, the curve in another encoding: the
 * same key, found and signing, verified. */
static void test_token_encodings_and_missing_copy(void **state)
{
	fixture *f = *state;
	static const char *const modes[] = {"der-signature\n", "C_CopyObject 0x54\n", "ec-params printable\n",
					    "ec-params explicit\n"};
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		cs_token *t = NULL;
		ts_faults(modes[i]);
		unsigned long copies = ts_fault_calls("C_CopyObject");
		assert_int_equal(ts_fault_open(NULL, tok.pin, 2, NULL, &t), CS_OK);
		sign_on(t, f);
		if (i == 1)
			assert_true(ts_fault_calls("C_CopyObject") > copies); /* asked, refused, signed anyway */
		cs_token_close(t);
	}
	ts_faults("");
}

/* A token that needs no login: no PIN source, and C_Login never called. A
 * token that does need one, without a PIN source, is refused at open. */
static void test_token_without_login(void **state)
{
	(void)state;
	cs_token *t = NULL;
	char rules[700];
	snprintf(rules, sizeof(rules), "no-login %s\n", tok.pin);
	ts_faults(rules);
	unsigned long logins = ts_fault_calls("C_Login");
	assert_int_equal(ts_fault_open(NULL, NULL, 2, NULL, &t), CS_OK);
	sign_on(t, NULL);
	uint8_t buf[32];
	assert_int_equal(cs_token_random(t, buf, sizeof(buf)), CS_OK);
	assert_int_equal(ts_fault_calls("C_Login"), logins);
	cs_token_close(t);
	ts_faults("");
	assert_int_equal(ts_fault_open(NULL, NULL, 2, NULL, &t), CS_E_PIN_SOURCE);
	assert_null(t);
}

/* A USB HSM whose secure channel expires: after a pause every call fails
 * until the module is finalized and initialized again; the pool does that
 * by itself (with the module's C_Initialize arguments). */
static void test_sessions_die_when_idle(void **state)
{
	(void)state;
	cs_token *t = NULL;
	ts_faults("init-args slot=0\nidle-timeout 150\n");
	assert_int_equal(ts_fault_open(NULL, tok.pin, 2, "slot=0", &t), CS_OK);
	sign_on(t, NULL);
	for (int round = 0; round < 2; round++) {
		unsigned long reinits = cs_token_reinitializations(t);
		usleep(400000);
		sign_on(t, NULL); /* answered, after recovering */
		assert_true(cs_token_reinitializations(t) > reinits);
	}
	cs_token_close(t);
	ts_faults("");
}

/* ---- review of issue 12 ---------------------------------------------------- */

/* Sign `key` on `t` and verify with its public key from the token. */
static cs_err sign_key(cs_token *t, const cs_key_ref *key, int *verified)
{
	fixture f2 = {.t = t, .key = *key};
	*verified = 0;
	cs_err r = cs_token_public_key(t, key, &f2.pub);
	if (r == CS_OK)
		r = sign(&f2, verified);
	EVP_PKEY_free(f2.pub);
	return r;
}

/* A key with CKA_ALWAYS_AUTHENTICATE (SoftHSM2 enforces it: C_Sign without
 * a CKU_CONTEXT_SPECIFIC login after C_SignInit answers
 * CKR_USER_NOT_LOGGED_IN): signed with a context-specific login with the
 * configured PIN each time, no recovery, no re-initialisation. Without a
 * PIN source the key is refused, naming the attribute. */
static void test_always_authenticate_key(void **state)
{
	fixture *f = *state;
	char label[48], rules[700];
	cs_key_ref key, found;
	int ok = 0;
	snprintf(label, sizeof(label), "fault-always-auth-%ld", (long)getpid());
	ts_faults("always-authenticate\n");
	assert_int_equal(cs_token_generate_p256(f->t, label, &key), CS_OK);
	ts_faults("");
	unsigned long recoveries = cs_token_recoveries(f->t), reinits = cs_token_reinitializations(f->t);
	unsigned long logins = ts_fault_calls("C_Login");
	for (int i = 0; i < 3; i++) {
		assert_int_equal(sign_key(f->t, &key, &ok), CS_OK);
		assert_true(ok);
	}
	assert_int_equal(ts_fault_calls("C_Login"), logins + 3); /* one context-specific login per signature */
	assert_int_equal(cs_token_recoveries(f->t), recoveries);
	assert_int_equal(cs_token_reinitializations(f->t), reinits);

	/* the token rejects the PIN at the context-specific login: reported,
	 * and never offered again */
	snprintf(rules, sizeof(rules), "C_Login %#lx 1\n", (unsigned long)CKR_PIN_INCORRECT);
	ts_faults(rules);
	assert_int_equal(sign_key(f->t, &key, &ok), CS_E_PIN_INCORRECT);
	ts_faults("");
	logins = ts_fault_calls("C_Login");
	assert_int_equal(sign_key(f->t, &key, &ok), CS_E_PIN_INCORRECT);
	assert_int_equal(ts_fault_calls("C_Login"), logins);
	assert_int_equal(cs_token_recoveries(f->t), recoveries);

	/* no PIN source (a token that needs no login): the key is refused */
	cs_token *t = NULL;
	snprintf(rules, sizeof(rules), "no-login %s\n", tok.pin);
	ts_faults(rules);
	assert_int_equal(ts_fault_open(NULL, NULL, 2, NULL, &t), CS_OK);
	cs_key_ref q = {0};
	snprintf(q.label, sizeof(q.label), "%s", label);
	assert_int_equal(cs_token_find_key(t, &q, &found), CS_E_KEY_ALWAYS_AUTH);
	assert_non_null(strstr(cs_strerror(CS_E_KEY_ALWAYS_AUTH), "CKA_ALWAYS_AUTHENTICATE"));
	assert_int_equal(cs_token_reinitializations(t), 0);
	cs_token_close(t);
	ts_faults("");
}

/* CKR_USER_NOT_LOGGED_IN is a lost login only when the session is public on
 * a token that needs a login; otherwise it is reported, not recovered (it
 * used to make the pool reopen its sessions and re-initialise the module
 * on every call). */
static void test_user_not_logged_in(void **state)
{
	fixture *f = *state;
	int ok = 0;
	char rules[700];
	unsigned long recoveries = cs_token_recoveries(f->t), reinits = cs_token_reinitializations(f->t);
	/* a logged-in session refused: the key's or the token's refusal */
	ts_log_capture(log_path);
	snprintf(rules, sizeof(rules), "C_Sign %#lx\n", (unsigned long)CKR_USER_NOT_LOGGED_IN);
	ts_faults(rules);
	assert_int_equal(sign(f, &ok), CS_E_NOT_LOGGED_IN);
	assert_int_equal(sign(f, &ok), CS_E_NOT_LOGGED_IN);
	assert_int_equal(cs_token_recoveries(f->t), recoveries);
	assert_int_equal(cs_token_reinitializations(f->t), reinits);
	assert_true(ts_log_release("CKR_USER_NOT_LOGGED_IN on a logged-in session"));
	/* the token dropped the login (public sessions): reopened, logged in */
	snprintf(rules, sizeof(rules), "logged-out\nC_Sign %#lx 1\n", (unsigned long)CKR_USER_NOT_LOGGED_IN);
	ts_faults(rules);
	unsigned long logins = ts_fault_calls("C_Login");
	assert_int_equal(sign(f, &ok), CS_OK);
	assert_true(ok);
	assert_int_equal(cs_token_recoveries(f->t), recoveries + 1);
	assert_int_equal(cs_token_reinitializations(f->t), reinits);
	assert_true(ts_fault_calls("C_Login") > logins);
	ts_faults("");

	/* a token without CKF_LOGIN_REQUIRED (public sessions, no login made) */
	cs_token *t = NULL;
	fixture f2 = {0};
	snprintf(rules, sizeof(rules), "no-login %s\n", tok.pin);
	ts_faults(rules);
	assert_int_equal(ts_fault_open(NULL, NULL, 2, NULL, &t), CS_OK);
	f2.t = t;
	f2.key = f->key;
	snprintf(rules, sizeof(rules), "no-login %s\nC_Sign %#lx\n", tok.pin, (unsigned long)CKR_USER_NOT_LOGGED_IN);
	ts_faults(rules);
	assert_int_equal(sign(&f2, &ok), CS_E_NOT_LOGGED_IN);
	assert_int_equal(cs_token_recoveries(t), 0);
	assert_int_equal(cs_token_reinitializations(t), 0);
	cs_token_close(t);
	ts_faults("");
}

/* The same answer to C_Login (no other pool logged in): reported, not a
 * recovery loop. */
static void test_user_not_logged_in_at_login(void **state)
{
	(void)state;
	cs_token *t = NULL;
	char rules[64];
	snprintf(rules, sizeof(rules), "C_Login %#lx\n", (unsigned long)CKR_USER_NOT_LOGGED_IN);
	ts_faults(rules);
	unsigned long inits = ts_fault_calls("C_Initialize");
	assert_int_equal(ts_fault_open(NULL, tok.pin, 2, NULL, &t), CS_E_NOT_LOGGED_IN);
	assert_null(t);
	assert_int_equal(ts_fault_calls("C_Initialize"), inits + 1); /* never re-initialised */
	ts_faults("");
}

/* A configured PIN on a token that needs no login is not used, and the
 * log says so. */
static void test_skipped_login_is_logged(void **state)
{
	(void)state;
	cs_token *t = NULL;
	char rules[700];
	snprintf(rules, sizeof(rules), "no-login %s\n", tok.pin);
	ts_faults(rules);
	unsigned long logins = ts_fault_calls("C_Login");
	ts_log_capture(log_path);
	assert_int_equal(ts_fault_open(NULL, tok.pin, 2, NULL, &t), CS_OK);
	sign_on(t, NULL);
	cs_token_close(t);
	assert_true(ts_log_release("does not require a login (no CKF_LOGIN_REQUIRED): not logging in, the PIN in"));
	assert_int_equal(ts_fault_calls("C_Login"), logins);
	ts_faults("");
}

/* The public half is paired by CKA_ID (halves labelled apart by a vendor
 * tool), and, on a token that keeps only the private object, read from the
 * private key's CKA_EC_POINT or CKA_PUBLIC_KEY_INFO; with none,
 * "private key found, no matching public key". */
static void test_public_key_pairing(void **state)
{
	fixture *f = *state;
	char label[48], rules[96];
	cs_key_ref key, found;
	int ok = 0;
	snprintf(label, sizeof(label), "fault-dl-%ld", (long)getpid());
	snprintf(rules, sizeof(rules), "public-label %s-pub\n", label);
	ts_faults(rules);
	assert_int_equal(cs_token_generate_p256(f->t, label, &key), CS_OK);
	ts_faults("");
	cs_key_ref by_label = {0}, by_id = {.id_len = key.id_len};
	snprintf(by_label.label, sizeof(by_label.label), "%s", label);
	memcpy(by_id.id, key.id, key.id_len);
	assert_int_equal(cs_token_find_key(f->t, &by_label, &found), CS_OK);
	assert_string_equal(found.label, label);
	assert_int_equal(cs_token_find_key(f->t, &by_id, &found), CS_OK);
	assert_int_equal(sign_key(f->t, &found, &ok), CS_OK);
	assert_true(ok);

	/* only the private object */
	static const char *const modes[] = {"no-public-key\n", "no-public-key\npublic-on-private ec-point\n",
					    "no-public-key\npublic-on-private spki\n"};
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		cs_token *t = NULL;
		ts_faults(modes[i]);
		assert_int_equal(ts_fault_open(NULL, tok.pin, 2, NULL, &t), CS_OK);
		cs_key_ref q = {.label = KEY_LABEL};
		if (i == 0) {
			assert_int_equal(cs_token_find_key(t, &q, &found), CS_E_KEY_NO_PUBLIC);
			assert_string_equal(cs_strerror(CS_E_KEY_NO_PUBLIC), "private key found, no matching public key");
		} else {
			sign_on(t, f); /* the same public key as the public object's, and it signs */
		}
		cs_token_close(t);
	}
	ts_faults("");
}

/* Template refusals are not blamed on CKA_ID once 2 bytes were refused too:
 * "token refused the key template (C_GenerateKeyPair: CKR_...)". */
static void test_key_template_refused(void **state)
{
	fixture *f = *state;
	cs_key_ref key;
	char rules[64], label[48];
	static const CK_RV refusals[] = {CKR_TEMPLATE_INCONSISTENT, CKR_ATTRIBUTE_VALUE_INVALID};
	snprintf(label, sizeof(label), "fault-tmpl-%ld", (long)getpid());
	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		snprintf(rules, sizeof(rules), "C_GenerateKeyPair %#lx\n", (unsigned long)refusals[i]);
		ts_faults(rules);
		unsigned long attempts = ts_fault_calls("C_GenerateKeyPair");
		ts_log_capture(log_path);
		assert_int_equal(cs_token_generate_p256(f->t, label, &key), CS_E_KEY_TEMPLATE);
		assert_true(ts_log_release("token refused the key template (C_GenerateKeyPair: CKR_"));
		assert_true(ts_log_release("the CKA_ID length is not the cause"));
		assert_int_equal(ts_fault_calls("C_GenerateKeyPair"), attempts + 4); /* 16, 8, 4, 2 */
		/* the caller's 2-byte id: no advice of a shorter one */
		uint8_t id[2] = {0x01, 0x02};
		ts_log_capture(log_path);
		assert_int_equal(cs_token_generate_p256_id(f->t, label, id, sizeof(id), &key), CS_E_KEY_TEMPLATE);
		assert_true(ts_log_release("a 2-byte CKA_ID is not the cause"));
	}
	/* another refusal of the template: one attempt, named */
	snprintf(rules, sizeof(rules), "C_GenerateKeyPair %#lx\n", (unsigned long)CKR_ATTRIBUTE_TYPE_INVALID);
	ts_faults(rules);
	ts_log_capture(log_path);
	assert_int_equal(cs_token_generate_p256(f->t, label, &key), CS_E_KEY_TEMPLATE);
	assert_true(ts_log_release("token refused the key template (C_GenerateKeyPair: CKR_ATTRIBUTE_TYPE_INVALID)"));
	ts_faults("");
}

/* A rule naming C_Initialize is applied (it was silently ignored). */
static void test_fault_module_initialize_rule(void **state)
{
	(void)state;
	cs_token *t = NULL;
	char rules[64];
	snprintf(rules, sizeof(rules), "C_Initialize %#lx\n", (unsigned long)CKR_FUNCTION_FAILED);
	ts_faults(rules);
	unsigned long inits = ts_fault_calls("C_Initialize");
	assert_int_equal(ts_fault_open(NULL, tok.pin, 2, NULL, &t), CS_E_MODULE_INIT);
	assert_int_equal(ts_fault_calls("C_Initialize"), inits + 1);
	assert_null(t);
	ts_faults("");
	assert_int_equal(ts_fault_open(NULL, tok.pin, 2, NULL, &t), CS_OK);
	cs_token_close(t);
}

struct busy_worker {
	cs_token *t;
	atomic_int *stop;
};

/* Draws that fail (FUNCTION_FAILED): each discards its session, so the
 * next one opens a session, with the pool lock held, on a slow token. */
static void *busy_loop(void *p)
{
	struct busy_worker *w = p;
	uint8_t buf[16];
	while (!atomic_load(w->stop))
		if (cs_token_random(w->t, buf, sizeof(buf)) == CS_OK)
			break; /* not expected: the rule fails every draw */
	return NULL;
}

/* A child forked while another thread holds the pool's lock (opening a
 * session on a slow token) can use the token object: the lock is taken
 * around fork(), not inherited held. */
static void test_fork_while_the_pool_is_busy(void **state)
{
	(void)state;
	cs_token *t = NULL;
	char rules[96];
	assert_int_equal(ts_fault_open(NULL, tok.pin, 2, NULL, &t), CS_OK);
	snprintf(rules, sizeof(rules), "delay-ms 20\nC_GenerateRandom %#lx\n", (unsigned long)CKR_FUNCTION_FAILED);
	ts_faults(rules);
	atomic_int stop = 0;
	struct busy_worker w = {t, &stop};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, busy_loop, &w), 0);
	usleep(50000);
	int hung = 0;
	for (int i = 0; i < 8 && !hung; i++) {
		usleep(13000);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			(void)cs_token_recoveries(t); /* takes the pool's lock */
			_exit(0);
		}
		int status = 0;
		double start = now_s();
		while (waitpid(pid, &status, WNOHANG) == 0) {
			if (now_s() - start > 3) {
				hung = 1;
				kill(pid, SIGKILL);
				waitpid(pid, &status, 0);
				break;
			}
			usleep(5000);
		}
		if (!hung)
			assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	atomic_store(&stop, 1);
	pthread_join(th, NULL);
	ts_faults("");
	cs_token_close(t);
	assert_false(hung);
}

struct burst_worker {
	cs_token *t;
	const cs_key_ref *key;
	EVP_PKEY *pub;
	cs_err r;
	int ok;
};

static void *burst_one(void *p)
{
	struct burst_worker *w = p;
	fixture f2 = {.t = w->t, .key = *w->key, .pub = w->pub};
	uint8_t buf[32];
	w->r = cs_token_random(w->t, buf, sizeof(buf));
	if (w->r == CS_OK)
		w->r = sign(&f2, &w->ok);
	return NULL;
}

/* A burst after idle expiry (a USB HSM's secure channel): the first call
 * re-initialises the module, the others wait for it (within
 * CS_TOKEN_REINIT_WAIT_MS) rather than fail. The reviewer's case: a slow
 * token (20 ms a call), 2 sessions allowed, 8 configured. */
static void test_burst_after_idle_expiry(void **state)
{
	(void)state;
	enum { N = 6 };
	cs_token *t = NULL;
	fixture ref = {0}, *f = &ref;
	cs_key_ref q = {.label = KEY_LABEL};
	ts_faults("delay-ms 20\nsession-cap 2\nidle-timeout 300\n");
	assert_int_equal(ts_fault_open(NULL, tok.pin, 8, NULL, &t), CS_OK);
	assert_int_equal(cs_token_find_key(t, &q, &ref.key), CS_OK);
	assert_int_equal(cs_token_public_key(t, &ref.key, &ref.pub), CS_OK);
	for (int round = 0; round < 2; round++) {
		unsigned long reinits = cs_token_reinitializations(t);
		struct burst_worker w[N];
		pthread_t th[N];
		for (int i = 0; i < 2; i++) /* in use before the pause */
			sign_on(t, f);
		usleep(450000); /* the sessions expire */
		for (int i = 0; i < N; i++) {
			w[i] = (struct burst_worker){.t = t, .key = &f->key, .pub = f->pub};
			assert_int_equal(pthread_create(&th[i], NULL, burst_one, &w[i]), 0);
		}
		int good = 0;
		for (int i = 0; i < N; i++) {
			pthread_join(th[i], NULL);
			if (w[i].r != CS_OK || !w[i].ok)
				fprintf(stderr, "burst %d: %s\n", i, cs_strerror(w[i].r));
			good += w[i].r == CS_OK && w[i].ok;
		}
		print_message("      round %d: %d of %d calls after idle expiry served, %lu re-initialisation(s)\n",
			      round, good, N, cs_token_reinitializations(t) - reinits);
		assert_int_equal(good, N);
		assert_true(cs_token_reinitializations(t) > reinits);
	}
	EVP_PKEY_free(ref.pub);
	cs_token_close(t);
	ts_faults("");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_transient_device_error_is_retried, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_unavailable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_errors_are_not_retried, setup, teardown),
		cmocka_unit_test_setup_teardown(test_general_error_is_recoverable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lost_storage_is_recovered_by_reinitialization, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_rejected_pin_not_retried_after_reinitialization,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_recovery_with_concurrent_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_key_handle_is_found_again, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_without_rng, setup, teardown),
		cmocka_unit_test(test_token_opened_without_rng),
		cmocka_unit_test_setup_teardown(test_draw_is_one_call_per_256_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_with_a_smaller_random_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_signature_is_detectable, setup, teardown),
		cmocka_unit_test(test_token_with_fewer_sessions_than_configured),
		cmocka_unit_test(test_login_failure_at_open),
		cmocka_unit_test(test_module_needs_init_args),
		cmocka_unit_test_setup_teardown(test_token_with_short_ids, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_without_mechanisms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_encodings_and_missing_copy, setup, teardown),
		cmocka_unit_test(test_token_without_login),
		cmocka_unit_test(test_sessions_die_when_idle),
		cmocka_unit_test_setup_teardown(test_always_authenticate_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_not_logged_in, setup, teardown),
		cmocka_unit_test(test_skipped_login_is_logged),
		cmocka_unit_test_setup_teardown(test_public_key_pairing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_template_refused, setup, teardown),
		cmocka_unit_test(test_fault_module_initialize_rule),
		cmocka_unit_test(test_fork_while_the_pool_is_busy),
		cmocka_unit_test(test_user_not_logged_in_at_login),
		cmocka_unit_test(test_burst_after_idle_expiry),
	};
	return cmocka_run_group_tests(tests, group_setup, NULL);
}
