/* policy: see policy.h. */
#include "policy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *cite_of(const cs_preset *p, const char *rule)
{
	const char *c = json_string_value(json_object_get(p->cites, rule));
	return c != NULL ? c : p->standards[0];
}

static void add_rule(json_t *rules, const char *id, const char *title, const char *text,
		     json_t *value, json_t *cites, json_t *from)
{
	json_t *r = json_pack("{s:s, s:s, s:s}", "id", id, "title", title, "rule", text);
	if (value != NULL)
		json_object_set_new(r, "value", value);
	json_object_set_new(r, "cites", cites != NULL ? cites : json_array());
	json_object_set_new(r, "from", from != NULL ? from : json_array());
	json_array_append_new(rules, r);
}

static json_t *strings(const char *a, const char *b)
{
	json_t *arr = json_array();
	if (a != NULL)
		json_array_append_new(arr, json_string(a));
	if (b != NULL)
		json_array_append_new(arr, json_string(b));
	return arr;
}

/* The enforced password minimum of a preset (0 if it has no passwords). */
static int password_min(const cs_preset *p, const cs_wordlist *wl)
{
	cs_plan_request q = {.type = CS_TYPE_PASSWORD};
	cs_plan plan;
	char why[256];
	if (!(p->types & CS_TYPE_PASSWORD) || cs_preset_plan(p, wl, &q, &plan, why, sizeof(why)) != CS_OK)
		return 0;
	return plan.min_length;
}

static void length_rules(json_t *rules, const cs_preset_set *set, const cs_wordlist *wl,
			 const cs_preset *const *sel, size_t n)
{
	const cs_preset *human = NULL, *service = NULL, *strongest = NULL;
	int human_len = 0, service_len = 0;
	char text[512];
	for (size_t i = 0; i < n; i++) {
		if (sel[i]->min_length > human_len) {
			human_len = sel[i]->min_length;
			human = sel[i];
		}
		int m = password_min(sel[i], wl);
		if (m > service_len) {
			service_len = m;
			service = sel[i];
		}
		if (strongest == NULL || sel[i]->strength_bits > strongest->strength_bits)
			strongest = sel[i];
	}
	snprintf(text, sizeof(text), "Passwords of human accounts: at least %d characters.", human_len);
	add_rule(rules, "length.human", "Minimum length: human accounts", text, json_integer(human_len),
		 strings(cite_of(human, "length"), NULL), strings(human->name, NULL));

	snprintf(text, sizeof(text),
		 "Passwords of service and application accounts: at least %d characters, generated, so "
		 "that each reaches %d bits of security strength with its character set.",
		 service_len, strongest->strength_bits);
	add_rule(rules, "length.service", "Minimum length: service accounts", text,
		 json_integer(service_len),
		 strings(cite_of(service, "length"), "NIST SP 800-131A Rev 2 (112-bit minimum strength)"),
		 strings(service->name, NULL));

	const cs_preset *db = cs_preset_find(set, "db-production");
	int db_len = db != NULL ? password_min(db, wl) : 0;
	if (db_len < service_len)
		db_len = service_len;
	snprintf(text, sizeof(text),
		 "Production database passwords: at least %d characters from a set that needs no "
		 "escaping in connection strings.",
		 db_len);
	add_rule(rules, "length.production-db", "Minimum length: production databases", text,
		 json_integer(db_len),
		 strings(db != NULL ? db->standards[0] : "credsign practice", cite_of(service, "length")),
		 strings("db-production", service->name));

	int bits = strongest->strength_bits;
	int base62 = (int)ceil(bits / log2(62.0));
	snprintf(text, sizeof(text),
		 "API keys and tokens: at least %d bits of entropy, i.e. %d base62 or %d hex characters.",
		 bits, base62, (bits + 3) / 4);
	add_rule(rules, "length.api-key", "Minimum length: API keys", text, json_integer(bits),
		 strings(cite_of(strongest, "length"), "NIST SP 800-57 Pt 1 Rev 5 5.6.1 (security strength)"),
		 strings(strongest->name, NULL));
}

