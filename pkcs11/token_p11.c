/*
 * token_p11: the token interface (token.h) over a PKCS#11 module loaded
 * through p11-kit. Module, slot selection, login and the session pool live
 * here; the operations are in token_ops.c.
 */
#include "token_internal.h"
#include "token_meter.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <p11-kit/p11-kit.h>

#include "cs_log.h"
#include "cs_secret.h"

void tok_copy_padded(char *dst, size_t dst_size, const unsigned char *src, size_t src_len)
{
	size_t n = src_len;
	while (n > 0 && (src[n - 1] == ' ' || src[n - 1] == '\0'))
		n--;
	if (n >= dst_size)
		n = dst_size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* ---- URI and PIN source ------------------------------------------------ */

cs_err tok_parse_uri(const char *text, P11KitUri **out)
{
	*out = NULL;
	if (text == NULL || strncmp(text, "pkcs11:", 7) != 0)
		return CS_E_URI_INVALID;
	P11KitUri *uri = p11_kit_uri_new();
	if (uri == NULL)
		return CS_E_NOMEM;
	int rc = p11_kit_uri_parse(text, P11_KIT_URI_FOR_ANY, uri);
	if (rc != P11_KIT_URI_OK || p11_kit_uri_any_unrecognized(uri)) {
		p11_kit_uri_free(uri);
		return CS_E_URI_INVALID;
	}
	*out = uri;
	return CS_OK;
}

/* The PIN file: pin-source of the URI ("file:PATH" or an absolute path),
 * else the configured file. A PIN inside the URI is refused. */
static cs_err pin_path_from(P11KitUri *uri, const char *configured, char **out)
{
	*out = NULL;
	if (p11_kit_uri_get_pin_value(uri) != NULL) {
		cs_log_error("token URI carries pin-value; use pin-source=file:PATH");
		return CS_E_PIN_SOURCE;
	}
	const char *src = p11_kit_uri_get_pin_source(uri);
	const char *path = configured;
	if (src != NULL) {
		if (strncmp(src, "file:", 5) == 0)
			path = src + 5;
		else if (src[0] == '/')
			path = src;
		else {
			cs_log_error("unsupported pin-source '%s' (use file:PATH)", src);
			return CS_E_PIN_SOURCE;
		}
	}
	if (path == NULL || path[0] == '\0')
		return CS_OK; /* protected authentication path or no login needed */
	if ((*out = strdup(path)) == NULL)
		return CS_E_NOMEM;
	return CS_OK;
}

/* ---- module and slot ----------------------------------------------------- */

static int is_proxy_name(const char *path)
{
	const char *base = strrchr(path, '/');
	base = base != NULL ? base + 1 : path;
	return strncmp(base, "p11-kit-proxy", 13) == 0 || strncmp(base, "libp11-kit.so", 13) == 0;
}

int cs_token_module_is_proxy(const char *module)
{
	if (module == NULL)
		return 0;
	if (is_proxy_name(module)) /* also as a name: it is never a registered module */
		return 1;
	if (strchr(module, '/') == NULL)
		return 0;
	char *real = realpath(module, NULL); /* p11-kit-proxy.so is a link to libp11-kit.so */
	int proxy = real != NULL && is_proxy_name(real);
	free(real);
	return proxy;
}

CK_RV tok_module_initialize(cs_token *t)
{
	if (t->init_args == NULL)
		return p11_kit_module_initialize(t->fl);
	/* p11-kit's managed module hands these to the module unchanged */
	CK_C_INITIALIZE_ARGS args;
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	args.pReserved = t->init_args;
	return t->fl->C_Initialize(&args);
}

static void log_initialize_failure(const cs_token *t, const char *module, CK_RV rv)
{
	/* C_Initialize runs before the list is metered: the caller's message
	 * names it ("(C_Initialize: CKR_ARGUMENTS_BAD)", token_meter.h) */
	cs_token_meter_note_failure("C_Initialize", rv);
	const char *hint = "";
	if (rv == CKR_ARGUMENTS_BAD && t->init_args == NULL && t->registered == NULL)
		hint = "; the module may need initialisation arguments: set pkcs11.init_args "
		       "(CK_C_INITIALIZE_ARGS.pReserved) as its documentation says";
	else if (rv == CKR_ARGUMENTS_BAD && t->init_args != NULL)
		hint = "; the module refused pkcs11.init_args";
	else if (rv == CKR_ARGUMENTS_BAD)
		hint = "; the module may need initialisation arguments: x-init-reserved in its "
		       "p11-kit module file";
	cs_log_error("C_Initialize of %s: %s (%s)%s", module, cs_ckr_name(rv), cs_ckr_message(rv), hint);
}

static cs_err load_module(cs_token *t, const char *module)
{
	if (module == NULL || module[0] == '\0')
		return CS_E_INVALID_ARG;
	if (cs_token_module_is_proxy(module)) {
		cs_log_error("%s is p11-kit's proxy module, which p11-kit does not load as a "
			     "module: set pkcs11.module to the registered module's name "
			     "(p11-kit list-modules shows them)",
			     module);
		return CS_E_MODULE_LOAD;
	}
	if (strchr(module, '/') != NULL) {
		t->fl = p11_kit_module_load(module, 0);
		if (t->fl == NULL) {
			cs_log_error("cannot load PKCS#11 module %s: %s", module, p11_kit_message());
			return CS_E_MODULE_LOAD;
		}
		CK_RV rv = tok_module_initialize(t);
		if (rv != CKR_OK) {
			log_initialize_failure(t, module, rv);
			p11_kit_module_release(t->fl);
			t->fl = NULL;
			return CS_E_MODULE_INIT;
		}
		t->fl_loaded = 1;
		t->call = cs_token_meter_wrap(t->fl);
		return CS_OK;
	}
	if (t->init_args != NULL) {
		cs_log_error("pkcs11.init_args is for a module given by path; the p11-kit module "
			     "'%s' takes x-init-reserved in its p11-kit configuration",
			     module);
		return CS_E_INVALID_ARG;
	}
	/* a module registered in p11-kit's configuration, by name: load the
	 * registered list but initialize only the one we use */
	t->registered = p11_kit_modules_load(NULL, 0);
	if (t->registered == NULL) {
		cs_log_error("cannot load p11-kit registered modules: %s", p11_kit_message());
		return CS_E_MODULE_LOAD;
	}
	t->fl = p11_kit_module_for_name(t->registered, module);
	if (t->fl == NULL) {
		cs_log_error("no p11-kit module named '%s'", module);
		return CS_E_MODULE_LOAD;
	}
	CK_RV rv = tok_module_initialize(t);
	if (rv != CKR_OK) {
		log_initialize_failure(t, module, rv);
		t->fl = NULL;
		return CS_E_MODULE_INIT;
	}
	t->fl_loaded = 1;
	t->call = cs_token_meter_wrap(t->fl);
	return CS_OK;
}

/* See token_internal.h. The slot goes to *slot, never to t->slot: the
 * caller publishes it under the pool lock. */
cs_err tok_select_slot(cs_token *t, CK_SLOT_ID *slot, CK_FLAGS *flags)
{
	CK_INFO minfo;
	CK_ULONG count = 0;
	CK_SLOT_ID *slots = NULL;
	cs_err r = CS_E_TOKEN_NOT_FOUND;
	unsigned matches = 0;
	CK_SLOT_ID found = 0;
	CK_FLAGS found_flags = 0;

	CK_RV rv = t->call->C_GetInfo(&minfo);
	if (rv != CKR_OK)
		return tok_ckr_fail(t, "C_GetInfo", rv);
	if (!p11_kit_uri_match_module_info(t->uri, &minfo))
		return CS_E_TOKEN_NOT_FOUND;
	rv = t->call->C_GetSlotList(CK_TRUE, NULL, &count);
	if (rv != CKR_OK)
		return tok_ckr_fail(t, "C_GetSlotList", rv);
	if (count == 0)
		return CS_E_TOKEN_NOT_FOUND;
	if ((slots = calloc(count, sizeof(*slots))) == NULL)
		return CS_E_NOMEM;
	rv = t->call->C_GetSlotList(CK_TRUE, slots, &count);
	if (rv != CKR_OK) {
		r = tok_ckr_fail(t, "C_GetSlotList", rv);
		goto out;
	}
	CK_SLOT_ID want_slot = p11_kit_uri_get_slot_id(t->uri);
	for (CK_ULONG i = 0; i < count; i++) {
		CK_SLOT_INFO sinfo;
		CK_TOKEN_INFO tinfo;
		if (want_slot != (CK_SLOT_ID)-1 && slots[i] != want_slot)
			continue;
		if (t->call->C_GetSlotInfo(slots[i], &sinfo) != CKR_OK ||
		    t->call->C_GetTokenInfo(slots[i], &tinfo) != CKR_OK)
			continue;
		if (!(tinfo.flags & CKF_TOKEN_INITIALIZED))
			continue;
		if (!p11_kit_uri_match_slot_info(t->uri, &sinfo) ||
		    !p11_kit_uri_match_token_info(t->uri, &tinfo))
			continue;
		matches++;
		found = slots[i];
		found_flags = tinfo.flags;
	}
	if (matches == 1) {
		*slot = found;
		*flags = found_flags;
		r = CS_OK;
	} else if (matches > 1) {
		r = CS_E_TOKEN_AMBIGUOUS;
	}
out:
	free(slots);
	return r;
}

void tok_note_flags_locked(cs_token *t, CK_FLAGS flags)
{
	int rng = (flags & CKF_RNG) != 0, before = t->rng;
	t->rng = rng;
	if (rng == before || before < 0)
		return; /* unchanged, or the first read */
	if (rng)
		cs_log_warn("the token reports its random number generator again (CKF_RNG); "
			    "random draws resume");
	else
		cs_log_error("the token does not report a random number generator (CKF_RNG); "
			     "random draws are refused");
}

cs_err tok_ckr_fail(cs_token *t, const char *fn, CK_RV rv)
{
	/* the metered list (token_meter.h) logs every failing call itself */
	if (t->call == t->fl)
		cs_log_debug("%s: %s (%s)", fn, cs_ckr_name(rv), cs_ckr_message(rv));
	return cs_err_from_ckr(rv);
}

/* A failed call on the way to a session: CS_E_TOKEN_UNAVAILABLE when
 * recovery may cure it, else the mapped error. */
static cs_err session_fail(cs_token *t, const char *fn, CK_RV rv)
{
	cs_err r = tok_ckr_fail(t, fn, rv);
	return cs_ckr_needs_recovery(rv) ? CS_E_TOKEN_UNAVAILABLE : r;
}

/* ---- login ----------------------------------------------------------------- */

cs_err tok_read_pin(cs_token *t, char *pin, size_t size, size_t *len)
{
	*len = 0;
	if (t->pin_path == NULL)
		return CS_E_PIN_SOURCE;
	return cs_secret_read_file(t->pin_path, pin, size, len);
}

/* Log the token in as user; `flags` are its CK_TOKEN_INFO flags, just read.
 * Called with the pool lock held, so concurrent first uses cannot race. The
 * PIN is read at each login and wiped at once. The same rules hold after a
 * module re-initialisation: bad_pin is kept. A PIN configured for a token
 * that needs no login is not used (said once). */
static cs_err token_login(cs_token *t, CK_SESSION_HANDLE h, CK_FLAGS flags)
{
	char *pin = NULL; /* CS_PIN_MAX + 1 bytes of the secure heap (confine.h) */
	size_t pin_len = 0;
	cs_err r;
	CK_RV rv;

	if (t->bad_pin)
		return CS_E_PIN_INCORRECT; /* never retry a PIN the token rejected */
	t->login_required = (flags & CKF_LOGIN_REQUIRED) != 0;
	if (!(flags & CKF_LOGIN_REQUIRED)) {
		if (t->pin_path != NULL && !t->login_skip_logged) {
			t->login_skip_logged = 1;
			cs_log_warn("the token does not require a login (no CKF_LOGIN_REQUIRED): not logging "
				    "in, the PIN in %s is not used; if keys are then not found, the token "
				    "keeps them private all the same",
				    t->pin_path);
		}
		return CS_OK;
	}
	if (flags & CKF_USER_PIN_LOCKED)
		return CS_E_PIN_LOCKED;
	if (flags & CKF_USER_PIN_FINAL_TRY)
		return CS_E_PIN_FINAL_TRY;
	if (flags & CKF_USER_PIN_TO_BE_CHANGED)
		return CS_E_PIN_EXPIRED;
	if (!(flags & CKF_USER_PIN_INITIALIZED))
		return CS_E_PIN_EXPIRED;

	if (flags & CKF_PROTECTED_AUTHENTICATION_PATH && t->pin_path == NULL) {
		rv = t->call->C_Login(h, CKU_USER, NULL, 0);
	} else {
		if (t->pin_path == NULL) {
			cs_log_error("the token requires a login (CKF_LOGIN_REQUIRED) and no PIN source "
				     "is configured: set pkcs11.pin_file, or pin-source=file:PATH in "
				     "pkcs11.token_uri");
			return CS_E_PIN_SOURCE;
		}
		if ((pin = OPENSSL_secure_malloc(CS_PIN_MAX + 1)) == NULL)
			return CS_E_NOMEM;
		if ((r = tok_read_pin(t, pin, CS_PIN_MAX + 1, &pin_len)) == CS_OK)
			rv = t->call->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)pin_len);
		OPENSSL_secure_clear_free(pin, CS_PIN_MAX + 1);
		if (r != CS_OK)
			return r;
	}
	if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN)
		return CS_OK;
	if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_INVALID || rv == CKR_PIN_LEN_RANGE)
		t->bad_pin = 1;
	/* a token that failed (rather than judged the PIN) is recovered and
	 * asked again; flags above still stop a locked or final-try PIN */
	return session_fail(t, "C_Login", rv);
}

