/*
 * app: what every request handler shares, built once at start-up by
 * credsignd and read-only afterwards (the token is thread-safe; the
 * signing key in force and the access rules change only by a swap of
 * their slot). Each worker thread adds its own store connection. app.c:
 * the token's description, and the key watch: the store's active key put
 * in force without a restart, and the signed revocation list.
 */
#ifndef CS_APP_H
#define CS_APP_H

#include <pthread.h>
#include <stdatomic.h>

#include <jansson.h>
#include <openssl/types.h>

#include "access.h"
#include "certsign.h"
#include "metrics.h"
#include "config.h"
#include "preset.h"
#include "store.h"
#include "token.h"

#define CS_SESSION_TTL_SECONDS 60

/* A signing profile in force (config signing.profiles): its configuration
 * and the profile's key in force, the store's active key of the profile
 * (ledger.h: one active key per profile), followed by the key watch as
 * the certificate key is (below). An empty slot: the profile has no key
 * in force, /api/sign on it answers 503 no_active_key. why_code: the audit
 * code of why the slot is empty ("" while a key is in force or before the
 * watch's first poll), written by the key watch under its lock: read it
 * with cs_key_watch_profile_why (a copy), not directly while the watch
 * runs. */
/* node ids (cs_app_node_claim below) */
#define CS_NODE_INSTANCE_LEN 16
#define CS_NODE_LIVE_MS 30000
#define CS_NODE_RENEW_MS 5000
/* how long a start waits for a process of this host holding its id to end */
#define CS_NODE_END_WAIT_MS 5000

typedef struct {
	const cs_config_profile *cfg;
	cs_signer_slot *signer;
	char why_code[32];
} cs_app_profile;

typedef struct {
	const cs_config *cfg;
	cs_token *token;
	OSSL_LIB_CTX *libctx;
	cs_preset_set *presets;
	cs_wordlist *wordlist; /* passphrases */
	/* the certificate-signing key in force: the store's active key
	 * (certsign.h, cs_signer_acquire: each request holds the signer it
	 * took at its start); empty when the store has no active key (the
	 * active one was compromised): certify fails closed (no_active_key).
	 * The key watch swaps it when the store's active key changes. */
	cs_signer_slot *signer;
	/* the signing profiles, in the order of signing.profiles (NULL, 0:
	 * none configured); built at start (cs_app_profiles_new), each slot
	 * swapped by the key watch */
	cs_app_profile *profiles;
	size_t nprofiles;
	struct cs_key_watch *keys; /* NULL until credsignd starts it */
	/* the officers of the configuration's ceremony group (ceremony.h),
	 * loaded at start: a key is put in force only when its activation
	 * verifies under them (cs_app_key_warrant). NULL without the group:
	 * then only a store's first key, bootstrapped from the configuration,
	 * is (officers_why says why) */
	struct cs_officers *officers;
	char officers_why[512];
	/* the JWKS's decisions per kid (cs_app_key_published): made at the
	 * first JWKS, freed by cs_app_published_free */
	_Atomic(struct cs_published_keys *) published;
	/* the certificate's entropy_source claim, validated_program and
	 * validation_problem below: read through cs_app_entropy_source (under
	 * token_lock), which describes the token again after the pool
	 * recovered (a module re-initialised may find another token: a network
	 * HSM's partner, a replaced unit) */
	json_t *entropy_source;
	pthread_mutex_t token_lock;
	unsigned long described_recoveries; /* cs_token_recoveries when described */
	char described_serial[17];          /* the token's serial then */
	/* pkcs11.validation as checked at start (cs_app_describe_token): the
	 * program the token counts as validated under ("FIPS 140-3" or
	 * "FIPS 140-2"), or NULL when it does not (program "none", or versions
	 * that differ from what the token reports) */
	const char *validated_program;
	/* why a configured program does not hold ("" when it holds or none was
	 * configured): logged, and audited as token.validation */
	char validation_problem[320];
	struct cs_audit *audit;
	struct cs_ledger *ledger; /* every write, one writer thread (ledger.h) */
	/* the access rules in force (access.h): each request takes its own
	 * reference at its start; SIGHUP swaps in rules built from the
	 * configuration file read again (server.c) */
	cs_access_slot *access;
	/* certificates.public in force: any authenticated client reads
	 * certificates (swapped with the rules) */
	atomic_int certificates_public;
	/* refusals of requests counted per (certificate, action, code): the
	 * first of each per interval audited, the rest summarised
	 * (cs_service_flush_refusals) */
	struct cs_request_refusals *refusals;
	/* the server's connection counts for /metrics (NULL until it runs) */
	void (*read_gauges)(void *arg, cs_metrics_gauges *gauges);
	void *gauges_arg;
	atomic_long request_counter;
	atomic_long requests_in_flight;
	/* server.node_id as this daemon holds it in the store (store.h,
	 * cs_store_node_claim): instance is random, one per daemon life (made
	 * by cs_app_node_instance before the network process is forked, so a
	 * restarted network process holds the id still), host this machine's
	 * name. Claimed at start, renewed by the key watch, released at a
	 * clean stop. */
	struct {
		char instance[CS_NODE_INSTANCE_LEN + 1];
		char host[256];
		int claimed;     /* the claim at start succeeded */
		atomic_int lost; /* a renewal found another instance holding it */
		int64_t renewed_ms; /* CLOCK_MONOTONIC of the last renewal (key watch thread) */
	} node;
} cs_app;

