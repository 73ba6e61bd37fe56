/*
 * json_text (json_text.h): json_dump_callback into a buffer whose failures
 * stick.
 */
#include "json_text.h"

#include <stdbool.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wipe_alloc.h"

typedef struct {
	char *buf;
	size_t len, cap;
	int failed; /* sticky: jansson does not always stop at a failed write */
} text_sink;

static int sink_write(const char *data, size_t n, void *arg)
{
	text_sink *s = arg;
	if (s->failed || cs_wiped_append(&s->buf, &s->len, &s->cap, data, n, SIZE_MAX / 2) != 0)
		s->failed = 1;
	return s->failed ? -1 : 0;
}

char *cs_json_text(const json_t *json, size_t flags)
{
	text_sink s = {NULL, 0, 0, 0};
	if (json == NULL)
		return NULL;
	if (json_dump_callback(json, sink_write, &s, flags) != 0 || s.failed ||
	    cs_wiped_append(&s.buf, &s.len, &s.cap, "", 0, SIZE_MAX / 2) != 0) {
		cs_wiping_free(s.buf);
		return NULL;
	}
	return s.buf;
}

json_t *cs_json_load_exact(const char *buf, size_t len, size_t flags, int *nomem)
{
	json_error_t err, again;
	*nomem = 0;
	json_t *first = json_loadb(buf, len, flags, &err);
	if (first == NULL) {
		/* jansson reports some failed allocations as syntax errors: a
		 * text that is not JSON fails the same way twice */
		json_t *second = json_loadb(buf, len, flags, &again);
		*nomem = second != NULL || json_error_code(&err) == json_error_out_of_memory ||
			 json_error_code(&again) == json_error_out_of_memory || err.position != again.position ||
			 strcmp(err.text, again.text) != 0;
		json_decref(second);
		return NULL;
	}
	json_t *second = json_loadb(buf, len, flags, &err);
	int same = second != NULL && json_equal(first, second);
	json_decref(second);
	if (!same) {
		/* the text parsed once: a second failure or difference is memory */
		json_decref(first);
		*nomem = 1;
		return NULL;
	}
	return first;
}

/* RFC 3629: no overlong forms, no surrogates, at most U+10FFFF */
bool cs_utf8_valid(const char *v)
{
	const unsigned char *s = (const unsigned char *)v;
	while (*s) {
		unsigned c = *s++;
		int more = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : -1;
		if (more < 0)
			return false;
		unsigned cp = more == 0 ? c : c & (0x3fu >> more);
		for (int i = 0; i < more; i++, s++) {
			if ((*s & 0xc0) != 0x80)
				return false; /* also the terminating NUL */
			cp = (cp << 6) | (*s & 0x3fu);
		}
		static const unsigned least[] = {0, 0x80, 0x800, 0x10000};
		if (cp < least[more] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
	}
	return true;
}
