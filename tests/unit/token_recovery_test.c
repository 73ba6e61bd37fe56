/*
 * token_recovery_test: the token layer's session pool, login and module
 * paths that only a misbehaving token, a forked child or a busy pool
 * reaches (issue 18): a child after fork, the wait for a free session
 * running out, a re-initialisation that cannot drain, the PIN flags that
 * stop a login before C_Login, a PIN pad, a PIN file that became unreadable
 * before a re-login, the PIN file's checks at read time, and modules
 * loaded by p11-kit name or failing to load or initialise. The token is the
 * SoftHSM2 test token seen through tests/fault/fault_pkcs11.c, which counts
 * the calls it is given (a refused login is asserted never to reach
 * C_Login).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "cs_log.h"
#include "cs_secret.h"
#include "test_support.h"
#include "token.h"
#include "token_internal.h"
#include "token_meter.h"

#define KEY_LABEL "recovery-sign"

static ts_fault_token tok; /* the fault module's token (test_support.h) */
static char log_path[600];

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static cs_err open_token(const char *module, const char *pin, unsigned pool, unsigned wait_ms, cs_token **out)
{
	cs_err r = ts_fault_open(module, pin, pool, NULL, out);
	if (r == CS_OK && wait_ms != 0)
		(*out)->session_wait_ms = wait_ms; /* white-box: no other thread yet */
	return r;
}

/* The key, found or made, and a signature over a fixed digest verified. */
static cs_err sign_once(cs_token *t, int *verified)
{
	cs_key_ref q = {.label = KEY_LABEL}, key;
	EVP_PKEY *pub = NULL;
	uint8_t digest[32];
	cs_es256_sig sig;
	*verified = 0;
	cs_err r = cs_token_find_key(t, &q, &key);
	if (r == CS_E_KEY_NOT_FOUND)
		r = cs_token_generate_p256(t, KEY_LABEL, &key);
	if (r == CS_OK)
		r = cs_token_public_key(t, &key, &pub);
	SHA256((const unsigned char *)"recovery", 8, digest);
	if (r == CS_OK)
		r = cs_token_sign_es256(t, &key, digest, &sig);
	*verified = r == CS_OK && ts_verify_der(pub, digest, sig.der, sig.der_len);
	EVP_PKEY_free(pub);
	return r;
}

static int group_setup(void **state)
{
	(void)state;
	if (ts_fault_token_init(&tok, 1) != 0)
		return -1;
	snprintf(log_path, sizeof(log_path), "%s/recovery-test.log", tok.dir);
	/* failing calls are remembered (cs_token_meter_pin_state) */
	cs_token_meter_track_failures();
	ts_faults("");
	return 0;
}

/* ---- fork --------------------------------------------------------------------- */

/* In a child: sign with the parent's token object (its sessions are the
 * parent's and must not be used: the fault module aborts on a handle of
 * an earlier C_Initialize). Exit status 0 when the signature verifies and
 * the child re-initialised the module `reinits` times more than the parent
 * had. exit(), not _exit(): the child's coverage counts are kept. */
static void child_signs(cs_token *t, unsigned long reinits)
{
	int ok = 0;
	cs_err r = sign_once(t, &ok);
	int status = r == CS_OK && ok ? 0 : 1;
	if (status == 0 && cs_token_reinitializations(t) != reinits)
		status = 2;
	if (status != 0)
		fprintf(stderr, "child: %s, verified %d, reinits %lu\n", cs_strerror(r), ok,
			cs_token_reinitializations(t));
	exit(status);
}

