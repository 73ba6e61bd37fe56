/* policy: see policy.h. */
#include "policy.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

/* ---- standards and what may be cited ------------------------------------------ */

/* Families of standards, recognized in citation and preset text. */
enum {
	F_NIST63 = 1u << 0,
	F_PCI = 1u << 1,
	F_HIPAA = 1u << 2,
	F_SOC2 = 1u << 3,
	F_ISO = 1u << 4,
	F_CIS = 1u << 5,
	F_FIPS = 1u << 6,
	F_DISA = 1u << 7,
	F_REF = 1u << 8, /* NIST references of the appliance itself: always citable */
};

static const struct {
	unsigned family;
	const char *needle;
} needles[] = {
	{F_NIST63, "800-63"},     {F_PCI, "PCI DSS"},       {F_HIPAA, "45 CFR"},
	{F_HIPAA, "HIPAA"},       {F_SOC2, "AICPA"},        {F_SOC2, "SOC 2"},
	{F_ISO, "ISO/IEC 2700"},  {F_CIS, "CIS Controls"},  {F_FIPS, "FIPS 140"},
	{F_DISA, "DISA"},         {F_DISA, "STIG"},         {F_DISA, "SRG-OS"},
	{F_DISA, "DoDI"},         {F_REF, "SP 800-57"},     {F_REF, "SP 800-131A"},
	{F_REF, "SP 800-90A"},
};

#define NIST_BAN "NIST SP 800-63B-4 3.1.1.2"
#define PRACTICE_CITE "organisation practice (none of the chosen standards sets this rule)"

static const char *const references[] = {
	"NIST SP 800-57 Pt 1 Rev 5 5.6.1 (security strength)",
	"NIST SP 800-131A Rev 2 (112-bit minimum security strength)",
	"NIST SP 800-90A Rev 1 (deterministic random bit generators)",
};

typedef struct {
	const cs_preset_set *set;
	const cs_wordlist *wl;
	const cs_preset *const *sel;
	size_t n;
	unsigned chosen;       /* families the chosen presets name in their standards, and F_REF */
	const cs_preset *nist; /* chosen, and forbids composition rules (SP 800-63B-4); or NULL */
} ctx;

static unsigned families_of(const char *text)
{
	unsigned f = 0;
	for (size_t i = 0; text != NULL && i < sizeof(needles) / sizeof(needles[0]); i++)
		if (strstr(text, needles[i].needle) != NULL)
			f |= needles[i].family;
	return f;
}

static int name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
	       c == '_' || c == '.';
}

/* Does text name the preset `name` (as a whole word)? */
static int names_preset(const char *text, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = strstr(text, name); p != NULL; p = strstr(p + 1, name))
		if ((p == text || !name_char(p[-1])) && !name_char(p[n]) &&
		    !(p[n] == '.' && name_char(p[n + 1])))
			return 1;
	return 0;
}

static int is_chosen(const ctx *c, const cs_preset *p)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->sel[i] == p)
			return 1;
	return 0;
}

/* May the policy say this? Not when it names a standard or preset that
 * was not chosen. */
static int allowed(const ctx *c, const char *text)
{
	if (text == NULL || (families_of(text) & ~c->chosen) != 0)
		return 0;
	for (size_t i = 0; i < c->set->count; i++)
		if (!is_chosen(c, &c->set->items[i]) && names_preset(text, c->set->items[i].name))
			return 0;
	return 1;
}

static unsigned families_of_preset(const cs_preset *p)
{
	unsigned f = 0;
	for (size_t k = 0; k < p->nstandards; k++)
		f |= families_of(p->standards[k]);
	return f;
}

static const char *cite_of(const cs_preset *p, const char *rule)
{
	const char *c = json_string_value(json_object_get(p->cites, rule));
	return c != NULL ? c : p->standards[0];
}

/* A rule the standard itself sets, or a number it leaves open that the
 * preset fills with practice or the appliance's own choice? */
static int is_requirement(const char *cite)
{
	return strstr(cite, "practice") == NULL && strstr(cite, "choice") == NULL &&
	       strstr(cite, "no number") == NULL && strstr(cite, "see ") != cite;
}

/* Append cite to arr when it may be cited and is not there yet. */
static void cite_add(const ctx *c, json_t *arr, const char *cite)
{
	if (cite == NULL || !allowed(c, cite))
		return;
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v)
		if (strcmp(json_string_value(v), cite) == 0)
			return;
	json_array_append_new(arr, json_string(cite));
}

/* A citation list of up to three citations, each filtered. */
static json_t *cites3(const ctx *c, const char *a, const char *b, const char *d)
{
	json_t *arr = json_array();
	cite_add(c, arr, a);
	cite_add(c, arr, b);
	cite_add(c, arr, d);
	return arr;
}

static json_t *names1(const char *a)
{
	json_t *arr = json_array();
	if (a != NULL)
		json_array_append_new(arr, json_string(a));
	return arr;
}

static json_t *jfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *jfmt(const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	json_t *j = json_string(s);
	free(s);
	return j;
}

/* Titles of presets as "A, B and C" into out. */
static void titles(char *out, size_t cap, const cs_preset *const *list, size_t n)
{
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(out);
		snprintf(out + len, cap - len, "%s%s", i == 0 ? "" : (i == n - 1 ? " and " : ", "),
			 list[i]->title);
	}
}

/* A rule; cites (consumed) are filtered already; an empty list gets the
 * practice citation, so every rule names its source. */
static void add_rule(json_t *rules, const char *id, const char *title, const char *accounts,
		     json_t *text, json_t *value, json_t *cites, json_t *from)
{
	if (json_array_size(cites) == 0)
		json_array_append_new(cites, json_string(PRACTICE_CITE));
	json_t *r = json_pack("{s:s, s:s, s:s, s:o}", "id", id, "title", title, "accounts", accounts,
			      "rule", text);
	if (r == NULL) {
		json_decref(value);
		json_decref(cites);
		json_decref(from);
		return;
	}
	if (value != NULL)
		json_object_set_new(r, "value", value);
	json_object_set_new(r, "cites", cites);
	json_object_set_new(r, "from", from != NULL ? from : json_array());
	json_array_append_new(rules, r);
}

/* ---- length --------------------------------------------------------------------- */

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

static const cs_preset *strongest_of(const ctx *c)
{
	const cs_preset *s = c->sel[0];
	for (size_t i = 1; i < c->n; i++)
		if (c->sel[i]->strength_bits > s->strength_bits)
			s = c->sel[i];
	return s;
}

