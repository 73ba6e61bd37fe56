/* service_read: certificates, the JWKS, signature records found by the
 * SHA-256 of their bytes, presets, the policy, metrics and readiness
 * (service.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "cs_log.h"
#include "jose.h"
#include "json_text.h"
#include "ledger.h"
#include "metrics.h"
#include "service_internal.h"
#include "sigformat.h"

void cs_cert_status_free(cs_cert_status *st)
{
	if (st == NULL)
		return;
	free(st->revoked_at);
	free(st->reason);
	free(st->key_status);
	free(st->key_compromised_at);
	memset(st, 0, sizeof(*st));
}

typedef struct {
	cs_cert_status *st;
	int failed;
} status_read;

static void revocation_row(void *arg, const cs_revocation_record *rec)
{
	status_read *s = arg;
	s->st->revoked = 1;
	s->st->revoked_at = strdup(rec->revoked_at);
	s->st->reason = strdup(rec->reason);
	s->failed = s->st->revoked_at == NULL || s->st->reason == NULL;
}

static void key_row(void *arg, const cs_key_info *key)
{
	status_read *s = arg;
	s->st->key_status = strdup(key->status);
	s->st->key_compromised_at = key->compromised_at != NULL ? strdup(key->compromised_at) : NULL;
	s->failed |= s->st->key_status == NULL || (key->compromised_at != NULL && s->st->key_compromised_at == NULL);
}

/* Whether the certificate is revoked, and its signing key's state (the
 * kid of its JWS header). */
static cs_err cert_status(cs_store *store, const char *cert_id, const char *jws, cs_cert_status *st)
{
	status_read s = {st, 0};
	memset(st, 0, sizeof(*st));
	json_t *header = NULL;
	cs_err r = cs_store_revocation_get(store, cert_id, revocation_row, &s);
	if (r == CS_E_NOT_FOUND)
		r = CS_OK;
	const char *kid = NULL;
	/* out of memory reading the kid is a failure, never a status without
	 * its key's (a compromised key's certificate would look sound) */
	cs_err hr = r == CS_OK ? cs_jws_peek_header(jws, &header) : CS_E_INVALID_ARG;
	if (hr == CS_E_NOMEM)
		r = CS_E_NOMEM;
	else if (hr == CS_OK && (kid = json_string_value(json_object_get(header, "kid"))) != NULL)
		r = cs_store_key_info(store, kid, key_row, &s);
	json_decref(header);
	if (r == CS_OK && s.failed)
		r = CS_E_NOMEM;
	if (r != CS_OK)
		cs_cert_status_free(st);
	return r;
}

cs_err cs_service_cert_get(cs_service_req *rq, const char *cert_id, char **jws, char **claims_json,
			   cs_cert_status *status)
{
	*jws = *claims_json = NULL;
	if (status != NULL)
		memset(status, 0, sizeof(*status));
	cs_service_set_object(rq, cert_id);
	/* the scope is the certificate's project: first whether the caller
	 * may read certificates at all */
	cs_err r = cs_service_admit(rq, CS_ACTION_CERT_READ);
	if (r != CS_OK)
		return r;
	char *j = NULL, *c = NULL;
	if ((r = cs_ledger_cert_get(rq->store, cert_id, &j, &c)) != CS_OK)
		return cs_service_fail(rq, r, NULL, "certificate");
	/* exactly as stored: the scope decided on a character short is
	 * another project's */
	int nomem = 0;
	json_t *claims = cs_json_load_exact(c, strlen(c), 0, &nomem);
	if (claims == NULL && nomem) {
		free(j);
		free(c);
		return cs_service_fail(rq, CS_E_NOMEM, NULL, "certificate");
	}
	const char *project = json_string_value(json_object_get(claims, "project"));
	const char *environment = json_string_value(json_object_get(claims, "environment"));
	cs_access_scope scope = {project, environment, NULL, NULL};
	r = cs_service_authorize(rq, CS_ACTION_CERT_READ, &scope);
	json_decref(claims);
	if (r == CS_OK && status != NULL && (r = cert_status(rq->store, cert_id, j, status)) != CS_OK)
		cs_service_fail(rq, r, NULL, "certificate status");
	if (r != CS_OK) {
		free(j);
		free(c);
		return r;
	}
	*jws = j;
	*claims_json = c;
	return CS_OK;
}

