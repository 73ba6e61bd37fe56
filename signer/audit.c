/* audit: see audit.h. */
#include "audit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "cs_log.h"
#include "jose.h"

struct cs_audit {
	const cs_config *cfg;
	cs_signer *signer;
	pthread_mutex_t checkpoint_lock;
};

cs_err cs_audit_open(const cs_config *cfg, cs_signer *signer, cs_audit **out)
{
	cs_audit *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return CS_E_NOMEM;
	a->cfg = cfg;
	a->signer = signer;
	pthread_mutex_init(&a->checkpoint_lock, NULL);
	if (cfg->audit.syslog)
		openlog("credsignd", LOG_PID | LOG_NDELAY, LOG_AUTHPRIV);
	*out = a;
	return CS_OK;
}

void cs_audit_free(cs_audit *a)
{
	if (a == NULL)
		return;
	if (a->cfg->audit.syslog)
		closelog();
	pthread_mutex_destroy(&a->checkpoint_lock);
	free(a);
}

void cs_audit_complete(cs_audit *a, cs_audit_entry *e)
{
	/* ts stays unset: the ledger takes it inside the write transaction */
	if (e->node == NULL)
		e->node = a->cfg->server.node_id;
}

json_t *cs_audit_entry_json(const cs_audit_entry *e, const uint8_t prev[32], const uint8_t hash[32])
{
	json_t *j = json_pack("{s:I, s:s, s:s, s:s, s:s?, s:s, s:s, s:s?, s:s?, s:s?, s:s, s:s?, s:s?}", "seq",
			 (json_int_t)e->seq, "ts", e->ts, "node", e->node, "actor", e->actor,
			 "actor_cert_sha256", e->actor_cert_sha256, "role", e->role, "action", e->action,
			 "object", e->object, "project", e->project, "environment", e->environment,
			 "outcome", e->outcome, "error_code", e->error_code, "request_id", e->request_id);
	for (int i = 0; j != NULL && i < 2; i++) {
		const uint8_t *h = i == 0 ? prev : hash;
		char *b = h != NULL ? cs_b64url_encode(h, 32) : NULL;
		if (b != NULL)
			json_object_set_new(j, i == 0 ? "prev_hash" : "entry_hash", json_string(b));
		free(b);
	}
	return j;
}

cs_err cs_audit_sign_checkpoint(cs_signer *signer, int64_t first, int64_t last, const uint8_t head[32],
				const char *ts, const char *node, const char *kind, char **jws)
{
	char *h = cs_b64url_encode(head, 32);
	json_t *claims = h != NULL ? json_pack("{s:I, s:I, s:s, s:s, s:s, s:s}", "first_seq", (json_int_t)first,
					       "last_seq", (json_int_t)last, "head_hash", h, "time", ts,
					       "node", node, "kind", kind)
				   : NULL;
	free(h);
	if (claims == NULL)
		return CS_E_NOMEM;
	cs_err r = cs_signer_jws(signer, CS_CHECKPOINT_TYP, claims, jws);
	json_decref(claims);
	return r;
}

cs_err cs_audit_sign_checkpoint_cb(void *signer, int64_t first, int64_t last, const uint8_t head[32],
				   const char *ts, const char *node, const char *kind, char **jws)
{
	return cs_audit_sign_checkpoint(signer, first, last, head, ts, node, kind, jws);
}

cs_err cs_audit_checkpoint(cs_audit *a, cs_ledger *ledger, const char *kind)
{
	/* the lock spares this process's threads signing the same range; the
	 * ledger keeps other processes' checkpoints from overlapping */
	pthread_mutex_lock(&a->checkpoint_lock);
	cs_err r = cs_ledger_checkpoint_make(ledger, a->cfg->server.node_id, kind, cs_audit_sign_checkpoint_cb,
					     a->signer, NULL, NULL);
	pthread_mutex_unlock(&a->checkpoint_lock);
	if (r != CS_OK)
		cs_log_error("audit %s checkpoint failed: %s", kind, cs_strerror(r));
	return r;
}

void cs_audit_committed(cs_audit *a, cs_ledger *ledger, const cs_audit_entry *e)
{
	if (a->cfg->audit.syslog) {
		json_t *j = cs_audit_entry_json(e, NULL, NULL);
		char *line = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
		if (line != NULL)
			syslog(LOG_INFO, "%s", line);
		free(line);
		json_decref(j);
	}
	if (e->seq % a->cfg->audit.checkpoint_entries == 0)
		(void)cs_audit_checkpoint(a, ledger, "periodic");
}

cs_err cs_audit_record(cs_audit *a, cs_ledger *ledger, cs_audit_entry *e)
{
	cs_audit_complete(a, e);
	cs_err r = cs_ledger_audit_append(ledger, e);
	if (r != CS_OK) {
		cs_log_error("audit entry not written (action=%s actor=%s): %s", e->action, e->actor,
			     cs_strerror(r));
		return r;
	}
	cs_audit_committed(a, ledger, e);
	return CS_OK;
}
