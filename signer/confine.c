/* confine: see confine.h. Capabilities through the raw capget/capset
 * system calls (no libcap), seccomp through libseccomp. */
#include "confine.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <termios.h>

#include <openssl/crypto.h>

#include "cs_log.h"

#if defined(__SANITIZE_ADDRESS__)
#define CONFINE_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(leak_sanitizer) || __has_feature(thread_sanitizer)
#define CONFINE_SANITIZER 1
#endif
#endif
#ifndef CONFINE_SANITIZER
#define CONFINE_SANITIZER 0
#endif

/* the OpenSSL secure heap: the PIN and credentials in flight */
#define SECURE_HEAP_BYTES (1024 * 1024) /* about 80 generate answers at once */
#define SECURE_HEAP_MIN 16

static cs_err fail(cs_err err, char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static cs_err fail(cs_err err, char *why, size_t len, const char *fmt, ...)
{
	if (why != NULL && len > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, len, fmt, ap);
		va_end(ap);
	}
	return err;
}

static void set_why(char *why, size_t len)
{
	if (why != NULL && len > 0)
		why[0] = '\0';
}

/* ---- who the network process runs as ----------------------------------- */

static int copy_name(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);
	if (n >= size)
		return -1;
	memcpy(dst, src, n + 1);
	return 0;
}

/* The unprivileged account a root-started network process switches to. */
static cs_err run_as_account(const cs_config *cfg, cs_run_as *out, char *why, size_t len)
{
	const char *user = cfg->server.user, *group = cfg->server.group;
	errno = 0;
	const struct passwd *pw = getpwnam(user);
	if (pw == NULL)
		return fail(CS_E_CONFIG, why, len, "server.user: no such user '%.64s'", user);
	if (pw->pw_uid == 0)
		return fail(CS_E_CONFIG, why, len,
			    "server.user '%.64s' is root (uid 0): name an unprivileged account, "
			    "or unset it and set server.allow_root = true",
			    user);
	out->uid = pw->pw_uid;
	out->gid = pw->pw_gid;
	if (group != NULL) {
		errno = 0;
		const struct group *gr = getgrnam(group);
		if (gr == NULL)
			return fail(CS_E_CONFIG, why, len, "server.group: no such group '%.64s'", group);
		out->gid = gr->gr_gid;
	}
	if (out->gid == 0)
		return fail(CS_E_CONFIG, why, len,
			    "server.group: the group of server.user '%.64s' is root's (gid 0): "
			    "set server.group to an unprivileged group",
			    user);
	if (copy_name(out->user, sizeof(out->user), user) != 0)
		return fail(CS_E_CONFIG, why, len, "server.user: name longer than %zu characters",
			    sizeof(out->user) - 1);
	const struct group *gr = getgrgid(out->gid);
	if (gr != NULL ? copy_name(out->group, sizeof(out->group), gr->gr_name) != 0
		       : snprintf(out->group, sizeof(out->group), "%lu", (unsigned long)out->gid) < 0)
		return fail(CS_E_CONFIG, why, len, "server.group: name longer than %zu characters",
			    sizeof(out->group) - 1);
	out->drop = 1;
	return CS_OK;
}

/* CAP_SETUID and CAP_SETGID effective (not root): setresuid, setresgid
 * and setgroups to another account are possible. */
static int can_switch_ids(void)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) != 0)
		return 0;
	return (data[CAP_SETUID / 32].effective & (1u << (CAP_SETUID % 32))) != 0 &&
	       (data[CAP_SETGID / 32].effective & (1u << (CAP_SETGID % 32))) != 0;
}

