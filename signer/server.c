/* server: see server.h. */
#include "server.h"

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
#include <event2/thread.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "api.h"
#include "audit.h"
#include "cs_log.h"
#include "tls.h"

#define DRAIN_SECONDS 10
#define PRUNE_INTERVAL_SECONDS 5 /* expired-session pruning, on the signal thread */

typedef struct server server;

typedef struct {
	server *srv;
	pthread_t thread;
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	cs_store *store;
	cs_err start_error;
} worker;

struct server {
	cs_app *app;
	evutil_socket_t listen_fd;
	worker *workers;
	int nworkers;
	pthread_mutex_t ctx_lock;
	SSL_CTX *ssl_ctx; /* replaced on SIGHUP */
	atomic_int connections;
	int conn_index;   /* SSL ex_data slot that counts connections */
	int worker_index; /* SSL ex_data slot: the worker serving it */
	int refused_index; /* SSL ex_data slot: refusal already audited */
	cs_store *main_store; /* the signal thread's connection (checkpoints) */
};

static server *the_server; /* for the SSL ex_data free callback */

/* ---- TLS connections -------------------------------------------------------- */

static void connection_gone(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			    void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	if (ptr != NULL && the_server != NULL)
		the_server->connections--;
}

static int refuse_connection(SSL *ssl, void *arg)
{
	(void)ssl;
	(void)arg;
	return 0; /* fails the handshake: too many connections */
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
	SSL_CTX *ctx = current_ctx(s);
	SSL *ssl = SSL_new(ctx);
	SSL_CTX_free(ctx);
	if (ssl == NULL)
		return NULL;
	int open_now = ++s->connections;
	SSL_set_ex_data(ssl, s->conn_index, s); /* counted until the SSL is freed */
	SSL_set_ex_data(ssl, s->worker_index, w);
	if (open_now > s->app->cfg->server.max_connections) {
		cs_log_warn("connection refused: %d connections open (server.max_connections)",
			    open_now - 1);
		SSL_set_cert_cb(ssl, refuse_connection, NULL);
	}
	return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
					      BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
}

/* A refused client certificate still names a peer: audit it (once per
 * connection). A failed audit write cannot change the outcome: the
 * handshake fails anyway. */
static void audit_refusal(SSL *ssl, X509 *cert, const char *reason)
{
	server *s = the_server;
	worker *w = s != NULL ? SSL_get_ex_data(ssl, s->worker_index) : NULL;
	if (w == NULL || SSL_get_ex_data(ssl, s->refused_index) != NULL)
		return;
	SSL_set_ex_data(ssl, s->refused_index, w);
	char identity[CS_IDENTITY_MAX], sha[65];
	if (cs_tls_cert_identity(cert, identity, sha) != CS_OK)
		snprintf(identity, sizeof(identity), "unidentified");
	cs_audit_sanitize(identity); /* a refused certificate may name anything */
	cs_audit_entry e = {.actor = identity, .actor_cert_sha256 = sha[0] ? sha : NULL,
			    .role = "client", .action = "tls.handshake", .outcome = "refused",
			    .error_code = reason};
	if (cs_audit_record(s->app->audit, w->store, &e) != CS_OK)
		return; /* logged by cs_audit_record; the handshake fails regardless */
}

static int peer_of(struct evhttp_request *req, cs_peer *peer)
{
	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	struct bufferevent *bev = conn != NULL ? evhttp_connection_get_bufferevent(conn) : NULL;
	SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
	return ssl != NULL && cs_tls_identity(ssl, peer->identity, peer->cert_sha256) == CS_OK;
}

/* ---- requests ------------------------------------------------------------------ */

static const char *method_name(enum evhttp_cmd_type cmd)
{
	switch (cmd) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_HEAD: return "HEAD";
	default: return "OTHER";
	}
}

static void on_request(struct evhttp_request *req, void *arg)
{
	worker *w = arg;
	cs_app *app = w->srv->app;
	cs_peer peer;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	app->requests_in_flight++;
	int identified = peer_of(req, &peer);
	cs_api_handle(req, app, w->store, identified ? &peer : NULL);
	app->requests_in_flight--;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	const char *path = evhttp_request_get_uri(req);
	cs_log_info("request method=%s path=\"%.100s\" status=%d identity=\"%s\" ms=%ld",
		    method_name(evhttp_request_get_command(req)), path != NULL ? path : "",
		    evhttp_request_get_response_code(req), identified ? peer.identity : "-", ms);
}

static void *worker_main(void *arg)
{
	worker *w = arg;
	event_base_dispatch(w->base);
	return NULL;
}

static cs_err worker_init(server *s, worker *w)
{
	const cs_config *cfg = s->app->cfg;
	w->srv = s;
	cs_err r = cs_store_open(cfg->store.path, &w->store);
	if (r != CS_OK)
		return r;
	cs_store_set_write_timeout(w->store, cfg->audit.write_timeout_ms);
	if ((w->base = event_base_new()) == NULL || (w->http = evhttp_new(w->base)) == NULL)
		return CS_E_NOMEM;
	evhttp_set_bevcb(w->http, new_tls_connection, w);
	evhttp_set_gencb(w->http, on_request, w);
	evhttp_set_max_headers_size(w->http, cfg->server.max_header_bytes);
	/* bodies up to the limit reach the handler (JSON 413 above it); the
	 * HTTP layer itself cuts off anything far larger */
	evhttp_set_max_body_size(w->http, (ev_ssize_t)cfg->server.max_body_bytes * 4);
	evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD);
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
	return CS_OK;
}

