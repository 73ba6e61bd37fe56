/* privsep_test: the supervisor (privsep.h) with stand-in key and network
 * processes: the control message's codec; a child that fails before it is
 * ready at the first start stops everything (status 1); a key process that
 * keeps dying is restarted with new channels given to the network process,
 * at most 5 times in 10 s; a network process that dies is restarted with
 * its predecessor's end as the reason; SIGTERM to the supervisor stops both
 * and gives the network process's status; a network process that lost
 * its node id (CS_PRIVSEP_EXIT_NODE_ID) stops the daemon with 1, no
 * restart; a key process that makes a
 * system call outside its seccomp allowlist dies, and the supervisor logs
 * which call it was. Each supervisor runs in a forked process of its own
 * (it changes its signal mask). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sys/syscall.h>

#include "confine.h"
#include "cs_log.h"
#include "privsep.h"

typedef struct {
	char dir[64];
	int key_fails;     /* the key process exits 3 before it is ready */
	int key_dies;      /* the key process exits right after it is ready */
	int network_fails; /* the network process exits with this status (not 0) before it is ready */
	int network_dies_once; /* the first network process exits 9 once ready */
	int network_node_id; /* each network process exits CS_PRIVSEP_EXIT_NODE_ID once ready */
	int key_forbidden; /* the key process loads its seccomp list, then calls execve */
} scenario;

static void append(const scenario *sc, const char *name, const char *text)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", sc->dir, name);
	FILE *f = fopen(path, "a");
	if (f != NULL) {
		fputs(text, f);
		fclose(f);
	}
}

static long file_size(const scenario *sc, const char *name)
{
	char path[128];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", sc->dir, name);
	return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void read_text(const scenario *sc, const char *name, char *buf, size_t len)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", sc->dir, name);
	buf[0] = '\0';
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return;
	size_t n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
}

static int key_main(void *arg, cs_privsep_child *child)
{
	scenario *sc = arg;
	append(sc, "key-starts", "k");
	int status = 0;
	if (sc->key_forbidden) {
		char why[256];
		if (cs_confine_seccomp(CS_CONFINE_KEY, child->report_fd, why, sizeof(why)) != CS_OK)
			return 5;
		char *const argv[] = {(char *)"/bin/true", NULL};
		syscall(SYS_execve, "/bin/true", argv, (char *const[]){NULL});
		return 6; /* not reached: SIGSYS */
	}
	if (sc->key_fails) {
		status = 3;
	} else {
		cs_privsep_ready(child);
		/* serve until the network ends close (or die at once) */
		for (size_t i = 0; !sc->key_dies && i < child->nchannels; i++) {
			char b;
			while (recv(child->channels[i], &b, 1, 0) > 0)
				;
		}
	}
	for (size_t i = 0; i < child->nchannels; i++)
		close(child->channels[i]);
	close(child->control_fd);
	return status;
}

/* The stand-in network process: counts the control messages (each with
 * channels) until SIGTERM (blocked in it: taken here), then returns 7. */
static int network_main(void *arg, cs_privsep_child *child)
{
	scenario *sc = arg;
	int status = 7;
	if (sc->network_fails) {
		status = sc->network_fails;
		goto out;
	}
	if (child->restart_reason != NULL)
		append(sc, "network-reason", child->restart_reason);
	cs_privsep_ready(child);
	append(sc, "network-ready", "n");
	if (sc->network_dies_once && child->restart_reason == NULL) {
		status = 9;
		goto out;
	}
	if (sc->network_node_id) {
		status = CS_PRIVSEP_EXIT_NODE_ID;
		goto out;
	}
	sigset_t term;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	for (int stopping = 0;;) {
		struct timespec tick = {0, 20 * 1000 * 1000};
		if (!stopping && sigtimedwait(&term, NULL, &tick) == SIGTERM)
			stopping = 1; /* what was sent before it is read first */
		struct pollfd pfd = {.fd = child->control_fd, .events = POLLIN};
		if (poll(&pfd, 1, 0) != 1) {
			if (stopping)
				break;
			continue;
		}
		unsigned char msg[256];
		union {
			char buf[CMSG_SPACE(sizeof(int) * CS_PRIVSEP_CHANNELS_MAX)];
			struct cmsghdr align;
		} u;
		struct iovec iov = {.iov_base = msg, .iov_len = sizeof(msg)};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
				    .msg_controllen = sizeof(u.buf)};
		ssize_t n = recvmsg(child->control_fd, &mh, MSG_CMSG_CLOEXEC);
		if (n <= 0)
			break;
		char reason[CS_PRIVSEP_REASON_MAX + 1];
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		size_t nfds = cm != NULL ? (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int) : 0;
		for (size_t i = 0; i < nfds; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			close(fd);
		}
		if (cs_privsep_control_decode(msg, (size_t)n, reason) == CS_OK && nfds == child->nchannels &&
		    strstr(reason, "key process pid ") != NULL && strstr(reason, "exited with status 0") != NULL)
			append(sc, "control", "c");
	}
