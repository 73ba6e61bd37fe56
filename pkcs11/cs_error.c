/* cs_error: code table and PKCS#11 return-value mapping. See cs_error.h. */
#include "cs_error.h"

#include <stddef.h>

static const struct {
	const char *name;
	cs_err_category category;
	const char *message;
} error_table[] = {
#define CS_ERR_ROW(code, cat, msg) [code] = {#code, cat, msg},
	CS_ERROR_TABLE(CS_ERR_ROW)
#undef CS_ERR_ROW
};

const char *cs_strerror(cs_err err)
{
	if ((unsigned)err >= CS_ERR_COUNT)
		return "unknown error";
	return error_table[err].message;
}

const char *cs_err_name(cs_err err)
{
	if ((unsigned)err >= CS_ERR_COUNT)
		return "CS_E_UNKNOWN";
	return error_table[err].name;
}

cs_err_category cs_err_category_of(cs_err err)
{
	if ((unsigned)err >= CS_ERR_COUNT)
		return CS_CAT_INTERNAL;
	return error_table[err].category;
}


/* X(ckr, project error, readable message): every CK_RV of PKCS#11 3.0 that
 * p11-kit's pkcs11.h defines. */
#define CKR_TABLE(X)                                                                \
	X(CKR_OK, CS_OK, "success")                                                 \
	X(CKR_CANCEL, CS_E_TOKEN_FAILED, "operation cancelled by the token")        \
	X(CKR_HOST_MEMORY, CS_E_NOMEM, "token library ran out of host memory")     \
	X(CKR_SLOT_ID_INVALID, CS_E_TOKEN_NOT_FOUND, "slot id does not exist")     \
	X(CKR_GENERAL_ERROR, CS_E_TOKEN_FAILED, "token reported a general error")  \
	X(CKR_FUNCTION_FAILED, CS_E_TOKEN_FAILED, "token function failed")         \
	X(CKR_ARGUMENTS_BAD, CS_E_INTERNAL, "bad arguments passed to the token")   \
	X(CKR_NO_EVENT, CS_E_TOKEN_FAILED, "no slot event pending")                \
	X(CKR_NEED_TO_CREATE_THREADS, CS_E_MODULE_INIT,                             \
	  "token library needs to create threads")                                  \
	X(CKR_CANT_LOCK, CS_E_MODULE_INIT, "token library cannot lock")            \
	X(CKR_ATTRIBUTE_READ_ONLY, CS_E_KEY_FORBIDDEN, "attribute is read-only")   \
	X(CKR_ATTRIBUTE_SENSITIVE, CS_E_SENSITIVE,                                   \
	  "attribute is sensitive and cannot be read")                               \
	X(CKR_ATTRIBUTE_TYPE_INVALID, CS_E_TOKEN_DATA, "attribute type invalid")   \
	X(CKR_ATTRIBUTE_VALUE_INVALID, CS_E_INVALID_ARG, "attribute value invalid") \
	X(CKR_ACTION_PROHIBITED, CS_E_KEY_FORBIDDEN, "action prohibited by the token") \
	X(CKR_DATA_INVALID, CS_E_INVALID_ARG, "data invalid for the mechanism")    \
	X(CKR_DATA_LEN_RANGE, CS_E_INVALID_ARG, "data length out of range")        \
	X(CKR_DEVICE_ERROR, CS_E_TOKEN_UNAVAILABLE, "token device error")          \
	X(CKR_DEVICE_MEMORY, CS_E_TOKEN_FAILED, "token is out of memory")          \
	X(CKR_DEVICE_REMOVED, CS_E_TOKEN_UNAVAILABLE, "token device removed")      \
	X(CKR_ENCRYPTED_DATA_INVALID, CS_E_INVALID_ARG, "encrypted data invalid")  \
	X(CKR_ENCRYPTED_DATA_LEN_RANGE, CS_E_INVALID_ARG,                           \
	  "encrypted data length out of range")                                     \
	X(CKR_FUNCTION_CANCELED, CS_E_TOKEN_FAILED, "token function cancelled")    \
	X(CKR_FUNCTION_NOT_PARALLEL, CS_E_TOKEN_FAILED, "function not parallel")   \
	X(CKR_FUNCTION_NOT_SUPPORTED, CS_E_MECHANISM,                               \
	  "function not supported by the token")                                    \
	X(CKR_KEY_HANDLE_INVALID, CS_E_KEY_NOT_FOUND, "key handle invalid")        \
	X(CKR_KEY_SIZE_RANGE, CS_E_KEY_TYPE, "key size out of range")              \
	X(CKR_KEY_TYPE_INCONSISTENT, CS_E_KEY_TYPE, "key type inconsistent with mechanism") \
	X(CKR_KEY_NOT_NEEDED, CS_E_INTERNAL, "key not needed")                     \
	X(CKR_KEY_CHANGED, CS_E_TOKEN_FAILED, "key changed")                       \
	X(CKR_KEY_NEEDED, CS_E_INTERNAL, "key needed")                             \
	X(CKR_KEY_INDIGESTIBLE, CS_E_KEY_FORBIDDEN, "key cannot be digested")      \
	X(CKR_KEY_FUNCTION_NOT_PERMITTED, CS_E_KEY_FORBIDDEN,                       \
	  "key does not permit this function")                                      \
	X(CKR_KEY_NOT_WRAPPABLE, CS_E_KEY_FORBIDDEN, "key is not wrappable")       \
	X(CKR_KEY_UNEXTRACTABLE, CS_E_SENSITIVE, "key is unextractable")          \
	X(CKR_MECHANISM_INVALID, CS_E_MECHANISM, "mechanism not supported by the token") \
	X(CKR_MECHANISM_PARAM_INVALID, CS_E_MECHANISM, "mechanism parameter invalid") \
	X(CKR_OBJECT_HANDLE_INVALID, CS_E_KEY_NOT_FOUND, "object handle invalid")  \
	X(CKR_OPERATION_ACTIVE, CS_E_TOKEN_FAILED, "another operation is active")  \
	X(CKR_OPERATION_NOT_INITIALIZED, CS_E_TOKEN_FAILED, "operation not initialized") \
	X(CKR_PIN_INCORRECT, CS_E_PIN_INCORRECT, "token PIN rejected")             \
	X(CKR_PIN_INVALID, CS_E_PIN_INCORRECT, "token PIN contains invalid characters") \
	X(CKR_PIN_LEN_RANGE, CS_E_PIN_INCORRECT, "token PIN length out of range")  \
	X(CKR_PIN_EXPIRED, CS_E_PIN_EXPIRED, "token PIN expired")                  \
	X(CKR_PIN_LOCKED, CS_E_PIN_LOCKED, "token PIN locked")                     \
	X(CKR_SESSION_CLOSED, CS_E_TOKEN_UNAVAILABLE, "token session closed")      \
	X(CKR_SESSION_COUNT, CS_E_TOKEN_BUSY, "token session limit reached")       \
	X(CKR_SESSION_HANDLE_INVALID, CS_E_TOKEN_UNAVAILABLE, "token session handle invalid") \
	X(CKR_SESSION_PARALLEL_NOT_SUPPORTED, CS_E_TOKEN_FAILED,                    \
	  "parallel sessions not supported")                                        \
	X(CKR_SESSION_READ_ONLY, CS_E_TOKEN_READ_ONLY, "token session is read-only") \
	X(CKR_SESSION_EXISTS, CS_E_TOKEN_FAILED, "a session exists")               \
	X(CKR_SESSION_READ_ONLY_EXISTS, CS_E_TOKEN_FAILED, "a read-only session exists") \
	X(CKR_SESSION_READ_WRITE_SO_EXISTS, CS_E_TOKEN_FAILED,                      \
	  "a security-officer session exists")                                      \
	X(CKR_SIGNATURE_INVALID, CS_E_SIGNATURE_INVALID, "signature invalid")      \
	X(CKR_SIGNATURE_LEN_RANGE, CS_E_SIGNATURE_INVALID, "signature length out of range") \
	X(CKR_TEMPLATE_INCOMPLETE, CS_E_INTERNAL, "object template incomplete")    \
	X(CKR_TEMPLATE_INCONSISTENT, CS_E_INTERNAL, "object template inconsistent") \
	X(CKR_TOKEN_NOT_PRESENT, CS_E_TOKEN_UNAVAILABLE, "token not present")      \
	X(CKR_TOKEN_NOT_RECOGNIZED, CS_E_TOKEN_UNAVAILABLE, "token not recognized") \
	X(CKR_TOKEN_WRITE_PROTECTED, CS_E_TOKEN_READ_ONLY, "token is write-protected") \
	X(CKR_UNWRAPPING_KEY_SIZE_RANGE, CS_E_KEY_TYPE, "unwrapping key size out of range") \
	X(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT, CS_E_KEY_TYPE,                      \
	  "unwrapping key type inconsistent")                                       \
	X(CKR_USER_ALREADY_LOGGED_IN, CS_OK, "user already logged in")             \
	X(CKR_USER_NOT_LOGGED_IN, CS_E_NOT_LOGGED_IN, "token session is not logged in") \
	X(CKR_USER_PIN_NOT_INITIALIZED, CS_E_PIN_EXPIRED, "user PIN not initialized") \
	X(CKR_USER_TYPE_INVALID, CS_E_INTERNAL, "user type invalid")               \
	X(CKR_USER_ANOTHER_ALREADY_LOGGED_IN, CS_E_TOKEN_FAILED,                    \
	  "another user is logged in to the token")                                 \
	X(CKR_USER_TOO_MANY_TYPES, CS_E_TOKEN_FAILED, "too many user types logged in") \
	X(CKR_WRAPPED_KEY_INVALID, CS_E_INVALID_ARG, "wrapped key invalid")        \
	X(CKR_WRAPPED_KEY_LEN_RANGE, CS_E_INVALID_ARG, "wrapped key length out of range") \
	X(CKR_WRAPPING_KEY_HANDLE_INVALID, CS_E_KEY_NOT_FOUND, "wrapping key handle invalid") \
	X(CKR_WRAPPING_KEY_SIZE_RANGE, CS_E_KEY_TYPE, "wrapping key size out of range") \
	X(CKR_WRAPPING_KEY_TYPE_INCONSISTENT, CS_E_KEY_TYPE,                        \
	  "wrapping key type inconsistent")                                         \
	X(CKR_RANDOM_SEED_NOT_SUPPORTED, CS_E_MECHANISM, "random seeding not supported") \
	X(CKR_RANDOM_NO_RNG, CS_E_TOKEN_NO_RNG, "token has no random number generator") \
	X(CKR_DOMAIN_PARAMS_INVALID, CS_E_KEY_TYPE, "domain parameters invalid")   \
	X(CKR_CURVE_NOT_SUPPORTED, CS_E_MECHANISM, "curve not supported by the token") \
	X(CKR_BUFFER_TOO_SMALL, CS_E_BUFFER_TOO_SMALL, "output buffer too small")  \
	X(CKR_SAVED_STATE_INVALID, CS_E_TOKEN_FAILED, "saved state invalid")       \
	X(CKR_INFORMATION_SENSITIVE, CS_E_SENSITIVE, "information is sensitive")   \
	X(CKR_STATE_UNSAVEABLE, CS_E_TOKEN_FAILED, "state cannot be saved")        \
	X(CKR_CRYPTOKI_NOT_INITIALIZED, CS_E_MODULE_INIT, "token library not initialized") \
	X(CKR_CRYPTOKI_ALREADY_INITIALIZED, CS_E_MODULE_INIT,                       \
	  "token library already initialized")                                      \
	X(CKR_MUTEX_BAD, CS_E_INTERNAL, "bad mutex")                               \
	X(CKR_MUTEX_NOT_LOCKED, CS_E_INTERNAL, "mutex not locked")                 \
	X(CKR_NEW_PIN_MODE, CS_E_PIN_EXPIRED, "token requires a new PIN")          \
	X(CKR_NEXT_OTP, CS_E_TOKEN_FAILED, "next OTP required")                    \
	X(CKR_EXCEEDED_MAX_ITERATIONS, CS_E_TOKEN_FAILED, "maximum iterations exceeded") \
	X(CKR_FIPS_SELF_TEST_FAILED, CS_E_TOKEN_UNAVAILABLE, "token FIPS self-test failed") \
	X(CKR_LIBRARY_LOAD_FAILED, CS_E_MODULE_LOAD, "token library failed to load a dependency") \
	X(CKR_PIN_TOO_WEAK, CS_E_PIN_INCORRECT, "token PIN too weak")              \
	X(CKR_PUBLIC_KEY_INVALID, CS_E_KEY_TYPE, "public key invalid")             \
	X(CKR_FUNCTION_REJECTED, CS_E_KEY_FORBIDDEN, "function rejected by the token")

