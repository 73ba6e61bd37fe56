/* api_fuzz: the request handlers' input decoding in-process (api.h):
 * routing, JSON bodies, field validation, query strings, certificate
 * paths, client text and the policy built from a decoded query.
 *
 * Input: one selector byte, then the request part:
 *   'r' METHOD-BYTE PATH ['?' QUERY]   cs_api_route
 *   'g' BODY                           cs_api_decode_generate (presets, EFF list)
 *   'c' BODY                           cs_api_decode_certify
 *   'j' REST                           cs_api_decode_cert_path
 *   'p' QUERY                          cs_api_decode_policy, then cs_policy_build + Markdown
 *   'a' QUERY                          cs_api_decode_audit_query (from_seq, limit, project)
 *   't' TEXT                           cs_api_text_check and cs_api_quote
 *   's' BODY                           cs_api_decode_sign (batch limit 8)
 *   'q' QUERY                          cs_api_decode_profile_query
 *   'i' REST                           cs_api_decode_signature_path
 *   'v' QUERY                          cs_api_decode_inventory_query
 *
 * Every error must be a status the API documents with a code and a message
 * that renders as the JSON error body (well-formed UTF-8); every success
 * must satisfy what the decoder promises (limits in characters, no refused
 * character, ids of the right form, plans at or above the minimum).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static cs_preset_set *presets;
static cs_wordlist *wordlist;

static void load_once(void)
{
	if (presets != NULL)
		return;
	cs_config_diag diag;
	if (cs_presets_load(CREDSIGN_SOURCE_DIR "/conf/presets.conf", NULL, &presets, &diag) != CS_OK ||
	    cs_wordlist_load(CREDSIGN_WORDLIST, &wordlist) != CS_OK) {
		fprintf(stderr, "api_fuzz: presets or wordlist not loadable\n");
		abort();
	}
	cs_config_diag_free(&diag);
}

#define CHECK(cond)                                                                    \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond);     \
			abort();                                                       \
		}                                                                      \
	} while (0)

static int well_formed(const char *s)
{
	return cs_api_text_check(s, strlen(s), SIZE_MAX, NULL) != CS_TEXT_BAD_UTF8;
}

/* An error: a documented status, a code, a message that renders. */
static void check_error(cs_err r, const cs_api_error *err)
{
	CHECK(r != CS_OK);
	static const int statuses[] = {400, 404, 405, 413, 422, 500};
	int known = 0;
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		known |= err->status == statuses[i];
	CHECK(known);
	CHECK(err->status != 500 || r == CS_E_NOMEM);
	CHECK(err->code[0] != '\0');
	CHECK(strlen(err->message) < sizeof(err->message));
	CHECK(well_formed(err->message));
	json_t *j = json_pack("{s:{s:s, s:s}}", "error", "code", err->code, "message", err->message);
	CHECK(j != NULL);
	json_decref(j);
	CHECK((err->status == 405) == (err->allow != NULL));
}

static void check_text_field(const char *s)
{
	if (s == NULL)
		return;
	size_t chars = 0;
	CHECK(cs_api_text_check(s, strlen(s), CS_API_TEXT_MAX, &chars) == CS_TEXT_OK);
	CHECK(chars >= 1 && chars <= CS_API_TEXT_MAX);
	CHECK(strlen(s) <= CS_API_TEXT_MAX * 4);
}

static void check_id(const char *id)
{
	CHECK(strlen(id) == CS_API_ID_CHARS);
	for (const char *p = id; *p; p++)
		CHECK(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *p) != NULL);
}

static void fuzz_route(const char *s, size_t n)
{
	if (n < 1)
		return;
	cs_api_method method = (cs_api_method)(s[0] % 4);
	char *path = strndup(s + 1, n - 1);
	char *query = strchr(path, '?');
	if (query != NULL)
		*query++ = '\0';
	cs_api_route_id route;
	const char *action = NULL;
	cs_api_error err;
	cs_err r = cs_api_route(method, path, query, &route, &action, &err);
	if (r != CS_OK) {
		check_error(r, &err);
		CHECK(err.status == 400 || err.status == 404 || err.status == 405);
		CHECK((err.status == 404) == (route == CS_ROUTE_NONE));
	} else {
		CHECK(route != CS_ROUTE_NONE);
		CHECK(method != CS_METHOD_OTHER);
	}
	CHECK(action != NULL || route == CS_ROUTE_HEALTHZ || route == CS_ROUTE_READYZ);
	free(path);
}