out:
	for (size_t i = 0; i < child->nchannels; i++)
		close(child->channels[i]);
	close(child->control_fd);
	return status;
}

/* A supervisor in a process of its own; returns its pid. */
static pid_t supervise(scenario *sc)
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* the supervisor's log, for the tests that read it */
		char log[128];
		snprintf(log, sizeof(log), "%s/log", sc->dir);
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, 2);
			close(fd);
		}
		cs_privsep_params p = {.nchannels = 3, .key_main = key_main, .network_main = network_main, .arg = sc};
		exit(cs_privsep_supervise(&p));
	}
	return pid;
}

static int wait_status(pid_t pid)
{
	int ws;
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	assert_true(WIFEXITED(ws));
	return WEXITSTATUS(ws);
}

static void wait_for(const scenario *sc, const char *name, long size)
{
	for (int i = 0; i < 500 && file_size(sc, name) < size; i++)
		usleep(20 * 1000);
	assert_true(file_size(sc, name) >= size);
}

static int setup(void **state)
{
	scenario *sc = calloc(1, sizeof(*sc));
	assert_non_null(sc);
	snprintf(sc->dir, sizeof(sc->dir), "/tmp/privsep_test.XXXXXX");
	assert_non_null(mkdtemp(sc->dir));
	*state = sc;
	return 0;
}

static int teardown(void **state)
{
	scenario *sc = *state;
	static const char *const names[] = {"key-starts", "network-ready", "network-reason", "control", "log"};
	char path[128];
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", sc->dir, names[i]);
		unlink(path);
	}
	rmdir(sc->dir);
	free(sc);
	return 0;
}

