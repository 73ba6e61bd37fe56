/* tls: see tls.h. */
#include "tls.h"

#include <stdatomic.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/store.h>
#include <openssl/x509v3.h>

#include "cs_log.h"
#include "provider.h"

static cs_tls_refusal_fn refusal_hook;
static cs_tls_handshake_fn handshake_hook;
static cs_tls_anonymous_fn anonymous_hook;
static atomic_long handshakes_failed;

long cs_tls_failed_handshakes(void)
{
	return handshakes_failed;
}

void cs_tls_on_anonymous_refusal(cs_tls_anonymous_fn fn)
{
	anonymous_hook = fn;
}

void cs_tls_on_refusal(cs_tls_refusal_fn fn)
{
	refusal_hook = fn;
}

void cs_tls_on_handshake_done(cs_tls_handshake_fn fn)
{
	handshake_hook = fn;
}

/* Whether our CA issued the certificate (its signatures verify to a trust
 * anchor), whatever else is wrong with it: time, revocation and purpose
 * are not checked here. OpenSSL reports purpose and revocation errors
 * before it checks signatures, so the first error alone does not say
 * whether the identity in the certificate is the CA's word or the peer's. */
static int ca_issued(X509_STORE_CTX *failed, X509 *leaf)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new(); /* public-key checks only */
	int issued = 0;
	if (ctx != NULL &&
	    X509_STORE_CTX_init(ctx, X509_STORE_CTX_get0_store(failed), leaf,
				X509_STORE_CTX_get0_untrusted(failed)) == 1) {
		X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
		X509_VERIFY_PARAM_clear_flags(param, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
		X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_NO_CHECK_TIME);
		issued = X509_verify_cert(ctx) == 1;
	}
	X509_STORE_CTX_free(ctx);
	ERR_clear_error();
	return issued;
}

static int verify_cb(int ok, X509_STORE_CTX *store)
{
	X509 *cert = X509_STORE_CTX_get_current_cert(store);
	int depth = X509_STORE_CTX_get_error_depth(store);
	if (ok && depth == 0 && cert != NULL) {
		/* clientAuth must be asserted explicitly */
		if (!(X509_get_extension_flags(cert) & EXFLAG_XKUSAGE) ||
		    !(X509_get_extended_key_usage(cert) & XKU_SSL_CLIENT)) {
			X509_STORE_CTX_set_error(store, X509_V_ERR_INVALID_PURPOSE);
			ok = 0;
		}
	}
	if (!ok) {
		int err = X509_STORE_CTX_get_error(store);
		SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
		X509 *leaf = X509_STORE_CTX_get0_cert(store);
		if (refusal_hook != NULL && ssl != NULL && leaf != NULL)
			refusal_hook(ssl, leaf, X509_verify_cert_error_string(err),
				     ca_issued(store, leaf));
		else
			cs_log_warn("client certificate refused at depth %d: %s", depth,
				    X509_verify_cert_error_string(err));
	}
	return ok;
}

/* Log the fatal alerts the server sends, with the error behind them (for
 * example "token unavailable" when the token cannot sign the handshake),
 * and report finished handshakes. */
static void info_cb(const SSL *ssl, int where, int ret)
{
	if ((where & SSL_CB_HANDSHAKE_DONE) && handshake_hook != NULL)
		handshake_hook((SSL *)ssl);
	if (!(where & SSL_CB_WRITE_ALERT) || strcmp(SSL_alert_type_string(ret), "F") != 0)
		return;
	/* the first error queued is the cause (e.g. the provider's "token
	 * unavailable"); the last is libssl's summary */
	char cause[256] = "", summary[256] = "";
	unsigned long first = ERR_peek_error(), last = ERR_peek_last_error();
	if (first != 0)
		ERR_error_string_n(first, cause, sizeof(cause));
	if (last != 0 && last != first)
		ERR_error_string_n(last, summary, sizeof(summary));
	if ((ret & 0xff) == SSL_AD_CERTIFICATE_REQUIRED && anonymous_hook != NULL)
		anonymous_hook((SSL *)ssl);
	handshakes_failed++;
	/* a peer that hangs up or speaks nonsense mid-handshake is counted
	 * (cs_tls_failed_handshakes), not logged line by line: anyone can make
	 * those; an internal error is ours (the token) and is logged */
	cs_log_write((ret & 0xff) == SSL_AD_INTERNAL_ERROR ? CS_LOG_WARN : CS_LOG_DEBUG, __func__,
		     "TLS handshake aborted: alert \"%s\" cause=\"%s\" summary=\"%s\"",
		     SSL_alert_desc_string_long(ret), cause, summary);
}


