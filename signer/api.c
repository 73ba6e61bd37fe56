/* api: see api.h. */
#include "api.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/keyvalq_struct.h>
#include <openssl/rand.h>

#include "inventory.h"
#include "jose.h"
#include "policy.h"
#include "sigformat.h"
#include "wipe_alloc.h"

#define ID_CHARS CS_API_ID_CHARS
#define TEXT_FIELD_MAX CS_API_TEXT_MAX

/* ---- client text ------------------------------------------------------------ */

/* One code point of well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF, no NUL) from s[0..n): its length in
 * bytes, or 0 when the bytes there are not one. */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
	if (n == 0 || s[0] == 0)
		return 0;
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	size_t len;
	uint32_t v, min;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2, v = s[0] & 0x1fu, min = 0x80;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3, v = s[0] & 0x0fu, min = 0x800;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4, v = s[0] & 0x07u, min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (s[i] & 0x3fu);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return len;
}

int cs_api_char_refused(uint32_t cp)
{
	return cs_config_char_refused(cp); /* one table for every text from outside */
}

cs_text_check cs_api_text_check(const char *s, size_t len, size_t max_chars, size_t *chars)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t count = 0;
	int refused = 0;
	for (size_t at = 0; at < len; count++) {
		uint32_t cp;
		size_t n = utf8_next(p + at, len - at, &cp);
		if (n == 0)
			return CS_TEXT_BAD_UTF8;
		refused |= cs_api_char_refused(cp);
		at += n;
	}
	if (chars != NULL)
		*chars = count;
	if (refused)
		return CS_TEXT_REFUSED_CHAR;
	return count == 0 || count > max_chars ? CS_TEXT_BAD_LENGTH : CS_TEXT_OK;
}

/* Up to max_chars code points of s[0..len) into out (max_chars * 4 + 4
 * bytes), "..." when cut; ill-formed bytes and refused characters as
 * U+FFFD. Always well-formed UTF-8. */
static void quote_text(const char *s, size_t len, size_t max_chars, char *out)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t at = 0, o = 0;
	for (size_t count = 0; at < len && count < max_chars; count++) {
		uint32_t cp;
		size_t n = utf8_next(p + at, len - at, &cp);
		if (n == 0 || cs_api_char_refused(cp)) {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			at += n == 0 ? 1 : n;
		} else {
			memcpy(out + o, p + at, n);
			o += n;
			at += n;
		}
	}
	if (at < len) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

void cs_api_quote(const char *s, size_t len, char out[CS_API_QUOTE_BYTES])
{
	quote_text(s, len, CS_API_QUOTE_CHARS, out);
}

static void set_error(cs_api_error *err, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void set_error(cs_api_error *err, int status, const char *code, const char *fmt, ...)
{
	va_list ap;
	err->status = status;
	err->allow = NULL;
	snprintf(err->code, sizeof(err->code), "%s", code);
	va_start(ap, fmt);
	int n = vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	/* messages are sized for their parts; never leave half a character */
	if (n < 0 || (size_t)n >= sizeof(err->message)) {
		char whole[sizeof(err->message)];
		memcpy(whole, err->message, sizeof(whole));
		quote_text(whole, strlen(whole), (sizeof(err->message) - 4) / 4, err->message);
	}
}

static cs_err field_error(cs_api_error *err, const char *field, const char *what)
{
	set_error(err, 400, "invalid_field", "field '%s' %s", field, what);
	return CS_E_INVALID_ARG;
}

/* ---- request ids --------------------------------------------------------------- */

static char boot_id[13];
static pthread_once_t boot_once = PTHREAD_ONCE_INIT;

/* 48 random bits per process start, so that ids never repeat across
 * restarts; should the random generator fail, the start time in
 * nanoseconds serves (unique unless two starts share a nanosecond). */
static void boot_id_init(void)
{
	uint8_t raw[6];
	if (RAND_bytes(raw, sizeof(raw)) != 1) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t v = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
		for (size_t i = 0; i < sizeof(raw); i++)
			raw[i] = (uint8_t)(v >> (8 * i));
	}
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(boot_id + 2 * i, 3, "%02x", raw[i]);
}

void cs_api_request_id(const char *node_id, long counter, char out[CS_API_REQUEST_ID_MAX])
{
	pthread_once(&boot_once, boot_id_init);
	snprintf(out, CS_API_REQUEST_ID_MAX, "%s-%s-%ld", node_id, boot_id, counter);
}

/* ---- routes ------------------------------------------------------------------- */

static const struct {
	const char *path;
	cs_api_route_id id;
	const char *action; /* NULL: a probe, not audited */
	int post;           /* else GET and HEAD */
	int prefix;         /* path is a prefix (/cert/{id}) */
	int query;          /* takes query parameters */
} routes[] = {
	{"/api/generate", CS_ROUTE_GENERATE, "generate", 1, 0, 0},
	{"/api/generate-certificate", CS_ROUTE_CERTIFY, "certify", 1, 0, 0},
	{"/cert/", CS_ROUTE_CERT, "cert.read", 0, 1, 0},
	{"/api/sign", CS_ROUTE_SIGN, "sign", 1, 0, 0},
	{"/api/signatures/", CS_ROUTE_SIGNATURE, "signature.read", 0, 1, 0},
	{"/api/signatures", CS_ROUTE_SIGNATURES, "signature.read", 0, 0, 1},
	{"/.well-known/jwks.json", CS_ROUTE_JWKS, "jwks.read", 0, 0, 1},
	{"/.well-known/credsign-rollover", CS_ROUTE_ROLLOVER, "rollover.read", 0, 0, 1},
	{"/.well-known/credsign-revocations", CS_ROUTE_REVOCATIONS, "revocations.read", 0, 0, 0},
	{"/api/presets", CS_ROUTE_PRESETS, "presets.read", 0, 0, 0},
	{"/api/policy", CS_ROUTE_POLICY, "policy.read", 0, 0, 1},
	{"/api/audit/checkpoint", CS_ROUTE_AUDIT_CHECKPOINT, "audit.checkpoint.read", 0, 0, 0},
	{"/api/audit", CS_ROUTE_AUDIT, "audit.read", 0, 0, 1},
	{"/api/inventory", CS_ROUTE_INVENTORY, "inventory.read", 0, 0, 1},
	{"/healthz", CS_ROUTE_HEALTHZ, NULL, 0, 0, 0},
	{"/readyz", CS_ROUTE_READYZ, NULL, 0, 0, 0},
	{"/metrics", CS_ROUTE_METRICS, "metrics.read", 0, 0, 0},
};

const char *cs_api_route_name(cs_api_route_id route)
{
	static const char *const names[] = {
		[CS_ROUTE_NONE] = "other",       [CS_ROUTE_GENERATE] = "generate",
		[CS_ROUTE_CERTIFY] = "certify",  [CS_ROUTE_CERT] = "cert",
		[CS_ROUTE_JWKS] = "jwks",        [CS_ROUTE_PRESETS] = "presets",
		[CS_ROUTE_POLICY] = "policy",    [CS_ROUTE_AUDIT] = "audit",
		[CS_ROUTE_AUDIT_CHECKPOINT] = "audit_checkpoint",
		[CS_ROUTE_ROLLOVER] = "rollover", [CS_ROUTE_REVOCATIONS] = "revocations",
		[CS_ROUTE_HEALTHZ] = "healthz",  [CS_ROUTE_READYZ] = "readyz",
		[CS_ROUTE_METRICS] = "metrics",  [CS_ROUTE_SIGN] = "sign",
		[CS_ROUTE_SIGNATURE] = "signature", [CS_ROUTE_SIGNATURES] = "signature",
		[CS_ROUTE_INVENTORY] = "inventory",
	};
	return (unsigned)route < sizeof(names) / sizeof(names[0]) && names[route] != NULL ? names[route]
											: "other";
}

cs_err cs_api_route(cs_api_method method, const char *path, const char *query,
		    cs_api_route_id *route, const char **action, cs_api_error *err)
{
	err->status = 0;
	err->allow = NULL;
	*route = CS_ROUTE_NONE;
	*action = "request";
	size_t i, n = sizeof(routes) / sizeof(routes[0]);
	for (i = 0; i < n; i++)
		if (routes[i].prefix ? strncmp(path, routes[i].path, strlen(routes[i].path)) == 0
				     : strcmp(path, routes[i].path) == 0)
			break;
	if (i == n) {
		set_error(err, 404, "not_found", "no such route");
		return CS_E_NOT_FOUND;
	}
	*route = routes[i].id;
	*action = routes[i].action;
	int fits = routes[i].post ? method == CS_METHOD_POST
				  : method == CS_METHOD_GET || method == CS_METHOD_HEAD;
	if (!fits) {
		set_error(err, 405, "method_not_allowed", "%s takes %s only", routes[i].path,
			  routes[i].post ? "POST" : "GET (and HEAD)");
		err->allow = routes[i].post ? "POST" : "GET, HEAD";
		return CS_E_INVALID_ARG;
	}
	if (!routes[i].query && query != NULL && query[0] != '\0') {
		set_error(err, 400, "unknown_field", "%s takes no query parameters", routes[i].path);
		return CS_E_INVALID_ARG;
	}
	return CS_OK;
}

/* ---- bodies ---------------------------------------------------------------------- */

