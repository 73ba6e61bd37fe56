/* policy: see policy.h. */
#include "policy.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "json_text.h"

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
#define STRENGTH_CITE "NIST SP 800-57 Pt 1 Rev 5 5.6.1 (security strength)"
#define FLOOR_CITE "NIST SP 800-131A Rev 2 (112-bit minimum security strength)"

static const char *const references[] = {
	STRENGTH_CITE,
	FLOOR_CITE,
	"NIST SP 800-90A Rev 1 (deterministic random bit generators)",
};

/* Chosen presets of one kind. */
typedef struct {
	const cs_preset *p[CS_POLICY_STANDARDS_MAX];
	size_t n;
} preset_group;

typedef struct {
	const cs_preset_set *set;
	const cs_wordlist *wl;
	const cs_preset *const *sel;
	size_t n;
	unsigned chosen;       /* families the chosen presets name in their standards, and F_REF */
	const cs_preset *nist; /* chosen, and forbids composition rules (SP 800-63B-4); or NULL */
	preset_group general;         /* rules for every system in the policy's scope */
	preset_group stig;            /* DISA SRG/STIG: rules for the operating systems in its scope */
	preset_group db;              /* db-* presets: database accounts only */
	int pci_days;                 /* cs_policy_options.pci_password_change_days */
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

/* Presets for database accounts only: the db-* presets and any preset of
 * the db-safe character set. They never govern human accounts. */
static int is_database(const cs_preset *p)
{
	return strncmp(p->name, "db-", 3) == 0 ||
	       (p->charset_name != NULL && strcmp(p->charset_name, "db-safe") == 0);
}

static const char *cite_of(const cs_preset *p, const char *rule)
{
	const char *c = json_string_value(json_object_get(p->cites, rule));
	return c != NULL ? c : p->standards[0];
}

static int is_cross_reference(const char *cite)
{
	return cite != NULL && strncmp(cite, "see ", 4) == 0;
}

/* The source of a preset's rule: its citation, or, for a cross-reference
 * ("see dod-stig"), the referenced preset's citation of the same rule when
 * that preset is chosen; NULL otherwise. A cross-reference is never cited. */
static const cs_preset *referenced(const ctx *c, const cs_preset *p, const char *rule)
{
	const char *cite = cite_of(p, rule);
	if (!is_cross_reference(cite))
		return NULL;
	for (size_t i = 0; i < c->n; i++) {
		const cs_preset *q = c->sel[i];
		size_t len = strlen(q->name);
		if (q != p && strncmp(cite + 4, q->name, len) == 0 && !name_char(cite[4 + len]))
			return is_cross_reference(cite_of(q, rule)) ? NULL : q;
	}
	return NULL;
}

static const char *source_of(const ctx *c, const cs_preset *p, const char *rule)
{
	const char *cite = cite_of(p, rule);
	if (!is_cross_reference(cite))
		return cite;
	const cs_preset *q = referenced(c, p, rule);
	return q != NULL ? cite_of(q, rule) : NULL;
}

/* A rule the standard itself sets, or a number it leaves open that the
 * preset fills with practice or the appliance's own choice? */
static int is_requirement(const char *cite)
{
	return cite != NULL && strstr(cite, "practice") == NULL && strstr(cite, "choice") == NULL &&
	       strstr(cite, "no number") == NULL && !is_cross_reference(cite);
}

/* Append cite to arr when it may be cited and is not there yet. */
/* An allocation failed while this thread built a document: the document is
 * refused (CS_E_NOMEM), never returned with a rule, a conflict or a
 * citation missing under a digest that covers only what is left. Every
 * member and element goes in through put and push, which note a NULL
 * value or container; builders that give up note it themselves. */
static _Thread_local int build_failed;

/* v, noting a NULL (an optional member's value that could not be made) */
static json_t *need(json_t *v)
{
	if (v == NULL)
		build_failed = 1;
	return v;
}

static json_t *jarr(void)
{
	return need(json_array());
}

static json_t *jobj(void)
{
	return need(json_object());
}

static json_t *jstr(const char *s)
{
	return need(json_string(s));
}

static json_t *jint(json_int_t v)
{
	return need(json_integer(v));
}

static void put(json_t *obj, const char *key, json_t *value)
{
	if (json_object_set_new(obj, key, value) != 0)
		build_failed = 1;
}

static void push(json_t *arr, json_t *value)
{
	if (json_array_append_new(arr, value) != 0)
		build_failed = 1;
}

static void cite_add(const ctx *c, json_t *arr, const char *cite)
{
	if (cite == NULL || is_cross_reference(cite) || !allowed(c, cite))
		return;
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v)
		if (strcmp(json_string_value(v), cite) == 0)
			return;
	push(arr, jstr(cite));
}

/* A citation list of up to three citations, each filtered. */
static json_t *cites3(const ctx *c, const char *a, const char *b, const char *d)
{
	json_t *arr = jarr();
	cite_add(c, arr, a);
	cite_add(c, arr, b);
	cite_add(c, arr, d);
	return arr;
}

static json_t *names1(const char *a)
{
	json_t *arr = jarr();
	if (a != NULL)
		push(arr, jstr(a));
	return arr;
}

static void name_add(json_t *arr, const char *name)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v)
		if (strcmp(json_string_value(v), name) == 0)
			return;
	push(arr, jstr(name));
}

static json_t *jfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *jfmt(const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0) {
		build_failed = 1;
		return NULL;
	}
	json_t *j = jstr(s);
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
		push(cites, jstr(PRACTICE_CITE));
	json_t *r = json_pack("{s:s, s:s, s:s, s:o}", "id", id, "title", title, "accounts", accounts,
			      "rule", text);
	if (r == NULL) {
		build_failed = 1;
		json_decref(value);
		json_decref(cites);
		json_decref(from);
		return;
	}
	if (value != NULL)
		put(r, "value", value);
	put(r, "cites", cites);
	put(r, "from", from != NULL ? from : jarr());
	push(rules, r);
}

/* ---- length --------------------------------------------------------------------- */

/* The enforced minimum of a preset for a type (0 if it does not allow it). */
static int enforced_min(const cs_preset *p, const cs_wordlist *wl, cs_cred_type type)
{
	cs_plan_request q = {.type = (int)type};
	cs_plan plan;
	char why[256];
	if (!(p->types & type) || cs_preset_plan(p, wl, &q, &plan, why, sizeof(why)) != CS_OK)
		return 0;
	return plan.min_length;
}

static int password_min(const cs_preset *p, const cs_wordlist *wl)
{
	return enforced_min(p, wl, CS_TYPE_PASSWORD);
}

/* The strongest preset of the chosen presets other than the database ones
 * (of the database ones when no other is chosen). */
static const cs_preset *strongest_of(const ctx *c)
{
	const cs_preset *s = NULL;
	int db_only = c->general.n == 0 && c->stig.n == 0;
	for (size_t i = 0; i < c->n; i++)
		if ((db_only || !is_database(c->sel[i])) &&
		    (s == NULL || c->sel[i]->strength_bits > s->strength_bits))
			s = c->sel[i];
	return s;
}

/* "the hipaa preset's own choice of 128 bits" when a preset asks for more
 * than the 112-bit floor (no chosen standard sets a strength). */
static void strength_choice(const cs_preset *p, char *out, size_t cap)
{
	out[0] = '\0';
	if (p != NULL && p->strength_bits > CS_STRENGTH_FLOOR)
		snprintf(out, cap, "the %s preset's own choice of %d bits", p->name, p->strength_bits);
}

/* Standards that set a shorter minimum for a password used with another
 * factor than for one used alone. Any other preset's minimum holds either
 * way. */
static const struct {
	unsigned family;
	const char *needle;
	int length;
	const char *cite;
} mfa_lengths[] = {
	{F_NIST63, "800-63B", 8, NIST_BAN " (8 characters for a password used with another factor)"},
	{F_CIS, "Safeguard 5.2", 8, "CIS Controls v8 Safeguard 5.2 (8 characters with MFA, 14 without)"},
};

/* The minimum of a password that is one factor of MFA under p, and what
 * to cite for it; *distinct when p's standard sets a number of its own. */
static int mfa_length_of(const cs_preset *p, const char **cite, int *distinct)
{
	const char *lc = cite_of(p, "length");
	for (size_t i = 0; i < sizeof(mfa_lengths) / sizeof(mfa_lengths[0]); i++)
		if ((families_of(lc) & mfa_lengths[i].family) && strstr(lc, mfa_lengths[i].needle) != NULL) {
			*cite = mfa_lengths[i].cite;
			*distinct = 1;
			return mfa_lengths[i].length < p->min_length ? mfa_lengths[i].length : p->min_length;
		}
	*cite = lc;
	*distinct = 0;
	return p->min_length;
}

