/* prov_main: provider entry, dispatch, parameters, errors, token access. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/store.h>
#include <p11-kit/uri.h>

#include "cs_log.h"
#include "prov_internal.h"
#include "provider.h"

#define PROV_PROPS "provider=credsign-pkcs11"

static const OSSL_ALGORITHM keymgmt_algs[] = {
	{"EC:id-ecPublicKey:1.2.840.10045.2.1", PROV_PROPS, prov_keymgmt_functions,
	 "credsign PKCS#11 EC P-256 token keys"},
	{NULL, NULL, NULL, NULL},
};
static const OSSL_ALGORITHM signature_algs[] = {
	{"ECDSA", PROV_PROPS, prov_signature_functions, "ECDSA in the PKCS#11 token"},
	{NULL, NULL, NULL, NULL},
};
static const OSSL_ALGORITHM store_algs[] = {
	{"pkcs11", PROV_PROPS, prov_store_functions, "RFC 7512 pkcs11: URIs"},
	{NULL, NULL, NULL, NULL},
};
static const OSSL_ALGORITHM rand_algs[] = {
	{CS_PROVIDER_RAND_NAME, PROV_PROPS, prov_rand_functions, "PKCS#11 C_GenerateRandom"},
	{NULL, NULL, NULL, NULL},
};

/* Set by cs_provider_load() for the in-process init it triggers; OpenSSL
 * calls that init synchronously on the same thread. */
static _Thread_local cs_token *builtin_token;

static OSSL_ITEM reason_strings[CS_ERR_COUNT + 1];

/* Tokens this provider opened itself (module mode). They are closed by an
 * exit handler that runs before OpenSSL's own cleanup: PKCS#11 modules such
 * as SoftHSM2 use OpenSSL while closing sessions, and would touch freed
 * state if closed from the provider teardown inside OPENSSL_cleanup(). */
static pthread_mutex_t owned_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t owned_once = PTHREAD_ONCE_INIT;
static prov_ctx *owned[16];

static void close_owned_tokens(void)
{
	pthread_mutex_lock(&owned_lock);
	for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++) {
		if (owned[i] == NULL)
			continue;
		pthread_mutex_lock(&owned[i]->lock);
		cs_token_close(owned[i]->token);
		owned[i]->token = NULL;
		owned[i]->owns_token = 0;
		pthread_mutex_unlock(&owned[i]->lock);
		owned[i] = NULL;
	}
	pthread_mutex_unlock(&owned_lock);
}

static void register_exit_handler(void)
{
	atexit(close_owned_tokens);
}

static void track_owned(prov_ctx *p, int add)
{
	pthread_mutex_lock(&owned_lock);
	for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++) {
		if (add && owned[i] == NULL) {
			owned[i] = p;
			break;
		}
		if (!add && owned[i] == p)
			owned[i] = NULL;
	}
	pthread_mutex_unlock(&owned_lock);
}

static const OSSL_ALGORITHM *prov_query(void *provctx, int operation_id, int *no_cache)
{
	(void)provctx;
	*no_cache = 0;
	switch (operation_id) {
	case OSSL_OP_KEYMGMT: return keymgmt_algs;
	case OSSL_OP_SIGNATURE: return signature_algs;
	case OSSL_OP_STORE: return store_algs;
	case OSSL_OP_RAND: return rand_algs;
	default: return NULL;
	}
}

static const OSSL_PARAM *prov_gettable_params(void *provctx)
{
	static const OSSL_PARAM params[] = {
		OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_NAME, NULL, 0),
		OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_VERSION, NULL, 0),
		OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_BUILDINFO, NULL, 0),
		OSSL_PARAM_int(OSSL_PROV_PARAM_STATUS, NULL),
		OSSL_PARAM_END,
	};
	(void)provctx;
	return params;
}

static int prov_get_params(void *provctx, OSSL_PARAM params[])
{
	OSSL_PARAM *p;
	(void)provctx;
	if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_NAME)) != NULL &&
	    !OSSL_PARAM_set_utf8_ptr(p, "credsign PKCS#11 provider"))
		return 0;
	if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_VERSION)) != NULL &&
	    !OSSL_PARAM_set_utf8_ptr(p, CREDSIGN_VERSION))
		return 0;
	if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_BUILDINFO)) != NULL &&
	    !OSSL_PARAM_set_utf8_ptr(p, "credsign " CREDSIGN_VERSION))
		return 0;
	if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_STATUS)) != NULL &&
	    !OSSL_PARAM_set_int(p, 1))
		return 0;
	return 1;
}

