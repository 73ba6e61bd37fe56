/*
 * alloc_fail: make one allocation fail, counted from the moment a test arms
 * it, to drive the out-of-memory paths of our code.
 *
 * A test executable that uses it is linked with
 *   -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,
 *   --wrap=strndup,--wrap=open_memstream,--wrap=vasprintf
 * (tests/CMakeLists.txt: credsign_alloc_fail_test): every call to those
 * functions made from the executable's own objects and from the static
 * libraries linked into it (cssigner, cstoken, csconf, csprovider) goes
 * through this module. Shared libraries are not relinked: af_install() also
 * routes jansson's allocations (json_set_alloc_funcs) through it, and with
 * AF_OPENSSL OpenSSL's (CRYPTO_set_mem_functions, which only works before
 * OpenSSL's first allocation: call af_install first thing in main).
 * libconfig, libpq and sqlite allocate on their own and never fail here.
 *
 * Counting: af_arm(n, ...) resets the count; the n-th allocation after it
 * (1-based) returns NULL (ENOMEM), and with AF_PERSIST every later one too,
 * until af_disarm(). Unarmed, allocations are still counted, so a test can
 * size a sweep. The counters are atomic; which thread's allocation is the
 * n-th is up to the scheduler when several threads allocate.
 *
 * af_sweep runs one entry point with the 1st, 2nd, ... allocation failing
 * until a run in which none failed (the entry point then needs fewer
 * allocations than n): the callback asserts the outcome of each run, an
 * error when an allocation failed, success otherwise. Under ASan every
 * failed run must also leave no leak (LeakSanitizer reports at exit).
 * AF_BACKTRACE=1 in the environment prints where each failure is injected.
 */
#ifndef CREDSIGN_TEST_ALLOC_FAIL_H
#define CREDSIGN_TEST_ALLOC_FAIL_H

#include <stdbool.h>
#include <stddef.h>

enum {
	AF_OPENSSL = 1, /* af_install: OpenSSL's allocations counted too */
	AF_PERSIST = 2, /* af_arm: the n-th allocation and every later one fail */
	/* af_arm: jansson's allocations are neither counted nor failed.
	 * jansson 2.14's parser drops a character its buffer cannot take and
	 * may then abort the process (assertion in lex_scan_string, load.c):
	 * a sweep through parsing of long strings cannot fail jansson. */
	AF_NOT_JSON = 4,
};

/* Route jansson (and with AF_OPENSSL, OpenSSL) through the counter. Once,
 * before anything allocates through them. */
void af_install(int flags);

/* Fail the n-th allocation from now (n >= 1); flags: AF_PERSIST, AF_NOT_JSON. */
void af_arm(unsigned long n, int flags);
/* Stop failing (the count restarts at 0); whether an allocation failed
 * since the last af_arm. A run calls it right after the entry point, so
 * that its own checks and clean-up allocate normally. */
bool af_disarm(void);
/* Allocations since the last af_arm/af_disarm. */
unsigned long af_count(void);
/* Whether an allocation has failed since the last af_arm. */
bool af_fired(void);

/* One run of a swept entry point: call it, then af_disarm(), then assert
 * its outcome (an error if an allocation failed, success otherwise) and
 * free what it returned. Inputs are prepared before the sweep, in ctx. */
typedef void af_run_fn(void *ctx);

/* For n = 1, 2, ...: af_arm(n, flags), run(ctx); stops after
 * the first run in which no allocation failed, which must come before
 * max_runs (else the test fails). Returns the number of runs in which an
 * allocation failed (the entry point's allocation count). */
unsigned long af_sweep(af_run_fn *run, void *ctx, int flags, unsigned long max_runs);

#endif
