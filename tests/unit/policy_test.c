/*
 * policy_test: GET /api/policy as a document an officer can sign (policy.h).
 *
 * - every section a written policy needs is there (purpose, scope, roles and
 *   owner, effective date and version, requirements, conflicts, exceptions,
 *   review, approval), in JSON, Markdown and HTML, with organisation, owner,
 *   scope, version and effective date from the options;
 * - nist-800-63b + fips-140-3 no longer asks human accounts for "all four
 *   classes" (SP 800-63B-4 forbids composition rules) and no longer cites a
 *   STIG that was not chosen; no single preset's policy cites another
 *   standard;
 * - conflicts (composition, periodic change) are stated per account type,
 *   citing both sides;
 * - the rules PCI DSS v4.0.1 8.3.4/8.3.7/8.3.9, the DISA SRG (minimum
 *   lifetime, reuse, changed characters, lockout) and SP 800-63B-4 (length
 *   8 with MFA, 64 accepted) set are present when, and only when, chosen;
 * - HTML escapes hostile text; Markdown cannot carry raw HTML; the JSON
 *   parses back; the query parameters and the `policy` configuration group
 *   are validated, with FILE:LINE: setting errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "api.h"
#include "config.h"
#include "policy.h"
#include "test_support.h"

static cs_preset_set *presets;
static cs_wordlist *wordlist;

static int setup(void **state)
{
	(void)state;
	presets = ts_presets_load(CREDSIGN_SOURCE_DIR "/conf/presets.conf");
	if (presets == NULL || cs_wordlist_load(CREDSIGN_WORDLIST, &wordlist) != CS_OK)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	cs_presets_free(presets);
	cs_wordlist_free(wordlist);
	return 0;
}

/* The policy for comma-separated preset names. */
static json_t *build(const char *names, const cs_policy_options *opts)
{
	const cs_preset *sel[CS_POLICY_STANDARDS_MAX];
	size_t n = 0;
	char *copy = strdup(names), *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
		sel[n] = cs_preset_find(presets, t);
		if (sel[n] == NULL)
			fail_msg("no preset %s", t);
		n++;
	}
	free(copy);
	json_t *policy = NULL;
	char why[256] = "";
	cs_err r = cs_policy_build_doc(presets, wordlist, sel, n, opts, &policy, why, sizeof(why));
	if (r != CS_OK)
		fail_msg("%s: %s", names, why);
	return policy;
}

static const json_t *rule(const json_t *policy, const char *id)
{
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(policy, "rules"), i, r)
		if (strcmp(json_string_value(json_object_get(r, "id")), id) == 0)
			return r;
	return NULL;
}

static const char *s_of(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* Does a citation list hold one containing `part`? */
static int cites_have(const json_t *cites, const char *part)
{
	size_t i;
	json_t *c;
	json_array_foreach(cites, i, c)
		if (strstr(json_string_value(c), part) != NULL)
			return 1;
	return 0;
}

static const json_t *conflict(const json_t *policy, const char *id)
{
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(policy, "conflicts"), i, c)
		if (strcmp(s_of(c, "id"), id) == 0)
			return c;
	return NULL;
}

/* The document in all three forms, as one text to search. */
static char *all_forms(const json_t *policy)
{
	char *json = json_dumps(policy, JSON_COMPACT), *md = cs_policy_markdown(policy),
	     *html = cs_policy_html(policy), *all = NULL;
	assert_non_null(json);
	assert_non_null(md);
	assert_non_null(html);
	assert_true(asprintf(&all, "%s\n%s\n%s", json, md, html) > 0);
	free(json);
	free(md);
	free(html);
	return all;
}

/* ---- the sections of a written policy ------------------------------------------- */

static void test_sections(void **state)
{
	(void)state;
	cs_policy_options o = {.organisation = "Example Health Ltd",
			       .owner = "Chief Information Security Officer",
			       .scope = "All production systems of the claims platform",
			       .version = "2.1",
			       .effective_date = "2025-01-31",
			       .review_months = 6};
	json_t *p = build("pci-dss-4,hipaa", &o);
	static const char *const ids[] = {"purpose", "scope", "roles", "effective", "requirements",
					  "conflicts", "exceptions", "review", "approval"};
	const json_t *sections = json_object_get(p, "sections");
	assert_int_equal(json_array_size(sections), sizeof(ids) / sizeof(ids[0]));
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		assert_string_equal(s_of(json_array_get(sections, i), "id"), ids[i]);
	assert_string_equal(s_of(p, "organisation"), "Example Health Ltd");
	assert_string_equal(s_of(p, "owner"), "Chief Information Security Officer");
	assert_string_equal(s_of(p, "scope"), "All production systems of the claims platform");
	assert_string_equal(s_of(p, "version"), "2.1");
	assert_string_equal(s_of(p, "effective_date"), "2025-01-31");
	assert_int_equal(json_integer_value(json_object_get(p, "review_months")), 6);
	assert_string_equal(s_of(p, "next_review"), "2025-07-31");
	assert_int_equal(strlen(s_of(p, "content_sha256")), 64);
	assert_non_null(strstr(s_of(p, "purpose"), "Example Health Ltd"));
	assert_non_null(strstr(s_of(p, "effective"), "2025-01-31"));
	/* roles: the owner holds the owner's role; an approving officer signs */
	const json_t *owner = json_array_get(json_object_get(p, "roles"), 0);
	assert_string_equal(s_of(owner, "role"), "Policy owner");
	assert_string_equal(s_of(owner, "holder"), "Chief Information Security Officer");
	assert_string_equal(s_of(json_array_get(json_object_get(p, "roles"), 1), "role"), "Approving officer");
	assert_true(json_array_size(json_object_get(p, "account_types")) == 2);
	assert_true(json_array_size(json_object_get(p, "rules")) > 10);
	const json_t *ex = json_object_get(p, "exceptions");
	assert_non_null(strstr(s_of(ex, "process"), "approved in writing by the policy owner"));
	const json_t *review = json_object_get(p, "review");
	assert_int_equal(json_integer_value(json_object_get(review, "months")), 6);
	assert_non_null(strstr(s_of(review, "text"), "at least every 6 months"));
	assert_true(cites_have(json_object_get(review, "cites"), "PCI DSS v4.0.1 12.1.2"));
	assert_true(cites_have(json_object_get(review, "cites"), "164.316(b)(2)(iii)"));
	const json_t *approval = json_object_get(p, "approval");
	assert_non_null(strstr(s_of(approval, "statement"), s_of(p, "content_sha256")));
	assert_non_null(strstr(s_of(approval, "statement"), "version 2.1"));
	assert_int_equal(json_array_size(json_object_get(approval, "signatories")), 2);
	assert_int_equal(json_array_size(json_object_get(approval, "fields")), 4);

	char *md = cs_policy_markdown(p);
	assert_non_null(md);
	static const char *const headings[] = {
		"## 1. Purpose\n", "## 2. Scope\n", "## 3. Roles and responsibilities\n",
		"## 4. Effective date and version\n", "## 5. Requirements\n",
		"## 6. Conflicts between the standards\n", "## 7. Exceptions\n", "## 8. Review\n",
		"## 9. Approval\n"};
	for (size_t i = 0; i < sizeof(headings) / sizeof(headings[0]); i++)
		if (strstr(md, headings[i]) == NULL)
			fail_msg("Markdown lacks %s", headings[i]);
	assert_non_null(strstr(md, "| Policy owner | Chief Information Security Officer |"));
	assert_non_null(strstr(md, "| Effective date | 2025-01-31 |"));
	assert_non_null(strstr(md, "| Role | Name | Title | Signature | Date |"));
	free(md);
	char *html = cs_policy_html(p);
	assert_non_null(html);
	assert_true(strncmp(html, "<!DOCTYPE html>", 15) == 0);
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		char h2[64];
		snprintf(h2, sizeof(h2), "<h2 id=\"%s\">", ids[i]);
		if (strstr(html, h2) == NULL)
			fail_msg("HTML lacks %s", h2);
	}
	assert_non_null(strstr(html, "@media print"));
	assert_non_null(strstr(html, "<table class=\"sign\">"));
	free(html);
	json_decref(p);

	/* unset: blanks to fill in, the effective date is the approval's */
	p = build("soc2", NULL);
	assert_true(json_is_null(json_object_get(p, "owner")));
	assert_true(json_is_null(json_object_get(p, "effective_date")));
	assert_true(json_is_null(json_object_get(p, "next_review")));
	assert_int_equal(json_integer_value(json_object_get(p, "review_months")), 12);
	assert_non_null(strstr(s_of(p, "scope"), "the organisation"));
	md = cs_policy_markdown(p);
	assert_non_null(strstr(md, "| Policy owner | _(to be completed)_ |"));
	assert_non_null(strstr(md, "| Effective date | _the date of the approval signature_ |"));
	free(md);
	json_decref(p);
}

