/* api: see api.h. */
#include "api.h"

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

#include "cs_log.h"
#include "generate.h"
#include "jose.h"
#include "policy.h"
#include "audit.h"
#include "wipe_alloc.h"

#define ID_BYTES 16
#define ID_CHARS 22 /* base64url of 16 bytes */
#define SALT_BYTES 16
#define TEXT_FIELD_MAX 128

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
	cs_audit_entry audit; /* handlers fill action, object, project, environment */
	int audited;          /* written inside the handler's own transaction */
	int store_failed;     /* the store already failed (or timed out) this request */
	/* the audit entry's own copies: handlers' buffers die before it is written */
	char object[256], project[TEXT_FIELD_MAX * 4 + 1], environment[TEXT_FIELD_MAX * 4 + 1];
};

/* Set an audit field from a value that may not outlive the handler. Bytes
 * that are not printable ASCII (a raw request path may carry anything) are
 * replaced, so every entry stays exportable as JSON. Project and
 * environment come from parsed JSON and are valid UTF-8 already. */
static const char *audit_copy(char *buf, size_t cap, const char *value, int ascii_only)
{
	if (value == NULL)
		return NULL;
	snprintf(buf, cap, "%s", value);
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
	struct evbuffer *buf = evbuffer_new();
	size_t len = req->body != NULL ? strlen(req->body) : 0;
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

/* A fresh identifier from the token: 16 bytes, base64url, 127 random bits.
 * The top bit is cleared so that the first character is a letter (A-Z,
 * a-f): an id never starts with '-' and is never taken for an option when
 * it is passed on a command line. */
static cs_err new_id(cs_app *app, char out[ID_CHARS + 1])
{
	uint8_t raw[ID_BYTES];
	cs_err r = cs_token_random(app->token, raw, sizeof(raw));
	if (r != CS_OK)
		return r;
	raw[0] &= 0x7f;
	char *s = cs_b64url_encode(raw, sizeof(raw));
	if (s == NULL)
		return CS_E_NOMEM;
	memcpy(out, s, ID_CHARS + 1);
	free(s);
	return CS_OK;
}

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

/* Parse the request body as a JSON object; sends the error itself. */
static json_t *read_json_object(api_call *req, const cs_app *app)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req->req);
	size_t len = evbuffer_get_length(in);
	if (len > (size_t)app->cfg->server.max_body_bytes) {
		api_error(req, 413, "body_too_large", "request body exceeds server.max_body_bytes");
		return NULL;
	}
	const char *body = (const char *)evbuffer_pullup(in, -1);
	json_error_t err;
	json_t *doc = len > 0 ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &err) : NULL;
	if (doc == NULL) {
		char msg[200];
		snprintf(msg, sizeof(msg), "request body is not valid JSON: %s",
			 len > 0 ? err.text : "empty body");
		api_error(req, 400, "invalid_json", msg);
		return NULL;
	}
	if (!json_is_object(doc)) {
		json_decref(doc);
		api_error(req, 400, "invalid_json", "request body must be a JSON object");
		return NULL;
	}
	return doc;
}

/* Every member must be one of `allowed`; sends the error itself. */
static int only_fields(api_call *req, json_t *doc, const char *const allowed[])
{
	const char *key;
	json_t *value;
	json_object_foreach(doc, key, value) {
		int known = 0;
		for (int i = 0; allowed[i] != NULL && !known; i++)
			known = strcmp(key, allowed[i]) == 0;
		if (!known) {
			char msg[200];
			snprintf(msg, sizeof(msg), "unknown field '%.64s'", key);
			api_error(req, 400, "unknown_field", msg);
			return 0;
		}
	}
	return 1;
}

static int field_error(api_call *req, const char *field, const char *what)
{
	char msg[200];
	snprintf(msg, sizeof(msg), "field '%s' %s", field, what);
	api_error(req, 400, "invalid_field", msg);
	return 0;
}

