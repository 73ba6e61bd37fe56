/*
 * credsign-bench: the benchmark harness of the whole appliance (issue 10).
 * tools/bench/run-bench sets up a token, a PKI, a daemon and an openssl
 * s_server and runs this program once; it can also be run by hand against
 * any credsignd. Sections (--sections, default sign,load,delegate,handshake):
 *
 *   sign       the limit: raw C_SignInit/C_Sign ES256 on the daemon's signing
 *              key, as the token object and as a session copy
 *              (C_CopyObject, CKA_TOKEN false), 1 and 2 threads; median of 3
 *              interleaved rounds of SECONDS/5 (at least 0.2 s) each
 *   load       the daemon over mTLS 1.3 keep-alive connections, one thread
 *              and one libcurl easy handle per connection, HTTP/1.1: for
 *              each count in --connections, SECONDS of POST /api/generate,
 *              then SECONDS of pairs (generate, then POST
 *              /api/generate-certificate with its generation_session_id);
 *              rate, p50/p99/p99.9 latency, errors, new connections, the
 *              daemon's peak RSS
 *   delegate   delegated signing (POST /api/sign, issue 15) on --profile
 *              (default "bench": a profile allowing jws, dsse and digest,
 *              payload type application/vnd.in-toto+json, batch_max >= the
 *              largest --batch-sizes, the client holding a signer grant for
 *              it) over the same keep-alive connections: for each format
 *              (jws: a small JSON object; dsse: a ~1 KiB in-toto statement;
 *              digest: a SHA-256) and each count in --connections, SECONDS
 *              of single requests: signatures/s, p50/p99/p99.9 latency,
 *              errors; then, for digest and jws, SECONDS of batches of each
 *              of --batch-sizes items (default 1,10,100) at
 *              --batch-connections (default 8): signatures/s and
 *              requests/s. Every answer is checked (each item signed, with
 *              signature_id, kid, seq and the format's part); the ratio of
 *              each rate to the best 2-thread C_Sign rate of the sign
 *              section (same token, same run); token calls per signature
 *              from GET /metrics when the client may read them
 *   handshake  new connections/s: full TLS 1.3 handshakes with the client
 *              certificate (no reuse, no session resumption) plus one
 *              GET /healthz each, against the daemon and against
 *              --s-server-url (openssl s_server -WWW with the same
 *              certificates), in alternating rounds; the ratio
 *   scale      --scale N more certified pairs through the API
 *              (--fill-connections; the script's scale mode starts from an
 *              empty store, which then holds N certificates), database
 *              bytes per certified pair (main file + WAL after a
 *              checkpoint), `credsign-admin audit verify` time,
 *              GET /cert/{id} over random ids (p50/p99), daemon RSS idle,
 *              under load and over --soak seconds of pairs at 8
 *              connections (flat within 10% after warm-up?)
 *
 * Prints text on stdout and, with --json FILE, the same figures as JSON.
 * Exit status: 0 when the run completed (errors of the daemon are reported,
 * not fatal), 1 when it could not run, or with --strict when any request
 * failed or audit verify did not pass; 2 on a usage error. --version prints
 * the version.
 *
 * Token calls per pair are read from the daemon's GET /metrics
 * (credsign_token_calls_total) around the pairs phase on one connection,
 * when the client's identity holds an operator grant (access.grants).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <p11-kit/p11-kit.h>
#include <p11-kit/uri.h>
#include <sqlite3.h>

#include "cs_secret.h"
#include "sigformat.h"
#include "wipe_alloc.h"

extern char **environ;

#define MAX_LEVELS 8
#define MAX_THREADS 256
#define ID_MAX 64              /* session and certificate ids (22 characters today) */
#define RESPONSE_MAX (1 << 20) /* largest response body read */
#define RESERVOIR 100000       /* certificate ids kept for random fetches */
#define SIGN_ROUNDS 3

#define BATCH_MAX 1000         /* the largest signing.batch_max */
#define DSSE_PAYLOAD_MIN 1024  /* the in-toto statement's size, at least */
#define DSSE_PAYLOAD_TYPE "application/vnd.in-toto+json"

enum { SEC_SIGN = 1, SEC_LOAD = 2, SEC_HANDSHAKE = 4, SEC_SCALE = 8, SEC_DELEGATE = 16 };

typedef struct {
	unsigned sections;
	const char *module, *token_uri, *pin_file, *key_label;
	const char *url, *cacert, *cert, *key, *s_server_url, *preset;
	const char *json_path, *db_path, *admin, *config;
	const char *profile; /* delegate: the signing profile */
	double seconds, soak;
	int conns[MAX_LEVELS];
	size_t nconns;
	int batch_sizes[MAX_LEVELS]; /* delegate: items per batch request */
	size_t nbatch;
	int handshake_threads, fill_conns, fetch_conns, batch_conns;
	long scale, daemon_pid;
	int strict;
} options;

static options opt = {
	.sections = SEC_SIGN | SEC_LOAD | SEC_DELEGATE | SEC_HANDSHAKE,
	.preset = "db-production",
	.profile = "bench",
	.seconds = 10.0,
	.soak = 600.0,
	.conns = {1, 8, 64},
	.nconns = 3,
	.handshake_threads = 2,
	.fill_conns = 32,
	.fetch_conns = 8,
	.batch_sizes = {1, 10, 100},
	.nbatch = 3,
	.batch_conns = 8,
	.scale = 1000000,
};

static char *generate_body; /* {"preset":"..."} */
static atomic_long total_certified;
static unsigned long total_errors;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
	struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---- samples and percentiles ------------------------------------------------ */

typedef struct {
	double *v;
	size_t n, cap;
} samples;

static int samples_add(samples *s, double x)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 4096;
		double *grown = realloc(s->v, cap * sizeof(*grown));
		if (grown == NULL)
			return -1;
		s->v = grown;
		s->cap = cap;
	}
	s->v[s->n++] = x;
	return 0;
}

