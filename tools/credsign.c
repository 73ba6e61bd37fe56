/*
 * credsign: client of a credsign appliance, and offline certificate verifier.
 *
 *   credsign [CONN] generate --preset P [--type T] [--length N]
 *            [--strength-bits N] [--project X] [--environment E] [--system S]
 *            [--prefix P] [--certify] [--format json|env|raw]
 *   credsign [CONN] generate ... --certify --format k8s-secret --name N --namespace NS [--secret-key K]
 *   credsign [CONN] generate ... --certify --format vault-kv [--secret-key K]
 *   credsign [CONN] cert get ID [--jws]
 *   credsign [CONN] jwks [--profile P]
 *   credsign [CONN] sign --profile P --format jws|dsse|digest [--payload-type T] [--out FILE] FILE|-
 *   credsign verify-signature --jwks FILE [--profile P] (--jws FILE | --dsse FILE | --signature SIG FILE)
 *   credsign [CONN] verify-signature --profile P (--jws FILE | --dsse FILE | --signature SIG FILE)
 *   credsign [CONN] signature get ID
 *   credsign [CONN] signature find (--sha256 HEX | --file FILE)
 *   credsign [CONN] policy --standards P1,P2 [--format markdown|json|html]
 *   credsign verify CERT.jws --jwks FILE [--credential-file F] [--revocations FILE] [--x5c-ca FILE]
 *   credsign [CONN] verify CERT.jws --online [--jwks FILE] [--credential-file F] [--x5c-ca FILE]
 *   credsign evidence verify FILE [--jwks KEPT_JWKS] [--format text|json]
 *   credsign access check IDENTITY ACTION [PROJECT [ENV [PRESET]]] [--profile P] --config FILE
 *   credsign --version | --help
 *
 * verify checks a certificate against the JWKS (the key its kid names, RFC
 * 7638 thumbprint, ES256, typ, claims, the credential when given). A key
 * the JWKS marks compromised signs nothing valid; a certificate must be
 * certified while its key was active by the JWKS's dates (within
 * KEY_SWITCH_GRACE_S). A header x5c must carry the JWKS key; its chain is
 * validated only against the trust anchors of --x5c-ca. The revocation
 * list (a JWS signed by a trusted key of the JWKS while it was active:
 * --revocations FILE, or fetched with --online, which also fetches the
 * JWKS unless --jwks names one) must be the issuer's, not stale, and not
 * list the certificate. A refusal prints "NOT VERIFIED (CODE): WHY" on
 * standard error, CODE a stable reason (key_compromised, revoked, ...).
 *
 * sign asks the appliance to sign with a signing profile's key: jws signs
 * FILE's JSON object (the appliance adds iss, sub, iat, jti, exp), dsse
 * FILE's bytes as a DSSE envelope of --payload-type, digest only FILE's
 * SHA-256 computed here. It prints the answer (signature_id, kid, seq, the
 * signature); --out FILE writes the artifact: the compact JWS and a
 * newline, the envelope JSON, or the DER signature (for `openssl dgst
 * -sha256 -verify PUB.pem -signature FILE.sig FILE`).
 *
 * verify-signature checks a profile signature offline against a JWKS
 * (--jwks FILE, or the profile's, fetched over CONN): the key its kid names
 * (a digest signature: the JWKS key that verifies it), its RFC 7638
 * thumbprint, its status (active or retired; compromised signs nothing
 * valid), the signature, and a JWS's exp/nbf; a typ of credsign's own
 * documents ("credsign-...", with or without "application/") is refused.
 * Exit 0 valid (what it verified printed, with signed_sha256: the SHA-256
 * of the signed bytes, as the appliance's record and audit entry name
 * them), 1 "NOT VERIFIED (CODE): WHY" as verify, 2 usage. When the JWKS
 * says the key has signed bare digests (its entry's "formats_signed", the
 * formats of the appliance's records by it, lists digest) or its profile
 * (the top-level "profile") also signs them, a verified JWS or DSSE
 * envelope comes with a caution on standard error: whoever signs digests
 * with that key can obtain its signature over any bytes. A signature of
 * a key the JWKS does not list adds the hint to fetch the JWKS again (a
 * newer key).
 *
 * signature get prints the appliance's record of a signature (GET
 * /api/signatures/ID); signature find prints the records of signatures
 * over bytes with that SHA-256 (GET /api/signatures?sha256=HEX; --file:
 * the file's SHA-256, which finds its digest signatures; for a JWS or a
 * DSSE envelope give the signed_sha256 verify-signature prints). Exit 0
 * with records, 1 when none (or none the caller may read) or on failure.
 *
 * access check reads the daemon's configuration (--config, or CREDSIGN_CONF)
 * and explains what access.grants decide for that identity and action
 * (access.h): the grant that allows it, or why each of the identity's
 * grants does not; "-" for a member the request does not have. Exit 0
 * allowed, 1 denied, 2 usage or configuration error. It talks to no daemon.
 *
 * -v/--verbose shows the connection (TLS handshake, request line, response
 * headers: libcurl's verbose output) on standard error; a failed
 * connection is reported with libcurl's detail, which names the TLS alert
 * the server sent (for example "alert certificate expired").
 * CONN: --url URL (CREDSIGN_URL), --cacert FILE (CREDSIGN_CACERT or
 * CREDSIGN_CA), --cert FILE (CREDSIGN_CERT), --key FILE (CREDSIGN_KEY).
 * TLS 1.3 with a client certificate. Exit status: 0 success, 1 failure,
 * 2 usage. The credential is printed once and wiped from memory.
 *
 * generate --format k8s-secret / vault-kv (handoff.h, docs/integrations.md)
 * print the certified credential as a Kubernetes Secret manifest or as the
 * bodies of a Vault/OpenBao KV v2 data and metadata write, carrying the
 * certificate's URL, id and preset; both need --certify, and nothing is
 * printed when certification fails.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "access.h"
#include "ec_util.h"
#include "evidence.h"
#include "generate.h"
#include "handoff.h"
#include "jose.h"
#include "sigformat.h"
#include "wipe_alloc.h"

#define RESPONSE_MAX (1 << 20)

typedef struct {
	const char *url, *cacert, *cert, *key;
	int verbose;
} conn;

typedef struct {
	char *data;
	size_t len, cap;
	size_t max; /* the largest response taken; 0: RESPONSE_MAX */
} buffer;

static void buffer_wipe(buffer *b)
{
	if (b->data != NULL)
		OPENSSL_cleanse(b->data, b->cap);
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static size_t on_data(char *ptr, size_t size, size_t n, void *arg)
{
	buffer *b = arg;
	size_t add = size * n;
	size_t max = b->max != 0 ? b->max : RESPONSE_MAX;
	return cs_wiped_append(&b->data, &b->len, &b->cap, ptr, add, max) == 0 ? add : 0;
}

/* ---- naming the TLS alert of a refused connection --------------------------------- */

/* The alert the server sent, recorded by the info callback. */
static void note_alert(const SSL *ssl, int where, int ret)
{
	if ((where & SSL_CB_READ_ALERT) == 0)
		return;
	char *out = SSL_get_app_data(ssl);
	if (out != NULL && out[0] == '\0')
		snprintf(out, 64, "%s", SSL_alert_desc_string_long(ret));
}

/* When a request failed during or right after the handshake, libcurl may
 * report only "failed sending data": the server's alert raced the request
 * and the connection was reset before libcurl read it. Connect once more
 * with the same material, send nothing, and read: the alert arrives in
 * order. Writes its description into alert[64]; 0 when one was read. */
static int probe_alert(const conn *c, const char *url, char alert[64])
{
	alert[0] = '\0';
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL;
	int rc = -1;
	if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
		curl_url_cleanup(u);
		return -1;
	}
	/* an IPv6 literal comes bracketed */
	size_t hl = strlen(host);
	if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
	}
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	BIO *bio = NULL;
	SSL *ssl = NULL;
	if (ctx == NULL || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    SSL_CTX_load_verify_locations(ctx, c->cacert, NULL) != 1 ||
	    SSL_CTX_use_certificate_chain_file(ctx, c->cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, c->key, SSL_FILETYPE_PEM) != 1)
		goto out;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_info_callback(ctx, note_alert);
	char target[512];
	snprintf(target, sizeof(target), strchr(host, ':') != NULL ? "[%s]:%s" : "%s:%s", host, port);
	if ((bio = BIO_new_ssl_connect(ctx)) == NULL || BIO_get_ssl(bio, &ssl) != 1 || ssl == NULL)
		goto out;
	SSL_set_app_data(ssl, alert);
	SSL_set_tlsext_host_name(ssl, host);
	SSL_set1_host(ssl, host);
	BIO_set_conn_hostname(bio, target);
	if (BIO_do_connect(bio) == 1 && BIO_do_handshake(bio) == 1) {
		/* TLS 1.3: the server judges our certificate after our Finished; its
		 * verdict (an alert, or nothing and a session ticket) comes next */
		int fd = -1;
		BIO_get_fd(bio, &fd);
		struct timeval tv = {5, 0};
		if (fd >= 0)
			setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		char byte;
		(void)SSL_read(ssl, &byte, 1);
	}
	rc = alert[0] != '\0' ? 0 : -1;
out:
	ERR_clear_error();
	BIO_free_all(bio);
	SSL_CTX_free(ctx);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return rc;
}

/* One HTTPS request; body NULL for GET. Returns the HTTP status or -1. */
static long request(const conn *c, const char *path, const char *body, buffer *out)
{
	char url[1024];
	long status = -1;
	snprintf(url, sizeof(url), "%s%s", c->url, path);
	CURL *curl = curl_easy_init();
	struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
	if (curl == NULL)
		return -1;
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_3);
	curl_easy_setopt(curl, CURLOPT_CAINFO, c->cacert);
	curl_easy_setopt(curl, CURLOPT_SSLCERT, c->cert);
	curl_easy_setopt(curl, CURLOPT_SSLKEY, c->key);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
	if (body != NULL) {
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	}
	/* the detail (the TLS alert the server sent, the failing check) */
	char detail[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, detail);
	curl_easy_setopt(curl, CURLOPT_VERBOSE, (long)c->verbose);
	CURLcode rc = curl_easy_perform(curl);
	if (rc == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	else
		fprintf(stderr, "credsign: %s: %s%s%s\n", url, curl_easy_strerror(rc), detail[0] ? ": " : "", detail);
	char alert[64];
	if ((rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR || rc == CURLE_SSL_CONNECT_ERROR) &&
	    strstr(detail, " alert ") == NULL && probe_alert(c, url, alert) == 0)
		fprintf(stderr, "credsign: the server ended the TLS connection with the alert \"%s\"%s\n", alert,
			strstr(alert, "certificate") != NULL ? ": it refused this client's certificate" : "");
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
	return status;
}

/* Print the server's error document and return 1. */
static int server_error(long status, const buffer *b)
{
	json_t *doc = b->data != NULL ? json_loads(b->data, 0, NULL) : NULL;
	const char *code = json_string_value(json_object_get(json_object_get(doc, "error"), "code"));
	const char *msg = json_string_value(json_object_get(json_object_get(doc, "error"), "message"));
	fprintf(stderr, "credsign: HTTP %ld %s: %s\n", status, code ? code : "error", msg ? msg : "");
	json_decref(doc);
	return 1;
}

/* ---- generate ------------------------------------------------------------------ */

typedef struct {
	const char *preset, *type, *project, *environment, *system, *prefix, *format;
	int length, strength_bits, certify, exclude_ambiguous;
	const char *k8s_name, *k8s_namespace, *secret_key; /* k8s-secret, vault-kv (handoff.h) */
} gen_opts;

/* generate's long options without a short letter (k8s-secret, vault-kv) */
enum { OPT_K8S_NAME = 320, OPT_K8S_NAMESPACE, OPT_SECRET_KEY };

/* generate's options agree with its --format; 0, or 2 after a message. */
static int generate_usage(const gen_opts *o)
{
	const char *f = o->format;
	int k8s = strcmp(f, "k8s-secret") == 0, vault = strcmp(f, "vault-kv") == 0;
	if (!k8s && !vault && strcmp(f, "json") != 0 && strcmp(f, "env") != 0 && strcmp(f, "raw") != 0) {
		fprintf(stderr, "credsign: generate --format json|env|raw|k8s-secret|vault-kv, not '%s'\n", f);
		return 2;
	}
	if ((k8s || vault) && !o->certify) {
		fprintf(stderr, "credsign: --format %s needs --certify (the output carries the certificate)\n", f);
		return 2;
	}
	if (!k8s && (o->k8s_name != NULL || o->k8s_namespace != NULL)) {
		fprintf(stderr, "credsign: --name and --namespace are for --format k8s-secret\n");
		return 2;
	}
	if (!k8s && !vault && o->secret_key != NULL) {
		fprintf(stderr, "credsign: --secret-key is for --format k8s-secret or vault-kv\n");
		return 2;
	}
	if (k8s && (o->k8s_name == NULL || o->k8s_namespace == NULL)) {
		fprintf(stderr, "credsign: --format k8s-secret needs --name N and --namespace NS\n");
		return 2;
	}
	if (k8s && !cs_k8s_subdomain_valid(o->k8s_name)) {
		fprintf(stderr, "credsign: --name must be a Kubernetes object name (RFC 1123 subdomain: at most 253 "
				"lower-case letters, digits, '-' and '.', alphanumeric at each end of each label)\n");
		return 2;
	}
	if (k8s && !cs_k8s_label_valid(o->k8s_namespace)) {
		fprintf(stderr, "credsign: --namespace must be a Kubernetes namespace (RFC 1123 label: at most 63 "
				"lower-case letters, digits and '-', alphanumeric at both ends)\n");
		return 2;
	}
	if (o->secret_key != NULL && !cs_k8s_data_key_valid(o->secret_key)) {
		fprintf(stderr, "credsign: --secret-key must be 1 to 253 of letters, digits, '-', '_' and '.' (not '.' "
				"and not beginning with '..')\n");
		return 2;
	}
	if (vault && o->secret_key != NULL &&
	    (strcmp(o->secret_key, "cert_url") == 0 || strcmp(o->secret_key, "cert_id") == 0)) {
		fprintf(stderr, "credsign: --secret-key %s would collide with the certificate reference beside it\n",
			o->secret_key);
		return 2;
	}
	return 0;
}

