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
	int64_t first_seq, last_seq;
	int64_t ts_ordered_from;      /* the first seq held to a non-decreasing ts */
	int64_t ts_warnings;          /* decreases before it: counted, not a problem */
	int64_t ts_warning_first_seq; /* the first of them */
} cs_audit_report;

/* keys: a JWKS document ({"keys":[...]}). from_seq 0 = from the base. */
cs_err cs_audit_verify(cs_store *store, const json_t *jwks, int64_t from_seq, cs_audit_report *report);

#endif
