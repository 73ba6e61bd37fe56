/*
 * fault_pkcs11: a PKCS#11 module for tests that forwards every call to a real
 * module ($CREDSIGN_FAULT_REAL_MODULE) and injects faults described in a
 * control file ($CREDSIGN_FAULT_CONTROL), re-read whenever it changes:
 *
 *   C_Sign 0x32 [COUNT]      C_Sign returns CK_RV 0x32 (COUNT times, or always);
 *                             any function listed below can be named,
 *                             C_Initialize included (after "init-args")
 *   corrupt-signature [COUNT] flip one bit of what C_Sign returns
 *   no-rng                    C_GetTokenInfo reports no CKF_RNG
 *   token-serial S            C_GetTokenInfo reports serial number S (at most
 *                             16 characters): another token behind the same
 *                             label, as after an HSM's fail-over
 *   sign-delay MS             C_Sign takes MS milliseconds longer (a slow token)
 *   delay-ms MS               every call but C_Initialize and C_Finalize takes MS
 *                             milliseconds longer (a network HSM); the wait is
 *                             outside the module's lock, so calls overlap
 *   random-cap N              C_GenerateRandom of more than N bytes fails with
 *                             CKR_DATA_LEN_RANGE (an HSM with a per-call cap)
 *   session-cap N             C_OpenSession fails with CKR_SESSION_COUNT while
 *                             N sessions opened through this module are open
 *
 * Modes imitating tokens that differ from SoftHSM2 (docs/hsm.md):
 *
 *   init-args STRING          C_Initialize fails with CKR_ARGUMENTS_BAD unless
 *                             CK_C_INITIALIZE_ARGS.pReserved is the string
 *                             STRING (a module configured through pReserved)
 *   id-max N                  C_GenerateKeyPair with a CKA_ID longer than N
 *                             bytes fails with CKR_ATTRIBUTE_VALUE_INVALID (an
 *                             HSM with 16-bit object ids: id-max 2)
 *   no-mechanism NAME         the mechanism (CKM_ECDSA, CKM_EC_KEY_PAIR_GEN or
 *                             a number) is missing from C_GetMechanismList,
 *                             C_GetMechanismInfo answers CKR_MECHANISM_INVALID
 *                             and so do C_SignInit and C_GenerateKeyPair given
 *                             it; one line per mechanism
 *   der-signature             C_Sign returns a DER ECDSA-Sig-Value instead of
 *                             r || s
 *   C_CopyObject 0x54         (a rule as above) a token without C_CopyObject
 *   no-login PINFILE          a token that needs no login: C_GetTokenInfo
 *                             reports no CKF_LOGIN_REQUIRED, sessions report a
 *                             public state, C_Login answers
 *                             CKR_USER_ALREADY_LOGGED_IN without reaching
 *                             SoftHSM2, which this module logs in itself (with
 *                             the PIN in PINFILE) when it opens a session
 *   session-cap 1             (above) a single session per token
 *   idle-timeout MS           after MS milliseconds without a call, the module
 *                             loses its sessions (a USB HSM whose secure
 *                             channel expires): every call answers
 *                             CKR_SESSION_HANDLE_INVALID (given a session) or
 *                             CKR_DEVICE_REMOVED until C_Finalize and
 *                             C_Initialize
 *   ec-params printable|explicit
 *                             CKA_EC_PARAMS of a P-256 key reads as the curve's
 *                             name in a PrintableString ("prime256v1",
 *                             PKCS#11 3.0) or as explicit curve parameters,
 *                             instead of the OID
 *   always-authenticate       C_GenerateKeyPair makes private keys with
 *                             CKA_ALWAYS_AUTHENTICATE true (smart cards, PIV,
 *                             HSM policies); SoftHSM2 then wants a
 *                             CKU_CONTEXT_SPECIFIC login after each C_SignInit
 *                             and answers C_Sign without it with
 *                             CKR_USER_NOT_LOGGED_IN
 *   public-label LABEL        C_GenerateKeyPair labels the public key LABEL
 *                             (halves labelled apart, as vendor tools do:
 *                             "dl" and "dl-pub"); the CKA_ID is shared
 *   logged-out                C_GetSessionInfo reports a public state: with a
 *                             rule making a call fail with
 *                             CKR_USER_NOT_LOGGED_IN, a token that dropped the
 *                             login of its sessions
 *   no-public-key             C_FindObjects finds no public key (a token that
 *                             keeps only the private object)
 *   public-on-private ec-point|spki
 *                             a private EC key asked for CKA_EC_POINT, or for
 *                             CKA_PUBLIC_KEY_INFO (a SubjectPublicKeyInfo),
 *                             alone answers with its public half (read from the
 *                             public key with its CKA_ID), as tokens that keep
 *                             the public point on the private object do
 *
 *   flags-set N               C_GetTokenInfo reports the token flags N set
 *                             (CKF_* bits, e.g. 0x40000 CKF_USER_PIN_LOCKED,
 *                             0x20000 CKF_USER_PIN_FINAL_TRY)
 *   flags-clear N             C_GetTokenInfo reports the token flags N clear
 *                             (e.g. 0x8 CKF_USER_PIN_INITIALIZED)
 *   protected-auth PINFILE    a token with a PIN pad: C_GetTokenInfo reports
 *                             CKF_PROTECTED_AUTHENTICATION_PATH, and C_Login
 *                             given no PIN (NULL, 0) logs SoftHSM2 in with the
 *                             PIN in PINFILE, as the pad would; a C_Login given
 *                             a PIN fails with CKR_ARGUMENTS_BAD (the caller
 *                             must not send one)
 *
 *   nth C_FN:N:0xRV           the Nth call of C_FN counted from when the line
 *                             was read answers RV, once (a fault deep inside
 *                             an operation: its third C_GetAttributeValue)
 *   weak-private-key          C_GenerateKeyPair makes the private key with
 *                             CKA_SENSITIVE false and CKA_EXTRACTABLE true (a
 *                             token that does not honour the template)
 *
 *   all 0x5 [sticky]          every call (C_Initialize included; not C_Finalize,
 *                             C_CloseSession, C_CloseAllSessions) returns CK_RV
 *                             0x5 while the line is present. With "sticky" the
 *                             module stays broken after the line is removed,
 *                             answering 0x5 until it is finalized and initialized
 *                             again: a token whose storage went away and came
 *                             back (SoftHSM2 answers CKR_GENERAL_ERROR so).
 *
 * It also checks its caller, and aborts the process with a message on stderr
 * when a call runs while C_Finalize runs (or C_Finalize while calls are in
 * flight), or when a session handle of an earlier C_Initialize is used. For
 * the latter, the handles it hands out carry the initialization count in
 * their upper 32 bits (a real module may reuse handle numbers after
 * C_Initialize, so a stale handle could silently name someone else's
 * session).
 *
 * Calls are counted per function (each call the caller makes, also those a
 * rule answers). With $CREDSIGN_FAULT_COUNTS set to a path, the module
 * keeps that file up to date while it runs: one line per wrapped function,
 * "NAME COUNT", the name padded to 24 characters and the count to 12
 * digits, rewritten in place (a memory mapping) after every call, so it can
 * be read at any time; read it while no call runs for a consistent
 * snapshot. The file is created (or reset to zeros) when the module is
 * loaded: give each process its own path.
 *
 * Wrapped functions: C_Initialize, C_Finalize, C_GetInfo, C_GetSlotList,
 * C_GetSlotInfo, C_GetTokenInfo, C_OpenSession, C_CloseSession,
 * C_CloseAllSessions, C_GetSessionInfo, C_Login, C_Logout, C_FindObjectsInit,
 * C_FindObjects, C_FindObjectsFinal, C_GetAttributeValue, C_CopyObject,
 * C_DestroyObject, C_SignInit, C_Sign, C_GenerateRandom, C_GenerateKeyPair,
 * C_GetMechanismList, C_GetMechanismInfo (every function credsign calls).
 * The others reach the real module unchanged; given a session they see a
 * tagged handle and fail with CKR_SESSION_HANDLE_INVALID. Test code only:
 * never installed.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>

#define EXPORT __attribute__((visibility("default")))
#define MAX_RULES 16
#define EPOCH_SHIFT 32
#define REAL_HANDLE_MASK 0xffffffffUL

_Static_assert(sizeof(CK_SESSION_HANDLE) >= 8, "tagged session handles need 64 bits");

typedef struct {
	char name[40];
	CK_RV rv;
	long remaining; /* -1 = always */
	int sticky;
	char arg[256]; /* the second word, for rules that take a string */
} rule;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static CK_FUNCTION_LIST *real;
static CK_FUNCTION_LIST wrapped;
static rule rules[MAX_RULES];
static size_t nrules;
static struct timespec loaded_mtime;
static off_t loaded_size = -1;
static long open_sessions; /* opened through this module, not yet closed */
static CK_SESSION_HANDLE epoch; /* successful C_Initialize calls of the real module */
static long in_flight;          /* calls running in the real module */
static int finalizing;          /* C_Finalize is running */
static CK_RV stuck_rv;          /* left by "all RV sticky" until the next C_Initialize */
static int idle_dead;           /* "idle-timeout": sessions lost until C_Initialize */
static long long last_call_ms;  /* CLOCK_MONOTONIC of the last call, for idle-timeout */

