/*
 * access_test: who may do what (access.h).
 *
 * - identities: exact, "/"-then-"*" patterns, and the near misses (the
 *   prefix without its slash, nothing after the slash, a longer segment);
 * - every role against every action; scopes with lists and "*"; several
 *   grants of one identity; deny by default with reasons that name the
 *   missing grant; the explanation per grant;
 * - rate limits on a fake clock: the burst, the refill, retry_after, one
 *   bucket per (identity, grant), unlimited grants first;
 * - separation of duties: the (generator, auditor) pairs a client can hold;
 * - reference counting across a swap: rules a request holds stay usable,
 *   buckets of identical grants carry over, threads deciding while the
 *   rules are swapped (ASan: no use after free, no leak);
 * - grants naming unknown presets, reported as FILE:LINE: setting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access.h"
#include "config.h"
#include "preset.h"
#include "test_support.h"

#define L(...) ((char *[]){__VA_ARGS__, NULL})
#define ID(n) "spiffe://credsign.test/" n

/* The rules of a configuration made in memory (as the loader would). */
static cs_access *rules(cs_config_grant *grants, size_t n)
{
	cs_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.access.grants = grants;
	cfg.access.ngrants = n;
	cs_access *a = NULL;
	assert_int_equal(cs_access_new(&cfg, &a), CS_OK);
	assert_non_null(a);
	return a;
}

static cs_access_decision decide(cs_access *a, const char *identity, cs_access_action action,
				 const char *project, const char *environment, const char *preset)
{
	cs_access_scope s = {project, environment, preset, NULL};
	cs_access_decision d;
	cs_access_decide(a, identity, action, &s, 0, 0, &d);
	/* a refusal always says why, an allowance always names its grant */
	if (d.allowed) {
		assert_true(strncmp(d.grant, "access.grants[", 14) == 0);
		assert_string_equal(d.reason, "");
	} else {
		assert_true(d.reason[0] != '\0');
	}
	return d;
}

/* sign and signature.read: the scope is the signing profile */
static cs_access_decision decide_profile(cs_access *a, const char *identity, cs_access_action action,
					 const char *profile)
{
	cs_access_scope s = {NULL, NULL, NULL, profile};
	cs_access_decision d;
	cs_access_decide(a, identity, action, &s, 0, 0, &d);
	if (d.allowed) {
		assert_true(strncmp(d.grant, "access.grants[", 14) == 0);
		assert_string_equal(d.reason, "");
	} else {
		assert_true(d.reason[0] != '\0');
	}
	return d;
}

static int may(cs_access *a, const char *identity, cs_access_action action, const char *profile)
{
	return decide_profile(a, identity, action, profile).allowed;
}

static int allowed(cs_access *a, const char *identity, cs_access_action action, const char *project,
		   const char *environment, const char *preset)
{
	return decide(a, identity, action, project, environment, preset).allowed;
}

static void test_action_names(void **state)
{
	(void)state;
	static const char *const names[] = {"generate",     "certify",      "cert.read",
					    "audit.read",   "presets.read", "policy.read",
					    "metrics.read", "ready.detail", "reload",
					    "sign",         "signature.read", "inventory.read"};
	assert_int_equal(sizeof(names) / sizeof(names[0]), CS_ACTION_COUNT);
	for (int a = 0; a < CS_ACTION_COUNT; a++) {
		assert_string_equal(cs_access_action_name((cs_access_action)a), names[a]);
		assert_int_equal(cs_access_action_parse(names[a]), a);
	}
	assert_int_equal(cs_access_action_parse("Generate"), -1);
	assert_int_equal(cs_access_action_parse("audit"), -1);
	assert_int_equal(cs_access_action_parse(NULL), -1);
	assert_string_equal(cs_access_role_name(CS_ROLE_GENERATOR), "generator");
	assert_string_equal(cs_access_role_name(CS_ROLE_AUDITOR), "auditor");
	assert_string_equal(cs_access_role_name(CS_ROLE_OPERATOR), "operator");
	assert_string_equal(cs_access_role_name(CS_ROLE_SIGNER), "signer");
	assert_int_equal(cs_access_action_parse("signature"), -1);
}