/* ---- node identity (server.node_id) -----------------------------------------
 * Ids are unique among the nodes sharing a store: a node claims its id at
 * start and renews it every CS_NODE_RENEW_MS; an id renewed less than
 * CS_NODE_LIVE_MS ago by another instance is in use, and the start is
 * refused. */
/* Make app->node's instance (16 random hex digits) and host; once per
 * daemon life. CS_E_INTERNAL when no randomness (logged). */
cs_err cs_app_node_instance(cs_app *app) __attribute__((warn_unused_result));
/* Claim server.node_id through app->ledger (at start, before anything is
 * written). A claim held by this host's process that no longer exists (a
 * daemon killed without its clean stop) is taken over. CS_E_CONFLICT when
 * another live instance holds it, logged as "server.node_id N is in use by
 * another running node (HOLDER): give each node its own id"; other
 * failures logged too. */
cs_err cs_app_node_claim(cs_app *app) __attribute__((warn_unused_result));
/* Renew the claim when CS_NODE_RENEW_MS passed since the last (the key
 * watch calls it at each poll). When another instance took the id (this
 * node went unseen past CS_NODE_LIVE_MS): logged once, node.lost set for
 * good; the server then drains and stops (the daemon exits 1, not
 * restarted), and later calls claim nothing. */
void cs_app_node_renew(cs_app *app, int64_t mono_now_ms);
/* Give the id up at a clean stop (its row left stale), so that the next
 * start does not wait CS_NODE_LIVE_MS. Nothing when not claimed. */
void cs_app_node_release(cs_app *app);

/* Build the entropy_source claim from the token and configuration, and
 * check pkcs11.validation against the token: sets entropy_source,
 * validated_program and validation_problem, and logs the outcome. At
 * start (token_lock initialised here); cs_app_entropy_source does it
 * again after every recovery of the pool. */
cs_err cs_app_describe_token(cs_app *app);
/* The entropy_source claim as of now (a new reference) and what
 * validation holds (program or NULL, and why not into problem[cap]):
 * when the pool recovered since the token was last described, it is
 * described again, and a change of the token (serial, versions,
 * validation) is logged and audited (token.changed). NULL on failure. */
json_t *cs_app_entropy_source(cs_app *app, const char **validated_program, char *problem, size_t cap);

/* The entropy_source.validation claim for a token that reports `info`:
 * {"validated", "program", "certificate", "module", "level",
 *  "checked_versions": {NAME: {"configured", "token", "match"}}}, where NAME
 * is each of hardware_version, firmware_version (CK_TOKEN_INFO) and
 * library_version (CK_INFO) the configuration sets. validated is true only
 * when a program other than "none" is configured and every configured
 * version equals the token's, and, for "FIPS 140-2", today (YYYY-MM-DD)
 * is not after the sunset of FIPS 140-2 validations (2026-09-21: they are
 * historical since, no longer active). problem[cap] gets why not when a
 * program was configured ("" otherwise). Pure: no token call, no clock,
 * no log. */
#define CS_FIPS_140_2_SUNSET "2026-09-21"
cs_err cs_app_validation_claim(const cs_config *cfg, const cs_token_info *info, const char *today,
			       json_t **claim, char *problem, size_t cap) __attribute__((warn_unused_result));

