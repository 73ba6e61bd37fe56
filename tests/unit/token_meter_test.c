/* token_meter_test: the metered function list remembers each thread's last
 * failing PKCS#11 call and names it when it explains an error. A fake
 * module (a function list of a few functions) answers what each test asks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cs_log.h"
#include "token_meter.h"

static CK_RV next_rv; /* what the fake module's functions answer */

static CK_RV fake_login(CK_SESSION_HANDLE h, CK_USER_TYPE u, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
	(void)h;
	(void)u;
	(void)pin;
	(void)len;
	return next_rv;
}

static CK_RV fake_get_slot_info(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info)
{
	(void)slot;
	(void)info;
	return next_rv;
}

static CK_RV fake_get_mechanism_list(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR n)
{
	(void)slot;
	(void)list;
	(void)n;
	return next_rv;
}

static CK_RV fake_find_objects_init(CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR t, CK_ULONG n)
{
	(void)h;
	(void)t;
	(void)n;
	return next_rv;
}

static CK_FLAGS fake_flags; /* what the fake token reports */

/* A token labelled cstest with serial "SER<slot>" in every slot. */
static CK_RV fake_get_token_info(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
	char serial[17];
	if (next_rv != CKR_OK || info == NULL)
		return next_rv;
	memset(info, 0, sizeof(*info));
	memset(info->label, ' ', sizeof(info->label));
	memcpy(info->label, "cstest", 6);
	memset(info->serialNumber, ' ', sizeof(info->serialNumber));
	int n = snprintf(serial, sizeof(serial), "SER%lu", (unsigned long)slot);
	memcpy(info->serialNumber, serial, (size_t)n);
	info->flags = fake_flags;
	return CKR_OK;
}

static CK_FUNCTION_LIST fake = {
	.version = {2, 40},
	.C_Login = fake_login,
	.C_GetSlotInfo = fake_get_slot_info,
	.C_GetMechanismList = fake_get_mechanism_list,
	.C_FindObjectsInit = fake_find_objects_init,
	.C_GetTokenInfo = fake_get_token_info,
};
static CK_FUNCTION_LIST *list;

static const char *observed_fn;
static unsigned long observed_rv;
static void observe(const char *function, uint64_t duration_ns, unsigned long rv)
{
	(void)duration_ns;
	observed_fn = function;
	observed_rv = rv;
}

static int setup(void **state)
{
	(void)state;
	cs_token_meter_track_failures();
	list = cs_token_meter_wrap(&fake);
	return list == NULL || list == &fake ? -1 : 0;
}

static void test_failing_call_is_named(void **state)
{
	(void)state;
	char buf[128];
	const char *fn;
	CK_RV rv;
	cs_token_meter_clear();
	assert_int_equal(cs_token_meter_last_failure(&fn, &rv), 0);
	next_rv = CKR_PIN_INCORRECT;
	assert_int_equal(list->C_Login(1, CKU_USER, (CK_UTF8CHAR_PTR) "0000", 4), CKR_PIN_INCORRECT);
	assert_int_equal(cs_token_meter_last_failure(&fn, &rv), 1);
	assert_string_equal(fn, "C_Login");
	assert_int_equal(rv, CKR_PIN_INCORRECT);
	/* the error it maps to, and any token or authentication error */
	assert_string_equal(cs_token_meter_cause(CS_E_PIN_INCORRECT, buf, sizeof(buf)), "C_Login: CKR_PIN_INCORRECT");
	assert_string_equal(cs_token_meter_cause(CS_E_TOKEN_UNAVAILABLE, buf, sizeof(buf)),
			    "C_Login: CKR_PIN_INCORRECT");
	/* not an error it cannot explain, nor success */
	assert_string_equal(cs_token_meter_cause(CS_E_KEY_NOT_FOUND, buf, sizeof(buf)), "");
	assert_string_equal(cs_token_meter_cause(CS_E_CONFIG, buf, sizeof(buf)), "");
	assert_string_equal(cs_token_meter_cause(CS_OK, buf, sizeof(buf)), "");
	/* a later success does not hide it; clearing does */
	next_rv = CKR_OK;
	assert_int_equal(list->C_FindObjectsInit(1, NULL, 0), CKR_OK);
	assert_string_equal(cs_token_meter_cause(CS_E_PIN_INCORRECT, buf, sizeof(buf)), "C_Login: CKR_PIN_INCORRECT");
	cs_token_meter_clear();
	assert_string_equal(cs_token_meter_cause(CS_E_PIN_INCORRECT, buf, sizeof(buf)), "");
	/* cut to the buffer, never overrun */
	next_rv = CKR_DEVICE_REMOVED;
	(void)list->C_FindObjectsInit(1, NULL, 0);
	char small[8];
	assert_string_equal(cs_token_meter_cause(CS_E_TOKEN_UNAVAILABLE, small, sizeof(small)), "C_FindO");
}

