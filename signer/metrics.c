/* metrics: see metrics.h. */
#include "metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/mman.h>

#include "cs_log.h"

static const char *const routes[] = {"generate", "certify",  "cert",   "jwks",    "presets",
				     "policy",   "audit",    "audit_checkpoint", "rollover",
				     "revocations", "metrics", "healthz",  "readyz",   "sign",
				     "signature", "inventory", "other"};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

static const int codes[] = {200, 201, 400, 403, 404, 405, 409, 410, 413,
			    415, 422, 429, 431, 500, 501, 503, 0 /* other */};
#define NCODES (sizeof(codes) / sizeof(codes[0]))

static const char *const functions[] = {
	"C_Initialize",      "C_Finalize",          "C_GetInfo",         "C_GetSlotList",
	"C_GetTokenInfo",    "C_GetMechanismInfo",  "C_OpenSession",     "C_CloseSession",
	"C_GetSessionInfo",  "C_Login",             "C_Logout",          "C_FindObjectsInit",
	"C_FindObjects",     "C_FindObjectsFinal",  "C_GetAttributeValue", "C_CopyObject",
	"C_DestroyObject",   "C_SignInit",          "C_Sign",            "C_GenerateRandom",
	"C_GenerateKeyPair", "other"};
#define NFUNCTIONS (sizeof(functions) / sizeof(functions[0]))

/* seconds */
static const double request_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
					0.05,   0.1,   0.25,   0.5,   1,    2.5, 5};
#define NREQ_BOUNDS (sizeof(request_bounds) / sizeof(request_bounds[0]))
static const double token_bounds[] = {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
				      0.001,   0.0025,   0.005,   0.01,   0.025,   0.1,    1};
#define NTOK_BOUNDS (sizeof(token_bounds) / sizeof(token_bounds[0]))
static const double batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128};
#define NBATCH_BOUNDS (sizeof(batch_bounds) / sizeof(batch_bounds[0]))

typedef struct {
	atomic_ulong buckets[16]; /* cumulative counts are computed when rendering */
	atomic_ulong count;
	atomic_ulong sum_ns; /* sum in nanoseconds (or in units for batch sizes) */
} histogram;

struct metrics {
	atomic_ulong requests[NROUTES][NCODES];
	histogram request_time[NROUTES];
	atomic_ulong token_calls[NFUNCTIONS][2];
	histogram token_time[NFUNCTIONS];
	histogram commit_time;
	histogram batch;
	atomic_ulong audit_entries;
	atomic_ulong audit_entries_failed;
	atomic_ulong keys_withheld; /* kids the JWKS left out (app.h, cs_app_key_published) */
	atomic_ulong restarts[2]; /* cs_metrics_process: the key and network processes */
};
/* the process's own counters, or (cs_metrics_share) a shared mapping */
static struct metrics local_metrics, *mp = &local_metrics;

cs_err cs_metrics_share(void)
{
	void *shared = mmap(NULL, sizeof(struct metrics), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED) {
		cs_log_error("metrics: cannot map shared memory: %s", strerror(errno));
		return CS_E_NOMEM;
	}
	memcpy(shared, mp, sizeof(struct metrics));
	mp = shared;
	return CS_OK;
}

void cs_metrics_reset(void)
{
	memset(mp, 0, sizeof(*mp));
}

