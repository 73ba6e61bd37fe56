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
#include <event2/event.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "cs_log.h"
#include "metrics.h"
#include "generate.h"
#include "jose.h"
#include "policy.h"
#include "audit.h"
#include "wipe_alloc.h"

#define ID_BYTES 16
#define ID_CHARS CS_API_ID_CHARS
#define SALT_BYTES 16
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
	{"/.well-known/jwks.json", CS_ROUTE_JWKS, "jwks.read", 0, 0, 0},
	{"/api/presets", CS_ROUTE_PRESETS, "presets.read", 0, 0, 0},
	{"/api/policy", CS_ROUTE_POLICY, "policy.read", 0, 0, 1},
	{"/api/audit/checkpoint", CS_ROUTE_AUDIT_CHECKPOINT, "audit.checkpoint.read", 0, 0, 0},
	{"/api/audit", CS_ROUTE_AUDIT, "audit.read", 0, 0, 1},
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
		[CS_ROUTE_HEALTHZ] = "healthz",  [CS_ROUTE_READYZ] = "readyz",
		[CS_ROUTE_METRICS] = "metrics",
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

cs_err cs_api_parse_object(const char *body, size_t len, size_t max_body, json_t **out,
			   cs_api_error *err)
{
	*out = NULL;
	if (len > max_body) {
		set_error(err, 413, "body_too_large",
			  "the request body is %zu bytes; the limit is %zu (server.max_body_bytes)", len,
			  max_body);
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

cs_err cs_api_decode_audit_query(const char *query, int64_t *from_seq, int *limit,
				 cs_api_error *err)
{
	struct evkeyvalq params;
	err->status = 0;
	*from_seq = 1;
	*limit = 1000;
	cs_err r = parse_query(query, &params, err);
	struct evkeyval *kv;
	if (r == CS_OK)
		TAILQ_FOREACH(kv, &params, next) {
			long long v;
			if (strcmp(kv->key, "from_seq") == 0) {
				if (decimal_in(kv->value, 1, INT64_MAX, &v)) {
					*from_seq = v;
					continue;
				}
				set_error(err, 400, "invalid_field",
					  "parameter 'from_seq' must be an integer from 1 to %lld",
					  (long long)INT64_MAX);
			} else if (strcmp(kv->key, "limit") == 0) {
				if (decimal_in(kv->value, 1, CS_API_AUDIT_LIMIT_MAX, &v)) {
					*limit = (int)v;
					continue;
				}
				set_error(err, 400, "invalid_field",
					  "parameter 'limit' must be an integer from 1 to %d",
					  CS_API_AUDIT_LIMIT_MAX);
			} else {
				unknown_parameter(kv->key, err);
			}
			r = CS_E_INVALID_ARG;
			break;
		}
	evhttp_clear_headers(&params);
	return r;
}

typedef struct api_call api_call;

/* ---- responses: kept until the audit entry is durable, then sent ---------- */

/* One request in flight: the reply waits here until the audit entry is
 * durable (cs_api_handle sends it). */
struct api_call {
	struct evhttp_request *req;
	int status;
	const char *type;
	char *body; /* malloc'd; wiped when released */
	char error_code[48];
	const char *allow;    /* 405: the Allow header */
	cs_audit_entry audit; /* handlers fill action, object, project, environment */
	int audited;          /* written inside the handler's own transaction */
	int store_failed;     /* the store already failed (or timed out) this request */
	/* the audit entry's own copies: handlers' buffers die before it is written */
	char object[256], project[TEXT_FIELD_MAX * 4 + 1], environment[TEXT_FIELD_MAX * 4 + 1];
};

/* Set an audit field from a value that may not outlive the handler. Bytes
 * that are not printable ASCII (a raw request path may carry anything) are
 * replaced, so every entry stays exportable as JSON. Project and
 * environment come from parsed JSON and are valid UTF-8 already (and
 * always fit). A value longer than the field (a long unknown path) is cut
 * at a character boundary and marked with "...". */
static const char *audit_copy(char *buf, size_t cap, const char *value, int ascii_only)
{
	if (value == NULL)
		return NULL;
	size_t n = strlen(value);
	if (n < cap) {
		memcpy(buf, value, n + 1);
	} else {
		n = cap - 4;
		while (n > 0 && ((unsigned char)value[n] & 0xc0) == 0x80)
			n--;
		memcpy(buf, value, n);
		memcpy(buf + n, "...", 4);
	}
	if (ascii_only)
		cs_audit_sanitize(buf);
	return buf;
}
#define AUDIT_SET(req, field, value)                                                  \
	((req)->audit.field = audit_copy((req)->field, sizeof((req)->field), (value),     \
					 strcmp(#field, "object") == 0))

static void reply_release(api_call *req)
{
	if (req->body != NULL)
		cs_wiped_buffer_free(req->body, strlen(req->body), NULL);
	req->body = NULL;
}

/* Keep text (malloc'd; ownership passes to the call) as the reply. */
static void send_owned(api_call *req, int status, const char *type, char *text)
{
	reply_release(req);
	req->status = status;
	req->type = type;
	req->body = text;
}

/* Keep a JSON document (consumed) as the reply. */
static void send_json(api_call *req, int status, json_t *doc)
{
	char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12)) : NULL;
	json_decref(doc);
	if (text == NULL) {
		send_owned(req, 500, "application/json", strdup("{\"error\":{\"code\":\"internal_error\",\"message\":\"out of memory\"}}"));
		return;
	}
	send_owned(req, status, "application/json", text); /* wiped when released */
}

static void api_error(api_call *req, int status, const char *code, const char *message)
{
	snprintf(req->error_code, sizeof(req->error_code), "%s", code);
	send_json(req, status,
		  json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message));
}

/* Send a decoder's error. */
static void send_api_error(api_call *req, const cs_api_error *err)
{
	req->allow = err->allow;
	api_error(req, err->status, err->code, err->message);
}

/* Send the kept reply; the body is handed to libevent by reference and
 * wiped when libevent releases it. The handler may have held the event
 * loop longer than the connection's timeout (a slow token): the countdown
 * restarts here, before the loop can see the expired one and drop the
 * connection with the reply unsent. */
static void reply_send(api_call *req, const char *request_id, int timeout_ms)
{
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	struct evhttp_connection *conn = evhttp_request_get_connection(req->req);
	if (conn != NULL) {
		/* libevent computes deadlines from the time cached when the loop
		 * woke up, which a slow handler has left far behind */
		event_base_update_cache_time(evhttp_connection_get_base(conn));
		evhttp_connection_set_timeout_tv(conn, &tv);
	}
	struct evkeyvalq *h = evhttp_request_get_output_headers(req->req);
	evhttp_add_header(h, "Content-Type", req->type != NULL ? req->type : "application/json");
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "Strict-Transport-Security", "max-age=31536000");
	evhttp_add_header(h, "X-Request-Id", request_id);
	if (req->allow != NULL)
		evhttp_add_header(h, "Allow", req->allow);
	struct evbuffer *buf = evbuffer_new();
	size_t len = req->body != NULL ? strlen(req->body) : 0;
	if (buf != NULL && req->body != NULL &&
	    evhttp_request_get_command(req->req) == EVHTTP_REQ_HEAD) {
		/* HEAD: the headers GET would send, no body (libevent 2.1 would
		 * send one, and the next answer on the connection would be
		 * misread) */
		char length[24];
		snprintf(length, sizeof(length), "%zu", len);
		evhttp_add_header(h, "Content-Length", length);
		reply_release(req);
		evhttp_send_reply(req->req, req->status, NULL, buf);
		evbuffer_free(buf);
		return;
	}
	if (buf == NULL || req->body == NULL ||
	    evbuffer_add_reference(buf, req->body, len, cs_wiped_buffer_free, NULL) != 0) {
		reply_release(req);
		evhttp_send_error(req->req, 500, NULL);
	} else {
		req->body = NULL; /* libevent owns it now */
		evhttp_send_reply(req->req, req->status, NULL, buf);
	}
	if (buf != NULL)
		evbuffer_free(buf);
}

/* Map a project error to status and code. */
static void send_cs_error(api_call *req, cs_err r, const char *what)
{
	char msg[256];
	snprintf(msg, sizeof(msg), "%s: %s", what, cs_strerror(r));
	switch (r) {
	case CS_E_NOT_FOUND: api_error(req, 404, "not_found", msg); return;
	case CS_E_FORBIDDEN: api_error(req, 403, "forbidden", msg); return;
	case CS_E_SESSION_EXPIRED: api_error(req, 410, "session_expired", msg); return;
	case CS_E_SESSION_USED: api_error(req, 409, "session_already_certified", msg); return;
	case CS_E_TOKEN_NO_RNG: api_error(req, 503, "token_has_no_rng", msg); return;
	case CS_E_SIGNATURE_INVALID: api_error(req, 503, "signature_invalid", msg); return;
	default: break;
	}
	switch (cs_err_category_of(r)) {
	case CS_CAT_TOKEN: api_error(req, 503, "token_unavailable", msg); return;
	case CS_CAT_STORE:
		req->store_failed = 1;
		api_error(req, 503, "store_unavailable", msg);
		return;
	default: api_error(req, 500, "internal_error", msg); return;
	}
}

/* ---- helpers ---------------------------------------------------------------- */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void rfc3339(int64_t ms, char out[32])
{
	time_t sec = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&sec, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static cs_err token_rnd(void *ctx, uint8_t *buf, size_t n)
{
	return cs_token_random(ctx, buf, n);
}

/* An identifier from 16 random bytes: base64url, 127 random bits. The top
 * bit is cleared so that the first character is a letter (A-Z, a-f): an id
 * never starts with '-' and is never taken for an option when it is passed
 * on a command line. */
static cs_err id_from_raw(uint8_t raw[ID_BYTES], char out[ID_CHARS + 1])
{
	raw[0] &= 0x7f;
	char *s = cs_b64url_encode(raw, ID_BYTES);
	if (s == NULL)
		return CS_E_NOMEM;
	memcpy(out, s, ID_CHARS + 1);
	free(s);
	return CS_OK;
}

/* A fresh identifier from the token (one C_GenerateRandom call). */
static cs_err new_id(cs_app *app, char out[ID_CHARS + 1])
{
	uint8_t raw[ID_BYTES];
	cs_err r = cs_token_random(app->token, raw, sizeof(raw));
	if (r != CS_OK)
		return r;
	return id_from_raw(raw, out);
}

static json_t *classes_json(unsigned classes)
{
	static const char *const names[] = {"upper", "lower", "digit", "special"};
	json_t *a = json_array();
	for (int i = 0; i < 4; i++)
		if (classes & (1u << i))
			json_array_append_new(a, json_string(names[i]));
	return a;
}

/* The credential claim: what was generated and how, never the value. */
static json_t *credential_claim(const cs_app *app, const cs_generate_input *g, const char *salt,
				const char *commitment)
{
	const cs_plan *p = &g->plan;
	json_t *cred = json_pack("{s:s, s:i, s:f, s:s, s:{s:s, s:s, s:s}}", "type",
				 cs_type_name(p->type), "length", p->length, "entropy_bits",
				 p->entropy_bits, "entropy_method",
				 p->type == CS_TYPE_PASSPHRASE ? "uniform-words" : "whole-candidate-rejection",
				 "commitment", "alg", "HMAC-SHA-256", "salt", salt, "value", commitment);
	if (cred == NULL)
		return NULL;
	if (p->type == CS_TYPE_PASSPHRASE) {
		/* the list's stable name: its file name without directory or
		 * extension (wordlist_en_eff), never a host path */
		const char *file = app->cfg->server.wordlist_file, *slash = strrchr(file, '/');
		const char *base = slash != NULL ? slash + 1 : file, *dot = strrchr(base, '.');
		json_t *id = json_stringn(base, dot != NULL && dot != base ? (size_t)(dot - base) : strlen(base));
		json_object_set_new(cred, "length_unit", json_string("words"));
		json_object_set_new(cred, "separator", json_string("-"));
		json_object_set_new(cred, "wordlist",
				    json_pack("{s:o, s:s, s:I}", "id", id, "sha256", app->wordlist->sha256,
					      "size", (json_int_t)app->wordlist->count));
		return cred;
	}
	/* every member of a character type is present: null when it does not apply */
	json_object_set_new(cred, "length_unit", json_string("characters"));
	json_object_set_new(cred, "charset", json_string(p->charset));
	json_object_set_new(cred, "classes", classes_json(p->spec.classes));
	json_object_set_new(cred, "max_identical_run",
			    p->spec.max_identical_run ? json_integer(p->spec.max_identical_run) : json_null());
	json_object_set_new(cred, "max_class_run",
			    p->spec.max_class_run ? json_integer(p->spec.max_class_run) : json_null());
	json_object_set_new(cred, "prefix", g->prefix != NULL ? json_string(g->prefix) : json_null());
	return cred;
}

/* The claims known at generation time, stored with the session. */
static json_t *session_claims(json_t *entropy_source, const cs_generate_input *g, json_t *cred,
			      const cs_peer *peer, const char *session_id, const char *generated_at)
{
	json_t *standards = json_array();
	for (size_t i = 0; i < g->preset->nstandards; i++)
		json_array_append_new(standards, json_string(g->preset->standards[i]));
	return json_pack(
		"{s:s, s:i, s:s, s:o, s:i, s:o, s:O, s:{s:s, s:s}, s:s?, s:s?, s:s?, s:s, s:s}", "preset",
		g->preset->name, "preset_version", g->preset->version, "preset_sha256", g->preset->sha256,
		"standards", standards, "strength_bits", g->plan.strength_bits, "credential", cred,
		"entropy_source", entropy_source, "subject", "identity", peer->identity,
		"cert_sha256", peer->cert_sha256, "project", g->project, "environment", g->environment,
		"system", g->system, "generation_session_id", session_id, "generated_at", generated_at);
}

static cs_err commit_credential(const uint8_t salt[SALT_BYTES], const char *credential,
				char **value)
{
	uint8_t mac[32];
	unsigned int mac_len = 0;
	if (HMAC(EVP_sha256(), salt, SALT_BYTES, (const uint8_t *)credential, strlen(credential), mac,
		 &mac_len) == NULL || mac_len != 32)
		return CS_E_CRYPTO;
	*value = cs_b64url_encode(mac, sizeof(mac));
	return *value != NULL ? CS_OK : CS_E_NOMEM;
}

/* Random bytes a generate request draws at once: the salt, the session id
 * and generously what the credential is expected to take (rejection
 * sampling), in whole calls of the token's per-call cap; a refill (one
 * call) follows only when rejections used it all. */
static size_t generate_random_bytes(cs_app *app, const cs_generate_input *g)
{
	size_t need = SALT_BYTES + ID_BYTES +
		      (g->plan.type == CS_TYPE_PASSPHRASE
			       ? cs_passphrase_random_bytes(app->wordlist, (size_t)g->plan.length)
			       : cs_string_random_bytes(&g->plan.spec, g->plan.entropy_bits));
	size_t call = cs_token_random_max(app->token);
	need = (need + call - 1) / call * call;
	return need < CS_RANDOM_BUFFER_MAX ? need : CS_RANDOM_BUFFER_MAX / call * call;
}

/* Draw the credential (with its api-key prefix) into out[cap]. */
static cs_err draw_credential(cs_app *app, const cs_generate_input *g, cs_random_buffer *src,
			      char *out, size_t cap)
{
	if (g->plan.type == CS_TYPE_PASSPHRASE)
		return cs_generate_passphrase_from(app->wordlist, (size_t)g->plan.length, src, out, cap);
	size_t prefix_len = g->prefix != NULL ? strlen(g->prefix) + 1 : 0;
	if (prefix_len > 0)
		snprintf(out, cap, "%s_", g->prefix);
	return cs_generate_string_from(&g->plan.spec, src, out + prefix_len, cap - prefix_len);
}

static void handle_generate(api_call *req, cs_app *app, const cs_peer *peer)
{
	cs_generate_input g;
	cs_api_error err;
	char credential[CS_CREDENTIAL_MAX * 12], session_id[ID_CHARS + 1], generated_at[32];
	uint8_t salt[SALT_BYTES], id_raw[ID_BYTES];
	char *salt_b64 = NULL, *commitment = NULL, *claims_text = NULL;
	json_t *claims = NULL, *entropy_source = NULL;
	cs_err r;
	/* the request's randomness: one draw (see generate_random_bytes),
	 * sliced; wiped at the end */
	cs_random_buffer rnd;
	cs_random_buffer_init(&rnd, token_rnd, app->token, cs_token_random_max(app->token));
	struct evbuffer *in = evhttp_request_get_input_buffer(req->req);
	size_t len = evbuffer_get_length(in);
	if (cs_api_decode_generate(app->presets, app->wordlist, (const char *)evbuffer_pullup(in, -1), len,
				   (size_t)app->cfg->server.max_body_bytes, &g, &err) != CS_OK) {
		send_api_error(req, &err);
		return;
	}
	/* the token as described now (again after a recovery of the pool), and
	 * its validation as checked then: never assumed */
	const char *validated_program = NULL;
	char problem[sizeof(app->validation_problem)];
	if ((entropy_source = cs_app_entropy_source(app, &validated_program, problem, sizeof(problem))) == NULL) {
		send_cs_error(req, CS_E_TOKEN_UNAVAILABLE, "describing the token");
		cs_generate_input_free(&g);
		return;
	}
	if (!cs_validation_meets(validated_program, g.preset->requires_validation)) {
		const char *why = problem[0] ? problem
				  : validated_program != NULL ? "it is validated under FIPS 140-2 only"
							      : "pkcs11.validation declares program \"none\"";
		set_error(&err, 422, "token_not_validated",
			  "preset '%s' requires a token validated under %s; this token is not: %s",
			  g.preset->name, g.preset->requires_validation, why);
		send_api_error(req, &err);
		cs_generate_input_free(&g);
		json_decref(entropy_source);
		return;
	}
	if ((r = cs_random_buffer_fill(&rnd, generate_random_bytes(app, &g))) != CS_OK ||
	    (r = cs_random_take(&rnd, salt, sizeof(salt))) != CS_OK ||
	    (r = cs_random_take(&rnd, id_raw, sizeof(id_raw))) != CS_OK ||
	    (r = id_from_raw(id_raw, session_id)) != CS_OK ||
	    (r = draw_credential(app, &g, &rnd, credential, sizeof(credential))) != CS_OK) {
		send_cs_error(req, r, "generation");
		goto out;
	}
	int64_t now = now_ms();
	rfc3339(now, generated_at);
	if ((r = commit_credential(salt, credential, &commitment)) != CS_OK ||
	    (salt_b64 = cs_b64url_encode(salt, sizeof(salt))) == NULL) {
		send_cs_error(req, r != CS_OK ? r : CS_E_NOMEM, "commitment");
		goto out;
	}
	json_t *cred = credential_claim(app, &g, salt_b64, commitment);
	claims = cred != NULL ? session_claims(entropy_source, &g, cred, peer, session_id, generated_at) : NULL;
	claims_text = claims != NULL ? json_dumps(claims, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(12))
				     : NULL;
	if (claims_text == NULL) {
		send_cs_error(req, CS_E_NOMEM, "claims");
		goto out;
	}
	cs_gen_session session = {.created_ms = now,
				  .expires_ms = now + CS_SESSION_TTL_SECONDS * 1000,
				  .claims_json = claims_text};
	memcpy(session.id, session_id, sizeof(session_id));
	memcpy(session.cert_sha256, peer->cert_sha256, sizeof(session.cert_sha256));
	req->audit.actor = peer->identity;
	req->audit.actor_cert_sha256 = peer->cert_sha256;
	req->audit.role = "client";
	AUDIT_SET(req, object, session_id);
	AUDIT_SET(req, project, g.project);
	AUDIT_SET(req, environment, g.environment);
	req->audit.outcome = "success";
	cs_audit_complete(app->audit, &req->audit);
	if ((r = cs_ledger_session_put(app->ledger, &session, &req->audit)) != CS_OK) {
		send_cs_error(req, r, "storing the session and its audit entry");
		goto out;
	}
	req->audited = 1;
	cs_audit_committed(app->audit, app->ledger, &req->audit);
	send_json(req, 200,
		  json_pack("{s:s, s:s, s:i, s:s, s:s, s:i, s:f}", "credential", credential,
			    "generation_session_id", session_id, "expires_in", CS_SESSION_TTL_SECONDS,
			    "preset", g.preset->name, "type", cs_type_name(g.plan.type), "length",
			    g.plan.length, "entropy_bits", g.plan.entropy_bits));
	cs_log_info("generated preset=%s type=%s length=%d session=%s identity=%s", g.preset->name,
		    cs_type_name(g.plan.type), g.plan.length, session_id, peer->identity);
out:
	cs_random_buffer_wipe(&rnd);
	OPENSSL_cleanse(credential, sizeof(credential));
	OPENSSL_cleanse(salt, sizeof(salt));
	free(salt_b64);
	free(commitment);
	free(claims_text);
	json_decref(claims);
	json_decref(entropy_source);
	cs_generate_input_free(&g);
}

/* ---- POST /api/generate-certificate --------------------------------------- */

/* Add the certification claims to the session's and sign (outside any
 * store transaction: the token may be slow). The JWS is the one copy of
 * the claims stored. */
static cs_err make_certificate(cs_app *app, const char *session_claims, const char *cert_id,
			       int64_t now, char **jws)
{
	char when[32];
	json_t *claims = json_loads(session_claims, 0, NULL);
	if (claims == NULL)
		return CS_E_STORE;
	rfc3339(now, when);
	json_object_set_new(claims, "iss", json_string(app->cfg->server.public_base_url));
	json_object_set_new(claims, "jti", json_string(cert_id));
	json_object_set_new(claims, "iat", json_integer(now / 1000));
	json_object_set_new(claims, "certified_at", json_string(when));
	cs_err r = cs_signer_jws(app->signer, CS_CERT_TYP, claims, jws);
	json_decref(claims);
	return r;
}

static void handle_certify(api_call *req, cs_app *app, cs_store *store,
			   const cs_peer *peer)
{
	char session_id[ID_CHARS + 1], cert_id[ID_CHARS + 1], project[TEXT_FIELD_MAX * 4 + 1], environment[TEXT_FIELD_MAX * 4 + 1];
	char *jws = NULL, *session_claims = NULL;
	cs_api_error err;
	struct evbuffer *in = evhttp_request_get_input_buffer(req->req);
	size_t len = evbuffer_get_length(in);
	if (cs_api_decode_certify((const char *)evbuffer_pullup(in, -1), len,
				  (size_t)app->cfg->server.max_body_bytes, session_id, &err) != CS_OK) {
		send_api_error(req, &err);
		return;
	}
	AUDIT_SET(req, object, session_id);
	int64_t now = now_ms();
	cs_err r = cs_ledger_session_claims(store, session_id, peer->cert_sha256, now, &session_claims);
	if (r == CS_OK)
		r = new_id(app, cert_id);
	if (r == CS_OK)
		r = make_certificate(app, session_claims, cert_id, now, &jws);
	if (r == CS_OK) {
		json_t *sc = json_loads(session_claims, 0, NULL);
		snprintf(project, sizeof(project), "%s", json_string_value(json_object_get(sc, "project")) ?: "");
		snprintf(environment, sizeof(environment), "%s",
			 json_string_value(json_object_get(sc, "environment")) ?: "");
		json_decref(sc);
		req->audit.actor = peer->identity;
		req->audit.actor_cert_sha256 = peer->cert_sha256;
		req->audit.role = "client";
		AUDIT_SET(req, object, cert_id);
		AUDIT_SET(req, project, project[0] ? project : NULL);
		AUDIT_SET(req, environment, environment[0] ? environment : NULL);
		req->audit.outcome = "success";
		cs_audit_complete(app->audit, &req->audit);
		r = cs_ledger_certify(app->ledger, session_id, cert_id, cs_signer_kid(app->signer), jws,
				      now, &req->audit);
		if (r == CS_OK) {
			req->audited = 1;
			cs_audit_committed(app->audit, app->ledger, &req->audit);
		} else {
			AUDIT_SET(req, object, session_id);
		}
	}
	if (r != CS_OK) {
		send_cs_error(req, r, "certification");
		goto out;
	}
	char url[600];
	snprintf(url, sizeof(url), "%s/cert/%s", app->cfg->server.public_base_url, cert_id);
	send_json(req, 201, json_pack("{s:s, s:s, s:s}", "cert_id", cert_id, "cert_url", url,
				      "certificate", jws));
	cs_log_info("certified session=%s cert=%s identity=%s", session_id, cert_id,
		    peer->identity);
out:
	free(jws);
	free(session_claims);
}

/* ---- GET routes ------------------------------------------------------------ */

static void handle_cert(api_call *req, cs_store *store, const char *rest)
{
	char id[ID_CHARS + 1];
	int raw = 0;
	cs_api_error err;
	if (cs_api_decode_cert_path(rest, id, &raw, &err) != CS_OK) {
		send_api_error(req, &err);
		return;
	}
	char *jws = NULL, *claims = NULL;
	cs_err r = cs_ledger_cert_get(store, id, &jws, &claims);
	if (r != CS_OK) {
		send_cs_error(req, r, "certificate");
		return;
	}
	if (raw) {
		send_owned(req, 200, "application/jose", jws);
		jws = NULL;
	} else {
		json_t *header = NULL;
		(void)cs_jws_peek_header(jws, &header);
		send_json(req, 200, json_pack("{s:s, s:s, s:o?, s:o?}", "cert_id", id, "certificate", jws,
					      "header", header, "claims", json_loads(claims, 0, NULL)));
	}
	free(jws);
	free(claims);
}

static void add_key_row(void *arg, const char *kid, const char *jwk_json, const char *status,
			const char *created_at)
{
	(void)kid;
	json_t *jwk = json_loads(jwk_json, 0, NULL);
	if (jwk == NULL)
		return;
	json_object_set_new(jwk, "status", json_string(status));
	json_object_set_new(jwk, "created_at", json_string(created_at));
	json_array_append_new(arg, jwk);
}

static void handle_jwks(api_call *req, cs_store *store)
{
	json_t *keys = json_array();
	cs_err r = cs_store_keys_each(store, add_key_row, keys);
	if (r != CS_OK) {
		json_decref(keys);
		send_cs_error(req, r, "signing keys");
		return;
	}
	send_json(req, 200, json_pack("{s:o}", "keys", keys));
}

static void handle_presets(api_call *req, cs_app *app)
{
	json_t *list = json_array();
	for (size_t i = 0; i < app->presets->count; i++) {
		const cs_preset *p = &app->presets->items[i];
		json_t *d = json_deep_copy(p->definition);
		json_object_set_new(d, "sha256", json_string(p->sha256));
		json_object_set_new(d, "source", json_string(p->source));
		json_t *mins = json_object();
		for (int t = 1; t <= CS_TYPE_PASSPHRASE; t <<= 1) {
			cs_plan_request q = {.type = t};
			cs_plan plan;
			char why[256];
			if ((p->types & (unsigned)t) &&
			    cs_preset_plan(p, app->wordlist, &q, &plan, why, sizeof(why)) == CS_OK)
				json_object_set_new(mins, cs_type_name((cs_cred_type)t),
						    json_integer(plan.min_length));
		}
		json_object_set_new(d, "enforced_min_length", mins);
		json_array_append_new(list, d);
	}
	send_json(req, 200, json_pack("{s:i, s:o}", "version", app->presets->version, "presets", list));
}

static void handle_policy(api_call *req, cs_app *app)
{
	const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req->req));
	cs_policy_input in;
	cs_api_error err;
	char why[200];
	if (cs_api_decode_policy(app->presets, query, &in, &err) != CS_OK) {
		send_api_error(req, &err);
		return;
	}
	/* the query's texts override the configuration's `policy` group */
	cs_policy_options opts = {0};
	if (app->cfg != NULL) {
		opts.organisation = app->cfg->policy.organisation;
		opts.owner = app->cfg->policy.owner;
		opts.scope = app->cfg->policy.scope;
		opts.version = app->cfg->policy.version;
		opts.effective_date = app->cfg->policy.effective_date;
		opts.review_months = app->cfg->policy.review_months;
	}
	if (in.organisation[0])
		opts.organisation = in.organisation;
	if (in.owner[0])
		opts.owner = in.owner;
	if (in.scope[0])
		opts.scope = in.scope;
	if (in.version[0])
		opts.version = in.version;
	if (in.effective_date[0])
		opts.effective_date = in.effective_date;
	json_t *policy = NULL;
	cs_err r = cs_policy_build_doc(app->presets, app->wordlist, in.presets, in.count, &opts, &policy,
				       why, sizeof(why));
	if (r == CS_E_INVALID_ARG) { /* the decoder already refuses what this refuses */
		api_error(req, 400, "invalid_field", why);
		return;
	}
	if (r != CS_OK) {
		send_cs_error(req, r, "policy");
		return;
	}
	if (in.markdown || in.html) {
		char *text = in.html ? cs_policy_html(policy) : cs_policy_markdown(policy);
		json_decref(policy);
		if (text == NULL) {
			send_cs_error(req, CS_E_NOMEM, "policy");
		} else if (in.html) {
			/* a document to print: no script, no fetch, only its own style */
			evhttp_add_header(evhttp_request_get_output_headers(req->req),
					  "Content-Security-Policy", CS_POLICY_HTML_CSP);
			send_owned(req, 200, "text/html; charset=utf-8", text);
		} else {
			send_owned(req, 200, "text/markdown; charset=utf-8", text);
		}
	} else {
		send_json(req, 200, policy);
	}
}

