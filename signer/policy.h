/*
 * policy: a written credential policy for a set of standards (presets),
 * complete enough for an officer to sign: purpose, scope (account types,
 * standards, references), roles and owner, effective date and version,
 * requirements, conflicts between the standards and how each is resolved,
 * exceptions, review cycle and an approval (signature) block.
 *
 * Requirements take the strictest value of each rule across the chosen
 * presets: minimum length per account type (a password used alone, and as
 * one factor of MFA: each standard's own number, e.g. 8 for SP 800-63B-4
 * and CIS Safeguard 5.2, else the preset's minimum), character classes,
 * run limits, security strength, API-key lengths (the minimum the
 * appliance enforces per type, class rules included, cited to SP 800-57 /
 * SP 800-131A or the preset's own choice of strength), generation method
 * and entropy source, storage, rotation, password history, minimum
 * lifetime, changed characters, lockout, password-only accounts, maximum
 * length, blocklist, off-boarding and evidence. Rules a standard sets
 * beyond a preset's numbers (PCI DSS v4.0.1 8.3.4/8.3.7/8.3.9, the DISA
 * SRG minimum lifetime, reuse, changed characters and lockout, SP
 * 800-63B-4's multi-factor length and 64-character acceptance) are data in
 * policy.c, keyed by the standard (family) they come from.
 *
 * Scope of a preset's rules: the db-* presets (and any of the db-safe
 * character set) govern database accounts only ("Database passwords ...",
 * accounts "service"), never human accounts. A preset naming the DISA
 * SRG/STIG is a configuration standard for the operating systems in its
 * scope: its rules are stated "On systems in the scope of <preset title>"
 * for the operating-system accounts there (accounts "all"), not merged
 * into the organisation-wide rules, which the other presets set.
 *
 * Every rule cites its source. The policy never cites a standard that was
 * not chosen: a citation or preset text that names another standard's
 * family (PCI DSS, 45 CFR, AICPA, ISO/IEC 27001, CIS Controls, FIPS 140,
 * SP 800-63, DISA/STIG/SRG) or another preset by name is left out, unless
 * a chosen preset names that family in its standards. Other clauses of a
 * chosen standard may be cited (PCI DSS 12.1.2 for the review); a
 * cross-reference ("see dod-stig") is never a citation: it is replaced by
 * the referenced preset's citation when that preset is chosen. The NIST
 * references the appliance itself rests on (SP 800-57 Pt 1, SP 800-131A,
 * SP 800-90A) are listed as references, not as chosen standards. Where a
 * standard requires less than its preset sets (PCI DSS 8.3.6: a letter
 * and a digit; pci-dss-4 adds both cases), the rest is cited as the
 * preset's own choice.
 *
 * Conflicts: SP 800-63B-4 3.1.1.2 forbids composition rules and periodic
 * changes for passwords; presets with character classes or run limits,
 * a maximum lifetime, or PCI DSS 8.3.9 require them. When both are chosen
 * the policy states each conflict with both citations and resolves it per
 * account type: human accounts follow SP 800-63B-4, except on systems in
 * the scope of a standard whose rule is a requirement (not "practice"),
 * where what that standard requires applies as a standing exception;
 * service, system and application accounts follow the stricter rule. The
 * DISA SRG's 24-hour minimum lifetime conflicts with changes on compromise
 * and at off-boarding: administrators' changes are exempt from it.
 *
 * Document (cs_policy_build_doc), JSON:
 *   {"title", "organisation"|null, "owner"|null, "scope", "version"|null,
 *    "effective_date"|null, "review_months", "next_review"|null,
 *    "content_sha256", "standards":[names], "presets_version",
 *    "sections":[{"id","title"}], "purpose", "account_types":[{"id","name",
 *    "definition"}], "frameworks":[{"preset","title","requirements"}],
 *    "references":[...], "roles":[{"role","holder"|null,"duties"}],
 *    "effective": the effective-date-and-version text,
 *    "conflicts":[{"id","topic","statement","cites",
 *                  "resolution":{"human":{"rule","cites"},"service":{...}}}],
 *    "rules":[{"id","title","accounts","rule","value"?,"cites","from"}],
 *    "exceptions":{"process","cites","standing":[{"id","text","cites"}]},
 *    "review":{"months","text","cites"},
 *    "approval":{"statement","signatories":[{"role","name"|null}],
 *                "fields":["name","title","signature","date"]}}
 * "accounts" is "all", "human" or "service". content_sha256 is the SHA-256
 * of the UTF-8 bytes of the compact (no whitespace), key-sorted JSON of the
 * document without the members "content_sha256" and "approval" (the
 * approval quotes the digest): it covers organisation, owner, scope,
 * version, effective date, review cycle and every requirement.
 *
 * Pure functions of the loaded presets and the options; thread-safe. No
 * client text reaches this module unchecked: the caller (api.c, config.c)
 * validates every option.
 */