/* every function of the list is wrapped, those credsign did not call
 * before too (tokens differ: C_GetSlotInfo, C_GetMechanismList); functions
 * the module lacks stay NULL */
static void test_every_function_is_wrapped(void **state)
{
	(void)state;
	char buf[128];
	cs_token_meter_clear();
	next_rv = CKR_SLOT_ID_INVALID;
	assert_ptr_not_equal(list->C_GetSlotInfo, fake.C_GetSlotInfo);
	(void)list->C_GetSlotInfo(7, NULL);
	assert_string_equal(cs_token_meter_cause(CS_E_TOKEN_NOT_FOUND, buf, sizeof(buf)),
			    "C_GetSlotInfo: CKR_SLOT_ID_INVALID");
	next_rv = CKR_FUNCTION_FAILED;
	(void)list->C_GetMechanismList(7, NULL, NULL);
	assert_string_equal(cs_token_meter_cause(CS_E_TOKEN_FAILED, buf, sizeof(buf)),
			    "C_GetMechanismList: CKR_FUNCTION_FAILED");
	assert_null(list->C_Sign);
	assert_null(list->C_GenerateRandom);
}

static void *fail_in_thread(void *arg)
{
	(void)arg;
	next_rv = CKR_PIN_LOCKED;
	(void)list->C_Login(1, CKU_USER, NULL, 0);
	return NULL;
}

/* the record is the calling thread's: another thread's failure is not
 * this thread's cause */
