/*
 * alloc_fail_test: out of memory at every allocation of a public entry
 * point (alloc_fail.h). For n = 1, 2, ... the n-th allocation (ours, and
 * jansson's) fails; each run must return an error (CS_E_NOMEM or the
 * documented one, NULL for the functions that return a string), must not
 * crash, and must leave nothing behind (the ASan build's LeakSanitizer
 * checks every run at exit); the first run in which nothing failed must
 * succeed and give what an unhindered run gives.
 *
 * Entry points: wordlist load, presets load (built-in and operator),
 * policy build + Markdown + HTML, HTML escaping, configuration load (a
 * file with access grants, ceremony officers, signing profiles and a
 * policy group), access grants (new, slot, decide with a rate limit),
 * ceremony canonical bytes and officers (load, check), JWS sign and verify,
 * the JWS signature verifier, DSSE PAE and base64. The transcript and its
 * verification are swept in ceremony_test, on its fixtures.
 *
 * Found by these sweeps (fixed): jansson 2.14's json_dumps and json_copy
 * drop what they cannot allocate and its parser drops characters, so
 * digests, signing inputs and verified claims could silently differ from
 * the document (json_text.h); presets, the policy and the configuration
 * loaded in part (a grant without its lists) instead of failing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/evp.h>

#include "access.h"
#include "alloc_fail.h"
#include "ceremony.h"
#include "config.h"
#include "cs_log.h"
#include "ec_util.h"
#include "generate.h"
#include "jose.h"
#include "policy.h"
#include "preset.h"
#include "officer_pki.h"
#include "sigformat.h"
#include "test_support.h"

#define MAX_RUNS 200000ul

static char dir[512];
static cs_preset_set *presets;
static cs_wordlist *words;
static EVP_PKEY *key;
static json_t *jwks;

static void path_in(char *out, size_t cap, const char *name)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);
	assert_true(n > 0 && (size_t)n < cap);
}

/* A small wordlist: a full sweep of the EFF list would take minutes. */
static const char small_words[] = "11111\tabacus\n11112\tbanjo\n11113\tcactus\n11114\tdingo\n"
				  "11115\teel\n11116\tfjord\n11121\tgecko\n11122\thalibut\n";

static int setup(void **state)
{
	(void)state;
	const char *base = getenv("CREDSIGN_TEST_TMP");
	char tmpl[512];
	snprintf(tmpl, sizeof(tmpl), "%s/allocfail-XXXXXX", base != NULL ? base : "/tmp");
	if (base != NULL)
		mkdir(base, 0700);
	if (mkdtemp(tmpl) == NULL)
		return -1;
	snprintf(dir, sizeof(dir), "%s", tmpl);
	/* the refusals below are expected: keep stderr for the test's own */
	int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	cs_log_configure(CS_LOG_ERROR, CS_LOG_TEXT, devnull);
	char p[700];
	path_in(p, sizeof(p), "words.txt");
	ts_write_file(p, small_words, 0644);
	/* what a configuration names: readable placeholders, a PIN file, officers */
	static const char *const placeholders[] = {"cert.pem", "key.pem", "ca.pem", "crl.pem"};
	for (size_t i = 0; i < sizeof(placeholders) / sizeof(placeholders[0]); i++) {
		path_in(p, sizeof(p), placeholders[i]);
		ts_write_file(p, "placeholder\n", 0600);
	}
	path_in(p, sizeof(p), "data");
	if (mkdir(p, 0700) != 0)
		return -1;
	path_in(p, sizeof(p), "user.pin");
	ts_write_file(p, "123456\n", 0600);
	path_in(p, sizeof(p), "pki");
	if (op_make(p) != 0) {
		fprintf(stderr, "setup: no officer PKI in %s\n", p);
		return -1;
	}
	path_in(p, sizeof(p), "words.txt");
	presets = ts_presets_load(CREDSIGN_SOURCE_DIR "/conf/presets.conf");
	if (presets == NULL || cs_wordlist_load(p, &words) != CS_OK) {
		fprintf(stderr, "setup: presets or wordlist %s\n", p);
		return -1;
	}
	key = EVP_EC_gen("P-256");
	json_t *jwk = NULL;
	if (key == NULL || cs_jwk_from_pkey(key, &jwk) != CS_OK)
		return -1;
	jwks = json_pack("{s:[o]}", "keys", jwk);
	return jwks != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	cs_presets_free(presets);
	cs_wordlist_free(words);
	EVP_PKEY_free(key);
	json_decref(jwks);
	return 0;
}

