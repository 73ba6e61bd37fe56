/*
 * confine_test: the confinement of credsignd's processes (confine.h).
 *
 * Each case forks a child that confines itself and then does work: what
 * the daemon's network and key processes do (threads, memory, files,
 * SQLite in WAL mode, OpenSSL, AF_UNIX sockets and descriptor passing,
 * libevent's epoll loop, the PKCS#11 module with a SoftHSM2 token) must
 * run under the role's seccomp allowlist; what they must never do
 * (execve, AF_INET sockets, ptrace, writable and executable memory,
 * setuid, mount, fork) kills the child by SIGSYS, and the report pipe
 * names the system call. The children report with their exit status
 * (cmocka's assertions are the parent's alone).
 *
 * The privilege drop (server.user) runs only as root; it is skipped
 * otherwise. So is the drop from the systemd unit's key account (not
 * root, CAP_SETUID, CAP_SETGID and CAP_SETPCAP kept: 'daemon' here).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <linux/capability.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sqlite3.h>

#include "confine.h"
#include "token.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZER 1
#endif
#endif
#ifndef SANITIZER
#define SANITIZER 0
#endif

#define CHILD_TIMEOUT_MS 60000
#define NO_FILTER (-1)

static char tmpdir[512];

/* ---- children ------------------------------------------------------------ */

/* In a child: print why and exit with the line number. */
#define CHECK(cond)                                                                             \
	do {                                                                                    \
		if (!(cond)) {                                                                  \
			fprintf(stderr, "child %d: %s:%d: %s failed (errno %d)\n", (int)getpid(), \
				__FILE__, __LINE__, #cond, errno);                              \
			_exit(__LINE__ % 200 + 1);                                              \
		}                                                                               \
	} while (0)

typedef int (*work_fn)(void *arg);

typedef struct {
	int status;         /* waitpid's */
	char report[256];   /* what the report pipe received */
} child_result;

enum { REPORT_PIPE, REPORT_STDERR };

/* Fork a child that confines itself (cs_confine_process; the role's
 * filter unless role is NO_FILTER) and runs fn; exit() then, so that the
 * exit path (atexit handlers, the sanitizers' leak check) runs under the
 * filter too. */
static void run_child(int role, int report, work_fn fn, void *arg, child_result *res)
{
	int p[2];
	memset(res, 0, sizeof(*res));
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char why[256];
		close(p[0]);
		int fd = p[1];
		if (report == REPORT_STDERR) {
			CHECK(dup2(p[1], STDERR_FILENO) == STDERR_FILENO);
			fd = -1;
		}
		if (cs_confine_process(0, 0, why, sizeof(why)) != CS_OK) {
			fprintf(stderr, "cs_confine_process: %s\n", why);
			_exit(90);
		}
		if (role != NO_FILTER && cs_confine_seccomp((cs_confine_role)role, fd, why, sizeof(why)) != CS_OK) {
			fprintf(stderr, "cs_confine_seccomp: %s\n", why);
			_exit(91);
		}
		exit(fn(arg));
	}
	close(p[1]);
	size_t got = 0;
	for (;;) {
		struct pollfd pfd = {.fd = p[0], .events = POLLIN};
		int n = poll(&pfd, 1, CHILD_TIMEOUT_MS);
		if (n <= 0) {
			fprintf(stderr, "child %d: no answer in %d ms: killed\n", (int)pid, CHILD_TIMEOUT_MS);
			kill(pid, SIGKILL);
			break;
		}
		char buf[512];
		ssize_t r = read(p[0], buf, sizeof(buf));
		if (r <= 0)
			break;
		size_t take = (size_t)r < sizeof(res->report) - 1 - got ? (size_t)r : sizeof(res->report) - 1 - got;
		memcpy(res->report + got, buf, take);
		got += take;
	}
	close(p[0]);
	assert_int_equal(waitpid(pid, &res->status, 0), pid);
}

static void expect_exit0(const char *what, const child_result *res)
{
	if (!WIFEXITED(res->status) || WEXITSTATUS(res->status) != 0 || res->report[0] != '\0')
		fprintf(stderr, "%s: status %s %d, report '%s'\n", what, WIFEXITED(res->status) ? "exit" : "signal",
			WIFEXITED(res->status) ? WEXITSTATUS(res->status) : WTERMSIG(res->status), res->report);
	assert_true(WIFEXITED(res->status));
	assert_int_equal(WEXITSTATUS(res->status), 0);
	assert_string_equal(res->report, "");
}

/* ---- allowed work: what the processes do ---------------------------------- */

static void *thread_work(void *arg)
{
	size_t big = (size_t)(uintptr_t)arg;
	unsigned char *small = malloc(100);
	unsigned char *large = malloc(big);
	if (small == NULL || large == NULL) {
		free(small);
		free(large);
		return (void *)1;
	}
	memset(small, 0x5a, 100);
	memset(large, 0xa5, big);
	unsigned sum = 0;
	for (size_t i = 0; i < big; i += 4096)
		sum += large[i];
	free(small);
	free(large);
	return sum != 0 ? NULL : (void *)1;
}

static int work_threads(void)
{
	pthread_t th[8];
	for (size_t i = 0; i < 8; i++)
		CHECK(pthread_create(&th[i], NULL, thread_work, (void *)(uintptr_t)((i + 1) << 20)) == 0);
	for (size_t i = 0; i < 8; i++) {
		void *ret = (void *)1;
		CHECK(pthread_join(th[i], &ret) == 0);
		CHECK(ret == NULL);
	}
	/* a big one (mmap) and many small ones (brk, arenas) */
	void *big = malloc(64u << 20);
	CHECK(big != NULL);
	memset(big, 1, 64u << 20);
	free(big);
	void *small[1000];
	for (size_t i = 0; i < 1000; i++)
		CHECK((small[i] = malloc(16 + i)) != NULL);
	for (size_t i = 0; i < 1000; i++)
		free(small[i]);
	return 0;
}