/* The credential of g and its certificate cj (the certify answer) in the
 * secrets-manager format of o (handoff.h): 0, or 1 after a message. The
 * annotations' preset and certified_at are the certificate's claims. */
static int print_handoff(const gen_opts *o, const json_t *g, const json_t *cj)
{
	json_t *header = NULL, *claims = NULL;
	const char *jws = json_string_value(json_object_get(cj, "certificate"));
	if (jws == NULL || cs_jws_peek(jws, &header, &claims) != CS_OK) {
		fprintf(stderr, "credsign: the certificate in the answer cannot be read\n");
		return 1;
	}
	cs_handoff h = {json_string_value(json_object_get(g, "credential")),
			json_string_value(json_object_get(cj, "cert_id")),
			json_string_value(json_object_get(cj, "cert_url")),
			json_string_value(json_object_get(claims, "preset")),
			json_string_value(json_object_get(claims, "certified_at"))};
	const char *key = o->secret_key != NULL ? o->secret_key : CS_HANDOFF_DEFAULT_KEY;
	cs_err r = strcmp(o->format, "k8s-secret") == 0
			   ? cs_handoff_k8s_secret(&h, o->k8s_name, o->k8s_namespace, key, stdout)
			   : cs_handoff_vault_kv(&h, key, stdout);
	if (r != CS_OK)
		fprintf(stderr, "credsign: the %s output could not be made: %s\n", o->format, cs_strerror(r));
	json_decref(header);
	json_decref(claims);
	return r == CS_OK ? 0 : 1;
}

static void print_shell_quoted(const char *name, const char *value)
{
	printf("%s='", name);
	for (const char *p = value; *p; p++) {
		if (*p == '\'')
			fputs("'\\''", stdout);
		else
			fputc(*p, stdout);
	}
	printf("'\n");
}

static int cmd_generate(const conn *c, const gen_opts *o)
{
	buffer gen = {0}, cert = {0};
	json_t *req = json_pack("{s:s}", "preset", o->preset), *g = NULL, *cj = NULL;
	int rc = 1;
	if (o->type) json_object_set_new(req, "type", json_string(o->type));
	if (o->length) json_object_set_new(req, "length", json_integer(o->length));
	if (o->strength_bits) json_object_set_new(req, "strength_bits", json_integer(o->strength_bits));
	if (o->project) json_object_set_new(req, "project", json_string(o->project));
	if (o->environment) json_object_set_new(req, "environment", json_string(o->environment));
	if (o->system) json_object_set_new(req, "system", json_string(o->system));
	if (o->prefix) json_object_set_new(req, "prefix", json_string(o->prefix));
	if (o->exclude_ambiguous) json_object_set_new(req, "exclude_ambiguous", json_true());
	char *body = json_dumps(req, JSON_COMPACT);
	long status = request(c, "/api/generate", body, &gen);
	free(body);
	if (status != 200) {
		rc = status < 0 ? 1 : server_error(status, &gen);
		goto out;
	}
	if ((g = json_loads(gen.data, 0, NULL)) == NULL ||
	    json_string_value(json_object_get(g, "credential")) == NULL) {
		fprintf(stderr, "credsign: malformed response from the server\n");
		goto out;
	}
	if (o->certify) {
		json_t *creq = json_pack("{s:O}", "generation_session_id",
					 json_object_get(g, "generation_session_id"));
		body = json_dumps(creq, JSON_COMPACT);
		json_decref(creq);
		status = request(c, "/api/generate-certificate", body, &cert);
		free(body);
		if (status != 201) {
			rc = status < 0 ? 1 : server_error(status, &cert);
			fprintf(stderr, "credsign: the credential was NOT certified and is not printed\n");
			goto out;
		}
		if ((cj = json_loads(cert.data, 0, NULL)) == NULL) {
			fprintf(stderr, "credsign: malformed certificate response\n");
			goto out;
		}
	}
	const char *credential = json_string_value(json_object_get(g, "credential"));
	const char *cert_url = json_string_value(json_object_get(cj, "cert_url"));
	if (strcmp(o->format, "k8s-secret") == 0 || strcmp(o->format, "vault-kv") == 0) {
		if (print_handoff(o, g, cj) != 0)
			goto out;
	} else if (strcmp(o->format, "raw") == 0) {
		printf("%s\n", credential);
		if (cert_url != NULL)
			fprintf(stderr, "certificate: %s\n", cert_url);
	} else if (strcmp(o->format, "env") == 0) {
		print_shell_quoted("CREDSIGN_CREDENTIAL", credential);
		print_shell_quoted("CREDSIGN_SESSION_ID",
				   json_string_value(json_object_get(g, "generation_session_id")));
		if (cert_url != NULL) {
			print_shell_quoted("CREDSIGN_CERT_ID", json_string_value(json_object_get(cj, "cert_id")));
			print_shell_quoted("CREDSIGN_CERT_URL", cert_url);
		}
	} else {
		if (cj != NULL) {
			json_object_set(g, "cert_id", json_object_get(cj, "cert_id"));
			json_object_set(g, "cert_url", json_object_get(cj, "cert_url"));
			json_object_set(g, "certificate", json_object_get(cj, "certificate"));
		}
		char *text = json_dumps(g, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));
		if (text != NULL) {
			printf("%s\n", text);
			OPENSSL_cleanse(text, strlen(text));
			free(text);
		}
	}
	fflush(stdout);
	rc = 0;
out:
	json_decref(req);
	json_decref(g);
	json_decref(cj);
	buffer_wipe(&gen);
	buffer_wipe(&cert);
	return rc;
}

static int cmd_get(const conn *c, const char *path, int jws_only)
{
	buffer b = {0};
	long status = request(c, path, NULL, &b);
	int rc = 1;
	if (status == 200) {
		fputs(b.data != NULL ? b.data : "", stdout);
		fputc('\n', stdout);
		rc = 0;
	} else if (status > 0) {
		rc = server_error(status, &b);
	}
	(void)jws_only;
	buffer_wipe(&b);
	return rc;
}

/* ---- verify ---------------------------------------------------------------------- */

static char *read_file(const char *path, size_t max)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		perror(path);
		return NULL;
	}
	char *buf = calloc(1, max + 1);
	size_t n = buf != NULL ? fread(buf, 1, max, f) : 0;
	fclose(f);
	if (buf == NULL || n == max) {
		fprintf(stderr, "credsign: %s is empty or too large\n", path);
		free(buf);
		return NULL;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return buf;
}

/* Set while evidence verify runs a check: fail_verify records the refusal
 * there instead of printing it. */
static cs_evidence_why *verify_sink;

/* A refusal, printed once: "NOT VERIFIED (CODE): WHY". CODE is the stable
 * reason (scripts match it), WHY the explanation. Returns 1. */
__attribute__((format(printf, 2, 3))) static int fail_verify(const char *code, const char *fmt, ...)
{
	char why[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	for (char *p = why; *p != '\0'; p++) /* the texts come from files and servers */
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	if (verify_sink != NULL) {
		snprintf(verify_sink->code, sizeof(verify_sink->code), "%s", code);
		snprintf(verify_sink->why, sizeof(verify_sink->why), "%s", why);
		return 1;
	}
	fprintf(stderr, "credsign: NOT VERIFIED (%s): %s\n", code, why);
	return 1;
}

static int check_required_claims(json_t *claims)
{
	static const char *const top[] = {"iss", "jti", "iat", "preset", "standards", "credential",
					  "entropy_source", "subject", "generation_session_id",
					  "generated_at", "certified_at", NULL};
	for (int i = 0; top[i] != NULL; i++)
		if (json_object_get(claims, top[i]) == NULL) {
			fail_verify("claims_incomplete", "claim '%s' missing", top[i]);
			return 0;
		}
	/* node: the node that certified (optional: certificates from before
	 * several nodes have none); when there, a node id */
	json_t *node = json_object_get(claims, "node");
	const char *node_id = json_string_value(node);
	size_t node_len = node_id != NULL ? strlen(node_id) : 0;
	if (node != NULL && (node_id == NULL || node_len == 0 || node_len > 64 ||
			     strspn(node_id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != node_len)) {
		fail_verify("claims_incomplete", "claim 'node' is not a node id (1 to 64 of A-Z a-z 0-9 . _ -)");
		return 0;
	}
	json_t *cred = json_object_get(claims, "credential");
	json_t *commit = json_object_get(cred, "commitment");
	if (!json_is_integer(json_object_get(cred, "length")) ||
	    !json_is_number(json_object_get(cred, "entropy_bits")) ||
	    json_string_value(json_object_get(commit, "salt")) == NULL ||
	    json_string_value(json_object_get(commit, "value")) == NULL ||
	    json_string_value(json_object_get(commit, "alg")) == NULL ||
	    strcmp(json_string_value(json_object_get(commit, "alg")), "HMAC-SHA-256") != 0) {
		fail_verify("claims_incomplete", "credential claims incomplete");
		return 0;
	}
	return 1;
}

/* The credential must match the commitment, length, charset and classes. */
static int check_credential(json_t *claims, const char *credential)
{
	json_t *cred = json_object_get(claims, "credential");
	json_t *commit = json_object_get(cred, "commitment");
	uint8_t *salt = NULL, *value = NULL, mac[32];
	size_t salt_len = 0, value_len = 0;
	unsigned int mac_len = 0;
	int ok = 0;
	if (cs_b64url_decode(json_string_value(json_object_get(commit, "salt")), &salt, &salt_len) != CS_OK ||
	    cs_b64url_decode(json_string_value(json_object_get(commit, "value")), &value, &value_len) != CS_OK ||
	    value_len != 32 ||
	    HMAC(EVP_sha256(), salt, (int)salt_len, (const uint8_t *)credential, strlen(credential), mac,
		 &mac_len) == NULL) {
		fail_verify("malformed", "malformed commitment");
		goto out;
	}
	if (CRYPTO_memcmp(mac, value, 32) != 0) {
		fail_verify("credential_mismatch", "the credential does not match the certificate's commitment");
		goto out;
	}
	const char *prefix = json_string_value(json_object_get(cred, "prefix"));
	const char *random_part = credential;
	if (prefix != NULL) {
		size_t pl = strlen(prefix);
		if (strncmp(credential, prefix, pl) != 0 || credential[pl] != '_') {
			fail_verify("credential_mismatch", "the credential lacks the certified prefix");
			goto out;
		}
		random_part = credential + pl + 1;
	}
	const char *unit = json_string_value(json_object_get(cred, "length_unit"));
	if (unit != NULL && strcmp(unit, "words") == 0) {
		/* a passphrase: the commitment above proves it. Its words are
		 * joined by the separator, and a word of the list may contain the
		 * separator too (EFF: t-shirt, yo-yo): without the list, the parts
		 * between separators must number at least the certified words,
		 * none of them empty */
		const char *sep = json_string_value(json_object_get(cred, "separator"));
		json_int_t parts = 1, words = json_integer_value(json_object_get(cred, "length"));
		size_t sl = sep != NULL ? strlen(sep) : 0;
		int empty = sl == 0 || random_part[0] == '\0';
		for (const char *p = random_part; sl > 0 && (p = strstr(p, sep)) != NULL; p += sl) {
			parts++;
			empty |= p == random_part || p[sl] == '\0' || strncmp(p + sl, sep, sl) == 0;
		}
		if (empty || parts < words) {
			fail_verify("credential_mismatch", "the passphrase has fewer words than the certificate");
			goto out;
		}
		ok = 1;
		goto out;
	}
	const char *charset = json_string_value(json_object_get(cred, "charset"));
	if ((json_int_t)strlen(random_part) != json_integer_value(json_object_get(cred, "length"))) {
		fail_verify("credential_mismatch", "the credential's length differs from the certificate");
		goto out;
	}
	unsigned seen = 0, want = 0;
	for (const char *p = random_part; *p; p++) {
		if (charset != NULL && strchr(charset, *p) == NULL) {
			fail_verify("credential_mismatch", "the credential has a character outside the certified charset");
			goto out;
		}
		seen |= cs_char_class(*p);
	}
	json_t *cl;
	size_t i;
	json_array_foreach(json_object_get(cred, "classes"), i, cl) {
		const char *n = json_string_value(cl);
		want |= n == NULL ? 0 : strcmp(n, "upper") == 0 ? CS_CLASS_UPPER
				  : strcmp(n, "lower") == 0 ? CS_CLASS_LOWER
				  : strcmp(n, "digit") == 0 ? CS_CLASS_DIGIT
							    : CS_CLASS_SPECIAL;
	}
	if ((seen & want) != want) {
		fail_verify("credential_mismatch", "the credential lacks a certified character class");
		goto out;
	}
	ok = 1;
out:
	free(salt);
	free(value);
	return ok;
}

/* ---- verify: the signing key's state, x5c, the revocation list --------------------- */

#define JWS_MAX 65536
#define JWKS_MAX (1 << 20)
/* a revocation list of ~100,000 certificates */
#define REVOCATIONS_MAX (16 << 20)
/* how far a revocation list's iat may lie ahead of this clock */
#define CLOCK_SKEW_S 300
/* How far a certificate's certified_at and iat (a revocation list's iat)
 * may lie outside its signing key's active period, the JWKS's activated_at
 * to retired_at. Those dates are the ceremony's execution time, stamped by
 * credsign-admin's clock; the daemon learns of the change by polling the
 * store each second, a request in flight at the switch finishes with the
 * key it took at its start (certified_at is stamped shortly after, once the
 * request reached the certify service), and each node sharing the store
 * stamps with its own clock. One second of polling, the request's queueing
 * and the clock skew between the administration host and the nodes are far
 * below 5 minutes; a retired key that signs afterwards (a node that never
 * switched, a key left in the token and used) does so minutes to years
 * later, and is refused. */
#define KEY_SWITCH_GRACE_S 300
/* certificates in a header's x5c chain (leaf, intermediates, root) */
#define X5C_MAX 10

typedef struct {
	const char *cert;        /* the certificate (compact JWS) file */
	const char *jwks;        /* the JWKS file; NULL: fetched (online) */
	const char *credential;  /* the credential file, or NULL */
	const char *revocations; /* the revocation list file, or NULL */
	int online;              /* fetch the revocation list (and the JWKS unless given) */
	const char *x5c_ca;      /* trust anchors (PEM) the x5c chain must validate to, or NULL */
} verify_opts;

/* A text for printing: "?" when the claim is absent or not a string. */
static const char *text_or(const json_t *v, const char *absent)
{
	const char *s = json_string_value(v);
	return s != NULL ? s : absent;
}

/* RFC 3339 UTC of a NumericDate (seconds since the epoch). */
static void format_time(json_int_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (gmtime_r(&tt, &tm) == NULL || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, 32, "%lld", (long long)t);
}

/* An RFC 3339 UTC time "YYYY-MM-DDTHH:MM:SS[.fraction]Z" (as credsignd
 * writes them: certified_at, the JWKS dates) in milliseconds since the
 * epoch; 0 when it is not exactly that (a date that does not exist too). */
static int parse_utc(const char *s, int64_t *ms)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd";
	int f[6] = {0}, k = 0;
	if (s == NULL || strlen(s) < sizeof(shape))
		return 0;
	for (size_t i = 0; i < sizeof(shape) - 1; i++) {
		if (shape[i] != 'd') {
			if (s[i] != shape[i])
				return 0;
			k++;
		} else if (s[i] < '0' || s[i] > '9') {
			return 0;
		} else {
			f[k] = f[k] * 10 + (s[i] - '0');
		}
	}
	const char *p = s + sizeof(shape) - 1;
	int frac = 0, digits = 0;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 3)
				frac = frac * 10 + (*p - '0');
	if ((s[sizeof(shape) - 1] == '.' && (digits == 0 || digits > 9)) || strcmp(p, "Z") != 0)
		return 0;
	for (; digits < 3; digits++)
		frac *= 10;
	struct tm tm = {.tm_year = f[0] - 1900, .tm_mon = f[1] - 1, .tm_mday = f[2],
			.tm_hour = f[3], .tm_min = f[4], .tm_sec = f[5]};
	struct tm back = tm;
	time_t t = timegm(&back);
	/* timegm normalizes 2026-02-30 to 2026-03-02: a date that exists
	 * comes back unchanged */
	if (t == (time_t)-1 || f[1] < 1 || f[1] > 12 || back.tm_mday != tm.tm_mday || back.tm_mon != tm.tm_mon ||
	    back.tm_hour != tm.tm_hour || back.tm_min != tm.tm_min || back.tm_sec != tm.tm_sec)
		return 0;
	*ms = (int64_t)t * 1000 + frac;
	return 1;
}

