/*
 * alloc_fail (alloc_fail.h): the linker's --wrap targets and the counter
 * behind them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <execinfo.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "alloc_fail.h"

/* The real functions (the linker resolves __real_X to X). */
void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *ptr, size_t size);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
FILE *__real_open_memstream(char **buf, size_t *size);
int __real_vasprintf(char **out, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
int __real___vasprintf_chk(char **out, int flag, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *ptr, size_t size);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
FILE *__wrap_open_memstream(char **buf, size_t *size);
int __wrap_vasprintf(char **out, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
int __wrap___vasprintf_chk(char **out, int flag, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

static atomic_ulong seen;       /* allocations since arm/disarm */
static atomic_ulong fail_at;    /* 0: never */
static atomic_bool persist;
static atomic_bool not_json; /* AF_NOT_JSON */
static atomic_bool fired;

/* Count one allocation; true if it must fail. */
static bool must_fail(void)
{
	unsigned long n = atomic_fetch_add(&seen, 1) + 1;
	unsigned long at = atomic_load(&fail_at);
	if (at == 0 || n < at || (n > at && !atomic_load(&persist)))
		return false;
	atomic_store(&fired, true);
	if (getenv("AF_BACKTRACE") != NULL) { /* where the failure was injected */
		void *frames[24];
		int depth = backtrace(frames, 24);
		fprintf(stderr, "alloc_fail: allocation %lu fails at\n", n);
		backtrace_symbols_fd(frames, depth, 2);
	}
	errno = ENOMEM;
	return true;
}

void af_arm(unsigned long n, int flags)
{
	assert_true(n >= 1);
	atomic_store(&fired, false);
	atomic_store(&persist, (flags & AF_PERSIST) != 0);
	atomic_store(&not_json, (flags & AF_NOT_JSON) != 0);
	atomic_store(&seen, 0);
	atomic_store(&fail_at, n);
}

bool af_disarm(void)
{
	atomic_store(&fail_at, 0);
	atomic_store(&seen, 0);
	return atomic_load(&fired);
}

unsigned long af_count(void)
{
	return atomic_load(&seen);
}

bool af_fired(void)
{
	return atomic_load(&fired);
}

void *__wrap_malloc(size_t size)
{
	return must_fail() ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
	return must_fail() ? NULL : __real_calloc(n, size);
}

/* realloc(p, 0) frees: it is not an allocation that can fail. */
void *__wrap_realloc(void *ptr, size_t size)
{
	if (size != 0 && must_fail())
		return NULL;
	return __real_realloc(ptr, size);
}

char *__wrap_strdup(const char *s)
{
	return must_fail() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
	return must_fail() ? NULL : __real_strndup(s, n);
}

FILE *__wrap_open_memstream(char **buf, size_t *size)
{
	return must_fail() ? NULL : __real_open_memstream(buf, size);
}

int __wrap_vasprintf(char **out, const char *fmt, va_list ap)
{
	if (must_fail())
		return -1; /* *out undefined, as glibc documents */
	return __real_vasprintf(out, fmt, ap);
}

/* _FORTIFY_SOURCE=2 builds call this one for vasprintf */
int __wrap___vasprintf_chk(char **out, int flag, const char *fmt, va_list ap)
{
	if (must_fail())
		return -1;
	return __real___vasprintf_chk(out, flag, fmt, ap);
}

static void *ossl_malloc(size_t size, const char *file, int line)
{
	(void)file;
	(void)line;
	return __wrap_malloc(size);
}

static void *ossl_realloc(void *ptr, size_t size, const char *file, int line)
{
	(void)file;
	(void)line;
	return __wrap_realloc(ptr, size);
}

static void ossl_free(void *ptr, const char *file, int line)
{
	(void)file;
	(void)line;
	free(ptr);
}

static void *json_malloc(size_t size)
{
	return atomic_load(&not_json) ? __real_malloc(size) : __wrap_malloc(size);
}

static void json_free(void *ptr)
{
	free(ptr);
}

void af_install(int flags)
{
	json_set_alloc_funcs(json_malloc, json_free);
	if (flags & AF_OPENSSL)
		assert_int_equal(CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free), 1);
}

unsigned long af_sweep(af_run_fn *run, void *ctx, int flags, unsigned long max_runs)
{
	for (unsigned long n = 1; n <= max_runs; n++) {
		af_arm(n, flags);
		run(ctx);
		(void)af_disarm(); /* if run did not */
		if (!af_fired())
			return n - 1;
	}
	fail_msg("af_sweep: still failing allocations after %lu runs", max_runs);
	return max_runs;
}
