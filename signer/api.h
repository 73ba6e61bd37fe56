/*
 * api: the HTTP front of credsignd, called by the server for every
 * complete request (see server.h). It routes, decodes the request into a
 * service's typed request, calls the service (service.h: the operations,
 * the access decision and the audit entry live there, without HTTP),
 * encodes the result and maps errors to statuses. Nothing here decides
 * who may do what.
 *
 *   POST /api/generate              a credential under a preset (200)
 *   POST /api/generate-certificate  a compliance certificate (201)
 *   GET  /cert/{id}                 certificate, decoded claims, status (revoked?)
 *   GET  /cert/{id}.jws             the JWS (application/jose)
 *   POST /api/sign                  delegated signing: one item or a batch (signer)
 *   GET  /api/signatures/{id}       a signature record (signer or auditor of its profile)
 *   GET  /api/signatures?sha256=HEX the records of the bytes with that SHA-256, newest first
 *   GET  /.well-known/jwks.json     every certificate key that ever signed (under a warrant the
 *                                   daemon verifies: app.h), with its state and dates;
 *                                   ?profile=NAME: that signing profile's keys
 *   GET  /.well-known/credsign-rollover     the rollover statements (JWS JSON); ?profile=NAME
 *   GET  /.well-known/credsign-revocations  the signed revocation list (application/jwt)
 *   GET  /api/presets               preset definitions
 *   GET  /api/policy                a written policy for chosen presets
 *   GET  /api/audit                 audit entries and checkpoints (auditor)
 *   GET  /api/audit/checkpoint      the latest signed checkpoint (auditor of "*")
 *   GET  /healthz, /readyz          liveness; token and store usable (not audited)
 *   GET  /metrics                   Prometheus text (operator)
 *
 * HEAD is answered like GET (libevent sends no body); any other method on
 * a route is 405 with an Allow header; an unknown path is 404. A caller
 * that may not do a route's action at all (no grant of a role for it,
 * service.h: cs_service_admit) is refused with 403 before its input is
 * read; a rate limit answers 429 rate_limited with Retry-After.
 *
 * Every error is {"error":{"code":"...","message":"..."}} with a fitting
 * status. The credential is written once, into a response buffer that is
 * wiped when libevent releases it; it is never stored or logged.
 *
 * Input is strict: nothing a client sends is cut or ignored. Text limits
 * are counted in Unicode code points; client text quoted in an error
 * message is at most CS_API_QUOTE_CHARS characters, cut at a character
 * boundary and marked with "...", with invalid bytes and refused
 * characters shown as U+FFFD. The decoders below turn a path, query or
 * body into a typed request or an error (status, code, message) without
 * any I/O, so unit tests and the libFuzzer target call them directly.
 *
 * request_id: "<node_id>-<boot>-<n>": the configured node id, 12 lower-case
 * hex digits drawn at random once per process start, and a per-process
 * decimal counter from 1. Unique across restarts (48 random bits per start).
 */
#ifndef CS_API_H
#define CS_API_H

#include <stddef.h>
#include <stdint.h>

#include <event2/http.h>
#include <jansson.h>

#include "app.h"
#include "policy.h"
#include "preset.h"
#include "service.h"
#include "store.h"

/* Handle one request. caller is NULL when the TLS identity is unavailable.
 * The request's audit entry is durable before the response is sent; when
 * it cannot be written the response is 503 audit_unavailable instead. */
void cs_api_handle(struct evhttp_request *req, cs_app *app, cs_store *store, const cs_caller *caller);

/* Answer a request the server refuses before routing with the JSON error
 * (status, code, message), audited as action "request" like any other. */
/* The plain-HTTP probe listener (server.health_listen): /healthz and
 * /readyz only, no client identity, not audited; anything else is 404. */
void cs_api_probe(struct evhttp_request *req, cs_app *app, cs_store *store);

void cs_api_refuse(struct evhttp_request *req, cs_app *app, cs_store *store, const cs_caller *caller,
		   int status, const char *code, const char *message);

/* ---- limits (README, API section) ----------------------------------------- */

#define CS_API_TEXT_MAX CS_SERVICE_TEXT_MAX /* project, environment, system: characters (128) */
#define CS_API_PREFIX_MAX 16     /* api-key prefix: a-z 0-9 _ */
#define CS_API_STANDARDS_MAX CS_POLICY_STANDARDS_MAX /* /api/policy?standards= (32) */
#define CS_API_AUDIT_LIMIT_MAX CS_SERVICE_AUDIT_LIMIT_MAX /* 10,000 */
#define CS_API_QUOTE_CHARS 64    /* client text quoted in a message */
#define CS_API_QUOTE_BYTES (CS_API_QUOTE_CHARS * 4 + 4)
#define CS_API_ID_CHARS CS_SERVICE_ID_CHARS /* session and certificate ids: base64url of 16 bytes */
#define CS_API_REQUEST_ID_MAX 112

/* ---- client text ------------------------------------------------------------- */

