/* audit_verify: see audit_verify.h. */
#include "audit_verify.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
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
		return cs_jwk_to_pkey(k, kid); /* the kid must be the key's thumbprint */
	}
	return NULL;
}

/* Whether the JWKS marks the key kid names compromised. */
static int key_compromised(const json_t *jwks, const char *kid)
{
	size_t i;
	json_t *k;
	json_array_foreach(json_object_get(jwks, "keys"), i, k) {
		const char *kk = json_string_value(json_object_get(k, "kid"));
		if (kk != NULL && kid != NULL && strcmp(kk, kid) == 0)
			return strcmp(json_string_value(json_object_get(k, "status")) ?: "", "compromised") == 0;
	}
	return 0;
}

/* The signed payload is exactly {first_seq, last_seq, head_hash, time,
 * node, kind} of their types: nothing can ride along unverified. */
static int payload_shape(const json_t *c)
{
	static const char *const kinds[] = {"periodic", "stop", "purge"};
	const json_t *first = json_object_get(c, "first_seq"), *last = json_object_get(c, "last_seq");
	const char *kind = json_string_value(json_object_get(c, "kind"));
	uint8_t *head = NULL;
	size_t n = 0;
	int ok = json_object_size(c) == 6 && json_is_integer(first) && json_is_integer(last) &&
		 json_integer_value(first) >= 1 && json_integer_value(last) >= json_integer_value(first) &&
		 json_is_string(json_object_get(c, "time")) && json_is_string(json_object_get(c, "node")) &&
		 kind != NULL &&
		 cs_b64url_decode(json_string_value(json_object_get(c, "head_hash")) ?: "", &head, &n) == CS_OK &&
		 n == 32;
	free(head);
	int known = 0;
	for (size_t i = 0; ok && i < sizeof(kinds) / sizeof(kinds[0]); i++)
		known |= strcmp(kind, kinds[i]) == 0;
	return ok && known;
}

/* A checkpoint JWS verified: ES256 with the key of jwks its kid names
 * (which must be that key's thumbprint), typ, a header of alg, kid and typ
 * only, and a payload of the six members. Its payload, or NULL and why. */
static json_t *verified_payload(const json_t *jwks, const char *jws, char *why, size_t n)
{
	json_t *peek = NULL, *header = NULL, *claims = NULL;
	EVP_PKEY *pub = NULL;
	if (cs_jws_peek_header(jws, &peek) != CS_OK ||
	    (pub = key_for(jwks, json_string_value(json_object_get(peek, "kid")))) == NULL)
		snprintf(why, n, "bad signature (no key in the JWKS for it)");
	else if (cs_jws_es256_verify(jws, pub, &header, &claims) != CS_OK ||
		 strcmp(json_string_value(json_object_get(header, "typ")) ?: "", CS_CHECKPOINT_TYP) != 0)
		snprintf(why, n, "bad signature");
	else if (json_object_size(header) != 3)
		snprintf(why, n, "its signed header has members besides alg, kid and typ");
	else if (!payload_shape(claims))
		snprintf(why, n, "its signed payload is not exactly {first_seq, last_seq, head_hash, time, node, kind}");
	else
		why[0] = '\0';
	json_decref(peek);
	json_decref(header);
	EVP_PKEY_free(pub);
	if (why[0] != '\0') {
		json_decref(claims);
		return NULL;
	}
	return claims;
}

