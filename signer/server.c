/* server: see server.h. */
#include "server.h"

#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <event2/listener.h> /* the request's HTTP version */
#include <event2/thread.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "api.h"
#include "audit.h"
#include "conn_guard.h"
#include "cs_log.h"
#include "http_errors.h"
#include "http_framing.h"
#include "metrics.h"
#include "notify.h"
#include "refusal_summary.h"
#include "tls.h"
#include "store_target.h"

#define DRAIN_SECONDS 10
/* every method libevent knows reaches the router, which answers 405 in
 * JSON for those a route does not take */
#define ALL_METHODS                                                                        \
	(EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | \
	 EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH)
#define PRUNE_INTERVAL_SECONDS 5 /* expired-session pruning, on the signal thread */

typedef struct cs_server server;

typedef struct {
	server *srv;
	pthread_t thread;
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	cs_store *store;
	cs_err start_error;
	atomic_int open;            /* its connections */
	int paused;                 /* its listener is disabled (balance) */
	struct event *balance;      /* re-checks the balance every BALANCE_MS */
	int accept_failing;         /* accept() failed (descriptors): paused */
	struct event *accept_resume;
} worker;

/* The optional plain-HTTP listener for orchestrator probes. */
typedef struct {
	server *srv;
	pthread_t thread;
	int running;
	struct event_base *base;
	struct evhttp *http;
	cs_store *store;
	struct evhttp_bound_socket *bound;
	struct event *accept_resume;
	int open;                /* its connections, at most PROBE_MAX_CONNECTIONS */
	struct probe_conn *conns; /* each holds a reference to its bufferevent */
} probe_listener;
typedef struct probe_conn probe_conn;

struct cs_server {
	cs_app *app; /* set by cs_server_run */
	probe_listener probes;
	atomic_int open; /* connections of all workers */
	long logged_counts[3]; /* the guard's counters at the last interval line */
	evutil_socket_t listen_fd; /* server.listen, bound by cs_server_bind */
	evutil_socket_t probe_fd;  /* server.health_listen until probe_start takes it; -1 */
	worker *workers;
	int nworkers;
	pthread_mutex_t ctx_lock;
	SSL_CTX *ssl_ctx; /* replaced on SIGHUP */
	cs_conn_guard *guard;         /* admission and deadlines of connections */
	cs_refusal_summary *refusals; /* unverified peers' refused handshakes */
	int conn_index;    /* SSL ex_data slot: the connection's cs_conn */
	int worker_index;  /* SSL ex_data slot: the worker serving it */
	int refused_index; /* SSL ex_data slot: refusal already recorded */
	int balanced_index; /* SSL ex_data slot: the worker it counts for (authenticated) */
};

static server *the_server; /* for the SSL callbacks */

/* ---- TLS connections -------------------------------------------------------- */

/* ---- balance: connections spread over the workers -------------------------------- */

/* All workers accept on one socket, and whichever wakes first takes the
 * connection: connections opened while the daemon is idle pile up on a few
 * workers (measured: 32 connections on 10 of 16 workers). A worker with
 * more than its share of authenticated connections (the mean plus one)
 * stops accepting until it is back within it; the others take the new
 * connections. Checked when its own connections come and go, and every
 * BALANCE_MS for the others'. Handshaking connections are not counted: the
 * connection guard bounds them, and pausing accepts during a flood would
 * only leave more of it in the kernel's queue. */
#define BALANCE_MS 100

static void balance(worker *w)
{
	server *s = w->srv;
	if (w->bound == NULL || w->accept_failing)
		return; /* draining, or paused after a failed accept */
	int mine = w->open, all = s->open;
	int over = mine * s->nworkers > all + s->nworkers; /* mine > all / n + 1 */
	struct evconnlistener *l = evhttp_bound_socket_get_listener(w->bound);
	if (over && !w->paused && evconnlistener_disable(l) == 0)
		w->paused = 1;
	else if (!over && w->paused && evconnlistener_enable(l) == 0)
		w->paused = 0;
}

static void balance_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	balance(arg);
}

static void worker_gone(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	worker *w = ptr;
	if (w == NULL)
		return;
	w->open--;
	w->srv->open--;
	balance(w);
}

/* ---- accept failures --------------------------------------------------------------- */

/* accept() failing for want of descriptors (EMFILE, ENFILE, ENOBUFS):
 * libevent would retry at once, for ever, logging each time (an outside
 * review saw 725,000 log lines in 10 s). The listener pauses for
 * ACCEPT_PAUSE_MS instead, with one log line per second at most; the
 * waiting connections stay in the kernel's queue. */
#define ACCEPT_PAUSE_MS 100

static void log_accept_failure(const char *where, int err)
{
	static atomic_long last_s, failures;
	failures++;
	long now = (long)time(NULL);
	long seen = last_s;
	if (now != seen && atomic_compare_exchange_strong(&last_s, &seen, now))
		cs_log_error("%s: accept failed %ld time(s) in the last second: %s; pausing %d ms",
			     where, (long)atomic_exchange(&failures, 0), strerror(err), ACCEPT_PAUSE_MS);
}

/* The worker or the probe listener whose event loop runs on this thread.
 * libevent calls a listener's error callback with the listener's callback
 * argument, which evhttp sets to its own struct evhttp: never ours (taken
 * as a worker, it made accept() failing for want of descriptors crash the
 * network process). The callbacks find their owner here instead. */
static _Thread_local worker *loop_worker;
static _Thread_local probe_listener *loop_probe;

static void pause_listener(struct evconnlistener *l, struct event *resume)
{
	evconnlistener_disable(l);
	struct timeval pause = {0, ACCEPT_PAUSE_MS * 1000};
	event_add(resume, &pause);
}

