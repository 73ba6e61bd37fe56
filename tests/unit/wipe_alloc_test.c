/*
 * wipe_alloc (wipe_alloc.h): the secret scope. With OpenSSL's secure heap
 * initialised (as confine.c does in the daemon), blocks jansson and
 * libevent allocate inside a scope come from it, outside it from malloc;
 * every free and realloc returns a block where it came from; a full heap
 * falls back to malloc. Without a secure heap everything is malloc.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include "wipe_alloc.h"

#define HEAP_BYTES (64 * 1024)

/* A JSON document built and serialised in the current context. */
static char *credential_text(const char *credential)
{
	json_t *doc = json_pack("{s:s, s:i}", "credential", credential, "length", (int)strlen(credential));
	assert_non_null(doc);
	char *text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	assert_non_null(text);
	return text;
}

/* Before any secure heap: a scope changes nothing, every path is malloc's. */
static void test_no_secure_heap(void **state)
{
	(void)state;
	assert_false(CRYPTO_secure_malloc_initialized());
	cs_secret_scope_enter();
	assert_true(cs_secret_scope_open());
	char *text = credential_text("hunter2-hunter2");
	void *p = cs_wiping_malloc(100);
	p = cs_wiping_realloc(p, 5000);
	char *secret = cs_secret_alloc(64);
	cs_secret_scope_leave();
	assert_false(cs_secret_scope_open());
	assert_non_null(p);
	assert_non_null(secret);
	assert_false(CRYPTO_secure_allocated(text));
	assert_false(CRYPTO_secure_allocated(secret));
	for (size_t i = 0; i < 64; i++)
		assert_int_equal(secret[i], 0);
	free(text); /* outside every heap of ours: free() is valid */
	cs_wiping_free(p);
	cs_secret_free(secret);
	cs_wiped_buffer_free(NULL, 0, NULL);
	cs_secret_free(NULL);
	assert_null(cs_secret_alloc(0));
}

static int init_heap(void **state)
{
	(void)state;
	return CRYPTO_secure_malloc_init(HEAP_BYTES, 16) != 0 ? 0 : -1;
}

static void test_scope_takes_the_secure_heap(void **state)
{
	(void)state;
	size_t used = CRYPTO_secure_used();
	void *outside = cs_wiping_malloc(200);
	assert_false(CRYPTO_secure_allocated(outside));
	cs_secret_scope_enter();
	cs_secret_scope_enter(); /* nested */
	void *inner = cs_wiping_malloc(200);
	cs_secret_scope_leave();
	assert_true(cs_secret_scope_open()); /* still the outer one */
	void *outer = cs_wiping_malloc(200);
	cs_secret_scope_leave();
	assert_false(cs_secret_scope_open());
	cs_secret_scope_leave(); /* an extra leave is harmless */
	assert_false(cs_secret_scope_open());
	void *after = cs_wiping_malloc(200);
	assert_true(CRYPTO_secure_allocated(inner));
	assert_true(CRYPTO_secure_allocated(outer));
	assert_false(CRYPTO_secure_allocated(after));
	assert_true(CRYPTO_secure_used() > used);
	/* each back where it came from, the scope closed or not */
	cs_wiping_free(outside);
	cs_wiping_free(inner);
	cs_wiping_free(outer);
	cs_wiping_free(after);
	assert_int_equal(CRYPTO_secure_used(), used);
}

/* The scope is the thread's own. */
static void *allocate_here(void *arg)
{
	(void)arg;
	return cs_wiping_malloc(64);
}

static void test_scope_is_per_thread(void **state)
{
	(void)state;
	pthread_t t;
	void *theirs = NULL;
	cs_secret_scope_enter();
	assert_int_equal(pthread_create(&t, NULL, allocate_here, NULL), 0);
	assert_int_equal(pthread_join(t, &theirs), 0);
	void *mine = cs_wiping_malloc(64);
	cs_secret_scope_leave();
	assert_false(CRYPTO_secure_allocated(theirs));
	assert_true(CRYPTO_secure_allocated(mine));
	cs_wiping_free(theirs);
	cs_wiping_free(mine);
}

static void fill(unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 7 + 1);
}

static void check(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		assert_int_equal(p[i], (unsigned char)(i * 7 + 1));
}

static void test_realloc_across(void **state)
{
	(void)state;
	size_t used = CRYPTO_secure_used();
	/* made in a scope, grown outside it: still secure, bytes kept */
	cs_secret_scope_enter();
	unsigned char *a = cs_wiping_malloc(100);
	cs_secret_scope_leave();
	assert_true(CRYPTO_secure_allocated(a));
	fill(a, 100);
	a = cs_wiping_realloc(a, 3000);
	assert_true(CRYPTO_secure_allocated(a));
	assert_true(CRYPTO_secure_actual_size(a) >= 3000);
	check(a, 100);
	/* shrinking keeps the block */
	assert_ptr_equal(cs_wiping_realloc(a, 10), a);
	/* a malloc block grown in a scope moves to the secure heap */
	unsigned char *b = cs_wiping_malloc(100);
	assert_false(CRYPTO_secure_allocated(b));
	fill(b, 100);
	cs_secret_scope_enter();
	b = cs_wiping_realloc(b, 2000);
	cs_secret_scope_leave();
	assert_true(CRYPTO_secure_allocated(b));
	check(b, 100);
	/* a malloc block grown outside: malloc */
	unsigned char *c = cs_wiping_realloc(NULL, 50);
	fill(c, 50);
	c = cs_wiping_realloc(c, 5000);
	assert_false(CRYPTO_secure_allocated(c));
	check(c, 50);
	/* a secure block too big for the heap: malloc, bytes kept */
	a = cs_wiping_realloc(a, 2 * HEAP_BYTES);
	assert_non_null(a);
	assert_false(CRYPTO_secure_allocated(a));
	check(a, 100);
	cs_wiping_free(a);
	cs_wiping_free(b);
	cs_wiping_free(c);
	assert_int_equal(CRYPTO_secure_used(), used);
}

