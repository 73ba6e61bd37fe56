/* ledger: see ledger.h. */
#include "ledger.h"

#include "metrics.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cs_log.h"
#include "jose.h"

/* checkpoint_make and audit_purge start over when another writer recorded
 * a checkpoint between reading the head and inserting: at most this often */
#define CHECKPOINT_ATTEMPTS 8
/* the most writes one transaction holds */
#define MAX_BATCH 512

typedef enum {
	JOB_SESSION,
	JOB_CERTIFY,
	JOB_KEY,
	JOB_AUDIT,
	JOB_PRUNE,
	JOB_CHECKPOINT,
	JOB_PURGE,
	JOB_PROBE
} job_kind;
typedef enum { JOB_QUEUED, JOB_RUNNING, JOB_DONE } job_state;

/* One write, on its submitter's stack until it is DONE. */
typedef struct job {
	struct job *next;
	job_kind kind;
	job_state state;
	int64_t deadline_ms; /* CLOCK_MONOTONIC */
	cs_err result;
	cs_audit_entry *audit; /* appended with the job's other writes, or NULL */
	union {
		const cs_gen_session *session;
		struct {
			const char *session_id, *cert_id, *kid;
			const cs_cert_parts *cert;
			int64_t created_ms;
		} certify;
		struct {
			const char *kid, *uri, *jwk, *status;
			int changed;
		} key;
		struct {
			int64_t before, removed;
		} prune;
		struct { /* a checkpoint, or a purge behind one */
			int64_t first, last; /* the range signed */
			int64_t covered;     /* checkpoint: the coverage it was signed after */
			const uint8_t *head;
			const char *ts, *node, *kind, *jws;
			int applied;       /* recorded */
			int64_t now_covered; /* checkpoint: the coverage found */
		} cp;
	} u;
} job;

/* The audit log's head during a transaction. */
typedef struct {
	int known;
	int64_t seq;
	uint8_t hash[32];
	char ts[32];  /* "" at the chain's base */
	char now[32]; /* when the write lock was obtained */
} head_ctx;

struct cs_ledger {
	cs_store *writer; /* the write connection */
	cs_store *reader; /* reads before signing (checkpoints, purge), under reader_lock */
	pthread_mutex_t reader_lock;
	int write_timeout_ms;

	pthread_mutex_t lock; /* the queue, the thread's state, the figures */
	pthread_cond_t work;  /* the writer: jobs are waiting, or stop */
	pthread_cond_t done;  /* submitters: jobs are done */
	job *head, *tail;
	int running, stopping;
	pthread_t thread;
	pthread_mutex_t sync_lock; /* without a thread: one batch at a time */
	cs_ledger_stats stats;

	pthread_mutex_t health_lock;
	int64_t health_at_ms; /* CLOCK_MONOTONIC of the last outcome, 0 = none yet */
	int health_ok;
};

static int64_t mono_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static int64_t real_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* ---- write health -------------------------------------------------------------- */

/* Record a write's outcome; the changes of state are logged, once. */
static void health_record(cs_ledger *l, int ok)
{
	pthread_mutex_lock(&l->health_lock);
	int was_failing = l->health_at_ms != 0 && !l->health_ok;
	int was_ok = l->health_at_ms == 0 || l->health_ok;
	l->health_at_ms = mono_ms();
	l->health_ok = ok;
	pthread_mutex_unlock(&l->health_lock);
	if (ok && was_failing)
		cs_log_info("store: writes succeed again");
	else if (!ok && was_ok)
		cs_log_error("store: a write failed; /readyz reports the store unavailable until a write succeeds");
}

/* ---- the rules, inside a write transaction ---------------------------------------- */

/* The head: the newest entry, else the newest purge checkpoint (the chain
 * continues from it), else the beginning (seq 0, zero hash). */
static cs_err read_head(cs_store *s, int64_t *seq, uint8_t hash[32], char ts[32])
{
	cs_err r = cs_store_audit_last(s, seq, hash, ts);
	if (r != CS_E_NOT_FOUND)
		return r;
	ts[0] = '\0';
	if ((r = cs_store_purge_base(s, seq, hash)) != CS_E_NOT_FOUND)
		return r;
	*seq = 0;
	memset(hash, 0, 32);
	return CS_OK;
}

