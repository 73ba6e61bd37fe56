/* token_meter: see token_meter.h. */
#include "token_meter.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <p11-kit/uri.h>

#include "cs_log.h"

static cs_token_call_fn observer;
static int tracking;
static CK_FUNCTION_LIST *real_list;
static CK_FUNCTION_LIST metered;

/* this thread's last failing call */
static _Thread_local const char *failed_fn;
static _Thread_local CK_RV failed_rv;

/* the tokens C_GetTokenInfo described on this thread: the latest answer
 * per slot, in the order first seen; `latest` is the last answer's entry */
typedef struct {
	CK_SLOT_ID slot;
	CK_TOKEN_INFO info;
} seen_token;
static _Thread_local seen_token seen_tokens[CS_TOKEN_METER_SEEN_MAX];
static _Thread_local size_t nseen;
static _Thread_local long latest = -1;

void cs_token_meter_observe(cs_token_call_fn fn)
{
	observer = fn;
}

void cs_token_meter_track_failures(void)
{
	tracking = 1;
}

void cs_token_meter_clear(void)
{
	failed_fn = NULL;
	failed_rv = CKR_OK;
	nseen = 0;
	latest = -1;
}

void cs_token_meter_note_failure(const char *function, CK_RV rv)
{
	failed_fn = function;
	failed_rv = rv;
}

int cs_token_meter_token_flags(CK_FLAGS *flags)
{
	if (latest < 0)
		return 0;
	*flags = seen_tokens[latest].info.flags;
	return 1;
}

const char *cs_token_meter_matching_tokens(const char *token_uri, char *buf, size_t len)
{
	if (len == 0)
		return buf;
	buf[0] = '\0';
	P11KitUri *uri = p11_kit_uri_new();
	if (uri == NULL || p11_kit_uri_parse(token_uri, P11_KIT_URI_FOR_ANY, uri) != P11_KIT_URI_OK) {
		p11_kit_uri_free(uri);
		return buf;
	}
	CK_SLOT_ID want_slot = p11_kit_uri_get_slot_id(uri);
	size_t used = 0;
	for (size_t i = 0; i < nseen && used < len; i++) {
		const CK_TOKEN_INFO *t = &seen_tokens[i].info;
		if (!(t->flags & CKF_TOKEN_INITIALIZED) || !p11_kit_uri_match_token_info(uri, t) ||
		    (want_slot != (CK_SLOT_ID)-1 && seen_tokens[i].slot != want_slot))
			continue;
		/* the serial, blank padding removed */
		int n = (int)sizeof(t->serialNumber);
		while (n > 0 && (t->serialNumber[n - 1] == ' ' || t->serialNumber[n - 1] == '\0'))
			n--;
		int w = snprintf(buf + used, len - used, "%s%.*s (slot %lu)", used > 0 ? ", " : "", n,
				 (const char *)t->serialNumber, (unsigned long)seen_tokens[i].slot);
		used += w > 0 ? (size_t)w : 0;
	}
	if (used >= len) /* cut: end it visibly */
		snprintf(buf + (len > 4 ? len - 4 : 0), len > 4 ? 4 : len, "...");
	p11_kit_uri_free(uri);
	return buf;
}

int cs_token_meter_last_failure(const char **function, CK_RV *rv)
{
	*function = failed_fn;
	*rv = failed_rv;
	return failed_fn != NULL;
}

const char *cs_token_meter_cause(cs_err err, char *buf, size_t len)
{
	const char *fn;
	CK_RV rv;
	if (len == 0)
		return buf;
	buf[0] = '\0';
	if (err == CS_OK || !cs_token_meter_last_failure(&fn, &rv))
		return buf;
	cs_err_category cat = cs_err_category_of(err);
	if (cs_err_from_ckr(rv) == err || cat == CS_CAT_TOKEN || cat == CS_CAT_AUTH)
		snprintf(buf, len, "%s: %s", fn, cs_ckr_name(rv));
	return buf;
}

