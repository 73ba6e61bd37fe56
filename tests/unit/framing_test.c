/* framing_test: the strict header-section scan, the parsed-field checks,
 * and the refusal summary's bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "http_framing.h"
#include "refusal_summary.h"

/* Feed text whole, then again one byte at a time: the same verdict. */
static const char *scan(const char *text, size_t *header_bytes)
{
	cs_framing whole, bytewise;
	cs_framing_reset(&whole);
	size_t n = cs_framing_feed(&whole, (const unsigned char *)text, strlen(text));
	cs_framing_reset(&bytewise);
	size_t m = 0;
	for (size_t i = 0; text[i] != '\0'; i++)
		m += cs_framing_feed(&bytewise, (const unsigned char *)text + i, 1);
	assert_int_equal(n, m);
	assert_int_equal(whole.in_body, bytewise.in_body);
	assert_true(whole.defect == bytewise.defect);
	if (header_bytes != NULL)
		*header_bytes = n;
	return whole.defect;
}

static void test_well_formed_requests_pass(void **state)
{
	(void)state;
	size_t n;
	const char *get = "GET /healthz HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
	assert_null(scan(get, &n));
	assert_int_equal(n, strlen(get));
	/* the header section ends at the empty line: the body is not scanned */
	const char *post = "POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n\n\r \t\0x";
	assert_null(scan(post, &n));
	assert_int_equal(n, strlen(post) - 4); /* the 4 body bytes are not header */
	/* an empty line before the request line is ignored (RFC 9112 2.2) */
	assert_null(scan("\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", NULL));
	/* values may hold spaces, tabs and colons */
	assert_null(scan("GET / HTTP/1.1\r\nHost: a:1\r\nX-A: b\tc d: e\r\n\r\n", NULL));
	cs_framing f;
	cs_framing_reset(&f);
	cs_framing_feed(&f, (const unsigned char *)get, strlen(get));
	assert_true(f.in_body);
}

static void test_defects_are_found(void **state)
{
	(void)state;
	assert_non_null(scan("GET / HTTP/1.1\nHost: x\r\n\r\n", NULL));          /* bare LF */
	assert_non_null(scan("GET / HTTP/1.1\r\nHost: x\n\r\n", NULL));          /* bare LF */
	assert_non_null(scan("GET / HTTP/1.1\r\nHost: x\r\n\n", NULL));          /* bare LF end */
	assert_non_null(scan("GET / HTTP/1.1\rHost: x\r\n\r\n", NULL));          /* bare CR */
	assert_non_null(scan("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", NULL)); /* obs-fold */
	assert_non_null(scan("GET / HTTP/1.1\r\nHost: x\r\n\tfolded\r\n\r\n", NULL));
	assert_non_null(scan("POST / HTTP/1.1\r\nContent-Length : 5\r\n\r\n", NULL));
	assert_non_null(scan("POST / HTTP/1.1\r\nContent-Length\t: 5\r\n\r\n", NULL));
	assert_non_null(scan("GET / HTTP/1.1\r\n: empty\r\n\r\n", NULL));
	assert_non_null(scan("GET / HTTP/1.1\r\nBad(name): x\r\n\r\n", NULL));
	assert_non_null(scan("GET / HTTP/1.1\r\nNo colon at all\r\n\r\n", NULL));
	/* the request line: METHOD SP TARGET SP HTTP/1.x, visible target */
	assert_non_null(scan("GET  / HTTP/1.1\r\nHost: x\r\n\r\n", NULL));
	assert_non_null(scan("GET / HTTP/1.1 \r\nHost: x\r\n\r\n", NULL));
	assert_non_null(scan("GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", NULL));
	assert_non_null(scan("GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n", NULL));
	assert_non_null(scan("GET /\xff HTTP/1.1\r\nHost: x\r\n\r\n", NULL));
	assert_non_null(scan("GET / HTTP/1.10\r\nHost: x\r\n\r\n", NULL));
	assert_non_null(scan("GET / HTTP/1.2\r\nHost: x\r\n\r\n", NULL));
	assert_non_null(scan("GET / http/1.1\r\nHost: x\r\n\r\n", NULL));
	assert_non_null(scan("GET /\r\nHost: x\r\n\r\n", NULL));
	assert_non_null(scan("G(T / HTTP/1.1\r\nHost: x\r\n\r\n", NULL));
	assert_null(scan("GET /a?b=c%20d HTTP/1.0\r\n\r\n", NULL));
	assert_non_null(scan("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n", NULL));
	assert_non_null(scan("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x7f\r\n\r\n", NULL));
	assert_null(scan("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\tb\r\n\r\n", NULL));
	/* a NUL anywhere in the header section */
	cs_framing f;
	cs_framing_reset(&f);
	const unsigned char nul[] = "GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n";
	cs_framing_feed(&f, nul, sizeof(nul) - 1);
	assert_non_null(f.defect);
	/* the first defect stays; later input is ignored */
	cs_framing_reset(&f);
	cs_framing_feed(&f, (const unsigned char *)"GET / HTTP/1.1\n", 15);
	const char *first = f.defect;
	assert_non_null(first);
	assert_int_equal(cs_framing_feed(&f, (const unsigned char *)"X : y\r\n", 7), 0);
	assert_ptr_equal(f.defect, first);
}

