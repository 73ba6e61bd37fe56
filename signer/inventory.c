/* inventory: the credential register (inventory.h). */
#include "inventory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json_text.h"
#include "textbuf.h"

#define DAY_MS ((int64_t)86400000)

/* One record being built, with what ordering and states need (pointers
 * into rec's own strings). */
typedef struct {
	json_t *rec;
	const char *project, *environment, *system, *cert_id;
	int64_t certified_ms;
	int64_t created_ms; /* the store's time: orders certificates of one second */
	int revoked;
} item;

typedef struct {
	const cs_preset_set *presets;
	const cs_inventory_rules *rules;
	item *items;
	size_t n, cap;
	cs_err err; /* the first failure */
} builder;

/* ---- times ------------------------------------------------------------------ */

static int digits(const char *s, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		*v = *v * 10 + (s[i] - '0');
	}
	return 1;
}

cs_err cs_inventory_time_parse(const char *s, int64_t *ms)
{
	int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0;
	if (s == NULL || ms == NULL || strlen(s) < 10 || !digits(s, 4, &y) || s[4] != '-' ||
	    !digits(s + 5, 2, &mo) || s[7] != '-' || !digits(s + 8, 2, &d))
		return CS_E_INVALID_ARG;
	const char *p = s + 10;
	if (*p != '\0') {
		if (*p != 'T' || strlen(p) < 10 || !digits(p + 1, 2, &h) || p[3] != ':' ||
		    !digits(p + 4, 2, &mi) || p[6] != ':' || !digits(p + 7, 2, &sec))
			return CS_E_INVALID_ARG;
		p += 9;
		if (*p == '.') {
			int n = 0;
			for (p++; *p >= '0' && *p <= '9'; p++, n++)
				if (n < 3)
					frac = frac * 10 + (*p - '0');
			if (n < 1 || n > 9)
				return CS_E_INVALID_ARG;
			for (int i = n; i < 3; i++)
				frac *= 10;
		}
		if (p[0] != 'Z' || p[1] != '\0')
			return CS_E_INVALID_ARG;
	}
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59)
		return CS_E_INVALID_ARG;
	struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = sec};
	time_t t = timegm(&tm);
	/* timegm normalizes 2026-02-30 to 2026-03-02: refuse a day that does not exist */
	if (t == (time_t)-1 || tm.tm_mday != d || tm.tm_mon != mo - 1)
		return CS_E_INVALID_ARG;
	*ms = (int64_t)t * 1000 + frac;
	return CS_OK;
}