/* Not root: we stay who we are; a configured account must be that one. */
static cs_err run_as_self(const cs_config *cfg, cs_run_as *out, char *why, size_t len)
{
	uid_t uid = geteuid();
	gid_t gid = getegid();
	out->uid = uid;
	out->gid = gid;
	const struct passwd *pw = getpwuid(uid);
	if (pw != NULL)
		(void)copy_name(out->user, sizeof(out->user), pw->pw_name);
	const struct group *gr = getgrgid(gid);
	if (gr != NULL)
		(void)copy_name(out->group, sizeof(out->group), gr->gr_name);
	if (cfg->server.user != NULL) {
		errno = 0;
		pw = getpwnam(cfg->server.user);
		if (pw == NULL)
			return fail(CS_E_CONFIG, why, len, "server.user: no such user '%.64s'", cfg->server.user);
		if (pw->pw_uid != uid)
			return fail(CS_E_CONFIG, why, len,
				    "server.user '%.64s' (uid %lu): cannot switch to it, credsignd runs as uid %lu, "
				    "not root; start it as root or as that user",
				    cfg->server.user, (unsigned long)pw->pw_uid, (unsigned long)uid);
	}
	if (cfg->server.group != NULL) {
		errno = 0;
		gr = getgrnam(cfg->server.group);
		if (gr == NULL)
			return fail(CS_E_CONFIG, why, len, "server.group: no such group '%.64s'", cfg->server.group);
		if (gr->gr_gid != gid)
			return fail(CS_E_CONFIG, why, len,
				    "server.group '%.64s' (gid %lu): cannot switch to it, credsignd runs as gid %lu, "
				    "not root",
				    cfg->server.group, (unsigned long)gr->gr_gid, (unsigned long)gid);
	}
	return CS_OK;
}

cs_err cs_confine_run_as(const cs_config *cfg, cs_run_as *out, char *why, size_t len)
{
	set_why(why, len);
	if (out == NULL || cfg == NULL)
		return fail(CS_E_INVALID_ARG, why, len, "no configuration");
	memset(out, 0, sizeof(*out));
	if (geteuid() != 0) {
		/* a service account the unit gave CAP_SETUID and CAP_SETGID (the
		 * key account of docs/hardening.md): the switch to server.user
		 * can be made; without them, we stay as we are */
		if (cfg->server.user != NULL && can_switch_ids()) {
			cs_err r = run_as_account(cfg, out, why, len);
			if (r != CS_OK)
				memset(out, 0, sizeof(*out));
			return r;
		}
		return run_as_self(cfg, out, why, len);
	}
	if (cfg->server.user != NULL) {
		cs_err r = run_as_account(cfg, out, why, len);
		if (r != CS_OK)
			memset(out, 0, sizeof(*out));
		return r;
	}
	if (cfg->server.group != NULL) /* the loader refuses it; a config made otherwise */
		return fail(CS_E_CONFIG, why, len, "server.group is set without server.user");
	if (!cfg->server.allow_root)
		return fail(CS_E_CONFIG, why, len,
			    "credsignd runs as root: set server.user (and server.group) to an unprivileged "
			    "account, or server.allow_root = true");
	(void)copy_name(out->user, sizeof(out->user), "root");
	(void)copy_name(out->group, sizeof(out->group), "root");
	return CS_OK;
}

/* ---- capabilities ------------------------------------------------------ */

/* The kernel's last capability; where /proc/sys is hidden (a systemd
 * unit's ProcSubset=pid), 63: dropping a capability the kernel does not
 * have fails with EINVAL, which the callers ignore. */
static int cap_last(void)
{
	int last = 63;
	FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
	if (f != NULL) {
		int v;
		if (fscanf(f, "%d", &v) == 1 && v >= 0 && v < 64)
			last = v;
		fclose(f);
	}
	return last;
}

static int caps_get(struct __user_cap_data_struct data[2])
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	memset(data, 0, 2 * sizeof(*data));
	return (int)syscall(SYS_capget, &hdr, data);
}

static int has_effective(const struct __user_cap_data_struct data[2], int cap)
{
	return (data[cap / 32].effective & (1u << (cap % 32))) != 0;
}

/* The bounding set (needs CAP_SETPCAP: before the uid changes) and the
 * ambient set. Without CAP_SETPCAP and with nothing permitted (started
 * unprivileged) the bounding set cannot be changed and need not be: no
 * capability can be gained back without an execve of a file with
 * capabilities, which NoNewPrivs stops. */