cs_pin_state cs_token_meter_pin_state(cs_err err, char *source, size_t len)
{
	static const struct {
		CK_RV rv;
		cs_pin_state state;
	} calls[] = {
		{CKR_USER_PIN_NOT_INITIALIZED, CS_PIN_STATE_NOT_INITIALIZED},
		{CKR_PIN_EXPIRED, CS_PIN_STATE_EXPIRED},
		{CKR_NEW_PIN_MODE, CS_PIN_STATE_EXPIRED},
		{CKR_PIN_LOCKED, CS_PIN_STATE_LOCKED},
	};
	/* in the order the token layer checks them before C_Login */
	static const struct {
		CK_FLAGS flag;
		int set;
		cs_pin_state state;
		const char *text;
	} flags[] = {
		{CKF_USER_PIN_LOCKED, 1, CS_PIN_STATE_LOCKED, "CKF_USER_PIN_LOCKED"},
		{CKF_USER_PIN_FINAL_TRY, 1, CS_PIN_STATE_FINAL_TRY, "CKF_USER_PIN_FINAL_TRY"},
		{CKF_USER_PIN_TO_BE_CHANGED, 1, CS_PIN_STATE_EXPIRED, "CKF_USER_PIN_TO_BE_CHANGED"},
		{CKF_USER_PIN_INITIALIZED, 0, CS_PIN_STATE_NOT_INITIALIZED, "CKF_USER_PIN_INITIALIZED not set"},
	};
	const char *fn;
	CK_RV rv;
	CK_FLAGS token_flags;
	if (len > 0)
		source[0] = '\0';
	if (err != CS_E_PIN_LOCKED && err != CS_E_PIN_EXPIRED && err != CS_E_PIN_FINAL_TRY)
		return CS_PIN_STATE_UNKNOWN;
	if (cs_token_meter_last_failure(&fn, &rv)) {
		for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++)
			if (calls[i].rv == rv) {
				snprintf(source, len, "%s: %s", fn, cs_ckr_name(rv));
				return calls[i].state;
			}
	}
	if (!cs_token_meter_token_flags(&token_flags))
		return CS_PIN_STATE_UNKNOWN;
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		if (((token_flags & flags[i].flag) != 0) == flags[i].set) {
			snprintf(source, len, "C_GetTokenInfo: %s", flags[i].text);
			return flags[i].state;
		}
	return CS_PIN_STATE_UNKNOWN;
}

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* A failing call is logged at debug level, but one that needs recovery
 * (device removed or broken, session lost: a fault of the token, not a
 * probe the token layer expects to fail) at warning level, the default's
 * view, at most one line a second: a token going away fails every call in
 * flight. */
static void failed(const char *fn, CK_RV rv)
{
	static atomic_long last_s, held_back;
	failed_fn = fn;
	failed_rv = rv;
	if (!cs_ckr_needs_recovery(rv)) {
		if (cs_log_enabled(CS_LOG_DEBUG))
			cs_log_write(CS_LOG_DEBUG, "pkcs11", "PKCS#11 call failed: %s: %s (%s)", fn,
				     cs_ckr_name(rv), cs_ckr_message(rv));
		return;
	}
	long now = (long)time(NULL), seen = atomic_load(&last_s);
	if (now == seen || !atomic_compare_exchange_strong(&last_s, &seen, now)) {
		atomic_fetch_add(&held_back, 1);
		return;
	}
	char more[64] = "";
	long n = atomic_exchange(&held_back, 0);
	if (n > 0)
		snprintf(more, sizeof(more), "; %ld more since the last such line", n);
	cs_log_write(CS_LOG_WARN, "pkcs11", "PKCS#11 call failed: %s: %s (%s)%s", fn, cs_ckr_name(rv),
		     cs_ckr_message(rv), more);
}

/* Every function of CK_FUNCTION_LIST (PKCS#11 2.40) but C_GetFunctionList:
 * X(name, parameters, arguments). */