/* cs_api_parse_object with the name of the limit's setting. */
static cs_err parse_object(const char *body, size_t len, size_t max_body, const char *setting, json_t **out,
			   cs_api_error *err)
{
	*out = NULL;
	if (len > max_body) {
		set_error(err, 413, "body_too_large", "the request body is %zu bytes; the limit is %zu (%s)", len,
			  max_body, setting);
		return CS_E_TOO_LARGE;
	}
	if (body == NULL && len > 0) { /* evbuffer_pullup could not allocate */
		set_error(err, 500, "internal_error", "out of memory");
		return CS_E_NOMEM;
	}
	if (len == 0) {
		set_error(err, 400, "invalid_json", "request body is not valid JSON: empty body");
		return CS_E_INVALID_ARG;
	}
	json_error_t jerr;
	json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (doc == NULL) {
		/* jansson's text may quote the input */
		char text[100 * 4 + 4];
		quote_text(jerr.text, strlen(jerr.text), 100, text);
		set_error(err, 400, "invalid_json", "request body is not valid JSON: %s (byte %d)", text,
			  jerr.position);
		return CS_E_INVALID_ARG;
	}
	if (!json_is_object(doc)) {
		json_decref(doc);
		set_error(err, 400, "invalid_json", "request body must be a JSON object");
		return CS_E_INVALID_ARG;
	}
	*out = doc;
	return CS_OK;
}

cs_err cs_api_parse_object(const char *body, size_t len, size_t max_body, json_t **out,
			   cs_api_error *err)
{
	return parse_object(body, len, max_body, "server.max_body_bytes", out, err);
}

/* Every member must be one of `allowed`. */
static cs_err only_fields(json_t *doc, const char *const allowed[], cs_api_error *err)
{
	const char *key;
	json_t *value;
	json_object_foreach(doc, key, value) {
		int known = 0;
		for (int i = 0; allowed[i] != NULL && !known; i++)
			known = strcmp(key, allowed[i]) == 0;
		if (!known) {
			char q[CS_API_QUOTE_BYTES];
			cs_api_quote(key, strlen(key), q);
			set_error(err, 400, "unknown_field", "unknown field '%s'", q);
			return CS_E_INVALID_ARG;
		}
	}
	return CS_OK;
}

/* Optional text field: 1..CS_API_TEXT_MAX characters, none refused. */
static cs_err text_field(json_t *doc, const char *name, const char **out, cs_api_error *err)
{
	json_t *v = json_object_get(doc, name);
	*out = NULL;
	if (v == NULL)
		return CS_OK;
	if (!json_is_string(v))
		return field_error(err, name, "must be a string");
	size_t chars = 0;
	switch (cs_api_text_check(json_string_value(v), json_string_length(v), TEXT_FIELD_MAX, &chars)) {
	case CS_TEXT_OK:
		*out = json_string_value(v);
		return CS_OK;
	case CS_TEXT_BAD_LENGTH:
		set_error(err, 400, "invalid_field", "field '%s' must be 1 to %d characters (it has %zu)",
			  name, TEXT_FIELD_MAX, chars);
		return CS_E_INVALID_ARG;
	case CS_TEXT_BAD_UTF8:
		return field_error(err, name, "must be UTF-8 text");
	default:
		return field_error(err, name,
				   "must not contain control characters, bidirectional controls or other "
				   "invisible format characters");
	}
}

static cs_err int_field(json_t *doc, const char *name, int lo, int hi, int *out, cs_api_error *err)
{
	json_t *v = json_object_get(doc, name);
	if (v == NULL)
		return CS_OK;
	if (!json_is_integer(v))
		return field_error(err, name, "must be an integer");
	json_int_t n = json_integer_value(v);
	if (n < lo || n > hi) {
		set_error(err, 400, "invalid_field", "field '%s' must be between %d and %d", name, lo, hi);
		return CS_E_INVALID_ARG;
	}
	*out = (int)n;
	return CS_OK;
}

/* prefix: 1..CS_API_PREFIX_MAX of a-z 0-9 _ */
static cs_err prefix_field(json_t *doc, const char **out, cs_api_error *err)
{
	static const char what[] = "must be 1 to 16 of a-z 0-9 _";
	json_t *v = json_object_get(doc, "prefix");
	*out = NULL;
	if (v == NULL)
		return CS_OK;
	if (!json_is_string(v))
		return field_error(err, "prefix", "must be a string");
	size_t n = json_string_length(v);
	const char *s = json_string_value(v);
	if (n == 0 || n > CS_API_PREFIX_MAX)
		return field_error(err, "prefix", what);
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return field_error(err, "prefix", what);
	*out = s;
	return CS_OK;
}

void cs_generate_input_free(cs_generate_input *in)
{
	json_decref(in->doc);
	memset(in, 0, sizeof(*in));
}

static cs_err decode_generate(const cs_preset_set *presets, const cs_wordlist *wordlist,
			      cs_generate_input *g, cs_api_error *err)
{
	static const char *const allowed[] = {"preset", "type", "length", "strength_bits", "project",
					      "environment", "system", "prefix", "exclude_ambiguous", NULL};
	json_t *doc = g->doc;
	cs_plan_request q = {0};
	cs_err r;
	if ((r = only_fields(doc, allowed, err)) != CS_OK)
		return r;
	json_t *preset = json_object_get(doc, "preset");
	if (preset == NULL)
		return field_error(err, "preset", "is required");
	if (!json_is_string(preset))
		return field_error(err, "preset", "must be a string");
	if ((g->preset = cs_preset_find(presets, json_string_value(preset))) == NULL) {
		char q1[CS_API_QUOTE_BYTES];
		cs_api_quote(json_string_value(preset), json_string_length(preset), q1);
		set_error(err, 400, "unknown_preset", "unknown preset '%s' (GET /api/presets lists them)", q1);
		return CS_E_NOT_FOUND;
	}
	json_t *type = json_object_get(doc, "type");
	if (type != NULL && (!json_is_string(type) || (q.type = cs_type_parse(json_string_value(type))) < 0))
		return field_error(err, "type", "must be password, passphrase, api-key, hex or base64url");
	json_t *amb = json_object_get(doc, "exclude_ambiguous");
	if (amb != NULL && !json_is_boolean(amb))
		return field_error(err, "exclude_ambiguous", "must be true or false");
	q.exclude_ambiguous = amb != NULL && json_is_true(amb);
	if ((r = int_field(doc, "strength_bits", 1, 256, &q.strength_bits, err)) != CS_OK ||
	    (r = int_field(doc, "length", 1, CS_CREDENTIAL_MAX - 1, &q.length, err)) != CS_OK ||
	    (r = text_field(doc, "project", &g->project, err)) != CS_OK ||
	    (r = text_field(doc, "environment", &g->environment, err)) != CS_OK ||
	    (r = text_field(doc, "system", &g->system, err)) != CS_OK ||
	    (r = prefix_field(doc, &g->prefix, err)) != CS_OK)
		return r;
	char why[300];
	r = cs_preset_plan(g->preset, wordlist, &q, &g->plan, why, sizeof(why));
	if (r == CS_E_INVALID_ARG) {
		set_error(err, 422, "type_not_allowed", "%s", why);
		return r;
	}
	if (r != CS_OK) {
		set_error(err, 422, "below_minimum", "%s", why);
		return r;
	}
	if (g->prefix != NULL && g->plan.type != CS_TYPE_API_KEY)
		return field_error(err, "prefix", "is only allowed with type api-key");
	return CS_OK;
}

cs_err cs_api_decode_generate(const cs_preset_set *presets, const cs_wordlist *wordlist,
			      const char *body, size_t len, size_t max_body, cs_generate_input *out,
			      cs_api_error *err)
{
	memset(out, 0, sizeof(*out));
	err->status = 0;
	cs_err r = cs_api_parse_object(body, len, max_body, &out->doc, err);
	if (r == CS_OK && (r = decode_generate(presets, wordlist, out, err)) != CS_OK)
		cs_generate_input_free(out);
	return r;
}

/* An identifier as new_id makes them (base64url, 22 characters). */
static int valid_id(const char *s)
{
	if (s == NULL || strlen(s) != ID_CHARS)
		return 0;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		      *p == '-' || *p == '_'))
			return 0;
	return 1;
}

cs_err cs_api_decode_certify(const char *body, size_t len, size_t max_body,
			     char session_id[CS_API_ID_CHARS + 1], cs_api_error *err)
{
	static const char *const allowed[] = {"generation_session_id", NULL};
	json_t *doc = NULL;
	session_id[0] = '\0';
	err->status = 0;
	cs_err r = cs_api_parse_object(body, len, max_body, &doc, err);
	if (r == CS_OK)
		r = only_fields(doc, allowed, err);
	json_t *sid = doc != NULL ? json_object_get(doc, "generation_session_id") : NULL;
	if (r == CS_OK && sid == NULL)
		r = field_error(err, "generation_session_id", "is required");
	else if (r == CS_OK && !json_is_string(sid))
		r = field_error(err, "generation_session_id", "must be a string");
	else if (r == CS_OK && (json_string_length(sid) != ID_CHARS || !valid_id(json_string_value(sid)))) {
		set_error(err, 404, "not_found", "no such generation session");
		r = CS_E_NOT_FOUND;
	}
	if (r == CS_OK)
		memcpy(session_id, json_string_value(sid), ID_CHARS + 1);
	json_decref(doc);
	return r;
}

