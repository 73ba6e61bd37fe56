/* refusal_summary: see refusal_summary.h. */
#include "refusal_summary.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_chain.h"

#define NAMES_KEPT 3
#define NAME_MAX_BYTES 64

typedef struct {
	char source[64];
	char reason[96];
	int64_t count;
	char first_ts[32], last_ts[32];
	char names[NAMES_KEPT][NAME_MAX_BYTES + 1];
	int nnames;
	int64_t more_names; /* refusals that named none of those kept */
} slot;

struct cs_refusal_summary {
	pthread_mutex_t lock;
	slot slots[CS_REFUSAL_KEYS + 1]; /* the last one counts the overflow */
	int used;
	char seen[CS_REFUSAL_KEYS][65 + 96]; /* cert_sha256 "|" reason audited this interval */
	int nseen;
};

cs_err cs_refusal_summary_new(cs_refusal_summary **out)
{
	cs_refusal_summary *s = calloc(1, sizeof(*s));
	*out = NULL;
	if (s == NULL)
		return CS_E_NOMEM;
	pthread_mutex_init(&s->lock, NULL);
	*out = s;
	return CS_OK;
}

void cs_refusal_summary_free(cs_refusal_summary *s)
{
	if (s == NULL)
		return;
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static void copy_text(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src != NULL ? src : "");
	cs_audit_sanitize(dst);
}

static void note_name(slot *k, const char *name)
{
	char clean[NAME_MAX_BYTES + 1];
	if (name == NULL || name[0] == '\0')
		return;
	copy_text(clean, sizeof(clean), name);
	for (int i = 0; i < k->nnames; i++)
		if (strcmp(k->names[i], clean) == 0)
			return;
	if (k->nnames < NAMES_KEPT)
		memcpy(k->names[k->nnames++], clean, sizeof(clean));
	else
		k->more_names++;
}

/* The slot of (source, reason): found, new, or the overflow slot. Lock held. */
static slot *slot_for(cs_refusal_summary *s, const char *source, const char *reason, int *fresh)
{
	*fresh = 0;
	for (int i = 0; i < s->used; i++)
		if (strcmp(s->slots[i].source, source) == 0 && strcmp(s->slots[i].reason, reason) == 0)
			return &s->slots[i];
	slot *k = s->used < CS_REFUSAL_KEYS ? &s->slots[s->used++] : &s->slots[CS_REFUSAL_KEYS];
	if (k->count == 0) {
		*fresh = 1;
		memset(k, 0, sizeof(*k));
		copy_text(k->source, sizeof(k->source), k == &s->slots[CS_REFUSAL_KEYS] ? "*" : source);
		copy_text(k->reason, sizeof(k->reason),
			  k == &s->slots[CS_REFUSAL_KEYS] ? "table full" : reason);
	}
	return k;
}

int cs_refusal_summary_add(cs_refusal_summary *s, const char *source, const char *reason,
			   const char *claimed_name)
{
	char now[32];
	cs_audit_now(now);
	pthread_mutex_lock(&s->lock);
	int fresh;
	slot *k = slot_for(s, source, reason, &fresh);
	if (k->count++ == 0)
		memcpy(k->first_ts, now, sizeof(now));
	memcpy(k->last_ts, now, sizeof(now));
	note_name(k, claimed_name);
	pthread_mutex_unlock(&s->lock);
	return fresh;
}

int cs_refusal_summary_first(cs_refusal_summary *s, const char *cert_sha256, const char *reason)
{
	char key[sizeof(s->seen[0])];
	snprintf(key, sizeof(key), "%.64s|%.95s", cert_sha256, reason);
	int first = 0;
	pthread_mutex_lock(&s->lock);
	int i = 0;
	while (i < s->nseen && strcmp(s->seen[i], key) != 0)
		i++;
	if (i == s->nseen && s->nseen < CS_REFUSAL_KEYS) {
		memcpy(s->seen[s->nseen++], key, sizeof(key));
		first = 1;
	}
	pthread_mutex_unlock(&s->lock);
	return first;
}

/* Put a slot that could not be flushed back (lock held). */
static void merge_back(cs_refusal_summary *s, const slot *old)
{
	int fresh;
	slot *k = slot_for(s, old->source, old->reason, &fresh);
	if (k->count == 0 || strcmp(old->first_ts, k->first_ts) < 0)
		memcpy(k->first_ts, old->first_ts, sizeof(k->first_ts));
	if (k->count == 0 || strcmp(old->last_ts, k->last_ts) > 0)
		memcpy(k->last_ts, old->last_ts, sizeof(k->last_ts));
	k->count += old->count;
	for (int i = 0; i < old->nnames; i++)
		note_name(k, old->names[i]);
	k->more_names += old->more_names;
}

static void describe(const slot *k, char *out, size_t cap)
{
	int n = snprintf(out, cap, "src=%s count=%lld first=%s last=%s claimed=", k->source,
			 (long long)k->count, k->first_ts, k->last_ts);
	for (int i = 0; i < k->nnames && n > 0 && (size_t)n < cap; i++)
		n += snprintf(out + n, cap - (size_t)n, "%s%s", i ? "," : "", k->names[i]);
	if (k->nnames == 0 && n > 0 && (size_t)n < cap)
		n += snprintf(out + n, cap - (size_t)n, "-");
	if (k->more_names > 0 && n > 0 && (size_t)n < cap)
		snprintf(out + n, cap - (size_t)n, " (+%lld naming others)", (long long)k->more_names);
}

int64_t cs_refusal_summary_flush(cs_refusal_summary *s, cs_refusal_flush_fn fn, void *arg)
{
	/* take the table, then write without the lock: audit writes are slow */
	slot *taken = malloc(sizeof(s->slots));
	if (taken == NULL)
		return 0; /* kept for the next flush */
	pthread_mutex_lock(&s->lock);
	int n = s->used;
	memcpy(taken, s->slots, sizeof(s->slots));
	memset(s->slots, 0, sizeof(s->slots));
	s->used = 0;
	s->nseen = 0;
	pthread_mutex_unlock(&s->lock);
	int64_t flushed = 0;
	for (int i = 0; i <= CS_REFUSAL_KEYS; i++) {
		const slot *k = &taken[i];
		if ((i >= n && i != CS_REFUSAL_KEYS) || k->count == 0)
			continue;
		char object[512];
		describe(k, object, sizeof(object));
		cs_refusal_row row = {.source = k->source, .reason = k->reason, .count = k->count,
				      .first_ts = k->first_ts, .last_ts = k->last_ts, .object = object};
		if (fn(arg, &row) == 0) {
			flushed += k->count;
		} else {
			pthread_mutex_lock(&s->lock);
			merge_back(s, k);
			pthread_mutex_unlock(&s->lock);
		}
	}
	free(taken);
	return flushed;
}
