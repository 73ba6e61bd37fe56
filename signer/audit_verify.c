/* audit_verify: see audit_verify.h. */
#include "audit_verify.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certsign.h"
#include "ec_util.h"
#include "jose.h"

typedef struct {
	int64_t first, last;
	uint8_t head[32];
	char kind[16];
} checkpoint;

typedef struct {
	const json_t *jwks;
	checkpoint *list;
	size_t count, cap;
	cs_audit_report *rep;
	cs_err error; /* the verification itself failed (not the log) */
} cp_ctx;

static int fail(cs_audit_report *rep, int64_t seq, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(cs_audit_report *rep, int64_t seq, const char *fmt, ...)
{
	if (!rep->intact)
		return 1; /* keep the first */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rep->reason, sizeof(rep->reason), fmt, ap);
	va_end(ap);
	rep->intact = 0;
	rep->bad_seq = seq;
	return 1;
}

static EVP_PKEY *key_for(const json_t *jwks, const char *kid)
{
	size_t i;
	json_t *k;
	json_array_foreach(json_object_get(jwks, "keys"), i, k) {
		const char *kk = json_string_value(json_object_get(k, "kid"));
		if (kk == NULL || kid == NULL || strcmp(kk, kid) != 0)
			continue;
		uint8_t *x = NULL, *y = NULL, point[65];
		size_t nx = 0, ny = 0;
		EVP_PKEY *pkey = NULL;
		char thumb[44];
		if (cs_b64url_decode(json_string_value(json_object_get(k, "x")) ?: "", &x, &nx) == CS_OK &&
		    cs_b64url_decode(json_string_value(json_object_get(k, "y")) ?: "", &y, &ny) == CS_OK &&
		    nx == 32 && ny == 32) {
			point[0] = 0x04;
			memcpy(point + 1, x, 32);
			memcpy(point + 33, y, 32);
			if (cs_ec_point_to_pkey(point, sizeof(point), &pkey) == CS_OK &&
			    (cs_jwk_thumbprint(pkey, thumb) != CS_OK || strcmp(thumb, kid) != 0)) {
				EVP_PKEY_free(pkey); /* the kid must be the key's thumbprint */
				pkey = NULL;
			}
		}
		free(x);
		free(y);
		return pkey;
	}
	return NULL;
}

/* Verify one checkpoint's signature and that its payload is its row. */
static int check_checkpoint(void *arg, int64_t first, int64_t last, const uint8_t head[32],
			    const char *ts, const char *node, const char *kind, const char *jws)
{
	cp_ctx *c = arg;
	json_t *peek = NULL, *header = NULL, *claims = NULL;
	EVP_PKEY *pub = NULL;
	c->rep->checkpoints++;
	if (cs_jws_peek_header(jws, &peek) != CS_OK ||
	    (pub = key_for(c->jwks, json_string_value(json_object_get(peek, "kid")))) == NULL) {
		fail(c->rep, first, "checkpoint %lld..%lld: bad signature (no key in the JWKS for it)",
		     (long long)first, (long long)last);
	} else if (cs_jws_es256_verify(jws, pub, &header, &claims) != CS_OK ||
		   strcmp(json_string_value(json_object_get(header, "typ")) ?: "", CS_CHECKPOINT_TYP) != 0) {
		fail(c->rep, first, "checkpoint %lld..%lld: bad signature", (long long)first, (long long)last);
	} else {
		char *h = cs_b64url_encode(head, 32);
		int same = h != NULL &&
			   json_integer_value(json_object_get(claims, "first_seq")) == first &&
			   json_integer_value(json_object_get(claims, "last_seq")) == last &&
			   strcmp(json_string_value(json_object_get(claims, "head_hash")) ?: "", h) == 0 &&
			   strcmp(json_string_value(json_object_get(claims, "kind")) ?: "", kind) == 0 &&
			   strcmp(json_string_value(json_object_get(claims, "node")) ?: "", node) == 0 &&
			   strcmp(json_string_value(json_object_get(claims, "time")) ?: "", ts) == 0;
		free(h);
		if (!same)
			fail(c->rep, first, "checkpoint %lld..%lld: stored fields differ from its signed payload",
			     (long long)first, (long long)last);
	}
	json_decref(peek);
	json_decref(header);
	json_decref(claims);
	EVP_PKEY_free(pub);
	if (c->count == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		checkpoint *grown = realloc(c->list, c->cap * sizeof(*grown));
		if (grown == NULL) {
			c->error = CS_E_NOMEM; /* never verify against part of the checkpoints */
			return 1;
		}
		c->list = grown;
	}
	checkpoint *cp = &c->list[c->count++];
	cp->first = first;
	cp->last = last;
	memcpy(cp->head, head, 32);
	snprintf(cp->kind, sizeof(cp->kind), "%s", kind);
	return 0;
}

