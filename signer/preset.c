/* preset: see preset.h. */
#include "preset.h"

#include <libconfig.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "json_text.h"

static const struct {
	const char *name;
	const char *chars;
} charsets[] = {
	/* all 94 printable ASCII characters except space */
	{"full", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
		 "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"},
	/* letters, digits and + - . _ only: each stands for itself, unquoted
	 * and unencoded, in a URI's userinfo (RFC 3986 unreserved or
	 * sub-delims; no ':' '@' '%'), a libpq key=value conninfo value, a
	 * POSIX shell word, and an ODBC or ADO.NET connection-string value
	 * without braces (none of the ODBC grammar's []{}(),;?*=!@, no space).
	 * tests/unit/dbsafe_test.c proves the first three with 10,000
	 * credentials of each db-* preset. */
	{"db-safe", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
		    "+-._"},
	{"alnum", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"},
};

static const char *const type_names[] = {"password", "api-key", "hex", "base64url", "passphrase"};
#define NTYPES 5
#define AMBIGUOUS "0O1lI|"
#define BASE62 "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

const char *cs_type_name(cs_cred_type type)
{
	for (int i = 0; i < NTYPES; i++)
		if (type == (cs_cred_type)(1 << i))
			return type_names[i];
	return "unknown";
}

int cs_type_parse(const char *name)
{
	for (int i = 0; i < NTYPES; i++)
		if (strcmp(name, type_names[i]) == 0)
			return 1 << i;
	return -1;
}

static const char *type_charset(const cs_preset *p, cs_cred_type type)
{
	switch (type) {
	case CS_TYPE_PASSWORD: return p->charset;
	case CS_TYPE_API_KEY: return BASE62;
	case CS_TYPE_HEX: return "0123456789abcdef";
	case CS_TYPE_BASE64URL: return BASE62 "-_";
	default: return NULL;
	}
}

static int popcount4(unsigned v)
{
	return (int)((v & 1) + ((v >> 1) & 1) + ((v >> 2) & 1) + ((v >> 3) & 1));
}

/* Could `words` words from the list be shorter than the preset's minimum? */
static int may_be_short(const cs_preset *p, const cs_wordlist *wl, int words)
{
	return (size_t)words * wl->min_word_len + (size_t)(words - 1) < (size_t)p->min_length;
}

static cs_err plan_passphrase(const cs_preset *p, const cs_wordlist *wl, const cs_plan_request *q,
			      cs_plan *plan, char *why, size_t why_len)
{
	if (wl == NULL) {
		snprintf(why, why_len, "no passphrase wordlist is configured");
		return CS_E_INVALID_ARG;
	}
	int words = 1;
	while (words < CS_PASSPHRASE_WORDS_MAX &&
	       (cs_passphrase_entropy(wl, (size_t)words) < plan->strength_bits || may_be_short(p, wl, words)))
		words++;
	if (cs_passphrase_entropy(wl, (size_t)words) < plan->strength_bits) {
		snprintf(why, why_len,
			 "preset %s needs %d bits, but %d words (the most allowed) from the %zu-word list %s "
			 "give %.2f bits",
			 p->name, plan->strength_bits, words, wl->count, wl->path,
			 cs_passphrase_entropy(wl, (size_t)words));
		return CS_E_UNPROCESSABLE;
	}
	if (may_be_short(p, wl, words)) {
		snprintf(why, why_len,
			 "preset %s needs at least %d characters, but %d words (the most allowed) from the "
			 "list %s may be only %zu characters long",
			 p->name, p->min_length, words, wl->path,
			 (size_t)words * wl->min_word_len + (size_t)(words - 1));
		return CS_E_UNPROCESSABLE;
	}
	plan->min_length = words;
	plan->length = q->length ? q->length : words;
	if (plan->length < words) {
		snprintf(why, why_len,
			 "%d words give %.2f bits or may be shorter than %d characters; preset %s needs at "
			 "least %d words from this %zu-word list",
			 plan->length, cs_passphrase_entropy(wl, (size_t)plan->length), p->min_length, p->name,
			 words, wl->count);
		return CS_E_UNPROCESSABLE;
	}
	if (plan->length > CS_PASSPHRASE_WORDS_MAX) {
		snprintf(why, why_len, "at most %d words", CS_PASSPHRASE_WORDS_MAX);
		return CS_E_UNPROCESSABLE;
	}
	plan->entropy_bits = cs_passphrase_entropy(wl, (size_t)plan->length);
	return CS_OK;
}

/* Characters of the string types. */
static cs_err plan_string(const cs_preset *p, const cs_plan_request *q, cs_plan *plan, char *why,
			  size_t why_len)
{
	/* the character set, less look-alikes on request */
	size_t n = 0;
	for (const char *c = type_charset(p, plan->type); *c; c++)
		if (!(q->exclude_ambiguous && strchr(AMBIGUOUS, *c) != NULL))
			plan->charset[n++] = *c;
	plan->charset[n] = '\0';
	int pw = plan->type == CS_TYPE_PASSWORD;
	/* the class rule holds for every type: a password needs every class
	 * the preset requires (its charset has them all, checked at load); the
	 * other types every required class their alphabet has (PCI DSS 8.3.6's
	 * letters and digits in a hex key are a-f and 0-9) */
	unsigned classes = p->classes;
	if (!pw) {
		unsigned present = 0;
		for (size_t i = 0; i < n; i++)
			present |= cs_char_class(plan->charset[i]);
		classes &= present;
	}
	plan->spec = (cs_string_spec){plan->charset, 1, classes, pw ? p->max_identical_run : 0,
				      pw ? p->max_class_run : 0};
	if (cs_spec_check(&plan->spec) != CS_OK) {
		snprintf(why, why_len, "the character set cannot meet preset %s's classes", p->name);
		return CS_E_UNPROCESSABLE;
	}
	int min = pw ? p->min_length : 1;
	if (min < popcount4(plan->spec.classes))
		min = popcount4(plan->spec.classes);
	int reached = 0;
	for (; min <= CS_CREDENTIAL_MAX - 1 && !reached; min++) {
		plan->spec.length = (size_t)min;
		reached = cs_entropy_bits(&plan->spec) >= plan->strength_bits;
	}
	min--; /* the loop stepped past the length tried last */
	if (!reached) {
		snprintf(why, why_len,
			 "preset %s needs %d bits, but %d characters (the most allowed) of %s give %.2f bits",
			 p->name, plan->strength_bits, min, cs_type_name(plan->type),
			 cs_entropy_bits(&plan->spec));
		return CS_E_UNPROCESSABLE;
	}
	plan->min_length = min;
	plan->length = q->length ? q->length : (pw && p->default_length > min ? p->default_length : min);
	if (plan->length < min) {
		if (pw && plan->length < p->min_length)
			snprintf(why, why_len, "length %d is below preset %s's minimum length of %d (%s)",
				 plan->length, p->name, p->min_length, p->standards[0]);
		else
			snprintf(why, why_len,
				 "length %d gives less than %d bits with this character set; preset %s needs at "
				 "least %d characters",
				 plan->length, plan->strength_bits, p->name, min);
		return CS_E_UNPROCESSABLE;
	}
	if (plan->length > CS_CREDENTIAL_MAX - 1) {
		snprintf(why, why_len, "at most %d characters", CS_CREDENTIAL_MAX - 1);
		return CS_E_UNPROCESSABLE;
	}
	plan->spec.length = (size_t)plan->length;
	plan->entropy_bits = cs_entropy_bits(&plan->spec);
	return CS_OK;
}

/* ---- plan cache ------------------------------------------------------------ */

#define PLAN_WHY_MAX 400

typedef struct {
	int type, length, strength_bits, exclude_ambiguous;
} plan_key;

typedef struct {
	plan_key key;
	cs_err r;
	cs_plan plan; /* spec.charset is fixed up on each copy */
	char why[PLAN_WHY_MAX];
} plan_entry;

struct cs_plan_cache {
	pthread_rwlock_t lock;
	plan_entry entries[CS_PLAN_CACHE_MAX];
	size_t count, next; /* next: the entry replaced when full */
	atomic_ulong hits, misses;
};

static cs_plan_cache *plan_cache_new(void)
{
	cs_plan_cache *c = calloc(1, sizeof(*c));
	if (c != NULL && pthread_rwlock_init(&c->lock, NULL) != 0) {
		free(c);
		c = NULL;
	}
	return c;
}

static void plan_cache_free(cs_plan_cache *c)
{
	if (c == NULL)
		return;
	pthread_rwlock_destroy(&c->lock);
	free(c);
}

static int plan_key_equal(const plan_key *a, const plan_key *b)
{
	return a->type == b->type && a->length == b->length && a->strength_bits == b->strength_bits &&
	       a->exclude_ambiguous == b->exclude_ambiguous;
}

/* Copy a cached outcome out; 0 when the key is not cached. */
static int plan_cache_get(cs_plan_cache *c, const plan_key *k, cs_plan *plan, cs_err *r, char *why,
			  size_t why_len)
{
	int found = 0;
	pthread_rwlock_rdlock(&c->lock);
	for (size_t i = 0; i < c->count && !found; i++) {
		const plan_entry *e = &c->entries[i];
		if (!plan_key_equal(&e->key, k))
			continue;
		*plan = e->plan;
		*r = e->r;
		snprintf(why, why_len, "%s", e->why);
		found = 1;
	}
	pthread_rwlock_unlock(&c->lock);
	if (found) {
		plan->spec.charset = plan->charset;
		atomic_fetch_add(&c->hits, 1);
	} else {
		atomic_fetch_add(&c->misses, 1);
	}
	return found;
}

static void plan_cache_put(cs_plan_cache *c, const plan_key *k, const cs_plan *plan, cs_err r,
			   const char *why)
{
	pthread_rwlock_wrlock(&c->lock);
	for (size_t i = 0; i < c->count; i++)
		if (plan_key_equal(&c->entries[i].key, k))
			goto out; /* another thread was first */
	plan_entry *e = &c->entries[c->count < CS_PLAN_CACHE_MAX ? c->count++ : c->next];
	if (c->count == CS_PLAN_CACHE_MAX && e == &c->entries[c->next])
		c->next = (c->next + 1) % CS_PLAN_CACHE_MAX;
	e->key = *k;
	e->r = r;
	e->plan = *plan;
	snprintf(e->why, sizeof(e->why), "%s", why);
out:
	pthread_rwlock_unlock(&c->lock);
}

void cs_preset_plan_cache_stats(const cs_preset *p, unsigned long *hits, unsigned long *misses,
				size_t *entries)
{
	cs_plan_cache *c = p->plan_cache;
	*hits = c != NULL ? atomic_load(&c->hits) : 0;
	*misses = c != NULL ? atomic_load(&c->misses) : 0;
	*entries = 0;
	if (c != NULL) {
		pthread_rwlock_rdlock(&c->lock);
		*entries = c->count;
		pthread_rwlock_unlock(&c->lock);
	}
}

/* ---- planning --------------------------------------------------------------- */

static cs_err plan_compute(const cs_preset *p, const cs_wordlist *wl, const cs_plan_request *q,
			   int type, cs_plan *plan, char *why, size_t why_len)
{
	memset(plan, 0, sizeof(*plan));
	why[0] = '\0';
	plan->type = (cs_cred_type)type;
	if (!(p->types & (unsigned)type)) {
		snprintf(why, why_len, "preset %s does not allow type %s", p->name, cs_type_name(plan->type));
		return CS_E_INVALID_ARG;
	}
	plan->strength_bits = p->strength_bits;
	if (q->strength_bits) {
		if (q->strength_bits < p->strength_bits) {
			snprintf(why, why_len, "strength_bits %d is below preset %s's minimum strength of %d bits",
				 q->strength_bits, p->name, p->strength_bits);
			return CS_E_UNPROCESSABLE;
		}
		plan->strength_bits = q->strength_bits;
	}
	cs_err r = plan->type == CS_TYPE_PASSPHRASE ? plan_passphrase(p, wl, q, plan, why, why_len)
						    : plan_string(p, q, plan, why, why_len);
	/* never certify less than the strength asked for */
	if (r == CS_OK && !(plan->entropy_bits >= plan->strength_bits)) {
		snprintf(why, why_len, "the plan for preset %s gives %.2f bits, below the %d bits required",
			 p->name, plan->entropy_bits, plan->strength_bits);
		r = CS_E_UNPROCESSABLE;
	}
	return r;
}

cs_err cs_preset_plan(const cs_preset *p, const cs_wordlist *wl, const cs_plan_request *q,
		      cs_plan *plan, char *why, size_t why_len)
{
	int type = q->type;
	if (type == 0)
		for (type = 1; type <= CS_TYPE_PASSPHRASE && !(p->types & (unsigned)type); type <<= 1)
			;
	if (p->plan_cache == NULL || type == CS_TYPE_PASSPHRASE)
		return plan_compute(p, wl, q, type, plan, why, why_len);
	plan_key key = {type, q->length, q->strength_bits, q->exclude_ambiguous != 0};
	cs_err r = CS_E_INTERNAL; /* set by plan_cache_get when it finds the plan */
	if (plan_cache_get(p->plan_cache, &key, plan, &r, why, why_len))
		return r;
	char reason[PLAN_WHY_MAX];
	r = plan_compute(p, wl, q, type, plan, reason, sizeof(reason));
	snprintf(why, why_len, "%s", reason);
	if (strlen(reason) < sizeof(reason) - 1) /* a reason cut short is not kept */
		plan_cache_put(p->plan_cache, &key, plan, r, reason);
	return r;
}

cs_err cs_presets_check(const cs_preset_set *set, const cs_wordlist *wl, char *why, size_t why_len)
{
	for (size_t i = 0; i < set->count; i++)
		for (int t = 1; t <= CS_TYPE_PASSPHRASE; t <<= 1) {
			const cs_preset *p = &set->items[i];
			cs_plan_request q = {.type = t};
			cs_plan plan;
			char reason[400];
			if (!(p->types & (unsigned)t) ||
			    cs_preset_plan(p, wl, &q, &plan, reason, sizeof(reason)) == CS_OK)
				continue;
			snprintf(why, why_len, "preset %s (%s) allows %s, which it can never meet: %s", p->name,
				 p->source, cs_type_name((cs_cred_type)t), reason);
			return CS_E_CONFIG;
		}
	return CS_OK;
}

int cs_presets_audit_retention(const cs_preset_set *set, const cs_preset **which)
{
	int days = 0;
	if (which != NULL)
		*which = NULL;
	for (size_t i = 0; i < set->count; i++)
		if (set->items[i].audit_retention_days > days) {
			days = set->items[i].audit_retention_days;
			if (which != NULL)
				*which = &set->items[i];
		}
	return days;
}

/* ---- loading ---------------------------------------------------------------- */

typedef struct {
	cs_config_diag *diag;
	const char *file;
	int failed;
	int nomem; /* an allocation failed: CS_E_NOMEM, whatever else was wrong */
} ploader;

/* An allocation failed: nothing loaded may be used. */
static void oom(ploader *l)
{
	l->failed = 1;
	l->nomem = 1;
}

static void perr(ploader *l, const config_setting_t *s, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void perr(ploader *l, const config_setting_t *s, const char *path, const char *fmt, ...)
{
	char reason[256], msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	snprintf(msg, sizeof(msg), "%s:%d: setting '%s': %s", l->file,
		 s != NULL ? (int)config_setting_source_line(s) : 0, path, reason);
	l->failed = 1;
	cs_config_diag_add(l->diag, msg);
}

static const char *const known_keys[] = {"title", "version", "standards", "types", "charset",
					 "classes", "min_length", "default_length", "strength_bits",
					 "max_identical_run", "max_class_run", "rotation", "rotation_days",
					 "audit_retention_days", "basis", "cites", "requires_validation", NULL};

#define FULL_NAME 128

/* The member `key` of group g, its full name ("path.key") in full; a
 * missing member is reported when required. */
static const config_setting_t *member(ploader *l, const config_setting_t *g, const char *key,
				      const char *path, int required, char full[FULL_NAME])
{
	snprintf(full, FULL_NAME, "%s.%s", path, key);
	const config_setting_t *s = config_setting_get_member(g, key);
	if (s == NULL && required)
		perr(l, g, full, "required setting missing");
	return s;
}

static char *get_string(ploader *l, const config_setting_t *g, const char *key, const char *path,
			int required)
{
	char full[FULL_NAME];
	const config_setting_t *s = member(l, g, key, path, required, full);
	if (s == NULL)
		return NULL;
	if (config_setting_type(s) != CONFIG_TYPE_STRING || config_setting_get_string(s)[0] == '\0') {
		perr(l, s, full, "expected a non-empty string");
		return NULL;
	}
	if (!cs_utf8_valid(config_setting_get_string(s))) {
		perr(l, s, full, "not valid UTF-8");
		return NULL;
	}
	char *v = strdup(config_setting_get_string(s));
	if (v == NULL)
		oom(l);
	return v;
}

/* An integer in lo..hi; `def` when absent and not required. */
static int get_int(ploader *l, const config_setting_t *g, const char *key, const char *path,
		   int lo, int hi, int required, int def)
{
	char full[FULL_NAME];
	const config_setting_t *s = member(l, g, key, path, required, full);
	if (s == NULL)
		return def;
	if (config_setting_type(s) != CONFIG_TYPE_INT) {
		perr(l, s, full, "expected an integer");
		return def;
	}
	int v = config_setting_get_int(s);
	if (v < lo || v > hi) {
		perr(l, s, full, "%d is out of range %d..%d", v, lo, hi);
		return def;
	}
	return v;
}

static const config_setting_t *get_list(ploader *l, const config_setting_t *g, const char *key,
					const char *path, int allow_empty)
{
	char full[FULL_NAME];
	const config_setting_t *s = member(l, g, key, path, 1, full);
	if (s == NULL)
		return NULL;
	if ((config_setting_type(s) != CONFIG_TYPE_ARRAY && config_setting_type(s) != CONFIG_TYPE_LIST) ||
	    (config_setting_length(s) == 0 && !allow_empty)) {
		perr(l, s, full, "expected a non-empty list of strings");
		return NULL;
	}
	for (int i = 0; i < config_setting_length(s); i++)
		if (config_setting_type(config_setting_get_elem(s, (unsigned)i)) != CONFIG_TYPE_STRING) {
			perr(l, s, full, "expected a list of strings");
			return NULL;
		}
	return s;
}

static int class_bit(const char *name)
{
	static const char *const names[] = {"upper", "lower", "digit", "special"};
	for (int i = 0; i < 4; i++)
		if (strcmp(name, names[i]) == 0)
			return 1 << i;
	return -1;
}

static unsigned get_bits(ploader *l, const config_setting_t *g, const char *key, const char *path,
			 int (*map)(const char *), int allow_empty)
{
	const config_setting_t *s = get_list(l, g, key, path, allow_empty);
	unsigned bits = 0;
	char full[FULL_NAME];
	snprintf(full, sizeof(full), "%s.%s", path, key);
	for (int i = 0; s != NULL && i < config_setting_length(s); i++) {
		const char *v = config_setting_get_string_elem(s, i);
		int b = map(v);
		if (b < 0)
			perr(l, s, full, "unknown value '%s'", v);
		else
			bits |= (unsigned)b;
	}
	return bits;
}

static json_t *bits_json(unsigned bits, const char *const names[], int n)
{
	json_t *a = json_array();
	for (int i = 0; a != NULL && i < n; i++)
		if ((bits & (1u << i)) && json_array_append_new(a, json_string(names[i])) != 0) {
			json_decref(a);
			a = NULL;
		}
	return a;
}

/* The canonical definition: sorted keys, compact; hashed with SHA-256. */
static cs_err canonicalize(cs_preset *p)
{
	static const char *const classes[] = {"upper", "lower", "digit", "special"};
	json_t *standards = json_array();
	for (size_t i = 0; standards != NULL && i < p->nstandards; i++)
		if (json_array_append_new(standards, json_string(p->standards[i])) != 0) {
			json_decref(standards);
			standards = NULL;
		}
	/* a NULL "o" makes json_pack fail; it still takes every reference */
	p->definition = json_pack(
		"{s:s, s:s, s:i, s:o, s:o, s:s, s:s, s:o, s:i, s:i, s:i, s:i, s:i, s:s, s:i, s:s}",
		"name", p->name, "title", p->title, "version", p->version, "standards", standards,
		"types", bits_json(p->types, type_names, NTYPES), "charset", p->charset_name,
		"charset_chars", p->charset, "classes", bits_json(p->classes, classes, 4), "min_length",
		p->min_length, "default_length", p->default_length, "strength_bits", p->strength_bits,
		"max_identical_run", (int)p->max_identical_run, "max_class_run", (int)p->max_class_run,
		"rotation", p->rotation, "rotation_days", p->rotation_days, "basis",
		p->basis != NULL ? p->basis : "");
	/* "no limit" is null, as in certificates, never 0; a member that
	 * could not be added would change the digest: out of memory */
	static const char *const optional[] = {"max_identical_run", "max_class_run", "rotation_days"};
	int bad = p->definition == NULL;
	for (size_t i = 0; !bad && i < sizeof(optional) / sizeof(optional[0]); i++)
		if (json_integer_value(json_object_get(p->definition, optional[i])) == 0)
			bad = json_object_set_new(p->definition, optional[i], json_null()) != 0;
	bad = bad || json_object_set_new(p->definition, "audit_retention_days",
					 p->audit_retention_days > 0 ? json_integer(p->audit_retention_days)
								     : json_null()) != 0;
	bad = bad || json_object_set(p->definition, "cites", p->cites) != 0;
	bad = bad || json_object_set_new(p->definition, "requires_validation",
					 p->requires_validation != NULL ? json_string(p->requires_validation)
									: json_null()) != 0;
	char *text = !bad ? cs_json_text(p->definition, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	if (text == NULL)
		return CS_E_NOMEM;
	uint8_t digest[32];
	SHA256((const uint8_t *)text, strlen(text), digest);
	for (int i = 0; i < 32; i++)
		snprintf(p->sha256 + 2 * i, 3, "%02x", digest[i]);
	free(text);
	return CS_OK;
}

static void load_one(ploader *l, const config_setting_t *g, cs_preset *p, int version,
		     const char *source, const char *prefix)
{
	char path[96];
	const char *name = config_setting_name(g);
	snprintf(path, sizeof(path), "%s.%s", prefix, name != NULL ? name : "?");
	if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
		perr(l, g, path, "expected a group { ... }");
		return;
	}
	for (int i = 0; i < config_setting_length(g); i++) {
		const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
		int known = 0;
		for (int k = 0; known_keys[k] != NULL; k++)
			known |= strcmp(config_setting_name(m), known_keys[k]) == 0;
		if (!known) {
			char full[160];
			snprintf(full, sizeof(full), "%s.%s", path, config_setting_name(m));
			perr(l, m, full, "unknown setting");
		}
	}
	p->name = strdup(name);
	p->source = strdup(source);
	if (p->name == NULL || p->source == NULL)
		oom(l);
	p->version = get_int(l, g, "version", path, 1, 1000000, version == 0, version);
	p->title = get_string(l, g, "title", path, 1);
	p->rotation = get_string(l, g, "rotation", path, 1);
	p->basis = get_string(l, g, "basis", path, 0);
	if ((p->requires_validation = get_string(l, g, "requires_validation", path, 0)) != NULL &&
	    strcmp(p->requires_validation, "FIPS 140-3") != 0 &&
	    strcmp(p->requires_validation, "FIPS 140-2") != 0) {
		char full[FULL_NAME];
		snprintf(full, sizeof(full), "%s.requires_validation", path);
		perr(l, config_setting_get_member(g, "requires_validation"), full,
		     "must be \"FIPS 140-3\" or \"FIPS 140-2\"");
	}
	p->charset_name = get_string(l, g, "charset", path, 1);
	const config_setting_t *st = get_list(l, g, "standards", path, 0);
	for (int i = 0; st != NULL && i < config_setting_length(st); i++) {
		char **grown = realloc(p->standards, (p->nstandards + 1) * sizeof(char *));
		if (grown == NULL) {
			oom(l);
			break;
		}
		p->standards = grown;
		const char *standard = config_setting_get_string_elem(st, i);
		if (standard == NULL || !cs_utf8_valid(standard)) {
			char full[160];
			snprintf(full, sizeof(full), "%s.standards", path);
			perr(l, st, full, "element %d is not a valid UTF-8 string", i + 1);
			break;
		}
		if ((p->standards[p->nstandards] = strdup(standard)) == NULL) {
			oom(l);
			break;
		}
		p->nstandards++;
	}
	p->types = get_bits(l, g, "types", path, cs_type_parse, 0);
	p->classes = get_bits(l, g, "classes", path, class_bit, 1);
	p->min_length = get_int(l, g, "min_length", path, 4, 256, 1, 0);
	p->default_length = get_int(l, g, "default_length", path, 4, 256, 1, 0);
	p->strength_bits = get_int(l, g, "strength_bits", path, CS_STRENGTH_FLOOR, 256, 1, 0);
	p->max_identical_run = (unsigned)get_int(l, g, "max_identical_run", path, 1, CS_RUN_LIMIT_MAX, 0, 0);
	p->max_class_run = (unsigned)get_int(l, g, "max_class_run", path, 1, CS_RUN_LIMIT_MAX, 0, 0);
	p->rotation_days = get_int(l, g, "rotation_days", path, 1, 3650, 0, 0);
	p->audit_retention_days = get_int(l, g, "audit_retention_days", path, 1, 36500, 0, 0);
	const config_setting_t *cites = config_setting_get_member(g, "cites");
	if ((p->cites = json_object()) == NULL)
		oom(l);
	else if (cites != NULL) {
		static const char *const rules[] = {"length", "classes", "runs", "rotation", "retention",
						    NULL};
		char full[160];
		snprintf(full, sizeof(full), "%s.cites", path);
		if (config_setting_type(cites) != CONFIG_TYPE_GROUP)
			perr(l, cites, full, "expected a group of strings");
		for (int i = 0; config_setting_type(cites) == CONFIG_TYPE_GROUP && i < config_setting_length(cites); i++) {
			const config_setting_t *c = config_setting_get_elem(cites, (unsigned)i);
			int known = 0;
			for (int k = 0; rules[k] != NULL; k++)
				known |= strcmp(config_setting_name(c), rules[k]) == 0;
			if (!known || config_setting_type(c) != CONFIG_TYPE_STRING ||
			    !cs_utf8_valid(config_setting_get_string(c)))
				perr(l, c, full,
				     "'%s': expected length, classes, runs, rotation or retention = \"text\" (UTF-8)",
				     config_setting_name(c));
			else if (json_object_set_new(p->cites, config_setting_name(c),
						     json_string(config_setting_get_string(c))) != 0)
				oom(l);
		}
	}
	if (p->charset_name != NULL) {
		for (size_t i = 0; i < sizeof(charsets) / sizeof(charsets[0]); i++)
			if (strcmp(p->charset_name, charsets[i].name) == 0)
				snprintf(p->charset, sizeof(p->charset), "%s", charsets[i].chars);
		if (p->charset[0] == '\0')
			perr(l, config_setting_get_member(g, "charset"), path,
			     "unknown charset '%s' (full, db-safe, alnum)", p->charset_name);
	}
	if (l->failed)
		return;
	cs_string_spec spec = {p->charset, (size_t)p->min_length, p->classes, p->max_identical_run,
			       p->max_class_run};
	if (cs_spec_check(&spec) != CS_OK)
		perr(l, g, path, "the required classes are not all in charset '%s'", p->charset_name);
	else if (p->default_length < p->min_length)
		perr(l, config_setting_get_member(g, "default_length"), path,
		     "default_length is below min_length");
	else if (canonicalize(p) != CS_OK)
		oom(l);
}

/* libconfig -> JSON for the free-form `policy` group; NULL when memory
 * runs out. */
static json_t *to_json(const config_setting_t *s)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_GROUP: {
		json_t *o = json_object();
		for (int i = 0; o != NULL && i < config_setting_length(s); i++) {
			const config_setting_t *m = config_setting_get_elem(s, (unsigned)i);
			json_t *v = to_json(m);
			if (v == NULL || json_object_set_new(o, config_setting_name(m), v) != 0) {
				json_decref(o);
				o = NULL;
			}
		}
		return o;
	}
	case CONFIG_TYPE_ARRAY:
	case CONFIG_TYPE_LIST: {
		json_t *a = json_array();
		for (int i = 0; a != NULL && i < config_setting_length(s); i++) {
			json_t *v = to_json(config_setting_get_elem(s, (unsigned)i));
			if (v == NULL || json_array_append_new(a, v) != 0) {
				json_decref(a);
				a = NULL;
			}
		}
		return a;
	}
	case CONFIG_TYPE_STRING: return json_string(config_setting_get_string(s));
	case CONFIG_TYPE_INT: return json_integer(config_setting_get_int(s));
	case CONFIG_TYPE_INT64: return json_integer(config_setting_get_int64(s));
	case CONFIG_TYPE_BOOL: return json_boolean(config_setting_get_bool(s));
	case CONFIG_TYPE_FLOAT: return json_real(config_setting_get_float(s));
	default: return json_null();
	}
}

