/* wipe_alloc: see wipe_alloc.h. */
#include "wipe_alloc.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include <jansson.h>
#include <openssl/crypto.h>

/* Plain malloc blocks, so free() stays valid for anything jansson returns;
 * jansson's own frees wipe the whole usable block first. */
static void wiping_free(void *ptr)
{
	if (ptr == NULL)
		return;
	OPENSSL_cleanse(ptr, malloc_usable_size(ptr));
	free(ptr);
}

void cs_json_wiping_allocator(void)
{
	json_set_alloc_funcs(malloc, wiping_free);
}

/* A moved block is wiped before it is freed. */
static void *wiping_realloc(void *ptr, size_t size)
{
	if (ptr == NULL)
		return malloc(size);
	size_t old = malloc_usable_size(ptr);
	if (size <= old)
		return ptr; /* the block stays; its tail is wiped when it is freed */
	void *grown = malloc(size);
	if (grown == NULL)
		return NULL;
	memcpy(grown, ptr, old);
	wiping_free(ptr);
	return grown;
}

void cs_event_wiping_allocator(void)
{
	event_set_mem_functions(malloc, wiping_realloc, wiping_free);
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
			OPENSSL_cleanse(*buf, *cap);
			free(*buf);
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
	OPENSSL_cleanse((void *)data, len);
	free((void *)data);
}