static void test_identity_matching(void **state)
{
	(void)state;
	cs_config_grant g[] = {
		{.identity = ID("ci-deployer"), .role = CS_ROLE_OPERATOR},
		{.identity = "spiffe://example.org/ns/payments/*", .role = CS_ROLE_OPERATOR},
	};
	cs_access *a = rules(g, 2);
	static const struct {
		const char *identity;
		int allowed;
		const char *grant;
	} cases[] = {
		{ID("ci-deployer"), 1, "access.grants[0]"},
		{ID("ci-deployer2"), 0, ""},           /* exact means exact */
		{ID("ci-deployer/"), 0, ""},
		{ID("ci-deploye"), 0, ""},
		{ID("CI-deployer"), 0, ""},            /* byte for byte */
		{"spiffe://credsign.test/ci-deployer ", 0, ""},
		{"spiffe://example.org/ns/payments/api", 1, "access.grants[1]"},
		{"spiffe://example.org/ns/payments/api/v2", 1, "access.grants[1]"},
		{"spiffe://example.org/ns/payments/a", 1, "access.grants[1]"},
		{"spiffe://example.org/ns/payments", 0, ""},  /* the prefix without its slash */
		{"spiffe://example.org/ns/payments/", 0, ""}, /* nothing after the slash */
		{"spiffe://example.org/ns/payments-old/api", 0, ""}, /* a longer segment */
		{"spiffe://example.org/ns/paymentsX/api", 0, ""},
		{"spiffe://example.org/ns/web/api", 0, ""},
		{"spiffe://example.org/ns/payments/*", 1, "access.grants[1]"}, /* '*' is only a character here */
		{"", 0, ""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cs_access_decision d = decide(a, cases[i].identity, CS_ACTION_METRICS_READ, NULL, NULL, NULL);
		if (d.allowed != cases[i].allowed)
			fprintf(stderr, "case %zu: %s\n", i, cases[i].identity);
		assert_int_equal(d.allowed, cases[i].allowed);
		assert_string_equal(d.grant, cases[i].grant);
	}
	cs_access_decision d;
	cs_access_decide(a, NULL, CS_ACTION_METRICS_READ, NULL, 0, 0, &d);
	assert_false(d.allowed);
	assert_string_equal(d.reason, "no client identity");
	/* no rules at all: nothing is allowed */
	cs_access_decide(NULL, ID("ci-deployer"), CS_ACTION_PRESETS_READ, NULL, 0, 0, &d);
	assert_false(d.allowed);
	cs_access_unref(a);
}

static void test_every_role_and_action(void **state)
{
	(void)state;
	cs_config_grant g[] = {
		{.identity = ID("gen"), .role = CS_ROLE_GENERATOR, .projects = L("*"), .environments = L("*")},
		{.identity = ID("aud"), .role = CS_ROLE_AUDITOR, .projects = L("*")},
		{.identity = ID("op"), .role = CS_ROLE_OPERATOR},
		{.identity = ID("signer"), .role = CS_ROLE_SIGNER, .profiles = L("release")},
		{.identity = ID("aud-sig"), .role = CS_ROLE_AUDITOR, .projects = L("*"), .profiles = L("*")},
	};
	cs_access *a = rules(g, 5);
	/* rows: gen, aud, op, signer, auditor with profiles, a stranger;
	 * columns: the actions in order */
	static const int expect[6][CS_ACTION_COUNT] = {
		/* gen  cert cread aread pres pol  metr ready reload sign sigread inv */
		{1, 1, 1, 0, 1, 1, 0, 0, 0, 0, 0, 1},
		{0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1},
		{0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0},
		{0, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0},
		{0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1},
		{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
	};
	static const char *const who[6] = {ID("gen"),	 ID("aud"),	ID("op"),
					   ID("signer"), ID("aud-sig"), ID("stranger")};
	static const char *const roles[6] = {"generator", "auditor", "operator", "signer", "auditor", NULL};
	for (int r = 0; r < 6; r++)
		for (int act = 0; act < CS_ACTION_COUNT; act++) {
			cs_access_scope sc = {"payments", "production", "soc2", "release"};
			cs_access_decision d;
			cs_access_decide(a, who[r], (cs_access_action)act, &sc, 0, 0, &d);
			if (d.allowed != expect[r][act])
				fprintf(stderr, "%s %s: %d\n", who[r], cs_access_action_name((cs_access_action)act),
					d.allowed);
			assert_int_equal(d.allowed, expect[r][act]);
			if (d.allowed)
				assert_string_equal(d.role, roles[r]);
		}
	/* what a refusal says the action needs */
	assert_string_equal(decide(a, who[5], CS_ACTION_GENERATE, "p", "e", "s").role, "generator");
	assert_string_equal(decide(a, who[5], CS_ACTION_CERT_READ, "p", NULL, NULL).role,
			    "auditor or generator");
	assert_string_equal(decide(a, who[5], CS_ACTION_AUDIT_READ, NULL, NULL, NULL).role, "auditor");
	assert_string_equal(decide(a, who[5], CS_ACTION_INVENTORY_READ, "p", "e", NULL).role,
			    "auditor or generator");
	assert_string_equal(decide(a, who[5], CS_ACTION_RELOAD, NULL, NULL, NULL).role, "operator");
	assert_string_equal(decide(a, who[5], CS_ACTION_POLICY_READ, NULL, NULL, NULL).role, "any");
	assert_string_equal(decide_profile(a, who[5], CS_ACTION_SIGN, "release").role, "signer");
	assert_string_equal(decide_profile(a, who[5], CS_ACTION_SIGNATURE_READ, "release").role,
			    "auditor or signer");
	cs_access_unref(a);
}

static void test_scopes_and_wildcards(void **state)
{
	(void)state;
	cs_config_grant g[] = {
		{.identity = ID("ci-deployer"), .role = CS_ROLE_GENERATOR, .projects = L("payments"),
		 .environments = L("production", "staging"), .presets = L("soc2", "pci-dss-4")},
		{.identity = ID("web-deployer"), .role = CS_ROLE_GENERATOR, .projects = L("web"),
		 .environments = L("*")},
		{.identity = ID("payments-auditor"), .role = CS_ROLE_AUDITOR, .projects = L("payments")},
		{.identity = ID("auditor"), .role = CS_ROLE_AUDITOR, .projects = L("*")},
	};
	cs_access *a = rules(g, 4);
	const char *ci = ID("ci-deployer"), *web = ID("web-deployer");
	assert_true(allowed(a, ci, CS_ACTION_GENERATE, "payments", "production", "soc2"));
	assert_true(allowed(a, ci, CS_ACTION_CERTIFY, "payments", "staging", "pci-dss-4"));
	assert_false(allowed(a, ci, CS_ACTION_GENERATE, "web", "production", "soc2"));
	assert_false(allowed(a, ci, CS_ACTION_GENERATE, "payments", "development", "soc2"));
	assert_false(allowed(a, ci, CS_ACTION_GENERATE, "payments", "production", "nist-800-63b"));
	assert_false(allowed(a, ci, CS_ACTION_GENERATE, NULL, "production", "soc2"));
	assert_false(allowed(a, ci, CS_ACTION_GENERATE, "payments", NULL, "soc2"));
	assert_false(allowed(a, ci, CS_ACTION_GENERATE, "payments", "production", NULL));
	assert_false(allowed(a, ci, CS_ACTION_GENERATE, "Payments", "production", "soc2"));
	/* a generator reads the certificates of its projects, not the log */
	assert_true(allowed(a, ci, CS_ACTION_CERT_READ, "payments", NULL, NULL));
	assert_false(allowed(a, ci, CS_ACTION_CERT_READ, "web", NULL, NULL));
	assert_false(allowed(a, ci, CS_ACTION_CERT_READ, NULL, NULL, NULL));
	assert_false(allowed(a, ci, CS_ACTION_AUDIT_READ, "payments", NULL, NULL));
	/* "*": every environment, none included; no presets: every preset */
	assert_true(allowed(a, web, CS_ACTION_GENERATE, "web", "anything", "dod-stig"));
	assert_true(allowed(a, web, CS_ACTION_GENERATE, "web", NULL, NULL));
	assert_false(allowed(a, web, CS_ACTION_GENERATE, "payments", "production", "soc2"));
	/* an auditor of one project: its certificates and its entries only */
	const char *pa = ID("payments-auditor");
	assert_true(allowed(a, pa, CS_ACTION_AUDIT_READ, "payments", NULL, NULL));
	assert_false(allowed(a, pa, CS_ACTION_AUDIT_READ, NULL, NULL, NULL));
	assert_false(allowed(a, pa, CS_ACTION_AUDIT_READ, "web", NULL, NULL));
	assert_true(allowed(a, pa, CS_ACTION_CERT_READ, "payments", NULL, NULL));
	assert_false(allowed(a, pa, CS_ACTION_CERT_READ, "web", NULL, NULL));
	assert_false(allowed(a, pa, CS_ACTION_GENERATE, "payments", "production", "soc2"));
	/* "*": every project, and the whole log */
	assert_true(allowed(a, ID("auditor"), CS_ACTION_AUDIT_READ, NULL, NULL, NULL));
	assert_true(allowed(a, ID("auditor"), CS_ACTION_CERT_READ, NULL, NULL, NULL));
	assert_true(allowed(a, ID("auditor"), CS_ACTION_CERT_READ, "web", NULL, NULL));
	cs_access_unref(a);
}

static void test_several_grants(void **state)
{
	(void)state;
	cs_config_grant g[] = {
		{.identity = ID("ci-deployer"), .role = CS_ROLE_GENERATOR, .projects = L("payments"),
		 .environments = L("production")},
		{.identity = "spiffe://credsign.test/*", .role = CS_ROLE_OPERATOR},
		{.identity = ID("ci-deployer"), .role = CS_ROLE_GENERATOR, .projects = L("web"),
		 .environments = L("staging")},
		{.identity = ID("ci-deployer"), .role = CS_ROLE_AUDITOR, .projects = L("payments")},
	};
	cs_access *a = rules(g, 4);
	const char *ci = ID("ci-deployer");
	cs_access_decision d = decide(a, ci, CS_ACTION_GENERATE, "payments", "production", "soc2");
	assert_true(d.allowed);
	assert_string_equal(d.grant, "access.grants[0]");
	d = decide(a, ci, CS_ACTION_GENERATE, "web", "staging", "soc2");
	assert_true(d.allowed);
	assert_string_equal(d.grant, "access.grants[2]");
	assert_string_equal(d.role, "generator");
	/* the grants do not combine: payments in staging is in neither */
	assert_false(allowed(a, ci, CS_ACTION_GENERATE, "payments", "staging", "soc2"));
	assert_false(allowed(a, ci, CS_ACTION_GENERATE, "web", "production", "soc2"));
	d = decide(a, ci, CS_ACTION_RELOAD, NULL, NULL, NULL);
	assert_true(d.allowed);
	assert_string_equal(d.grant, "access.grants[1]");
	d = decide(a, ci, CS_ACTION_AUDIT_READ, "payments", NULL, NULL);
	assert_true(d.allowed);
	assert_string_equal(d.grant, "access.grants[3]");
	assert_string_equal(d.role, "auditor");
	/* the first grant that covers it names the decision */
	d = decide(a, ci, CS_ACTION_PRESETS_READ, NULL, NULL, NULL);
	assert_string_equal(d.grant, "access.grants[0]");
	cs_access_unref(a);
}

static void test_deny_by_default_reasons(void **state)
{
	(void)state;
	cs_config_grant g[] = {
		{.identity = ID("ci-deployer"), .role = CS_ROLE_GENERATOR, .projects = L("payments"),
		 .environments = L("production")},
	};
	cs_access *a = rules(g, 1);
	const char *s = ID("stranger");
	static const struct {
		cs_access_action action;
		const char *project, *environment, *preset, *reason;
	} cases[] = {
		{CS_ACTION_GENERATE, "payments", "production", "soc2",
		 "no generator grant for project payments, environment production, preset soc2"},
		{CS_ACTION_CERTIFY, NULL, NULL, "soc2",
		 "no generator grant for project (none), environment (none), preset soc2"},
		{CS_ACTION_CERT_READ, "payments", NULL, NULL, "no auditor or generator grant for project payments"},
		{CS_ACTION_AUDIT_READ, "web", NULL, NULL, "no auditor grant for project web"},
		{CS_ACTION_AUDIT_READ, NULL, NULL, NULL,
		 "no auditor grant for every project (projects = [ \"*\" ])"},
		{CS_ACTION_PRESETS_READ, NULL, NULL, NULL, "no grant (presets.read needs a grant of any role)"},
		{CS_ACTION_POLICY_READ, NULL, NULL, NULL, "no grant (policy.read needs a grant of any role)"},
		{CS_ACTION_METRICS_READ, NULL, NULL, NULL, "no operator grant (metrics.read)"},
		{CS_ACTION_READY_DETAIL, NULL, NULL, NULL, "no operator grant (ready.detail)"},
		{CS_ACTION_RELOAD, NULL, NULL, NULL, "no operator grant (reload)"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cs_access_decision d =
			decide(a, s, cases[i].action, cases[i].project, cases[i].environment, cases[i].preset);
		assert_false(d.allowed);
		assert_string_equal(d.grant, "");
		assert_string_equal(d.reason, cases[i].reason);
		assert_int_equal(d.retry_after, 0);
	}
	/* a grant that does not reach the request: the same reason */
	cs_access_decision d = decide(a, ID("ci-deployer"), CS_ACTION_GENERATE, "payments", "staging", "soc2");
	assert_string_equal(d.reason, "no generator grant for project payments, environment staging, preset soc2");
	/* a long project of multi-byte characters is shown cut at a character
	 * boundary, marked with "...": the reason stays valid UTF-8 */
	char project[200] = "";
	for (int i = 0; i < 30; i++)
		strcat(project, "\xc3\xa9"); /* é */
	strcat(project, "xy\xe2\x82\xac\xe2\x82\xac"); /* 62 bytes, then a 3-byte character across byte 64 */
	d = decide(a, s, CS_ACTION_CERT_READ, project, NULL, NULL);
	const char *shown = strstr(d.reason, "project ") + strlen("project ");
	assert_int_equal(strlen(shown), 62 + 3);
	assert_memory_equal(shown, project, 62);
	assert_string_equal(shown + 62, "...");
	cs_access_unref(a);
}

typedef struct {
	char lines[8][300];
	int n;
} explained;

static void on_explain(void *arg, const char *grant, const char *role, int covers, const char *why)
{
	explained *e = arg;
	assert_true(e->n < 8);
	snprintf(e->lines[e->n++], sizeof(e->lines[0]), "%s %s %d %s", grant, role, covers, why);
}

static void test_explain(void **state)
{
	(void)state;
	cs_config_grant g[] = {
		{.identity = ID("ci-deployer"), .role = CS_ROLE_GENERATOR, .projects = L("payments"),
		 .environments = L("production", "staging"), .presets = L("soc2")},
		{.identity = ID("auditor"), .role = CS_ROLE_AUDITOR, .projects = L("*")},
		{.identity = "spiffe://credsign.test/*", .role = CS_ROLE_AUDITOR, .projects = L("web")},
	};
	cs_access *a = rules(g, 3);
	explained e = {0};
	cs_access_scope s = {"payments", "development", "soc2", NULL};
	assert_int_equal(cs_access_explain(a, ID("ci-deployer"), CS_ACTION_GENERATE, &s, on_explain, &e), 2);
	assert_string_equal(e.lines[0], "access.grants[0] generator 0 environment development is not among its environments");
	assert_string_equal(e.lines[1], "access.grants[2] auditor 0 role auditor does not allow generate");
	e.n = 0;
	s = (cs_access_scope){"web", "production", "pci-dss-4", NULL};
	assert_int_equal(cs_access_explain(a, ID("ci-deployer"), CS_ACTION_CERTIFY, &s, on_explain, &e), 2);
	assert_string_equal(e.lines[0], "access.grants[0] generator 0 project web is not among its projects");
	e.n = 0;
	s = (cs_access_scope){"payments", "production", "pci-dss-4", NULL};
	cs_access_explain(a, ID("ci-deployer"), CS_ACTION_CERTIFY, &s, on_explain, &e);
	assert_string_equal(e.lines[0], "access.grants[0] generator 0 preset pci-dss-4 is not among its presets");
	e.n = 0;
	s = (cs_access_scope){NULL, NULL, NULL, NULL};
	cs_access_explain(a, ID("ci-deployer"), CS_ACTION_AUDIT_READ, &s, on_explain, &e);
	assert_string_equal(e.lines[1],
			    "access.grants[2] auditor 0 the request has no project, which only \"*\" covers in its projects");
	e.n = 0;
	cs_access_explain(a, ID("auditor"), CS_ACTION_AUDIT_READ, &s, on_explain, &e);
	assert_int_equal(e.n, 2);
	assert_string_equal(e.lines[0], "access.grants[1] auditor 1 ");
	e.n = 0;
	assert_int_equal(cs_access_explain(a, "spiffe://other.test/x", CS_ACTION_AUDIT_READ, &s, on_explain, &e), 0);
	cs_access_unref(a);
}

static cs_access_decision take(cs_access *a, const char *identity, int64_t now_ms)
{
	cs_access_decision d;
	cs_access_decide(a, identity, CS_ACTION_METRICS_READ, NULL, 1, now_ms, &d);
	return d;
}

/* sign and signature.read (issue 15): a signer signs with its profiles
 * only and reads their records; an auditor reads the records of the
 * profiles it lists (none without); "*" every profile; a request without
 * a profile is covered by nobody. */
static void test_signing_profiles(void **state)
{
	(void)state;
	cs_config_grant g[] = {
		{.identity = ID("ci-deployer"), .role = CS_ROLE_SIGNER, .profiles = L("release", "sbom")},
		{.identity = ID("issuer"), .role = CS_ROLE_SIGNER, .profiles = L("*")},
		{.identity = ID("auditor"), .role = CS_ROLE_AUDITOR, .projects = L("*")},
		{.identity = ID("release-auditor"), .role = CS_ROLE_AUDITOR, .projects = L("web"),
		 .profiles = L("release")},
		{.identity = ID("all-auditor"), .role = CS_ROLE_AUDITOR, .projects = L("*"), .profiles = L("*")},
		{.identity = ID("gen"), .role = CS_ROLE_GENERATOR, .projects = L("*"), .environments = L("*")},
		{.identity = ID("op"), .role = CS_ROLE_OPERATOR},
	};
	cs_access *a = rules(g, 7);
	const char *ci = ID("ci-deployer");
	cs_access_decision d = decide_profile(a, ci, CS_ACTION_SIGN, "release");
	assert_true(d.allowed);
	assert_string_equal(d.grant, "access.grants[0]");
	assert_string_equal(d.role, "signer");
	assert_true(may(a, ci, CS_ACTION_SIGN, "sbom"));
	assert_true(may(a, ci, CS_ACTION_SIGNATURE_READ, "release"));
	/* its profiles only: byte for byte, none without a profile */
	assert_false(may(a, ci, CS_ACTION_SIGN, "nightly"));
	assert_false(may(a, ci, CS_ACTION_SIGN, "Release"));
	assert_false(may(a, ci, CS_ACTION_SIGN, "releas"));
	assert_false(may(a, ci, CS_ACTION_SIGN, NULL));
	assert_false(may(a, ci, CS_ACTION_SIGNATURE_READ, "nightly"));
	d = decide_profile(a, ci, CS_ACTION_SIGN, "nightly");
	assert_string_equal(d.reason, "no signer grant for profile nightly");
	assert_string_equal(d.role, "signer");
	assert_string_equal(d.grant, "");
	d = decide_profile(a, ci, CS_ACTION_SIGN, NULL);
	assert_string_equal(d.reason, "no signer grant for profile (none)");
	d = decide_profile(a, ci, CS_ACTION_SIGNATURE_READ, "nightly");
	assert_string_equal(d.reason, "no auditor or signer grant for profile nightly");
	assert_string_equal(d.role, "auditor or signer");
	/* a signer is no generator, auditor or operator */
	assert_false(allowed(a, ci, CS_ACTION_GENERATE, "payments", "production", "soc2"));
	assert_false(allowed(a, ci, CS_ACTION_CERT_READ, "payments", NULL, NULL));
	assert_false(allowed(a, ci, CS_ACTION_AUDIT_READ, NULL, NULL, NULL));
	assert_false(allowed(a, ci, CS_ACTION_METRICS_READ, NULL, NULL, NULL));
	assert_true(allowed(a, ci, CS_ACTION_PRESETS_READ, NULL, NULL, NULL));
	/* "*": every profile, but still a profile */
	assert_true(may(a, ID("issuer"), CS_ACTION_SIGN, "anything"));
	assert_true(may(a, ID("issuer"), CS_ACTION_SIGNATURE_READ, "anything"));
	assert_false(may(a, ID("issuer"), CS_ACTION_SIGN, NULL));
	assert_false(may(a, ID("issuer"), CS_ACTION_SIGNATURE_READ, NULL));
	/* an auditor without profiles reads no signature records, even with
	 * projects = [ "*" ]; one with profiles reads theirs; none signs */
	assert_false(may(a, ID("auditor"), CS_ACTION_SIGNATURE_READ, "release"));
	assert_false(may(a, ID("auditor"), CS_ACTION_SIGN, "release"));
	assert_true(may(a, ID("release-auditor"), CS_ACTION_SIGNATURE_READ, "release"));
	assert_false(may(a, ID("release-auditor"), CS_ACTION_SIGNATURE_READ, "sbom"));
	assert_false(may(a, ID("release-auditor"), CS_ACTION_SIGN, "release"));
	d = decide_profile(a, ID("all-auditor"), CS_ACTION_SIGNATURE_READ, "sbom");
	assert_true(d.allowed);
	assert_string_equal(d.role, "auditor");
	assert_false(may(a, ID("all-auditor"), CS_ACTION_SIGNATURE_READ, NULL));
	assert_false(may(a, ID("all-auditor"), CS_ACTION_SIGN, "sbom"));
	/* the profiles of an auditor do not widen its projects */
	assert_false(allowed(a, ID("release-auditor"), CS_ACTION_AUDIT_READ, NULL, NULL, NULL));
	assert_true(allowed(a, ID("release-auditor"), CS_ACTION_AUDIT_READ, "web", NULL, NULL));
	/* generators and operators neither sign nor read signatures */
	assert_false(may(a, ID("gen"), CS_ACTION_SIGN, "release"));
	assert_false(may(a, ID("gen"), CS_ACTION_SIGNATURE_READ, "release"));
	assert_false(may(a, ID("op"), CS_ACTION_SIGN, "release"));
	assert_false(may(a, ID("op"), CS_ACTION_SIGNATURE_READ, "release"));
	/* a stranger: deny by default */
	assert_false(may(a, ID("stranger"), CS_ACTION_SIGN, "release"));

	/* the explanation per grant */
	explained e = {0};
	cs_access_scope s = {NULL, NULL, NULL, "nightly"};
	assert_int_equal(cs_access_explain(a, ci, CS_ACTION_SIGN, &s, on_explain, &e), 1);
	assert_string_equal(e.lines[0], "access.grants[0] signer 0 profile nightly is not among its profiles");
	e.n = 0;
	s.profile = NULL;
	cs_access_explain(a, ci, CS_ACTION_SIGN, &s, on_explain, &e);
	assert_string_equal(e.lines[0], "access.grants[0] signer 0 the request names no signing profile");
	e.n = 0;
	s.profile = "release";
	cs_access_explain(a, ID("auditor"), CS_ACTION_SIGNATURE_READ, &s, on_explain, &e);
	assert_string_equal(e.lines[0],
			    "access.grants[2] auditor 0 role auditor without profiles covers no signing profile");
	e.n = 0;
	cs_access_explain(a, ID("auditor"), CS_ACTION_SIGN, &s, on_explain, &e);
	assert_string_equal(e.lines[0], "access.grants[2] auditor 0 role auditor does not allow sign");
	e.n = 0;
	cs_access_explain(a, ID("op"), CS_ACTION_SIGNATURE_READ, &s, on_explain, &e);
	assert_string_equal(e.lines[0], "access.grants[6] operator 0 role operator does not allow signature.read");
	cs_access_unref(a);
}

static cs_access_decision take_sign(cs_access *a, const char *identity, cs_access_action action,
				    const char *profile, int64_t now_ms)
{
	cs_access_scope s = {NULL, NULL, NULL, profile};
	cs_access_decision d;
	cs_access_decide(a, identity, action, &s, 1, now_ms, &d);
	return d;
}

/* Rate limits apply to signer grants as to the others: one bucket per
 * (identity, grant), signatures and reads alike; an unlimited grant first;
 * a reload keeps the bucket of an identical grant, not of one whose
 * profiles changed. */
static void test_signing_rate_limit(void **state)
{
	(void)state;
	cs_config_grant g[] = {
		{.identity = "spiffe://credsign.test/ci/*", .role = CS_ROLE_SIGNER, .profiles = L("release"),
		 .rate = 1.0, .burst = 2},
		{.identity = ID("ci/unlimited"), .role = CS_ROLE_SIGNER, .profiles = L("*")},
	};
	cs_access *a = rules(g, 2);
	const char *x = ID("ci/x");
	int64_t t0 = 5000000;
	assert_true(take_sign(a, x, CS_ACTION_SIGN, "release", t0).allowed);
	assert_true(take_sign(a, x, CS_ACTION_SIGNATURE_READ, "release", t0).allowed);
	cs_access_decision d = take_sign(a, x, CS_ACTION_SIGN, "release", t0);
	assert_false(d.allowed);
	assert_int_equal(d.retry_after, 1);
	assert_string_equal(d.grant, "access.grants[0]");
	assert_string_equal(d.role, "signer");
	assert_string_equal(d.reason,
			    "rate limit of access.grants[0] exceeded (1 requests per second, burst 2); retry in 1 s");
	/* a profile the grant does not cover: refused as such, not rate limited */
	d = take_sign(a, x, CS_ACTION_SIGN, "nightly", t0);
	assert_false(d.allowed);
	assert_int_equal(d.retry_after, 0);
	assert_string_equal(d.reason, "no signer grant for profile nightly");
	/* another identity of the pattern: its own bucket */
	assert_true(take_sign(a, ID("ci/y"), CS_ACTION_SIGN, "release", t0).allowed);
	/* refill */
	assert_false(take_sign(a, x, CS_ACTION_SIGN, "release", t0 + 999).allowed);
	assert_true(take_sign(a, x, CS_ACTION_SIGN, "release", t0 + 1000).allowed);
	/* the unlimited grant is used first, whatever its place */
	for (int i = 0; i < 10; i++) {
		d = take_sign(a, ID("ci/unlimited"), CS_ACTION_SIGN, "release", t0);
		assert_true(d.allowed);
		assert_string_equal(d.grant, "access.grants[1]");
	}

	/* a reload: the identical grant keeps its (empty) bucket, a grant
	 * whose profiles changed starts afresh */
	cs_config_grant same[] = {
		{.identity = "spiffe://credsign.test/ci/*", .role = CS_ROLE_SIGNER, .profiles = L("release"),
		 .rate = 1.0, .burst = 2},
	};
	cs_config_grant wider[] = {
		{.identity = "spiffe://credsign.test/ci/*", .role = CS_ROLE_SIGNER,
		 .profiles = L("release", "nightly"), .rate = 1.0, .burst = 2},
	};
	cs_access_slot *slot = NULL;
	assert_int_equal(cs_access_slot_new(a, &slot), CS_OK);
	cs_access_swap(slot, rules(same, 1));
	cs_access *now = cs_access_acquire(slot);
	assert_false(take_sign(now, x, CS_ACTION_SIGN, "release", t0 + 1000).allowed);
	cs_access_unref(now);
	cs_access_swap(slot, rules(wider, 1));
	now = cs_access_acquire(slot);
	assert_true(take_sign(now, x, CS_ACTION_SIGN, "release", t0 + 1000).allowed);
	assert_true(take_sign(now, x, CS_ACTION_SIGN, "nightly", t0 + 1000).allowed);
	assert_false(take_sign(now, x, CS_ACTION_SIGN, "nightly", t0 + 1000).allowed);
	cs_access_unref(now);
	cs_access_slot_free(slot);
}

static void test_rate_limit(void **state)
{
	(void)state;
	cs_config_grant g[] = {
		{.identity = "spiffe://credsign.test/ops/*", .role = CS_ROLE_OPERATOR, .rate = 2.0, .burst = 3},
		{.identity = ID("slow"), .role = CS_ROLE_OPERATOR, .rate = 0.1, .burst = 1},
	};
	cs_access *a = rules(g, 2);
	const char *x = ID("ops/x"), *y = ID("ops/y");
	int64_t t0 = 1000000;
	/* the burst at once, then a refusal with the wait */
	for (int i = 0; i < 3; i++)
		assert_true(take(a, x, t0).allowed);
	cs_access_decision d = take(a, x, t0);
	assert_false(d.allowed);
	assert_int_equal(d.retry_after, 1);
	assert_string_equal(d.grant, "access.grants[0]");
	assert_string_equal(d.role, "operator");
	assert_string_equal(d.reason,
			    "rate limit of access.grants[0] exceeded (2 requests per second, burst 3); retry in 1 s");
	/* another identity of the same pattern has its own bucket */
	assert_true(take(a, y, t0).allowed);
	/* deciding without taking costs nothing, even on an empty bucket */
	cs_access_decide(a, x, CS_ACTION_METRICS_READ, NULL, 0, t0, &d);
	assert_true(d.allowed);
	/* refill at 2 per second: one token after 500 ms, not before */
	assert_false(take(a, x, t0 + 499).allowed);
	assert_true(take(a, x, t0 + 500).allowed);
	assert_false(take(a, x, t0 + 500).allowed);
	/* a long pause refills to the burst, not beyond */
	for (int i = 0; i < 3; i++)
		assert_true(take(a, x, t0 + 60000).allowed);
	assert_false(take(a, x, t0 + 60000).allowed);
	/* a clock that goes back refills nothing and breaks nothing */
	assert_false(take(a, x, t0).allowed);
	/* retry_after rounds up: 0.1 per second is 10 s per token */
	assert_true(take(a, ID("slow"), t0).allowed);
	d = take(a, ID("slow"), t0);
	assert_false(d.allowed);
	assert_int_equal(d.retry_after, 10);
	d = take(a, ID("slow"), t0 + 9001);
	assert_int_equal(d.retry_after, 1);
	assert_true(take(a, ID("slow"), t0 + 10000).allowed);
	cs_access_unref(a);
}

static void test_rate_limit_several_grants(void **state)
{
	(void)state;
	cs_config_grant g[] = {
		{.identity = ID("op"), .role = CS_ROLE_OPERATOR, .rate = 1.0, .burst = 1},
		{.identity = ID("op"), .role = CS_ROLE_OPERATOR, .rate = 0.5, .burst = 2},
		{.identity = ID("free"), .role = CS_ROLE_OPERATOR, .rate = 1.0, .burst = 1},
		{.identity = ID("free"), .role = CS_ROLE_OPERATOR},
	};
	cs_access *a = rules(g, 4);
	/* the first bucket, then the second; refused with the shorter wait */
	cs_access_decision d = take(a, ID("op"), 0);
	assert_string_equal(d.grant, "access.grants[0]");
	d = take(a, ID("op"), 0);
	assert_string_equal(d.grant, "access.grants[1]");
	d = take(a, ID("op"), 0);
	assert_string_equal(d.grant, "access.grants[1]");
	d = take(a, ID("op"), 0);
	assert_false(d.allowed);
	assert_int_equal(d.retry_after, 1);
	/* a grant without a limit is used before a limited one */
	for (int i = 0; i < 50; i++) {
		d = take(a, ID("free"), 0);
		assert_true(d.allowed);
		assert_string_equal(d.grant, "access.grants[3]");
	}
	cs_access_unref(a);
}

typedef struct {
	char lines[8][200];
	int n;
} conflicts;

static void on_conflict(void *arg, const char *identity, const char *gen, const char *aud)
{
	conflicts *c = arg;
	assert_true(c->n < 8);
	snprintf(c->lines[c->n++], sizeof(c->lines[0]), "%s %s %s", identity, gen, aud);
}

static void test_conflicts(void **state)
{
	(void)state;
	cs_config_grant g[] = {
		/* 0 */ {.identity = ID("both"), .role = CS_ROLE_GENERATOR, .projects = L("a"), .environments = L("*")},
		/* 1 */ {.identity = ID("both"), .role = CS_ROLE_AUDITOR, .projects = L("b")},
		/* 2 */ {.identity = "spiffe://example.org/ns/payments/*", .role = CS_ROLE_GENERATOR,
			 .projects = L("*"), .environments = L("*")},
		/* 3 */ {.identity = "spiffe://example.org/ns/payments/audit", .role = CS_ROLE_AUDITOR,
			 .projects = L("*")},
		/* 4 */ {.identity = "spiffe://example.org/ns/*", .role = CS_ROLE_AUDITOR, .projects = L("*")},
		/* near misses: none of these can be the same client as a generator */
		/* 5 */ {.identity = "spiffe://example.org/ns/payments", .role = CS_ROLE_AUDITOR, .projects = L("*")},
		/* 6 */ {.identity = "spiffe://example.org/ns/payments-audit/*", .role = CS_ROLE_AUDITOR,
			 .projects = L("*")},
		/* 7 */ {.identity = ID("auditor"), .role = CS_ROLE_AUDITOR, .projects = L("*")},
		/* 8 */ {.identity = ID("both"), .role = CS_ROLE_OPERATOR},
	};
	cs_access *a = rules(g, 9);
	conflicts c = {0};
	assert_int_equal(cs_access_each_conflict(a, on_conflict, &c), 3);
	assert_int_equal(c.n, 3);
	assert_string_equal(c.lines[0], ID("both") " access.grants[0] access.grants[1]");
	assert_string_equal(c.lines[1], "spiffe://example.org/ns/payments/audit access.grants[2] access.grants[3]");
	assert_string_equal(c.lines[2], "spiffe://example.org/ns/payments/* access.grants[2] access.grants[4]");
	/* pattern against pattern, the other way round: the narrower named */
	cs_access_unref(a);

	cs_config_grant h[] = {
		{.identity = "spiffe://example.org/ns/*", .role = CS_ROLE_GENERATOR, .projects = L("*"),
		 .environments = L("*")},
		{.identity = "spiffe://example.org/ns/payments/*", .role = CS_ROLE_AUDITOR, .projects = L("*")},
		{.identity = "spiffe://example.org/other/*", .role = CS_ROLE_AUDITOR, .projects = L("*")},
	};
	a = rules(h, 3);
	c.n = 0;
	assert_int_equal(cs_access_each_conflict(a, on_conflict, &c), 1);
	assert_string_equal(c.lines[0], "spiffe://example.org/ns/payments/* access.grants[0] access.grants[1]");
	cs_access_unref(a);
	/* none: nothing called */
	cs_config_grant k[] = {
		{.identity = ID("ci-deployer"), .role = CS_ROLE_GENERATOR, .projects = L("*"), .environments = L("*")},
		{.identity = ID("auditor"), .role = CS_ROLE_AUDITOR, .projects = L("*")},
	};
	a = rules(k, 2);
	c.n = 0;
	assert_int_equal(cs_access_each_conflict(a, on_conflict, &c), 0);
	assert_int_equal(c.n, 0);
	cs_access_unref(a);
}

static void test_reference_counting_and_swap(void **state)
{
	(void)state;
	cs_config_grant before[] = {
		{.identity = ID("ci-deployer"), .role = CS_ROLE_GENERATOR, .projects = L("payments"),
		 .environments = L("*")},
		{.identity = ID("op"), .role = CS_ROLE_OPERATOR, .rate = 1.0, .burst = 2},
		{.identity = ID("op2"), .role = CS_ROLE_OPERATOR, .rate = 1.0, .burst = 2},
	};
	/* the reload removes ci-deployer, keeps op's grant identical (at
	 * another index), changes op2's burst and adds the auditor */
	cs_config_grant after[] = {
		{.identity = ID("auditor"), .role = CS_ROLE_AUDITOR, .projects = L("*")},
		{.identity = ID("op2"), .role = CS_ROLE_OPERATOR, .rate = 1.0, .burst = 3},
		{.identity = ID("op"), .role = CS_ROLE_OPERATOR, .rate = 1.0, .burst = 2},
	};
	cs_access_slot *slot = NULL;
	assert_int_equal(cs_access_slot_new(rules(before, 3), &slot), CS_OK);
	cs_access *in_flight = cs_access_acquire(slot);
	cs_access_decision d;
	cs_access_decide(in_flight, ID("op"), CS_ACTION_RELOAD, NULL, 1, 0, &d);
	assert_true(d.allowed);
	cs_access_decide(in_flight, ID("op"), CS_ACTION_RELOAD, NULL, 1, 0, &d);
	assert_true(d.allowed);
	cs_access_decide(in_flight, ID("op2"), CS_ACTION_RELOAD, NULL, 1, 0, &d);
	cs_access_decide(in_flight, ID("op2"), CS_ACTION_RELOAD, NULL, 1, 0, &d);
	assert_true(d.allowed);

	cs_access_swap(slot, rules(after, 3));
	/* the request that started before the swap finishes under its rules */
	assert_true(allowed(in_flight, ID("ci-deployer"), CS_ACTION_GENERATE, "payments", "production", "soc2"));
	assert_false(allowed(in_flight, ID("auditor"), CS_ACTION_AUDIT_READ, NULL, NULL, NULL));
	cs_access *next = cs_access_acquire(slot);
	assert_true(next != in_flight);
	assert_false(allowed(next, ID("ci-deployer"), CS_ACTION_GENERATE, "payments", "production", "soc2"));
	assert_true(allowed(next, ID("auditor"), CS_ACTION_AUDIT_READ, NULL, NULL, NULL));
	cs_access_unref(in_flight); /* the last reference to the old rules */
	/* op's bucket survived the swap (still empty); op2's grant changed: a
	 * fresh bucket */
	cs_access_decide(next, ID("op"), CS_ACTION_RELOAD, NULL, 1, 0, &d);
	assert_false(d.allowed);
	assert_string_equal(d.grant, "access.grants[2]");
	assert_int_equal(d.retry_after, 1);
	cs_access_decide(next, ID("op2"), CS_ACTION_RELOAD, NULL, 1, 0, &d);
	assert_true(d.allowed);
	/* a reference of one's own keeps the rules past the slot */
	cs_access *kept = cs_access_ref(next);
	cs_access_unref(next);
	cs_access_slot_free(slot);
	assert_true(allowed(kept, ID("auditor"), CS_ACTION_CERT_READ, "web", NULL, NULL));
	cs_access_unref(kept);
}

/* Threads decide (and charge buckets) while the rules are swapped under
 * them: under ASan, any use after free or leak fails the test. */
typedef struct {
	cs_access_slot *slot;
	atomic_int stop;
	atomic_long decisions, wrong; /* cmocka asserts belong to the main thread */
} race;

static void *decider(void *arg)
{
	race *r = arg;
	char id[64];
	for (long n = 0; !atomic_load(&r->stop); n++) {
		cs_access *a = cs_access_acquire(r->slot);
		snprintf(id, sizeof(id), "spiffe://credsign.test/ops/%ld", n % 50);
		cs_access_decision d;
		cs_access_decide(a, id, CS_ACTION_METRICS_READ, NULL, 1, n, &d);
		if (!d.allowed && d.retry_after < 1)
			atomic_fetch_add(&r->wrong, 1);
		cs_access_decide(a, ID("ci-deployer"), CS_ACTION_GENERATE,
				 &(cs_access_scope){"payments", "production", "soc2", NULL}, 1, n, &d);
		cs_access_unref(a);
		atomic_fetch_add(&r->decisions, 1);
	}
	return NULL;
}

static void test_swap_under_load(void **state)
{
	(void)state;
	cs_config_grant g[] = {
		{.identity = "spiffe://credsign.test/ops/*", .role = CS_ROLE_OPERATOR, .rate = 1000.0, .burst = 5},
		{.identity = ID("ci-deployer"), .role = CS_ROLE_GENERATOR, .projects = L("payments"),
		 .environments = L("*"), .rate = 50.0, .burst = 10},
	};
	race r = {0};
	assert_int_equal(cs_access_slot_new(rules(g, 2), &r.slot), CS_OK);
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, decider, &r), 0);
	/* swap until the threads have decided a good number of times under
	 * changing rules (some reloads change a grant, some do not) */
	for (int i = 0; i < 2000 || atomic_load(&r.decisions) < 20000; i++) {
		g[0].burst = 5 + i % 3;
		cs_access_swap(r.slot, rules(g, 2));
		if (i % 16 == 0)
			sched_yield();
	}
	atomic_store(&r.stop, 1);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	assert_int_equal(atomic_load(&r.wrong), 0);
	cs_access_slot_free(r.slot);
}

/* Grants naming presets that do not exist, found once the presets are
 * loaded: FILE:LINE: setting 'access.grants.[N].presets'. */
static void test_unknown_presets(void **state)
{
	(void)state;
	char dir[512], path[700], text[2048];
	const char *base = getenv("CREDSIGN_TEST_TMP");
	snprintf(dir, sizeof(dir), "%s/access-XXXXXX", base != NULL ? base : "/tmp");
	if (base != NULL)
		mkdir(base, 0700);
	assert_non_null(mkdtemp(dir));
	static const char *const fixtures[] = {"cert.pem", "key.pem", "ca.pem", "module.so"};
	for (size_t i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, fixtures[i]);
		ts_write_file(path, "placeholder\n", 0600);
	}
	snprintf(path, sizeof(path), "%s/user.pin", dir);
	ts_write_file(path, "123456\n", 0600);
	snprintf(text, sizeof(text),
		 "server = { presets_file = \"%s/conf/presets.conf\"; };\n"
		 "tls = { cert = \"cert.pem\"; key = \"key.pem\"; ca = \"ca.pem\"; };\n"
		 "pkcs11 = { module = \"module.so\"; token_uri = \"pkcs11:token=t\"; pin_file = \"user.pin\";\n"
		 "  signing_key = \"pkcs11:object=k\"; };\n"
		 "access = { grants = (\n"
		 "  { identity = \"spiffe://credsign.test/a\"; role = \"generator\"; projects = [ \"p\" ];\n"
		 "    environments = [ \"*\" ]; presets = [ \"soc2\", \"pci-dss-4\" ]; },\n"
		 "  { identity = \"spiffe://credsign.test/b\"; role = \"generator\"; projects = [ \"p\" ];\n"
		 "    environments = [ \"*\" ];\n"
		 "    presets = [ \"soc2\", \"soc3\", \"team-vault\" ]; }\n"
		 "); };\n",
		 CREDSIGN_SOURCE_DIR);
	snprintf(path, sizeof(path), "%s/credsignd.conf", dir);
	ts_write_file(path, text, 0600);
	cs_config *cfg = NULL;
	cs_config_diag diag;
	cs_err r = cs_config_load(path, &cfg, &diag);
	for (size_t i = 0; i < diag.count; i++)
		fprintf(stderr, "unexpected: %s\n", diag.messages[i]);
	assert_int_equal(r, CS_OK);
	cs_config_diag_free(&diag);
	cs_preset_set *presets = NULL;
	assert_int_equal(cs_presets_load(cfg->server.presets_file, cfg->file, &presets, &diag), CS_OK);
	cs_config_diag_free(&diag);
	assert_int_equal(cs_access_check_presets(cfg, presets, &diag), CS_E_CONFIG);
	assert_int_equal(diag.count, 2);
	char want[900];
	snprintf(want, sizeof(want), "%s:10: setting 'access.grants.[1].presets': unknown preset 'soc3'", cfg->file);
	assert_string_equal(diag.messages[0], want);
	snprintf(want, sizeof(want), "%s:10: setting 'access.grants.[1].presets': unknown preset 'team-vault'",
		 cfg->file);
	assert_string_equal(diag.messages[1], want);
	cs_config_diag_free(&diag);
	/* the first grant alone is fine */
	cfg->access.ngrants = 1;
	assert_int_equal(cs_access_check_presets(cfg, presets, &diag), CS_OK);
	assert_int_equal(diag.count, 0);
	cs_config_diag_free(&diag);
	cfg->access.ngrants = 2;
	cs_presets_free(presets);
	cs_config_free(cfg);
}

