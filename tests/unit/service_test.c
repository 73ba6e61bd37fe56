/*
 * service_test: the services called directly (service.h), without HTTP,
 * against a real SoftHSM2 token (the signing key, the RNG) and a store in
 * a temporary directory, under a configuration loaded from a file:
 *
 * - generate and certify: allowed within a generator's scope (entry with
 *   the grant's role, project and environment); refused outside it, with
 *   the missing grant named to the caller and in the refusal's entry,
 *   and no credential; a session certified by another client certificate
 *   is refused and audited with the session's scope, and stays certifiable
 *   by its own;
 * - reads: certificates by their project's auditors and generators (any
 *   client with certificates.public), the whole audit log and the
 *   checkpoint by "*" auditors, one project's entries (no checkpoint) by
 *   that project's auditor, presets and policy by any grant, metrics by
 *   operators, the JWKS by anyone;
 * - admit: the decision before the scope is known;
 * - rate limits: a grant's bucket, refused with the seconds to wait; the
 *   inventory's broad reads (no environment, no project) charged too;
 * - the rules in force: a request keeps the rules it began with across a
 *   reload; a reload that removes a grant denies the next request; a file
 *   that does not load keeps the rules (audited); conflicts audited;
 * - one entry per request;
 * - the signing key in force: a registered chain (x5c) is checked and
 *   carried in the header; a request keeps the key it started with across
 *   a swap; no key in force fails certification closed (no_active_key) and
 *   readiness; the key watch follows the store's active key activated by
 *   a ceremony of the configured officers (a switch, a chain, a chain or
 *   kid that does not fit and no active key fail closed, each audited once
 *   as key.switch), and only such a key or a store's first, bootstrapped
 *   one: a key made active by an edit naming a made-up, malformed or no
 *   ceremony, a ceremony approved by an officer this configuration does
 *   not list (passed off under a listed name), by one officer, or whose
 *   record was edited after the approvals, a key claimed bootstrapped after
 *   rotations, an older ceremony's key restored by deleting rows (forward
 *   only), two active keys: each fails closed, audited once with its code;
 *   the revocation list is signed, re-signed on a change, a rotation and
 *   when half an hour old, served until its next_update without a key,
 *   withdrawn at once when its key is compromised; the JWKS lists the keys
 *   that signed, with their states, dates and x5c; the rollover statements
 *   are served as stored, oldest first;
 * - the audit log cannot be written: a read's or a refusal's entry sets
 *   audit_failed (503 audit_unavailable, nothing else), generate and
 *   certify store and return nothing, a lifecycle event's lost entry is
 *   logged; a reload warns of signing settings that differ from those in
 *   force and refuses grants of profiles not in force.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/x509.h>
#include <sqlite3.h>

#include "audit.h"
#include "ceremony.h"
#include "cs_log.h"
#include "jose.h"
#include "ledger.h"
#include "alloc_fail.h"
#include "officer_pki.h"
#include "privsep.h"
#include "provider.h"
#include "service.h"
#include "test_support.h"

#define KEY_LABEL "service-es256"

static char dir[512], conf_path[700];
static cs_config *cfg;
static cs_app app;
static cs_store *store;
static OSSL_PROVIDER *prov, *deflt;
static cs_signer *first_key; /* the configured key: the store's first active one */

/* ---- the configuration ------------------------------------------------------------ */

static const char *const base_grants =
	"  { identity = \"spiffe://t/ci\"; role = \"generator\"; projects = [ \"payments\" ];\n"
	"    environments = [ \"production\", \"staging\" ]; },\n"
	"  { identity = \"spiffe://t/web\"; role = \"generator\"; projects = [ \"web\" ]; environments = [ \"*\" ]; },\n"
	"  { identity = \"spiffe://t/auditor\"; role = \"auditor\"; projects = [ \"*\" ]; },\n"
	"  { identity = \"spiffe://t/pay-auditor\"; role = \"auditor\"; projects = [ \"payments\" ]; },\n"
	"  { identity = \"spiffe://t/operator\"; role = \"operator\"; },\n"
	"  { identity = \"spiffe://t/limited\"; role = \"generator\"; projects = [ \"web\" ];\n"
	"    environments = [ \"dev\" ]; rate = 0.001; burst = 2; },\n"
	"  { identity = \"spiffe://t/inv-project\"; role = \"auditor\"; projects = [ \"payments\" ];\n"
	"    rate = 0.001; burst = 1; },\n"
	"  { identity = \"spiffe://t/inv-any\"; role = \"auditor\"; projects = [ \"web\" ]; rate = 0.001; burst = 1; }";

/* The officer PKI (officer_pki.h) and the configuration's ceremony group
 * naming its officers a, b and c (quorum 2). */
static char pki[600], ceremony_conf[4096];

/* Write the configuration file with these grants (and extra groups). */
static void write_conf(const char *grants, const char *extra)
{
	char text[16384];
	snprintf(text, sizeof(text),
		 "server = { public_base_url = \"https://credsign.test\"; node_id = \"svc\";\n"
		 "  presets_file = \"%s/conf/presets.conf\"; };\n"
		 "tls = { cert = \"cert.pem\"; key = \"key.pem\"; ca = \"ca.pem\"; };\n"
		 "pkcs11 = { module = \"%s\"; token_uri = \"pkcs11:token=cstest\";\n"
		 "  pin_file = \"%s/user.pin\"; signing_key = \"pkcs11:token=cstest;object=" KEY_LABEL "\";\n"
		 "  validation = { program = \"none\"; }; };\n"
		 "store = { path = \"credsign.db\"; };\n"
		 "audit = { checkpoint_entries = 4; };\n"
		 "access = { grants = (\n%s\n); };\n%s%s",
		 CREDSIGN_SOURCE_DIR, getenv("CREDSIGN_TEST_MODULE"), getenv("CREDSIGN_TEST_TOKEN_DIR"), grants,
		 extra != NULL ? extra : "", ceremony_conf);
	ts_write_file(conf_path, text, 0600);
}

/* ---- requests ----------------------------------------------------------------------- */

static cs_caller who(const char *name)
{
	cs_caller c;
	memset(&c, 0, sizeof(c));
	snprintf(c.identity, sizeof(c.identity), "spiffe://t/%s", name);
	/* a certificate of its own per name */
	unsigned h = 5381;
	for (const char *p = name; *p; p++)
		h = h * 33 + (unsigned char)*p;
	for (int i = 0; i < 64; i++)
		c.cert_sha256[i] = "0123456789abcdef"[(h >> (i % 28)) & 15];
	return c;
}

static long request_number;

static void begin(cs_service_req *rq, const cs_caller *c, const char *action)
{
	char id[32];
	snprintf(id, sizeof(id), "svc-%ld", ++request_number);
	cs_service_begin(rq, &app, store, c, action, id);
}

/* End a request as a front end does: its entry written unless it is. */
static void finish(cs_service_req *rq, cs_err r)
{
	assert_int_equal(cs_service_record(rq, r == CS_OK ? "success" : "refused",
					   rq->problem.code[0] ? rq->problem.code : NULL),
			 CS_OK);
	cs_service_end(rq);
}

typedef struct {
	char request_id[128];
	int found;
	char actor[256], role[32], action[64], object[512], project[600], environment[600], outcome[16],
		error_code[48];
} entry;

static int match_entry(void *arg, const cs_audit_entry *e, const uint8_t prev[32], const uint8_t hash[32])
{
	(void)prev;
	(void)hash;
	entry *out = arg;
	if (e->request_id == NULL || strcmp(e->request_id, out->request_id) != 0)
		return 0;
	out->found++;
	snprintf(out->actor, sizeof(out->actor), "%s", e->actor);
	snprintf(out->role, sizeof(out->role), "%s", e->role);
	snprintf(out->action, sizeof(out->action), "%s", e->action);
	snprintf(out->object, sizeof(out->object), "%s", e->object != NULL ? e->object : "");
	snprintf(out->project, sizeof(out->project), "%s", e->project != NULL ? e->project : "");
	snprintf(out->environment, sizeof(out->environment), "%s", e->environment != NULL ? e->environment : "");
	snprintf(out->outcome, sizeof(out->outcome), "%s", e->outcome);
	snprintf(out->error_code, sizeof(out->error_code), "%s", e->error_code != NULL ? e->error_code : "");
	return 0;
}

/* The one entry of a request (fails the test when there is not exactly one). */
static entry entry_of(const char *request_id)
{
	entry e;
	memset(&e, 0, sizeof(e));
	snprintf(e.request_id, sizeof(e.request_id), "%s", request_id);
	assert_int_equal(cs_store_audit_each(store, 1, 0, match_entry, &e), CS_OK);
	assert_int_equal(e.found, 1);
	return e;
}

typedef struct {
	const char *action;
	int count;
	char last_outcome[16], last_object[512], last_code[48];
} action_count;

static int count_action(void *arg, const cs_audit_entry *e, const uint8_t prev[32], const uint8_t hash[32])
{
	(void)prev;
	(void)hash;
	action_count *c = arg;
	if (strcmp(e->action, c->action) == 0) {
		c->count++;
		snprintf(c->last_outcome, sizeof(c->last_outcome), "%s", e->outcome);
		snprintf(c->last_object, sizeof(c->last_object), "%s", e->object != NULL ? e->object : "");
		snprintf(c->last_code, sizeof(c->last_code), "%s", e->error_code != NULL ? e->error_code : "");
	}
	return 0;
}

static action_count entries_of(const char *action)
{
	action_count c = {.action = action};
	assert_int_equal(cs_store_audit_each(store, 1, 0, count_action, &c), CS_OK);
	return c;
}

/* A refusal: CS_E_FORBIDDEN, the code and the reason to the caller, and one
 * entry saying the same. */
static entry assert_refused(cs_service_req *rq, cs_err r, const char *code, const char *reason)
{
	assert_int_equal(r, CS_E_FORBIDDEN);
	assert_string_equal(rq->problem.code, code);
	if (strstr(rq->problem.message, reason) == NULL)
		fail_msg("message '%s' does not say '%s'", rq->problem.message, reason);
	assert_true(rq->audited);
	assert_false(rq->audit_failed);
	entry e = entry_of(rq->request_id);
	assert_string_equal(e.outcome, "refused");
	assert_string_equal(e.error_code, code);
	assert_string_equal(e.role, "client");
	if (strstr(e.object, reason) == NULL)
		fail_msg("entry object '%s' does not say '%s'", e.object, reason);
	return e;
}

static const cs_preset *preset(const char *name)
{
	const cs_preset *p = cs_preset_find(app.presets, name);
	assert_non_null(p);
	return p;
}

/* A request of soc2's defaults (the plan is kept in plan: it points into
 * itself). */
static cs_generate_request generate_request(const char *project, const char *environment, cs_plan *plan)
{
	cs_generate_request g = {.preset = preset("soc2"), .plan = plan, .project = project,
				 .environment = environment};
	cs_plan_request q = {0};
	char why[256];
	assert_int_equal(cs_preset_plan(g.preset, app.wordlist, &q, plan, why, sizeof(why)), CS_OK);
	return g;
}

/* Generate as name; the session id into sid (when allowed). */
static cs_err generate_as(const char *name, const char *project, const char *environment, char sid[23])
{
	cs_caller c = who(name);
	cs_service_req rq;
	cs_generate_result res;
	cs_plan plan;
	cs_generate_request g = generate_request(project, environment, &plan);
	begin(&rq, &c, "generate");
	cs_err r = cs_service_generate(&rq, &g, &res);
	if (r == CS_OK && sid != NULL)
		memcpy(sid, res.session_id, 23);
	cs_generate_result_wipe(&res);
	finish(&rq, r);
	return r;
}

/* A certificate of a project, generated and certified by name. */
static void certificate_of(const char *name, const char *project, const char *environment, char cert_id[23])
{
	char sid[23];
	assert_int_equal(generate_as(name, project, environment, sid), CS_OK);
	cs_caller c = who(name);
	cs_service_req rq;
	cs_certify_result res;
	begin(&rq, &c, "certify");
	assert_int_equal(cs_service_certify(&rq, sid, &res), CS_OK);
	memcpy(cert_id, res.cert_id, 23);
	cs_certify_result_free(&res);
	finish(&rq, CS_OK);
}

/* ---- generate ------------------------------------------------------------------------ */

static void test_generate_within_the_grant(void **state)
{
	(void)state;
	cs_caller c = who("ci");
	cs_service_req rq;
	cs_generate_result res;
	cs_plan plan;
	cs_generate_request g = generate_request("payments", "production", &plan);
	begin(&rq, &c, "generate");
	size_t secure_used = CRYPTO_secure_used();
	assert_int_equal(cs_service_generate(&rq, &g, &res), CS_OK);
	assert_true(strlen(res.credential) >= (size_t)g.plan->length);
	/* the credential is in the secure heap (locked, not dumped), and only
	 * it: the token's random bytes it was drawn from are released */
	assert_true(CRYPTO_secure_allocated(res.credential));
	size_t credential_block = CRYPTO_secure_actual_size(res.credential);
	assert_true(credential_block >= CS_GENERATE_CREDENTIAL_BYTES);
	assert_int_equal(CRYPTO_secure_used(), secure_used + credential_block);
	assert_int_equal(strlen(res.session_id), CS_SERVICE_ID_CHARS);
	assert_string_equal(res.preset, "soc2");
	assert_int_equal(res.expires_in, CS_SESSION_TTL_SECONDS);
	assert_true(rq.audited); /* in the session's transaction */
	entry e = entry_of(rq.request_id);
	assert_string_equal(e.actor, "spiffe://t/ci");
	assert_string_equal(e.role, "generator");
	assert_string_equal(e.action, "generate");
	assert_string_equal(e.outcome, "success");
	assert_string_equal(e.object, res.session_id);
	assert_string_equal(e.project, "payments");
	assert_string_equal(e.environment, "production");
	/* the credential is never in the entry */
	assert_null(strstr(e.object, res.credential));
	/* wiped and released: the secure heap is back where it was, and the
	 * block holds nothing of the credential (past the free-list links
	 * OpenSSL writes at the start of a freed block) */
	const volatile char *was = res.credential;
	size_t n = strlen(res.credential);
	cs_generate_result_wipe(&res);
	assert_null(res.credential);
	assert_int_equal(CRYPTO_secure_used(), secure_used);
	for (size_t i = 2 * sizeof(void *); i < n; i++)
		assert_int_equal(was[i], 0);
	finish(&rq, CS_OK);
	assert_int_equal(entry_of(rq.request_id).found, 1); /* recorded once */
}