static int remember(cp_ctx *c, int64_t first, int64_t last, const uint8_t head[32], const char *kind)
{
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

/* Verify one checkpoint's signature and that its payload is its row. */
static int check_checkpoint(void *arg, int64_t first, int64_t last, const uint8_t head[32],
			    const char *ts, const char *node, const char *kind, const char *jws)
{
	cp_ctx *c = arg;
	char why[128];
	c->rep->checkpoints++;
	json_t *claims = verified_payload(c->jwks, jws, why, sizeof(why));
	if (claims == NULL) {
		fail(c->rep, first, "checkpoint %lld..%lld: %s", (long long)first, (long long)last, why);
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
		json_t *peek = NULL;
		int untrusted = same && cs_jws_peek_header(jws, &peek) == CS_OK &&
				key_compromised(c->jwks, json_string_value(json_object_get(peek, "kid")));
		json_decref(peek);
		if (untrusted) { /* verified, but it proves nothing: not remembered */
			c->rep->checkpoints_compromised++;
			json_decref(claims);
			return 0;
		}
	}
	json_decref(claims);
	return remember(c, first, last, head, kind);
}

typedef struct {
	cs_audit_report *rep;
	cp_ctx *cps;
	const cs_audit_pin *pin; /* the kept checkpoint, or NULL */
	size_t next_cp; /* cps->list is sorted by last_seq */
	EVP_MD_CTX *md;
	int64_t expected;
	uint8_t running[32];
	uint8_t base_head[32]; /* the base's head_hash (zeros at the beginning) */
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
	if (w->pin != NULL && w->pin->last == e->seq && memcmp(w->pin->head, hash, 32) != 0)
		return fail(w->rep, e->seq,
			    "entries up to %lld do not match the kept checkpoint %lld..%lld (modified and "
			    "re-chained, or another log)",
			    (long long)e->seq, (long long)w->pin->first, (long long)w->pin->last);
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

/* By last_seq, then first_seq, kind and head: the same checkpoint twice
 * (pages put together) side by side. */
static int by_last(const void *a, const void *b)
{
	const checkpoint *x = a, *y = b;
	if (x->last != y->last)
		return x->last < y->last ? -1 : 1;
	if (x->first != y->first)
		return x->first < y->first ? -1 : 1;
	int k = strcmp(x->kind, y->kind);
	return k != 0 ? k : memcmp(x->head, y->head, 32);
}

/* The base (the newest purge checkpoint, or the beginning) and where the
 * walk begins: at the base, or at start (> base + 1: partial). */
static void walk_begin(cp_ctx *cps, walk_ctx *w, int64_t start)
{
	int64_t base = 0;
	memset(w->base_head, 0, sizeof(w->base_head));
	for (size_t i = 0; i < cps->count; i++)
		if (strcmp(cps->list[i].kind, "purge") == 0 && cps->list[i].last > base) {
			base = cps->list[i].last;
			memcpy(w->base_head, cps->list[i].head, 32);
		}
	memcpy(w->running, w->base_head, 32);
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

/* The same checkpoint more than once (pages put together, or the kept one
 * also in the log) counts once; two different ones of one kind over the
 * same range are a problem. The list is sorted (walk_begin). */
static void dedupe(cp_ctx *cps)
{
	size_t kept = 0;
	for (size_t i = 0; i < cps->count; i++) {
		checkpoint *c = &cps->list[i];
		if (kept > 0) {
			checkpoint *k = &cps->list[kept - 1];
			if (k->first == c->first && k->last == c->last && strcmp(k->kind, c->kind) == 0) {
				if (memcmp(k->head, c->head, 32) != 0)
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

/* The kept checkpoint (before the walk): verified like the others and, but
 * for a purge checkpoint (which can only be the base), added to them. */
static void add_pin(cp_ctx *cps, const cs_audit_pin *pin)
{
	cs_audit_report *rep = cps->rep;
	if (pin == NULL)
		return;
	rep->pinned = 1;
	rep->pin_first = pin->first;
	rep->pin_last = pin->last;
	snprintf(rep->pin_kind, sizeof(rep->pin_kind), "%s", pin->kind);
	if (strcmp(pin->kind, "purge") == 0) {
		char why[128];
		json_t *claims = verified_payload(cps->jwks, pin->jws, why, sizeof(why));
		if (claims == NULL)
			fail(rep, pin->first, "the kept checkpoint %lld..%lld: %s", (long long)pin->first,
			     (long long)pin->last, why);
		json_decref(claims);
		return;
	}
	(void)check_checkpoint(cps, pin->first, pin->last, pin->head, pin->time, pin->node, pin->kind, pin->jws);
}

/* After the walk: the kept checkpoint reached and agreed with; nothing
 * missing after the last entry a checkpoint covers (an export may end
 * inside one: a page); how far the walked entries are authenticated. */
static void walk_end(cp_ctx *cps, walk_ctx *w, int is_file)
{
	cs_audit_report *rep = w->rep;
	const cs_audit_pin *pin = w->pin;
	int64_t last = rep->entries > 0 ? rep->last_seq : w->expected - 1;
	if (pin != NULL && rep->intact) {
		if (pin->last > last)
			fail(rep, last + 1,
			     "ends at seq %lld, before the end of the kept checkpoint %lld..%lld (cut, or made "
			     "before that checkpoint)",
			     (long long)last, (long long)pin->first, (long long)pin->last);
		else if (rep->base_seq > 0 && pin->last == rep->base_seq && memcmp(pin->head, w->base_head, 32) != 0)
			fail(rep, pin->last, "the chain's base ..%lld differs from the kept checkpoint %lld..%lld",
			     (long long)rep->base_seq, (long long)pin->first, (long long)pin->last);
		else if (pin->last != rep->base_seq && (rep->entries == 0 || pin->last < rep->first_seq))
			fail(rep, pin->last,
			     "the kept checkpoint %lld..%lld ends before the first entry here (seq %lld): it "
			     "cannot be checked (verify from seq %lld or earlier)",
			     (long long)pin->first, (long long)pin->last, (long long)rep->first_seq,
			     (long long)pin->last);
	}
	for (size_t i = 0; rep->intact && i < cps->count; i++) {
		const checkpoint *cp = &cps->list[i];
		if (cp->last <= last)
			continue;
		if (is_file && rep->entries > 0 && cp->first <= last && strcmp(cp->kind, "purge") != 0 &&
		    rep->beyond_last == 0) {
			rep->beyond_first = cp->first; /* a page cut by its limit */
			rep->beyond_last = cp->last;
			continue;
		}
		fail(rep, last + 1, "truncated: checkpoint %lld..%lld covers entries the log no longer has",
		     (long long)cp->first, (long long)cp->last);
	}
	if (!rep->intact || rep->entries == 0)
		return;
	for (size_t i = 0; i < cps->count; i++)
		if (strcmp(cps->list[i].kind, "purge") != 0 && cps->list[i].last >= rep->first_seq &&
		    cps->list[i].last <= rep->last_seq && cps->list[i].last > rep->signed_through)
			rep->signed_through = cps->list[i].last;
	if (rep->signed_through >= rep->first_seq)
		rep->authenticated = rep->signed_through - rep->first_seq + 1;
	if (rep->beyond_last > 0) {
		int64_t from = rep->beyond_first;
		if (from < rep->first_seq)
			from = rep->first_seq;
		if (from <= rep->signed_through)
			from = rep->signed_through + 1;
		rep->beyond_entries = rep->last_seq >= from ? rep->last_seq - from + 1 : 0;
	}
	rep->unsigned_entries = rep->entries - rep->authenticated - rep->beyond_entries;
}

cs_err cs_audit_verify_pinned(cs_store *store, const json_t *jwks, int64_t from_seq, const cs_audit_pin *pin,
			      cs_audit_report *rep)
{
	memset(rep, 0, sizeof(*rep));
	rep->intact = 1;
	cp_ctx cps = {.jwks = jwks, .rep = rep};
	walk_ctx w = {.rep = rep, .cps = &cps, .pin = pin};
	cs_err r = cs_store_audit_ts_ordered_from(store, &rep->ts_ordered_from);
	if (r == CS_OK)
		r = cs_store_checkpoints_each(store, check_checkpoint, &cps);
	if (r == CS_OK)
		add_pin(&cps, pin);
	if (r == CS_OK)
		r = cps.error;
	if (r != CS_OK)
		goto out;
	walk_begin(&cps, &w, from_seq);
	dedupe(&cps);
	if ((w.md = EVP_MD_CTX_new()) == NULL) {
		r = CS_E_NOMEM;
		goto out;
	}
	r = cs_store_audit_each(store, w.expected, 0, walk, &w);
	if (r == CS_OK)
		r = w.error;
	if (r == CS_OK)
		walk_end(&cps, &w, 0);
out:
	EVP_MD_CTX_free(w.md);
	free(cps.list);
	return r;
}

cs_err cs_audit_verify(cs_store *store, const json_t *jwks, int64_t from_seq, cs_audit_report *rep)
{
	return cs_audit_verify_pinned(store, jwks, from_seq, NULL, rep);
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
			else if (json_object_size(o) != 8) /* type, the six signed members, jws */
				fail(cps->rep, first, "line %ld: checkpoint %lld..%lld has members not in the format",
				     l->number, (long long)first, (long long)last);
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
		} else if (json_object_size(o) != 16) { /* the 13 fields, type and the two hashes */
			fail(w->rep, e.seq, "line %ld: entry %lld has members not in the format (unsigned text)",
			     l->number, (long long)e.seq);
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

cs_err cs_audit_verify_export(const char *path, const json_t *jwks, const cs_audit_pin *pin,
			      cs_audit_report *rep)
{
	memset(rep, 0, sizeof(*rep));
	rep->intact = 1;
	rep->ts_ordered_from = INT64_MAX; /* not in an export: decreases are warnings */
	cp_ctx cps = {.jwks = jwks, .rep = rep};
	walk_ctx w = {.rep = rep, .cps = &cps, .pin = pin};
	lines l = {.f = fopen(path, "r")};
	int64_t first_entry = 0;
	cs_err r = l.f != NULL ? CS_OK : CS_E_IO;
	if (r == CS_OK)
		r = read_checkpoints(&l, &cps, &first_entry);
	if (r == CS_OK && ferror(l.f))
		r = CS_E_IO;
	if (r == CS_OK && rep->intact) {
		add_pin(&cps, pin);
		r = cps.error;
	}
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
		walk_end(&cps, &w, 1);
out:
	if (l.f != NULL)
		fclose(l.f);
	free(l.line);
	EVP_MD_CTX_free(w.md);
	free(cps.list);
	return r;
}

/* ---- the kept checkpoint ------------------------------------------------------- */

/* The file's text (at most 64 KiB), trimmed; malloc'd. */
static char *read_small(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return NULL;
	size_t cap = 65536, n;
	char *text = malloc(cap + 1);
	if (text == NULL) {
		fclose(f);
		return NULL;
	}
	n = fread(text, 1, cap, f);
	int bad = ferror(f) || !feof(f) || memchr(text, '\0', n) != NULL;
	fclose(f);
	if (bad) {
		free(text);
		return NULL;
	}
	while (n > 0 && strchr(" \t\r\n", text[n - 1]) != NULL)
		n--;
	text[n] = '\0';
	size_t lead = strspn(text, " \t\r\n");
	memmove(text, text + lead, n - lead + 1);
	return text;
}

void cs_audit_pin_free(cs_audit_pin *pin)
{
	free(pin->jws);
	memset(pin, 0, sizeof(*pin));
}

/* The JWS of a JSON form of a checkpoint, and whether its decoded members
 * are the verified ones (set once claims are known). */
static const char *pin_jws(const json_t *doc, char *why, size_t n)
{
	const char *type = json_string_value(json_object_get(doc, "type"));
	if (type != NULL) { /* an export's line */
		if (strcmp(type, "checkpoint") != 0 || json_object_size(doc) != 8) {
			snprintf(why, n, "not a checkpoint line of an export (exactly type, first_seq, last_seq, "
					 "head_hash, time, node, kind, jws)");
			return NULL;
		}
		return json_string_value(json_object_get(doc, "jws"));
	}
	/* GET /api/audit/checkpoint: {"checkpoint", "header", "claims"} */
	size_t known = 1u + (json_object_get(doc, "header") != NULL ? 1u : 0u) +
		       (json_object_get(doc, "claims") != NULL ? 1u : 0u);
	const char *jws = json_string_value(json_object_get(doc, "checkpoint"));
	if (jws == NULL || json_object_size(doc) != known) {
		snprintf(why, n, "not the answer of GET /api/audit/checkpoint (checkpoint, header, claims)");
		return NULL;
	}
	return jws;
}

/* Decoded members beside the JWS must be what it signs. */
static int pin_members_agree(const json_t *doc, const char *jws, const json_t *claims)
{
	static const char *const signed_members[] = {"first_seq", "last_seq", "head_hash", "time", "node", "kind"};
	if (doc == NULL)
		return 1;
	if (json_object_get(doc, "type") != NULL) {
		for (size_t i = 0; i < 6; i++)
			if (!json_equal(json_object_get(doc, signed_members[i]), json_object_get(claims, signed_members[i])))
				return 0;
		return 1;
	}
	json_t *header = NULL;
	int ok = (json_object_get(doc, "claims") == NULL || json_equal(json_object_get(doc, "claims"), claims)) &&
		 (json_object_get(doc, "header") == NULL ||
		  (cs_jws_peek_header(jws, &header) == CS_OK && json_equal(json_object_get(doc, "header"), header)));
	json_decref(header);
	return ok;
}

cs_err cs_audit_pin_load(const char *path, const json_t *jwks, cs_audit_pin *pin, char why[256])
{
	json_t *doc = NULL, *claims = NULL;
	uint8_t *head = NULL;
	size_t n = 0;
	cs_err r = CS_OK;
	memset(pin, 0, sizeof(*pin));
	why[0] = '\0';
	char *text = read_small(path);
	if (text == NULL) {
		snprintf(why, 256, "cannot be read (or is not a text of at most 64 KiB)");
		return CS_E_IO;
	}
	const char *jws = text;
	if (text[0] == '{') {
		json_error_t jerr;
		doc = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
		jws = doc != NULL ? pin_jws(doc, why, 256) : NULL;
		if (doc == NULL)
			snprintf(why, 256, "not JSON: %s", jerr.text);
		if (jws == NULL && why[0] == '\0')
			snprintf(why, 256, "no checkpoint JWS in it");
		if (jws == NULL)
			r = CS_E_INVALID_ARG;
	}
	if (r == CS_OK && (claims = verified_payload(jwks, jws, why, 256)) == NULL)
		r = CS_E_SIGNATURE_INVALID;
	if (r == CS_OK && !pin_members_agree(doc, jws, claims)) {
		snprintf(why, 256, "its decoded members differ from what the JWS signs");
		r = CS_E_INVALID_ARG;
	}
	if (r == CS_OK) {
		const char *time = json_string_value(json_object_get(claims, "time"));
		const char *node = json_string_value(json_object_get(claims, "node"));
		const char *kind = json_string_value(json_object_get(claims, "kind"));
		pin->first = (int64_t)json_integer_value(json_object_get(claims, "first_seq"));
		pin->last = (int64_t)json_integer_value(json_object_get(claims, "last_seq"));
		if (strlen(time) >= sizeof(pin->time) || strlen(node) >= sizeof(pin->node) ||
		    cs_b64url_decode(json_string_value(json_object_get(claims, "head_hash")), &head, &n) != CS_OK ||
		    n != 32) {
			snprintf(why, 256, "its time or node is too long");
			r = CS_E_INVALID_ARG;
		} else if ((pin->jws = strdup(jws)) == NULL) {
			r = CS_E_NOMEM;
		} else {
			memcpy(pin->head, head, 32);
			memcpy(pin->time, time, strlen(time) + 1);
			memcpy(pin->node, node, strlen(node) + 1);
			snprintf(pin->kind, sizeof(pin->kind), "%s", kind);
		}
	}
	if (r != CS_OK)
		cs_audit_pin_free(pin);
	free(head);
	json_decref(claims);
	json_decref(doc);
	free(text);
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

/* ---- steps of the signers' clock ------------------------------------------------- */

typedef struct {
	cs_audit_clock_step *step;
	int have_prev;
	int64_t prev_ms, prev_first, prev_last;
	char prev_ts[32];
	char *why;
	cs_err error;
} step_ctx;

static int scan_step(void *arg, int64_t first, int64_t last, const uint8_t head[32], const char *ts,
		     const char *node, const char *kind, const char *jws)
{
	(void)head;
	(void)node;
	(void)jws;
	step_ctx *c = arg;
	int64_t ms = 0;
	if (strcmp(kind, "purge") == 0)
		return 0; /* the purging host's clock: not the signers' */
	if (cs_audit_time_parse(ts, &ms) != CS_OK) {
		snprintf(c->why, 256, "checkpoint %lld..%lld: its time '%.32s' is not RFC 3339 UTC with milliseconds",
			 (long long)first, (long long)last, ts);
		c->error = CS_E_SIGNATURE_INVALID;
		return 1;
	}
	cs_audit_clock_step *s = c->step;
	if (c->have_prev && ms - c->prev_ms > (s->found ? s->step_ms : 0)) {
		s->found = 1;
		s->step_ms = ms - c->prev_ms;
		s->before_first = c->prev_first;
		s->before_last = c->prev_last;
		s->after_first = first;
		s->after_last = last;
		memcpy(s->before_time, c->prev_ts, sizeof(s->before_time));
		memcpy(s->after_time, ts, strlen(ts) + 1); /* parsed: 24 characters */
	}
	c->have_prev = 1;
	c->prev_ms = ms;
	c->prev_first = first;
	c->prev_last = last;
	memcpy(c->prev_ts, ts, strlen(ts) + 1);
	return 0;
}

/* The periodic or stop checkpoint first..last, verified. */
typedef struct {
	cp_ctx *cps;
	int64_t first;
} one_cp;

static int check_one(void *arg, int64_t first, int64_t last, const uint8_t head[32], const char *ts,
		     const char *node, const char *kind, const char *jws)
{
	one_cp *o = arg;
	if (strcmp(kind, "purge") == 0 || first != o->first)
		return 0;
	return check_checkpoint(o->cps, first, last, head, ts, node, kind, jws);
}

cs_err cs_audit_largest_clock_step(cs_store *store, const json_t *jwks, int64_t base_seq, int64_t ref_seq,
				   cs_audit_clock_step *step, char why[256])
{
	step_ctx c = {.step = step, .why = why};
	cs_audit_report rep = {.intact = 1};
	cp_ctx cps = {.jwks = jwks, .rep = &rep};
	memset(step, 0, sizeof(*step));
	why[0] = '\0';
	cs_err r = cs_store_read_begin(store);
	if (r != CS_OK)
		return r;
	r = cs_store_checkpoints_range(store, base_seq + 1, ref_seq, scan_step, &c);
	if (r == CS_OK)
		r = c.error;
	if (r == CS_OK && step->found) {
		one_cp before = {&cps, step->before_first}, after = {&cps, step->after_first};
		r = cs_store_checkpoints_range(store, step->before_last, step->before_last, check_one, &before);
		if (r == CS_OK)
			r = cs_store_checkpoints_range(store, step->after_last, step->after_last, check_one, &after);
		if (r == CS_OK)
			r = cps.error;
		if (r == CS_OK && (!rep.intact || rep.checkpoints != 2)) {
			snprintf(why, 256, "%s", rep.intact ? "its checkpoints changed while read" : rep.reason);
			r = CS_E_SIGNATURE_INVALID;
		}
	}
	cs_store_read_end(store);
	free(cps.list);
	return r;
}
