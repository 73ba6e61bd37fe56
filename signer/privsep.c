/*
 * privsep: the supervisor of credsignd's key and network processes, and the
 * network process's receiver of a restarted key process's channels (see
 * privsep.h).
 *
 * The supervisor is one thread: every event it waits for is a descriptor
 * (a signalfd for SIGCHLD, SIGTERM, SIGINT and SIGHUP; each child's ready
 * and report pipes) in one poll, with a timeout for the next timed action
 * (a delayed restart, a stop that takes too long).
 */
#include "privsep.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "confine.h"
#include "cs_log.h"
#include "metrics.h"

/* A child that ends before it is ready, or less than QUICK_END_MS after,
 * failed to start: RESTART_MAX such ends in a row are restarted, the next
 * stops the supervisor (a
 * crash loop is not hidden); a child that served longer is restarted
 * however often it is killed. */
#define QUICK_END_MS 1000
#define RESTART_MAX 5
#define RESTART_DELAY_MS 100     /* the first restart's delay; doubled per failed start in a row */
#define KEY_STOP_MS 10000        /* SIGTERM to the key process, then SIGKILL */
#define NETWORK_STOP_MS 30000    /* a forwarded SIGTERM, then SIGKILL (the drain takes 10 s at most) */

/* ---- the control message ------------------------------------------------------ */

size_t cs_privsep_control_encode(const char *reason, unsigned char *buf, size_t cap)
{
	size_t n = strnlen(reason, CS_PRIVSEP_REASON_MAX);
	if (cap < 4 + n)
		return 0;
	buf[0] = buf[1] = buf[2] = 0;
	buf[3] = (unsigned char)CS_PRIVSEP_NEW_CHANNELS;
	memcpy(buf + 4, reason, n);
	return 4 + n;
}

cs_err cs_privsep_control_decode(const unsigned char *msg, size_t len, char reason[CS_PRIVSEP_REASON_MAX + 1])
{
	reason[0] = '\0';
	if (len < 4 || len - 4 > CS_PRIVSEP_REASON_MAX)
		return CS_E_IPC;
	uint32_t kind = (uint32_t)msg[0] << 24 | (uint32_t)msg[1] << 16 | (uint32_t)msg[2] << 8 | msg[3];
	if (kind != CS_PRIVSEP_NEW_CHANNELS)
		return CS_E_IPC;
	for (size_t i = 4; i < len; i++)
		if (msg[i] < 0x20 || msg[i] > 0x7e)
			return CS_E_IPC;
	memcpy(reason, msg + 4, len - 4);
	reason[len - 4] = '\0';
	return CS_OK;
}

/* ---- small helpers ------------------------------------------------------------- */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void close_fds(int *fds, size_t *n)
{
	for (size_t i = 0; i < *n; i++)
		close_fd(&fds[i]);
	*n = 0;
}

/* "SIGKILL" ("signal 64" for one without a name) into buf. */
static const char *signal_name(int sig, char *buf, size_t len)
{
	const char *abbrev = sigabbrev_np(sig);
	if (abbrev != NULL)
		snprintf(buf, len, "SIG%s", abbrev);
	else
		snprintf(buf, len, "signal %d", sig);
	return buf;
}

