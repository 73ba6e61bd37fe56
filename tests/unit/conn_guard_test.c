/* conn_guard_test: admission of handshaking connections over real sockets
 * (conn_guard.h): the source each is counted under (IPv4, IPv6, a local
 * socket, none), which connection gives way when the overall or a
 * source's budget is full, and a lifetime that does not cut off an answer
 * still leaving. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "conn_guard.h"

#define MAX_CONNS 8

typedef struct {
	struct event_base *base;
	cs_conn_guard *guard;
	cs_conn *conn[MAX_CONNS];
	struct bufferevent *bev[MAX_CONNS];
	int peer[MAX_CONNS]; /* the client's end (-1: none) */
	int n;
} fixture;

static void run_for_ms(fixture *f, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	event_base_loopexit(f->base, &tv);
	event_base_dispatch(f->base);
}

static void sleep_ms(int ms)
{
	struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&t, NULL);
}

static void setup_guard(fixture *f, int max_handshakes, int per_source, int lifetime_s)
{
	memset(f, 0, sizeof(*f));
	cs_conn_limits l = {.handshake_timeout_ms = 10000, .request_timeout_ms = 10000,
			    .max_connection_seconds = lifetime_s, .max_handshakes = max_handshakes,
			    .max_handshakes_per_source = per_source, .max_connections = 8,
			    .max_request_bytes = 65536, .max_per_identity = 8};
	f->base = event_base_new();
	assert_non_null(f->base);
	assert_int_equal(cs_conn_guard_new(&l, &f->guard), CS_OK);
}

static void teardown_guard(fixture *f)
{
	for (int i = 0; i < f->n; i++) {
		cs_conn_free(f->conn[i]);
		bufferevent_free(f->bev[i]);
		if (f->peer[i] >= 0)
			close(f->peer[i]);
	}
	cs_conn_guard_free(f->guard);
	event_base_free(f->base);
}

/* A connection of the server's end fd (-1: none) admitted as the server
 * does (attach, then the loop's turn); its index. */
static int add_conn(fixture *f, int fd, int peer)
{
	assert_true(f->n < MAX_CONNS);
	int i = f->n++;
	if (fd >= 0)
		evutil_make_socket_nonblocking(fd);
	f->peer[i] = peer;
	f->conn[i] = cs_conn_new(f->guard, f->base);
	assert_non_null(f->conn[i]);
	f->bev[i] = bufferevent_socket_new(f->base, fd, BEV_OPT_CLOSE_ON_FREE);
	assert_non_null(f->bev[i]);
	cs_conn_attach(f->conn[i], f->bev[i]);
	event_base_loop(f->base, EVLOOP_NONBLOCK);
	return i;
}

static int add_local(fixture *f)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	return add_conn(f, sv[0], sv[1]);
}

/* A TCP connection over the loopback of family (AF_INET, AF_INET6); -1
 * when the family is not available here. */
static int add_tcp(fixture *f, int family)
{
	struct sockaddr_storage ss = {0};
	socklen_t len;
	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*a);
	}
	int l = socket(family, SOCK_STREAM, 0);
	if (l < 0)
		return -1;
	if (bind(l, (struct sockaddr *)&ss, len) != 0 || listen(l, 4) != 0 ||
	    getsockname(l, (struct sockaddr *)&ss, &len) != 0) {
		close(l);
		return -1;
	}
	int c = socket(family, SOCK_STREAM, 0);
	assert_true(c >= 0);
	assert_int_equal(connect(c, (struct sockaddr *)&ss, len), 0);
	int s = accept(l, NULL, NULL);
	assert_true(s >= 0);
	close(l);
	return add_conn(f, s, c);
}

/* The peer sends a whole TLS record opening a handshake (a ClientHello). */
static void send_hello(fixture *f, int i)
{
	static const unsigned char hello[] = {0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x00, 0x00, 0x00};
	assert_int_equal(write(f->peer[i], hello, sizeof(hello)), (ssize_t)sizeof(hello));
}

/* A local connection whose hello is waiting when it is admitted. */
static int add_local_hello(fixture *f)
{
	static const unsigned char hello[] = {0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x00, 0x00, 0x00};
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[1], hello, sizeof(hello)), (ssize_t)sizeof(hello));
	return add_conn(f, sv[0], sv[1]);
}

/* The guard counts connections handshaking and evicted as expected. */
static void assert_counts(fixture *f, int handshaking_want, long evicted_want)
{
	int handshaking, authenticated;
	long evicted, timed_out;
	cs_conn_guard_counts(f->guard, &handshaking, &authenticated, &evicted, &timed_out);
	assert_int_equal(handshaking, handshaking_want);
	assert_int_equal(evicted, evicted_want);
}