/* ---- call counters ---------------------------------------------------------- */

static const char *const counted[] = {
	"C_Initialize", "C_Finalize", "C_GetInfo", "C_GetSlotList", "C_GetSlotInfo",
	"C_GetTokenInfo", "C_OpenSession", "C_CloseSession", "C_CloseAllSessions",
	"C_GetSessionInfo", "C_Login", "C_Logout", "C_FindObjectsInit", "C_FindObjects",
	"C_FindObjectsFinal", "C_GetAttributeValue", "C_CopyObject", "C_DestroyObject",
	"C_SignInit", "C_Sign", "C_GenerateRandom", "C_GenerateKeyPair", "C_GetMechanismList",
	"C_GetMechanismInfo",
};
#define NCOUNTED (sizeof(counted) / sizeof(counted[0]))
#define COUNT_NAME_WIDTH 24
#define COUNT_DIGITS 12
#define COUNT_LINE (COUNT_NAME_WIDTH + 1 + COUNT_DIGITS + 1)

static unsigned long counts[NCOUNTED];
static char *counts_map; /* the counts file, mapped; NULL when not asked for */

/* Map $CREDSIGN_FAULT_COUNTS and write every line with a zero count. */
static void counts_open(void)
{
	const char *path = getenv("CREDSIGN_FAULT_COUNTS");
	if (path == NULL || path[0] == '\0')
		return;
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	size_t size = NCOUNTED * COUNT_LINE;
	if (ftruncate(fd, (off_t)size) == 0) {
		void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (m != MAP_FAILED) {
			counts_map = m;
			for (size_t i = 0; i < NCOUNTED; i++) {
				char line[COUNT_LINE + 1];
				snprintf(line, sizeof(line), "%-*s %*lu\n", COUNT_NAME_WIDTH, counted[i],
					 COUNT_DIGITS, 0UL);
				memcpy(counts_map + i * COUNT_LINE, line, COUNT_LINE);
			}
		}
	}
	close(fd);
}

__attribute__((destructor)) static void counts_close(void)
{
	if (counts_map != NULL)
		munmap(counts_map, NCOUNTED * COUNT_LINE);
	counts_map = NULL;
}

/* Count one call of `fn`. Caller holds the lock. */
static void count_locked(const char *fn)
{
	for (size_t i = 0; i < NCOUNTED; i++) {
		if (strcmp(counted[i], fn) != 0)
			continue;
		counts[i]++;
		if (counts_map != NULL) {
			char digits[COUNT_DIGITS + 1];
			snprintf(digits, sizeof(digits), "%*lu", COUNT_DIGITS, counts[i]);
			memcpy(counts_map + i * COUNT_LINE + COUNT_NAME_WIDTH + 1, digits, COUNT_DIGITS);
		}
		return;
	}
}