#define CS_P11_FUNCTIONS(X) \
	X(C_Initialize, (CK_VOID_PTR a), (a)) \
	X(C_Finalize, (CK_VOID_PTR a), (a)) \
	X(C_GetInfo, (CK_INFO_PTR a), (a)) \
	X(C_GetSlotList, (CK_BBOOL a, CK_SLOT_ID_PTR b, CK_ULONG_PTR c), (a, b, c)) \
	X(C_GetSlotInfo, (CK_SLOT_ID a, CK_SLOT_INFO_PTR b), (a, b)) \
	X(C_GetTokenInfo, (CK_SLOT_ID a, CK_TOKEN_INFO_PTR b), (a, b)) \
	X(C_GetMechanismList, (CK_SLOT_ID a, CK_MECHANISM_TYPE_PTR b, CK_ULONG_PTR c), (a, b, c)) \
	X(C_GetMechanismInfo, (CK_SLOT_ID a, CK_MECHANISM_TYPE b, CK_MECHANISM_INFO_PTR c), (a, b, c)) \
	X(C_InitToken, (CK_SLOT_ID a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d), (a, b, c, d)) \
	X(C_InitPIN, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), (a, b, c)) \
	X(C_SetPIN, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG e), (a, b, c, d, e)) \
	X(C_OpenSession, (CK_SLOT_ID a, CK_FLAGS b, CK_VOID_PTR c, CK_NOTIFY d, CK_SESSION_HANDLE_PTR e), (a, b, c, d, e)) \
	X(C_CloseSession, (CK_SESSION_HANDLE a), (a)) \
	X(C_CloseAllSessions, (CK_SLOT_ID a), (a)) \
	X(C_GetSessionInfo, (CK_SESSION_HANDLE a, CK_SESSION_INFO_PTR b), (a, b)) \
	X(C_GetOperationState, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG_PTR c), (a, b, c)) \
	X(C_SetOperationState, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_OBJECT_HANDLE d, CK_OBJECT_HANDLE e), (a, b, c, d, e)) \
	X(C_Login, (CK_SESSION_HANDLE a, CK_USER_TYPE b, CK_BYTE_PTR c, CK_ULONG d), (a, b, c, d)) \
	X(C_Logout, (CK_SESSION_HANDLE a), (a)) \
	X(C_CreateObject, (CK_SESSION_HANDLE a, CK_ATTRIBUTE_PTR b, CK_ULONG c, CK_OBJECT_HANDLE_PTR d), (a, b, c, d)) \
	X(C_CopyObject, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b, CK_ATTRIBUTE_PTR c, CK_ULONG d, CK_OBJECT_HANDLE_PTR e), (a, b, c, d, e)) \
	X(C_DestroyObject, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b), (a, b)) \
	X(C_GetObjectSize, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b, CK_ULONG_PTR c), (a, b, c)) \
	X(C_GetAttributeValue, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b, CK_ATTRIBUTE_PTR c, CK_ULONG d), (a, b, c, d)) \
	X(C_SetAttributeValue, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b, CK_ATTRIBUTE_PTR c, CK_ULONG d), (a, b, c, d)) \
	X(C_FindObjectsInit, (CK_SESSION_HANDLE a, CK_ATTRIBUTE_PTR b, CK_ULONG c), (a, b, c)) \
	X(C_FindObjects, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE_PTR b, CK_ULONG c, CK_ULONG_PTR d), (a, b, c, d)) \
	X(C_FindObjectsFinal, (CK_SESSION_HANDLE a), (a)) \
	X(C_EncryptInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), (a, b, c)) \
	X(C_Encrypt, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
	X(C_EncryptUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
	X(C_EncryptFinal, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG_PTR c), (a, b, c)) \
	X(C_DecryptInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), (a, b, c)) \
	X(C_Decrypt, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
	X(C_DecryptUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
	X(C_DecryptFinal, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG_PTR c), (a, b, c)) \
	X(C_DigestInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b), (a, b)) \
	X(C_Digest, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
	X(C_DigestUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), (a, b, c)) \
	X(C_DigestKey, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b), (a, b)) \
	X(C_DigestFinal, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG_PTR c), (a, b, c)) \
	X(C_SignInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), (a, b, c)) \
	X(C_Sign, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
	X(C_SignUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), (a, b, c)) \
	X(C_SignFinal, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG_PTR c), (a, b, c)) \
	X(C_SignRecoverInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), (a, b, c)) \
	X(C_SignRecover, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
	X(C_VerifyInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), (a, b, c)) \
	X(C_Verify, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG e), (a, b, c, d, e)) \
	X(C_VerifyUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), (a, b, c)) \
	X(C_VerifyFinal, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), (a, b, c)) \
	X(C_VerifyRecoverInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), (a, b, c)) \
	X(C_VerifyRecover, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
	X(C_DigestEncryptUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
	X(C_DecryptDigestUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
	X(C_SignEncryptUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
	X(C_DecryptVerifyUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
	X(C_GenerateKey, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_ATTRIBUTE_PTR c, CK_ULONG d, CK_OBJECT_HANDLE_PTR e), (a, b, c, d, e)) \
	X(C_GenerateKeyPair, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_ATTRIBUTE_PTR c, CK_ULONG d, CK_ATTRIBUTE_PTR e, CK_ULONG f, CK_OBJECT_HANDLE_PTR g, CK_OBJECT_HANDLE_PTR h), (a, b, c, d, e, f, g, h)) \
	X(C_WrapKey, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c, CK_OBJECT_HANDLE d, CK_BYTE_PTR e, CK_ULONG_PTR f), (a, b, c, d, e, f)) \
	X(C_UnwrapKey, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c, CK_BYTE_PTR d, CK_ULONG e, CK_ATTRIBUTE_PTR f, CK_ULONG g, CK_OBJECT_HANDLE_PTR h), (a, b, c, d, e, f, g, h)) \
	X(C_DeriveKey, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c, CK_ATTRIBUTE_PTR d, CK_ULONG e, CK_OBJECT_HANDLE_PTR f), (a, b, c, d, e, f)) \
	X(C_SeedRandom, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), (a, b, c)) \
	X(C_GenerateRandom, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), (a, b, c)) \
	X(C_GetFunctionStatus, (CK_SESSION_HANDLE a), (a)) \
	X(C_CancelFunction, (CK_SESSION_HANDLE a), (a)) \
	X(C_WaitForSlotEvent, (CK_FLAGS a, CK_SLOT_ID_PTR b, CK_VOID_PTR c), (a, b, c))