void cs_inventory_time_format(int64_t ms, char out[32])
{
	int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
	int frac = (int)(ms - secs * 1000);
	time_t t = (time_t)secs;
	struct tm tm;
	char day[24];
	if (gmtime_r(&t, &tm) == NULL || strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		snprintf(day, sizeof(day), "1970-01-01T00:00:00");
	snprintf(out, 32, "%.19s.%03dZ", day, frac);
}

/* ---- records ------------------------------------------------------------------ */

static const char *str_at(const json_t *o, const char *a, const char *b)
{
	const json_t *v = json_object_get(o, a);
	if (b != NULL)
		v = json_object_get(v, b);
	return json_string_value(v);
}

/* Set member k to s (null when NULL); non-zero on failure. */
static int set_str(json_t *o, const char *k, const char *s)
{
	return json_object_set_new(o, k, s != NULL ? json_string(s) : json_null());
}

static int standards_name_pci(const json_t *standards)
{
	size_t i;
	const json_t *v;
	json_array_foreach(standards, i, v)
	{
		const char *s = json_string_value(v);
		if (s != NULL && strncmp(s, "PCI DSS", 7) == 0)
			return 1;
	}
	return 0;
}

/* rotation_due, rotation_rule and rotation of one certificate. */
static int set_rotation(const builder *b, json_t *rec, const json_t *claims, int64_t certified_ms,
			int have_certified)
{
	const char *name = str_at(claims, "preset", NULL);
	const cs_preset *p = name != NULL ? cs_preset_find(b->presets, name) : NULL;
	if (p == NULL) {
		char msg[256];
		snprintf(msg, sizeof(msg), "preset %.200s not configured", name != NULL ? name : "(none)");
		return set_str(rec, "rotation_due", NULL) | set_str(rec, "rotation_rule", NULL) |
		       set_str(rec, "rotation", msg);
	}
	int64_t due = 0;
	const char *rule = NULL;
	if (have_certified && p->rotation_days > 0) {
		due = certified_ms + (int64_t)p->rotation_days * DAY_MS;
		rule = json_string_value(json_object_get(p->cites, "rotation"));
		if (rule == NULL)
			rule = p->rotation;
	}
	int pci = b->rules != NULL ? b->rules->pci_password_change_days : 0;
	const char *type = str_at(claims, "credential", "type");
	int pci_applies = pci > 0 && type != NULL && strcmp(type, "password") == 0 &&
			  standards_name_pci(json_object_get(claims, "standards"));
	if (have_certified && pci_applies) {
		int64_t pci_due = certified_ms + (int64_t)pci * DAY_MS;
		if (rule == NULL || pci_due < due) {
			due = pci_due;
			rule = CS_INVENTORY_PCI_RULE;
		}
	}
	char when[32];
	if (rule != NULL)
		cs_inventory_time_format(due, when);
	/* the preset's guidance, and the 8.3.9 change the record is held to
	 * (so that rotation never contradicts rotation_rule) */
	char text[1024];
	const char *rotation = p->rotation;
	if (pci_applies && rotation != NULL) {
		int len = (int)strlen(rotation);
		while (len > 0 && (rotation[len - 1] == '.' || rotation[len - 1] == ' '))
			len--;
		snprintf(text, sizeof(text), "%.*s; " CS_INVENTORY_PCI_ROTATION, len > 700 ? 700 : len, rotation,
			 pci);
		rotation = text;
	}
	return set_str(rec, "rotation_due", rule != NULL ? when : NULL) | set_str(rec, "rotation_rule", rule) |
	       set_str(rec, "rotation", rotation);
}

static json_t *standards_copy(const json_t *claims)
{
	json_t *out = json_array();
	size_t i;
	const json_t *v;
	json_array_foreach(json_object_get(claims, "standards"), i, v)
	{
		if (out != NULL && json_is_string(v) && json_array_append_new(out, json_string(json_string_value(v))) != 0) {
			json_decref(out);
			out = NULL;
		}
	}
	return out;
}

/* The record of one row without its state and superseded_by (set to
 * null here, in their places: set again by set_states). */
static json_t *record_of(const builder *b, const cs_inventory_row *row, const json_t *claims, int64_t *certified_ms)
{
	json_t *rec = json_object();
	if (rec == NULL)
		return NULL;
	const char *certified_at = str_at(claims, "certified_at", NULL);
	int have = certified_at != NULL && cs_inventory_time_parse(certified_at, certified_ms) == CS_OK;
	if (!have)
		*certified_ms = row->created_ms;
	const char *iss = str_at(claims, "iss", NULL);
	char *url = NULL;
	if (iss != NULL && row->cert_id != NULL) {
		size_t len = strlen(iss) + strlen(row->cert_id) + sizeof("/cert/");
		if ((url = malloc(len)) != NULL)
			snprintf(url, len, "%s/cert/%s", iss, row->cert_id);
	}
	json_t *standards = standards_copy(claims);
	int bad = (iss != NULL && row->cert_id != NULL && url == NULL) | (standards == NULL);
	bad |= set_str(rec, "project", str_at(claims, "project", NULL));
	bad |= set_str(rec, "environment", str_at(claims, "environment", NULL));
	bad |= set_str(rec, "system", str_at(claims, "system", NULL));
	bad |= set_str(rec, "state", NULL);
	bad |= set_str(rec, "cert_id", row->cert_id);
	bad |= set_str(rec, "cert_url", url);
	bad |= set_str(rec, "type", str_at(claims, "credential", "type"));
	bad |= set_str(rec, "preset", str_at(claims, "preset", NULL));
	bad |= json_object_set_new(rec, "standards", standards);
	bad |= set_str(rec, "certified_at", certified_at);
	bad |= set_str(rec, "requester", str_at(claims, "subject", "identity"));
	bad |= set_rotation(b, rec, claims, *certified_ms, have);
	bad |= set_str(rec, "superseded_by", NULL);
	bad |= set_str(rec, "revoked_at", row->revoked_at);
	bad |= set_str(rec, "revocation_reason", row->revocation_reason);
	free(url);
	if (bad) {
		json_decref(rec);
		return NULL;
	}
	return rec;
}

static void add_row(builder *b, const cs_inventory_row *row)
{
	if (b->err != CS_OK)
		return;
	if (b->n >= CS_INVENTORY_MAX_RECORDS) {
		b->err = CS_E_TOO_LARGE;
		return;
	}
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		item *grown = realloc(b->items, cap * sizeof(item));
		if (grown == NULL) {
			b->err = CS_E_NOMEM;
			return;
		}
		b->items = grown;
		b->cap = cap;
	}
	int nomem = 0;
	json_t *claims = row->claims_json != NULL
				 ? cs_json_load_exact(row->claims_json, strlen(row->claims_json), 0, &nomem)
				 : NULL;
	if (!json_is_object(claims)) {
		json_decref(claims);
		b->err = nomem ? CS_E_NOMEM : CS_E_STORE;
		return;
	}
	item *it = &b->items[b->n];
	memset(it, 0, sizeof(*it));
	it->rec = record_of(b, row, claims, &it->certified_ms);
	json_decref(claims);
	if (it->rec == NULL) {
		b->err = CS_E_NOMEM;
		return;
	}
	it->project = str_at(it->rec, "project", NULL);
	it->environment = str_at(it->rec, "environment", NULL);
	it->system = str_at(it->rec, "system", NULL);
	it->cert_id = str_at(it->rec, "cert_id", NULL);
	it->revoked = row->revoked_at != NULL;
	it->created_ms = row->created_ms;
	b->n++;
}