static void human_length_rules(const ctx *c, json_t *rules)
{
	const preset_group *g = &c->general;
	if (g->n == 0)
		return;
	const cs_preset *human = g->p[0];
	int mfa = 0, distinct = 0;
	for (size_t i = 0; i < g->n; i++) {
		const char *cite;
		int d, m = mfa_length_of(g->p[i], &cite, &d);
		distinct |= d;
		if (m > mfa)
			mfa = m;
		if (g->p[i]->min_length > human->min_length)
			human = g->p[i];
	}
	add_rule(rules, "length.human", "Minimum length: human accounts", "human",
		 distinct ? jfmt("A password that is the only factor of a human account's "
				 "authentication: at least %d characters.",
				 human->min_length)
			  : jfmt("Passwords of human accounts: at least %d characters.", human->min_length),
		 jint(human->min_length), cites3(c, cite_of(human, "length"), NULL, NULL),
		 names1(human->name));
	if (distinct) {
		/* each standard's own number for a password used with another factor */
		json_t *cites = jarr(), *from = jarr();
		for (size_t i = 0; i < g->n; i++) {
			const char *cite;
			int d;
			if (mfa_length_of(g->p[i], &cite, &d) == mfa) {
				cite_add(c, cites, cite);
				name_add(from, g->p[i]->name);
			}
		}
		add_rule(rules, "length.human.mfa", "Minimum length: human accounts", "human",
			 jfmt("A password that is one factor of multi-factor authentication: at least %d "
			      "characters.",
			      mfa),
			 jint(mfa), cites, from);
	}
	if (c->nist != NULL)
		add_rule(rules, "length.maximum", "Maximum length: human accounts", "human",
			 jstr("Systems that verify human passwords accept passwords of at least 64 "
				     "characters and verify the whole password, never a truncated one."),
			 jint(64),
			 cites3(c, NIST_BAN " (maximum length of at least 64; no truncation)", NULL, NULL),
			 names1(c->nist->name));
}

/* Service accounts (the general presets) and database accounts (db-*). */
static void service_length_rules(const ctx *c, json_t *rules)
{
	const cs_preset *service = NULL, *db = NULL;
	int service_len = 0, db_len = 0, bits = 0;
	for (size_t i = 0; i < c->general.n; i++) {
		const cs_preset *p = c->general.p[i];
		int m = password_min(p, c->wl);
		/* on a tie, cite a standard that governs service accounts */
		if (m > service_len || (m > 0 && m == service_len && service == c->nist)) {
			service_len = m;
			service = p;
		}
		if (m > 0 && p->strength_bits > bits)
			bits = p->strength_bits;
	}
	if (service != NULL)
		add_rule(rules, "length.service", "Minimum length: service accounts", "service",
			 jfmt("Passwords of service, system and application accounts: at least %d "
			      "characters, generated, so that each reaches %d bits of security strength "
			      "with its character set.",
			      service_len, bits),
			 jint(service_len), cites3(c, cite_of(service, "length"), FLOOR_CITE, NULL),
			 names1(service->name));
	for (size_t i = 0; i < c->db.n; i++) {
		int m = password_min(c->db.p[i], c->wl);
		if (m > db_len) {
			db_len = m;
			db = c->db.p[i];
		}
	}
	if (db == NULL)
		return;
	int len = db_len > service_len ? db_len : service_len;
	add_rule(rules, "length.database", "Minimum length: databases", "service",
		 jfmt("Database passwords: at least %d characters, generated under the %s preset (its "
		      "character set is listed in GET /api/presets).",
		      len, db->name),
		 jint(len),
		 cites3(c, db->standards[0], len > db_len ? cite_of(service, "length") : NULL, NULL),
		 names1(len > db_len ? service->name : db->name));
	if (c->general.n == 0 && c->stig.n == 0) {
		/* the db-* presets say nothing about people */
		char t[1024];
		titles(t, sizeof(t), c->db.p, c->db.n);
		json_t *cites = jarr(), *from = jarr();
		for (size_t i = 0; i < c->db.n; i++) {
			cite_add(c, cites, c->db.p[i]->standards[0]);
			name_add(from, c->db.p[i]->name);
		}
		add_rule(rules, "accounts.human", "Human accounts", "human",
			 jfmt("None of the chosen presets (%s) governs human accounts: they are for "
			      "database accounts only, so this policy sets no rule for the passwords of "
			      "people.",
			      t),
			 NULL, cites, from);
	}
}

/* API keys, tokens, hex and base64url secrets: the lengths the appliance
 * enforces (class rules included), cited to what sets the strength. */
static void api_key_rule(const ctx *c, json_t *rules)
{
	static const cs_cred_type types[] = {CS_TYPE_API_KEY, CS_TYPE_HEX, CS_TYPE_BASE64URL};
	static const char *const names[] = {"api-key", "hex", "base64url"};
	int len[3] = {0, 0, 0}, bits = 0;
	const cs_preset *strong = NULL;
	json_t *from = jarr();
	for (size_t i = 0; i < c->n; i++) {
		const cs_preset *p = c->sel[i];
		if (is_database(p))
			continue;
		for (size_t t = 0; t < 3; t++) {
			int m = enforced_min(p, c->wl, types[t]);
			if (m == 0)
				continue;
			if (m > len[t])
				len[t] = m;
			if (p->strength_bits > bits) {
				bits = p->strength_bits;
				strong = p;
			}
			name_add(from, p->name);
		}
	}
	if (strong == NULL) {
		json_decref(from);
		return;
	}
	char list[256] = "", choice[160];
	json_t *mins = jobj();
	int count = 0, written = 0;
	for (size_t t = 0; t < 3; t++)
		count += len[t] > 0;
	for (size_t t = 0; t < 3; t++) {
		if (len[t] == 0)
			continue;
		put(mins, names[t], jint(len[t]));
		size_t at = strlen(list);
		const char *sep = written == 0 ? "" : (written == count - 1 ? " and " : ", ");
		if (t == 0)
			snprintf(list + at, sizeof(list) - at, "%s%d characters for an api-key (base62, its "
				 "prefix not counted)", sep, len[t]);
		else
			snprintf(list + at, sizeof(list) - at, "%s%d %sfor %s", sep, len[t],
				 written == 0 ? "characters " : "", names[t]);
		written++;
	}
	strength_choice(strong, choice, sizeof(choice));
	add_rule(rules, "length.api-key", "Minimum length: API keys", "service",
		 jfmt("API keys and tokens: at least %d bits of security strength. Under the chosen "
		      "presets the appliance enforces at least %s: for each type the longest minimum a "
		      "chosen preset sets, the length at which a key that also meets that preset's "
		      "class rules reaches its strength.",
		      bits, list),
		 need(json_pack("{s:i, s:o}", "strength_bits", bits, "min_length", mins)),
		 cites3(c, STRENGTH_CITE, FLOOR_CITE, choice[0] ? choice : NULL), from);
}

/* ---- composition: classes and run limits ----------------------------------------- */

#define CL_LETTER 16u /* a letter of either case: PCI DSS 8.3.6's "alphabetic" */
#define CL_FOUR (CS_CLASS_UPPER | CS_CLASS_LOWER | CS_CLASS_DIGIT | CS_CLASS_SPECIAL)

/* Standards whose class rule is weaker than the classes a preset sets:
 * what the standard itself requires; the rest is the preset's choice. */
static const struct {
	unsigned family;
	const char *needle;
	unsigned required;
	const char *cite;
} class_requirements[] = {
	{F_PCI, "8.3.6", CL_LETTER | CS_CLASS_DIGIT,
	 "PCI DSS v4.0.1 8.3.6 (alphabetic and numeric characters)"},
};

/* The basis of a preset's class rule. */
typedef struct {
	unsigned required;   /* classes its standard requires (CL_LETTER: either case) */
	const char *cite;    /* their citation; the practice/choice citation when none */
	unsigned choice;     /* classes the preset adds beyond them, as its own choice */
	int runs_required;   /* its run limits are its standard's requirement */
} class_basis;

static class_basis class_basis_of(const ctx *c, const cs_preset *p)
{
	class_basis b = {0, source_of(c, p, "classes"), 0, 0};
	if (p->max_identical_run || p->max_class_run) {
		const char *rc = source_of(c, p, "runs");
		b.runs_required = is_requirement(rc) && allowed(c, rc);
	}
	if (p->classes == 0 || !is_requirement(b.cite) || !allowed(c, b.cite))
		return b;
	for (size_t i = 0; i < sizeof(class_requirements) / sizeof(class_requirements[0]); i++)
		if ((families_of(b.cite) & class_requirements[i].family) &&
		    strstr(b.cite, class_requirements[i].needle) != NULL) {
			b.required = class_requirements[i].required;
			b.cite = class_requirements[i].cite;
			b.choice = p->classes & ~(b.required & CL_FOUR);
			/* one case stands for the letter; both cases are a choice */
			if ((b.required & CL_LETTER) &&
			    (b.choice & (CS_CLASS_UPPER | CS_CLASS_LOWER)) != (CS_CLASS_UPPER | CS_CLASS_LOWER))
				b.choice &= ~(unsigned)(CS_CLASS_UPPER | CS_CLASS_LOWER);
			return b;
		}
	b.required = p->classes;
	return b;
}