/* Whether a token validated under `validated` (NULL: not validated) meets a
 * preset's requires_validation (NULL: no requirement). FIPS 140-3 meets
 * "FIPS 140-2" as well; FIPS 140-2 does not meet "FIPS 140-3". */
int cs_validation_meets(const char *validated, const char *required);

/* ---- signing profiles -----------------------------------------------------------
 * app->profiles, one per signing.profiles entry in its order, each with an
 * empty slot (the caller, credsignd, puts the keys in force): CS_OK (no
 * profiles: NULL, 0), CS_E_NOMEM (nothing left allocated). Free with
 * cs_app_profiles_free (slots included; NULL profiles: nothing). */
cs_err cs_app_profiles_new(cs_app *app) __attribute__((warn_unused_result));
void cs_app_profiles_free(cs_app *app);
/* The profile named name (NULL: unknown, or name NULL). */
cs_app_profile *cs_app_profile_find(cs_app *app, const char *name);

/* ---- the signing key in force --------------------------------------------------
 * The store decides which key is active (ledger.h: ceremonies, bootstrap);
 * the daemon follows it, but only to a key whose activation it verifies
 * itself (cs_app_key_warrant): dual control does not rest on
 * credsign-admin, which runs as the user owning the store and could be
 * given any configuration, nor on the store's rows, which that user can
 * edit. A key watch polls the store every CS_KEY_POLL_MS on a connection
 * of its own (cs_store_key_active, one indexed read). When the active kid
 * or its registered chain (x5c) changed, it checks the key's warrant and
 * that its ceremony is not older than the one of the key it last put in
 * force (cs_app_key_warrant_newer: forward only, while it runs), opens the
 * key (cs_app_open_key: the token object at the store's uri must be that
 * kid, its chain must certify it, and it must sign once), swaps it into
 * app->signer, logs and audits key.switch (actor system, object the new
 * kid, outcome success). A key refused or that cannot be opened so, no
 * active key at all, or several, empties the slot (fail closed: certify
 * answers 503 no_active_key, /readyz is not ready), logged and audited as
 * key.switch failure: object the kid (none: no key, several keys), error_code
 * unverified_ceremony, stale_ceremony, key_unavailable, key_mismatch,
 * x5c_invalid, no_active_key or several_active_keys; the watch tries
 * again each poll without repeating the entry (unless the reason
 * changes). A store that cannot be read leaves the key in force (logged
 * once).
 *
 * The revocation list (GET /.well-known/credsign-revocations): a compact
 * JWS, header typ credsign-revocations+jwt, claims {"iss":
 * server.public_base_url, "iat", "next_update": iat + CS_REVOCATIONS_VALID_S,
 * "revoked": [{"id", "revoked_at", "reason"}]} (the store's order). The
 * watch signs it with the key in force when the revocations changed
 * (cs_store_revocations_version), when the key in force is not the one
 * that signed it, and when it is CS_REVOCATIONS_RESIGN_S old. Without a
 * key to sign, the last list is served until its next_update, then none;
 * a list whose key is compromised meanwhile is withdrawn at once (a
 * relying party must not take it as current: none is served).
 */
#define CS_KEY_POLL_MS 1000
#define CS_REVOCATIONS_VALID_S 3600
#define CS_REVOCATIONS_RESIGN_S 1800

typedef struct cs_key_watch cs_key_watch;

/* Who activated a key without a ceremony: the bootstrap of a store that
 * never had an active key (ledger.h, cs_ledger_key_bootstrap). */
#define CS_BOOTSTRAP_ACTOR "config:pkcs11.signing_key"
/* and of a profile's first key: "config:signing.profiles.NAME.key" */
#define CS_PROFILE_BOOTSTRAP_PREFIX "config:signing.profiles."
#define CS_BOOTSTRAP_ACTOR_MAX (sizeof(CS_PROFILE_BOOTSTRAP_PREFIX) + CS_CONFIG_PROFILE_NAME_MAX + 8)
/* The bootstrap actor of profile (NULL: the certificate keys,
 * CS_BOOTSTRAP_ACTOR) into actor[CS_BOOTSTRAP_ACTOR_MAX]. */
void cs_app_bootstrap_actor(const char *profile, char actor[CS_BOOTSTRAP_ACTOR_MAX]);
#define CS_KEY_WHY_MAX 1024

