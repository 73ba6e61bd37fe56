/*
 * token_ops: the operations of token.h, each run on a pooled session through
 * tok_run() so that session loss is recovered in one place.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cs_log.h"
#include "cs_secret.h"
#include "ec_util.h"
#include "token_internal.h"

/* ---- info ------------------------------------------------------------------ */

static CK_RV op_info(cs_token *t, tok_session *s, void *arg, cs_err *err)
{
	cs_token_info *info = arg;
	CK_INFO minfo;
	CK_TOKEN_INFO tinfo;
	(void)err;
	CK_RV rv = t->call->C_GetInfo(&minfo);
	if (rv != CKR_OK)
		return rv;
	/* the session's slot, not t->slot: recovery may change that meanwhile */
	if ((rv = t->call->C_GetTokenInfo(s->slot, &tinfo)) != CKR_OK)
		return rv;
	pthread_mutex_lock(&t->lock);
	tok_note_flags_locked(t, tinfo.flags); /* CKF_RNG as now read */
	pthread_mutex_unlock(&t->lock);
	memset(info, 0, sizeof(*info));
	tok_copy_padded(info->label, sizeof(info->label), tinfo.label, sizeof(tinfo.label));
	tok_copy_padded(info->manufacturer, sizeof(info->manufacturer), tinfo.manufacturerID,
			sizeof(tinfo.manufacturerID));
	tok_copy_padded(info->model, sizeof(info->model), tinfo.model, sizeof(tinfo.model));
	tok_copy_padded(info->serial, sizeof(info->serial), tinfo.serialNumber,
			sizeof(tinfo.serialNumber));
	info->hw_major = tinfo.hardwareVersion.major;
	info->hw_minor = tinfo.hardwareVersion.minor;
	info->fw_major = tinfo.firmwareVersion.major;
	info->fw_minor = tinfo.firmwareVersion.minor;
	info->flags = tinfo.flags;
	tok_copy_padded(info->module_manufacturer, sizeof(info->module_manufacturer),
			minfo.manufacturerID, sizeof(minfo.manufacturerID));
	tok_copy_padded(info->module_description, sizeof(info->module_description),
			minfo.libraryDescription, sizeof(minfo.libraryDescription));
	info->module_major = minfo.libraryVersion.major;
	info->module_minor = minfo.libraryVersion.minor;
	info->cryptoki_major = minfo.cryptokiVersion.major;
	info->cryptoki_minor = minfo.cryptokiVersion.minor;
	info->slot_id = s->slot;
	return CKR_OK;
}

cs_err cs_token_get_info(cs_token *t, cs_token_info *info)
{
	if (t != NULL && t->remote != NULL)
		return tok_remote_get_info(t, info);
	if (t == NULL || info == NULL)
		return CS_E_INVALID_ARG;
	return tok_run(t, op_info, info);
}

/* ---- random ---------------------------------------------------------------- */

struct random_arg {
	uint8_t *buf;
	size_t n;
};

/* The token refused a call of `refused` bytes as too large: from now on,
 * ask at most half as much (a power of two, down to the minimum). */
static size_t lower_random_max(cs_token *t, size_t refused)
{
	pthread_mutex_lock(&t->lock);
	size_t max = t->random_max;
	while (max >= refused && max > CS_TOKEN_RANDOM_MIN_CALL)
		max /= 2;
	if (max < CS_TOKEN_RANDOM_MIN_CALL)
		max = CS_TOKEN_RANDOM_MIN_CALL;
	if (max < t->random_max) {
		t->random_max = max;
		cs_log_warn("the token refused C_GenerateRandom of %zu bytes; asking at most %zu per call",
			    refused, max);
	}
	max = t->random_max;
	pthread_mutex_unlock(&t->lock);
	return max;
}

static CK_RV op_random(cs_token *t, tok_session *s, void *arg, cs_err *err)
{
	struct random_arg *a = arg;
	CK_RV rv;
	/* CKF_RNG as last read (see cs_token_random); only a refusal reads it
	 * again here */
	if (!s->rng) {
		CK_TOKEN_INFO tinfo;
		if ((rv = t->call->C_GetTokenInfo(s->slot, &tinfo)) != CKR_OK)
			return rv;
		pthread_mutex_lock(&t->lock);
		tok_note_flags_locked(t, tinfo.flags);
		pthread_mutex_unlock(&t->lock);
		if (!(tinfo.flags & CKF_RNG)) {
			*err = CS_E_TOKEN_NO_RNG;
			return CKR_OK;
		}
		s->rng = 1;
	}
	size_t max = s->random_max;
	for (size_t off = 0; off < a->n;) {
		size_t chunk = a->n - off < max ? a->n - off : max;
		rv = t->call->C_GenerateRandom(s->handle, a->buf + off, (CK_ULONG)chunk);
		int too_large = rv == CKR_DATA_LEN_RANGE || rv == CKR_ARGUMENTS_BAD;
		if (too_large && chunk > CS_TOKEN_RANDOM_MIN_CALL) {
			max = lower_random_max(t, chunk);
			s->random_max = max;
			continue;
		}
		if (rv != CKR_OK)
			return rv;
		off += chunk;
	}
	return CKR_OK;
}

cs_err cs_token_random(cs_token *t, uint8_t *buf, size_t n)
{
	if (t != NULL && t->remote != NULL)
		return tok_remote_random(t, buf, n);
	if (t == NULL || (buf == NULL && n > 0))
		return CS_E_INVALID_ARG;
	if (n == 0)
		return CS_OK;
	struct random_arg a = {buf, n};
	cs_err r = tok_run(t, op_random, &a);
	if (r != CS_OK)
		memset(buf, 0, n); /* never hand out a partly filled buffer */
	return r;
}

size_t cs_token_random_max(cs_token *t)
{
	if (t->remote != NULL)
		return tok_remote_random_max(t);
	pthread_mutex_lock(&t->lock);
	size_t max = t->random_max;
	pthread_mutex_unlock(&t->lock);
	return max;
}

