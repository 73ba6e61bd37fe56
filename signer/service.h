/*
 * service: the appliance's operations, without HTTP.
 *
 * Each service takes a typed request and the request context (who asks,
 * under which access rules, the request's audit entry) and returns a
 * typed result and a cs_err. No libevent, no HTTP status: a front end
 * (api.c today; the delegated-signing API and a key process behind a
 * socket later) decodes its input into these requests, calls the
 * service, and encodes the result or maps the error (cs_err, and
 * rq->problem when the service said more).
 *
 * Authorisation is decided here and only here: every service calls
 * cs_service_authorize first (with the scope it asks for: project,
 * environment, preset), which asks the access rules the request started
 * with (access.h) and, when they refuse, writes the refusal's audit entry
 * at once: action, the project and environment asked for, error_code
 * forbidden (or rate_limited) and the reason, naming the missing grant, in
 * the entry's object. So no front end can skip the decision or its audit.
 * cs_service_admit is the same decision before a request's scope is known
 * (the caller holds a grant of a role that can do the action at all): a
 * front end calls it before it decodes input, so that an identity without
 * a grant is refused (403) whatever it sends; the services call it too
 * where their scope comes from stored state (certify: the session; a
 * certificate: its project). Public by nature, and never decided: the
 * JWKS, the rollover statements, the revocation list and readiness
 * (cs_service_jwks, cs_service_rollovers, cs_service_revocations,
 * cs_service_readiness).
 *
 * Every audited request gets exactly one audit entry: written inside the
 * state change's transaction (generate, certify), at a refusal
 * (cs_service_authorize, cs_service_admit, a session of another client),
 * or by cs_service_record when the front end has its answer. When an
 * entry cannot be written, rq->audit_failed is set: nothing may be
 * answered then but "audit unavailable" (503).
 *
 * A request takes its own reference to the access rules in force at
 * cs_service_begin (access.h, cs_access_acquire): a SIGHUP that swaps
 * them does not change the decisions of a request in flight. It takes the
 * signing key in force the same way (certsign.h, cs_signer_acquire): a
 * key switch while it runs does not change the key it signs with.
 *
 * Secrets: a generated credential lives in cs_generate_result's buffer,
 * from OpenSSL's secure heap (locked, not dumped; wipe_alloc.h,
 * cs_secret_alloc) while it has room, until cs_generate_result_wipe; it is
 * never stored or logged.
 */
#ifndef CS_SERVICE_H
#define CS_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "access.h"
#include "app.h"
#include "audit.h"
#include "generate.h"
#include "policy.h"
#include "preset.h"
#include "store.h"

#define CS_SERVICE_ID_CHARS 22   /* session and certificate ids: base64url of 16 bytes */
#define CS_SERVICE_TEXT_MAX 128  /* project, environment, system: characters */
#define CS_SERVICE_TEXT_BYTES (CS_SERVICE_TEXT_MAX * 4 + 1)
/* an audit object: an id, a path (cut at 255 bytes), or a refusal's reason */
#define CS_SERVICE_OBJECT_BYTES 400

/* The caller: a verified client certificate's identity (its first URI SAN,
 * tls.h) and the certificate's SHA-256 (hex). */
typedef struct {
	char identity[256];
	char cert_sha256[65];
} cs_caller;

/* What a service said about its failure, beyond the cs_err. */
typedef struct {
	char code[48];     /* the error code for the caller ("forbidden", "token_not_validated"); "" */
	char message[400]; /* for the caller; well-formed UTF-8; "" */
} cs_service_problem;

/* One request: fill with cs_service_begin, end with cs_service_end. */
typedef struct {
	cs_app *app;
	cs_store *store;         /* this thread's own connection (reads) */
	const cs_caller *caller; /* NULL: no verified client certificate */
	cs_access *access;       /* the rules the request started with (its own reference) */
	cs_signer *signer;       /* the key in force when it started (its own reference); NULL: none */
	int certificates_public; /* certificates.public when the request started */
	/* the request's audit entry (action set at begin; services fill the
	 * rest) and the copies its strings point to */
	cs_audit_entry audit;
	char object[CS_SERVICE_OBJECT_BYTES], project[CS_SERVICE_TEXT_BYTES],
		environment[CS_SERVICE_TEXT_BYTES], role[32], request_id[128], error_code[48];
	int audited;      /* the entry is written (or its write failed: audit_failed) */
	int audit_failed; /* it could not be written: answer 503 audit_unavailable, nothing else */
	int store_failed; /* the store failed this request: its failure entry is not attempted */
	cs_service_problem problem;
	int retry_after; /* refused by a rate limit: seconds until a request could pass */
} cs_service_req;

