/* generate: see generate.h. */
#include "generate.h"

#include <math.h>
#include <string.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "cs_log.h"

/* Refill size of the generators' own buffers (cs_generate_string and
 * cs_generate_passphrase): blocks spare token round trips. */
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
	if (spec->max_identical_run > CS_RUN_LIMIT_MAX || spec->max_class_run > CS_RUN_LIMIT_MAX)
		return CS_E_INVALID_ARG;
	return CS_OK;
}

int cs_string_complies(const cs_string_spec *spec, const char *s)
{
	unsigned seen = 0, identical = 0, class_run = 0, prev_class = 0;
	for (size_t i = 0; s[i] != '\0'; i++) {
		unsigned c = cs_char_class(s[i]);
		seen |= c;
		identical = (i > 0 && s[i] == s[i - 1]) ? identical + 1 : 1;
		class_run = (i > 0 && c == prev_class) ? class_run + 1 : 1;
		prev_class = c;
		if (spec->max_identical_run && identical > spec->max_identical_run)
			return 0;
		if (spec->max_class_run && class_run > spec->max_class_run)
			return 0;
	}
	return (seen & spec->classes) == spec->classes;
}

/* log2 of the number of compliant strings by dynamic programming over
 * (classes seen, class of the last character, its class run, its identical
 * run). Counts only grow (no inclusion-exclusion cancellation), so long
 * double keeps ~19 significant digits; an impossible spec counts 0. A limit
 * that cannot bind (absent, or >= the length) saturates instead. */
static double entropy_with_runs(const cs_string_spec *spec, const size_t in_class[4])
{
	const size_t len = spec->length;
	const int r_bound = spec->max_class_run && spec->max_class_run < len;
	const int k_bound = spec->max_identical_run && spec->max_identical_run < len;
	const unsigned rmax = r_bound ? spec->max_class_run : (k_bound ? spec->max_identical_run : 1);
	const unsigned kmax = k_bound ? spec->max_identical_run : 1;
	/* without a class-run limit only k matters, and k <= r is not needed */
	const size_t states = 16 * 4 * (rmax + 1) * (kmax + 1);
#define AT(a, m, c, r, k) a[(((size_t)(m) * 4 + (size_t)(c)) * (rmax + 1) + (r)) * (kmax + 1) + (k)]
	long double *cur = calloc(states, sizeof(long double));
	long double *nxt = calloc(states, sizeof(long double));
	double result = 0;
	if (cur == NULL || nxt == NULL)
		goto out;
	for (unsigned c = 0; c < 4; c++)
		if (in_class[c] > 0)
			AT(cur, 1u << c, c, 1, 1) = (long double)in_class[c];
	for (size_t pos = 1; pos < len; pos++) {
		memset(nxt, 0, states * sizeof(long double));
		for (unsigned m = 1; m < 16; m++)
			for (unsigned c = 0; c < 4; c++)
				for (unsigned r = 1; r <= rmax; r++)
					for (unsigned k = 1; k <= kmax; k++) {
						long double v = AT(cur, m, c, r, k);
						if (v == 0)
							continue;
						for (unsigned d = 0; d < 4; d++) {
							if (in_class[d] == 0)
								continue;
							unsigned nm = m | (1u << d);
							if (d != c) {
								AT(nxt, nm, d, 1, 1) += v * (long double)in_class[d];
								continue;
							}
							unsigned nr = r + 1;
							if (nr > rmax) {
								if (r_bound)
									continue; /* too many of one class */
								nr = rmax;
							}
							AT(nxt, nm, d, nr, 1) += v * (long double)(in_class[d] - 1);
							unsigned nk = k + 1;
							if (nk > kmax) {
								if (k_bound)
									continue; /* too many equal characters */
								nk = kmax;
							}
							AT(nxt, nm, d, nr, nk) += v;
						}
					}
		long double *t = cur;
		cur = nxt;
		nxt = t;
	}
	long double total = 0;
	for (unsigned m = 0; m < 16; m++)
		if ((m & spec->classes) == spec->classes)
			for (unsigned c = 0; c < 4; c++)
				for (unsigned r = 1; r <= rmax; r++)
					for (unsigned k = 1; k <= kmax; k++)
						total += AT(cur, m, c, r, k);
	if (total > 0)
		result = floor((double)log2l(total) * 100.0) / 100.0;
#undef AT
out:
	free(cur);
	free(nxt);
	return result;
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
	return entropy_with_runs(spec, in_class);
}

