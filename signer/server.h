/*
 * server: the mTLS HTTP/1.1 front of credsignd (libevent evhttp over
 * bufferevent_openssl).
 *
 * server.workers threads each run an event loop with its own evhttp and
 * store connection, all accepting on one listening socket: a request that
 * waits on a slow token holds one loop, the others keep accepting and
 * serving. Limits: header and body size, one read/write/idle timeout,
 * server.max_connections (further connections fail their handshake).
 *
 * cs_server_run() serves until SIGTERM/SIGINT, then stops accepting, lets
 * requests in flight finish (10 s at most) and returns. SIGHUP rebuilds the
 * TLS context, reloading the client CA and CRL; new connections use it.
 */
#ifndef CS_SERVER_H
#define CS_SERVER_H

#include "app.h"
#include "cs_error.h"

cs_err cs_server_run(cs_app *app) __attribute__((warn_unused_result));

#endif
