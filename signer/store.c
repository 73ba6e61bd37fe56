/* store: the backend-independent part of store.h: picking a backend by the
 * target, the calls every backend shares, and one dispatch per call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cs_log.h"
#include "store_backend.h"

cs_err cs_store_open(const char *path, cs_store **out)
{
	return cs_store_sqlite_open(path, out);
}

cs_err cs_store_open_existing_readonly(const char *path, cs_store **out)
{
	return cs_store_sqlite_open_existing_readonly(path, out);
}

cs_err cs_store_connect(const cs_store_target *t, cs_store **out)
{
	*out = NULL;
	if (t->backend == CS_STORE_POSTGRESQL)
		return cs_store_pg_open(t, 0, out);
	return cs_store_sqlite_open(t->path, out);
}

cs_err cs_store_connect_existing_readonly(const cs_store_target *t, cs_store **out)
{
	*out = NULL;
	if (t->backend == CS_STORE_POSTGRESQL)
		return cs_store_pg_open(t, 1, out);
	return cs_store_sqlite_open_existing_readonly(t->path, out);
}

void cs_store_close(cs_store *s)
{
	if (s != NULL)
		s->ops->close(s);
}

cs_err cs_store_clock(cs_store *s, int64_t *now_ms)
{
	*now_ms = 0;
	if (s->ops->clock == NULL)
		return CS_E_NOT_FOUND; /* no clock of its own */
	return s->ops->clock(s, now_ms);
}

cs_err cs_store_guards_check(cs_store *s, char *why, size_t why_len)
{
	if (why_len > 0)
		why[0] = '\0';
	if (s->ops->guards_check == NULL)
		return CS_OK; /* checked at open only */
	return s->ops->guards_check(s, why, why_len);
}

cs_err cs_store_key_active(cs_store *s, cs_active_key *out)
{
	return s->ops->key_active_in(s, NULL, out);
}

cs_err cs_store_keys_ever_active(cs_store *s, int *ever)
{
	return s->ops->keys_ever_active_in(s, NULL, ever);
}

/* The bit of *seen for a profile (NULL: the certificate keys). */
static uint64_t several_bit(const char *profile)
{
	if (profile == NULL)
		return 1;
	uint32_t h = 2166136261u; /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)profile; *p != '\0'; p++)
		h = (h ^ *p) * 16777619u;
	return (uint64_t)1 << (1 + h % 63);
}

cs_err cs_store_note_active(uint64_t *seen, const char *profile, int64_t n)
{
	uint64_t bit = several_bit(profile);
	if (n <= 1) {
		*seen &= ~bit;
		return CS_OK;
	}
	if (!(*seen & bit) && profile == NULL)
		cs_log_error("store: %lld keys are active, one at most can be (the index signing_keys_one_active is "
			     "gone): store tampered or damaged",
			     (long long)n);
	else if (!(*seen & bit))
		cs_log_error("store: %lld keys of profile %s are active, one at most can be (the index "
			     "signing_keys_one_active is gone): store tampered or damaged",
			     (long long)n, profile);
	*seen |= bit;
	return CS_E_CONFLICT;
}

void cs_session_row_free(cs_session_row *row)
{
	free(row->cert_sha256);
	free(row->claims_json);
	memset(row, 0, sizeof(*row));
}

void cs_cert_row_free(cs_cert_row *row)
{
	free(row->header_b64);
	free(row->claims_json);
	free(row->signature_b64);
	memset(row, 0, sizeof(*row));
}

void cs_active_key_free(cs_active_key *key)
{
	if (key == NULL)
		return;
	free(key->kid);
	free(key->uri);
	free(key->x5c_json);
	memset(key, 0, sizeof(*key));
}

/* ---- one dispatch per call --------------------------------------------------- */

cs_err cs_store_ping(cs_store *store)
{
	return store->ops->ping(store);
}

cs_err cs_store_write_begin(cs_store *store, int64_t deadline_ms)
{
	return store->ops->write_begin(store, deadline_ms);
}

cs_err cs_store_write_end(cs_store *store, cs_err r)
{
	return store->ops->write_end(store, r);
}

cs_err cs_store_savepoint(cs_store *store)
{
	return store->ops->savepoint(store);
}

cs_err cs_store_savepoint_end(cs_store *store, cs_err r)
{
	return store->ops->savepoint_end(store, r);
}

cs_err cs_store_read_begin(cs_store *store)
{
	return store->ops->read_begin(store);
}

void cs_store_read_end(cs_store *store)
{
	store->ops->read_end(store);
}

int64_t cs_store_changes(cs_store *store)
{
	return store->ops->changes(store);
}

cs_err cs_store_session_insert(cs_store *store, const cs_gen_session *session)
{
	return store->ops->session_insert(store, session);
}

