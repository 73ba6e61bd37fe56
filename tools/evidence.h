/*
 * evidence: `credsign evidence verify FILE`, the offline check of an
 * evidence package (docs/evidence.md: the format credsign-admin evidence
 * export writes).
 *
 * Reads the tar with libarchive, refusing a hostile archive (more than one
 * top directory, a member that is not a regular file or a directory, an
 * absolute path, `.` or `..`, a duplicate, a link, a sparse member, a
 * member whose data is not its header's size, a file over 256 MiB, files
 * over 1 GiB in all or more than the archive's own bytes, anything but
 * zeros after the end-of-archive blocks), then runs every check and
 * reports every failure,
 * each naming the package file it concerns ("FAIL PATH: CODE: WHY"), and a
 * summary. No daemon, store or configuration is read.
 *
 * The certificate, key and revocation-list checks are those of `credsign
 * verify` (tools/credsign.c), passed in as cs_evidence_checks so the two
 * cannot drift; the audit chain is checked by cs_audit_verify_export
 * (audit_verify.h), the CSV rendered by cs_inventory_csv (inventory.h).
 */
#ifndef CS_EVIDENCE_H
#define CS_EVIDENCE_H

#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

/* The verifier keeps every file in memory (the checks parse them): these
 * bound what it holds, counted in bytes actually read. */
#define CS_EVIDENCE_FILE_MAX ((int64_t)256 << 20)   /* one member */
#define CS_EVIDENCE_PACKAGE_MAX ((int64_t)1 << 30)  /* the sum of the members */
#define CS_EVIDENCE_MEMBERS_MAX 200000              /* members of the archive */
#define CS_EVIDENCE_TRAILER_MAX ((int64_t)1 << 20)  /* zero padding after the end-of-archive blocks */

/* A refusal's reason: code (a stable word, as `credsign verify` prints
 * them) and why (the explanation). */
typedef struct {
	char code[40];
	char why[1024];
} cs_evidence_why;

/* The checks of `credsign verify`, each 1 on success or 0 with why filled.
 * key: the public key (the caller's) of the JWKS member kid, trusted (the
 *   kid its RFC 7638 thumbprint, not compromised, status active or retired)
 *   and active at at_ms by the JWKS dates, give or take 300 s.
 * cert: the certificate (compact JWS) verified against jwks as `credsign
 *   verify CERT --jwks` does (signature, typ, claims, the key's period,
 *   x5c); *claims on success (the caller's).
 * revocations: the revocation list verified for issuer iss with the clock
 *   at at_s (the package's creation: a list in a package is checked as of
 *   its export, not as of today); *claims on success (the caller's). */
typedef struct {
	int (*key)(json_t *jwks, const char *kid, const char *what, int64_t at_ms, EVP_PKEY **pub,
		   cs_evidence_why *why);
	int (*cert)(const char *jws, json_t *jwks, json_t **claims, cs_evidence_why *why);
	int (*revocations)(const char *list, json_t *jwks, const char *iss, int64_t at_s, json_t **claims,
			   cs_evidence_why *why);
} cs_evidence_checks;

typedef struct {
	const char *file;      /* the package (tar): a regular file */
	const char *jwks;      /* the auditor's kept JWKS, or NULL: the package's own */
	int json;              /* 1: the report as one JSON object on stdout */
} cs_evidence_opts;

/* Verifies the package and prints the report (text: FAIL lines on stdout,
 * then NOT CHECKED lines, then the summary with the manifest's created_at;
 * json: {"verified","pinned","file","keys","created_at","failures":[{"file",
 * "code","why"}],"not_checked":[{"file","check","why"}],"counts"}). A check
 * that depends on a part that failed (the entries and counts on an intact,
 * authenticated audit chain; the completeness of entries.jsonl on every
 * certificate verified) is reported not checked, not failed. Returns the
 * exit status: 0 every check passed with the keys pinned (opts->jwks),
 * 3 every check passed but against the package's own keys (intact, not
 * independently authenticated), 1 a check failed (or the archive could
 * not be read), 2 the kept JWKS or FILE cannot be opened, FILE is not a
 * regular file, or the JWKS is not one (said on stderr, naming the file). */
int cs_evidence_verify(const cs_evidence_opts *opts, const cs_evidence_checks *checks);

#endif
