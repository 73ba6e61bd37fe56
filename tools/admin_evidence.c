/*
 * admin_evidence: `credsign-admin evidence export`, the auditor's evidence
 * package (admin.h; the format: docs/evidence.md).
 *
 *   evidence export --project P [--environment E] --from DATE --to DATE
 *                   --standards a,b --out FILE --auditor-cert C --auditor-key K
 *                   [--auditor-module M] [--wait SECONDS] [--force]
 *
 * DATE: YYYY-MM-DD (a whole UTC day: --from from 00:00:00.000, --to through
 * 23:59:59.999) or RFC 3339 UTC (2026-01-31T10:00:00Z, or with
 * milliseconds).
 *
 * The auditor: C verifies against tls.ca (and tls.crl when set), is valid
 * now and asserts clientAuth; its identity is the daemon's
 * (cs_tls_cert_identity, tls.identity_from_cn); K (a PEM key or a pkcs11:
 * URI, as ceremony approve --officer-key) signs a fresh random challenge
 * that must verify with C's key; access.grants must give the identity an
 * auditor grant covering P (audit.read for project P). Each refusal exits 1
 * ("evidence export refused: ...") and is audited (evidence.export, outcome
 * refused, error_code forbidden: actor the identity once C verified and
 * K proved possession of its key, role client; else the local user, role
 * admin: a certificate alone never puts its identity in the log). An export that cannot be made
 * (the range not under a signed checkpoint, --out's directory missing, the
 * store or the token failing) exits 1 ("evidence export failed: ...") and
 * is audited with outcome failure. Usage errors (a bad date, an unknown
 * standard, a missing option) exit 2 and are not audited; an existing
 * FILE without --force exits 1 before anything is done.
 *
 * The package: a POSIX (pax) tar written to FILE.tmp (mode 0600), complete
 * and flushed, then the evidence.export entry (actor the auditor, role
 * auditor), then renamed to FILE; when the entry cannot be written the
 * file is removed and the export fails. FILE is replaced only with
 * --force (else the rename refuses to replace it). The manifest is signed in the
 * token by the store's active certificate key, as the purge checkpoints.
 * An in-scope audit entry not yet under a signed checkpoint refuses the
 * export (exit 1) saying when the daemon signs the next one.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "access.h"
#include "admin.h"
#include "app.h"
#include "audit.h"
#include "ceremony.h"
#include "cs_secret.h"
#include "certsign.h"
#include "generate.h"
#include "inventory.h"
#include "jose.h"
#include "json_text.h"
#include "ledger.h"
#include "policy.h"
#include "preset.h"
#include "provider.h"
#include "service.h"
#include "store_target.h"
#include "tls.h"

#define EV_FORMAT "credsign-evidence/1"
#define EV_TYP "credsign-evidence+jwt"
#define EV_ACTION "evidence.export"
#define EV_STANDARDS_MAX 8
#define EV_DAY_MS 86400000LL

typedef struct {
	const char *config_path, *project, *environment, *from, *to, *standards, *out;
	const char *auditor_cert, *auditor_key, *auditor_module;
	int wait_s; /* --wait: seconds to wait for a checkpoint over the range */
	int force;  /* --force: FILE may be replaced */
	cs_log_level level;
} ev_opts;

/* One file of the package: its path under the top directory and bytes. */
typedef struct {
	char *path;
	char *data;
	size_t len;
} ev_file;

typedef struct {
	admin_ctx *a;
	const ev_opts *op;
	int64_t from_ms, to_ms, now_ms;
	char from_ts[32], to_ts[32], created_at[32];
	char top[400]; /* credsign-evidence-P-FROM-TO */
	char operator_id[96];
	/* the auditor */
	char identity[CS_IDENTITY_MAX], cert_sha256[65];
	int verified; /* the certificate verified: identity is the CA's word */
	/* what the package is made of */
	cs_preset_set *presets;
	cs_wordlist *wordlist;
	const cs_preset *chosen[EV_STANDARDS_MAX];
	size_t nchosen;
	ev_file *files;
	size_t nfiles, cap;
	json_t *counts;
	cs_store *store;
	cs_signer *signer;
	OSSL_LIB_CTX *libctx;
	OSSL_PROVIDER *prov, *deflt;
	char manifest_sha256[65];
} ev_export;

/* ---- small helpers ----------------------------------------------------------------- */

static int64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void hex32(const unsigned char md[32], char out[65])
{
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int n = 0;
	if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32)
		return -1;
	hex32(md, out);
	return 0;
}

/* The shape of YYYY-MM-DDTHH:MM:SS.mmmZ: digits where digits go and the
 * separators in place (the values are checked after). */
static int instant_shaped(const char ts[25])
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	for (size_t i = 0; i < sizeof(shape) - 1; i++)
		if (shape[i] == 'd' ? (ts[i] < '0' || ts[i] > '9') : ts[i] != shape[i])
			return 0;
	return ts[sizeof(shape) - 1] == '\0';
}

/* --from/--to: a whole UTC day (end: its last millisecond) or an RFC 3339
 * UTC instant (YYYY-MM-DDTHH:MM:SSZ or with milliseconds). 0, or -1 when
 * not of either form, -2 when of the form but no such day or time
 * (2026-11-31, 25:00). */
static int parse_date(const char *s, int end, int64_t *ms)
{
	char ts[32];
	size_t n = strlen(s);
	if (n == 10)
		snprintf(ts, sizeof(ts), "%sT00:00:00.000Z", s);
	else if (n == 20 && s[19] == 'Z')
		snprintf(ts, sizeof(ts), "%.19s.000Z", s);
	else if (n == 24)
		snprintf(ts, sizeof(ts), "%s", s);
	else
		return -1;
	if (!instant_shaped(ts))
		return -1;
	char back[32];
	if (cs_audit_time_parse(ts, ms) != CS_OK)
		return -2;
	cs_audit_time_format(*ms, back); /* no 2026-02-30 or 25:00 */
	if (strcmp(back, ts) != 0)
		return -2;
	if (n == 10 && end)
		*ms += EV_DAY_MS - 1;
	return 0;
}

/* A bad --from/--to said: the option, the value, and what is wrong. */
static int date_arg(const char *opt, const char *s, int end, int64_t *ms)
{
	int r = parse_date(s, end, ms);
	if (r == -2)
		fprintf(stderr, "credsign-admin: %s %s: no such %s\n", opt, s, strlen(s) == 10 ? "day" : "day or time");
	else if (r != 0)
		fprintf(stderr, "credsign-admin: %s %s: not YYYY-MM-DD (a whole UTC day) nor an RFC 3339 UTC time "
				"(2026-01-31T10:00:00Z, 2026-01-31T10:00:00.000Z)\n",
			opt, s);
	return r == 0 ? 0 : 2;
}

static void yyyymmdd(int64_t ms, char out[9])
{
	char ts[32];
	cs_audit_time_format(ms, ts);
	snprintf(out, 9, "%.4s%.2s%.2s", ts, ts + 5, ts + 8);
}

/* A name that can be part of the package's top directory: printable ASCII,
 * no '/' nor '\\', not "." or "..". */
