/* test_support: see test_support.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cs_log.h"
#include "ec_util.h"

#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>


void ts_write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

int ts_verify_der(EVP_PKEY *pub, const uint8_t digest[32], const uint8_t *der, size_t der_len)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pub, NULL);
	assert_non_null(ctx);
	assert_int_equal(EVP_PKEY_verify_init(ctx), 1);
	int ok = EVP_PKEY_verify(ctx, der, der_len, digest, 32);
	EVP_PKEY_CTX_free(ctx);
	return ok == 1;
}

cs_err ts_soft_sign(void *ctx, const uint8_t *input, size_t len, uint8_t raw[64])
{
	EVP_PKEY *key = ctx;
	uint8_t der[80];
	size_t der_len = sizeof(der);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	cs_err r = CS_E_CRYPTO;
	if (md != NULL && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
	    EVP_DigestSign(md, der, &der_len, input, len) == 1)
		r = cs_ecdsa_der_to_raw(der, der_len, raw);
	EVP_MD_CTX_free(md);
	return r;
}

cs_preset_set *ts_presets_load(const char *path)
{
	cs_preset_set *set = NULL;
	cs_config_diag diag;
	cs_err r = cs_presets_load(path, NULL, &set, &diag);
	for (size_t i = 0; i < diag.count; i++)
		fprintf(stderr, "%s\n", diag.messages[i]);
	cs_config_diag_free(&diag);
	return r == CS_OK ? set : NULL;
}

int ts_token_fixture(const char **module, const char **dir, char *pin, size_t pin_len)
{
	*module = getenv("CREDSIGN_TEST_MODULE");
	*dir = getenv("CREDSIGN_TEST_TOKEN_DIR");
	if (*module == NULL || *dir == NULL) {
		fprintf(stderr, "CREDSIGN_TEST_MODULE and CREDSIGN_TEST_TOKEN_DIR must be set\n");
		return -1;
	}
	snprintf(pin, pin_len, "%s/user.pin", *dir);
	return 0;
}

/* ---- a throwaway PostgreSQL cluster ------------------------------------------------ */

#include <dirent.h>
#include <glob.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <libpq-fe.h>

#define TS_PG_MAX 4
static ts_pg *ts_pg_live[TS_PG_MAX];

static void ts_pg_at_exit(void)
{
	for (int i = 0; i < TS_PG_MAX; i++)
		if (ts_pg_live[i] != NULL)
			ts_pg_stop(ts_pg_live[i]);
}

/* Run argv (as pg->uid when root), output to the cluster's log; its status. */
static int ts_pg_run(const ts_pg *pg, char *const argv[])
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		char log[128];
		snprintf(log, sizeof(log), "%s/setup.log", pg->dir);
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		if (getuid() == 0 && (setgroups(0, NULL) != 0 || setgid(pg->gid) != 0 || setuid(pg->uid) != 0))
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	int st = 0;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void ts_pg_show_log(const ts_pg *pg, const char *name)
{
	char path[128], line[512];
	snprintf(path, sizeof(path), "%s/%s", pg->dir, name);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL)
		fprintf(stderr, "  %s", line);
	fclose(f);
}

static int ts_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int port = -1;
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static int ts_pg_bindir(char *out, size_t size)
{
	const char *env = getenv("CREDSIGN_PG_BINDIR");
	if (env != NULL) {
		snprintf(out, size, "%s", env);
		return 0;
	}
	glob_t g;
	if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &g) != 0 || g.gl_pathc == 0) {
		globfree(&g);
		return -1;
	}
	snprintf(out, size, "%s", g.gl_pathv[g.gl_pathc - 1]);
	globfree(&g);
	*strrchr(out, '/') = '\0';
	return 0;
}

