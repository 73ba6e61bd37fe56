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
 * with the token key over {first_seq, last_seq, head_hash, time, node,
 * kind}; cs_audit_checkpoint() makes one on demand (timer, stop). Thread-safe.
 */
#ifndef CS_AUDIT_H
#define CS_AUDIT_H

#include <jansson.h>

#include "audit_chain.h"
#include "certsign.h"
#include "config.h"
#include "ledger.h"

typedef struct cs_audit cs_audit;

cs_err cs_audit_open(const cs_config *cfg, cs_signer *signer, cs_audit **out);
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
/* The entry as JSON (export, syslog), with prev_hash and entry_hash in
 * base64url when given. NULL if a field is not valid UTF-8. */
json_t *cs_audit_entry_json(const cs_audit_entry *entry, const uint8_t prev_hash[32],
			    const uint8_t entry_hash[32]);

#endif
