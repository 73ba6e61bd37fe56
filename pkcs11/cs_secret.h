/*
 * cs_secret: handling of secrets that come from files (token PINs).
 *
 * cs_secret_read_file() reads a small secret file that must be a regular
 * file owned by the effective user with no group or other permission bits
 * (0600 or stricter); anything else is refused with CS_E_PIN_FILE_PERMS
 * before a byte is read. One trailing "\n" or "\r\n" is removed; the result
 * is NUL-terminated. Every intermediate copy is wiped with OPENSSL_cleanse,
 * on every path; the caller wipes `out` with cs_wipe() when done.
 */
#ifndef CS_SECRET_H
#define CS_SECRET_H

#include <stddef.h>

#include "cs_error.h"

#define CS_PIN_MAX 256

/* Check a secret file's type, owner and mode without reading it. *why
 * says what is wrong and the fix, naming the file, its owner and the
 * account that reads it ("owned by credsign (uid 999); credsignd's key
 * process runs as root (uid 0): chown root F && chmod 600 F"; "group or
 * others have access (mode 0640): chmod 600 F"); it stays valid until the
 * thread's next check. Looks the accounts' names up (getpwuid_r):
 * cs_secret_read_file, which may run under seccomp, does not (uids only). */
cs_err cs_secret_check_file(const char *path, const char **why);
/* Read a secret file into out[cap] (cap includes the NUL); *len excludes it. */
cs_err cs_secret_read_file(const char *path, char *out, size_t cap, size_t *len)
	__attribute__((warn_unused_result));
/* Wipe memory in a way the compiler cannot optimise away. */
void cs_wipe(void *p, size_t n);

#endif
