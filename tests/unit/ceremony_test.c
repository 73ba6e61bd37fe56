/*
 * ceremony_test: the ceremony core (ceremony.h) against an officer PKI
 * made afresh (officer_pki.h): ids and nonces, canonical bytes (stable,
 * sensitive to every field), the officer check (listed, unknown, another
 * CA, expired, revoked, historic), approval signatures (EC and RSA keys in
 * PEM files; another key, other bytes), the quorum (one short, the same
 * officer twice, a tampered approval; one key under two certificates
 * counts once), transcripts (round trip; an edited readable line, an
 * edited record, a swapped signature, a forged rollover each fail; the
 * roster: without one the recorded names are not trusted and the report
 * says so, with one (a roster file, a configuration's) an unlisted
 * officer recorded under a listed name fails; the report never claims a
 * check it did not make).
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
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "alloc_fail.h"
#include "ceremony.h"
#include "ec_util.h"
#include "jose.h"
#include "officer_pki.h"
#include "test_support.h"
#include "token.h"

static char dir[512];
static cs_config cfg;
static cs_config_officer listed[3];
static cs_officers *officers; /* from cfg */

#define ID "cer_abcdefghijklmnopqrstuvwxya"
#define NONCE "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"

static void path_of(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", dir, name);
}

/* The PEM text of a file (malloc'd). */
static char *slurp(const char *name)
{
	char path[700];
	path_of(path, sizeof(path), name);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char *buf = calloc(1, 65536);
	assert_non_null(buf);
	size_t n = fread(buf, 1, 65535, f);
	fclose(f);
	assert_true(n > 0);
	return buf;
}

static void rfc3339(time_t t, char out[32])
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

static int setup(void **state)
{
	(void)state;
	const char *base = getenv("CREDSIGN_TEST_TMP");
	char tmpl[512], why[CS_CEREMONY_WHY_MAX];
	snprintf(tmpl, sizeof(tmpl), "%s/ceremony-XXXXXX", base != NULL ? base : "/tmp");
	if (base != NULL)
		mkdir(base, 0700);
	if (mkdtemp(tmpl) == NULL)
		return -1;
	snprintf(dir, sizeof(dir), "%s", tmpl);
	if (op_make(dir) != 0)
		return -1;
	static char ca[600], crl[600], certs[3][600];
	static const char *const names[] = {"officer-a", "officer-b", "officer-c"};
	path_of(ca, sizeof(ca), "officer-ca.pem");
	path_of(crl, sizeof(crl), "officer-crl.pem");
	for (int i = 0; i < 3; i++) {
		snprintf(certs[i], sizeof(certs[i]), "%s/officers/%s.pem", dir, names[i]);
		listed[i].name = (char *)names[i];
		listed[i].certificate = certs[i];
		if (op_fingerprint(certs[i], listed[i].fingerprint) != 0)
			return -1;
	}
	cfg.file_given = (char *)"test.conf";
	cfg.ceremony.present = true;
	cfg.ceremony.officer_ca = ca;
	cfg.ceremony.officer_crl = crl;
	cfg.ceremony.quorum = 2;
	cfg.ceremony.revoke_quorum = 1;
	cfg.ceremony.expiry_minutes = 60;
	cfg.ceremony.officers = listed;
	cfg.ceremony.nofficers = 3;
	return cs_officers_load(&cfg, &officers, why) == CS_OK ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	cs_officers_free(officers);
	return 0;
}

/* A ceremony record with fixed fields (times around now when live). */
typedef struct {
	char created[32], expires[32], approved[32], executed[32];
	cs_ceremony_record c;
} fixture;

static void record_init(fixture *f, int live)
{
	time_t now = live ? time(NULL) : 1735787045; /* 2025-01-02T03:04:05Z */
	rfc3339(now - 600, f->created);
	rfc3339(now + 3000, f->expires);
	rfc3339(now - 300, f->approved);
	rfc3339(now - 60, f->executed);
	f->c = (cs_ceremony_record){
		.id = ID,
		.action = "activate",
		.subject = "kid-new",
		.reason = NULL,
		.params_json = "{\"b\":\"x\",\"a\":1}",
		.nonce = NONCE,
		.node = "node-1",
		.created_at = f->created,
		.expires_at = f->expires,
		.started_by = "local:alice",
		.state = "open",
	};
}

/* ---- ids, nonces, times ---------------------------------------------------- */

static void test_ids(void **state)
{
	(void)state;
	uint8_t raw[CS_CEREMONY_ID_RAW];
	char id[CS_CEREMONY_ID_CHARS + 1], nonce[CS_CEREMONY_NONCE_CHARS + 1];
	memset(raw, 0, sizeof(raw));
	cs_ceremony_id_from_raw(raw, id);
	assert_string_equal(id, "cer_aaaaaaaaaaaaaaaaaaaaaaaaaa");
	memset(raw, 0xff, sizeof(raw));
	cs_ceremony_id_from_raw(raw, id);
	assert_string_equal(id, "cer_77777777777777777777777774");
	assert_true(cs_ceremony_id_valid(id));
	assert_true(cs_ceremony_id_valid(ID));
	assert_false(cs_ceremony_id_valid("cer_7777777777777777777777777r")); /* low bits set */
	assert_false(cs_ceremony_id_valid("cer_ABCDEFGHIJKLMNOPQRSTUVWXYA"));
	assert_false(cs_ceremony_id_valid("cer_abc"));
	assert_false(cs_ceremony_id_valid("crt_abcdefghijklmnopqrstuvwxya"));
	assert_false(cs_ceremony_id_valid(NULL));
	for (size_t i = 0; i < sizeof(raw); i++)
		raw[i] = (uint8_t)(i * 37);
	cs_ceremony_id_from_raw(raw, id);
	assert_true(cs_ceremony_id_valid(id));

	uint8_t nraw[CS_CEREMONY_NONCE_RAW];
	for (size_t i = 0; i < sizeof(nraw); i++)
		nraw[i] = (uint8_t)i;
	assert_int_equal(cs_ceremony_nonce_from_raw(nraw, nonce), CS_OK);
	assert_string_equal(nonce, NONCE);

	time_t t;
	assert_int_equal(cs_ceremony_time_parse("2025-01-02T03:04:05.678Z", &t), CS_OK);
	assert_int_equal(t, 1735787045);
	assert_int_equal(cs_ceremony_time_parse("2025-01-02T03:04:05Z", &t), CS_OK);
	assert_int_equal(cs_ceremony_time_parse("2025-02-30T03:04:05Z", &t), CS_E_INVALID_ARG);
	assert_int_equal(cs_ceremony_time_parse("2025-01-02 03:04:05Z", &t), CS_E_INVALID_ARG);
	assert_int_equal(cs_ceremony_time_parse("2025-01-02T03:04:05+01:00", &t), CS_E_INVALID_ARG);
	assert_int_equal(cs_ceremony_time_parse("2025-01-02T03:04:05.Z", &t), CS_E_INVALID_ARG);

	cs_ceremony_action a;
	assert_int_equal(cs_ceremony_action_parse("purge", &a), CS_OK);
	assert_int_equal(a, CS_CEREMONY_PURGE);
	assert_string_equal(cs_ceremony_action_name(CS_CEREMONY_REVOKE), "revoke");
	assert_int_equal(cs_ceremony_action_parse("rotate", &a), CS_E_INVALID_ARG);
	/* revoke takes revoke_quorum, every other action the quorum */
	assert_int_equal(cs_officers_quorum(officers, CS_CEREMONY_REVOKE), 1);
	assert_int_equal(cs_officers_quorum(officers, CS_CEREMONY_ACTIVATE), 2);
	assert_int_equal(cs_officers_quorum(officers, CS_CEREMONY_PURGE), 2);
}

/* ---- canonical bytes -------------------------------------------------------- */

static void test_canonical(void **state)
{
	(void)state;
	fixture f;
	char *a = NULL, *b = NULL;
	record_init(&f, 0);
	assert_int_equal(cs_ceremony_canonical(&f.c, &a), CS_OK);
	assert_string_equal(a, "{\"action\":\"activate\",\"created_at\":\"2025-01-02T02:54:05.000Z\","
			       "\"expires_at\":\"2025-01-02T03:54:05.000Z\",\"id\":\"" ID "\",\"node\":\"node-1\","
			       "\"nonce\":\"" NONCE "\",\"params\":{\"a\":1,\"b\":\"x\"},\"reason\":null,"
			       "\"started_by\":\"local:alice\",\"subject\":\"kid-new\",\"type\":\"credsign-ceremony/v1\"}");
	/* stable: the same bytes again; the fields it does not cover do not count */
	f.c.state = "executed";
	f.c.canonical = "whatever";
	f.c.executed_at = f.executed;
	assert_int_equal(cs_ceremony_canonical(&f.c, &b), CS_OK);
	assert_string_equal(a, b);
	free(b);

	/* every covered field changes the bytes */
	const char **fields[] = {&f.c.id,   &f.c.action, &f.c.subject,    &f.c.reason,    &f.c.params_json, &f.c.nonce,
				 &f.c.node, &f.c.created_at, &f.c.expires_at, &f.c.started_by};
	const char *other[] = {"cer_abcdefghijklmnopqrstuvwxye", "retire", "kid-old", "because",
			       "{\"a\":2,\"b\":\"x\"}", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh4", "node-2",
			       "2025-01-02T02:54:05.001Z", "2025-01-02T03:54:06.000Z", "local:bob"};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		fixture g;
		record_init(&g, 0);
		const char **slot = (const char **)((char *)&g.c + ((char *)fields[i] - (char *)&f.c));
		*slot = other[i];
		assert_int_equal(cs_ceremony_canonical(&g.c, &b), CS_OK);
		if (strcmp(a, b) == 0)
			fprintf(stderr, "field %zu does not count\n", i);
		assert_string_not_equal(a, b);
		free(b);
	}
	free(a);

	/* ASCII only: other characters escaped */
	record_init(&f, 0);
	f.c.reason = "caf\xc3\xa9";
	assert_int_equal(cs_ceremony_canonical(&f.c, &a), CS_OK);
	assert_non_null(strstr(a, "\"reason\":\"caf\\u00E9\""));
	free(a);

	/* malformed fields refused */
	const char **bad_fields[] = {&f.c.id, &f.c.action, &f.c.nonce, &f.c.expires_at, &f.c.params_json, &f.c.subject,
				     &f.c.reason, &f.c.started_by, &f.c.created_at};
	const char *bad_values[] = {"cer_x", "rotate", "short", "2025-01-02T02:54:05.000Z", "[1]", "a\nb", "\xff",
				    "", "yesterday"};
	for (size_t i = 0; i < sizeof(bad_fields) / sizeof(bad_fields[0]); i++) {
		record_init(&f, 0);
		*bad_fields[i] = bad_values[i];
		a = NULL;
		assert_int_equal(cs_ceremony_canonical(&f.c, &a), CS_E_INVALID_ARG);
		assert_null(a);
	}
}