static void class_and_run_rules(json_t *rules, const cs_preset *const *sel, size_t n)
{
	static const char *const names[] = {"upper", "lower", "digit", "special"};
	static const char *const words[] = {"an upper-case letter", "a lower-case letter", "a digit",
					    "a special character"};
	unsigned classes = 0, ident = 0, cls = 0;
	const cs_preset *ident_from = NULL, *cls_from = NULL;
	json_t *cites = json_array(), *from = json_array();
	for (size_t i = 0; i < n; i++) {
		if (sel[i]->classes != 0) {
			classes |= sel[i]->classes;
			json_array_append_new(cites, json_string(cite_of(sel[i], "classes")));
			json_array_append_new(from, json_string(sel[i]->name));
		}
		if (sel[i]->max_identical_run && (!ident || sel[i]->max_identical_run < ident)) {
			ident = sel[i]->max_identical_run;
			ident_from = sel[i];
		}
		if (sel[i]->max_class_run && (!cls || sel[i]->max_class_run < cls)) {
			cls = sel[i]->max_class_run;
			cls_from = sel[i];
		}
	}
	char text[512] = "Passwords contain at least ";
	json_t *value = json_array();
	int count = 0;
	for (int k = 0; k < 4; k++)
		if (classes & (1u << k)) {
			json_array_append_new(value, json_string(names[k]));
			count++;
		}
	if (count == 0) {
		add_rule(rules, "classes", "Character classes",
			 "No composition rules: length and randomness give the strength.", json_array(),
			 cites, from);
		json_decref(value);
	} else {
		int written = 0;
		for (int k = 0; k < 4; k++)
			if (classes & (1u << k)) {
				strcat(text, written == 0 ? "" : (written == count - 1 ? " and " : ", "));
				strcat(text, words[k]);
				written++;
			}
		strcat(text, count == 4 ? " (all four classes)." : ".");
		add_rule(rules, "classes", "Character classes", text, value, cites, from);
	}
	if (ident || cls) {
		snprintf(text, sizeof(text),
			 "Passwords have no more than %u identical characters in a row and no more than "
			 "%u characters of one class in a row.",
			 ident, cls);
		add_rule(rules, "runs", "Repeated characters", text,
			 json_pack("{s:i, s:i}", "max_identical_run", ident, "max_class_run", cls),
			 strings(ident_from != NULL ? cite_of(ident_from, "runs") : NULL,
				 cls_from != NULL && cls_from != ident_from ? cite_of(cls_from, "runs") : NULL),
			 strings(ident_from != NULL ? ident_from->name : cls_from->name, NULL));
	}
}

static void rotation_rules(json_t *rules, const cs_preset *const *sel, size_t n)
{
	const cs_preset *shortest = NULL;
	char text[512];
	for (size_t i = 0; i < n; i++)
		if (sel[i]->rotation_days && (shortest == NULL || sel[i]->rotation_days < shortest->rotation_days))
			shortest = sel[i];
	if (shortest != NULL) {
		snprintf(text, sizeof(text),
			 "Privileged and service credentials: rotate at least every %d days, and "
			 "immediately on suspected compromise; generate every replacement with a new "
			 "certificate.",
			 shortest->rotation_days);
		add_rule(rules, "rotation.privileged", "Rotation: privileged accounts", text,
			 json_integer(shortest->rotation_days), strings(cite_of(shortest, "rotation"), NULL),
			 strings(shortest->name, NULL));
	} else {
		add_rule(rules, "rotation.privileged", "Rotation: privileged accounts",
			 "No maximum lifetime is required by the selected standards: rotate on suspected "
			 "compromise, on staff change, and per the frameworks below.",
			 NULL, json_array(), json_array());
	}
	for (size_t i = 0; i < n; i++) {
		char id[96], title[160];
		snprintf(id, sizeof(id), "rotation.%s", sel[i]->name);
		snprintf(title, sizeof(title), "Rotation: %s", sel[i]->title);
		add_rule(rules, id, title, sel[i]->rotation,
			 sel[i]->rotation_days ? json_integer(sel[i]->rotation_days) : NULL,
			 strings(cite_of(sel[i], "rotation"), NULL), strings(sel[i]->name, NULL));
	}
}

/* A policy text from the presets file, with its cites. */
static void text_rule(json_t *rules, const json_t *entry, const char *id, const char *title,
		      const char *from)
{
	const char *text = json_string_value(json_object_get(entry, "text"));
	if (text == NULL)
		return;
	json_t *cites = json_object_get(entry, "cites");
	add_rule(rules, id, title, text, NULL, cites != NULL ? json_deep_copy(cites) : json_array(),
		 strings(from, NULL));
}