cs_err cs_api_decode_cert_path(const char *rest, char id[CS_API_ID_CHARS + 1], int *jws,
			       cs_api_error *err)
{
	size_t n = strlen(rest);
	err->status = 0;
	id[0] = '\0';
	*jws = 0;
	if (n > 4 && strcmp(rest + n - 4, ".jws") == 0) {
		*jws = 1;
		n -= 4;
	}
	if (n != ID_CHARS) {
		set_error(err, 404, "not_found", "no such certificate");
		return CS_E_NOT_FOUND;
	}
	memcpy(id, rest, n);
	id[n] = '\0';
	if (!valid_id(id)) {
		id[0] = '\0';
		set_error(err, 404, "not_found", "no such certificate");
		return CS_E_NOT_FOUND;
	}
	return CS_OK;
}

/* ---- query strings ------------------------------------------------------------- */

/* Parse a query into params (the caller clears them): each parameter at
 * most once, and no %00 (libevent decodes it into a NUL that would end
 * the value early, silently). */
static cs_err parse_query(const char *query, struct evkeyvalq *params, cs_api_error *err)
{
	TAILQ_INIT(params);
	if (query == NULL || query[0] == '\0')
		return CS_OK;
	for (const char *p = strchr(query, '%'); p != NULL; p = strchr(p + 1, '%'))
		if (p[1] == '0' && p[2] == '0') {
			set_error(err, 400, "invalid_field", "the query must not contain %%00");
			return CS_E_INVALID_ARG;
		}
	if (evhttp_parse_query_str(query, params) != 0) {
		set_error(err, 400, "invalid_field", "malformed query string");
		return CS_E_INVALID_ARG;
	}
	struct evkeyval *kv, *seen;
	TAILQ_FOREACH(kv, params, next) {
		for (seen = TAILQ_FIRST(params); seen != kv; seen = TAILQ_NEXT(seen, next))
			if (strcmp(seen->key, kv->key) == 0) {
				char q[CS_API_QUOTE_BYTES];
				cs_api_quote(kv->key, strlen(kv->key), q);
				set_error(err, 400, "invalid_field", "parameter '%s' is given more than once", q);
				return CS_E_INVALID_ARG;
			}
	}
	return CS_OK;
}

static cs_err unknown_parameter(const char *key, cs_api_error *err)
{
	char q[CS_API_QUOTE_BYTES];
	cs_api_quote(key, strlen(key), q);
	set_error(err, 400, "unknown_field", "unknown parameter '%s'", q);
	return CS_E_INVALID_ARG;
}

/* Split a comma-separated list of preset names into out. */
static cs_err policy_standards(const cs_preset_set *presets, const char *list, cs_policy_input *out,
			       cs_api_error *err)
{
	size_t names = 1;
	for (const char *p = list; *p; p++)
		names += *p == ',';
	if (names > CS_API_STANDARDS_MAX) {
		set_error(err, 400, "invalid_field",
			  "parameter 'standards' names %zu standards; the limit is %d", names,
			  CS_API_STANDARDS_MAX);
		return CS_E_INVALID_ARG;
	}
	char *copy = strdup(list);
	if (copy == NULL) {
		set_error(err, 500, "internal_error", "out of memory");
		return CS_E_NOMEM;
	}
	cs_err r = CS_OK;
	char *name = copy;
	for (size_t i = 0; i < names && r == CS_OK; i++) {
		char *comma = strchr(name, ',');
		if (comma != NULL)
			*comma = '\0';
		const cs_preset *p = name[0] != '\0' ? cs_preset_find(presets, name) : NULL;
		char q[CS_API_QUOTE_BYTES];
		cs_api_quote(name, strlen(name), q);
		if (name[0] == '\0') {
			set_error(err, 400, "invalid_field",
				  "parameter 'standards' has an empty name (1 to %d comma-separated presets)",
				  CS_API_STANDARDS_MAX);
			r = CS_E_INVALID_ARG;
		} else if (p == NULL) {
			set_error(err, 404, "unknown_preset", "unknown standard '%s' (GET /api/presets lists them)", q);
			r = CS_E_NOT_FOUND;
		}
		for (size_t k = 0; k < out->count && r == CS_OK; k++)
			if (out->presets[k] == p) {
				set_error(err, 400, "invalid_field", "parameter 'standards' names '%s' twice", q);
				r = CS_E_INVALID_ARG;
			}
		if (r == CS_OK)
			out->presets[out->count++] = p;
		name = comma != NULL ? comma + 1 : name + strlen(name);
	}
	free(copy);
	return r;
}

cs_err cs_api_decode_policy(const cs_preset_set *presets, const char *query, cs_policy_input *out,
			    cs_api_error *err)
{
	/* the document's texts: checked like the text fields of a generate body */
	static const struct {
		const char *name;
		size_t offset, max_chars;
	} texts[] = {
		{"organisation", offsetof(cs_policy_input, organisation), CS_POLICY_TEXT_MAX},
		{"owner", offsetof(cs_policy_input, owner), CS_POLICY_TEXT_MAX},
		{"version", offsetof(cs_policy_input, version), CS_POLICY_TEXT_MAX},
		{"scope", offsetof(cs_policy_input, scope), CS_POLICY_SCOPE_MAX},
	};
	struct evkeyvalq params;
	memset(out, 0, sizeof(*out));
	err->status = 0;
	cs_err r = parse_query(query, &params, err);
	const char *standards = NULL, *format = "json";
	struct evkeyval *kv;
	if (r == CS_OK)
		TAILQ_FOREACH(kv, &params, next) {
			size_t t = 0, chars = 0;
			while (t < sizeof(texts) / sizeof(texts[0]) && strcmp(kv->key, texts[t].name) != 0)
				t++;
			if (strcmp(kv->key, "standards") == 0) {
				standards = kv->value;
			} else if (strcmp(kv->key, "format") == 0) {
				format = kv->value;
			} else if (strcmp(kv->key, "effective_date") == 0) {
				if (!cs_config_date_valid(kv->value)) {
					set_error(err, 400, "invalid_field",
						  "parameter 'effective_date' must be a date YYYY-MM-DD that exists");
					r = CS_E_INVALID_ARG;
					break;
				}
				memcpy(out->effective_date, kv->value, sizeof(out->effective_date));
			} else if (t < sizeof(texts) / sizeof(texts[0])) {
				size_t len = strlen(kv->value);
				switch (cs_api_text_check(kv->value, len, texts[t].max_chars, &chars)) {
				case CS_TEXT_OK:
					/* max_chars code points fit: 4 bytes each at most */
					memcpy((char *)out + texts[t].offset, kv->value, len + 1);
					continue;
				case CS_TEXT_BAD_LENGTH:
					set_error(err, 400, "invalid_field",
						  "parameter '%s' must be 1 to %zu characters (it has %zu)",
						  texts[t].name, texts[t].max_chars, chars);
					break;
				case CS_TEXT_BAD_UTF8:
					set_error(err, 400, "invalid_field", "parameter '%s' must be UTF-8 text",
						  texts[t].name);
					break;
				default:
					set_error(err, 400, "invalid_field",
						  "parameter '%s' must not contain control characters, bidirectional "
						  "controls or other invisible format characters",
						  texts[t].name);
					break;
				}
				r = CS_E_INVALID_ARG;
				break;
			} else {
				r = unknown_parameter(kv->key, err);
				break;
			}
		}
	if (r == CS_OK && standards == NULL) {
		set_error(err, 400, "invalid_field",
			  "parameter 'standards' (1 to %d comma-separated presets) is required",
			  CS_API_STANDARDS_MAX);
		r = CS_E_INVALID_ARG;
	}
	if (r == CS_OK && strcmp(format, "json") != 0 && strcmp(format, "markdown") != 0 &&
	    strcmp(format, "html") != 0) {
		set_error(err, 400, "invalid_field", "parameter 'format' must be json, markdown or html");
		r = CS_E_INVALID_ARG;
	}
	if (r == CS_OK) {
		out->markdown = strcmp(format, "markdown") == 0;
		out->html = strcmp(format, "html") == 0;
		r = policy_standards(presets, standards, out, err);
	}
	if (r != CS_OK)
		out->count = 0;
	evhttp_clear_headers(&params);
	return r;
}

/* A decimal integer in lo..hi: digits only (no sign, space or other
 * character), no overflow. */
static int decimal_in(const char *s, long long lo, long long hi, long long *out)
{
	if (s[0] == '\0')
		return 0;
	for (const char *p = s; *p; p++)
		if (*p < '0' || *p > '9')
			return 0;
	char *end = NULL;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno == ERANGE || end == s || *end != '\0' || v < lo || v > hi)
		return 0;
	*out = v;
	return 1;
}

cs_err cs_api_decode_audit_query(const char *query, cs_audit_query *out, cs_api_error *err)
{
	struct evkeyvalq params;
	err->status = 0;
	memset(out, 0, sizeof(*out));
	out->from_seq = 1;
	out->limit = 1000;
	cs_err r = parse_query(query, &params, err);
	struct evkeyval *kv;
	if (r == CS_OK)
		TAILQ_FOREACH(kv, &params, next) {
			long long v;
			size_t chars = 0, len = strlen(kv->value);
			if (strcmp(kv->key, "from_seq") == 0) {
				if (decimal_in(kv->value, 1, INT64_MAX, &v)) {
					out->from_seq = v;
					continue;
				}
				set_error(err, 400, "invalid_field",
					  "parameter 'from_seq' must be an integer from 1 to %lld",
					  (long long)INT64_MAX);
			} else if (strcmp(kv->key, "limit") == 0) {
				if (decimal_in(kv->value, 1, CS_API_AUDIT_LIMIT_MAX, &v)) {
					out->limit = (int)v;
					continue;
				}
				set_error(err, 400, "invalid_field",
					  "parameter 'limit' must be an integer from 1 to %d",
					  CS_API_AUDIT_LIMIT_MAX);
			} else if (strcmp(kv->key, "project") == 0) {
				cs_text_check t = cs_api_text_check(kv->value, len, TEXT_FIELD_MAX, &chars);
				if (t == CS_TEXT_OK) {
					/* TEXT_FIELD_MAX code points fit: 4 bytes each at most */
					memcpy(out->project, kv->value, len + 1);
					continue;
				}
				if (t == CS_TEXT_BAD_LENGTH)
					set_error(err, 400, "invalid_field",
						  "parameter 'project' must be 1 to %d characters (it has %zu)",
						  TEXT_FIELD_MAX, chars);
				else if (t == CS_TEXT_BAD_UTF8)
					set_error(err, 400, "invalid_field", "parameter 'project' must be UTF-8 text");
				else
					set_error(err, 400, "invalid_field",
						  "parameter 'project' must not contain control characters, "
						  "bidirectional controls or other invisible format characters");
			} else {
				unknown_parameter(kv->key, err);
			}
			r = CS_E_INVALID_ARG;
			break;
		}
	if (r != CS_OK)
		out->project[0] = '\0';
	evhttp_clear_headers(&params);
	return r;
}

