/*
 * token_meter: every PKCS#11 call of the token layer, timed, reported and,
 * when it fails, remembered.
 *
 * cs_token_meter_wrap() returns a function list whose entries (every
 * function of CK_FUNCTION_LIST) call the real module's function and then:
 * report (name, duration, return value) to the observer set with
 * cs_token_meter_observe() (the daemon's metrics), timing the call only
 * when there is an observer; and, for a call that did not return CKR_OK,
 * remember it as the calling thread's last failing call and log it ("PKCS#11
 * call failed: C_Login: CKR_PIN_INCORRECT (token PIN rejected)"): at debug
 * level, or, when it is a fault the token layer recovers from
 * (cs_ckr_needs_recovery: device removed, session lost, ...), at warning
 * level, at most one line a second. The list is wrapped only when an
 * observer is set or cs_token_meter_track_failures() was called; otherwise
 * the real list is returned. The token layer keeps the real list for p11-kit (initialise,
 * finalise, release) and calls through the wrapped one.
 *
 * cs_token_meter_cause() turns the thread's last failing call into the
 * "C_Login: CKR_PIN_INCORRECT" that error messages for operators append, so
 * that a token error always names the function and the return value that
 * caused it. Callers clear the record (cs_token_meter_clear) before the
 * operation whose failure they report. A call the token layer makes
 * outside the wrapped list (C_Initialize, through p11-kit, before the list
 * is wrapped) is recorded with cs_token_meter_note_failure().
 *
 * C_GetTokenInfo also keeps what the token answered, per thread and slot
 * (the latest answer per slot, CS_TOKEN_METER_SEEN_MAX slots), so that an
 * error can say what the token reported rather than what the token layer
 * made of it: the flags of the last answer (a PIN refused before C_Login
 * because CKF_USER_PIN_INITIALIZED is not set, or CKF_USER_PIN_LOCKED is),
 * and the serial numbers of the tokens that matched an ambiguous URI.
 *
 * One module per process while wrapping (the wrappers reach the real list
 * through one static pointer); the observer and tracking must be set
 * before the token is opened, and the observer must be thread-safe. The
 * record is per thread (thread-local): no locking.
 */
#ifndef CS_TOKEN_METER_H
#define CS_TOKEN_METER_H

#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

#include "cs_error.h"

typedef void (*cs_token_call_fn)(const char *function, uint64_t duration_ns, unsigned long rv);

void cs_token_meter_observe(cs_token_call_fn fn);
/* Wrap the module's list even without an observer, so that failing calls
 * are remembered and logged (the tools and --check-config). */
void cs_token_meter_track_failures(void);
CK_FUNCTION_LIST *cs_token_meter_wrap(CK_FUNCTION_LIST *real);

/* Forget this thread's last failing call and the token information seen. */
void cs_token_meter_clear(void);
/* Record a failing call made outside the wrapped list as this thread's
 * last failing call (not logged: the caller logs it). */
void cs_token_meter_note_failure(const char *function, CK_RV rv);
/* The meter's own static copy of a PKCS#11 function's name ("C_Sign"), for
 * a name received from elsewhere (the key process) that outlives it; NULL
 * for NULL or a name that is not a function of CK_FUNCTION_LIST. */
const char *cs_token_meter_function_name(const char *name);
/* This thread's last failing call since cs_token_meter_clear(): 1 with its
 * function name ("C_Login", static storage) and return value, else 0. */
int cs_token_meter_last_failure(const char **function, CK_RV *rv);
/* "C_Login: CKR_PIN_INCORRECT" into buf[len] when this thread's last
 * failing call explains err -- cs_err_from_ckr() of its return value is
 * err, or err is a token or authentication error (CS_CAT_TOKEN,
 * CS_CAT_AUTH), for which the token layer may have mapped the value to
 * another code -- else "". Returns buf. */
const char *cs_token_meter_cause(cs_err err, char *buf, size_t len);

#define CS_TOKEN_METER_SEEN_MAX 16
/* The CK_TOKEN_INFO flags of this thread's last successful C_GetTokenInfo
 * since cs_token_meter_clear(): 1 with *flags, else 0. */
int cs_token_meter_token_flags(CK_FLAGS *flags);
/* "SERIAL (slot N), SERIAL (slot M)" into buf[len]: the initialized tokens
 * C_GetTokenInfo described on this thread since cs_token_meter_clear()
 * that match token_uri (its token attributes and slot-id), "" for none or
 * a URI that does not parse. Returns buf. */
const char *cs_token_meter_matching_tokens(const char *token_uri, char *buf, size_t len);

/* What the token reported about its user PIN, when err is a PIN error
 * (CS_E_PIN_LOCKED, CS_E_PIN_EXPIRED, CS_E_PIN_FINAL_TRY; the token layer
 * maps several reports to one of them): from this thread's last failing
 * call ("C_Login: CKR_USER_PIN_NOT_INITIALIZED" into source), or, when the
 * token layer refused before calling C_Login, from the flags of the last
 * C_GetTokenInfo ("C_GetTokenInfo: CKF_USER_PIN_INITIALIZED not set").
 * CS_PIN_STATE_UNKNOWN (source "") for anything else. */
typedef enum {
	CS_PIN_STATE_UNKNOWN,
	CS_PIN_STATE_NOT_INITIALIZED, /* no user PIN was ever set */
	CS_PIN_STATE_EXPIRED,         /* expired, or must be changed before use */
	CS_PIN_STATE_LOCKED,          /* locked after wrong PINs */
	CS_PIN_STATE_FINAL_TRY,       /* one more wrong PIN locks it */
} cs_pin_state;
cs_pin_state cs_token_meter_pin_state(cs_err err, char *source, size_t len);

#endif