static void handle_readyz(api_call *req, cs_app *app, cs_store *store)
{
	cs_token_info info;
	cs_err tr = cs_token_get_info(app->token, &info);
	/* the store answers reads, and its writes succeed: the last write's
	 * outcome when recent, else a probe write (see ledger.h) */
	cs_err sr = cs_store_ping(store);
	const char *store_state = sr == CS_OK ? "ok" : cs_strerror(sr);
	const char *message = "not ready: the store does not answer";
	if (sr == CS_OK && (sr = cs_ledger_write_health(app->ledger, CS_LEDGER_READY_MAX_AGE_MS)) != CS_OK) {
		store_state = "writes fail";
		message = "not ready: the store cannot write";
	}
	if (tr != CS_OK)
		message = "not ready: the token does not answer";
	if (tr != CS_OK || sr != CS_OK) {
		send_json(req, 503, json_pack("{s:s, s:s, s:s, s:{s:s, s:s}}", "status", "unavailable",
					      "token", tr == CS_OK ? "ok" : cs_strerror(tr), "store", store_state,
					      "error", "code", tr != CS_OK ? "token_unavailable" : "store_unavailable",
					      "message", message));
		return;
	}
	send_json(req, 200, json_pack("{s:s, s:s, s:s}", "status", "ready", "token", "ok", "store", "ok"));
}

