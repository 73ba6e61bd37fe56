/*
 * credsign: client of a credsign appliance, and offline certificate verifier.
 *
 *   credsign [CONN] generate --preset P [--type T] [--length N]
 *            [--strength-bits N] [--project X] [--environment E] [--system S]
 *            [--prefix P] [--certify] [--format json|env|raw]
 *   credsign [CONN] cert get ID [--jws]
 *   credsign [CONN] jwks
 *   credsign [CONN] policy --standards P1,P2 [--format markdown|json|html]
 *   credsign verify CERT.jws --jwks FILE [--credential-file F]
 *   credsign access check IDENTITY ACTION [PROJECT [ENV [PRESET]]] --config FILE
 *   credsign --version | --help
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
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "access.h"
#include "ec_util.h"
#include "generate.h"
#include "jose.h"
#include "wipe_alloc.h"

#define RESPONSE_MAX (1 << 20)

typedef struct {
	const char *url, *cacert, *cert, *key;
	int verbose;
} conn;

typedef struct {
	char *data;
	size_t len, cap;
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
	return cs_wiped_append(&b->data, &b->len, &b->cap, ptr, add, RESPONSE_MAX) == 0 ? add : 0;
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
} gen_opts;

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
	if (strcmp(o->format, "raw") == 0) {
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

static EVP_PKEY *jwk_to_pkey(const json_t *jwk)
{
	const char *kty = json_string_value(json_object_get(jwk, "kty"));
	const char *crv = json_string_value(json_object_get(jwk, "crv"));
	const char *x = json_string_value(json_object_get(jwk, "x"));
	const char *y = json_string_value(json_object_get(jwk, "y"));
	uint8_t *bx = NULL, *by = NULL, point[65];
	size_t nx = 0, ny = 0;
	EVP_PKEY *pkey = NULL;
	if (kty == NULL || crv == NULL || x == NULL || y == NULL || strcmp(kty, "EC") != 0 ||
	    strcmp(crv, "P-256") != 0 || cs_b64url_decode(x, &bx, &nx) != CS_OK ||
	    cs_b64url_decode(y, &by, &ny) != CS_OK || nx != 32 || ny != 32)
		goto out;
	point[0] = 0x04;
	memcpy(point + 1, bx, 32);
	memcpy(point + 33, by, 32);
	(void)cs_ec_point_to_pkey(point, sizeof(point), &pkey);
out:
	free(bx);
	free(by);
	return pkey;
}

static int fail_verify(const char *why)
{
	fprintf(stderr, "credsign: NOT VERIFIED: %s\n", why);
	return 1;
}

static int check_required_claims(json_t *claims)
{
	static const char *const top[] = {"iss", "jti", "iat", "preset", "standards", "credential",
					  "entropy_source", "subject", "generation_session_id",
					  "generated_at", "certified_at", NULL};
	for (int i = 0; top[i] != NULL; i++)
		if (json_object_get(claims, top[i]) == NULL) {
			fprintf(stderr, "credsign: NOT VERIFIED: claim '%s' missing\n", top[i]);
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
		fprintf(stderr, "credsign: NOT VERIFIED: credential claims incomplete\n");
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
		fail_verify("malformed commitment");
		goto out;
	}
	if (CRYPTO_memcmp(mac, value, 32) != 0) {
		fail_verify("the credential does not match the certificate's commitment");
		goto out;
	}
	const char *prefix = json_string_value(json_object_get(cred, "prefix"));
	const char *random_part = credential;
	if (prefix != NULL) {
		size_t pl = strlen(prefix);
		if (strncmp(credential, prefix, pl) != 0 || credential[pl] != '_') {
			fail_verify("the credential lacks the certified prefix");
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
			fail_verify("the passphrase has fewer words than the certificate");
			goto out;
		}
		ok = 1;
		goto out;
	}
	const char *charset = json_string_value(json_object_get(cred, "charset"));
	if ((json_int_t)strlen(random_part) != json_integer_value(json_object_get(cred, "length"))) {
		fail_verify("the credential's length differs from the certificate");
		goto out;
	}
	unsigned seen = 0, want = 0;
	for (const char *p = random_part; *p; p++) {
		if (charset != NULL && strchr(charset, *p) == NULL) {
			fail_verify("the credential has a character outside the certified charset");
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
		fail_verify("the credential lacks a certified character class");
		goto out;
	}
	ok = 1;
out:
	free(salt);
	free(value);
	return ok;
}

static int cmd_verify(const char *jws_path, const char *jwks_path, const char *credential_path)
{
	char *jws = read_file(jws_path, 65536), *jwks_text = read_file(jwks_path, 1 << 20);
	char *credential = credential_path != NULL ? read_file(credential_path, CS_CREDENTIAL_MAX + 64) : NULL;
	json_t *jwks = NULL, *header = NULL, *claims = NULL, *peek = NULL;
	EVP_PKEY *pub = NULL;
	int rc = 1;
	if (jws == NULL || jwks_text == NULL || (credential_path != NULL && credential == NULL))
		goto out;
	if ((jwks = json_loads(jwks_text, 0, NULL)) == NULL || !json_is_array(json_object_get(jwks, "keys"))) {
		fail_verify("the JWKS file is not a JSON Web Key Set");
		goto out;
	}
	if (cs_jws_peek_header(jws, &peek) != CS_OK) {
		fail_verify("not a JWS compact serialization");
		goto out;
	}
	const char *kid = json_string_value(json_object_get(peek, "kid"));
	json_t *key = NULL, *k;
	size_t i;
	json_array_foreach(json_object_get(jwks, "keys"), i, k) {
		const char *kk = json_string_value(json_object_get(k, "kid"));
		if (kid != NULL && kk != NULL && strcmp(kid, kk) == 0)
			key = k;
	}
	char thumb[44];
	if (key == NULL || (pub = jwk_to_pkey(key)) == NULL) {
		fail_verify("no usable key in the JWKS has the certificate's kid");
		goto out;
	}
	if (cs_jwk_thumbprint(pub, thumb) != CS_OK || strcmp(thumb, kid) != 0) {
		fail_verify("the key's RFC 7638 thumbprint does not match its kid");
		goto out;
	}
	cs_err r = cs_jws_es256_verify(jws, pub, &header, &claims);
	if (r != CS_OK) {
		fail_verify(r == CS_E_SIGNATURE_INVALID ? "bad signature" : "malformed JWS or alg not ES256");
		goto out;
	}
	const char *typ = json_string_value(json_object_get(header, "typ"));
	if (typ == NULL || strcmp(typ, "credsign-cert+jwt") != 0) {
		fail_verify("header typ is not credsign-cert+jwt");
		goto out;
	}
	if (!check_required_claims(claims) || (credential != NULL && !check_credential(claims, credential)))
		goto out;
	json_t *cred = json_object_get(claims, "credential");
	printf("VERIFIED certificate %s\n", json_string_value(json_object_get(claims, "jti")));
	printf("  issuer:        %s\n", json_string_value(json_object_get(claims, "iss")));
	printf("  signing key:   %s (%s)\n", kid, json_string_value(json_object_get(key, "status")) ?: "status unknown");
	printf("  preset:        %s\n", json_string_value(json_object_get(claims, "preset")));
	printf("  credential:    %s, %lld %s, %.2f bits\n", json_string_value(json_object_get(cred, "type")),
	       (long long)json_integer_value(json_object_get(cred, "length")),
	       json_string_value(json_object_get(cred, "length_unit")) ?: "characters",
	       json_number_value(json_object_get(cred, "entropy_bits")));
	printf("  subject:       %s\n",
	       json_string_value(json_object_get(json_object_get(claims, "subject"), "identity")));
	printf("  generated at:  %s\n", json_string_value(json_object_get(claims, "generated_at")));
	printf("  certified at:  %s\n", json_string_value(json_object_get(claims, "certified_at")));
	const char *unit = json_string_value(json_object_get(cred, "length_unit"));
	if (credential != NULL && unit != NULL && strcmp(unit, "words") == 0)
		printf("  credential matches the commitment and its separators give at least the certified words\n");
	else if (credential != NULL)
		printf("  credential matches the commitment, length, charset and classes\n");
	rc = 0;
out:
	if (credential != NULL) {
		OPENSSL_cleanse(credential, strlen(credential));
		free(credential);
	}
	free(jws);
	free(jwks_text);
	json_decref(jwks);
	json_decref(header);
	json_decref(claims);
	json_decref(peek);
	EVP_PKEY_free(pub);
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
	if (g->role != CS_ROLE_OPERATOR)
		print_list("projects", g->projects, "none");
	if (g->role == CS_ROLE_GENERATOR) {
		print_list("environments", g->environments, "none");
		print_list("presets", g->presets, "any");
	}
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

/* credsign access check IDENTITY ACTION [PROJECT [ENV [PRESET]]] --config FILE:
 * 0 allowed, 1 refused, 2 usage or configuration error. */