static int name_ok(const char *s)
{
	if (s == NULL || s[0] == '\0' || strlen(s) > 128 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return 0;
	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		if (*c < 0x21 || *c > 0x7e || *c == '/' || *c == '\\')
			return 0;
	return 1;
}

/* Add a file (takes data, malloc'd; frees it on failure). */
static cs_err add_file(ev_export *x, const char *path, char *data, size_t len)
{
	if (data == NULL)
		return CS_E_NOMEM;
	if (x->nfiles == x->cap) {
		size_t cap = x->cap == 0 ? 32 : x->cap * 2;
		ev_file *more = realloc(x->files, cap * sizeof(*more));
		if (more == NULL) {
			free(data);
			return CS_E_NOMEM;
		}
		x->files = more, x->cap = cap;
	}
	char *p = strdup(path);
	if (p == NULL) {
		free(data);
		return CS_E_NOMEM;
	}
	x->files[x->nfiles++] = (ev_file){p, data, len};
	return CS_OK;
}

/* Add j as compact JSON (consumes j): sorted keys (the manifest), or in
 * the order built (PRESERVE: as the daemon serves its documents). */
#define EV_SORTED (JSON_COMPACT | JSON_SORT_KEYS)
#define EV_SERVED (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12))
static cs_err add_json(ev_export *x, const char *path, json_t *j, size_t flags)
{
	if (j == NULL)
		return CS_E_NOMEM;
	char *text = cs_json_text(j, flags);
	json_decref(j);
	return text != NULL ? add_file(x, path, text, strlen(text)) : CS_E_NOMEM;
}

/* ---- the audit entry ------------------------------------------------------------------ */

static void scope_object(const ev_export *x, char *out, size_t cap)
{
	const ev_opts *op = x->op;
	snprintf(out, cap, "project=%s environment=%s from=%s to=%s standards=%s", op->project,
		 op->environment != NULL ? op->environment : "-", x->from_ts, x->to_ts, op->standards);
}

/* The evidence.export entry: success (role auditor) or a refusal. */
static cs_err record(ev_export *x, const char *outcome, const char *error_code, const char *reason)
{
	char object[1024], scope[640], ts[32];
	scope_object(x, scope, sizeof(scope));
	if (error_code == NULL)
		snprintf(object, sizeof(object), "%s manifest_sha256=%s operator=%s", scope, x->manifest_sha256,
			 x->operator_id);
	else
		snprintf(object, sizeof(object), "%s operator=%s: %s", scope, x->operator_id, reason);
	cs_audit_now(ts);
	int success = error_code == NULL;
	cs_audit_entry e = {
		.ts = ts,
		.node = x->a->cfg->server.node_id,
		.actor = x->verified ? x->identity : x->operator_id,
		.actor_cert_sha256 = x->cert_sha256[0] != '\0' ? x->cert_sha256 : NULL,
		.role = success ? "auditor" : x->verified ? "client" : "admin",
		.action = EV_ACTION,
		.object = object,
		.project = x->op->project,
		.environment = x->op->environment,
		.outcome = outcome,
		.error_code = error_code,
	};
	cs_ledger *ledger = NULL;
	cs_err r = cs_ledger_connect_config(x->a->cfg, &ledger);
	if (r == CS_OK)
		r = cs_ledger_audit_append(ledger, &e);
	cs_ledger_close(ledger);
	if (r != CS_OK)
		fprintf(stderr, "credsign-admin: the audit log could not record %s: %s\n", EV_ACTION, cs_strerror(r));
	return r;
}

/* An access refusal (error_code forbidden, outcome refused): why on
 * stderr, audited; returns 1. */
__attribute__((format(printf, 2, 3))) static int refuse(ev_export *x, const char *fmt, ...)
{
	char why[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	fprintf(stderr, "credsign-admin: evidence export refused: %s\n", why);
	(void)record(x, "refused", "forbidden", why);
	return 1;
}

/* The audit error_code of a failure cs_err r. */
static const char *failure_code(cs_err r)
{
	switch (cs_err_category_of(r)) {
	case CS_CAT_TOKEN: return "token_unavailable";
	case CS_CAT_STORE: return "store_unavailable";
	default: return "internal_error";
	}
}

/* An export that could not be made (outcome failure, error_code code):
 * why on stderr, audited; returns 1. */
__attribute__((format(printf, 3, 4))) static int fail(ev_export *x, const char *code, const char *fmt, ...)
{
	char why[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	fprintf(stderr, "credsign-admin: evidence export failed: %s\n", why);
	(void)record(x, "failure", code, why);
	return 1;
}

/* ---- the auditor ------------------------------------------------------------------------ */

static const char *ssl_reason(void)
{
	const char *s = ERR_reason_error_string(ERR_peek_last_error());
	return s != NULL ? s : "unknown error";
}

/* C against tls.ca (and tls.crl), now, with clientAuth asserted. */
static int auditor_cert_check(ev_export *x, X509 *cert, char *why, size_t cap)
{
	const cs_config *cfg = x->a->cfg;
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	BIO *bio = NULL;
	int ok = 0;
	if (st == NULL || ctx == NULL || X509_STORE_load_file(st, cfg->tls.ca) != 1) {
		snprintf(why, cap, "cannot load the client CA %s: %s", cfg->tls.ca, ssl_reason());
		goto out;
	}
	if (cfg->tls.crl != NULL) {
		int loaded = 0;
		X509_CRL *crl;
		if ((bio = BIO_new_file(cfg->tls.crl, "r")) != NULL)
			while ((crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)) != NULL) {
				loaded += X509_STORE_add_crl(st, crl);
				X509_CRL_free(crl);
			}
		ERR_clear_error();
		if (loaded == 0) {
			snprintf(why, cap, "cannot load a CRL from %s (tls.crl)", cfg->tls.crl);
			goto out;
		}
		X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK);
	}
	if (X509_STORE_CTX_init(ctx, st, cert, NULL) != 1) {
		snprintf(why, cap, "cannot verify the certificate: %s", ssl_reason());
		goto out;
	}
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
	if (cfg->tls.verify_depth > 0)
		X509_STORE_CTX_set_depth(ctx, cfg->tls.verify_depth);
	if (X509_verify_cert(ctx) != 1) {
		snprintf(why, cap, "the auditor certificate does not verify against the client CA %s%s: %s",
			 cfg->tls.ca, cfg->tls.crl != NULL ? " and its CRL" : "",
			 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
		goto out;
	}
	if (!(X509_get_extension_flags(cert) & EXFLAG_XKUSAGE) ||
	    !(X509_get_extended_key_usage(cert) & XKU_SSL_CLIENT)) {
		snprintf(why, cap, "the auditor certificate does not assert the clientAuth extended key usage");
		goto out;
	}
	ok = 1;
out:
	ERR_clear_error();
	BIO_free(bio);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	return ok;
}

/* cs_approval_sign's reasons speak of an officer (the ceremony's signer):
 * here the signer is the auditor. */
static void auditor_words(const char *in, char *out, size_t cap)
{
	static const struct {
		const char *from, *to;
	} words[] = {{"--officer-module", "--auditor-module"}, {"officer", "auditor"}};
	size_t n = 0;
	while (*in != '\0' && n + 1 < cap) {
		size_t k = 0;
		while (k < sizeof(words) / sizeof(words[0]) && strncmp(in, words[k].from, strlen(words[k].from)) != 0)
			k++;
		if (k < sizeof(words) / sizeof(words[0])) {
			n += (size_t)snprintf(out + n, cap - n, "%s", words[k].to);
			n = n < cap ? n : cap - 1;
			in += strlen(words[k].from);
		} else {
			out[n++] = *in++;
		}
	}
	out[n] = '\0';
}

/* A file the auditor names (--auditor-cert, a --auditor-key file): NULL
 * when it can be read, else why (errno's text). */
static const char *unreadable(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return strerror(errno);
	close(fd);
	return NULL;
}

/* The certificate, proof of possession of its key, the grant. 0 or 1
 * (refused and audited) or 2 (usage). */
static int auditor_check(ev_export *x)
{
	const ev_opts *op = x->op;
	char why[CS_CEREMONY_WHY_MAX] = "", reason[512];
	char *pem = NULL;
	X509 *cert = NULL;
	cs_access *access = NULL;
	cs_approval_sig sig = {0};
	int rc = 1;
	const char *cannot = unreadable(op->auditor_cert);
	if (cannot != NULL) {
		rc = refuse(x, "--auditor-cert %s: cannot be read: %s", op->auditor_cert, cannot);
		goto out;
	}
	if (cs_officer_cert_read(op->auditor_cert, &pem, why) != CS_OK) {
		rc = refuse(x, "--auditor-cert %s", why); /* why begins with the path */
		goto out;
	}
	BIO *b = BIO_new_mem_buf(pem, -1);
	cert = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	char claimed[CS_IDENTITY_MAX];
	if (cert == NULL || cs_tls_cert_identity(cert, x->a->cfg->tls.identity_from_cn, claimed, x->cert_sha256) ==
				    CS_E_CRYPTO) {
		rc = refuse(x, "--auditor-cert %s: not a certificate", op->auditor_cert);
		goto out;
	}
	if (!auditor_cert_check(x, cert, reason, sizeof(reason))) {
		rc = refuse(x, "%s", reason);
		goto out;
	}
	if (cs_tls_cert_identity(cert, x->a->cfg->tls.identity_from_cn, x->identity, x->cert_sha256) != CS_OK) {
		rc = refuse(x, "the auditor certificate names no identity (no URI SAN%s)",
			    x->a->cfg->tls.identity_from_cn ? " nor subject CN" : "; tls.identity_from_cn is off");
		goto out;
	}
	/* proof of possession: K signs a fresh challenge that C's key verifies */
	unsigned char challenge[64];
	memcpy(challenge, "credsign evidence export challenge:", 32);
	if (RAND_bytes(challenge + 32, 32) != 1) {
		rc = fail(x, "internal_error", "no randomness for the challenge");
		goto out;
	}
	cs_officer_key key = {.key = op->auditor_key, .module = op->auditor_module, .pin_file = NULL};
	if (key.module == NULL) {
		const char *env = getenv("CREDSIGN_PKCS11_MODULE");
		key.module = env != NULL && env[0] != '\0' ? env : x->a->cfg->pkcs11.module;
	}
	if (strncmp(op->auditor_key, "pkcs11:", 7) != 0 && (cannot = unreadable(op->auditor_key)) != NULL) {
		rc = refuse(x, "proof of possession with --auditor-key %s failed: the key file cannot be read: %s",
			    op->auditor_key, cannot);
		goto out;
	}
	const char *perm = NULL;
	if (strncmp(op->auditor_key, "pkcs11:", 7) != 0 && cs_secret_check_file(op->auditor_key, &perm) != CS_OK) {
		rc = refuse(x, "--auditor-key: %s; the auditor's key file must be the auditor's alone",
			    perm != NULL ? perm : "not a private file");
		goto out;
	}
	cs_err r = cs_approval_sign(&key, pem, challenge, sizeof(challenge), &sig, why);
	if (r != CS_OK) {
		char said[CS_CEREMONY_WHY_MAX];
		auditor_words(why[0] != '\0' ? why : cs_strerror(r), said, sizeof(said));
		rc = refuse(x, "proof of possession with --auditor-key %s failed: %s", op->auditor_key, said);
		goto out;
	}
	x->verified = 1; /* the identity is the CA's word and its key is here: entries name it */
	cs_access_decision d;
	cs_access_scope scope = {.project = op->project};
	if ((r = cs_access_new(x->a->cfg, &access)) != CS_OK) {
		rc = fail(x, "internal_error", "the access grants: %s", cs_strerror(r));
		goto out;
	}
	cs_access_decide(access, x->identity, CS_ACTION_AUDIT_READ, &scope, 0, 0, &d);
	if (!d.allowed || d.role == NULL || strcmp(d.role, "auditor") != 0) {
		if (d.allowed) /* audit.read by a grant of another role */
			rc = refuse(x, "%s holds no auditor grant for project %s (its grant %s is a %s grant)",
				    x->identity, op->project, d.grant, d.role != NULL ? d.role : "?");
		else
			rc = refuse(x, "%s holds no auditor grant for project %s", x->identity, op->project);
		goto out;
	}
	rc = 0;
out:
	cs_approval_sig_free(&sig);
	cs_access_unref(access);
	X509_free(cert);
	free(pem);
	return rc;
}

/* ---- the parts of the package --------------------------------------------------------- */

typedef struct {
	ev_export *x;
	json_t *ids; /* {cert or session id: 1} */
	int64_t first, last, count;
	int failed;
} scope_scan;

/* Does object begin with an in-scope id (the id whole: followed by the
 * end or a character that is not base64url)? */
static int in_scope_object(const json_t *ids, const char *object)
{
	if (object == NULL)
		return 0;
	size_t n = strcspn(object, " :,;/");
	if (n == 0 || n > 64)
		return 0;
	char id[65];
	memcpy(id, object, n);
	id[n] = '\0';
	return json_object_get(ids, id) != NULL;
}

static int scan_entry(void *arg, const cs_audit_entry *e, const uint8_t prev[32], const uint8_t hash[32])
{
	(void)prev, (void)hash;
	scope_scan *s = arg;
	if (in_scope_object(s->ids, e->object)) {
		if (s->count == 0)
			s->first = e->seq;
		s->last = e->seq;
		s->count++;
	}
	return 0;
}

typedef struct {
	int64_t last; /* the covering checkpoint's last_seq; 0: none */
	char newest_ts[32];
} cover_find;

static int find_cover(void *arg, int64_t first, int64_t last, const uint8_t head[32], const char *ts,
		      const char *node, const char *kind, const char *jws)
{
	(void)first, (void)head, (void)node, (void)ts;
	cover_find *c = arg;
	if (strcmp(kind, "purge") == 0 || jws == NULL || jws[0] == '\0')
		return 0;
	c->last = last;
	return 1;
}

static int newest_checkpoint(void *arg, int64_t first, int64_t last, const uint8_t head[32], const char *ts,
			     const char *node, const char *kind, const char *jws)
{
	(void)first, (void)last, (void)head, (void)node, (void)kind, (void)jws;
	cover_find *c = arg;
	if (ts != NULL && strcmp(ts, c->newest_ts) > 0)
		snprintf(c->newest_ts, sizeof(c->newest_ts), "%s", ts);
	return 0;
}

typedef struct {
	const json_t *ids;
	const char *project;
	char *chain, *entries; /* growing texts */
	size_t chain_len, entries_len, chain_cap, entries_cap;
	int64_t chain_entries, audit_entries, other_project;
	int failed;
} chain_build;

static int append(char **buf, size_t *len, size_t *cap, const char *line, size_t n)
{
	if (*len + n + 2 > *cap) {
		size_t c = *cap == 0 ? 65536 : *cap;
		while (*len + n + 2 > c)
			c *= 2;
		char *more = realloc(*buf, c);
		if (more == NULL)
			return -1;
		*buf = more, *cap = c;
	}
	memcpy(*buf + *len, line, n);
	(*buf)[*len + n] = '\n';
	*len += n + 1;
	(*buf)[*len] = '\0';
	return 0;
}

/* One line of the partial export (credsign-admin audit export's form). */
static int chain_line(void *arg, json_t *j)
{
	chain_build *c = arg;
	char *line = cs_json_text(j, JSON_COMPACT | JSON_SORT_KEYS);
	int entry = strcmp(json_string_value(json_object_get(j, "type")) ?: "", "entry") == 0;
	int scoped = entry && in_scope_object(c->ids, json_string_value(json_object_get(j, "object")));
	const char *project = json_string_value(json_object_get(j, "project"));
	if (entry) {
		c->chain_entries++;
		if (project == NULL || strcmp(project, c->project) != 0)
			c->other_project++;
	}
	json_decref(j);
	if (line == NULL || append(&c->chain, &c->chain_len, &c->chain_cap, line, strlen(line)) != 0 ||
	    (scoped && append(&c->entries, &c->entries_len, &c->entries_cap, line, strlen(line)) != 0)) {
		free(line);
		c->failed = 1;
		return 1;
	}
	if (scoped)
		c->audit_entries++;
	free(line);
	return 0;
}

/* audit/chain.jsonl and audit/entries.jsonl. 0, or 1 (refused/failed,
 * said and audited). */
static int audit_part(ev_export *x, const json_t *ids)
{
	scope_scan s = {.x = x, .ids = (json_t *)ids};
	cover_find cover = {0};
	chain_build c = {.ids = ids, .project = x->op->project};
	int64_t next = 0;
	cs_err r = cs_store_audit_each(x->store, 1, 0, scan_entry, &s);
	if (r != CS_OK)
		return fail(x, "store_unavailable", "reading the audit log: %s", cs_strerror(r));
	if (s.count > 0) {
		/* --wait: the daemon signs a checkpoint every audit.checkpoint_seconds */
		for (int waited = 0;; waited++) {
			if ((r = cs_store_checkpoints_range(x->store, s.last, INT64_MAX, find_cover, &cover)) != CS_OK)
				return fail(x, "store_unavailable", "reading the audit checkpoints: %s",
					      cs_strerror(r));
			if (cover.last != 0 || waited >= x->op->wait_s)
				break;
			sleep(1);
		}
		if (cover.last == 0) {
			(void)cs_store_checkpoints_each(x->store, newest_checkpoint, &cover);
			const cs_config *cfg = x->a->cfg;
			char due[32] = "";
			int64_t t = 0;
			if (cover.newest_ts[0] != '\0' && cs_audit_time_parse(cover.newest_ts, &t) == CS_OK)
				cs_audit_time_format(t + (int64_t)cfg->audit.checkpoint_seconds * 1000, due);
			return fail(x, "not_checkpointed",
				      "the last in-scope audit entry (seq %lld) is not under a signed checkpoint yet; "
				      "the daemon signs the next one after audit.checkpoint_entries (%d) entries or "
				      "audit.checkpoint_seconds (%d s) after the last one%s%s%s; export again then "
				      "(--wait SECONDS waits for it)",
				      (long long)s.last, cfg->audit.checkpoint_entries, cfg->audit.checkpoint_seconds,
				      due[0] != '\0' ? " (due by " : "", due, due[0] != '\0' ? ")" : "");
		}
		r = cs_audit_export(x->store, s.first, NULL, cover.last - s.first + 1, chain_line, &c, &next);
		if (r == CS_OK && c.failed)
			r = CS_E_NOMEM;
	}
	if (r == CS_OK && (r = add_file(x, "audit/chain.jsonl", c.chain != NULL ? c.chain : strdup(""),
					c.chain_len)) == CS_OK)
		c.chain = NULL;
	if (r == CS_OK && (r = add_file(x, "audit/entries.jsonl", c.entries != NULL ? c.entries : strdup(""),
					c.entries_len)) == CS_OK)
		c.entries = NULL;
	free(c.chain);
	free(c.entries);
	if (r != CS_OK)
		return fail(x, failure_code(r), "the audit excerpt: %s", cs_strerror(r));
	if (json_object_set_new(x->counts, "audit_entries", json_integer(c.audit_entries)) != 0 ||
	    json_object_set_new(x->counts, "chain_entries", json_integer(c.chain_entries)) != 0 ||
	    json_object_set_new(x->counts, "other_project_entries", json_integer(c.other_project)) != 0)
		return fail(x, "internal_error", "out of memory");
	return 0;
}

static int64_t record_time(const json_t *rec)
{
	int64_t ms = 0;
	const char *at = json_string_value(json_object_get(rec, "certified_at"));
	return at != NULL && cs_inventory_time_parse(at, &ms) == CS_OK ? ms : INT64_MIN;
}

/* inventory/, certificates/; ids gets every certificate's id and its
 * generation session's. 0 or 1. */
static int inventory_part(ev_export *x, json_t *ids)
{
	const cs_config *cfg = x->a->cfg;
	cs_inventory_rules rules = {.pci_password_change_days = cfg->inventory.pci_password_change_days,
				    .due_soon_days = cfg->inventory.due_soon_days > 0 ? cfg->inventory.due_soon_days
										     : 14};
	json_t *all = NULL, *records = json_array();
	cs_err r = records != NULL ? cs_inventory_collect(x->store, x->presets, &rules, x->op->project,
							  x->op->environment, &all)
				   : CS_E_NOMEM;
	if (r != CS_OK) {
		json_decref(records);
		return fail(x, failure_code(r), "reading the inventory: %s", cs_strerror(r));
	}
	size_t i;
	json_t *rec;
	json_array_foreach(all, i, rec) {
		int64_t t = record_time(rec);
		if (t >= x->from_ms && t <= x->to_ms && json_array_append(records, rec) != 0)
			r = CS_E_NOMEM;
	}
	json_decref(all);
	for (i = 0; r == CS_OK && i < json_array_size(records); i++) {
		const char *id = json_string_value(json_object_get(json_array_get(records, i), "cert_id"));
		char *jws = NULL, *claims_text = NULL, path[128];
		if (id == NULL || !name_ok(id) || strlen(id) > 64) {
			r = CS_E_STORE;
			break;
		}
		if ((r = cs_ledger_cert_get(x->store, id, &jws, &claims_text)) != CS_OK)
			break;
		int nomem = 0;
		json_t *claims = cs_json_load_exact(claims_text, strlen(claims_text), 0, &nomem);
		if (claims == NULL) {
			r = nomem ? CS_E_NOMEM : CS_E_STORE;
			free(jws);
			free(claims_text);
			break;
		}
		const char *session = json_string_value(json_object_get(claims, "generation_session_id"));
		if (json_object_set_new(ids, id, json_true()) != 0 ||
		    (session != NULL && json_object_set_new(ids, session, json_true()) != 0))
			r = CS_E_NOMEM;
		json_decref(claims);
		free(claims_text);
		snprintf(path, sizeof(path), "certificates/%s.jws", id);
		if (r == CS_OK)
			r = add_file(x, path, jws, strlen(jws));
		else
			free(jws);
	}
	char *csv = r == CS_OK ? cs_inventory_csv(records) : NULL;
	if (r == CS_OK && csv == NULL)
		r = CS_E_NOMEM;
	size_t n = json_array_size(records);
	json_t *doc = r == CS_OK ? json_pack("{s:s, s:s?, s:s, s:s, s:s, s:O}", "project", x->op->project,
					     "environment", x->op->environment, "from", x->from_ts, "to",
					     x->to_ts, "generated_at", x->created_at, "records", records)
				 : NULL;
	json_decref(records);
	if (r == CS_OK)
		r = add_json(x, "inventory/inventory.json", doc, EV_SERVED);
	else
		json_decref(doc);
	if (r == CS_OK)
		r = add_file(x, "inventory/inventory.csv", csv, strlen(csv));
	else
		free(csv);
	if (r == CS_OK && (json_object_set_new(x->counts, "certificates", json_integer((json_int_t)n)) != 0 ||
			   json_object_set_new(x->counts, "inventory_records", json_integer((json_int_t)n)) != 0))
		r = CS_E_NOMEM;
	return r == CS_OK ? 0 : fail(x, failure_code(r), "the inventory and certificates: %s", cs_strerror(r));
}

static cs_err policy_part(ev_export *x)
{
	const cs_config *cfg = x->a->cfg;
	cs_policy_options opts = {.organisation = cfg->policy.organisation,
				  .owner = cfg->policy.owner,
				  .scope = cfg->policy.scope,
				  .version = cfg->policy.version,
				  .effective_date = cfg->policy.effective_date,
				  .review_months = cfg->policy.review_months,
				  .pci_password_change_days = cfg->inventory.pci_password_change_days};
	json_t *doc = NULL;
	char why[200];
	cs_err r = cs_policy_build_doc(x->presets, x->wordlist, x->chosen, x->nchosen, &opts, &doc, why, sizeof(why));
	if (r != CS_OK) {
		fprintf(stderr, "credsign-admin: the policy: %s\n", r == CS_E_INVALID_ARG ? why : cs_strerror(r));
		return r;
	}
	char *md = cs_policy_markdown(doc);
	r = add_json(x, "policy/policy.json", doc, EV_SERVED);
	if (r == CS_OK)
		r = md != NULL ? add_file(x, "policy/policy.md", md, strlen(md)) : CS_E_NOMEM;
	else
		free(md);
	return r;
}

/* keys/: the JWKS and rollovers as the daemon serves them (the service
 * layer over a minimal app), the revocation list signed now. */
static cs_err keys_part(ev_export *x)
{
	cs_app app = {.cfg = x->a->cfg, .token = x->a->token, .libctx = x->libctx, .presets = x->presets};
	char why[CS_CEREMONY_WHY_MAX] = "";
	if (cs_officers_load(x->a->cfg, &app.officers, why) != CS_OK)
		snprintf(app.officers_why, sizeof(app.officers_why), "%s", why);
	cs_service_req rq;
	cs_service_begin(&rq, &app, x->store, NULL, "jwks.read", NULL);
	json_t *jwks = NULL, *rollovers = NULL;
	cs_err r = cs_service_jwks_doc(&rq, NULL, &jwks);
	if (r == CS_OK)
		r = cs_service_rollovers(&rq, NULL, &rollovers);
	if (r != CS_OK)
		fprintf(stderr, "credsign-admin: %s\n", rq.problem.message);
	cs_service_end(&rq);
	cs_app_published_free(&app);
	cs_officers_free(app.officers);
	/* the manifest's kid must be in the JWKS an auditor checks it with */
	int listed = 0;
	size_t i;
	json_t *k;
	json_array_foreach(json_object_get(jwks, "keys"), i, k) {
		const char *kid = json_string_value(json_object_get(k, "kid"));
		listed |= kid != NULL && strcmp(kid, cs_signer_kid(x->signer)) == 0;
	}
	if (r == CS_OK && !listed) {
		fprintf(stderr, "credsign-admin: the active key %s is not in the JWKS the daemon serves\n",
			cs_signer_kid(x->signer));
		r = CS_E_NO_ACTIVE_KEY;
	}
	if (r == CS_OK)
		r = add_json(x, "keys/jwks.json", jwks, EV_SERVED);
	else
		json_decref(jwks);
	if (r == CS_OK)
		r = add_json(x, "keys/rollovers.json", rollovers, EV_SERVED);
	else
		json_decref(rollovers);
	if (r != CS_OK)
		return r;
	/* the revocation list, with the daemon's claims */
	json_t *revoked = NULL;
	int64_t count = 0, rowid = 0;
	char *jws = NULL;
	r = cs_revocations_read(x->store, &revoked, &count, &rowid);
	int64_t now = x->now_ms / 1000;
	json_t *claims = r == CS_OK ? json_pack("{s:s, s:I, s:I, s:O}", "iss", x->a->cfg->server.public_base_url,
						"iat", (json_int_t)now, "next_update",
						(json_int_t)(now + CS_REVOCATIONS_VALID_S), "revoked", revoked)
				    : NULL;
	json_decref(revoked);
	if (r == CS_OK)
		r = claims != NULL ? cs_signer_jws(x->signer, CS_REVOCATIONS_TYP, claims, &jws) : CS_E_NOMEM;
	json_decref(claims);
	if (r == CS_OK)
		r = add_file(x, "keys/revocations.jws", jws, strlen(jws));
	return r;
}

static json_t *string_list(char **list)
{
	if (list == NULL)
		return json_null();
	json_t *a = json_array();
	for (size_t i = 0; a != NULL && list[i] != NULL; i++)
		if (json_array_append_new(a, json_string(list[i])) != 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

static cs_err grants_part(ev_export *x)
{
	const cs_config *cfg = x->a->cfg;
	json_t *list = json_array();
	for (size_t i = 0; list != NULL && i < cfg->access.ngrants; i++) {
		const cs_config_grant *g = &cfg->access.grants[i];
		json_t *o = json_pack("{s:I, s:s, s:s, s:o*, s:o*, s:o*, s:o*, s:f, s:i}", "index", (json_int_t)i,
				      "identity", g->identity, "role", cs_access_role_name(g->role), "projects",
				      string_list(g->projects), "environments", string_list(g->environments),
				      "presets", string_list(g->presets), "profiles", string_list(g->profiles),
				      "rate", g->rate, "burst", g->burst);
		if (o == NULL || json_array_append_new(list, o) != 0) {
			json_decref(list);
			list = NULL;
		}
	}
	return add_json(x, "access/grants.json", list != NULL ? json_pack("{s:o}", "grants", list) : NULL, EV_SERVED);
}

/* The README: what the package is, and how to verify it with the tools or
 * by hand, with nothing outside the package needed to read it (the audit
 * chain's encoding and checks from docs/audit.md). */
static cs_err readme_part(ev_export *x)
{
	const ev_opts *op = x->op;
	const char *slash = strrchr(op->out, '/');
	const char *name = slash != NULL ? slash + 1 : op->out; /* the package's file name */
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (f == NULL)
		return CS_E_NOMEM;
	fprintf(f,
		"# credsign evidence package\n\n"
		"This package (`%s`, top directory `%s/`) is the evidence a credsign\n"
		"appliance (%s) gives its auditor for the credentials of one project: the\n"
		"written policy, the register of credentials with their rotation history,\n"
		"the compliance certificates, the keys that signed them, the audit entries\n"
		"about them with the signed checkpoints that authenticate them, and the\n"
		"access grants in force.\n\n"
		"## Scope\n\n"
		"- project: %s\n- environment: %s\n- certified from %s through %s\n- standards: %s\n"
		"- exported %s by %s for the auditor %s (certificate SHA-256 %s)\n\n",
		name, x->top, x->a->cfg->server.public_base_url, op->project,
		op->environment != NULL ? op->environment : "(any)", x->from_ts, x->to_ts, op->standards,
		x->created_at, x->operator_id, x->identity, x->cert_sha256);
	fputs("## Contents\n\n"
	      "- `manifest.json`: every other file's SHA-256 and size; `manifest.jws` signs its\n"
	      "  SHA-256 (ES256, the appliance's certificate key, `typ` credsign-evidence+jwt)\n"
	      "- `policy/policy.json`, `policy/policy.md`: the written policy for the standards\n"
	      "- `inventory/inventory.json`, `inventory/inventory.csv`: the credential register\n"
	      "- `certificates/CERT_ID.jws`: each certificate as the appliance serves it\n"
	      "- `keys/jwks.json`, `keys/rollovers.json`, `keys/revocations.jws`: the keys,\n"
	      "  their rollover statements and the signed revocation list\n"
	      "- `audit/chain.jsonl`: a partial audit export (entries, then the checkpoints that\n"
	      "  authenticate them); `audit/entries.jsonl`: the entries about the certificates\n"
	      "- `access/grants.json`: who may do what (access.grants)\n\n"
	      "## How to verify\n\n",
	      f);
	fprintf(f,
		"Use a JWKS you kept yourself (fetched from %s/.well-known/jwks.json\n"
		"at another time), not only `keys/jwks.json`, which came with this package:\n\n"
		"    credsign evidence verify %s --jwks KEPT_JWKS\n\n"
		"By hand, in the extracted directory `%s/`:\n\n",
		x->a->cfg->server.public_base_url, name, x->top);
	fputs("1. `manifest.jws` is a compact JWS whose header has exactly `alg` (ES256),\n"
	      "   `kid` and `typ` (credsign-evidence+jwt) and whose payload is exactly\n"
	      "   `{\"created_at\",\"iss\",\"manifest_sha256\"}`; check its ES256 signature with\n"
	      "   the key of `kid` in your JWKS, then that `sha256sum manifest.json` is\n"
	      "   `manifest_sha256` and that `iss` and `created_at` are `manifest.json`'s.\n"
	      "2. For each entry of `files` in `manifest.json`: `sha256sum PATH` equals its\n"
	      "   `sha256`, and its size its `size`; no other file is in the package.\n"
	      "3. Each certificate verifies with\n"
	      "   `credsign verify certificates/CERT_ID.jws --jwks KEPT_JWKS`.\n"
	      "4. The audit chain: `credsign-admin audit verify --file audit/chain.jsonl\n"
	      "   --jwks KEPT_JWKS` (needs no configuration), or by hand as below; every\n"
	      "   line of `audit/entries.jsonl` is a line of `audit/chain.jsonl`, byte for byte.\n\n"
	      "### The audit chain by hand\n\n"
	      "Each line of `audit/chain.jsonl` is one JSON object with exactly these\n"
	      "members: an entry (`\"type\":\"entry\"`, `seq`, `ts`, `node`, `actor`,\n"
	      "`actor_cert_sha256`, `role`, `action`, `object`, `project`, `environment`,\n"
	      "`outcome`, `error_code`, `request_id`, `prev_hash`, `entry_hash`), entries\n"
	      "first in `seq` order, then the checkpoints (`\"type\":\"checkpoint\"`,\n"
	      "`first_seq`, `last_seq`, `head_hash`, `time`, `node`, `kind`, `jws`). Hashes\n"
	      "are 32 bytes written in base64url without padding (43 characters).\n\n"
	      "    entry_hash = SHA-256(prev_hash || canonical(entry))\n\n"
	      "`prev_hash` enters as its 32 raw bytes. `canonical(entry)` is the\n"
	      "concatenation, with nothing between them, of these 13 fields in this order:\n\n"
	      "    seq, ts, node, actor, actor_cert_sha256, role, action, object,\n"
	      "    project, environment, outcome, error_code, request_id\n\n"
	      "each as a 4-byte big-endian length of its UTF-8 bytes followed by those\n"
	      "bytes; a `null` field is the four bytes `FF FF FF FF` alone, an empty one\n"
	      "`00 00 00 00`; `seq` is its decimal digits in ASCII (`42` is\n"
	      "`00 00 00 02 34 32`), `ts` exactly as written (24 bytes).\n\n"
	      "1. Each checkpoint's `jws`: ES256 with the key of its `kid` (the key's RFC\n"
	      "   7638 thumbprint) in your JWKS, header exactly `alg`, `kid` and `typ`\n"
	      "   (`credsign-audit-checkpoint+jwt`), payload (compact JSON, keys sorted)\n"
	      "   exactly `first_seq`, `last_seq`, `head_hash`, `time`, `node`, `kind`,\n"
	      "   equal to the line's own members.\n"
	      "2. The excerpt is partial: start from the first entry's own `prev_hash`.\n"
	      "   Walk the entries in `seq` order: no gap; each `prev_hash` is the previous\n"
	      "   entry's `entry_hash`; each `entry_hash` is the hash recomputed; at the\n"
	      "   `last_seq` of each checkpoint whose `kind` is not `purge`, the running\n"
	      "   hash is its `head_hash`.\n"
	      "3. The entries from the first through the last signed head the walk reached\n"
	      "   are authenticated; the package's excerpt ends at a signed checkpoint, so\n"
	      "   every entry is. A checkpoint ending before the first entry (a `purge`\n"
	      "   one: the chain's base) is only checked for its signature.\n",
	      f);
	if (fclose(f) != 0) {
		free(text);
		return CS_E_NOMEM;
	}
	return add_file(x, "README.md", text, len);
}

static int by_path(const void *a, const void *b)
{
	return strcmp(((const ev_file *)a)->path, ((const ev_file *)b)->path);
}

/* manifest.json and manifest.jws over the files made so far. */
static cs_err manifest_part(ev_export *x)
{
	qsort(x->files, x->nfiles, sizeof(*x->files), by_path);
	json_t *files = json_array();
	for (size_t i = 0; files != NULL && i < x->nfiles; i++) {
		char hex[65];
		if (sha256_hex(x->files[i].data, x->files[i].len, hex) != 0 ||
		    json_array_append_new(files, json_pack("{s:s, s:s, s:I}", "path", x->files[i].path, "sha256", hex,
							   "size", (json_int_t)x->files[i].len)) != 0) {
			json_decref(files);
			files = NULL;
		}
	}
	const ev_opts *op = x->op;
	json_t *standards = json_array();
	for (size_t i = 0; standards != NULL && i < x->nchosen; i++)
		if (json_array_append_new(standards, json_string(x->chosen[i]->name)) != 0) {
			json_decref(standards);
			standards = NULL;
		}
	json_t *m = json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s?, s:s, s:s, s:o}, s:O, s:o}", "format",
			      EV_FORMAT, "iss", x->a->cfg->server.public_base_url, "created_at", x->created_at,
			      "operator", x->operator_id, "auditor", "identity", x->identity, "cert_sha256",
			      x->cert_sha256, "scope", "project", op->project, "environment", op->environment, "from",
			      x->from_ts, "to", x->to_ts, "standards", standards, "counts", x->counts, "files", files);
	char *text = m != NULL ? cs_json_text(m, EV_SORTED) : NULL;
	json_decref(m);
	if (text == NULL)
		return CS_E_NOMEM;
	/* the JWS over manifest.json's SHA-256: its size does not grow with the
	 * package (a JWS parser bounds what it reads) */
	char *jws = NULL;
	cs_err r = sha256_hex(text, strlen(text), x->manifest_sha256) == 0 ? CS_OK : CS_E_CRYPTO;
	json_t *claims = r == CS_OK ? json_pack("{s:s, s:s, s:s}", "iss", x->a->cfg->server.public_base_url,
						 "created_at", x->created_at, "manifest_sha256", x->manifest_sha256)
				    : NULL;
	if (r == CS_OK)
		r = claims != NULL ? cs_signer_jws(x->signer, EV_TYP, claims, &jws) : CS_E_NOMEM;
	json_decref(claims);
	if (r == CS_OK && (r = add_file(x, "manifest.json", text, strlen(text))) == CS_OK)
		text = NULL;
	if (r == CS_OK && (r = add_file(x, "manifest.jws", jws, strlen(jws))) == CS_OK)
		jws = NULL;
	free(text);
	free(jws);
	return r;
}

/* ---- the archive ------------------------------------------------------------------------ */

/* The package into fd: every file under the top directory, mode 0644,
 * mtime the export time; the manifest first. */
static cs_err write_tar(ev_export *x, int fd)
{
	struct archive *ar = archive_write_new();
	cs_err r = CS_E_IO;
	if (ar == NULL || archive_write_set_format_pax(ar) != ARCHIVE_OK || archive_write_add_filter_none(ar) != ARCHIVE_OK ||
	    archive_write_open_fd(ar, fd) != ARCHIVE_OK)
		goto out;
	/* manifest.json and manifest.jws, then the others by path */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < x->nfiles; i++) {
			const ev_file *f = &x->files[i];
			int manifest = strncmp(f->path, "manifest.", 9) == 0;
			if (manifest != (pass == 0))
				continue;
			char path[1024];
			snprintf(path, sizeof(path), "%s/%s", x->top, f->path);
			struct archive_entry *e = archive_entry_new();
			if (e == NULL)
				goto out;
			archive_entry_set_pathname(e, path);
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_perm(e, 0644);
			archive_entry_set_size(e, (la_int64_t)f->len);
			archive_entry_set_mtime(e, (time_t)(x->now_ms / 1000), 0);
			archive_entry_set_uid(e, 0);
			archive_entry_set_gid(e, 0);
			int ok = archive_write_header(ar, e) == ARCHIVE_OK &&
				 (f->len == 0 || archive_write_data(ar, f->data, f->len) == (la_ssize_t)f->len);
			archive_entry_free(e);
			if (!ok) {
				fprintf(stderr, "credsign-admin: writing the archive: %s\n", archive_error_string(ar));
				goto out;
			}
		}
	if (archive_write_close(ar) != ARCHIVE_OK) {
		fprintf(stderr, "credsign-admin: writing the archive: %s\n", archive_error_string(ar));
		goto out;
	}
	r = CS_OK;
out:
	archive_write_free(ar);
	return r;
}