static void length_rules(const ctx *c, json_t *rules)
{
	const cs_preset *human = NULL, *service = NULL, *other = NULL, *db = NULL;
	int human_len = 0, service_len = 0, other_len = 0, db_len = 0;
	for (size_t i = 0; i < c->n; i++) {
		const cs_preset *p = c->sel[i];
		if (p->min_length > human_len) {
			human_len = p->min_length;
			human = p;
		}
		if (p != c->nist && p->min_length > other_len) {
			other_len = p->min_length;
			other = p;
		}
		int m = password_min(p, c->wl);
		/* on a tie, cite a standard that governs service accounts */
		if (m > service_len || (m > 0 && m == service_len && service == c->nist)) {
			service_len = m;
			service = p;
		}
		if (p->charset_name != NULL && strcmp(p->charset_name, "db-safe") == 0 && m > db_len) {
			db_len = m;
			db = p;
		}
	}
	const cs_preset *strongest = strongest_of(c);
	add_rule(rules, "length.human", "Minimum length: human accounts", "human",
		 jfmt("Passwords of human accounts: at least %d characters.", human_len),
		 json_integer(human_len), cites3(c, cite_of(human, "length"), NULL, NULL),
		 names1(human->name));
	if (c->nist != NULL) {
		int mfa = other_len > 8 ? other_len : 8;
		add_rule(rules, "length.human.mfa", "Minimum length: human accounts", "human",
			 jfmt("A password that is one factor of multi-factor authentication: at least %d "
			      "characters.",
			      mfa),
			 json_integer(mfa),
			 cites3(c, NIST_BAN " (8 characters for a password used with another factor)",
				mfa > 8 ? cite_of(other, "length") : NULL, NULL),
			 names1(mfa > 8 ? other->name : c->nist->name));
		add_rule(rules, "length.maximum", "Maximum length: human accounts", "human",
			 json_string("Systems that verify human passwords accept passwords of at least 64 "
				     "characters and verify the whole password, never a truncated one."),
			 json_integer(64),
			 cites3(c, NIST_BAN " (maximum length of at least 64; no truncation)", NULL, NULL),
			 names1(c->nist->name));
	}
	if (service != NULL)
		add_rule(rules, "length.service", "Minimum length: service accounts", "service",
			 jfmt("Passwords of service, system and application accounts: at least %d "
			      "characters, generated, so that each reaches %d bits of security strength "
			      "with its character set.",
			      service_len, strongest->strength_bits),
			 json_integer(service_len),
			 cites3(c, cite_of(service, "length"),
				"NIST SP 800-131A Rev 2 (112-bit minimum strength)", NULL),
			 names1(service->name));
	if (db != NULL) {
		int len = db_len > service_len ? db_len : service_len;
		add_rule(rules, "length.database", "Minimum length: databases", "service",
			 jfmt("Database passwords: at least %d characters, generated under the %s preset "
			      "(its character set is listed in GET /api/presets).",
			      len, db->name),
			 json_integer(len),
			 cites3(c, db->standards[0], len > db_len ? cite_of(service, "length") : NULL, NULL),
			 names1(len > db_len ? service->name : db->name));
	}
	int bits = strongest->strength_bits;
	int base62 = (int)ceil(bits / log2(62.0));
	add_rule(rules, "length.api-key", "Minimum length: API keys", "service",
		 jfmt("API keys and tokens: at least %d bits of entropy, i.e. %d base62 or %d hex "
		      "characters.",
		      bits, base62, (bits + 3) / 4),
		 json_integer(bits),
		 cites3(c, cite_of(strongest, "length"),
			"NIST SP 800-57 Pt 1 Rev 5 5.6.1 (security strength)", NULL),
		 names1(strongest->name));
}

/* ---- composition: classes and run limits ----------------------------------------- */

typedef struct {
	unsigned classes, ident, cls;
	const cs_preset *ident_from, *cls_from;
	const cs_preset *need[CS_POLICY_STANDARDS_MAX];     /* presets with composition rules */
	size_t nneed;
	const cs_preset *binding[CS_POLICY_STANDARDS_MAX];  /* ... that their standard requires */
	size_t nbinding;
	const cs_preset *practice[CS_POLICY_STANDARDS_MAX]; /* ... set as practice or choice */
	size_t npractice;
} composition;

static void composition_of(const ctx *c, composition *k)
{
	memset(k, 0, sizeof(*k));
	for (size_t i = 0; i < c->n; i++) {
		const cs_preset *p = c->sel[i];
		if (p->max_identical_run && (!k->ident || p->max_identical_run < k->ident)) {
			k->ident = p->max_identical_run;
			k->ident_from = p;
		}
		if (p->max_class_run && (!k->cls || p->max_class_run < k->cls)) {
			k->cls = p->max_class_run;
			k->cls_from = p;
		}
		if (p->classes == 0 && !p->max_identical_run && !p->max_class_run)
			continue;
		k->classes |= p->classes;
		k->need[k->nneed++] = p;
		if (is_requirement(cite_of(p, "classes")) && allowed(c, cite_of(p, "classes")))
			k->binding[k->nbinding++] = p;
		else
			k->practice[k->npractice++] = p;
	}
}

static void class_words(unsigned classes, char *out, size_t cap, json_t *value)
{
	static const char *const names[] = {"upper", "lower", "digit", "special"};
	static const char *const words[] = {"an upper-case letter", "a lower-case letter", "a digit",
					    "a special character"};
	int count = 0, written = 0;
	for (int b = 0; b < 4; b++)
		count += (int)((classes >> b) & 1u);
	out[0] = '\0';
	for (int b = 0; b < 4; b++)
		if (classes & (1u << b)) {
			size_t len = strlen(out);
			snprintf(out + len, cap - len, "%s%s",
				 written == 0 ? "" : (written == count - 1 ? " and " : ", "), words[b]);
			written++;
			if (value != NULL)
				json_array_append_new(value, json_string(names[b]));
		}
	if (count == 4) {
		size_t len = strlen(out);
		snprintf(out + len, cap - len, " (all four classes)");
	}
}

static void class_and_run_rules(const ctx *c, const composition *k, json_t *rules)
{
	int conflict = c->nist != NULL && k->nneed > 0;
	char words[256];
	json_t *cites = json_array(), *from = json_array();
	for (size_t i = 0; i < k->nneed; i++) {
		if (k->need[i]->classes == 0)
			continue;
		cite_add(c, cites, cite_of(k->need[i], "classes"));
		json_array_append_new(from, json_string(k->need[i]->name));
	}
	if (conflict) {
		char btitles[1024] = "";
		titles(btitles, sizeof(btitles), k->binding, k->nbinding);
		json_t *hc = cites3(c, NIST_BAN " (no composition rules)", NULL, NULL);
		for (size_t i = 0; i < k->nbinding; i++)
			cite_add(c, hc, cite_of(k->binding[i], "classes"));
		add_rule(rules, "classes.human", "Character classes", "human",
			 k->nbinding == 0
				 ? json_string("Human accounts: no composition rules (no required character "
					       "classes, no run limits).")
				 : jfmt("Human accounts: no composition rules (no required character classes, "
					"no run limits), except on systems in the scope of %s, where that "
					"standard's composition rules apply (a standing exception, see "
					"Exceptions).",
					btitles),
			 json_array(), hc, names1(c->nist->name));
	}
	if (k->classes == 0) {
		if (!conflict)
			add_rule(rules, "classes", "Character classes", "all",
				 json_string("No composition rules: length and randomness give the strength."),
				 json_array(),
				 c->nist != NULL ? cites3(c, NIST_BAN " (no composition rules)", NULL, NULL)
						 : json_array(),
				 c->nist != NULL ? names1(c->nist->name) : json_array());
		json_decref(cites);
		json_decref(from);
	} else {
		json_t *value = json_array();
		class_words(k->classes, words, sizeof(words), value);
		add_rule(rules, conflict ? "classes.service" : "classes", "Character classes",
			 conflict ? "service" : "all",
			 jfmt("%s contain at least %s.",
			      conflict ? "Passwords of service, system and application accounts" : "Passwords",
			      words),
			 value, cites, from);
	}
	if (k->ident || k->cls) {
		const cs_preset *a = k->ident_from != NULL ? k->ident_from : k->cls_from;
		json_t *text;
		if (k->ident && k->cls)
			text = jfmt("Passwords%s have no more than %u identical characters in a row and no "
				    "more than %u characters of one class in a row.",
				    conflict ? " of service, system and application accounts" : "", k->ident,
				    k->cls);
		else if (k->ident)
			text = jfmt("Passwords%s have no more than %u identical characters in a row.",
				    conflict ? " of service, system and application accounts" : "", k->ident);
		else
			text = jfmt("Passwords%s have no more than %u characters of one class in a row.",
				    conflict ? " of service, system and application accounts" : "", k->cls);
		add_rule(rules, "runs", "Repeated characters", conflict ? "service" : "all", text,
			 json_pack("{s:i, s:i}", "max_identical_run", (int)k->ident, "max_class_run",
				   (int)k->cls),
			 cites3(c, k->ident_from != NULL ? cite_of(k->ident_from, "runs") : NULL,
				k->cls_from != NULL ? cite_of(k->cls_from, "runs") : NULL, NULL),
			 names1(a->name));
	}
}

/* ---- rotation --------------------------------------------------------------------- */

typedef struct {
	const cs_preset *shortest; /* the shortest maximum lifetime, or NULL */
	int pci;                   /* PCI DSS chosen: 8.3.9 and 8.6.3 */
	int binding;               /* shortest's lifetime is its standard's requirement */
} rotation;