/* Optional text field: 1..128 characters, no control characters. */
static int text_field(api_call *req, json_t *doc, const char *name, const char **out)
{
	json_t *v = json_object_get(doc, name);
	*out = NULL;
	if (v == NULL)
		return 1;
	const char *s = json_string_value(v);
	if (s == NULL)
		return field_error(req, name, "must be a string");
	size_t n = strlen(s);
	if (n == 0 || n > TEXT_FIELD_MAX)
		return field_error(req, name, "must be 1 to 128 characters");
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return field_error(req, name, "must not contain control characters");
	*out = s;
	return 1;
}

static int int_field(api_call *req, json_t *doc, const char *name, int lo, int hi,
		     int *out)
{
	json_t *v = json_object_get(doc, name);
	if (v == NULL)
		return 1;
	if (!json_is_integer(v))
		return field_error(req, name, "must be an integer");
	json_int_t n = json_integer_value(v);
	if (n < lo || n > hi) {
		char what[64];
		snprintf(what, sizeof(what), "must be between %d and %d", lo, hi);
		return field_error(req, name, what);
	}
	*out = (int)n;
	return 1;
}

/* ---- POST /api/generate ------------------------------------------------------ */

typedef struct {
	const cs_preset *preset;
	cs_plan plan;
	const char *project, *environment, *system, *prefix;
} gen_request;