/* FILE.tmp renamed to FILE: replacing a FILE only with --force (never a
 * FILE made meanwhile without it: no check-then-rename race). */
static int put_in_place(const char *tmp, const char *out, int force)
{
	if (force)
		return rename(tmp, out);
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, out, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS) /* a file system without it: link then unlink */
		return -1;
	if (link(tmp, out) != 0)
		return -1;
	(void)unlink(tmp);
	return 0;
}

/* FILE.tmp written and flushed, the entry recorded, renamed to FILE. */
static int write_package(ev_export *x)
{
	char tmp[4096];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", x->op->out) >= (int)sizeof(tmp))
		return fail(x, "invalid_field", "--out is too long");
	(void)unlink(tmp); /* a previous run's leftover, never followed */
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return fail(x, "io_error", "cannot create %s: %s", tmp, strerror(errno));
	cs_err r = write_tar(x, fd);
	if (r == CS_OK && fsync(fd) != 0)
		r = CS_E_IO;
	if (close(fd) != 0)
		r = CS_E_IO;
	if (r != CS_OK) {
		(void)unlink(tmp);
		return fail(x, "io_error", "cannot write %s", tmp);
	}
	if (record(x, "success", NULL, NULL) != CS_OK) {
		(void)unlink(tmp);
		fprintf(stderr, "credsign-admin: evidence export failed: the export could not be audited; %s removed\n",
			tmp);
		return 1;
	}
	if (put_in_place(tmp, x->op->out, x->op->force) != 0) {
		int e = errno;
		(void)unlink(tmp);
		return fail(x, "io_error", "cannot rename %s to %s: %s%s; the package recorded above was not delivered",
			    tmp, x->op->out, strerror(e), e == EEXIST ? " (made meanwhile; --force replaces it)" : "");
	}
	return 0;
}