/* ---- dispatch ---------------------------------------------------------------- */

static int in_list(char **list, const cs_peer *peer)
{
	for (char **r = list; r != NULL && *r != NULL; r++)
		if (strcmp(*r, peer->identity) == 0)
			return 1;
	return 0;
}

static int is_reader(const cs_app *app, const cs_peer *peer)
{
	return in_list(app->cfg->audit.readers, peer);
}

static void handle_metrics(api_call *req, cs_app *app, const cs_peer *peer)
{
	if (!in_list(app->cfg->metrics.readers, peer)) {
		api_error(req, 403, "forbidden", "this identity may not read the metrics (metrics.readers)");
		return;
	}
	cs_metrics_gauges gauges = {.active_kid = app->signer != NULL ? cs_signer_kid(app->signer) : NULL};
	if (app->read_gauges != NULL)
		app->read_gauges(app->gauges_arg, &gauges);
	char *text = NULL;
	if (cs_metrics_render(&gauges, &text) != CS_OK) {
		api_error(req, 500, "internal_error", "out of memory");
		return;
	}
	send_owned(req, 200, "text/plain; version=0.0.4; charset=utf-8", text);
}

static void handle_audit_checkpoint(api_call *req, cs_store *store)
{
	char *jws = NULL;
	json_t *header = NULL, *claims = NULL;
	cs_err r = cs_audit_newest_checkpoint(store, &jws); /* the one to keep */
	if (r != CS_OK) {
		send_cs_error(req, r, "audit checkpoint");
		return;
	}
	/* decoded for convenience; verifiers check the JWS */
	(void)cs_jws_peek(jws, &header, &claims);
	send_json(req, 200, json_pack("{s:s, s:o?, s:o?}", "checkpoint", jws, "header", header,
				      "claims", claims));
	free(jws);
}

