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
	const checkpoint *x = a, *y = b;
	if (x->last != y->last)
		return x->last < y->last ? -1 : 1;
	return x->first < y->first ? -1 : x->first > y->first;
}

/* The base (the newest purge checkpoint, or the beginning) and where the
 * walk begins: at the base, or at start (> base + 1: partial). */
static void walk_begin(cp_ctx *cps, walk_ctx *w, int64_t start)
{
	int64_t base = 0;
	memset(w->running, 0, sizeof(w->running));
	for (size_t i = 0; i < cps->count; i++)
		if (strcmp(cps->list[i].kind, "purge") == 0 && cps->list[i].last > base) {
			base = cps->list[i].last;
			memcpy(w->running, cps->list[i].head, 32);
		}
	if (cps->count > 1) /* no list at all when there are no checkpoints */
		qsort(cps->list, cps->count, sizeof(checkpoint), by_last);
	w->rep->base_seq = base;
	w->have_running = 1;
	w->expected = base + 1;
	if (start > base + 1) {
		w->expected = start;
		w->have_running = 0;
		w->rep->partial = 1;
	}
}

/* After the walk: nothing may be missing after the last entry that a
 * checkpoint covers; and how far the walked entries are signed. */
static void walk_end(cp_ctx *cps, walk_ctx *w)
{
	cs_audit_report *rep = w->rep;
	int64_t last = rep->entries > 0 ? rep->last_seq : w->expected - 1;
	for (size_t i = 0; rep->intact && i < cps->count; i++)
		if (cps->list[i].last > last)
			fail(rep, last + 1, "truncated: checkpoint %lld..%lld covers entries the log no longer has",
			     (long long)cps->list[i].first, (long long)cps->list[i].last);
	for (size_t i = 0; rep->entries > 0 && i < cps->count; i++)
		if (strcmp(cps->list[i].kind, "purge") != 0 && cps->list[i].last >= rep->first_seq &&
		    cps->list[i].last <= rep->last_seq && cps->list[i].last > rep->signed_through)
			rep->signed_through = cps->list[i].last;
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
	walk_begin(&cps, &w, from_seq);
	if ((w.md = EVP_MD_CTX_new()) == NULL) {
		r = CS_E_NOMEM;
		goto out;
	}
	r = cs_store_audit_each(store, w.expected, 0, walk, &w);
	if (r == CS_OK)
		r = w.error;
	if (r == CS_OK)
		walk_end(&cps, &w);
out:
	EVP_MD_CTX_free(w.md);
	free(cps.list);
	return r;
}

/* ---- an export file ------------------------------------------------------------ */

/* A member that must be a string (or, when nullable, null). */
static int member_text(const json_t *o, const char *name, int nullable, const char **out)
{
	const json_t *v = json_object_get(o, name);
	*out = json_string_value(v);
	return *out != NULL || (nullable && json_is_null(v));
}

static int member_seq(const json_t *o, const char *name, int64_t *out)
{
	const json_t *v = json_object_get(o, name);
	*out = json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
	return *out >= 1;
}

static int member_hash(const json_t *o, const char *name, uint8_t out[32])
{
	uint8_t *raw = NULL;
	size_t n = 0;
	const char *text = json_string_value(json_object_get(o, name));
	int ok = text != NULL && cs_b64url_decode(text, &raw, &n) == CS_OK && n == 32;
	if (ok)
		memcpy(out, raw, 32);
	free(raw);
	return ok;
}

typedef struct {
	FILE *f;
	char *line;
	size_t cap;
	long number; /* of the line read last */
} lines;

/* The next non-empty line as a JSON object with a string "type", in *obj;
 * 0 at the end, -1 for a line that is not such an object (reported). */
static int next_object(lines *l, cs_audit_report *rep, json_t **obj, const char **type)
{
	ssize_t n;
	while ((n = getline(&l->line, &l->cap, l->f)) >= 0) {
		l->number++;
		if (strspn(l->line, " \t\r\n") == (size_t)n)
			continue;
		json_error_t jerr;
		*obj = json_loads(l->line, JSON_REJECT_DUPLICATES, &jerr);
		*type = json_string_value(json_object_get(*obj, "type"));
		if (*type != NULL)
			return 1;
		json_decref(*obj);
		*obj = NULL;
		fail(rep, 0, "line %ld is not an export object (JSON with a \"type\")", l->number);
		return -1;
	}
	return 0;
}

