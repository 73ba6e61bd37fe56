/*
 * prov_keymgmt: EC P-256 keys in the token. The public half is ordinary data
 * (exported, so encoders, X.509 and JWK code of other providers work); the
 * private half is a reference (label and CKA_ID) and is never exported: any
 * export whose selection includes the private key fails. (OpenSSL then signs
 * with this provider's ECDSA; encoders ask for the public parts only.)
 * Public keys can be imported, so a certificate's key can be matched against
 * a token key.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/params.h>

#include "prov_internal.h"

#define P256_GROUP "prime256v1"

prov_key *prov_key_new(prov_ctx *p)
{
	prov_key *k = calloc(1, sizeof(*k));
	if (k != NULL)
		k->pctx = p;
	return k;
}

void prov_key_free(void *key)
{
	free(key);
}

static void *km_new(void *provctx)
{
	return prov_key_new(provctx);
}

static void *km_load(const void *reference, size_t size)
{
	const prov_key_reference *r = reference;
	if (reference == NULL || size != sizeof(*r) || r->magic != PROV_KEY_REF_MAGIC)
		return NULL;
	prov_key *k = calloc(1, sizeof(*k));
	if (k == NULL)
		return NULL;
	k->pctx = r->pctx;
	k->ref = r->ref;
	k->has_private = r->has_private;
	k->has_public = 1;
	memcpy(k->point, r->point, sizeof(k->point));
	return k;
}

static void *km_dup(const void *key, int selection)
{
	(void)selection;
	prov_key *k = malloc(sizeof(*k));
	if (k != NULL)
		memcpy(k, key, sizeof(*k));
	return k;
}

static int km_has(const void *key, int selection)
{
	const prov_key *k = key;
	if (k == NULL)
		return 0;
	if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) && !k->has_private)
		return 0;
	if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) && !k->has_public)
		return 0;
	return 1;
}

static int km_match(const void *a, const void *b, int selection)
{
	const prov_key *k1 = a, *k2 = b;
	if (selection & OSSL_KEYMGMT_SELECT_KEYPAIR)
		return k1->has_public && k2->has_public &&
		       memcmp(k1->point, k2->point, sizeof(k1->point)) == 0;
	return 1; /* same group: both P-256 */
}

static int set_coordinate(OSSL_PARAM *p, const uint8_t *bytes)
{
	BIGNUM *bn = BN_bin2bn(bytes, 32, NULL);
	int ok = bn != NULL && OSSL_PARAM_set_BN(p, bn);
	BN_free(bn);
	return ok;
}

static int km_get_params(void *key, OSSL_PARAM params[])
{
	prov_key *k = key;
	OSSL_PARAM *p;
	if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_BITS)) != NULL && !OSSL_PARAM_set_int(p, 256))
		return 0;
	if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_SECURITY_BITS)) != NULL &&
	    !OSSL_PARAM_set_int(p, 128))
		return 0;
	if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_MAX_SIZE)) != NULL &&
	    !OSSL_PARAM_set_int(p, 72))
		return 0;
	if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_GROUP_NAME)) != NULL &&
	    !OSSL_PARAM_set_utf8_string(p, P256_GROUP))
		return 0;
	if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_DEFAULT_DIGEST)) != NULL &&
	    !OSSL_PARAM_set_utf8_string(p, "SHA256"))
		return 0;
	if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT)) != NULL &&
	    !OSSL_PARAM_set_utf8_string(p, "uncompressed"))
		return 0;
	if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_EC_ENCODING)) != NULL &&
	    !OSSL_PARAM_set_utf8_string(p, "named_curve"))
		return 0;
	if (!k->has_public)
		return 1;
	if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY)) != NULL &&
	    !OSSL_PARAM_set_octet_string(p, k->point, sizeof(k->point)))
		return 0;
	if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_PUB_KEY)) != NULL &&
	    !OSSL_PARAM_set_octet_string(p, k->point, sizeof(k->point)))
		return 0;
	if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_EC_PUB_X)) != NULL &&
	    !set_coordinate(p, k->point + 1))
		return 0;
	if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_EC_PUB_Y)) != NULL &&
	    !set_coordinate(p, k->point + 33))
		return 0;
	/* OSSL_PKEY_PARAM_PRIV_KEY is deliberately absent */
	return 1;
}

static const OSSL_PARAM *km_gettable_params(void *provctx)
{
	static const OSSL_PARAM params[] = {
		OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
		OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
		OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
		OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
		OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
		OSSL_PARAM_BN(OSSL_PKEY_PARAM_EC_PUB_X, NULL, 0),
		OSSL_PARAM_BN(OSSL_PKEY_PARAM_EC_PUB_Y, NULL, 0),
		OSSL_PARAM_END,
	};
	(void)provctx;
	return params;
}

static int km_export(void *key, int selection, OSSL_CALLBACK *cb, void *cbarg)
{
	prov_key *k = key;
	if (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) {
		prov_raise(k->pctx, CS_E_SENSITIVE, "token private keys cannot be exported");
		return 0;
	}
	char group[] = P256_GROUP, format[] = "uncompressed", encoding[] = "named_curve";
	OSSL_PARAM params[5];
	size_t n = 0;
	params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
	params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
						       format, 0);
	params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, encoding, 0);
	if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) && k->has_public)
		params[n++] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, k->point,
								sizeof(k->point));
	params[n] = OSSL_PARAM_construct_end();
	return cb(params, cbarg);
}

static const OSSL_PARAM *km_export_types(int selection)
{
	static const OSSL_PARAM types[] = {
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
		OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
		OSSL_PARAM_END,
	};
	(void)selection;
	return types;
}

/* Import a public P-256 key (group + point); private material is refused. */
static int km_import(void *key, int selection, const OSSL_PARAM params[])
{
	prov_key *k = key;
	const OSSL_PARAM *p;
	const char *group = NULL;
	const void *point = NULL;
	size_t len = 0;
	if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) ||
	    OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_PRIV_KEY) != NULL)
		return 0;
	if ((p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_GROUP_NAME)) != NULL &&
	    (!OSSL_PARAM_get_utf8_string_ptr(p, &group) ||
	     (strcmp(group, P256_GROUP) != 0 && strcmp(group, "P-256") != 0)))
		return 0;
	if (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) {
		p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_PUB_KEY);
		if (p == NULL || !OSSL_PARAM_get_octet_string_ptr(p, &point, &len) ||
		    len != sizeof(k->point) || ((const uint8_t *)point)[0] != 0x04)
			return 0;
		memcpy(k->point, point, len);
		k->has_public = 1;
	}
	return 1;
}

static const OSSL_PARAM *km_import_types(int selection)
{
	return km_export_types(selection);
}

static const char *km_query_operation_name(int operation_id)
{
	return operation_id == OSSL_OP_SIGNATURE ? "ECDSA" : NULL;
}

const OSSL_DISPATCH prov_keymgmt_functions[] = {
	{OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))km_new},
	{OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))prov_key_free},
	{OSSL_FUNC_KEYMGMT_LOAD, (void (*)(void))km_load},
	{OSSL_FUNC_KEYMGMT_DUP, (void (*)(void))km_dup},
	{OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))km_has},
	{OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void))km_match},
	{OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void))km_get_params},
	{OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void))km_gettable_params},
	{OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void))km_export},
	{OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))km_export_types},
	{OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))km_import},
	{OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))km_import_types},
	{OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))km_query_operation_name},
	{0, NULL},
};