/* Why a key may be in force: its activating ceremony, or the bootstrap. */
typedef struct {
	int bootstrap;                     /* activated by CS_BOOTSTRAP_ACTOR, no ceremony */
	char ceremony[64];                 /* the activating ceremony's id ("" bootstrap) */
	char created_at[40], executed_at[40]; /* its times (created_at is in the signed bytes) */
} cs_key_warrant;

/* Whether the store's active key kid may be put in force, as the daemon
 * checks it, under its own configuration (officers: app->officers, NULL
 * with officers_why when the configuration has no ceremony group):
 *  - activated by a ceremony (activated_ceremony): the ceremony is in the
 *    store, an executed activate of kid; its canonical bytes recomputed
 *    from its fields are the recorded ones (cs_ceremony_canonical); its
 *    approvals, each checked at its own approval time (within the
 *    ceremony's life, not after its execution) against the officers:
 *    chains to ceremony.officer_ca, not revoked by then in its CRL, listed
 *    in ceremony.officers under the recorded name and fingerprint, a
 *    signature over the canonical bytes; distinct by fingerprint, public
 *    key and name up to cs_officers_quorum(activate); the rollover
 *    statement stored for that ceremony names it and kid (new_kid), and
 *    its new-key signature (typ credsign-rollover+jws) verifies with the
 *    new_jwk it carries, whose RFC 7638 thumbprint is kid; and it is the
 *    newest rollover statement (a later activation supersedes it);
 *  - without a ceremony: activated_by CS_BOOTSTRAP_ACTOR (or, for a key
 *    activated before ceremonies existed, "system" or not recorded), no
 *    rollover statement in the store, and no other key that ever signed
 *    (cs_service_key_published): the only key ever active. (These columns
 *    are not signed: the rule holds against edits of some rows, not
 *    against a store rewritten wholesale; docs/keys.md.)
 * The status of kid is the caller's (cs_store_key_active). Reads on
 * store, inside the caller's read snapshot (cs_store_read_begin) so that
 * they see the state the active key was read in. CS_OK with *out;
 * CS_E_CEREMONY_REFUSED with why[why_len] saying what does not hold (audit
 * code unverified_ceremony); the store's error (CS_E_STORE, CS_E_NOMEM)
 * when it cannot be read. Logs nothing. */
cs_err cs_app_key_warrant(cs_store *store, const struct cs_officers *officers, const char *officers_why,
			  const char *kid, cs_key_warrant *out, char *why, size_t why_len)
	__attribute__((warn_unused_result));
/* The same rules scoped to a signing profile (NULL: the certificate keys,
 * which is cs_app_key_warrant): kid must be recorded under profile (a
 * certificate key or another profile's is refused); "the newest rollover
 * statement" is the newest of the profile (statements whose new_kid is a
 * key of the profile; other profiles' rotations supersede nothing here);
 * a bootstrap is that of the profile's first key: activated by the
 * profile's bootstrap actor (cs_app_bootstrap_actor), no rollover
 * statement of the profile, no other key of the profile ever published,
 * and no signature of the profile by another key
 * (cs_store_signature_by_other_key). Certificate keys: other profiles'
 * keys and rollovers do not count either. */
cs_err cs_app_key_warrant_in(cs_store *store, const struct cs_officers *officers, const char *officers_why,
			     const char *profile, const char *kid, cs_key_warrant *out, char *why, size_t why_len)
	__attribute__((warn_unused_result));
/* Forward only: 1 when next is not older than floor (the warrant of the
 * key last put in force), by its ceremony's created_at (signed by the
 * officers) and executed_at; a bootstrap is older than any ceremony. Else
 * 0 with why[why_len] (audit code stale_ceremony): restoring an old key
 * and its old ceremony as the newest by deleting rows is refused while
 * the daemon runs. */
int cs_app_key_warrant_newer(const cs_key_warrant *floor, const cs_key_warrant *next, char *why, size_t why_len);

