/* ceremony: see ceremony.h. */
#include "ceremony.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/x509v3.h>

#include "cs_secret.h"
#include "ec_util.h"
#include "jose.h"
#include "json_text.h"
#include "provider.h"
#include "textbuf.h"
#include "token.h"

#define CEREMONY_TYPE "credsign-ceremony/v1"
#define RECORD_TYPE "credsign-ceremony-record/v1"
#define ROLLOVER_TYPE "credsign-rollover/v1"
#define ROLLOVER_TYP "credsign-rollover+jws"
#define SIG_EC "ecdsa-with-SHA256"
#define SIG_RSA "sha256WithRSAEncryption"
#define RSA_MIN_BITS 2048
#define PEM_MAX 65536 /* an officer certificate */

static void whyf(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void whyf(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
}

/* ---- actions ------------------------------------------------------------ */

static const char *const action_names[] = {
	[CS_CEREMONY_ACTIVATE] = "activate", [CS_CEREMONY_RETIRE] = "retire",
	[CS_CEREMONY_COMPROMISE] = "compromise", [CS_CEREMONY_DESTROY] = "destroy",
	[CS_CEREMONY_PURGE] = "purge",         [CS_CEREMONY_REVOKE] = "revoke",
};
#define ACTIONS (sizeof(action_names) / sizeof(action_names[0]))

cs_err cs_ceremony_action_parse(const char *name, cs_ceremony_action *out)
{
	for (size_t a = CS_CEREMONY_ACTIVATE; name != NULL && a < ACTIONS; a++)
		if (strcmp(name, action_names[a]) == 0) {
			*out = (cs_ceremony_action)a;
			return CS_OK;
		}
	return CS_E_INVALID_ARG;
}

const char *cs_ceremony_action_name(cs_ceremony_action action)
{
	return (size_t)action >= CS_CEREMONY_ACTIVATE && (size_t)action < ACTIONS ? action_names[action]
										       : "unknown";
}

/* ---- ids, nonces, times ------------------------------------------------- */

static const char base32[] = "abcdefghijklmnopqrstuvwxyz234567";

void cs_ceremony_id_from_raw(const uint8_t raw[CS_CEREMONY_ID_RAW], char out[CS_CEREMONY_ID_CHARS + 1])
{
	unsigned acc = 0, bits = 0;
	size_t o = 4;
	memcpy(out, "cer_", 4);
	for (size_t i = 0; i < CS_CEREMONY_ID_RAW; i++) {
		acc = (acc << 8 | raw[i]) & 0xfffu;
		bits += 8;
		while (bits >= 5) {
			out[o++] = base32[(acc >> (bits - 5)) & 31u];
			bits -= 5;
		}
	}
	if (bits > 0)
		out[o++] = base32[(acc << (5 - bits)) & 31u];
	out[o] = '\0';
}

int cs_ceremony_id_valid(const char *id)
{
	if (id == NULL || strlen(id) != CS_CEREMONY_ID_CHARS || strncmp(id, "cer_", 4) != 0)
		return 0;
	for (size_t i = 4; i < CS_CEREMONY_ID_CHARS; i++) {
		const char *p = strchr(base32, id[i]);
		if (id[i] == '\0' || p == NULL)
			return 0;
		/* 128 bits in 26 characters: the last one's two low bits are 0 */
		if (i == CS_CEREMONY_ID_CHARS - 1 && ((p - base32) & 3) != 0)
			return 0;
	}
	return 1;
}

cs_err cs_ceremony_nonce_from_raw(const uint8_t raw[CS_CEREMONY_NONCE_RAW], char out[CS_CEREMONY_NONCE_CHARS + 1])
{
	char *s = cs_b64url_encode(raw, CS_CEREMONY_NONCE_RAW);
	if (s == NULL)
		return CS_E_NOMEM;
	memcpy(out, s, CS_CEREMONY_NONCE_CHARS + 1);
	free(s);
	return CS_OK;
}

static int nonce_valid(const char *nonce)
{
	uint8_t *raw = NULL;
	size_t n = 0;
	int ok = nonce != NULL && strlen(nonce) == CS_CEREMONY_NONCE_CHARS &&
		 cs_b64url_decode(nonce, &raw, &n) == CS_OK && n == CS_CEREMONY_NONCE_RAW;
	free(raw);
	return ok;
}

static int digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

cs_err cs_ceremony_time_parse(const char *s, time_t *out)
{
	/* YYYY-MM-DDTHH:MM:SS, then .f{1,9}, then Z */
	static const char shape[] = "dddd-dd-ddTdd:dd:dd";
	size_t n = s != NULL ? strlen(s) : 0;
	if (n < sizeof(shape) || n > sizeof(shape) + 10)
		return CS_E_INVALID_ARG;
	for (size_t i = 0; i < sizeof(shape) - 1; i++)
		if (shape[i] == 'd' ? !digits(s + i, 1) : s[i] != shape[i])
			return CS_E_INVALID_ARG;
	const char *p = s + sizeof(shape) - 1;
	if (*p == '.') {
		size_t f = strspn(p + 1, "0123456789");
		if (f < 1 || f > 9)
			return CS_E_INVALID_ARG;
		p += 1 + f;
	}
	if (strcmp(p, "Z") != 0)
		return CS_E_INVALID_ARG;
	struct tm tm = {0};
	const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (end == NULL || end != s + sizeof(shape) - 1)
		return CS_E_INVALID_ARG;
	struct tm back = tm;
	time_t t = timegm(&back);
	if (t == (time_t)-1 || back.tm_mday != tm.tm_mday || back.tm_mon != tm.tm_mon || back.tm_hour != tm.tm_hour ||
	    back.tm_min != tm.tm_min || back.tm_sec != tm.tm_sec)
		return CS_E_INVALID_ARG; /* 2025-02-30, 24:00, leap seconds */
	*out = t;
	return CS_OK;
}

/* ---- canonical bytes ---------------------------------------------------- */

/* A JSON string, or NULL when s is not UTF-8 (or NULL). */
static json_t *jstr(const char *s)
{
	return s != NULL ? json_string(s) : NULL;
}

static int set_new(json_t *o, const char *key, json_t *v)
{
	return v != NULL && json_object_set_new(o, key, v) == 0;
}

/* Every control character refused: the fields are rendered line by line. */
static int one_line(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return 0;
	return 1;
}

/* params_json as an object; NULL when it is not one (*invalid set) or
 * memory ran out. Parsed exactly (json_text.h): officers sign these. */
static json_t *params_object(const char *params_json, int *invalid)
{
	int nomem = 0;
	if (params_json == NULL)
		return json_object();
	json_t *p = cs_json_load_exact(params_json, strlen(params_json), JSON_REJECT_DUPLICATES, &nomem);
	if (p == NULL && !nomem)
		*invalid = 1;
	if (p != NULL && !json_is_object(p)) {
		json_decref(p);
		*invalid = 1;
		return NULL;
	}
	return p;
}

/* The signed object of c; NULL with *r: CS_E_INVALID_ARG when a field is
 * malformed, CS_E_NOMEM when memory ran out. */
static json_t *canonical_object(const cs_ceremony_record *c, cs_err *r)
{
	int invalid = 0;
	*r = CS_E_INVALID_ARG;
	cs_ceremony_action a;
	time_t created, expires;
	if (!cs_ceremony_id_valid(c->id) || cs_ceremony_action_parse(c->action, &a) != CS_OK ||
	    !nonce_valid(c->nonce) || c->subject == NULL || c->node == NULL || c->node[0] == '\0' ||
	    c->started_by == NULL || c->started_by[0] == '\0' || cs_ceremony_time_parse(c->created_at, &created) != CS_OK ||
	    cs_ceremony_time_parse(c->expires_at, &expires) != CS_OK || expires <= created ||
	    !one_line(c->subject) || !one_line(c->node) || !one_line(c->started_by) ||
	    (c->reason != NULL && !one_line(c->reason)) || !cs_utf8_valid(c->subject) || !cs_utf8_valid(c->node) ||
	    !cs_utf8_valid(c->started_by) || (c->reason != NULL && !cs_utf8_valid(c->reason)))
		return NULL;
	json_t *o = json_object();
	if (o == NULL || !set_new(o, "type", json_string(CEREMONY_TYPE)) || !set_new(o, "id", jstr(c->id)) ||
	    !set_new(o, "action", jstr(c->action)) || !set_new(o, "subject", jstr(c->subject)) ||
	    !set_new(o, "reason", c->reason != NULL ? jstr(c->reason) : json_null()) ||
	    !set_new(o, "params", params_object(c->params_json, &invalid)) || !set_new(o, "nonce", jstr(c->nonce)) ||
	    !set_new(o, "node", jstr(c->node)) || !set_new(o, "created_at", jstr(c->created_at)) ||
	    !set_new(o, "expires_at", jstr(c->expires_at)) || !set_new(o, "started_by", jstr(c->started_by))) {
		/* the fields were checked above: only params can be malformed */
		*r = invalid ? CS_E_INVALID_ARG : CS_E_NOMEM;
		json_decref(o);
		return NULL;
	}
	*r = CS_OK;
	return o;
}

#define DUMP_FLAGS (JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII)

cs_err cs_ceremony_canonical(const cs_ceremony_record *c, char **out)
{
	*out = NULL;
	cs_err r;
	json_t *o = canonical_object(c, &r);
	if (o == NULL)
		return r;
	*out = cs_json_text(o, DUMP_FLAGS);
	json_decref(o);
	return *out != NULL ? CS_OK : CS_E_NOMEM;
}

/* ---- certificates --------------------------------------------------------- */

/* The one certificate of a PEM text (trailing text refused). */
static X509 *cert_from_pem(const char *pem)
{
	size_t n = pem != NULL ? strlen(pem) : 0;
	if (n == 0 || n > PEM_MAX)
		return NULL;
	BIO *b = BIO_new_mem_buf(pem, (int)n);
	X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	if (x != NULL) {
		/* nothing but blank space after it */
		char rest[64];
		int got;
		while ((got = BIO_read(b, rest, sizeof(rest))) > 0)
			for (int i = 0; i < got; i++)
				if (rest[i] != '\n' && rest[i] != '\r' && rest[i] != ' ' && rest[i] != '\t') {
					X509_free(x);
					x = NULL;
					goto out;
				}
	}
out:
	BIO_free(b);
	ERR_clear_error();
	return x;
}

static char *cert_to_pem(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *pem = NULL, *data;
	long n;
	if (b != NULL && PEM_write_bio_X509(b, x) == 1 && (n = BIO_get_mem_data(b, &data)) > 0 &&
	    (pem = malloc((size_t)n + 1)) != NULL) {
		memcpy(pem, data, (size_t)n);
		pem[n] = '\0';
	}
	BIO_free(b);
	return pem;
}

_Static_assert(CS_CEREMONY_FPR_CHARS + 1 == CS_CONFIG_FPR_SIZE, "officer fingerprints: one format");

static void subject_dn(X509 *x, char out[CS_CEREMONY_DN_MAX])
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data;
	long n;
	out[0] = '\0';
	if (b != NULL && X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0 &&
	    (n = BIO_get_mem_data(b, &data)) >= 0)
		snprintf(out, CS_CEREMONY_DN_MAX, "%.*s", (int)n, data);
	BIO_free(b);
	/* the DN is rendered in a transcript line */
	for (char *p = out; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
}

/* Fingerprint, spki and subject of x into id. */
static void cert_ids(X509 *x, cs_officer_id *id)
{
	cs_config_cert_fingerprint(x, id->fingerprint);
	cs_config_spki_fingerprint(x, id->spki);
	subject_dn(x, id->subject);
}

cs_err cs_officer_cert_ids(const char *cert_pem, cs_officer_id *id)
{
	memset(id, 0, sizeof(*id));
	X509 *x = cert_from_pem(cert_pem);
	if (x == NULL)
		return CS_E_INVALID_ARG;
	cert_ids(x, id);
	X509_free(x);
	return CS_OK;
}

cs_err cs_officer_cert_read(const char *path, char **pem, char why[CS_CEREMONY_WHY_MAX])
{
	*pem = NULL;
	why[0] = '\0';
	BIO *b = BIO_new_file(path, "r");
	if (b == NULL) {
		ERR_clear_error();
		whyf(why, CS_CEREMONY_WHY_MAX, "%s: cannot be read", path);
		return CS_E_CONFIG;
	}
	char buf[PEM_MAX + 1];
	int n = BIO_read(b, buf, sizeof(buf));
	BIO_free(b);
	if (n <= 0 || n > PEM_MAX) {
		whyf(why, CS_CEREMONY_WHY_MAX, "%s: %s", path, n <= 0 ? "empty" : "too large for a certificate");
		return CS_E_INVALID_ARG;
	}
	buf[n] = '\0';
	X509 *x = cert_from_pem(buf);
	if (x == NULL) {
		whyf(why, CS_CEREMONY_WHY_MAX, "%s: not one PEM certificate (and nothing else)", path);
		return CS_E_INVALID_ARG;
	}
	*pem = cert_to_pem(x);
	X509_free(x);
	return *pem != NULL ? CS_OK : CS_E_NOMEM;
}

/* ---- officers -------------------------------------------------------------- */

typedef struct {
	char name[CS_CEREMONY_NAME_MAX];
	char fingerprint[CS_CEREMONY_FPR_CHARS + 1];
} officer;

struct cs_officers {
	X509_STORE *store; /* the officer CA only (and its CRL) */
	X509 *ca;
	X509_CRL *crl; /* NULL: none */
	int quorum, revoke_quorum;
	officer *list;
	size_t n;
	int listed;
	const char *roster; /* where the list is from, for refusals (static) */
};

void cs_officers_free(cs_officers *o)
{
	if (o == NULL)
		return;
	X509_STORE_free(o->store);
	X509_free(o->ca);
	X509_CRL_free(o->crl);
	free(o->list);
	free(o);
}

static cs_err load_ca_crl(cs_officers *o, const char *ca_file, const char *crl_file, char *why)
{
	char *pem = NULL;
	cs_err r = cs_officer_cert_read(ca_file, &pem, why);
	if (r != CS_OK)
		return r == CS_E_NOMEM ? r : CS_E_CONFIG;
	o->ca = cert_from_pem(pem);
	free(pem);
	if (o->ca == NULL)
		return CS_E_NOMEM;
	if (X509_check_ca(o->ca) == 0) {
		whyf(why, CS_CEREMONY_WHY_MAX, "%s: not a CA certificate", ca_file);
		return CS_E_CONFIG;
	}
	if (crl_file != NULL) {
		BIO *b = BIO_new_file(crl_file, "r");
		o->crl = b != NULL ? PEM_read_bio_X509_CRL(b, NULL, NULL, NULL) : NULL;
		BIO_free(b);
		ERR_clear_error();
		if (o->crl == NULL) {
			whyf(why, CS_CEREMONY_WHY_MAX, "%s: not a readable PEM CRL", crl_file);
			return CS_E_CONFIG;
		}
		if (X509_NAME_cmp(X509_CRL_get_issuer(o->crl), X509_get_subject_name(o->ca)) != 0 ||
		    X509_CRL_verify(o->crl, X509_get0_pubkey(o->ca)) != 1) {
			ERR_clear_error();
			whyf(why, CS_CEREMONY_WHY_MAX, "%s: not issued by the officer CA %s", crl_file, ca_file);
			return CS_E_CONFIG;
		}
	}
	if ((o->store = X509_STORE_new()) == NULL || X509_STORE_add_cert(o->store, o->ca) != 1 ||
	    (o->crl != NULL && X509_STORE_add_crl(o->store, o->crl) != 1)) {
		ERR_clear_error();
		return CS_E_CRYPTO;
	}
	return CS_OK;
}

cs_err cs_officers_load_ca(const char *ca_file, const char *crl_file, cs_officers **out, char why[CS_CEREMONY_WHY_MAX])
{
	*out = NULL;
	why[0] = '\0';
	cs_officers *o = calloc(1, sizeof(*o));
	if (o == NULL)
		return CS_E_NOMEM;
	o->quorum = 2;
	o->revoke_quorum = 1;
	cs_err r = load_ca_crl(o, ca_file, crl_file, why);
	if (r != CS_OK) {
		cs_officers_free(o);
		return r;
	}
	*out = o;
	return CS_OK;
}

static cs_err no_group(const cs_config *cfg, char *why)
{
	whyf(why, CS_CEREMONY_WHY_MAX,
	     "%s has no ceremony group: ceremonies need ceremony.officer_ca and ceremony.officers "
	     "(see credsignd.conf.example)",
	     cfg->file_given != NULL ? cfg->file_given : "the configuration");
	return CS_E_CONFIG;
}

cs_err cs_officers_roster_config(cs_officers *o, const cs_config *cfg, char why[CS_CEREMONY_WHY_MAX])
{
	why[0] = '\0';
	if (!cfg->ceremony.present || cfg->ceremony.officer_ca == NULL)
		return no_group(cfg, why);
	officer *list = NULL;
	size_t n = cfg->ceremony.nofficers;
	if (n > 0 && (list = calloc(n, sizeof(officer))) == NULL)
		return CS_E_NOMEM;
	for (size_t i = 0; i < n; i++) {
		const cs_config_officer *c = &cfg->ceremony.officers[i];
		snprintf(list[i].name, sizeof(list[i].name), "%s", c->name != NULL ? c->name : "");
		snprintf(list[i].fingerprint, sizeof(list[i].fingerprint), "%s", c->fingerprint);
	}
	free(o->list);
	o->list = list;
	o->n = n;
	o->listed = 1;
	o->roster = "ceremony.officers";
	o->quorum = cfg->ceremony.quorum < 2 ? 2 : cfg->ceremony.quorum;
	o->revoke_quorum = cfg->ceremony.revoke_quorum < 1 ? 1 : cfg->ceremony.revoke_quorum;
	return CS_OK;
}

cs_err cs_officers_load(const cs_config *cfg, cs_officers **out, char why[CS_CEREMONY_WHY_MAX])
{
	*out = NULL;
	why[0] = '\0';
	if (!cfg->ceremony.present || cfg->ceremony.officer_ca == NULL)
		return no_group(cfg, why);
	cs_err r = cs_officers_load_ca(cfg->ceremony.officer_ca, cfg->ceremony.officer_crl, out, why);
	if (r == CS_OK && (r = cs_officers_roster_config(*out, cfg, why)) != CS_OK) {
		cs_officers_free(*out);
		*out = NULL;
	}
	return r;
}

/* An officer's name as ceremony.officers has them: 1..64 of A-Z a-z 0-9 . _ - */
static int roster_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		      s[i] == '.' || s[i] == '_' || s[i] == '-'))
			return 0;
	return 1;
}

