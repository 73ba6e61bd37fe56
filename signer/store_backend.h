/*
 * store_backend: what a store backend implements (store.h's contract, one
 * function per call) and how store.c reaches it. Each backend's connection
 * struct begins with "cs_store base" (its ops), so a cs_store pointer is
 * the backend's own. Only backends and store.c include this header.
 */
#ifndef CS_STORE_BACKEND_H
#define CS_STORE_BACKEND_H

#include "store.h"

typedef struct cs_store_ops {
	const char *name; /* "sqlite", "postgresql" */
	void (*close)(cs_store *store);
	cs_err (*ping)(cs_store *store);
	cs_err (*clock)(cs_store *store, int64_t *now_ms);
	cs_err (*guards_check)(cs_store *store, char *why, size_t why_len); /* NULL: at open only */
	cs_err (*write_begin)(cs_store *store, int64_t deadline_ms);
	cs_err (*write_end)(cs_store *store, cs_err r);
	cs_err (*savepoint)(cs_store *store);
	cs_err (*savepoint_end)(cs_store *store, cs_err r);
	cs_err (*read_begin)(cs_store *store);
	void (*read_end)(cs_store *store);
	int64_t (*changes)(cs_store *store);
	cs_err (*session_insert)(cs_store *store, const cs_gen_session *session);
	cs_err (*session_get)(cs_store *store, const char *session_id, cs_session_row *row);
	cs_err (*session_claim)(cs_store *store, const char *session_id, const char *cert_id, int *claimed);
	cs_err (*cert_insert)(cs_store *store, const char *cert_id, const char *session_id, const char *kid, const cs_cert_parts *cert, int64_t created_ms);
	cs_err (*cert_get)(cs_store *store, const char *cert_id, cs_cert_row *row);
	cs_err (*sessions_delete_expired)(cs_store *store, int64_t expired_before_ms, int64_t *removed);
	cs_err (*probe_write)(cs_store *store, int64_t now_ms);
	cs_err (*key_upsert)(cs_store *store, const char *kid, const char *uri, const char *jwk_json, const char *status);
	cs_err (*key_set_status)(cs_store *store, const char *kid, const char *status);
	cs_err (*keys_each)(cs_store *store, cs_key_row_fn fn, void *arg);
	cs_err (*keys_info)(cs_store *store, cs_key_info_fn fn, void *arg);
	cs_err (*key_info)(cs_store *store, const char *kid, cs_key_info_fn fn, void *arg);
	cs_err (*key_active_in)(cs_store *store, const char *profile, cs_active_key *out);
	cs_err (*keys_ever_active_in)(cs_store *store, const char *profile, int *ever);
	cs_err (*key_insert)(cs_store *store, const cs_key_info *key);
	cs_err (*key_event)(cs_store *store, const char *kid, cs_key_event event, const char *at, const char *by, const char *ceremony);
	cs_err (*key_set_chain)(cs_store *store, const char *kid, const char *x5c_json);
	cs_err (*ceremony_get)(cs_store *store, const char *id, cs_ceremony_fn fn, cs_approval_fn afn, void *arg);
	cs_err (*ceremonies_each)(cs_store *store, cs_ceremony_fn fn, void *arg);
	cs_err (*ceremony_insert)(cs_store *store, const cs_ceremony_record *c);
	cs_err (*approval_insert)(cs_store *store, const cs_approval_record *a);
	cs_err (*ceremony_close)(cs_store *store, const char *id, const char *at, const char *by, const char *result_json);
	cs_err (*rollovers_each)(cs_store *store, cs_rollover_fn fn, void *arg);
	cs_err (*rollover_insert)(cs_store *store, const cs_rollover_record *r);
	cs_err (*revocations_each)(cs_store *store, cs_revocation_fn fn, void *arg);
	cs_err (*revocation_get)(cs_store *store, const char *cert_id, cs_revocation_fn fn, void *arg);
	cs_err (*revocations_version)(cs_store *store, int64_t *count, int64_t *last_rowid);
	cs_err (*cert_exists)(cs_store *store, const char *cert_id);
	cs_err (*cert_by_other_key)(cs_store *store, const char *kid);
	cs_err (*key_compromised)(cs_store *store, const char *kid, int *compromised);
	cs_err (*revocation_insert)(cs_store *store, const cs_revocation_record *r);
	cs_err (*inventory_each)(cs_store *store, const char *project, const char *environment, cs_inventory_row_fn fn, void *arg);
	cs_err (*signature_by_other_key)(cs_store *store, const char *profile, const char *kid);
	cs_err (*signature_insert)(cs_store *store, const cs_signature_record *r);
	cs_err (*signature_get)(cs_store *store, const char *id, cs_signature_fn fn, void *arg);
	cs_err (*signatures_by_sha256)(cs_store *store, const char *sha256_hex, int64_t limit, cs_signature_row_fn fn, void *arg);
	cs_err (*key_formats_signed)(cs_store *store, const char *profile, const char *kid, const char *formats[CS_STORE_SIG_FORMATS + 1]);
	cs_err (*node_claim)(cs_store *store, const char *node_id, const char *instance, const char *host, int64_t pid, int64_t now_ms, int64_t live_ms, char **holder);
	cs_err (*audit_last)(cs_store *store, int64_t *seq, uint8_t hash[32], char ts[32]);
	cs_err (*audit_insert)(cs_store *store, const cs_audit_entry *entry, const uint8_t prev_hash[32], const uint8_t entry_hash[32]);
	cs_err (*audit_hash_at)(cs_store *store, int64_t seq, uint8_t hash[32], int *found);
	cs_err (*audit_first)(cs_store *store, int64_t *first);
	cs_err (*audit_delete_through)(cs_store *store, int64_t seq);
	cs_err (*audit_ts_ordered_from)(cs_store *store, int64_t *seq);
	cs_err (*audit_each)(cs_store *store, int64_t from_seq, int64_t limit, cs_audit_row_fn fn, void *arg);
	cs_err (*audit_purge_boundary)(cs_store *store, const char *cutoff_ts, int64_t *first_seq, int64_t *boundary, uint8_t hash[32]);
	cs_err (*checkpoint_insert)(cs_store *store, int64_t first_seq, int64_t last_seq, const uint8_t head_hash[32], const char *ts, const char *node, const char *kind, const char *jws);
	cs_err (*checkpointed)(cs_store *store, int64_t *covered);
	cs_err (*purge_base)(cs_store *store, int64_t *last_seq, uint8_t head_hash[32]);
	cs_err (*checkpoint_latest)(cs_store *store, char **jws);
	cs_err (*checkpoints_each)(cs_store *store, cs_checkpoint_row_fn fn, void *arg);
	cs_err (*checkpoints_range)(cs_store *store, int64_t min_last, int64_t max_last, cs_checkpoint_row_fn fn, void *arg);
} cs_store_ops;

struct cs_store {
	const cs_store_ops *ops;
};

/* What a backend does with the count of active keys of a profile (NULL:
 * the certificate keys) it found: more than one (the schema's unique index
 * forbids it: gone, the store edited) is CS_E_CONFLICT, logged once per
 * connection and profile until one or none is active again (*seen: the
 * connection's bits); 0 or 1: CS_OK. */
cs_err cs_store_note_active(uint64_t *seen, const char *profile, int64_t n);

/* The backends' opens (store.c picks one by the target). */
cs_err cs_store_sqlite_open(const char *path, cs_store **out);
cs_err cs_store_sqlite_open_existing_readonly(const char *path, cs_store **out);
cs_err cs_store_pg_open(const cs_store_target *target, int readonly, cs_store **out);
/* A bare libpq connection (PGconn) to a PostgreSQL target, made as the
 * backend makes its own (password file read and wiped, TLS settings,
 * search_path credsign), for what runs outside the store's calls (the
 * copy of store_copy.c). Nothing migrated or checked; a failure logged,
 * naming the setting at fault. PQfinish it. */
struct pg_conn;
cs_err cs_store_pg_raw_connect(const cs_store_target *target, struct pg_conn **out)
	__attribute__((warn_unused_result));

#endif