static void worker_accept_failed(struct evconnlistener *l, void *http)
{
	(void)http;
	worker *w = loop_worker;
	log_accept_failure("TLS listener", EVUTIL_SOCKET_ERROR());
	w->accept_failing = 1;
	pause_listener(l, w->accept_resume);
}

static void worker_accept_resume(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	worker *w = arg;
	w->accept_failing = 0;
	if (w->bound != NULL && !w->paused)
		evconnlistener_enable(evhttp_bound_socket_get_listener(w->bound));
}

static void connection_gone(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			    void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	cs_conn_free(ptr);
}

static cs_conn *conn_of_ssl(const SSL *ssl)
{
	return the_server != NULL ? SSL_get_ex_data(ssl, the_server->conn_index) : NULL;
}

/* At the client hello: refuse a handshake that could not be served. */
static int check_capacity(SSL *ssl, void *arg)
{
	server *s = arg;
	cs_conn *conn = conn_of_ssl(ssl);
	if (conn != NULL)
		cs_conn_hello(conn);
	if (!cs_conn_guard_full(s->guard))
		return 1;
	cs_log_warn("connection refused: %d authenticated connections open (server.max_connections)",
		    s->app->cfg->server.max_connections);
	return 0; /* fails the handshake */
}

static void handshake_done(SSL *ssl)
{
	cs_conn *conn = conn_of_ssl(ssl);
	server *s = the_server;
	char identity[CS_IDENTITY_MAX], sha[65];
	if (conn != NULL) {
		cs_conn_handshake_done(conn);
		/* a connection without an identity is answered 403 per request;
		 * it counts under the empty name */
		if (s == NULL || cs_tls_identity(ssl, s->app->cfg->tls.identity_from_cn, identity, sha) != CS_OK)
			identity[0] = '\0';
		if (!cs_conn_identify(conn, identity))
			return;
	}
	worker *w = s != NULL ? SSL_get_ex_data(ssl, s->worker_index) : NULL;
	if (w != NULL && SSL_get_ex_data(ssl, s->balanced_index) == NULL) {
		SSL_set_ex_data(ssl, s->balanced_index, w); /* counted until the SSL is freed */
		w->open++;
		s->open++;
		balance(w);
	}
}

static SSL_CTX *current_ctx(server *s)
{
	pthread_mutex_lock(&s->ctx_lock);
	SSL_CTX *ctx = s->ssl_ctx;
	SSL_CTX_up_ref(ctx);
	pthread_mutex_unlock(&s->ctx_lock);
	return ctx;
}