static cs_err drop_bounding(char *why, size_t len)
{
	struct __user_cap_data_struct data[2];
	if (caps_get(data) != 0)
		return fail(CS_E_INTERNAL, why, len, "capget: %s", strerror(errno));
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
		return fail(CS_E_INTERNAL, why, len, "clearing the ambient capabilities: %s", strerror(errno));
	if (!has_effective(data, CAP_SETPCAP)) {
		/* an unprivileged start (a systemd unit with User=): the bounding
		 * set stays as the unit made it (empty, or CAP_NET_BIND_SERVICE);
		 * NoNewPrivs keeps any of it from being gained again */
		if (data[0].permitted != 0 || data[1].permitted != 0)
			cs_log_debug("bounding set kept: no CAP_SETPCAP to empty it; the permitted set is emptied");
		return CS_OK;
	}
	int last = cap_last();
	for (int cap = 0; cap <= last; cap++)
		if (prctl(PR_CAPBSET_DROP, (unsigned long)cap, 0, 0, 0) != 0 && errno != EINVAL)
			return fail(CS_E_INTERNAL, why, len, "dropping capability %d from the bounding set: %s", cap,
				    strerror(errno));
	return CS_OK;
}

/* Empty the effective, permitted and inheritable sets, then check that
 * every set, the bounding set included, is empty. */
static cs_err empty_caps(char *why, size_t len)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[2];
	if (caps_get(data) != 0)
		return fail(CS_E_INTERNAL, why, len, "capget: %s", strerror(errno));
	int held = 0;
	for (int i = 0; i < 2; i++)
		held |= data[i].effective != 0 || data[i].permitted != 0 || data[i].inheritable != 0;
	/* none held (an unprivileged start): no capset, which a systemd
	 * SystemCallFilter=~@privileged refuses */
	memset(data, 0, sizeof(data));
	if (held && syscall(SYS_capset, &hdr, data) != 0)
		return fail(CS_E_INTERNAL, why, len, "capset: %s", strerror(errno));
	if (caps_get(data) != 0)
		return fail(CS_E_INTERNAL, why, len, "capget: %s", strerror(errno));
	for (int i = 0; i < 2; i++)
		if (data[i].effective != 0 || data[i].permitted != 0 || data[i].inheritable != 0)
			return fail(CS_E_INTERNAL, why, len, "capabilities still held after capset");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_BIND_SERVICE, 0, 0) == 1)
		return fail(CS_E_INTERNAL, why, len, "ambient capabilities still set");
	return CS_OK;
}

static cs_err no_new_privs(char *why, size_t len)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		return fail(CS_E_INTERNAL, why, len, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
	return CS_OK;
}

cs_err cs_confine_drop_caps(char *why, size_t len)
{
	set_why(why, len);
	cs_err r = drop_bounding(why, len);
	if (r == CS_OK)
		r = empty_caps(why, len);
	if (r == CS_OK)
		r = no_new_privs(why, len);
	return r;
}

/* setgroups, setresgid, setresuid, each checked after. */
static cs_err switch_ids(const cs_run_as *who, char *why, size_t len)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg, groups[2];
	if (setgroups(1, &who->gid) != 0)
		return fail(CS_E_INTERNAL, why, len, "setgroups(%lu): %s", (unsigned long)who->gid, strerror(errno));
	if (setresgid(who->gid, who->gid, who->gid) != 0)
		return fail(CS_E_INTERNAL, why, len, "setresgid(%lu): %s", (unsigned long)who->gid, strerror(errno));
	if (setresuid(who->uid, who->uid, who->uid) != 0)
		return fail(CS_E_INTERNAL, why, len, "setresuid(%lu): %s", (unsigned long)who->uid, strerror(errno));
	if (getresuid(&ru, &eu, &su) != 0 || ru != who->uid || eu != who->uid || su != who->uid)
		return fail(CS_E_INTERNAL, why, len, "user ids not all %lu after setresuid", (unsigned long)who->uid);
	if (getresgid(&rg, &eg, &sg) != 0 || rg != who->gid || eg != who->gid || sg != who->gid)
		return fail(CS_E_INTERNAL, why, len, "group ids not all %lu after setresgid", (unsigned long)who->gid);
	int n = getgroups(2, groups);
	if (n < 0 || n > 1 || (n == 1 && groups[0] != who->gid))
		return fail(CS_E_INTERNAL, why, len, "supplementary groups remain after setgroups");
	return CS_OK;
}

