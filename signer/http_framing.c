/* http_framing: see http_framing.h. */
#include "http_framing.h"

#include <strings.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/http.h>

#include <event2/keyvalq_struct.h>

void cs_framing_reset(cs_framing *f)
{
	*f = (cs_framing){.first_line = true};
}

/* RFC 9110 sec. 5.6.2 tchar */
static bool is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	switch (c) {
	case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
	case '-': case '.': case '^': case '_': case '`': case '|': case '~':
		return true;
	default:
		return false;
	}
}

/* A line has ended (its CR LF consumed): the defect of a request line
 * that is not METHOD SP TARGET SP HTTP/1.0|1.1, else NULL. */
static const char *end_line(cs_framing *f)
{
	if (f->first_line && f->line_len > 0 &&
	    (f->line_spaces != 2 ||
	     (strcmp(f->version, "HTTP/1.1") != 0 && strcmp(f->version, "HTTP/1.0") != 0)))
		return "a request line that is not METHOD SP TARGET SP HTTP/1.0 or HTTP/1.1";
	if (f->line_len == 0) {
		/* RFC 9112 sec. 2.2: empty lines before the request line are
		 * ignored; after it, the empty line ends the header section */
		if (!f->first_line)
			f->in_body = true;
	} else {
		f->first_line = false;
		f->in_name = true;
	}
	f->line_len = 0;
	return NULL;
}

/* One byte of the request line. */
static const char *request_line_byte(cs_framing *f, unsigned char c)
{
	if (c == ' ') {
		if (f->line_len == 0 || f->prev_space || ++f->line_spaces > 2)
			return "extra spaces in the request line";
		f->prev_space = true;
		return NULL;
	}
	f->prev_space = false;
	if (f->line_spaces == 0 && !is_tchar(c))
		return "a character not allowed in a method";
	if (f->line_spaces == 1 && (c < 0x21 || c > 0x7e))
		return "a character not allowed in the request target";
	if (f->line_spaces == 2) {
		size_t n = strlen(f->version);
		if (n + 1 >= sizeof(f->version))
			return "an unknown HTTP version";
		f->version[n] = (char)c;
	}
	return NULL;
}

static const char *scan_byte(cs_framing *f, unsigned char c)
{
	if (f->prev_cr) {
		f->prev_cr = false;
		if (c != '\n')
			return "a CR not followed by LF";
		return end_line(f);
	}
	if (c == '\r') {
		f->prev_cr = true;
		return NULL;
	}
	if (c == '\n')
		return "a line ending in a bare LF (CR LF required)";
	if (c == '\0')
		return "a NUL byte in the header section";
	if (!f->first_line && f->line_len == 0 && (c == ' ' || c == '\t'))
		return "an obs-fold continuation line";
	if (f->first_line) {
		const char *defect = request_line_byte(f, c);
		f->line_len++;
		return defect;
	}
	f->line_len++;
	if (!f->in_name) /* a field value: no controls but tab (RFC 9110 sec. 5.5) */
		return (c < 0x20 && c != '\t') || c == 0x7f ? "a control character in a header field value"
							     : NULL;
	if (c == ':') {
		if (f->line_len == 1)
			return "a header field with an empty name";
		f->in_name = false;
		return NULL;
	}
	if (c == ' ' || c == '\t')
		return "whitespace in a header field name or before its colon";
	if (!is_tchar(c))
		return "a character not allowed in a header field name";
	return NULL;
}

size_t cs_framing_feed(cs_framing *f, const unsigned char *bytes, size_t n)
{
	size_t i = 0;
	while (i < n && !f->in_body && f->defect == NULL) {
		f->defect = scan_byte(f, bytes[i]);
		f->header_bytes++;
		i++;
	}
	return i;
}

static int count_fields(const struct evkeyvalq *headers, const char *name)
{
	int n = 0;
	const struct evkeyval *kv;
	TAILQ_FOREACH(kv, headers, next)
		if (strcasecmp(kv->key, name) == 0)
			n++;
	return n;
}

static const char *field(const struct evkeyvalq *headers, const char *name)
{
	const struct evkeyval *kv;
	TAILQ_FOREACH(kv, headers, next)
		if (strcasecmp(kv->key, name) == 0)
			return kv->value;
	return NULL;
}

const char *cs_framing_check_request(const struct evkeyvalq *headers, int method, int http_1_1,
				     int *status)
{
	*status = 400;
	int lengths = count_fields(headers, "Content-Length");
	int codings = count_fields(headers, "Transfer-Encoding");
	if (lengths > 1)
		return "more than one Content-Length field";
	if (lengths == 1 && codings > 0)
		return "both Content-Length and Transfer-Encoding";
	int hosts = count_fields(headers, "Host");
	if (hosts > 1)
		return "more than one Host field";
	if (hosts == 0 && http_1_1)
		return "an HTTP/1.1 request without a Host field";
	const char *host = field(headers, "Host");
	if (host != NULL && (host[0] == '\0' || strpbrk(host, " \t,") != NULL))
		return "a Host field that is not one host";
	const char *length = field(headers, "Content-Length");
	if (length != NULL && (length[0] == '\0' || strspn(length, "0123456789") != strlen(length)))
		return "a Content-Length that is not a decimal number";
	int has_body = (length != NULL && strspn(length, "0") != strlen(length)) || codings > 0;
	if ((method == EVHTTP_REQ_HEAD || method == EVHTTP_REQ_TRACE) && has_body)
		return "a body on a request whose method takes none";
	if (method == EVHTTP_REQ_CONNECT) {
		*status = 405;
		return "CONNECT: this server is not a proxy";
	}
	if (codings > 0) {
		*status = 411;
		return "Transfer-Encoding: send the body with Content-Length";
	}
	/* no length and no coding: no body (RFC 9112 sec. 6.3) */
	return NULL;
}