/* The JWKS member whose kid is `kid`; NULL when none (or kid is NULL). */
static json_t *jwks_find(json_t *jwks, const char *kid)
{
	json_t *k;
	size_t i;
	json_array_foreach(json_object_get(jwks, "keys"), i, k) {
		const char *kk = json_string_value(json_object_get(k, "kid"));
		if (kid != NULL && kk != NULL && strcmp(kid, kk) == 0)
			return k;
	}
	return NULL;
}

/* A JWKS: {"keys":[...]} whose members are objects with distinct kids (two
 * members of one kid could disagree about its state). */
static int jwks_valid(json_t *jwks, const char *source)
{
	json_t *keys = json_object_get(jwks, "keys"), *k;
	size_t i;
	if (!json_is_array(keys)) {
		fail_verify("jwks_invalid", "%s is not a JSON Web Key Set", source);
		return 0;
	}
	json_array_foreach(keys, i, k) {
		const char *kid = json_string_value(json_object_get(k, "kid"));
		if (!json_is_object(k) || (kid != NULL && jwks_find(jwks, kid) != k)) {
			fail_verify("jwks_invalid", "%s lists the kid %s more than once or a member that is not a key",
				    source, kid != NULL ? kid : "(none)");
			return 0;
		}
	}
	return 1;
}

/* The public key of the JWKS member `kid` names, when its signatures may be
 * trusted: an EC P-256 key whose RFC 7638 thumbprint is the kid, with no
 * status (a JWKS from before key states) or the status active or retired.
 * `what` names the signed document ("certificate", "revocation list"). On
 * refusal prints it and returns NULL: with the reason `code`, or when code
 * is NULL the specific reason (unknown_kid, kid_mismatch, key_compromised,
 * key_status). The key is the caller's; *member (may be NULL) the entry. */
static EVP_PKEY *trusted_key(json_t *jwks, const char *kid, const char *what, const char *code, json_t **member)
{
	json_t *key = jwks_find(jwks, kid);
	EVP_PKEY *pub = key != NULL ? cs_jwk_to_pkey(key, NULL) : NULL;
	char thumb[44];
	if (pub == NULL) {
		fail_verify(code ?: "unknown_kid", "no usable key in the JWKS has the %s's kid", what);
		return NULL;
	}
	if (cs_jwk_thumbprint(pub, thumb) != CS_OK || strcmp(thumb, kid) != 0) {
		fail_verify(code ?: "kid_mismatch", "the key's RFC 7638 thumbprint does not match its kid");
		goto refused;
	}
	const char *status = json_string_value(json_object_get(key, "status"));
	const char *since = json_string_value(json_object_get(key, "compromised_at"));
	if (status != NULL && strcmp(status, "compromised") == 0) {
		if (code == NULL)
			fail_verify("key_compromised", "signing key %s is compromised since %s", kid,
				    since != NULL ? since : "an unknown time");
		else
			fail_verify(code, "the %s's signing key %s is compromised since %s", what, kid,
				    since != NULL ? since : "an unknown time");
		goto refused;
	}
	if (status != NULL && strcmp(status, "active") != 0 && strcmp(status, "retired") != 0) {
		fail_verify(code ?: "key_status", "the %s's signing key %s has the status '%s': only active and "
			    "retired keys are trusted", what, kid, status);
		goto refused;
	}
	if (member != NULL)
		*member = key;
	return pub;
refused:
	EVP_PKEY_free(pub);
	return NULL;
}

/* A signing key's active period by the JWKS: activated_at (from) and
 * retired_at (to), each when the JWKS gives it (older appliances give
 * neither). */
typedef struct {
	int has_from, has_to;
	int64_t from_ms, to_ms;
	char text[160]; /* "from A to R", "from A (not retired)", ... */
} key_period;

/* The period of the JWKS member `key`; 0 after refusing (jwks_invalid) a
 * date that is not an RFC 3339 UTC time, or a retirement before the
 * activation. */
static int key_period_of(const json_t *key, const char *kid, key_period *w)
{
	static const char *const names[2] = {"activated_at", "retired_at"};
	const char *text[2] = {NULL, NULL};
	int64_t at[2] = {0, 0};
	memset(w, 0, sizeof(*w));
	for (int i = 0; i < 2; i++) {
		const json_t *v = json_object_get(key, names[i]);
		if (v == NULL || json_is_null(v))
			continue;
		if ((text[i] = json_string_value(v)) == NULL || !parse_utc(text[i], &at[i])) {
			fail_verify("jwks_invalid", "the JWKS's %s of key %s is not an RFC 3339 UTC time", names[i],
				    kid);
			return 0;
		}
	}
	if (text[0] != NULL && text[1] != NULL && at[1] < at[0]) {
		fail_verify("jwks_invalid", "the JWKS says key %s was retired (%s) before it was activated (%s)", kid,
			    text[1], text[0]);
		return 0;
	}
	w->has_from = text[0] != NULL;
	w->has_to = text[1] != NULL;
	w->from_ms = at[0];
	w->to_ms = at[1];
	if (w->has_from && w->has_to)
		snprintf(w->text, sizeof(w->text), "from %s to %s", text[0], text[1]);
	else if (w->has_from)
		snprintf(w->text, sizeof(w->text), "from %s (not retired)", text[0]);
	else if (w->has_to)
		snprintf(w->text, sizeof(w->text), "until %s (activation date unknown)", text[1]);
	return 1;
}

/* A NumericDate in milliseconds, clamped (a forged date must not overflow). */
static int64_t ms_of(json_int_t seconds)
{
	return seconds > INT64_MAX / 1000 ? INT64_MAX : seconds < INT64_MIN / 1000 ? INT64_MIN : (int64_t)seconds * 1000;
}

/* Whether t_ms lies in the period, widened by KEY_SWITCH_GRACE_S each side. */
static int in_period(const key_period *w, int64_t t_ms)
{
	const int64_t grace = (int64_t)KEY_SWITCH_GRACE_S * 1000;
	return (!w->has_from || t_ms >= w->from_ms - grace) && (!w->has_to || t_ms <= w->to_ms + grace);
}

/* The certificate's times: certified_at (RFC 3339 UTC) and iat (NumericDate);
 * 0 after refusing (claims_incomplete) either. */
static int certificate_times(const json_t *claims, int64_t *certified_ms, json_int_t *iat)
{
	if (!parse_utc(json_string_value(json_object_get(claims, "certified_at")), certified_ms)) {
		fail_verify("claims_incomplete", "claim 'certified_at' is not an RFC 3339 UTC time");
		return 0;
	}
	const json_t *v = json_object_get(claims, "iat");
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		fail_verify("claims_incomplete", "claim 'iat' is not a NumericDate (whole seconds)");
		return 0;
	}
	*iat = json_integer_value(v);
	return 1;
}

/* The certificate must be certified (certified_at and iat, from
 * certificate_times) while its key was active by the JWKS: a retired key's
 * certificates verify forever, but only those it signed before it was
 * retired (and none before it was activated). Describes the check in
 * summary[n] and returns 1, or prints the refusal (key_not_active) and
 * returns 0. A key without dates is not checked (said in the summary). */
static int check_key_period(const json_t *key, const char *kid, const json_t *claims, int64_t certified_ms,
			    json_int_t iat, char *summary, size_t n)
{
	key_period w;
	if (!key_period_of(key, kid, &w))
		return 0;
	const char *certified = json_string_value(json_object_get(claims, "certified_at"));
	if (!w.has_from && !w.has_to) {
		snprintf(summary, n, "not checked: the JWKS gives no activation or retirement date for this key "
			 "(an older appliance)");
		return 1;
	}
	if (!in_period(&w, certified_ms)) {
		fail_verify("key_not_active", "certificate certified at %s, but key %s was active %s", certified, kid,
			    w.text);
		return 0;
	}
	if (!in_period(&w, ms_of(iat))) {
		char iat_text[32];
		format_time(iat, iat_text);
		fail_verify("key_not_active", "certificate issued at %s (its iat; certified_at %s), but key %s was "
			    "active %s", iat_text, certified, kid, w.text);
		return 0;
	}
	snprintf(summary, n, "%s; certified within it (grace %d s)", w.text, KEY_SWITCH_GRACE_S);
	return 1;
}

/* One DER certificate of an x5c header (RFC 7515 4.1.6: standard base64,
 * padded); NULL when it is not exactly that. */
static X509 *x5c_certificate(const char *b64)
{
	size_t n = b64 != NULL ? strlen(b64) : 0;
	if (n == 0 || n % 4 != 0 || n > JWS_MAX || strspn(b64, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
								"0123456789+/=") != n)
		return NULL;
	uint8_t *der = malloc(n / 4 * 3);
	X509 *x = NULL;
	int len = der != NULL ? EVP_DecodeBlock(der, (const uint8_t *)b64, (int)n) : -1;
	if (len > 0) {
		len -= (b64[n - 1] == '=') + (b64[n - 2] == '=');
		const uint8_t *p = der;
		x = d2i_X509(NULL, &p, len);
		if (x != NULL && p != der + len) {
			X509_free(x);
			x = NULL;
		}
	}
	free(der);
	return x;
}

/* A certificate name for printing (RFC 2253, control and non-ASCII
 * characters escaped) into out[n]. */
static void name_text(const X509_NAME *name, char *out, size_t n)
{
	BIO *bio = BIO_new(BIO_s_mem());
	int got = -1;
	if (bio != NULL && X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0)
		got = BIO_read(bio, out, (int)n - 1);
	out[got > 0 ? got : 0] = '\0';
	BIO_free(bio);
}

/* The trust anchors of --x5c-ca: every certificate of a PEM file (a root,
 * or an intermediate CA the operator pins). NULL after printing why. */
static X509_STORE *load_anchors(const char *path)
{
	BIO *in = BIO_new_file(path, "r");
	X509_STORE *store = in != NULL ? X509_STORE_new() : NULL;
	X509 *x = NULL;
	int count = 0, added = 1;
	while (store != NULL && (x = PEM_read_bio_X509(in, NULL, NULL, NULL)) != NULL) {
		added &= X509_STORE_add_cert(store, x) == 1;
		count++;
		X509_free(x);
	}
	/* the end of the file, not a damaged certificate */
	unsigned long e = ERR_peek_last_error();
	int eof = ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
	int ok = store != NULL && count > 0 && added && eof;
	if (in == NULL)
		fprintf(stderr, "credsign: --x5c-ca %s: %s\n", path, strerror(errno));
	else if (!ok)
		fprintf(stderr, "credsign: --x5c-ca %s: %s\n", path,
			count == 0 && eof ? "no PEM certificate in it" : "not a file of PEM certificates");
	ERR_clear_error();
	BIO_free(in);
	if (!ok) {
		X509_STORE_free(store);
		return NULL;
	}
	return store;
}

/* The x5c chain must validate to a trust anchor of `anchors` (named by
 * `anchors_file`) at the time the certificate was certified (X509_verify_cert:
 * signatures, validity, CA constraints; the chain's revocation is not
 * checked), and the leaf's keyUsage, when it has one, must allow
 * digitalSignature. Describes the anchor in summary[n]; 0 after printing
 * the refusal (x5c_untrusted). */
