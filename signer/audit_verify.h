/*
 * audit_verify: independent verification of the audit log in a store.
 *
 * Recomputes the hash chain from its base (zeros, or the newest signed purge
 * checkpoint), checks every checkpoint's ES256 signature against a JWKS and
 * that its payload matches the stored row, and that the chain passes
 * through every checkpoint's head_hash. Reports the first bad sequence
 * number and why: missing, reordered, modified, modified and re-chained
 * (checkpoint mismatch), truncated after a checkpoint, bad signature, a ts
 * earlier than the entry before it. ts has been non-decreasing along seq
 * since the store recorded where that began (cs_store_audit_ts_ordered_from):
 * a decrease from there on is a problem; one before it (written by an
 * older version, which took ts before seq) is only counted as a warning.
 *
 * Intact is not authenticated: a chain anyone can recompute proves nothing
 * until it ends in a signed checkpoint's head. The report says how many
 * entries are authenticated (the chain through them ends in a signed head),
 * how many a checkpoint covers that ends past an export (a page), and how
 * many no checkpoint covers yet (the unsigned tail, which only a checkpoint
 * kept outside the appliance, the pin, can vouch for).
 *
 * The JWKS should come from a source the store's holder cannot rewrite
 * (the published /.well-known/jwks.json, a copy kept by the auditor).
 */
#ifndef CS_AUDIT_VERIFY_H
#define CS_AUDIT_VERIFY_H

#include <jansson.h>

#include "store.h"

typedef struct {
	int intact;
	int64_t bad_seq;
	char reason[256];
	int64_t entries;
	int64_t checkpoints;
	/* checkpoints whose signature verifies with a key the JWKS marks
	 * compromised: they authenticate nothing (whoever holds the key could
	 * have made them); later checkpoints by a trusted key cover the chain */
	int64_t checkpoints_compromised;
	int64_t first_seq, last_seq;  /* the entries walked */
	int64_t base_seq;             /* the chain's base: the newest purge checkpoint's last_seq, or 0 */
	int partial;                  /* the walk began after the base, at an entry's own prev_hash */
	int64_t signed_through;       /* the last entry walked that a checkpoint's head_hash covers,
				       * 0 when none: later entries are not signed yet */
	int64_t authenticated;        /* entries first_seq..signed_through: the chain through them ends
				       * in a signed head (0: nothing authenticated) */
	int64_t beyond_first, beyond_last; /* an export: the checkpoint over its last entries that ends
					    * past it (a page cut by its limit), 0 when none */
	int64_t beyond_entries;       /* the entries it covers here: not authenticated by this file */
	int64_t unsigned_entries;     /* entries no checkpoint covers yet (the unsigned tail) */
	int pinned;                   /* a kept checkpoint was given: reached and agreed with when intact */
	int64_t pin_first, pin_last;
	char pin_kind[16];
	int64_t ts_ordered_from;      /* the first seq held to a non-decreasing ts */
	int64_t ts_warnings;          /* decreases before it: counted, not a problem */
	int64_t ts_warning_first_seq; /* the first of them */
} cs_audit_report;

/*
 * A checkpoint the auditor kept outside the appliance (GET
 * /api/audit/checkpoint), to pin a verification to: the log or export
 * must reach its last_seq and agree with its head_hash there (or, for a
 * purge checkpoint, have it as its base). Loaded by cs_audit_pin_load from
 * a file holding the compact JWS, the answer of GET /api/audit/checkpoint
 * ({"checkpoint": JWS, "header", "claims"}) or a checkpoint line of an
 * export; the JWS is verified against jwks (as every checkpoint: ES256, a
 * kid that is its key's thumbprint, typ, exactly the six payload members)
 * and decoded members beside it must equal it. CS_E_SIGNATURE_INVALID or
 * CS_E_INVALID_ARG with why; CS_E_IO when the file cannot be read.
 */
typedef struct {
	int64_t first, last;
	uint8_t head[32];
	char time[32], node[128], kind[16];
	char *jws;
} cs_audit_pin;
cs_err cs_audit_pin_load(const char *path, const json_t *jwks, cs_audit_pin *pin, char why[256]);
void cs_audit_pin_free(cs_audit_pin *pin);

/* keys: a JWKS document ({"keys":[...]}). from_seq 0 = from the base; a
 * from_seq after the base begins at that entry's own prev_hash (partial):
 * the entries up to the last checkpoint head at or after it are
 * authenticated, checkpoints ending before it are checked for their
 * signature only. pin (or NULL): a kept checkpoint the log must reach and
 * agree with. The store is the whole log: a checkpoint past its last entry
 * means truncation. */
cs_err cs_audit_verify_pinned(cs_store *store, const json_t *jwks, int64_t from_seq, const cs_audit_pin *pin,
			      cs_audit_report *report);
cs_err cs_audit_verify(cs_store *store, const json_t *jwks, int64_t from_seq, cs_audit_report *report);

/* The same for an export file (JSON lines as credsign-admin audit export
 * and GET /api/audit write them; docs/audit.md): entries in seq order,
 * checkpoints anywhere, a checkpoint repeated (pages put together) counted
 * once. Every object has exactly its members (an entry its 13 fields,
 * type and both hashes; a checkpoint type, the six signed members and
 * jws): a member more or less is a problem. It begins at its first entry:
 * at the base (the newest purge checkpoint in the file, else zeros) when
 * that entry follows it, else partial. A checkpoint that covers the last
 * entry and ends past it is a page's (beyond_*: those entries are not
 * authenticated by the file); one that begins past the last entry means
 * truncation. The store's ts-order mark is not in an export: decreases of
 * ts are counted as warnings only. CS_E_IO when the file cannot be read. */
cs_err cs_audit_verify_export(const char *path, const json_t *jwks, const cs_audit_pin *pin,
			      cs_audit_report *report);

/* Retention's time reference: the newest checkpoint of kind periodic or
 * stop (signed by the daemon; a purge checkpoint carries the purging host's
 * clock and is never used), its signature checked against jwks and its
 * stored fields against its payload. time: its signed time; *last_seq: the
 * last entry it covers. CS_E_NOT_FOUND when there is none;
 * CS_E_SIGNATURE_INVALID (why says what) when it does not verify. */
cs_err cs_audit_time_reference(cs_store *store, const json_t *jwks, char time[32], int64_t *last_seq,
			       char why[256]);

/*
 * The largest step forward in time between consecutive periodic or stop
 * checkpoints (by last_seq) whose last_seq is in (base_seq, ref_seq]: the
 * checkpoints over the entries still in the log, up to the reference. A
 * clock set forward shows as such a step (so does a daemon that recorded
 * nothing for that long). found: 0 when there are fewer than two such
 * checkpoints. The two checkpoints of the step found are verified against
 * jwks (CS_E_SIGNATURE_INVALID, why). The others' times are read as stored:
 * audit verify checks their signatures.
 */
typedef struct {
	int found;
	int64_t step_ms;
	int64_t before_first, before_last, after_first, after_last;
	char before_time[32], after_time[32];
} cs_audit_clock_step;
cs_err cs_audit_largest_clock_step(cs_store *store, const json_t *jwks, int64_t base_seq, int64_t ref_seq,
				   cs_audit_clock_step *step, char why[256]);

#endif
