/*
 * privsep: credsignd's supervisor, its key process and its network process
 * (privilege separation, issue 16).
 *
 * cs_privsep_supervise() is called by the daemon once the configuration is
 * loaded and checked and the listeners are bound. It stays in the calling
 * process, single-threaded, as the supervisor; it never loads the PKCS#11
 * module. It makes N channels (SOCK_SEQPACKET socketpairs, N = nchannels,
 * 1..CS_PRIVSEP_CHANNELS_MAX) and forks:
 *   the key process      key_main(arg, child): child->channels are the key
 *                        process's ends; it opens the token and serves them;
 *   the network process  network_main(arg, child): child->channels are the
 *                        other ends (for cs_token_open_remote), control_fd
 *                        its end of the control pair (for
 *                        cs_privsep_receiver_start), restart_reason why it
 *                        was restarted (NULL at the first start).
 * Both first set PR_SET_PDEATHSIG(SIGKILL) (and exit at once when the
 * supervisor is already gone), close every descriptor of the supervisor
 * they were not given, and exit(3) with what their main returned. The key
 * process starts first; the network process once the key process is ready.
 * Each child says it is ready with cs_privsep_ready(): the key process when
 * it serves its channels, the network process just before it serves.
 *
 * The supervisor then waits (signalfd, poll, waitpid) and logs each
 * child's end: "supervisor: key process pid N exited with status S",
 * "... killed by signal SIGKILL", for SIGSYS "... (forbidden system call
 * NAME)" from what the child's seccomp handler wrote to its report_fd.
 *   - A child that ends before it is ready at the first start: the other is
 *     stopped and cs_privsep_supervise returns 1 (the child logged why).
 *   - The key process ends: it is restarted with new channels; once it is
 *     ready their network ends go to the network process over the control
 *     pair (one SOCK_SEQPACKET message: u32 kind = 1 big-endian, the
 *     reason text, at most CS_PRIVSEP_REASON_MAX bytes, and the descriptors
 *     as SCM_RIGHTS), where the receiver thread swaps them into the token
 *     (cs_token_remote_replace) and audits keyproc.restart.
 *   - The network process ends: the key process is stopped and both are
 *     started again (the listeners stay bound in this process); the new
 *     network process gets the reason (it audits daemon.restart). Except
 *     when it exited CS_PRIVSEP_EXIT_NODE_ID: logged ("... gave up
 *     server.node_id ..."), the key process is stopped and the supervisor
 *     returns 1 (no restart).
 *   - Restarts are delayed (100 ms, doubling with each failed start in a
 *     row: a child that ended before it was ready or less than 1 s after)
 *     and bounded: the sixth failed start in a row stops the supervisor
 *     (logged; returns CS_PRIVSEP_EXIT_CRASH_LOOP). A child that served longer is restarted
 *     however often it ends (the delay back to 100 ms).
 *   - SIGTERM/SIGINT: forwarded to the network process; when it has
 *     exited, the key process gets SIGTERM (SIGKILL after 10 s; the network
 *     process after 30 s); returns the network process's exit status (1
 *     when it was killed by a signal). SIGHUP: forwarded to the network
 *     process.
 * The network process starts with SIGTERM, SIGINT and SIGHUP blocked (the
 * server takes them synchronously); the key process with the caller's mask.
 * The caller flushes nothing: stdio is flushed before each fork.
 */
#ifndef CS_PRIVSEP_H
#define CS_PRIVSEP_H

#include <stddef.h>

#include "app.h"
#include "cs_error.h"
#include "token.h"

#define CS_PRIVSEP_CHANNELS_MAX 16
#define CS_PRIVSEP_REASON_MAX 200
#define CS_PRIVSEP_NEW_CHANNELS 1u /* the control message's kind */
/* The supervisor's exit status when it stopped after failed starts in a
 * row (a crash loop), or could not restart a child after the first start:
 * not 1 (a start-up failure: the configuration, the
 * token, the PIN), so that systemd restarts the daemon after its own delay
 * (Restart=on-failure, RestartPreventExitStatus=1 2) */
#define CS_PRIVSEP_EXIT_CRASH_LOOP 3
/* A child could not reach the store's database at start (it may be
 * starting or failing over): the daemon stops with this status, which
 * systemd restarts, unlike 1 (a configuration the operator must fix). */
#define CS_PRIVSEP_EXIT_STORE_UNREACHABLE 4
/* The network process stopped (drained, as at SIGTERM) because another
 * node took its server.node_id (cs_app_node_renew): final, never
 * restarted (a restart could not claim the id); the supervisor stops the
 * daemon with status 1, which systemd does not restart. */
#define CS_PRIVSEP_EXIT_NODE_ID 5

/* What a child is given. Descriptors not named here are closed in it. */
typedef struct {
	int channels[CS_PRIVSEP_CHANNELS_MAX]; /* this process's ends; its main takes them over */
	size_t nchannels;
	int control_fd;             /* network process: its end of the control pair; key process: -1 */
	int report_fd;              /* for cs_confine_seccomp: the SIGSYS report pipe to the supervisor */
	int ready_fd;               /* written by cs_privsep_ready; -1 once it was */
	const char *restart_reason; /* network process restarted: why; else NULL */
} cs_privsep_child;

/* A child's program; its return value is its exit status. */
typedef int (*cs_privsep_main)(void *arg, cs_privsep_child *child);

typedef struct {
	size_t nchannels; /* pkcs11.sessions; capped at CS_PRIVSEP_CHANNELS_MAX */
	cs_privsep_main key_main;
	cs_privsep_main network_main;
	void *arg;
} cs_privsep_params;

/* Run the supervisor (see above) until the network process stops for good.
 * Returns the daemon's exit status: the network process's at a requested
 * stop; 1 when a child failed at the first start, restarts came too fast,
 * or the supervisor itself could not work (logged). In a child it never
 * returns. */
int cs_privsep_supervise(const cs_privsep_params *params);

/* In a child: tell the supervisor it is ready (one byte on ready_fd, which
 * is then closed). Once; later calls do nothing. */
void cs_privsep_ready(cs_privsep_child *child);

/* In the network process: a thread that receives the new channels of a
 * restarted key process on control_fd (taken over), swaps them into token
 * (cs_token_remote_replace) and audits keyproc.restart through app's audit
 * (actor system, object "key process", outcome failure, error_code the
 * reason). A malformed control message is logged and its descriptors
 * closed. Start it once app->audit and app->ledger are open, before
 * seccomp; stop it (joined; control_fd closed) before they are freed.
 * Uses poll, recvmsg, read and write. */
typedef struct cs_privsep_receiver cs_privsep_receiver;
cs_err cs_privsep_receiver_start(int control_fd, cs_token *token, cs_app *app, cs_privsep_receiver **out)
	__attribute__((warn_unused_result));
void cs_privsep_receiver_stop(cs_privsep_receiver *rx);

/* Decode one control message (pure; for the receiver and its tests):
 * CS_OK with the reason copied (NUL-terminated, printable ASCII only) into
 * reason[CS_PRIVSEP_REASON_MAX + 1]; CS_E_IPC for a short message, an
 * unknown kind, a reason too long or with other bytes. */
cs_err cs_privsep_control_decode(const unsigned char *msg, size_t len, char reason[CS_PRIVSEP_REASON_MAX + 1]);
/* Encode one into buf (cap >= 4 + CS_PRIVSEP_REASON_MAX); the reason is
 * cut at CS_PRIVSEP_REASON_MAX bytes. Returns the length. */
size_t cs_privsep_control_encode(const char *reason, unsigned char *buf, size_t cap);

#endif
