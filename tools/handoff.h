/*
 * handoff: a certified credential in the shape a secrets manager takes
 * (credsign generate --certify --format k8s-secret | vault-kv;
 * docs/integrations.md).
 *
 * k8s-secret: a Kubernetes Secret manifest (YAML 1.1, emitted by libyaml,
 * every scalar double-quoted): apiVersion v1, kind Secret, metadata (name,
 * namespace, the label app.kubernetes.io/managed-by=credsign, the
 * annotations credsign.io/cert-url, cert-id, preset, certified-at), type
 * Opaque, stringData {KEY: the credential}.
 * vault-kv: one JSON object {"data": the body of a KV v2 write
 * (POST /v1/MOUNT/data/PATH: {"data":{KEY, cert_url, cert_id},
 * "options":{"cas":0}}), "metadata": the body of the metadata write
 * (POST /v1/MOUNT/metadata/PATH: {"custom_metadata":{credsign.io/...}})}.
 *
 * Both render into a buffer of their own, wiped before it is released, and
 * write it to the stream only when the whole document is made: a failure
 * writes nothing. libyaml copies each scalar into an event of its own and
 * frees it unwiped (it has no allocator hook): the credential's copy is
 * cleared only by the process's exit, which follows the printing.
 * Errors: CS_E_INVALID_ARG (a member missing or not UTF-8), CS_E_NOMEM,
 * CS_E_IO (the stream refused the text). Nothing is logged.
 */
#ifndef CS_HANDOFF_H
#define CS_HANDOFF_H

#include <stdio.h>

#include "cs_error.h"

/* A certified credential: all members non-NULL (certified_at as the
 * certificate's claims give it). */
typedef struct {
	const char *credential;
	const char *cert_id, *cert_url, *preset, *certified_at;
} cs_handoff;

/* The key of the credential in the Secret's stringData or the KV data
 * when --secret-key is not given. */
#define CS_HANDOFF_DEFAULT_KEY "credential"

/* Kubernetes' name rules. A Secret's name: a DNS subdomain (RFC 1123: at
 * most 253 characters, dot-separated labels of lower-case letters, digits
 * and '-', each beginning and ending with a letter or digit); a namespace:
 * one RFC 1123 label (at most 63 characters); a key of a Secret's data:
 * 1..253 of [-._a-zA-Z0-9], not "." and not beginning with "..". Non-zero
 * when valid. */
int cs_k8s_subdomain_valid(const char *s);
int cs_k8s_label_valid(const char *s);
int cs_k8s_data_key_valid(const char *s);

/* The Secret manifest of h, named name in namespace ns, the credential
 * under key; written to out in one piece. */
cs_err cs_handoff_k8s_secret(const cs_handoff *h, const char *name, const char *ns, const char *key, FILE *out)
	__attribute__((warn_unused_result, nonnull));
/* The KV v2 bodies of h (the credential under key, which must not be
 * cert_url or cert_id), compact JSON and a newline, written to out in one
 * piece. */
cs_err cs_handoff_vault_kv(const cs_handoff *h, const char *key, FILE *out)
	__attribute__((warn_unused_result, nonnull));

#endif