static const OSSL_ITEM *prov_reason_strings(void *provctx)
{
	(void)provctx;
	return reason_strings;
}

static void prov_teardown(void *provctx)
{
	prov_ctx *p = provctx;
	if (p == NULL)
		return;
	track_owned(p, 0);
	if (p->owns_token)
		cs_token_close(p->token);
	EVP_MD_free(p->sha256);
	OSSL_LIB_CTX_free(p->hash_ctx);
	free(p->module);
	free(p->pin_file);
	free(p->token_uri);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static const OSSL_DISPATCH prov_dispatch[] = {
	{OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))prov_teardown},
	{OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))prov_query},
	{OSSL_FUNC_PROVIDER_GETTABLE_PARAMS, (void (*)(void))prov_gettable_params},
	{OSSL_FUNC_PROVIDER_GET_PARAMS, (void (*)(void))prov_get_params},
	{OSSL_FUNC_PROVIDER_GET_REASON_STRINGS, (void (*)(void))prov_reason_strings},
	{0, NULL},
};

void prov_raise(prov_ctx *p, cs_err err, const char *fmt, ...)
{
	va_list ap;
	if (p == NULL || p->core_new_error == NULL)
		return;
	p->core_new_error(p->handle);
	p->core_set_error_debug(p->handle, __FILE__, __LINE__, "credsign-pkcs11");
	va_start(ap, fmt);
	p->core_vset_error(p->handle, (uint32_t)err + 1, fmt, ap);
	va_end(ap);
}

/* A NUL-terminated string as a blank-padded PKCS#11 field. */
static void pad(unsigned char *field, size_t size, const char *text)
{
	size_t n = strlen(text);
	memset(field, ' ', size);
	memcpy(field, text, n < size ? n : size);
}

/* Does `uri` name the open token? Its token (token, manufacturer, model,
 * serial), library (library-*) and slot-id attributes are compared with
 * the token's own; module-name/module-path with the module this provider
 * loaded. slot-description and slot-manufacturer are not kept by the token
 * layer, so they can only be honoured by the URI that opened the token
 * (`opened_by_uri`); any other use of them is refused rather than ignored. */
static cs_err check_token(prov_ctx *p, cs_token *token, const char *uri, int opened_by_uri)
{
	P11KitUri *u = p11_kit_uri_new();
	cs_token_info info;
	cs_err r = CS_E_NOMEM;
	if (u == NULL)
		goto out;
	if (p11_kit_uri_parse(uri, P11_KIT_URI_FOR_ANY, u) != P11_KIT_URI_OK) {
		r = CS_E_URI_INVALID;
		prov_raise(p, r, "%s: %s", uri, cs_strerror(r));
		goto out;
	}
	if ((r = cs_token_get_info(token, &info)) != CS_OK) {
		prov_raise(p, r, "%s: reading the token's description: %s", uri, cs_strerror(r));
		goto out;
	}
	const char *mname = p11_kit_uri_get_module_name(u), *mpath = p11_kit_uri_get_module_path(u);
	const int by_path = p->module != NULL && strchr(p->module, '/') != NULL;
	if ((mpath != NULL && (!by_path || strcmp(mpath, p->module) != 0)) ||
	    (mname != NULL && (p->module == NULL || by_path || strcmp(mname, p->module) != 0))) {
		r = CS_E_TOKEN_NOT_FOUND;
		prov_raise(p, r, "%s: names a PKCS#11 module other than the one in use (%s)", uri,
			   p->module != NULL ? p->module : "the application's");
		goto out;
	}
	const CK_SLOT_INFO *want_slot = p11_kit_uri_get_slot_info(u);
	if (!opened_by_uri && (want_slot->slotDescription[0] != 0 || want_slot->manufacturerID[0] != 0)) {
		r = CS_E_URI_INVALID;
		prov_raise(p, r, "%s: slot-description and slot-manufacturer cannot be checked against the "
				 "open token; name it by token=, serial= or slot-id=",
			   uri);
		goto out;
	}
	CK_TOKEN_INFO t;
	CK_INFO m;
	memset(&t, 0, sizeof(t));
	memset(&m, 0, sizeof(m));
	pad(t.label, sizeof(t.label), info.label);
	pad(t.manufacturerID, sizeof(t.manufacturerID), info.manufacturer);
	pad(t.model, sizeof(t.model), info.model);
	pad(t.serialNumber, sizeof(t.serialNumber), info.serial);
	pad(m.manufacturerID, sizeof(m.manufacturerID), info.module_manufacturer);
	pad(m.libraryDescription, sizeof(m.libraryDescription), info.module_description);
	m.libraryVersion.major = (CK_BYTE)info.module_major;
	m.libraryVersion.minor = (CK_BYTE)info.module_minor;
	CK_SLOT_ID slot = p11_kit_uri_get_slot_id(u);
	if (!p11_kit_uri_match_token_info(u, &t) || !p11_kit_uri_match_module_info(u, &m) ||
	    (slot != (CK_SLOT_ID)-1 && slot != info.slot_id)) {
		r = CS_E_TOKEN_NOT_FOUND;
		prov_raise(p, r, "%s: names a token other than the one in use (token \"%s\", serial %s, slot %lu)",
			   uri, info.label, info.serial, info.slot_id);
		goto out;
	}
	r = CS_OK;
out:
	p11_kit_uri_free(u);
	return r;
}