/* ---- the command ------------------------------------------------------------------------ */

/* --standards: 1..EV_STANDARDS_MAX distinct preset names. 0 or 2 (usage). */
static int resolve_standards(ev_export *x)
{
	char *copy = strdup(x->op->standards), *save = NULL;
	if (copy == NULL)
		return admin_fail("--standards", CS_E_NOMEM);
	int rc = 0;
	size_t commas = 0;
	for (const char *p = x->op->standards; *p; p++)
		commas += *p == ',';
	if (commas + 1 > EV_STANDARDS_MAX || x->op->standards[0] == ',' ||
	    x->op->standards[strlen(x->op->standards) - 1] == ',' || strstr(x->op->standards, ",,") != NULL) {
		fprintf(stderr, "credsign-admin: --standards takes 1 to %d comma-separated preset names\n",
			EV_STANDARDS_MAX);
		free(copy);
		return 2;
	}
	for (char *name = strtok_r(copy, ",", &save); rc == 0 && name != NULL; name = strtok_r(NULL, ",", &save)) {
		const cs_preset *p = cs_preset_find(x->presets, name);
		if (p == NULL) {
			fprintf(stderr, "credsign-admin: --standards: unknown standard '%s' (credsign presets lists them)\n",
				name);
			rc = 2;
		}
		for (size_t k = 0; rc == 0 && k < x->nchosen; k++)
			if (x->chosen[k] == p) {
				fprintf(stderr, "credsign-admin: --standards names '%s' twice\n", name);
				rc = 2;
			}
		if (rc == 0)
			x->chosen[x->nchosen++] = p;
	}
	free(copy);
	return rc;
}

