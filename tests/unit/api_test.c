/*
 * api_test: the API's input decoders, without a daemon (api.h).
 *
 * - client text quoted in messages is cut at a character boundary and
 *   marked, never half a character (a 64-character name ending in a
 *   multi-byte character gave 500 "out of memory");
 * - text limits count code points; C0/C1 controls, bidi controls and other
 *   invisible format characters are refused;
 * - /api/policy: more than 32 standards, duplicates, empty names, repeated
 *   or unknown parameters and %00 are refused, never dropped;
 * - /api/audit: integers are digits only, in range, without overflow;
 * - routing: 405 with Allow, 404, no query on routes that take none;
 * - POST /api/sign: the single and batch forms, every item decoded or
 *   refused on its own (unknown members, types, base64, the digest's hex,
 *   base64url and base64 forms), the batch and body limits, the status of
 *   each refusal code; ?profile= on the JWKS; signature ids;
 * - GET /api/signatures?sha256=HEX routed (signature.read) and decoded:
 *   64 lower-case hex digits, required, once, no other parameter;
 * - request ids differ between process starts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api.h"
#include "policy.h"
#include "test_support.h"

static cs_preset_set *presets;
static cs_wordlist *wordlist;

static int setup(void **state)
{
	(void)state;
	presets = ts_presets_load(CREDSIGN_SOURCE_DIR "/conf/presets.conf");
	if (presets == NULL || cs_wordlist_load(CREDSIGN_WORDLIST, &wordlist) != CS_OK)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	cs_presets_free(presets);
	cs_wordlist_free(wordlist);
	return 0;
}

/* "a" x n followed by tail */
static char *repeat(const char *unit, size_t n, const char *tail)
{
	size_t u = strlen(unit), t = strlen(tail);
	char *s = malloc(u * n + t + 1);
	assert_non_null(s);
	for (size_t i = 0; i < n; i++)
		memcpy(s + i * u, unit, u);
	memcpy(s + u * n, tail, t + 1);
	return s;
}

/* The error renders as the JSON body cs_api_handle sends. */
static void assert_renders(const cs_api_error *err)
{
	json_t *j = json_pack("{s:{s:s, s:s}}", "error", "code", err->code, "message", err->message);
	assert_non_null(j);
	json_decref(j);
}

static void assert_error(cs_err r, const cs_api_error *err, int status, const char *code)
{
	assert_int_not_equal(r, CS_OK);
	if (err->status != status || strcmp(err->code, code) != 0)
		fail_msg("expected %d %s, got %d %s: %s", status, code, err->status, err->code, err->message);
	assert_renders(err);
}

static cs_err generate(const char *body, cs_generate_input *g, cs_api_error *err)
{
	return cs_api_decode_generate(presets, wordlist, body, strlen(body), 65536, g, err);
}

/* ---- text --------------------------------------------------------------------- */

static void test_quote_cuts_at_character_boundary(void **state)
{
	(void)state;
	char q[CS_API_QUOTE_BYTES];
	/* 64 characters, the last one two bytes: quoted whole */
	char *s = repeat("a", 63, "\xc3\xa9");
	cs_api_quote(s, strlen(s), q);
	assert_string_equal(q, s);
	free(s);
	/* 65 characters: 64 and the mark, never half of the 65th */
	s = repeat("a", 64, "\xc3\xa9");
	cs_api_quote(s, strlen(s), q);
	char *want = repeat("a", 64, "...");
	assert_string_equal(q, want);
	free(want);
	free(s);
	/* 64 four-byte characters and more: whole characters only */
	s = repeat("\xf0\x9f\x9a\x80", 70, "");
	cs_api_quote(s, strlen(s), q);
	want = repeat("\xf0\x9f\x9a\x80", 64, "...");
	assert_string_equal(q, want);
	free(want);
	free(s);
	/* ill-formed bytes and refused characters become U+FFFD */
	cs_api_quote("a\xff" "b\xc2\x85" "c\xe2\x80\xae", 9, q);
	assert_string_equal(q, "a\xef\xbf\xbd" "b\xef\xbf\xbd" "c\xef\xbf\xbd");
	cs_api_quote("\xe2\x80", 2, q); /* a character cut by the client */
	assert_string_equal(q, "\xef\xbf\xbd\xef\xbf\xbd");
}

static void test_text_counts_characters(void **state)
{
	(void)state;
	size_t chars = 0;
	char *s = repeat("\xc3\xa9", 128, ""); /* 128 characters, 256 bytes */
	assert_int_equal(cs_api_text_check(s, strlen(s), 128, &chars), CS_TEXT_OK);
	assert_int_equal(chars, 128);
	free(s);
	s = repeat("\xc3\xa9", 129, "");
	assert_int_equal(cs_api_text_check(s, strlen(s), 128, &chars), CS_TEXT_BAD_LENGTH);
	assert_int_equal(chars, 129);
	free(s);
	assert_int_equal(cs_api_text_check("", 0, 128, NULL), CS_TEXT_BAD_LENGTH);
	const char *ok = "Z\xc3\xbcrich \xe6\x9d\xb1\xe4\xba\xac \xf0\x9f\x9a\x80 a-b_c.d";
	assert_int_equal(cs_api_text_check(ok, strlen(ok), 128, NULL), CS_TEXT_OK);
	/* overlong, surrogate, truncated, above U+10FFFF */
	assert_int_equal(cs_api_text_check("\xc0\xaf", 2, 128, NULL), CS_TEXT_BAD_UTF8);
	assert_int_equal(cs_api_text_check("\xed\xa0\x80", 3, 128, NULL), CS_TEXT_BAD_UTF8);
	assert_int_equal(cs_api_text_check("\xe2\x80", 2, 128, NULL), CS_TEXT_BAD_UTF8);
	assert_int_equal(cs_api_text_check("\xf4\x90\x80\x80", 4, 128, NULL), CS_TEXT_BAD_UTF8);
	assert_int_equal(cs_api_text_check("a\0b", 3, 128, NULL), CS_TEXT_BAD_UTF8);
}