static int work_files(const char *dir, int with_dirs)
{
	char a[700], b[700], d[700];
	snprintf(a, sizeof(a), "%s/file-%d", dir, (int)getpid());
	snprintf(b, sizeof(b), "%s/file-%d.renamed", dir, (int)getpid());
	int fd = open(a, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	CHECK(write(fd, "confined\n", 9) == 9);
	CHECK(fsync(fd) == 0);
	CHECK(fdatasync(fd) == 0);
	CHECK(flock(fd, LOCK_EX) == 0);
	struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
	CHECK(fcntl(fd, F_SETLK, &lk) == 0);
	CHECK(close(fd) == 0);
	CHECK(rename(a, b) == 0);
	struct stat st;
	CHECK(stat(b, &st) == 0 && st.st_size == 9);
	char buf[16];
	fd = open(b, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0 && read(fd, buf, sizeof(buf)) == 9);
	close(fd);
	CHECK(unlink(b) == 0);
	if (with_dirs) {
		snprintf(d, sizeof(d), "%s/dir-%d", dir, (int)getpid());
		CHECK(mkdir(d, 0700) == 0);
		CHECK(rmdir(d) == 0);
	}
	return 0;
}

static int work_sqlite(const char *dir)
{
	char path[700];
	sqlite3 *db = NULL;
	snprintf(path, sizeof(path), "%s/store-%d.db", dir, (int)getpid());
	CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL) ==
	      SQLITE_OK);
	CHECK(sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=2000;", NULL,
			   NULL, NULL) == SQLITE_OK);
	CHECK(sqlite3_exec(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB); BEGIN IMMEDIATE;", NULL, NULL,
			   NULL) == SQLITE_OK);
	for (int i = 0; i < 100; i++)
		CHECK(sqlite3_exec(db, "INSERT INTO t(v) VALUES (randomblob(200))", NULL, NULL, NULL) == SQLITE_OK);
	CHECK(sqlite3_exec(db, "COMMIT; PRAGMA wal_checkpoint(TRUNCATE);", NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_stmt *st = NULL;
	CHECK(sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &st, NULL) == SQLITE_OK);
	CHECK(sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 100);
	sqlite3_finalize(st);
	CHECK(sqlite3_close(db) == SQLITE_OK);
	unlink(path);
	return 0;
}

static int work_openssl(void)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	CHECK(key != NULL);
	unsigned char sig[128], rnd[64];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	CHECK(md != NULL);
	CHECK(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1);
	CHECK(EVP_DigestSign(md, sig, &siglen, (const unsigned char *)"message", 7) == 1);
	CHECK(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1);
	CHECK(EVP_DigestVerify(md, sig, siglen, (const unsigned char *)"message", 7) == 1);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key);
	CHECK(RAND_bytes(rnd, sizeof(rnd)) == 1);
	CHECK(RAND_priv_bytes(rnd, sizeof(rnd)) == 1);
	/* the secure heap (cs_confine_process) */
	char *secret = OPENSSL_secure_malloc(64);
	CHECK(secret != NULL && CRYPTO_secure_allocated(secret));
	OPENSSL_secure_clear_free(secret, 64);
	return 0;
}

/* A channel (SOCK_SEQPACKET) and descriptor passing (the control pair). */
static int work_sockets(void)
{
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
	CHECK(send(sv[0], "frame", 5, MSG_NOSIGNAL) == 5);
	char buf[16];
	CHECK(recv(sv[1], buf, sizeof(buf), 0) == 5);
	int pass = dup(sv[0]);
	CHECK(pass >= 0);
	union {
		struct cmsghdr h;
		char space[CMSG_SPACE(sizeof(int))];
	} u;
	memset(&u, 0, sizeof(u));
	struct iovec iov = {.iov_base = "x", .iov_len = 1};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.space, .msg_controllen = sizeof(u.space)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &pass, sizeof(int));
	CHECK(sendmsg(sv[0], &msg, MSG_NOSIGNAL) == 1);
	close(pass);
	memset(&u, 0, sizeof(u));
	iov.iov_base = buf;
	iov.iov_len = sizeof(buf);
	msg.msg_controllen = sizeof(u.space);
	CHECK(recvmsg(sv[1], &msg, MSG_CMSG_CLOEXEC) == 1);
	c = CMSG_FIRSTHDR(&msg);
	CHECK(c != NULL && c->cmsg_type == SCM_RIGHTS);
	int got;
	memcpy(&got, CMSG_DATA(c), sizeof(int));
	CHECK(got >= 0 && close(got) == 0);
	close(sv[0]);
	close(sv[1]);
	/* syslog's and sd_notify's kind of socket */
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CHECK(s >= 0);
	struct sockaddr_un addr = {.sun_family = AF_UNIX, .sun_path = "/nonexistent/credsign.sock"};
	CHECK(connect(s, (const struct sockaddr *)&addr, sizeof(addr)) != 0 && errno == ENOENT);
	close(s);
	return 0;
}

static int work_time(void)
{
	struct timespec a, b, d = {.tv_sec = 0, .tv_nsec = 1000000};
	CHECK(clock_gettime(CLOCK_MONOTONIC, &a) == 0);
	CHECK(clock_gettime(CLOCK_REALTIME, &b) == 0);
	CHECK(nanosleep(&d, NULL) == 0);
	CHECK(time(NULL) > 0);
	return 0;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(*(int *)arg)++;
}

static int work_libevent(void)
{
	CHECK(evthread_use_pthreads() == 0);
	struct event_base *base = event_base_new();
	CHECK(base != NULL);
	CHECK(strcmp(event_base_get_method(base), "epoll") == 0);
	int fired = 0;
	struct event *ev = evtimer_new(base, on_timer, &fired);
	struct timeval tv = {0, 10000};
	CHECK(ev != NULL && evtimer_add(ev, &tv) == 0);
	CHECK(event_base_dispatch(base) == 1 && fired == 1);
	event_free(ev);
	event_base_free(base);
	return 0;
}

/* SIGHUP's reload of the access rules loads the configuration again,
 * server.user (getpwnam: NSS) included. */
static const char *const conf_files[] = {"cert.pem", "key.pem", "ca.pem", "module.so", "presets.conf", "user.pin",
					 "words.txt", "credsignd.conf"};

static int work_config(void)
{
	char path[700];
	cs_config *cfg = NULL;
	cs_config_diag diag;
	snprintf(path, sizeof(path), "%s/credsignd.conf", tmpdir);
	cs_err r = cs_config_load(path, &cfg, &diag);
	for (size_t i = 0; i < diag.count; i++)
		fprintf(stderr, "config: %s\n", diag.messages[i]);
	CHECK(r == CS_OK && strcmp(cfg->server.user, "nobody") == 0);
	cs_config_free(cfg);
	cs_config_diag_free(&diag);
	return 0;
}

static int network_work(void *arg)
{
	(void)arg;
	return work_threads() || work_files(tmpdir, 0) || work_sqlite(tmpdir) || work_openssl() || work_sockets() ||
	       work_time() || work_libevent() || work_config();
}

static int key_work(void *arg)
{
	(void)arg;
	return work_threads() || work_files(tmpdir, 1) || work_openssl() || work_sockets() || work_time();
}

