/*
 * prov_store: OSSL_STORE for pkcs11: URIs naming a key (object= and/or id=,
 * token attributes, pin-source). Each URI yields up to two objects: the key
 * with its private half (a reference into the token), then the public key.
 *
 * The ctx parameter CS_PROVIDER_STORE_PARAM_PURPOSE ("credsign-key-purpose":
 * "certificate", "tls" or "profile:NAME") names what the key signs for: the
 * key reference carries it, and the resolved key is bound to it
 * (cs_token_bind_key) before it is handed out; a refusal fails the load
 * with the reason on the error queue.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/params.h>
#include <openssl/store.h>

#include "prov_internal.h"
#include "provider.h"
#include "token_ipc.h"

typedef struct {
	prov_ctx *pctx;
	char *uri;
	int expect; /* OSSL_STORE_INFO_* or 0 */
	int stage;  /* 0: private key next, 1: public key next, 2: done */
	int resolved;
	cs_key_purpose purpose; /* NONE unless the ctx parameter names one */
	const char *bad_param;  /* a ctx parameter was refused: every load fails */
	prov_key_reference ref;
} store_ctx;

static void *st_open(void *provctx, const char *uri)
{
	if (uri == NULL || strncmp(uri, "pkcs11:", 7) != 0)
		return NULL;
	store_ctx *c = calloc(1, sizeof(*c));
	if (c == NULL || (c->uri = strdup(uri)) == NULL) {
		free(c);
		return NULL;
	}
	c->pctx = provctx;
	return c;
}

static const OSSL_PARAM *st_settable_ctx_params(void *provctx)
{
	static const OSSL_PARAM params[] = {
		OSSL_PARAM_int(OSSL_STORE_PARAM_EXPECT, NULL),
		OSSL_PARAM_utf8_string(CS_PROVIDER_STORE_PARAM_PURPOSE, NULL, 0),
		OSSL_PARAM_END,
	};
	(void)provctx;
	return params;
}

/* "certificate", "tls", "profile:NAME" (NAME: 1..CS_KEY_PROFILE_NAME_MAX
 * bytes of [a-z0-9._-]) -> purpose; 0 for anything else. */
static int parse_purpose(const char *text, cs_key_purpose *out)
{
	memset(out, 0, sizeof(*out));
	if (strcmp(text, "certificate") == 0) {
		out->kind = CS_KEY_PURPOSE_CERTIFICATE;
		return 1;
	}
	if (strcmp(text, "tls") == 0) {
		out->kind = CS_KEY_PURPOSE_TLS;
		return 1;
	}
	if (strncmp(text, "profile:", 8) != 0)
		return 0;
	const char *name = text + 8;
	size_t len = strlen(name);
	if (len == 0 || len > CS_KEY_PROFILE_NAME_MAX || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789._-") != len)
		return 0;
	out->kind = CS_KEY_PURPOSE_PROFILE;
	memcpy(out->profile, name, len + 1);
	return 1;
}

/* A malformed parameter is not refused here but by every load: OpenSSL 3.0's
 * OSSL_STORE_open_ex closes a context whose parameters were refused and then
 * returns it all the same (freed; fixed in later releases). */
static int st_set_ctx_params(void *ctx, const OSSL_PARAM params[])
{
	store_ctx *c = ctx;
	const OSSL_PARAM *p = OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_EXPECT);
	if (p != NULL && !OSSL_PARAM_get_int(p, &c->expect))
		c->bad_param = OSSL_STORE_PARAM_EXPECT;
	p = OSSL_PARAM_locate_const(params, CS_PROVIDER_STORE_PARAM_PURPOSE);
	if (p != NULL) {
		const char *text = NULL;
		if (!OSSL_PARAM_get_utf8_string_ptr(p, &text) || !parse_purpose(text, &c->purpose))
			c->bad_param = CS_PROVIDER_STORE_PARAM_PURPOSE;
	}
	return 1;
}