static int roster_fpr_ok(const char *s, size_t n)
{
	return n == CS_CEREMONY_FPR_CHARS && strncmp(s, "SHA256:", 7) == 0 &&
	       strspn(s + 7, "0123456789abcdef") == CS_CEREMONY_FPR_CHARS - 7;
}

/* One roster line (without its line break) into list[*n]: 1 added, 0
 * skipped (blank, comment), -1 malformed (why says so). */
static int roster_line(const char *path, size_t lineno, const char *line, officer *list, size_t *n, char *why)
{
	const char *ws = " \t";
	const char *p = line + strspn(line, ws);
	if (*p == '\0' || *p == '#')
		return 0;
	size_t name_len = strcspn(p, ws);
	const char *f = p + name_len;
	f += strspn(f, ws);
	size_t fpr_len = strcspn(f, ws);
	const char *rest = f + fpr_len;
	rest += strspn(rest, ws);
	if (!roster_name_ok(p, name_len) || !roster_fpr_ok(f, fpr_len) || *rest != '\0') {
		whyf(why, CS_CEREMONY_WHY_MAX,
		     "%s:%zu: not \"NAME SHA256:HEX\" (NAME: 1 to 64 of A-Z a-z 0-9 . _ -; HEX: 64 lowercase hex "
		     "digits)", path, lineno);
		return -1;
	}
	if (*n == CS_CEREMONY_ROSTER_MAX) {
		whyf(why, CS_CEREMONY_WHY_MAX, "%s:%zu: more than %d officers", path, lineno, CS_CEREMONY_ROSTER_MAX);
		return -1;
	}
	officer *o = &list[*n];
	memcpy(o->name, p, name_len);
	o->name[name_len] = '\0';
	memcpy(o->fingerprint, f, fpr_len);
	o->fingerprint[fpr_len] = '\0';
	for (size_t i = 0; i < *n; i++)
		if (strcmp(list[i].name, o->name) == 0 || strcmp(list[i].fingerprint, o->fingerprint) == 0) {
			whyf(why, CS_CEREMONY_WHY_MAX, "%s:%zu: officer %s (%s) repeats the %s of officer %s", path, lineno,
			     o->name, o->fingerprint, strcmp(list[i].name, o->name) == 0 ? "name" : "fingerprint",
			     list[i].name);
			return -1;
		}
	(*n)++;
	return 1;
}