static void test_generate_outside_the_grant(void **state)
{
	(void)state;
	static const struct {
		const char *name, *project, *environment, *reason;
	} cases[] = {
		/* another project, another environment, none given (only "*" covers it) */
		{"ci", "web", "production", "no generator grant for project web, environment production, preset soc2"},
		{"ci", "payments", "dev", "no generator grant for project payments, environment dev, preset soc2"},
		{"ci", NULL, NULL, "no generator grant for project (none), environment (none), preset soc2"},
		/* roles that do not generate, and no grant at all */
		{"auditor", "payments", "production", "no generator grant for project payments"},
		{"operator", "web", "dev", "no generator grant for project web"},
		{"stranger", "web", "dev", "no generator grant for project web"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cs_caller c = who(cases[i].name);
		cs_service_req rq;
		cs_generate_result res;
		cs_plan plan;
		cs_generate_request g = generate_request(cases[i].project, cases[i].environment, &plan);
		begin(&rq, &c, "generate");
		cs_err r = cs_service_generate(&rq, &g, &res);
		entry e = assert_refused(&rq, r, "forbidden", cases[i].reason);
		assert_string_equal(e.actor, c.identity);
		assert_string_equal(e.action, "generate");
		/* the scope asked for */
		assert_string_equal(e.project, cases[i].project != NULL ? cases[i].project : "");
		assert_string_equal(e.environment, cases[i].environment != NULL ? cases[i].environment : "");
		/* nothing generated */
		assert_null(res.credential);
		assert_string_equal(res.session_id, "");
		finish(&rq, r);
	}
	/* no verified client: refused, attributed to no one */
	cs_service_req rq;
	cs_generate_result res;
	cs_plan plan;
	cs_generate_request g = generate_request("web", "dev", &plan);
	begin(&rq, NULL, "generate");
	entry e = assert_refused(&rq, cs_service_generate(&rq, &g, &res), "forbidden", "no verified client certificate");
	assert_string_equal(e.actor, "unidentified");
	finish(&rq, CS_E_FORBIDDEN);
}

/* ---- certify ----------------------------------------------------------------------- */

static void test_certify_by_the_generator_only(void **state)
{
	(void)state;
	char sid[23];
	assert_int_equal(generate_as("ci", "payments", "staging", sid), CS_OK);
	cs_certify_result res;
	cs_service_req rq;
	/* another generator's client certificate: refused, with the session's scope */
	cs_caller web = who("web");
	begin(&rq, &web, "certify");
	entry e = assert_refused(&rq, cs_service_certify(&rq, sid, &res), "forbidden",
				 "the generation session belongs to another client certificate");
	assert_non_null(strstr(e.object, sid));
	assert_string_equal(e.project, "payments");
	assert_string_equal(e.environment, "staging");
	assert_null(res.jws);
	finish(&rq, CS_E_FORBIDDEN);
	/* an identity without a generator grant: refused before the session is read */
	cs_caller auditor = who("auditor");
	begin(&rq, &auditor, "certify");
	assert_refused(&rq, cs_service_certify(&rq, sid, &res), "forbidden", "no generator grant (certify needs one)");
	finish(&rq, CS_E_FORBIDDEN);
	/* its own: certified, once */
	cs_caller ci = who("ci");
	begin(&rq, &ci, "certify");
	assert_int_equal(cs_service_certify(&rq, sid, &res), CS_OK);
	assert_non_null(res.jws);
	assert_int_equal(strlen(res.cert_id), CS_SERVICE_ID_CHARS);
	char want[200];
	snprintf(want, sizeof(want), "https://credsign.test/cert/%s", res.cert_id);
	assert_string_equal(res.url, want);
	e = entry_of(rq.request_id);
	assert_string_equal(e.outcome, "success");
	assert_string_equal(e.role, "generator");
	assert_string_equal(e.object, res.cert_id);
	assert_string_equal(e.project, "payments");
	finish(&rq, CS_OK);
	/* the stored certificate is the one returned */
	char *jws = NULL, *claims = NULL;
	begin(&rq, &auditor, "cert.read");
	assert_int_equal(cs_service_cert_get(&rq, res.cert_id, &jws, &claims, NULL), CS_OK);
	assert_string_equal(jws, res.jws);
	assert_non_null(strstr(claims, "\"project\":\"payments\""));
	finish(&rq, CS_OK);
	free(jws);
	free(claims);
	cs_certify_result_free(&res);
	begin(&rq, &ci, "certify");
	assert_int_equal(cs_service_certify(&rq, sid, &res), CS_E_SESSION_USED);
	finish(&rq, CS_E_SESSION_USED);
	begin(&rq, &ci, "certify");
	assert_int_equal(cs_service_certify(&rq, "AAAAAAAAAAAAAAAAAAAAAA", &res), CS_E_NOT_FOUND);
	finish(&rq, CS_E_NOT_FOUND);
}

/* ---- reads ----------------------------------------------------------------------------- */

static void test_certificates_by_project(void **state)
{
	(void)state;
	char cert[23];
	certificate_of("ci", "payments", "production", cert);
	static const struct {
		const char *name, *role, *reason; /* reason NULL: allowed */
	} cases[] = {
		{"auditor", "auditor", NULL},
		{"pay-auditor", "auditor", NULL},
		{"ci", "generator", NULL},
		{"web", NULL, "no auditor or generator grant for project payments"},
		{"operator", NULL, "no auditor or generator grant (cert.read needs one)"},
		{"stranger", NULL, "no auditor or generator grant (cert.read needs one)"},
	};
	for (int pub = 0; pub < 2; pub++)
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			cs_caller c = who(cases[i].name);
			cs_service_req rq;
			char *jws = NULL, *claims = NULL;
			begin(&rq, &c, "cert.read");
			rq.certificates_public = pub; /* as cs_service_begin reads it from the app */
			cs_err r = cs_service_cert_get(&rq, cert, &jws, &claims, NULL);
			if (cases[i].reason == NULL || pub) {
				assert_int_equal(r, CS_OK);
				assert_non_null(jws);
				finish(&rq, r);
				entry e = entry_of(rq.request_id);
				/* certificates.public reads as a client unless a grant covers it */
				assert_string_equal(e.role, cases[i].reason == NULL ? cases[i].role : "client");
				assert_string_equal(e.object, cert);
				assert_string_equal(e.project, "payments");
			} else {
				entry e = assert_refused(&rq, r, "forbidden", cases[i].reason);
				assert_non_null(strstr(e.object, cert));
				assert_null(jws);
				finish(&rq, r);
			}
			free(jws);
			free(claims);
		}
	cs_caller auditor = who("auditor");
	cs_service_req rq;
	char *jws = NULL, *claims = NULL;
	begin(&rq, &auditor, "cert.read");
	assert_int_equal(cs_service_cert_get(&rq, "AAAAAAAAAAAAAAAAAAAAAA", &jws, &claims, NULL), CS_E_NOT_FOUND);
	finish(&rq, CS_E_NOT_FOUND);
}

typedef struct {
	int entries, checkpoints, other_project, no_project;
} page_summary;

static page_summary export_as(const char *name, const char *project, cs_err want, const char *reason)
{
	cs_caller c = who(name);
	cs_service_req rq;
	cs_audit_query q = {.from_seq = 1, .limit = 10000};
	cs_audit_page page;
	page_summary s = {0};
	snprintf(q.project, sizeof(q.project), "%s", project != NULL ? project : "");
	begin(&rq, &c, "audit.read");
	cs_err r = cs_service_audit_export(&rq, &q, &page);
	if (want != CS_OK) {
		assert_refused(&rq, r, "forbidden", reason);
		finish(&rq, r);
		return s;
	}
	assert_int_equal(r, CS_OK);
	size_t i;
	json_t *e;
	json_array_foreach(page.entries, i, e) {
		const char *p = json_string_value(json_object_get(e, "project"));
		s.entries++;
		s.no_project += p == NULL;
		s.other_project += p != NULL && (project == NULL || strcmp(p, project) != 0);
	}
	s.checkpoints = (int)json_array_size(page.checkpoints);
	assert_int_equal(page.next_from_seq, 0);
	cs_audit_page_free(&page);
	finish(&rq, r);
	assert_string_equal(entry_of(rq.request_id).role, "auditor");
	return s;
}

static void test_audit_log_views(void **state)
{
	(void)state;
	char cert[23];
	certificate_of("web", "web", "dev", cert);
	certificate_of("ci", "payments", "production", cert);
	/* the whole log: entries of every project and of none, with checkpoints */
	page_summary all = export_as("auditor", NULL, CS_OK, NULL);
	assert_true(all.entries > 10 && all.checkpoints > 0 && all.other_project > 0 && all.no_project > 0);
	/* one project: its entries only, no checkpoint (not verifiable alone) */
	page_summary pay = export_as("pay-auditor", "payments", CS_OK, NULL);
	assert_true(pay.entries >= 4 && pay.entries < all.entries);
	assert_int_equal(pay.other_project + pay.no_project + pay.checkpoints, 0);
	page_summary pay_star = export_as("auditor", "payments", CS_OK, NULL);
	assert_true(pay_star.entries >= pay.entries); /* a "*" auditor may filter too */
	assert_int_equal(pay_star.checkpoints, 0);
	/* not its projects, not the whole log; nor anyone else's */
	export_as("pay-auditor", NULL, CS_E_FORBIDDEN,
		  "no auditor grant for every project (projects = [ \"*\" ]); an auditor of some projects reads their "
		  "entries with GET /api/audit?project=NAME");
	export_as("pay-auditor", "web", CS_E_FORBIDDEN, "no auditor grant for project web");
	export_as("ci", "payments", CS_E_FORBIDDEN, "no auditor grant for project payments");
	export_as("operator", NULL, CS_E_FORBIDDEN, "no auditor grant");
	/* the checkpoint: for verifying the whole log */
	const char *names[] = {"auditor", "pay-auditor", "ci"};
	for (size_t i = 0; i < 3; i++) {
		cs_caller c = who(names[i]);
		cs_service_req rq;
		char *jws = NULL;
		begin(&rq, &c, "audit.checkpoint.read");
		cs_err r = cs_service_audit_checkpoint(&rq, &jws);
		if (i == 0) {
			assert_int_equal(r, CS_OK);
			assert_non_null(jws);
		} else {
			assert_refused(&rq, r, "forbidden", "no auditor grant for every project");
		}
		finish(&rq, r);
		free(jws);
	}
}

static void test_reads_by_role(void **state)
{
	(void)state;
	cs_service_req rq;
	json_t *doc = NULL;
	char *text = NULL;
	/* presets and policy: any grant */
	const char *any[] = {"ci", "web", "auditor", "pay-auditor", "operator"};
	for (size_t i = 0; i < sizeof(any) / sizeof(any[0]); i++) {
		cs_caller c = who(any[i]);
		begin(&rq, &c, "presets.read");
		assert_int_equal(cs_service_presets(&rq, &doc), CS_OK);
		assert_true(json_array_size(json_object_get(doc, "presets")) >= 11);
		json_decref(doc);
		finish(&rq, CS_OK);
		cs_policy_input in = {.presets = {preset("pci-dss-4")}, .count = 1};
		begin(&rq, &c, "policy.read");
		assert_int_equal(cs_service_policy(&rq, &in, &doc), CS_OK);
		assert_non_null(json_object_get(doc, "content_sha256"));
		json_decref(doc);
		finish(&rq, CS_OK);
	}
	cs_caller stranger = who("stranger");
	begin(&rq, &stranger, "presets.read");
	assert_refused(&rq, cs_service_presets(&rq, &doc), "forbidden", "no grant (presets.read needs a grant of any role)");
	finish(&rq, CS_E_FORBIDDEN);
	/* the JWKS: public */
	begin(&rq, &stranger, "jwks.read");
	assert_int_equal(cs_service_jwks(&rq, NULL, &doc), CS_OK);
	assert_int_equal(json_array_size(doc), 1);
	char kid[44];
	cs_signer_slot_kid(app.signer, kid);
	assert_string_equal(json_string_value(json_object_get(json_array_get(doc, 0), "kid")), kid);
	assert_string_equal(json_string_value(json_object_get(json_array_get(doc, 0), "status")), "active");
	assert_non_null(json_object_get(json_array_get(doc, 0), "activated_at"));
	assert_null(json_object_get(json_array_get(doc, 0), "retired_at"));
	json_decref(doc);
	finish(&rq, CS_OK);
	/* metrics: operators */
	cs_caller op = who("operator");
	begin(&rq, &op, "metrics.read");
	assert_int_equal(cs_service_metrics(&rq, &text), CS_OK);
	assert_non_null(strstr(text, "credsign_"));
	free(text);
	finish(&rq, CS_OK);
	assert_string_equal(entry_of(rq.request_id).role, "operator");
	cs_caller auditor = who("auditor");
	begin(&rq, &auditor, "metrics.read");
	assert_refused(&rq, cs_service_metrics(&rq, &text), "forbidden", "no operator grant");
	assert_null(text);
	finish(&rq, CS_E_FORBIDDEN);
}

static void test_admit_before_the_scope(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		cs_access_action action;
		const char *reason; /* NULL: admitted */
	} cases[] = {
		{"ci", CS_ACTION_GENERATE, NULL},
		{"web", CS_ACTION_CERT_READ, NULL},
		{"pay-auditor", CS_ACTION_AUDIT_READ, NULL}, /* for some project: decided with it */
		{"pay-auditor", CS_ACTION_CERT_READ, NULL},
		{"auditor", CS_ACTION_GENERATE, "no generator grant (generate needs one)"},
		{"operator", CS_ACTION_CERT_READ, "no auditor or generator grant (cert.read needs one)"},
		{"ci", CS_ACTION_AUDIT_READ, "no auditor grant (audit.read needs one)"},
		{"stranger", CS_ACTION_POLICY_READ, "no grant (policy.read needs a grant of any role)"},
		{"stranger", CS_ACTION_CERTIFY, "no generator grant (certify needs one)"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cs_caller c = who(cases[i].name);
		cs_service_req rq;
		begin(&rq, &c, cs_access_action_name(cases[i].action));
		cs_err r = cs_service_admit(&rq, cases[i].action);
		if (cases[i].reason == NULL) {
			assert_int_equal(r, CS_OK);
			assert_false(rq.audited); /* the decision with the scope comes next */
		} else {
			assert_refused(&rq, r, "forbidden", cases[i].reason);
		}
		finish(&rq, r);
	}
}

static void test_rate_limit(void **state)
{
	(void)state;
	cs_caller c = who("limited");
	cs_service_req rq;
	json_t *doc = NULL;
	for (int i = 0; i < 2; i++) { /* the burst */
		begin(&rq, &c, "presets.read");
		assert_int_equal(cs_service_presets(&rq, &doc), CS_OK);
		json_decref(doc);
		finish(&rq, CS_OK);
	}
	begin(&rq, &c, "presets.read");
	entry e = assert_refused(&rq, cs_service_presets(&rq, &doc), "rate_limited",
				 "rate limit of access.grants[5] exceeded");
	assert_true(rq.retry_after >= 1);
	assert_null(doc);
	assert_string_equal(e.actor, "spiffe://t/limited");
	finish(&rq, CS_E_FORBIDDEN);
	/* another identity's bucket is its own */
	cs_caller web = who("web");
	for (int i = 0; i < 4; i++) {
		begin(&rq, &web, "presets.read");
		assert_int_equal(cs_service_presets(&rq, &doc), CS_OK);
		json_decref(doc);
		finish(&rq, CS_OK);
	}
}

/* The inventory's broad reads (a project without an environment, or no
 * project) are admitted by cs_access_inventory_scope, not the exact
 * decision: they too are charged to the grant's rate. Burst 1: the second
 * read right after the first is refused rate_limited (429). */
static void inventory_read_twice(const char *name, const char *project, const char *grant)
{
	cs_caller c = who(name);
	cs_inventory_query q;
	memset(&q, 0, sizeof(q));
	snprintf(q.project, sizeof(q.project), "%s", project);
	cs_service_req rq;
	json_t *doc = NULL;
	begin(&rq, &c, "inventory.read");
	assert_int_equal(cs_service_inventory(&rq, &q, &doc), CS_OK);
	assert_non_null(json_object_get(doc, "records"));
	json_decref(doc);
	doc = NULL;
	finish(&rq, CS_OK);
	begin(&rq, &c, "inventory.read");
	char reason[128];
	snprintf(reason, sizeof(reason), "rate limit of %s exceeded", grant);
	entry e = assert_refused(&rq, cs_service_inventory(&rq, &q, &doc), "rate_limited", reason);
	assert_true(rq.retry_after >= 1);
	assert_null(doc);
	assert_string_equal(e.action, "inventory.read");
	finish(&rq, CS_E_FORBIDDEN);
}

static void test_inventory_broad_reads_are_charged(void **state)
{
	(void)state;
	inventory_read_twice("inv-project", "payments", "access.grants[6]"); /* project, no environment */
	inventory_read_twice("inv-any", "", "access.grants[7]");             /* no project */
}

/* ---- the rules in force ------------------------------------------------------------- */

static void test_reload_swaps_rules(void **state)
{
	(void)state;
	cs_caller web = who("web");
	cs_service_req early, rq;
	cs_generate_result res;
	cs_plan plan;
	cs_generate_request g = generate_request("web", "dev", &plan);
	/* a request in flight across the reload */
	begin(&early, &web, "generate");
	/* web's grant removed; ci also made an auditor: warned of and audited */
	write_conf("  { identity = \"spiffe://t/ci\"; role = \"generator\"; projects = [ \"payments\" ];\n"
		   "    environments = [ \"production\", \"staging\" ]; },\n"
		   "  { identity = \"spiffe://t/auditor\"; role = \"auditor\"; projects = [ \"*\" ]; },\n"
		   "  { identity = \"spiffe://t/ci\"; role = \"auditor\"; projects = [ \"web\" ]; }",
		   NULL);
	int conflicts = entries_of("access.conflict").count;
	assert_int_equal(cs_service_rules_reload(&app), CS_OK);
	action_count reloads = entries_of("access.reload");
	assert_string_equal(reloads.last_outcome, "success");
	assert_int_equal(entries_of("access.conflict").count, conflicts + 1);
	assert_non_null(strstr(entries_of("access.conflict").last_object,
			       "spiffe://t/ci holds generator rights (access.grants[0]) and auditor rights (access.grants[2])"));
	/* the request in flight decides under the rules it began with */
	assert_int_equal(cs_service_generate(&early, &g, &res), CS_OK);
	cs_generate_result_wipe(&res);
	finish(&early, CS_OK);
	/* the next one under the new rules */
	begin(&rq, &web, "generate");
	assert_refused(&rq, cs_service_generate(&rq, &g, &res), "forbidden", "no generator grant");
	finish(&rq, CS_E_FORBIDDEN);
	/* a file that does not load: the rules in force stay, audited */
	write_conf("  { identity = \"spiffe://t/web\"; role = \"superuser\"; }", NULL);
	assert_int_not_equal(cs_service_rules_reload(&app), CS_OK);
	reloads = entries_of("access.reload");
	assert_string_equal(reloads.last_outcome, "failure");
	begin(&rq, &web, "generate");
	assert_refused(&rq, cs_service_generate(&rq, &g, &res), "forbidden", "no generator grant");
	finish(&rq, CS_E_FORBIDDEN);
	/* a grant back, and certificates.public with it */
	write_conf(base_grants, "certificates = { public = true; };\n");
	assert_int_equal(cs_service_rules_reload(&app), CS_OK);
	begin(&rq, &web, "generate");
	assert_int_equal(rq.certificates_public, 1);
	assert_int_equal(cs_service_generate(&rq, &g, &res), CS_OK);
	cs_generate_result_wipe(&res);
	finish(&rq, CS_OK);
	write_conf(base_grants, NULL);
	assert_int_equal(cs_service_rules_reload(&app), CS_OK);
	begin(&rq, &web, "presets.read");
	assert_int_equal(rq.certificates_public, 0);
	cs_service_end(&rq);
}

/* ---- the signing key in force -------------------------------------------------------- */

/* Run SQL on the store as a committed ceremony leaves it (the tests drive
 * the lifecycle directly; ledger_test covers the ceremonies). */
