/*
 * handoff (tools/handoff.h): Kubernetes' name rules at their limits, the
 * Secret manifest's exact text (quoting of hostile credentials), the KV v2
 * bodies, and nothing written on a refusal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "handoff.h"

static const cs_handoff H = {"p\"w\\:1 #x\ty", "crt_1", "https://cs.example/cert/crt_1", "soc2",
			     "2026-11-30T10:00:00Z"};

static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);
	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static void test_names(void **state)
{
	(void)state;
	assert_true(cs_k8s_subdomain_valid("a"));
	assert_true(cs_k8s_subdomain_valid("db-prod.credentials"));
	assert_true(cs_k8s_subdomain_valid("0a-b.c9"));
	assert_false(cs_k8s_subdomain_valid(""));
	assert_false(cs_k8s_subdomain_valid(NULL));
	assert_false(cs_k8s_subdomain_valid("Db"));
	assert_false(cs_k8s_subdomain_valid("-a"));
	assert_false(cs_k8s_subdomain_valid("a-"));
	assert_false(cs_k8s_subdomain_valid("a..b"));
	assert_false(cs_k8s_subdomain_valid(".a"));
	assert_false(cs_k8s_subdomain_valid("a."));
	assert_false(cs_k8s_subdomain_valid("a_b"));
	assert_false(cs_k8s_subdomain_valid("a-.b"));
	/* 253 characters in labels of at most 63: accepted; 254 refused; a
	 * label of 64 refused */
	char *l63 = repeat('a', 63), *l64 = repeat('a', 64), *s254 = repeat('a', 254);
	char s253[300];
	snprintf(s253, sizeof(s253), "%s.%s.%s.%.61s", l63, l63, l63, l63);
	assert_int_equal(strlen(s253), 253);
	assert_true(cs_k8s_subdomain_valid(s253));
	s253[252] = '\0';
	strcat(s253, "bb");
	assert_false(cs_k8s_subdomain_valid(s253));
	assert_false(cs_k8s_subdomain_valid(l64));
	assert_false(cs_k8s_subdomain_valid(s254));

	assert_true(cs_k8s_label_valid("payments"));
	assert_true(cs_k8s_label_valid(l63));
	assert_false(cs_k8s_label_valid(l64));
	assert_false(cs_k8s_label_valid("a.b"));
	assert_false(cs_k8s_label_valid("A"));
	assert_false(cs_k8s_label_valid(""));

	assert_true(cs_k8s_data_key_valid("credential"));
	assert_true(cs_k8s_data_key_valid("A_b-c.d"));
	assert_true(cs_k8s_data_key_valid(".env"));
	assert_false(cs_k8s_data_key_valid("."));
	assert_false(cs_k8s_data_key_valid(".."));
	assert_false(cs_k8s_data_key_valid("..a"));
	assert_false(cs_k8s_data_key_valid(""));
	assert_false(cs_k8s_data_key_valid("a/b"));
	assert_false(cs_k8s_data_key_valid("a b"));
	char *k254 = repeat('k', 254);
	assert_false(cs_k8s_data_key_valid(k254));
	k254[253] = '\0';
	assert_true(cs_k8s_data_key_valid(k254));
	free(l63);
	free(l64);
	free(s254);
	free(k254);
}

/* The output of the renderer into a string; *r its result. */
static char *capture_k8s(const cs_handoff *h, const char *key, cs_err *r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	*r = cs_handoff_k8s_secret(h, "db-prod", "payments", key, f);
	fclose(f);
	return buf;
}
static char *capture_vault(const cs_handoff *h, const char *key, cs_err *r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	*r = cs_handoff_vault_kv(h, key, f);
	fclose(f);
	return buf;
}

