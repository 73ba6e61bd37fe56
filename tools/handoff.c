/*
 * handoff: a certified credential as a Kubernetes Secret manifest (libyaml)
 * or as the bodies of a Vault/OpenBao KV v2 write (jansson). handoff.h.
 */
#include "handoff.h"

#include <stdint.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <yaml.h>

#include "wipe_alloc.h"

/* The largest document made (a credential is at most a few KiB). */
#define HANDOFF_MAX (256 * 1024)

static int lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One RFC 1123 label of s[0..n): 1..63 of [a-z0-9-], alphanumeric at
 * both ends. */
static int label_ok(const char *s, size_t n)
{
	if (n == 0 || n > 63 || !lower_alnum(s[0]) || !lower_alnum(s[n - 1]))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!lower_alnum(s[i]) && s[i] != '-')
			return 0;
	return 1;
}

int cs_k8s_label_valid(const char *s)
{
	return s != NULL && label_ok(s, strlen(s));
}

int cs_k8s_subdomain_valid(const char *s)
{
	if (s == NULL)
		return 0;
	size_t n = strlen(s);
	if (n == 0 || n > 253)
		return 0;
	for (const char *p = s;;) {
		const char *dot = strchr(p, '.');
		size_t len = dot != NULL ? (size_t)(dot - p) : strlen(p);
		if (!label_ok(p, len))
			return 0;
		if (dot == NULL)
			return 1;
		p = dot + 1;
	}
}

int cs_k8s_data_key_valid(const char *s)
{
	if (s == NULL)
		return 0;
	size_t n = strlen(s);
	if (n == 0 || n > 253 || strcmp(s, ".") == 0 || strncmp(s, "..", 2) == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		      c == '_' || c == '.'))
			return 0;
	}
	return 1;
}

static int handoff_complete(const cs_handoff *h)
{
	return h->credential != NULL && h->cert_id != NULL && h->cert_url != NULL && h->preset != NULL &&
	       h->certified_at != NULL;
}

/* ---- the YAML ------------------------------------------------------------------ */

typedef struct {
	char *text;
	size_t len, cap;
	int overflow; /* the document passed HANDOFF_MAX or memory ran out */
} out_buf;

static int on_yaml_write(void *data, unsigned char *bytes, size_t size)
{
	out_buf *b = data;
	if (cs_wiped_append(&b->text, &b->len, &b->cap, bytes, size, HANDOFF_MAX) != 0) {
		b->overflow = 1;
		return 0;
	}
	return 1;
}

/* One event, emitted; 0 when libyaml refuses it (the event is freed either
 * way). */
static int emit(yaml_emitter_t *em, yaml_event_t *ev, int made)
{
	return made && yaml_emitter_emit(em, ev);
}

static int scalar(yaml_emitter_t *em, const char *text)
{
	yaml_event_t ev;
	int made = yaml_scalar_event_initialize(&ev, NULL, NULL, (const yaml_char_t *)text, (int)strlen(text), 1, 1,
						YAML_DOUBLE_QUOTED_SCALAR_STYLE);
	return emit(em, &ev, made);
}

static int map_start(yaml_emitter_t *em)
{
	yaml_event_t ev;
	return emit(em, &ev, yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE));
}

static int map_end(yaml_emitter_t *em)
{
	yaml_event_t ev;
	return emit(em, &ev, yaml_mapping_end_event_initialize(&ev));
}

static int pair(yaml_emitter_t *em, const char *key, const char *value)
{
	return scalar(em, key) && scalar(em, value);
}