/* Is this code point refused in client text? C0 and C1 controls and DEL,
 * every format character (Unicode category Cf: bidi embeddings, overrides
 * and isolates, LRM/RLM/ALM, zero-width characters, soft hyphen, BOM, tag
 * characters, ...), the line and paragraph separators, surrogates and
 * noncharacters. */
int cs_api_char_refused(uint32_t cp);

typedef enum {
	CS_TEXT_OK = 0,
	CS_TEXT_BAD_LENGTH,  /* empty or more than max_chars code points */
	CS_TEXT_BAD_UTF8,    /* not well-formed UTF-8 (or a NUL inside len) */
	CS_TEXT_REFUSED_CHAR /* a character cs_api_char_refused refuses */
} cs_text_check;

/* Check len bytes of client text: 1..max_chars code points, well-formed
 * UTF-8, no refused character. *chars gets the number of code points
 * (when not NULL and the text is well-formed). */
cs_text_check cs_api_text_check(const char *s, size_t len, size_t max_chars, size_t *chars);

/* Quote client text for a message: at most CS_API_QUOTE_CHARS code points,
 * cut at a character boundary, followed by "..." when cut; ill-formed bytes
 * and refused characters become U+FFFD. out has CS_API_QUOTE_BYTES bytes;
 * the result is always well-formed UTF-8. */
void cs_api_quote(const char *s, size_t len, char out[CS_API_QUOTE_BYTES]);

/* ---- decoded requests -------------------------------------------------------- */

typedef struct {
	int status;          /* 0: no error */
	char code[48];       /* the JSON error code */
	char message[400];   /* well-formed UTF-8 */
	const char *allow;   /* 405: the Allow header */
} cs_api_error;

typedef enum { CS_METHOD_GET, CS_METHOD_HEAD, CS_METHOD_POST, CS_METHOD_OTHER } cs_api_method;

typedef enum {
	CS_ROUTE_NONE,
	CS_ROUTE_GENERATE,
	CS_ROUTE_CERTIFY,
	CS_ROUTE_CERT,
	CS_ROUTE_JWKS,
	CS_ROUTE_PRESETS,
	CS_ROUTE_POLICY,
	CS_ROUTE_AUDIT,
	CS_ROUTE_AUDIT_CHECKPOINT,
	CS_ROUTE_ROLLOVER,
	CS_ROUTE_REVOCATIONS,
	CS_ROUTE_HEALTHZ,
	CS_ROUTE_READYZ,
	CS_ROUTE_METRICS,
	CS_ROUTE_SIGN,
	CS_ROUTE_SIGNATURE,
	CS_ROUTE_SIGNATURES, /* GET /api/signatures?sha256=HEX; its metrics name is "signature" */
	CS_ROUTE_INVENTORY,  /* GET /api/inventory (issue 19) */
} cs_api_route_id;

/* The route's name in metrics ("generate", ...; "other" for none). */
const char *cs_api_route_name(cs_api_route_id route);

/* The route of a path (the raw path, not decoded), its audit action (NULL
 * for the probes, "request" for an unknown path), and whether the method
 * and query fit it. CS_E_NOT_FOUND: unknown path (404 not_found);
 * CS_E_INVALID_ARG: 405 method_not_allowed with err->allow, or 400
 * unknown_field for a query on a route that takes none. *route and
 * *action are set in every case. */
cs_err cs_api_route(cs_api_method method, const char *path, const char *query,
		    cs_api_route_id *route, const char **action, cs_api_error *err);

/* A request body as a JSON object: at most max_body bytes (413
 * body_too_large naming the limit), valid JSON without duplicate keys or
 * NUL characters, an object (400 invalid_json). *out is the caller's. */
cs_err cs_api_parse_object(const char *body, size_t len, size_t max_body, json_t **out,
			   cs_api_error *err);

/* POST /api/generate, decoded and planned under its preset. The strings
 * point into doc; cs_generate_input_free releases it. */
typedef struct {
	json_t *doc;
	const cs_preset *preset;
	cs_plan plan;
	const char *project, *environment, *system, *prefix;
} cs_generate_input;

cs_err cs_api_decode_generate(const cs_preset_set *presets, const cs_wordlist *wordlist,
			      const char *body, size_t len, size_t max_body, cs_generate_input *out,
			      cs_api_error *err);
void cs_generate_input_free(cs_generate_input *in);

/* POST /api/generate-certificate: the session id (404 when it cannot be one). */
cs_err cs_api_decode_certify(const char *body, size_t len, size_t max_body,
			     char session_id[CS_API_ID_CHARS + 1], cs_api_error *err);

/* GET /cert/{id}[.jws]: rest is the path after "/cert/"; 404 not_found when
 * it is not an id. */
cs_err cs_api_decode_cert_path(const char *rest, char id[CS_API_ID_CHARS + 1], int *jws,
			       cs_api_error *err);