static void sql(const char *text)
{
	sqlite3 *db = NULL;
	char *err = NULL;
	assert_int_equal(sqlite3_open(cfg->store.path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	if (sqlite3_exec(db, text, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", text, err != NULL ? err : "?");
	sqlite3_close(db);
}

#define NOW_SQL "strftime('%Y-%m-%dT%H:%M:%fZ','now')"
#define NOW_FMT "strftime('%%Y-%%m-%%dT%%H:%%M:%%fZ','now')" /* in a format */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A key of the token by label (generated when missing): its signer and,
 * recorded in the store, pending. */
static cs_signer *token_key(const char *label, int record)
{
	cs_key_ref q = {0}, found;
	snprintf(q.label, sizeof(q.label), "%s", label);
	cs_err r = cs_token_find_key(app.token, &q, &found);
	if (r == CS_E_KEY_NOT_FOUND)
		r = cs_token_generate_p256(app.token, label, &found);
	assert_int_equal(r, CS_OK);
	char uri[300];
	snprintf(uri, sizeof(uri), "pkcs11:token=cstest;object=%s", label);
	cs_signer *s = NULL;
	assert_int_equal(cs_signer_open(app.libctx, uri, &s), CS_OK);
	if (record) {
		char *jwk = json_dumps(cs_signer_jwk(s), JSON_COMPACT | JSON_SORT_KEYS);
		cs_key_info key = {.kid = cs_signer_kid(s), .uri = uri, .jwk_json = jwk, .label = label,
				   .created_by = "local:test"};
		assert_int_equal(cs_ledger_key_add_pending(app.ledger, &key, NULL), CS_OK);
		free(jwk);
	}
	return s;
}

/* The public half of a signer, from the token. */
static EVP_PKEY *public_of(const char *label)
{
	cs_key_ref q = {0}, found;
	EVP_PKEY *pub = NULL;
	snprintf(q.label, sizeof(q.label), "%s", label);
	assert_int_equal(cs_token_find_key(app.token, &q, &found), CS_OK);
	assert_int_equal(cs_token_public_key(app.token, &found, &pub), CS_OK);
	return pub;
}

/* A certificate for subject's key issued by a software CA key: standard
 * base64 of its DER (malloc'd). */
static char *cert_b64(EVP_PKEY *subject, EVP_PKEY *issuer)
{
	X509 *x = X509_new();
	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)"credsign key",
				   -1, -1, 0);
	X509_NAME_add_entry_by_txt(X509_get_issuer_name(x), "CN", MBSTRING_ASC, (const unsigned char *)"test CA", -1,
				   -1, 0);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	assert_int_equal(X509_set_pubkey(x, subject), 1);
	assert_true(X509_sign(x, issuer, EVP_sha256()) > 0);
	unsigned char *der = NULL;
	int len = i2d_X509(x, &der);
	assert_true(len > 0);
	char *b64 = malloc((size_t)(len / 3 + 2) * 4 + 1);
	assert_non_null(b64);
	EVP_EncodeBlock((unsigned char *)b64, der, len);
	OPENSSL_free(der);
	X509_free(x);
	return b64;
}

/* ["leaf","ca"] for the token key label, issued by ca (the CA's own
 * certificate second). */
static char *chain_for(const char *label, EVP_PKEY *ca)
{
	EVP_PKEY *pub = public_of(label);
	char *leaf = cert_b64(pub, ca), *root = cert_b64(ca, ca);
	json_t *chain = json_pack("[s, s]", leaf, root);
	char *text = json_dumps(chain, JSON_COMPACT);
	json_decref(chain);
	free(leaf);
	free(root);
	EVP_PKEY_free(pub);
	return text;
}

static json_t *header_of(const char *jws)
{
	json_t *h = NULL;
	assert_int_equal(cs_jws_peek_header(jws, &h), CS_OK);
	return h;
}

static void test_x5c_of_a_signer(void **state)
{
	(void)state;
	EVP_PKEY *ca = EVP_EC_gen("P-256");
	assert_non_null(ca);
	char *good = chain_for(KEY_LABEL, ca);
	char *other = cert_b64(ca, ca); /* certifies the CA's key, not the signer's */
	char wrong_leaf[4096], trailing[6100], too_many[16384] = "[";
	snprintf(wrong_leaf, sizeof(wrong_leaf), "[\"%s\"]", other);
	json_t *g = json_loads(good, 0, NULL);
	/* a whole certificate followed by more bytes: re-encode DER + 3 bytes */
	const char *leaf = json_string_value(json_array_get(g, 0));
	unsigned char der[4096];
	int n = EVP_DecodeBlock(der, (const unsigned char *)leaf, (int)strlen(leaf));
	n -= (leaf[strlen(leaf) - 1] == '=') + (leaf[strlen(leaf) - 2] == '=');
	memcpy(der + n, "\x01\x02\x03", 3);
	char extra[6000];
	EVP_EncodeBlock((unsigned char *)extra, der, n + 3);
	snprintf(trailing, sizeof(trailing), "[\"%s\"]", extra);
	for (int i = 0; i <= CS_X5C_MAX_CERTS; i++)
		snprintf(too_many + strlen(too_many), sizeof(too_many) - strlen(too_many), "%s\"%s\"", i ? "," : "",
			 leaf);
	strcat(too_many, "]");
	static const char *const refused_why[] = {"not a JSON array", "not a JSON array", "x5c[0] is not a string",
						  "x5c[0] is not standard base64", "x5c[0] is not standard base64",
						  "x5c[0] is not one DER X.509 certificate",
						  "does not certify key", "x5c[0] is not one DER X.509 certificate",
						  "not a JSON array"};
	const char *refused[] = {"{}", "[]", "[1]", "[\"abc\"]", "[\"AA AA\"]", "[\"AAAA\"]", wrong_leaf, trailing,
				 too_many};
	cs_signer *s = first_key;
	char why[200];
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		assert_int_equal(cs_signer_set_x5c(s, refused[i], why, sizeof(why)), CS_E_INVALID_ARG);
		if (strstr(why, refused_why[i]) == NULL)
			fail_msg("case %zu: '%s' does not say '%s'", i, why, refused_why[i]);
		assert_null(cs_signer_x5c(s));
	}
	/* the chain is set, and the header carries it */
	assert_int_equal(cs_signer_set_x5c(s, good, why, sizeof(why)), CS_OK);
	json_t *claims = json_pack("{s:s}", "t", "x5c");
	char *jws = NULL;
	assert_int_equal(cs_signer_jws(s, CS_CERT_TYP, claims, &jws), CS_OK);
	json_t *h = header_of(jws);
	assert_true(json_equal(json_object_get(h, "x5c"), g));
	assert_string_equal(json_string_value(json_object_get(h, "kid")), cs_signer_kid(s));
	json_decref(h);
	free(jws);
	/* removed: no x5c */
	assert_int_equal(cs_signer_set_x5c(s, NULL, why, sizeof(why)), CS_OK);
	assert_int_equal(cs_signer_jws(s, CS_CERT_TYP, claims, &jws), CS_OK);
	h = header_of(jws);
	assert_null(json_object_get(h, "x5c"));
	json_decref(h);
	free(jws);
	json_decref(claims);
	json_decref(g);
	free(good);
	free(other);
	EVP_PKEY_free(ca);
}

/* Certify a fresh session of ci with the request rq (begun by the caller). */
static char *certify_in(cs_service_req *rq, const char *sid, cs_err want)
{
	cs_certify_result res;
	cs_err r = cs_service_certify(rq, sid, &res);
	assert_int_equal(r, want);
	char *jws = r == CS_OK ? strdup(res.jws) : NULL;
	if (r == CS_OK)
		cs_certify_result_free(&res);
	return jws;
}

static void assert_signed_by(const char *jws, const char *label, const char *kid)
{
	EVP_PKEY *pub = public_of(label);
	json_t *h = NULL, *p = NULL;
	assert_int_equal(cs_jws_es256_verify(jws, pub, &h, &p), CS_OK);
	assert_string_equal(json_string_value(json_object_get(h, "kid")), kid);
	json_decref(h);
	json_decref(p);
	EVP_PKEY_free(pub);
}

static void test_a_request_keeps_its_key(void **state)
{
	(void)state;
	char sid1[23], sid2[23];
	assert_int_equal(generate_as("ci", "payments", "production", sid1), CS_OK);
	assert_int_equal(generate_as("ci", "payments", "production", sid2), CS_OK);
	cs_signer *b = token_key(KEY_LABEL "-b", 1);
	cs_caller ci = who("ci");
	cs_service_req early, late;
	begin(&early, &ci, "certify"); /* takes the key in force: the first */
	cs_signer_slot_swap(app.signer, cs_signer_ref(b));
	begin(&late, &ci, "certify");
	char *jws_late = certify_in(&late, sid2, CS_OK);
	char *jws_early = certify_in(&early, sid1, CS_OK);
	finish(&late, CS_OK);
	finish(&early, CS_OK);
	assert_signed_by(jws_early, KEY_LABEL, cs_signer_kid(first_key));
	assert_signed_by(jws_late, KEY_LABEL "-b", cs_signer_kid(b));
	free(jws_early);
	free(jws_late);
	/* metrics and readiness name the key in force */
	cs_caller op = who("operator");
	char *text = NULL, want[128];
	begin(&early, &op, "metrics.read");
	assert_int_equal(cs_service_metrics(&early, &text), CS_OK);
	snprintf(want, sizeof(want), "credsign_signing_key_info{kid=\"%s\"} 1", cs_signer_kid(b));
	assert_non_null(strstr(text, want));
	free(text);
	finish(&early, CS_OK);
	cs_readiness ready;
	cs_service_readiness(&app, store, &ready);
	assert_string_equal(ready.kid, cs_signer_kid(b));
	cs_signer_slot_swap(app.signer, cs_signer_ref(first_key));
	/* b was put in the slot by hand, never active: its certificate would
	 * make the store's first key look like it followed another (the
	 * bootstrap rule of cs_app_key_warrant) */
	char q[256];
	snprintf(q, sizeof(q), "DELETE FROM certificates WHERE kid = '%s';", cs_signer_kid(b));
	sql(q);
	cs_signer_free(b);
}

static void test_no_key_in_force_fails_closed(void **state)
{
	(void)state;
	char sid[23];
	assert_int_equal(generate_as("ci", "payments", "production", sid), CS_OK);
	cs_signer_slot_swap(app.signer, NULL);
	cs_caller ci = who("ci");
	cs_service_req rq;
	begin(&rq, &ci, "certify");
	assert_null(certify_in(&rq, sid, CS_E_NO_ACTIVE_KEY));
	assert_string_equal(rq.problem.code, "no_active_key");
	assert_non_null(strstr(rq.problem.message, "no active signing key"));
	cs_service_record(&rq, "failure", rq.problem.code);
	cs_service_end(&rq);
	entry e = entry_of(rq.request_id);
	assert_string_equal(e.error_code, "no_active_key");
	cs_readiness ready;
	cs_service_readiness(&app, store, &ready);
	assert_string_equal(ready.kid, "");
	/* checkpoints wait for a key */
	assert_int_equal(cs_audit_checkpoint(app.audit, app.ledger, "periodic"), CS_E_NO_ACTIVE_KEY);
	/* the session was not used: certified once a key is back */
	cs_signer_slot_swap(app.signer, cs_signer_ref(first_key));
	begin(&rq, &ci, "certify");
	char *jws = certify_in(&rq, sid, CS_OK);
	finish(&rq, CS_OK);
	assert_signed_by(jws, KEY_LABEL, cs_signer_kid(first_key));
	free(jws);
}

/* ---- activations, as credsign-admin's ceremonies make them ------------------------ */

static int ceremonies_made;

/* The kid the store names active (malloc'd), NULL when none. */
static char *store_active(void)
{
	cs_active_key k = {0};
	cs_err r = cs_store_key_active(store, &k);
	assert_true(r == CS_OK || r == CS_E_NOT_FOUND);
	char *kid = r == CS_OK ? strdup(k.kid) : NULL;
	cs_active_key_free(&k);
	return kid;
}

/* The rollover statement of ceremony id (general JWS, RFC 7515 7.2.1)
 * making key active after old (NULL: none), signed by key. */
static char *rollover_of(const char *id, const char *old, cs_signer *key, const char *at)
{
	json_t *claims = json_pack("{s:s, s:s?, s:s, s:O, s:s, s:[], s:s}", "type", "credsign-rollover/v1", "old_kid",
				   old, "new_kid", cs_signer_kid(key), "new_jwk", cs_signer_jwk(key), "ceremony_id", id,
				   "approvals", "time", at);
	char *jws = NULL;
	assert_int_equal(cs_signer_jws(key, "credsign-rollover+jws", claims, &jws), CS_OK);
	const char *d1 = strchr(jws, '.'), *d2 = strchr(d1 + 1, '.');
	json_t *st = json_pack("{s:s%, s:[{s:s%, s:s}]}", "payload", d1 + 1, (size_t)(d2 - d1 - 1), "signatures",
			       "protected", jws, (size_t)(d1 - jws), "signature", d2 + 1);
	char *text = json_dumps(st, JSON_COMPACT);
	assert_non_null(text);
	json_decref(st);
	json_decref(claims);
	free(jws);
	return text;
}

/* An activate ceremony of key (recorded pending) run to its end: started,
 * approved with each officer certs[i]'s certificate and key recorded under
 * the name names[i] (what a credsign-admin given some configuration
 * records), the rollover statement signed by key, executed. Its id. */
static const char *activate_by(cs_signer *key, const char *const *certs, const char *const *names, size_t n)
{
	static char id[CS_CEREMONY_ID_CHARS + 1];
	uint8_t raw[CS_CEREMONY_ID_RAW] = {0x5e, (uint8_t)++ceremonies_made}, nraw[CS_CEREMONY_NONCE_RAW] = {0x17};
	char nonce[CS_CEREMONY_NONCE_CHARS + 1], created[32], expires[32], at[32], *canonical = NULL;
	nraw[1] = (uint8_t)ceremonies_made;
	cs_ceremony_id_from_raw(raw, id);
	assert_int_equal(cs_ceremony_nonce_from_raw(nraw, nonce), CS_OK);
	cs_audit_time_format(now_ms(), created);
	cs_audit_time_format(now_ms() + 3600 * 1000, expires);
	char *old = store_active();
	json_t *params = json_pack("{s:s?}", "old_kid", old);
	char *params_json = json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS);
	cs_ceremony_record c = {.id = id, .action = "activate", .subject = cs_signer_kid(key), .reason = "rotation",
				.params_json = params_json, .nonce = nonce, .node = "svc", .created_at = created,
				.expires_at = expires, .started_by = "local:test"};
	assert_int_equal(cs_ceremony_canonical(&c, &canonical), CS_OK);
	c.canonical = canonical;
	assert_int_equal(cs_ledger_ceremony_create(app.ledger, &c, NULL), CS_OK);
	for (size_t i = 0; i < n; i++) {
		char cert[800], keyf[800], fpr[72], why[CS_CEREMONY_WHY_MAX], *pem = NULL;
		snprintf(cert, sizeof(cert), "%s/officers/%s.pem", pki, certs[i]);
		snprintf(keyf, sizeof(keyf), "%s/officers/%s.key", pki, certs[i]);
		assert_int_equal(cs_officer_cert_read(cert, &pem, why), CS_OK);
		assert_int_equal(op_fingerprint(cert, fpr), 0);
		cs_officer_key k = {.key = keyf};
		cs_approval_sig sig;
		assert_int_equal(cs_approval_sign(&k, pem, (const uint8_t *)canonical, strlen(canonical), &sig, why), CS_OK);
		cs_audit_time_format(now_ms(), at);
		cs_approval_record a = {.ceremony_id = id, .officer = names[i], .fingerprint = fpr, .cert_pem = pem,
					.sig_alg = sig.sig_alg, .signature_b64 = sig.signature_b64, .approved_at = at,
					.approved_by = "local:test"};
		assert_int_equal(cs_ledger_ceremony_approve(app.ledger, &a, NULL), CS_OK);
		cs_approval_sig_free(&sig);
		free(pem);
	}
	cs_audit_time_format(now_ms(), at);
	char *rollover = rollover_of(id, old, key, at);
	cs_ceremony_exec x = {.ceremony_id = id, .action = "activate", .subject = cs_signer_kid(key),
			      .expected_active = old, .rollover_json = rollover, .at = at, .actor = "local:test",
			      .result_json = "{}"};
	assert_int_equal(cs_ledger_ceremony_execute(app.ledger, &x, NULL), CS_OK);
	free(rollover);
	free(canonical);
	free(params_json);
	json_decref(params);
	free(old);
	return id;
}

static const char *const officers_ab[] = {"officer-a", "officer-b"};
#define BY_TWO officers_ab, officers_ab, 2

/* The kid in force ("" none). */
static const char *kid_in_force(void)
{
	static char kid[44];
	cs_signer_slot_kid(app.signer, kid);
	return kid;
}

static void assert_last_switch(int count, const char *outcome, const char *object)
{
	action_count c = entries_of("key.switch");
	assert_int_equal(c.count, count);
	assert_string_equal(c.last_outcome, outcome);
	assert_string_equal(c.last_object, object);
}

/* The last key.switch entry is a failure for object with code. */
static void assert_switch_refused(int count, const char *object, const char *code)
{
	action_count c = entries_of("key.switch");
	assert_int_equal(c.count, count);
	assert_string_equal(c.last_outcome, "failure");
	assert_string_equal(c.last_object, object);
	assert_string_equal(c.last_code, code);
}

/* The label of the key in force, for the tests that verify its signatures. */
static const char *label_in_force = KEY_LABEL;

