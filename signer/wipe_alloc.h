/*
 * wipe_alloc: allocators that wipe memory when it is freed.
 *
 * cs_json_wiping_allocator() makes jansson wipe every buffer it frees, so
 * JSON documents that held a credential leave nothing behind. Allocation
 * stays plain malloc: strings jansson returns (json_dumps) may be passed to
 * free(), or, when they held a secret, to cs_wiped_buffer_free().
 * cs_wiped_buffer_free() is also the evbuffer cleanup callback for response
 * bodies handed to libevent by reference.
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
/* Append n bytes to the malloc'd text *buf (length *len, capacity *cap),
 * keeping it NUL-terminated and at most max bytes with the NUL; a buffer
 * that must grow is copied and the old one wiped before it is freed (the
 * text may be a credential). 0 on success, -1 (nothing appended) when it
 * would pass max or memory runs out. */
int cs_wiped_append(char **buf, size_t *len, size_t *cap, const void *data, size_t n, size_t max);
/* Matches evbuffer_ref_cleanup_cb: wipes and frees a malloc'd buffer. */
void cs_wiped_buffer_free(const void *data, size_t len, void *arg);

#endif