static int samples_append(samples *to, const samples *from)
{
	for (size_t i = 0; i < from->n; i++)
		if (samples_add(to, from->v[i]) != 0)
			return -1;
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted samples; 0 when there are none. */
static double percentile(const samples *s, double p)
{
	if (s->n == 0)
		return 0.0;
	double rank = p * (double)s->n;
	size_t i = (size_t)rank;
	if ((double)i < rank)
		i++;
	return s->v[i == 0 ? 0 : i - 1];
}

/* ---- the daemon's memory ---------------------------------------------------- */

/* --daemon-pid and its children (the split daemon's key and network
 * processes: /proc/PID/task/PID/children), at most n; how many. */
static size_t daemon_pids(long *pids, size_t n)
{
	if (opt.daemon_pid <= 0 || n == 0)
		return 0;
	size_t k = 0;
	pids[k++] = opt.daemon_pid;
	char path[96];
	snprintf(path, sizeof(path), "/proc/%ld/task/%ld/children", opt.daemon_pid, opt.daemon_pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return k;
	long pid;
	while (k < n && fscanf(f, "%ld", &pid) == 1)
		pids[k++] = pid;
	fclose(f);
	return k;
}

/* VmRSS of --daemon-pid and its children together in kB, or -1. */
static long daemon_rss_kb(void)
{
	long pids[8], total = -1;
	size_t n = daemon_pids(pids, sizeof(pids) / sizeof(pids[0]));
	for (size_t i = 0; i < n; i++) {
		char path[64], line[256];
		snprintf(path, sizeof(path), "/proc/%ld/status", pids[i]);
		FILE *f = fopen(path, "r");
		if (f == NULL)
			continue;
		while (fgets(line, sizeof(line), f) != NULL)
			if (strncmp(line, "VmRSS:", 6) == 0) {
				total = (total < 0 ? 0 : total) + strtol(line + 6, NULL, 10);
				break;
			}
		fclose(f);
	}
	return total;
}

/* CPU seconds (user + system) one process has used so far, or -1. */
static double process_cpu_seconds(long pid)
{
	char path[64], line[1024];
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	char *got = fgets(line, sizeof(line), f);
	fclose(f);
	/* the fields after the command name (which may hold spaces) */
	const char *p = got != NULL ? strrchr(line, ')') : NULL;
	unsigned long utime = 0, stime = 0;
	if (p == NULL || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
		return -1;
	return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* CPU seconds (user + system) the daemon, its children included, has used
 * so far, or -1. */
static double daemon_cpu_seconds(void)
{
	long pids[8];
	double total = -1;
	size_t n = daemon_pids(pids, sizeof(pids) / sizeof(pids[0]));
	for (size_t i = 0; i < n; i++) {
		double s = process_cpu_seconds(pids[i]);
		if (s >= 0)
			total = (total < 0 ? 0 : total) + s;
	}
	return total;
}

/* CPU seconds (user + system) this client has used so far. */
static double client_cpu_seconds(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return -1;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---- the certificate ids kept for random fetches (reservoir sampling) -------- */

static struct {
	pthread_mutex_t mu;
	char (*ids)[ID_MAX];
	size_t n;
	unsigned long seen;
	uint64_t rng;
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .rng = 0x9e3779b97f4a7c15u};

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void pool_add(const char *id)
{
	pthread_mutex_lock(&pool.mu);
	pool.seen++;
	size_t slot = RESERVOIR;
	if (pool.n < RESERVOIR) {
		slot = pool.n++;
	} else {
		uint64_t j = xorshift(&pool.rng) % pool.seen;
		if (j < RESERVOIR)
			slot = (size_t)j;
	}
	if (slot < RESERVOIR)
		snprintf(pool.ids[slot], ID_MAX, "%s", id);
	pthread_mutex_unlock(&pool.mu);
}

/* ---- HTTPS client (libcurl, one easy handle per connection) ----------------- */

typedef struct {
	CURL *h;
	struct curl_slist *headers;
	char *buf;
	size_t len, cap;
	long connects; /* new connections this handle made */
	char err[CURL_ERROR_SIZE];
} client;

static size_t on_data(char *ptr, size_t size, size_t n, void *arg)
{
	client *c = arg;
	size_t add = size * n;
	return cs_wiped_append(&c->buf, &c->len, &c->cap, ptr, add, RESPONSE_MAX) == 0 ? add : 0;
}

/* fresh: a new connection and a full handshake for every request */
static int client_init(client *c, int fresh)
{
	memset(c, 0, sizeof(*c));
	c->h = curl_easy_init();
	c->headers = curl_slist_append(NULL, "Content-Type: application/json");
	c->cap = 4096;
	c->buf = calloc(1, c->cap);
	if (c->h == NULL || c->headers == NULL || c->buf == NULL)
		return -1;
	curl_easy_setopt(c->h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(c->h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_3);
	curl_easy_setopt(c->h, CURLOPT_CAINFO, opt.cacert);
	curl_easy_setopt(c->h, CURLOPT_SSLCERT, opt.cert);
	curl_easy_setopt(c->h, CURLOPT_SSLKEY, opt.key);
	curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->h, CURLOPT_TIMEOUT_MS, 30000L);
	curl_easy_setopt(c->h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c->h, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(c->h, CURLOPT_ERRORBUFFER, c->err);
	if (fresh) {
		curl_easy_setopt(c->h, CURLOPT_FRESH_CONNECT, 1L);
		curl_easy_setopt(c->h, CURLOPT_FORBID_REUSE, 1L);
		curl_easy_setopt(c->h, CURLOPT_SSL_SESSIONID_CACHE, 0L);
	}
	return 0;
}

static void client_free(client *c)
{
	if (c->buf != NULL)
		OPENSSL_cleanse(c->buf, c->cap);
	free(c->buf);
	curl_slist_free_all(c->headers);
	if (c->h != NULL)
		curl_easy_cleanup(c->h);
	memset(c, 0, sizeof(*c));
}

/* One request; body NULL for GET. Returns the HTTP status, or -1 with
 * c->err set. The previous response (it may hold a credential) is wiped. */
static long client_call(client *c, const char *base, const char *path, const char *body)
{
	char url[1024];
	snprintf(url, sizeof(url), "%s%s", base, path);
	OPENSSL_cleanse(c->buf, c->len);
	c->len = 0;
	c->buf[0] = '\0';
	c->err[0] = '\0';
	curl_easy_setopt(c->h, CURLOPT_URL, url);
	if (body != NULL) {
		curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, c->headers);
		curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	} else {
		curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, NULL);
		curl_easy_setopt(c->h, CURLOPT_HTTPGET, 1L);
	}
	CURLcode rc = curl_easy_perform(c->h);
	long n = 0;
	if (curl_easy_getinfo(c->h, CURLINFO_NUM_CONNECTS, &n) == CURLE_OK)
		c->connects += n;
	if (rc != CURLE_OK) {
		if (c->err[0] == '\0')
			snprintf(c->err, sizeof(c->err), "%s", curl_easy_strerror(rc));
		return -1;
	}
	long status = 0;
	curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
	return status;
}

/* The string member `name` of the JSON response into out[ID_MAX]. */
static int response_id(client *c, const char *name, char out[ID_MAX])
{
	json_t *doc = json_loadb(c->buf, c->len, 0, NULL);
	const char *v = json_string_value(json_object_get(doc, name));
	int ok = v != NULL && strlen(v) > 0 && strlen(v) < ID_MAX;
	if (ok)
		snprintf(out, ID_MAX, "%s", v);
	else
		snprintf(c->err, sizeof(c->err), "response without a valid \"%s\"", name);
	json_decref(doc);
	return ok ? 0 : -1;
}

static int expect_status(client *c, long got, long want)
{
	if (got == want)
		return 0;
	if (got >= 0)
		snprintf(c->err, sizeof(c->err), "HTTP %ld: %.100s", got, c->buf);
	return -1;
}

static int do_generate(client *c, char sid[ID_MAX])
{
	long st = client_call(c, opt.url, "/api/generate", generate_body);
	if (expect_status(c, st, 200) != 0)
		return -1;
	return sid != NULL ? response_id(c, "generation_session_id", sid) : 0;
}

static int do_certify(client *c, const char *sid, char cert_id[ID_MAX])
{
	json_t *b = json_pack("{s:s}", "generation_session_id", sid);
	char *body = b != NULL ? json_dumps(b, JSON_COMPACT) : NULL;
	json_decref(b);
	if (body == NULL) {
		snprintf(c->err, sizeof(c->err), "out of memory");
		return -1;
	}
	long st = client_call(c, opt.url, "/api/generate-certificate", body);
	free(body);
	if (expect_status(c, st, 201) != 0 || response_id(c, "cert_id", cert_id) != 0)
		return -1;
	atomic_fetch_add(&total_certified, 1);
	pool_add(cert_id);
	return 0;
}

/* ---- load phases: threads, one connection each ------------------------------- */

typedef enum { OP_GENERATE, OP_PAIRS, OP_FETCH, OP_HANDSHAKE, OP_FILL, OP_SIGN } op_kind;
static const char *const op_names[] = {"generate", "pairs", "fetch", "handshake", "fill", "sign"};

typedef enum { FMT_JWS, FMT_DSSE, FMT_DIGEST, FMT_COUNT } sig_format;
static const char *const format_names[] = {"jws", "dsse", "digest"};

/* One POST /api/sign request body, sent again and again (OP_SIGN). */
typedef struct {
	sig_format format;
	int items; /* 0: the single form; else {"items":[...]} of this many */
	char *body;
} sign_request;

static const char *str_or(const char *s, const char *otherwise)
{
	return s != NULL ? s : otherwise;
}

/* Whether one signed answer (the single form, or an item of a batch's)
 * is whole: signature_id, kid, seq and the format's part; a refused
 * item's code and message into c->err. */
static int check_signed(client *c, const json_t *a, sig_format f)
{
	const json_t *error = json_object_get(a, "error");
	if (error != NULL) {
		snprintf(c->err, sizeof(c->err), "item refused: %" JSON_INTEGER_FORMAT " %s: %.120s",
			 json_integer_value(json_object_get(a, "status")),
			 str_or(json_string_value(json_object_get(error, "code")), "?"),
			 str_or(json_string_value(json_object_get(error, "message")), ""));
		return -1;
	}
	const char *id = json_string_value(json_object_get(a, "signature_id"));
	const char *kid = json_string_value(json_object_get(a, "kid"));
	const char *fmt = json_string_value(json_object_get(a, "format"));
	int ok = id != NULL && *id != '\0' && kid != NULL && *kid != '\0' && json_is_integer(json_object_get(a, "seq")) &&
		 fmt != NULL && strcmp(fmt, format_names[f]) == 0;
	if (ok && f == FMT_JWS) {
		const char *jws = json_string_value(json_object_get(a, "jws"));
		const char *dot = jws != NULL ? strchr(jws, '.') : NULL;
		ok = dot != NULL && strchr(dot + 1, '.') != NULL;
	} else if (ok && f == FMT_DSSE) {
		const json_t *env = json_object_get(a, "envelope");
		ok = json_string_value(json_object_get(env, "payload")) != NULL &&
		     json_array_size(json_object_get(env, "signatures")) == 1;
	} else if (ok) {
		ok = json_string_value(json_object_get(a, "signature")) != NULL &&
		     json_string_value(json_object_get(a, "signature_der")) != NULL;
	}
	if (!ok)
		snprintf(c->err, sizeof(c->err), "a %s answer without signature_id, kid, seq, format or its signature",
			 format_names[f]);
	return ok ? 0 : -1;
}

/* POST /api/sign with r->body; every item must be signed (check_signed).
 * Adds the items signed to *sigs and those refused to *refused; -1 (with
 * c->err) when the request failed or any item was refused. */
static int do_sign(client *c, const sign_request *r, unsigned long *sigs, unsigned long *refused)
{
	long st = client_call(c, opt.url, "/api/sign", r->body);
	if (expect_status(c, st, 200) != 0)
		return -1;
	json_t *doc = json_loadb(c->buf, c->len, 0, NULL);
	int rc = 0;
	if (r->items == 0) {
		rc = check_signed(c, doc, r->format);
		*sigs += rc == 0;
	} else {
		const json_t *items = json_object_get(doc, "items");
		if (json_array_size(items) != (size_t)r->items) {
			snprintf(c->err, sizeof(c->err), "a batch of %d answered with %zu items", r->items,
				 json_array_size(items));
			rc = -1;
		}
		for (size_t i = 0; rc == 0 && i < json_array_size(items); i++) {
			char first[CURL_ERROR_SIZE];
			memcpy(first, c->err, sizeof(first));
			if (check_signed(c, json_array_get(items, i), r->format) == 0) {
				(*sigs)++;
			} else {
				(*refused)++;
				if (first[0] != '\0') /* keep the first item's reason */
					memcpy(c->err, first, sizeof(first));
			}
		}
		if (rc == 0 && c->err[0] != '\0')
			rc = -1;
	}
	json_decref(doc);
	return rc;
}

/* ---- the bodies of POST /api/sign ------------------------------------------------- */

/* The SHA-256 (hex) of the n-th bench "artifact". */
static void artifact_sha256(int n, char hex[65])
{
	char name[64];
	int len = snprintf(name, sizeof(name), "credsign-bench artifact %d", n);
	(void)cs_sig_sha256_hex((const uint8_t *)name, (size_t)len, hex);
}

/* A JWS payload: a small release statement (no reserved claim). */
static json_t *jws_payload(int n)
{
	char hex[65], name[64];
	artifact_sha256(n, hex);
	snprintf(name, sizeof(name), "bench-artifact-%d.tar.gz", n);
	return json_pack("{s:s, s:s, s:s, s:{s:i, s:s}}", "purpose", "credsign-bench", "artifact", name, "sha256", hex,
			 "build", "number", n, "ref", "refs/tags/v1.2.3");
}

/* An in-toto v1 statement with SLSA provenance, of at least
 * DSSE_PAYLOAD_MIN bytes (dependencies added until it is), serialised. */
static char *dsse_statement(int n)
{
	char hex[65], name[64];
	artifact_sha256(n, hex);
	snprintf(name, sizeof(name), "bench-artifact-%d.tar.gz", n);
	json_t *deps = json_array();
	json_t *st = json_pack(
		"{s:s, s:[{s:s, s:{s:s}}], s:s, s:{s:{s:s, s:{s:s, s:s}, s:{}, s:o}, s:{s:{s:s}, s:{s:s, s:s, s:s}}}}",
		"_type", "https://in-toto.io/Statement/v1", "subject", "name", name, "digest", "sha256", hex,
		"predicateType", "https://slsa.dev/provenance/v1", "predicate", "buildDefinition", "buildType",
		"https://credsign.test/bench/build@v1", "externalParameters", "repository",
		"https://git.example.org/bench/app", "ref", "refs/tags/v1.2.3", "internalParameters",
		"resolvedDependencies", json_incref(deps), "runDetails", "builder", "id",
		"https://credsign.test/bench/builder", "metadata", "invocationId", name, "startedOn",
		"2026-01-01T00:00:00Z", "finishedOn", "2026-01-01T00:01:00Z");
	char *text = st != NULL ? json_dumps(st, JSON_COMPACT) : NULL;
	for (int i = 0; text != NULL && strlen(text) < DSSE_PAYLOAD_MIN && i < 64; i++) {
		char uri[96], dhex[65];
		snprintf(uri, sizeof(uri), "pkg:deb/debian/libbench%d@1.%d.0", i, n % 10);
		artifact_sha256(1000 + i, dhex);
		json_array_append_new(deps, json_pack("{s:s, s:{s:s}}", "uri", uri, "digest", "sha256", dhex));
		free(text);
		text = json_dumps(st, JSON_COMPACT);
	}
	json_decref(deps);
	json_decref(st);
	return text;
}

/* Standard base64, padded (malloc'd). */
static char *base64(const char *data, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);
	if (out != NULL)
		EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)data, (int)len);
	return out;
}

/* One item of format f for --profile, the n-th of its request. */
static json_t *sign_item(sig_format f, int n)
{
	json_t *item = json_pack("{s:s, s:s}", "profile", opt.profile, "format", format_names[f]);
	if (item == NULL)
		return NULL;
	int bad = 0;
	if (f == FMT_JWS) {
		json_t *p = jws_payload(n);
		bad = p == NULL || json_object_set_new(item, "payload", p) != 0;
	} else if (f == FMT_DSSE) {
		char *st = dsse_statement(n);
		char *b64 = st != NULL ? base64(st, strlen(st)) : NULL;
		bad = b64 == NULL || json_object_set_new(item, "payload_type", json_string(DSSE_PAYLOAD_TYPE)) != 0 ||
		      json_object_set_new(item, "payload", json_string(b64)) != 0;
		free(b64);
		free(st);
	} else {
		char hex[65];
		artifact_sha256(n, hex);
		bad = json_object_set_new(item, "digest", json_pack("{s:s, s:s}", "alg", "SHA-256", "value", hex)) != 0;
	}
	if (bad) {
		json_decref(item);
		return NULL;
	}
	return item;
}

/* r->body for r->format and r->items; -1 when out of memory. */
static int sign_request_make(sign_request *r)
{
	json_t *doc = NULL;
	if (r->items == 0) {
		doc = sign_item(r->format, 0);
	} else {
		json_t *items = json_array();
		for (int i = 0; items != NULL && i < r->items; i++)
			if (json_array_append_new(items, sign_item(r->format, i)) != 0) {
				json_decref(items);
				items = NULL;
			}
		doc = items != NULL ? json_pack("{s:o}", "items", items) : NULL;
	}
	r->body = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	return r->body != NULL ? 0 : -1;
}

typedef struct phase phase;

typedef struct {
	phase *ph;
	unsigned index;
	samples lat;     /* ms per operation (a pair counts as one) */
	samples req_lat; /* ms per request (pairs: each of the two) */
	unsigned long ok, errors;
	unsigned long sigs, refused; /* OP_SIGN: items signed, items refused */
	long connects;
	double t_begin, t_end;
	char first_error[CURL_ERROR_SIZE];
} worker;

struct phase {
	op_kind kind;
	const char *base; /* handshake: the server's base URL */
	const sign_request *sign; /* OP_SIGN: the request */
	double seconds;
	long target; /* fill: pairs to make */
	atomic_long claimed;
	atomic_int running;
	pthread_barrier_t barrier;
	pthread_mutex_t warm; /* connections are opened one at a time */
	worker *w;
	int n;
};

typedef struct {
	op_kind kind;
	int conns;
	double elapsed, rate;
	unsigned long ok, errors;
	unsigned long sigs, refused; /* OP_SIGN: items signed, items refused in answered batches */
	double sig_rate;             /* OP_SIGN: signatures/s */
	long connects;
	double p50, p99, p999, req_p50, req_p99, req_p999;
	long rss_max_kb;
	double daemon_cpu_us, client_cpu_us; /* per operation; -1 when unknown */
	double daemon_cpu_us_sig, client_cpu_us_sig; /* OP_SIGN: per signature; -1 when unknown */
	char first_error[CURL_ERROR_SIZE];
} phase_result;

static void note_error(worker *w, client *c)
{
	w->errors++;
	if (w->first_error[0] == '\0')
		snprintf(w->first_error, sizeof(w->first_error), "%s", c->err[0] ? c->err : "unknown error");
}

static int one_op(worker *w, client *c, uint64_t *rng)
{
	phase *ph = w->ph;
	char sid[ID_MAX], cert_id[ID_MAX];
	double t0 = now();
	switch (ph->kind) {
	case OP_GENERATE:
		if (do_generate(c, NULL) != 0)
			return -1;
		break;
	case OP_PAIRS:
	case OP_FILL: {
		if (do_generate(c, sid) != 0)
			return -1;
		double t1 = now();
		if (samples_add(&w->req_lat, (t1 - t0) * 1e3) != 0 || do_certify(c, sid, cert_id) != 0)
			return -1;
		if (samples_add(&w->req_lat, (now() - t1) * 1e3) != 0)
			return -1;
		break;
	}
	case OP_FETCH: {
		char path[ID_MAX + 8];
		pthread_mutex_lock(&pool.mu);
		size_t i = (size_t)(xorshift(rng) % pool.n);
		snprintf(path, sizeof(path), "/cert/%s", pool.ids[i]);
		pthread_mutex_unlock(&pool.mu);
		if (expect_status(c, client_call(c, opt.url, path, NULL), 200) != 0)
			return -1;
		break;
	}
	case OP_HANDSHAKE:
		if (expect_status(c, client_call(c, ph->base, "/healthz", NULL), 200) != 0)
			return -1;
		break;
	case OP_SIGN:
		if (do_sign(c, ph->sign, &w->sigs, &w->refused) != 0)
			return -1;
		break;
	}
	return samples_add(&w->lat, (now() - t0) * 1e3);
}

static void *worker_main(void *arg)
{
	worker *w = arg;
	phase *ph = w->ph;
	client c;
	uint64_t rng = 0x2545f4914f6cdd1du ^ ((uint64_t)w->index * 0x9e3779b97f4a7c15u);
	int ready = client_init(&c, ph->kind == OP_HANDSHAKE) == 0;
	if (!ready)
		snprintf(c.err, sizeof(c.err), "curl set-up failed");
	/* keep-alive phases open their connection before the clock starts, one
	 * at a time (the daemon caps concurrent handshakes per source) */
	if (ready && ph->kind != OP_HANDSHAKE) {
		pthread_mutex_lock(&ph->warm);
		ready = expect_status(&c, client_call(&c, opt.url, "/healthz", NULL), 200) == 0;
		pthread_mutex_unlock(&ph->warm);
	}
	if (!ready)
		note_error(w, &c);
	long warm_connects = c.connects;
	pthread_barrier_wait(&ph->barrier);
	w->t_begin = now();
	double end = w->t_begin + ph->seconds;
	while (ready) {
		if (ph->kind == OP_FILL) {
			if (atomic_fetch_add(&ph->claimed, 1) >= ph->target)
				break;
		} else if (now() >= end) {
			break;
		}
		if (one_op(w, &c, &rng) == 0) {
			w->ok++;
		} else {
			note_error(w, &c); /* a failed fill pair is not retried */
			if (c.err[0] != '\0' && strstr(c.err, "out of memory") != NULL)
				break;
		}
	}
	w->t_end = now();
	w->connects = c.connects - warm_connects;
	client_free(&c);
	atomic_fetch_sub(&ph->running, 1);
	return NULL;
}

/* Runs a phase of `conns` threads; samples the daemon's RSS meanwhile (into
 * rss_series every second when given). */
static int run_phase(op_kind kind, int conns, double seconds, long target, const char *base,
		     const sign_request *sign, phase_result *res, samples *rss_series)
{
	memset(res, 0, sizeof(*res));
	res->kind = kind;
	res->conns = conns;
	if (conns < 1 || conns > MAX_THREADS)
		return -1;
	phase ph = {.kind = kind, .base = base, .sign = sign, .seconds = seconds, .target = target, .n = conns};
	atomic_init(&ph.claimed, 0);
	atomic_init(&ph.running, conns);
	ph.w = calloc((size_t)conns, sizeof(worker));
	pthread_t *th = calloc((size_t)conns, sizeof(pthread_t));
	if (ph.w == NULL || th == NULL || pthread_barrier_init(&ph.barrier, NULL, (unsigned)conns) != 0) {
		free(ph.w);
		free(th);
		return -1;
	}
	pthread_mutex_init(&ph.warm, NULL);
	int started = 0;
	for (int i = 0; i < conns; i++) {
		ph.w[i].ph = &ph;
		ph.w[i].index = (unsigned)i;
	}
	for (; started < conns; started++)
		if (pthread_create(&th[started], NULL, worker_main, &ph.w[started]) != 0)
			break;
	if (started < conns) {
		fprintf(stderr, "credsign-bench: cannot start %d threads\n", conns);
		exit(1); /* the started ones wait at the barrier forever */
	}
	long rss_max = -1;
	double next_series = now(), last_progress = now();
	double dcpu0 = daemon_cpu_seconds(), ccpu0 = client_cpu_seconds();
	while (atomic_load(&ph.running) > 0) {
		sleep_s(0.1);
		long kb = daemon_rss_kb();
		if (kb > rss_max)
			rss_max = kb;
		if (rss_series != NULL && now() >= next_series) {
			samples_add(rss_series, (double)kb);
			next_series += 1.0;
		}
		if (kind == OP_FILL && now() - last_progress >= 10.0) {
			last_progress = now();
			fprintf(stderr, "credsign-bench: fill %ld of %ld\n", atomic_load(&ph.claimed), target);
		}
	}
	samples all = {0}, req = {0};
	double t0 = 0, t1 = 0;
	int failed = 0;
	for (int i = 0; i < conns; i++)
		pthread_join(th[i], NULL);
	double dcpu1 = daemon_cpu_seconds(), ccpu1 = client_cpu_seconds();
	for (int i = 0; i < conns; i++) {
		worker *w = &ph.w[i];
		if (i == 0 || w->t_begin < t0)
			t0 = w->t_begin;
		if (w->t_end > t1)
			t1 = w->t_end;
		res->ok += w->ok;
		res->errors += w->errors;
		res->sigs += w->sigs;
		res->refused += w->refused;
		res->connects += w->connects;
		if (res->first_error[0] == '\0' && w->first_error[0] != '\0')
			snprintf(res->first_error, sizeof(res->first_error), "%s", w->first_error);
		failed |= samples_append(&all, &w->lat) != 0 || samples_append(&req, &w->req_lat) != 0;
		free(w->lat.v);
		free(w->req_lat.v);
	}
	pthread_barrier_destroy(&ph.barrier);
	pthread_mutex_destroy(&ph.warm);
	free(ph.w);
	free(th);
	if (all.n > 0)
		qsort(all.v, all.n, sizeof(double), cmp_double);
	if (req.n > 0)
		qsort(req.v, req.n, sizeof(double), cmp_double);
	res->elapsed = t1 - t0;
	res->rate = res->elapsed > 0 ? (double)res->ok / res->elapsed : 0.0;
	res->sig_rate = res->elapsed > 0 ? (double)res->sigs / res->elapsed : 0.0;
	res->p50 = percentile(&all, 0.50);
	res->p99 = percentile(&all, 0.99);
	res->p999 = percentile(&all, 0.999);
	res->req_p50 = percentile(&req, 0.50);
	res->req_p99 = percentile(&req, 0.99);
	res->req_p999 = percentile(&req, 0.999);
	res->rss_max_kb = rss_max;
	double ops = res->ok > 0 ? (double)res->ok : 1;
	res->daemon_cpu_us = dcpu0 >= 0 && dcpu1 >= dcpu0 && res->ok > 0 ? (dcpu1 - dcpu0) * 1e6 / ops : -1;
	res->client_cpu_us = ccpu0 >= 0 && ccpu1 >= ccpu0 && res->ok > 0 ? (ccpu1 - ccpu0) * 1e6 / ops : -1;
	double sigs = (double)res->sigs;
	res->daemon_cpu_us_sig = dcpu0 >= 0 && dcpu1 >= dcpu0 && sigs > 0 ? (dcpu1 - dcpu0) * 1e6 / sigs : -1;
	res->client_cpu_us_sig = ccpu0 >= 0 && ccpu1 >= ccpu0 && sigs > 0 ? (ccpu1 - ccpu0) * 1e6 / sigs : -1;
	free(all.v);
	free(req.v);
	total_errors += res->errors;
	return failed ? -1 : 0;
}

static json_t *phase_json(const phase_result *r)
{
	json_t *j = json_pack("{s:s, s:i, s:f, s:f, s:I, s:I, s:I, s:f, s:f, s:f}", "kind", op_names[r->kind],
			      "connections", r->conns, "seconds", r->elapsed, "rate_per_s", r->rate, "ok",
			      (json_int_t)r->ok, "errors", (json_int_t)r->errors, "new_connections",
			      (json_int_t)r->connects, "p50_ms", r->p50, "p99_ms", r->p99, "p999_ms", r->p999);
	if (j == NULL)
		return NULL;
	json_object_set_new(j, "daemon_cpu_us_per_op", r->daemon_cpu_us >= 0 ? json_real(r->daemon_cpu_us) : json_null());
	json_object_set_new(j, "client_cpu_us_per_op", r->client_cpu_us >= 0 ? json_real(r->client_cpu_us) : json_null());
	if (r->kind == OP_SIGN) {
		json_object_set_new(j, "signatures", json_integer((json_int_t)r->sigs));
		json_object_set_new(j, "signatures_per_s", json_real(r->sig_rate));
		json_object_set_new(j, "refused_items", json_integer((json_int_t)r->refused));
		json_object_set_new(j, "daemon_cpu_us_per_signature",
				    r->daemon_cpu_us_sig >= 0 ? json_real(r->daemon_cpu_us_sig) : json_null());
		json_object_set_new(j, "client_cpu_us_per_signature",
				    r->client_cpu_us_sig >= 0 ? json_real(r->client_cpu_us_sig) : json_null());
	}
	if (r->kind == OP_PAIRS || r->kind == OP_FILL) {
		json_object_set_new(j, "request_p50_ms", json_real(r->req_p50));
		json_object_set_new(j, "request_p99_ms", json_real(r->req_p99));
		json_object_set_new(j, "request_p999_ms", json_real(r->req_p999));
	}
	json_object_set_new(j, "daemon_rss_max_kb", r->rss_max_kb >= 0 ? json_integer(r->rss_max_kb) : json_null());
	json_object_set_new(j, "first_error", r->first_error[0] ? json_string(r->first_error) : json_null());
	return j;
}

static void print_error(const phase_result *r)
{
	if (r->first_error[0] != '\0')
		printf("    first error (%s, %d connections): %s\n", op_names[r->kind], r->conns, r->first_error);
}

/* ---- the limit: direct C_Sign ------------------------------------------------ */

static CK_FUNCTION_LIST *p11;
static CK_SLOT_ID p11_slot;
static CK_SESSION_HANDLE login_session = CK_INVALID_HANDLE;

static int p11_open(void)
{
	p11 = p11_kit_module_load(opt.module, P11_KIT_MODULE_UNMANAGED);
	if (p11 == NULL) {
		fprintf(stderr, "credsign-bench: cannot load %s: %s\n", opt.module, p11_kit_message());
		return -1;
	}
	CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
	CK_RV rv = p11->C_Initialize(&args);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		fprintf(stderr, "credsign-bench: C_Initialize: 0x%lx\n", rv);
		return -1;
	}
	P11KitUri *uri = p11_kit_uri_new();
	CK_SLOT_ID slots[64];
	CK_ULONG n = 64;
	int found = 0;
	if (uri == NULL || p11_kit_uri_parse(opt.token_uri, P11_KIT_URI_FOR_TOKEN, uri) != P11_KIT_URI_OK ||
	    p11->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK) {
		fprintf(stderr, "credsign-bench: bad token URI or no slots\n");
		p11_kit_uri_free(uri);
		return -1;
	}
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO ti;
		if (p11->C_GetTokenInfo(slots[i], &ti) == CKR_OK && p11_kit_uri_match_token_info(uri, &ti)) {
			p11_slot = slots[i];
			found++;
		}
	}
	p11_kit_uri_free(uri);
	if (found != 1) {
		fprintf(stderr, "credsign-bench: %d tokens match %s\n", found, opt.token_uri);
		return -1;
	}
	char pin[CS_PIN_MAX];
	size_t len = 0;
	if (cs_secret_read_file(opt.pin_file, pin, sizeof(pin), &len) != 0) {
		fprintf(stderr, "credsign-bench: cannot read the PIN file %s\n", opt.pin_file);
		return -1;
	}
	rv = p11->C_OpenSession(p11_slot, CKF_SERIAL_SESSION, NULL, NULL, &login_session);
	if (rv == CKR_OK) {
		rv = p11->C_Login(login_session, CKU_USER, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)len);
		if (rv == CKR_USER_ALREADY_LOGGED_IN)
			rv = CKR_OK;
	}
	cs_wipe(pin, sizeof(pin));
	if (rv != CKR_OK) {
		fprintf(stderr, "credsign-bench: token login failed: 0x%lx\n", rv);
		return -1;
	}
	return 0;
}