/* ---- officers ------------------------------------------------------------------ */

static void expect_refused(const char *cert, time_t at, int historic, const char *code, const char *why)
{
	char *pem = slurp(cert);
	cs_officer_id id;
	cs_err r = historic ? cs_officers_check_historic(officers, pem, at, &id) : cs_officers_check(officers, pem, at, &id);
	if (r != CS_E_CEREMONY_REFUSED || strcmp(id.code, code) != 0 || strstr(id.why, why) == NULL)
		fprintf(stderr, "%s: %s (%s): %s\n", cert, cs_strerror(r), id.code, id.why);
	assert_int_equal(r, CS_E_CEREMONY_REFUSED);
	assert_string_equal(id.code, code);
	assert_non_null(strstr(id.why, why));
	assert_string_equal(id.name, "");
	free(pem);
}

static void test_officer_check(void **state)
{
	(void)state;
	time_t now = time(NULL);
	cs_officer_id id;
	char *pem = slurp("officers/officer-b.pem");
	assert_int_equal(cs_officers_check(officers, pem, now, &id), CS_OK);
	assert_string_equal(id.name, "officer-b");
	assert_string_equal(id.fingerprint, listed[1].fingerprint);
	assert_string_equal(id.subject, "CN=officer-b,O=credsign test");
	assert_string_equal(id.code, "");
	free(pem);

	expect_refused("officers/officer-x.pem", now, 0, "unknown_officer",
		       "unknown officer: certificate SHA256:");
	expect_refused("officers/officer-x.pem", now, 0, "unknown_officer", "not listed in ceremony.officers");
	expect_refused("officers/officer-other.pem", now, 0, "other_ca",
		       "is not issued by the officer CA (its issuer: /O=credsign test/CN=unrelated CA)");
	expect_refused("officers/officer-expired.pem", now, 0, "expired", "(CN=officer-expired,O=credsign test) expired at");
	expect_refused("officers/officer-revoked.pem", now, 0, "revoked", "is revoked by the officer CRL");
	expect_refused("officer-ca.pem", now, 0, "bad_certificate", "is a CA certificate, not an officer's");
	/* before the CRL was issued, the CRL cannot decide */
	expect_refused("officers/officer-a.pem", now - 7200, 0, "crl_unusable", "CRL is not yet valid");

	/* historic: revoked only from the revocation on */
	pem = slurp("officers/officer-revoked.pem");
	cs_officers *by_ca = NULL;
	char why[CS_CEREMONY_WHY_MAX], ca[600], crl[600];
	path_of(ca, sizeof(ca), "officer-ca.pem");
	path_of(crl, sizeof(crl), "officer-crl.pem");
	assert_int_equal(cs_officers_load_ca(ca, crl, &by_ca, why), CS_OK);
	assert_false(cs_officers_listed(by_ca));
	assert_int_equal(cs_officers_check_historic(by_ca, pem, now - OP_REVOKED_AGO - 600, &id), CS_OK);
	assert_int_equal(cs_officers_check_historic(by_ca, pem, now, &id), CS_E_CEREMONY_REFUSED);
	assert_string_equal(id.code, "revoked");
	assert_non_null(strstr(id.why, "revoked by the officer CRL since"));
	free(pem);
	/* without a list, officer-x is just a certificate of the CA */
	pem = slurp("officers/officer-x.pem");
	assert_int_equal(cs_officers_check_historic(by_ca, pem, now, &id), CS_OK);
	assert_string_equal(id.name, "");
	free(pem);
	assert_int_equal(cs_officers_check(by_ca, "not a certificate", now, &id), CS_E_CEREMONY_REFUSED);
	assert_string_equal(id.code, "bad_certificate");
	cs_officers_free(by_ca);
	/* a certificate checked before it was valid (no CRL to consult) */
	assert_int_equal(cs_officers_load_ca(ca, NULL, &by_ca, why), CS_OK);
	pem = slurp("officers/officer-a.pem");
	assert_int_equal(cs_officers_check(by_ca, pem, now - 3 * 86400, &id), CS_E_CEREMONY_REFUSED);
	assert_string_equal(id.code, "not_yet_valid");
	assert_non_null(strstr(id.why, "is not valid before"));
	free(pem);
	cs_officers_free(by_ca);

	/* a CRL of another CA, a CA that is not one, no ceremony group */
	path_of(crl, sizeof(crl), "other-crl.pem");
	assert_int_equal(cs_officers_load_ca(ca, crl, &by_ca, why), CS_E_CONFIG);
	assert_non_null(strstr(why, "not issued by the officer CA"));
	path_of(ca, sizeof(ca), "officers/officer-a.pem");
	assert_int_equal(cs_officers_load_ca(ca, NULL, &by_ca, why), CS_E_CONFIG);
	assert_non_null(strstr(why, "not a CA certificate"));
	cs_config none = {.file_given = (char *)"plain.conf"};
	assert_int_equal(cs_officers_load(&none, &by_ca, why), CS_E_CONFIG);
	assert_null(by_ca);
	assert_non_null(strstr(why, "plain.conf has no ceremony group"));

	/* cs_officer_cert_read: one certificate, re-encoded */
	char path[700], *read = NULL;
	path_of(path, sizeof(path), "officers/officer-a.pem");
	assert_int_equal(cs_officer_cert_read(path, &read, why), CS_OK);
	pem = slurp("officers/officer-a.pem");
	assert_string_equal(read, pem);
	free(read);
	free(pem);
	path_of(path, sizeof(path), "officers/officer-a.key");
	assert_int_equal(cs_officer_cert_read(path, &read, why), CS_E_INVALID_ARG);
	path_of(path, sizeof(path), "officers/none.pem");
	assert_int_equal(cs_officer_cert_read(path, &read, why), CS_E_CONFIG);
}

/* ---- approvals ------------------------------------------------------------------ */

static cs_approval_sig sign_as(const char *officer, const char *key_officer, const char *bytes)
{
	char key[700], why[CS_CEREMONY_WHY_MAX], name[128];
	snprintf(name, sizeof(name), "officers/%s.key", key_officer);
	path_of(key, sizeof(key), name);
	snprintf(name, sizeof(name), "officers/%s.pem", officer);
	char *pem = slurp(name);
	cs_officer_key k = {.key = key};
	cs_approval_sig sig;
	cs_err r = cs_approval_sign(&k, pem, (const uint8_t *)bytes, strlen(bytes), &sig, why);
	if (r != CS_OK)
		fprintf(stderr, "sign as %s with %s: %s: %s\n", officer, key_officer, cs_strerror(r), why);
	assert_int_equal(r, CS_OK);
	free(pem);
	return sig;
}

static void test_approval_sign_verify(void **state)
{
	(void)state;
	const char *bytes = "{\"id\":\"" ID "\"}", *other = "{\"id\":\"cer_abcdefghijklmnopqrstuvwxye\"}";
	char why[CS_CEREMONY_WHY_MAX], key[700];
	char *pem = slurp("officers/officer-a.pem"), *rsa_pem = slurp("officers/officer-rsa.pem");

	cs_approval_sig sig = sign_as("officer-a", "officer-a", bytes);
	assert_string_equal(sig.sig_alg, "ecdsa-with-SHA256");
	assert_int_equal(cs_approval_verify(pem, sig.sig_alg, sig.signature_b64, (const uint8_t *)bytes, strlen(bytes), why),
			 CS_OK);
	/* over other bytes: refused */
	assert_int_equal(cs_approval_verify(pem, sig.sig_alg, sig.signature_b64, (const uint8_t *)other, strlen(other), why),
			 CS_E_CEREMONY_REFUSED);
	assert_non_null(strstr(why, "not the officer's over this ceremony's canonical bytes"));
	/* with another officer's certificate: refused */
	char *pem_b = slurp("officers/officer-b.pem");
	assert_int_equal(
		cs_approval_verify(pem_b, sig.sig_alg, sig.signature_b64, (const uint8_t *)bytes, strlen(bytes), why),
		CS_E_CEREMONY_REFUSED);
	/* an algorithm that does not fit the key, a signature not base64 */
	assert_int_equal(cs_approval_verify(pem, "sha256WithRSAEncryption", sig.signature_b64, (const uint8_t *)bytes,
					    strlen(bytes), why),
			 CS_E_CEREMONY_REFUSED);
	assert_non_null(strstr(why, "does not fit the officer key"));
	assert_int_equal(cs_approval_verify(pem, sig.sig_alg, "not base64!", (const uint8_t *)bytes, strlen(bytes), why),
			 CS_E_CEREMONY_REFUSED);
	cs_approval_sig_free(&sig);

	/* RSA officers sign with PKCS#1 v1.5 */
	sig = sign_as("officer-rsa", "officer-rsa", bytes);
	assert_string_equal(sig.sig_alg, "sha256WithRSAEncryption");
	assert_int_equal(
		cs_approval_verify(rsa_pem, sig.sig_alg, sig.signature_b64, (const uint8_t *)bytes, strlen(bytes), why),
		CS_OK);
	cs_approval_sig_free(&sig);

	/* a key that is not the certificate's: refused, nothing returned */
	path_of(key, sizeof(key), "officers/officer-b.key");
	cs_officer_key k = {.key = key};
	assert_int_equal(cs_approval_sign(&k, pem, (const uint8_t *)bytes, strlen(bytes), &sig, why),
			 CS_E_CEREMONY_REFUSED);
	assert_null(sig.signature_b64);
	assert_non_null(strstr(why, "is not the key of the officer certificate"));
	/* a key file others may read: refused before it is read */
	char *key_text = slurp("officers/officer-a.key");
	path_of(key, sizeof(key), "officers/officer-a-open.key");
	ts_write_file(key, key_text, 0644);
	free(key_text);
	assert_int_equal(cs_approval_sign(&k, pem, (const uint8_t *)bytes, strlen(bytes), &sig, why),
			 CS_E_PIN_FILE_PERMS);
	assert_non_null(strstr(why, "officer-a-open.key: "));
	assert_non_null(strstr(why, "chmod 600"));
	assert_null(strstr(strstr(why, "chmod 600") + 1, "chmod 600")); /* said once */
	/* no such key file; a certificate given as key */
	path_of(key, sizeof(key), "officers/none.key");
	assert_int_equal(cs_approval_sign(&k, pem, (const uint8_t *)bytes, strlen(bytes), &sig, why), CS_E_KEY_NOT_FOUND);
	path_of(key, sizeof(key), "officers/officer-a-cert.key");
	ts_write_file(key, pem, 0600);
	assert_int_equal(cs_approval_sign(&k, pem, (const uint8_t *)bytes, strlen(bytes), &sig, why), CS_E_KEY_NOT_FOUND);
	assert_non_null(strstr(why, "not a PEM private key"));
	/* a pkcs11: key without a module to open its token */
	const char *saved = getenv("CREDSIGN_PKCS11_MODULE");
	unsetenv("CREDSIGN_PKCS11_MODULE");
	cs_officer_key t = {.key = "pkcs11:token=officer;object=approve"};
	assert_int_equal(cs_approval_sign(&t, pem, (const uint8_t *)bytes, strlen(bytes), &sig, why), CS_E_MODULE_LOAD);
	assert_non_null(strstr(why, "no PKCS#11 module"));
	if (saved != NULL)
		setenv("CREDSIGN_PKCS11_MODULE", saved, 1);
	free(pem);
	free(pem_b);
	free(rsa_pem);
}

