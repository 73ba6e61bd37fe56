/*
 * token_remote: the client side of a token served by a key process
 * (cs_token_open_remote, token.h). Each call takes a free channel from a
 * pool, sends one request frame (token_ipc.h) and waits for its reply; a
 * channel that fails in any way is closed and marked dead. The keys bound
 * so far are remembered and bound again on the channels of a restarted key
 * process (cs_token_remote_replace).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cs_log.h"
#include "cs_secret.h"
#include "ec_util.h"
#include "keyproc.h"
#include "token_internal.h"
#include "token_ipc.h"
#include "token_meter.h"

typedef struct tok_chan {
	int fd;      /* -1 once closed */
	unsigned no; /* for logs: 1.. in the order given */
	int busy;    /* a call is using it */
	int dead;    /* failed: closed, never used again */
	int retired; /* replaced while busy: freed by the call that holds it */
} tok_chan;

struct tok_remote {
	pthread_mutex_t lock; /* guards everything below */
	pthread_cond_t cond;  /* a channel was released or replaced */
	tok_chan *chans[CS_TOKEN_REMOTE_CHANNELS_MAX];
	size_t nchans;
	size_t random_max;                   /* from HELLO */
	unsigned long recoveries, reinits;   /* from the last INFO */
	/* Serialises cs_token_bind_key with cs_token_remote_replace, so that
	 * every key bound is bound on the channels in use. Taken before lock. */
	pthread_mutex_t bind_lock;
	cs_key_ref bound[CS_KEYPROC_BINDINGS_MAX]; /* purpose set */
	size_t nbound;
};

/* ---- time ---------------------------------------------------------------- */

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- channels -------------------------------------------------------------- */