static size_t index_of(const char *const names[], size_t n, const char *name)
{
	for (size_t i = 0; name != NULL && i + 1 < n; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return n - 1; /* other */
}

static void observe(histogram *h, const double bounds[], size_t nbounds, double value,
		    unsigned long sum_units)
{
	size_t b = 0;
	while (b < nbounds && value > bounds[b])
		b++;
	atomic_fetch_add_explicit(&h->buckets[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_ns, sum_units, memory_order_relaxed);
}

void cs_metrics_request(const char *route, int status, uint64_t duration_ns)
{
	size_t r = index_of(routes, NROUTES, route), c = NCODES - 1;
	for (size_t i = 0; i + 1 < NCODES; i++)
		if (codes[i] == status)
			c = i;
	atomic_fetch_add_explicit(&mp->requests[r][c], 1, memory_order_relaxed);
	observe(&mp->request_time[r], request_bounds, NREQ_BOUNDS, (double)duration_ns / 1e9,
		(unsigned long)duration_ns);
}

void cs_metrics_token_call(const char *function, uint64_t duration_ns, unsigned long rv)
{
	size_t f = index_of(functions, NFUNCTIONS, function);
	atomic_fetch_add_explicit(&mp->token_calls[f][rv == 0 ? 0 : 1], 1, memory_order_relaxed);
	observe(&mp->token_time[f], token_bounds, NTOK_BOUNDS, (double)duration_ns / 1e9,
		(unsigned long)duration_ns);
}

void cs_metrics_commit(uint64_t duration_ns, unsigned batch_size)
{
	observe(&mp->commit_time, request_bounds, NREQ_BOUNDS, (double)duration_ns / 1e9,
		(unsigned long)duration_ns);
	observe(&mp->batch, batch_bounds, NBATCH_BOUNDS, batch_size, batch_size);
}

void cs_metrics_key_withheld(void)
{
	atomic_fetch_add_explicit(&mp->keys_withheld, 1, memory_order_relaxed);
}

void cs_metrics_process_restart(cs_metrics_process process)
{
	if (process == CS_METRICS_KEY_PROCESS || process == CS_METRICS_NETWORK_PROCESS)
		atomic_fetch_add_explicit(&mp->restarts[process], 1, memory_order_relaxed);
}

void cs_metrics_audit_entry(void)
{
	atomic_fetch_add_explicit(&mp->audit_entries, 1, memory_order_relaxed);
}

void cs_metrics_audit_entry_failed(void)
{
	atomic_fetch_add_explicit(&mp->audit_entries_failed, 1, memory_order_relaxed);
}

/* ---- rendering ---------------------------------------------------------------- */

typedef struct {
	char *buf;
	size_t len, cap;
	int failed;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(text *t, const char *fmt, ...)
{
	for (int attempt = 0; attempt < 2 && !t->failed; attempt++) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->failed = 1;
			return;
		}
		if ((size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = (t->cap + (size_t)n + 1) * 2;
		char *grown = realloc(t->buf, cap);
		if (grown == NULL) {
			t->failed = 1;
			return;
		}
		t->buf = grown;
		t->cap = cap;
	}
}

static void put_histogram(text *t, const char *name, const char *label, const char *value,
			  const histogram *h, const double bounds[], size_t nbounds, double sum_scale)
{
	unsigned long cumulative = 0;
	char sep = label != NULL ? ',' : ' ';
	for (size_t b = 0; b <= nbounds; b++) {
		cumulative += atomic_load_explicit(&h->buckets[b], memory_order_relaxed);
		if (label != NULL)
			put(t, "%s_bucket{%s=\"%s\"%cle=\"", name, label, value, sep);
		else
			put(t, "%s_bucket{le=\"", name);
		if (b < nbounds)
			put(t, "%g\"} %lu\n", bounds[b], cumulative);
		else
			put(t, "+Inf\"} %lu\n", cumulative);
	}
	double sum = (double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) * sum_scale;
	unsigned long count = atomic_load_explicit(&h->count, memory_order_relaxed);
	if (label != NULL) {
		put(t, "%s_sum{%s=\"%s\"} %.9g\n", name, label, value, sum);
		put(t, "%s_count{%s=\"%s\"} %lu\n", name, label, value, count);
	} else {
		put(t, "%s_sum %.9g\n%s_count %lu\n", name, sum, name, count);
	}
}

cs_err cs_metrics_render(const cs_metrics_gauges *g, char **out)
{
	text t = {0};
	*out = NULL;
	put(&t, "# HELP credsign_requests_total Requests answered, by route and status.\n"
		"# TYPE credsign_requests_total counter\n");
	for (size_t r = 0; r < NROUTES; r++)
		for (size_t c = 0; c < NCODES; c++) {
			unsigned long v = atomic_load_explicit(&mp->requests[r][c], memory_order_relaxed);
			if (v == 0)
				continue;
			if (codes[c] != 0)
				put(&t, "credsign_requests_total{route=\"%s\",code=\"%d\"} %lu\n", routes[r],
				    codes[c], v);
			else
				put(&t, "credsign_requests_total{route=\"%s\",code=\"other\"} %lu\n", routes[r], v);
		}
	put(&t, "# HELP credsign_request_duration_seconds Time from a complete request to its reply.\n"
		"# TYPE credsign_request_duration_seconds histogram\n");
	for (size_t r = 0; r < NROUTES; r++)
		if (atomic_load_explicit(&mp->request_time[r].count, memory_order_relaxed) > 0)
			put_histogram(&t, "credsign_request_duration_seconds", "route", routes[r],
				      &mp->request_time[r], request_bounds, NREQ_BOUNDS, 1e-9);
	put(&t, "# HELP credsign_token_calls_total PKCS#11 calls, by function and result.\n"
		"# TYPE credsign_token_calls_total counter\n");
	for (size_t f = 0; f < NFUNCTIONS; f++)
		for (int e = 0; e < 2; e++) {
			unsigned long v = atomic_load_explicit(&mp->token_calls[f][e], memory_order_relaxed);
			if (v > 0)
				put(&t, "credsign_token_calls_total{function=\"%s\",result=\"%s\"} %lu\n",
				    functions[f], e ? "error" : "ok", v);
		}
	put(&t, "# HELP credsign_token_call_duration_seconds PKCS#11 call latency, by function.\n"
		"# TYPE credsign_token_call_duration_seconds histogram\n");
	for (size_t f = 0; f < NFUNCTIONS; f++)
		if (atomic_load_explicit(&mp->token_time[f].count, memory_order_relaxed) > 0)
			put_histogram(&t, "credsign_token_call_duration_seconds", "function", functions[f],
				      &mp->token_time[f], token_bounds, NTOK_BOUNDS, 1e-9);
	put(&t, "# HELP credsign_store_commit_duration_seconds Store commits (one fsync each).\n"
		"# TYPE credsign_store_commit_duration_seconds histogram\n");
	put_histogram(&t, "credsign_store_commit_duration_seconds", NULL, NULL, &mp->commit_time,
		      request_bounds, NREQ_BOUNDS, 1e-9);
	put(&t, "# HELP credsign_store_commit_batch_size Writes committed together.\n"
		"# TYPE credsign_store_commit_batch_size histogram\n");
	put_histogram(&t, "credsign_store_commit_batch_size", NULL, NULL, &mp->batch, batch_bounds,
		      NBATCH_BOUNDS, 1);
	put(&t, "# HELP credsign_audit_entries_total Audit entries written by this process.\n"
		"# TYPE credsign_audit_entries_total counter\n"
		"credsign_audit_entries_total %lu\n",
	    atomic_load_explicit(&mp->audit_entries, memory_order_relaxed));
	put(&t, "# HELP credsign_audit_write_failures_total Audit entries this process could not write: the "
		"request was refused with 503 audit_unavailable, or the event (a start, a key switch, a reload, a "
		"refusal summary) is only in the log.\n"
		"# TYPE credsign_audit_write_failures_total counter\n"
		"credsign_audit_write_failures_total %lu\n",
	    atomic_load_explicit(&mp->audit_entries_failed, memory_order_relaxed));
	put(&t, "# HELP credsign_jwks_keys_withheld_total Recorded keys without a warrant the JWKS left out (once per kid).\n"
		"# TYPE credsign_jwks_keys_withheld_total counter\n"
		"credsign_jwks_keys_withheld_total %lu\n",
	    atomic_load_explicit(&mp->keys_withheld, memory_order_relaxed));
	put(&t, "# HELP credsign_process_restarts_total Restarts of the key and network processes by the supervisor.\n"
		"# TYPE credsign_process_restarts_total counter\n"
		"credsign_process_restarts_total{process=\"key\"} %lu\n"
		"credsign_process_restarts_total{process=\"network\"} %lu\n",
	    atomic_load_explicit(&mp->restarts[CS_METRICS_KEY_PROCESS], memory_order_relaxed),
	    atomic_load_explicit(&mp->restarts[CS_METRICS_NETWORK_PROCESS], memory_order_relaxed));
	put(&t, "# HELP credsign_connections Open connections, by state.\n"
		"# TYPE credsign_connections gauge\n"
		"credsign_connections{state=\"handshaking\"} %d\n"
		"credsign_connections{state=\"authenticated\"} %d\n",
	    g->handshaking, g->authenticated);
	put(&t, "# HELP credsign_connections_evicted_total Handshaking connections evicted for newer ones.\n"
		"# TYPE credsign_connections_evicted_total counter\n"
		"credsign_connections_evicted_total %ld\n"
		"# HELP credsign_connections_timed_out_total Connections closed at a handshake or request deadline.\n"
		"# TYPE credsign_connections_timed_out_total counter\n"
		"credsign_connections_timed_out_total %ld\n"
		"# HELP credsign_tls_handshakes_failed_total Handshakes ended with a fatal alert.\n"
		"# TYPE credsign_tls_handshakes_failed_total counter\n"
		"credsign_tls_handshakes_failed_total %ld\n",
	    g->evicted, g->timed_out, g->handshakes_failed);
	if (g->active_kid != NULL)
		put(&t, "# HELP credsign_signing_key_info The active certificate-signing key.\n"
			"# TYPE credsign_signing_key_info gauge\n"
			"credsign_signing_key_info{kid=\"%s\"} 1\n",
		    g->active_kid);
	if (g->inventory_known)
		put(&t, "# HELP credsign_inventory_records Certificates in the credential inventory, by state.\n"
			"# TYPE credsign_inventory_records gauge\n"
			"credsign_inventory_records{state=\"current\"} %lld\n"
			"credsign_inventory_records{state=\"superseded\"} %lld\n"
			"credsign_inventory_records{state=\"revoked\"} %lld\n"
			"# HELP credsign_inventory_rotation_overdue Current credentials past their rotation due date.\n"
			"# TYPE credsign_inventory_rotation_overdue gauge\n"
			"credsign_inventory_rotation_overdue %lld\n"
			"# HELP credsign_inventory_rotation_due_soon Current credentials due for rotation within "
			"inventory.due_soon_days.\n"
			"# TYPE credsign_inventory_rotation_due_soon gauge\n"
			"credsign_inventory_rotation_due_soon %lld\n",
		    (long long)g->inventory_current, (long long)g->inventory_superseded, (long long)g->inventory_revoked,
		    (long long)g->inventory_overdue, (long long)g->inventory_due_soon);
	if (t.failed) {
		free(t.buf);
		return CS_E_NOMEM;
	}
	*out = t.buf;
	return CS_OK;
}
