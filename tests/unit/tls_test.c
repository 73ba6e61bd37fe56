/*
 * tls_test: the daemon's mTLS server context and client identities (tls.h).
 *
 * A PKI of the test's own (a CA, a server certificate, client certificates
 * with and without the clientAuth EKU, one of another CA, a CRL), written
 * to a private directory:
 *   - cs_tls_server_ctx refuses, with nothing returned, a server
 *     certificate that is not one, a key file that is not a key, a pkcs11:
 *     key no provider serves (CS_E_TOKEN_UNAVAILABLE), a key of another
 *     certificate, groups OpenSSL does not know, a CA or a CRL that does not
 *     load (a missing CRL too); the FIPS profile builds;
 *   - cs_tls_server_ctx_reload keeps the chain and key in force, reads the
 *     CA and CRL again (refusing when they no longer load), and refuses a
 *     context without a certificate and key, or none;
 *   - handshakes in memory: a client of the CA with clientAuth completes
 *     (the done hook runs, its identity is its URI SAN); one whose
 *     certificate asserts no EKU, or comes from another CA, is refused
 *     through the refusal hook (saying whether our CA issued it), or logged
 *     without a hook; one without a certificate through the anonymous hook;
 *     each refused handshake is counted;
 *   - cs_tls_cert_identity: the first URI SAN whole, or refused (space,
 *     quote, NUL, non-ASCII, 256 bytes); the CN only with allow_cn, refused
 *     when it is missing, doubled, padded with spaces, quoted, non-ASCII or
 *     reads as a URI (scheme ":"); never a partial identity.
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

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "tls.h"

static char dir[256];
static EVP_PKEY *ca_key, *other_key;
static X509 *ca_cert;

/* dir/name in one of 256 buffers used in turn (a case takes far fewer, so
 * the paths of a configuration stay valid through the case) */
static char *path_of(const char *name)
{
	static char paths[256][320];
	static unsigned next;
	char *p = paths[next++ % 256];
	snprintf(p, 320, "%s/%s", dir, name);
	return p;
}

static EVP_PKEY *ec_key(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	assert_non_null(k);
	return k;
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

/* A URI SAN of exactly these bytes (len of them: NUL and spaces included). */
static void add_uri_san(X509 *x, const char *uri, int len)
{
	GENERAL_NAMES *gens = GENERAL_NAMES_new();
	GENERAL_NAME *dns = GENERAL_NAME_new();
	GENERAL_NAME *gn = GENERAL_NAME_new();
	ASN1_IA5STRING *d = ASN1_IA5STRING_new(), *s = ASN1_IA5STRING_new();
	assert_true(gens && dns && gn && d && s);
	/* a DNS name first: the URI is found after another kind of name */
	assert_int_equal(ASN1_STRING_set(d, "client.test", -1), 1);
	GENERAL_NAME_set0_value(dns, GEN_DNS, d);
	assert_int_equal(ASN1_STRING_set(s, uri, len), 1);
	GENERAL_NAME_set0_value(gn, GEN_URI, s);
	assert_true(sk_GENERAL_NAME_push(gens, dns) > 0);
	assert_true(sk_GENERAL_NAME_push(gens, gn) > 0);
	assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, 0), 1);
	GENERAL_NAMES_free(gens);
}

typedef struct {
	const char *cns[2]; /* subject CNs (UTF-8), NULL-ended */
	const char *uri;    /* URI SAN, NULL for none */
	int uri_len;        /* -1: strlen */
	const char *eku;    /* extendedKeyUsage, NULL for none */
	const char *dns;    /* a DNS SAN only (no URI), NULL for none */
	int ca;
} cert_spec;