static void test_network_allowed(void **state)
{
	(void)state;
	child_result res;
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	run_child(NO_FILTER, REPORT_PIPE, network_work, NULL, &res);
	expect_exit0("network work, unconfined", &res);
	clock_gettime(CLOCK_MONOTONIC, &b);
	run_child(CS_CONFINE_NETWORK, REPORT_PIPE, network_work, NULL, &res);
	expect_exit0("network work", &res);
	struct timespec c;
	clock_gettime(CLOCK_MONOTONIC, &c);
	fprintf(stderr, "network work: %.1f ms unconfined, %.1f ms confined\n",
		(double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6,
		(double)(c.tv_sec - b.tv_sec) * 1e3 + (double)(c.tv_nsec - b.tv_nsec) / 1e6);
}

/* What libpq does to reach a PostgreSQL store by name: resolve it (files,
 * then DNS: a UDP socket, sendmmsg, poll, recvfrom), then a TCP connect
 * (refused here): allowed in the network process of a PostgreSQL store,
 * and the TCP socket not in the one of a SQLite store. */
static int resolve_work(void *arg)
{
	(void)arg;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	if (getaddrinfo("localhost", "5432", &hints, &ai) != 0 || ai == NULL)
		return 10;
	freeaddrinfo(ai);
	ai = NULL;
	/* through the resolver (RES_OPTIONS bounds the wait); the answer does
	 * not matter, the calls made for it do */
	if (getaddrinfo("credsign-db.invalid", "5432", &hints, &ai) == 0)
		freeaddrinfo(ai);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 11;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(1), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	int err = errno;
	close(fd);
	return rc == -1 && err == ECONNREFUSED ? 0 : 12;
}

static void test_database_client_allowed(void **state)
{
	(void)state;
	child_result res;
	setenv("RES_OPTIONS", "timeout:1 attempts:1", 1);
	run_child(CS_CONFINE_NETWORK_DB, REPORT_PIPE, resolve_work, NULL, &res);
	expect_exit0("a PostgreSQL client's calls", &res);
	unsetenv("RES_OPTIONS");
}

static void test_key_allowed(void **state)
{
	(void)state;
	child_result res;
	run_child(CS_CONFINE_KEY, REPORT_PIPE, key_work, NULL, &res);
	expect_exit0("key work", &res);
}

/* ---- forbidden work ---------------------------------------------------- */

static int do_execve(void *arg)
{
	(void)arg;
	char *argv[] = {"/bin/true", NULL};
	char *envp[] = {NULL};
	execve("/bin/true", argv, envp);
	return 3;
}

static int do_socket_inet(void *arg)
{
	int domain = (int)(intptr_t)arg;
	int s = socket(domain, SOCK_STREAM, 0);
	if (s >= 0)
		close(s);
	return 3;
}

static int do_ptrace(void *arg)
{
	(void)arg;
	ptrace(PTRACE_TRACEME, 0, NULL, NULL);
	return 3;
}

static int do_mprotect_rwx(void *arg)
{
	(void)arg;
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 4;
	mprotect(p, 4096, PROT_READ | PROT_WRITE | PROT_EXEC);
	return 3;
}

static int do_mmap_wx(void *arg)
{
	(void)arg;
	void *p = mmap(NULL, 4096, PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p != MAP_FAILED)
		munmap(p, 4096);
	return 3;
}

static int do_setuid(void *arg)
{
	(void)arg;
	syscall(SYS_setuid, 0);
	return 3;
}

static int do_mount(void *arg)
{
	(void)arg;
	mount("none", "/mnt", "tmpfs", 0, NULL);
	return 3;
}

static int do_fork(void *arg)
{
	(void)arg;
	pid_t pid = fork(); /* clone without CLONE_THREAD */
	if (pid == 0)
		_exit(0);
	return 3;
}

static int do_epoll(void *arg)
{
	(void)arg;
	int fd = epoll_create1(EPOLL_CLOEXEC);
	if (fd >= 0)
		close(fd);
	return 3;
}

static int do_accept4(void *arg)
{
	(void)arg;
	accept4(-1, NULL, NULL, 0);
	return 3;
}

static void on_signal(int sig)
{
	(void)sig;
}

/* Code that took over the process hides from the filter: a handler of its
 * own for SIGSYS (the trap would then not end the process) */
static int do_sigsys_handler(void *arg)
{
	(void)arg;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGSYS, &sa, NULL);
	/* had it worked, a forbidden call would now be survived */
	execve("/bin/true", (char *[]){"/bin/true", NULL}, (char *[]){NULL});
	return 3;
}

/* A handler for another signal is allowed */
static int do_other_handler(void *arg)
{
	(void)arg;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	return sigaction(SIGUSR1, &sa, NULL) == 0 ? 0 : 4;
}

typedef struct {
	const char *name; /* the system call the child dies on */
	long nr;
	int role;
	work_fn fn;
	void *arg;
	int sanitizer_allows; /* the sanitizer runtimes need it: allowed in those builds */
} forbidden_case;

static void expect_sigsys(const forbidden_case *c)
{
	child_result res;
	run_child(c->role, REPORT_PIPE, c->fn, c->arg, &res);
	char want[64], name[64];
	snprintf(want, sizeof(want), "syscall %ld\n", c->nr);
	if (!WIFSIGNALED(res.status) || WTERMSIG(res.status) != SIGSYS || strcmp(res.report, want) != 0)
		fprintf(stderr, "%s (%s): status %s %d, report '%s'\n", c->name,
			c->role == CS_CONFINE_KEY ? "key" : "network", WIFEXITED(res.status) ? "exit" : "signal",
			WIFEXITED(res.status) ? WEXITSTATUS(res.status) : WTERMSIG(res.status), res.report);
	assert_true(WIFSIGNALED(res.status));
	assert_int_equal(WTERMSIG(res.status), SIGSYS);
	assert_string_equal(res.report, want);
	assert_string_equal(cs_confine_syscall_name((int)c->nr, name, sizeof(name)), c->name);
}