static int parse_generate(api_call *req, cs_app *app, json_t *doc, gen_request *g)
{
	static const char *const allowed[] = {"preset", "type", "length", "strength_bits", "project",
					      "environment", "system", "prefix", "exclude_ambiguous", NULL};
	cs_plan_request q = {0};
	memset(g, 0, sizeof(*g));
	if (!only_fields(req, doc, allowed))
		return 0;
	json_t *preset = json_object_get(doc, "preset");
	if (preset == NULL)
		return field_error(req, "preset", "is required");
	if (!json_is_string(preset))
		return field_error(req, "preset", "must be a string");
	if ((g->preset = cs_preset_find(app->presets, json_string_value(preset))) == NULL) {
		char msg[160];
		snprintf(msg, sizeof(msg), "unknown preset '%.64s' (GET /api/presets lists them)",
			 json_string_value(preset));
		api_error(req, 400, "unknown_preset", msg);
		return 0;
	}
	json_t *type = json_object_get(doc, "type");
	if (type != NULL && (!json_is_string(type) || (q.type = cs_type_parse(json_string_value(type))) < 0))
		return field_error(req, "type", "must be password, passphrase, api-key, hex or base64url");
	json_t *amb = json_object_get(doc, "exclude_ambiguous");
	if (amb != NULL && !json_is_boolean(amb))
		return field_error(req, "exclude_ambiguous", "must be true or false");
	q.exclude_ambiguous = amb != NULL && json_is_true(amb);
	if (!int_field(req, doc, "strength_bits", 1, 256, &q.strength_bits) ||
	    !int_field(req, doc, "length", 1, CS_CREDENTIAL_MAX - 1, &q.length) ||
	    !text_field(req, doc, "project", &g->project) ||
	    !text_field(req, doc, "environment", &g->environment) ||
	    !text_field(req, doc, "system", &g->system) || !text_field(req, doc, "prefix", &g->prefix))
		return 0;
	char why[300];
	cs_err r = cs_preset_plan(g->preset, app->wordlist, &q, &g->plan, why, sizeof(why));
	if (r == CS_E_INVALID_ARG) {
		api_error(req, 422, "type_not_allowed", why);
		return 0;
	}
	if (r != CS_OK) {
		api_error(req, 422, "below_minimum", why);
		return 0;
	}
	if (g->prefix != NULL) {
		if (g->plan.type != CS_TYPE_API_KEY)
			return field_error(req, "prefix", "is only allowed with type api-key");
		if (strlen(g->prefix) > 16)
			return field_error(req, "prefix", "must be 1 to 16 of a-z 0-9 _");
		for (const char *p = g->prefix; *p; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
				return field_error(req, "prefix", "must be 1 to 16 of a-z 0-9 _");
	}
	return 1;
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
static json_t *credential_claim(const cs_app *app, const gen_request *g, const char *salt,
				const char *commitment)
{
	const cs_plan *p = &g->plan;
	json_t *cred = json_pack("{s:s, s:i, s:f, s:s, s:{s:s, s:s, s:s}}", "type",
				 cs_type_name(p->type), "length", p->length, "entropy_bits",
				 p->entropy_bits, "entropy_method", "whole-candidate-rejection",
				 "commitment", "alg", "HMAC-SHA-256", "salt", salt, "value", commitment);
	if (cred == NULL)
		return NULL;
	if (p->type == CS_TYPE_PASSPHRASE) {
		json_object_set_new(cred, "length_unit", json_string("words"));
		json_object_set_new(cred, "separator", json_string("-"));
		json_object_set_new(cred, "wordlist",
				    json_pack("{s:s, s:s, s:I}", "id", app->cfg->server.wordlist_file,
					      "sha256", app->wordlist->sha256, "size",
					      (json_int_t)app->wordlist->count));
		return cred;
	}
	json_object_set_new(cred, "length_unit", json_string("characters"));
	json_object_set_new(cred, "charset", json_string(p->charset));
	json_object_set_new(cred, "classes", classes_json(p->spec.classes));
	if (p->spec.max_identical_run)
		json_object_set_new(cred, "max_identical_run", json_integer(p->spec.max_identical_run));
	if (p->spec.max_class_run)
		json_object_set_new(cred, "max_class_run", json_integer(p->spec.max_class_run));
	if (g->prefix != NULL)
		json_object_set_new(cred, "prefix", json_string(g->prefix));
	return cred;
}

/* The claims known at generation time, stored with the session. */
static json_t *session_claims(cs_app *app, const gen_request *g, json_t *cred, const cs_peer *peer,
			      const char *session_id, const char *generated_at)
{
	json_t *standards = json_array();
	for (size_t i = 0; i < g->preset->nstandards; i++)
		json_array_append_new(standards, json_string(g->preset->standards[i]));
	return json_pack(
		"{s:s, s:i, s:s, s:o, s:i, s:o, s:O, s:{s:s, s:s}, s:s?, s:s?, s:s?, s:s, s:s}", "preset",
		g->preset->name, "preset_version", g->preset->version, "preset_sha256", g->preset->sha256,
		"standards", standards, "strength_bits", g->plan.strength_bits, "credential", cred,
		"entropy_source", app->entropy_source, "subject", "identity", peer->identity,
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

/* Draw the credential (with its api-key prefix) into out[cap]. */
static cs_err draw_credential(cs_app *app, const gen_request *g, char *out, size_t cap)
{
	if (g->plan.type == CS_TYPE_PASSPHRASE)
		return cs_generate_passphrase(app->wordlist, (size_t)g->plan.length, token_rnd, app->token,
					      out, cap);
	size_t prefix_len = g->prefix != NULL ? strlen(g->prefix) + 1 : 0;
	if (prefix_len > 0)
		snprintf(out, cap, "%s_", g->prefix);
	return cs_generate_string(&g->plan.spec, token_rnd, app->token, out + prefix_len, cap - prefix_len);
}

static void handle_generate(api_call *req, cs_app *app, cs_store *store,
			    const cs_peer *peer)
{
	gen_request g;
	char credential[CS_CREDENTIAL_MAX * 12], session_id[ID_CHARS + 1], generated_at[32];
	uint8_t salt[SALT_BYTES];
	char *salt_b64 = NULL, *commitment = NULL, *claims_text = NULL;
	json_t *claims = NULL;
	cs_err r;
	json_t *doc = read_json_object(req, app);
	if (doc == NULL)
		return;
	if (!parse_generate(req, app, doc, &g))
		goto out;
	if ((r = draw_credential(app, &g, credential, sizeof(credential))) != CS_OK ||
	    (r = cs_token_random(app->token, salt, sizeof(salt))) != CS_OK ||
	    (r = new_id(app, session_id)) != CS_OK) {
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
	claims = cred != NULL ? session_claims(app, &g, cred, peer, session_id, generated_at) : NULL;
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
	if ((r = cs_store_session_put(store, &session, &req->audit)) != CS_OK) {
		send_cs_error(req, r, "storing the session and its audit entry");
		goto out;
	}
	req->audited = 1;
	cs_audit_committed(app->audit, store, &req->audit);
	send_json(req, 200,
		  json_pack("{s:s, s:s, s:i, s:s, s:s, s:i, s:f}", "credential", credential,
			    "generation_session_id", session_id, "expires_in", CS_SESSION_TTL_SECONDS,
			    "preset", g.preset->name, "type", cs_type_name(g.plan.type), "length",
			    g.plan.length, "entropy_bits", g.plan.entropy_bits));
	cs_log_info("generated preset=%s type=%s length=%d session=%s identity=%s", g.preset->name,
		    cs_type_name(g.plan.type), g.plan.length, session_id, peer->identity);
out:
	OPENSSL_cleanse(credential, sizeof(credential));
	OPENSSL_cleanse(salt, sizeof(salt));
	free(salt_b64);
	free(commitment);
	free(claims_text);
	json_decref(claims);
	json_decref(doc);
}

/* ---- POST /api/generate-certificate --------------------------------------- */

/* Add the certification claims to the session's and sign (outside any
 * store transaction: the token may be slow). */
static cs_err make_certificate(cs_app *app, const char *session_claims, const char *cert_id,
			       int64_t now, char **jws, char **claims_out)
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
	if (r == CS_OK &&
	    (*claims_out = json_dumps(claims, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(12))) == NULL)
		r = CS_E_NOMEM;
	json_decref(claims);
	return r;
}

static void handle_certify(api_call *req, cs_app *app, cs_store *store,
			   const cs_peer *peer)
{
	static const char *const allowed[] = {"generation_session_id", NULL};
	char cert_id[ID_CHARS + 1], project[TEXT_FIELD_MAX * 4 + 1], environment[TEXT_FIELD_MAX * 4 + 1];
	char *jws = NULL, *claims = NULL, *session_claims = NULL;
	json_t *doc = read_json_object(req, app);
	if (doc == NULL)
		return;
	if (!only_fields(req, doc, allowed))
		goto out;
	json_t *sid = json_object_get(doc, "generation_session_id");
	if (sid == NULL) {
		field_error(req, "generation_session_id", "is required");
		goto out;
	}
	if (!json_is_string(sid)) {
		field_error(req, "generation_session_id", "must be a string");
		goto out;
	}
	if (!valid_id(json_string_value(sid))) {
		api_error(req, 404, "not_found", "no such generation session");
		goto out;
	}
	const char *session_id = json_string_value(sid);
	AUDIT_SET(req, object, session_id);
	int64_t now = now_ms();
	cs_err r = cs_store_session_claims(store, session_id, peer->cert_sha256, now, &session_claims);
	if (r == CS_OK)
		r = new_id(app, cert_id);
	if (r == CS_OK)
		r = make_certificate(app, session_claims, cert_id, now, &jws, &claims);
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
		r = cs_store_cert_put(store, session_id, cert_id, cs_signer_kid(app->signer), jws, claims,
				      now, &req->audit);
		if (r == CS_OK) {
			req->audited = 1;
			cs_audit_committed(app->audit, store, &req->audit);
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
	cs_log_info("certified session=%s cert=%s identity=%s", json_string_value(sid), cert_id,
		    peer->identity);
out:
	free(jws);
	free(claims);
	free(session_claims);
	json_decref(doc);
}

/* ---- GET routes ------------------------------------------------------------ */

static void handle_cert(api_call *req, cs_store *store, const char *rest)
{
	char id[ID_CHARS + 8];
	int raw = 0;
	size_t n = strlen(rest);
	if (n > 4 && strcmp(rest + n - 4, ".jws") == 0) {
		raw = 1;
		n -= 4;
	}
	if (n >= sizeof(id)) {
		api_error(req, 404, "not_found", "no such certificate");
		return;
	}
	memcpy(id, rest, n);
	id[n] = '\0';
	if (!valid_id(id)) {
		api_error(req, 404, "not_found", "no such certificate");
		return;
	}
	char *jws = NULL, *claims = NULL;
	cs_err r = cs_store_cert_get(store, id, &jws, &claims);
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
	struct evkeyvalq params;
	const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req->req));
	char *names[32], list[1024], why[200];
	size_t n = 0;
	TAILQ_INIT(&params);
	if (query != NULL && evhttp_parse_query_str(query, &params) != 0) {
		api_error(req, 400, "invalid_field", "malformed query string");
		return;
	}
	const char *standards = NULL, *format = "json";
	struct evkeyval *kv;
	TAILQ_FOREACH(kv, &params, next) {
		if (strcmp(kv->key, "standards") == 0)
			standards = kv->value;
		else if (strcmp(kv->key, "format") == 0)
			format = kv->value;
		else {
			snprintf(why, sizeof(why), "unknown parameter '%.64s'", kv->key);
			api_error(req, 400, "unknown_field", why);
			goto out;
		}
	}
	if (standards == NULL || strlen(standards) >= sizeof(list)) {
		api_error(req, 400, "invalid_field", "parameter 'standards' (comma-separated presets) is required");
		goto out;
	}
	if (strcmp(format, "json") != 0 && strcmp(format, "markdown") != 0) {
		api_error(req, 400, "invalid_field", "parameter 'format' must be json or markdown");
		goto out;
	}
	snprintf(list, sizeof(list), "%s", standards);
	for (char *save = NULL, *t = strtok_r(list, ",", &save); t != NULL && n < 32;
	     t = strtok_r(NULL, ",", &save))
		names[n++] = t;
	json_t *policy = NULL;
	cs_err r = cs_policy_build(app->presets, app->wordlist, (const char *const *)names, n, &policy,
				   why, sizeof(why));
	if (r != CS_OK) {
		api_error(req, r == CS_E_NOT_FOUND ? 404 : 400,
			     r == CS_E_NOT_FOUND ? "unknown_preset" : "invalid_field", why);
		goto out;
	}
	if (strcmp(format, "markdown") == 0) {
		char *md = cs_policy_markdown(policy);
		json_decref(policy);
		if (md == NULL)
			send_cs_error(req, CS_E_NOMEM, "policy");
		else
			send_owned(req, 200, "text/markdown; charset=utf-8", md);
	} else {
		send_json(req, 200, policy);
	}
out:
	evhttp_clear_headers(&params);
}

static void handle_readyz(api_call *req, cs_app *app, cs_store *store)
{
	cs_token_info info;
	cs_err tr = cs_token_get_info(app->token, &info);
	cs_err sr = cs_store_ping(store);
	if (tr != CS_OK || sr != CS_OK) {
		send_json(req, 503, json_pack("{s:s, s:s, s:s, s:{s:s, s:s}}", "status", "unavailable",
					      "token", cs_strerror(tr), "store", cs_strerror(sr),
					      "error", "code", tr != CS_OK ? "token_unavailable" : "store_unavailable",
					      "message", "not ready"));
		return;
	}
	send_json(req, 200, json_pack("{s:s, s:s, s:s}", "status", "ready", "token", "ok", "store", "ok"));
}

/* ---- dispatch ---------------------------------------------------------------- */

static int method_is(api_call *req, enum evhttp_cmd_type want)
{
	if (evhttp_request_get_command(req->req) == want)
		return 1;
	api_error(req, 405, "method_not_allowed", want == EVHTTP_REQ_POST ? "use POST" : "use GET");
	return 0;
}

static int is_reader(const cs_app *app, const cs_peer *peer)
{
	for (char **r = app->cfg->audit.readers; r != NULL && *r != NULL; r++)
		if (strcmp(*r, peer->identity) == 0)
			return 1;
	return 0;
}

static void handle_audit_checkpoint(api_call *req, cs_store *store)
{
	char *jws = NULL;
	json_t *header = NULL, *claims = NULL;
	cs_err r = cs_store_checkpoint_latest(store, &jws);
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

typedef struct {
	json_t *entries;
	int failed;
} export_ctx;

static int add_entry(void *arg, const cs_audit_entry *e, const uint8_t prev[32], const uint8_t hash[32])
{
	export_ctx *x = arg;
	json_t *j = cs_audit_entry_json(e, prev, hash);
	if (j == NULL) { /* never skip an entry silently */
		x->failed = 1;
		return 1;
	}
	json_array_append_new(x->entries, j);
	return 0;
}

static int add_checkpoint(void *arg, int64_t first, int64_t last, const uint8_t head[32],
			  const char *ts, const char *node, const char *kind, const char *jws)
{
	export_ctx *x = arg;
	(void)head;
	json_t *j = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s}", "first_seq", (json_int_t)first,
			      "last_seq", (json_int_t)last, "time", ts, "node", node, "kind", kind, "jws",
			      jws);
	if (j == NULL || json_array_append_new(x->entries, j) != 0) {
		x->failed = 1; /* never skip a checkpoint silently */
		return 1;
	}
	return 0;
}

static void handle_audit_export(api_call *req, cs_app *app, cs_store *store, const cs_peer *peer)
{
	if (!is_reader(app, peer)) {
		api_error(req, 403, "forbidden", "this identity may not read the audit log (audit.readers)");
		return;
	}
	struct evkeyvalq params;
	const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req->req));
	long long from = 1, limit = 1000;
	TAILQ_INIT(&params);
	if (query != NULL && evhttp_parse_query_str(query, &params) != 0) {
		api_error(req, 400, "invalid_field", "malformed query string");
		return;
	}
	struct evkeyval *kv;
	TAILQ_FOREACH(kv, &params, next) {
		char *end = NULL;
		long long v = strtoll(kv->value, &end, 10);
		int bad = end == kv->value || *end != '\0';
		if (strcmp(kv->key, "from_seq") == 0 && !bad && v >= 1)
			from = v;
		else if (strcmp(kv->key, "limit") == 0 && !bad && v >= 1 && v <= 10000)
			limit = v;
		else {
			api_error(req, 400, "invalid_field", "parameters: from_seq >= 1, limit 1..10000");
			evhttp_clear_headers(&params);
			return;
		}
	}
	evhttp_clear_headers(&params);
	export_ctx x = {json_array(), 0}, cps = {json_array(), 0};
	cs_err r = cs_store_audit_each(store, from, limit, add_entry, &x);
	if (r == CS_OK && x.failed)
		r = CS_E_STORE;
	if (r == CS_OK)
		r = cs_store_checkpoints_each(store, add_checkpoint, &cps);
	if (r == CS_OK && cps.failed)
		r = CS_E_STORE;
	if (r != CS_OK) {
		json_decref(x.entries);
		json_decref(cps.entries);
		send_cs_error(req, r, "audit log");
		return;
	}
	send_json(req, 200, json_pack("{s:o, s:o}", "entries", x.entries, "checkpoints", cps.entries));
}