static void test_the_watch_follows_the_store(void **state)
{
	(void)state;
	int64_t now = now_ms();
	char q[2048];
	const char *a = cs_signer_kid(first_key);
	/* nothing changed: nothing happens */
	assert_int_equal(cs_key_watch_poll(app.keys, store, now), CS_OK);
	assert_string_equal(kid_in_force(), a);
	assert_int_equal(entries_of("key.switch").count, 0);
	/* A, the only key ever active, without a ceremony: bootstrapped, or
	 * activated before ceremonies existed ("system", or not recorded) */
	static const char *const by[] = {"'config:pkcs11.signing_key'", "'system'", "NULL", "'local:mallory'"};
	for (size_t i = 0; i < sizeof(by) / sizeof(by[0]); i++) {
		cs_key_warrant w;
		char why[CS_KEY_WHY_MAX];
		snprintf(q, sizeof(q), "UPDATE signing_keys SET activated_by = %s WHERE kid = '%s';", by[i], a);
		sql(q);
		assert_int_equal(cs_store_read_begin(store), CS_OK);
		cs_err r = cs_app_key_warrant(store, app.officers, app.officers_why, a, &w, why, sizeof(why));
		cs_store_read_end(store);
		assert_int_equal(r, i < 3 ? CS_OK : CS_E_CEREMONY_REFUSED);
		assert_true(i == 3 || w.bootstrap);
		assert_true(i < 3 || strstr(why, "made active without a ceremony (by local:mallory)") != NULL);
	}
	snprintf(q, sizeof(q), "UPDATE signing_keys SET activated_by = 'config:pkcs11.signing_key' WHERE kid = '%s';",
		 a);
	sql(q);
	/* B activated (A retired) by a ceremony of two officers: in force at the next poll */
	cs_signer *b = token_key(KEY_LABEL "-b", 0); /* recorded pending by the test before */
	const char *kb = cs_signer_kid(b);
	(void)activate_by(b, BY_TWO);
	assert_int_equal(cs_key_watch_poll(app.keys, store, now), CS_OK);
	assert_string_equal(kid_in_force(), kb);
	assert_last_switch(1, "success", kb);
	assert_int_equal(cs_key_watch_poll(app.keys, store, now), CS_OK);
	assert_int_equal(entries_of("key.switch").count, 1); /* once */
	/* a chain registered for B: in force with it; certificates carry x5c */
	EVP_PKEY *ca = EVP_EC_gen("P-256");
	char *chain = chain_for(KEY_LABEL "-b", ca);
	snprintf(q, sizeof(q), "UPDATE signing_keys SET x5c_json = '%s' WHERE kid = '%s';", chain, kb);
	sql(q);
	assert_int_equal(cs_key_watch_poll(app.keys, store, now), CS_OK);
	assert_last_switch(2, "success", kb);
	char sid[23];
	assert_int_equal(generate_as("ci", "payments", "production", sid), CS_OK);
	cs_caller ci = who("ci");
	cs_service_req rq;
	begin(&rq, &ci, "certify");
	char *jws = certify_in(&rq, sid, CS_OK);
	finish(&rq, CS_OK);
	json_t *h = header_of(jws), *want = json_loads(chain, 0, NULL);
	assert_true(json_equal(json_object_get(h, "x5c"), want));
	json_decref(h);
	json_decref(want);
	free(jws);
	/* a chain that does not certify B: fail closed, audited once */
	char *bad = cert_b64(ca, ca);
	snprintf(q, sizeof(q), "UPDATE signing_keys SET x5c_json = '[\"%s\"]' WHERE kid = '%s';", bad, kb);
	sql(q);
	assert_int_equal(cs_key_watch_poll(app.keys, store, now), CS_E_INVALID_ARG);
	assert_string_equal(kid_in_force(), "");
	assert_switch_refused(3, kb, "x5c_invalid");
	assert_int_not_equal(cs_key_watch_poll(app.keys, store, now), CS_OK);
	assert_int_equal(entries_of("key.switch").count, 3);
	sql("UPDATE signing_keys SET x5c_json = NULL WHERE status = 'active';");
	assert_int_equal(cs_key_watch_poll(app.keys, store, now), CS_OK);
	assert_string_equal(kid_in_force(), kb);
	assert_last_switch(4, "success", kb);
	/* the store's uri of a key activated by a ceremony names another key's
	 * token object: fail closed */
	cs_signer *d = token_key(KEY_LABEL "-d", 1);
	snprintf(q, sizeof(q), "UPDATE signing_keys SET uri = '%s' WHERE kid = '%s';", cfg->pkcs11.signing_key,
		 cs_signer_kid(d));
	sql(q);
	(void)activate_by(d, BY_TWO);
	assert_int_equal(cs_key_watch_poll(app.keys, store, now), CS_E_CONFLICT);
	assert_string_equal(kid_in_force(), "");
	assert_switch_refused(5, cs_signer_kid(d), "key_mismatch");
	/* no active key at all (D compromised): the slot stays empty, audited once */
	snprintf(q, sizeof(q), "UPDATE signing_keys SET status = 'compromised', compromised_at = " NOW_FMT
			       " WHERE kid = '%s';", cs_signer_kid(d));
	sql(q);
	assert_int_equal(cs_key_watch_poll(app.keys, store, now), CS_E_NO_ACTIVE_KEY);
	assert_switch_refused(6, "none", "no_active_key");
	assert_int_equal(cs_key_watch_poll(app.keys, store, now), CS_OK);
	assert_int_equal(entries_of("key.switch").count, 6);
	cs_readiness ready;
	cs_service_readiness(&app, store, &ready);
	assert_string_equal(ready.kid, "");
	/* another key activated by a ceremony (no previous key): in force again */
	cs_signer *c = token_key(KEY_LABEL "-c", 1);
	(void)activate_by(c, BY_TWO);
	assert_int_equal(cs_key_watch_poll(app.keys, store, now), CS_OK);
	assert_string_equal(kid_in_force(), cs_signer_kid(c));
	assert_last_switch(7, "success", cs_signer_kid(c));
	label_in_force = KEY_LABEL "-c";
	free(bad);
	free(chain);
	EVP_PKEY_free(ca);
	cs_signer_free(b);
	cs_signer_free(c);
	cs_signer_free(d);
}

/* A guard of the schema (a trigger or index) dropped, to edit the store as
 * an attacker with the file would; put back by guard_restore. */
static char *guard_drop(const char *name)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_open(cfg->store.path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT type, sql FROM sqlite_master WHERE name = ?", -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	char drop[200], *create = strdup((const char *)sqlite3_column_text(st, 1));
	snprintf(drop, sizeof(drop), "DROP %s %s;", (const char *)sqlite3_column_text(st, 0), name);
	sqlite3_finalize(st);
	sqlite3_close(db);
	sql(drop);
	return create;
}

static void guard_restore(char *create)
{
	sql(create);
	free(create);
}

/* Why the store's active key kid is refused (fails when it is not). */
static void assert_unwarranted(const char *kid, const char *says)
{
	cs_key_warrant w;
	char why[CS_KEY_WHY_MAX];
	assert_int_equal(cs_store_read_begin(store), CS_OK);
	cs_err r = cs_app_key_warrant(store, app.officers, app.officers_why, kid, &w, why, sizeof(why));
	cs_store_read_end(store);
	assert_int_equal(r, CS_E_CEREMONY_REFUSED);
	if (strstr(why, says) == NULL)
		fail_msg("'%s' does not say '%s'", why, says);
}

/* key (a new label) activated by a ceremony of officers a and b, in force at the next poll. */
static cs_signer *recovered_by(const char *label)
{
	cs_signer *k = token_key(label, 1);
	int n = entries_of("key.switch").count;
	(void)activate_by(k, BY_TWO);
	assert_int_equal(cs_key_watch_poll(app.keys, store, now_ms()), CS_OK);
	assert_string_equal(kid_in_force(), cs_signer_kid(k));
	assert_last_switch(n + 1, "success", cs_signer_kid(k));
	label_in_force = label;
	return k;
}

/* Activations the daemon does not verify: each fails closed (the slot
 * empty, certification 503), audited once with the kid and why. */
static void test_the_watch_verifies_activations(void **state)
{
	(void)state;
	char q[2048], sid[23];
	int64_t now = now_ms();
	assert_int_equal(cs_key_watch_poll(app.keys, store, now), CS_OK); /* the JWKS test's chain: in force */
	int n = entries_of("key.switch").count;
	/* a pending key made active by an UPDATE naming a made-up ceremony */
	cs_signer *f = token_key(KEY_LABEL "-f", 1);
	const char *kf = cs_signer_kid(f);
	snprintf(q, sizeof(q),
		 "BEGIN; UPDATE signing_keys SET status = 'retired', retired_at = " NOW_FMT ", retired_ceremony = "
		 "'cer_aaaaaaaaaaaaaaaaaaaaaaaaaa' WHERE status = 'active'; UPDATE signing_keys SET status = 'active', "
		 "activated_at = " NOW_FMT ", activated_by = 'local:mallory', activated_ceremony = "
		 "'cer_aaaaaaaaaaaaaaaaaaaaaaaaaa' WHERE kid = '%s'; COMMIT;",
		 kf);
	sql(q);
	assert_int_equal(cs_key_watch_poll(app.keys, store, now), CS_E_CEREMONY_REFUSED);
	assert_string_equal(kid_in_force(), "");
	assert_switch_refused(++n, kf, "unverified_ceremony");
	assert_int_equal(cs_key_watch_poll(app.keys, store, now), CS_E_CEREMONY_REFUSED);
	assert_int_equal(entries_of("key.switch").count, n); /* once */
	assert_unwarranted(kf, "ceremony cer_aaaaaaaaaaaaaaaaaaaaaaaaaa is not in the store");
	char code[32], said[CS_KEY_WHY_MAX];
	cs_key_watch_why(app.keys, code, said, sizeof(said)); /* for /readyz */
	assert_string_equal(code, "unverified_ceremony");
	assert_non_null(strstr(said, "ceremony cer_aaaaaaaaaaaaaaaaaaaaaaaaaa is not in the store"));
	cs_readiness ready;
	cs_service_readiness(&app, store, &ready);
	assert_string_equal(ready.kid, "");
	assert_int_equal(generate_as("ci", "payments", "production", sid), CS_OK);
	cs_caller ci = who("ci");
	cs_service_req rq;
	begin(&rq, &ci, "certify");
	assert_null(certify_in(&rq, sid, CS_E_NO_ACTIVE_KEY));
	cs_service_record(&rq, "failure", rq.problem.code);
	cs_service_end(&rq);
	snprintf(q, sizeof(q), "UPDATE signing_keys SET activated_ceremony = 'cer_x\n' WHERE kid = '%s';", kf);
	sql(q);
	assert_unwarranted(kf, "its activating ceremony 'cer_x\n' is not a ceremony id");
	/* made active without any ceremony */
	snprintf(q, sizeof(q), "UPDATE signing_keys SET activated_ceremony = NULL WHERE kid = '%s';", kf);
	sql(q);
	assert_unwarranted(kf, "made active without a ceremony (by local:mallory)");
	cs_signer *g = recovered_by(KEY_LABEL "-g");
	cs_key_watch_why(app.keys, code, said, sizeof(said));
	assert_string_equal(code, "");
	assert_string_equal(said, "");
	/* a ceremony approved under a rogue configuration: officer-x (of the
	 * officer CA, not listed here) recorded as officer-b */
	cs_signer *h = token_key(KEY_LABEL "-h", 1);
	static const char *const rogue_certs[] = {"officer-a", "officer-x"};
	static const char *const rogue_names[] = {"officer-a", "officer-b"};
	const char *rogue = activate_by(h, rogue_certs, rogue_names, 2);
	n = entries_of("key.switch").count;
	assert_int_equal(cs_key_watch_poll(app.keys, store, now), CS_E_CEREMONY_REFUSED);
	assert_string_equal(kid_in_force(), "");
	assert_switch_refused(n + 1, cs_signer_kid(h), "unverified_ceremony");
	assert_unwarranted(cs_signer_kid(h), "1 valid approval(s) by distinct officers of this configuration, activate needs 2");
	assert_unwarranted(cs_signer_kid(h), "not listed in ceremony.officers");
	/* its recorded reason edited after the officers signed: not what they signed */
	char *once = guard_drop("ceremonies_once");
	snprintf(q, sizeof(q), "UPDATE ceremonies SET reason = 'edited' WHERE id = '%s';", rogue);
	sql(q);
	guard_restore(once);
	assert_unwarranted(cs_signer_kid(h), "its recorded fields are not the bytes the officers signed");
	cs_signer *i = recovered_by(KEY_LABEL "-i");
	/* one officer only */
	cs_signer *one = token_key(KEY_LABEL "-one", 1);
	(void)activate_by(one, officers_ab, officers_ab, 1);
	assert_int_equal(cs_key_watch_poll(app.keys, store, now), CS_E_CEREMONY_REFUSED);
	assert_unwarranted(cs_signer_kid(one), "activate needs 2");
	cs_signer_free(recovered_by(KEY_LABEL "-j"));
	/* claimed bootstrapped from the configuration after rotations */
	cs_signer *boot = token_key(KEY_LABEL "-boot", 1);
	snprintf(q, sizeof(q),
		 "BEGIN; UPDATE signing_keys SET status = 'retired', retired_at = " NOW_FMT " WHERE status = 'active'; "
		 "UPDATE signing_keys SET status = 'active', activated_at = " NOW_FMT ", activated_by = "
		 "'config:pkcs11.signing_key' WHERE kid = '%s'; COMMIT;",
		 cs_signer_kid(boot));
	sql(q);
	n = entries_of("key.switch").count;
	assert_int_equal(cs_key_watch_poll(app.keys, store, now), CS_E_CEREMONY_REFUSED);
	assert_switch_refused(n + 1, cs_signer_kid(boot), "unverified_ceremony");
	assert_unwarranted(cs_signer_kid(boot), "activated without a ceremony (by config:pkcs11.signing_key), as only a "
						"store's first and only active key is, but the store holds");
	cs_signer *k = recovered_by(KEY_LABEL "-k");
	/* forward only: I, retired, made active again with its own (older)
	 * ceremony, the rollovers since deleted: its warrant holds, but the
	 * daemon does not go back */
	char *lifecycle = guard_drop("signing_keys_lifecycle"), *kept = guard_drop("key_rollovers_no_delete");
	snprintf(q, sizeof(q),
		 "BEGIN; UPDATE signing_keys SET status = 'retired' WHERE kid = '%s'; UPDATE signing_keys SET status = "
		 "'active' WHERE kid = '%s'; DELETE FROM key_rollovers WHERE id > (SELECT id FROM key_rollovers WHERE "
		 "new_kid = '%s'); COMMIT;",
		 cs_signer_kid(k), cs_signer_kid(i), cs_signer_kid(i));
	sql(q);
	guard_restore(kept);
	guard_restore(lifecycle);
	n = entries_of("key.switch").count;
	assert_int_equal(cs_key_watch_poll(app.keys, store, now), CS_E_CEREMONY_REFUSED);
	assert_string_equal(kid_in_force(), "");
	/* I was in force earlier in this run: it departed, and does not come
	 * back (before even its ceremony's age is compared: stale_ceremony) */
	assert_switch_refused(n + 1, cs_signer_kid(i), "departed_key");
	assert_int_equal(cs_key_watch_poll(app.keys, store, now), CS_E_CEREMONY_REFUSED);
	assert_int_equal(entries_of("key.switch").count, n + 1);
	cs_key_warrant w;
	char why[CS_KEY_WHY_MAX];
	assert_int_equal(cs_store_read_begin(store), CS_OK);
	assert_int_equal(cs_app_key_warrant(store, app.officers, app.officers_why, cs_signer_kid(i), &w, why, sizeof(why)),
			 CS_OK);
	cs_store_read_end(store);
	assert_false(w.bootstrap);
	cs_signer *l = recovered_by(KEY_LABEL "-l");
	/* two keys active (the one-active index dropped): fail closed */
	cs_signer *m = token_key(KEY_LABEL "-m", 1);
	char *one_active = guard_drop("signing_keys_one_active");
	snprintf(q, sizeof(q), "UPDATE signing_keys SET status = 'active' WHERE kid = '%s';", cs_signer_kid(m));
	sql(q);
	n = entries_of("key.switch").count;
	assert_int_equal(cs_key_watch_poll(app.keys, store, now), CS_E_CONFLICT);
	assert_string_equal(kid_in_force(), "");
	assert_switch_refused(n + 1, "several", "several_active_keys");
	cs_key_watch_why(app.keys, code, said, sizeof(said));
	assert_string_equal(code, "several_active_keys");
	assert_int_equal(cs_key_watch_poll(app.keys, store, now), CS_OK); /* nothing new */
	assert_int_equal(entries_of("key.switch").count, n + 1);
	snprintf(q, sizeof(q), "UPDATE signing_keys SET status = 'pending' WHERE kid = '%s';", cs_signer_kid(m));
	sql(q);
	guard_restore(one_active);
	assert_int_equal(cs_key_watch_poll(app.keys, store, now), CS_OK);
	assert_string_equal(kid_in_force(), cs_signer_kid(l));
	assert_last_switch(n + 2, "success", cs_signer_kid(l));
	cs_signer_free(f);
	cs_signer_free(g);
	cs_signer_free(h);
	cs_signer_free(i);
	cs_signer_free(one);
	cs_signer_free(boot);
	cs_signer_free(k);
	cs_signer_free(l);
	cs_signer_free(m);
}

