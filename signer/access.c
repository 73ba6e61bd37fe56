/* access: see access.h. */
#include "access.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One grant, copied out of the configuration. */
typedef struct {
	char name[32]; /* "access.grants[N]" */
	char *identity;
	size_t prefix_len; /* a pattern: the bytes before its '*' ("/" included) */
	bool pattern;
	cs_config_role role;
	char **projects, **environments, **presets; /* NULL-terminated or NULL */
	char **profiles; /* signer, auditor: signing profiles; NULL-terminated or NULL */
	double rate;
	int burst;
	/* identity, role, scope, rate and burst: a grant that stays identical
	 * across a reload keeps its buckets */
	char *signature;
} grant;

/* ---- rate buckets, shared by the rules a swap replaces and their successor ---- */

typedef struct bucket {
	struct bucket *next;
	uint64_t hash;
	double tokens, rate;
	int burst;
	int64_t last_ms;
	char key[]; /* signature, '\x1d', identity */
} bucket;

typedef struct {
	atomic_long refs;
	pthread_mutex_t mu;
	bucket **slots;
	size_t nslots, count, sweep_at;
} rate_table;

struct cs_access {
	atomic_long refs;
	grant *grants;
	size_t ngrants;
	rate_table *rates;
};

struct cs_access_slot {
	pthread_mutex_t mu;
	cs_access *current;
};

#define KEY_SEP '\x1d'
#define SWEEP_MIN 1024
/* a token's worth, give or take the rounding of the refills */
#define ONE_TOKEN (1.0 - 1e-9)

static const char *const action_names[CS_ACTION_COUNT] = {
	[CS_ACTION_GENERATE] = "generate",         [CS_ACTION_CERTIFY] = "certify",
	[CS_ACTION_CERT_READ] = "cert.read",       [CS_ACTION_AUDIT_READ] = "audit.read",
	[CS_ACTION_PRESETS_READ] = "presets.read", [CS_ACTION_POLICY_READ] = "policy.read",
	[CS_ACTION_METRICS_READ] = "metrics.read", [CS_ACTION_READY_DETAIL] = "ready.detail",
	[CS_ACTION_RELOAD] = "reload",             [CS_ACTION_SIGN] = "sign",
	[CS_ACTION_SIGNATURE_READ] = "signature.read", [CS_ACTION_INVENTORY_READ] = "inventory.read",
};

const char *cs_access_action_name(cs_access_action action)
{
	return (unsigned)action < CS_ACTION_COUNT ? action_names[action] : "unknown";
}

int cs_access_action_parse(const char *name)
{
	for (int a = 0; name != NULL && a < CS_ACTION_COUNT; a++)
		if (strcmp(name, action_names[a]) == 0)
			return a;
	return -1;
}

const char *cs_access_role_name(cs_config_role role)
{
	switch (role) {
	case CS_ROLE_GENERATOR: return "generator";
	case CS_ROLE_AUDITOR: return "auditor";
	case CS_ROLE_OPERATOR: return "operator";
	case CS_ROLE_SIGNER: return "signer";
	default: return "unknown";
	}
}

/* The role an action needs, for a refusal. */
static const char *needed_role(cs_access_action action)
{
	switch (action) {
	case CS_ACTION_GENERATE:
	case CS_ACTION_CERTIFY: return "generator";
	case CS_ACTION_CERT_READ:
	case CS_ACTION_INVENTORY_READ: return "auditor or generator";
	case CS_ACTION_AUDIT_READ: return "auditor";
	case CS_ACTION_PRESETS_READ:
	case CS_ACTION_POLICY_READ: return "any";
	case CS_ACTION_SIGN: return "signer";
	case CS_ACTION_SIGNATURE_READ: return "auditor or signer";
	default: return "operator";
	}
}

/* ---- building ------------------------------------------------------------------ */

