/*
 * inventory_test: the credential register on constructed rows (issue 19):
 * states and supersession, rotation due dates per preset and setting,
 * CSV quoting and the formula-injection prefix, counts, due_before, time
 * parsing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_fail.h"
#include "inventory.h"
#include "test_support.h"

static cs_preset_set *presets;

static int setup(void **state)
{
	(void)state;
	presets = ts_presets_load(CREDSIGN_SOURCE_DIR "/conf/presets.conf");
	return presets == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	cs_presets_free(presets);
	return 0;
}

/* Claims as the daemon signs them (system NULL: none). */
static char *claims(const char *id, const char *preset, const char *type, const char *standards,
		    const char *system, const char *certified_at)
{
	char sys[128] = "";
	if (system != NULL)
		snprintf(sys, sizeof(sys), "\"system\":\"%s\",", system);
	char *out = NULL;
	assert_true(asprintf(&out,
			     "{\"preset\":\"%s\",\"standards\":%s,\"credential\":{\"type\":\"%s\"},"
			     "\"subject\":{\"identity\":\"spiffe://t/gen\"},\"project\":\"payments\","
			     "\"environment\":\"prod\",%s\"iss\":\"https://cs.example\",\"jti\":\"%s\","
			     "\"certified_at\":\"%s\"}",
			     preset, standards, type, sys, id, certified_at) > 0);
	return out;
}

static cs_inventory_row row(const char *id, char *claims_json, const char *system)
{
	cs_inventory_row r = {.cert_id = id, .project = "payments", .environment = "prod", .system = system,
			      .claims_json = claims_json, .created_ms = 0};
	return r;
}

static const char *get(const json_t *records, size_t i, const char *k)
{
	return json_string_value(json_object_get(json_array_get(records, i), k));
}

static void test_states_and_supersession(void **state)
{
	(void)state;
	cs_inventory_rules rules = {0, 14};
	/* out of order on purpose: the module sorts by certified_at, cert_id */
	char *c[6] = {
		claims("c3", "dod-stig", "password", "[\"DISA\"]", "db1", "2026-03-01T10:00:00Z"),
		claims("c1", "dod-stig", "password", "[\"DISA\"]", "db1", "2026-01-01T10:00:00Z"),
		claims("c2", "dod-stig", "password", "[\"DISA\"]", "db1", "2026-02-01T10:00:00Z"),
		claims("n1", "soc2", "password", "[]", NULL, "2026-01-01T10:00:00Z"),
		claims("n2", "soc2", "password", "[]", NULL, "2026-02-01T10:00:00Z"),
		claims("r2", "soc2", "password", "[]", "web", "2026-02-01T10:00:00Z"),
	};
	char *r1 = claims("r1", "soc2", "password", "[]", "web", "2026-01-01T10:00:00Z");
	cs_inventory_row rows[7] = {row("c3", c[0], "db1"), row("c1", c[1], "db1"), row("c2", c[2], "db1"),
				    row("n1", c[3], NULL),  row("n2", c[4], NULL),  row("r2", c[5], "web"),
				    row("r1", r1, "web")};
	rows[5].revoked_at = "2026-02-02T00:00:00.000Z";
	rows[5].revocation_reason = "compromised";
	json_t *recs = NULL;
	assert_int_equal(cs_inventory_records(rows, 7, presets, &rules, &recs), CS_OK);
	assert_int_equal(json_array_size(recs), 7);
	/* system null first, then db1, then web */
	const char *want_ids[7] = {"n1", "n2", "c1", "c2", "c3", "r1", "r2"};
	const char *want_state[7] = {"current", "current", "superseded", "superseded", "current", "superseded", "revoked"};
	for (size_t i = 0; i < 7; i++) {
		assert_string_equal(get(recs, i, "cert_id"), want_ids[i]);
		assert_string_equal(get(recs, i, "state"), want_state[i]);
	}
	assert_null(get(recs, 0, "superseded_by")); /* no system: never superseded */
	assert_null(get(recs, 1, "superseded_by"));
	assert_string_equal(get(recs, 2, "superseded_by"), "c2");
	assert_string_equal(get(recs, 3, "superseded_by"), "c3");
	assert_null(get(recs, 4, "superseded_by"));
	assert_string_equal(get(recs, 5, "superseded_by"), "r2");
	assert_string_equal(get(recs, 6, "revoked_at"), "2026-02-02T00:00:00.000Z");
	assert_string_equal(get(recs, 6, "revocation_reason"), "compromised");
	assert_null(get(recs, 5, "revoked_at"));
	/* members in the spec's order */
	const char *order[] = {"project",	 "environment", "system",	 "state",	  "cert_id",
			       "cert_url",	 "type",	"preset",	 "standards",	  "certified_at",
			       "requester",	 "rotation_due", "rotation_rule", "rotation",	  "superseded_by",
			       "revoked_at", "revocation_reason"};
	size_t k = 0;
	const char *key;
	json_t *v;
	json_object_foreach(json_array_get(recs, 2), key, v)
	{
		assert_true(k < 17);
		assert_string_equal(key, order[k++]);
	}
	assert_int_equal(k, 17);
	assert_string_equal(get(recs, 2, "cert_url"), "https://cs.example/cert/c1");
	assert_string_equal(get(recs, 2, "requester"), "spiffe://t/gen");
	assert_string_equal(get(recs, 2, "type"), "password");
	assert_true(json_is_null(json_object_get(json_array_get(recs, 0), "system")));
	/* counts: 4 current (n1 n2 c3 ... ) */
	cs_inventory_counts n;
	assert_int_equal(cs_inventory_count(recs, &rules, 0, &n), CS_OK);
	assert_int_equal(n.current, 3);
	assert_int_equal(n.superseded, 3);
	assert_int_equal(n.revoked, 1);
	json_decref(recs);
	for (size_t i = 0; i < 6; i++)
		free(c[i]);
	free(r1);
}

