/*
 * token_meter: every PKCS#11 call of the token layer, timed and reported.
 *
 * cs_token_meter_wrap() returns a function list whose entries time the
 * real module's function and report (name, duration, return value) to the
 * observer set with cs_token_meter_observe() (the daemon's metrics); the
 * functions credsign does not call are the real ones, unwrapped. Without
 * an observer the real list is returned and nothing is timed. The token
 * layer keeps the real list for p11-kit (initialise, finalise, release)
 * and calls through the wrapped one.
 *
 * One module per process (the wrappers reach the real list through one
 * static pointer); the observer must be set before the token is opened
 * and must be thread-safe.
 */
#ifndef CS_TOKEN_METER_H
#define CS_TOKEN_METER_H

#include <stdint.h>

#include <p11-kit/pkcs11.h>

typedef void (*cs_token_call_fn)(const char *function, uint64_t duration_ns, unsigned long rv);

void cs_token_meter_observe(cs_token_call_fn fn);
CK_FUNCTION_LIST *cs_token_meter_wrap(CK_FUNCTION_LIST *real);

#endif
