/* generate: see generate.h. */
#include "generate.h"

#include <math.h>
#include <string.h>

#include <openssl/crypto.h>

/* Random bytes are fetched in blocks to spare token round trips. */
#define RANDOM_BLOCK 256
/* Candidates drawn before giving up: only reachable with absurd specs. */
#define MAX_CANDIDATES 100000

unsigned cs_char_class(char c)
{
	if (c >= 'A' && c <= 'Z')
		return CS_CLASS_UPPER;
	if (c >= 'a' && c <= 'z')
		return CS_CLASS_LOWER;
	if (c >= '0' && c <= '9')
		return CS_CLASS_DIGIT;
	return CS_CLASS_SPECIAL;
}

cs_err cs_spec_check(const cs_string_spec *spec)
{
	if (spec == NULL || spec->charset == NULL)
		return CS_E_INVALID_ARG;
	size_t n = strlen(spec->charset);
	if (n < 2 || n > CS_CHARSET_MAX || spec->length < 1 || spec->length >= CS_CREDENTIAL_MAX)
		return CS_E_INVALID_ARG;
	unsigned present = 0;
	uint8_t seen[128] = {0};
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)spec->charset[i];
		if (c < 0x21 || c > 0x7e || seen[c]++)
			return CS_E_INVALID_ARG;
		present |= cs_char_class((char)c);
	}
	if ((spec->classes & ~present) != 0)
		return CS_E_INVALID_ARG; /* a required class the charset lacks */
	return CS_OK;
}

double cs_entropy_bits(const cs_string_spec *spec)
{
	size_t n = strlen(spec->charset);
	size_t in_class[4] = {0};
	for (size_t i = 0; i < n; i++) {
		unsigned c = cs_char_class(spec->charset[i]);
		for (int k = 0; k < 4; k++)
			if (c == (1u << k))
				in_class[k]++;
	}
	/* count = sum over subsets S of the required classes of
	 * (-1)^|S| (n - |chars in S|)^L ; computed as n^L * sum (...)
	 * with each term (1 - m/n)^L in long double */
	long double sum = 0;
	for (unsigned subset = 0; subset < 16; subset++) {
		if ((subset & ~spec->classes) != 0)
			continue;
		size_t excluded = 0;
		int bits = 0;
		for (int k = 0; k < 4; k++)
			if (subset & (1u << k)) {
				excluded += in_class[k];
				bits++;
			}
		long double term = powl(1.0L - (long double)excluded / (long double)n,
					(long double)spec->length);
		sum += (bits % 2) ? -term : term;
	}
	if (sum <= 0)
		return 0;
	long double bits = (long double)spec->length * log2l((long double)n) + log2l(sum);
	return floor((double)bits * 100.0) / 100.0;
}

typedef struct {
	cs_random_fn rnd;
	void *ctx;
	uint8_t block[RANDOM_BLOCK];
	size_t used;
} byte_source;

static cs_err next_byte(byte_source *src, uint8_t *b)
{
	if (src->used == 0 || src->used >= sizeof(src->block)) {
		cs_err r = src->rnd(src->ctx, src->block, sizeof(src->block));
		if (r != CS_OK)
			return r;
		src->used = 0;
	}
	*b = src->block[src->used++];
	return CS_OK;
}

cs_err cs_generate_string(const cs_string_spec *spec, cs_random_fn rnd, void *rnd_ctx, char *out,
			  size_t cap)
{
	cs_err r = cs_spec_check(spec);
	if (r != CS_OK)
		return r;
	if (cap <= spec->length)
		return CS_E_BUFFER_TOO_SMALL;
	size_t n = strlen(spec->charset);
	const unsigned limit = 256 - (256 % (unsigned)n); /* largest multiple of n <= 256 */
	byte_source src = {.rnd = rnd, .ctx = rnd_ctx};
	r = CS_E_INTERNAL;
	for (int attempt = 0; attempt < MAX_CANDIDATES; attempt++) {
		unsigned seen = 0;
		for (size_t i = 0; i < spec->length;) {
			uint8_t b;
			if ((r = next_byte(&src, &b)) != CS_OK)
				goto out;
			if (b >= limit)
				continue; /* rejected: would bias toward the first characters */
			out[i] = spec->charset[b % n];
			seen |= cs_char_class(out[i]);
			i++;
		}
		out[spec->length] = '\0';
		if ((seen & spec->classes) == spec->classes) {
			r = CS_OK;
			goto out;
		}
		r = CS_E_INTERNAL; /* missed a class: draw a whole new candidate */
	}
out:
	OPENSSL_cleanse(src.block, sizeof(src.block));
	if (r != CS_OK)
		OPENSSL_cleanse(out, cap);
	return r;
}
