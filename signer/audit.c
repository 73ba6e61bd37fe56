/* audit: see audit.h. */
#include "audit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "cs_log.h"
#include "jose.h"
#include "metrics.h"

struct cs_audit {
	const cs_config *cfg;
	cs_signer_slot *signers; /* the key in force signs checkpoints */
	pthread_mutex_t checkpoint_lock;
};

cs_err cs_audit_open(const cs_config *cfg, cs_signer_slot *signers, cs_audit **out)
{
	cs_audit *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return CS_E_NOMEM;
	a->cfg = cfg;
	a->signers = signers;
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

/* A checkpoint of the export (cs_store_checkpoints_range calls it): the
 * base (the purge checkpoint ending at x->base), or a periodic or stop
 * one; with cover_only, only the first of those, then stop. */
typedef struct {
	export_ctx *x;
	int base;       /* the base, not the others */
	int cover_only; /* the first one covering the last entry exported */
} cp_pick;

static int export_checkpoint(void *arg, int64_t first, int64_t last, const uint8_t head[32], const char *ts,
			     const char *node, const char *kind, const char *jws)
{
	cp_pick *p = arg;
	if ((strcmp(kind, "purge") == 0) != p->base)
		return 0;
	if (p->cover_only && first > p->x->last)
		return 1; /* a checkpoint ends at the last entry: none covers it past the page */
	json_t *j = cs_audit_checkpoint_json(first, last, head, ts, node, kind, jws);
	if (j == NULL || p->x->fn(p->x->arg, j) != 0) {
		p->x->failed = 1;
		return 1;
	}
	return p->base || p->cover_only; /* one base; one checkpoint over the last entry */
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
	cp_pick base = {.x = &x, .base = 1}, others = {.x = &x}, cover = {.x = &x, .cover_only = 1};
	if (r == CS_OK && x.base > 0)
		r = cs_store_checkpoints_range(store, x.base, x.base, export_checkpoint, &base);
	if (r == CS_OK && !x.failed)
		r = cs_store_audit_each(store, from_seq, 0, export_entry, &x);
	/* the range starts at the first entry exported, or where it would have */
	int64_t from = x.count > 0 ? x.first : x.walked + 1;
	if (r == CS_OK && !x.failed)
		/* cut short by the limit: those ending inside; else also those past
		 * the last entry (only a truncated log has them) */
		r = cs_store_checkpoints_range(store, from, x.more ? x.last : INT64_MAX, export_checkpoint,
					       &others);
	if (r == CS_OK && !x.failed && x.more)
		/* and the first one over the last entry, ending past the page */
		r = cs_store_checkpoints_range(store, x.last + 1, INT64_MAX, export_checkpoint, &cover);
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
	/* the key in force when the checkpoint starts signs it, to its end */
	cs_signer *signer = cs_signer_acquire(a->signers);
	if (signer == NULL) {
		cs_log_warn("audit %s checkpoint not made: no active signing key (the entries wait for the next "
			    "one)",
			    kind);
		return CS_E_NO_ACTIVE_KEY;
	}
	/* the lock spares this process's threads signing the same range; the
	 * ledger keeps other processes' checkpoints from overlapping */
	pthread_mutex_lock(&a->checkpoint_lock);
	cs_err r = cs_ledger_checkpoint_make(ledger, a->cfg->server.node_id, kind, cs_audit_sign_checkpoint_cb,
					     signer, NULL, NULL);
	pthread_mutex_unlock(&a->checkpoint_lock);
	cs_signer_free(signer);
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
		cs_metrics_audit_entry_failed();
		return r;
	}
	cs_audit_committed(a, ledger, e);
	return CS_OK;
}

/* ---- the clock against the log ----------------------------------------------------- */

typedef struct {
	char ts[32];
	int64_t first, last;
} newest_checkpoint;

static int keep_latest_time(void *arg, int64_t first, int64_t last, const uint8_t head[32], const char *ts,
			    const char *node, const char *kind, const char *jws)
{
	(void)head;
	(void)node;
	(void)kind;
	(void)jws;
	newest_checkpoint *n = arg;
	if (strlen(ts) < sizeof(n->ts) && strcmp(ts, n->ts) > 0) {
		memcpy(n->ts, ts, strlen(ts) + 1);
		n->first = first;
		n->last = last;
	}
	return 0;
}