/* Find the key once: token (opened at first use), reference, public point. */
static int resolve(store_ctx *c)
{
	cs_token *token = NULL;
	cs_key_ref query;
	EVP_PKEY *pub = NULL;
	size_t len = 0;
	cs_err r = cs_key_ref_from_uri(c->uri, &query);
	if (r != CS_OK) {
		prov_raise(c->pctx, r, "%s: a key URI needs object= or id=", c->uri);
		return 0;
	}
	if (prov_token(c->pctx, c->uri, &token) != CS_OK)
		return 0;
	query.purpose = c->purpose;
	if ((r = cs_token_find_key(token, &query, &c->ref.ref)) != CS_OK ||
	    (r = cs_token_public_key(token, &c->ref.ref, &pub)) != CS_OK) {
		prov_raise(c->pctx, r, "%s: %s", c->uri, cs_strerror(r));
		return 0;
	}
	if (c->purpose.kind != CS_KEY_PURPOSE_NONE && (r = cs_token_bind_key(token, &c->ref.ref)) != CS_OK) {
		char text[64];
		prov_raise(c->pctx, r, "%s: the key cannot serve %s: %s", c->uri,
			   cs_key_purpose_text(&c->purpose, text, sizeof(text)), cs_strerror(r));
		EVP_PKEY_free(pub);
		return 0;
	}
	int ok = EVP_PKEY_get_octet_string_param(pub, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
						 c->ref.point, sizeof(c->ref.point), &len) &&
		 len == sizeof(c->ref.point);
	EVP_PKEY_free(pub);
	c->ref.magic = PROV_KEY_REF_MAGIC;
	c->ref.pctx = c->pctx;
	c->resolved = ok;
	return ok;
}

static int emit(store_ctx *c, int has_private, OSSL_CALLBACK *cb, void *cbarg)
{
	int type = OSSL_OBJECT_PKEY;
	char data_type[] = "EC";
	char desc[] = "credsign PKCS#11 token key";
	c->ref.has_private = has_private;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &type),
		OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE, data_type, 0),
		OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_REFERENCE, &c->ref, sizeof(c->ref)),
		OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DESC, desc, 0),
		OSSL_PARAM_construct_end(),
	};
	return cb(params, cbarg);
}

static int st_load(void *ctx, OSSL_CALLBACK *object_cb, void *object_cbarg,
		   OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
	store_ctx *c = ctx;
	(void)pw_cb;
	(void)pw_cbarg;
	if (c->bad_param != NULL) {
		prov_raise(c->pctx, CS_E_INVALID_ARG, "%s: %s", c->bad_param,
			   strcmp(c->bad_param, OSSL_STORE_PARAM_EXPECT) == 0
				   ? "not an OSSL_STORE_INFO type"
				   : "not a key purpose (certificate, tls, profile:NAME)");
		c->stage = 2;
		return 0;
	}
	if (!c->resolved && !resolve(c)) {
		c->stage = 2;
		return 0;
	}
	while (c->stage < 2) {
		int has_private = c->stage == 0;
		c->stage++;
		if (has_private && c->expect == OSSL_STORE_INFO_PUBKEY)
			continue;
		if (!has_private && c->expect == OSSL_STORE_INFO_PKEY)
			continue;
		return emit(c, has_private, object_cb, object_cbarg);
	}
	return 0;
}

static int st_eof(void *ctx)
{
	return ((store_ctx *)ctx)->stage >= 2;
}

static int st_close(void *ctx)
{
	store_ctx *c = ctx;
	free(c->uri);
	free(c);
	return 1;
}

const OSSL_DISPATCH prov_store_functions[] = {
	{OSSL_FUNC_STORE_OPEN, (void (*)(void))st_open},
	{OSSL_FUNC_STORE_SETTABLE_CTX_PARAMS, (void (*)(void))st_settable_ctx_params},
	{OSSL_FUNC_STORE_SET_CTX_PARAMS, (void (*)(void))st_set_ctx_params},
	{OSSL_FUNC_STORE_LOAD, (void (*)(void))st_load},
	{OSSL_FUNC_STORE_EOF, (void (*)(void))st_eof},
	{OSSL_FUNC_STORE_CLOSE, (void (*)(void))st_close},
	{0, NULL},
};