/* ---- key references ---------------------------------------------------------- */

cs_err cs_key_ref_from_uri(const char *text, cs_key_ref *out)
{
	P11KitUri *uri = NULL;
	memset(out, 0, sizeof(*out));
	cs_err r = tok_parse_uri(text, &uri);
	if (r != CS_OK)
		return r;
	r = CS_E_URI_INVALID;
	CK_ATTRIBUTE *label = p11_kit_uri_get_attribute(uri, CKA_LABEL);
	CK_ATTRIBUTE *id = p11_kit_uri_get_attribute(uri, CKA_ID);
	if (label == NULL && id == NULL)
		goto out; /* a key URI must name the object */
	if (label != NULL) {
		if (label->ulValueLen == 0 || label->ulValueLen > CS_KEY_LABEL_MAX ||
		    memchr(label->pValue, '\0', label->ulValueLen) != NULL)
			goto out;
		memcpy(out->label, label->pValue, label->ulValueLen);
	}
	if (id != NULL) {
		if (id->ulValueLen == 0 || id->ulValueLen > CS_KEY_ID_MAX)
			goto out;
		memcpy(out->id, id->pValue, id->ulValueLen);
		out->id_len = id->ulValueLen;
	}
	r = CS_OK;
out:
	p11_kit_uri_free(uri);
	return r;
}

static int key_ref_equal(const cs_key_ref *a, const cs_key_ref *b)
{
	return strcmp(a->label, b->label) == 0 && a->id_len == b->id_len &&
	       memcmp(a->id, b->id, a->id_len) == 0;
}

/* Find objects of a class matching label/id; up to `max` handles. */
static CK_RV find_objects(cs_token *t, CK_SESSION_HANDLE h, CK_OBJECT_CLASS cls,
			  const cs_key_ref *q, CK_OBJECT_HANDLE *found, CK_ULONG max, CK_ULONG *count)
{
	CK_KEY_TYPE ktype = CKK_EC;
	CK_BBOOL on_token = CK_TRUE; /* not our own session-object copies */
	CK_ATTRIBUTE tmpl[5] = {
		{CKA_CLASS, &cls, sizeof(cls)},
		{CKA_KEY_TYPE, &ktype, sizeof(ktype)},
		{CKA_TOKEN, &on_token, sizeof(on_token)},
	};
	CK_ULONG n = 3;
	if (q->label[0] != '\0')
		tmpl[n++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)q->label, strlen(q->label)};
	if (q->id_len > 0)
		tmpl[n++] = (CK_ATTRIBUTE){CKA_ID, (void *)q->id, q->id_len};
	*count = 0;
	CK_RV rv = t->call->C_FindObjectsInit(h, tmpl, n);
	if (rv != CKR_OK)
		return rv;
	rv = t->call->C_FindObjects(h, found, max, count);
	CK_RV rv2 = t->call->C_FindObjectsFinal(h);
	return rv != CKR_OK ? rv : rv2;
}

/* Read CKA_LABEL and CKA_ID of an object into a reference. */
static CK_RV read_ref(cs_token *t, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj, cs_key_ref *ref,
		      cs_err *err)
{
	CK_ATTRIBUTE a[2] = {{CKA_LABEL, NULL, 0}, {CKA_ID, NULL, 0}};
	memset(ref, 0, sizeof(*ref));
	CK_RV rv = t->call->C_GetAttributeValue(h, obj, a, 2);
	if (rv != CKR_OK)
		return rv;
	if (a[0].ulValueLen == CK_UNAVAILABLE_INFORMATION || a[1].ulValueLen == CK_UNAVAILABLE_INFORMATION) {
		*err = CS_E_TOKEN_DATA;
		return CKR_OK;
	}
	if (a[0].ulValueLen > CS_KEY_LABEL_MAX || a[1].ulValueLen > CS_KEY_ID_MAX) {
		cs_log_error("the key's %s is %lu bytes, longer than credsign takes (%d bytes)",
			     a[0].ulValueLen > CS_KEY_LABEL_MAX ? "CKA_LABEL" : "CKA_ID",
			     (unsigned long)(a[0].ulValueLen > CS_KEY_LABEL_MAX ? a[0].ulValueLen : a[1].ulValueLen),
			     a[0].ulValueLen > CS_KEY_LABEL_MAX ? CS_KEY_LABEL_MAX : CS_KEY_ID_MAX);
		*err = CS_E_TOKEN_DATA;
		return CKR_OK;
	}
	a[0].pValue = ref->label;
	a[1].pValue = ref->id;
	if ((rv = t->call->C_GetAttributeValue(h, obj, a, 2)) != CKR_OK)
		return rv;
	ref->label[a[0].ulValueLen] = '\0';
	ref->id_len = a[1].ulValueLen;
	return CKR_OK;
}

/* Check CKA_EC_PARAMS names P-256, in whichever form the token keeps it
 * (cs_ec_params_is_p256; explicit P-256 parameters take 250 bytes). */
static CK_RV check_p256(cs_token *t, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj, cs_err *err)
{
	uint8_t params[512];
	CK_ATTRIBUTE a = {CKA_EC_PARAMS, params, sizeof(params)};
	CK_RV rv = t->call->C_GetAttributeValue(h, obj, &a, 1);
	if (rv == CKR_BUFFER_TOO_SMALL || rv == CKR_ATTRIBUTE_TYPE_INVALID) {
		*err = CS_E_KEY_TYPE;
		return CKR_OK;
	}
	if (rv != CKR_OK)
		return rv;
	if (a.ulValueLen > sizeof(params) || cs_ec_params_is_p256(params, a.ulValueLen) != CS_OK)
		*err = CS_E_KEY_TYPE;
	return CKR_OK;
}

static void cache_drop(cs_token *t, tok_session *s, tok_key_cache *c)
{
	if (c->valid && c->sign != c->priv)
		(void)t->call->C_DestroyObject(s->handle, c->sign);
	memset(c, 0, sizeof(*c));
}