static int x5c_validate(STACK_OF(X509) *chain, X509_STORE *anchors, const char *anchors_file, int64_t at_ms,
			char *summary, size_t n)
{
	X509 *leaf = sk_X509_value(chain, 0);
	STACK_OF(X509) *untrusted = sk_X509_dup(chain);
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	char at[32], subject[256] = "", anchor[256] = "";
	int ok = 0;
	format_time((json_int_t)(at_ms / 1000), at);
	if (untrusted == NULL || ctx == NULL) {
		fail_verify("x5c_untrusted", "out of memory validating the x5c chain");
		goto out;
	}
	(void)sk_X509_shift(untrusted); /* the leaf */
	if ((X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE) == 0) {
		fail_verify("x5c_untrusted", "the x5c leaf certificate's keyUsage does not allow digitalSignature");
		goto out;
	}
	if (X509_STORE_CTX_init(ctx, anchors, leaf, untrusted) != 1) {
		fail_verify("x5c_untrusted", "cannot set up the validation of the x5c chain");
		goto out;
	}
	X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_time(param, (time_t)(at_ms / 1000));
	/* a certificate of the anchors file is trusted as it is: an
	 * intermediate CA the operator pins anchors the chain too */
	X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
	if (X509_verify_cert(ctx) != 1) {
		int err = X509_STORE_CTX_get_error(ctx);
		X509 *bad = X509_STORE_CTX_get_current_cert(ctx);
		if (bad != NULL)
			name_text(X509_get_subject_name(bad), subject, sizeof(subject));
		fail_verify("x5c_untrusted", "the x5c chain does not validate to a trust anchor of %s at %s "
			    "(certified_at): %s%s%s", anchors_file, at, X509_verify_cert_error_string(err),
			    subject[0] != '\0' ? ", at " : "", subject);
		goto out;
	}
	STACK_OF(X509) *path = X509_STORE_CTX_get0_chain(ctx);
	name_text(X509_get_subject_name(sk_X509_value(path, sk_X509_num(path) - 1)), anchor, sizeof(anchor));
	snprintf(summary, n, "chain validated to the trust anchor %s (%s) as of %s, when it was certified "
		 "(the chain's revocation not checked)", anchor, anchors_file, at);
	ok = 1;
out:
	X509_STORE_CTX_free(ctx);
	sk_X509_free(untrusted);
	ERR_clear_error();
	return ok;
}

/* The (signed) header's x5c, when present: the certificate verifies against
 * the JWKS by its kid, and the chain's leaf must carry that very key. The
 * chain itself proves nothing unless validated: with `anchors` (--x5c-ca)
 * it must validate to one of them at at_ms (and must be present); without,
 * the summary says it was not. Writes the summary line to summary[n] (""
 * without x5c). 1 when it holds, 0 after printing the refusal. */
static int check_x5c(const json_t *header, EVP_PKEY *pub, X509_STORE *anchors, const char *anchors_file,
		     int64_t at_ms, char *summary, size_t n)
{
	const json_t *x5c = json_object_get(header, "x5c"), *v;
	STACK_OF(X509) *chain = sk_X509_new_null();
	char leaf_name[256], anchored[768];
	size_t i;
	int ok = 0;
	summary[0] = '\0';
	if (x5c == NULL && anchors == NULL) {
		ok = 1;
		goto out;
	}
	if (x5c == NULL) {
		fail_verify("x5c_untrusted", "the certificate's header carries no x5c chain to validate to %s",
			    anchors_file);
		goto out;
	}
	json_array_foreach(x5c, i, v) {
		X509 *x = i < X5C_MAX ? x5c_certificate(json_string_value(v)) : NULL;
		if (x == NULL || chain == NULL || !sk_X509_push(chain, x)) {
			X509_free(x);
			break;
		}
	}
	X509 *leaf = chain != NULL ? sk_X509_value(chain, 0) : NULL;
	EVP_PKEY *leaf_key = leaf != NULL ? X509_get0_pubkey(leaf) : NULL;
	if (leaf_key == NULL || !json_is_array(x5c) || (size_t)sk_X509_num(chain) != json_array_size(x5c)) {
		fail_verify("x5c_mismatch", "the header's x5c is not a list of at most %d base64 DER certificates",
			    X5C_MAX);
		goto out;
	}
	if (EVP_PKEY_eq(leaf_key, pub) != 1) {
		fail_verify("x5c_mismatch", "the x5c leaf certificate's public key is not the JWKS key of the kid");
		goto out;
	}
	name_text(X509_get_subject_name(leaf), leaf_name, sizeof(leaf_name));
	if (anchors == NULL) {
		snprintf(summary, n, "leaf %s holds the signing key (chain not validated against any trust anchor)",
			 leaf_name);
	} else {
		if (!x5c_validate(chain, anchors, anchors_file, at_ms, anchored, sizeof(anchored)))
			goto out;
		snprintf(summary, n, "leaf %s holds the signing key; %s", leaf_name, anchored);
	}
	ok = 1;
out:
	sk_X509_pop_free(chain, X509_free);
	ERR_clear_error();
	return ok;
}

/* The revocation list's claims: {iss, iat, next_update, revoked:[{id,
 * revoked_at, reason}]}, every member of the right type. */
static int revocation_claims_valid(const json_t *rl)
{
	const json_t *revoked = json_object_get(rl, "revoked"), *e;
	size_t i;
	if (json_string_value(json_object_get(rl, "iss")) == NULL || !json_is_integer(json_object_get(rl, "iat")) ||
	    !json_is_integer(json_object_get(rl, "next_update")) || !json_is_array(revoked))
		return 0;
	json_array_foreach(revoked, i, e) {
		if (json_string_value(json_object_get(e, "id")) == NULL ||
		    json_string_value(json_object_get(e, "revoked_at")) == NULL ||
		    json_string_value(json_object_get(e, "reason")) == NULL)
			return 0;
	}
	return 1;
}

/* The clock check_revocations judges by; 0: now. */
static json_int_t verify_now;

/* The revocation list (compact JWS, typ credsign-revocations+jwt) must verify
 * with a trusted key of the JWKS and be the certificate's issuer's; then a
 * certificate it lists is revoked (revocation is final: even a stale list
 * proves it), and otherwise the list must be current. Describes the list in
 * summary[n] and returns 1, or prints the refusal and returns 0. */
static int check_revocations(const char *list, json_t *jwks, const json_t *claims, char *summary, size_t n)
{
	json_t *peek = NULL, *header = NULL, *rl = NULL, *key = NULL;
	EVP_PKEY *pub = NULL;
	int ok = 0;
	const char *kid = NULL;
	key_period w;
	if (cs_jws_peek_header(list, &peek) != CS_OK) {
		fail_verify("revocations_invalid", "the revocation list is not a JWS compact serialization");
		goto out;
	}
	kid = json_string_value(json_object_get(peek, "kid"));
	if ((pub = trusted_key(jwks, kid, "revocation list", "revocations_invalid", &key)) == NULL)
		goto out;
	cs_err r = cs_jws_es256_verify(list, pub, &header, &rl);
	if (r != CS_OK) {
		fail_verify("revocations_invalid", "the revocation list's signature does not verify with key %s (%s)",
			    kid, r == CS_E_SIGNATURE_INVALID ? "bad signature" : "malformed JWS or alg not ES256");
		goto out;
	}
	const char *typ = json_string_value(json_object_get(header, "typ"));
	if (typ == NULL || strcmp(typ, "credsign-revocations+jwt") != 0) {
		fail_verify("revocations_invalid", "the revocation list's header typ is not credsign-revocations+jwt");
		goto out;
	}
	if (!revocation_claims_valid(rl)) {
		fail_verify("revocations_invalid", "the revocation list's claims are incomplete "
			    "(iss, iat, next_update, revoked: [{id, revoked_at, reason}])");
		goto out;
	}
	const char *iss = json_string_value(json_object_get(rl, "iss"));
	const char *cert_iss = json_string_value(json_object_get(claims, "iss"));
	if (cert_iss == NULL || strcmp(iss, cert_iss) != 0) {
		fail_verify("revocations_invalid", "the revocation list's issuer %s is not the certificate's (%s)", iss,
			    cert_iss != NULL ? cert_iss : "none");
		goto out;
	}
	json_int_t iat = json_integer_value(json_object_get(rl, "iat"));
	json_int_t next = json_integer_value(json_object_get(rl, "next_update"));
	/* an evidence package's list is judged as of the package's creation */
	json_int_t now = verify_now != 0 ? verify_now : (json_int_t)time(NULL);
	char iat_text[32], next_text[32];
	format_time(iat, iat_text);
	format_time(next, next_text);
	if (next <= iat || iat > now + CLOCK_SKEW_S) {
		fail_verify("revocations_invalid", "the revocation list's times are impossible (issued %s, next update %s): "
			    "issued in the future, or due before it was issued", iat_text, next_text);
		goto out;
	}
	/* signed while its key was active, like a certificate */
	if (!key_period_of(key, kid, &w))
		goto out;
	if (!in_period(&w, ms_of(iat))) {
		fail_verify("revocations_invalid", "the revocation list was issued at %s, but its signing key %s was "
			    "active %s", iat_text, kid, w.text);
		goto out;
	}
	const char *jti = json_string_value(json_object_get(claims, "jti"));
	const json_t *revoked = json_object_get(rl, "revoked"), *e;
	size_t i;
	json_array_foreach(revoked, i, e) {
		if (jti != NULL && strcmp(json_string_value(json_object_get(e, "id")), jti) == 0) {
			fail_verify("revoked", "certificate %s revoked at %s: %s", jti,
				    json_string_value(json_object_get(e, "revoked_at")),
				    json_string_value(json_object_get(e, "reason")));
			goto out;
		}
	}
	if (next <= now) {
		fail_verify("revocations_stale", "the revocation list issued %s was due to be replaced at %s: "
			    "fetch a current one", iat_text, next_text);
		goto out;
	}
	snprintf(summary, n, "not revoked (list of %s by key %s, %zu revoked, next update %s%s)", iat_text, kid,
		 json_array_size(revoked), next_text,
		 w.has_from || w.has_to ? "" : "; the key's active period not checked: no dates in the JWKS");
	ok = 1;
out:
	json_decref(peek);
	json_decref(header);
	json_decref(rl);
	EVP_PKEY_free(pub);
	return ok;
}

/* GET PATH from the appliance into out, at most max bytes; 0 on 200 with a
 * body, else -1 (the failure printed). */
static int fetch(const conn *c, const char *path, size_t max, buffer *out)
{
	out->max = max;
	long status = request(c, path, NULL, out);
	if (status == 200 && out->data != NULL) {
		while (out->len > 0 && strchr("\r\n ", out->data[out->len - 1]) != NULL)
			out->data[--out->len] = '\0';
		return 0;
	}
	if (status > 0)
		server_error(status, out);
	return -1;
}

/* The JWKS and the revocation list (NULL when not asked for) from their
 * files or the appliance; 0, or -1 after printing the failure. */
static int verify_inputs(const conn *c, const verify_opts *o, char **jwks, char **list)
{
	buffer b = {0};
	*jwks = *list = NULL;
	if (o->jwks != NULL)
		*jwks = read_file(o->jwks, JWKS_MAX);
	else if (fetch(c, "/.well-known/jwks.json", JWKS_MAX, &b) == 0)
		*jwks = b.data;
	else
		fail_verify("jwks_unavailable", "cannot fetch the JWKS from %s", c->url);
	if (*jwks == NULL)
		goto fail;
	memset(&b, 0, sizeof(b));
	if (o->revocations != NULL) {
		if ((*list = read_file(o->revocations, REVOCATIONS_MAX)) == NULL)
			goto fail;
	} else if (o->online) {
		if (fetch(c, "/.well-known/credsign-revocations", REVOCATIONS_MAX, &b) != 0) {
			fail_verify("revocations_unavailable", "cannot fetch the revocation list from %s", c->url);
			goto fail;
		}
		*list = b.data;
	}
	return 0;
fail:
	buffer_wipe(&b);
	free(*jwks);
	*jwks = NULL;
	return -1;
}

/* What verify checked beyond the signature, for its summary. */
typedef struct {
	char period[512];     /* the key's active period (check_key_period) */
	char x5c[1280];       /* the x5c chain ("" without one) */
	char revocation[512]; /* the revocation list ("": not checked) */
} verify_summary;

static void print_verified(const json_t *claims, const char *kid, const json_t *key, const verify_summary *v,
			   const char *credential)
{
	const json_t *cred = json_object_get(claims, "credential");
	const char *unit = json_string_value(json_object_get(cred, "length_unit"));
	printf("VERIFIED certificate %s\n", text_or(json_object_get(claims, "jti"), "?"));
	printf("  issuer:        %s\n", text_or(json_object_get(claims, "iss"), "?"));
	printf("  signing key:   %s (%s)\n", kid, text_or(json_object_get(key, "status"), "status unknown"));
	printf("  key active:    %s\n", v->period);
	if (v->x5c[0] != '\0')
		printf("  x5c:           %s\n", v->x5c);
	printf("  preset:        %s\n", text_or(json_object_get(claims, "preset"), "?"));
	printf("  credential:    %s, %lld %s, %.2f bits\n", text_or(json_object_get(cred, "type"), "?"),
	       (long long)json_integer_value(json_object_get(cred, "length")), unit != NULL ? unit : "characters",
	       json_number_value(json_object_get(cred, "entropy_bits")));
	printf("  subject:       %s\n", text_or(json_object_get(json_object_get(claims, "subject"), "identity"), "?"));
	printf("  generated at:  %s\n", text_or(json_object_get(claims, "generated_at"), "?"));
	printf("  certified at:  %s\n", text_or(json_object_get(claims, "certified_at"), "?"));
	if (json_object_get(claims, "node") != NULL)
		printf("  certified by:  node %s\n", text_or(json_object_get(claims, "node"), "?"));
	printf("  revocation:    %s\n", v->revocation[0] != '\0' ? v->revocation
					: "not checked (--online or --revocations FILE checks it)");
	if (credential != NULL && unit != NULL && strcmp(unit, "words") == 0)
		printf("  credential matches the commitment and its separators give at least the certified words\n");
	else if (credential != NULL)
		printf("  credential matches the commitment, length, charset and classes\n");
}

