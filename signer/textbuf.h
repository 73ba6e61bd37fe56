/*
 * textbuf: a growable text buffer whose first failure sticks.
 *
 * Appends never fail loudly: a failed allocation (or a format error) sets
 * failed and every later append does nothing, so a writer appends freely
 * and checks failed once at the end. p is NUL-terminated whenever it is
 * not NULL; a buffer nothing was appended to has p NULL. The caller frees
 * p. Not for secrets (growth does not wipe the old copy).
 */
#ifndef CS_TEXTBUF_H
#define CS_TEXTBUF_H

#include <stddef.h>

typedef struct {
	char *p;
	size_t len, cap;
	int failed;
} cs_textbuf;

/* Append n bytes of s (n 0: only makes sure p exists). */
void cs_textbuf_put(cs_textbuf *b, const char *s, size_t n);
/* Append printf(fmt, ...). */
void cs_textbuf_printf(cs_textbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