/* The export's objects into the answer's two arrays (cs_audit_export). */
static int add_export_object(void *arg, json_t *j)
{
	json_t **arrays = arg;
	const char *type = json_string_value(json_object_get(j, "type"));
	json_t *into = type != NULL && strcmp(type, "entry") == 0 ? arrays[0] : arrays[1];
	return json_array_append_new(into, j) != 0; /* never skip one silently */
}

static void handle_audit_export(api_call *req, cs_app *app, cs_store *store, const cs_peer *peer)
{
	if (!is_reader(app, peer)) {
		api_error(req, 403, "forbidden", "this identity may not read the audit log (audit.readers)");
		return;
	}
	const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req->req));
	int64_t from, next = 0;
	int limit;
	cs_api_error err;
	if (cs_api_decode_audit_query(query, &from, &limit, &err) != CS_OK) {
		send_api_error(req, &err);
		return;
	}
	/* the objects of credsign-admin audit export, one format (audit.h) */
	json_t *arrays[2] = {json_array(), json_array()};
	cs_err r = arrays[0] != NULL && arrays[1] != NULL
			   ? cs_audit_export(store, from, NULL, limit, add_export_object, arrays, &next)
			   : CS_E_NOMEM;
	if (r != CS_OK) {
		json_decref(arrays[0]);
		json_decref(arrays[1]);
		send_cs_error(req, r, "audit log");
		return;
	}
	send_json(req, 200, json_pack("{s:o, s:o, s:o}", "entries", arrays[0], "checkpoints", arrays[1],
				      "next_from_seq", next > 0 ? json_integer((json_int_t)next) : json_null()));
}

