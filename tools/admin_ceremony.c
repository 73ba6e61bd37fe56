/*
 * admin_ceremony: credsign-admin's dual-control ceremonies, certificate
 * revocation and the audit purge (admin.h).
 *
 *   ceremony start --action activate|retire|compromise|destroy|purge|revoke
 *                  [--key KID | --cert ID] [--reason TEXT] [--accept-clock-jump]
 *   ceremony approve ID --officer-cert C --officer-key K [--officer-module M]
 *   ceremony execute ID [--jwks FILE]
 *   ceremony list [--format text|json]
 *   ceremony show ID
 *   ceremony transcript ID [--out FILE]
 *   ceremony verify-transcript FILE [--officer-ca FILE] [--officers FILE] [--jwks FILE]
 *   cert revoke ID --reason TEXT
 *   audit purge                      (refused: the purge is a ceremony)
 *
 * The purge on a PostgreSQL store runs as the schema's owner (only the
 * owner may record a purge checkpoint and call audit_purge; the nodes'
 * role may not): ceremony execute of a purge takes --owner-connection
 * CONNINFO [--owner-password-file FILE] (as store init does), and refuses
 * without them before anything is signed or purged. With SQLite they are
 * refused (usage).
 *
 * A ceremony is recorded open with a nonce and an expiry; each officer
 * signs its canonical bytes (ceremony.h) with a key of their own;
 * execution re-verifies everything at its own time (the record against
 * its signed bytes, each approval's officer and signature, the quorum of
 * distinct officers, the expiry, the subject's state) and then acts, the
 * store's ledger re-checking state and expiry inside its transaction.
 *
 * What each action asks of its subject, checked at start and again at
 * execute: activate a pending key present in the configured token (its
 * public half's thumbprint is the kid); retire a pending key (the active
 * key is retired by activating its successor); compromise a key not
 * compromised yet (the token need not hold it: a key may be compromised
 * because it was lost); destroy a retired or compromised key not yet
 * destroyed (at execute its token objects are destroyed first: a key the
 * token no longer holds is recorded destroyed, said so); revoke an existing
 * certificate not revoked yet; purge: audit.retention_days, and whether
 * --accept-clock-jump was asked, are what the officers approve.
 *
 * activate records params {"old_kid"}: the key active when it started. At
 * execute the active key must still be that one (else refused: another
 * ceremony changed it; start anew), and the rollover statement -- a JWS in
 * general JSON serialization (RFC 7515 7.2.1), signed by the old key (when
 * there is one) and by the new -- goes into the store with the change.
 *
 * Signing profiles' keys (key generate --profile) go through the same
 * ceremonies: the params of any key ceremony on such a key carry
 * "profile" (what the officers approve; execute refuses a record whose
 * profile is not the key's), the old key of an activation is the active
 * key of the subject's profile (other profiles and the certificate key are
 * untouched), and its rollover statement carries the claim "profile".
 *
 * Times: each step is dated and judged (expiry, officer validity) at this
 * host's clock, never before the audit log's newest entry (a clock set
 * back, by mistake or by faketime, revives no expired ceremony); the
 * ledger re-checks the same in its transaction. approve shows, on stderr
 * and before signing, what the officer signs (no prompt).
 *
 * verify-transcript checks the officers against a roster: --officers FILE
 * ("NAME SHA256:HEX" lines, ceremony.h), else the configuration's
 * ceremony.officers; with only --officer-ca there is none, and the report
 * says so (stdout and stderr) and shows each approval by its certificate.
 *
 * Audit objects name the officers: ceremony.approve "ID officer NAME
 * SHA256:FPR" (a refusal before the certificate was accepted: "ID
 * certificate SUBJECT SHA256:FPR", the certificate as presented), and
 * ceremony.execute "ID officer NAME SHA256:FPR officer ..." for each
 * approval counted (just "ID" when refused before they were counted).
 *
 * Every refusal exits 1 with the reason on stderr and is audited as
 * ceremony.start, ceremony.approve, ceremony.execute or cert.revoke,
 * outcome failure, with an error_code: an officer check's code
 * (unknown_officer, other_ca, expired, revoked, bad_certificate,
 * bad_signature, duplicate_officer, key_mismatch, ...) or the error's
 * name in lower case (ceremony_expired, ceremony_closed, key_forbidden,
 * conflict, not_found, quorum, ...). Usage errors exit 2 and are not
 * audited.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/provider.h>

#include "admin.h"
#include "audit_chain.h"
#include "ceremony.h"
#include "certsign.h"
#include "jose.h"
#include "ledger.h"
#include "provider.h"
#include "store.h"
#include "store_target.h"

#define REASON_MAX 512                   /* bytes of --reason */
#define TRANSCRIPT_MAX (8 * 1024 * 1024) /* bytes of a transcript read back */
#define ROLLOVER_TYP "credsign-rollover+jws"
#define WHY_MAX 1024
#define OBJECT_MAX 1024 /* an audit object naming officers */
#define DN_SHOWN 120     /* characters of a subject DN in an audit object */
#define PATH_MAX_SHOWN 4200 /* a roster's description: its path and count */

/* ---- the command line --------------------------------------------------------- */

typedef struct {
	const char *config_path;
	cs_log_level level;
	const char *words[3]; /* noun, verb, operand */
	int nwords;
	const char *action, *key, *cert, *reason, *officer_cert, *officer_key, *officer_module;
	const char *format, *out, *officer_ca, *officers, *jwks;
	const char *owner_connection, *owner_password_file;
	int accept_clock_jump;
} cer_opts;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: credsign-admin [--config FILE] ceremony start --action ACTION [--key KID | --cert ID]\n"
		"                      [--reason TEXT] [--accept-clock-jump]\n"
		"         ACTION: activate|retire|compromise|destroy (--key), purge, revoke (--cert, --reason)\n"
		"       credsign-admin [--config FILE] ceremony approve ID --officer-cert C --officer-key K\n"
		"                      [--officer-module PKCS11-MODULE]\n"
		"       credsign-admin [--config FILE] ceremony execute ID [--jwks FILE]\n"
		"                      [--owner-connection CONNINFO [--owner-password-file FILE]]\n"
		"       credsign-admin [--config FILE] ceremony list [--format text|json]\n"
		"       credsign-admin [--config FILE] ceremony show ID\n"
		"       credsign-admin [--config FILE] ceremony transcript ID [--out FILE]\n"
		"       credsign-admin [--config FILE] ceremony verify-transcript FILE [--officer-ca FILE]\n"
		"                      [--officers ROSTER] [--jwks FILE]\n"
		"       credsign-admin [--config FILE] cert revoke ID --reason TEXT\n"
		"K: a PEM key file, or a pkcs11: URI of a key on the officer's own token (module: --officer-module,\n"
		"$CREDSIGN_PKCS11_MODULE, else pkcs11.module; PIN: the URI's pin-source, else\n"
		"$CREDSIGN_OFFICER_PIN_FILE)\n"
		"ROSTER: the officers, one \"NAME SHA256:FINGERPRINT\" a line ('#' comments); without it (and\n"
		"without a configuration) verify-transcript cannot check who the officers are\n");
}

/* 0, or 2 after a usage message. */
static int parse_args(int argc, char **argv, cer_opts *op)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"action", required_argument, NULL, 'a'},
		{"key", required_argument, NULL, 'k'},
		{"cert", required_argument, NULL, 'C'},
		{"reason", required_argument, NULL, 'r'},
		{"accept-clock-jump", no_argument, NULL, 'A'},
		{"officer-cert", required_argument, NULL, 'O'},
		{"officer-key", required_argument, NULL, 'K'},
		{"officer-module", required_argument, NULL, 'M'},
		{"format", required_argument, NULL, 'm'},
		{"out", required_argument, NULL, 'o'},
		{"officer-ca", required_argument, NULL, 'X'},
		{"officers", required_argument, NULL, 'R'},
		{"jwks", required_argument, NULL, 'J'},
		{"owner-connection", required_argument, NULL, 'W'},
		{"owner-password-file", required_argument, NULL, 'P'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	memset(op, 0, sizeof(*op));
	op->config_path = getenv("CREDSIGN_CONF");
	op->level = CS_LOG_WARN;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:hv", opts, NULL)) != -1) {
		switch (c) {
		case 'c': op->config_path = optarg; break;
		case 'a': op->action = optarg; break;
		case 'k': op->key = optarg; break;
		case 'C': op->cert = optarg; break;
		case 'r': op->reason = optarg; break;
		case 'A': op->accept_clock_jump = 1; break;
		case 'O': op->officer_cert = optarg; break;
		case 'K': op->officer_key = optarg; break;
		case 'M': op->officer_module = optarg; break;
		case 'm': op->format = optarg; break;
		case 'o': op->out = optarg; break;
		case 'X': op->officer_ca = optarg; break;
		case 'R': op->officers = optarg; break;
		case 'J': op->jwks = optarg; break;
		case 'W': op->owner_connection = optarg; break;
		case 'P': op->owner_password_file = optarg; break;
		case 'v': op->level = CS_LOG_DEBUG; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return 2;
		}
	}
	for (int i = optind; i < argc; i++) {
		if (op->nwords == 3) {
			usage(stderr);
			return 2;
		}
		op->words[op->nwords++] = argv[i];
	}
	return 0;
}

/* ---- helpers ------------------------------------------------------------------- */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* RFC 3339 UTC with milliseconds, as the store keeps times. */
static void rfc3339(int64_t ms, char out[32])
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	char base[24];
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, 32, "%s.%03dZ", base, (int)(ms % 1000));
}

/* An RFC 3339 UTC time with milliseconds (the store's form) -> ms since
 * the epoch; 0 when it is not one. */
static int ts_ms(const char *ts, int64_t *ms)
{
	time_t secs;
	if (cs_ceremony_time_parse(ts, &secs) != CS_OK || strlen(ts) != 24 || ts[19] != '.')
		return 0;
	*ms = (int64_t)secs * 1000 + (ts[20] - '0') * 100 + (ts[21] - '0') * 10 + (ts[22] - '0');
	return 1;
}

/* Now, in ms: this host's clock, never before the audit log's newest
 * entry (said on stderr when the clock is more than a second behind it). */
static int64_t log_now_ms(cs_store *store)
{
	int64_t now = now_ms(), seq = 0, head = 0;
	uint8_t hash[32];
	char ts[32] = "", clock[32];
	if (store != NULL && cs_store_audit_last(store, &seq, hash, ts) == CS_OK && ts_ms(ts, &head) && head > now) {
		if (head - now > 1000) {
			rfc3339(now, clock);
			fprintf(stderr, "credsign-admin: this host's clock (%s) is behind the audit log's newest entry "
					"(%s): that time is taken as now\n", clock, ts);
		}
		now = head;
	}
	return now;
}

/* The audit error code of an error: its name in lower case without CS_E_
 * (CS_E_CEREMONY_EXPIRED -> ceremony_expired). */
static const char *err_code(cs_err r, char out[CS_CEREMONY_CODE_MAX])
{
	const char *name = cs_err_name(r);
	if (strncmp(name, "CS_E_", 5) == 0)
		name += 5;
	size_t i = 0;
	for (; name[i] != '\0' && i + 1 < CS_CEREMONY_CODE_MAX; i++)
		out[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] - 'A' + 'a' : name[i]);
	out[i] = '\0';
	return out;
}

/* A refusal: the reason on stderr, audited as `event` failure with `code`;
 * returns 1. */