int ts_pg_start(ts_pg *pg)
{
	memset(pg, 0, sizeof(*pg));
	if (ts_pg_bindir(pg->bindir, sizeof(pg->bindir)) != 0) {
		fprintf(stderr, "ts_pg_start: no PostgreSQL server binaries (install postgresql)\n");
		return -1;
	}
	pg->uid = getuid();
	pg->gid = getgid();
	if (pg->uid == 0) {
		struct passwd *pw = getpwnam("postgres");
		if (pw == NULL)
			pw = getpwnam("credsign");
		if (pw == NULL) {
			fprintf(stderr, "ts_pg_start: running as root and no account postgres or credsign\n");
			return -1;
		}
		pg->uid = pw->pw_uid;
		pg->gid = pw->pw_gid;
	}
	snprintf(pg->dir, sizeof(pg->dir), "/tmp/cs-pg-XXXXXX");
	if (mkdtemp(pg->dir) == NULL || chown(pg->dir, pg->uid, pg->gid) != 0) {
		fprintf(stderr, "ts_pg_start: %s: %s\n", pg->dir, strerror(errno));
		return -1;
	}
	if ((pg->port = ts_free_port()) < 0)
		return -1;
	char data[96], initdb[300], hba[128];
	snprintf(data, sizeof(data), "%s/data", pg->dir);
	snprintf(initdb, sizeof(initdb), "%s/initdb", pg->bindir);
	char *const init_argv[] = {initdb, "-D", data, "-U", "pgsuper", "--auth=trust", "--no-sync",
				   "-E", "UTF8", "--locale=C", NULL};
	if (ts_pg_run(pg, init_argv) != 0) {
		fprintf(stderr, "ts_pg_start: initdb failed:\n");
		ts_pg_show_log(pg, "setup.log");
		return -1;
	}
	snprintf(hba, sizeof(hba), "%s/pg_hba.conf", data);
	FILE *f = fopen(hba, "w");
	if (f == NULL)
		return -1;
	fprintf(f, "local all pw_user scram-sha-256\nlocal all all trust\n");
	fclose(f);
	int registered = 0;
	for (int i = 0; i < TS_PG_MAX && !registered; i++)
		if (ts_pg_live[i] == NULL) {
			ts_pg_live[i] = pg;
			registered = 1;
		}
	static int at_exit;
	if (!at_exit && atexit(ts_pg_at_exit) == 0)
		at_exit = 1;
	if (ts_pg_ctl(pg, "start") != 0)
		return -1;
	char conn[256];
	snprintf(conn, sizeof(conn), "host=%s port=%d dbname=postgres user=pgsuper", pg->dir, pg->port);
	PGconn *c = PQconnectdb(conn);
	PGresult *res = PQstatus(c) == CONNECTION_OK ? PQexec(c, "CREATE DATABASE credsign") : NULL;
	int ok = res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK;
	if (!ok)
		fprintf(stderr, "ts_pg_start: CREATE DATABASE: %s\n", PQerrorMessage(c));
	PQclear(res);
	PQfinish(c);
	return ok ? 0 : -1;
}

int ts_pg_ctl(ts_pg *pg, const char *action)
{
	char ctl[300], data[96], log[96], opts[160];
	snprintf(ctl, sizeof(ctl), "%s/pg_ctl", pg->bindir);
	snprintf(data, sizeof(data), "%s/data", pg->dir);
	snprintf(log, sizeof(log), "%s/server.log", pg->dir);
	snprintf(opts, sizeof(opts), "-k %s -p %d -c listen_addresses='' -c fsync=off -c max_connections=200",
		 pg->dir, pg->port);
	char *const argv[] = {ctl, (char *)action, "-D", data, "-l", log, "-w", "-t", "60", "-m", "fast",
			      "-o", opts, NULL};
	int r = ts_pg_run(pg, argv);
	if (r != 0) {
		fprintf(stderr, "ts_pg_ctl %s failed (%d):\n", action, r);
		ts_pg_show_log(pg, "server.log");
		return -1;
	}
	pg->running = strcmp(action, "stop") != 0;
	return 0;
}

static void ts_rm_tree(const char *path)
{
	DIR *d = opendir(path);
	if (d != NULL) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			char sub[1024];
			snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
			struct stat st;
			if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
				ts_rm_tree(sub);
			else
				unlink(sub);
		}
		closedir(d);
	}
	rmdir(path);
}

void ts_pg_stop(ts_pg *pg)
{
	for (int i = 0; i < TS_PG_MAX; i++)
		if (ts_pg_live[i] == pg)
			ts_pg_live[i] = NULL;
	if (pg->running)
		(void)ts_pg_ctl(pg, "stop");
	if (pg->dir[0] != '\0')
		ts_rm_tree(pg->dir);
	pg->dir[0] = '\0';
}

const char *ts_pg_conninfo(const ts_pg *pg, const char *user, char *buf, size_t size)
{
	snprintf(buf, size, "host=%s port=%d dbname=credsign user=%s", pg->dir, pg->port,
		 user != NULL ? user : "pgsuper");
	return buf;
}

static PGresult *ts_pg_exec(const ts_pg *pg, const char *sql, PGconn **conn)
{
	char ci[256];
	*conn = PQconnectdb(ts_pg_conninfo(pg, NULL, ci, sizeof(ci)));
	if (PQstatus(*conn) != CONNECTION_OK) {
		fprintf(stderr, "ts_pg: %s", PQerrorMessage(*conn));
		return NULL;
	}
	PGresult *res = PQexec(*conn, sql);
	ExecStatusType st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		fprintf(stderr, "ts_pg: %s: %s", sql, PQerrorMessage(*conn));
		PQclear(res);
		return NULL;
	}
	return res;
}