/* ---- the keys the JWKS publishes ---------------------------------------------------
 * The JWKS (cs_service_jwks) lists only keys the daemon would have signed
 * with: a row in signing_keys is not enough (whoever can write the store,
 * e.g. the nodes' database role, could add a key of its own, marked
 * retired with a wide window, and have relying parties accept what it
 * signs). Whether kid, a key of profile (NULL: a certificate key) whose
 * status says it signed (cs_service_key_published), may be published,
 * under the daemon's officers (as cs_app_key_warrant_in):
 *  - its recorded JWK is the P-256 key whose RFC 7638 thumbprint is kid;
 *  - activated by a ceremony: the ceremony's checks of cs_app_key_warrant_in
 *    (recorded as signed, approvals by the officers, the rollover statement
 *    signed by kid), except that a later activation or a retirement does
 *    not withdraw it (it signed while it was active), and that the
 *    approvals need the fewest activate ever needed (2 distinct officers),
 *    not today's ceremony.quorum: the store does not record the quorum a
 *    ceremony was executed under, and raising it withholds no key
 *    activated before (docs/keys.md);
 *  - without a ceremony (activated by the scope's bootstrap actor, or for a
 *    certificate key "system" or nobody recorded): kid is configured_kid,
 *    this node's configured key of the scope (the kid of the token's key
 *    pkcs11.signing_key, or signing profile P's key, names; "": the scope
 *    is configured but its key could not be read), or the old_kid that a
 *    verified rollover statement of the scope (one whose ceremony passes
 *    the rule above) signed; in a scope this node configures, never by
 *    counting the keys that claim so (rows anyone writing the store adds).
 *    configured_kid NULL: a scope not configured here (a signing profile
 *    removed: its key must still verify what it signed): besides a
 *    rollover naming it, the scope's one key claiming to be its first
 *    (a second claimant withholds both).
 * Reads on store in the caller's snapshot. CS_OK: published;
 * CS_E_CEREMONY_REFUSED with why[why_len]; the store's error. Logs
 * nothing. (A key first bootstrapped, compromised and then followed by an
 * activation with no old key is not named by any statement: withheld, its
 * certificates fail verification either way.) */
cs_err cs_app_key_publishable(cs_store *store, const struct cs_officers *officers, const char *officers_why,
			      const char *profile, const char *kid, const char *configured_kid, char *why,
			      size_t why_len)
	__attribute__((warn_unused_result));
/* What the publication of a key row depends on (kid, profile, status,
 * activation, JWK), hashed into row[32]: a decision cached under it holds
 * while the row is unchanged. CS_E_INTERNAL when the digest cannot be
 * made (row zeroed). */
cs_err cs_app_key_row_digest(const cs_key_info *k, unsigned char row[32]) __attribute__((warn_unused_result));
/* cs_app_key_publishable through app's cache (created at the first call,
 * thread-safe): a kid decided published stays so while its row digest is
 * the same; a kid withheld is decided again when its row or the key set
 * (set[32]: a digest of every key row, the caller's) changed. A key
 * withheld is logged once per kid at warning level: "store: key KID has no
 * warrant (WHY): not published", and counted (metrics.h,
 * cs_metrics_key_withheld). *published 1 or 0 with CS_OK; else the store's
 * error (nothing cached). */
cs_err cs_app_key_published(cs_app *app, cs_store *store, const char *profile, const char *kid,
			    const unsigned char row[32], const unsigned char set[32], int *published)
	__attribute__((warn_unused_result));
/* Free app's cache (NULL: nothing); at the end of app's life. */
void cs_app_published_free(cs_app *app);

/* Open the key the store names active (kid, uri, x5c) as the daemon signs
 * with it: cs_signer_open on uri, the key found must have kid (else
 * CS_E_CONFLICT, "key_mismatch"), x5c set (CS_E_INVALID_ARG,
 * "x5c_invalid"), one signature made and verified (the token's error,
 * "key_unavailable"). On failure *code is the audit error code and
 * why[why_len] says what failed. *out: the caller's reference. */
cs_err cs_app_open_key(OSSL_LIB_CTX *libctx, const cs_active_key *key, cs_signer **out, const char **code,
		       char *why, size_t why_len) __attribute__((warn_unused_result));
/* The same with the key's purpose (cs_signer_open_for): what the daemon
 * signs with names it, so a key process signs only with keys bound to it.
 * purpose NULL: NONE (in-process checks, as cs_app_open_key). */
cs_err cs_app_open_key_for(OSSL_LIB_CTX *libctx, const cs_active_key *key, const cs_key_purpose *purpose,
			   cs_signer **out, const char **code, char *why, size_t why_len)
	__attribute__((warn_unused_result));
/* The purpose of a key of profile (NULL: the certificate keys,
 * CS_KEY_PURPOSE_CERTIFICATE; else CS_KEY_PURPOSE_PROFILE naming it; a
 * name longer than CS_KEY_PROFILE_NAME_MAX is cut, which the
 * configuration never allows). */