/* ---- nist-800-63b + fips-140-3: the case of the issue -------------------------- */

static const struct {
	const char *needle, *brought_by; /* text that only a chosen preset may bring */
} family_needles[] = {
	{"PCI DSS", "pci-dss-4"},       {"pci-dss-4", "pci-dss-4"},     {"45 CFR", "hipaa"},
	{"AICPA", "soc2"},              {"ISO/IEC", "iso-27001"},       {"CIS Controls", "cis-v8"},
	{"FIPS 140", "fips-140-3"},     {"fips-140-3", "fips-140-3"},   {"800-63", "nist-800-63b"},
	{"DISA", "dod-stig"},           {"STIG", "dod-stig"},           {"SRG-OS", "dod-stig"},
	{"dod-stig", "dod-stig"},       {"db-production", "db-production"},
};

/* Nothing in any form of the document names a standard outside `names`. */
static void assert_cites_only_chosen(const json_t *policy, const char *names)
{
	char *all = all_forms(policy);
	for (size_t i = 0; i < sizeof(family_needles) / sizeof(family_needles[0]); i++) {
		char *hay = strdup(names), *save = NULL;
		int chosen = 0;
		for (char *t = strtok_r(hay, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save))
			chosen |= strcmp(t, family_needles[i].brought_by) == 0;
		free(hay);
		if (!chosen && strstr(all, family_needles[i].needle) != NULL)
			fail_msg("policy for %s names '%s' (%s was not chosen)", names,
				 family_needles[i].needle, family_needles[i].brought_by);
	}
	free(all);
}

static void test_nist_fips(void **state)
{
	(void)state;
	json_t *p = build("nist-800-63b,fips-140-3", NULL);
	/* no rule for human accounts asks for character classes */
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(p, "rules"), i, r) {
		const char *accounts = s_of(r, "accounts");
		assert_non_null(accounts);
		if (strcmp(accounts, "service") != 0 && strstr(s_of(r, "rule"), "all four classes") != NULL)
			fail_msg("rule %s requires all four classes of %s", s_of(r, "id"), accounts);
	}
	const json_t *human = rule(p, "classes.human");
	assert_non_null(human);
	assert_string_equal(s_of(human, "accounts"), "human");
	assert_int_equal(json_array_size(json_object_get(human, "value")), 0);
	assert_true(cites_have(json_object_get(human, "cites"), "NIST SP 800-63B-4 3.1.1.2"));
	const json_t *service = rule(p, "classes.service");
	assert_non_null(service);
	assert_string_equal(s_of(service, "accounts"), "service");
	assert_int_equal(json_array_size(json_object_get(service, "value")), 4);
	assert_null(rule(p, "classes"));
	/* the conflict, stated with both citations and resolved per account type */
	const json_t *c = conflict(p, "composition");
	assert_non_null(c);
	assert_true(cites_have(json_object_get(c, "cites"), "NIST SP 800-63B-4 3.1.1.2"));
	assert_true(cites_have(json_object_get(c, "cites"), "FIPS 140-3 sets no password rule"));
	const json_t *res = json_object_get(c, "resolution");
	assert_non_null(strstr(s_of(json_object_get(res, "human"), "rule"), "no composition rules"));
	assert_non_null(strstr(s_of(json_object_get(res, "service"), "rule"), "all four classes"));
	assert_true(cites_have(json_object_get(json_object_get(res, "human"), "cites"), "800-63B-4"));
	assert_true(cites_have(json_object_get(json_object_get(res, "human"), "cites"), "FIPS 140-3"));
	/* fips-140-3's choice is not a requirement: no standing exception for it */
	assert_int_equal(json_array_size(json_object_get(json_object_get(p, "exceptions"), "standing")), 0);
	/* no periodic-change conflict: neither sets a lifetime */
	assert_null(conflict(p, "rotation"));
	/* fips-140-3's rotation text points at dod-stig, which was not chosen */
	const json_t *rot = rule(p, "rotation.fips-140-3");
	assert_non_null(rot);
	assert_null(strstr(s_of(rot, "rule"), "STIG"));
	assert_cites_only_chosen(p, "nist-800-63b,fips-140-3");
	json_decref(p);
}

/* No preset's policy, alone or beside nist-800-63b, names another standard;
 * every rule cites something. */
static void test_cites_only_chosen(void **state)
{
	(void)state;
	for (size_t i = 0; i < presets->count; i++) {
		const char *name = presets->items[i].name;
		char pair[128];
		snprintf(pair, sizeof(pair), "nist-800-63b,%s", name);
		const char *lists[] = {name, strcmp(name, "nist-800-63b") != 0 ? pair : NULL};
		for (size_t l = 0; l < 2 && lists[l] != NULL; l++) {
			json_t *p = build(lists[l], NULL);
			size_t k;
			json_t *r;
			json_array_foreach(json_object_get(p, "rules"), k, r)
				if (json_array_size(json_object_get(r, "cites")) == 0)
					fail_msg("%s: rule %s cites nothing", lists[l], s_of(r, "id"));
			assert_cites_only_chosen(p, lists[l]);
			json_decref(p);
		}
	}
}

/* ---- conflicts per account type ------------------------------------------------- */