void cs_privsep_ready(cs_privsep_child *child)
{
	if (child->ready_fd < 0)
		return;
	static const char byte = 'R';
	ssize_t n;
	do
		n = write(child->ready_fd, &byte, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		cs_log_warn("cannot tell the supervisor this process is ready: %s", strerror(errno));
	close_fd(&child->ready_fd);
}

/* ---- the supervisor ------------------------------------------------------------ */

typedef struct {
	const char *name;   /* "key process", "network process" */
	pid_t pid;          /* 0: not running */
	int ready;          /* it said so */
	int64_t ready_at;   /* when (monotonic ms) */
	int ready_fd;       /* read end of its ready pipe; -1 */
	int report_fd;      /* read end of its SIGSYS report pipe; -1 */
	char report[64];    /* what it reported there ("syscall NNN") */
	size_t report_len;
	int64_t kill_at;    /* when a stop escalates to SIGKILL (monotonic ms); 0: none */
} child;

typedef enum { RESTART_NONE, RESTART_KEY, RESTART_BOTH } restart_kind;

typedef struct {
	const cs_privsep_params *p;
	size_t nchannels;
	pid_t self;
	sigset_t caller_mask;
	int sfd;                 /* signalfd */
	child key, net;
	int control;             /* the supervisor's end of the control pair; -1 */
	int pending[CS_PRIVSEP_CHANNELS_MAX]; /* network ends of the key process's channels, until given */
	size_t npending;
	int starting;            /* the first start: a child that fails before ready stops all */
	int stopping;            /* a stop was asked for, or the supervisor gave up */
	int status;              /* exit status */
	restart_kind restart;    /* what restarts at restart_at */
	int64_t restart_at;
	unsigned failed_starts;  /* children that ended before or soon after ready, in a row */
	char reason[CS_PRIVSEP_REASON_MAX + 1];  /* the last child's end */
	char restart_reason[CS_PRIVSEP_REASON_MAX + 1]; /* the end the pending restart answers */
} sup;

/* In a freshly forked child: die with the supervisor (and at once when it
 * is already gone: the race between fork and prctl), close what is the
 * supervisor's, restore the signal mask. */
static void child_setup(sup *s, child *me, const sigset_t *mask)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 || getppid() != s->self)
		_exit(1);
	close_fd(&s->sfd);
	close_fd(&s->control);
	close_fd(&s->key.ready_fd);
	close_fd(&s->key.report_fd);
	close_fd(&s->net.ready_fd);
	close_fd(&s->net.report_fd);
	if (me == &s->key)
		close_fds(s->pending, &s->npending); /* the network process's ends */
	/* systemd's watchdog names the main process (WATCHDOG_PID): the network
	 * process pings it (NotifyAccess=all), so the variable names it there;
	 * the key process does not ping */
	if (getenv("WATCHDOG_PID") != NULL) {
		if (me == &s->net) {
			char pid[24];
			snprintf(pid, sizeof(pid), "%ld", (long)getpid());
			setenv("WATCHDOG_PID", pid, 1);
		} else {
			unsetenv("WATCHDOG_PID");
			unsetenv("WATCHDOG_USEC");
		}
	}
	signal(SIGCHLD, SIG_DFL);
	pthread_sigmask(SIG_SETMASK, mask, NULL);
}

/* Fork a child running main with what it is given in c (its descriptors
 * are the supervisor's to close after the fork: in the child they stay).
 * CS_OK with the child's pid recorded. */
static cs_err spawn(sup *s, child *ch, cs_privsep_main main_fn, cs_privsep_child *c)
{
	int ready[2] = {-1, -1}, report[2] = {-1, -1};
	/* the report pipe never blocks the dying child's SIGSYS handler */
	if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(report, O_CLOEXEC | O_NONBLOCK) != 0) {
		cs_log_error("supervisor: cannot make the %s's pipes: %s", ch->name, strerror(errno));
		close_fd(&ready[0]);
		close_fd(&ready[1]);
		return CS_E_INTERNAL;
	}
	ch->ready_fd = ready[0];
	ch->report_fd = report[0];
	ch->ready = 0;
	ch->report_len = 0;
	ch->report[0] = '\0';
	ch->kill_at = 0;
	c->ready_fd = ready[1];
	c->report_fd = report[1];
	sigset_t mask = s->caller_mask;
	if (ch == &s->net) { /* the server takes these synchronously */
		sigaddset(&mask, SIGTERM);
		sigaddset(&mask, SIGINT);
		sigaddset(&mask, SIGHUP);
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		child_setup(s, ch, &mask);
		exit(main_fn(s->p->arg, c));
	}
	close_fd(&ready[1]);
	close_fd(&report[1]);
	if (pid < 0) {
		cs_log_error("supervisor: cannot start the %s: fork: %s", ch->name, strerror(errno));
		close_fd(&ch->ready_fd);
		close_fd(&ch->report_fd);
		return CS_E_INTERNAL;
	}
	ch->pid = pid;
	cs_log_info("supervisor: %s pid %ld started", ch->name, (long)pid);
	return CS_OK;
}

/* New channels: the key process's ends in keys[], the network's in
 * s->pending (given to the network process when the key process is ready). */
