/*
 * generate_test: credential generation and the entropy it claims.
 *
 * - cs_entropy_bits against brute-force enumeration (small alphabets and
 *   lengths; classes and run limits);
 * - rejection sampling discards bytes >= the largest multiple of the
 *   alphabet size (a deterministic byte source);
 * - every preset's output meets its rules over 10,000 draws; the class
 *   rule holds for every type (pci-dss-4: a letter and a digit in every
 *   api-key, hex and base64url credential), with exact entropy;
 * - the presets cite what they are (PCI DSS v4.0.1, no blocklist claim,
 *   practice named as practice, audit retention);
 * - chi-square tests, per position and overall, over >= 1,000,000
 *   characters: a 94-symbol set (uniform) and a class-constrained preset
 *   (against the exact expected distribution of uniform compliant strings).
 *
 * - random buffers: one draw sliced, refills only when used up, handed-out
 *   bytes wiped; the generous estimates cover a draw on average;
 * - the plan cache: same outcome as planning afresh, bounded, thread-safe.
 *
 * The statistical tests use a fixed-key AES-128-CTR stream, so they are
 * reproducible: they test the mapping from bytes to credentials, not an RNG.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "generate.h"
#include "preset.h"
#include "test_support.h"

/* ---- byte sources ------------------------------------------------------------ */

typedef struct {
	EVP_CIPHER_CTX *ctx;
} ctr_stream;

static cs_err ctr_bytes(void *arg, uint8_t *buf, size_t n)
{
	ctr_stream *s = arg;
	int out = 0;
	memset(buf, 0, n);
	return EVP_EncryptUpdate(s->ctx, buf, &out, buf, (int)n) == 1 ? CS_OK : CS_E_CRYPTO;
}

static void ctr_init(ctr_stream *s, uint8_t seed)
{
	uint8_t key[16], iv[16] = {0};
	memset(key, seed, sizeof(key));
	s->ctx = EVP_CIPHER_CTX_new();
	assert_int_equal(EVP_EncryptInit_ex(s->ctx, EVP_aes_128_ctr(), NULL, key, iv), 1);
}

typedef struct {
	const uint8_t *bytes;
	size_t len, pos;
	size_t calls;
} script_stream;

/* Hands out a fixed script of bytes (then zeros) */
static cs_err script_bytes(void *arg, uint8_t *buf, size_t n)
{
	script_stream *s = arg;
	s->calls++;
	for (size_t i = 0; i < n; i++)
		buf[i] = s->pos < s->len ? s->bytes[s->pos++] : 0;
	return CS_OK;
}

static long double count_compliant(const size_t n[4], unsigned required, size_t len);

/* ---- brute force ------------------------------------------------------------ */

static double brute_force_bits(const cs_string_spec *spec)
{
	size_t n = strlen(spec->charset), total = 1, ok = 0;
	for (size_t i = 0; i < spec->length; i++)
		total *= n;
	char s[16];
	for (size_t idx = 0; idx < total; idx++) {
		size_t v = idx;
		for (size_t i = 0; i < spec->length; i++) {
			s[i] = spec->charset[v % n];
			v /= n;
		}
		s[spec->length] = '\0';
		ok += (size_t)cs_string_complies(spec, s);
	}
	return ok == 0 ? 0 : floor(log2((double)ok) * 100.0) / 100.0;
}

static void test_entropy_matches_brute_force(void **state)
{
	(void)state;
	static const struct {
		const char *charset;
		unsigned classes, ident, cls;
	} cases[] = {
		{"ab", 0, 0, 0},
		{"aB1!", CS_CLASS_UPPER | CS_CLASS_LOWER | CS_CLASS_DIGIT | CS_CLASS_SPECIAL, 0, 0},
		{"abcXY12", CS_CLASS_UPPER | CS_CLASS_DIGIT, 0, 0},
		{"abAB1!", CS_CLASS_LOWER | CS_CLASS_SPECIAL, 0, 0},
		{"abcAB1", CS_CLASS_UPPER | CS_CLASS_LOWER | CS_CLASS_DIGIT, 0, 0},
		{"abAB1!", 0, 2, 0},
		{"abAB1!", 0, 0, 2},
		{"abcAB1!", CS_CLASS_UPPER | CS_CLASS_LOWER, 2, 3},
		{"aAb1!", CS_CLASS_UPPER | CS_CLASS_LOWER | CS_CLASS_DIGIT | CS_CLASS_SPECIAL, 1, 2},
		{"abcdA1", CS_CLASS_LOWER | CS_CLASS_DIGIT, 3, 3},
	};
	int compared = 0;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++)
		for (size_t len = 1; len <= 7; len++) {
			cs_string_spec spec = {cases[c].charset, len, cases[c].classes, cases[c].ident,
					       cases[c].cls};
			double expect = brute_force_bits(&spec);
			double got = cs_entropy_bits(&spec);
			if (fabs(expect - got) > 1e-9)
				fprintf(stderr, "charset %s classes %u runs %u/%u length %zu: %f != %f\n",
					spec.charset, spec.classes, spec.max_identical_run,
					spec.max_class_run, len, got, expect);
			assert_true(fabs(expect - got) < 1e-9);
			compared++;
		}
	assert_int_equal(compared, 70);
	/* longer strings: the programme against inclusion-exclusion */
	const char *full94 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
			     "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
	size_t sizes[4] = {26, 26, 10, 32};
	for (size_t len = 8; len <= 64; len += 4) {
		cs_string_spec spec = {full94, len, 15, 0, 0};
		double ie = floor((double)log2l(count_compliant(sizes, 15, len)) * 100.0) / 100.0;
		assert_true(fabs(cs_entropy_bits(&spec) - ie) <= 0.01);
	}
	/* the 94-symbol set without constraints is exactly L * log2(94) */
	cs_string_spec full = {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
			       "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
			       20, 0, 0, 0};
	assert_true(fabs(cs_entropy_bits(&full) - floor(20 * log2(94.0) * 100) / 100) < 1e-9);
}