cs_err cs_store_session_get(cs_store *store, const char *session_id, cs_session_row *row)
{
	return store->ops->session_get(store, session_id, row);
}

cs_err cs_store_session_claim(cs_store *store, const char *session_id, const char *cert_id, int *claimed)
{
	return store->ops->session_claim(store, session_id, cert_id, claimed);
}

cs_err cs_store_cert_insert(cs_store *store, const char *cert_id, const char *session_id, const char *kid, const cs_cert_parts *cert, int64_t created_ms)
{
	return store->ops->cert_insert(store, cert_id, session_id, kid, cert, created_ms);
}

cs_err cs_store_cert_get(cs_store *store, const char *cert_id, cs_cert_row *row)
{
	return store->ops->cert_get(store, cert_id, row);
}

cs_err cs_store_sessions_delete_expired(cs_store *store, int64_t expired_before_ms, int64_t *removed)
{
	return store->ops->sessions_delete_expired(store, expired_before_ms, removed);
}

cs_err cs_store_probe_write(cs_store *store, int64_t now_ms)
{
	return store->ops->probe_write(store, now_ms);
}

cs_err cs_store_key_upsert(cs_store *store, const char *kid, const char *uri, const char *jwk_json, const char *status)
{
	return store->ops->key_upsert(store, kid, uri, jwk_json, status);
}

cs_err cs_store_key_set_status(cs_store *store, const char *kid, const char *status)
{
	return store->ops->key_set_status(store, kid, status);
}

cs_err cs_store_keys_each(cs_store *store, cs_key_row_fn fn, void *arg)
{
	return store->ops->keys_each(store, fn, arg);
}

cs_err cs_store_keys_info(cs_store *store, cs_key_info_fn fn, void *arg)
{
	return store->ops->keys_info(store, fn, arg);
}

cs_err cs_store_key_info(cs_store *store, const char *kid, cs_key_info_fn fn, void *arg)
{
	return store->ops->key_info(store, kid, fn, arg);
}

cs_err cs_store_key_active_in(cs_store *store, const char *profile, cs_active_key *out)
{
	return store->ops->key_active_in(store, profile, out);
}

cs_err cs_store_keys_ever_active_in(cs_store *store, const char *profile, int *ever)
{
	return store->ops->keys_ever_active_in(store, profile, ever);
}

cs_err cs_store_key_insert(cs_store *store, const cs_key_info *key)
{
	return store->ops->key_insert(store, key);
}

cs_err cs_store_key_event(cs_store *store, const char *kid, cs_key_event event, const char *at, const char *by, const char *ceremony)
{
	return store->ops->key_event(store, kid, event, at, by, ceremony);
}

cs_err cs_store_key_set_chain(cs_store *store, const char *kid, const char *x5c_json)
{
	return store->ops->key_set_chain(store, kid, x5c_json);
}

cs_err cs_store_ceremony_get(cs_store *store, const char *id, cs_ceremony_fn fn, cs_approval_fn afn, void *arg)
{
	return store->ops->ceremony_get(store, id, fn, afn, arg);
}

cs_err cs_store_ceremonies_each(cs_store *store, cs_ceremony_fn fn, void *arg)
{
	return store->ops->ceremonies_each(store, fn, arg);
}

cs_err cs_store_ceremony_insert(cs_store *store, const cs_ceremony_record *c)
{
	return store->ops->ceremony_insert(store, c);
}

cs_err cs_store_approval_insert(cs_store *store, const cs_approval_record *a)
{
	return store->ops->approval_insert(store, a);
}

cs_err cs_store_ceremony_close(cs_store *store, const char *id, const char *at, const char *by, const char *result_json)
{
	return store->ops->ceremony_close(store, id, at, by, result_json);
}

cs_err cs_store_rollovers_each(cs_store *store, cs_rollover_fn fn, void *arg)
{
	return store->ops->rollovers_each(store, fn, arg);
}

cs_err cs_store_rollover_insert(cs_store *store, const cs_rollover_record *r)
{
	return store->ops->rollover_insert(store, r);
}

cs_err cs_store_revocations_each(cs_store *store, cs_revocation_fn fn, void *arg)
{
	return store->ops->revocations_each(store, fn, arg);
}

cs_err cs_store_revocation_get(cs_store *store, const char *cert_id, cs_revocation_fn fn, void *arg)
{
	return store->ops->revocation_get(store, cert_id, fn, arg);
}

cs_err cs_store_inventory_each(cs_store *store, const char *project, const char *environment,
			       cs_inventory_row_fn fn, void *arg)
{
	if (store->ops->inventory_each == NULL)
		return CS_E_STORE;
	return store->ops->inventory_each(store, project, environment, fn, arg);
}

