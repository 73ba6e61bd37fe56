/*
 * keyproc: the key process's server. It answers the requests of
 * token_ipc.h that the network process's remote token (cs_token_open_remote)
 * sends over socketpair channels, on the in-process token it holds.
 *
 * Each channel is served by its own thread, one request at a time, with a
 * dispatch table {type, state required, handler}. A channel starts NEW,
 * where only HELLO is permitted (anything else: an error reply CS_E_IPC,
 * the channel stays NEW); HELLO moves it to READY, where every request but
 * HELLO is permitted. Every request gets exactly one reply, an explicit
 * error when refused: a frame the codec calls malformed gets CS_E_IPC. Two
 * things end a channel instead (closed, logged): a well-formed frame of an
 * unknown type, and a frame longer than CS_IPC_FRAME_MAX.
 *
 * Purposes: the key process signs only with keys bound to the purpose a
 * SIGN request names: the request's key label and id must equal the
 * resolved label and id of a key bound to that purpose (else
 * CS_E_KEY_PURPOSE, logged at warning with the purpose and label); the
 * signature is made with the bound, resolved reference. The configured keys
 * are bound at cs_keyproc_prepare; BIND adds others (e.g. the successors of
 * the certificate key, which the store names): it resolves the key and is
 * refused (CS_E_KEY_PURPOSE) for purpose NONE, for TLS (only the configured
 * TLS key signs for TLS), for a key bound or configured for another
 * purpose, and beyond CS_KEYPROC_BINDINGS_MAX bindings. Refusals are logged
 * at most once per (request type, reason) per minute. RANDOM bytes are
 * wiped after sending. The bindings are shared by all channels (a BIND on
 * one serves SIGN on every other) and live as long as the cs_keyproc.
 *
 * Thread-safety: cs_keyproc_serve runs the channel threads; prepare, serve
 * and free are called by one thread, in that order.
 */
#ifndef CS_KEYPROC_H
#define CS_KEYPROC_H

#include <stddef.h>

#include "cs_error.h"
#include "token.h"

#define CS_KEYPROC_BINDINGS_MAX 256
#define CS_KEYPROC_CHANNELS_MAX 64

typedef struct cs_keyproc cs_keyproc;

/* A key the configuration names for a purpose. */
typedef struct {
	cs_key_purpose purpose; /* not NONE */
	const char *uri;        /* pkcs11: key URI (object= and/or id=) */
	const char *setting;    /* "pkcs11.signing_key", "tls.key", "signing.profiles.NAME.key": for logs */
} cs_keyproc_key;

/* Resolve the configured keys (cs_key_ref_from_uri, cs_token_find_key) and
 * bind each to its purpose. A key configured for two purposes is refused:
 * CS_E_KEY_PURPOSE, logged naming both settings; a key that does not
 * resolve: its error, logged naming the setting. nkeys may be 0. The token
 * stays the caller's (it outlives the cs_keyproc); the strings in keys are
 * copied. On failure *out is NULL. */
cs_err cs_keyproc_prepare(cs_token *token, const cs_keyproc_key *keys, size_t nkeys, cs_keyproc **out)
	__attribute__((warn_unused_result));

/* Serve the channels (connected SOCK_SEQPACKET fds, 1..CS_KEYPROC_CHANNELS_MAX,
 * taken over: each is closed when its channel ends), one thread each, until
 * every channel is closed by its peer or ended by the rules above; CS_OK
 * then. CS_E_INVALID_ARG for no or too many fds, CS_E_INTERNAL when a
 * thread cannot be started (the fds are closed, the threads started so far
 * run until their peers close). Called once per cs_keyproc. */
cs_err cs_keyproc_serve(cs_keyproc *kp, const int *fds, size_t nfds) __attribute__((warn_unused_result));

/* Free the bindings (not the token). NULL is a no-op. */
void cs_keyproc_free(cs_keyproc *kp);

#endif
