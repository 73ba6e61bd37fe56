/*
 * prov_rand: a RAND whose every byte comes from the token's C_GenerateRandom.
 * No DRBG runs in OpenSSL on top of it; the token is the random bit
 * generator. Usable as the libctx's DRBG type (cs_provider_use_token_rng).
 *
 * Token calls are batched: a small request (below RAND_BATCH_MIN bytes, as
 * a TLS 1.3 handshake makes two: its random and its key share, 32 bytes
 * each) is served from a buffer that one call fills with up to
 * cs_token_random_max() bytes; larger ones (the 64 bytes of an ECDSA
 * nonce) are drawn directly, so a handshake costs about 1.25 token calls
 * instead of three (tests/bench/token_calls.sh). What the buffer holds is secret in the way a
 * DRBG's state is (it is the next requests' output): bytes handed out are
 * wiped from it at once, the rest when the context is uninstantiated or
 * freed, and in a forked child before its first use (the child never
 * repeats its parent's bytes). A request with prediction resistance, or
 * of RAND_BATCH_MIN bytes or more, is drawn directly.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "prov_internal.h"

#define RAND_STRENGTH 256
#define RAND_MAX_REQUEST (1 << 16)
#define RAND_BATCH_MIN 64

/* OpenSSL serialises the calls on one context (per-thread DRBGs, or the
 * lock below when it enables locking). */
typedef struct {
	prov_ctx *pctx;
	int state;
	pthread_mutex_t *lock;
	pid_t pid;                              /* the process the buffer was filled in */
	size_t len, used;                       /* buf[used..len) not handed out yet */
	uint8_t buf[CS_TOKEN_RANDOM_MAX_CALL];  /* drawn ahead: secret */
} rand_ctx;

static void batch_wipe(rand_ctx *c)
{
	OPENSSL_cleanse(c->buf, sizeof(c->buf));
	c->len = c->used = 0;
}

static void *rnd_newctx(void *provctx, void *parent, const OSSL_DISPATCH *parent_calls)
{
	(void)parent;
	(void)parent_calls;
	rand_ctx *c = calloc(1, sizeof(*c));
	if (c != NULL) {
		c->pctx = provctx;
		c->state = EVP_RAND_STATE_UNINITIALISED;
	}
	return c;
}

static void rnd_freectx(void *ctx)
{
	rand_ctx *c = ctx;
	if (c == NULL)
		return;
	batch_wipe(c);
	if (c->lock != NULL) {
		pthread_mutex_destroy(c->lock);
		free(c->lock);
	}
	free(c);
}

static int rnd_instantiate(void *ctx, unsigned int strength, int prediction_resistance,
			   const unsigned char *pstr, size_t pstr_len, const OSSL_PARAM params[])
{
	rand_ctx *c = ctx;
	cs_token *token = NULL;
	(void)prediction_resistance;
	(void)pstr;
	(void)pstr_len;
	(void)params;
	if (strength > RAND_STRENGTH || prov_token(c->pctx, NULL, &token) != CS_OK) {
		c->state = EVP_RAND_STATE_ERROR;
		return 0;
	}
	c->state = EVP_RAND_STATE_READY;
	return 1;
}

static int rnd_uninstantiate(void *ctx)
{
	rand_ctx *c = ctx;
	batch_wipe(c);
	c->state = EVP_RAND_STATE_UNINITIALISED;
	return 1;
}

/* out[n] (n < RAND_BATCH_MIN) from the batch, refilled by one token call
 * when it holds fewer than n bytes. */
static cs_err batch_take(rand_ctx *c, cs_token *token, unsigned char *out, size_t n)
{
	if (c->pid != getpid())
		batch_wipe(c); /* filled in the parent of this process */
	if (c->len - c->used < n) {
		size_t fill = cs_token_random_max(token);
		if (fill > sizeof(c->buf))
			fill = sizeof(c->buf);
		if (fill < n)
			return cs_token_random(token, out, n);
		batch_wipe(c);
		cs_err r = cs_token_random(token, c->buf, fill);
		if (r != CS_OK)
			return r;
		c->len = fill;
		c->pid = getpid();
	}
	memcpy(out, c->buf + c->used, n);
	OPENSSL_cleanse(c->buf + c->used, n);
	c->used += n;
	return CS_OK;
}