static void p11_close(void)
{
	if (p11 == NULL)
		return;
	if (login_session != CK_INVALID_HANDLE) {
		p11->C_Logout(login_session);
		p11->C_CloseSession(login_session);
	}
	p11->C_Finalize(NULL);
	p11_kit_module_release(p11);
	p11 = NULL;
}

static CK_OBJECT_HANDLE find_private(CK_SESSION_HANDLE h)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
			    {CKA_LABEL, (void *)opt.key_label, (CK_ULONG)strlen(opt.key_label)}};
	CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE;
	CK_ULONG n = 0;
	if (p11->C_FindObjectsInit(h, t, 2) != CKR_OK)
		return CK_INVALID_HANDLE;
	CK_RV rv = p11->C_FindObjects(h, &obj, 1, &n);
	p11->C_FindObjectsFinal(h);
	return rv == CKR_OK && n == 1 ? obj : CK_INVALID_HANDLE;
}

typedef struct {
	int session_copy;
	double seconds;
	unsigned long count;
	int failed;
} sign_run;

static void *sign_worker(void *arg)
{
	sign_run *r = arg;
	uint8_t digest[SHA256_DIGEST_LENGTH], sig[128];
	SHA256((const uint8_t *)"credsign-bench", 14, digest);
	CK_SESSION_HANDLE h;
	CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE, copy = CK_INVALID_HANDLE;
	if (p11->C_OpenSession(p11_slot, CKF_SERIAL_SESSION, NULL, NULL, &h) != CKR_OK) {
		r->failed = 1;
		return NULL;
	}
	obj = find_private(h);
	if (obj != CK_INVALID_HANDLE && r->session_copy) {
		CK_BBOOL no = CK_FALSE;
		CK_ATTRIBUTE t = {CKA_TOKEN, &no, sizeof(no)};
		obj = p11->C_CopyObject(h, obj, &t, 1, &copy) == CKR_OK ? copy : CK_INVALID_HANDLE;
	}
	r->failed = obj == CK_INVALID_HANDLE;
	double end = now() + r->seconds;
	while (!r->failed && now() < end)
		for (int i = 0; i < 16; i++) {
			CK_MECHANISM m = {CKM_ECDSA, NULL, 0};
			CK_ULONG len = sizeof(sig);
			if (p11->C_SignInit(h, &m, obj) != CKR_OK ||
			    p11->C_Sign(h, digest, sizeof(digest), sig, &len) != CKR_OK) {
				r->failed = 1;
				break;
			}
			r->count++;
		}
	if (copy != CK_INVALID_HANDLE)
		p11->C_DestroyObject(h, copy);
	p11->C_CloseSession(h);
	return NULL;
}