static void test_forbidden(void **state)
{
	(void)state;
	static const forbidden_case cases[] = {
		{"execve", SYS_execve, CS_CONFINE_NETWORK, do_execve, NULL, 0},
		{"execve", SYS_execve, CS_CONFINE_KEY, do_execve, NULL, 0},
		{"socket", SYS_socket, CS_CONFINE_NETWORK, do_socket_inet, (void *)(intptr_t)AF_INET, 0},
		{"socket", SYS_socket, CS_CONFINE_NETWORK, do_socket_inet, (void *)(intptr_t)AF_INET6, 0},
		{"socket", SYS_socket, CS_CONFINE_KEY, do_socket_inet, (void *)(intptr_t)AF_INET, 0},
		{"socket", SYS_socket, CS_CONFINE_KEY, do_socket_inet, (void *)(intptr_t)AF_NETLINK, 0},
		{"ptrace", SYS_ptrace, CS_CONFINE_NETWORK, do_ptrace, NULL, 1},
		{"ptrace", SYS_ptrace, CS_CONFINE_KEY, do_ptrace, NULL, 1},
		{"mprotect", SYS_mprotect, CS_CONFINE_NETWORK, do_mprotect_rwx, NULL, 0},
		{"mprotect", SYS_mprotect, CS_CONFINE_KEY, do_mprotect_rwx, NULL, 0},
		{"mmap", SYS_mmap, CS_CONFINE_NETWORK, do_mmap_wx, NULL, 0},
		{"setuid", SYS_setuid, CS_CONFINE_NETWORK, do_setuid, NULL, 0},
		{"setuid", SYS_setuid, CS_CONFINE_KEY, do_setuid, NULL, 0},
		{"mount", SYS_mount, CS_CONFINE_NETWORK, do_mount, NULL, 0},
		{"clone", SYS_clone, CS_CONFINE_NETWORK, do_fork, NULL, 1},
		{"clone", SYS_clone, CS_CONFINE_KEY, do_fork, NULL, 1},
		/* the key process has no event loop and accepts nothing */
		{"epoll_create1", SYS_epoll_create1, CS_CONFINE_KEY, do_epoll, NULL, 0},
		{"accept4", SYS_accept4, CS_CONFINE_KEY, do_accept4, NULL, 0},
		/* no handler of its own for SIGSYS */
		{"rt_sigaction", SYS_rt_sigaction, CS_CONFINE_NETWORK, do_sigsys_handler, NULL, 0},
		{"rt_sigaction", SYS_rt_sigaction, CS_CONFINE_KEY, do_sigsys_handler, NULL, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (SANITIZER && cases[i].sanitizer_allows)
			continue;
		expect_sigsys(&cases[i]);
	}
}

static void test_other_handler_allowed(void **state)
{
	(void)state;
	child_result res;
	run_child(CS_CONFINE_NETWORK, REPORT_PIPE, do_other_handler, NULL, &res);
	assert_true(WIFEXITED(res.status));
	assert_int_equal(WEXITSTATUS(res.status), 0);
}

/* Without a report pipe: a line on stderr naming the process and the call. */
static void test_forbidden_report_stderr(void **state)
{
	(void)state;
	child_result res;
	run_child(CS_CONFINE_NETWORK, REPORT_STDERR, do_execve, NULL, &res);
	assert_true(WIFSIGNALED(res.status));
	assert_int_equal(WTERMSIG(res.status), SIGSYS);
	char want[128];
	snprintf(want, sizeof(want), "]: forbidden system call %d (execve): killed by SIGSYS", (int)SYS_execve);
	if (strstr(res.report, want) == NULL || strncmp(res.report, "credsignd[", 10) != 0)
		fprintf(stderr, "report: '%s'\n", res.report);
	assert_int_equal(strncmp(res.report, "credsignd[", 10), 0);
	assert_non_null(strstr(res.report, want));
}

static void test_syscall_name(void **state)
{
	(void)state;
	char buf[32];
	assert_string_equal(cs_confine_syscall_name(SYS_read, buf, sizeof(buf)), "read");
	assert_string_equal(cs_confine_syscall_name(SYS_openat, buf, sizeof(buf)), "openat");
	assert_string_equal(cs_confine_syscall_name(-1, buf, sizeof(buf)), "?");
	assert_string_equal(cs_confine_syscall_name(100000, buf, sizeof(buf)), "?");
	assert_string_equal(cs_confine_syscall_name(SYS_read, buf, 0), "?");
}

/* ---- cs_confine_process ------------------------------------------------- */

static long status_field(const char *field)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	long v = -1;
	size_t n = strlen(field);
	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, field, n) == 0 && line[n] == ':')
			v = strtol(line + n + 1, NULL, strncmp(field, "Cap", 3) == 0 ? 16 : 10);
	if (f != NULL)
		fclose(f);
	return v;
}

static int process_work(void *arg)
{
	(void)arg;
	char why[256];
	/* again, with mlock and the parent-death signal */
	if (cs_confine_process(1, 1, why, sizeof(why)) != CS_OK) {
		fprintf(stderr, "cs_confine_process: %s\n", why);
		return 10;
	}
	struct rlimit rl;
	CHECK(getrlimit(RLIMIT_CORE, &rl) == 0 && rl.rlim_cur == 0 && rl.rlim_max == 0);
	int sig = 0;
	CHECK(prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0) == 0 && sig == SIGKILL);
	CHECK(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == (SANITIZER ? 1 : 0));
	CHECK(CRYPTO_secure_malloc_initialized());
	char *secret = OPENSSL_secure_zalloc(32);
	CHECK(secret != NULL && CRYPTO_secure_allocated(secret));
	OPENSSL_secure_clear_free(secret, 32);
	/* the secure heap's 64 KiB are locked in any case */
	CHECK(status_field("VmLck") >= 64);
	struct rlimit ml;
	CHECK(getrlimit(RLIMIT_MEMLOCK, &ml) == 0);
	if (!SANITIZER && ml.rlim_cur == RLIM_INFINITY) {
		/* mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT): pages locked as
		 * they are touched (VmLck in kB) */
		void *p = malloc(4u << 20);
		CHECK(p != NULL);
		memset(p, 1, 4u << 20);
		CHECK(status_field("VmLck") >= 4096);
		free(p);
	}
	return 0;
}

static void test_process(void **state)
{
	(void)state;
	child_result res;
	run_child(NO_FILTER, REPORT_PIPE, process_work, NULL, &res);
	expect_exit0("cs_confine_process", &res);
}

/* ---- who the network process runs as ------------------------------------ */