int cs_service_key_published(const cs_key_info *k)
{
	const char *st = k->status != NULL ? k->status : "";
	if (strcmp(st, "active") == 0 || k->activated_at != NULL)
		return 1;
	if (strcmp(st, "retired") == 0)
		return k->retired_ceremony == NULL; /* retired from pending by a ceremony: never signed */
	if (strcmp(st, "compromised") == 0)
		return k->compromised_ceremony == NULL || k->retired_at != NULL;
	return 0; /* pending, or a state this version does not know */
}

/* A key the JWKS would list by its status: its kid, row digest (app.h,
 * cs_app_key_published decides) and JWK with its state (NULL: the stored
 * JWK is not a JSON object). */
typedef struct {
	char *kid;
	unsigned char row[32];
	json_t *jwk;
} jwks_candidate;

typedef struct {
	const char *profile; /* the keys of this profile; NULL: certificate keys */
	int recorded;        /* a key of the profile is recorded (published or not) */
	int failed;
	EVP_MD_CTX *set;      /* the digest of every key row (the key set) */
	jwks_candidate *cand; /* in the store's order */
	size_t ncand, cap;
} jwks_build;

/* Is the key of the profile asked for (NULL: a certificate key)? */
static int key_of(const cs_key_info *k, const char *profile)
{
	if (profile == NULL || k->profile == NULL)
		return profile == NULL && k->profile == NULL;
	return strcmp(profile, k->profile) == 0;
}

/* The profile's configuration; NULL: not configured. */
static const cs_config_profile *configured(const cs_service_req *rq, const char *profile)
{
	return rq->app->cfg != NULL ? cs_config_profile_find(rq->app->cfg, profile) : NULL;
}

/* A profile asked for must be configured or have a key in the store (a
 * profile no longer configured: its keys still verify what they signed):
 * else CS_E_NOT_FOUND (problem code unknown_profile). */
static cs_err known_profile(cs_service_req *rq, const char *profile, int recorded)
{
	if (profile == NULL || recorded || configured(rq, profile) != NULL)
		return CS_OK;
	return cs_service_fail(rq, CS_E_NOT_FOUND, "unknown_profile",
			       "unknown signing profile (neither in signing.profiles nor recorded with a key; "
			       "without ?profile= the certificate keys)");
}

/* name: value when value is set. */
static int set_text(json_t *o, const char *name, const char *value)
{
	return value == NULL || json_object_set_new(o, name, json_string(value)) == 0;
}

static void add_key(void *arg, const cs_key_info *k)
{
	jwks_build *b = arg;
	unsigned char row[32];
	if (b->failed)
		return;
	if (cs_app_key_row_digest(k, row) != CS_OK || EVP_DigestUpdate(b->set, row, sizeof(row)) != 1) {
		b->failed = 1; /* SHA-256 unavailable: CS_E_INTERNAL */
		return;
	}
	if (!key_of(k, b->profile))
		return;
	b->recorded = 1;
	if (!cs_service_key_published(k))
		return;
	if (b->ncand == b->cap) {
		size_t cap = b->cap == 0 ? 16 : b->cap * 2;
		jwks_candidate *more = realloc(b->cand, cap * sizeof(*more));
		if (more == NULL) {
			b->failed = 1;
			return;
		}
		b->cand = more, b->cap = cap;
	}
	jwks_candidate *c = &b->cand[b->ncand];
	memcpy(c->row, row, sizeof(row));
	c->jwk = NULL;
	if ((c->kid = strdup(k->kid)) == NULL) {
		b->failed = 1;
		return;
	}
	b->ncand++;
	/* exactly as stored: never a key a character short (json_text.h) */
	int nomem = 0;
	json_t *jwk = k->jwk_json != NULL ? cs_json_load_exact(k->jwk_json, strlen(k->jwk_json), 0, &nomem) : NULL;
	if (nomem) {
		b->failed = 1;
		return;
	}
	if (!json_is_object(jwk)) {
		/* never published: no warrant holds for it (decided below) */
		json_decref(jwk);
		return;
	}
	json_t *x5c = k->x5c_json != NULL ? cs_json_load_exact(k->x5c_json, strlen(k->x5c_json), 0, &nomem) : NULL;
	if (nomem) {
		json_decref(jwk);
		b->failed = 1;
		return;
	}
	if (k->x5c_json != NULL && !json_is_array(x5c))
		/* the key matters more than its chain: published without it */
		cs_log_error("the chain registered for signing key %s is not a JSON array: the JWKS omits its x5c",
			     k->kid);
	int ok = set_text(jwk, "status", k->status) && set_text(jwk, "created_at", k->created_at) &&
		 set_text(jwk, "activated_at", k->activated_at) && set_text(jwk, "retired_at", k->retired_at) &&
		 set_text(jwk, "compromised_at", k->compromised_at) && set_text(jwk, "destroyed_at", k->destroyed_at) &&
		 (!json_is_array(x5c) || json_object_set(jwk, "x5c", x5c) == 0);
	json_decref(x5c);
	if (ok)
		c->jwk = jwk;
	else {
		json_decref(jwk);
		b->failed = 1;
	}
}