static void test_revoked_newest_leaves_no_current(void **state)
{
	(void)state;
	cs_inventory_rules rules = {0, 14};
	char *a = claims("a", "soc2", "password", "[]", "s", "2026-01-01T00:00:00Z");
	char *b = claims("b", "soc2", "password", "[]", "s", "2026-01-02T00:00:00Z");
	cs_inventory_row rows[2] = {row("a", a, "s"), row("b", b, "s")};
	rows[1].revoked_at = "2026-01-03T00:00:00.000Z";
	json_t *recs = NULL;
	assert_int_equal(cs_inventory_records(rows, 2, presets, &rules, &recs), CS_OK);
	assert_string_equal(get(recs, 0, "state"), "superseded");
	assert_string_equal(get(recs, 0, "superseded_by"), "b");
	assert_string_equal(get(recs, 1, "state"), "revoked");
	json_decref(recs);
	free(a);
	free(b);
}

/* An older certificate revoked, then the key rotated: the revoked record
 * stays "revoked" (revocation wins over supersession), and superseded_by
 * still names its successor; the successor is current. */
static void test_revoked_then_rotated(void **state)
{
	(void)state;
	cs_inventory_rules rules = {0, 14};
	char *a = claims("a", "soc2", "password", "[]", "s", "2026-01-01T00:00:00Z");
	char *b = claims("b", "soc2", "password", "[]", "s", "2026-01-02T00:00:00Z");
	cs_inventory_row rows[2] = {row("a", a, "s"), row("b", b, "s")};
	rows[0].revoked_at = "2026-01-01T12:00:00.000Z";
	rows[0].revocation_reason = "exposed";
	json_t *recs = NULL;
	assert_int_equal(cs_inventory_records(rows, 2, presets, &rules, &recs), CS_OK);
	assert_string_equal(get(recs, 0, "cert_id"), "a");
	assert_string_equal(get(recs, 0, "state"), "revoked");
	assert_string_equal(get(recs, 0, "superseded_by"), "b");
	assert_string_equal(get(recs, 0, "revoked_at"), "2026-01-01T12:00:00.000Z");
	assert_string_equal(get(recs, 1, "state"), "current");
	assert_null(get(recs, 1, "superseded_by"));
	cs_inventory_counts n;
	assert_int_equal(cs_inventory_count(recs, &rules, 0, &n), CS_OK);
	assert_int_equal(n.revoked, 1);
	assert_int_equal(n.superseded, 0);
	assert_int_equal(n.current, 1);
	json_decref(recs);
	free(a);
	free(b);
}

/* Counts at the boundaries (inventory.h): overdue when rotation_due is
 * before now, due soon from now through now + due_soon_days. */