#define ROSTER_FILE_MAX (64 * 1024)

cs_err cs_officers_roster_file(cs_officers *o, const char *path, char why[CS_CEREMONY_WHY_MAX])
{
	why[0] = '\0';
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		whyf(why, CS_CEREMONY_WHY_MAX, "%s: cannot be read", path);
		return CS_E_CONFIG;
	}
	char *buf = malloc(ROSTER_FILE_MAX + 1);
	officer *list = calloc(CS_CEREMONY_ROSTER_MAX, sizeof(officer));
	size_t len = buf != NULL ? fread(buf, 1, ROSTER_FILE_MAX + 1, f) : 0;
	int bad = ferror(f);
	fclose(f);
	cs_err r = CS_E_CONFIG;
	size_t n = 0;
	if (buf == NULL || list == NULL) {
		r = CS_E_NOMEM;
		goto out;
	}
	if (bad || len > ROSTER_FILE_MAX || memchr(buf, '\0', len) != NULL) {
		whyf(why, CS_CEREMONY_WHY_MAX, "%s: %s", path,
		     bad ? "cannot be read" : len > ROSTER_FILE_MAX ? "too large for a roster" : "not a text file");
		goto out;
	}
	buf[len] = '\0';
	size_t lineno = 0;
	for (char *line = buf, *next; line != NULL; line = next) {
		char *nl = strchr(line, '\n');
		next = nl != NULL ? nl + 1 : NULL;
		if (nl != NULL)
			*nl = '\0';
		if (nl != NULL && nl > line && nl[-1] == '\r')
			nl[-1] = '\0';
		lineno++;
		if (next == NULL && *line == '\0')
			break;
		if (roster_line(path, lineno, line, list, &n, why) < 0)
			goto out;
	}
	if (n == 0) {
		whyf(why, CS_CEREMONY_WHY_MAX, "%s: no officers (lines \"NAME SHA256:HEX\")", path);
		goto out;
	}
	free(o->list);
	o->list = list;
	o->n = n;
	o->listed = 1;
	o->roster = "the roster";
	list = NULL;
	r = CS_OK;
out:
	free(list);
	free(buf);
	return r;
}

int cs_officers_quorum(const cs_officers *o, cs_ceremony_action action)
{
	if (action == CS_CEREMONY_REVOKE)
		return o->revoke_quorum < 1 ? 1 : o->revoke_quorum;
	return o->quorum < 2 ? 2 : o->quorum;
}

int cs_officers_listed(const cs_officers *o)
{
	return o->listed;
}

size_t cs_officers_count(const cs_officers *o)
{
	return o->listed ? o->n : 0;
}

static cs_err refuse(cs_officer_id *id, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static cs_err refuse(cs_officer_id *id, const char *code, const char *fmt, ...)
{
	va_list ap;
	snprintf(id->code, sizeof(id->code), "%s", code);
	va_start(ap, fmt);
	vsnprintf(id->why, sizeof(id->why), fmt, ap);
	va_end(ap);
	return CS_E_CEREMONY_REFUSED;
}

static void asn1_time_text(const ASN1_TIME *t, char *buf, size_t len)
{
	struct tm tm;
	if (t != NULL && ASN1_TIME_to_tm(t, &tm) == 1)
		strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
	else
		snprintf(buf, len, "?");
}

/* The chain check's failure as a refusal. */
static cs_err chain_refusal(cs_officer_id *id, X509 *x, int err)
{
	char t[32];
	switch (err) {
	case X509_V_ERR_CERT_HAS_EXPIRED:
		asn1_time_text(X509_get0_notAfter(x), t, sizeof(t));
		return refuse(id, "expired", "officer certificate %s (%s) expired at %s", id->fingerprint, id->subject, t);
	case X509_V_ERR_CERT_NOT_YET_VALID:
		asn1_time_text(X509_get0_notBefore(x), t, sizeof(t));
		return refuse(id, "not_yet_valid", "officer certificate %s (%s) is not valid before %s", id->fingerprint,
			      id->subject, t);
	case X509_V_ERR_CERT_REVOKED:
		return refuse(id, "revoked", "officer certificate %s (%s) is revoked by the officer CRL", id->fingerprint,
			      id->subject);
	case X509_V_ERR_UNABLE_TO_GET_CRL:
	case X509_V_ERR_CRL_HAS_EXPIRED:
	case X509_V_ERR_CRL_NOT_YET_VALID:
	case X509_V_ERR_CRL_SIGNATURE_FAILURE:
		return refuse(id, "crl_unusable", "the officer CRL cannot decide on %s: %s (renew ceremony.officer_crl)",
			      id->fingerprint, X509_verify_cert_error_string(err));
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_CERT_SIGNATURE_FAILURE: {
		char issuer[256];
		X509_NAME_oneline(X509_get_issuer_name(x), issuer, sizeof(issuer));
		return refuse(id, "other_ca", "officer certificate %s (%s) is not issued by the officer CA (its issuer: %s)",
			      id->fingerprint, id->subject, issuer);
	}
	default:
		return refuse(id, "bad_certificate", "officer certificate %s (%s) refused: %s", id->fingerprint, id->subject,
			      X509_verify_cert_error_string(err));
	}
}

static cs_err verify_chain(const cs_officers *o, X509 *x, time_t at, int crl_check, cs_officer_id *id)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	cs_err r = CS_E_CRYPTO;
	if (ctx == NULL || X509_STORE_CTX_init(ctx, o->store, x, NULL) != 1)
		goto out;
	X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_time(param, at);
	/* the officer CA is the anchor whether a root or an intermediate */
	unsigned long flags = X509_V_FLAG_PARTIAL_CHAIN;
	if (crl_check && o->crl != NULL)
		flags |= X509_V_FLAG_CRL_CHECK;
	X509_VERIFY_PARAM_set_flags(param, flags);
	int ok = X509_verify_cert(ctx);
	if (ok == 1)
		r = CS_OK;
	else
		r = chain_refusal(id, x, X509_STORE_CTX_get_error(ctx));
out:
	X509_STORE_CTX_free(ctx);
	ERR_clear_error();
	return r;
}

/* Revoked at or before `at` by the CRL (historic checks). */
static cs_err crl_historic(const cs_officers *o, X509 *x, time_t at, cs_officer_id *id)
{
	X509_REVOKED *rev = NULL;
	if (o->crl == NULL || X509_CRL_get0_by_cert(o->crl, &rev, x) != 1 || rev == NULL)
		return CS_OK;
	const ASN1_TIME *when = X509_REVOKED_get0_revocationDate(rev);
	int cmp = when != NULL ? ASN1_TIME_cmp_time_t(when, at) : -1;
	if (cmp > 0)
		return CS_OK; /* revoked after that time */
	char t[32];
	asn1_time_text(when, t, sizeof(t));
	return refuse(id, "revoked", "officer certificate %s (%s) is revoked by the officer CRL since %s", id->fingerprint,
		      id->subject, t);
}

static cs_err officer_check(const cs_officers *o, const char *cert_pem, time_t at, int historic, cs_officer_id *id)
{
	memset(id, 0, sizeof(*id));
	X509 *x = cert_from_pem(cert_pem);
	if (x == NULL)
		return refuse(id, "bad_certificate", "the officer certificate is not one PEM certificate");
	cert_ids(x, id);
	cs_err r = CS_OK;
	if (X509_cmp(x, o->ca) == 0 || X509_check_ca(x) != 0)
		r = refuse(id, "bad_certificate", "%s (%s) is a CA certificate, not an officer's", id->fingerprint,
			   id->subject);
	if (r == CS_OK)
		r = verify_chain(o, x, at, !historic, id);
	if (r == CS_OK && historic)
		r = crl_historic(o, x, at, id);
	if (r == CS_OK && o->listed) {
		size_t i = 0;
		while (i < o->n && strcmp(o->list[i].fingerprint, id->fingerprint) != 0)
			i++;
		if (i == o->n)
			r = refuse(id, "unknown_officer",
				   "unknown officer: certificate %s (%s) is from the officer CA but not listed in %s",
				   id->fingerprint, id->subject, o->roster);
		else
			snprintf(id->name, sizeof(id->name), "%s", o->list[i].name);
	}
	X509_free(x);
	return r;
}

cs_err cs_officers_check(const cs_officers *o, const char *cert_pem, time_t at, cs_officer_id *id)
{
	return officer_check(o, cert_pem, at, 0, id);
}

cs_err cs_officers_check_historic(const cs_officers *o, const char *cert_pem, time_t at, cs_officer_id *id)
{
	return officer_check(o, cert_pem, at, 1, id);
}

/* ---- approvals ------------------------------------------------------------- */

#define B64_MAX (1u << 20) /* bytes: a transcript record at most */

static char *b64_encode(const uint8_t *data, size_t len)
{
	if (len > B64_MAX)
		return NULL;
	char *out = malloc(4 * ((len + 2) / 3) + 1);
	if (out != NULL)
		EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

/* Standard base64 with padding, in its one canonical form. */
static cs_err b64_decode(const char *text, uint8_t **out, size_t *out_len)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = text != NULL ? strlen(text) : 0;
	*out = NULL;
	*out_len = 0;
	if (n == 0 || n % 4 != 0 || n > 4 * (B64_MAX / 3 + 1))
		return CS_E_INVALID_ARG;
	size_t pad = text[n - 1] == '=' ? (text[n - 2] == '=' ? 2 : 1) : 0;
	for (size_t i = 0; i < n - pad; i++)
		if (text[i] == '\0' || strchr(alphabet, text[i]) == NULL)
			return CS_E_INVALID_ARG;
	uint8_t *buf = malloc(n / 4 * 3 + 1);
	if (buf == NULL)
		return CS_E_NOMEM;
	int got = EVP_DecodeBlock(buf, (const unsigned char *)text, (int)n);
	char *back = got >= (int)pad ? b64_encode(buf, (size_t)got - pad) : NULL;
	int same = back != NULL && strcmp(back, text) == 0;
	free(back);
	if (!same) {
		free(buf);
		return CS_E_INVALID_ARG;
	}
	*out = buf;
	*out_len = (size_t)got - pad;
	return CS_OK;
}