typedef struct {
	cs_audit_report *rep;
	cp_ctx *cps;
	size_t next_cp; /* cps->list is sorted by last_seq */
	EVP_MD_CTX *md;
	int64_t expected;
	uint8_t running[32];
	int have_running;
	char prev_ts[64]; /* "" before the first entry walked */
	cs_err error; /* the verification itself failed (not the log) */
} walk_ctx;

static int walk(void *arg, const cs_audit_entry *e, const uint8_t prev[32], const uint8_t stored[32])
{
	walk_ctx *w = arg;
	uint8_t hash[32];
	if (e->seq != w->expected)
		return fail(w->rep, w->expected, "entry %lld is missing", (long long)w->expected);
	if (!w->have_running) { /* --from-seq: start from the entry's own link */
		memcpy(w->running, prev, 32);
		w->have_running = 1;
	}
	if (memcmp(prev, w->running, 32) != 0)
		return fail(w->rep, e->seq,
			    "entry %lld does not chain to entry %lld (reordered, inserted or replaced)",
			    (long long)e->seq, (long long)e->seq - 1);
	if ((w->error = cs_audit_hash(w->md, prev, e, hash)) != CS_OK)
		return 1;
	if (memcmp(hash, stored, 32) != 0)
		return fail(w->rep, e->seq, "entry %lld was modified (its hash does not match its content)",
			    (long long)e->seq);
	memcpy(w->running, hash, 32);
	while (w->next_cp < w->cps->count && w->cps->list[w->next_cp].last <= e->seq) {
		const checkpoint *cp = &w->cps->list[w->next_cp++];
		if (cp->last == e->seq && strcmp(cp->kind, "purge") != 0 && memcmp(cp->head, hash, 32) != 0)
			return fail(w->rep, cp->first,
				    "entries %lld..%lld do not match the signed checkpoint (modified and re-chained)",
				    (long long)cp->first, (long long)cp->last);
	}
	if (w->prev_ts[0] != '\0' && strcmp(e->ts, w->prev_ts) < 0) {
		if (e->seq >= w->rep->ts_ordered_from)
			return fail(w->rep, e->seq, "entry %lld has a time (%.40s) earlier than entry %lld (%s)",
				    (long long)e->seq, e->ts, (long long)e->seq - 1, w->prev_ts);
		if (w->rep->ts_warnings++ == 0)
			w->rep->ts_warning_first_seq = e->seq;
	}
	snprintf(w->prev_ts, sizeof(w->prev_ts), "%s", e->ts);
	if (w->rep->entries == 0)
		w->rep->first_seq = e->seq;
	w->rep->entries++;
	w->rep->last_seq = e->seq;
	w->expected = e->seq + 1;
	return 0;
}

static int by_last(const void *a, const void *b)
{
	int64_t x = ((const checkpoint *)a)->last, y = ((const checkpoint *)b)->last;
	return x < y ? -1 : x > y;
}

cs_err cs_audit_verify(cs_store *store, const json_t *jwks, int64_t from_seq, cs_audit_report *rep)
{
	memset(rep, 0, sizeof(*rep));
	rep->intact = 1;
	cp_ctx cps = {.jwks = jwks, .rep = rep};
	walk_ctx w = {.rep = rep, .cps = &cps};
	cs_err r = cs_store_audit_ts_ordered_from(store, &rep->ts_ordered_from);
	if (r == CS_OK)
		r = cs_store_checkpoints_each(store, check_checkpoint, &cps);
	if (r == CS_OK)
		r = cps.error;
	if (r != CS_OK)
		goto out;
	/* the base: the newest purge checkpoint, or the beginning */
	int64_t base = 0;
	memset(w.running, 0, sizeof(w.running));
	for (size_t i = 0; i < cps.count; i++)
		if (strcmp(cps.list[i].kind, "purge") == 0 && cps.list[i].last > base) {
			base = cps.list[i].last;
			memcpy(w.running, cps.list[i].head, 32);
		}
	if (cps.count > 1) /* no list at all when there are no checkpoints */
		qsort(cps.list, cps.count, sizeof(checkpoint), by_last);
	w.have_running = 1;
	w.expected = base + 1;
	if (from_seq > base + 1) {
		w.expected = from_seq;
		w.have_running = 0;
	}
	if ((w.md = EVP_MD_CTX_new()) == NULL) {
		r = CS_E_NOMEM;
		goto out;
	}
	r = cs_store_audit_each(store, w.expected, 0, walk, &w);
	if (r == CS_OK)
		r = w.error;
	if (r != CS_OK)
		goto out;
	/* nothing may be missing after the last entry that a checkpoint covers */
	int64_t last = rep->entries > 0 ? rep->last_seq : w.expected - 1;
	for (size_t i = 0; rep->intact && i < cps.count; i++)
		if (cps.list[i].last > last)
			fail(rep, last + 1, "truncated: checkpoint %lld..%lld covers entries the log no longer has",
			     (long long)cps.list[i].first, (long long)cps.list[i].last);
out:
	EVP_MD_CTX_free(w.md);
	free(cps.list);
	return r;
}
