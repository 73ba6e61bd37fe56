/* test_keyproc: the key process (keyproc.h) from the outside, on a real
 * SoftHSM2 token. A forked child opens the token, binds one CERTIFICATE key
 * and one PROFILE "rel" key (cs_keyproc_prepare) and serves socketpair
 * channels; the parent sends raw frames: good ones get verifiable
 * signatures, malformed or unpermitted ones an explicit error reply that
 * carries no signature, or a closed channel (an unknown type, a frame
 * longer than CS_IPC_FRAME_MAX). Then the same through the remote token
 * (cs_token_open_remote): purposes, a key process killed with SIGKILL (the
 * calls fail CS_E_TOKEN_UNAVAILABLE at once) and replaced by a new one
 * (cs_token_remote_replace; the keys bound so far bound again). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "ec_util.h"
#include "keyproc.h"
#include "test_support.h"
#include "token.h"
#include "token_ipc.h"

#define CHANNELS 4
#define RECV_TIMEOUT_MS 10000

static const char *module_path;
static char pin_path[600];
static const char *token_uri = "pkcs11:token=cstest";

/* The keys: bound at start (cert, rel), in the token but not configured
 * (other). Resolved refs (label and id), their public halves, their URIs. */
typedef struct {
	cs_key_ref ref;
	EVP_PKEY *pub;
	char uri[400];
} test_key;
static test_key cert_key, rel_key, other_key;

static cs_token_params params(void)
{
	cs_token_params p = {
		.module = module_path,
		.token_uri = token_uri,
		.pin_file = pin_path,
		.pool_size = 2,
		.read_write = 1,
	};
	return p;
}

static int make_key(cs_token *t, const char *what, test_key *k)
{
	char label[64];
	snprintf(label, sizeof(label), "kp-%s-%ld", what, (long)getpid());
	if (cs_token_generate_p256(t, label, &k->ref) != CS_OK ||
	    cs_token_public_key(t, &k->ref, &k->pub) != CS_OK)
		return -1;
	int n = snprintf(k->uri, sizeof(k->uri), "pkcs11:object=%s;id=", k->ref.label);
	for (size_t i = 0; i < k->ref.id_len; i++)
		n += snprintf(k->uri + n, sizeof(k->uri) - (size_t)n, "%%%02x", k->ref.id[i]);
	return 0;
}

static int group_setup(void **state)
{
	(void)state;
	const char *dir;
	if (ts_token_fixture(&module_path, &dir, pin_path, sizeof(pin_path)) != 0)
		return -1;
	cs_token *t = NULL;
	cs_token_params p = params();
	if (cs_token_open(&p, &t) != CS_OK)
		return -1;
	int r = make_key(t, "cert", &cert_key) || make_key(t, "rel", &rel_key) ||
		make_key(t, "other", &other_key);
	cs_token_close(t);
	return r == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(cert_key.pub);
	EVP_PKEY_free(rel_key.pub);
	EVP_PKEY_free(other_key.pub);
	return 0;
}

/* ---- the key process ----------------------------------------------------- */

static cs_key_purpose purpose(cs_key_purpose_kind kind, const char *profile)
{
	cs_key_purpose p;
	memset(&p, 0, sizeof(p));
	p.kind = kind;
	snprintf(p.profile, sizeof(p.profile), "%s", profile);
	return p;
}

/* The child: what the daemon's key process does, without confinement. */
static int keyproc_child(const int *fds, size_t n)
{
	cs_token *t = NULL;
	cs_keyproc *kp = NULL;
	cs_token_params p = params();
	const cs_keyproc_key keys[] = {
		{purpose(CS_KEY_PURPOSE_CERTIFICATE, ""), cert_key.uri, "pkcs11.signing_key"},
		{purpose(CS_KEY_PURPOSE_PROFILE, "rel"), rel_key.uri, "signing.profiles.rel.key"},
	};
	if (cs_token_open(&p, &t) != CS_OK)
		return 2;
	if (cs_keyproc_prepare(t, keys, 2, &kp) != CS_OK) {
		cs_token_close(t);
		return 3;
	}
	cs_err r = cs_keyproc_serve(kp, fds, n);
	cs_keyproc_free(kp);
	cs_token_close(t);
	return r == CS_OK ? 0 : 4;
}