static double sign_rate(int session_copy, int threads, double seconds)
{
	pthread_t th[2];
	sign_run runs[2];
	double t0 = now();
	int started = 0, failed = 0;
	for (; started < threads; started++) {
		runs[started] = (sign_run){session_copy, seconds, 0, 0};
		if (pthread_create(&th[started], NULL, sign_worker, &runs[started]) != 0) {
			failed = 1;
			break;
		}
	}
	unsigned long total = 0;
	for (int i = 0; i < started; i++) {
		pthread_join(th[i], NULL);
		total += runs[i].count;
		failed |= runs[i].failed;
	}
	return failed ? -1.0 : (double)total / (now() - t0);
}

/* rate[path][threads-1], median of SIGN_ROUNDS interleaved rounds */
static int run_sign(double rate[2][2])
{
	double rounds[2][2][SIGN_ROUNDS];
	double round_s = opt.seconds / 5 > 0.2 ? opt.seconds / 5 : 0.2;
	for (int r = 0; r < SIGN_ROUNDS; r++)
		for (int p = 0; p < 2; p++)
			for (int t = 0; t < 2; t++)
				if ((rounds[p][t][r] = sign_rate(p, t + 1, round_s)) < 0) {
					fprintf(stderr, "credsign-bench: C_Sign failed (key label %s)\n",
						opt.key_label);
					return -1;
				}
	for (int p = 0; p < 2; p++)
		for (int t = 0; t < 2; t++) {
			qsort(rounds[p][t], SIGN_ROUNDS, sizeof(double), cmp_double);
			rate[p][t] = rounds[p][t][SIGN_ROUNDS / 2];
		}
	printf("limit: raw C_Sign ES256 on %s, key %s (median of %d interleaved rounds of %.1f s)\n",
	       opt.token_uri, opt.key_label, SIGN_ROUNDS, round_s);
	printf("  %-16s %12s %12s\n", "path", "1 thread/s", "2 threads/s");
	printf("  %-16s %12.0f %12.0f\n", "direct-token", rate[0][0], rate[0][1]);
	printf("  %-16s %12.0f %12.0f\n", "direct-session", rate[1][0], rate[1][1]);
	return 0;
}