void cs_app_key_purpose(const char *profile, cs_key_purpose *out);

/* A watch of app (its signer slot, audit, ledger, libctx, officers and
 * cfg, which must outlive it). in_force: the store's active key that
 * start-up put in app->signer, with its warrant (the floor of the
 * forward-only rule), so the first poll switches only when the store
 * changed since; NULL (and warrant NULL) when the slot is empty: the first
 * poll finds out why (no active key, several, a key refused) and logs and
 * audits it. */
cs_err cs_key_watch_new(cs_app *app, const cs_active_key *in_force, const cs_key_warrant *warrant,
			cs_key_watch **out) __attribute__((warn_unused_result));
/* The signing profiles: the watch follows each profile's active key
 * (cs_store_key_active_in) into its slot of app->profiles with the same
 * rules, scoped to the profile (cs_app_key_warrant_in; the forward-only
 * floor and the departed keys are the profile's own), logs and audits its
 * key.switch entries with request_id "profile=NAME" (object the kid, or
 * none / several), and keeps its why_code. The revocation list stays the
 * certificate key's. cs_key_watch_new takes app->profiles as they are
 * (each slot made, e.g. by cs_app_profiles_new); before the watch starts,
 * cs_key_watch_profile_in_force tells it what start-up put in force for
 * profile (in_force and warrant NULL: the slot is empty); a profile it was
 * not told of is decided at the first poll. CS_E_NOT_FOUND: no such
 * profile in app. */
cs_err cs_key_watch_profile_in_force(cs_key_watch *watch, const char *profile, const cs_active_key *in_force,
				     const cs_key_warrant *warrant) __attribute__((warn_unused_result));
/* As cs_key_watch_why, for profile's slot (unknown profile or NULL watch:
 * both ""). */
void cs_key_watch_profile_why(cs_key_watch *watch, const char *profile, char code[32], char *why, size_t why_len);
/* One poll on store (the caller's connection) at wall-clock now_ms: the
 * key, then the revocation list, then the store's guards
 * (cs_store_guards_check; a change of their state is logged once). Returns
 * the key step's outcome: CS_OK (nothing to do, or switched), the switch's
 * failure, or the store's. */
cs_err cs_key_watch_poll(cs_key_watch *watch, cs_store *store, int64_t now_ms);
/* The store's guards as the last poll found them: CS_OK (or a NULL watch),
 * or CS_E_STORE with why[why_len] naming the guard missing or altered
 * (/readyz reports the store unavailable). */
cs_err cs_key_watch_guards(cs_key_watch *watch, char *why, size_t why_len);
/* Poll once now (the list is signed before the first request), then every
 * CS_KEY_POLL_MS on a thread of its own with its own store connection
 * (signals blocked in it). */
cs_err cs_key_watch_start(cs_key_watch *watch) __attribute__((warn_unused_result));
/* Stop the thread (if started; again: nothing): the server stops it once
 * its workers are done, so that no key event follows its stop checkpoint.
 * The revocation list it signed stays readable. NULL is ignored. */
void cs_key_watch_stop(cs_key_watch *watch);
/* Stop and free. NULL is ignored. */
void cs_key_watch_free(cs_key_watch *watch);
/* Why the slot is empty, as the watch last found it: the audit code
 * (no_active_key, several_active_keys, unverified_ceremony,
 * stale_ceremony, key_unavailable, key_mismatch, x5c_invalid) into code
 * and the reason logged into why[why_len]; both "" while a key is in force
 * or before the first poll found the slot empty (e.g. for /readyz).
 * NULL: both "". */
void cs_key_watch_why(cs_key_watch *watch, char code[32], char *why, size_t why_len);
/* The revocation list in force at now_ms (a malloc'd copy of its JWS);
 * CS_E_NOT_FOUND when there is none or its next_update has passed. */
cs_err cs_key_watch_revocations(cs_key_watch *watch, int64_t now_ms, char **jws)
	__attribute__((warn_unused_result));
/* The revocations as the list's claim "revoked" holds them ([{id,
 * revoked_at, reason}], by revoked_at, cert_id), with their version
 * (cs_store_revocations_version), read in one snapshot: the list and its
 * version agree. count and rowid may not be NULL. */
cs_err cs_revocations_read(cs_store *store, json_t **list, int64_t *count, int64_t *rowid)
	__attribute__((warn_unused_result));

#endif
