/*
 * test_token_remote: a token served by a key process (cs_token_open_remote,
 * keyproc.h). Each test forks a key process that opens the SoftHSM2 token
 * of the token_remote_fixture test and serves it (cs_keyproc_prepare and
 * cs_keyproc_serve) over socketpair channels; the parent uses it through
 * token.h and compares with the same token opened in-process.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/sha.h>

#include "cs_log.h"
#include "certsign.h"
#include "keyproc.h"
#include "provider.h"
#include "test_support.h"
#include "token.h"
#include "token_ipc.h"
#include "token_meter.h"

#define CERT_LABEL "remote-cert"
#define TLS_LABEL "remote-tls"
#define PROF_LABEL "remote-prof"
#define EXTRA_LABEL "remote-extra"   /* configured for nothing: bound by BIND */
#define EXTRA2_LABEL "remote-extra2" /* configured for nothing */
#define NCHAN 4

static const char *module_path;
static const char *fault_module; /* CREDSIGN_TEST_FAULT_MODULE, or NULL */
static char pin_path[600];
static const char *token_uri = "pkcs11:token=cstest";

typedef struct {
	pid_t pid;
	cs_token *remote;
} fixture;

static cs_token_params params(void)
{
	cs_token_params p = {
		.module = module_path,
		.token_uri = token_uri,
		.pin_file = pin_path,
		.pool_size = NCHAN,
		.read_write = 1,
	};
	return p;
}

static cs_token *open_local(void)
{
	cs_token *t = NULL;
	cs_token_params p = params();
	assert_int_equal(cs_token_open(&p, &t), CS_OK);
	return t;
}

static cs_key_purpose purpose(cs_key_purpose_kind kind, const char *profile)
{
	cs_key_purpose p;
	memset(&p, 0, sizeof(p));
	p.kind = kind;
	if (profile != NULL)
		snprintf(p.profile, sizeof(p.profile), "%s", profile);
	return p;
}

static int group_setup(void **state)
{
	(void)state;
	const char *dir;
	if (ts_token_fixture(&module_path, &dir, pin_path, sizeof(pin_path)) != 0)
		return -1;
	fault_module = getenv("CREDSIGN_TEST_FAULT_MODULE");
	cs_token *t = NULL;
	cs_token_params p = params();
	if (cs_token_open(&p, &t) != CS_OK)
		return -1;
	const char *labels[] = {CERT_LABEL, TLS_LABEL, PROF_LABEL, EXTRA_LABEL, EXTRA2_LABEL};
	cs_err r = CS_OK;
	for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]) && r == CS_OK; i++) {
		cs_key_ref q, found;
		memset(&q, 0, sizeof(q));
		snprintf(q.label, sizeof(q.label), "%s", labels[i]);
		r = cs_token_find_key(t, &q, &found);
		if (r == CS_E_KEY_NOT_FOUND)
			r = cs_token_generate_p256(t, labels[i], &found);
	}
	cs_token_close(t);
	return r == CS_OK ? 0 : -1;
}

/* How start_key_process's key process starts. */
#define KP_SERVE 0         /* serves the fixture token */
#define KP_FAIL_AT_START 1 /* closes its channels and exits 3 */
#define KP_FAULT 2         /* serves it through the fault module */

/* The key process: the fixture token, the three configured keys, the
 * channels; exits 0 when they are all closed. Its failing PKCS#11 calls
 * are metered, as credsignd's key process's are (token_meter.h). */
static void key_process(const int *fds, size_t n, int mode)
{
	if (mode == KP_FAIL_AT_START) {
		for (size_t i = 0; i < n; i++)
			close(fds[i]);
		_exit(3);
	}
	cs_token *t = NULL;
	cs_keyproc *kp = NULL;
	cs_token_params p = params();
	if (mode == KP_FAULT)
		p.module = fault_module;
	cs_token_meter_track_failures();
	const cs_keyproc_key keys[] = {
		{purpose(CS_KEY_PURPOSE_CERTIFICATE, NULL), "pkcs11:object=" CERT_LABEL, "pkcs11.signing_key"},
		{purpose(CS_KEY_PURPOSE_TLS, NULL), "pkcs11:object=" TLS_LABEL, "tls.key"},
		{purpose(CS_KEY_PURPOSE_PROFILE, "web"), "pkcs11:object=" PROF_LABEL, "signing.profiles.web.key"},
	};
	int rc = 1;
	if (cs_token_open(&p, &t) == CS_OK && cs_keyproc_prepare(t, keys, 3, &kp) == CS_OK &&
	    cs_keyproc_serve(kp, fds, n) == CS_OK)
		rc = 0;
	cs_keyproc_free(kp);
	cs_token_close(t);
	exit(rc);
}