static int is_binding(const class_basis *b)
{
	return b->required != 0 || b->runs_required;
}

static void class_words(unsigned classes, char *out, size_t cap, json_t *value)
{
	static const unsigned bits[] = {CL_LETTER, CS_CLASS_UPPER, CS_CLASS_LOWER, CS_CLASS_DIGIT,
					CS_CLASS_SPECIAL};
	static const char *const names[] = {"letter", "upper", "lower", "digit", "special"};
	static const char *const words[] = {"a letter", "an upper-case letter", "a lower-case letter",
					    "a digit", "a special character"};
	int count = 0, written = 0;
	for (size_t b = 0; b < 5; b++)
		count += (classes & bits[b]) != 0;
	out[0] = '\0';
	for (size_t b = 0; b < 5; b++)
		if (classes & bits[b]) {
			size_t len = strlen(out);
			snprintf(out + len, cap - len, "%s%s",
				 written == 0 ? "" : (written == count - 1 ? " and " : ", "), words[b]);
			written++;
			if (value != NULL)
				push(value, jstr(names[b]));
		}
	if ((classes & CL_FOUR) == CL_FOUR) {
		size_t len = strlen(out);
		snprintf(out + len, cap - len, " (all four classes)");
	}
}

/* The citations of a preset's class rule: its standard's requirement, and
 * the preset's own choice beyond it; or its practice citation. */
static void class_cites(const ctx *c, const cs_preset *p, json_t *arr)
{
	class_basis b = class_basis_of(c, p);
	cite_add(c, arr, b.cite);
	if (b.required != 0 && b.choice != 0) {
		char cw[160], rw[160], choice[512];
		class_words(b.choice, cw, sizeof(cw), NULL);
		class_words(b.required, rw, sizeof(rw), NULL);
		snprintf(choice, sizeof(choice),
			 "the %s preset's own choice: %s, beyond what its standard requires (%s)", p->name,
			 cw, rw);
		cite_add(c, arr, choice);
	}
}

typedef struct {
	unsigned classes, ident, cls;
	const cs_preset *ident_from, *cls_from;
	const cs_preset *need[CS_POLICY_STANDARDS_MAX];     /* presets with composition rules */
	size_t nneed;
	const cs_preset *binding[CS_POLICY_STANDARDS_MAX];  /* ... some of which their standard requires */
	size_t nbinding;
	const cs_preset *practice[CS_POLICY_STANDARDS_MAX]; /* ... none of which it requires */
	size_t npractice;
	const cs_preset *partial[CS_POLICY_STANDARDS_MAX];  /* binding, with classes of their own choice */
	size_t npartial;
} composition;

static void composition_of(const ctx *c, const preset_group *g, composition *k)
{
	memset(k, 0, sizeof(*k));
	for (size_t i = 0; i < g->n; i++) {
		const cs_preset *p = g->p[i];
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
		class_basis b = class_basis_of(c, p);
		if (is_binding(&b)) {
			k->binding[k->nbinding++] = p;
			if (b.choice != 0)
				k->partial[k->npartial++] = p;
		} else {
			k->practice[k->npractice++] = p;
		}
	}
}

static int has_runs(const cs_preset *p)
{
	return p->max_identical_run || p->max_class_run;
}

/* " (except ... : below)" after an organisation-wide statement that the
 * STIG block or the database rules qualify. */
static void except_below(const ctx *c, int stig, int db, char *out, size_t cap)
{
	char st[1024];
	out[0] = '\0';
	stig = stig && c->stig.n > 0;
	db = db && c->db.n > 0;
	if (!stig && !db)
		return;
	titles(st, sizeof(st), c->stig.p, c->stig.n);
	snprintf(out, cap, " (except %s%s%s: below)", stig ? "on systems in the scope of " : "",
		 stig ? st : "", db ? (stig ? ", and for database passwords" : "for database passwords") : "");
}

/* The runs rule text: "no more than 3 identical characters in a row ..." */
static void runs_words(unsigned ident, unsigned cls, char *out, size_t cap)
{
	if (ident && cls)
		snprintf(out, cap, "no more than %u identical characters in a row and no more than %u "
			 "characters of one class in a row", ident, cls);
	else if (ident)
		snprintf(out, cap, "no more than %u identical characters in a row", ident);
	else
		snprintf(out, cap, "no more than %u characters of one class in a row", cls);
}

/* The organisation-wide class and run rules (general presets), and the
 * human accounts' rule when SP 800-63B-4 forbids composition. */
static void class_and_run_rules(const ctx *c, const composition *kg, const composition *ks,
				json_t *rules)
{
	int conflict = c->nist != NULL && (kg->nneed > 0 || ks->nneed > 0);
	char words[256], below[1200];
	/* which of the block's and the database presets' rules qualify "none" */
	composition kd;
	composition_of(c, &c->db, &kd);
	except_below(c, ks->nneed > 0, kd.nneed > 0, below, sizeof(below));
	if (conflict) {
		const cs_preset *bound[2 * CS_POLICY_STANDARDS_MAX] = {NULL};
		size_t nb = 0;
		for (size_t i = 0; i < kg->nbinding; i++)
			bound[nb++] = kg->binding[i];
		for (size_t i = 0; i < ks->nbinding; i++)
			bound[nb++] = ks->binding[i];
		char btitles[2048] = "";
		titles(btitles, sizeof(btitles), bound, nb);
		json_t *hc = cites3(c, NIST_BAN " (no composition rules)", NULL, NULL);
		for (size_t i = 0; i < nb; i++) {
			class_basis b = class_basis_of(c, bound[i]);
			if (b.required)
				cite_add(c, hc, b.cite);
			if (b.runs_required)
				cite_add(c, hc, source_of(c, bound[i], "runs"));
		}
		add_rule(rules, "classes.human", "Character classes", "human",
			 nb == 0 ? jstr("Human accounts: no composition rules (no required character "
					       "classes, no run limits).")
				 : jfmt("Human accounts: no composition rules (no required character classes, "
					"no run limits), except on systems in the scope of %s, where what %s "
					"requires applies (a standing exception, see Exceptions).",
					btitles, nb == 1 ? "that standard" : "each of those standards"),
			 jarr(), hc, names1(c->nist->name));
	}
	if (c->general.n == 0)
		return;
	if (kg->classes == 0) {
		if (!conflict)
			add_rule(rules, "classes", "Character classes", "all",
				 jfmt("No composition rules%s: length and randomness give the strength.", below),
				 jarr(),
				 c->nist != NULL ? cites3(c, NIST_BAN " (no composition rules)", NULL, NULL)
						 : jarr(),
				 c->nist != NULL ? names1(c->nist->name) : jarr());
	} else {
		json_t *value = jarr(), *cites = jarr(), *from = jarr();
		for (size_t i = 0; i < kg->nneed; i++)
			if (kg->need[i]->classes != 0) {
				class_cites(c, kg->need[i], cites);
				push(from, jstr(kg->need[i]->name));
			}
		class_words(kg->classes, words, sizeof(words), value);
		add_rule(rules, conflict ? "classes.service" : "classes", "Character classes",
			 conflict ? "service" : "all",
			 jfmt("%s contain at least %s.",
			      conflict ? "Passwords of service, system and application accounts" : "Passwords",
			      words),
			 value, cites, from);
	}
	if (kg->ident || kg->cls) {
		const cs_preset *a = kg->ident_from != NULL ? kg->ident_from : kg->cls_from;
		runs_words(kg->ident, kg->cls, words, sizeof(words));
		add_rule(rules, "runs", "Repeated characters", conflict ? "service" : "all",
			 jfmt("Passwords%s have %s.",
			      conflict ? " of service, system and application accounts" : "", words),
			 need(json_pack("{s:i, s:i}", "max_identical_run", (int)kg->ident, "max_class_run",
					(int)kg->cls)),
			 cites3(c, kg->ident_from != NULL ? source_of(c, kg->ident_from, "runs") : NULL,
				kg->cls_from != NULL ? source_of(c, kg->cls_from, "runs") : NULL, NULL),
			 names1(a->name));
	}
}