/* ---- random buffers ----------------------------------------------------------- */

void cs_random_buffer_init(cs_random_buffer *b, cs_random_fn rnd, void *ctx, size_t chunk)
{
	memset(b, 0, sizeof(*b));
	b->rnd = rnd;
	b->ctx = ctx;
	b->chunk = chunk == 0 ? 1 : chunk > sizeof(b->buf) ? sizeof(b->buf) : chunk;
}

cs_err cs_random_buffer_fill(cs_random_buffer *b, size_t n)
{
	if (n > sizeof(b->buf))
		n = sizeof(b->buf);
	OPENSSL_cleanse(b->buf, b->len);
	b->len = b->used = 0;
	if (n == 0)
		return CS_OK;
	b->draws++;
	cs_err r = b->rnd(b->ctx, b->buf, n);
	if (r != CS_OK) {
		OPENSSL_cleanse(b->buf, n);
		return r;
	}
	b->len = n;
	return CS_OK;
}

cs_err cs_random_take(cs_random_buffer *b, uint8_t *out, size_t n)
{
	for (size_t off = 0; off < n;) {
		if (b->used == b->len) {
			size_t want = n - off > b->chunk ? n - off : b->chunk;
			cs_err r = cs_random_buffer_fill(b, want);
			if (r != CS_OK) {
				OPENSSL_cleanse(out, n);
				return r;
			}
		}
		size_t k = b->len - b->used < n - off ? b->len - b->used : n - off;
		memcpy(out + off, b->buf + b->used, k);
		OPENSSL_cleanse(b->buf + b->used, k); /* handed out: not kept here */
		b->used += k;
		off += k;
	}
	return CS_OK;
}

void cs_random_buffer_wipe(cs_random_buffer *b)
{
	OPENSSL_cleanse(b->buf, sizeof(b->buf));
	b->len = b->used = 0;
}

static cs_err next_byte(cs_random_buffer *src, uint8_t *b)
{
	if (src->used < src->len) { /* the common case, without a call */
		*b = src->buf[src->used];
		src->buf[src->used++] = 0;
		return CS_OK;
	}
	return cs_random_take(src, b, 1);
}

/* Generous: the expected count plus a quarter and 16 bytes, bounded. */
static size_t generous(double expected)
{
	if (!(expected < (double)CS_RANDOM_BUFFER_MAX))
		return CS_RANDOM_BUFFER_MAX;
	size_t n = (size_t)ceil(expected * 1.25) + 16;
	return n < CS_RANDOM_BUFFER_MAX ? n : CS_RANDOM_BUFFER_MAX;
}

size_t cs_string_random_bytes(const cs_string_spec *spec, double entropy_bits)
{
	size_t n = strlen(spec->charset);
	if (n < 2 || spec->length == 0)
		return 0;
	const unsigned limit = 256 - (256 % (unsigned)n);
	/* a candidate is accepted with probability (compliant strings) /
	 * (all strings) = 2^(entropy - length log2 n) */
	double rejected_bits = (double)spec->length * log2((double)n) - entropy_bits;
	double candidates = rejected_bits > 0 ? exp2(rejected_bits) : 1.0;
	return generous(candidates * (double)spec->length * 256.0 / (double)limit);
}