/* Fix seq and ts of an entry (see ledger.h), chain and insert it. */
static cs_err append(cs_store *s, head_ctx *h, cs_audit_entry *e)
{
	char ts[32];
	uint8_t hash[32];
	cs_err r;
	if (!h->known) {
		if ((r = read_head(s, &h->seq, h->hash, h->ts)) != CS_OK)
			return r;
		h->known = 1;
	}
	if (e->ts == NULL) {
		memcpy(ts, h->now, sizeof(ts));
	} else if (strlen(e->ts) >= sizeof(ts)) {
		cs_log_error("ledger: audit entry time '%.40s...' is too long", e->ts);
		return CS_E_INVALID_ARG;
	} else {
		memcpy(ts, e->ts, strlen(e->ts) + 1); /* e->ts may be e->ts_buf */
	}
	if (strcmp(ts, h->ts) < 0)
		memcpy(ts, h->ts, sizeof(ts)); /* never before the entry before it */
	memcpy(e->ts_buf, ts, sizeof(ts));
	e->ts = e->ts_buf;
	e->seq = h->seq + 1;
	if ((r = cs_audit_hash(NULL, h->hash, e, hash)) != CS_OK ||
	    (r = cs_store_audit_insert(s, e, h->hash, hash)) != CS_OK)
		return r;
	h->seq = e->seq;
	memcpy(h->hash, hash, 32);
	memcpy(h->ts, ts, sizeof(ts));
	return CS_OK;
}

typedef struct {
	const char *kid, *status;
	int have; /* kid has this status */
	int active;
	char **others; /* other active kids */
	size_t n;
	cs_err error;
} key_scan;

static void scan_key(void *arg, const char *kid, const char *jwk, const char *status, const char *created)
{
	(void)jwk;
	(void)created;
	key_scan *k = arg;
	if (strcmp(kid, k->kid) == 0 && strcmp(status, k->status) == 0)
		k->have = 1;
	if (strcmp(status, "active") != 0)
		return;
	k->active++;
	if (strcmp(kid, k->kid) == 0 || k->error != CS_OK)
		return;
	char **more = realloc(k->others, (k->n + 1) * sizeof(*more));
	if (more == NULL || (more[k->n] = strdup(kid)) == NULL) {
		k->error = CS_E_NOMEM;
		if (more != NULL)
			k->others = more;
		return;
	}
	k->others = more;
	k->n++;
}

/* The lifecycle: a retired key may only become compromised, a compromised
 * one stays so; neither ever becomes active (or pending) again. */
typedef struct {
	const char *kid;
	char status[16], since[32];
	int found;
} key_state;

static void find_key(void *arg, const cs_key_info *key)
{
	key_state *k = arg;
	if (strcmp(key->kid, k->kid) != 0)
		return;
	k->found = 1;
	snprintf(k->status, sizeof(k->status), "%s", key->status);
	snprintf(k->since, sizeof(k->since), "%s", key->retired_at != NULL ? key->retired_at : "");
}

static cs_err key_refusal(cs_store *s, const char *kid, const char *status, char *why, size_t why_len)
{
	key_state k = {.kid = kid};
	cs_err r = cs_store_keys_info(s, find_key, &k);
	if (why_len > 0)
		why[0] = '\0';
	if (r != CS_OK || !k.found)
		return r;
	int retired = strcmp(k.status, "retired") == 0, compromised = strcmp(k.status, "compromised") == 0;
	if ((!retired && !compromised) || strcmp(status, "compromised") == 0 ||
	    (retired && strcmp(status, "retired") == 0))
		return CS_OK;
	snprintf(why, why_len, "key %s is %s (since %s)", kid, k.status,
		 k.since[0] != '\0' ? k.since : "a time the audit log no longer holds");
	return CS_E_KEY_FORBIDDEN;
}

cs_err cs_ledger_key_refusal(cs_store *reader, const char *kid, const char *status, char *why, size_t why_len)
{
	return key_refusal(reader, kid, status, why, why_len);
}

cs_err cs_ledger_key_check(cs_ledger *l, const char *kid, const char *status, char *why, size_t why_len)
{
	pthread_mutex_lock(&l->reader_lock);
	cs_err r = cs_store_read_begin(l->reader);
	if (r == CS_OK)
		r = key_refusal(l->reader, kid, status, why, why_len);
	cs_store_read_end(l->reader);
	pthread_mutex_unlock(&l->reader_lock);
	return r;
}

