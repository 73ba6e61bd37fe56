/*
 * ceremony: the pure logic of dual-control ceremonies (issue 14): action
 * names and their quorum, ceremony ids and nonces, the canonical bytes
 * officers sign, the officer set and the officer check, approval signing
 * and verification, quorum evaluation, and the transcript (rendering and
 * offline verification). OpenSSL and jansson only: no store, ledger or
 * audit calls; the caller (credsign-admin) reads and writes the store,
 * draws random bytes from its token and audits.
 *
 * Canonical bytes: JSON, compact, keys sorted, non-ASCII escaped:
 *   {"action","created_at","expires_at","id","node","nonce","params"
 *    (object),"reason" (string or null),"started_by","subject",
 *    "type":"credsign-ceremony/v1"}
 * Ids: "cer_" + 26 characters (lowercase RFC 4648 base32 of 16 random
 * bytes). Nonces: base64url of 32 random bytes (43 characters).
 *
 * Officers (cs_officers): the ceremony group of the configuration: an
 * X509_STORE holding only ceremony.officer_ca (plus ceremony.officer_crl,
 * with CRL checking, when set), the listed officers (the roster) by
 * SHA-256 fingerprint of their certificate's DER ("SHA256:" + 64
 * lowercase hex), and the quorums. Officers are distinct by name, by
 * certificate and by public key: two certificates of one key (the SHA-256
 * of their DER SubjectPublicKeyInfo, "spki", same form) are one officer.
 * An officer check says who a certificate is, or why it is refused, with a
 * stable code for the audit log:
 *   "unknown_officer"  chains to the officer CA but is not listed
 *   "other_ca"         not issued by the officer CA
 *   "expired"          past its notAfter at the time of the check
 *   "not_yet_valid"    before its notBefore
 *   "revoked"          listed in the officer CRL
 *   "crl_unusable"     the officer CRL cannot decide (expired: renew it)
 *   "bad_certificate"  not one PEM certificate, a CA certificate, or
 *                      refused by the chain check for another reason
 * Approvals add: "bad_signature" (not a signature over the ceremony's
 * canonical bytes by the certificate's key), "wrong_ceremony" (recorded
 * for another ceremony), "fingerprint_mismatch" (the recorded fingerprint
 * or officer name is not the certificate's), "duplicate_officer" (an
 * officer, by fingerprint, by public key or by name, already counted),
 * "bad_record" (a transcript's approval time unreadable, outside the
 * ceremony's life or after its execution).
 *
 * Times are RFC 3339 UTC strings as the store keeps them
 * ("2025-01-02T03:04:05.678Z"; cs_ceremony_time_parse) and time_t for
 * checks. Reasons are NUL-terminated text for people, CS_CEREMONY_WHY_MAX
 * bytes at most.
 *
 * Errors: CS_E_INVALID_ARG (malformed input: a record field, a PEM, a
 * transcript), CS_E_CONFIG (no ceremony group, unreadable CA/CRL),
 * CS_E_CEREMONY_REFUSED (an officer or approval refused: the reason and
 * code say why), CS_E_QUORUM (too few counted approvals),
 * CS_E_SIGNATURE_INVALID (a transcript that does not verify), CS_E_CRYPTO,
 * CS_E_NOMEM, and the token's errors when signing with a pkcs11: key.
 * Nothing is logged here: the caller reports.
 *
 * Ownership: returned strings and structures are malloc'd and freed by the
 * caller with the matching _free. Thread-safety: cs_officers is read-only
 * after loading and may be shared; everything else is reentrant.
 */
#ifndef CS_CEREMONY_H
#define CS_CEREMONY_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "config.h"
#include "cs_error.h"
#include "store.h"

#define CS_CEREMONY_ID_RAW 16    /* random bytes of an id */
#define CS_CEREMONY_ID_CHARS 30  /* "cer_" + 26 */
#define CS_CEREMONY_NONCE_RAW 32 /* random bytes of a nonce */
#define CS_CEREMONY_NONCE_CHARS 43
#define CS_CEREMONY_FPR_CHARS 71 /* "SHA256:" + 64 hex */
#define CS_CEREMONY_WHY_MAX 512
#define CS_CEREMONY_CODE_MAX 32
#define CS_CEREMONY_NAME_MAX 128 /* officer names (ceremony.officers[].name) */
#define CS_CEREMONY_DN_MAX 512   /* subject DN, RFC 2253 */