static void rotation_of(const ctx *c, rotation *r)
{
	memset(r, 0, sizeof(*r));
	for (size_t i = 0; i < c->n; i++)
		if (c->sel[i]->rotation_days && allowed(c, cite_of(c->sel[i], "rotation")) &&
		    (r->shortest == NULL || c->sel[i]->rotation_days < r->shortest->rotation_days))
			r->shortest = c->sel[i];
	r->pci = (c->chosen & F_PCI) != 0;
	r->binding = r->shortest != NULL && is_requirement(cite_of(r->shortest, "rotation"));
}

static int rotation_conflict(const ctx *c, const rotation *r)
{
	return c->nist != NULL && (r->shortest != NULL || r->pci);
}

static void rotation_rules(const ctx *c, const rotation *r, json_t *rules)
{
	int conflict = rotation_conflict(c, r);
	if (r->shortest != NULL) {
		add_rule(rules, "rotation.privileged", "Rotation: service and privileged accounts",
			 conflict ? "service" : "all",
			 jfmt("%s: rotate at least every %d days, and immediately on suspected "
			      "compromise; generate every replacement with a new certificate.",
			      conflict ? "Service, system and application credentials"
				       : "Privileged and service credentials",
			      r->shortest->rotation_days),
			 json_integer(r->shortest->rotation_days),
			 cites3(c, cite_of(r->shortest, "rotation"), NULL, NULL),
			 names1(r->shortest->name));
	} else {
		add_rule(rules, "rotation.privileged", "Rotation: service and privileged accounts", "all",
			 json_string("No maximum lifetime is required by the selected standards: rotate on "
				     "suspected compromise, on staff change, and per the frameworks below."),
			 NULL, json_array(), json_array());
	}
	for (size_t i = 0; i < c->n; i++) {
		const cs_preset *p = c->sel[i];
		char id[96], title[160];
		snprintf(id, sizeof(id), "rotation.%s", p->name);
		snprintf(title, sizeof(title), "Rotation: %s", p->title);
		const char *accounts = "all";
		if (conflict)
			accounts = p == c->nist ? "human" : "service";
		const char *cite = cite_of(p, "rotation");
		if (allowed(c, p->rotation) && allowed(c, cite))
			add_rule(rules, id, title, accounts, json_string(p->rotation),
				 p->rotation_days ? json_integer(p->rotation_days) : NULL,
				 cites3(c, cite, NULL, NULL), names1(p->name));
		else /* e.g. "per the applicable STIG" when no STIG was chosen */
			add_rule(rules, id, title, accounts,
				 jfmt("%s: its own rotation guidance refers to a standard that was not "
				      "chosen and is left out; change credentials on suspected compromise.",
				      p->title),
				 NULL, json_array(), names1(p->name));
	}
}

/* ---- rules the standards set beyond the presets' numbers ------------------------ */

typedef struct {
	unsigned family;
	const char *id, *title, *accounts;
	int value;
	const char *text;
	const char *text_with_nist; /* when SP 800-63B-4 is chosen too; NULL: text */
	const char *cite;
} extra_rule;

static const extra_rule extra_rules[] = {
	{F_DISA, "history.srg", "Password history", "all", 5,
	 "A new password may not repeat any of the account's last 5 passwords.", NULL,
	 "DISA GPOS SRG SRG-OS-000077-GPOS-00045 (reuse prohibited for 5 generations)"},
	{F_PCI, "history.pci", "Password history", "human", 4,
	 "A new password may not equal any of the account's last 4 passwords.", NULL,
	 "PCI DSS v4.0.1 8.3.7 (not the same as any of the last four)"},
	{F_DISA, "lifetime.minimum", "Minimum password lifetime", "all", 24,
	 "A user may not change a password again within 24 hours of its last change.", NULL,
	 "DISA GPOS SRG SRG-OS-000075-GPOS-00043 (24 hours minimum lifetime)"},
	{F_DISA, "changed-characters", "Changed characters", "all", 8,
	 "A new password differs from the one it replaces in at least 8 characters.", NULL,
	 "DISA RHEL 9 STIG pwquality difok = 8 (SRG-OS-000072-GPOS-00040)"},
	{F_DISA, "lockout.srg", "Lockout", "all", 3,
	 "After 3 consecutive invalid logon attempts within 15 minutes, the account is locked until "
	 "an administrator releases it.",
	 NULL, "DISA GPOS SRG SRG-OS-000021-GPOS-00005, SRG-OS-000329-GPOS-00128"},
	{F_PCI, "lockout.pci", "Lockout", "all", 10,
	 "After at most 10 invalid authentication attempts, the user ID is locked out for at least 30 "
	 "minutes or until the user's identity is confirmed.",
	 NULL, "PCI DSS v4.0.1 8.3.4 (at most 10 attempts; at least 30 minutes)"},
	{F_PCI, "password-only", "Password-only accounts", "human", 90,
	 "Where a password is the only factor of a user's access, it is changed at least once every "
	 "90 days, or the account's security posture is analysed dynamically and access to resources "
	 "is decided from it in real time.",
	 "Where a password would be the only factor of a user's access, the account uses multi-factor "
	 "authentication, or its security posture is analysed dynamically and access to resources is "
	 "decided from it in real time; the 90-day change that 8.3.9 also allows is not used, because "
	 "SP 800-63B-4 forbids periodic changes (see Conflicts).",
	 "PCI DSS v4.0.1 8.3.9 (90-day change or dynamic analysis for password-only accounts)"},
	{F_NIST63, "blocklist", "Blocklist", "human", 0,
	 "Systems that set human passwords compare each new password with a list of commonly used, "
	 "expected or compromised passwords and refuse a match.",
	 NULL, NIST_BAN " (blocklist)"},
};

static json_t *presets_of_family(const ctx *c, unsigned family)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < c->n; i++)
		if (families_of_preset(c->sel[i]) & family)
			json_array_append_new(arr, json_string(c->sel[i]->name));
	return arr;
}

static void extra_rules_add(const ctx *c, json_t *rules)
{
	for (size_t i = 0; i < sizeof(extra_rules) / sizeof(extra_rules[0]); i++) {
		const extra_rule *e = &extra_rules[i];
		if (!(c->chosen & e->family))
			continue;
		int with_nist = c->nist != NULL && e->text_with_nist != NULL;
		add_rule(rules, e->id, e->title, e->accounts,
			 json_string(with_nist ? e->text_with_nist : e->text),
			 e->value ? json_integer(e->value) : NULL,
			 cites3(c, e->cite, with_nist ? NIST_BAN " (no periodic changes)" : NULL, NULL),
			 presets_of_family(c, e->family));
	}
}

/* ---- texts of the presets file ------------------------------------------------------ */

static void text_rule(const ctx *c, json_t *rules, const json_t *entry, const char *id,
		      const char *title, const char *from)
{
	const char *text = json_string_value(json_object_get(entry, "text"));
	if (text == NULL || !allowed(c, text))
		return;
	json_t *cites = json_array();
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(entry, "cites"), i, v)
		cite_add(c, cites, json_string_value(v));
	add_rule(rules, id, title, "all", json_string(text), NULL, cites, names1(from));
}

static void framework_rules(const ctx *c, json_t *rules, const json_t *group, const char *kind,
			    const char *title)
{
	char id[96];
	text_rule(c, rules, json_object_get(group, "default"), kind, title, NULL);
	for (size_t i = 0; i < c->n; i++) {
		const json_t *e = json_object_get(group, c->sel[i]->name);
		if (e == NULL)
			continue;
		snprintf(id, sizeof(id), "%s.%s", kind, c->sel[i]->name);
		text_rule(c, rules, e, id, title, c->sel[i]->name);
	}
}

/* ---- conflicts ----------------------------------------------------------------------- */

static json_t *resolution(json_t *rule, json_t *cites)
{
	return json_pack("{s:o, s:o}", "rule", rule, "cites", cites);
}

static void standing(json_t *list, const char *id, json_t *text, json_t *cites)
{
	json_array_append_new(list, json_pack("{s:s, s:o, s:o}", "id", id, "text", text, "cites", cites));
}