static void test_conflicts(void **state)
{
	(void)state;
	json_t *p = build("nist-800-63b,pci-dss-4,dod-stig", NULL);
	const json_t *c = conflict(p, "composition");
	assert_non_null(c);
	const json_t *cites = json_object_get(c, "cites");
	assert_true(cites_have(cites, "NIST SP 800-63B-4 3.1.1.2"));
	assert_true(cites_have(cites, "PCI DSS v4.0.1 8.3.6"));
	assert_true(cites_have(cites, "SRG-OS-000069"));
	const json_t *human = json_object_get(json_object_get(c, "resolution"), "human");
	const json_t *service = json_object_get(json_object_get(c, "resolution"), "service");
	assert_non_null(strstr(s_of(human, "rule"), "Human accounts follow SP 800-63B-4"));
	/* PCI DSS and the SRG are requirements where they apply: a standing exception */
	assert_non_null(strstr(s_of(human, "rule"), "standing exception"));
	assert_true(cites_have(json_object_get(human, "cites"), "800-63B-4"));
	assert_true(cites_have(json_object_get(human, "cites"), "PCI DSS v4.0.1 8.3.6"));
	assert_non_null(strstr(s_of(service, "rule"), "Service, system and application accounts"));
	assert_true(cites_have(json_object_get(service, "cites"), "PCI DSS v4.0.1 8.3.6"));

	c = conflict(p, "rotation");
	assert_non_null(c);
	cites = json_object_get(c, "cites");
	assert_true(cites_have(cites, "NIST SP 800-63B-4 3.1.1.2"));
	assert_true(cites_have(cites, "SRG-OS-000076-GPOS-00044"));
	assert_true(cites_have(cites, "PCI DSS v4.0.1 8.3.9"));
	human = json_object_get(json_object_get(c, "resolution"), "human");
	service = json_object_get(json_object_get(c, "resolution"), "service");
	assert_non_null(strstr(s_of(human, "rule"), "no periodic change"));
	assert_non_null(strstr(s_of(human, "rule"), "multi-factor authentication"));
	assert_non_null(strstr(s_of(service, "rule"), "every 60 days"));
	assert_true(cites_have(json_object_get(service, "cites"), "SRG-OS-000076"));

	/* the standing exceptions the resolutions create */
	const json_t *standing = json_object_get(json_object_get(p, "exceptions"), "standing");
	assert_int_equal(json_array_size(standing), 3); /* PCI and SRG composition, SRG lifetime */
	size_t i;
	json_t *e;
	json_array_foreach(standing, i, e)
		assert_true(cites_have(json_object_get(e, "cites"), "800-63B-4"));
	/* the rules agree: 60 days on the STIG's systems, for their accounts;
	 * no organisation-wide maximum lifetime */
	const json_t *r = rule(p, "rotation.dod-stig");
	assert_string_equal(s_of(r, "accounts"), "all");
	assert_int_equal(json_integer_value(json_object_get(r, "value")), 60);
	assert_non_null(strstr(s_of(r, "rule"), "On systems in the scope of DoD: DISA"));
	assert_null(json_object_get(rule(p, "rotation.privileged"), "value"));
	assert_string_equal(s_of(rule(p, "rotation.nist-800-63b"), "accounts"), "human");
	assert_null(rule(p, "runs"));
	assert_non_null(strstr(s_of(rule(p, "runs.dod-stig"), "rule"), "On systems in the scope of"));
	/* 8.3.9 stated without the periodic change SP 800-63B-4 forbids */
	r = rule(p, "password-only");
	assert_non_null(strstr(s_of(r, "rule"), "multi-factor authentication"));
	assert_true(cites_have(json_object_get(r, "cites"), "PCI DSS v4.0.1 8.3.9"));
	assert_true(cites_have(json_object_get(r, "cites"), "800-63B-4"));
	char *md = cs_policy_markdown(p);
	assert_non_null(strstr(md, "- **Human accounts**: "));
	assert_non_null(strstr(md, "- **Service, system and application accounts**: "));
	free(md);
	json_decref(p);

	/* without SP 800-63B-4 only the STIG's minimum lifetime conflicts (with
	 * changes on compromise); PCI DSS sets the organisation-wide rules, the
	 * STIG its own on the systems in its scope */
	p = build("pci-dss-4,dod-stig", NULL);
	assert_int_equal(json_array_size(json_object_get(p, "conflicts")), 1);
	assert_non_null(conflict(p, "minimum-lifetime"));
	r = rule(p, "classes");
	assert_non_null(r);
	assert_string_equal(s_of(r, "accounts"), "all");
	assert_null(strstr(s_of(r, "rule"), "special"));
	r = rule(p, "classes.dod-stig");
	assert_non_null(strstr(s_of(r, "rule"), "all four classes"));
	assert_int_equal(json_array_size(json_object_get(r, "value")), 4);
	assert_int_equal(json_integer_value(json_object_get(rule(p, "length.human"), "value")), 12);
	assert_int_equal(json_integer_value(json_object_get(rule(p, "length.dod-stig"), "value")), 15);
	assert_int_equal(json_integer_value(json_object_get(rule(p, "rotation.dod-stig"), "value")), 60);
	r = rule(p, "password-only");
	assert_non_null(strstr(s_of(r, "rule"), "at least once every 90 days"));
	json_decref(p);
	p = build("pci-dss-4,hipaa", NULL);
	md = cs_policy_markdown(p);
	assert_non_null(strstr(md, "None: the chosen standards"));
	free(md);
	json_decref(p);
}

/* ---- rules the standards set beyond the presets' numbers ------------------------ */

static void assert_rule(const json_t *p, const char *id, long long value, const char *cite,
			const char *text)
{
	const json_t *r = rule(p, id);
	if (r == NULL)
		fail_msg("no rule %s", id);
	if (value >= 0)
		assert_int_equal(json_integer_value(json_object_get(r, "value")), value);
	if (!cites_have(json_object_get(r, "cites"), cite))
		fail_msg("rule %s does not cite %s", id, cite);
	if (strstr(s_of(r, "rule"), text) == NULL)
		fail_msg("rule %s: '%s' lacks '%s'", id, s_of(r, "rule"), text);
}

