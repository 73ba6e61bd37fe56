/*
 * dbsafe_test: the db-safe character set is safe where the README says.
 *
 * 10,000 credentials of each db-* preset, drawn by the real generator (the
 * preset's plan from conf/presets.conf, cs_generate_string; a fixed-key
 * AES-128-CTR stream plays the token, so a failure can be replayed), each
 * put unescaped and unquoted into
 *   - a URI postgresql://app_user:CRED@db.example.org:5432/appdb, parsed by
 *     libpq (PQconninfoParse) and by Python's urllib.parse, and checked
 *     against RFC 3986's userinfo grammar;
 *   - a libpq key=value conninfo "user=app_user password=CRED ...", parsed
 *     by PQconninfoParse;
 *   - a POSIX shell word: a script of `printf '%s\n' CRED` lines run by sh
 *     (and by bash, when present);
 * comes back unchanged, with the other fields intact. Every character of
 * the set occurs in the sample, and none that needs quoting or encoding in
 * one of these contexts (or in an ODBC/ADO.NET connection string) is in it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/evp.h>

#include "generate.h"
#include "preset.h"
#include "test_support.h"

#define PER_PRESET 10000

static const char *const db_presets[] = {"db-production", "db-staging", "db-development"};
#define NPRESETS (sizeof(db_presets) / sizeof(db_presets[0]))
#define TOTAL (NPRESETS * PER_PRESET)

static char (*creds)[CS_CREDENTIAL_MAX];

static cs_err ctr_bytes(void *arg, uint8_t *buf, size_t n)
{
	int out = 0;
	memset(buf, 0, n);
	return EVP_EncryptUpdate(arg, buf, &out, buf, (int)n) == 1 ? CS_OK : CS_E_CRYPTO;
}

/* The credentials, drawn once for all tests. */
static int draw_all(void **state)
{
	(void)state;
	cs_preset_set *set = ts_presets_load(CREDSIGN_SOURCE_DIR "/conf/presets.conf");
	if (set == NULL)
		return -1;
	cs_err r = CS_OK;
	uint8_t key[16], iv[16] = {0};
	memset(key, 0x5d, sizeof(key));
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	creds = calloc(TOTAL, sizeof(*creds));
	if (ctx == NULL || creds == NULL || EVP_EncryptInit_ex(ctx, EVP_aes_128_ctr(), NULL, key, iv) != 1)
		r = CS_E_NOMEM;
	for (size_t k = 0; k < NPRESETS && r == CS_OK; k++) {
		const cs_preset *p = cs_preset_find(set, db_presets[k]);
		cs_plan_request q = {.type = CS_TYPE_PASSWORD};
		cs_plan plan;
		char why[400];
		if (p == NULL || strcmp(p->charset_name, "db-safe") != 0 ||
		    (r = cs_preset_plan(p, NULL, &q, &plan, why, sizeof(why))) != CS_OK) {
			fprintf(stderr, "%s: no db-safe plan\n", db_presets[k]);
			r = CS_E_CONFIG;
			break;
		}
		for (size_t i = 0; i < PER_PRESET && r == CS_OK; i++)
			r = cs_generate_string(&plan.spec, ctr_bytes, ctx, creds[k * PER_PRESET + i],
					       sizeof(creds[0]));
	}
	EVP_CIPHER_CTX_free(ctx);
	cs_presets_free(set);
	return r == CS_OK ? 0 : -1;
}

static int free_all(void **state)
{
	(void)state;
	free(creds);
	return 0;
}

