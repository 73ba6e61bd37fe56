/* http_errors: see http_errors.h. */
#include "http_errors.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/http_struct.h> /* major/minor of a request whose first line failed */
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "cs_log.h"

static cs_http_error_explain_fn explain;

void cs_http_errors_explain(cs_http_error_explain_fn fn)
{
	explain = fn;
}

static void error_text(int status, const char **code, const char **message)
{
	switch (status) {
	case 431:
		*code = "headers_too_large";
		*message = "request header section too large (server.max_header_bytes)";
		return;
	case HTTP_ENTITYTOOLARGE:
		*code = "payload_too_large";
		*message = "request headers or body too large (server.max_header_bytes, "
			   "server.max_body_bytes; POST /api/sign: signing.max_request_bytes)";
		return;
	case HTTP_NOTIMPLEMENTED:
		*code = "not_implemented";
		*message = "unknown request method";
		return;
	case 417:
		*code = "expectation_failed";
		*message = "unsupported Expect header";
		return;
	case HTTP_INTERNAL:
		*code = "internal_error";
		*message = "the reply could not be built";
		return;
	default:
		*code = "bad_request";
		*message = "malformed HTTP request";
		return;
	}
}

__attribute__((visibility("default"))) void evhttp_send_error(struct evhttp_request *req, int error,
							      const char *reason)
{
	(void)reason; /* libevent passes none that we would not override */
	if (error < 400 || error > 599)
		error = HTTP_BADREQUEST; /* a request whose method libevent could not read */
	const char *code, *message;
	char explained[200] = "";
	if (explain != NULL && (error == HTTP_BADREQUEST || error == HTTP_ENTITYTOOLARGE))
		explain(req, &error, explained, sizeof(explained));
	error_text(error, &code, &message);
	if (explained[0] != '\0')
		message = explained;
	json_t *doc = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message);
	char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(doc);
	struct evbuffer *body = evbuffer_new();
	if (text == NULL || body == NULL || evbuffer_add(body, text, strlen(text)) != 0) {
		free(text);
		if (body != NULL)
			evbuffer_free(body);
		evhttp_connection_free(evhttp_request_get_connection(req)); /* as libevent does */
		return;
	}
	free(text);
	if (req->major == 0) { /* the request line did not parse */
		req->major = 1;
		req->minor = 1;
	}
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_clear_headers(h);
	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "Connection", "close");
	cs_log_info("request refused by the HTTP layer: status=%d code=%s", error, code);
	/* libevent 2.1 has no phrase for 431 */
	evhttp_send_reply(req, error, error == 431 ? "Request Header Fields Too Large" : NULL, body);
	evbuffer_free(body);
}