static int load_material(ev_export *x)
{
	cs_config_diag diag = {0};
	char why[512];
	cs_err r = cs_presets_load(x->a->cfg->server.presets_file, x->a->cfg->file, &x->presets, &diag);
	for (size_t i = 0; i < diag.count; i++)
		fprintf(stderr, "%s\n", diag.messages[i]);
	cs_config_diag_free(&diag);
	if (r != CS_OK)
		return admin_fail("the presets", r);
	if ((r = cs_wordlist_load_diag(x->a->cfg->server.wordlist_file, &x->wordlist, why, sizeof(why))) != CS_OK) {
		fprintf(stderr, "credsign-admin: server.wordlist_file: %s\n", why);
		return 1;
	}
	return 0;
}

/* The token, the active certificate key, the store. */
static int open_signer(ev_export *x)
{
	char *uri = NULL;
	cs_err r;
	if (admin_open_token(x->a, 0) != 0)
		return 1;
	if ((x->libctx = OSSL_LIB_CTX_new()) == NULL || cs_provider_load(x->libctx, x->a->token, &x->prov) != CS_OK ||
	    (x->deflt = OSSL_PROVIDER_load(x->libctx, "default")) == NULL) {
		return admin_fail("loading the token's provider", CS_E_TOKEN_FAILED);
	}
	if ((r = admin_active_key_uri(x->a, &uri)) != CS_OK || (r = cs_signer_open(x->libctx, uri, &x->signer)) != CS_OK) {
		free(uri);
		return admin_fail("opening the active signing key", r);
	}
	free(uri);
	return 0;
}

