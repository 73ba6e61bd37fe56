/*
 * officer_pki: a ceremony officer PKI for the unit tests, made with
 * OpenSSL's APIs in a directory (config_test, ceremony_test):
 *
 *   DIR/officer-ca.pem/.key    the officers' CA (EC P-256)
 *   DIR/other-ca.pem/.key      an unrelated CA
 *   DIR/officer-crl.pem        the officer CA's CRL: officer-revoked,
 *                              revoked OP_REVOKED_AGO seconds ago
 *   DIR/other-crl.pem          a CRL of the other CA
 *   DIR/officers/NAME.pem/.key officer-a, -b, -c (listed by the tests),
 *                              officer-x (valid, never listed),
 *                              officer-revoked, officer-expired (expired a
 *                              day ago), officer-other (from the other CA),
 *                              officer-rsa (RSA 2048, from the officer CA)
 * Every certificate is valid from a day ago for a year unless said.
 */
#ifndef CS_OFFICER_PKI_H
#define CS_OFFICER_PKI_H

#include <openssl/evp.h>

#define OP_REVOKED_AGO 1800

/* Make the PKI under dir (created); 0 on success. */
int op_make(const char *dir);
/* Issue DIR/officers/NAME.pem for the public key pub from the officer CA
 * (an officer whose key is elsewhere, e.g. in a token); 0 on success. */
int op_issue(const char *dir, const char *name, EVP_PKEY *pub);
/* "SHA256:hex" of the DER of the PEM certificate at path into out[72]; 0 on success. */
int op_fingerprint(const char *path, char out[72]);

#endif