/* The checks of verify on a certificate in memory (jwks checked by
 * jwks_valid): 1 with *claims_out (the caller's) and *key_out (the JWKS
 * member, borrowed) when it verifies, else 0 after fail_verify. */
static int verify_certificate(const char *jws, json_t *jwks, X509_STORE *anchors, const char *anchors_file,
			      const char *list, const char *credential, json_t **claims_out, json_t **key_out,
			      verify_summary *sum)
{
	json_t *header = NULL, *claims = NULL, *peek = NULL, *key = NULL;
	EVP_PKEY *pub = NULL;
	int64_t certified_ms = 0;
	json_int_t iat = 0;
	int ok = 0;
	if (cs_jws_peek_header(jws, &peek) != CS_OK) {
		fail_verify("malformed", "not a JWS compact serialization");
		goto out;
	}
	const char *kid = json_string_value(json_object_get(peek, "kid"));
	if ((pub = trusted_key(jwks, kid, "certificate", NULL, &key)) == NULL)
		goto out;
	cs_err r = cs_jws_es256_verify(jws, pub, &header, &claims);
	if (r != CS_OK) {
		if (r == CS_E_SIGNATURE_INVALID)
			fail_verify("bad_signature", "bad signature");
		else
			fail_verify("malformed", "malformed JWS or alg not ES256");
		goto out;
	}
	const char *typ = json_string_value(json_object_get(header, "typ"));
	if (typ == NULL || strcmp(typ, "credsign-cert+jwt") != 0) {
		fail_verify("wrong_typ", "header typ is not credsign-cert+jwt");
		goto out;
	}
	if (!check_required_claims(claims) || !certificate_times(claims, &certified_ms, &iat) ||
	    !check_key_period(key, kid, claims, certified_ms, iat, sum->period, sizeof(sum->period)) ||
	    !check_x5c(header, pub, anchors, anchors_file, certified_ms, sum->x5c, sizeof(sum->x5c)) ||
	    (list != NULL && !check_revocations(list, jwks, claims, sum->revocation, sizeof(sum->revocation))) ||
	    (credential != NULL && !check_credential(claims, credential)))
		goto out;
	*claims_out = claims;
	*key_out = key;
	claims = NULL;
	ok = 1;
out:
	json_decref(header);
	json_decref(claims);
	json_decref(peek);
	EVP_PKEY_free(pub);
	return ok;
}

static int cmd_verify(const conn *c, const verify_opts *o)
{
	char *jws = read_file(o->cert, JWS_MAX), *jwks_text = NULL, *list = NULL;
	char *credential = o->credential != NULL ? read_file(o->credential, CS_CREDENTIAL_MAX + 64) : NULL;
	json_t *jwks = NULL, *claims = NULL, *key = NULL;
	X509_STORE *anchors = NULL;
	verify_summary sum = {.revocation = ""};
	int rc = 1;
	if (jws == NULL || (o->credential != NULL && credential == NULL) ||
	    (o->x5c_ca != NULL && (anchors = load_anchors(o->x5c_ca)) == NULL) ||
	    verify_inputs(c, o, &jwks_text, &list) != 0)
		goto out;
	if ((jwks = json_loads(jwks_text, 0, NULL)) == NULL) {
		fail_verify("jwks_invalid", "%s is not a JSON Web Key Set",
			    o->jwks != NULL ? "the JWKS file" : "the JWKS the appliance served");
		goto out;
	}
	if (!jwks_valid(jwks, o->jwks != NULL ? "the JWKS file" : "the JWKS the appliance served") ||
	    !verify_certificate(jws, jwks, anchors, o->x5c_ca, list, credential, &claims, &key, &sum))
		goto out;
	print_verified(claims, json_string_value(json_object_get(key, "kid")), key, &sum, credential);
	rc = 0;
out:
	if (credential != NULL) {
		OPENSSL_cleanse(credential, strlen(credential));
		free(credential);
	}
	free(jws);
	free(jwks_text);
	free(list);
	json_decref(jwks);
	json_decref(claims);
	X509_STORE_free(anchors);
	return rc;
}

/* ---- evidence verify: the checks above for a package (evidence.h) ------------------ */

static int evidence_key(json_t *jwks, const char *kid, const char *what, int64_t at_ms, EVP_PKEY **pub,
			cs_evidence_why *why)
{
	json_t *key = NULL;
	key_period w;
	verify_sink = why;
	*pub = jwks_valid(jwks, "the JWKS") ? trusted_key(jwks, kid, what, NULL, &key) : NULL;
	if (*pub != NULL && (!key_period_of(key, kid, &w) || !in_period(&w, at_ms))) {
		if (why->code[0] == '\0')
			fail_verify("key_not_active", "the %s was created while key %s was not active (%s; grace %d s)",
				    what, kid, w.text, KEY_SWITCH_GRACE_S);
		EVP_PKEY_free(*pub);
		*pub = NULL;
	}
	verify_sink = NULL;
	return *pub != NULL;
}

static int evidence_cert(const char *jws, json_t *jwks, json_t **claims, cs_evidence_why *why)
{
	json_t *key = NULL;
	verify_summary sum = {.revocation = ""};
	verify_sink = why;
	int ok = strlen(jws) < JWS_MAX && jwks_valid(jwks, "the JWKS") &&
		 verify_certificate(jws, jwks, NULL, NULL, NULL, NULL, claims, &key, &sum);
	if (!ok && why->code[0] == '\0')
		fail_verify("malformed", "larger than %d bytes", JWS_MAX);
	verify_sink = NULL;
	return ok;
}

static int evidence_revocations(const char *list, json_t *jwks, const char *iss, int64_t at_s, json_t **claims,
				cs_evidence_why *why)
{
	json_t *subject = json_pack("{s:s, s:s}", "iss", iss, "jti", ""), *header = NULL;
	char summary[512];
	verify_sink = why;
	verify_now = at_s > 0 ? (json_int_t)at_s : 1;
	int ok = subject != NULL && jwks_valid(jwks, "the JWKS") &&
		 check_revocations(list, jwks, subject, summary, sizeof(summary)) &&
		 cs_jws_peek(list, &header, claims) == CS_OK;
	if (!ok && why->code[0] == '\0')
		fail_verify("revocations_invalid", "out of memory checking the revocation list");
	verify_sink = NULL;
	verify_now = 0;
	json_decref(subject);
	json_decref(header);
	return ok;
}

/* ---- delegated signing: sign, verify-signature ------------------------------------ */

/* The largest input sign reads: a profile's largest payload (16 MiB). */
#define SIGN_INPUT_MAX ((size_t)16 << 20)
/* A signature file: DER, raw r || s or their base64 text, with a newline. */
#define SIG_FILE_MAX 512

/* The bytes of path ("-": standard input), at most max; 0, or -1 after
 * saying why. */
static int read_bytes(const char *path, size_t max, uint8_t **out, size_t *out_len)
{
	int is_stdin = strcmp(path, "-") == 0;
	FILE *f = is_stdin ? stdin : fopen(path, "rb");
	*out = NULL;
	*out_len = 0;
	if (f == NULL) {
		perror(path);
		return -1;
	}
	uint8_t *buf = malloc(max + 1);
	size_t n = buf != NULL ? fread(buf, 1, max + 1, f) : 0;
	int failed = buf == NULL || ferror(f);
	if (!is_stdin)
		fclose(f);
	if (failed || n > max) {
		fprintf(stderr, "credsign: %s: %s\n", is_stdin ? "standard input" : path,
			failed ? "cannot be read" : "too large");
		free(buf);
		return -1;
	}
	*out = buf;
	*out_len = n;
	return 0;
}

/* SHA-256 of the bytes of path ("-": standard input), read in pieces (any
 * size); 0, or -1 after saying why. */
static int file_sha256(const char *path, uint8_t digest[32])
{
	int is_stdin = strcmp(path, "-") == 0;
	FILE *f = is_stdin ? stdin : fopen(path, "rb");
	if (f == NULL) {
		perror(path);
		return -1;
	}
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t buf[65536];
	unsigned int dl = 0;
	size_t n;
	int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
	while (ok && (n = fread(buf, 1, sizeof(buf), f)) > 0)
		ok = EVP_DigestUpdate(md, buf, n) == 1;
	int read_failed = ferror(f);
	ok = ok && !read_failed && EVP_DigestFinal_ex(md, digest, &dl) == 1 && dl == 32;
	EVP_MD_CTX_free(md);
	if (!is_stdin)
		fclose(f);
	if (!ok)
		fprintf(stderr, "credsign: %s: %s\n", is_stdin ? "standard input" : path,
			read_failed ? "cannot be read" : "SHA-256 failed");
	return ok ? 0 : -1;
}

/* Write data[len] to path, replacing it; 0, or -1 after saying why. */
static int write_bytes(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		if (f != NULL)
			(void)fclose(f);
		return -1;
	}
	return 0;
}

typedef struct {
	const char *profile, *format, *payload_type, *out, *input;
} sign_opts;

/* The request body of POST /api/sign for the input; NULL after saying why. */
static json_t *sign_request(const sign_opts *o, const uint8_t *data, size_t len)
{
	json_t *req = json_pack("{s:s, s:s}", "profile", o->profile, "format", o->format);
	json_t *part = NULL;
	if (req == NULL)
		return NULL;
	if (strcmp(o->format, "jws") == 0) {
		json_error_t e;
		if ((part = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &e)) == NULL ||
		    !json_is_object(part)) {
			fprintf(stderr, "credsign: %s: the payload must be one JSON object%s%s\n", o->input,
				part == NULL ? ": " : "", part == NULL ? e.text : "");
			goto fail;
		}
		if (json_object_set_new(req, "payload", part) != 0)
			goto fail;
	} else if (strcmp(o->format, "dsse") == 0) {
		char *b64 = cs_sig_b64_encode(data, len);
		int bad = b64 == NULL || json_object_set_new(req, "payload", json_string(b64)) != 0 ||
			  json_object_set_new(req, "payload_type", json_string(o->payload_type)) != 0;
		free(b64);
		if (bad) {
			fprintf(stderr, "credsign: --payload-type must be UTF-8 text\n");
			goto fail;
		}
	} else {
		/* only the digest leaves this host */
		char hex[65];
		if (cs_sig_sha256_hex(data, len, hex) != CS_OK ||
		    json_object_set_new(req, "digest", json_pack("{s:s, s:s}", "alg", "SHA-256", "value", hex)) != 0)
			goto fail;
	}
	return req;
fail:
	json_decref(req);
	return NULL;
}

/* The artifact of an answer into o->out: the compact JWS and a newline,
 * the envelope JSON, or the DER signature bytes. */
