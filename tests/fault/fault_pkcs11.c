/*
 * fault_pkcs11: a PKCS#11 module for tests that forwards every call to a real
 * module ($CREDSIGN_FAULT_REAL_MODULE) and injects faults described in a
 * control file ($CREDSIGN_FAULT_CONTROL), re-read whenever it changes:
 *
 *   C_Sign 0x32 [COUNT]      C_Sign returns CK_RV 0x32 (COUNT times, or always);
 *                             any function listed below can be named
 *   corrupt-signature [COUNT] flip one bit of what C_Sign returns
 *   no-rng                    C_GetTokenInfo reports no CKF_RNG
 *   sign-delay MS             C_Sign takes MS milliseconds longer (a slow token)
 *   delay-ms MS               every call but C_Initialize and C_Finalize takes MS
 *                             milliseconds longer (a network HSM); the wait is
 *                             outside the module's lock, so calls overlap
 *   random-cap N              C_GenerateRandom of more than N bytes fails with
 *                             CKR_DATA_LEN_RANGE (an HSM with a per-call cap)
 *   session-cap N             C_OpenSession fails with CKR_SESSION_COUNT while
 *                             N sessions opened through this module are open
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
 * C_DestroyObject, C_SignInit, C_Sign, C_GenerateRandom, C_GenerateKeyPair
 * (every function credsign calls). The others reach the real module
 * unchanged; given a session they see a tagged handle and fail with
 * CKR_SESSION_HANDLE_INVALID. Test code only: never installed.
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

/* ---- call counters ---------------------------------------------------------- */

static const char *const counted[] = {
	"C_Initialize", "C_Finalize", "C_GetInfo", "C_GetSlotList", "C_GetSlotInfo",
	"C_GetTokenInfo", "C_OpenSession", "C_CloseSession", "C_CloseAllSessions",
	"C_GetSessionInfo", "C_Login", "C_Logout", "C_FindObjectsInit", "C_FindObjects",
	"C_FindObjectsFinal", "C_GetAttributeValue", "C_CopyObject", "C_DestroyObject",
	"C_SignInit", "C_Sign", "C_GenerateRandom", "C_GenerateKeyPair",
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
	char line[128];
	while (nrules < MAX_RULES && fgets(line, sizeof(line), f) != NULL) {
		rule r = {.remaining = -1};
		char a[40] = "", b[40] = "", c[40] = "";
		int n = sscanf(line, "%39s %39s %39s", a, b, c);
		if (n < 1 || a[0] == '#')
			continue;
		snprintf(r.name, sizeof(r.name), "%s", a);
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
	if (faultable) {
		if (!fires_locked("all", &rv) && stuck_rv != CKR_OK)
			rv = stuck_rv;
		if (rv == CKR_OK)
			(void)fires_locked(fn, &rv);
	}
	refresh();
	for (size_t i = 0; i < nrules; i++)
		if (strcmp(rules[i].name, "delay-ms") == 0)
			delay = rules[i].remaining;
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
	pthread_mutex_lock(&lock);
	count_locked("C_Initialize");
	(void)fires_locked("all", &rv);
	pthread_mutex_unlock(&lock);
	if (rv != CKR_OK)
		return rv; /* the storage is still gone */
	rv = real->C_Initialize(args);
	pthread_mutex_lock(&lock);
	if (rv == CKR_OK) {
		epoch++;
		stuck_rv = CKR_OK;
		open_sessions = 0;
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
	FORWARD(C_GetSessionInfo, &h, FAULTABLE, real->C_GetSessionInfo(h, info));
}

static CK_RV w_Login(CK_SESSION_HANDLE h, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
	FORWARD(C_Login, &h, FAULTABLE, real->C_Login(h, user, pin, len));
}

static CK_RV w_Logout(CK_SESSION_HANDLE h)
{
	FORWARD(C_Logout, &h, FAULTABLE, real->C_Logout(h));
}

static CK_RV w_FindObjectsInit(CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR tmpl, CK_ULONG n)
{
	FORWARD(C_FindObjectsInit, &h, FAULTABLE, real->C_FindObjectsInit(h, tmpl, n));
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

static CK_RV w_GetAttributeValue(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_PTR tmpl,
				 CK_ULONG n)
{
	FORWARD(C_GetAttributeValue, &h, FAULTABLE, real->C_GetAttributeValue(h, obj, tmpl, n));
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
	FORWARD(C_SignInit, &h, FAULTABLE, real->C_SignInit(h, mech, key));
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
		rv = real->C_Sign(h, data, len, sig, sig_len);
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

static CK_RV w_GenerateKeyPair(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_ATTRIBUTE_PTR pub,
			       CK_ULONG npub, CK_ATTRIBUTE_PTR priv, CK_ULONG npriv,
			       CK_OBJECT_HANDLE_PTR hpub, CK_OBJECT_HANDLE_PTR hpriv)
{
	FORWARD(C_GenerateKeyPair, &h, FAULTABLE,
		real->C_GenerateKeyPair(h, mech, pub, npub, priv, npriv, hpub, hpriv));
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
	}
	*out = &wrapped;
	pthread_mutex_unlock(&lock);
	return CKR_OK;
}