static void test_added_rules(void **state)
{
	(void)state;
	json_t *p = build("pci-dss-4", NULL);
	assert_rule(p, "lockout.pci", 10, "PCI DSS v4.0.1 8.3.4", "30 minutes");
	assert_rule(p, "history.pci", 4, "PCI DSS v4.0.1 8.3.7", "last 4");
	assert_rule(p, "password-only", 90, "PCI DSS v4.0.1 8.3.9", "dynamically");
	assert_null(rule(p, "history.srg"));
	assert_null(rule(p, "length.maximum"));
	json_decref(p);
	/* inventory.pci_password_change_days: the 90-day option of 8.3.9, at N days */
	cs_policy_options pci30 = {.pci_password_change_days = 30};
	p = build("pci-dss-4", &pci30);
	assert_rule(p, "password-only", 30, "PCI DSS v4.0.1 8.3.9",
		    "are treated as the only factor of their accounts' access (human, service, system and "
		    "application accounts alike) and are changed at least once every 30 days (PCI DSS v4.0.1 8.3.9)");
	assert_null(strstr(s_of(rule(p, "password-only"), "rule"), "dynamically"));
	assert_non_null(strstr(s_of(rule(p, "password-only"), "rule"), "Passwords generated under the pci-dss-4 preset are"));
	/* every account type, as the inventory applies it */
	assert_string_equal(s_of(rule(p, "password-only"), "accounts"), "all");
	assert_null(conflict(p, "rotation"));
	json_decref(p);
	/* without the setting, 8.3.9's alternatives; no exception */
	p = build("pci-dss-4,nist-800-63b", NULL);
	assert_rule(p, "password-only", 90, "PCI DSS v4.0.1 8.3.9", "multi-factor authentication");
	assert_string_equal(s_of(rule(p, "password-only"), "accounts"), "human");
	char *all = all_forms(p);
	assert_non_null(strstr(all, "8.3.9 also allows is not used"));
	assert_null(strstr(all, "password-only.pci"));
	free(all);
	json_decref(p);
	/* SP 800-63B-4 chosen too: the setting's N-day change stands, as a
	 * standing exception citing both standards, in every form */
	p = build("pci-dss-4,nist-800-63b", &pci30);
	assert_rule(p, "password-only", 30, "PCI DSS v4.0.1 8.3.9", "at least once every 30 days");
	assert_string_equal(s_of(rule(p, "password-only"), "accounts"), "all");
	assert_true(cites_have(json_object_get(rule(p, "password-only"), "cites"), "3.1.1.2"));
	const json_t *rot = conflict(p, "rotation");
	assert_non_null(rot);
	const json_t *human = json_object_get(json_object_get(rot, "resolution"), "human");
	assert_non_null(strstr(s_of(human, "rule"), "changed at least every 30 days (PCI DSS v4.0.1 8.3.9)"));
	assert_non_null(strstr(s_of(human, "rule"), "standing exception"));
	assert_null(strstr(s_of(human, "rule"), "does not arise"));
	const json_t *service = json_object_get(json_object_get(rot, "resolution"), "service");
	assert_non_null(strstr(s_of(service, "rule"), "at least every 30 days as well (PCI DSS v4.0.1 8.3.9)"));
	const json_t *ex = NULL, *e;
	size_t k;
	json_array_foreach(json_object_get(json_object_get(p, "exceptions"), "standing"), k, e)
		if (strcmp(s_of(e, "id"), "password-only.pci") == 0)
			ex = e;
	assert_non_null(ex);
	assert_non_null(strstr(s_of(ex, "text"), "at least every 30 days"));
	assert_true(cites_have(json_object_get(ex, "cites"), "PCI DSS v4.0.1 8.3.9"));
	assert_true(cites_have(json_object_get(ex, "cites"), "3.1.1.2"));
	all = all_forms(p);
	assert_null(strstr(all, "not used"));
	assert_null(strstr(all, "does not arise"));
	assert_non_null(strstr(all, "30 days (PCI DSS v4.0.1 8.3.9)"));
	free(all);
	json_decref(p);
	/* above 8.3.9's maximum: refused */
	const cs_preset *one[1] = {cs_preset_find(presets, "pci-dss-4")};
	cs_policy_options pci91 = {.pci_password_change_days = 91};
	char why[200] = "";
	p = NULL;
	assert_int_equal(cs_policy_build_doc(presets, wordlist, one, 1, &pci91, &p, why, sizeof(why)), CS_E_INVALID_ARG);
	assert_null(p);
	assert_non_null(strstr(why, "8.3.9"));

	p = build("dod-stig", NULL);
	assert_rule(p, "lifetime.minimum", 24, "SRG-OS-000075-GPOS-00043", "24 hours");
	assert_rule(p, "history.srg", 5, "SRG-OS-000077-GPOS-00045", "last 5");
	assert_rule(p, "changed-characters", 8, "SRG-OS-000072-GPOS-00040", "at least 8 characters");
	assert_rule(p, "lockout.srg", 3, "SRG-OS-000021-GPOS-00005", "administrator");
	assert_null(rule(p, "lockout.pci"));
	assert_null(rule(p, "blocklist"));
	json_decref(p);

	p = build("nist-800-63b", NULL);
	assert_rule(p, "length.human.mfa", 8, "NIST SP 800-63B-4 3.1.1.2", "multi-factor");
	assert_rule(p, "length.maximum", 64, "NIST SP 800-63B-4 3.1.1.2", "at least 64 characters");
	assert_rule(p, "length.human", 15, "NIST SP 800-63B-4 3.1.1.2", "15");
	assert_rule(p, "blocklist", -1, "NIST SP 800-63B-4 3.1.1.2", "compromised");
	assert_null(rule(p, "lifetime.minimum"));
	json_decref(p);

	/* with another standard's longer minimum, the MFA length follows it */
	p = build("nist-800-63b,hipaa", NULL);
	assert_rule(p, "length.human.mfa", 16, "164.308(a)(5)(ii)(D)", "16");
	json_decref(p);

	/* none of them for a standard that sets none */
	p = build("soc2", NULL);
	static const char *const none[] = {"lockout.pci", "history.pci", "password-only", "history.srg",
					   "lifetime.minimum", "changed-characters", "lockout.srg",
					   "length.human.mfa", "length.maximum", "blocklist"};
	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
		if (rule(p, none[i]) != NULL)
			fail_msg("soc2 policy has rule %s", none[i]);
	json_decref(p);
}

/* ---- review of issue 11: citations true to the standards --------------------------- */

/* Does any string of the array contain `part`? */
static int any_has(const json_t *arr, const char *part)
{
	return cites_have(arr, part);
}

/* PCI DSS v4.0.1 8.3.6 asks for alphabetic and numeric characters: mixed
 * case is the pci-dss-4 preset's own choice, never credited to 8.3.6. */
static void test_pci_letters_and_digits(void **state)
{
	(void)state;
	json_t *p = build("nist-800-63b,pci-dss-4", NULL);
	const json_t *svc = rule(p, "classes.service");
	assert_non_null(svc);
	assert_true(cites_have(json_object_get(svc, "cites"),
			       "PCI DSS v4.0.1 8.3.6 (alphabetic and numeric characters)"));
	assert_true(cites_have(json_object_get(svc, "cites"), "the pci-dss-4 preset's own choice"));
	/* the standing exception holds human accounts to what 8.3.6 requires */
	const json_t *standing = json_object_get(json_object_get(p, "exceptions"), "standing");
	assert_int_equal(json_array_size(standing), 1);
	const char *text = s_of(json_array_get(standing, 0), "text");
	assert_non_null(strstr(text, "passwords contain a letter and a digit, as that standard requires"));
	assert_null(strstr(text, "case"));
	/* the conflict names the requirement and the choice apart */
	const json_t *c = conflict(p, "composition");
	assert_non_null(strstr(s_of(c, "statement"),
			       "requires a letter and a digit (PCI DSS v4.0.1 8.3.6 (alphabetic and numeric "
			       "characters)), and the preset adds an upper-case letter and a lower-case "
			       "letter as its own choice"));
	const json_t *human = json_object_get(json_object_get(c, "resolution"), "human");
	assert_non_null(strstr(s_of(human, "rule"), "What the pci-dss-4 preset adds to its standard as "
						   "its own choice (an upper-case letter and a lower-case "
						   "letter) yields too."));
	/* no text anywhere says 8.3.6 requires a case */
	char *all = all_forms(p);
	assert_null(strstr(all, "lower-case letter and a digit, as that standard requires"));
	assert_null(strstr(all, "lower-case letter and a digit (PCI DSS"));
	free(all);
	json_decref(p);
}

/* The length of a password used with another factor is each standard's
 * own number (CIS Safeguard 5.2: 8; SP 800-63B-4: 8); the db-* presets
 * govern database accounts, never people. */