static int curve_allowed(const char *curve)
{
	static const char *const names[] = {"prime256v1", "P-256", "secp256r1", "secp384r1",
					    "P-384",      "secp521r1", "P-521"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(curve, names[i]) == 0)
			return 1;
	return 0;
}

/* The signature algorithm for a key, NULL (with why) for a key refused. */
static const char *key_sig_alg(const EVP_PKEY *pkey, char *why)
{
	if (EVP_PKEY_is_a(pkey, "EC")) {
		char curve[64] = "";
		size_t n = 0;
		if (EVP_PKEY_get_utf8_string_param(pkey, "group", curve, sizeof(curve), &n) != 1 ||
		    !curve_allowed(curve)) {
			ERR_clear_error();
			whyf(why, CS_CEREMONY_WHY_MAX, "officer key on curve '%s': P-256, P-384 or P-521 only", curve);
			return NULL;
		}
		return SIG_EC;
	}
	if (EVP_PKEY_is_a(pkey, "RSA")) {
		if (EVP_PKEY_get_bits(pkey) < RSA_MIN_BITS) {
			whyf(why, CS_CEREMONY_WHY_MAX, "officer key RSA %d bits: at least %d", EVP_PKEY_get_bits(pkey),
			     RSA_MIN_BITS);
			return NULL;
		}
		return SIG_RSA;
	}
	whyf(why, CS_CEREMONY_WHY_MAX, "officer key of type %s: EC or RSA only",
	     EVP_PKEY_get0_type_name(pkey) != NULL ? EVP_PKEY_get0_type_name(pkey) : "?");
	return NULL;
}

cs_err cs_approval_verify(const char *cert_pem, const char *sig_alg, const char *signature_b64,
			  const uint8_t *canonical, size_t len, char why[CS_CEREMONY_WHY_MAX])
{
	why[0] = '\0';
	X509 *x = cert_from_pem(cert_pem);
	uint8_t *sig = NULL;
	size_t sig_len = 0;
	EVP_MD_CTX *md = NULL;
	cs_err r = CS_E_CEREMONY_REFUSED;
	EVP_PKEY *pub = x != NULL ? X509_get0_pubkey(x) : NULL;
	const char *want = pub != NULL ? key_sig_alg(pub, why) : NULL;
	if (x == NULL || pub == NULL) {
		whyf(why, CS_CEREMONY_WHY_MAX, "the officer certificate is not one PEM certificate");
		goto out;
	}
	if (want == NULL)
		goto out;
	if (sig_alg == NULL || strcmp(sig_alg, want) != 0) {
		whyf(why, CS_CEREMONY_WHY_MAX, "signature algorithm '%s' does not fit the officer key (%s)",
		     sig_alg != NULL ? sig_alg : "", want);
		goto out;
	}
	if (b64_decode(signature_b64, &sig, &sig_len) != CS_OK) {
		whyf(why, CS_CEREMONY_WHY_MAX, "the signature is not base64");
		goto out;
	}
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, pub, NULL) != 1) {
		r = CS_E_CRYPTO;
		goto out;
	}
	if (EVP_DigestVerify(md, sig, sig_len, canonical, len) != 1) {
		whyf(why, CS_CEREMONY_WHY_MAX,
		     "the signature is not the officer's over this ceremony's canonical bytes");
		goto out;
	}
	r = CS_OK;
out:
	ERR_clear_error();
	EVP_MD_CTX_free(md);
	free(sig);
	X509_free(x);
	return r;
}

/* An officer key and what it takes to use it. */
typedef struct {
	EVP_PKEY *pkey;
	OSSL_LIB_CTX *libctx; /* pkcs11: a fresh one with our provider */
	OSSL_PROVIDER *prov, *dflt;
	cs_token *token;
} officer_key;

static void officer_key_close(officer_key *k)
{
	EVP_PKEY_free(k->pkey);
	if (k->prov != NULL)
		OSSL_PROVIDER_unload(k->prov);
	if (k->dflt != NULL)
		OSSL_PROVIDER_unload(k->dflt);
	OSSL_LIB_CTX_free(k->libctx);
	cs_token_close(k->token);
	memset(k, 0, sizeof(*k));
}

/* A pkcs11: key on the officer's own token: the token opened for this URI
 * alone, our provider on it in a fresh library context (never the default
 * one: the module calls OpenSSL there). */
static cs_err open_token_key(const cs_officer_key *key, officer_key *k, char *why)
{
	const char *module = key->module != NULL ? key->module : getenv("CREDSIGN_PKCS11_MODULE");
	const char *pin = key->pin_file != NULL ? key->pin_file : getenv("CREDSIGN_OFFICER_PIN_FILE");
	if (module == NULL || module[0] == '\0') {
		whyf(why, CS_CEREMONY_WHY_MAX, "no PKCS#11 module for the officer's token (--officer-module, "
					       "CREDSIGN_PKCS11_MODULE or pkcs11.module)");
		return CS_E_MODULE_LOAD;
	}
	cs_token_params tp = {
		.module = module,
		.token_uri = key->key,
		.pin_file = pin != NULL && pin[0] != '\0' ? pin : NULL,
		.pool_size = 1,
		.read_write = 0,
	};
	cs_err r = cs_token_open(&tp, &k->token);
	if (r != CS_OK) {
		whyf(why, CS_CEREMONY_WHY_MAX, "officer token for %s: %s", key->key, cs_strerror(r));
		return r;
	}
	if ((k->libctx = OSSL_LIB_CTX_new()) == NULL || (k->dflt = OSSL_PROVIDER_load(k->libctx, "default")) == NULL)
		return CS_E_CRYPTO;
	if ((r = cs_provider_load(k->libctx, k->token, &k->prov)) != CS_OK)
		return r;
	if ((k->pkey = cs_provider_load_key(k->libctx, key->key)) == NULL) {
		whyf(why, CS_CEREMONY_WHY_MAX, "officer key %s: not found in the officer's token", key->key);
		return CS_E_KEY_NOT_FOUND;
	}
	return CS_OK;
}

static cs_err open_file_key(const cs_officer_key *key, officer_key *k, char *why)
{
	const char *perm = NULL;
	struct stat st;
	if (stat(key->key, &st) == 0 && cs_secret_check_file(key->key, &perm) != CS_OK) {
		/* like a PIN file: the officer's alone */
		whyf(why, CS_CEREMONY_WHY_MAX, "officer key %s: %s; an officer's key file is the approving "
		     "officer's alone", key->key, perm != NULL ? perm : "not a private file");
		return CS_E_PIN_FILE_PERMS;
	}
	BIO *b = BIO_new_file(key->key, "r");
	if (b == NULL) {
		whyf(why, CS_CEREMONY_WHY_MAX, "officer key %s: cannot be read", key->key);
		return CS_E_KEY_NOT_FOUND;
	}
	k->pkey = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	if (k->pkey == NULL) {
		whyf(why, CS_CEREMONY_WHY_MAX, "officer key %s: not a PEM private key", key->key);
		return CS_E_KEY_NOT_FOUND;
	}
	return CS_OK;
}

cs_err cs_approval_sign(const cs_officer_key *key, const char *cert_pem, const uint8_t *canonical, size_t len,
			cs_approval_sig *out, char why[CS_CEREMONY_WHY_MAX])
{
	officer_key k = {0};
	EVP_MD_CTX *md = NULL;
	uint8_t *sig = NULL;
	size_t sig_len = 0;
	cs_err r;
	memset(out, 0, sizeof(*out));
	why[0] = '\0';
	X509 *x = cert_from_pem(cert_pem);
	if (key == NULL || key->key == NULL || key->key[0] == '\0' || x == NULL) {
		whyf(why, CS_CEREMONY_WHY_MAX, x == NULL ? "the officer certificate is not one PEM certificate"
							 : "no officer key given");
		r = CS_E_INVALID_ARG;
		goto out;
	}
	r = strncmp(key->key, "pkcs11:", 7) == 0 ? open_token_key(key, &k, why) : open_file_key(key, &k, why);
	if (r != CS_OK)
		goto out;
	const char *alg = key_sig_alg(k.pkey, why);
	if (alg == NULL) {
		r = CS_E_CEREMONY_REFUSED;
		goto out;
	}
	r = CS_E_CRYPTO;
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit_ex(md, NULL, "SHA256", k.libctx, k.libctx != NULL ? CS_PROVIDER_SIGN_PROPQ : NULL,
				  k.pkey, NULL) != 1 ||
	    EVP_DigestSign(md, NULL, &sig_len, canonical, len) != 1 || (sig = malloc(sig_len)) == NULL ||
	    EVP_DigestSign(md, sig, &sig_len, canonical, len) != 1) {
		whyf(why, CS_CEREMONY_WHY_MAX, "signing with the officer key failed: %s",
		     ERR_reason_error_string(ERR_peek_last_error()) != NULL
			     ? ERR_reason_error_string(ERR_peek_last_error())
			     : "unknown error");
		goto out;
	}
	if ((out->signature_b64 = b64_encode(sig, sig_len)) == NULL) {
		r = CS_E_NOMEM;
		goto out;
	}
	out->sig_alg = alg;
	/* the key must be the certificate's: its signature verifies with it */
	char vwhy[CS_CEREMONY_WHY_MAX];
	if (cs_approval_verify(cert_pem, alg, out->signature_b64, canonical, len, vwhy) != CS_OK) {
		whyf(why, CS_CEREMONY_WHY_MAX, "the officer key %s is not the key of the officer certificate", key->key);
		r = CS_E_CEREMONY_REFUSED;
		cs_approval_sig_free(out);
		goto out;
	}
	r = CS_OK;
out:
	ERR_clear_error();
	EVP_MD_CTX_free(md);
	free(sig);
	X509_free(x);
	officer_key_close(&k);
	return r;
}

void cs_approval_sig_free(cs_approval_sig *sig)
{
	free(sig->signature_b64);
	sig->signature_b64 = NULL;
	sig->sig_alg = NULL;
}