static void test_refused_characters(void **state)
{
	(void)state;
	static const uint32_t refused[] = {
		0x00,   0x09,   0x0a,   0x1f,   0x7f,   0x80,    0x85,    0x9f,    0xad,
		0x061c, 0x200b, 0x200d, 0x200e, 0x200f, 0x2028,  0x2029,  0x202a,  0x202b,
		0x202c, 0x202d, 0x202e, 0x2060, 0x2066, 0x2067,  0x2068,  0x2069,  0x206f,
		0x3164, 0xfeff, 0xfff9, 0xfffe, 0xffff, 0xe0001, 0xe0041, 0x1fffe, 0xd800,
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (!cs_api_char_refused(refused[i]))
			fail_msg("U+%04X is not refused", refused[i]);
	static const uint32_t allowed[] = {0x20, 0x41, 0x7e, 0xa0, 0xe9, 0x5d0, 0x627, 0x200a,
					   0x2030, 0x4e00, 0xfffd, 0x1f680};
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
		if (cs_api_char_refused(allowed[i]))
			fail_msg("U+%04X is refused", allowed[i]);
	/* in text: U+0085 (C1 NEL) and U+202E (RLO) */
	assert_int_equal(cs_api_text_check("ab\xc2\x85", 4, 128, NULL), CS_TEXT_REFUSED_CHAR);
	assert_int_equal(cs_api_text_check("ab\xe2\x80\xae", 5, 128, NULL), CS_TEXT_REFUSED_CHAR);
}

/* ---- POST /api/generate ---------------------------------------------------------- */

static void test_generate_long_names_quoted_whole(void **state)
{
	(void)state;
	cs_generate_input g;
	cs_api_error err;
	/* the 64-character preset name ending in U+00E9 gave 500 out of memory */
	char *name = repeat("a", 63, "\xc3\xa9");
	char body[512];
	snprintf(body, sizeof(body), "{\"preset\":\"%s\"}", name);
	assert_error(generate(body, &g, &err), &err, 400, "unknown_preset");
	assert_non_null(strstr(err.message, name));
	/* the same for an unknown field's name */
	snprintf(body, sizeof(body), "{\"preset\":\"soc2\",\"%s\":1}", name);
	assert_error(generate(body, &g, &err), &err, 400, "unknown_field");
	assert_non_null(strstr(err.message, name));
	free(name);
	/* a longer name is quoted up to 64 characters and marked */
	name = repeat("\xe6\x9d\xb1", 100, "");
	snprintf(body, sizeof(body), "{\"preset\":\"%s\"}", name);
	assert_error(generate(body, &g, &err), &err, 400, "unknown_preset");
	char *want = repeat("\xe6\x9d\xb1", 64, "...'");
	assert_non_null(strstr(err.message, want));
	free(want);
	free(name);
}

static void test_generate_text_fields(void **state)
{
	(void)state;
	cs_generate_input g;
	cs_api_error err;
	char body[2048];
	char *s = repeat("\xc3\xa9", 128, "");
	snprintf(body, sizeof(body), "{\"preset\":\"soc2\",\"project\":\"%s\"}", s);
	assert_int_equal(generate(body, &g, &err), CS_OK);
	assert_string_equal(g.project, s);
	cs_generate_input_free(&g);
	free(s);
	s = repeat("\xc3\xa9", 129, "");
	snprintf(body, sizeof(body), "{\"preset\":\"soc2\",\"system\":\"%s\"}", s);
	assert_error(generate(body, &g, &err), &err, 400, "invalid_field");
	assert_non_null(strstr(err.message, "1 to 128 characters"));
	assert_non_null(strstr(err.message, "129"));
	free(s);
	static const char *const bad[] = {"a\\u0085b", "a\\u202eb", "a\\u2066b", "a\\u200fb", "a\\u061cb",
					  "a\\ufeffb", "a\\u0007b", "a\\u007fb", "a\\udb40\\udc41b"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(body, sizeof(body), "{\"preset\":\"soc2\",\"environment\":\"%s\"}", bad[i]);
		assert_error(generate(body, &g, &err), &err, 400, "invalid_field");
		assert_non_null(strstr(err.message, "environment"));
	}
	assert_error(generate("{\"preset\":\"soc2\",\"project\":\"\"}", &g, &err), &err, 400, "invalid_field");
	assert_error(generate("{\"preset\":\"soc2\",\"project\":7}", &g, &err), &err, 400, "invalid_field");
}

static void test_generate_fields(void **state)
{
	(void)state;
	cs_generate_input g;
	cs_api_error err;
	assert_int_equal(generate("{\"preset\":\"soc2\",\"project\":\"payments\"}", &g, &err), CS_OK);
	assert_int_equal(g.plan.type, CS_TYPE_PASSWORD);
	assert_true(g.plan.length >= 20);
	assert_string_equal(g.preset->name, "soc2");
	cs_generate_input_free(&g);
	assert_int_equal(generate("{\"preset\":\"soc2\",\"type\":\"api-key\",\"prefix\":\"svc_1\"}", &g, &err), CS_OK);
	assert_string_equal(g.prefix, "svc_1");
	cs_generate_input_free(&g);
	assert_error(generate("{\"preset\":\"soc2\",\"prefix\":\"svc\"}", &g, &err), &err, 400, "invalid_field");
	assert_error(generate("{\"preset\":\"soc2\",\"type\":\"api-key\",\"prefix\":\"Svc\"}", &g, &err), &err, 400,
		     "invalid_field");
	assert_error(generate("{\"preset\":\"soc2\",\"type\":\"api-key\",\"prefix\":\"abcdefghijklmnopq\"}", &g, &err),
		     &err, 400, "invalid_field");
	assert_error(generate("{\"preset\":\"soc2\",\"type\":\"api-key\",\"prefix\":\"\"}", &g, &err), &err, 400,
		     "invalid_field");
	assert_error(generate("{\"preset\":\"soc2\",\"length\":4}", &g, &err), &err, 422, "below_minimum");
	assert_error(generate("{\"preset\":\"soc2\",\"length\":512}", &g, &err), &err, 400, "invalid_field");
	assert_error(generate("{\"preset\":\"soc2\",\"length\":20.0}", &g, &err), &err, 400, "invalid_field");
	assert_error(generate("{\"preset\":\"soc2\",\"length\":99999999999999999999999}", &g, &err), &err, 400,
		     "invalid_json");
	assert_error(generate("{\"preset\":\"soc2\",\"type\":\"pin\"}", &g, &err), &err, 400, "invalid_field");
	assert_error(generate("{}", &g, &err), &err, 400, "invalid_field");
	assert_error(generate("[]", &g, &err), &err, 400, "invalid_json");
	assert_error(generate("", &g, &err), &err, 400, "invalid_json");
	assert_error(generate("{\"preset\":\"soc2\",\"preset\":\"hipaa\"}", &g, &err), &err, 400, "invalid_json");
	assert_error(generate("{\"preset\":\"soc2\\u0000x\"}", &g, &err), &err, 400, "invalid_json");
	assert_error(generate("{\"preset\":\"\xff\"}", &g, &err), &err, 400, "invalid_json");
	assert_error(generate("{\"preset\":\"\xc3\"}", &g, &err), &err, 400, "invalid_json");
	/* too long: 413 naming the limit */
	const char *body = "{\"preset\":\"soc2\"}";
	assert_error(cs_api_decode_generate(presets, wordlist, body, strlen(body), 10, &g, &err), &err, 413,
		     "body_too_large");
	assert_non_null(strstr(err.message, "10"));
}

/* ---- certify and certificate paths ------------------------------------------------- */

static void test_certify(void **state)
{
	(void)state;
	char sid[CS_API_ID_CHARS + 1];
	cs_api_error err;
	const char *ok = "{\"generation_session_id\":\"Abcdefghijklmnopqrstu_\"}";
	assert_int_equal(cs_api_decode_certify(ok, strlen(ok), 65536, sid, &err), CS_OK);
	assert_string_equal(sid, "Abcdefghijklmnopqrstu_");
	static const struct {
		const char *body;
		int status;
		const char *code;
	} cases[] = {
		{"{}", 400, "invalid_field"},
		{"{\"generation_session_id\":1}", 400, "invalid_field"},
		{"{\"generation_session_id\":\"x\"}", 404, "not_found"},
		{"{\"generation_session_id\":\"Abcdefghijklmnopqrstu_x\"}", 404, "not_found"},
		{"{\"generation_session_id\":\"Abcdefghijklmnopqrst/_\"}", 404, "not_found"},
		{"{\"generation_session_id\":\"Abcdefghijklmnopqrstu_\",\"x\":1}", 400, "unknown_field"},
		{"nope", 400, "invalid_json"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_error(cs_api_decode_certify(cases[i].body, strlen(cases[i].body), 65536, sid, &err), &err,
			     cases[i].status, cases[i].code);
}

static void test_cert_path(void **state)
{
	(void)state;
	char id[CS_API_ID_CHARS + 1];
	int jws = -1;
	cs_api_error err;
	assert_int_equal(cs_api_decode_cert_path("Abcdefghijklmnopqrstu_", id, &jws, &err), CS_OK);
	assert_int_equal(jws, 0);
	assert_int_equal(cs_api_decode_cert_path("Abcdefghijklmnopqrstu_.jws", id, &jws, &err), CS_OK);
	assert_int_equal(jws, 1);
	assert_string_equal(id, "Abcdefghijklmnopqrstu_");
	char *long_id = repeat("A", 300, "");
	static const char *const bad[] = {"", ".jws", "Abcdefghijklmnopqrstu", "Abcdefghijklmnopqrstu_A",
					  "..%2f..%2fetc", "Abcdefghijklmnopqrstu_.jwsx"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_error(cs_api_decode_cert_path(bad[i], id, &jws, &err), &err, 404, "not_found");
	assert_error(cs_api_decode_cert_path(long_id, id, &jws, &err), &err, 404, "not_found");
	free(long_id);
}

/* ---- GET /api/policy ------------------------------------------------------------- */

static void test_policy_standards(void **state)
{
	(void)state;
	cs_policy_input in;
	cs_api_error err;
	assert_int_equal(cs_api_decode_policy(presets, "standards=pci-dss-4,dod-stig&format=markdown", &in, &err),
			 CS_OK);
	assert_int_equal(in.count, 2);
	assert_int_equal(in.markdown, 1);
	assert_string_equal(in.presets[1]->name, "dod-stig");
	/* 32 x pci-dss-4 + hipaa: the 33rd was dropped (12 characters instead of 16) */
	char *q = repeat("pci-dss-4,", 32, "hipaa");
	char *query = repeat("standards=", 1, q);
	assert_error(cs_api_decode_policy(presets, query, &in, &err), &err, 400, "invalid_field");
	assert_non_null(strstr(err.message, "33"));
	assert_non_null(strstr(err.message, "32"));
	free(query);
	free(q);
	/* duplicates are refused, not merged */
	assert_error(cs_api_decode_policy(presets, "standards=pci-dss-4,hipaa,pci-dss-4", &in, &err), &err, 400,
		     "invalid_field");
	assert_non_null(strstr(err.message, "twice"));
	static const struct {
		const char *query;
		int status;
		const char *code;
	} cases[] = {
		{NULL, 400, "invalid_field"},
		{"standards=", 400, "invalid_field"},
		{"standards=hipaa,", 400, "invalid_field"},
		{"standards=,hipaa", 400, "invalid_field"},
		{"standards=hipaa,,soc2", 400, "invalid_field"},
		{"standards=hipaa&standards=soc2", 400, "invalid_field"},
		{"standards=hipaa&format=json&format=markdown", 400, "invalid_field"},
		{"standards=hipaa&format=xml", 400, "invalid_field"},
		{"standards=hipaa&extra=1", 400, "unknown_field"},
		{"standards=hipaa%00soc2", 400, "invalid_field"},
		{"standards=hipaa&&format=json", 400, "invalid_field"},
		{"standards=nope", 404, "unknown_preset"},
		{"standards=%FF%FE", 404, "unknown_preset"},
		{"standards=%E2%80%AEhipaa", 404, "unknown_preset"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cs_err r = cs_api_decode_policy(presets, cases[i].query, &in, &err);
		if (r == CS_OK)
			fail_msg("query '%s' accepted", cases[i].query);
		assert_error(r, &err, cases[i].status, cases[i].code);
	}
	/* a 64-character name ending in a two-byte character: quoted whole */
	char *name = repeat("a", 63, "%C3%A9");
	query = repeat("standards=", 1, name);
	assert_error(cs_api_decode_policy(presets, query, &in, &err), &err, 404, "unknown_preset");
	char *want = repeat("a", 63, "\xc3\xa9'");
	assert_non_null(strstr(err.message, want));
	free(want);
	free(query);
	free(name);
}

static int64_t rule_value(const json_t *policy, const char *id)
{
	size_t i;
	json_t *rule;
	json_array_foreach(json_object_get(policy, "rules"), i, rule)
		if (strcmp(json_string_value(json_object_get(rule, "id")), id) == 0)
			return json_integer_value(json_object_get(rule, "value"));
	fail_msg("no rule %s", id);
	return -1;
}

static void test_policy_build(void **state)
{
	(void)state;
	const cs_preset *sel[CS_POLICY_STANDARDS_MAX + 1];
	json_t *policy = NULL;
	char why[200];
	sel[0] = cs_preset_find(presets, "pci-dss-4");
	sel[1] = cs_preset_find(presets, "hipaa");
	assert_int_equal(cs_policy_build(presets, wordlist, sel, 2, &policy, why, sizeof(why)), CS_OK);
	assert_int_equal(rule_value(policy, "length.human"), 16);
	json_decref(policy);
	sel[1] = sel[0];
	assert_int_equal(cs_policy_build(presets, wordlist, sel, 2, &policy, why, sizeof(why)), CS_E_INVALID_ARG);
	assert_null(policy);
	for (size_t i = 0; i <= CS_POLICY_STANDARDS_MAX; i++)
		sel[i] = &presets->items[i % presets->count];
	assert_int_equal(cs_policy_build(presets, wordlist, sel, CS_POLICY_STANDARDS_MAX + 1, &policy, why,
					 sizeof(why)),
			 CS_E_INVALID_ARG);
	assert_int_equal(cs_policy_build(presets, wordlist, sel, 0, &policy, why, sizeof(why)), CS_E_INVALID_ARG);
}

/* ---- GET /api/audit --------------------------------------------------------------- */

static void test_audit_query(void **state)
{
	(void)state;
	cs_audit_query q;
	cs_api_error err;
	assert_int_equal(cs_api_decode_audit_query(NULL, &q, &err), CS_OK);
	assert_int_equal(q.from_seq, 1);
	assert_int_equal(q.limit, 1000);
	assert_string_equal(q.project, ""); /* the whole log */
	assert_int_equal(cs_api_decode_audit_query("from_seq=42&limit=10000", &q, &err), CS_OK);
	assert_int_equal(q.from_seq, 42);
	assert_int_equal(q.limit, 10000);
	assert_int_equal(cs_api_decode_audit_query("from_seq=9223372036854775807", &q, &err), CS_OK);
	assert_int_equal(q.from_seq, INT64_MAX);
	/* one project's entries: text checked like a generate body's project */
	assert_int_equal(cs_api_decode_audit_query("project=Soci%C3%A9t%C3%A9%20X&limit=5", &q, &err), CS_OK);
	assert_string_equal(q.project, "Soci\xc3\xa9t\xc3\xa9 X");
	assert_int_equal(q.limit, 5);
	static const char *const bad[] = {
		"from_seq=0",         "from_seq=-1",        "from_seq=+5",        "from_seq=%205",
		"from_seq=5%20",      "from_seq=0x10",      "from_seq=5x",        "from_seq=",
		"from_seq=9223372036854775808",             "from_seq=99999999999999999999999",
		"limit=0",            "limit=10001",        "limit=99999999999999999999",
		"limit=1&limit=2",    "limit=1.5",          "from_seq=1&from_seq=1",
		"project=",           "project=a%E2%80%AEb", "project=%FF",       "project=a&project=b",
		"project=a%00b",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cs_err r = cs_api_decode_audit_query(bad[i], &q, &err);
		if (r == CS_OK)
			fail_msg("query '%s' accepted", bad[i]);
		assert_error(r, &err, 400, "invalid_field");
		assert_string_equal(q.project, "");
	}
	/* 128 characters fit, 129 do not */
	char query[8 + 129 * 6 + 1] = "project=";
	for (int i = 0; i < 128; i++)
		strcat(query, "%C3%A9");
	assert_int_equal(cs_api_decode_audit_query(query, &q, &err), CS_OK);
	assert_int_equal(strlen(q.project), 256);
	strcat(query, "%C3%A9");
	assert_error(cs_api_decode_audit_query(query, &q, &err), &err, 400, "invalid_field");
	assert_error(cs_api_decode_audit_query("since=5", &q, &err), &err, 400, "unknown_field");
}

/* GET /api/inventory (issue 19): its route and query */
static void test_inventory_query(void **state)
{
	(void)state;
	cs_inventory_query q;
	cs_api_error err;
	int csv = 1;
	assert_int_equal(cs_api_decode_inventory_query(NULL, &q, &csv, &err), CS_OK);
	assert_string_equal(q.project, "");
	assert_string_equal(q.environment, "");
	assert_false(q.has_due_before);
	assert_false(csv);
	assert_int_equal(cs_api_decode_inventory_query("project=payments&environment=prod&due_before=2026-03-01&format=csv",
						       &q, &csv, &err),
			 CS_OK);
	assert_string_equal(q.project, "payments");
	assert_string_equal(q.environment, "prod");
	assert_true(q.has_due_before);
	assert_int_equal(q.due_before_ms, 1772323200000LL); /* 2026-03-01T00:00:00Z */
	assert_string_equal(q.due_before, "2026-03-01");
	assert_true(csv);
	assert_int_equal(cs_api_decode_inventory_query("due_before=2026-03-01T10%3A00%3A00.250Z&format=json", &q, &csv, &err),
			 CS_OK);
	assert_int_equal(q.due_before_ms, 1772359200250LL);
	assert_false(csv);
	static const struct {
		const char *query, *code, *names;
	} bad[] = {
		{"project=", "invalid_field", "'project'"},
		{"environment=a%E2%80%AEb", "invalid_field", "'environment'"},
		{"due_before=2026-02-30", "invalid_field", "'due_before'"},
		{"due_before=tomorrow", "invalid_field", "'due_before'"},
		{"due_before=2026-03-01T10:00:00%2B01:00", "invalid_field", "'due_before'"},
		{"format=xml", "invalid_field", "'format'"},
		{"project=a&project=b", "invalid_field", "'project'"},
		{"system=db1", "unknown_field", "'system'"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cs_err r = cs_api_decode_inventory_query(bad[i].query, &q, &csv, &err);
		if (r == CS_OK)
			fail_msg("query '%s' accepted", bad[i].query);
		assert_error(r, &err, 400, bad[i].code);
		if (strstr(err.message, bad[i].names) == NULL)
			fail_msg("'%s': '%s' does not name %s", bad[i].query, err.message, bad[i].names);
	}
	cs_api_route_id route;
	const char *action;
	assert_int_equal(cs_api_route(CS_METHOD_GET, "/api/inventory", "project=p", &route, &action, &err), CS_OK);
	assert_int_equal(route, CS_ROUTE_INVENTORY);
	assert_string_equal(action, "inventory.read");
	assert_string_equal(cs_api_route_name(route), "inventory");
	assert_int_equal(cs_api_route(CS_METHOD_POST, "/api/inventory", NULL, &route, &action, &err), CS_E_INVALID_ARG);
	assert_int_equal(err.status, 405);
}

/* ---- routes ------------------------------------------------------------------------ */

static void test_routes(void **state)
{
	(void)state;
	cs_api_route_id route;
	const char *action;
	cs_api_error err;
	assert_int_equal(cs_api_route(CS_METHOD_POST, "/api/generate", NULL, &route, &action, &err), CS_OK);
	assert_int_equal(route, CS_ROUTE_GENERATE);
	assert_string_equal(action, "generate");
	assert_int_equal(cs_api_route(CS_METHOD_HEAD, "/api/presets", NULL, &route, &action, &err), CS_OK);
	assert_int_equal(cs_api_route(CS_METHOD_GET, "/api/policy", "standards=soc2", &route, &action, &err), CS_OK);
	assert_int_equal(route, CS_ROUTE_POLICY);
	assert_int_equal(cs_api_route(CS_METHOD_GET, "/cert/Abcdefghijklmnopqrstu_", NULL, &route, &action, &err),
			 CS_OK);
	assert_int_equal(route, CS_ROUTE_CERT);
	assert_int_equal(cs_api_route(CS_METHOD_GET, "/healthz", NULL, &route, &action, &err), CS_OK);
	assert_null(action);
	/* the key lifecycle's public documents, audited like the JWKS */
	assert_int_equal(cs_api_route(CS_METHOD_GET, "/.well-known/credsign-rollover", NULL, &route, &action, &err),
			 CS_OK);
	assert_int_equal(route, CS_ROUTE_ROLLOVER);
	assert_string_equal(action, "rollover.read");
	assert_string_equal(cs_api_route_name(route), "rollover");
	assert_int_equal(cs_api_route(CS_METHOD_HEAD, "/.well-known/credsign-revocations", NULL, &route, &action, &err),
			 CS_OK);
	assert_int_equal(route, CS_ROUTE_REVOCATIONS);
	assert_string_equal(action, "revocations.read");
	assert_string_equal(cs_api_route_name(route), "revocations");
	assert_error(cs_api_route(CS_METHOD_POST, "/.well-known/credsign-revocations", NULL, &route, &action, &err), &err,
		     405, "method_not_allowed");
	assert_error(cs_api_route(CS_METHOD_GET, "/.well-known/credsign-revocations", "since=1", &route, &action, &err),
		     &err, 400, "unknown_field");

	assert_error(cs_api_route(CS_METHOD_GET, "/api/generate", NULL, &route, &action, &err), &err, 405,
		     "method_not_allowed");
	assert_string_equal(err.allow, "POST");
	assert_string_equal(action, "generate");
	assert_error(cs_api_route(CS_METHOD_OTHER, "/api/presets", NULL, &route, &action, &err), &err, 405,
		     "method_not_allowed");
	assert_string_equal(err.allow, "GET, HEAD");
	assert_error(cs_api_route(CS_METHOD_OTHER, "/cert/x", NULL, &route, &action, &err), &err, 405,
		     "method_not_allowed");
	assert_error(cs_api_route(CS_METHOD_POST, "/readyz", NULL, &route, &action, &err), &err, 405,
		     "method_not_allowed");
	assert_int_equal(route, CS_ROUTE_READYZ);

	static const char *const unknown[] = {"/", "/api", "/api/generate/", "/api//generate", "/API/generate",
					      "/cert", "/api/audit/", "/healthz/x",
					      "/.well-known/credsign-rollover/", "/.well-known/credsign-revocation"};
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		assert_error(cs_api_route(CS_METHOD_GET, unknown[i], NULL, &route, &action, &err), &err, 404,
			     "not_found");
		assert_int_equal(route, CS_ROUTE_NONE);
		assert_string_equal(action, "request");
	}
	/* a query where none is taken is refused, not ignored */
	assert_error(cs_api_route(CS_METHOD_GET, "/api/presets", "x=1", &route, &action, &err), &err, 400,
		     "unknown_field");
	assert_error(cs_api_route(CS_METHOD_POST, "/api/generate", "preset=soc2", &route, &action, &err), &err,
		     400, "unknown_field");
	assert_int_equal(cs_api_route(CS_METHOD_GET, "/api/presets", "", &route, &action, &err), CS_OK);
}

/* ---- delegated signing: POST /api/sign, GET /api/signatures/{id}, ?profile= ---------------- */

#define SIGN_MAX 65536

static cs_err sign_decode(const char *body, size_t batch_max, cs_sign_input *in, cs_api_error *err)
{
	return cs_api_decode_sign(body, strlen(body), SIGN_MAX, batch_max, in, err);
}

/* A body that decodes as one item refused by the decoder with status and code. */
static void assert_item_refused(const char *body, int status, const char *code)
{
	cs_sign_input in;
	cs_api_error err;
	assert_int_equal(sign_decode(body, 100, &in, &err), CS_OK);
	assert_int_equal(in.n, 1);
	const cs_api_sign_item *it = &in.items[0];
	if (it->err.status != status || strcmp(it->err.code, code) != 0)
		fail_msg("%s: expected %d %s, got %d %s: %s", body, status, code, it->err.status, it->err.code,
			 it->err.message);
	assert_renders(&it->err);
	/* the service audits the refusal under the decoder's code */
	assert_non_null(it->item.refused_code);
	assert_string_equal(it->item.refused_code, code);
	assert_non_null(it->item.refused_message);
	assert_true(it->item.refused_message[0] != '\0');
	cs_sign_input_free(&in);
}

static const uint8_t digest_bytes[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
					 0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
					 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};

static void assert_digest_decodes(const char *value)
{
	char body[300];
	snprintf(body, sizeof(body),
		 "{\"profile\":\"release\",\"format\":\"digest\",\"digest\":{\"alg\":\"SHA-256\",\"value\":\"%s\"}}", value);
	cs_sign_input in;
	cs_api_error err;
	assert_int_equal(sign_decode(body, 100, &in, &err), CS_OK);
	if (in.items[0].err.status != 0)
		fail_msg("%s: %s", value, in.items[0].err.message);
	assert_null(in.items[0].item.refused_code);
	assert_memory_equal(in.items[0].item.digest, digest_bytes, 32);
	cs_sign_input_free(&in);
}

static void test_sign_single_forms(void **state)
{
	(void)state;
	cs_sign_input in;
	cs_api_error err;
	/* jws: the payload object, kept as given */
	assert_int_equal(sign_decode("{\"profile\":\"release\",\"format\":\"jws\",\"payload\":{\"v\":\"1.2\",\"n\":[1]}}",
				     100, &in, &err),
			 CS_OK);
	assert_false(in.batch);
	assert_int_equal(in.n, 1);
	assert_int_equal(in.items[0].err.status, 0);
	assert_string_equal(in.items[0].item.profile, "release");
	assert_string_equal(in.items[0].item.format, "jws");
	assert_true(json_is_object(in.items[0].item.payload));
	assert_string_equal(json_string_value(json_object_get(in.items[0].item.payload, "v")), "1.2");
	cs_sign_input_free(&in);
	/* dsse: the payload decoded from standard base64 */
	assert_int_equal(sign_decode("{\"profile\":\"release\",\"format\":\"dsse\",\"payload_type\":"
				     "\"application/vnd.in-toto+json\",\"payload\":\"aGn7777/IQ==\"}",
				     100, &in, &err),
			 CS_OK);
	assert_int_equal(in.items[0].err.status, 0);
	assert_string_equal(in.items[0].item.payload_type, "application/vnd.in-toto+json");
	assert_int_equal(in.items[0].item.body_len, 7);
	assert_memory_equal(in.items[0].item.body, "hi\xfb\xef\xbe\xff!", 7);
	cs_sign_input_free(&in);
	/* an empty DSSE body is a body */
	assert_int_equal(sign_decode("{\"profile\":\"p\",\"format\":\"dsse\",\"payload_type\":\"t\",\"payload\":\"\"}", 100,
				     &in, &err),
			 CS_OK);
	assert_int_equal(in.items[0].err.status, 0);
	assert_int_equal(in.items[0].item.body_len, 0);
	cs_sign_input_free(&in);
	/* digest: hex (either case), base64url and base64, padded or not */
	assert_digest_decodes("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_digest_decodes("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD");
	assert_digest_decodes("ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
	assert_digest_decodes("ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0=");
	assert_digest_decodes("ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
	assert_digest_decodes("ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0");
}

static void test_sign_item_refusals(void **state)
{
	(void)state;
	/* members: unknown ones refused, by format */
	assert_item_refused("{\"profile\":\"release\",\"format\":\"jws\",\"payload\":{},\"typ\":\"x\"}", 400,
			    "unknown_field");
	assert_item_refused("{\"profile\":\"release\",\"format\":\"jws\",\"payload\":{},\"payload_type\":\"x\"}", 400,
			    "unknown_field");
	assert_item_refused("{\"profile\":\"release\",\"format\":\"digest\",\"digest\":{\"alg\":\"SHA-256\",\"value\":"
			    "\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\",\"x\":1}}",
			    400, "unknown_field");
	/* profile and format: required strings; an unknown format is not allowed */
	assert_item_refused("{\"format\":\"jws\",\"payload\":{}}", 400, "invalid_field");
	assert_item_refused("{\"profile\":\"release\",\"payload\":{}}", 400, "invalid_field");
	assert_item_refused("{\"profile\":7,\"format\":\"jws\",\"payload\":{}}", 400, "invalid_field");
	assert_item_refused("{\"profile\":\"release\",\"format\":\"JWS\",\"payload\":{}}", 400, "format_not_allowed");
	assert_item_refused("{\"profile\":\"release\",\"format\":\"cms\",\"payload\":{}}", 400, "format_not_allowed");
	/* jws: a JSON object payload */
	assert_item_refused("{\"profile\":\"release\",\"format\":\"jws\"}", 400, "invalid_field");
	assert_item_refused("{\"profile\":\"release\",\"format\":\"jws\",\"payload\":\"e30\"}", 400, "invalid_field");
	assert_item_refused("{\"profile\":\"release\",\"format\":\"jws\",\"payload\":[1]}", 400, "invalid_field");
	/* dsse: a type and canonical padded standard base64 */
	assert_item_refused("{\"profile\":\"release\",\"format\":\"dsse\",\"payload\":\"aGk=\"}", 400, "invalid_field");
	assert_item_refused("{\"profile\":\"release\",\"format\":\"dsse\",\"payload_type\":1,\"payload\":\"aGk=\"}", 400,
			    "invalid_field");
	assert_item_refused("{\"profile\":\"release\",\"format\":\"dsse\",\"payload_type\":\"t\"}", 400, "invalid_field");
	static const char *const bad_b64[] = {"aGk", "aG k=", "aGk_", "aGk-", "aGl=", "a===", "aGk=\\n"};
	for (size_t i = 0; i < sizeof(bad_b64) / sizeof(bad_b64[0]); i++) {
		char body[200];
		snprintf(body, sizeof(body),
			 "{\"profile\":\"release\",\"format\":\"dsse\",\"payload_type\":\"t\",\"payload\":\"%s\"}", bad_b64[i]);
		assert_item_refused(body, 400, "invalid_field");
	}
	/* digest: SHA-256 of 32 bytes in one encoding */
	static const char *const bad_digests[] = {
		"{\"alg\":\"SHA-512\",\"value\":\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"}",
		"{\"value\":\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"}",
		"{\"alg\":\"SHA-256\"}",
		"{\"alg\":\"SHA-256\",\"value\":\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015\"}",
		"{\"alg\":\"SHA-256\",\"value\":\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015adff\"}",
		"{\"alg\":\"SHA-256\",\"value\":\"ga7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"}",
		/* both alphabets at once; non-zero unused bits; wrong padding */
		"{\"alg\":\"SHA-256\",\"value\":\"ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0\"}",
		"{\"alg\":\"SHA-256\",\"value\":\"ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa1\"}",
		"{\"alg\":\"SHA-256\",\"value\":\"ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0==\"}",
		"{\"alg\":\"SHA-256\",\"value\":\"ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa\"}",
		"{\"alg\":\"SHA-256\",\"value\":32}",
		"\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"",
	};
	for (size_t i = 0; i < sizeof(bad_digests) / sizeof(bad_digests[0]); i++) {
		char body[300];
		snprintf(body, sizeof(body), "{\"profile\":\"release\",\"format\":\"digest\",\"digest\":%s}", bad_digests[i]);
		assert_item_refused(body, 400, "invalid_field");
	}
	assert_item_refused("{\"profile\":\"release\",\"format\":\"digest\"}", 400, "invalid_field");
}

static void test_sign_batch(void **state)
{
	(void)state;
	cs_sign_input in;
	cs_api_error err;
	/* mixed items: each decoded or refused on its own, in order */
	assert_int_equal(sign_decode("{\"items\":[{\"profile\":\"a\",\"format\":\"jws\",\"payload\":{}},"
				     "{\"profile\":\"a\",\"format\":\"jws\",\"payload\":{},\"x\":1},"
				     "7,"
				     "{\"profile\":\"b\",\"format\":\"digest\",\"digest\":{\"alg\":\"SHA-256\",\"value\":"
				     "\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"}}]}",
				     4, &in, &err),
			 CS_OK);
	assert_true(in.batch);
	assert_int_equal(in.n, 4);
	assert_int_equal(in.items[0].err.status, 0);
	assert_string_equal(in.items[1].err.code, "unknown_field");
	assert_string_equal(in.items[1].item.profile, "a"); /* names it in its audit entry */
	assert_string_equal(in.items[2].err.code, "invalid_field");
	assert_null(in.items[2].item.profile);
	assert_int_equal(in.items[3].err.status, 0);
	assert_string_equal(in.items[3].item.profile, "b");
	cs_sign_input_free(&in);
	/* the limits fail the whole request */
	char *big = repeat("{},", 5, "{}]}");
	char *body = malloc(strlen(big) + 16);
	assert_non_null(body);
	sprintf(body, "{\"items\":[%s", big);
	assert_error(sign_decode(body, 5, &in, &err), &err, 413, "batch_too_large");
	assert_null(in.items);
	assert_int_equal(sign_decode(body, 6, &in, &err), CS_OK);
	assert_int_equal(in.n, 6);
	cs_sign_input_free(&in);
	free(body);
	free(big);
	assert_error(sign_decode("{\"items\":[]}", 5, &in, &err), &err, 400, "invalid_field");
	assert_error(sign_decode("{\"items\":{}}", 5, &in, &err), &err, 400, "invalid_field");
	assert_error(sign_decode("{\"items\":[{}],\"profile\":\"a\"}", 5, &in, &err), &err, 400, "unknown_field");
	assert_error(sign_decode("[{\"profile\":\"a\"}]", 5, &in, &err), &err, 400, "invalid_json");
	assert_error(sign_decode("{\"profile\":\"a\",\"profile\":\"b\"}", 5, &in, &err), &err, 400, "invalid_json");
	assert_error(sign_decode("", 5, &in, &err), &err, 400, "invalid_json");
	/* the body limit is the signing one, named */
	char *huge = repeat("a", SIGN_MAX, "");
	assert_error(cs_api_decode_sign(huge, SIGN_MAX + 1, SIGN_MAX, 5, &in, &err), &err, 413, "body_too_large");
	assert_non_null(strstr(err.message, "signing.max_request_bytes"));
	free(huge);
}

static void test_sign_statuses(void **state)
{
	(void)state;
	static const struct {
		const char *code;
		int status;
	} want[] = {
		{"unknown_profile", 400},   {"format_not_allowed", 400}, {"payload_type_not_allowed", 400},
		{"payload_too_large", 413}, {"reserved_claim", 400},     {"forbidden", 403},
		{"rate_limited", 429},      {"no_active_key", 503},      {"batch_too_large", 413},
		{"audit_unavailable", 503}, {"invalid_field", 400},      {"unknown_field", 400},
		{"token_unavailable", 503}, {"signature_invalid", 503},
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (cs_api_sign_status(want[i].code) != want[i].status)
			fail_msg("%s: %d, not %d", want[i].code, cs_api_sign_status(want[i].code), want[i].status);
	assert_int_equal(cs_api_sign_status("what"), 500);
	assert_int_equal(cs_api_sign_status(NULL), 500);
}

static void test_profile_query_and_signature_path(void **state)
{
	(void)state;
	char profile[CS_CONFIG_PROFILE_NAME_MAX + 1];
	cs_api_error err;
	assert_int_equal(cs_api_decode_profile_query(NULL, profile, &err), CS_OK);
	assert_string_equal(profile, "");
	assert_int_equal(cs_api_decode_profile_query("", profile, &err), CS_OK);
	assert_int_equal(cs_api_decode_profile_query("profile=release", profile, &err), CS_OK);
	assert_string_equal(profile, "release");
	assert_int_equal(cs_api_decode_profile_query("profile=a.b_c-9", profile, &err), CS_OK);
	char *longest = repeat("a", CS_CONFIG_PROFILE_NAME_MAX, "");
	char query[100];
	snprintf(query, sizeof(query), "profile=%s", longest);
	assert_int_equal(cs_api_decode_profile_query(query, profile, &err), CS_OK);
	assert_string_equal(profile, longest);
	strcat(query, "a");
	assert_error(cs_api_decode_profile_query(query, profile, &err), &err, 404, "unknown_profile");
	assert_string_equal(profile, "");
	free(longest);
	assert_error(cs_api_decode_profile_query("profile=Release", profile, &err), &err, 404, "unknown_profile");
	assert_error(cs_api_decode_profile_query("profile=-x", profile, &err), &err, 404, "unknown_profile");
	assert_error(cs_api_decode_profile_query("profile=", profile, &err), &err, 404, "unknown_profile");
	assert_error(cs_api_decode_profile_query("profile=a%00b", profile, &err), &err, 400, "invalid_field");
	assert_error(cs_api_decode_profile_query("profile=a&profile=b", profile, &err), &err, 400, "invalid_field");
	assert_error(cs_api_decode_profile_query("kid=x", profile, &err), &err, 400, "unknown_field");
	assert_error(cs_api_decode_profile_query("profile=a&x=1", profile, &err), &err, 400, "unknown_field");

	char id[CS_API_ID_CHARS + 1];
	assert_int_equal(cs_api_decode_signature_path("Abcdefghijklmnopqrstu_", id, &err), CS_OK);
	assert_string_equal(id, "Abcdefghijklmnopqrstu_");
	assert_error(cs_api_decode_signature_path("Abcdefghijklmnopqrstu", id, &err), &err, 404, "not_found");
	assert_error(cs_api_decode_signature_path("Abcdefghijklmnopqrstu_.jws", id, &err), &err, 404, "not_found");
	assert_error(cs_api_decode_signature_path("Abcdefghijklmnopqrst.u_", id, &err), &err, 404, "not_found");
	assert_error(cs_api_decode_signature_path("", id, &err), &err, 404, "not_found");
}

/* GET /api/signatures?sha256=HEX: exactly 64 lower-case hex digits, the
 * one parameter, once. */
static void test_signatures_query(void **state)
{
	(void)state;
	static const char hex[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	char sha256[65], query[200];
	cs_api_error err;
	snprintf(query, sizeof(query), "sha256=%s", hex);
	assert_int_equal(cs_api_decode_signatures_query(query, sha256, &err), CS_OK);
	assert_string_equal(sha256, hex);
	assert_int_equal(err.status, 0);
	/* required */
	assert_error(cs_api_decode_signatures_query(NULL, sha256, &err), &err, 400, "invalid_field");
	assert_non_null(strstr(err.message, "'sha256' is required"));
	assert_string_equal(sha256, "");
	assert_error(cs_api_decode_signatures_query("", sha256, &err), &err, 400, "invalid_field");
	/* upper case, short, long, not hex, empty, a NUL: refused, nothing kept */
	static const char *const bad[] = {
		"sha256=0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
		"sha256=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",
		"sha256=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0",
		"sha256=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg",
		"sha256=ASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4mrze8=",
		"sha256=",
		"sha256=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde%00",
		"sha256=+123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_error(cs_api_decode_signatures_query(bad[i], sha256, &err), &err, 400, "invalid_field");
		assert_string_equal(sha256, "");
	}
	/* once, and nothing else */
	snprintf(query, sizeof(query), "sha256=%s&sha256=%s", hex, hex);
	assert_error(cs_api_decode_signatures_query(query, sha256, &err), &err, 400, "invalid_field");
	assert_non_null(strstr(err.message, "more than once"));
	snprintf(query, sizeof(query), "sha256=%s&profile=release", hex);
	assert_error(cs_api_decode_signatures_query(query, sha256, &err), &err, 400, "unknown_field");
	assert_string_equal(sha256, "");
	assert_error(cs_api_decode_signatures_query("id=x", sha256, &err), &err, 400, "unknown_field");
}

static void test_sign_routes(void **state)
{
	(void)state;
	cs_api_route_id route;
	const char *action;
	cs_api_error err;
	assert_int_equal(cs_api_route(CS_METHOD_POST, "/api/sign", NULL, &route, &action, &err), CS_OK);
	assert_int_equal(route, CS_ROUTE_SIGN);
	assert_string_equal(action, "sign");
	assert_string_equal(cs_api_route_name(route), "sign");
	assert_error(cs_api_route(CS_METHOD_GET, "/api/sign", NULL, &route, &action, &err), &err, 405,
		     "method_not_allowed");
	assert_string_equal(err.allow, "POST");
	assert_error(cs_api_route(CS_METHOD_POST, "/api/sign", "profile=x", &route, &action, &err), &err, 400,
		     "unknown_field");
	assert_int_equal(cs_api_route(CS_METHOD_GET, "/api/signatures/Abcdefghijklmnopqrstu_", NULL, &route, &action,
				      &err),
			 CS_OK);
	assert_int_equal(route, CS_ROUTE_SIGNATURE);
	assert_string_equal(action, "signature.read");
	assert_error(cs_api_route(CS_METHOD_POST, "/api/signatures/x", NULL, &route, &action, &err), &err, 405,
		     "method_not_allowed");
	/* the records of a digest: GET /api/signatures?sha256=, read like a record */
	assert_int_equal(cs_api_route(CS_METHOD_GET, "/api/signatures", "sha256=ab", &route, &action, &err), CS_OK);
	assert_int_equal(route, CS_ROUTE_SIGNATURES);
	assert_string_equal(action, "signature.read");
	assert_string_equal(cs_api_route_name(route), "signature");
	assert_int_equal(cs_api_route(CS_METHOD_HEAD, "/api/signatures", NULL, &route, &action, &err), CS_OK);
	assert_error(cs_api_route(CS_METHOD_POST, "/api/signatures", NULL, &route, &action, &err), &err, 405,
		     "method_not_allowed");
	assert_string_equal(err.allow, "GET, HEAD");
	assert_error(cs_api_route(CS_METHOD_GET, "/api/signaturesx", NULL, &route, &action, &err), &err, 404,
		     "not_found");
	/* a record's path takes no query */
	assert_error(cs_api_route(CS_METHOD_GET, "/api/signatures/Abcdefghijklmnopqrstu_", "sha256=ab", &route,
				  &action, &err),
		     &err, 400, "unknown_field");
	/* the JWKS and the rollovers take ?profile= (the decoder checks it) */
	assert_int_equal(cs_api_route(CS_METHOD_GET, "/.well-known/jwks.json", "profile=release", &route, &action, &err),
			 CS_OK);
	assert_int_equal(route, CS_ROUTE_JWKS);
	assert_int_equal(
		cs_api_route(CS_METHOD_GET, "/.well-known/credsign-rollover", "profile=release", &route, &action, &err),
		CS_OK);
	assert_int_equal(route, CS_ROUTE_ROLLOVER);
}

/* ---- request ids -------------------------------------------------------------------- */

/* The first id of a fresh process (a child that has not made one yet). */
static void id_of_fresh_process(char out[CS_API_REQUEST_ID_MAX])
{
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char id[CS_API_REQUEST_ID_MAX];
		cs_api_request_id("node-1", 1, id);
		ssize_t w = write(fds[1], id, strlen(id) + 1);
		_exit(w > 0 ? 0 : 1);
	}
	close(fds[1]);
	ssize_t n = read(fds[0], out, CS_API_REQUEST_ID_MAX);
	close(fds[0]);
	int status = 0;
	waitpid(pid, &status, 0);
	assert_true(n > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_request_ids_unique_across_starts(void **state)
{
	(void)state;
	char a[CS_API_REQUEST_ID_MAX], b[CS_API_REQUEST_ID_MAX], c[CS_API_REQUEST_ID_MAX];
	/* run before this process makes an id: children must not inherit one */
	id_of_fresh_process(a);
	id_of_fresh_process(b);
	assert_string_not_equal(a, b);
	/* node-1-<12 lower-case hex>-1 */
	assert_int_equal(strlen(a), strlen("node-1-") + 12 + 2);
	assert_memory_equal(a, "node-1-", 7);
	for (size_t i = 7; i < 19; i++)
		assert_non_null(strchr("0123456789abcdef", a[i]));
	assert_string_equal(a + 19, "-1");
	/* within one process: one boot id, the counter */
	cs_api_request_id("n", 7, b);
	cs_api_request_id("n", 8, c);
	assert_memory_equal(b, c, strlen(b) - 1);
	assert_string_equal(b + strlen(b) - 2, "-7");
	assert_string_equal(c + strlen(c) - 2, "-8");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_ids_unique_across_starts),
		cmocka_unit_test(test_quote_cuts_at_character_boundary),
		cmocka_unit_test(test_text_counts_characters),
		cmocka_unit_test(test_refused_characters),
		cmocka_unit_test(test_generate_long_names_quoted_whole),
		cmocka_unit_test(test_generate_text_fields),
		cmocka_unit_test(test_generate_fields),
		cmocka_unit_test(test_certify),
		cmocka_unit_test(test_cert_path),
		cmocka_unit_test(test_policy_standards),
		cmocka_unit_test(test_policy_build),
		cmocka_unit_test(test_audit_query),
		cmocka_unit_test(test_inventory_query),
		cmocka_unit_test(test_routes),
		cmocka_unit_test(test_sign_single_forms),
		cmocka_unit_test(test_sign_item_refusals),
		cmocka_unit_test(test_sign_batch),
		cmocka_unit_test(test_sign_statuses),
		cmocka_unit_test(test_profile_query_and_signature_path),
		cmocka_unit_test(test_sign_routes),
		cmocka_unit_test(test_signatures_query),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
