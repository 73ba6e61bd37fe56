/* token_meter: see token_meter.h. */
#include "token_meter.h"

#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "cs_log.h"

static cs_token_call_fn observer;
static int tracking;
static CK_FUNCTION_LIST *real_list;
static CK_FUNCTION_LIST metered;

/* this thread's last failing call */
static _Thread_local const char *failed_fn;
static _Thread_local CK_RV failed_rv;

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

CK_FUNCTION_LIST *cs_token_meter_wrap(CK_FUNCTION_LIST *real)
{
	if ((observer == NULL && !tracking) || real == NULL)
		return real;
	real_list = real;
	metered = *real;
#define WRAP(name, params, args) metered.name = real->name != NULL ? metered_##name : NULL;
	CS_P11_FUNCTIONS(WRAP)
#undef WRAP
	return &metered;
}