static void chan_close(tok_chan *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static void chan_free(tok_chan *c)
{
	if (c == NULL)
		return;
	chan_close(c);
	free(c);
}

/* Channels for fds (taken over). On failure every fd is closed. */
static cs_err chans_new(const int *fds, size_t nfds, tok_chan **out)
{
	for (size_t i = 0; i < nfds; i++)
		out[i] = NULL;
	for (size_t i = 0; i < nfds; i++) {
		if ((out[i] = calloc(1, sizeof(*out[i]))) == NULL) {
			for (size_t j = 0; j < nfds; j++) {
				if (out[j] == NULL)
					close(fds[j]);
				chan_free(out[j]);
				out[j] = NULL;
			}
			return CS_E_NOMEM;
		}
		out[i]->fd = fds[i];
		out[i]->no = (unsigned)i + 1;
	}
	return CS_OK;
}

/* Send one frame: CS_OK or the reason the channel failed. */
static const char *chan_send(tok_chan *c, const uint8_t *frame, size_t len)
{
	ssize_t n;
	do
		n = send(c->fd, frame, len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EPIPE || errno == ECONNRESET ? "the key process closed the channel"
							     : "send failed";
	return (size_t)n == len ? NULL : "short send";
}

/* Receive one frame into buf[CS_IPC_FRAME_MAX + 1] by the deadline (ms,
 * CLOCK_MONOTONIC): NULL, or the reason the channel failed. */
static const char *chan_recv(tok_chan *c, uint8_t *buf, size_t *len, long long deadline)
{
	for (;;) {
		long long left = deadline - now_ms();
		if (left <= 0)
			return "no reply in time";
		struct pollfd p = {c->fd, POLLIN, 0};
		int r = poll(&p, 1, left > 60000 ? 60000 : (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return "poll failed";
		if (r == 0)
			continue; /* the deadline decides */
		ssize_t n = recv(c->fd, buf, CS_IPC_FRAME_MAX + 1, MSG_TRUNC | MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
			continue;
		if (n < 0)
			return errno == ECONNRESET ? "the key process closed the channel" : "receive failed";
		if (n == 0)
			return "the key process closed the channel";
		if ((size_t)n > CS_IPC_FRAME_MAX)
			return "oversized reply";
		*len = (size_t)n;
		return NULL;
	}
}

/* One request, one reply on channel c. CS_OK with *reply decoded (its
 * status may be a refusal); else the channel failed: *why says how. The
 * reply's pointers point into buf[CS_IPC_FRAME_MAX + 1]. */
static cs_err chan_exchange(tok_chan *c, const cs_ipc_request *req, uint32_t expect_n, uint8_t *buf,
			    long long deadline, cs_ipc_reply *reply, const char **why)
{
	size_t len = 0;
	*why = NULL;
	if (cs_ipc_encode_request(req, buf, CS_IPC_FRAME_MAX, &len) != CS_OK)
		return CS_E_INVALID_ARG; /* the caller's input; checked before */
	if ((*why = chan_send(c, buf, len)) != NULL)
		return CS_E_TOKEN_UNAVAILABLE;
	if ((*why = chan_recv(c, buf, &len, deadline)) != NULL)
		return CS_E_TOKEN_UNAVAILABLE;
	if (cs_ipc_decode_reply(buf, len, req->type, expect_n, reply) != CS_OK) {
		*why = "malformed reply";
		return CS_E_TOKEN_UNAVAILABLE;
	}
	return CS_OK;
}

/* A failed channel, held by the caller: closed now, logged (once: it is
 * never used again); chan_release marks it dead. */
static void chan_failed(tok_chan *c, const char *why, unsigned type)
{
	cs_log_error("key process channel %u: %s (%s request); channel closed", c->no, why,
		     cs_ipc_type_name(type));
	chan_close(c);
}

/* Take a free channel: CS_OK, CS_E_TOKEN_BUSY after CS_IPC_WAIT_MS with
 * every live channel busy, CS_E_TOKEN_UNAVAILABLE when all are dead. */
static cs_err chan_acquire(struct tok_remote *rm, tok_chan **out)
{
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += CS_IPC_WAIT_MS / 1000;
	until.tv_nsec += (CS_IPC_WAIT_MS % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	*out = NULL;
	pthread_mutex_lock(&rm->lock);
	for (;;) {
		size_t live = 0;
		for (size_t i = 0; i < rm->nchans; i++) {
			tok_chan *c = rm->chans[i];
			if (c->dead)
				continue;
			live++;
			if (!c->busy) {
				c->busy = 1;
				*out = c;
				pthread_mutex_unlock(&rm->lock);
				return CS_OK;
			}
		}
		if (live == 0) {
			pthread_mutex_unlock(&rm->lock);
			return CS_E_TOKEN_UNAVAILABLE;
		}
		if (pthread_cond_timedwait(&rm->cond, &rm->lock, &until) == ETIMEDOUT) {
			pthread_mutex_unlock(&rm->lock);
			cs_log_warn("every key process channel stayed busy for %d ms", CS_IPC_WAIT_MS);
			return CS_E_TOKEN_BUSY;
		}
	}
}

static void chan_release(struct tok_remote *rm, tok_chan *c, int failed)
{
	pthread_mutex_lock(&rm->lock);
	c->busy = 0;
	if (failed)
		c->dead = 1;
	if (c->retired)
		chan_free(c);
	pthread_cond_broadcast(&rm->cond);
	pthread_mutex_unlock(&rm->lock);
}

/* The PKCS#11 call that caused an error reply, made in the key process:
 * this thread's last failing call, as if made here, so that
 * cs_token_meter_cause names it in the caller's error message. A name the
 * meter does not know, or a value that is no CK_RV here, is ignored. */
static void note_cause(const cs_ipc_reply *reply)
{
	if (reply->status == CS_OK || reply->cause_function[0] == '\0' ||
	    reply->cause_rv > (uint64_t)(CK_RV)-1)
		return;
	const char *fn = cs_token_meter_function_name(reply->cause_function);
	if (fn != NULL)
		cs_token_meter_note_failure(fn, (CK_RV)reply->cause_rv);
}

/* One request on a pooled channel. CS_OK with *reply (status CS_OK); the
 * key process's refusal (its status); CS_E_TOKEN_UNAVAILABLE / _BUSY. buf:
 * CS_IPC_FRAME_MAX + 1 bytes that the reply points into. */
static cs_err remote_call(cs_token *t, const cs_ipc_request *req, uint32_t expect_n, uint8_t *buf,
			  cs_ipc_reply *reply)
{
	tok_chan *c = NULL;
	memset(reply, 0, sizeof(*reply));
	cs_err r = chan_acquire(t->remote, &c);
	if (r != CS_OK)
		return r;
	const char *why = NULL;
	r = chan_exchange(c, req, expect_n, buf, now_ms() + CS_IPC_REPLY_TIMEOUT_MS, reply, &why);
	if (why != NULL)
		chan_failed(c, why, req->type);
	chan_release(t->remote, c, why != NULL);
	if (r != CS_OK) {
		memset(reply, 0, sizeof(*reply));
		return r;
	}
	note_cause(reply);
	return reply->status;
}

/* ---- HELLO and the bindings of a fresh key process ----------------------- */

/* HELLO on every channel (sent to all first, then the answers read by one
 * deadline). *random_max gets the key process's. */
static cs_err hello_all(tok_chan **chans, size_t n, size_t *random_max)
{
	uint8_t buf[CS_IPC_FRAME_MAX + 1];
	cs_ipc_request req;
	size_t len = 0;
	memset(&req, 0, sizeof(req));
	req.type = CS_IPC_HELLO;
	req.version = CS_IPC_VERSION;
	if (cs_ipc_encode_request(&req, buf, sizeof(buf), &len) != CS_OK)
		return CS_E_INTERNAL;
	for (size_t i = 0; i < n; i++) {
		const char *why = chan_send(chans[i], buf, len);
		if (why != NULL) {
			cs_log_error("key process channel %u: %s (HELLO): the key process did not start",
				     chans[i]->no, why);
			return CS_E_TOKEN_UNAVAILABLE;
		}
	}
	long long deadline = now_ms() + CS_IPC_HELLO_TIMEOUT_MS;
	for (size_t i = 0; i < n; i++) {
		cs_ipc_reply reply;
		size_t rlen = 0;
		const char *why = chan_recv(chans[i], buf, &rlen, deadline);
		if (why != NULL) {
			cs_log_error("key process channel %u: %s (HELLO): the key process did not start",
				     chans[i]->no, why);
			return CS_E_TOKEN_UNAVAILABLE;
		}
		if (cs_ipc_decode_reply(buf, rlen, CS_IPC_HELLO, 0, &reply) != CS_OK) {
			cs_log_error("key process channel %u: a malformed answer to HELLO (another protocol "
				     "version?)",
				     chans[i]->no);
			return CS_E_IPC;
		}
		if (reply.status != CS_OK) {
			cs_log_error("key process channel %u: the key process refused HELLO: %s", chans[i]->no,
				     cs_strerror(reply.status));
			return CS_E_IPC;
		}
		*random_max = reply.random_max;
	}
	return CS_OK;
}

/* Bind the keys bound so far again, on channel c of a fresh key process.
 * A key it refuses is dropped (logged: signing with it will be refused);
 * a channel failure fails. Caller holds bind_lock. */
static cs_err rebind_all(struct tok_remote *rm, tok_chan *c)
{
	uint8_t buf[CS_IPC_FRAME_MAX + 1];
	size_t kept = 0;
	for (size_t i = 0; i < rm->nbound; i++) {
		cs_ipc_request req;
		cs_ipc_reply reply;
		const char *why = NULL;
		char pbuf[64];
		memset(&req, 0, sizeof(req));
		req.type = CS_IPC_BIND;
		req.purpose = rm->bound[i].purpose;
		req.key = rm->bound[i];
		cs_err r = chan_exchange(c, &req, 0, buf, now_ms() + CS_IPC_REPLY_TIMEOUT_MS, &reply, &why);
		if (why != NULL) {
			cs_log_error("key process channel %u: %s (BIND again)", c->no, why);
			return CS_E_TOKEN_UNAVAILABLE;
		}
		if (r != CS_OK)
			return r;
		if (reply.status != CS_OK) {
			cs_log_error("the restarted key process refused key \"%s\" for %s: %s", req.key.label,
				     cs_key_purpose_text(&req.purpose, pbuf, sizeof(pbuf)),
				     cs_strerror(reply.status));
			continue;
		}
		rm->bound[kept++] = rm->bound[i];
	}
	rm->nbound = kept;
	return CS_OK;
}

/* ---- open / replace / close ------------------------------------------------ */

static int fds_valid(const int *fds, size_t nfds)
{
	if (fds == NULL || nfds == 0 || nfds > CS_TOKEN_REMOTE_CHANNELS_MAX)
		return 0;
	for (size_t i = 0; i < nfds; i++)
		if (fds[i] < 0)
			return 0;
	return 1;
}

static void close_fds(const int *fds, size_t nfds)
{
	for (size_t i = 0; fds != NULL && i < nfds && i < CS_TOKEN_REMOTE_CHANNELS_MAX; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

cs_err cs_token_open_remote(const int *fds, size_t nfds, cs_token **out)
{
	cs_err r = CS_E_NOMEM;
	if (out != NULL)
		*out = NULL;
	if (out == NULL || !fds_valid(fds, nfds)) {
		close_fds(fds, nfds);
		return CS_E_INVALID_ARG;
	}
	cs_token *t = calloc(1, sizeof(*t));
	struct tok_remote *rm = calloc(1, sizeof(*rm));
	if (t == NULL || rm == NULL) {
		free(t);
		free(rm);
		close_fds(fds, nfds);
		return CS_E_NOMEM;
	}
	pthread_mutex_init(&rm->lock, NULL);
	pthread_mutex_init(&rm->bind_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rm->cond, &ca);
	pthread_condattr_destroy(&ca);
	t->remote = rm;
	if ((r = chans_new(fds, nfds, rm->chans)) != CS_OK)
		goto fail;
	rm->nchans = nfds;
	if ((r = hello_all(rm->chans, rm->nchans, &rm->random_max)) != CS_OK)
		goto fail;
	cs_log_debug("key process reached on %zu channels", nfds);
	*out = t;
	return CS_OK;
fail:
	cs_token_close(t);
	return r;
}

cs_err cs_token_remote_replace(cs_token *t, const int *fds, size_t nfds)
{
	tok_chan *fresh[CS_TOKEN_REMOTE_CHANNELS_MAX];
	size_t random_max = 0;
	if (t == NULL || t->remote == NULL || !fds_valid(fds, nfds)) {
		close_fds(fds, nfds);
		return CS_E_INVALID_ARG;
	}
	struct tok_remote *rm = t->remote;
	cs_err r = chans_new(fds, nfds, fresh);
	if (r != CS_OK)
		return r;
	pthread_mutex_lock(&rm->bind_lock);
	if ((r = hello_all(fresh, nfds, &random_max)) == CS_OK)
		r = rebind_all(rm, fresh[0]);
	if (r != CS_OK) {
		pthread_mutex_unlock(&rm->bind_lock);
		for (size_t i = 0; i < nfds; i++)
			chan_free(fresh[i]);
		return r;
	}
	pthread_mutex_lock(&rm->lock);
	for (size_t i = 0; i < rm->nchans; i++) {
		tok_chan *c = rm->chans[i];
		if (c->busy) {
			c->retired = 1; /* its call frees it */
			c->dead = 1;
		} else {
			chan_free(c);
		}
		rm->chans[i] = NULL;
	}
	for (size_t i = 0; i < nfds; i++)
		rm->chans[i] = fresh[i];
	rm->nchans = nfds;
	rm->random_max = random_max;
	pthread_cond_broadcast(&rm->cond);
	pthread_mutex_unlock(&rm->lock);
	size_t nbound = rm->nbound;
	pthread_mutex_unlock(&rm->bind_lock);
	cs_log_info("key process channels replaced (%zu channels, %zu keys bound again)", nfds, nbound);
	return CS_OK;
}

int cs_token_is_remote(const cs_token *t)
{
	return t != NULL && t->remote != NULL;
}

void tok_remote_close(cs_token *t)
{
	struct tok_remote *rm = t->remote;
	for (size_t i = 0; i < rm->nchans; i++)
		chan_free(rm->chans[i]);
	pthread_cond_destroy(&rm->cond);
	pthread_mutex_destroy(&rm->lock);
	pthread_mutex_destroy(&rm->bind_lock);
	cs_wipe(rm, sizeof(*rm));
	free(rm);
	free(t);
}

/* ---- operations -------------------------------------------------------------- */

static int key_ref_ok(const cs_key_ref *k)
{
	return k != NULL && memchr(k->label, '\0', sizeof(k->label)) != NULL && k->id_len <= CS_KEY_ID_MAX;
}

cs_err tok_remote_get_info(cs_token *t, cs_token_info *info)
{
	uint8_t buf[CS_IPC_FRAME_MAX + 1];
	cs_ipc_request req;
	cs_ipc_reply reply;
	if (info == NULL)
		return CS_E_INVALID_ARG;
	memset(info, 0, sizeof(*info));
	memset(&req, 0, sizeof(req));
	req.type = CS_IPC_INFO;
	cs_err r = remote_call(t, &req, 0, buf, &reply);
	if (r != CS_OK)
		return r;
	*info = reply.info;
	pthread_mutex_lock(&t->remote->lock);
	t->remote->recoveries = (unsigned long)reply.recoveries;
	t->remote->reinits = (unsigned long)reply.reinitializations;
	pthread_mutex_unlock(&t->remote->lock);
	return CS_OK;
}

unsigned long tok_remote_recoveries(cs_token *t)
{
	pthread_mutex_lock(&t->remote->lock);
	unsigned long n = t->remote->recoveries;
	pthread_mutex_unlock(&t->remote->lock);
	return n;
}

unsigned long tok_remote_reinitializations(cs_token *t)
{
	pthread_mutex_lock(&t->remote->lock);
	unsigned long n = t->remote->reinits;
	pthread_mutex_unlock(&t->remote->lock);
	return n;
}

size_t tok_remote_random_max(cs_token *t)
{
	pthread_mutex_lock(&t->remote->lock);
	size_t n = t->remote->random_max;
	pthread_mutex_unlock(&t->remote->lock);
	return n;
}

/* The draw in requests of at most CS_IPC_RANDOM_MAX bytes, each on a
 * channel of its own choosing. */
cs_err tok_remote_random(cs_token *t, uint8_t *buf, size_t n)
{
	/* the frame the random bytes arrive in: from the secure heap when the
	 * process has one (mlocked, MADV_DONTDUMP), else the ordinary heap */
	const size_t frame_len = CS_IPC_FRAME_MAX + 1;
	cs_ipc_request req;
	cs_ipc_reply reply;
	cs_err r = CS_OK;
	if (buf == NULL && n > 0)
		return CS_E_INVALID_ARG;
	uint8_t *frame = CRYPTO_secure_malloc_initialized() ? OPENSSL_secure_malloc(frame_len) : NULL;
	if (frame == NULL && (frame = OPENSSL_malloc(frame_len)) == NULL) {
		memset(buf, 0, n);
		return CS_E_NOMEM;
	}
	memset(&req, 0, sizeof(req));
	req.type = CS_IPC_RANDOM;
	for (size_t off = 0; off < n && r == CS_OK;) {
		size_t chunk = n - off < CS_IPC_RANDOM_MAX ? n - off : CS_IPC_RANDOM_MAX;
		req.n = (uint32_t)chunk;
		if ((r = remote_call(t, &req, req.n, frame, &reply)) == CS_OK) {
			if (reply.data_len != chunk) {
				r = CS_E_IPC; /* the codec checks it; never trust a short draw */
			} else {
				memcpy(buf + off, reply.data, chunk);
				off += chunk;
			}
		}
		cs_wipe(frame, frame_len);
	}
	if (CRYPTO_secure_allocated(frame))
		OPENSSL_secure_clear_free(frame, frame_len);
	else
		OPENSSL_clear_free(frame, frame_len);
	cs_wipe(&reply, sizeof(reply));
	if (r != CS_OK && n > 0)
		memset(buf, 0, n); /* never a partly filled buffer */
	return r;
}

cs_err tok_remote_find_key(cs_token *t, const cs_key_ref *query, cs_key_ref *found)
{
	uint8_t buf[CS_IPC_FRAME_MAX + 1];
	cs_ipc_request req;
	cs_ipc_reply reply;
	if (found == NULL || !key_ref_ok(query))
		return CS_E_INVALID_ARG;
	memset(&req, 0, sizeof(req));
	req.type = CS_IPC_FIND_KEY;
	req.key = *query;
	memset(&req.key.purpose, 0, sizeof(req.key.purpose));
	memset(found, 0, sizeof(*found));
	cs_err r = remote_call(t, &req, 0, buf, &reply);
	if (r != CS_OK)
		return r;
	*found = reply.key;
	found->purpose = query->purpose;
	return CS_OK;
}

cs_err tok_remote_public_key(cs_token *t, const cs_key_ref *key, EVP_PKEY **out)
{
	uint8_t buf[CS_IPC_FRAME_MAX + 1];
	cs_ipc_request req;
	cs_ipc_reply reply;
	if (out == NULL || !key_ref_ok(key))
		return CS_E_INVALID_ARG;
	*out = NULL;
	memset(&req, 0, sizeof(req));
	req.type = CS_IPC_PUBLIC_KEY;
	req.key = *key;
	memset(&req.key.purpose, 0, sizeof(req.key.purpose));
	cs_err r = remote_call(t, &req, 0, buf, &reply);
	if (r != CS_OK)
		return r;
	return cs_spki_to_pkey(reply.data, reply.data_len, out);
}

/* A SIGN or BIND needs a purpose the frame can carry: NONE is refused here
 * (the key process would refuse it too). */
static int purpose_ok(const cs_key_ref *key, const char *what)
{
	if (key->purpose.kind >= CS_KEY_PURPOSE_CERTIFICATE && key->purpose.kind <= CS_KEY_PURPOSE_PROFILE)
		return 1;
	cs_log_error("%s with key \"%s\" names no purpose: the key process refuses it", what, key->label);
	return 0;
}

cs_err tok_remote_sign_es256(cs_token *t, const cs_key_ref *key, const uint8_t digest[32],
			     cs_es256_sig *sig)
{
	uint8_t buf[CS_IPC_FRAME_MAX + 1];
	cs_ipc_request req;
	cs_ipc_reply reply;
	if (sig == NULL || digest == NULL || !key_ref_ok(key))
		return CS_E_INVALID_ARG;
	memset(sig, 0, sizeof(*sig));
	if (!purpose_ok(key, "a signature"))
		return CS_E_KEY_PURPOSE;
	memset(&req, 0, sizeof(req));
	req.type = CS_IPC_SIGN;
	req.purpose = key->purpose;
	req.key = *key;
	memcpy(req.digest, digest, 32);
	cs_err r = remote_call(t, &req, 0, buf, &reply);
	if (r != CS_OK)
		return r;
	*sig = reply.sig;
	return CS_OK;
}

cs_err tok_remote_mechanisms(cs_token *t, cs_token_mechanism out[CS_TOKEN_MECHANISMS])
{
	static const struct {
		const char *name;
		unsigned needs;
	} names[CS_TOKEN_MECHANISMS] = {
		{"CKM_ECDSA", CS_TOKEN_NEEDS_SIGN},
		{"CKM_EC_KEY_PAIR_GEN", CS_TOKEN_NEEDS_GENERATE},
	};
	uint8_t buf[CS_IPC_FRAME_MAX + 1];
	cs_ipc_request req;
	cs_ipc_reply reply;
	if (out == NULL)
		return CS_E_INVALID_ARG;
	memset(out, 0, CS_TOKEN_MECHANISMS * sizeof(*out));
	memset(&req, 0, sizeof(req));
	req.type = CS_IPC_MECHANISMS;
	cs_err r = remote_call(t, &req, 0, buf, &reply);
	if (r != CS_OK)
		return r;
	for (size_t i = 0; i < CS_TOKEN_MECHANISMS; i++) {
		out[i] = reply.mech[i];
		out[i].name = names[i].name;
		out[i].needs = names[i].needs;
	}
	return CS_OK;
}

static int same_binding(const cs_key_ref *a, const cs_key_ref *b)
{
	return a->purpose.kind == b->purpose.kind && strcmp(a->purpose.profile, b->purpose.profile) == 0 &&
	       strcmp(a->label, b->label) == 0 && a->id_len == b->id_len &&
	       memcmp(a->id, b->id, a->id_len) == 0;
}

cs_err tok_remote_bind_key(cs_token *t, const cs_key_ref *key)
{
	uint8_t buf[CS_IPC_FRAME_MAX + 1];
	cs_ipc_request req;
	cs_ipc_reply reply;
	struct tok_remote *rm = t->remote;
	if (!key_ref_ok(key))
		return CS_E_INVALID_ARG;
	if (!purpose_ok(key, "a key binding"))
		return CS_E_KEY_PURPOSE;
	memset(&req, 0, sizeof(req));
	req.type = CS_IPC_BIND;
	req.purpose = key->purpose;
	req.key = *key;
	pthread_mutex_lock(&rm->bind_lock);
	cs_err r = remote_call(t, &req, 0, buf, &reply);
	if (r == CS_OK) {
		size_t i = 0;
		while (i < rm->nbound && !same_binding(&rm->bound[i], key))
			i++;
		if (i == rm->nbound && rm->nbound < CS_KEYPROC_BINDINGS_MAX)
			rm->bound[rm->nbound++] = *key;
	}
	pthread_mutex_unlock(&rm->bind_lock);
	if (r == CS_E_KEY_PURPOSE) {
		char pbuf[64];
		cs_log_error("the key process refused key \"%s\" for %s", key->label,
			     cs_key_purpose_text(&key->purpose, pbuf, sizeof(pbuf)));
	}
	return r;
}

cs_err tok_remote_forbidden(cs_token *t, const char *what)
{
	(void)t;
	cs_log_error("%s is not done through the key process", what);
	return CS_E_KEY_FORBIDDEN;
}
