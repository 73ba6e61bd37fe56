/*
 * token: the one interface between credsign and its PKCS#11 token.
 *
 * Everything that touches key material or the entropy source goes through
 * these functions. The interface deals only in plain data (buffers, key
 * references by label and CKA_ID, digests, signatures); no PKCS#11 handle or
 * session crosses it, so it is served either in-process (cs_token_open: the
 * tools, the unit tests, a daemon with hardening.privsep = false) or by a
 * separate key process over socketpair channels (cs_token_open_remote, in
 * the daemon's network process; the server is keyproc.h, the frames
 * token_ipc.h) without changing callers. A remote token forwards every call
 * as one request on a free channel and refuses what the daemon never does
 * (key generation and destruction: CS_E_KEY_FORBIDDEN); the key process
 * signs only with keys configured and bound (cs_token_bind_key) for the
 * purpose a key reference names.
 *
 * The in-process implementation (token_p11.c) loads the module through p11-kit (with
 * the configured C_Initialize arguments for a module given by path), selects
 * the token by an RFC 7512 URI, logs in as user with a PIN read from an
 * owner-only file at each login (and wiped right after C_Login) when the
 * token says CKF_LOGIN_REQUIRED (a token that needs no login needs no PIN
 * source), and runs
 * every operation on a session from a bounded, thread-safe pool. When the
 * token fails in a way a fresh session or a re-initialised module may cure
 * (a closed/invalid session, a removed/absent token, a device or general
 * error, an uninitialized module), the pool reopens its sessions, logs in
 * again and retries the operation; if that fails too, it re-initialises the
 * module (C_Finalize + C_Initialize, once no operation is in flight) and
 * retries once more. Re-initialisation is attempted at most every 250 ms,
 * backing off to every 1 s while it keeps failing; between attempts callers
 * get CS_E_TOKEN_UNAVAILABLE at once rather than waiting. A caller that
 * meets a re-initialisation another thread is running waits for its end
 * (up to CS_TOKEN_REINIT_WAIT_MS, within the daemon's handshake and request
 * deadlines) and then retries on the fresh module, so a burst of requests
 * after the token went away (e.g. a USB HSM's idle expiry) is served rather
 * than failed. CKR_USER_NOT_LOGGED_IN counts as a lost session only when
 * the session shows a public state on a token that needs a login (the
 * token dropped the login); otherwise it is the key's or the token's
 * refusal and is reported (CS_E_NOT_LOGGED_IN), not recovered. A PIN the
 * token rejected is never tried again (no lockout by retry), also after a
 * re-initialisation.
 *
 * A key with CKA_ALWAYS_AUTHENTICATE (a login before every use: smart
 * cards, PIV, some HSM policies) is signed with after a CKU_CONTEXT_SPECIFIC
 * login between C_SignInit and C_Sign, with the configured PIN; without a
 * PIN source such a key is refused (CS_E_KEY_ALWAYS_AUTH).
 *
 * Fork: a child process must not use the parent's sessions; the pool
 * initializes the module afresh in the child at its first use. The pool's
 * locks are taken around fork() (pthread_atfork), so a child never inherits
 * a lock held by another thread of the parent.
 *
 * Thread-safety: all functions may be called concurrently on one cs_token,
 * except cs_token_open/cs_token_open_remote/cs_token_close
 * (cs_token_remote_replace may run beside other calls).
 */
#ifndef CS_TOKEN_H
#define CS_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "cs_error.h"

typedef struct cs_token cs_token;

#define CS_TOKEN_POOL_MAX 64
/* Bytes one C_GenerateRandom call is asked for at most. Some HSMs cap a
 * call lower: a token that refuses a call with CKR_DATA_LEN_RANGE or
 * CKR_ARGUMENTS_BAD gets half as much asked of it from then on, down to
 * CS_TOKEN_RANDOM_MIN_CALL (see cs_token_random_max). */
#define CS_TOKEN_RANDOM_MAX_CALL 256
#define CS_TOKEN_RANDOM_MIN_CALL 16
/* Longest a caller waits for a module re-initialisation another thread is
 * running (below the daemon's default handshake deadline, 5 s). */
#define CS_TOKEN_REINIT_WAIT_MS 2000
/* Bytes of CKA_LABEL credsign reads and writes. PKCS#11 sets no limit;
 * vendor tools write labels longer than 64 bytes, and tokens that keep
 * fewer refuse the key template at generation (YubiHSM 2: 40). */
#define CS_KEY_LABEL_MAX 255
#define CS_KEY_ID_MAX 64