__attribute__((format(printf, 5, 6))) static int refuse(admin_ctx *a, const char *event, const char *object,
							 const char *code, const char *fmt, ...)
{
	char why[WHY_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	fprintf(stderr, "credsign-admin: %s refused: %s (%s)\n", event, why, code);
	(void)admin_event_at(a, event, object != NULL && object[0] != '\0' ? object : "-", "failure", code, NULL);
	return 1;
}

/* The same with the code of an error. */
static int refuse_err(admin_ctx *a, const char *event, const char *object, cs_err r, const char *what)
{
	char code[CS_CEREMONY_CODE_MAX];
	return refuse(a, event, object, err_code(r, code), "%s: %s", what, cs_strerror(r));
}

/* A kid: an RFC 7638 thumbprint, 43 base64url characters. */
static int kid_valid(const char *s)
{
	if (s == NULL || strlen(s) != 43)
		return 0;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == 43;
}

/* A certificate id as the daemon makes them: 1..63 of [A-Za-z0-9_-]. */
static int cert_id_valid(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;
	return n >= 1 && n < CS_ID_MAX &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == n;
}

/* A reason: 1..REASON_MAX bytes of UTF-8 without control characters. */
static int reason_valid(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;
	if (n == 0 || n > REASON_MAX)
		return 0;
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		unsigned char b = p[i];
		size_t len = b < 0x80 ? 1 : (b & 0xe0) == 0xc0 ? 2 : (b & 0xf0) == 0xe0 ? 3 : (b & 0xf8) == 0xf0 ? 4 : 0;
		if (len == 0 || i + len > n || b < 0x20 || b == 0x7f || (len == 2 && b < 0xc2) || b > 0xf4)
			return 0;
		for (size_t k = 1; k < len; k++)
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
		i += len;
	}
	return 1;
}

static cs_err ledger_open(admin_ctx *a, cs_ledger **l)
{
	return cs_ledger_connect_config(a->cfg, l);
}

static cs_audit_entry audit_entry(admin_ctx *a, const char *actor, const char *ts, const char *action,
				  const char *object)
{
	cs_audit_entry e = {.ts = ts, .node = a->cfg->server.node_id, .actor = actor, .role = "admin",
			    .action = action, .object = object, .outcome = "success"};
	return e;
}

/* ---- keys: state in the store, presence in the token ------------------------------ */

typedef struct {
	int found;
	char *status, *uri, *label, *cka_id, *since, *destroyed_at;
	char *profile; /* the signing profile whose key it is; NULL: a certificate key */
	cs_err err;
} key_state;

static char *dup_or_null(const char *s, cs_err *err)
{
	if (s == NULL)
		return NULL;
	char *d = strdup(s);
	if (d == NULL)
		*err = CS_E_NOMEM;
	return d;
}

static void on_key(void *arg, const cs_key_info *k)
{
	key_state *ks = arg;
	const char *since = k->created_at;
	if (strcmp(k->status, "active") == 0 && k->activated_at != NULL)
		since = k->activated_at;
	else if (strcmp(k->status, "retired") == 0 && k->retired_at != NULL)
		since = k->retired_at;
	else if (strcmp(k->status, "compromised") == 0 && k->compromised_at != NULL)
		since = k->compromised_at;
	ks->found = 1;
	ks->status = dup_or_null(k->status, &ks->err);
	ks->uri = dup_or_null(k->uri, &ks->err);
	ks->label = dup_or_null(k->label, &ks->err);
	ks->cka_id = dup_or_null(k->cka_id, &ks->err);
	ks->since = dup_or_null(since, &ks->err);
	ks->destroyed_at = dup_or_null(k->destroyed_at, &ks->err);
	ks->profile = dup_or_null(k->profile, &ks->err);
}

static void key_state_free(key_state *ks)
{
	free(ks->status);
	free(ks->uri);
	free(ks->label);
	free(ks->cka_id);
	free(ks->since);
	free(ks->destroyed_at);
	free(ks->profile);
	memset(ks, 0, sizeof(*ks));
}

/* The key's record: CS_OK, CS_E_NOT_FOUND or the store's error. */
static cs_err key_state_read(cs_store *store, const char *kid, key_state *ks)
{
	memset(ks, 0, sizeof(*ks));
	cs_err r = cs_store_key_info(store, kid, on_key, ks);
	if (r == CS_OK && ks->err != CS_OK)
		r = ks->err;
	if (r == CS_OK && (!ks->found || ks->status == NULL || ks->uri == NULL))
		r = CS_E_NOT_FOUND;
	return r;
}

/* Whether the key's state allows the action (ledger.h's lifecycle):
 * CS_OK, else CS_E_KEY_FORBIDDEN or CS_E_CONFLICT with why. */
static cs_err key_allows(const char *kid, const key_state *ks, cs_ceremony_action action, char *why, size_t n)
{
	const char *st = ks->status;
	int pending = strcmp(st, "pending") == 0, active = strcmp(st, "active") == 0;
	int retired = strcmp(st, "retired") == 0, compromised = strcmp(st, "compromised") == 0;
	switch (action) {
	case CS_CEREMONY_ACTIVATE:
		if (pending)
			return CS_OK;
		if (active) {
			snprintf(why, n, "key %s is the active key already (since %s)", kid, ks->since);
			return CS_E_CONFLICT;
		}
		snprintf(why, n, "key %s is %s (since %s): a retired or compromised key never becomes active again",
			 kid, st, ks->since);
		return CS_E_KEY_FORBIDDEN;
	case CS_CEREMONY_RETIRE:
		if (pending)
			return CS_OK;
		if (active) {
			snprintf(why, n, "key %s is the active key: it is retired by activating its successor "
				 "(ceremony start --action activate --key NEW-KID)", kid);
			return CS_E_KEY_FORBIDDEN;
		}
		snprintf(why, n, "key %s is %s already (since %s)", kid, st, ks->since);
		return retired ? CS_E_CONFLICT : CS_E_KEY_FORBIDDEN;
	case CS_CEREMONY_COMPROMISE:
		if (!compromised)
			return CS_OK;
		snprintf(why, n, "key %s is compromised already (since %s)", kid, ks->since);
		return CS_E_CONFLICT;
	case CS_CEREMONY_DESTROY:
		if ((retired || compromised) && ks->destroyed_at == NULL)
			return CS_OK;
		if (ks->destroyed_at != NULL) {
			snprintf(why, n, "key %s was destroyed already (at %s)", kid, ks->destroyed_at);
			return CS_E_CONFLICT;
		}
		snprintf(why, n, "key %s is %s: only a retired or compromised key is destroyed", kid, st);
		return CS_E_KEY_FORBIDDEN;
	default:
		snprintf(why, n, "not a key action");
		return CS_E_INVALID_ARG;
	}
}

/* The key at uri in the configured token (open), its public half's
 * thumbprint equal to kid: *found gets its full reference. CS_E_KEY_NOT_FOUND
 * or CS_E_CONFLICT (another key there) with why, or the token's error. */
static cs_err key_in_token(admin_ctx *a, const char *kid, const char *uri, cs_key_ref *found, char *why, size_t n)
{
	cs_key_ref q;
	EVP_PKEY *pkey = NULL;
	char thumb[44];
	cs_err r = cs_key_ref_from_uri(uri, &q);
	if (r == CS_OK)
		r = cs_token_find_key(a->token, &q, found);
	if (r == CS_OK)
		r = cs_token_public_key(a->token, found, &pkey);
	if (r == CS_OK)
		r = cs_jwk_thumbprint(pkey, thumb);
	EVP_PKEY_free(pkey);
	if (r == CS_E_KEY_NOT_FOUND)
		snprintf(why, n, "key %s is not in the token (%s)", kid, uri);
	else if (r != CS_OK)
		snprintf(why, n, "key %s in the token (%s): %s", kid, uri, cs_strerror(r));
	else if (strcmp(thumb, kid) != 0) {
		snprintf(why, n, "the token object at %s is key %s, not %s", uri, thumb, kid);
		r = CS_E_CONFLICT;
	}
	return r;
}

/* The store's active key of profile (NULL: the certificate keys; a
 * rollover's old key is the active key of its new key's profile): *kid and
 * *uri malloc'd, both NULL when no key of the profile is active. */
static cs_err active_key(cs_store *store, const char *profile, char **kid, char **uri)
{
	cs_active_key k = {0};
	*kid = *uri = NULL;
	cs_err r = cs_store_key_active_in(store, profile, &k);
	if (r == CS_E_NOT_FOUND)
		return CS_OK;
	if (r == CS_OK) {
		*kid = k.kid;
		*uri = k.uri;
		k.kid = k.uri = NULL;
	}
	cs_active_key_free(&k);
	return r;
}

/* ---- ceremonies as stored ---------------------------------------------------------- */

/* The ceremony and its approvals (and its rollover statement). */
static cs_err doc_load(cs_store *store, const char *id, cs_ceremony_doc *doc)
{
	memset(doc, 0, sizeof(*doc));
	cs_err r = cs_store_ceremony_get(store, id, cs_ceremony_doc_on_ceremony, cs_ceremony_doc_on_approval, doc);
	if (r == CS_OK && doc->status != CS_OK)
		r = doc->status;
	if (r == CS_OK && doc->c.id == NULL)
		r = CS_E_NOT_FOUND;
	if (r == CS_OK)
		r = cs_store_rollovers_each(store, cs_ceremony_doc_on_rollover, doc);
	if (r == CS_OK && doc->status != CS_OK)
		r = doc->status;
	return r;
}

/* open, expired or executed (at now). */
static const char *doc_state(const cs_ceremony_record *c, time_t now)
{
	time_t exp = 0;
	if (strcmp(c->state, "open") != 0)
		return c->state;
	if (cs_ceremony_time_parse(c->expires_at, &exp) != CS_OK || exp < now)
		return "expired";
	return "open";
}

/* An open, unexpired ceremony (at now): CS_OK, else CS_E_CEREMONY_CLOSED
 * or CS_E_CEREMONY_EXPIRED with why. */
static cs_err doc_usable(const cs_ceremony_doc *doc, time_t now, char *why, size_t n)
{
	const char *state = doc_state(&doc->c, now);
	if (strcmp(state, "open") == 0)
		return CS_OK;
	if (strcmp(state, "expired") == 0) {
		snprintf(why, n, "ceremony %s expired at %s; start a new one", doc->c.id, doc->c.expires_at);
		return CS_E_CEREMONY_EXPIRED;
	}
	snprintf(why, n, "ceremony %s was executed at %s by %s", doc->c.id,
		 doc->c.executed_at != NULL ? doc->c.executed_at : "?",
		 doc->c.executed_by != NULL ? doc->c.executed_by : "?");
	return CS_E_CEREMONY_CLOSED;
}

/* The record's fields against the bytes the officers sign: CS_OK, or
 * CS_E_INVALID_ARG with why (the record was edited in the store). */
static cs_err doc_canonical_ok(const cs_ceremony_doc *doc, char *why, size_t n)
{
	char *canonical = NULL;
	cs_err r = cs_ceremony_canonical(&doc->c, &canonical);
	if (r == CS_OK && (doc->c.canonical == NULL || strcmp(canonical, doc->c.canonical) != 0))
		r = CS_E_INVALID_ARG;
	if (r == CS_E_INVALID_ARG)
		snprintf(why, n, "ceremony %s: its record does not match the bytes its officers sign (edited in "
			 "the store?)", doc->c.id);
	else if (r != CS_OK)
		snprintf(why, n, "ceremony %s: %s", doc->c.id, cs_strerror(r));
	free(canonical);
	return r;
}