/* A session-object copy of a private key for signing, or the key itself. */
static CK_OBJECT_HANDLE signing_handle(cs_token *t, tok_session *s, CK_OBJECT_HANDLE priv)
{
	CK_BBOOL no = CK_FALSE;
	CK_ATTRIBUTE session_only = {CKA_TOKEN, &no, sizeof(no)};
	CK_OBJECT_HANDLE copy = CK_INVALID_HANDLE;
	CK_RV rv = t->call->C_CopyObject(s->handle, priv, &session_only, 1, &copy);
	if (rv != CKR_OK) {
		cs_log_debug("C_CopyObject: %s; signing with the token object", cs_ckr_name(rv));
		return priv;
	}
	return copy;
}

static CK_RV find_and_copy(cs_token *t, tok_session *s, const cs_key_ref *q, tok_key_cache **out,
			   cs_err *err);
static CK_RV read_public(cs_token *t, tok_session *s, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE attr,
			 EVP_PKEY **out, cs_err *err);

/* Resolve a query to private and public handles on this session, using the
 * session's cache. `refresh` forces a new search. */
static CK_RV resolve_key(cs_token *t, tok_session *s, const cs_key_ref *q, int refresh,
			 tok_key_cache **out, cs_err *err)
{
	*out = NULL;
	for (unsigned i = 0; i < TOK_KEY_CACHE; i++) {
		tok_key_cache *c = &s->keys[i];
		if (c->valid && key_ref_equal(&c->query, q)) {
			if (!refresh) {
				*out = c;
				return CKR_OK;
			}
			cache_drop(t, s, c);
		}
	}
	if (q->label[0] == '\0' && q->id_len == 0) {
		*err = CS_E_INVALID_ARG;
		return CKR_OK;
	}
	pthread_mutex_lock(&t->objects_lock);
	CK_RV rv = find_and_copy(t, s, q, out, err);
	pthread_mutex_unlock(&t->objects_lock);
	return rv;
}

/* The public half of the private key `ref` names: the CKO_PUBLIC_KEY with
 * its CKA_ID (the label only breaks a tie: vendor tools may label the halves
 * differently), else what the private key carries itself (CKA_EC_POINT, or
 * PKCS#11's CKA_PUBLIC_KEY_INFO), for a token that keeps only the private
 * object. *obj and *attr say where to read it; CS_E_KEY_NO_PUBLIC in *err
 * when there is none. */
static CK_RV find_public(cs_token *t, tok_session *s, const cs_key_ref *ref, CK_OBJECT_HANDLE priv,
			 CK_OBJECT_HANDLE *obj, CK_ATTRIBUTE_TYPE *attr, cs_err *err)
{
	CK_OBJECT_HANDLE pub[2];
	CK_ULONG npub = 0;
	CK_RV rv = CKR_OK;
	cs_key_ref by_id = *ref;
	if (ref->id_len > 0)
		by_id.label[0] = '\0';
	if (by_id.id_len > 0 || by_id.label[0] != '\0') /* never "any public key" */
		rv = find_objects(t, s->handle, CKO_PUBLIC_KEY, &by_id, pub, 2, &npub);
	if (rv == CKR_OK && npub > 1 && ref->id_len > 0 && ref->label[0] != '\0') {
		CK_ULONG by_label = 0; /* the tie; none labelled like the key: still ambiguous */
		rv = find_objects(t, s->handle, CKO_PUBLIC_KEY, ref, pub, 2, &by_label);
		if (by_label > 0)
			npub = by_label;
	}
	if (rv != CKR_OK)
		return rv;
	if (npub == 1) {
		*obj = pub[0];
		*attr = CKA_EC_POINT;
		return CKR_OK;
	}
	if (npub > 1) {
		*err = CS_E_KEY_AMBIGUOUS;
		return CKR_OK;
	}
	static const CK_ATTRIBUTE_TYPE on_private[] = {CKA_EC_POINT, CKA_PUBLIC_KEY_INFO};
	for (size_t i = 0; i < sizeof(on_private) / sizeof(on_private[0]); i++) {
		EVP_PKEY *pkey = NULL;
		cs_err got = CS_OK;
		rv = read_public(t, s, priv, on_private[i], &pkey, &got);
		EVP_PKEY_free(pkey);
		if (rv == CKR_OK && got == CS_OK) {
			*obj = priv;
			*attr = on_private[i];
			return CKR_OK;
		}
		if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_ATTRIBUTE_SENSITIVE)
			return rv;
	}
	*err = CS_E_KEY_NO_PUBLIC;
	return CKR_OK;
}

/* CKA_ALWAYS_AUTHENTICATE of a private key (false where the token does not
 * know the attribute). A key that asks for a login before each use is
 * signed with after a CKU_CONTEXT_SPECIFIC login with the PIN; without a PIN
 * source it is refused. */
static CK_RV read_always_auth(cs_token *t, tok_session *s, CK_OBJECT_HANDLE priv, int *always,
			      cs_err *err)
{
	CK_BBOOL value = CK_FALSE;
	CK_ATTRIBUTE a = {CKA_ALWAYS_AUTHENTICATE, &value, sizeof(value)};
	*always = 0;
	CK_RV rv = t->call->C_GetAttributeValue(s->handle, priv, &a, 1);
	if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE)
		return CKR_OK;
	if (rv != CKR_OK)
		return rv;
	*always = a.ulValueLen == sizeof(value) && value == CK_TRUE;
	if (*always && t->pin_path == NULL)
		*err = CS_E_KEY_ALWAYS_AUTH;
	return CKR_OK;
}