static cs_err load_crls(SSL_CTX *ctx, const char *path)
{
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	BIO *bio = BIO_new_file(path, "r");
	int loaded = 0;
	X509_CRL *crl;
	if (bio == NULL)
		return CS_E_IO;
	while ((crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)) != NULL) {
		loaded += X509_STORE_add_crl(store, crl);
		X509_CRL_free(crl);
	}
	BIO_free(bio);
	ERR_clear_error(); /* end of file */
	if (loaded == 0)
		return CS_E_CONFIG;
	X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
	return CS_OK;
}

static void log_ssl_error(const char *what, const char *path)
{
	char buf[256];
	ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
	cs_log_error("%s %s: %s", what, path, buf);
	ERR_clear_error();
}

/* The server chain and key: from the files (identity NULL) or from the
 * context in force (a reload). */
static cs_err server_identity(SSL_CTX *ctx, OSSL_LIB_CTX *libctx, const cs_config *cfg, SSL_CTX *identity)
{
	if (identity != NULL) {
		X509 *cert = SSL_CTX_get0_certificate(identity);
		EVP_PKEY *pkey = SSL_CTX_get0_privatekey(identity);
		STACK_OF(X509) *chain = NULL;
		if (cert == NULL || pkey == NULL || SSL_CTX_get0_chain_certs(identity, &chain) != 1 ||
		    SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_set1_chain(ctx, chain) != 1 ||
		    SSL_CTX_use_PrivateKey(ctx, pkey) != 1) {
			log_ssl_error("cannot keep the server certificate and key in force", cfg->tls.cert);
			return CS_E_CRYPTO;
		}
		return CS_OK;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls.cert) != 1) {
		log_ssl_error("cannot load the server certificate", cfg->tls.cert);
		return CS_E_CONFIG;
	}
	const cs_key_purpose tls_purpose = {.kind = CS_KEY_PURPOSE_TLS};
	EVP_PKEY *key = cs_provider_load_key_for(libctx, cfg->tls.key, &tls_purpose);
	if (key == NULL) {
		log_ssl_error("cannot load the server key", cfg->tls.key);
		return strncmp(cfg->tls.key, "pkcs11:", 7) == 0 ? CS_E_TOKEN_UNAVAILABLE : CS_E_CONFIG;
	}
	int ok = SSL_CTX_use_PrivateKey(ctx, key) == 1 && SSL_CTX_check_private_key(ctx) == 1;
	EVP_PKEY_free(key);
	if (!ok) {
		log_ssl_error("server key does not match the certificate", cfg->tls.cert);
		return CS_E_CONFIG;
	}
	return CS_OK;
}

static cs_err build_ctx(OSSL_LIB_CTX *libctx, const cs_config *cfg, SSL_CTX *identity, SSL_CTX **out)
{
	cs_err r = CS_E_CONFIG;
	*out = NULL;
	SSL_CTX *ctx = SSL_CTX_new_ex(libctx, NULL, TLS_server_method());
	if (ctx == NULL)
		return CS_E_CRYPTO;
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* key exchange: elliptic curves unless tls.groups says otherwise (no
	 * finite-field group by default) */
	const char *groups = cfg->tls.groups != NULL ? cfg->tls.groups
			     : cs_config_fips_tls(cfg)  ? CS_TLS_GROUPS_FIPS
							: CS_TLS_GROUPS_DEFAULT;
	if (SSL_CTX_set1_groups_list(ctx, groups) != 1) {
		log_ssl_error("the TLS groups are not available (tls.groups):", groups);
		goto out;
	}
	/* crypto.profile "fips": AES-GCM suites, ECDSA and RSA-PSS with SHA-2
	 * only, for the server's signature and the client certificate's */
	if (cs_config_fips_tls(cfg) &&
	    (SSL_CTX_set_ciphersuites(ctx, CS_TLS_CIPHERSUITES_FIPS) != 1 ||
	     SSL_CTX_set1_sigalgs_list(ctx, CS_TLS_SIGALGS_FIPS) != 1 ||
	     SSL_CTX_set1_client_sigalgs_list(ctx, CS_TLS_SIGALGS_FIPS) != 1)) {
		log_ssl_error("the FIPS-approved TLS algorithms are not available", "(crypto.profile)");
		goto out;
	}
	if ((r = server_identity(ctx, libctx, cfg, identity)) != CS_OK)
		goto out;
	r = CS_E_CONFIG;
	if (SSL_CTX_load_verify_file(ctx, cfg->tls.ca) != 1) {
		log_ssl_error("cannot load the client CA", cfg->tls.ca);
		goto out;
	}
	STACK_OF(X509_NAME) *names = SSL_load_client_CA_file_ex(cfg->tls.ca, libctx, NULL);
	if (names != NULL)
		SSL_CTX_set_client_CA_list(ctx, names);
	if (cfg->tls.crl_check && load_crls(ctx, cfg->tls.crl) != CS_OK) {
		cs_log_error("cannot load a CRL from %s", cfg->tls.crl);
		goto out;
	}
	SSL_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
	SSL_CTX_set_verify_depth(ctx, cfg->tls.verify_depth);
	SSL_CTX_set_info_callback(ctx, info_cb);
	*out = ctx;
	ctx = NULL;
	r = CS_OK;
out:
	SSL_CTX_free(ctx);
	return r;
}