/* Start a key process serving n channels; client[] gets our ends. */
static pid_t start_keyproc(int *client, size_t n)
{
	int server[CHANNELS];
	assert_true(n <= CHANNELS);
	for (size_t i = 0; i < n; i++) {
		int sp[2];
		assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
		client[i] = sp[0];
		server[i] = sp[1];
	}
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		for (size_t i = 0; i < n; i++)
			close(client[i]);
		/* exit, not _exit: LeakSanitizer checks the key process too */
		exit(keyproc_child(server, n));
	}
	for (size_t i = 0; i < n; i++)
		close(server[i]);
	return pid;
}

/* Wait for the key process; its exit status (-1: killed). */
static int wait_keyproc(pid_t pid)
{
	int status = 0;
	pid_t r;
	do
		r = waitpid(pid, &status, 0);
	while (r < 0 && errno == EINTR);
	assert_int_equal(r, pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---- raw frames ------------------------------------------------------------ */

typedef struct {
	uint8_t b[CS_IPC_FRAME_MAX + 64];
	size_t len;
} frame;

static void send_raw(int fd, const uint8_t *b, size_t len)
{
	ssize_t n = send(fd, b, len, MSG_NOSIGNAL);
	assert_int_equal(n, (ssize_t)len);
}

/* One frame from the key process (0: it closed the channel). */
static size_t recv_raw(int fd, frame *f)
{
	struct pollfd p = {fd, POLLIN, 0};
	assert_int_equal(poll(&p, 1, RECV_TIMEOUT_MS), 1);
	ssize_t n = recv(fd, f->b, sizeof(f->b), MSG_TRUNC);
	assert_true(n >= 0 && (size_t)n <= CS_IPC_FRAME_MAX);
	f->len = (size_t)n;
	return f->len;
}

static frame enc(const cs_ipc_request *q)
{
	frame f;
	memset(&f, 0, sizeof(f));
	assert_int_equal(cs_ipc_encode_request(q, f.b, sizeof(f.b), &f.len), CS_OK);
	return f;
}

static cs_ipc_request hello_req(void)
{
	cs_ipc_request q;
	memset(&q, 0, sizeof(q));
	q.type = CS_IPC_HELLO;
	q.version = CS_IPC_VERSION;
	return q;
}

static cs_ipc_request sign_req(const test_key *k, cs_key_purpose p, uint8_t seed)
{
	cs_ipc_request q;
	memset(&q, 0, sizeof(q));
	q.type = CS_IPC_SIGN;
	q.purpose = p;
	q.key = k->ref;
	for (size_t i = 0; i < 32; i++)
		q.digest[i] = (uint8_t)(seed + i * 13);
	return q;
}

static cs_ipc_request bind_req(const test_key *k, cs_key_purpose p)
{
	cs_ipc_request q;
	memset(&q, 0, sizeof(q));
	q.type = CS_IPC_BIND;
	q.purpose = p;
	q.key = k->ref;
	return q;
}

/* Send a raw frame; the reply must be an error of `status` answering
 * `type`: a header and a status, nothing else (no signature). */
static void expect_error(int fd, const frame *req, cs_ipc_type type, cs_err status)
{
	frame f;
	cs_ipc_reply y;
	send_raw(fd, req->b, req->len);
	assert_int_equal(recv_raw(fd, &f), CS_IPC_HEADER_LEN + 4);
	assert_int_equal(cs_ipc_decode_reply(f.b, f.len, type, type == CS_IPC_RANDOM ? 1 : 0, &y), CS_OK);
	assert_int_equal(y.status, status);
	assert_int_equal(y.sig.der_len, 0);
}

static void expect_closed(int fd, const uint8_t *b, size_t len)
{
	frame f;
	send_raw(fd, b, len);
	assert_int_equal(recv_raw(fd, &f), 0);
}

static void expect_ok(int fd, const cs_ipc_request *q, cs_ipc_reply *y, frame *f)
{
	frame req = enc(q);
	send_raw(fd, req.b, req.len);
	assert_true(recv_raw(fd, f) > 0);
	assert_int_equal(cs_ipc_decode_reply(f->b, f->len, q->type, q->type == CS_IPC_RANDOM ? q->n : 0, y),
			 CS_OK);
	assert_int_equal(y->status, CS_OK);
}

/* A signature the key process made: DER verifies with the key's public
 * half, raw is the same signature. */
static void assert_signature(const cs_es256_sig *sig, const test_key *k, const uint8_t digest[32])
{
	uint8_t raw[64];
	assert_true(ts_verify_der(k->pub, digest, sig->der, sig->der_len));
	assert_int_equal(cs_ecdsa_der_to_raw(sig->der, sig->der_len, raw), CS_OK);
	assert_memory_equal(raw, sig->raw, 64);
}

static void expect_signature(int fd, const test_key *k, cs_key_purpose p, uint8_t seed)
{
	cs_ipc_request q = sign_req(k, p, seed);
	cs_ipc_reply y;
	frame f;
	expect_ok(fd, &q, &y, &f);
	assert_signature(&y.sig, k, q.digest);
}

static void test_raw_frames(void **state)
{
	(void)state;
	int ch[CHANNELS];
	pid_t pid = start_keyproc(ch, CHANNELS);
	const cs_key_purpose certificate = purpose(CS_KEY_PURPOSE_CERTIFICATE, "");
	const cs_key_purpose rel = purpose(CS_KEY_PURPOSE_PROFILE, "rel");
	cs_ipc_request q;
	cs_ipc_reply y;
	frame f, req;

	/* a good HELLO, then signatures that verify */
	q = hello_req();
	expect_ok(ch[0], &q, &y, &f);
	assert_int_equal(y.version, CS_IPC_VERSION);
	assert_true(y.random_max >= 1);
	expect_signature(ch[0], &cert_key, certificate, 1);
	expect_signature(ch[0], &rel_key, rel, 2);

	/* malformed SIGN frames: an error reply, the channel stays usable */
	q = sign_req(&cert_key, certificate, 3);
	req = enc(&q);
	req.b[7]--; /* payload length one short of the frame's */
	expect_error(ch[0], &req, CS_IPC_SIGN, CS_E_IPC);
	req = enc(&q);
	req.b[3] = 1; /* flags */
	expect_error(ch[0], &req, CS_IPC_SIGN, CS_E_IPC);
	req = enc(&q);
	req.len--; /* a 31-byte digest */
	req.b[7]--;
	expect_error(ch[0], &req, CS_IPC_SIGN, CS_E_IPC);
	req = enc(&q);
	req.b[req.len++] = 0; /* a 33-byte digest */
	req.b[7]++;
	expect_error(ch[0], &req, CS_IPC_SIGN, CS_E_IPC);
	req = enc(&q);
	req.b[0] = 0x80; /* a reply type as a request */
	expect_error(ch[0], &req, CS_IPC_SIGN, CS_E_IPC);
	q = hello_req(); /* HELLO again: not permitted once READY */
	req = enc(&q);
	expect_error(ch[0], &req, CS_IPC_HELLO, CS_E_IPC);

	/* purposes: an unconfigured key, a key for another purpose */
	q = sign_req(&other_key, certificate, 4);
	req = enc(&q);
	expect_error(ch[0], &req, CS_IPC_SIGN, CS_E_KEY_PURPOSE);
	q = sign_req(&cert_key, rel, 5);
	req = enc(&q);
	expect_error(ch[0], &req, CS_IPC_SIGN, CS_E_KEY_PURPOSE);
	q = sign_req(&rel_key, certificate, 6);
	req = enc(&q);
	expect_error(ch[0], &req, CS_IPC_SIGN, CS_E_KEY_PURPOSE);
	q = sign_req(&rel_key, purpose(CS_KEY_PURPOSE_PROFILE, "rel2"), 6);
	req = enc(&q);
	expect_error(ch[0], &req, CS_IPC_SIGN, CS_E_KEY_PURPOSE);
	q = sign_req(&cert_key, certificate, 7); /* the label alone does not do */
	q.key.id_len = 0;
	req = enc(&q);
	expect_error(ch[0], &req, CS_IPC_SIGN, CS_E_KEY_PURPOSE);
	q = sign_req(&cert_key, purpose(CS_KEY_PURPOSE_TLS, ""), 8);
	req = enc(&q);
	expect_error(ch[0], &req, CS_IPC_SIGN, CS_E_KEY_PURPOSE);

	/* BIND: the profile key to CERTIFICATE, any key to TLS: refused */
	q = bind_req(&rel_key, certificate);
	req = enc(&q);
	expect_error(ch[0], &req, CS_IPC_BIND, CS_E_KEY_PURPOSE);
	q = bind_req(&other_key, purpose(CS_KEY_PURPOSE_TLS, ""));
	req = enc(&q);
	expect_error(ch[0], &req, CS_IPC_BIND, CS_E_KEY_PURPOSE);
	q = bind_req(&cert_key, purpose(CS_KEY_PURPOSE_TLS, ""));
	req = enc(&q);
	expect_error(ch[0], &req, CS_IPC_BIND, CS_E_KEY_PURPOSE);
	/* ... and still no signature with them for those purposes */
	q = sign_req(&rel_key, certificate, 9);
	req = enc(&q);
	expect_error(ch[0], &req, CS_IPC_SIGN, CS_E_KEY_PURPOSE);
	q = sign_req(&other_key, purpose(CS_KEY_PURPOSE_TLS, ""), 10);
	req = enc(&q);
	expect_error(ch[0], &req, CS_IPC_SIGN, CS_E_KEY_PURPOSE);

	/* a BIND of an unconfigured key to a profile serves that profile only */
	q = bind_req(&other_key, purpose(CS_KEY_PURPOSE_PROFILE, "rel2"));
	expect_ok(ch[0], &q, &y, &f);
	assert_int_equal(f.len, CS_IPC_HEADER_LEN + 4);
	expect_signature(ch[0], &other_key, purpose(CS_KEY_PURPOSE_PROFILE, "rel2"), 11);
	q = sign_req(&other_key, certificate, 12);
	req = enc(&q);
	expect_error(ch[0], &req, CS_IPC_SIGN, CS_E_KEY_PURPOSE);
	/* the bindings serve every channel: checked on ch[1] below */

	/* the channel survived all of it */
	expect_signature(ch[0], &cert_key, certificate, 13);

	/* requests before HELLO: CS_E_IPC, the channel stays NEW */
	q = sign_req(&cert_key, certificate, 14);
	req = enc(&q);
	expect_error(ch[1], &req, CS_IPC_SIGN, CS_E_IPC);
	memset(&q, 0, sizeof(q));
	q.type = CS_IPC_RANDOM;
	q.n = 16;
	req = enc(&q);
	expect_error(ch[1], &req, CS_IPC_RANDOM, CS_E_IPC);
	q = hello_req();
	expect_ok(ch[1], &q, &y, &f);
	expect_signature(ch[1], &other_key, purpose(CS_KEY_PURPOSE_PROFILE, "rel2"), 15);
	memset(&q, 0, sizeof(q));
	q.type = CS_IPC_RANDOM;
	q.n = 48;
	expect_ok(ch[1], &q, &y, &f);
	assert_int_equal(y.data_len, 48);

	/* an unknown type: the channel is closed */
	const uint8_t unknown[] = {0, 9, 0, 0, 0, 0, 0, 0};
	expect_closed(ch[2], unknown, sizeof(unknown));

	/* a frame longer than CS_IPC_FRAME_MAX: the channel is closed */
	static uint8_t big[CS_IPC_FRAME_MAX + 1];
	q = hello_req();
	req = enc(&q);
	memcpy(big, req.b, req.len);
	big[4] = (uint8_t)((sizeof(big) - CS_IPC_HEADER_LEN) >> 24);
	big[5] = (uint8_t)((sizeof(big) - CS_IPC_HEADER_LEN) >> 16);
	big[6] = (uint8_t)((sizeof(big) - CS_IPC_HEADER_LEN) >> 8);
	big[7] = (uint8_t)(sizeof(big) - CS_IPC_HEADER_LEN);
	expect_closed(ch[3], big, sizeof(big));

	/* the other channels are unaffected by those */
	expect_signature(ch[0], &rel_key, rel, 16);

	/* our ends closed: the key process ends, cleanly */
	for (size_t i = 0; i < CHANNELS; i++)
		close(ch[i]);
	assert_int_equal(wait_keyproc(pid), 0);
}

/* ---- the remote token ------------------------------------------------------ */

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static cs_key_ref with_purpose(const test_key *k, cs_key_purpose p)
{
	cs_key_ref r = k->ref;
	r.purpose = p;
	return r;
}

static void remote_sign_ok(cs_token *t, const test_key *k, cs_key_purpose p, uint8_t seed)
{
	uint8_t digest[32];
	cs_es256_sig sig;
	cs_key_ref ref = with_purpose(k, p);
	for (size_t i = 0; i < 32; i++)
		digest[i] = (uint8_t)(seed * 3 + i);
	assert_int_equal(cs_token_sign_es256(t, &ref, digest, &sig), CS_OK);
	assert_signature(&sig, k, digest);
}

static int sig_is_zero(const cs_es256_sig *sig)
{
	static const cs_es256_sig zero;
	return memcmp(sig, &zero, sizeof(zero)) == 0;
}

static void remote_sign_fails(cs_token *t, const test_key *k, cs_key_purpose p, cs_err want)
{
	uint8_t digest[32] = {1};
	cs_es256_sig sig;
	cs_key_ref ref = with_purpose(k, p);
	memset(&sig, 0x5a, sizeof(sig));
	assert_int_equal(cs_token_sign_es256(t, &ref, digest, &sig), want);
	assert_true(sig_is_zero(&sig));
}

static void test_remote_token(void **state)
{
	(void)state;
	int ch[2];
	cs_token *t = NULL;
	const cs_key_purpose certificate = purpose(CS_KEY_PURPOSE_CERTIFICATE, "");
	const cs_key_purpose rel = purpose(CS_KEY_PURPOSE_PROFILE, "rel");
	const cs_key_purpose rel2 = purpose(CS_KEY_PURPOSE_PROFILE, "rel2");

	pid_t pid = start_keyproc(ch, 2);
	assert_int_equal(cs_token_open_remote(ch, 2, &t), CS_OK);
	assert_true(cs_token_is_remote(t));

	/* signatures with key.purpose set; refusals by purpose */
	remote_sign_ok(t, &cert_key, certificate, 1);
	remote_sign_ok(t, &rel_key, rel, 2);
	remote_sign_fails(t, &rel_key, certificate, CS_E_KEY_PURPOSE);
	remote_sign_fails(t, &cert_key, rel, CS_E_KEY_PURPOSE);
	remote_sign_fails(t, &other_key, certificate, CS_E_KEY_PURPOSE);
	remote_sign_fails(t, &cert_key, purpose(CS_KEY_PURPOSE_NONE, ""), CS_E_KEY_PURPOSE);
	/* what the daemon never does through the key process */
	cs_key_ref made;
	assert_int_equal(cs_token_generate_p256(t, "kp-never", &made), CS_E_KEY_FORBIDDEN);
	/* the public half through the key process is the key's */
	EVP_PKEY *pub = NULL;
	assert_int_equal(cs_token_public_key(t, &cert_key.ref, &pub), CS_OK);
	assert_int_equal(EVP_PKEY_eq(pub, cert_key.pub), 1);
	EVP_PKEY_free(pub);

	/* a key bound through the token; refusals of BIND */
	cs_key_ref other_rel2 = with_purpose(&other_key, rel2);
	assert_int_equal(cs_token_bind_key(t, &other_rel2), CS_OK);
	remote_sign_ok(t, &other_key, rel2, 3);
	cs_key_ref rel_cert = with_purpose(&rel_key, certificate);
	assert_int_equal(cs_token_bind_key(t, &rel_cert), CS_E_KEY_PURPOSE);
	cs_key_ref cert_tls = with_purpose(&cert_key, purpose(CS_KEY_PURPOSE_TLS, ""));
	assert_int_equal(cs_token_bind_key(t, &cert_tls), CS_E_KEY_PURPOSE);

	/* the key process dies: every call fails at once, never a signature */
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(wait_keyproc(pid), -1);
	for (int i = 0; i < 3; i++) {
		long long t0 = now_ms();
		remote_sign_fails(t, &cert_key, certificate, CS_E_TOKEN_UNAVAILABLE);
		assert_true(now_ms() - t0 < 1000);
	}
	uint8_t rnd[32];
	memset(rnd, 0x5a, sizeof(rnd));
	assert_int_equal(cs_token_random(t, rnd, sizeof(rnd)), CS_E_TOKEN_UNAVAILABLE);
	for (size_t i = 0; i < sizeof(rnd); i++)
		assert_int_equal(rnd[i], 0);

	/* a new key process: its channels replace the dead ones, the key bound
	 * before is bound again */
	pid = start_keyproc(ch, 2);
	assert_int_equal(cs_token_remote_replace(t, ch, 2), CS_OK);
	remote_sign_ok(t, &cert_key, certificate, 4);
	remote_sign_ok(t, &rel_key, rel, 5);
	remote_sign_ok(t, &other_key, rel2, 6);
	remote_sign_fails(t, &other_key, certificate, CS_E_KEY_PURPOSE);
	assert_int_equal(cs_token_random(t, rnd, sizeof(rnd)), CS_OK);

	cs_token_close(t);
	assert_int_equal(wait_keyproc(pid), 0);
}

/* Is fd closed? */
static int fd_closed(int fd)
{
	return fcntl(fd, F_GETFD) < 0 && errno == EBADF;
}

/* cs_keyproc_prepare and cs_keyproc_serve refuse what they cannot serve:
 * no token, too many keys, a key without a URI or purpose, a URI that is
 * no key URI (nothing prepared: *out stays NULL); serve takes its fds over
 * also when it refuses (they are closed), and serves only once. */
static void test_prepare_and_serve_refusals(void **state)
{
	(void)state;
	cs_token *t = NULL;
	cs_keyproc *kp = (cs_keyproc *)&kp; /* not NULL: the refusals clear it */
	cs_token_params p = params();
	assert_int_equal(cs_token_open(&p, &t), CS_OK);
	const cs_keyproc_key good = {purpose(CS_KEY_PURPOSE_CERTIFICATE, ""), cert_key.uri, "pkcs11.signing_key"};
	assert_int_equal(cs_keyproc_prepare(NULL, &good, 1, &kp), CS_E_INVALID_ARG);
	assert_null(kp);
	assert_int_equal(cs_keyproc_prepare(t, NULL, 1, &kp), CS_E_INVALID_ARG);
	assert_int_equal(cs_keyproc_prepare(t, &good, CS_KEYPROC_BINDINGS_MAX + 1, &kp), CS_E_INVALID_ARG);
	assert_int_equal(cs_keyproc_prepare(t, &good, 1, NULL), CS_E_INVALID_ARG);
	const cs_keyproc_key no_uri = {purpose(CS_KEY_PURPOSE_CERTIFICATE, ""), NULL, "pkcs11.signing_key"};
	assert_int_equal(cs_keyproc_prepare(t, &no_uri, 1, &kp), CS_E_INVALID_ARG);
	assert_null(kp);
	const cs_keyproc_key no_purpose = {purpose(CS_KEY_PURPOSE_NONE, ""), cert_key.uri, "pkcs11.signing_key"};
	assert_int_equal(cs_keyproc_prepare(t, &no_purpose, 1, &kp), CS_E_INVALID_ARG);
	const cs_keyproc_key bad_uri = {purpose(CS_KEY_PURPOSE_CERTIFICATE, ""), "file:/etc/key.pem", "tls.key"};
	assert_int_not_equal(cs_keyproc_prepare(t, &bad_uri, 1, &kp), CS_OK);
	assert_null(kp);

	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(cs_keyproc_serve(NULL, &sv[1], 1), CS_E_INVALID_ARG);
	assert_true(fd_closed(sv[1]));
	close(sv[0]);
	assert_int_equal(cs_keyproc_prepare(t, &good, 1, &kp), CS_OK);
	assert_int_equal(cs_keyproc_serve(kp, NULL, 1), CS_E_INVALID_ARG);
	int none[1] = {-1};
	assert_int_equal(cs_keyproc_serve(kp, none, 0), CS_E_INVALID_ARG);
	/* served once: the peer hangs up at once, the serve returns */
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	close(sv[0]);
	assert_int_equal(cs_keyproc_serve(kp, &sv[1], 1), CS_OK);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(cs_keyproc_serve(kp, &sv[1], 1), CS_E_INVALID_ARG);
	assert_true(fd_closed(sv[1]));
	close(sv[0]);
	cs_keyproc_free(kp);
	cs_keyproc_free(NULL);
	cs_token_close(t);
}

int main(void)
{
	/* SIGPIPE keeps its default: a send to a dead key process without
	 * MSG_NOSIGNAL would kill the test */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_raw_frames),
		cmocka_unit_test(test_remote_token),
		cmocka_unit_test(test_prepare_and_serve_refusals),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