static cs_err apply_key(cs_store *s, head_ctx *h, job *j)
{
	char why[128];
	cs_err r = key_refusal(s, j->u.key.kid, j->u.key.status, why, sizeof(why));
	if (r == CS_E_KEY_FORBIDDEN) {
		cs_log_error("ledger: refused to make key %s %s: %s: a retired or compromised key never "
			     "becomes active again", j->u.key.kid, j->u.key.status, why);
		return r;
	}
	key_scan k = {.kid = j->u.key.kid, .status = j->u.key.status};
	if (r == CS_OK)
		r = cs_store_keys_each(s, scan_key, &k);
	if (r == CS_OK)
		r = k.error;
	int activate = strcmp(j->u.key.status, "active") == 0;
	/* already in this state (and, when active, the only active key)? */
	j->u.key.changed = r == CS_OK && !(k.have && (!activate || k.active == 1));
	/* one active key: activating this one retires the others */
	for (size_t i = 0; r == CS_OK && j->u.key.changed && activate && i < k.n; i++) {
		r = cs_store_key_set_status(s, k.others[i], "retired");
		if (r == CS_OK && j->audit != NULL) {
			cs_audit_entry e = *j->audit;
			e.action = "key.retire";
			e.object = k.others[i];
			r = append(s, h, &e);
		}
	}
	if (r == CS_OK && j->u.key.changed)
		r = cs_store_key_upsert(s, j->u.key.kid, j->u.key.uri, j->u.key.jwk, j->u.key.status);
	if (r == CS_OK && j->u.key.changed && j->audit != NULL)
		r = append(s, h, j->audit);
	for (size_t i = 0; i < k.n; i++)
		free(k.others[i]);
	free(k.others);
	return r;
}

static cs_err apply_certify(cs_store *s, head_ctx *h, job *j)
{
	int claimed = 0;
	/* claim the session first: only one certificate per session */
	cs_err r = cs_store_session_claim(s, j->u.certify.session_id, j->u.certify.cert_id, &claimed);
	if (r == CS_OK && !claimed)
		r = CS_E_SESSION_USED;
	if (r == CS_OK)
		r = cs_store_cert_insert(s, j->u.certify.cert_id, j->u.certify.session_id, j->u.certify.kid,
					 j->u.certify.cert, j->u.certify.created_ms);
	if (r == CS_OK && j->audit != NULL)
		r = append(s, h, j->audit);
	return r;
}

/* A checkpoint signed over the head seen before signing: recorded only if
 * no checkpoint was recorded meanwhile and that head entry is still there. */
static cs_err apply_checkpoint(cs_store *s, job *j)
{
	uint8_t hash[32];
	int found = 0;
	cs_err r = cs_store_checkpointed(s, &j->u.cp.now_covered);
	if (r == CS_OK && j->u.cp.now_covered == j->u.cp.covered)
		r = cs_store_audit_hash_at(s, j->u.cp.last, hash, &found);
	if (r == CS_OK && found && memcmp(hash, j->u.cp.head, 32) == 0) {
		r = cs_store_checkpoint_insert(s, j->u.cp.first, j->u.cp.last, j->u.cp.head, j->u.cp.ts,
					       j->u.cp.node, j->u.cp.kind, j->u.cp.jws);
		j->u.cp.applied = r == CS_OK;
	}
	return r;
}

/* A purge signed over first..last: recorded (checkpoint, then the delete)
 * only if the log still starts at first and entry last is unchanged. */
static cs_err apply_purge(cs_store *s, job *j)
{
	uint8_t hash[32];
	int found = 0;
	int64_t first = 0;
	cs_err r = cs_store_audit_first(s, &first);
	if (r == CS_OK && first == j->u.cp.first)
		r = cs_store_audit_hash_at(s, j->u.cp.last, hash, &found);
	if (r == CS_OK && found && memcmp(hash, j->u.cp.head, 32) == 0) {
		if ((r = cs_store_checkpoint_insert(s, j->u.cp.first, j->u.cp.last, j->u.cp.head, j->u.cp.ts,
						    j->u.cp.node, "purge", j->u.cp.jws)) == CS_OK)
			r = cs_store_audit_delete_through(s, j->u.cp.last);
		j->u.cp.applied = r == CS_OK;
	}
	return r;
}