/* After the switch and the capabilities' drop: neither uid 0 nor the
 * starting account can be had again. A switch from another account than
 * root keeps its capabilities until they are emptied, so this comes
 * last (with CAP_SETUID still held, setuid(0) would succeed). */
static cs_err cannot_regain(uid_t from, char *why, size_t len)
{
	if (setuid(0) == 0 || seteuid(0) == 0)
		return fail(CS_E_INTERNAL, why, len, "uid 0 could be regained after the drop");
	if (from != getuid() && (setuid(from) == 0 || seteuid(from) == 0))
		return fail(CS_E_INTERNAL, why, len, "uid %lu could be regained after the drop", (unsigned long)from);
	return CS_OK;
}

cs_err cs_confine_drop(const cs_run_as *who, char *why, size_t len)
{
	set_why(why, len);
	if (who == NULL)
		return fail(CS_E_INVALID_ARG, why, len, "no account");
	if (who->drop && (who->uid == 0 || who->gid == 0))
		return fail(CS_E_INVALID_ARG, why, len, "refusing to switch to uid %lu gid %lu",
			    (unsigned long)who->uid, (unsigned long)who->gid);
	/* the bounding set first: emptying it needs CAP_SETPCAP, which the
	 * switch of uid takes away */
	/* the kernel clears the parent-death signal when the uid changes: it
	 * is armed again after the switch, and a parent that died meanwhile
	 * ends this process too */
	int deathsig = 0;
	pid_t parent = getppid();
	uid_t from = getuid();
	(void)prctl(PR_GET_PDEATHSIG, &deathsig, 0, 0, 0);
	cs_err r = drop_bounding(why, len);
	if (r == CS_OK && who->drop)
		r = switch_ids(who, why, len);
	/* the uid change set the dumpable flag to fs.suid_dumpable (2 where
	 * apport is installed): not dumpable again */
	if (r == CS_OK && who->drop && !CONFINE_SANITIZER && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		r = fail(CS_E_INTERNAL, why, len, "PR_SET_DUMPABLE 0 after the switch: %s", strerror(errno));
	if (r == CS_OK && who->drop && deathsig != 0 &&
	    (prctl(PR_SET_PDEATHSIG, deathsig, 0, 0, 0) != 0 || getppid() != parent))
		r = fail(CS_E_INTERNAL, why, len, "the parent process ended during the switch of user");
	if (r == CS_OK)
		r = empty_caps(why, len);
	if (r == CS_OK && who->drop)
		r = cannot_regain(from, why, len);
	if (r == CS_OK)
		r = no_new_privs(why, len);
	return r;
}

/* ---- process hygiene --------------------------------------------------- */

int cs_confine_mlock_possible(void)
{
	if (CONFINE_SANITIZER) {
		/* the sanitizers reserve terabytes of shadow memory */
		cs_log_info("hardening.mlock: mlockall skipped in a sanitizer build");
		return 0;
	}
	/* Unlimited, or not at all: the privileges that lift the limit
	 * (CAP_IPC_LOCK) go with the drop, and with MCL_FUTURE every mapping
	 * past a finite limit would fail from then on. Raising the hard limit
	 * needs CAP_SYS_RESOURCE; the soft one is raised to the hard one. */
	struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
	if (setrlimit(RLIMIT_MEMLOCK, &rl) != 0 && getrlimit(RLIMIT_MEMLOCK, &rl) == 0 &&
	    rl.rlim_cur != rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_MEMLOCK, &rl);
	}
	if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		cs_log_warn("hardening.mlock: mlockall skipped: RLIMIT_MEMLOCK is %llu bytes and cannot be made "
			    "unlimited here (that needs CAP_SYS_RESOURCE, or LimitMEMLOCK=infinity in the unit); the "
			    "PIN and credentials stay in the locked secure heap",
			    (unsigned long long)rl.rlim_cur);
		return 0;
	}
	return 1;
}