/* The cache-miss half of resolve_key; called under objects_lock. */
static CK_RV find_and_copy(cs_token *t, tok_session *s, const cs_key_ref *q, tok_key_cache **out,
			   cs_err *err)
{
	CK_OBJECT_HANDLE priv[2];
	CK_ULONG npriv = 0;
	CK_RV rv = find_objects(t, s->handle, CKO_PRIVATE_KEY, q, priv, 2, &npriv);
	if (rv != CKR_OK)
		return rv;
	if (npriv != 1) {
		*err = npriv == 0 ? CS_E_KEY_NOT_FOUND : CS_E_KEY_AMBIGUOUS;
		return CKR_OK;
	}
	tok_key_cache *c = &s->keys[s->next_key++ % TOK_KEY_CACHE];
	cache_drop(t, s, c);
	if ((rv = read_ref(t, s->handle, priv[0], &c->ref, err)) != CKR_OK || *err != CS_OK)
		return rv;
	if ((rv = check_p256(t, s->handle, priv[0], err)) != CKR_OK || *err != CS_OK)
		return rv;
	if ((rv = find_public(t, s, &c->ref, priv[0], &c->pub, &c->pub_attr, err)) != CKR_OK || *err != CS_OK)
		return rv;
	if ((rv = read_always_auth(t, s, priv[0], &c->always_auth, err)) != CKR_OK || *err != CS_OK)
		return rv;
	c->query = *q;
	c->priv = priv[0];
	c->sign = signing_handle(t, s, priv[0]);
	c->valid = 1;
	*out = c;
	return CKR_OK;
}

struct find_arg {
	const cs_key_ref *query;
	cs_key_ref *found;
};

static CK_RV op_find(cs_token *t, tok_session *s, void *arg, cs_err *err)
{
	struct find_arg *a = arg;
	tok_key_cache *c = NULL;
	CK_RV rv = resolve_key(t, s, a->query, 1, &c, err);
	if (rv == CKR_OK && *err == CS_OK)
		*a->found = c->ref;
	return rv;
}

cs_err cs_token_find_key(cs_token *t, const cs_key_ref *query, cs_key_ref *found)
{
	if (t != NULL && t->remote != NULL)
		return tok_remote_find_key(t, query, found);
	if (t == NULL || query == NULL || found == NULL)
		return CS_E_INVALID_ARG;
	struct find_arg a = {query, found};
	cs_err r = tok_run(t, op_find, &a);
	if (r == CS_OK)
		found->purpose = query->purpose;
	return r;
}

cs_err cs_token_bind_key(cs_token *t, const cs_key_ref *key)
{
	if (t != NULL && t->remote != NULL)
		return tok_remote_bind_key(t, key);
	return t == NULL || key == NULL ? CS_E_INVALID_ARG : CS_OK; /* in-process: no purpose check */
}

/* ---- public key ------------------------------------------------------------ */

struct pub_arg {
	const cs_key_ref *key;
	EVP_PKEY *pkey;
};

/* The public key in attribute `attr` (CKA_EC_POINT or CKA_PUBLIC_KEY_INFO)
 * of object `obj`. */
static CK_RV read_public(cs_token *t, tok_session *s, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE attr,
			 EVP_PKEY **out, cs_err *err)
{
	uint8_t value[512];
	CK_ATTRIBUTE a = {attr, value, sizeof(value)};
	CK_RV rv = t->call->C_GetAttributeValue(s->handle, obj, &a, 1);
	if (rv == CKR_BUFFER_TOO_SMALL) {
		*err = CS_E_TOKEN_DATA;
		return CKR_OK;
	}
	if (rv != CKR_OK)
		return rv;
	if (a.ulValueLen == 0 || a.ulValueLen > sizeof(value)) /* empty, or unavailable */
		*err = CS_E_TOKEN_DATA;
	else if (attr == CKA_PUBLIC_KEY_INFO)
		*err = cs_spki_to_pkey(value, a.ulValueLen, out);
	else
		*err = cs_ec_point_to_pkey(value, a.ulValueLen, out);
	return CKR_OK;
}

static CK_RV op_public(cs_token *t, tok_session *s, void *arg, cs_err *err)
{
	struct pub_arg *a = arg;
	tok_key_cache *c = NULL;
	CK_RV rv = resolve_key(t, s, a->key, 0, &c, err);
	if (rv != CKR_OK || *err != CS_OK)
		return rv;
	rv = read_public(t, s, c->pub, c->pub_attr, &a->pkey, err);
	if (rv == CKR_OBJECT_HANDLE_INVALID) { /* stale cache: search again */
		if ((rv = resolve_key(t, s, a->key, 1, &c, err)) != CKR_OK || *err != CS_OK)
			return rv;
		rv = read_public(t, s, c->pub, c->pub_attr, &a->pkey, err);
	}
	return rv;
}

cs_err cs_token_public_key(cs_token *t, const cs_key_ref *key, EVP_PKEY **out)
{
	if (t != NULL && t->remote != NULL)
		return tok_remote_public_key(t, key, out);
	if (t == NULL || key == NULL || out == NULL)
		return CS_E_INVALID_ARG;
	struct pub_arg a = {key, NULL};
	*out = NULL;
	cs_err r = tok_run(t, op_public, &a);
	if (r == CS_OK)
		*out = a.pkey;
	else
		EVP_PKEY_free(a.pkey);
	return r;
}

/* ---- sign -------------------------------------------------------------------- */

struct sign_arg {
	const cs_key_ref *key;
	const uint8_t *digest;
	cs_es256_sig *sig;
};

/* The login a key with CKA_ALWAYS_AUTHENTICATE asks for after C_SignInit:
 * CKU_CONTEXT_SPECIFIC with the user's PIN (in pin[pin_len], read before
 * C_SignInit so that no failure leaves the operation half done). */
static CK_RV context_login(cs_token *t, tok_session *s, const char *pin, size_t pin_len)
{
	CK_RV rv = t->call->C_Login(s->handle, CKU_CONTEXT_SPECIFIC, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)pin_len);
	if (rv == CKR_OK)
		return rv;
	if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_INVALID || rv == CKR_PIN_LEN_RANGE) {
		pthread_mutex_lock(&t->lock);
		t->bad_pin = 1; /* never offered again */
		pthread_mutex_unlock(&t->lock);
	} else if (rv != CKR_PIN_LOCKED && rv != CKR_PIN_EXPIRED) {
		cs_log_error("the key has CKA_ALWAYS_AUTHENTICATE and the token refused the login before "
			     "the signature (C_Login CKU_CONTEXT_SPECIFIC: %s)",
			     cs_ckr_name(rv));
	}
	return rv;
}