cs_err cs_tls_server_ctx(OSSL_LIB_CTX *libctx, const cs_config *cfg, SSL_CTX **out)
{
	return build_ctx(libctx, cfg, NULL, out);
}

cs_err cs_tls_server_ctx_reload(OSSL_LIB_CTX *libctx, const cs_config *cfg, SSL_CTX *current, SSL_CTX **out)
{
	if (current == NULL) {
		*out = NULL;
		return CS_E_INVALID_ARG;
	}
	return build_ctx(libctx, cfg, current, out);
}

cs_err cs_tls_identity(SSL *ssl, bool allow_cn, char identity[CS_IDENTITY_MAX],
		       char sha256_hex[65])
{
	identity[0] = '\0';
	sha256_hex[0] = '\0';
	X509 *cert = SSL_get0_peer_certificate(ssl);
	if (cert == NULL || SSL_get_verify_result(ssl) != X509_V_OK)
		return CS_E_FORBIDDEN;
	return cs_tls_cert_identity(cert, allow_cn, identity, sha256_hex);
}

/* Identities go into certificates, logs and the audit log verbatim: never
 * empty, never cut. A URI holds only the characters RFC 3986 allows (no
 * space, quote or backslash: "spiffe://x/auditor " is not a second
 * auditor); a CN printable ASCII without quotes, backslashes or spaces at
 * either end. */
static int uri_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("-._~:/?#[]@!$&'()*+,;=%", c) != NULL);
}

static cs_err take_identity(const unsigned char *text, int len, int is_uri,
			    char identity[CS_IDENTITY_MAX])
{
	if (len <= 0 || len >= CS_IDENTITY_MAX)
		return CS_E_FORBIDDEN;
	if (!is_uri && (text[0] == ' ' || text[len - 1] == ' '))
		return CS_E_FORBIDDEN;
	for (int i = 0; i < len; i++)
		if (is_uri ? !uri_char(text[i])
			   : text[i] < 0x20 || text[i] > 0x7e || text[i] == '"' || text[i] == '\\')
			return CS_E_FORBIDDEN; /* NUL, controls, non-ASCII, ... */
	memcpy(identity, text, (size_t)len);
	identity[len] = '\0';
	return CS_OK;
}

/* RFC 3986 scheme ":" at the start: a CN that reads as a URI could pose as
 * another client's URI SAN identity. */
static int looks_like_uri(const char *s)
{
	if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')))
		return 0;
	for (s++; *s; s++) {
		if (*s == ':')
			return 1;
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || *s == '+' || *s == '-' || *s == '.'))
			return 0;
	}
	return 0;
}

/* The subject's one CN (a certificate with two is ambiguous: refused). */
static cs_err cn_identity(X509 *cert, char identity[CS_IDENTITY_MAX])
{
	const X509_NAME *subject = X509_get_subject_name(cert);
	int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
	if (at < 0 || X509_NAME_get_index_by_NID(subject, NID_commonName, at) >= 0)
		return CS_E_FORBIDDEN;
	const ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at));
	unsigned char *utf8 = NULL;
	int n = ASN1_STRING_to_UTF8(&utf8, cn);
	cs_err r = n < 0 ? CS_E_FORBIDDEN : take_identity(utf8, n, 0, identity);
	OPENSSL_free(utf8);
	if (r == CS_OK && looks_like_uri(identity)) {
		identity[0] = '\0';
		r = CS_E_FORBIDDEN;
	}
	return r;
}

cs_err cs_tls_cert_identity(X509 *cert, bool allow_cn, char identity[CS_IDENTITY_MAX],
			    char sha256_hex[65])
{
	identity[0] = '\0';
	sha256_hex[0] = '\0';
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	if (!X509_digest(cert, EVP_sha256(), md, &md_len) || md_len != 32)
		return CS_E_CRYPTO;
	for (unsigned i = 0; i < 32; i++)
		snprintf(sha256_hex + 2 * i, 3, "%02x", md[i]);
	GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	const ASN1_IA5STRING *uri = NULL;
	for (int i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans) && uri == NULL; i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
		if (gn->type == GEN_URI)
			uri = gn->d.uniformResourceIdentifier;
	}
	cs_err r;
	if (uri != NULL) /* the first URI SAN, whole, or nothing */
		r = take_identity(ASN1_STRING_get0_data(uri), ASN1_STRING_length(uri), 1, identity);
	else
		r = allow_cn ? cn_identity(cert, identity) : CS_E_FORBIDDEN;
	GENERAL_NAMES_free(sans);
	return r;
}