static void test_mfa_and_database_scope(void **state)
{
	(void)state;
	json_t *p = build("cis-v8,nist-800-63b", NULL);
	const json_t *mfa = rule(p, "length.human.mfa");
	assert_non_null(mfa);
	assert_int_equal(json_integer_value(json_object_get(mfa, "value")), 8);
	assert_true(cites_have(json_object_get(mfa, "cites"), "CIS Controls v8 Safeguard 5.2 (8 characters with MFA"));
	assert_true(cites_have(json_object_get(mfa, "cites"), "NIST SP 800-63B-4 3.1.1.2 (8 characters"));
	assert_int_equal(json_integer_value(json_object_get(rule(p, "length.human"), "value")), 15);
	json_decref(p);

	/* CIS alone: 14 without MFA, 8 with it */
	p = build("cis-v8", NULL);
	assert_int_equal(json_integer_value(json_object_get(rule(p, "length.human"), "value")), 14);
	assert_int_equal(json_integer_value(json_object_get(rule(p, "length.human.mfa"), "value")), 8);
	json_decref(p);

	/* PCI DSS 8.3.6's 12 characters hold with MFA too */
	p = build("nist-800-63b,pci-dss-4", NULL);
	assert_int_equal(json_integer_value(json_object_get(rule(p, "length.human.mfa"), "value")), 12);
	assert_true(cites_have(json_object_get(rule(p, "length.human.mfa"), "cites"), "PCI DSS v4.0.1 8.3.6"));
	json_decref(p);

	static const char *const with_db[] = {"db-production", "nist-800-63b,db-production",
					      "hipaa,db-production,db-staging", "pci-dss-4,db-development"};
	for (size_t i = 0; i < sizeof(with_db) / sizeof(with_db[0]); i++) {
		p = build(with_db[i], NULL);
		size_t k;
		json_t *r;
		json_array_foreach(json_object_get(p, "rules"), k, r) {
			const char *accounts = s_of(r, "accounts");
			if (strcmp(accounts, "service") == 0 || strcmp(s_of(r, "id"), "accounts.human") == 0 ||
			    strcmp(s_of(r, "id"), "generation") == 0 || strcmp(s_of(r, "id"), "storage") == 0 ||
			    strncmp(s_of(r, "id"), "offboarding", 11) == 0 ||
			    strncmp(s_of(r, "id"), "evidence", 8) == 0)
				continue;
			/* a rule for people or for everyone takes nothing from a db-* preset */
			if (any_has(json_object_get(r, "from"), "db-") ||
			    cites_have(json_object_get(r, "cites"), "credsign practice"))
				fail_msg("%s: rule %s (%s) comes from a database preset", with_db[i], s_of(r, "id"),
					 accounts);
		}
		assert_non_null(rule(p, "length.database"));
		assert_string_equal(s_of(rule(p, "length.database"), "accounts"), "service");
		json_decref(p);
	}
	p = build("db-production", NULL);
	assert_null(rule(p, "length.human"));
	assert_null(rule(p, "length.human.mfa"));
	assert_non_null(strstr(s_of(rule(p, "accounts.human"), "rule"), "database accounts only"));
	assert_string_equal(s_of(rule(p, "classes.database"), "accounts"), "service");
	json_decref(p);
	p = build("nist-800-63b,db-production", NULL);
	assert_int_equal(json_integer_value(json_object_get(rule(p, "length.human"), "value")), 15);
	assert_int_equal(json_integer_value(json_object_get(rule(p, "length.human.mfa"), "value")), 8);
	assert_null(conflict(p, "composition")); /* database passwords are no person's */
	json_decref(p);
}

/* API keys: the lengths the appliance enforces (class rules included),
 * cited to what sets a strength. */
static void test_api_key_lengths(void **state)
{
	(void)state;
	static const char *const cases[] = {"pci-dss-4", "hipaa", "cis-v8", "nist-800-63b,pci-dss-4,hipaa"};
	static const int types[] = {CS_TYPE_API_KEY, CS_TYPE_HEX, CS_TYPE_BASE64URL};
	static const char *const names[] = {"api-key", "hex", "base64url"};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *p = build(cases[i], NULL);
		const json_t *r = rule(p, "length.api-key");
		assert_non_null(r);
		const json_t *v = json_object_get(r, "value");
		/* the longest enforced minimum of the chosen presets, per type */
		for (size_t t = 0; t < 3; t++) {
			int want = 0, bits = 0;
			char *copy = strdup(cases[i]), *save = NULL;
			for (char *n = strtok_r(copy, ",", &save); n != NULL; n = strtok_r(NULL, ",", &save)) {
				const cs_preset *pr = cs_preset_find(presets, n);
				cs_plan_request q = {.type = types[t]};
				cs_plan plan;
				char why[256];
				if ((pr->types & (unsigned)types[t]) &&
				    cs_preset_plan(pr, wordlist, &q, &plan, why, sizeof(why)) == CS_OK &&
				    plan.min_length > want)
					want = plan.min_length;
				if (pr->strength_bits > bits)
					bits = pr->strength_bits;
			}
			free(copy);
			assert_int_equal(json_integer_value(json_object_get(json_object_get(v, "min_length"), names[t])),
					 want);
			assert_int_equal(json_integer_value(json_object_get(v, "strength_bits")), bits);
		}
		/* only what addresses a key's strength is cited */
		size_t k;
		json_t *c;
		json_array_foreach(json_object_get(r, "cites"), k, c) {
			const char *cite = json_string_value(c);
			if (strncmp(cite, "NIST SP 800-57", 14) != 0 && strncmp(cite, "NIST SP 800-131A", 16) != 0 &&
			    strstr(cite, "preset's own choice of") == NULL)
				fail_msg("%s: API keys cite %s", cases[i], cite);
		}
		json_decref(p);
	}
	/* the reviewer's figures: a letter and a digit cost a character */
	json_t *p = build("pci-dss-4", NULL);
	const json_t *mins = json_object_get(json_object_get(rule(p, "length.api-key"), "value"), "min_length");
	assert_int_equal(json_integer_value(json_object_get(mins, "hex")), 29);
	assert_non_null(strstr(s_of(rule(p, "length.api-key"), "rule"), "29 for hex"));
	json_decref(p);
	p = build("hipaa", NULL);
	mins = json_object_get(json_object_get(rule(p, "length.api-key"), "value"), "min_length");
	assert_int_equal(json_integer_value(json_object_get(mins, "hex")), 33);
	assert_true(cites_have(json_object_get(rule(p, "length.api-key"), "cites"),
			       "the hipaa preset's own choice of 128 bits"));
	json_decref(p);
	/* no chosen preset issues API keys: no rule about them */
	p = build("nist-800-63b,dod-stig", NULL);
	assert_null(rule(p, "length.api-key"));
	json_decref(p);
}

/* The STIG's 24-hour minimum lifetime against changes on compromise, and
 * every STIG rule scoped to the systems in its scope. */
static void test_stig_lifetime_and_scope(void **state)
{
	(void)state;
	static const char *const cases[] = {"dod-stig", "nist-800-63b,dod-stig", "pci-dss-4,dod-stig",
					    "nist-800-63b,pci-dss-4,dod-stig,fips-140-3"};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *p = build(cases[i], NULL);
		const json_t *c = conflict(p, "minimum-lifetime");
		if (c == NULL)
			fail_msg("%s: the minimum lifetime's conflict is not stated", cases[i]);
		assert_true(cites_have(json_object_get(c, "cites"), "SRG-OS-000075-GPOS-00043"));
		assert_non_null(strstr(s_of(c, "statement"), "immediately on suspected compromise"));
		const json_t *human = json_object_get(json_object_get(c, "resolution"), "human");
		assert_non_null(strstr(s_of(human, "rule"), "A change an administrator makes on suspected or "
							   "confirmed compromise, at off-boarding, or as a reset "
							   "is exempt"));
		assert_non_null(json_object_get(json_object_get(c, "resolution"), "service"));
		if (strstr(cases[i], "nist-800-63b") != NULL)
			assert_true(cites_have(json_object_get(c, "cites"), "NIST SP 800-63B-4 3.1.1.2 (change on evidence"));
		assert_non_null(strstr(s_of(rule(p, "lifetime.minimum"), "rule"), "is exempt"));
		/* every rule from the STIG names the systems it applies to */
		size_t k;
		json_t *r;
		json_array_foreach(json_object_get(p, "rules"), k, r) {
			if (!cites_have(json_object_get(r, "cites"), "DISA"))
				continue;
			if (strstr(s_of(r, "rule"), "n systems in the scope of ") == NULL ||
			    strstr(s_of(r, "rule"), "DoD: DISA") == NULL)
				fail_msg("%s: rule %s cites the STIG without its scope: %s", cases[i], s_of(r, "id"),
					 s_of(r, "rule"));
		}
		json_decref(p);
	}
	/* no STIG, no such conflict */
	json_t *p = build("nist-800-63b,pci-dss-4", NULL);
	assert_null(conflict(p, "minimum-lifetime"));
	json_decref(p);
}

/* Every citation is a chosen standard's or a listed reference: no DoDI,
 * no "see dod-stig". */