static void test_record_is_per_thread(void **state)
{
	(void)state;
	char buf[128];
	pthread_t t;
	cs_token_meter_clear();
	assert_int_equal(pthread_create(&t, NULL, fail_in_thread, NULL), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_string_equal(cs_token_meter_cause(CS_E_PIN_LOCKED, buf, sizeof(buf)), "");
}

/* the observer (the daemon's metrics) sees every call, failing or not */
static void test_observer_sees_calls(void **state)
{
	(void)state;
	cs_token_meter_observe(observe);
	next_rv = CKR_OK;
	(void)list->C_FindObjectsInit(1, NULL, 0);
	assert_string_equal(observed_fn, "C_FindObjectsInit");
	assert_int_equal(observed_rv, CKR_OK);
	next_rv = CKR_DEVICE_ERROR;
	(void)list->C_Login(1, CKU_USER, NULL, 0);
	assert_string_equal(observed_fn, "C_Login");
	assert_int_equal(observed_rv, CKR_DEVICE_ERROR);
	cs_token_meter_observe(NULL);
}

/* ---- a module with every function ------------------------------------------------
 * Each function of CK_FUNCTION_LIST (PKCS#11 2.40, C_GetFunctionList
 * aside), as X(name, parameters, arguments that are all zero). */
#define FULL_FUNCTIONS(X) \
	X(C_Initialize, (CK_VOID_PTR a), (NULL)) \
	X(C_Finalize, (CK_VOID_PTR a), (NULL)) \
	X(C_GetInfo, (CK_INFO_PTR a), (NULL)) \
	X(C_GetSlotList, (CK_BBOOL a, CK_SLOT_ID_PTR b, CK_ULONG_PTR c), (0, NULL, NULL)) \
	X(C_GetSlotInfo, (CK_SLOT_ID a, CK_SLOT_INFO_PTR b), (0, NULL)) \
	X(C_GetTokenInfo, (CK_SLOT_ID a, CK_TOKEN_INFO_PTR b), (0, NULL)) \
	X(C_GetMechanismList, (CK_SLOT_ID a, CK_MECHANISM_TYPE_PTR b, CK_ULONG_PTR c), (0, NULL, NULL)) \
	X(C_GetMechanismInfo, (CK_SLOT_ID a, CK_MECHANISM_TYPE b, CK_MECHANISM_INFO_PTR c), (0, 0, NULL)) \
	X(C_InitToken, (CK_SLOT_ID a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d), (0, NULL, 0, NULL)) \
	X(C_InitPIN, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), (0, NULL, 0)) \
	X(C_SetPIN, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG e), (0, NULL, 0, NULL, 0)) \
	X(C_OpenSession, (CK_SLOT_ID a, CK_FLAGS b, CK_VOID_PTR c, CK_NOTIFY d, CK_SESSION_HANDLE_PTR e), (0, 0, NULL, NULL, NULL)) \
	X(C_CloseSession, (CK_SESSION_HANDLE a), (0)) \
	X(C_CloseAllSessions, (CK_SLOT_ID a), (0)) \
	X(C_GetSessionInfo, (CK_SESSION_HANDLE a, CK_SESSION_INFO_PTR b), (0, NULL)) \
	X(C_GetOperationState, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG_PTR c), (0, NULL, NULL)) \
	X(C_SetOperationState, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_OBJECT_HANDLE d, CK_OBJECT_HANDLE e), (0, NULL, 0, 0, 0)) \
	X(C_Login, (CK_SESSION_HANDLE a, CK_USER_TYPE b, CK_BYTE_PTR c, CK_ULONG d), (0, 0, NULL, 0)) \
	X(C_Logout, (CK_SESSION_HANDLE a), (0)) \
	X(C_CreateObject, (CK_SESSION_HANDLE a, CK_ATTRIBUTE_PTR b, CK_ULONG c, CK_OBJECT_HANDLE_PTR d), (0, NULL, 0, NULL)) \
	X(C_CopyObject, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b, CK_ATTRIBUTE_PTR c, CK_ULONG d, CK_OBJECT_HANDLE_PTR e), (0, 0, NULL, 0, NULL)) \
	X(C_DestroyObject, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b), (0, 0)) \
	X(C_GetObjectSize, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b, CK_ULONG_PTR c), (0, 0, NULL)) \
	X(C_GetAttributeValue, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b, CK_ATTRIBUTE_PTR c, CK_ULONG d), (0, 0, NULL, 0)) \
	X(C_SetAttributeValue, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b, CK_ATTRIBUTE_PTR c, CK_ULONG d), (0, 0, NULL, 0)) \
	X(C_FindObjectsInit, (CK_SESSION_HANDLE a, CK_ATTRIBUTE_PTR b, CK_ULONG c), (0, NULL, 0)) \
	X(C_FindObjects, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE_PTR b, CK_ULONG c, CK_ULONG_PTR d), (0, NULL, 0, NULL)) \
	X(C_FindObjectsFinal, (CK_SESSION_HANDLE a), (0)) \
	X(C_EncryptInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), (0, NULL, 0)) \
	X(C_Encrypt, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (0, NULL, 0, NULL, NULL)) \
	X(C_EncryptUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (0, NULL, 0, NULL, NULL)) \
	X(C_EncryptFinal, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG_PTR c), (0, NULL, NULL)) \
	X(C_DecryptInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), (0, NULL, 0)) \
	X(C_Decrypt, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (0, NULL, 0, NULL, NULL)) \
	X(C_DecryptUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (0, NULL, 0, NULL, NULL)) \
	X(C_DecryptFinal, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG_PTR c), (0, NULL, NULL)) \
	X(C_DigestInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b), (0, NULL)) \
	X(C_Digest, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (0, NULL, 0, NULL, NULL)) \
	X(C_DigestUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), (0, NULL, 0)) \
	X(C_DigestKey, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b), (0, 0)) \
	X(C_DigestFinal, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG_PTR c), (0, NULL, NULL)) \
	X(C_SignInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), (0, NULL, 0)) \
	X(C_Sign, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (0, NULL, 0, NULL, NULL)) \
	X(C_SignUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), (0, NULL, 0)) \
	X(C_SignFinal, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG_PTR c), (0, NULL, NULL)) \
	X(C_SignRecoverInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), (0, NULL, 0)) \
	X(C_SignRecover, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (0, NULL, 0, NULL, NULL)) \
	X(C_VerifyInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), (0, NULL, 0)) \
	X(C_Verify, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG e), (0, NULL, 0, NULL, 0)) \
	X(C_VerifyUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), (0, NULL, 0)) \
	X(C_VerifyFinal, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), (0, NULL, 0)) \
	X(C_VerifyRecoverInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), (0, NULL, 0)) \
	X(C_VerifyRecover, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (0, NULL, 0, NULL, NULL)) \
	X(C_DigestEncryptUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (0, NULL, 0, NULL, NULL)) \
	X(C_DecryptDigestUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (0, NULL, 0, NULL, NULL)) \
	X(C_SignEncryptUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (0, NULL, 0, NULL, NULL)) \
	X(C_DecryptVerifyUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (0, NULL, 0, NULL, NULL)) \
	X(C_GenerateKey, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_ATTRIBUTE_PTR c, CK_ULONG d, CK_OBJECT_HANDLE_PTR e), (0, NULL, NULL, 0, NULL)) \
	X(C_GenerateKeyPair, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_ATTRIBUTE_PTR c, CK_ULONG d, CK_ATTRIBUTE_PTR e, CK_ULONG f, CK_OBJECT_HANDLE_PTR g, CK_OBJECT_HANDLE_PTR h), (0, NULL, NULL, 0, NULL, 0, NULL, NULL)) \
	X(C_WrapKey, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c, CK_OBJECT_HANDLE d, CK_BYTE_PTR e, CK_ULONG_PTR f), (0, NULL, 0, 0, NULL, NULL)) \
	X(C_UnwrapKey, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c, CK_BYTE_PTR d, CK_ULONG e, CK_ATTRIBUTE_PTR f, CK_ULONG g, CK_OBJECT_HANDLE_PTR h), (0, NULL, 0, NULL, 0, NULL, 0, NULL)) \
	X(C_DeriveKey, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c, CK_ATTRIBUTE_PTR d, CK_ULONG e, CK_OBJECT_HANDLE_PTR f), (0, NULL, 0, NULL, 0, NULL)) \
	X(C_SeedRandom, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), (0, NULL, 0)) \
	X(C_GenerateRandom, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), (0, NULL, 0)) \
	X(C_GetFunctionStatus, (CK_SESSION_HANDLE a), (0)) \
	X(C_CancelFunction, (CK_SESSION_HANDLE a), (0)) \
	X(C_WaitForSlotEvent, (CK_FLAGS a, CK_SLOT_ID_PTR b, CK_VOID_PTR c), (0, NULL, NULL))