static CK_RV sign_once(cs_token *t, tok_session *s, const tok_key_cache *c, struct sign_arg *a,
		       cs_err *err)
{
	CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
	uint8_t out[132];
	CK_ULONG out_len = sizeof(out);
	char *pin = NULL; /* CS_PIN_MAX + 1 bytes of the secure heap (confine.h) */
	size_t pin_len = 0;
	if (c->always_auth) {
		pthread_mutex_lock(&t->lock);
		int bad_pin = t->bad_pin;
		pthread_mutex_unlock(&t->lock);
		cs_err r = bad_pin ? CS_E_PIN_INCORRECT
			   : (pin = OPENSSL_secure_malloc(CS_PIN_MAX + 1)) == NULL ? CS_E_NOMEM
			   : tok_read_pin(t, pin, CS_PIN_MAX + 1, &pin_len);
		if (r != CS_OK) {
			OPENSSL_secure_clear_free(pin, CS_PIN_MAX + 1);
			*err = r;
			return CKR_OK;
		}
	}
	CK_RV rv = t->call->C_SignInit(s->handle, &mech, c->sign);
	if (rv == CKR_MECHANISM_INVALID)
		cs_log_error("the token refused CKM_ECDSA (CKR_MECHANISM_INVALID): it lacks the "
			     "mechanism credsign signs with");
	if (c->always_auth) {
		if (rv == CKR_OK)
			rv = context_login(t, s, pin, pin_len);
		OPENSSL_secure_clear_free(pin, CS_PIN_MAX + 1);
	}
	if (rv != CKR_OK)
		return rv;
	rv = t->call->C_Sign(s->handle, (CK_BYTE_PTR)a->digest, 32, out, &out_len);
	if (rv != CKR_OK)
		return rv;
	if ((*err = cs_ecdsa_sig_to_raw(out, out_len, a->sig->raw)) != CS_OK)
		return CKR_OK;
	*err = cs_ecdsa_raw_to_der(a->sig->raw, a->sig->der, &a->sig->der_len);
	return CKR_OK;
}

static CK_RV op_sign(cs_token *t, tok_session *s, void *arg, cs_err *err)
{
	struct sign_arg *a = arg;
	tok_key_cache *c = NULL;
	CK_RV rv = resolve_key(t, s, a->key, 0, &c, err);
	if (rv != CKR_OK || *err != CS_OK)
		return rv;
	rv = sign_once(t, s, c, a, err);
	if (rv == CKR_OBJECT_HANDLE_INVALID || rv == CKR_KEY_HANDLE_INVALID) {
		if ((rv = resolve_key(t, s, a->key, 1, &c, err)) != CKR_OK || *err != CS_OK)
			return rv;
		rv = sign_once(t, s, c, a, err);
	}
	return rv;
}

cs_err cs_token_sign_es256(cs_token *t, const cs_key_ref *key, const uint8_t digest[32],
			   cs_es256_sig *sig)
{
	if (t != NULL && t->remote != NULL)
		return tok_remote_sign_es256(t, key, digest, sig);
	if (t == NULL || key == NULL || digest == NULL || sig == NULL)
		return CS_E_INVALID_ARG;
	memset(sig, 0, sizeof(*sig));
	struct sign_arg a = {key, digest, sig};
	cs_err r = tok_run(t, op_sign, &a);
	if (r != CS_OK)
		memset(sig, 0, sizeof(*sig));
	return r;
}

/* ---- key generation -------------------------------------------------------- */

/* CKA_ID lengths tried in turn when credsign chooses the id: some HSMs keep
 * only a few bytes (16-bit object ids) and refuse longer ones. */
static const size_t id_lengths[] = {16, 8, 4, 2};
#define ID_DRAWS 8 /* random ids drawn per length before giving up on collisions */

struct gen_arg {
	const char *label;
	const uint8_t *id; /* the caller's id, or NULL: chosen here */
	size_t id_len;
	cs_key_ref *out;
};

static CK_RV check_private_flags(cs_token *t, tok_session *s, CK_OBJECT_HANDLE priv, cs_err *err)
{
	CK_BBOOL sensitive = CK_FALSE, extractable = CK_TRUE, token = CK_FALSE, private = CK_FALSE;
	CK_ATTRIBUTE a[4] = {
		{CKA_SENSITIVE, &sensitive, sizeof(sensitive)},
		{CKA_EXTRACTABLE, &extractable, sizeof(extractable)},
		{CKA_TOKEN, &token, sizeof(token)},
		{CKA_PRIVATE, &private, sizeof(private)},
	};
	CK_RV rv = t->call->C_GetAttributeValue(s->handle, priv, a, 4);
	if (rv != CKR_OK)
		return rv;
	if (!sensitive || extractable || !token || !private) {
		cs_log_error("token did not honour the key template (sensitive=%d extractable=%d)",
			     sensitive, extractable);
		*err = CS_E_TOKEN_DATA;
	}
	return CKR_OK;
}

/* Does any object (of any class) carry this CKA_ID? */
static CK_RV id_taken(cs_token *t, tok_session *s, const uint8_t *id, size_t id_len, int *taken)
{
	CK_OBJECT_HANDLE found[1];
	CK_ULONG n = 0;
	CK_ATTRIBUTE tmpl = {CKA_ID, (void *)id, (CK_ULONG)id_len};
	*taken = 0;
	CK_RV rv = t->call->C_FindObjectsInit(s->handle, &tmpl, 1);
	if (rv != CKR_OK)
		return rv;
	rv = t->call->C_FindObjects(s->handle, found, 1, &n);
	CK_RV rv2 = t->call->C_FindObjectsFinal(s->handle);
	*taken = n > 0;
	return rv != CKR_OK ? rv : rv2;
}