/* ---- session pool -------------------------------------------------------- */

static void session_close(cs_token *t, tok_session *s)
{
	if (s->open)
		(void)t->call->C_CloseSession(s->handle);
	memset(s, 0, sizeof(*s));
}

/* Open a session on a free pool slot and make sure it is logged in (the
 * token's flags are read for the login, and noted). Called with the pool
 * lock held. */
static cs_err session_open(cs_token *t, tok_session *s)
{
	CK_FLAGS flags = CKF_SERIAL_SESSION | (t->read_write ? CKF_RW_SESSION : 0);
	CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
	CK_SESSION_INFO sinfo;
	CK_TOKEN_INFO tinfo;
	CK_RV rv = t->call->C_OpenSession(t->slot, flags, NULL, NULL, &h);
	if (rv == CKR_SESSION_COUNT) {
		(void)tok_ckr_fail(t, "C_OpenSession", rv);
		return CS_E_TOKEN_BUSY;
	}
	if (rv != CKR_OK)
		return session_fail(t, "C_OpenSession", rv);
	memset(s, 0, sizeof(*s));
	s->handle = h;
	s->slot = t->slot;
	s->open = 1;
	s->generation = t->generation;
	/* Login state is shared by all sessions of the application; a new
	 * session in a public state means nobody is logged in (first use, or
	 * the token dropped our sessions). */
	rv = t->call->C_GetSessionInfo(h, &sinfo);
	if (rv != CKR_OK) {
		session_close(t, s);
		return session_fail(t, "C_GetSessionInfo", rv);
	}
	if (sinfo.state == CKS_RO_PUBLIC_SESSION || sinfo.state == CKS_RW_PUBLIC_SESSION) {
		rv = t->call->C_GetTokenInfo(s->slot, &tinfo);
		if (rv != CKR_OK) {
			session_close(t, s);
			return session_fail(t, "C_GetTokenInfo", rv);
		}
		tok_note_flags_locked(t, tinfo.flags);
		cs_err r = token_login(t, h, tinfo.flags);
		if (r != CS_OK) {
			session_close(t, s);
			return r;
		}
	}
	return CS_OK;
}

