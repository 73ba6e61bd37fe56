/* preset: see preset.h. */
#include "preset.h"

#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

static const struct {
	const char *name;
	const char *chars;
} charsets[] = {
	/* all 94 printable ASCII characters except space */
	{"full", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
		 "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"},
	/* full minus what breaks connection strings and shells:
	 * ' " ` \ @ : / ? # % & (and space, never included) */
	{"db-safe", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
		    "!$()*+,-.;<=>[]^_{|}~"},
	{"alnum", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"},
};

static const char *const type_names[] = {"password", "api-key", "hex", "base64url"};
#define BASE62 "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

const char *cs_type_name(cs_cred_type type)
{
	for (int i = 0; i < 4; i++)
		if (type == (cs_cred_type)(1 << i))
			return type_names[i];
	return "unknown";
}

int cs_type_parse(const char *name)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(name, type_names[i]) == 0)
			return 1 << i;
	return -1;
}

const char *cs_type_charset(const cs_preset *p, cs_cred_type type)
{
	switch (type) {
	case CS_TYPE_PASSWORD: return p->charset;
	case CS_TYPE_API_KEY: return BASE62;
	case CS_TYPE_HEX: return "0123456789abcdef";
	case CS_TYPE_BASE64URL: return BASE62 "-_";
	default: return NULL;
	}
}

int cs_preset_min_length(const cs_preset *p, cs_cred_type type, int strength_bits)
{
	int target = strength_bits > p->strength_bits ? strength_bits : p->strength_bits;
	if (target < CS_STRENGTH_FLOOR)
		target = CS_STRENGTH_FLOOR;
	cs_string_spec spec = {cs_type_charset(p, type), 1, type == CS_TYPE_PASSWORD ? p->classes : 0};
	int len = type == CS_TYPE_PASSWORD ? p->min_length : 1;
	if (len < 1)
		len = 1;
	for (; len < CS_CREDENTIAL_MAX - 1; len++) {
		spec.length = (size_t)len;
		if ((spec.classes == 0 || (size_t)len >= 4) && cs_entropy_bits(&spec) >= target)
			return len;
	}
	return -1;
}

/* ---- loading ---------------------------------------------------------------- */

typedef struct {
	cs_config_diag *diag;
	const char *file;
	int failed;
} ploader;

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
	char **grown = realloc(l->diag->messages, (l->diag->count + 1) * sizeof(char *));
	if (grown == NULL)
		return;
	l->diag->messages = grown;
	if ((grown[l->diag->count] = strdup(msg)) != NULL)
		l->diag->count++;
}

static const char *const known_keys[] = {"name", "title", "standards", "types", "charset",
					 "classes", "min_length", "default_length", "strength_bits",
					 "rotation", "basis", NULL};

static char *get_string(ploader *l, const config_setting_t *g, const char *key, const char *path,
			int required)
{
	const config_setting_t *s = config_setting_get_member(g, key);
	char full[128];
	snprintf(full, sizeof(full), "%s.%s", path, key);
	if (s == NULL) {
		if (required)
			perr(l, g, full, "required setting missing");
		return NULL;
	}
	if (config_setting_type(s) != CONFIG_TYPE_STRING || config_setting_get_string(s)[0] == '\0') {
		perr(l, s, full, "expected a non-empty string");
		return NULL;
	}
	return strdup(config_setting_get_string(s));
}

static int get_int(ploader *l, const config_setting_t *g, const char *key, const char *path,
		   int lo, int hi)
{
	const config_setting_t *s = config_setting_get_member(g, key);
	char full[128];
	snprintf(full, sizeof(full), "%s.%s", path, key);
	if (s == NULL) {
		perr(l, g, full, "required setting missing");
		return -1;
	}
	if (config_setting_type(s) != CONFIG_TYPE_INT) {
		perr(l, s, full, "expected an integer");
		return -1;
	}
	int v = config_setting_get_int(s);
	if (v < lo || v > hi) {
		perr(l, s, full, "%d is out of range %d..%d", v, lo, hi);
		return -1;
	}
	return v;
}