static cs_err apply(cs_store *s, head_ctx *h, job *j)
{
	cs_err r = CS_E_INTERNAL;
	switch (j->kind) {
	case JOB_SESSION:
		if ((r = cs_store_session_insert(s, j->u.session)) == CS_OK && j->audit != NULL)
			r = append(s, h, j->audit);
		return r;
	case JOB_CERTIFY: return apply_certify(s, h, j);
	case JOB_KEY: return apply_key(s, h, j);
	case JOB_AUDIT: return append(s, h, j->audit);
	case JOB_PRUNE: return cs_store_sessions_delete_expired(s, j->u.prune.before, &j->u.prune.removed);
	case JOB_CHECKPOINT: return apply_checkpoint(s, j);
	case JOB_PURGE: return apply_purge(s, j);
	case JOB_PROBE: return cs_store_probe_write(s, real_ms());
	}
	return r;
}

/* ---- one transaction for a batch of jobs ------------------------------------------ */

static size_t bucket_of(size_t n)
{
	size_t b = 0;
	while (b + 1 < CS_LEDGER_BATCH_BUCKETS && ((size_t)1 << b) < n)
		b++;
	return b;
}

/* Apply the jobs of a list (linked by next) in one write transaction,
 * each in its own savepoint, and set their results. */
static void run_batch(cs_ledger *l, job *jobs, size_t n)
{
	cs_store *s = l->writer;
	int64_t deadline = 0, t0 = mono_ms();
	for (job *j = jobs; j != NULL; j = j->next)
		if (deadline == 0 || j->deadline_ms < deadline)
			deadline = j->deadline_ms;
	int64_t changes = cs_store_changes(s);
	head_ctx h = {0};
	cs_err r = cs_store_write_begin(s, deadline);
	cs_audit_now(h.now); /* the write lock is ours: later entries take later times */
	int store_failure = 0;
	for (job *j = jobs; j != NULL; j = j->next)
		j->result = CS_OK;
	for (job *j = jobs; r == CS_OK && j != NULL; j = j->next) {
		head_ctx before = h;
		if ((r = cs_store_savepoint(s)) != CS_OK)
			break;
		j->result = apply(s, &h, j);
		if (j->result != CS_OK) {
			h = before; /* the job rolls back alone: nothing of it is left */
			store_failure |= cs_err_category_of(j->result) == CS_CAT_STORE;
		}
		/* a savepoint that cannot end leaves the transaction unknown */
		r = cs_store_savepoint_end(s, j->result);
	}
	r = cs_store_write_end(s, r);
	for (job *j = jobs; r != CS_OK && j != NULL; j = j->next)
		if (j->result == CS_OK)
			j->result = r; /* nothing of the transaction is left */
	if (r != CS_OK)
		store_failure |= cs_err_category_of(r) == CS_CAT_STORE;
	if (store_failure)
		health_record(l, 0);
	else if (r == CS_OK && cs_store_changes(s) != changes)
		health_record(l, 1); /* something reached the disk */
	double secs = (double)(mono_ms() - t0) / 1000.0;
	if (r == CS_OK) {
		cs_metrics_commit((uint64_t)(secs * 1e9), (unsigned)n);
		for (job *j = jobs; j != NULL; j = j->next)
			if (j->result == CS_OK && j->audit != NULL && j->audit->seq > 0)
				cs_metrics_audit_entry();
	}
	pthread_mutex_lock(&l->lock);
	l->stats.batches++;
	l->stats.commits += r == CS_OK;
	l->stats.jobs += n;
	if (n > l->stats.max_batch)
		l->stats.max_batch = n;
	l->stats.batch_size[bucket_of(n)]++;
	l->stats.commit_seconds += secs;
	pthread_mutex_unlock(&l->lock);
}

/* ---- the writer thread and submission ------------------------------------------------ */