static void dispatch(api_call *req, cs_app *app, cs_store *store, const cs_peer *peer, const char *path)
{
	if (strcmp(path, "/api/generate") == 0) {
		req->audit.action = "generate";
		if (method_is(req, EVHTTP_REQ_POST))
			handle_generate(req, app, store, peer);
	} else if (strcmp(path, "/api/generate-certificate") == 0) {
		req->audit.action = "certify";
		if (method_is(req, EVHTTP_REQ_POST))
			handle_certify(req, app, store, peer);
	} else if (strncmp(path, "/cert/", 6) == 0) {
		req->audit.action = "cert.read";
		AUDIT_SET(req, object, path + 6);
		if (method_is(req, EVHTTP_REQ_GET))
			handle_cert(req, store, path + 6);
	} else if (strcmp(path, "/.well-known/jwks.json") == 0) {
		req->audit.action = "jwks.read";
		if (method_is(req, EVHTTP_REQ_GET))
			handle_jwks(req, store);
	} else if (strcmp(path, "/api/presets") == 0) {
		req->audit.action = "presets.read";
		if (method_is(req, EVHTTP_REQ_GET))
			handle_presets(req, app);
	} else if (strcmp(path, "/api/policy") == 0) {
		req->audit.action = "policy.read";
		if (method_is(req, EVHTTP_REQ_GET))
			handle_policy(req, app);
	} else if (strcmp(path, "/api/audit/checkpoint") == 0) {
		req->audit.action = "audit.checkpoint.read";
		if (method_is(req, EVHTTP_REQ_GET))
			handle_audit_checkpoint(req, store);
	} else if (strcmp(path, "/api/audit") == 0) {
		req->audit.action = "audit.read";
		if (method_is(req, EVHTTP_REQ_GET))
			handle_audit_export(req, app, store, peer);
	} else {
		req->audit.action = "request";
		AUDIT_SET(req, object, path);
		api_error(req, 404, "not_found", "no such route");
	}
}