/* The generate handler's path: json_pack and json_dumps in a scope, the
 * text released by cs_wiped_buffer_free (directly, or by libevent as the
 * cleanup of a reference). */
static void test_json_in_scope(void **state)
{
	(void)state;
	size_t used = CRYPTO_secure_used();
	const char *credential = "correct-horse-battery-staple";
	cs_secret_scope_enter();
	char *text = credential_text(credential);
	cs_secret_scope_leave();
	assert_true(CRYPTO_secure_allocated(text));
	assert_non_null(strstr(text, credential));
	size_t n = strlen(text);
	cs_wiped_buffer_free(text, n, NULL);
	/* wiped: nothing of it past the free list's links OpenSSL writes at
	 * the start of a freed block */
	for (size_t i = 2 * sizeof(void *); i < n; i++)
		assert_int_equal(((volatile char *)text)[i], 0);
	assert_int_equal(CRYPTO_secure_used(), used);

	/* handed to libevent by reference, chains made in the scope */
	cs_secret_scope_enter();
	text = credential_text(credential);
	struct evbuffer *buf = evbuffer_new();
	assert_non_null(buf);
	assert_int_equal(evbuffer_add(buf, "HTTP/1.1 200 OK\r\n\r\n", 19), 0);
	assert_int_equal(evbuffer_add_reference(buf, text, strlen(text), cs_wiped_buffer_free, NULL), 0);
	/* the joined copy (server.c's join_reply) */
	unsigned char *joined = evbuffer_pullup(buf, -1);
	cs_secret_scope_leave();
	assert_non_null(joined);
	assert_true(CRYPTO_secure_allocated(joined));
	assert_memory_equal(joined + 19, "{\"credential\":", 14);
	evbuffer_free(buf); /* frees the chains and, through the cleanup, the text */
	assert_int_equal(CRYPTO_secure_used(), used);
}

/* A full heap: malloc, freed as malloc, and nothing on OpenSSL's error
 * queue. */
static void test_full_heap_falls_back(void **state)
{
	(void)state;
	size_t used = CRYPTO_secure_used();
	enum { MAX_BLOCKS = HEAP_BYTES / 1024 + 2 };
	void *blocks[MAX_BLOCKS];
	size_t n = 0;
	ERR_clear_error();
	cs_secret_scope_enter();
	while (n < MAX_BLOCKS) {
		blocks[n] = cs_wiping_malloc(1024);
		assert_non_null(blocks[n]);
		if (!CRYPTO_secure_allocated(blocks[n++]))
			break;
	}
	/* the heap is full: what follows is malloc's */
	void *more = cs_wiping_malloc(1024);
	char *text = credential_text("still-served");
	char *secret = cs_secret_alloc(4096);
	cs_secret_scope_leave();
	assert_true(n > 1);
	assert_false(CRYPTO_secure_allocated(blocks[n - 1]));
	assert_false(CRYPTO_secure_allocated(more));
	assert_false(CRYPTO_secure_allocated(text));
	assert_non_null(secret);
	assert_false(CRYPTO_secure_allocated(secret));
	assert_int_equal(secret[4095], 0);
	assert_int_equal(ERR_peek_error(), 0);
	/* growing a secure block when there is no room: malloc */
	blocks[0] = cs_wiping_realloc(blocks[0], 2048);
	assert_non_null(blocks[0]);
	assert_false(CRYPTO_secure_allocated(blocks[0]));
	cs_wiped_buffer_free(text, strlen(text), NULL);
	cs_secret_free(secret);
	cs_wiping_free(more);
	for (size_t i = 0; i < n; i++)
		cs_wiping_free(blocks[i]);
	assert_int_equal(CRYPTO_secure_used(), used);
	/* room again */
	secret = cs_secret_alloc(4096);
	assert_true(CRYPTO_secure_allocated(secret));
	cs_secret_free(secret);
}

/* cs_wiped_append grows a text held in the secure heap: the old block goes
 * back to it. */
static void test_append_releases_where_it_came_from(void **state)
{
	(void)state;
	size_t used = CRYPTO_secure_used();
	char *buf = cs_secret_alloc(8);
	size_t len = 0, cap = 8;
	assert_int_equal(cs_wiped_append(&buf, &len, &cap, "abc", 3, 100), 0);
	assert_int_equal(cs_wiped_append(&buf, &len, &cap, "defghijkl", 9, 100), 0);
	assert_string_equal(buf, "abcdefghijkl");
	assert_int_equal(CRYPTO_secure_used(), used); /* the secure block was released */
	assert_int_equal(cs_wiped_append(&buf, &len, &cap, "x", 100, 100), -1);
	cs_wiped_buffer_free(buf, len, NULL);
}

int main(void)
{
	cs_json_wiping_allocator();
	cs_event_wiping_allocator();
	const struct CMUnitTest before[] = {
		cmocka_unit_test(test_no_secure_heap),
	};
	const struct CMUnitTest with_heap[] = {
		cmocka_unit_test(test_scope_takes_the_secure_heap),
		cmocka_unit_test(test_scope_is_per_thread),
		cmocka_unit_test(test_realloc_across),
		cmocka_unit_test(test_json_in_scope),
		cmocka_unit_test(test_full_heap_falls_back),
		cmocka_unit_test(test_append_releases_where_it_came_from),
	};
	int failed = cmocka_run_group_tests_name("without a secure heap", before, NULL, NULL);
	return failed + cmocka_run_group_tests_name("with a secure heap", with_heap, init_heap, NULL);
}