static int wait_child(pid_t pid)
{
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* A child forked from a process with open, logged-in sessions forgets them
 * and initialises the module afresh (after_fork); when that C_Initialize
 * fails, the child recovers by re-initialising, the parent is unaffected. */
static void test_child_after_fork(void **state)
{
	(void)state;
	cs_token *t = NULL;
	int ok = 0;
	assert_int_equal(open_token(NULL, tok.pin, 2, 0, &t), CS_OK);
	assert_int_equal(sign_once(t, &ok), CS_OK);
	assert_true(ok);
	unsigned long reinits = cs_token_reinitializations(t);

	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		child_signs(t, reinits);
	assert_int_equal(wait_child(pid), 0);

	/* the child's first C_Initialize fails: its pool is not ready, and
	 * the token is re-initialised (once) at its first operation */
	char rules[64];
	snprintf(rules, sizeof(rules), "C_Initialize %#lx 1\n", (unsigned long)CKR_FUNCTION_FAILED);
	ts_faults(rules);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		child_signs(t, reinits + 1);
	assert_int_equal(wait_child(pid), 0);
	ts_faults("");

	/* the parent's sessions were never touched */
	unsigned long opened = ts_fault_calls("C_OpenSession");
	assert_int_equal(sign_once(t, &ok), CS_OK);
	assert_true(ok);
	assert_int_equal(ts_fault_calls("C_OpenSession"), opened);
	assert_int_equal(cs_token_reinitializations(t), reinits);
	cs_token_close(t);
}

/* ---- a busy pool ---------------------------------------------------------------- */

struct signer {
	cs_token *t;
	cs_err r;
	int ok;
	double took;
};

static void *sign_thread(void *p)
{
	struct signer *s = p;
	double start = now_s();
	s->r = sign_once(s->t, &s->ok);
	s->took = now_s() - start;
	return NULL;
}

/* The only session is busy (a slow signature): a second caller waits for
 * it as long as configured, then CS_E_TOKEN_BUSY, without a token call;
 * the signature is not disturbed. */
static void test_wait_for_a_session_times_out(void **state)
{
	(void)state;
	cs_token *t = NULL;
	uint8_t buf[16];
	assert_int_equal(open_token(NULL, tok.pin, 1, 300, &t), CS_OK);
	struct signer s = {.t = t};
	assert_int_equal(sign_once(t, &s.ok), CS_OK); /* the key exists, its handles cached */
	ts_faults("sign-delay 1500\n");
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, sign_thread, &s), 0);
	usleep(200000); /* the signer holds the session */
	unsigned long draws = ts_fault_calls("C_GenerateRandom");
	double start = now_s();
	assert_int_equal(cs_token_random(t, buf, sizeof(buf)), CS_E_TOKEN_BUSY);
	double waited = now_s() - start;
	assert_true(waited >= 0.25 && waited < 1.2);
	assert_int_equal(ts_fault_calls("C_GenerateRandom"), draws);
	pthread_join(th, NULL);
	assert_int_equal(s.r, CS_OK);
	assert_true(s.ok);
	ts_faults("");
	/* the session is free again */
	assert_int_equal(cs_token_random(t, buf, sizeof(buf)), CS_OK);
	assert_int_equal(ts_fault_calls("C_GenerateRandom"), draws + 1);
	cs_token_close(t);
}

struct drawer {
	cs_token *t;
	cs_err r;
	double took;
};

static void *draw_thread(void *p)
{
	struct drawer *d = p;
	uint8_t buf[16];
	double start = now_s();
	d->r = cs_token_random(d->t, buf, sizeof(buf));
	d->took = now_s() - start;
	return NULL;
}

/* A draw fails twice with CKR_DEVICE_ERROR while a slow signature runs:
 * the second failure asks for a re-initialisation, which waits for the
 * signature to end (5 s at most) and, as it runs longer, is postponed:
 * no C_Finalize beside a running call. A third caller meanwhile waits for
 * the re-initialisation (CS_TOKEN_REINIT_WAIT_MS), then fails fast with
 * CS_E_TOKEN_UNAVAILABLE. The signature completes and verifies, and the
 * token serves again afterwards without a re-initialisation. */