/* Re-read the control file if it changed. Caller holds the lock. */
static void refresh(void)
{
	const char *path = getenv("CREDSIGN_FAULT_CONTROL");
	struct stat st;
	if (path == NULL || stat(path, &st) != 0) {
		nrules = 0;
		loaded_size = -1;
		return;
	}
	if (st.st_size == loaded_size && st.st_mtim.tv_sec == loaded_mtime.tv_sec &&
	    st.st_mtim.tv_nsec == loaded_mtime.tv_nsec)
		return;
	loaded_size = st.st_size;
	loaded_mtime = st.st_mtim;
	nrules = 0;
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return;
	char line[512];
	while (nrules < MAX_RULES && fgets(line, sizeof(line), f) != NULL) {
		rule r = {.remaining = -1};
		char a[40] = "", b[256] = "", c[40] = "";
		int n = sscanf(line, "%39s %255s %39s", a, b, c);
		if (n < 1 || a[0] == '#')
			continue;
		snprintf(r.name, sizeof(r.name), "%s", a);
		snprintf(r.arg, sizeof(r.arg), "%s", b);
		if (strncmp(a, "C_", 2) == 0 || strcmp(a, "all") == 0) {
			if (n < 2)
				continue;
			r.rv = strtoul(b, NULL, 0);
			if (n == 3 && strcmp(c, "sticky") == 0)
				r.sticky = 1;
			else if (n == 3)
				r.remaining = strtol(c, NULL, 0);
		} else if (n >= 2) {
			r.remaining = strtol(b, NULL, 0);
		}
		rules[nrules++] = r;
	}
	fclose(f);
}

/* Does a rule named `name` fire now? Consumes one count. Lock held. */
static int fires_locked(const char *name, CK_RV *rv)
{
	refresh();
	for (size_t i = 0; i < nrules; i++) {
		if (strcmp(rules[i].name, name) != 0 || rules[i].remaining == 0)
			continue;
		if (rules[i].remaining > 0)
			rules[i].remaining--;
		if (rv != NULL)
			*rv = rules[i].rv;
		if (rules[i].sticky)
			stuck_rv = rules[i].rv;
		return 1;
	}
	return 0;
}

static int fires(const char *name, CK_RV *rv)
{
	pthread_mutex_lock(&lock);
	int hit = fires_locked(name, rv);
	pthread_mutex_unlock(&lock);
	return hit;
}

/* The number of a "NAME N" rule, or -1 when there is none. */
static long rule_value(const char *name)
{
	long value = -1;
	pthread_mutex_lock(&lock);
	refresh();
	for (size_t i = 0; i < nrules; i++)
		if (strcmp(rules[i].name, name) == 0)
			value = rules[i].remaining;
	pthread_mutex_unlock(&lock);
	return value;
}

/* The string of a "NAME STRING" rule copied to out; 0 when there is none. */
static int rule_arg(const char *name, char *out, size_t size)
{
	int found = 0;
	pthread_mutex_lock(&lock);
	refresh();
	for (size_t i = 0; i < nrules; i++)
		if (strcmp(rules[i].name, name) == 0) {
			snprintf(out, size, "%s", rules[i].arg);
			found = 1;
		}
	pthread_mutex_unlock(&lock);
	return found;
}

/* Is the mechanism hidden by a "no-mechanism" line? */
static int mechanism_hidden(CK_MECHANISM_TYPE type)
{
	int hidden = 0;
	pthread_mutex_lock(&lock);
	refresh();
	for (size_t i = 0; i < nrules && !hidden; i++) {
		if (strcmp(rules[i].name, "no-mechanism") != 0)
			continue;
		const char *m = rules[i].arg;
		if (strcmp(m, "CKM_ECDSA") == 0)
			hidden = type == CKM_ECDSA;
		else if (strcmp(m, "CKM_EC_KEY_PAIR_GEN") == 0)
			hidden = type == CKM_EC_KEY_PAIR_GEN;
		else
			hidden = strtoul(m, NULL, 0) == type;
	}
	pthread_mutex_unlock(&lock);
	return hidden;
}

static long long monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