cs_err cs_store_revocations_version(cs_store *store, int64_t *count, int64_t *last_rowid)
{
	return store->ops->revocations_version(store, count, last_rowid);
}

cs_err cs_store_cert_exists(cs_store *store, const char *cert_id)
{
	return store->ops->cert_exists(store, cert_id);
}

cs_err cs_store_cert_by_other_key(cs_store *store, const char *kid)
{
	return store->ops->cert_by_other_key(store, kid);
}

cs_err cs_store_key_compromised(cs_store *store, const char *kid, int *compromised)
{
	return store->ops->key_compromised(store, kid, compromised);
}

cs_err cs_store_revocation_insert(cs_store *store, const cs_revocation_record *r)
{
	return store->ops->revocation_insert(store, r);
}

cs_err cs_store_signature_by_other_key(cs_store *store, const char *profile, const char *kid)
{
	return store->ops->signature_by_other_key(store, profile, kid);
}

cs_err cs_store_signature_insert(cs_store *store, const cs_signature_record *r)
{
	return store->ops->signature_insert(store, r);
}

cs_err cs_store_signature_get(cs_store *store, const char *id, cs_signature_fn fn, void *arg)
{
	return store->ops->signature_get(store, id, fn, arg);
}

cs_err cs_store_signatures_by_sha256(cs_store *store, const char *sha256_hex, int64_t limit, cs_signature_row_fn fn, void *arg)
{
	return store->ops->signatures_by_sha256(store, sha256_hex, limit, fn, arg);
}

cs_err cs_store_key_formats_signed(cs_store *store, const char *profile, const char *kid, const char *formats[CS_STORE_SIG_FORMATS + 1])
{
	return store->ops->key_formats_signed(store, profile, kid, formats);
}

cs_err cs_store_node_claim(cs_store *store, const char *node_id, const char *instance, const char *host, int64_t pid, int64_t now_ms, int64_t live_ms, char **holder)
{
	return store->ops->node_claim(store, node_id, instance, host, pid, now_ms, live_ms, holder);
}

cs_err cs_store_audit_last(cs_store *store, int64_t *seq, uint8_t hash[32], char ts[32])
{
	return store->ops->audit_last(store, seq, hash, ts);
}

cs_err cs_store_audit_insert(cs_store *store, const cs_audit_entry *entry, const uint8_t prev_hash[32], const uint8_t entry_hash[32])
{
	return store->ops->audit_insert(store, entry, prev_hash, entry_hash);
}

cs_err cs_store_audit_hash_at(cs_store *store, int64_t seq, uint8_t hash[32], int *found)
{
	return store->ops->audit_hash_at(store, seq, hash, found);
}

cs_err cs_store_audit_first(cs_store *store, int64_t *first)
{
	return store->ops->audit_first(store, first);
}

cs_err cs_store_audit_delete_through(cs_store *store, int64_t seq)
{
	return store->ops->audit_delete_through(store, seq);
}

cs_err cs_store_audit_ts_ordered_from(cs_store *store, int64_t *seq)
{
	return store->ops->audit_ts_ordered_from(store, seq);
}

cs_err cs_store_audit_each(cs_store *store, int64_t from_seq, int64_t limit, cs_audit_row_fn fn, void *arg)
{
	return store->ops->audit_each(store, from_seq, limit, fn, arg);
}

cs_err cs_store_audit_purge_boundary(cs_store *store, const char *cutoff_ts, int64_t *first_seq, int64_t *boundary, uint8_t hash[32])
{
	return store->ops->audit_purge_boundary(store, cutoff_ts, first_seq, boundary, hash);
}

cs_err cs_store_checkpoint_insert(cs_store *store, int64_t first_seq, int64_t last_seq, const uint8_t head_hash[32], const char *ts, const char *node, const char *kind, const char *jws)
{
	return store->ops->checkpoint_insert(store, first_seq, last_seq, head_hash, ts, node, kind, jws);
}

cs_err cs_store_checkpointed(cs_store *store, int64_t *covered)
{
	return store->ops->checkpointed(store, covered);
}

cs_err cs_store_purge_base(cs_store *store, int64_t *last_seq, uint8_t head_hash[32])
{
	return store->ops->purge_base(store, last_seq, head_hash);
}

cs_err cs_store_checkpoint_latest(cs_store *store, char **jws)
{
	return store->ops->checkpoint_latest(store, jws);
}

cs_err cs_store_checkpoints_each(cs_store *store, cs_checkpoint_row_fn fn, void *arg)
{
	return store->ops->checkpoints_each(store, fn, arg);
}

cs_err cs_store_checkpoints_range(cs_store *store, int64_t min_last, int64_t max_last, cs_checkpoint_row_fn fn, void *arg)
{
	return store->ops->checkpoints_range(store, min_last, max_last, fn, arg);
}