/* A certificate for key, issued by issuer/issuer_key (NULL: self-signed). */
static X509 *make_cert(EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, const cert_spec *spec)
{
	static long serial = 1;
	X509 *x = X509_new();
	assert_non_null(x);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial++), 1);
	X509_NAME *name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"credsign tls_test", -1,
				   -1, 0);
	for (int i = 0; i < 2 && spec->cns[i] != NULL; i++)
		assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
							    (const unsigned char *)spec->cns[i], -1, -1, 0),
				 1);
	assert_int_equal(X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	X509 *iss = issuer != NULL ? issuer : x;
	if (spec->ca) {
		add_ext(x, iss, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, iss, NID_key_usage, "critical,keyCertSign,cRLSign");
	} else {
		add_ext(x, iss, NID_key_usage, "critical,digitalSignature");
	}
	add_ext(x, iss, NID_subject_key_identifier, "hash");
	if (spec->eku != NULL)
		add_ext(x, iss, NID_ext_key_usage, spec->eku);
	if (spec->uri != NULL)
		add_uri_san(x, spec->uri, spec->uri_len);
	if (spec->dns != NULL)
		add_ext(x, iss, NID_subject_alt_name, spec->dns);
	assert_true(X509_sign(x, issuer_key != NULL ? issuer_key : key, EVP_sha256()) > 0);
	return x;
}

