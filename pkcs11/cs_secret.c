/* cs_secret: see cs_secret.h. */
#include "cs_secret.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

void cs_wipe(void *p, size_t n)
{
	if (p != NULL && n > 0)
		OPENSSL_cleanse(p, n);
}

static cs_err check_stat(const struct stat *st, const char **why)
{
	if (!S_ISREG(st->st_mode)) {
		*why = "not a regular file";
		return CS_E_PIN_FILE;
	}
	if (st->st_uid != geteuid()) {
		*why = "not owned by the user running credsign";
		return CS_E_PIN_FILE_PERMS;
	}
	if ((st->st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		*why = "group or others have access (chmod 600)";
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
	return check_stat(&st, why);
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
	if ((r = check_stat(&st, &why)) != CS_OK)
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
