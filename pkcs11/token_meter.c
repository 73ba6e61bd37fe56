/* token_meter: see token_meter.h. */
#include "token_meter.h"

#include <time.h>

static cs_token_call_fn observer;
static CK_FUNCTION_LIST *real_list;
static CK_FUNCTION_LIST metered;

void cs_token_meter_observe(cs_token_call_fn fn)
{
	observer = fn;
}

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* A wrapper per function: time the real call, report it. */
#define METERED(name, params, args)                                           \
	static CK_RV metered_##name params                                    \
	{                                                                     \
		uint64_t t0 = now_ns();                                       \
		CK_RV rv = real_list->name args;                              \
		cs_token_call_fn fn = observer;                               \
		if (fn != NULL)                                               \
			fn(#name, now_ns() - t0, (unsigned long)rv);          \
		return rv;                                                    \
	}

METERED(C_Initialize, (CK_VOID_PTR a), (a))
METERED(C_Finalize, (CK_VOID_PTR a), (a))
METERED(C_GetInfo, (CK_INFO_PTR a), (a))
METERED(C_GetSlotList, (CK_BBOOL a, CK_SLOT_ID_PTR b, CK_ULONG_PTR c), (a, b, c))
METERED(C_GetTokenInfo, (CK_SLOT_ID a, CK_TOKEN_INFO_PTR b), (a, b))
METERED(C_GetMechanismInfo, (CK_SLOT_ID a, CK_MECHANISM_TYPE b, CK_MECHANISM_INFO_PTR c), (a, b, c))
METERED(C_OpenSession, (CK_SLOT_ID a, CK_FLAGS b, CK_VOID_PTR c, CK_NOTIFY d, CK_SESSION_HANDLE_PTR e),
	(a, b, c, d, e))
METERED(C_CloseSession, (CK_SESSION_HANDLE a), (a))
METERED(C_GetSessionInfo, (CK_SESSION_HANDLE a, CK_SESSION_INFO_PTR b), (a, b))
METERED(C_Login, (CK_SESSION_HANDLE a, CK_USER_TYPE b, CK_UTF8CHAR_PTR c, CK_ULONG d), (a, b, c, d))
METERED(C_Logout, (CK_SESSION_HANDLE a), (a))
METERED(C_FindObjectsInit, (CK_SESSION_HANDLE a, CK_ATTRIBUTE_PTR b, CK_ULONG c), (a, b, c))
METERED(C_FindObjects, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE_PTR b, CK_ULONG c, CK_ULONG_PTR d),
	(a, b, c, d))
METERED(C_FindObjectsFinal, (CK_SESSION_HANDLE a), (a))
METERED(C_GetAttributeValue, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b, CK_ATTRIBUTE_PTR c, CK_ULONG d),
	(a, b, c, d))
METERED(C_CopyObject,
	(CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b, CK_ATTRIBUTE_PTR c, CK_ULONG d, CK_OBJECT_HANDLE_PTR e),
	(a, b, c, d, e))
METERED(C_DestroyObject, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b), (a, b))
METERED(C_SignInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), (a, b, c))
METERED(C_Sign, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e),
	(a, b, c, d, e))
METERED(C_GenerateRandom, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), (a, b, c))
METERED(C_GenerateKeyPair,
	(CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_ATTRIBUTE_PTR c, CK_ULONG d, CK_ATTRIBUTE_PTR e,
	 CK_ULONG f, CK_OBJECT_HANDLE_PTR g, CK_OBJECT_HANDLE_PTR h),
	(a, b, c, d, e, f, g, h))

CK_FUNCTION_LIST *cs_token_meter_wrap(CK_FUNCTION_LIST *real)
{
	if (observer == NULL || real == NULL)
		return real;
	real_list = real;
	metered = *real;
#define WRAP(name) metered.name = real->name != NULL ? metered_##name : NULL
	WRAP(C_Initialize);
	WRAP(C_Finalize);
	WRAP(C_GetInfo);
	WRAP(C_GetSlotList);
	WRAP(C_GetTokenInfo);
	WRAP(C_GetMechanismInfo);
	WRAP(C_OpenSession);
	WRAP(C_CloseSession);
	WRAP(C_GetSessionInfo);
	WRAP(C_Login);
	WRAP(C_Logout);
	WRAP(C_FindObjectsInit);
	WRAP(C_FindObjects);
	WRAP(C_FindObjectsFinal);
	WRAP(C_GetAttributeValue);
	WRAP(C_CopyObject);
	WRAP(C_DestroyObject);
	WRAP(C_SignInit);
	WRAP(C_Sign);
	WRAP(C_GenerateRandom);
	WRAP(C_GenerateKeyPair);
#undef WRAP
	return &metered;
}