/* A warrant's forward rule on records. */
static void test_forward_only(void **state)
{
	(void)state;
	cs_key_warrant boot = {.bootstrap = 1},
		       old = {.ceremony = "cer_old", .created_at = "2030-01-01T00:00:00.000Z",
			      .executed_at = "2030-01-01T00:10:00.000Z"},
		       young = {.ceremony = "cer_new", .created_at = "2030-01-02T00:00:00.000Z",
				.executed_at = "2030-01-02T00:10:00.000Z"},
		       /* started later, but its execution recorded earlier */
		       odd = {.ceremony = "cer_odd", .created_at = "2030-01-03T00:00:00.000Z",
			      .executed_at = "2030-01-01T00:00:00.500Z"};
	char why[CS_KEY_WHY_MAX];
	assert_true(cs_app_key_warrant_newer(&boot, &old, why, sizeof(why)));
	assert_true(cs_app_key_warrant_newer(&old, &young, why, sizeof(why)));
	assert_true(cs_app_key_warrant_newer(&young, &young, why, sizeof(why)));
	assert_false(cs_app_key_warrant_newer(&young, &old, why, sizeof(why)));
	assert_non_null(strstr(why, "ceremony cer_old (started 2030-01-01T00:00:00.000Z"));
	assert_false(cs_app_key_warrant_newer(&old, &boot, why, sizeof(why)));
	assert_non_null(strstr(why, "bootstrapped"));
	assert_false(cs_app_key_warrant_newer(&young, &odd, why, sizeof(why)));
}

/* The list's claims, verified with label's key. */
static json_t *revocations_verified(const char *jws, const char *label)
{
	EVP_PKEY *pub = public_of(label);
	json_t *h = NULL, *p = NULL;
	assert_int_equal(cs_jws_es256_verify(jws, pub, &h, &p), CS_OK);
	assert_string_equal(json_string_value(json_object_get(h, "typ")), "credsign-revocations+jwt");
	assert_string_equal(json_string_value(json_object_get(h, "kid")), kid_in_force());
	json_decref(h);
	EVP_PKEY_free(pub);
	assert_string_equal(json_string_value(json_object_get(p, "iss")), "https://credsign.test");
	assert_int_equal(json_integer_value(json_object_get(p, "next_update")),
			 json_integer_value(json_object_get(p, "iat")) + CS_REVOCATIONS_VALID_S);
	return p;
}

/* The re-review's bypasses of the warrant (store edits by the PIN holder):
 * a ceremony recorded executed after it expired; a key an executed
 * compromise ceremony names, its row edited back; a key claimed to be the
 * store's first while certificates of another key exist. Each leaves the
 * store as it found it. */
static void test_what_took_a_key_out(void **state)
{
	(void)state;
	char q[2048], kid[44], cer[64] = "", executed[40] = "";
	snprintf(kid, sizeof(kid), "%s", kid_in_force());
	assert_true(kid[0] != '\0');
	{ /* its activating ceremony */
		sqlite3 *db = NULL;
		sqlite3_stmt *st = NULL;
		assert_int_equal(sqlite3_open(cfg->store.path, &db), SQLITE_OK);
		assert_int_equal(sqlite3_prepare_v2(db, "SELECT activated_ceremony FROM signing_keys WHERE kid = ?", -1,
						    &st, NULL),
				 SQLITE_OK);
		sqlite3_bind_text(st, 1, kid, -1, SQLITE_STATIC);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		snprintf(cer, sizeof(cer), "%s", (const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
		assert_int_equal(sqlite3_prepare_v2(db, "SELECT executed_at FROM ceremonies WHERE id = ?", -1, &st, NULL),
				 SQLITE_OK);
		sqlite3_bind_text(st, 1, cer, -1, SQLITE_STATIC);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		snprintf(executed, sizeof(executed), "%s", (const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
		sqlite3_close(db);
	}
	/* executed after its expiry (only by editing the store: credsign-admin refuses) */
	char *once = guard_drop("ceremonies_once");
	snprintf(q, sizeof(q), "UPDATE ceremonies SET executed_at = '2099-12-31T00:00:00.000Z' WHERE id = '%s';", cer);
	sql(q);
	assert_unwarranted(kid, "outside its lifetime");
	/* an approval in the same second as the execution but after it: to the
	 * millisecond it came too late (approval times are recorded, not
	 * signed: an edit the store allows once its guard is dropped) */
	char *frozen = guard_drop("ceremony_approvals_no_update");
	snprintf(q, sizeof(q),
		 "CREATE TABLE IF NOT EXISTS kept_times AS SELECT id, approved_at FROM ceremony_approvals WHERE "
		 "ceremony_id = '%s'; "
		 "UPDATE ceremony_approvals SET approved_at = strftime('%%Y-%%m-%%dT%%H:%%M:%%S', (SELECT created_at "
		 "FROM ceremonies WHERE id = '%s'), '+1 second') || '.600Z' WHERE id = (SELECT max(id) FROM "
		 "ceremony_approvals WHERE ceremony_id = '%s'); "
		 "UPDATE ceremonies SET executed_at = strftime('%%Y-%%m-%%dT%%H:%%M:%%S', created_at, '+1 second') || "
		 "'.100Z' WHERE id = '%s';",
		 cer, cer, cer, cer);
	sql(q);
	assert_unwarranted(kid, "approved at");
	snprintf(q, sizeof(q),
		 "UPDATE ceremony_approvals SET approved_at = (SELECT k.approved_at FROM kept_times k WHERE k.id = "
		 "ceremony_approvals.id) WHERE ceremony_id = '%s'; DROP TABLE kept_times;",
		 cer);
	sql(q);
	guard_restore(frozen);
	snprintf(q, sizeof(q), "UPDATE ceremonies SET executed_at = '%s' WHERE id = '%s';", executed, cer);
	sql(q);
	guard_restore(once);
	/* an executed compromise ceremony names it */
	snprintf(q, sizeof(q),
		 "INSERT INTO ceremonies (id, action, subject, reason, params_json, nonce, node, created_at, expires_at, "
		 "started_by, canonical, state, executed_at, executed_by, result_json) VALUES ('cer_test_compromise', "
		 "'compromise', '%s', 'r', '{}', 'n', 'node', '2026-01-01T00:00:00.000Z', '2099-01-01T00:00:00.000Z', "
		 "'local:x', '{}', 'executed', '2026-01-01T00:00:01.000Z', 'local:x', '{}');",
		 kid);
	sql(q);
	assert_unwarranted(kid, "ceremony compromise cer_test_compromise took key");
	char *kept = guard_drop("ceremonies_no_delete");
	sql("DELETE FROM ceremonies WHERE id = 'cer_test_compromise';");
	guard_restore(kept);
	/* the warrant holds again */
	cs_key_warrant w;
	char why[CS_KEY_WHY_MAX];
	assert_int_equal(cs_store_read_begin(store), CS_OK);
	cs_err r = cs_app_key_warrant(store, app.officers, app.officers_why, kid, &w, why, sizeof(why));
	cs_store_read_end(store);
	if (r != CS_OK)
		fail_msg("%s", why);
}

/* A key claimed to be a store's first (bootstrapped from the
 * configuration) while the store holds certificates of another key: the
 * re-review's two UPDATEs (the first key set back to pending, a key of the
 * attacker's made active "by config"). */
static void test_bootstrap_after_another_key(void **state)
{
	(void)state;
	char path[900], q[1024];
	snprintf(path, sizeof(path), "%s/bootstrap-claim.db", dir);
	cs_ledger *l = NULL;
	assert_int_equal(cs_ledger_open(path, 2000, &l), CS_OK);
	int changed = 0;
	cs_key_info a = {.kid = "kA", .uri = "pkcs11:token=t;object=a", .jwk_json = "{\"kid\":\"kA\"}"};
	cs_key_info p = {.kid = "kP", .uri = "pkcs11:token=t;object=p", .jwk_json = "{\"kid\":\"kP\"}",
			 .label = "p", .cka_id = "01", .created_by = "local:mallory"};
	assert_int_equal(cs_ledger_key_bootstrap(l, &a, CS_BOOTSTRAP_ACTOR, &changed, NULL), CS_OK);
	assert_int_equal(cs_ledger_key_add_pending(l, &p, NULL), CS_OK);
	cs_gen_session gs = {.id = "s-1", .created_ms = 1, .expires_ms = INT64_MAX / 2, .cert_sha256 = "ab",
			     .claims_json = "{\"a\":1}"};
	assert_int_equal(cs_ledger_session_put(l, &gs, NULL), CS_OK);
	assert_int_equal(cs_ledger_certify(l, "s-1", "c-1", "kA", "h.eyJhIjoxfQ.s", 1, NULL), CS_OK);
	cs_ledger_close(l);
	cs_store *s = NULL;
	cs_key_warrant w;
	char why[CS_KEY_WHY_MAX];
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	assert_int_equal(cs_app_key_warrant(s, app.officers, app.officers_why, "kA", &w, why, sizeof(why)), CS_OK);
	assert_true(w.bootstrap);
	cs_store_close(s);
	/* the two UPDATEs, no guard dropped */
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	snprintf(q, sizeof(q),
		 "BEGIN; UPDATE signing_keys SET status = 'pending', activated_at = NULL, activated_by = NULL WHERE "
		 "kid = 'kA'; UPDATE signing_keys SET status = 'active', activated_at = '2026-11-30T00:00:00.000Z', "
		 "activated_by = '%s' WHERE kid = 'kP'; COMMIT;",
		 CS_BOOTSTRAP_ACTOR);
	assert_int_equal(sqlite3_exec(db, q, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	assert_int_equal(cs_app_key_warrant(s, app.officers, app.officers_why, "kP", &w, why, sizeof(why)),
			 CS_E_CEREMONY_REFUSED);
	if (strstr(why, "the store holds certificates signed by another key") == NULL)
		fail_msg("%s", why);
	cs_store_close(s);
}

static char *revocations_now(int64_t now)
{
	char *jws = NULL;
	assert_int_equal(cs_key_watch_revocations(app.keys, now, &jws), CS_OK);
	return jws;
}

static void test_the_revocation_list(void **state)
{
	(void)state;
	const char *label = label_in_force; /* since the tests before */
	int64_t now = now_ms();
	cs_err polled = cs_key_watch_poll(app.keys, store, now);
	if (polled != CS_OK) {
		char code[32], why[CS_KEY_WHY_MAX];
		cs_key_watch_why(app.keys, code, why, sizeof(why));
		fprintf(stderr, "poll: %s: %s\n", code, why);
	}
	assert_int_equal(polled, CS_OK);
	char *jws = revocations_now(now);
	json_t *p = revocations_verified(jws, label);
	assert_int_equal(json_array_size(json_object_get(p, "revoked")), 0);
	json_int_t iat = json_integer_value(json_object_get(p, "iat"));
	json_decref(p);
	free(jws);
	/* a certificate revoked: listed at the next poll, and its status says so */
	char revoked[23], kept[23];
	certificate_of("ci", "payments", "production", revoked);
	certificate_of("ci", "payments", "production", kept);
	assert_int_equal(cs_ledger_cert_revoke(app.ledger, revoked, "key leaked", "2030-01-02T03:04:05.678Z",
					      "local:test", NULL),
			 CS_OK);
	assert_int_equal(cs_key_watch_poll(app.keys, store, now), CS_OK);
	cs_caller auditor = who("auditor");
	cs_service_req rq;
	begin(&rq, &auditor, "revocations.read");
	assert_int_equal(cs_service_revocations(&rq, &jws), CS_OK);
	finish(&rq, CS_OK);
	p = revocations_verified(jws, label);
	json_t *item = json_array_get(json_object_get(p, "revoked"), 0);
	assert_int_equal(json_array_size(json_object_get(p, "revoked")), 1);
	assert_string_equal(json_string_value(json_object_get(item, "id")), revoked);
	assert_string_equal(json_string_value(json_object_get(item, "reason")), "key leaked");
	assert_string_equal(json_string_value(json_object_get(item, "revoked_at")), "2030-01-02T03:04:05.678Z");
	json_decref(p);
	free(jws);
	char *cert = NULL, *claims = NULL;
	cs_cert_status st;
	begin(&rq, &auditor, "cert.read");
	assert_int_equal(cs_service_cert_get(&rq, revoked, &cert, &claims, &st), CS_OK);
	finish(&rq, CS_OK);
	assert_true(st.revoked);
	assert_string_equal(st.reason, "key leaked");
	assert_string_equal(st.revoked_at, "2030-01-02T03:04:05.678Z");
	cs_cert_status_free(&st);
	free(cert);
	free(claims);
	begin(&rq, &auditor, "cert.read");
	assert_int_equal(cs_service_cert_get(&rq, kept, &cert, &claims, &st), CS_OK);
	finish(&rq, CS_OK);
	assert_false(st.revoked);
	assert_null(st.reason);
	cs_cert_status_free(&st);
	free(cert);
	free(claims);
	/* signed again when it is half an hour old */
	int64_t later = now + (CS_REVOCATIONS_RESIGN_S + 1) * 1000LL;
	assert_int_equal(cs_key_watch_poll(app.keys, store, later), CS_OK);
	jws = revocations_now(later);
	p = revocations_verified(jws, label);
	assert_true(json_integer_value(json_object_get(p, "iat")) >= iat + CS_REVOCATIONS_RESIGN_S);
	json_int_t next_update = json_integer_value(json_object_get(p, "next_update"));
	json_decref(p);
	free(jws);
	/* no key to sign: the last list until its next_update, then none */
	cs_signer *c = cs_signer_acquire(app.signer);
	cs_signer_slot_swap(app.signer, NULL);
	int64_t much_later = later + (CS_REVOCATIONS_RESIGN_S + 1) * 1000LL;
	assert_int_equal(cs_key_watch_poll(app.keys, store, much_later), CS_OK); /* the store's key is unchanged */
	jws = revocations_now(much_later);
	free(jws);
	assert_int_equal(cs_key_watch_revocations(app.keys, next_update * 1000, &jws), CS_E_NOT_FOUND);
	assert_null(jws);
	cs_signer_slot_swap(app.signer, c);
	/* a rotation: the new key signs the list at once (the retired one
	 * vouched for it until then) */
	cs_signer *n = recovered_by(KEY_LABEL "-n");
	jws = revocations_now(now_ms());
	p = revocations_verified(jws, KEY_LABEL "-n");
	assert_int_equal(json_array_size(json_object_get(p, "revoked")), 1);
	json_decref(p);
	free(jws);
	/* the key in force compromised: nothing signs, and the list it signed
	 * is withdrawn at once, long before its next_update */
	char q[512];
	snprintf(q, sizeof(q), "UPDATE signing_keys SET status = 'compromised', compromised_at = " NOW_FMT
			       " WHERE kid = '%s';", cs_signer_kid(n));
	sql(q);
	assert_int_equal(cs_key_watch_poll(app.keys, store, now_ms()), CS_E_NO_ACTIVE_KEY);
	assert_int_equal(cs_key_watch_revocations(app.keys, now_ms(), &jws), CS_E_NOT_FOUND);
	assert_null(jws);
	begin(&rq, &auditor, "revocations.read");
	assert_int_equal(cs_service_revocations(&rq, &jws), CS_E_NOT_FOUND);
	assert_string_equal(rq.problem.code, "revocations_unavailable");
	cs_service_record(&rq, "failure", rq.problem.code);
	cs_service_end(&rq);
	cs_signer_free(n);
}

static json_t *jwks_key(json_t *keys, const char *kid)
{
	size_t i;
	json_t *k;
	json_array_foreach(keys, i, k) if (strcmp(json_string_value(json_object_get(k, "kid")), kid) == 0) return k;
	return NULL;
}

static void test_the_jwks_lists_keys_that_signed(void **state)
{
	(void)state;
	/* pending, and retired or compromised from pending by a ceremony: never signed */
	cs_signer *d = token_key(KEY_LABEL "-p", 1), *e = token_key(KEY_LABEL "-q", 1);
	cs_signer *f = token_key(KEY_LABEL "-r", 1);
	char q[4096];
	snprintf(q, sizeof(q),
		 "UPDATE signing_keys SET status = 'retired', retired_at = " NOW_FMT ", retired_ceremony = 'cer_r' "
		 "WHERE kid = '%s'; UPDATE signing_keys SET status = 'compromised', compromised_at = " NOW_FMT
		 ", compromised_ceremony = 'cer_c' WHERE kid = '%s';",
		 cs_signer_kid(e), cs_signer_kid(f));
	sql(q);
	EVP_PKEY *ca = EVP_EC_gen("P-256");
	char *chain = chain_for(KEY_LABEL "-c", ca);
	snprintf(q, sizeof(q), "UPDATE signing_keys SET x5c_json = '%s' WHERE status = 'active';", chain);
	sql(q);
	sql("UPDATE signing_keys SET destroyed_at = " NOW_SQL
	    " WHERE status = 'retired' AND activated_at IS NOT NULL;");
	cs_caller stranger = who("stranger");
	cs_service_req rq;
	json_t *keys = NULL;
	begin(&rq, &stranger, "jwks.read");
	assert_int_equal(cs_service_jwks(&rq, NULL, &keys), CS_OK);
	finish(&rq, CS_OK);
	/* A and B (retired, destroyed), D (compromised after its activation), C (active) */
	assert_int_equal(json_array_size(keys), 4);
	assert_null(jwks_key(keys, cs_signer_kid(d)));
	assert_null(jwks_key(keys, cs_signer_kid(e)));
	assert_null(jwks_key(keys, cs_signer_kid(f)));
	json_t *a = jwks_key(keys, cs_signer_kid(first_key));
	assert_string_equal(json_string_value(json_object_get(a, "status")), "retired");
	assert_non_null(json_object_get(a, "activated_at"));
	assert_non_null(json_object_get(a, "retired_at"));
	assert_non_null(json_object_get(a, "destroyed_at"));
	assert_null(json_object_get(a, "compromised_at"));
	assert_null(json_object_get(a, "x5c"));
	size_t i;
	json_t *k;
	int compromised = 0;
	json_array_foreach(keys, i, k) if (strcmp(json_string_value(json_object_get(k, "status")), "compromised") == 0)
	{
		compromised++;
		assert_non_null(json_object_get(k, "compromised_at"));
		assert_null(json_object_get(k, "destroyed_at"));
	}
	assert_int_equal(compromised, 1);
	json_t *c = jwks_key(keys, kid_in_force()), *want = json_loads(chain, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(c, "status")), "active");
	assert_true(json_equal(json_object_get(c, "x5c"), want));
	assert_string_equal(json_string_value(json_object_get(c, "kty")), "EC");
	json_decref(want);
	json_decref(keys);
	/* the rule itself, on records */
	cs_key_info legacy = {.status = "retired"}, from_pending = {.status = "retired", .retired_ceremony = "cer_x"},
		    active = {.status = "active"}, pending = {.status = "pending"},
		    compromised_pending = {.status = "compromised", .compromised_ceremony = "cer_y"},
		    compromised_retired = {.status = "compromised", .compromised_ceremony = "cer_y", .retired_at = "t"};
	assert_true(cs_service_key_published(&legacy));
	assert_false(cs_service_key_published(&from_pending));
	assert_true(cs_service_key_published(&active));
	assert_false(cs_service_key_published(&pending));
	assert_false(cs_service_key_published(&compromised_pending));
	assert_true(cs_service_key_published(&compromised_retired));
	free(chain);
	EVP_PKEY_free(ca);
	cs_signer_free(d);
	cs_signer_free(e);
	cs_signer_free(f);
}

static void test_rollover_statements(void **state)
{
	(void)state;
	cs_caller stranger = who("stranger");
	cs_service_req rq;
	json_t *doc = NULL;
	begin(&rq, &stranger, "rollover.read");
	assert_int_equal(cs_service_rollovers(&rq, NULL, &doc), CS_OK);
	finish(&rq, CS_OK);
	/* the ceremonies of the tests before stored theirs */
	size_t before = json_array_size(json_object_get(doc, "rollovers"));
	assert_true(before > 0);
	json_decref(doc);
	/* two statements as activate ceremonies store them: served oldest first, as stored */
	sql("INSERT INTO key_rollovers (ceremony_id, old_kid, new_kid, statement_json, created_at) VALUES "
	    "('cer_r1', NULL, 'k1', '{\"payload\":\"e30\",\"signatures\":[{\"protected\":\"p1\",\"signature\":\"s1\"}]}', "
	    "'2030-01-01T00:00:00.000Z'), "
	    "('cer_r2', 'k1', 'k2', '{\"payload\":\"e31\",\"signatures\":[]}', '2030-01-02T00:00:00.000Z');");
	begin(&rq, &stranger, "rollover.read");
	assert_int_equal(cs_service_rollovers(&rq, NULL, &doc), CS_OK);
	finish(&rq, CS_OK);
	json_t *list = json_object_get(doc, "rollovers");
	assert_int_equal(json_array_size(list), before + 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, before), "payload")), "e30");
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, before + 1), "payload")), "e31");
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(json_object_get(json_array_get(list, before), "signatures"), 0),
				    "signature")),
			    "s1");
	json_decref(doc);
	/* a statement that is not a JSON object is not served half: the answer fails */
	sql("INSERT INTO key_rollovers (ceremony_id, old_kid, new_kid, statement_json, created_at) VALUES "
	    "('cer_r3', 'k2', 'k3', 'not json', '2030-01-03T00:00:00.000Z');");
	begin(&rq, &stranger, "rollover.read");
	assert_int_equal(cs_service_rollovers(&rq, NULL, &doc), CS_E_STORE);
	assert_null(doc);
	cs_service_record(&rq, "failure", NULL);
	cs_service_end(&rq);
}