/* A profile key's "formats_signed": the formats of the records it signed
 * (sorted), so that a relying party sees whether the key ever signed bare
 * digests, whatever the configuration says now. */
static cs_err add_formats_signed(cs_store *store, const char *profile, json_t *jwk)
{
	const char *formats[CS_STORE_SIG_FORMATS + 1];
	cs_err r = cs_store_key_formats_signed(store, profile, json_string_value(json_object_get(jwk, "kid")),
					       formats);
	json_t *list = r == CS_OK ? json_array() : NULL;
	if (r == CS_OK && list == NULL)
		r = CS_E_NOMEM;
	for (size_t i = 0; r == CS_OK && formats[i] != NULL; i++)
		if (json_array_append_new(list, json_string(formats[i])) != 0)
			r = CS_E_NOMEM;
	/* json_object_set_new takes over the list, on failure too */
	if (r == CS_OK && json_object_set_new(jwk, "formats_signed", list) != 0)
		r = CS_E_NOMEM;
	else if (r != CS_OK)
		json_decref(list);
	return r;
}

/* The candidates with a warrant (app.h, cs_app_key_published: cached per
 * kid, each key withheld logged once), in the store's order, into keys. */
static cs_err publish_warranted(cs_service_req *rq, jwks_build *b, json_t *keys)
{
	unsigned char set[32];
	unsigned int n = 0;
	if (EVP_DigestFinal_ex(b->set, set, &n) != 1 || n != sizeof(set))
		return CS_E_INTERNAL;
	cs_err r = CS_OK;
	for (size_t i = 0; r == CS_OK && i < b->ncand; i++) {
		int published = 0;
		r = cs_app_key_published(rq->app, rq->store, b->profile, b->cand[i].kid, b->cand[i].row, set, &published);
		if (r != CS_OK || !published)
			continue;
		if (b->cand[i].jwk == NULL) {
			/* warranted, so its JWK is its kid's: not a JSON object as read here */
			cs_log_error("signing key %s cannot be published in the JWKS (its stored JWK is not a JSON object)",
				     b->cand[i].kid);
			r = CS_E_STORE;
		} else if (json_array_append(keys, b->cand[i].jwk) != 0) {
			r = CS_E_NOMEM;
		}
	}
	return r;
}

static void jwks_build_free(jwks_build *b)
{
	for (size_t i = 0; i < b->ncand; i++) {
		free(b->cand[i].kid);
		json_decref(b->cand[i].jwk);
	}
	free(b->cand);
	EVP_MD_CTX_free(b->set);
}

cs_err cs_service_jwks(cs_service_req *rq, const char *profile, json_t **keys)
{
	/* public by nature: no decision */
	*keys = NULL;
	jwks_build b = {.profile = profile, .set = EVP_MD_CTX_new()};
	json_t *list = json_array();
	cs_err r = list != NULL && b.set != NULL && EVP_DigestInit_ex(b.set, EVP_sha256(), NULL) == 1 ? CS_OK
												 : CS_E_NOMEM;
	/* one snapshot: the keys, and what their warrants read */
	int snapshot = r == CS_OK && (r = cs_store_read_begin(rq->store)) == CS_OK;
	if (r == CS_OK)
		r = cs_store_keys_info(rq->store, add_key, &b);
	if (r == CS_OK && b.failed)
		r = CS_E_NOMEM;
	if (r == CS_OK)
		r = publish_warranted(rq, &b, list);
	/* a profile key: what it signed (a record written meanwhile only adds) */
	for (size_t i = 0; r == CS_OK && profile != NULL && i < json_array_size(list); i++)
		r = add_formats_signed(rq->store, profile, json_array_get(list, i));
	if (snapshot)
		cs_store_read_end(rq->store);
	jwks_build_free(&b);
	if (r != CS_OK) {
		json_decref(list);
		return cs_service_fail(rq, r, NULL, "signing keys");
	}
	if ((r = known_profile(rq, profile, b.recorded)) != CS_OK) {
		json_decref(list);
		return r;
	}
	*keys = list;
	return CS_OK;
}