/* A fresh id of id_len bytes from the token's RNG that no object has. */
static CK_RV draw_free_id(cs_token *t, tok_session *s, cs_key_ref *ref, size_t id_len, cs_err *err)
{
	for (int i = 0; i < ID_DRAWS; i++) {
		int taken = 0;
		CK_RV rv = t->call->C_GenerateRandom(s->handle, ref->id, (CK_ULONG)id_len);
		if (rv == CKR_OK)
			rv = id_taken(t, s, ref->id, id_len, &taken);
		if (rv != CKR_OK)
			return rv;
		if (!taken) {
			ref->id_len = id_len;
			return CKR_OK;
		}
	}
	cs_log_error("%d random %zu-byte key ids were all taken in the token", ID_DRAWS, id_len);
	*err = CS_E_KEY_EXISTS;
	return CKR_OK;
}

static CK_RV generate_pair(cs_token *t, tok_session *s, const cs_key_ref *ref, CK_OBJECT_HANDLE *pub,
			   CK_OBJECT_HANDLE *priv)
{
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ULONG label_len = strlen(ref->label);
	CK_ATTRIBUTE pub_tmpl[] = {
		{CKA_TOKEN, &yes, sizeof(yes)},
		{CKA_PRIVATE, &no, sizeof(no)},
		{CKA_VERIFY, &yes, sizeof(yes)},
		{CKA_EC_PARAMS, (void *)cs_p256_ec_params, sizeof(cs_p256_ec_params)},
		{CKA_LABEL, (void *)ref->label, label_len},
		{CKA_ID, (void *)ref->id, ref->id_len},
	};
	CK_ATTRIBUTE priv_tmpl[] = {
		{CKA_TOKEN, &yes, sizeof(yes)},
		{CKA_PRIVATE, &yes, sizeof(yes)},
		{CKA_SENSITIVE, &yes, sizeof(yes)},
		{CKA_EXTRACTABLE, &no, sizeof(no)},
		{CKA_SIGN, &yes, sizeof(yes)},
		{CKA_DERIVE, &no, sizeof(no)},
		{CKA_LABEL, (void *)ref->label, label_len},
		{CKA_ID, (void *)ref->id, ref->id_len},
	};
	CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_RV rv = t->call->C_GenerateKeyPair(s->handle, &mech, pub_tmpl,
					      sizeof(pub_tmpl) / sizeof(pub_tmpl[0]), priv_tmpl,
					      sizeof(priv_tmpl) / sizeof(priv_tmpl[0]), pub, priv);
	if (rv == CKR_MECHANISM_INVALID)
		cs_log_error("the token refused CKM_EC_KEY_PAIR_GEN (CKR_MECHANISM_INVALID): it lacks "
			     "the mechanism credsign generates keys with");
	return rv;
}

static int id_refused(CK_RV rv)
{
	return rv == CKR_ATTRIBUTE_VALUE_INVALID || rv == CKR_TEMPLATE_INCONSISTENT;
}

/* Other answers of C_GenerateKeyPair that refuse the template as such. */
static int template_refused(CK_RV rv)
{
	return id_refused(rv) || rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_READ_ONLY ||
	       rv == CKR_TEMPLATE_INCOMPLETE;
}

static CK_RV op_generate(cs_token *t, tok_session *s, void *arg, cs_err *err)
{
	struct gen_arg *a = arg;
	cs_key_ref ref;
	CK_OBJECT_HANDLE existing[1], pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE;
	CK_ULONG n = 0;
	memset(&ref, 0, sizeof(ref));
	memcpy(ref.label, a->label, strlen(a->label));
	CK_RV rv = find_objects(t, s->handle, CKO_PRIVATE_KEY, &ref, existing, 1, &n);
	if (rv != CKR_OK)
		return rv;
	if (n > 0) {
		*err = CS_E_KEY_EXISTS;
		return CKR_OK;
	}
	if (a->id != NULL) { /* the caller's id: used as given, or refused */
		int taken = 0;
		memcpy(ref.id, a->id, a->id_len);
		ref.id_len = a->id_len;
		if ((rv = id_taken(t, s, ref.id, ref.id_len, &taken)) != CKR_OK)
			return rv;
		if (taken) {
			cs_log_error("an object with this CKA_ID (%zu bytes) exists in the token", ref.id_len);
			*err = CS_E_KEY_EXISTS;
			return CKR_OK;
		}
		rv = generate_pair(t, s, &ref, &pub, &priv);
		size_t shortest = id_lengths[sizeof(id_lengths) / sizeof(id_lengths[0]) - 1];
		if (id_refused(rv) && ref.id_len > shortest) {
			cs_log_error("token refused the key template (C_GenerateKeyPair: %s): it refused the "
				     "key with a %zu-byte CKA_ID; tokens that keep short ids need a shorter "
				     "--id, or none (credsign then tries %zu, %zu, %zu and %zu bytes)",
				     cs_ckr_name(rv), ref.id_len, id_lengths[0], id_lengths[1], id_lengths[2],
				     id_lengths[3]);
			*err = CS_E_KEY_TEMPLATE;
			return CKR_OK;
		}
		if (id_refused(rv)) {
			cs_log_error("token refused the key template (C_GenerateKeyPair: %s); a %zu-byte "
				     "CKA_ID is not the cause: check what the token allows (label length, "
				     "key attributes, its policy)",
				     cs_ckr_name(rv), ref.id_len);
			*err = CS_E_KEY_TEMPLATE;
			return CKR_OK;
		}
	} else {
		for (size_t i = 0; i < sizeof(id_lengths) / sizeof(id_lengths[0]); i++) {
			if ((rv = draw_free_id(t, s, &ref, id_lengths[i], err)) != CKR_OK || *err != CS_OK)
				return rv;
			rv = generate_pair(t, s, &ref, &pub, &priv);
			if (!id_refused(rv))
				break;
			if (i + 1 < sizeof(id_lengths) / sizeof(id_lengths[0])) {
				cs_log_warn("the token refused the key with a %zu-byte CKA_ID (%s); trying "
					    "%zu bytes",
					    id_lengths[i], cs_ckr_name(rv), id_lengths[i + 1]);
			} else {
				/* refused with 2 bytes too: not the id's length */
				cs_log_error("token refused the key template (C_GenerateKeyPair: %s); the "
					     "CKA_ID length is not the cause (%zu, %zu, %zu and %zu bytes were "
					     "all refused): check what the token allows (label length, key "
					     "attributes, its policy)",
					     cs_ckr_name(rv), id_lengths[0], id_lengths[1], id_lengths[2],
					     id_lengths[3]);
				*err = CS_E_KEY_TEMPLATE;
				return CKR_OK;
			}
		}
	}
	if (template_refused(rv)) {
		cs_log_error("token refused the key template (C_GenerateKeyPair: %s): check what the token "
			     "allows (label length, key attributes, its policy)",
			     cs_ckr_name(rv));
		*err = CS_E_KEY_TEMPLATE;
		return CKR_OK;
	}
	if (rv != CKR_OK)
		return rv;
	if ((rv = check_private_flags(t, s, priv, err)) != CKR_OK || *err != CS_OK) {
		(void)t->call->C_DestroyObject(s->handle, priv);
		(void)t->call->C_DestroyObject(s->handle, pub);
		return rv;
	}
	*a->out = ref;
	return CKR_OK;
}