/* inventory.read (issue 19): an auditor of the project (any environment),
 * or a generator of the project and environment */
static void test_inventory_read(void **state)
{
	(void)state;
	cs_config_grant g[] = {
		{.identity = ID("gen"), .role = CS_ROLE_GENERATOR, .projects = L("payments"), .environments = L("staging")},
		{.identity = ID("aud"), .role = CS_ROLE_AUDITOR, .projects = L("payments")},
		{.identity = ID("op"), .role = CS_ROLE_OPERATOR},
	};
	cs_access *a = rules(g, 3);
	assert_true(decide(a, ID("gen"), CS_ACTION_INVENTORY_READ, "payments", "staging", NULL).allowed);
	cs_access_decision d = decide(a, ID("gen"), CS_ACTION_INVENTORY_READ, "payments", "production", NULL);
	assert_false(d.allowed);
	assert_string_equal(d.reason, "no auditor grant for project payments, nor a generator grant for it in "
				      "environment production");
	assert_false(decide(a, ID("gen"), CS_ACTION_INVENTORY_READ, "payments", NULL, NULL).allowed);
	assert_false(decide(a, ID("gen"), CS_ACTION_INVENTORY_READ, "web", "staging", NULL).allowed);
	assert_true(decide(a, ID("aud"), CS_ACTION_INVENTORY_READ, "payments", "production", NULL).allowed);
	assert_true(decide(a, ID("aud"), CS_ACTION_INVENTORY_READ, "payments", NULL, NULL).allowed);
	assert_false(decide(a, ID("aud"), CS_ACTION_INVENTORY_READ, "web", "production", NULL).allowed);
	assert_false(decide(a, ID("op"), CS_ACTION_INVENTORY_READ, "payments", "staging", NULL).allowed);
	cs_access_unref(a);
}