static void composition_conflict(const ctx *c, const composition *k, json_t *conflicts,
				 json_t *exceptions)
{
	if (c->nist == NULL || k->nneed == 0)
		return;
	char words[256], ptitles[1024], all[1024];
	char *statement = NULL;
	size_t slen = 0;
	FILE *f = open_memstream(&statement, &slen);
	if (f == NULL)
		return;
	json_t *cites = cites3(c, NIST_BAN " (no composition rules)", NULL, NULL);
	fprintf(f, "SP 800-63B-4 forbids composition rules for passwords (3.1.1.2)");
	for (size_t i = 0; i < k->nneed; i++) {
		const cs_preset *p = k->need[i];
		class_words(p->classes, words, sizeof(words), NULL);
		fprintf(f, "; %s sets ", p->title);
		if (p->classes)
			fprintf(f, "%s", words);
		if (p->max_identical_run || p->max_class_run)
			fprintf(f, "%srun limits", p->classes ? " and " : "");
		const char *cite = cite_of(p, p->classes ? "classes" : "runs");
		if (allowed(c, cite))
			fprintf(f, " (%s)", cite);
		cite_add(c, cites, cite);
	}
	fprintf(f, ".");
	fclose(f);

	json_t *hc = cites3(c, NIST_BAN " (no composition rules)", NULL, NULL);
	char *human = NULL;
	size_t hlen = 0;
	f = open_memstream(&human, &hlen);
	if (f == NULL) {
		free(statement);
		json_decref(cites);
		json_decref(hc);
		return;
	}
	fprintf(f, "Human accounts follow SP 800-63B-4: no composition rules (no required character "
		   "classes, no run limits).");
	if (k->npractice > 0) {
		titles(ptitles, sizeof(ptitles), k->practice, k->npractice);
		fprintf(f, " The composition rules of %s are practice or this appliance's choice, not a "
			   "requirement of the standard, and yield.",
			ptitles);
		for (size_t i = 0; i < k->npractice; i++)
			cite_add(c, hc, cite_of(k->practice[i], "classes"));
	}
	if (k->nbinding > 0) {
		titles(ptitles, sizeof(ptitles), k->binding, k->nbinding);
		fprintf(f, " Exception: on systems in the scope of %s, whose assessors test these rules "
			   "as requirements, human account passwords meet them too; each such system is a "
			   "standing exception to SP 800-63B-4 3.1.1.2 (see Exceptions).",
			ptitles);
		for (size_t i = 0; i < k->nbinding; i++) {
			const cs_preset *p = k->binding[i];
			char id[96];
			cite_add(c, hc, cite_of(p, "classes"));
			class_words(p->classes, words, sizeof(words), NULL);
			snprintf(id, sizeof(id), "composition.%s", p->name);
			standing(exceptions, id,
				 jfmt("Human accounts on systems in the scope of %s: passwords contain %s%s, as "
				      "that standard requires, instead of following SP 800-63B-4's ban on "
				      "composition rules.",
				      p->title, p->classes ? words : "no long runs",
				      (p->max_identical_run || p->max_class_run) && p->classes
					      ? " and respect its run limits"
					      : ""),
				 cites3(c, cite_of(p, "classes"), NIST_BAN " (no composition rules)", NULL));
		}
	}
	fclose(f);

	titles(all, sizeof(all), k->need, k->nneed);
	class_words(k->classes, words, sizeof(words), NULL);
	json_t *sc = json_array();
	for (size_t i = 0; i < k->nneed; i++)
		cite_add(c, sc, cite_of(k->need[i], k->need[i]->classes ? "classes" : "runs"));
	json_t *service =
		jfmt("Service, system and application accounts meet every chosen composition rule%s%s%s. "
		     "SP 800-63B-4 sets rules for the passwords people choose and remember; these "
		     "credentials are generated by the appliance and stored, not memorised, so the rules "
		     "cost them nothing and satisfy %s.",
		     k->classes ? ": " : "", k->classes ? words : "",
		     (k->ident || k->cls) ? (k->classes ? ", and the run limits" : ": the run limits") : "",
		     all);
	json_array_append_new(
		conflicts,
		json_pack("{s:s, s:s, s:s, s:o, s:{s:o, s:o}}", "id", "composition", "topic",
			  "Composition rules (character classes and run limits)", "statement", statement,
			  "cites", cites, "resolution", "human",
			  resolution(json_string(human), hc), "service", resolution(service, sc)));
	free(statement);
	free(human);
}

static void rotation_conflict_add(const ctx *c, const rotation *r, json_t *conflicts,
				  json_t *exceptions)
{
	if (!rotation_conflict(c, r))
		return;
	static const char pci[] =
		"PCI DSS v4.0.1 8.3.9 (90-day change or dynamic analysis for password-only accounts)";
	char *stmt = NULL, *human = NULL;
	size_t slen = 0, hlen = 0;
	FILE *fs = open_memstream(&stmt, &slen);
	FILE *fh = fs != NULL ? open_memstream(&human, &hlen) : NULL;
	if (fh == NULL) {
		if (fs != NULL)
			fclose(fs);
		free(stmt);
		return;
	}
	json_t *cites = cites3(c, NIST_BAN " (no periodic changes)", NULL, NULL);
	json_t *hc = cites3(c, NIST_BAN " (no periodic changes)", NULL, NULL);
	json_t *sc = json_array();
	fputs("SP 800-63B-4 forbids requiring periodic password changes (3.1.1.2)", fs);
	fputs("Human accounts: no periodic change; a change is forced on evidence of compromise "
	      "(SP 800-63B-4 3.1.1.2).",
	      fh);
	if (r->shortest != NULL) {
		const char *cite = cite_of(r->shortest, "rotation");
		fprintf(fs, "; %s sets a maximum lifetime of %d days (%s)", r->shortest->title,
			r->shortest->rotation_days, cite);
		cite_add(c, cites, cite);
		cite_add(c, sc, cite);
		if (r->binding) {
			char id[96];
			cite_add(c, hc, cite);
			fprintf(fh,
				" Exception: on systems in the scope of %s, the %d-day maximum lifetime "
				"applies to human accounts too; each such system is a standing exception to "
				"SP 800-63B-4 3.1.1.2 (see Exceptions).",
				r->shortest->title, r->shortest->rotation_days);
			snprintf(id, sizeof(id), "rotation.%s", r->shortest->name);
			standing(exceptions, id,
				 jfmt("Human accounts on systems in the scope of %s: passwords are changed at "
				      "least every %d days, as that standard requires, instead of following "
				      "SP 800-63B-4's ban on periodic changes.",
				      r->shortest->title, r->shortest->rotation_days),
				 cites3(c, cite, NIST_BAN " (no periodic changes)", NULL));
		}
	}
	if (r->pci) {
		fputs("; PCI DSS v4.0.1 8.3.9 requires a change at least every 90 days where a password "
		      "is the only factor of a user's access, unless the account's security posture is "
		      "analysed dynamically",
		      fs);
		cite_add(c, cites, pci);
		cite_add(c, hc, pci);
		fputs(" In the scope of PCI DSS, human accounts use multi-factor authentication, or "
		      "dynamic analysis of their security posture: the alternatives 8.3.9 allows, so its "
		      "90-day change does not arise.",
		      fh);
	}
	fputs(".", fs);
	int ok = fclose(fs) == 0;
	ok = fclose(fh) == 0 && ok;
	json_t *service;
	if (r->shortest != NULL)
		service = jfmt("Service, system and application accounts: rotate at least every %d days%s, "
			       "and immediately on suspected compromise. SP 800-63B-4's ban protects "
			       "passwords people must remember; a generated credential is replaced by a "
			       "new one from the appliance, so rotation does not weaken it.",
			       r->shortest->rotation_days,
			       r->pci ? " (or more often, where the targeted risk analysis of PCI DSS "
					"v4.0.1 8.6.3 sets a shorter period)"
				      : "");
	else
		service = json_string(
			"Service, system and application accounts: rotate as the targeted risk analysis of "
			"PCI DSS v4.0.1 8.6.3 and 12.3.1 sets, and immediately on suspected compromise. "
			"SP 800-63B-4's ban protects passwords people must remember; a generated credential "
			"is replaced by a new one from the appliance, so rotation does not weaken it.");
	if (r->pci)
		cite_add(c, sc, "PCI DSS v4.0.1 8.6.3, 12.3.1 (targeted risk analysis)");
	if (ok)
		json_array_append_new(
			conflicts,
			json_pack("{s:s, s:s, s:s, s:o, s:{s:o, s:o}}", "id", "rotation", "topic",
				  "Periodic password changes", "statement", stmt, "cites", cites,
				  "resolution", "human", resolution(json_string(human), hc), "service",
				  resolution(service, sc)));
	else {
		json_decref(cites);
		json_decref(hc);
		json_decref(sc);
		json_decref(service);
	}
	free(stmt);
	free(human);
}