static void test_citations_are_sources(void **state)
{
	(void)state;
	static const char *const cases[] = {
		"dod-stig", "fips-140-3,dod-stig", "nist-800-63b,pci-dss-4,dod-stig,fips-140-3",
		"hipaa,soc2,iso-27001,cis-v8,pci-dss-4,dod-stig,nist-800-63b,fips-140-3,db-production,"
		"db-staging,db-development"};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *p = build(cases[i], NULL);
		char *text = json_dumps(p, JSON_COMPACT);
		assert_null(strstr(text, "DoDI"));
		assert_null(strstr(text, "\"see "));
		free(text);
		json_decref(p);
	}
	/* fips-140-3's "see dod-stig" is resolved to what dod-stig cites */
	json_t *p = build("fips-140-3,dod-stig", NULL);
	const json_t *r = rule(p, "rotation.fips-140-3");
	assert_true(cites_have(json_object_get(r, "cites"), "SRG-OS-000076-GPOS-00044"));
	json_decref(p);
	p = build("iso-27001", NULL);
	assert_true(cites_have(json_object_get(json_object_get(p, "exceptions"), "cites"),
			       "ISO/IEC 27001:2022 6.1.3"));
	json_decref(p);
}

/* content_sha256: SHA-256 of the UTF-8 bytes of the compact, key-sorted
 * JSON of the document less "content_sha256" and "approval"; it changes
 * with everything the officer signs. */