static struct bufferevent *new_tls_connection(struct event_base *base, void *arg)
{
	worker *w = arg;
	server *s = w->srv;
	cs_conn *conn = cs_conn_new(s->guard, base);
	SSL_CTX *ctx = current_ctx(s);
	SSL *ssl = conn != NULL ? SSL_new(ctx) : NULL;
	SSL_CTX_free(ctx);
	if (ssl == NULL) {
		/* libevent then serves the socket without TLS: no peer identity,
		 * so every request is refused with 403 */
		cs_log_error("cannot set up a TLS connection: out of memory");
		cs_conn_free(conn);
		return NULL;
	}
	SSL_set_ex_data(ssl, s->conn_index, conn); /* freed with the SSL */
	SSL_set_ex_data(ssl, s->worker_index, w);
	SSL_set_cert_cb(ssl, check_capacity, s);
	struct bufferevent *bev = bufferevent_openssl_socket_new(
		base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	cs_conn_attach(conn, bev);
	return bev;
}

/* A refused client certificate. One our CA issued (revoked, expired, wrong
 * usage) names a real client: its first refusal per reason and interval is
 * an audit entry of its own. The rest, and any certificate our CA did not
 * issue, only claim a name (TLS 1.3 checks the chain before the peer
 * proves it holds the key): counted per source and reason, and audited as
 * a summary per interval (refusal_summary.h). */
static void audit_refusal(SSL *ssl, X509 *cert, const char *reason, int issued)
{
	server *s = the_server;
	worker *w = s != NULL ? SSL_get_ex_data(ssl, s->worker_index) : NULL;
	if (w == NULL || SSL_get_ex_data(ssl, s->refused_index) != NULL)
		return;
	SSL_set_ex_data(ssl, s->refused_index, w);
	cs_conn *conn = conn_of_ssl(ssl);
	const char *source = conn != NULL ? cs_conn_source(conn) : "unknown";
	char identity[CS_IDENTITY_MAX], sha[65];
	if (cs_tls_cert_identity(cert, issued ? s->app->cfg->tls.identity_from_cn : true, identity,
				 sha) != CS_OK)
		snprintf(identity, sizeof(identity), "unidentified");
	cs_audit_sanitize(identity); /* a refused certificate may name anything */
	char subject[256] = "?";
	X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
	cs_audit_sanitize(subject);
	if (!issued || !cs_refusal_summary_first(s->refusals, sha, reason)) {
		if (cs_refusal_summary_add(s->refusals, source, reason, identity))
			cs_log_warn("client certificate refused: source=%s subject=\"%.128s\" "
				    "reason=\"%s\" claimed (unverified) identity=\"%.64s\"; further "
				    "refusals of this source and reason are counted and audited every %d s",
				    source, subject, reason, identity,
				    s->app->cfg->audit.refusal_summary_seconds);
		return;
	}
	cs_log_warn("client certificate refused: source=%s subject=\"%s\" reason=\"%s\" "
		    "identity=\"%s\"", source, subject, reason, identity);
	cs_audit_entry e = {.actor = identity, .actor_cert_sha256 = sha[0] ? sha : NULL,
			    .role = "client", .action = "tls.handshake", .outcome = "refused",
			    .error_code = reason};
	if (cs_audit_record(s->app->audit, s->app->ledger, &e) != CS_OK)
		return; /* logged by cs_audit_record; the handshake fails regardless */
}

/* A peer that sent no certificate names no one: counted with the others. */
static void anonymous_refusal(SSL *ssl)
{
	server *s = the_server;
	cs_conn *conn = conn_of_ssl(ssl);
	if (s == NULL)
		return;
	const char *source = conn != NULL ? cs_conn_source(conn) : "unknown";
	if (cs_refusal_summary_add(s->refusals, source, "no client certificate", NULL))
		cs_log_warn("TLS handshake refused: source=%s sent no client certificate; further "
			    "refusals of this source are counted and audited every %d s",
			    source, s->app->cfg->audit.refusal_summary_seconds);
}

static int write_refusal_row(void *arg, const cs_refusal_row *row)
{
	server *s = arg;
	cs_audit_entry e = {.actor = "unverified", .role = "unverified",
			    .action = "tls.handshake.refusals", .object = row->object,
			    .outcome = "refused", .error_code = row->reason};
	return cs_audit_record(s->app->audit, s->app->ledger, &e) == CS_OK ? 0 : 1;
}

/* Write the refusal summary and report what the connection guard did. */
static void flush_refusals(server *s)
{
	int64_t n = cs_refusal_summary_flush(s->refusals, write_refusal_row, s);
	if (n > 0)
		cs_log_info("audited %lld refused handshake(s) of unverified peers as a summary",
			    (long long)n);
	/* refused requests of clients beyond the first per key and interval */
	n = cs_service_flush_refusals(s->app);
	if (n > 0)
		cs_log_info("audited %lld summaries of refused requests", (long long)n);
	int handshaking, authenticated;
	long evicted, timed_out;
	cs_conn_guard_counts(s->guard, &handshaking, &authenticated, &evicted, &timed_out);
	long failed = cs_tls_failed_handshakes();
	long *seen = s->logged_counts; /* evicted, timed out, failed at the last line */
	if (evicted != seen[0] || timed_out != seen[1] || failed != seen[2])
		cs_log_warn("connections in the last interval: %ld evicted before finishing the TLS "
			    "handshake, %ld closed at a handshake or request deadline, %ld handshakes "
			    "failed; now %d handshaking, %d authenticated",
			    evicted - seen[0], timed_out - seen[1], failed - seen[2],
			    handshaking, authenticated);
	seen[0] = evicted;
	seen[1] = timed_out;
	seen[2] = failed;
}

static int peer_of(struct evhttp_request *req, const cs_config *cfg, cs_caller *peer)
{
	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	struct bufferevent *bev = conn != NULL ? evhttp_connection_get_bufferevent(conn) : NULL;
	SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
	return ssl != NULL && cs_tls_identity(ssl, cfg->tls.identity_from_cn, peer->identity,
					      peer->cert_sha256) == CS_OK;
}

static cs_conn *conn_of_request(struct evhttp_request *req)
{
	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	struct bufferevent *bev = conn != NULL ? evhttp_connection_get_bufferevent(conn) : NULL;
	SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
	return ssl != NULL ? conn_of_ssl(ssl) : NULL;
}

/* libevent refused a request: say why, from what the framing scan saw. */
static void explain_http_error(struct evhttp_request *req, int *status, char *message, size_t cap)
{
	cs_conn *conn = conn_of_request(req);
	const cs_framing *f = conn != NULL ? cs_conn_framing(conn) : NULL;
	int limit = the_server != NULL ? the_server->app->cfg->server.max_header_bytes : 0;
	if (f == NULL)
		return;
	if (f->defect != NULL) {
		*status = HTTP_BADREQUEST;
		snprintf(message, cap, "malformed request: %s", f->defect);
	} else if (limit > 0 && f->header_bytes > (size_t)limit) {
		*status = 431; /* RFC 6585: Request Header Fields Too Large */
		snprintf(message, cap, "request header section over %d bytes (server.max_header_bytes)",
			 limit);
	}
}

/* ---- requests ------------------------------------------------------------------ */

/* The HTTP layer's cut-off for a body: four times the largest limit a
 * handler applies (server.max_body_bytes; signing.max_request_bytes for
 * POST /api/sign), so that bodies up to a limit reach the handler (its
 * JSON 413 names the limit). */
static int64_t body_cutoff(const cs_config *cfg)
{
	int64_t most = cfg->server.max_body_bytes;
	if (cfg->signing.max_request_bytes > most)
		most = cfg->signing.max_request_bytes;
	return 4 * most;
}

/* Only POST /api/sign may send more than the others' old cut-off (four
 * times server.max_body_bytes): 1 when this request's body exceeds what
 * its route may send. */
static int body_over_route_limit(struct evhttp_request *req, const cs_config *cfg)
{
	size_t len = evbuffer_get_length(evhttp_request_get_input_buffer(req));
	if (len <= 4 * (size_t)cfg->server.max_body_bytes)
		return 0;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	return path == NULL || strcmp(path, "/api/sign") != 0 || evhttp_request_get_command(req) != EVHTTP_REQ_POST;
}

static const char *method_name(enum evhttp_cmd_type cmd)
{
	switch (cmd) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	case EVHTTP_REQ_TRACE: return "TRACE";
	case EVHTTP_REQ_CONNECT: return "CONNECT";
	case EVHTTP_REQ_PATCH: return "PATCH";
	default: return "OTHER";
	}
}

