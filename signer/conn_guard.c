/* conn_guard: see conn_guard.h. */
#include "conn_guard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>

#include "cs_log.h"

typedef enum {
	CONN_SETUP,     /* accepted; the socket is not known yet */
	CONN_HANDSHAKE, /* admitted, TLS handshake running */
	CONN_READY,     /* authenticated, waiting for a request */
	CONN_READING,   /* a request's first byte has arrived */
	CONN_HANDLING,  /* the request is being handled */
	CONN_CLOSING,   /* shut down; libevent frees it */
} conn_state;

struct cs_conn {
	cs_conn_guard *guard;
	struct event_base *base;
	struct bufferevent *bev;
	struct evbuffer_cb_entry *input_watch;
	struct event *timer; /* set-up, then the state's deadline */
	struct event *kill;  /* activated by any thread to close the connection */
	conn_state state;
	int64_t accepted_ms, request_started_ms;
	cs_framing framing;
	char source[CS_SOURCE_MAX];
	/* the handshaking list, under guard->lock */
	cs_conn *prev, *next;
	bool listed, evicted;
	bool counted; /* in guard->authenticated */
	bool hello;   /* its whole client hello has arrived (under guard->lock) */
	int identity_slot; /* its entry in guard->identities, -1 when none */
	bool deferred;     /* its admission waits HELLO_WAIT_MS for its hello */
	bool lifetime_grace; /* idle at the end of its lifetime: waited LIFETIME_GRACE_MS */
	evutil_socket_t fd; /* set at admission */
};

typedef struct {
	char name[256];
	int count; /* 0: a free entry */
} identity_count;

struct cs_conn_guard {
	cs_conn_limits limits;
	pthread_mutex_t lock;
	identity_count *identities; /* max_connections entries, under lock */
	cs_conn *oldest, *newest; /* handshaking connections, in admission order */
	int handshaking;
	atomic_int authenticated;
	atomic_long evicted, timed_out;
};

static int64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

cs_err cs_conn_guard_new(const cs_conn_limits *limits, cs_conn_guard **out)
{
	cs_conn_guard *g = calloc(1, sizeof(*g));
	*out = NULL;
	if (g == NULL)
		return CS_E_NOMEM;
	g->limits = *limits;
	g->identities = calloc((size_t)limits->max_connections, sizeof(identity_count));
	if (g->identities == NULL) {
		free(g);
		return CS_E_NOMEM;
	}
	pthread_mutex_init(&g->lock, NULL);
	*out = g;
	return CS_OK;
}

void cs_conn_guard_free(cs_conn_guard *guard)
{
	if (guard == NULL)
		return;
	pthread_mutex_destroy(&guard->lock);
	free(guard->identities);
	free(guard);
}

void cs_conn_guard_counts(cs_conn_guard *guard, int *handshaking, int *authenticated,
			  long *evicted, long *timed_out)
{
	pthread_mutex_lock(&guard->lock);
	*handshaking = guard->handshaking;
	pthread_mutex_unlock(&guard->lock);
	*authenticated = guard->authenticated;
	*evicted = guard->evicted;
	*timed_out = guard->timed_out;
}

bool cs_conn_guard_full(cs_conn_guard *guard)
{
	return guard->authenticated >= guard->limits.max_connections;
}

/* ---- the handshaking list (guard->lock held) ------------------------------ */

static void unlist(cs_conn_guard *g, cs_conn *c)
{
	if (!c->listed)
		return;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		g->oldest = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	else
		g->newest = c->prev;
	c->prev = c->next = NULL;
	c->listed = false;
	g->handshaking--;
}

static void list_newest(cs_conn_guard *g, cs_conn *c)
{
	c->prev = g->newest;
	c->next = NULL;
	if (g->newest != NULL)
		g->newest->next = c;
	else
		g->oldest = c;
	g->newest = c;
	c->listed = true;
	g->handshaking++;
}

/* Whether the connection has a whole TLS record waiting that opens a
 * handshake (its client hello, not yet read because its loop is busy): a
 * few bytes are not enough, or a flood of partial hellos would pass for
 * clients. The peek may run on another thread than the connection's: it
 * only reads the socket's state, and at worst misjudges a descriptor being
 * closed meanwhile. */
