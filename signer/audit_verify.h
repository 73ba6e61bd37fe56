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
	int64_t first_seq, last_seq;  /* the entries walked */
	int64_t base_seq;             /* the chain's base: the newest purge checkpoint's last_seq, or 0 */
	int partial;                  /* the walk began after the base, at an entry's own prev_hash */
	int64_t signed_through;       /* the last entry walked that a checkpoint's head_hash covers,
				       * 0 when none: later entries are not signed yet */
	int64_t ts_ordered_from;      /* the first seq held to a non-decreasing ts */
	int64_t ts_warnings;          /* decreases before it: counted, not a problem */
	int64_t ts_warning_first_seq; /* the first of them */
} cs_audit_report;

/* keys: a JWKS document ({"keys":[...]}). from_seq 0 = from the base; a
 * from_seq after the base begins at that entry's own prev_hash (partial):
 * the entries up to the last checkpoint head at or after it are
 * authenticated, checkpoints ending before it are checked for their
 * signature only. */
cs_err cs_audit_verify(cs_store *store, const json_t *jwks, int64_t from_seq, cs_audit_report *report);

/* The same for an export file (JSON lines as credsign-admin audit export
 * and GET /api/audit write them; docs/audit.md): entries in seq order,
 * checkpoints anywhere, a checkpoint repeated (pages put together) counted
 * once. It begins at its first entry: at the base (the newest purge
 * checkpoint in the file, else zeros) when that entry follows it, else
 * partial. A checkpoint past the last entry means truncation. The store's
 * ts-order mark is not in an export: decreases of ts are counted as
 * warnings only. A line that is not an export object makes the report
 * not intact; CS_E_IO when the file cannot be read. */
cs_err cs_audit_verify_export(const char *path, const json_t *jwks, cs_audit_report *report);

/* Retention's time reference: the newest checkpoint of kind periodic or
 * stop (signed by the daemon; a purge checkpoint carries the purging host's
 * clock and is never used), its signature checked against jwks and its
 * stored fields against its payload. time: its signed time; *last_seq: the
 * last entry it covers. CS_E_NOT_FOUND when there is none;
 * CS_E_SIGNATURE_INVALID (why says what) when it does not verify. */
cs_err cs_audit_time_reference(cs_store *store, const json_t *jwks, char time[32], int64_t *last_seq,
			       char why[256]);

#endif
