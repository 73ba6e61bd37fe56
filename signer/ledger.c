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

#include <jansson.h>

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
	JOB_PROBE,
	JOB_KEY_PENDING,
	JOB_KEY_BOOTSTRAP,
	JOB_KEY_CHAIN,
	JOB_CEREMONY_CREATE,
	JOB_CEREMONY_APPROVE,
	JOB_CEREMONY_EXECUTE,
	JOB_REVOKE,
	JOB_SIGNATURES,
	JOB_NODE
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
		struct { /* add_pending, bootstrap */
			const cs_key_info *key;
			const char *actor;
			int changed;
		} rec;
		struct {
			const char *kid, *x5c;
		} chain;
		const cs_ceremony_record *ceremony;
		const cs_approval_record *approval;
		const cs_ceremony_exec *exec;
		struct {
			const char *cert_id, *reason, *at, *actor;
		} revoke;
		struct {
			cs_ledger_sign_job *jobs;
			size_t n;
			size_t entries; /* audit entries written (when committed) */
		} sign;
		struct {
			const char *node_id, *instance, *host;
			int64_t pid, live_ms, now_ms; /* now_ms 0: the time of the write */
			char *holder; /* CS_E_CONFLICT: who holds it (the submitter's) */
		} node;
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
	int audited;  /* entries appended (a failed job's are undone with it) */
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
	h->audited++;
	return CS_OK;
}

/* ---- input checks ------------------------------------------------------------------ */

#define TEXT_MAX 4096         /* ids, names, URIs, times, reasons */
#define DOC_MAX (1024 * 1024) /* JSON documents, PEM */
#define SIG_MAX (64 * 1024 * 1024) /* a signature as returned (a JWS or envelope holds its payload) */
#define PAYLOAD_MAX ((size_t)64 * 1024 * 1024)
#define PROFILE_MAX 32        /* a signing profile's name */

/* A refused argument: logged here (a caller's bug or a forged input). */
static cs_err invalid(const char *what, const char *field)
{
	cs_log_error("ledger: %s: %s is missing or malformed", what, field);
	return CS_E_INVALID_ARG;
}

/* 1..max bytes, no control characters (UTF-8 allowed); multiline: also
 * LF and CR (PEM). */
static int text_ok(const char *v, size_t max, int multiline)
{
	if (v == NULL || v[0] == '\0')
		return 0;
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)v; *p != '\0'; p++, n++)
		if (n >= max || *p == 0x7f || (*p < 0x20 && !(multiline && (*p == '\n' || *p == '\r'))))
			return 0;
	return 1;
}

static int opt_text_ok(const char *v, size_t max)
{
	return v == NULL || text_ok(v, max, 0);
}

/* RFC 3339 UTC with milliseconds, as audit ts: 2026-11-23T10:00:00.123Z
 * (one form, so that times compare as text). */