/* ---- actions ------------------------------------------------------------ */

typedef enum {
	CS_CEREMONY_ACTIVATE = 1,
	CS_CEREMONY_RETIRE,
	CS_CEREMONY_COMPROMISE,
	CS_CEREMONY_DESTROY,
	CS_CEREMONY_PURGE,
	CS_CEREMONY_REVOKE,
} cs_ceremony_action;

/* "activate" ... "revoke" -> the action; CS_E_INVALID_ARG when unknown. */
cs_err cs_ceremony_action_parse(const char *name, cs_ceremony_action *out) __attribute__((warn_unused_result));
/* The action's name; "unknown" for a value outside the enum. */
const char *cs_ceremony_action_name(cs_ceremony_action action);

/* ---- ids, nonces, times ------------------------------------------------- */

/* "cer_" + base32 of raw (random bytes the caller drew from the token). */
void cs_ceremony_id_from_raw(const uint8_t raw[CS_CEREMONY_ID_RAW], char out[CS_CEREMONY_ID_CHARS + 1]);
/* base64url of raw (random bytes the caller drew from the token). */
cs_err cs_ceremony_nonce_from_raw(const uint8_t raw[CS_CEREMONY_NONCE_RAW],
				  char out[CS_CEREMONY_NONCE_CHARS + 1]) __attribute__((warn_unused_result));
/* Whether id has the shape of a ceremony id (for input validation). */
int cs_ceremony_id_valid(const char *id);
/* RFC 3339 UTC "YYYY-MM-DDTHH:MM:SS[.fff]Z" -> seconds since the epoch
 * (fraction dropped); CS_E_INVALID_ARG otherwise. */
cs_err cs_ceremony_time_parse(const char *s, time_t *out) __attribute__((warn_unused_result));

/* ---- canonical bytes ---------------------------------------------------- */

/* The bytes officers sign (see the top), from c's id, action, subject,
 * reason (NULL: null), params_json (NULL: {}; else must be a JSON object),
 * nonce, node, created_at, expires_at and started_by (the other fields are
 * ignored). Every field is checked: id shape, known action, nonce shape,
 * RFC 3339 times with expires_at after created_at, valid UTF-8 strings;
 * CS_E_INVALID_ARG otherwise. *out is a malloc'd NUL-terminated string
 * (the signed bytes are its strlen). */
cs_err cs_ceremony_canonical(const cs_ceremony_record *c, char **out) __attribute__((warn_unused_result));

/* ---- officers ----------------------------------------------------------- */

typedef struct cs_officers cs_officers;

/* The officer set of cfg's ceremony group: CS_E_CONFIG with why when the
 * configuration has none ("ceremonies need the ceremony group in FILE")
 * or its CA/CRL/certificates cannot be read now. */
cs_err cs_officers_load(const cs_config *cfg, cs_officers **out, char why[CS_CEREMONY_WHY_MAX])
	__attribute__((warn_unused_result));
/* An officer set of a CA file only (verify-transcript --officer-ca): no
 * roster (the listing is not checked until one is set below), crl_file
 * optional, quorum 2 and revoke quorum 1. */
cs_err cs_officers_load_ca(const char *ca_file, const char *crl_file, cs_officers **out,
			   char why[CS_CEREMONY_WHY_MAX]) __attribute__((warn_unused_result));
/* Give a set its roster (replacing any): cfg's ceremony.officers (and its
 * quorums), as cs_officers_load does. CS_E_CONFIG with why when cfg has no
 * ceremony group. */
cs_err cs_officers_roster_config(cs_officers *o, const cs_config *cfg, char why[CS_CEREMONY_WHY_MAX])
	__attribute__((warn_unused_result));