__attribute__((format(printf, 1, 2), noreturn)) static void violation(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("fault_pkcs11: caller error: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}

enum { CLEANUP = 0, FAULTABLE = 1 };

static CK_RV nth_fault_locked(const char *fn);

/* Start a call of `fn`: check the caller, turn a tagged session handle into
 * the real one, and decide whether a fault answers instead (non-zero CK_RV
 * returned). Every enter() is paired with a leave(). */
static CK_RV enter(const char *fn, CK_SESSION_HANDLE *h, int faultable)
{
	CK_RV rv = CKR_OK;
	long delay = -1;
	pthread_mutex_lock(&lock);
	if (finalizing)
		violation("%s called while C_Finalize runs", fn);
	count_locked(fn);
	if (h != NULL) {
		if (*h >> EPOCH_SHIFT != epoch)
			violation("%s given session handle %#lx of an earlier C_Initialize (now %lu)", fn,
				  (unsigned long)*h, (unsigned long)epoch);
		*h &= REAL_HANDLE_MASK;
	}
	in_flight++;
	refresh();
	long idle = -1;
	for (size_t i = 0; i < nrules; i++) {
		if (strcmp(rules[i].name, "delay-ms") == 0)
			delay = rules[i].remaining;
		if (strcmp(rules[i].name, "idle-timeout") == 0)
			idle = rules[i].remaining;
	}
	if (faultable) {
		long long now = monotonic_ms();
		if (idle > 0 && last_call_ms > 0 && now - last_call_ms > idle)
			idle_dead = 1; /* until the next C_Initialize */
		last_call_ms = now;
		if (!fires_locked("all", &rv) && stuck_rv != CKR_OK)
			rv = stuck_rv;
		if (rv == CKR_OK && idle_dead)
			rv = h != NULL ? CKR_SESSION_HANDLE_INVALID : CKR_DEVICE_REMOVED;
		if (rv == CKR_OK)
			(void)fires_locked(fn, &rv);
		if (rv == CKR_OK)
			rv = nth_fault_locked(fn); /* "nth", at the end */
	}
	pthread_mutex_unlock(&lock);
	if (delay > 0) { /* a slow token: the caller waits, the others do not */
		struct timespec ts = {delay / 1000, (delay % 1000) * 1000000};
		while (nanosleep(&ts, &ts) != 0)
			;
	}
	return rv;
}

static void leave(void)
{
	pthread_mutex_lock(&lock);
	in_flight--;
	pthread_mutex_unlock(&lock);
}

/* A call with no work around the real one. */
#define FORWARD(fn, h, faultable, call)                           \
	do {                                                       \
		CK_RV rv_ = enter(#fn, h, faultable);              \
		if (rv_ == CKR_OK)                                 \
			rv_ = (call);                              \
		leave();                                           \
		return rv_;                                        \
	} while (0)

static CK_RV w_Initialize(CK_VOID_PTR args)
{
	CK_RV rv = CKR_OK;
	char want[256];
	pthread_mutex_lock(&lock);
	count_locked("C_Initialize");
	(void)fires_locked("all", &rv);
	pthread_mutex_unlock(&lock);
	if (rv != CKR_OK)
		return rv; /* the storage is still gone */
	CK_C_INITIALIZE_ARGS stripped;
	if (rule_arg("init-args", want, sizeof(want))) {
		CK_C_INITIALIZE_ARGS *ia = args;
		if (ia == NULL || ia->pReserved == NULL || strcmp(ia->pReserved, want) != 0)
			return CKR_ARGUMENTS_BAD; /* as modules that need their arguments do */
		stripped = *ia; /* SoftHSM2 wants pReserved NULL, as PKCS#11 2.40 says */
		stripped.pReserved = NULL;
		args = &stripped;
	}
	if (fires("C_Initialize", &rv))
		return rv; /* a rule naming C_Initialize, after its arguments were judged */
	rv = real->C_Initialize(args);
	pthread_mutex_lock(&lock);
	if (rv == CKR_OK) {
		epoch++;
		stuck_rv = CKR_OK;
		open_sessions = 0;
		idle_dead = 0;
		last_call_ms = monotonic_ms();
	}
	pthread_mutex_unlock(&lock);
	return rv;
}

static CK_RV w_Finalize(CK_VOID_PTR reserved)
{
	pthread_mutex_lock(&lock);
	count_locked("C_Finalize");
	if (in_flight > 0)
		violation("C_Finalize while %ld call(s) run", in_flight);
	finalizing = 1;
	pthread_mutex_unlock(&lock);
	CK_RV rv = real->C_Finalize(reserved);
	pthread_mutex_lock(&lock);
	finalizing = 0;
	if (rv == CKR_OK)
		open_sessions = 0;
	pthread_mutex_unlock(&lock);
	return rv;
}

static CK_RV w_GetInfo(CK_INFO_PTR info)
{
	FORWARD(C_GetInfo, NULL, FAULTABLE, real->C_GetInfo(info));
}

static CK_RV w_GetSlotList(CK_BBOOL present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
	FORWARD(C_GetSlotList, NULL, FAULTABLE, real->C_GetSlotList(present, list, count));
}

static CK_RV w_GetSlotInfo(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info)
{
	FORWARD(C_GetSlotInfo, NULL, FAULTABLE, real->C_GetSlotInfo(slot, info));
}

static CK_RV w_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
	CK_RV rv = enter("C_GetTokenInfo", NULL, FAULTABLE);
	if (rv == CKR_OK) {
		rv = real->C_GetTokenInfo(slot, info);
		if (rv == CKR_OK && fires("no-rng", NULL))
			info->flags &= ~(CK_FLAGS)CKF_RNG;
		char pin_file[256], serial[64];
		if (rv == CKR_OK && rule_arg("no-login", pin_file, sizeof(pin_file)))
			info->flags &= ~(CK_FLAGS)CKF_LOGIN_REQUIRED;
		long set = rule_value("flags-set"), clear = rule_value("flags-clear");
		if (rv == CKR_OK && set > 0)
			info->flags |= (CK_FLAGS)set;
		if (rv == CKR_OK && clear > 0)
			info->flags &= ~(CK_FLAGS)clear;
		if (rv == CKR_OK && rule_arg("protected-auth", pin_file, sizeof(pin_file)))
			info->flags |= CKF_PROTECTED_AUTHENTICATION_PATH;
		if (rv == CKR_OK && rule_arg("token-serial", serial, sizeof(serial))) {
			/* blank-padded, not terminated */
			memset(info->serialNumber, ' ', sizeof(info->serialNumber));
			memcpy(info->serialNumber, serial,
			       strlen(serial) < sizeof(info->serialNumber) ? strlen(serial) : sizeof(info->serialNumber));
		}
	}
	leave();
	return rv;
}

static void count_sessions(long delta)
{
	pthread_mutex_lock(&lock);
	open_sessions = delta == 0 ? 0 : open_sessions + delta;
	pthread_mutex_unlock(&lock);
}

/* "no-login PINFILE": log SoftHSM2 in, unseen by the caller, so that a
 * caller that never logs in finds the token's private keys. */
static void login_behind_caller(CK_SESSION_HANDLE real_handle)
{
	char path[256], pin[256] = "";
	CK_SESSION_INFO info;
	if (!rule_arg("no-login", path, sizeof(path)) ||
	    real->C_GetSessionInfo(real_handle, &info) != CKR_OK ||
	    (info.state != CKS_RO_PUBLIC_SESSION && info.state != CKS_RW_PUBLIC_SESSION))
		return;
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return;
	if (fgets(pin, sizeof(pin), f) != NULL) {
		pin[strcspn(pin, "\r\n")] = '\0';
		(void)real->C_Login(real_handle, CKU_USER, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)strlen(pin));
	}
	fclose(f);
	memset(pin, 0, sizeof(pin));
}

static CK_RV w_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify,
			   CK_SESSION_HANDLE_PTR h)
{
	CK_RV rv = enter("C_OpenSession", NULL, FAULTABLE);
	if (rv != CKR_OK) {
		leave();
		return rv;
	}
	long cap = rule_value("session-cap");
	pthread_mutex_lock(&lock);
	long open_now = open_sessions;
	CK_SESSION_HANDLE tag = epoch << EPOCH_SHIFT;
	pthread_mutex_unlock(&lock);
	if (cap >= 0 && open_now >= cap) {
		rv = CKR_SESSION_COUNT;
	} else {
		rv = real->C_OpenSession(slot, flags, app, notify, h);
		if (rv == CKR_OK)
			login_behind_caller(*h);
		if (rv == CKR_OK && *h > REAL_HANDLE_MASK) {
			(void)real->C_CloseSession(*h);
			rv = CKR_GENERAL_ERROR; /* cannot tag it */
		} else if (rv == CKR_OK) {
			*h |= tag;
			count_sessions(1);
		}
	}
	leave();
	return rv;
}