/* ---- scale helpers -------------------------------------------------------------- */

static long long file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (long long)st.st_size : 0;
}

/* Checkpoints the WAL (TRUNCATE, else PASSIVE) and counts certificates. */
static int db_measure(long long *bytes, long long *certs)
{
	sqlite3 *db = NULL;
	*certs = -1;
	if (sqlite3_open_v2(opt.db_path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		fprintf(stderr, "credsign-bench: cannot open %s: %s\n", opt.db_path, sqlite3_errmsg(db));
		sqlite3_close(db);
		return -1;
	}
	sqlite3_busy_timeout(db, 10000);
	if (sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL) != SQLITE_OK)
		(void)sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM certificates", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		*certs = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	char wal[4096];
	snprintf(wal, sizeof(wal), "%s-wal", opt.db_path);
	*bytes = file_size(opt.db_path) + file_size(wal);
	return 0;
}

/* Runs `ADMIN --config CONFIG audit verify`; its wall time in seconds. */
static int audit_verify(double *seconds, int *exit_code)
{
	char *argv[] = {(char *)opt.admin, (char *)"--config", (char *)opt.config, (char *)"audit", (char *)"verify",
			NULL};
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
	pid_t pid;
	double t0 = now();
	int rc = posix_spawn(&pid, opt.admin, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		fprintf(stderr, "credsign-bench: cannot run %s: %s\n", opt.admin, strerror(rc));
		return -1;
	}
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	*seconds = now() - t0;
	*exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	return 0;
}

/* ---- sections ---------------------------------------------------------------------- */

static void print_level(const phase_result *g, const phase_result *p)
{
	printf("  %5d %10.1f %7.2f %7.2f %8.2f %6lu | %8.1f %7.2f %7.2f %8.2f %6lu %7.1f %6ld\n", g->conns,
	       g->rate, g->p50, g->p99, g->p999, g->errors, p->rate, p->p50, p->p99, p->p999, p->errors,
	       p->req_p99, (g->rss_max_kb > p->rss_max_kb ? g->rss_max_kb : p->rss_max_kb) / 1024);
	if (g->daemon_cpu_us >= 0 && p->daemon_cpu_us >= 0)
		printf("        CPU per op: generate daemon %.0f us + client %.0f us | pair daemon %.0f us + client %.0f us\n",
		       g->daemon_cpu_us, g->client_cpu_us, p->daemon_cpu_us, p->client_cpu_us);
	print_error(g);
	print_error(p);
}

/* PKCS#11 calls the daemon has made so far, from its GET /metrics (the sum
 * of credsign_token_calls_total over functions and results), or -1 when
 * this client may not read the metrics (no operator grant). */
static double token_calls_so_far(void)
{
	client c;
	if (client_init(&c, 1) != 0)
		return -1;
	double total = -1;
	if (client_call(&c, opt.url, "/metrics", NULL) == 200) {
		total = 0;
		static const char prefix[] = "credsign_token_calls_total{";
		for (char *line = c.buf; line != NULL && *line != '\0';) {
			char *end = strchr(line, '\n');
			if (end != NULL)
				*end = '\0'; /* one line at a time */
			if (strncmp(line, prefix, sizeof(prefix) - 1) == 0) {
				const char *value = strrchr(line, ' ');
				if (value != NULL)
					total += strtod(value + 1, NULL);
			}
			line = end != NULL ? end + 1 : NULL;
		}
	}
	client_free(&c);
	return total;
}

static double calls_per_pair = -1;
static int calls_conns;

/* CPU per pair at 8 connections, daemon and client, microseconds */
static double pair8_daemon_cpu_us = -1, pair8_client_cpu_us = -1;

static int run_load(json_t *out, double *pairs_at_8)
{
	json_t *levels = json_array();
	json_object_set_new(out, "load", levels);
	printf("daemon over mTLS 1.3 keep-alive connections, preset %s, %.1f s per phase\n", opt.preset,
	       opt.seconds);
	printf("  %5s %10s %7s %7s %8s %6s | %8s %7s %7s %8s %6s %7s %6s\n", "conns", "generate/s", "p50 ms",
	       "p99 ms", "p99.9 ms", "errors", "pairs/s", "p50 ms", "p99 ms", "p99.9 ms", "errors", "req p99",
	       "RSS MB");
	for (size_t i = 0; i < opt.nconns; i++) {
		phase_result g, p;
		double calls_before = -1;
		if (run_phase(OP_GENERATE, opt.conns[i], opt.seconds, 0, NULL, NULL, &g, NULL) != 0 ||
		    (calls_before = token_calls_so_far(), 0) ||
		    run_phase(OP_PAIRS, opt.conns[i], opt.seconds, 0, NULL, NULL, &p, NULL) != 0)
			return -1;
		double calls_after = calls_before >= 0 ? token_calls_so_far() : -1;
		/* from the phase with the fewest connections (their handshakes'
		 * token calls weigh least) */
		if (calls_per_pair < 0 && calls_after >= calls_before && calls_before >= 0 && p.ok > 0) {
			calls_per_pair = (calls_after - calls_before) / (double)p.ok;
			calls_conns = opt.conns[i];
		}
		print_level(&g, &p);
		json_array_append_new(levels, json_pack("{s:i, s:o, s:o}", "connections", opt.conns[i], "generate",
							phase_json(&g), "pairs", phase_json(&p)));
		if (opt.conns[i] == 8) {
			*pairs_at_8 = p.rate;
			pair8_daemon_cpu_us = p.daemon_cpu_us;
			pair8_client_cpu_us = p.client_cpu_us;
		}
	}
	return 0;
}

/* ---- delegated signing (issue 15) ---------------------------------------------------- */

/* v with `decimals` decimals, or "-" when v < 0 (not measured) */
static const char *figure(char buf[24], int decimals, double v)
{
	if (v < 0)
		snprintf(buf, 24, "-");
	else
		snprintf(buf, 24, "%.*f", decimals, v);
	return buf;
}

/* One phase of POST /api/sign: runs it, prints its line, appends its JSON
 * (the phase's figures, format, items, ratio to raw, token calls per
 * signature) to arr. raw: the best 2-thread C_Sign rate, 0 when unknown. */
static int delegate_phase(const sign_request *r, int conns, double raw, json_t *arr, phase_result *res)
{
	double before = token_calls_so_far();
	if (run_phase(OP_SIGN, conns, opt.seconds, 0, NULL, r, res, NULL) != 0)
		return -1;
	double after = before >= 0 ? token_calls_so_far() : -1;
	double calls = before >= 0 && after >= before && res->sigs > 0 ? (after - before) / (double)res->sigs : -1;
	double ratio = raw > 0 ? res->sig_rate / raw : -1;
	char rb[24], cb[24], db[24];
	if (r->items == 0)
		printf("  %-6s %5d %9.1f %7.2f %7.2f %8.2f %6lu %8s %9s %9s\n", format_names[r->format], conns,
		       res->sig_rate, res->p50, res->p99, res->p999, res->errors, figure(rb, 4, ratio),
		       figure(cb, 2, calls), figure(db, 0, res->daemon_cpu_us_sig));
	else
		printf("  %-6s %5d %9.1f %8.1f %7.2f %7.2f %6lu %8s %9s %9s\n", format_names[r->format], r->items,
		       res->sig_rate, res->rate, res->p50, res->p99, res->errors, figure(rb, 4, ratio),
		       figure(cb, 2, calls), figure(db, 0, res->daemon_cpu_us_sig));
	print_error(res);
	json_t *j = phase_json(res);
	if (j == NULL)
		return -1;
	json_object_set_new(j, "format", json_string(format_names[r->format]));
	json_object_set_new(j, "items_per_request", json_integer(r->items == 0 ? 1 : r->items));
	json_object_set_new(j, "batch_form", json_boolean(r->items != 0));
	json_object_set_new(j, "ratio_to_raw_sign", ratio >= 0 ? json_real(ratio) : json_null());
	json_object_set_new(j, "token_calls_per_signature", calls >= 0 ? json_real(calls) : json_null());
	json_array_append_new(arr, j);
	return 0;
}