static bool hello_waiting(evutil_socket_t fd)
{
	unsigned char head[5];
	if (recv(fd, head, sizeof(head), MSG_PEEK | MSG_DONTWAIT) != (ssize_t)sizeof(head) ||
	    head[0] != 0x16 || head[1] != 0x03) /* handshake record, TLS */
		return false;
	size_t len = (size_t)head[3] << 8 | head[4];
	unsigned char first[6];
	int waiting = 0;
	/* the whole record is there: counted, not copied (this runs under the
	 * guard's lock, for many connections during a flood) */
	return len >= 4 && len <= 16384 &&
	       recv(fd, first, sizeof(first), MSG_PEEK | MSG_DONTWAIT) == (ssize_t)sizeof(first) &&
	       first[5] == 0x01 /* ClientHello */ && ioctl(fd, FIONREAD, &waiting) == 0 &&
	       (size_t)waiting >= 5 + len;
}

static bool spoke(cs_conn *c)
{
	if (!c->hello && c->fd >= 0 && hello_waiting(c->fd))
		c->hello = true;
	return c->hello;
}

/* A silent connection this young may still be a client whose hello is on
 * its way. */
#define HELLO_GRACE_MS 100
/* A silent newcomer that would be refused waits this long for its hello
 * before the decision is final (it holds a descriptor, not a slot). */
#define HELLO_WAIT_MS 50
/* an idle keep-alive connection at the end of its lifetime is closed only
 * after this much more silence (a request arriving meanwhile is answered
 * with Connection: close) */
#define LIFETIME_GRACE_MS 1000

/* Which connection gives way when a newcomer finds the budget (of its
 * source, or of all when source is NULL) full:
 *   1. the oldest silent one past the grace period;
 *   2. else, when the newcomer has sent its whole client hello, the newest
 *      silent one, or when none is silent the oldest;
 *   3. else nobody: the newcomer itself (*refuse_newcomer), so that a
 *      burst of silent connections cannot push out a client that came
 *      before it and is still within its grace period.
 * So a client whose hello is on the wire always gets in, and one that
 * came in keeps its slot until it has had time to speak. */
static cs_conn *victim_of(cs_conn_guard *g, const char *source, bool newcomer_spoke,
			  bool *refuse_newcomer)
{
	int64_t young = now_ms() - HELLO_GRACE_MS;
	cs_conn *oldest = NULL, *newest_silent = NULL;
	*refuse_newcomer = false;
	for (cs_conn *c = g->oldest; c != NULL; c = c->next) {
		if (source != NULL && strcmp(c->source, source) != 0)
			continue;
		if (oldest == NULL)
			oldest = c;
		if (spoke(c))
			continue;
		if (c->accepted_ms <= young)
			return c;
		newest_silent = c;
	}
	if (newcomer_spoke)
		return newest_silent != NULL ? newest_silent : oldest;
	*refuse_newcomer = true;
	return NULL;
}

/* The connection to make room for one more from source, or NULL (see
 * victim_of): one of that source when it is over its budget, else one of
 * any when all are. */
static cs_conn *eviction_victim(cs_conn_guard *g, const char *source, bool newcomer_spoke,
				bool *refuse_newcomer)
{
	int same = 0;
	*refuse_newcomer = false;
	for (cs_conn *c = g->oldest; c != NULL; c = c->next)
		same += strcmp(c->source, source) == 0;
	if (same >= g->limits.max_handshakes_per_source)
		return victim_of(g, source, newcomer_spoke, refuse_newcomer);
	if (g->handshaking >= g->limits.max_handshakes)
		return victim_of(g, NULL, newcomer_spoke, refuse_newcomer);
	return NULL;
}

/* ---- closing --------------------------------------------------------------- */

/* Shut the socket down: libevent reads the end of the stream and frees the
 * connection on this thread's next turn. */
static void close_now(cs_conn *c)
{
	evutil_socket_t fd = c->bev != NULL ? bufferevent_getfd(c->bev) : -1;
	c->state = CONN_CLOSING;
	event_del(c->timer);
	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
}