/* The "profile" member of a profile's JWKS (service.h). */
static json_t *profile_member(const char *name, const cs_config_profile *p)
{
	if (p == NULL)
		return json_pack("{s:s, s:b}", "name", name, "configured", 0);
	json_t *formats = json_array();
	for (unsigned f = CS_SIG_FORMAT_JWS; formats != NULL && f <= CS_SIG_FORMAT_DIGEST; f <<= 1)
		if ((p->formats & f) != 0 && json_array_append_new(formats, json_string(cs_sig_format_name(f))) != 0) {
			json_decref(formats);
			formats = NULL;
		}
	json_t *types = NULL;
	if ((p->formats & CS_SIG_FORMAT_DSSE) != 0 && p->payload_types != NULL) {
		types = json_array();
		for (size_t i = 0; types != NULL && p->payload_types[i] != NULL; i++)
			if (json_array_append_new(types, json_string(p->payload_types[i])) != 0) {
				json_decref(types);
				types = NULL;
			}
		if (types == NULL) {
			json_decref(formats);
			return NULL;
		}
	}
	const char *typ = (p->formats & CS_SIG_FORMAT_JWS) != 0 ? p->typ : NULL;
	/* json_pack takes over formats and types, on failure too */
	return json_pack("{s:s, s:o, s:s*, s:o*, s:b}", "name", p->name, "formats", formats, "typ", typ,
			 "payload_types", types, "configured", 1);
}

cs_err cs_service_jwks_doc(cs_service_req *rq, const char *profile, json_t **doc)
{
	/* public by nature: no decision */
	*doc = NULL;
	json_t *keys = NULL;
	cs_err r = cs_service_jwks(rq, profile, &keys);
	if (r != CS_OK)
		return r;
	json_t *member = profile != NULL ? profile_member(profile, configured(rq, profile)) : NULL;
	if (profile != NULL && member == NULL) {
		json_decref(keys);
		return cs_service_fail(rq, CS_E_NOMEM, NULL, "signing profile");
	}
	/* json_pack takes over keys and member, on failure too */
	if ((*doc = json_pack("{s:o, s:o*}", "keys", keys, "profile", member)) == NULL)
		return cs_service_fail(rq, CS_E_NOMEM, NULL, "JWKS");
	return CS_OK;
}

typedef struct {
	json_t *list;
	json_t *profile_keys; /* the keys of the signing profiles: {kid: profile} */
	const char *profile;  /* the rollovers to keys of this profile; NULL: the others */
	int recorded;         /* a key of that profile is recorded */
	int failed;
	int nomem;            /* out of memory (failed: a statement that is not one) */
} rollover_build;

static void collect_profile_key(void *arg, const cs_key_info *k)
{
	rollover_build *b = arg;
	if (k->profile != NULL && json_object_set_new(b->profile_keys, k->kid, json_string(k->profile)) != 0)
		b->failed = 1;
	if (b->profile != NULL && k->profile != NULL && strcmp(b->profile, k->profile) == 0)
		b->recorded = 1;
}

/* A rollover to a key of the profile asked for; without one, to any key
 * not of a profile (the certificate keys, as before profiles). */
static int rollover_of(const rollover_build *b, const char *new_kid)
{
	const char *p = new_kid != NULL ? json_string_value(json_object_get(b->profile_keys, new_kid)) : NULL;
	if (b->profile == NULL || p == NULL)
		return b->profile == NULL && p == NULL;
	return strcmp(b->profile, p) == 0;
}

static void add_rollover(void *arg, const cs_rollover_record *rec)
{
	rollover_build *b = arg;
	if (!rollover_of(b, rec->new_kid))
		return;
	int nomem = 0;
	json_t *statement = cs_json_load_exact(rec->statement_json, strlen(rec->statement_json), JSON_REJECT_DUPLICATES,
					       &nomem);
	if (nomem || (json_is_object(statement) && json_array_append(b->list, statement) != 0)) {
		b->nomem = 1;
	} else if (!json_is_object(statement)) {
		cs_log_error("the rollover statement of ceremony %s cannot be served: not a JSON object",
			     rec->ceremony_id);
		b->failed = 1;
	}
	json_decref(statement);
}