static int write_artifact(const sign_opts *o, const json_t *answer)
{
	int rc = -1;
	if (strcmp(o->format, "jws") == 0) {
		const char *jws = json_string_value(json_object_get(answer, "jws"));
		char *line = jws != NULL ? malloc(strlen(jws) + 2) : NULL;
		if (line != NULL) {
			snprintf(line, strlen(jws) + 2, "%s\n", jws);
			rc = write_bytes(o->out, line, strlen(line));
		}
		free(line);
	} else if (strcmp(o->format, "dsse") == 0) {
		const json_t *env = json_object_get(answer, "envelope");
		char *text = json_is_object(env) ? json_dumps(env, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
		size_t n = text != NULL ? strlen(text) : 0;
		char *line = text != NULL ? realloc(text, n + 2) : NULL;
		if (line != NULL) {
			text = line;
			text[n] = '\n';
			rc = write_bytes(o->out, text, n + 1);
		}
		free(text);
	} else {
		uint8_t *der = NULL;
		size_t der_len = 0;
		if (cs_sig_b64_decode(json_string_value(json_object_get(answer, "signature_der")), SIG_FILE_MAX, &der,
				      &der_len) == CS_OK)
			rc = write_bytes(o->out, der, der_len);
		free(der);
	}
	if (rc != 0)
		fprintf(stderr, "credsign: the answer lacks its %s, or %s could not be written\n", o->format, o->out);
	return rc;
}

/* credsign sign: 0 signed, 1 refused or failed. */
static int cmd_sign(const conn *c, const sign_opts *o)
{
	uint8_t *data = NULL;
	size_t len = 0;
	json_t *req = NULL, *answer = NULL;
	char *body = NULL;
	buffer b = {0};
	int rc = 1;
	if (read_bytes(o->input, SIGN_INPUT_MAX, &data, &len) != 0 || (req = sign_request(o, data, len)) == NULL ||
	    (body = json_dumps(req, JSON_COMPACT)) == NULL)
		goto out;
	b.max = 2 * (len + len / 3) + RESPONSE_MAX;
	long status = request(c, "/api/sign", body, &b);
	if (status != 200) {
		rc = status < 0 ? 1 : server_error(status, &b);
		goto out;
	}
	if ((answer = json_loadb(b.data, b.len, 0, NULL)) == NULL ||
	    json_string_value(json_object_get(answer, "signature_id")) == NULL) {
		fprintf(stderr, "credsign: malformed response from the server\n");
		goto out;
	}
	if (o->out != NULL && write_artifact(o, answer) != 0)
		goto out;
	char *text = json_dumps(answer, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (text != NULL)
		printf("%s\n", text);
	free(text);
	rc = text != NULL ? 0 : 1;
out:
	free(data);
	free(body);
	json_decref(req);
	json_decref(answer);
	buffer_wipe(&b);
	return rc;
}

typedef struct {
	const char *jwks, *profile; /* the JWKS file (NULL: fetched for the profile) */
	int jws, dsse;              /* the kind of signature in `input` */
	const char *signature;      /* --signature SIG (input: the signed file) */
	const char *input;
} verify_sig_opts;

/* The JWKS: the file, or the profile's from the appliance; NULL after
 * saying why. */
static json_t *signature_jwks(const conn *c, const verify_sig_opts *o)
{
	buffer b = {0};
	char *text = NULL;
	if (o->jwks != NULL) {
		text = read_file(o->jwks, JWKS_MAX);
	} else {
		char path[256], *escaped = curl_easy_escape(NULL, o->profile, 0);
		snprintf(path, sizeof(path), "/.well-known/jwks.json?profile=%s", escaped != NULL ? escaped : "");
		curl_free(escaped);
		if (fetch(c, path, JWKS_MAX, &b) == 0)
			text = b.data;
		else
			fail_verify("jwks_unavailable", "cannot fetch the JWKS of profile %s from %s", o->profile, c->url);
	}
	json_t *jwks = text != NULL ? json_loads(text, JSON_REJECT_DUPLICATES, NULL) : NULL;
	if (text != NULL && jwks == NULL)
		fail_verify("jwks_invalid", "the JWKS is not JSON");
	free(text);
	return jwks;
}

/* A signature file's bytes: binary (DER or raw r || s) as they are, text
 * as base64url (the raw form the appliance answers) or standard base64
 * (the DER form); 0, or -1 after refusing. */
static int signature_bytes(const char *path, uint8_t **sig, size_t *sig_len)
{
	uint8_t *data = NULL;
	size_t len = 0;
	*sig = NULL;
	*sig_len = 0;
	if (read_bytes(path, SIG_FILE_MAX, &data, &len) != 0)
		return -1;
	size_t n = len;
	while (n > 0 && strchr("\r\n \t", data[n - 1]) != NULL)
		n--;
	int text = n > 0;
	for (size_t i = 0; i < n && text; i++)
		text = strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_=", data[i]) != NULL;
	if (!text) {
		*sig = data;
		*sig_len = len;
		return 0;
	}
	data[n] = '\0';
	if (cs_b64url_decode((const char *)data, sig, sig_len) != CS_OK &&
	    cs_sig_b64_decode((const char *)data, SIG_FILE_MAX, sig, sig_len) != CS_OK) {
		free(data);
		fail_verify("malformed", "%s is neither a signature nor its base64 or base64url text", path);
		return -1;
	}
	free(data);
	return 0;
}

static void print_key_line(const cs_sig_verdict *v)
{
	printf("  signing key:   %s (%s)\n", v->kid, text_or(json_object_get(v->key, "status"), "status unknown"));
}

/* The profile a JWKS says it is of (its top-level "profile" object, as
 * the appliance serves ?profile=NAME), or NULL. */
static const json_t *jwks_profile(const json_t *jwks)
{
	const json_t *p = json_object_get(jwks, "profile");
	return json_is_object(p) ? p : NULL;
}

/* The profile to name in a hint: --profile, else the JWKS's when it is a
 * profile name, else "P". */
static const char *hint_profile(const verify_sig_opts *o, const json_t *jwks)
{
	const char *name = json_string_value(json_object_get(jwks_profile(jwks), "name"));
	if (o->profile != NULL)
		return o->profile;
	size_t n = name != NULL ? strlen(name) : 0;
	if (n == 0 || n > 32 || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789._-") != n)
		return "P";
	return name;
}

/* Refuse with the verdict; stale: no key of the JWKS is the signature's
 * (or, digest, none verifies it), which a key newer than the JWKS explains. */
static void refuse_signature(const verify_sig_opts *o, const json_t *jwks, const cs_sig_verdict *v, int stale)
{
	if (stale)
		fail_verify(v->code, "%s (a key newer than this JWKS? fetch it again: credsign jwks --profile %s)",
			    v->why, hint_profile(o, jwks));
	else
		fail_verify(v->code, "%s", v->why);
}

/* Whether a JSON array (NULL or not an array: no) holds the string "digest". */
static int lists_digest(const json_t *formats)
{
	const json_t *f;
	size_t i;
	json_array_foreach(formats, i, f) {
		const char *name = json_string_value(f);
		if (name != NULL && strcmp(name, "digest") == 0)
			return 1;
	}
	return 0;
}

/* A verified JWS or DSSE envelope of a key that has signed bare digests
 * (its JWKS entry's "formats_signed", the formats of the appliance's
 * records by that key, lists digest) or whose profile (the JWKS's
 * top-level "profile") allows them proves less: a digest signer could
 * have obtained the same signature over these bytes, unchecked. One
 * caution line on standard error. what: "JWS" (its claims and typ) or
 * "DSSE envelope" (its payload type and body). */
static void digest_caution(const json_t *jwks, const cs_sig_verdict *v, const char *what, const char *checked)
{
	int signed_digests = lists_digest(json_object_get(v->key, "formats_signed"));
	int allows_digest = lists_digest(json_object_get(jwks_profile(jwks), "formats"));
	if (!signed_digests && !allows_digest)
		return;
	const char *reason = signed_digests && allows_digest
				     ? "has signed bare digests (formats_signed in the JWKS) and also signs them (its "
				       "profile allows format digest)"
			     : signed_digests ? "has signed bare digests (formats_signed in the JWKS)"
					      : "also signs bare digests (its profile allows format digest)";
	fflush(stdout); /* after what was verified */
	fprintf(stderr,
		"credsign: caution: key %s %s: a digest signer of this key can obtain its signature over any "
		"bytes, so this %s does not prove that the appliance checked its %s (docs/delegated-signing.md)\n",
		v->kid, reason, what, checked);
}

/* Whether a jws/dsse verdict is of a kid the JWKS does not list at all. */
static int kid_unlisted(const cs_sig_verdict *v)
{
	return strcmp(v->code, "unknown_kid") == 0 && v->key == NULL;
}

static int verify_sig_jws(const verify_sig_opts *o, const json_t *jwks)
{
	char *jws = read_file(o->input, (size_t)64 << 20);
	json_t *claims = NULL;
	cs_sig_verdict v;
	int rc = 1;
	if (jws == NULL)
		return 1;
	/* credsign's own documents (certificates, revocation lists: typ
	 * "credsign-..." with or without "application/") are refused here
	 * (cs_sig_typ_reserved); `credsign verify` checks certificates */
	if (cs_sig_verify_jws(jws, jwks, NULL, (int64_t)time(NULL), &claims, &v) != CS_OK) {
		refuse_signature(o, jwks, &v, kid_unlisted(&v));
		goto out;
	}
	char *text = json_dumps(claims, JSON_INDENT(2) | JSON_SORT_KEYS);
	printf("VERIFIED JWS\n");
	print_key_line(&v);
	printf("  typ:           %s\n", v.typ[0] != '\0' ? v.typ : "(none)");
	printf("  signed_sha256: %s\n", v.signed_sha256);
	printf("  claims:        %s\n", text != NULL ? text : "?");
	free(text);
	digest_caution(jwks, &v, "JWS", "claims and typ");
	rc = 0;
out:
	free(jws);
	json_decref(claims);
	return rc;
}

static int verify_sig_dsse(const verify_sig_opts *o, const json_t *jwks)
{
	char *text = read_file(o->input, (size_t)64 << 20);
	json_t *env = text != NULL ? json_loads(text, JSON_REJECT_DUPLICATES, NULL) : NULL;
	uint8_t *body = NULL;
	size_t len = 0;
	cs_sig_verdict v;
	char hex[65];
	int rc = 1;
	if (text != NULL && !json_is_object(env))
		fail_verify("malformed", "%s is not a DSSE envelope (a JSON object)", o->input);
	else if (env != NULL && cs_sig_verify_dsse(env, jwks, NULL, &body, &len, &v) != CS_OK)
		refuse_signature(o, jwks, &v, kid_unlisted(&v));
	else if (env != NULL && cs_sig_sha256_hex(body, len, hex) == CS_OK) {
		printf("VERIFIED DSSE envelope\n");
		print_key_line(&v);
		printf("  payloadType:   %s\n", text_or(json_object_get(env, "payloadType"), "?"));
		printf("  payload:       %zu bytes, sha256 %s\n", len, hex);
		printf("  signed_sha256: %s\n", v.signed_sha256);
		digest_caution(jwks, &v, "DSSE envelope", "payload type and body");
		rc = 0;
	}
	free(text);
	free(body);
	json_decref(env);
	return rc;
}

static int verify_sig_digest(const verify_sig_opts *o, const json_t *jwks)
{
	uint8_t *sig = NULL, digest[32];
	size_t sig_len = 0;
	cs_sig_verdict v;
	char hex[65];
	int rc = 1;
	if (file_sha256(o->input, digest) != 0 || signature_bytes(o->signature, &sig, &sig_len) != 0)
		goto out;
	if (cs_sig_verify_digest(digest, sig, sig_len, jwks, NULL, &v) != CS_OK) {
		/* bad_signature without a kid: no key of the JWKS verifies it */
		refuse_signature(o, jwks, &v, strcmp(v.code, "bad_signature") == 0 && v.kid[0] == '\0');
		goto out;
	}
	cs_sig_hex(digest, 32, hex);
	printf("VERIFIED digest signature\n");
	print_key_line(&v);
	printf("  file:          %s, sha256 %s\n", o->input, hex);
	printf("  signed_sha256: %s\n", v.signed_sha256);
	rc = 0;
out:
	free(sig);
	return rc;
}

/* credsign verify-signature: 0 valid, 1 not. */
static int cmd_verify_signature(const conn *c, const verify_sig_opts *o)
{
	json_t *jwks = signature_jwks(c, o);
	if (jwks == NULL)
		return 1;
	int rc = o->jws ? verify_sig_jws(o, jwks) : o->dsse ? verify_sig_dsse(o, jwks) : verify_sig_digest(o, jwks);
	json_decref(jwks);
	return rc;
}

/* ---- signature get / find: the appliance's records ------------------------------- */

/* A record answer: a signature record with a stored payload is the
 * payload's base64 and more (16 MiB at most); find answers 100 at most. */
#define SIGNATURE_RECORD_MAX ((size_t)32 << 20)
#define SIGNATURES_FIND_MAX ((size_t)256 << 20)

/* A signature id as the appliance makes them (base64url, 22 characters;
 * 64 at most accepted here). */
static int signature_id_valid(const char *id)
{
	size_t n = strlen(id);
	return n > 0 && n <= 64 &&
	       strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == n;
}

/* 64 hex digits into lower case in out[65]; 0, or -1 if it is not. */
static int sha256_hex_arg(const char *text, char out[65])
{
	if (strlen(text) != 64 || strspn(text, "0123456789abcdefABCDEF") != 64)
		return -1;
	for (size_t i = 0; i < 64; i++)
		out[i] = (char)(text[i] >= 'A' && text[i] <= 'F' ? text[i] - 'A' + 'a' : text[i]);
	out[64] = '\0';
	return 0;
}

/* GET path, its JSON answer printed (indented); *doc (may be NULL) the
 * caller's. 0, or 1 after saying why. */
static int get_json(const conn *c, const char *path, size_t max, json_t **doc)
{
	buffer b = {.max = max};
	int rc = 1;
	*doc = NULL;
	long status = request(c, path, NULL, &b);
	if (status != 200) {
		rc = status < 0 ? 1 : server_error(status, &b);
		goto out;
	}
	if (b.data == NULL || (*doc = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, NULL)) == NULL ||
	    !json_is_object(*doc)) {
		fprintf(stderr, "credsign: malformed response from the server\n");
		goto out;
	}
	char *text = json_dumps(*doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (text != NULL)
		printf("%s\n", text);
	rc = text != NULL ? 0 : 1;
	free(text);
out:
	buffer_wipe(&b);
	return rc;
}

/* credsign signature get ID: the record; 0, 1 failed or refused. */
static int cmd_signature_get(const conn *c, const char *id)
{
	char path[128];
	json_t *doc = NULL;
	snprintf(path, sizeof(path), "/api/signatures/%s", id);
	int rc = get_json(c, path, SIGNATURE_RECORD_MAX, &doc);
	json_decref(doc);
	return rc;
}

/* credsign signature find (--sha256 HEX | --file FILE): the records of
 * signatures over bytes with that SHA-256 (newest first); 0 some, 1 none
 * or failed. */
static int cmd_signature_find(const conn *c, const char *hex, const char *file)
{
	char want[65], path[128];
	uint8_t digest[32];
	json_t *doc = NULL;
	if (file != NULL) {
		if (file_sha256(file, digest) != 0)
			return 1;
		cs_sig_hex(digest, 32, want);
	} else if (sha256_hex_arg(hex, want) != 0) {
		return 1; /* checked by main */
	}
	snprintf(path, sizeof(path), "/api/signatures?sha256=%s", want);
	int rc = get_json(c, path, SIGNATURES_FIND_MAX, &doc);
	const json_t *list = json_object_get(doc, "signatures");
	if (rc == 0 && !json_is_array(list)) {
		fprintf(stderr, "credsign: malformed response from the server (no signatures list)\n");
		rc = 1;
	} else if (rc == 0 && json_array_size(list) == 0) {
		fprintf(stderr, "credsign: no signature over bytes with SHA-256 %s on record (of the profiles this "
				"identity may read)%s\n", want,
			file != NULL ? "; --file finds digest signatures of the file: for a JWS or DSSE envelope give "
				       "--sha256 with the signed_sha256 verify-signature prints" : "");
		rc = 1;
	}
	json_decref(doc);
	return rc;
}

/* ---- access check: the decision the daemon would make, explained ---------------- */

static void print_list(const char *name, char *const *list, const char *absent)
{
	printf("; %s ", name);
	if (list == NULL)
		fputs(absent, stdout);
	for (size_t i = 0; list != NULL && list[i] != NULL; i++)
		printf("%s%s", i ? ", " : "", list[i]);
}

/* A grant as the configuration gives it: "access.grants[N]" names it. */
static void print_grant(const cs_config *cfg, const char *name)
{
	unsigned n = 0;
	if (sscanf(name, "access.grants[%u]", &n) != 1 || n >= cfg->access.ngrants)
		return;
	const cs_config_grant *g = &cfg->access.grants[n];
	char where[1100], path[48];
	snprintf(path, sizeof(path), "access.grants.[%u]", n);
	cs_config_where(cfg, path, where, sizeof(where));
	printf("    %s (%s): role %s; identity %s", name, where, cs_access_role_name(g->role), g->identity);
	if (g->role != CS_ROLE_OPERATOR && g->role != CS_ROLE_SIGNER)
		print_list("projects", g->projects, "none");
	if (g->role == CS_ROLE_GENERATOR) {
		print_list("environments", g->environments, "none");
		print_list("presets", g->presets, "any");
	}
	if (g->role == CS_ROLE_SIGNER || g->role == CS_ROLE_AUDITOR)
		print_list("profiles", g->profiles, "none");
	if (g->rate > 0.0)
		printf("; rate %g requests/s, burst %d", g->rate, g->burst);
	else
		printf("; no rate limit");
	putchar('\n');
}

typedef struct {
	const cs_config *cfg;
} explain_ctx;

static void on_explain(void *arg, const char *grant, const char *role, int covers, const char *why)
{
	const explain_ctx *x = arg;
	(void)role;
	print_grant(x->cfg, grant);
	printf("      %s\n", covers ? "covers this request" : why);
}

/* "-" stands for a member the request does not have. */
static const char *scope_arg(char **argv, int argc, int i)
{
	return i < argc && strcmp(argv[i], "-") != 0 ? argv[i] : NULL;
}

/* credsign access check IDENTITY ACTION [PROJECT [ENV [PRESET]]] [--profile P] --config FILE:
 * 0 allowed, 1 refused, 2 usage or configuration error. sign and
 * signature.read are scoped by the signing profile (--profile, required
 * for them and refused for the other actions). */
static int cmd_access_check(const char *config_path, const char *profile, int argc, char **argv)
{
	int action = argc >= 2 ? cs_access_action_parse(argv[1]) : -1;
	int by_profile = action == CS_ACTION_SIGN || action == CS_ACTION_SIGNATURE_READ;
	if (argc < 2 || argc > (by_profile ? 2 : 5) || action < 0 || by_profile != (profile != NULL)) {
		if (argc >= 2 && action < 0)
			fprintf(stderr, "credsign: unknown action '%s'\n", argv[1]);
		else if (argc >= 2 && by_profile && profile == NULL)
			fprintf(stderr, "credsign: %s needs --profile P\n", argv[1]);
		else if (argc >= 2 && !by_profile && profile != NULL)
			fprintf(stderr, "credsign: --profile is for sign and signature.read only\n");
		else if (argc > 2 && by_profile)
			fprintf(stderr, "credsign: %s is scoped by --profile alone\n", argv[1]);
		fprintf(stderr, "credsign: access check IDENTITY ACTION [PROJECT [ENV [PRESET]]] --config FILE\n"
				"          access check IDENTITY sign|signature.read --profile P --config FILE\n"
				"  ACTION: ");
		for (int a = 0; a < CS_ACTION_COUNT; a++)
			fprintf(stderr, "%s%s", a ? ", " : "", cs_access_action_name((cs_access_action)a));
		fprintf(stderr, "\n  '-' for a member the request does not have\n");
		return 2;
	}
	if (config_path == NULL) {
		fprintf(stderr, "credsign: access check needs --config FILE (or CREDSIGN_CONF)\n");
		return 2;
	}
	cs_config *cfg = NULL;
	cs_config_diag diag;
	cs_preset_set *presets = NULL;
	cs_access *access = NULL;
	int rc = 2;
	cs_err r = cs_config_load(config_path, &cfg, &diag);
	for (size_t i = 0; i < diag.count; i++)
		fprintf(stderr, "%s\n", diag.messages[i]);
	cs_config_diag_free(&diag);
	if (r == CS_OK) {
		/* grants may name presets: those of this configuration */
		r = cs_presets_load(cfg->server.presets_file, cfg->file, &presets, &diag);
		if (r == CS_OK)
			r = cs_access_check_presets(cfg, presets, &diag);
		for (size_t i = 0; i < diag.count; i++)
			fprintf(stderr, "%s\n", diag.messages[i]);
		cs_config_diag_free(&diag);
	}
	if (r == CS_OK && (r = cs_access_new(cfg, &access)) != CS_OK)
		fprintf(stderr, "credsign: %s\n", cs_strerror(r));
	if (r != CS_OK) {
		fprintf(stderr, "%s: configuration invalid\n", config_path);
		goto out;
	}
	const char *identity = argv[0];
	cs_access_scope scope = {scope_arg(argv, argc, 2), scope_arg(argv, argc, 3), scope_arg(argv, argc, 4),
				 profile};
	cs_access_decision d;
	cs_access_decide(access, identity, (cs_access_action)action, &scope, 0, 0, &d);
	printf("identity %s, action %s", identity, argv[1]);
	if (scope.project != NULL || scope.environment != NULL || scope.preset != NULL)
		printf(", project %s, environment %s, preset %s", scope.project ?: "(none)",
		       scope.environment ?: "(none)", scope.preset ?: "(none)");
	if (profile != NULL)
		printf(", profile %s", profile);
	printf("\n");
	if (action == CS_ACTION_SIGN && cs_config_profile_find(cfg, profile) == NULL)
		/* the daemon refuses it before asking who may use it */
		printf("note: profile %s is not in signing.profiles: POST /api/sign refuses it "
		       "(unknown_profile) whoever asks\n", profile);
	explain_ctx x = {cfg};
	if (d.allowed) {
		printf("ALLOWED by %s (role %s)\n", d.grant, d.role);
		print_grant(cfg, d.grant);
		rc = 0;
	} else if (action == CS_ACTION_CERT_READ && cfg->certificates.public) {
		/* as the daemon decides (cs_service_authorize) */
		printf("ALLOWED by certificates.public (any authenticated client reads certificates)\n");
		rc = 0;
	} else {
		if (strcmp(d.role, "any") == 0)
			printf("DENIED: %s\n", d.reason);
		else
			printf("DENIED: %s (needs role %s)\n", d.reason, d.role);
		printf("  grants of this identity:\n");
		if (cs_access_explain(access, identity, (cs_access_action)action, &scope, on_explain, &x) == 0)
			printf("    none: it is refused everything but /healthz, /readyz and the JWKS "
			       "(deny by default)\n");
		rc = 1;
	}
out:
	cs_access_unref(access);
	cs_presets_free(presets);
	cs_config_free(cfg);
	return rc;
}

/* ---- inventory (issue 19) ---------------------------------------------------------- */

enum { OPT_DUE_BEFORE = 340 };

static const char *text_or_dash(const json_t *rec, const char *key)
{
	const char *v = json_string_value(json_object_get(rec, key));
	return v != NULL && v[0] != '\0' ? v : "-";
}

/* The text columns: header, the record member shown, and whether it is
 * cut to its short form (up to " (": "PCI DSS v4.0.1 8.3.9"). */
static const struct {
	const char *header, *key;
	int short_form;
} inventory_cols[] = {
	{"state", "state", 0},		   {"project", "project", 0},	  {"environment", "environment", 0},
	{"system", "system", 0},	   {"cert_id", "cert_id", 0},	  {"type", "type", 0},
	{"preset", "preset", 0},	   {"certified_at", "certified_at", 0}, {"rotation_due", "rotation_due", 0},
	{"rule", "rotation_rule", 1},	   {"revoked_at", "revoked_at", 0}, {"superseded_by", "superseded_by", 0},
};
#define INVENTORY_NCOLS (sizeof(inventory_cols) / sizeof(inventory_cols[0]))
#define INVENTORY_CELL_MAX 200

/* Column k of rec (at most INVENTORY_CELL_MAX bytes shown, "-" for none) and its length. */
static const char *inventory_cell(const json_t *rec, size_t k, int *len)
{
	const char *v = text_or_dash(rec, inventory_cols[k].key);
	size_t n = strlen(v);
	const char *paren = inventory_cols[k].short_form ? strstr(v, " (") : NULL;
	if (paren != NULL && paren > v)
		n = (size_t)(paren - v);
	*len = n > INVENTORY_CELL_MAX ? INVENTORY_CELL_MAX : (int)n;
	return v;
}

/* One aligned line per record: the columns a person scans for. */
static int print_inventory_text(const char *body)
{
	json_t *doc = json_loads(body, 0, NULL);
	const json_t *records = json_object_get(doc, "records");
	if (!json_is_array(records)) {
		fprintf(stderr, "credsign: inventory: the answer is not an inventory document\n");
		json_decref(doc);
		return 1;
	}
	int width[INVENTORY_NCOLS];
	for (size_t k = 0; k < INVENTORY_NCOLS; k++)
		width[k] = (int)strlen(inventory_cols[k].header);
	size_t i;
	const json_t *rec;
	json_array_foreach(records, i, rec)
		for (size_t k = 0; k < INVENTORY_NCOLS; k++) {
			int n;
			(void)inventory_cell(rec, k, &n);
			if (n > width[k])
				width[k] = n;
		}
	for (size_t k = 0; k < INVENTORY_NCOLS; k++)
		printf("%-*s%s", k + 1 < INVENTORY_NCOLS ? width[k] : 0, inventory_cols[k].header,
		       k + 1 < INVENTORY_NCOLS ? "  " : "\n");
	json_array_foreach(records, i, rec)
		for (size_t k = 0; k < INVENTORY_NCOLS; k++) {
			int n;
			const char *v = inventory_cell(rec, k, &n);
			int pad = k + 1 < INVENTORY_NCOLS ? width[k] - n : 0;
			printf("%.*s%*s%s", n, v, pad, "", k + 1 < INVENTORY_NCOLS ? "  " : "\n");
		}
	const json_t *n = json_object_get(doc, "counts");
	printf("%zu records: %lld current, %lld superseded, %lld revoked; %lld overdue, %lld due soon\n",
	       json_array_size(records), (long long)json_integer_value(json_object_get(n, "current")),
	       (long long)json_integer_value(json_object_get(n, "superseded")),
	       (long long)json_integer_value(json_object_get(n, "revoked")),
	       (long long)json_integer_value(json_object_get(n, "overdue")),
	       (long long)json_integer_value(json_object_get(n, "due_soon")));
	json_decref(doc);
	return 0;
}

/* Append "&name=escaped(value)" to path when value is set. */
static void query_add(char *path, size_t cap, const char *name, const char *value)
{
	if (value == NULL)
		return;
	char *escaped = curl_easy_escape(NULL, value, 0);
	size_t len = strlen(path);
	snprintf(path + len, cap - len, "%s%s=%s", strchr(path, '?') != NULL ? "&" : "?", name,
		 escaped != NULL ? escaped : "");
	curl_free(escaped);
}

static int cmd_inventory(const conn *c, const char *project, const char *environment, const char *due_before,
			 const char *format)
{
	char path[2048] = "/api/inventory";
	query_add(path, sizeof(path), "project", project);
	query_add(path, sizeof(path), "environment", environment);
	query_add(path, sizeof(path), "due_before", due_before);
	query_add(path, sizeof(path), "format", strcmp(format, "csv") == 0 ? "csv" : "json");
	buffer b = {0};
	long status = request(c, path, NULL, &b);
	int rc = 1;
	if (status == 200 && strcmp(format, "text") == 0)
		rc = print_inventory_text(b.data != NULL ? b.data : "");
	else if (status == 200) {
		fputs(b.data != NULL ? b.data : "", stdout);
		if (strcmp(format, "json") == 0)
			fputc('\n', stdout);
		rc = 0;
	} else if (status > 0) {
		rc = server_error(status, &b);
	}
	buffer_wipe(&b);
	return rc;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: credsign [CONN] generate --preset P [--type T] [--length N] [--strength-bits N]\n"
		"                [--project X] [--environment E] [--system S] [--prefix P]\n"
		"                [--exclude-ambiguous] [--certify] [--format json|env|raw]\n"
		"       credsign [CONN] generate --preset P ... --certify --format k8s-secret --name N\n"
		"                --namespace NS [--secret-key K]\n"
		"       credsign [CONN] generate --preset P ... --certify --format vault-kv [--secret-key K]\n"
		"       credsign [CONN] cert get ID [--jws]\n"
		"       credsign [CONN] jwks [--profile P]\n"
		"       credsign [CONN] sign --profile P --format jws|dsse|digest [--payload-type T]\n"
		"                [--out FILE] FILE|-\n"
		"       credsign [CONN] verify-signature [--jwks FILE] [--profile P]\n"
		"                (--jws FILE | --dsse FILE | --signature SIG FILE)\n"
		"       credsign [CONN] signature get ID\n"
		"       credsign [CONN] signature find (--sha256 HEX | --file FILE)\n"
		"       credsign [CONN] policy --standards P1,P2 [--format markdown|json|html]\n"
		"       credsign [CONN] inventory [--project P] [--environment E] [--due-before D]\n"
		"                [--format text|json|csv]\n"
		"       credsign verify CERT.jws --jwks FILE [--credential-file F] [--revocations FILE]\n"
		"                [--x5c-ca FILE]\n"
		"       credsign [CONN] verify CERT.jws --online [--jwks FILE] [--credential-file F]\n"
		"                [--x5c-ca FILE]\n"
		"       credsign evidence verify FILE [--jwks KEPT_JWKS] [--format text|json]\n"
		"       credsign access check IDENTITY ACTION [PROJECT [ENV [PRESET]]] --config FILE\n"
		"       credsign access check IDENTITY sign|signature.read --profile P --config FILE\n"
		"       credsign --version | --help\n"
		"CONN:  --url URL --cacert FILE --cert FILE --key FILE [-v|--verbose]\n"
		"       (or CREDSIGN_URL, CREDSIGN_CACERT/CREDSIGN_CA, CREDSIGN_CERT, CREDSIGN_KEY)\n");
}

/* Long options without a short letter. */
enum { OPT_SHA256 = 256, OPT_FILE };

/* A whole decimal number in [lo, hi]; -1 (after a message) otherwise. */
static int number_option(const char *name, const char *text, int lo, int hi)
{
	char *end = NULL;
	errno = 0;
	long v = strtol(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "credsign: --%s must be a whole number from %d to %d, not '%s'\n", name, lo, hi, text);
		return -1;
	}
	return (int)v;
}

static const char *env_or(const char *name, const char *fallback)
{
	const char *v = getenv(name);
	return v != NULL && v[0] != '\0' ? v : fallback;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"url", required_argument, NULL, 'u'},       {"cacert", required_argument, NULL, 'A'},
		{"cert", required_argument, NULL, 'C'},      {"key", required_argument, NULL, 'K'},
		{"preset", required_argument, NULL, 'p'},    {"type", required_argument, NULL, 't'},
		{"length", required_argument, NULL, 'l'},    {"strength-bits", required_argument, NULL, 's'},
		{"project", required_argument, NULL, 'P'},   {"environment", required_argument, NULL, 'E'},
		{"system", required_argument, NULL, 'S'},    {"prefix", required_argument, NULL, 'x'},
		{"certify", no_argument, NULL, 'c'},         {"format", required_argument, NULL, 'f'},
		{"jws", no_argument, NULL, 'j'},             {"jwks", required_argument, NULL, 'J'},
		{"credential-file", required_argument, NULL, 'F'}, {"help", no_argument, NULL, 'h'},
		{"standards", required_argument, NULL, 'T'},    {"exclude-ambiguous", no_argument, NULL, 'a'},
		{"verbose", no_argument, NULL, 'v'},           {"version", no_argument, NULL, 'V'},
		{"config", required_argument, NULL, 'o'},     {"revocations", required_argument, NULL, 'R'},
		{"online", no_argument, NULL, 'O'},           {"x5c-ca", required_argument, NULL, 'X'},
		{"profile", required_argument, NULL, 'r'},    {"payload-type", required_argument, NULL, 'y'},
		{"out", required_argument, NULL, 'w'},        {"dsse", no_argument, NULL, 'D'},
		{"signature", required_argument, NULL, 'G'},
		{"sha256", required_argument, NULL, OPT_SHA256}, {"file", required_argument, NULL, OPT_FILE},
		{"name", required_argument, NULL, OPT_K8S_NAME}, {"namespace", required_argument, NULL, OPT_K8S_NAMESPACE},
		{"secret-key", required_argument, NULL, OPT_SECRET_KEY},
		{"due-before", required_argument, NULL, OPT_DUE_BEFORE},
		{NULL, 0, NULL, 0},
	};
	cs_json_wiping_allocator(); /* JSON that held the credential is wiped when freed */
	conn c = {env_or("CREDSIGN_URL", "https://127.0.0.1:8443"),
		  env_or("CREDSIGN_CACERT", getenv("CREDSIGN_CA")), getenv("CREDSIGN_CERT"),
		  getenv("CREDSIGN_KEY"), 0};
	gen_opts g = {.format = "json"};
	const char *jwks = NULL, *credential_file = NULL, *standards = NULL, *revocations = NULL, *x5c_ca = NULL;
	const char *config_path = env_or("CREDSIGN_CONF", NULL);
	const char *profile = NULL, *payload_type = NULL, *out_file = NULL, *signature = NULL;
	const char *sha256 = NULL, *find_file = NULL;
	const char *due_before = NULL;
	int jws_only = 0, online = 0, dsse = 0, opt;
	int format_given = 0; /* --format given (evidence verify's default is text) */
	const char *foreign = NULL; /* the first long option evidence verify does not take */
	int li = -1;
	while ((opt = getopt_long(argc, argv, "hv", opts, &li)) != -1) {
		if (li >= 0 && foreign == NULL && opts[li].val != 'J' && opts[li].val != 'f' && opts[li].val != 'v')
			foreign = opts[li].name;
		li = -1;
		switch (opt) {
		case 'u': c.url = optarg; break;
		case 'A': c.cacert = optarg; break;
		case 'C': c.cert = optarg; break;
		case 'K': c.key = optarg; break;
		case 'p': g.preset = optarg; break;
		case 't': g.type = optarg; break;
		case 'l':
			if ((g.length = number_option("length", optarg, 1, 4096)) < 0)
				return 2;
			break;
		case 's':
			if ((g.strength_bits = number_option("strength-bits", optarg, 1, 1024)) < 0)
				return 2;
			break;
		case 'P': g.project = optarg; break;
		case 'E': g.environment = optarg; break;
		case 'S': g.system = optarg; break;
		case 'x': g.prefix = optarg; break;
		case 'c': g.certify = 1; break;
		case 'f': g.format = optarg; format_given = 1; break;
		case 'j': jws_only = 1; break;
		case 'J': jwks = optarg; break;
		case 'F': credential_file = optarg; break;
		case 'T': standards = optarg; break;
		case 'a': g.exclude_ambiguous = 1; break;
		case 'v': c.verbose = 1; break;
		case 'o': config_path = optarg; break;
		case 'R': revocations = optarg; break;
		case 'O': online = 1; break;
		case 'X': x5c_ca = optarg; break;
		case 'r': profile = optarg; break;
		case 'y': payload_type = optarg; break;
		case 'w': out_file = optarg; break;
		case 'D': dsse = 1; break;
		case 'G': signature = optarg; break;
		case OPT_SHA256: sha256 = optarg; break;
		case OPT_FILE: find_file = optarg; break;
		case OPT_K8S_NAME: g.k8s_name = optarg; break;
		case OPT_K8S_NAMESPACE: g.k8s_namespace = optarg; break;
		case OPT_SECRET_KEY: g.secret_key = optarg; break;
		case OPT_DUE_BEFORE: due_before = optarg; break;
		case 'V': printf("credsign %s\n", CREDSIGN_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	int nargs = argc - optind;
	if (nargs == 0) {
		usage(stderr);
		return 2;
	}
	const char *cmd = nargs > 0 ? argv[optind] : "";
	if (strcmp(cmd, "access") == 0) {
		if (nargs < 2 || strcmp(argv[optind + 1], "check") != 0) {
			usage(stderr);
			return 2;
		}
		return cmd_access_check(config_path, profile, nargs - 2, argv + optind + 2);
	}
	if (strcmp(cmd, "verify") == 0) {
		if (online && revocations != NULL)
			fprintf(stderr, "credsign: --online fetches the revocation list: give --online or "
					"--revocations FILE, not both\n");
		if (nargs != 2 || (jwks == NULL && !online) || (online && revocations != NULL)) {
			usage(stderr);
			return 2;
		}
		if (online && (c.cacert == NULL || c.cert == NULL || c.key == NULL)) {
			fprintf(stderr, "credsign: verify --online needs --cacert, --cert and --key (or CREDSIGN_*)\n");
			return 2;
		}
		verify_opts v = {argv[optind + 1], jwks, credential_file, revocations, online, x5c_ca};
		if (online)
			curl_global_init(CURL_GLOBAL_DEFAULT);
		int vrc = cmd_verify(&c, &v);
		if (online)
			curl_global_cleanup();
		return vrc;
	}
	if (strcmp(cmd, "evidence") == 0) {
		/* offline: no connection, no configuration */
		const char *ef = format_given ? g.format : "text";
		const char *use = "usage: credsign evidence verify FILE [--jwks KEPT_JWKS] [--format text|json]";
		if (nargs < 2 || strcmp(argv[optind + 1], "verify") != 0) {
			fprintf(stderr, "credsign: evidence: %s%s%s\n%s\n", nargs < 2 ? "no subcommand" : "unknown subcommand ",
				nargs < 2 ? "" : argv[optind + 1], nargs < 2 ? "" : " (only verify)", use);
			return 2;
		}
		if (nargs != 3 || foreign != NULL || (strcmp(ef, "text") != 0 && strcmp(ef, "json") != 0) ||
		    (jwks != NULL && jwks[0] == '\0')) {
			if (nargs < 3)
				fprintf(stderr, "credsign: evidence verify: FILE (the package) is required\n");
			else if (nargs > 3)
				fprintf(stderr, "credsign: evidence verify: one package only (%s is extra)\n", argv[optind + 3]);
			else if (foreign != NULL)
				fprintf(stderr, "credsign: evidence verify: --%s is not an option of evidence verify\n", foreign);
			else if (jwks != NULL && jwks[0] == '\0')
				fprintf(stderr, "credsign: evidence verify: --jwks '': a file name is required\n");
			else
				fprintf(stderr, "credsign: evidence verify: --format %s: not a format (text or json)\n", ef);
			fprintf(stderr, "%s\n", use);
			return 2;
		}
		cs_evidence_opts eo = {argv[optind + 2], jwks, strcmp(ef, "json") == 0};
		cs_evidence_checks ec = {evidence_key, evidence_cert, evidence_revocations};
		return cs_evidence_verify(&eo, &ec);
	}
	if (strcmp(cmd, "verify-signature") == 0) {
		verify_sig_opts v = {jwks, profile, jws_only, dsse, signature, nargs == 2 ? argv[optind + 1] : NULL};
		if (nargs != 2 || jws_only + dsse + (signature != NULL) != 1 || (jwks == NULL && profile == NULL)) {
			fprintf(stderr, "credsign: verify-signature [--jwks FILE] [--profile P] (--jws FILE | --dsse FILE "
					"| --signature SIG FILE): one signature, and --jwks or --profile\n");
			return 2;
		}
		if (jwks == NULL && (c.cacert == NULL || c.cert == NULL || c.key == NULL)) {
			fprintf(stderr, "credsign: verify-signature without --jwks fetches the profile's JWKS: it needs "
					"--cacert, --cert and --key (or CREDSIGN_*)\n");
			return 2;
		}
		if (jwks == NULL)
			curl_global_init(CURL_GLOBAL_DEFAULT);
		int vrc = cmd_verify_signature(&c, &v);
		if (jwks == NULL)
			curl_global_cleanup();
		return vrc;
	}
	if (strcmp(cmd, "sign") == 0) {
		unsigned fmt = cs_sig_format_parse(g.format);
		if (nargs != 2 || profile == NULL || fmt == 0 || (fmt == CS_SIG_FORMAT_DSSE) != (payload_type != NULL)) {
			fprintf(stderr, "credsign: sign --profile P --format jws|dsse|digest [--payload-type T] "
					"[--out FILE] FILE|-: --payload-type with dsse only (and required)\n");
			return 2;
		}
	}
	int get = nargs >= 2 && strcmp(cmd, "signature") == 0 && strcmp(argv[optind + 1], "get") == 0;
	int find = nargs >= 2 && strcmp(cmd, "signature") == 0 && strcmp(argv[optind + 1], "find") == 0;
	char hex[65];
	if (strcmp(cmd, "signature") == 0 &&
	    (!(get || find) || (get && (nargs != 3 || sha256 != NULL || find_file != NULL)) ||
	     (find && (nargs != 2 || (sha256 != NULL) == (find_file != NULL))))) {
		fprintf(stderr, "credsign: signature get ID | signature find (--sha256 HEX | --file FILE)\n");
		return 2;
	}
	if (get && !signature_id_valid(argv[optind + 2])) {
		fprintf(stderr, "credsign: signature get: the id must be 1 to 64 base64url characters\n");
		return 2;
	}
	if (find && sha256 != NULL && sha256_hex_arg(sha256, hex) != 0) {
		fprintf(stderr, "credsign: signature find: --sha256 takes 64 hex digits (a SHA-256)\n");
		return 2;
	}
	if (!get && !find && (sha256 != NULL || find_file != NULL)) {
		fprintf(stderr, "credsign: --sha256 and --file are for signature find\n");
		return 2;
	}
	if (strcmp(cmd, "generate") == 0 && generate_usage(&g) != 0)
		return 2;
	/* inventory: text (default), json or csv */
	const char *inventory_format = format_given ? g.format : "text";
	if (strcmp(cmd, "inventory") == 0 &&
	    (nargs != 1 || (strcmp(inventory_format, "text") != 0 && strcmp(inventory_format, "json") != 0 &&
			    strcmp(inventory_format, "csv") != 0))) {
		fprintf(stderr, "credsign: inventory [--project P] [--environment E] [--due-before D] "
				"[--format text|json|csv]\n");
		return 2;
	}
	if (strcmp(cmd, "inventory") != 0 && due_before != NULL) {
		fprintf(stderr, "credsign: --due-before is for inventory\n");
		return 2;
	}
	if (c.cacert == NULL || c.cert == NULL || c.key == NULL) {
		fprintf(stderr, "credsign: --cacert, --cert and --key (or CREDSIGN_*) are required\n");
		return 2;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	int rc = 2;
	if (strcmp(cmd, "generate") == 0 && nargs == 1 && g.preset != NULL) {
		rc = cmd_generate(&c, &g); /* (its options checked above: generate_usage) */
	} else if (strcmp(cmd, "cert") == 0 && nargs == 3 && strcmp(argv[optind + 1], "get") == 0) {
		char path[256];
		snprintf(path, sizeof(path), "/cert/%.64s%s", argv[optind + 2], jws_only ? ".jws" : "");
		rc = cmd_get(&c, path, jws_only);
	} else if (get) {
		rc = cmd_signature_get(&c, argv[optind + 2]);
	} else if (find) {
		rc = cmd_signature_find(&c, sha256, find_file);
	} else if (strcmp(cmd, "sign") == 0) {
		sign_opts so = {profile, g.format, payload_type, out_file, argv[optind + 1]};
		rc = cmd_sign(&c, &so);
	} else if (strcmp(cmd, "jwks") == 0 && nargs == 1 && profile != NULL) {
		char path[256], *escaped = curl_easy_escape(NULL, profile, 0);
		snprintf(path, sizeof(path), "/.well-known/jwks.json?profile=%s", escaped != NULL ? escaped : "");
		curl_free(escaped);
		rc = cmd_get(&c, path, 0);
	} else if (strcmp(cmd, "jwks") == 0 && nargs == 1) {
		rc = cmd_get(&c, "/.well-known/jwks.json", 0);
	} else if (strcmp(cmd, "inventory") == 0) {
		rc = cmd_inventory(&c, g.project, g.environment, due_before, inventory_format);
	} else if (strcmp(cmd, "policy") == 0 && nargs == 1 && standards != NULL) {
		char path[512], *escaped = curl_easy_escape(NULL, standards, 0);
		snprintf(path, sizeof(path), "/api/policy?standards=%s&format=%s", escaped ? escaped : "",
			 strcmp(g.format, "json") == 0 ? "json" : strcmp(g.format, "html") == 0 ? "html" : "markdown");
		curl_free(escaped);
		rc = cmd_get(&c, path, 0);
	} else {
		usage(stderr);
	}
	curl_global_cleanup();
	return rc;
}
