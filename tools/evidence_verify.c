/*
 * evidence_verify: `credsign evidence verify FILE [--jwks KEPT]` (evidence.h,
 * docs/evidence.md). Every check runs; every failure is reported with the
 * package file it concerns; exit 0 only when none failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "audit_verify.h"
#include "evidence.h"
#include "inventory.h"
#include "jose.h"
#include "json_text.h"

#define KEPT_JWKS_MAX (1 << 20)

/* one regular file of the package, its path relative to the top directory */
typedef struct {
	char *path;
	uint8_t *data; /* size bytes, NUL-terminated after them */
	size_t size;
	uint8_t sha256[32];
	int listed; /* named by the manifest */
} member;

typedef struct {
	const cs_evidence_opts *opts;
	const cs_evidence_checks *checks;
	int fd;            /* the package, open for reading */
	int64_t file_size; /* its bytes (a regular file) */
	int64_t data_read; /* the bytes of member data read so far */
	json_t *failures;  /* [{"file","code","why"}] */
	json_t *not_checked; /* [{"file","check","why"}]: checks a failure made meaningless */
	member *m;
	size_t n, cap;
	json_t *index;     /* path -> index into m */
	char top[256];
	json_t *jwks;      /* the keys checked against (kept or the package's) */
	int pinned;        /* jwks is the auditor's copy */
	json_t *manifest;  /* the signed manifest (manifest.jws's payload) */
	json_t *revoked;   /* cert id -> revocation entry */
	json_t *certs;     /* cert id -> claims (verified certificates) */
	int64_t created_ms, from_ms, to_ms;
	cs_audit_report audit;
	int audit_checked; /* chain.jsonl was walked (audit holds the report) */
	int chain_tried;   /* chain.jsonl was to be checked */
	int chain_ok;      /* ... and is intact with entries authenticated: what depends on it can be checked */
	size_t n_certs, n_records, n_entries;
} ev;

/* ---- failures -------------------------------------------------------------------- */

__attribute__((format(printf, 4, 5))) static void fail(ev *e, const char *file, const char *code, const char *fmt, ...)
{
	char why[1024], name[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(name, sizeof(name), "%s", file != NULL ? file : "(package)");
	/* names and texts come from the package: controls, and any byte
	 * above ASCII in a text that is not UTF-8, become '?' */
	char *texts[2] = {why, name};
	for (int t = 0; t < 2; t++) {
		int utf8 = cs_utf8_valid(texts[t]);
		for (char *p = texts[t]; *p != '\0'; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f || (!utf8 && (unsigned char)*p >= 0x80))
				*p = '?';
	}
	json_t *f = json_pack("{s:s, s:s, s:s}", "file", name, "code", code, "why", why);
	if (f == NULL || json_array_append_new(e->failures, f) != 0)
		fprintf(stderr, "credsign: out of memory recording: FAIL %s: %s: %s\n", name, code, why);
}

/* A check that was not run because an earlier failure (named by its own
 * FAIL line) leaves nothing to check it against. */
static void not_checked(ev *e, const char *file, const char *check, const char *why)
{
	json_t *n = json_pack("{s:s, s:s, s:s}", "file", file, "check", check, "why", why);
	if (n == NULL || json_array_append_new(e->not_checked, n) != 0)
		fprintf(stderr, "credsign: out of memory recording: NOT CHECKED %s: %s\n", file, check);
}

static void fail_why(ev *e, const char *file, const cs_evidence_why *w)
{
	fail(e, file, w->code[0] != '\0' ? w->code : "invalid", "%s", w->why);
}

/* ---- small helpers --------------------------------------------------------------- */

static member *find(ev *e, const char *path)
{
	json_t *i = path != NULL ? json_object_get(e->index, path) : NULL;
	return i != NULL ? &e->m[json_integer_value(i)] : NULL;
}

static const char *str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* RFC 3339 UTC "YYYY-MM-DDTHH:MM:SS[.fff]Z" in ms; 0 when not exactly that. */
static int parse_utc(const char *s, int64_t *ms)
{
	int y, mo, d, h, mi, sec, n = 0;
	if (s == NULL || strlen(s) < 20 || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 ||
	    n != 19 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':')
		return 0;
	const char *p = s + 19;
	int frac = 0, digits = 0;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 3)
				frac = frac * 10 + (*p - '0');
	if ((s[19] == '.' && (digits == 0 || digits > 9)) || strcmp(p, "Z") != 0)
		return 0;
	for (; digits < 3; digits++)
		frac *= 10;
	struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = sec};
	struct tm back = tm;
	time_t t = timegm(&back);
	if (t == (time_t)-1 || mo < 1 || mo > 12 || back.tm_mday != d || back.tm_mon != mo - 1 || back.tm_hour != h ||
	    back.tm_min != mi || back.tm_sec != sec)
		return 0;
	*ms = (int64_t)t * 1000 + frac;
	return 1;
}

static void hex_of(const uint8_t d[32], char out[65])
{
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < 32; i++) {
		out[2 * i] = digits[d[i] >> 4];
		out[2 * i + 1] = digits[d[i] & 15];
	}
	out[64] = '\0';
}

/* A package file's JSON (exactly one value, no duplicate keys); NULL after
 * reporting it. */
static json_t *load_json(ev *e, const char *path)
{
	member *m = find(e, path);
	if (m == NULL) {
		fail(e, path, "missing", "the package has no %s", path);
		return NULL;
	}
	json_error_t err;
	json_t *v = json_loadb((const char *)m->data, m->size, JSON_REJECT_DUPLICATES, &err);
	if (v == NULL)
		fail(e, path, "malformed", "not JSON: %s (line %d)", err.text, err.line);
	return v;
}

/* ---- 1. the archive -------------------------------------------------------------- */

/* A member's name: relative, components neither empty, "." nor ".."; a
 * directory may end in one '/'. 1 when acceptable. */
static int name_safe(const char *name, int dir, const char **why)
{
	size_t len = strlen(name);
	if (len == 0 || len > 4096) {
		*why = "an empty or overlong path";
		return 0;
	}
	if (name[0] == '/') {
		*why = "an absolute path";
		return 0;
	}
	if (dir && name[len - 1] == '/')
		len--;
	for (size_t i = 0; i < len;) {
		size_t j = i;
		while (j < len && name[j] != '/')
			j++;
		size_t c = j - i;
		if (c == 0 || (c == 1 && name[i] == '.') || (c == 2 && name[i] == '.' && name[i + 1] == '.')) {
			*why = c == 2 ? "a '..' component" : c == 1 ? "a '.' component" : "an empty component";
			return 0;
		}
		i = j + 1;
		if (j == len - 1 && j < strlen(name) && !dir) {
			*why = "a trailing '/' on a file";
			return 0;
		}
	}
	return 1;
}

/* Keeps the member (path and data become e's, also on failure); -1 when
 * memory runs out. */
static int add_member(ev *e, char *path, uint8_t *data, size_t size)
{
	unsigned int len = 0;
	if (e->n == e->cap) {
		size_t cap = e->cap != 0 ? e->cap * 2 : 64;
		member *m = realloc(e->m, cap * sizeof(*m));
		if (m == NULL)
			goto fail;
		e->m = m;
		e->cap = cap;
	}
	member *m = &e->m[e->n];
	memset(m, 0, sizeof(*m));
	m->path = path;
	m->data = data;
	m->size = size;
	if (EVP_Digest(data, size, m->sha256, &len, EVP_sha256(), NULL) != 1 || len != 32 ||
	    json_object_set_new_nocheck(e->index, path, json_integer((json_int_t)e->n)) != 0)
		goto fail;
	e->n++;
	return 0;
fail:
	free(path);
	free(data);
	return -1;
}