/* The same from a roster file (verify-transcript --officers): one officer
 * a line, "NAME SHA256:HEX" (NAME 1 to 64 of A-Z a-z 0-9 . _ -, as
 * ceremony.officers names; HEX the 64 lowercase hex digits of the SHA-256
 * of the certificate's DER, as `credsign-admin ceremony show` and
 * transcripts print them), blank lines and lines starting with '#'
 * ignored, at most CS_CEREMONY_ROSTER_MAX officers, names and
 * fingerprints unique. CS_E_CONFIG with why (naming FILE:LINE) otherwise;
 * the quorums are left as they are. */
#define CS_CEREMONY_ROSTER_MAX 64
cs_err cs_officers_roster_file(cs_officers *o, const char *path, char why[CS_CEREMONY_WHY_MAX])
	__attribute__((warn_unused_result));
void cs_officers_free(cs_officers *o);
/* Approvals the action needs: ceremony.revoke_quorum for revoke, else
 * ceremony.quorum, never below 2 (revoke: never below 1). */
int cs_officers_quorum(const cs_officers *o, cs_ceremony_action action);
/* Whether the set lists its officers (has a roster: a configuration's
 * or a roster file's); without one a check names nobody and says only that
 * the certificate is from the officer CA. */
int cs_officers_listed(const cs_officers *o);
/* The number of officers on the roster (0 without one). */
size_t cs_officers_count(const cs_officers *o);

/* Who a certificate is, or why it is refused. */
typedef struct {
	char name[CS_CEREMONY_NAME_MAX];         /* the listed name; "" when not listed */
	char fingerprint[CS_CEREMONY_FPR_CHARS + 1]; /* "SHA256:hex" of the DER; "" when not parsed */
	char spki[CS_CEREMONY_FPR_CHARS + 1];    /* "SHA256:hex" of the DER SubjectPublicKeyInfo; "" likewise */
	char subject[CS_CEREMONY_DN_MAX];        /* RFC 2253 subject DN */
	char code[CS_CEREMONY_CODE_MAX];         /* "" when accepted, else see the top */
	char why[CS_CEREMONY_WHY_MAX];           /* the refusal, for people */
} cs_officer_id;

/* Check cert_pem (one PEM certificate) at time `at`: chains to the officer
 * CA only, valid at `at`, not revoked (with a CRL; the CRL must be valid at
 * `at`), and -- when the set is listed -- listed. CS_OK with name and
 * fingerprint, or CS_E_CEREMONY_REFUSED with code and why. id is always
 * filled as far as the certificate parsed. */
cs_err cs_officers_check(const cs_officers *o, const char *cert_pem, time_t at, cs_officer_id *id)
	__attribute__((warn_unused_result));
/* The same for a historic time (transcripts): the chain at `at` and the
 * CRL's entries revoked at or before `at` (a CRL issued later still
 * counts; its own validity period is not checked). */
cs_err cs_officers_check_historic(const cs_officers *o, const char *cert_pem, time_t at, cs_officer_id *id)
	__attribute__((warn_unused_result));

/* What a certificate is, unchecked: its fingerprint, spki and subject DN
 * into id (name, code and why empty). CS_E_INVALID_ARG when cert_pem is
 * not one PEM certificate (id then all empty). */
cs_err cs_officer_cert_ids(const char *cert_pem, cs_officer_id *id) __attribute__((warn_unused_result));

/* Read one PEM certificate from path into *pem (malloc'd, re-encoded: the
 * form the store keeps); CS_E_INVALID_ARG with why when the file does not
 * hold exactly one certificate, CS_E_CONFIG when it cannot be read. */
cs_err cs_officer_cert_read(const char *path, char **pem, char why[CS_CEREMONY_WHY_MAX])
	__attribute__((warn_unused_result));

/* ---- approvals ---------------------------------------------------------- */

/* Where an officer's key is. key: a PEM private key file (owned by the
 * user, mode 0600 or stricter, like a PIN file; an encrypted one asks for
 * its passphrase on the terminal), or a pkcs11: URI
 * of a key on the officer's own token, opened with module (the caller
 * resolves --officer-module, $CREDSIGN_PKCS11_MODULE, pkcs11.module) and,
 * when the URI has no pin-source, pin_file (NULL: $CREDSIGN_OFFICER_PIN_FILE,
 * else no login). */