static void fuzz_generate(const char *body, size_t n)
{
	cs_generate_input g;
	cs_api_error err;
	cs_err r = cs_api_decode_generate(presets, wordlist, body, n, 4096, &g, &err);
	if (r != CS_OK) {
		check_error(r, &err);
		CHECK(g.doc == NULL);
		return;
	}
	CHECK(g.preset != NULL && g.doc != NULL);
	CHECK(g.plan.length >= g.plan.min_length && g.plan.length < CS_CREDENTIAL_MAX);
	CHECK(g.plan.strength_bits >= g.preset->strength_bits);
	check_text_field(g.project);
	check_text_field(g.environment);
	check_text_field(g.system);
	if (g.prefix != NULL) {
		CHECK(g.plan.type == CS_TYPE_API_KEY);
		CHECK(strlen(g.prefix) >= 1 && strlen(g.prefix) <= CS_API_PREFIX_MAX);
		CHECK(strspn(g.prefix, "abcdefghijklmnopqrstuvwxyz0123456789_") == strlen(g.prefix));
	}
	cs_generate_input_free(&g);
}

static void fuzz_certify(const char *body, size_t n)
{
	char sid[CS_API_ID_CHARS + 1];
	cs_api_error err;
	cs_err r = cs_api_decode_certify(body, n, 4096, sid, &err);
	if (r != CS_OK)
		check_error(r, &err);
	else
		check_id(sid);
}

static void fuzz_cert_path(const char *s, size_t n)
{
	char *rest = strndup(s, n);
	char id[CS_API_ID_CHARS + 1];
	int jws = 0;
	cs_api_error err;
	cs_err r = cs_api_decode_cert_path(rest, id, &jws, &err);
	if (r != CS_OK) {
		check_error(r, &err);
		CHECK(err.status == 404);
	} else {
		check_id(id);
		CHECK(strlen(rest) == CS_API_ID_CHARS + (jws ? 4u : 0u));
	}
	free(rest);
}

static void fuzz_policy(const char *s, size_t n)
{
	char *query = strndup(s, n);
	cs_policy_input in;
	cs_api_error err;
	cs_err r = cs_api_decode_policy(presets, query, &in, &err);
	if (r != CS_OK) {
		check_error(r, &err);
		CHECK(in.count == 0);
	} else {
		CHECK(in.count >= 1 && in.count <= CS_API_STANDARDS_MAX);
		for (size_t i = 0; i < in.count; i++)
			for (size_t k = 0; k < i; k++)
				CHECK(in.presets[i] != in.presets[k]);
		json_t *policy = NULL;
		char why[200];
		CHECK(cs_policy_build(presets, wordlist, in.presets, in.count, &policy, why, sizeof(why)) == CS_OK);
		CHECK(json_array_size(json_object_get(policy, "standards")) == in.count);
		char *md = cs_policy_markdown(policy);
		CHECK(md != NULL);
		free(md);
		json_decref(policy);
	}
	free(query);
}

static void fuzz_audit(const char *s, size_t n)
{
	char *query = strndup(s, n);
	cs_audit_query q;
	cs_api_error err;
	cs_err r = cs_api_decode_audit_query(query, &q, &err);
	if (r != CS_OK) {
		check_error(r, &err);
		CHECK(err.status == 400);
		CHECK(q.project[0] == '\0');
	} else {
		CHECK(q.from_seq >= 1);
		CHECK(q.limit >= 1 && q.limit <= CS_API_AUDIT_LIMIT_MAX);
		/* a project is client text within the limit, or none (the whole log) */
		CHECK(q.project[0] == '\0' ||
		      cs_api_text_check(q.project, strlen(q.project), CS_API_TEXT_MAX, NULL) == CS_TEXT_OK);
	}
	free(query);
}

static void fuzz_inventory(const char *s, size_t n)
{
	char *query = strndup(s, n);
	cs_inventory_query q;
	int csv = -1;
	cs_api_error err;
	cs_err r = cs_api_decode_inventory_query(query, &q, &csv, &err);
	if (r != CS_OK) {
		check_error(r, &err);
		CHECK(err.status == 400);
	} else {
		CHECK(csv == 0 || csv == 1);
		/* project and environment are client text within the limit, or none */
		CHECK(q.project[0] == '\0' ||
		      cs_api_text_check(q.project, strlen(q.project), CS_API_TEXT_MAX, NULL) == CS_TEXT_OK);
		CHECK(q.environment[0] == '\0' ||
		      cs_api_text_check(q.environment, strlen(q.environment), CS_API_TEXT_MAX, NULL) == CS_TEXT_OK);
		CHECK(q.has_due_before == 0 || q.has_due_before == 1);
	}
	free(query);
}

