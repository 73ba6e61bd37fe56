/*
 * tls: the daemon's mTLS 1.3 server context and client identities.
 *
 * cs_tls_server_ctx() builds an SSL_CTX in the daemon's library context:
 * TLS 1.3 only; server chain from tls.cert; server key from tls.key (a PEM
 * file, or a pkcs11: URI loaded through the credsign provider); client
 * certificate required and verified against tls.ca, with the clientAuth EKU
 * required (present, not merely allowed), tls.verify_depth, and the CRL when
 * tls.crl_check is set; no session resumption (every connection presents
 * its certificate). A refused client certificate is logged with its subject
 * and the reason.
 *
 * cs_tls_identity() names the peer: its first URI SAN, with the SHA-256 of
 * its DER certificate (lower-case hex). Only when allow_cn is set
 * (tls.identity_from_cn) and the certificate has no URI SAN, its subject CN
 * instead; a CN that reads as a URI (scheme ":"), or a subject with two CNs,
 * is refused. An identity that is empty or longer than CS_IDENTITY_MAX - 1
 * bytes, a URI with a character RFC 3986 does not allow (space, quote,
 * backslash, NUL, non-ASCII), or a CN with quotes, backslashes, controls or
 * spaces at either end is refused, never cut (CS_E_FORBIDDEN).
 */
#ifndef CS_TLS_H
#define CS_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "config.h"
#include "cs_error.h"

#define CS_IDENTITY_MAX 256

cs_err cs_tls_server_ctx(OSSL_LIB_CTX *libctx, const cs_config *cfg, SSL_CTX **out)
	__attribute__((warn_unused_result));
/* The same for a SIGHUP reload: the client CA and CRL read again from
 * their files, the server chain and key taken from `current` (the context
 * in force), not read again: the network process that reloads runs as
 * server.user, which may not read tls.key (a file of root's, or a token key
 * the key process holds). */
cs_err cs_tls_server_ctx_reload(OSSL_LIB_CTX *libctx, const cs_config *cfg, SSL_CTX *current, SSL_CTX **out)
	__attribute__((warn_unused_result));
cs_err cs_tls_identity(SSL *ssl, bool allow_cn, char identity[CS_IDENTITY_MAX],
		       char sha256_hex[65]);
/* The same naming for a certificate (also one that failed verification). */
cs_err cs_tls_cert_identity(X509 *cert, bool allow_cn, char identity[CS_IDENTITY_MAX],
			    char sha256_hex[65]);
/* Called when a client certificate is refused, with the certificate, the
 * reason and whether our CA issued it (its signature chain verifies, so
 * its identity is the CA's word; else the names in it are only claims).
 * The hook logs and audits. */
typedef void (*cs_tls_refusal_fn)(SSL *ssl, X509 *cert, const char *reason, int ca_issued);
void cs_tls_on_refusal(cs_tls_refusal_fn fn);
/* Called when a handshake is refused because the peer sent no certificate. */
typedef void (*cs_tls_anonymous_fn)(SSL *ssl);
void cs_tls_on_anonymous_refusal(cs_tls_anonymous_fn fn);
/* Handshakes that ended with a fatal alert from us, since start. */
long cs_tls_failed_handshakes(void);
/* Called when a connection's handshake has finished (client verified). */
typedef void (*cs_tls_handshake_fn)(SSL *ssl);
void cs_tls_on_handshake_done(cs_tls_handshake_fn fn);

#endif