static void on_kill(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	cs_conn *c = arg;
	if (c->state == CONN_CLOSING)
		return;
	/* one line per eviction would let a flood fill the log: the server
	 * logs the count per interval (cs_conn_guard_counts) */
	cs_log_debug("connection from %s evicted before its TLS handshake finished", c->source);
	close_now(c);
}

/* ---- deadlines -------------------------------------------------------------- */

static int64_t deadline_of(const cs_conn *c)
{
	const cs_conn_limits *l = &c->guard->limits;
	switch (c->state) {
	case CONN_SETUP: return c->deferred ? c->accepted_ms + HELLO_WAIT_MS : -1;
	case CONN_HANDSHAKE: return c->accepted_ms + l->handshake_timeout_ms;
	case CONN_READY: return c->accepted_ms + (int64_t)l->max_connection_seconds * 1000;
	case CONN_READING: return c->request_started_ms + l->request_timeout_ms;
	default: return -1;
	}
}

static void arm(cs_conn *c)
{
	int64_t at = deadline_of(c);
	if (at < 0) {
		event_del(c->timer);
		return;
	}
	int64_t in = at - now_ms();
	if (in < 0)
		in = 0;
	struct timeval tv = {(time_t)(in / 1000), (suseconds_t)((in % 1000) * 1000)};
	event_add(c->timer, &tv);
}

static void admit(cs_conn *c)
{
	cs_conn_guard *g = c->guard;
	evutil_socket_t fd = bufferevent_getfd(c->bev);
	struct sockaddr_storage peer;
	socklen_t len = sizeof(peer);
	if (fd < 0 || getpeername(fd, (struct sockaddr *)&peer, &len) != 0) {
		snprintf(c->source, sizeof(c->source), "unknown");
	} else if (peer.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&peer)->sin6_addr, c->source,
			  sizeof(c->source));
	} else if (peer.ss_family == AF_INET) {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&peer)->sin_addr, c->source,
			  sizeof(c->source));
	} else {
		snprintf(c->source, sizeof(c->source), "local");
	}
	if (fd >= 0) {
		/* every response is one write; never wait for the peer's ACK */
		int one = 1;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	if (c->state != CONN_SETUP) /* finished its handshake already */
		return;
	c->fd = fd;
	bool refuse = false;
	pthread_mutex_lock(&g->lock);
	c->hello = c->hello || spoke(c);
	cs_conn *victim = eviction_victim(g, c->source, c->hello, &refuse);
	if (victim != NULL) {
		unlist(g, victim);
		victim->evicted = true;
		event_active(victim->kill, EV_TIMEOUT, 1);
	}
	if (victim != NULL || (refuse && c->deferred))
		g->evicted++;
	if (!refuse)
		list_newest(g, c);
	pthread_mutex_unlock(&g->lock);
	if (refuse && !c->deferred) {
		c->deferred = true; /* on_timer admits it again at HELLO_WAIT_MS */
		return;
	}
	if (refuse) {
		cs_log_debug("connection from %s refused: the handshake budget is full of "
			     "connections within their grace period", c->source);
		close_now(c);
		return;
	}
	c->state = CONN_HANDSHAKE;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	cs_conn *c = arg;
	if (c->state == CONN_SETUP) {
		admit(c);
		arm(c);
		return;
	}
	int64_t at = deadline_of(c);
	if (at < 0)
		return;
	if (now_ms() < at) { /* re-armed by a state change meanwhile */
		arm(c);
		return;
	}
	const cs_conn_limits *l = &c->guard->limits;
	switch (c->state) {
	case CONN_HANDSHAKE:
		cs_log_debug("connection from %s closed: TLS handshake not finished within %d ms "
			    "(server.handshake_timeout_ms)", c->source, l->handshake_timeout_ms);
		c->guard->timed_out++;
		break;
	case CONN_READING:
		cs_log_warn("connection from %s closed: request not received whole within %d ms "
			    "(server.request_timeout_ms)", c->source, l->request_timeout_ms);
		c->guard->timed_out++;
		break;
	default:
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0) {
			/* the last answer is still leaving: a client that lost it
			 * would send its request again (a certify answered twice) */
			struct timeval soon = {0, 50 * 1000};
			event_add(c->timer, &soon);
			return;
		}
		if (c->state == CONN_READY && !c->lifetime_grace) {
			/* idle between two requests: a keep-alive client may be
			 * sending its next one right now, and closing under it
			 * loses that request ("empty reply"; a certify it cannot
			 * tell was handled). A request that comes within the grace
			 * is answered with Connection: close
			 * (cs_conn_request_start); only a client idle that long
			 * is closed on */
			c->lifetime_grace = true;
			struct timeval grace = {LIFETIME_GRACE_MS / 1000, (LIFETIME_GRACE_MS % 1000) * 1000};
			event_add(c->timer, &grace);
			return;
		}
		cs_log_info("connection from %s closed: it reached its lifetime of %d s "
			    "(server.max_connection_seconds)", c->source, l->max_connection_seconds);
		break;
	}
	close_now(c);
}