static const char *full_called; /* the function of the full module last reached */

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#define FULL_STUB(name, params, zeros)      \
	static CK_RV full_##name params     \
	{                                   \
		full_called = #name;        \
		return next_rv;             \
	}
FULL_FUNCTIONS(FULL_STUB)
#undef FULL_STUB
#pragma GCC diagnostic pop

/* Call `name` of a list with zero arguments. */
#define FULL_CALL(name, params, zeros) \
	static CK_RV call_##name(CK_FUNCTION_LIST *l) { return l->name zeros; }
FULL_FUNCTIONS(FULL_CALL)
#undef FULL_CALL

static const struct {
	const char *name;
	CK_RV (*call)(CK_FUNCTION_LIST *l);
} full_calls[] = {
#define FULL_ENTRY(name, params, zeros) {#name, call_##name},
	FULL_FUNCTIONS(FULL_ENTRY)
#undef FULL_ENTRY
};

/* Every entry of the metered list reports its call to the observer,
 * forwards it to the module's own function and hands back its return
 * value, and remembers a failure under its own name: also the functions
 * the token layer does not call today, so that one it starts calling is
 * metered and named in errors without a change here. */
static void test_every_entry_counts_and_forwards(void **state)
{
	(void)state;
	CK_FUNCTION_LIST full = {.version = {2, 40}};
#define FULL_SET(name, params, zeros) full.name = full_##name;
	FULL_FUNCTIONS(FULL_SET)
#undef FULL_SET
	CK_FUNCTION_LIST *wrapped = cs_token_meter_wrap(&full);
	assert_ptr_not_equal(wrapped, &full);
	assert_int_equal(sizeof(full_calls) / sizeof(full_calls[0]), 67);
	cs_token_meter_observe(observe);
	for (size_t i = 0; i < sizeof(full_calls) / sizeof(full_calls[0]); i++) {
		const char *name = full_calls[i].name;
		const char *fn = NULL;
		CK_RV rv = CKR_OK;
		/* failing: a vendor code of its own, returned unchanged */
		cs_token_meter_clear();
		next_rv = CKR_VENDOR_DEFINED | (CK_RV)i;
		full_called = NULL;
		observed_fn = NULL;
		assert_int_equal(full_calls[i].call(wrapped), next_rv);
		assert_non_null(full_called);
		assert_string_equal(full_called, name);
		assert_non_null(observed_fn);
		assert_string_equal(observed_fn, name);
		assert_int_equal(observed_rv, next_rv);
		assert_int_equal(cs_token_meter_last_failure(&fn, &rv), 1);
		assert_string_equal(fn, name);
		assert_int_equal(rv, next_rv);
		assert_ptr_equal(cs_token_meter_function_name(name), fn);
		/* succeeding: observed, not remembered */
		cs_token_meter_clear();
		next_rv = CKR_OK;
		full_called = NULL;
		assert_int_equal(full_calls[i].call(wrapped), CKR_OK);
		assert_string_equal(full_called, name);
		assert_string_equal(observed_fn, name);
		assert_int_equal(observed_rv, CKR_OK);
		assert_int_equal(cs_token_meter_last_failure(&fn, &rv), 0);
	}
	assert_null(cs_token_meter_function_name("C_NoSuchFunction"));
	assert_null(cs_token_meter_function_name(NULL));
	cs_token_meter_observe(NULL);
	/* the other tests' module again */
	list = cs_token_meter_wrap(&fake);
}