cs_err cs_service_rollovers(cs_service_req *rq, const char *profile, json_t **doc)
{
	/* public by nature: no decision */
	*doc = NULL;
	rollover_build b = {json_array(), json_object(), profile, 0, 0, 0};
	cs_err r = b.list != NULL && b.profile_keys != NULL ? cs_store_keys_info(rq->store, collect_profile_key, &b)
							    : CS_E_NOMEM;
	if (r == CS_OK && b.failed)
		r = CS_E_NOMEM;
	if (r == CS_OK && (r = known_profile(rq, profile, b.recorded)) != CS_OK) {
		json_decref(b.profile_keys);
		json_decref(b.list);
		return r;
	}
	if (r == CS_OK)
		r = cs_store_rollovers_each(rq->store, add_rollover, &b);
	if (r == CS_OK && b.nomem)
		r = CS_E_NOMEM;
	else if (r == CS_OK && b.failed)
		r = CS_E_STORE;
	json_decref(b.profile_keys);
	if (r == CS_OK && (*doc = json_pack("{s:o}", "rollovers", b.list)) == NULL)
		r = CS_E_NOMEM;
	else if (r != CS_OK)
		json_decref(b.list);
	return r == CS_OK ? CS_OK : cs_service_fail(rq, r, NULL, "rollover statements");
}

/* ---- signature records by the SHA-256 of their bytes --------------------------------- */

json_t *cs_service_signature_json(const cs_signature_record *rec)
{
	char *payload = rec->payload != NULL ? cs_sig_b64_encode(rec->payload, rec->payload_len) : NULL;
	json_t *doc = rec->payload != NULL && payload == NULL
			      ? NULL
			      : json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s*, s:s*, s:s*, s:I}",
					  "signature_id", rec->id, "profile", rec->profile, "format", rec->format,
					  "requester", rec->requester, "created_at", rec->created_at, "signed_sha256",
					  rec->signed_sha256, "kid", rec->kid, "signature", rec->signature,
					  "signature_der", rec->signature_der, "payload_type", rec->payload_type,
					  "payload", payload, "audit_seq", (json_int_t)rec->audit_seq);
	free(payload);
	return doc;
}

typedef struct {
	cs_service_req *rq;
	json_t *list;
	int64_t now_ms;  /* monotonic, for the access rules */
	int64_t scanned; /* records read */
	int truncated;   /* more readable records than answered, or the scan cap hit */
	int failed;
} find_build;

/* May the caller read this profile's signatures (its grants' rates aside:
 * the request paid once)? */
static int may_read(const find_build *b, const char *profile)
{
	cs_access_scope scope = {.profile = profile};
	cs_access_decision d;
	cs_access_decide(b->rq->access, b->rq->caller->identity, CS_ACTION_SIGNATURE_READ, &scope, 0, b->now_ms, &d);
	return d.allowed;
}

/* Records are read up to one past the scan cap (it says whether the cap
 * left some unread) and past the answer's last record until one more the
 * caller may read (it says whether the answer is all there is). */
static int add_found(void *arg, const cs_signature_record *rec)
{
	find_build *b = arg;
	if (++b->scanned > CS_SERVICE_SIGNATURES_FIND_SCAN) {
		b->truncated = 1;
		return 1;
	}
	if (!may_read(b, rec->profile))
		return 0; /* left out, unsaid */
	if (json_array_size(b->list) >= CS_SERVICE_SIGNATURES_FIND_MAX) {
		b->truncated = 1;
		return 1;
	}
	/* never the payload: a bounded answer (the record by id has it) */
	cs_signature_record bare = *rec;
	bare.payload = NULL;
	bare.payload_len = 0;
	json_t *doc = cs_service_signature_json(&bare);
	if (doc == NULL || json_array_append_new(b->list, doc) != 0) {
		b->failed = 1;
		return 1;
	}
	return 0;
}

/* A profile the caller may read signatures of: the first configured one
 * its grants cover, else "*" when a grant names every profile (which
 * covers those no longer configured too); NULL: none. */