static void test_count_boundaries(void **state)
{
	(void)state;
	cs_inventory_rules rules = {0, 14};
	char *a = claims("a", "dod-stig", "password", "[\"DISA\"]", "s", "2026-01-01T10:00:00Z");
	cs_inventory_row rows[1] = {row("a", a, "s")};
	json_t *recs = NULL;
	assert_int_equal(cs_inventory_records(rows, 1, presets, &rules, &recs), CS_OK);
	int64_t due;
	assert_int_equal(cs_inventory_time_parse(get(recs, 0, "rotation_due"), &due), CS_OK);
	const int64_t day = 86400000LL;
	const struct {
		int64_t now;
		int64_t overdue, due_soon;
	} cases[] = {
		{due - 1, 0, 1},              /* a millisecond before: due soon, not overdue */
		{due, 0, 1},                  /* at the instant: not yet before now */
		{due + 1, 1, 0},              /* a millisecond after: overdue */
		{due - 14 * day, 0, 1},       /* due exactly due_soon_days ahead: due soon */
		{due - 14 * day - 1, 0, 0},   /* a millisecond further: neither */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cs_inventory_counts n;
		assert_int_equal(cs_inventory_count(recs, &rules, cases[i].now, &n), CS_OK);
		if (n.overdue != cases[i].overdue || n.due_soon != cases[i].due_soon || n.current != 1)
			fail_msg("case %zu (now = due %+lld ms): overdue %lld due_soon %lld current %lld", i,
				 (long long)(cases[i].now - due), (long long)n.overdue, (long long)n.due_soon,
				 (long long)n.current);
	}
	json_decref(recs);
	free(a);
}

/* Certifications of one system within one second: certified_at (whole
 * seconds) is equal, the store's created_ms orders them, not cert_id. */
static void test_same_second(void **state)
{
	(void)state;
	cs_inventory_rules rules = {0, 14};
	const char *ids[4] = {"d-first", "c-second", "b-third", "a-last"}; /* cert_id order reversed */
	char *c[4];
	cs_inventory_row rows[4];
	for (size_t i = 0; i < 4; i++) {
		c[i] = claims(ids[i], "dod-stig", "password", "[\"DISA\"]", "db1", "2026-03-01T10:00:00Z");
		rows[i] = row(ids[i], c[i], "db1");
		rows[i].created_ms = 1772359200000LL + 100 + (int64_t)i * 7;
	}
	/* handed over out of order */
	cs_inventory_row shuffled[4] = {rows[2], rows[0], rows[3], rows[1]};
	json_t *recs = NULL;
	assert_int_equal(cs_inventory_records(shuffled, 4, presets, &rules, &recs), CS_OK);
	assert_int_equal(json_array_size(recs), 4);
	for (size_t i = 0; i < 4; i++) {
		assert_string_equal(get(recs, i, "cert_id"), ids[i]);
		assert_string_equal(get(recs, i, "certified_at"), "2026-03-01T10:00:00Z");
		assert_string_equal(get(recs, i, "state"), i < 3 ? "superseded" : "current");
		if (i < 3)
			assert_string_equal(get(recs, i, "superseded_by"), ids[i + 1]);
		else
			assert_null(get(recs, i, "superseded_by"));
	}
	cs_inventory_counts n;
	assert_int_equal(cs_inventory_count(recs, &rules, 0, &n), CS_OK);
	assert_int_equal(n.current, 1);
	assert_int_equal(n.superseded, 3);
	json_decref(recs);
	for (size_t i = 0; i < 4; i++)
		free(c[i]);
}

/* due_before keeps current records only: superseded and revoked ones keep
 * their date but are no longer due. */
static void test_due_before_current_only(void **state)
{
	(void)state;
	cs_inventory_rules rules = {0, 14};
	char *a = claims("a", "dod-stig", "password", "[\"DISA\"]", "s", "2026-01-01T00:00:00Z");
	char *b = claims("b", "dod-stig", "password", "[\"DISA\"]", "s", "2026-01-02T00:00:00Z");
	char *x = claims("x", "dod-stig", "password", "[\"DISA\"]", "t", "2026-01-01T00:00:00Z");
	cs_inventory_row rows[3] = {row("a", a, "s"), row("b", b, "s"), row("x", x, "t")};
	rows[2].revoked_at = "2026-01-05T00:00:00.000Z";
	json_t *recs = NULL;
	assert_int_equal(cs_inventory_records(rows, 3, presets, &rules, &recs), CS_OK);
	assert_string_equal(get(recs, 0, "state"), "superseded");
	assert_string_equal(get(recs, 0, "rotation_due"), "2026-03-02T00:00:00.000Z"); /* the date it had */
	assert_string_equal(get(recs, 2, "state"), "revoked");
	int64_t before;
	assert_int_equal(cs_inventory_time_parse("2027-01-01", &before), CS_OK);
	assert_int_equal(cs_inventory_filter_due_before(recs, before), CS_OK);
	assert_int_equal(json_array_size(recs), 1);
	assert_string_equal(get(recs, 0, "cert_id"), "b");
	assert_string_equal(get(recs, 0, "state"), "current");
	json_decref(recs);
	free(a);
	free(b);
	free(x);
}