/* ---- a ceremony as read from the store ----------------------------------- */

static char *dup_opt(const char *s, cs_err *status)
{
	if (s == NULL)
		return NULL;
	char *d = strdup(s);
	if (d == NULL)
		*status = CS_E_NOMEM;
	return d;
}

static void record_free(cs_ceremony_record *c)
{
	const char **f[] = {&c->id,	    &c->action,	   &c->subject,	   &c->reason,	     &c->params_json,
			    &c->nonce,	    &c->node,	   &c->created_at, &c->expires_at,   &c->started_by,
			    &c->canonical,  &c->state,	   &c->executed_at, &c->executed_by, &c->result_json};
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		free((char *)*f[i]);
		*f[i] = NULL;
	}
}

static void approval_free(cs_approval_record *a)
{
	const char **f[] = {&a->ceremony_id, &a->officer,	&a->fingerprint, &a->cert_pem,
			    &a->sig_alg,     &a->signature_b64, &a->approved_at, &a->approved_by};
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		free((char *)*f[i]);
		*f[i] = NULL;
	}
}

void cs_ceremony_doc_on_ceremony(void *arg, const cs_ceremony_record *c)
{
	cs_ceremony_doc *d = arg;
	cs_err *st = &d->status;
	record_free(&d->c);
	d->c = (cs_ceremony_record){
		.id = dup_opt(c->id, st),
		.action = dup_opt(c->action, st),
		.subject = dup_opt(c->subject, st),
		.reason = dup_opt(c->reason, st),
		.params_json = dup_opt(c->params_json, st),
		.nonce = dup_opt(c->nonce, st),
		.node = dup_opt(c->node, st),
		.created_at = dup_opt(c->created_at, st),
		.expires_at = dup_opt(c->expires_at, st),
		.started_by = dup_opt(c->started_by, st),
		.canonical = dup_opt(c->canonical, st),
		.state = dup_opt(c->state, st),
		.executed_at = dup_opt(c->executed_at, st),
		.executed_by = dup_opt(c->executed_by, st),
		.result_json = dup_opt(c->result_json, st),
	};
}

void cs_ceremony_doc_on_approval(void *arg, const cs_approval_record *a)
{
	cs_ceremony_doc *d = arg;
	cs_err *st = &d->status;
	cs_approval_record *grown = realloc(d->approvals, (d->napprovals + 1) * sizeof(*grown));
	if (grown == NULL) {
		*st = CS_E_NOMEM;
		return;
	}
	d->approvals = grown;
	grown[d->napprovals++] = (cs_approval_record){
		.ceremony_id = dup_opt(a->ceremony_id, st),
		.officer = dup_opt(a->officer, st),
		.fingerprint = dup_opt(a->fingerprint, st),
		.cert_pem = dup_opt(a->cert_pem, st),
		.sig_alg = dup_opt(a->sig_alg, st),
		.signature_b64 = dup_opt(a->signature_b64, st),
		.approved_at = dup_opt(a->approved_at, st),
		.approved_by = dup_opt(a->approved_by, st),
	};
}

void cs_ceremony_doc_on_rollover(void *arg, const cs_rollover_record *r)
{
	cs_ceremony_doc *d = arg;
	if (d->c.id == NULL || r->ceremony_id == NULL || strcmp(r->ceremony_id, d->c.id) != 0)
		return;
	free(d->rollover_json);
	d->rollover_json = dup_opt(r->statement_json, &d->status);
}

void cs_ceremony_doc_free(cs_ceremony_doc *d)
{
	record_free(&d->c);
	for (size_t i = 0; i < d->napprovals; i++)
		approval_free(&d->approvals[i]);
	free(d->approvals);
	free(d->rollover_json);
	memset(d, 0, sizeof(*d));
}

/* ---- quorum ---------------------------------------------------------------- */