/* A text parameter (project, environment) into out (CS_SERVICE_TEXT_BYTES). */
static int text_param(const char *name, const char *value, char *out, cs_api_error *err)
{
	size_t chars = 0, len = strlen(value);
	cs_text_check t = cs_api_text_check(value, len, TEXT_FIELD_MAX, &chars);
	if (t == CS_TEXT_OK) {
		/* TEXT_FIELD_MAX code points fit: 4 bytes each at most */
		memcpy(out, value, len + 1);
		return 1;
	}
	if (t == CS_TEXT_BAD_LENGTH)
		set_error(err, 400, "invalid_field", "parameter '%s' must be 1 to %d characters (it has %zu)", name,
			  TEXT_FIELD_MAX, chars);
	else if (t == CS_TEXT_BAD_UTF8)
		set_error(err, 400, "invalid_field", "parameter '%s' must be UTF-8 text", name);
	else
		set_error(err, 400, "invalid_field",
			  "parameter '%s' must not contain control characters, bidirectional controls or other "
			  "invisible format characters",
			  name);
	return 0;
}

cs_err cs_api_decode_inventory_query(const char *query, cs_inventory_query *out, int *csv, cs_api_error *err)
{
	struct evkeyvalq params;
	err->status = 0;
	memset(out, 0, sizeof(*out));
	*csv = 0;
	cs_err r = parse_query(query, &params, err);
	struct evkeyval *kv;
	if (r == CS_OK)
		TAILQ_FOREACH(kv, &params, next) {
			if (strcmp(kv->key, "project") == 0) {
				if (text_param("project", kv->value, out->project, err))
					continue;
			} else if (strcmp(kv->key, "environment") == 0) {
				if (text_param("environment", kv->value, out->environment, err))
					continue;
			} else if (strcmp(kv->key, "due_before") == 0) {
				if (strlen(kv->value) < sizeof(out->due_before) &&
				    cs_inventory_time_parse(kv->value, &out->due_before_ms) == CS_OK) {
					out->has_due_before = 1;
					snprintf(out->due_before, sizeof(out->due_before), "%s", kv->value);
					continue;
				}
				set_error(err, 400, "invalid_field",
					  "parameter 'due_before' must be a date YYYY-MM-DD that exists or an RFC 3339 "
					  "UTC time (2026-01-30T10:00:00Z)");
			} else if (strcmp(kv->key, "format") == 0) {
				if (strcmp(kv->value, "json") == 0 || strcmp(kv->value, "csv") == 0) {
					*csv = kv->value[0] == 'c';
					continue;
				}
				set_error(err, 400, "invalid_field", "parameter 'format' must be json or csv");
			} else {
				unknown_parameter(kv->key, err);
			}
			r = CS_E_INVALID_ARG;
			break;
		}
	if (r != CS_OK)
		memset(out, 0, sizeof(*out));
	evhttp_clear_headers(&params);
	return r;
}

/* ---- delegated signing ------------------------------------------------------------ */

/* A signing profile's name: ^[a-z0-9][a-z0-9._-]{0,31}$ */
static int profile_name_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > CS_CONFIG_PROFILE_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		int alnum = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9');
		if (!alnum && (i == 0 || (s[i] != '.' && s[i] != '_' && s[i] != '-')))
			return 0;
	}
	return 1;
}

cs_err cs_api_decode_profile_query(const char *query, char profile[CS_CONFIG_PROFILE_NAME_MAX + 1],
				   cs_api_error *err)
{
	struct evkeyvalq params;
	err->status = 0;
	profile[0] = '\0';
	cs_err r = parse_query(query, &params, err);
	struct evkeyval *kv;
	if (r == CS_OK)
		TAILQ_FOREACH(kv, &params, next) {
			if (strcmp(kv->key, "profile") != 0) {
				r = unknown_parameter(kv->key, err);
				break;
			}
			if (!profile_name_valid(kv->value)) {
				char q[CS_API_QUOTE_BYTES];
				cs_api_quote(kv->value, strlen(kv->value), q);
				set_error(err, 404, "unknown_profile", "unknown signing profile '%s'", q);
				r = CS_E_NOT_FOUND;
				break;
			}
			memcpy(profile, kv->value, strlen(kv->value) + 1);
		}
	if (r != CS_OK)
		profile[0] = '\0';
	evhttp_clear_headers(&params);
	return r;
}

cs_err cs_api_decode_signature_path(const char *rest, char id[CS_API_ID_CHARS + 1], cs_api_error *err)
{
	err->status = 0;
	id[0] = '\0';
	if (!valid_id(rest)) {
		set_error(err, 404, "not_found", "no such signature");
		return CS_E_NOT_FOUND;
	}
	memcpy(id, rest, ID_CHARS + 1);
	return CS_OK;
}

cs_err cs_api_decode_signatures_query(const char *query, char sha256[65], cs_api_error *err)
{
	struct evkeyvalq params;
	err->status = 0;
	sha256[0] = '\0';
	cs_err r = parse_query(query, &params, err);
	struct evkeyval *kv;
	if (r == CS_OK)
		TAILQ_FOREACH(kv, &params, next) {
			if (strcmp(kv->key, "sha256") != 0) {
				r = unknown_parameter(kv->key, err);
				break;
			}
			size_t n = strspn(kv->value, "0123456789abcdef");
			if (n != 64 || kv->value[n] != '\0') {
				set_error(err, 400, "invalid_field",
					  "parameter 'sha256' must be the SHA-256 of the signed bytes as 64 lower-case "
					  "hex digits");
				r = CS_E_INVALID_ARG;
				break;
			}
			memcpy(sha256, kv->value, 65);
		}
	if (r == CS_OK && sha256[0] == '\0') {
		set_error(err, 400, "invalid_field",
			  "parameter 'sha256' is required (the SHA-256 of the signed bytes, 64 lower-case hex digits)");
		r = CS_E_INVALID_ARG;
	}
	if (r != CS_OK)
		sha256[0] = '\0';
	evhttp_clear_headers(&params);
	return r;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A base64 digit of one alphabet: url (-_) or standard (+/); -1 otherwise. */
static int b64_value(char c, int url)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (url ? '-' : '+'))
		return 62;
	if (c == (url ? '_' : '/'))
		return 63;
	return -1;
}

/* A SHA-256 digest's value: 64 hex digits (either case), or 32 bytes in
 * base64url or standard base64 (43 digits, or 44 with the one '=' of
 * padding; one alphabet; the unused low bits zero). 1 when it is one. */
static int digest_value(const char *s, size_t n, uint8_t out[32])
{
	if (n == 64) {
		for (size_t i = 0; i < 32; i++) {
			int hi = hex_value(s[2 * i]), lo = hex_value(s[2 * i + 1]);
			if (hi < 0 || lo < 0)
				return 0;
			out[i] = (uint8_t)(hi << 4 | lo);
		}
		return 1;
	}
	if (n == 44 && s[43] == '=')
		n = 43;
	if (n != 43)
		return 0;
	int url = strpbrk(s, "-_") != NULL;
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64_value(s[i], url);
		if (v < 0)
			return 0;
		acc = (acc << 6 | (uint32_t)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o < 32)
				out[o++] = (uint8_t)(acc >> bits);
		}
	}
	/* 43 digits: 258 bits, 256 used; the last two must be zero */
	return o == 32 && (acc & ((1u << bits) - 1)) == 0;
}

