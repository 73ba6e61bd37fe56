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
 * Start-up in three steps, so that the daemon binds and checks everything
 * before it changes any state (the store, the audit log):
 *   cs_server_bind()      binds server.listen and server.health_listen
 *                         (nothing else); a failure is logged naming the
 *                         setting: "server.listen 127.0.0.1:8443: address
 *                         already in use" (CS_E_CONFIG);
 *   cs_server_load_tls()  builds the TLS context (tls.cert, tls.key, tls.ca,
 *                         tls.crl) in the daemon's library context; a
 *                         failure says why in `why`: OpenSSL's first error
 *                         ("random number generator: unable to fetch
 *                         drbg") when the TLS layer did not log one;
 *   cs_server_run()       serves until SIGTERM/SIGINT (or until app->node.lost
 *                         is set: its id was taken; checked every second),
 *                         then stops accepting,
 *                         lets requests in flight finish (10 s at most) and
 *                         returns. SIGHUP rebuilds the TLS context,
 *                         reloading the client CA and CRL; new connections
 *                         use it; it also swaps in the access rules of the
 *                         configuration file read again (service.h,
 *                         cs_service_rules_reload). Under systemd it
 *                         reports ready, reloading, stopping and watchdog
 *                         pings from its main loop (notify.h). It runs once
 *                         per bound server, after both steps above (else
 *                         CS_E_INTERNAL).
 * cs_server_free() closes what is still open. Ownership: the cs_server
 * owns its sockets and TLS context; the app passed to cs_server_run must
 * outlive the run.
 */
#ifndef CS_SERVER_H
#define CS_SERVER_H

#include <openssl/types.h>

#include "app.h"
#include "config.h"
#include "cs_error.h"

typedef struct cs_server cs_server;

cs_err cs_server_bind(const cs_config *cfg, cs_server **out) __attribute__((warn_unused_result));
cs_err cs_server_load_tls(cs_server *srv, OSSL_LIB_CTX *libctx, const cs_config *cfg, char *why,
			  size_t why_len) __attribute__((warn_unused_result));
cs_err cs_server_run(cs_server *srv, cs_app *app) __attribute__((warn_unused_result));
void cs_server_free(cs_server *srv);

#endif