static int str_eq(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* One approval of ceremony `id` over canonical: checked (live at `at`, or
 * historic at its own approval time), its record matching the
 * certificate, its signature. */
static cs_err approval_check(const cs_officers *o, const char *id, const char *canonical, const cs_approval_record *a,
			     time_t at, int historic, cs_officer_id *v)
{
	cs_err r = historic ? cs_officers_check_historic(o, a->cert_pem, at, v) : cs_officers_check(o, a->cert_pem, at, v);
	if (r != CS_OK)
		return r;
	if (!str_eq(a->ceremony_id, id))
		return refuse(v, "wrong_ceremony", "the approval by %s is recorded for ceremony %s, not %s", v->fingerprint,
			      a->ceremony_id != NULL ? a->ceremony_id : "(none)", id);
	if (!str_eq(a->fingerprint, v->fingerprint))
		return refuse(v, "fingerprint_mismatch", "the approval records fingerprint %s, its certificate is %s",
			      a->fingerprint != NULL ? a->fingerprint : "(none)", v->fingerprint);
	if (v->name[0] != '\0' && !str_eq(a->officer, v->name))
		return refuse(v, "fingerprint_mismatch", "the approval records officer '%s', its certificate is %s's",
			      a->officer != NULL ? a->officer : "", v->name);
	if (v->name[0] == '\0') {
		if (a->officer == NULL || a->officer[0] == '\0' || !one_line(a->officer))
			return refuse(v, "fingerprint_mismatch", "the approval by %s records no officer name", v->fingerprint);
		snprintf(v->name, sizeof(v->name), "%s", a->officer);
	}
	char why[CS_CEREMONY_WHY_MAX];
	if (cs_approval_verify(a->cert_pem, a->sig_alg, a->signature_b64, (const uint8_t *)canonical, strlen(canonical),
			       why) != CS_OK)
		return refuse(v, "bad_signature", "approval by %s (%s): %s", v->name, v->fingerprint, why);
	return CS_OK;
}

/* Count the approvals: each verdict filled; distinct by fingerprint and
 * by name. at_fn: the time to check each approval at. */
static cs_err count_approvals(const cs_officers *o, const cs_ceremony_record *c, const char *canonical,
			      const cs_approval_record *as, size_t n, time_t at, int historic, cs_approval_verdict **out,
			      int *counted)
{
	*out = NULL;
	*counted = 0;
	if (n == 0)
		return CS_OK;
	cs_approval_verdict *v = calloc(n, sizeof(*v));
	if (v == NULL)
		return CS_E_NOMEM;
	time_t created = 0, expires = 0; /* checked with the canonical bytes */
	if (cs_ceremony_time_parse(c->created_at, &created) != CS_OK ||
	    cs_ceremony_time_parse(c->expires_at, &expires) != CS_OK) {
		free(v);
		return CS_E_INVALID_ARG;
	}
	for (size_t i = 0; i < n; i++) {
		const cs_approval_record *a = &as[i];
		time_t when = at;
		if (historic) {
			if (cs_ceremony_time_parse(a->approved_at, &when) != CS_OK) {
				(void)refuse(&v[i].id, "bad_record", "approval %zu: approved_at is not an RFC 3339 time", i + 1);
				continue;
			}
			if (when < created || when > expires) {
				(void)refuse(&v[i].id, "bad_record", "approval %zu at %s: outside the ceremony's %s .. %s",
					     i + 1, a->approved_at, c->created_at, c->expires_at);
				continue;
			}
			if (c->executed_at != NULL && strcmp(a->approved_at, c->executed_at) > 0) {
				(void)refuse(&v[i].id, "bad_record", "approval %zu at %s: after the execution at %s", i + 1,
					     a->approved_at, c->executed_at);
				continue;
			}
		}
		if (approval_check(o, c->id, canonical, a, when, historic, &v[i].id) != CS_OK)
			continue;
		size_t j = 0;
		while (j < i && !(v[j].counted && (strcmp(v[j].id.fingerprint, v[i].id.fingerprint) == 0 ||
						   (v[i].id.spki[0] != '\0' && strcmp(v[j].id.spki, v[i].id.spki) == 0) ||
						   strcmp(v[j].id.name, v[i].id.name) == 0)))
			j++;
		if (j < i) {
			const char *same = strcmp(v[j].id.fingerprint, v[i].id.fingerprint) == 0 ? "certificate"
					   : strcmp(v[j].id.spki, v[i].id.spki) == 0	    ? "public key"
											    : "name";
			(void)refuse(&v[i].id, "duplicate_officer",
				     "officer %s (%s) approved already as %s (%s, the same %s): counted once",
				     v[i].id.name, v[i].id.fingerprint, v[j].id.name, v[j].id.fingerprint, same);
			continue;
		}
		v[i].counted = 1;
		(*counted)++;
	}
	*out = v;
	return CS_OK;
}

cs_err cs_ceremony_quorum(const cs_officers *o, const cs_ceremony_doc *doc, time_t at, cs_quorum_report *rep)
{
	memset(rep, 0, sizeof(*rep));
	const cs_ceremony_record *c = &doc->c;
	cs_ceremony_action action;
	char *canonical = NULL;
	cs_err r = cs_ceremony_action_parse(c->action, &action);
	if (r != CS_OK || (r = cs_ceremony_canonical(c, &canonical)) != CS_OK) {
		whyf(rep->why, sizeof(rep->why), "ceremony %s: a recorded field is malformed", c->id != NULL ? c->id : "?");
		return r == CS_E_NOMEM ? r : CS_E_INVALID_ARG;
	}
	rep->required = cs_officers_quorum(o, action);
	if (!str_eq(canonical, c->canonical)) {
		whyf(rep->why, sizeof(rep->why),
		     "ceremony %s: the recorded canonical bytes are not those of its recorded fields", c->id);
		free(canonical);
		return CS_E_INVALID_ARG;
	}
	r = count_approvals(o, c, canonical, doc->approvals, doc->napprovals, at, 0, &rep->verdicts, &rep->counted);
	free(canonical);
	if (r != CS_OK)
		return r;
	rep->nverdicts = doc->napprovals;
	if (rep->counted < rep->required) {
		whyf(rep->why, sizeof(rep->why), "%s needs %d distinct valid officers, %d approved validly",
		     cs_ceremony_action_name(action), rep->required, rep->counted);
		return CS_E_QUORUM;
	}
	return CS_OK;
}

void cs_quorum_report_free(cs_quorum_report *rep)
{
	free(rep->verdicts);
	memset(rep, 0, sizeof(*rep));
}

/* ---- transcripts: rendering ---------------------------------------------- */

/* A value on a line of its own: printable ASCII as is, "-" for none,
 * anything else (and what could be mistaken for those) as a JSON string. */
static void sb_value(cs_textbuf *b, const json_t *v)
{
	const char *s = json_string_value(v);
	if (v == NULL || json_is_null(v)) {
		cs_textbuf_put(b, "-", 1);
		return;
	}
	if (s != NULL && s[0] != '\0' && s[0] != '"' && strcmp(s, "-") != 0 && s[0] != ' ' &&
	    s[strlen(s) - 1] != ' ') {
		int plain = 1;
		for (const unsigned char *p = (const unsigned char *)s; *p && plain; p++)
			plain = *p >= 0x20 && *p < 0x7f;
		if (plain) {
			cs_textbuf_put(b, s, strlen(s));
			return;
		}
	}
	char *j = cs_json_text(v, DUMP_FLAGS | JSON_ENCODE_ANY);
	if (j == NULL) {
		b->failed = 1;
		return;
	}
	cs_textbuf_put(b, j, strlen(j));
	free(j);
}

static void sb_field(cs_textbuf *b, const char *indent, const char *label, const json_t *v)
{
	cs_textbuf_printf(b, "%s%-14s", indent, label);
	sb_value(b, v);
	cs_textbuf_put(b, "\n", 1);
}

/* A long value wrapped at 64 characters, continuation lines aligned. */
static void sb_wrapped(cs_textbuf *b, const char *indent, const char *label, const char *s)
{
	size_t n = strlen(s);
	cs_textbuf_printf(b, "%s%-14s", indent, label);
	for (size_t i = 0; i < n || i == 0; i += 64) {
		if (i > 0)
			cs_textbuf_printf(b, "%s%-14s", indent, "");
		cs_textbuf_put(b, s + i, n - i < 64 ? n - i : 64);
		cs_textbuf_put(b, "\n", 1);
		if (n == 0)
			break;
	}
}

static void sb_json_block(cs_textbuf *b, const char *indent, const json_t *v)
{
	char *j = cs_json_text(v, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
	if (j == NULL) {
		b->failed = 1;
		return;
	}
	for (char *line = j, *nl; line != NULL && *line; line = nl != NULL ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		size_t len = nl != NULL ? (size_t)(nl - line) : strlen(line);
		cs_textbuf_put(b, indent, strlen(indent));
		cs_textbuf_put(b, line, len);
		cs_textbuf_put(b, "\n", 1);
	}
	free(j);
}

static const json_t *get(const json_t *o, const char *key)
{
	return json_object_get(o, key);
}

static const char *gets(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static void render_approval(cs_textbuf *b, const json_t *a, size_t i, size_t n)
{
	char dn[CS_CEREMONY_DN_MAX] = "(not a certificate)";
	X509 *x = cert_from_pem(gets(a, "certificate"));
	if (x != NULL)
		subject_dn(x, dn);
	X509_free(x);
	json_t *dnv = json_string(dn);
	if (dnv == NULL)
		b->failed = 1;
	cs_textbuf_printf(b, "\nApproval %zu of %zu\n", i + 1, n);
	sb_field(b, "  ", "Officer:", get(a, "officer"));
	sb_field(b, "  ", "Subject DN:", dnv);
	sb_field(b, "  ", "Fingerprint:", get(a, "fingerprint"));
	sb_field(b, "  ", "Approved at:", get(a, "approved_at"));
	sb_field(b, "  ", "Approved by:", get(a, "approved_by"));
	sb_field(b, "  ", "Algorithm:", get(a, "sig_alg"));
	json_decref(dnv);
	const char *sig = gets(a, "signature");
	int plain = sig != NULL && sig[0] != '\0' && strspn(sig, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
							    "0123456789+/=") == strlen(sig);
	if (plain)
		sb_wrapped(b, "  ", "Signature:", sig);
	else
		sb_field(b, "  ", "Signature:", get(a, "signature"));
}

/* A base64url JSON part of the rollover statement, or NULL when it is
 * none (rendered as unreadable); running out of memory fails b instead. */
static json_t *sb_part(cs_textbuf *b, const char *b64)
{
	uint8_t *raw = NULL;
	size_t n = 0;
	int nomem = 0;
	json_t *j = NULL;
	cs_err r = cs_b64url_decode(b64 != NULL ? b64 : "", &raw, &n);
	if (r == CS_OK)
		j = cs_json_load_exact((const char *)raw, n, JSON_REJECT_DUPLICATES, &nomem);
	free(raw);
	if (r == CS_E_NOMEM || nomem)
		b->failed = 1;
	return j;
}

/* The rollover statement: its claims and who signed. */
static void render_rollover(cs_textbuf *b, const json_t *st)
{
	json_t *claims = sb_part(b, gets(st, "payload"));
	cs_textbuf_put(b, "  Rollover statement (claims):\n", 31);
	if (claims != NULL)
		sb_json_block(b, "    ", claims);
	else
		cs_textbuf_put(b, "    (unreadable)\n", 17);
	json_decref(claims);
	size_t i;
	const json_t *s;
	json_array_foreach(get(st, "signatures"), i, s) {
		json_t *hdr = sb_part(b, gets(s, "protected"));
		cs_textbuf_printf(b, "  Rollover signature %zu:\n", i + 1);
		sb_field(b, "    ", "Key:", get(hdr, "kid"));
		sb_field(b, "    ", "Algorithm:", get(hdr, "alg"));
		const char *sig = gets(s, "signature");
		if (sig != NULL && sig[0] != '\0' && strspn(sig, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
								 "0123456789-_") == strlen(sig))
			sb_wrapped(b, "    ", "Signature:", sig);
		else
			sb_field(b, "    ", "Signature:", get(s, "signature"));
		json_decref(hdr);
	}
}

/* The readable part of a transcript, from its record. */
static cs_err render(const json_t *rec, char **out)
{
	cs_textbuf b = {0};
	const json_t *c = get(rec, "ceremony"), *as = get(rec, "approvals");
	*out = NULL;
	if (!json_is_object(c) || !json_is_array(as) || !json_is_integer(get(rec, "quorum")))
		return CS_E_INVALID_ARG;
	json_t *params = NULL, *quorum = NULL;
	char *pj = cs_json_text(get(c, "params"), DUMP_FLAGS | JSON_ENCODE_ANY);
	params = pj != NULL ? json_string(pj) : get(c, "params") == NULL ? json_string("") : NULL;
	free(pj);
	char q[64];
	snprintf(q, sizeof(q), "%lld distinct officers", (long long)json_integer_value(get(rec, "quorum")));
	quorum = json_string(q);
	/* a field left blank would still render: out of memory instead */
	if (params == NULL || quorum == NULL)
		b.failed = 1;
	cs_textbuf_put(&b, "credsign ceremony transcript\n\n", 30);
	sb_field(&b, "", "Ceremony:", get(c, "id"));
	sb_field(&b, "", "Action:", get(c, "action"));
	sb_field(&b, "", "Subject:", get(c, "subject"));
	sb_field(&b, "", "Reason:", get(c, "reason"));
	sb_field(&b, "", "Parameters:", params);
	sb_field(&b, "", "Node:", get(c, "node"));
	sb_field(&b, "", "Nonce:", get(c, "nonce"));
	sb_field(&b, "", "Started at:", get(c, "created_at"));
	sb_field(&b, "", "Started by:", get(c, "started_by"));
	sb_field(&b, "", "Expires at:", get(c, "expires_at"));
	sb_field(&b, "", "State:", get(c, "state"));
	sb_field(&b, "", "Quorum:", quorum);
	sb_field(&b, "", "Signed bytes:", get(c, "canonical"));
	json_decref(params);
	json_decref(quorum);
	size_t i;
	const json_t *a;
	json_array_foreach(as, i, a) render_approval(&b, a, i, json_array_size(as));
	if (json_array_size(as) == 0)
		cs_textbuf_put(&b, "\nNo approvals\n", 14);
	if (json_is_string(get(c, "executed_at"))) {
		cs_textbuf_put(&b, "\nExecution\n", 11);
		sb_field(&b, "  ", "Executed at:", get(c, "executed_at"));
		sb_field(&b, "  ", "Executed by:", get(c, "executed_by"));
		cs_textbuf_put(&b, "  Result:\n", 10);
		sb_json_block(&b, "    ", get(c, "result") != NULL ? get(c, "result") : json_null());
		if (json_is_object(get(rec, "rollover")))
			render_rollover(&b, get(rec, "rollover"));
	} else {
		cs_textbuf_put(&b, "\nNot executed\n", 14);
	}
	if (b.failed) {
		free(b.p);
		return CS_E_NOMEM;
	}
	*out = b.p;
	return CS_OK;
}

/* ---- transcripts: the record --------------------------------------------- */

static json_t *json_opt_str(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

/* Stored JSON text as JSON (a text that does not parse stays a string);
 * NULL when memory runs out (never the text as a string then). */
static json_t *json_text(const char *s)
{
	int nomem = 0;
	if (s == NULL)
		return json_null();
	json_t *v = cs_json_load_exact(s, strlen(s), JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &nomem);
	return v != NULL ? v : nomem ? NULL : json_string(s);
}

/* The armored record; NULL when params_json is not an object (*invalid
 * set) or memory ran out. */
static json_t *record_json(const cs_ceremony_doc *d, int quorum, int *invalid)
{
	const cs_ceremony_record *c = &d->c;
	json_t *rec = json_object(), *cj = json_object(), *as = json_array();
	int ok = rec != NULL && cj != NULL && as != NULL;
	json_t *params = params_object(c->params_json, invalid);
	if (!ok || params == NULL) {
		json_decref(params);
		ok = 0;
	} else {
		ok = set_new(cj, "params", params); /* which takes params, also when it fails */
	}
	ok = ok && set_new(cj, "id", jstr(c->id)) && set_new(cj, "action", jstr(c->action)) &&
	     set_new(cj, "subject", jstr(c->subject)) && set_new(cj, "reason", json_opt_str(c->reason)) &&
	     set_new(cj, "nonce", jstr(c->nonce)) && set_new(cj, "node", jstr(c->node)) &&
	     set_new(cj, "created_at", jstr(c->created_at)) && set_new(cj, "expires_at", jstr(c->expires_at)) &&
	     set_new(cj, "started_by", jstr(c->started_by)) && set_new(cj, "canonical", jstr(c->canonical)) &&
	     set_new(cj, "state", jstr(c->state)) && set_new(cj, "executed_at", json_opt_str(c->executed_at)) &&
	     set_new(cj, "executed_by", json_opt_str(c->executed_by)) && set_new(cj, "result", json_text(c->result_json));
	for (size_t i = 0; ok && i < d->napprovals; i++) {
		const cs_approval_record *a = &d->approvals[i];
		json_t *aj = json_object();
		ok = aj != NULL && set_new(aj, "ceremony_id", jstr(a->ceremony_id)) &&
		     set_new(aj, "officer", jstr(a->officer)) && set_new(aj, "fingerprint", jstr(a->fingerprint)) &&
		     set_new(aj, "certificate", jstr(a->cert_pem)) && set_new(aj, "sig_alg", jstr(a->sig_alg)) &&
		     set_new(aj, "signature", jstr(a->signature_b64)) && set_new(aj, "approved_at", jstr(a->approved_at)) &&
		     set_new(aj, "approved_by", jstr(a->approved_by));
		if (!ok || json_array_append_new(as, aj) != 0) {
			json_decref(aj);
			ok = 0;
		}
	}
	ok = ok && set_new(rec, "type", json_string(RECORD_TYPE)) && set_new(rec, "quorum", json_integer(quorum)) &&
	     set_new(rec, "rollover", json_text(d->rollover_json));
	if (ok && json_object_set(rec, "ceremony", cj) == 0 && json_object_set(rec, "approvals", as) == 0) {
		json_decref(cj);
		json_decref(as);
		return rec;
	}
	json_decref(cj);
	json_decref(as);
	json_decref(rec);
	return NULL;
}

cs_err cs_ceremony_transcript(const cs_ceremony_doc *doc, int quorum, char **out)
{
	*out = NULL;
	if (doc->c.id == NULL || doc->c.canonical == NULL || doc->status != CS_OK)
		return CS_E_INVALID_ARG;
	int invalid = 0;
	json_t *rec = record_json(doc, quorum, &invalid);
	if (rec == NULL)
		return invalid ? CS_E_INVALID_ARG : CS_E_NOMEM;
	char *text = NULL, *js = cs_json_text(rec, DUMP_FLAGS);
	cs_err r = js != NULL ? render(rec, &text) : CS_E_NOMEM;
	json_decref(rec);
	char *b64 = r == CS_OK ? b64_encode((const uint8_t *)js, strlen(js)) : NULL;
	if (r == CS_OK && b64 == NULL)
		r = strlen(js) > B64_MAX ? CS_E_TOO_LARGE : CS_E_NOMEM;
	if (r == CS_OK) {
		cs_textbuf b = {0};
		cs_textbuf_put(&b, text, strlen(text));
		cs_textbuf_printf(&b, "\n%s\n", CS_TRANSCRIPT_BEGIN);
		for (size_t i = 0, n = strlen(b64); i < n; i += 64) {
			cs_textbuf_put(&b, b64 + i, n - i < 64 ? n - i : 64);
			cs_textbuf_put(&b, "\n", 1);
		}
		cs_textbuf_printf(&b, "%s\n", CS_TRANSCRIPT_END);
		if (b.failed) {
			free(b.p);
			r = CS_E_NOMEM;
		} else {
			*out = b.p;
		}
	}
	free(b64);
	free(js);
	free(text);
	return r;
}

/* ---- transcripts: verification -------------------------------------------- */

static cs_err fail(cs_transcript_report *rep, cs_err r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static cs_err fail(cs_transcript_report *rep, cs_err r, const char *fmt, ...)
{
	va_list ap;
	if (rep->why[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(rep->why, sizeof(rep->why), fmt, ap);
		va_end(ap);
	}
	return r;
}

/* Split a transcript into its readable part and its decoded record. */
static cs_err split(const char *text, size_t len, size_t *readable, json_t **rec, cs_transcript_report *rep)
{
	static const char begin[] = "\n" CS_TRANSCRIPT_BEGIN "\n", end[] = CS_TRANSCRIPT_END "\n";
	*rec = NULL;
	if (memchr(text, '\0', len) != NULL)
		return fail(rep, CS_E_INVALID_ARG, "the transcript holds a NUL byte");
	const char *at = NULL;
	for (const char *p = text; (p = memmem(p, len - (size_t)(p - text), begin, sizeof(begin) - 1)) != NULL; p++)
		at = p;
	if (at == NULL)
		return fail(rep, CS_E_INVALID_ARG, "no %s block", CS_TRANSCRIPT_BEGIN);
	*readable = (size_t)(at - text);
	const char *b = at + sizeof(begin) - 1, *stop = text + len;
	size_t tail = sizeof(end) - 1;
	/* the block, its END line, and at most one more line break */
	if (stop > b && stop[-1] == '\n' && (size_t)(stop - b) > tail && stop[-2] == '\n')
		stop--;
	if ((size_t)(stop - b) < tail || memcmp(stop - tail, end, tail) != 0)
		return fail(rep, CS_E_INVALID_ARG, "the record block does not end with %s", CS_TRANSCRIPT_END);
	size_t blen = (size_t)(stop - tail - b);
	char *joined = malloc(blen + 1);
	if (joined == NULL)
		return fail(rep, CS_E_NOMEM, "out of memory reading the record block");
	size_t j = 0;
	for (size_t i = 0; i < blen; i++) {
		/* lines of 64 characters, the last one shorter */
		size_t line_start = i;
		const char *nl = memchr(b + i, '\n', blen - i);
		size_t line = nl != NULL ? (size_t)(nl - (b + i)) : blen - i;
		int last = nl == NULL || (size_t)(nl - b) + 1 == blen;
		if (nl == NULL || line == 0 || line > 64 || (!last && line != 64)) {
			free(joined);
			return fail(rep, CS_E_INVALID_ARG, "the record block is not base64 in lines of 64");
		}
		memcpy(joined + j, b + line_start, line);
		j += line;
		i += line;
	}
	joined[j] = '\0';
	uint8_t *raw = NULL;
	size_t n = 0;
	cs_err r = b64_decode(joined, &raw, &n);
	free(joined);
	if (r != CS_OK)
		return fail(rep, r == CS_E_NOMEM ? r : CS_E_INVALID_ARG, "the record block is not base64");
	int nomem = 0;
	*rec = cs_json_load_exact((const char *)raw, n, JSON_REJECT_DUPLICATES, &nomem);
	free(raw);
	if (nomem)
		return fail(rep, CS_E_NOMEM, "out of memory reading the record block");
	if (!json_is_object(*rec) || !str_eq(gets(*rec, "type"), RECORD_TYPE)) {
		json_decref(*rec);
		*rec = NULL;
		return fail(rep, CS_E_INVALID_ARG, "the record block is not a %s record", RECORD_TYPE);
	}
	return CS_OK;
}

/* The first line where the readable part differs from the re-rendered one. */
static cs_err readable_matches(const char *text, size_t len, const char *rendered, cs_transcript_report *rep)
{
	size_t n = strlen(rendered);
	if (n == len && memcmp(text, rendered, n) == 0)
		return CS_OK;
	size_t i = 0, line = 1, start = 0;
	while (i < len && i < n && text[i] == rendered[i]) {
		if (text[i] == '\n') {
			line++;
			start = i + 1;
		}
		i++;
	}
	size_t end = start;
	while (end < len && text[end] != '\n')
		end++;
	return fail(rep, CS_E_SIGNATURE_INVALID,
		    "line %zu of the readable record is not what the signed record says: \"%.*s\"", line,
		    (int)(end - start > 120 ? 120 : end - start), text + start);
}

static const json_t *jwks_key(const json_t *jwks, const char *kid)
{
	size_t i;
	const json_t *k;
	json_array_foreach(json_object_get(jwks, "keys"), i, k) if (str_eq(gets(k, "kid"), kid)) return k;
	return NULL;
}

/* One rollover signature (general JSON serialization) verified with pub. */
static int rollover_sig_ok(const char *protected_b64, const char *payload_b64, const char *sig_b64, EVP_PKEY *pub)
{
	size_t n = strlen(protected_b64) + strlen(payload_b64) + strlen(sig_b64) + 3;
	char *jws = malloc(n);
	json_t *h = NULL, *p = NULL;
	if (jws == NULL)
		return 0;
	snprintf(jws, n, "%s.%s.%s", protected_b64, payload_b64, sig_b64);
	int ok = cs_jws_es256_verify(jws, pub, &h, &p) == CS_OK && str_eq(gets(h, "typ"), ROLLOVER_TYP);
	json_decref(h);
	json_decref(p);
	free(jws);
	return ok;
}

/* The rollover statement of an executed activate. */
static cs_err verify_rollover(const json_t *st, const char *id, const char *subject, const json_t *jwks,
			      const cs_approval_verdict *v, const json_t *approvals, cs_transcript_report *rep)
{
	const char *payload = gets(st, "payload");
	const json_t *sigs = get(st, "signatures");
	uint8_t *raw = NULL;
	size_t n = 0;
	json_t *claims = NULL;
	EVP_PKEY *new_key = NULL, *old_key = NULL;
	cs_err r = CS_E_SIGNATURE_INVALID;
	if (payload != NULL && cs_b64url_decode(payload, &raw, &n) == CS_OK)
		claims = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, NULL);
	free(raw);
	const char *new_kid = gets(claims, "new_kid");
	const json_t *old = get(claims, "old_kid");
	const char *old_kid = json_string_value(old);
	if (!json_is_object(claims) || !str_eq(gets(claims, "type"), ROLLOVER_TYPE) || !json_is_array(sigs) ||
	    (old == NULL || (!json_is_null(old) && old_kid == NULL))) {
		r = fail(rep, r, "the rollover statement is not a %s statement", ROLLOVER_TYPE);
		goto out;
	}
	if (!str_eq(gets(claims, "ceremony_id"), id) || !str_eq(new_kid, subject)) {
		r = fail(rep, r, "the rollover statement is for ceremony %s and key %s, not %s and %s",
			 gets(claims, "ceremony_id") != NULL ? gets(claims, "ceremony_id") : "?", new_kid != NULL ? new_kid : "?",
			 id, subject);
		goto out;
	}
	if ((new_key = new_kid != NULL ? cs_jwk_to_pkey(get(claims, "new_jwk"), new_kid) : NULL) == NULL) {
		r = fail(rep, r, "the rollover statement's new_jwk is not the P-256 key %s", new_kid);
		goto out;
	}
	/* every approval it names is one counted in the record */
	size_t i, k;
	const json_t *a, *s;
	json_array_foreach(get(claims, "approvals"), i, a) {
		int found = 0;
		for (k = 0; k < json_array_size(approvals) && !found; k++)
			found = v[k].counted && str_eq(gets(a, "fingerprint"), v[k].id.fingerprint) &&
				str_eq(gets(a, "officer"), v[k].id.name);
		if (!found) {
			r = fail(rep, r, "the rollover statement names approval %zu, not a valid one of the record", i + 1);
			goto out;
		}
	}
	int old_seen = 0;
	json_array_foreach(sigs, i, s) {
		const char *prot = gets(s, "protected"), *sig = gets(s, "signature");
		json_t *hdr = NULL;
		raw = NULL;
		if (prot != NULL && cs_b64url_decode(prot, &raw, &n) == CS_OK)
			hdr = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, NULL);
		free(raw);
		char kid_text[64];
		const char *kid = gets(hdr, "kid");
		snprintf(kid_text, sizeof(kid_text), "%s", kid != NULL && one_line(kid) ? kid : "?");
		int ok = prot != NULL && sig != NULL && kid != NULL;
		if (ok && str_eq(kid, new_kid)) {
			ok = rollover_sig_ok(prot, payload, sig, new_key);
			rep->rollover_new_ok |= ok;
		} else if (ok && str_eq(kid, old_kid)) {
			old_seen = 1;
			if (jwks != NULL) {
				old_key = old_kid != NULL ? cs_jwk_to_pkey(jwks_key(jwks, old_kid), old_kid) : NULL;
				ok = old_key != NULL && rollover_sig_ok(prot, payload, sig, old_key);
				EVP_PKEY_free(old_key);
				old_key = NULL;
				rep->rollover_old = ok ? CS_ROLLOVER_OLD_VERIFIED : CS_ROLLOVER_OLD_UNCHECKED;
			} else {
				rep->rollover_old = CS_ROLLOVER_OLD_NO_JWKS;
			}
		} else {
			ok = 0;
		}
		json_decref(hdr); /* kid freed with it */
		if (!ok) {
			r = fail(rep, r, "rollover signature %zu (key %s) does not verify", i + 1, kid_text);
			goto out;
		}
	}
	if (!rep->rollover_new_ok) {
		r = fail(rep, r, "the rollover statement is not signed by the new key %s", new_kid);
		goto out;
	}
	if (old_kid != NULL && !old_seen) {
		/* an old key that was compromised does not sign its successor */
		const json_t *ok_old = jwks != NULL ? jwks_key(jwks, old_kid) : NULL;
		if (!str_eq(gets(ok_old, "status"), "compromised")) {
			r = fail(rep, r, "the rollover statement lacks the old key %s's signature%s", old_kid,
				 jwks == NULL ? " (a JWKS showing the old key compromised would excuse it)" : "");
			goto out;
		}
		rep->rollover_old = CS_ROLLOVER_OLD_COMPROMISED;
	} else if (old_kid == NULL) {
		rep->rollover_old = CS_ROLLOVER_OLD_NONE;
	}
	rep->rollover_checked = 1;
	r = CS_OK;
out:
	EVP_PKEY_free(new_key);
	json_decref(claims);
	return r;
}

/* The ceremony fields of a record as a cs_ceremony_record (pointers into
 * the JSON; *params malloc'd). */
static int record_fields(const json_t *c, cs_ceremony_record *out, char **params)
{
	*params = cs_json_text(get(c, "params"), DUMP_FLAGS | JSON_ENCODE_ANY);
	*out = (cs_ceremony_record){
		.id = gets(c, "id"),
		.action = gets(c, "action"),
		.subject = gets(c, "subject"),
		.reason = gets(c, "reason"),
		.params_json = *params,
		.nonce = gets(c, "nonce"),
		.node = gets(c, "node"),
		.created_at = gets(c, "created_at"),
		.expires_at = gets(c, "expires_at"),
		.started_by = gets(c, "started_by"),
		.canonical = gets(c, "canonical"),
		.state = gets(c, "state"),
		.executed_at = gets(c, "executed_at"),
		.executed_by = gets(c, "executed_by"),
	};
	return *params != NULL && json_is_object(get(c, "params")) &&
	       (json_is_null(get(c, "reason")) || out->reason != NULL);
}

static cs_err record_approvals(const json_t *as, cs_approval_record **out)
{
	size_t n = json_array_size(as), i;
	const json_t *a;
	*out = NULL;
	if (n == 0)
		return CS_OK;
	if ((*out = calloc(n, sizeof(cs_approval_record))) == NULL)
		return CS_E_NOMEM;
	json_array_foreach(as, i, a) {
		(*out)[i] = (cs_approval_record){
			.ceremony_id = gets(a, "ceremony_id"),
			.officer = gets(a, "officer"),
			.fingerprint = gets(a, "fingerprint"),
			.cert_pem = gets(a, "certificate"),
			.sig_alg = gets(a, "sig_alg"),
			.signature_b64 = gets(a, "signature"),
			.approved_at = gets(a, "approved_at"),
			.approved_by = gets(a, "approved_by"),
		};
	}
	return CS_OK;
}

/* The checks on a decoded record whose readable part matched. */
static cs_err verify_record(const json_t *rec, const cs_officers *o, const json_t *jwks, cs_transcript_report *rep)
{
	const json_t *c = get(rec, "ceremony"), *as = get(rec, "approvals");
	cs_ceremony_record cr;
	cs_approval_record *ars = NULL;
	char *params = NULL, *canonical = NULL;
	cs_ceremony_action action;
	time_t created = 0, expires = 0, executed = 0;
	cs_err r;
	if (!record_fields(c, &cr, &params) || cs_ceremony_action_parse(cr.action, &action) != CS_OK ||
	    cs_ceremony_canonical(&cr, &canonical) != CS_OK) {
		r = fail(rep, CS_E_INVALID_ARG, "the record's ceremony fields are malformed");
		goto out;
	}
	snprintf(rep->id, sizeof(rep->id), "%s", cr.id);
	snprintf(rep->action, sizeof(rep->action), "%s", cr.action);
	if (!str_eq(canonical, cr.canonical)) {
		r = fail(rep, CS_E_SIGNATURE_INVALID,
			 "the recorded signed bytes are not the canonical bytes of the recorded ceremony");
		goto out;
	}
	if (cs_ceremony_time_parse(cr.created_at, &created) != CS_OK ||
	    cs_ceremony_time_parse(cr.expires_at, &expires) != CS_OK || !str_eq(cr.state, "executed") || cr.executed_by == NULL ||
	    cs_ceremony_time_parse(cr.executed_at, &executed) != CS_OK) {
		r = fail(rep, CS_E_SIGNATURE_INVALID, "ceremony %s was not executed", cr.id);
		goto out;
	}
	if (executed < created || executed > expires) {
		r = fail(rep, CS_E_SIGNATURE_INVALID, "executed at %s, outside the ceremony's %s .. %s", cr.executed_at,
			 cr.created_at, cr.expires_at);
		goto out;
	}
	json_int_t recorded = json_integer_value(get(rec, "quorum"));
	rep->required = cs_officers_quorum(o, action);
	if (recorded > rep->required && recorded <= 1000)
		rep->required = (int)recorded;
	if ((r = record_approvals(as, &ars)) != CS_OK ||
	    (r = count_approvals(o, &cr, canonical, ars, json_array_size(as), 0, 1, &rep->verdicts, &rep->counted)) !=
		    CS_OK)
		goto out;
	rep->nverdicts = json_array_size(as);
	rep->approvals_checked = 1;
	for (size_t i = 0; i < rep->nverdicts; i++)
		if (!rep->verdicts[i].counted && strcmp(rep->verdicts[i].id.code, "duplicate_officer") != 0) {
			r = fail(rep, CS_E_SIGNATURE_INVALID, "approval %zu: %s", i + 1, rep->verdicts[i].id.why);
			goto out;
		}
	if (rep->counted < rep->required) {
		r = fail(rep, CS_E_QUORUM, "%s needs %d distinct officers; the record has %d", cr.action, rep->required,
			 rep->counted);
		goto out;
	}
	r = CS_OK;
	if (action == CS_CEREMONY_ACTIVATE) {
		if (!json_is_object(get(rec, "rollover")))
			r = fail(rep, CS_E_SIGNATURE_INVALID, "the activation carries no rollover statement");
		else
			r = verify_rollover(get(rec, "rollover"), cr.id, cr.subject, jwks, rep->verdicts, as, rep);
	}
out:
	free(ars);
	free(params);
	free(canonical);
	return r;
}

cs_err cs_ceremony_transcript_verify(const char *text, size_t len, const cs_officers *o, const json_t *jwks,
				     cs_transcript_report *rep)
{
	memset(rep, 0, sizeof(*rep));
	rep->listed = cs_officers_listed(o);
	size_t readable = 0;
	json_t *rec = NULL;
	char *rendered = NULL;
	if (text == NULL || len == 0 || len > 4 * B64_MAX)
		return fail(rep, CS_E_INVALID_ARG, "the transcript is empty or too large");
	cs_err r = split(text, len, &readable, &rec, rep);
	if (r == CS_OK && (r = render(rec, &rendered)) != CS_OK)
		r = fail(rep, r == CS_E_NOMEM ? r : CS_E_INVALID_ARG, "the record block is not a complete record");
	if (r == CS_OK)
		r = readable_matches(text, readable, rendered, rep);
	if (r == CS_OK)
		r = verify_record(rec, o, jwks, rep);
	free(rendered);
	json_decref(rec);
	/* every refusal says why, also one no check wrote (out of memory) */
	if (r != CS_OK && rep->why[0] == '\0')
		r = fail(rep, r, "%s", cs_strerror(r));
	return r;
}

void cs_transcript_report_free(cs_transcript_report *rep)
{
	free(rep->verdicts);
	memset(rep, 0, sizeof(*rep));
}