/* Fork a key process on n fresh channels; *client gets their client ends. */
static pid_t start_key_process(int *client, size_t n, int mode)
{
	int server[NCHAN];
	assert_true(n <= NCHAN);
	for (size_t i = 0; i < n; i++) {
		int sv[2];
		assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
		client[i] = sv[0];
		server[i] = sv[1];
	}
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		for (size_t i = 0; i < n; i++)
			close(client[i]);
		key_process(server, n, mode);
	}
	for (size_t i = 0; i < n; i++)
		close(server[i]);
	return pid;
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	int fds[NCHAN];
	assert_non_null(f);
	f->pid = start_key_process(fds, NCHAN, 0);
	assert_int_equal(cs_token_open_remote(fds, NCHAN, &f->remote), CS_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	int status = 0;
	cs_token_close(f->remote); /* closes the channels: the key process ends */
	if (f->pid > 0) {
		assert_int_equal(waitpid(f->pid, &status, 0), f->pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0); /* cs_keyproc_serve returned CS_OK */
	}
	free(f);
	return 0;
}

/* Wait for the key process of f, killed (SIGKILL) by the test. */
static void kill_key_process(fixture *f)
{
	int status = 0;
	assert_int_equal(kill(f->pid, SIGKILL), 0);
	assert_int_equal(waitpid(f->pid, &status, 0), f->pid);
	assert_true(WIFSIGNALED(status));
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static cs_key_ref ref_of(cs_token *t, const char *label, cs_key_purpose p)
{
	cs_key_ref q, found;
	memset(&q, 0, sizeof(q));
	snprintf(q.label, sizeof(q.label), "%s", label);
	q.purpose = p;
	assert_int_equal(cs_token_find_key(t, &q, &found), CS_OK);
	return found;
}

static cs_err sign_check(cs_token *remote, const cs_key_ref *key, EVP_PKEY *pub, const char *msg)
{
	uint8_t digest[32];
	cs_es256_sig sig;
	SHA256((const unsigned char *)msg, strlen(msg), digest);
	cs_err r = cs_token_sign_es256(remote, key, digest, &sig);
	if (r == CS_OK && !ts_verify_der(pub, digest, sig.der, sig.der_len))
		return CS_E_SIGNATURE_INVALID;
	if (r != CS_OK) {
		static const uint8_t zero[sizeof(sig)];
		assert_memory_equal(&sig, zero, sizeof(sig)); /* never a partial result */
	}
	return r;
}

static EVP_PKEY *local_public(const char *label)
{
	cs_token *t = open_local();
	cs_key_ref k = ref_of(t, label, purpose(CS_KEY_PURPOSE_NONE, NULL));
	EVP_PKEY *pub = NULL;
	assert_int_equal(cs_token_public_key(t, &k, &pub), CS_OK);
	cs_token_close(t);
	return pub;
}

/* ---- tests ------------------------------------------------------------------- */

static void test_info_equals_in_process(void **state)
{
	fixture *f = *state;
	cs_token_info remote, local;
	assert_true(cs_token_is_remote(f->remote));
	assert_int_equal(cs_token_get_info(f->remote, &remote), CS_OK);
	cs_token *t = open_local();
	assert_false(cs_token_is_remote(t));
	assert_int_equal(cs_token_get_info(t, &local), CS_OK);
	assert_int_equal(cs_token_random_max(f->remote), cs_token_random_max(t));
	cs_token_close(t);
	assert_string_equal(remote.label, "cstest");
	assert_string_equal(remote.label, local.label);
	assert_string_equal(remote.manufacturer, local.manufacturer);
	assert_string_equal(remote.model, local.model);
	assert_string_equal(remote.serial, local.serial);
	assert_string_equal(remote.module_manufacturer, local.module_manufacturer);
	assert_string_equal(remote.module_description, local.module_description);
	assert_int_equal(remote.flags, local.flags);
	assert_int_equal(remote.slot_id, local.slot_id);
	assert_int_equal(remote.hw_major, local.hw_major);
	assert_int_equal(remote.fw_minor, local.fw_minor);
	assert_int_equal(remote.module_major, local.module_major);
	assert_int_equal(remote.cryptoki_major, local.cryptoki_major);
	assert_int_equal(remote.cryptoki_minor, local.cryptoki_minor);
	assert_int_equal(cs_token_recoveries(f->remote), 0);
	assert_int_equal(cs_token_reinitializations(f->remote), 0);

	cs_token_mechanism m[CS_TOKEN_MECHANISMS];
	char why[128];
	assert_int_equal(cs_token_mechanisms(f->remote, m), CS_OK);
	assert_string_equal(m[0].name, "CKM_ECDSA");
	assert_true(m[0].listed);
	assert_int_equal(m[0].needs, CS_TOKEN_NEEDS_SIGN);
	assert_string_equal(m[0].problem, "");
	assert_int_equal(cs_token_check_mechanisms(f->remote, CS_TOKEN_NEEDS_SIGN | CS_TOKEN_NEEDS_GENERATE, why,
						   sizeof(why)),
			 CS_OK);
}

static void test_random(void **state)
{
	fixture *f = *state;
	uint8_t a[32], b[32], zero[32] = {0};
	assert_int_equal(cs_token_random(f->remote, a, sizeof(a)), CS_OK);
	assert_int_equal(cs_token_random(f->remote, b, sizeof(b)), CS_OK);
	assert_memory_not_equal(a, b, sizeof(a));
	assert_memory_not_equal(a, zero, sizeof(a));
	/* more than one frame carries: several requests */
	uint8_t *big = calloc(1, 5000);
	assert_non_null(big);
	assert_int_equal(cs_token_random(f->remote, big, 5000), CS_OK);
	size_t zeros = 0;
	for (size_t i = 4096; i < 5000; i++)
		zeros += big[i] == 0;
	assert_true(zeros < 50); /* the tail was filled */
	free(big);
	assert_int_equal(cs_token_random(f->remote, a, 0), CS_OK);
}

static void test_find_and_public_key(void **state)
{
	fixture *f = *state;
	cs_token *t = open_local();
	cs_key_ref local = ref_of(t, CERT_LABEL, purpose(CS_KEY_PURPOSE_NONE, NULL));
	cs_key_ref remote = ref_of(f->remote, CERT_LABEL, purpose(CS_KEY_PURPOSE_CERTIFICATE, NULL));
	assert_string_equal(remote.label, local.label);
	assert_int_equal(remote.id_len, local.id_len);
	assert_memory_equal(remote.id, local.id, local.id_len);
	assert_int_equal(remote.purpose.kind, CS_KEY_PURPOSE_CERTIFICATE); /* the query's */
	EVP_PKEY *lpub = NULL, *rpub = NULL;
	assert_int_equal(cs_token_public_key(t, &local, &lpub), CS_OK);
	assert_int_equal(cs_token_public_key(f->remote, &remote, &rpub), CS_OK);
	assert_int_equal(EVP_PKEY_eq(lpub, rpub), 1);
	EVP_PKEY_free(lpub);
	EVP_PKEY_free(rpub);
	/* the in-process find copies the purpose too */
	cs_key_ref q = {.label = CERT_LABEL, .purpose = purpose(CS_KEY_PURPOSE_PROFILE, "web")}, found;
	assert_int_equal(cs_token_find_key(t, &q, &found), CS_OK);
	assert_int_equal(found.purpose.kind, CS_KEY_PURPOSE_PROFILE);
	assert_string_equal(found.purpose.profile, "web");
	cs_token_close(t);

	cs_key_ref missing = {.label = "no-such-key"};
	assert_int_equal(cs_token_find_key(f->remote, &missing, &found), CS_E_KEY_NOT_FOUND);
	/* the daemon never generates or destroys through the key process */
	assert_int_equal(cs_token_generate_p256(f->remote, "remote-new", &found), CS_E_KEY_FORBIDDEN);
	assert_int_equal(cs_token_destroy_key(f->remote, &remote), CS_E_KEY_FORBIDDEN);
}

static void test_sign_with_purpose(void **state)
{
	fixture *f = *state;
	EVP_PKEY *cert = local_public(CERT_LABEL), *tls = local_public(TLS_LABEL), *prof = local_public(PROF_LABEL);
	cs_key_ref k = ref_of(f->remote, CERT_LABEL, purpose(CS_KEY_PURPOSE_CERTIFICATE, NULL));
	assert_int_equal(sign_check(f->remote, &k, cert, "a certificate"), CS_OK);
	k = ref_of(f->remote, TLS_LABEL, purpose(CS_KEY_PURPOSE_TLS, NULL));
	assert_int_equal(sign_check(f->remote, &k, tls, "a handshake"), CS_OK);
	k = ref_of(f->remote, PROF_LABEL, purpose(CS_KEY_PURPOSE_PROFILE, "web"));
	assert_int_equal(sign_check(f->remote, &k, prof, "a document"), CS_OK);
	/* a configured key is bound already: BIND says so */
	assert_int_equal(cs_token_bind_key(f->remote, &k), CS_OK);
	EVP_PKEY_free(cert);
	EVP_PKEY_free(tls);
	EVP_PKEY_free(prof);
}

static void test_sign_wrong_purpose(void **state)
{
	fixture *f = *state;
	EVP_PKEY *cert = local_public(CERT_LABEL), *extra = local_public(EXTRA_LABEL);
	cs_key_ref k = ref_of(f->remote, CERT_LABEL, purpose(CS_KEY_PURPOSE_TLS, NULL));
	assert_int_equal(sign_check(f->remote, &k, cert, "x"), CS_E_KEY_PURPOSE);
	k.purpose = purpose(CS_KEY_PURPOSE_PROFILE, "web");
	assert_int_equal(sign_check(f->remote, &k, cert, "x"), CS_E_KEY_PURPOSE);
	k.purpose = purpose(CS_KEY_PURPOSE_NONE, NULL);
	assert_int_equal(sign_check(f->remote, &k, cert, "x"), CS_E_KEY_PURPOSE);
	/* the right purpose with an unresolved reference (no id): not the bound key */
	cs_key_ref by_label = {.label = CERT_LABEL, .purpose = purpose(CS_KEY_PURPOSE_CERTIFICATE, NULL)};
	assert_int_equal(sign_check(f->remote, &by_label, cert, "x"), CS_E_KEY_PURPOSE);
	/* a key configured for nothing signs for nothing */
	k = ref_of(f->remote, EXTRA_LABEL, purpose(CS_KEY_PURPOSE_CERTIFICATE, NULL));
	assert_int_equal(sign_check(f->remote, &k, extra, "x"), CS_E_KEY_PURPOSE);
	/* refusals leave the channels usable */
	k = ref_of(f->remote, CERT_LABEL, purpose(CS_KEY_PURPOSE_CERTIFICATE, NULL));
	assert_int_equal(sign_check(f->remote, &k, cert, "y"), CS_OK);
	EVP_PKEY_free(cert);
	EVP_PKEY_free(extra);
}

static void test_bind_rules(void **state)
{
	fixture *f = *state;
	EVP_PKEY *extra = local_public(EXTRA_LABEL);
	/* a successor key: bound for a purpose, then it signs for it only */
	cs_key_ref k = ref_of(f->remote, EXTRA_LABEL, purpose(CS_KEY_PURPOSE_PROFILE, "other"));
	assert_int_equal(cs_token_bind_key(f->remote, &k), CS_OK);
	assert_int_equal(sign_check(f->remote, &k, extra, "bound"), CS_OK);
	cs_key_ref again = k;
	again.purpose = purpose(CS_KEY_PURPOSE_CERTIFICATE, NULL);
	assert_int_equal(cs_token_bind_key(f->remote, &again), CS_E_KEY_PURPOSE);
	assert_int_equal(sign_check(f->remote, &again, extra, "bound"), CS_E_KEY_PURPOSE);
	/* a configured key is not rebound to another purpose */
	cs_key_ref cert = ref_of(f->remote, CERT_LABEL, purpose(CS_KEY_PURPOSE_PROFILE, "other"));
	assert_int_equal(cs_token_bind_key(f->remote, &cert), CS_E_KEY_PURPOSE);
	/* TLS: only the configured key */
	cs_key_ref tls = ref_of(f->remote, EXTRA2_LABEL, purpose(CS_KEY_PURPOSE_TLS, NULL));
	assert_int_equal(cs_token_bind_key(f->remote, &tls), CS_E_KEY_PURPOSE);
	tls = ref_of(f->remote, TLS_LABEL, purpose(CS_KEY_PURPOSE_TLS, NULL));
	assert_int_equal(cs_token_bind_key(f->remote, &tls), CS_OK);
	/* NONE is no purpose */
	cs_key_ref none = ref_of(f->remote, EXTRA2_LABEL, purpose(CS_KEY_PURPOSE_NONE, NULL));
	assert_int_equal(cs_token_bind_key(f->remote, &none), CS_E_KEY_PURPOSE);
	/* in-process: no effect */
	cs_token *t = open_local();
	assert_int_equal(cs_token_bind_key(t, &none), CS_OK);
	cs_token_close(t);
	EVP_PKEY_free(extra);
}

typedef struct {
	cs_token *remote;
	cs_key_ref key;
	EVP_PKEY *pub;
	int failures;
} worker;

static void *sign_worker(void *arg)
{
	worker *w = arg;
	for (int i = 0; i < 25; i++) {
		char msg[64];
		uint8_t digest[32];
		cs_es256_sig sig;
		snprintf(msg, sizeof(msg), "message %d of %p", i, (void *)w);
		SHA256((const unsigned char *)msg, strlen(msg), digest);
		if (cs_token_sign_es256(w->remote, &w->key, digest, &sig) != CS_OK)
			w->failures++;
		else if (!ts_verify_der(w->pub, digest, sig.der, sig.der_len))
			w->failures++;
	}
	return NULL;
}

static void test_concurrent_signing(void **state)
{
	fixture *f = *state;
	EVP_PKEY *pub = local_public(CERT_LABEL);
	cs_key_ref k = ref_of(f->remote, CERT_LABEL, purpose(CS_KEY_PURPOSE_CERTIFICATE, NULL));
	worker w[8];
	pthread_t th[8];
	for (int i = 0; i < 8; i++) {
		w[i] = (worker){f->remote, k, pub, 0};
		assert_int_equal(pthread_create(&th[i], NULL, sign_worker, &w[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(w[i].failures, 0);
	}
	EVP_PKEY_free(pub);
}

static void test_killed_key_process(void **state)
{
	fixture *f = *state;
	cs_key_ref k = ref_of(f->remote, CERT_LABEL, purpose(CS_KEY_PURPOSE_CERTIFICATE, NULL));
	uint8_t digest[32] = {1}, buf[16];
	cs_es256_sig sig;
	kill_key_process(f);
	double start = now_s();
	/* each channel finds out once, then every call fails at once */
	for (int i = 0; i < NCHAN + 2; i++)
		assert_int_equal(cs_token_sign_es256(f->remote, &k, digest, &sig), CS_E_TOKEN_UNAVAILABLE);
	assert_int_equal(cs_token_random(f->remote, buf, sizeof(buf)), CS_E_TOKEN_UNAVAILABLE);
	static const uint8_t zero[16];
	assert_memory_equal(buf, zero, sizeof(buf));
	cs_token_info info;
	assert_int_equal(cs_token_get_info(f->remote, &info), CS_E_TOKEN_UNAVAILABLE);
	assert_true(now_s() - start < 1.0);
	f->pid = -1; /* waited for */
}

static void test_replace_rebinds(void **state)
{
	fixture *f = *state;
	EVP_PKEY *extra = local_public(EXTRA_LABEL), *cert = local_public(CERT_LABEL);
	cs_key_ref k = ref_of(f->remote, EXTRA_LABEL, purpose(CS_KEY_PURPOSE_PROFILE, "other"));
	cs_key_ref c = ref_of(f->remote, CERT_LABEL, purpose(CS_KEY_PURPOSE_CERTIFICATE, NULL));
	assert_int_equal(cs_token_bind_key(f->remote, &k), CS_OK);
	kill_key_process(f);
	assert_int_equal(sign_check(f->remote, &c, cert, "dead"), CS_E_TOKEN_UNAVAILABLE);

	int fds[2];
	f->pid = start_key_process(fds, 2, 0);
	assert_int_equal(cs_token_remote_replace(f->remote, fds, 2), CS_OK);
	assert_int_equal(sign_check(f->remote, &c, cert, "back"), CS_OK);
	/* the new key process knows EXTRA_LABEL only from the BIND replayed */
	assert_int_equal(sign_check(f->remote, &k, extra, "back"), CS_OK);
	cs_key_ref wrong = k;
	wrong.purpose = purpose(CS_KEY_PURPOSE_CERTIFICATE, NULL);
	assert_int_equal(sign_check(f->remote, &wrong, extra, "back"), CS_E_KEY_PURPOSE);

	/* a replacement that fails (its key process died at start): refused,
	 * the token stays as it was */
	int bad[1];
	pid_t dead = start_key_process(bad, 1, 1);
	assert_int_equal(cs_token_remote_replace(f->remote, bad, 1), CS_E_TOKEN_UNAVAILABLE);
	assert_int_equal(waitpid(dead, NULL, 0), dead);
	assert_int_equal(sign_check(f->remote, &c, cert, "still"), CS_OK);
	/* an in-process token has nothing to replace */
	cs_token *t = open_local();
	int none[1] = {-1};
	assert_int_equal(cs_token_remote_replace(t, none, 1), CS_E_INVALID_ARG);
	cs_token_close(t);
	EVP_PKEY_free(extra);
	EVP_PKEY_free(cert);
}

static void test_open_fails_when_key_process_fails(void **state)
{
	(void)state;
	int fds[NCHAN];
	cs_token *t = NULL;
	pid_t pid = start_key_process(fds, NCHAN, 1);
	double start = now_s();
	assert_int_equal(cs_token_open_remote(fds, NCHAN, &t), CS_E_TOKEN_UNAVAILABLE);
	assert_null(t);
	assert_true(now_s() - start < 1.0);
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(WEXITSTATUS(status), 3);
	assert_int_equal(cs_token_open_remote(fds, 0, &t), CS_E_INVALID_ARG);
}

/* Keys loaded through the provider carry their purpose to the key process:
 * bound at load (refused: the load fails with the reason), then signing
 * for it through EVP. */
static void test_provider_purpose(void **state)
{
	fixture *f = *state;
	OSSL_LIB_CTX *libctx = OSSL_LIB_CTX_new();
	OSSL_PROVIDER *prov = NULL, *deflt = NULL;
	assert_non_null(libctx);
	assert_int_equal(cs_provider_load(libctx, f->remote, &prov), CS_OK);
	assert_non_null(deflt = OSSL_PROVIDER_load(libctx, "default"));
	const char *cert_uri = "pkcs11:token=cstest;object=" CERT_LABEL;
	const cs_key_purpose cert = purpose(CS_KEY_PURPOSE_CERTIFICATE, NULL);
	const cs_key_purpose tls = purpose(CS_KEY_PURPOSE_TLS, NULL);
	const cs_key_purpose other = purpose(CS_KEY_PURPOSE_PROFILE, "other");

	ERR_clear_error();
	assert_null(cs_provider_load_key_for(libctx, cert_uri, &tls));
	assert_int_equal(ERR_GET_REASON(ERR_peek_last_error()), CS_E_KEY_PURPOSE + 1);
	ERR_clear_error();
	/* with the right purpose it loads and signs through the key process */
	EVP_PKEY *key = cs_provider_load_key_for(libctx, cert_uri, &cert);
	assert_non_null(key);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t sig[80];
	size_t sig_len = sizeof(sig);
	assert_int_equal(EVP_DigestSignInit_ex(md, NULL, "SHA256", libctx, CS_PROVIDER_SIGN_PROPQ, key, NULL), 1);
	assert_int_equal(EVP_DigestSign(md, sig, &sig_len, (const uint8_t *)"abc", 3), 1);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key);
	/* NONE (cs_provider_load_key): loads, and the key process refuses to
	 * sign with a key that names no purpose */
	key = cs_provider_load_key(libctx, cert_uri);
	assert_non_null(key);
	md = EVP_MD_CTX_new();
	sig_len = sizeof(sig);
	assert_int_equal(EVP_DigestSignInit_ex(md, NULL, "SHA256", libctx, CS_PROVIDER_SIGN_PROPQ, key, NULL), 1);
	assert_int_not_equal(EVP_DigestSign(md, sig, &sig_len, (const uint8_t *)"abc", 3), 1);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key);
	ERR_clear_error();
	/* a profile's successor key, bound at load, through the signer */
	cs_signer *signer = NULL;
	assert_int_equal(cs_signer_open_for(libctx, "pkcs11:token=cstest;object=" EXTRA_LABEL, &other, &signer),
			 CS_OK);
	char *jws = NULL;
	json_t *claims = json_pack("{s:s}", "check", "remote");
	assert_int_equal(cs_signer_jws(signer, "credsign-check+jwt", claims, &jws), CS_OK);
	json_decref(claims);
	free(jws);
	cs_signer_free(signer);
	assert_int_equal(cs_signer_open_for(libctx, "pkcs11:token=cstest;object=" EXTRA_LABEL, &cert, &signer),
			 CS_E_KEY_PURPOSE);
	ERR_clear_error();
	OSSL_PROVIDER_unload(prov);
	OSSL_PROVIDER_unload(deflt);
	OSSL_LIB_CTX_free(libctx);
}

/* keyproc.h at prepare: one key, two purposes: refused. */
static void test_prepare_refuses_two_purposes(void **state)
{
	(void)state;
	cs_token *t = open_local();
	cs_keyproc *kp = NULL;
	const cs_keyproc_key twice[] = {
		{purpose(CS_KEY_PURPOSE_CERTIFICATE, NULL), "pkcs11:object=" CERT_LABEL, "pkcs11.signing_key"},
		{purpose(CS_KEY_PURPOSE_PROFILE, "web"), "pkcs11:object=" CERT_LABEL, "signing.profiles.web.key"},
	};
	assert_int_equal(cs_keyproc_prepare(t, twice, 2, &kp), CS_E_KEY_PURPOSE);
	assert_null(kp);
	const cs_keyproc_key missing[] = {
		{purpose(CS_KEY_PURPOSE_TLS, NULL), "pkcs11:object=no-such-key", "tls.key"},
	};
	assert_int_equal(cs_keyproc_prepare(t, missing, 1, &kp), CS_E_KEY_NOT_FOUND);
	/* the same key named twice for one purpose is one binding */
	const cs_keyproc_key same[] = {twice[0], twice[0]};
	assert_int_equal(cs_keyproc_prepare(t, same, 2, &kp), CS_OK);
	cs_keyproc_free(kp);
	cs_token_close(t);
}

/* A PKCS#11 call that fails in the key process is named in the network
 * process: its CK_RV travels with the error reply, and cs_token_meter_cause
 * on the calling thread says "C_Sign: CKR_USER_NOT_LOGGED_IN" as it does
 * in-process (the fault module makes C_Sign fail, as for a key that needs
 * a login before each use). */
static void test_failing_call_named(void **state)
{
	(void)state;
	char control[700], cause[160];
	const char *dir = getenv("CREDSIGN_TEST_TOKEN_DIR");
	if (fault_module == NULL) {
		fprintf(stderr, "CREDSIGN_TEST_FAULT_MODULE not set: skipped\n");
		skip();
	}
	snprintf(control, sizeof(control), "%s/remote-fault.control", dir);
	FILE *fp = fopen(control, "w");
	assert_non_null(fp);
	assert_true(fputs("C_Sign 0x101\n", fp) >= 0);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(setenv("CREDSIGN_FAULT_REAL_MODULE", module_path, 1), 0);
	assert_int_equal(setenv("CREDSIGN_FAULT_CONTROL", control, 1), 0);

	int fds[NCHAN];
	cs_token *remote = NULL;
	pid_t pid = start_key_process(fds, NCHAN, KP_FAULT);
	assert_int_equal(cs_token_open_remote(fds, NCHAN, &remote), CS_OK);
	EVP_PKEY *cert = local_public(CERT_LABEL);
	cs_key_ref k = ref_of(remote, CERT_LABEL, purpose(CS_KEY_PURPOSE_CERTIFICATE, NULL));

	/* the failing call and its value, as the in-process token gives them */
	const char *fn = NULL;
	CK_RV rv = CKR_OK;
	cs_token_meter_clear();
	cs_err r = sign_check(remote, &k, cert, "a certificate");
	assert_int_equal(r, CS_E_NOT_LOGGED_IN);
	assert_string_equal(cs_token_meter_cause(r, cause, sizeof(cause)), "C_Sign: CKR_USER_NOT_LOGGED_IN");
	assert_int_equal(cs_token_meter_last_failure(&fn, &rv), 1);
	assert_ptr_equal(fn, cs_token_meter_function_name("C_Sign")); /* the meter's static name */
	assert_true(rv == CKR_USER_NOT_LOGGED_IN);

	/* a refusal without a PKCS#11 call carries no cause: not the key
	 * process's previous failure on that channel */
	cs_token_meter_clear();
	k.purpose = purpose(CS_KEY_PURPOSE_TLS, NULL);
	assert_int_equal(sign_check(remote, &k, cert, "x"), CS_E_KEY_PURPOSE);
	assert_int_equal(cs_token_meter_last_failure(&fn, &rv), 0);
	/* nor does a call that succeeds */
	cs_token_info info;
	assert_int_equal(cs_token_get_info(remote, &info), CS_OK);
	assert_int_equal(cs_token_meter_last_failure(&fn, &rv), 0);

	/* the cause is the calling thread's: another thread's record is untouched */
	cs_token_meter_clear();
	k.purpose = purpose(CS_KEY_PURPOSE_CERTIFICATE, NULL);
	assert_int_equal(sign_check(remote, &k, cert, "again"), CS_E_NOT_LOGGED_IN);
	assert_string_equal(cs_token_meter_cause(CS_E_NOT_LOGGED_IN, cause, sizeof(cause)),
			    "C_Sign: CKR_USER_NOT_LOGGED_IN");

	/* the fault gone (no control file: no rules), the key signs */
	assert_int_equal(unlink(control), 0);
	cs_token_meter_clear();
	assert_int_equal(sign_check(remote, &k, cert, "signed"), CS_OK);
	assert_int_equal(cs_token_meter_last_failure(&fn, &rv), 0);

	EVP_PKEY_free(cert);
	cs_token_close(remote);
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- a key process that misbehaves ----------------------------------------------- */

/* How the hostile peer answers: HELLO, then (if it got that far) the
 * first request after it. */
enum {
	PEER_HELLO_GARBAGE,   /* HELLO answered by bytes that are no frame */
	PEER_HELLO_REFUSED,   /* HELLO answered by an error reply */
	PEER_OVERSIZED,       /* a reply longer than CS_IPC_FRAME_MAX */
	PEER_SHORT_DRAW,      /* RANDOM answered with fewer bytes than asked */
	PEER_CLOSES,          /* the channel closed instead of a reply */
};

struct peer {
	int fd;
	int mode;
	int requests; /* frames it received */
};

static void peer_reply(int fd, const cs_ipc_reply *reply)
{
	uint8_t frame[CS_IPC_FRAME_MAX];
	size_t len = 0;
	assert_int_equal(cs_ipc_encode_reply(reply, frame, sizeof(frame), &len), CS_OK);
	assert_int_equal(send(fd, frame, len, MSG_NOSIGNAL), (ssize_t)len);
}

static void *hostile_peer(void *arg)
{
	struct peer *p = arg;
	uint8_t frame[CS_IPC_FRAME_MAX + 64];
	cs_ipc_reply reply;
	memset(&reply, 0, sizeof(reply));
	if (recv(p->fd, frame, sizeof(frame), 0) <= 0)
		goto out;
	p->requests++;
	reply.type = CS_IPC_HELLO;
	if (p->mode == PEER_HELLO_GARBAGE) {
		(void)send(p->fd, "not a frame", 11, MSG_NOSIGNAL);
		goto out;
	}
	if (p->mode == PEER_HELLO_REFUSED) {
		reply.status = CS_E_INTERNAL;
		peer_reply(p->fd, &reply);
		goto out;
	}
	reply.version = CS_IPC_VERSION;
	reply.random_max = 64;
	peer_reply(p->fd, &reply);
	ssize_t n = recv(p->fd, frame, sizeof(frame), 0);
	if (n <= 0)
		goto out;
	p->requests++;
	if (p->mode == PEER_OVERSIZED) {
		memset(frame, 0, sizeof(frame));
		(void)send(p->fd, frame, CS_IPC_FRAME_MAX + 16, MSG_NOSIGNAL);
	} else if (p->mode == PEER_SHORT_DRAW) {
		static const uint8_t bytes[8] = {1, 2, 3, 4, 5, 6, 7, 8};
		memset(&reply, 0, sizeof(reply));
		reply.type = CS_IPC_RANDOM;
		reply.data = bytes;
		reply.data_len = sizeof(bytes); /* 16 were asked for */
		peer_reply(p->fd, &reply);
	}
	/* PEER_CLOSES: nothing */
out:
	close(p->fd);
	return NULL;
}

/* A key process that answers HELLO with garbage or a refusal is not
 * used (CS_E_IPC); one whose reply to a draw is oversized, malformed or
 * missing (the channel closed) fails the draw with CS_E_TOKEN_UNAVAILABLE,
 * returns no byte of it, and its channel is dead: the next call fails at
 * once, without reaching the key process. */
static void test_misbehaving_key_process(void **state)
{
	(void)state;
	static const int modes[] = {PEER_HELLO_GARBAGE, PEER_HELLO_REFUSED, PEER_OVERSIZED, PEER_SHORT_DRAW,
				    PEER_CLOSES};
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		int sv[2];
		pthread_t th;
		cs_token *t = NULL;
		assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
		struct peer p = {.fd = sv[1], .mode = modes[i]};
		assert_int_equal(pthread_create(&th, NULL, hostile_peer, &p), 0);
		cs_err r = cs_token_open_remote(&sv[0], 1, &t);
		if (modes[i] == PEER_HELLO_GARBAGE || modes[i] == PEER_HELLO_REFUSED) {
			assert_int_equal(r, CS_E_IPC);
			assert_null(t);
			pthread_join(th, NULL);
			continue;
		}
		assert_int_equal(r, CS_OK);
		uint8_t buf[16];
		memset(buf, 0xa5, sizeof(buf));
		assert_int_equal(cs_token_random(t, buf, sizeof(buf)), CS_E_TOKEN_UNAVAILABLE);
		for (size_t j = 0; j < sizeof(buf); j++)
			assert_int_equal(buf[j], 0);
		pthread_join(th, NULL);
		assert_int_equal(p.requests, 2);
		double start = now_s();
		assert_int_equal(cs_token_random(t, buf, sizeof(buf)), CS_E_TOKEN_UNAVAILABLE);
		assert_true(now_s() - start < 0.5);
		cs_token_close(t);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_info_equals_in_process, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random, setup, teardown),
		cmocka_unit_test_setup_teardown(test_find_and_public_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sign_with_purpose, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sign_wrong_purpose, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bind_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_signing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_killed_key_process, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replace_rebinds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_provider_purpose, setup, teardown),
		cmocka_unit_test(test_open_fails_when_key_process_fails),
		cmocka_unit_test(test_prepare_refuses_two_purposes),
		cmocka_unit_test(test_failing_call_named),
		cmocka_unit_test(test_misbehaving_key_process),
	};
	cs_log_configure(CS_LOG_ERROR, CS_LOG_LOGFMT, 2);
	return cmocka_run_group_tests(tests, group_setup, NULL);
}
