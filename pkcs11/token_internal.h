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
	CK_OBJECT_HANDLE priv;
	/* where the public half is read: the public key object (CKA_EC_POINT),
	 * or, on a token that keeps only the private object, the private key
	 * (its CKA_EC_POINT or CKA_PUBLIC_KEY_INFO) */
	CK_OBJECT_HANDLE pub;
	CK_ATTRIBUTE_TYPE pub_attr;
	CK_OBJECT_HANDLE sign; /* session-object copy of priv, or priv itself */
	int always_auth; /* CKA_ALWAYS_AUTHENTICATE: CKU_CONTEXT_SPECIFIC login per signature */
	int valid;
} tok_key_cache;

typedef struct {
	CK_SESSION_HANDLE handle;
	CK_SLOT_ID slot;     /* the token's slot when the session was opened */
	unsigned generation; /* pool generation the session was opened in */
	int open, in_use;
	/* copied from the pool when the session is handed out (see rng and
	 * random_max in cs_token), for use outside the lock */
	int rng;
	size_t random_max;
	tok_key_cache keys[TOK_KEY_CACHE];
	unsigned next_key;
} tok_session;

/* Module re-initialisation (C_Finalize + C_Initialize) is attempted at most
 * once per backoff interval: TOK_BACKOFF_MIN_MS after an attempt, doubling
 * after each failed one up to TOK_BACKOFF_MAX_MS, back to the minimum once an
 * operation succeeds. It waits up to TOK_DRAIN_SECONDS for operations in
 * flight to return their sessions. */
#define TOK_BACKOFF_MIN_MS 250
#define TOK_BACKOFF_MAX_MS 1000
#define TOK_DRAIN_SECONDS 5
#define TOK_SESSION_WAIT_MS 30000 /* every session busy: then CS_E_TOKEN_BUSY */

struct cs_token {
	CK_FUNCTION_LIST *fl;   /* the module's list: for p11-kit (initialise, finalise, release) */
	CK_FUNCTION_LIST *call; /* the list every C_* call goes through (token_meter.h) */
	CK_FUNCTION_LIST **registered; /* set when loaded by p11-kit name */
	int fl_loaded;                 /* fl was loaded and initialized: release on close */
	P11KitUri *uri;
	char *pin_path;
	char *init_args; /* CK_C_INITIALIZE_ARGS.pReserved (path modules); NULL for none */
	int read_write;

	/* Serialises key searches with C_CopyObject. Some modules, SoftHSM2
	 * among them, publish a copy with the source's attributes (CKA_TOKEN
	 * true) before applying the copy template, so a search running at that
	 * moment in another session finds the key twice. Taken only when a
	 * session's key cache misses. */
	pthread_mutex_t objects_lock;

	pthread_mutex_t lock; /* guards everything below */
	pthread_cond_t cond;  /* a session was released, or a re-initialisation ended */
	pid_t pid;
	CK_SLOT_ID slot; /* changed by recovery: read under the lock (or s->slot) */
	unsigned pool_size;
	tok_session *sessions;
	unsigned generation;
	unsigned long recoveries;
	unsigned long reinits;
	unsigned long reinit_failures; /* in a row, since the last success */
	unsigned session_cap; /* sessions the token allows (<= pool_size) */
	unsigned session_wait_ms; /* the wait for a free session, TOK_SESSION_WAIT_MS (white-box
				   * tests shorten it right after cs_token_open) */
	int bad_pin;
	int login_required; /* CKF_LOGIN_REQUIRED as read when the pool last logged in */
	int login_skip_logged; /* "PIN not used" said once */
	int not_logged_in_logged; /* an unexplained CKR_USER_NOT_LOGGED_IN said once */
	/* CKF_RNG as last read (slot selected, login, token info, refused
	 * draw), -1 before the first read: not read per draw, see
	 * cs_token_random */
	int rng;
	size_t random_max; /* bytes per C_GenerateRandom call, see CS_TOKEN_RANDOM_MAX_CALL */
	/* Module state. Every PKCS#11 call is made either under the lock, or
	 * on a session held in_use, or by the one thread that set reinit_busy
	 * (once no session is in use); so C_Finalize never runs beside another
	 * call, and no session of an earlier module instance is ever used. */
	int module_ready;           /* C_Initialize succeeded, no C_Finalize since */
	int reinit_busy;            /* one thread is re-initialising the module */
	unsigned backoff_ms;        /* interval after the next re-initialisation attempt */
	struct timespec reinit_due; /* CLOCK_MONOTONIC: no attempt before this */