/* NULL first */
static int cmp_null_first(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return (a != NULL) - (b != NULL);
	return strcmp(a, b);
}

static int same_key(const item *a, const item *b)
{
	return cmp_null_first(a->project, b->project) == 0 && cmp_null_first(a->environment, b->environment) == 0 &&
	       cmp_null_first(a->system, b->system) == 0;
}

static int cmp_items(const void *pa, const void *pb)
{
	const item *a = pa, *b = pb;
	int c = cmp_null_first(a->project, b->project);
	if (c == 0)
		c = cmp_null_first(a->environment, b->environment);
	if (c == 0)
		c = cmp_null_first(a->system, b->system);
	if (c == 0)
		c = (a->certified_ms > b->certified_ms) - (a->certified_ms < b->certified_ms);
	if (c == 0) /* certified_at has whole seconds: a rotation within one keeps the store's order */
		c = (a->created_ms > b->created_ms) - (a->created_ms < b->created_ms);
	if (c == 0)
		c = cmp_null_first(a->cert_id, b->cert_id);
	return c;
}

/* States and superseded_by over the sorted items. */
static int set_states(builder *b)
{
	int bad = 0;
	for (size_t i = 0; i < b->n; i++) {
		item *it = &b->items[i];
		const item *next = i + 1 < b->n ? &b->items[i + 1] : NULL;
		int newer = it->system != NULL && next != NULL && same_key(it, next);
		if (newer)
			bad |= set_str(it->rec, "superseded_by", next->cert_id);
		bad |= set_str(it->rec, "state", it->revoked ? "revoked" : newer ? "superseded" : "current");
	}
	return bad;
}

static void builder_free(builder *b)
{
	for (size_t i = 0; i < b->n; i++)
		json_decref(b->items[i].rec);
	free(b->items);
	memset(b, 0, sizeof(*b));
}

static cs_err finish(builder *b, json_t **records)
{
	cs_err r = b->err;
	json_t *arr = NULL;
	if (r == CS_OK) {
		if (b->n > 1)
			qsort(b->items, b->n, sizeof(item), cmp_items);
		if (set_states(b) != 0 || (arr = json_array()) == NULL)
			r = CS_E_NOMEM;
	}
	for (size_t i = 0; r == CS_OK && i < b->n; i++)
		if (json_array_append(arr, b->items[i].rec) != 0)
			r = CS_E_NOMEM;
	if (r != CS_OK) {
		json_decref(arr);
		arr = NULL;
	}
	builder_free(b);
	*records = arr;
	return r;
}