static void test_digest(void **state)
{
	(void)state;
	cs_policy_options base = {.organisation = "Soci\xc3\xa9t\xc3\xa9 G\xc3\xa9n\xc3\xa9rale \xe6\x9d\xb1\xe4\xba\xac",
				  .owner = "CISO",
				  .scope = "All systems",
				  .version = "1.0",
				  .effective_date = "2025-01-31",
				  .review_months = 12};
	json_t *p = build("nist-800-63b,pci-dss-4", &base);
	/* recomputed from the documented canonical input */
	json_t *copy = json_deep_copy(p);
	json_object_del(copy, "content_sha256");
	json_object_del(copy, "approval");
	char *text = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(copy);
	assert_non_null(strstr(text, base.organisation)); /* raw UTF-8, not \u escapes */
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	assert_int_equal(EVP_Digest(text, strlen(text), md, &len, EVP_sha256(), NULL), 1);
	free(text);
	char hex[65];
	for (unsigned i = 0; i < len; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	assert_string_equal(s_of(p, "content_sha256"), hex);

	/* each signed field changes it */
	cs_policy_options v[6];
	for (size_t i = 0; i < 6; i++)
		v[i] = base;
	v[0].organisation = "Other Ltd";
	v[1].owner = "CTO";
	v[2].scope = "Only the payment systems";
	v[3].version = "1.1";
	v[4].effective_date = "2025-02-01";
	v[5].review_months = 6;
	for (size_t i = 0; i < 6; i++) {
		json_t *q = build("nist-800-63b,pci-dss-4", &v[i]);
		if (strcmp(s_of(p, "content_sha256"), s_of(q, "content_sha256")) == 0)
			fail_msg("variant %zu has the same digest", i);
		assert_non_null(strstr(s_of(json_object_get(q, "approval"), "statement"), s_of(q, "content_sha256")));
		json_decref(q);
	}
	/* and the same options give the same digest */
	json_t *q = build("nist-800-63b,pci-dss-4", &base);
	assert_string_equal(s_of(p, "content_sha256"), s_of(q, "content_sha256"));
	json_decref(q);
	json_decref(p);
}

/* Text that starts a Markdown block cannot become a list, a rule, a code
 * block or a heading underline. */
static void test_markdown_block_start(void **state)
{
	(void)state;
	static const struct {
		const char *scope, *line;
	} cases[] = {
		{"---", "\\---"},
		{"    code block", "&#32;&#32;&#32;&#32;code block"},
		{"- x", "\\- x"},
		{"1. x", "1\\. x"},
		{"+ x", "\\+ x"},
		{"12) y", "12\\) y"},
		{"===", "\\==="},
		{"* x", "\\* x"},
		{"> q", "\\> q"},
		{"# h", "\\# h"},
		{"2024 budget", "2024 budget"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cs_policy_options o = {.scope = cases[i].scope};
		json_t *p = build("soc2", &o);
		char *md = cs_policy_markdown(p);
		char want[128];
		snprintf(want, sizeof(want), "## 2. Scope\n\n%s\n\nAccount types:", cases[i].line);
		if (strstr(md, want) == NULL)
			fail_msg("scope '%s' is not written as '%s'", cases[i].scope, cases[i].line);
		free(md);
		json_decref(p);
	}
}

/* ---- escaping, JSON, options ------------------------------------------------------ */

static void test_html_escape(void **state)
{
	(void)state;
	char *e = cs_policy_html_escape("<script>alert('x')</script> & \"q\"");
	assert_string_equal(e, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;");
	free(e);
	e = cs_policy_html_escape("");
	assert_string_equal(e, "");
	free(e);

	cs_policy_options o = {.organisation = "<script>alert(1)</script>",
			       .owner = "\"><img src=x onerror=alert(2)>",
			       .scope = "</title><script>alert(3)</script>",
			       .version = "1' onmouseover='alert(4)"};
	json_t *p = build("nist-800-63b,pci-dss-4", &o);
	char *html = cs_policy_html(p);
	assert_null(strstr(html, "<script"));
	assert_null(strstr(html, "<img"));
	assert_null(strstr(html, "1' onmouseover"));
	assert_non_null(strstr(html, "&lt;script&gt;alert(1)&lt;/script&gt;"));
	assert_non_null(strstr(html, "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"));
	assert_non_null(strstr(html, "&lt;/title&gt;&lt;script&gt;alert(3)"));
	assert_non_null(strstr(html, "1&#39; onmouseover=&#39;alert(4)"));
	free(html);
	/* Markdown renderers pass raw HTML through: none survives */
	char *md = cs_policy_markdown(p);
	for (const char *lt = strchr(md, '<'); lt != NULL; lt = strchr(lt + 1, '<'))
		if (lt == md || lt[-1] != '\\')
			fail_msg("raw '<' in Markdown: %.40s", lt);
	assert_non_null(strstr(md, "\\<script\\>alert(1)\\</script\\>"));
	assert_non_null(strstr(md, "\\<img src=x onerror=alert(2)\\>"));
	free(md);
	json_decref(p);
	assert_non_null(strstr(CS_POLICY_HTML_CSP, "default-src 'none'"));
}

static void test_json(void **state)
{
	(void)state;
	cs_policy_options o = {.organisation = "Soci\xc3\xa9t\xc3\xa9 G\xc3\xa9n\xc3\xa9rale \xe6\x9d\xb1\xe4\xba\xac",
			       .owner = "RSSI"};
	json_t *p = build("nist-800-63b,pci-dss-4,dod-stig,hipaa", &o);
	char *text = json_dumps(p, JSON_COMPACT);
	assert_non_null(text);
	json_error_t error;
	json_t *back = json_loads(text, JSON_REJECT_DUPLICATES, &error);
	if (back == NULL)
		fail_msg("JSON does not parse: %s at %d", error.text, error.position);
	assert_true(json_equal(p, back));
	/* every rule: id, title, accounts, rule, cites (non-empty), from */
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(back, "rules"), i, r) {
		assert_true(json_is_string(json_object_get(r, "id")));
		assert_true(json_is_string(json_object_get(r, "title")));
		assert_true(json_is_string(json_object_get(r, "rule")));
		const char *a = s_of(r, "accounts");
		assert_true(strcmp(a, "all") == 0 || strcmp(a, "human") == 0 || strcmp(a, "service") == 0);
		assert_true(json_array_size(json_object_get(r, "cites")) > 0);
		assert_true(json_is_array(json_object_get(r, "from")));
	}
	json_decref(back);
	free(text);
	/* the digest covers the organisation's texts too (test_digest) */
	json_t *q = build("nist-800-63b,pci-dss-4,dod-stig,hipaa", NULL);
	assert_string_not_equal(s_of(p, "content_sha256"), s_of(q, "content_sha256"));
	json_decref(q);
	q = build("nist-800-63b,pci-dss-4,dod-stig", &o);
	assert_string_not_equal(s_of(p, "content_sha256"), s_of(q, "content_sha256"));
	json_decref(q);
	json_decref(p);
}

/* The standards named: none, more than the maximum, one twice: refused
 * with why, no document. */
static void test_standards_refused(void **state)
{
	(void)state;
	const cs_preset *sel[CS_POLICY_STANDARDS_MAX + 1];
	const cs_preset *pci = cs_preset_find(presets, "pci-dss-4");
	assert_non_null(pci);
	for (size_t i = 0; i < CS_POLICY_STANDARDS_MAX + 1; i++)
		sel[i] = pci;
	json_t *p = (json_t *)1;
	char why[256] = "";
	assert_int_equal(cs_policy_build_doc(presets, wordlist, sel, 0, NULL, &p, why, sizeof(why)), CS_E_INVALID_ARG);
	assert_null(p);
	assert_non_null(strstr(why, "name 1 to "));
	why[0] = '\0';
	p = (json_t *)1;
	assert_int_equal(cs_policy_build_doc(presets, wordlist, sel, CS_POLICY_STANDARDS_MAX + 1, NULL, &p, why,
					     sizeof(why)),
			 CS_E_INVALID_ARG);
	assert_null(p);
	assert_non_null(strstr(why, "name 1 to "));
	sel[0] = cs_preset_find(presets, "nist-800-63b");
	assert_non_null(sel[0]);
	p = (json_t *)1;
	assert_int_equal(cs_policy_build_doc(presets, wordlist, sel, 3, NULL, &p, why, sizeof(why)), CS_E_INVALID_ARG);
	assert_null(p);
	assert_string_equal(why, "standard 'pci-dss-4' is named twice");
}

static void test_options(void **state)
{
	(void)state;
	const cs_preset *sel[1] = {cs_preset_find(presets, "soc2")};
	json_t *p = NULL;
	char why[256];
	static const cs_policy_options bad[] = {
		{.effective_date = "2025-02-29"},
		{.effective_date = "2025-2-28"},
		{.review_months = 13},
		{.review_months = -1},
		{.owner = ""},
		{.owner = "a\xe2\x80\xae" "b"},     /* U+202E right-to-left override */
		{.organisation = "bad \xff utf-8"},
		{.version = "line\nbreak"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(cs_policy_build_doc(presets, wordlist, sel, 1, &bad[i], &p, why, sizeof(why)),
				 CS_E_INVALID_ARG);
		assert_null(p);
	}
	/* next review: the day kept, or cut to the month's last */
	static const struct {
		const char *date;
		int months;
		const char *next;
	} dates[] = {{"2024-01-31", 1, "2024-02-29"}, {"2025-01-31", 1, "2025-02-28"},
		     {"2025-03-15", 12, "2026-03-15"}, {"2025-11-30", 3, "2026-02-28"},
		     {"2024-02-29", 12, "2025-02-28"}};
	for (size_t i = 0; i < sizeof(dates) / sizeof(dates[0]); i++) {
		cs_policy_options o = {.effective_date = dates[i].date, .review_months = dates[i].months};
		assert_int_equal(cs_policy_build_doc(presets, wordlist, sel, 1, &o, &p, why, sizeof(why)), CS_OK);
		assert_string_equal(s_of(p, "next_review"), dates[i].next);
		json_decref(p);
	}
	assert_true(cs_config_date_valid("2024-02-29"));
	assert_false(cs_config_date_valid("2023-02-29"));
	assert_false(cs_config_date_valid("2024-13-01"));
	assert_false(cs_config_date_valid("2024-00-10"));
	assert_false(cs_config_date_valid("+024-01-01"));
	assert_false(cs_config_date_valid("2024-01-01x"));
	assert_null(cs_config_text_problem("\xc3\xa9", 1));
	assert_non_null(cs_config_text_problem("\xc3\xa9\xc3\xa9", 1));
	assert_non_null(cs_config_text_problem("\xc2\x85", 8));       /* C1 NEL */
	assert_non_null(cs_config_text_problem("\xe2\x80\x8b", 8));   /* zero-width space */
	assert_non_null(cs_config_text_problem("\xed\xa0\x80", 8));   /* a surrogate */
	assert_non_null(cs_config_text_problem("\xc0\xaf", 8));       /* overlong */
}

/* ---- GET /api/policy query ---------------------------------------------------------- */

static void test_decode(void **state)
{
	(void)state;
	cs_policy_input in;
	cs_api_error err;
	assert_int_equal(cs_api_decode_policy(presets,
					      "standards=nist-800-63b,fips-140-3&format=html&organisation="
					      "Acme%20%C3%89tude&owner=CISO&version=3&scope=All%20systems"
					      "&effective_date=2025-06-01",
					      &in, &err),
			 CS_OK);
	assert_int_equal(in.count, 2);
	assert_int_equal(in.html, 1);
	assert_int_equal(in.markdown, 0);
	assert_string_equal(in.organisation, "Acme \xc3\x89tude");
	assert_string_equal(in.owner, "CISO");
	assert_string_equal(in.version, "3");
	assert_string_equal(in.scope, "All systems");
	assert_string_equal(in.effective_date, "2025-06-01");
	assert_int_equal(cs_api_decode_policy(presets, "standards=soc2", &in, &err), CS_OK);
	assert_int_equal(in.organisation[0], '\0');
	assert_int_equal(in.html, 0);

	char long_owner[200], query[400];
	memset(long_owner, 'a', 129);
	long_owner[129] = '\0';
	snprintf(query, sizeof(query), "standards=soc2&owner=%s", long_owner);
	assert_int_not_equal(cs_api_decode_policy(presets, query, &in, &err), CS_OK);
	assert_int_equal(err.status, 400);
	assert_string_equal(err.code, "invalid_field");
	assert_non_null(strstr(err.message, "1 to 128 characters (it has 129)"));
	/* 128 two-byte characters fit */
	char e128[128 * 6 + 1] = "";
	for (int i = 0; i < 128; i++)
		strcat(e128, "%C3%A9");
	char *q2 = NULL;
	assert_true(asprintf(&q2, "standards=soc2&owner=%s", e128) > 0);
	assert_int_equal(cs_api_decode_policy(presets, q2, &in, &err), CS_OK);
	assert_int_equal(strlen(in.owner), 256);
	free(q2);
	static const struct {
		const char *query, *code, *message;
	} bad[] = {
		{"standards=soc2&owner=", "invalid_field", "1 to 128 characters"},
		{"standards=soc2&organisation=a%E2%80%AEb", "invalid_field", "bidirectional"},
		{"standards=soc2&scope=a%0Ab", "invalid_field", "control characters"},
		{"standards=soc2&version=%FF", "invalid_field", "UTF-8"},
		{"standards=soc2&effective_date=2025-02-30", "invalid_field", "YYYY-MM-DD"},
		{"standards=soc2&effective_date=tomorrow", "invalid_field", "YYYY-MM-DD"},
		{"standards=soc2&format=pdf", "invalid_field", "json, markdown or html"},
		{"standards=soc2&owner=a&owner=b", "invalid_field", "more than once"},
		{"standards=soc2&review_months=6", "unknown_field", "review_months"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (cs_api_decode_policy(presets, bad[i].query, &in, &err) == CS_OK)
			fail_msg("accepted %s", bad[i].query);
		assert_int_equal(err.status, 400);
		assert_string_equal(err.code, bad[i].code);
		if (strstr(err.message, bad[i].message) == NULL)
			fail_msg("%s: message '%s' lacks '%s'", bad[i].query, err.message, bad[i].message);
	}
	/* scope takes up to 512 characters */
	char *scope = malloc(520 + 40);
	strcpy(scope, "standards=soc2&scope=");
	memset(scope + strlen(scope), 's', 512);
	scope[21 + 512] = '\0';
	assert_int_equal(cs_api_decode_policy(presets, scope, &in, &err), CS_OK);
	assert_int_equal(strlen(in.scope), 512);
	strcat(scope, "s");
	assert_int_not_equal(cs_api_decode_policy(presets, scope, &in, &err), CS_OK);
	assert_non_null(strstr(err.message, "1 to 512 characters"));
	free(scope);
}

/* ---- the `policy` configuration group --------------------------------------------------- */

static char dir[512];

static void write_in_dir(const char *name, const char *text, mode_t mode, char *path, size_t cap)
{
	snprintf(path, cap, "%s/%s", dir, name);
	ts_write_file(path, text, mode);
}

static cs_err load_with_policy(const char *policy_group, cs_config **cfg, cs_config_diag *diag,
			       char *path, size_t cap)
{
	char *text = NULL;
	assert_true(asprintf(&text,
			     "tls = {\n  cert = \"cert.pem\";\n  key = \"key.pem\";\n  ca = \"ca.pem\";\n};\n"
			     "pkcs11 = {\n  module = \"module.so\";\n  token_uri = \"pkcs11:token=t\";\n"
			     "  pin_file = \"user.pin\";\n  signing_key = \"pkcs11:token=t;object=k\";\n};\n"
			     "store = {\n  path = \"credsign.db\";\n};\n"
			     "%s",
			     policy_group) > 0);
	write_in_dir("policy.conf", text, 0644, path, cap);
	free(text);
	return cs_config_load(path, cfg, diag);
}

static void test_config(void **state)
{
	(void)state;
	const char *base = getenv("CREDSIGN_TEST_TMP");
	char tmpl[512], path[700];
	if (base != NULL)
		mkdir(base, 0700);
	snprintf(tmpl, sizeof(tmpl), "%s/policy-XXXXXX", base != NULL ? base : "/tmp");
	assert_non_null(mkdtemp(tmpl));
	snprintf(dir, sizeof(dir), "%s", tmpl);
	write_in_dir("cert.pem", "placeholder\n", 0644, path, sizeof(path));
	write_in_dir("key.pem", "placeholder\n", 0600, path, sizeof(path));
	write_in_dir("ca.pem", "placeholder\n", 0644, path, sizeof(path));
	write_in_dir("module.so", "placeholder\n", 0644, path, sizeof(path));
	write_in_dir("user.pin", "123456\n", 0600, path, sizeof(path));

	cs_config *cfg = NULL;
	cs_config_diag diag;
	/* none set: all unset, review every 12 months */
	assert_int_equal(load_with_policy("", &cfg, &diag, path, sizeof(path)), CS_OK);
	assert_null(cfg->policy.owner);
	assert_null(cfg->policy.effective_date);
	assert_int_equal(cfg->policy.review_months, 12);
	cs_config_free(cfg);
	cs_config_diag_free(&diag);

	assert_int_equal(load_with_policy("policy = {\n  organisation = \"Soci\xc3\xa9t\xc3\xa9 X\";\n"
					  "  owner = \"CISO\";\n  scope = \"All systems\";\n"
					  "  version = \"4.2\";\n  effective_date = \"2025-03-01\";\n"
					  "  review_months = 6;\n};\n",
					  &cfg, &diag, path, sizeof(path)),
			 CS_OK);
	assert_string_equal(cfg->policy.organisation, "Soci\xc3\xa9t\xc3\xa9 X");
	assert_string_equal(cfg->policy.owner, "CISO");
	assert_string_equal(cfg->policy.scope, "All systems");
	assert_string_equal(cfg->policy.version, "4.2");
	assert_string_equal(cfg->policy.effective_date, "2025-03-01");
	assert_int_equal(cfg->policy.review_months, 6);
	cs_config_free(cfg);
	cs_config_diag_free(&diag);

	static const struct {
		const char *group, *setting, *reason;
	} bad[] = {
		{"policy = {\n  owner = \"a\xe2\x80\xae" "b\";\n};\n", "policy.owner", "bidirectional"},
		{"policy = {\n  organisation = \"\xff\";\n};\n", "policy.organisation", "UTF-8"},
		{"policy = {\n  effective_date = \"2025-02-29\";\n};\n", "policy.effective_date", "YYYY-MM-DD"},
		{"policy = {\n  review_months = 24;\n};\n", "policy.review_months", "24 is out of range 1..12"},
		{"policy = {\n  owner = 5;\n};\n", "policy.owner", "expected a string"},
		{"policy = {\n  signer = \"x\";\n};\n", "policy.signer", "unknown setting"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cfg = NULL;
		assert_int_equal(load_with_policy(bad[i].group, &cfg, &diag, path, sizeof(path)), CS_E_CONFIG);
		assert_null(cfg);
		char want[800];
		/* the group opens on line 15; the setting is on the next */
		snprintf(want, sizeof(want), "%s:16: setting '%s': ", path, bad[i].setting);
		int found = 0;
		for (size_t k = 0; k < diag.count; k++)
			found |= strncmp(diag.messages[k], want, strlen(want)) == 0 &&
				 strstr(diag.messages[k], bad[i].reason) != NULL;
		if (!found)
			fail_msg("no '%s...%s' among %zu messages, first: %s", want, bad[i].reason, diag.count,
				 diag.count ? diag.messages[0] : "(none)");
		cs_config_diag_free(&diag);
	}
	/* a 129-character owner is too long; 128 fit */
	char group[400], owner[130];
	memset(owner, 'o', 129);
	owner[129] = '\0';
	snprintf(group, sizeof(group), "policy = {\n  owner = \"%s\";\n};\n", owner);
	assert_int_equal(load_with_policy(group, &cfg, &diag, path, sizeof(path)), CS_E_CONFIG);
	assert_non_null(strstr(diag.messages[0], "1 to 128 characters"));
	cs_config_diag_free(&diag);
	owner[128] = '\0';
	snprintf(group, sizeof(group), "policy = {\n  owner = \"%s\";\n};\n", owner);
	assert_int_equal(load_with_policy(group, &cfg, &diag, path, sizeof(path)), CS_OK);
	cs_config_free(cfg);
	cs_config_diag_free(&diag);
	static const char *const files[] = {"cert.pem", "key.pem", "ca.pem", "module.so", "user.pin",
					    "policy.conf"};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sections),    cmocka_unit_test(test_nist_fips),
		cmocka_unit_test(test_cites_only_chosen), cmocka_unit_test(test_conflicts),
		cmocka_unit_test(test_added_rules), cmocka_unit_test(test_html_escape),
		cmocka_unit_test(test_json),        cmocka_unit_test(test_options),
		cmocka_unit_test(test_standards_refused),
		cmocka_unit_test(test_decode),      cmocka_unit_test(test_config),
		cmocka_unit_test(test_pci_letters_and_digits),
		cmocka_unit_test(test_mfa_and_database_scope),
		cmocka_unit_test(test_api_key_lengths),
		cmocka_unit_test(test_stig_lifetime_and_scope),
		cmocka_unit_test(test_citations_are_sources),
		cmocka_unit_test(test_digest),
		cmocka_unit_test(test_markdown_block_start),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