static void test_run_as(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
	cs_config cfg;
	cs_run_as who;
	char why[512];
	memset(&cfg, 0, sizeof(cfg));
	/* root without server.user: refused, saying what to do */
	assert_int_equal(cs_confine_run_as(&cfg, &who, why, sizeof(why)), CS_E_CONFIG);
	assert_string_equal(why, "credsignd runs as root: set server.user (and server.group) to an unprivileged "
				 "account, or server.allow_root = true");
	/* allow_root: stays root */
	cfg.server.allow_root = true;
	assert_int_equal(cs_confine_run_as(&cfg, &who, why, sizeof(why)), CS_OK);
	assert_int_equal(who.drop, 0);
	assert_int_equal(who.uid, 0);
	/* a user that is root: refused, allow_root or not */
	cfg.server.user = "root";
	assert_int_equal(cs_confine_run_as(&cfg, &who, why, sizeof(why)), CS_E_CONFIG);
	assert_non_null(strstr(why, "server.user 'root' is root (uid 0)"));
	assert_int_equal(who.drop, 0);
	cfg.server.allow_root = false;
	/* an account: its uid and primary group */
	const struct passwd *pw = getpwnam("nobody");
	assert_non_null(pw);
	uid_t nobody_uid = pw->pw_uid;
	gid_t nobody_gid = pw->pw_gid;
	cfg.server.user = "nobody";
	assert_int_equal(cs_confine_run_as(&cfg, &who, why, sizeof(why)), CS_OK);
	assert_int_equal(who.drop, 1);
	assert_int_equal(who.uid, nobody_uid);
	assert_int_equal(who.gid, nobody_gid);
	assert_string_equal(who.user, "nobody");
	/* a group named */
	const struct group *gr = getgrnam("nogroup");
	assert_non_null(gr);
	gid_t nogroup_gid = gr->gr_gid;
	cfg.server.group = "nogroup";
	assert_int_equal(cs_confine_run_as(&cfg, &who, why, sizeof(why)), CS_OK);
	assert_int_equal(who.gid, nogroup_gid);
	assert_string_equal(who.group, "nogroup");
	/* the root group: refused */
	cfg.server.group = "root";
	assert_int_equal(cs_confine_run_as(&cfg, &who, why, sizeof(why)), CS_E_CONFIG);
	assert_non_null(strstr(why, "gid 0"));
	/* accounts that do not exist */
	cfg.server.group = "no-such-group-cs";
	assert_int_equal(cs_confine_run_as(&cfg, &who, why, sizeof(why)), CS_E_CONFIG);
	assert_string_equal(why, "server.group: no such group 'no-such-group-cs'");
	cfg.server.group = NULL;
	cfg.server.user = "no-such-user-cs";
	assert_int_equal(cs_confine_run_as(&cfg, &who, why, sizeof(why)), CS_E_CONFIG);
	assert_string_equal(why, "server.user: no such user 'no-such-user-cs'");
	/* a group without a user (the loader refuses it; a configuration made
	 * otherwise is refused here too) */
	cfg.server.user = NULL;
	cfg.server.group = "nogroup";
	assert_int_equal(cs_confine_run_as(&cfg, &who, why, sizeof(why)), CS_E_CONFIG);
	assert_string_equal(why, "server.group is set without server.user");
	/* no configuration, or nowhere to put the account */
	assert_int_equal(cs_confine_run_as(NULL, &who, why, sizeof(why)), CS_E_INVALID_ARG);
	assert_string_equal(why, "no configuration");
	assert_int_equal(cs_confine_run_as(&cfg, NULL, why, sizeof(why)), CS_E_INVALID_ARG);
}

/* cs_confine_drop refuses what it must never do, before changing anything */
static void test_drop_refusals(void **state)
{
	(void)state;
	char why[256];
	long bounding = status_field("CapBnd"), no_new_privs = status_field("NoNewPrivs");
	assert_int_equal(cs_confine_drop(NULL, why, sizeof(why)), CS_E_INVALID_ARG);
	assert_string_equal(why, "no account");
	cs_run_as to_root;
	memset(&to_root, 0, sizeof(to_root));
	to_root.drop = 1;
	to_root.uid = 0;
	to_root.gid = 65534;
	assert_int_equal(cs_confine_drop(&to_root, why, sizeof(why)), CS_E_INVALID_ARG);
	assert_string_equal(why, "refusing to switch to uid 0 gid 65534");
	to_root.uid = 65534;
	to_root.gid = 0;
	assert_int_equal(cs_confine_drop(&to_root, why, sizeof(why)), CS_E_INVALID_ARG);
	assert_string_equal(why, "refusing to switch to uid 65534 gid 0");
	/* nothing was dropped: the test still has what it started with */
	assert_int_equal(status_field("CapBnd"), bounding);
	assert_int_equal(status_field("NoNewPrivs"), no_new_privs);
}

/* Started unprivileged: nothing to switch; another account cannot be had. */
static int run_as_unprivileged(void *arg)
{
	(void)arg;
	const struct passwd *pw = getpwnam("nobody");
	CHECK(pw != NULL);
	uid_t uid = pw->pw_uid;
	CHECK(setgroups(0, NULL) == 0 && setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == 0 &&
	      setresuid(uid, uid, uid) == 0);
	cs_config cfg;
	cs_run_as who;
	char why[512];
	memset(&cfg, 0, sizeof(cfg));
	CHECK(cs_confine_run_as(&cfg, &who, why, sizeof(why)) == CS_OK);
	CHECK(who.drop == 0 && who.uid == uid);
	cfg.server.user = "nobody";
	CHECK(cs_confine_run_as(&cfg, &who, why, sizeof(why)) == CS_OK && who.drop == 0);
	cfg.server.user = "root";
	CHECK(cs_confine_run_as(&cfg, &who, why, sizeof(why)) == CS_E_CONFIG);
	CHECK(strstr(why, "cannot switch") != NULL);
	/* a group: the one we run as, or refused naming it */
	cfg.server.user = "nobody";
	const struct group *own = getgrgid(getegid());
	CHECK(own != NULL);
	char own_name[64];
	snprintf(own_name, sizeof(own_name), "%s", own->gr_name);
	cfg.server.group = own_name;
	CHECK(cs_confine_run_as(&cfg, &who, why, sizeof(why)) == CS_OK && who.drop == 0);
	cfg.server.group = "root";
	CHECK(cs_confine_run_as(&cfg, &who, why, sizeof(why)) == CS_E_CONFIG);
	CHECK(strstr(why, "server.group 'root' (gid 0): cannot switch to it") != NULL);
	cfg.server.group = "no-such-group-cs";
	CHECK(cs_confine_run_as(&cfg, &who, why, sizeof(why)) == CS_E_CONFIG);
	CHECK(strcmp(why, "server.group: no such group 'no-such-group-cs'") == 0);
	cfg.server.group = NULL;
	cfg.server.user = "no-such-user-cs";
	CHECK(cs_confine_run_as(&cfg, &who, why, sizeof(why)) == CS_E_CONFIG);
	CHECK(strcmp(why, "server.user: no such user 'no-such-user-cs'") == 0);
	cfg.server.user = "nobody";
	/* the drop without a switch: capabilities and NoNewPrivs only */
	who.drop = 0;
	CHECK(cs_confine_drop(&who, why, sizeof(why)) == CS_OK);
	CHECK(status_field("NoNewPrivs") == 1);
	return 0;
}