/* ---- generate.c: wordlist ------------------------------------------------ */

static void run_wordlist(void *ctx)
{
	const char *path = ctx;
	cs_wordlist *w = NULL;
	char why[256] = "";
	cs_err r = cs_wordlist_load_diag(path, &w, why, sizeof(why));
	if (af_disarm()) {
		assert_int_equal(r, CS_E_NOMEM);
		assert_null(w);
		return;
	}
	assert_int_equal(r, CS_OK);
	assert_int_equal(w->count, 8);
	assert_string_equal(w->words[7], "halibut");
	assert_string_equal(w->sha256, words->sha256);
	cs_wordlist_free(w);
}

static void test_wordlist(void **state)
{
	(void)state;
	char p[700];
	path_in(p, sizeof(p), "words.txt");
	unsigned long n = af_sweep(run_wordlist, p, 0, MAX_RUNS);
	assert_true(n >= 9); /* the list, its words, its path */
}

/* ---- preset.c ------------------------------------------------------------ */

typedef struct {
	const char *builtin;
	const char *config;
	size_t count;
} presets_ctx;

static void run_presets(void *ctx)
{
	presets_ctx *c = ctx;
	cs_preset_set *set = NULL;
	cs_config_diag diag;
	memset(&diag, 0, sizeof(diag));
	cs_err r = cs_presets_load(c->builtin, c->config, &set, &diag);
	bool failed = af_disarm();
	if (failed) {
		/* a preset loaded in part would certify under a wrong digest */
		assert_int_equal(r, CS_E_NOMEM);
		assert_null(set);
	} else {
		for (size_t i = 0; i < diag.count; i++)
			fprintf(stderr, "unexpected: %s\n", diag.messages[i]);
		assert_int_equal(r, CS_OK);
		assert_int_equal(set->count, c->count);
		for (size_t i = 0; i < set->count; i++) {
			const cs_preset *want = cs_preset_find(presets, set->items[i].name);
			if (want != NULL)
				assert_string_equal(set->items[i].sha256, want->sha256);
		}
		cs_presets_free(set);
	}
	cs_config_diag_free(&diag);
}

static void test_presets(void **state)
{
	(void)state;
	presets_ctx c = {CREDSIGN_SOURCE_DIR "/conf/presets.conf", NULL, presets->count};
	assert_true(af_sweep(run_presets, &c, 0, MAX_RUNS) > 100);
	/* and operator presets from a configuration file's `presets` group */
	char p[700];
	path_in(p, sizeof(p), "op-presets.conf");
	ts_write_file(p,
		      "presets = {\n"
		      "  team-vault = { version = 1; title = \"Team vault\"; standards = [ \"Internal 4.2\" ];\n"
		      "    types = [ \"password\", \"api-key\" ]; charset = \"alnum\";\n"
		      "    classes = [ \"upper\", \"lower\", \"digit\" ]; min_length = 20; default_length = 24;\n"
		      "    strength_bits = 128; rotation = \"Yearly.\"; rotation_days = 365; max_identical_run = 3;\n"
		      "    max_class_run = 4; cites = { length = \"4.2\"; runs = \"4.3\"; }; };\n"
		      "  team-phrase = { version = 2; title = \"Phrases\"; standards = [ \"Internal 4.4\" ];\n"
		      "    types = [ \"passphrase\" ]; charset = \"full\"; classes = [ ]; min_length = 16;\n"
		      "    default_length = 20; strength_bits = 112; rotation = \"Never.\"; };\n"
		      "};\n",
		      0644);
	c.config = p;
	c.count = presets->count + 2;
	assert_true(af_sweep(run_presets, &c, 0, MAX_RUNS) > 100);
}