static CK_RV w_CloseSession(CK_SESSION_HANDLE h)
{
	CK_RV rv = enter("C_CloseSession", &h, CLEANUP);
	rv = real->C_CloseSession(h);
	if (rv == CKR_OK)
		count_sessions(-1);
	leave();
	return rv;
}

static CK_RV w_CloseAllSessions(CK_SLOT_ID slot)
{
	CK_RV rv = enter("C_CloseAllSessions", NULL, CLEANUP);
	rv = real->C_CloseAllSessions(slot);
	if (rv == CKR_OK)
		count_sessions(0);
	leave();
	return rv;
}

static CK_RV w_GetSessionInfo(CK_SESSION_HANDLE h, CK_SESSION_INFO_PTR info)
{
	CK_RV rv = enter("C_GetSessionInfo", &h, FAULTABLE);
	char pin_file[256];
	if (rv == CKR_OK) {
		rv = real->C_GetSessionInfo(h, info);
		/* a token without login (or that dropped it): its sessions are public */
		if (rv == CKR_OK && (rule_arg("no-login", pin_file, sizeof(pin_file)) || fires("logged-out", NULL))) {
			if (info->state == CKS_RO_USER_FUNCTIONS)
				info->state = CKS_RO_PUBLIC_SESSION;
			else if (info->state == CKS_RW_USER_FUNCTIONS)
				info->state = CKS_RW_PUBLIC_SESSION;
		}
	}
	leave();
	return rv;
}

/* "protected-auth PINFILE": the PIN pad's answer to a C_Login without a PIN. */
static CK_RV pin_pad_login(CK_SESSION_HANDLE real_handle, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin,
			   CK_ULONG len, const char *path)
{
	char typed[256] = "";
	if (pin != NULL || len != 0)
		return CKR_ARGUMENTS_BAD;
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return CKR_FUNCTION_CANCELED; /* nobody typed it */
	if (fgets(typed, sizeof(typed), f) == NULL)
		typed[0] = '\0';
	fclose(f);
	typed[strcspn(typed, "\r\n")] = '\0';
	CK_RV rv = real->C_Login(real_handle, user, (CK_UTF8CHAR_PTR)typed, (CK_ULONG)strlen(typed));
	memset(typed, 0, sizeof(typed));
	return rv;
}

static CK_RV w_Login(CK_SESSION_HANDLE h, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
	char pin_file[256], pad_file[256];
	int no_login = rule_arg("no-login", pin_file, sizeof(pin_file));
	if (!no_login && rule_arg("protected-auth", pad_file, sizeof(pad_file)))
		FORWARD(C_Login, &h, FAULTABLE, pin_pad_login(h, user, pin, len, pad_file));
	FORWARD(C_Login, &h, FAULTABLE,
		no_login ? CKR_USER_ALREADY_LOGGED_IN : real->C_Login(h, user, pin, len));
}

static CK_RV w_Logout(CK_SESSION_HANDLE h)
{
	FORWARD(C_Logout, &h, FAULTABLE, real->C_Logout(h));
}

/* "no-public-key": a search for public keys is made to find nothing (a
 * class no object has, in a copy of the template). */
static CK_RV find_init(CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR tmpl, CK_ULONG n)
{
	CK_ATTRIBUTE copy[32];
	CK_OBJECT_CLASS none = CKO_VENDOR_DEFINED | 0x6e6f7075UL;
	if (n > 32 || !fires("no-public-key", NULL))
		return real->C_FindObjectsInit(h, tmpl, n);
	for (CK_ULONG i = 0; i < n; i++) {
		copy[i] = tmpl[i];
		if (tmpl[i].type == CKA_CLASS && tmpl[i].ulValueLen == sizeof(CK_OBJECT_CLASS) &&
		    *(CK_OBJECT_CLASS *)tmpl[i].pValue == CKO_PUBLIC_KEY)
			copy[i].pValue = &none;
	}
	return real->C_FindObjectsInit(h, copy, n);
}

static CK_RV w_FindObjectsInit(CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR tmpl, CK_ULONG n)
{
	FORWARD(C_FindObjectsInit, &h, FAULTABLE, find_init(h, tmpl, n));
}

static CK_RV w_FindObjects(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE_PTR found, CK_ULONG max,
			   CK_ULONG_PTR count)
{
	FORWARD(C_FindObjects, &h, FAULTABLE, real->C_FindObjects(h, found, max, count));
}

static CK_RV w_FindObjectsFinal(CK_SESSION_HANDLE h)
{
	FORWARD(C_FindObjectsFinal, &h, FAULTABLE, real->C_FindObjectsFinal(h));
}