static cs_err officers_load(admin_ctx *a, cs_officers **o, char *why, size_t n)
{
	char w[CS_CEREMONY_WHY_MAX] = "";
	cs_err r = cs_officers_load(a->cfg, o, w);
	if (r != CS_OK)
		snprintf(why, n, "%s", w[0] != '\0' ? w : cs_strerror(r));
	return r;
}

/* A member of the ceremony's params (NULL when absent or not a string). */
static json_t *doc_params(const cs_ceremony_doc *doc)
{
	json_t *p = doc->c.params_json != NULL ? json_loads(doc->c.params_json, 0, NULL) : NULL;
	if (p != NULL && !json_is_object(p)) {
		json_decref(p);
		p = NULL;
	}
	return p != NULL ? p : json_object();
}

/* ---- ceremony start ------------------------------------------------------------------ */

typedef struct {
	cs_ceremony_action action;
	const char *subject; /* kid, cert id, "" */
	const char *reason;  /* NULL: none */
	int accept_clock_jump;
} start_req;

static void on_revocation(void *arg, const cs_revocation_record *rv)
{
	(void)arg;
	(void)rv;
}

/* The subject's preconditions at start; *params (JSON, owned) what the
 * officers approve beside the subject. 0, or 1 after a refusal. */
static int start_checks(admin_ctx *a, cs_store *store, const start_req *q, json_t **params)
{
	char why[WHY_MAX];
	const char *ev = "ceremony.start";
	*params = json_object();
	if (*params == NULL)
		return admin_fail("ceremony start", CS_E_NOMEM);
	if (q->action == CS_CEREMONY_PURGE) {
		json_object_set_new(*params, "retention_days", json_integer(a->cfg->audit.retention_days));
		json_object_set_new(*params, "accept_clock_jump", json_boolean(q->accept_clock_jump));
		return 0;
	}
	if (q->action == CS_CEREMONY_REVOKE) {
		cs_err r = cs_store_cert_exists(store, q->subject);
		if (r == CS_E_NOT_FOUND)
			return refuse(a, ev, q->subject, "not_found", "no certificate %s", q->subject);
		if (r != CS_OK)
			return refuse_err(a, ev, q->subject, r, "reading the certificate");
		r = cs_store_revocation_get(store, q->subject, on_revocation, NULL);
		if (r == CS_OK)
			return refuse(a, ev, q->subject, "conflict", "certificate %s is revoked already", q->subject);
		if (r != CS_E_NOT_FOUND)
			return refuse_err(a, ev, q->subject, r, "reading the revocations");
		return 0;
	}
	key_state ks;
	cs_err r = key_state_read(store, q->subject, &ks);
	if (r == CS_E_NOT_FOUND) {
		key_state_free(&ks);
		return refuse(a, ev, q->subject, "not_found", "no key %s on record (key list shows them; key "
			      "generate records new ones)", q->subject);
	}
	if (r == CS_OK && (r = key_allows(q->subject, &ks, q->action, why, sizeof(why))) != CS_OK) {
		char code[CS_CEREMONY_CODE_MAX];
		key_state_free(&ks);
		return refuse(a, ev, q->subject, err_code(r, code), "%s", why);
	}
	if (r != CS_OK) {
		key_state_free(&ks);
		return refuse_err(a, ev, q->subject, r, "reading the key");
	}
	int rc = 0;
	/* the officers approve a signing profile's key as such */
	if (ks.profile != NULL)
		json_object_set_new(*params, "profile", json_string(ks.profile));
	if (q->action == CS_CEREMONY_ACTIVATE || q->action == CS_CEREMONY_DESTROY) {
		cs_key_ref found;
		if ((r = key_in_token(a, q->subject, ks.uri, &found, why, sizeof(why))) != CS_OK) {
			char code[CS_CEREMONY_CODE_MAX];
			rc = refuse(a, ev, q->subject, err_code(r, code), "%s", why);
		}
	}
	if (rc == 0 && q->action == CS_CEREMONY_ACTIVATE) {
		char *old_kid = NULL, *old_uri = NULL;
		if ((r = active_key(store, ks.profile, &old_kid, &old_uri)) != CS_OK)
			rc = refuse_err(a, ev, q->subject, r, "reading the active key");
		else
			json_object_set_new(*params, "old_kid", old_kid != NULL ? json_string(old_kid) : json_null());
		free(old_kid);
		free(old_uri);
	}
	if (rc == 0 && q->action == CS_CEREMONY_DESTROY) {
		/* the officers approve the token objects that go */
		json_object_set_new(*params, "uri", json_string(ks.uri));
		if (ks.label != NULL)
			json_object_set_new(*params, "label", json_string(ks.label));
		if (ks.cka_id != NULL)
			json_object_set_new(*params, "cka_id", json_string(ks.cka_id));
	}
	key_state_free(&ks);
	return rc;
}