/* One request on a new connection: is --profile usable (the profile
 * exists, allows digest, and this client may sign with it)? */
static int delegate_probe(char why[CURL_ERROR_SIZE])
{
	client c;
	sign_request r = {FMT_DIGEST, 0, NULL};
	unsigned long sigs = 0, refused = 0;
	int rc = -1;
	if (client_init(&c, 0) == 0 && sign_request_make(&r) == 0)
		rc = do_sign(&c, &r, &sigs, &refused);
	snprintf(why, CURL_ERROR_SIZE, "%s", c.err[0] != '\0' ? c.err : "set-up failed");
	free(r.body);
	client_free(&c);
	return rc;
}

/* The delegate section. raw: the best 2-thread C_Sign rate of the sign
 * section (0: not run). at8[f]: signatures/s of single requests of each
 * format at 8 connections (-1: not run); *batch_best, *batch_best_items,
 * *batch_best_format: the fastest batch phase. */
static int run_delegate(json_t *out, double raw, double at8[FMT_COUNT], double *batch_best, int *batch_best_items,
			sig_format *batch_best_format)
{
	json_t *d = json_object(), *single = json_array(), *batch = json_array();
	if (d == NULL || single == NULL || batch == NULL) {
		json_decref(d);
		json_decref(single);
		json_decref(batch);
		return -1;
	}
	json_object_set_new(out, "delegate", d);
	json_object_set_new(d, "profile", json_string(opt.profile));
	char why[CURL_ERROR_SIZE];
	if (delegate_probe(why) != 0) {
		printf("delegated signing: profile %s not usable, section skipped: %s\n", opt.profile, why);
		json_object_set_new(d, "skipped", json_string(why));
		json_decref(single);
		json_decref(batch);
		total_errors++;
		return 0;
	}
	json_t *jp = jws_payload(0);
	char *jtext = jp != NULL ? json_dumps(jp, JSON_COMPACT) : NULL, *dtext = dsse_statement(0);
	json_decref(jp);
	size_t jlen = jtext != NULL ? strlen(jtext) : 0, dlen = dtext != NULL ? strlen(dtext) : 0;
	free(jtext);
	free(dtext);
	json_object_set_new(d, "jws_payload_bytes", json_integer((json_int_t)jlen));
	json_object_set_new(d, "dsse_payload_bytes", json_integer((json_int_t)dlen));
	json_object_set_new(d, "dsse_payload_type", json_string(DSSE_PAYLOAD_TYPE));
	json_object_set_new(d, "raw_sign_per_s", raw > 0 ? json_real(raw) : json_null());
	json_object_set_new(d, "single", single);
	json_object_set_new(d, "batch", batch);
	char rb[24];
	printf("delegated signing: POST /api/sign, profile %s, mTLS 1.3 keep-alive connections, %.1f s per phase\n"
	       "  jws: %zu-byte JSON payload; dsse: %zu-byte in-toto statement (%s); digest: SHA-256\n"
	       "  / raw: signatures/s over the best 2-thread C_Sign rate of this run (%s/s)\n",
	       opt.profile, opt.seconds, jlen, dlen, DSSE_PAYLOAD_TYPE, figure(rb, 0, raw > 0 ? raw : -1));
	printf("  %-6s %5s %9s %7s %7s %8s %6s %8s %9s %9s\n", "format", "conns", "sigs/s", "p50 ms", "p99 ms",
	       "p99.9 ms", "errors", "/ raw", "calls/sig", "daemon us");
	for (int f = 0; f < FMT_COUNT; f++)
		at8[f] = -1;
	*batch_best = -1;
	int rc = 0;
	for (int f = 0; rc == 0 && f < FMT_COUNT; f++) {
		sign_request r = {(sig_format)f, 0, NULL};
		if (sign_request_make(&r) != 0)
			rc = -1;
		for (size_t i = 0; rc == 0 && i < opt.nconns; i++) {
			phase_result res;
			rc = delegate_phase(&r, opt.conns[i], raw, single, &res);
			if (rc == 0 && opt.conns[i] == 8)
				at8[f] = res.sig_rate;
		}
		free(r.body);
	}
	if (rc == 0 && opt.nbatch > 0) {
		printf("  batches of items at %d connections (latency per request)\n", opt.batch_conns);
		printf("  %-6s %5s %9s %8s %7s %7s %6s %8s %9s %9s\n", "format", "items", "sigs/s", "req/s", "p50 ms",
		       "p99 ms", "errors", "/ raw", "calls/sig", "daemon us");
	}
	static const sig_format batched[] = {FMT_DIGEST, FMT_JWS};
	for (size_t f = 0; rc == 0 && f < sizeof(batched) / sizeof(batched[0]); f++)
		for (size_t i = 0; rc == 0 && i < opt.nbatch; i++) {
			sign_request r = {batched[f], opt.batch_sizes[i], NULL};
			phase_result res;
			rc = sign_request_make(&r) == 0 ? delegate_phase(&r, opt.batch_conns, raw, batch, &res) : -1;
			free(r.body);
			if (rc == 0 && res.sig_rate > *batch_best) {
				*batch_best = res.sig_rate;
				*batch_best_items = r.items;
				*batch_best_format = r.format;
			}
		}
	json_object_set_new(d, "batch_connections", json_integer(opt.batch_conns));
	return rc;
}

static int run_handshakes(json_t *out, double *ratio)
{
	/* alternating rounds, so that a change of the machine's load affects both */
	enum { rounds = 2 };
	double secs = opt.seconds / rounds;
	phase_result d[2], s[2];
	int with_s = opt.s_server_url != NULL;
	for (int r = 0; r < rounds; r++) {
		if (run_phase(OP_HANDSHAKE, opt.handshake_threads, secs, 0, opt.url, NULL, &d[r], NULL) != 0)
			return -1;
		if (with_s && run_phase(OP_HANDSHAKE, opt.handshake_threads, secs, 0, opt.s_server_url, NULL, &s[r],
					NULL) != 0)
			return -1;
	}
	double drate = 0, srate = 0;
	unsigned long derr = 0, serr = 0;
	for (int r = 0; r < rounds; r++) {
		drate += d[r].rate / rounds;
		derr += d[r].errors;
		if (with_s) {
			srate += s[r].rate / rounds;
			serr += s[r].errors;
		}
	}
	printf("new connections/s: full TLS 1.3 handshake with client certificate + one GET /healthz, "
	       "%d client threads, %d rounds of %.1f s\n",
	       opt.handshake_threads, rounds, secs);
	printf("  credsignd        %8.1f/s (rounds %.1f, %.1f)  first round p50 %.2f ms, p99 %.2f ms  errors %lu\n",
	       drate, d[0].rate, d[1].rate, d[0].p50, d[0].p99, derr);
	print_error(&d[0]);
	json_t *h = json_pack("{s:i, s:f, s:I, s:o}", "client_threads", opt.handshake_threads, "daemon_per_s", drate,
			      "daemon_errors", (json_int_t)derr, "daemon_rounds", json_array());
	for (int r = 0; r < rounds; r++)
		json_array_append_new(json_object_get(h, "daemon_rounds"), phase_json(&d[r]));
	if (with_s) {
		printf("  openssl s_server %8.1f/s (rounds %.1f, %.1f)  first round p50 %.2f ms, p99 %.2f ms  errors %lu\n",
		       srate, s[0].rate, s[1].rate, s[0].p50, s[0].p99, serr);
		print_error(&s[0]);
		json_object_set_new(h, "s_server_per_s", json_real(srate));
		json_object_set_new(h, "s_server_errors", json_integer((json_int_t)serr));
		json_t *sr = json_array();
		for (int r = 0; r < rounds; r++)
			json_array_append_new(sr, phase_json(&s[r]));
		json_object_set_new(h, "s_server_rounds", sr);
		*ratio = srate > 0 ? drate / srate : 0.0;
	}
	json_object_set_new(out, "handshake", h);
	return 0;
}