static void *writer_main(void *arg)
{
	cs_ledger *l = arg;
	pthread_mutex_lock(&l->lock);
	for (;;) {
		while (l->head == NULL && !l->stopping)
			pthread_cond_wait(&l->work, &l->lock);
		if (l->head == NULL) {
			l->running = 0; /* whatever comes now runs on its submitter's thread */
			break; /* stopping, and everything submitted is done */
		}
		/* every job waiting, but none whose deadline has passed */
		job *batch = NULL, **tail = &batch;
		size_t n = 0, late = 0;
		int64_t now = mono_ms();
		while (l->head != NULL && n < MAX_BATCH) {
			job *j = l->head;
			if ((l->head = j->next) == NULL)
				l->tail = NULL;
			l->stats.queued--;
			j->next = NULL;
			if (j->deadline_ms <= now) {
				j->result = CS_E_STORE;
				j->state = JOB_DONE;
				late++;
				continue;
			}
			j->state = JOB_RUNNING;
			*tail = j;
			tail = &j->next;
			n++;
		}
		if (late > 0)
			pthread_cond_broadcast(&l->done);
		l->stats.running = n;
		pthread_mutex_unlock(&l->lock);
		if (late > 0) {
			cs_log_error("store: %zu write(s) waited past the write timeout for the store", late);
			health_record(l, 0);
		}
		if (n > 0)
			run_batch(l, batch, n);
		pthread_mutex_lock(&l->lock);
		for (job *j = batch, *next; j != NULL; j = next) {
			next = j->next; /* j belongs to its submitter once DONE */
			j->state = JOB_DONE;
		}
		l->stats.running = 0;
		pthread_cond_broadcast(&l->done);
	}
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

/* Run a job: queued for the writer thread, or as a batch of one. Returns
 * its result once the transaction holding it ended. */
static cs_err submit(cs_ledger *l, job *j)
{
	j->next = NULL;
	j->state = JOB_QUEUED;
	j->result = CS_E_STORE;
	j->deadline_ms = mono_ms() + l->write_timeout_ms;
	pthread_mutex_lock(&l->lock);
	if (!l->running) {
		pthread_mutex_unlock(&l->lock);
		pthread_mutex_lock(&l->sync_lock);
		run_batch(l, j, 1);
		pthread_mutex_unlock(&l->sync_lock);
		return j->result;
	}
	if (l->tail != NULL)
		l->tail->next = j;
	else
		l->head = j;
	l->tail = j;
	l->stats.queued++;
	pthread_cond_signal(&l->work);
	struct timespec until = {(time_t)(j->deadline_ms / 1000), (long)(j->deadline_ms % 1000) * 1000000L};
	int late = 0;
	while (j->state != JOB_DONE) {
		if (j->state == JOB_RUNNING) { /* its transaction is bounded by the deadline */
			pthread_cond_wait(&l->done, &l->lock);
			continue;
		}
		if (pthread_cond_timedwait(&l->done, &l->lock, &until) != ETIMEDOUT || j->state != JOB_QUEUED)
			continue;
		/* still waiting for the writer at its deadline: never written */
		job **p = &l->head;
		job *prev = NULL;
		while (*p != j) {
			prev = *p;
			p = &(*p)->next;
		}
		*p = j->next;
		if (l->tail == j)
			l->tail = prev;
		l->stats.queued--;
		j->state = JOB_DONE;
		j->result = CS_E_STORE;
		late = 1;
	}
	pthread_mutex_unlock(&l->lock);
	if (late) {
		cs_log_error("store: a write waited past the write timeout (%d ms) for the store",
			     l->write_timeout_ms);
		health_record(l, 0);
	}
	return j->result;
}

/* ---- open, start, close ------------------------------------------------------------ */

cs_err cs_ledger_open(const char *path, int write_timeout_ms, cs_ledger **out)
{
	*out = NULL;
	cs_ledger *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return CS_E_NOMEM;
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_mutex_init(&l->lock, NULL);
	pthread_mutex_init(&l->sync_lock, NULL);
	pthread_mutex_init(&l->reader_lock, NULL);
	pthread_mutex_init(&l->health_lock, NULL);
	pthread_cond_init(&l->work, NULL);
	pthread_cond_init(&l->done, &attr);
	pthread_condattr_destroy(&attr);
	l->write_timeout_ms = write_timeout_ms > 0 ? write_timeout_ms : 2000;
	cs_err r = cs_store_open(path, &l->writer);
	if (r == CS_OK)
		r = cs_store_open(path, &l->reader);
	if (r != CS_OK) {
		cs_ledger_close(l);
		return r;
	}
	*out = l;
	return CS_OK;
}

cs_err cs_ledger_start(cs_ledger *l)
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_mutex_lock(&l->lock);
	int rc = l->running ? 0 : EAGAIN;
	if (!l->running) {
		/* the thread inherits the mask: signals go to the threads that wait for them */
		pthread_sigmask(SIG_SETMASK, &all, &old);
		rc = pthread_create(&l->thread, NULL, writer_main, l);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		l->running = rc == 0;
		l->stopping = 0;
	}
	pthread_mutex_unlock(&l->lock);
	if (rc != 0) {
		cs_log_error("ledger: cannot start the writer thread");
		return CS_E_INTERNAL;
	}
	return CS_OK;
}