static void test_reinit_postponed_while_an_operation_runs(void **state)
{
	(void)state;
	cs_token *t = NULL;
	char rules[96];
	uint8_t buf[16];
	assert_int_equal(open_token(NULL, tok.pin, 3, 0, &t), CS_OK);
	struct signer s = {.t = t};
	assert_int_equal(sign_once(t, &s.ok), CS_OK);
	unsigned long reinits = cs_token_reinitializations(t);
	unsigned long finalized = ts_fault_calls("C_Finalize");
	snprintf(rules, sizeof(rules), "sign-delay 5600\nC_GenerateRandom %#lx 2\n", (unsigned long)CKR_DEVICE_ERROR);
	ts_faults(rules);
	ts_log_capture(log_path);
	pthread_t signer_th, drawer_th;
	assert_int_equal(pthread_create(&signer_th, NULL, sign_thread, &s), 0);
	usleep(300000); /* the signature is under way */
	struct drawer d = {.t = t};
	assert_int_equal(pthread_create(&drawer_th, NULL, draw_thread, &d), 0);
	usleep(300000); /* the drawer waits for the signature to drain */
	double start = now_s();
	assert_int_equal(cs_token_random(t, buf, sizeof(buf)), CS_E_TOKEN_UNAVAILABLE);
	double waited = now_s() - start;
	/* one wait for the re-initialisation, not one per attempt */
	assert_true(waited >= (CS_TOKEN_REINIT_WAIT_MS - 100) / 1000.0 && waited < (CS_TOKEN_REINIT_WAIT_MS + 900) / 1000.0);
	pthread_join(drawer_th, NULL);
	pthread_join(signer_th, NULL);
	assert_true(ts_log_release("re-initialisation postponed"));
	assert_int_equal(d.r, CS_E_TOKEN_UNAVAILABLE);
	assert_true(d.took >= 4.5);
	assert_int_equal(s.r, CS_OK);
	assert_true(s.ok);
	assert_int_equal(ts_fault_calls("C_Finalize"), finalized);
	assert_int_equal(cs_token_reinitializations(t), reinits);
	ts_faults("");
	assert_int_equal(cs_token_random(t, buf, sizeof(buf)), CS_OK);
	cs_token_close(t);
}

/* ---- login ----------------------------------------------------------------------- */

/* The token's PIN flags refuse a login before C_Login: the token's retry
 * counter is never touched. The operator's message names the flag. */