/* GET /api/policy?standards=a,b&format=json|markdown|html
 * [&organisation=&owner=&version=&scope=&effective_date=]: 1 to
 * CS_API_STANDARDS_MAX distinct, known presets (400 invalid_field, 404
 * unknown_preset); organisation, owner and version 1..CS_POLICY_TEXT_MAX,
 * scope 1..CS_POLICY_SCOPE_MAX characters, checked like the text fields of
 * POST /api/generate (cs_api_text_check); effective_date YYYY-MM-DD, a
 * date that exists. Each parameter at most once; no other parameter. A
 * value given here overrides the `policy` group of the configuration
 * (the policy service merges them); an empty buffer in cs_policy_input
 * (service.h): not given. */
cs_err cs_api_decode_policy(const cs_preset_set *presets, const char *query, cs_policy_input *out,
			    cs_api_error *err);

/* GET /api/audit?from_seq=&limit=&project=: decimal digits only, from_seq
 * 1 .. 2^63-1 (default 1), limit 1 .. CS_API_AUDIT_LIMIT_MAX (default
 * 1000); project (the entries of one project; default: the whole log)
 * checked like the text fields of POST /api/generate. */
cs_err cs_api_decode_audit_query(const char *query, cs_audit_query *out, cs_api_error *err);

/* GET /api/inventory?project=&environment=&due_before=&format=json|csv:
 * project and environment checked like the text fields of POST
 * /api/generate (environment allowed without project: every project's
 * records of that environment the caller may read); due_before
 * YYYY-MM-DD (that day's 00:00 UTC) or RFC 3339 UTC
 * (cs_inventory_time_parse); format json (default) or csv (*csv 1). Each
 * at most once, no other parameter: 400 invalid_field / unknown_field
 * naming the parameter. */
cs_err cs_api_decode_inventory_query(const char *query, cs_inventory_query *out, int *csv, cs_api_error *err);

/* GET /.well-known/jwks.json and /.well-known/credsign-rollover: the
 * optional query profile=NAME (nothing else; at most once). *profile: ""
 * without it. A name that cannot be a profile's
 * (^[a-z0-9][a-z0-9._-]{0,31}$): 404 unknown_profile (the service says so
 * for a well-formed name neither configured nor recorded with a key). */
cs_err cs_api_decode_profile_query(const char *query, char profile[CS_CONFIG_PROFILE_NAME_MAX + 1],
				   cs_api_error *err);

/* GET /api/signatures/{id}: rest is the path after "/api/signatures/";
 * 404 not_found when it is not an id. */
cs_err cs_api_decode_signature_path(const char *rest, char id[CS_API_ID_CHARS + 1], cs_api_error *err);

/* GET /api/signatures?sha256=HEX: the one parameter sha256 (required, at
 * most once), the SHA-256 of the signed bytes as 64 lower-case hex digits
 * (what records and audit entries show: signed_sha256); else 400
 * invalid_field (a missing, repeated or malformed sha256) or 400
 * unknown_field (another parameter). */
cs_err cs_api_decode_signatures_query(const char *query, char sha256[65], cs_api_error *err);

/* POST /api/sign decoded: {"profile","format",...} (one item) or
 * {"items":[item, ...]} (a batch: 1..batch_max items, else 413
 * batch_too_large; nothing beside "items"). The body: at most max_body
 * bytes (413 body_too_large, naming signing.max_request_bytes), a JSON
 * object (400 invalid_json); these fail the whole request (*err). An
 * item's own problems refuse that item only (its err, and
 * item.refused_code / refused_message for the service's audit entry):
 *   - members: profile, format (strings, required) and, by format,
 *     jws: payload (a JSON object); dsse: payload_type (a string) and
 *     payload (standard base64, padded; decoded at most max_body bytes);
 *     digest: digest {"alg":"SHA-256","value": 64 hex digits, or
 *     base64url / base64 (padded or not) of 32 bytes}; any other member:
 *     400 unknown_field; a missing or mistyped one, bad base64 or hex:
 *     400 invalid_field; an unknown format: 400 format_not_allowed.
 * Whether the profile exists and allows the format, payload type and size
 * is the service's decision (cs_service_sign). The items' strings point
 * into doc; cs_sign_input_free releases it. */
typedef struct {
	cs_sign_item item;
	cs_api_error err; /* status 0: decoded */
	uint8_t *body;    /* dsse: the decoded payload (malloc'd; item.body) */
} cs_api_sign_item;

typedef struct {
	json_t *doc;
	int batch; /* the items form */
	cs_api_sign_item *items;
	size_t n;
} cs_sign_input;

cs_err cs_api_decode_sign(const char *body, size_t len, size_t max_body, size_t batch_max, cs_sign_input *out,
			  cs_api_error *err);
void cs_sign_input_free(cs_sign_input *in);
/* The HTTP status of a sign refusal code (unknown_profile 400,
 * payload_too_large 413, forbidden 403, rate_limited 429, no_active_key
 * 503, ...; an unknown code: 500). */
int cs_api_sign_status(const char *code);

/* The next request id of this process (see the top of this file). */
void cs_api_request_id(const char *node_id, long counter, char out[CS_API_REQUEST_ID_MAX]);

#endif