typedef struct {
	/* Path of a PKCS#11 module ("/usr/lib/softhsm/libsofthsm2.so") or the
	 * name of a module registered in p11-kit's configuration. */
	const char *module;
	/* RFC 7512 URI selecting exactly one initialized token; may carry
	 * pin-source=file:PATH. pin-value is refused. */
	const char *token_uri;
	/* PIN file used when the URI has no pin-source; NULL for none (a
	 * token that needs no login). A token with CKF_LOGIN_REQUIRED, no PIN
	 * source and no protected authentication path fails to open with
	 * CS_E_PIN_SOURCE (logged, naming pkcs11.pin_file). */
	const char *pin_file;
	/* Maximum number of concurrent sessions (1..CS_TOKEN_POOL_MAX). */
	unsigned pool_size;
	/* Open read/write sessions (needed to create token objects). */
	int read_write;
	/* CK_C_INITIALIZE_ARGS.pReserved for a module given by path (some
	 * modules take their configuration there); NULL for none. Given at
	 * every C_Initialize, re-initialisations included. Refused with a
	 * module given by name (p11-kit passes its x-init-reserved). */
	const char *init_args;
} cs_token_params;

/* Is `module` p11-kit's proxy module (p11-kit-proxy.so by path or name,
 * or a link to libp11-kit.so)? p11-kit refuses to load it as a module;
 * the configuration names the registered module instead. */
int cs_token_module_is_proxy(const char *module);

typedef struct {
	/* CK_TOKEN_INFO, blank padding removed */
	char label[33];
	char manufacturer[33];
	char model[17];
	char serial[17];
	unsigned hw_major, hw_minor, fw_major, fw_minor;
	unsigned long flags; /* CKF_* token flags */
	/* CK_INFO of the module */
	char module_manufacturer[33];
	char module_description[33];
	unsigned module_major, module_minor, cryptoki_major, cryptoki_minor;
	unsigned long slot_id;
} cs_token_info;

/* What a key signs for; carried with a key reference to the key process,
 * which signs only with keys configured for the named purpose. */
typedef enum {
	CS_KEY_PURPOSE_NONE = 0,        /* in-process tools: no check */
	CS_KEY_PURPOSE_CERTIFICATE = 1, /* compliance certificates (pkcs11.signing_key and its successors) */
	CS_KEY_PURPOSE_TLS = 2,         /* the TLS server key (a pkcs11: tls.key) */
	CS_KEY_PURPOSE_PROFILE = 3,     /* a signing profile's key; profile names it */
} cs_key_purpose_kind;
#define CS_KEY_PROFILE_NAME_MAX 32
typedef struct {
	cs_key_purpose_kind kind;
	char profile[CS_KEY_PROFILE_NAME_MAX + 1]; /* "" unless PROFILE */
} cs_key_purpose;

/* A key pair in the token, named by CKA_LABEL and/or CKA_ID. Plain data. */
typedef struct {
	char label[CS_KEY_LABEL_MAX + 1]; /* "" = any label */
	uint8_t id[CS_KEY_ID_MAX];
	size_t id_len; /* 0 = any id */
	/* What the caller signs with it for (zero = NONE). Checked only by a
	 * key process (a remote token); the in-process token ignores it. */
	cs_key_purpose purpose;
} cs_key_ref;

/* An ES256 signature in both encodings. */
typedef struct {
	uint8_t raw[64]; /* JOSE: r || s, 32 bytes each */
	uint8_t der[72]; /* X9.62 ECDSA-Sig-Value */
	size_t der_len;
} cs_es256_sig;

cs_err cs_token_open(const cs_token_params *params, cs_token **out)
	__attribute__((warn_unused_result));
/* Open a token served by a key process over channels (SOCK_SEQPACKET
 * fds, 1..CS_TOKEN_REMOTE_CHANNELS_MAX, taken over: closed by cs_token_close
 * or on failure). Sends HELLO on every channel and waits (up to
 * CS_IPC_HELLO_TIMEOUT_MS) for the answers:
 * CS_E_TOKEN_UNAVAILABLE when the key process closed them (it failed to
 * start: it logged why), CS_E_IPC for an answer that is not a HELLO of this
 * protocol version.
 *
 * Each call takes a free channel (waiting up to CS_IPC_WAIT_MS when all are
 * busy: then CS_E_TOKEN_BUSY), sends one request and waits up to
 * CS_IPC_REPLY_TIMEOUT_MS for its reply. A channel that meets EOF, an
 * error, a timeout or a malformed reply is closed and marked dead and the
 * call fails CS_E_TOKEN_UNAVAILABLE (logged once per channel); once every
 * channel is dead, calls fail at once with CS_E_TOKEN_UNAVAILABLE until
 * cs_token_remote_replace. Never a partial result: outputs are zeroed on
 * failure. Thread-safe like the in-process token. */
cs_err cs_token_open_remote(const int *fds, size_t nfds, cs_token **out)
	__attribute__((warn_unused_result));