static int rnd_generate(void *ctx, unsigned char *out, size_t outlen, unsigned int strength,
			int prediction_resistance, const unsigned char *adin, size_t adinlen)
{
	rand_ctx *c = ctx;
	cs_token *token = NULL;
	(void)adin;
	(void)adinlen;
	if (c->state != EVP_RAND_STATE_READY || strength > RAND_STRENGTH)
		return 0;
	if (prov_token(c->pctx, NULL, &token) != CS_OK)
		return 0;
	cs_err r = prediction_resistance || outlen >= RAND_BATCH_MIN
			   ? cs_token_random(token, out, outlen)
			   : batch_take(c, token, out, outlen);
	if (r != CS_OK) {
		prov_raise(c->pctx, r, "token RNG: %s", cs_strerror(r));
		return 0;
	}
	return 1;
}

static int rnd_reseed(void *ctx, int prediction_resistance, const unsigned char *ent,
		      size_t ent_len, const unsigned char *adin, size_t adin_len)
{
	(void)prediction_resistance;
	(void)ent;
	(void)ent_len;
	(void)adin;
	(void)adin_len;
	batch_wipe(ctx); /* what follows is drawn after the reseed */
	return 1; /* the token reseeds itself */
}

static int rnd_enable_locking(void *ctx)
{
	rand_ctx *c = ctx;
	if (c->lock == NULL) {
		if ((c->lock = malloc(sizeof(*c->lock))) == NULL)
			return 0;
		pthread_mutex_init(c->lock, NULL);
	}
	return 1;
}

static int rnd_lock(void *ctx)
{
	rand_ctx *c = ctx;
	return c->lock == NULL || pthread_mutex_lock(c->lock) == 0;
}

static void rnd_unlock(void *ctx)
{
	rand_ctx *c = ctx;
	if (c->lock != NULL)
		pthread_mutex_unlock(c->lock);
}

static int rnd_get_ctx_params(void *ctx, OSSL_PARAM params[])
{
	rand_ctx *c = ctx;
	OSSL_PARAM *p;
	if ((p = OSSL_PARAM_locate(params, OSSL_RAND_PARAM_STATE)) != NULL &&
	    !OSSL_PARAM_set_int(p, c->state))
		return 0;
	if ((p = OSSL_PARAM_locate(params, OSSL_RAND_PARAM_STRENGTH)) != NULL &&
	    !OSSL_PARAM_set_uint(p, RAND_STRENGTH))
		return 0;
	if ((p = OSSL_PARAM_locate(params, OSSL_RAND_PARAM_MAX_REQUEST)) != NULL &&
	    !OSSL_PARAM_set_size_t(p, RAND_MAX_REQUEST))
		return 0;
	return 1;
}

static const OSSL_PARAM *rnd_gettable_ctx_params(void *ctx, void *provctx)
{
	static const OSSL_PARAM params[] = {
		OSSL_PARAM_int(OSSL_RAND_PARAM_STATE, NULL),
		OSSL_PARAM_uint(OSSL_RAND_PARAM_STRENGTH, NULL),
		OSSL_PARAM_size_t(OSSL_RAND_PARAM_MAX_REQUEST, NULL),
		OSSL_PARAM_END,
	};
	(void)ctx;
	(void)provctx;
	return params;
}

static int rnd_verify_zeroization(void *ctx)
{
	rand_ctx *c = ctx;
	for (size_t i = 0; i < sizeof(c->buf); i++)
		if (c->buf[i] != 0)
			return 0;
	return 1;
}

const OSSL_DISPATCH prov_rand_functions[] = {
	{OSSL_FUNC_RAND_NEWCTX, (void (*)(void))rnd_newctx},
	{OSSL_FUNC_RAND_FREECTX, (void (*)(void))rnd_freectx},
	{OSSL_FUNC_RAND_INSTANTIATE, (void (*)(void))rnd_instantiate},
	{OSSL_FUNC_RAND_UNINSTANTIATE, (void (*)(void))rnd_uninstantiate},
	{OSSL_FUNC_RAND_GENERATE, (void (*)(void))rnd_generate},
	{OSSL_FUNC_RAND_RESEED, (void (*)(void))rnd_reseed},
	{OSSL_FUNC_RAND_ENABLE_LOCKING, (void (*)(void))rnd_enable_locking},
	{OSSL_FUNC_RAND_LOCK, (void (*)(void))rnd_lock},
	{OSSL_FUNC_RAND_UNLOCK, (void (*)(void))rnd_unlock},
	{OSSL_FUNC_RAND_GET_CTX_PARAMS, (void (*)(void))rnd_get_ctx_params},
	{OSSL_FUNC_RAND_GETTABLE_CTX_PARAMS, (void (*)(void))rnd_gettable_ctx_params},
	{OSSL_FUNC_RAND_VERIFY_ZEROIZATION, (void (*)(void))rnd_verify_zeroization},
	{0, NULL},
};