#ifndef CS_POLICY_H
#define CS_POLICY_H

#include <jansson.h>

#include "preset.h"

#define CS_POLICY_STANDARDS_MAX 32
/* text limits of the options, in code points (config.h) */
#define CS_POLICY_TEXT_MAX CS_CONFIG_POLICY_TEXT_MAX
#define CS_POLICY_SCOPE_MAX CS_CONFIG_POLICY_SCOPE_MAX
#define CS_POLICY_REVIEW_MONTHS_MAX 12

/* The organisation's part of the document; NULL fields are left blank
 * (rendered as lines to fill in) or take the defaults below. */
typedef struct {
	const char *organisation;   /* NULL: "the organisation" */
	const char *owner;          /* NULL: blank */
	const char *scope;          /* NULL: a scope statement naming the standards */
	const char *version;        /* NULL: blank (content_sha256 still identifies it) */
	const char *effective_date; /* "YYYY-MM-DD" (cs_config_date_valid) or NULL: the approval date */
	int review_months;          /* 1..CS_POLICY_REVIEW_MONTHS_MAX; 0: 12 */
	/* inventory.pci_password_change_days: 1..CS_POLICY_PCI_DAYS_MAX, the
	 * password-only rule (PCI DSS v4.0.1 8.3.9) then says passwords
	 * generated under the PCI DSS presets are treated as the only factor
	 * of their accounts (every account type) and changed at least every N
	 * days, as the inventory applies it; with SP 800-63B-4 chosen too, a
	 * standing exception to its ban on periodic changes; 0: 8.3.9's
	 * alternatives */
	int pci_password_change_days;
} cs_policy_options;
#define CS_POLICY_PCI_DAYS_MAX 90

/* presets: 1 to CS_POLICY_STANDARDS_MAX distinct presets of `set`
 * (CS_E_INVALID_ARG with `why` otherwise, also for an invalid option). The
 * client's names are resolved by the caller (api.c). opts may be NULL.
 * CS_E_NOMEM when memory runs out: no document is returned then, never one
 * with a part missing. */
cs_err cs_policy_build_doc(const cs_preset_set *set, const cs_wordlist *wordlist,
			   const cs_preset *const *presets, size_t count, const cs_policy_options *opts,
			   json_t **out, char *why, size_t why_len);
/* cs_policy_build_doc without options. */
cs_err cs_policy_build(const cs_preset_set *set, const cs_wordlist *wordlist,
		       const cs_preset *const *presets, size_t count, json_t **out, char *why,
		       size_t why_len);

/* The policy as Markdown, and as a self-contained, printable HTML page
 * (malloc'd; NULL when memory runs out). In Markdown every text gets a
 * backslash before \ ` * _ [ ] < > & | # ! ~, and text that starts a block
 * (a paragraph, a list item) also before a leading - + = and before the . or
 * ) after leading digits, its leading spaces written as &#32; so it cannot
 * become a list, a thematic break, a heading underline or a code block. In
 * HTML every text is escaped. */
char *cs_policy_markdown(const json_t *policy);
char *cs_policy_html(const json_t *policy);

/* s with & < > " ' replaced by character references (malloc'd). */
char *cs_policy_html_escape(const char *s);

/* Content-Security-Policy of the HTML page: no scripts, no fetches, the
 * inline style only. */
#define CS_POLICY_HTML_CSP "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

#endif