const char *cs_token_meter_function_name(const char *name)
{
	static const char *const names[] = {
#define NAME(name, params, args) #name,
		CS_P11_FUNCTIONS(NAME)
#undef NAME
	};
	if (name == NULL)
		return NULL;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(names[i], name) == 0)
			return names[i];
	return NULL;
}

/* A wrapper per function: time the real call when observed, report it,
 * remember it when it failed. */
#define METERED(name, params, args)                                           \
	static CK_RV metered_##name params                                    \
	{                                                                     \
		cs_token_call_fn fn = observer;                               \
		uint64_t t0 = fn != NULL ? now_ns() : 0;                      \
		CK_RV rv = real_list->name args;                              \
		if (fn != NULL)                                               \
			fn(#name, now_ns() - t0, (unsigned long)rv);          \
		if (rv != CKR_OK)                                             \
			failed(#name, rv);                                    \
		return rv;                                                    \
	}
CS_P11_FUNCTIONS(METERED)
#undef METERED

/* C_GetTokenInfo also keeps what the token said (cs_token_meter_token_flags,
 * cs_token_meter_matching_tokens). */
static CK_RV metered_token_info(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
	CK_RV rv = metered_C_GetTokenInfo(slot, info);
	if (rv != CKR_OK || info == NULL)
		return rv;
	size_t i = 0;
	while (i < nseen && seen_tokens[i].slot != slot)
		i++;
	if (i == nseen && nseen == CS_TOKEN_METER_SEEN_MAX)
		return rv; /* more slots than kept: the first ones are */
	nseen += i == nseen;
	seen_tokens[i].slot = slot;
	seen_tokens[i].info = *info;
	latest = (long)i;
	return rv;
}

CK_FUNCTION_LIST *cs_token_meter_wrap(CK_FUNCTION_LIST *real)
{
	if ((observer == NULL && !tracking) || real == NULL)
		return real;
	real_list = real;
	metered = *real;
#define WRAP(name, params, args) metered.name = real->name != NULL ? metered_##name : NULL;
	CS_P11_FUNCTIONS(WRAP)
#undef WRAP
	if (real->C_GetTokenInfo != NULL)
		metered.C_GetTokenInfo = metered_token_info;
	return &metered;
}