/* --out's directory exists and is one, before anything is done. */
static int out_dir_check(ev_export *x)
{
	const char *out = x->op->out, *slash = strrchr(out, '/');
	char dir[4096];
	struct stat st;
	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == out)
		snprintf(dir, sizeof(dir), "/");
	else if (snprintf(dir, sizeof(dir), "%.*s", (int)(slash - out), out) >= (int)sizeof(dir))
		return fail(x, "invalid_field", "--out %s: the name is too long", out);
	if (stat(dir, &st) != 0)
		return fail(x, "io_error", "--out %s: its directory %s: %s", out, dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return fail(x, "io_error", "--out %s: %s is not a directory", out, dir);
	return 0;
}

static int run_export(ev_export *x)
{
	int rc = out_dir_check(x);
	if (rc == 0)
		rc = auditor_check(x);
	if (rc != 0)
		return rc;
	if ((rc = open_signer(x)) != 0)
		return fail(x, "token_unavailable", "the token or its active signing key could not be used (above)");
	cs_err r = cs_store_connect_config(x->a->cfg, &x->store);
	if (r != CS_OK)
		return fail(x, failure_code(r), "opening the store: %s", cs_strerror(r));
	json_t *ids = json_object();
	if (ids == NULL || (x->counts = json_object()) == NULL) {
		json_decref(ids);
		return admin_fail("evidence export", CS_E_NOMEM);
	}
	if ((rc = inventory_part(x, ids)) == 0)
		rc = audit_part(x, ids);
	json_decref(ids);
	if (rc != 0)
		return rc;
	if ((r = policy_part(x)) != CS_OK || (r = keys_part(x)) != CS_OK || (r = grants_part(x)) != CS_OK ||
	    (r = readme_part(x)) != CS_OK || (r = manifest_part(x)) != CS_OK)
		return fail(x, failure_code(r), "making the package: %s", cs_strerror(r));
	if ((rc = write_package(x)) != 0)
		return rc;
	return admin_print_json(json_pack("{s:s, s:s, s:s, s:s, s:O}", "file", x->op->out, "manifest_sha256",
					  x->manifest_sha256, "kid", cs_signer_kid(x->signer), "auditor", x->identity,
					  "counts", x->counts));
}