/* Refuse what RFC 9112 says to refuse, before routing: the defect the raw
 * bytes showed (http_framing.h), else the parsed request's, with the status
 * to answer. NULL if none. */
static const char *framing_defect(struct evhttp_request *req, cs_conn *conn, bool *close_after,
				  int *status)
{
	*status = 400;
	const char *defect = conn != NULL ? cs_conn_request_start(conn, close_after) : NULL;
	if (defect == NULL)
		defect = cs_framing_check_request(evhttp_request_get_input_headers(req),
						  (int)evhttp_request_get_command(req),
						  req->major == 1 && req->minor >= 1, status);
	return defect;
}

/* evhttp queues a reply as two chunks (headers, body), which the TLS
 * layer writes as two records in two writes. Joined, a reply up to one
 * record leaves in one write. (libevent's frees are wiping: the joined
 * copy of a credential is wiped like the original, wipe_alloc.h.) */
#define ONE_TLS_RECORD 16384

static void join_reply(struct evhttp_request *req)
{
	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	struct bufferevent *bev = conn != NULL ? evhttp_connection_get_bufferevent(conn) : NULL;
	struct evbuffer *out = bev != NULL ? bufferevent_get_output(bev) : NULL;
	size_t n = out != NULL ? evbuffer_get_length(out) : 0;
	if (n > 0 && n <= ONE_TLS_RECORD)
		(void)evbuffer_pullup(out, -1);
}

/* The request's metrics and its log line, with the request id and the
 * latency as fields of their own. */
static void log_request(struct evhttp_request *req, const char *identity, uint64_t ns)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	int status = evhttp_request_get_response_code(req);
	cs_api_route_id route = CS_ROUTE_NONE;
	const char *action;
	cs_api_error err;
	if (path != NULL)
		(void)cs_api_route(CS_METHOD_GET, path, NULL, &route, &action, &err);
	cs_metrics_request(cs_api_route_name(route), status, ns);
	if (!cs_log_enabled(CS_LOG_INFO))
		return;
	const char *raw = evhttp_request_get_uri(req);
	const char *request_id = evhttp_find_header(evhttp_request_get_output_headers(req), "X-Request-Id");
	char shown[101];
	snprintf(shown, sizeof(shown), "%s", raw != NULL ? raw : "");
	cs_log_field fields[] = {
		{"method", method_name(evhttp_request_get_command(req)), 0},
		{"path", shown, 0},
		{"status", NULL, status},
		{"identity", identity != NULL ? identity : "-", 0},
		{"request_id", request_id != NULL ? request_id : "-", 0},
		{"ms", NULL, (double)(ns / 1000) / 1000.0},
	};
	cs_log_fields(CS_LOG_INFO, "on_request", "request", fields, sizeof(fields) / sizeof(fields[0]));
}

static void on_request(struct evhttp_request *req, void *arg)
{
	worker *w = arg;
	cs_app *app = w->srv->app;
	cs_caller peer;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	app->requests_in_flight++;
	int identified = peer_of(req, app->cfg, &peer);
	cs_conn *conn = conn_of_request(req);
	bool close_after = false;
	int status;
	const char *defect = framing_defect(req, conn, &close_after, &status);
	if (defect != NULL || close_after)
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
	if (conn != NULL && cs_conn_closing(conn)) {
		/* closed (identity cap, a deadline) while this request arrived with
		 * its last bytes: refused, not handled */
		cs_api_refuse(req, app, w->store, identified ? &peer : NULL, 503, "connection_closed",
			      "this connection was closed by the server before the request");
	} else if (defect != NULL) {
		if (req->major != 1 || req->minor > 1) { /* never echo a version we refuse */
			req->major = 1;
			req->minor = 1;
		}
		/* libevent frames an answer to CONNECT as a tunnel: no
		 * Content-Length, and it ignores Connection: close. Answered as
		 * what it is, a refused request. */
		if (req->type == EVHTTP_REQ_CONNECT)
			req->type = EVHTTP_REQ_GET;
		char message[160];
		snprintf(message, sizeof(message), "%s: %s",
			 status == 411 ? "length required" : status == 405 ? "method not allowed"
								: "malformed request",
			 defect);
		cs_api_refuse(req, app, w->store, identified ? &peer : NULL, status,
			      status == 411 ? "length_required" : status == 405 ? "method_not_allowed"
								: "bad_request",
			      message);
	} else if (body_over_route_limit(req, app->cfg)) {
		cs_api_refuse(req, app, w->store, identified ? &peer : NULL, 413, "body_too_large",
			      "the request body is over the limit (server.max_body_bytes; only POST /api/sign "
			      "takes up to signing.max_request_bytes)");
	} else {
		cs_api_handle(req, app, w->store, identified ? &peer : NULL);
	}
	join_reply(req);
	if (conn != NULL)
		cs_conn_request_end(conn);
	app->requests_in_flight--;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	uint64_t ns = (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec));
	log_request(req, identified ? peer.identity : NULL, ns);
}

/* A thread's event loop: a worker's, or the probe listener's. */
static void *worker_loop(void *arg)
{
	worker *w = arg;
	loop_worker = w;
	event_base_dispatch(w->base);
	return NULL;
}

static void *probe_loop(void *arg)
{
	probe_listener *p = arg;
	loop_probe = p;
	event_base_dispatch(p->base);
	return NULL;
}