static cs_err make_channels(sup *s, int *keys)
{
	close_fds(s->pending, &s->npending);
	for (size_t i = 0; i < s->nchannels; i++) {
		int pair[2];
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
			cs_log_error("supervisor: cannot make the key process's channels: %s", strerror(errno));
			for (size_t j = 0; j < i; j++)
				close(keys[j]);
			close_fds(s->pending, &s->npending);
			return CS_E_INTERNAL;
		}
		keys[i] = pair[0];
		s->pending[s->npending++] = pair[1];
	}
	return CS_OK;
}

static cs_err start_key(sup *s)
{
	cs_privsep_child c = {.nchannels = s->nchannels, .control_fd = -1, .ready_fd = -1, .report_fd = -1};
	cs_err r = make_channels(s, c.channels);
	if (r != CS_OK)
		return r;
	r = spawn(s, &s->key, s->p->key_main, &c);
	size_t n = c.nchannels;
	close_fds(c.channels, &n); /* the child's now (or nobody's) */
	if (r != CS_OK)
		close_fds(s->pending, &s->npending);
	return r;
}

/* The network process, with the pending channels and a new control pair. */
static cs_err start_network(sup *s, const char *reason)
{
	cs_privsep_child c = {.control_fd = -1, .ready_fd = -1, .report_fd = -1, .restart_reason = reason};
	int pair[2];
	close_fd(&s->control);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
		cs_log_error("supervisor: cannot make the control channel: %s", strerror(errno));
		return CS_E_INTERNAL;
	}
	s->control = pair[0];
	c.control_fd = pair[1];
	memcpy(c.channels, s->pending, s->npending * sizeof(int));
	c.nchannels = s->npending;
	s->npending = 0;
	cs_err r = spawn(s, &s->net, s->p->network_main, &c);
	close_fd(&c.control_fd);
	close_fds(c.channels, &c.nchannels);
	return r;
}

/* The pending channels to the running network process, with the reason. */
static void send_channels(sup *s)
{
	unsigned char msg[4 + CS_PRIVSEP_REASON_MAX];
	union {
		char buf[CMSG_SPACE(sizeof(int) * CS_PRIVSEP_CHANNELS_MAX)];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof(u));
	size_t len = cs_privsep_control_encode(s->restart_reason, msg, sizeof(msg));
	struct iovec iov = {.iov_base = msg, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = CMSG_SPACE(sizeof(int) * s->npending)};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * s->npending);
	memcpy(CMSG_DATA(cm), s->pending, sizeof(int) * s->npending);
	if (s->control < 0 || sendmsg(s->control, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)len)
		cs_log_error("supervisor: the new key process's channels cannot be given to the network process: %s",
			     s->control < 0 ? "no control channel" : strerror(errno));
	else
		cs_log_info("supervisor: key process pid %ld ready; its %zu channel(s) given to the network process",
			    (long)s->key.pid, s->npending);
	close_fds(s->pending, &s->npending);
}

/* Read what the child wrote to its report pipe (non-blocking). */
static void read_report(child *ch)
{
	while (ch->report_fd >= 0) {
		char buf[64];
		ssize_t n = read(ch->report_fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0 || errno != EAGAIN)
				close_fd(&ch->report_fd);
			return;
		}
		size_t room = sizeof(ch->report) - 1 - ch->report_len, take = (size_t)n < room ? (size_t)n : room;
		memcpy(ch->report + ch->report_len, buf, take);
		ch->report_len += take;
		ch->report[ch->report_len] = '\0';
	}
}

/* Log a child's end and say it in s->reason ("key process pid 12 killed by
 * signal SIGSYS (forbidden system call ptrace)"); expected (a stop the
 * supervisor asked for, or a key process's end that may be one): at info
 * level when it exited 0 or by SIGTERM.
 * Returns the status it would give the daemon: its exit status, or 1. */