/* ---- request bytes ----------------------------------------------------------- */

/* Scan the header bytes from offset on for framing defects. */
static void scan_from(cs_conn *c, struct evbuffer *buf, size_t offset)
{
	size_t total = evbuffer_get_length(buf);
	struct evbuffer_ptr pos;
	if (evbuffer_ptr_set(buf, &pos, offset, EVBUFFER_PTR_SET) != 0)
		return;
	unsigned char chunk[1024];
	while (offset < total && !c->framing.in_body && c->framing.defect == NULL) {
		size_t want = total - offset < sizeof(chunk) ? total - offset : sizeof(chunk);
		ev_ssize_t got = evbuffer_copyout_from(buf, &pos, chunk, want);
		if (got <= 0)
			return;
		cs_framing_feed(&c->framing, chunk, (size_t)got);
		offset += (size_t)got;
		if (evbuffer_ptr_set(buf, &pos, (size_t)got, EVBUFFER_PTR_ADD) != 0)
			return;
	}
}

static void start_reading(cs_conn *c)
{
	c->state = CONN_READING;
	c->request_started_ms = now_ms();
	cs_framing_reset(&c->framing);
	arm(c);
}

/* Bytes added to the input buffer: called before libevent's HTTP parser
 * sees them (evbuffer callbacks run when the data is committed). */
static void on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	cs_conn *c = arg;
	if (info->n_added == 0)
		return;
	size_t first_new = evbuffer_get_length(buf) - info->n_added;
	if (c->state == CONN_READY) {
		start_reading(c);
		first_new = 0;
	}
	if (c->state == CONN_READING)
		scan_from(c, buf, first_new);
}

/* ---- lifecycle --------------------------------------------------------------- */

cs_conn *cs_conn_new(cs_conn_guard *guard, struct event_base *base)
{
	cs_conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->guard = guard;
	c->base = base;
	c->accepted_ms = now_ms();
	c->fd = -1;
	c->identity_slot = -1;
	c->timer = evtimer_new(base, on_timer, c);
	c->kill = event_new(base, -1, 0, on_kill, c);
	if (c->timer == NULL || c->kill == NULL) {
		cs_conn_free(c);
		return NULL;
	}
	return c;
}

void cs_conn_attach(cs_conn *conn, struct bufferevent *bev)
{
	conn->bev = bev;
	conn->input_watch = evbuffer_add_cb(bufferevent_get_input(bev), on_input, conn);
	bufferevent_setwatermark(bev, EV_READ, 0, (size_t)conn->guard->limits.max_request_bytes);
	/* libevent gives the bufferevent its socket only after this returns */
	event_active(conn->timer, EV_TIMEOUT, 1);
}

