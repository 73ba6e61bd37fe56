/* officer_pki: see officer_pki.h. */
#include "officer_pki.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define DAY 86400L

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok = e != NULL && X509_add_ext(x, e, -1) == 1;
	X509_EXTENSION_free(e);
	return ok;
}

/* A certificate for key, issued by issuer/ikey (NULL: self-signed). */
static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey, int ca, long from, long to,
		       long serial)
{
	X509 *x = X509_new();
	X509V3_CTX ctx;
	if (x == NULL)
		return NULL;
	X509_NAME *n = X509_get_subject_name(x);
	int ok = X509_set_version(x, 2) == 1 && ASN1_INTEGER_set(X509_get_serialNumber(x), serial) == 1 &&
		 X509_gmtime_adj(X509_getm_notBefore(x), from) != NULL &&
		 X509_gmtime_adj(X509_getm_notAfter(x), to) != NULL && X509_set_pubkey(x, key) == 1 &&
		 X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"credsign test", -1, -1, 0) ==
			 1 &&
		 X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0) == 1 &&
		 X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : n) == 1;
	if (ok) {
		X509V3_set_ctx_nodb(&ctx);
		X509V3_set_ctx(&ctx, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
		ok = add_ext(x, &ctx, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE") &&
		     add_ext(x, &ctx, NID_key_usage, ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature") &&
		     add_ext(x, &ctx, NID_subject_key_identifier, "hash") &&
		     (issuer == NULL || add_ext(x, &ctx, NID_authority_key_identifier, "keyid")) &&
		     X509_sign(x, ikey != NULL ? ikey : key, EVP_sha256()) > 0;
	}
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static int write_pem(const char *dir, const char *name, X509 *x, EVP_PKEY *key)
{
	char path[1024];
	int ok = 1;
	snprintf(path, sizeof(path), "%s/%s.pem", dir, name);
	FILE *f = fopen(path, "w");
	ok = f != NULL && PEM_write_X509(f, x) == 1;
	if (f != NULL)
		fclose(f);
	if (ok && key != NULL) {
		snprintf(path, sizeof(path), "%s/%s.key", dir, name);
		f = fopen(path, "w");
		ok = f != NULL && chmod(path, 0600) == 0 && PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1;
		if (f != NULL)
			fclose(f);
	}
	return ok;
}

static int write_crl(const char *dir, const char *name, X509 *ca, EVP_PKEY *cakey, long revoked_serial)
{
	char path[1024];
	time_t now = time(NULL);
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *last = ASN1_TIME_adj(NULL, now, 0, -3600), *next = ASN1_TIME_adj(NULL, now, 30, 0);
	ASN1_TIME *when = ASN1_TIME_adj(NULL, now, 0, -OP_REVOKED_AGO);
	X509_REVOKED *rv = X509_REVOKED_new();
	ASN1_INTEGER *serial = ASN1_INTEGER_new();
	int ok = crl != NULL && last != NULL && next != NULL && when != NULL && rv != NULL && serial != NULL &&
		 X509_CRL_set_version(crl, 1) == 1 && X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)) == 1 &&
		 X509_CRL_set1_lastUpdate(crl, last) == 1 && X509_CRL_set1_nextUpdate(crl, next) == 1 &&
		 ASN1_INTEGER_set(serial, revoked_serial) == 1 && X509_REVOKED_set_serialNumber(rv, serial) == 1 &&
		 X509_REVOKED_set_revocationDate(rv, when) == 1 && X509_CRL_add0_revoked(crl, rv) == 1;
	if (ok)
		rv = NULL; /* the CRL owns it */
	ok = ok && X509_CRL_sort(crl) == 1 && X509_CRL_sign(crl, cakey, EVP_sha256()) > 0;
	snprintf(path, sizeof(path), "%s/%s.pem", dir, name);
	FILE *f = ok ? fopen(path, "w") : NULL;
	ok = ok && f != NULL && PEM_write_X509_CRL(f, crl) == 1;
	if (f != NULL)
		fclose(f);
	X509_REVOKED_free(rv);
	ASN1_INTEGER_free(serial);
	ASN1_TIME_free(last);
	ASN1_TIME_free(next);
	ASN1_TIME_free(when);
	X509_CRL_free(crl);
	return ok;
}

/* An officer: key and certificate written to DIR/officers/NAME. */
static int officer(const char *odir, const char *name, X509 *ca, EVP_PKEY *cakey, long from, long to, long serial,
		   int rsa)
{
	EVP_PKEY *key = rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
	X509 *x = key != NULL ? make_cert(name, key, ca, cakey, 0, from, to, serial) : NULL;
	int ok = x != NULL && write_pem(odir, name, x, key);
	X509_free(x);
	EVP_PKEY_free(key);
	return ok;
}

int op_make(const char *dir)
{
	char odir[1024];
	EVP_PKEY *cakey = EVP_EC_gen("P-256"), *otherkey = EVP_EC_gen("P-256");
	X509 *ca = NULL, *other = NULL;
	int ok = 0;
	snprintf(odir, sizeof(odir), "%s/officers", dir);
	mkdir(dir, 0700);
	mkdir(odir, 0700);
	if (cakey == NULL || otherkey == NULL ||
	    (ca = make_cert("credsign test officer CA", cakey, NULL, NULL, 1, -DAY, 3650 * DAY, 1)) == NULL ||
	    (other = make_cert("unrelated CA", otherkey, NULL, NULL, 1, -DAY, 3650 * DAY, 1)) == NULL)
		goto out;
	ok = write_pem(dir, "officer-ca", ca, cakey) && write_pem(dir, "other-ca", other, otherkey) &&
	     officer(odir, "officer-a", ca, cakey, -DAY, 365 * DAY, 10, 0) &&
	     officer(odir, "officer-b", ca, cakey, -DAY, 365 * DAY, 11, 0) &&
	     officer(odir, "officer-c", ca, cakey, -DAY, 365 * DAY, 12, 0) &&
	     officer(odir, "officer-x", ca, cakey, -DAY, 365 * DAY, 13, 0) &&
	     officer(odir, "officer-revoked", ca, cakey, -DAY, 365 * DAY, 14, 0) &&
	     officer(odir, "officer-expired", ca, cakey, -400 * DAY, -DAY, 15, 0) &&
	     officer(odir, "officer-rsa", ca, cakey, -DAY, 365 * DAY, 16, 1) &&
	     officer(odir, "officer-other", other, otherkey, -DAY, 365 * DAY, 10, 0) &&
	     write_crl(dir, "officer-crl", ca, cakey, 14) && write_crl(dir, "other-crl", other, otherkey, 10);
out:
	X509_free(ca);
	X509_free(other);
	EVP_PKEY_free(cakey);
	EVP_PKEY_free(otherkey);
	return ok ? 0 : -1;
}

int op_issue(const char *dir, const char *name, EVP_PKEY *pub)
{
	char path[1024], odir[1024];
	snprintf(path, sizeof(path), "%s/officer-ca.pem", dir);
	FILE *f = fopen(path, "r");
	X509 *ca = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	if (f != NULL)
		fclose(f);
	snprintf(path, sizeof(path), "%s/officer-ca.key", dir);
	f = fopen(path, "r");
	EVP_PKEY *cakey = f != NULL ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
	if (f != NULL)
		fclose(f);
	snprintf(odir, sizeof(odir), "%s/officers", dir);
	X509 *x = ca != NULL && cakey != NULL ? make_cert(name, pub, ca, cakey, 0, -DAY, 365 * DAY, 100) : NULL;
	int ok = x != NULL && write_pem(odir, name, x, NULL);
	X509_free(x);
	X509_free(ca);
	EVP_PKEY_free(cakey);
	return ok ? 0 : -1;
}

int op_fingerprint(const char *path, char out[72])
{
	FILE *f = fopen(path, "r");
	X509 *x = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	if (f != NULL)
		fclose(f);
	int ok = x != NULL && X509_digest(x, EVP_sha256(), md, &n) == 1 && n == 32;
	X509_free(x);
	if (!ok)
		return -1;
	memcpy(out, "SHA256:", 7);
	for (unsigned i = 0; i < n; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
	return 0;
}