/* Record a new ceremony and print it. 0, or 1. */
static int ceremony_start(admin_ctx *a, const start_req *q)
{
	const char *ev = "ceremony.start", *name = cs_ceremony_action_name(q->action);
	const char *object = q->subject[0] != '\0' ? q->subject : name;
	char why[WHY_MAX], actor[96], created[32], expires[32];
	char id[CS_CEREMONY_ID_CHARS + 1], nonce[CS_CEREMONY_NONCE_CHARS + 1];
	uint8_t raw[CS_CEREMONY_ID_RAW + CS_CEREMONY_NONCE_RAW];
	cs_officers *officers = NULL;
	cs_store *store = NULL;
	cs_ledger *ledger = NULL;
	json_t *params = NULL;
	char *params_text = NULL, *canonical = NULL;
	int rc = 1;
	cs_err r = officers_load(a, &officers, why, sizeof(why));
	if (r != CS_OK) {
		rc = refuse_err(a, ev, object, r, why);
		goto out;
	}
	if ((r = cs_store_connect_config(a->cfg, &store)) != CS_OK) {
		rc = refuse_err(a, ev, object, r, "opening the store");
		goto out;
	}
	if (admin_open_token(a, 0) != 0) {
		(void)admin_event_at(a, ev, object, "failure", "token", NULL);
		goto out;
	}
	if (start_checks(a, store, q, &params) != 0)
		goto out;
	if ((r = cs_token_random(a->token, raw, sizeof(raw))) != CS_OK) {
		rc = refuse_err(a, ev, object, r, "drawing the ceremony's id and nonce from the token");
		goto out;
	}
	cs_ceremony_id_from_raw(raw, id);
	if ((r = cs_ceremony_nonce_from_raw(raw + CS_CEREMONY_ID_RAW, nonce)) != CS_OK ||
	    (params_text = json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
		rc = admin_fail("ceremony start", r != CS_OK ? r : CS_E_NOMEM);
		goto out;
	}
	int64_t t0 = log_now_ms(store);
	rfc3339(t0, created);
	rfc3339(t0 + (int64_t)a->cfg->ceremony.expiry_minutes * 60000, expires);
	admin_actor(actor);
	cs_ceremony_record c = {.id = id, .action = name, .subject = q->subject, .reason = q->reason,
				.params_json = params_text, .nonce = nonce, .node = a->cfg->server.node_id,
				.created_at = created, .expires_at = expires, .started_by = actor};
	if ((r = cs_ceremony_canonical(&c, &canonical)) != CS_OK) {
		rc = refuse_err(a, ev, object, r, "the ceremony's fields");
		goto out;
	}
	c.canonical = canonical;
	cs_audit_entry e = audit_entry(a, actor, created, ev, id);
	if ((r = ledger_open(a, &ledger)) != CS_OK || (r = cs_ledger_ceremony_create(ledger, &c, &e)) != CS_OK) {
		rc = refuse_err(a, ev, object, r, "recording the ceremony");
		goto out;
	}
	int quorum = cs_officers_quorum(officers, q->action);
	char next[160];
	snprintf(next, sizeof(next), "credsign-admin ceremony approve %s --officer-cert CERT --officer-key KEY", id);
	rc = admin_print_json(json_pack("{s:s, s:s, s:s, s:s?, s:O, s:s, s:s, s:s, s:i, s:s}", "id", id, "action",
					name, "subject", q->subject, "reason", q->reason, "params", params,
					"created_at", created, "expires_at", expires, "started_by", actor,
					"quorum", quorum, "next", next));
out:
	cs_ledger_close(ledger);
	cs_store_close(store);
	cs_officers_free(officers);
	json_decref(params);
	free(params_text);
	free(canonical);
	return rc;
}

static int cmd_start(admin_ctx *a, const cer_opts *op)
{
	start_req q = {.reason = op->reason, .accept_clock_jump = op->accept_clock_jump};
	if (cs_ceremony_action_parse(op->action, &q.action) != CS_OK) {
		fprintf(stderr, "credsign-admin: --action %s: activate, retire, compromise, destroy, purge or "
				"revoke\n", op->action);
		return 2;
	}
	int key_action = q.action != CS_CEREMONY_PURGE && q.action != CS_CEREMONY_REVOKE;
	q.subject = key_action ? op->key : q.action == CS_CEREMONY_REVOKE ? op->cert : "";
	if ((key_action && (op->key == NULL || op->cert != NULL)) ||
	    (q.action == CS_CEREMONY_REVOKE && (op->cert == NULL || op->key != NULL || op->reason == NULL)) ||
	    (q.action == CS_CEREMONY_PURGE && (op->key != NULL || op->cert != NULL)) ||
	    (op->accept_clock_jump && q.action != CS_CEREMONY_PURGE)) {
		fprintf(stderr, "credsign-admin: ceremony start --action %s takes %s\n", op->action,
			key_action ? "--key KID"
			: q.action == CS_CEREMONY_REVOKE ? "--cert ID --reason TEXT"
							  : "neither --key nor --cert (--accept-clock-jump allowed)");
		return 2;
	}
	if (key_action && !kid_valid(op->key)) {
		fprintf(stderr, "credsign-admin: --key %s is not a kid (43 base64url characters; key list shows "
				"them)\n", op->key);
		return 2;
	}
	if (q.action == CS_CEREMONY_REVOKE && !cert_id_valid(op->cert)) {
		fprintf(stderr, "credsign-admin: --cert %s is not a certificate id\n", op->cert);
		return 2;
	}
	if (op->reason != NULL && !reason_valid(op->reason)) {
		fprintf(stderr, "credsign-admin: --reason: 1 to %d bytes of UTF-8 text without control characters\n",
			REASON_MAX);
		return 2;
	}
	return ceremony_start(a, &q);
}

/* ---- ceremony approve ----------------------------------------------------------------- */

/* The officer key's PKCS#11 module: --officer-module, $CREDSIGN_PKCS11_MODULE,
 * the configured pkcs11.module. */
static const char *officer_module(const admin_ctx *a, const cer_opts *op)
{
	const char *env = getenv("CREDSIGN_PKCS11_MODULE");
	if (op->officer_module != NULL)
		return op->officer_module;
	return env != NULL && env[0] != '\0' ? env : a->cfg->pkcs11.module;
}

typedef struct {
	admin_ctx *a;
	const cer_opts *op;
	const char *id;
	cs_officers *officers;
	cs_ceremony_doc doc;
	char *pem;
	cs_approval_sig sig;
	cs_officer_id who; /* as presented (cs_officer_cert_ids), then as checked */
	int64_t now_ms;
	char object[OBJECT_MAX];
} approval;

/* A subject DN for an audit object: printable ASCII, at most DN_SHOWN
 * characters (longer ones end in "..."). */
static void dn_shown(const char *dn, char out[DN_SHOWN + 4])
{
	snprintf(out, DN_SHOWN + 4, "%.*s%s", DN_SHOWN, dn[0] != '\0' ? dn : "-", strlen(dn) > DN_SHOWN ? "..." : "");
	cs_audit_sanitize(out);
}

/* The approval's audit object (see the top), into p->object. */
static const char *approval_object(approval *p)
{
	char dn[DN_SHOWN + 4];
	if (p->who.name[0] != '\0' && p->who.code[0] == '\0')
		snprintf(p->object, sizeof(p->object), "%s officer %s %s", p->id, p->who.name, p->who.fingerprint);
	else if (p->who.fingerprint[0] != '\0') {
		dn_shown(p->who.subject, dn);
		snprintf(p->object, sizeof(p->object), "%s certificate %s %s", p->id, dn, p->who.fingerprint);
	} else {
		snprintf(p->object, sizeof(p->object), "%s certificate unreadable", p->id);
	}
	return p->object;
}

/* An earlier approval by the same officer: by name, certificate or public
 * key. NULL when none; else what is the same. */
static const char *same_officer(const cs_approval_record *ap, const cs_officer_id *who)
{
	cs_officer_id was;
	if (strcmp(ap->fingerprint, who->fingerprint) == 0)
		return "certificate";
	if (strcmp(ap->officer, who->name) == 0)
		return "name";
	if (cs_officer_cert_ids(ap->cert_pem, &was) == CS_OK && was.spki[0] != '\0' && strcmp(was.spki, who->spki) == 0)
		return "public key";
	return NULL;
}

/* Everything an approval is checked for before it is signed, at the
 * step's time (p->now_ms). 0, or 1. */
static int approve_checks(approval *p)
{
	const char *ev = "ceremony.approve";
	char why[WHY_MAX], w[CS_CEREMONY_WHY_MAX] = "", code[CS_CEREMONY_CODE_MAX];
	cs_store *store = NULL;
	/* the certificate as presented names every refusal */
	cs_err cert_r = cs_officer_cert_read(p->op->officer_cert, &p->pem, w);
	if (cert_r == CS_OK && cs_officer_cert_ids(p->pem, &p->who) != CS_OK)
		memset(&p->who, 0, sizeof(p->who)); /* read as one certificate: cannot happen */
	cs_err r = officers_load(p->a, &p->officers, why, sizeof(why));
	if (r != CS_OK)
		return refuse_err(p->a, ev, approval_object(p), r, why);
	if ((r = cs_store_connect_config(p->a->cfg, &store)) == CS_OK) {
		p->now_ms = log_now_ms(store);
		r = doc_load(store, p->id, &p->doc);
	}
	cs_store_close(store);
	if (r == CS_E_NOT_FOUND)
		return refuse(p->a, ev, approval_object(p), "not_found", "no ceremony %s", p->id);
	if (r != CS_OK)
		return refuse_err(p->a, ev, approval_object(p), r, "reading the ceremony");
	time_t now = (time_t)(p->now_ms / 1000);
	if ((r = doc_usable(&p->doc, now, why, sizeof(why))) != CS_OK ||
	    (r = doc_canonical_ok(&p->doc, why, sizeof(why))) != CS_OK)
		return refuse(p->a, ev, approval_object(p), r == CS_E_INVALID_ARG ? "invalid_record" : err_code(r, code),
			      "%s", why);
	if (cert_r != CS_OK)
		return refuse(p->a, ev, approval_object(p), "bad_certificate", "--officer-cert %s: %s",
			      p->op->officer_cert, w[0] != '\0' ? w : cs_strerror(cert_r));
	if ((r = cs_officers_check(p->officers, p->pem, now, &p->who)) != CS_OK)
		return refuse(p->a, ev, approval_object(p), p->who.code[0] != '\0' ? p->who.code : err_code(r, code),
			      "--officer-cert %s: %s", p->op->officer_cert,
			      p->who.why[0] != '\0' ? p->who.why : cs_strerror(r));
	for (size_t i = 0; i < p->doc.napprovals; i++) {
		const cs_approval_record *ap = &p->doc.approvals[i];
		const char *same = same_officer(ap, &p->who);
		if (same != NULL)
			return refuse(p->a, ev, approval_object(p), "duplicate_officer",
				      "officer %s (%s) approved ceremony %s already, at %s, as %s (%s; the same %s): an "
				      "officer counts once",
				      p->who.name, p->who.fingerprint, p->id, ap->approved_at, ap->officer, ap->fingerprint,
				      same);
	}
	return 0;
}

/* A value shown to the officer: printable ASCII as it is, "-" for none,
 * anything else as a JSON string with escapes (no look-alike text). */
static void show_value(const char *label, const char *v)
{
	int plain = v != NULL && v[0] != '\0';
	for (const unsigned char *c = (const unsigned char *)v; plain && *c; c++)
		plain = *c >= 0x20 && *c < 0x7f;
	char *j = NULL;
	json_t *sv = v != NULL && !plain ? json_string(v) : NULL;
	if (sv != NULL)
		j = json_dumps(sv, JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
	fprintf(stderr, "  %-22s%s\n", label, plain ? v : j != NULL ? j : "-");
	free(j);
	json_decref(sv);
}

/* What the officer is about to sign, on stderr, before it is signed. */
static void approval_show(const approval *p)
{
	const cs_ceremony_record *c = &p->doc.c;
	uint8_t md[32];
	unsigned int n = 0;
	char hex[65] = "?";
	if (EVP_Digest(c->canonical, strlen(c->canonical), md, &n, EVP_sha256(), NULL) == 1 && n == 32)
		for (unsigned i = 0; i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", md[i]);
	fprintf(stderr, "credsign-admin: officer %s (%s, %s) signs ceremony %s:\n", p->who.name, p->who.subject,
		p->who.fingerprint, c->id);
	show_value("action:", c->action);
	show_value("subject:", c->subject[0] != '\0' ? c->subject : NULL);
	show_value("reason:", c->reason);
	show_value("parameters:", c->params_json);
	show_value("node:", c->node);
	show_value("created:", c->created_at);
	show_value("expires:", c->expires_at);
	show_value("started by:", c->started_by);
	show_value("signed bytes SHA-256:", hex);
}

static int cmd_approve(admin_ctx *a, const cer_opts *op)
{
	const char *ev = "ceremony.approve";
	approval p = {.a = a, .op = op, .id = op->words[2]};
	char w[CS_CEREMONY_WHY_MAX] = "", actor[96], at[32];
	cs_ledger *ledger = NULL;
	int rc = 1;
	if (approve_checks(&p) != 0)
		goto out;
	approval_show(&p);
	cs_officer_key key = {.key = op->officer_key, .module = officer_module(a, op), .pin_file = NULL};
	cs_err r = cs_approval_sign(&key, p.pem, (const uint8_t *)p.doc.c.canonical, strlen(p.doc.c.canonical),
				    &p.sig, w);
	if (r != CS_OK) {
		char code[CS_CEREMONY_CODE_MAX];
		rc = refuse(a, ev, approval_object(&p),
			    r == CS_E_CEREMONY_REFUSED  ? "key_mismatch"
			    : r == CS_E_PIN_FILE_PERMS ? "key_file_perms"
						   : err_code(r, code),
			    "signing with --officer-key %s: %s", op->officer_key, w[0] != '\0' ? w : cs_strerror(r));
		goto out;
	}
	admin_actor(actor);
	int64_t t = now_ms();
	rfc3339(t > p.now_ms ? t : p.now_ms, at);
	cs_approval_record rec = {.ceremony_id = p.id, .officer = p.who.name, .fingerprint = p.who.fingerprint,
				  .cert_pem = p.pem, .sig_alg = p.sig.sig_alg, .signature_b64 = p.sig.signature_b64,
				  .approved_at = at, .approved_by = actor};
	cs_audit_entry e = audit_entry(a, actor, at, ev, approval_object(&p));
	if ((r = ledger_open(a, &ledger)) == CS_OK)
		r = cs_ledger_ceremony_approve(ledger, &rec, &e);
	if (r == CS_E_CONFLICT) {
		rc = refuse(a, ev, approval_object(&p), "duplicate_officer", "officer %s (%s) approved ceremony %s already",
			    p.who.name, p.who.fingerprint, p.id);
		goto out;
	}
	if (r != CS_OK) {
		rc = refuse_err(a, ev, approval_object(&p), r, "recording the approval");
		goto out;
	}
	cs_ceremony_action action = CS_CEREMONY_ACTIVATE;
	int required = cs_ceremony_action_parse(p.doc.c.action, &action) == CS_OK
			       ? cs_officers_quorum(p.officers, action)
			       : 0;
	/* approved_at as recorded: the ledger's time of the step */
	rc = admin_print_json(json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:i}", "ceremony", p.id, "officer",
					p.who.name, "fingerprint", p.who.fingerprint, "approved_at", e.ts, "sig_alg",
					p.sig.sig_alg, "approvals", (int)p.doc.napprovals + 1, "required", required));
out:
	cs_ledger_close(ledger);
	cs_approval_sig_free(&p.sig);
	free(p.pem);
	cs_ceremony_doc_free(&p.doc);
	cs_officers_free(p.officers);
	return rc;
}

/* ---- ceremony execute ------------------------------------------------------------------ */

typedef struct {
	admin_ctx *a;
	const cer_opts *op;
	const char *id;
	cs_ceremony_action action;
	cs_officers *officers;
	cs_ceremony_doc doc;
	cs_quorum_report rep;
	cs_store *store;
	char actor[96], at[32];
	char object[OBJECT_MAX]; /* the audit object: the id, then the officers counted */
} execution;

/* The execution's audit object once the approvals are counted: the id and
 * each officer counted (see the top). */
static void execution_object(execution *x)
{
	size_t n = (size_t)snprintf(x->object, sizeof(x->object), "%s", x->id), more = 0;
	for (size_t i = 0; i < x->rep.nverdicts; i++) {
		const cs_approval_verdict *v = &x->rep.verdicts[i];
		if (!v->counted)
			continue;
		char one[CS_CEREMONY_NAME_MAX + CS_CEREMONY_FPR_CHARS + 16];
		int k = snprintf(one, sizeof(one), " officer %s %s", v->id.name, v->id.fingerprint);
		if (k > 0 && n + (size_t)k + 16 < sizeof(x->object)) {
			memcpy(x->object + n, one, (size_t)k + 1);
			n += (size_t)k;
		} else {
			more++;
		}
	}
	if (more > 0)
		snprintf(x->object + n, sizeof(x->object) - n, " +%zu more", more);
	cs_audit_sanitize(x->object);
}

/* Record the execution (the ledger re-checks open, expiry and state in its
 * transaction) and print the result. 0, or 1. */
static int record_execution(execution *x, cs_ceremony_exec *ex, json_t *result)
{
	const char *ev = "ceremony.execute";
	cs_ledger *ledger = NULL;
	char *result_text = json_dumps(result, JSON_COMPACT | JSON_SORT_KEYS);
	if (result_text == NULL) {
		json_decref(result);
		return admin_fail("ceremony execute", CS_E_NOMEM);
	}
	ex->ceremony_id = x->id;
	ex->action = x->doc.c.action;
	ex->subject = x->doc.c.subject;
	ex->at = x->at;
	ex->actor = x->actor;
	ex->result_json = result_text;
	cs_audit_entry e = audit_entry(x->a, x->actor, x->at, ev, x->object);
	cs_err r = ledger_open(x->a, &ledger);
	if (r == CS_OK)
		r = cs_ledger_ceremony_execute(ledger, ex, &e);
	cs_ledger_close(ledger);
	free(result_text);
	int rc;
	if (r != CS_OK) {
		char what[160];
		snprintf(what, sizeof(what), "recording the execution of ceremony %s", x->id);
		rc = refuse_err(x->a, ev, x->object, r, what);
		json_decref(result);
	} else {
		json_object_set_new(result, "ceremony", json_string(x->id));
		json_object_set_new(result, "executed_at", json_string(e.ts)); /* as recorded */
		json_object_set_new(result, "executed_by", json_string(x->actor));
		rc = admin_print_json(result);
	}
	return rc;
}

/* The subject key's state allows the action now. 0, or 1. */
static int exec_key_state(execution *x, key_state *ks)
{
	const char *ev = "ceremony.execute";
	char why[WHY_MAX], code[CS_CEREMONY_CODE_MAX];
	cs_err r = key_state_read(x->store, x->doc.c.subject, ks);
	if (r == CS_E_NOT_FOUND)
		return refuse(x->a, ev, x->object, "not_found", "no key %s on record", x->doc.c.subject);
	if (r != CS_OK)
		return refuse_err(x->a, ev, x->object, r, "reading the key");
	if ((r = key_allows(x->doc.c.subject, ks, x->action, why, sizeof(why))) != CS_OK)
		return refuse(x->a, ev, x->object, err_code(r, code), "%s", why);
	/* the profile the officers approved is the key's (fixed once recorded) */
	json_t *params = doc_params(&x->doc);
	const json_t *approved = json_object_get(params, "profile");
	const char *approved_profile = json_string_value(approved);
	int same = approved_profile != NULL ? ks->profile != NULL && strcmp(approved_profile, ks->profile) == 0
					    : approved == NULL && ks->profile == NULL;
	json_decref(params);
	if (!same)
		return refuse(x->a, ev, x->object, "invalid_record",
			      "ceremony %s was approved for a key of %s%s, but key %s is %s%s", x->id,
			      approved_profile != NULL ? "signing profile " : "the certificates",
			      approved_profile != NULL ? approved_profile : "", x->doc.c.subject,
			      ks->profile != NULL ? "a key of signing profile " : "a certificate key",
			      ks->profile != NULL ? ks->profile : "");
	return 0;
}

/* A compact JWS split: its payload part (between the dots: *payload, *len)
 * and its signature part (*sig). 0 when it has not three parts. */
static int jws_parts(const char *jws, const char **payload, size_t *len, const char **sig)
{
	const char *d1 = strchr(jws, '.');
	const char *d2 = d1 != NULL ? strchr(d1 + 1, '.') : NULL;
	if (d2 == NULL)
		return 0;
	*payload = d1 + 1;
	*len = (size_t)(d2 - d1 - 1);
	*sig = d2 + 1;
	return 1;
}

/* The rollover statement: both compact JWS over the same claims (the
 * signer serializes them deterministically) as one general JSON JWS, old
 * key first. *out malloc'd. */
static cs_err rollover_build(execution *x, cs_signer *old_signer, cs_signer *new_signer, const char *profile,
			     char **out)
{
	char *jws_old = NULL, *jws_new = NULL;
	json_t *claims = NULL, *approvals = json_array(), *sigs = json_array(), *general = NULL;
	cs_err r = approvals != NULL && sigs != NULL ? CS_OK : CS_E_NOMEM;
	*out = NULL;
	for (size_t i = 0; r == CS_OK && i < x->doc.napprovals; i++) {
		const cs_approval_record *ap = &x->doc.approvals[i];
		if (i < x->rep.nverdicts && x->rep.verdicts[i].counted &&
		    json_array_append_new(approvals, json_pack("{s:s, s:s, s:s}", "officer", ap->officer,
							       "fingerprint", ap->fingerprint, "approved_at",
							       ap->approved_at)) != 0)
			r = CS_E_NOMEM;
	}
	if (r == CS_OK) {
		const char *old_kid = old_signer != NULL ? cs_signer_kid(old_signer) : NULL;
		/* s? puts null for no old key */
		claims = json_pack("{s:s, s:s?, s:s, s:o, s:s, s:O, s:s}", "type", "credsign-rollover/v1", "old_kid",
				   old_kid, "new_kid", cs_signer_kid(new_signer), "new_jwk",
				   json_deep_copy(cs_signer_jwk(new_signer)), "ceremony_id", x->id, "approvals", approvals,
				   "time", x->at);
		/* a profile's rotation says so: its keys never verify certificates */
		if (claims == NULL || (profile != NULL && json_object_set_new(claims, "profile", json_string(profile)) != 0))
			r = CS_E_NOMEM;
	}
	if (r == CS_OK && old_signer != NULL)
		r = cs_signer_jws(old_signer, ROLLOVER_TYP, claims, &jws_old);
	if (r == CS_OK)
		r = cs_signer_jws(new_signer, ROLLOVER_TYP, claims, &jws_new);
	const char *payload = NULL, *payload_old = NULL, *sig = NULL;
	size_t len = 0, len_old = 0;
	if (r == CS_OK && (!jws_parts(jws_new, &payload, &len, &sig) ||
			   (jws_old != NULL && (!jws_parts(jws_old, &payload_old, &len_old, &sig) || len_old != len ||
						memcmp(payload_old, payload, len) != 0))))
		r = CS_E_INTERNAL; /* the two signatures must cover one payload */
	for (int k = 0; r == CS_OK && k < 2; k++) {
		const char *jws = k == 0 ? jws_old : jws_new;
		if (jws == NULL)
			continue;
		const char *p = NULL, *s = NULL;
		size_t n = 0;
		(void)jws_parts(jws, &p, &n, &s);
		if (json_array_append_new(sigs, json_pack("{s:s%, s:s}", "protected", jws, (size_t)(p - 1 - jws),
							  "signature", s)) != 0)
			r = CS_E_NOMEM;
	}
	if (r == CS_OK && ((general = json_pack("{s:s%, s:O}", "payload", payload, len, "signatures", sigs)) == NULL ||
			   (*out = json_dumps(general, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL))
		r = CS_E_NOMEM;
	free(jws_old);
	free(jws_new);
	json_decref(claims);
	json_decref(approvals);
	json_decref(sigs);
	json_decref(general);
	return r;
}

/* A signer on the key at uri, which must be kid. */
static cs_err signer_for(OSSL_LIB_CTX *libctx, const char *kid, const char *uri, cs_signer **out, char *why,
			 size_t n)
{
	cs_err r = cs_signer_open(libctx, uri, out);
	if (r != CS_OK) {
		snprintf(why, n, "opening key %s (%s): %s", kid, uri, cs_strerror(r));
		return r;
	}
	if (strcmp(cs_signer_kid(*out), kid) != 0) {
		snprintf(why, n, "the token object at %s is key %s, not %s", uri, cs_signer_kid(*out), kid);
		cs_signer_free(*out);
		*out = NULL;
		return CS_E_CONFLICT;
	}
	return CS_OK;
}

static int exec_activate(execution *x)
{
	const char *ev = "ceremony.execute", *kid = x->doc.c.subject;
	char why[WHY_MAX], code[CS_CEREMONY_CODE_MAX];
	key_state ks = {0};
	char *old_kid = NULL, *old_uri = NULL, *rollover = NULL;
	json_t *params = doc_params(&x->doc);
	OSSL_LIB_CTX *libctx = NULL;
	OSSL_PROVIDER *prov = NULL, *deflt = NULL;
	cs_signer *old_signer = NULL, *new_signer = NULL;
	cs_key_ref found;
	int rc = 1;
	if (exec_key_state(x, &ks) != 0)
		goto out;
	cs_err r = active_key(x->store, ks.profile, &old_kid, &old_uri);
	if (r != CS_OK) {
		rc = refuse_err(x->a, ev, x->object, r, "reading the active key");
		goto out;
	}
	const json_t *was = json_object_get(params, "old_kid");
	const char *was_kid = json_string_value(was);
	if (!json_is_null(was) && was_kid == NULL) {
		rc = refuse(x->a, ev, x->object, "invalid_record", "ceremony %s names no previous key", x->id);
		goto out;
	}
	if ((was_kid == NULL) != (old_kid == NULL) || (was_kid != NULL && strcmp(was_kid, old_kid) != 0)) {
		rc = refuse(x->a, ev, x->object, "conflict",
			    "the active key%s%s changed since ceremony %s started (then %s, now %s): start a new one",
			    ks.profile != NULL ? " of signing profile " : "", ks.profile != NULL ? ks.profile : "", x->id,
			    was_kid != NULL ? was_kid : "none", old_kid != NULL ? old_kid : "none");
		goto out;
	}
	if (admin_open_token(x->a, 0) != 0) {
		(void)admin_event_at(x->a, ev, x->object, "failure", "token", NULL);
		goto out;
	}
	if ((r = key_in_token(x->a, kid, ks.uri, &found, why, sizeof(why))) != CS_OK) {
		rc = refuse(x->a, ev, x->object, err_code(r, code), "%s", why);
		goto out;
	}
	if ((libctx = OSSL_LIB_CTX_new()) == NULL || cs_provider_load(libctx, x->a->token, &prov) != CS_OK ||
	    (deflt = OSSL_PROVIDER_load(libctx, "default")) == NULL) {
		rc = admin_fail("loading the provider", CS_E_CRYPTO);
		goto out;
	}
	if ((r = signer_for(libctx, kid, ks.uri, &new_signer, why, sizeof(why))) != CS_OK) {
		rc = refuse(x->a, ev, x->object, err_code(r, code), "the rollover statement: %s", why);
		goto out;
	}
	if (old_kid != NULL && (r = signer_for(libctx, old_kid, old_uri, &old_signer, why, sizeof(why))) != CS_OK) {
		/* the old key signs its successor; a key that is lost cannot:
		 * it is compromised first, then activation needs the new key only */
		rc = refuse(x->a, ev, x->object, err_code(r, code),
			    "the rollover statement needs the active key's signature: %s (a lost key is "
			    "compromised first: ceremony start --action compromise --key %s)",
			    why, old_kid);
		goto out;
	}
	if ((r = rollover_build(x, old_signer, new_signer, ks.profile, &rollover)) != CS_OK) {
		rc = refuse_err(x->a, ev, x->object, r, "signing the rollover statement");
		goto out;
	}
	cs_ceremony_exec ex = {.expected_active = old_kid, .rollover_json = rollover};
	json_t *result = json_pack("{s:s, s:s, s:s?}", "action", "activate", "new_kid", kid, "old_kid", old_kid);
	if (result == NULL) {
		rc = admin_fail("ceremony execute", CS_E_NOMEM);
		goto out;
	}
	rc = record_execution(x, &ex, result);
out:
	cs_signer_free(old_signer);
	cs_signer_free(new_signer);
	OSSL_PROVIDER_unload(deflt);
	OSSL_PROVIDER_unload(prov);
	OSSL_LIB_CTX_free(libctx);
	json_decref(params);
	free(rollover);
	free(old_kid);
	free(old_uri);
	key_state_free(&ks);
	return rc;
}

/* destroy: the token objects go first (checked to be the key: its public
 * half's thumbprint), then the record. A key the token no longer holds is
 * recorded destroyed, and the result says so. */
static int exec_destroy(execution *x)
{
	const char *ev = "ceremony.execute", *kid = x->doc.c.subject;
	char why[WHY_MAX], code[CS_CEREMONY_CODE_MAX];
	key_state ks = {0};
	cs_key_ref found;
	int rc = 1;
	if (exec_key_state(x, &ks) != 0)
		goto out;
	if (admin_open_token(x->a, 1) != 0) {
		(void)admin_event_at(x->a, ev, x->object, "failure", "token", NULL);
		goto out;
	}
	const char *objects = "destroyed";
	cs_err r = key_in_token(x->a, kid, ks.uri, &found, why, sizeof(why));
	if (r == CS_E_KEY_NOT_FOUND) {
		/* gone, or only its public half left (a destruction that
		 * stopped): that one goes when the URI names the pair's CKA_ID
		 * (a label alone could name another pair's public key) */
		cs_key_ref q;
		if ((r = cs_key_ref_from_uri(ks.uri, &q)) == CS_OK)
			r = q.id_len > 0 ? cs_token_destroy_key(x->a->token, &q) : CS_E_KEY_NOT_FOUND;
		if (r == CS_E_KEY_NOT_FOUND) {
			objects = "absent";
			r = CS_OK;
			fprintf(stderr, "credsign-admin: key %s is not in the token (%s): recorded destroyed\n", kid,
				ks.uri);
		}
		if (r != CS_OK)
			snprintf(why, sizeof(why), "destroying what is left of key %s: %s", kid, cs_strerror(r));
	} else if (r == CS_OK && (r = cs_token_destroy_key(x->a->token, &found)) != CS_OK) {
		snprintf(why, sizeof(why), "destroying key %s in the token: %s", kid, cs_strerror(r));
	}
	if (r != CS_OK) {
		rc = refuse(x->a, ev, x->object, err_code(r, code), "%s", why);
		goto out;
	}
	cs_ceremony_exec ex = {0};
	json_t *result = json_pack("{s:s, s:s, s:s, s:s}", "action", "destroy", "kid", kid, "uri", ks.uri,
				   "token_objects", objects);
	rc = result != NULL ? record_execution(x, &ex, result) : admin_fail("ceremony execute", CS_E_NOMEM);
out:
	key_state_free(&ks);
	return rc;
}

/* purge: the audit purge as the officers approved it, then the record. */
static int exec_purge(execution *x)
{
	json_t *params = doc_params(&x->doc);
	int accept = json_is_true(json_object_get(params, "accept_clock_jump")), purged = 0;
	const json_t *days = json_object_get(params, "retention_days");
	int same = json_is_integer(days) && json_integer_value(days) == x->a->cfg->audit.retention_days;
	json_decref(params);
	if (!same)
		return refuse(x->a, "ceremony.execute", x->object, "conflict",
			      "audit.retention_days is %d now, not what ceremony %s approved: start a new one",
			      x->a->cfg->audit.retention_days, x->id);
	if (cs_store_target_is_pg(x->a->cfg) && x->a->owner_connection == NULL)
		return refuse(x->a, "ceremony.execute", x->object, "owner_required",
			      "ceremony %s: on a PostgreSQL store the purge runs as the schema owner (the nodes' role "
			      "may not purge): give --owner-connection CONNINFO [--owner-password-file FILE]; nothing "
			      "purged", x->id);
	if (admin_open_token(x->a, 0) != 0) {
		(void)admin_event_at(x->a, "ceremony.execute", x->object, "failure", "token", NULL);
		return 1;
	}
	if (admin_audit_purge(x->a, x->op->jwks, accept, &purged) != 0)
		return refuse(x->a, "ceremony.execute", x->object, "purge_failed", "the audit purge of ceremony %s failed",
			      x->id);
	cs_ceremony_exec ex = {0};
	json_t *result = json_pack("{s:s, s:b}", "action", "purge", "purged", purged);
	return result != NULL ? record_execution(x, &ex, result) : admin_fail("ceremony execute", CS_E_NOMEM);
}

static int exec_revoke(execution *x)
{
	cs_ceremony_exec ex = {.reason = x->doc.c.reason};
	json_t *result = json_pack("{s:s, s:s, s:s?}", "action", "revoke", "cert_id", x->doc.c.subject, "reason",
				   x->doc.c.reason);
	return result != NULL ? record_execution(x, &ex, result) : admin_fail("ceremony execute", CS_E_NOMEM);
}

static int exec_key_change(execution *x)
{
	key_state ks = {0};
	int rc = exec_key_state(x, &ks);
	key_state_free(&ks);
	if (rc != 0)
		return rc;
	cs_ceremony_exec ex = {0};
	json_t *result = json_pack("{s:s, s:s}", "action", x->doc.c.action, "kid", x->doc.c.subject);
	return result != NULL ? record_execution(x, &ex, result) : admin_fail("ceremony execute", CS_E_NOMEM);
}

/* Print the approvals that do not count; the code of the first one (or
 * "quorum") into code. */
static void report_verdicts(const execution *x, char code[CS_CEREMONY_CODE_MAX])
{
	snprintf(code, CS_CEREMONY_CODE_MAX, "quorum");
	int first = 1;
	for (size_t i = 0; i < x->rep.nverdicts && i < x->doc.napprovals; i++) {
		const cs_approval_verdict *v = &x->rep.verdicts[i];
		if (v->counted)
			continue;
		fprintf(stderr, "credsign-admin: approval %zu (officer %s, %s) does not count: %s (%s)\n", i + 1,
			x->doc.approvals[i].officer, x->doc.approvals[i].fingerprint, v->id.why, v->id.code);
		if (first && v->id.code[0] != '\0')
			snprintf(code, CS_CEREMONY_CODE_MAX, "%s", v->id.code);
		first = 0;
	}
}

/* Everything re-verified at execution time (this host's clock, never
 * before the audit log's newest entry: x->at). 0, or 1. */
static int execute_checks(execution *x)
{
	const char *ev = "ceremony.execute";
	char why[WHY_MAX], code[CS_CEREMONY_CODE_MAX];
	int64_t t = now_ms();
	rfc3339(t, x->at);
	cs_err r = officers_load(x->a, &x->officers, why, sizeof(why));
	if (r != CS_OK)
		return refuse_err(x->a, ev, x->object, r, why);
	if ((r = cs_store_connect_config(x->a->cfg, &x->store)) == CS_OK) {
		t = log_now_ms(x->store);
		rfc3339(t, x->at);
		r = doc_load(x->store, x->id, &x->doc);
	}
	time_t now = (time_t)(t / 1000);
	if (r == CS_E_NOT_FOUND)
		return refuse(x->a, ev, x->object, "not_found", "no ceremony %s", x->id);
	if (r != CS_OK)
		return refuse_err(x->a, ev, x->object, r, "reading the ceremony");
	if (cs_ceremony_action_parse(x->doc.c.action, &x->action) != CS_OK)
		return refuse(x->a, ev, x->object, "invalid_record", "ceremony %s has an unknown action", x->id);
	if ((r = doc_usable(&x->doc, now, why, sizeof(why))) != CS_OK)
		return refuse(x->a, ev, x->object, err_code(r, code), "%s", why);
	if ((r = doc_canonical_ok(&x->doc, why, sizeof(why))) != CS_OK)
		return refuse(x->a, ev, x->object, r == CS_E_INVALID_ARG ? "invalid_record" : err_code(r, code), "%s",
			      why);
	r = cs_ceremony_quorum(x->officers, &x->doc, now, &x->rep);
	execution_object(x);
	if (r == CS_E_QUORUM) {
		report_verdicts(x, code);
		return refuse(x->a, ev, x->object, code, "ceremony %s has %d valid approval(s) of distinct officers; %s "
			      "needs %d", x->id, x->rep.counted, x->doc.c.action, x->rep.required);
	}
	if (r != CS_OK)
		return refuse(x->a, ev, x->object, r == CS_E_INVALID_ARG ? "invalid_record" : err_code(r, code),
			      "ceremony %s: %s", x->id, x->rep.why[0] != '\0' ? x->rep.why : cs_strerror(r));
	report_verdicts(x, code); /* approvals that do not count, even with the quorum met */
	return 0;
}

static int cmd_execute(admin_ctx *a, const cer_opts *op)
{
	execution x = {.a = a, .op = op, .id = op->words[2]};
	snprintf(x.object, sizeof(x.object), "%s", x.id);
	admin_actor(x.actor);
	int rc = execute_checks(&x);
	if (rc == 0) {
		switch (x.action) {
		case CS_CEREMONY_ACTIVATE: rc = exec_activate(&x); break;
		case CS_CEREMONY_DESTROY: rc = exec_destroy(&x); break;
		case CS_CEREMONY_PURGE: rc = exec_purge(&x); break;
		case CS_CEREMONY_REVOKE: rc = exec_revoke(&x); break;
		default: rc = exec_key_change(&x); break;
		}
	}
	cs_quorum_report_free(&x.rep);
	cs_ceremony_doc_free(&x.doc);
	cs_officers_free(x.officers);
	cs_store_close(x.store);
	return rc;
}

/* ---- ceremony list / show ------------------------------------------------------------- */

static void no_ceremony(void *arg, const cs_ceremony_record *c)
{
	(void)arg;
	(void)c;
}

static void count_approval(void *arg, const cs_approval_record *ap)
{
	(void)ap;
	(*(int *)arg)++;
}

typedef struct {
	json_t *list;
	int failed;
} listing;

static void on_listed(void *arg, const cs_ceremony_record *c)
{
	listing *l = arg;
	json_t *row = json_pack("{s:s, s:s, s:s, s:s?, s:s, s:s, s:s, s:s, s:s?, s:s?}", "id", c->id, "action",
				c->action, "subject", c->subject, "reason", c->reason, "state", c->state,
				"created_at", c->created_at, "expires_at", c->expires_at, "started_by",
				c->started_by, "executed_at", c->executed_at, "executed_by", c->executed_by);
	if (row == NULL || json_array_append_new(l->list, row) != 0)
		l->failed = 1;
}

static int cmd_list(admin_ctx *a, const cer_opts *op)
{
	cs_store *store = NULL;
	json_t *list = json_array();
	listing l = {list, 0};
	cs_err r = list != NULL ? cs_store_connect_config(a->cfg, &store) : CS_E_NOMEM;
	if (r == CS_OK)
		r = cs_store_ceremonies_each(store, on_listed, &l);
	if (r == CS_OK && l.failed)
		r = CS_E_NOMEM;
	time_t now = (time_t)((store != NULL ? log_now_ms(store) : now_ms()) / 1000);
	size_t i;
	json_t *row;
	json_array_foreach(list, i, row)
	{
		int n = 0;
		const char *id = json_string_value(json_object_get(row, "id"));
		cs_ceremony_record c = {.state = json_string_value(json_object_get(row, "state")),
					.expires_at = json_string_value(json_object_get(row, "expires_at"))};
		if (r == CS_OK)
			r = cs_store_ceremony_get(store, id, no_ceremony, count_approval, &n);
		json_object_set_new(row, "approvals", json_integer(n));
		json_object_set_new(row, "state", json_string(doc_state(&c, now)));
	}
	cs_store_close(store);
	if (r != CS_OK) {
		json_decref(list);
		return admin_fail("listing the ceremonies", r);
	}
	if (op->format != NULL && strcmp(op->format, "json") == 0)
		return admin_print_json(json_pack("{s:o}", "ceremonies", list));
	printf("%-30s %-10s %-9s %-9s %-24s %-24s %s\n", "ID", "ACTION", "STATE", "APPROVALS", "CREATED", "EXPIRES",
	       "SUBJECT");
	json_array_foreach(list, i, row)
	{
		const char *subject = json_string_value(json_object_get(row, "subject"));
		printf("%-30s %-10s %-9s %-9lld %-24s %-24s %s\n", json_string_value(json_object_get(row, "id")),
		       json_string_value(json_object_get(row, "action")), json_string_value(json_object_get(row, "state")),
		       (long long)json_integer_value(json_object_get(row, "approvals")),
		       json_string_value(json_object_get(row, "created_at")),
		       json_string_value(json_object_get(row, "expires_at")),
		       subject != NULL && subject[0] != '\0' ? subject : "-");
	}
	json_decref(list);
	return fflush(stdout) == 0 ? 0 : admin_fail("output", CS_E_IO);
}

static json_t *json_or_text(const char *text)
{
	json_t *j = text != NULL ? json_loads(text, 0, NULL) : NULL;
	return j != NULL ? j : text != NULL ? json_string(text) : json_null();
}

static int cmd_show(admin_ctx *a, const cer_opts *op)
{
	const char *id = op->words[2];
	cs_store *store = NULL;
	cs_ceremony_doc doc;
	cs_officers *officers = NULL;
	cs_quorum_report rep = {0};
	char why[WHY_MAX];
	time_t now = (time_t)(now_ms() / 1000);
	memset(&doc, 0, sizeof(doc));
	cs_err r = cs_store_connect_config(a->cfg, &store);
	if (r == CS_OK) {
		now = (time_t)(log_now_ms(store) / 1000);
		r = doc_load(store, id, &doc);
	}
	cs_store_close(store);
	if (r != CS_OK) {
		cs_ceremony_doc_free(&doc);
		if (r == CS_E_NOT_FOUND)
			fprintf(stderr, "credsign-admin: no ceremony %s\n", id);
		return r == CS_E_NOT_FOUND ? 1 : admin_fail("reading the ceremony", r);
	}
	/* the approvals as execution would judge them now (with the officers
	 * configured) */
	int evaluated = officers_load(a, &officers, why, sizeof(why)) == CS_OK;
	cs_err q = evaluated ? cs_ceremony_quorum(officers, &doc, now, &rep) : CS_E_CONFIG;
	json_t *approvals = json_array();
	for (size_t i = 0; i < doc.napprovals; i++) {
		const cs_approval_record *ap = &doc.approvals[i];
		json_t *row = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "officer", ap->officer, "fingerprint",
					ap->fingerprint, "approved_at", ap->approved_at, "approved_by", ap->approved_by,
					"sig_alg", ap->sig_alg, "signature", ap->signature_b64);
		if (row != NULL && evaluated && i < rep.nverdicts) {
			json_object_set_new(row, "counts", json_boolean(rep.verdicts[i].counted));
			if (!rep.verdicts[i].counted)
				json_object_set_new(row, "refusal", json_pack("{s:s, s:s}", "code", rep.verdicts[i].id.code,
									      "why", rep.verdicts[i].id.why));
		}
		json_array_append_new(approvals, row);
	}
	json_t *out = json_pack("{s:s, s:s, s:s, s:s?, s:o, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s?, s:s?, s:o, "
				"s:o, s:o, s:s}",
				"id", doc.c.id, "action", doc.c.action, "subject", doc.c.subject, "reason",
				doc.c.reason, "params", json_or_text(doc.c.params_json), "nonce", doc.c.nonce, "node",
				doc.c.node, "state", doc_state(&doc.c, now), "created_at", doc.c.created_at,
				"expires_at", doc.c.expires_at, "started_by", doc.c.started_by, "canonical",
				doc.c.canonical, "executed_at", doc.c.executed_at, "executed_by", doc.c.executed_by,
				"result", json_or_text(doc.c.result_json), "rollover", json_or_text(doc.rollover_json),
				"approvals", approvals, "quorum",
				!evaluated ? "not evaluated (no ceremony group)"
				: q == CS_OK ? "met"
				: q == CS_E_QUORUM ? "not met"
						   : "record invalid");
	if (out != NULL && evaluated)
		json_object_set_new(out, "required", json_integer(rep.required));
	if (out != NULL && evaluated && q != CS_OK && q != CS_E_QUORUM)
		json_object_set_new(out, "why", json_string(rep.why));
	cs_quorum_report_free(&rep);
	cs_officers_free(officers);
	cs_ceremony_doc_free(&doc);
	return admin_print_json(out);
}

/* ---- transcripts ---------------------------------------------------------------------- */

static int cmd_transcript(admin_ctx *a, const cer_opts *op)
{
	const char *id = op->words[2];
	cs_store *store = NULL;
	cs_ceremony_doc doc;
	cs_officers *officers = NULL;
	cs_ceremony_action action;
	char why[WHY_MAX], *text = NULL;
	int rc = 1;
	memset(&doc, 0, sizeof(doc));
	cs_err r = officers_load(a, &officers, why, sizeof(why));
	if (r != CS_OK) {
		fprintf(stderr, "credsign-admin: ceremony transcript: %s\n", why);
		goto out;
	}
	if ((r = cs_store_connect_config(a->cfg, &store)) == CS_OK)
		r = doc_load(store, id, &doc);
	if (r == CS_OK && cs_ceremony_action_parse(doc.c.action, &action) != CS_OK)
		r = CS_E_INVALID_ARG;
	if (r == CS_OK)
		r = cs_ceremony_transcript(&doc, cs_officers_quorum(officers, action), &text);
	if (r != CS_OK) {
		if (r == CS_E_NOT_FOUND)
			fprintf(stderr, "credsign-admin: no ceremony %s\n", id);
		else
			admin_fail("the transcript", r);
		goto out;
	}
	FILE *f = op->out != NULL ? fopen(op->out, "w") : stdout;
	if (f == NULL || fputs(text, f) == EOF || (f != stdout ? fclose(f) : fflush(f)) != 0) {
		fprintf(stderr, "credsign-admin: writing %s: %s\n", op->out != NULL ? op->out : "the transcript",
			strerror(errno));
		goto out;
	}
	rc = admin_event_at(a, "ceremony.transcript", id, "success", NULL, NULL) == CS_OK ? 0 : 1;
out:
	free(text);
	cs_ceremony_doc_free(&doc);
	cs_officers_free(officers);
	cs_store_close(store);
	return rc;
}

/* A file's whole content (at most `max` bytes), NUL-terminated. */
static char *read_file(const char *path, size_t max, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0;
	if (f == NULL)
		return NULL;
	for (;;) {
		if (n + 4096 + 1 > cap) {
			cap = cap == 0 ? 65536 : cap * 2;
			char *nb = cap <= max + 4096 + 1 ? realloc(buf, cap) : NULL;
			if (nb == NULL) {
				int too_big = cap > max + 4096 + 1;
				free(buf);
				fclose(f);
				errno = too_big ? EFBIG : ENOMEM;
				return NULL;
			}
			buf = nb;
		}
		size_t got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
		if (got == 0)
			break;
	}
	int bad = ferror(f);
	fclose(f);
	if (bad || n > max) {
		free(buf);
		errno = bad ? EIO : EFBIG;
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

#define ROSTER_WARNING "officer roster NOT checked: compare these fingerprints with your list of officers"

static const char *rollover_old_text(cs_rollover_old old)
{
	switch (old) {
	case CS_ROLLOVER_OLD_VERIFIED: return "verified against the JWKS";
	case CS_ROLLOVER_OLD_NO_JWKS: return "present, not checked (give --jwks)";
	case CS_ROLLOVER_OLD_NONE: return "none (no previous key)";
	case CS_ROLLOVER_OLD_COMPROMISED: return "absent, excused: the JWKS shows the old key compromised";
	default: return "not checked";
	}
}

/* The report: each approval by its certificate (subject, fingerprint) and,
 * with a roster, the listed name; only the checks that were made. */
static void print_transcript_report(const cs_transcript_report *rep, const char *roster)
{
	if (rep->listed)
		printf("officers: checked against %s\n", roster);
	else
		printf("%s\n", ROSTER_WARNING);
	for (size_t i = 0; i < rep->nverdicts; i++) {
		const cs_approval_verdict *v = &rep->verdicts[i];
		const char *subject = v->id.subject[0] != '\0' ? v->id.subject : "?";
		const char *fpr = v->id.fingerprint[0] != '\0' ? v->id.fingerprint : "?";
		if (v->counted && rep->listed)
			printf("approval %zu: officer %s (%s, %s): listed; certificate and signature verified\n", i + 1,
			       v->id.name, subject, fpr);
		else if (v->counted)
			printf("approval %zu: certificate %s, %s (recorded as '%s', a name NOT checked): certificate "
			       "and signature verified\n",
			       i + 1, subject, fpr, v->id.name);
		else
			printf("approval %zu: certificate %s, %s: NOT counted: %s (%s)\n", i + 1, subject, fpr, v->id.why,
			       v->id.code);
	}
	int approvals = rep->approvals_checked;
	if (approvals)
		printf("quorum: %d distinct officer(s) verified, %d required\n", rep->counted, rep->required);
	else
		printf("approvals: not checked (the verification stopped before them)\n");
	if (strcmp(rep->action, "activate") != 0)
		return;
	if (!approvals || rep->counted < rep->required)
		printf("rollover statement: not checked (the verification stopped before it)\n");
	else if (rep->rollover_checked)
		printf("rollover statement: new key's signature verified; old key's signature %s\n",
		       rollover_old_text(rep->rollover_old));
	else
		printf("rollover statement: NOT verified (new key's signature %s; old key's signature %s)\n",
		       rep->rollover_new_ok ? "verified" : "not verified",
		       rep->rollover_old == CS_ROLLOVER_OLD_VERIFIED ? "verified against the JWKS" : "not verified");
}

/* The officer CA (--officer-ca, else the configured one) and the roster:
 * --officers, else the configuration's ceremony.officers, else none.
 * roster: what it was, for the report. 0, or 1 after saying why. */
static int transcript_officers(admin_ctx *a, const cer_opts *op, cs_officers **o, char *roster, size_t n)
{
	char w[CS_CEREMONY_WHY_MAX] = "";
	const char *what = "the officer CA";
	cs_err r;
	snprintf(roster, n, "no roster");
	if (op->officer_ca != NULL) {
		r = cs_officers_load_ca(op->officer_ca, NULL, o, w);
		if (r == CS_OK && op->officers == NULL && a->cfg != NULL && a->cfg->ceremony.present) {
			what = "the configuration's officers";
			r = cs_officers_roster_config(*o, a->cfg, w);
		}
	} else {
		r = cs_officers_load(a->cfg, o, w);
	}
	if (r == CS_OK && cs_officers_listed(*o))
		snprintf(roster, n, "the configuration's ceremony.officers (%zu officers)", cs_officers_count(*o));
	if (r == CS_OK && op->officers != NULL) {
		what = "--officers";
		if ((r = cs_officers_roster_file(*o, op->officers, w)) == CS_OK)
			snprintf(roster, n, "the roster %s (%zu officers)", op->officers, cs_officers_count(*o));
	}
	if (r != CS_OK) {
		fprintf(stderr, "credsign-admin: %s: %s\n", what, w[0] != '\0' ? w : cs_strerror(r));
		return 1;
	}
	return 0;
}

static int cmd_verify_transcript(admin_ctx *a, const cer_opts *op)
{
	const char *path = op->words[2];
	cs_officers *officers = NULL;
	cs_transcript_report rep;
	json_t *jwks = NULL;
	char roster[PATH_MAX_SHOWN];
	size_t len = 0;
	int rc = 1;
	memset(&rep, 0, sizeof(rep));
	char *text = read_file(path, TRANSCRIPT_MAX, &len);
	if (text == NULL) {
		fprintf(stderr, "credsign-admin: %s: %s\n", path, strerror(errno));
		goto out;
	}
	if (transcript_officers(a, op, &officers, roster, sizeof(roster)) != 0)
		goto out;
	if (op->jwks != NULL) {
		json_error_t err;
		jwks = json_load_file(op->jwks, 0, &err);
		if (jwks == NULL || !json_is_array(json_object_get(jwks, "keys"))) {
			fprintf(stderr, "credsign-admin: %s is not a JWKS\n", op->jwks);
			goto out;
		}
	}
	if (!cs_officers_listed(officers))
		fprintf(stderr, "credsign-admin: %s (--officers ROSTER, or --config)\n", ROSTER_WARNING);
	cs_err r = cs_ceremony_transcript_verify(text, len, officers, jwks, &rep);
	print_transcript_report(&rep, roster);
	if (r == CS_OK) {
		printf("transcript of ceremony %s (%s) VERIFIED%s\n", rep.id, rep.action,
		       rep.listed ? "" : "; officer roster NOT checked");
		rc = 0;
	} else {
		printf("transcript NOT VERIFIED: %s\n", rep.why[0] != '\0' ? rep.why : cs_strerror(r));
	}
out:
	cs_transcript_report_free(&rep);
	cs_officers_free(officers);
	json_decref(jwks);
	free(text);
	return rc;
}

/* ---- cert revoke, audit purge --------------------------------------------------------- */

static int cmd_cert_revoke(admin_ctx *a, const cer_opts *op)
{
	const char *id = op->words[2], *ev = "cert.revoke";
	if (a->cfg->ceremony.present && a->cfg->ceremony.revoke_quorum > 1) {
		fprintf(stderr, "credsign-admin: ceremony.revoke_quorum is %d: revocation is a ceremony\n",
			a->cfg->ceremony.revoke_quorum);
		start_req q = {.action = CS_CEREMONY_REVOKE, .subject = id, .reason = op->reason};
		return ceremony_start(a, &q);
	}
	char actor[96], at[32];
	cs_ledger *ledger = NULL;
	admin_actor(actor);
	rfc3339(now_ms(), at);
	cs_audit_entry e = audit_entry(a, actor, at, ev, id);
	cs_err r = ledger_open(a, &ledger);
	if (r == CS_OK)
		r = cs_ledger_cert_revoke(ledger, id, op->reason, at, actor, &e);
	cs_ledger_close(ledger);
	if (r == CS_E_NOT_FOUND)
		return refuse(a, ev, id, "not_found", "no certificate %s", id);
	if (r == CS_E_CONFLICT)
		return refuse(a, ev, id, "conflict", "certificate %s is revoked already", id);
	if (r != CS_OK)
		return refuse_err(a, ev, id, r, "revoking the certificate");
	return admin_print_json(json_pack("{s:s, s:s, s:s, s:s}", "cert_id", id, "revoked_at", e.ts, "revoked_by",
					  actor, "reason", op->reason));
}

static int cmd_audit_purge_refused(admin_ctx *a)
{
	int quorum = a->cfg->ceremony.present ? a->cfg->ceremony.quorum : 2;
	fprintf(stderr, "credsign-admin: audit purge is a ceremony: credsign-admin ceremony start --action purge "
			"[--accept-clock-jump], approved by %d officers (ceremony approve), then ceremony execute%s\n",
		quorum < 2 ? 2 : quorum,
		cs_store_target_is_pg(a->cfg) ? " ID --owner-connection CONNINFO [--owner-password-file FILE] (on "
						"PostgreSQL the purge runs as the schema owner)"
					      : "");
	(void)admin_event_at(a, "audit.purge", "-", "refused", "ceremony_required", NULL);
	return 1;
}

/* ---- dispatch ------------------------------------------------------------------------- */

/* Whether the options given belong to the command. */
static int options_fit(const cer_opts *op, const char *noun, const char *verb)
{
	int start = strcmp(noun, "ceremony") == 0 && strcmp(verb, "start") == 0;
	int approve = strcmp(noun, "ceremony") == 0 && strcmp(verb, "approve") == 0;
	int execute = strcmp(noun, "ceremony") == 0 && strcmp(verb, "execute") == 0;
	int list = strcmp(noun, "ceremony") == 0 && strcmp(verb, "list") == 0;
	int transcript = strcmp(noun, "ceremony") == 0 && strcmp(verb, "transcript") == 0;
	int verify = strcmp(noun, "ceremony") == 0 && strcmp(verb, "verify-transcript") == 0;
	int revoke = strcmp(noun, "cert") == 0 && strcmp(verb, "revoke") == 0;
	int purge = strcmp(noun, "audit") == 0 && strcmp(verb, "purge") == 0;
	if ((op->action != NULL || op->key != NULL || op->cert != NULL) && !start)
		return 0;
	if (op->reason != NULL && !start && !revoke)
		return 0;
	if (op->accept_clock_jump && !start && !purge)
		return 0;
	if ((op->officer_cert != NULL || op->officer_key != NULL || op->officer_module != NULL) && !approve)
		return 0;
	if (op->format != NULL && !(list && (strcmp(op->format, "json") == 0 || strcmp(op->format, "text") == 0)))
		return 0;
	if (op->out != NULL && !transcript)
		return 0;
	if ((op->officer_ca != NULL || op->officers != NULL) && !verify)
		return 0;
	if (op->jwks != NULL && !verify && !execute && !purge)
		return 0;
	if ((op->owner_connection != NULL || op->owner_password_file != NULL) && !execute && !purge)
		return 0;
	return 1;
}

/* The command's operands and required options. */
static int command_complete(const cer_opts *op, const char *noun, const char *verb)
{
	int operands = op->nwords - 2; /* the ID or FILE */
	if (strcmp(noun, "audit") == 0)
		return operands == 0;
	if (strcmp(noun, "cert") == 0)
		return strcmp(verb, "revoke") == 0 && operands == 1 && op->reason != NULL;
	if (strcmp(verb, "start") == 0)
		return operands == 0 && op->action != NULL;
	if (strcmp(verb, "list") == 0)
		return operands == 0;
	if (strcmp(verb, "approve") == 0)
		return operands == 1 && op->officer_cert != NULL && op->officer_key != NULL;
	if (strcmp(verb, "execute") == 0 || strcmp(verb, "show") == 0 || strcmp(verb, "transcript") == 0 ||
	    strcmp(verb, "verify-transcript") == 0)
		return operands == 1;
	return 0;
}

int admin_ceremony_command(int argc, char **argv)
{
	const char *words[2] = {NULL, NULL};
	int n = 0;
	for (int i = 1; i < argc && n < 2; i++) {
		if (strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-c") == 0 ||
		    strcmp(argv[i], "--owner-connection") == 0 || strcmp(argv[i], "--owner-password-file") == 0) {
			i++;
			continue;
		}
		if (argv[i][0] == '-')
			continue;
		words[n++] = argv[i];
	}
	if (n < 1)
		return 0;
	if (strcmp(words[0], "ceremony") == 0 || strcmp(words[0], "cert") == 0)
		return 1;
	return n == 2 && strcmp(words[0], "audit") == 0 && strcmp(words[1], "purge") == 0;
}

static int run(admin_ctx *a, const cer_opts *op, const char *noun, const char *verb)
{
	if (strcmp(noun, "audit") == 0)
		return cmd_audit_purge_refused(a);
	if (strcmp(noun, "cert") == 0)
		return cmd_cert_revoke(a, op);
	if (strcmp(verb, "start") == 0)
		return cmd_start(a, op);
	if (strcmp(verb, "approve") == 0)
		return cmd_approve(a, op);
	if (strcmp(verb, "execute") == 0)
		return cmd_execute(a, op);
	if (strcmp(verb, "list") == 0)
		return cmd_list(a, op);
	if (strcmp(verb, "show") == 0)
		return cmd_show(a, op);
	return cmd_transcript(a, op);
}

int admin_ceremony_main(int argc, char **argv)
{
	cer_opts op;
	umask(077); /* the store and its WAL and SHM files, transcripts: private */
	if (parse_args(argc, argv, &op) != 0)
		return 2;
	const char *noun = op.nwords > 0 ? op.words[0] : "", *verb = op.nwords > 1 ? op.words[1] : "";
	if (!options_fit(&op, noun, verb) || !command_complete(&op, noun, verb)) {
		usage(stderr);
		return 2;
	}
	const char *operand = op.nwords > 2 ? op.words[2] : NULL;
	int needs_id = strcmp(noun, "ceremony") == 0 &&
		       (strcmp(verb, "approve") == 0 || strcmp(verb, "execute") == 0 || strcmp(verb, "show") == 0 ||
			strcmp(verb, "transcript") == 0);
	if (needs_id && !cs_ceremony_id_valid(operand)) {
		fprintf(stderr, "credsign-admin: %s is not a ceremony id: cer_ and 26 characters of base32 (a-z, 2-7), "
				"as ceremony list shows them; check it was copied whole\n", operand);
		return 2;
	}
	if (strcmp(noun, "cert") == 0 && op.reason == NULL) {
		fprintf(stderr, "credsign-admin: cert revoke %s: --reason TEXT is required (it is recorded, served in "
				"the revocation list and shown by credsign verify)\n", operand != NULL ? operand : "ID");
		return 2;
	}
	if (strcmp(noun, "cert") == 0 && (!cert_id_valid(operand) || !reason_valid(op.reason))) {
		fprintf(stderr, "credsign-admin: cert revoke ID --reason TEXT: a certificate id, and 1 to %d bytes of "
				"UTF-8 text without control characters\n", REASON_MAX);
		return 2;
	}
	if (op.owner_password_file != NULL && op.owner_connection == NULL) {
		fprintf(stderr, "credsign-admin: --owner-password-file goes with --owner-connection\n");
		return 2;
	}
	if (op.owner_connection != NULL && !admin_owner_connection_ok(op.owner_connection))
		return 2;
	admin_ctx a = {.owner_connection = op.owner_connection, .owner_password_file = op.owner_password_file};
	int rc;
	if (strcmp(verb, "verify-transcript") == 0 && op.officer_ca != NULL && op.config_path == NULL) {
		cs_log_configure(op.level, CS_LOG_LOGFMT, 2); /* offline: no configuration needed */
		rc = cmd_verify_transcript(&a, &op);
	} else if ((rc = admin_load(&a, op.config_path, op.level)) == 0) {
		if (op.owner_connection != NULL && !cs_store_target_is_pg(a.cfg)) {
			fprintf(stderr, "credsign-admin: --owner-connection: the configured store is SQLite (store.path "
					"%s): the options are for a PostgreSQL store's owner\n", a.cfg->store.path);
			rc = 2;
		} else {
			rc = strcmp(verb, "verify-transcript") == 0 ? cmd_verify_transcript(&a, &op)
								     : run(&a, &op, noun, verb);
		}
	}
	admin_close(&a);
	return rc;
}