void cs_conn_free(cs_conn *conn)
{
	if (conn == NULL)
		return;
	cs_conn_guard *g = conn->guard;
	/* synchronises with an eviction that chose this connection */
	pthread_mutex_lock(&g->lock);
	unlist(g, conn);
	if (conn->identity_slot >= 0)
		g->identities[conn->identity_slot].count--;
	pthread_mutex_unlock(&g->lock);
	if (conn->counted)
		g->authenticated--;
	if (conn->input_watch != NULL && conn->bev != NULL)
		evbuffer_remove_cb_entry(bufferevent_get_input(conn->bev), conn->input_watch);
	if (conn->timer != NULL)
		event_free(conn->timer);
	if (conn->kill != NULL)
		event_free(conn->kill);
	free(conn);
}

void cs_conn_hello(cs_conn *conn)
{
	pthread_mutex_lock(&conn->guard->lock);
	conn->hello = true;
	pthread_mutex_unlock(&conn->guard->lock);
}

void cs_conn_handshake_done(cs_conn *conn)
{
	if (conn->state != CONN_SETUP && conn->state != CONN_HANDSHAKE)
		return;
	cs_conn_guard *g = conn->guard;
	pthread_mutex_lock(&g->lock);
	unlist(g, conn);
	bool evicted = conn->evicted;
	pthread_mutex_unlock(&g->lock);
	if (evicted)
		return; /* its kill event is on the way */
	g->authenticated++;
	conn->counted = true;
	conn->state = CONN_READY;
	arm(conn);
}

bool cs_conn_identify(cs_conn *conn, const char *identity)
{
	cs_conn_guard *g = conn->guard;
	int n = g->limits.max_connections, found = -1, free_slot = -1;
	bool admitted = false;
	if (conn->identity_slot >= 0)
		return true; /* counted already */
	pthread_mutex_lock(&g->lock);
	for (int i = 0; i < n && found < 0; i++) {
		if (g->identities[i].count > 0 && strcmp(g->identities[i].name, identity) == 0)
			found = i;
		else if (g->identities[i].count == 0 && free_slot < 0)
			free_slot = i;
	}
	if (found < 0 && free_slot >= 0) {
		found = free_slot;
		snprintf(g->identities[found].name, sizeof(g->identities[found].name), "%s", identity);
	}
	if (found >= 0 && g->identities[found].count < g->limits.max_per_identity) {
		g->identities[found].count++;
		conn->identity_slot = found;
		admitted = true;
	}
	pthread_mutex_unlock(&g->lock);
	if (!admitted) {
		/* one line per second at most: an authenticated client could
		 * otherwise fill the log */
		static atomic_long last_s;
		long now = (long)time(NULL), seen = last_s;
		if (now != seen && atomic_compare_exchange_strong(&last_s, &seen, now))
			cs_log_warn(found >= 0 ? "connection from %s closed: identity \"%s\" already holds "
						 "%d connections (server.max_connections_per_identity)"
					       : "connection from %s closed: identity \"%s\": all %d "
						 "identity slots are taken (server.max_connections)",
				    conn->source, identity,
				    found >= 0 ? g->limits.max_per_identity : g->limits.max_connections);
		close_now(conn);
	}
	return admitted;
}

bool cs_conn_closing(const cs_conn *conn)
{
	return conn->state == CONN_CLOSING;
}

const char *cs_conn_request_start(cs_conn *conn, bool *close_after)
{
	int64_t lifetime_end = conn->accepted_ms + (int64_t)conn->guard->limits.max_connection_seconds * 1000;
	*close_after = now_ms() >= lifetime_end;
	if (conn->state == CONN_CLOSING) /* stays so: no timer, no handling */
		return conn->framing.defect;
	conn->state = CONN_HANDLING;
	event_del(conn->timer);
	return conn->framing.defect;
}

void cs_conn_request_end(cs_conn *conn)
{
	if (conn->state != CONN_HANDLING)
		return;
	conn->state = CONN_READY;
	struct evbuffer *input = bufferevent_get_input(conn->bev);
	if (evbuffer_get_length(input) > 0) { /* the next request, pipelined */
		start_reading(conn);
		scan_from(conn, input, 0);
	} else {
		arm(conn);
	}
}

const cs_framing *cs_conn_framing(const cs_conn *conn)
{
	return &conn->framing;
}

const char *cs_conn_source(const cs_conn *conn)
{
	return conn->source[0] != '\0' ? conn->source : "unknown"; /* before admission */
}