cs_err cs_inventory_records(const cs_inventory_row *rows, size_t n, const cs_preset_set *presets,
			    const cs_inventory_rules *rules, json_t **records)
{
	builder b = {.presets = presets, .rules = rules};
	if (records == NULL)
		return CS_E_INVALID_ARG;
	*records = NULL;
	if ((rows == NULL && n > 0) || presets == NULL)
		return CS_E_INVALID_ARG;
	for (size_t i = 0; i < n && b.err == CS_OK; i++)
		add_row(&b, &rows[i]);
	return finish(&b, records);
}

static int collect_row(void *arg, const cs_inventory_row *row)
{
	builder *b = arg;
	add_row(b, row);
	return b->err != CS_OK;
}

cs_err cs_inventory_collect(cs_store *store, const cs_preset_set *presets, const cs_inventory_rules *rules,
			    const char *project, const char *environment, json_t **records)
{
	builder b = {.presets = presets, .rules = rules};
	if (records == NULL)
		return CS_E_INVALID_ARG;
	*records = NULL;
	if (store == NULL || presets == NULL)
		return CS_E_INVALID_ARG;
	cs_err r = cs_store_inventory_each(store, project, environment, collect_row, &b);
	if (b.err == CS_OK && r != CS_OK)
		b.err = r;
	return finish(&b, records);
}

/* ---- counts and filters ------------------------------------------------------- */

/* One record's share of the counts, at state. */
static void count_one(const json_t *rec, const char *state, int64_t now_ms, int64_t soon, cs_inventory_counts *out)
{
	if (strcmp(state, "superseded") == 0) {
		out->superseded++;
		return;
	}
	if (strcmp(state, "revoked") == 0) {
		out->revoked++;
		return;
	}
	if (strcmp(state, "current") != 0)
		return;
	out->current++;
	int64_t due;
	if (cs_inventory_time_parse(str_at(rec, "rotation_due", NULL), &due) != CS_OK)
		return;
	if (due < now_ms)
		out->overdue++;
	else if (due <= soon)
		out->due_soon++;
}

static int64_t soon_of(const cs_inventory_rules *rules, int64_t now_ms)
{
	int days = rules != NULL && rules->due_soon_days > 0 ? rules->due_soon_days : 14;
	return now_ms + (int64_t)days * DAY_MS;
}

typedef struct {
	builder b;       /* holds at most the pending item */
	int64_t now_ms, soon;
	cs_inventory_counts *out;
} streamer;

/* The pending item's state now that the next row (or none) is known. */
static void stream_settle(streamer *s, const item *next)
{
	item *it = &s->b.items[0];
	int newer = it->system != NULL && next != NULL && same_key(it, next);
	count_one(it->rec, it->revoked ? "revoked" : newer ? "superseded" : "current", s->now_ms, s->soon, s->out);
	json_decref(it->rec);
	it->rec = NULL;
}

static int stream_row(void *arg, const cs_inventory_row *row)
{
	streamer *s = arg;
	add_row(&s->b, row);
	if (s->b.err != CS_OK)
		return 1;
	if (s->b.n == 2) {
		stream_settle(s, &s->b.items[1]);
		s->b.items[0] = s->b.items[1];
		s->b.n = 1;
	}
	return 0;
}

cs_err cs_inventory_count_store(cs_store *store, const cs_preset_set *presets, const cs_inventory_rules *rules,
				int64_t now_ms, cs_inventory_counts *out)
{
	if (store == NULL || presets == NULL || out == NULL)
		return CS_E_INVALID_ARG;
	memset(out, 0, sizeof(*out));
	streamer s = {.b = {.presets = presets, .rules = rules}, .now_ms = now_ms, .soon = soon_of(rules, now_ms), .out = out};
	cs_err r = cs_store_inventory_each(store, NULL, NULL, stream_row, &s);
	if (s.b.err != CS_OK)
		r = s.b.err;
	if (r == CS_OK && s.b.n == 1)
		stream_settle(&s, NULL);
	builder_free(&s.b);
	if (r != CS_OK)
		memset(out, 0, sizeof(*out));
	return r;
}