static const struct {
	CK_RV rv;
	const char *name;
	cs_err err;
	const char *message;
} ckr_table[] = {
#define CKR_ROW(ckr, err, msg) {ckr, #ckr, err, msg},
	CKR_TABLE(CKR_ROW)
#undef CKR_ROW
};

static size_t ckr_index(CK_RV rv)
{
	for (size_t i = 0; i < sizeof(ckr_table) / sizeof(ckr_table[0]); i++)
		if (ckr_table[i].rv == rv)
			return i;
	return (size_t)-1;
}

cs_err cs_err_from_ckr(CK_RV rv)
{
	size_t i = ckr_index(rv);
	if (i != (size_t)-1)
		return ckr_table[i].err;
	return CS_E_TOKEN_FAILED; /* vendor-defined and unknown values */
}

const char *cs_ckr_message(CK_RV rv)
{
	size_t i = ckr_index(rv);
	if (i != (size_t)-1)
		return ckr_table[i].message;
	if (rv >= CKR_VENDOR_DEFINED)
		return "vendor-defined token error";
	return "unknown token error";
}

const char *cs_ckr_name(CK_RV rv)
{
	size_t i = ckr_index(rv);
	if (i != (size_t)-1)
		return ckr_table[i].name;
	if (rv >= CKR_VENDOR_DEFINED)
		return "CKR_VENDOR_DEFINED";
	return "CKR_UNKNOWN";
}

int cs_ckr_needs_recovery(CK_RV rv)
{
	switch (rv) {
	/* a module that lost its token's storage answers CKR_GENERAL_ERROR
	 * until it is initialized again (SoftHSM2 does) */
	case CKR_GENERAL_ERROR:
	case CKR_CRYPTOKI_NOT_INITIALIZED:
	case CKR_TOKEN_NOT_RECOGNIZED:
	case CKR_SLOT_ID_INVALID: /* re-inserted in another slot */
	case CKR_SESSION_HANDLE_INVALID:
	case CKR_SESSION_CLOSED:
	case CKR_DEVICE_REMOVED:
	case CKR_TOKEN_NOT_PRESENT:
	case CKR_DEVICE_ERROR:
		return 1;
	default:
		return 0;
	}
}
