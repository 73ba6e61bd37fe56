/*
 * service_internal: what the service_*.c files share (not for front ends).
 */
#ifndef CS_SERVICE_INTERNAL_H
#define CS_SERVICE_INTERNAL_H

#include <stdint.h>

#include "service.h"

#define CS_SERVICE_ID_BYTES 16

/* Record why the service failed ("WHAT: <cs_strerror(r)>", with the error
 * code the cs_err maps to when code is NULL) and return r. A store
 * failure marks the request (its failure entry is not attempted). */
cs_err cs_service_fail(cs_service_req *rq, cs_err r, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Refuse the request (CS_E_FORBIDDEN): the reason goes to the caller
 * (rq->problem, code `code`) and, after the object asked for, into the
 * entry's object; the entry (outcome refused) is written now. For the
 * refusals the access rules do not make (a session of another client);
 * the rules' own go through cs_service_authorize. */
cs_err cs_service_refuse(cs_service_req *rq, const char *code, int retry_after, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* The entry's actor fields from the caller ("unidentified" without one). */
void cs_service_actor(cs_service_req *rq);

/* Wall-clock milliseconds, and as RFC 3339 (seconds). */
int64_t cs_service_now_ms(void);
void cs_service_rfc3339(int64_t ms, char out[32]);

/* An identifier from 16 random bytes: base64url, the top bit cleared so
 * that it starts with a letter (never taken for an option). */
cs_err cs_service_id_from_raw(uint8_t raw[CS_SERVICE_ID_BYTES], char out[CS_SERVICE_ID_CHARS + 1]);

#endif