static cs_err worker_init(server *s, worker *w)
{
	const cs_config *cfg = s->app->cfg;
	w->srv = s;
	cs_store_target target;
	cs_err r = cs_store_target_from_config(cfg, &target);
	if (r != CS_OK || (r = cs_store_connect(&target, &w->store)) != CS_OK)
		return r;
	if ((w->base = event_base_new()) == NULL || (w->http = evhttp_new(w->base)) == NULL)
		return CS_E_NOMEM;
	evhttp_set_bevcb(w->http, new_tls_connection, w);
	evhttp_set_gencb(w->http, on_request, w);
	evhttp_set_max_headers_size(w->http, cfg->server.max_header_bytes);
	/* bodies up to the limit reach the handler (JSON 413 above it); the
	 * HTTP layer itself cuts off anything far larger */
	evhttp_set_max_body_size(w->http, (ev_ssize_t)body_cutoff(cfg));
	evhttp_set_allowed_methods(w->http, ALL_METHODS);
	struct timeval tv = {cfg->server.timeout_ms / 1000, (cfg->server.timeout_ms % 1000) * 1000};
	evhttp_set_timeout_tv(w->http, &tv);
	/* each worker listens on its own descriptor of the one socket, so one
	 * worker closing its listener does not pull it from the others */
	evutil_socket_t fd = dup((int)s->listen_fd);
	if (fd < 0 || (w->bound = evhttp_accept_socket_with_handle(w->http, fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return CS_E_INTERNAL;
	}
	struct timeval every = {0, BALANCE_MS * 1000};
	if ((w->balance = event_new(w->base, -1, EV_PERSIST, balance_tick, w)) == NULL ||
	    event_add(w->balance, &every) != 0 ||
	    (w->accept_resume = evtimer_new(w->base, worker_accept_resume, w)) == NULL)
		return CS_E_NOMEM;
	evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(w->bound), worker_accept_failed);
	return CS_OK;
}

static void worker_free(worker *w)
{
	if (w->balance != NULL)
		event_free(w->balance);
	if (w->accept_resume != NULL)
		event_free(w->accept_resume);
	if (w->http != NULL)
		evhttp_free(w->http);
	if (w->base != NULL)
		event_base_free(w->base);
	cs_store_close(w->store);
}

/* ---- listening socket ---------------------------------------------------------- */

/* An operator reads "address already in use", not "Address already in use":
 * the reason follows the setting and the address. */
static void lower_first(char *text)
{
	if (isupper((unsigned char)text[0]) && islower((unsigned char)text[1]))
		text[0] = (char)tolower((unsigned char)text[0]);
}

/* Bind and listen on a configured "HOST:PORT" (check_listen in config.c
 * checked its form). A failure is logged naming the setting:
 * "server.listen 127.0.0.1:8443: address already in use". */
static cs_err open_listener(const char *setting, const char *address, evutil_socket_t *out)
{
	char host[256], reason[128];
	const char *colon = strrchr(address, ':');
	size_t hlen = colon != NULL ? (size_t)(colon - address) : sizeof(host);
	if (hlen >= sizeof(host)) {
		cs_log_error("%s %s: not a HOST:PORT address", setting, address);
		return CS_E_CONFIG;
	}
	memcpy(host, address, hlen);
	host[hlen] = '\0';
	if (host[0] == '[' && hlen > 2 && host[hlen - 1] == ']') { /* [v6]:port */
		memmove(host, host + 1, hlen - 2);
		host[hlen - 2] = '\0';
	}
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
	struct addrinfo *ai = NULL;
	int gai = getaddrinfo(host, colon + 1, &hints, &ai);
	if (gai != 0 || ai == NULL) {
		snprintf(reason, sizeof(reason), "%s", gai != 0 ? gai_strerror(gai) : "no address");
		lower_first(reason);
		cs_log_error("%s %s: cannot resolve the address: %s", setting, address, reason);
		if (ai != NULL)
			freeaddrinfo(ai);
		return CS_E_CONFIG;
	}
	evutil_socket_t fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
	int one = 1;
	cs_err r = CS_E_CONFIG;
	if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
	    bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0 &&
	    evutil_make_socket_nonblocking(fd) == 0) {
		*out = fd;
		r = CS_OK;
	} else {
		snprintf(reason, sizeof(reason), "%s", strerror(errno));
		lower_first(reason);
		cs_log_error("%s %s: %s", setting, address, reason);
		if (fd >= 0)
			close(fd);
	}
	freeaddrinfo(ai);
	return r;
}

/* ---- probe listener (server.health_listen) -------------------------------------- */

static void on_probe(struct evhttp_request *req, void *arg)
{
	probe_listener *p = arg;
	cs_api_probe(req, p->srv->app, p->store);
}

/* Probes are short: at most PROBE_MAX_CONNECTIONS at once (more are closed
 * at once), each closed PROBE_DEADLINE_MS after accept whatever it sends.
 * libevent's bufferevents have no free hook, so each connection's timer
 * holds a reference to its bufferevent (its socket stays open until the
 * timer, at most PROBE_DEADLINE_MS) and gives back its slot then. */
#define PROBE_MAX_CONNECTIONS 32
#define PROBE_DEADLINE_MS 2000

struct probe_conn {
	probe_listener *p;
	struct bufferevent *bev;
	struct event *timer;
	probe_conn *prev, *next; /* p->conns, on the probe thread only */
};

static void probe_conn_release(probe_conn *pc)
{
	probe_listener *p = pc->p;
	if (pc->prev != NULL)
		pc->prev->next = pc->next;
	else
		p->conns = pc->next;
	if (pc->next != NULL)
		pc->next->prev = pc->prev;
	event_free(pc->timer);
	bufferevent_decref(pc->bev);
	p->open--;
	free(pc);
}

