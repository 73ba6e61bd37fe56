/*
 * access: who may do what, decided in one place (issue 13).
 *
 * The configuration's access.grants map client identities to roles with
 * scopes. An identity is the verified client certificate's first URI SAN
 * (tls.h). A grant's identity is exact (compared byte for byte), or a
 * pattern: a prefix ending in "/", then "*" (the only '*' allowed). It
 * matches any identity that starts with the prefix, its "/" included, and
 * has at least one more character: the pattern made of
 * "spiffe://example.org/ns/payments/" and "*" matches
 * spiffe://example.org/ns/payments/api and .../payments/api/v2, not
 * .../payments itself nor .../payments-old/api. An identity may hold
 * several grants; a request is allowed when any grant allows it. Deny by
 * default.
 *
 * Roles:
 *  - generator: generate and certify, within its projects, environments
 *    and (when given) presets; read the certificates of its projects, and
 *    the inventory of its projects and environments.
 *  - auditor: read certificates, the inventory, the audit log and
 *    checkpoints, for its projects ("*": every project, and entries
 *    without a project); and,
 *    when it lists profiles, the signature records of those profiles.
 *  - operator: metrics, readiness detail, reload.
 *  - signer: sign with its profiles (issue 15) and read the signature
 *    records of those profiles; nothing else but presets and policy.
 * Any grant: presets and policy. Public (no grant): /healthz, /readyz,
 * the JWKS. No role changes or deletes audit entries; key ceremonies are
 * not an API role (credsign-admin, dual control).
 * Scope: "*" alone in a list covers every value, none included; otherwise
 * a value is covered when it is in the list, and a request without the
 * value (no project) is covered only by "*". A generator without presets
 * may use every preset. sign and signature.read are scoped by the
 * signing profile alone: a grant's profiles ("*": every profile) must
 * cover it; an auditor without profiles reads no signature records.
 *
 * Rate limits: a grant may set rate (requests per second, > 0) and burst
 * (bucket size, >= 1); each (identity, grant) pair has its own token
 * bucket. A request that its allowing grant's bucket cannot pay is
 * refused with the seconds until it could (HTTP 429 Retry-After). When
 * several grants allow a request, one without a limit is used first, then
 * the first whose bucket can pay.
 *
 * A cs_access is immutable once built and reference counted: SIGHUP
 * builds a new one and swaps it in (cs_access_swap); a request keeps the
 * one it started with (cs_access_acquire / cs_access_unref). Rate buckets
 * live beside it and survive a swap for the grants that stay identical
 * (same identity, role, scope, rate and burst, wherever in the list).
 * Thread-safe.
 */
#ifndef CS_ACCESS_H
#define CS_ACCESS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "cs_error.h"
#include "preset.h"

typedef struct cs_access cs_access;

typedef enum {
	CS_ACTION_GENERATE,     /* POST /api/generate */
	CS_ACTION_CERTIFY,      /* POST /api/generate-certificate */
	CS_ACTION_CERT_READ,    /* GET /cert/{id}[.jws] */
	CS_ACTION_AUDIT_READ,   /* GET /api/audit, /api/audit/checkpoint */
	CS_ACTION_PRESETS_READ, /* GET /api/presets */
	CS_ACTION_POLICY_READ,  /* GET /api/policy */
	CS_ACTION_METRICS_READ, /* GET /metrics */
	CS_ACTION_READY_DETAIL, /* readiness detail */
	CS_ACTION_RELOAD,       /* reload */
	CS_ACTION_SIGN,         /* POST /api/sign: a signer grant covering the profile */
	CS_ACTION_SIGNATURE_READ, /* GET /api/signatures/{id}: a signer or auditor grant covering the profile */
	/* GET /api/inventory: an auditor grant covering the project, or a
	 * generator grant covering the project and environment */
	CS_ACTION_INVENTORY_READ
} cs_access_action;
#define CS_ACTION_COUNT (CS_ACTION_INVENTORY_READ + 1)

/* The scope a request asks for; NULL members: not part of the request.
 * generate and certify: project, environment and preset (certify: those
 * of the generation session); cert.read: the certificate's project;
 * audit.read: the project asked for, NULL for the whole log;
 * inventory.read: the record's (or the query's) project and environment. */
typedef struct {
	const char *project, *environment, *preset;
	/* sign and signature.read: the signing profile (required: NULL is
	 * covered by no grant); ignored by the other actions */
	const char *profile;
} cs_access_scope;