static void fuzz_text(const char *s, size_t n)
{
	char q[CS_API_QUOTE_BYTES];
	cs_api_quote(s, n, q);
	CHECK(strlen(q) < sizeof(q));
	CHECK(well_formed(q));
	size_t chars = 0;
	cs_text_check t = cs_api_text_check(s, n, CS_API_TEXT_MAX, &chars);
	if (t == CS_TEXT_OK) {
		CHECK(chars >= 1 && chars <= CS_API_TEXT_MAX);
		/* well-formed text without refused characters is quoted as is, up to the limit */
		if (chars <= CS_API_QUOTE_CHARS)
			CHECK(strlen(q) == n && memcmp(q, s, n) == 0);
		else
			CHECK(strncmp(q, s, strlen(q) - 3) == 0 && strcmp(q + strlen(q) - 3, "...") == 0);
		/* jansson agrees that it is UTF-8 */
		json_t *j = json_stringn(s, n);
		CHECK(j != NULL);
		json_decref(j);
	}
}

/* POST /api/sign: the whole request refused, or every item decoded (its
 * format's members there) or refused on its own with a code for its audit
 * entry. */
static void fuzz_sign(const char *body, size_t n)
{
	cs_sign_input in;
	cs_api_error err;
	cs_err r = cs_api_decode_sign(body, n, 4096, 8, &in, &err);
	if (r != CS_OK) {
		check_error(r, &err);
		CHECK(err.status == 400 || err.status == 413 || err.status == 500);
		CHECK(in.doc == NULL && in.items == NULL);
		return;
	}
	CHECK(in.n >= 1 && in.n <= 8 && (in.batch || in.n == 1));
	for (size_t i = 0; i < in.n; i++) {
		const cs_api_sign_item *it = &in.items[i];
		if (it->err.status != 0) {
			check_error(CS_E_INVALID_ARG, &it->err);
			CHECK(it->err.status == 400 || it->err.status == 500);
			CHECK(it->item.refused_code != NULL && strcmp(it->item.refused_code, it->err.code) == 0);
			continue;
		}
		CHECK(it->item.refused_code == NULL);
		CHECK(it->item.profile != NULL && it->item.format != NULL);
		unsigned f = cs_sig_format_parse(it->item.format);
		CHECK(f == CS_SIG_FORMAT_JWS || f == CS_SIG_FORMAT_DSSE || f == CS_SIG_FORMAT_DIGEST);
		if (f == CS_SIG_FORMAT_JWS)
			CHECK(json_is_object(it->item.payload));
		if (f == CS_SIG_FORMAT_DSSE)
			CHECK(it->item.payload_type != NULL && (it->item.body != NULL || it->item.body_len == 0) &&
			      it->item.body_len <= n);
	}
	cs_sign_input_free(&in);
}

static void fuzz_profile_query(const char *s, size_t n)
{
	char *query = strndup(s, n);
	char profile[CS_CONFIG_PROFILE_NAME_MAX + 1];
	cs_api_error err;
	cs_err r = cs_api_decode_profile_query(query, profile, &err);
	if (r != CS_OK) {
		check_error(r, &err);
		CHECK(err.status == 400 || err.status == 404);
		CHECK(profile[0] == '\0');
	} else {
		size_t len = strlen(profile);
		CHECK(len <= CS_CONFIG_PROFILE_NAME_MAX);
		CHECK(strspn(profile, "abcdefghijklmnopqrstuvwxyz0123456789._-") == len);
		CHECK(len == 0 || strchr("._-", profile[0]) == NULL);
	}
	free(query);
}

static void fuzz_signature_path(const char *s, size_t n)
{
	char *rest = strndup(s, n);
	char id[CS_API_ID_CHARS + 1];
	cs_api_error err;
	cs_err r = cs_api_decode_signature_path(rest, id, &err);
	if (r != CS_OK) {
		check_error(r, &err);
		CHECK(err.status == 404);
	} else {
		check_id(id);
		CHECK(strcmp(id, rest) == 0);
	}
	free(rest);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	load_once();
	const char *s = (const char *)data + 1;
	size_t n = size - 1;
	switch (data[0]) {
	case 'r': fuzz_route(s, n); break;
	case 'g': fuzz_generate(s, n); break;
	case 'c': fuzz_certify(s, n); break;
	case 'j': fuzz_cert_path(s, n); break;
	case 'p': fuzz_policy(s, n); break;
	case 'a': fuzz_audit(s, n); break;
	case 't': fuzz_text(s, n); break;
	case 's': fuzz_sign(s, n); break;
	case 'q': fuzz_profile_query(s, n); break;
	case 'i': fuzz_signature_path(s, n); break;
	case 'v': fuzz_inventory(s, n); break;
	default: break;
	}
	return 0;
}