int ts_pg_sql(const ts_pg *pg, const char *sql)
{
	PGconn *c = NULL;
	PGresult *res = ts_pg_exec(pg, sql, &c);
	int r = res != NULL ? 0 : -1;
	PQclear(res);
	PQfinish(c);
	return r;
}

int ts_pg_value(const ts_pg *pg, const char *sql, char *buf, size_t size)
{
	PGconn *c = NULL;
	PGresult *res = ts_pg_exec(pg, sql, &c);
	int r = res != NULL ? 0 : -1;
	buf[0] = '\0';
	if (res != NULL && PQntuples(res) > 0 && PQnfields(res) > 0 && !PQgetisnull(res, 0, 0))
		snprintf(buf, size, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	PQfinish(c);
	return r;
}

void ts_pg_target(const ts_pg *pg, const char *user, char *conninfo, size_t size, cs_store_target *t)
{
	memset(t, 0, sizeof(*t));
	t->backend = CS_STORE_POSTGRESQL;
	t->conninfo = ts_pg_conninfo(pg, user, conninfo, size);
	t->sslmode = "disable";
	t->application_name = "store_pg_test";
	t->statement_timeout_ms = 5000;
	t->connect_timeout_s = 5;
}

/* ---- scratch stores --------------------------------------------------------------- */

int ts_scratch_dir(char *dir, size_t size, const char *name, int tmpfs, mode_t base_mode)
{
	struct stat sb;
	const char *base = tmpfs && stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) ? "/dev/shm"
										   : getenv("CREDSIGN_TEST_TMP");
	if (base == NULL)
		base = "/tmp";
	(void)mkdir(base, base_mode);
	int n = snprintf(dir, size, "%s/%s-XXXXXX", base, name);
	return n > 0 && (size_t)n < size && mkdtemp(dir) != NULL ? 0 : -1;
}

int ts_scratch_remove(const char *dir)
{
	char cmd[1100];
	int n = snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (n < 0 || (size_t)n >= sizeof(cmd) || strchr(dir, '\'') != NULL)
		return -1;
	return system(cmd) == 0 ? 0 : -1;
}

sqlite3 *ts_sqlite_open(const char *path)
{
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	return db;
}

void ts_sqlite_exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg != NULL ? msg : "?");
}

int64_t ts_sqlite_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int64_t v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

int64_t ts_sqlite_path_int(const char *path, const char *sql)
{
	sqlite3 *db = ts_sqlite_open(path);
	int64_t v = ts_sqlite_int(db, sql);
	sqlite3_close(db);
	return v;
}

int64_t ts_mono_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

int ts_count_entry(void *arg, const cs_audit_entry *e, const uint8_t prev[32], const uint8_t hash[32])
{
	(void)e;
	(void)prev;
	(void)hash;
	(*(int *)arg)++;
	return 0;
}

void ts_assert_unclaimed(cs_store *s, const char *session, const char *claims, const char *cert_id)
{
	cs_session_row row;
	assert_int_equal(cs_store_session_get(s, session, &row), CS_OK);
	assert_int_equal(row.certified, 0);
	assert_string_equal(row.claims_json, claims);
	cs_session_row_free(&row);
	cs_cert_row cert;
	assert_int_equal(cs_store_cert_get(s, cert_id, &cert), CS_E_NOT_FOUND);
}

const char ts_store_v3_schema[] =
	"CREATE TABLE generation_sessions (id TEXT PRIMARY KEY, created_ms INTEGER NOT NULL, "
	"expires_ms INTEGER NOT NULL, cert_sha256 TEXT NOT NULL, claims_json TEXT NOT NULL, "
	"cert_id TEXT UNIQUE);"
	"CREATE TABLE certificates (id TEXT PRIMARY KEY, session_id TEXT NOT NULL UNIQUE "
	"REFERENCES generation_sessions(id), kid TEXT NOT NULL REFERENCES signing_keys(kid), "
	"jws TEXT NOT NULL, claims_json TEXT NOT NULL, created_ms INTEGER NOT NULL);"
	"CREATE TABLE signing_keys (kid TEXT PRIMARY KEY, uri TEXT NOT NULL, jwk_json TEXT NOT NULL, "
	"status TEXT NOT NULL, created_at TEXT NOT NULL DEFAULT "
	"(strftime('%Y-%m-%dT%H:%M:%fZ','now')));"
	"CREATE TABLE audit_log (seq INTEGER PRIMARY KEY, ts TEXT NOT NULL, node TEXT NOT NULL, "
	"actor TEXT NOT NULL, actor_cert_sha256 TEXT, role TEXT NOT NULL, action TEXT NOT NULL, "
	"object TEXT, project TEXT, environment TEXT, outcome TEXT NOT NULL, error_code TEXT, "
	"request_id TEXT, prev_hash BLOB NOT NULL, entry_hash BLOB NOT NULL);"
	"CREATE TABLE audit_checkpoints (id INTEGER PRIMARY KEY, first_seq INTEGER NOT NULL, "
	"last_seq INTEGER NOT NULL, head_hash BLOB NOT NULL, ts TEXT NOT NULL, node TEXT NOT NULL, "
	"kind TEXT NOT NULL, jws TEXT NOT NULL);"
	"CREATE INDEX generation_sessions_uncertified_expiry ON generation_sessions(expires_ms) "
	"WHERE cert_id IS NULL;";