static int log_end(sup *s, child *ch, int wstatus, int expected)
{
	char sig[32], what[128] = "";
	int status = 1;
	read_report(ch);
	if (WIFEXITED(wstatus)) {
		status = WEXITSTATUS(wstatus);
		snprintf(what, sizeof(what), "exited with status %d", status);
	} else if (WIFSIGNALED(wstatus)) {
		int nr = -1, sysnr;
		const char *at = strstr(ch->report, "syscall ");
		if (WTERMSIG(wstatus) == SIGSYS && at != NULL && sscanf(at, "syscall %d", &sysnr) == 1)
			nr = sysnr;
		char name[64];
		if (nr >= 0)
			snprintf(what, sizeof(what), "killed by signal SIGSYS (forbidden system call %s)",
				 cs_confine_syscall_name(nr, name, sizeof(name)));
		else
			snprintf(what, sizeof(what), "killed by signal %s", signal_name(WTERMSIG(wstatus), sig, sizeof(sig)));
	}
	snprintf(s->reason, sizeof(s->reason), "%s pid %ld %s", ch->name, (long)ch->pid, what);
	if (expected && (status == 0 || (WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGTERM)))
		cs_log_info("supervisor: %s", s->reason);
	else
		cs_log_error("supervisor: %s", s->reason);
	ch->pid = 0;
	ch->ready = 0;
	ch->kill_at = 0;
	close_fd(&ch->ready_fd);
	close_fd(&ch->report_fd);
	return status;
}

static void stop_child(child *ch, int sig, int64_t grace_ms)
{
	if (ch->pid <= 0)
		return;
	kill(ch->pid, sig);
	if (ch->kill_at == 0)
		ch->kill_at = now_ms() + grace_ms;
}

/* Stop everything: the network process first (it drains), the key
 * process once it is gone. */
static void stop_all(sup *s, int sig, int status)
{
	if (!s->stopping)
		s->status = status;
	s->stopping = 1;
	s->restart = RESTART_NONE;
	close_fds(s->pending, &s->npending);
	if (s->net.pid > 0)
		stop_child(&s->net, sig, NETWORK_STOP_MS);
	else
		stop_child(&s->key, SIGTERM, KEY_STOP_MS);
}

/* A restart of `what` after a child's end (failed: it ended before or
 * within QUICK_END_MS of being ready), delayed and bounded (RESTART_MAX
 * failed starts in a row). */
static void schedule_restart(sup *s, restart_kind what, int failed)
{
	int64_t now = now_ms();
	s->failed_starts = failed ? s->failed_starts + 1 : 0;
	if (s->failed_starts > RESTART_MAX) {
		cs_log_error("supervisor: %u children in a row ended before or less than %d ms after they were "
			     "ready: stopping", s->failed_starts, QUICK_END_MS);
		stop_all(s, SIGTERM, CS_PRIVSEP_EXIT_CRASH_LOOP);
		return;
	}
	/* the reason of what restarts: a network process's end outranks a key process's */
	if (s->restart == RESTART_NONE || (what == RESTART_BOTH && s->restart == RESTART_KEY))
		snprintf(s->restart_reason, sizeof(s->restart_reason), "%s", s->reason);
	int64_t delay = (int64_t)RESTART_DELAY_MS << (s->failed_starts > 0 ? s->failed_starts - 1 : 0);
	if (what == RESTART_BOTH || s->restart == RESTART_BOTH)
		s->restart = RESTART_BOTH;
	else
		s->restart = RESTART_KEY;
	s->restart_at = now + delay;
	cs_log_info("supervisor: restarting the %s in %lld ms",
		    s->restart == RESTART_BOTH ? "key and network processes" : "key process", (long long)delay);
}

static void child_ended(sup *s, child *ch, int wstatus)
{
	int was_ready = ch->ready;
	/* the key process stopped because the network process ended */
	int follows = ch == &s->key && s->restart == RESTART_BOTH;
	/* a key process exits 0 when its channels were closed: by the network
	 * process's end, or by the network process itself (then it is restarted) */
	int status = log_end(s, ch, wstatus, s->stopping || follows || ch == &s->key);
	if (follows)
		return;
	if (s->stopping) {
		if (ch == &s->net) {
			s->status = s->status != 0 ? s->status : status;
			stop_child(&s->key, SIGTERM, KEY_STOP_MS);
		}
		return;
	}
	/* another node took this node's id: a restart could not claim it */
	if (ch == &s->net && WIFEXITED(wstatus) && status == CS_PRIVSEP_EXIT_NODE_ID) {
		cs_log_error("supervisor: the network process gave up server.node_id (another running node holds "
			     "it); credsignd stops without a restart (exit status 1): give each node its own id");
		stop_all(s, SIGTERM, 1);
		return;
	}
	if (s->starting && !was_ready) {
		cs_log_error("supervisor: the %s failed at start; credsignd stops", ch->name);
		stop_all(s, SIGTERM, status == CS_PRIVSEP_EXIT_STORE_UNREACHABLE ? status : 1);
		return;
	}
	int failed = !was_ready || now_ms() - ch->ready_at < QUICK_END_MS;
	if (ch == &s->key) {
		close_fds(s->pending, &s->npending); /* given to no one */
		schedule_restart(s, s->net.pid > 0 ? RESTART_KEY : RESTART_BOTH, failed);
	} else {
		/* the key process follows (its channels are closed now) */
		stop_child(&s->key, SIGTERM, KEY_STOP_MS);
		schedule_restart(s, RESTART_BOTH, failed);
	}
}