static cs_err item_error(cs_api_sign_item *it, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static cs_err item_error(cs_api_sign_item *it, int status, const char *code, const char *fmt, ...)
{
	char message[sizeof(it->err.message)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	set_error(&it->err, status, code, "%s", message);
	return CS_E_INVALID_ARG;
}

static cs_err decode_digest(json_t *d, cs_api_sign_item *it)
{
	static const char *const allowed[] = {"alg", "value", NULL};
	if (d == NULL)
		return item_error(it, 400, "invalid_field", "field 'digest' is required");
	if (!json_is_object(d))
		return item_error(it, 400, "invalid_field",
				  "field 'digest' must be an object {\"alg\":\"SHA-256\",\"value\":...}");
	if (only_fields(d, allowed, &it->err) != CS_OK)
		return CS_E_INVALID_ARG;
	json_t *alg = json_object_get(d, "alg"), *value = json_object_get(d, "value");
	if (!json_is_string(alg) || strcmp(json_string_value(alg), "SHA-256") != 0)
		return item_error(it, 400, "invalid_field", "field 'digest.alg' must be \"SHA-256\"");
	if (!json_is_string(value) || !digest_value(json_string_value(value), json_string_length(value), it->item.digest))
		return item_error(it, 400, "invalid_field",
				  "field 'digest.value' must be the 32-byte SHA-256 digest in hex (64 digits), "
				  "base64url or base64");
	return CS_OK;
}

static cs_err decode_dsse(json_t *doc, size_t max_body, cs_api_sign_item *it)
{
	json_t *type = json_object_get(doc, "payload_type"), *payload = json_object_get(doc, "payload");
	if (type == NULL)
		return item_error(it, 400, "invalid_field", "field 'payload_type' is required");
	if (!json_is_string(type))
		return item_error(it, 400, "invalid_field", "field 'payload_type' must be a string");
	it->item.payload_type = json_string_value(type);
	if (payload == NULL)
		return item_error(it, 400, "invalid_field", "field 'payload' is required");
	if (!json_is_string(payload))
		return item_error(it, 400, "invalid_field", "field 'payload' must be a string (standard base64)");
	cs_err r = cs_sig_b64_decode(json_string_value(payload), max_body, &it->body, &it->item.body_len);
	if (r == CS_E_NOMEM)
		return item_error(it, 500, "internal_error", "out of memory");
	if (r != CS_OK)
		return item_error(it, 400, "invalid_field",
				  "field 'payload' must be standard base64 (RFC 4648 section 4, padded)");
	it->item.body = it->body;
	return CS_OK;
}

/* One item: its profile and format first (they name it in its audit
 * entry), then the members of its format. */
static void decode_item(json_t *doc, size_t max_body, cs_api_sign_item *it)
{
	static const char *const jws[] = {"profile", "format", "payload", NULL};
	static const char *const dsse[] = {"profile", "format", "payload_type", "payload", NULL};
	static const char *const digest[] = {"profile", "format", "digest", NULL};
	memset(it, 0, sizeof(*it));
	cs_err r = CS_OK;
	if (!json_is_object(doc)) {
		item_error(it, 400, "invalid_field", "an item must be a JSON object");
		goto out;
	}
	json_t *profile = json_object_get(doc, "profile"), *format = json_object_get(doc, "format");
	it->item.profile = json_string_value(profile);
	it->item.format = json_string_value(format);
	unsigned f = cs_sig_format_parse(it->item.format);
	if (profile == NULL || format == NULL) {
		r = item_error(it, 400, "invalid_field", "field '%s' is required", profile == NULL ? "profile" : "format");
	} else if (!json_is_string(profile) || !json_is_string(format)) {
		r = item_error(it, 400, "invalid_field", "field '%s' must be a string",
			       !json_is_string(profile) ? "profile" : "format");
	} else if (f == 0) {
		char q[CS_API_QUOTE_BYTES];
		cs_api_quote(it->item.format, json_string_length(format), q);
		r = item_error(it, 400, "format_not_allowed", "unknown format '%s' (jws, dsse or digest)", q);
	} else if ((r = only_fields(doc, f == CS_SIG_FORMAT_JWS ? jws : f == CS_SIG_FORMAT_DSSE ? dsse : digest,
				    &it->err)) != CS_OK) {
		/* it->err says which */
	} else if (f == CS_SIG_FORMAT_JWS) {
		json_t *payload = json_object_get(doc, "payload");
		if (payload == NULL)
			r = item_error(it, 400, "invalid_field", "field 'payload' is required");
		else if (!json_is_object(payload))
			r = item_error(it, 400, "invalid_field", "field 'payload' must be a JSON object (the claims)");
		it->item.payload = payload;
	} else if (f == CS_SIG_FORMAT_DSSE) {
		r = decode_dsse(doc, max_body, it);
	} else {
		r = decode_digest(json_object_get(doc, "digest"), it);
	}
out:
	if (it->err.status != 0) {
		it->item.refused_code = it->err.code;
		it->item.refused_message = it->err.message;
	}
	(void)r;
}

void cs_sign_input_free(cs_sign_input *in)
{
	for (size_t i = 0; in->items != NULL && i < in->n; i++)
		free(in->items[i].body);
	free(in->items);
	json_decref(in->doc);
	memset(in, 0, sizeof(*in));
}

cs_err cs_api_decode_sign(const char *body, size_t len, size_t max_body, size_t batch_max, cs_sign_input *out,
			  cs_api_error *err)
{
	static const char *const batch_fields[] = {"items", NULL};
	memset(out, 0, sizeof(*out));
	err->status = 0;
	cs_err r = parse_object(body, len, max_body, "signing.max_request_bytes", &out->doc, err);
	if (r != CS_OK)
		return r;
	json_t *items = json_object_get(out->doc, "items");
	out->batch = items != NULL;
	size_t n = 1;
	if (out->batch && (r = only_fields(out->doc, batch_fields, err)) == CS_OK) {
		n = json_is_array(items) ? json_array_size(items) : 0;
		if (!json_is_array(items) || n == 0) {
			set_error(err, 400, "invalid_field", "field 'items' must be an array of 1 to %zu items",
				  batch_max);
			r = CS_E_INVALID_ARG;
		} else if (n > batch_max) {
			set_error(err, 413, "batch_too_large", "the batch has %zu items; the limit is %zu (signing.batch_max)",
				  n, batch_max);
			r = CS_E_TOO_LARGE;
		}
	}
	if (r == CS_OK && (out->items = calloc(n, sizeof(*out->items))) == NULL) {
		set_error(err, 500, "internal_error", "out of memory");
		r = CS_E_NOMEM;
	}
	if (r != CS_OK) {
		cs_sign_input_free(out);
		return r;
	}
	out->n = n;
	for (size_t i = 0; i < n; i++)
		decode_item(out->batch ? json_array_get(items, i) : out->doc, max_body, &out->items[i]);
	return CS_OK;
}

int cs_api_sign_status(const char *code)
{
	static const struct {
		const char *code;
		int status;
	} codes[] = {
		{"unknown_profile", 400},   {"format_not_allowed", 400}, {"payload_type_not_allowed", 400},
		{"payload_too_large", 413}, {"reserved_claim", 400},     {"forbidden", 403},
		{"rate_limited", 429},      {"no_active_key", 503},      {"audit_unavailable", 503},
		{"invalid_field", 400},     {"unknown_field", 400},      {"token_unavailable", 503},
		{"token_has_no_rng", 503},  {"signature_invalid", 503},  {"store_unavailable", 503},
		{"batch_too_large", 413},
	};
	for (size_t i = 0; code != NULL && i < sizeof(codes) / sizeof(codes[0]); i++)
		if (strcmp(code, codes[i].code) == 0)
			return codes[i].status;
	return 500;
}

/* ---- one request in flight ------------------------------------------------------ */

/* The reply waits here until the request's audit entry is durable
 * (finish_call sends it). */
typedef struct {
	struct evhttp_request *req;
	int status;
	const char *type;
	char *body; /* malloc'd (a secret's: secure heap); wiped and freed by cs_wiped_buffer_free */
	char error_code[48];
	const char *allow; /* 405: the Allow header */
	int secret; /* the reply holds a credential: built and sent in a secret scope (wipe_alloc.h) */
	cs_service_req rq; /* the services' side: caller, rules, audit entry */
} api_call;

static void reply_release(api_call *c)
{
	if (c->body != NULL)
		cs_wiped_buffer_free(c->body, strlen(c->body), NULL);
	c->body = NULL;
}

/* Keep text (malloc'd; ownership passes to the call) as the reply. */
static void send_owned(api_call *c, int status, const char *type, char *text)
{
	reply_release(c);
	c->status = status;
	c->type = type;
	c->body = text;
}

/* Keep a JSON document (consumed) as the reply. */
static void send_json(api_call *c, int status, json_t *doc)
{
	char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12)) : NULL;
	json_decref(doc);
	if (text == NULL) {
		send_owned(c, 500, "application/json", strdup("{\"error\":{\"code\":\"internal_error\",\"message\":\"out of memory\"}}"));
		return;
	}
	send_owned(c, status, "application/json", text); /* wiped when released */
}

static void api_error(api_call *c, int status, const char *code, const char *message)
{
	snprintf(c->error_code, sizeof(c->error_code), "%s", code);
	send_json(c, status, json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message));
}

/* Send a decoder's error. */
static void send_api_error(api_call *c, const cs_api_error *err)
{
	c->allow = err->allow;
	api_error(c, err->status, err->code, err->message);
}

/* A service's error as status and code: the code the service named, else
 * the one its cs_err maps to. */
static void send_service_error(api_call *c, cs_err r)
{
	static const struct {
		const char *code;
		int status;
	} named[] = {
		{"forbidden", 403},           {"rate_limited", 429},     {"token_not_validated", 422},
		{"invalid_field", 400},       {"internal_error", 500},   {"no_active_key", 503},
		{"revocations_unavailable", 503}, {"unknown_profile", 404},   {"audit_unavailable", 503},
		{"not_found", 404},           {"inventory_too_large", 413},
	};
	const cs_service_problem *p = &c->rq.problem;
	const char *message = p->message[0] ? p->message : cs_strerror(r);
	for (size_t i = 0; p->code[0] && i < sizeof(named) / sizeof(named[0]); i++)
		if (strcmp(p->code, named[i].code) == 0) {
			api_error(c, named[i].status, p->code, message);
			return;
		}
	switch (r) {
	case CS_E_NOT_FOUND: api_error(c, 404, "not_found", message); return;
	case CS_E_FORBIDDEN: api_error(c, 403, "forbidden", message); return;
	case CS_E_SESSION_EXPIRED: api_error(c, 410, "session_expired", message); return;
	case CS_E_SESSION_USED: api_error(c, 409, "session_already_certified", message); return;
	case CS_E_TOKEN_NO_RNG: api_error(c, 503, "token_has_no_rng", message); return;
	case CS_E_SIGNATURE_INVALID: api_error(c, 503, "signature_invalid", message); return;
	case CS_E_NO_ACTIVE_KEY: api_error(c, 503, "no_active_key", message); return;
	default: break;
	}
	switch (cs_err_category_of(r)) {
	case CS_CAT_TOKEN: api_error(c, 503, "token_unavailable", message); return;
	case CS_CAT_STORE: api_error(c, 503, "store_unavailable", message); return;
	default: api_error(c, 500, "internal_error", message); return;
	}
}