/* A list of strings; each mapped by `map` (returns a bit, or -1). */
static const config_setting_t *get_list(ploader *l, const config_setting_t *g, const char *key,
					const char *path, int allow_empty)
{
	const config_setting_t *s = config_setting_get_member(g, key);
	char full[128];
	snprintf(full, sizeof(full), "%s.%s", path, key);
	if (s == NULL) {
		perr(l, g, full, "required setting missing");
		return NULL;
	}
	if ((config_setting_type(s) != CONFIG_TYPE_ARRAY && config_setting_type(s) != CONFIG_TYPE_LIST) ||
	    (config_setting_length(s) == 0 && !allow_empty)) {
		perr(l, s, full, "expected a non-empty list of strings");
		return NULL;
	}
	for (int i = 0; i < config_setting_length(s); i++)
		if (config_setting_type(config_setting_get_elem(s, (unsigned)i)) != CONFIG_TYPE_STRING) {
			perr(l, s, full, "expected a non-empty list of strings");
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
	for (int i = 0; s != NULL && i < config_setting_length(s); i++) {
		const char *v = config_setting_get_string_elem(s, i);
		int b = map(v);
		char full[128];
		snprintf(full, sizeof(full), "%s.%s", path, key);
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
	for (int i = 0; i < n; i++)
		if (bits & (1u << i))
			json_array_append_new(a, json_string(names[i]));
	return a;
}

/* The canonical definition: sorted keys, compact; hashed with SHA-256. */
static void canonicalize(cs_preset *p, int file_version)
{
	static const char *const classes[] = {"upper", "lower", "digit", "special"};
	json_t *standards = json_array();
	for (size_t i = 0; i < p->nstandards; i++)
		json_array_append_new(standards, json_string(p->standards[i]));
	p->definition = json_pack(
		"{s:s, s:s, s:i, s:o, s:o, s:s, s:s, s:o, s:i, s:i, s:i, s:s, s:s}", "name", p->name,
		"title", p->title, "version", file_version, "standards", standards, "types",
		bits_json(p->types, type_names, 4), "charset", p->charset_name, "charset_chars",
		p->charset, "classes", bits_json(p->classes, classes, 4), "min_length", p->min_length,
		"default_length", p->default_length, "strength_bits", p->strength_bits, "rotation",
		p->rotation, "basis", p->basis != NULL ? p->basis : "");
	char *text = json_dumps(p->definition, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(12));
	uint8_t digest[32];
	SHA256((const uint8_t *)text, strlen(text), digest);
	for (int i = 0; i < 32; i++)
		snprintf(p->sha256 + 2 * i, 3, "%02x", digest[i]);
	free(text);
}

static void load_one(ploader *l, const config_setting_t *g, cs_preset *p, int file_version)
{
	char path[96];
	const char *name = config_setting_name(g);
	snprintf(path, sizeof(path), "presets.%s", name != NULL ? name : "?");
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
	p->title = get_string(l, g, "title", path, 1);
	p->rotation = get_string(l, g, "rotation", path, 1);
	p->basis = get_string(l, g, "basis", path, 0);
	p->charset_name = get_string(l, g, "charset", path, 1);
	const config_setting_t *st = get_list(l, g, "standards", path, 0);
	for (int i = 0; st != NULL && i < config_setting_length(st); i++) {
		char **grown = realloc(p->standards, (p->nstandards + 1) * sizeof(char *));
		if (grown == NULL)
			break;
		p->standards = grown;
		p->standards[p->nstandards++] = strdup(config_setting_get_string_elem(st, i));
	}
	p->types = get_bits(l, g, "types", path, cs_type_parse, 0);
	p->classes = get_bits(l, g, "classes", path, class_bit, 1);
	p->min_length = get_int(l, g, "min_length", path, 4, 256);
	p->default_length = get_int(l, g, "default_length", path, 4, 256);
	p->strength_bits = get_int(l, g, "strength_bits", path, CS_STRENGTH_FLOOR, 256);
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
	cs_string_spec spec = {p->charset, (size_t)p->min_length, p->classes};
	if (cs_spec_check(&spec) != CS_OK)
		perr(l, g, path, "the required classes are not all in charset '%s'", p->charset_name);
	else if (p->default_length < p->min_length)
		perr(l, config_setting_get_member(g, "default_length"), path,
		     "default_length is below min_length");
	else
		canonicalize(p, file_version);
}

cs_err cs_presets_load(const char *path, cs_preset_set **out, cs_config_diag *diag)
{
	config_t lc;
	ploader l = {diag, path, 0};
	*out = NULL;
	memset(diag, 0, sizeof(*diag));
	cs_preset_set *set = calloc(1, sizeof(*set));
	if (set == NULL)
		return CS_E_NOMEM;
	config_init(&lc);
	if (config_read_file(&lc, path) != CONFIG_TRUE) {
		char msg[600];
		if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
			snprintf(msg, sizeof(msg), "%s: cannot read presets", path);
		else
			snprintf(msg, sizeof(msg), "%s:%d: syntax error: %s", path, config_error_line(&lc),
				 config_error_text(&lc));
		char **grown = realloc(diag->messages, (diag->count + 1) * sizeof(char *));
		if (grown != NULL) {
			diag->messages = grown;
			if ((grown[diag->count] = strdup(msg)) != NULL)
				diag->count++;
		}
		l.failed = 1;
		goto done;
	}
	const config_setting_t *root = config_root_setting(&lc);
	const config_setting_t *v = config_setting_get_member(root, "version");
	const config_setting_t *ps = config_setting_get_member(root, "presets");
	if (v == NULL || config_setting_type(v) != CONFIG_TYPE_INT || config_setting_get_int(v) < 1)
		perr(&l, v, "version", "expected a positive integer");
	else
		set->version = config_setting_get_int(v);
	if (ps == NULL || config_setting_type(ps) != CONFIG_TYPE_GROUP || config_setting_length(ps) == 0) {
		perr(&l, ps, "presets", "expected a non-empty group of presets");
		goto done;
	}
	set->count = (size_t)config_setting_length(ps);
	if ((set->items = calloc(set->count, sizeof(cs_preset))) == NULL)
		goto done;
	for (size_t i = 0; i < set->count; i++)
		load_one(&l, config_setting_get_elem(ps, (unsigned)i), &set->items[i], set->version);
done:
	config_destroy(&lc);
	if (l.failed || set->items == NULL) {
		cs_presets_free(set);
		return CS_E_CONFIG;
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
		free(p->charset_name);
		for (size_t k = 0; k < p->nstandards; k++)
			free(p->standards[k]);
		free(p->standards);
		json_decref(p->definition);
	}
	free(set->items);
	free(set);
}

const cs_preset *cs_preset_find(const cs_preset_set *set, const char *name)
{
	for (size_t i = 0; i < set->count; i++)
		if (strcmp(set->items[i].name, name) == 0)
			return &set->items[i];
	return NULL;
}