/* OBJECT IDENTIFIER 1.2.840.10045.3.1.7 (P-256), as SoftHSM2 keeps it */
static const unsigned char p256_oid[10] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};

/* "ec-params printable|explicit": P-256 in that encoding (DER), or 0. */
static size_t other_ec_params(unsigned char *out, size_t size)
{
	char form[32];
	if (!rule_arg("ec-params", form, sizeof(form)))
		return 0;
	if (strcmp(form, "printable") == 0) {
		static const unsigned char name[] = {0x13, 0x0a, 'p', 'r', 'i', 'm', 'e', '2', '5', '6', 'v', '1'};
		memcpy(out, name, sizeof(name));
		return sizeof(name);
	}
	if (strcmp(form, "explicit") != 0)
		return 0;
	size_t n = 0;
	EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	if (g != NULL) {
		EC_GROUP_set_asn1_flag(g, OPENSSL_EC_EXPLICIT_CURVE);
		int len = i2d_ECPKParameters(g, NULL);
		unsigned char *p = out;
		if (len > 0 && (size_t)len <= size && i2d_ECPKParameters(g, &p) == len)
			n = (size_t)len;
		EC_GROUP_free(g);
	}
	return n;
}

/* The CKA_EC_POINT (DER OCTET STRING) of the public key with the CKA_ID of
 * private key `obj`, into out[*len]; 0 when obj is no private key or has no
 * such public key. Real calls only (no rule applies). */
static int public_point_of(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj, unsigned char *out, CK_ULONG *len)
{
	CK_OBJECT_CLASS cls = 0, pub_cls = CKO_PUBLIC_KEY;
	unsigned char id[256];
	CK_ATTRIBUTE a[2] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_ID, id, sizeof(id)}};
	if (real->C_GetAttributeValue(h, obj, a, 2) != CKR_OK || cls != CKO_PRIVATE_KEY)
		return 0;
	CK_ATTRIBUTE q[2] = {{CKA_CLASS, &pub_cls, sizeof(pub_cls)}, {CKA_ID, id, a[1].ulValueLen}};
	CK_OBJECT_HANDLE pub;
	CK_ULONG found = 0;
	if (real->C_FindObjectsInit(h, q, 2) != CKR_OK)
		return 0;
	CK_RV rv = real->C_FindObjects(h, &pub, 1, &found);
	(void)real->C_FindObjectsFinal(h);
	CK_ATTRIBUTE p = {CKA_EC_POINT, out, *len};
	if (rv != CKR_OK || found != 1 || real->C_GetAttributeValue(h, pub, &p, 1) != CKR_OK)
		return 0;
	*len = p.ulValueLen;
	return 1;
}

/* "public-on-private ec-point|spki": the one attribute asked of a private
 * key, answered from its public half. CKR_OK and *done when it answered. */
static CK_RV public_on_private(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_PTR a, int *done)
{
	char form[32];
	unsigned char point[256], spki[256];
	CK_ULONG point_len = sizeof(point);
	const unsigned char *value = point;
	size_t value_len;
	*done = 0;
	if (!rule_arg("public-on-private", form, sizeof(form)))
		return CKR_OK;
	int want_spki = strcmp(form, "spki") == 0;
	if (a->type != (want_spki ? CKA_PUBLIC_KEY_INFO : CKA_EC_POINT) || !public_point_of(h, obj, point, &point_len))
		return CKR_OK;
	value_len = point_len;
	if (want_spki) { /* the OCTET STRING's point in a SubjectPublicKeyInfo */
		const unsigned char *p = point;
		ASN1_OCTET_STRING *os = d2i_ASN1_OCTET_STRING(NULL, &p, (long)point_len);
		EVP_PKEY *pkey = NULL;
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
		OSSL_PARAM params[3] = {
			OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1", 0),
			OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
							  os != NULL ? (void *)ASN1_STRING_get0_data(os) : NULL,
							  os != NULL ? (size_t)ASN1_STRING_length(os) : 0),
			OSSL_PARAM_construct_end(),
		};
		int len = -1;
		unsigned char *q = spki;
		if (os != NULL && ctx != NULL && EVP_PKEY_fromdata_init(ctx) > 0 &&
		    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) > 0 &&
		    (len = i2d_PUBKEY(pkey, NULL)) > 0 && (size_t)len <= sizeof(spki))
			len = i2d_PUBKEY(pkey, &q);
		EVP_PKEY_free(pkey);
		EVP_PKEY_CTX_free(ctx);
		ASN1_OCTET_STRING_free(os);
		if (len <= 0 || (size_t)len > sizeof(spki))
			return CKR_OK;
		value = spki;
		value_len = (size_t)len;
	}
	*done = 1;
	if (a->pValue == NULL) {
		a->ulValueLen = value_len;
		return CKR_OK;
	}
	if (a->ulValueLen < value_len) {
		a->ulValueLen = CK_UNAVAILABLE_INFORMATION;
		return CKR_BUFFER_TOO_SMALL;
	}
	memcpy(a->pValue, value, value_len);
	a->ulValueLen = value_len;
	return CKR_OK;
}

static CK_RV w_GetAttributeValue(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_PTR tmpl,
				 CK_ULONG n)
{
	CK_RV rv = enter("C_GetAttributeValue", &h, FAULTABLE);
	CK_ULONG room[32];
	int done = 0;
	if (rv == CKR_OK && n == 1)
		rv = public_on_private(h, obj, tmpl, &done);
	if (rv == CKR_OK && !done) {
		for (CK_ULONG i = 0; i < n && i < 32; i++)
			room[i] = tmpl[i].ulValueLen;
		rv = real->C_GetAttributeValue(h, obj, tmpl, n);
		unsigned char alt[512];
		size_t alt_len = rv == CKR_OK || rv == CKR_BUFFER_TOO_SMALL ? other_ec_params(alt, sizeof(alt)) : 0;
		for (CK_ULONG i = 0; alt_len > 0 && i < n && i < 32; i++) {
			CK_ATTRIBUTE *a = &tmpl[i];
			if (a->type != CKA_EC_PARAMS || a->ulValueLen != sizeof(p256_oid))
				continue;
			if (a->pValue == NULL) {
				a->ulValueLen = alt_len; /* a size query */
			} else if (memcmp(a->pValue, p256_oid, sizeof(p256_oid)) != 0) {
				continue; /* another curve: as it is */
			} else if (room[i] < alt_len) {
				a->ulValueLen = CK_UNAVAILABLE_INFORMATION;
				rv = CKR_BUFFER_TOO_SMALL;
			} else {
				memcpy(a->pValue, alt, alt_len);
				a->ulValueLen = alt_len;
			}
		}
	}
	leave();
	return rv;
}

