/*
 * credsign-admin: local administration of a credsign appliance.
 *
 *   credsign-admin [--config FILE] token info
 *   credsign-admin [--config FILE] key generate --label LABEL [--id HEX] [--profile NAME]
 *   credsign-admin [--config FILE] key jwk [--key PKCS11-URI]
 *   credsign-admin [--config FILE] key csr [--key PKCS11-URI] --subject DN
 *                  [--san DNS:name,IP:addr,URI:uri] [--out FILE]
 *
 * key generate records the new key pending: a certificate-signing key, or
 * with --profile the key of that signing profile (a name in the
 * configuration's signing.profiles; the key signs for that profile only,
 * for good). A ceremony activates it (credsign-admin ceremony).
 * key csr writes a PKCS#10 request for a token key, signed in the token
 * through the credsign provider, so an organisation's CA can certify it.
 *
 *   credsign-admin [--config FILE] key list [--format text|json]
 *
 * key list shows every signing key the store ever recorded, oldest first:
 * kid, PKCS#11 URI, state (active, retired, ...), its signing profile (or
 * that it signs certificates), when it was recorded and,
 * as the audit log still holds them, when it was last activated and
 * retired; from the store alone (no token). A retired or compromised key
 * never becomes active again (ledger.h).
 *
 *   credsign-admin [--config FILE] audit verify [--from-seq N | --file EXPORT] [--jwks FILE]
 *                  [--checkpoint FILE]
 *   credsign-admin [--config FILE] audit export [--since SEQ|RFC3339] [--format jsonl]
 *   credsign-admin [--config FILE] audit purge [--jwks FILE] [--accept-clock-jump]
 *   credsign-admin [--config FILE] store init|migrate ... (admin_store.c)
 *
 * audit verify recomputes the hash chain and checks every checkpoint's
 * signature (against --jwks, else the store's key table) and reports the
 * first bad sequence number, then how many entries signed checkpoints
 * authenticate; exit 0 only when intact with at least one entry
 * authenticated, 3 when intact but nothing is authenticated (no signed
 * checkpoint ends in the chain walked). With --file it verifies an export
 * (whole or partial) instead of the store, with --jwks and without any
 * configuration (an auditor off the appliance); --checkpoint pins it to a
 * checkpoint kept outside the appliance (it must be reached and agree).
 * audit export writes entries and the checkpoints that authenticate them
 * as JSON lines, the format of GET /api/audit (cs_audit_export). audit
 * purge removes entries older than audit.retention_days, measured against
 * the newest signed checkpoint's time (not the local clock alone), behind
 * a signed purge checkpoint; it refuses when the signed times leap forward
 * by more than half the retention between two checkpoints over the entries
 * kept (a clock set forward), unless --accept-clock-jump. Key events,
 * exports, purges, a local clock found far ahead and clock jumps refused
 * or accepted are audited as local:<unix user>. On a PostgreSQL store the
 * purge (admin_audit_purge, run by a purge ceremony's execution) reads and
 * purges as the schema owner (a->owner_connection, --owner-connection):
 * the nodes' role may neither record a purge checkpoint nor call
 * audit_purge; without the owner it refuses before anything is signed.
 *
 * The configuration comes from --config or $CREDSIGN_CONF (audit verify
 * --file reads none, and ignores them). Output is JSON on
 * stdout; errors go to stderr and the exit status is 1 (2 for usage). A
 * token error names the PKCS#11 call that caused it ("C_Login:
 * CKR_PIN_INCORRECT"); -v/--verbose logs at debug level, every failing
 * PKCS#11 call included. --version prints the version.
 */
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <time.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/store.h>
#include <openssl/x509v3.h>

#include "admin.h"
#include "config.h"
#include "cs_log.h"
#include "jose.h"
#include "audit.h"
#include "audit_verify.h"
#include "certsign.h"
#include "provider.h"
#include "store.h"
#include "store_target.h"
#include "token.h"
#include "token_meter.h"

void admin_actor(char actor[96])
{
	struct passwd *pw = getpwuid(getuid());
	snprintf(actor, 96, "local:%s", pw != NULL ? pw->pw_name : "unknown");
}

/* An administrative event, attributed to the local unix user, at time ts
 * (NULL: now; the ledger raises a time earlier than the newest entry's to
 * it). */
cs_err admin_event_at(admin_ctx *a, const char *action, const char *object, const char *outcome,
		      const char *error_code, const char *ts)
{
	cs_ledger *ledger = NULL;
	char actor[96], now[32];
	admin_actor(actor);
	cs_audit_now(now);
	cs_audit_entry e = {.ts = ts != NULL ? ts : now, .node = a->cfg->server.node_id, .actor = actor,
			    .role = "admin", .action = action, .object = object, .outcome = outcome,
			    .error_code = error_code};
	cs_err r = cs_ledger_connect_config(a->cfg, &ledger);
	if (r == CS_OK)
		r = cs_ledger_audit_append(ledger, &e);
	cs_ledger_close(ledger);
	if (r != CS_OK)
		fprintf(stderr, "credsign-admin: the audit log could not record %s: %s\n", action, cs_strerror(r));
	return r;
}

static cs_err admin_event(admin_ctx *a, const char *action, const char *object, const char *outcome)
{
	return admin_event_at(a, action, object, outcome, NULL, NULL);
}

/* A failure, with the PKCS#11 call that caused it when there was one
 * ("...: token PIN rejected (CS_E_PIN_INCORRECT): C_Login: CKR_PIN_INCORRECT"). */
int admin_fail(const char *what, cs_err r)
{
	char call[128];
	cs_token_meter_cause(r, call, sizeof(call));
	fprintf(stderr, "credsign-admin: %s: %s (%s)%s%s\n", what, cs_strerror(r), cs_err_name(r),
		call[0] != '\0' ? ": " : "", call);
	return 1;
}

int admin_print_json(json_t *j)
{
	if (j == NULL)
		return admin_fail("output", CS_E_NOMEM);
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	json_decref(j);
	return 0;
}

int admin_open_token(admin_ctx *a, int read_write)
{
	cs_token_params p = {
		.module = a->cfg->pkcs11.module,
		.token_uri = a->cfg->pkcs11.token_uri,
		.pin_file = a->cfg->pkcs11.pin_file,
		.pool_size = 1,
		.read_write = read_write,
		.init_args = a->cfg->pkcs11.init_args,
	};
	cs_token_meter_clear();
	cs_err r = cs_token_open(&p, &a->token);
	if (r == CS_OK)
		return 0;
	/* what the token reported: the PIN's state, the tokens the URI matches */
	char said[512];
	switch (cs_token_meter_pin_state(r, said, sizeof(said))) {
	case CS_PIN_STATE_NOT_INITIALIZED:
		fprintf(stderr, "credsign-admin: the token's user PIN is not initialized (%s)\n", said);
		break;
	case CS_PIN_STATE_EXPIRED:
		fprintf(stderr, "credsign-admin: the token's user PIN has expired or must be changed (%s)\n", said);
		break;
	case CS_PIN_STATE_LOCKED:
		fprintf(stderr, "credsign-admin: the token's user PIN is locked (%s)\n", said);
		break;
	case CS_PIN_STATE_FINAL_TRY:
		fprintf(stderr, "credsign-admin: one more wrong PIN locks the token's user PIN (%s)\n", said);
		break;
	case CS_PIN_STATE_UNKNOWN:
		break;
	}
	if (r == CS_E_TOKEN_AMBIGUOUS &&
	    cs_token_meter_matching_tokens(p.token_uri, said, sizeof(said))[0] != '\0')
		fprintf(stderr, "credsign-admin: tokens matching %s: serials %s; add serial=SERIAL to pkcs11.token_uri\n",
			p.token_uri, said);
	return admin_fail("opening the token", r);
}

/* The mechanisms credsign uses, as the token reports them; each problem
 * also on stderr (credsignd needs CKM_ECDSA, key generate also
 * CKM_EC_KEY_PAIR_GEN). */