/* The children that ended; the network process's end first: a key process
 * whose channels its end closed follows it. */
static void reap(sup *s)
{
	int key_status = 0, net_status = 0, key_ended = 0, net_ended = 0;
	for (;;) {
		int wstatus;
		pid_t pid = waitpid(-1, &wstatus, WNOHANG);
		if (pid <= 0)
			break;
		if (pid == s->key.pid) {
			key_ended = 1;
			key_status = wstatus;
		} else if (pid == s->net.pid) {
			net_ended = 1;
			net_status = wstatus;
		}
	}
	if (net_ended)
		child_ended(s, &s->net, net_status);
	if (key_ended)
		child_ended(s, &s->key, key_status);
}

static void on_signals(sup *s)
{
	struct signalfd_siginfo si[8];
	ssize_t n;
	int chld = 0;
	while ((n = read(s->sfd, si, sizeof(si))) > 0) {
		for (size_t i = 0; i < (size_t)n / sizeof(si[0]); i++) {
			int sig = (int)si[i].ssi_signo;
			if (sig == SIGCHLD) {
				chld = 1;
			} else if (sig == SIGHUP) {
				if (s->net.pid > 0 && !s->stopping)
					kill(s->net.pid, SIGHUP);
			} else if (!s->stopping) {
				char name[32];
				cs_log_info("supervisor: %s: stopping", signal_name(sig, name, sizeof(name)));
				stop_all(s, sig, 0);
			}
		}
	}
	if (chld)
		reap(s);
}

static void on_ready(sup *s, child *ch)
{
	char byte;
	ssize_t n = read(ch->ready_fd, &byte, 1);
	if (n < 0 && errno == EINTR)
		return;
	close_fd(&ch->ready_fd); /* one byte, or the end: its exit tells the rest */
	if (n != 1 || s->stopping)
		return;
	ch->ready = 1;
	ch->ready_at = now_ms();
	if (ch == &s->key && s->restart == RESTART_BOTH)
		return; /* the network process ended meanwhile: this one is being stopped */
	if (ch == &s->key) {
		if (s->net.pid > 0) {
			send_channels(s);
		} else if (start_network(s, s->starting ? NULL : s->restart_reason) != CS_OK) {
			close_fds(s->pending, &s->npending);
			/* at the first start: a start-up failure (1); later, one
			 * that systemd restarts (3) */
			stop_all(s, SIGTERM, s->starting ? 1 : CS_PRIVSEP_EXIT_CRASH_LOOP);
		} else if (!s->starting) {
			cs_metrics_process_restart(CS_METRICS_NETWORK_PROCESS);
		}
	} else if (s->starting) {
		s->starting = 0;
		cs_log_info("supervisor: key process pid %ld and network process pid %ld ready", (long)s->key.pid,
			    (long)s->net.pid);
	}
}

/* The delayed restart, once its time came (and, for both, once the old key
 * process is gone). */
static void do_restart(sup *s)
{
	if (s->restart == RESTART_NONE || now_ms() < s->restart_at || s->key.pid > 0)
		return;
	s->restart = RESTART_NONE; /* the network process starts once the key process is ready */
	if (start_key(s) != CS_OK) /* a restart, not the first start */
		stop_all(s, SIGTERM, CS_PRIVSEP_EXIT_CRASH_LOOP);
	else
		cs_metrics_process_restart(CS_METRICS_KEY_PROCESS);
}

static void escalate(child *ch)
{
	if (ch->pid > 0 && ch->kill_at != 0 && now_ms() >= ch->kill_at) {
		cs_log_warn("supervisor: the %s pid %ld did not stop: SIGKILL", ch->name, (long)ch->pid);
		kill(ch->pid, SIGKILL);
		ch->kill_at = 0;
	}
}