/* ---- the document's other sections ---------------------------------------------------- */

static const struct {
	unsigned family;
	const char *cite;
} review_cites[] = {
	{F_PCI, "PCI DSS v4.0.1 12.1.2 (reviewed at least once every 12 months)"},
	{F_ISO, "ISO/IEC 27001:2022 A 5.1 (policies reviewed at planned intervals)"},
	{F_HIPAA, "45 CFR 164.316(b)(2)(iii) (review documentation periodically)"},
	{F_SOC2, "AICPA TSC CC5.3 (policies and procedures reassessed)"},
}, exception_cites[] = {
	{F_PCI, "PCI DSS v4.0.1 12.3.1 (targeted risk analysis)"},
	{F_ISO, "ISO/IEC 27001:2022 6.1.3 (risk treatment, risk owners' approval)"},
	{F_DISA, "DoDI 8510.01 (risk acceptance by the Authorizing Official)"},
};

static json_t *family_cites(const ctx *c, int review)
{
	json_t *arr = json_array();
	size_t n = review ? sizeof(review_cites) / sizeof(review_cites[0])
			  : sizeof(exception_cites) / sizeof(exception_cites[0]);
	for (size_t i = 0; i < n; i++) {
		unsigned fam = review ? review_cites[i].family : exception_cites[i].family;
		if (c->chosen & fam)
			cite_add(c, arr, review ? review_cites[i].cite : exception_cites[i].cite);
	}
	return arr;
}

static json_t *sections(void)
{
	return json_pack("[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}, {s:s, s:s}, {s:s, s:s}, {s:s, s:s}, "
			 "{s:s, s:s}, {s:s, s:s}, {s:s, s:s}]",
			 "id", "purpose", "title", "Purpose", "id", "scope", "title", "Scope", "id",
			 "roles", "title", "Roles and responsibilities", "id", "effective", "title",
			 "Effective date and version", "id", "requirements", "title", "Requirements",
			 "id", "conflicts", "title", "Conflicts between the standards", "id",
			 "exceptions", "title", "Exceptions", "id", "review", "title", "Review", "id",
			 "approval", "title", "Approval");
}

static json_t *frameworks(const ctx *c)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < c->n; i++) {
		json_t *req = json_array();
		for (size_t k = 0; k < c->sel[i]->nstandards; k++)
			cite_add(c, req, c->sel[i]->standards[k]);
		json_array_append_new(arr, json_pack("{s:s, s:s, s:o}", "preset", c->sel[i]->name, "title",
						     c->sel[i]->title, "requirements", req));
	}
	return arr;
}

/* date + months, the day kept or cut to the month's last ("YYYY-MM-DD"). */
static void add_months(const char *date, int months, char out[11])
{
	struct tm tm = {0};
	if (strptime(date, "%Y-%m-%d", &tm) == NULL) {
		out[0] = '\0';
		return;
	}
	int day = tm.tm_mday;
	tm.tm_mon += months;
	tm.tm_mday = 1;
	timegm(&tm); /* normalizes month and year */
	struct tm last = tm;
	last.tm_mon += 1;
	last.tm_mday = 0; /* the day before the 1st of the next month */
	timegm(&last);
	tm.tm_mday = day < last.tm_mday ? day : last.tm_mday;
	strftime(out, 11, "%Y-%m-%d", &tm);
}

static cs_err check_options(const cs_policy_options *o, char *why, size_t why_len)
{
	static const char *const names[] = {"organisation", "owner", "scope", "version"};
	const char *values[] = {o->organisation, o->owner, o->scope, o->version};
	for (size_t i = 0; i < 4; i++) {
		const char *problem = values[i] == NULL ? NULL
				      : cs_config_text_problem(values[i], i == 2 ? CS_POLICY_SCOPE_MAX
										 : CS_POLICY_TEXT_MAX);
		if (problem != NULL) {
			snprintf(why, why_len, "%s %s", names[i], problem);
			return CS_E_INVALID_ARG;
		}
	}
	if (o->effective_date != NULL && !cs_config_date_valid(o->effective_date)) {
		snprintf(why, why_len, "effective_date must be a date YYYY-MM-DD that exists");
		return CS_E_INVALID_ARG;
	}
	if (o->review_months < 0 || o->review_months > CS_POLICY_REVIEW_MONTHS_MAX) {
		snprintf(why, why_len, "review_months must be 1 to %d", CS_POLICY_REVIEW_MONTHS_MAX);
		return CS_E_INVALID_ARG;
	}
	return CS_OK;
}