cs_err cs_generate_string_from(const cs_string_spec *spec, cs_random_buffer *src, char *out,
			       size_t cap)
{
	cs_err r = cs_spec_check(spec);
	if (r != CS_OK)
		return r;
	if (cap <= spec->length)
		return CS_E_BUFFER_TOO_SMALL;
	size_t n = strlen(spec->charset);
	const unsigned limit = 256 - (256 % (unsigned)n); /* largest multiple of n <= 256 */
	r = CS_E_INTERNAL;
	for (int attempt = 0; attempt < MAX_CANDIDATES; attempt++) {
		for (size_t i = 0; i < spec->length;) {
			uint8_t b;
			if ((r = next_byte(src, &b)) != CS_OK)
				goto out;
			if (b >= limit)
				continue; /* rejected: would bias toward the first characters */
			out[i] = spec->charset[b % n];
			i++;
		}
		out[spec->length] = '\0';
		if (cs_string_complies(spec, out)) {
			r = CS_OK;
			goto out;
		}
		r = CS_E_INTERNAL; /* missed a class or broke a run limit: draw anew */
	}
out:
	if (r != CS_OK)
		OPENSSL_cleanse(out, cap);
	return r;
}

cs_err cs_generate_string(const cs_string_spec *spec, cs_random_fn rnd, void *rnd_ctx, char *out,
			  size_t cap)
{
	cs_random_buffer src;
	cs_random_buffer_init(&src, rnd, rnd_ctx, RANDOM_BLOCK);
	cs_err r = cs_generate_string_from(spec, &src, out, cap);
	cs_random_buffer_wipe(&src);
	return r;
}

/* ---- passphrases ------------------------------------------------------------ */

void cs_wordlist_free(cs_wordlist *list)
{
	if (list == NULL)
		return;
	for (size_t i = 0; i < list->count; i++)
		free(list->words[i]);
	free(list->words);
	free(list->path);
	free(list);
}