static int read_file(ploader *l, config_t *lc, const char *path)
{
	config_init(lc);
	if (config_read_file(lc, path) == CONFIG_TRUE)
		return 1;
	char msg[600];
	if (config_error_type(lc) == CONFIG_ERR_FILE_IO)
		snprintf(msg, sizeof(msg), "%s: cannot read presets", path);
	else
		snprintf(msg, sizeof(msg), "%s:%d: syntax error: %s", path, config_error_line(lc),
			 config_error_text(lc));
	cs_config_diag_add(l->diag, msg);
	l->failed = 1;
	return 0;
}

/* Append the presets of a group to the set. */
static void load_group(ploader *l, cs_preset_set *set, const config_setting_t *ps, int version,
		       const char *source)
{
	size_t add = (size_t)config_setting_length(ps);
	cs_preset *grown = realloc(set->items, (set->count + add) * sizeof(cs_preset));
	if (grown == NULL) {
		oom(l);
		return;
	}
	set->items = grown;
	memset(set->items + set->count, 0, add * sizeof(cs_preset));
	for (size_t i = 0; i < add; i++) {
		const config_setting_t *g = config_setting_get_elem(ps, (unsigned)i);
		if (cs_preset_find(set, config_setting_name(g)) != NULL) {
			char path[96];
			snprintf(path, sizeof(path), "presets.%s", config_setting_name(g));
			perr(l, g, path, "a preset of this name already exists (built-in names are reserved)");
			continue;
		}
		load_one(l, g, &set->items[set->count], version, source, "presets");
		set->count++;
	}
}