static void test_pin_flags_refuse_the_login(void **state)
{
	(void)state;
	static const struct {
		const char *rule;
		cs_err err;
		cs_pin_state state;
		const char *source;
	} cases[] = {
		{"flags-set 0x40000\n", CS_E_PIN_LOCKED, CS_PIN_STATE_LOCKED, "C_GetTokenInfo: CKF_USER_PIN_LOCKED"},
		{"flags-set 0x20000\n", CS_E_PIN_FINAL_TRY, CS_PIN_STATE_FINAL_TRY,
		 "C_GetTokenInfo: CKF_USER_PIN_FINAL_TRY"},
		{"flags-set 0x80000\n", CS_E_PIN_EXPIRED, CS_PIN_STATE_EXPIRED,
		 "C_GetTokenInfo: CKF_USER_PIN_TO_BE_CHANGED"},
		{"flags-clear 0x8\n", CS_E_PIN_EXPIRED, CS_PIN_STATE_NOT_INITIALIZED,
		 "C_GetTokenInfo: CKF_USER_PIN_INITIALIZED not set"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cs_token *t = NULL;
		char source[128];
		ts_faults(cases[i].rule);
		unsigned long logins = ts_fault_calls("C_Login");
		cs_token_meter_clear();
		assert_int_equal(open_token(NULL, tok.pin, 2, 0, &t), cases[i].err);
		assert_null(t);
		assert_int_equal(ts_fault_calls("C_Login"), logins);
		assert_int_equal(cs_token_meter_pin_state(cases[i].err, source, sizeof(source)), cases[i].state);
		assert_string_equal(source, cases[i].source);
	}
	ts_faults("");
	/* a PIN that locks after start-up: the re-login the lost login needs
	 * is refused the same way */
	cs_token *t = NULL;
	uint8_t buf[16];
	char rules[96];
	assert_int_equal(open_token(NULL, tok.pin, 2, 0, &t), CS_OK);
	unsigned long logins = ts_fault_calls("C_Login");
	snprintf(rules, sizeof(rules), "flags-set 0x40000\nlogged-out\nC_GenerateRandom %#lx 1\n",
		 (unsigned long)CKR_USER_NOT_LOGGED_IN);
	ts_faults(rules);
	assert_int_equal(cs_token_random(t, buf, sizeof(buf)), CS_E_PIN_LOCKED);
	assert_int_equal(ts_fault_calls("C_Login"), logins);
	ts_faults("");
	cs_token_close(t);
}

/* A PIN pad (CKF_PROTECTED_AUTHENTICATION_PATH): with no PIN source the
 * login is C_Login without a PIN, and the token works; a token that needs
 * a login and has neither a PIN source nor a pad cannot be opened. */
static void test_protected_authentication_path(void **state)
{
	(void)state;
	cs_token *t = NULL;
	int ok = 0;
	char rules[700];
	/* first without a pad: refused before any login */
	unsigned long logins = ts_fault_calls("C_Login");
	ts_faults("");
	assert_int_equal(open_token(NULL, NULL, 2, 0, &t), CS_E_PIN_SOURCE);
	assert_null(t);
	assert_int_equal(ts_fault_calls("C_Login"), logins);
	/* the pad types the PIN (the fault module refuses a PIN given by the
	 * caller on this path, so success means none was sent) */
	snprintf(rules, sizeof(rules), "protected-auth %s\n", tok.pin);
	ts_faults(rules);
	assert_int_equal(open_token(NULL, NULL, 2, 0, &t), CS_OK);
	assert_int_equal(ts_fault_calls("C_Login"), logins + 1);
	assert_int_equal(sign_once(t, &ok), CS_OK);
	assert_true(ok);
	cs_token_close(t);
	ts_faults("");
}

/* The PIN file is read at each login: one that became unreadable (group
 * bits, a symbolic link) refuses the re-login after the token dropped the
 * login, without a C_Login and without marking the PIN bad; once it is
 * readable again the token logs in and serves. */
static void test_pin_file_unreadable_at_relogin(void **state)
{
	(void)state;
	char pin[600], link[600], text[300], rules[128];
	uint8_t buf[16];
	cs_token *t = NULL;
	FILE *f = fopen(tok.pin, "r");
	assert_non_null(f);
	assert_non_null(fgets(text, sizeof(text), f));
	fclose(f);
	snprintf(pin, sizeof(pin), "%s/relogin.pin", tok.dir);
	snprintf(link, sizeof(link), "%s/relogin-link.pin", tok.dir);
	ts_write_file(pin, text, 0600);
	assert_int_equal(open_token(NULL, pin, 2, 0, &t), CS_OK);
	snprintf(rules, sizeof(rules), "logged-out\nC_GenerateRandom %#lx 1\n", (unsigned long)CKR_USER_NOT_LOGGED_IN);

	unsigned long logins = ts_fault_calls("C_Login");
	assert_int_equal(chmod(pin, 0640), 0);
	ts_faults(rules);
	assert_int_equal(cs_token_random(t, buf, sizeof(buf)), CS_E_PIN_FILE_PERMS);
	assert_int_equal(ts_fault_calls("C_Login"), logins);

	/* it is still refused while the file stays unreadable */
	assert_int_equal(cs_token_random(t, buf, sizeof(buf)), CS_E_PIN_FILE_PERMS);
	assert_int_equal(ts_fault_calls("C_Login"), logins);

	/* readable again: logged in, served (the PIN was never judged bad) */
	assert_int_equal(chmod(pin, 0600), 0);
	assert_int_equal(cs_token_random(t, buf, sizeof(buf)), CS_OK);
	assert_int_equal(ts_fault_calls("C_Login"), logins + 1);
	ts_faults("");
	cs_token_close(t);

	/* a PIN file that is a symbolic link: stat() at open follows it, the
	 * read at login does not (O_NOFOLLOW) */
	unlink(link);
	assert_int_equal(symlink(pin, link), 0);
	logins = ts_fault_calls("C_Login");
	assert_int_equal(open_token(NULL, link, 2, 0, &t), CS_E_PIN_FILE_PERMS);
	assert_null(t);
	assert_int_equal(ts_fault_calls("C_Login"), logins);
	unlink(link);
	unlink(pin);
}

/* ---- the PIN file at read time ---------------------------------------------------- */

static cs_err read_text(const char *path, const char *content, size_t len, mode_t mode, char *out, size_t cap,
			size_t *got)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, len), (ssize_t)len);
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
	memset(out, 'x', cap);
	return cs_secret_read_file(path, out, cap, got);
}