static void add(struct evkeyvalq *h, const char *k, const char *v)
{
	assert_int_equal(evhttp_add_header(h, k, v), 0);
}

static const char *check(const struct evkeyvalq *h, enum evhttp_cmd_type method, int http_1_1)
{
	int status = 0;
	const char *why = cs_framing_check_request(h, (int)method, http_1_1, &status);
	assert_true(why == NULL || status == 400 || status == 405 || status == 411);
	return why;
}

static int status_of(const struct evkeyvalq *h, enum evhttp_cmd_type method)
{
	int status = 0;
	return cs_framing_check_request(h, (int)method, 1, &status) != NULL ? status : 0;
}

static void test_parsed_field_checks(void **state)
{
	(void)state;
	struct evkeyvalq h;
	TAILQ_INIT(&h);
	add(&h, "Host", "x");
	add(&h, "Content-Length", "5");
	assert_null(check(&h, EVHTTP_REQ_GET, 1));
	add(&h, "content-length", "7");
	assert_non_null(check(&h, EVHTTP_REQ_GET, 1)); /* two lengths */
	evhttp_clear_headers(&h);
	add(&h, "Host", "x");
	add(&h, "Content-Length", "5");
	add(&h, "Transfer-Encoding", "chunked");
	assert_non_null(check(&h, EVHTTP_REQ_GET, 1)); /* both */
	evhttp_clear_headers(&h);
	add(&h, "Host", "x");
	add(&h, "HOST", "y");
	assert_non_null(check(&h, EVHTTP_REQ_GET, 1)); /* two hosts */
	evhttp_clear_headers(&h);
	assert_non_null(check(&h, EVHTTP_REQ_GET, 1)); /* HTTP/1.1 without Host */
	assert_null(check(&h, EVHTTP_REQ_GET, 0));     /* HTTP/1.0 may omit it */
	evhttp_clear_headers(&h);
	add(&h, "Host", "a, b");
	assert_int_equal(status_of(&h, EVHTTP_REQ_GET), 400); /* not one host */
	evhttp_clear_headers(&h);
	add(&h, "Host", "x");
	assert_int_equal(status_of(&h, EVHTTP_REQ_POST), 0); /* no length, no coding: no body */
	assert_int_equal(status_of(&h, EVHTTP_REQ_CONNECT), 405);
	assert_int_equal(status_of(&h, EVHTTP_REQ_GET), 0);
	add(&h, "Transfer-Encoding", "identity");
	assert_int_equal(status_of(&h, EVHTTP_REQ_POST), 411); /* any coding: send a length */
	assert_int_equal(status_of(&h, EVHTTP_REQ_HEAD), 400); /* a body HEAD cannot have */
	evhttp_clear_headers(&h);
	add(&h, "Host", "x");
	add(&h, "Content-Length", "+17");
	assert_int_equal(status_of(&h, EVHTTP_REQ_POST), 400);
	evhttp_clear_headers(&h);
	add(&h, "Host", "x");
	add(&h, "Content-Length", "17");
	assert_int_equal(status_of(&h, EVHTTP_REQ_POST), 0);
	assert_int_equal(status_of(&h, EVHTTP_REQ_TRACE), 400);
	evhttp_clear_headers(&h);
	add(&h, "Host", "x");
	add(&h, "Content-Length", "0");
	assert_int_equal(status_of(&h, EVHTTP_REQ_HEAD), 0);
	evhttp_clear_headers(&h);
}

