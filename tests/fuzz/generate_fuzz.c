/* generate_fuzz: the generator against an independent model, on specs and
 * random streams chosen by the fuzzer.
 *
 * Input: [length][classes][identical-run][class-run][charset mask x2][bytes...]
 * over a 16-character pool with all four classes; lengths 1..4, so every
 * string can be enumerated (at most 16^4).
 *
 * - cs_entropy_bits must equal log2 of the number of compliant strings
 *   counted by brute force with this file's own compliance rules (rounded
 *   down to 0.01, as documented), and 0 when no string complies.
 * - cs_generate_string, fed the remaining bytes (then failing, like a token
 *   that stops answering), must either fail or return a string of the
 *   requested length, drawn from the charset, that complies; it must fail
 *   when no string complies.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "generate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char pool[] = "ABCDabcd0123!@#$";

/* The class of a pool character, by the pool's layout. */
static unsigned pool_class(char ch)
{
	size_t at = (size_t)(strchr(pool, ch) - pool);
	return 1u << (at / 4);
}

/* Compliance as the presets define it, written independently of generate.c. */
static int model_complies(const char *s, size_t len, unsigned classes, unsigned max_identical,
			  unsigned max_class)
{
	unsigned seen = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned c = pool_class(s[i]);
		seen |= c;
		size_t same = 1, same_class = 1;
		while (same <= i && s[i - same] == s[i])
			same++;
		while (same_class <= i && pool_class(s[i - same_class]) == c)
			same_class++;
		if (max_identical && same > max_identical)
			return 0;
		if (max_class && same_class > max_class)
			return 0;
	}
	return (seen & classes) == classes;
}

typedef struct {
	const uint8_t *p;
	size_t left;
} stream;

static cs_err from_input(void *ctx, uint8_t *buf, size_t n)
{
	stream *s = ctx;
	if (n > s->left)
		return CS_E_TOKEN_UNAVAILABLE;
	memcpy(buf, s->p, n);
	s->p += n;
	s->left -= n;
	return CS_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 6)
		return 0;
	char charset[sizeof(pool)];
	size_t n = 0;
	unsigned mask = (unsigned)data[4] | (unsigned)data[5] << 8;
	for (unsigned i = 0; i < 16; i++)
		if (mask & (1u << i))
			charset[n++] = pool[i];
	charset[n] = '\0';
	cs_string_spec spec = {charset, 1 + data[0] % 4, data[1] & 15u, data[2] % 4u, data[3] % 5u};
	if (cs_spec_check(&spec) != CS_OK)
		return 0;

	/* brute force: every string of the length over the charset */
	size_t total = 1, compliant = 0;
	for (size_t i = 0; i < spec.length; i++)
		total *= n;
	char s[8];
	for (size_t idx = 0; idx < total; idx++) {
		size_t v = idx;
		for (size_t i = 0; i < spec.length; i++, v /= n)
			s[i] = charset[v % n];
		compliant += (size_t)model_complies(s, spec.length, spec.classes, spec.max_identical_run,
						    spec.max_class_run);
	}
	double expected = compliant ? floor(log2((double)compliant) * 100.0) / 100.0 : 0.0;
	double got = cs_entropy_bits(&spec);
	if (fabs(got - expected) > 0.0101) {
		fprintf(stderr, "entropy %.4f, brute force %.4f (%zu of %zu) for '%s' len %zu classes %u runs %u/%u\n",
			got, expected, compliant, total, charset, spec.length, spec.classes,
			spec.max_identical_run, spec.max_class_run);
		abort();
	}

	stream st = {data + 6, size - 6};
	char out[CS_CREDENTIAL_MAX];
	if (cs_generate_string(&spec, from_input, &st, out, sizeof(out)) != CS_OK)
		return 0;
	if (compliant == 0 || strlen(out) != spec.length) {
		fprintf(stderr, "generated '%s' where %zu strings comply\n", out, compliant);
		abort();
	}
	for (size_t i = 0; i < spec.length; i++)
		if (strchr(charset, out[i]) == NULL)
			abort();
	if (!model_complies(out, spec.length, spec.classes, spec.max_identical_run, spec.max_class_run))
		abort();
	return 0;
}