static void free_strv(char **v)
{
	for (size_t i = 0; v != NULL && v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

static int dup_strv(char *const *v, char ***out)
{
	*out = NULL;
	if (v == NULL)
		return 0;
	size_t n = 0;
	while (v[n] != NULL)
		n++;
	char **copy = calloc(n + 1, sizeof(char *));
	if (copy == NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		if ((copy[i] = strdup(v[i])) == NULL) {
			free_strv(copy);
			return -1;
		}
	*out = copy;
	return 0;
}

/* Append a list to the signature: its elements joined by '\x1e'; absent
 * and empty differ. */
static void sig_list(char *buf, size_t cap, size_t *len, char *const *v)
{
	if (*len < cap)
		*len += (size_t)snprintf(buf + *len, cap - *len, "\x1f%s", v == NULL ? "-" : "+");
	for (size_t i = 0; v != NULL && v[i] != NULL; i++)
		if (*len < cap)
			*len += (size_t)snprintf(buf + *len, cap - *len, "%s%s", i ? "\x1e" : "", v[i]);
}

static size_t strv_bytes(char *const *v)
{
	size_t n = 2;
	for (size_t i = 0; v != NULL && v[i] != NULL; i++)
		n += strlen(v[i]) + 1;
	return n;
}

static int make_signature(grant *g)
{
	size_t cap = strlen(g->identity) + strv_bytes(g->projects) + strv_bytes(g->environments) +
		     strv_bytes(g->presets) + strv_bytes(g->profiles) + 96;
	size_t len = 0;
	if ((g->signature = malloc(cap)) == NULL)
		return -1;
	len = (size_t)snprintf(g->signature, cap, "%d\x1f%s", (int)g->role, g->identity);
	sig_list(g->signature, cap, &len, g->projects);
	sig_list(g->signature, cap, &len, g->environments);
	sig_list(g->signature, cap, &len, g->presets);
	sig_list(g->signature, cap, &len, g->profiles);
	if (len < cap)
		len += (size_t)snprintf(g->signature + len, cap - len, "\x1f%.17g\x1f%d", g->rate, g->burst);
	return len < cap ? 0 : -1;
}

static void free_grant(grant *g)
{
	free(g->identity);
	free_strv(g->projects);
	free_strv(g->environments);
	free_strv(g->presets);
	free_strv(g->profiles);
	free(g->signature);
}

static rate_table *rate_table_new(void)
{
	rate_table *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->nslots = 64;
	t->sweep_at = SWEEP_MIN;
	if ((t->slots = calloc(t->nslots, sizeof(bucket *))) == NULL ||
	    pthread_mutex_init(&t->mu, NULL) != 0) {
		free(t->slots);
		free(t);
		return NULL;
	}
	atomic_init(&t->refs, 1);
	return t;
}

static void rate_table_unref(rate_table *t)
{
	if (t == NULL || atomic_fetch_sub(&t->refs, 1) != 1)
		return;
	for (size_t i = 0; i < t->nslots; i++)
		for (bucket *b = t->slots[i], *next; b != NULL; b = next) {
			next = b->next;
			free(b);
		}
	free(t->slots);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

cs_err cs_access_new(const cs_config *cfg, cs_access **out)
{
	*out = NULL;
	cs_access *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return CS_E_NOMEM;
	atomic_init(&a->refs, 1);
	if ((a->rates = rate_table_new()) == NULL)
		goto nomem;
	size_t n = cfg != NULL ? cfg->access.ngrants : 0;
	if (n > 0 && (a->grants = calloc(n, sizeof(grant))) == NULL)
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		const cs_config_grant *c = &cfg->access.grants[i];
		grant *g = &a->grants[i];
		a->ngrants = i + 1;
		if (c->identity == NULL) { /* not a loaded configuration */
			cs_access_unref(a);
			return CS_E_INVALID_ARG;
		}
		snprintf(g->name, sizeof(g->name), "access.grants[%u]", (unsigned)i);
		size_t len = strlen(c->identity);
		g->pattern = len >= 3 && strcmp(c->identity + len - 2, "/*") == 0;
		g->prefix_len = g->pattern ? len - 1 : len;
		g->role = c->role;
		g->rate = c->rate > 0.0 ? c->rate : 0.0;
		g->burst = g->rate > 0.0 ? (c->burst >= 1 ? c->burst : 1) : 0;
		if ((g->identity = strdup(c->identity)) == NULL || dup_strv(c->projects, &g->projects) != 0 ||
		    dup_strv(c->environments, &g->environments) != 0 || dup_strv(c->presets, &g->presets) != 0 ||
		    dup_strv(c->profiles, &g->profiles) != 0 || make_signature(g) != 0)
			goto nomem;
	}
	*out = a;
	return CS_OK;
nomem:
	cs_access_unref(a);
	return CS_E_NOMEM;
}

cs_access *cs_access_ref(cs_access *access)
{
	if (access != NULL)
		atomic_fetch_add(&access->refs, 1);
	return access;
}

void cs_access_unref(cs_access *access)
{
	if (access == NULL || atomic_fetch_sub(&access->refs, 1) != 1)
		return;
	for (size_t i = 0; i < access->ngrants; i++)
		free_grant(&access->grants[i]);
	free(access->grants);
	rate_table_unref(access->rates);
	free(access);
}

/* ---- matching ------------------------------------------------------------------ */

static bool identity_matches(const grant *g, const char *identity)
{
	if (!g->pattern)
		return strcmp(g->identity, identity) == 0;
	return strncmp(g->identity, identity, g->prefix_len) == 0 && identity[g->prefix_len] != '\0';
}

/* "*" covers every value (none included); absent_any: a list not given
 * covers every value too (a generator's presets). */
static bool in_scope(char *const *list, const char *value, bool absent_any)
{
	if (list == NULL)
		return absent_any;
	for (size_t i = 0; list[i] != NULL; i++)
		if (strcmp(list[i], "*") == 0 || (value != NULL && strcmp(list[i], value) == 0))
			return true;
	return false;
}

/* At most NAME_SHOWN bytes of a name for a message, cut at a UTF-8
 * character boundary (a project may be any text), marked with "...". */
#define NAME_SHOWN 64
static const char *shown(char buf[NAME_SHOWN + 4], const char *value)
{
	size_t n = strlen(value);
	if (n <= NAME_SHOWN)
		return value;
	n = NAME_SHOWN;
	while (n > 0 && ((unsigned char)value[n] & 0xc0) == 0x80)
		n--;
	memcpy(buf, value, n);
	memcpy(buf + n, "...", 4);
	return buf;
}

static int scope_why(char *why, size_t len, const char *what, const char *value)
{
	char v[NAME_SHOWN + 4];
	if (why != NULL && value == NULL)
		snprintf(why, len, "the request has no %s, which only \"*\" covers in its %ss", what, what);
	else if (why != NULL)
		snprintf(why, len, "%s %s is not among its %ss", what, shown(v, value), what);
	return 0;
}

/* sign and signature.read: whether g's profiles cover profile; a request
 * without a profile is covered by no grant, "*" included (every
 * signature has one), and an auditor without profiles reads none. */
static int profile_covered(const grant *g, const char *profile, char *why, size_t len)
{
	if (g->profiles == NULL) {
		if (why != NULL)
			snprintf(why, len, "role %s without profiles covers no signing profile",
				 cs_access_role_name(g->role));
		return 0;
	}
	if (profile == NULL) {
		if (why != NULL)
			snprintf(why, len, "the request names no signing profile");
		return 0;
	}
	if (!in_scope(g->profiles, profile, false))
		return scope_why(why, len, "profile", profile);
	return 1;
}

/* Whether grant g covers the action in scope (its rate aside); when not,
 * why into why[len] (when why is not NULL). */
static int covers(const grant *g, cs_access_action action, const cs_access_scope *s, char *why, size_t len)
{
	switch (action) {
	case CS_ACTION_GENERATE:
	case CS_ACTION_CERTIFY:
		if (g->role != CS_ROLE_GENERATOR)
			break;
		if (!in_scope(g->projects, s->project, false))
			return scope_why(why, len, "project", s->project);
		if (!in_scope(g->environments, s->environment, false))
			return scope_why(why, len, "environment", s->environment);
		if (!in_scope(g->presets, s->preset, true))
			return scope_why(why, len, "preset", s->preset);
		return 1;
	case CS_ACTION_CERT_READ:
		if (g->role != CS_ROLE_AUDITOR && g->role != CS_ROLE_GENERATOR)
			break;
		if (!in_scope(g->projects, s->project, false))
			return scope_why(why, len, "project", s->project);
		return 1;
	case CS_ACTION_AUDIT_READ:
		if (g->role != CS_ROLE_AUDITOR)
			break;
		if (!in_scope(g->projects, s->project, false))
			return scope_why(why, len, "project", s->project);
		return 1;
	case CS_ACTION_INVENTORY_READ:
		if (g->role != CS_ROLE_AUDITOR && g->role != CS_ROLE_GENERATOR)
			break;
		if (!in_scope(g->projects, s->project, false))
			return scope_why(why, len, "project", s->project);
		if (g->role == CS_ROLE_GENERATOR && !in_scope(g->environments, s->environment, false))
			return scope_why(why, len, "environment", s->environment);
		return 1;
	case CS_ACTION_PRESETS_READ:
	case CS_ACTION_POLICY_READ:
		return 1;
	case CS_ACTION_METRICS_READ:
	case CS_ACTION_READY_DETAIL:
	case CS_ACTION_RELOAD:
		if (g->role == CS_ROLE_OPERATOR)
			return 1;
		break;
	case CS_ACTION_SIGN:
		if (g->role != CS_ROLE_SIGNER)
			break;
		return profile_covered(g, s->profile, why, len);
	case CS_ACTION_SIGNATURE_READ:
		if (g->role != CS_ROLE_SIGNER && g->role != CS_ROLE_AUDITOR)
			break;
		return profile_covered(g, s->profile, why, len);
	}
	if (why != NULL)
		snprintf(why, len, "role %s does not allow %s", cs_access_role_name(g->role),
			 cs_access_action_name(action));
	return 0;
}

#define OR_NONE(v) ((v) != NULL ? (v) : "(none)")

/* The missing grant, named. */
static void missing_grant(cs_access_action action, const cs_access_scope *s, char *out, size_t len)
{
	const char *name = cs_access_action_name(action);
	char p[NAME_SHOWN + 4], e[NAME_SHOWN + 4], k[NAME_SHOWN + 4];
	switch (action) {
	case CS_ACTION_GENERATE:
	case CS_ACTION_CERTIFY:
		snprintf(out, len, "no generator grant for project %s, environment %s, preset %s",
			 shown(p, OR_NONE(s->project)), shown(e, OR_NONE(s->environment)),
			 shown(k, OR_NONE(s->preset)));
		break;
	case CS_ACTION_CERT_READ:
		snprintf(out, len, "no auditor or generator grant for project %s", shown(p, OR_NONE(s->project)));
		break;
	case CS_ACTION_INVENTORY_READ:
		snprintf(out, len, "no auditor grant for project %s, nor a generator grant for it in environment %s",
			 shown(p, OR_NONE(s->project)), shown(e, OR_NONE(s->environment)));
		break;
	case CS_ACTION_AUDIT_READ:
		if (s->project != NULL)
			snprintf(out, len, "no auditor grant for project %s", shown(p, s->project));
		else
			snprintf(out, len, "no auditor grant for every project (projects = [ \"*\" ])");
		break;
	case CS_ACTION_PRESETS_READ:
	case CS_ACTION_POLICY_READ:
		snprintf(out, len, "no grant (%s needs a grant of any role)", name);
		break;
	case CS_ACTION_SIGN:
		snprintf(out, len, "no signer grant for profile %s", shown(p, OR_NONE(s->profile)));
		break;
	case CS_ACTION_SIGNATURE_READ:
		snprintf(out, len, "no auditor or signer grant for profile %s", shown(p, OR_NONE(s->profile)));
		break;
	default:
		snprintf(out, len, "no operator grant (%s)", name);
		break;
	}
}

/* ---- rate buckets ---------------------------------------------------------------- */

static uint64_t fnv1a(const char *a, char sep, const char *b)
{
	uint64_t h = 0xcbf29ce484222325u;
	for (const char *p = a; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3u;
	h = (h ^ (unsigned char)sep) * 0x100000001b3u;
	for (const char *p = b; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3u;
	return h;
}

static bool key_is(const bucket *b, const char *sig, const char *identity)
{
	size_t n = strlen(sig);
	return strncmp(b->key, sig, n) == 0 && b->key[n] == KEY_SEP && strcmp(b->key + n + 1, identity) == 0;
}

static void refill(bucket *b, int64_t now_ms)
{
	if (now_ms > b->last_ms) {
		b->tokens += (double)(now_ms - b->last_ms) * b->rate / 1000.0;
		if (b->tokens > b->burst)
			b->tokens = b->burst;
		b->last_ms = now_ms;
	}
}

/* Drop buckets that have refilled: a full bucket is what a missing one
 * would be. Called with t->mu held. */
static void sweep(rate_table *t, int64_t now_ms)
{
	for (size_t i = 0; i < t->nslots; i++)
		for (bucket **pp = &t->slots[i]; *pp != NULL;) {
			bucket *b = *pp;
			refill(b, now_ms);
			if (b->tokens >= b->burst - (1.0 - ONE_TOKEN)) {
				*pp = b->next;
				free(b);
				t->count--;
			} else {
				pp = &b->next;
			}
		}
	t->sweep_at = t->count * 2 > SWEEP_MIN ? t->count * 2 : SWEEP_MIN;
}

static void grow(rate_table *t)
{
	size_t n = t->nslots * 2;
	bucket **slots = calloc(n, sizeof(bucket *));
	if (slots == NULL)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < t->nslots; i++)
		for (bucket *b = t->slots[i], *next; b != NULL; b = next) {
			next = b->next;
			b->next = slots[b->hash & (n - 1)];
			slots[b->hash & (n - 1)] = b;
		}
	free(t->slots);
	t->slots = slots;
	t->nslots = n;
}

/* Take one token from (identity, g)'s bucket: 0 when taken, else the
 * seconds until one could be (>= 1). A bucket that cannot be allocated
 * lets the request through: the limit protects capacity, it is not an
 * access decision. */
static int take_token(rate_table *t, const grant *g, const char *identity, int64_t now_ms)
{
	uint64_t h = fnv1a(g->signature, KEY_SEP, identity);
	int wait = 0;
	pthread_mutex_lock(&t->mu);
	bucket *b = t->slots[h & (t->nslots - 1)];
	while (b != NULL && !(b->hash == h && key_is(b, g->signature, identity)))
		b = b->next;
	if (b == NULL) {
		if (t->count >= t->sweep_at)
			sweep(t, now_ms);
		if (t->count >= t->nslots)
			grow(t);
		size_t sl = strlen(g->signature), il = strlen(identity);
		if ((b = malloc(sizeof(*b) + sl + 1 + il + 1)) != NULL) {
			memcpy(b->key, g->signature, sl);
			b->key[sl] = KEY_SEP;
			memcpy(b->key + sl + 1, identity, il + 1);
			b->hash = h;
			b->rate = g->rate;
			b->burst = g->burst;
			b->tokens = g->burst;
			b->last_ms = now_ms;
			b->next = t->slots[h & (t->nslots - 1)];
			t->slots[h & (t->nslots - 1)] = b;
			t->count++;
		}
	}
	if (b != NULL) {
		refill(b, now_ms);
		if (b->tokens >= ONE_TOKEN) {
			b->tokens -= 1.0;
		} else {
			double s = (ONE_TOKEN - b->tokens) / b->rate;
			/* rate >= CS_CONFIG_RATE_MIN: at most a day, clamped anyway */
			wait = s >= 86400.0 ? 86400 : (int)s;
			if (wait < s && wait < 86400)
				wait++;
			if (wait < 1)
				wait = 1;
		}
	}
	pthread_mutex_unlock(&t->mu);
	return wait;
}

/* ---- deciding ---------------------------------------------------------------------- */

static void allow(cs_access_decision *out, const grant *g)
{
	out->allowed = 1;
	snprintf(out->grant, sizeof(out->grant), "%s", g->name);
	out->role = cs_access_role_name(g->role);
	out->reason[0] = '\0';
	out->retry_after = 0;
}

/* Refused by the rate limit of limited (the first covering grant) when no
 * covering grant's bucket can pay: retry in wait seconds. */
static void rate_refused(cs_access_decision *out, const grant *limited, int wait)
{
	snprintf(out->grant, sizeof(out->grant), "%s", limited->name);
	out->role = cs_access_role_name(limited->role);
	out->retry_after = wait;
	snprintf(out->reason, sizeof(out->reason),
		 "rate limit of %s exceeded (%g requests per second, burst %d); retry in %d s", limited->name,
		 limited->rate, limited->burst, wait);
}

void cs_access_decide(cs_access *access, const char *identity, cs_access_action action,
		      const cs_access_scope *scope, int take_rate, int64_t now_ms, cs_access_decision *out)
{
	static const cs_access_scope none = {NULL, NULL, NULL, NULL};
	const cs_access_scope *s = scope != NULL ? scope : &none;
	memset(out, 0, sizeof(*out));
	out->role = needed_role(action);
	if ((unsigned)action >= CS_ACTION_COUNT) {
		snprintf(out->reason, sizeof(out->reason), "unknown action");
		return;
	}
	if (access == NULL || identity == NULL || identity[0] == '\0') {
		snprintf(out->reason, sizeof(out->reason), "no client identity");
		return;
	}
	const grant *limited = NULL;
	for (size_t i = 0; i < access->ngrants; i++) {
		const grant *g = &access->grants[i];
		if (!identity_matches(g, identity) || !covers(g, action, s, NULL, 0))
			continue;
		if (g->rate <= 0.0) {
			allow(out, g);
			return;
		}
		if (limited == NULL)
			limited = g;
	}
	if (limited == NULL) {
		missing_grant(action, s, out->reason, sizeof(out->reason));
		return;
	}
	if (!take_rate) {
		allow(out, limited);
		return;
	}
	int wait = 0;
	for (size_t i = (size_t)(limited - access->grants); i < access->ngrants; i++) {
		const grant *g = &access->grants[i];
		if (!identity_matches(g, identity) || !covers(g, action, s, NULL, 0))
			continue;
		int w = take_token(access->rates, g, identity, now_ms);
		if (w == 0) {
			allow(out, g);
			return;
		}
		if (wait == 0 || w < wait)
			wait = w;
	}
	rate_refused(out, limited, wait);
}

static bool inventory_grant(const grant *g, const char *identity, const char *project)
{
	return identity_matches(g, identity) && (g->role == CS_ROLE_AUDITOR || g->role == CS_ROLE_GENERATOR) &&
	       (project == NULL || in_scope(g->projects, project, false)) &&
	       (g->role == CS_ROLE_AUDITOR || (g->environments != NULL && g->environments[0] != NULL));
}

void cs_access_inventory_scope(cs_access *access, const char *identity, const char *project, int take_rate,
			       int64_t now_ms, cs_access_decision *out)
{
	memset(out, 0, sizeof(*out));
	out->role = needed_role(CS_ACTION_INVENTORY_READ);
	if (access == NULL || identity == NULL || identity[0] == '\0') {
		snprintf(out->reason, sizeof(out->reason), "no client identity");
		return;
	}
	const grant *limited = NULL;
	int wait = 0;
	for (size_t i = 0; i < access->ngrants; i++) {
		const grant *g = &access->grants[i];
		if (!inventory_grant(g, identity, project))
			continue;
		if (g->rate <= 0.0 || !take_rate) {
			allow(out, g);
			return;
		}
		if (limited == NULL)
			limited = g;
		int w = take_token(access->rates, g, identity, now_ms);
		if (w == 0) {
			allow(out, g);
			return;
		}
		if (wait == 0 || w < wait)
			wait = w;
	}
	if (limited == NULL) {
		if (project != NULL)
			snprintf(out->reason, sizeof(out->reason),
				 "no auditor grant for project %s, nor a generator grant for it in any environment",
				 project);
		else
			snprintf(out->reason, sizeof(out->reason), "no auditor or generator grant (inventory.read needs one)");
		return;
	}
	rate_refused(out, limited, wait);
}

size_t cs_access_explain(const cs_access *access, const char *identity, cs_access_action action,
			 const cs_access_scope *scope,
			 void (*fn)(void *arg, const char *grant, const char *role, int covers,
				    const char *why),
			 void *arg)
{
	static const cs_access_scope none = {NULL, NULL, NULL, NULL};
	size_t n = 0;
	if (access == NULL || identity == NULL || (unsigned)action >= CS_ACTION_COUNT)
		return 0;
	for (size_t i = 0; i < access->ngrants; i++) {
		const grant *g = &access->grants[i];
		char why[256] = "";
		if (!identity_matches(g, identity))
			continue;
		int c = covers(g, action, scope != NULL ? scope : &none, why, sizeof(why));
		fn(arg, g->name, cs_access_role_name(g->role), c, c ? "" : why);
		n++;
	}
	return n;
}

/* Whether a client can match both grants; *identity: the narrower. */
static bool overlap(const grant *a, const grant *b, const char **identity)
{
	if (!a->pattern && !b->pattern) {
		*identity = a->identity;
		return strcmp(a->identity, b->identity) == 0;
	}
	if (!a->pattern || !b->pattern) {
		const grant *exact = a->pattern ? b : a, *pat = a->pattern ? a : b;
		*identity = exact->identity;
		return identity_matches(pat, exact->identity);
	}
	/* two patterns: one's prefix starts the other's */
	const grant *wide = a->prefix_len <= b->prefix_len ? a : b, *narrow = wide == a ? b : a;
	*identity = narrow->identity;
	return strncmp(wide->identity, narrow->identity, wide->prefix_len) == 0;
}

size_t cs_access_each_conflict(const cs_access *access,
			       void (*fn)(void *arg, const char *identity, const char *generator_grant,
					  const char *auditor_grant),
			       void *arg)
{
	size_t n = 0;
	for (size_t i = 0; access != NULL && i < access->ngrants; i++) {
		const grant *g = &access->grants[i];
		if (g->role != CS_ROLE_GENERATOR)
			continue;
		for (size_t j = 0; j < access->ngrants; j++) {
			const grant *a = &access->grants[j];
			const char *identity = NULL;
			if (a->role != CS_ROLE_AUDITOR || !overlap(g, a, &identity))
				continue;
			if (fn != NULL)
				fn(arg, identity, g->name, a->name);
			n++;
		}
	}
	return n;
}

cs_err cs_access_check_presets(const cs_config *cfg, const cs_preset_set *presets, cs_config_diag *diag)
{
	cs_err r = CS_OK;
	for (size_t i = 0; i < cfg->access.ngrants; i++) {
		char *const *list = cfg->access.grants[i].presets;
		for (size_t k = 0; list != NULL && list[k] != NULL; k++) {
			if (strcmp(list[k], "*") == 0 || cs_preset_find(presets, list[k]) != NULL)
				continue;
			char path[64], where[1024], msg[1400];
			snprintf(path, sizeof(path), "access.grants.[%zu].presets", i);
			cs_config_where(cfg, path, where, sizeof(where));
			snprintf(msg, sizeof(msg), "%s: setting '%s': unknown preset '%.128s'", where, path, list[k]);
			cs_config_diag_add(diag, msg);
			r = CS_E_CONFIG;
		}
	}
	return r;
}

/* ---- the rules in force ----------------------------------------------------------- */

cs_err cs_access_slot_new(cs_access *initial, cs_access_slot **out)
{
	*out = NULL;
	cs_access_slot *s = calloc(1, sizeof(*s));
	if (s == NULL || pthread_mutex_init(&s->mu, NULL) != 0) {
		free(s);
		return CS_E_NOMEM;
	}
	s->current = initial;
	*out = s;
	return CS_OK;
}

void cs_access_slot_free(cs_access_slot *slot)
{
	if (slot == NULL)
		return;
	cs_access_unref(slot->current);
	pthread_mutex_destroy(&slot->mu);
	free(slot);
}

cs_access *cs_access_acquire(cs_access_slot *slot)
{
	pthread_mutex_lock(&slot->mu);
	cs_access *a = cs_access_ref(slot->current);
	pthread_mutex_unlock(&slot->mu);
	return a;
}

/* Whether any of a's grants has this signature (the part of a key before
 * KEY_SEP). */
static bool has_signature(const cs_access *a, const char *key)
{
	size_t n = (size_t)(strchr(key, KEY_SEP) - key);
	for (size_t i = 0; i < a->ngrants; i++)
		if (strlen(a->grants[i].signature) == n && strncmp(a->grants[i].signature, key, n) == 0)
			return true;
	return false;
}

void cs_access_swap(cs_access_slot *slot, cs_access *next)
{
	pthread_mutex_lock(&slot->mu);
	cs_access *old = slot->current;
	if (old != NULL && next != NULL && old->rates != next->rates) {
		/* next adopts the buckets; those of grants it lacks go */
		rate_table *t = old->rates;
		pthread_mutex_lock(&t->mu);
		for (size_t i = 0; i < t->nslots; i++)
			for (bucket **pp = &t->slots[i]; *pp != NULL;) {
				bucket *b = *pp;
				if (has_signature(next, b->key)) {
					pp = &b->next;
				} else {
					*pp = b->next;
					free(b);
					t->count--;
				}
			}
		pthread_mutex_unlock(&t->mu);
		atomic_fetch_add(&t->refs, 1);
		rate_table_unref(next->rates);
		next->rates = t;
	}
	slot->current = next;
	pthread_mutex_unlock(&slot->mu);
	cs_access_unref(old);
}