typedef struct {
	int rows;
	int64_t total;
	int fail;
	char last_object[512];
} flushed;

static int collect(void *arg, const cs_refusal_row *row)
{
	flushed *f = arg;
	if (f->fail)
		return 1;
	f->rows++;
	f->total += row->count;
	snprintf(f->last_object, sizeof(f->last_object), "%s", row->object);
	return 0;
}

static void test_refusal_summary_is_bounded(void **state)
{
	(void)state;
	cs_refusal_summary *s = NULL;
	assert_int_equal(cs_refusal_summary_new(&s), 0);
	/* 500 refusals of one source and reason: one row counting all 500 */
	int fresh = 0;
	for (int i = 0; i < 500; i++) {
		char name[32];
		snprintf(name, sizeof(name), "spiffe://evil/%d", i % 10);
		fresh += cs_refusal_summary_add(s, "127.0.0.9", "self-signed certificate", name);
	}
	assert_int_equal(fresh, 1);
	flushed f = {0};
	assert_int_equal(cs_refusal_summary_flush(s, collect, &f), 500);
	assert_int_equal(f.rows, 1);
	assert_non_null(strstr(f.last_object, "src=127.0.0.9 count=500 "));
	assert_non_null(strstr(f.last_object, "claimed=spiffe://evil/0,spiffe://evil/1,spiffe://evil/2 (+350 naming others)"));
	/* emptied */
	memset(&f, 0, sizeof(f));
	assert_int_equal(cs_refusal_summary_flush(s, collect, &f), 0);
	assert_int_equal(f.rows, 0);
	/* 10,000 sources: at most CS_REFUSAL_KEYS + 1 rows, every refusal counted */
	for (int i = 0; i < 10000; i++) {
		char src[32];
		snprintf(src, sizeof(src), "10.0.%d.%d", i / 256, i % 256);
		cs_refusal_summary_add(s, src, "unable to get local issuer certificate", NULL);
	}
	memset(&f, 0, sizeof(f));
	assert_int_equal(cs_refusal_summary_flush(s, collect, &f), 10000);
	assert_int_equal(f.rows, CS_REFUSAL_KEYS + 1);
	assert_int_equal(f.total, 10000);
	/* a failed write keeps the counts for the next flush */
	cs_refusal_summary_add(s, "127.0.0.9", "bad", "a\nb\x01");
	memset(&f, 0, sizeof(f));
	f.fail = 1;
	assert_int_equal(cs_refusal_summary_flush(s, collect, &f), 0);
	f.fail = 0;
	assert_int_equal(cs_refusal_summary_flush(s, collect, &f), 1);
	assert_non_null(strstr(f.last_object, "claimed=a?b?")); /* sanitised */
	cs_refusal_summary_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_well_formed_requests_pass),
		cmocka_unit_test(test_defects_are_found),
		cmocka_unit_test(test_parsed_field_checks),
		cmocka_unit_test(test_refusal_summary_is_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