/* A reply up to one TLS record is joined into one chunk (server.c's
 * join_reply); a credential's is joined here, in its secret scope, so the
 * joined copy is in the secure heap too (join_reply then finds it done). */
#define SECRET_JOIN_MAX 16384

static void join_secret_reply(struct evbuffer *out)
{
	if (out != NULL && evbuffer_get_length(out) <= SECRET_JOIN_MAX)
		(void)evbuffer_pullup(out, -1);
}

/* Send the kept reply; the body is handed to libevent by reference and
 * wiped when libevent releases it. The handler may have held the event
 * loop longer than the connection's timeout (a slow token): the countdown
 * restarts here, before the loop can see the expired one and drop the
 * connection with the reply unsent. */
static void reply_send(api_call *c, int timeout_ms)
{
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	struct evhttp_connection *conn = evhttp_request_get_connection(c->req);
	if (conn != NULL) {
		/* libevent computes deadlines from the time cached when the loop
		 * woke up, which a slow handler has left far behind */
		event_base_update_cache_time(evhttp_connection_get_base(conn));
		evhttp_connection_set_timeout_tv(conn, &tv);
	}
	struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);
	evhttp_add_header(h, "Content-Type", c->type != NULL ? c->type : "application/json");
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "Strict-Transport-Security", "max-age=31536000");
	evhttp_add_header(h, "X-Request-Id", c->rq.request_id);
	if (c->allow != NULL)
		evhttp_add_header(h, "Allow", c->allow);
	if (c->status == 429 && c->rq.retry_after > 0) {
		char seconds[16];
		snprintf(seconds, sizeof(seconds), "%d", c->rq.retry_after);
		evhttp_add_header(h, "Retry-After", seconds);
	}
	struct evbuffer *buf = evbuffer_new();
	size_t len = c->body != NULL ? strlen(c->body) : 0;
	if (buf != NULL && c->body != NULL && evhttp_request_get_command(c->req) == EVHTTP_REQ_HEAD) {
		/* HEAD: the headers GET would send, no body (libevent 2.1 would
		 * send one, and the next answer on the connection would be
		 * misread) */
		char length[24];
		snprintf(length, sizeof(length), "%zu", len);
		evhttp_add_header(h, "Content-Length", length);
		reply_release(c);
		evhttp_send_reply(c->req, c->status, NULL, buf);
		evbuffer_free(buf);
		return;
	}
	/* a credential's reply: its copies inside libevent (the chunks it
	 * queues, the joined one) in the secure heap while it has room */
	struct bufferevent *bev = c->secret && conn != NULL ? evhttp_connection_get_bufferevent(conn) : NULL;
	struct evbuffer *out = bev != NULL ? bufferevent_get_output(bev) : NULL;
	if (c->secret)
		cs_secret_scope_enter();
	if (buf == NULL || c->body == NULL ||
	    evbuffer_add_reference(buf, c->body, len, cs_wiped_buffer_free, NULL) != 0) {
		reply_release(c);
		evhttp_send_error(c->req, 500, NULL);
	} else {
		c->body = NULL; /* libevent owns it now */
		evhttp_send_reply(c->req, c->status, NULL, buf);
		join_secret_reply(out);
	}
	if (buf != NULL)
		evbuffer_free(buf);
	if (c->secret)
		cs_secret_scope_leave();
}

/* Refused before its input is checked when the caller may not do the
 * action at all (deny by default: a client without a grant learns nothing
 * of the input rules; what it asked for, when it decodes, is in the
 * refusal's entry). 1 when refused (the reply is set). */
static int not_admitted(api_call *c, cs_access_action action)
{
	if (cs_service_admit(&c->rq, action) == CS_OK)
		return 0;
	send_service_error(c, CS_E_FORBIDDEN);
	return 1;
}

static const char *body_of(api_call *c, size_t *len)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(c->req);
	*len = evbuffer_get_length(in);
	return (const char *)evbuffer_pullup(in, -1);
}

static const char *query_of(api_call *c)
{
	return evhttp_uri_get_query(evhttp_request_get_evhttp_uri(c->req));
}

/* ---- routes ---------------------------------------------------------------------- */

static void handle_generate(api_call *c)
{
	cs_app *app = c->rq.app;
	cs_generate_input in;
	cs_api_error err;
	size_t len;
	const char *body = body_of(c, &len);
	cs_err dr = cs_api_decode_generate(app->presets, app->wordlist, body, len,
					   (size_t)app->cfg->server.max_body_bytes, &in, &err);
	if (dr == CS_OK) /* what was asked for: in the entry of a refusal too */
		cs_service_set_scope(&c->rq, in.project, in.environment);
	if (not_admitted(c, CS_ACTION_GENERATE) || dr != CS_OK) {
		if (dr != CS_OK && c->status == 0)
			send_api_error(c, &err);
		cs_generate_input_free(&in);
		return;
	}
	cs_generate_request g = {.preset = in.preset, .plan = &in.plan, .project = in.project,
				 .environment = in.environment, .system = in.system, .prefix = in.prefix};
	cs_generate_result res;
	cs_err r = cs_service_generate(&c->rq, &g, &res);
	if (r != CS_OK) {
		send_service_error(c, r);
	} else {
		/* the credential's copies (the JSON string, the document, its
		 * text) in the secure heap while it has room; the text is
		 * released by cs_wiped_buffer_free (reply_release, or libevent
		 * through the reference), the rest by json_decref */
		c->secret = 1;
		cs_secret_scope_enter();
		send_json(c, 200,
			  json_pack("{s:s, s:s, s:i, s:s, s:s, s:i, s:f}", "credential", res.credential,
				    "generation_session_id", res.session_id, "expires_in", res.expires_in,
				    "preset", res.preset, "type", res.type, "length", res.length, "entropy_bits",
				    res.entropy_bits));
		cs_secret_scope_leave();
	}
	cs_generate_result_wipe(&res);
	cs_generate_input_free(&in);
}

static void handle_certify(api_call *c)
{
	cs_app *app = c->rq.app;
	char session_id[ID_CHARS + 1];
	cs_api_error err;
	size_t len;
	const char *body = body_of(c, &len);
	cs_err dr = cs_api_decode_certify(body, len, (size_t)app->cfg->server.max_body_bytes, session_id, &err);
	if (dr == CS_OK)
		cs_service_set_object(&c->rq, session_id);
	if (not_admitted(c, CS_ACTION_CERTIFY))
		return;
	if (dr != CS_OK) {
		send_api_error(c, &err);
		return;
	}
	cs_certify_result res;
	cs_err r = cs_service_certify(&c->rq, session_id, &res);
	if (r != CS_OK) {
		send_service_error(c, r);
		return;
	}
	send_json(c, 201, json_pack("{s:s, s:s, s:s}", "cert_id", res.cert_id, "cert_url", res.url, "certificate",
				    res.jws));
	cs_certify_result_free(&res);
}

static void handle_cert(api_call *c, const char *rest)
{
	char id[ID_CHARS + 1];
	int raw = 0;
	cs_api_error err;
	if (not_admitted(c, CS_ACTION_CERT_READ))
		return;
	if (cs_api_decode_cert_path(rest, id, &raw, &err) != CS_OK) {
		send_api_error(c, &err);
		return;
	}
	char *jws = NULL, *claims = NULL;
	cs_cert_status st;
	cs_err r = cs_service_cert_get(&c->rq, id, &jws, &claims, raw ? NULL : &st);
	if (r != CS_OK) {
		send_service_error(c, r);
		return;
	}
	if (raw) {
		/* the JWS as signed: a revocation is a later fact, served beside it */
		send_owned(c, 200, "application/jose", jws);
		jws = NULL;
	} else {
		json_t *header = NULL;
		(void)cs_jws_peek_header(jws, &header);
		json_t *revocation =
			st.revoked ? json_pack("{s:s, s:s}", "revoked_at", st.revoked_at, "reason", st.reason) : NULL;
		int compromised = st.key_status != NULL && strcmp(st.key_status, "compromised") == 0;
		json_t *key = st.key_status != NULL ? json_pack("{s:s, s:s*}", "status", st.key_status, "compromised_at",
								st.key_compromised_at)
						    : NULL;
		/* revoked first: the certificate's own withdrawal; then its key's */
		const char *status = st.revoked ? "revoked" : compromised ? "key_compromised" : "valid";
		send_json(c, 200, json_pack("{s:s, s:s, s:s, s:o?, s:o?, s:o*, s:o*}", "cert_id", id, "status", status,
					    "certificate", jws, "header", header, "claims", json_loads(claims, 0, NULL),
					    "revocation", revocation, "signing_key", key));
		cs_cert_status_free(&st);
	}
	free(jws);
	free(claims);
}

