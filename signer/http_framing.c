/* http_framing: see http_framing.h. */
#include "http_framing.h"

#include <strings.h>
#include <sys/queue.h>

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

/* A line has ended (its CR LF consumed). */
static void end_line(cs_framing *f)
{
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
}

static const char *scan_byte(cs_framing *f, unsigned char c)
{
	if (f->prev_cr) {
		f->prev_cr = false;
		if (c != '\n')
			return "a CR not followed by LF";
		end_line(f);
		return NULL;
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
	f->line_len++;
	if (f->first_line || !f->in_name)
		return NULL;
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

const char *cs_framing_check_headers(const struct evkeyvalq *headers, int http_minor_1)
{
	int lengths = count_fields(headers, "Content-Length");
	if (lengths > 1)
		return "more than one Content-Length field";
	if (lengths == 1 && count_fields(headers, "Transfer-Encoding") > 0)
		return "both Content-Length and Transfer-Encoding";
	int hosts = count_fields(headers, "Host");
	if (hosts > 1)
		return "more than one Host field";
	if (hosts == 0 && http_minor_1)
		return "an HTTP/1.1 request without a Host field";
	return NULL;
}