cs_err cs_token_generate_p256_id(cs_token *t, const char *label, const uint8_t *id, size_t id_len,
				 cs_key_ref *out)
{
	if (t != NULL && t->remote != NULL)
		return tok_remote_forbidden(t, "key generation");
	if (t == NULL || label == NULL || out == NULL || label[0] == '\0' ||
	    (id != NULL && (id_len == 0 || id_len > CS_KEY_ID_MAX)))
		return CS_E_INVALID_ARG;
	if (strlen(label) > CS_KEY_LABEL_MAX) {
		cs_log_error("a key label of %zu bytes is longer than credsign takes (%d bytes)", strlen(label),
			     CS_KEY_LABEL_MAX);
		return CS_E_INVALID_ARG;
	}
	if (!t->read_write)
		return CS_E_TOKEN_READ_ONLY;
	struct gen_arg a = {label, id, id_len, out};
	memset(out, 0, sizeof(*out));
	return tok_run(t, op_generate, &a);
}

cs_err cs_token_generate_p256(cs_token *t, const char *label, cs_key_ref *out)
{
	return cs_token_generate_p256_id(t, label, NULL, 0, out);
}

/* ---- key destruction ------------------------------------------------------- */

/* The objects of the key pair `q` names: its private key (at most one) and
 * the public keys with its CKA_ID (its label only breaks a tie, as in
 * find_public), or, when the private key is gone already (a destruction
 * that stopped half-way), the public keys matching q itself. */
static CK_RV find_pair(cs_token *t, tok_session *s, const cs_key_ref *q, CK_OBJECT_HANDLE *priv,
		       CK_ULONG *npriv, CK_OBJECT_HANDLE pub[2], CK_ULONG *npub, cs_err *err)
{
	CK_OBJECT_HANDLE found[2];
	cs_key_ref ref = *q;
	*npriv = *npub = 0;
	CK_RV rv = find_objects(t, s->handle, CKO_PRIVATE_KEY, q, found, 2, npriv);
	if (rv != CKR_OK)
		return rv;
	if (*npriv > 1) {
		*err = CS_E_KEY_AMBIGUOUS;
		return CKR_OK;
	}
	if (*npriv == 1) {
		*priv = found[0];
		if ((rv = read_ref(t, s->handle, *priv, &ref, err)) != CKR_OK || *err != CS_OK)
			return rv;
	}
	cs_key_ref by_id = ref;
	if (*npriv == 1 && ref.id_len > 0)
		by_id.label[0] = '\0';
	if (by_id.id_len == 0 && by_id.label[0] == '\0')
		return CKR_OK; /* never "any public key" */
	rv = find_objects(t, s->handle, CKO_PUBLIC_KEY, &by_id, pub, 2, npub);
	if (rv == CKR_OK && *npub > 1 && ref.id_len > 0 && ref.label[0] != '\0') {
		CK_ULONG by_label = 0; /* the tie; none labelled like the key: still ambiguous */
		rv = find_objects(t, s->handle, CKO_PUBLIC_KEY, &ref, pub, 2, &by_label);
		if (by_label > 0)
			*npub = by_label;
	}
	if (rv == CKR_OK && *npub > 1)
		*err = CS_E_KEY_AMBIGUOUS;
	return rv;
}

static CK_RV op_destroy(cs_token *t, tok_session *s, void *arg, cs_err *err)
{
	const cs_key_ref *q = arg;
	CK_OBJECT_HANDLE priv = CK_INVALID_HANDLE, pub[2];
	CK_ULONG npriv = 0, npub = 0;
	pthread_mutex_lock(&t->objects_lock); /* no search meets a half-destroyed pair */
	CK_RV rv = find_pair(t, s, q, &priv, &npriv, pub, &npub, err);
	if (rv == CKR_OK && *err == CS_OK && npriv == 0 && npub == 0)
		*err = CS_E_KEY_NOT_FOUND;
	/* the private key first: should the token fail in between, what is
	 * left is a public key, found and destroyed by the next attempt */
	if (rv == CKR_OK && *err == CS_OK && npriv == 1)
		rv = t->call->C_DestroyObject(s->handle, priv);
	if (rv == CKR_OK && *err == CS_OK && npub == 1)
		rv = t->call->C_DestroyObject(s->handle, pub[0]);
	pthread_mutex_unlock(&t->objects_lock);
	if (rv != CKR_OK || *err != CS_OK)
		return rv;
	/* every pooled session is replaced (as after a recovery): their
	 * session-object copies of the key and cached handles go with them */
	pthread_mutex_lock(&t->lock);
	t->generation++;
	pthread_mutex_unlock(&t->lock);
	return CKR_OK;
}