/* The data of a regular member whose header says size bytes (bounded by
 * the caller), NUL-terminated. The buffer grows as the bytes arrive, so a
 * header's claim costs nothing the archive does not deliver. NULL when the
 * data is shorter or longer than size (*nomem 0) or memory ran out (*nomem
 * 1). */
static uint8_t *read_data(struct archive *a, size_t size, int *nomem)
{
	size_t cap = size < 65536 ? size + 1 : 65536, got = 0;
	uint8_t *buf = malloc(cap), *more;
	*nomem = buf == NULL;
	if (buf == NULL)
		return NULL;
	while (got < size) {
		if (got == cap) {
			size_t next = cap > (size + 1) / 2 ? size + 1 : cap * 2;
			if ((more = realloc(buf, next)) == NULL)
				goto nomem;
			buf = more, cap = next;
		}
		la_ssize_t r = archive_read_data(a, buf + got, (cap < size ? cap : size) - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	uint8_t extra;
	if (got != size || archive_read_data(a, &extra, 1) != 0) {
		free(buf);
		return NULL;
	}
	if (cap < size + 1) {
		if ((more = realloc(buf, size + 1)) == NULL)
			goto nomem;
		buf = more;
	}
	buf[size] = '\0';
	return buf;
nomem:
	free(buf);
	*nomem = 1;
	return NULL;
}

/* One header: the hostility checks; 1 keep reading, 0 stop (the archive
 * is refused), -1 no memory. A regular file is read and kept. */
static int take_member(ev *e, struct archive *a, struct archive_entry *ent, json_t *seen)
{
	const char *name = archive_entry_pathname(ent), *why = NULL;
	mode_t type = archive_entry_filetype(ent);
	int dir = type == AE_IFDIR;
	if (name == NULL) {
		fail(e, "(unnamed member)", "archive_hostile", "a member without a name");
		return 0;
	}
	if (archive_entry_hardlink(ent) != NULL || archive_entry_symlink(ent) != NULL || type == AE_IFLNK) {
		fail(e, name, "archive_hostile", "a link (to %s): only regular files and directories are allowed",
		     archive_entry_hardlink(ent) != NULL ? archive_entry_hardlink(ent)
		     : archive_entry_symlink(ent) != NULL ? archive_entry_symlink(ent) : "?");
		return 0;
	}
	if (type != AE_IFREG && !dir) {
		fail(e, name, "archive_hostile", "not a regular file or a directory");
		return 0;
	}
	if (!name_safe(name, dir, &why)) {
		fail(e, name, "archive_hostile", "%s", why);
		return 0;
	}
	char full[4100];
	snprintf(full, sizeof(full), "%s", name);
	size_t len = strlen(full);
	if (dir && full[len - 1] == '/')
		full[--len] = '\0';
	if (json_object_get(seen, full) != NULL) {
		fail(e, name, "archive_hostile", "a duplicate member");
		return 0;
	}
	if (json_object_set_new_nocheck(seen, full, json_true()) != 0)
		return -1;
	const char *slash = strchr(full, '/');
	size_t toplen = slash != NULL ? (size_t)(slash - full) : len;
	if (e->top[0] == '\0' && toplen < sizeof(e->top)) {
		memcpy(e->top, full, toplen);
		e->top[toplen] = '\0';
	}
	if (strlen(e->top) != toplen || strncmp(e->top, full, toplen) != 0) {
		fail(e, name, "archive_hostile", "outside the top directory %s/ (a package has one)", e->top);
		return 0;
	}
	if (dir)
		return 1;
	if (slash == NULL) {
		fail(e, name, "archive_hostile", "a file beside the top directory, not in it");
		return 0;
	}
	/* a sparse member expands holes the archive does not hold: a package
	 * file is never sparse, and a few KB could claim gigabytes */
	if (archive_entry_sparse_count(ent) > 0) {
		fail(e, name, "archive_hostile", "a sparse member (%d regions): a package file is stored whole",
		     archive_entry_sparse_count(ent));
		return 0;
	}
	int64_t size = archive_entry_size_is_set(ent) ? archive_entry_size(ent) : -1;
	if (size < 0 || size > CS_EVIDENCE_FILE_MAX) {
		fail(e, name, "archive_too_large", "%lld bytes: a package file is at most %lld",
		     (long long)size, (long long)CS_EVIDENCE_FILE_MAX);
		return 0;
	}
	if (e->data_read + size > CS_EVIDENCE_PACKAGE_MAX || e->data_read + size > e->file_size) {
		fail(e, name, "archive_too_large", "%lld bytes after %lld: the package's files are at most %lld "
		     "bytes in all, and never more than the archive's own %lld", (long long)size,
		     (long long)e->data_read, (long long)CS_EVIDENCE_PACKAGE_MAX, (long long)e->file_size);
		return 0;
	}
	int nomem = 0;
	uint8_t *data = read_data(a, (size_t)size, &nomem);
	if (data == NULL && nomem)
		return -1;
	if (data == NULL) {
		fail(e, name, "archive_invalid", "its data is not the %lld bytes its header says: %s", (long long)size,
		     archive_error_string(a) != NULL ? archive_error_string(a) : "shorter or longer");
		return 0;
	}
	e->data_read += size;
	char *path = strdup(slash + 1);
	if (path == NULL) {
		free(data);
		return -1;
	}
	return add_member(e, path, data, (size_t)size) == 0 ? 1 : -1;
}

/* What follows the end-of-archive blocks, which end at offset end: only
 * zero padding (a tar's record), at most CS_EVIDENCE_TRAILER_MAX bytes.
 * Another header there is a member tar -i (or another reader) would
 * extract but the manifest never covered. 1 when clean, 0 refused. */
static int trailer_clean(ev *e, int64_t end)
{
	const char *pkg = e->opts->file;
	uint8_t buf[65536];
	if (end <= 0 || end > e->file_size) {
		fail(e, pkg, "archive_invalid", "cannot tell where the archive ends (%lld of %lld bytes)",
		     (long long)end, (long long)e->file_size);
		return 0;
	}
	if (e->file_size - end > CS_EVIDENCE_TRAILER_MAX) {
		fail(e, pkg, "archive_trailing_data", "%lld bytes after the end-of-archive blocks at offset %lld (at "
		     "most %lld bytes of zero padding are allowed)", (long long)(e->file_size - end), (long long)end,
		     (long long)CS_EVIDENCE_TRAILER_MAX);
		return 0;
	}
	for (int64_t at = end; at < e->file_size;) {
		size_t want = e->file_size - at < (int64_t)sizeof(buf) ? (size_t)(e->file_size - at) : sizeof(buf);
		ssize_t got = pread(e->fd, buf, want, (off_t)at);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			fail(e, pkg, "archive_invalid", "cannot read it after the end-of-archive blocks: %s",
			     got < 0 ? strerror(errno) : "it shrank while read");
			return 0;
		}
		for (ssize_t i = 0; i < got; i++)
			if (buf[i] != 0) {
				fail(e, pkg, "archive_trailing_data", "non-zero data at offset %lld; the end-of-archive "
				     "blocks end at offset %lld and only zero padding may follow (a further member "
				     "there is not covered by the manifest)", (long long)(at + i), (long long)end);
				return 0;
			}
		at += got;
	}
	return 1;
}

/* 1 when the archive passed (members kept), 0 refused (reported). */
static int read_archive(ev *e)
{
	struct archive *a = archive_read_new();
	struct archive_entry *ent;
	json_t *seen = json_object();
	int ok = 0, r = ARCHIVE_FATAL, count = 0;
	const char *pkg = e->opts->file;
	if (a == NULL || seen == NULL || archive_read_support_format_tar(a) != ARCHIVE_OK) {
		fail(e, pkg, "no_memory", "cannot set up the archive reader");
		goto out;
	}
	if (archive_read_open_fd(a, e->fd, 65536) != ARCHIVE_OK) {
		fail(e, pkg, "archive_invalid", "cannot read it as a tar archive: %s",
		     archive_error_string(a) != NULL ? archive_error_string(a) : "unknown error");
		goto out;
	}
	while ((r = archive_read_next_header(a, &ent)) == ARCHIVE_OK) {
		if (++count > CS_EVIDENCE_MEMBERS_MAX) {
			fail(e, pkg, "archive_too_large", "more than %d members", CS_EVIDENCE_MEMBERS_MAX);
			goto out;
		}
		int t = take_member(e, a, ent, seen);
		if (t < 0)
			fail(e, pkg, "no_memory", "out of memory reading the archive");
		if (t <= 0)
			goto out;
	}
	if (r != ARCHIVE_EOF) {
		fail(e, pkg, "archive_invalid", "the tar archive is damaged: %s",
		     archive_error_string(a) != NULL ? archive_error_string(a) : "unknown error");
		goto out;
	}
	if (count == 0 || e->top[0] == '\0') {
		fail(e, pkg, "archive_invalid", "an empty archive");
		goto out;
	}
	if (!trailer_clean(e, archive_filter_bytes(a, 0)))
		goto out;
	ok = 1;
	for (int i = 0; i < 2; i++) {
		const char *need = i == 0 ? "manifest.json" : "manifest.jws";
		if (find(e, need) == NULL) {
			fail(e, need, "missing", "the package has no %s", need);
			ok = 0;
		}
	}
out:
	archive_read_free(a);
	json_decref(seen);
	return ok;
}

/* ---- 2. manifest.jws, the JWKS ----------------------------------------------------- */

/* Two JWKS hold the same keys: the same kids with the same coordinates. */
static int same_keys(const json_t *a, const json_t *b, char *why, size_t n)
{
	const json_t *ka = json_object_get(a, "keys"), *kb = json_object_get(b, "keys"), *k, *o;
	size_t i, j;
	if (!json_is_array(ka) || !json_is_array(kb)) {
		snprintf(why, n, "not a JSON Web Key Set");
		return 0;
	}
	for (int pass = 0; pass < 2; pass++) {
		const json_t *from = pass == 0 ? ka : kb, *to = pass == 0 ? kb : ka;
		json_array_foreach(from, i, k) {
			const char *kid = str(k, "kid");
			int found = 0;
			json_array_foreach(to, j, o) {
				if (kid != NULL && str(o, "kid") != NULL && strcmp(kid, str(o, "kid")) == 0 &&
				    json_equal(json_object_get(k, "x"), json_object_get(o, "x")) &&
				    json_equal(json_object_get(k, "y"), json_object_get(o, "y")))
					found = 1;
			}
			if (!found) {
				snprintf(why, n, "key %s is in %s but not in %s", kid != NULL ? kid : "(no kid)",
					 pass == 0 ? "the kept JWKS" : "the package's JWKS",
					 pass == 0 ? "the package's" : "the kept one");
				return 0;
			}
		}
	}
	return 1;
}

/* The auditor's kept JWKS (--jwks): a file (or a pipe: --jwks <(curl ...))
 * of at most KEPT_JWKS_MAX bytes holding {"keys":[...]}, every key an object with a
 * string kty and kid. NULL after saying on stderr which file and why: an
 * input error of the caller (exit 2), nothing the package did. */
static json_t *load_kept_jwks(const char *path)
{
	struct stat st = {0};
	json_error_t err;
	json_t *jwks = NULL, *k;
	size_t i;
	char *buf = NULL;
	const char *why = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || fstat(fd, &st) != 0) {
		fprintf(stderr, "credsign: evidence verify: --jwks %s: cannot read it: %s\n", path, strerror(errno));
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		fprintf(stderr, "credsign: evidence verify: --jwks %s: a directory, not a JWKS file\n", path);
		goto out;
	}
	size_t got = 0;
	buf = malloc(KEPT_JWKS_MAX + 1);
	if (buf == NULL) {
		fprintf(stderr, "credsign: evidence verify: --jwks %s: out of memory\n", path);
		goto out;
	}
	for (;;) {
		ssize_t r = read(fd, buf + got, KEPT_JWKS_MAX + 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fprintf(stderr, "credsign: evidence verify: --jwks %s: cannot read it: %s\n", path,
				strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		got += (size_t)r;
		if (got > KEPT_JWKS_MAX) {
			fprintf(stderr, "credsign: evidence verify: --jwks %s: over %d bytes: not a JSON Web Key Set\n",
				path, KEPT_JWKS_MAX);
			goto out;
		}
	}
	jwks = json_loadb(buf, got, JSON_REJECT_DUPLICATES, &err);
	if (jwks == NULL) {
		fprintf(stderr, "credsign: evidence verify: --jwks %s: not JSON: %s (line %d)\n", path, err.text,
			err.line);
		goto out;
	}
	const json_t *keys = json_object_get(jwks, "keys");
	if (!json_is_array(keys))
		why = "no \"keys\" array";
	else if (json_array_size(keys) == 0)
		why = "its \"keys\" array is empty";
	json_array_foreach(keys, i, k) {
		if (why == NULL && (str(k, "kty") == NULL || str(k, "kid") == NULL))
			why = "a key without a string kty and kid";
	}
	if (why != NULL) {
		fprintf(stderr, "credsign: evidence verify: --jwks %s: not a JSON Web Key Set: %s\n", path, why);
		json_decref(jwks);
		jwks = NULL;
	}
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return jwks;
}

/* The JWKS to check against: the kept one (already loaded, e->pinned),
 * which keys/jwks.json must match, or the package's own. */
static int load_jwks(ev *e)
{
	json_t *own = load_json(e, "keys/jwks.json");
	if (!e->pinned) {
		e->jwks = own;
		return e->jwks != NULL;
	}
	char why[512];
	if (own != NULL && !same_keys(e->jwks, own, why, sizeof(why)))
		fail(e, "keys/jwks.json", "jwks_mismatch", "not the keys of the kept JWKS %s: %s", e->opts->jwks, why);
	json_decref(own);
	return 1;
}

/* The header is exactly {"alg":"ES256","kid":K,"typ":"credsign-evidence+jwt"}. */
static int manifest_header_valid(const json_t *h)
{
	return json_object_size(h) == 3 && str(h, "alg") != NULL && strcmp(str(h, "alg"), "ES256") == 0 &&
	       str(h, "kid") != NULL && str(h, "typ") != NULL && strcmp(str(h, "typ"), "credsign-evidence+jwt") == 0;
}

/* The signed manifest: 1 with e->manifest set (the JWS's payload, verified),
 * else 0 (reported: nothing the manifest says can be trusted). */
static int check_manifest(ev *e)
{
	member *json = find(e, "manifest.json"), *jws = find(e, "manifest.jws");
	json_t *peek_h = NULL, *peek_p = NULL, *header = NULL, *payload = NULL;
	EVP_PKEY *pub = NULL;
	cs_evidence_why w = {{0}, {0}};
	int ok = 0;
	char *text = (char *)jws->data;
	if (jws->size != strlen(text) || cs_jws_peek(text, &peek_h, &peek_p) != CS_OK) {
		fail(e, "manifest.jws", "malformed", "not a JWS compact serialization");
		goto out;
	}
	if (!manifest_header_valid(peek_h)) {
		fail(e, "manifest.jws", "wrong_header", "the header is not exactly {\"alg\":\"ES256\",\"kid\","
		     "\"typ\":\"credsign-evidence+jwt\"}");
		goto out;
	}
	if (!parse_utc(str(peek_p, "created_at"), &e->created_ms)) {
		fail(e, "manifest.jws", "malformed", "the signed manifest's created_at is not an RFC 3339 UTC time");
		goto out;
	}
	if (!e->checks->key(e->jwks, str(peek_h, "kid"), "evidence manifest", e->created_ms, &pub, &w)) {
		fail_why(e, "manifest.jws", &w);
		goto out;
	}
	cs_err r = cs_jws_es256_verify(text, pub, &header, &payload);
	if (r != CS_OK) {
		fail(e, "manifest.jws", r == CS_E_SIGNATURE_INVALID ? "bad_signature" : "malformed",
		     "the manifest's signature does not verify with key %s", str(peek_h, "kid"));
		goto out;
	}
	/* the payload: exactly iss, created_at and manifest.json's SHA-256 */
	char hex[65];
	for (size_t i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", json->sha256[i]);
	const char *signed_sha = str(payload, "manifest_sha256");
	if (json_object_size(payload) != 3 || str(payload, "iss") == NULL || signed_sha == NULL ||
	    str(payload, "created_at") == NULL) {
		fail(e, "manifest.jws", "malformed", "the payload is not exactly {\"created_at\",\"iss\",\"manifest_sha256\"}");
		goto out;
	}
	if (strcmp(signed_sha, hex) != 0) {
		fail(e, "manifest.json", "manifest_mismatch", "its SHA-256 %s is not the %s manifest.jws signs", hex,
		     signed_sha);
		goto out;
	}
	json_decref(payload);
	json_error_t err;
	payload = json_loadb((const char *)json->data, json->size, JSON_REJECT_DUPLICATES, &err);
	if (!json_is_object(payload)) {
		fail(e, "manifest.json", "malformed", "not a JSON object: %s (line %d)", err.text, err.line);
		goto out;
	}
	const char *fmt = str(payload, "format");
	if (fmt == NULL || strcmp(fmt, "credsign-evidence/1") != 0) {
		fail(e, "manifest.json", "wrong_format", "format is not credsign-evidence/1");
		goto out;
	}
	if (str(payload, "iss") == NULL || strcmp(str(payload, "iss"), str(peek_p, "iss")) != 0 ||
	    str(payload, "created_at") == NULL || strcmp(str(payload, "created_at"), str(peek_p, "created_at")) != 0) {
		fail(e, "manifest.json", "manifest_mismatch", "its iss and created_at are not those manifest.jws signs");
		goto out;
	}
	e->manifest = payload;
	payload = NULL;
	ok = 1;
out:
	json_decref(peek_h);
	json_decref(peek_p);
	json_decref(header);
	json_decref(payload);
	EVP_PKEY_free(pub);
	return ok;
}

/* ---- 3. the files ---------------------------------------------------------------- */

static void check_files(ev *e)
{
	json_t *files = json_object_get(e->manifest, "files"), *f;
	size_t i;
	const char *prev = NULL;
	if (!json_is_array(files)) {
		fail(e, "manifest.json", "malformed", "the manifest has no files list");
		return;
	}
	json_array_foreach(files, i, f) {
		const char *path = str(f, "path"), *sha = str(f, "sha256");
		json_t *size = json_object_get(f, "size");
		if (path == NULL || sha == NULL || strlen(sha) != 64 || !json_is_integer(size) ||
		    strcmp(path, "manifest.json") == 0 || strcmp(path, "manifest.jws") == 0) {
			fail(e, "manifest.json", "malformed", "files[%zu] is not {\"path\",\"sha256\",\"size\"} of a "
			     "package file", i);
			continue;
		}
		if (prev != NULL && strcmp(prev, path) >= 0)
			fail(e, "manifest.json", "malformed", "files are not sorted by path, or %s is listed twice", path);
		prev = path;
		member *m = find(e, path);
		if (m == NULL) {
			fail(e, path, "missing", "listed in the manifest but not in the package");
			continue;
		}
		m->listed = 1;
		char hex[65];
		hex_of(m->sha256, hex);
		if ((json_int_t)m->size != json_integer_value(size))
			fail(e, path, "size_mismatch", "%zu bytes, the manifest says %lld", m->size,
			     (long long)json_integer_value(size));
		else if (strcmp(hex, sha) != 0)
			fail(e, path, "sha256_mismatch", "SHA-256 %s, the manifest says %s", hex, sha);
	}
	for (size_t k = 0; k < e->n; k++)
		if (!e->m[k].listed && strcmp(e->m[k].path, "manifest.json") != 0 &&
		    strcmp(e->m[k].path, "manifest.jws") != 0)
			fail(e, e->m[k].path, "not_in_manifest", "a file the manifest does not list");
}

/* The manifest's signature failed: nothing it says is trusted, but its
 * hashes still point at the files that changed (reported as such). */
static void check_unsigned_files(ev *e)
{
	member *m = find(e, "manifest.json");
	size_t before = json_array_size(e->failures);
	e->manifest = m != NULL ? json_loadb((const char *)m->data, m->size, JSON_REJECT_DUPLICATES, NULL) : NULL;
	if (e->manifest != NULL)
		check_files(e);
	json_decref(e->manifest);
	e->manifest = NULL;
	if (json_array_size(e->failures) == before && !e->pinned)
		fail(e, "keys/jwks.json", "jwks_suspect", "the manifest does not verify with the package's own JWKS "
		     "(a key removed or changed here, or the manifest signed by another key): give --jwks KEPT");
}

/* ---- 6. the revocation list ------------------------------------------------------- */

static void check_revocations(ev *e)
{
	member *m = find(e, "keys/revocations.jws");
	json_t *rl = NULL, *x;
	cs_evidence_why w = {{0}, {0}};
	size_t i;
	if (m == NULL) {
		fail(e, "keys/revocations.jws", "missing", "the package has no revocation list");
		return;
	}
	const char *iss = str(e->manifest, "iss");
	if (m->size != strlen((char *)m->data) || iss == NULL ||
	    !e->checks->revocations((char *)m->data, e->jwks, iss, e->created_ms / 1000, &rl, &w)) {
		if (iss == NULL)
			fail(e, "manifest.json", "malformed", "the manifest has no iss");
		else
			fail_why(e, "keys/revocations.jws", &w);
		return;
	}
	json_array_foreach(json_object_get(rl, "revoked"), i, x)
		json_object_set(e->revoked, str(x, "id"), x);
	json_decref(rl);
}

/* ---- 4. the certificates --------------------------------------------------------- */

static void check_certificates(ev *e)
{
	const json_t *scope = json_object_get(e->manifest, "scope");
	const char *project = str(scope, "project"), *env = str(scope, "environment"), *iss = str(e->manifest, "iss");
	for (size_t i = 0; i < e->n; i++) {
		member *m = &e->m[i];
		if (strncmp(m->path, "certificates/", 13) != 0)
			continue;
		e->n_certs++;
		const char *name = m->path + 13;
		size_t len = strlen(name);
		if (len <= 4 || strcmp(name + len - 4, ".jws") != 0 || strchr(name, '/') != NULL) {
			fail(e, m->path, "unexpected_file", "not certificates/CERT_ID.jws");
			continue;
		}
		json_t *claims = NULL;
		cs_evidence_why w = {{0}, {0}};
		if (m->size != strlen((char *)m->data) || !e->checks->cert((char *)m->data, e->jwks, &claims, &w)) {
			fail_why(e, m->path, &w);
			continue;
		}
		const char *jti = str(claims, "jti");
		int64_t at = 0;
		if (jti == NULL || strlen(jti) != len - 4 || strncmp(jti, name, len - 4) != 0)
			fail(e, m->path, "wrong_name", "the certificate's jti is %s", jti != NULL ? jti : "(none)");
		else if (json_object_set(e->certs, jti, claims) != 0)
			fail(e, m->path, "no_memory", "out of memory");
		if (iss != NULL && (str(claims, "iss") == NULL || strcmp(str(claims, "iss"), iss) != 0))
			fail(e, m->path, "out_of_scope", "issuer %s, the manifest's is %s", str(claims, "iss"), iss);
		if (project == NULL || str(claims, "project") == NULL || strcmp(project, str(claims, "project")) != 0)
			fail(e, m->path, "out_of_scope", "project %s, the scope's is %s",
			     str(claims, "project") != NULL ? str(claims, "project") : "(none)", project ? project : "?");
		if (env != NULL && (str(claims, "environment") == NULL || strcmp(env, str(claims, "environment")) != 0))
			fail(e, m->path, "out_of_scope", "environment %s, the scope's is %s",
			     str(claims, "environment") != NULL ? str(claims, "environment") : "(none)", env);
		if (!parse_utc(str(claims, "certified_at"), &at) || at < e->from_ms || at > e->to_ms)
			fail(e, m->path, "out_of_scope", "certified at %s, outside the scope's %s to %s",
			     str(claims, "certified_at"), str(scope, "from"), str(scope, "to"));
		json_decref(claims);
	}
}

/* ---- 5. the inventory ------------------------------------------------------------ */

/* The claim the record's member mirrors. */
static json_t *claim_of(const json_t *claims, const char *member_name, const char *id)
{
	if (strcmp(member_name, "type") == 0)
		return json_incref(json_object_get(json_object_get(claims, "credential"), "type"));
	if (strcmp(member_name, "requester") == 0)
		return json_incref(json_object_get(json_object_get(claims, "subject"), "identity"));
	if (strcmp(member_name, "cert_url") == 0) {
		const char *iss = str(claims, "iss");
		char *url = NULL;
		if (iss == NULL || asprintf(&url, "%s/cert/%s", iss, id) < 0)
			return NULL;
		json_t *v = json_string(url);
		free(url);
		return v;
	}
	json_t *v = json_object_get(claims, member_name);
	return json_incref(v != NULL ? v : json_null());
}

static void check_record(ev *e, const json_t *rec, size_t i, json_t *seen, json_t *current)
{
	static const char *const mirrored[] = {"project", "environment", "system", "type", "preset", "standards",
					       "certified_at", "requester", "cert_url", NULL};
	const char *P = "inventory/inventory.json", *id = str(rec, "cert_id"), *state = str(rec, "state");
	if (id == NULL || state == NULL) {
		fail(e, P, "malformed", "records[%zu] has no cert_id or state", i);
		return;
	}
	if (json_object_get(seen, id) != NULL)
		fail(e, P, "duplicate_record", "certificate %s has two records", id);
	json_object_set_new(seen, id, json_true());
	const json_t *claims = json_object_get(e->certs, id);
	char path[600];
	snprintf(path, sizeof(path), "certificates/%s.jws", id);
	if (claims == NULL) {
		fail(e, P, "record_without_certificate", "the record of %s has no verified %s", id, path);
		return;
	}
	for (int k = 0; mirrored[k] != NULL; k++) {
		json_t *want = claim_of(claims, mirrored[k], id);
		if (want == NULL || !json_equal(want, json_object_get(rec, mirrored[k])))
			fail(e, P, "record_mismatch", "the record of %s: %s is not the certificate's", id, mirrored[k]);
		json_decref(want);
	}
	int revoked = json_object_get(e->revoked, id) != NULL;
	if (revoked != (strcmp(state, "revoked") == 0))
		fail(e, P, "state_mismatch", "the record of %s says %s, but the revocation list %s it", id, state,
		     revoked ? "lists" : "does not list");
	else if (strcmp(state, "revoked") != 0 && strcmp(state, "current") != 0 && strcmp(state, "superseded") != 0)
		fail(e, P, "state_mismatch", "the record of %s has the state %s", id, state);
	if (strcmp(state, "current") == 0 && str(rec, "system") != NULL) {
		char *key = NULL;
		if (asprintf(&key, "%s\x1f%s\x1f%s", str(rec, "project") ? str(rec, "project") : "",
			     str(rec, "environment") ? str(rec, "environment") : "\x1e", str(rec, "system")) < 0)
			return;
		if (json_object_get(current, key) != NULL)
			fail(e, P, "state_mismatch", "two current records for project %s, environment %s, system %s "
			     "(%s and %s)", str(rec, "project"), str(rec, "environment"), str(rec, "system"),
			     str(json_object_get(current, key), "id"), id);
		else
			json_object_set_new_nocheck(current, key, json_pack("{s:s}", "id", id));
		free(key);
	}
}

static void check_inventory(ev *e)
{
	const char *P = "inventory/inventory.json";
	json_t *inv = load_json(e, P), *seen = json_object(), *current = json_object(), *rec;
	json_t *records = json_object_get(inv, "records");
	const json_t *scope = json_object_get(e->manifest, "scope");
	size_t i;
	const char *key;
	json_t *v;
	if (inv == NULL || seen == NULL || current == NULL)
		goto out;
	if (!json_is_array(records)) {
		fail(e, P, "malformed", "no records list");
		goto out;
	}
	static const char *const scoped[] = {"project", "environment", "from", "to"};
	for (int k = 0; k < 4; k++) {
		const json_t *have = json_object_get(inv, scoped[k]), *want = json_object_get(scope, scoped[k]);
		if (!json_equal(have != NULL ? have : json_null(), want != NULL ? want : json_null()))
			fail(e, P, "out_of_scope", "its %s is %s, the manifest's scope says %s", scoped[k],
			     json_is_string(have) ? json_string_value(have) : have == NULL ? "missing" : "null",
			     json_is_string(want) ? json_string_value(want) : "null");
	}
	e->n_records = json_array_size(records);
	json_array_foreach(records, i, rec)
		check_record(e, rec, i, seen, current);
	json_object_foreach(e->certs, key, v) {
		if (json_object_get(seen, key) == NULL)
			fail(e, P, "certificate_without_record", "certificate %s has no record", key);
	}
	member *csv = find(e, "inventory/inventory.csv");
	char *want = cs_inventory_csv(records);
	if (csv == NULL)
		fail(e, "inventory/inventory.csv", "missing", "the package has no inventory CSV");
	else if (want == NULL)
		fail(e, "inventory/inventory.csv", "no_memory", "out of memory rendering the CSV");
	else if (strlen(want) != csv->size || memcmp(want, csv->data, csv->size) != 0)
		fail(e, "inventory/inventory.csv", "csv_mismatch", "not the CSV rendering of inventory.json's records");
	free(want);
out:
	json_decref(inv);
	json_decref(seen);
	json_decref(current);
}

/* ---- 7. the audit excerpt -------------------------------------------------------- */

/* chain.jsonl through cs_audit_verify_export (it reads a file). */
static void check_chain(ev *e, member *chain)
{
	const char *dir = getenv("TMPDIR");
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s/credsign-evidence-XXXXXX", dir != NULL && dir[0] == '/' ? dir : "/tmp");
	int fd = mkstemp(tmp);
	FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
	int written = f != NULL && fwrite(chain->data, 1, chain->size, f) == chain->size;
	if (f != NULL ? fclose(f) != 0 : (fd >= 0 && close(fd) != 0))
		written = 0;
	if (!written) {
		fail(e, "audit/chain.jsonl", "io_error", "cannot write a temporary copy in %s: %s", tmp, strerror(errno));
		if (fd >= 0)
			unlink(tmp);
		return;
	}
	e->chain_tried = 1;
	cs_err r = cs_audit_verify_export(tmp, e->jwks, NULL, &e->audit);
	unlink(tmp);
	if (r != CS_OK && r != CS_E_SIGNATURE_INVALID && e->audit.reason[0] == '\0') {
		fail(e, "audit/chain.jsonl", "audit_invalid", "cannot be verified (%s)", cs_strerror(r));
		return;
	}
	e->audit_checked = 1;
	if (!e->audit.intact)
		fail(e, "audit/chain.jsonl", "audit_broken", "the chain fails at seq %lld: %s",
		     (long long)e->audit.bad_seq, e->audit.reason);
	else if (e->audit.authenticated == 0 || e->audit.signed_through < e->audit.first_seq)
		fail(e, "audit/chain.jsonl", "audit_unauthenticated",
		     "no entry is authenticated: no signed checkpoint's head covers the excerpt");
	else
		e->chain_ok = 1;
}

/* Whether an entry's object names id: the id itself, or the id then a
 * space or a colon. */
static int object_names(const char *object, const char *id)
{
	size_t n = strlen(id);
	return object != NULL && n > 0 && strncmp(object, id, n) == 0 &&
	       (object[n] == '\0' || object[n] == ' ' || object[n] == ':');
}

/* Whether an audit entry's object puts it in the package's scope, as the
 * export selects entries.jsonl (tools/admin_evidence.c in_scope_object):
 * its first word (up to a space, ':', ',', ';' or '/'; 1 to 64 bytes) is
 * the id of a certificate of the package or of its generation session. */
static int in_scope(const json_t *ids, const char *object)
{
	size_t n = object != NULL ? strcspn(object, " :,;/") : 0;
	char id[65];
	if (n == 0 || n > 64)
		return 0;
	memcpy(id, object, n);
	id[n] = '\0';
	return json_object_get(ids, id) != NULL;
}

/* The ids of the scope: every certificate the signed manifest lists and
 * its generation session, in *out. 1; 0 when one of them did not verify
 * (its session is then unknown: reported not checked, naming it); -1 no
 * memory (reported). */
static int scope_ids(ev *e, json_t **out)
{
	const char *P = "audit/entries.jsonl";
	json_t *ids = json_object(), *f;
	size_t i;
	*out = NULL;
	if (ids == NULL) {
		fail(e, P, "no_memory", "out of memory");
		return -1;
	}
	json_array_foreach(json_object_get(e->manifest, "files"), i, f) {
		const char *path = str(f, "path");
		size_t len = path != NULL ? strlen(path) : 0;
		if (len <= 17 || strncmp(path, "certificates/", 13) != 0 || strcmp(path + len - 4, ".jws") != 0)
			continue;
		char *id = strndup(path + 13, len - 17);
		const json_t *claims = id != NULL ? json_object_get(e->certs, id) : NULL;
		if (claims == NULL) {
			char why[700];
			snprintf(why, sizeof(why), "that it holds exactly the in-scope entries of audit/chain.jsonl (those "
				 "naming a certificate or its generation session): %s did not verify (see its FAIL line)",
				 path);
			if (id != NULL)
				not_checked(e, P, "entries_complete", why);
			else
				fail(e, P, "no_memory", "out of memory");
			free(id);
			json_decref(ids);
			return id != NULL ? 0 : -1;
		}
		const char *session = str(claims, "generation_session_id");
		int bad = json_object_set_new_nocheck(ids, id, json_true()) != 0 ||
			  (session != NULL && json_object_set_new_nocheck(ids, session, json_true()) != 0);
		free(id);
		if (bad) {
			fail(e, P, "no_memory", "out of memory");
			json_decref(ids);
			return -1;
		}
	}
	*out = ids;
	return 1;
}

/* At most this many FAIL lines for entries.jsonl's completeness, then one
 * line counting the rest. */
#define ENTRY_FAILS_MAX 10

/* Calls fn for each line of m (a final newline ends the last line), the
 * line NUL-terminated and numbered from 1; 0, or -1 when memory ran out
 * or fn returned non-zero (no memory). */
typedef int (*line_fn)(ev *e, void *arg, const char *line, size_t no);
static int each_line(ev *e, const member *m, line_fn fn, void *arg)
{
	size_t no = 0;
	for (const char *p = (const char *)m->data, *end = p + m->size; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		char *line = strndup(p, len);
		p += len + 1;
		if (line == NULL)
			return -1;
		int r = fn(e, arg, line, ++no);
		free(line);
		if (r != 0)
			return -1;
	}
	return 0;
}

typedef struct {
	const json_t *ids;  /* the scope's ids, or NULL: completeness not checked */
	json_t *lines;      /* chain.jsonl: line -> 1 an in-scope entry, 0 another line */
	json_t *expected;   /* chain.jsonl's in-scope entries, in chain order: [{"line","seq","what"}] */
	json_t *got;        /* entries.jsonl: line -> its first line number */
	json_t *actual;     /* entries.jsonl's in-scope lines, first occurrences, in order */
	json_t *found;      /* "ACTION OBJECT" of the successful entries */
	int extra;          /* completeness failures seen (ENTRY_FAILS_MAX reported) */
} entries_walk;

static int chain_line_seen(ev *e, void *arg, const char *line, size_t no)
{
	(void)e, (void)no;
	entries_walk *w = arg;
	json_t *j = w->ids != NULL ? json_loads(line, JSON_REJECT_DUPLICATES, NULL) : NULL;
	/* only authenticated entries are expected in entries.jsonl: a line
	 * there past the signed heads is reported as not authenticated, not
	 * also as missing */
	json_int_t seq = json_integer_value(json_object_get(j, "seq"));
	int scoped = j != NULL && str(j, "type") != NULL && strcmp(str(j, "type"), "entry") == 0 &&
		     seq >= e->audit.first_seq && seq <= e->audit.signed_through && in_scope(w->ids, str(j, "object"));
	int r = json_object_get(w->lines, line) != NULL ? 0 /* a repeated line: the chain reports it */
		: json_object_set_new_nocheck(w->lines, line, json_integer(scoped));
	if (r == 0 && scoped) {
		char what[300];
		json_t *x = json_object();
		snprintf(what, sizeof(what), "%.100s %.180s", str(j, "action") != NULL ? str(j, "action") : "?",
			 str(j, "object"));
		r = x == NULL || json_object_set_new_nocheck(x, "line", json_string_nocheck(line)) != 0 ||
		    json_object_set_new_nocheck(x, "seq", json_integer(json_integer_value(json_object_get(j, "seq")))) != 0 ||
		    json_object_set_new_nocheck(x, "what", json_string_nocheck(what)) != 0 ||
		    json_array_append(w->expected, x) != 0;
		json_decref(x);
	}
	json_decref(j);
	return r;
}

__attribute__((format(printf, 3, 4))) static void entry_fail(ev *e, entries_walk *w, const char *fmt, ...)
{
	char why[1024];
	va_list ap;
	if (++w->extra > ENTRY_FAILS_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	fail(e, "audit/entries.jsonl", "entries_incomplete", "%s", why);
}

static int entries_line_seen(ev *e, void *arg, const char *line, size_t no)
{
	const char *P = "audit/entries.jsonl";
	entries_walk *w = arg;
	json_t *entry = json_loads(line, JSON_REJECT_DUPLICATES, NULL), *in = json_object_get(w->lines, line);
	json_t *seq = json_object_get(entry, "seq");
	long long s = (long long)json_integer_value(seq);
	int r = 0;
	if (entry == NULL || !json_is_integer(seq) || str(entry, "type") == NULL ||
	    strcmp(str(entry, "type"), "entry") != 0) {
		fail(e, P, "malformed", "line %zu is not an audit entry", no);
	} else if (!e->chain_ok) {
		/* nothing to compare it with: the chain's failure is reported */
	} else if (in == NULL) {
		fail(e, P, "entry_not_in_chain", "line %zu (seq %lld) is not a line of audit/chain.jsonl", no, s);
	} else if (s < e->audit.first_seq || s > e->audit.signed_through) {
		fail(e, P, "entry_not_authenticated", "line %zu (seq %lld) is not authenticated by a signed "
		     "checkpoint of audit/chain.jsonl (authenticated: seq %lld..%lld)", no, s,
		     (long long)e->audit.first_seq, (long long)e->audit.signed_through);
	} else {
		json_t *first = json_object_get(w->got, line);
		if (w->ids != NULL && json_integer_value(in) != 1)
			entry_fail(e, w, "line %zu (seq %lld, %s) is not an in-scope entry: its object names no "
				   "certificate of the package nor its generation session", no, s,
				   str(entry, "action") != NULL ? str(entry, "action") : "?");
		else if (first != NULL)
			entry_fail(e, w, "line %zu (seq %lld) repeats line %lld", no, s,
				   (long long)json_integer_value(first));
		else if (json_object_set_new_nocheck(w->got, line, json_integer((json_int_t)no)) != 0 ||
			 json_array_append_new(w->actual, json_string_nocheck(line)) != 0)
			r = -1;
		if (str(entry, "outcome") != NULL && strcmp(str(entry, "outcome"), "success") == 0 &&
		    str(entry, "action") != NULL && str(entry, "object") != NULL) {
			char key[600];
			snprintf(key, sizeof(key), "%s %s", str(entry, "action"), str(entry, "object"));
			if (json_object_set_new_nocheck(w->found, key, json_true()) != 0)
				r = -1;
		}
	}
	json_decref(entry);
	return r;
}

/* entries.jsonl is exactly chain.jsonl's in-scope entries in chain order:
 * none dropped (named by seq), repeated, foreign or moved. */
static void check_complete(ev *e, entries_walk *w)
{
	size_t i;
	json_t *x;
	json_array_foreach(w->expected, i, x)
		if (json_object_get(w->got, str(x, "line")) == NULL)
			entry_fail(e, w, "the in-scope entry seq %lld of audit/chain.jsonl (%s) is missing",
				   (long long)json_integer_value(json_object_get(x, "seq")), str(x, "what"));
	if (w->extra == 0 && json_array_size(w->actual) == json_array_size(w->expected))
		json_array_foreach(w->expected, i, x) {
			const char *have = json_string_value(json_array_get(w->actual, i));
			if (have != NULL && strcmp(have, str(x, "line")) != 0) {
				entry_fail(e, w, "line %lld is out of chain order: audit/chain.jsonl's in-scope entry "
					   "there is seq %lld (%s)",
					   (long long)json_integer_value(json_object_get(w->got, have)),
					   (long long)json_integer_value(json_object_get(x, "seq")), str(x, "what"));
				break;
			}
		}
	if (w->extra > ENTRY_FAILS_MAX)
		fail(e, "audit/entries.jsonl", "entries_incomplete", "and %d more such differences",
		     w->extra - ENTRY_FAILS_MAX);
}

static void check_entries(ev *e)
{
	const char *P = "audit/entries.jsonl";
	member *chain = find(e, "audit/chain.jsonl"), *entries = find(e, P);
	entries_walk w = {.lines = json_object(), .expected = json_array(), .got = json_object(),
			  .actual = json_array(), .found = json_object()};
	json_t *ids = NULL;
	if (chain == NULL || entries == NULL) {
		fail(e, chain == NULL ? "audit/chain.jsonl" : P, "missing", "the package has no %s",
		     chain == NULL ? "audit/chain.jsonl" : P);
		goto out;
	}
	if (chain->size == 0 && entries->size == 0 && json_object_size(e->certs) == 0 && e->n_certs == 0)
		goto out; /* no certificate in scope: nothing to authenticate */
	if (w.lines == NULL || w.expected == NULL || w.got == NULL || w.actual == NULL || w.found == NULL)
		goto nomem;
	check_chain(e, chain);
	if (e->chain_ok && scope_ids(e, &ids) < 0)
		goto out; /* no memory, reported */
	w.ids = ids;
	if (each_line(e, chain, chain_line_seen, &w) != 0)
		goto nomem;
	if (each_line(e, entries, entries_line_seen, &w) != 0)
		goto nomem;
	e->n_entries = 0;
	for (size_t k = 0; k < entries->size; k++)
		if (entries->data[k] == '\n' || k + 1 == entries->size)
			e->n_entries++;
	if (!e->chain_ok) {
		not_checked(e, P, "entries_in_chain", "that each line is a line of audit/chain.jsonl authenticated by "
			    "a signed checkpoint, and that they are all its in-scope entries: audit/chain.jsonl failed "
			    "(see its FAIL line)");
		if (json_object_size(e->certs) > 0)
			not_checked(e, P, "certificate_entries", "each certificate's successful certify and generate "
				    "entries, authenticated: audit/chain.jsonl failed (see its FAIL line)");
		goto out;
	}
	if (ids != NULL)
		check_complete(e, &w);
	/* every certificate's generate and certify entries */
	const char *id;
	json_t *claims;
	json_object_foreach(e->certs, id, claims) {
		const char *session = str(claims, "generation_session_id");
		int certify = 0, generate = 0;
		const char *k;
		json_t *v;
		json_object_foreach(w.found, k, v) {
			if (strncmp(k, "certify ", 8) == 0 && object_names(k + 8, id))
				certify = 1;
			if (session != NULL && strncmp(k, "generate ", 9) == 0 && object_names(k + 9, session))
				generate = 1;
		}
		if (!certify)
			fail(e, P, "entry_missing", "no successful certify entry for certificate %s", id);
		if (!generate)
			fail(e, P, "entry_missing", "no successful generate entry for certificate %s's session %s", id,
			     session != NULL ? session : "(none)");
	}
	goto out;
nomem:
	fail(e, P, "no_memory", "out of memory");
out:
	json_decref(ids);
	json_decref(w.lines);
	json_decref(w.expected);
	json_decref(w.got);
	json_decref(w.actual);
	json_decref(w.found);
}

/* ---- 8. the policy and the rest ---------------------------------------------------- */

static void check_policy(ev *e)
{
	const char *P = "policy/policy.json";
	json_t *policy = load_json(e, P), *copy = json_object(), *v;
	const char *key;
	if (policy == NULL || copy == NULL)
		goto out;
	if (!json_equal(json_object_get(policy, "standards"),
			json_object_get(json_object_get(e->manifest, "scope"), "standards")))
		fail(e, P, "out_of_scope", "its standards are not the scope's");
	json_object_foreach(policy, key, v)
		if (strcmp(key, "content_sha256") != 0 && strcmp(key, "approval") != 0)
			json_object_set(copy, key, v);
	char *text = cs_json_text(copy, JSON_COMPACT | JSON_SORT_KEYS);
	uint8_t md[32];
	unsigned int len = 0;
	char hex[65];
	if (text == NULL || EVP_Digest(text, strlen(text), md, &len, EVP_sha256(), NULL) != 1 || len != 32) {
		fail(e, P, "no_memory", "cannot compute its content_sha256");
	} else {
		hex_of(md, hex);
		if (str(policy, "content_sha256") == NULL || strcmp(hex, str(policy, "content_sha256")) != 0)
			fail(e, P, "content_mismatch", "content_sha256 is not the SHA-256 of its content (%s)", hex);
	}
	free(text);
	if (find(e, "policy/policy.md") == NULL)
		fail(e, "policy/policy.md", "missing", "the package has no policy/policy.md");
out:
	json_decref(policy);
	json_decref(copy);
}

static void check_counts(ev *e)
{
	static const char *const names[] = {"certificates", "inventory_records", "audit_entries", "chain_entries"};
	/* the manifest is signed (this runs only then): a count that differs is the counted file's */
	static const char *const where[] = {"certificates/", "inventory/inventory.json", "audit/entries.jsonl",
					    "audit/chain.jsonl"};
	const json_t *counts = json_object_get(e->manifest, "counts");
	int64_t have[4] = {(int64_t)e->n_certs, (int64_t)e->n_records, (int64_t)e->n_entries,
			   e->chain_ok ? e->audit.entries : -1};
	if (e->chain_tried && !e->chain_ok)
		not_checked(e, "manifest.json", "counts.chain_entries", "the entries of audit/chain.jsonl: it failed "
			    "(see its FAIL line)");
	for (int i = 0; i < 4; i++) {
		json_t *c = json_object_get(counts, names[i]);
		if (!json_is_integer(c))
			fail(e, "manifest.json", "malformed", "counts.%s is missing", names[i]);
		else if (have[i] >= 0 && json_integer_value(c) != have[i])
			fail(e, where[i], "count_mismatch", "holds %lld, the signed manifest's counts.%s says %lld",
			     (long long)have[i], names[i], (long long)json_integer_value(c));
	}
	static const char *const docs[] = {"keys/rollovers.json", "access/grants.json", NULL};
	for (int i = 0; docs[i] != NULL; i++)
		json_decref(load_json(e, docs[i]));
	if (find(e, "README.md") == NULL)
		fail(e, "README.md", "missing", "the package has no README.md");
}

static int check_scope(ev *e)
{
	const json_t *scope = json_object_get(e->manifest, "scope");
	if (str(scope, "project") == NULL || !parse_utc(str(scope, "from"), &e->from_ms) ||
	    !parse_utc(str(scope, "to"), &e->to_ms) || e->to_ms < e->from_ms ||
	    !json_is_array(json_object_get(scope, "standards"))) {
		fail(e, "manifest.json", "malformed", "the scope is not {project, environment, from, to, standards}");
		return 0;
	}
	return 1;
}

/* ---- the report ------------------------------------------------------------------ */

static int report(ev *e)
{
	size_t nf = json_array_size(e->failures), nn = json_array_size(e->not_checked), i;
	json_t *f;
	const json_t *scope = json_object_get(e->manifest, "scope");
	/* all checks passed: 0 with the keys pinned, 3 with the package's own
	 * (intact, but whoever made the package could have made its keys) */
	int rc = nf != 0 ? 1 : e->pinned ? 0 : 3;
	const char *created = str(e->manifest, "created_at");
	if (e->opts->json) {
		json_t *doc = json_pack("{s:b, s:b, s:s, s:s, s:s?, s:O, s:O, s:{s:I, s:I, s:I, s:I, s:I}}", "verified",
					nf == 0, "pinned", e->pinned, "file", e->opts->file, "keys",
					e->pinned ? "pinned" : "package", "created_at", created, "failures",
					e->failures, "not_checked", e->not_checked, "counts", "files", (json_int_t)e->n, "certificates", (json_int_t)e->n_certs,
					"inventory_records", (json_int_t)e->n_records, "audit_entries",
					(json_int_t)e->n_entries, "authenticated_through",
					(json_int_t)(e->audit_checked ? e->audit.signed_through : 0));
		char *text = doc != NULL ? json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
		int written = text != NULL;
		if (written)
			printf("%s\n", text);
		else
			fprintf(stderr, "credsign: out of memory writing the report\n");
		free(text);
		json_decref(doc);
		return written ? rc : 1;
	}
	json_array_foreach(e->failures, i, f)
		printf("FAIL %s: %s: %s\n", str(f, "file"), str(f, "code"), str(f, "why"));
	json_array_foreach(e->not_checked, i, f)
		printf("NOT CHECKED %s: %s: %s\n", str(f, "file"), str(f, "check"), str(f, "why"));
	if (nf != 0) {
		printf("NOT VERIFIED: %zu failure%s in %s", nf, nf == 1 ? "" : "s", e->opts->file);
		if (nn != 0)
			printf(" (%zu check%s not run because of them)", nn, nn == 1 ? "" : "s");
		printf("\n");
		if (created != NULL)
			printf("  created:       %s (as its signed manifest says)\n", created);
		return 1;
	}
	printf("VERIFIED evidence package %s%s\n", e->opts->file,
	       e->pinned ? "" : " against its own keys (NOT independently pinned: exit 3)");
	printf("  created:       %s, by %s for the auditor %s\n", created != NULL ? created : "?",
	       str(e->manifest, "operator") != NULL ? str(e->manifest, "operator") : "?",
	       str(json_object_get(e->manifest, "auditor"), "identity") != NULL
		       ? str(json_object_get(e->manifest, "auditor"), "identity") : "?");
	printf("  scope:         project %s, environment %s, %s to %s, standards", str(scope, "project"),
	       str(scope, "environment") != NULL ? str(scope, "environment") : "(any)", str(scope, "from"),
	       str(scope, "to"));
	json_array_foreach(json_object_get(scope, "standards"), i, f)
		printf("%s%s", i == 0 ? " " : ", ", json_string_value(f));
	printf("\n  contents:      %zu files, %zu certificates, %zu inventory records, %zu audit entries\n", e->n,
	       e->n_certs, e->n_records, e->n_entries);
	if (e->audit_checked)
		printf("  audit:         chain of %lld entries intact, seq %lld..%lld authenticated by signed "
		       "checkpoints\n", (long long)e->audit.entries, (long long)e->audit.first_seq,
		       (long long)e->audit.signed_through);
	else
		printf("  audit:         no entries (no certificate in scope)\n");
	if (e->pinned)
		printf("  keys:          pinned: the JWKS you kept (%s), which keys/jwks.json matches\n", e->opts->jwks);
	else
		printf("  keys:          the package's own keys/jwks.json, NOT independently pinned: give --jwks with "
		       "a copy you keep (the published /.well-known/jwks.json)\n");
	return rc;
}

int cs_evidence_verify(const cs_evidence_opts *opts, const cs_evidence_checks *checks)
{
	ev e = {.opts = opts, .checks = checks, .fd = -1};
	struct stat st = {0};
	int rc = 2;
	/* what the caller named must be readable: an input error, not the package's failure */
	if (opts->jwks != NULL) {
		if ((e.jwks = load_kept_jwks(opts->jwks)) == NULL)
			return 2;
		e.pinned = 1;
	}
	e.fd = open(opts->file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (e.fd < 0 || fstat(e.fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "credsign: evidence verify: %s: cannot read it: %s\n", opts->file,
			e.fd < 0 || st.st_mode == 0 ? strerror(errno)
			: S_ISDIR(st.st_mode) ? "a directory, not a package"
					     : "not a regular file (a package is read twice: save it to a file first)");
		goto out;
	}
	e.file_size = (int64_t)st.st_size;
	rc = 1;
	e.failures = json_array();
	e.revoked = json_object();
	e.certs = json_object();
	e.index = json_object();
	e.not_checked = json_array();
	if (e.failures == NULL || e.revoked == NULL || e.certs == NULL || e.index == NULL || e.not_checked == NULL) {
		fprintf(stderr, "credsign: out of memory\n");
		goto out;
	}
	if (read_archive(&e)) {
		int keys = load_jwks(&e);
		if (!keys || !check_manifest(&e))
			check_unsigned_files(&e);
	}
	if (e.manifest != NULL) {
		check_files(&e);
		if (check_scope(&e)) {
			check_revocations(&e);
			check_certificates(&e);
			check_inventory(&e);
			check_entries(&e);
			check_policy(&e);
			check_counts(&e);
		}
	}
	if (json_array_size(e.failures) == 0 && e.manifest == NULL)
		fail(&e, opts->file, "invalid", "the package could not be checked");
	rc = report(&e);
out:
	for (size_t i = 0; i < e.n; i++) {
		free(e.m[i].path);
		free(e.m[i].data);
	}
	free(e.m);
	if (e.fd >= 0)
		close(e.fd);
	json_decref(e.failures);
	json_decref(e.not_checked);
	json_decref(e.jwks);
	json_decref(e.manifest);
	json_decref(e.revoked);
	json_decref(e.certs);
	json_decref(e.index);
	return rc;
}