static void test_run_as_unprivileged(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
	child_result res;
	run_child(NO_FILTER, REPORT_PIPE, run_as_unprivileged, NULL, &res);
	expect_exit0("run_as unprivileged", &res);
}

/* ---- the privilege drop ------------------------------------------------- */

static int drop_to_nobody(void *arg)
{
	(void)arg;
	cs_config cfg;
	cs_run_as who;
	char why[512];
	memset(&cfg, 0, sizeof(cfg));
	cfg.server.user = "nobody";
	cfg.server.group = "nogroup";
	CHECK(cs_confine_run_as(&cfg, &who, why, sizeof(why)) == CS_OK && who.drop == 1);
	if (cs_confine_drop(&who, why, sizeof(why)) != CS_OK) {
		fprintf(stderr, "cs_confine_drop: %s\n", why);
		return 10;
	}
	uid_t r, e, s;
	gid_t rg, eg, sg, groups[4];
	CHECK(getresuid(&r, &e, &s) == 0 && r == who.uid && e == who.uid && s == who.uid);
	CHECK(getresgid(&rg, &eg, &sg) == 0 && rg == who.gid && eg == who.gid && sg == who.gid);
	CHECK(getgroups(4, groups) == 1 && groups[0] == who.gid);
	CHECK(status_field("CapEff") == 0 && status_field("CapPrm") == 0 && status_field("CapInh") == 0);
	CHECK(status_field("CapBnd") == 0 && status_field("CapAmb") == 0);
	CHECK(status_field("NoNewPrivs") == 1);
	CHECK(setuid(0) == -1 && errno == EPERM);
	CHECK(setgid(0) == -1 && errno == EPERM);
	/* root's files are root's */
	CHECK(open("/etc/shadow", O_RDONLY | O_CLOEXEC) == -1 && errno == EACCES);
	return 0;
}

static void test_drop(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
	child_result res;
	run_child(NO_FILTER, REPORT_PIPE, drop_to_nobody, NULL, &res);
	expect_exit0("drop to nobody", &res);
}

static int drop_caps_only(void *arg)
{
	(void)arg;
	char why[512], path[700];
	/* a file of another user, owner-only: needs CAP_DAC_OVERRIDE */
	snprintf(path, sizeof(path), "%s/not-roots-%d", tmpdir, (int)getpid());
	int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0 && fchown(fd, 65534, 65534) == 0);
	close(fd);
	if (cs_confine_drop_caps(why, sizeof(why)) != CS_OK) {
		fprintf(stderr, "cs_confine_drop_caps: %s\n", why);
		return 10;
	}
	CHECK(geteuid() == 0 && getuid() == 0);
	CHECK(status_field("CapEff") == 0 && status_field("CapPrm") == 0 && status_field("CapBnd") == 0);
	CHECK(status_field("NoNewPrivs") == 1);
	CHECK(open(path, O_RDONLY | O_CLOEXEC) == -1 && errno == EACCES);
	CHECK(unlink(path) == 0);            /* the directory is root's */
	return 0;
}

static void test_drop_caps(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
	child_result res;
	run_child(NO_FILTER, REPORT_PIPE, drop_caps_only, NULL, &res);
	expect_exit0("drop capabilities", &res);
}

/* ---- the unit's key account: not root, CAP_SETUID/SETGID/SETPCAP -------- */

#define CAP_BIT(c) (1u << ((c) % 32))

/* What systemd's User=, SupplementaryGroups= and AmbientCapabilities=CAP_SETUID
 * CAP_SETGID CAP_SETPCAP make (hsm-setup/credsignd.service): uid and gid
 * 'daemon', a supplementary group, those three capabilities effective and
 * permitted (kept across the switch with PR_SET_KEEPCAPS); effective is
 * the set of `effective` (a subset of the three). Returns 0, or the line
 * that failed. */
static int become_key_account(uint32_t effective)
{
	const struct passwd *pw = getpwnam("daemon");
	const struct group *ng = getgrnam("nogroup");
	CHECK(pw != NULL && pw->pw_uid != 0 && ng != NULL);
	uid_t uid = pw->pw_uid;
	gid_t groups[2] = {pw->pw_gid, ng->gr_gid};
	CHECK(prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) == 0);
	CHECK(setgroups(2, groups) == 0 && setresgid(groups[0], groups[0], groups[0]) == 0 &&
	      setresuid(uid, uid, uid) == 0);
	/* the switch from uid 0 emptied the effective set: raise the three again */
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof(data));
	data[0].permitted = CAP_BIT(CAP_SETUID) | CAP_BIT(CAP_SETGID) | CAP_BIT(CAP_SETPCAP);
	data[0].effective = effective;
	CHECK(syscall(SYS_capset, &hdr, data) == 0);
	CHECK(prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) == 0);
	CHECK(geteuid() == uid && getuid() == uid);
	CHECK(status_field("CapPrm") == (long)data[0].permitted && status_field("CapEff") == (long)effective);
	return 0;
}

/* With CAP_SETUID and CAP_SETGID the switch to server.user is made, as
 * from root: every id, no supplementary group but its own, no capability
 * left, neither root nor the key account regained. */