static void test_due_dates(void **state)
{
	(void)state;
	const char *pci_std = "[\"PCI DSS v4.0.1 8.3.6 (length)\"]";
	char *stig = claims("s", "dod-stig", "password", "[\"DISA\"]", "a", "2026-01-01T10:00:00Z");
	char *nist = claims("n", "nist-800-63b", "password", "[\"NIST\"]", "b", "2026-01-01T10:00:00Z");
	char *pci_pw = claims("p", "pci-dss-4", "password", pci_std, "c", "2026-01-01T10:00:00Z");
	char *pci_key = claims("k", "pci-dss-4", "api-key", pci_std, "d", "2026-01-01T10:00:00Z");
	char *gone = claims("g", "no-such-preset", "password", "[]", "e", "2026-01-01T10:00:00Z");
	cs_inventory_row rows[5] = {row("s", stig, "a"), row("n", nist, "b"), row("p", pci_pw, "c"),
				    row("k", pci_key, "d"), row("g", gone, "e")};
	json_t *recs = NULL;
	cs_inventory_rules off = {0, 14};
	assert_int_equal(cs_inventory_records(rows, 5, presets, &off, &recs), CS_OK);
	/* a: dod-stig 60 days, its citation */
	assert_string_equal(get(recs, 0, "rotation_due"), "2026-03-02T10:00:00.000Z");
	assert_string_equal(get(recs, 0, "rotation_rule"), "DISA GPOS SRG SRG-OS-000076-GPOS-00044");
	/* b: 800-63B: none, its guidance */
	assert_null(get(recs, 1, "rotation_due"));
	assert_null(get(recs, 1, "rotation_rule"));
	assert_non_null(strstr(get(recs, 1, "rotation"), "evidence of compromise"));
	/* c: pci password without the setting: none */
	assert_null(get(recs, 2, "rotation_due"));
	assert_null(strstr(get(recs, 2, "rotation"), "8.3.9"));
	/* e: preset gone */
	assert_null(get(recs, 4, "rotation_due"));
	assert_string_equal(get(recs, 4, "rotation"), "preset no-such-preset not configured");
	json_decref(recs);

	cs_inventory_rules on = {90, 14};
	assert_int_equal(cs_inventory_records(rows, 5, presets, &on, &recs), CS_OK);
	assert_string_equal(get(recs, 2, "rotation_due"), "2026-04-01T10:00:00.000Z");
	assert_string_equal(get(recs, 2, "rotation_rule"), CS_INVENTORY_PCI_RULE);
	/* the rotation text states the rule applied, never contradicts it */
	assert_string_equal(get(recs, 2, "rotation"),
			    "Per targeted risk analysis (12.3.1) and on suspected compromise (8.6.3); password-only "
			    "accounts: at least every 90 days (PCI DSS v4.0.1 8.3.9, inventory.pci_password_change_days)");
	assert_null(get(recs, 3, "rotation_due")); /* an api-key is not a password */
	assert_null(strstr(get(recs, 3, "rotation"), "8.3.9"));
	assert_string_equal(get(recs, 0, "rotation_due"), "2026-03-02T10:00:00.000Z");
	json_decref(recs);

	/* both: the earlier (dod-stig 60 days against pci 30) */
	char *both = claims("x", "dod-stig", "password", pci_std, "f", "2026-01-01T10:00:00Z");
	cs_inventory_row r2[1] = {row("x", both, "f")};
	cs_inventory_rules thirty = {30, 14};
	assert_int_equal(cs_inventory_records(r2, 1, presets, &thirty, &recs), CS_OK);
	assert_string_equal(get(recs, 0, "rotation_due"), "2026-01-31T10:00:00.000Z");
	assert_string_equal(get(recs, 0, "rotation_rule"), CS_INVENTORY_PCI_RULE);
	json_decref(recs);
	cs_inventory_rules ninety = {90, 14};
	assert_int_equal(cs_inventory_records(r2, 1, presets, &ninety, &recs), CS_OK);
	assert_string_equal(get(recs, 0, "rotation_due"), "2026-03-02T10:00:00.000Z");
	assert_string_equal(get(recs, 0, "rotation_rule"), "DISA GPOS SRG SRG-OS-000076-GPOS-00044");

	/* counts at a given now: overdue and due soon */
	cs_inventory_counts n;
	int64_t due;
	assert_int_equal(cs_inventory_time_parse("2026-03-02T10:00:00.000Z", &due), CS_OK);
	assert_int_equal(cs_inventory_count(recs, &ninety, due + 1, &n), CS_OK);
	assert_int_equal(n.overdue, 1);
	assert_int_equal(n.due_soon, 0);
	assert_int_equal(cs_inventory_count(recs, &ninety, due - 86400000LL * 13, &n), CS_OK);
	assert_int_equal(n.overdue, 0);
	assert_int_equal(n.due_soon, 1);
	assert_int_equal(cs_inventory_count(recs, &ninety, due - 86400000LL * 15, &n), CS_OK);
	assert_int_equal(n.due_soon, 0);
	/* due_before */
	assert_int_equal(cs_inventory_filter_due_before(recs, due), CS_OK);
	assert_int_equal(json_array_size(recs), 0);
	json_decref(recs);
	free(both);
	free(stig);
	free(nist);
	free(pci_pw);
	free(pci_key);
	free(gone);
}