/* Nothing of a refused file reaches the caller. */
static void assert_nothing_returned(const char *out, size_t got)
{
	assert_int_equal(got, 0);
	assert_int_equal(out[0], '\0');
}

static void test_pin_file_checks_at_read_time(void **state)
{
	(void)state;
	char path[600], link[600], sub[600], out[CS_PIN_MAX + 1], big[CS_PIN_MAX + 8];
	size_t got = 99;
	snprintf(path, sizeof(path), "%s/read.pin", tok.dir);
	snprintf(link, sizeof(link), "%s/read-link.pin", tok.dir);
	snprintf(sub, sizeof(sub), "%s/read-dir.pin", tok.dir);

	assert_int_equal(read_text(path, "1234\n", 5, 0600, out, sizeof(out), &got), CS_OK);
	assert_int_equal(got, 4);
	assert_string_equal(out, "1234");
	/* CRLF written by an editor: both removed */
	assert_int_equal(read_text(path, "1234\r\n", 6, 0600, out, sizeof(out), &got), CS_OK);
	assert_int_equal(got, 4);
	assert_string_equal(out, "1234");
	/* a PIN with a NUL inside: C_Login would see another PIN */
	assert_int_equal(read_text(path, "12\0" "34\n", 6, 0600, out, sizeof(out), &got), CS_E_PIN_FILE);
	assert_nothing_returned(out, got);
	/* empty, or a line end alone */
	assert_int_equal(read_text(path, "", 0, 0600, out, sizeof(out), &got), CS_E_PIN_FILE);
	assert_nothing_returned(out, got);
	assert_int_equal(read_text(path, "\r\n", 2, 0600, out, sizeof(out), &got), CS_E_PIN_FILE);
	assert_nothing_returned(out, got);
	/* longer than any PIN (the file is not read to its end) */
	memset(big, '7', sizeof(big));
	assert_int_equal(read_text(path, big, sizeof(big), 0600, out, sizeof(out), &got), CS_E_PIN_FILE);
	assert_nothing_returned(out, got);
	/* exactly CS_PIN_MAX: accepted; one more: refused */
	assert_int_equal(read_text(path, big, CS_PIN_MAX, 0600, out, sizeof(out), &got), CS_OK);
	assert_int_equal(got, CS_PIN_MAX);
	assert_int_equal(read_text(path, big, CS_PIN_MAX + 1, 0600, out, sizeof(out), &got), CS_E_PIN_FILE);
	assert_nothing_returned(out, got);
	/* a PIN longer than the caller's buffer */
	assert_int_equal(read_text(path, "123456\n", 7, 0600, out, 4, &got), CS_E_PIN_FILE);
	assert_nothing_returned(out, got);
	assert_int_equal(cs_secret_read_file(path, out, 0, &got), CS_E_INVALID_ARG);
	/* group or others may read it */
	assert_int_equal(read_text(path, "1234\n", 5, 0640, out, sizeof(out), &got), CS_E_PIN_FILE_PERMS);
	assert_nothing_returned(out, got);
	assert_int_equal(read_text(path, "1234\n", 5, 0604, out, sizeof(out), &got), CS_E_PIN_FILE_PERMS);
	assert_nothing_returned(out, got);
	/* a symbolic link to a good file */
	assert_int_equal(chmod(path, 0600), 0);
	unlink(link);
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(cs_secret_read_file(link, out, sizeof(out), &got), CS_E_PIN_FILE_PERMS);
	assert_nothing_returned(out, got);
	unlink(link);
	/* missing, or not a regular file */
	assert_int_equal(cs_secret_read_file(link, out, sizeof(out), &got), CS_E_PIN_FILE);
	rmdir(sub);
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_int_equal(cs_secret_read_file(sub, out, sizeof(out), &got), CS_E_PIN_FILE);
	assert_nothing_returned(out, got);
	const char *why = NULL;
	assert_int_equal(cs_secret_check_file(sub, &why), CS_E_PIN_FILE);
	assert_string_equal(why, "not a regular file");
	rmdir(sub);

	/* owned by another account: the daemon (credsignd) reads only its own
	 * PIN file; root running a tool may read the key account's */
	assert_int_equal(read_text(path, "1234\n", 5, 0600, out, sizeof(out), &got), CS_OK);
	assert_int_equal(chown(path, 65534, 65534), 0);
	assert_int_equal(cs_secret_read_file(path, out, sizeof(out), &got), geteuid() == 0 ? CS_OK : CS_E_PIN_FILE_PERMS);
	char *program = program_invocation_short_name;
	program_invocation_short_name = (char *)"credsignd";
	memset(out, 'x', sizeof(out));
	assert_int_equal(cs_secret_read_file(path, out, sizeof(out), &got), CS_E_PIN_FILE_PERMS);
	assert_nothing_returned(out, got);
	assert_int_equal(cs_secret_check_file(path, &why), CS_E_PIN_FILE_PERMS);
	program_invocation_short_name = program;
	assert_non_null(strstr(why, "uid 65534"));
	assert_non_null(strstr(why, "credsignd's key process"));
	assert_non_null(strstr(why, "chmod 600"));
	unlink(path);
}

