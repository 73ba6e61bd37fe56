/* audit: see audit.h. */
#include "audit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

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
	/* s? writes null for an absent field: every field is always present */
	json_t *j = json_pack("{s:I, s:s, s:s, s:s, s:s?, s:s, s:s, s:s?, s:s?, s:s?, s:s, s:s?, s:s?}", "seq",
			 (json_int_t)e->seq, "ts", e->ts, "node", e->node, "actor", e->actor,
			 "actor_cert_sha256", e->actor_cert_sha256, "role", e->role, "action", e->action,
			 "object", e->object, "project", e->project, "environment", e->environment,
			 "outcome", e->outcome, "error_code", e->error_code, "request_id", e->request_id);
	if (j == NULL || prev == NULL || hash == NULL)
		return j;
	char *p = cs_b64url_encode(prev, 32), *h = cs_b64url_encode(hash, 32);
	if (p == NULL || h == NULL || json_object_set_new(j, "type", json_string("entry")) != 0 ||
	    json_object_set_new(j, "prev_hash", json_string(p)) != 0 ||
	    json_object_set_new(j, "entry_hash", json_string(h)) != 0) {
		json_decref(j);
		j = NULL;
	}
	free(p);
	free(h);
	return j;
}

json_t *cs_audit_checkpoint_json(int64_t first, int64_t last, const uint8_t head[32], const char *ts,
				 const char *node, const char *kind, const char *jws)
{
	char *h = cs_b64url_encode(head, 32);
	json_t *j = h == NULL ? NULL
			      : json_pack("{s:s, s:I, s:I, s:s, s:s, s:s, s:s, s:s}", "type", "checkpoint",
					  "first_seq", (json_int_t)first, "last_seq", (json_int_t)last,
					  "head_hash", h, "time", ts, "node", node, "kind", kind, "jws", jws);
	free(h);
	return j;
}

/* ---- the export ---------------------------------------------------------------- */

typedef struct {
	cs_audit_export_fn fn;
	void *arg;
	const char *since_ts; /* NULL once the first entry not earlier was found */
	int64_t limit, count;
	int64_t first, last; /* exported, 0 when none */
	int64_t walked;      /* the last seq read, exported or skipped */
	int more;            /* an entry past the limit exists */
	int64_t base;        /* the newest purge checkpoint's last_seq, 0 when none */
	int failed;
} export_ctx;

static int export_entry(void *arg, const cs_audit_entry *e, const uint8_t prev[32], const uint8_t hash[32])
{
	export_ctx *x = arg;
	x->walked = e->seq;
	if (x->since_ts != NULL) {
		if (strcmp(e->ts, x->since_ts) < 0)
			return 0; /* RFC 3339 UTC of one width compares as text */
		x->since_ts = NULL; /* from here on every entry: never a gap */
	}
	if (x->limit > 0 && x->count == x->limit) {
		x->more = 1;
		return 1;
	}
	json_t *j = cs_audit_entry_json(e, prev, hash);
	if (j == NULL) {
		cs_log_error("audit export: entry %lld cannot be written as JSON", (long long)e->seq);
		x->failed = 1;
		return 1;
	}
	if (x->fn(x->arg, j) != 0) {
		x->failed = 1;
		return 1;
	}
	if (x->count++ == 0)
		x->first = e->seq;
	x->last = e->seq;
	return 0;
}

static int export_checkpoint(void *arg, int64_t first, int64_t last, const uint8_t head[32], const char *ts,
			     const char *node, const char *kind, const char *jws)
{
	export_ctx *x = arg;
	int is_purge = strcmp(kind, "purge") == 0;
	/* the range starts at the first entry exported, or where it would have */
	int64_t from = x->count > 0 ? x->first : x->walked + 1;
	int wanted = is_purge ? last == x->base
			      : last >= from && (x->count == 0 || last <= x->last || !x->more);
	if (!wanted)
		return 0;
	json_t *j = cs_audit_checkpoint_json(first, last, head, ts, node, kind, jws);
	if (j == NULL || x->fn(x->arg, j) != 0) {
		x->failed = 1;
		return 1;
	}
	return 0;
}

cs_err cs_audit_export(cs_store *store, int64_t from_seq, const char *since_ts, int64_t limit,
		       cs_audit_export_fn fn, void *arg, int64_t *next_from_seq)
{
	export_ctx x = {.fn = fn, .arg = arg, .since_ts = since_ts, .limit = limit};
	uint8_t base_head[32];
	*next_from_seq = 0;
	if (from_seq < 1)
		from_seq = 1;
	x.walked = from_seq - 1;
	cs_err r = cs_store_read_begin(store); /* entries and checkpoints of one moment */
	if (r != CS_OK)
		return r;
	if ((r = cs_store_purge_base(store, &x.base, base_head)) == CS_E_NOT_FOUND) {
		x.base = 0;
		r = CS_OK;
	}
	if (r == CS_OK)
		r = cs_store_audit_each(store, from_seq, 0, export_entry, &x);
	if (r == CS_OK && !x.failed)
		r = cs_store_checkpoints_each(store, export_checkpoint, &x);
	cs_store_read_end(store);
	if (r == CS_OK && x.failed)
		r = CS_E_STORE;
	if (r == CS_OK && x.more)
		*next_from_seq = x.last + 1;
	return r;
}

/* ---- retention ---------------------------------------------------------------- */

cs_err cs_audit_time_parse(const char *ts, int64_t *ms)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *rest = ts != NULL ? strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
	if (rest == NULL || strlen(ts) != 24 || rest != ts + 19 || rest[0] != '.' || rest[4] != 'Z')
		return CS_E_INVALID_ARG;
	int frac = 0;
	for (int i = 1; i <= 3; i++) {
		if (rest[i] < '0' || rest[i] > '9')
			return CS_E_INVALID_ARG;
		frac = frac * 10 + (rest[i] - '0');
	}
	*ms = (int64_t)timegm(&tm) * 1000 + frac;
	return CS_OK;
}

void cs_audit_time_format(int64_t ms, char out[32])
{
	time_t secs = (time_t)(ms / 1000);
	int frac = (int)(ms % 1000);
	if (frac < 0) {
		frac += 1000;
		secs--;
	}
	struct tm tm;
	char date[24] = "";
	gmtime_r(&secs, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, 32, "%.19s.%03dZ", date, frac);
}

cs_err cs_audit_purge_cutoff(const char *reference, int64_t now_ms, int retention_days, char cutoff[32],
			     int64_t *ahead_ms)
{
	int64_t ref = 0;
	cs_err r = cs_audit_time_parse(reference, &ref);
	if (r != CS_OK)
		return r;
	*ahead_ms = now_ms - ref;
	int64_t basis = now_ms < ref ? now_ms : ref;
	cs_audit_time_format(basis - (int64_t)retention_days * 86400 * 1000, cutoff);
	return CS_OK;
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
