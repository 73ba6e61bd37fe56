/*
 * keyproc: the key process's server (keyproc.h). One thread per channel,
 * a dispatch table with the state each request needs, strict decoding
 * through token_ipc.h, exactly one reply per request.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "cs_log.h"
#include "cs_secret.h"
#include "keyproc.h"
#include "token_ipc.h"
#include "token_meter.h"

typedef struct {
	cs_key_purpose purpose;
	cs_key_ref ref;  /* as resolved: full label and id */
	char *setting;   /* the configuration setting; NULL for a key bound by BIND */
} kp_binding;

/* Refusal reasons, for the rate limit of their logs. */
typedef enum {
	RF_STATE,     /* not permitted in the channel's state */
	RF_MALFORMED, /* the codec refused the frame */
	RF_PURPOSE,   /* SIGN with a key not bound to the purpose */
	RF_BIND_TLS,  /* BIND for TLS of a key that is not the configured one */
	RF_BIND_OTHER, /* BIND of a key bound to another purpose */
	RF_BIND_FULL, /* CS_KEYPROC_BINDINGS_MAX reached */
	RF_COUNT
} kp_refusal;
#define KP_TYPES 9 /* 0 (unknown) and CS_IPC_HELLO..CS_IPC_BIND */
#define KP_LOG_INTERVAL_S 60

struct cs_keyproc {
	cs_token *token;
	pthread_mutex_t lock; /* guards everything below */
	kp_binding bindings[CS_KEYPROC_BINDINGS_MAX];
	size_t nbindings;
	/* the refusal log's rate limit: last time logged (CLOCK_MONOTONIC s,
	 * 0 never) and refusals not logged since */
	long long logged_at[KP_TYPES][RF_COUNT];
	unsigned long suppressed[KP_TYPES][RF_COUNT];
	int served; /* cs_keyproc_serve was called */
};

typedef enum { CH_NEW, CH_READY } kp_state;

typedef struct {
	cs_keyproc *kp;
	int fd;
	unsigned no; /* 1.., for logs */
	kp_state state;
} kp_channel;

/* ---- helpers ----------------------------------------------------------------- */

static int purpose_equal(const cs_key_purpose *a, const cs_key_purpose *b)
{
	return a->kind == b->kind && (a->kind != CS_KEY_PURPOSE_PROFILE || strcmp(a->profile, b->profile) == 0);
}

static int same_key(const cs_key_ref *a, const cs_key_ref *b)
{
	return strcmp(a->label, b->label) == 0 && a->id_len == b->id_len && memcmp(a->id, b->id, a->id_len) == 0;
}

static long long now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec + 1; /* never 0: 0 means "never logged" */
}

