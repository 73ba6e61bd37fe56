/*
 * generate: credentials drawn uniformly from a character set with random
 * bytes from one source (the token's C_GenerateRandom in the daemon).
 *
 * - Each character is chosen by rejection sampling: a random byte b is used
 *   only when b < 256 - (256 mod N) (the largest multiple of N), then b mod N.
 *   No modulo bias.
 * - Required character classes are met by rejecting whole candidates that
 *   miss one, so the result is uniform over all compliant strings; positions
 *   are never forced.
 * - cs_entropy_bits() is log2 of the exact number of compliant strings
 *   (inclusion-exclusion over the required classes), rounded down to 0.01.
 *
 * Output goes to a caller buffer that holds a secret: callers wipe it.
 * Thread-safe; the random source must be.
 */
#ifndef CS_GENERATE_H
#define CS_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include "cs_error.h"

#define CS_CHARSET_MAX 128
#define CS_CREDENTIAL_MAX 512

/* Character classes (bits). Every character belongs to exactly one. */
enum { CS_CLASS_UPPER = 1, CS_CLASS_LOWER = 2, CS_CLASS_DIGIT = 4, CS_CLASS_SPECIAL = 8 };

typedef cs_err (*cs_random_fn)(void *ctx, uint8_t *buf, size_t n);

typedef struct {
	const char *charset;  /* distinct printable ASCII characters */
	size_t length;        /* characters to produce */
	unsigned classes;     /* CS_CLASS_* bits that must each appear */
} cs_string_spec;

/* The class of one character. */
unsigned cs_char_class(char c);
/* Validate a spec: distinct printable characters, every required class
 * present in the charset, 1 <= length <= CS_CREDENTIAL_MAX - 1. */
cs_err cs_spec_check(const cs_string_spec *spec);
/* Exact entropy of a uniform compliant string, in bits, rounded down to 0.01. */
double cs_entropy_bits(const cs_string_spec *spec);
/* Draw one compliant string into out[cap] (NUL-terminated). */
cs_err cs_generate_string(const cs_string_spec *spec, cs_random_fn rnd, void *rnd_ctx, char *out,
			  size_t cap) __attribute__((warn_unused_result));

#endif