static void worker_free(worker *w)
{
	if (w->http != NULL)
		evhttp_free(w->http);
	if (w->base != NULL)
		event_base_free(w->base);
	cs_store_close(w->store);
}

/* ---- listening socket ---------------------------------------------------------- */

static cs_err open_listener(const char *address, evutil_socket_t *out)
{
	char host[256];
	const char *colon = strrchr(address, ':');
	size_t hlen = (size_t)(colon - address);
	if (hlen >= sizeof(host))
		return CS_E_CONFIG;
	memcpy(host, address, hlen);
	host[hlen] = '\0';
	if (host[0] == '[' && hlen > 2 && host[hlen - 1] == ']') { /* [v6]:port */
		memmove(host, host + 1, hlen - 2);
		host[hlen - 2] = '\0';
	}
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
	struct addrinfo *ai = NULL;
	if (getaddrinfo(host, colon + 1, &hints, &ai) != 0 || ai == NULL) {
		cs_log_error("cannot resolve listen address %s", address);
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
		cs_log_error("cannot listen on %s: %s", address, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	freeaddrinfo(ai);
	return r;
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
	if (cs_audit_record(s->app->audit, s->main_store, &e) != CS_OK)
		cs_log_error("lifecycle event %s not audited", action);
}

static void reload_tls(server *s)
{
	SSL_CTX *fresh = NULL;
	cs_err r = cs_tls_server_ctx(s->app->libctx, s->app->cfg, &fresh);
	if (r != CS_OK) {
		cs_log_error("SIGHUP: TLS reload failed (%s); keeping the current context", cs_strerror(r));
		return;
	}
	pthread_mutex_lock(&s->ctx_lock);
	SSL_CTX *old = s->ssl_ctx;
	s->ssl_ctx = fresh;
	pthread_mutex_unlock(&s->ctx_lock);
	SSL_CTX_free(old);
	cs_log_info("SIGHUP: client CA and CRL reloaded");
	system_event(s, "tls.reload", s->app->cfg->tls.ca, "success");
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
	if (cs_store_sessions_prune(s->main_store, now_ms - keep_ms, &removed) != CS_OK)
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

cs_err cs_server_run(cs_app *app)
{
	server s = {.app = app, .listen_fd = -1};
	sigset_t set;
	cs_err r;
	evthread_use_pthreads();
	pthread_mutex_init(&s.ctx_lock, NULL);
	the_server = &s;
	s.conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, connection_gone);
	s.worker_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	s.refused_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	cs_tls_on_refusal(audit_refusal);
	if ((r = cs_store_open(app->cfg->store.path, &s.main_store)) != CS_OK)
		goto out;
	cs_store_set_write_timeout(s.main_store, app->cfg->audit.write_timeout_ms);
	if ((r = cs_tls_server_ctx(app->libctx, app->cfg, &s.ssl_ctx)) != CS_OK ||
	    (r = open_listener(app->cfg->server.listen, &s.listen_fd)) != CS_OK)
		goto out;
	/* signals are taken synchronously by this thread only */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	s.nworkers = app->cfg->server.workers;
	if ((s.workers = calloc((size_t)s.nworkers, sizeof(worker))) == NULL) {
		r = CS_E_NOMEM;
		goto out;
	}
	for (int i = 0; i < s.nworkers; i++)
		if ((r = worker_init(&s, &s.workers[i])) != CS_OK)
			goto out;
	int started = 0;
	for (; started < s.nworkers; started++)
		if (pthread_create(&s.workers[started].thread, NULL, worker_main, &s.workers[started]) != 0)
			break;
	cs_log_info("listening on %s with %d workers (TLS 1.3, client certificates required)",
		    app->cfg->server.listen, started);
	system_event(&s, "daemon.start", app->cfg->server.node_id, "success");
	struct timespec tick = {1, 0};
	time_t last_checkpoint = time(NULL), last_prune = 0;
	for (;;) {
		int sig = sigtimedwait(&set, NULL, &tick);
		if (time(NULL) - last_checkpoint >= app->cfg->audit.checkpoint_seconds) {
			(void)cs_audit_checkpoint(app->audit, s.main_store, "periodic");
			last_checkpoint = time(NULL);
		}
		if (time(NULL) - last_prune >= PRUNE_INTERVAL_SECONDS) {
			prune_sessions(&s);
			last_prune = time(NULL);
		}
		if (sig < 0)
			continue;
		if (sig == SIGHUP) {
			reload_tls(&s);
			continue;
		}
		cs_log_info("signal %d: draining %ld request(s) in flight", sig,
			    (long)app->requests_in_flight);
		drain(&s);
		break;
	}
	for (int i = 0; i < started; i++)
		pthread_join(s.workers[i].thread, NULL);
	system_event(&s, "daemon.stop", app->cfg->server.node_id, "success");
	(void)cs_audit_checkpoint(app->audit, s.main_store, "stop");
	r = CS_OK;
out:
	for (int i = 0; s.workers != NULL && i < s.nworkers; i++)
		worker_free(&s.workers[i]);
	free(s.workers);
	if (s.listen_fd >= 0)
		close(s.listen_fd);
	SSL_CTX_free(s.ssl_ctx);
	cs_store_close(s.main_store);
	cs_tls_on_refusal(NULL);
	the_server = NULL;
	pthread_mutex_destroy(&s.ctx_lock);
	return r;
}
