/*
 * cs_error: the one error type of credsign.
 *
 * Every fallible function returns a cs_err (CS_OK == 0). Each code has a
 * category that later layers map straight to an outcome (HTTP status, exit
 * code) and one fixed, human-readable message. Codes and messages live in one
 * X-macro table (cs_error.c), so adding a code is one line.
 *
 * PKCS#11 return values are translated in one place, cs_err_from_ckr(), which
 * maps every CK_RV the standard defines to a project error and keeps a
 * readable message for it (CKR_PIN_INCORRECT -> "token PIN rejected").
 * Messages never contain secrets. Thread-safe: all functions are pure.
 */
#ifndef CS_ERROR_H
#define CS_ERROR_H

#include <p11-kit/pkcs11.h>

typedef enum {
	CS_CAT_OK,
	CS_CAT_USAGE,     /* the caller asked for something invalid (400/422) */
	CS_CAT_AUTH,      /* not permitted (403) */
	CS_CAT_NOT_FOUND, /* no such object (404) */
	CS_CAT_CONFLICT,  /* state forbids it (409) */
	CS_CAT_GONE,      /* it existed but has expired (410) */
	CS_CAT_TOO_LARGE, /* request too large (413) */
	CS_CAT_CONFIG,    /* configuration or local files are wrong */
	CS_CAT_TOKEN,     /* the token cannot do its part (503) */
	CS_CAT_STORE,     /* the store cannot do its part (503) */
	CS_CAT_INTERNAL,  /* a bug or resource exhaustion (500) */
} cs_err_category;