static void usage(FILE *f)
{
	fprintf(f, "usage: credsign-admin [--config FILE] evidence export --project P [--environment E]\n"
		   "                      --from DATE --to DATE --standards a,b --out FILE\n"
		   "                      --auditor-cert C --auditor-key K [--auditor-module M]\n"
		   "                      [--wait SECONDS] [--force]\n"
		   "DATE: YYYY-MM-DD (a whole UTC day) or RFC 3339 UTC (2026-01-31T10:00:00Z)\n");
}

int admin_evidence_command(int argc, char **argv)
{
	static const char *const with_value[] = {"--config", "-c", "--project", "--environment", "--from", "--to",
						 "--standards", "--out", "--auditor-cert", "--auditor-key",
						 "--auditor-module", "--wait"};
	for (int i = 1; i < argc; i++) {
		int skip = 0;
		for (size_t k = 0; k < sizeof(with_value) / sizeof(with_value[0]); k++)
			skip |= strcmp(argv[i], with_value[k]) == 0;
		if (skip) {
			i++;
			continue;
		}
		if (argv[i][0] == '-')
			continue;
		return strcmp(argv[i], "evidence") == 0; /* the first word */
	}
	return 0;
}

enum {
	OPT_PROJECT = 256,
	OPT_ENV,
	OPT_FROM,
	OPT_TO,
	OPT_STANDARDS,
	OPT_OUT,
	OPT_CERT,
	OPT_KEY,
	OPT_MODULE,
	OPT_WAIT,
	OPT_FORCE
};

