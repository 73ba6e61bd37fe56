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
 * operation whose failure they report.
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

/* Forget this thread's last failing call. */
void cs_token_meter_clear(void);
/* This thread's last failing call since cs_token_meter_clear(): 1 with its
 * function name ("C_Login", static storage) and return value, else 0. */
int cs_token_meter_last_failure(const char **function, CK_RV *rv);
/* "C_Login: CKR_PIN_INCORRECT" into buf[len] when this thread's last
 * failing call explains err -- cs_err_from_ckr() of its return value is
 * err, or err is a token or authentication error (CS_CAT_TOKEN,
 * CS_CAT_AUTH), for which the token layer may have mapped the value to
 * another code -- else "". Returns buf. */
const char *cs_token_meter_cause(cs_err err, char *buf, size_t len);

#endif