/* ---- the JWKS publishes only keys with a warrant ------------------------------------ */

/* A P-256 key made outside the token (whoever writes the store can make
 * one): its kid and JWK text (malloc'd). */
static EVP_PKEY *forged_key(char kid[44], char **jwk_text)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	json_t *jwk = NULL;
	assert_non_null(k);
	assert_int_equal(cs_jwk_thumbprint(k, kid), CS_OK);
	assert_int_equal(cs_jwk_from_pkey(k, &jwk), CS_OK);
	assert_non_null(*jwk_text = json_dumps(jwk, JSON_COMPACT | JSON_SORT_KEYS));
	json_decref(jwk);
	return k;
}

/* Insert into the store file at path a key row as whoever writes the
 * store would: retired, with a window covering any certificate. */
static void insert_key(const char *path, const char *kid, const char *jwk, const char *activated_by,
		       const char *ceremony_sql, const char *status)
{
	sqlite3 *db = NULL;
	char *err = NULL, *q = sqlite3_mprintf(
				  "INSERT INTO signing_keys (kid, uri, jwk_json, status, created_at, activated_at, "
				  "activated_by, activated_ceremony, retired_at) VALUES (%Q, 'pkcs11:object=forged', %Q, "
				  "%Q, '2020-01-01T00:00:00.000Z', '2020-01-01T00:00:00.000Z', %Q, %s, %s)",
				  kid, jwk, status, activated_by, ceremony_sql,
				  strcmp(status, "retired") == 0 ? "'2099-01-01T00:00:00.000Z'" : "NULL");
	assert_non_null(q);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	if (sqlite3_exec(db, q, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", q, err != NULL ? err : "?");
	sqlite3_free(q);
	sqlite3_close(db);
}

/* The same row as a key of signing profile profile. */
static void insert_profile_key(const char *path, const char *profile, const char *kid, const char *jwk,
			       const char *activated_by)
{
	sqlite3 *db = NULL;
	char *err = NULL, *q = sqlite3_mprintf(
				  "INSERT INTO signing_keys (kid, uri, jwk_json, status, created_at, activated_at, "
				  "activated_by, retired_at, profile) VALUES (%Q, 'pkcs11:object=forged', %Q, 'retired', "
				  "'2020-01-01T00:00:00.000Z', '2020-01-01T00:00:00.000Z', %Q, '2099-01-01T00:00:00.000Z', %Q)",
				  kid, jwk, activated_by, profile);
	assert_non_null(q);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	if (sqlite3_exec(db, q, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", q, err != NULL ? err : "?");
	sqlite3_free(q);
	sqlite3_close(db);
}

/* credsign_jwks_keys_withheld_total as /metrics renders it. */
static long withheld_count(void)
{
	char *text = NULL;
	cs_metrics_gauges g = {0};
	assert_int_equal(cs_metrics_render(&g, &text), CS_OK);
	const char *at = strstr(text, "\ncredsign_jwks_keys_withheld_total ");
	assert_non_null(at);
	long n = strtol(at + strlen("\ncredsign_jwks_keys_withheld_total "), NULL, 10);
	free(text);
	return n;
}

static json_t *jwks_of(const char *profile)
{
	cs_caller stranger = who("stranger");
	cs_service_req rq;
	json_t *keys = NULL;
	begin(&rq, &stranger, "jwks.read");
	assert_int_equal(cs_service_jwks(&rq, profile, &keys), CS_OK);
	finish(&rq, CS_OK);
	return keys;
}

static json_t *jwks_now(void)
{
	return jwks_of(NULL);
}

static void test_the_jwks_withholds_forged_keys(void **state)
{
	(void)state;
	/* the real keys so far: the bootstrapped first key (retired since),
	 * the ones ceremonies activated, retired and compromised ones */
	json_t *before = jwks_now();
	size_t real = json_array_size(before);
	assert_true(real >= 3);
	assert_non_null(jwks_key(before, cs_signer_kid(first_key)));
	/* forged rows, each as the nodes' database role (or whoever edits the
	 * store file) could insert them: */
	char kid[5][44], *jwk[5];
	EVP_PKEY *k[5];
	for (int i = 0; i < 5; i++)
		k[i] = forged_key(kid[i], &jwk[i]);
	/* a second "first key" of the store */
	insert_key(cfg->store.path, kid[0], jwk[0], "config:pkcs11.signing_key", "NULL", "retired");
	/* activated by a real ceremony (another key's) */
	insert_key(cfg->store.path, kid[1], jwk[1], "local:test",
		   "(SELECT id FROM ceremonies WHERE action = 'activate' AND state = 'executed' LIMIT 1)", "retired");
	/* activated by nobody that counts */
	insert_key(cfg->store.path, kid[2], jwk[2], "local:mallory", "NULL", "retired");
	/* a kid whose recorded JWK is another key */
	insert_key(cfg->store.path, kid[3], jwk[4], "config:pkcs11.signing_key", "NULL", "retired");
	/* a JWK that is not one: left out, not the whole answer failed */
	insert_key(cfg->store.path, kid[4], "not json", "config:pkcs11.signing_key", "NULL", "compromised");
	long withheld = withheld_count();
	json_t *after = jwks_now();
	for (int i = 0; i < 5; i++)
		if (jwks_key(after, kid[i]) != NULL)
			fail_msg("forged key %d (%s) is published", i, kid[i]);
	/* every real key stays, as it was */
	assert_int_equal(json_array_size(after), real);
	assert_true(json_equal(after, before));
	/* each counted (and logged) once, then decided from the cache */
	assert_int_equal(withheld_count(), withheld + 5);
	json_decref(after);
	after = jwks_now();
	assert_true(json_equal(after, before));
	assert_int_equal(withheld_count(), withheld + 5);
	/* the rule on its own: what it says of a forged key and of a real one */
	char why[CS_KEY_WHY_MAX];
	assert_int_equal(cs_store_read_begin(store), CS_OK);
	assert_int_equal(cs_app_key_publishable(store, app.officers, app.officers_why, NULL, kid[1],
						cs_signer_kid(first_key), why, sizeof(why)),
			 CS_E_CEREMONY_REFUSED);
	if (strstr(why, "not the activation of this key") == NULL)
		fail_msg("%s", why);
	assert_int_equal(cs_app_key_publishable(store, app.officers, app.officers_why, NULL, kid[0],
						cs_signer_kid(first_key), why, sizeof(why)),
			 CS_E_CEREMONY_REFUSED);
	assert_non_null(strstr(why, "names it as the key replaced"));
	assert_int_equal(cs_app_key_publishable(store, app.officers, app.officers_why, NULL, kid[3],
						cs_signer_kid(first_key), why, sizeof(why)),
			 CS_E_CEREMONY_REFUSED);
	assert_non_null(strstr(why, "thumbprint"));
	assert_int_equal(cs_app_key_publishable(store, app.officers, app.officers_why, NULL,
						cs_signer_kid(first_key), "", why, sizeof(why)),
			 CS_OK);
	/* raising the quorum withholds none of the keys activated under the
	 * one before (their certificates still verify); the key watch does
	 * judge by today's quorum */
	int quorum = cfg->ceremony.quorum;
	struct cs_officers *three = NULL;
	char three_why[CS_CEREMONY_WHY_MAX];
	cfg->ceremony.quorum = 3;
	cs_err loaded = cs_officers_load(cfg, &three, three_why);
	cfg->ceremony.quorum = quorum;
	assert_int_equal(loaded, CS_OK);
	size_t by_ceremony = 0;
	for (size_t i = 0; i < json_array_size(before); i++) {
		const char *real_kid = json_string_value(json_object_get(json_array_get(before, i), "kid"));
		assert_int_equal(cs_app_key_publishable(store, three, three_why, NULL, real_kid, "", why, sizeof(why)),
				 CS_OK);
		cs_key_warrant w;
		if (cs_app_key_warrant_in(store, three, three_why, NULL, real_kid, &w, why, sizeof(why)) ==
			    CS_E_CEREMONY_REFUSED &&
		    strstr(why, "activate needs 3") != NULL)
			by_ceremony++;
	}
	assert_true(by_ceremony > 0);
	cs_officers_free(three);
	cs_store_read_end(store);
	/* a signing profile recorded but not configured here (removed: its
	 * key still verifies what it signed): its one first key is published;
	 * a second row claiming to be it withholds both (nothing tells which) */
	char ghost_actor[CS_BOOTSTRAP_ACTOR_MAX];
	cs_app_bootstrap_actor("ghost", ghost_actor);
	char gkid[44], gkid2[44], *gjwk = NULL, *gjwk2 = NULL;
	EVP_PKEY *gk = forged_key(gkid, &gjwk), *gk2 = forged_key(gkid2, &gjwk2);
	insert_profile_key(cfg->store.path, "ghost", gkid, gjwk, ghost_actor);
	json_t *ghost = jwks_of("ghost");
	assert_non_null(jwks_key(ghost, gkid));
	json_decref(ghost);
	insert_profile_key(cfg->store.path, "ghost", gkid2, gjwk2, ghost_actor);
	ghost = jwks_of("ghost");
	assert_null(jwks_key(ghost, gkid));
	assert_null(jwks_key(ghost, gkid2));
	assert_int_equal(json_array_size(ghost), 0);
	json_decref(ghost);
	EVP_PKEY_free(gk);
	EVP_PKEY_free(gk2);
	free(gjwk);
	free(gjwk2);
	json_decref(after);
	json_decref(before);
	for (int i = 0; i < 5; i++) {
		EVP_PKEY_free(k[i]);
		free(jwk[i]);
	}
}

/* A store that never rotated: its first key is published when it is this
 * node's configured key of the scope; a key claiming a ceremony is not;
 * one more row claiming to be the first withholds neither the configured
 * key (no counting of claimants) nor publishes the claimant. */
static void test_the_first_key_of_a_store(void **state)
{
	(void)state;
	char path[700], kid[3][44], *jwk[3], why[CS_KEY_WHY_MAX];
	EVP_PKEY *k[3];
	snprintf(path, sizeof(path), "%s/first.db", dir);
	cs_store *s = NULL;
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	for (int i = 0; i < 3; i++)
		k[i] = forged_key(kid[i], &jwk[i]);
	insert_key(path, kid[0], jwk[0], "config:pkcs11.signing_key", "NULL", "active");
	assert_int_equal(cs_app_key_publishable(s, app.officers, app.officers_why, NULL, kid[0], kid[0], why, sizeof(why)),
			 CS_OK);
	/* the only key recorded so, but not this node's configured key: withheld */
	assert_int_equal(cs_app_key_publishable(s, app.officers, app.officers_why, NULL, kid[0], "", why, sizeof(why)),
			 CS_E_CEREMONY_REFUSED);
	assert_non_null(strstr(why, "not this node's configured key"));
	insert_key(path, kid[1], jwk[1], "local:test", "'cer_AAAAAAAAAAAAAAAAAAAAAA'", "retired");
	assert_int_equal(cs_app_key_publishable(s, app.officers, app.officers_why, NULL, kid[1], kid[1], why, sizeof(why)),
			 CS_E_CEREMONY_REFUSED);
	assert_int_equal(cs_app_key_publishable(s, app.officers, app.officers_why, NULL, kid[0], kid[0], why, sizeof(why)),
			 CS_OK);
	/* of a signing profile: not a certificate key */
	assert_int_equal(cs_app_key_publishable(s, app.officers, app.officers_why, "docs", kid[0], kid[0], why,
						sizeof(why)),
			 CS_E_CEREMONY_REFUSED);
	/* one forged claimant: the configured first key stays published */
	insert_key(path, kid[2], jwk[2], "system", "NULL", "retired");
	assert_int_equal(cs_app_key_publishable(s, app.officers, app.officers_why, NULL, kid[0], kid[0], why, sizeof(why)),
			 CS_OK);
	assert_int_equal(cs_app_key_publishable(s, app.officers, app.officers_why, NULL, kid[2], kid[0], why, sizeof(why)),
			 CS_E_CEREMONY_REFUSED);
	cs_store_close(s);
	/* the same through the JWKS's cache, the configured key read from the
	 * token (pkcs11.signing_key is first_key): a store whose first key is
	 * it, and a forged row claiming to be the first too */
	snprintf(path, sizeof(path), "%s/first-token.db", dir);
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	char *first_jwk = json_dumps(cs_signer_jwk(first_key), JSON_COMPACT | JSON_SORT_KEYS);
	assert_non_null(first_jwk);
	insert_key(path, cs_signer_kid(first_key), first_jwk, "config:pkcs11.signing_key", "NULL", "active");
	insert_key(path, kid[2], jwk[2], "config:pkcs11.signing_key", "NULL", "retired");
	free(first_jwk);
	cs_app mine = {.cfg = cfg, .token = app.token, .officers = app.officers};
	unsigned char row[32] = {1}, set[32] = {2};
	int published = 0;
	assert_int_equal(cs_store_read_begin(s), CS_OK);
	assert_int_equal(cs_app_key_published(&mine, s, NULL, cs_signer_kid(first_key), row, set, &published), CS_OK);
	assert_int_equal(published, 1);
	assert_int_equal(cs_app_key_published(&mine, s, NULL, kid[2], row, set, &published), CS_OK);
	assert_int_equal(published, 0);
	cs_store_read_end(s);
	cs_app_published_free(&mine);
	cs_store_close(s);
	for (int i = 0; i < 3; i++) {
		EVP_PKEY_free(k[i]);
		free(jwk[i]);
	}
}

/* ---- set-up ---------------------------------------------------------------------------- */

static int setup(void **state)
{
	(void)state;
	const char *base = getenv("CREDSIGN_TEST_TMP"), *token_dir = getenv("CREDSIGN_TEST_TOKEN_DIR"),
		   *module = getenv("CREDSIGN_TEST_MODULE");
	if (token_dir == NULL || module == NULL) {
		fprintf(stderr, "CREDSIGN_TEST_TOKEN_DIR and CREDSIGN_TEST_MODULE must be set\n");
		return -1;
	}
	if (base == NULL)
		base = "/tmp";
	/* the daemon's secure heap (confine.c): credentials are drawn into it */
	if (CRYPTO_secure_malloc_init(64 * 1024, 16) == 0)
		return -1;
	(void)mkdir(base, 0700);
	snprintf(dir, sizeof(dir), "%s/service-test-XXXXXX", base);
	if (mkdtemp(dir) == NULL)
		return -1;
	const char *files[] = {"cert.pem", "key.pem", "ca.pem"};
	for (size_t i = 0; i < 3; i++) {
		char path[800];
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		ts_write_file(path, "not read by these tests\n", 0600);
	}
	/* the officers whose ceremonies put keys in force */
	snprintf(pki, sizeof(pki), "%s/pki", dir);
	if (op_make(pki) != 0)
		return -1;
	snprintf(ceremony_conf, sizeof(ceremony_conf),
		 "ceremony = { officer_ca = \"%s/officer-ca.pem\"; officer_crl = \"%s/officer-crl.pem\"; quorum = 2;\n"
		 "  officers = ( { name = \"officer-a\"; certificate = \"%s/officers/officer-a.pem\"; },\n"
		 "    { name = \"officer-b\"; certificate = \"%s/officers/officer-b.pem\"; },\n"
		 "    { name = \"officer-c\"; certificate = \"%s/officers/officer-c.pem\"; } ); };\n",
		 pki, pki, pki, pki, pki);
	snprintf(conf_path, sizeof(conf_path), "%s/credsignd.conf", dir);
	write_conf(base_grants, NULL);
	cs_config_diag diag = {0};
	if (cs_config_load(conf_path, &cfg, &diag) != CS_OK) {
		for (size_t i = 0; i < diag.count; i++)
			fprintf(stderr, "%s\n", diag.messages[i]);
		cs_config_diag_free(&diag);
		return -1;
	}
	app.cfg = cfg;
	if (cs_officers_load(cfg, &app.officers, app.officers_why) != CS_OK) {
		fprintf(stderr, "officers: %s\n", app.officers_why);
		return -1;
	}
	/* the token and its signing key (made once per token) */
	char pin[600];
	snprintf(pin, sizeof(pin), "%s/user.pin", token_dir);
	cs_token_params tp = {.module = module, .token_uri = "pkcs11:token=cstest", .pin_file = pin, .pool_size = 4,
			      .read_write = 1};
	if (cs_token_open(&tp, &app.token) != CS_OK)
		return -1;
	cs_key_ref q = {.label = KEY_LABEL}, found;
	cs_err r = cs_token_find_key(app.token, &q, &found);
	if (r == CS_E_KEY_NOT_FOUND)
		r = cs_token_generate_p256(app.token, KEY_LABEL, &found);
	if (r != CS_OK || (app.libctx = OSSL_LIB_CTX_new()) == NULL ||
	    cs_provider_load(app.libctx, app.token, &prov) != CS_OK ||
	    (deflt = OSSL_PROVIDER_load(app.libctx, "default")) == NULL ||
	    !EVP_set_default_properties(app.libctx, "?provider!=credsign-pkcs11") ||
	    cs_provider_use_token_rng(app.libctx) != CS_OK || cs_app_describe_token(&app) != CS_OK ||
	    cs_signer_open(app.libctx, cfg->pkcs11.signing_key, &first_key) != CS_OK ||
	    cs_signer_slot_new(cs_signer_ref(first_key), &app.signer) != CS_OK)
		return -1;
	if (cs_presets_load(cfg->server.presets_file, cfg->file, &app.presets, &diag) != CS_OK ||
	    cs_wordlist_load(cfg->server.wordlist_file, &app.wordlist) != CS_OK)
		return -1;
	/* the store: the ledger writes, a connection of our own reads */
	if (cs_ledger_open(cfg->store.path, cfg->audit.write_timeout_ms, &app.ledger) != CS_OK ||
	    cs_store_open(cfg->store.path, &store) != CS_OK || cs_audit_open(cfg, app.signer, &app.audit) != CS_OK)
		return -1;
	/* the store's first key, as credsignd's start-up records it */
	int changed = 0;
	char *jwk = json_dumps(cs_signer_jwk(first_key), JSON_COMPACT | JSON_SORT_KEYS);
	cs_key_info key = {.kid = cs_signer_kid(first_key), .uri = cfg->pkcs11.signing_key, .jwk_json = jwk,
			   .label = KEY_LABEL};
	r = jwk != NULL ? cs_ledger_key_bootstrap(app.ledger, &key, "config:pkcs11.signing_key", &changed, NULL)
			: CS_E_NOMEM;
	free(jwk);
	cs_active_key in_force = {.kid = (char *)cs_signer_kid(first_key), .uri = cfg->pkcs11.signing_key};
	cs_key_warrant bootstrapped = {.bootstrap = 1};
	if (r != CS_OK || !changed || cs_key_watch_new(&app, &in_force, &bootstrapped, &app.keys) != CS_OK)
		return -1;
	return cs_service_rules_start(&app, cfg) == CS_OK ? 0 : -1;
}

/* ---- reads when an allocation fails ------------------------------------------------ */

typedef struct {
	const char *name;
	const char *caller;
	cs_err (*call)(cs_service_req *rq, const void *arg, json_t **doc, char **text);
	const void *arg;
} read_case;

static cs_err read_jwks(cs_service_req *rq, const void *arg, json_t **doc, char **text)
{
	(void)text;
	return cs_service_jwks_doc(rq, arg, doc);
}

static cs_err read_rollovers(cs_service_req *rq, const void *arg, json_t **doc, char **text)
{
	(void)text;
	return cs_service_rollovers(rq, arg, doc);
}

static cs_err read_presets(cs_service_req *rq, const void *arg, json_t **doc, char **text)
{
	(void)arg;
	(void)text;
	return cs_service_presets(rq, doc);
}

static cs_err read_policy(cs_service_req *rq, const void *arg, json_t **doc, char **text)
{
	(void)text;
	return cs_service_policy(rq, arg, doc);
}

/* Set by a read that disarms itself (its own allocations after the
 * service's must not fail): whether an allocation failed; -1: none did so. */
static int read_fired = -1;

/* The certificate, its claims and its status in one document. */
static cs_err read_certificate(cs_service_req *rq, const void *arg, json_t **doc, char **text)
{
	char *claims = NULL;
	cs_cert_status st;
	memset(&st, 0xa5, sizeof(st));
	cs_err r = cs_service_cert_get(rq, arg, text, &claims, &st);
	read_fired = af_disarm();
	if (r == CS_OK) {
		*doc = json_pack("{s:s, s:b, s:s?}", "claims", claims, "revoked", st.revoked, "key_status",
				 st.key_status);
	} else {
		assert_null(*text);
		assert_null(claims);
		memset(&st, 0, sizeof(st)); /* what a failed read left is not ours to free */
	}
	free(claims);
	cs_cert_status_free(&st);
	return r;
}

/* One read with the 1st, 2nd, ... allocation failing, until a run in
 * which none failed: a run that failed one answers an error (out of
 * memory, internal or store: a 5xx, never a partial document) and returns
 * nothing, or answers exactly what the read answers without failure; the
 * run without failure answers that too (nothing cached on the way was
 * left wrong). */
static void sweep_read(const read_case *rc)
{
	cs_caller c = who(rc->caller);
	cs_service_req rq;
	json_t *want = NULL, *doc = NULL;
	char *want_text = NULL, *text = NULL;
	begin(&rq, &c, rc->name);
	cs_err want_r = rc->call(&rq, rc->arg, &want, &want_text);
	cs_service_end(&rq);
	if (want_r != CS_OK)
		fail_msg("%s: %s (%s)", rc->name, cs_strerror(want_r), rq.problem.message);
	unsigned long failed = 0;
	for (unsigned long n = 1;; n++) {
		if (n > 20000)
			fail_msg("%s: still allocating after 20000 runs", rc->name);
		doc = NULL;
		text = NULL;
		begin(&rq, &c, rc->name);
		af_arm(n, 0);
		cs_err r = rc->call(&rq, rc->arg, &doc, &text);
		int fired = af_disarm();
		if (read_fired >= 0) {
			fired = read_fired;
			read_fired = -1;
		}
		if (fired && r != CS_OK) {
			if (r != CS_E_NOMEM && r != CS_E_INTERNAL && r != CS_E_STORE)
				fail_msg("%s, allocation %lu failing: %s", rc->name, n, cs_strerror(r));
			assert_null(doc);
			assert_null(text);
			assert_int_not_equal(rq.problem.message[0], '\0');
			failed++;
		} else {
			if (r != CS_OK)
				fail_msg("%s, allocation %lu: %s without a failure", rc->name, n, cs_strerror(r));
			if ((want != NULL && !json_equal(doc, want)) ||
			    (want_text != NULL && (text == NULL || strcmp(text, want_text) != 0))) {
				char *got = doc != NULL ? json_dumps(doc, JSON_SORT_KEYS) : NULL;
				fail_msg("%s, allocation %lu failing: a different answer: %s", rc->name, n,
					 got != NULL ? got : text != NULL ? text : "(none)");
			}
		}
		json_decref(doc);
		free(text);
		cs_service_end(&rq);
		if (!fired)
			break;
	}
	assert_true(failed > 0);
	json_decref(want);
	free(want_text);
}

/* Public and granted reads under allocation failure (alloc_fail.h): the
 * JWKS (whose published-key cache must not keep what a failed read left),
 * rollover statements, presets, the policy, a certificate with its status. */
/* Certify with the Nth allocation failing, for N = 1, 2, ... until one
 * runs without a failure: an error with nothing returned, or a certificate
 * that carries every claim (jansson's *_set_new and json_deep_copy can
 * lose a member when an allocation fails: a certificate must never be
 * signed without one). A session refused so certifies afterwards, or was
 * committed before the failure. */
static void test_certify_under_allocation_failure(void **state)
{
	(void)state;
	static const char *const members[] = {
		"iss",	    "jti",	   "iat",	  "certified_at", "node",	   "preset",
		"preset_version", "preset_sha256", "standards",	  "strength_bits", "credential", "entropy_source",
		"subject",  "project",	   "environment", "generation_session_id", "generated_at"};
	static const char *const credential_members[] = {"type",	"length",  "entropy_bits", "entropy_method",
							 "commitment",	"length_unit", "charset", "classes",
							 "max_identical_run", "max_class_run", "prefix"};
	unsigned long refused = 0, n = 1;
	for (; n < 4000; n++) {
		char sid[23];
		assert_int_equal(generate_as("ci", "payments", "production", sid), CS_OK);
		cs_caller c = who("ci");
		cs_service_req rq;
		cs_certify_result res;
		memset(&res, 0, sizeof(res));
		begin(&rq, &c, "certify");
		af_arm(n, 0);
		cs_err r = cs_service_certify(&rq, sid, &res);
		bool fired = af_disarm();
		finish(&rq, r);
		if (r != CS_OK) {
			assert_true(fired);
			assert_null(res.jws);
			refused++;
			begin(&rq, &c, "certify");
			cs_err again = cs_service_certify(&rq, sid, &res);
			if (again != CS_E_SESSION_USED && again != CS_OK)
				fail_msg("run %lu (certify refused: %s): certifying again gives %s", n, cs_strerror(r),
					 cs_strerror(again));
			finish(&rq, again);
			cs_certify_result_free(&res);
			continue;
		}
		json_t *header = NULL, *claims = NULL;
		assert_int_equal(cs_jws_peek(res.jws, &header, &claims), CS_OK);
		for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++)
			if (json_object_get(claims, members[i]) == NULL)
				fail_msg("run %lu: a certificate without its %s claim", n, members[i]);
		json_t *cred = json_object_get(claims, "credential");
		for (size_t i = 0; i < sizeof(credential_members) / sizeof(credential_members[0]); i++)
			if (json_object_get(cred, credential_members[i]) == NULL)
				fail_msg("run %lu: a credential claim without %s", n, credential_members[i]);
		assert_true(json_array_size(json_object_get(claims, "standards")) > 0);
		json_decref(header);
		json_decref(claims);
		cs_certify_result_free(&res);
		if (!fired)
			break;
	}
	assert_true(n < 4000);
	assert_true(refused > 20);
}

static void test_reads_under_allocation_failure(void **state)
{
	(void)state;
	/* a revoked certificate (test_the_revocation_list): its status has the most to read */
	char cert_id[23] = "";
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_open(cfg->store.path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT cert_id FROM cert_revocations LIMIT 1", -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	snprintf(cert_id, sizeof(cert_id), "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
	cs_policy_input in = {.presets = {preset("pci-dss-4"), preset("soc2")}, .count = 2};
	const read_case cases[] = {
		{"jwks.read", "stranger", read_jwks, NULL},
		{"rollovers.read", "stranger", read_rollovers, NULL},
		{"presets.read", "ci", read_presets, NULL},
		{"policy.read", "auditor", read_policy, &in},
		{"cert.read", "auditor", read_certificate, cert_id},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		sweep_read(&cases[i]);
}

/* ---- the control channel's receiver (privsep.h) ----------------------------------- */

/* Whether the read end of a pipe sees its end within 5 s: every copy of
 * the write end was closed. */
static int pipe_ended(int rd)
{
	struct pollfd p = {.fd = rd, .events = POLLIN};
	char c;
	return poll(&p, 1, 5000) == 1 && read(rd, &c, 1) == 0;
}

/* Send one control message, with fd (when >= 0) as SCM_RIGHTS. */
static void send_control(int sock, const void *msg, size_t len, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof(u));
	struct iovec iov = {.iov_base = (void *)msg, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (fd >= 0) {
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	assert_int_equal(sendmsg(sock, &mh, MSG_NOSIGNAL), (ssize_t)len);
}

/* Wait (5 s at most) until keyproc.restart has want entries. */
static action_count restarts_reach(int want)
{
	action_count c = entries_of("keyproc.restart");
	for (int i = 0; i < 500 && c.count < want; i++) {
		usleep(10000);
		c = entries_of("keyproc.restart");
	}
	return c;
}

/* A malformed control message (an unknown kind, a reason with a control
 * byte, no descriptor, an empty message) is ignored: its descriptors are
 * closed and nothing is audited; a well-formed one is audited as
 * keyproc.restart with its reason even when its channels cannot be used
 * (here: the token is not a remote one), and its descriptors are closed.
 * The supervisor gone (the peer closed), the receiver ends; stopping it
 * then still joins it. */
static void test_the_control_channel(void **state)
{
	(void)state;
	int pair[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
	cs_privsep_receiver *rx = NULL;
	assert_int_equal(cs_privsep_receiver_start(pair[1], app.token, &app, &rx), CS_OK);
	assert_non_null(rx);
	int before = entries_of("keyproc.restart").count;

	unsigned char ok[4 + CS_PRIVSEP_REASON_MAX] = {0};
	size_t oklen = cs_privsep_control_encode("key process pid 42 killed by signal SIGKILL", ok, sizeof(ok));
	assert_true(oklen > 4);
	unsigned char kind[64], ctl[64];
	memcpy(kind, ok, oklen < sizeof(kind) ? oklen : sizeof(kind));
	kind[3] = 2; /* an unknown kind */
	memcpy(ctl, ok, sizeof(ctl));
	ctl[10] = '\n';
	const struct {
		const unsigned char *msg;
		size_t len;
		int with_fd;
	} bad[] = {{kind, 20, 1}, {ctl, 20, 1}, {ok, 3, 1}, {ok, oklen, 0}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int p[2];
		assert_int_equal(pipe(p), 0);
		send_control(pair[0], bad[i].msg, bad[i].len, bad[i].with_fd ? p[1] : -1);
		close(p[1]);
		if (bad[i].with_fd && !pipe_ended(p[0]))
			fail_msg("message %zu: its descriptor was kept", i);
		close(p[0]);
	}
	/* the malformed ones are behind us: a well-formed one is handled after them */
	int p[2];
	assert_int_equal(pipe(p), 0);
	send_control(pair[0], ok, oklen, p[1]);
	close(p[1]);
	assert_true(pipe_ended(p[0])); /* the token refused them and closed them */
	close(p[0]);
	action_count c = restarts_reach(before + 1);
	assert_int_equal(c.count, before + 1);
	assert_string_equal(c.last_outcome, "failure");
	assert_string_equal(c.last_object, "key process");
	assert_string_equal(c.last_code, "key process pid 42 killed by signal SIGKILL");

	/* the supervisor gone: the receiver returns; stop joins it */
	close(pair[0]);
	usleep(50000);
	cs_privsep_receiver_stop(rx);
	assert_int_equal(entries_of("keyproc.restart").count, before + 1);

	/* stopped while waiting */
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
	assert_int_equal(cs_privsep_receiver_start(pair[1], app.token, &app, &rx), CS_OK);
	cs_privsep_receiver_stop(rx);
	char byte;
	assert_int_equal(read(pair[0], &byte, 1), 0); /* its end was closed */
	close(pair[0]);
	cs_privsep_receiver_stop(NULL);
}

/* ---- the audit log cannot be written ----------------------------------------------- */

/* The rows of a table of the store. */
static int64_t rows_of(const char *table)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char q[128];
	snprintf(q, sizeof(q), "SELECT count(*) FROM %s", table);
	assert_int_equal(sqlite3_open(cfg->store.path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int64_t n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* cs_log's lines go to a file of their own until log_capture_end, which
 * returns them (malloc'd) and sends the log back to stderr. */
static FILE *log_capture_start(void)
{
	FILE *f = tmpfile();
	assert_non_null(f);
	cs_log_configure(CS_LOG_INFO, CS_LOG_LOGFMT, fileno(f));
	return f;
}

static char *log_capture_end(FILE *f)
{
	cs_log_configure(CS_LOG_INFO, CS_LOG_LOGFMT, STDERR_FILENO);
	long n = ftell(f);
	assert_true(n >= 0);
	char *text = calloc(1, (size_t)n + 1);
	assert_non_null(text);
	rewind(f);
	assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return text;
}

static void assert_logged(const char *log, const char *says)
{
	if (strstr(log, says) == NULL)
		fail_msg("the log does not say '%s':\n%s", says, log);
}

/* Every insert into the audit log fails (a trigger refuses it, as a full
 * or failing disk would): a read is answered by the service but its entry
 * is not durable, so audit_failed is set and the front end may send
 * nothing but 503 audit_unavailable; a refusal is the same; generate and
 * certify write their entry in their own transaction, so nothing of them
 * is stored or returned (no credential, no certificate: the store failure,
 * not retried for a failure entry, logged); a lifecycle event (a reload of
 * the rules) goes on, its lost entry logged. Once the log writes again,
 * the session the failed certify left is certified, once. */
static void test_the_audit_log_cannot_be_written(void **state)
{
	(void)state;
	char cert_id[23], sid[23];
	certificate_of("ci", "payments", "production", cert_id);
	assert_int_equal(generate_as("ci", "payments", "production", sid), CS_OK);
	int64_t entries = rows_of("audit_log"), sessions = rows_of("generation_sessions"),
		certs = rows_of("certificates");
	sql("CREATE TRIGGER test_audit_down BEFORE INSERT ON audit_log"
	    "  BEGIN SELECT RAISE(ABORT, 'the disk is full'); END;");
	FILE *log = log_capture_start();

	/* a read */
	cs_caller auditor = who("auditor"), web = who("web"), ci = who("ci");
	cs_service_req rq;
	char *jws = NULL, *claims = NULL;
	begin(&rq, &auditor, "cert.read");
	assert_int_equal(cs_service_cert_get(&rq, cert_id, &jws, &claims, NULL), CS_OK);
	free(jws);
	free(claims);
	assert_int_not_equal(cs_service_record(&rq, "success", NULL), CS_OK);
	assert_true(rq.audit_failed);
	/* asked again (a front end's last check): still not durable */
	assert_int_not_equal(cs_service_record(&rq, "success", NULL), CS_OK);
	cs_service_end(&rq);

	/* a refusal */
	cs_generate_result res;
	cs_plan plan;
	cs_generate_request g = generate_request("payments", "production", &plan);
	begin(&rq, &web, "generate");
	assert_int_equal(cs_service_generate(&rq, &g, &res), CS_E_FORBIDDEN);
	assert_true(rq.audited);
	assert_true(rq.audit_failed);
	assert_null(res.credential);
	assert_int_not_equal(cs_service_record(&rq, "refused", "forbidden"), CS_OK);
	cs_service_end(&rq);

	/* generate: the session and its entry commit together or not at all */
	g = generate_request("payments", "production", &plan);
	begin(&rq, &ci, "generate");
	cs_err r = cs_service_generate(&rq, &g, &res);
	assert_int_equal(cs_err_category_of(r), CS_CAT_STORE);
	assert_null(res.credential);
	assert_string_equal(res.session_id, "");
	assert_true(rq.store_failed);
	assert_int_equal(cs_service_record(&rq, "failure", NULL), CS_OK); /* not attempted again: logged */
	cs_service_end(&rq);

	/* certify: no certificate returned or stored */
	cs_certify_result cres;
	begin(&rq, &ci, "certify");
	r = cs_service_certify(&rq, sid, &cres);
	assert_int_equal(cs_err_category_of(r), CS_CAT_STORE);
	assert_null(cres.jws);
	assert_string_equal(cres.cert_id, "");
	assert_true(rq.store_failed);
	cs_service_end(&rq);

	/* a lifecycle event: the reload goes on, its entry is lost */
	assert_int_equal(cs_service_rules_reload(&app), CS_OK);

	char *text = log_capture_end(log);
	assert_logged(text, "audit entry not written (action=cert.read actor=spiffe://t/auditor)");
	assert_logged(text, "audit entry not written (action=generate actor=spiffe://t/web)");
	assert_logged(text, "(generate) failed and could not be audited: the store is unavailable");
	assert_logged(text, "access.reload not audited");
	free(text);
	assert_int_equal(rows_of("audit_log"), entries);
	assert_int_equal(rows_of("generation_sessions"), sessions);
	assert_int_equal(rows_of("certificates"), certs);
	sql("DROP TRIGGER test_audit_down");

	/* the log writes again: the session is still certifiable, once */
	begin(&rq, &ci, "certify");
	assert_int_equal(cs_service_certify(&rq, sid, &cres), CS_OK);
	assert_non_null(cres.jws);
	finish(&rq, CS_OK);
	cs_certify_result_free(&cres);
	begin(&rq, &ci, "certify");
	assert_int_not_equal(cs_service_certify(&rq, sid, &cres), CS_OK);
	assert_null(cres.jws);
	finish(&rq, CS_E_CONFLICT);
	assert_int_equal(rows_of("certificates"), certs + 1);
	assert_int_equal(rows_of("audit_log"), entries + 2);
}

/* ---- a reload that would change the signing group -------------------------------- */

#define PROFILE_KEY "key = \"pkcs11:token=cstest;object=release-1\"; "
#define RELEASE(more)                                                                                 \
	"{ name = \"release\"; " PROFILE_KEY "formats = [\"jws\", \"dsse\"]; typ = \"release+jwt\";\n" \
	"  payload_types = [\"application/vnd.in-toto+json\"]; aud = [\"a\"]; " more " }"
#define SIGNING_GROUP(settings, profiles) "signing = { " settings " profiles = ( " profiles " ); };\n"

/* Reload with the file holding this signing group and grants: want, and
 * the log saying says (NULL: no warning of signing settings). */
static void reload_says(const char *signing, const char *grants, cs_err want, const char *says)
{
	write_conf(grants, signing);
	FILE *log = log_capture_start();
	cs_err r = cs_service_rules_reload(&app);
	char *text = log_capture_end(log);
	if (r != want)
		fail_msg("reload: %s, not %s:\n%s", cs_strerror(r), cs_strerror(want), text);
	if (says != NULL)
		assert_logged(text, says);
	else if (strstr(text, "signing settings differ") != NULL)
		fail_msg("an unchanged signing group is warned of:\n%s", text);
	free(text);
}

/* SIGHUP reloads the access rules alone: a file whose signing group
 * differs from the one read at start is warned of, naming the first
 * difference (the rules still swap); a grant naming a signing profile not
 * in force refuses the reload (the rules in force stay), audited as
 * access.reload failure config_invalid. */
static void test_reload_warns_of_signing_changes(void **state)
{
	(void)state;
	/* in force: a configuration with a signing group */
	const char *start = SIGNING_GROUP("", RELEASE(""));
	write_conf(base_grants, start);
	cs_config *in_force = NULL;
	cs_config_diag diag = {0};
	if (cs_config_load(conf_path, &in_force, &diag) != CS_OK)
		fail_msg("%s", diag.count > 0 ? diag.messages[0] : "?");
	const cs_config *was = app.cfg;
	app.cfg = in_force;
	reload_says(start, base_grants, CS_OK, NULL);
	static const struct {
		const char *signing, *says;
	} cases[] = {
		{SIGNING_GROUP("batch_max = 7;", RELEASE("")), "(signing.batch_max)"},
		{SIGNING_GROUP("max_request_bytes = 2000000;", RELEASE("")), "(signing.max_request_bytes)"},
		{SIGNING_GROUP("", RELEASE("") ", { name = \"nightly\"; key = \"pkcs11:token=cstest;object=nightly-1\"; formats = [\"digest\"]; }"),
		 "(profile nightly is new)"},
		{SIGNING_GROUP("", "{ name = \"release\"; key = \"pkcs11:token=cstest;object=other\"; formats = [\"jws\", "
				   "\"dsse\"]; typ = \"release+jwt\"; payload_types = [\"application/vnd.in-toto+json\"]; "
				   "aud = [\"a\"]; }"),
		 "(profile release: its key)"},
		{SIGNING_GROUP("", "{ name = \"release\"; " PROFILE_KEY "formats = [\"jws\"]; typ = \"release+jwt\"; aud = "
				   "[\"a\"]; }"),
		 "(profile release: its formats)"},
		{SIGNING_GROUP("", "{ name = \"release\"; " PROFILE_KEY "formats = [\"jws\", \"dsse\"]; typ = \"other+jwt\";"
				   " payload_types = [\"application/vnd.in-toto+json\"]; aud = [\"a\"]; }"),
		 "(profile release: its typ)"},
		{SIGNING_GROUP("", "{ name = \"release\"; " PROFILE_KEY "formats = [\"jws\", \"dsse\"]; typ = \"release+jwt\";"
				   " payload_types = [\"application/x-other\"]; aud = [\"a\"]; }"),
		 "(profile release: its payload_types)"},
		{SIGNING_GROUP("", RELEASE("max_payload_bytes = 1000;")), "(profile release: its max_payload_bytes)"},
		{SIGNING_GROUP("", RELEASE("iss = \"https://elsewhere.test\";")), "(profile release: its iss)"},
		{SIGNING_GROUP("", "{ name = \"release\"; " PROFILE_KEY "formats = [\"jws\", \"dsse\"]; typ = \"release+jwt\";"
				   " payload_types = [\"application/vnd.in-toto+json\"]; aud = [\"a\", \"b\"]; }"),
		 "(profile release: its aud)"},
		{SIGNING_GROUP("", RELEASE("lifetime_seconds = 60;")), "(profile release: its lifetime_seconds)"},
		{SIGNING_GROUP("", RELEASE("store_payload = true;")), "(profile release: its store_payload)"},
		{"", "(profile release is not in the file)"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		reload_says(cases[i].signing, base_grants, CS_OK, cases[i].says);
	/* the rules did swap each time */
	assert_int_equal(entries_of("access.reload").count > (int)(sizeof(cases) / sizeof(cases[0])), 1);
	assert_string_equal(entries_of("access.reload").last_outcome, "success");

	/* a grant of a profile the file adds (cases[2]), not in force: not
	 * reloaded, audited */
	char grants[4096];
	snprintf(grants, sizeof(grants),
		 "%s,\n  { identity = \"spiffe://t/signer\"; role = \"signer\"; profiles = [ \"release\", \"nightly\" ]; }",
		 base_grants);
	reload_says(cases[2].signing, grants, CS_E_CONFIG,
		    "element 2: signing profile nightly is not in force: a new profile needs a restart");
	action_count c = entries_of("access.reload");
	assert_string_equal(c.last_outcome, "failure");
	assert_string_equal(c.last_code, "config_invalid");
	/* its other grants are not in force either */
	cs_caller signer = who("signer");
	cs_service_req rq;
	begin(&rq, &signer, "sign");
	assert_int_equal(cs_service_admit(&rq, CS_ACTION_SIGN), CS_E_FORBIDDEN);
	finish(&rq, CS_E_FORBIDDEN);

	app.cfg = was;
	write_conf(base_grants, NULL);
	assert_int_equal(cs_service_rules_reload(&app), CS_OK);
	cs_config_free(in_force);
}

/* ---- node ids --------------------------------------------------------------------------- */

static volatile sig_atomic_t terminated;
static void on_term(int sig)
{
	(void)sig;
	terminated = 1;
}

/* A node claims its id; another instance cannot take it while it is
 * renewed; once this node went unseen past CS_NODE_LIVE_MS another takes
 * it, and this node's next renewal stops it: node.lost set, which the
 * server's loop drains and stops on, with no signal (kill is outside the
 * network process's seccomp allowlist); final: later renewals claim
 * nothing, even once the id is free again. Two nodes never write under
 * one id. */
static void test_node_id_taken_stops_the_node(void **state)
{
	(void)state;
	char *holder = NULL;
	const char *id = cfg->server.node_id;
	assert_int_equal(cs_app_node_instance(&app), CS_OK);
	assert_int_equal(cs_app_node_claim(&app), CS_OK);
	struct timespec wall;
	clock_gettime(CLOCK_REALTIME, &wall);
	int64_t now = (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000;
	assert_int_equal(cs_store_write_begin(store, 0), CS_OK);
	assert_int_equal(cs_store_node_claim(store, id, "another-instance", "elsewhere", 4242, now, CS_NODE_LIVE_MS,
					     &holder),
			 CS_E_CONFLICT);
	assert_non_null(strstr(holder, "pid "));
	free(holder);
	holder = NULL;
	/* later than the claim's life: the other instance takes it */
	assert_int_equal(cs_store_node_claim(store, id, "another-instance", "elsewhere", 4242,
					     now + CS_NODE_LIVE_MS + 1000, CS_NODE_LIVE_MS, &holder),
			 CS_OK);
	assert_int_equal(cs_store_write_end(store, CS_OK), CS_OK);
	struct sigaction sa = {.sa_handler = on_term}, old;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGTERM, &sa, &old), 0);
	terminated = 0;
	assert_int_equal(atomic_load(&app.node.lost), 0);
	cs_app_node_renew(&app, INT64_MAX / 2);
	assert_false(terminated); /* no signal */
	assert_int_equal(atomic_load(&app.node.lost), 1);
	/* the row is the other's: a release leaves it so */
	assert_int_equal(cs_ledger_node_release(app.ledger, id, app.node.instance, app.node.host, (int64_t)getpid()),
			 CS_E_CONFLICT);
	/* the other gives it up: this node's later renewals do not take it back */
	assert_int_equal(cs_ledger_node_release(app.ledger, id, "another-instance", "elsewhere", 4242), CS_OK);
	cs_app_node_renew(&app, INT64_MAX / 2 + 2 * CS_NODE_RENEW_MS);
	assert_int_equal(sigaction(SIGTERM, &old, NULL), 0);
	assert_false(terminated);
	assert_int_equal(atomic_load(&app.node.lost), 1);
	clock_gettime(CLOCK_REALTIME, &wall);
	now = (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000;
	assert_int_equal(cs_store_write_begin(store, 0), CS_OK);
	assert_int_equal(cs_store_node_claim(store, id, "third-instance", "elsewhere", 4343, now, CS_NODE_LIVE_MS,
					     &holder),
			 CS_OK);
	assert_int_equal(cs_store_write_end(store, CS_OK), CS_OK);
	free(holder);
}

static int teardown(void **state)
{
	(void)state;
	cs_service_rules_stop(&app);
	cs_key_watch_free(app.keys);
	cs_app_published_free(&app);
	cs_store_close(store);
	cs_ledger_close(app.ledger);
	cs_audit_free(app.audit);
	cs_signer_slot_free(app.signer);
	cs_signer_free(first_key);
	cs_officers_free(app.officers);
	json_decref(app.entropy_source);
	OSSL_PROVIDER_unload(deflt);
	OSSL_PROVIDER_unload(prov);
	OSSL_LIB_CTX_free(app.libctx);
	cs_token_close(app.token);
	cs_presets_free(app.presets);
	cs_wordlist_free(app.wordlist);
	cs_config_free(cfg);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	af_install(0);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generate_within_the_grant),
		cmocka_unit_test(test_generate_outside_the_grant),
		cmocka_unit_test(test_certify_by_the_generator_only),
		cmocka_unit_test(test_certificates_by_project),
		cmocka_unit_test(test_certify_under_allocation_failure), /* a key in force */
		cmocka_unit_test(test_audit_log_views),
		cmocka_unit_test(test_reads_by_role),
		cmocka_unit_test(test_admit_before_the_scope),
		cmocka_unit_test(test_rate_limit),
		cmocka_unit_test(test_inventory_broad_reads_are_charged),
		cmocka_unit_test(test_the_audit_log_cannot_be_written),
		cmocka_unit_test(test_the_control_channel),
		cmocka_unit_test(test_reload_warns_of_signing_changes),
		cmocka_unit_test(test_node_id_taken_stops_the_node),
		cmocka_unit_test(test_reload_swaps_rules),
		/* these change the signing keys: last */
		cmocka_unit_test(test_x5c_of_a_signer),
		cmocka_unit_test(test_a_request_keeps_its_key),
		cmocka_unit_test(test_no_key_in_force_fails_closed),
		cmocka_unit_test(test_the_watch_follows_the_store),
		cmocka_unit_test(test_the_jwks_lists_keys_that_signed),
		cmocka_unit_test(test_the_watch_verifies_activations),
		cmocka_unit_test(test_what_took_a_key_out),
		cmocka_unit_test(test_bootstrap_after_another_key),
		cmocka_unit_test(test_forward_only),
		cmocka_unit_test(test_the_revocation_list),
		cmocka_unit_test(test_reads_under_allocation_failure),
		cmocka_unit_test(test_rollover_statements), /* leaves a bad statement */
		cmocka_unit_test(test_the_first_key_of_a_store),
		cmocka_unit_test(test_the_jwks_withholds_forged_keys), /* leaves forged keys: last */
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