/* Start a request: takes a reference to the access rules and to the
 * signing key in force.
 * action: the audit action ("generate", "cert.read", ..., "request");
 * request_id: copied. */
void cs_service_begin(cs_service_req *rq, cs_app *app, cs_store *store, const cs_caller *caller,
		      const char *action, const char *request_id);
/* Release the request's references (its entry must be written by then). */
void cs_service_end(cs_service_req *rq);

/* Set the audit entry's object, project or environment (copied; NULL
 * clears). An object that is not printable ASCII is sanitised; one longer
 * than 255 bytes is cut and ends in "...". */
void cs_service_set_object(cs_service_req *rq, const char *object);
void cs_service_set_scope(cs_service_req *rq, const char *project, const char *environment);

/* The decision (see the top of this file). CS_OK: allowed (the entry's
 * role becomes the allowing grant's role, and a rate-limited grant's
 * bucket pays one token). CS_E_FORBIDDEN: refused and audited;
 * rq->problem says why (code "forbidden", or "rate_limited" with
 * rq->retry_after > 0); rq->audit_failed when the entry could not be
 * written. A NULL scope is the empty scope. */
cs_err cs_service_authorize(cs_service_req *rq, cs_access_action action, const cs_access_scope *scope)
	__attribute__((warn_unused_result));
/* The decision before the scope is known: whether the caller holds a
 * grant of a role that can do action in some scope (cert.read: always
 * with certificates.public). No rate is charged. CS_OK or CS_E_FORBIDDEN
 * as above (the reason: "no generator grant (generate needs one)"). */
cs_err cs_service_admit(cs_service_req *rq, cs_access_action action) __attribute__((warn_unused_result));

/* Write the request's audit entry unless it is written: outcome
 * "success", "refused" or "failure", error_code the caller's error code or
 * NULL. When the store already failed this request, nothing is attempted
 * (logged). CS_OK when durable (or not attempted); otherwise
 * rq->audit_failed is set. */
cs_err cs_service_record(cs_service_req *rq, const char *outcome, const char *error_code);

/* ---- the rules in force ---------------------------------------------------------- */

/* Install the access rules of cfg (its access.grants and
 * certificates.public) in app: at start, once the audit log is open.
 * Each identity that holds both generator and auditor rights is warned of
 * in the log and audited (action access.conflict, object naming the
 * identity and both grants, outcome failure, error_code
 * separation_of_duties). */
cs_err cs_service_rules_start(cs_app *app, const cs_config *cfg) __attribute__((warn_unused_result));
/* SIGHUP: read the configuration file again (app->cfg->file) and swap in
 * the rules of its access.grants and certificates.public; requests in
 * flight keep the rules they started with. Other settings need a
 * restart. When the file does not load (each problem logged) or its
 * grants name unknown presets or signing profiles the daemon does not
 * have in force (a new profile needs a restart), the rules in force stay;
 * signing settings that differ from those in force are warned of (they
 * take effect at restart). Audited
 * (access.reload, outcome success or failure, error_code config_invalid),
 * conflicts as at start. */
cs_err cs_service_rules_reload(cs_app *app);
/* Refusals of callers without a usable identity (a certificate the CA
 * issued whose identity cannot be read: a CN only, a URI SAN too long)
 * cost them nothing and name no one, so a flood of them could grow the
 * audit log without bound: the first of each (action, error code) per
 * interval is audited as an entry of its own, the others are counted, and
 * this writes one entry per key with a count since the last call (action
 * request.refusals, actor "unidentified", error_code the code, object
 * "action=A count=N first=TS last=TS"). A verified client's refusals are
 * all audited one by one. Called by the server every
 * audit.refusal_summary_seconds. At most CS_REQUEST_REFUSAL_KEYS keys per
 * interval; refusals beyond them are counted under "*". Returns the
 * entries written. */