/* An officer key in a token (pkcs11: URI): opened on its own, through the
 * provider in a fresh library context; a key of the token that is not the
 * certificate's is refused. Needs the test token (skipped without it). */
static void test_approval_token_key(void **state)
{
	(void)state;
	const char *module = getenv("CREDSIGN_TEST_MODULE"), *tokdir = getenv("CREDSIGN_TEST_TOKEN_DIR");
	if (module == NULL || tokdir == NULL) {
		skip();
		return;
	}
	char pin[600], why[CS_CEREMONY_WHY_MAX];
	snprintf(pin, sizeof(pin), "%s/user.pin", tokdir);
	cs_token_params tp = {.module = module, .token_uri = "pkcs11:token=cstest", .pin_file = pin, .pool_size = 1,
			      .read_write = 1};
	cs_token *token = NULL;
	assert_int_equal(cs_token_open(&tp, &token), CS_OK);
	static const char *const labels[] = {"officer-token", "officer-token-other"};
	EVP_PKEY *pub = NULL;
	for (size_t i = 0; i < 2; i++) {
		cs_key_ref q = {0}, ref;
		snprintf(q.label, sizeof(q.label), "%s", labels[i]);
		if (cs_token_find_key(token, &q, &ref) != CS_OK)
			assert_int_equal(cs_token_generate_p256(token, labels[i], &ref), CS_OK);
		if (i == 0)
			assert_int_equal(cs_token_public_key(token, &ref, &pub), CS_OK);
	}
	cs_token_close(token);
	assert_int_equal(op_issue(dir, "officer-token", pub), 0);
	EVP_PKEY_free(pub);

	const char *bytes = "{\"id\":\"" ID "\"}";
	char *pem = slurp("officers/officer-token.pem");
	cs_officer_key k = {.key = "pkcs11:token=cstest;object=officer-token", .module = module, .pin_file = pin};
	cs_approval_sig sig;
	cs_err r = cs_approval_sign(&k, pem, (const uint8_t *)bytes, strlen(bytes), &sig, why);
	if (r != CS_OK)
		fprintf(stderr, "%s: %s\n", cs_strerror(r), why);
	assert_int_equal(r, CS_OK);
	assert_string_equal(sig.sig_alg, "ecdsa-with-SHA256");
	assert_int_equal(cs_approval_verify(pem, sig.sig_alg, sig.signature_b64, (const uint8_t *)bytes, strlen(bytes), why),
			 CS_OK);
	cs_approval_sig_free(&sig);
	/* the token's other key is not this officer's */
	k.key = "pkcs11:token=cstest;object=officer-token-other";
	assert_int_equal(cs_approval_sign(&k, pem, (const uint8_t *)bytes, strlen(bytes), &sig, why), CS_E_CEREMONY_REFUSED);
	assert_non_null(strstr(why, "is not the key of the officer certificate"));
	/* a key the token does not hold */
	k.key = "pkcs11:token=cstest;object=no-such-officer";
	assert_int_equal(cs_approval_sign(&k, pem, (const uint8_t *)bytes, strlen(bytes), &sig, why), CS_E_KEY_NOT_FOUND);
	free(pem);
}

/* ---- quorum ---------------------------------------------------------------------- */

/* A ceremony doc (live times) with approvals by `who` (officer names;
 * "officer-a/b" signs as a with b's key ...). */
typedef struct {
	fixture f;
	cs_ceremony_doc doc;
	char *canonical;
	char *pems[8];
	cs_approval_sig sigs[8];
	char fprs[8][72];
} doc_fixture;

/* An approval with officer's certificate, key_officer's key, recorded
 * under the name `recorded`. */
static void doc_add_as(doc_fixture *d, const char *officer, const char *key_officer, const char *recorded,
		       const char *bytes)
{
	size_t i = d->doc.napprovals;
	char name[128], path[700];
	snprintf(name, sizeof(name), "officers/%s.pem", officer);
	d->pems[i] = slurp(name);
	d->sigs[i] = sign_as(officer, key_officer, bytes != NULL ? bytes : d->canonical);
	path_of(path, sizeof(path), name);
	assert_int_equal(op_fingerprint(path, d->fprs[i]), 0);
	cs_approval_record a = {
		.ceremony_id = ID,
		.officer = recorded,
		.fingerprint = d->fprs[i],
		.cert_pem = d->pems[i],
		.sig_alg = d->sigs[i].sig_alg,
		.signature_b64 = d->sigs[i].signature_b64,
		.approved_at = d->f.approved,
		.approved_by = "local:officer",
	};
	cs_ceremony_doc_on_approval(&d->doc, &a);
	assert_int_equal(d->doc.status, CS_OK);
}

static void doc_add(doc_fixture *d, const char *officer, const char *bytes)
{
	doc_add_as(d, officer, officer, officer, bytes);
}

static void doc_init(doc_fixture *d, const char *action)
{
	memset(d, 0, sizeof(*d));
	record_init(&d->f, 1);
	d->f.c.action = action;
	assert_int_equal(cs_ceremony_canonical(&d->f.c, &d->canonical), CS_OK);
	d->f.c.canonical = d->canonical;
	cs_ceremony_doc_on_ceremony(&d->doc, &d->f.c);
	assert_int_equal(d->doc.status, CS_OK);
}

static void doc_free(doc_fixture *d)
{
	for (size_t i = 0; i < 8; i++) {
		free(d->pems[i]);
		cs_approval_sig_free(&d->sigs[i]);
	}
	free(d->canonical);
	cs_ceremony_doc_free(&d->doc);
}

static cs_err quorum(doc_fixture *d, cs_quorum_report *rep)
{
	return cs_ceremony_quorum(officers, &d->doc, time(NULL), rep);
}

static void test_quorum(void **state)
{
	(void)state;
	doc_fixture d;
	cs_quorum_report rep;

	/* two distinct listed officers: met */
	doc_init(&d, "activate");
	doc_add(&d, "officer-a", NULL);
	doc_add(&d, "officer-b", NULL);
	assert_int_equal(quorum(&d, &rep), CS_OK);
	assert_int_equal(rep.required, 2);
	assert_int_equal(rep.counted, 2);
	assert_int_equal(rep.nverdicts, 2);
	assert_true(rep.verdicts[0].counted && rep.verdicts[1].counted);
	assert_string_equal(rep.verdicts[1].id.name, "officer-b");
	cs_quorum_report_free(&rep);
	doc_free(&d);

	/* one officer short */
	doc_init(&d, "activate");
	doc_add(&d, "officer-a", NULL);
	assert_int_equal(quorum(&d, &rep), CS_E_QUORUM);
	assert_int_equal(rep.counted, 1);
	assert_string_equal(rep.why, "activate needs 2 distinct valid officers, 1 approved validly");
	cs_quorum_report_free(&rep);
	doc_free(&d);

	/* the same officer twice: counted once */
	doc_init(&d, "destroy");
	doc_add(&d, "officer-a", NULL);
	doc_add(&d, "officer-a", NULL);
	assert_int_equal(quorum(&d, &rep), CS_E_QUORUM);
	assert_int_equal(rep.counted, 1);
	assert_string_equal(rep.verdicts[1].id.code, "duplicate_officer");
	assert_non_null(strstr(rep.verdicts[1].id.why, "officer officer-a"));
	cs_quorum_report_free(&rep);
	doc_free(&d);

	/* a tampered approval (a signature over other bytes) does not count */
	doc_init(&d, "compromise");
	doc_add(&d, "officer-a", NULL);
	doc_add(&d, "officer-b", "{\"tampered\":true}");
	assert_int_equal(quorum(&d, &rep), CS_E_QUORUM);
	assert_int_equal(rep.counted, 1);
	assert_false(rep.verdicts[1].counted);
	assert_string_equal(rep.verdicts[1].id.code, "bad_signature");
	cs_quorum_report_free(&rep);
	/* ... nor one signed for this ceremony but recorded for another */
	doc_add(&d, "officer-c", NULL);
	free((char *)d.doc.approvals[2].ceremony_id);
	d.doc.approvals[2].ceremony_id = strdup("cer_abcdefghijklmnopqrstuvwxye");
	assert_int_equal(quorum(&d, &rep), CS_E_QUORUM);
	assert_string_equal(rep.verdicts[2].id.code, "wrong_ceremony");
	cs_quorum_report_free(&rep);
	/* ... nor one whose recorded fingerprint is another's */
	free((char *)d.doc.approvals[2].ceremony_id);
	d.doc.approvals[2].ceremony_id = strdup(ID);
	free((char *)d.doc.approvals[2].fingerprint);
	d.doc.approvals[2].fingerprint = strdup(listed[0].fingerprint);
	assert_int_equal(quorum(&d, &rep), CS_E_QUORUM);
	assert_string_equal(rep.verdicts[2].id.code, "fingerprint_mismatch");
	cs_quorum_report_free(&rep);
	doc_free(&d);

	/* an unknown officer, one from another CA, a revoked one */
	doc_init(&d, "purge");
	doc_add(&d, "officer-a", NULL);
	doc_add(&d, "officer-x", NULL);
	doc_add(&d, "officer-other", NULL);
	doc_add(&d, "officer-revoked", NULL);
	assert_int_equal(quorum(&d, &rep), CS_E_QUORUM);
	assert_int_equal(rep.counted, 1);
	assert_string_equal(rep.verdicts[1].id.code, "unknown_officer");
	assert_string_equal(rep.verdicts[2].id.code, "other_ca");
	assert_string_equal(rep.verdicts[3].id.code, "revoked");
	cs_quorum_report_free(&rep);
	doc_free(&d);

	/* revoke: revoke_quorum (1) */
	doc_init(&d, "revoke");
	doc_add(&d, "officer-c", NULL);
	assert_int_equal(quorum(&d, &rep), CS_OK);
	assert_int_equal(rep.required, 1);
	cs_quorum_report_free(&rep);
	/* a recorded field changed after the officers signed: refused */
	free((char *)d.doc.c.subject);
	d.doc.c.subject = strdup("another-certificate");
	assert_int_equal(quorum(&d, &rep), CS_E_INVALID_ARG);
	assert_non_null(strstr(rep.why, "not those of its recorded fields"));
	cs_quorum_report_free(&rep);
	doc_free(&d);
}