static cs_err token_mechanisms_json(admin_ctx *a, json_t **out, int *lacks_sign)
{
	cs_token_mechanism m[CS_TOKEN_MECHANISMS];
	cs_err r = cs_token_mechanisms(a->token, m);
	*out = NULL;
	*lacks_sign = 0;
	if (r != CS_OK)
		return r;
	json_t *list = json_array();
	for (size_t i = 0; list != NULL && i < CS_TOKEN_MECHANISMS; i++) {
		const char *needed_by = m[i].needs & CS_TOKEN_NEEDS_SIGN ? "credsignd (signing)" : "key generate";
		json_t *j = json_pack("{s:s, s:s, s:b, s:b, s:b, s:b, s:b, s:I, s:I, s:s?}", "name", m[i].name,
				      "needed_by", needed_by, "listed", m[i].listed, "sign",
				      (m[i].flags & CKF_SIGN) != 0, "verify", (m[i].flags & CKF_VERIFY) != 0,
				      "generate_key_pair", (m[i].flags & CKF_GENERATE_KEY_PAIR) != 0,
				      "usable", m[i].problem[0] == '\0', "min_key_size",
				      (json_int_t)m[i].min_key_size, "max_key_size", (json_int_t)m[i].max_key_size,
				      "problem", m[i].problem[0] != '\0' ? m[i].problem : NULL);
		if (j == NULL || json_array_append_new(list, j) != 0) {
			json_decref(list);
			return CS_E_NOMEM;
		}
		if (m[i].problem[0] != '\0') {
			fprintf(stderr, "credsign-admin: %s%s\n", m[i].problem,
				m[i].needs & CS_TOKEN_NEEDS_SIGN ? ": credsignd cannot sign with this token"
								  : ": key generate cannot make keys in it");
			*lacks_sign |= (m[i].needs & CS_TOKEN_NEEDS_SIGN) != 0;
		}
	}
	if (list == NULL)
		return CS_E_NOMEM;
	*out = list;
	return CS_OK;
}

static int cmd_token_info(admin_ctx *a)
{
	cs_token_info info;
	cs_err r = cs_token_get_info(a->token, &info);
	if (r != CS_OK)
		return admin_fail("token info", r);
	char fw[16], hw[16], mod[16], ck[16];
	snprintf(fw, sizeof(fw), "%u.%u", info.fw_major, info.fw_minor);
	snprintf(hw, sizeof(hw), "%u.%u", info.hw_major, info.hw_minor);
	snprintf(mod, sizeof(mod), "%u.%u", info.module_major, info.module_minor);
	snprintf(ck, sizeof(ck), "%u.%u", info.cryptoki_major, info.cryptoki_minor);
	json_t *flags = json_pack(
		"{s:b, s:b, s:b, s:b, s:b, s:b}", "rng", (info.flags & CKF_RNG) != 0,
		"write_protected", (info.flags & CKF_WRITE_PROTECTED) != 0, "login_required",
		(info.flags & CKF_LOGIN_REQUIRED) != 0, "user_pin_initialized",
		(info.flags & CKF_USER_PIN_INITIALIZED) != 0, "token_initialized",
		(info.flags & CKF_TOKEN_INITIALIZED) != 0, "protected_authentication_path",
		(info.flags & CKF_PROTECTED_AUTHENTICATION_PATH) != 0);
	json_t *mechs = NULL;
	int lacks_sign = 0;
	if ((r = token_mechanisms_json(a, &mechs, &lacks_sign)) != CS_OK) {
		json_decref(flags);
		return admin_fail("token mechanisms", r);
	}
	int rc = admin_print_json(json_pack(
		"{s:{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:o}, s:{s:s, s:s, s:s, s:s}, s:o}", "token",
		"label", info.label, "manufacturer", info.manufacturer, "model", info.model,
		"serial", info.serial, "hardware_version", hw, "firmware_version", fw, "slot_id",
		(json_int_t)info.slot_id, "flags", flags, "module", "description",
		info.module_description, "manufacturer", info.module_manufacturer, "version", mod,
		"cryptoki_version", ck, "mechanisms", mechs));
	return rc != 0 ? rc : lacks_sign; /* credsignd cannot run on this token */
}

static int print_key(admin_ctx *a, const cs_key_ref *ref)
{
	EVP_PKEY *pkey = NULL;
	json_t *jwk = NULL;
	cs_err r = cs_token_public_key(a->token, ref, &pkey);
	if (r != CS_OK)
		return admin_fail("reading the public key", r);
	r = cs_jwk_from_pkey(pkey, &jwk);
	EVP_PKEY_free(pkey);
	if (r != CS_OK)
		return admin_fail("building the JWK", r);
	return admin_print_json(jwk);
}

static int cmd_key_jwk(admin_ctx *a, const char *uri)
{
	cs_key_ref query, found;
	cs_err r = cs_key_ref_from_uri(uri, &query);
	if (r != CS_OK)
		return admin_fail("key URI", r);
	if ((r = cs_token_find_key(a->token, &query, &found)) != CS_OK) {
		char what[1100];
		snprintf(what, sizeof(what), "finding the key %s", uri);
		return admin_fail(what, r);
	}
	return print_key(a, &found);
}

/* --id HEX: the key's CKA_ID (1..CS_KEY_ID_MAX bytes; "0a0b" or "0a:0b") */
static int parse_key_id(const char *hex, uint8_t id[CS_KEY_ID_MAX], size_t *id_len)
{
	long n = 0;
	unsigned char *buf = OPENSSL_hexstr2buf(hex, &n);
	int ok = buf != NULL && n >= 1 && n <= CS_KEY_ID_MAX;
	if (ok) {
		memcpy(id, buf, (size_t)n);
		*id_len = (size_t)n;
	}
	OPENSSL_free(buf);
	return ok;
}

/* RFC 7512 percent-encoding of an attribute value: unreserved characters
 * as they are, every other byte %XX (all of them when hex_all). */
static int uri_pct(char *out, size_t cap, size_t *len, const uint8_t *v, size_t n, int hex_all)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n; i++) {
		uint8_t ch = v[i];
		int plain = !hex_all && ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
					 (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~');
		if (*len + 4 > cap)
			return 0;
		if (plain) {
			out[(*len)++] = (char)ch;
		} else {
			out[(*len)++] = '%';
			out[(*len)++] = hex[ch >> 4];
			out[(*len)++] = hex[ch & 15];
		}
	}
	out[*len] = '\0';
	return 1;
}

/* The key's URI: the configured token's path attributes (no query: the PIN
 * source stays in the configuration) with object= and id=. */
static cs_err key_uri_for(const admin_ctx *a, const cs_key_ref *ref, char *out, size_t cap)
{
	const char *token = a->cfg->pkcs11.token_uri;
	size_t path_len = strcspn(token, "?"), len = 0;
	if (path_len + 2 > cap)
		return CS_E_BUFFER_TOO_SMALL;
	memcpy(out, token, path_len);
	len = path_len;
	out[len] = '\0';
	int ok = 1;
	if (len > strlen("pkcs11:"))
		out[len++] = ';';
	ok = len + 8 < cap;
	if (ok) {
		memcpy(out + len, "object=", 7);
		len += 7;
		ok = uri_pct(out, cap, &len, (const uint8_t *)ref->label, strlen(ref->label), 0);
	}
	if (ok && len + 5 < cap) {
		memcpy(out + len, ";id=", 4);
		len += 4;
		ok = uri_pct(out, cap, &len, ref->id, ref->id_len, 1);
	} else {
		ok = 0;
	}
	return ok ? CS_OK : CS_E_BUFFER_TOO_SMALL;
}

/* key generate: the key pair in the token, then on record as pending (a
 * ceremony activates it). The output is the public JWK with the record's
 * label, CKA_ID, URI and state. */
