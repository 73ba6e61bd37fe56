/*
 * json_text: JSON text that is exactly the document, or nothing.
 *
 * jansson 2.14's json_dumps ignores a failed write of an object key (its
 * buffer could not grow): under memory pressure it returns text with a key
 * or a quote missing, malformed or naming another member, and a caller
 * that hashes or signs that text (preset digests, the policy digest, JWS
 * signing inputs, ceremony canonical bytes) would certify bytes that are
 * not the document. cs_json_text writes through json_dump_callback into a
 * buffer of its own whose failures stick: any failed write gives NULL.
 *
 * Growth copies are wiped (cs_wiped_append): the text may hold a
 * credential. The result is malloc'd; free it with free() (or
 * cs_wiping_free). Thread-safe.
 */
#ifndef CS_JSON_TEXT_H
#define CS_JSON_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* json_dumps(json, flags), or NULL when json is NULL, jansson refuses it
 * (e.g. a scalar without JSON_ENCODE_ANY) or memory runs out. */
char *cs_json_text(const json_t *json, size_t flags) __attribute__((warn_unused_result));

/* json_loadb(buf, len, flags) as the text says it. jansson 2.14's lexer
 * drops a character it cannot save (its buffer could not grow) and parses
 * on: a string or a number comes back shorter than written. The text is
 * parsed twice and the two documents compared (a text that fails is
 * parsed again: jansson reports some failed allocations as syntax errors);
 * NULL with *nomem set when they differ or memory ran out, NULL with
 * *nomem clear when the text is not JSON. For text whose meaning matters
 * (verified JWS parts, ceremony parameters). */
json_t *cs_json_load_exact(const char *buf, size_t len, size_t flags, int *nomem)
	__attribute__((warn_unused_result));

/* Whether s is well-formed UTF-8 (what json_string accepts), checked
 * without allocating: a failed json_string is then out of memory. */
bool cs_utf8_valid(const char *s);

#endif