/* ---- transcripts ---------------------------------------------------------------- */

static cs_err es256_sign(void *ctx, const uint8_t *input, size_t len, uint8_t raw[64])
{
	EVP_PKEY *key = ctx;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t der[80];
	size_t n = sizeof(der);
	int ok = md != NULL && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
		 EVP_DigestSign(md, der, &n, input, len) == 1;
	EVP_MD_CTX_free(md);
	return ok ? cs_ecdsa_der_to_raw(der, n, raw) : CS_E_CRYPTO;
}

static json_t *jwk(EVP_PKEY *key, char kid[44])
{
	json_t *j = NULL;
	assert_int_equal(cs_jwk_thumbprint(key, kid), CS_OK);
	assert_int_equal(cs_jwk_from_pkey(key, &j), CS_OK);
	return j;
}

/* A rollover statement (RFC 7515 general JSON) over claims, signed by
 * each key with its kid. */
static char *rollover(json_t *claims, EVP_PKEY **keys, const char **kids, size_t n)
{
	json_t *st = json_object(), *sigs = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *hdr = json_pack("{s:s,s:s,s:s}", "alg", "ES256", "kid", kids[i], "typ", "credsign-rollover+jws");
		char *jws = NULL;
		assert_int_equal(cs_jws_es256_sign(hdr, claims, es256_sign, keys[i], &jws), CS_OK);
		char *dot1 = strchr(jws, '.'), *dot2 = strrchr(jws, '.');
		*dot1 = *dot2 = '\0';
		json_object_set_new(st, "payload", json_string(dot1 + 1));
		json_array_append_new(sigs, json_pack("{s:s,s:s}", "protected", jws, "signature", dot2 + 1));
		free(jws);
		json_decref(hdr);
	}
	json_object_set_new(st, "signatures", sigs);
	char *text = json_dumps(st, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(st);
	return text;
}

typedef struct {
	doc_fixture d;
	EVP_PKEY *old_key, *new_key;
	char old_kid[44], new_kid[44];
	json_t *jwks;
	json_t *claims; /* the rollover statement's claims */
} activation;

/* An executed activate: approved by a and b, with its rollover statement
 * signed by the old and the new key (old_signs 1), by the new key alone
 * (0), or by the new key alone with no old key (-1, old_kid null). */
static void activation_init(activation *a, int old_signs, EVP_PKEY *forger)
{
	memset(a, 0, sizeof(*a));
	a->old_key = EVP_EC_gen("P-256");
	a->new_key = EVP_EC_gen("P-256");
	json_t *old_jwk = jwk(a->old_key, a->old_kid), *new_jwk = jwk(a->new_key, a->new_kid);
	a->jwks = json_pack("{s:[o]}", "keys", old_jwk);
	memset(&a->d, 0, sizeof(a->d));
	record_init(&a->d.f, 1);
	a->d.f.c.subject = a->new_kid;
	assert_int_equal(cs_ceremony_canonical(&a->d.f.c, &a->d.canonical), CS_OK);
	a->d.f.c.canonical = a->d.canonical;
	a->d.f.c.state = "executed";
	a->d.f.c.executed_at = a->d.f.executed;
	a->d.f.c.executed_by = "local:alice";
	a->d.f.c.result_json = "{\"activated\":\"new\",\"retired\":\"old\"}";
	cs_ceremony_doc_on_ceremony(&a->d.doc, &a->d.f.c);
	doc_add(&a->d, "officer-a", NULL);
	doc_add(&a->d, "officer-b", NULL);
	json_t *claims = json_pack("{s:s,s:s,s:s,s:o,s:s,s:[{s:s,s:s,s:s},{s:s,s:s,s:s}],s:s}", "type",
				   "credsign-rollover/v1", "old_kid", a->old_kid, "new_kid", a->new_kid, "new_jwk", new_jwk,
				   "ceremony_id", ID, "approvals", "officer", "officer-a", "fingerprint", a->d.fprs[0],
				   "approved_at", a->d.f.approved, "officer", "officer-b", "fingerprint", a->d.fprs[1],
				   "approved_at", a->d.f.approved, "time", a->d.f.executed);
	assert_non_null(claims);
	if (old_signs < 0) /* no previous key: old_kid null, the new key signs alone */
		json_object_set_new(claims, "old_kid", json_null());
	EVP_PKEY *keys[2] = {a->old_key, forger != NULL ? forger : a->new_key};
	const char *kids[2] = {a->old_kid, a->new_kid};
	a->d.doc.rollover_json = old_signs > 0 ? rollover(claims, keys, kids, 2) : rollover(claims, keys + 1, kids + 1, 1);
	a->claims = claims;
}

static void activation_free(activation *a)
{
	doc_free(&a->d);
	EVP_PKEY_free(a->old_key);
	EVP_PKEY_free(a->new_key);
	json_decref(a->jwks);
	json_decref(a->claims);
}

static cs_err verify_text(const char *text, const json_t *jwks, cs_transcript_report *rep)
{
	cs_err r = cs_ceremony_transcript_verify(text, strlen(text), officers, jwks, rep);
	if (r != CS_OK)
		fprintf(stderr, "(expected or not) %s: %s\n", cs_strerror(r), rep->why);
	return r;
}