static void probe_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	probe_conn *pc = arg;
	evutil_socket_t sock = bufferevent_getfd(pc->bev);
	if (sock >= 0)
		shutdown(sock, SHUT_RDWR); /* libevent reads the end and lets it go */
	probe_conn_release(pc);
}

static struct bufferevent *new_probe_connection(struct event_base *base, void *arg)
{
	probe_listener *p = arg;
	probe_conn *pc = calloc(1, sizeof(*pc));
	struct bufferevent *bev = pc != NULL ? bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE) : NULL;
	if (bev == NULL || (pc->timer = evtimer_new(base, probe_deadline, pc)) == NULL) {
		/* out of memory: libevent makes a plain one, uncounted */
		if (bev != NULL)
			bufferevent_free(bev);
		free(pc);
		return NULL;
	}
	int over = ++p->open > PROBE_MAX_CONNECTIONS;
	/* over the cap: closed on the next turn, once libevent gave it its socket */
	struct timeval tv = {over ? 0 : PROBE_DEADLINE_MS / 1000,
			     over ? 0 : (PROBE_DEADLINE_MS % 1000) * 1000};
	event_add(pc->timer, &tv);
	pc->p = p;
	pc->bev = bev;
	bufferevent_incref(bev); /* given back by probe_conn_release */
	pc->next = p->conns;
	if (p->conns != NULL)
		p->conns->prev = pc;
	p->conns = pc;
	return bev;
}

static void probe_accept_failed(struct evconnlistener *l, void *http)
{
	(void)http;
	probe_listener *p = loop_probe;
	log_accept_failure("probe listener", EVUTIL_SOCKET_ERROR());
	pause_listener(l, p->accept_resume);
}

static void probe_accept_resume(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	probe_listener *p = arg;
	if (p->bound != NULL)
		evconnlistener_enable(evhttp_bound_socket_get_listener(p->bound));
}

/* Plain HTTP, /healthz and /readyz only: orchestrator probes cannot
 * present client certificates. Off unless server.health_listen is set. */
static cs_err probe_start(server *s, probe_listener *p)
{
	const cs_config *cfg = s->app->cfg;
	p->srv = s;
	if (cfg->server.health_listen == NULL || s->probe_fd < 0)
		return CS_OK;
	cs_store_target target;
	cs_err r = cs_store_target_from_config(cfg, &target);
	if (r != CS_OK || (r = cs_store_connect(&target, &p->store)) != CS_OK)
		return r;
	if ((p->base = event_base_new()) == NULL || (p->http = evhttp_new(p->base)) == NULL)
		return CS_E_NOMEM;
	evhttp_set_gencb(p->http, on_probe, p);
	evhttp_set_bevcb(p->http, new_probe_connection, p);
	evhttp_set_allowed_methods(p->http, ALL_METHODS);
	evhttp_set_max_headers_size(p->http, 4096);
	evhttp_set_max_body_size(p->http, 1024);
	struct timeval tv = {5, 0};
	evhttp_set_timeout_tv(p->http, &tv);
	/* the bound socket (cs_server_bind) is the listener's from now on */
	if ((p->bound = evhttp_accept_socket_with_handle(p->http, s->probe_fd)) == NULL)
		return CS_E_INTERNAL;
	s->probe_fd = -1;
	if ((p->accept_resume = evtimer_new(p->base, probe_accept_resume, p)) == NULL)
		return CS_E_NOMEM;
	evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(p->bound), probe_accept_failed);
	if (pthread_create(&p->thread, NULL, probe_loop, p) != 0)
		return CS_E_INTERNAL;
	p->running = 1;
	cs_log_info("probes (/healthz, /readyz) on plain HTTP at %s (server.health_listen)",
		    cfg->server.health_listen);
	return CS_OK;
}

static void probe_stop(probe_listener *p)
{
	if (p->running) {
		event_base_loopexit(p->base, NULL);
		pthread_join(p->thread, NULL);
		p->running = 0;
	}
	if (p->accept_resume != NULL)
		event_free(p->accept_resume);
	if (p->http != NULL)
		evhttp_free(p->http);
	while (p->conns != NULL) /* after libevent let them go: this frees them */
		probe_conn_release(p->conns);
	if (p->base != NULL)
		event_base_free(p->base);
	cs_store_close(p->store);
	*p = (probe_listener){0};
}

static void read_gauges(void *arg, cs_metrics_gauges *g)
{
	server *s = arg;
	cs_conn_guard_counts(s->guard, &g->handshaking, &g->authenticated, &g->evicted, &g->timed_out);
	g->handshakes_failed = cs_tls_failed_handshakes();
}

/* ---- signals and lifecycle ---------------------------------------------------- */

static void stop_accepting(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	worker *w = arg;
	if (w->bound != NULL) {
		evhttp_del_accept_socket(w->http, w->bound);
		w->bound = NULL;
	}
}

static void system_event(server *s, const char *action, const char *object, const char *outcome)
{
	cs_audit_entry e = {.actor = "system", .role = "system", .action = action, .object = object,
			    .outcome = outcome};
	if (cs_audit_record(s->app->audit, s->app->ledger, &e) != CS_OK)
		cs_log_error("lifecycle event %s not audited", action);
}