static void test_rejection_sampling_discards_high_bytes(void **state)
{
	(void)state;
	/* 94 symbols: the largest multiple of 94 below 256 is 188 */
	const char *charset = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
			      "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
	uint8_t script[] = {188, 255, 200, 5, 187, 0, 93, 94, 189};
	script_stream s = {script, sizeof(script), 0, 0};
	cs_string_spec spec = {charset, 5, 0, 0, 0};
	char out[8];
	assert_int_equal(cs_generate_string(&spec, script_bytes, &s, out, sizeof(out)), CS_OK);
	/* 188, 255, 200 rejected; 5 -> F; 187 -> 187 % 94 = 93 -> '~'; 0 -> A;
	 * 93 -> '~'; 94 -> A; 189 would be rejected but is not reached */
	assert_string_equal(out, "F~A~A");

	/* 62 symbols: bytes 248..255 are rejected */
	uint8_t script62[] = {248, 249, 255, 247, 61, 62};
	script_stream s62 = {script62, sizeof(script62), 0, 0};
	cs_string_spec b62 = {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", 3, 0, 0, 0};
	assert_int_equal(cs_generate_string(&b62, script_bytes, &s62, out, sizeof(out)), CS_OK);
	assert_string_equal(out, "99A"); /* 247 % 62 = 61, 61, 62 % 62 = 0 */

	/* a candidate missing a required class is rejected whole, not patched */
	uint8_t script_cls[] = {0, 1, 2, 3, /* "abcd": no digit */ 0, 4, 1, 2 /* "a0bc"... */};
	script_stream sc = {script_cls, sizeof(script_cls), 0, 0};
	cs_string_spec cls = {"abcd0", 4, CS_CLASS_LOWER | CS_CLASS_DIGIT, 0, 0};
	assert_int_equal(cs_generate_string(&cls, script_bytes, &sc, out, sizeof(out)), CS_OK);
	assert_string_equal(out, "a0bc");
}

static cs_preset_set *load_presets(void)
{
	cs_preset_set *set = ts_presets_load(CREDSIGN_SOURCE_DIR "/conf/presets.conf");
	assert_non_null(set);
	return set;
}

static void test_every_preset_meets_its_rules(void **state)
{
	(void)state;
	cs_preset_set *set = load_presets();
	cs_wordlist *wl = NULL;
	assert_int_equal(cs_wordlist_load(CREDSIGN_WORDLIST, &wl), CS_OK);
	assert_int_equal(wl->count, 7776);
	ctr_stream rng;
	ctr_init(&rng, 7);
	char out[CS_CREDENTIAL_MAX * 12];
	int checked = 0;
	for (size_t i = 0; i < set->count; i++) {
		const cs_preset *p = &set->items[i];
		assert_true(p->strength_bits >= CS_STRENGTH_FLOOR);
		for (int t = 1; t <= CS_TYPE_PASSPHRASE; t <<= 1) {
			if (!(p->types & (unsigned)t))
				continue;
			cs_plan_request q = {.type = t};
			cs_plan plan;
			char why[256];
			assert_int_equal(cs_preset_plan(p, wl, &q, &plan, why, sizeof(why)), CS_OK);
			assert_true(plan.entropy_bits >= p->strength_bits);
			for (int draw = 0; draw < 10000; draw++) {
				if (t == CS_TYPE_PASSPHRASE) {
					assert_int_equal(cs_generate_passphrase(wl, (size_t)plan.length, ctr_bytes,
										&rng, out, sizeof(out)),
							 CS_OK);
					assert_true(strlen(out) >= (size_t)p->min_length);
					int words = 1;
					for (char *c = out; *c; c++)
						words += *c == '-';
					assert_true(words >= plan.length); /* some EFF words have '-' */
					continue;
				}
				assert_int_equal(cs_generate_string(&plan.spec, ctr_bytes, &rng, out, sizeof(out)),
						 CS_OK);
				assert_int_equal(strlen(out), (size_t)plan.length);
				assert_true(plan.length >= p->min_length || t != CS_TYPE_PASSWORD);
				for (char *c = out; *c; c++)
					assert_non_null(strchr(plan.charset, *c));
				assert_true(cs_string_complies(&plan.spec, out));
			}
			checked++;
		}
	}
	assert_true(checked >= 20);
	EVP_CIPHER_CTX_free(rng.ctx);
	cs_wordlist_free(wl);
	cs_presets_free(set);
}

/* The class rule holds for every type a preset allows: a password has each
 * required class, an api-key, hex or base64url credential each required
 * class its alphabet has; the entropy counts exactly the strings that do. */
static void test_every_type_meets_the_class_rules(void **state)
{
	(void)state;
	cs_preset_set *set = load_presets();
	int typed = 0;
	for (size_t i = 0; i < set->count; i++) {
		const cs_preset *p = &set->items[i];
		for (int t = 1; t < CS_TYPE_PASSPHRASE; t <<= 1) {
			if (!(p->types & (unsigned)t))
				continue;
			cs_plan_request q = {.type = t};
			cs_plan plan;
			char why[256];
			assert_int_equal(cs_preset_plan(p, NULL, &q, &plan, why, sizeof(why)), CS_OK);
			size_t sizes[4] = {0};
			unsigned present = 0;
			for (const char *c = plan.charset; *c; c++) {
				unsigned k = cs_char_class(*c);
				present |= k;
				sizes[k == CS_CLASS_UPPER ? 0 : k == CS_CLASS_LOWER ? 1 : k == CS_CLASS_DIGIT ? 2 : 3]++;
			}
			unsigned want = t == CS_TYPE_PASSWORD ? p->classes : p->classes & present;
			if (plan.spec.classes != want)
				fail_msg("preset %s %s: classes %u, want %u", p->name,
					 cs_type_name((cs_cred_type)t), plan.spec.classes, want);
			if (t == CS_TYPE_PASSWORD)
				continue;
			/* exact: log2 of the inclusion-exclusion count */
			double ie = floor((double)log2l(count_compliant(sizes, want, (size_t)plan.length)) *
					  100.0) / 100.0;
			assert_true(fabs(plan.entropy_bits - ie) <= 0.01);
			assert_true(plan.entropy_bits >= plan.strength_bits);
			typed += want != 0;
		}
	}
	assert_true(typed >= 12); /* pci-dss-4, hipaa, soc2, iso-27001, fips-140-3 */

	/* PCI DSS v4.0.1 8.3.6, read directly: every credential of every type
	 * pci-dss-4 allows has a letter and a digit */
	const cs_preset *pci = cs_preset_find(set, "pci-dss-4");
	assert_non_null(pci);
	ctr_stream rng;
	ctr_init(&rng, 13);
	char out[CS_CREDENTIAL_MAX];
	for (int t = 1; t < CS_TYPE_PASSPHRASE; t <<= 1) {
		if (!(pci->types & (unsigned)t))
			continue;
		cs_plan_request q = {.type = t};
		cs_plan plan;
		char why[256];
		assert_int_equal(cs_preset_plan(pci, NULL, &q, &plan, why, sizeof(why)), CS_OK);
		for (int draw = 0; draw < 10000; draw++) {
			assert_int_equal(cs_generate_string(&plan.spec, ctr_bytes, &rng, out, sizeof(out)), CS_OK);
			int alpha = 0, digit = 0;
			for (const char *c = out; *c; c++) {
				alpha |= (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z');
				digit |= *c >= '0' && *c <= '9';
			}
			if (!alpha || !digit)
				fail_msg("pci-dss-4 %s '%s' lacks a letter or a digit",
					 cs_type_name((cs_cred_type)t), out);
		}
	}
	/* hex is 0-9a-f: the letter class is lower; 29 characters reach 112 bits */
	cs_plan_request qh = {.type = CS_TYPE_HEX};
	cs_plan hex;
	char why[256];
	assert_int_equal(cs_preset_plan(pci, NULL, &qh, &hex, why, sizeof(why)), CS_OK);
	assert_int_equal(hex.spec.classes, CS_CLASS_LOWER | CS_CLASS_DIGIT);
	assert_int_equal(hex.length, 29);
	EVP_CIPHER_CTX_free(rng.ctx);
	cs_presets_free(set);
}

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char *text = calloc(1, 1 << 20);
	assert_non_null(text);
	size_t n = fread(text, 1, (1 << 20) - 1, f);
	assert_true(n > 0 && n < (1 << 20) - 1);
	fclose(f);
	return text;
}

/* Citations say what they are; claims are of checks that are run. */
static void test_presets_cite_what_they_are(void **state)
{
	(void)state;
	cs_preset_set *set = load_presets();
	assert_true(set->version >= 2);
	char *text = read_text(CREDSIGN_SOURCE_DIR "/conf/presets.conf");
	/* PCI DSS is cited as v4.0.1 everywhere */
	int pci = 0;
	for (const char *c = text; (c = strstr(c, "PCI DSS v4.0")) != NULL; c += 12, pci++)
		if (strncmp(c, "PCI DSS v4.0.1 ", 15) != 0)
			fail_msg("not v4.0.1: %.40s", c);
	assert_true(pci >= 10);
	/* no blocklist check is run, so none is claimed; the basis says why */
	assert_null(strstr(text, "blocklist check)"));
	const cs_preset *nist = cs_preset_find(set, "nist-800-63b");
	for (size_t i = 0; i < nist->nstandards; i++)
		assert_null(strstr(nist->standards[i], "blocklist"));
	assert_non_null(strstr(nist->basis, "runs no blocklist check"));
	/* this appliance's choice is not federal practice; a schedule the text
	 * does not set is named as practice */
	assert_null(strstr(text, "federal practice"));
	const cs_preset *fips = cs_preset_find(set, "fips-140-3");
	assert_non_null(strstr(json_string_value(json_object_get(fips->cites, "length")), "this appliance's choice"));
	assert_non_null(strstr(json_string_value(json_object_get(fips->cites, "classes")), "this appliance's choice"));
	static const char *const practice[][2] = {{"soc2", "annual rotation is practice"},
						  {"iso-27001", "quarterly rotation is practice"},
						  {"hipaa", "annual rotation is practice"},
						  {"cis-v8", "no rotation set"}};
	for (size_t i = 0; i < sizeof(practice) / sizeof(practice[0]); i++) {
		const cs_preset *p = cs_preset_find(set, practice[i][0]);
		const char *cite = json_string_value(json_object_get(p->cites, "rotation"));
		if (cite == NULL || strstr(cite, practice[i][1]) == NULL)
			fail_msg("%s rotation cite: %s", p->name, cite != NULL ? cite : "(none)");
	}
	/* the db-* presets no longer claim "no escaping in connection strings
	 * or shells" (tests/unit/dbsafe_test.c proves what they claim) */
	assert_null(strstr(text, "needs no escaping"));
	/* audit retention: HIPAA 6 years, PCI 12 months; the longest wins */
	const cs_preset *hipaa = cs_preset_find(set, "hipaa"), *which = NULL;
	assert_int_equal(hipaa->audit_retention_days, 2192);
	assert_non_null(strstr(json_string_value(json_object_get(hipaa->cites, "retention")),
			       "45 CFR 164.316(b)(2)(i)"));
	assert_int_equal(cs_preset_find(set, "pci-dss-4")->audit_retention_days, 366);
	assert_int_equal(cs_presets_audit_retention(set, &which), 2192);
	assert_ptr_equal(which, hipaa);
	/* part of the canonical definition, so of preset_sha256 */
	assert_int_equal(json_integer_value(json_object_get(hipaa->definition, "audit_retention_days")), 2192);
	assert_int_equal(json_integer_value(json_object_get(cs_preset_find(set, "soc2")->definition,
							    "audit_retention_days")),
			 0);
	free(text);
	cs_presets_free(set);
}

/* Wilson-Hilferty approximation of the chi-square quantile for p = 0.001. */
static double chi2_critical(int dof)
{
	double k = dof, z = 3.0902;
	return k * pow(1 - 2 / (9 * k) + z * sqrt(2 / (9 * k)), 3);
}

/* Number of strings of length L over classes of sizes n[] that contain
 * every class in `required`, by inclusion-exclusion. */
static long double count_compliant(const size_t n[4], unsigned required, size_t len)
{
	size_t total = n[0] + n[1] + n[2] + n[3];
	long double sum = 0;
	for (unsigned s = 0; s < 16; s++) {
		if (s & ~required)
			continue;
		size_t excl = 0;
		int bits = 0;
		for (int k = 0; k < 4; k++)
			if (s & (1u << k)) {
				excl += n[k];
				bits++;
			}
		long double term = powl((long double)(total - excl), (long double)len);
		sum += bits % 2 ? -term : term;
	}
	return sum;
}

static void chi_square(const cs_string_spec *spec, size_t strings, uint8_t seed)
{
	size_t n = strlen(spec->charset), L = spec->length;
	size_t in_class[4] = {0};
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < 4; k++)
			if (cs_char_class(spec->charset[i]) == (1u << k))
				in_class[k]++;
	/* expected probability of each character at any one position: by
	 * symmetry every position has the same distribution; a character of
	 * class k leaves the other L-1 positions to supply the other classes */
	long double all = count_compliant(in_class, spec->classes, L);
	double *p = calloc(n, sizeof(double));
	for (size_t i = 0; i < n; i++) {
		unsigned k = cs_char_class(spec->charset[i]);
		p[i] = (double)(count_compliant(in_class, spec->classes & ~k, L - 1) / all);
	}
	size_t *pos = calloc(n * L, sizeof(size_t)), *overall = calloc(n, sizeof(size_t));
	ctr_stream rng;
	ctr_init(&rng, seed);
	char out[CS_CREDENTIAL_MAX];
	for (size_t s = 0; s < strings; s++) {
		assert_int_equal(cs_generate_string(spec, ctr_bytes, &rng, out, sizeof(out)), CS_OK);
		for (size_t i = 0; i < L; i++) {
			size_t idx = (size_t)(strchr(spec->charset, out[i]) - spec->charset);
			pos[i * n + idx]++;
			overall[idx]++;
		}
	}
	double crit = chi2_critical((int)n - 1), worst = 0, total_chi = 0;
	for (size_t i = 0; i < L; i++) {
		double chi = 0;
		for (size_t c = 0; c < n; c++) {
			double e = p[c] * (double)strings;
			chi += ((double)pos[i * n + c] - e) * ((double)pos[i * n + c] - e) / e;
		}
		if (chi > worst)
			worst = chi;
		assert_true(chi < crit);
	}
	for (size_t c = 0; c < n; c++) {
		double e = p[c] * (double)(strings * L);
		total_chi += ((double)overall[c] - e) * ((double)overall[c] - e) / e;
	}
	fprintf(stderr, "chi-square, %zu symbols, classes %u, %zu characters: worst position %.1f, "
			"overall %.1f, critical (p = 0.001) %.1f\n",
		n, spec->classes, strings * L, worst, total_chi, crit);
	assert_true(total_chi < crit);
	/* and the test has power: the naive "pick mod n" map would fail */
	EVP_CIPHER_CTX_free(rng.ctx);
	free(pos);
	free(overall);
	free(p);
}