/* Each connection is counted under its peer's address: IPv4 and IPv6 in
 * text, a local socket as "local", one without a socket as "unknown". */
static void test_sources(void **state)
{
	(void)state;
	fixture f;
	setup_guard(&f, 8, 8, 60);
	int local = add_local(&f);
	int v4 = add_tcp(&f, AF_INET);
	int v6 = add_tcp(&f, AF_INET6);
	int none = add_conn(&f, -1, -1);
	assert_string_equal(cs_conn_source(f.conn[local]), "local");
	assert_true(v4 >= 0);
	assert_string_equal(cs_conn_source(f.conn[v4]), "127.0.0.1");
	if (v6 >= 0)
		assert_string_equal(cs_conn_source(f.conn[v6]), "::1");
	assert_string_equal(cs_conn_source(f.conn[none]), "unknown");
	assert_counts(&f, f.n, 0);
	for (int i = 0; i < f.n; i++)
		assert_false(cs_conn_closing(f.conn[i]));
	teardown_guard(&f);
}

/* The overall budget full of connections that all sent their hello: a
 * newcomer whose hello is waiting gets in and the oldest gives way. */
static void test_all_spoke_oldest_gives_way(void **state)
{
	(void)state;
	fixture f;
	setup_guard(&f, 2, 8, 60);
	int a = add_local(&f), b = add_local(&f);
	send_hello(&f, a);
	send_hello(&f, b);
	int c = add_local_hello(&f);
	run_for_ms(&f, 20);
	assert_true(cs_conn_closing(f.conn[a]));
	assert_false(cs_conn_closing(f.conn[b]));
	assert_false(cs_conn_closing(f.conn[c]));
	assert_counts(&f, 2, 1);
	teardown_guard(&f);
}

/* The overall budget full of silent connections past their grace period:
 * a silent newcomer gets in and the oldest silent one gives way. */
static void test_overall_budget_oldest_silent(void **state)
{
	(void)state;
	fixture f;
	setup_guard(&f, 2, 8, 60);
	int a = add_local(&f), b = add_local(&f);
	sleep_ms(150);
	int c = add_local(&f);
	run_for_ms(&f, 20);
	assert_true(cs_conn_closing(f.conn[a]));
	assert_false(cs_conn_closing(f.conn[b]));
	assert_false(cs_conn_closing(f.conn[c]));
	assert_counts(&f, 2, 1);
	teardown_guard(&f);
}

/* A source over its budget makes room among its own connections only: an
 * older connection of another source keeps its slot. */
static void test_source_budget_spares_others(void **state)
{
	(void)state;
	fixture f;
	setup_guard(&f, 8, 1, 60);
	int other = add_tcp(&f, AF_INET);
	assert_true(other >= 0);
	int mine = add_local(&f);
	sleep_ms(150);
	int newcomer = add_local(&f);
	run_for_ms(&f, 20);
	assert_false(cs_conn_closing(f.conn[other]));
	assert_true(cs_conn_closing(f.conn[mine]));
	assert_false(cs_conn_closing(f.conn[newcomer]));
	assert_counts(&f, 2, 1);
	teardown_guard(&f);
}

/* At the end of its lifetime a connection whose last answer is still
 * leaving is not cut off; once it has left (and a grace of idleness), the
 * connection is closed. */
static void test_lifetime_waits_for_answer(void **state)
{
	(void)state;
	fixture f;
	setup_guard(&f, 8, 8, 0);
	int a = add_local(&f);
	cs_conn_handshake_done(f.conn[a]);
	bufferevent_disable(f.bev[a], EV_WRITE);
	assert_int_equal(bufferevent_write(f.bev[a], "HTTP/1.1 200 OK\r\n", 17), 0);
	run_for_ms(&f, 120);
	assert_false(cs_conn_closing(f.conn[a]));
	/* the answer leaves (the peer's socket takes it) */
	bufferevent_enable(f.bev[a], EV_WRITE);
	run_for_ms(&f, 20);
	assert_int_equal(evbuffer_get_length(bufferevent_get_output(f.bev[a])), 0);
	assert_false(cs_conn_closing(f.conn[a])); /* idle: a grace for a request on its way */
	run_for_ms(&f, 1300);
	assert_true(cs_conn_closing(f.conn[a]));
	char got[32];
	assert_int_equal(read(f.peer[a], got, sizeof(got)), 17); /* the whole answer arrived */
	assert_memory_equal(got, "HTTP/1.1 200 OK\r\n", 17);
	teardown_guard(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sources),
		cmocka_unit_test(test_all_spoke_oldest_gives_way),
		cmocka_unit_test(test_overall_budget_oldest_silent),
		cmocka_unit_test(test_source_budget_spares_others),
		cmocka_unit_test(test_lifetime_waits_for_answer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