static int ts_ok(const char *v)
{
	static const char form[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	if (v == NULL || strlen(v) != sizeof(form) - 1)
		return 0;
	for (size_t i = 0; i < sizeof(form) - 1; i++)
		if (form[i] == 'd' ? (v[i] < '0' || v[i] > '9') : v[i] != form[i])
			return 0;
	return 1;
}

/* JSON text of this type (JSON_OBJECT, JSON_ARRAY; -1: any). */
static int json_ok(const char *v, int type)
{
	if (!text_ok(v, DOC_MAX, 1))
		return 0;
	json_t *j = json_loads(v, JSON_REJECT_DUPLICATES, NULL);
	int ok = j != NULL && (type < 0 || (int)json_typeof(j) == type);
	json_decref(j);
	return ok;
}

/* A JWK object whose kid, when it names one, is kid. */
static int jwk_ok(const char *jwk, const char *kid)
{
	if (!json_ok(jwk, JSON_OBJECT))
		return 0;
	json_t *j = json_loads(jwk, 0, NULL);
	json_t *k = json_object_get(j, "kid");
	int ok = j != NULL && (k == NULL || (json_is_string(k) && strcmp(json_string_value(k), kid) == 0));
	json_decref(j);
	return ok;
}

#define B64_ALPHABET "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

/* An x5c chain: a non-empty JSON array of base64 (standard, padded) DER. */
static int x5c_ok(const char *x5c)
{
	if (!json_ok(x5c, JSON_ARRAY))
		return 0;
	json_t *a = json_loads(x5c, 0, NULL);
	int ok = a != NULL && json_array_size(a) > 0;
	size_t i;
	json_t *v;
	json_array_foreach(a, i, v) {
		const char *t = json_string_value(v);
		size_t n = t != NULL ? strlen(t) : 0;
		ok &= n > 0 && n % 4 == 0 && strspn(t, B64_ALPHABET "=") == n;
		size_t pad = n > 0 ? strcspn(t, "=") : 0; /* padding: one or two, only at the end */
		ok &= n == 0 || pad == n || (pad + 2 >= n && strspn(t + pad, "=") == n - pad);
	}
	json_decref(a);
	return ok;
}

static int hex_ok(const char *v)
{
	return v == NULL || (v[0] != '\0' && strlen(v) <= TEXT_MAX && strspn(v, "0123456789abcdef") == strlen(v));
}

/* A signing profile's name, as the configuration allows it:
 * ^[a-z0-9][a-z0-9._-]{0,31}$ */
static int profile_ok(const char *p)
{
	static const char first[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	if (p == NULL || p[0] == '\0' || strchr(first, p[0]) == NULL)
		return 0;
	size_t n = strlen(p);
	return n <= PROFILE_MAX && strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

/* A lowercase hex SHA-256. */
static int sha256_hex_ok(const char *v)
{
	return v != NULL && strlen(v) == 64 && strspn(v, "0123456789abcdef") == 64;
}

static int action_ok(const char *a)
{
	static const char *const actions[] = {"activate", "retire", "compromise", "destroy", "revoke", "purge"};
	for (size_t i = 0; a != NULL && i < sizeof(actions) / sizeof(actions[0]); i++)
		if (strcmp(a, actions[i]) == 0)
			return 1;
	return 0;
}

/* ---- the key lifecycle ------------------------------------------------------------- */

/* An audit entry for an event (a key's, a certificate's) made from the
 * caller's entry tmpl (its node, role, request, ...) with this action and
 * object, actor (NULL: tmpl's) and time (NULL: tmpl's). ts: the time
 * written, which the event's row records too; without tmpl, no entry and
 * ts is at (or the time the write lock was obtained). out (may be NULL):
 * completed with the entry's seq and ts. */
static cs_err event_audit(cs_store *s, head_ctx *h, const cs_audit_entry *tmpl, const char *action,
			  const char *object, const char *actor, const char *at, char ts[32], cs_audit_entry *out)
{
	if (tmpl == NULL) {
		snprintf(ts, 32, "%s", at != NULL ? at : h->now);
		return CS_OK;
	}
	cs_audit_entry e = *tmpl;
	e.seq = 0;
	e.action = action;
	e.object = object;
	e.outcome = "success";
	e.error_code = NULL;
	if (actor != NULL)
		e.actor = actor;
	if (at != NULL)
		e.ts = at;
	cs_err r = append(s, h, &e);
	if (r != CS_OK)
		return r;
	memcpy(ts, e.ts_buf, 32);
	if (out != NULL) {
		out->seq = e.seq;
		memcpy(out->ts_buf, e.ts_buf, sizeof(out->ts_buf));
		out->ts = out->ts_buf;
	}
	return CS_OK;
}

/* Append the caller's entry (when given); ts: its time, else the time the
 * write lock was obtained. */
static cs_err caller_audit(cs_store *s, head_ctx *h, cs_audit_entry *audit, char ts[32])
{
	if (audit == NULL) {
		memcpy(ts, h->now, 32);
		return CS_OK;
	}
	cs_err r = append(s, h, audit);
	if (r == CS_OK)
		memcpy(ts, audit->ts_buf, 32);
	return r;
}

/* A key as the store holds it now (inside the transaction). */
typedef struct {
	int found, destroyed;
	char status[16];
	char since[32]; /* retired: retired_at; compromised: compromised_at; "" unknown */
	int has_profile;
	char profile[PROFILE_MAX + 2]; /* longer than a profile name: truncated, matches none */
} key_state;

static void copy_key_state(void *arg, const cs_key_info *key)
{
	key_state *k = arg;
	k->found = 1;
	k->destroyed = key->destroyed_at != NULL;
	k->has_profile = key->profile != NULL;
	snprintf(k->profile, sizeof(k->profile), "%s", key->profile != NULL ? key->profile : "");
	snprintf(k->status, sizeof(k->status), "%s", key->status);
	const char *since = strcmp(key->status, "compromised") == 0 ? key->compromised_at : key->retired_at;
	snprintf(k->since, sizeof(k->since), "%s", since != NULL ? since : "");
}

static cs_err key_state_read(cs_store *s, const char *kid, key_state *k)
{
	*k = (key_state){0};
	cs_err r = cs_store_key_info(s, kid, copy_key_state, k);
	return r == CS_E_NOT_FOUND ? CS_OK : r;
}

static int is_status(const key_state *k, const char *status)
{
	return k->found && strcmp(k->status, status) == 0;
}

/* The profile of a recorded key: NULL for a certificate key. */
static const char *key_profile(const key_state *k)
{
	return k->has_profile ? k->profile : NULL;
}

/* Whether a recorded key belongs to profile (NULL: is a certificate key). */
static int in_profile(const key_state *k, const char *profile)
{
	return profile == NULL ? !k->has_profile : k->has_profile && strcmp(k->profile, profile) == 0;
}

/* "profile P" or "the certificate keys", for messages. */
static const char *profile_words(const char *profile, char *buf, size_t n)
{
	if (profile == NULL)
		return "the certificate keys";
	snprintf(buf, n, "profile %s", profile);
	return buf;
}

/* The lifecycle: a retired key may only become compromised, a compromised
 * one stays so; neither ever becomes active (or pending) again. */
static cs_err key_refusal(cs_store *s, const char *kid, const char *status, char *why, size_t why_len)
{
	key_state k;
	if (why_len > 0)
		why[0] = '\0';
	cs_err r = key_state_read(s, kid, &k);
	if (r != CS_OK || !k.found)
		return r;
	int retired = is_status(&k, "retired"), compromised = is_status(&k, "compromised");
	if ((!retired && !compromised) || strcmp(status, "compromised") == 0 ||
	    (retired && strcmp(status, "retired") == 0))
		return CS_OK;
	snprintf(why, why_len, "key %s is %s (since %s)", kid, k.status,
		 k.since[0] != '\0' ? k.since : "a time the store does not hold");
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

/* The kid (malloc'd) of the active key of profile (NULL: the certificate
 * key), NULL when none. */
static cs_err active_kid(cs_store *s, const char *profile, char **kid)
{
	cs_active_key a;
	*kid = NULL;
	cs_err r = cs_store_key_active_in(s, profile, &a);
	if (r == CS_E_NOT_FOUND)
		return CS_OK;
	if (r == CS_OK) {
		*kid = a.kid;
		a.kid = NULL;
	}
	cs_active_key_free(&a);
	return r;
}

static cs_err apply_key(cs_store *s, head_ctx *h, job *j)
{
	char why[128], ts[32];
	const char *kid = j->u.key.kid, *status = j->u.key.status;
	const char *actor = j->audit != NULL ? j->audit->actor : NULL;
	cs_err r = key_refusal(s, kid, status, why, sizeof(why));
	if (r == CS_E_KEY_FORBIDDEN) {
		cs_log_error("ledger: refused to make key %s %s: %s: a retired or compromised key never "
			     "becomes active again", kid, status, why);
		return r;
	}
	key_state k;
	char *other = NULL;
	if (r == CS_OK && (r = key_state_read(s, kid, &k)) == CS_OK && k.has_profile) {
		/* this path knows only the certificate keys */
		cs_log_error("ledger: refused to make key %s %s: it is a key of signing profile %s", kid, status,
			     k.profile);
		return CS_E_KEY_FORBIDDEN;
	}
	if (r == CS_OK)
		r = active_kid(s, NULL, &other);
	int activate = strcmp(status, "active") == 0;
	/* already in this state (one key at most is active)? */
	j->u.key.changed = r == CS_OK && !is_status(&k, status);
	/* one active key: activating this one retires the other, first */
	if (r == CS_OK && j->u.key.changed && activate && other != NULL &&
	    (r = event_audit(s, h, j->audit, "key.retire", other, NULL, NULL, ts, NULL)) == CS_OK)
		r = cs_store_key_event(s, other, CS_KEY_RETIRED, ts, actor, NULL);
	free(other);
	if (r == CS_OK && j->u.key.changed &&
	    (r = cs_store_key_upsert(s, kid, j->u.key.uri, j->u.key.jwk, status)) == CS_OK &&
	    (r = caller_audit(s, h, j->audit, ts)) == CS_OK) {
		/* the event's time and actor, as the audit entry has them */
		if (activate)
			r = cs_store_key_event(s, kid, CS_KEY_ACTIVATED, ts, actor, NULL);
		else if (strcmp(status, "retired") == 0)
			r = cs_store_key_event(s, kid, CS_KEY_RETIRED, ts, actor, NULL);
		else if (strcmp(status, "compromised") == 0)
			r = cs_store_key_event(s, kid, CS_KEY_COMPROMISED, ts, actor, NULL);
	}
	return r;
}

static cs_err apply_key_pending(cs_store *s, head_ctx *h, job *j)
{
	const cs_key_info *k = j->u.rec.key;
	cs_key_info row = {.kid = k->kid, .uri = k->uri, .jwk_json = k->jwk_json, .status = "pending",
			   .label = k->label, .cka_id = k->cka_id, .created_by = k->created_by,
			   .profile = k->profile};
	cs_err r = cs_store_key_insert(s, &row);
	if (r == CS_E_CONFLICT)
		return CS_E_KEY_EXISTS;
	if (r == CS_OK && j->audit != NULL)
		r = append(s, h, j->audit);
	return r;
}

static cs_err apply_key_bootstrap(cs_store *s, head_ctx *h, job *j)
{
	const cs_key_info *key = j->u.rec.key;
	key_state k;
	int ever = 0;
	char ts[32];
	char a[PROFILE_MAX + 16], b[PROFILE_MAX + 16];
	cs_err r = key_state_read(s, key->kid, &k);
	if (r == CS_OK && (is_status(&k, "retired") || is_status(&k, "compromised")))
		return CS_E_KEY_FORBIDDEN;
	if (r == CS_OK && k.found && !in_profile(&k, key->profile)) {
		cs_log_error("ledger: key %s is recorded for %s, not %s: not bootstrapped", key->kid,
			     profile_words(key_profile(&k), a, sizeof(a)), profile_words(key->profile, b, sizeof(b)));
		return CS_E_KEY_FORBIDDEN;
	}
	if (r != CS_OK || (r = cs_store_keys_ever_active_in(s, key->profile, &ever)) != CS_OK || ever)
		return r; /* a key of the profile is or was active: the store decides, not the configuration */
	if ((r = caller_audit(s, h, j->audit, ts)) != CS_OK)
		return r;
	if (k.found) { /* pending (generated, then configured): its record stays, uri too */
		r = cs_store_key_event(s, key->kid, CS_KEY_ACTIVATED, ts, j->u.rec.actor, NULL);
	} else {
		cs_key_info row = {.kid = key->kid, .uri = key->uri, .jwk_json = key->jwk_json, .status = "active",
				   .label = key->label, .cka_id = key->cka_id, .created_by = j->u.rec.actor,
				   .activated_at = ts, .activated_by = j->u.rec.actor, .profile = key->profile};
		r = cs_store_key_insert(s, &row);
	}
	j->u.rec.changed = r == CS_OK;
	return r;
}

static cs_err apply_key_chain(cs_store *s, head_ctx *h, job *j)
{
	cs_err r = cs_store_key_set_chain(s, j->u.chain.kid, j->u.chain.x5c);
	if (r == CS_OK && j->audit != NULL)
		r = append(s, h, j->audit);
	return r;
}

/* ---- ceremonies ---------------------------------------------------------------------- */

/* A ceremony as the store holds it now (copies). */
typedef struct {
	int found;
	char *action, *subject, *state, *expires_at, *reason;
	char last_approval[32]; /* the latest approved_at; "" without approvals */
	int nomem;
} ceremony_state;

static void copy_ceremony(void *arg, const cs_ceremony_record *c)
{
	ceremony_state *cs = arg;
	cs->found = 1;
	cs->action = strdup(c->action);
	cs->subject = strdup(c->subject);
	cs->state = strdup(c->state);
	cs->expires_at = strdup(c->expires_at);
	cs->reason = c->reason != NULL ? strdup(c->reason) : NULL;
	cs->nomem = cs->action == NULL || cs->subject == NULL || cs->state == NULL || cs->expires_at == NULL ||
		    (c->reason != NULL && cs->reason == NULL);
}

static void copy_approval_time(void *arg, const cs_approval_record *a)
{
	ceremony_state *cs = arg;
	if (a->approved_at != NULL && strlen(a->approved_at) < sizeof(cs->last_approval) &&
	    strcmp(a->approved_at, cs->last_approval) > 0)
		memcpy(cs->last_approval, a->approved_at, strlen(a->approved_at) + 1);
}

static void ceremony_state_free(ceremony_state *c)
{
	free(c->action);
	free(c->subject);
	free(c->state);
	free(c->expires_at);
	free(c->reason);
	*c = (ceremony_state){0};
}

/* The time a ceremony step happens at, into now: the latest of the
 * caller's time at, the time the write lock was obtained and the newest
 * audit entry's ts (the head read in this transaction), so that a clock
 * set back (or a stale time) can neither revive an expired ceremony nor
 * date a step before what the log already holds. */
static cs_err step_time(cs_store *s, head_ctx *h, const char *at, char now[32])
{
	if (!h->known) {
		cs_err r = read_head(s, &h->seq, h->hash, h->ts);
		if (r != CS_OK)
			return r;
		h->known = 1;
	}
	const char *t = strcmp(at, h->now) > 0 ? at : h->now;
	if (strcmp(h->ts, t) > 0)
		t = h->ts;
	snprintf(now, 32, "%s", t);
	return CS_OK;
}

/* The ceremony id, open and not expired at its step's time (step_time,
 * raised to its latest approval's time: an execution is never dated
 * before an approval), into now: CS_E_NOT_FOUND, CS_E_CEREMONY_CLOSED,
 * CS_E_CEREMONY_EXPIRED. */
static cs_err ceremony_open(cs_store *s, head_ctx *h, const char *id, const char *at, ceremony_state *c,
			    char now[32])
{
	*c = (ceremony_state){0};
	cs_err r = cs_store_ceremony_get(s, id, copy_ceremony, copy_approval_time, c);
	if (r == CS_OK && c->nomem)
		r = CS_E_NOMEM;
	if (r == CS_OK && !c->found)
		r = CS_E_NOT_FOUND;
	if (r == CS_OK)
		r = step_time(s, h, at, now);
	if (r != CS_OK)
		return r;
	if (strcmp(c->last_approval, now) > 0)
		memcpy(now, c->last_approval, sizeof(c->last_approval));
	if (strcmp(c->state, "open") != 0)
		return CS_E_CEREMONY_CLOSED;
	if (strcmp(c->expires_at, now) < 0)
		return CS_E_CEREMONY_EXPIRED;
	return CS_OK;
}

static cs_err apply_ceremony_create(cs_store *s, head_ctx *h, job *j)
{
	cs_ceremony_record c = *j->u.ceremony;
	if (c.params_json == NULL)
		c.params_json = "{}"; /* as the canonical bytes have it */
	cs_err r = cs_store_ceremony_insert(s, &c);
	if (r == CS_OK && j->audit != NULL)
		r = append(s, h, j->audit);
	return r;
}

static cs_err apply_ceremony_approve(cs_store *s, head_ctx *h, job *j)
{
	cs_approval_record a = *j->u.approval;
	ceremony_state c;
	char now[32];
	cs_err r = ceremony_open(s, h, a.ceremony_id, a.approved_at, &c, now);
	ceremony_state_free(&c);
	a.approved_at = now; /* its audit entry's time too */
	if (r == CS_OK)
		r = cs_store_approval_insert(s, &a); /* CS_E_CONFLICT: this officer approved already */
	if (r == CS_OK && j->audit != NULL) {
		j->audit->ts = now;
		r = append(s, h, j->audit);
	}
	return r;
}

/* Revoke a certificate: it exists (CS_E_NOT_FOUND), is not revoked
 * (CS_E_CONFLICT); audited cert.revoke. */
static cs_err revoke_cert(cs_store *s, head_ctx *h, const cs_audit_entry *tmpl, const char *cert_id,
			  const char *reason, const char *at, const char *actor, const char *ceremony,
			  cs_audit_entry *out)
{
	char ts[32];
	if (reason == NULL || reason[0] == '\0') {
		cs_log_error("ledger: certificate %s: a revocation needs a reason; not revoked", cert_id);
		return CS_E_INVALID_ARG;
	}
	cs_err r = cs_store_cert_exists(s, cert_id);
	if (r != CS_OK)
		return r;
	if ((r = cs_store_revocation_get(s, cert_id, NULL, NULL)) != CS_E_NOT_FOUND)
		return r == CS_OK ? CS_E_CONFLICT : r;
	if ((r = event_audit(s, h, tmpl, "cert.revoke", cert_id, actor, at, ts, out)) != CS_OK)
		return r;
	cs_revocation_record rv = {.cert_id = cert_id, .reason = reason, .revoked_at = ts, .revoked_by = actor,
				   .ceremony_id = ceremony};
	return cs_store_revocation_insert(s, &rv);
}

/* activate: subject pending; the active key of its profile (or the
 * certificate key) when the rollover was signed still the active one; the
 * old one retired, the new one active, the rollover stored. Other
 * profiles' keys are not touched. */
static cs_err exec_activate(cs_store *s, head_ctx *h, const cs_ceremony_exec *x, const cs_audit_entry *tmpl)
{
	key_state k;
	char *old = NULL, ts[32];
	cs_err r = key_state_read(s, x->subject, &k);
	if (r != CS_OK)
		return r;
	if (!k.found)
		return CS_E_NOT_FOUND;
	if (is_status(&k, "active"))
		return CS_E_CONFLICT;
	if (!is_status(&k, "pending"))
		return CS_E_KEY_FORBIDDEN; /* retired or compromised: never active again */
	if ((r = active_kid(s, key_profile(&k), &old)) != CS_OK)
		return r;
	if ((old == NULL) != (x->expected_active == NULL) ||
	    (old != NULL && strcmp(old, x->expected_active) != 0)) {
		free(old);
		return CS_E_CONFLICT; /* the rollover names another predecessor */
	}
	if (old != NULL && (r = event_audit(s, h, tmpl, "key.retire", old, x->actor, x->at, ts, NULL)) == CS_OK)
		r = cs_store_key_event(s, old, CS_KEY_RETIRED, ts, x->actor, x->ceremony_id);
	if (r == CS_OK && (r = event_audit(s, h, tmpl, "key.activate", x->subject, x->actor, x->at, ts, NULL)) == CS_OK)
		r = cs_store_key_event(s, x->subject, CS_KEY_ACTIVATED, ts, x->actor, x->ceremony_id);
	if (r == CS_OK) {
		cs_rollover_record ro = {.ceremony_id = x->ceremony_id, .old_kid = old, .new_kid = x->subject,
					 .statement_json = x->rollover_json, .created_at = ts};
		r = cs_store_rollover_insert(s, &ro);
	}
	free(old);
	return r;
}

/* retire (pending only), compromise (not yet compromised), destroy
 * (retired or compromised, once). */
static cs_err exec_key_event(cs_store *s, head_ctx *h, const cs_ceremony_exec *x, const cs_audit_entry *tmpl)
{
	key_state k;
	char ts[32];
	cs_err r = key_state_read(s, x->subject, &k);
	if (r != CS_OK)
		return r;
	if (!k.found)
		return CS_E_NOT_FOUND;
	int pending = is_status(&k, "pending"), active = is_status(&k, "active");
	int retired = is_status(&k, "retired"), compromised = is_status(&k, "compromised");
	cs_key_event ev;
	const char *action;
	if (strcmp(x->action, "retire") == 0) {
		/* the active key is retired by activating its successor */
		if (retired)
			return CS_E_CONFLICT;
		if (!pending)
			return CS_E_KEY_FORBIDDEN;
		ev = CS_KEY_RETIRED;
		action = "key.retire";
	} else if (strcmp(x->action, "compromise") == 0) {
		if (compromised)
			return CS_E_CONFLICT;
		if (!pending && !active && !retired)
			return CS_E_KEY_FORBIDDEN;
		ev = CS_KEY_COMPROMISED;
		action = "key.compromise";
	} else {
		if (!retired && !compromised)
			return CS_E_KEY_FORBIDDEN; /* pending or active: not destroyed */
		if (k.destroyed)
			return CS_E_CONFLICT;
		ev = CS_KEY_DESTROYED;
		action = "key.destroy";
	}
	if ((r = event_audit(s, h, tmpl, action, x->subject, x->actor, x->at, ts, NULL)) == CS_OK)
		r = cs_store_key_event(s, x->subject, ev, ts, x->actor, x->ceremony_id);
	return r;
}

static cs_err apply_ceremony_execute(cs_store *s, head_ctx *h, job *j)
{
	cs_ceremony_exec xt = *j->u.exec;
	const cs_ceremony_exec *x = &xt;
	ceremony_state c;
	char now[32];
	cs_err r = ceremony_open(s, h, x->ceremony_id, x->at, &c, now);
	xt.at = now; /* every entry and time of the execution */
	if (r == CS_OK && (strcmp(c.action, x->action) != 0 || strcmp(c.subject, x->subject) != 0)) {
		cs_log_error("ledger: ceremony %s is %s of '%s', not %s of '%s'; not executed", x->ceremony_id,
			     c.action, c.subject, x->action, x->subject);
		r = CS_E_INVALID_ARG;
	}
	if (r == CS_OK) {
		if (strcmp(x->action, "activate") == 0)
			r = exec_activate(s, h, x, j->audit);
		else if (strcmp(x->action, "revoke") == 0)
			r = revoke_cert(s, h, j->audit, x->subject, x->reason != NULL ? x->reason : c.reason, x->at,
					x->actor, x->ceremony_id, NULL);
		else if (strcmp(x->action, "purge") != 0) /* purge: done by the caller before */
			r = exec_key_event(s, h, x, j->audit);
	}
	ceremony_state_free(&c);
	if (r == CS_OK && j->audit != NULL) {
		j->audit->ts = now;
		r = append(s, h, j->audit);
	}
	if (r == CS_OK) /* in one conditional statement: of two executions, one */
		r = cs_store_ceremony_close(s, x->ceremony_id, x->at, x->actor, x->result_json);
	return r;
}

static cs_err apply_revoke(cs_store *s, head_ctx *h, job *j)
{
	return revoke_cert(s, h, j->audit, j->u.revoke.cert_id, j->u.revoke.reason, j->u.revoke.at,
			   j->u.revoke.actor, NULL, j->audit);
}

static cs_err apply_certify(cs_store *s, head_ctx *h, job *j)
{
	int claimed = 0, compromised = 0;
	/* a key compromised meanwhile (a ceremony committed while this request
	 * signed, before the daemon's key watch emptied its slot) stores no
	 * certificate: the client would hold one that fails verification */
	cs_err r = cs_store_key_compromised(s, j->u.certify.kid, &compromised);
	if (r == CS_OK && compromised) {
		cs_log_warn("ledger: certificate %s not stored: its key %s was compromised meanwhile",
			    j->u.certify.cert_id, j->u.certify.kid);
		return CS_E_NO_ACTIVE_KEY;
	}
	/* claim the session first: only one certificate per session */
	if (r == CS_OK)
		r = cs_store_session_claim(s, j->u.certify.session_id, j->u.certify.cert_id, &claimed);
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

/* ---- signatures ------------------------------------------------------------------- */

/* One signature job: the audit entry, then the record with its seq and ts.
 * The key must be on record, of the record's profile, and not compromised
 * (compromised meanwhile, while this request signed: nothing stored, as a
 * certificate). */
static cs_err apply_sign_job(cs_store *s, head_ctx *h, cs_ledger_sign_job *sj)
{
	cs_signature_record *g = sj->record;
	key_state k;
	cs_err r = g != NULL ? key_state_read(s, g->kid, &k) : CS_OK;
	if (r != CS_OK)
		return r;
	if (g != NULL && (!k.found || !in_profile(&k, g->profile))) {
		cs_log_error("ledger: signature %s not stored: key %s is not a key of profile %s", g->id, g->kid,
			     g->profile);
		return CS_E_INVALID_ARG;
	}
	if (g != NULL && is_status(&k, "compromised")) {
		cs_log_warn("ledger: signature %s not stored: its key %s was compromised meanwhile", g->id, g->kid);
		return CS_E_NO_ACTIVE_KEY;
	}
	if ((r = append(s, h, sj->audit)) != CS_OK || g == NULL)
		return r;
	g->audit_seq = sj->audit->seq;
	g->created_at = sj->audit->ts;
	return cs_store_signature_insert(s, g); /* CS_E_CONFLICT: the id is recorded */
}

/* Every job (but those whose result is set already: refused before) in its
 * own savepoint (inside the batch's): one that fails rolls back alone. A
 * savepoint that cannot end fails them all. */
static cs_err apply_signatures(cs_store *s, head_ctx *h, job *j)
{
	cs_err r = CS_OK;
	j->u.sign.entries = 0;
	for (size_t i = 0; r == CS_OK && i < j->u.sign.n; i++) {
		cs_ledger_sign_job *sj = &j->u.sign.jobs[i];
		if (sj->result != CS_OK)
			continue; /* refused before (malformed) */
		head_ctx before = *h;
		if ((r = cs_store_savepoint(s)) != CS_OK)
			break;
		sj->result = apply_sign_job(s, h, sj);
		if (sj->result != CS_OK) {
			*h = before; /* nothing of it is left */
			if (sj->record != NULL) {
				sj->record->audit_seq = 0;
				sj->record->created_at = NULL;
			}
		} else {
			j->u.sign.entries++;
		}
		r = cs_store_savepoint_end(s, sj->result);
	}
	return r;
}

/* The readiness probe (cs_ledger_write_health): the store's probe row is
 * written, and an audit entry is appended in a savepoint that is then
 * rolled back. The audit log's own insert (its triggers, constraints and
 * pages) must succeed for the node to be ready, since no audited request
 * can succeed without it; the log keeps no trace of probes, and h is left
 * as it was. */
static cs_err apply_probe(cs_store *s, head_ctx *h)
{
	cs_err r = cs_store_probe_write(s, real_ms());
	if (r != CS_OK || (r = cs_store_savepoint(s)) != CS_OK)
		return r;
	head_ctx scratch = *h;
	cs_audit_entry e = {.node = "readiness", .actor = "system", .role = "system",
			    .action = "readiness.probe", .outcome = "success"};
	cs_err appended = append(s, &scratch, &e);
	/* rolled back in every case: a result other than CS_OK says so */
	r = cs_store_savepoint_end(s, appended != CS_OK ? appended : CS_E_INTERNAL);
	if (appended == CS_OK && r == CS_OK)
		h->audited++; /* the audit log could take an entry */
	return appended != CS_OK ? appended : r;
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
	case JOB_PROBE: return apply_probe(s, h);
	case JOB_KEY_PENDING: return apply_key_pending(s, h, j);
	case JOB_KEY_BOOTSTRAP: return apply_key_bootstrap(s, h, j);
	case JOB_KEY_CHAIN: return apply_key_chain(s, h, j);
	case JOB_CEREMONY_CREATE: return apply_ceremony_create(s, h, j);
	case JOB_CEREMONY_APPROVE: return apply_ceremony_approve(s, h, j);
	case JOB_CEREMONY_EXECUTE: return apply_ceremony_execute(s, h, j);
	case JOB_REVOKE: return apply_revoke(s, h, j);
	case JOB_SIGNATURES: return apply_signatures(s, h, j);
	case JOB_NODE:
		free(j->u.node.holder); /* a batch retried: only the last answer counts */
		j->u.node.holder = NULL;
		return cs_store_node_claim(s, j->u.node.node_id, j->u.node.instance, j->u.node.host, j->u.node.pid,
					   j->u.node.now_ms != 0 ? j->u.node.now_ms : real_ms(), j->u.node.live_ms,
					   &j->u.node.holder);
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
 * each in its own savepoint, and set their results. A batch of one needs
 * no savepoint: its failure rolls the transaction back, which leaves the
 * same (two statements fewer on a database server, where each is a round
 * trip made while the write lock is held). */
static void run_batch(cs_ledger *l, job *jobs, size_t n)
{
	cs_store *s = l->writer;
	int64_t deadline = 0, t0 = mono_ms();
	for (job *j = jobs; j != NULL; j = j->next)
		if (deadline == 0 || j->deadline_ms < deadline)
			deadline = j->deadline_ms;
	head_ctx h = {0};
	cs_err r = cs_store_write_begin(s, deadline);
	cs_audit_now(h.now); /* the write lock is ours: later entries take later times */
	int store_failure = 0;
	for (job *j = jobs; j != NULL; j = j->next)
		j->result = CS_OK;
	int alone = jobs != NULL && jobs->next == NULL;
	for (job *j = jobs; r == CS_OK && j != NULL; j = j->next) {
		head_ctx before = h;
		if (!alone && (r = cs_store_savepoint(s)) != CS_OK)
			break;
		j->result = apply(s, &h, j);
		if (j->result != CS_OK) {
			h = before; /* the job rolls back alone: nothing of it is left */
			store_failure |= cs_err_category_of(j->result) == CS_CAT_STORE;
		}
		/* a savepoint that cannot end leaves the transaction unknown; a
		 * job alone that failed: the transaction is rolled back */
		r = alone ? j->result : cs_store_savepoint_end(s, j->result);
	}
	r = cs_store_write_end(s, r);
	for (job *j = jobs; r != CS_OK && j != NULL; j = j->next)
		if (j->result == CS_OK)
			j->result = r; /* nothing of the transaction is left */
	if (r != CS_OK)
		store_failure |= cs_err_category_of(r) == CS_CAT_STORE;
	/* readiness (cs_ledger_write_health) follows the audited writes: a
	 * write that appends no entry (a node claim's renewal, a key's
	 * status) succeeding says nothing of the audit log */
	if (store_failure)
		health_record(l, 0);
	else if (r == CS_OK && h.audited > 0)
		health_record(l, 1); /* an entry reached the disk */
	double secs = (double)(mono_ms() - t0) / 1000.0;
	if (r == CS_OK) {
		cs_metrics_commit((uint64_t)(secs * 1e9), (unsigned)n);
		for (job *j = jobs; j != NULL; j = j->next) {
			if (j->result == CS_OK && j->audit != NULL && j->audit->seq > 0)
				cs_metrics_audit_entry();
			for (size_t i = 0; j->result == CS_OK && j->kind == JOB_SIGNATURES && i < j->u.sign.entries; i++)
				cs_metrics_audit_entry();
		}
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
	const cs_store_target t = {.backend = CS_STORE_SQLITE, .path = path};
	return cs_ledger_connect(&t, write_timeout_ms, out);
}

cs_err cs_ledger_connect(const cs_store_target *target, int write_timeout_ms, cs_ledger **out)
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
	cs_err r = cs_store_connect(target, &l->writer);
	if (r == CS_OK)
		r = cs_store_connect(target, &l->reader);
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

cs_err cs_ledger_key_add_pending(cs_ledger *l, const cs_key_info *key, cs_audit_entry *audit)
{
	static const char what[] = "recording a pending key";
	if (key == NULL || !text_ok(key->kid, TEXT_MAX, 0))
		return invalid(what, "the kid");
	if (!text_ok(key->uri, TEXT_MAX, 0))
		return invalid(what, "the URI");
	if (!jwk_ok(key->jwk_json, key->kid))
		return invalid(what, "the JWK (a JSON object of this kid)");
	if (!opt_text_ok(key->label, TEXT_MAX) || !hex_ok(key->cka_id) || !opt_text_ok(key->created_by, TEXT_MAX))
		return invalid(what, "the label, CKA_ID (lowercase hex) or creator");
	if (key->profile != NULL && !profile_ok(key->profile))
		return invalid(what, "the signing profile's name");
	job j = {.kind = JOB_KEY_PENDING, .audit = audit, .u.rec = {key, NULL, 0}};
	return submit(l, &j);
}

cs_err cs_ledger_key_bootstrap(cs_ledger *l, const cs_key_info *key, const char *actor, int *changed,
			       cs_audit_entry *audit)
{
	static const char what[] = "bootstrapping the active key";
	*changed = 0;
	if (key == NULL || !text_ok(key->kid, TEXT_MAX, 0))
		return invalid(what, "the kid");
	if (!text_ok(key->uri, TEXT_MAX, 0))
		return invalid(what, "the URI");
	if (!jwk_ok(key->jwk_json, key->kid))
		return invalid(what, "the JWK (a JSON object of this kid)");
	if (!opt_text_ok(key->label, TEXT_MAX) || !hex_ok(key->cka_id))
		return invalid(what, "the label or CKA_ID (lowercase hex)");
	if (!text_ok(actor, TEXT_MAX, 0))
		return invalid(what, "the actor");
	if (key->profile != NULL && !profile_ok(key->profile))
		return invalid(what, "the signing profile's name");
	job j = {.kind = JOB_KEY_BOOTSTRAP, .audit = audit, .u.rec = {key, actor, 0}};
	cs_err r = submit(l, &j);
	*changed = r == CS_OK && j.u.rec.changed; /* rolled back otherwise */
	return r;
}

cs_err cs_ledger_key_set_chain(cs_ledger *l, const char *kid, const char *x5c_json, cs_audit_entry *audit)
{
	if (!text_ok(kid, TEXT_MAX, 0))
		return invalid("registering a key's chain", "the kid");
	if (x5c_json != NULL && !x5c_ok(x5c_json))
		return invalid("registering a key's chain", "the chain (a JSON array of base64 DER certificates)");
	job j = {.kind = JOB_KEY_CHAIN, .audit = audit, .u.chain = {kid, x5c_json}};
	return submit(l, &j);
}

cs_err cs_ledger_ceremony_create(cs_ledger *l, const cs_ceremony_record *c, cs_audit_entry *audit)
{
	static const char what[] = "recording a ceremony";
	if (c == NULL || !text_ok(c->id, TEXT_MAX, 0))
		return invalid(what, "the id");
	if (!action_ok(c->action))
		return invalid(what, "the action");
	/* the subject: a kid, a certificate id; "" for purge */
	if (c->subject == NULL || (strcmp(c->action, "purge") == 0 ? c->subject[0] != '\0'
								   : !text_ok(c->subject, TEXT_MAX, 0)))
		return invalid(what, "the subject");
	if (!opt_text_ok(c->reason, TEXT_MAX) || (c->params_json != NULL && !json_ok(c->params_json, JSON_OBJECT)))
		return invalid(what, "the reason or the parameters (a JSON object)");
	if (!text_ok(c->nonce, TEXT_MAX, 0) || !text_ok(c->node, TEXT_MAX, 0) || !text_ok(c->started_by, TEXT_MAX, 0))
		return invalid(what, "the nonce, node or starter");
	if (!ts_ok(c->created_at) || !ts_ok(c->expires_at) || strcmp(c->expires_at, c->created_at) <= 0)
		return invalid(what, "the creation and expiry times (RFC 3339 UTC with milliseconds, expiry later)");
	if (!json_ok(c->canonical, JSON_OBJECT))
		return invalid(what, "the canonical bytes (a JSON object)");
	job j = {.kind = JOB_CEREMONY_CREATE, .audit = audit, .u.ceremony = c};
	return submit(l, &j);
}

cs_err cs_ledger_ceremony_approve(cs_ledger *l, const cs_approval_record *a, cs_audit_entry *audit)
{
	static const char what[] = "recording an approval";
	if (a == NULL || !text_ok(a->ceremony_id, TEXT_MAX, 0))
		return invalid(what, "the ceremony id");
	if (!text_ok(a->officer, TEXT_MAX, 0) || !text_ok(a->fingerprint, TEXT_MAX, 0))
		return invalid(what, "the officer or fingerprint");
	if (!text_ok(a->cert_pem, DOC_MAX, 1) || !text_ok(a->sig_alg, TEXT_MAX, 0) ||
	    !text_ok(a->signature_b64, DOC_MAX, 0))
		return invalid(what, "the certificate, signature algorithm or signature");
	if (!ts_ok(a->approved_at) || !text_ok(a->approved_by, TEXT_MAX, 0))
		return invalid(what, "the approval time (RFC 3339 UTC with milliseconds) or approver");
	job j = {.kind = JOB_CEREMONY_APPROVE, .audit = audit, .u.approval = a};
	return submit(l, &j);
}

cs_err cs_ledger_ceremony_execute(cs_ledger *l, const cs_ceremony_exec *x, cs_audit_entry *audit)
{
	static const char what[] = "executing a ceremony";
	if (x == NULL || !text_ok(x->ceremony_id, TEXT_MAX, 0))
		return invalid(what, "the ceremony id");
	if (!action_ok(x->action))
		return invalid(what, "the action");
	if (x->subject == NULL || (strcmp(x->action, "purge") != 0 && !text_ok(x->subject, TEXT_MAX, 0)))
		return invalid(what, "the subject");
	if (!ts_ok(x->at) || !text_ok(x->actor, TEXT_MAX, 0))
		return invalid(what, "the execution time (RFC 3339 UTC with milliseconds) or actor");
	if (x->result_json != NULL && !json_ok(x->result_json, -1))
		return invalid(what, "the result (JSON)");
	if (strcmp(x->action, "activate") == 0 &&
	    (!opt_text_ok(x->expected_active, TEXT_MAX) || !json_ok(x->rollover_json, JSON_OBJECT)))
		return invalid(what, "the expected active key or the rollover statement (a JSON object)");
	if (!opt_text_ok(x->reason, TEXT_MAX))
		return invalid(what, "the reason");
	job j = {.kind = JOB_CEREMONY_EXECUTE, .audit = audit, .u.exec = x};
	return submit(l, &j);
}

cs_err cs_ledger_cert_revoke(cs_ledger *l, const char *cert_id, const char *reason, const char *at,
			     const char *actor, cs_audit_entry *audit)
{
	static const char what[] = "revoking a certificate";
	if (!text_ok(cert_id, TEXT_MAX, 0) || !text_ok(reason, TEXT_MAX, 0))
		return invalid(what, "the certificate id or reason");
	if (!ts_ok(at) || !text_ok(actor, TEXT_MAX, 0))
		return invalid(what, "the time (RFC 3339 UTC with milliseconds) or actor");
	job j = {.kind = JOB_REVOKE, .audit = audit, .u.revoke = {cert_id, reason, at, actor}};
	return submit(l, &j);
}

/* A signature record as the caller gives it (created_at and audit_seq are
 * the ledger's): NULL when well formed, else the field at fault. */
static const char *signature_fault(const cs_signature_record *g)
{
	if (!text_ok(g->id, TEXT_MAX, 0))
		return "the id";
	if (!profile_ok(g->profile))
		return "the profile";
	if (g->format == NULL ||
	    (strcmp(g->format, "jws") != 0 && strcmp(g->format, "dsse") != 0 && strcmp(g->format, "digest") != 0))
		return "the format (jws, dsse or digest)";
	if (!text_ok(g->requester, TEXT_MAX, 0) || !text_ok(g->requester_cert_sha256, TEXT_MAX, 0))
		return "the requester or its certificate's SHA-256";
	if (!sha256_hex_ok(g->signed_sha256))
		return "the SHA-256 of the signed bytes (64 lowercase hex)";
	if (!text_ok(g->kid, TEXT_MAX, 0) || !text_ok(g->signature, SIG_MAX, 0) ||
	    !opt_text_ok(g->signature_der, TEXT_MAX))
		return "the kid or the signature";
	if (!opt_text_ok(g->payload_type, TEXT_MAX) || (g->payload == NULL && g->payload_len != 0) ||
	    g->payload_len > PAYLOAD_MAX)
		return "the payload type or the payload";
	return NULL;
}

cs_err cs_ledger_signatures_put(cs_ledger *l, cs_ledger_sign_job *jobs, size_t n)
{
	if (n == 0)
		return CS_OK;
	if (jobs == NULL)
		return invalid("recording signatures", "the jobs");
	for (size_t i = 0; i < n; i++)
		if (jobs[i].audit == NULL) {
			cs_log_error("ledger: recording signatures: job %zu has no audit entry", i);
			for (size_t k = 0; k < n; k++)
				jobs[k].result = CS_E_INVALID_ARG;
			return CS_E_INVALID_ARG;
		}
	/* a malformed record fails its job only: apply skips what failed here */
	for (size_t i = 0; i < n; i++) {
		const char *fault = jobs[i].record != NULL ? signature_fault(jobs[i].record) : NULL;
		jobs[i].result = fault == NULL ? CS_OK : invalid("recording a signature", fault);
	}
	job j = {.kind = JOB_SIGNATURES, .u.sign = {jobs, n, 0}};
	cs_err r = submit(l, &j);
	for (size_t i = 0; r != CS_OK && i < n; i++) {
		jobs[i].result = r; /* nothing of the transaction is left */
		if (jobs[i].record != NULL) {
			jobs[i].record->audit_seq = 0;
			jobs[i].record->created_at = NULL;
		}
	}
	return r;
}

cs_err cs_ledger_audit_append(cs_ledger *l, cs_audit_entry *audit)
{
	if (audit == NULL)
		return CS_E_INVALID_ARG;
	job j = {.kind = JOB_AUDIT, .audit = audit};
	return submit(l, &j);
}

cs_err cs_ledger_node_claim(cs_ledger *l, const char *node_id, const char *instance, const char *host, int64_t pid,
			    int64_t live_ms, char **holder)
{
	*holder = NULL;
	if (node_id == NULL || instance == NULL || host == NULL || live_ms <= 0)
		return CS_E_INVALID_ARG;
	job j = {.kind = JOB_NODE, .u.node = {node_id, instance, host, pid, live_ms, 0, NULL}};
	cs_err r = submit(l, &j);
	if (r == CS_E_CONFLICT)
		*holder = j.u.node.holder;
	else
		free(j.u.node.holder);
	return r;
}

cs_err cs_ledger_node_release(cs_ledger *l, const char *node_id, const char *instance, const char *host, int64_t pid)
{
	if (node_id == NULL || instance == NULL || host == NULL)
		return CS_E_INVALID_ARG;
	/* renewed at the epoch's first millisecond: stale for anyone now; a
	 * row another instance holds is newer, and left alone (conflict) */
	job j = {.kind = JOB_NODE, .u.node = {node_id, instance, host, pid, CS_LEDGER_NODE_RELEASE_LIVE_MS, 1, NULL}};
	cs_err r = submit(l, &j);
	free(j.u.node.holder);
	return r;
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

