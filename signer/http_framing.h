/*
 * http_framing: a strict check of an HTTP/1.1 request's header section,
 * fed the raw bytes as they arrive, before libevent's lenient parser reads
 * them.
 *
 * libevent 2.1 accepts framing that RFC 9112 says a server must reject or
 * that lets two parsers disagree on where a request ends (request
 * smuggling): bare LF line ends, a CR not followed by LF, obs-fold
 * continuation lines (sec. 5.2), whitespace between a field name and its
 * colon (sec. 5.1: "Content-Length :" is not Content-Length to libevent,
 * so a body would run as a second request), NUL bytes, controls in field
 * values, and a request line
 * that is not METHOD SP TARGET SP HTTP/1.x with a visible-ASCII target
 * (RFC 9112 sec. 3). This module does not
 * parse the request: it only finds these defects, line by line, in the
 * bytes up to the empty line that ends the header section. libevent still
 * parses, and the server refuses the request (400, connection closed) when
 * the scan found a defect. Field-level checks that need the parsed headers
 * (duplicate Content-Length or Host, Content-Length with Transfer-Encoding)
 * are cs_framing_check_headers().
 *
 * One cs_framing per connection; cs_framing_reset() before each request.
 * No allocation; not thread-safe (a connection belongs to one thread).
 */
#ifndef CS_HTTP_FRAMING_H
#define CS_HTTP_FRAMING_H

#include <stdbool.h>
#include <stddef.h>

struct evkeyvalq;

typedef struct {
	bool in_body;       /* the header section has ended: bytes are not scanned */
	bool prev_cr;       /* the previous byte was CR */
	bool first_line;    /* still in the request line (or leading empty lines) */
	bool in_name;       /* in a field name (before its colon) */
	size_t line_len;    /* bytes of the current line, CR excluded */
	size_t header_bytes; /* bytes of the header section scanned so far */
	int line_spaces;     /* spaces seen in the request line */
	bool prev_space;     /* the previous byte of the request line was a space */
	char version[9];     /* its third part, when it is 8 bytes or fewer */
	const char *defect; /* the first defect found, NULL while none */
} cs_framing;

void cs_framing_reset(cs_framing *f);
/* Scan the next bytes of the request; returns the number of bytes that
 * belonged to the header section (the rest, if any, is body or a following
 * request). After a defect, further input is ignored. */
size_t cs_framing_feed(cs_framing *f, const unsigned char *bytes, size_t n);

/* Checks on the parsed request (method, HTTP/1.1 or not, fields): NULL
 * when acceptable, else the reason, with *status the answer (400; 411 for
 * any Transfer-Encoding: bodies are small JSON sent with Content-Length, so
 * chunked framing, a known source of smuggling, is refused; 405 for
 * CONNECT). A request with neither has no body (RFC 9112 sec. 6.3).
 * method is libevent's enum evhttp_cmd_type. */
const char *cs_framing_check_request(const struct evkeyvalq *headers, int method, int http_1_1,
				     int *status);

#endif