static void dispatch(api_call *req, cs_app *app, cs_store *store, const cs_peer *peer,
		     cs_api_route_id route, const char *path)
{
	switch (route) {
	case CS_ROUTE_GENERATE: handle_generate(req, app, peer); break;
	case CS_ROUTE_CERTIFY: handle_certify(req, app, store, peer); break;
	case CS_ROUTE_CERT: handle_cert(req, store, path + strlen("/cert/")); break;
	case CS_ROUTE_JWKS: handle_jwks(req, store); break;
	case CS_ROUTE_PRESETS: handle_presets(req, app); break;
	case CS_ROUTE_POLICY: handle_policy(req, app); break;
	case CS_ROUTE_AUDIT_CHECKPOINT: handle_audit_checkpoint(req, store); break;
	case CS_ROUTE_AUDIT: handle_audit_export(req, app, store, peer); break;
	case CS_ROUTE_HEALTHZ: send_json(req, 200, json_pack("{s:s}", "status", "ok")); break;
	case CS_ROUTE_READYZ: handle_readyz(req, app, store); break;
	case CS_ROUTE_METRICS: handle_metrics(req, app, peer); break;
	case CS_ROUTE_NONE: api_error(req, 404, "not_found", "no such route"); break;
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

/* Audit the call (unless its handler did, inside its own transaction) and
 * send its reply: the entry is durable before anything leaves. */
static void finish_call(api_call *call, cs_app *app, const cs_peer *peer, const char *request_id)
{
	api_call *req = call;
	if (call->store_failed) {
		/* the store could not write within audit.write_timeout_ms: a second
		 * attempt for the failure entry would only double the wait */
		cs_log_error("request %s (%s) failed and could not be audited: the store is unavailable",
			     request_id, call->audit.action != NULL ? call->audit.action : "request");
	} else if (!call->audited) {
		cs_audit_entry *e = &call->audit;
		e->actor = peer != NULL ? peer->identity : "unidentified";
		e->actor_cert_sha256 = peer != NULL ? peer->cert_sha256 : NULL;
		e->role = peer != NULL && is_reader(app, peer) ? "auditor" : "client";
		if (e->action == NULL)
			e->action = "request";
		e->outcome = call->status < 400 ? "success" : call->status < 500 ? "refused" : "failure";
		e->error_code = call->error_code[0] ? call->error_code : NULL;
		e->request_id = request_id;
		cs_err r = cs_audit_record(app->audit, app->ledger, e);
		if (r != CS_OK)
			/* the entry is not durable: nothing else may leave */
			api_error(req, 503, "audit_unavailable", "the audit log cannot record this request");
	}
	reply_send(req, request_id, app->cfg->server.timeout_ms);
}

static void new_request_id(cs_app *app, char out[CS_API_REQUEST_ID_MAX])
{
	cs_api_request_id(app->cfg->server.node_id, (long)++app->request_counter, out);
}

void cs_api_handle(struct evhttp_request *http, cs_app *app, cs_store *store, const cs_peer *peer)
{
	api_call call = {.req = http};
	api_call *req = &call;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(http);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	char request_id[CS_API_REQUEST_ID_MAX];
	new_request_id(app, request_id);
	call.audit.request_id = request_id;
	cs_api_route_id route = CS_ROUTE_NONE;
	cs_api_error err;
	if (path == NULL) {
		api_error(req, 400, "bad_request", "malformed request target");
	} else if (peer == NULL) {
		api_error(req, 403, "forbidden", "no verified client certificate");
	} else {
		cs_err r = cs_api_route(method_of(http), path, evhttp_uri_get_query(uri), &route,
					&req->audit.action, &err);
		if (req->audit.action == NULL) {
			/* probes (routes without an audit action) are not audited */
			if (r != CS_OK)
				send_api_error(req, &err);
			else
				dispatch(req, app, store, peer, route, path);
			reply_send(req, request_id, app->cfg->server.timeout_ms);
			return;
		}
		if (route == CS_ROUTE_NONE || route == CS_ROUTE_CERT)
			AUDIT_SET(req, object, path + (route == CS_ROUTE_CERT ? strlen("/cert/") : 0));
		if (r != CS_OK)
			send_api_error(req, &err);
		else
			dispatch(req, app, store, peer, route, path);
	}
	finish_call(&call, app, peer, request_id);
}

void cs_api_probe(struct evhttp_request *http, cs_app *app, cs_store *store)
{
	api_call call = {.req = http};
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(http);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	char request_id[CS_API_REQUEST_ID_MAX];
	new_request_id(app, request_id);
	cs_api_route_id route = CS_ROUTE_NONE;
	const char *action = NULL;
	cs_api_error err;
	cs_err r = path != NULL ? cs_api_route(method_of(http), path, evhttp_uri_get_query(uri), &route,
					       &action, &err)
				: CS_E_NOT_FOUND;
	if (route != CS_ROUTE_HEALTHZ && route != CS_ROUTE_READYZ)
		api_error(&call, 404, "not_found", "this listener serves /healthz and /readyz only");
	else if (r != CS_OK)
		send_api_error(&call, &err);
	else
		dispatch(&call, app, store, NULL, route, path);
	reply_send(&call, request_id, app->cfg->server.timeout_ms);
}

void cs_api_refuse(struct evhttp_request *http, cs_app *app, cs_store *store, const cs_peer *peer,
		   int status, const char *code, const char *message)
{
	(void)store; /* a refusal only writes its audit entry, through the ledger */
	api_call call = {.req = http};
	char request_id[CS_API_REQUEST_ID_MAX];
	new_request_id(app, request_id);
	call.audit.request_id = request_id;
	call.audit.action = "request";
	api_error(&call, status, code, message);
	finish_call(&call, app, peer, request_id);
}

int cs_validation_meets(const char *validated, const char *required)
{
	if (required == NULL)
		return 1;
	if (validated == NULL)
		return 0;
	return strcmp(validated, required) == 0 ||
	       (strcmp(required, "FIPS 140-2") == 0 && strcmp(validated, "FIPS 140-3") == 0);
}

/* One configured version against the token's: added to checked when set. */
static int check_token_version(json_t *checked, const char *name, const char *configured,
			       unsigned major, unsigned minor, char *problem, size_t cap)
{
	if (configured == NULL)
		return 1;
	char reported[16];
	snprintf(reported, sizeof(reported), "%u.%u", major, minor);
	int match = strcmp(configured, reported) == 0;
	json_object_set_new(checked, name,
			    json_pack("{s:s, s:s, s:b}", "configured", configured, "token", reported, "match",
				      match));
	if (!match) {
		size_t used = strlen(problem);
		snprintf(problem + used, cap - used, "%sthe token reports %s %s, validated at %s",
			 used > 0 ? "; " : "", name, reported, configured);
	}
	return match;
}

cs_err cs_app_validation_claim(const cs_config *cfg, const cs_token_info *info, const char *today,
			       json_t **claim, char *problem, size_t cap)
{
	const char *program =
		cfg->pkcs11.validation.program != NULL ? cfg->pkcs11.validation.program : "none";
	int none = strcmp(program, "none") == 0;
	problem[0] = '\0';
	json_t *checked = json_object();
	int ok = !none;
	if (!none && checked != NULL) {
		const char *hw = cfg->pkcs11.validation.hardware_version,
			   *fw = cfg->pkcs11.validation.firmware_version,
			   *lib = cfg->pkcs11.validation.library_version;
		ok &= check_token_version(checked, "hardware_version", hw, info->hw_major,
					  info->hw_minor, problem, cap);
		ok &= check_token_version(checked, "firmware_version", fw, info->fw_major,
					  info->fw_minor, problem, cap);
		ok &= check_token_version(checked, "library_version", lib, info->module_major,
					  info->module_minor, problem, cap);
	}
	if (ok && strcmp(program, "FIPS 140-2") == 0 && strcmp(today, CS_FIPS_140_2_SUNSET) > 0) {
		ok = 0;
		snprintf(problem, cap,
			 "FIPS 140-2 validations are historical since their sunset on " CS_FIPS_140_2_SUNSET
			 " (the CMVP's historical list): not an active validation");
	}
	/* s? is null when unset (program "none") */
	*claim = json_pack("{s:b, s:s, s:s?, s:s?, s:o, s:o}", "validated", ok, "program", program,
			   "certificate", cfg->pkcs11.validation.certificate, "module",
			   cfg->pkcs11.validation.module, "level",
			   none ? json_null() : json_integer(cfg->pkcs11.validation.level),
			   "checked_versions", checked);
	return *claim != NULL ? CS_OK : CS_E_NOMEM;
}

/* Build the entropy_source claim from what the token reports now; sets
 * *validated_program and problem[320]. Logs nothing. */
static cs_err describe(cs_app *app, const cs_token_info *info, json_t **claim, const char **validated_program,
		       char problem[320])
{
	json_t *validation = NULL;
	char version[16], hw[16], fw[16], today[11];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(today, sizeof(today), "%Y-%m-%d", &tm);
	cs_err r = cs_app_validation_claim(app->cfg, info, today, &validation, problem, 320);
	if (r != CS_OK)
		return r;
	snprintf(version, sizeof(version), "%u.%u", info->module_major, info->module_minor);
	snprintf(hw, sizeof(hw), "%u.%u", info->hw_major, info->hw_minor);
	snprintf(fw, sizeof(fw), "%u.%u", info->fw_major, info->fw_minor);
	const char *program = app->cfg->pkcs11.validation.program;
	int validated = json_is_true(json_object_get(validation, "validated"));
	*validated_program = validated ? program : NULL;
	/* what the token and module report, as they report it (through a proxy
	 * or network HSM client: the remote token's, and the client library's);
	 * software: where the commitment, hashes and TLS ran (OpenSSL, outside
	 * the token's boundary), and with which provider */
	*claim = json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s, s:b, s:s, s:s}, s:{s:s, s:s, s:s}, s:o, "
			   "s:{s:s, s:s}}",
			   "interface", "PKCS#11", "function", "C_GenerateRandom", "token", "label", info->label,
			   "manufacturer", info->manufacturer, "model", info->model, "serial", info->serial, "rng",
			   (info->flags & CKF_RNG) != 0, "hardware_version", hw, "firmware_version", fw, "module",
			   "description", info->module_description, "manufacturer", info->module_manufacturer,
			   "version", version, "validation", validation, "software", "library",
			   OpenSSL_version(OPENSSL_VERSION), "provider",
			   app->cfg->crypto.openssl_fips ? "fips" : "default");
	return *claim != NULL ? CS_OK : CS_E_NOMEM;
}

