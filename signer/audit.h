/*
 * audit: the daemon's side of the tamper-evident audit log.
 *
 * cs_audit_record() completes an entry (node; the ledger fixes its seq and
 * time inside the append's transaction), appends it through the ledger
 * (durable on return, bounded by audit.write_timeout_ms), mirrors it to
 * syslog as one JSON line when audit.syslog is set, and signs a checkpoint
 * when audit.checkpoint_entries entries have accumulated. Entries that
 * belong to a state change (a session, a certificate) are appended inside
 * that change's transaction instead; cs_audit_committed() then does the
 * mirroring and checkpointing.
 *
 * A checkpoint is an ES256 JWS (typ credsign-audit-checkpoint+jwt) signed
 * with the signing key in force (the slot's, certsign.h; none in force: the
 * checkpoint waits, CS_E_NO_ACTIVE_KEY) over {first_seq, last_seq, head_hash, time, node,
 * kind}: head_hash is the entry_hash of entry last_seq; kind is periodic
 * (audit.checkpoint_entries entries, or the audit.checkpoint_seconds timer
 * when entries were added), stop (the daemon's shutdown) or purge
 * (credsign-admin audit purge: first_seq..last_seq are the entries it
 * removed). cs_audit_checkpoint() makes one on demand (timer, stop).
 * There is no trusted time source: checkpoints carry the signer's clock, so
 * the daemon compares its clock with the log's newest time at start
 * (cs_audit_clock_*: clock.ahead, clock.behind).
 * docs/audit.md specifies all of it for independent verifiers. Thread-safe.
 */
#ifndef CS_AUDIT_H
#define CS_AUDIT_H

#include <jansson.h>

#include "audit_chain.h"
#include "certsign.h"
#include "config.h"
#include "ledger.h"
#include "store.h"

typedef struct cs_audit cs_audit;

/* signers: the slot of the key in force (NULL: checkpoints cannot be
 * signed); it must outlive the audit. */
cs_err cs_audit_open(const cs_config *cfg, cs_signer_slot *signers, cs_audit **out);
void cs_audit_free(cs_audit *audit);
/* Fill node when unset. ts is left as it is: when unset, the ledger takes
 * it inside the write transaction that assigns seq (see ledger.h), so ts
 * never decreases along seq. */
void cs_audit_complete(cs_audit *audit, cs_audit_entry *entry);
cs_err cs_audit_record(cs_audit *audit, cs_ledger *ledger, cs_audit_entry *entry)
	__attribute__((warn_unused_result));
void cs_audit_committed(cs_audit *audit, cs_ledger *ledger, const cs_audit_entry *entry);
/* Sign a checkpoint over the entries since the last one (kind: periodic,
 * stop); does nothing when there are none. */
cs_err cs_audit_checkpoint(cs_audit *audit, cs_ledger *ledger, const char *kind);
/* Sign a checkpoint payload (also used by the admin tool's purge). */
cs_err cs_audit_sign_checkpoint(cs_signer *signer, int64_t first, int64_t last,
				const uint8_t head[32], const char *ts, const char *node,
				const char *kind, char **jws);
/* The same as a cs_checkpoint_sign_fn for the ledger; the argument is the
 * cs_signer. */
cs_err cs_audit_sign_checkpoint_cb(void *signer, int64_t first, int64_t last, const uint8_t head[32],
				   const char *ts, const char *node, const char *kind, char **jws);
/* The entry as JSON: its 13 fields, each always present (null when
 * absent). With prev_hash and entry_hash (the export), also "type":"entry"
 * and both hashes in base64url; without (syslog), neither. NULL if a field
 * is not valid UTF-8. */
json_t *cs_audit_entry_json(const cs_audit_entry *entry, const uint8_t prev_hash[32],
			    const uint8_t entry_hash[32]);
/* A checkpoint as exported: {"type":"checkpoint", first_seq, last_seq,
 * head_hash (base64url), time, node, kind, jws}. NULL on allocation failure. */
json_t *cs_audit_checkpoint_json(int64_t first_seq, int64_t last_seq, const uint8_t head_hash[32],
				 const char *ts, const char *node, const char *kind, const char *jws);