static CK_RV w_CopyObject(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_PTR tmpl,
			  CK_ULONG n, CK_OBJECT_HANDLE_PTR copy)
{
	FORWARD(C_CopyObject, &h, FAULTABLE, real->C_CopyObject(h, obj, tmpl, n, copy));
}

static CK_RV w_DestroyObject(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj)
{
	FORWARD(C_DestroyObject, &h, FAULTABLE, real->C_DestroyObject(h, obj));
}

static CK_RV w_SignInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)
{
	FORWARD(C_SignInit, &h, FAULTABLE,
		mech != NULL && mechanism_hidden(mech->mechanism) ? CKR_MECHANISM_INVALID
								   : real->C_SignInit(h, mech, key));
}

/* "der-signature": r || s (64 bytes) as a DER ECDSA-Sig-Value. */
static CK_RV der_signature(const unsigned char *raw, CK_ULONG raw_len, CK_BYTE_PTR sig, CK_ULONG_PTR sig_len)
{
	CK_RV rv = CKR_GENERAL_ERROR;
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(raw, (int)raw_len / 2, NULL), *s = BN_bin2bn(raw + raw_len / 2, (int)raw_len / 2, NULL);
	if (es != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(es, r, s)) {
		r = s = NULL;
		int len = i2d_ECDSA_SIG(es, NULL);
		unsigned char *p = sig;
		if (len <= 0) {
			rv = CKR_GENERAL_ERROR;
		} else if ((CK_ULONG)len > *sig_len) {
			*sig_len = (CK_ULONG)len;
			rv = CKR_BUFFER_TOO_SMALL;
		} else if (i2d_ECDSA_SIG(es, &p) == len) {
			*sig_len = (CK_ULONG)len;
			rv = CKR_OK;
		}
	}
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	return rv;
}

static CK_RV w_Sign(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR sig,
		    CK_ULONG_PTR sig_len)
{
	CK_RV rv = enter("C_Sign", &h, FAULTABLE);
	if (rv == CKR_OK) {
		long delay = rule_value("sign-delay");
		if (delay > 0 && sig != NULL) {
			struct timespec ts = {delay / 1000, (delay % 1000) * 1000000};
			nanosleep(&ts, NULL);
		}
		if (fires("der-signature", NULL)) {
			unsigned char raw[132];
			CK_ULONG raw_len = sizeof(raw);
			if (sig == NULL) { /* a size query: a DER P-256 signature is at most 72 bytes */
				rv = real->C_Sign(h, data, len, NULL, &raw_len);
				*sig_len = 72;
			} else if ((rv = real->C_Sign(h, data, len, raw, &raw_len)) == CKR_OK) {
				rv = der_signature(raw, raw_len, sig, sig_len);
			}
		} else {
			rv = real->C_Sign(h, data, len, sig, sig_len);
		}
		if (rv == CKR_OK && sig != NULL && *sig_len > 0 && fires("corrupt-signature", NULL))
			sig[*sig_len / 2] ^= 0x01;
	}
	leave();
	return rv;
}

static CK_RV w_GenerateRandom(CK_SESSION_HANDLE h, CK_BYTE_PTR buf, CK_ULONG len)
{
	CK_RV rv = enter("C_GenerateRandom", &h, FAULTABLE);
	if (rv == CKR_OK) {
		long cap = rule_value("random-cap");
		if (cap >= 0 && len > (CK_ULONG)cap)
			rv = CKR_DATA_LEN_RANGE;
		else
			rv = real->C_GenerateRandom(h, buf, len);
	}
	leave();
	return rv;
}

/* "id-max N": a template with a CKA_ID longer than N bytes? */
static int id_too_long(const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
	long max = rule_value("id-max");
	for (CK_ULONG i = 0; max >= 0 && i < n; i++)
		if (tmpl[i].type == CKA_ID && tmpl[i].ulValueLen > (CK_ULONG)max)
			return 1;
	return 0;
}

static void weak_private_key(CK_ATTRIBUTE_PTR priv, CK_ULONG n);

/* The real C_GenerateKeyPair, with the templates changed by
 * "always-authenticate" and "public-label LABEL". */
static CK_RV generate_key_pair(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_ATTRIBUTE_PTR pub,
			       CK_ULONG npub, CK_ATTRIBUTE_PTR priv, CK_ULONG npriv,
			       CK_OBJECT_HANDLE_PTR hpub, CK_OBJECT_HANDLE_PTR hpriv)
{
	CK_ATTRIBUTE pub2[32], priv2[33];
	CK_BBOOL yes = CK_TRUE;
	char label[256];
	if (npub > 32 || npriv > 32)
		return real->C_GenerateKeyPair(h, mech, pub, npub, priv, npriv, hpub, hpriv);
	memcpy(pub2, pub, npub * sizeof(*pub));
	memcpy(priv2, priv, npriv * sizeof(*priv));
	if (rule_arg("public-label", label, sizeof(label)))
		for (CK_ULONG i = 0; i < npub; i++)
			if (pub2[i].type == CKA_LABEL)
				pub2[i] = (CK_ATTRIBUTE){CKA_LABEL, label, strlen(label)};
	if (fires("always-authenticate", NULL))
		priv2[npriv++] = (CK_ATTRIBUTE){CKA_ALWAYS_AUTHENTICATE, &yes, sizeof(yes)};
	weak_private_key(priv2, npriv); /* "weak-private-key", at the end */
	return real->C_GenerateKeyPair(h, mech, pub2, npub, priv2, npriv, hpub, hpriv);
}