static void test_control_codec(void **state)
{
	(void)state;
	unsigned char msg[4 + CS_PRIVSEP_REASON_MAX + 8];
	char reason[CS_PRIVSEP_REASON_MAX + 1];
	size_t n = cs_privsep_control_encode("key process pid 12 killed by signal SIGKILL", msg, sizeof(msg));
	assert_int_equal(n, 4 + strlen("key process pid 12 killed by signal SIGKILL"));
	assert_int_equal(cs_privsep_control_decode(msg, n, reason), CS_OK);
	assert_string_equal(reason, "key process pid 12 killed by signal SIGKILL");
	/* an empty reason is one; a short message, another kind, a control byte are not */
	assert_int_equal(cs_privsep_control_decode(msg, 4, reason), CS_OK);
	assert_string_equal(reason, "");
	assert_int_equal(cs_privsep_control_decode(msg, 3, reason), CS_E_IPC);
	msg[3] = 2;
	assert_int_equal(cs_privsep_control_decode(msg, n, reason), CS_E_IPC);
	msg[3] = 1;
	msg[0] = 1;
	assert_int_equal(cs_privsep_control_decode(msg, n, reason), CS_E_IPC);
	msg[0] = 0;
	msg[6] = '\n';
	assert_int_equal(cs_privsep_control_decode(msg, n, reason), CS_E_IPC);
	assert_string_equal(reason, "");
	/* the reason is cut at its maximum when encoded, refused beyond it when decoded */
	char longer[CS_PRIVSEP_REASON_MAX + 20];
	memset(longer, 'x', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	n = cs_privsep_control_encode(longer, msg, sizeof(msg));
	assert_int_equal(n, 4 + CS_PRIVSEP_REASON_MAX);
	assert_int_equal(cs_privsep_control_decode(msg, n, reason), CS_OK);
	assert_int_equal(strlen(reason), CS_PRIVSEP_REASON_MAX);
	msg[n] = 'x';
	assert_int_equal(cs_privsep_control_decode(msg, n + 1, reason), CS_E_IPC);
	assert_int_equal(cs_privsep_control_encode("abc", msg, 6), 0);
}

static void test_key_fails_at_start(void **state)
{
	scenario *sc = *state;
	sc->key_fails = 1;
	assert_int_equal(wait_status(supervise(sc)), 1);
	assert_int_equal(file_size(sc, "key-starts"), 1); /* not restarted */
	assert_int_equal(file_size(sc, "network-ready"), -1); /* never started */
}

static void test_network_fails_at_start(void **state)
{
	scenario *sc = *state;
	sc->network_fails = 5;
	assert_int_equal(wait_status(supervise(sc)), 1);
	assert_int_equal(file_size(sc, "key-starts"), 1);
}

/* The store's database unreachable at start: the daemon stops with the
 * status systemd restarts, not 1 */
static void test_network_store_unreachable_at_start(void **state)
{
	scenario *sc = *state;
	sc->network_fails = CS_PRIVSEP_EXIT_STORE_UNREACHABLE;
	assert_int_equal(wait_status(supervise(sc)), CS_PRIVSEP_EXIT_STORE_UNREACHABLE);
	assert_int_equal(file_size(sc, "key-starts"), 1);
}

static void test_key_restarts_bounded(void **state)
{
	scenario *sc = *state;
	sc->key_dies = 1;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* each dies as soon as it is ready: the sixth failed start in a row
	 * stops everything (status 3: a crash loop, which systemd may restart) */
	assert_int_equal(wait_status(supervise(sc)), CS_PRIVSEP_EXIT_CRASH_LOOP);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(file_size(sc, "key-starts"), 6);
	/* each restarted key process's channels reached the network process, with the reason */
	if (file_size(sc, "control") != 5) {
		char log[8192];
		read_text(sc, "log", log, sizeof(log));
		fail_msg("%ld control messages, not 5; the supervisor's log:\n%s", file_size(sc, "control"), log);
	}
	/* delays of 100, 200, 400, 800, 1600 ms */
	double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_true(took >= 3.0);
	assert_true(took < 10.0);
}

static void test_network_restart_and_sigterm(void **state)
{
	scenario *sc = *state;
	sc->network_dies_once = 1;
	pid_t sup = supervise(sc);
	wait_for(sc, "network-ready", 2); /* the second network process is ready */
	char reason[256];
	read_text(sc, "network-reason", reason, sizeof(reason));
	assert_non_null(strstr(reason, "network process pid "));
	assert_non_null(strstr(reason, " exited with status 9"));
	assert_int_equal(file_size(sc, "key-starts"), 2); /* a new key process with it */
	kill(sup, SIGTERM);
	assert_int_equal(wait_status(sup), 7); /* the network process's status */
}

/* The network process stopped because another node took its id: final,
 * no restart (it could not claim the id), the daemon exits 1 */
static void test_network_node_id_lost_stops(void **state)
{
	scenario *sc = *state;
	sc->network_node_id = 1;
	assert_int_equal(wait_status(supervise(sc)), 1);
	assert_int_equal(file_size(sc, "network-ready"), 1); /* not restarted */
	assert_int_equal(file_size(sc, "key-starts"), 1);
	char log[4096];
	read_text(sc, "log", log, sizeof(log));
	if (strstr(log, "gave up server.node_id") == NULL)
		fail_msg("the supervisor did not say why it stopped; its log:\n%s", log);
}

static void test_key_forbidden_call_named(void **state)
{
	scenario *sc = *state;
	sc->key_forbidden = 1;
	/* it dies before it is ready at the first start: everything stops */
	assert_int_equal(wait_status(supervise(sc)), 1);
	char log[4096];
	read_text(sc, "log", log, sizeof(log));
	if (strstr(log, "killed by signal SIGSYS (forbidden system call execve)") == NULL)
		fail_msg("the supervisor did not name the forbidden call; its log:\n%s", log);
}

int main(void)
{
	cs_log_configure(CS_LOG_WARN, CS_LOG_LOGFMT, 2);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_control_codec),
		cmocka_unit_test_setup_teardown(test_key_fails_at_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_network_fails_at_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_network_store_unreachable_at_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_restarts_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_network_restart_and_sigterm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_network_node_id_lost_stops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_forbidden_call_named, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