/*
 * The export: one format for GET /api/audit and credsign-admin audit export
 * (docs/audit.md, "Export"). In one read transaction of store: the entries
 * from from_seq (or, with since_ts, from the first entry whose ts is not
 * earlier than since_ts; every entry after it follows), at most limit
 * (0 = all), then the checkpoints that authenticate them: the newest purge
 * checkpoint (the base) first, then by last_seq every periodic or stop
 * checkpoint whose last_seq is at or after the first entry exported and at
 * or before the last one, and the first one covering the last entry when
 * it ends past it (a page cut by the limit: it authenticates the page's
 * last entries together with the next page); when the export reaches the
 * end of the log, also those past its last entry (which only a truncated
 * log has). Each object
 * goes to fn, which takes ownership and returns non-zero to stop (then the
 * export fails with CS_E_STORE: never a silent gap). *next_from_seq: the
 * seq to ask for next when the limit cut the export short, else 0. An
 * entry that cannot be JSON (not UTF-8) fails the export.
 */
typedef int (*cs_audit_export_fn)(void *arg, json_t *object);
cs_err cs_audit_export(cs_store *store, int64_t from_seq, const char *since_ts, int64_t limit,
		       cs_audit_export_fn fn, void *arg, int64_t *next_from_seq)
	__attribute__((warn_unused_result));

/*
 * Retention. Age is measured against the signed time of the newest periodic
 * or stop checkpoint (the daemon's clock, cs_audit_time_reference in
 * audit_verify.h), never against the purging host's clock alone:
 *   cutoff = min(now, reference) - retention_days
 * *ahead_ms is now - reference (negative when the local clock is behind).
 * Times are RFC 3339 UTC with milliseconds (cs_audit_now). CS_E_INVALID_ARG
 * when reference is not such a time.
 */
#define CS_AUDIT_CLOCK_AHEAD_MS (86400LL * 1000) /* "far ahead": more than a day */
cs_err cs_audit_purge_cutoff(const char *reference, int64_t now_ms, int retention_days, char cutoff[32],
			     int64_t *ahead_ms) __attribute__((warn_unused_result));
/*
 * The clock against the log, at the daemon's start (before it writes):
 * its newest time is the newest entry's ts or the time of the checkpoint
 * over the newest entries, whichever is later. ahead: now is more than
 * CS_AUDIT_CLOCK_AHEAD_MS after it (a clock set forward, or a daemon
 * stopped or idle that long); behind: now is before it (the log is in the
 * future: its times never decrease, so new entries carry that time).
 * Neither when the log is empty.
 */
typedef struct {
	char now[32];
	char newest[32];      /* "" for an empty log */
	char newest_what[64]; /* "entry 42" or "checkpoint 38..42" */
	int64_t delta_ms;     /* now - newest */
	int ahead, behind;
	/* a store with a clock of its own (PostgreSQL, shared by every node):
	 * this node's clock minus the database's, the query's round trip
	 * halved out; db_clock 0: none (SQLite) */
	int db_clock;
	int64_t db_skew_ms;
} cs_audit_clock;
/* How far a node's clock may be from its database's before the start is
 * refused: sessions expire and audit times order across nodes by it. */
#define CS_AUDIT_DB_SKEW_MAX_MS 2000
cs_err cs_audit_clock_check(cs_store *store, int64_t now_ms, cs_audit_clock *clock)
	__attribute__((warn_unused_result));
/* The same on the store a target names (either backend: a connection of
 * its own, closed on return), with the real-time clock. */
cs_err cs_audit_clock_at_start(const cs_store_target *target, cs_audit_clock *clock)
	__attribute__((warn_unused_result));
/* When ahead or behind: a warning in the log and an audit entry clock.ahead
 * or clock.behind (actor system, outcome failure, object naming both times
 * and the difference in days). */
cs_err cs_audit_clock_record(cs_audit *audit, cs_ledger *ledger, const cs_audit_clock *clock)
	__attribute__((warn_unused_result));

/* The checkpoint an auditor keeps (GET /api/audit/checkpoint): the one
 * over the newest entries (the largest last_seq; a periodic or stop one
 * rather than a purge one ending at the same entry), its JWS malloc'd.
 * CS_E_NOT_FOUND when there is none. */
cs_err cs_audit_newest_checkpoint(cs_store *store, char **jws) __attribute__((warn_unused_result));

/* RFC 3339 UTC with milliseconds <-> milliseconds since the epoch. */
cs_err cs_audit_time_parse(const char *ts, int64_t *ms) __attribute__((warn_unused_result));
void cs_audit_time_format(int64_t ms, char out[32]);

#endif