#define CS_TOKEN_REMOTE_CHANNELS_MAX 64
/* Remote token timing: the wait for a free channel, for a reply, and for
 * the HELLO answers of a starting key process (it opens and checks the
 * token first). */
#define CS_IPC_WAIT_MS 2000
#define CS_IPC_REPLY_TIMEOUT_MS 15000
#define CS_IPC_HELLO_TIMEOUT_MS 30000
/* A restarted key process: new channels (taken over, as above) replace the
 * old ones (closed once no call uses them); HELLO is exchanged on each and
 * the keys bound so far (cs_token_bind_key) are bound again on them. On
 * failure the new channels are closed and the token stays dead (calls fail
 * CS_E_TOKEN_UNAVAILABLE). CS_E_INVALID_ARG on an in-process token. */
cs_err cs_token_remote_replace(cs_token *token, const int *fds, size_t nfds)
	__attribute__((warn_unused_result));
/* 1 for a token opened by cs_token_open_remote, else 0. */
int cs_token_is_remote(const cs_token *token);
void cs_token_close(cs_token *token);

/* Bind key (resolved: full label and id) to key->purpose at the key
 * process, before signing with it for that purpose. In-process: CS_OK,
 * no effect. Remote: the key process refuses (CS_E_KEY_PURPOSE) a key
 * bound or configured for another purpose, any TLS key but the
 * configured one, a purpose NONE. A remote token remembers the keys it
 * bound and binds them again after cs_token_remote_replace. */
cs_err cs_token_bind_key(cs_token *token, const cs_key_ref *key) __attribute__((warn_unused_result));

cs_err cs_token_get_info(cs_token *token, cs_token_info *info);
/* How many times the pool has recovered (reopened its sessions or
 * re-initialised the module) since cs_token_open. */
unsigned long cs_token_recoveries(cs_token *token);
/* How many module re-initialisations were attempted since cs_token_open. */
unsigned long cs_token_reinitializations(cs_token *token);
/* Fill buf[n] from C_GenerateRandom: ceil(n / cs_token_random_max()) calls
 * on one session, nothing else on the token. Callers that need several
 * random values draw them at once and slice the buffer.
 *
 * The token's CKF_RNG flag is not read per draw (it cost SoftHSM2 13 of
 * the 15 us of a draw, and a network HSM a round trip): it comes with the
 * token information the pool reads anyway, once per pool generation when
 * the token's slot is selected (cs_token_open, and every recovery:
 * reopening the sessions or re-initialising the module), when the pool
 * logs in, and in cs_token_get_info. Once a read finds no CKF_RNG, draws
 * fail with CS_E_TOKEN_NO_RNG, each reading the flag again, so a token that
 * reports its RNG again is used again at once. A token that stops
 * reporting its RNG while the pool works is therefore refused from the
 * next recovery or cs_token_get_info on (the daemon's /readyz calls it).
 * On failure buf is zeroed. */
cs_err cs_token_random(cs_token *token, uint8_t *buf, size_t n)
	__attribute__((warn_unused_result));
/* Bytes asked of one C_GenerateRandom call at most (CS_TOKEN_RANDOM_MAX_CALL
 * unless the token refused calls that large). */
size_t cs_token_random_max(cs_token *token);

/* Parse a pkcs11: URI naming a key (object= and/or id=) into a reference. */
cs_err cs_key_ref_from_uri(const char *uri, cs_key_ref *out);
/* Resolve a reference to exactly one EC P-256 private key that has a public
 * half; *found gets its full label and id. The public half is the
 * CKO_PUBLIC_KEY with the private key's CKA_ID (its CKA_LABEL only breaks a
 * tie: vendor tools may label the halves differently), else (a token that
 * keeps only the private object) the private key's own CKA_EC_POINT or
 * CKA_PUBLIC_KEY_INFO; with none of these, CS_E_KEY_NO_PUBLIC; several
 * public keys with the id that the label does not tell apart (several or
 * none labelled like the private key): CS_E_KEY_AMBIGUOUS. A key with
 * CKA_ALWAYS_AUTHENTICATE and no PIN source: CS_E_KEY_ALWAYS_AUTH.
 * found->purpose is a copy of query->purpose. */
cs_err cs_token_find_key(cs_token *token, const cs_key_ref *query, cs_key_ref *found);
/* Generate a P-256 key pair in the token: CKA_TOKEN, CKA_PRIVATE and
 * CKA_SENSITIVE true, CKA_EXTRACTABLE false. The label takes 1 to
 * CS_KEY_LABEL_MAX bytes (a longer one: CS_E_INVALID_ARG, logged with the
 * limit). The id is 16 bytes from the token's RNG; a token that refuses the
 * template with CKR_ATTRIBUTE_VALUE_INVALID or CKR_TEMPLATE_INCONSISTENT
 * (some HSMs keep only a few bytes of CKA_ID) is asked again with 8, 4 and 2
 * bytes (logged); when the 2-byte attempt is refused too, the id length is
 * not the cause: CS_E_KEY_TEMPLATE, logged as "token refused the key
 * template (C_GenerateKeyPair: CKR_...)". An id another object has is never
 * used. Fails with CS_E_KEY_EXISTS if the label is taken. */