/* The database presets' class and run rules: database accounts only. */
static void database_class_rules(const ctx *c, json_t *rules)
{
	composition k;
	composition_of(c, &c->db, &k);
	char words[256];
	if (k.classes != 0) {
		json_t *value = jarr(), *cites = jarr(), *from = jarr();
		for (size_t i = 0; i < k.nneed; i++)
			if (k.need[i]->classes != 0) {
				class_cites(c, k.need[i], cites);
				push(from, jstr(k.need[i]->name));
			}
		class_words(k.classes, words, sizeof(words), value);
		add_rule(rules, "classes.database", "Character classes", "service",
			 jfmt("Database passwords contain at least %s.", words), value, cites, from);
	}
	if (k.ident || k.cls) {
		runs_words(k.ident, k.cls, words, sizeof(words));
		add_rule(rules, "runs.database", "Repeated characters", "service",
			 jfmt("Database passwords have %s.", words),
			 need(json_pack("{s:i, s:i}", "max_identical_run", (int)k.ident, "max_class_run",
					(int)k.cls)),
			 cites3(c, k.ident_from != NULL ? source_of(c, k.ident_from, "runs") : NULL,
				k.cls_from != NULL ? source_of(c, k.cls_from, "runs") : NULL, NULL),
			 names1((k.ident_from != NULL ? k.ident_from : k.cls_from)->name));
	}
}

/* ---- rotation --------------------------------------------------------------------- */

typedef struct {
	const cs_preset *shortest; /* the shortest maximum lifetime of a general preset, or NULL */
	const cs_preset *stig;     /* ... of a STIG preset (on its systems), or NULL */
	int pci;                   /* PCI DSS chosen: 8.3.9 and 8.6.3 */
} rotation;

static const cs_preset *shortest_of(const ctx *c, const preset_group *g)
{
	const cs_preset *s = NULL;
	for (size_t i = 0; i < g->n; i++)
		if (g->p[i]->rotation_days && allowed(c, source_of(c, g->p[i], "rotation")) &&
		    (s == NULL || g->p[i]->rotation_days < s->rotation_days))
			s = g->p[i];
	return s;
}

static void rotation_of(const ctx *c, rotation *r)
{
	memset(r, 0, sizeof(*r));
	r->shortest = shortest_of(c, &c->general);
	r->stig = shortest_of(c, &c->stig);
	r->pci = (c->chosen & F_PCI) != 0;
}

static int rotation_conflict(const ctx *c, const rotation *r)
{
	return c->nist != NULL && (r->shortest != NULL || r->stig != NULL || r->pci);
}

