/*
 * conn_guard: admission, deadlines and lifetime of the daemon's TLS
 * connections, so that peers who never authenticate cannot crowd out
 * clients who do.
 *
 * A connection is HANDSHAKING from accept until its TLS handshake has
 * finished (the client certificate verified), then AUTHENTICATED. The two
 * have separate budgets:
 *   - handshaking connections: at most server.max_handshakes in all and
 *     server.max_handshakes_per_source from one source address. A new
 *     connection over either budget makes room (of its source address,
 *     else overall): the oldest silent connection (no whole client hello
 *     yet) past a 100 ms grace period gives way; else, when the newcomer
 *     has sent its whole hello, the newest silent one, or the oldest when
 *     all have spoken; else the newcomer waits 50 ms for its hello and is
 *     closed if it is still silent. So a flood of idle or slow connections
 *     keeps only the newest ones, a client whose hello is on the wire
 *     always gets in, and one that came in keeps its slot until it has had
 *     time to speak. Each must
 *     finish its handshake within server.handshake_timeout_ms (total time,
 *     not idle time).
 *   - authenticated connections: at most server.max_connections (checked
 *     when the client hello arrives; over it the handshake is refused).
 *     One client identity holds at most server.max_connections_per_identity
 *     of them (more are closed after the handshake).
 *     A request must arrive whole (headers and body) within
 *     server.request_timeout_ms of its first byte; a connection lives at
 *     most server.max_connection_seconds (the request in progress is
 *     answered with "Connection: close"), so a connection made before its
 *     certificate was revoked ends soon after the CRL reload.
 * A connection reads at most max_request_bytes ahead of the request being
 * answered: a client that pipelines requests without reading the answers
 * cannot make the daemon buffer without bound.
 * A connection past a deadline is shut down (shutdown(2)); libevent then
 * sees the end of the stream and frees it. The raw request bytes are also
 * scanned for framing defects (http_framing.h) before libevent parses them.
 *
 * Threads: a cs_conn belongs to the worker thread whose event base serves
 * it; only the handshaking list and the counters are shared (one mutex,
 * atomics). Eviction of another worker's connection activates an event on
 * that worker's base: the connection is always closed by its own thread.
 */
#ifndef CS_CONN_GUARD_H
#define CS_CONN_GUARD_H

#include <stdbool.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "cs_error.h"
#include "http_framing.h"

#define CS_SOURCE_MAX 64 /* an IPv6 address in text, with room */

typedef struct {
	int handshake_timeout_ms;
	int request_timeout_ms;
	int max_connection_seconds;
	int max_handshakes;
	int max_handshakes_per_source;
	int max_connections;
	int max_request_bytes; /* read no further ahead than this (pipelining) */
	int max_per_identity;  /* authenticated connections of one client identity */
} cs_conn_limits;

typedef struct cs_conn_guard cs_conn_guard;
typedef struct cs_conn cs_conn;

cs_err cs_conn_guard_new(const cs_conn_limits *limits, cs_conn_guard **out)
	__attribute__((warn_unused_result));
/* Only after every connection is gone. */
void cs_conn_guard_free(cs_conn_guard *guard);
/* Connections now handshaking and authenticated; evictions and deadline
 * closes since start. */
void cs_conn_guard_counts(cs_conn_guard *guard, int *handshaking, int *authenticated,
			  long *evicted, long *timed_out);
/* True when no further connection may authenticate (max_connections). */
bool cs_conn_guard_full(cs_conn_guard *guard);

/* A connection just accepted on base (its bufferevent not yet made). NULL
 * when memory runs out. */
cs_conn *cs_conn_new(cs_conn_guard *guard, struct event_base *base);
/* Its bufferevent, once made; libevent sets the socket right after this,
 * and the guard admits the connection on the next turn of the loop. */
void cs_conn_attach(cs_conn *conn, struct bufferevent *bev);
/* Called when the bufferevent (and its SSL) is freed, on the owning thread. */
void cs_conn_free(cs_conn *conn);

/* Its client hello has arrived: evicted after those still silent. */
void cs_conn_hello(cs_conn *conn);
/* The TLS handshake finished: the connection counts as authenticated. */
void cs_conn_handshake_done(cs_conn *conn);
/* Count the authenticated connection against its client identity: false
 * (and the connection is being closed) when that identity already holds
 * max_per_identity connections, so one client cannot take every slot. */
bool cs_conn_identify(cs_conn *conn, const char *identity);
/* The guard has closed it (a deadline, eviction, the identity cap): a
 * request that arrived with its last bytes must not be handled. */
bool cs_conn_closing(const cs_conn *conn);
/* A complete request is about to be handled: the framing defect found in
 * its bytes (NULL if none), and in *close_after whether the connection has
 * reached its lifetime (answer with "Connection: close"). */
const char *cs_conn_request_start(cs_conn *conn, bool *close_after);
/* The request's reply has been handed to libevent. */
void cs_conn_request_end(cs_conn *conn);
/* What the framing scan saw of the request being read. */
const cs_framing *cs_conn_framing(const cs_conn *conn);
/* The source address ("127.0.0.1"); "unknown" until admitted. */
const char *cs_conn_source(const cs_conn *conn);

#endif