/* Pass 1: the checkpoints, verified, and the first entry's seq. */
static cs_err read_checkpoints(lines *l, cp_ctx *cps, int64_t *first_entry)
{
	json_t *o = NULL;
	const char *type = NULL;
	int got;
	*first_entry = 0;
	while ((got = next_object(l, cps->rep, &o, &type)) > 0) {
		if (strcmp(type, "entry") == 0) {
			if (*first_entry == 0 && !member_seq(o, "seq", first_entry))
				fail(cps->rep, 0, "line %ld: an entry without a valid seq", l->number);
		} else if (strcmp(type, "checkpoint") == 0) {
			int64_t first = 0, last = 0;
			uint8_t head[32];
			const char *ts = NULL, *node = NULL, *kind = NULL, *jws = NULL;
			if (!member_seq(o, "first_seq", &first) || !member_seq(o, "last_seq", &last) ||
			    !member_hash(o, "head_hash", head) || !member_text(o, "time", 0, &ts) ||
			    !member_text(o, "node", 0, &node) || !member_text(o, "kind", 0, &kind) ||
			    !member_text(o, "jws", 0, &jws))
				fail(cps->rep, 0, "line %ld: a checkpoint without its members", l->number);
			else
				(void)check_checkpoint(cps, first, last, head, ts, node, kind, jws);
		} else {
			fail(cps->rep, 0, "line %ld: unknown type \"%.32s\"", l->number, type);
		}
		json_decref(o);
		if (!cps->rep->intact || cps->error != CS_OK)
			return cps->error;
	}
	return CS_OK;
}

/* Checkpoints repeated (pages put together) count once; two different
 * checkpoints over the same range are a problem. The list is sorted. */
static void dedupe(cp_ctx *cps)
{
	size_t kept = 0;
	for (size_t i = 0; i < cps->count; i++) {
		checkpoint *c = &cps->list[i];
		if (kept > 0) {
			checkpoint *k = &cps->list[kept - 1];
			if (k->first == c->first && k->last == c->last) {
				if (memcmp(k->head, c->head, 32) != 0 || strcmp(k->kind, c->kind) != 0)
					fail(cps->rep, c->first, "two different checkpoints over %lld..%lld",
					     (long long)c->first, (long long)c->last);
				continue;
			}
		}
		cps->list[kept++] = *c;
	}
	cps->rep->checkpoints = (int64_t)kept;
	cps->count = kept;
}

/* Pass 2: the entries, walked. */
static cs_err walk_entries(lines *l, walk_ctx *w)
{
	json_t *o = NULL;
	const char *type = NULL;
	int got;
	static const char *const names[] = {"ts", "node", "actor", "actor_cert_sha256", "role", "action", "object",
					    "project", "environment", "outcome", "error_code", "request_id"};
	static const int nullable[] = {0, 0, 0, 1, 0, 0, 1, 1, 1, 0, 1, 1};
	while (w->rep->intact && w->error == CS_OK && (got = next_object(l, w->rep, &o, &type)) > 0) {
		if (strcmp(type, "entry") != 0) {
			json_decref(o);
			continue;
		}
		const char *f[12] = {NULL};
		uint8_t prev[32], hash[32];
		cs_audit_entry e = {0};
		int ok = member_seq(o, "seq", &e.seq) && member_hash(o, "prev_hash", prev) &&
			 member_hash(o, "entry_hash", hash);
		for (size_t i = 0; ok && i < 12; i++)
			ok = member_text(o, names[i], nullable[i], &f[i]);
		if (!ok) {
			fail(w->rep, e.seq, "line %ld: an entry without its 13 fields and two hashes", l->number);
		} else {
			e.ts = f[0], e.node = f[1], e.actor = f[2], e.actor_cert_sha256 = f[3], e.role = f[4];
			e.action = f[5], e.object = f[6], e.project = f[7], e.environment = f[8];
			e.outcome = f[9], e.error_code = f[10], e.request_id = f[11];
			(void)walk(w, &e, prev, hash);
		}
		json_decref(o);
	}
	return w->error;
}