static int cmd_access_check(const char *config_path, int argc, char **argv)
{
	int action = argc >= 2 ? cs_access_action_parse(argv[1]) : -1;
	if (argc < 2 || argc > 5 || action < 0) {
		if (argc >= 2 && action < 0)
			fprintf(stderr, "credsign: unknown action '%s'\n", argv[1]);
		fprintf(stderr, "credsign: access check IDENTITY ACTION [PROJECT [ENV [PRESET]]] --config FILE\n"
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
	cs_access_scope scope = {scope_arg(argv, argc, 2), scope_arg(argv, argc, 3), scope_arg(argv, argc, 4)};
	cs_access_decision d;
	cs_access_decide(access, identity, (cs_access_action)action, &scope, 0, 0, &d);
	printf("identity %s, action %s", identity, argv[1]);
	if (scope.project != NULL || scope.environment != NULL || scope.preset != NULL)
		printf(", project %s, environment %s, preset %s", scope.project ?: "(none)",
		       scope.environment ?: "(none)", scope.preset ?: "(none)");
	printf("\n");
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

static void usage(FILE *f)
{
	fprintf(f,
		"usage: credsign [CONN] generate --preset P [--type T] [--length N] [--strength-bits N]\n"
		"                [--project X] [--environment E] [--system S] [--prefix P]\n"
		"                [--exclude-ambiguous] [--certify] [--format json|env|raw]\n"
		"       credsign [CONN] cert get ID [--jws]\n"
		"       credsign [CONN] jwks\n"
		"       credsign [CONN] policy --standards P1,P2 [--format markdown|json|html]\n"
		"       credsign verify CERT.jws --jwks FILE [--credential-file F]\n"
		"       credsign access check IDENTITY ACTION [PROJECT [ENV [PRESET]]] --config FILE\n"
		"       credsign --version | --help\n"
		"CONN:  --url URL --cacert FILE --cert FILE --key FILE [-v|--verbose]\n"
		"       (or CREDSIGN_URL, CREDSIGN_CACERT/CREDSIGN_CA, CREDSIGN_CERT, CREDSIGN_KEY)\n");
}

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
		{"config", required_argument, NULL, 'o'},
		{NULL, 0, NULL, 0},
	};
	cs_json_wiping_allocator(); /* JSON that held the credential is wiped when freed */
	conn c = {env_or("CREDSIGN_URL", "https://127.0.0.1:8443"),
		  env_or("CREDSIGN_CACERT", getenv("CREDSIGN_CA")), getenv("CREDSIGN_CERT"),
		  getenv("CREDSIGN_KEY"), 0};
	gen_opts g = {.format = "json"};
	const char *jwks = NULL, *credential_file = NULL, *standards = NULL;
	const char *config_path = env_or("CREDSIGN_CONF", NULL);
	int jws_only = 0, opt;
	while ((opt = getopt_long(argc, argv, "hv", opts, NULL)) != -1) {
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
		case 'f': g.format = optarg; break;
		case 'j': jws_only = 1; break;
		case 'J': jwks = optarg; break;
		case 'F': credential_file = optarg; break;
		case 'T': standards = optarg; break;
		case 'a': g.exclude_ambiguous = 1; break;
		case 'v': c.verbose = 1; break;
		case 'o': config_path = optarg; break;
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
		return cmd_access_check(config_path, nargs - 2, argv + optind + 2);
	}
	if (strcmp(cmd, "verify") == 0) {
		if (nargs != 2 || jwks == NULL) {
			usage(stderr);
			return 2;
		}
		return cmd_verify(argv[optind + 1], jwks, credential_file);
	}
	if (c.cacert == NULL || c.cert == NULL || c.key == NULL) {
		fprintf(stderr, "credsign: --cacert, --cert and --key (or CREDSIGN_*) are required\n");
		return 2;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	int rc = 2;
	if (strcmp(cmd, "generate") == 0 && nargs == 1 && g.preset != NULL &&
	    (strcmp(g.format, "json") == 0 || strcmp(g.format, "env") == 0 || strcmp(g.format, "raw") == 0)) {
		rc = cmd_generate(&c, &g);
	} else if (strcmp(cmd, "cert") == 0 && nargs == 3 && strcmp(argv[optind + 1], "get") == 0) {
		char path[256];
		snprintf(path, sizeof(path), "/cert/%.64s%s", argv[optind + 2], jws_only ? ".jws" : "");
		rc = cmd_get(&c, path, jws_only);
	} else if (strcmp(cmd, "jwks") == 0 && nargs == 1) {
		rc = cmd_get(&c, "/.well-known/jwks.json", 0);
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
