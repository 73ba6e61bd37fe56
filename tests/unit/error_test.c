/* error_test: the error table and the CK_RV mapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "cs_error.h"

static void test_named_mappings(void **state)
{
	(void)state;
	assert_int_equal(cs_err_from_ckr(CKR_OK), CS_OK);
	assert_int_equal(cs_err_from_ckr(CKR_PIN_INCORRECT), CS_E_PIN_INCORRECT);
	assert_string_equal(cs_ckr_message(CKR_PIN_INCORRECT), "token PIN rejected");
	assert_string_equal(cs_strerror(CS_E_PIN_INCORRECT), "token PIN rejected");
	assert_string_equal(cs_ckr_name(CKR_PIN_INCORRECT), "CKR_PIN_INCORRECT");
	assert_int_equal(cs_err_from_ckr(CKR_PIN_LOCKED), CS_E_PIN_LOCKED);
	assert_int_equal(cs_err_from_ckr(CKR_DEVICE_REMOVED), CS_E_TOKEN_UNAVAILABLE);
	assert_int_equal(cs_err_from_ckr(CKR_TOKEN_NOT_PRESENT), CS_E_TOKEN_UNAVAILABLE);
	assert_int_equal(cs_err_from_ckr(CKR_ATTRIBUTE_SENSITIVE), CS_E_SENSITIVE);
	assert_int_equal(cs_err_from_ckr(CKR_RANDOM_NO_RNG), CS_E_TOKEN_NO_RNG);
	assert_int_equal(cs_err_from_ckr(CKR_MECHANISM_INVALID), CS_E_MECHANISM);
	assert_int_equal(cs_err_from_ckr(CKR_USER_ALREADY_LOGGED_IN), CS_OK);
	assert_int_equal(cs_err_category_of(CS_E_TOKEN_UNAVAILABLE), CS_CAT_TOKEN);
	assert_int_equal(cs_err_category_of(CS_E_KEY_NOT_FOUND), CS_CAT_NOT_FOUND);
}

static void test_every_ckr_has_a_message(void **state)
{
	(void)state;
	/* every value between CKR_OK and the last standard code that the
	 * header defines has a name other than the fallback */
	static const CK_RV all[] = {
		CKR_CANCEL, CKR_HOST_MEMORY, CKR_SLOT_ID_INVALID, CKR_GENERAL_ERROR,
		CKR_FUNCTION_FAILED, CKR_ARGUMENTS_BAD, CKR_ATTRIBUTE_VALUE_INVALID,
		CKR_DEVICE_ERROR, CKR_SESSION_CLOSED, CKR_SESSION_HANDLE_INVALID,
		CKR_SIGNATURE_INVALID, CKR_USER_NOT_LOGGED_IN, CKR_BUFFER_TOO_SMALL,
		CKR_CRYPTOKI_NOT_INITIALIZED, CKR_FUNCTION_REJECTED, CKR_PIN_TOO_WEAK,
		CKR_CURVE_NOT_SUPPORTED, CKR_KEY_UNEXTRACTABLE,
	};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		assert_string_not_equal(cs_ckr_name(all[i]), "CKR_UNKNOWN");
		assert_true(strlen(cs_ckr_message(all[i])) > 5);
		assert_int_not_equal(cs_err_from_ckr(all[i]), CS_OK);
	}
	assert_string_equal(cs_ckr_name(CKR_VENDOR_DEFINED + 7), "CKR_VENDOR_DEFINED");
	assert_int_equal(cs_err_from_ckr(CKR_VENDOR_DEFINED + 7), CS_E_TOKEN_FAILED);
	assert_string_equal(cs_ckr_name(0x7777), "CKR_UNKNOWN");
}

static void test_recovery_set(void **state)
{
	(void)state;
	assert_true(cs_ckr_needs_recovery(CKR_SESSION_HANDLE_INVALID));
	assert_true(cs_ckr_needs_recovery(CKR_SESSION_CLOSED));
	assert_true(cs_ckr_needs_recovery(CKR_DEVICE_REMOVED));
	assert_true(cs_ckr_needs_recovery(CKR_TOKEN_NOT_PRESENT));
	assert_true(cs_ckr_needs_recovery(CKR_DEVICE_ERROR));
	assert_true(cs_ckr_needs_recovery(CKR_GENERAL_ERROR));
	assert_true(cs_ckr_needs_recovery(CKR_CRYPTOKI_NOT_INITIALIZED));
	assert_false(cs_ckr_needs_recovery(CKR_PIN_INCORRECT));
	assert_false(cs_ckr_needs_recovery(CKR_OK));
	assert_false(cs_ckr_needs_recovery(CKR_KEY_HANDLE_INVALID));
}

static void test_table_is_complete(void **state)
{
	(void)state;
	for (int e = 0; e < CS_ERR_COUNT; e++) {
		assert_true(strncmp(cs_err_name((cs_err)e), "CS_", 3) == 0);
		assert_true(strlen(cs_strerror((cs_err)e)) > 3);
	}
	assert_string_equal(cs_strerror((cs_err)9999), "unknown error");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_named_mappings),
		cmocka_unit_test(test_every_ckr_has_a_message),
		cmocka_unit_test(test_recovery_set),
		cmocka_unit_test(test_table_is_complete),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