/* ---- policy.c ------------------------------------------------------------ */

typedef struct {
	const cs_preset *sel[3];
	size_t n;
	cs_policy_options opts;
	char *markdown; /* of the unhindered run */
	char *html;
} policy_ctx;

static void run_policy(void *ctx)
{
	policy_ctx *c = ctx;
	json_t *doc = NULL;
	char why[256] = "";
	char *md = NULL, *html = NULL;
	cs_err r = cs_policy_build_doc(presets, words, c->sel, c->n, &c->opts, &doc, why, sizeof(why));
	if (r == CS_OK) {
		md = cs_policy_markdown(doc);
		html = md != NULL ? cs_policy_html(doc) : NULL;
	}
	if (af_disarm()) {
		if (r == CS_OK)
			assert_null(html); /* the markdown or the page failed */
		else
			assert_int_equal(r, CS_E_NOMEM);
		if (r != CS_OK)
			assert_null(doc);
	} else {
		assert_int_equal(r, CS_OK);
		assert_non_null(md);
		assert_non_null(html);
		assert_string_equal(md, c->markdown);
		assert_string_equal(html, c->html);
	}
	free(md);
	free(html);
	json_decref(doc);
}

static void test_policy(void **state)
{
	(void)state;
	policy_ctx c;
	memset(&c, 0, sizeof(c));
	const char *names[] = {"nist-800-63b", "pci-dss-4", "dod-stig"};
	for (size_t i = 0; i < 3; i++) {
		c.sel[i] = cs_preset_find(presets, names[i]);
		assert_non_null(c.sel[i]);
	}
	c.n = 3;
	c.opts = (cs_policy_options){"Example <Org>", "CISO", NULL, "1.2", "2026-01-01", 6, 0};
	json_t *doc = NULL;
	char why[256];
	assert_int_equal(cs_policy_build_doc(presets, words, c.sel, c.n, &c.opts, &doc, why, sizeof(why)), CS_OK);
	c.markdown = cs_policy_markdown(doc);
	c.html = cs_policy_html(doc);
	json_decref(doc);
	assert_non_null(c.markdown);
	assert_non_null(c.html);
	assert_true(af_sweep(run_policy, &c, 0, MAX_RUNS) > 100);
	free(c.markdown);
	free(c.html);
}