#define CS_REQUEST_REFUSAL_KEYS 256
int64_t cs_service_flush_refusals(cs_app *app);
void cs_service_rules_stop(cs_app *app);

/* ---- generate ------------------------------------------------------------------ */

typedef struct {
	const cs_preset *preset;
	const cs_plan *plan; /* planned under the preset (cs_preset_plan; not copied: it points into itself) */
	const char *project, *environment, *system, *prefix; /* NULL: not given */
} cs_generate_request;

#define CS_GENERATE_CREDENTIAL_BYTES (CS_CREDENTIAL_MAX * 12)

typedef struct {
	/* CS_GENERATE_CREDENTIAL_BYTES from cs_secret_alloc (the secure heap
	 * while it has room), NUL-terminated; NULL unless cs_service_generate
	 * returned CS_OK. Wiped and released by cs_generate_result_wipe. */
	char *credential;
	char session_id[CS_SERVICE_ID_CHARS + 1];
	int expires_in; /* seconds */
	const char *preset, *type;
	int length;
	double entropy_bits;
} cs_generate_result;

/* A credential from the token's RNG and its generation session (stored
 * with the audit entry in one transaction). Needs a generator grant for
 * the project, environment and preset. A preset that requires a
 * validated token the token is not: CS_E_UNPROCESSABLE with problem code
 * token_not_validated. */
cs_err cs_service_generate(cs_service_req *rq, const cs_generate_request *in, cs_generate_result *out)
	__attribute__((warn_unused_result));
/* Wipes the result and releases its credential (out->credential NULL after);
 * call it after every cs_service_generate, whatever it returned. */
void cs_generate_result_wipe(cs_generate_result *out);

/* ---- certify ------------------------------------------------------------------- */

typedef struct {
	char cert_id[CS_SERVICE_ID_CHARS + 1];
	char *jws;     /* malloc'd */
	char url[600]; /* server.public_base_url/cert/ID */
} cs_certify_result;

/* Certify a generation session of this client certificate: refused
 * (CS_E_FORBIDDEN, audited) when it belongs to another, or when no
 * generator grant covers its project, environment and preset today;
 * CS_E_NOT_FOUND, CS_E_SESSION_USED, CS_E_SESSION_EXPIRED. Signed with the
 * key the request took at its start; none in force (the store has no
 * active key): CS_E_NO_ACTIVE_KEY, problem code no_active_key, nothing
 * stored. */
cs_err cs_service_certify(cs_service_req *rq, const char *session_id, cs_certify_result *out)
	__attribute__((warn_unused_result));
void cs_certify_result_free(cs_certify_result *out);

/* ---- reads --------------------------------------------------------------------- */

/* Whether a certificate stands: revoked_at and reason are malloc'd when
 * revoked, else NULL; the signing key's state (cs_cert_status_free). */
typedef struct {
	int revoked;
	char *revoked_at, *reason;
	/* the signing key's state now ("active", "retired", "compromised") and,
	 * when compromised, since when: a compromised key's certificates fail
	 * verification whatever their date */
	char *key_status, *key_compromised_at;
} cs_cert_status;
void cs_cert_status_free(cs_cert_status *status);

/* A certificate: its JWS and its claims as signed (both malloc'd), and,
 * when status is not NULL, whether it is revoked. Needs an auditor or
 * generator grant for its project, or certificates.public.
 * CS_E_NOT_FOUND. */
cs_err cs_service_cert_get(cs_service_req *rq, const char *cert_id, char **jws, char **claims_json,
			   cs_cert_status *status) __attribute__((warn_unused_result));
/* Every key that ever signed (cs_service_key_published) under a warrant
 * (app.h, cs_app_key_published: a key the daemon would have signed with;
 * one without is left out and logged once), oldest first, read in one
 * snapshot: its JWK with "status", "created_at" and, when set, "activated_at",
 * "retired_at", "compromised_at", "destroyed_at" and "x5c" (the registered
 * chain). profile NULL: the certificate keys only (keys without a
 * profile); else that signing profile's keys only: of a profile in
 * signing.profiles, or of one no longer configured whose keys the store
 * holds (neither: CS_E_NOT_FOUND, problem code unknown_profile), each
 * with "formats_signed": the formats of the records it signed, sorted
 * ([] when none; one indexed store query per key): whether it ever
 * signed bare digests, whatever the profile allows now. Public. */