cs_err cs_token_destroy_key(cs_token *t, const cs_key_ref *key)
{
	if (t != NULL && t->remote != NULL)
		return tok_remote_forbidden(t, "key destruction");
	if (t == NULL || key == NULL || (key->label[0] == '\0' && key->id_len == 0) ||
	    key->id_len > CS_KEY_ID_MAX || memchr(key->label, '\0', sizeof(key->label)) == NULL)
		return CS_E_INVALID_ARG;
	if (!t->read_write)
		return CS_E_TOKEN_READ_ONLY;
	return tok_run(t, op_destroy, (void *)key);
}

/* ---- mechanisms ------------------------------------------------------------ */

static const struct {
	CK_MECHANISM_TYPE type;
	const char *name;
	unsigned needs;
	CK_FLAGS flag;
	const char *use; /* what the flag allows, as the problem names it */
} wanted[CS_TOKEN_MECHANISMS] = {
	{CKM_ECDSA, "CKM_ECDSA", CS_TOKEN_NEEDS_SIGN, CKF_SIGN, "sign"},
	{CKM_EC_KEY_PAIR_GEN, "CKM_EC_KEY_PAIR_GEN", CS_TOKEN_NEEDS_GENERATE, CKF_GENERATE_KEY_PAIR,
	 "generate key pair"},
};

/* EC key sizes are the field size in bits; some tokens report bytes;
 * 0..0 says nothing. */
static int covers_p256(CK_ULONG min, CK_ULONG max)
{
	if (min == 0 && max == 0)
		return 1;
	if (min <= 256 && 256 <= max)
		return 1;
	return max <= 66 && min <= 32 && 32 <= max; /* bytes: P-521 is 66 */
}

static CK_RV op_mechanisms(cs_token *t, tok_session *s, void *arg, cs_err *err)
{
	cs_token_mechanism *out = arg;
	CK_ULONG count = 0;
	CK_MECHANISM_TYPE *list = NULL;
	CK_RV rv = t->call->C_GetMechanismList(s->slot, NULL, &count);
	/* a token that does not list its mechanisms is asked for each one */
	int unlisted = rv == CKR_FUNCTION_NOT_SUPPORTED;
	if (unlisted)
		count = 0;
	else if (rv != CKR_OK)
		return rv;
	/* one spare element: p11-kit-client.so before 0.25.0 reads one past
	 * the list when it drops mechanisms its protocol does not carry
	 * (p11-kit commit 8fd7fc5) */
	if (count > 0 && (list = calloc(count + 1, sizeof(*list))) == NULL) {
		*err = CS_E_NOMEM;
		return CKR_OK;
	}
	if (count > 0 && (rv = t->call->C_GetMechanismList(s->slot, list, &count)) != CKR_OK) {
		free(list);
		return rv;
	}
	for (size_t i = 0; i < CS_TOKEN_MECHANISMS; i++) {
		cs_token_mechanism *m = &out[i];
		memset(m, 0, sizeof(*m));
		m->name = wanted[i].name;
		m->type = wanted[i].type;
		m->needs = wanted[i].needs;
		m->listed = unlisted;
		for (CK_ULONG j = 0; j < count && !m->listed; j++)
			m->listed = list[j] == wanted[i].type;
		CK_MECHANISM_INFO info;
		memset(&info, 0, sizeof(info));
		if (m->listed) {
			rv = t->call->C_GetMechanismInfo(s->slot, wanted[i].type, &info);
			if (rv == CKR_MECHANISM_INVALID) {
				m->listed = 0; /* listed, then denied: not there */
			} else if (rv == CKR_FUNCTION_NOT_SUPPORTED && unlisted) {
				/* the token tells nothing: not checked, not refused */
				cs_log_warn("the token reports no mechanisms; %s not checked", m->name);
				info.flags = wanted[i].flag;
			} else if (rv != CKR_OK) {
				break;
			}
			rv = CKR_OK;
		}
		m->flags = info.flags;
		m->min_key_size = info.ulMinKeySize;
		m->max_key_size = info.ulMaxKeySize;
		if (!m->listed)
			snprintf(m->problem, sizeof(m->problem), "token lacks %s (%s)", m->name, wanted[i].use);
		else if (!(info.flags & wanted[i].flag))
			snprintf(m->problem, sizeof(m->problem),
				 "token lacks %s (%s): the mechanism is listed without that use", m->name,
				 wanted[i].use);
		else if (!covers_p256(info.ulMinKeySize, info.ulMaxKeySize))
			snprintf(m->problem, sizeof(m->problem),
				 "token lacks %s (%s) for P-256: key sizes %lu..%lu do not include 256 bits",
				 m->name, wanted[i].use, (unsigned long)info.ulMinKeySize,
				 (unsigned long)info.ulMaxKeySize);
	}
	free(list);
	return rv;
}

cs_err cs_token_mechanisms(cs_token *t, cs_token_mechanism out[CS_TOKEN_MECHANISMS])
{
	if (t != NULL && t->remote != NULL)
		return tok_remote_mechanisms(t, out);
	if (t == NULL || out == NULL)
		return CS_E_INVALID_ARG;
	return tok_run(t, op_mechanisms, out);
}

cs_err cs_token_check_mechanisms(cs_token *t, unsigned needs, char *why, size_t why_size)
{
	cs_token_mechanism m[CS_TOKEN_MECHANISMS];
	if (why_size > 0)
		why[0] = '\0';
	cs_err r = cs_token_mechanisms(t, m);
	if (r != CS_OK)
		return r;
	for (size_t i = 0; i < CS_TOKEN_MECHANISMS; i++) {
		if ((m[i].needs & needs) && m[i].problem[0] != '\0') {
			snprintf(why, why_size, "%s", m[i].problem);
			return CS_E_MECHANISM;
		}
	}
	return CS_OK;
}