static int cmd_key_generate(admin_ctx *a, const char *label, const char *id_hex, const char *profile)
{
	cs_key_ref ref;
	uint8_t id[CS_KEY_ID_MAX];
	size_t id_len = 0;
	char why[160];
	if (id_hex != NULL && !parse_key_id(id_hex, id, &id_len)) {
		fprintf(stderr, "credsign-admin: --id takes 1 to %d bytes in hex (e.g. 0a0b)\n", CS_KEY_ID_MAX);
		return 2;
	}
	if (label[0] == '\0' || strlen(label) > CS_KEY_LABEL_MAX) {
		fprintf(stderr, "credsign-admin: --label takes 1 to %d bytes (this one has %zu)\n", CS_KEY_LABEL_MAX,
			strlen(label));
		return 2;
	}
	/* the key must be generated and then sign: name what the token lacks */
	cs_err r = cs_token_check_mechanisms(a->token, CS_TOKEN_NEEDS_GENERATE | CS_TOKEN_NEEDS_SIGN, why,
					     sizeof(why));
	if (r == CS_E_MECHANISM) {
		fprintf(stderr, "credsign-admin: generating the key: %s\n", why);
		return 1;
	}
	if (r != CS_OK)
		return admin_fail("reading the token's mechanisms", r);
	r = cs_token_generate_p256_id(a->token, label, id_hex != NULL ? id : NULL, id_len, &ref);
	if (r != CS_OK) {
		(void)admin_event_at(a, "key.generate", label, "failure", cs_err_name(r), NULL);
		return admin_fail("generating the key", r);
	}
	EVP_PKEY *pkey = NULL;
	json_t *jwk = NULL;
	char *jwk_text = NULL, uri[1400], cka_id[2 * CS_KEY_ID_MAX + 1], actor[96];
	if ((r = cs_token_public_key(a->token, &ref, &pkey)) != CS_OK ||
	    (r = cs_jwk_from_pkey(pkey, &jwk)) != CS_OK || (r = key_uri_for(a, &ref, uri, sizeof(uri))) != CS_OK ||
	    (jwk_text = json_dumps(jwk, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
		EVP_PKEY_free(pkey);
		json_decref(jwk);
		fprintf(stderr, "credsign-admin: the key %s was generated in the token but could not be described; "
				"it is not on record\n", ref.label);
		return admin_fail("describing the key", r != CS_OK ? r : CS_E_NOMEM);
	}
	EVP_PKEY_free(pkey);
	for (size_t i = 0; i < ref.id_len; i++)
		snprintf(cka_id + 2 * i, 3, "%02x", ref.id[i]);
	cka_id[2 * ref.id_len] = '\0';
	admin_actor(actor);
	const char *kid = json_string_value(json_object_get(jwk, "kid"));
	cs_key_info key = {.kid = kid, .uri = uri, .status = "pending", .jwk_json = jwk_text,
			   .label = ref.label, .cka_id = cka_id, .created_by = actor, .profile = profile};
	char now[32];
	cs_audit_now(now);
	cs_audit_entry e = {.ts = now, .node = a->cfg->server.node_id, .actor = actor, .role = "admin",
			    .action = "key.generate", .object = kid, .outcome = "success"};
	cs_ledger *ledger = NULL;
	if ((r = cs_ledger_connect_config(a->cfg, &ledger)) == CS_OK)
		r = cs_ledger_key_add_pending(ledger, &key, &e);
	cs_ledger_close(ledger);
	free(jwk_text);
	if (r != CS_OK) {
		json_decref(jwk);
		fprintf(stderr, "credsign-admin: the key %s (kid %s) was generated in the token but is not on "
				"record; it cannot be activated until it is\n", ref.label, kid);
		return admin_fail("recording the key", r);
	}
	json_object_set_new(jwk, "label", json_string(ref.label));
	json_object_set_new(jwk, "cka_id", json_string(cka_id));
	json_object_set_new(jwk, "uri", json_string(uri));
	json_object_set_new(jwk, "state", json_string("pending"));
	json_object_set_new(jwk, "profile", profile != NULL ? json_string(profile) : json_null());
	return admin_print_json(jwk);
}

static int cmd_key_csr(admin_ctx *a, const char *uri, const char *subject, const char *san,
		       const char *out_path)
{
	OSSL_LIB_CTX *libctx = OSSL_LIB_CTX_new();
	OSSL_PROVIDER *prov = NULL, *deflt = NULL;
	EVP_PKEY *key = NULL;
	X509_REQ *req = NULL;
	X509_NAME *name = NULL;
	EVP_MD_CTX *md = NULL;
	BIO *out = NULL;
	int rc = 1;
	if (libctx == NULL || cs_provider_load(libctx, a->token, &prov) != CS_OK ||
	    (deflt = OSSL_PROVIDER_load(libctx, "default")) == NULL) {
		admin_fail("loading the provider", CS_E_CRYPTO);
		goto out;
	}
	if ((key = cs_provider_load_key(libctx, uri)) == NULL) {
		admin_fail("loading the key", CS_E_KEY_NOT_FOUND);
		goto out;
	}
	if ((name = X509_NAME_new()) == NULL) {
		admin_fail("subject", CS_E_NOMEM);
		goto out;
	}
	/* "/K=V/K=V" */
	char dn[512];
	snprintf(dn, sizeof(dn), "%s", subject);
	for (char *save = NULL, *part = strtok_r(dn, "/", &save); part != NULL;
	     part = strtok_r(NULL, "/", &save)) {
		char *eq = strchr(part, '=');
		if (eq == NULL || !X509_NAME_add_entry_by_txt(name, (*eq = '\0', part), MBSTRING_UTF8,
							      (unsigned char *)eq + 1, -1, -1, 0)) {
			fprintf(stderr, "credsign-admin: bad subject '%s' (use /CN=name/O=org)\n", subject);
			goto out;
		}
	}
	req = X509_REQ_new_ex(libctx, NULL);
	if (req == NULL || !X509_REQ_set_version(req, 0) || !X509_REQ_set_subject_name(req, name) ||
	    !X509_REQ_set_pubkey(req, key)) {
		admin_fail("building the request", CS_E_CRYPTO);
		goto out;
	}
	if (san != NULL) {
		STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
		X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
		int ok = exts != NULL && ext != NULL && sk_X509_EXTENSION_push(exts, ext) &&
			 X509_REQ_add_extensions(req, exts);
		if (!ok)
			X509_EXTENSION_free(ext);
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
		if (!ok) {
			fprintf(stderr, "credsign-admin: bad --san '%s'\n", san);
			goto out;
		}
	}
	/* signed in the token, through the provider */
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit_ex(md, NULL, "SHA256", libctx, NULL, key, NULL) != 1 ||
	    X509_REQ_sign_ctx(req, md) <= 0) {
		admin_fail("signing the request in the token", CS_E_TOKEN_FAILED);
		goto out;
	}
	out = out_path != NULL ? BIO_new_file(out_path, "w") : BIO_new_fp(stdout, BIO_NOCLOSE);
	if (out == NULL || !PEM_write_bio_X509_REQ(out, req)) {
		admin_fail("writing the request", CS_E_IO);
		goto out;
	}
	rc = admin_event(a, "key.csr", uri, "success") == CS_OK ? 0 : 1;
out:
	BIO_free(out);
	EVP_MD_CTX_free(md);
	X509_REQ_free(req);
	X509_NAME_free(name);
	EVP_PKEY_free(key);
	OSSL_PROVIDER_unload(deflt);
	OSSL_PROVIDER_unload(prov);
	OSSL_LIB_CTX_free(libctx);
	return rc;
}

/* ---- audit ------------------------------------------------------------------ */

static json_t *load_jwks(admin_ctx *a, const char *path, cs_store *store);

/* The certificate keys only: checkpoints are signed with the key in force
 * for certificates; a signing profile's key never vouches for the log. */
static void add_key(void *arg, const cs_key_info *key)
{
	if (key->profile != NULL)
		return;
	json_t *k = json_loads(key->jwk_json, 0, NULL);
	if (k != NULL)
		json_array_append_new(arg, k);
}

static json_t *load_jwks(admin_ctx *a, const char *path, cs_store *store)
{
	(void)a;
	if (path != NULL) {
		json_error_t err;
		json_t *j = json_load_file(path, 0, &err);
		if (j == NULL || !json_is_array(json_object_get(j, "keys"))) {
			fprintf(stderr, "credsign-admin: %s is not a JWKS\n", path);
			json_decref(j);
			return NULL;
		}
		return j;
	}
	json_t *keys = json_array();
	if (cs_store_keys_info(store, add_key, keys) != CS_OK) {
		json_decref(keys);
		return NULL;
	}
	fprintf(stderr, "credsign-admin: checking signatures against the store's own key table; "
			"pass --jwks with an independently kept JWKS for the strong check\n");
	return json_pack("{s:o}", "keys", keys);
}

/* ---- key list ----------------------------------------------------------------- */

typedef struct {
	json_t *keys;
	int failed;
} key_listing;

/* One event of a key's life: {"at", "by", "ceremony"}, or NULL when it did
 * not happen. */
static json_t *key_event(const char *at, const char *by, const char *ceremony)
{
	if (at == NULL)
		return NULL;
	return json_pack("{s:s, s:s?, s:s?}", "at", at, "by", by, "ceremony", ceremony);
}

static void collect_key(void *arg, const cs_key_info *k)
{
	key_listing *l = arg;
	json_t *o = json_pack("{s:s, s:s?, s:s?, s:s, s:s, s:s?, s:{s:s, s:s?}, s:o?, s:o?, s:o?, s:o?, s:b}", "kid",
			      k->kid, "label", k->label, "cka_id", k->cka_id, "uri", k->uri, "state", k->status,
			      "profile", k->profile, "created",
			      "at", k->created_at, "by", k->created_by, "activated",
			      key_event(k->activated_at, k->activated_by, k->activated_ceremony), "retired",
			      key_event(k->retired_at, k->retired_by, k->retired_ceremony), "compromised",
			      key_event(k->compromised_at, k->compromised_by, k->compromised_ceremony), "destroyed",
			      key_event(k->destroyed_at, k->destroyed_by, k->destroyed_ceremony), "x5c_registered",
			      k->x5c_json != NULL);
	if (o == NULL || json_array_append_new(l->keys, o) != 0)
		l->failed = 1;
}

static void print_key_event(const json_t *k, const char *name)
{
	const json_t *ev = json_object_get(k, name);
	if (!json_is_object(ev)) /* null: it did not happen */
		return;
	const char *by = json_string_value(json_object_get(ev, "by"));
	const char *ceremony = json_string_value(json_object_get(ev, "ceremony"));
	printf("  %-12s %s", name, json_string_value(json_object_get(ev, "at")));
	if (by != NULL)
		printf(" by %s", by);
	if (ceremony != NULL)
		printf(" (ceremony %s)", ceremony);
	putchar('\n');
}

static int cmd_key_list(admin_ctx *a, int as_json)
{
	cs_store *store = NULL;
	key_listing l = {json_array(), 0};
	cs_err r = l.keys == NULL ? CS_E_NOMEM : cs_store_connect_config(a->cfg, &store);
	if (r == CS_OK && (r = cs_store_read_begin(store)) == CS_OK) {
		r = cs_store_keys_info(store, collect_key, &l);
		cs_store_read_end(store);
	}
	cs_store_close(store);
	if (r == CS_OK && l.failed)
		r = CS_E_NOMEM;
	if (r != CS_OK) {
		json_decref(l.keys);
		return admin_fail("listing the signing keys", r);
	}
	if (as_json)
		return admin_print_json(json_pack("{s:o}", "keys", l.keys));
	size_t i;
	json_t *k;
	json_array_foreach(l.keys, i, k) {
		const char *label = json_string_value(json_object_get(k, "label"));
		const char *cka_id = json_string_value(json_object_get(k, "cka_id"));
		printf("%s%s  %s\n", i > 0 ? "\n" : "", json_string_value(json_object_get(k, "kid")),
		       json_string_value(json_object_get(k, "state")));
		printf("  %-12s %s\n", "label", label != NULL ? label : "(not recorded)");
		printf("  %-12s %s\n", "cka_id", cka_id != NULL ? cka_id : "(not recorded)");
		printf("  %-12s %s\n", "uri", json_string_value(json_object_get(k, "uri")));
		const char *profile = json_string_value(json_object_get(k, "profile"));
		printf("  %-12s %s\n", "profile", profile != NULL ? profile : "(none: signs certificates)");
		print_key_event(k, "created");
		print_key_event(k, "activated");
		print_key_event(k, "retired");
		print_key_event(k, "compromised");
		print_key_event(k, "destroyed");
		if (json_is_true(json_object_get(k, "x5c_registered")))
			printf("  %-12s registered\n", "x5c");
	}
	if (json_array_size(l.keys) == 0)
		printf("no signing key on record\n");
	json_decref(l.keys);
	return fflush(stdout) == 0 ? 0 : admin_fail("output", CS_E_IO);
}

/* ---- key register-chain ------------------------------------------------------------ */

/* key register-chain: the X.509 chain a CA issued for a key (from key csr),
 * leaf first, recorded so that the JWS header carries it as x5c (RFC 7515
 * 4.1.6). The leaf must certify this key (its thumbprint is the kid) and
 * each certificate must be issued and signed by the next. */
static int cmd_key_register_chain(admin_ctx *a, const char *kid, const char *chain_path)
{
	BIO *in = BIO_new_file(chain_path, "r");
	STACK_OF(X509) *chain = sk_X509_new_null();
	json_t *x5c = json_array(), *jwk = NULL;
	char *x5c_text = NULL;
	cs_store *store = NULL;
	cs_ledger *ledger = NULL;
	int rc = 1;
	X509 *cert;
	if (in == NULL || chain == NULL || x5c == NULL) {
		fprintf(stderr, "credsign-admin: cannot read %s\n", chain_path);
		goto out;
	}
	/* one more than allowed is enough to refuse: a huge file is not read to its end */
	while (sk_X509_num(chain) <= CS_X5C_MAX_CERTS && (cert = PEM_read_bio_X509(in, NULL, NULL, NULL)) != NULL)
		if (!sk_X509_push(chain, cert)) {
			X509_free(cert);
			goto out;
		}
	ERR_clear_error(); /* the end of the file */
	int n = sk_X509_num(chain);
	if (n < 1 || n > CS_X5C_MAX_CERTS) {
		int more = n > CS_X5C_MAX_CERTS;
		fprintf(stderr, "credsign-admin: %s holds %s%d PEM certificates; give 1 to %d, the key's first\n",
			chain_path, more ? "more than " : "", more ? CS_X5C_MAX_CERTS : n, CS_X5C_MAX_CERTS);
		goto out;
	}
	cs_err r = cs_store_connect_config(a->cfg, &store);
	if (r == CS_OK && (r = cs_store_key_info(store, kid, NULL, NULL)) == CS_E_NOT_FOUND) {
		fprintf(stderr, "credsign-admin: no key %s is on record (credsign-admin key list shows the keys)\n", kid);
		goto out;
	}
	if (r != CS_OK) {
		admin_fail("reading the signing keys", r);
		goto out;
	}
	r = cs_jwk_from_pkey(X509_get0_pubkey(sk_X509_value(chain, 0)), &jwk);
	const char *leaf_kid = r == CS_OK ? json_string_value(json_object_get(jwk, "kid")) : NULL;
	if (leaf_kid == NULL || strcmp(leaf_kid, kid) != 0) {
		fprintf(stderr, "credsign-admin: the first certificate of %s certifies %s, not key %s\n", chain_path,
			leaf_kid != NULL ? leaf_kid : "a key that is not EC P-256", kid);
		goto out;
	}
	for (int i = 0; i < n; i++) {
		X509 *c = sk_X509_value(chain, i);
		if (i + 1 < n) {
			X509 *issuer = sk_X509_value(chain, i + 1);
			if (X509_check_issued(issuer, c) != X509_V_OK || X509_verify(c, X509_get0_pubkey(issuer)) != 1) {
				fprintf(stderr, "credsign-admin: certificate %d of %s is not issued and signed by "
						"certificate %d: give the chain in order, the key's first\n",
					i + 1, chain_path, i + 2);
				goto out;
			}
		}
		unsigned char *der = NULL;
		int der_len = i2d_X509(c, &der);
		char *b64 = der_len > 0 ? malloc(4 * ((size_t)der_len + 2) / 3 + 1) : NULL;
		if (b64 == NULL) {
			OPENSSL_free(der);
			goto out;
		}
		EVP_EncodeBlock((unsigned char *)b64, der, der_len); /* x5c: standard base64 with padding */
		OPENSSL_free(der);
		json_array_append_new(x5c, json_string(b64));
		free(b64);
	}
	if ((x5c_text = json_dumps(x5c, JSON_COMPACT)) == NULL)
		goto out;
	if (strlen(x5c_text) > CS_X5C_MAX_BYTES) { /* the daemon would refuse it and stop signing */
		fprintf(stderr, "credsign-admin: the chain in %s takes %zu bytes as x5c; at most %d are carried in a "
				"certificate's header\n", chain_path, strlen(x5c_text), CS_X5C_MAX_BYTES);
		goto out;
	}
	char actor[96], now[32];
	admin_actor(actor);
	cs_audit_now(now);
	cs_audit_entry e = {.ts = now, .node = a->cfg->server.node_id, .actor = actor, .role = "admin",
			    .action = "key.chain", .object = kid, .outcome = "success"};

	if ((r = cs_ledger_connect_config(a->cfg, &ledger)) != CS_OK ||
	    (r = cs_ledger_key_set_chain(ledger, kid, x5c_text, &e)) != CS_OK) {
		admin_fail("recording the chain", r);
		goto out;
	}
	printf("key %s: chain of %d certificate%s registered; certificates it signs carry x5c\n", kid, n,
	       n == 1 ? "" : "s");
	rc = 0;
out:
	BIO_free(in);
	sk_X509_pop_free(chain, X509_free);
	json_decref(x5c);
	json_decref(jwk);
	free(x5c_text);
	cs_ledger_close(ledger);
	cs_store_close(store);
	return rc;
}

/* audit verify's exit status when the chain is intact but no signed
 * checkpoint authenticates any entry of it (docs/audit.md) */
#define EXIT_NOTHING_AUTHENTICATED 3

static void print_report(const cs_audit_report *rep, int from_file)
{
	if (!rep->intact) {
		printf("audit log NOT intact at seq %lld: %s\n", (long long)rep->bad_seq, rep->reason);
		return;
	}
	const char *where = from_file ? "in the file" : "in the store";
	if (rep->entries == 0)
		printf("nothing authenticated: no entries %s\n", where);
	else if (rep->authenticated == 0)
		printf("nothing authenticated: %lld entries (seq %lld..%lld) chain, but no signed checkpoint %s "
		       "ends among them; %lld checkpoints verified\n",
		       (long long)rep->entries, (long long)rep->first_seq, (long long)rep->last_seq, where,
		       (long long)rep->checkpoints);
	else
		printf("audit log intact: %lld entries (seq %lld..%lld), %lld checkpoints verified\n",
		       (long long)rep->entries, (long long)rep->first_seq, (long long)rep->last_seq,
		       (long long)rep->checkpoints);
	if (rep->checkpoints_compromised > 0)
		printf("not counted: %lld checkpoints signed by a key the JWKS marks compromised authenticate "
		       "nothing (whoever held the key could have made them)\n",
		       (long long)rep->checkpoints_compromised);
	if (rep->partial)
		printf("partial: begins at seq %lld, after the chain's base (seq %lld), from that entry's own "
		       "prev_hash\n",
		       (long long)rep->first_seq, (long long)rep->base_seq);
	if (rep->authenticated > 0)
		printf("authenticated: %lld entries (seq %lld..%lld), the chain through them ending in a signed "
		       "checkpoint\n",
		       (long long)rep->authenticated, (long long)rep->first_seq, (long long)rep->signed_through);
	if (rep->pinned)
		printf("kept checkpoint %lld..%lld (%s): reached, and the log agrees with it\n",
		       (long long)rep->pin_first, (long long)rep->pin_last, rep->pin_kind);
	if (rep->beyond_entries > 0)
		printf("not authenticated here: %lld entries (seq %lld..%lld) are covered by checkpoint "
		       "%lld..%lld, which ends after this file: a page ends so (verify it with the pages "
		       "through seq %lld); a whole export never does (cut?)\n",
		       (long long)rep->beyond_entries, (long long)(rep->last_seq - rep->beyond_entries + 1),
		       (long long)rep->last_seq, (long long)rep->beyond_first, (long long)rep->beyond_last,
		       (long long)rep->beyond_last);
	if (rep->unsigned_entries > 0)
		printf("unsigned tail: %lld entries (seq %lld..%lld) are not covered by a signed checkpoint yet "
		       "(deleting them would not show): compare with the newest checkpoint "
		       "(GET /api/audit/checkpoint, --checkpoint)\n",
		       (long long)rep->unsigned_entries,
		       (long long)(rep->last_seq - rep->beyond_entries - rep->unsigned_entries + 1),
		       (long long)(rep->last_seq - rep->beyond_entries));
	if (rep->ts_warnings > 0 && from_file)
		printf("note: %lld entries carry a time earlier than the entry before them, the first at seq %lld "
		       "(an export does not say from which seq the store orders ts)\n",
		       (long long)rep->ts_warnings, (long long)rep->ts_warning_first_seq);
	else if (rep->ts_warnings > 0)
		printf("note: %lld entries written before seq %lld (by a version that did not order ts) "
		       "carry a time earlier than the entry before them, the first at seq %lld\n",
		       (long long)rep->ts_warnings, (long long)rep->ts_ordered_from,
		       (long long)rep->ts_warning_first_seq);
}

static int cmd_audit_verify(admin_ctx *a, long long from_seq, const char *jwks_path, const char *file,
			    const char *kept)
{
	cs_store *store = NULL;
	cs_audit_report rep;
	cs_audit_pin pin = {0};
	char why[256];
	int rc = 1;
	if (file != NULL && jwks_path == NULL) {
		fprintf(stderr, "credsign-admin: audit verify --file needs --jwks (an export carries no keys)\n");
		return 2;
	}
	cs_err r = file != NULL ? CS_OK : cs_store_connect_config(a->cfg, &store);
	if (r != CS_OK)
		return admin_fail("opening the store", r);
	json_t *jwks = load_jwks(a, jwks_path, store);
	if (jwks != NULL && kept != NULL && (r = cs_audit_pin_load(kept, jwks, &pin, why)) != CS_OK) {
		fprintf(stderr, "credsign-admin: --checkpoint %s: %s\n", kept, why);
	} else if (jwks != NULL) {
		const cs_audit_pin *p = kept != NULL ? &pin : NULL;
		r = file != NULL ? cs_audit_verify_export(file, jwks, p, &rep)
				 : cs_audit_verify_pinned(store, jwks, from_seq, p, &rep);
		if (r != CS_OK) {
			admin_fail(file != NULL ? file : "reading the audit log", r);
		} else {
			print_report(&rep, file != NULL);
			rc = !rep.intact ? 1 : rep.authenticated == 0 ? EXIT_NOTHING_AUTHENTICATED : 0;
		}
	}
	cs_audit_pin_free(&pin);
	json_decref(jwks);
	cs_store_close(store);
	return rc;
}

/* One export object per line; a line that cannot be written fails the
 * export (never a silent gap). */
static int print_line(void *arg, json_t *j)
{
	long long *count = arg;
	char *line = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	if (json_is_object(j) && strcmp(json_string_value(json_object_get(j, "type")) ?: "", "entry") == 0)
		(*count)++;
	json_decref(j);
	int bad = line == NULL || printf("%s\n", line) < 0;
	free(line);
	return bad;
}

/* --since: a sequence number, or an RFC 3339 UTC time (YYYY-MM-DD,
 * YYYY-MM-DDTHH:MM:SSZ or with milliseconds) made the width of the log's
 * times so that it compares as text. */
static int parse_since(const char *since, long long *from, char ts[32])
{
	char *end = NULL;
	long long v = strtoll(since, &end, 10);
	int64_t ms = 0;
	ts[0] = '\0';
	if (end != since && *end == '\0' && v >= 1) {
		*from = v;
		return 1;
	}
	size_t n = strlen(since);
	if (n == 10)
		snprintf(ts, 32, "%sT00:00:00.000Z", since);
	else if (n == 20 && since[19] == 'Z')
		snprintf(ts, 32, "%.19s.000Z", since);
	else if (n == 24)
		snprintf(ts, 32, "%s", since);
	return ts[0] != '\0' && cs_audit_time_parse(ts, &ms) == CS_OK;
}

static int cmd_audit_export(admin_ctx *a, const char *since)
{
	cs_store *store = NULL;
	long long from = 1, count = 0;
	int64_t next = 0;
	char since_ts[32] = "";
	if (since != NULL && !parse_since(since, &from, since_ts)) {
		fprintf(stderr, "credsign-admin: --since takes a sequence number or an RFC 3339 UTC time "
				"(2026-01-31, 2026-01-31T10:00:00Z, 2026-01-31T10:00:00.000Z)\n");
		return 2;
	}
	cs_err r = cs_store_connect_config(a->cfg, &store);
	if (r == CS_OK)
		r = cs_audit_export(store, from, since_ts[0] != '\0' ? since_ts : NULL, 0, print_line, &count,
				    &next);
	cs_store_close(store);
	if (r == CS_OK && fflush(stdout) != 0)
		r = CS_E_IO;
	if (r != CS_OK)
		return admin_fail("exporting the audit log", r);
	char what[64];
	snprintf(what, sizeof(what), "%lld entries", count);
	return admin_event(a, "audit.export", what, "success") == CS_OK ? 0 : 1;
}

/* The purge's preview: what the ledger would remove, without the token
 * (never past max_seq, as cs_ledger_audit_purge_through). */
static cs_err purge_preview(cs_store *store, const char *cutoff, int64_t max_seq, int64_t *first,
			    int64_t *boundary)
{
	uint8_t head[32];
	cs_err r = cs_store_audit_purge_boundary(store, cutoff, first, boundary, head);
	if (r == CS_OK && *boundary > max_seq)
		*boundary = max_seq >= *first ? max_seq : 0;
	return r;
}

/*
 * The reference is only as good as the daemon's clock when it signed (no
 * trusted time source): a clock set forward shows as a leap of the signed
 * times. A step of more than half of audit.retention_days between two
 * consecutive periodic or stop checkpoints over the entries still in the
 * log refuses the purge (audited: clock.jump, refused), unless accepted
 * with --accept-clock-jump (audited: clock.jump, success). 0: go on.
 */
static int clock_jump_check(admin_ctx *a, cs_store *store, const json_t *jwks, int64_t ref_seq, int accept,
			    const char *event_ts)
{
	cs_audit_clock_step step;
	int64_t base = 0;
	uint8_t head[32];
	char why[256], what[256];
	int bound_days = a->cfg->audit.retention_days / 2;
	cs_err r = cs_store_purge_base(store, &base, head);
	if (r == CS_E_NOT_FOUND) {
		base = 0;
		r = CS_OK;
	}
	if (r == CS_OK)
		r = cs_audit_largest_clock_step(store, jwks, base, ref_seq, &step, why);
	if (r == CS_E_SIGNATURE_INVALID) {
		fprintf(stderr, "credsign-admin: the checkpoints' times cannot be trusted (%s); nothing purged\n", why);
		return 1;
	}
	if (r != CS_OK)
		return admin_fail("reading the audit checkpoints", r);
	if (!step.found || step.step_ms <= (int64_t)bound_days * 86400000LL)
		return 0;
	snprintf(what, sizeof(what),
		 "%scheckpoint %lld..%lld signed %s is %.1f days after checkpoint %lld..%lld signed %s "
		 "(more than %d days, half of audit.retention_days)",
		 accept ? "accepted: " : "", (long long)step.after_first, (long long)step.after_last,
		 step.after_time, (double)step.step_ms / 86400000.0, (long long)step.before_first,
		 (long long)step.before_last, step.before_time, bound_days);
	if (!accept) {
		fprintf(stderr, "credsign-admin: refused: %s. The daemon's clock was set forward, or it recorded "
				"nothing for that long: ages measured across that step are not trusted. Check the "
				"log's times; --accept-clock-jump purges anyway (audited). Nothing purged\n", what);
		(void)admin_event_at(a, "clock.jump", what, "refused", NULL, event_ts);
		return 1;
	}
	printf("warning: %s (--accept-clock-jump)\n", what);
	return admin_event_at(a, "clock.jump", what, "success", NULL, event_ts) == CS_OK ? 0 : 1;
}

/*
 * Age is measured against the newest signed periodic or stop checkpoint's
 * time, never the local clock alone: cutoff = min(local, reference) -
 * retention; only entries that checkpoint signs go. A local clock more than a day ahead of the reference is
 * reported and audited (clock.ahead); then the entries this run writes
 * carry the reference's time (raised to the newest entry's by the ledger),
 * so a wrong clock does not hold the log's times in the future. The
 * reference itself is checked for a leap (clock_jump_check).
 */
int admin_audit_purge(admin_ctx *a, const char *jwks_path, int accept_clock_jump, int *purged)
{
	char *key_uri = NULL;
	cs_store *store = NULL;
	cs_ledger *ledger = NULL;
	cs_signer *signer = NULL;
	json_t *jwks = NULL;
	OSSL_LIB_CTX *libctx = OSSL_LIB_CTX_new();
	OSSL_PROVIDER *prov = NULL, *deflt = NULL;
	int64_t first = 0, boundary = 0, ref_seq = 0, ahead_ms = 0;
	char reference[32], cutoff[32], local[32], why[256];
	const char *event_ts = NULL; /* the local clock, unless it is far ahead */
	int rc = 1;
	if (purged != NULL)
		*purged = 0;
	cs_audit_now(local);
	/* PostgreSQL: as the schema owner, the only role that may record a
	 * purge checkpoint and call audit_purge (not the nodes' role) */
	cs_store_target owner = {0};
	int pg = cs_store_target_is_pg(a->cfg);
	if (pg && a->owner_connection == NULL) {
		fprintf(stderr, "credsign-admin: on a PostgreSQL store the purge runs as the schema owner: give "
				"--owner-connection CONNINFO [--owner-password-file FILE]; nothing purged\n");
		goto out;
	}
	if (pg && admin_owner_target(a, a->owner_connection, a->owner_password_file, &owner) != 0)
		goto out;
	cs_err r = pg ? cs_store_connect(&owner, &store) : cs_store_connect_config(a->cfg, &store);
	if (r != CS_OK) {
		admin_fail("opening the store", r);
		goto out;
	}
	if ((jwks = load_jwks(a, jwks_path, store)) == NULL)
		goto out;
	r = cs_audit_time_reference(store, jwks, reference, &ref_seq, why);
	if (r == CS_E_NOT_FOUND) {
		printf("nothing to purge: no signed periodic or stop checkpoint to measure age against "
		       "(the daemon signs them)\n");
		rc = 0;
		goto out;
	}
	if (r == CS_E_SIGNATURE_INVALID) {
		fprintf(stderr, "credsign-admin: the newest checkpoint does not verify (%s); nothing purged\n", why);
		goto out;
	}
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	if (r != CS_OK || (r = cs_audit_purge_cutoff(reference, (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000,
						     a->cfg->audit.retention_days, cutoff, &ahead_ms)) != CS_OK) {
		admin_fail("reading the audit log", r);
		goto out;
	}
	printf("age measured against the newest signed checkpoint: %s (seq %lld); local clock %s\n", reference,
	       (long long)ref_seq, local);
	if (ahead_ms > CS_AUDIT_CLOCK_AHEAD_MS) {
		char what[160];
		snprintf(what, sizeof(what), "local clock %s is %.1f days ahead of the newest signed checkpoint %s (seq %lld)",
			 local, (double)ahead_ms / 86400000.0, reference, (long long)ref_seq);
		printf("warning: %s; ages are measured against the checkpoint\n", what);
		event_ts = reference;
		if (admin_event_at(a, "clock.ahead", what, "failure", NULL, event_ts) != CS_OK)
			goto out;
	}
	if ((r = purge_preview(store, cutoff, ref_seq, &first, &boundary)) != CS_OK) {
		admin_fail("reading the audit log", r);
		goto out;
	}
	if (boundary == 0) {
		printf("nothing to purge: no signed entry is older than %d days before %s (%s)\n",
		       a->cfg->audit.retention_days, ahead_ms > 0 ? reference : local, cutoff);
		rc = 0;
		goto out;
	}
	if (clock_jump_check(a, store, jwks, ref_seq, accept_clock_jump, event_ts) != 0)
		goto out;
	if (libctx == NULL || cs_provider_load(libctx, a->token, &prov) != CS_OK ||
	    (deflt = OSSL_PROVIDER_load(libctx, "default")) == NULL ||
	    (r = admin_active_key_uri(a, &key_uri)) != CS_OK ||
	    (r = cs_signer_open(libctx, key_uri, &signer)) != CS_OK) {
		admin_fail("opening the active signing key", r);
		goto out;
	}
	/* the boundary above was a preview: the store reads it again, and
	 * re-checks it in the purge's transaction (the daemon may be writing) */
	if ((r = pg ? cs_ledger_connect(&owner, a->cfg->audit.write_timeout_ms, &ledger)
		    : cs_ledger_connect_config(a->cfg, &ledger)) != CS_OK ||
	    (r = cs_ledger_audit_purge_through(ledger, cutoff, ref_seq, a->cfg->server.node_id,
					       cs_audit_sign_checkpoint_cb, signer, &first, &boundary)) != CS_OK) {
		admin_fail("purging", r);
		goto out;
	}
	if (boundary == 0) {
		printf("nothing to purge: no signed entry is older than %s\n", cutoff);
		rc = 0;
		goto out;
	}
	printf("purged entries %lld..%lld (older than %s) behind a signed purge checkpoint over %lld..%lld\n",
	       (long long)first, (long long)boundary, cutoff, (long long)first, (long long)boundary);
	char what[64];
	snprintf(what, sizeof(what), "%lld..%lld", (long long)first, (long long)boundary);
	if (purged != NULL)
		*purged = 1;
	rc = admin_event_at(a, "audit.purge", what, "success", NULL, event_ts) == CS_OK ? 0 : 1;
out:
	free(key_uri);
	json_decref(jwks);
	cs_signer_free(signer);
	OSSL_PROVIDER_unload(deflt);
	OSSL_PROVIDER_unload(prov);
	OSSL_LIB_CTX_free(libctx);
	cs_ledger_close(ledger);
	cs_store_close(store);
	return rc;
}

int admin_load(admin_ctx *a, const char *config_path, cs_log_level level)
{
	if (config_path == NULL) {
		fprintf(stderr, "credsign-admin: no configuration: give --config FILE or set CREDSIGN_CONF\n");
		return 2;
	}
	cs_config_diag diag;
	cs_log_configure(level, CS_LOG_LOGFMT, 2);
	cs_token_meter_track_failures(); /* failing PKCS#11 calls named in errors, logged with -v */
	cs_err r = cs_config_load(config_path, &a->cfg, &diag);
	for (size_t i = 0; i < diag.count; i++)
		fprintf(stderr, "%s\n", diag.messages[i]);
	cs_config_diag_free(&diag);
	return r == CS_OK ? 0 : admin_fail("configuration", r);
}

void admin_close(admin_ctx *a)
{
	cs_token_close(a->token);
	cs_config_free(a->cfg);
	a->token = NULL;
	a->cfg = NULL;
}

cs_err admin_active_key_uri(admin_ctx *a, char **uri)
{
	cs_store *store = NULL;
	cs_active_key key = {0};
	*uri = NULL;
	cs_err r = cs_store_connect_config(a->cfg, &store);
	if (r == CS_OK && (r = cs_store_key_active(store, &key)) == CS_OK) {
		*uri = key.uri;
		key.uri = NULL;
	} else if (r == CS_E_NOT_FOUND) {
		int ever = 0;
		r = cs_store_keys_ever_active(store, &ever);
		if (r == CS_OK && ever) {
			fprintf(stderr, "credsign-admin: no signing key is active (the last one was compromised); "
					"activate a new one in a ceremony\n");
			r = CS_E_NO_ACTIVE_KEY;
		} else if (r == CS_OK && (*uri = strdup(a->cfg->pkcs11.signing_key)) == NULL) {
			r = CS_E_NOMEM;
		}
	}
	cs_active_key_free(&key);
	cs_store_close(store);
	return r;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: credsign-admin [--config FILE] token info\n"
		   "       credsign-admin [--config FILE] key generate --label LABEL [--id HEX] [--profile NAME]\n"
		   "       credsign-admin [--config FILE] key jwk [--key PKCS11-URI]\n"
		   "       credsign-admin [--config FILE] key csr [--key PKCS11-URI] --subject DN\n"
		   "                      [--san DNS:name,IP:addr,URI:uri] [--out FILE]\n"
		   "       credsign-admin [--config FILE] key list [--format text|json]\n"
		   "       credsign-admin [--config FILE] key register-chain --kid KID --chain CHAIN.pem\n"
		   "       credsign-admin [--config FILE] audit verify [--from-seq N | --file EXPORT] [--jwks FILE]\n"
		   "                      [--checkpoint FILE]\n"
		   "       credsign-admin [--config FILE] audit export [--since SEQ|RFC3339] [--format jsonl]\n"
		   "       credsign-admin [--config FILE] ceremony start --action activate|retire|compromise|destroy|purge|revoke\n"
		   "                      [--key KID | --cert ID] [--reason TEXT] [--accept-clock-jump]\n"
		   "       credsign-admin [--config FILE] ceremony approve ID --officer-cert C --officer-key K\n"
		   "                      [--officer-module MODULE]\n"
		   "       credsign-admin [--config FILE] ceremony execute ID [--jwks FILE]\n"
		   "                      [--owner-connection CONNINFO [--owner-password-file FILE]]\n"
		   "       credsign-admin [--config FILE] ceremony show ID\n"
		   "       credsign-admin [--config FILE] ceremony transcript ID [--out FILE]\n"
		   "       credsign-admin [--config FILE] ceremony list [--format text|json]\n"
		   "       credsign-admin [--config FILE] ceremony verify-transcript FILE [--officer-ca FILE]\n"
		   "                      [--officers ROSTER] [--jwks FILE]\n"
		   "       credsign-admin [--config FILE] cert revoke ID --reason TEXT\n"
		   "       credsign-admin [--config FILE] store init [--owner-connection CONNINFO]\n"
		   "                      [--owner-password-file FILE]\n"
		   "       credsign-admin [--config FILE] store migrate --from sqlite:PATH --to postgresql\n"
		   "                      [--owner-connection CONNINFO] [--owner-password-file FILE] [--jwks FILE]\n"
		   "       credsign-admin [--config FILE] evidence export --project P [--environment E]\n"
		   "                      --from DATE --to DATE --standards a,b --out FILE\n"
		   "                      --auditor-cert C --auditor-key K [--auditor-module M]\n"
		   "       credsign-admin --version\n"
		   "-v, --verbose: debug log on stderr, with every failing PKCS#11 call\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"label", required_argument, NULL, 'l'},
		{"kid", required_argument, NULL, 'K'},
		{"chain", required_argument, NULL, 'C'},
		{"id", required_argument, NULL, 'I'},
		{"key", required_argument, NULL, 'k'},
		{"subject", required_argument, NULL, 's'},
		{"san", required_argument, NULL, 'S'},
		{"out", required_argument, NULL, 'o'},
		{"from-seq", required_argument, NULL, 'F'},
		{"jwks", required_argument, NULL, 'J'},
		{"since", required_argument, NULL, 'i'},
		{"format", required_argument, NULL, 'm'},
		{"file", required_argument, NULL, 'f'},
		{"checkpoint", required_argument, NULL, 'P'},
		{"profile", required_argument, NULL, 'p'},
		{"verbose", no_argument, NULL, 'v'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	if (admin_ceremony_command(argc, argv))
		return admin_ceremony_main(argc, argv);
	if (admin_store_command(argc, argv))
		return admin_store_main(argc, argv);
	if (admin_evidence_command(argc, argv))
		return admin_evidence_main(argc, argv);
	const char *config_path = getenv("CREDSIGN_CONF"), *label = NULL, *key_uri = NULL, *key_id = NULL;
	const char *subject = NULL, *san = NULL, *out_path = NULL, *jwks = NULL, *since = NULL, *file = NULL;
	long long from_seq = 0;
	const char *kept_checkpoint = NULL; /* audit verify --checkpoint */
	const char *format = NULL;          /* audit export: jsonl; key list: text or json */
	const char *kid = NULL, *chain = NULL; /* key register-chain */
	const char *profile = NULL;            /* key generate: the signing profile whose key it is */
	int c;
	umask(077); /* the store and its WAL and SHM files: private, whatever the caller's umask */
	cs_log_level log_level = CS_LOG_WARN; /* -v: debug */
	while ((c = getopt_long(argc, argv, "c:hv", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config_path = optarg; break;
		case 'l': label = optarg; break;
		case 'K': kid = optarg; break;
		case 'C': chain = optarg; break;
		case 'I': key_id = optarg; break;
		case 'k': key_uri = optarg; break;
		case 's': subject = optarg; break;
		case 'S': san = optarg; break;
		case 'o': out_path = optarg; break;
		case 'F': from_seq = atoll(optarg); break;
		case 'J': jwks = optarg; break;
		case 'i': since = optarg; break;
		case 'f': file = optarg; break;
		case 'P': kept_checkpoint = optarg; break;
		case 'p': profile = optarg; break;
		case 'm': format = optarg; break;
		case 'v': log_level = CS_LOG_DEBUG; break;
		case 'V': printf("credsign-admin %s\n", CREDSIGN_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	/* audit verify --file EXPORT --jwks KEPT: the export and the keys are all it reads */
	int offline = optind + 2 == argc && strcmp(argv[optind], "audit") == 0 &&
		      strcmp(argv[optind + 1], "verify") == 0 && file != NULL;
	if (optind + 2 == argc && config_path == NULL && !offline) { /* the command is right; say what is missing */
		fprintf(stderr, "credsign-admin: no configuration: give --config FILE or set CREDSIGN_CONF\n");
		usage(stderr);
		return 2;
	}
	if (optind + 2 != argc) {
		usage(stderr);
		return 2;
	}
	const char *noun = argv[optind], *verb = argv[optind + 1];
	int is_info = strcmp(noun, "token") == 0 && strcmp(verb, "info") == 0;
	int is_gen = strcmp(noun, "key") == 0 && strcmp(verb, "generate") == 0;
	int is_jwk = strcmp(noun, "key") == 0 && strcmp(verb, "jwk") == 0;
	int is_csr = strcmp(noun, "key") == 0 && strcmp(verb, "csr") == 0;
	int is_list = strcmp(noun, "key") == 0 && strcmp(verb, "list") == 0;
	int is_chain = strcmp(noun, "key") == 0 && strcmp(verb, "register-chain") == 0;
	int is_audit = strcmp(noun, "audit") == 0 && (strcmp(verb, "verify") == 0 || strcmp(verb, "export") == 0);
	int is_export = is_audit && strcmp(verb, "export") == 0;
	if (!(is_info || is_gen || is_jwk || is_csr || is_list || is_chain || is_audit) ||
	    (is_gen && label == NULL) || (is_chain && (kid == NULL || chain == NULL)) ||
	    ((kid != NULL || chain != NULL) && !is_chain) ||
	    (format != NULL && !(is_export && strcmp(format, "jsonl") == 0) &&
	     !(is_list && (strcmp(format, "text") == 0 || strcmp(format, "json") == 0))) ||
	    (key_id != NULL && !is_gen) || (profile != NULL && !is_gen) ||
	    (kept_checkpoint != NULL && !(is_audit && strcmp(verb, "verify") == 0)) ||
	    (is_csr && subject == NULL)) {
		usage(stderr);
		return 2;
	}

	admin_ctx a = {0};
	if (offline) {
		cs_log_configure(log_level, CS_LOG_LOGFMT, 2);
		return cmd_audit_verify(&a, from_seq, jwks, file, kept_checkpoint);
	}
	int rc = admin_load(&a, config_path, log_level);
	if (rc != 0) {
		admin_close(&a);
		return rc;
	}
	if (is_list) /* the store alone */
		rc = cmd_key_list(&a, format != NULL && strcmp(format, "json") == 0);
	else if (is_chain)
		rc = cmd_key_register_chain(&a, kid, chain);
	else if (is_audit) /* no token needed */
		rc = strcmp(verb, "verify") == 0 ? cmd_audit_verify(&a, from_seq, jwks, file, kept_checkpoint)
						 : cmd_audit_export(&a, since);
	if (is_list || is_chain || is_audit) {
		admin_close(&a);
		return rc;
	}
	if (profile != NULL && cs_config_profile_find(a.cfg, profile) == NULL) {
		/* before the token makes a key nothing can use */
		fprintf(stderr, "credsign-admin: --profile %s: the configuration %s has no such signing profile "
				"(signing.profiles:",
			profile, a.cfg->file_given != NULL ? a.cfg->file_given : a.cfg->file);
		for (size_t i = 0; i < a.cfg->signing.nprofiles; i++)
			fprintf(stderr, " %s", a.cfg->signing.profiles[i].name);
		fprintf(stderr, "%s)\n", a.cfg->signing.nprofiles == 0 ? " none" : "");
		admin_close(&a);
		return 2;
	}
	char why[400];
	if (key_uri != NULL &&
	    cs_config_key_token_conflict(a.cfg->pkcs11.token_uri, key_uri, why, sizeof(why)) != CS_OK) {
		/* keys are looked up in the configured token only */
		fprintf(stderr, "credsign-admin: --key %s names %s; keys are looked up only in that token\n",
			key_uri, why);
		admin_close(&a);
		return 2;
	}
	char *active_uri = NULL; /* key jwk / key csr without --key: the store's active key */
	rc = admin_open_token(&a, is_gen);
	if (rc == 0 && (is_csr || is_jwk) && key_uri == NULL) {
		cs_err kr = admin_active_key_uri(&a, &active_uri);
		if (kr != CS_OK)
			rc = admin_fail("finding the active signing key", kr);
		key_uri = active_uri;
	}
	if (rc == 0) {
		if (is_info)
			rc = cmd_token_info(&a);
		else if (is_gen)
			rc = cmd_key_generate(&a, label, key_id, profile);
		else if (is_csr)
			rc = cmd_key_csr(&a, key_uri, subject, san, out_path);
		else
			rc = cmd_key_jwk(&a, key_uri);
	}
	free(active_uri);
	admin_close(&a);
	return rc;
}