cs_err cs_service_jwks(cs_service_req *rq, const char *profile, json_t **keys) __attribute__((warn_unused_result));
/* The JWKS document: {"keys": cs_service_jwks's list} and, for a
 * profile, "profile": what it is for, so that a relying party knows
 * whether its keys also sign bare digests: a configured profile
 * {"name", "formats": ["jws", "dsse", "digest" as allowed], "typ" (jws),
 * "payload_types" (dsse), "configured": true}; a profile no longer
 * configured whose keys the store holds {"name", "configured": false}
 * (its keys still verify what they signed; it signs nothing now). Neither:
 * CS_E_NOT_FOUND, problem code unknown_profile. Public. */
cs_err cs_service_jwks_doc(cs_service_req *rq, const char *profile, json_t **doc)
	__attribute__((warn_unused_result));
/* Whether the JWKS lists a key: it may have signed, i.e. it is active,
 * has an activation time, or is retired or compromised without having
 * been made so from pending by a ceremony (a key retired from pending has
 * retired_ceremony and no activation; a key compromised from pending has
 * compromised_ceremony, no activation and no retirement). Keys recorded
 * before ceremonies have no ceremony and count as having signed. */
int cs_service_key_published(const cs_key_info *key);
/* The rollover statements, oldest first: {"rollovers": [general JWS
 * objects (RFC 7515 7.2.1)]}: those whose new key is a certificate key
 * (profile NULL) or a key of that profile (unknown profile as for
 * cs_service_jwks). Public. */
cs_err cs_service_rollovers(cs_service_req *rq, const char *profile, json_t **doc)
	__attribute__((warn_unused_result));
/* The signed revocation list in force (app.h, the key watch): a compact
 * JWS (malloc'd). None, or past its next_update: CS_E_NOT_FOUND, problem
 * code revocations_unavailable. Public. */
cs_err cs_service_revocations(cs_service_req *rq, char **jws) __attribute__((warn_unused_result));
/* {"version", "presets":[definition + sha256, source, enforced_min_length]}.
 * Any grant. */
cs_err cs_service_presets(cs_service_req *rq, json_t **doc) __attribute__((warn_unused_result));

/* GET /api/policy decoded: the chosen presets and the texts that override
 * the configuration's policy group ("" when not given). */
typedef struct {
	const cs_preset *presets[CS_POLICY_STANDARDS_MAX];
	size_t count;
	int markdown; /* format=markdown */
	int html;     /* format=html */
	char organisation[CS_POLICY_TEXT_MAX * 4 + 1], owner[CS_POLICY_TEXT_MAX * 4 + 1],
		version[CS_POLICY_TEXT_MAX * 4 + 1], scope[CS_POLICY_SCOPE_MAX * 4 + 1],
		effective_date[11];
} cs_policy_input;

/* The policy document (policy.h); the caller renders it. Any grant. */
cs_err cs_service_policy(cs_service_req *rq, const cs_policy_input *in, json_t **doc)
	__attribute__((warn_unused_result));
/* Prometheus text (malloc'd). Needs an operator grant. */
cs_err cs_service_metrics(cs_service_req *rq, char **text) __attribute__((warn_unused_result));

/* Readiness: whether the token answers, store writes succeed and a
 * signing key is in force. Public, not audited (a probe). */
typedef struct {
	cs_err token, store;
	const char *store_state; /* "ok", "writes fail", "tampered" (a guard missing or altered) or the store's error */
	char kid[44];            /* the signing key in force; "": none (not ready: no_active_key) */
	/* with no key in force, why (the key watch's code and reason, e.g.
	 * "unverified_ceremony"); "" when not known */
	char key_code[32], key_why[512];
} cs_readiness;
void cs_service_readiness(cs_app *app, cs_store *store, cs_readiness *out);