cs_err prov_token(prov_ctx *p, const char *uri, cs_token **out)
{
	cs_err r = CS_OK;
	int opened = 0;
	const char *key_uri = uri;
	pthread_mutex_lock(&p->lock);
	if (uri == NULL)
		uri = p->token_uri != NULL ? p->token_uri : "pkcs11:";
	if (p->token == NULL) {
		if (p->module == NULL) {
			r = CS_E_MODULE_LOAD;
			prov_raise(p, r, "no PKCS#11 module: set CREDSIGN_PKCS11_MODULE or the "
					 "provider's pkcs11-module parameter");
		} else {
			cs_token_params tp = {
				.module = p->module,
				.token_uri = uri,
				.pin_file = p->pin_file,
				.pool_size = 4,
				.read_write = 0,
			};
			/* the module may leave unrelated errors of its own start-up
			 * on the queue (e.g. optional engines it probes) */
			ERR_set_mark();
			r = cs_token_open(&tp, &p->token);
			ERR_pop_to_mark();
			if (r == CS_OK) {
				opened = 1;
				p->owns_token = 1;
				pthread_once(&owned_once, register_exit_handler);
				track_owned(p, 1);
			}
			else
				prov_raise(p, r, "opening the token for %s: %s", uri, cs_strerror(r));
		}
	}
	/* The token is chosen once; every key URI must name that token, or it
	 * would silently resolve in the wrong one. A token opened for a key
	 * must also be the configured one that RAND uses. */
	if (r == CS_OK && key_uri != NULL)
		r = check_token(p, p->token, key_uri, opened);
	if (r == CS_OK && opened && key_uri != NULL && p->token_uri != NULL)
		r = check_token(p, p->token, p->token_uri, 0);
	if (r != CS_OK && opened) {
		track_owned(p, 0);
		cs_token_close(p->token);
		p->token = NULL;
		p->owns_token = 0;
	}
	*out = r == CS_OK ? p->token : NULL;
	pthread_mutex_unlock(&p->lock);
	return r;
}

/* A string parameter from the core (provider configuration), else env. */
static char *core_param(const OSSL_CORE_HANDLE *handle, OSSL_FUNC_core_get_params_fn *get,
			const char *name, const char *env)
{
	char *value = NULL;
	OSSL_PARAM params[2] = {OSSL_PARAM_utf8_ptr(name, &value, 0), OSSL_PARAM_END};
	if (get != NULL && get(handle, params) && value != NULL && value[0] != '\0')
		return strdup(value);
	const char *e = getenv(env);
	return e != NULL && e[0] != '\0' ? strdup(e) : NULL;
}