/* ---- modules ---------------------------------------------------------------------- */

/* A module registered with p11-kit, opened by its name; names and paths
 * that load nothing, and module C_Initialize failures, fail the open with
 * a message saying what to fix. */
static void test_modules_by_name_and_load_failures(void **state)
{
	(void)state;
	cs_token *t = NULL;
	int ok = 0;
	/* SoftHSM2's own p11-kit registration (softhsm2.module) */
	assert_int_equal(open_token("softhsm2", tok.pin, 2, 0, &t), CS_OK);
	assert_int_equal(sign_once(t, &ok), CS_OK);
	assert_true(ok);
	cs_token_close(t);
	t = NULL;

	ts_log_capture(log_path);
	assert_int_equal(open_token("no-such-registered-module", tok.pin, 2, 0, &t), CS_E_MODULE_LOAD);
	assert_null(t);
	assert_true(ts_log_release("no p11-kit module named 'no-such-registered-module'"));

	ts_log_capture(log_path);
	assert_int_equal(open_token("/nonexistent/libmodule.so", tok.pin, 2, 0, &t), CS_E_MODULE_LOAD);
	assert_null(t);
	assert_true(ts_log_release("cannot load PKCS#11 module /nonexistent/libmodule.so"));

	/* a module by path whose C_Initialize fails */
	char rules[64];
	snprintf(rules, sizeof(rules), "C_Initialize %#lx\n", (unsigned long)CKR_ARGUMENTS_BAD);
	ts_faults(rules);
	ts_log_capture(log_path);
	assert_int_equal(open_token(NULL, tok.pin, 2, 0, &t), CS_E_MODULE_INIT);
	assert_null(t);
	assert_true(ts_log_release("set pkcs11.init_args"));

	/* a registered module whose C_Initialize fails (SoftHSM2 without its
	 * configuration file) */
	ts_faults("");
	char *conf = strdup(getenv("SOFTHSM2_CONF"));
	assert_non_null(conf);
	setenv("SOFTHSM2_CONF", "/nonexistent/softhsm2.conf", 1);
	ts_log_capture(log_path);
	assert_int_equal(open_token("softhsm2", tok.pin, 2, 0, &t), CS_E_MODULE_INIT);
	assert_null(t);
	assert_true(ts_log_release("C_Initialize of softhsm2"));
	setenv("SOFTHSM2_CONF", conf, 1);
	free(conf);
	/* and once it initialises, it serves */
	assert_int_equal(open_token("softhsm2", tok.pin, 2, 0, &t), CS_OK);
	assert_int_equal(sign_once(t, &ok), CS_OK);
	assert_true(ok);
	cs_token_close(t);
}

