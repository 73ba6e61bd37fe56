/*
 * confine: what credsignd's processes do to themselves to limit what a bug
 * in them can reach (issue 16; docs/hardening.md): the privilege drop of
 * the network process (server.user, server.group), the capability drop of
 * the key process, process hygiene (no core dumps, not dumpable, mlock, the
 * OpenSSL secure heap for the PIN and credentials) and the seccomp-bpf
 * allowlists of both processes (hardening.seccomp).
 *
 * Every function is called by one thread of a process that is confining
 * itself, in this order: cs_confine_process first (before any secret is
 * read), cs_confine_drop or cs_confine_drop_caps once the privileged
 * set-up is done, cs_confine_seccomp last (once every thread the process
 * will need exists or, for threads created later, only needs what the
 * allowlist allows: the filter applies to every thread, TSYNC).
 *
 * Errors: CS_E_CONFIG (a setting that cannot work on this machine or for
 * this user), CS_E_INTERNAL (a system call failed: errno text in why),
 * CS_E_NOMEM. why[len] (may be NULL when len is 0) receives the reason,
 * one line, not logged here: the caller logs it once. Not thread-safe
 * (process-wide state).
 */
#ifndef CS_CONFINE_H
#define CS_CONFINE_H

#include <stddef.h>
#include <sys/types.h>

#include "config.h"
#include "cs_error.h"

typedef struct {
	int drop;         /* 1: switch to uid/gid (root, or CAP_SETUID+CAP_SETGID); 0: stay as we are */
	uid_t uid;
	gid_t gid;
	char user[64], group[64]; /* names, for logs ("" when drop is 0 and unset) */
} cs_run_as;

/* What the network process runs as. Started as root: server.user
 * required (CS_E_CONFIG "credsignd runs as root: set server.user (and
 * server.group) to an unprivileged account, or server.allow_root = true")
 * unless allow_root; a user that is root (uid 0) is refused too.
 * server.group unset: the user's primary group.
 * Not root but with CAP_SETUID and CAP_SETGID effective (the systemd
 * unit's key account, AmbientCapabilities=CAP_SETUID CAP_SETGID
 * CAP_SETPCAP): server.user set is switched to as from root (drop = 1,
 * the same checks); unset, as below.
 * Not root without them: drop = 0 (a configured user other than the
 * current one is an error: cannot switch), and the caller logs that the
 * drop is skipped. */
cs_err cs_confine_run_as(const cs_config *cfg, cs_run_as *out, char *why, size_t len)
	__attribute__((warn_unused_result));

/* setgroups(1, {gid}), setgid, setuid (real, effective, saved), checked
 * after (getresuid/getresgid); capability bounding set dropped (before
 * the switch: needs CAP_SETPCAP) and every capability set emptied; then
 * setuid(0) and setuid(starting uid) must fail; PR_SET_NO_NEW_PRIVS. A
 * parent-death signal (which the kernel clears when the uid changes) is
 * armed again; a parent that ended meanwhile fails the drop.
 * who->drop == 0: only the capabilities and NoNewPrivs (as
 * cs_confine_drop_caps). */
cs_err cs_confine_drop(const cs_run_as *who, char *why, size_t len) __attribute__((warn_unused_result));

/* Drop every capability (effective, permitted, inheritable, ambient,
 * bounding) keeping the uid; PR_SET_NO_NEW_PRIVS (the key process). */
cs_err cs_confine_drop_caps(char *why, size_t len) __attribute__((warn_unused_result));

/* RLIMIT_CORE 0, PR_SET_DUMPABLE 0 (kept 1 under ASan/LSan builds, which
 * need ptrace at exit: logged at debug), PR_SET_PDEATHSIG(SIGKILL) when
 * pdeathsig; mlock: mlockall(MCL_CURRENT|MCL_FUTURE|MCL_ONFAULT) (skipped
 * under ASan, logged), RLIMIT_MEMLOCK raised first when root;
 * OpenSSL's secure heap (CRYPTO_secure_malloc_init, 1 MiB: mlocked,
 * MADV_DONTDUMP, guard pages) for the PIN and credentials (initialised
 * once per process; a heap that cannot be set up is logged at warning
 * and OPENSSL_secure_malloc falls back to the ordinary heap). */
cs_err cs_confine_process(int mlock, int pdeathsig, char *why, size_t len) __attribute__((warn_unused_result));
/* Whether mlockall can be made to hold: RLIMIT_MEMLOCK raised to unlimited
 * where the process may (its hard limit, with CAP_SYS_RESOURCE), else one
 * warning naming the limit (logged) and 0; 0 in a sanitizer build. The
 * supervisor asks once per start, before its children inherit the limit. */
int cs_confine_mlock_possible(void);

/* CS_CONFINE_NETWORK_DB: the network process of a daemon whose store is
 * a database reached over the network (store.backend postgresql): also
 * TCP and UDP sockets (AF_INET, AF_INET6: the database, the name
 * resolver), never a listening one of its own. */
typedef enum { CS_CONFINE_NETWORK, CS_CONFINE_KEY, CS_CONFINE_NETWORK_DB } cs_confine_role;

/* A seccomp-bpf allowlist (libseccomp) for the role, on every thread
 * (TSYNC). A forbidden call: SCMP_ACT_TRAP; the SIGSYS handler writes
 * "syscall NNN\n" (async-signal-safe) to report_fd (a pipe to the
 * supervisor; -1: stderr, "credsignd[PID]: forbidden syscall NNN (NAME)"),
 * then dies by SIGSYS (the handler is reset to SIG_DFL and the signal
 * raised again). Sanitizer builds allow what their runtimes need.
 * Requires NoNewPrivs (set by cs_confine_drop/_drop_caps) or
 * CAP_SYS_ADMIN; sets NoNewPrivs itself. report_fd must stay open. */
cs_err cs_confine_seccomp(cs_confine_role role, int report_fd, char *why, size_t len)
	__attribute__((warn_unused_result));

/* Name of a syscall number (seccomp_syscall_resolve_num_arch, native
 * architecture) into buf[len], "?" if unknown. Returns buf. */
const char *cs_confine_syscall_name(int nr, char *buf, size_t len);

#endif
