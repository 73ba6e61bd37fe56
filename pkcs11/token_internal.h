/*
 * token_internal: shared between token_p11.c (module, slot, login, pool) and
 * token_ops.c (operations). Not part of the public interface.
 */
#ifndef CS_TOKEN_INTERNAL_H
#define CS_TOKEN_INTERNAL_H

#include <pthread.h>
#include <sys/types.h>

#include <p11-kit/pkcs11.h>
#include <p11-kit/uri.h>

#include "token.h"

#define TOK_KEY_CACHE 4

/* Object handles found once per session and reused (C_FindObjects per
 * signature is slow on real HSMs); re-found on CKR_OBJECT_HANDLE_INVALID.
 * Signing uses a session-object copy of the private key where the token
 * allows C_CopyObject (CKA_TOKEN false; sensitivity is kept): some tokens,
 * SoftHSM2 among them, check their on-disk state on every use of a token
 * object. Tokens that refuse the copy sign with the token object. */
typedef struct {
	cs_key_ref ref; /* as resolved: full label and id */
	cs_key_ref query; /* as asked */
	CK_OBJECT_HANDLE priv, pub;
	CK_OBJECT_HANDLE sign; /* session-object copy of priv, or priv itself */
	int valid;
} tok_key_cache;

typedef struct {
	CK_SESSION_HANDLE handle;
	unsigned generation; /* pool generation the session was opened in */
	int open, in_use;
	tok_key_cache keys[TOK_KEY_CACHE];
	unsigned next_key;
} tok_session;

struct cs_token {
	CK_FUNCTION_LIST *fl;
	CK_FUNCTION_LIST **registered; /* set when loaded by p11-kit name */
	int fl_loaded;                 /* fl is initialized: finalize on close */
	P11KitUri *uri;
	char *pin_path;
	CK_SLOT_ID slot;
	int read_write;
	pid_t pid;

	/* Serialises key searches with C_CopyObject. Some modules, SoftHSM2
	 * among them, publish a copy with the source's attributes (CKA_TOKEN
	 * true) before applying the copy template, so a search running at that
	 * moment in another session finds the key twice. Taken only when a
	 * session's key cache misses. */
	pthread_mutex_t objects_lock;

	pthread_mutex_t lock; /* guards everything below */
	pthread_cond_t cond;
	unsigned pool_size;
	tok_session *sessions;
	unsigned generation;
	unsigned long recoveries;
	unsigned session_cap; /* sessions the token allows (<= pool_size) */
	int bad_pin;
};

/* An operation run on a pooled session. Returns the CK_RV of the failing
 * call (recovery is decided on it) or CKR_OK with *err for other failures. */
typedef CK_RV (*tok_op)(cs_token *t, tok_session *s, void *arg, cs_err *err);

cs_err tok_run(cs_token *t, tok_op op, void *arg);
cs_err tok_session_acquire(cs_token *t, tok_session **out);
/* Return a session to the pool; discard closes it instead. */
void tok_session_release(cs_token *t, tok_session *s, int discard);
cs_err tok_pool_recover(cs_token *t, unsigned failed_generation);
cs_err tok_select_slot(cs_token *t);
cs_err tok_parse_uri(const char *text, P11KitUri **out);
/* Log a failed C_* call at debug level and map its CK_RV. */
cs_err tok_ckr_fail(cs_token *t, const char *fn, CK_RV rv);
/* Copy a blank-padded PKCS#11 string into a NUL-terminated buffer. */
void tok_copy_padded(char *dst, size_t dst_size, const unsigned char *src, size_t src_len);

#endif