void cs_ledger_close(cs_ledger *l)
{
	if (l == NULL)
		return;
	pthread_mutex_lock(&l->lock);
	int running = l->running;
	l->stopping = 1;
	pthread_cond_signal(&l->work);
	pthread_mutex_unlock(&l->lock);
	if (running) {
		pthread_join(l->thread, NULL);
		const cs_ledger_stats *st = &l->stats;
		cs_log_info("ledger: %llu writes in %llu transactions (%llu committed, largest %llu), "
			    "%.3f ms per transaction", (unsigned long long)st->jobs,
			    (unsigned long long)st->batches, (unsigned long long)st->commits,
			    (unsigned long long)st->max_batch,
			    st->batches > 0 ? st->commit_seconds * 1000.0 / (double)st->batches : 0.0);
	}
	cs_store_close(l->writer);
	cs_store_close(l->reader);
	pthread_cond_destroy(&l->work);
	pthread_cond_destroy(&l->done);
	pthread_mutex_destroy(&l->lock);
	pthread_mutex_destroy(&l->sync_lock);
	pthread_mutex_destroy(&l->reader_lock);
	pthread_mutex_destroy(&l->health_lock);
	free(l);
}

/* ---- writes ---------------------------------------------------------------------- */

cs_err cs_ledger_session_put(cs_ledger *l, const cs_gen_session *session, cs_audit_entry *audit)
{
	job j = {.kind = JOB_SESSION, .audit = audit, .u.session = session};
	return submit(l, &j);
}

/* ---- certificates as stored: a JWS in three parts, the payload decoded ------ */

/* Split a compact JWS (parts malloc'd; the payload decoded as text). */
static cs_err jws_split(const char *jws, char **header, char **claims, char **signature)
{
	const char *a = strchr(jws, '.');
	const char *b = a != NULL ? strchr(a + 1, '.') : NULL;
	uint8_t *bytes = NULL;
	size_t n = 0;
	*header = *claims = *signature = NULL;
	if (b == NULL || strchr(b + 1, '.') != NULL)
		return CS_E_INVALID_ARG;
	char *part = strndup(a + 1, (size_t)(b - a - 1));
	if (part == NULL)
		return CS_E_NOMEM;
	cs_err r = cs_b64url_decode(part, &bytes, &n);
	free(part);
	if (r == CS_OK && memchr(bytes, '\0', n) != NULL)
		r = CS_E_INVALID_ARG;
	if (r == CS_OK && ((*claims = strndup((const char *)bytes, n)) == NULL ||
			   (*header = strndup(jws, (size_t)(a - jws))) == NULL ||
			   (*signature = strdup(b + 1)) == NULL))
		r = CS_E_NOMEM;
	free(bytes);
	if (r != CS_OK) {
		free(*header);
		free(*claims);
		free(*signature);
		*header = *claims = *signature = NULL;
	}
	return r;
}

/* The compact JWS of stored parts (malloc'd): the same text as signed,
 * base64url having one form. */
static cs_err jws_join(const cs_cert_row *row, char **jws)
{
	char *payload = cs_b64url_encode((const uint8_t *)row->claims_json, strlen(row->claims_json));
	*jws = NULL;
	if (payload == NULL)
		return CS_E_NOMEM;
	size_t n = strlen(row->header_b64) + 1 + strlen(payload) + 1 + strlen(row->signature_b64) + 1;
	if ((*jws = malloc(n)) != NULL)
		snprintf(*jws, n, "%s.%s.%s", row->header_b64, payload, row->signature_b64);
	free(payload);
	return *jws != NULL ? CS_OK : CS_E_NOMEM;
}