static const char *readable_profile(const find_build *b)
{
	const cs_config *cfg = b->rq->app->cfg;
	for (size_t i = 0; cfg != NULL && i < cfg->signing.nprofiles; i++)
		if (may_read(b, cfg->signing.profiles[i].name))
			return cfg->signing.profiles[i].name;
	return may_read(b, "*") ? "*" : NULL;
}

static int sha256_hex_valid(const char *s)
{
	size_t n = s != NULL ? strspn(s, "0123456789abcdef") : 0;
	return n == 64 && s[n] == '\0';
}

cs_err cs_service_signatures_find(cs_service_req *rq, const char *sha256_hex, json_t **doc)
{
	*doc = NULL;
	if (!sha256_hex_valid(sha256_hex))
		return cs_service_fail(rq, CS_E_INVALID_ARG, "invalid_field",
				       "sha256 must be the SHA-256 of the signed bytes as 64 lower-case hex digits");
	char object[8 + 64 + 1];
	snprintf(object, sizeof(object), "sha256=%s", sha256_hex);
	cs_service_set_object(rq, object);
	cs_err r = cs_service_admit(rq, CS_ACTION_SIGNATURE_READ);
	if (r != CS_OK)
		return r;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	find_build b = {rq, NULL, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, 0, 0, 0};
	const char *some = readable_profile(&b);
	if (some == NULL)
		return cs_service_refuse(rq, "forbidden", 0,
					 "no auditor or signer grant with profiles (signature.read needs one covering a "
					 "signing profile)");
	/* the request pays one token of a grant that reads signatures */
	cs_access_scope scope = {.profile = some};
	if ((r = cs_service_authorize(rq, CS_ACTION_SIGNATURE_READ, &scope)) != CS_OK)
		return r;
	if ((b.list = json_array()) == NULL)
		return cs_service_fail(rq, CS_E_NOMEM, NULL, "signature records");
	r = cs_store_signatures_by_sha256(rq->store, sha256_hex, CS_SERVICE_SIGNATURES_FIND_SCAN + 1, add_found,
					  &b);
	if (r == CS_OK && b.failed)
		r = CS_E_NOMEM;
	/* json_pack takes over the list, on failure too */
	if (r != CS_OK)
		json_decref(b.list);
	else if ((*doc = json_pack("{s:o, s:b}", "signatures", b.list, "truncated", b.truncated)) == NULL)
		r = CS_E_NOMEM;
	return r == CS_OK ? CS_OK : cs_service_fail(rq, r, NULL, "signature records");
}

cs_err cs_service_revocations(cs_service_req *rq, char **jws)
{
	/* public by nature: no decision */
	cs_err r = cs_key_watch_revocations(rq->app->keys, cs_service_now_ms(), jws);
	if (r == CS_E_NOT_FOUND)
		return cs_service_fail(rq, r, "revocations_unavailable",
				       "no current signed revocation list: the last one's key was compromised, or its "
				       "next_update passed and no key in force could sign another (no active signing "
				       "key, or the token failed)");
	return r == CS_OK ? CS_OK : cs_service_fail(rq, r, NULL, "revocation list");
}

cs_err cs_service_presets(cs_service_req *rq, json_t **doc)
{
	cs_app *app = rq->app;
	*doc = NULL;
	cs_err r = cs_service_authorize(rq, CS_ACTION_PRESETS_READ, NULL);
	if (r != CS_OK)
		return r;
	/* every part or nothing: a preset or a field lost to a failed
	 * allocation is an error, never a shorter list (json_*_set_new and
	 * json_array_append_new take their value even when they fail) */
	json_t *list = json_array();
	int ok = list != NULL;
	for (size_t i = 0; ok && i < app->presets->count; i++) {
		const cs_preset *p = &app->presets->items[i];
		json_t *d = json_deep_copy(p->definition), *mins = json_object();
		ok = d != NULL && mins != NULL && json_equal(d, p->definition) && json_object_set_new(d, "sha256", json_string(p->sha256)) == 0 &&
		     json_object_set_new(d, "source", json_string(p->source)) == 0;
		for (int t = 1; ok && t <= CS_TYPE_PASSPHRASE; t <<= 1) {
			cs_plan_request q = {.type = t};
			cs_plan plan;
			char why[256];
			if ((p->types & (unsigned)t) == 0)
				continue;
			cs_err pr = cs_preset_plan(p, app->wordlist, &q, &plan, why, sizeof(why));
			if (pr == CS_E_NOMEM)
				ok = 0;
			else if (pr == CS_OK)
				ok = json_object_set_new(mins, cs_type_name((cs_cred_type)t),
							 json_integer(plan.min_length)) == 0;
		}
		if (!ok) {
			json_decref(mins);
			json_decref(d);
		} else if (json_object_set_new(d, "enforced_min_length", mins) != 0) {
			ok = 0;
			json_decref(d);
		} else {
			ok = json_array_append_new(list, d) == 0;
		}
	}
	*doc = ok ? json_pack("{s:i, s:o}", "version", app->presets->version, "presets", list) : NULL;
	if (!ok)
		json_decref(list);
	return *doc != NULL ? CS_OK : cs_service_fail(rq, CS_E_NOMEM, NULL, "presets");
}