/* ---- the fault module's token ------------------------------------------------------ */

static char fault_control[600];
static char fault_counts[600];

int ts_fault_token_init(ts_fault_token *ft, int count_calls)
{
	const char *dir = getenv("CREDSIGN_TEST_TOKEN_DIR");
	const char *control = getenv("CREDSIGN_FAULT_CONTROL");
	memset(ft, 0, sizeof(*ft));
	ft->module = getenv("CREDSIGN_TEST_FAULT_MODULE");
	if (dir == NULL || ft->module == NULL || control == NULL) {
		fprintf(stderr, "run through ctest: the fault module's variables are missing\n");
		return -1;
	}
	snprintf(ft->dir, sizeof(ft->dir), "%s", dir);
	snprintf(ft->pin, sizeof(ft->pin), "%s/user.pin", dir);
	snprintf(fault_control, sizeof(fault_control), "%s", control);
	if (count_calls) {
		/* read by the fault module when it is loaded (at the first open) */
		snprintf(ft->counts, sizeof(ft->counts), "%s/fault.counts", dir);
		snprintf(fault_counts, sizeof(fault_counts), "%s", ft->counts);
		setenv("CREDSIGN_FAULT_COUNTS", ft->counts, 1);
	}
	return 0;
}

void ts_faults(const char *rules)
{
	assert_true(fault_control[0] != '\0');
	ts_write_file(fault_control, rules, 0600);
	usleep(10000); /* the module notices changes by size and mtime */
}

unsigned long ts_fault_calls(const char *fn)
{
	char name[64];
	unsigned long n = 0, found = 0;
	FILE *f = fopen(fault_counts, "r");
	assert_non_null(f);
	while (fscanf(f, "%63s %lu", name, &n) == 2)
		if (strcmp(name, fn) == 0)
			found = n + 1;
	fclose(f);
	assert_true(found > 0); /* the function is counted */
	return found - 1;
}

cs_err ts_fault_open(const char *module, const char *pin, unsigned pool, const char *init_args, cs_token **out)
{
	cs_token_params p = {
		.module = module != NULL ? module : getenv("CREDSIGN_TEST_FAULT_MODULE"),
		.token_uri = "pkcs11:token=cstest",
		.pin_file = pin,
		.pool_size = pool,
		.read_write = 1,
		.init_args = init_args,
	};
	return cs_token_open(&p, out);
}

cs_err ts_random_after_backoff(cs_token *t, uint8_t *buf, size_t len)
{
	cs_err r = CS_E_TOKEN_UNAVAILABLE;
	for (int i = 0; i < 100 && r == CS_E_TOKEN_UNAVAILABLE; i++) {
		r = cs_token_random(t, buf, len);
		if (r == CS_E_TOKEN_UNAVAILABLE)
			usleep(20000); /* the re-initialisation backoff */
	}
	return r;
}

static char log_path[600];
static int log_fd = -1;

void ts_log_capture(const char *path)
{
	snprintf(log_path, sizeof(log_path), "%s", path);
	int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	cs_log_configure(CS_LOG_INFO, CS_LOG_LOGFMT, fd);
	if (log_fd >= 0)
		close(log_fd);
	log_fd = fd;
}

int ts_log_release(const char *text)
{
	static char buf[65536];
	cs_log_configure(CS_LOG_INFO, CS_LOG_LOGFMT, STDERR_FILENO);
	if (log_fd >= 0)
		close(log_fd);
	log_fd = -1;
	FILE *f = fopen(log_path, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if (strstr(buf, text) == NULL) {
		fprintf(stderr, "expected '%s' in the log:\n%s", text, buf);
		return 0;
	}
	return 1;
}