cs_err cs_token_generate_p256(cs_token *token, const char *label, cs_key_ref *out);
/* The same with the caller's CKA_ID (1..CS_KEY_ID_MAX bytes; id NULL: as
 * above). CS_E_KEY_EXISTS when an object has that id; CS_E_KEY_TEMPLATE
 * (logged with the CKR, and for an id longer than 2 bytes with the advice
 * of a shorter one) when the token refuses the template. */
cs_err cs_token_generate_p256_id(cs_token *token, const char *label, const uint8_t *id,
				 size_t id_len, cs_key_ref *out);
/* Destroy a key pair in the token (C_DestroyObject; a key whose ceremony
 * decided so: credsign-admin checks the key's public half against the
 * store's record first). `key` names exactly one private key (as in
 * cs_token_find_key; name it by label and id, as a stored key URI does):
 * it is destroyed, then its public key (the CKO_PUBLIC_KEY with its CKA_ID;
 * the label breaks a tie). A pair whose private key is gone already (a
 * destruction that stopped half-way) has its remaining public key matching
 * `key` destroyed. CS_E_KEY_NOT_FOUND when neither exists, CS_E_KEY_AMBIGUOUS
 * when `key` names several (nothing destroyed), CS_E_TOKEN_READ_ONLY on a
 * pool opened read-only, CS_E_INVALID_ARG for an empty reference. Then every
 * session of the pool is replaced (as after a recovery), so no later
 * operation on this cs_token uses a cached copy of the key; an operation
 * already running on another thread finishes with it. Other processes'
 * sessions are not reached: their session copies live until they close. */
cs_err cs_token_destroy_key(cs_token *token, const cs_key_ref *key) __attribute__((warn_unused_result));

/* ---- mechanisms ------------------------------------------------------------
 * What credsign needs of the token's mechanisms, checked with
 * C_GetMechanismList and C_GetMechanismInfo: listed, with the flag of the
 * use, and key sizes that include 256 bits (a token reporting EC sizes in
 * bytes, 32, is accepted; 0..0, "not reported", too). */
enum {
	CS_TOKEN_NEEDS_SIGN = 1,     /* CKM_ECDSA with CKF_SIGN: credsignd, signing */
	CS_TOKEN_NEEDS_GENERATE = 2, /* CKM_EC_KEY_PAIR_GEN with CKF_GENERATE_KEY_PAIR */
};
#define CS_TOKEN_MECHANISMS 2

typedef struct {
	const char *name;    /* "CKM_ECDSA" */
	unsigned long type;  /* CKM_* */
	unsigned needs;      /* the CS_TOKEN_NEEDS_* it serves */
	int listed;          /* in C_GetMechanismList */
	unsigned long flags; /* CK_MECHANISM_INFO flags; 0 when not listed */
	unsigned long min_key_size, max_key_size;
	/* "" when usable; else why not, naming the mechanism, e.g.
	 * "token lacks CKM_ECDSA (sign)" */
	char problem[128];
} cs_token_mechanism;

/* The mechanisms credsign uses, as the token reports them, in the order
 * CKM_ECDSA, CKM_EC_KEY_PAIR_GEN. */
cs_err cs_token_mechanisms(cs_token *token, cs_token_mechanism out[CS_TOKEN_MECHANISMS]);
/* Check the mechanisms `needs` (CS_TOKEN_NEEDS_*) asks for: CS_OK, or
 * CS_E_MECHANISM with the first problem in why (not logged: the caller
 * reports it). */
cs_err cs_token_check_mechanisms(cs_token *token, unsigned needs, char *why, size_t why_size);
/* The key's public half (CKA_EC_POINT of its public key, or what the
 * private key carries; see cs_token_find_key) as an OpenSSL key. */
cs_err cs_token_public_key(cs_token *token, const cs_key_ref *key, EVP_PKEY **out);
/* ECDSA P-256 signature (CKM_ECDSA) of a SHA-256 digest computed by the
 * caller. On a remote token the key process signs only when key (label and
 * id as resolved) is bound to key->purpose: else CS_E_KEY_PURPOSE. Accepts tokens that return raw r||s or DER. A key with
 * CKA_ALWAYS_AUTHENTICATE gets a CKU_CONTEXT_SPECIFIC login with the PIN
 * (read from its file and wiped) after each C_SignInit. */
cs_err cs_token_sign_es256(cs_token *token, const cs_key_ref *key, const uint8_t digest[32],
			   cs_es256_sig *sig) __attribute__((warn_unused_result));

#endif