/* SHA-256 (hex) of the compact, key-sorted JSON of the requirements. */
static cs_err content_digest(json_t *standards, int presets_version, json_t *conflicts, json_t *rules,
			     json_t *exceptions, char hex[65])
{
	json_t *req = json_pack("{s:O, s:i, s:O, s:O, s:O}", "standards", standards, "presets_version",
				presets_version, "conflicts", conflicts, "rules", rules, "exceptions",
				exceptions);
	char *text = req != NULL ? json_dumps(req, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(req);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	int ok = text != NULL && EVP_Digest(text, strlen(text), md, &len, EVP_sha256(), NULL) == 1 &&
		 len == 32;
	free(text);
	if (!ok)
		return CS_E_NOMEM;
	for (unsigned i = 0; i < len; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return CS_OK;
}

cs_err cs_policy_build_doc(const cs_preset_set *set, const cs_wordlist *wl, const cs_preset *const *sel,
			   size_t count, const cs_policy_options *opts, json_t **out, char *why,
			   size_t why_len)
{
	*out = NULL;
	cs_policy_options o = {0};
	if (opts != NULL)
		o = *opts;
	if (count == 0 || count > CS_POLICY_STANDARDS_MAX) {
		snprintf(why, why_len, "name 1 to %d standards (presets)", CS_POLICY_STANDARDS_MAX);
		return CS_E_INVALID_ARG;
	}
	cs_err r = check_options(&o, why, why_len);
	if (r != CS_OK)
		return r;
	if (o.review_months == 0)
		o.review_months = CS_POLICY_REVIEW_MONTHS_MAX;
	ctx c = {.set = set, .wl = wl, .sel = sel, .n = count, .chosen = F_REF};
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
		unsigned fam = families_of_preset(sel[i]);
		c.chosen |= fam;
		if (c.nist == NULL && (fam & F_NIST63) && sel[i]->classes == 0 &&
		    !sel[i]->max_identical_run && !sel[i]->max_class_run && !sel[i]->rotation_days)
			c.nist = sel[i];
	}
	composition k;
	rotation rot;
	composition_of(&c, &k);
	rotation_of(&c, &rot);

	json_t *rules = json_array(), *conflicts = json_array(), *standing_list = json_array();
	length_rules(&c, rules);
	class_and_run_rules(&c, &k, rules);
	const cs_preset *strongest = strongest_of(&c);
	add_rule(rules, "strength", "Security strength", "all",
		 jfmt("Every credential has at least %d bits of security strength.", strongest->strength_bits),
		 json_integer(strongest->strength_bits),
		 cites3(&c, "NIST SP 800-57 Pt 1 Rev 5 5.6.1", "NIST SP 800-131A Rev 2 (112-bit floor)", NULL),
		 names1(strongest->name));
	text_rule(&c, rules, json_object_get(set->policy, "generation"), "generation",
		  "Generation method and entropy source", NULL);
	text_rule(&c, rules, json_object_get(set->policy, "storage"), "storage", "Storage", NULL);
	rotation_rules(&c, &rot, rules);
	extra_rules_add(&c, rules);
	framework_rules(&c, rules, json_object_get(set->policy, "offboarding"), "offboarding",
			"Off-boarding");
	framework_rules(&c, rules, json_object_get(set->policy, "evidence"), "evidence",
			"Evidence to keep");
	composition_conflict(&c, &k, conflicts, standing_list);
	rotation_conflict_add(&c, &rot, conflicts, standing_list);

	json_t *exception_cites_list = family_cites(&c, 0);
	json_array_append_new(exception_cites_list, json_string("NIST SP 800-131A Rev 2 (112-bit floor)"));
	json_t *exceptions = json_pack(
		"{s:s, s:o, s:o}", "process",
		"A deviation from a requirement needs an exception, approved in writing by the policy "
		"owner before it takes effect. The request names the accounts and systems, the "
		"requirement, the reason, the risk, the compensating controls and an end date no later "
		"than the next review. Approved exceptions are kept in an exceptions register with this "
		"policy and reviewed at every review; an exception ends on its end date. No exception "
		"lowers a credential below 112 bits of security strength: the appliance generates "
		"nothing weaker.",
		"cites", exception_cites_list, "standing", standing_list);
	char digest[65];
	if (exceptions == NULL ||
	    content_digest(standards, set->version, conflicts, rules, exceptions, digest) != CS_OK) {
		json_decref(standards);
		json_decref(rules);
		json_decref(conflicts);
		json_decref(exceptions);
		return CS_E_NOMEM;
	}

	const char *org = o.organisation != NULL ? o.organisation : "the organisation";
	char next[11] = "";
	if (o.effective_date != NULL)
		add_months(o.effective_date, o.review_months, next);
	json_t *scope = o.scope != NULL
				? json_string(o.scope)
				: jfmt("Every credential with which a person or a program authenticates to the "
				       "systems of %s that fall under the standards below, whoever created "
				       "it.",
				       org);
	json_t *doc = json_pack(
		"{s:s, s:s?, s:s?, s:o, s:s?, s:s?, s:i, s:s?, s:s, s:o, s:i, s:o}", "title",
		"Credential policy", "organisation", o.organisation, "owner", o.owner, "scope", scope,
		"version", o.version, "effective_date", o.effective_date, "review_months",
		o.review_months, "next_review", next[0] ? next : NULL, "content_sha256", digest,
		"standards", standards, "presets_version", set->version, "sections", sections());
	if (doc == NULL) {
		json_decref(rules);
		json_decref(conflicts);
		json_decref(exceptions);
		return CS_E_NOMEM;
	}
	json_object_set_new(
		doc, "purpose",
		jfmt("This policy sets how %s creates, stores, rotates and retires the credentials of its "
		     "systems (passwords, passphrases, API keys, tokens and other secrets), so that each "
		     "meets the standards named in its scope. Every requirement names its source; where "
		     "the standards conflict, the section on conflicts states how each conflict is "
		     "resolved for each type of account.",
		     org));
	json_object_set_new(
		doc, "account_types",
		json_pack("[{s:s, s:s, s:s}, {s:s, s:s, s:s}]", "id", "human", "name", "Human accounts",
			  "definition",
			  "A person signs in and chooses, remembers or keeps the password: interactive "
			  "user and administrator accounts.",
			  "id", "service", "name", "Service, system and application accounts", "definition",
			  "A program signs in with a credential no person needs to remember: service "
			  "accounts, database users, API keys and tokens."));
	json_object_set_new(doc, "frameworks", frameworks(&c));
	json_t *refs = json_array();
	for (size_t i = 0; i < sizeof(references) / sizeof(references[0]); i++)
		json_array_append_new(refs, json_string(references[i]));
	json_object_set_new(doc, "references", refs);
	json_object_set_new(
		doc, "roles",
		json_pack(
			"[{s:s, s:s?, s:s}, {s:s, s:n, s:s}, {s:s, s:n, s:s}, {s:s, s:n, s:s}, "
			"{s:s, s:n, s:s}]",
			"role", "Policy owner", "holder", o.owner, "duties",
			"Keeps this policy current, decides on exceptions, leads each review and answers "
			"for the policy to auditors.",
			"role", "Approving officer", "holder", "duties",
			"Approves this policy and every new version by signing it.", "role",
			"System and service owners", "holder", "duties",
			"Apply this policy to the accounts of their systems: generate each credential with "
			"the credsign appliance under the presets named here, store, rotate and revoke it "
			"as required.",
			"role", "Appliance operators", "holder", "duties",
			"Run the credsign appliance, its token and its audit log, and restrict who may "
			"generate credentials and read the audit log.",
			"role", "Auditors", "holder", "duties",
			"Verify certificates and the signed audit log against this policy and report "
			"deviations to the policy owner."));
	json_object_set_new(
		doc, "effective",
		jfmt("This version takes effect on %s and stays in force until a later approved version "
		     "replaces it. The content SHA-256 identifies the requirements (standards, rules, "
		     "conflicts and exceptions) exactly: a document with another digest is another "
		     "version and needs its own approval.",
		     o.effective_date != NULL ? o.effective_date : "the date of the approval signature"));
	json_object_set_new(doc, "conflicts", conflicts);
	json_object_set_new(doc, "rules", rules);
	json_object_set_new(doc, "exceptions", exceptions);
	json_object_set_new(
		doc, "review",
		json_pack("{s:i, s:o, s:o}", "months", o.review_months, "text",
			  jfmt("The policy owner reviews this policy at least every %d months, and also "
			       "when a chosen standard or the presets file changes, or a security "
			       "incident involves credentials. Each review is recorded; a changed policy "
			       "is approved again as a new version.",
			       o.review_months),
			  "cites", family_cites(&c, 1)));
	json_object_set_new(
		doc, "approval",
		json_pack("{s:o, s:[{s:s, s:n}, {s:s, s:s?}], s:[s, s, s, s]}", "statement",
			  jfmt("Approved for %s. The signature approves this policy, version %s with "
			       "content SHA-256 %s, effective %s.",
			       org, o.version != NULL ? o.version : "(as written above)", digest,
			       o.effective_date != NULL ? o.effective_date : "on the date signed"),
			  "signatories", "role", "Approving officer", "name", "role", "Policy owner",
			  "name", o.owner, "fields", "name", "title", "signature", "date"));
	*out = doc;
	return CS_OK;
}

cs_err cs_policy_build(const cs_preset_set *set, const cs_wordlist *wl, const cs_preset *const *sel,
		       size_t count, json_t **out, char *why, size_t why_len)
{
	return cs_policy_build_doc(set, wl, sel, count, NULL, out, why, why_len);
}

/* ---- rendering ------------------------------------------------------------------------ */

static const char *str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static const char *accounts_name(const char *accounts)
{
	if (accounts != NULL && strcmp(accounts, "human") == 0)
		return "human accounts";
	if (accounts != NULL && strcmp(accounts, "service") == 0)
		return "service, system and application accounts";
	return "all accounts";
}

/* Markdown: a backslash before every character that could start markup,
 * a link, raw HTML or an entity, or end a table cell. */
static void md(FILE *f, const char *s)
{
	for (; s != NULL && *s; s++) {
		if (strchr("\\`*_[]<>&|#!~", *s) != NULL)
			fputc('\\', f);
		fputc(*s, f);
	}
}

static void md_cites(FILE *f, const json_t *cites, const char *label)
{
	size_t k;
	json_t *c;
	if (json_array_size(cites) == 0)
		return;
	fprintf(f, " _%s: ", label);
	json_array_foreach(cites, k, c) {
		fputs(k ? "; " : "", f);
		md(f, json_string_value(c));
	}
	fputs("._", f);
}

static void md_field(FILE *f, const char *name, const char *value, const char *blank)
{
	fprintf(f, "| %s | ", name);
	if (value != NULL)
		md(f, value);
	else
		fputs(blank, f);
	fputs(" |\n", f);
}

static void md_section(FILE *f, const json_t *policy, const char *id)
{
	size_t i;
	json_t *s;
	json_array_foreach(json_object_get(policy, "sections"), i, s)
		if (strcmp(str(s, "id"), id) == 0)
			fprintf(f, "\n## %zu. %s\n\n", i + 1, str(s, "title"));
}

char *cs_policy_markdown(const json_t *policy)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (f == NULL)
		return NULL;
	size_t i, k;
	json_t *v, *c;
	char rev[64];
	snprintf(rev, sizeof(rev), "_%lld months after the effective date_",
		 (long long)json_integer_value(json_object_get(policy, "review_months")));
	fputs("# Credential policy\n\n| | |\n|---|---|\n", f);
	md_field(f, "Organisation", str(policy, "organisation"), "_(to be completed)_");
	md_field(f, "Policy owner", str(policy, "owner"), "_(to be completed)_");
	md_field(f, "Version", str(policy, "version"), "_(to be completed)_");
	md_field(f, "Effective date", str(policy, "effective_date"), "_the date of the approval signature_");
	md_field(f, "Next review", str(policy, "next_review"), rev);
	fputs("| Standards | ", f);
	json_array_foreach(json_object_get(policy, "standards"), i, v) {
		fputs(i ? ", " : "", f);
		md(f, json_string_value(v));
	}
	fprintf(f, " (presets version %lld) |\n| Content SHA-256 | `%s` |\n",
		(long long)json_integer_value(json_object_get(policy, "presets_version")),
		str(policy, "content_sha256"));

	md_section(f, policy, "purpose");
	md(f, str(policy, "purpose"));
	fputs("\n", f);

	md_section(f, policy, "scope");
	md(f, str(policy, "scope"));
	fputs("\n\nAccount types:\n\n", f);
	json_array_foreach(json_object_get(policy, "account_types"), i, v) {
		fprintf(f, "- **%s**: ", str(v, "name"));
		md(f, str(v, "definition"));
		fputs("\n", f);
	}
	fputs("\nStandards chosen:\n\n", f);
	json_array_foreach(json_object_get(policy, "frameworks"), i, v) {
		fputs("- **", f);
		md(f, str(v, "title"));
		fputs("** (`", f);
		md(f, str(v, "preset"));
		fputs("`)", f);
		md_cites(f, json_object_get(v, "requirements"), "Requirements");
		fputs("\n", f);
	}
	fputs("\nReferences the appliance rests on, whatever the standards: ", f);
	json_array_foreach(json_object_get(policy, "references"), i, v) {
		fputs(i ? "; " : "", f);
		md(f, json_string_value(v));
	}
	fputs(".\n", f);

	md_section(f, policy, "roles");
	json_array_foreach(json_object_get(policy, "roles"), i, v) {
		fprintf(f, "- **%s**", str(v, "role"));
		if (str(v, "holder") != NULL) {
			fputs(" (", f);
			md(f, str(v, "holder"));
			fputs(")", f);
		}
		fputs(": ", f);
		md(f, str(v, "duties"));
		fputs("\n", f);
	}

	md_section(f, policy, "effective");
	md(f, str(policy, "effective"));
	fputs("\n", f);

	md_section(f, policy, "requirements");
	fputs("Where the standards set different values, the strictest applies, except where the "
	      "section on conflicts resolves otherwise. Each rule names the accounts it applies to and "
	      "its source.\n",
	      f);
	const char *last_title = NULL;
	json_array_foreach(json_object_get(policy, "rules"), i, v) {
		const char *title = str(v, "title");
		if (last_title == NULL || strcmp(title, last_title) != 0) {
			fputs("\n### ", f);
			md(f, title);
			fputs("\n\n", f);
		}
		last_title = title;
		fputs("- ", f);
		md(f, str(v, "rule"));
		fprintf(f, " _Applies to: %s._", accounts_name(str(v, "accounts")));
		md_cites(f, json_object_get(v, "cites"), "Source");
		fputs("\n", f);
	}

	md_section(f, policy, "conflicts");
	if (json_array_size(json_object_get(policy, "conflicts")) == 0)
		fputs("None: the chosen standards set no rules that contradict each other.\n", f);
	json_array_foreach(json_object_get(policy, "conflicts"), i, v) {
		fputs("### ", f);
		md(f, str(v, "topic"));
		fputs("\n\n", f);
		md(f, str(v, "statement"));
		md_cites(f, json_object_get(v, "cites"), "Sources");
		fputs("\n\nResolution:\n\n", f);
		const json_t *res = json_object_get(v, "resolution");
		static const char *const types[][2] = {
			{"human", "Human accounts"}, {"service", "Service, system and application accounts"}};
		for (k = 0; k < 2; k++) {
			const json_t *r = json_object_get(res, types[k][0]);
			fprintf(f, "- **%s**: ", types[k][1]);
			md(f, str(r, "rule"));
			md_cites(f, json_object_get(r, "cites"), "Sources");
			fputs("\n", f);
		}
		fputs("\n", f);
	}

	const json_t *ex = json_object_get(policy, "exceptions");
	md_section(f, policy, "exceptions");
	md(f, str(ex, "process"));
	md_cites(f, json_object_get(ex, "cites"), "Sources");
	fputs("\n", f);
	if (json_array_size(json_object_get(ex, "standing")) > 0) {
		fputs("\nStanding exceptions (from the resolution of conflicts):\n\n", f);
		json_array_foreach(json_object_get(ex, "standing"), i, c) {
			fputs("- ", f);
			md(f, str(c, "text"));
			md_cites(f, json_object_get(c, "cites"), "Sources");
			fputs("\n", f);
		}
	}

	const json_t *review = json_object_get(policy, "review");
	md_section(f, policy, "review");
	md(f, str(review, "text"));
	md_cites(f, json_object_get(review, "cites"), "Sources");
	fputs("\n", f);

	const json_t *approval = json_object_get(policy, "approval");
	md_section(f, policy, "approval");
	md(f, str(approval, "statement"));
	fputs("\n\n| Role | Name | Title | Signature | Date |\n|---|---|---|---|---|\n", f);
	json_array_foreach(json_object_get(approval, "signatories"), i, v) {
		fprintf(f, "| %s | ", str(v, "role"));
		md(f, str(v, "name"));
		fputs(" | | | |\n", f);
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* HTML: & < > " ' as character references. */
static void html(FILE *f, const char *s)
{
	for (; s != NULL && *s; s++)
		switch (*s) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default: fputc(*s, f); break;
		}
}

char *cs_policy_html_escape(const char *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (f == NULL)
		return NULL;
	html(f, s);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static void html_cites(FILE *f, const json_t *cites, const char *label)
{
	size_t k;
	json_t *c;
	if (json_array_size(cites) == 0)
		return;
	fprintf(f, " <span class=\"src\">%s: ", label);
	json_array_foreach(cites, k, c) {
		fputs(k ? "; " : "", f);
		html(f, json_string_value(c));
	}
	fputs(".</span>", f);
}

static void html_field(FILE *f, const char *name, const char *value, const char *blank)
{
	fprintf(f, "<tr><th>%s</th><td>", name);
	if (value != NULL)
		html(f, value);
	else
		fputs(blank, f);
	fputs("</td></tr>\n", f);
}

static void html_section(FILE *f, const json_t *policy, const char *id)
{
	size_t i;
	json_t *s;
	json_array_foreach(json_object_get(policy, "sections"), i, s)
		if (strcmp(str(s, "id"), id) == 0)
			fprintf(f, "<h2 id=\"%s\">%zu. %s</h2>\n", id, i + 1, str(s, "title"));
}

static const char html_style[] =
	"body{font-family:Georgia,'Times New Roman',serif;color:#000;background:#fff;max-width:48em;"
	"margin:2em auto;padding:0 1em;line-height:1.45}"
	"h1{font-size:1.7em;margin-bottom:.3em}h2{font-size:1.25em;border-bottom:1px solid #888;"
	"margin-top:1.6em}h3{font-size:1.05em;margin-bottom:.3em}"
	"table{border-collapse:collapse;width:100%;margin:.6em 0}th,td{border:1px solid #888;"
	"padding:.35em .5em;text-align:left;vertical-align:top}"
	"table.meta th{width:11em;background:#f0f0f0}.src{font-size:.88em;color:#333;font-style:italic}"
	".blank{display:inline-block;min-width:12em;border-bottom:1px solid #000}"
	"table.sign td{height:3.5em}code{font-size:.85em;word-break:break-all}"
	"footer{margin-top:2em;font-size:.85em;color:#444}"
	"@page{size:A4;margin:18mm 16mm}"
	"@media print{body{margin:0;max-width:none;font-size:10.5pt}a{color:#000}"
	"h2,h3{break-after:avoid}li,tr,.conflict{break-inside:avoid}"
	"section.approval{break-inside:avoid}}";

char *cs_policy_html(const json_t *policy)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (f == NULL)
		return NULL;
	static const char blank[] = "<span class=\"blank\">&nbsp;</span>";
	size_t i, k;
	json_t *v, *c;
	fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>Credential policy",
	      f);
	if (str(policy, "organisation") != NULL) {
		fputs(" \xe2\x80\x94 ", f);
		html(f, str(policy, "organisation"));
	}
	fprintf(f, "</title>\n<style>%s</style>\n</head>\n<body>\n<h1>Credential policy</h1>\n",
		html_style);
	fputs("<table class=\"meta\">\n", f);
	html_field(f, "Organisation", str(policy, "organisation"), blank);
	html_field(f, "Policy owner", str(policy, "owner"), blank);
	html_field(f, "Version", str(policy, "version"), blank);
	html_field(f, "Effective date", str(policy, "effective_date"),
		   "the date of the approval signature");
	char rev[64];
	snprintf(rev, sizeof(rev), "%lld months after the effective date",
		 (long long)json_integer_value(json_object_get(policy, "review_months")));
	html_field(f, "Next review", str(policy, "next_review"), rev);
	fputs("<tr><th>Standards</th><td>", f);
	json_array_foreach(json_object_get(policy, "standards"), i, v) {
		fputs(i ? ", " : "", f);
		html(f, json_string_value(v));
	}
	fprintf(f, " (presets version %lld)</td></tr>\n<tr><th>Content SHA-256</th><td><code>",
		(long long)json_integer_value(json_object_get(policy, "presets_version")));
	html(f, str(policy, "content_sha256"));
	fputs("</code></td></tr>\n</table>\n", f);

	html_section(f, policy, "purpose");
	fputs("<p>", f);
	html(f, str(policy, "purpose"));
	fputs("</p>\n", f);

	html_section(f, policy, "scope");
	fputs("<p>", f);
	html(f, str(policy, "scope"));
	fputs("</p>\n<p>Account types:</p>\n<ul>\n", f);
	json_array_foreach(json_object_get(policy, "account_types"), i, v) {
		fputs("<li><strong>", f);
		html(f, str(v, "name"));
		fputs("</strong>: ", f);
		html(f, str(v, "definition"));
		fputs("</li>\n", f);
	}
	fputs("</ul>\n<p>Standards chosen:</p>\n<ul>\n", f);
	json_array_foreach(json_object_get(policy, "frameworks"), i, v) {
		fputs("<li><strong>", f);
		html(f, str(v, "title"));
		fputs("</strong> (<code>", f);
		html(f, str(v, "preset"));
		fputs("</code>)", f);
		html_cites(f, json_object_get(v, "requirements"), "Requirements");
		fputs("</li>\n", f);
	}
	fputs("</ul>\n<p>References the appliance rests on, whatever the standards: ", f);
	json_array_foreach(json_object_get(policy, "references"), i, v) {
		fputs(i ? "; " : "", f);
		html(f, json_string_value(v));
	}
	fputs(".</p>\n", f);

	html_section(f, policy, "roles");
	fputs("<ul>\n", f);
	json_array_foreach(json_object_get(policy, "roles"), i, v) {
		fputs("<li><strong>", f);
		html(f, str(v, "role"));
		fputs("</strong>", f);
		if (str(v, "holder") != NULL) {
			fputs(" (", f);
			html(f, str(v, "holder"));
			fputs(")", f);
		}
		fputs(": ", f);
		html(f, str(v, "duties"));
		fputs("</li>\n", f);
	}
	fputs("</ul>\n", f);

	html_section(f, policy, "effective");
	fputs("<p>", f);
	html(f, str(policy, "effective"));
	fputs("</p>\n", f);

	html_section(f, policy, "requirements");
	fputs("<p>Where the standards set different values, the strictest applies, except where the "
	      "section on conflicts resolves otherwise. Each rule names the accounts it applies to "
	      "and its source.</p>\n",
	      f);
	const char *last_title = NULL;
	json_array_foreach(json_object_get(policy, "rules"), i, v) {
		const char *title = str(v, "title");
		if (last_title == NULL || strcmp(title, last_title) != 0) {
			fputs(last_title != NULL ? "</ul>\n<h3>" : "<h3>", f);
			html(f, title);
			fputs("</h3>\n<ul>\n", f);
		}
		last_title = title;
		fputs("<li>", f);
		html(f, str(v, "rule"));
		fprintf(f, " <em>Applies to: %s.</em>", accounts_name(str(v, "accounts")));
		html_cites(f, json_object_get(v, "cites"), "Source");
		fputs("</li>\n", f);
	}
	if (last_title != NULL)
		fputs("</ul>\n", f);

	html_section(f, policy, "conflicts");
	if (json_array_size(json_object_get(policy, "conflicts")) == 0)
		fputs("<p>None: the chosen standards set no rules that contradict each other.</p>\n", f);
	json_array_foreach(json_object_get(policy, "conflicts"), i, v) {
		fputs("<div class=\"conflict\">\n<h3>", f);
		html(f, str(v, "topic"));
		fputs("</h3>\n<p>", f);
		html(f, str(v, "statement"));
		html_cites(f, json_object_get(v, "cites"), "Sources");
		fputs("</p>\n<p>Resolution:</p>\n<ul>\n", f);
		const json_t *res = json_object_get(v, "resolution");
		static const char *const types[][2] = {
			{"human", "Human accounts"}, {"service", "Service, system and application accounts"}};
		for (k = 0; k < 2; k++) {
			const json_t *r = json_object_get(res, types[k][0]);
			fprintf(f, "<li><strong>%s</strong>: ", types[k][1]);
			html(f, str(r, "rule"));
			html_cites(f, json_object_get(r, "cites"), "Sources");
			fputs("</li>\n", f);
		}
		fputs("</ul>\n</div>\n", f);
	}

	const json_t *ex = json_object_get(policy, "exceptions");
	html_section(f, policy, "exceptions");
	fputs("<p>", f);
	html(f, str(ex, "process"));
	html_cites(f, json_object_get(ex, "cites"), "Sources");
	fputs("</p>\n", f);
	if (json_array_size(json_object_get(ex, "standing")) > 0) {
		fputs("<p>Standing exceptions (from the resolution of conflicts):</p>\n<ul>\n", f);
		json_array_foreach(json_object_get(ex, "standing"), i, c) {
			fputs("<li>", f);
			html(f, str(c, "text"));
			html_cites(f, json_object_get(c, "cites"), "Sources");
			fputs("</li>\n", f);
		}
		fputs("</ul>\n", f);
	}

	const json_t *review = json_object_get(policy, "review");
	html_section(f, policy, "review");
	fputs("<p>", f);
	html(f, str(review, "text"));
	html_cites(f, json_object_get(review, "cites"), "Sources");
	fputs("</p>\n", f);

	const json_t *approval = json_object_get(policy, "approval");
	fputs("<section class=\"approval\">\n", f);
	html_section(f, policy, "approval");
	fputs("<p>", f);
	html(f, str(approval, "statement"));
	fputs("</p>\n<table class=\"sign\">\n<tr><th>Role</th><th>Name</th><th>Title</th>"
	      "<th>Signature</th><th>Date</th></tr>\n",
	      f);
	json_array_foreach(json_object_get(approval, "signatories"), i, v) {
		fputs("<tr><td>", f);
		html(f, str(v, "role"));
		fputs("</td><td>", f);
		html(f, str(v, "name"));
		fputs("</td><td></td><td></td><td></td></tr>\n", f);
	}
	fputs("</table>\n</section>\n<footer>Written by credsign from presets version ", f);
	fprintf(f, "%lld; content SHA-256 <code>",
		(long long)json_integer_value(json_object_get(policy, "presets_version")));
	html(f, str(policy, "content_sha256"));
	fputs("</code>.</footer>\n</body>\n</html>\n", f);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}