static void test_csv(void **state)
{
	(void)state;
	json_t *recs = json_pack("[{s:s, s:s, s:n, s:s, s:s, s:s, s:s, s:s, s:[s,s], s:s, s:s, s:n, s:n, s:s, s:n, "
				 "s:n, s:s}]",
				 "project", "=cmd|' /C calc'!A0", "environment", "prod \"east\"", "system", "state",
				 "current", "cert_id", "-id", "cert_url", "@x", "type", "+1", "preset", "\tp",
				 "standards", "A, b", "C", "certified_at", "2026-01-01T00:00:00Z", "requester",
				 "line1\r\nline2", "rotation_due", "rotation_rule", "rotation", "\rr",
				 "superseded_by", "revoked_at", "revocation_reason", "ok");
	assert_non_null(recs);
	char *csv = cs_inventory_csv(recs);
	assert_non_null(csv);
	const char *want =
		"\"project\",\"environment\",\"system\",\"state\",\"cert_id\",\"cert_url\",\"type\",\"preset\","
		"\"standards\",\"certified_at\",\"requester\",\"rotation_due\",\"rotation_rule\",\"rotation\","
		"\"superseded_by\",\"revoked_at\",\"revocation_reason\"\r\n"
		"\"'=cmd|' /C calc'!A0\",\"prod \"\"east\"\"\",,\"current\",\"'-id\",\"'@x\",\"'+1\",\"'\tp\","
		"\"A, b; C\",\"2026-01-01T00:00:00Z\",\"line1\r\nline2\",,,\"'\rr\",,,\"ok\"\r\n";
	assert_string_equal(csv, want);
	free(csv);
	json_decref(recs);
	/* empty: the header alone */
	json_t *none = json_array();
	csv = cs_inventory_csv(none);
	assert_non_null(csv);
	assert_non_null(strstr(csv, "\"revocation_reason\"\r\n"));
	assert_int_equal(strlen(strstr(csv, "\"revocation_reason\"\r\n")), strlen("\"revocation_reason\"\r\n"));
	free(csv);
	json_decref(none);
	assert_null(cs_inventory_csv(NULL));
}