static void test_chi_square_94_symbols(void **state)
{
	(void)state;
	cs_string_spec spec = {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
			       "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
			       20, 0, 0, 0};
	chi_square(&spec, 50000, 1); /* 1,000,000 characters */
}

static void test_chi_square_class_constrained_preset(void **state)
{
	(void)state;
	cs_preset_set *set = load_presets();
	const cs_preset *p = cs_preset_find(set, "soc2");
	assert_non_null(p);
	assert_int_equal(p->classes, CS_CLASS_UPPER | CS_CLASS_LOWER | CS_CLASS_DIGIT | CS_CLASS_SPECIAL);
	/* a short length makes the class constraint bite: the expected
	 * distribution is far from uniform over the 94 symbols */
	cs_string_spec spec = {p->charset, 6, p->classes, 0, 0};
	chi_square(&spec, 200000, 2); /* 1,200,000 characters */
	cs_presets_free(set);
}

static void test_biased_mapping_would_be_caught(void **state)
{
	(void)state;
	/* the chi-square machinery rejects a modulo-biased stream: simulate
	 * it by counting b % 94 over all bytes */
	size_t counts[94] = {0};
	ctr_stream rng;
	ctr_init(&rng, 3);
	uint8_t buf[4096];
	size_t total = 0;
	for (int round = 0; round < 250; round++) {
		assert_int_equal(ctr_bytes(&rng, buf, sizeof(buf)), CS_OK);
		for (size_t i = 0; i < sizeof(buf); i++)
			counts[buf[i] % 94]++;
		total += sizeof(buf);
	}
	double chi = 0, e = (double)total / 94;
	for (int c = 0; c < 94; c++)
		chi += ((double)counts[c] - e) * ((double)counts[c] - e) / e;
	assert_true(chi > chi2_critical(93));
	EVP_CIPHER_CTX_free(rng.ctx);
}