static CK_RV w_GenerateKeyPair(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_ATTRIBUTE_PTR pub,
			       CK_ULONG npub, CK_ATTRIBUTE_PTR priv, CK_ULONG npriv,
			       CK_OBJECT_HANDLE_PTR hpub, CK_OBJECT_HANDLE_PTR hpriv)
{
	FORWARD(C_GenerateKeyPair, &h, FAULTABLE,
		mech != NULL && mechanism_hidden(mech->mechanism) ? CKR_MECHANISM_INVALID
		: id_too_long(pub, npub) || id_too_long(priv, npriv)
			? CKR_ATTRIBUTE_VALUE_INVALID
			: generate_key_pair(h, mech, pub, npub, priv, npriv, hpub, hpriv));
}

static CK_RV w_GetMechanismList(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count)
{
	CK_RV rv = enter("C_GetMechanismList", NULL, FAULTABLE);
	if (rv == CKR_OK) {
		/* the real list, then the hidden ones taken out (a size query
		 * may overstate, as the standard allows) */
		rv = real->C_GetMechanismList(slot, list, count);
		if (rv == CKR_OK && list != NULL) {
			CK_ULONG kept = 0;
			for (CK_ULONG i = 0; i < *count; i++)
				if (!mechanism_hidden(list[i]))
					list[kept++] = list[i];
			*count = kept;
		}
	}
	leave();
	return rv;
}

static CK_RV w_GetMechanismInfo(CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info)
{
	FORWARD(C_GetMechanismInfo, NULL, FAULTABLE,
		mechanism_hidden(type) ? CKR_MECHANISM_INVALID : real->C_GetMechanismInfo(slot, type, info));
}

EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out);

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out)
{
	pthread_mutex_lock(&lock);
	if (real == NULL) {
		const char *path = getenv("CREDSIGN_FAULT_REAL_MODULE");
		void *lib = path != NULL ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : NULL;
		CK_C_GetFunctionList get = lib != NULL ? (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList") : NULL;
		if (get == NULL || get(&real) != CKR_OK) {
			pthread_mutex_unlock(&lock);
			return CKR_GENERAL_ERROR;
		}
		counts_open();
		wrapped = *real;
		wrapped.C_GetFunctionList = C_GetFunctionList;
		wrapped.C_Initialize = w_Initialize;
		wrapped.C_Finalize = w_Finalize;
		wrapped.C_GetInfo = w_GetInfo;
		wrapped.C_GetSlotList = w_GetSlotList;
		wrapped.C_GetSlotInfo = w_GetSlotInfo;
		wrapped.C_GetTokenInfo = w_GetTokenInfo;
		wrapped.C_OpenSession = w_OpenSession;
		wrapped.C_CloseSession = w_CloseSession;
		wrapped.C_CloseAllSessions = w_CloseAllSessions;
		wrapped.C_GetSessionInfo = w_GetSessionInfo;
		wrapped.C_Login = w_Login;
		wrapped.C_Logout = w_Logout;
		wrapped.C_FindObjectsInit = w_FindObjectsInit;
		wrapped.C_FindObjects = w_FindObjects;
		wrapped.C_FindObjectsFinal = w_FindObjectsFinal;
		wrapped.C_GetAttributeValue = w_GetAttributeValue;
		wrapped.C_CopyObject = w_CopyObject;
		wrapped.C_DestroyObject = w_DestroyObject;
		wrapped.C_SignInit = w_SignInit;
		wrapped.C_Sign = w_Sign;
		wrapped.C_GenerateRandom = w_GenerateRandom;
		wrapped.C_GenerateKeyPair = w_GenerateKeyPair;
		wrapped.C_GetMechanismList = w_GetMechanismList;
		wrapped.C_GetMechanismInfo = w_GetMechanismInfo;
	}
	*out = &wrapped;
	pthread_mutex_unlock(&lock);
	return CKR_OK;
}

/* ---- key template faults -------------------------------------------------- */

/* "weak-private-key": the private template asks for an extractable key that
 * is not sensitive, whatever the caller asked for. */
static void weak_private_key(CK_ATTRIBUTE_PTR priv, CK_ULONG n)
{
	static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	if (!fires("weak-private-key", NULL))
		return;
	for (CK_ULONG i = 0; i < n; i++) {
		if (priv[i].type == CKA_SENSITIVE)
			priv[i] = (CK_ATTRIBUTE){CKA_SENSITIVE, &no, sizeof(no)};
		else if (priv[i].type == CKA_EXTRACTABLE)
			priv[i] = (CK_ATTRIBUTE){CKA_EXTRACTABLE, &yes, sizeof(yes)};
	}
}

/* "nth C_FN:N:0xRV": calls of C_FN seen since the control file was read
 * last; the Nth answers RV. Lock held (by enter). */
static CK_RV nth_fault_locked(const char *fn)
{
	static long seen[MAX_RULES];
	static off_t seen_size = -1;
	static struct timespec seen_mtime;
	if (seen_size != loaded_size || seen_mtime.tv_sec != loaded_mtime.tv_sec ||
	    seen_mtime.tv_nsec != loaded_mtime.tv_nsec) { /* the rules were read again */
		memset(seen, 0, sizeof(seen));
		seen_size = loaded_size;
		seen_mtime = loaded_mtime;
	}
	for (size_t i = 0; i < nrules; i++) {
		char name[40];
		long n = 0;
		unsigned long rv = 0;
		if (strcmp(rules[i].name, "nth") != 0 ||
		    sscanf(rules[i].arg, "%39[^:]:%ld:%lx", name, &n, &rv) != 3 || strcmp(name, fn) != 0)
			continue;
		if (++seen[i] == n)
			return (CK_RV)rv;
	}
	return CKR_OK;
}
