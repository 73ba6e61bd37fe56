/* sqlite_fault: see sqlite_fault.h. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "sqlite_fault.h"

/* fail_at >= 0: the allocation that many allocations from now fails (once). */
static atomic_long fail_at = -1;

static int inject(void)
{
	long n = atomic_load(&fail_at);
	while (n >= 0) {
		if (atomic_compare_exchange_weak(&fail_at, &n, n - 1))
			return n == 0;
	}
	return 0;
}

/* Blocks carry their exact size in front, so the sizes SQLite sees (and the
 * reallocations it needs) do not depend on the C library's allocator. */
#define HDR 16
static void *mem_malloc(int n)
{
	if (inject())
		return NULL;
	unsigned char *p = malloc((size_t)n + HDR);
	if (p == NULL)
		return NULL;
	memcpy(p, &n, sizeof(n));
	return p + HDR;
}
static void mem_free(void *p)
{
	if (p != NULL)
		free((unsigned char *)p - HDR);
}
static void *mem_realloc(void *p, int n)
{
	if (inject())
		return NULL;
	unsigned char *q = realloc((unsigned char *)p - HDR, (size_t)n + HDR);
	if (q == NULL)
		return NULL;
	memcpy(q, &n, sizeof(n));
	return q + HDR;
}
static int mem_size(void *p)
{
	int n;
	memcpy(&n, (unsigned char *)p - HDR, sizeof(n));
	return n;
}
static int mem_roundup(int n)
{
	return (n + 7) & ~7;
}
static int mem_init(void *arg)
{
	(void)arg;
	return SQLITE_OK;
}
static void mem_shutdown(void *arg)
{
	(void)arg;
}

int sqlf_install(void)
{
	static const sqlite3_mem_methods mem = {mem_malloc, mem_free, mem_realloc, mem_size,
						mem_roundup, mem_init, mem_shutdown, NULL};
	if (sqlite3_shutdown() != SQLITE_OK || sqlite3_config(SQLITE_CONFIG_MALLOC, &mem) != SQLITE_OK ||
	    sqlite3_config(SQLITE_CONFIG_LOOKASIDE, 0, 0) != SQLITE_OK || sqlite3_initialize() != SQLITE_OK) {
		fprintf(stderr, "cannot configure SQLite's allocator\n");
		return -1;
	}
	return 0;
}

void sqlf_fail_at(long n)
{
	atomic_store(&fail_at, n);
}

long sqlf_disarm(void)
{
	return atomic_exchange(&fail_at, -1);
}
