/*
 * fault_pkcs11: a PKCS#11 module for tests that forwards every call to a real
 * module ($CREDSIGN_FAULT_REAL_MODULE) and injects faults described in a
 * control file ($CREDSIGN_FAULT_CONTROL), re-read whenever it changes:
 *
 *   C_Sign 0x32 [COUNT]      C_Sign returns CK_RV 0x32 (COUNT times, or always)
 *   corrupt-signature [COUNT] flip one bit of what C_Sign returns
 *   no-rng                    C_GetTokenInfo reports no CKF_RNG
 *   sign-delay MS             C_Sign takes MS milliseconds longer (a slow token)
 *   session-cap N             C_OpenSession fails with CKR_SESSION_COUNT while
 *                             N sessions opened through this module are open
 *
 * Functions that can fail this way: C_GetTokenInfo, C_GetSlotList,
 * C_OpenSession, C_Login, C_SignInit, C_Sign, C_GenerateRandom,
 * C_FindObjectsInit, C_GetAttributeValue. Test code only: never installed.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <p11-kit/pkcs11.h>

#define EXPORT __attribute__((visibility("default")))
#define MAX_RULES 16

typedef struct {
	char name[40];
	CK_RV rv;
	long remaining; /* -1 = always */
} rule;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static CK_FUNCTION_LIST *real;
static CK_FUNCTION_LIST wrapped;
static rule rules[MAX_RULES];
static size_t nrules;
static struct timespec loaded_mtime;
static off_t loaded_size = -1;
static long open_sessions; /* opened through this module, not yet closed */

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
		if (strncmp(a, "C_", 2) == 0) {
			if (n < 2)
				continue;
			r.rv = strtoul(b, NULL, 0);
			if (n == 3)
				r.remaining = strtol(c, NULL, 0);
		} else if (n >= 2) {
			r.remaining = strtol(b, NULL, 0);
		}
		rules[nrules++] = r;
	}
	fclose(f);
}

/* Does a rule named `name` fire now? Consumes one count. */
static int fires(const char *name, CK_RV *rv)
{
	int hit = 0;
	pthread_mutex_lock(&lock);
	refresh();
	for (size_t i = 0; i < nrules; i++) {
		if (strcmp(rules[i].name, name) != 0 || rules[i].remaining == 0)
			continue;
		if (rules[i].remaining > 0)
			rules[i].remaining--;
		if (rv != NULL)
			*rv = rules[i].rv;
		hit = 1;
		break;
	}
	pthread_mutex_unlock(&lock);
	return hit;
}

#define FAULT(fn)                                   \
	do {                                        \
		CK_RV injected_;                    \
		if (fires(#fn, &injected_))         \
			return injected_;           \
	} while (0)

static CK_RV w_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
	FAULT(C_GetTokenInfo);
	CK_RV rv = real->C_GetTokenInfo(slot, info);
	if (rv == CKR_OK && fires("no-rng", NULL))
		info->flags &= ~(CK_FLAGS)CKF_RNG;
	return rv;
}

static CK_RV w_GetSlotList(CK_BBOOL present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
	FAULT(C_GetSlotList);
	return real->C_GetSlotList(present, list, count);
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

static void count_sessions(long delta)
{
	pthread_mutex_lock(&lock);
	open_sessions = delta == 0 ? 0 : open_sessions + delta;
	pthread_mutex_unlock(&lock);
}

static CK_RV w_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify,
			   CK_SESSION_HANDLE_PTR h)
{
	FAULT(C_OpenSession);
	long cap = rule_value("session-cap");
	pthread_mutex_lock(&lock);
	long open_now = open_sessions;
	pthread_mutex_unlock(&lock);
	if (cap >= 0 && open_now >= cap)
		return CKR_SESSION_COUNT;
	CK_RV rv = real->C_OpenSession(slot, flags, app, notify, h);
	if (rv == CKR_OK)
		count_sessions(1);
	return rv;
}

static CK_RV w_CloseSession(CK_SESSION_HANDLE h)
{
	CK_RV rv = real->C_CloseSession(h);
	if (rv == CKR_OK)
		count_sessions(-1);
	return rv;
}

static CK_RV w_CloseAllSessions(CK_SLOT_ID slot)
{
	CK_RV rv = real->C_CloseAllSessions(slot);
	if (rv == CKR_OK)
		count_sessions(0);
	return rv;
}

static CK_RV w_Login(CK_SESSION_HANDLE h, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
	FAULT(C_Login);
	return real->C_Login(h, user, pin, len);
}

static CK_RV w_SignInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)
{
	FAULT(C_SignInit);
	return real->C_SignInit(h, mech, key);
}

static CK_RV w_Sign(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR sig,
		    CK_ULONG_PTR sig_len)
{
	FAULT(C_Sign);
	long delay = rule_value("sign-delay");
	if (delay > 0 && sig != NULL) {
		struct timespec ts = {delay / 1000, (delay % 1000) * 1000000};
		nanosleep(&ts, NULL);
	}
	CK_RV rv = real->C_Sign(h, data, len, sig, sig_len);
	if (rv == CKR_OK && sig != NULL && *sig_len > 0 && fires("corrupt-signature", NULL))
		sig[*sig_len / 2] ^= 0x01;
	return rv;
}

static CK_RV w_GenerateRandom(CK_SESSION_HANDLE h, CK_BYTE_PTR buf, CK_ULONG len)
{
	FAULT(C_GenerateRandom);
	return real->C_GenerateRandom(h, buf, len);
}

static CK_RV w_FindObjectsInit(CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR tmpl, CK_ULONG n)
{
	FAULT(C_FindObjectsInit);
	return real->C_FindObjectsInit(h, tmpl, n);
}

static CK_RV w_GetAttributeValue(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_PTR tmpl,
				 CK_ULONG n)
{
	FAULT(C_GetAttributeValue);
	return real->C_GetAttributeValue(h, obj, tmpl, n);
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
		wrapped = *real;
		wrapped.C_GetFunctionList = C_GetFunctionList;
		wrapped.C_GetTokenInfo = w_GetTokenInfo;
		wrapped.C_GetSlotList = w_GetSlotList;
		wrapped.C_OpenSession = w_OpenSession;
		wrapped.C_CloseSession = w_CloseSession;
		wrapped.C_CloseAllSessions = w_CloseAllSessions;
		wrapped.C_Login = w_Login;
		wrapped.C_SignInit = w_SignInit;
		wrapped.C_Sign = w_Sign;
		wrapped.C_GenerateRandom = w_GenerateRandom;
		wrapped.C_FindObjectsInit = w_FindObjectsInit;
		wrapped.C_GetAttributeValue = w_GetAttributeValue;
	}
	*out = &wrapped;
	pthread_mutex_unlock(&lock);
	return CKR_OK;
}
