/*
 * http_errors: libevent's own error answers in our JSON error format.
 *
 * libevent 2.1 answers some requests itself, before our handler sees them:
 * 400 for a request line or header it cannot parse, 413 for headers or a
 * body over the configured size, 501 for a method it does not know, 417
 * for an unsupported Expect. It renders them with evhttp_send_error() as
 * HTML pages and has no hook to change that (2.2 adds one). credsignd
 * defines evhttp_send_error() itself: libevent calls it through the
 * dynamic linker (PLT), so the executable's definition takes precedence and
 * every answer, libevent's included, is
 * {"error":{"code":"...","message":"..."}} with Connection: close.
 *
 * This holds only while libevent reaches evhttp_send_error through the
 * dynamic linker (not with a libevent linked -Bsymbolic or statically):
 * the integration test integration_attack asserts JSON for each of
 * libevent's own errors, so a libevent where it does not hold fails CI.
 */
#ifndef CS_HTTP_ERRORS_H
#define CS_HTTP_ERRORS_H

#include <stdbool.h>
#include <stddef.h>

/* The server can say more about an error libevent found than libevent
 * can (which framing defect, that the headers were over the limit): fn
 * may change status (400, 413 or 431) and write a message. NULL to unset. */
struct evhttp_request;
typedef void (*cs_http_error_explain_fn)(struct evhttp_request *req, int *status, char *message,
					  size_t cap);
void cs_http_errors_explain(cs_http_error_explain_fn fn);

#endif