/* What C_GetTokenInfo answered, per slot: the serials of the tokens an
 * ambiguous URI matched (cut to the buffer, visibly), and the PIN state an
 * error explains (a failing call's CK_RV first, then the token's flags). */
static void test_tokens_seen_and_pin_state(void **state)
{
	(void)state;
	CK_TOKEN_INFO info;
	CK_FLAGS flags = 0;
	char buf[128], source[96];
	cs_token_meter_clear();
	assert_int_equal(cs_token_meter_token_flags(&flags), 0);
	assert_int_equal(cs_token_meter_pin_state(CS_E_PIN_LOCKED, source, sizeof(source)), CS_PIN_STATE_UNKNOWN);
	assert_string_equal(source, "");
	next_rv = CKR_OK;
	fake_flags = CKF_TOKEN_INITIALIZED | CKF_USER_PIN_INITIALIZED | CKF_USER_PIN_LOCKED;
	assert_int_equal(list->C_GetTokenInfo(1, &info), CKR_OK);
	assert_int_equal(list->C_GetTokenInfo(2, &info), CKR_OK);
	assert_int_equal(list->C_GetTokenInfo(1, &info), CKR_OK); /* the latest answer per slot */
	assert_int_equal(cs_token_meter_token_flags(&flags), 1);
	assert_int_equal(flags, fake_flags);
	assert_string_equal(cs_token_meter_matching_tokens("pkcs11:token=cstest", buf, sizeof(buf)),
			    "SER1 (slot 1), SER2 (slot 2)");
	assert_string_equal(cs_token_meter_matching_tokens("pkcs11:token=cstest;slot-id=2", buf, sizeof(buf)),
			    "SER2 (slot 2)");
	assert_string_equal(cs_token_meter_matching_tokens("pkcs11:token=other", buf, sizeof(buf)), "");
	assert_string_equal(cs_token_meter_matching_tokens("not a uri", buf, sizeof(buf)), "");
	char small[12];
	assert_string_equal(cs_token_meter_matching_tokens("pkcs11:token=cstest", small, sizeof(small)),
			    "SER1 (sl..."); /* 11 characters and the NUL */
	assert_ptr_equal(cs_token_meter_matching_tokens("pkcs11:token=cstest", small, 0), small);

	/* the PIN state: the flags */
	assert_int_equal(cs_token_meter_pin_state(CS_E_PIN_LOCKED, source, sizeof(source)), CS_PIN_STATE_LOCKED);
	assert_string_equal(source, "C_GetTokenInfo: CKF_USER_PIN_LOCKED");
	assert_int_equal(cs_token_meter_pin_state(CS_E_KEY_NOT_FOUND, source, sizeof(source)), CS_PIN_STATE_UNKNOWN);
	fake_flags = CKF_TOKEN_INITIALIZED | CKF_USER_PIN_INITIALIZED;
	assert_int_equal(list->C_GetTokenInfo(1, &info), CKR_OK);
	assert_int_equal(cs_token_meter_pin_state(CS_E_PIN_LOCKED, source, sizeof(source)), CS_PIN_STATE_UNKNOWN);
	/* a failing call's CK_RV explains it before the flags */
	next_rv = CKR_PIN_EXPIRED;
	(void)list->C_Login(1, CKU_USER, NULL, 0);
	assert_int_equal(cs_token_meter_pin_state(CS_E_PIN_EXPIRED, source, sizeof(source)), CS_PIN_STATE_EXPIRED);
	assert_string_equal(source, "C_Login: CKR_PIN_EXPIRED");
	next_rv = CKR_DEVICE_ERROR; /* a failing C_GetTokenInfo keeps nothing */
	assert_int_equal(list->C_GetTokenInfo(3, &info), CKR_DEVICE_ERROR);

	/* more slots than kept: the first ones are */
	cs_token_meter_clear();
	next_rv = CKR_OK;
	for (CK_SLOT_ID slot = 1; slot <= CS_TOKEN_METER_SEEN_MAX + 2; slot++)
		assert_int_equal(list->C_GetTokenInfo(slot, &info), CKR_OK);
	char all[4096];
	cs_token_meter_matching_tokens("pkcs11:token=cstest", all, sizeof(all));
	char first[32], beyond[32];
	snprintf(first, sizeof(first), "SER%d (slot %d)", CS_TOKEN_METER_SEEN_MAX, CS_TOKEN_METER_SEEN_MAX);
	snprintf(beyond, sizeof(beyond), "SER%d (slot", CS_TOKEN_METER_SEEN_MAX + 1);
	assert_non_null(strstr(all, first));
	assert_null(strstr(all, beyond));
	assert_int_equal(list->C_GetTokenInfo(1, NULL), CKR_OK); /* no answer to keep */
	cs_token_meter_clear();
}

