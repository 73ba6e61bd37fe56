/* textbuf: a growable text buffer whose first failure sticks (textbuf.h). */
#include "textbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for n more bytes and the NUL; 0, or -1 (failed set). */
static int reserve(cs_textbuf *b, size_t n)
{
	if (b->failed)
		return -1;
	if (b->len + n + 1 <= b->cap)
		return 0;
	size_t cap = b->cap != 0 ? b->cap : 4096;
	while (cap < b->len + n + 1)
		cap *= 2;
	char *grown = realloc(b->p, cap);
	if (grown == NULL) {
		b->failed = 1;
		return -1;
	}
	b->p = grown;
	b->cap = cap;
	return 0;
}

void cs_textbuf_put(cs_textbuf *b, const char *s, size_t n)
{
	if (reserve(b, n) != 0)
		return;
	if (n > 0)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void cs_textbuf_printf(cs_textbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = 1;
		return;
	}
	if (reserve(b, (size_t)n) != 0)
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}