static int emit_secret(yaml_emitter_t *em, const cs_handoff *h, const char *name, const char *ns, const char *key)
{
	yaml_event_t ev;
	return emit(em, &ev, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING)) &&
	       emit(em, &ev, yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 0)) && map_start(em) &&
	       pair(em, "apiVersion", "v1") && pair(em, "kind", "Secret") && scalar(em, "metadata") &&
	       map_start(em) && pair(em, "name", name) && pair(em, "namespace", ns) && scalar(em, "labels") &&
	       map_start(em) && pair(em, "app.kubernetes.io/managed-by", "credsign") && map_end(em) &&
	       scalar(em, "annotations") && map_start(em) && pair(em, "credsign.io/cert-url", h->cert_url) &&
	       pair(em, "credsign.io/cert-id", h->cert_id) && pair(em, "credsign.io/preset", h->preset) &&
	       pair(em, "credsign.io/certified-at", h->certified_at) && map_end(em) && map_end(em) &&
	       pair(em, "type", "Opaque") && scalar(em, "stringData") && map_start(em) &&
	       pair(em, key, h->credential) && map_end(em) && map_end(em) &&
	       emit(em, &ev, yaml_document_end_event_initialize(&ev, 1)) &&
	       emit(em, &ev, yaml_stream_end_event_initialize(&ev)) && yaml_emitter_flush(em);
}

/* Writes text[0..len) to out in one piece; CS_E_IO when it cannot. */
static cs_err write_all(const char *text, size_t len, FILE *out)
{
	if (fwrite(text, 1, len, out) != len || fflush(out) != 0)
		return CS_E_IO;
	return CS_OK;
}

cs_err cs_handoff_k8s_secret(const cs_handoff *h, const char *name, const char *ns, const char *key, FILE *out)
{
	if (!handoff_complete(h))
		return CS_E_INVALID_ARG;
	out_buf b = {0};
	yaml_emitter_t em;
	if (!yaml_emitter_initialize(&em))
		return CS_E_NOMEM;
	yaml_emitter_set_output(&em, on_yaml_write, &b);
	yaml_emitter_set_unicode(&em, 1);
	yaml_emitter_set_width(&em, -1); /* no folding: one line per scalar */
	yaml_emitter_set_indent(&em, 2);
	int ok = emit_secret(&em, h, name, ns, key);
	cs_err r = ok ? CS_OK : b.overflow ? CS_E_NOMEM : em.error == YAML_MEMORY_ERROR ? CS_E_NOMEM : CS_E_INVALID_ARG;
	/* the emitter's output buffer held the credential on its way to ours */
	if (em.buffer.start != NULL)
		OPENSSL_cleanse(em.buffer.start, (size_t)(em.buffer.end - em.buffer.start));
	yaml_emitter_delete(&em);
	if (r == CS_OK)
		r = write_all(b.text, b.len, out);
	if (b.text != NULL)
		OPENSSL_cleanse(b.text, b.cap);
	free(b.text);
	return r;
}

/* ---- the JSON ------------------------------------------------------------------ */

cs_err cs_handoff_vault_kv(const cs_handoff *h, const char *key, FILE *out)
{
	if (!handoff_complete(h) || strcmp(key, "cert_url") == 0 || strcmp(key, "cert_id") == 0)
		return CS_E_INVALID_ARG;
	/* jansson's allocator wipes what it frees when the program installed
	 * cs_json_wiping_allocator (credsign does, first thing) */
	json_t *data = json_object();
	json_t *doc = json_pack("{s:{s:o, s:{s:i}}, s:{s:{s:s, s:s, s:s}}}", "data", "data", data, "options", "cas",
				0, "metadata", "custom_metadata", "credsign.io/cert-url", h->cert_url,
				"credsign.io/cert-id", h->cert_id, "credsign.io/preset", h->preset);
	if (doc == NULL)
		return CS_E_NOMEM;
	cs_err r = CS_E_INVALID_ARG;
	json_t *credential = json_string(h->credential); /* NULL: not UTF-8 */
	if (credential == NULL)
		goto out;
	r = CS_E_NOMEM;
	if (json_object_set_new(data, key, credential) != 0 ||
	    json_object_set_new(data, "cert_url", json_string(h->cert_url)) != 0 ||
	    json_object_set_new(data, "cert_id", json_string(h->cert_id)) != 0)
		goto out;
	char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (text == NULL)
		goto out;
	size_t len = strlen(text);
	r = write_all(text, len, out);
	if (r == CS_OK && (fputc('\n', out) == EOF || fflush(out) != 0))
		r = CS_E_IO;
	cs_wiped_buffer_free(text, len + 1, NULL);
out:
	json_decref(doc);
	return r;
}