cs_err cs_audit_clock_check(cs_store *store, int64_t now_ms, cs_audit_clock *c)
{
	int64_t seq = 0, covered = 0, newest_ms = 0;
	uint8_t hash[32];
	char entry_ts[32] = "";
	newest_checkpoint cp = {.ts = ""};
	memset(c, 0, sizeof(*c));
	cs_audit_time_format(now_ms, c->now);
	cs_err r = cs_store_read_begin(store);
	if (r != CS_OK)
		return r;
	if ((r = cs_store_audit_last(store, &seq, hash, entry_ts)) == CS_E_NOT_FOUND) {
		entry_ts[0] = '\0';
		r = CS_OK;
	}
	if (r == CS_OK)
		r = cs_store_checkpointed(store, &covered);
	if (r == CS_OK && covered > 0) /* the checkpoints over the newest entries */
		r = cs_store_checkpoints_range(store, covered, INT64_MAX, keep_latest_time, &cp);
	cs_store_read_end(store);
	if (r != CS_OK)
		return r;
	if (entry_ts[0] == '\0' && cp.ts[0] == '\0')
		return CS_OK; /* an empty log: nothing to compare with */
	if (strcmp(entry_ts, cp.ts) >= 0) { /* RFC 3339 UTC of one width compares as text */
		memcpy(c->newest, entry_ts, sizeof(c->newest));
		snprintf(c->newest_what, sizeof(c->newest_what), "entry %lld", (long long)seq);
	} else {
		memcpy(c->newest, cp.ts, sizeof(c->newest));
		snprintf(c->newest_what, sizeof(c->newest_what), "checkpoint %lld..%lld", (long long)cp.first,
			 (long long)cp.last);
	}
	if ((r = cs_audit_time_parse(c->newest, &newest_ms)) != CS_OK) {
		cs_log_error("audit log: its newest time '%.32s' (%s) is not RFC 3339 UTC with milliseconds", c->newest,
			     c->newest_what);
		return r;
	}
	c->delta_ms = now_ms - newest_ms;
	c->ahead = c->delta_ms > CS_AUDIT_CLOCK_AHEAD_MS;
	c->behind = c->delta_ms < 0;
	return CS_OK;
}

cs_err cs_audit_clock_record(cs_audit *a, cs_ledger *ledger, const cs_audit_clock *c)
{
	if (!c->ahead && !c->behind)
		return CS_OK;
	char what[200];
	double days = (double)(c->ahead ? c->delta_ms : -c->delta_ms) / 86400000.0;
	snprintf(what, sizeof(what), "clock %s is %.1f days %s the log's newest time %s (%s)", c->now, days,
		 c->ahead ? "ahead of" : "behind", c->newest, c->newest_what);
	if (c->ahead)
		cs_log_warn("%s: the checkpoints signed now carry this clock's time, and retention measures "
			    "age against them; check the clock (stopped or idle for that long is fine)", what);
	else
		cs_log_warn("%s: new entries carry the log's newest time until the clock passes it (times "
			    "never decrease along seq); check the clock", what);
	cs_audit_entry e = {.actor = "system", .role = "system", .action = c->ahead ? "clock.ahead" : "clock.behind",
			    .object = what, .outcome = "failure"};
	return cs_audit_record(a, ledger, &e);
}

cs_err cs_audit_clock_at_start(const cs_store_target *target, cs_audit_clock *c)
{
	cs_store *s = NULL;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	cs_err r = cs_store_connect(target, &s);
	if (r == CS_OK)
		r = cs_audit_clock_check(s, (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000, c);
	struct timespec t0, t1;
	int64_t db_ms = 0;
	clock_gettime(CLOCK_REALTIME, &t0);
	cs_err d = r == CS_OK ? cs_store_clock(s, &db_ms) : CS_E_NOT_FOUND;
	clock_gettime(CLOCK_REALTIME, &t1);
	if (d == CS_OK) {
		int64_t mid = ((int64_t)t0.tv_sec * 1000 + t0.tv_nsec / 1000000 + (int64_t)t1.tv_sec * 1000 +
			       t1.tv_nsec / 1000000) / 2;
		c->db_clock = 1;
		c->db_skew_ms = mid - db_ms;
	} else if (d != CS_E_NOT_FOUND) {
		r = d;
	}
	cs_store_close(s);
	return r;
}

/* ---- the checkpoint an auditor keeps ----------------------------------------------- */

typedef struct {
	char *jws;
	int purge; /* the one kept is a purge checkpoint */
} newest_jws;

static int keep_newest_jws(void *arg, int64_t first, int64_t last, const uint8_t head[32], const char *ts,
			   const char *node, const char *kind, const char *jws)
{
	(void)first;
	(void)last;
	(void)head;
	(void)ts;
	(void)node;
	newest_jws *n = arg;
	int purge = strcmp(kind, "purge") == 0;
	if (n->jws != NULL && (purge || !n->purge))
		return 0; /* a periodic or stop checkpoint before a purge one over the same last entry */
	free(n->jws);
	n->purge = purge;
	return (n->jws = strdup(jws)) == NULL;
}

cs_err cs_audit_newest_checkpoint(cs_store *store, char **jws)
{
	newest_jws n = {0};
	int64_t covered = 0;
	*jws = NULL;
	cs_err r = cs_store_read_begin(store);
	if (r != CS_OK)
		return r;
	r = cs_store_checkpointed(store, &covered);
	if (r == CS_OK && covered > 0)
		r = cs_store_checkpoints_range(store, covered, INT64_MAX, keep_newest_jws, &n);
	cs_store_read_end(store);
	if (r == CS_OK && covered > 0 && n.jws == NULL)
		r = CS_E_NOMEM;
	if (r == CS_OK && covered == 0)
		r = CS_E_NOT_FOUND;
	if (r != CS_OK)
		free(n.jws);
	else
		*jws = n.jws;
	return r;
}