static void test_set_excludes_what_needs_quoting(void **state)
{
	(void)state;
	cs_preset_set *set = ts_presets_load(CREDSIGN_SOURCE_DIR "/conf/presets.conf");
	assert_non_null(set);
	const cs_preset *p = cs_preset_find(set, "db-production");
	assert_non_null(p);
	/* shell: !$()*;<=>[]^{|}~ & ' " ` \ # ? space; URI userinfo: <>[]^{|}
	 * and : @ / ? # %; ODBC/ADO: ;={} and the grammar's []{}(),;?*=!@ */
	const char *never = "!$()*;<=>[]^{|}~&'\"`\\#?:@/% ,";
	for (const char *c = never; *c; c++)
		if (strchr(p->charset, *c) != NULL)
			fail_msg("db-safe contains '%c'", *c);
	assert_string_equal(p->charset, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+-._");
	/* the sample covers the whole set: every character is tried */
	size_t seen[128] = {0};
	for (size_t i = 0; i < TOTAL; i++)
		for (const char *c = creds[i]; *c; c++)
			seen[(unsigned char)*c]++;
	for (const char *c = p->charset; *c; c++)
		assert_true(seen[(unsigned char)*c] > 0);
	/* and credentials that begin with each special character */
	static const char specials[] = "+-._";
	unsigned starts = 0;
	for (size_t i = 0; i < TOTAL; i++)
		for (unsigned k = 0; k < 4; k++)
			if (creds[i][0] == specials[k])
				starts |= 1u << k;
	assert_int_equal(starts, 15);
	cs_presets_free(set);
}

/* The value of keyword in a parsed conninfo. */
static const char *option(const PQconninfoOption *opts, const char *keyword)
{
	for (const PQconninfoOption *o = opts; o->keyword != NULL; o++)
		if (strcmp(o->keyword, keyword) == 0)
			return o->val;
	return NULL;
}

static void check_conninfo(const char *conninfo, const char *cred)
{
	char *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
	if (opts == NULL)
		fail_msg("libpq refused %s: %s", conninfo, err != NULL ? err : "out of memory");
	const char *pw = option(opts, "password"), *user = option(opts, "user"),
		   *host = option(opts, "host"), *port = option(opts, "port"), *db = option(opts, "dbname");
	if (pw == NULL || strcmp(pw, cred) != 0 || user == NULL || strcmp(user, "app_user") != 0 ||
	    host == NULL || strcmp(host, "db.example.org") != 0 || port == NULL || strcmp(port, "5432") != 0 ||
	    db == NULL || strcmp(db, "appdb") != 0)
		fail_msg("libpq parsed %s as password=%s user=%s host=%s port=%s dbname=%s", conninfo,
			 pw ? pw : "(none)", user ? user : "(none)", host ? host : "(none)",
			 port ? port : "(none)", db ? db : "(none)");
	PQconninfoFree(opts);
}

static void test_libpq_uri_and_keyword_value(void **state)
{
	(void)state;
	char conninfo[CS_CREDENTIAL_MAX + 128];
	for (size_t i = 0; i < TOTAL; i++) {
		snprintf(conninfo, sizeof(conninfo), "postgresql://app_user:%s@db.example.org:5432/appdb",
			 creds[i]);
		check_conninfo(conninfo, creds[i]);
		snprintf(conninfo, sizeof(conninfo),
			 "user=app_user password=%s host=db.example.org port=5432 dbname=appdb", creds[i]);
		check_conninfo(conninfo, creds[i]);
	}
}

/* The credentials, one a line, in a new file; its path in path[32]. */
static void write_creds(char path[32])
{
	snprintf(path, 32, "/tmp/cs-dbsafe-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	FILE *f = fdopen(fd, "w");
	assert_non_null(f);
	for (size_t i = 0; i < TOTAL; i++)
		fprintf(f, "%s\n", creds[i]);
	assert_int_equal(fclose(f), 0);
}

static void test_python_urllib_and_rfc3986(void **state)
{
	(void)state;
	char path[32], cmd[512];
	write_creds(path);
	/* urlsplit, as clients built on it read a URI; the userinfo must also
	 * match RFC 3986's grammar (lenient parsers accept more) */
	static const char script[] =
		"import re, sys, urllib.parse\n"
		"userinfo = re.compile(r\"(?:[A-Za-z0-9._~!$&'()*+,;=:-]|%[0-9A-Fa-f]{2})*\")\n"
		"bad = n = 0\n"
		"for line in open(sys.argv[1]):\n"
		"    c = line.rstrip('\\n'); n += 1\n"
		"    uri = 'postgresql://app_user:' + c + '@db.example.org:5432/appdb'\n"
		"    try:\n"
		"        u = urllib.parse.urlsplit(uri)\n"
		"        ok = (u.scheme == 'postgresql' and u.username == 'app_user' and u.password == c\n"
		"              and urllib.parse.unquote(u.password) == c and u.hostname == 'db.example.org'\n"
		"              and u.port == 5432 and u.path == '/appdb' and not u.query and not u.fragment\n"
		"              and userinfo.fullmatch('app_user:' + c) is not None)\n"
		"    except ValueError:\n"
		"        ok = False\n"
		"    if not ok:\n"
		"        bad += 1\n"
		"        if bad <= 5: print('not unchanged:', repr(c), file=sys.stderr)\n"
		"print(n, bad)\n"
		"sys.exit(1 if bad or n == 0 else 0)\n";
	char spath[] = "/tmp/cs-dbsafe-py-XXXXXX";
	int fd = mkstemp(spath);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, script, sizeof(script) - 1), (ssize_t)(sizeof(script) - 1));
	close(fd);
	snprintf(cmd, sizeof(cmd), "python3 %s %s", spath, path);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t n = 0, bad = 1;
	int fields = fscanf(p, "%zu %zu", &n, &bad), status = pclose(p);
	unlink(spath);
	unlink(path);
	assert_int_equal(fields, 2);
	assert_int_equal(status, 0);
	assert_int_equal(n, TOTAL);
	assert_int_equal(bad, 0);
}

/* A script of `printf '%s\n' CRED` lines (the credential an unquoted
 * word) run by shell; its output must be the credentials. It runs in a
 * directory of its own: a set that is not safe may redirect to files. */
static void run_shell(const char *shell)
{
	char dir[] = "/tmp/cs-dbsafe-sh-XXXXXX", spath[64], cmd[256];
	assert_non_null(mkdtemp(dir));
	snprintf(spath, sizeof(spath), "%s/script.sh", dir);
	FILE *f = fopen(spath, "w");
	assert_non_null(f);
	for (size_t i = 0; i < TOTAL; i++)
		fprintf(f, "printf '%%s\\n' %s\n", creds[i]);
	assert_int_equal(fclose(f), 0);
	snprintf(cmd, sizeof(cmd), "cd %s && %s script.sh 2>&1", dir, shell);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	char line[CS_CREDENTIAL_MAX + 64];
	size_t n = 0, bad = 0;
	while (fgets(line, sizeof(line), p) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (n >= TOTAL || strcmp(line, creds[n]) != 0) {
			if (bad++ < 5)
				fprintf(stderr, "%s: line %zu: got '%s', want '%s'\n", shell, n + 1, line,
					n < TOTAL ? creds[n] : "(nothing)");
		}
		n++;
	}
	int status = pclose(p);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(status, 0);
	assert_int_equal(bad, 0);
	assert_int_equal(n, TOTAL);
}

static void test_posix_shell_word(void **state)
{
	(void)state;
	run_shell("sh");
	if (access("/bin/bash", X_OK) == 0)
		run_shell("/bin/bash --posix");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_excludes_what_needs_quoting),
		cmocka_unit_test(test_libpq_uri_and_keyword_value),
		cmocka_unit_test(test_python_urllib_and_rfc3986),
		cmocka_unit_test(test_posix_shell_word),
	};
	return cmocka_run_group_tests(tests, draw_all, free_all);
}