typedef struct {
	const char *key;
	const char *module;
	const char *pin_file;
} cs_officer_key;

typedef struct {
	char *signature_b64;  /* standard base64 of the signature (malloc'd) */
	const char *sig_alg;  /* "ecdsa-with-SHA256" | "sha256WithRSAEncryption" (static) */
} cs_approval_sig;

/* Sign canonical[len] (SHA-256, EVP_DigestSign) with the officer's key
 * (EC P-256/384/521 or RSA >= 2048; else CS_E_CEREMONY_REFUSED). The
 * signature is verified with cert_pem's key before it is returned: a key
 * that is not the certificate's is CS_E_CEREMONY_REFUSED with why. A key
 * that cannot be loaded: CS_E_KEY_NOT_FOUND, or the token's error
 * (CS_E_MODULE_LOAD without a module, CS_E_PIN_*, ...), with why. The
 * certificate itself is not checked here (cs_officers_check). Free with
 * cs_approval_sig_free. */
cs_err cs_approval_sign(const cs_officer_key *key, const char *cert_pem, const uint8_t *canonical, size_t len,
			cs_approval_sig *out, char why[CS_CEREMONY_WHY_MAX]) __attribute__((warn_unused_result));
void cs_approval_sig_free(cs_approval_sig *sig);

/* Verify an approval signature: sig_alg must match the certificate's key
 * type (EC: ecdsa-with-SHA256, RSA: sha256WithRSAEncryption). CS_OK, or
 * CS_E_CEREMONY_REFUSED with why (code "bad_signature"). */
cs_err cs_approval_verify(const char *cert_pem, const char *sig_alg, const char *signature_b64,
			  const uint8_t *canonical, size_t len, char why[CS_CEREMONY_WHY_MAX])
	__attribute__((warn_unused_result));

/* ---- a ceremony as read from the store ---------------------------------- */

/* A ceremony with its approvals and (activate, executed) its rollover
 * statement, owning copies of the strings. Fill it with
 *   cs_store_ceremony_get(store, id, cs_ceremony_doc_on_ceremony,
 *                         cs_ceremony_doc_on_approval, &doc);
 * and, for the rollover, cs_store_rollovers_each(store,
 * cs_ceremony_doc_on_rollover, &doc) (keeps the one of doc's ceremony).
 * doc.status is CS_E_NOMEM when a copy failed. Zero-initialise first;
 * free with cs_ceremony_doc_free. */
typedef struct {
	cs_ceremony_record c;          /* all strings owned; c.id NULL until read */
	cs_approval_record *approvals; /* napprovals, strings owned */
	size_t napprovals;
	char *rollover_json;           /* the rollover statement, NULL: none */
	cs_err status;
} cs_ceremony_doc;
void cs_ceremony_doc_on_ceremony(void *doc, const cs_ceremony_record *c);
void cs_ceremony_doc_on_approval(void *doc, const cs_approval_record *a);
void cs_ceremony_doc_on_rollover(void *doc, const cs_rollover_record *r);
void cs_ceremony_doc_free(cs_ceremony_doc *doc);

/* ---- quorum ------------------------------------------------------------- */

typedef struct {
	int counted;                       /* 1: valid and counted toward the quorum */
	cs_officer_id id;                  /* the officer check (code/why of any refusal) */
} cs_approval_verdict;

typedef struct {
	int required, counted;
	cs_approval_verdict *verdicts; /* one per approval, in order (malloc'd) */
	size_t nverdicts;
	char why[CS_CEREMONY_WHY_MAX]; /* when not met, or the record is bad */
} cs_quorum_report;

/* Evaluate doc at execution time `at`: the canonical bytes recomputed from
 * the record must equal doc->c.canonical (else CS_E_INVALID_ARG, why);
 * each approval must be for this ceremony, its certificate pass
 * cs_officers_check at `at`, its recorded officer name and fingerprint be
 * the certificate's, its signature verify over the canonical bytes; a
 * valid approval counts when neither its fingerprint, nor its public key
 * (spki), nor its name has counted already. CS_OK when counted >= cs_officers_quorum(o, action),
 * else CS_E_QUORUM; the report says which approvals did not count and
 * why. Expiry and state are the caller's (the ledger re-checks them).
 * Free with cs_quorum_report_free. */