cs_err cs_ledger_certify(cs_ledger *l, const char *session_id, const char *cert_id, const char *kid,
			 const char *jws, int64_t created_ms, cs_audit_entry *audit)
{
	char *header = NULL, *claims = NULL, *signature = NULL;
	cs_err r = jws_split(jws, &header, &claims, &signature);
	if (r == CS_E_INVALID_ARG)
		cs_log_error("ledger: certificate %s is not a compact JWS with a JSON payload", cert_id);
	if (r != CS_OK)
		return r;
	cs_cert_parts cert = {header, claims, signature};
	job j = {.kind = JOB_CERTIFY, .audit = audit,
		 .u.certify = {session_id, cert_id, kid, &cert, created_ms}};
	r = submit(l, &j);
	free(header);
	free(claims);
	free(signature);
	return r;
}

cs_err cs_ledger_key_put(cs_ledger *l, const char *kid, const char *uri, const char *jwk_json,
			 const char *status, int *changed, cs_audit_entry *audit)
{
	job j = {.kind = JOB_KEY, .audit = audit, .u.key = {kid, uri, jwk_json, status, 0}};
	cs_err r = submit(l, &j);
	*changed = r == CS_OK && j.u.key.changed; /* rolled back otherwise */
	return r;
}

cs_err cs_ledger_audit_append(cs_ledger *l, cs_audit_entry *audit)
{
	if (audit == NULL)
		return CS_E_INVALID_ARG;
	job j = {.kind = JOB_AUDIT, .audit = audit};
	return submit(l, &j);
}

cs_err cs_ledger_sessions_prune(cs_ledger *l, int64_t expired_before_ms, int64_t *removed)
{
	job j = {.kind = JOB_PRUNE, .u.prune = {expired_before_ms, 0}};
	cs_err r = submit(l, &j);
	*removed = r == CS_OK ? j.u.prune.removed : 0; /* rolled back otherwise */
	return r;
}

/* The head and the checkpoints' coverage of one moment, on the reader. */
static cs_err head_snapshot(cs_ledger *l, int64_t *last, uint8_t head[32], int64_t *covered)
{
	char ts[32];
	pthread_mutex_lock(&l->reader_lock);
	cs_err r = cs_store_read_begin(l->reader);
	if (r == CS_OK && (r = read_head(l->reader, last, head, ts)) == CS_OK)
		r = cs_store_checkpointed(l->reader, covered);
	cs_store_read_end(l->reader);
	pthread_mutex_unlock(&l->reader_lock);
	return r;
}

cs_err cs_ledger_checkpoint_make(cs_ledger *l, const char *node, const char *kind, cs_checkpoint_sign_fn sign,
				 void *arg, int64_t *first_out, int64_t *last_out)
{
	if (first_out != NULL)
		*first_out = 0;
	if (last_out != NULL)
		*last_out = 0;
	for (int attempt = 0; attempt < CHECKPOINT_ATTEMPTS; attempt++) {
		int64_t last = 0, covered = 0;
		uint8_t head[32];
		char ts[32], *jws = NULL;
		cs_err r = head_snapshot(l, &last, head, &covered);
		if (r != CS_OK || last <= covered)
			return r; /* nothing new to cover */
		cs_audit_now(ts);
		if ((r = sign(arg, covered + 1, last, head, ts, node, kind, &jws)) != CS_OK)
			return r;
		job j = {.kind = JOB_CHECKPOINT,
			 .u.cp = {.first = covered + 1, .last = last, .covered = covered, .head = head,
				  .ts = ts, .node = node, .kind = kind, .jws = jws}};
		r = submit(l, &j);
		free(jws);
		if (r != CS_OK)
			return r;
		if (j.u.cp.applied) {
			if (first_out != NULL)
				*first_out = covered + 1;
			if (last_out != NULL)
				*last_out = last;
			return CS_OK;
		}
		if (j.u.cp.now_covered >= last)
			return CS_OK; /* another writer's checkpoint covers these entries */
		cs_log_info("ledger: another writer checkpointed the audit log during checkpoint %lld..%lld; "
			    "starting over", (long long)covered + 1, (long long)last);
	}
	cs_log_error("ledger: the audit checkpoints kept changing; no %s checkpoint made", kind);
	return CS_E_STORE;
}

