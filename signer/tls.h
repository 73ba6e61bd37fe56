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
 * cs_tls_identity() names the peer: its first URI SAN, else its subject CN,
 * with the SHA-256 of its DER certificate (lower-case hex). An identity that
 * is not printable ASCII is refused (CS_E_FORBIDDEN).
 */
#ifndef CS_TLS_H
#define CS_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "config.h"
#include "cs_error.h"

#define CS_IDENTITY_MAX 256

cs_err cs_tls_server_ctx(OSSL_LIB_CTX *libctx, const cs_config *cfg, SSL_CTX **out)
	__attribute__((warn_unused_result));
cs_err cs_tls_identity(SSL *ssl, char identity[CS_IDENTITY_MAX], char sha256_hex[65]);
/* The same naming for a certificate (also one that failed verification). */
cs_err cs_tls_cert_identity(X509 *cert, char identity[CS_IDENTITY_MAX], char sha256_hex[65]);
/* Called once per connection whose client certificate is refused, with the
 * certificate (identifiable peer) and the reason; for the audit log. */
typedef void (*cs_tls_refusal_fn)(SSL *ssl, X509 *cert, const char *reason);
void cs_tls_on_refusal(cs_tls_refusal_fn fn);

#endif