static unsigned sessions_in_use(const cs_token *t)
{
	unsigned n = 0;
	for (unsigned i = 0; i < t->pool_size; i++)
		n += t->sessions[i].in_use != 0;
	return n;
}

/* ---- fork ------------------------------------------------------------------ */

/* The process's open tokens. Around fork() every token's locks are taken
 * (objects_lock, then lock: the order the token layer nests them in), so
 * the child never inherits a lock another parent thread held; the child
 * then forgets the parent's sessions at its first use (after_fork). */
static pthread_mutex_t open_tokens_lock = PTHREAD_MUTEX_INITIALIZER;
static cs_token *open_tokens;
static pthread_once_t fork_handlers_once = PTHREAD_ONCE_INIT;

static void fork_prepare(void)
{
	pthread_mutex_lock(&open_tokens_lock);
	for (cs_token *t = open_tokens; t != NULL; t = t->next_open) {
		pthread_mutex_lock(&t->objects_lock);
		pthread_mutex_lock(&t->lock);
	}
}

static void fork_parent(void)
{
	for (cs_token *t = open_tokens; t != NULL; t = t->next_open) {
		pthread_mutex_unlock(&t->lock);
		pthread_mutex_unlock(&t->objects_lock);
	}
	pthread_mutex_unlock(&open_tokens_lock);
}