static cs_access_decision inv_scope(cs_access *a, const char *id, const char *project, int64_t now_ms)
{
	cs_access_decision d;
	cs_access_inventory_scope(a, id, project, now_ms > 0, now_ms, &d);
	return d;
}

/* The broad inventory reads (no environment, or no project) are charged
 * once to the caller's rate, like every other read */
static void test_inventory_scope_rate(void **state)
{
	(void)state;
	cs_config_grant g[] = {
		{.identity = ID("gen"), .role = CS_ROLE_GENERATOR, .projects = L("payments"), .environments = L("staging"),
		 .rate = 0.5, .burst = 2},
	};
	cs_access *a = rules(g, 1);
	assert_true(inv_scope(a, ID("gen"), NULL, 1000).allowed);
	assert_true(inv_scope(a, ID("gen"), "payments", 1000).allowed);
	cs_access_decision d = inv_scope(a, ID("gen"), NULL, 1000);
	assert_false(d.allowed);
	assert_true(d.retry_after > 0);
	assert_non_null(strstr(d.reason, "rate limit of"));
	assert_false(inv_scope(a, ID("gen"), "payments", 1000).allowed);
	assert_true(inv_scope(a, ID("gen"), "payments", 3100).allowed); /* refilled: 0.5/s for 2.1 s */
	assert_true(inv_scope(a, ID("gen"), NULL, 0).allowed);          /* rates aside: not charged */
	cs_access_unref(a);
}

