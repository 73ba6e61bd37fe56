/*
 * api: the HTTP API of credsignd, one function per route, called by the
 * server for every complete request (see server.h).
 *
 *   POST /api/generate              a credential under a preset (200)
 *   POST /api/generate-certificate  a compliance certificate (201)
 *   GET  /cert/{id}                 certificate and decoded claims
 *   GET  /cert/{id}.jws             the JWS (application/jose)
 *   GET  /.well-known/jwks.json     every signing key ever used
 *   GET  /api/presets               preset definitions
 *   GET  /api/policy                a written policy for chosen presets
 *   GET  /api/audit                 audit entries and checkpoints (audit.readers)
 *   GET  /api/audit/checkpoint      the latest signed checkpoint
 *   GET  /healthz, /readyz          liveness; token and store usable (not audited)
 *
 * Every error is {"error":{"code":"...","message":"..."}} with a fitting
 * status. The credential is written once, into a response buffer that is
 * wiped when libevent releases it; it is never stored or logged.
 */
#ifndef CS_API_H
#define CS_API_H

#include <event2/http.h>

#include "app.h"
#include "store.h"

typedef struct {
	char identity[256];
	char cert_sha256[65];
} cs_peer;

/* Handle one request. peer is NULL when the TLS identity is unavailable.
 * The request's audit entry is durable before the response is sent; when
 * it cannot be written the response is 503 audit_unavailable instead. */
void cs_api_handle(struct evhttp_request *req, cs_app *app, cs_store *store, const cs_peer *peer);

#endif