cs_err cs_ledger_audit_purge(cs_ledger *l, const char *cutoff, const char *node, cs_checkpoint_sign_fn sign,
			     void *arg, int64_t *first_out, int64_t *boundary_out)
{
	return cs_ledger_audit_purge_through(l, cutoff, INT64_MAX, node, sign, arg, first_out, boundary_out);
}

cs_err cs_ledger_audit_purge_through(cs_ledger *l, const char *cutoff, int64_t max_seq, const char *node,
				     cs_checkpoint_sign_fn sign, void *arg, int64_t *first_out,
				     int64_t *boundary_out)
{
	*first_out = *boundary_out = 0;
	for (int attempt = 0; attempt < CHECKPOINT_ATTEMPTS; attempt++) {
		int64_t first = 0, boundary = 0;
		uint8_t head[32];
		char ts[32], *jws = NULL;
		int found = 0;
		pthread_mutex_lock(&l->reader_lock);
		cs_err r = cs_store_read_begin(l->reader);
		if (r == CS_OK)
			r = cs_store_audit_purge_boundary(l->reader, cutoff, &first, &boundary, head);
		if (r == CS_OK && boundary > max_seq) { /* never past max_seq */
			boundary = max_seq >= first ? max_seq : 0;
			if (boundary > 0 && (r = cs_store_audit_hash_at(l->reader, boundary, head, &found)) == CS_OK &&
			    !found)
				boundary = 0;
		}
		cs_store_read_end(l->reader);
		pthread_mutex_unlock(&l->reader_lock);
		if (r != CS_OK || boundary == 0)
			return r;
		cs_audit_now(ts);
		if ((r = sign(arg, first, boundary, head, ts, node, "purge", &jws)) != CS_OK)
			return r;
		job j = {.kind = JOB_PURGE,
			 .u.cp = {.first = first, .last = boundary, .head = head, .ts = ts, .node = node,
				  .kind = "purge", .jws = jws}};
		r = submit(l, &j);
		free(jws);
		if (r != CS_OK)
			return r;
		if (j.u.cp.applied) {
			*first_out = first;
			*boundary_out = boundary;
			return CS_OK;
		}
		cs_log_info("ledger: the audit log changed during purge %lld..%lld; starting over",
			    (long long)first, (long long)boundary);
	}
	cs_log_error("ledger: the audit log kept changing; nothing purged");
	return CS_E_STORE;
}

cs_err cs_ledger_write_health(cs_ledger *l, int max_age_ms)
{
	pthread_mutex_lock(&l->health_lock);
	int64_t at = l->health_at_ms;
	int ok = l->health_ok;
	pthread_mutex_unlock(&l->health_lock);
	if (at != 0 && mono_ms() - at < max_age_ms)
		return ok ? CS_OK : CS_E_STORE;
	/* no recent write: probe with one, durable like any other */
	job j = {.kind = JOB_PROBE};
	return submit(l, &j) == CS_OK ? CS_OK : CS_E_STORE;
}

void cs_ledger_get_stats(cs_ledger *l, cs_ledger_stats *out)
{
	pthread_mutex_lock(&l->lock);
	*out = l->stats;
	pthread_mutex_unlock(&l->lock);
}

/* ---- reads ------------------------------------------------------------------------- */

cs_err cs_ledger_session_claims(cs_store *reader, const char *session_id, const char *cert_sha256,
				int64_t now_ms, char **claims)
{
	cs_session_row row;
	*claims = NULL;
	cs_err r = cs_store_session_get(reader, session_id, &row);
	if (r != CS_OK)
		return r;
	if (strcmp(row.cert_sha256, cert_sha256) != 0)
		r = CS_E_FORBIDDEN;
	else if (row.certified)
		r = CS_E_SESSION_USED;
	else if (row.expires_ms <= now_ms)
		r = CS_E_SESSION_EXPIRED;
	else {
		*claims = row.claims_json;
		row.claims_json = NULL;
	}
	cs_session_row_free(&row);
	return r;
}

cs_err cs_ledger_cert_get(cs_store *reader, const char *cert_id, char **jws, char **claims)
{
	cs_cert_row row;
	*jws = *claims = NULL;
	cs_err r = cs_store_cert_get(reader, cert_id, &row);
	if (r == CS_OK && (r = jws_join(&row, jws)) == CS_OK) {
		*claims = row.claims_json;
		row.claims_json = NULL;
	}
	cs_cert_row_free(&row);
	return r;
}