static void run_escape(void *ctx)
{
	char *s = cs_policy_html_escape(ctx);
	if (af_disarm()) {
		assert_null(s);
		return;
	}
	assert_string_equal(s, "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
	free(s);
}

static void test_policy_escape(void **state)
{
	(void)state;
	assert_int_equal(af_sweep(run_escape, "<a href=\"x\">&'", 0, MAX_RUNS), 1);
}

/* ---- conf/config.c ------------------------------------------------------- */

/* Every group a daemon's file may have, as far as a unit test can. */
static const char full_config[] =
	"server = { listen = \"127.0.0.1:8443\"; public_base_url = \"https://credsign.test:8443/\"; node_id = \"n-1\"; };\n"
	"tls = { cert = \"cert.pem\"; key = \"key.pem\"; ca = \"ca.pem\"; crl = \"crl.pem\"; crl_check = true; };\n"
	"pkcs11 = { module = \"softhsm2\"; token_uri = \"pkcs11:token=credsign\"; pin_file = \"user.pin\";\n"
	"  sessions = 4; signing_key = \"pkcs11:token=credsign;object=es256\";\n"
	"  validation = { program = \"FIPS 140-3\"; certificate = \"4745\"; module = \"HSM\"; level = 3;\n"
	"    hardware_version = \"2.06\"; firmware_version = \"2.6\"; }; };\n"
	"store = { path = \"data/credsign.db\"; };\n"
	"log = { level = \"warn\"; format = \"json\"; };\n"
	"certificates = { public = true; };\n"
	"policy = { organisation = \"Example\"; owner = \"CISO\"; version = \"1\"; effective_date = \"2026-01-01\"; };\n"
	"signing = { max_request_bytes = 91480; batch_max = 7; profiles = (\n"
	"  { name = \"release\"; key = \"pkcs11:token=credsign;object=es256-release-1\";\n"
	"    formats = [ \"jws\", \"dsse\", \"digest\" ]; typ = \"release+jwt\";\n"
	"    payload_types = [ \"application/vnd.in-toto+json\" ]; aud = [ \"https://deploy.example\" ];\n"
	"    lifetime_seconds = 3600; store_payload = true; } ); };\n"
	"ceremony = { officer_ca = \"pki/officer-ca.pem\"; officer_crl = \"pki/officer-crl.pem\";\n"
	"  officers = ( { name = \"officer-a\"; certificate = \"pki/officers/officer-a.pem\"; },\n"
	"    { name = \"officer-b\"; certificate = \"pki/officers/officer-b.pem\"; },\n"
	"    { name = \"officer-c\"; certificate = \"pki/officers/officer-c.pem\"; } ); };\n"
	"access = { grants = (\n"
	"  { identity = \"spiffe://credsign.test/ci-deployer\"; role = \"generator\";\n"
	"    projects = [ \"payments\" ]; environments = [ \"production\", \"staging\" ];\n"
	"    presets = [ \"soc2\" ]; rate = 20.0; burst = 40; },\n"
	"  { identity = \"spiffe://example.org/ns/web/*\"; role = \"generator\"; projects = [ \"web\" ];\n"
	"    environments = [ \"*\" ]; rate = 2.5; },\n"
	"  { identity = \"spiffe://credsign.test/auditor\"; role = \"auditor\"; projects = [ \"*\" ];\n"
	"    profiles = [ \"*\" ]; },\n"
	"  { identity = \"spiffe://credsign.test/signer\"; role = \"signer\"; profiles = [ \"release\" ]; rate = 5; },\n"
	"  { identity = \"spiffe://credsign.test/operator\"; role = \"operator\"; rate = 3; }\n"
	"); };\n";

typedef struct {
	char path[700];
	size_t grants;
} config_ctx;

static void run_config(void *ctx)
{
	config_ctx *c = ctx;
	cs_config *cfg = NULL;
	cs_config_diag diag;
	cs_err r = cs_config_load(c->path, &cfg, &diag);
	if (af_disarm()) {
		/* out of memory is said, never taken for a setting's fault */
		int said = r == CS_E_NOMEM;
		for (size_t i = 0; i < diag.count; i++)
			said |= strstr(diag.messages[i], "out of memory") != NULL;
		if (!said)
			for (size_t i = 0; i < diag.count; i++)
				fprintf(stderr, "not out of memory: %s\n", diag.messages[i]);
		assert_int_not_equal(r, CS_OK);
		assert_true(said);
		assert_null(cfg);
	} else {
		for (size_t i = 0; i < diag.count; i++)
			fprintf(stderr, "unexpected: %s\n", diag.messages[i]);
		assert_int_equal(r, CS_OK);
		assert_int_equal(cfg->access.ngrants, c->grants);
		assert_string_equal(cfg->server.public_base_url, "https://credsign.test:8443");
		assert_true(cfg->ceremony.present);
		cs_config_free(cfg);
	}
	cs_config_diag_free(&diag);
}

static void test_config(void **state)
{
	(void)state;
	config_ctx c;
	path_in(c.path, sizeof(c.path), "full.conf");
	ts_write_file(c.path, full_config, 0600);
	c.grants = 5;
	assert_true(af_sweep(run_config, &c, 0, MAX_RUNS) > 50);
}

/* ---- access.c ------------------------------------------------------------ */

static void run_access(void *ctx)
{
	const cs_config *cfg = ctx;
	cs_access *a = NULL;
	cs_access_slot *slot = NULL;
	cs_err r = cs_access_new(cfg, &a);
	cs_err rs = r == CS_OK ? cs_access_slot_new(a, &slot) : r;
	cs_access_decision d;
	memset(&d, 0, sizeof(d));
	if (rs == CS_OK) {
		cs_access *held = cs_access_acquire(slot);
		cs_access_scope scope = {.project = "payments", .environment = "production", .preset = "soc2"};
		cs_access_decide(held, "spiffe://credsign.test/ci-deployer", CS_ACTION_GENERATE, &scope, 1, 1000, &d);
		cs_access_unref(held);
	}
	bool failed = af_disarm();
	if (failed && r == CS_OK && rs == CS_OK) {
		/* the rate bucket could not be made: access.c lets the request
		 * through (a limit protects capacity, it decides no access) */
		assert_true(d.allowed);
		assert_int_equal(d.retry_after, 0);
	} else if (failed) {
		assert_true(r == CS_E_NOMEM || rs == CS_E_NOMEM);
	} else {
		assert_int_equal(r, CS_OK);
		assert_int_equal(rs, CS_OK);
		assert_true(d.allowed);
		assert_string_equal(d.grant, "access.grants[0]");
	}
	if (slot != NULL)
		cs_access_slot_free(slot);
	else if (a != NULL)
		cs_access_unref(a);
}

static void test_access(void **state)
{
	(void)state;
	char p[700];
	path_in(p, sizeof(p), "full.conf");
	ts_write_file(p, full_config, 0600);
	cs_config *cfg = NULL;
	cs_config_diag diag;
	assert_int_equal(cs_config_load(p, &cfg, &diag), CS_OK);
	cs_config_diag_free(&diag);
	assert_true(af_sweep(run_access, cfg, 0, MAX_RUNS) > 5);
	cs_config_free(cfg);
}

/* ---- jose.c and sigformat.c ---------------------------------------------- */

typedef struct {
	json_t *header, *payload;
	char *jws; /* of the unhindered run: what every run that succeeds must sign */
	char *signing_input;
} jws_ctx;

static void run_jws_sign(void *ctx)
{
	jws_ctx *c = ctx;
	char *jws = NULL;
	cs_err r = cs_jws_es256_sign(c->header, c->payload, ts_soft_sign, key, &jws);
	if (af_disarm()) {
		assert_int_equal(r, CS_E_NOMEM);
		assert_null(jws);
		return;
	}
	assert_int_equal(r, CS_OK);
	/* the signature differs (ECDSA), the signed bytes never */
	size_t n = strlen(c->signing_input);
	assert_memory_equal(jws, c->signing_input, n);
	assert_int_equal(jws[n], '.');
	free(jws);
}

/* An allocation jansson's parser could do without (it carries on, and
 * the result is whole) may fail unseen: then the outcome is the full
 * one. Otherwise refused, nothing returned; jansson reports some of its
 * failed allocations as syntax errors, so refused as malformed is right
 * too. */
static void run_jws_verify(void *ctx)
{
	jws_ctx *c = ctx;
	json_t *h = NULL, *pl = NULL;
	cs_err r = cs_jws_es256_verify(c->jws, key, &h, &pl);
	if (af_disarm() && r != CS_OK) {
		assert_true(r == CS_E_NOMEM || r == CS_E_INVALID_ARG);
		assert_null(h);
		assert_null(pl);
		return;
	}
	assert_int_equal(r, CS_OK);
	assert_true(json_equal(h, c->header));
	assert_true(json_equal(pl, c->payload));
	json_decref(h);
	json_decref(pl);
}

static void run_sig_verify_jws(void *ctx)
{
	jws_ctx *c = ctx;
	json_t *claims = NULL;
	cs_sig_verdict v;
	cs_err r = cs_sig_verify_jws(c->jws, jwks, "release+jwt", 1700000000, &claims, &v);
	if (af_disarm() && r != CS_OK) {
		assert_true(r == CS_E_NOMEM || r == CS_E_SIGNATURE_INVALID);
		assert_null(claims);
		return;
	}
	assert_int_equal(r, CS_OK);
	assert_string_equal(v.code, "");
	assert_true(json_equal(claims, c->payload));
	json_decref(claims);
}

static void test_jws(void **state)
{
	(void)state;
	jws_ctx c;
	char kid[44];
	assert_int_equal(cs_jwk_thumbprint(key, kid), CS_OK);
	c.header = json_pack("{s:s, s:s, s:s}", "alg", "ES256", "kid", kid, "typ", "release+jwt");
	/* keys longer than jansson's first buffer, in an order sorting changes */
	c.payload = json_pack("{s:s, s:i, s:{s:[s, s], s:s}, s:s}", "sub", "artifact-with-a-rather-long-name",
			      "iat", 1699999000, "subject_digest_sha256_of_the_release_artifact", "sha256",
			      "0123456789abcdef", "fedcba9876543210", "media_type", "application/octet-stream",
			      "a_member_that_sorts_first_and_is_long_enough", "x");
	assert_non_null(c.header);
	assert_non_null(c.payload);
	assert_int_equal(cs_jws_es256_sign(c.header, c.payload, ts_soft_sign, key, &c.jws), CS_OK);
	c.signing_input = strndup(c.jws, (size_t)(strrchr(c.jws, '.') - c.jws));
	assert_non_null(c.signing_input);
	assert_true(af_sweep(run_jws_sign, &c, 0, MAX_RUNS) >= 4);
	assert_true(af_sweep(run_jws_verify, &c, 0, MAX_RUNS) >= 4);
	assert_true(af_sweep(run_sig_verify_jws, &c, 0, MAX_RUNS) >= 4);
	free(c.jws);
	free(c.signing_input);
	json_decref(c.header);
	json_decref(c.payload);
}

typedef struct {
	const char *type;
	const uint8_t *body;
	size_t len;
} pae_ctx;

static void run_pae(void *ctx)
{
	pae_ctx *c = ctx;
	uint8_t *pae = NULL;
	size_t n = 0;
	cs_err r = cs_sig_dsse_pae(c->type, c->body, c->len, &pae, &n);
	if (af_disarm()) {
		assert_int_equal(r, CS_E_NOMEM);
		assert_null(pae);
		return;
	}
	assert_int_equal(r, CS_OK);
	static const char want[] = "DSSEv1 28 application/vnd.in-toto+json 5 hello";
	assert_int_equal(n, sizeof(want) - 1);
	assert_memory_equal(pae, want, n);
	free(pae);
}

static void run_b64(void *ctx)
{
	(void)ctx;
	uint8_t *out = NULL;
	size_t n = 0;
	char *enc = cs_sig_b64_encode((const uint8_t *)"credsign", 8);
	cs_err r = enc != NULL ? cs_sig_b64_decode(enc, 64, &out, &n) : CS_E_NOMEM;
	if (af_disarm()) {
		assert_int_equal(r, CS_E_NOMEM);
		assert_null(out);
	} else {
		assert_int_equal(r, CS_OK);
		assert_string_equal(enc, "Y3JlZHNpZ24=");
		assert_int_equal(n, 8);
		assert_memory_equal(out, "credsign", 8);
	}
	free(enc);
	free(out);
}

static void test_sigformat(void **state)
{
	(void)state;
	pae_ctx c = {"application/vnd.in-toto+json", (const uint8_t *)"hello", 5};
	assert_true(af_sweep(run_pae, &c, 0, MAX_RUNS) >= 1);
	assert_true(af_sweep(run_b64, NULL, 0, MAX_RUNS) >= 2);
}

/* ---- ceremony.c ---------------------------------------------------------- */

typedef struct {
	cs_ceremony_record rec;
	char *want;
} canonical_ctx;

static void run_canonical(void *ctx)
{
	canonical_ctx *c = ctx;
	char *out = NULL;
	cs_err r = cs_ceremony_canonical(&c->rec, &out);
	if (af_disarm()) {
		/* the bytes officers sign: whole, or none */
		assert_int_not_equal(r, CS_OK);
		assert_null(out);
		return;
	}
	assert_int_equal(r, CS_OK);
	assert_string_equal(out, c->want);
	free(out);
}

typedef struct {
	const cs_config *cfg;
	char *pem;
	char fingerprint[CS_CEREMONY_FPR_CHARS + 1];
} officers_ctx;

static void run_officers(void *ctx)
{
	officers_ctx *c = ctx;
	cs_officers *o = NULL;
	char why[CS_CEREMONY_WHY_MAX] = "";
	cs_officer_id id;
	cs_err r = cs_officers_load(c->cfg, &o, why);
	cs_err rc = r == CS_OK ? cs_officers_check(o, c->pem, time(NULL), &id) : r;
	if (af_disarm()) {
		/* never an officer accepted on a check that could not be made */
		assert_int_not_equal(rc, CS_OK);
		if (r != CS_OK)
			assert_null(o);
	} else {
		assert_int_equal(r, CS_OK);
		assert_int_equal(rc, CS_OK);
		assert_string_equal(id.name, "officer-b");
		assert_string_equal(id.fingerprint, c->fingerprint);
		assert_int_equal(cs_officers_count(o), 3);
	}
	cs_officers_free(o);
}

static void test_ceremony(void **state)
{
	(void)state;
	canonical_ctx c = {.rec = {
				   .id = "cer_abcdefghijklmnopqrstuvwxya",
				   .action = "activate",
				   .subject = "kid-new",
				   .reason = "scheduled rotation",
				   .params_json = "{\"b\":\"x\",\"a\":1,\"nested\":{\"list\":[1,2,3]}}",
				   .nonce = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
				   .node = "node-1",
				   .created_at = "2025-01-02T03:04:05Z",
				   .expires_at = "2025-01-02T04:04:05Z",
				   .started_by = "local:alice",
			   }};
	assert_int_equal(cs_ceremony_canonical(&c.rec, &c.want), CS_OK);
	assert_true(af_sweep(run_canonical, &c, 0, MAX_RUNS) >= 3);
	free(c.want);

	officers_ctx o;
	char p[700];
	path_in(p, sizeof(p), "full.conf");
	ts_write_file(p, full_config, 0600);
	cs_config *cfg = NULL;
	cs_config_diag diag;
	assert_int_equal(cs_config_load(p, &cfg, &diag), CS_OK);
	cs_config_diag_free(&diag);
	o.cfg = cfg;
	char why[CS_CEREMONY_WHY_MAX];
	path_in(p, sizeof(p), "pki/officers/officer-b.pem");
	assert_int_equal(cs_officer_cert_read(p, &o.pem, why), CS_OK);
	assert_int_equal(op_fingerprint(p, o.fingerprint), 0);
	assert_true(af_sweep(run_officers, &o, 0, MAX_RUNS) >= 3);
	free(o.pem);
	cs_config_free(cfg);
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0); /* its lines between AF_BACKTRACE's */
	if (getenv("AF_ONLY") != NULL) /* e.g. AF_ONLY=test_config */
		cmocka_set_test_filter(getenv("AF_ONLY"));
	af_install(0);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wordlist),
		cmocka_unit_test(test_presets),
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_policy_escape),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_access),
		cmocka_unit_test(test_jws),
		cmocka_unit_test(test_sigformat),
		cmocka_unit_test(test_ceremony),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
