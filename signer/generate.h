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
 * - Run limits (no more than N identical characters in a row, no more than
 *   M characters of one class in a row) are met the same way: candidates
 *   that break them are rejected whole.
 * - cs_entropy_bits() is log2 of the exact number of compliant strings,
 *   rounded down to 0.01, counted by a dynamic programme over (classes
 *   seen, class of the last character, its class run, its identical run).
 *   Only additions, so no cancellation; checked against brute force and
 *   inclusion-exclusion in the tests.
 * - Passphrases: words drawn uniformly (rejection sampling on 16- or 32-bit
 *   numbers) from a wordlist of distinct words, joined by '-'. A list is
 *   refused when two different word sequences could give the same string
 *   (a word containing the separator that other words can also spell), so
 *   the entropy of n words is exactly n log2(list size).
 *
 * - Random bytes come from a cs_random_buffer: a request draws what it is
 *   expected to need in one go (few token calls), takes slices of it, and
 *   refills only when rejections used it up.
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
#define CS_RUN_LIMIT_MAX 16

/* Character classes (bits). Every character belongs to exactly one. */
enum { CS_CLASS_UPPER = 1, CS_CLASS_LOWER = 2, CS_CLASS_DIGIT = 4, CS_CLASS_SPECIAL = 8 };

typedef cs_err (*cs_random_fn)(void *ctx, uint8_t *buf, size_t n);

/* ---- random buffers -------------------------------------------------------- */

#define CS_RANDOM_BUFFER_MAX 2048

/* Random bytes drawn from a source in few large calls and handed out in
 * slices. It holds secrets: every user calls cs_random_buffer_wipe, and a
 * refill wipes what was left. Not thread-safe: one per request. */
typedef struct {
	cs_random_fn rnd;
	void *ctx;
	size_t chunk;        /* bytes drawn by a refill (1..CS_RANDOM_BUFFER_MAX) */
	size_t len, used;    /* buf[used..len) not handed out yet */
	unsigned long draws; /* calls of rnd so far */
	uint8_t buf[CS_RANDOM_BUFFER_MAX];
} cs_random_buffer;

/* An empty buffer over rnd; refills draw `chunk` bytes (clamped to
 * 1..CS_RANDOM_BUFFER_MAX) at a time. */
void cs_random_buffer_init(cs_random_buffer *b, cs_random_fn rnd, void *ctx, size_t chunk);
/* Draw n bytes (clamped to CS_RANDOM_BUFFER_MAX) now, in one call of rnd,
 * replacing (and wiping) what was left. */
cs_err cs_random_buffer_fill(cs_random_buffer *b, size_t n) __attribute__((warn_unused_result));
/* The next n bytes; refills (max(chunk, what is missing) bytes) only when
 * the buffer runs out. On failure out is zeroed. */
cs_err cs_random_take(cs_random_buffer *b, uint8_t *out, size_t n) __attribute__((warn_unused_result));
void cs_random_buffer_wipe(cs_random_buffer *b);

typedef struct {
	const char *charset;        /* distinct printable ASCII characters */
	size_t length;              /* characters to produce */
	unsigned classes;           /* CS_CLASS_* bits that must each appear */
	unsigned max_identical_run; /* 0: no limit; else at most this many equal in a row */
	unsigned max_class_run;     /* 0: no limit; else at most this many of a class in a row */
} cs_string_spec;

/* Does s satisfy the spec's classes and run limits (not the charset)? */
int cs_string_complies(const cs_string_spec *spec, const char *s);

/* The class of one character. */
unsigned cs_char_class(char c);
/* Validate a spec: distinct printable characters, every required class
 * present in the charset, 1 <= length <= CS_CREDENTIAL_MAX - 1. */
cs_err cs_spec_check(const cs_string_spec *spec);
/* Exact entropy of a uniform compliant string, in bits, rounded down to 0.01. */
double cs_entropy_bits(const cs_string_spec *spec);
/* Draw one compliant string into out[cap] (NUL-terminated), taking bytes
 * from src. */
cs_err cs_generate_string_from(const cs_string_spec *spec, cs_random_buffer *src, char *out,
			       size_t cap) __attribute__((warn_unused_result));
/* The same with a buffer of its own over rnd, refilled 256 bytes at a time. */
cs_err cs_generate_string(const cs_string_spec *spec, cs_random_fn rnd, void *rnd_ctx, char *out,
			  size_t cap) __attribute__((warn_unused_result));
/* Random bytes one string of the spec takes, generously: the expected
 * number (rejected bytes and rejected candidates included; entropy_bits is
 * cs_entropy_bits(spec)) plus a quarter and 16, at most
 * CS_RANDOM_BUFFER_MAX. More than a draw takes on average; callers that
 * round it up to whole token calls seldom need a refill. */
size_t cs_string_random_bytes(const cs_string_spec *spec, double entropy_bits);

/* ---- passphrases --------------------------------------------------------- */

#define CS_PASSPHRASE_SEPARATOR '-'
#define CS_PASSPHRASE_SEPARATOR_STR "-"
#define CS_PASSPHRASE_WORDS_MAX 64

typedef struct {
	char **words;
	size_t count;
	size_t min_word_len;
	char sha256[65]; /* of the file as read */
	char *path;
} cs_wordlist;

/* Load a wordlist: one word per line, optionally after dice digits and a
 * tab ("11111\tabacus", the EFF format). Words must be lower-case ASCII
 * letters or '-', distinct, at least 2 of them, and every string of words
 * joined by the separator must split back into words one way only (checked
 * with the Sardinas-Patterson test on the separator-delimited pieces): the
 * EFF list's "t-shirt" is accepted (no "t"), "apple-pie" beside "apple" and
 * "pie" is refused. CS_E_CONFIG with the reason in why[why_len], naming the
 * file and the word; CS_E_IO when the file cannot be read. */
cs_err cs_wordlist_load_diag(const char *path, cs_wordlist **out, char *why, size_t why_len)
	__attribute__((warn_unused_result));
/* The same, logging the reason (for callers that report only the code). */
cs_err cs_wordlist_load(const char *path, cs_wordlist **out) __attribute__((warn_unused_result));
void cs_wordlist_free(cs_wordlist *list);
/* Exact entropy of `words` uniform words, rounded down to 0.01. */
double cs_passphrase_entropy(const cs_wordlist *list, size_t words);
/* Words joined by CS_PASSPHRASE_SEPARATOR into out[cap], taking bytes from
 * src. */
cs_err cs_generate_passphrase_from(const cs_wordlist *list, size_t words, cs_random_buffer *src,
				   char *out, size_t cap) __attribute__((warn_unused_result));
/* The same with a buffer of its own over rnd, refilled 256 bytes at a time. */
cs_err cs_generate_passphrase(const cs_wordlist *list, size_t words, cs_random_fn rnd, void *rnd_ctx,
			      char *out, size_t cap) __attribute__((warn_unused_result));
/* Random bytes `words` words take, generously (as cs_string_random_bytes). */
size_t cs_passphrase_random_bytes(const cs_wordlist *list, size_t words);

#endif