/* Log a refusal at warning, at most once per (type, reason) per minute. */
static void refusal(cs_keyproc *kp, unsigned type, kp_refusal why, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void refusal(cs_keyproc *kp, unsigned type, kp_refusal why, const char *fmt, ...)
{
	unsigned ti = type < KP_TYPES ? type : 0;
	long long now = now_s();
	unsigned long skipped = 0;
	pthread_mutex_lock(&kp->lock);
	long long *at = &kp->logged_at[ti][why];
	int log = *at == 0 || now - *at >= KP_LOG_INTERVAL_S;
	if (log) {
		*at = now;
		skipped = kp->suppressed[ti][why];
		kp->suppressed[ti][why] = 0;
	} else {
		kp->suppressed[ti][why]++;
	}
	pthread_mutex_unlock(&kp->lock);
	if (!log)
		return;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (skipped > 0)
		cs_log_warn("key process refused %s: %s (%lu more such refusals not logged)", cs_ipc_type_name(type),
			    msg, skipped);
	else
		cs_log_warn("key process refused %s: %s", cs_ipc_type_name(type), msg);
}

/* The binding of a resolved key, or NULL. Caller holds the lock. */
static kp_binding *binding_of(cs_keyproc *kp, const cs_key_ref *ref)
{
	for (size_t i = 0; i < kp->nbindings; i++)
		if (same_key(&kp->bindings[i].ref, ref))
			return &kp->bindings[i];
	return NULL;
}

/* ---- prepare / free ---------------------------------------------------------- */

static cs_err prepare_one(cs_keyproc *kp, const cs_keyproc_key *k)
{
	char pbuf[64], obuf[64];
	cs_key_ref query, found;
	if (k->uri == NULL || k->setting == NULL || k->purpose.kind < CS_KEY_PURPOSE_CERTIFICATE ||
	    k->purpose.kind > CS_KEY_PURPOSE_PROFILE)
		return CS_E_INVALID_ARG;
	cs_err r = cs_key_ref_from_uri(k->uri, &query);
	if (r != CS_OK) {
		cs_log_error("%s: not a usable pkcs11: key URI (%s)", k->setting, cs_strerror(r));
		return r;
	}
	query.purpose = k->purpose;
	if ((r = cs_token_find_key(kp->token, &query, &found)) != CS_OK) {
		cs_log_error("%s: the key process cannot use the key: %s", k->setting, cs_strerror(r));
		return r;
	}
	kp_binding *b = binding_of(kp, &found);
	if (b != NULL && purpose_equal(&b->purpose, &k->purpose))
		return CS_OK; /* named twice for the same purpose */
	if (b != NULL) {
		cs_log_error("key \"%s\" is configured for two purposes: %s (%s) and %s (%s); a key serves one "
			     "purpose",
			     found.label, b->setting, cs_key_purpose_text(&b->purpose, obuf, sizeof(obuf)),
			     k->setting, cs_key_purpose_text(&k->purpose, pbuf, sizeof(pbuf)));
		return CS_E_KEY_PURPOSE;
	}
	if (kp->nbindings >= CS_KEYPROC_BINDINGS_MAX)
		return CS_E_TOO_LARGE;
	b = &kp->bindings[kp->nbindings];
	if ((b->setting = strdup(k->setting)) == NULL)
		return CS_E_NOMEM;
	b->purpose = k->purpose;
	b->ref = found;
	b->ref.purpose = k->purpose;
	kp->nbindings++;
	cs_log_debug("%s: key \"%s\" serves %s", k->setting, found.label,
		     cs_key_purpose_text(&k->purpose, pbuf, sizeof(pbuf)));
	return CS_OK;
}

cs_err cs_keyproc_prepare(cs_token *token, const cs_keyproc_key *keys, size_t nkeys, cs_keyproc **out)
{
	if (out != NULL)
		*out = NULL;
	if (token == NULL || out == NULL || (keys == NULL && nkeys > 0) || nkeys > CS_KEYPROC_BINDINGS_MAX)
		return CS_E_INVALID_ARG;
	cs_keyproc *kp = calloc(1, sizeof(*kp));
	if (kp == NULL)
		return CS_E_NOMEM;
	kp->token = token;
	pthread_mutex_init(&kp->lock, NULL);
	for (size_t i = 0; i < nkeys; i++) {
		cs_err r = prepare_one(kp, &keys[i]);
		if (r != CS_OK) {
			cs_keyproc_free(kp);
			return r;
		}
	}
	*out = kp;
	return CS_OK;
}

void cs_keyproc_free(cs_keyproc *kp)
{
	if (kp == NULL)
		return;
	for (size_t i = 0; i < kp->nbindings; i++)
		free(kp->bindings[i].setting);
	pthread_mutex_destroy(&kp->lock);
	free(kp);
}

/* ---- handlers ----------------------------------------------------------------
 * Each fills reply (status and, on CS_OK, the answer); data it points to
 * lives in the caller's scratch buffer. */

/* A channel's buffers, from OpenSSL's secure heap when the process has one
 * (cs_confine_process: mlocked, MADV_DONTDUMP): random bytes pass through
 * them. */
typedef struct {
	uint8_t scratch[CS_IPC_FRAME_MAX]; /* RANDOM bytes, SPKI DER */
	uint8_t reply[CS_IPC_FRAME_MAX];   /* the encoded reply */
} kp_scratch;

static void h_hello(kp_channel *ch, const cs_ipc_request *req, cs_ipc_reply *rep, kp_scratch *sc)
{
	(void)req;
	(void)sc;
	size_t max = cs_token_random_max(ch->kp->token);
	rep->version = CS_IPC_VERSION;
	rep->random_max = (uint32_t)(max == 0 ? 1 : max > CS_IPC_RANDOM_MAX ? CS_IPC_RANDOM_MAX : max);
	ch->state = CH_READY;
}

static void h_info(kp_channel *ch, const cs_ipc_request *req, cs_ipc_reply *rep, kp_scratch *sc)
{
	(void)req;
	(void)sc;
	rep->status = cs_token_get_info(ch->kp->token, &rep->info);
	rep->recoveries = cs_token_recoveries(ch->kp->token);
	rep->reinitializations = cs_token_reinitializations(ch->kp->token);
}

static void h_random(kp_channel *ch, const cs_ipc_request *req, cs_ipc_reply *rep, kp_scratch *sc)
{
	/* the codec bounds n to 1..CS_IPC_RANDOM_MAX */
	rep->status = cs_token_random(ch->kp->token, sc->scratch, req->n);
	rep->data = sc->scratch;
	rep->data_len = req->n;
}

static void h_find_key(kp_channel *ch, const cs_ipc_request *req, cs_ipc_reply *rep, kp_scratch *sc)
{
	(void)sc;
	rep->status = cs_token_find_key(ch->kp->token, &req->key, &rep->key);
	memset(&rep->key.purpose, 0, sizeof(rep->key.purpose));
}

static void h_public_key(kp_channel *ch, const cs_ipc_request *req, cs_ipc_reply *rep, kp_scratch *sc)
{
	EVP_PKEY *pkey = NULL;
	rep->status = cs_token_public_key(ch->kp->token, &req->key, &pkey);
	if (rep->status != CS_OK)
		return;
	int len = i2d_PUBKEY(pkey, NULL);
	if (len <= 0 || len > CS_IPC_SPKI_MAX) {
		rep->status = CS_E_TOKEN_DATA;
	} else {
		uint8_t *p = sc->scratch;
		i2d_PUBKEY(pkey, &p);
		rep->data = sc->scratch;
		rep->data_len = (size_t)len;
	}
	EVP_PKEY_free(pkey);
}

static void h_sign(kp_channel *ch, const cs_ipc_request *req, cs_ipc_reply *rep, kp_scratch *sc)
{
	cs_keyproc *kp = ch->kp;
	cs_key_ref ref;
	int bound = 0;
	(void)sc;
	pthread_mutex_lock(&kp->lock);
	kp_binding *b = binding_of(kp, &req->key);
	if (b != NULL && purpose_equal(&b->purpose, &req->purpose)) {
		ref = b->ref;
		bound = 1;
	}
	pthread_mutex_unlock(&kp->lock);
	if (!bound) {
		char pbuf[64];
		refusal(kp, CS_IPC_SIGN, RF_PURPOSE, "key \"%s\" is not configured for %s", req->key.label,
			cs_key_purpose_text(&req->purpose, pbuf, sizeof(pbuf)));
		rep->status = CS_E_KEY_PURPOSE;
		return;
	}
	rep->status = cs_token_sign_es256(kp->token, &ref, req->digest, &rep->sig);
}

static void h_mechanisms(kp_channel *ch, const cs_ipc_request *req, cs_ipc_reply *rep, kp_scratch *sc)
{
	(void)req;
	(void)sc;
	rep->status = cs_token_mechanisms(ch->kp->token, rep->mech);
	for (size_t i = 0; i < CS_TOKEN_MECHANISMS; i++) {
		rep->mech[i].name = NULL;
		rep->mech[i].needs = 0;
	}
}

static void h_bind(kp_channel *ch, const cs_ipc_request *req, cs_ipc_reply *rep, kp_scratch *sc)
{
	cs_keyproc *kp = ch->kp;
	char pbuf[64], obuf[64];
	cs_key_ref found;
	(void)sc;
	/* purpose NONE never decodes (the codec takes kinds 1..3) */
	if ((rep->status = cs_token_find_key(kp->token, &req->key, &found)) != CS_OK)
		return;
	cs_key_purpose_text(&req->purpose, pbuf, sizeof(pbuf));
	pthread_mutex_lock(&kp->lock);
	kp_binding *b = binding_of(kp, &found);
	kp_refusal why = RF_COUNT;
	int added = 0;
	if (b != NULL && purpose_equal(&b->purpose, &req->purpose))
		rep->status = CS_OK; /* bound already */
	else if (b != NULL)
		why = RF_BIND_OTHER;
	else if (req->purpose.kind == CS_KEY_PURPOSE_TLS)
		why = RF_BIND_TLS;
	else if (kp->nbindings >= CS_KEYPROC_BINDINGS_MAX)
		why = RF_BIND_FULL;
	if (b == NULL && why == RF_COUNT) {
		b = &kp->bindings[kp->nbindings++];
		b->purpose = req->purpose;
		b->ref = found;
		b->ref.purpose = req->purpose;
		b->setting = NULL;
		added = 1;
	}
	if (why == RF_BIND_OTHER)
		cs_key_purpose_text(&b->purpose, obuf, sizeof(obuf));
	pthread_mutex_unlock(&kp->lock);
	switch (why) {
	case RF_BIND_OTHER:
		refusal(kp, CS_IPC_BIND, why, "key \"%s\" serves %s, not %s", found.label, obuf, pbuf);
		break;
	case RF_BIND_TLS:
		refusal(kp, CS_IPC_BIND, why, "key \"%s\" is not the configured TLS key", found.label);
		break;
	case RF_BIND_FULL:
		refusal(kp, CS_IPC_BIND, why, "key \"%s\" for %s: %d keys are bound already", found.label, pbuf,
			CS_KEYPROC_BINDINGS_MAX);
		break;
	default:
		/* a key the network process bound (a successor after a ceremony):
		 * said, since the key process cannot check the officers' warrant */
		if (added) {
			char id[2 * CS_KEY_ID_MAX + 1];
			for (size_t i = 0; i < found.id_len; i++)
				snprintf(id + 2 * i, 3, "%02x", found.id[i]);
			id[2 * found.id_len] = '\0';
			cs_log_info("key process: key \"%s\" (id %s) bound for %s at the network process's request",
				    found.label, found.id_len > 0 ? id : "none", pbuf);
		}
		return;
	}
	rep->status = CS_E_KEY_PURPOSE;
}

typedef void (*kp_handler)(kp_channel *ch, const cs_ipc_request *req, cs_ipc_reply *rep, kp_scratch *sc);

static const struct {
	cs_ipc_type type;
	kp_state state; /* the state the request is permitted in */
	kp_handler handler;
} dispatch[] = {
	{CS_IPC_HELLO, CH_NEW, h_hello},
	{CS_IPC_INFO, CH_READY, h_info},
	{CS_IPC_RANDOM, CH_READY, h_random},
	{CS_IPC_FIND_KEY, CH_READY, h_find_key},
	{CS_IPC_PUBLIC_KEY, CH_READY, h_public_key},
	{CS_IPC_SIGN, CH_READY, h_sign},
	{CS_IPC_MECHANISMS, CH_READY, h_mechanisms},
	{CS_IPC_BIND, CH_READY, h_bind},
};

/* ---- the channel loop ---------------------------------------------------------- */

/* Send reply; 0 when the channel failed. The frame is wiped after (it may
 * carry random bytes). */
static int send_reply(kp_channel *ch, const cs_ipc_reply *rep, kp_scratch *sc)
{
	uint8_t *frame = sc->reply;
	size_t len = 0;
	cs_ipc_reply err;
	cs_err r = cs_ipc_encode_reply(rep, frame, sizeof(sc->reply), &len);
	if (r != CS_OK && rep->status != CS_OK && rep->cause_function[0] != '\0') {
		/* a cause the codec cannot carry: the error without it */
		memset(&err, 0, sizeof(err));
		err.type = rep->type;
		err.status = rep->status;
		r = cs_ipc_encode_reply(&err, frame, sizeof(sc->reply), &len);
	}
	if (r != CS_OK) {
		/* an answer the codec cannot carry (a token's out-of-range
		 * data): an explicit error instead */
		cs_log_error("key process channel %u: %s reply not encodable; answering %s", ch->no,
			     cs_ipc_type_name(rep->type), cs_err_name(CS_E_TOKEN_DATA));
		memset(&err, 0, sizeof(err));
		err.type = rep->type;
		err.status = CS_E_TOKEN_DATA;
		if (cs_ipc_encode_reply(&err, frame, sizeof(sc->reply), &len) != CS_OK)
			return 0;
	}
	ssize_t n;
	do
		n = send(ch->fd, frame, len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	cs_wipe(frame, len);
	if (n < 0 || (size_t)n != len) {
		cs_log_warn("key process channel %u: reply not sent (%s); channel closed", ch->no,
			    n < 0 ? strerror(errno) : "short send");
		return 0;
	}
	return 1;
}

/* The request type a malformed frame names (its header's, a reply type
 * counted as its request), or 0 when it names none we know. */
static unsigned frame_type(const uint8_t *frame, size_t len)
{
	if (len < 2)
		return 0;
	unsigned type = ((unsigned)frame[0] << 8 | frame[1]) & ~CS_IPC_REPLY;
	return type >= CS_IPC_HELLO && type <= CS_IPC_BIND ? type : 0;
}

/* An error reply's cause: this thread's last failing PKCS#11 call since
 * the handler started, when the codec can carry it (the meter's names all
 * are "C_" and letters). */
static void reply_cause(cs_ipc_reply *rep)
{
	const char *fn = NULL;
	CK_RV rv = CKR_OK;
	if (!cs_token_meter_last_failure(&fn, &rv) || rv == CKR_OK ||
	    strlen(fn) >= sizeof(rep->cause_function))
		return;
	memcpy(rep->cause_function, fn, strlen(fn) + 1);
	rep->cause_rv = (uint64_t)rv;
}

/* Serve one request frame; 0 when the channel is to be closed. */
static int serve_frame(kp_channel *ch, const uint8_t *frame, size_t len, kp_scratch *sc)
{
	cs_ipc_request req;
	cs_ipc_reply rep;
	memset(&rep, 0, sizeof(rep));
	cs_err r = cs_ipc_decode_request(frame, len, &req);
	if (r == CS_E_NOT_FOUND || (r != CS_OK && frame_type(frame, len) == 0)) {
		cs_log_warn("key process channel %u: a frame of unknown type (%zu bytes); channel closed", ch->no,
			    len);
		return 0;
	}
	if (r != CS_OK) {
		rep.type = (cs_ipc_type)frame_type(frame, len);
		refusal(ch->kp, rep.type, RF_MALFORMED, "malformed frame (%zu bytes)", len);
		rep.status = CS_E_IPC;
		return send_reply(ch, &rep, sc);
	}
	rep.type = req.type;
	size_t i = 0;
	while (i < sizeof(dispatch) / sizeof(dispatch[0]) && dispatch[i].type != req.type)
		i++;
	if (i == sizeof(dispatch) / sizeof(dispatch[0])) { /* the codec knows a type we do not */
		cs_log_warn("key process channel %u: no handler for %s; channel closed", ch->no,
			    cs_ipc_type_name(req.type));
		return 0;
	}
	if (dispatch[i].state != ch->state) {
		refusal(ch->kp, req.type, RF_STATE, "not permitted %s", ch->state == CH_NEW ? "before HELLO"
											     : "after HELLO");
		rep.status = CS_E_IPC;
	} else {
		/* the handler's failing PKCS#11 call, if any, goes with its error
		 * reply: the client's error messages name it (token_meter.h) */
		cs_token_meter_clear();
		dispatch[i].handler(ch, &req, &rep, sc);
		if (rep.status != CS_OK)
			reply_cause(&rep);
	}
	int ok = send_reply(ch, &rep, sc);
	if (req.type == CS_IPC_RANDOM)
		cs_wipe(sc->scratch, req.n);
	cs_wipe(&rep, sizeof(rep));
	return ok;
}

static void *channel_main(void *arg)
{
	kp_channel *ch = arg;
	uint8_t frame[CS_IPC_FRAME_MAX + 1];
	kp_scratch *sc = CRYPTO_secure_malloc_initialized() ? OPENSSL_secure_zalloc(sizeof(*sc)) : NULL;
	if (sc == NULL)
		sc = OPENSSL_zalloc(sizeof(*sc)); /* no secure heap, or it is full */
	if (sc == NULL) {
		cs_log_error("key process channel %u: out of memory; channel closed", ch->no);
		goto out;
	}
	for (;;) {
		ssize_t n = recv(ch->fd, frame, sizeof(frame), MSG_TRUNC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0)
			break; /* the peer closed it */
		if (n < 0) {
			if (errno != ECONNRESET)
				cs_log_warn("key process channel %u: receive failed (%s); channel closed", ch->no,
					    strerror(errno));
			break;
		}
		if ((size_t)n > CS_IPC_FRAME_MAX) {
			cs_log_warn("key process channel %u: a frame of %zd bytes (at most %d); channel closed",
				    ch->no, n, CS_IPC_FRAME_MAX);
			break;
		}
		if (!serve_frame(ch, frame, (size_t)n, sc))
			break;
	}
	cs_wipe(sc, sizeof(*sc));
	if (sc != NULL && CRYPTO_secure_allocated(sc))
		OPENSSL_secure_clear_free(sc, sizeof(*sc));
	else
		OPENSSL_clear_free(sc, sizeof(*sc));
out:
	cs_wipe(frame, sizeof(frame));
	close(ch->fd);
	ch->fd = -1;
	return NULL;
}

cs_err cs_keyproc_serve(cs_keyproc *kp, const int *fds, size_t nfds)
{
	kp_channel chans[CS_KEYPROC_CHANNELS_MAX];
	pthread_t threads[CS_KEYPROC_CHANNELS_MAX];
	size_t started = 0;
	cs_err r = CS_OK;
	if (kp == NULL || fds == NULL || nfds == 0 || nfds > CS_KEYPROC_CHANNELS_MAX || kp->served) {
		for (size_t i = 0; fds != NULL && i < nfds && i < CS_KEYPROC_CHANNELS_MAX; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		return CS_E_INVALID_ARG;
	}
	kp->served = 1;
	for (size_t i = 0; i < nfds; i++) {
		chans[i] = (kp_channel){kp, fds[i], (unsigned)i + 1, CH_NEW};
		int e = r == CS_OK ? pthread_create(&threads[i], NULL, channel_main, &chans[i]) : -1;
		if (e == 0) {
			started++;
			continue;
		}
		if (r == CS_OK)
			cs_log_error("key process: cannot start the thread of channel %zu (%s)", i + 1, strerror(e));
		r = CS_E_INTERNAL;
		close(fds[i]);
	}
	cs_log_debug("key process serving %zu channels", started);
	for (size_t i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	return r;
}