int cs_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
		     const OSSL_DISPATCH **out, void **provctx)
{
	OSSL_FUNC_core_get_params_fn *get_params = NULL;
	prov_ctx *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return 0;
	pthread_mutex_init(&p->lock, NULL);
	p->handle = handle;
	for (; in->function_id != 0; in++) {
		switch (in->function_id) {
		case OSSL_FUNC_CORE_GET_PARAMS:
			get_params = OSSL_FUNC_core_get_params(in);
			break;
		case OSSL_FUNC_CORE_NEW_ERROR:
			p->core_new_error = OSSL_FUNC_core_new_error(in);
			break;
		case OSSL_FUNC_CORE_SET_ERROR_DEBUG:
			p->core_set_error_debug = OSSL_FUNC_core_set_error_debug(in);
			break;
		case OSSL_FUNC_CORE_VSET_ERROR:
			p->core_vset_error = OSSL_FUNC_core_vset_error(in);
			break;
		default:
			break;
		}
	}
	for (int e = 0; e < CS_ERR_COUNT; e++)
		reason_strings[e] = (OSSL_ITEM){(unsigned)e + 1, (char *)cs_strerror((cs_err)e)};

	p->token = builtin_token;
	builtin_token = NULL;
	if (p->token == NULL) {
		p->module = core_param(handle, get_params, "pkcs11-module", "CREDSIGN_PKCS11_MODULE");
		p->pin_file = core_param(handle, get_params, "pkcs11-pin-file", "CREDSIGN_PIN_FILE");
		p->token_uri = core_param(handle, get_params, "pkcs11-token-uri", "CREDSIGN_TOKEN_URI");
	}
	if ((p->hash_ctx = OSSL_LIB_CTX_new()) == NULL ||
	    (p->sha256 = EVP_MD_fetch(p->hash_ctx, "SHA256", NULL)) == NULL) {
		prov_teardown(p);
		return 0;
	}
	*out = prov_dispatch;
	*provctx = p;
	return 1;
}

cs_err cs_provider_load(OSSL_LIB_CTX *libctx, cs_token *token, OSSL_PROVIDER **out)
{
	*out = NULL;
	if (token == NULL)
		return CS_E_INVALID_ARG;
	if (!OSSL_PROVIDER_add_builtin(libctx, CS_PROVIDER_NAME, cs_provider_init))
		return CS_E_CRYPTO;
	builtin_token = token;
	*out = OSSL_PROVIDER_load(libctx, CS_PROVIDER_NAME);
	builtin_token = NULL;
	return *out != NULL ? CS_OK : CS_E_CRYPTO;
}

EVP_PKEY *cs_provider_load_key(OSSL_LIB_CTX *libctx, const char *source)
{
	return cs_provider_load_key_for(libctx, source, NULL);
}

EVP_PKEY *cs_provider_load_key_for(OSSL_LIB_CTX *libctx, const char *source, const cs_key_purpose *purpose)
{
	EVP_PKEY *pkey = NULL;
	char text[8 + CS_KEY_PROFILE_NAME_MAX + 1];
	OSSL_PARAM params[2] = {OSSL_PARAM_END, OSSL_PARAM_END};
	if (purpose != NULL && purpose->kind != CS_KEY_PURPOSE_NONE) {
		if (purpose->kind == CS_KEY_PURPOSE_CERTIFICATE)
			snprintf(text, sizeof(text), "certificate");
		else if (purpose->kind == CS_KEY_PURPOSE_TLS)
			snprintf(text, sizeof(text), "tls");
		else
			snprintf(text, sizeof(text), "profile:%.*s", CS_KEY_PROFILE_NAME_MAX, purpose->profile);
		params[0] = OSSL_PARAM_construct_utf8_string(CS_PROVIDER_STORE_PARAM_PURPOSE, text, 0);
	}
	/* no parameter at all for NONE: exactly the load of before */
	OSSL_STORE_CTX *st = OSSL_STORE_open_ex(source, libctx, NULL, NULL, NULL,
						params[0].key != NULL ? params : NULL, NULL, NULL);
	if (st == NULL)
		return NULL;
	OSSL_STORE_expect(st, OSSL_STORE_INFO_PKEY);
	while (pkey == NULL && !OSSL_STORE_eof(st)) {
		OSSL_STORE_INFO *info = OSSL_STORE_load(st);
		if (info == NULL)
			break;
		if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
			pkey = OSSL_STORE_INFO_get1_PKEY(info);
		OSSL_STORE_INFO_free(info);
	}
	OSSL_STORE_close(st);
	return pkey;
}

cs_err cs_provider_use_token_rng(OSSL_LIB_CTX *libctx)
{
	if (!RAND_set_DRBG_type(libctx, CS_PROVIDER_RAND_NAME, CS_PROVIDER_PROPQ, NULL, NULL))
		return CS_E_CRYPTO;
	return CS_OK;
}