/* 0 to go on, 2 usage, -1 help answered. */
static int parse_args(int argc, char **argv, ev_opts *op)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"project", required_argument, NULL, OPT_PROJECT},
		{"environment", required_argument, NULL, OPT_ENV},
		{"from", required_argument, NULL, OPT_FROM},
		{"to", required_argument, NULL, OPT_TO},
		{"standards", required_argument, NULL, OPT_STANDARDS},
		{"out", required_argument, NULL, OPT_OUT},
		{"auditor-cert", required_argument, NULL, OPT_CERT},
		{"auditor-key", required_argument, NULL, OPT_KEY},
		{"auditor-module", required_argument, NULL, OPT_MODULE},
		{"wait", required_argument, NULL, OPT_WAIT},
		{"force", no_argument, NULL, OPT_FORCE},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	memset(op, 0, sizeof(*op));
	op->config_path = getenv("CREDSIGN_CONF");
	op->level = CS_LOG_WARN;
	int c;
	while ((c = getopt_long(argc, argv, "c:hv", opts, NULL)) != -1) {
		switch (c) {
		case 'c': op->config_path = optarg; break;
		case OPT_PROJECT: op->project = optarg; break;
		case OPT_ENV: op->environment = optarg; break;
		case OPT_FROM: op->from = optarg; break;
		case OPT_TO: op->to = optarg; break;
		case OPT_STANDARDS: op->standards = optarg; break;
		case OPT_OUT: op->out = optarg; break;
		case OPT_CERT: op->auditor_cert = optarg; break;
		case OPT_KEY: op->auditor_key = optarg; break;
		case OPT_MODULE: op->auditor_module = optarg; break;
		case OPT_WAIT: {
			char *end = NULL;
			errno = 0;
			long w = strtol(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' || w < 0 || w > 600) {
				fprintf(stderr, "credsign-admin: --wait takes 0 to 600 seconds, not '%s'\n", optarg);
				return 2;
			}
			op->wait_s = (int)w;
			break;
		}
		case OPT_FORCE: op->force = 1; break;
		case 'v': op->level = CS_LOG_DEBUG; break;
		case 'h': usage(stdout); return -1;
		default: usage(stderr); return 2;
		}
	}
	if (optind + 2 != argc || strcmp(argv[optind], "evidence") != 0 || strcmp(argv[optind + 1], "export") != 0) {
		usage(stderr);
		return 2;
	}
	const struct {
		const char *name, *value;
	} required[] = {{"--project", op->project},     {"--from", op->from}, {"--to", op->to},
			{"--standards", op->standards}, {"--out", op->out},   {"--auditor-cert", op->auditor_cert},
			{"--auditor-key", op->auditor_key}};
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		if (required[i].value == NULL) {
			fprintf(stderr, "credsign-admin: evidence export: %s is required\n", required[i].name);
			usage(stderr);
			return 2;
		}
	if (!name_ok(op->project) || (op->environment != NULL && !name_ok(op->environment))) {
		fprintf(stderr, "credsign-admin: --project and --environment take 1 to 128 printable characters, "
				"no '/' nor spaces\n");
		return 2;
	}
	if (op->config_path == NULL) {
		fprintf(stderr, "credsign-admin: no configuration: give --config FILE or set CREDSIGN_CONF\n");
		return 2;
	}
	return 0;
}

static void export_free(ev_export *x)
{
	for (size_t i = 0; i < x->nfiles; i++) {
		free(x->files[i].path);
		free(x->files[i].data);
	}
	free(x->files);
	json_decref(x->counts);
	cs_store_close(x->store);
	cs_signer_free(x->signer);
	OSSL_PROVIDER_unload(x->deflt);
	OSSL_PROVIDER_unload(x->prov);
	OSSL_LIB_CTX_free(x->libctx);
	cs_presets_free(x->presets);
	cs_wordlist_free(x->wordlist);
}

int admin_evidence_main(int argc, char **argv)
{
	ev_opts op;
	umask(077);
	int rc = parse_args(argc, argv, &op);
	if (rc != 0)
		return rc < 0 ? 0 : rc;
	ev_export x = {.op = &op, .now_ms = now_ms()};
	if (date_arg("--from", op.from, 0, &x.from_ms) != 0 || date_arg("--to", op.to, 1, &x.to_ms) != 0)
		return 2;
	if (x.from_ms > x.now_ms) {
		fprintf(stderr, "credsign-admin: --from %s is in the future\n", op.from);
		return 2;
	}
	/* a package cannot vouch for what happens after it was made: the range
	 * ends at the export at the latest (the manifest says where) */
	if (x.to_ms > x.now_ms)
		x.to_ms = x.now_ms;
	if (x.from_ms > x.to_ms) {
		fprintf(stderr, "credsign-admin: --from %s is after --to %s\n", op.from, op.to);
		return 2;
	}
	struct stat st;
	if (!op.force && lstat(op.out, &st) == 0) { /* nothing done, nothing audited */
		fprintf(stderr, "credsign-admin: --out %s exists; give --force to replace it\n", op.out);
		return 1;
	}
	cs_audit_time_format(x.from_ms, x.from_ts);
	cs_audit_time_format(x.to_ms, x.to_ts);
	cs_audit_time_format(x.now_ms, x.created_at);
	char d1[9], d2[9];
	yyyymmdd(x.from_ms, d1);
	yyyymmdd(x.to_ms, d2);
	snprintf(x.top, sizeof(x.top), "credsign-evidence-%s-%s-%s", op.project, d1, d2);
	admin_actor(x.operator_id);
	admin_ctx a = {0};
	x.a = &a;
	if ((rc = admin_load(&a, op.config_path, op.level)) == 0 && (rc = load_material(&x)) == 0 &&
	    (rc = resolve_standards(&x)) == 0)
		rc = run_export(&x);
	export_free(&x);
	admin_close(&a);
	return rc;
}