/* inventory.read of a whole project (no environment asked): an auditor of
 * it, or a generator of it in any environment (the records are then
 * decided one by one); the exact decision is unchanged */
static void test_inventory_project(void **state)
{
	(void)state;
	cs_config_grant g[] = {
		{.identity = ID("gen"), .role = CS_ROLE_GENERATOR, .projects = L("payments"), .environments = L("staging")},
		{.identity = ID("aud"), .role = CS_ROLE_AUDITOR, .projects = L("payments")},
		{.identity = ID("op"), .role = CS_ROLE_OPERATOR, .projects = L("payments")},
		{.identity = ID("noenv"), .role = CS_ROLE_GENERATOR, .projects = L("payments")},
		{.identity = ID("all"), .role = CS_ROLE_GENERATOR, .projects = L("*"), .environments = L("*")},
		{.identity = ID("signer"), .role = CS_ROLE_SIGNER, .profiles = L("*")},
	};
	cs_access *a = rules(g, 6);
	assert_true(inv_scope(a, ID("gen"), "payments", 0).allowed);
	assert_false(inv_scope(a, ID("gen"), "web", 0).allowed);
	assert_true(inv_scope(a, ID("aud"), "payments", 0).allowed);
	assert_false(inv_scope(a, ID("aud"), "web", 0).allowed);
	assert_false(inv_scope(a, ID("op"), "payments", 0).allowed);
	assert_false(inv_scope(a, ID("noenv"), "payments", 0).allowed); /* no environment at all */
	assert_true(inv_scope(a, ID("all"), "anything", 0).allowed);
	assert_false(inv_scope(a, ID("signer"), "payments", 0).allowed);
	assert_false(inv_scope(a, ID("nobody"), "payments", 0).allowed);
	assert_false(inv_scope(a, NULL, "payments", 0).allowed);
	/* every project: any auditor or generator with an environment */
	assert_true(inv_scope(a, ID("gen"), NULL, 0).allowed);
	assert_true(inv_scope(a, ID("aud"), NULL, 0).allowed);
	assert_false(inv_scope(a, ID("op"), NULL, 0).allowed);
	assert_false(inv_scope(a, ID("signer"), NULL, 0).allowed);
	cs_access_decision none = inv_scope(a, ID("op"), "payments", 0);
	assert_string_equal(none.reason, "no auditor grant for project payments, nor a generator grant for it in "
					 "any environment");
	assert_string_equal(inv_scope(a, ID("op"), NULL, 0).reason,
			    "no auditor or generator grant (inventory.read needs one)");
	/* per record, the generator reads its environment only */
	assert_false(decide(a, ID("gen"), CS_ACTION_INVENTORY_READ, "payments", NULL, NULL).allowed);
	assert_true(decide(a, ID("gen"), CS_ACTION_INVENTORY_READ, "payments", "staging", NULL).allowed);
	assert_false(decide(a, ID("gen"), CS_ACTION_INVENTORY_READ, "payments", "production", NULL).allowed);
	cs_access_unref(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_action_names),
		cmocka_unit_test(test_identity_matching),
		cmocka_unit_test(test_every_role_and_action),
		cmocka_unit_test(test_scopes_and_wildcards),
		cmocka_unit_test(test_several_grants),
		cmocka_unit_test(test_deny_by_default_reasons),
		cmocka_unit_test(test_explain),
		cmocka_unit_test(test_signing_profiles),
		cmocka_unit_test(test_signing_rate_limit),
		cmocka_unit_test(test_rate_limit),
		cmocka_unit_test(test_rate_limit_several_grants),
		cmocka_unit_test(test_conflicts),
		cmocka_unit_test(test_reference_counting_and_swap),
		cmocka_unit_test(test_swap_under_load),
		cmocka_unit_test(test_unknown_presets),
		cmocka_unit_test(test_inventory_read),
		cmocka_unit_test(test_inventory_project),
		cmocka_unit_test(test_inventory_scope_rate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