cs_err cs_ceremony_quorum(const cs_officers *o, const cs_ceremony_doc *doc, time_t at, cs_quorum_report *rep)
	__attribute__((warn_unused_result));
void cs_quorum_report_free(cs_quorum_report *rep);

/* ---- transcripts -------------------------------------------------------- */

#define CS_TRANSCRIPT_BEGIN "-----BEGIN CREDSIGN CEREMONY RECORD-----"
#define CS_TRANSCRIPT_END "-----END CREDSIGN CEREMONY RECORD-----"

/* The transcript of doc: a readable record (the ceremony's fields, who
 * started it, each approval with officer name, subject DN, fingerprint,
 * time, signature algorithm and signature; the execution with time, actor
 * and result, and the rollover statement) followed by the armored
 * base64 of a JSON record of the same (certificates included). quorum:
 * the approvals the action required (recorded in the transcript). *out
 * malloc'd, NUL-terminated. */
cs_err cs_ceremony_transcript(const cs_ceremony_doc *doc, int quorum, char **out) __attribute__((warn_unused_result));

/* What became of the rollover statement's old-key signature. */
typedef enum {
	CS_ROLLOVER_OLD_UNCHECKED = 0, /* not looked at (verification stopped before, or not activate) */
	CS_ROLLOVER_OLD_VERIFIED,      /* verified with the old kid's key in the JWKS */
	CS_ROLLOVER_OLD_NO_JWKS,       /* present, not verified: no JWKS given */
	CS_ROLLOVER_OLD_NONE,          /* no previous key (old_kid null): nothing to check */
	CS_ROLLOVER_OLD_COMPROMISED,   /* absent, excused: the JWKS shows the old key compromised */
} cs_rollover_old;

typedef struct {
	char id[CS_CEREMONY_ID_CHARS + 1];
	char action[16];
	int required, counted;
	cs_approval_verdict *verdicts; /* one per approval (malloc'd) */
	size_t nverdicts;
	int listed;            /* the officers were checked against a roster (cs_officers_listed) */
	int approvals_checked; /* the approvals were checked (verdicts, counted, required mean something) */
	int rollover_checked;  /* activate: the rollover statement was checked to its end */
	int rollover_new_ok;   /* activate: the new key's signature verified */
	cs_rollover_old rollover_old; /* activate: the old key's signature */
	char why[CS_CEREMONY_WHY_MAX]; /* the first failure */
} cs_transcript_report;

/* Verify a transcript offline: the armored record decodes; the readable
 * part re-rendered from it equals the text before the armor byte for byte
 * (an edited line fails); the canonical bytes recomputed from its
 * ceremony equal the recorded ones; every approval: for this ceremony, its
 * certificate chains to o's CA at the approval time
 * (cs_officers_check_historic: listed too when o has a roster; without
 * one, the recorded name is taken as it is -- rep->listed 0 says so), the
 * recorded fingerprint is the certificate's, the signature verifies over
 * the canonical bytes, it was approved within the ceremony's life and not
 * after its execution; distinct officers (fingerprint, public key and
 * name) >= max(recorded quorum,
 * cs_officers_quorum(o, action)); an activate that was executed carries a
 * rollover statement (RFC 7515 general JSON) for this ceremony and its
 * subject, whose new-key signature verifies with the new_jwk it carries
 * (thumbprint = new_kid), and, when jwks is given, whose old-key signature
 * verifies with the old kid's key in jwks. CS_OK when all hold, else
 * CS_E_SIGNATURE_INVALID (or CS_E_QUORUM / CS_E_INVALID_ARG) with rep->why.
 * rep->approvals_checked and rep->rollover_checked say how far it got
 * (a check it stopped before is not reported as made). Free with
 * cs_transcript_report_free. */
cs_err cs_ceremony_transcript_verify(const char *text, size_t len, const cs_officers *o, const json_t *jwks,
				     cs_transcript_report *rep) __attribute__((warn_unused_result));
void cs_transcript_report_free(cs_transcript_report *rep);

#endif