static void test_time_parse(void **state)
{
	(void)state;
	int64_t ms;
	assert_int_equal(cs_inventory_time_parse("2026-01-30", &ms), CS_OK);
	char out[32];
	cs_inventory_time_format(ms, out);
	assert_string_equal(out, "2026-01-30T00:00:00.000Z");
	assert_int_equal(cs_inventory_time_parse("2026-01-30T10:00:00.5Z", &ms), CS_OK);
	cs_inventory_time_format(ms, out);
	assert_string_equal(out, "2026-01-30T10:00:00.500Z");
	assert_int_equal(cs_inventory_time_parse("2026-01-30T10:00:00.123456789Z", &ms), CS_OK);
	const char *bad[] = {"", "2026-02-30", "2026-1-30", "2026-01-30T10:00:00", "2026-01-30T10:00:00+01:00",
			     "2026-01-30T10:00:00.Z", "2026-01-30T24:00:00Z", "2026-01-30x", "1969-12-31",
			     "2026-01-30T10:00:00.1234567890Z"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(cs_inventory_time_parse(bad[i], &ms), CS_E_INVALID_ARG);
	assert_int_equal(cs_inventory_time_parse(NULL, &ms), CS_E_INVALID_ARG);
}

static void test_bad_rows(void **state)
{
	(void)state;
	cs_inventory_rules rules = {0, 14};
	cs_inventory_row r = {.cert_id = "x", .claims_json = "[1]"};
	json_t *recs = (json_t *)1;
	assert_int_equal(cs_inventory_records(&r, 1, presets, &rules, &recs), CS_E_STORE);
	assert_null(recs);
	r.claims_json = "not json";
	assert_int_equal(cs_inventory_records(&r, 1, presets, &rules, &recs), CS_E_STORE);
	assert_int_equal(cs_inventory_records(NULL, 0, presets, &rules, &recs), CS_OK);
	assert_int_equal(json_array_size(recs), 0);
	json_decref(recs);
	cs_inventory_counts n;
	assert_int_equal(cs_inventory_count(NULL, &rules, 0, &n), CS_E_INVALID_ARG);
}

/* Out of memory at every allocation of the record building and the CSV:
 * an error and nothing returned (ASan: nothing leaked), never a partial
 * register. jansson's own allocations are left alone (AF_NOT_JSON: its
 * parser may abort when one fails, alloc_fail.h). */
typedef struct {
	cs_inventory_row rows[3];
	const cs_inventory_rules *rules;
	json_t *built; /* for the CSV sweep */
} oom_ctx;

static void oom_records(void *arg)
{
	oom_ctx *c = arg;
	json_t *recs = NULL;
	cs_err r = cs_inventory_records(c->rows, 3, presets, c->rules, &recs);
	bool failed = af_disarm();
	if (failed) {
		assert_int_not_equal(r, CS_OK);
		assert_null(recs);
	} else {
		assert_int_equal(r, CS_OK);
		assert_int_equal(json_array_size(recs), 3);
	}
	json_decref(recs);
}

static void oom_csv(void *arg)
{
	oom_ctx *c = arg;
	char *csv = cs_inventory_csv(c->built);
	bool failed = af_disarm();
	if (failed)
		assert_null(csv);
	else
		assert_non_null(csv);
	free(csv);
}

static void test_out_of_memory(void **state)
{
	(void)state;
	cs_inventory_rules rules = {90, 14};
	char *a = claims("a", "dod-stig", "password", "[\"PCI DSS v4.0.1 8.3.6\", \"x\"]", "s", "2026-01-01T00:00:00Z");
	char *b = claims("b", "dod-stig", "password", "[]", "s", "2026-01-02T00:00:00Z");
	char *n = claims("n", "gone", "password", "[]", NULL, "2026-01-02T00:00:00Z");
	oom_ctx c = {.rows = {row("b", b, "s"), row("a", a, "s"), row("n", n, NULL)}, .rules = &rules};
	assert_true(af_sweep(oom_records, &c, AF_NOT_JSON, 200) > 0);
	assert_int_equal(cs_inventory_records(c.rows, 3, presets, &rules, &c.built), CS_OK);
	assert_true(af_sweep(oom_csv, &c, AF_NOT_JSON, 200) > 0);
	json_decref(c.built);
	free(a);
	free(b);
	free(n);
}

int main(void)
{
	af_install(0);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_states_and_supersession),
		cmocka_unit_test(test_revoked_newest_leaves_no_current),
		cmocka_unit_test(test_revoked_then_rotated),
		cmocka_unit_test(test_count_boundaries),
		cmocka_unit_test(test_same_second),
		cmocka_unit_test(test_due_before_current_only),
		cmocka_unit_test(test_due_dates),
		cmocka_unit_test(test_csv),
		cmocka_unit_test(test_time_parse),
		cmocka_unit_test(test_bad_rows),
		cmocka_unit_test(test_out_of_memory),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