static int key_account_drops(void *arg)
{
	(void)arg;
	CHECK(become_key_account(CAP_BIT(CAP_SETUID) | CAP_BIT(CAP_SETGID) | CAP_BIT(CAP_SETPCAP)) == 0);
	uid_t key_uid = getuid();
	cs_config cfg;
	cs_run_as who;
	char why[512];
	memset(&cfg, 0, sizeof(cfg));
	/* server.user unset: stays as it is, as without the capabilities */
	CHECK(cs_confine_run_as(&cfg, &who, why, sizeof(why)) == CS_OK && who.drop == 0 && who.uid == key_uid);
	/* a user that is root, or missing: refused as from root */
	cfg.server.user = "root";
	CHECK(cs_confine_run_as(&cfg, &who, why, sizeof(why)) == CS_E_CONFIG);
	CHECK(strstr(why, "server.user 'root' is root (uid 0)") != NULL && who.drop == 0);
	cfg.server.user = "nobody";
	cfg.server.group = "nogroup";
	const struct passwd *pw = getpwnam("nobody");
	const struct group *gr = getgrnam("nogroup");
	CHECK(pw != NULL && gr != NULL);
	uid_t nobody = pw->pw_uid;
	gid_t nogroup = gr->gr_gid;
	if (cs_confine_run_as(&cfg, &who, why, sizeof(why)) != CS_OK) {
		fprintf(stderr, "cs_confine_run_as: %s\n", why);
		return 10;
	}
	CHECK(who.drop == 1 && who.uid == nobody && who.gid == nogroup);
	CHECK(strcmp(who.user, "nobody") == 0 && strcmp(who.group, "nogroup") == 0);
	if (cs_confine_drop(&who, why, sizeof(why)) != CS_OK) {
		fprintf(stderr, "cs_confine_drop: %s\n", why);
		return 11;
	}
	uid_t r, e, s;
	gid_t rg, eg, sg, groups[4];
	CHECK(getresuid(&r, &e, &s) == 0 && r == nobody && e == nobody && s == nobody);
	CHECK(getresgid(&rg, &eg, &sg) == 0 && rg == nogroup && eg == nogroup && sg == nogroup);
	CHECK(getgroups(4, groups) == 1 && groups[0] == nogroup);
	CHECK(status_field("CapEff") == 0 && status_field("CapPrm") == 0 && status_field("CapInh") == 0);
	CHECK(status_field("CapBnd") == 0 && status_field("CapAmb") == 0);
	CHECK(status_field("NoNewPrivs") == 1);
	CHECK(setuid(0) == -1 && errno == EPERM);
	CHECK(setuid(key_uid) == -1 && errno == EPERM);
	CHECK(setresuid(key_uid, key_uid, key_uid) == -1 && errno == EPERM);
	CHECK(setgid(0) == -1 && errno == EPERM);
	return 0;
}

/* Without CAP_SETUID effective (permitted only) the switch cannot be made:
 * as an unprivileged start (drop skipped for the account itself, another
 * one refused). */
static int key_account_without_setuid(void *arg)
{
	(void)arg;
	CHECK(become_key_account(CAP_BIT(CAP_SETGID) | CAP_BIT(CAP_SETPCAP)) == 0);
	cs_config cfg;
	cs_run_as who;
	char why[512];
	memset(&cfg, 0, sizeof(cfg));
	cfg.server.user = "nobody";
	CHECK(cs_confine_run_as(&cfg, &who, why, sizeof(why)) == CS_E_CONFIG);
	CHECK(strstr(why, "cannot switch") != NULL);
	cfg.server.user = "daemon";
	CHECK(cs_confine_run_as(&cfg, &who, why, sizeof(why)) == CS_OK && who.drop == 0);
	return 0;
}

/* The key process of that account: every capability dropped, the uid kept. */
static int key_account_drops_caps(void *arg)
{
	(void)arg;
	CHECK(become_key_account(CAP_BIT(CAP_SETUID) | CAP_BIT(CAP_SETGID) | CAP_BIT(CAP_SETPCAP)) == 0);
	uid_t uid = getuid();
	char why[512];
	if (cs_confine_drop_caps(why, sizeof(why)) != CS_OK) {
		fprintf(stderr, "cs_confine_drop_caps: %s\n", why);
		return 10;
	}
	CHECK(getuid() == uid && geteuid() == uid);
	CHECK(status_field("CapEff") == 0 && status_field("CapPrm") == 0 && status_field("CapBnd") == 0);
	CHECK(status_field("NoNewPrivs") == 1);
	CHECK(setuid(0) == -1 && errno == EPERM);
	return 0;
}

static void test_key_account(void **state)
{
	(void)state;
	if (geteuid() != 0 || getpwnam("daemon") == NULL || getgrnam("nogroup") == NULL)
		skip();
	child_result res;
	run_child(NO_FILTER, REPORT_PIPE, key_account_drops, NULL, &res);
	expect_exit0("key account: switch to nobody", &res);
	run_child(NO_FILTER, REPORT_PIPE, key_account_without_setuid, NULL, &res);
	expect_exit0("key account without CAP_SETUID", &res);
	run_child(NO_FILTER, REPORT_PIPE, key_account_drops_caps, NULL, &res);
	expect_exit0("key account: key process drops capabilities", &res);
}

/* ---- the key process's list with the PKCS#11 module loaded -------------- */

#define KEY_LABEL "confine-key"
#define SIGNERS 4

typedef struct {
	cs_token *t;
	const cs_key_ref *key;
	int failed;
} signer;

/* Threads signing at once, as the key process's channel threads do
 * (created after the filter). */
static void *sign_thread(void *arg)
{
	signer *s = arg;
	uint8_t digest[32];
	cs_es256_sig sig;
	for (int i = 0; i < 10 && !s->failed; i++)
		if (cs_token_random(s->t, digest, sizeof(digest)) != CS_OK ||
		    cs_token_sign_es256(s->t, s->key, digest, &sig) != CS_OK)
			s->failed = 1;
	return NULL;
}

static int token_work(void *arg)
{
	int report_fd = *(const int *)arg;
	const char *module = getenv("CREDSIGN_TEST_MODULE"), *dir = getenv("CREDSIGN_TEST_TOKEN_DIR");
	CHECK(module != NULL && dir != NULL);
	char pin[600], why[256];
	snprintf(pin, sizeof(pin), "%s/user.pin", dir);
	cs_token_params p = {.module = module,
			     .token_uri = "pkcs11:token=cstest",
			     .pin_file = pin,
			     .pool_size = SIGNERS,
			     .read_write = 1};
	cs_token *t = NULL;
	CHECK(cs_token_open(&p, &t) == CS_OK);
	cs_key_ref q, key;
	memset(&q, 0, sizeof(q));
	snprintf(q.label, sizeof(q.label), "%s", KEY_LABEL);
	cs_err r = cs_token_find_key(t, &q, &key);
	if (r == CS_E_KEY_NOT_FOUND)
		r = cs_token_generate_p256(t, KEY_LABEL, &key);
	CHECK(r == CS_OK);
	/* the key process: no capabilities (as root), then its allowlist */
	if (geteuid() == 0 && cs_confine_drop_caps(why, sizeof(why)) != CS_OK) {
		fprintf(stderr, "cs_confine_drop_caps: %s\n", why);
		return 10;
	}
	if (cs_confine_seccomp(CS_CONFINE_KEY, report_fd, why, sizeof(why)) != CS_OK) {
		fprintf(stderr, "cs_confine_seccomp: %s\n", why);
		return 11;
	}
	pthread_t th[SIGNERS];
	signer s[SIGNERS];
	for (int i = 0; i < SIGNERS; i++) {
		s[i] = (signer){.t = t, .key = &key, .failed = 0};
		CHECK(pthread_create(&th[i], NULL, sign_thread, &s[i]) == 0);
	}
	for (int i = 0; i < SIGNERS; i++) {
		CHECK(pthread_join(th[i], NULL) == 0);
		CHECK(!s[i].failed);
	}
	uint8_t digest[32], rnd[512];
	cs_es256_sig sig;
	CHECK(cs_token_random(t, digest, sizeof(digest)) == CS_OK);
	CHECK(cs_token_sign_es256(t, &key, digest, &sig) == CS_OK);
	CHECK(cs_token_random(t, rnd, sizeof(rnd)) == CS_OK);
	EVP_PKEY *pub = NULL;
	CHECK(cs_token_public_key(t, &key, &pub) == CS_OK);
	EVP_PKEY_CTX *v = EVP_PKEY_CTX_new(pub, NULL);
	CHECK(v != NULL && EVP_PKEY_verify_init(v) == 1);
	CHECK(EVP_PKEY_verify(v, sig.der, sig.der_len, digest, 32) == 1);
	EVP_PKEY_CTX_free(v);
	EVP_PKEY_free(pub);
	cs_token_info info;
	CHECK(cs_token_get_info(t, &info) == CS_OK && strcmp(info.label, "cstest") == 0);
	cs_key_ref again;
	CHECK(cs_token_find_key(t, &q, &again) == CS_OK && again.id_len == key.id_len);
	cs_token_mechanism mech[CS_TOKEN_MECHANISMS];
	CHECK(cs_token_mechanisms(t, mech) == CS_OK);
	cs_token_close(t);
	return 0;
}

