/* wipe_alloc: see wipe_alloc.h. */
#include "wipe_alloc.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include <jansson.h>
#include <openssl/crypto.h>

/* this thread's open secret scopes */
static _Thread_local unsigned scope_depth;

void cs_secret_scope_enter(void)
{
	scope_depth++;
}

void cs_secret_scope_leave(void)
{
	if (scope_depth > 0)
		scope_depth--;
}

int cs_secret_scope_open(void)
{
	return scope_depth > 0;
}

/* A block of the secure heap, NULL when it is not initialised or has no
 * room. No file and line: a full heap puts no error on OpenSSL's queue
 * (the caller falls back to malloc; a TLS call must not find it there). */
static void *secure_block(size_t size)
{
	if (size == 0 || !CRYPTO_secure_malloc_initialized())
		return NULL;
	return CRYPTO_secure_malloc(size, NULL, 0);
}

/* Wipe the whole block, then release it where it came from. */
void cs_wiping_free(void *ptr)
{
	if (ptr == NULL)
		return;
	if (CRYPTO_secure_allocated(ptr)) {
		OPENSSL_cleanse(ptr, CRYPTO_secure_actual_size(ptr));
		CRYPTO_secure_free(ptr, NULL, 0);
		return;
	}
	OPENSSL_cleanse(ptr, malloc_usable_size(ptr));
	free(ptr);
}

/* In a secret scope the secure heap first; else (and when it is full)
 * malloc. */
void *cs_wiping_malloc(size_t size)
{
	void *p = scope_depth > 0 ? secure_block(size) : NULL;
	return p != NULL ? p : malloc(size);
}

void cs_json_wiping_allocator(void)
{
	json_set_alloc_funcs(cs_wiping_malloc, cs_wiping_free);
}

/* A moved block is wiped before it is freed. A secure block stays in the
 * secure heap while it has room, even outside a scope: it held a secret. */
void *cs_wiping_realloc(void *ptr, size_t size)
{
	if (ptr == NULL)
		return cs_wiping_malloc(size);
	int secure = CRYPTO_secure_allocated(ptr);
	size_t old = secure ? CRYPTO_secure_actual_size(ptr) : malloc_usable_size(ptr);
	if (size <= old)
		return ptr; /* the block stays; its tail is wiped when it is freed */
	void *grown = secure || scope_depth > 0 ? secure_block(size) : NULL;
	if (grown == NULL && (grown = malloc(size)) == NULL)
		return NULL;
	memcpy(grown, ptr, old); /* min(old, size): size > old here */
	cs_wiping_free(ptr);
	return grown;
}

void cs_event_wiping_allocator(void)
{
	event_set_mem_functions(cs_wiping_malloc, cs_wiping_realloc, cs_wiping_free);
}

void *cs_secret_alloc(size_t n)
{
	if (n == 0)
		return NULL;
	void *p = secure_block(n);
	if (p != NULL) {
		memset(p, 0, n);
		return p;
	}
	return calloc(1, n);
}

void cs_secret_free(void *ptr)
{
	cs_wiping_free(ptr);
}

int cs_wiped_append(char **buf, size_t *len, size_t *cap, const void *data, size_t n, size_t max)
{
	if (*len + n + 1 > max)
		return -1;
	if (*len + n + 1 > *cap) {
		size_t grown_cap = (*len + n + 1) * 2;
		char *grown = malloc(grown_cap);
		if (grown == NULL)
			return -1;
		if (*buf != NULL) {
			memcpy(grown, *buf, *len);
			cs_wiping_free(*buf);
		}
		*buf = grown;
		*cap = grown_cap;
	}
	memcpy(*buf + *len, data, n);
	*len += n;
	(*buf)[*len] = '\0';
	return 0;
}

void cs_wiped_buffer_free(const void *data, size_t len, void *arg)
{
	(void)arg;
	if (data == NULL)
		return;
	OPENSSL_cleanse((void *)data, len); /* the whole block again in cs_wiping_free */
	cs_wiping_free((void *)data);
}