cs_err cs_presets_load(const char *builtin_file, const char *config_file, cs_preset_set **out,
		       cs_config_diag *diag)
{
	config_t lc;
	ploader l = {diag, builtin_file, 0, 0};
	*out = NULL;
	memset(diag, 0, sizeof(*diag));
	cs_preset_set *set = calloc(1, sizeof(*set));
	if (set == NULL)
		return CS_E_NOMEM;
	if (read_file(&l, &lc, builtin_file)) {
		const config_setting_t *root = config_root_setting(&lc);
		const config_setting_t *v = config_setting_get_member(root, "version");
		const config_setting_t *ps = config_setting_get_member(root, "presets");
		const config_setting_t *policy = config_setting_get_member(root, "policy");
		if (v == NULL || config_setting_type(v) != CONFIG_TYPE_INT || config_setting_get_int(v) < 1)
			perr(&l, v, "version", "expected a positive integer");
		else
			set->version = config_setting_get_int(v);
		if (ps == NULL || config_setting_type(ps) != CONFIG_TYPE_GROUP || config_setting_length(ps) == 0)
			perr(&l, ps, "presets", "expected a non-empty group of presets");
		else if (!l.failed)
			load_group(&l, set, ps, set->version, "built-in");
		set->policy = policy != NULL ? to_json(policy) : json_object();
		if (set->policy == NULL)
			oom(&l);
	}
	config_destroy(&lc);
	if (!l.failed && config_file != NULL && read_file(&l, &lc, config_file)) {
		/* operator presets: each must carry its own version */
		const config_setting_t *ps = config_lookup(&lc, "presets");
		l.file = config_file;
		if (ps != NULL && config_setting_type(ps) == CONFIG_TYPE_GROUP)
			load_group(&l, set, ps, 0, config_file);
		config_destroy(&lc);
	}
	if (l.failed || set->count == 0) {
		cs_presets_free(set);
		return l.nomem ? CS_E_NOMEM : CS_E_CONFIG;
	}
	for (size_t i = 0; i < set->count; i++)
		if ((set->items[i].plan_cache = plan_cache_new()) == NULL) {
			cs_presets_free(set);
			return CS_E_NOMEM;
		}
	*out = set;
	return CS_OK;
}

void cs_presets_free(cs_preset_set *set)
{
	if (set == NULL)
		return;
	for (size_t i = 0; i < set->count; i++) {
		cs_preset *p = &set->items[i];
		free(p->name);
		free(p->title);
		free(p->rotation);
		free(p->basis);
		free(p->requires_validation);
		free(p->source);
		free(p->charset_name);
		for (size_t k = 0; k < p->nstandards; k++)
			free(p->standards[k]);
		free(p->standards);
		json_decref(p->definition);
		json_decref(p->cites);
		plan_cache_free(p->plan_cache);
	}
	free(set->items);
	json_decref(set->policy);
	free(set);
}

const cs_preset *cs_preset_find(const cs_preset_set *set, const char *name)
{
	for (size_t i = 0; i < set->count; i++)
		if (set->items[i].name != NULL && strcmp(set->items[i].name, name) == 0)
			return &set->items[i];
	return NULL;
}