static void test_wordlist_rules(void **state)
{
	(void)state;
	char path[] = "/tmp/cs-words-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	FILE *f = fdopen(fd, "w");
	fputs("11111\tapple\n11112\tbanana\n11113\tapple\n", f); /* duplicate */
	fclose(f);
	cs_wordlist *wl = NULL;
	assert_int_equal(cs_wordlist_load(path, &wl), CS_E_CONFIG);
	f = fopen(path, "w");
	fputs("apple\nBanana\n", f); /* not lower-case */
	fclose(f);
	assert_int_equal(cs_wordlist_load(path, &wl), CS_E_CONFIG);
	f = fopen(path, "w");
	fputs("apple\nbanana\ncherry\n", f);
	fclose(f);
	assert_int_equal(cs_wordlist_load(path, &wl), CS_OK);
	assert_int_equal(wl->count, 3);
	assert_true(fabs(cs_passphrase_entropy(wl, 4) - floor(4 * log2(3.0) * 100) / 100) < 1e-9);
	/* 3 words: 16-bit numbers >= 65535 (the largest multiple of 3) are rejected */
	uint8_t script[] = {0xff, 0xff, 0x00, 0x01, 0x00, 0x02};
	script_stream s = {script, sizeof(script), 0, 0};
	char out[64];
	assert_int_equal(cs_generate_passphrase(wl, 2, script_bytes, &s, out, sizeof(out)), CS_OK);
	assert_string_equal(out, "banana-cherry");
	cs_wordlist_free(wl);
	unlink(path);
}

