/* token_meter_test: the metered function list remembers each thread's last
 * failing PKCS#11 call and names it when it explains an error. A fake
 * module (a function list of a few functions) answers what each test asks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <string.h>

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

static CK_FUNCTION_LIST fake = {
	.version = {2, 40},
	.C_Login = fake_login,
	.C_GetSlotInfo = fake_get_slot_info,
	.C_GetMechanismList = fake_get_mechanism_list,
	.C_FindObjectsInit = fake_find_objects_init,
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_failing_call_is_named),
		cmocka_unit_test(test_every_function_is_wrapped),
		cmocka_unit_test(test_record_is_per_thread),
		cmocka_unit_test(test_observer_sees_calls),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