static int run_scale(json_t *out)
{
	json_t *sc = json_object();
	json_object_set_new(out, "scale", sc);
	long idle0 = daemon_rss_kb();
	phase_result fill, fetch;
	if (run_phase(OP_FILL, opt.fill_conns, 0, opt.scale, NULL, NULL, &fill, NULL) != 0)
		return -1;
	printf("scale: %ld certified pairs added through the API (%d connections): %.1f pairs/s, %.0f s, "
	       "errors %lu\n",
	       opt.scale, opt.fill_conns, fill.rate, fill.elapsed, fill.errors);
	print_error(&fill);
	json_object_set_new(sc, "pairs_added", json_integer(opt.scale));
	json_object_set_new(sc, "fill", phase_json(&fill));
	sleep_s(1.0); /* let the daemon's pending work settle before "idle" */
	long idle1 = daemon_rss_kb();
	if (opt.db_path != NULL) {
		long long bytes = 0, certs = -1;
		if (db_measure(&bytes, &certs) == 0) {
			long long n = certs > 0 ? certs : (long long)atomic_load(&total_certified);
			printf("  database: %lld bytes (main file + WAL after a checkpoint), %lld certificates: "
			       "%.0f bytes per certified pair\n",
			       bytes, n, n > 0 ? (double)bytes / (double)n : 0.0);
			json_object_set_new(sc, "db_bytes", json_integer(bytes));
			json_object_set_new(sc, "certificates", json_integer(n));
			json_object_set_new(sc, "db_bytes_per_pair", json_real(n > 0 ? (double)bytes / (double)n : 0.0));
		}
	}
	if (opt.admin != NULL && opt.config != NULL) {
		double secs = 0;
		int code = -1;
		if (audit_verify(&secs, &code) == 0) {
			printf("  credsign-admin audit verify: %.2f s, exit %d (%s)\n", secs, code,
			       code == 0 ? "intact" : "FAILED");
			if (code != 0)
				printf("    see why: %s --config %s audit verify\n", opt.admin, opt.config);
			json_object_set_new(sc, "audit_verify_seconds", json_real(secs));
			json_object_set_new(sc, "audit_verify_exit", json_integer(code));
			if (code != 0)
				total_errors++;
		}
	}
	if (pool.n == 0) {
		fprintf(stderr, "credsign-bench: no certificate ids to fetch\n");
		return -1;
	}
	/* one connection: the latency of a fetch itself; then --fetch-connections,
	 * where closed-loop latency is mostly queueing (connections / rate) */
	phase_result fetch1;
	if (run_phase(OP_FETCH, 1, opt.seconds, 0, NULL, NULL, &fetch1, NULL) != 0 ||
	    run_phase(OP_FETCH, opt.fetch_conns, opt.seconds, 0, NULL, NULL, &fetch, NULL) != 0)
		return -1;
	const phase_result *fetches[] = {&fetch1, &fetch};
	for (int i = 0; i < 2; i++) {
		const phase_result *f = fetches[i];
		printf("  GET /cert/{id} over %zu random ids, %d connection%s: %.1f/s  p50 %.2f ms  p99 %.2f ms  "
		       "p99.9 %.2f ms  errors %lu  CPU per fetch: daemon %.0f us + client %.0f us\n",
		       pool.n, f->conns, f->conns == 1 ? "" : "s", f->rate, f->p50, f->p99, f->p999, f->errors,
		       f->daemon_cpu_us, f->client_cpu_us);
		print_error(f);
	}
	json_object_set_new(sc, "fetch_1", phase_json(&fetch1));
	json_object_set_new(sc, "fetch", phase_json(&fetch));
	printf("  daemon RSS: idle before the fill %.1f MB, idle after it %.1f MB, peak during fill %.1f MB, "
	       "during fetches %.1f MB\n",
	       (double)idle0 / 1024, (double)idle1 / 1024, (double)fill.rss_max_kb / 1024,
	       (double)fetch.rss_max_kb / 1024);
	json_object_set_new(sc, "rss_idle_before_fill_kb", json_integer(idle0));
	json_object_set_new(sc, "rss_idle_after_fill_kb", json_integer(idle1));
	if (opt.soak > 0) {
		samples series = {0};
		phase_result soak;
		if (run_phase(OP_PAIRS, 8, opt.soak, 0, NULL, NULL, &soak, &series) != 0) {
			free(series.v);
			return -1;
		}
		/* warm-up: the first fifth, at most 60 s */
		size_t warm = series.n / 5 < 60 ? series.n / 5 : 60;
		double first = 0, min = 0, max = 0, last = 0;
		for (size_t i = warm; i < series.n; i++) {
			double v = series.v[i];
			if (i == warm)
				first = min = max = v;
			min = v < min ? v : min;
			max = v > max ? v : max;
			last = v;
		}
		double spread = min > 0 ? (max - min) / min : 0.0;
		printf("  RSS over %.0f s of pairs at 8 connections (%.1f pairs/s, errors %lu), after %zu s warm-up: "
		       "first %.1f MB, min %.1f, max %.1f, last %.1f; spread %.1f%% (flat within 10%%: %s)\n",
		       soak.elapsed, soak.rate, soak.errors, warm, first / 1024, min / 1024, max / 1024, last / 1024,
		       100 * spread, spread <= 0.10 ? "yes" : "NO");
		print_error(&soak);
		json_t *s = phase_json(&soak);
		json_object_set_new(s, "warmup_s", json_integer((json_int_t)warm));
		json_object_set_new(s, "rss_first_kb", json_real(first));
		json_object_set_new(s, "rss_min_kb", json_real(min));
		json_object_set_new(s, "rss_max_kb", json_real(max));
		json_object_set_new(s, "rss_last_kb", json_real(last));
		json_object_set_new(s, "rss_spread", json_real(spread));
		json_object_set_new(s, "rss_flat_within_10pct", json_boolean(spread <= 0.10));
		json_object_set_new(sc, "soak", s);
		free(series.v);
	}
	return 0;
}

/* ---- machine, options, main -------------------------------------------------------------------------------- */

static json_t *machine_json(void)
{
	char model[256] = "unknown", line[512], load[128] = "";
	FILE *f = fopen("/proc/cpuinfo", "r");
	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "model name", 10) == 0) {
			char *v = strchr(line, ':');
			if (v != NULL) {
				snprintf(model, sizeof(model), "%s", v + 2);
				model[strcspn(model, "\n")] = '\0';
			}
			break;
		}
	if (f != NULL)
		fclose(f);
	f = fopen("/proc/loadavg", "r");
	if (f != NULL) {
		if (fgets(load, sizeof(load), f) == NULL)
			load[0] = '\0';
		load[strcspn(load, "\n")] = '\0';
		fclose(f);
	}
	struct utsname u;
	uname(&u);
	char when[32];
	time_t t = time(NULL);
	struct tm tm;
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
	printf("machine: %ld CPUs, %s, Linux %s; load average at start %s; %s\n", sysconf(_SC_NPROCESSORS_ONLN),
	       model, u.release, load, when);
	return json_pack("{s:I, s:s, s:s, s:s, s:s, s:s}", "cpus", (json_int_t)sysconf(_SC_NPROCESSORS_ONLN),
			 "cpu_model", model, "kernel", u.release, "loadavg_at_start", load, "started_at", when,
			 "curl", curl_version());
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: credsign-bench [--sections sign,load,delegate,handshake,scale] [--seconds S]\n"
		"         [--json FILE]\n"
		"         [--strict]\n"
		"  sign:      --module PATH --token-uri URI --pin-file FILE --key-label LABEL\n"
		"  daemon:    --url URL --cacert FILE --cert FILE --key FILE [--preset P]\n"
		"             [--connections 1,8,64] [--daemon-pid PID]\n"
		"  delegate:  [--profile NAME] [--batch-sizes 1,10,100] [--batch-connections C]\n"
		"  handshake: [--s-server-url URL] [--handshake-threads N]\n"
		"  scale:     [--scale N] [--fill-connections C] [--fetch-connections C]\n"
		"             [--soak SECONDS] [--db PATH] [--admin PATH --config FILE]\n"
		"       credsign-bench --version\n");
}

static int parse_sections(const char *s)
{
	unsigned v = 0;
	char buf[128];
	snprintf(buf, sizeof(buf), "%s", s);
	for (char *save = NULL, *t = strtok_r(buf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
		if (strcmp(t, "sign") == 0)
			v |= SEC_SIGN;
		else if (strcmp(t, "load") == 0)
			v |= SEC_LOAD;
		else if (strcmp(t, "handshake") == 0)
			v |= SEC_HANDSHAKE;
		else if (strcmp(t, "scale") == 0)
			v |= SEC_SCALE;
		else if (strcmp(t, "delegate") == 0)
			v |= SEC_DELEGATE;
		else
			return -1;
	}
	opt.sections = v;
	return v != 0 ? 0 : -1;
}

static int parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_double(const char *s, double min, double max, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= min && v <= max))
		return -1;
	*out = v;
	return 0;
}