static void fork_child(void)
{
	for (cs_token *t = open_tokens; t != NULL; t = t->next_open) {
		/* waiters of the parent do not exist here */
		pthread_cond_init(&t->cond, NULL);
		pthread_mutex_unlock(&t->lock);
		pthread_mutex_unlock(&t->objects_lock);
	}
	pthread_mutex_unlock(&open_tokens_lock);
}

static void install_fork_handlers(void)
{
	if (pthread_atfork(fork_prepare, fork_parent, fork_child) != 0)
		cs_log_warn("pthread_atfork failed: a child forked while a token call runs may block");
}

static void open_tokens_add(cs_token *t)
{
	pthread_once(&fork_handlers_once, install_fork_handlers);
	pthread_mutex_lock(&open_tokens_lock);
	t->next_open = open_tokens;
	open_tokens = t;
	pthread_mutex_unlock(&open_tokens_lock);
}

static void open_tokens_remove(cs_token *t)
{
	pthread_mutex_lock(&open_tokens_lock);
	for (cs_token **p = &open_tokens; *p != NULL; p = &(*p)->next_open) {
		if (*p == t) {
			*p = t->next_open;
			break;
		}
	}
	pthread_mutex_unlock(&open_tokens_lock);
}

/* A forked child must not use the parent's sessions: forget them (they
 * belong to the parent) and initialize the module afresh. Lock held. */