cs_err cs_audit_verify_export(const char *path, const json_t *jwks, cs_audit_report *rep)
{
	memset(rep, 0, sizeof(*rep));
	rep->intact = 1;
	rep->ts_ordered_from = INT64_MAX; /* not in an export: decreases are warnings */
	cp_ctx cps = {.jwks = jwks, .rep = rep};
	walk_ctx w = {.rep = rep, .cps = &cps};
	lines l = {.f = fopen(path, "r")};
	int64_t first_entry = 0;
	cs_err r = l.f != NULL ? CS_OK : CS_E_IO;
	if (r == CS_OK)
		r = read_checkpoints(&l, &cps, &first_entry);
	if (r == CS_OK && ferror(l.f))
		r = CS_E_IO;
	if (r != CS_OK || !rep->intact)
		goto out;
	walk_begin(&cps, &w, first_entry);
	dedupe(&cps);
	if (first_entry != 0 && first_entry <= rep->base_seq) {
		fail(rep, first_entry, "entry %lld precedes the chain's base (purge checkpoint ..%lld)",
		     (long long)first_entry, (long long)rep->base_seq);
		goto out;
	}
	if ((w.md = EVP_MD_CTX_new()) == NULL) {
		r = CS_E_NOMEM;
		goto out;
	}
	rewind(l.f);
	l.number = 0;
	r = walk_entries(&l, &w);
	if (r == CS_OK && ferror(l.f))
		r = CS_E_IO;
	if (r == CS_OK && rep->intact)
		walk_end(&cps, &w);
out:
	if (l.f != NULL)
		fclose(l.f);
	free(l.line);
	EVP_MD_CTX_free(w.md);
	free(cps.list);
	return r;
}

/* ---- the time reference of retention ------------------------------------------- */

typedef struct {
	int64_t first, last;
	uint8_t head[32];
	char *ts, *node, *kind, *jws;
	cs_err error;
} newest_cp;

static void newest_clear(newest_cp *n)
{
	free(n->ts);
	free(n->node);
	free(n->kind);
	free(n->jws);
	n->ts = n->node = n->kind = n->jws = NULL;
}

static int keep_newest(void *arg, int64_t first, int64_t last, const uint8_t head[32], const char *ts,
		       const char *node, const char *kind, const char *jws)
{
	newest_cp *n = arg;
	if (strcmp(kind, "purge") == 0 || (n->jws != NULL && last <= n->last))
		return 0;
	newest_clear(n);
	n->first = first;
	n->last = last;
	memcpy(n->head, head, 32);
	n->ts = strdup(ts);
	n->node = strdup(node);
	n->kind = strdup(kind);
	n->jws = strdup(jws);
	if (n->ts == NULL || n->node == NULL || n->kind == NULL || n->jws == NULL) {
		n->error = CS_E_NOMEM;
		return 1;
	}
	return 0;
}

cs_err cs_audit_time_reference(cs_store *store, const json_t *jwks, char time[32], int64_t *last_seq,
			       char why[256])
{
	newest_cp n = {0};
	cs_audit_report rep = {.intact = 1};
	cp_ctx cps = {.jwks = jwks, .rep = &rep};
	why[0] = '\0';
	cs_err r = cs_store_checkpoints_each(store, keep_newest, &n);
	if (r == CS_OK)
		r = n.error;
	if (r == CS_OK && n.jws == NULL)
		r = CS_E_NOT_FOUND;
	if (r == CS_OK)
		(void)check_checkpoint(&cps, n.first, n.last, n.head, n.ts, n.node, n.kind, n.jws);
	if (r == CS_OK && cps.error != CS_OK)
		r = cps.error;
	if (r == CS_OK && (!rep.intact || strlen(n.ts) >= 32)) {
		snprintf(why, 256, "%s", rep.intact ? "its time is too long" : rep.reason);
		r = CS_E_SIGNATURE_INVALID;
	}
	if (r == CS_OK) {
		snprintf(time, 32, "%s", n.ts); /* checked equal to the signed time */
		*last_seq = n.last;
	}
	newest_clear(&n);
	free(cps.list);
	return r;
}