/* Replace the first `from` in text by `to` (same buffer when it fits). */
static char *edit(const char *text, const char *from, const char *to)
{
	const char *at = strstr(text, from);
	assert_non_null(at);
	size_t n = strlen(text) - strlen(from) + strlen(to) + 1;
	char *out = malloc(n);
	assert_non_null(out);
	snprintf(out, n, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
	return out;
}

static void test_transcript(void **state)
{
	(void)state;
	activation a;
	cs_transcript_report rep;
	char *text = NULL, *edited;
	activation_init(&a, 1, NULL);
	assert_int_equal(cs_ceremony_transcript(&a.d.doc, 2, &text), CS_OK);
	/* readable: who, what, when, fingerprints, signatures */
	assert_non_null(strstr(text, "Ceremony:     " ID "\n"));
	assert_non_null(strstr(text, "Action:       activate\n"));
	assert_non_null(strstr(text, "Started by:   local:alice\n"));
	assert_non_null(strstr(text, "Subject DN:   CN=officer-b,O=credsign test\n"));
	char line[200];
	snprintf(line, sizeof(line), "Fingerprint:  %s\n", a.d.fprs[0]);
	assert_non_null(strstr(text, line));
	assert_non_null(strstr(text, "Algorithm:    ecdsa-with-SHA256\n"));
	assert_non_null(strstr(text, "Executed by:  local:alice\n"));
	assert_non_null(strstr(text, "Rollover signature 2:\n"));
	assert_non_null(strstr(text, "\n" CS_TRANSCRIPT_BEGIN "\n"));

	/* round trip: verifies, the old key's signature with the JWKS */
	assert_int_equal(verify_text(text, a.jwks, &rep), CS_OK);
	assert_string_equal(rep.id, ID);
	assert_int_equal(rep.counted, 2);
	assert_int_equal(rep.required, 2);
	assert_true(rep.rollover_new_ok);
	assert_int_equal(rep.rollover_old, CS_ROLLOVER_OLD_VERIFIED);
	assert_true(rep.approvals_checked && rep.rollover_checked && rep.listed);
	cs_transcript_report_free(&rep);
	assert_int_equal(verify_text(text, NULL, &rep), CS_OK);
	assert_int_equal(rep.rollover_old, CS_ROLLOVER_OLD_NO_JWKS);
	assert_true(rep.rollover_checked);
	cs_transcript_report_free(&rep);
	/* with the officers of a CA file only */
	cs_officers *by_ca = NULL;
	char why[CS_CEREMONY_WHY_MAX], ca[600];
	path_of(ca, sizeof(ca), "officer-ca.pem");
	assert_int_equal(cs_officers_load_ca(ca, NULL, &by_ca, why), CS_OK);
	assert_int_equal(cs_ceremony_transcript_verify(text, strlen(text), by_ca, a.jwks, &rep), CS_OK);
	assert_false(rep.listed); /* the names recorded were not checked: the caller says so */
	cs_transcript_report_free(&rep);
	/* a transcript recorded with a higher quorum than it has */
	char *q3 = NULL;
	assert_int_equal(cs_ceremony_transcript(&a.d.doc, 3, &q3), CS_OK);
	assert_int_equal(verify_text(q3, a.jwks, &rep), CS_E_QUORUM);
	/* stopped at the quorum: the rollover statement was not looked at, and
	 * the report does not say it was (L8) */
	assert_true(rep.approvals_checked);
	assert_false(rep.rollover_checked);
	assert_false(rep.rollover_new_ok);
	assert_int_equal(rep.rollover_old, CS_ROLLOVER_OLD_UNCHECKED);
	cs_transcript_report_free(&rep);
	free(q3);

	/* an edited readable line fails */
	edited = edit(text, "Started by:   local:alice", "Started by:   local:mallory");
	assert_int_equal(verify_text(edited, a.jwks, &rep), CS_E_SIGNATURE_INVALID);
	assert_non_null(strstr(rep.why, "line 11 of the readable record is not what the signed record says"));
	/* stopped before the approvals: nothing of them claimed */
	assert_false(rep.approvals_checked);
	assert_false(rep.rollover_checked);
	assert_int_equal(rep.nverdicts, 0);
	assert_int_equal(rep.rollover_old, CS_ROLLOVER_OLD_UNCHECKED);
	cs_transcript_report_free(&rep);
	free(edited);
	/* ... a line added */
	edited = edit(text, "\nApproval 1 of 2\n", "\nNote: approved by the board\n\nApproval 1 of 2\n");
	assert_int_equal(verify_text(edited, NULL, &rep), CS_E_SIGNATURE_INVALID);
	cs_transcript_report_free(&rep);
	free(edited);
	/* ... the armor damaged */
	edited = edit(text, CS_TRANSCRIPT_END, "-----END CEREMONY RECORD-----");
	assert_int_equal(verify_text(edited, NULL, &rep), CS_E_INVALID_ARG);
	cs_transcript_report_free(&rep);
	free(edited);
	free(text);

	/* an edited record, re-rendered to match: the canonical bytes catch it */
	free((char *)a.d.doc.c.subject);
	a.d.doc.c.subject = strdup("kid-of-the-attacker");
	assert_int_equal(cs_ceremony_transcript(&a.d.doc, 2, &text), CS_OK);
	assert_int_equal(verify_text(text, NULL, &rep), CS_E_SIGNATURE_INVALID);
	assert_non_null(strstr(rep.why, "not the canonical bytes"));
	cs_transcript_report_free(&rep);
	free(text);
	free((char *)a.d.doc.c.subject);
	a.d.doc.c.subject = strdup(a.new_kid);

	/* swapped signatures: each officer's signature under the other's name */
	const char *sa = a.d.doc.approvals[0].signature_b64;
	a.d.doc.approvals[0].signature_b64 = a.d.doc.approvals[1].signature_b64;
	a.d.doc.approvals[1].signature_b64 = sa;
	assert_int_equal(cs_ceremony_transcript(&a.d.doc, 2, &text), CS_OK);
	assert_int_equal(verify_text(text, NULL, &rep), CS_E_SIGNATURE_INVALID);
	assert_non_null(strstr(rep.why, "approval 1: approval by officer-a"));
	assert_string_equal(rep.verdicts[0].id.code, "bad_signature");
	cs_transcript_report_free(&rep);
	free(text);
	a.d.doc.approvals[1].signature_b64 = a.d.doc.approvals[0].signature_b64;
	a.d.doc.approvals[0].signature_b64 = sa;

	/* an approval recorded after the ceremony expired */
	const char *approved = a.d.doc.approvals[1].approved_at;
	a.d.doc.approvals[1].approved_at = a.d.f.expires;
	char late[32];
	time_t exp;
	assert_int_equal(cs_ceremony_time_parse(a.d.f.expires, &exp), CS_OK);
	rfc3339(exp + 1, late);
	a.d.doc.approvals[1].approved_at = late;
	assert_int_equal(cs_ceremony_transcript(&a.d.doc, 2, &text), CS_OK);
	assert_int_equal(verify_text(text, NULL, &rep), CS_E_SIGNATURE_INVALID);
	assert_string_equal(rep.verdicts[1].id.code, "bad_record");
	cs_transcript_report_free(&rep);
	free(text);
	/* ... and one recorded after the execution (a clock set back) */
	a.d.doc.approvals[1].approved_at = a.d.f.expires;
	assert_int_equal(cs_ceremony_transcript(&a.d.doc, 2, &text), CS_OK);
	assert_int_equal(verify_text(text, NULL, &rep), CS_E_SIGNATURE_INVALID);
	assert_string_equal(rep.verdicts[1].id.code, "bad_record");
	assert_non_null(strstr(rep.verdicts[1].id.why, "after the execution"));
	cs_transcript_report_free(&rep);
	free(text);
	a.d.doc.approvals[1].approved_at = approved;
	cs_officers_free(by_ca);
	activation_free(&a);

	/* a rollover whose "new key" signature is by another key */
	EVP_PKEY *forger = EVP_EC_gen("P-256");
	activation_init(&a, 1, forger);
	assert_int_equal(cs_ceremony_transcript(&a.d.doc, 2, &text), CS_OK);
	assert_int_equal(verify_text(text, a.jwks, &rep), CS_E_SIGNATURE_INVALID);
	assert_non_null(strstr(rep.why, "does not verify"));
	cs_transcript_report_free(&rep);
	free(text);
	activation_free(&a);
	EVP_PKEY_free(forger);

	/* the old key's signature missing: only a compromised old key excuses it */
	activation_init(&a, 0, NULL);
	assert_int_equal(cs_ceremony_transcript(&a.d.doc, 2, &text), CS_OK);
	assert_int_equal(verify_text(text, a.jwks, &rep), CS_E_SIGNATURE_INVALID);
	assert_non_null(strstr(rep.why, "lacks the old key"));
	cs_transcript_report_free(&rep);
	json_object_set_new(json_array_get(json_object_get(a.jwks, "keys"), 0), "status", json_string("compromised"));
	assert_int_equal(verify_text(text, a.jwks, &rep), CS_OK);
	assert_int_equal(rep.rollover_old, CS_ROLLOVER_OLD_COMPROMISED);
	cs_transcript_report_free(&rep);
	free(text);
	activation_free(&a);

	/* no previous key (old_kid null): nothing of an old key to check */
	activation_init(&a, -1, NULL);
	assert_int_equal(cs_ceremony_transcript(&a.d.doc, 2, &text), CS_OK);
	assert_int_equal(verify_text(text, NULL, &rep), CS_OK);
	assert_true(rep.rollover_checked && rep.rollover_new_ok);
	assert_int_equal(rep.rollover_old, CS_ROLLOVER_OLD_NONE);
	cs_transcript_report_free(&rep);
	free(text);
	activation_free(&a);

	/* the old key's signature checked against the JWKS: another key there fails */
	activation_init(&a, 1, NULL);
	assert_int_equal(cs_ceremony_transcript(&a.d.doc, 2, &text), CS_OK);
	EVP_PKEY *stranger = EVP_EC_gen("P-256");
	char skid[44];
	json_t *sj = jwk(stranger, skid);
	json_object_set_new(sj, "kid", json_string(a.old_kid)); /* claims the old kid */
	json_t *bad_jwks = json_pack("{s:[o]}", "keys", sj);
	assert_int_equal(verify_text(text, bad_jwks, &rep), CS_E_SIGNATURE_INVALID);
	cs_transcript_report_free(&rep);
	json_decref(bad_jwks);
	EVP_PKEY_free(stranger);
	free(text);
	activation_free(&a);

	/* not executed: nothing to verify yet */
	doc_fixture d;
	doc_init(&d, "retire");
	doc_add(&d, "officer-a", NULL);
	doc_add(&d, "officer-c", NULL);
	assert_int_equal(cs_ceremony_transcript(&d.doc, 2, &text), CS_OK);
	assert_non_null(strstr(text, "\nNot executed\n"));
	assert_int_equal(verify_text(text, NULL, &rep), CS_E_SIGNATURE_INVALID);
	assert_non_null(strstr(rep.why, "was not executed"));
	cs_transcript_report_free(&rep);
	free(text);
	doc_free(&d);
}

/* ---- refusals: officer keys, certificates, rollover statements, record blocks ---- */

/* key written as a private PEM file DIR/officers/NAME.key (0600); its path in out. */
static void write_key(const char *name, EVP_PKEY *key, char *out, size_t len)
{
	char rel[128];
	snprintf(rel, sizeof(rel), "officers/%s.key", name);
	path_of(out, len, rel);
	FILE *f = fopen(out, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(out, 0600), 0);
}

/* Keys the ceremony refuses (RSA under 2048 bits, a curve other than
 * P-256/384/521, a key neither EC nor RSA): signing with one is refused
 * before anything is signed, and a certificate for one is refused as an
 * approval's; a certificate with text after it, an empty one, a signature
 * not in canonical base64, no key at all: each refused, nothing returned. */
static void test_approval_refusals(void **state)
{
	(void)state;
	const char *bytes = "{\"id\":\"" ID "\"}";
	char why[CS_CEREMONY_WHY_MAX], key[700];
	char *pem = slurp("officers/officer-a.pem");
	cs_approval_sig sig;
	struct {
		const char *name;
		EVP_PKEY *key;
		const char *why;
	} weak[] = {
		{"weak-rsa", EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024), "officer key RSA 1024 bits: at least 2048"},
		{"weak-k1", EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1"), "officer key on curve 'secp256k1'"},
		{"weak-ed", EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"), "officer key of type ED25519: EC or RSA only"},
	};
	for (size_t i = 0; i < sizeof(weak) / sizeof(weak[0]); i++) {
		assert_non_null(weak[i].key);
		write_key(weak[i].name, weak[i].key, key, sizeof(key));
		cs_officer_key k = {.key = key};
		memset(&sig, 0x5a, sizeof(sig));
		assert_int_equal(cs_approval_sign(&k, pem, (const uint8_t *)bytes, strlen(bytes), &sig, why),
				 CS_E_CEREMONY_REFUSED);
		assert_non_null(strstr(why, weak[i].why));
		assert_null(sig.signature_b64);
		assert_null(sig.sig_alg);
		/* a certificate for such a key, from the officer CA: refused as an approval's */
		char rel[128], *wpem;
		assert_int_equal(op_issue(dir, weak[i].name, weak[i].key), 0);
		snprintf(rel, sizeof(rel), "officers/%s.pem", weak[i].name);
		wpem = slurp(rel);
		assert_int_equal(cs_approval_verify(wpem, "ecdsa-with-SHA256", "AAAA", (const uint8_t *)bytes, strlen(bytes),
						    why),
				 CS_E_CEREMONY_REFUSED);
		assert_non_null(strstr(why, weak[i].why));
		free(wpem);
		EVP_PKEY_free(weak[i].key);
	}

	/* no key, an empty key name, a certificate that is not one */
	path_of(key, sizeof(key), "officers/officer-a.key");
	cs_officer_key good = {.key = key}, empty = {.key = ""};
	assert_int_equal(cs_approval_sign(NULL, pem, (const uint8_t *)bytes, strlen(bytes), &sig, why), CS_E_INVALID_ARG);
	assert_string_equal(why, "no officer key given");
	assert_int_equal(cs_approval_sign(&empty, pem, (const uint8_t *)bytes, strlen(bytes), &sig, why),
			 CS_E_INVALID_ARG);
	assert_string_equal(why, "no officer key given");
	assert_null(sig.signature_b64);
	assert_int_equal(cs_approval_sign(&good, "", (const uint8_t *)bytes, strlen(bytes), &sig, why), CS_E_INVALID_ARG);
	assert_string_equal(why, "the officer certificate is not one PEM certificate");
	assert_null(sig.signature_b64);

	/* the real signature verifies; the same certificate with text after it
	 * (or with blank space after it, accepted), an empty one: refused */
	sig = sign_as("officer-a", "officer-a", bytes);
	size_t n = strlen(pem) + 64;
	char *trail = malloc(n);
	assert_non_null(trail);
	snprintf(trail, n, "%s \t\r\n", pem);
	assert_int_equal(cs_approval_verify(trail, sig.sig_alg, sig.signature_b64, (const uint8_t *)bytes, strlen(bytes),
					    why),
			 CS_OK);
	snprintf(trail, n, "%s\nnot part of it\n", pem);
	assert_int_equal(cs_approval_verify(trail, sig.sig_alg, sig.signature_b64, (const uint8_t *)bytes, strlen(bytes),
					    why),
			 CS_E_CEREMONY_REFUSED);
	assert_string_equal(why, "the officer certificate is not one PEM certificate");
	assert_int_equal(cs_approval_verify("", sig.sig_alg, sig.signature_b64, (const uint8_t *)bytes, strlen(bytes), why),
			 CS_E_CEREMONY_REFUSED);
	assert_string_equal(why, "the officer certificate is not one PEM certificate");
	free(trail);
	/* a signature with a character outside base64, or not in its canonical form */
	char *bad = strdup(sig.signature_b64);
	assert_non_null(bad);
	bad[3] = '!';
	assert_int_equal(cs_approval_verify(pem, sig.sig_alg, bad, (const uint8_t *)bytes, strlen(bytes), why),
			 CS_E_CEREMONY_REFUSED);
	assert_string_equal(why, "the signature is not base64");
	assert_int_equal(cs_approval_verify(pem, sig.sig_alg, "AB==", (const uint8_t *)bytes, strlen(bytes), why),
			 CS_E_CEREMONY_REFUSED);
	assert_string_equal(why, "the signature is not base64");
	assert_int_equal(cs_approval_verify(pem, NULL, sig.signature_b64, (const uint8_t *)bytes, strlen(bytes), why),
			 CS_E_CEREMONY_REFUSED);
	assert_non_null(strstr(why, "signature algorithm '' does not fit the officer key (ecdsa-with-SHA256)"));
	free(bad);
	cs_approval_sig_free(&sig);
	free(pem);
}

/* A rollover statement for the activation a over a copy of its claims
 * with member set to value (NULL: removed), signed by the old key (signers
 * bit 1) and the new key (bit 2) with the protected header's typ. */
static char *statement_with(const activation *a, const char *member, json_t *value, int signers, const char *typ)
{
	json_t *c = json_deep_copy(a->claims), *st = json_object(), *sigs = json_array();
	assert_non_null(c);
	if (member != NULL && value != NULL)
		json_object_set_new(c, member, value);
	else if (member != NULL)
		json_object_del(c, member);
	EVP_PKEY *keys[2] = {a->old_key, a->new_key};
	const char *kids[2] = {a->old_kid, a->new_kid};
	for (int i = 0; i < 2; i++) {
		if (!(signers & (1 << i)))
			continue;
		json_t *hdr = json_pack("{s:s,s:s,s:s}", "alg", "ES256", "kid", kids[i], "typ", typ);
		char *jws = NULL;
		assert_int_equal(cs_jws_es256_sign(hdr, c, es256_sign, keys[i], &jws), CS_OK);
		char *dot1 = strchr(jws, '.'), *dot2 = strrchr(jws, '.');
		*dot1 = *dot2 = '\0';
		json_object_set_new(st, "payload", json_string(dot1 + 1));
		json_array_append_new(sigs, json_pack("{s:s,s:s}", "protected", jws, "signature", dot2 + 1));
		free(jws);
		json_decref(hdr);
	}
	json_object_set_new(st, "signatures", sigs);
	char *text = json_dumps(st, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(st);
	json_decref(c);
	return text;
}

/* The activation's transcript with statement (taken; NULL: none) as its
 * rollover statement, verified with jwks: it fails with why, and the
 * report does not claim the rollover checked. */
static void rollover_refused(activation *a, char *statement, const json_t *jwks, const char *why)
{
	cs_transcript_report rep;
	char *text = NULL;
	free(a->d.doc.rollover_json);
	a->d.doc.rollover_json = statement;
	assert_int_equal(cs_ceremony_transcript(&a->d.doc, 2, &text), CS_OK);
	assert_int_equal(verify_text(text, jwks, &rep), CS_E_SIGNATURE_INVALID);
	assert_non_null(strstr(rep.why, why));
	assert_true(rep.approvals_checked);
	assert_false(rep.rollover_checked);
	cs_transcript_report_free(&rep);
	free(text);
}

/* A statement (JSON text) with one member of its first signature set to
 * value (NULL: removed), or the statement's own member when sig_member is NULL. */
static char *statement_edit(char *statement, const char *sig_member, const char *member, json_t *value)
{
	json_t *st = json_loads(statement, 0, NULL);
	assert_non_null(st);
	free(statement);
	json_t *obj = sig_member != NULL ? json_array_get(json_object_get(st, "signatures"), 0) : st;
	const char *m = sig_member != NULL ? sig_member : member;
	if (value != NULL)
		json_object_set_new(obj, m, value);
	else
		json_object_del(obj, m);
	char *text = json_dumps(st, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(st);
	return text;
}

/* An executed activation whose rollover statement is not what the record
 * says: another type, no old_kid, another ceremony or key, no new_jwk, an
 * approval the record does not count, not signed by the new key, a
 * signature by an unknown key, with another typ or no protected header, a
 * payload not base64url, no signatures array, the old key missing from
 * the JWKS, no statement at all: each fails, naming what is wrong. */
static void test_rollover_refusals(void **state)
{
	(void)state;
	activation a;
	activation_init(&a, 1, NULL);
	const char *typ = "credsign-rollover+jws";
	const char *not_st = "the rollover statement is not a credsign-rollover/v1 statement";
	/* the statement as made verifies (the baseline of every edit below) */
	char *text = NULL;
	cs_transcript_report rep;
	free(a.d.doc.rollover_json);
	a.d.doc.rollover_json = statement_with(&a, NULL, NULL, 3, typ);
	assert_int_equal(cs_ceremony_transcript(&a.d.doc, 2, &text), CS_OK);
	assert_int_equal(verify_text(text, a.jwks, &rep), CS_OK);
	assert_true(rep.rollover_checked);
	cs_transcript_report_free(&rep);
	free(text);

	rollover_refused(&a, statement_with(&a, "type", json_string("credsign-rollover/v2"), 3, typ), a.jwks, not_st);
	rollover_refused(&a, statement_with(&a, "old_kid", NULL, 3, typ), a.jwks, not_st);
	rollover_refused(&a, statement_with(&a, "old_kid", json_integer(7), 3, typ), a.jwks, not_st);
	rollover_refused(&a, statement_edit(statement_with(&a, NULL, NULL, 3, typ), NULL, "payload", json_string("@@")),
			 a.jwks, not_st);
	rollover_refused(&a, statement_edit(statement_with(&a, NULL, NULL, 3, typ), NULL, "signatures", json_object()),
			 a.jwks, not_st);
	rollover_refused(&a, statement_with(&a, "ceremony_id", json_string("cer_zzzzzzzzzzzzzzzzzzzzzzzzzz"), 3, typ),
			 a.jwks, "is for ceremony cer_zzzzzzzzzzzzzzzzzzzzzzzzzz and key");
	rollover_refused(&a, statement_with(&a, "new_kid", json_string("kid-other"), 3, typ), a.jwks,
			 "and key kid-other, not " ID);
	rollover_refused(&a, statement_with(&a, "new_jwk", NULL, 3, typ), a.jwks, "new_jwk is not the P-256 key");
	/* an approval by officer-c, who did not approve */
	json_t *named = json_pack("[{s:s,s:s,s:s}]", "officer", "officer-c", "fingerprint", listed[2].fingerprint,
				  "approved_at", a.d.f.approved);
	rollover_refused(&a, statement_with(&a, "approvals", named, 3, typ), a.jwks,
			 "names approval 1, not a valid one of the record");
	/* officer-a's fingerprint recorded under officer-b's name */
	named = json_pack("[{s:s,s:s,s:s}]", "officer", "officer-b", "fingerprint", a.d.fprs[0], "approved_at",
			  a.d.f.approved);
	rollover_refused(&a, statement_with(&a, "approvals", named, 3, typ), a.jwks,
			 "names approval 1, not a valid one of the record");
	/* the old key alone */
	rollover_refused(&a, statement_with(&a, NULL, NULL, 1, typ), a.jwks,
			 "the rollover statement is not signed by the new key");
	/* the new key's signature under another typ */
	rollover_refused(&a, statement_with(&a, NULL, NULL, 2, "JWT"), a.jwks, "rollover signature 1 (key ");
	/* a signature without its protected header, or with a kid that is neither key's */
	rollover_refused(&a, statement_edit(statement_with(&a, NULL, NULL, 3, typ), "protected", NULL, NULL), a.jwks,
			 "rollover signature 1 (key ?) does not verify");
	rollover_refused(&a, statement_edit(statement_with(&a, NULL, NULL, 3, typ), "signature", NULL, NULL), a.jwks,
			 "rollover signature 1 (key ");
	{
		/* a protected header naming an unknown kid (one with a line break: shown as ?) */
		json_t *hdr = json_pack("{s:s,s:s,s:s}", "alg", "ES256", "kid", "kid\nforged", "typ", typ);
		char *jws = NULL;
		assert_int_equal(cs_jws_es256_sign(hdr, a.claims, es256_sign, a.new_key, &jws), CS_OK);
		*strchr(jws, '.') = '\0';
		rollover_refused(&a,
				 statement_edit(statement_with(&a, NULL, NULL, 3, typ), "protected", NULL, json_string(jws)),
				 a.jwks, "rollover signature 1 (key ?) does not verify");
		free(jws);
		json_decref(hdr);
	}
	/* the old key not in the JWKS given */
	json_t *other = json_pack("{s:[]}", "keys");
	rollover_refused(&a, statement_with(&a, NULL, NULL, 3, typ), other, "rollover signature 1 (key ");
	json_decref(other);
	/* an activation without its statement */
	rollover_refused(&a, NULL, a.jwks, "the activation carries no rollover statement");
	activation_free(&a);
}

/* A transcript: the readable text, then the record block of raw (base64 in
 * lines of line_len, or block verbatim when given). malloc'd. */
static char *transcript_of(const char *raw, size_t raw_len, size_t line_len, const char *block)
{
	size_t cap = 4 * raw_len + 4096 + (block != NULL ? strlen(block) : 0);
	char *b64 = malloc(4 * ((raw_len + 2) / 3) + 1), *out = malloc(cap);
	assert_non_null(b64);
	assert_non_null(out);
	EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)raw, (int)raw_len);
	size_t o = (size_t)snprintf(out, cap, "Ceremony record\n\n" CS_TRANSCRIPT_BEGIN "\n");
	if (block != NULL) {
		o += (size_t)snprintf(out + o, cap - o, "%s", block);
	} else {
		for (size_t i = 0, n = strlen(b64); i < n; i += line_len)
			o += (size_t)snprintf(out + o, cap - o, "%.*s\n", (int)line_len, b64 + i);
	}
	snprintf(out + o, cap - o, CS_TRANSCRIPT_END "\n");
	free(b64);
	return out;
}

static void block_refused(const char *text, size_t len, const char *why)
{
	cs_transcript_report rep;
	assert_int_equal(cs_ceremony_transcript_verify(text, len, officers, NULL, &rep), CS_E_INVALID_ARG);
	if (strstr(rep.why, why) == NULL)
		fprintf(stderr, "refused: %s\nexpected: %s\n", rep.why, why);
	assert_non_null(strstr(rep.why, why));
	assert_false(rep.approvals_checked);
	assert_false(rep.rollover_checked);
	assert_int_equal(rep.nverdicts, 0);
	cs_transcript_report_free(&rep);
}

/* Transcripts that are not one: empty, with a NUL byte, no record block,
 * a block not in lines of 64, not canonical base64, not a ceremony record,
 * a record missing its parts; a real one with one more line break still
 * verifies, with two it does not. */
static void test_transcript_block(void **state)
{
	(void)state;
	const char *lines = "the record block is not base64 in lines of 64";
	block_refused("x", 0, "the transcript is empty or too large");
	block_refused("Ceremony\0record\n", 16, "the transcript holds a NUL byte");
	block_refused("Ceremony record\n", 16, "no " CS_TRANSCRIPT_BEGIN " block");

	static const char other[] = "{\"type\":\"credsign-other/v1\",\"ceremony\":{},\"padding\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}";
	char *t = transcript_of(other, strlen(other), 65, NULL);
	block_refused(t, strlen(t), lines);
	free(t);
	t = transcript_of(other, strlen(other), 60, NULL); /* a first line shorter than 64 */
	block_refused(t, strlen(t), lines);
	free(t);
	t = transcript_of(NULL, 0, 64, "\n");
	block_refused(t, strlen(t), lines);
	free(t);
	t = transcript_of(NULL, 0, 64, "AAAA"); /* no line break before the END line */
	block_refused(t, strlen(t), lines);
	free(t);
	t = transcript_of(NULL, 0, 64, "AAA!\n");
	block_refused(t, strlen(t), "the record block is not base64");
	free(t);
	t = transcript_of(NULL, 0, 64, "AB==\n"); /* decodes, but is not the canonical form */
	block_refused(t, strlen(t), "the record block is not base64");
	free(t);
	t = transcript_of(other, strlen(other), 64, NULL);
	block_refused(t, strlen(t), "the record block is not a credsign-ceremony-record/v1 record");
	free(t);
	t = transcript_of("[1,2]", 5, 64, NULL);
	block_refused(t, strlen(t), "the record block is not a credsign-ceremony-record/v1 record");
	free(t);
	static const char dup[] = "{\"type\":\"credsign-ceremony-record/v1\",\"type\":\"credsign-ceremony-record/v1\"}";
	t = transcript_of(dup, strlen(dup), 64, NULL);
	block_refused(t, strlen(t), "the record block is not a credsign-ceremony-record/v1 record");
	free(t);
	static const char bare[] = "{\"type\":\"credsign-ceremony-record/v1\"}";
	t = transcript_of(bare, strlen(bare), 64, NULL);
	block_refused(t, strlen(t), "the record block is not a complete record");
	free(t);

	/* a real transcript: one more line break at its end is accepted, two are not */
	activation a;
	cs_transcript_report rep;
	char *text = NULL;
	activation_init(&a, 1, NULL);
	assert_int_equal(cs_ceremony_transcript(&a.d.doc, 2, &text), CS_OK);
	size_t n = strlen(text);
	char *more = malloc(n + 3);
	assert_non_null(more);
	snprintf(more, n + 3, "%s\n", text);
	assert_int_equal(verify_text(more, a.jwks, &rep), CS_OK);
	assert_true(rep.rollover_checked);
	cs_transcript_report_free(&rep);
	snprintf(more, n + 3, "%s\n\n", text);
	block_refused(more, strlen(more), "does not end with " CS_TRANSCRIPT_END);
	free(more);
	free(text);

	/* executed before it was created: refused before its approvals are looked at */
	char before[32];
	time_t created;
	assert_int_equal(cs_ceremony_time_parse(a.d.f.created, &created), CS_OK);
	rfc3339(created - 1, before);
	free((char *)a.d.doc.c.executed_at);
	a.d.doc.c.executed_at = strdup(before);
	assert_int_equal(cs_ceremony_transcript(&a.d.doc, 2, &text), CS_OK);
	assert_int_equal(verify_text(text, a.jwks, &rep), CS_E_SIGNATURE_INVALID);
	assert_non_null(strstr(rep.why, "outside the ceremony's"));
	assert_false(rep.approvals_checked);
	cs_transcript_report_free(&rep);
	free(text);
	activation_free(&a);
}

/* ---- officers distinct by public key (L7) ---------------------------------------- */

/* officer-a's key under a second certificate, "officer-a-2027" (made once). */
static void reissue_officer_a(void)
{
	char path[700];
	path_of(path, sizeof(path), "officers/officer-a-2027.pem");
	struct stat st;
	if (stat(path, &st) == 0)
		return;
	path_of(path, sizeof(path), "officers/officer-a.key");
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(key);
	assert_int_equal(op_issue(dir, "officer-a-2027", key), 0);
	EVP_PKEY_free(key);
}

static void executed_init(doc_fixture *d, const char *action)
{
	memset(d, 0, sizeof(*d));
	record_init(&d->f, 1);
	d->f.c.action = action;
	assert_int_equal(cs_ceremony_canonical(&d->f.c, &d->canonical), CS_OK);
	d->f.c.canonical = d->canonical;
	d->f.c.state = "executed";
	d->f.c.executed_at = d->f.executed;
	d->f.c.executed_by = "local:alice";
	d->f.c.result_json = "{\"action\":\"retire\"}";
	cs_ceremony_doc_on_ceremony(&d->doc, &d->f.c);
	assert_int_equal(d->doc.status, CS_OK);
}

static void test_officer_same_key(void **state)
{
	(void)state;
	reissue_officer_a();
	char *pem_a = slurp("officers/officer-a.pem"), *pem_a2 = slurp("officers/officer-a-2027.pem");
	char *pem_b = slurp("officers/officer-b.pem");
	cs_officer_id a, a2, b;
	assert_int_equal(cs_officer_cert_ids(pem_a, &a), CS_OK);
	assert_int_equal(cs_officer_cert_ids(pem_a2, &a2), CS_OK);
	assert_int_equal(cs_officer_cert_ids(pem_b, &b), CS_OK);
	assert_string_not_equal(a.fingerprint, a2.fingerprint); /* two certificates */
	assert_string_equal(a.spki, a2.spki);                  /* of one key */
	assert_string_not_equal(a.spki, b.spki);
	assert_int_equal(strlen(a.spki), CS_CEREMONY_FPR_CHARS);
	assert_int_equal(strncmp(a.spki, "SHA256:", 7), 0);
	assert_string_equal(a2.subject, "CN=officer-a-2027,O=credsign test");
	assert_string_equal(a2.name, "");
	assert_int_equal(cs_officer_cert_ids("not a certificate", &b), CS_E_INVALID_ARG);
	assert_string_equal(b.fingerprint, "");

	/* a roster that lists both certificates (the configuration refuses it:
	 * config_test) still counts the key once */
	static cs_config_officer four[4];
	char path[700];
	memcpy(four, listed, sizeof(listed));
	four[3].name = (char *)"officer-a-2027";
	path_of(path, sizeof(path), "officers/officer-a-2027.pem");
	four[3].certificate = path;
	assert_int_equal(op_fingerprint(path, four[3].fingerprint), 0);
	cs_config cfg4 = cfg;
	cfg4.ceremony.officers = four;
	cfg4.ceremony.nofficers = 4;
	cs_officers *o4 = NULL;
	char why[CS_CEREMONY_WHY_MAX];
	assert_int_equal(cs_officers_load(&cfg4, &o4, why), CS_OK);
	doc_fixture d;
	cs_quorum_report rep;
	doc_init(&d, "retire");
	doc_add(&d, "officer-a", NULL);
	doc_add_as(&d, "officer-a-2027", "officer-a", "officer-a-2027", NULL);
	assert_int_equal(cs_ceremony_quorum(o4, &d.doc, time(NULL), &rep), CS_E_QUORUM);
	assert_int_equal(rep.counted, 1);
	assert_true(rep.verdicts[0].counted);
	assert_false(rep.verdicts[1].counted);
	assert_string_equal(rep.verdicts[1].id.name, "officer-a-2027"); /* a valid officer, the same key */
	assert_string_equal(rep.verdicts[1].id.code, "duplicate_officer");
	assert_non_null(strstr(rep.verdicts[1].id.why, "the same public key"));
	cs_quorum_report_free(&rep);
	/* with a second officer the quorum is met, by two keys */
	doc_add(&d, "officer-b", NULL);
	assert_int_equal(cs_ceremony_quorum(o4, &d.doc, time(NULL), &rep), CS_OK);
	assert_int_equal(rep.counted, 2);
	cs_quorum_report_free(&rep);
	doc_free(&d);

	/* a transcript checked without a roster: the key counts once too */
	executed_init(&d, "retire");
	doc_add(&d, "officer-a", NULL);
	doc_add_as(&d, "officer-a-2027", "officer-a", "officer-a-2027", NULL);
	char *text = NULL, ca[600];
	assert_int_equal(cs_ceremony_transcript(&d.doc, 2, &text), CS_OK);
	cs_officers *by_ca = NULL;
	path_of(ca, sizeof(ca), "officer-ca.pem");
	assert_int_equal(cs_officers_load_ca(ca, NULL, &by_ca, why), CS_OK);
	cs_transcript_report tr;
	assert_int_equal(cs_ceremony_transcript_verify(text, strlen(text), by_ca, NULL, &tr), CS_E_QUORUM);
	assert_int_equal(tr.counted, 1);
	assert_string_equal(tr.verdicts[1].id.code, "duplicate_officer");
	cs_transcript_report_free(&tr);
	free(text);
	doc_free(&d);
	cs_officers_free(by_ca);
	cs_officers_free(o4);
	free(pem_a);
	free(pem_a2);
	free(pem_b);
}

/* ---- the roster of a transcript's verification (M4) -------------------------------- */

static void write_roster(const char *name, const char *text)
{
	char path[700];
	path_of(path, sizeof(path), name);
	ts_write_file(path, text, 0644);
}

static void test_transcript_roster(void **state)
{
	(void)state;
	/* officer-x (of the officer CA, never listed) approved under the name
	 * officer-b: what the offline auditor is shown */
	doc_fixture d;
	executed_init(&d, "retire");
	doc_add(&d, "officer-a", NULL);
	doc_add_as(&d, "officer-x", "officer-x", "officer-b", NULL);
	char *text = NULL, ca[600], why[CS_CEREMONY_WHY_MAX], path[700], roster[1024];
	assert_int_equal(cs_ceremony_transcript(&d.doc, 2, &text), CS_OK);
	path_of(ca, sizeof(ca), "officer-ca.pem");
	cs_officers *o = NULL;
	cs_transcript_report rep;

	/* the CA alone cannot know: it verifies, but unlisted, the certificate
	 * saying who it is (the caller prints subject and fingerprint) */
	assert_int_equal(cs_officers_load_ca(ca, NULL, &o, why), CS_OK);
	assert_false(cs_officers_listed(o));
	assert_int_equal(cs_officers_count(o), 0);
	assert_int_equal(cs_ceremony_transcript_verify(text, strlen(text), o, NULL, &rep), CS_OK);
	assert_false(rep.listed);
	assert_string_equal(rep.verdicts[1].id.subject, "CN=officer-x,O=credsign test");
	assert_string_equal(rep.verdicts[1].id.fingerprint, d.fprs[1]);
	cs_transcript_report_free(&rep);

	/* a roster file of the real officers: officer-x is unknown */
	snprintf(roster, sizeof(roster), "# the officers, 2026\n\nofficer-a %s\n  officer-b\t%s  \r\nofficer-c %s\n",
		 listed[0].fingerprint, listed[1].fingerprint, listed[2].fingerprint);
	write_roster("roster.txt", roster);
	path_of(path, sizeof(path), "roster.txt");
	assert_int_equal(cs_officers_roster_file(o, path, why), CS_OK);
	assert_true(cs_officers_listed(o));
	assert_int_equal(cs_officers_count(o), 3);
	assert_int_equal(cs_ceremony_transcript_verify(text, strlen(text), o, NULL, &rep), CS_E_SIGNATURE_INVALID);
	assert_true(rep.listed);
	assert_string_equal(rep.verdicts[1].id.code, "unknown_officer");
	assert_non_null(strstr(rep.why, "approval 2: unknown officer"));
	assert_non_null(strstr(rep.why, "not listed in the roster"));
	cs_transcript_report_free(&rep);
	/* officer-x listed under its own name: the name recorded is not its */
	snprintf(roster, sizeof(roster), "officer-a %s\nofficer-x %s\n", listed[0].fingerprint, d.fprs[1]);
	write_roster("roster-x.txt", roster);
	path_of(path, sizeof(path), "roster-x.txt");
	assert_int_equal(cs_officers_roster_file(o, path, why), CS_OK);
	assert_int_equal(cs_ceremony_transcript_verify(text, strlen(text), o, NULL, &rep), CS_E_SIGNATURE_INVALID);
	assert_string_equal(rep.verdicts[1].id.code, "fingerprint_mismatch");
	assert_non_null(strstr(rep.verdicts[1].id.why, "records officer 'officer-b', its certificate is officer-x's"));
	cs_transcript_report_free(&rep);
	/* the configuration's roster: the same */
	assert_int_equal(cs_officers_roster_config(o, &cfg, why), CS_OK);
	assert_int_equal(cs_officers_count(o), 3);
	assert_int_equal(cs_ceremony_transcript_verify(text, strlen(text), o, NULL, &rep), CS_E_SIGNATURE_INVALID);
	assert_string_equal(rep.verdicts[1].id.code, "unknown_officer");
	cs_transcript_report_free(&rep);
	cs_config none = {.file_given = (char *)"plain.conf"};
	assert_int_equal(cs_officers_roster_config(o, &none, why), CS_E_CONFIG);
	assert_non_null(strstr(why, "plain.conf has no ceremony group"));
	free(text);
	doc_free(&d);

	/* a transcript of the real officers verifies with the roster, by name */
	executed_init(&d, "retire");
	doc_add(&d, "officer-a", NULL);
	doc_add(&d, "officer-c", NULL);
	assert_int_equal(cs_ceremony_transcript(&d.doc, 2, &text), CS_OK);
	path_of(path, sizeof(path), "roster.txt");
	assert_int_equal(cs_officers_roster_file(o, path, why), CS_OK);
	assert_int_equal(cs_ceremony_transcript_verify(text, strlen(text), o, NULL, &rep), CS_OK);
	assert_true(rep.listed);
	assert_string_equal(rep.verdicts[1].id.name, "officer-c");
	cs_transcript_report_free(&rep);
	free(text);
	doc_free(&d);

	/* malformed rosters: refused with FILE:LINE, the roster in force kept */
	static const char *const bad[] = {
		"officer-a SHA256:00\n",                             /* short fingerprint */
		"officer a SHA256:0000000000000000000000000000000000000000000000000000000000000000\n", /* a space */
		"officer-a sha256:0000000000000000000000000000000000000000000000000000000000000000\n",
		"officer-a SHA256:0000000000000000000000000000000000000000000000000000000000000000 extra\n",
		"officer-a SHA256:00000000000000000000000000000000000000000000000000000000000000AA\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(roster, sizeof(roster), "# ok\n%s", bad[i]);
		write_roster("roster-bad.txt", roster);
		path_of(path, sizeof(path), "roster-bad.txt");
		assert_int_equal(cs_officers_roster_file(o, path, why), CS_E_CONFIG);
		assert_non_null(strstr(why, "roster-bad.txt:2: not \"NAME SHA256:HEX\""));
	}
	assert_int_equal(cs_officers_count(o), 3);
	snprintf(roster, sizeof(roster), "officer-a %s\nofficer-a %s\n", listed[0].fingerprint, listed[1].fingerprint);
	write_roster("roster-bad.txt", roster);
	assert_int_equal(cs_officers_roster_file(o, path, why), CS_E_CONFIG);
	assert_non_null(strstr(why, "roster-bad.txt:2: officer officer-a"));
	assert_non_null(strstr(why, "repeats the name"));
	snprintf(roster, sizeof(roster), "officer-a %s\nofficer-z %s\n", listed[0].fingerprint, listed[0].fingerprint);
	write_roster("roster-bad.txt", roster);
	assert_int_equal(cs_officers_roster_file(o, path, why), CS_E_CONFIG);
	assert_non_null(strstr(why, "repeats the fingerprint"));
	write_roster("roster-bad.txt", "# nobody\n\n");
	assert_int_equal(cs_officers_roster_file(o, path, why), CS_E_CONFIG);
	assert_non_null(strstr(why, "no officers"));
	path_of(path, sizeof(path), "no-such-roster.txt");
	assert_int_equal(cs_officers_roster_file(o, path, why), CS_E_CONFIG);
	assert_non_null(strstr(why, "cannot be read"));
	cs_officers_free(o);
}

/* The doc collectors copy what the store hands them (valid only during
 * the callback) and keep only their ceremony's rollover. */
static void test_doc_collect(void **state)
{
	(void)state;
	cs_ceremony_doc doc = {0};
	fixture f;
	record_init(&f, 0);
	char id[64];
	snprintf(id, sizeof(id), "%s", ID);
	f.c.id = id;
	cs_ceremony_doc_on_ceremony(&doc, &f.c);
	id[4] = 'z';
	assert_string_equal(doc.c.id, ID);
	assert_null(doc.c.reason);
	cs_rollover_record other = {.ceremony_id = "cer_abcdefghijklmnopqrstuvwxye", .statement_json = "{}"};
	cs_ceremony_doc_on_rollover(&doc, &other);
	assert_null(doc.rollover_json);
	cs_rollover_record mine = {.ceremony_id = ID, .statement_json = "{\"payload\":\"x\"}"};
	cs_ceremony_doc_on_rollover(&doc, &mine);
	assert_string_equal(doc.rollover_json, "{\"payload\":\"x\"}");
	cs_approval_record ap = {.ceremony_id = ID, .officer = "officer-a"};
	cs_ceremony_doc_on_approval(&doc, &ap);
	cs_ceremony_doc_on_approval(&doc, &ap);
	assert_int_equal(doc.napprovals, 2);
	assert_string_equal(doc.approvals[1].officer, "officer-a");
	assert_int_equal(doc.status, CS_OK);
	cs_ceremony_doc_free(&doc);
	assert_null(doc.approvals);
}

/* ---- out of memory (alloc_fail.h) ----------------------------------------- */

typedef struct {
	activation a;
	char *text; /* the transcript of an unhindered run */
} oom_fixture;

/* The transcript: whole, or none. */
static void run_transcript(void *ctx)
{
	oom_fixture *f = ctx;
	char *text = NULL;
	cs_err r = cs_ceremony_transcript(&f->a.d.doc, 2, &text);
	if (af_disarm()) {
		assert_int_equal(r, CS_E_NOMEM);
		assert_null(text);
		return;
	}
	assert_int_equal(r, CS_OK);
	assert_string_equal(text, f->text);
	free(text);
}

/* Verification: every check made, or a refusal; never CS_OK on a check
 * that could not be made. */
static void run_transcript_verify(void *ctx)
{
	oom_fixture *f = ctx;
	cs_transcript_report rep;
	cs_err r = cs_ceremony_transcript_verify(f->text, strlen(f->text), officers, f->a.jwks, &rep);
	if (af_disarm()) {
		assert_int_not_equal(r, CS_OK);
		assert_string_not_equal(rep.why, "");
	} else {
		assert_int_equal(r, CS_OK);
		assert_string_equal(rep.id, ID);
		assert_int_equal(rep.counted, 2);
		assert_true(rep.approvals_checked);
		assert_true(rep.rollover_checked);
		assert_int_equal(rep.rollover_old, CS_ROLLOVER_OLD_VERIFIED);
	}
	cs_transcript_report_free(&rep);
}

static void test_transcript_out_of_memory(void **state)
{
	(void)state;
	oom_fixture f;
	activation_init(&f.a, 1, NULL);
	assert_int_equal(cs_ceremony_transcript(&f.a.d.doc, 2, &f.text), CS_OK);
	assert_true(af_sweep(run_transcript, &f, 0, 1000000) > 20);
	/* the record block is a long JSON text: jansson's parser cannot be
	 * failed (alloc_fail.h, AF_NOT_JSON); ours can */
	assert_true(af_sweep(run_transcript_verify, &f, AF_NOT_JSON, 1000000) > 20);
	free(f.text);
	activation_free(&f.a);
}

int main(void)
{
	af_install(0);
	if (getenv("AF_ONLY") != NULL)
		cmocka_set_test_filter(getenv("AF_ONLY"));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_canonical),
		cmocka_unit_test(test_officer_check),
		cmocka_unit_test(test_approval_sign_verify),
		cmocka_unit_test(test_approval_token_key),
		cmocka_unit_test(test_quorum),
		cmocka_unit_test(test_transcript),
		cmocka_unit_test(test_approval_refusals),
		cmocka_unit_test(test_rollover_refusals),
		cmocka_unit_test(test_transcript_block),
		cmocka_unit_test(test_officer_same_key),
		cmocka_unit_test(test_transcript_roster),
		cmocka_unit_test(test_doc_collect),
		cmocka_unit_test(test_transcript_out_of_memory),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