/* ---- recovery that does not cure ------------------------------------------------ */

/* Draws that keep failing: reopening, then one re-initialisation, then
 * CS_E_TOKEN_UNAVAILABLE (never an endless loop). A token that is not
 * found again after re-initialisation (its slot list fails) is "not back
 * yet": CS_E_TOKEN_UNAVAILABLE too; once it is back, it serves. A lost
 * session whose state cannot be read is recovered. */
static void test_recovery_that_does_not_cure(void **state)
{
	(void)state;
	cs_token *t = NULL;
	char rules[160];
	uint8_t buf[16];
	assert_int_equal(open_token(NULL, tok.pin, 2, 0, &t), CS_OK);

	unsigned long reinits = cs_token_reinitializations(t), recoveries = cs_token_recoveries(t);
	unsigned long draws = ts_fault_calls("C_GenerateRandom");
	snprintf(rules, sizeof(rules), "C_GenerateRandom %#lx\n", (unsigned long)CKR_DEVICE_ERROR);
	ts_faults(rules);
	memset(buf, 0xa5, sizeof(buf));
	assert_int_equal(cs_token_random(t, buf, sizeof(buf)), CS_E_TOKEN_UNAVAILABLE);
	assert_int_equal(ts_fault_calls("C_GenerateRandom"), draws + 3); /* first try, reopened, re-initialised */
	assert_int_equal(cs_token_reinitializations(t), reinits + 1);
	assert_int_equal(cs_token_recoveries(t), recoveries + 2);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0); /* nothing partial */

	/* the token is gone from its slot: not found after re-initialisation */
	usleep((TOK_BACKOFF_MAX_MS + 50) * 1000); /* the re-initialisation backoff */
	reinits = cs_token_reinitializations(t);
	snprintf(rules, sizeof(rules), "C_GenerateRandom %#lx\nC_GetSlotInfo %#lx\n", (unsigned long)CKR_DEVICE_ERROR,
		 (unsigned long)CKR_DEVICE_ERROR);
	ts_faults(rules);
	assert_int_equal(cs_token_random(t, buf, sizeof(buf)), CS_E_TOKEN_UNAVAILABLE);
	assert_int_equal(cs_token_reinitializations(t), reinits + 1);
	ts_faults("");
	assert_int_equal(ts_random_after_backoff(t, buf, sizeof(buf)), CS_OK);

	/* CKR_USER_NOT_LOGGED_IN and the session's state unreadable: a lost
	 * session, recovered by reopening */
	recoveries = cs_token_recoveries(t);
	snprintf(rules, sizeof(rules), "C_GenerateRandom %#lx 1\nC_GetSessionInfo %#lx 1\n",
		 (unsigned long)CKR_USER_NOT_LOGGED_IN, (unsigned long)CKR_SESSION_HANDLE_INVALID);
	ts_faults(rules);
	assert_int_equal(cs_token_random(t, buf, sizeof(buf)), CS_OK);
	assert_int_equal(cs_token_recoveries(t), recoveries + 1);
	ts_faults("");
	cs_token_close(t);
	cs_token_close(NULL);
}