/* ---- delegated signing (issue 15) -------------------------------------------------
 * POST /api/sign: one item, or a batch of up to signing.batch_max. Each
 * item is decided on its own, in this order: a front end's decoding
 * refusal (refused_code), the profile (unknown_profile), the access rules
 * (CS_ACTION_SIGN for the profile: forbidden, rate_limited; each item
 * pays one token of the allowing grant), the format (format_not_allowed),
 * the payload type (payload_type_not_allowed), the size
 * (payload_too_large), the claims (reserved_claim), the profile's key in
 * force (no_active_key); then it is signed in the token (verified before
 * it returns, certsign.h). Every signed item gets one audit entry (action
 * sign, role signer, object "<id> profile=P format=F kid=KID sha256=HEX")
 * and its record (store.h); the items not signed share one entry per
 * distinct outcome and error code (object "profile=P format=F" of the
 * first such item, sanitised, or "/api/sign" when it names no profile or
 * format, plus " items=N" when N > 1): all of the request's entries and
 * records are written in ONE cs_ledger_signatures_put, and nothing is
 * released unless it committed. An item whose key was compromised between
 * its signing and that write is answered no_active_key, its signature
 * discarded, and its refusal written in a second, refusals-only write. */

typedef struct {
	const char *profile;      /* as given; NULL: not given (only with refused_code) */
	const char *format;       /* as given: "jws", "dsse", "digest"; NULL: not given */
	const json_t *payload;    /* jws: the payload, a JSON object */
	const char *payload_type; /* dsse */
	const uint8_t *body;      /* dsse: the decoded payload */
	size_t body_len;
	uint8_t digest[32];       /* digest: the SHA-256 given */
	/* the front end refused the item while decoding it (e.g.
	 * "invalid_field", "unknown_field"): audited as a refusal with this
	 * code; NULL: decoded */
	const char *refused_code;
	const char *refused_message;
} cs_sign_item;

typedef struct {
	cs_err err;                 /* CS_OK: signed and recorded; else refused or failed */
	cs_service_problem problem; /* err != CS_OK: the code and message for the caller */
	int retry_after;            /* rate_limited: seconds */
	char signature_id[CS_SERVICE_ID_CHARS + 1];
	char kid[44];
	int64_t seq;                /* the audit entry's seq (refused too, when written) */
	const char *profile;        /* the profile's name (configuration's copy); NULL: unknown */
	unsigned format;            /* CS_SIG_FORMAT_*; 0: unknown */
	char *jws;                  /* jws: the compact JWS */
	json_t *envelope;           /* dsse: the envelope */
	char *signature;            /* digest: base64url raw r||s */
	char *signature_der;        /* digest: standard base64 DER */
} cs_sign_result;

/* Sign n items (1..CS_SIGN_BATCH_MAX; the front end enforces
 * signing.batch_max) into results[n] (each cleared first). CS_OK: the
 * request's entries and records committed; each result says whether its
 * item was signed (err CS_OK) or why not (problem.code: the codes above,
 * or the store's or token's failure, e.g. token_unavailable,
 * signature_invalid, store_unavailable). Otherwise nothing is released:
 * every result is freed; CS_E_FORBIDDEN when the caller holds no signer
 * grant at all (cs_service_admit, audited), else the write failed:
 * rq->audit_failed is set (answer 503 audit_unavailable). The request's
 * own audit entry is the items' (rq->audited set). */
#define CS_SIGN_BATCH_MAX 1000
cs_err cs_service_sign(cs_service_req *rq, const cs_sign_item *items, size_t n, cs_sign_result *results)
	__attribute__((warn_unused_result));
void cs_sign_results_free(cs_sign_result *results, size_t n);

/* A signature record by id as the API answers it: {"signature_id",
 * "profile", "format", "requester", "created_at", "signed_sha256", "kid",
 * "signature", ("signature_der"), ("payload_type"), ("payload": standard
 * base64, when stored), "audit_seq"}. Needs a signer or auditor grant
 * (cs_service_admit), then signature.read for the record's profile
 * (CS_E_FORBIDDEN, audited). CS_E_NOT_FOUND. */
cs_err cs_service_signature_get(cs_service_req *rq, const char *id, json_t **record)
	__attribute__((warn_unused_result));
/* A signature record as the API answers it (above; NULL: out of memory). */
json_t *cs_service_signature_json(const cs_signature_record *rec);