static void log_validation(const cs_app *app, const cs_token_info *info, const char *validated_program,
			   const char *problem)
{
	const cs_config *c = app->cfg;
	if (validated_program != NULL)
		cs_log_info("token validated: %s certificate #%s, module \"%s\", level %d; the token reports "
			    "hardware %u.%u and firmware %u.%u%s as configured",
			    c->pkcs11.validation.program, c->pkcs11.validation.certificate,
			    c->pkcs11.validation.module, c->pkcs11.validation.level, info->hw_major,
			    info->hw_minor, info->fw_major, info->fw_minor,
			    c->pkcs11.validation.library_version != NULL ? ", and the library version" : "");
	else if (problem[0] != '\0')
		cs_log_error("pkcs11.validation (%s certificate #%s) does not hold: %s; the token counts as not "
			     "validated and presets that require validation are refused",
			     c->pkcs11.validation.program, c->pkcs11.validation.certificate, problem);
	else
		cs_log_info("token not declared validated (pkcs11.validation program \"none\"): presets "
			    "that require validation are refused");
}

cs_err cs_app_describe_token(cs_app *app)
{
	cs_token_info info;
	unsigned long recoveries = cs_token_recoveries(app->token);
	cs_err r = cs_token_get_info(app->token, &info);
	if (r != CS_OK)
		return r;
	if ((r = describe(app, &info, &app->entropy_source, &app->validated_program, app->validation_problem)) !=
	    CS_OK)
		return r;
	pthread_mutex_init(&app->token_lock, NULL);
	app->described_recoveries = recoveries;
	snprintf(app->described_serial, sizeof(app->described_serial), "%s", info.serial);
	log_validation(app, &info, app->validated_program, app->validation_problem);
	return CS_OK;
}