static int next_timeout(const sup *s)
{
	int64_t next = INT64_MAX, now = now_ms();
	if (s->restart != RESTART_NONE)
		next = s->restart_at;
	if (s->key.kill_at != 0 && s->key.kill_at < next)
		next = s->key.kill_at;
	if (s->net.kill_at != 0 && s->net.kill_at < next)
		next = s->net.kill_at;
	if (next == INT64_MAX)
		return -1;
	return next <= now ? 0 : next - now > 60000 ? 60000 : (int)(next - now);
}

static void loop(sup *s)
{
	while (s->key.pid > 0 || s->net.pid > 0 || s->restart != RESTART_NONE) {
		struct pollfd pfd[5];
		child *who[5];
		nfds_t n = 0;
		pfd[n] = (struct pollfd){.fd = s->sfd, .events = POLLIN};
		who[n++] = NULL;
		child *kids[2] = {&s->key, &s->net};
		for (size_t i = 0; i < 2; i++) {
			if (kids[i]->ready_fd >= 0) {
				pfd[n] = (struct pollfd){.fd = kids[i]->ready_fd, .events = POLLIN};
				who[n++] = kids[i];
			}
			if (kids[i]->report_fd >= 0) {
				pfd[n] = (struct pollfd){.fd = kids[i]->report_fd, .events = POLLIN};
				who[n++] = kids[i];
			}
		}
		int got = poll(pfd, n, next_timeout(s));
		if (got < 0 && errno != EINTR) {
			cs_log_error("supervisor: poll: %s", strerror(errno));
			stop_all(s, SIGTERM, s->starting ? 1 : CS_PRIVSEP_EXIT_CRASH_LOOP);
			sleep(1); /* no busy loop; the children are told to stop */
		}
		for (nfds_t i = 1; got > 0 && i < n; i++) {
			if (pfd[i].revents == 0)
				continue;
			if (pfd[i].fd == who[i]->ready_fd)
				on_ready(s, who[i]);
			else if (pfd[i].fd == who[i]->report_fd)
				read_report(who[i]);
		}
		if (got > 0 && pfd[0].revents != 0)
			on_signals(s);
		escalate(&s->net);
		escalate(&s->key);
		if (!s->stopping)
			do_restart(s);
	}
}