/* Opening: arguments, URIs that match nothing, PIN sources, a session
 * whose state cannot be read (closed again, not kept). */
static void test_open_refusals(void **state)
{
	(void)state;
	cs_token *t = NULL;
	char rules[96], uri[700];
	cs_token_params p = {.module = getenv("CREDSIGN_TEST_FAULT_MODULE"), .token_uri = "pkcs11:token=cstest",
			     .pin_file = tok.pin, .pool_size = 0};
	assert_int_equal(cs_token_open(&p, &t), CS_E_INVALID_ARG);
	p.pool_size = CS_TOKEN_POOL_MAX + 1;
	assert_int_equal(cs_token_open(&p, &t), CS_E_INVALID_ARG);
	assert_int_equal(cs_token_open(NULL, &t), CS_E_INVALID_ARG);
	assert_null(t);
	assert_false(cs_token_module_is_proxy(NULL));
	p.pool_size = 1;
	/* a module that is not the URI's */
	p.token_uri = "pkcs11:library-manufacturer=Nobody;token=cstest";
	assert_int_equal(cs_token_open(&p, &t), CS_E_TOKEN_NOT_FOUND);
	/* the slot list or a slot's information fails */
	snprintf(rules, sizeof(rules), "C_GetSlotList %#lx 1\n", (unsigned long)CKR_FUNCTION_FAILED);
	ts_faults(rules);
	p.token_uri = "pkcs11:token=cstest";
	assert_int_equal(cs_token_open(&p, &t), CS_E_TOKEN_FAILED);
	snprintf(rules, sizeof(rules), "C_GetSlotInfo %#lx\n", (unsigned long)CKR_FUNCTION_FAILED);
	ts_faults(rules);
	assert_int_equal(cs_token_open(&p, &t), CS_E_TOKEN_NOT_FOUND);
	/* the new session's state cannot be read: the session is closed */
	snprintf(rules, sizeof(rules), "C_GetSessionInfo %#lx 1\n", (unsigned long)CKR_FUNCTION_FAILED);
	ts_faults(rules);
	unsigned long opened = ts_fault_calls("C_OpenSession"), closed = ts_fault_calls("C_CloseSession");
	assert_int_equal(cs_token_open(&p, &t), CS_E_TOKEN_FAILED);
	assert_int_equal(ts_fault_calls("C_OpenSession") - opened, ts_fault_calls("C_CloseSession") - closed);
	ts_faults("");
	assert_null(t);
	/* pin-source: an absolute path is a file; other schemes are refused */
	p.pin_file = NULL;
	snprintf(uri, sizeof(uri), "pkcs11:token=cstest?pin-source=%s", tok.pin);
	p.token_uri = uri;
	assert_int_equal(cs_token_open(&p, &t), CS_OK);
	cs_token_close(t);
	t = NULL;
	p.token_uri = "pkcs11:token=cstest?pin-source=env:CS_PIN";
	assert_int_equal(cs_token_open(&p, &t), CS_E_PIN_SOURCE);
	assert_null(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_child_after_fork),
		cmocka_unit_test(test_wait_for_a_session_times_out),
		cmocka_unit_test(test_reinit_postponed_while_an_operation_runs),
		cmocka_unit_test(test_pin_flags_refuse_the_login),
		cmocka_unit_test(test_protected_authentication_path),
		cmocka_unit_test(test_pin_file_unreadable_at_relogin),
		cmocka_unit_test(test_pin_file_checks_at_read_time),
		cmocka_unit_test(test_modules_by_name_and_load_failures),
		cmocka_unit_test(test_recovery_that_does_not_cure),
		cmocka_unit_test(test_open_refusals),
	};
	return cmocka_run_group_tests(tests, group_setup, NULL);
}