/* X(code, category, message) */
#define CS_ERROR_TABLE(X)                                                          \
	X(CS_OK, CS_CAT_OK, "success")                                             \
	X(CS_E_INTERNAL, CS_CAT_INTERNAL, "internal error")                        \
	X(CS_E_NOMEM, CS_CAT_INTERNAL, "out of memory")                            \
	X(CS_E_INVALID_ARG, CS_CAT_USAGE, "invalid argument")                      \
	X(CS_E_BUFFER_TOO_SMALL, CS_CAT_INTERNAL, "buffer too small")              \
	X(CS_E_IO, CS_CAT_CONFIG, "file could not be read")                        \
	X(CS_E_CONFIG, CS_CAT_CONFIG, "configuration invalid")                     \
	X(CS_E_URI_INVALID, CS_CAT_USAGE, "invalid PKCS#11 URI")                   \
	X(CS_E_PIN_SOURCE, CS_CAT_CONFIG, "no usable PIN source")                  \
	X(CS_E_PIN_FILE, CS_CAT_CONFIG, "PIN file unreadable or malformed")        \
	X(CS_E_PIN_FILE_PERMS, CS_CAT_CONFIG,                                      \
	  "PIN file is accessible by group or others (must be owner-only)")       \
	X(CS_E_MODULE_LOAD, CS_CAT_TOKEN, "PKCS#11 module could not be loaded")   \
	X(CS_E_MODULE_INIT, CS_CAT_TOKEN, "PKCS#11 module failed to initialize")  \
	X(CS_E_TOKEN_NOT_FOUND, CS_CAT_TOKEN, "no token matches the URI")          \
	X(CS_E_TOKEN_AMBIGUOUS, CS_CAT_CONFIG, "more than one token matches the URI") \
	X(CS_E_TOKEN_UNAVAILABLE, CS_CAT_TOKEN, "token unavailable")               \
	X(CS_E_TOKEN_BUSY, CS_CAT_TOKEN, "token session limit reached")            \
	X(CS_E_TOKEN_FAILED, CS_CAT_TOKEN, "token operation failed")               \
	X(CS_E_TOKEN_DATA, CS_CAT_TOKEN, "token returned malformed data")          \
	X(CS_E_TOKEN_NO_RNG, CS_CAT_TOKEN, "token has no random number generator") \
	X(CS_E_TOKEN_READ_ONLY, CS_CAT_TOKEN, "token is write-protected")          \
	X(CS_E_PIN_INCORRECT, CS_CAT_AUTH, "token PIN rejected")                   \
	X(CS_E_PIN_LOCKED, CS_CAT_TOKEN, "token PIN locked")                       \
	X(CS_E_PIN_FINAL_TRY, CS_CAT_TOKEN,                                        \
	  "token PIN has one try left; refusing to risk a lockout")               \
	X(CS_E_PIN_EXPIRED, CS_CAT_TOKEN, "token PIN expired or must be changed")  \
	X(CS_E_NOT_LOGGED_IN, CS_CAT_TOKEN, "token session is not logged in")      \
	X(CS_E_MECHANISM, CS_CAT_TOKEN, "mechanism not supported by the token")    \
	X(CS_E_KEY_NOT_FOUND, CS_CAT_NOT_FOUND, "key not found in the token")      \
	X(CS_E_KEY_AMBIGUOUS, CS_CAT_CONFLICT, "more than one key matches")        \
	X(CS_E_KEY_EXISTS, CS_CAT_CONFLICT, "a key with this label or id exists")  \
	X(CS_E_KEY_TYPE, CS_CAT_USAGE, "key is not an EC P-256 key")               \
	X(CS_E_KEY_FORBIDDEN, CS_CAT_AUTH, "key does not permit this operation")   \
	X(CS_E_SENSITIVE, CS_CAT_AUTH, "attribute is sensitive and cannot be read") \
	X(CS_E_SIGNATURE_INVALID, CS_CAT_TOKEN,                                    \
	  "signature did not verify with the public key")                          \
	X(CS_E_CRYPTO, CS_CAT_INTERNAL, "cryptographic library error")             \
	X(CS_E_NOT_FOUND, CS_CAT_NOT_FOUND, "not found")                           \
	X(CS_E_FORBIDDEN, CS_CAT_AUTH, "not permitted for this client identity")   \
	X(CS_E_SESSION_EXPIRED, CS_CAT_GONE, "generation session expired")         \
	X(CS_E_SESSION_USED, CS_CAT_CONFLICT, "generation session already certified") \
	X(CS_E_TOO_LARGE, CS_CAT_TOO_LARGE, "request too large")                   \
	X(CS_E_STORE, CS_CAT_STORE, "store unavailable")                           \
	X(CS_E_STORE_SCHEMA, CS_CAT_STORE, "store schema does not match this program") \
	X(CS_E_UNPROCESSABLE, CS_CAT_USAGE, "request violates the preset")       \
	X(CS_E_KEY_NO_PUBLIC, CS_CAT_NOT_FOUND,                                    \
	  "private key found, no matching public key")                             \
	X(CS_E_KEY_TEMPLATE, CS_CAT_TOKEN, "token refused the key template")       \
	X(CS_E_KEY_ALWAYS_AUTH, CS_CAT_CONFIG,                                     \
	  "key requires a login before each use (CKA_ALWAYS_AUTHENTICATE) and no " \
	  "PIN source is configured")                                              \
	X(CS_E_CONFLICT, CS_CAT_CONFLICT, "the state changed meanwhile")           \
	X(CS_E_CEREMONY_REFUSED, CS_CAT_AUTH, "ceremony approval refused")         \
	X(CS_E_CEREMONY_CLOSED, CS_CAT_CONFLICT, "ceremony already executed")      \
	X(CS_E_CEREMONY_EXPIRED, CS_CAT_GONE, "ceremony expired")                  \
	X(CS_E_QUORUM, CS_CAT_AUTH, "ceremony lacks its quorum of officers")       \
	X(CS_E_NO_ACTIVE_KEY, CS_CAT_TOKEN, "no active signing key")               \
	X(CS_E_REVOKED, CS_CAT_GONE, "certificate revoked")                      \
	X(CS_E_KEY_PURPOSE, CS_CAT_AUTH, "key is not configured for this purpose") \
	X(CS_E_IPC, CS_CAT_INTERNAL, "key process protocol error")                \
	X(CS_E_STORE_UNREACHABLE, CS_CAT_STORE, "store unreachable: no connection to the database")

typedef enum {
#define CS_ERR_ENUM(code, cat, msg) code,
	CS_ERROR_TABLE(CS_ERR_ENUM)
#undef CS_ERR_ENUM
	CS_ERR_COUNT
} cs_err;

/* Fixed message for a code ("unknown error" for values outside the table). */
const char *cs_strerror(cs_err err);
/* Symbolic name, e.g. "CS_E_PIN_INCORRECT". */
const char *cs_err_name(cs_err err);
cs_err_category cs_err_category_of(cs_err err);

/* Map a PKCS#11 return value to a project error. CKR_OK -> CS_OK. */
cs_err cs_err_from_ckr(CK_RV rv);
/* Readable message for a CK_RV ("token PIN rejected"); never NULL. */
const char *cs_ckr_message(CK_RV rv);
/* Symbolic name of a CK_RV ("CKR_PIN_INCORRECT"); never NULL. */
const char *cs_ckr_name(CK_RV rv);
/* True for the return values a fresh session or a re-initialised module
 * may cure (session closed/invalid, device gone/broken, a module that lost
 * its storage or its initialisation): the pool reopens sessions and logs in
 * again, and re-initialises the module if that is not enough.
 * CKR_USER_NOT_LOGGED_IN is not among them: it is a lost login only when the
 * session shows a public state (the token layer asks C_GetSessionInfo). */
int cs_ckr_needs_recovery(CK_RV rv);

#endif