static cs_err reload_tls(server *s)
{
	SSL_CTX *fresh = NULL, *current;
	pthread_mutex_lock(&s->ctx_lock);
	current = s->ssl_ctx;
	SSL_CTX_up_ref(current);
	pthread_mutex_unlock(&s->ctx_lock);
	cs_err r = cs_tls_server_ctx_reload(s->app->libctx, s->app->cfg, current, &fresh);
	SSL_CTX_free(current);
	if (r != CS_OK) {
		cs_log_error("SIGHUP: TLS reload failed (%s); keeping the current context", cs_strerror(r));
		cs_audit_entry e = {.actor = "system", .role = "system", .action = "tls.reload",
				    .object = s->app->cfg->tls.ca, .outcome = "failure",
				    /* a code, as access.reload's (docs/audit.md) */
				    .error_code = r == CS_E_CONFIG ? "config_invalid" : "internal_error"};
		if (cs_audit_record(s->app->audit, s->app->ledger, &e) != CS_OK)
			cs_log_error("the failed TLS reload could not be audited");
		return r;
	}
	pthread_mutex_lock(&s->ctx_lock);
	SSL_CTX *old = s->ssl_ctx;
	s->ssl_ctx = fresh;
	pthread_mutex_unlock(&s->ctx_lock);
	SSL_CTX_free(old);
	cs_log_info("SIGHUP: client CA and CRL reloaded");
	system_event(s, "tls.reload", s->app->cfg->tls.ca, "success");
	return CS_OK;
}

/* Drop generation sessions that expired more than
 * store.session_retention_seconds ago and were never certified. A failure
 * is logged and retried at the next interval: nothing depends on it. */
static void prune_sessions(server *s)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	int64_t removed = 0;
	int64_t keep_ms = (int64_t)s->app->cfg->store.session_retention_seconds * 1000;
	if (cs_ledger_sessions_prune(s->app->ledger, now_ms - keep_ms, &removed) != CS_OK)
		cs_log_warn("expired sessions not pruned; retrying in %d s", PRUNE_INTERVAL_SECONDS);
	else if (removed > 0)
		cs_log_info("pruned %lld expired, uncertified generation session(s)", (long long)removed);
}

static void drain(server *s)
{
	for (int i = 0; i < s->nworkers; i++)
		event_base_once(s->workers[i].base, -1, EV_TIMEOUT, stop_accepting, &s->workers[i], NULL);
	struct timespec pause = {0, 20 * 1000 * 1000};
	for (int waited = 0; waited < DRAIN_SECONDS * 50 && s->app->requests_in_flight > 0; waited++)
		nanosleep(&pause, NULL);
	nanosleep(&pause, NULL); /* let the last replies flush */
	for (int i = 0; i < s->nworkers; i++)
		event_base_loopexit(s->workers[i].base, NULL);
}

cs_err cs_server_bind(const cs_config *cfg, cs_server **out)
{
	*out = NULL;
	server *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return CS_E_NOMEM;
	s->listen_fd = s->probe_fd = -1;
	pthread_mutex_init(&s->ctx_lock, NULL);
	cs_err r = open_listener("server.listen", cfg->server.listen, &s->listen_fd);
	if (r == CS_OK && cfg->server.health_listen != NULL)
		r = open_listener("server.health_listen", cfg->server.health_listen, &s->probe_fd);
	if (r != CS_OK) {
		cs_server_free(s);
		return r;
	}
	*out = s;
	return CS_OK;
}

cs_err cs_server_load_tls(cs_server *s, OSSL_LIB_CTX *libctx, const cs_config *cfg, char *why,
			  size_t why_len)
{
	SSL_CTX *ctx = NULL;
	if (why_len > 0)
		why[0] = '\0';
	ERR_clear_error();
	cs_err r = cs_tls_server_ctx(libctx, cfg, &ctx);
	if (r != CS_OK) {
		/* what OpenSSL said, when the TLS layer did not report it
		 * (a context it could not make: no DRBG, no provider) */
		const char *data = NULL;
		int flags = 0;
		unsigned long e = ERR_peek_error_data(&data, &flags);
		const char *lib = e != 0 ? ERR_lib_error_string(e) : NULL;
		const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;
		int text = (flags & ERR_TXT_STRING) && data != NULL && data[0] != '\0';
		if (text && reason != NULL && strstr(data, reason) != NULL)
			reason = NULL; /* the detail says it already */
		if (e != 0)
			snprintf(why, why_len, "%s: %s%s%s", lib != NULL ? lib : "OpenSSL",
				 reason != NULL ? reason : text ? "" : "error", reason != NULL && text ? ": " : "",
				 text ? data : "");
		else
			snprintf(why, why_len, "%s", cs_strerror(r));
		ERR_clear_error();
		return r;
	}
	SSL_CTX_free(s->ssl_ctx); /* not serving yet: no lock needed */
	s->ssl_ctx = ctx;
	return CS_OK;
}

void cs_server_free(cs_server *s)
{
	if (s == NULL)
		return;
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->probe_fd >= 0)
		close(s->probe_fd);
	SSL_CTX_free(s->ssl_ctx);
	pthread_mutex_destroy(&s->ctx_lock);
	free(s);
}

