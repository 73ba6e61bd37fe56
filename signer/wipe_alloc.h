/*
 * wipe_alloc: allocators that wipe memory when it is freed, and a secret
 * scope that takes their blocks from OpenSSL's secure heap.
 *
 * cs_json_wiping_allocator() makes jansson wipe every buffer it frees, so
 * JSON documents that held a credential leave nothing behind.
 * cs_event_wiping_allocator() does the same for libevent.
 *
 * Secret scope: while a thread has one open (cs_secret_scope_enter ..
 * cs_secret_scope_leave, nesting allowed), the wiping allocators of
 * jansson and libevent take new blocks from OpenSSL's secure heap
 * (CRYPTO_secure_malloc_init: mlocked, MADV_DONTDUMP, guard pages) while
 * it is initialised and has room, else from malloc. Every free and realloc
 * of the wiping allocators, and cs_wiped_buffer_free, return a block where
 * it came from (CRYPTO_secure_allocated), wiping all of it first. So
 * inside a scope: a block jansson or libevent allocates must be released
 * through them (json_decref, evbuffer_free, ...) or, for the text jansson
 * returns (json_dumps), through cs_wiped_buffer_free or
 * cs_secret_free — never with free(). Outside every scope the blocks are
 * plain malloc blocks, and free() stays valid for them.
 */
#ifndef CS_WIPE_ALLOC_H
#define CS_WIPE_ALLOC_H

#include <stddef.h>

void cs_json_wiping_allocator(void);
/* The same for libevent (event_set_mem_functions): every evbuffer chain it
 * frees is wiped, so a reply copied inside libevent (cs_server joins a
 * reply's headers and body into one chunk, one TLS record) leaves nothing
 * behind. Call before any other libevent call. */
void cs_event_wiping_allocator(void);

/* Open and close this thread's secret scope (see above); a leave matches
 * an enter. Blocks allocated in a scope may be freed after it closes, on
 * any thread. */
void cs_secret_scope_enter(void);
void cs_secret_scope_leave(void);
/* Non-zero while this thread has a scope open. */
int cs_secret_scope_open(void);

/* The allocator both install (also for tests): malloc, or the secure heap
 * in a secret scope while it has room; realloc keeps a block's bytes,
 * moves a secure block to the secure heap again while it has room, wipes
 * a moved block before releasing it; free wipes the whole block and
 * releases it where it came from. */
void *cs_wiping_malloc(size_t size);
void *cs_wiping_realloc(void *ptr, size_t size);
void cs_wiping_free(void *ptr);

/* n zeroed bytes for a secret: from the secure heap while it has room,
 * else from calloc; NULL when n is 0 or memory runs out. Release with
 * cs_secret_free. */
void *cs_secret_alloc(size_t n) __attribute__((warn_unused_result, malloc));
/* Wipe the whole block and release it where it came from (secure heap or
 * malloc). NULL: nothing. */
void cs_secret_free(void *ptr);

/* Append n bytes to the malloc'd text *buf (length *len, capacity *cap),
 * keeping it NUL-terminated and at most max bytes with the NUL; a buffer
 * that must grow is copied and the old one wiped before it is freed (the
 * text may be a credential). 0 on success, -1 (nothing appended) when it
 * would pass max or memory runs out. */
int cs_wiped_append(char **buf, size_t *len, size_t *cap, const void *data, size_t n, size_t max);
/* Matches evbuffer_ref_cleanup_cb: wipes a buffer (the whole block, at
 * least len bytes) and frees it where it came from (the secure heap or
 * malloc). */
void cs_wiped_buffer_free(const void *data, size_t len, void *arg);

#endif