	struct cs_token *next_open; /* the process's open tokens (fork handlers) */

	/* Set for a token served by a key process (cs_token_open_remote):
	 * every public function then forwards to token_remote.c and nothing
	 * above is used. */
	struct tok_remote *remote;
};

/* The remote side of the public functions (token_remote.c), called by them
 * first when t->remote is set; same contracts as in token.h. */
cs_err tok_remote_get_info(cs_token *t, cs_token_info *info);
unsigned long tok_remote_recoveries(cs_token *t);
unsigned long tok_remote_reinitializations(cs_token *t);
cs_err tok_remote_random(cs_token *t, uint8_t *buf, size_t n);
size_t tok_remote_random_max(cs_token *t);
cs_err tok_remote_find_key(cs_token *t, const cs_key_ref *query, cs_key_ref *found);
cs_err tok_remote_public_key(cs_token *t, const cs_key_ref *key, EVP_PKEY **out);
cs_err tok_remote_sign_es256(cs_token *t, const cs_key_ref *key, const uint8_t digest[32],
			     cs_es256_sig *sig);
cs_err tok_remote_mechanisms(cs_token *t, cs_token_mechanism out[CS_TOKEN_MECHANISMS]);
cs_err tok_remote_bind_key(cs_token *t, const cs_key_ref *key);
/* Key generation and destruction: CS_E_KEY_FORBIDDEN (logged). */
cs_err tok_remote_forbidden(cs_token *t, const char *what);
void tok_remote_close(cs_token *t);

/* An operation run on a pooled session. Returns the CK_RV of the failing
 * call (recovery is decided on it) or CKR_OK with *err for other failures. */
typedef CK_RV (*tok_op)(cs_token *t, tok_session *s, void *arg, cs_err *err);

/* Run an operation on a pooled session, recovering from token failures:
 * a recoverable CK_RV first reopens the sessions (new generation, slot
 * selected again) and retries; if that fails too, the module is
 * re-initialised (when the backoff allows) and the operation retried once
 * more. While another thread re-initialises, it waits for that (up to
 * CS_TOKEN_REINIT_WAIT_MS in all, however often it meets one) and retries
 * on the fresh module; it fails with
 * CS_E_TOKEN_UNAVAILABLE without waiting while the backoff has not expired.
 * CKR_USER_NOT_LOGGED_IN is recovered only when the session is public on a
 * token that needs a login (see token.h). */
cs_err tok_run(cs_token *t, tok_op op, void *arg);
/* A session from the pool, logged in. *generation gets the pool generation
 * seen (also on failure: recovery is keyed on it). Waits for a
 * re-initialisation in progress (up to CS_TOKEN_REINIT_WAIT_MS);
 * CS_E_TOKEN_UNAVAILABLE when the token needs recovery. */
cs_err tok_session_acquire(cs_token *t, tok_session **out, unsigned *generation);
/* Return a session to the pool; discard closes it instead. */
void tok_session_release(cs_token *t, tok_session *s, int discard);
/* Find the one initialized token matching the URI; *flags gets its
 * CK_TOKEN_INFO flags. Touches only t->fl and t->uri, so it may run with or
 * without the pool lock. */
cs_err tok_select_slot(cs_token *t, CK_SLOT_ID *slot, CK_FLAGS *flags);
/* Record the token's flags as just read (CKF_RNG: see cs_token_random).
 * Caller holds the lock. */
void tok_note_flags_locked(cs_token *t, CK_FLAGS flags);
cs_err tok_parse_uri(const char *text, P11KitUri **out);
/* C_Initialize of the module: with t->init_args as pReserved when set,
 * else as p11-kit initialises it (a registered module gets its
 * x-init-reserved). Every initialisation goes through here. */
CK_RV tok_module_initialize(cs_token *t);
/* The PIN from the configured source into pin[CS_PIN_MAX + 1] (the caller
 * wipes it); CS_E_PIN_SOURCE when there is none. */
cs_err tok_read_pin(cs_token *t, char *pin, size_t size, size_t *len);
/* Log a failed C_* call at debug level and map its CK_RV. */
cs_err tok_ckr_fail(cs_token *t, const char *fn, CK_RV rv);
/* Copy a blank-padded PKCS#11 string into a NUL-terminated buffer. */
void tok_copy_padded(char *dst, size_t dst_size, const unsigned char *src, size_t src_len);

#endif