/* A wordlist file with the given words, loaded (or refused, with why). */
static cs_err load_words(const char *const *words, size_t n, char path[32], cs_wordlist **wl, char *why,
			 size_t why_len)
{
	snprintf(path, 32, "/tmp/cs-words-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	FILE *f = fdopen(fd, "w");
	assert_non_null(f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s\n", words[i]);
	assert_int_equal(fclose(f), 0);
	*wl = NULL;
	return cs_wordlist_load_diag(path, wl, why, why_len);
}

static void test_wordlist_words_with_the_separator(void **state)
{
	(void)state;
	static const struct {
		const char *words[6];
		size_t n;
		const char *culprit; /* NULL: accepted */
	} cases[] = {
		/* "apple-pie" is one word or two */
		{{"apple", "pie", "apple-pie", "tart"}, 4, "apple-pie"},
		/* [a-b, c] and [a, b-c] give "a-b-c" */
		{{"a-b", "b-c", "a", "c"}, 4, "a-b"},
		/* no piece is a word, yet [yo-yo-yo, yo-yo] and [yo-yo, yo-yo-yo] meet */
		{{"yo-yo", "yo-yo-yo", "kite"}, 3, "yo-yo-yo"},
		/* empty pieces: [felt, -tip] and [felt-, tip] give "felt--tip" */
		{{"felt", "felt-", "-tip", "tip"}, 4, "felt-"},
		/* uniquely decodable although words contain the separator */
		{{"t-shirt", "shirt", "apple"}, 3, NULL},
		{{"drop-down", "down", "yo-yo", "felt-tip", "tip-top"}, 5, NULL},
		{{"apple", "banana"}, 2, NULL},
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		char path[32], why[512];
		cs_wordlist *wl = NULL;
		cs_err r = load_words(cases[c].words, cases[c].n, path, &wl, why, sizeof(why));
		if (cases[c].culprit == NULL) {
			if (r != CS_OK)
				fprintf(stderr, "case %zu: %s\n", c, why);
			assert_int_equal(r, CS_OK);
			assert_int_equal(wl->count, cases[c].n);
		} else {
			assert_int_equal(r, CS_E_CONFIG);
			assert_null(wl);
			char quoted[64];
			snprintf(quoted, sizeof(quoted), "'%s'", cases[c].culprit);
			if (strstr(why, quoted) == NULL || strstr(why, path) == NULL)
				fprintf(stderr, "case %zu: %s\n", c, why);
			assert_non_null(strstr(why, path));
			assert_non_null(strstr(why, quoted));
			assert_non_null(strstr(why, "separator"));
		}
		cs_wordlist_free(wl);
		unlink(path);
	}
	/* the EFF list (drop-down, felt-tip, t-shirt, yo-yo) is accepted */
	cs_wordlist *eff = NULL;
	char why[512];
	assert_int_equal(cs_wordlist_load_diag(CREDSIGN_WORDLIST, &eff, why, sizeof(why)), CS_OK);
	cs_wordlist_free(eff);
}

static void test_plan_never_below_strength(void **state)
{
	(void)state;
	cs_preset_set *set = load_presets();
	const cs_preset *nist = cs_preset_find(set, "nist-800-63b");
	assert_non_null(nist);
	assert_true(nist->types & CS_TYPE_PASSPHRASE);
	assert_int_equal(nist->strength_bits, 112);
	static const char *const three[] = {"apple", "banana", "cherry"};
	char path[32], why[512];
	cs_wordlist *wl = NULL;
	assert_int_equal(load_words(three, 3, path, &wl, why, sizeof(why)), CS_OK);
	/* 64 words of 3 give 101.43 bits: no plan, a reason naming the numbers */
	cs_plan_request q = {.type = CS_TYPE_PASSPHRASE};
	cs_plan plan;
	assert_int_equal(cs_preset_plan(nist, wl, &q, &plan, why, sizeof(why)), CS_E_UNPROCESSABLE);
	assert_non_null(strstr(why, "101.43"));
	assert_non_null(strstr(why, "112"));
	assert_non_null(strstr(why, "nist-800-63b"));
	/* nor with an explicit word count */
	q.length = 64;
	assert_int_equal(cs_preset_plan(nist, wl, &q, &plan, why, sizeof(why)), CS_E_UNPROCESSABLE);
	/* the start-up check names the preset and the type */
	assert_int_equal(cs_presets_check(set, wl, why, sizeof(why)), CS_E_CONFIG);
	assert_non_null(strstr(why, "passphrase"));
	assert_non_null(strstr(why, "can never meet"));
	cs_wordlist_free(wl);
	unlink(path);

	/* 16 words: 4 bits each, so 256 bits is exactly 64 words and 257 none */
	static const char *const sixteen[] = {"aa", "ab", "ac", "ad", "ae", "af", "ag", "ah",
					      "ai", "aj", "ak", "al", "am", "an", "ao", "ap"};
	assert_int_equal(load_words(sixteen, 16, path, &wl, why, sizeof(why)), CS_OK);
	q = (cs_plan_request){.type = CS_TYPE_PASSPHRASE, .strength_bits = 256};
	assert_int_equal(cs_preset_plan(nist, wl, &q, &plan, why, sizeof(why)), CS_OK);
	assert_int_equal(plan.length, 64);
	assert_true(plan.entropy_bits >= 256);
	q.strength_bits = 257;
	assert_int_equal(cs_preset_plan(nist, wl, &q, &plan, why, sizeof(why)), CS_E_UNPROCESSABLE);
	assert_int_equal(cs_presets_check(set, wl, why, sizeof(why)), CS_OK);
	cs_wordlist_free(wl);
	unlink(path);

	/* every preset, type and strength: a plan is never below its strength */
	assert_int_equal(cs_wordlist_load(CREDSIGN_WORDLIST, &wl), CS_OK);
	assert_int_equal(cs_presets_check(set, wl, why, sizeof(why)), CS_OK);
	int plans = 0;
	for (size_t i = 0; i < set->count; i++)
		for (int t = 1; t <= CS_TYPE_PASSPHRASE; t <<= 1)
			for (int bits = 112; bits <= 256; bits += 16) {
				q = (cs_plan_request){.type = t, .strength_bits = bits};
				if (!(set->items[i].types & (unsigned)t) ||
				    cs_preset_plan(&set->items[i], wl, &q, &plan, why, sizeof(why)) != CS_OK)
					continue;
				assert_true(plan.entropy_bits >= plan.strength_bits);
				assert_true(plan.strength_bits >= bits);
				plans++;
			}
	assert_true(plans > 100);
	cs_wordlist_free(wl);
	cs_presets_free(set);
}

/* ---- random buffers ---------------------------------------------------------- */

static cs_err failing_bytes(void *arg, uint8_t *buf, size_t n)
{
	(void)arg;
	memset(buf, 0x5a, n); /* a source that fails after writing */
	return CS_E_TOKEN_UNAVAILABLE;
}

static int all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return 0;
	return 1;
}

static void test_random_buffer_slices_one_draw(void **state)
{
	(void)state;
	uint8_t script[64];
	for (size_t i = 0; i < sizeof(script); i++)
		script[i] = (uint8_t)(i + 1);
	script_stream s = {script, sizeof(script), 0, 0};
	cs_random_buffer b;
	cs_random_buffer_init(&b, script_bytes, &s, 8);
	uint8_t a[5], c[10], d[10];
	/* one draw of 20 bytes serves the first 15 */
	assert_int_equal(cs_random_buffer_fill(&b, 20), CS_OK);
	assert_int_equal(cs_random_take(&b, a, sizeof(a)), CS_OK);
	assert_int_equal(cs_random_take(&b, c, sizeof(c)), CS_OK);
	assert_int_equal(s.calls, 1);
	assert_int_equal(b.draws, 1);
	assert_int_equal(a[0], 1);
	assert_int_equal(c[0], 6);
	assert_int_equal(c[9], 15);
	/* handed-out bytes are not kept in the buffer */
	assert_true(all_zero(b.buf, 15));
	/* 5 left: the next 10 take them, then one refill of 8 (the chunk) */
	assert_int_equal(cs_random_take(&b, d, sizeof(d)), CS_OK);
	assert_int_equal(s.calls, 2);
	for (size_t i = 0; i < sizeof(d); i++)
		assert_int_equal(d[i], 16 + i); /* consecutive: nothing skipped */
	/* a take larger than the chunk refills what is missing at once */
	uint8_t big[30];
	assert_int_equal(cs_random_take(&b, big, sizeof(big)), CS_OK);
	assert_int_equal(s.calls, 3);
	assert_int_equal(big[0], 26);
	cs_random_buffer_wipe(&b);
	assert_true(all_zero(b.buf, sizeof(b.buf)));
	assert_int_equal(b.len, 0);

	/* a failing source: error, and nothing of its output handed out or kept */
	cs_random_buffer_init(&b, failing_bytes, NULL, 16);
	memset(a, 0xff, sizeof(a));
	assert_int_equal(cs_random_take(&b, a, sizeof(a)), CS_E_TOKEN_UNAVAILABLE);
	assert_true(all_zero(a, sizeof(a)));
	assert_true(all_zero(b.buf, sizeof(b.buf)));
	char out[32];
	assert_int_equal(cs_generate_string_from(&(cs_string_spec){"abcdef", 8, 0, 0, 0}, &b, out,
						 sizeof(out)),
			 CS_E_TOKEN_UNAVAILABLE);
}

/* A credential drawn from a buffer filled once takes one draw of the
 * source; the estimate covers what a draw takes on average. */
static void test_generous_estimates_cover_a_draw(void **state)
{
	(void)state;
	cs_preset_set *set = load_presets();
	cs_wordlist *wl = NULL;
	assert_int_equal(cs_wordlist_load(CREDSIGN_WORDLIST, &wl), CS_OK);
	ctr_stream rng;
	ctr_init(&rng, 11);
	char out[CS_CREDENTIAL_MAX * 12];
	for (size_t i = 0; i < set->count; i++)
		for (int t = 1; t <= CS_TYPE_PASSPHRASE; t <<= 1) {
			const cs_preset *p = &set->items[i];
			cs_plan_request q = {.type = t};
			cs_plan plan;
			char why[256];
			if (!(p->types & (unsigned)t))
				continue;
			assert_int_equal(cs_preset_plan(p, wl, &q, &plan, why, sizeof(why)), CS_OK);
			size_t estimate = t == CS_TYPE_PASSPHRASE
						  ? cs_passphrase_random_bytes(wl, (size_t)plan.length)
						  : cs_string_random_bytes(&plan.spec, plan.entropy_bits);
			size_t total = 0, over = 0;
			enum { DRAWS = 500 };
			for (int d = 0; d < DRAWS; d++) {
				cs_random_buffer b;
				cs_random_buffer_init(&b, ctr_bytes, &rng, 256);
				assert_int_equal(cs_random_buffer_fill(&b, CS_RANDOM_BUFFER_MAX), CS_OK);
				if (t == CS_TYPE_PASSPHRASE)
					assert_int_equal(cs_generate_passphrase_from(wl, (size_t)plan.length, &b,
										     out, sizeof(out)),
							 CS_OK);
				else
					assert_int_equal(cs_generate_string_from(&plan.spec, &b, out, sizeof(out)),
							 CS_OK);
				assert_int_equal(b.draws, 1);
				total += b.used;
				over += b.used > estimate;
				cs_random_buffer_wipe(&b);
			}
			double mean = (double)total / DRAWS;
			if (mean > (double)estimate || over > DRAWS / 4)
				fail_msg("preset %s %s: estimate %zu bytes, mean taken %.1f, %zu of %d draws over",
					 p->name, cs_type_name((cs_cred_type)t), estimate, mean, over, DRAWS);
		}
	EVP_CIPHER_CTX_free(rng.ctx);
	cs_wordlist_free(wl);
	cs_presets_free(set);
}

/* ---- plan cache ------------------------------------------------------------------ */

/* The same plan, field by field (spec.charset points into each plan). */
static void assert_same_plan(const cs_plan *a, const cs_plan *b)
{
	assert_int_equal(a->type, b->type);
	assert_string_equal(a->charset, b->charset);
	assert_ptr_equal(a->spec.charset, a->charset);
	assert_int_equal(a->spec.length, b->spec.length);
	assert_int_equal(a->spec.classes, b->spec.classes);
	assert_int_equal(a->spec.max_identical_run, b->spec.max_identical_run);
	assert_int_equal(a->spec.max_class_run, b->spec.max_class_run);
	assert_int_equal(a->length, b->length);
	assert_int_equal(a->min_length, b->min_length);
	assert_int_equal(a->strength_bits, b->strength_bits);
	assert_true(a->entropy_bits == b->entropy_bits);
}

/* Plan afresh: the preset without its cache. */
static cs_err plan_uncached(const cs_preset *p, const cs_plan_request *q, cs_plan *plan, char *why,
			    size_t why_len)
{
	cs_preset copy = *p;
	copy.plan_cache = NULL;
	return cs_preset_plan(&copy, NULL, q, plan, why, why_len);
}

static void test_plan_cache_gives_the_computed_plan(void **state)
{
	(void)state;
	cs_preset_set *set = load_presets();
	unsigned long hits, misses;
	size_t entries;
	for (size_t i = 0; i < set->count; i++) {
		const cs_preset *p = &set->items[i];
		cs_preset_plan_cache_stats(p, &hits, &misses, &entries);
		assert_int_equal(hits + misses + entries, 0);
		for (int t = 1; t < CS_TYPE_PASSPHRASE; t <<= 1)
			for (int round = 0; round < 2; round++) {
				/* defaults, lengths around the minimum (errors too),
				 * higher strengths, look-alikes excluded */
				cs_plan_request qs[] = {{.type = t},
							{.type = t, .length = 8},
							{.type = t, .length = 40},
							{.type = t, .length = 600},
							{.type = t, .strength_bits = 200},
							{.type = t, .strength_bits = 100},
							{.type = t, .exclude_ambiguous = 1}};
				for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
					cs_plan got, want;
					char why[400], why_want[400];
					cs_err r = cs_preset_plan(p, NULL, &qs[k], &got, why, sizeof(why));
					cs_err r_want = plan_uncached(p, &qs[k], &want, why_want, sizeof(why_want));
					assert_int_equal(r, r_want);
					assert_string_equal(why, why_want);
					if (r == CS_OK)
						assert_same_plan(&got, &want);
				}
			}
		cs_preset_plan_cache_stats(p, &hits, &misses, &entries);
		if (!(p->types & ~(unsigned)CS_TYPE_PASSPHRASE))
			continue;
		/* the second round came from the cache, the first computed */
		assert_true(entries > 0);
		assert_int_equal(hits, misses);
		assert_int_equal(misses, entries);
	}
	/* bounded: many lengths keep CS_PLAN_CACHE_MAX entries, and the
	 * replaced ones are planned again correctly */
	const cs_preset *p = cs_preset_find(set, "soc2");
	assert_non_null(p);
	for (int len = 1; len <= 3 * CS_PLAN_CACHE_MAX; len++) {
		cs_plan_request q = {.type = CS_TYPE_API_KEY, .length = len};
		cs_plan got, want;
		char why[400];
		cs_err r = cs_preset_plan(p, NULL, &q, &got, why, sizeof(why));
		assert_int_equal(r, plan_uncached(p, &q, &want, why, sizeof(why)));
		if (r == CS_OK)
			assert_same_plan(&got, &want);
	}
	cs_preset_plan_cache_stats(p, &hits, &misses, &entries);
	assert_int_equal(entries, CS_PLAN_CACHE_MAX);
	cs_presets_free(set);
}