static void write_cert(const char *name, X509 *x)
{
	FILE *f = fopen(path_of(name), "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, x), 1);
	fclose(f);
}

static void write_key(const char *name, EVP_PKEY *k)
{
	FILE *f = fopen(path_of(name), "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
}

static void write_text(const char *name, const char *text)
{
	FILE *f = fopen(path_of(name), "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* An empty CRL of our CA, current. */
static void write_crl(const char *name)
{
	X509_CRL *crl = X509_CRL_new();
	assert_non_null(crl);
	assert_int_equal(X509_CRL_set_version(crl, X509_CRL_VERSION_2), 1);
	assert_int_equal(X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca_cert)), 1);
	ASN1_TIME *t = ASN1_TIME_new();
	assert_non_null(X509_gmtime_adj(t, -60));
	assert_int_equal(X509_CRL_set1_lastUpdate(crl, t), 1);
	assert_non_null(X509_gmtime_adj(t, 86400));
	assert_int_equal(X509_CRL_set1_nextUpdate(crl, t), 1);
	ASN1_TIME_free(t);
	assert_true(X509_CRL_sign(crl, ca_key, EVP_sha256()) > 0);
	FILE *f = fopen(path_of(name), "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_X509_CRL(f, crl), 1);
	fclose(f);
	X509_CRL_free(crl);
}

static const char *const files[] = {"ca.pem",     "server.pem", "server.key", "client.pem", "client.key",
				    "noeku.pem",  "noeku.key",  "other.pem",  "other.key",  "crl.pem",
				    "garbage.pem", "ca-copy.pem", "crl-copy.pem"};

static int setup_pki(void **state)
{
	(void)state;
	const char *base = getenv("CREDSIGN_TEST_TMP");
	snprintf(dir, sizeof(dir), "%s/tls_test.XXXXXX", base != NULL ? base : "/tmp");
	if (base != NULL)
		mkdir(base, 0755);
	assert_non_null(mkdtemp(dir));
	ca_key = ec_key();
	cert_spec ca = {.cns = {"tls_test CA"}, .ca = 1};
	ca_cert = make_cert(ca_key, NULL, NULL, &ca);
	write_cert("ca.pem", ca_cert);
	write_crl("crl.pem");

	EVP_PKEY *k = ec_key();
	cert_spec server = {.cns = {"localhost"}, .eku = "serverAuth", .dns = "DNS:localhost"};
	X509 *x = make_cert(k, ca_cert, ca_key, &server);
	write_cert("server.pem", x);
	write_key("server.key", k);
	X509_free(x);
	EVP_PKEY_free(k);

	k = ec_key();
	cert_spec client = {.uri = "spiffe://tls.test/client", .uri_len = -1, .eku = "clientAuth"};
	x = make_cert(k, ca_cert, ca_key, &client);
	write_cert("client.pem", x);
	write_key("client.key", k);
	X509_free(x);
	EVP_PKEY_free(k);

	k = ec_key();
	cert_spec noeku = {.uri = "spiffe://tls.test/no-eku", .uri_len = -1};
	x = make_cert(k, ca_cert, ca_key, &noeku);
	write_cert("noeku.pem", x);
	write_key("noeku.key", k);
	X509_free(x);
	EVP_PKEY_free(k);

	other_key = ec_key();
	cert_spec other = {.uri = "spiffe://tls.test/client", .uri_len = -1, .eku = "clientAuth"};
	x = make_cert(other_key, NULL, NULL, &other); /* self-signed: another CA */
	write_cert("other.pem", x);
	write_key("other.key", other_key);
	X509_free(x);

	write_text("garbage.pem", "this is not PEM\n");
	return 0;
}

static int teardown_pki(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		unlink(path_of(files[i]));
	rmdir(dir);
	X509_free(ca_cert);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(other_key);
	return 0;
}

/* The working configuration: our server certificate and key, CA, CRL. */
static cs_config good_config(void)
{
	cs_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.tls.cert = path_of("server.pem");
	cfg.tls.key = path_of("server.key");
	cfg.tls.ca = path_of("ca.pem");
	cfg.tls.crl = path_of("crl.pem");
	cfg.tls.crl_check = true;
	cfg.tls.verify_depth = 4;
	return cfg;
}

static void refused(const cs_config *cfg, cs_err want)
{
	SSL_CTX *ctx = (SSL_CTX *)0x1;
	assert_int_equal(cs_tls_server_ctx(NULL, cfg, &ctx), want);
	assert_null(ctx); /* nothing partial */
	ERR_clear_error();
}

static void test_server_ctx_good(void **state)
{
	(void)state;
	cs_config cfg = good_config();
	SSL_CTX *ctx = NULL;
	assert_int_equal(cs_tls_server_ctx(NULL, &cfg, &ctx), CS_OK);
	assert_non_null(ctx);
	assert_non_null(SSL_CTX_get0_certificate(ctx));
	assert_non_null(SSL_CTX_get0_privatekey(ctx));
	assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_3_VERSION);
	assert_int_equal(SSL_CTX_get_verify_mode(ctx), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
	SSL_CTX_free(ctx);
	/* without crl_check the CRL is not read (a garbage one does not matter) */
	cfg.tls.crl_check = false;
	cfg.tls.crl = path_of("garbage.pem");
	assert_int_equal(cs_tls_server_ctx(NULL, &cfg, &ctx), CS_OK);
	SSL_CTX_free(ctx);
	/* crypto.profile "fips": the FIPS-approved suites and groups */
	cfg = good_config();
	cfg.crypto.profile = (char *)"fips";
	assert_int_equal(cs_tls_server_ctx(NULL, &cfg, &ctx), CS_OK);
	SSL_CTX_free(ctx);
}

static void test_server_ctx_refusals(void **state)
{
	(void)state;
	cs_config cfg = good_config();
	cfg.tls.cert = path_of("garbage.pem");
	refused(&cfg, CS_E_CONFIG); /* not a certificate */
	cfg = good_config();
	cfg.tls.key = path_of("garbage.pem");
	refused(&cfg, CS_E_CONFIG); /* not a key */
	cfg.tls.key = (char *)"pkcs11:token=no-such-token;object=tls";
	refused(&cfg, CS_E_TOKEN_UNAVAILABLE); /* no provider serves it here */
	cfg.tls.key = path_of("client.key");
	refused(&cfg, CS_E_CONFIG); /* another certificate's key */
	cfg = good_config();
	cfg.tls.groups = (char *)"no-such-group";
	refused(&cfg, CS_E_CONFIG);
	cfg = good_config();
	cfg.tls.ca = path_of("garbage.pem");
	refused(&cfg, CS_E_CONFIG);
	cfg = good_config();
	cfg.tls.crl = path_of("garbage.pem");
	refused(&cfg, CS_E_CONFIG); /* no CRL in it */
	cfg.tls.crl = path_of("no-such-crl.pem");
	refused(&cfg, CS_E_CONFIG); /* missing */
}

static void copy_file(const char *from, const char *to)
{
	FILE *in = fopen(path_of(from), "r"), *out = fopen(path_of(to), "w");
	assert_true(in != NULL && out != NULL);
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		assert_int_equal(fwrite(buf, 1, n, out), n);
	fclose(in);
	fclose(out);
}

static void test_reload(void **state)
{
	(void)state;
	cs_config cfg = good_config();
	copy_file("ca.pem", "ca-copy.pem");
	copy_file("crl.pem", "crl-copy.pem");
	cfg.tls.ca = path_of("ca-copy.pem");
	cfg.tls.crl = path_of("crl-copy.pem");
	SSL_CTX *current = NULL, *fresh = NULL;
	assert_int_equal(cs_tls_server_ctx(NULL, &cfg, &current), CS_OK);

	/* the key is not read again: a reload works with tls.key gone */
	cfg.tls.key = path_of("no-such.key");
	assert_int_equal(cs_tls_server_ctx_reload(NULL, &cfg, current, &fresh), CS_OK);
	assert_non_null(fresh);
	assert_ptr_equal(SSL_CTX_get0_privatekey(fresh), SSL_CTX_get0_privatekey(current));
	assert_int_equal(X509_cmp(SSL_CTX_get0_certificate(fresh), SSL_CTX_get0_certificate(current)), 0);
	SSL_CTX_free(fresh);

	/* the CA and the CRL are read again: spoiled, the reload fails */
	write_text("ca-copy.pem", "spoiled\n");
	fresh = (SSL_CTX *)0x1;
	assert_int_equal(cs_tls_server_ctx_reload(NULL, &cfg, current, &fresh), CS_E_CONFIG);
	assert_null(fresh);
	copy_file("ca.pem", "ca-copy.pem");
	write_text("crl-copy.pem", "spoiled\n");
	fresh = (SSL_CTX *)0x1;
	assert_int_equal(cs_tls_server_ctx_reload(NULL, &cfg, current, &fresh), CS_E_CONFIG);
	assert_null(fresh);
	ERR_clear_error();

	/* no context in force, or one without a certificate and key */
	fresh = (SSL_CTX *)0x1;
	assert_int_equal(cs_tls_server_ctx_reload(NULL, &cfg, NULL, &fresh), CS_E_INVALID_ARG);
	assert_null(fresh);
	SSL_CTX *empty = SSL_CTX_new(TLS_server_method());
	assert_non_null(empty);
	copy_file("crl.pem", "crl-copy.pem");
	fresh = (SSL_CTX *)0x1;
	assert_int_equal(cs_tls_server_ctx_reload(NULL, &cfg, empty, &fresh), CS_E_CRYPTO);
	assert_null(fresh);
	ERR_clear_error();
	SSL_CTX_free(empty);
	SSL_CTX_free(current);
}

/* ---- handshakes in memory ------------------------------------------------------ */

static int refusals, refusal_ca_issued, anonymous, done;
static char refusal_reason[128];

static void on_refusal(SSL *ssl, X509 *cert, const char *reason, int ca_issued)
{
	(void)ssl;
	assert_non_null(cert);
	refusals++;
	refusal_ca_issued = ca_issued;
	snprintf(refusal_reason, sizeof(refusal_reason), "%s", reason);
}

static void on_anonymous(SSL *ssl)
{
	(void)ssl;
	anonymous++;
}

static void on_done(SSL *ssl)
{
	(void)ssl;
	done++;
}

/* A handshake between a client presenting cert/key (NULL: none) and a
 * server on ctx; 1 when both ends completed it. The server's SSL is
 * returned in *server_out (the caller frees it) when asked for. */
static int handshake(SSL_CTX *ctx, const char *cert, const char *key, SSL **server_out)
{
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(cctx);
	SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, NULL);
	if (cert != NULL) {
		assert_int_equal(SSL_CTX_use_certificate_file(cctx, path_of(cert), SSL_FILETYPE_PEM), 1);
		assert_int_equal(SSL_CTX_use_PrivateKey_file(cctx, path_of(key), SSL_FILETYPE_PEM), 1);
	}
	SSL *c = SSL_new(cctx), *s = SSL_new(ctx);
	assert_true(c != NULL && s != NULL);
	BIO *cb = NULL, *sb = NULL;
	assert_int_equal(BIO_new_bio_pair(&cb, 0, &sb, 0), 1);
	SSL_set_bio(c, cb, cb);
	SSL_set_bio(s, sb, sb);
	SSL_set_connect_state(c);
	SSL_set_accept_state(s);
	int c_ok = 0, s_ok = 0, failed = 0;
	for (int i = 0; i < 50 && !failed && !(c_ok && s_ok); i++) {
		if (!c_ok) {
			int r = SSL_do_handshake(c);
			int e = SSL_get_error(c, r);
			c_ok = r == 1;
			failed |= r != 1 && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE;
		}
		if (!s_ok) {
			int r = SSL_do_handshake(s);
			int e = SSL_get_error(s, r);
			s_ok = r == 1;
			failed |= r != 1 && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE;
		}
		/* TLS 1.3: the client's certificate reaches the server after the
		 * client finished; it learns of a refusal when it reads */
		if (c_ok && !s_ok && !failed) {
			char byte;
			int r = SSL_read(c, &byte, 1);
			int e = SSL_get_error(c, r);
			failed |= e != SSL_ERROR_WANT_READ;
		}
	}
	ERR_clear_error();
	SSL_free(c);
	SSL_CTX_free(cctx);
	if (server_out != NULL)
		*server_out = s;
	else
		SSL_free(s);
	return c_ok && s_ok && !failed;
}

static void test_handshakes(void **state)
{
	(void)state;
	cs_config cfg = good_config();
	SSL_CTX *ctx = NULL;
	assert_int_equal(cs_tls_server_ctx(NULL, &cfg, &ctx), CS_OK);
	cs_tls_on_refusal(on_refusal);
	cs_tls_on_anonymous_refusal(on_anonymous);
	cs_tls_on_handshake_done(on_done);
	refusals = anonymous = done = 0;
	long failed_before = cs_tls_failed_handshakes();

	/* a client of our CA with clientAuth: in, named by its URI SAN */
	SSL *s = NULL;
	assert_true(handshake(ctx, "client.pem", "client.key", &s));
	assert_int_equal(done, 1);
	char id[CS_IDENTITY_MAX], sha[65];
	assert_int_equal(cs_tls_identity(s, false, id, sha), CS_OK);
	assert_string_equal(id, "spiffe://tls.test/client");
	assert_int_equal(strlen(sha), 64);
	SSL_free(s);

	/* no EKU at all: clientAuth must be asserted, not merely allowed */
	assert_false(handshake(ctx, "noeku.pem", "noeku.key", &s));
	assert_int_equal(refusals, 1);
	assert_int_equal(refusal_ca_issued, 1); /* our CA's: its names are the CA's word */
	assert_string_equal(refusal_reason, X509_verify_cert_error_string(X509_V_ERR_INVALID_PURPOSE));
	/* a refused peer has no identity */
	assert_int_equal(cs_tls_identity(s, false, id, sha), CS_E_FORBIDDEN);
	assert_string_equal(id, "");
	assert_string_equal(sha, "");
	SSL_free(s);

	/* another CA's certificate naming one of our clients: a claim only */
	assert_false(handshake(ctx, "other.pem", "other.key", NULL));
	assert_int_equal(refusals, 2);
	assert_int_equal(refusal_ca_issued, 0);

	/* no certificate */
	assert_false(handshake(ctx, NULL, NULL, NULL));
	assert_int_equal(anonymous, 1);
	assert_int_equal(done, 1);

	/* without a refusal hook the refusal is logged, and still refused */
	cs_tls_on_refusal(NULL);
	assert_false(handshake(ctx, "noeku.pem", "noeku.key", NULL));
	assert_int_equal(refusals, 2);
	assert_true(cs_tls_failed_handshakes() >= failed_before + 4);

	cs_tls_on_anonymous_refusal(NULL);
	cs_tls_on_handshake_done(NULL);
	SSL_CTX_free(ctx);
}

/* ---- identities --------------------------------------------------------------------- */

static cs_err identity_of(const cert_spec *spec, bool allow_cn, char id[CS_IDENTITY_MAX])
{
	char sha[65];
	EVP_PKEY *k = ec_key();
	X509 *x = make_cert(k, ca_cert, ca_key, spec);
	memset(id, 'x', CS_IDENTITY_MAX);
	cs_err r = cs_tls_cert_identity(x, allow_cn, id, sha);
	assert_int_equal(strlen(sha), 64); /* the digest, whatever the identity */
	X509_free(x);
	EVP_PKEY_free(k);
	if (r != CS_OK)
		assert_string_equal(id, ""); /* never a partial identity */
	return r;
}

static void test_uri_identities(void **state)
{
	(void)state;
	char id[CS_IDENTITY_MAX];
	cert_spec s = {.cns = {"ignored"}, .uri = "spiffe://tls.test/Az09/a-b_c.d~e:1/x?y#z[]@!$&'()*+,;=%20",
		       .uri_len = -1};
	assert_int_equal(identity_of(&s, true, id), CS_OK);
	assert_string_equal(id, s.uri); /* the URI wins over the CN */
	const char *bad[] = {"spiffe://tls.test/a b", "spiffe://tls.test/\"q\"", "spiffe://tls.test/back\\slash",
			     "spiffe://tls.test/caf\xc3\xa9", "spiffe://tls.test/<x>"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cert_spec b = {.uri = bad[i], .uri_len = -1};
		assert_int_equal(identity_of(&b, false, id), CS_E_FORBIDDEN);
	}
	cert_spec nul = {.uri = "spiffe://tls.test/a\0evil", .uri_len = 22};
	assert_int_equal(identity_of(&nul, false, id), CS_E_FORBIDDEN);
	cert_spec empty = {.uri = "", .uri_len = 0};
	assert_int_equal(identity_of(&empty, true, id), CS_E_FORBIDDEN);
	/* 255 bytes fit; 256 are refused, not cut */
	char longest[CS_IDENTITY_MAX + 1];
	memset(longest, 'a', sizeof(longest));
	memcpy(longest, "spiffe://t/", 11);
	cert_spec fits = {.uri = longest, .uri_len = CS_IDENTITY_MAX - 1};
	assert_int_equal(identity_of(&fits, false, id), CS_OK);
	assert_int_equal(strlen(id), CS_IDENTITY_MAX - 1);
	cert_spec over = {.uri = longest, .uri_len = CS_IDENTITY_MAX};
	assert_int_equal(identity_of(&over, false, id), CS_E_FORBIDDEN);
}

static void test_cn_identities(void **state)
{
	(void)state;
	char id[CS_IDENTITY_MAX];
	/* only with allow_cn, and only without a URI SAN (a DNS SAN is no name) */
	cert_spec alice = {.cns = {"alice"}, .dns = "DNS:alice.test"};
	assert_int_equal(identity_of(&alice, false, id), CS_E_FORBIDDEN);
	assert_int_equal(identity_of(&alice, true, id), CS_OK);
	assert_string_equal(id, "alice");
	/* names that are not schemes: a digit first, a character a scheme has not */
	const char *ok[] = {"1host:80", "svc_a:b", "build agent 7", "a+b.c-d", "Zed", "_x:y"};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cert_spec c = {.cns = {ok[i]}};
		assert_int_equal(identity_of(&c, true, id), CS_OK);
		assert_string_equal(id, ok[i]);
	}
	const char *bad[] = {"spiffe://tls.test/client", /* poses as a URI SAN identity */
			     "urn:x",   "a+b-c.d:e",     "Host9:x", " alice", "alice ", "al\"ice", "al\\ice",
			     "caf\xc3\xa9", "tab\there"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cert_spec c = {.cns = {bad[i]}};
		assert_int_equal(identity_of(&c, true, id), CS_E_FORBIDDEN);
	}
	cert_spec two = {.cns = {"alice", "bob"}};
	assert_int_equal(identity_of(&two, true, id), CS_E_FORBIDDEN);
	cert_spec none = {.cns = {NULL}};
	assert_int_equal(identity_of(&none, true, id), CS_E_FORBIDDEN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_server_ctx_good),
		cmocka_unit_test(test_server_ctx_refusals),
		cmocka_unit_test(test_reload),
		cmocka_unit_test(test_handshakes),
		cmocka_unit_test(test_uri_identities),
		cmocka_unit_test(test_cn_identities),
	};
	return cmocka_run_group_tests(tests, setup_pki, teardown_pki);
}