/* Describe the token again after the pool recovered; the caller holds
 * token_lock. A changed description replaces the old one, logged and
 * audited; on failure the old one stays (the next request tries again). */
static void redescribe(cs_app *app, unsigned long recoveries)
{
	cs_token_info info;
	json_t *claim = NULL;
	const char *program = NULL;
	char problem[320];
	if (cs_token_get_info(app->token, &info) != CS_OK ||
	    describe(app, &info, &claim, &program, problem) != CS_OK)
		return;
	app->described_recoveries = recoveries;
	if (json_equal(claim, app->entropy_source)) {
		json_decref(claim);
		return;
	}
	int replaced = strcmp(info.serial, app->described_serial) != 0;
	cs_log_warn("the token's description changed after the pool recovered%s%s%s; certificates from now "
		    "on record the new one",
		    replaced ? " (serial " : "", replaced ? app->described_serial : "",
		    replaced ? " before): a different token" : "");
	log_validation(app, &info, program, problem);
	char object[96];
	snprintf(object, sizeof(object), "serial %s", info.serial);
	cs_audit_entry e = {.actor = "system", .role = "system", .action = "token.changed",
			    .object = object, .outcome = program != NULL || problem[0] == '\0' ? "success" : "failure",
			    .error_code = program == NULL && problem[0] != '\0' ? "validation_mismatch" : NULL};
	if (cs_audit_record(app->audit, app->ledger, &e) != CS_OK)
		cs_log_error("the token change could not be audited");
	json_decref(app->entropy_source);
	app->entropy_source = claim;
	app->validated_program = program;
	memcpy(app->validation_problem, problem, sizeof(problem));
	snprintf(app->described_serial, sizeof(app->described_serial), "%s", info.serial);
}

json_t *cs_app_entropy_source(cs_app *app, const char **validated_program, char *problem, size_t cap)
{
	unsigned long recoveries = cs_token_recoveries(app->token);
	pthread_mutex_lock(&app->token_lock);
	if (recoveries != app->described_recoveries)
		redescribe(app, recoveries);
	json_t *claim = json_incref(app->entropy_source);
	*validated_program = app->validated_program;
	snprintf(problem, cap, "%s", app->validation_problem);
	pthread_mutex_unlock(&app->token_lock);
	return claim;
}