static void framework_rules(json_t *rules, const json_t *group, const char *kind, const char *title,
			    const cs_preset *const *sel, size_t n)
{
	char id[96];
	snprintf(id, sizeof(id), "%s", kind);
	text_rule(rules, json_object_get(group, "default"), id, title, NULL);
	for (size_t i = 0; i < n; i++) {
		const json_t *e = json_object_get(group, sel[i]->name);
		if (e == NULL)
			continue;
		snprintf(id, sizeof(id), "%s.%s", kind, sel[i]->name);
		text_rule(rules, e, id, title, sel[i]->name);
	}
}

cs_err cs_policy_build(const cs_preset_set *set, const cs_wordlist *wl, const cs_preset *const *sel,
		       size_t count, json_t **out, char *why, size_t why_len)
{
	*out = NULL;
	if (count == 0 || count > CS_POLICY_STANDARDS_MAX) {
		snprintf(why, why_len, "name 1 to %d standards (presets)", CS_POLICY_STANDARDS_MAX);
		return CS_E_INVALID_ARG;
	}
	json_t *standards = json_array();
	for (size_t i = 0; i < count; i++) {
		for (size_t k = 0; k < i; k++)
			if (sel[k] == sel[i]) {
				/* a second copy would repeat its rules */
				snprintf(why, why_len, "standard '%s' is named twice", sel[i]->name);
				json_decref(standards);
				return CS_E_INVALID_ARG;
			}
		json_array_append_new(standards, json_string(sel[i]->name));
	}
	json_t *rules = json_array();
	length_rules(rules, set, wl, sel, count);
	class_and_run_rules(rules, sel, count);
	const cs_preset *strongest = sel[0];
	for (size_t i = 1; i < count; i++)
		if (sel[i]->strength_bits > strongest->strength_bits)
			strongest = sel[i];
	char text[256];
	snprintf(text, sizeof(text), "Every credential has at least %d bits of security strength.",
		 strongest->strength_bits);
	add_rule(rules, "strength", "Security strength", text, json_integer(strongest->strength_bits),
		 strings("NIST SP 800-57 Pt 1 Rev 5 5.6.1", "NIST SP 800-131A Rev 2 (112-bit floor)"),
		 strings(strongest->name, NULL));
	text_rule(rules, json_object_get(set->policy, "generation"), "generation",
		  "Generation method and entropy source", NULL);
	text_rule(rules, json_object_get(set->policy, "storage"), "storage", "Storage", NULL);
	rotation_rules(rules, sel, count);
	framework_rules(rules, json_object_get(set->policy, "offboarding"), "offboarding", "Off-boarding",
			sel, count);
	framework_rules(rules, json_object_get(set->policy, "evidence"), "evidence", "Evidence to keep",
			sel, count);
	*out = json_pack("{s:o, s:i, s:o}", "standards", standards, "presets_version", set->version,
			 "rules", rules);
	return *out != NULL ? CS_OK : CS_E_NOMEM;
}

char *cs_policy_markdown(const json_t *policy)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (f == NULL)
		return NULL;
	fprintf(f, "# Credential policy\n\nStandards: ");
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(policy, "standards"), i, v)
		fprintf(f, "%s%s", i ? ", " : "", json_string_value(v));
	fprintf(f, " (presets version %lld). Where the standards differ, the strictest value applies.\n",
		(long long)json_integer_value(json_object_get(policy, "presets_version")));
	const char *last_title = NULL;
	json_array_foreach(json_object_get(policy, "rules"), i, v) {
		const char *title = json_string_value(json_object_get(v, "title"));
		if (last_title == NULL || strcmp(title, last_title) != 0)
			fprintf(f, "\n## %s\n\n", title);
		last_title = title;
		fprintf(f, "- %s", json_string_value(json_object_get(v, "rule")));
		size_t k;
		json_t *c;
		json_t *cites = json_object_get(v, "cites");
		if (json_array_size(cites) > 0) {
			fprintf(f, " _Source: ");
			json_array_foreach(cites, k, c)
				fprintf(f, "%s%s", k ? "; " : "", json_string_value(c));
			fprintf(f, "._");
		}
		fprintf(f, "\n");
	}
	fclose(f);
	return buf;
}