/* "Did our appliance sign this?" from the bytes: the records whose
 * signed_sha256 is sha256_hex (64 lower-case hex digits, else
 * CS_E_INVALID_ARG, problem code invalid_field) as {"signatures":
 * [record, ...], "truncated": bool} (cs_service_signature_json without
 * "payload", even when stored: the answer stays bounded; the record by id
 * has it), newest first, at most CS_SERVICE_SIGNATURES_FIND_MAX, only
 * those of profiles the caller may read (signature.read; the others are
 * left out, unsaid), [] when none. The entry's object is "sha256=HEX".
 * Needs a signer or auditor grant covering some signing profile (else
 * CS_E_FORBIDDEN, audited, as for a record); the grant's rate limit pays
 * one token. Of a digest signed very often, the newest
 * CS_SERVICE_SIGNATURES_FIND_SCAN records are looked at. "truncated":
 * the caller may read more records than answered, or records past the
 * scan were left unread. */
#define CS_SERVICE_SIGNATURES_FIND_MAX 100
#define CS_SERVICE_SIGNATURES_FIND_SCAN 10000
cs_err cs_service_signatures_find(cs_service_req *rq, const char *sha256_hex, json_t **doc)
	__attribute__((warn_unused_result));

/* ---- the inventory (issue 19, inventory.h) ----------------------------------------- */

typedef struct {
	char project[CS_SERVICE_TEXT_BYTES];     /* "": every project the caller may read */
	char environment[CS_SERVICE_TEXT_BYTES]; /* "": any */
	int has_due_before;
	int64_t due_before_ms; /* with has_due_before: records due before it only */
	char due_before[40];   /* as given (YYYY-MM-DD or RFC 3339 UTC) */
} cs_inventory_query;

/* The records of the certificates the query names, as
 * {"records":[...], "counts":{"current","superseded","revoked","overdue",
 * "due_soon"} (over the records answered), "generated_at", "project",
 * "environment", "due_before"} (the last three null when not asked).
 * With a project and an environment: an auditor grant for the project,
 * or a generator grant for it and the environment (inventory.read;
 * CS_E_FORBIDDEN, audited, otherwise). With a project alone: an auditor
 * grant for it or a generator grant for it in any environment, the
 * records kept one by one to those the caller may read. Without: the
 * records of every project and environment the caller may read (needs an
 * auditor or generator grant at all). due_before keeps the current
 * records due before it (cs_inventory_filter_due_before). More than
 * CS_INVENTORY_MAX_RECORDS records: CS_E_TOO_LARGE, problem code
 * inventory_too_large. */
cs_err cs_service_inventory(cs_service_req *rq, const cs_inventory_query *q, json_t **doc)
	__attribute__((warn_unused_result));

/* The inventory gauges for /metrics (every project; no access decision):
 * computed from the store at most once every CS_SERVICE_INVENTORY_METRICS_MS
 * (cached per process, shared by its threads). When the store cannot be
 * read, the last figures stay (logged) and, without any, the gauges are
 * left out (gauges->inventory_known 0). */
#define CS_SERVICE_INVENTORY_METRICS_MS 60000
void cs_service_inventory_gauges(cs_service_req *rq, cs_metrics_gauges *gauges);

/* ---- the audit log ------------------------------------------------------------- */

typedef struct {
	int64_t from_seq; /* 1.. */
	int limit;        /* 1..CS_SERVICE_AUDIT_LIMIT_MAX */
	char project[CS_SERVICE_TEXT_BYTES]; /* "": the whole log */
} cs_audit_query;
#define CS_SERVICE_AUDIT_LIMIT_MAX 10000

typedef struct {
	json_t *entries, *checkpoints; /* the export's objects (audit.h) */
	int64_t next_from_seq;         /* 0: the end of the log */
} cs_audit_page;

/* A page of the export (audit.h, cs_audit_export). Without a project, the
 * whole log with its checkpoints: needs an auditor grant for every
 * project ("*"). With one, only the entries of that project (the page may
 * hold fewer than limit, even none: follow next_from_seq) and no
 * checkpoint: a filtered view cannot be verified on its own (the chain
 * needs every entry); needs an auditor grant for that project. */
cs_err cs_service_audit_export(cs_service_req *rq, const cs_audit_query *q, cs_audit_page *out)
	__attribute__((warn_unused_result));
void cs_audit_page_free(cs_audit_page *page);
/* The signed checkpoint over the newest entries (malloc'd JWS): for
 * verifying the whole log, so it needs an auditor grant for every project.
 * CS_E_NOT_FOUND when there is none. */
cs_err cs_service_audit_checkpoint(cs_service_req *rq, char **jws) __attribute__((warn_unused_result));

#endif