cs_err cs_service_policy(cs_service_req *rq, const cs_policy_input *in, json_t **doc)
{
	cs_app *app = rq->app;
	char why[200];
	*doc = NULL;
	cs_err r = cs_service_authorize(rq, CS_ACTION_POLICY_READ, NULL);
	if (r != CS_OK)
		return r;
	/* the request's texts override the configuration's `policy` group */
	cs_policy_options opts = {0};
	if (app->cfg != NULL) {
		opts.organisation = app->cfg->policy.organisation;
		opts.owner = app->cfg->policy.owner;
		opts.scope = app->cfg->policy.scope;
		opts.version = app->cfg->policy.version;
		opts.effective_date = app->cfg->policy.effective_date;
		opts.review_months = app->cfg->policy.review_months;
		opts.pci_password_change_days = app->cfg->inventory.pci_password_change_days;
	}
	if (in->organisation[0])
		opts.organisation = in->organisation;
	if (in->owner[0])
		opts.owner = in->owner;
	if (in->scope[0])
		opts.scope = in->scope;
	if (in->version[0])
		opts.version = in->version;
	if (in->effective_date[0])
		opts.effective_date = in->effective_date;
	r = cs_policy_build_doc(app->presets, app->wordlist, in->presets, in->count, &opts, doc, why, sizeof(why));
	if (r == CS_E_INVALID_ARG) /* the decoders already refuse what this refuses */
		return cs_service_fail(rq, r, "invalid_field", "%s", why);
	if (r != CS_OK)
		return cs_service_fail(rq, r, NULL, "policy");
	return CS_OK;
}

cs_err cs_service_metrics(cs_service_req *rq, char **text)
{
	cs_app *app = rq->app;
	*text = NULL;
	cs_err r = cs_service_authorize(rq, CS_ACTION_METRICS_READ, NULL);
	if (r != CS_OK)
		return r;
	cs_metrics_gauges gauges = {.active_kid = rq->signer != NULL ? cs_signer_kid(rq->signer) : NULL};
	if (app->read_gauges != NULL)
		app->read_gauges(app->gauges_arg, &gauges);
	cs_service_inventory_gauges(rq, &gauges);
	if (cs_metrics_render(&gauges, text) != CS_OK)
		return cs_service_fail(rq, CS_E_NOMEM, "internal_error", "out of memory");
	return CS_OK;
}

void cs_service_readiness(cs_app *app, cs_store *store, cs_readiness *out)
{
	cs_token_info info;
	out->token = cs_token_get_info(app->token, &info);
	cs_signer_slot_kid(app->signer, out->kid);
	out->key_code[0] = out->key_why[0] = '\0';
	if (out->kid[0] == '\0')
		cs_key_watch_why(app->keys, out->key_code, out->key_why, sizeof(out->key_why));
	/* the store answers reads, and its writes succeed: the last write's
	 * outcome when recent, else a probe write (see ledger.h) */
	out->store = cs_store_ping(store);
	out->store_state = out->store == CS_OK ? "ok" : cs_strerror(out->store);
	if (out->store == CS_OK &&
	    (out->store = cs_ledger_write_health(app->ledger, CS_LEDGER_READY_MAX_AGE_MS)) != CS_OK)
		out->store_state = "writes fail";
	/* a guard of the schema missing or altered (the key watch's periodic
	 * check, logged there): the store is not trusted */
	if (out->store == CS_OK && (out->store = cs_key_watch_guards(app->keys, NULL, 0)) != CS_OK)
		out->store_state = "tampered";
}