/* Sleep until just after the next whole second of the wall clock. */
static void next_second(void)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	usleep((useconds_t)((1000000000L - now.tv_nsec) / 1000 + 20000));
}

/* A failing call is logged at debug level; one the token layer recovers
 * from at warning level, at most one line a second, the next line saying
 * how many were held back. */
static void test_failure_lines(void **state)
{
	(void)state;
	char path[] = "/tmp/token_meter_test.XXXXXX", buf[4096];
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	cs_log_configure(CS_LOG_DEBUG, CS_LOG_LOGFMT, fd);
	next_rv = CKR_PIN_INCORRECT;
	(void)list->C_Login(1, CKU_USER, NULL, 0);
	next_second();
	next_rv = CKR_DEVICE_REMOVED;
	(void)list->C_Login(1, CKU_USER, NULL, 0);
	(void)list->C_Login(1, CKU_USER, NULL, 0); /* the same second: held back */
	next_second();
	(void)list->C_Login(1, CKU_USER, NULL, 0);
	cs_log_configure(CS_LOG_INFO, CS_LOG_LOGFMT, STDERR_FILENO);
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	assert_true(n > 0);
	buf[n] = '\0';
	const char *debug = strstr(buf, "level=debug fn=pkcs11 msg=\"PKCS#11 call failed: C_Login: CKR_PIN_INCORRECT");
	assert_non_null(debug);
	const char *first = strstr(buf, "level=warn fn=pkcs11 msg=\"PKCS#11 call failed: C_Login: CKR_DEVICE_REMOVED");
	assert_non_null(first);
	const char *second = strstr(first + 1, "level=warn");
	assert_non_null(second);
	assert_non_null(strstr(second, "C_Login: CKR_DEVICE_REMOVED (token device removed); 1 more since the last such line"));
	assert_null(strstr(second + 1, "level=warn")); /* two lines for three failures */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_failing_call_is_named),
		cmocka_unit_test(test_every_function_is_wrapped),
		cmocka_unit_test(test_record_is_per_thread),
		cmocka_unit_test(test_observer_sees_calls),
		cmocka_unit_test(test_every_entry_counts_and_forwards),
		cmocka_unit_test(test_tokens_seen_and_pin_state),
		cmocka_unit_test(test_failure_lines),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