static void rotation_rules(const ctx *c, const rotation *r, json_t *rules)
{
	int conflict = rotation_conflict(c, r);
	if (c->general.n > 0 && r->shortest != NULL) {
		add_rule(rules, "rotation.privileged", "Rotation: service and privileged accounts",
			 conflict ? "service" : "all",
			 jfmt("%s: rotate at least every %d days, and immediately on suspected "
			      "compromise; generate every replacement with a new certificate.",
			      conflict ? "Service, system and application credentials"
				       : "Privileged and service credentials",
			      r->shortest->rotation_days),
			 jint(r->shortest->rotation_days),
			 cites3(c, source_of(c, r->shortest, "rotation"), NULL, NULL),
			 names1(r->shortest->name));
	} else if (c->general.n > 0) {
		char below[1200];
		except_below(c, r->stig != NULL, 0, below, sizeof(below));
		add_rule(rules, "rotation.privileged", "Rotation: service and privileged accounts", "all",
			 jfmt("No maximum lifetime is required by the chosen standards%s: rotate on "
			      "suspected compromise, on staff change, and per the frameworks below.",
			      below),
			 NULL, jarr(), jarr());
	}
	for (size_t i = 0; i < c->n; i++) {
		const cs_preset *p = c->sel[i];
		if (!is_database(p) && (families_of_preset(p) & F_DISA))
			continue; /* in the block of its systems */
		char id[96], title[160];
		snprintf(id, sizeof(id), "rotation.%s", p->name);
		snprintf(title, sizeof(title), "Rotation: %s", p->title);
		const char *accounts = "all";
		if (is_database(p))
			accounts = "service";
		else if (conflict)
			accounts = p == c->nist ? "human" : "service";
		const char *cite = source_of(c, p, "rotation");
		const cs_preset *ref = referenced(c, p, "rotation");
		if (ref != NULL && !is_database(ref) && (families_of_preset(ref) & F_DISA))
			/* "see dod-stig": that standard's rule, where it applies */
			add_rule(rules, id, title, "all",
				 jfmt("On systems in the scope of %s, rotation as that standard sets it (see "
				      "the rules for those systems), and immediately on suspected compromise.",
				      ref->title),
				 NULL, cites3(c, cite, NULL, NULL), names1(p->name));
		else if (allowed(c, p->rotation) && cite != NULL && allowed(c, cite))
			add_rule(rules, id, title, accounts, jstr(p->rotation),
				 p->rotation_days ? jint(p->rotation_days) : NULL,
				 cites3(c, cite, NULL, NULL), names1(p->name));
		else /* e.g. "per the applicable STIG" when no STIG was chosen */
			add_rule(rules, id, title, accounts,
				 jfmt("%s: its own rotation guidance refers to a standard that was not "
				      "chosen and is left out; change credentials on suspected compromise.",
				      p->title),
				 NULL, jarr(), names1(p->name));
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

/* The F_DISA texts continue "On systems in the scope of <STIG preset>, ". */
static const extra_rule extra_rules[] = {
	{F_DISA, "history.srg", "Password history", "all", 5,
	 "a new password of an operating-system account may not repeat any of the account's last 5 "
	 "passwords.",
	 NULL, "DISA GPOS SRG SRG-OS-000077-GPOS-00045 (reuse prohibited for 5 generations)"},
	{F_PCI, "history.pci", "Password history", "human", 4,
	 "A new password may not equal any of the account's last 4 passwords.", NULL,
	 "PCI DSS v4.0.1 8.3.7 (not the same as any of the last four)"},
	{F_DISA, "lifetime.minimum", "Minimum password lifetime", "all", 24,
	 "a user may not change the password of an operating-system account again within 24 hours "
	 "of its last change; a change an administrator makes (on suspected compromise, at "
	 "off-boarding, or as a reset) is exempt and takes effect at once (see Conflicts).",
	 NULL, "DISA GPOS SRG SRG-OS-000075-GPOS-00043 (24 hours minimum lifetime)"},
	{F_DISA, "changed-characters", "Changed characters", "all", 8,
	 "a new password of an operating-system account differs from the one it replaces in at least "
	 "8 characters.",
	 NULL, "DISA RHEL 9 STIG pwquality difok = 8 (SRG-OS-000072-GPOS-00040)"},
	{F_DISA, "lockout.srg", "Lockout", "all", 3,
	 "after 3 consecutive invalid logon attempts to an operating-system account within 15 "
	 "minutes, the account is locked until an administrator releases it.",
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

#define LIFETIME_CITE "DISA GPOS SRG SRG-OS-000075-GPOS-00043 (24 hours minimum lifetime)"

static json_t *presets_of_family(const ctx *c, unsigned family)
{
	json_t *arr = jarr();
	for (size_t i = 0; i < c->n; i++)
		if (families_of_preset(c->sel[i]) & family)
			push(arr, jstr(c->sel[i]->name));
	return arr;
}

/* The chosen PCI DSS presets, as "the pci-dss-4 preset" or "the a and b
 * presets", into out. */
static void pci_titles(const ctx *c, char *out, size_t cap)
{
	size_t n = 0, total = 0, len = 0;
	for (size_t i = 0; i < c->n; i++)
		total += (families_of_preset(c->sel[i]) & F_PCI) != 0;
	len = (size_t)snprintf(out, cap, "the ");
	for (size_t i = 0; i < c->n && len < cap; i++) {
		if (!(families_of_preset(c->sel[i]) & F_PCI))
			continue;
		n++;
		len += (size_t)snprintf(out + len, cap - len, "%s%s", n == 1 ? "" : (n == total ? " and " : ", "),
					c->sel[i]->name);
	}
	if (len < cap)
		snprintf(out + len, cap - len, total == 1 ? " preset" : " presets");
}

/* inventory.pci_password_change_days = days: the password-only rule as
 * the credential inventory applies it (every password generated under a
 * PCI DSS preset, whatever its account type). */
static json_t *pci_days_text(const ctx *c, int days)
{
	char pci[1024];
	pci_titles(c, pci, sizeof(pci));
	return jfmt("Passwords generated under %s are treated as the only factor of their accounts' access "
		    "(human, service, system and application accounts alike) and are changed at least once "
		    "every %d days (PCI DSS v4.0.1 8.3.9); the credential inventory gives each one's rotation "
		    "due date.%s",
		    pci, days,
		    c->nist != NULL ? " For human accounts this is a standing exception to SP 800-63B-4's ban "
				      "on periodic changes (see Conflicts and Exceptions)."
				    : "");
}

/* The rules of one family; F_DISA's on the systems in the STIG's scope. */
static void extra_rules_add(const ctx *c, json_t *rules, int stig_block, const char *scope,
			    const char *block_title)
{
	for (size_t i = 0; i < sizeof(extra_rules) / sizeof(extra_rules[0]); i++) {
		const extra_rule *e = &extra_rules[i];
		if (!(c->chosen & e->family) || (e->family == F_DISA) != stig_block)
			continue;
		/* the change interval the configuration sets (8.3.9's 90-day
		 * option): it applies whatever else is chosen, as the inventory
		 * applies it (a standing exception to SP 800-63B-4, see Conflicts) */
		int pci_days = c->pci_days > 0 && strcmp(e->id, "password-only") == 0 ? c->pci_days : 0;
		int with_nist = c->nist != NULL && e->text_with_nist != NULL;
		json_t *text = stig_block ? jfmt("On systems in the scope of %s, %s", scope, e->text)
			       : pci_days  ? pci_days_text(c, pci_days)
					   : jstr(with_nist ? e->text_with_nist : e->text);
		int value = pci_days ? pci_days : e->value;
		add_rule(rules, e->id, stig_block ? block_title : e->title, pci_days ? "all" : e->accounts, text,
			 value ? jint(value) : NULL,
			 cites3(c, e->cite, with_nist ? NIST_BAN " (no periodic changes)" : NULL, NULL),
			 presets_of_family(c, e->family));
	}
}

/* The DISA SRG/STIG is a configuration standard for the operating systems
 * in its scope: its rules are stated for those systems and their
 * operating-system accounts (people's and services' alike), not merged
 * into the organisation-wide rules. */
static void stig_rules(const ctx *c, json_t *rules)
{
	if (c->stig.n == 0)
		return;
	char scope[1024], title[1100], words[256], id[96];
	titles(scope, sizeof(scope), c->stig.p, c->stig.n);
	snprintf(title, sizeof(title), "Systems in the scope of %s", scope);
	for (size_t i = 0; i < c->stig.n; i++) {
		const cs_preset *s = c->stig.p[i];
		int generated = password_min(s, c->wl);
		snprintf(id, sizeof(id), "length.%s", s->name);
		if (generated > s->min_length)
			add_rule(rules, id, title, "all",
				 jfmt("On systems in the scope of %s, passwords of operating-system accounts "
				      "have at least %d characters; those the appliance generates at least "
				      "%d, so that each reaches %d bits of security strength.",
				      s->title, s->min_length, generated, s->strength_bits),
				 jint(s->min_length),
				 cites3(c, cite_of(s, "length"), FLOOR_CITE, NULL), names1(s->name));
		else
			add_rule(rules, id, title, "all",
				 jfmt("On systems in the scope of %s, passwords of operating-system accounts "
				      "have at least %d characters.",
				      s->title, s->min_length),
				 jint(s->min_length), cites3(c, cite_of(s, "length"), NULL, NULL),
				 names1(s->name));
		if (s->classes) {
			json_t *value = jarr(), *cites = jarr();
			class_words(s->classes, words, sizeof(words), value);
			class_cites(c, s, cites);
			snprintf(id, sizeof(id), "classes.%s", s->name);
			add_rule(rules, id, title, "all",
				 jfmt("On systems in the scope of %s, passwords of operating-system accounts "
				      "contain at least %s.",
				      s->title, words),
				 value, cites, names1(s->name));
		}
		if (has_runs(s)) {
			runs_words(s->max_identical_run, s->max_class_run, words, sizeof(words));
			snprintf(id, sizeof(id), "runs.%s", s->name);
			add_rule(rules, id, title, "all",
				 jfmt("On systems in the scope of %s, passwords of operating-system accounts "
				      "have %s.",
				      s->title, words),
				 need(json_pack("{s:i, s:i}", "max_identical_run", (int)s->max_identical_run,
						"max_class_run", (int)s->max_class_run)),
				 cites3(c, source_of(c, s, "runs"), NULL, NULL), names1(s->name));
		}
		snprintf(id, sizeof(id), "rotation.%s", s->name);
		const char *rc = source_of(c, s, "rotation");
		if (s->rotation_days && allowed(c, rc))
			add_rule(rules, id, title, "all",
				 jfmt("On systems in the scope of %s, passwords of operating-system accounts "
				      "are changed at least every %d days (maximum lifetime), and immediately "
				      "on suspected compromise.",
				      s->title, s->rotation_days),
				 jint(s->rotation_days), cites3(c, rc, NULL, NULL), names1(s->name));
		else if (allowed(c, s->rotation) && rc != NULL && allowed(c, rc))
			add_rule(rules, id, title, "all",
				 jfmt("On systems in the scope of %s: %s", s->title, s->rotation), NULL,
				 cites3(c, rc, NULL, NULL), names1(s->name));
	}
	extra_rules_add(c, rules, 1, scope, title);
}

/* ---- texts of the presets file ------------------------------------------------------ */

static void text_rule(const ctx *c, json_t *rules, const json_t *entry, const char *id,
		      const char *title, const char *from)
{
	const char *text = json_string_value(json_object_get(entry, "text"));
	if (text == NULL || !allowed(c, text))
		return;
	json_t *cites = jarr();
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(entry, "cites"), i, v)
		cite_add(c, cites, json_string_value(v));
	add_rule(rules, id, title, "all", jstr(text), NULL, cites, names1(from));
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
	push(list, json_pack("{s:s, s:o, s:o}", "id", id, "text", text, "cites", cites));
}

/* What p sets, for the statement of the composition conflict. */
static void composition_statement(FILE *f, const ctx *c, const cs_preset *p, int stig)
{
	char words[256];
	class_basis b = class_basis_of(c, p);
	fprintf(f, "; %s%s ", p->title, stig ? ", on the systems in its scope," : "");
	if (b.required) {
		class_words(b.required, words, sizeof(words), NULL);
		fprintf(f, "requires %s (%s)", words, b.cite);
		if (b.choice) {
			class_words(b.choice, words, sizeof(words), NULL);
			fprintf(f, ", and the preset adds %s as its own choice", words);
		}
	} else if (p->classes) {
		class_words(p->classes, words, sizeof(words), NULL);
		fprintf(f, "sets %s", words);
		if (allowed(c, b.cite))
			fprintf(f, " (%s)", b.cite);
	}
	if (has_runs(p)) {
		const char *rc = source_of(c, p, "runs");
		fprintf(f, "%srun limits", p->classes ? " and " : "sets ");
		if (rc != NULL && allowed(c, rc))
			fprintf(f, " (%s)", rc);
	}
}

static void composition_conflict(const ctx *c, const composition *kg, const composition *ks,
				 json_t *conflicts, json_t *exceptions)
{
	if (c->nist == NULL || (kg->nneed == 0 && ks->nneed == 0))
		return;
	char words[256], ptitles[2048];
	char *statement = NULL, *human = NULL, *service = NULL;
	size_t slen = 0, hlen = 0, vlen = 0;
	FILE *f = open_memstream(&statement, &slen);
	FILE *fh = f != NULL ? open_memstream(&human, &hlen) : NULL;
	FILE *fv = fh != NULL ? open_memstream(&service, &vlen) : NULL;
	if (fv == NULL) {
		build_failed = 1;
		if (fh != NULL)
			fclose(fh);
		if (f != NULL)
			fclose(f);
		free(statement);
		free(human);
		return;
	}
	const composition *ks_or_kg[2] = {kg, ks};
	json_t *cites = cites3(c, NIST_BAN " (no composition rules)", NULL, NULL);
	json_t *hc = cites3(c, NIST_BAN " (no composition rules)", NULL, NULL);
	json_t *sc = jarr();
	fputs("SP 800-63B-4 forbids composition rules for passwords (3.1.1.2)", f);
	for (size_t g = 0; g < 2; g++)
		for (size_t i = 0; i < ks_or_kg[g]->nneed; i++) {
			const cs_preset *p = ks_or_kg[g]->need[i];
			composition_statement(f, c, p, g == 1);
			class_cites(c, p, cites);
			class_cites(c, p, sc);
			if (has_runs(p)) {
				cite_add(c, cites, source_of(c, p, "runs"));
				cite_add(c, sc, source_of(c, p, "runs"));
			}
		}
	fputs(".", f);

	fputs("Human accounts follow SP 800-63B-4: no composition rules (no required character "
	      "classes, no run limits).",
	      fh);
	const cs_preset *practice[2 * CS_POLICY_STANDARDS_MAX], *binding[2 * CS_POLICY_STANDARDS_MAX];
	size_t np = 0, nb = 0;
	for (size_t g = 0; g < 2; g++) {
		for (size_t i = 0; i < ks_or_kg[g]->npractice; i++)
			practice[np++] = ks_or_kg[g]->practice[i];
		for (size_t i = 0; i < ks_or_kg[g]->nbinding; i++)
			binding[nb++] = ks_or_kg[g]->binding[i];
	}
	if (np > 0) {
		titles(ptitles, sizeof(ptitles), practice, np);
		fprintf(fh, " The composition rules of %s are practice or this appliance's choice, not a "
			    "requirement of the standard, and yield.",
			ptitles);
		for (size_t i = 0; i < np; i++)
			cite_add(c, hc, class_basis_of(c, practice[i]).cite);
	}
	for (size_t g = 0; g < 2; g++)
		for (size_t i = 0; i < ks_or_kg[g]->npartial; i++) {
			const cs_preset *p = ks_or_kg[g]->partial[i];
			class_basis b = class_basis_of(c, p);
			class_words(b.choice, words, sizeof(words), NULL);
			fprintf(fh, " What the %s preset adds to its standard as its own choice (%s) "
				    "yields too.",
				p->name, words);
		}
	if (nb > 0) {
		titles(ptitles, sizeof(ptitles), binding, nb);
		fprintf(fh, " Exception: on systems in the scope of %s, whose assessors test these rules "
			    "as requirements, human account passwords meet what %s requires; each such "
			    "system is a standing exception to SP 800-63B-4 3.1.1.2 (see Exceptions).",
			ptitles, nb == 1 ? "that standard" : "each of those standards");
		for (size_t i = 0; i < nb; i++) {
			const cs_preset *p = binding[i];
			class_basis b = class_basis_of(c, p);
			char id[96];
			if (b.required)
				cite_add(c, hc, b.cite);
			if (b.runs_required)
				cite_add(c, hc, source_of(c, p, "runs"));
			class_words(b.required, words, sizeof(words), NULL);
			snprintf(id, sizeof(id), "composition.%s", p->name);
			json_t *ec = cites3(c, b.required ? b.cite : NULL,
					    b.runs_required ? source_of(c, p, "runs") : NULL,
					    NIST_BAN " (no composition rules)");
			standing(exceptions, id,
				 b.required ? jfmt("Human accounts on systems in the scope of %s: passwords "
						   "contain %s%s, as that standard requires, instead of "
						   "following SP 800-63B-4's ban on composition rules.",
						   p->title, words,
						   b.runs_required ? " and respect its run limits" : "")
					    : jfmt("Human accounts on systems in the scope of %s: passwords "
						   "respect its run limits, as that standard requires, instead "
						   "of following SP 800-63B-4's ban on composition rules.",
						   p->title),
				 ec);
		}
	}

	fputs("Service, system and application accounts meet every chosen composition rule:", fv);
	if (kg->nneed > 0) {
		titles(ptitles, sizeof(ptitles), kg->need, kg->nneed);
		class_words(kg->classes, words, sizeof(words), NULL);
		fprintf(fv, " the presets' rules of %s everywhere (%s%s%s)", ptitles,
			kg->classes ? words : "", (kg->ident || kg->cls) && kg->classes ? ", and " : "",
			kg->ident || kg->cls ? "the run limits" : "");
	}
	if (ks->nneed > 0) {
		titles(ptitles, sizeof(ptitles), ks->need, ks->nneed);
		class_words(ks->classes, words, sizeof(words), NULL);
		fprintf(fv, "%s the rules of %s on the systems in its scope (%s%s%s)",
			kg->nneed > 0 ? ";" : "", ptitles, ks->classes ? words : "",
			(ks->ident || ks->cls) && ks->classes ? ", and " : "",
			ks->ident || ks->cls ? "its run limits" : "");
	}
	fputs(". SP 800-63B-4 sets rules for the passwords people choose and remember; these "
	      "credentials are generated by the appliance and stored, not memorised, so the rules "
	      "cost them nothing.",
	      fv);
	int ok = fclose(f) == 0;
	ok = fclose(fh) == 0 && ok;
	ok = fclose(fv) == 0 && ok;
	if (ok)
		push(
			conflicts,
			json_pack("{s:s, s:s, s:s, s:o, s:{s:o, s:o}}", "id", "composition", "topic",
				  "Composition rules (character classes and run limits)", "statement",
				  statement, "cites", cites, "resolution", "human",
				  resolution(jstr(human), hc), "service",
				  resolution(jstr(service), sc)));
	else {
		build_failed = 1; /* a memory stream could not grow */
		json_decref(cites);
		json_decref(hc);
		json_decref(sc);
	}
	free(statement);
	free(human);
	free(service);
}

/* A maximum lifetime that conflicts with SP 800-63B-4 for human accounts:
 * the statement's part, and, when binding, the standing exception. */
static void lifetime_part(const ctx *c, const cs_preset *p, int stig, FILE *fs, FILE *fh,
			  json_t *cites, json_t *hc, json_t *sc, json_t *exceptions)
{
	const char *cite = source_of(c, p, "rotation");
	fprintf(fs, "; %s sets a maximum lifetime of %d days%s (%s)", p->title, p->rotation_days,
		stig ? " on the systems in its scope" : "", cite);
	cite_add(c, cites, cite);
	cite_add(c, sc, cite);
	if (!is_requirement(cite))
		return;
	char id[96];
	cite_add(c, hc, cite);
	fprintf(fh,
		" Exception: on systems in the scope of %s, the %d-day maximum lifetime applies to "
		"human accounts too; each such system is a standing exception to SP 800-63B-4 3.1.1.2 "
		"(see Exceptions).",
		p->title, p->rotation_days);
	snprintf(id, sizeof(id), "rotation.%s", p->name);
	standing(exceptions, id,
		 jfmt("Human accounts on systems in the scope of %s: passwords are changed at least "
		      "every %d days, as that standard requires, instead of following SP 800-63B-4's "
		      "ban on periodic changes.",
		      p->title, p->rotation_days),
		 cites3(c, cite, NIST_BAN " (no periodic changes)", NULL));
}

/* inventory.pci_password_change_days with SP 800-63B-4 chosen: the
 * N-day change of 8.3.9 is kept, for human accounts too, as a standing
 * exception (the human resolution's part, and the exception). */
static void pci_days_exception(const ctx *c, FILE *fh, json_t *exceptions)
{
	char pci[1024];
	pci_titles(c, pci, sizeof(pci));
	fprintf(fh,
		" Exception: passwords generated under %s are treated as the only factor of their "
		"accounts' access and are changed at least every %d days (PCI DSS v4.0.1 8.3.9), the "
		"due date the credential inventory gives each; for human accounts this is a standing "
		"exception to SP 800-63B-4 3.1.1.2 (see Exceptions).",
		pci, c->pci_days);
	standing(exceptions, "password-only.pci",
		 jfmt("Accounts whose passwords are generated under %s: the password is treated as the only "
		      "factor of the account's access and is changed at least every %d days, as PCI DSS "
		      "v4.0.1 8.3.9 requires of password-only accounts, instead of following SP 800-63B-4's "
		      "ban on periodic changes; the credential inventory gives each password's due date.",
		      pci, c->pci_days),
		 cites3(c, "PCI DSS v4.0.1 8.3.9 (90-day change or dynamic analysis for password-only accounts)",
			NIST_BAN " (no periodic changes)", NULL));
}

static void rotation_conflict_add(const ctx *c, const rotation *r, json_t *conflicts,
				  json_t *exceptions)
{
	if (!rotation_conflict(c, r))
		return;
	static const char pci[] =
		"PCI DSS v4.0.1 8.3.9 (90-day change or dynamic analysis for password-only accounts)";
	static const char tra[] = "PCI DSS v4.0.1 8.6.3, 12.3.1 (targeted risk analysis)";
	char *stmt = NULL, *human = NULL, *service = NULL;
	size_t slen = 0, hlen = 0, vlen = 0;
	FILE *fs = open_memstream(&stmt, &slen);
	FILE *fh = fs != NULL ? open_memstream(&human, &hlen) : NULL;
	FILE *fv = fh != NULL ? open_memstream(&service, &vlen) : NULL;
	if (fv == NULL) {
		build_failed = 1;
		if (fh != NULL)
			fclose(fh);
		if (fs != NULL)
			fclose(fs);
		free(stmt);
		free(human);
		return;
	}
	json_t *cites = cites3(c, NIST_BAN " (no periodic changes)", NULL, NULL);
	json_t *hc = cites3(c, NIST_BAN " (no periodic changes)", NULL, NULL);
	json_t *sc = jarr();
	fputs("SP 800-63B-4 forbids requiring periodic password changes (3.1.1.2)", fs);
	fputs("Human accounts: no periodic change; a change is forced on evidence of compromise "
	      "(SP 800-63B-4 3.1.1.2).",
	      fh);
	if (r->shortest != NULL)
		lifetime_part(c, r->shortest, 0, fs, fh, cites, hc, sc, exceptions);
	if (r->stig != NULL)
		lifetime_part(c, r->stig, 1, fs, fh, cites, hc, sc, exceptions);
	if (r->pci) {
		fputs("; PCI DSS v4.0.1 8.3.9 requires a change at least every 90 days where a password "
		      "is the only factor of a user's access, unless the account's security posture is "
		      "analysed dynamically",
		      fs);
		cite_add(c, cites, pci);
		cite_add(c, hc, pci);
		if (c->pci_days > 0)
			pci_days_exception(c, fh, exceptions);
		else
			fputs(" In the scope of PCI DSS, human accounts use multi-factor authentication, or "
			      "dynamic analysis of their security posture: the alternatives 8.3.9 allows, so its "
			      "90-day change does not arise.",
			      fh);
	}
	fputs(".", fs);

	const cs_preset *s = r->stig != NULL && (r->shortest == NULL ||
						 r->stig->rotation_days < r->shortest->rotation_days)
				     ? r->stig
				     : NULL;
	fputs("Service, system and application accounts: ", fv);
	if (r->shortest != NULL)
		fprintf(fv, "rotate at least every %d days%s", r->shortest->rotation_days,
			r->pci ? " (or more often, where the targeted risk analysis of PCI DSS v4.0.1 8.6.3 "
				 "sets a shorter period)"
			       : "");
	if (s != NULL)
		fprintf(fv, "%son systems in the scope of %s, %sat least every %d days",
			r->shortest != NULL ? "; " : "", s->title, r->shortest != NULL ? "" : "rotate ",
			s->rotation_days);
	if (r->shortest == NULL && r->pci)
		fputs(s != NULL ? "; elsewhere as the targeted risk analysis of PCI DSS v4.0.1 8.6.3 and "
				  "12.3.1 sets"
				: "rotate as the targeted risk analysis of PCI DSS v4.0.1 8.6.3 and 12.3.1 sets",
		      fv);
	fputs(", and immediately on suspected compromise. SP 800-63B-4's ban protects passwords "
	      "people must remember; a generated credential is replaced by a new one from the "
	      "appliance, so rotation does not weaken it.",
	      fv);
	if (r->pci)
		cite_add(c, sc, tra);
	if (r->pci && c->pci_days > 0) {
		char titles_pci[1024];
		pci_titles(c, titles_pci, sizeof(titles_pci));
		fprintf(fv, " Passwords generated under %s: at least every %d days as well (PCI DSS v4.0.1 8.3.9).",
			titles_pci, c->pci_days);
		cite_add(c, sc, pci);
	}
	int ok = fclose(fs) == 0;
	ok = fclose(fh) == 0 && ok;
	ok = fclose(fv) == 0 && ok;
	if (ok)
		push(
			conflicts,
			json_pack("{s:s, s:s, s:s, s:o, s:{s:o, s:o}}", "id", "rotation", "topic",
				  "Periodic password changes", "statement", stmt, "cites", cites,
				  "resolution", "human", resolution(jstr(human), hc), "service",
				  resolution(jstr(service), sc)));
	else {
		build_failed = 1; /* a memory stream could not grow */
		json_decref(cites);
		json_decref(hc);
		json_decref(sc);
	}
	free(stmt);
	free(human);
	free(service);
}

/* The DISA SRG's 24-hour minimum lifetime against changes on compromise
 * and at off-boarding: administrators' changes are exempt. */
static void lifetime_conflict_add(const ctx *c, json_t *conflicts)
{
	if (c->stig.n == 0 || !(c->chosen & F_DISA))
		return;
	char scope[1024];
	titles(scope, sizeof(scope), c->stig.p, c->stig.n);
	json_t *cites = cites3(c, LIFETIME_CITE, c->nist != NULL ? NIST_BAN " (change on evidence of compromise)" : NULL, NULL);
	json_t *statement = jfmt(
		"On the systems in the scope of %s, the DISA SRG's minimum lifetime of 24 hours "
		"(SRG-OS-000075-GPOS-00043) forbids changing a password again within a day of its last "
		"change; this policy requires a change immediately on suspected compromise and, when a "
		"person who knew a credential leaves, the same day%s.",
		scope,
		c->nist != NULL ? ", and SP 800-63B-4 requires a change on evidence of compromise (3.1.1.2)"
				: "");
	json_t *human = jfmt(
		"On the systems in the scope of %s, the 24-hour minimum lifetime applies to the changes "
		"users make to their own passwords. A change an administrator makes on suspected or "
		"confirmed compromise, at off-boarding, or as a reset is exempt from it and takes effect "
		"at once; the administrator records which account was changed, when and why.",
		scope);
	json_t *service = jstr(
		"Service, system and application credentials are replaced by administrators, or by "
		"automation acting for them: a replacement on suspected compromise or at off-boarding is "
		"an administrator's change, exempt from the minimum lifetime, and scheduled rotations "
		"are far more than 24 hours apart.");
	push(
		conflicts,
		json_pack("{s:s, s:s, s:o, s:o, s:{s:o, s:o}}", "id", "minimum-lifetime", "topic",
			  "Minimum password lifetime and changes on compromise", "statement", statement,
			  "cites", cites, "resolution", "human",
			  resolution(human, cites3(c, LIFETIME_CITE,
						   c->nist != NULL ? NIST_BAN " (change on evidence of compromise)" : NULL,
						   NULL)),
			  "service", resolution(service, cites3(c, LIFETIME_CITE, NULL, NULL))));
}

/* ---- the document's other sections ---------------------------------------------------- */

/* Clauses of the chosen standards themselves (never another document). */
static const struct {
	unsigned family;
	const char *cite;
} review_cites[] = {
	{F_PCI, "PCI DSS v4.0.1 12.1.2 (reviewed at least once every 12 months)"},
	{F_ISO, "ISO/IEC 27001:2022 A 5.1 (policies reviewed at planned intervals)"},
	{F_HIPAA, "45 CFR 164.316(b)(2)(iii) (review documentation periodically)"},
	{F_SOC2, "AICPA TSC CC5.3 (policies and procedures reassessed)"},
}, exception_cites[] = {
	{F_PCI, "PCI DSS v4.0.1 Appendix B (compensating controls)"},
	{F_ISO, "ISO/IEC 27001:2022 6.1.3 (risk treatment, risk owners' approval)"},
};

static json_t *family_cites(const ctx *c, int review)
{
	json_t *arr = jarr();
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
	json_t *arr = jarr();
	for (size_t i = 0; i < c->n; i++) {
		json_t *req = jarr();
		for (size_t k = 0; k < c->sel[i]->nstandards; k++)
			cite_add(c, req, c->sel[i]->standards[k]);
		push(arr, json_pack("{s:s, s:s, s:o}", "preset", c->sel[i]->name, "title",
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
	if (o->pci_password_change_days < 0 || o->pci_password_change_days > CS_POLICY_PCI_DAYS_MAX) {
		snprintf(why, why_len, "pci_password_change_days must be 0 to %d (PCI DSS v4.0.1 8.3.9)",
			 CS_POLICY_PCI_DAYS_MAX);
		return CS_E_INVALID_ARG;
	}
	return CS_OK;
}

/* content_sha256: SHA-256 (hex) of the UTF-8 bytes of the compact,
 * key-sorted JSON of the document without "content_sha256" and "approval"
 * (the approval block quotes the digest; its other texts repeat members
 * the digest covers). */
static cs_err content_digest(const json_t *doc, char hex[65])
{
	/* a shallow copy made here: jansson 2.14's json_copy drops a member
	 * it cannot copy and still returns the object */
	json_t *copy = json_object();
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)doc, key, v)
		if (copy != NULL && strcmp(key, "content_sha256") != 0 && strcmp(key, "approval") != 0 &&
		    json_object_set(copy, key, v) != 0) {
			json_decref(copy);
			copy = NULL;
		}
	char *text = cs_json_text(copy, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(copy);
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
	ctx c = {.set = set, .wl = wl, .sel = sel, .n = count, .chosen = F_REF, .pci_days = o.pci_password_change_days};
	build_failed = 0;
	json_t *standards = jarr();
	for (size_t i = 0; i < count; i++) {
		for (size_t k = 0; k < i; k++)
			if (sel[k] == sel[i]) {
				/* a second copy would repeat its rules */
				snprintf(why, why_len, "standard '%s' is named twice", sel[i]->name);
				json_decref(standards);
				return CS_E_INVALID_ARG;
			}
		push(standards, jstr(sel[i]->name));
		unsigned fam = families_of_preset(sel[i]);
		c.chosen |= fam;
		preset_group *g = is_database(sel[i]) ? &c.db : (fam & F_DISA) ? &c.stig : &c.general;
		g->p[g->n++] = sel[i];
		if (g == &c.general && c.nist == NULL && (fam & F_NIST63) && sel[i]->classes == 0 &&
		    !sel[i]->max_identical_run && !sel[i]->max_class_run && !sel[i]->rotation_days)
			c.nist = sel[i];
	}
	composition kg, ks;
	rotation rot;
	composition_of(&c, &c.general, &kg);
	composition_of(&c, &c.stig, &ks);
	rotation_of(&c, &rot);

	json_t *rules = jarr(), *conflicts = jarr(), *standing_list = jarr();
	human_length_rules(&c, rules);
	service_length_rules(&c, rules);
	api_key_rule(&c, rules);
	class_and_run_rules(&c, &kg, &ks, rules);
	database_class_rules(&c, rules);
	const cs_preset *strongest = strongest_of(&c);
	char choice[160];
	strength_choice(strongest, choice, sizeof(choice));
	add_rule(rules, "strength", "Security strength",
		 c.general.n == 0 && c.stig.n == 0 ? "service" : "all",
		 jfmt("Every credential has at least %d bits of security strength.", strongest->strength_bits),
		 jint(strongest->strength_bits),
		 cites3(&c, "NIST SP 800-57 Pt 1 Rev 5 5.6.1", "NIST SP 800-131A Rev 2 (112-bit floor)",
			choice[0] ? choice : NULL),
		 names1(strongest->name));
	text_rule(&c, rules, json_object_get(set->policy, "generation"), "generation",
		  "Generation method and entropy source", NULL);
	text_rule(&c, rules, json_object_get(set->policy, "storage"), "storage", "Storage", NULL);
	rotation_rules(&c, &rot, rules);
	extra_rules_add(&c, rules, 0, NULL, NULL);
	stig_rules(&c, rules);
	framework_rules(&c, rules, json_object_get(set->policy, "offboarding"), "offboarding",
			"Off-boarding");
	framework_rules(&c, rules, json_object_get(set->policy, "evidence"), "evidence",
			"Evidence to keep");
	composition_conflict(&c, &kg, &ks, conflicts, standing_list);
	rotation_conflict_add(&c, &rot, conflicts, standing_list);
	lifetime_conflict_add(&c, conflicts);

	json_t *exception_cites_list = family_cites(&c, 0);
	push(exception_cites_list, jstr("NIST SP 800-131A Rev 2 (112-bit floor)"));
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
	if (exceptions == NULL) {
		json_decref(standards);
		json_decref(rules);
		json_decref(conflicts);
		return CS_E_NOMEM;
	}

	const char *org = o.organisation != NULL ? o.organisation : "the organisation";
	char next[11] = "";
	if (o.effective_date != NULL)
		add_months(o.effective_date, o.review_months, next);
	json_t *scope = o.scope != NULL
				? jstr(o.scope)
				: jfmt("Every credential with which a person or a program authenticates to the "
				       "systems of %s that fall under the standards below, whoever created "
				       "it.",
				       org);
	/* content_sha256 is filled in once the rest is written */
	json_t *doc = json_pack(
		"{s:s, s:s?, s:s?, s:o, s:s?, s:s?, s:i, s:s?, s:s, s:o, s:i, s:o}", "title",
		"Credential policy", "organisation", o.organisation, "owner", o.owner, "scope", scope,
		"version", o.version, "effective_date", o.effective_date, "review_months",
		o.review_months, "next_review", next[0] ? next : NULL, "content_sha256", "",
		"standards", standards, "presets_version", set->version, "sections", sections());
	if (doc == NULL) {
		json_decref(rules);
		json_decref(conflicts);
		json_decref(exceptions);
		return CS_E_NOMEM;
	}
	put(
		doc, "purpose",
		jfmt("This policy sets how %s creates, stores, rotates and retires the credentials of its "
		     "systems (passwords, passphrases, API keys, tokens and other secrets), so that each "
		     "meets the standards named in its scope. Every requirement names its source; where "
		     "the standards conflict, the section on conflicts states how each conflict is "
		     "resolved for each type of account.",
		     org));
	put(
		doc, "account_types",
		json_pack("[{s:s, s:s, s:s}, {s:s, s:s, s:s}]", "id", "human", "name", "Human accounts",
			  "definition",
			  "A person signs in and chooses, remembers or keeps the password: interactive "
			  "user and administrator accounts.",
			  "id", "service", "name", "Service, system and application accounts", "definition",
			  "A program signs in with a credential no person needs to remember: service "
			  "accounts, database users, API keys and tokens."));
	put(doc, "frameworks", frameworks(&c));
	json_t *refs = jarr();
	for (size_t i = 0; i < sizeof(references) / sizeof(references[0]); i++)
		push(refs, jstr(references[i]));
	put(doc, "references", refs);
	put(
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
	put(
		doc, "effective",
		jfmt("This version takes effect on %s and stays in force until a later approved version "
		     "replaces it. The content SHA-256 identifies this document exactly: organisation, "
		     "owner, scope, version, effective date, review cycle and every requirement, "
		     "conflict and exception; a document with another digest is another version and "
		     "needs its own approval.",
		     o.effective_date != NULL ? o.effective_date : "the date of the approval signature"));
	put(doc, "conflicts", conflicts);
	put(doc, "rules", rules);
	put(doc, "exceptions", exceptions);
	put(
		doc, "review",
		json_pack("{s:i, s:o, s:o}", "months", o.review_months, "text",
			  jfmt("The policy owner reviews this policy at least every %d months, and also "
			       "when a chosen standard or the presets file changes, or a security "
			       "incident involves credentials. Each review is recorded; a changed policy "
			       "is approved again as a new version.",
			       o.review_months),
			  "cites", family_cites(&c, 1)));
	char digest[65];
	if (build_failed || content_digest(doc, digest) != CS_OK) {
		json_decref(doc);
		return CS_E_NOMEM;
	}
	put(doc, "content_sha256", jstr(digest));
	put(
		doc, "approval",
		json_pack("{s:o, s:[{s:s, s:n}, {s:s, s:s?}], s:[s, s, s, s]}", "statement",
			  jfmt("Approved for %s. The signature approves this policy, version %s with "
			       "content SHA-256 %s, effective %s.",
			       org, o.version != NULL ? o.version : "(as written above)", digest,
			       o.effective_date != NULL ? o.effective_date : "on the date signed"),
			  "signatories", "role", "Approving officer", "name", "role", "Policy owner",
			  "name", o.owner, "fields", "name", "title", "signature", "date"));
	if (build_failed) {
		json_decref(doc);
		return CS_E_NOMEM;
	}
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

/* md() for text that starts a block (a paragraph, a list item's content),
 * where CommonMark reads more at the start of a line: leading spaces
 * (four make a code block) become character references; a leading '-',
 * '+' or '=' (a list, a thematic break, a setext underline) and the '.'
 * or ')' after leading digits (an ordered list) get a backslash. */
static void md_block(FILE *f, const char *s)
{
	if (s == NULL)
		return;
	for (; *s == ' '; s++)
		fputs("&#32;", f);
	if (*s == '-' || *s == '+' || *s == '=') {
		fputc('\\', f);
	} else {
		size_t digits = 0;
		while (s[digits] >= '0' && s[digits] <= '9')
			digits++;
		if (digits > 0 && (s[digits] == '.' || s[digits] == ')')) {
			fwrite(s, 1, digits, f);
			fputc('\\', f);
			s += digits;
		}
	}
	md(f, s);
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
	md_block(f, str(policy, "purpose"));
	fputs("\n", f);

	md_section(f, policy, "scope");
	md_block(f, str(policy, "scope"));
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
	md_block(f, str(policy, "effective"));
	fputs("\n", f);

	md_section(f, policy, "requirements");
	fputs("Where the standards set different values, the strictest applies, except where the "
	      "section on conflicts resolves otherwise. A rule that names the systems or the "
	      "credentials it covers (the systems in the scope of a standard, database passwords) "
	      "applies to those only. Each rule names the accounts it applies to and its source.\n",
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
		md_block(f, str(v, "rule"));
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
		md_block(f, str(v, "statement"));
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
	md_block(f, str(ex, "process"));
	md_cites(f, json_object_get(ex, "cites"), "Sources");
	fputs("\n", f);
	if (json_array_size(json_object_get(ex, "standing")) > 0) {
		fputs("\nStanding exceptions (from the resolution of conflicts):\n\n", f);
		json_array_foreach(json_object_get(ex, "standing"), i, c) {
			fputs("- ", f);
			md_block(f, str(c, "text"));
			md_cites(f, json_object_get(c, "cites"), "Sources");
			fputs("\n", f);
		}
	}

	const json_t *review = json_object_get(policy, "review");
	md_section(f, policy, "review");
	md_block(f, str(review, "text"));
	md_cites(f, json_object_get(review, "cites"), "Sources");
	fputs("\n", f);

	const json_t *approval = json_object_get(policy, "approval");
	md_section(f, policy, "approval");
	md_block(f, str(approval, "statement"));
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
	      "section on conflicts resolves otherwise. A rule that names the systems or the "
	      "credentials it covers (the systems in the scope of a standard, database passwords) "
	      "applies to those only. Each rule names the accounts it applies to and its source.</p>\n",
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