cs_err cs_inventory_count(const json_t *records, const cs_inventory_rules *rules, int64_t now_ms,
			  cs_inventory_counts *out)
{
	if (out == NULL || !json_is_array(records))
		return CS_E_INVALID_ARG;
	memset(out, 0, sizeof(*out));
	int64_t soon = soon_of(rules, now_ms);
	size_t i;
	const json_t *rec;
	json_array_foreach(records, i, rec)
	{
		const char *state = str_at(rec, "state", NULL);
		if (state != NULL)
			count_one(rec, state, now_ms, soon, out);
	}
	return CS_OK;
}

cs_err cs_inventory_filter_due_before(json_t *records, int64_t before_ms)
{
	if (!json_is_array(records))
		return CS_E_INVALID_ARG;
	for (size_t i = json_array_size(records); i-- > 0;) {
		const json_t *rec = json_array_get(records, i);
		const char *state = str_at(rec, "state", NULL);
		int64_t due;
		/* superseded and revoked records are no longer due (they keep the
		 * date they had: it shows whether they were rotated in time) */
		if (state == NULL || strcmp(state, "current") != 0 ||
		    cs_inventory_time_parse(str_at(rec, "rotation_due", NULL), &due) != CS_OK || due >= before_ms)
			if (json_array_remove(records, i) != 0)
				return CS_E_INTERNAL;
	}
	return CS_OK;
}

/* ---- CSV -------------------------------------------------------------------- */

static const char *const columns[] = {"project",	 "environment",	 "system",	 "state",
				      "cert_id",	 "cert_url",	 "type",	 "preset",
				      "standards",	 "certified_at", "requester",	 "rotation_due",
				      "rotation_rule", "rotation",	 "superseded_by", "revoked_at",
				      "revocation_reason"};
#define NCOLUMNS (sizeof(columns) / sizeof(columns[0]))

/* One quoted field (text of len bytes). */
static void put_field(cs_textbuf *b, const char *text, size_t len)
{
	cs_textbuf_put(b, "\"", 1);
	if (len > 0 && strchr("=+-@\t\r", text[0]) != NULL)
		cs_textbuf_put(b, "'", 1);
	for (size_t i = 0; i < len; i++)
		cs_textbuf_put(b, text[i] == '"' ? "\"\"" : &text[i], text[i] == '"' ? 2 : 1);
	cs_textbuf_put(b, "\"", 1);
}

static void put_value(cs_textbuf *b, const json_t *v)
{
	if (v == NULL || json_is_null(v))
		return; /* null: an empty field, unquoted */
	if (json_is_string(v)) {
		put_field(b, json_string_value(v), json_string_length(v));
		return;
	}
	if (json_is_array(v)) {
		cs_textbuf joined = {0};
		size_t i;
		const json_t *e;
		cs_textbuf_put(&joined, "", 0);
		json_array_foreach(v, i, e)
		{
			if (i > 0)
				cs_textbuf_put(&joined, "; ", 2);
			if (json_is_string(e))
				cs_textbuf_put(&joined, json_string_value(e), json_string_length(e));
		}
		b->failed |= joined.failed;
		if (!joined.failed)
			put_field(b, joined.p, joined.len);
		free(joined.p);
		return;
	}
	char *text = cs_json_text(v, JSON_ENCODE_ANY | JSON_COMPACT);
	if (text == NULL)
		b->failed = 1;
	else
		put_field(b, text, strlen(text));
	free(text);
}

char *cs_inventory_csv(const json_t *records)
{
	if (!json_is_array(records))
		return NULL;
	cs_textbuf b = {0};
	for (size_t c = 0; c < NCOLUMNS; c++) {
		if (c > 0)
			cs_textbuf_put(&b, ",", 1);
		put_field(&b, columns[c], strlen(columns[c]));
	}
	cs_textbuf_put(&b, "\r\n", 2);
	size_t i;
	const json_t *rec;
	json_array_foreach(records, i, rec)
	{
		if (!json_is_object(rec)) {
			b.failed = 1;
			break;
		}
		for (size_t c = 0; c < NCOLUMNS; c++) {
			if (c > 0)
				cs_textbuf_put(&b, ",", 1);
			put_value(&b, json_object_get(rec, columns[c]));
		}
		cs_textbuf_put(&b, "\r\n", 2);
	}
	if (b.failed) {
		free(b.p);
		return NULL;
	}
	return b.p;
}