struct plan_worker {
	const cs_preset *preset;
	const cs_plan *want; /* by length - 1 */
	const cs_err *want_r;
	int lengths, bad;
};

static void *plan_loop(void *arg)
{
	struct plan_worker *w = arg;
	for (int i = 0; i < 4000; i++) {
		int len = 1 + (i * 7) % w->lengths;
		cs_plan_request q = {.type = CS_TYPE_PASSWORD, .length = len};
		cs_plan got;
		char why[400];
		cs_err r = cs_preset_plan(w->preset, NULL, &q, &got, why, sizeof(why));
		const cs_plan *want = &w->want[len - 1];
		if (r != w->want_r[len - 1] ||
		    (r == CS_OK && (got.length != want->length || got.entropy_bits != want->entropy_bits ||
				    got.spec.charset != got.charset || strcmp(got.charset, want->charset) != 0)))
			w->bad++;
	}
	return NULL;
}

/* Threads planning more keys than the cache holds (so entries are replaced
 * while others read) always get the computed outcome. */
static void test_plan_cache_is_thread_safe(void **state)
{
	(void)state;
	cs_preset_set *set = load_presets();
	const cs_preset *p = cs_preset_find(set, "pci-dss-4");
	assert_non_null(p);
	enum { LENGTHS = CS_PLAN_CACHE_MAX + 16, THREADS = 6 };
	cs_plan want[LENGTHS];
	cs_err want_r[LENGTHS];
	for (int len = 1; len <= LENGTHS; len++) {
		cs_plan_request q = {.type = CS_TYPE_PASSWORD, .length = len};
		char why[400];
		want_r[len - 1] = plan_uncached(p, &q, &want[len - 1], why, sizeof(why));
	}
	pthread_t th[THREADS];
	struct plan_worker w[THREADS];
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct plan_worker){p, want, want_r, LENGTHS, 0};
		assert_int_equal(pthread_create(&th[i], NULL, plan_loop, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].bad, 0);
	}
	unsigned long hits, misses;
	size_t entries;
	cs_preset_plan_cache_stats(p, &hits, &misses, &entries);
	assert_int_equal(hits + misses, THREADS * 4000);
	assert_true(entries <= CS_PLAN_CACHE_MAX);
	cs_presets_free(set);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entropy_matches_brute_force),
		cmocka_unit_test(test_rejection_sampling_discards_high_bytes),
		cmocka_unit_test(test_every_preset_meets_its_rules),
		cmocka_unit_test(test_every_type_meets_the_class_rules),
		cmocka_unit_test(test_presets_cite_what_they_are),
		cmocka_unit_test(test_chi_square_94_symbols),
		cmocka_unit_test(test_chi_square_class_constrained_preset),
		cmocka_unit_test(test_biased_mapping_would_be_caught),
		cmocka_unit_test(test_wordlist_rules),
		cmocka_unit_test(test_wordlist_words_with_the_separator),
		cmocka_unit_test(test_plan_never_below_strength),
		cmocka_unit_test(test_random_buffer_slices_one_draw),
		cmocka_unit_test(test_generous_estimates_cover_a_draw),
		cmocka_unit_test(test_plan_cache_gives_the_computed_plan),
		cmocka_unit_test(test_plan_cache_is_thread_safe),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
