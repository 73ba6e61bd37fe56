/*
 * policy: a written credential policy for a set of standards (presets),
 * complete enough for an officer to sign: purpose, scope (account types,
 * standards, references), roles and owner, effective date and version,
 * requirements, conflicts between the standards and how each is resolved,
 * exceptions, review cycle and an approval (signature) block.
 *
 * Requirements take the strictest value of each rule across the chosen
 * presets: minimum length per account type, character classes, run
 * limits, security strength, generation method and entropy source,
 * storage, rotation, password history, minimum lifetime, changed
 * characters, lockout, password-only accounts, maximum length, blocklist,
 * off-boarding and evidence. Rules a standard sets beyond a preset's
 * numbers (PCI DSS v4.0.1 8.3.4/8.3.7/8.3.9, the DISA SRG minimum
 * lifetime, reuse and changed characters, SP 800-63B-4's multi-factor
 * length and 64-character acceptance) are data in policy.c, keyed by the
 * standard (family) they come from.
 *
 * Every rule cites its source. The policy never cites a standard that was
 * not chosen: a citation or preset text that names another standard's
 * family (PCI DSS, 45 CFR, AICPA, ISO/IEC 27001, CIS Controls, FIPS 140,
 * SP 800-63, DISA/STIG/SRG) or another preset by name is left out, unless
 * a chosen preset names that family in its standards. The NIST references
 * the appliance itself rests on (SP 800-57 Pt 1, SP 800-131A, SP 800-90A)
 * are listed as references, not as chosen standards.
 *
 * Conflicts: SP 800-63B-4 3.1.1.2 forbids composition rules and periodic
 * changes for passwords; presets with character classes or run limits,
 * a maximum lifetime, or PCI DSS 8.3.9 require them. When both are chosen
 * the policy states each conflict with both citations and resolves it per
 * account type: human accounts follow SP 800-63B-4, except on systems in
 * the scope of a standard whose rule is a requirement (not "practice"),
 * where that rule applies as a standing exception; service, system and
 * application accounts follow the stricter rule.
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
 * of the compact, key-sorted JSON of {standards, presets_version,
 * conflicts, rules, exceptions}: the requirements, without organisation,
 * owner, scope text, version or dates.
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
} cs_policy_options;

/* presets: 1 to CS_POLICY_STANDARDS_MAX distinct presets of `set`
 * (CS_E_INVALID_ARG with `why` otherwise, also for an invalid option). The
 * client's names are resolved by the caller (api.c). opts may be NULL. */
cs_err cs_policy_build_doc(const cs_preset_set *set, const cs_wordlist *wordlist,
			   const cs_preset *const *presets, size_t count, const cs_policy_options *opts,
			   json_t **out, char *why, size_t why_len);
/* cs_policy_build_doc without options. */
cs_err cs_policy_build(const cs_preset_set *set, const cs_wordlist *wordlist,
		       const cs_preset *const *presets, size_t count, json_t **out, char *why,
		       size_t why_len);

/* The policy as Markdown, and as a self-contained, printable HTML page
 * (malloc'd; NULL when memory runs out). Text from the options is escaped
 * for Markdown (backslash before ASCII punctuation); in HTML every text is
 * escaped. */
char *cs_policy_markdown(const json_t *policy);
char *cs_policy_html(const json_t *policy);

/* s with & < > " ' replaced by character references (malloc'd). */
char *cs_policy_html_escape(const char *s);

/* Content-Security-Policy of the HTML page: no scripts, no fetches, the
 * inline style only. */
#define CS_POLICY_HTML_CSP "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

#endif