/* A comma-separated list of 1..MAX_LEVELS integers in [min, max]. */
static int parse_list(const char *s, long min, long max, int out[MAX_LEVELS], size_t *n)
{
	char buf[128];
	snprintf(buf, sizeof(buf), "%s", s);
	*n = 0;
	for (char *save = NULL, *t = strtok_r(buf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
		long v;
		if (*n == MAX_LEVELS || parse_long(t, min, max, &v) != 0)
			return -1;
		out[(*n)++] = (int)v;
	}
	return *n > 0 ? 0 : -1;
}

static int parse_args(int argc, char **argv)
{
	enum {
		O_SECTIONS = 256, O_SECONDS, O_JSON, O_STRICT, O_MODULE, O_TOKEN, O_PIN, O_LABEL, O_URL, O_CACERT,
		O_CERT, O_KEY, O_PRESET, O_CONNS, O_PID, O_SSERVER, O_HTHREADS, O_SCALE, O_FILL, O_FETCH, O_SOAK,
		O_DB, O_ADMIN, O_CONFIG, O_HELP, O_VERSION, O_PROFILE, O_BATCH_SIZES, O_BATCH_CONNS
	};
	static const struct option longopts[] = {
		{"sections", required_argument, NULL, O_SECTIONS}, {"seconds", required_argument, NULL, O_SECONDS},
		{"json", required_argument, NULL, O_JSON}, {"strict", no_argument, NULL, O_STRICT},
		{"module", required_argument, NULL, O_MODULE}, {"token-uri", required_argument, NULL, O_TOKEN},
		{"pin-file", required_argument, NULL, O_PIN}, {"key-label", required_argument, NULL, O_LABEL},
		{"url", required_argument, NULL, O_URL}, {"cacert", required_argument, NULL, O_CACERT},
		{"cert", required_argument, NULL, O_CERT}, {"key", required_argument, NULL, O_KEY},
		{"preset", required_argument, NULL, O_PRESET}, {"connections", required_argument, NULL, O_CONNS},
		{"daemon-pid", required_argument, NULL, O_PID}, {"s-server-url", required_argument, NULL, O_SSERVER},
		{"handshake-threads", required_argument, NULL, O_HTHREADS}, {"scale", required_argument, NULL, O_SCALE},
		{"fill-connections", required_argument, NULL, O_FILL},
		{"fetch-connections", required_argument, NULL, O_FETCH}, {"soak", required_argument, NULL, O_SOAK},
		{"db", required_argument, NULL, O_DB}, {"admin", required_argument, NULL, O_ADMIN},
		{"config", required_argument, NULL, O_CONFIG}, {"help", no_argument, NULL, O_HELP},
		{"profile", required_argument, NULL, O_PROFILE}, {"batch-sizes", required_argument, NULL, O_BATCH_SIZES},
		{"batch-connections", required_argument, NULL, O_BATCH_CONNS},
		{"version", no_argument, NULL, O_VERSION}, {NULL, 0, NULL, 0}};
	int c, idx = 0;
	long v;
	while ((c = getopt_long(argc, argv, "", longopts, &idx)) != -1) {
		int bad = 0;
		switch (c) {
		case O_SECTIONS: bad = parse_sections(optarg); break;
		case O_SECONDS: bad = parse_double(optarg, 0.1, 86400, &opt.seconds); break;
		case O_JSON: opt.json_path = optarg; break;
		case O_STRICT: opt.strict = 1; break;
		case O_MODULE: opt.module = optarg; break;
		case O_TOKEN: opt.token_uri = optarg; break;
		case O_PIN: opt.pin_file = optarg; break;
		case O_LABEL: opt.key_label = optarg; break;
		case O_URL: opt.url = optarg; break;
		case O_CACERT: opt.cacert = optarg; break;
		case O_CERT: opt.cert = optarg; break;
		case O_KEY: opt.key = optarg; break;
		case O_PRESET: opt.preset = optarg; break;
		case O_CONNS: bad = parse_list(optarg, 1, MAX_THREADS, opt.conns, &opt.nconns); break;
		case O_PROFILE: opt.profile = optarg; break;
		case O_BATCH_SIZES: bad = parse_list(optarg, 1, BATCH_MAX, opt.batch_sizes, &opt.nbatch); break;
		case O_BATCH_CONNS:
			bad = parse_long(optarg, 1, MAX_THREADS, &v);
			opt.batch_conns = (int)v;
			break;
		case O_PID: bad = parse_long(optarg, 1, 1L << 30, &opt.daemon_pid); break;
		case O_SSERVER: opt.s_server_url = optarg; break;
		case O_HTHREADS:
			bad = parse_long(optarg, 1, MAX_THREADS, &v);
			opt.handshake_threads = (int)v;
			break;
		case O_SCALE: bad = parse_long(optarg, 1, 100000000, &opt.scale); break;
		case O_FILL:
			bad = parse_long(optarg, 1, MAX_THREADS, &v);
			opt.fill_conns = (int)v;
			break;
		case O_FETCH:
			bad = parse_long(optarg, 1, MAX_THREADS, &v);
			opt.fetch_conns = (int)v;
			break;
		case O_SOAK: bad = parse_double(optarg, 0, 86400, &opt.soak); break;
		case O_DB: opt.db_path = optarg; break;
		case O_ADMIN: opt.admin = optarg; break;
		case O_CONFIG: opt.config = optarg; break;
		case O_HELP: usage(stdout); exit(0);
		case O_VERSION: printf("credsign-bench %s\n", CREDSIGN_VERSION); exit(0);
		default: return -1;
		}
		if (bad) {
			fprintf(stderr, "credsign-bench: bad value for --%s: %s\n", longopts[idx].name, optarg);
			return -1;
		}
	}
	if (optind != argc)
		return -1;
	if ((opt.sections & SEC_SIGN) &&
	    (opt.module == NULL || opt.token_uri == NULL || opt.pin_file == NULL || opt.key_label == NULL)) {
		fprintf(stderr, "credsign-bench: sign needs --module, --token-uri, --pin-file and --key-label\n");
		return -1;
	}
	if ((opt.sections & ~(unsigned)SEC_SIGN) &&
	    (opt.url == NULL || opt.cacert == NULL || opt.cert == NULL || opt.key == NULL)) {
		fprintf(stderr, "credsign-bench: load, delegate, handshake and scale need --url, --cacert, --cert and "
				"--key\n");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (parse_args(argc, argv) != 0) {
		usage(stderr);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	cs_json_wiping_allocator();
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return 1;
	json_t *gb = json_pack("{s:s}", "preset", opt.preset);
	generate_body = gb != NULL ? json_dumps(gb, JSON_COMPACT) : NULL;
	json_decref(gb);
	json_t *out = json_object();
	if (generate_body == NULL || out == NULL || (pool.ids = calloc(RESERVOIR, ID_MAX)) == NULL)
		return 1;
	atomic_init(&total_certified, 0);
	json_object_set_new(out, "machine", machine_json());
	json_object_set_new(out, "settings",
			    json_pack("{s:f, s:s, s:s?, s:i, s:I, s:f, s:s, s:i}", "seconds", opt.seconds, "preset",
				      opt.preset, "url", opt.url, "handshake_threads", opt.handshake_threads, "scale",
				      (json_int_t)((opt.sections & SEC_SCALE) ? opt.scale : 0), "soak_seconds",
				      (opt.sections & SEC_SCALE) ? opt.soak : 0.0, "profile", opt.profile,
				      "batch_connections", opt.batch_conns));
	long rss_idle = daemon_rss_kb();
	if (rss_idle >= 0) {
		printf("daemon RSS idle at start: %.1f MB\n", (double)rss_idle / 1024);
		json_object_set_new(out, "daemon_rss_idle_kb", json_integer(rss_idle));
	}
	int rc = 0;
	double rate[2][2] = {{0}}, best2 = 0, pairs8 = -1, hratio = -1;
	if (opt.sections & SEC_SIGN) {
		if (p11_open() != 0 || run_sign(rate) != 0) {
			rc = 1;
		} else {
			best2 = rate[0][1] > rate[1][1] ? rate[0][1] : rate[1][1];
			json_object_set_new(
				out, "sign",
				json_pack("{s:{s:f, s:f}, s:{s:f, s:f}, s:f, s:f}", "direct_token", "threads_1", rate[0][0],
					  "threads_2", rate[0][1], "direct_session", "threads_1", rate[1][0], "threads_2",
					  rate[1][1], "best_1_thread", rate[0][0] > rate[1][0] ? rate[0][0] : rate[1][0],
					  "best_2_threads", best2));
		}
		p11_close();
	}
	if (rc == 0 && (opt.sections & SEC_LOAD) && run_load(out, &pairs8) != 0)
		rc = 1;
	double at8[FMT_COUNT] = {-1, -1, -1}, batch_best = -1;
	int batch_items = 0;
	sig_format batch_format = FMT_DIGEST;
	if (rc == 0 && (opt.sections & SEC_DELEGATE) &&
	    run_delegate(out, best2, at8, &batch_best, &batch_items, &batch_format) != 0)
		rc = 1;
	if (rc == 0 && (opt.sections & SEC_HANDSHAKE) && run_handshakes(out, &hratio) != 0)
		rc = 1;
	if (rc == 0 && (opt.sections & SEC_SCALE) && run_scale(out) != 0)
		rc = 1;
	if (rc == 0) {
		json_t *ratios = json_object();
		printf("ratios\n");
		if (pairs8 >= 0 && best2 > 0) {
			printf("  pairs/s at 8 connections / best direct 2-thread C_Sign rate: %.4f (target >= 0.10)\n",
			       pairs8 / best2);
			json_object_set_new(ratios, "pairs8_over_direct2", json_real(pairs8 / best2));
			if (pair8_daemon_cpu_us > 0 && pair8_client_cpu_us >= 0) {
				/* what the CPUs allow when daemon and client share them */
				long cpus = sysconf(_SC_NPROCESSORS_ONLN);
				double ceiling = (double)cpus * 1e6 / (pair8_daemon_cpu_us + pair8_client_cpu_us);
				printf("  CPU ceiling at 8 connections: %ld CPUs / (daemon %.0f us + client %.0f us per pair) = "
				       "%.0f pairs/s = %.4f of the direct rate; the daemon alone on %ld CPUs: %.0f pairs/s\n",
				       cpus, pair8_daemon_cpu_us, pair8_client_cpu_us, ceiling, ceiling / best2, cpus,
				       (double)cpus * 1e6 / pair8_daemon_cpu_us);
				json_object_set_new(ratios, "cpu_ceiling_pairs_per_s", json_real(ceiling));
				json_object_set_new(ratios, "daemon_cpu_us_per_pair_at_8", json_real(pair8_daemon_cpu_us));
				json_object_set_new(ratios, "client_cpu_us_per_pair_at_8", json_real(pair8_client_cpu_us));
			}
		}
		if (best2 > 0 && (at8[FMT_JWS] >= 0 || at8[FMT_DSSE] >= 0 || at8[FMT_DIGEST] >= 0 || batch_best >= 0)) {
			printf("  delegated signatures/s / best direct 2-thread C_Sign rate:");
			const char *sep = " at 8 connections";
			for (int f = 0; f < FMT_COUNT; f++)
				if (at8[f] >= 0) {
					char name[64];
					printf("%s %s %.4f", sep, format_names[f], at8[f] / best2);
					sep = ",";
					snprintf(name, sizeof(name), "delegate_%s8_over_direct2", format_names[f]);
					json_object_set_new(ratios, name, json_real(at8[f] / best2));
				}
			if (batch_best >= 0) {
				printf("%s best batch (%s, %d items, %d connections) %.4f", sep[0] == ',' ? ";" : "",
				       format_names[batch_format], batch_items, opt.batch_conns, batch_best / best2);
				json_object_set_new(ratios, "delegate_best_batch_over_direct2", json_real(batch_best / best2));
			}
			printf("\n");
		}
		if (hratio >= 0) {
			printf("  handshakes/s credsignd / openssl s_server: %.2f (target >= 0.90)\n", hratio);
			json_object_set_new(ratios, "handshakes_over_s_server", json_real(hratio));
		}
		if (calls_per_pair >= 0) {
			printf("  token calls per pair (GET /metrics, %d connection%s): %.2f\n", calls_conns,
			       calls_conns == 1 ? "" : "s", calls_per_pair);
			json_object_set_new(ratios, "token_calls_per_pair", json_real(calls_per_pair));
		} else if (opt.sections & SEC_LOAD) {
			printf("  token calls per pair: not counted (the client holds no operator grant)\n");
			json_object_set_new(ratios, "token_calls_per_pair", json_null());
		}
		json_object_set_new(out, "ratios", ratios);
		long rss_end = daemon_rss_kb();
		if (rss_end >= 0) {
			printf("daemon RSS at the end: %.1f MB\n", (double)rss_end / 1024);
			json_object_set_new(out, "daemon_rss_end_kb", json_integer(rss_end));
		}
		json_object_set_new(out, "errors", json_integer((json_int_t)total_errors));
		printf("errors in all: %lu\n", total_errors);
		if (opt.json_path != NULL && json_dump_file(out, opt.json_path, JSON_INDENT(2) | JSON_SORT_KEYS) != 0) {
			fprintf(stderr, "credsign-bench: cannot write %s\n", opt.json_path);
			rc = 1;
		}
		if (opt.strict && total_errors > 0)
			rc = 1;
	}
	json_decref(out);
	free(generate_body);
	free(pool.ids);
	curl_global_cleanup();
	return rc;
}