static void test_key_with_token(void **state)
{
	(void)state;
	if (getenv("CREDSIGN_TEST_MODULE") == NULL)
		skip();
	child_result res;
	int p[2];
	/* the filter is applied in the child once the token is open: a report
	 * pipe of its own */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	run_child(NO_FILTER, REPORT_PIPE, token_work, &p[1], &res);
	close(p[1]);
	char report[128] = "";
	ssize_t n = read(p[0], report, sizeof(report) - 1);
	close(p[0]);
	if (n > 0)
		report[n] = '\0';
	if (report[0] != '\0') {
		char name[64];
		fprintf(stderr, "key process with the token: %s (%s)\n", report,
			cs_confine_syscall_name(atoi(report + 8), name, sizeof(name)));
	}
	assert_string_equal(report, "");
	expect_exit0("key process with the token", &res);
}

/* The PIN is read into the secure heap (cs_confine_process made it): with
 * that heap used up, the login fails for want of memory; freed, it works. */
static int pin_in_secure_heap(void *arg)
{
	(void)arg;
	const char *module = getenv("CREDSIGN_TEST_MODULE"), *dir = getenv("CREDSIGN_TEST_TOKEN_DIR");
	CHECK(module != NULL && dir != NULL && CRYPTO_secure_malloc_initialized());
	char pin[600];
	snprintf(pin, sizeof(pin), "%s/user.pin", dir);
	cs_token_params p = {.module = module, .token_uri = "pkcs11:token=cstest", .pin_file = pin, .pool_size = 1};
	static void *held[8192];
	size_t n = 0;
	for (size_t size = 32768; size >= 16; size /= 2)
		while (n < sizeof(held) / sizeof(held[0]) && (held[n] = OPENSSL_secure_malloc(size)) != NULL)
			n++;
	CHECK(n < sizeof(held) / sizeof(held[0]) && OPENSSL_secure_malloc(16) == NULL);
	cs_token *t = NULL;
	cs_err r = cs_token_open(&p, &t);
	CHECK(r == CS_E_NOMEM && t == NULL);
	while (n > 0)
		OPENSSL_secure_free(held[--n]);
	CHECK(CRYPTO_secure_used() == 0);
	CHECK(cs_token_open(&p, &t) == CS_OK);
	cs_token_close(t);
	return 0;
}

static void test_pin_in_secure_heap(void **state)
{
	(void)state;
	if (getenv("CREDSIGN_TEST_MODULE") == NULL)
		skip();
	child_result res;
	run_child(NO_FILTER, REPORT_PIPE, pin_in_secure_heap, NULL, &res);
	expect_exit0("PIN in the secure heap", &res);
}

/* ---- set-up --------------------------------------------------------------- */

static int setup(void **state)
{
	(void)state;
	const char *base = getenv("CREDSIGN_TEST_TMP");
	char tmpl[512];
	snprintf(tmpl, sizeof(tmpl), "%s/confine-XXXXXX", base != NULL ? base : "/tmp");
	if (base != NULL)
		mkdir(base, 0700);
	if (mkdtemp(tmpl) == NULL)
		return -1;
	snprintf(tmpdir, sizeof(tmpdir), "%s", tmpl);
	for (size_t i = 0; i < sizeof(conf_files) / sizeof(conf_files[0]); i++) {
		char path[700];
		snprintf(path, sizeof(path), "%s/%s", tmpdir, conf_files[i]);
		FILE *f = fopen(path, "w");
		if (f == NULL)
			return -1;
		if (strcmp(conf_files[i], "credsignd.conf") == 0)
			fputs("server = { user = \"nobody\"; presets_file = \"presets.conf\"; wordlist_file = \"words.txt\"; };\n"
			      "tls = { cert = \"cert.pem\"; key = \"key.pem\"; ca = \"ca.pem\"; };\n"
			      "pkcs11 = { module = \"./module.so\"; token_uri = \"pkcs11:token=t\"; pin_file = \"user.pin\";\n"
			      "  signing_key = \"pkcs11:object=k\"; };\n"
			      "hardening = { privsep = true; seccomp = true; mlock = false; };\n",
			      f);
		else
			fputs("placeholder\n", f);
		fclose(f);
		chmod(path, 0600);
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(conf_files) / sizeof(conf_files[0]); i++) {
		char path[700];
		snprintf(path, sizeof(path), "%s/%s", tmpdir, conf_files[i]);
		unlink(path);
	}
	return rmdir(tmpdir) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_syscall_name),
		cmocka_unit_test(test_network_allowed),
		cmocka_unit_test(test_database_client_allowed),
		cmocka_unit_test(test_key_allowed),
		cmocka_unit_test(test_forbidden),
		cmocka_unit_test(test_forbidden_report_stderr),
		cmocka_unit_test(test_other_handler_allowed),
		cmocka_unit_test(test_process),
		cmocka_unit_test(test_run_as),
		cmocka_unit_test(test_run_as_unprivileged),
		cmocka_unit_test(test_drop_refusals),
		cmocka_unit_test(test_drop),
		cmocka_unit_test(test_drop_caps),
		cmocka_unit_test(test_key_account),
		cmocka_unit_test(test_key_with_token),
		cmocka_unit_test(test_pin_in_secure_heap),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