static cs_err lock_memory(char *why, size_t len)
{
	if (!cs_confine_mlock_possible())
		return CS_OK;
	if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0)
		return fail(CS_E_INTERNAL, why, len,
			    "mlockall: %s (set hardening.mlock = false where memory cannot be locked)", strerror(errno));
	return CS_OK;
}

static void secure_heap(void)
{
	if (CRYPTO_secure_malloc_initialized())
		return;
	int r = CRYPTO_secure_malloc_init(SECURE_HEAP_BYTES, SECURE_HEAP_MIN);
	if (r == 0)
		cs_log_warn("OpenSSL secure heap unavailable: the PIN and credentials use the ordinary heap "
			    "(wiped after use, but neither locked nor excluded from dumps)");
	else if (r == 2)
		cs_log_warn("OpenSSL secure heap: its memory could not be locked or marked MADV_DONTDUMP");
}

cs_err cs_confine_process(int mlock, int pdeathsig, char *why, size_t len)
{
	set_why(why, len);
	struct rlimit core = {0, 0};
	/* a unit's LimitCORE=0 may have set it already, and filter setrlimit */
	if (setrlimit(RLIMIT_CORE, &core) != 0 &&
	    (getrlimit(RLIMIT_CORE, &core) != 0 || core.rlim_cur != 0 || core.rlim_max != 0))
		return fail(CS_E_INTERNAL, why, len, "RLIMIT_CORE 0: %s", strerror(errno));
	if (CONFINE_SANITIZER)
		cs_log_debug("PR_SET_DUMPABLE kept 1: the sanitizer runtime traces the process at exit");
	else if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		return fail(CS_E_INTERNAL, why, len, "PR_SET_DUMPABLE 0: %s", strerror(errno));
	if (pdeathsig && prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
		return fail(CS_E_INTERNAL, why, len, "PR_SET_PDEATHSIG: %s", strerror(errno));
	if (mlock) {
		cs_err r = lock_memory(why, len);
		if (r != CS_OK)
			return r;
	}
	secure_heap();
	return CS_OK;
}

/* ---- seccomp ----------------------------------------------------------- */

/* Names of the system calls for the SIGSYS handler, which may not call
 * libseccomp (it allocates): resolved when the filter is loaded. */
#define NAMES_MAX 512
#define NAME_LEN 28
static char syscall_names[NAMES_MAX][NAME_LEN];
static volatile sig_atomic_t report_to = -1;

/* GCOVR_EXCL_START: put_str, put_num and on_sigsys run only in a process dying of SIGSYS, which never writes its coverage counters; confine_test asserts the report they write */
static size_t put_str(char *buf, size_t at, size_t cap, const char *s)
{
	while (*s != '\0' && at < cap)
		buf[at++] = *s++;
	return at;
}

static size_t put_num(char *buf, size_t at, size_t cap, long v)
{
	char digits[24];
	size_t n = 0;
	unsigned long u = v < 0 ? (unsigned long)-v : (unsigned long)v;
	do {
		digits[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0 && n < sizeof(digits));
	if (v < 0 && at < cap)
		buf[at++] = '-';
	while (n > 0 && at < cap)
		buf[at++] = digits[--n];
	return at;
}

/* Async-signal-safe: write, getpid, the kill of raise. Installed with
 * SA_RESETHAND: SIGSYS is back to its default action (terminate) on entry,
 * and the filter refuses any later rt_sigaction for SIGSYS, so code that
 * took over the process cannot install a handler that survives a
 * forbidden call. */
static void on_sigsys(int sig, siginfo_t *info, void *ctx)
{
	(void)ctx;
	int saved = errno;
	char line[160];
	size_t n = 0;
	int nr = info != NULL ? info->si_syscall : -1;
	int fd = (int)report_to;
	if (fd >= 0) {
		n = put_str(line, n, sizeof(line), "syscall ");
		n = put_num(line, n, sizeof(line), nr);
		n = put_str(line, n, sizeof(line), "\n");
	} else {
		fd = STDERR_FILENO;
		n = put_str(line, n, sizeof(line), "credsignd[");
		n = put_num(line, n, sizeof(line), (long)getpid());
		n = put_str(line, n, sizeof(line), "]: forbidden system call ");
		n = put_num(line, n, sizeof(line), nr);
		if (nr >= 0 && nr < NAMES_MAX && syscall_names[nr][0] != '\0') {
			n = put_str(line, n, sizeof(line), " (");
			n = put_str(line, n, sizeof(line), syscall_names[nr]);
			n = put_str(line, n, sizeof(line), ")");
		}
		n = put_str(line, n, sizeof(line), ": killed by SIGSYS (seccomp)\n");
	}
	ssize_t w = write(fd, line, n);
	(void)w;
	/* pending until the handler returns and SIGSYS is unblocked: the
	 * default action then ends the process */
	raise(sig);
	errno = saved;
}
/* GCOVR_EXCL_STOP */

static void fill_names(void)
{
	if (syscall_names[0][0] != '\0')
		return;
	for (int nr = 0; nr < NAMES_MAX; nr++) {
		char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
		if (name != NULL) {
			snprintf(syscall_names[nr], NAME_LEN, "%s", name);
			free(name);
		}
	}
}

const char *cs_confine_syscall_name(int nr, char *buf, size_t len)
{
	if (buf == NULL || len == 0)
		return "?";
	char *name = nr >= 0 ? seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr) : NULL;
	snprintf(buf, len, "%s", name != NULL ? name : "?");
	free(name);
	return buf;
}

/* Both processes: memory, threads, signals, time, files by descriptor. */
static const char *const common_calls[] = {
	/* memory (mmap, mprotect: argument rules below) */
	"brk", "munmap", "mremap", "madvise", "mincore", "membarrier",
	/* threads, futexes, scheduling */
	"futex", "futex_waitv", "set_robust_list", "get_robust_list", "rseq", "set_tid_address",
	"sched_yield", "sched_getaffinity", "getcpu", "exit", "exit_group", "restart_syscall",
	/* signals (raise: getpid, gettid, tgkill) */
	"rt_sigprocmask", "rt_sigreturn", "rt_sigtimedwait", "rt_sigpending", "sigaltstack",
	"getpid", "gettid", "tgkill",
	/* time */
	"clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday", "time",
	/* randomness */
	"getrandom",
	/* identity (glibc, OpenSSL, SQLite ask) */
	"getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups", "getppid",
	"uname", "sysinfo", "umask",
	/* descriptors */
	"read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2",
	"pwritev2", "close", "close_range", "dup", "dup2", "dup3", "fcntl", "fcntl64", "lseek", "_llseek",
	"poll", "ppoll", "select", "_newselect", "pselect6", "pipe", "pipe2",
	/* files: SQLite (WAL, locks, journals), SoftHSM2's token files,
	 * /proc and /sys reads of glibc and OpenSSL */
	"open", "openat", "openat2", "stat", "fstat", "lstat", "newfstatat", "fstatat64", "statx", "statfs",
	"fstatfs", "access", "faccessat", "faccessat2", "readlink", "readlinkat", "getcwd", "getdents64",
	"fsync", "fdatasync", "ftruncate", "fallocate", "flock", "unlink", "unlinkat", "rename",
	"renameat", "renameat2", "fchmod", "fchown",
	/* AF_UNIX sockets (socket, socketpair: argument rules below): the
	 * channels, syslog, sd_notify, pcscd */
	"connect", "sendto", "sendmsg", "sendmmsg", "recvfrom", "recvmsg", "recvmmsg", "shutdown",
	"getsockname", "getpeername", "getsockopt", "setsockopt",
};

/* The network process: the inherited listeners, libevent. */
static const char *const network_calls[] = {
	"accept", "accept4", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait",
	"epoll_pwait2", "eventfd", "eventfd2", "timerfd_create", "timerfd_settime", "timerfd_gettime",
};

/* The key process: the PKCS#11 module's token directory (SoftHSM2 creates
 * a token's directory and object files). */
static const char *const key_calls[] = {
	"mkdir", "mkdirat", "rmdir", "link", "linkat",
};

/* What the sanitizer runtimes need at exit (LeakSanitizer stops the
 * threads with ptrace from a cloned tracer) and when reporting. */
static const char *const sanitizer_calls[] = {
	"ptrace", "wait4", "waitid", "prctl", "kill", "tkill", "process_vm_readv", "setrlimit", "prlimit64",
	"getrlimit", "sched_setaffinity", "clone", "personality", "ioctl", "getdents",
};

static int allow_names(scmp_filter_ctx ctx, const char *const *names, size_t n, char *why, size_t len)
{
	for (size_t i = 0; i < n; i++) {
		int nr = seccomp_syscall_resolve_name(names[i]);
		if (nr == __NR_SCMP_ERROR || nr < 0)
			continue; /* not a system call of this architecture */
		int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
		if (rc != 0) {
			fail(CS_E_INTERNAL, why, len, "seccomp rule for %s: %s", names[i], strerror(-rc));
			return -1;
		}
	}
	return 0;
}

/* One argument comparison, both datums given (libseccomp's SCMP_An macros
 * leave datum_b to the compiler: -Wmissing-field-initializers under clang). */
static struct scmp_arg_cmp cmp_arg(unsigned int arg, enum scmp_compare op, scmp_datum_t a, scmp_datum_t b)
{
	struct scmp_arg_cmp c = {.arg = arg, .op = op, .datum_a = a, .datum_b = b};
	return c;
}

#define RULE(...)                                                                                        \
	do {                                                                                             \
		int rc_ = seccomp_rule_add(ctx, __VA_ARGS__);                                            \
		if (rc_ != 0) {                                                                          \
			fail(CS_E_INTERNAL, why, len, "seccomp rule (line %d): %s", __LINE__, strerror(-rc_)); \
			return -1;                                                                       \
		}                                                                                        \
	} while (0)

/* Calls allowed only with some arguments. */
static int argument_rules(scmp_filter_ctx ctx, char *why, size_t len)
{
	/* signal handlers, but none for SIGSYS: the filter's own reporter
	 * (installed before the filter) stays the only one */
	RULE(SCMP_ACT_ALLOW, SCMP_SYS(rt_sigaction), 1, cmp_arg(0, SCMP_CMP_NE, SIGSYS, 0));
	/* never writable and executable together */
	const scmp_datum_t wx = PROT_WRITE | PROT_EXEC;
	RULE(SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1, cmp_arg(2, SCMP_CMP_MASKED_EQ, wx, PROT_WRITE));
	RULE(SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1, cmp_arg(2, SCMP_CMP_MASKED_EQ, wx, PROT_EXEC));
	RULE(SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1, cmp_arg(2, SCMP_CMP_MASKED_EQ, wx, 0));
	RULE(SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1, cmp_arg(2, SCMP_CMP_MASKED_EQ, wx, PROT_WRITE));
	RULE(SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1, cmp_arg(2, SCMP_CMP_MASKED_EQ, wx, PROT_EXEC));
	RULE(SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1, cmp_arg(2, SCMP_CMP_MASKED_EQ, wx, 0));
	/* local sockets only */
	RULE(SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, cmp_arg(0, SCMP_CMP_EQ, AF_UNIX, 0));
	RULE(SCMP_ACT_ALLOW, SCMP_SYS(socketpair), 1, cmp_arg(0, SCMP_CMP_EQ, AF_UNIX, 0));
	/* reading limits only (getrlimit is prlimit64 with no new limit) */
	RULE(SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 1, cmp_arg(2, SCMP_CMP_EQ, 0, 0));
	/* thread names */
	RULE(SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1, cmp_arg(0, SCMP_CMP_EQ, PR_SET_NAME, 0));
	RULE(SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1, cmp_arg(0, SCMP_CMP_EQ, PR_GET_NAME, 0));
	/* isatty (stdio), bytes readable (libevent) */
	RULE(SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, cmp_arg(1, SCMP_CMP_EQ, TCGETS, 0));
	RULE(SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, cmp_arg(1, SCMP_CMP_EQ, FIONREAD, 0));
	RULE(SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, cmp_arg(1, SCMP_CMP_EQ, FIONBIO, 0));
	/* threads, not processes */
	RULE(SCMP_ACT_ALLOW, SCMP_SYS(clone), 1, cmp_arg(0, SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
	/* glibc's pthread_create tries clone3 first, whose flags a filter cannot
	 * see: ENOSYS makes it fall back to clone */
	RULE(SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	return 0;
}

/* CS_CONFINE_NETWORK_DB: sockets of the internet families, for the
 * database's connections (libpq: socket, connect, poll, send, recv,
 * getsockopt SO_ERROR, setsockopt TCP_NODELAY and keepalives,
 * getsockname: in common_calls) and the resolver's queries. */
static int database_rules(scmp_filter_ctx ctx, char *why, size_t len)
{
	RULE(SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, cmp_arg(0, SCMP_CMP_EQ, AF_INET, 0));
	RULE(SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, cmp_arg(0, SCMP_CMP_EQ, AF_INET6, 0));
	return 0;
}
#undef RULE

static int build_filter(scmp_filter_ctx ctx, cs_confine_role role, char *why, size_t len)
{
	if (allow_names(ctx, common_calls, sizeof(common_calls) / sizeof(common_calls[0]), why, len) != 0)
		return -1;
	int network = role == CS_CONFINE_NETWORK || role == CS_CONFINE_NETWORK_DB;
	if (network && allow_names(ctx, network_calls, sizeof(network_calls) / sizeof(network_calls[0]), why, len) != 0)
		return -1;
	if (role == CS_CONFINE_NETWORK_DB && database_rules(ctx, why, len) != 0)
		return -1;
	if (role == CS_CONFINE_KEY && allow_names(ctx, key_calls, sizeof(key_calls) / sizeof(key_calls[0]), why, len) != 0)
		return -1;
	if (CONFINE_SANITIZER &&
	    allow_names(ctx, sanitizer_calls, sizeof(sanitizer_calls) / sizeof(sanitizer_calls[0]), why, len) != 0)
		return -1;
	return argument_rules(ctx, why, len);
}

cs_err cs_confine_seccomp(cs_confine_role role, int report_fd, char *why, size_t len)
{
	set_why(why, len);
	if (role != CS_CONFINE_NETWORK && role != CS_CONFINE_KEY && role != CS_CONFINE_NETWORK_DB)
		return fail(CS_E_INVALID_ARG, why, len, "unknown role %d", (int)role);
	fill_names();
	report_to = report_fd >= 0 ? report_fd : -1;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = (int)(SA_SIGINFO | (unsigned)SA_RESETHAND);
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) != 0)
		return fail(CS_E_INTERNAL, why, len, "sigaction(SIGSYS): %s", strerror(errno));
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
	if (ctx == NULL)
		return fail(CS_E_NOMEM, why, len, "seccomp_init failed");
	cs_err r = CS_E_INTERNAL;
	int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	if (rc != 0)
		fail(r, why, len, "seccomp TSYNC: %s", strerror(-rc));
	else if (build_filter(ctx, role, why, len) != 0)
		; /* why set */
	else if ((rc = seccomp_load(ctx)) != 0)
		fail(r, why, len, "loading the seccomp filter: %s", strerror(-rc));
	else
		r = CS_OK;
	seccomp_release(ctx);
	return r;
}