typedef struct {
	int allowed;
	/* the grant that allowed it, or whose rate limit refused it, as
	 * "access.grants[N]" (N counts from 0, as in configuration messages);
	 * "" when no grant covers the request */
	char grant[32];
	/* allowed: that grant's role; refused: the role the action needs
	 * ("generator", "auditor or generator", "auditor", "operator",
	 * "signer", "auditor or signer", "any") */
	const char *role;
	/* refused: why, naming the missing grant, e.g. "no generator grant for
	 * project payments, environment production, preset soc2"; "" when
	 * allowed */
	char reason[256];
	/* refused by the allowing grant's rate limit: seconds until a request
	 * could pass (>= 1); 0 otherwise */
	int retry_after;
} cs_access_decision;

/* "generate", "certify", "cert.read", "audit.read", "presets.read",
 * "policy.read", "metrics.read", "ready.detail", "reload", "sign",
 * "signature.read", "inventory.read" */
const char *cs_access_action_name(cs_access_action action);
/* The action of that name; -1 when there is none. */
int cs_access_action_parse(const char *name);
/* "generator", "auditor", "operator", "signer" */
const char *cs_access_role_name(cs_config_role role);

/* Build the rules from a loaded configuration (its access.grants, copied:
 * the configuration may be freed afterwards). One reference. */
cs_err cs_access_new(const cs_config *cfg, cs_access **out) __attribute__((warn_unused_result));
cs_access *cs_access_ref(cs_access *access);
void cs_access_unref(cs_access *access);

/* Decide; when take_rate is set and the request is allowed, charge the
 * allowing grant's bucket (a request refused by its rate is not
 * allowed). now_ms: a monotonic clock in milliseconds. Never fails: an
 * unknown or NULL identity is refused. */
void cs_access_decide(cs_access *access, const char *identity, cs_access_action action,
		      const cs_access_scope *scope, int take_rate, int64_t now_ms, cs_access_decision *out);

/* inventory.read of a whole project or of every project (GET
 * /api/inventory without an environment, or without a project): allowed
 * when identity holds an auditor grant covering project (NULL: any), or a
 * generator grant covering project (NULL: any) in at least one
 * environment. The records are then decided one by one (cs_access_decide
 * on each record's scope, rates aside). With take_rate the request is
 * charged once, to the first such grant whose bucket can pay (a grant
 * without a rate pays nothing), as cs_access_decide charges its allowing
 * grant; *out as cs_access_decide's (refused: no such grant, or
 * retry_after > 0 when every such bucket is empty). */
void cs_access_inventory_scope(cs_access *access, const char *identity, const char *project, int take_rate,
			       int64_t now_ms, cs_access_decision *out);

/* For an explanation (credsign access check): calls fn, in order, for
 * every grant whose identity pattern matches identity, with whether it
 * covers the action in that scope (rates aside) and, when it does not,
 * why ("role auditor does not generate", "project web is not among its
 * projects"). Returns the number of such grants. */
size_t cs_access_explain(const cs_access *access, const char *identity, cs_access_action action,
			 const cs_access_scope *scope,
			 void (*fn)(void *arg, const char *grant, const char *role, int covers,
				    const char *why),
			 void *arg);

/* Identities holding both generator and auditor rights somewhere (a
 * separation-of-duties warning at start and reload): calls fn for each
 * (generator grant, auditor grant) pair whose identities can be the same
 * client, with that identity (the narrower of the two when patterns
 * overlap). Scopes do not matter. Returns the number of pairs. */
size_t cs_access_each_conflict(const cs_access *access,
			       void (*fn)(void *arg, const char *identity, const char *generator_grant,
					  const char *auditor_grant),
			       void *arg);

/* Presets named by grants that do not exist: each reported to diag as
 * "FILE:LINE: setting 'access.grants.[N].presets': unknown preset 'x'"
 * (at start and in --check-config, once the presets are loaded).
 * CS_E_CONFIG when there is one. */
cs_err cs_access_check_presets(const cs_config *cfg, const cs_preset_set *presets,
			       cs_config_diag *diag);

/* ---- the rules in force ------------------------------------------------------
 * A slot holds the current rules. cs_access_acquire gives a request its
 * own reference (release it with cs_access_unref when the request ends);
 * cs_access_swap replaces the rules atomically: requests already holding
 * the old ones finish under them, the next acquire gets the new ones. */
typedef struct cs_access_slot cs_access_slot;

/* Takes over the caller's reference to initial. */
cs_err cs_access_slot_new(cs_access *initial, cs_access_slot **out) __attribute__((warn_unused_result));
void cs_access_slot_free(cs_access_slot *slot);
cs_access *cs_access_acquire(cs_access_slot *slot);
/* Takes over the caller's reference to next, which must not have decided
 * anything yet: it adopts the rate buckets of the rules it replaces (kept
 * for its identical grants). */
void cs_access_swap(cs_access_slot *slot, cs_access *next);

#endif