void cs_api_handle(struct evhttp_request *http, cs_app *app, cs_store *store, const cs_peer *peer)
{
	api_call call = {.req = http};
	api_call *req = &call;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(http);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	char request_id[48];
	snprintf(request_id, sizeof(request_id), "%s-%ld", app->cfg->server.node_id,
		 (long)++app->request_counter);
	call.audit.request_id = request_id;
	if (path == NULL) {
		api_error(req, 400, "bad_request", "malformed request target");
	} else if (peer == NULL) {
		api_error(req, 403, "forbidden", "no verified client certificate");
	} else if (strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0) {
		/* probes are not audited */
		if (method_is(req, EVHTTP_REQ_GET)) {
			if (path[1] == 'h')
				send_json(req, 200, json_pack("{s:s}", "status", "ok"));
			else
				handle_readyz(req, app, store);
		}
		reply_send(req, request_id, app->cfg->server.timeout_ms);
		return;
	} else {
		dispatch(req, app, store, peer, path);
	}
	if (call.store_failed) {
		/* the store could not write within audit.write_timeout_ms: a second
		 * attempt for the failure entry would only double the wait */
		cs_log_error("request %s (%s) failed and could not be audited: the store is unavailable",
			     request_id, call.audit.action != NULL ? call.audit.action : "request");
	} else if (!call.audited) {
		cs_audit_entry *e = &call.audit;
		e->actor = peer != NULL ? peer->identity : "unidentified";
		e->actor_cert_sha256 = peer != NULL ? peer->cert_sha256 : NULL;
		e->role = peer != NULL && is_reader(app, peer) ? "auditor" : "client";
		if (e->action == NULL)
			e->action = "request";
		e->outcome = call.status < 400 ? "success" : call.status < 500 ? "refused" : "failure";
		e->error_code = call.error_code[0] ? call.error_code : NULL;
		e->request_id = request_id;
		cs_err r = cs_audit_record(app->audit, store, e);
		if (r != CS_OK)
			/* the entry is not durable: nothing else may leave */
			api_error(req, 503, "audit_unavailable", "the audit log cannot record this request");
	}
	reply_send(req, request_id, app->cfg->server.timeout_ms);
}

cs_err cs_app_describe_token(cs_app *app)
{
	cs_token_info info;
	cs_err r = cs_token_get_info(app->token, &info);
	if (r != CS_OK)
		return r;
	char version[16];
	snprintf(version, sizeof(version), "%u.%u", info.module_major, info.module_minor);
	app->entropy_source = json_pack(
		"{s:s, s:s, s:{s:s, s:s, s:s, s:s, s:b}, s:{s:s, s:s, s:s}, s:s}", "interface", "PKCS#11",
		"function", "C_GenerateRandom", "token", "label", info.label, "manufacturer",
		info.manufacturer, "model", info.model, "serial", info.serial, "rng",
		(info.flags & CKF_RNG) != 0, "module", "description", info.module_description,
		"manufacturer", info.module_manufacturer, "version", version, "validation",
		app->cfg->pkcs11.validation);
	return app->entropy_source != NULL ? CS_OK : CS_E_NOMEM;
}