/* A public document of the certificate keys, or with ?profile=NAME of a
 * signing profile's keys: the JWKS (cs_service_jwks_doc) or the rollover
 * statements (cs_service_rollovers). */
static void handle_keys_doc(api_call *c, cs_err (*doc_of)(cs_service_req *, const char *, json_t **))
{
	json_t *doc = NULL;
	char profile[CS_CONFIG_PROFILE_NAME_MAX + 1];
	cs_api_error err;
	if (cs_api_decode_profile_query(query_of(c), profile, &err) != CS_OK) {
		send_api_error(c, &err);
		return;
	}
	cs_err r = doc_of(&c->rq, profile[0] ? profile : NULL, &doc);
	if (r != CS_OK)
		send_service_error(c, r);
	else
		send_json(c, 200, doc);
}

static void handle_revocations(api_call *c)
{
	char *jws = NULL;
	cs_err r = cs_service_revocations(&c->rq, &jws);
	if (r != CS_OK)
		send_service_error(c, r);
	else
		send_owned(c, 200, "application/jwt", jws);
}

static void handle_presets(api_call *c)
{
	json_t *doc = NULL;
	cs_err r = cs_service_presets(&c->rq, &doc);
	if (r != CS_OK)
		send_service_error(c, r);
	else
		send_json(c, 200, doc);
}

static void handle_policy(api_call *c)
{
	cs_policy_input in;
	cs_api_error err;
	if (not_admitted(c, CS_ACTION_POLICY_READ))
		return;
	if (cs_api_decode_policy(c->rq.app->presets, query_of(c), &in, &err) != CS_OK) {
		send_api_error(c, &err);
		return;
	}
	json_t *policy = NULL;
	cs_err r = cs_service_policy(&c->rq, &in, &policy);
	if (r != CS_OK) {
		send_service_error(c, r);
		return;
	}
	if (!in.markdown && !in.html) {
		send_json(c, 200, policy);
		return;
	}
	char *text = in.html ? cs_policy_html(policy) : cs_policy_markdown(policy);
	json_decref(policy);
	if (text == NULL) {
		api_error(c, 500, "internal_error", "policy: out of memory");
	} else if (in.html) {
		/* a document to print: no script, no fetch, only its own style */
		evhttp_add_header(evhttp_request_get_output_headers(c->req), "Content-Security-Policy",
				  CS_POLICY_HTML_CSP);
		send_owned(c, 200, "text/html; charset=utf-8", text);
	} else {
		send_owned(c, 200, "text/markdown; charset=utf-8", text);
	}
}

static void handle_readyz(api_call *c, cs_app *app, cs_store *store)
{
	cs_readiness ready;
	cs_service_readiness(app, store, &ready);
	const char *key = ready.kid[0] != '\0' ? ready.kid : "none";
	if (ready.token != CS_OK || ready.store != CS_OK || ready.kid[0] == '\0') {
		const char *code = ready.token != CS_OK   ? "token_unavailable"
				   : ready.store != CS_OK ? "store_unavailable"
							  : "no_active_key";
		char key_message[640];
		snprintf(key_message, sizeof(key_message),
			 "not ready: no active signing key in force (certification fails closed until a ceremony "
			 "activates one)%s%s",
			 ready.key_why[0] != '\0' ? ": " : "", ready.key_why);
		const char *message = ready.token != CS_OK ? "not ready: the token does not answer"
				      : ready.store != CS_OK
					      ? strcmp(ready.store_state, "writes fail") == 0
							? "not ready: the store cannot write"
						: strcmp(ready.store_state, "tampered") == 0
							? "not ready: a guard of the store's schema is missing or altered "
							  "(see the log)"
							: "not ready: the store does not answer"
					      : key_message;
		send_json(c, 503, json_pack("{s:s, s:s, s:s, s:s, s:s*, s:{s:s, s:s}}", "status", "unavailable",
					    "token", ready.token == CS_OK ? "ok" : cs_strerror(ready.token), "store",
					    ready.store_state, "signing_key", key, "signing_key_problem",
					    ready.key_code[0] != '\0' ? ready.key_code : NULL, "error", "code", code,
					    "message", message));
		return;
	}
	send_json(c, 200, json_pack("{s:s, s:s, s:s, s:s}", "status", "ready", "token", "ok", "store", "ok",
				    "signing_key", key));
}

static void handle_metrics(api_call *c)
{
	char *text = NULL;
	cs_err r = cs_service_metrics(&c->rq, &text);
	if (r != CS_OK)
		send_service_error(c, r);
	else
		send_owned(c, 200, "text/plain; version=0.0.4; charset=utf-8", text);
}

static void handle_audit_checkpoint(api_call *c)
{
	char *jws = NULL;
	json_t *header = NULL, *claims = NULL;
	cs_err r = cs_service_audit_checkpoint(&c->rq, &jws);
	if (r != CS_OK) {
		send_service_error(c, r);
		return;
	}
	/* decoded for convenience; verifiers check the JWS */
	(void)cs_jws_peek(jws, &header, &claims);
	send_json(c, 200, json_pack("{s:s, s:o?, s:o?}", "checkpoint", jws, "header", header, "claims", claims));
	free(jws);
}

static void handle_audit_export(api_call *c)
{
	cs_audit_query q;
	cs_api_error err;
	cs_err dr = cs_api_decode_audit_query(query_of(c), &q, &err);
	if (dr == CS_OK && q.project[0])
		cs_service_set_scope(&c->rq, q.project, NULL);
	if (not_admitted(c, CS_ACTION_AUDIT_READ))
		return;
	if (dr != CS_OK) {
		send_api_error(c, &err);
		return;
	}
	cs_audit_page page;
	cs_err r = cs_service_audit_export(&c->rq, &q, &page);
	if (r != CS_OK) {
		send_service_error(c, r);
		return;
	}
	send_json(c, 200, json_pack("{s:O, s:O, s:o, s:o}", "entries", page.entries, "checkpoints", page.checkpoints,
				    "next_from_seq",
				    page.next_from_seq > 0 ? json_integer((json_int_t)page.next_from_seq) : json_null(),
				    "project", q.project[0] ? json_string(q.project) : json_null()));
	cs_audit_page_free(&page);
}

/* One signed item's answer. */
static json_t *sign_answer(const cs_sign_result *res)
{
	json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:s}", "signature_id", res->signature_id, "kid", res->kid, "seq",
			      (json_int_t)res->seq, "profile", res->profile, "format", cs_sig_format_name(res->format));
	if (o == NULL)
		return NULL;
	int ok = 1;
	if (res->format == CS_SIG_FORMAT_JWS)
		ok = json_object_set_new(o, "jws", json_string(res->jws)) == 0;
	else if (res->format == CS_SIG_FORMAT_DSSE)
		ok = json_object_set(o, "envelope", res->envelope) == 0;
	else
		ok = json_object_set_new(o, "signature", json_string(res->signature)) == 0 &&
		     json_object_set_new(o, "signature_der", json_string(res->signature_der)) == 0 &&
		     json_object_set_new(o, "alg", json_string("ES256")) == 0;
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* An item's status: the decoder's, else its code's. */
static int item_status(const cs_api_sign_item *in, const cs_sign_result *res)
{
	if (in->err.status != 0 && strcmp(in->err.code, res->problem.code) == 0)
		return in->err.status;
	return cs_api_sign_status(res->problem.code);
}

static void send_sign_answer(api_call *c, const cs_sign_input *in, const cs_sign_result *results)
{
	if (!in->batch) {
		const cs_sign_result *res = &results[0];
		if (res->err == CS_OK) {
			send_json(c, 200, sign_answer(res));
			return;
		}
		c->rq.retry_after = res->retry_after;
		api_error(c, item_status(&in->items[0], res), res->problem.code, res->problem.message);
		return;
	}
	json_t *list = json_array();
	for (size_t i = 0; list != NULL && i < in->n; i++) {
		const cs_sign_result *res = &results[i];
		json_t *item = res->err == CS_OK ? sign_answer(res)
						 : json_pack("{s:{s:s, s:s}, s:i}", "error", "code", res->problem.code,
							     "message", res->problem.message, "status",
							     item_status(&in->items[i], res));
		if (item == NULL || json_array_append_new(list, item) != 0) {
			json_decref(list);
			list = NULL;
		}
	}
	if (list == NULL)
		api_error(c, 500, "internal_error", "out of memory");
	else
		send_json(c, 200, json_pack("{s:o}", "items", list));
}

static void handle_sign(api_call *c)
{
	const cs_config *cfg = c->rq.app->cfg;
	cs_sign_input in;
	cs_api_error err;
	size_t len;
	const char *body = body_of(c, &len);
	cs_err dr = cs_api_decode_sign(body, len, (size_t)cfg->signing.max_request_bytes, (size_t)cfg->signing.batch_max,
				       &in, &err);
	if (dr == CS_OK && !in.batch && in.items[0].item.profile != NULL && in.items[0].item.format != NULL) {
		/* what was asked for: in the entry of a refusal too */
		char object[CS_SERVICE_OBJECT_BYTES];
		snprintf(object, sizeof(object), "profile=%.200s format=%.100s", in.items[0].item.profile,
			 in.items[0].item.format);
		cs_service_set_object(&c->rq, object);
	}
	if (not_admitted(c, CS_ACTION_SIGN) || dr != CS_OK) {
		if (dr != CS_OK && c->status == 0)
			send_api_error(c, &err);
		if (dr == CS_OK)
			cs_sign_input_free(&in);
		return;
	}
	cs_sign_item *items = calloc(in.n, sizeof(*items));
	cs_sign_result *results = calloc(in.n, sizeof(*results));
	if (items == NULL || results == NULL) {
		api_error(c, 500, "internal_error", "out of memory");
	} else {
		for (size_t i = 0; i < in.n; i++)
			items[i] = in.items[i].item;
		cs_err r = cs_service_sign(&c->rq, items, in.n, results);
		if (r != CS_OK)
			send_service_error(c, r);
		else
			send_sign_answer(c, &in, results);
		cs_sign_results_free(results, in.n);
	}
	free(items);
	free(results);
	cs_sign_input_free(&in);
}

