/* cs_secret: see cs_secret.h. */
#include "cs_secret.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

void cs_wipe(void *p, size_t n)
{
	if (p != NULL && n > 0)
		OPENSSL_cleanse(p, n);
}

/* why's text when it names the file and accounts (one per thread) */
static _Thread_local char why_text[2 * PATH_MAX + 256];

/* "credsign (uid 999)" into text[len], the name alone ("credsign"; a uid
 * without one, or without names: "999") into name[nlen]. names: look the
 * name up (not in a process under seccomp: the user database may need
 * more system calls than its allowlist has). */
static void account_text(uid_t uid, int names, char *text, size_t len, char *name, size_t nlen)
{
	struct passwd pw, *found = NULL;
	char pwbuf[1024];
	if (names && getpwuid_r(uid, &pw, pwbuf, sizeof(pwbuf), &found) == 0 && found != NULL) {
		snprintf(text, len, "%s (uid %ld)", found->pw_name, (long)uid);
		snprintf(name, nlen, "%s", found->pw_name);
	} else {
		snprintf(text, len, "uid %ld", (long)uid);
		snprintf(name, nlen, "%ld", (long)uid);
	}
}

static cs_err check_stat(const char *path, const struct stat *st, int names, const char **why)
{
	if (!S_ISREG(st->st_mode)) {
		*why = "not a regular file";
		return CS_E_PIN_FILE;
	}
	const char *program = program_invocation_short_name;
	/* root running a tool (credsign-admin) reads the key account's PIN
	 * file: under two accounts no other account can reach both the token
	 * and the store; the daemon itself reads only a PIN file of its own */
	int root_tool = geteuid() == 0 && strcmp(program, "credsignd") != 0;
	if (st->st_uid != geteuid() && !root_tool) {
		/* who owns it, who reads it, and the fix */
		char owner[160], runner[160], name[128], unused[128];
		account_text(st->st_uid, names, owner, sizeof(owner), unused, sizeof(unused));
		account_text(geteuid(), names, runner, sizeof(runner), name, sizeof(name));
		snprintf(why_text, sizeof(why_text), "owned by %s; %s%s runs as %s: chown %s %s && chmod 600 %s", owner,
			 program, strcmp(program, "credsignd") == 0 ? "'s key process" : "", runner, name, path, path);
		*why = why_text;
		return CS_E_PIN_FILE_PERMS;
	}
	if ((st->st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		snprintf(why_text, sizeof(why_text), "group or others have access (mode %04o): chmod 600 %s",
			 (unsigned)(st->st_mode & 07777), path);
		*why = why_text;
		return CS_E_PIN_FILE_PERMS;
	}
	return CS_OK;
}

cs_err cs_secret_check_file(const char *path, const char **why)
{
	struct stat st;
	*why = NULL;
	if (stat(path, &st) != 0) {
		*why = strerror(errno);
		return CS_E_PIN_FILE;
	}
	return check_stat(path, &st, 1, why);
}

cs_err cs_secret_read_file(const char *path, char *out, size_t cap, size_t *len)
{
	cs_err r = CS_E_INTERNAL;
	const char *why = NULL;
	struct stat st;
	char buf[CS_PIN_MAX + 4];
	size_t got = 0;
	int fd = -1;

	*len = 0;
	if (cap == 0)
		return CS_E_INVALID_ARG;
	out[0] = '\0';
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		r = (errno == ELOOP) ? CS_E_PIN_FILE_PERMS : CS_E_PIN_FILE;
		goto out;
	}
	if (fstat(fd, &st) != 0) {
		r = CS_E_PIN_FILE;
		goto out;
	}
	if ((r = check_stat(path, &st, 0, &why)) != CS_OK)
		goto out;
	for (;;) {
		ssize_t n = read(fd, buf + got, sizeof(buf) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = CS_E_PIN_FILE;
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got == sizeof(buf)) {
			r = CS_E_PIN_FILE; /* longer than any PIN we accept */
			goto out;
		}
	}
	if (got > 0 && buf[got - 1] == '\n')
		got--;
	if (got > 0 && buf[got - 1] == '\r')
		got--;
	if (got == 0 || got >= cap || got > CS_PIN_MAX || memchr(buf, '\0', got) != NULL) {
		r = CS_E_PIN_FILE;
		goto out;
	}
	memcpy(out, buf, got);
	out[got] = '\0';
	*len = got;
	r = CS_OK;
out:
	cs_wipe(buf, sizeof(buf));
	if (fd >= 0)
		close(fd);
	return r;
}