static void test_k8s_text(void **state)
{
	(void)state;
	cs_err r;
	char *text = capture_k8s(&H, "DB_PASSWORD", &r);
	assert_int_equal(r, CS_OK);
	assert_string_equal(text, "---\n"
				  "\"apiVersion\": \"v1\"\n"
				  "\"kind\": \"Secret\"\n"
				  "\"metadata\":\n"
				  "  \"name\": \"db-prod\"\n"
				  "  \"namespace\": \"payments\"\n"
				  "  \"labels\":\n"
				  "    \"app.kubernetes.io/managed-by\": \"credsign\"\n"
				  "  \"annotations\":\n"
				  "    \"credsign.io/cert-url\": \"https://cs.example/cert/crt_1\"\n"
				  "    \"credsign.io/cert-id\": \"crt_1\"\n"
				  "    \"credsign.io/preset\": \"soc2\"\n"
				  "    \"credsign.io/certified-at\": \"2026-11-30T10:00:00Z\"\n"
				  "\"type\": \"Opaque\"\n"
				  "\"stringData\":\n"
				  "  \"DB_PASSWORD\": \"p\\\"w\\\\:1 #x\\ty\"\n");
	free(text);
}

/* A long credential stays on one line (no folding), and a credential that
 * is not UTF-8, or a member missing, writes nothing. */
static void test_k8s_refusals(void **state)
{
	(void)state;
	cs_err r;
	char *cred = repeat('x', 5000);
	cs_handoff h = H;
	h.credential = cred;
	char *text = capture_k8s(&h, "k", &r);
	assert_int_equal(r, CS_OK);
	char want[5010];
	snprintf(want, sizeof(want), "  \"k\": \"%s\"\n", cred);
	assert_non_null(strstr(text, want));
	free(text);

	h.credential = "\xff\xfe";
	text = capture_k8s(&h, "k", &r);
	assert_int_equal(r, CS_E_INVALID_ARG);
	assert_string_equal(text, "");
	free(text);

	h = H;
	h.certified_at = NULL;
	text = capture_k8s(&h, "k", &r);
	assert_int_equal(r, CS_E_INVALID_ARG);
	assert_string_equal(text, "");
	free(text);

	FILE *ro = fopen("/dev/null", "r");
	assert_non_null(ro);
	assert_int_equal(cs_handoff_k8s_secret(&H, "a", "b", "k", ro), CS_E_IO);
	fclose(ro);
	free(cred);
}

static void test_vault(void **state)
{
	(void)state;
	cs_err r;
	char *text = capture_vault(&H, "password", &r);
	assert_int_equal(r, CS_OK);
	size_t n = strlen(text);
	assert_true(n > 1 && text[n - 1] == '\n' && strchr(text, '\n') == text + n - 1);
	json_t *doc = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	json_t *want = json_pack("{s:{s:{s:s, s:s, s:s}, s:{s:i}}, s:{s:{s:s, s:s, s:s}}}", "data", "data",
				 "password", H.credential, "cert_url", H.cert_url, "cert_id", H.cert_id, "options",
				 "cas", 0, "metadata", "custom_metadata", "credsign.io/cert-url", H.cert_url,
				 "credsign.io/cert-id", H.cert_id, "credsign.io/preset", H.preset);
	assert_non_null(doc);
	assert_true(json_equal(doc, want));
	json_decref(doc);
	json_decref(want);
	free(text);

	/* the credential's key may not hide the certificate reference */
	text = capture_vault(&H, "cert_url", &r);
	assert_int_equal(r, CS_E_INVALID_ARG);
	assert_string_equal(text, "");
	free(text);
	text = capture_vault(&H, "cert_id", &r);
	assert_int_equal(r, CS_E_INVALID_ARG);
	free(text);
	cs_handoff h = H;
	h.preset = NULL;
	text = capture_vault(&h, "k", &r);
	assert_int_equal(r, CS_E_INVALID_ARG);
	assert_string_equal(text, "");
	free(text);
	h = H;
	h.credential = "\xc3\x28";
	text = capture_vault(&h, "k", &r);
	assert_int_equal(r, CS_E_INVALID_ARG);
	assert_string_equal(text, "");
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_k8s_text),
		cmocka_unit_test(test_k8s_refusals),
		cmocka_unit_test(test_vault),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