static void after_fork(cs_token *t)
{
	memset(t->sessions, 0, t->pool_size * sizeof(*t->sessions));
	t->pid = getpid();
	t->generation++;
	t->reinit_busy = 0; /* the parent's re-initialising thread is not here */
	ERR_set_mark();
	CK_RV rv = tok_module_initialize(t);
	ERR_pop_to_mark();
	t->module_ready = rv == CKR_OK || rv == CKR_CRYPTOKI_ALREADY_INITIALIZED;
	if (!t->module_ready)
		cs_log_warn("C_Initialize after fork: %s", cs_ckr_name(rv));
}

static void realtime_after(struct timespec *ts, unsigned ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Wait, lock held, until no re-initialisation runs: 0, or ETIMEDOUT when
 * one still runs after CS_TOKEN_REINIT_WAIT_MS (*deadline is set at the
 * first wait of a caller, `armed` tells). A burst of callers meeting a
 * re-initialisation (a token back after idle expiry) is served by the
 * fresh module rather than failed. */
static int wait_reinit_locked(cs_token *t, struct timespec *deadline, int *armed)
{
	if (!*armed) {
		realtime_after(deadline, CS_TOKEN_REINIT_WAIT_MS);
		*armed = 1;
	}
	while (t->reinit_busy)
		if (pthread_cond_timedwait(&t->cond, &t->lock, deadline) == ETIMEDOUT)
			return t->reinit_busy ? ETIMEDOUT : 0;
	return 0;
}

/* tok_session_acquire with the caller's wait for a re-initialisation
 * (wait_reinit_locked): one operation waits CS_TOKEN_REINIT_WAIT_MS in all,
 * not once here and again in recovery. */
static cs_err session_acquire(cs_token *t, tok_session **out, unsigned *generation,
			      struct timespec *reinit_deadline, int *reinit_armed)
{
	cs_err r = CS_OK;
	struct timespec deadline;

	*out = NULL;
	pthread_mutex_lock(&t->lock);
	realtime_after(&deadline, t->session_wait_ms);
	if (t->pid != getpid())
		after_fork(t);
	for (;;) {
		*generation = t->generation;
		/* while the module is re-initialised no call may reach it: wait
		 * for the fresh module (bounded); one that could not be
		 * initialised fails at once (recovery retries it, backing off) */
		if (t->reinit_busy) {
			if (wait_reinit_locked(t, reinit_deadline, reinit_armed) != 0) {
				r = CS_E_TOKEN_UNAVAILABLE;
				break;
			}
			continue;
		}
		if (!t->module_ready) {
			r = CS_E_TOKEN_UNAVAILABLE;
			break;
		}
		tok_session *idle_open = NULL, *closed = NULL;
		unsigned open_count = 0;
		for (unsigned i = 0; i < t->pool_size; i++) {
			tok_session *s = &t->sessions[i];
			if (s->open)
				open_count++;
			if (s->in_use)
				continue;
			if (s->open && s->generation != t->generation)
				session_close(t, s); /* left from before a recovery */
			if (s->open && idle_open == NULL)
				idle_open = s;
			else if (!s->open && closed == NULL)
				closed = s;
		}
		if (idle_open != NULL) {
			idle_open->in_use = 1;
			*out = idle_open;
			break;
		}
		if (closed != NULL && open_count < t->session_cap) {
			r = session_open(t, closed);
			if (r == CS_OK) {
				closed->in_use = 1;
				*out = closed;
				break;
			}
			if (r != CS_E_TOKEN_BUSY || open_count == 0)
				break;
			r = CS_OK;
			t->session_cap = open_count; /* the token allows fewer sessions */
			cs_log_warn("token refused session %u; using %u sessions", open_count + 1, open_count);
		}
		/* every session is busy: wait for one */
		int w = pthread_cond_timedwait(&t->cond, &t->lock, &deadline);
		if (w == ETIMEDOUT) {
			r = CS_E_TOKEN_BUSY;
			break;
		}
	}
	if (*out != NULL) {
		(*out)->rng = t->rng;
		(*out)->random_max = t->random_max;
	}
	pthread_mutex_unlock(&t->lock);
	return r;
}

cs_err tok_session_acquire(cs_token *t, tok_session **out, unsigned *generation)
{
	struct timespec reinit_deadline;
	int reinit_armed = 0;
	return session_acquire(t, out, generation, &reinit_deadline, &reinit_armed);
}

void tok_session_release(cs_token *t, tok_session *s, int discard)
{
	pthread_mutex_lock(&t->lock);
	s->in_use = 0;
	if (discard || s->generation != t->generation)
		session_close(t, s);
	else
		t->backoff_ms = TOK_BACKOFF_MIN_MS; /* the token works */
	/* a re-initialisation waits for the last session in use */
	if (t->reinit_busy)
		pthread_cond_broadcast(&t->cond);
	else
		pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

static void monotonic_after(struct timespec *ts, unsigned ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static int monotonic_reached(const struct timespec *ts)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > ts->tv_sec || (now.tv_sec == ts->tv_sec && now.tv_nsec >= ts->tv_nsec);
}

/* Cheap recovery: new generation, idle sessions closed (busy ones close when
 * released), the token's slot selected again. Lock held, module ready. */
static cs_err pool_reopen(cs_token *t)
{
	CK_SLOT_ID slot = 0;
	CK_FLAGS flags = 0;
	t->generation++;
	t->recoveries++;
	t->session_cap = t->pool_size;
	for (unsigned i = 0; i < t->pool_size; i++)
		if (!t->sessions[i].in_use)
			session_close(t, &t->sessions[i]);
	cs_err r = tok_select_slot(t, &slot, &flags);
	if (r != CS_OK)
		return r;
	t->slot = slot;
	tok_note_flags_locked(t, flags);
	cs_log_warn("token sessions lost; reopening them (recovery %lu)", t->recoveries);
	return CS_OK;
}

/* C_Finalize + C_Initialize, the slot selected again and one session
 * opened and logged in. Called with the lock held and reinit_busy set;
 * the lock is released around the module calls (nobody else calls the
 * module meanwhile: acquire refuses while reinit_busy, and no session is
 * in use once the drain is done). */
static cs_err pool_reinit(cs_token *t)
{
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += TOK_DRAIN_SECONDS;
	pthread_cond_broadcast(&t->cond); /* acquire-waiters give up */
	while (sessions_in_use(t) > 0) {
		if (pthread_cond_timedwait(&t->cond, &t->lock, &deadline) == ETIMEDOUT) {
			cs_log_warn("token module re-initialisation postponed: %u operation(s) still "
				    "running after %d s",
				    sessions_in_use(t), TOK_DRAIN_SECONDS);
			return CS_E_TOKEN_UNAVAILABLE;
		}
	}
	int was_ready = t->module_ready;
	/* the handles die with the module instance: forget them, never close */
	memset(t->sessions, 0, t->pool_size * sizeof(*t->sessions));
	t->generation++;
	t->recoveries++;
	t->reinits++;
	t->session_cap = t->pool_size;
	t->module_ready = 0;
	pthread_mutex_unlock(&t->lock);

	/* the module may leave errors of its own start-up (e.g. optional
	 * engines it probes) on this thread's OpenSSL error queue, where they
	 * would hide the caller's own error */
	ERR_set_mark();
	if (was_ready)
		(void)p11_kit_module_finalize(t->fl);
	CK_RV rv = tok_module_initialize(t); /* with pkcs11.init_args, as at start */
	ERR_pop_to_mark();
	int ready = rv == CKR_OK || rv == CKR_CRYPTOKI_ALREADY_INITIALIZED;
	CK_SLOT_ID slot = 0;
	CK_FLAGS flags = 0;
	cs_err r = ready ? tok_select_slot(t, &slot, &flags) : session_fail(t, "C_Initialize", rv);

	pthread_mutex_lock(&t->lock);
	t->module_ready = ready;
	if (r == CS_OK) {
		t->slot = slot;
		tok_note_flags_locked(t, flags);
		r = session_open(t, &t->sessions[0]); /* logs in, under the usual rules */
	}
	return r;
}

/* Recover after a failure seen in failed_generation; *step counts what this
 * caller has done so far (0 nothing, 1 sessions reopened, 2 re-initialised)
 * and is advanced. A re-initialisation another thread runs is waited for,
 * within the caller's wait (see session_acquire). CS_OK means "retry the
 * operation"; otherwise the error for the caller (CS_E_TOKEN_UNAVAILABLE,
 * or e.g. a PIN error met when logging in after re-initialisation). Only
 * the first thread to see a failed generation recovers; the others retry. */
static cs_err pool_recover(cs_token *t, unsigned failed_generation, int *step, struct timespec *reinit_deadline,
			   int *reinit_armed)
{
	cs_err r = CS_OK;
	pthread_mutex_lock(&t->lock);
	/* someone is at it: wait for the fresh module, then retry on it */
	if (t->reinit_busy && wait_reinit_locked(t, reinit_deadline, reinit_armed) != 0) {
		r = CS_E_TOKEN_UNAVAILABLE;
		goto out;
	}
	if (failed_generation != t->generation) {
		(*step)++; /* recovered since the failure: retry */
		goto out;
	}
	if (*step == 0 && t->module_ready && pool_reopen(t) == CS_OK) {
		*step = 1;
		goto out;
	}
	/* reopening did not cure it (or the module is not initialized): the
	 * module is re-initialised, at most once per backoff interval */
	if (!monotonic_reached(&t->reinit_due)) {
		r = CS_E_TOKEN_UNAVAILABLE;
		goto out;
	}
	t->reinit_busy = 1;
	r = pool_reinit(t);
	t->reinit_busy = 0;
	if (r == CS_OK) {
		t->backoff_ms = TOK_BACKOFF_MIN_MS;
		t->reinit_failures = 0;
		monotonic_after(&t->reinit_due, t->backoff_ms);
		cs_log_warn("token module re-initialised; token available again (recovery %lu)",
			    t->recoveries);
	} else {
		monotonic_after(&t->reinit_due, t->backoff_ms);
		/* logged at failures 1, 2, 4, 8...: a long outage stays readable */
		unsigned long n = ++t->reinit_failures;
		if ((n & (n - 1)) == 0)
			cs_log_error("token unavailable: module re-initialisation failed (%s), "
				     "attempt %lu; retrying every %u ms at most",
				     cs_strerror(r), n, TOK_BACKOFF_MAX_MS);
		t->backoff_ms = t->backoff_ms * 2 > TOK_BACKOFF_MAX_MS ? TOK_BACKOFF_MAX_MS : t->backoff_ms * 2;
	}
	pthread_cond_broadcast(&t->cond);
	*step = 2;
	if (r == CS_E_TOKEN_NOT_FOUND || r == CS_E_TOKEN_BUSY)
		r = CS_E_TOKEN_UNAVAILABLE; /* not back yet */
out:
	pthread_mutex_unlock(&t->lock);
	return r;
}

/* An operation failed with CKR_USER_NOT_LOGGED_IN: has the token dropped
 * the pool's login (the session is public on a token that needs a login,
 * or the session itself is gone)? Otherwise the token refuses the
 * operation to a logged-in session, or wants a login it does not announce:
 * not cured by recovery, said once. */
static int login_lost(cs_token *t, tok_session *s)
{
	CK_SESSION_INFO info;
	CK_RV rv = t->call->C_GetSessionInfo(s->handle, &info);
	if (rv != CKR_OK)
		return cs_ckr_needs_recovery(rv);
	int public_state = info.state == CKS_RO_PUBLIC_SESSION || info.state == CKS_RW_PUBLIC_SESSION;
	pthread_mutex_lock(&t->lock);
	int lost = public_state && t->login_required;
	int say = !lost && !t->not_logged_in_logged;
	if (say)
		t->not_logged_in_logged = 1;
	pthread_mutex_unlock(&t->lock);
	if (say && public_state)
		cs_log_error("the token answered CKR_USER_NOT_LOGGED_IN, though it does not require a "
			     "login (no CKF_LOGIN_REQUIRED), so credsign did not log in: the key needs "
			     "a login the token does not announce");
	else if (say)
		cs_log_error("the token answered CKR_USER_NOT_LOGGED_IN on a logged-in session: the key "
			     "needs another login than the user's (e.g. one before each use, "
			     "CKA_ALWAYS_AUTHENTICATE); not treated as a lost session");
	return lost;
}

cs_err tok_run(cs_token *t, tok_op op, void *arg)
{
	int step = 0;
	struct timespec reinit_deadline; /* one wait for a re-initialisation per operation */
	int reinit_armed = 0;
	for (;;) {
		tok_session *s = NULL;
		unsigned generation = 0;
		cs_err r = session_acquire(t, &s, &generation, &reinit_deadline, &reinit_armed);
		if (r == CS_OK) {
			cs_err op_err = CS_OK;
			CK_RV rv = op(t, s, arg, &op_err);
			generation = s->generation;
			int recover = cs_ckr_needs_recovery(rv) || (rv == CKR_USER_NOT_LOGGED_IN && login_lost(t, s));
			/* a session whose call failed may hold an unfinished
			 * operation: replace it rather than hand it to the next caller */
			tok_session_release(t, s, rv != CKR_OK);
			if (rv == CKR_OK)
				return op_err;
			if (!recover)
				return cs_err_from_ckr(rv);
		} else if (r != CS_E_TOKEN_UNAVAILABLE) {
			return r;
		}
		if (step >= 2)
			return CS_E_TOKEN_UNAVAILABLE;
		if ((r = pool_recover(t, generation, &step, &reinit_deadline, &reinit_armed)) != CS_OK)
			return r;
	}
}

unsigned long cs_token_recoveries(cs_token *t)
{
	if (t->remote != NULL)
		return tok_remote_recoveries(t);
	pthread_mutex_lock(&t->lock);
	unsigned long n = t->recoveries;
	pthread_mutex_unlock(&t->lock);
	return n;
}

unsigned long cs_token_reinitializations(cs_token *t)
{
	if (t->remote != NULL)
		return tok_remote_reinitializations(t);
	pthread_mutex_lock(&t->lock);
	unsigned long n = t->reinits;
	pthread_mutex_unlock(&t->lock);
	return n;
}

/* ---- open / close -------------------------------------------------------- */

cs_err cs_token_open(const cs_token_params *params, cs_token **out)
{
	cs_err r;
	*out = NULL;
	if (params == NULL || params->pool_size == 0 || params->pool_size > CS_TOKEN_POOL_MAX)
		return CS_E_INVALID_ARG;
	cs_token *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return CS_E_NOMEM;
	pthread_mutex_init(&t->lock, NULL);
	pthread_mutex_init(&t->objects_lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	t->pool_size = params->pool_size;
	t->session_cap = params->pool_size;
	t->session_wait_ms = TOK_SESSION_WAIT_MS;
	t->read_write = params->read_write;
	t->pid = getpid();
	t->backoff_ms = TOK_BACKOFF_MIN_MS; /* reinit_due zero: the first attempt may run at once */
	t->random_max = CS_TOKEN_RANDOM_MAX_CALL;
	t->rng = -1; /* not read yet */
	if ((t->sessions = calloc(t->pool_size, sizeof(*t->sessions))) == NULL) {
		r = CS_E_NOMEM;
		goto fail;
	}
	if (params->init_args != NULL && (t->init_args = strdup(params->init_args)) == NULL) {
		r = CS_E_NOMEM;
		goto fail;
	}
	if ((r = tok_parse_uri(params->token_uri, &t->uri)) != CS_OK)
		goto fail;
	if ((r = pin_path_from(t->uri, params->pin_file, &t->pin_path)) != CS_OK)
		goto fail;
	if (t->pin_path != NULL) {
		const char *why = NULL;
		if ((r = cs_secret_check_file(t->pin_path, &why)) != CS_OK) {
			cs_log_error("PIN file %s: %s", t->pin_path, why);
			goto fail;
		}
	}
	if ((r = load_module(t, params->module)) != CS_OK)
		goto fail;
	t->module_ready = 1;
	CK_FLAGS flags = 0;
	if ((r = tok_select_slot(t, &t->slot, &flags)) != CS_OK)
		goto fail;
	tok_note_flags_locked(t, flags); /* no other thread yet */
	/* log in now so a wrong PIN or a locked token fails start-up */
	tok_session *s = NULL;
	unsigned generation = 0;
	if ((r = tok_session_acquire(t, &s, &generation)) != CS_OK)
		goto fail;
	tok_session_release(t, s, 0);
	open_tokens_add(t);
	*out = t;
	return CS_OK;
fail:
	cs_token_close(t);
	return r;
}

void cs_token_close(cs_token *t)
{
	if (t == NULL)
		return;
	if (t->remote != NULL) {
		tok_remote_close(t);
		return;
	}
	open_tokens_remove(t);
	if (t->fl != NULL && t->pid == getpid() && t->module_ready) {
		for (unsigned i = 0; t->sessions != NULL && i < t->pool_size; i++)
			session_close(t, &t->sessions[i]);
	}
	if (t->fl_loaded && t->module_ready)
		(void)p11_kit_module_finalize(t->fl);
	if (t->registered != NULL)
		p11_kit_modules_release(t->registered);
	else if (t->fl_loaded)
		p11_kit_module_release(t->fl);
	if (t->uri != NULL)
		p11_kit_uri_free(t->uri);
	free(t->pin_path);
	free(t->init_args);
	free(t->sessions);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	pthread_mutex_destroy(&t->objects_lock);
	free(t);
}