static void handle_signature(api_call *c, const char *rest)
{
	char id[ID_CHARS + 1];
	cs_api_error err;
	if (not_admitted(c, CS_ACTION_SIGNATURE_READ))
		return;
	if (cs_api_decode_signature_path(rest, id, &err) != CS_OK) {
		send_api_error(c, &err);
		return;
	}
	json_t *record = NULL;
	cs_err r = cs_service_signature_get(&c->rq, id, &record);
	if (r != CS_OK)
		send_service_error(c, r);
	else
		send_json(c, 200, record);
}

static void handle_signatures(api_call *c)
{
	char sha256[65];
	cs_api_error err;
	if (not_admitted(c, CS_ACTION_SIGNATURE_READ))
		return;
	if (cs_api_decode_signatures_query(query_of(c), sha256, &err) != CS_OK) {
		send_api_error(c, &err);
		return;
	}
	json_t *doc = NULL;
	cs_err r = cs_service_signatures_find(&c->rq, sha256, &doc);
	if (r != CS_OK)
		send_service_error(c, r);
	else
		send_json(c, 200, doc);
}

/* The query as the entry's object: "project=P environment=E due_before=D format=F" ("-": not given). */
static void inventory_object(api_call *c, const cs_inventory_query *q, int csv)
{
	char object[CS_SERVICE_OBJECT_BYTES];
	snprintf(object, sizeof(object), "project=%.120s environment=%.120s due_before=%s format=%s",
		 q->project[0] ? q->project : "-", q->environment[0] ? q->environment : "-",
		 q->has_due_before ? q->due_before : "-", csv ? "csv" : "json");
	cs_service_set_object(&c->rq, object);
}

static void handle_inventory(api_call *c)
{
	cs_inventory_query q;
	cs_api_error err;
	int csv = 0;
	cs_err dr = cs_api_decode_inventory_query(query_of(c), &q, &csv, &err);
	if (dr == CS_OK) {
		inventory_object(c, &q, csv);
		cs_service_set_scope(&c->rq, q.project[0] ? q.project : NULL, q.environment[0] ? q.environment : NULL);
	}
	if (not_admitted(c, CS_ACTION_INVENTORY_READ))
		return;
	if (dr != CS_OK) {
		send_api_error(c, &err);
		return;
	}
	json_t *doc = NULL;
	cs_err r = cs_service_inventory(&c->rq, &q, &doc);
	if (r != CS_OK) {
		send_service_error(c, r);
		return;
	}
	if (!csv) {
		send_json(c, 200, doc);
		return;
	}
	char *text = cs_inventory_csv(json_object_get(doc, "records"));
	json_decref(doc);
	if (text == NULL)
		api_error(c, 500, "internal_error", "inventory: out of memory");
	else
		send_owned(c, 200, "text/csv; charset=utf-8", text);
}

static void dispatch(api_call *c, cs_app *app, cs_store *store, cs_api_route_id route, const char *path)
{
	switch (route) {
	case CS_ROUTE_GENERATE: handle_generate(c); break;
	case CS_ROUTE_CERTIFY: handle_certify(c); break;
	case CS_ROUTE_CERT: handle_cert(c, path + strlen("/cert/")); break;
	case CS_ROUTE_JWKS: handle_keys_doc(c, cs_service_jwks_doc); break;
	case CS_ROUTE_ROLLOVER: handle_keys_doc(c, cs_service_rollovers); break;
	case CS_ROUTE_REVOCATIONS: handle_revocations(c); break;
	case CS_ROUTE_PRESETS: handle_presets(c); break;
	case CS_ROUTE_POLICY: handle_policy(c); break;
	case CS_ROUTE_AUDIT_CHECKPOINT: handle_audit_checkpoint(c); break;
	case CS_ROUTE_AUDIT: handle_audit_export(c); break;
	case CS_ROUTE_HEALTHZ: send_json(c, 200, json_pack("{s:s}", "status", "ok")); break;
	case CS_ROUTE_READYZ: handle_readyz(c, app, store); break;
	case CS_ROUTE_METRICS: handle_metrics(c); break;
	case CS_ROUTE_SIGN: handle_sign(c); break;
	case CS_ROUTE_SIGNATURE: handle_signature(c, path + strlen("/api/signatures/")); break;
	case CS_ROUTE_SIGNATURES: handle_signatures(c); break;
	case CS_ROUTE_INVENTORY: handle_inventory(c); break;
	case CS_ROUTE_NONE: api_error(c, 404, "not_found", "no such route"); break;
	}
}

static cs_api_method method_of(struct evhttp_request *http)
{
	switch (evhttp_request_get_command(http)) {
	case EVHTTP_REQ_GET: return CS_METHOD_GET;
	case EVHTTP_REQ_HEAD: return CS_METHOD_HEAD;
	case EVHTTP_REQ_POST: return CS_METHOD_POST;
	default: return CS_METHOD_OTHER;
	}
}

/* Audit the call (unless a service did: inside its transaction, or at a
 * refusal) and send its reply: the entry is durable before anything
 * leaves. */
static void finish_call(api_call *c)
{
	const char *outcome = c->status < 400 ? "success" : c->status < 500 ? "refused" : "failure";
	if (c->rq.audit_failed ||
	    cs_service_record(&c->rq, outcome, c->error_code[0] ? c->error_code : NULL) != CS_OK)
		/* the entry is not durable: nothing else may leave */
		api_error(c, 503, "audit_unavailable", "the audit log cannot record this request");
	reply_send(c, c->rq.app->cfg->server.timeout_ms);
	cs_service_end(&c->rq);
}

static void new_request_id(cs_app *app, char out[CS_API_REQUEST_ID_MAX])
{
	cs_api_request_id(app->cfg->server.node_id, (long)++app->request_counter, out);
}

void cs_api_handle(struct evhttp_request *http, cs_app *app, cs_store *store, const cs_caller *caller)
{
	api_call call = {.req = http};
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(http);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	char request_id[CS_API_REQUEST_ID_MAX];
	new_request_id(app, request_id);
	cs_service_begin(&call.rq, app, store, caller, "request", request_id);
	cs_api_route_id route = CS_ROUTE_NONE;
	cs_api_error err;
	if (path == NULL) {
		api_error(&call, 400, "bad_request", "malformed request target");
	} else if (caller == NULL) {
		api_error(&call, 403, "forbidden", "no verified client certificate");
	} else {
		const char *action = NULL;
		cs_err r = cs_api_route(method_of(http), path, evhttp_uri_get_query(uri), &route, &action, &err);
		if (action == NULL) {
			/* probes (routes without an audit action) are not audited */
			if (r != CS_OK)
				send_api_error(&call, &err);
			else
				dispatch(&call, app, store, route, path);
			reply_send(&call, app->cfg->server.timeout_ms);
			cs_service_end(&call.rq);
			return;
		}
		call.rq.audit.action = action;
		if (route == CS_ROUTE_NONE || route == CS_ROUTE_CERT || route == CS_ROUTE_SIGN ||
		    route == CS_ROUTE_SIGNATURES)
			cs_service_set_object(&call.rq, path + (route == CS_ROUTE_CERT ? strlen("/cert/") : 0));
		else if (route == CS_ROUTE_SIGNATURE)
			cs_service_set_object(&call.rq, path + strlen("/api/signatures/"));
		if (r != CS_OK)
			send_api_error(&call, &err);
		else
			dispatch(&call, app, store, route, path);
	}
	finish_call(&call);
}

void cs_api_probe(struct evhttp_request *http, cs_app *app, cs_store *store)
{
	api_call call = {.req = http};
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(http);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	char request_id[CS_API_REQUEST_ID_MAX];
	new_request_id(app, request_id);
	cs_service_begin(&call.rq, app, store, NULL, NULL, request_id);
	cs_api_route_id route = CS_ROUTE_NONE;
	const char *action = NULL;
	cs_api_error err;
	cs_err r = path != NULL ? cs_api_route(method_of(http), path, evhttp_uri_get_query(uri), &route, &action, &err)
				: CS_E_NOT_FOUND;
	if (route != CS_ROUTE_HEALTHZ && route != CS_ROUTE_READYZ)
		api_error(&call, 404, "not_found", "this listener serves /healthz and /readyz only");
	else if (r != CS_OK)
		send_api_error(&call, &err);
	else
		dispatch(&call, app, store, route, path);
	reply_send(&call, app->cfg->server.timeout_ms);
	cs_service_end(&call.rq);
}

void cs_api_refuse(struct evhttp_request *http, cs_app *app, cs_store *store, const cs_caller *caller,
		   int status, const char *code, const char *message)
{
	api_call call = {.req = http};
	char request_id[CS_API_REQUEST_ID_MAX];
	new_request_id(app, request_id);
	/* a refusal only writes its audit entry, through the ledger */
	cs_service_begin(&call.rq, app, store, caller, "request", request_id);
	api_error(&call, status, code, message);
	finish_call(&call);
}