static int word_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Is text[0..n) one of the sorted words? */
static int is_word(char *const *sorted, size_t count, const char *text, size_t n)
{
	size_t lo = 0, hi = count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strncmp(sorted[mid], text, n);
		if (c == 0)
			c = sorted[mid][n] == '\0' ? 0 : 1; /* text is a proper prefix of the word */
		if (c == 0)
			return 1;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* A dangling suffix: multi[word] + at, reached from multi[origin]. */
typedef struct {
	size_t word, at, origin;
} dangling;

typedef struct {
	char **multi; /* sorted words containing the separator */
	size_t nmulti;
	size_t *base;   /* visited index of multi[i][0] */
	uint8_t *seen;  /* one flag per character position of the multi words */
	dangling *work; /* stack, at most one entry per position */
	size_t top;
} sp_state;

static void sp_push(sp_state *st, size_t word, size_t at, size_t origin)
{
	if (st->seen[st->base[word] + at])
		return;
	st->seen[st->base[word] + at] = 1;
	st->work[st->top++] = (dangling){word, at, origin};
}

/* Sardinas-Patterson on the words as sequences of separator-delimited
 * pieces ("t-shirt" is [t, shirt]): joining with the separator is
 * concatenation of pieces, so a string of words splits back one way only
 * iff no dangling suffix is itself a word. Only words that contain the
 * separator can have a word as a proper prefix, so only they take part.
 * Sets *culprit to a separator-containing word an ambiguity starts from. */
static cs_err find_ambiguity(char *const *sorted, size_t count, const char **culprit)
{
	sp_state st = {0};
	cs_err r = CS_E_NOMEM;
	size_t positions = 0;
	*culprit = NULL;
	for (size_t i = 0; i < count; i++)
		st.nmulti += strchr(sorted[i], CS_PASSPHRASE_SEPARATOR) != NULL;
	if (st.nmulti == 0)
		return CS_OK;
	if ((st.multi = malloc(st.nmulti * sizeof(char *))) == NULL ||
	    (st.base = malloc(st.nmulti * sizeof(size_t))) == NULL)
		goto out;
	for (size_t i = 0, k = 0; i < count; i++)
		if (strchr(sorted[i], CS_PASSPHRASE_SEPARATOR) != NULL) {
			st.multi[k] = sorted[i]; /* stays sorted */
			st.base[k++] = positions;
			positions += strlen(sorted[i]) + 1;
		}
	if ((st.seen = calloc(positions, 1)) == NULL ||
	    (st.work = malloc(positions * sizeof(dangling))) == NULL)
		goto out;
	/* S1: a word that is a proper piece-prefix of another leaves the rest */
	for (size_t k = 0; k < st.nmulti; k++)
		for (const char *p = st.multi[k]; (p = strchr(p, CS_PASSPHRASE_SEPARATOR)) != NULL; p++)
			if (is_word(sorted, count, st.multi[k], (size_t)(p - st.multi[k])))
				sp_push(&st, k, (size_t)(p - st.multi[k]) + 1, k);
	r = CS_OK;
	while (st.top > 0 && r == CS_OK) {
		dangling d = st.work[--st.top];
		const char *s = st.multi[d.word] + d.at;
		size_t len = strlen(s);
		if (is_word(sorted, count, s, len)) {
			*culprit = st.multi[d.origin];
			r = CS_E_CONFIG;
			break;
		}
		/* a word that begins s leaves the rest of s */
		for (const char *p = s; (p = strchr(p, CS_PASSPHRASE_SEPARATOR)) != NULL; p++)
			if (is_word(sorted, count, s, (size_t)(p - s)))
				sp_push(&st, d.word, d.at + (size_t)(p - s) + 1, d.origin);
		/* s followed by the separator begins a word: the rest of that word */
		size_t lo = 0, hi = st.nmulti;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (strncmp(st.multi[mid], s, len) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (size_t k = lo; k < st.nmulti && strncmp(st.multi[k], s, len) == 0; k++)
			if (st.multi[k][len] == CS_PASSPHRASE_SEPARATOR)
				sp_push(&st, k, len + 1, d.origin);
	}
out:
	free(st.multi);
	free(st.base);
	free(st.seen);
	free(st.work);
	return r;
}

/* Distinct words that split back one way; the reason in why otherwise. */
static cs_err check_words(const cs_wordlist *wl, char *why, size_t why_len)
{
	char **sorted = malloc(wl->count * sizeof(char *));
	if (sorted == NULL)
		return CS_E_NOMEM;
	memcpy(sorted, wl->words, wl->count * sizeof(char *));
	qsort(sorted, wl->count, sizeof(char *), word_cmp);
	cs_err r = CS_OK;
	for (size_t i = 1; i < wl->count && r == CS_OK; i++)
		if (strcmp(sorted[i - 1], sorted[i]) == 0) {
			/* the entropy would be overstated */
			snprintf(why, why_len, "wordlist %s: the word '%s' appears more than once", wl->path,
				 sorted[i]);
			r = CS_E_CONFIG;
		}
	const char *culprit = NULL;
	if (r == CS_OK && (r = find_ambiguity(sorted, wl->count, &culprit)) == CS_E_CONFIG)
		snprintf(why, why_len,
			 "wordlist %s: the word '%s' contains the passphrase separator '%c' and other words "
			 "can spell the same text, so different word sequences would give the same passphrase",
			 wl->path, culprit, CS_PASSPHRASE_SEPARATOR);
	free(sorted);
	return r;
}

cs_err cs_wordlist_load_diag(const char *path, cs_wordlist **out, char *why, size_t why_len)
{
	*out = NULL;
	snprintf(why, why_len, "wordlist %s: cannot be read", path);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return CS_E_IO;
	cs_wordlist *wl = calloc(1, sizeof(*wl));
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	cs_err r = CS_E_CONFIG;
	char line[256];
	size_t cap = 0, lineno = 0;
	snprintf(why, why_len, "wordlist %s: out of memory", path);
	if (wl == NULL || md == NULL || !EVP_DigestInit_ex(md, EVP_sha256(), NULL) ||
	    (wl->path = strdup(path)) == NULL) {
		r = CS_E_NOMEM;
		goto out;
	}
	wl->min_word_len = SIZE_MAX;
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		EVP_DigestUpdate(md, line, strlen(line));
		char *w = line, *tab = strchr(line, '\t');
		if (tab != NULL)
			w = tab + 1;
		w[strcspn(w, "\r\n")] = '\0';
		if (w[0] == '\0')
			continue;
		for (const char *p = w; *p; p++)
			if (!((*p >= 'a' && *p <= 'z') || *p == '-')) {
				snprintf(why, why_len,
					 "wordlist %s:%zu: words must be lower-case ASCII letters or '-'", path,
					 lineno);
				r = CS_E_CONFIG;
				goto out;
			}
		if (wl->count == cap) {
			cap = cap ? cap * 2 : 8192;
			char **grown = realloc(wl->words, cap * sizeof(char *));
			if (grown == NULL) {
				r = CS_E_NOMEM;
				goto out;
			}
			wl->words = grown;
		}
		if ((wl->words[wl->count] = strdup(w)) == NULL) {
			r = CS_E_NOMEM;
			goto out;
		}
		if (strlen(w) < wl->min_word_len)
			wl->min_word_len = strlen(w);
		wl->count++;
	}
	if (wl->count < 2 || wl->count > (1u << 24)) {
		snprintf(why, why_len, "wordlist %s: needs 2 to %u words, has %zu", path, 1u << 24,
			 wl->count);
		r = CS_E_CONFIG;
		goto out;
	}
	if ((r = check_words(wl, why, why_len)) != CS_OK)
		goto out;
	uint8_t digest[32];
	unsigned int dlen = 0;
	EVP_DigestFinal_ex(md, digest, &dlen);
	for (int i = 0; i < 32; i++)
		snprintf(wl->sha256 + 2 * i, 3, "%02x", digest[i]);
	*out = wl;
	wl = NULL;
	why[0] = '\0';
	r = CS_OK;
out:
	fclose(f);
	EVP_MD_CTX_free(md);
	cs_wordlist_free(wl);
	return r;
}

cs_err cs_wordlist_load(const char *path, cs_wordlist **out)
{
	char why[512];
	cs_err r = cs_wordlist_load_diag(path, out, why, sizeof(why));
	if (r != CS_OK)
		cs_log_error("%s", why);
	return r;
}

double cs_passphrase_entropy(const cs_wordlist *list, size_t words)
{
	return floor((double)words * log2((double)list->count) * 100.0) / 100.0;
}

size_t cs_passphrase_random_bytes(const cs_wordlist *list, size_t words)
{
	const uint64_t range = list->count <= 65536 ? 65536 : 4294967296ull;
	const size_t bytes = list->count <= 65536 ? 2 : 4;
	const uint64_t limit = range - (range % list->count);
	return generous((double)words * (double)bytes * (double)range / (double)limit);
}

cs_err cs_generate_passphrase_from(const cs_wordlist *list, size_t words, cs_random_buffer *src,
				   char *out, size_t cap)
{
	const uint64_t range = list->count <= 65536 ? 65536 : 4294967296ull;
	const size_t bytes = list->count <= 65536 ? 2 : 4;
	const uint64_t limit = range - (range % list->count);
	size_t used = 0;
	cs_err r = CS_OK;
	if (words == 0 || cap == 0)
		return CS_E_INVALID_ARG;
	out[0] = '\0';
	for (size_t w = 0; w < words && r == CS_OK;) {
		uint64_t v = 0;
		for (size_t i = 0; i < bytes && r == CS_OK; i++) {
			uint8_t b = 0;
			r = next_byte(src, &b);
			v = (v << 8) | b;
		}
		if (r != CS_OK || v >= limit)
			continue; /* rejected: no bias toward the first words */
		const char *word = list->words[v % list->count];
		size_t need = strlen(word) + (w > 0);
		if (used + need + 1 > cap) {
			r = CS_E_BUFFER_TOO_SMALL;
			break;
		}
		if (w > 0)
			out[used++] = CS_PASSPHRASE_SEPARATOR;
		memcpy(out + used, word, strlen(word));
		used += strlen(word);
		out[used] = '\0';
		w++;
	}
	if (r != CS_OK)
		OPENSSL_cleanse(out, cap);
	return r;
}

cs_err cs_generate_passphrase(const cs_wordlist *list, size_t words, cs_random_fn rnd, void *rnd_ctx,
			      char *out, size_t cap)
{
	cs_random_buffer src;
	cs_random_buffer_init(&src, rnd, rnd_ctx, RANDOM_BLOCK);
	cs_err r = cs_generate_passphrase_from(list, words, &src, out, cap);
	cs_random_buffer_wipe(&src);
	return r;
}