int cs_privsep_supervise(const cs_privsep_params *params)
{
	sup s = {.p = params, .sfd = -1, .control = -1, .starting = 1,
		 .key = {.name = "key process", .ready_fd = -1, .report_fd = -1},
		 .net = {.name = "network process", .ready_fd = -1, .report_fd = -1}};
	s.nchannels = params->nchannels < 1 ? 1
		      : params->nchannels > CS_PRIVSEP_CHANNELS_MAX ? CS_PRIVSEP_CHANNELS_MAX
								     : params->nchannels;
	s.self = getpid();
	sigset_t mine;
	sigemptyset(&mine);
	sigaddset(&mine, SIGCHLD);
	sigaddset(&mine, SIGTERM);
	sigaddset(&mine, SIGINT);
	sigaddset(&mine, SIGHUP);
	if (pthread_sigmask(SIG_BLOCK, &mine, &s.caller_mask) != 0 ||
	    (s.sfd = signalfd(-1, &mine, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
		cs_log_error("supervisor: signalfd: %s", strerror(errno));
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	cs_log_info("supervisor pid %ld: %zu channel(s) to the key process", (long)s.self, s.nchannels);
	if (start_key(&s) != CS_OK)
		s.status = 1;
	else
		loop(&s);
	close_fds(s.pending, &s.npending);
	close_fd(&s.control);
	close_fd(&s.sfd);
	pthread_sigmask(SIG_SETMASK, &s.caller_mask, NULL);
	if (s.status == 0)
		cs_log_info("supervisor: stopped");
	else
		cs_log_error("supervisor: stopped with exit status %d", s.status);
	return s.status;
}

/* ---- the network process's receiver --------------------------------------------- */

struct cs_privsep_receiver {
	int control;
	int stop[2]; /* a byte on stop[1] ends the thread */
	cs_token *token;
	cs_app *app;
	pthread_t thread;
};

/* One control message: CS_OK with its descriptors in fds (closed by the
 * caller), CS_E_IPC (logged) for a malformed one, CS_E_NOT_FOUND at the
 * end of the control channel. */
static cs_err receive(int control, char reason[CS_PRIVSEP_REASON_MAX + 1], int *fds, size_t *nfds)
{
	unsigned char msg[4 + CS_PRIVSEP_REASON_MAX + 1];
	union {
		char buf[CMSG_SPACE(sizeof(int) * CS_PRIVSEP_CHANNELS_MAX)];
		struct cmsghdr align;
	} u;
	struct iovec iov = {.iov_base = msg, .iov_len = sizeof(msg)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
	*nfds = 0;
	ssize_t n;
	do
		n = recvmsg(control, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return CS_E_NOT_FOUND;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len < CMSG_LEN(0))
			continue;
		size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (*nfds < CS_PRIVSEP_CHANNELS_MAX)
				fds[(*nfds)++] = fd;
			else
				close(fd);
		}
	}
	cs_err r = cs_privsep_control_decode(msg, (size_t)n, reason);
	if (r == CS_OK && ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 || *nfds == 0))
		r = CS_E_IPC;
	if (r != CS_OK)
		cs_log_error("a malformed control message from the supervisor (%zd bytes, %zu descriptor(s)): ignored",
			     n, *nfds);
	return r;
}

static void *receiver_run(void *arg)
{
	cs_privsep_receiver *rx = arg;
	for (;;) {
		struct pollfd pfd[2] = {{.fd = rx->control, .events = POLLIN}, {.fd = rx->stop[0], .events = POLLIN}};
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			cs_log_error("control channel: poll: %s", strerror(errno));
			return NULL;
		}
		if (pfd[1].revents != 0)
			return NULL;
		char reason[CS_PRIVSEP_REASON_MAX + 1];
		int fds[CS_PRIVSEP_CHANNELS_MAX];
		size_t nfds = 0;
		cs_err r = receive(rx->control, reason, fds, &nfds);
		if (r == CS_E_NOT_FOUND)
			return NULL; /* the supervisor is gone: so is this process, soon */
		if (r != CS_OK) {
			close_fds(fds, &nfds);
			continue;
		}
		r = cs_token_remote_replace(rx->token, fds, nfds); /* takes the descriptors */
		if (r != CS_OK)
			cs_log_error("the restarted key process's channels cannot be used: %s", cs_strerror(r));
		else
			cs_log_info("the key process was restarted (%s): %zu new channel(s) in use", reason, nfds);
		cs_audit_entry e = {.actor = "system", .role = "system", .action = "keyproc.restart",
				    .object = "key process", .outcome = "failure", .error_code = reason};
		if (cs_audit_record(rx->app->audit, rx->app->ledger, &e) != CS_OK)
			cs_log_error("keyproc.restart not audited");
	}
}

cs_err cs_privsep_receiver_start(int control_fd, cs_token *token, cs_app *app, cs_privsep_receiver **out)
{
	*out = NULL;
	cs_privsep_receiver *rx = calloc(1, sizeof(*rx));
	if (rx == NULL) {
		close(control_fd);
		return CS_E_NOMEM;
	}
	rx->control = control_fd;
	rx->token = token;
	rx->app = app;
	rx->stop[0] = rx->stop[1] = -1;
	if (pipe2(rx->stop, O_CLOEXEC) != 0 || pthread_create(&rx->thread, NULL, receiver_run, rx) != 0) {
		cs_log_error("cannot start the control channel's receiver: %s", strerror(errno));
		close_fd(&rx->stop[0]);
		close_fd(&rx->stop[1]);
		close_fd(&rx->control);
		free(rx);
		return CS_E_INTERNAL;
	}
	*out = rx;
	return CS_OK;
}

void cs_privsep_receiver_stop(cs_privsep_receiver *rx)
{
	if (rx == NULL)
		return;
	static const char byte = 'S';
	ssize_t n;
	do
		n = write(rx->stop[1], &byte, 1);
	while (n < 0 && errno == EINTR);
	pthread_join(rx->thread, NULL);
	close_fd(&rx->stop[0]);
	close_fd(&rx->stop[1]);
	close_fd(&rx->control);
	free(rx);
}