cs_err cs_server_run(cs_server *s, cs_app *app)
{
	sigset_t set;
	cs_err r;
	if (s->ssl_ctx == NULL || s->listen_fd < 0 || s->app != NULL)
		return CS_E_INTERNAL; /* bound, with its TLS context, and run once */
	s->app = app;
	evthread_use_pthreads();
	the_server = s;
	s->conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, connection_gone);
	s->worker_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	s->balanced_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, worker_gone);
	s->refused_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	cs_tls_on_refusal(audit_refusal);
	cs_tls_on_handshake_done(handshake_done);
	cs_tls_on_anonymous_refusal(anonymous_refusal);
	cs_http_errors_explain(explain_http_error);
	const cs_config *cfg = app->cfg;
	cs_conn_limits limits = {
		.handshake_timeout_ms = cfg->server.handshake_timeout_ms,
		.request_timeout_ms = cfg->server.request_timeout_ms,
		.max_connection_seconds = cfg->server.max_connection_seconds,
		.max_handshakes = cfg->server.max_handshakes,
		.max_handshakes_per_source = cfg->server.max_handshakes_per_source,
		.max_connections = cfg->server.max_connections,
		/* one request of the largest size libevent reads, and a little more */
		.max_request_bytes = (int)(cfg->server.max_header_bytes + body_cutoff(cfg) + 4096),
		.max_per_identity = cfg->server.max_connections_per_identity,
	};
	if ((r = cs_conn_guard_new(&limits, &s->guard)) != CS_OK ||
	    (r = cs_refusal_summary_new(&s->refusals)) != CS_OK)
		goto out;
	/* signals are taken synchronously by this thread only */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	s->nworkers = app->cfg->server.workers;
	if ((s->workers = calloc((size_t)s->nworkers, sizeof(worker))) == NULL) {
		r = CS_E_NOMEM;
		goto out;
	}
	for (int i = 0; i < s->nworkers; i++)
		if ((r = worker_init(s, &s->workers[i])) != CS_OK)
			goto out;
	if ((r = probe_start(s, &s->probes)) != CS_OK) {
		cs_log_error("cannot serve probes on %s (server.health_listen): %s",
			     app->cfg->server.health_listen, cs_strerror(r));
		goto out;
	}
	app->gauges_arg = s;
	app->read_gauges = read_gauges;
	int started = 0;
	for (; started < s->nworkers; started++)
		if (pthread_create(&s->workers[started].thread, NULL, worker_loop, &s->workers[started]) != 0)
			break;
	cs_log_info("listening on %s with %d workers (TLS 1.3, client certificates required)",
		    app->cfg->server.listen, started);
	system_event(s, "daemon.start", app->cfg->server.node_id, "success");
	/* systemd (notify.h): ready once the workers run and the start is
	 * recorded; the watchdog pings from this loop only */
	cs_notify sd;
	cs_notify_init(&sd);
	cs_notify_ready(&sd, "listening on %s with %d workers", app->cfg->server.listen, started);
	time_t last_checkpoint = time(NULL), last_prune = 0, last_refusals = time(NULL);
	for (;;) {
		struct timespec tick = {1, 0};
		cs_notify_watchdog(&sd, &tick); /* WATCHDOG=1 when due; tick shortened to the next */
		int sig = sigtimedwait(&set, NULL, &tick);
		if (time(NULL) - last_checkpoint >= app->cfg->audit.checkpoint_seconds) {
			(void)cs_audit_checkpoint(app->audit, app->ledger, "periodic");
			last_checkpoint = time(NULL);
		}
		if (time(NULL) - last_refusals >= app->cfg->audit.refusal_summary_seconds) {
			flush_refusals(s);
			last_refusals = time(NULL);
		}
		if (time(NULL) - last_prune >= PRUNE_INTERVAL_SECONDS) {
			prune_sessions(s);
			last_prune = time(NULL);
		}
		/* another node took server.node_id (cs_app_node_renew, key watch
		 * thread): stop as at SIGTERM; a flag, since kill is outside the
		 * network process's seccomp allowlist */
		if (sig < 0 && atomic_load(&app->node.lost)) {
			cs_notify_stopping(&sd, "server.node_id %s is held by another node: draining %ld request(s) "
					   "in flight", app->cfg->server.node_id, (long)app->requests_in_flight);
			cs_log_info("server.node_id %s is held by another node: draining %ld request(s) in flight",
				    app->cfg->server.node_id, (long)app->requests_in_flight);
			drain(s);
			break;
		}
		if (sig < 0)
			continue;
		if (sig == SIGHUP) {
			cs_notify_reloading(&sd);
			cs_err tls = reload_tls(s);
			/* the access rules from the configuration file read again;
			 * requests in flight keep theirs */
			cs_err rules = cs_service_rules_reload(app);
			cs_notify_ready(&sd, "listening on %s with %d workers; SIGHUP reload: TLS %s, access rules %s",
					app->cfg->server.listen, started, tls == CS_OK ? "reloaded" : "kept (failed)",
					rules == CS_OK ? "reloaded" : "kept (failed)");
			continue;
		}
		cs_notify_stopping(&sd, "signal %d: draining %ld request(s) in flight", sig,
				   (long)app->requests_in_flight);
		cs_log_info("signal %d: draining %ld request(s) in flight", sig,
			    (long)app->requests_in_flight);
		drain(s);
		break;
	}
	for (int i = 0; i < started; i++)
		pthread_join(s->workers[i].thread, NULL);
	probe_stop(&s->probes);
	cs_key_watch_stop(app->keys); /* no key event after the stop checkpoint */
	flush_refusals(s);
	system_event(s, "daemon.stop", app->cfg->server.node_id, "success");
	(void)cs_audit_checkpoint(app->audit, app->ledger, "stop");
	r = CS_OK;
out:
	for (int i = 0; s->workers != NULL && i < s->nworkers; i++)
		worker_free(&s->workers[i]);
	free(s->workers);
	probe_stop(&s->probes);
	app->read_gauges = NULL;
	app->gauges_arg = NULL;
	cs_tls_on_refusal(NULL);
	cs_tls_on_handshake_done(NULL);
	cs_tls_on_anonymous_refusal(NULL);
	cs_http_errors_explain(NULL);
	cs_refusal_summary_free(s->refusals);
	cs_conn_guard_free(s->guard);
	the_server = NULL;
	return r;
}
