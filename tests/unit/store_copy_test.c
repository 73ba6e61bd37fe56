/*
 * store_copy_test: credsign-admin store init and store migrate (store_copy.h,
 * tools/admin_store.c) against a throwaway PostgreSQL cluster this test
 * starts (initdb as the postgres account, a Unix socket in a temporary
 * directory, stopped at the end, and by a watchdog if the test dies).
 *
 *  - a SQLite store with a row in every table (keys of both kinds,
 *    sessions certified and not, certificates, a ceremony with an approval,
 *    a rollover, a revocation, a signature with a binary payload, the
 *    node id, the probe, signed checkpoints and a purge) is migrated by
 *    the CLI: every table's count equal, store_meta's values copied (the
 *    revocations' count not counted twice by the destination's trigger),
 *    the audit log verifies in PostgreSQL exactly as in SQLite, a
 *    certificate and a signature read through a PostgreSQL cs_store equal
 *    the SQLite ones byte for byte, the identity sequences past the
 *    copied ids, store.migrate recorded;
 *  - a second migrate into the same store is refused (not empty), nothing
 *    written;
 *  - a SQLite store whose audit log was edited is refused before anything
 *    is written (not even the schema);
 *  - a copy that fails (the source missing, a directory, not a database,
 *    a table missing on either side, a value of another type, text
 *    holding a NUL, a store_meta value that is not an integer) is refused
 *    and writes nothing; compare fails on such stores too;
 *  - store init creates the schema, prints its version and the node
 *    role's grants (the audit log: INSERT and SELECT only); with a SQLite
 *    configuration there is nothing to init; a password in
 *    --owner-connection is refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "audit.h"
#include "audit_verify.h"
#include "ec_util.h"
#include "jose.h"
#include "ledger.h"
#include "store.h"
#include "store_copy.h"
#include "test_support.h"

#define PG_BIN "/usr/lib/postgresql/15/bin"

static char dir[256];     /* the test's directory: the cluster, the stores, the configurations */
static int port;          /* the cluster's socket: DIR/.s.PGSQL.PORT */
static int cluster_up;
static EVP_PKEY *key;
static char kid[44];
static json_t *jwks;

/* ---- the cluster ------------------------------------------------------------------ */

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int rc = system(cmd);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int p = -1;
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		p = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return p;
}

static void conninfo(char *out, size_t n, const char *db)
{
	snprintf(out, n, "host=%s port=%d user=postgres dbname=%s", dir, port, db);
}

static PGconn *pg(const char *db)
{
	char ci[512];
	conninfo(ci, sizeof(ci), db);
	PGconn *c = PQconnectdb(ci);
	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("connecting to %s: %s", db, PQerrorMessage(c));
	return c;
}

/* One value of sql in db as text (malloc'd; "" for none, "NULL" for NULL). */
static char *pg_value(const char *db, const char *sql)
{
	PGconn *c = pg(db);
	PGresult *res = PQexec(c, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	char *v = strdup(PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) == 0 ? ""
			 : PQgetisnull(res, 0, 0)                                        ? "NULL"
											 : PQgetvalue(res, 0, 0));
	PQclear(res);
	PQfinish(c);
	return v;
}

static void pg_do(const char *db, const char *sql)
{
	free(pg_value(db, sql));
}

static cs_store_target pg_target(const char *db, char *ci, size_t n)
{
	conninfo(ci, n, db);
	cs_store_target t = {.backend = CS_STORE_POSTGRESQL, .conninfo = ci, .sslmode = "disable",
			     .application_name = "store_copy_test", .connect_timeout_s = 5};
	return t;
}

static int start_cluster(void)
{
	if (access(PG_BIN "/initdb", X_OK) != 0) {
		fprintf(stderr, "PostgreSQL 15 is not installed: run hsm-setup/install-deps\n");
		return -1;
	}
	if ((port = free_port()) < 0)
		return -1;
	/* PostgreSQL refuses to run as root: the postgres account owns the cluster */
	if (run("chown postgres '%s' && runuser -u postgres -- %s/initdb -D '%s/pg' -A trust -U postgres -E UTF8 "
		"--no-sync > '%s/initdb.log' 2>&1",
		dir, PG_BIN, dir, dir) != 0)
		return -1;
	if (run("runuser -u postgres -- %s/pg_ctl -D '%s/pg' -l '%s/pg.log' -w -t 60 -o \"-p %d -k '%s' "
		"-c listen_addresses='' -c fsync=off -c max_connections=50\" start < /dev/null > /dev/null",
		PG_BIN, dir, dir, port, dir) != 0) {
		(void)run("cat '%s/pg.log' >&2", dir);
		return -1;
	}
	cluster_up = 1;
	/* a watchdog: the cluster goes when this process does, however it ends */
	(void)run("sh -c 'while kill -0 %ld 2> /dev/null; do sleep 1; done; runuser -u postgres -- %s/pg_ctl "
		  "-D \"%s/pg\" -m immediate stop' > /dev/null 2>&1 &",
		  (long)getpid(), PG_BIN, dir);
	return 0;
}

/* ---- a SQLite store with a row in every table ---------------------------------------- */

static cs_err sign_checkpoint(void *arg, int64_t first, int64_t last, const uint8_t head[32], const char *ts,
			      const char *node, const char *kind, char **jws)
{
	(void)arg;
	char *h = cs_b64url_encode(head, 32);
	json_t *claims = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s}", "first_seq", (json_int_t)first, "last_seq",
				   (json_int_t)last, "head_hash", h, "time", ts, "node", node, "kind", kind);
	json_t *header = json_pack("{s:s, s:s, s:s}", "alg", "ES256", "typ", CS_CHECKPOINT_TYP, "kid", kid);
	cs_err r = cs_jws_es256_sign(header, claims, ts_soft_sign, key, jws);
	free(h);
	json_decref(claims);
	json_decref(header);
	return r;
}

static void append(cs_ledger *l, int n, const char *ts)
{
	for (int i = 0; i < n; i++) {
		cs_audit_entry e = {.ts = ts, .node = "node-a", .actor = "spiffe://credsign.test/a", .role = "client",
				    .action = "cert.read", .object = "obj\ttab\\slash\nline", /* COPY's escapes */
				    .project = i % 2 ? "payments" : NULL, .outcome = "success"};
		assert_int_equal(cs_ledger_audit_append(l, &e), CS_OK);
	}
}

static const unsigned char payload[] = {0x00, 0x01, '\\', '\t', '\n', 0xff, 0xfe, 'x'};

static void make_store(const char *path)
{
	cs_ledger *l = NULL;
	cs_store *s = NULL;
	int64_t first = 0, last = 0, seq = 0;
	uint8_t hash[32];
	char ts[32];
	int claimed = 0;
	char *holder = NULL;
	json_t *jwk = json_array_get(json_object_get(jwks, "keys"), 0);
	char *jwk_text = json_dumps(jwk, JSON_COMPACT | JSON_SORT_KEYS);
	assert_non_null(jwk_text);

	assert_int_equal(cs_ledger_open(path, 5000, &l), CS_OK);
	append(l, 10, "2020-01-01T00:00:00.000Z"); /* old: purged below */
	assert_int_equal(cs_ledger_checkpoint_make(l, "node-a", "periodic", sign_checkpoint, NULL, &first, &last),
			 CS_OK);
	assert_int_equal(cs_ledger_audit_purge(l, "2021-01-01T00:00:00.000Z", "node-a", sign_checkpoint, NULL, &first,
					       &last),
			 CS_OK);
	assert_true(last > 0);
	append(l, 6, NULL);
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	assert_int_equal(cs_store_audit_last(s, &seq, hash, ts), CS_OK);

	assert_int_equal(cs_store_write_begin(s, 0), CS_OK);
	cs_key_info k1 = {.kid = kid, .uri = "pkcs11:token=t;object=k1", .jwk_json = jwk_text, .status = "active",
			  .label = "k1", .created_by = "local:root", .activated_at = "2024-01-01T00:00:00.000Z"};
	cs_key_info k2 = {.kid = "profile-key-2", .uri = "pkcs11:token=t;object=k2", .jwk_json = "{\"kty\":\"EC\"}",
			  .status = "active", .profile = "release"};
	assert_int_equal(cs_store_key_insert(s, &k1), CS_OK);
	assert_int_equal(cs_store_key_insert(s, &k2), CS_OK);
	for (int i = 1; i <= 3; i++) {
		cs_gen_session g = {.created_ms = 1000 + i, .expires_ms = 4102444800000LL,
				    .claims_json = "{\"sub\":\"s\",\"quote\":\"a\\\"b\"}"};
		snprintf(g.id, sizeof(g.id), "sess-%d", i);
		snprintf(g.cert_sha256, sizeof(g.cert_sha256), "%064d", i);
		assert_int_equal(cs_store_session_insert(s, &g), CS_OK);
	}
	for (int i = 1; i <= 2; i++) { /* sess-3 stays uncertified, its claims kept */
		char sid[32], cid[32];
		snprintf(sid, sizeof(sid), "sess-%d", i);
		snprintf(cid, sizeof(cid), "cert-%d", i);
		assert_int_equal(cs_store_session_claim(s, sid, cid, &claimed), CS_OK);
		assert_int_equal(claimed, 1);
		/* cert-2 has the claims the inventory reads (issue 19), cert-1 none */
		cs_cert_parts p = {.header_b64 = "eyJhbGciOiJFUzI1NiJ9",
				   .claims_json = i == 1 ? "{\"iss\":\"credsign\",\"text\":\"tab\\there \\u00e9\"}"
							 : "{\"iss\":\"credsign\",\"project\":\"p\\u00e9\","
							   "\"environment\":\"prod\",\"system\":\"db 1\"}",
				   .signature_b64 = "c2lnbmF0dXJl"};
		assert_int_equal(cs_store_cert_insert(s, cid, sid, kid, &p, 2000 + i), CS_OK);
	}
	cs_ceremony_record c = {.id = "cer_aaaaaaaaaaaaaaaaaaaaaaaaaa", .action = "revoke", .subject = "cert-1",
				.reason = "key loss", .params_json = "{}", .nonce = "n1", .node = "node-a",
				.created_at = "2024-01-02T00:00:00.000Z", .expires_at = "2024-01-03T00:00:00.000Z",
				.started_by = "local:root", .canonical = "canonical\nbytes"};
	assert_int_equal(cs_store_ceremony_insert(s, &c), CS_OK);
	cs_approval_record a = {.ceremony_id = c.id, .officer = "alice", .fingerprint = "ab:cd",
				.cert_pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
				.sig_alg = "ES256", .signature_b64 = "c2ln", .approved_at = "2024-01-02T01:00:00.000Z",
				.approved_by = "local:alice"};
	assert_int_equal(cs_store_approval_insert(s, &a), CS_OK);
	assert_int_equal(cs_store_ceremony_close(s, c.id, "2024-01-02T02:00:00.000Z", "local:root", "{\"ok\":true}"),
			 CS_OK);
	cs_rollover_record ro = {.ceremony_id = c.id, .new_kid = kid, .statement_json = "{\"new\":1}",
				 .created_at = "2024-01-02T02:00:00.000Z"};
	assert_int_equal(cs_store_rollover_insert(s, &ro), CS_OK);
	cs_revocation_record rv = {.cert_id = "cert-1", .reason = "key loss", .revoked_at = "2024-01-02T02:00:00.000Z",
				   .revoked_by = "local:root", .ceremony_id = c.id};
	assert_int_equal(cs_store_revocation_insert(s, &rv), CS_OK);
	cs_signature_record sg = {.id = "sig-1", .profile = "release", .format = "jws", .requester = "spiffe://t/r",
				  .requester_cert_sha256 = "aa", .created_at = ts,
				  .signed_sha256 = "0000000000000000000000000000000000000000000000000000000000000001",
				  .kid = "profile-key-2", .signature = "h..s", .payload = payload,
				  .payload_len = sizeof(payload), .audit_seq = seq};
	assert_int_equal(cs_store_signature_insert(s, &sg), CS_OK);
	assert_int_equal(cs_store_probe_write(s, 12345), CS_OK);
	assert_int_equal(cs_store_node_claim(s, "node-a", "0123456789abcdef", "host-a", 42, 1000, 30000, &holder),
			 CS_OK);
	assert_int_equal(cs_store_write_end(s, CS_OK), CS_OK);
	cs_store_close(s);
	assert_int_equal(cs_ledger_checkpoint_make(l, "node-a", "stop", sign_checkpoint, NULL, &first, &last), CS_OK);
	append(l, 2, NULL); /* an unsigned tail */
	cs_ledger_close(l);
	free(jwk_text);
}

/* ---- credsign-admin ------------------------------------------------------------------- */

/* A configuration whose store is the database db of the cluster (NULL:
 * a SQLite store). Returns its path (static). */
static const char *config_for(const char *db)
{
	static char path[400];
	char text[2048], ci[512];
	snprintf(path, sizeof(path), "%s/%s.conf", dir, db != NULL ? db : "sqlite");
	conninfo(ci, sizeof(ci), db != NULL ? db : "");
	int n = snprintf(text, sizeof(text),
			 "server = { allow_root = true; node_id = \"admin-node\"; };\n"
			 "tls = { cert = \"%s/cert.pem\"; key = \"%s/key.pem\"; ca = \"%s/cert.pem\"; };\n"
			 "pkcs11 = { module = \"%s/module.so\"; token_uri = \"pkcs11:token=t\"; pin_file = \"%s/user.pin\";\n"
			 "           signing_key = \"pkcs11:object=k\"; };\n",
			 dir, dir, dir, dir, dir);
	if (db != NULL)
		snprintf(text + n, sizeof(text) - (size_t)n,
			 "store = { backend = \"postgresql\"; postgresql = { connection = \"%s\"; sslmode = \"disable\"; }; };\n",
			 ci);
	else
		snprintf(text + n, sizeof(text) - (size_t)n, "store = { path = \"%s/plain.db\"; };\n", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

/* Run credsign-admin with args; its exit status, stdout and stderr in
 * DIR/out.txt and DIR/err.txt. */
static int admin(const char *args)
{
	return run("'%s' %s > '%s/out.txt' 2> '%s/err.txt'", CREDSIGN_ADMIN, args, dir, dir);
}

static int output_has(const char *file, const char *text)
{
	char path[400];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return 0;
	static char buf[65536];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	int found = strstr(buf, text) != NULL;
	if (!found)
		fprintf(stderr, "no \"%s\" in %s:\n%s\n", text, file, buf);
	return found;
}

/* ---- tests ------------------------------------------------------------------------------ */

static int64_t sqlite_count(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int64_t n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

static void copy_sig(void *arg, const cs_signature_record *r)
{
	unsigned char *out = arg;
	assert_int_equal(r->payload_len, sizeof(payload));
	memcpy(out, r->payload, r->payload_len);
}

/* An inventory row as one line appended to the buffer at arg (512 bytes). */
static int inventory_line(void *arg, const cs_inventory_row *r)
{
	char *buf = arg;
	size_t n = strlen(buf);
	snprintf(buf + n, 512 - n, "%s %s %s %s %lld %s %s;", r->cert_id, r->project ? r->project : "-",
		 r->environment ? r->environment : "-", r->system ? r->system : "-", (long long)r->created_ms,
		 r->revoked_at ? r->revoked_at : "-", r->revocation_reason ? r->revocation_reason : "-");
	return 0;
}

static void test_migrate(void **state)
{
	(void)state;
	char src[400], args[1200], ci[512], jwks_path[400];
	snprintf(src, sizeof(src), "%s/source.db", dir);
	snprintf(jwks_path, sizeof(jwks_path), "%s/jwks.json", dir);
	make_store(src);
	pg_do("postgres", "CREATE DATABASE mig");
	const char *conf = config_for("mig");

	snprintf(args, sizeof(args), "-c '%s' store migrate --from 'sqlite:%s' --to postgresql --jwks '%s'", conf, src,
		 jwks_path);
	int rc = admin(args);
	if (rc != 0)
		(void)run("cat '%s/out.txt' '%s/err.txt' >&2", dir, dir);
	assert_int_equal(rc, 0);
	assert_true(output_has("out.txt", "source sqlite:"));
	assert_true(output_has("out.txt", ": audit log intact: "));
	assert_true(output_has("out.txt", "destination postgresql://"));
	assert_true(output_has("out.txt", "migrated: every table's rows copied and counted"));

	/* the counts, every table, the store_meta values */
	cs_store_target t = pg_target("mig", ci, sizeof(ci));
	cs_store_copy_report rep;
	int equal = 0;
	assert_int_equal(cs_store_copy_compare(src, &t, &rep, &equal), CS_OK);
	for (size_t i = 0; i < rep.ntables; i++) {
		int64_t migrate_entry = strcmp(rep.tables[i].table, "audit_log") == 0; /* store.migrate */
		if (rep.tables[i].source + migrate_entry != rep.tables[i].target)
			fail_msg("table %s: %lld in SQLite, %lld in PostgreSQL", rep.tables[i].table,
				 (long long)rep.tables[i].source, (long long)rep.tables[i].target);
		if (strcmp(rep.tables[i].table, "store_probe") != 0 && strcmp(rep.tables[i].table, "store_meta") != 0)
			assert_true(rep.tables[i].source > 0); /* every table had rows to copy */
	}
	assert_int_equal(equal, 0); /* the audit log holds store.migrate more */
	char *v = pg_value("mig", "SELECT value FROM credsign.store_meta WHERE name = 'revocations_count'");
	assert_string_equal(v, "1");
	free(v);
	v = pg_value("mig", "SELECT count(*) FROM credsign.audit_log WHERE action = 'store.migrate'");
	assert_string_equal(v, "1");
	free(v);
	/* the sequences are past the copied ids: the next checkpoint id follows */
	v = pg_value("mig", "SELECT nextval(pg_get_serial_sequence('credsign.audit_checkpoints', 'id')) > "
			    "(SELECT max(id) FROM credsign.audit_checkpoints)");
	assert_string_equal(v, "t");
	free(v);
	/* the hashes as bytes, the ids as they were */
	char sql[200];
	v = pg_value("mig", "SELECT string_agg(seq || ':' || encode(entry_hash, 'hex'), ',' ORDER BY seq) FROM "
			    "credsign.audit_log WHERE action <> 'store.migrate'");
	{
		sqlite3 *db = NULL;
		sqlite3_stmt *st = NULL;
		assert_int_equal(sqlite3_open_v2(src, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_prepare_v2(db, "SELECT group_concat(seq || ':' || lower(hex(entry_hash)), ',') "
							"FROM (SELECT * FROM audit_log ORDER BY seq)",
						    -1, &st, NULL),
				 SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_string_equal(v, (const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
		sqlite3_close(db);
	}
	free(v);
	snprintf(sql, sizeof(sql), "SELECT max(id) FROM credsign.audit_checkpoints");
	v = pg_value("mig", sql);
	assert_int_equal(atoll(v), sqlite_count(src, "SELECT max(id) FROM audit_checkpoints"));
	free(v);

	/* through a PostgreSQL cs_store: the audit log verifies as in SQLite,
	 * the certificate and the signature are the same bytes */
	cs_store *ps = NULL, *ss = NULL;
	cs_audit_report before, after;
	assert_int_equal(cs_store_connect(&t, &ps), CS_OK);
	assert_int_equal(cs_store_open_existing_readonly(src, &ss), CS_OK);
	assert_int_equal(cs_audit_verify(ss, jwks, 0, &before), CS_OK);
	assert_int_equal(cs_audit_verify(ps, jwks, 0, &after), CS_OK);
	assert_true(before.intact);
	assert_true(after.intact);
	assert_true(before.authenticated > 0);
	assert_int_equal(after.authenticated, before.authenticated);
	assert_int_equal(after.checkpoints, before.checkpoints);
	assert_int_equal(after.base_seq, before.base_seq);
	assert_true(after.base_seq > 0); /* the purge's base came along */
	assert_int_equal(after.entries, before.entries + 1);
	cs_cert_row a = {0}, b = {0};
	assert_int_equal(cs_store_cert_get(ss, "cert-2", &a), CS_OK);
	assert_int_equal(cs_store_cert_get(ps, "cert-2", &b), CS_OK);
	assert_string_equal(a.header_b64, b.header_b64);
	assert_string_equal(a.claims_json, b.claims_json);
	assert_string_equal(a.signature_b64, b.signature_b64);
	cs_cert_row_free(&a);
	cs_cert_row_free(&b);
	/* the inventory reads the same rows from both (the derived columns
	 * computed by the destination, never copied) */
	char inv_s[512] = "", inv_p[512] = "";
	assert_int_equal(cs_store_inventory_each(ss, NULL, NULL, inventory_line, inv_s), CS_OK);
	assert_int_equal(cs_store_inventory_each(ps, NULL, NULL, inventory_line, inv_p), CS_OK);
	assert_string_equal(inv_s, "cert-1 - - - 2001 2024-01-02T02:00:00.000Z key loss;"
				   "cert-2 p\xc3\xa9 prod db 1 2002 - -;");
	assert_string_equal(inv_p, inv_s);
	inv_p[0] = '\0';
	assert_int_equal(cs_store_inventory_each(ps, "p\xc3\xa9", "prod", inventory_line, inv_p), CS_OK);
	assert_string_equal(inv_p, "cert-2 p\xc3\xa9 prod db 1 2002 - -;");
	unsigned char pa[sizeof(payload)], pb[sizeof(payload)];
	assert_int_equal(cs_store_signature_get(ss, "sig-1", copy_sig, pa), CS_OK);
	assert_int_equal(cs_store_signature_get(ps, "sig-1", copy_sig, pb), CS_OK);
	assert_memory_equal(pa, payload, sizeof(payload));
	assert_memory_equal(pb, payload, sizeof(payload));
	cs_active_key ak = {0};
	assert_int_equal(cs_store_key_active(ps, &ak), CS_OK);
	assert_string_equal(ak.kid, kid);
	cs_active_key_free(&ak);
	cs_store_close(ss);
	cs_store_close(ps);

	/* a second migrate: refused, nothing written */
	v = pg_value("mig", "SELECT count(*) FROM credsign.audit_log");
	assert_int_equal(admin(args), 1);
	assert_true(output_has("err.txt", "not empty"));
	assert_true(output_has("err.txt", "nothing written"));
	char *v2 = pg_value("mig", "SELECT count(*) FROM credsign.audit_log");
	assert_string_equal(v, v2);
	free(v);
	free(v2);
}

static void test_migrate_refuses_tampered_log(void **state)
{
	(void)state;
	char src[400], args[1200];
	snprintf(src, sizeof(src), "%s/tampered.db", dir);
	make_store(src);
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(src, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "DROP TRIGGER audit_log_no_update;"
				      "UPDATE audit_log SET actor = 'mallory' WHERE seq = (SELECT min(seq) FROM audit_log);",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	pg_do("postgres", "CREATE DATABASE tamper");
	snprintf(args, sizeof(args), "-c '%s' store migrate --from 'sqlite:%s' --to postgresql", config_for("tamper"),
		 src);
	assert_int_equal(admin(args), 1);
	assert_true(output_has("out.txt", "audit log NOT intact"));
	assert_true(output_has("err.txt", "does not verify: nothing written"));
	/* nothing: not even the schema */
	char *v = pg_value("tamper", "SELECT to_regnamespace('credsign') IS NULL");
	assert_string_equal(v, "t");
	free(v);
}

/* A store whose schema is not the one copied is refused by the copy itself. */
static void test_copy_refuses_other_schema(void **state)
{
	(void)state;
	char src[400], ci[512], why[256];
	snprintf(src, sizeof(src), "%s/old.db", dir);
	cs_store *s = NULL;
	assert_int_equal(cs_store_open(src, &s), CS_OK);
	cs_store_close(s);
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(src, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 8", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	pg_do("postgres", "CREATE DATABASE other");
	cs_store_target t = pg_target("other", ci, sizeof(ci));
	assert_int_equal(cs_store_connect(&t, &s), CS_OK);
	cs_store_close(s);
	cs_store_copy_report rep;
	assert_int_equal(cs_store_copy_sqlite_to_pg(src, &t, &rep, why), CS_E_STORE_SCHEMA);
	assert_non_null(strstr(why, "schema version 8"));
	/* the current schema, empty: copied (the table list is this version's) */
	assert_int_equal(sqlite3_open(src, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 10", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(cs_store_copy_sqlite_to_pg(src, &t, &rep, why), CS_OK);
	assert_int_equal(rep.ntables, CS_STORE_COPY_TABLES);
}

/* ---- failures (issue 18) ---------------------------------------------------------- */

/* An empty PostgreSQL store (the schema made) on a new database db. */
static cs_store_target empty_store(const char *db, char *ci, size_t n)
{
	char sql[128];
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
	pg_do("postgres", sql);
	cs_store_target t = pg_target(db, ci, n);
	cs_store *s = NULL;
	assert_int_equal(cs_store_connect(&t, &s), CS_OK);
	cs_store_close(s);
	return t;
}

/* A SQLite store at the copied version, a key in it (copied first), then
 * sql run on it. */
static void source_with(const char *path, const char *sql)
{
	unlink(path);
	cs_store *s = NULL;
	assert_int_equal(cs_store_open(path, &s), CS_OK);
	cs_store_close(s);
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	char *msg = NULL;
	if (sqlite3_exec(db, "INSERT INTO signing_keys (kid, uri, jwk_json, status) VALUES ('k1', 'u', '{}', 'retired');",
			 NULL, NULL, &msg) != SQLITE_OK ||
	    sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg != NULL ? msg : "?");
	sqlite3_close(db);
}

/* Nothing of a failed copy is in the destination. */
static void assert_nothing_copied(const char *db)
{
	char sql[160];
	static const char *const tables[] = {"signing_keys", "generation_sessions", "audit_log", "certificates"};
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM credsign.%s", tables[i]);
		char *v = pg_value(db, sql);
		if (strcmp(v, "0") != 0)
			fail_msg("database %s, table %s: %s rows after a failed copy", db, tables[i], v);
		free(v);
	}
}

/* Each way a copy can fail: the source not a file, not a database, a
 * table missing on either side, a value of another type, text holding a
 * NUL, a store_meta row without its integer. Each is refused (CS_IO for
 * a source that cannot be opened, else CS_E_STORE), logged as "store
 * copy: ...", and nothing is written: the one transaction rolled back. */
static void test_copy_failures(void **state)
{
	(void)state;
	char src[400], ci[512], why[256], missing[400];
	cs_store_copy_report rep;
	cs_store_target t = empty_store("fails", ci, sizeof(ci));

	/* no file, a directory, not a database */
	snprintf(missing, sizeof(missing), "%s/none.db", dir);
	assert_int_equal(cs_store_copy_sqlite_to_pg(missing, &t, &rep, why), CS_E_IO);
	assert_int_equal(cs_store_copy_sqlite_to_pg(dir, &t, &rep, why), CS_E_IO);
	snprintf(src, sizeof(src), "%s/garbage.db", dir);
	FILE *f = fopen(src, "w");
	assert_non_null(f);
	fputs("not a SQLite database, not at all, whatever its length may be, and more than a header's", f);
	fclose(f);
	assert_int_equal(cs_store_copy_sqlite_to_pg(src, &t, &rep, why), CS_E_STORE);
	int equal = 1;
	assert_int_equal(cs_store_copy_compare(src, &t, &rep, &equal), CS_E_STORE);
	assert_int_equal(equal, 0);

	snprintf(src, sizeof(src), "%s/fails.db", dir);
	/* a value of another type than the schema's */
	source_with(src, "INSERT INTO generation_sessions (id, created_ms, expires_ms, cert_sha256) "
			 "VALUES ('s1', 'yesterday', 2, 'ab')");
	assert_int_equal(cs_store_copy_sqlite_to_pg(src, &t, &rep, why), CS_E_STORE);
	assert_int_equal(rep.tables[0].source, 1); /* the key went in, then was rolled back */
	assert_nothing_copied("fails");
	/* text holding a NUL byte */
	source_with(src, "UPDATE signing_keys SET uri = CAST(X'610062' AS TEXT)");
	assert_int_equal(cs_store_copy_sqlite_to_pg(src, &t, &rep, why), CS_E_STORE);
	assert_nothing_copied("fails");
	/* a store_meta row without its integer */
	source_with(src, "UPDATE store_meta SET value = 'many' WHERE name = 'revocations_count'");
	assert_int_equal(cs_store_copy_sqlite_to_pg(src, &t, &rep, why), CS_E_STORE);
	assert_nothing_copied("fails");
	/* a table missing in the source (at the copied version) */
	source_with(src, "DROP TABLE store_nodes");
	assert_int_equal(cs_store_copy_sqlite_to_pg(src, &t, &rep, why), CS_E_STORE);
	assert_nothing_copied("fails");
	assert_int_equal(cs_store_copy_compare(src, &t, &rep, &equal), CS_E_STORE);
	/* a table missing in the destination */
	source_with(src, "INSERT INTO store_nodes VALUES ('n1', 'i', 'h', 1, 1, 1)");
	pg_do("fails", "DROP TABLE credsign.store_nodes");
	assert_int_equal(cs_store_copy_sqlite_to_pg(src, &t, &rep, why), CS_E_STORE);
	assert_nothing_copied("fails");
	assert_int_equal(cs_store_copy_compare(src, &t, &rep, &equal), CS_E_STORE);
	assert_int_equal(equal, 0);

	/* the destination's table without a column the copy sends */
	source_with(src, "SELECT 1");
	cs_store_target t2 = empty_store("fails2", ci, sizeof(ci));
	pg_do("fails2", "ALTER TABLE credsign.store_nodes DROP COLUMN host");
	assert_int_equal(cs_store_copy_sqlite_to_pg(src, &t2, &rep, why), CS_E_STORE);
	assert_nothing_copied("fails2");
	/* the destination refusing a store_meta value */
	char ci3[512];
	cs_store_target t3 = empty_store("fails3", ci3, sizeof(ci3));
	pg_do("fails3", "ALTER TABLE credsign.store_meta ADD CONSTRAINT no_counts CHECK (value < 0) NOT VALID");
	assert_int_equal(cs_store_copy_sqlite_to_pg(src, &t3, &rep, why), CS_E_STORE);
	assert_nothing_copied("fails3");

	/* a target that is not PostgreSQL, one where nothing listens */
	source_with(src, "SELECT 1");
	cs_store_target sq = {.backend = CS_STORE_SQLITE, .path = src};
	assert_int_equal(cs_store_copy_sqlite_to_pg(src, &sq, &rep, why), CS_E_INVALID_ARG);
	cs_store_target down = {.backend = CS_STORE_POSTGRESQL, .conninfo = "host=127.0.0.1 port=1 dbname=x",
				.sslmode = "disable", .connect_timeout_s = 2};
	cs_err r = cs_store_copy_sqlite_to_pg(src, &down, &rep, why);
	assert_true(r == CS_E_STORE_UNREACHABLE || r == CS_E_STORE);

	/* compare: a source at another version is said so */
	source_with(src, "PRAGMA user_version = 8");
	assert_int_equal(cs_store_copy_compare(src, &t, &rep, &equal), CS_E_STORE_SCHEMA);

	/* more rows than one buffer sends, a value larger than the buffer:
	 * copied in several sends, every count equal */
	source_with(src, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500) "
			 "INSERT INTO generation_sessions (id, created_ms, expires_ms, cert_sha256) "
			 "SELECT 'big-' || i, 1, 2, 'ab' FROM n;"
			 "INSERT INTO session_claims (session_id, claims_json) SELECT id, printf('{\"pad\":\"%.*c\"}', 100, 'x') "
			 "FROM generation_sessions;"
			 "UPDATE session_claims SET claims_json = printf('{\"pad\":\"%.*c\"}', 10000, 'y') "
			 "WHERE session_id = 'big-7'");
	char ci4[512];
	cs_store_target t4 = empty_store("big", ci4, sizeof(ci4));
	assert_int_equal(cs_store_copy_sqlite_to_pg(src, &t4, &rep, why), CS_OK);
	assert_int_equal(rep.tables[2].source, 1500);
	assert_int_equal(rep.tables[2].target, 1500);
	assert_int_equal(cs_store_copy_compare(src, &t4, &rep, &equal), CS_OK);
	assert_int_equal(equal, 1);
	char *len = pg_value("big", "SELECT length(claims_json) FROM credsign.session_claims WHERE session_id = 'big-7'");
	assert_string_equal(len, "10010");
	free(len);

	/* describe: the nodes' role by default */
	cs_store_pg_schema schema;
	cs_store_target other = pg_target("fails", ci, sizeof(ci));
	assert_int_equal(cs_store_pg_describe(&other, NULL, &schema, NULL, NULL), CS_OK);
	assert_string_equal(schema.role, "credsign_node");
	assert_int_equal(schema.version, 11);
}

static void test_init(void **state)
{
	(void)state;
	char args[1200], ci[512];
	pg_do("postgres", "CREATE DATABASE init");
	pg_do("postgres", "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'credsign_node') THEN "
			  "CREATE ROLE credsign_node NOLOGIN; END IF; END $$");
	const char *conf = config_for("init");
	conninfo(ci, sizeof(ci), "init");
	snprintf(args, sizeof(args), "-c '%s' store init --owner-connection '%s'", conf, ci);
	int rc = admin(args);
	if (rc != 0)
		(void)run("cat '%s/out.txt' '%s/err.txt' >&2", dir, dir);
	assert_int_equal(rc, 0);
	assert_true(output_has("out.txt", "schema version 11")); /* PostgreSQL's (SQLite's 10) */
	assert_true(output_has("out.txt", "granted to credsign_node:"));
	assert_true(output_has("out.txt", "  audit_log              INSERT,SELECT\n"));
	assert_true(output_has("out.txt", "  generation_sessions    DELETE,INSERT,SELECT,UPDATE\n"));
	assert_false(output_has("out.txt", "audit_purge")); /* the purge is the owner's alone */
	char *v = pg_value("init", "SELECT version FROM credsign.schema_version");
	assert_string_equal(v, "11");
	free(v);
	/* again: nothing to do, the same answer */
	assert_int_equal(admin(args), 0);
	assert_true(output_has("out.txt", "schema version 11"));

	/* a password on the command line: refused */
	snprintf(args, sizeof(args), "-c '%s' store init --owner-connection '%s password=secret'", conf, ci);
	assert_int_equal(admin(args), 2);
	assert_true(output_has("err.txt", "use --owner-password-file"));
	/* SQLite: nothing to init */
	snprintf(args, sizeof(args), "-c '%s' store init", config_for(NULL));
	assert_int_equal(admin(args), 1);
	assert_true(output_has("err.txt", "nothing to init"));
	/* usage */
	snprintf(args, sizeof(args), "-c '%s' store migrate --from /x.db --to postgresql", conf);
	assert_int_equal(admin(args), 2);
	assert_true(output_has("err.txt", "sqlite:PATH"));
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/cs-store-copy-XXXXXX");
	json_t *jwk = NULL;
	if (mkdtemp(dir) == NULL || chmod(dir, 0755) != 0)
		return -1;
	if ((key = EVP_EC_gen("P-256")) == NULL || cs_jwk_thumbprint(key, kid) != CS_OK ||
	    cs_jwk_from_pkey(key, &jwk) != CS_OK || (jwks = json_pack("{s:[o]}", "keys", jwk)) == NULL)
		return -1;
	char path[400];
	snprintf(path, sizeof(path), "%s/jwks.json", dir);
	if (json_dump_file(jwks, path, 0) != 0)
		return -1;
	/* what a configuration needs besides its store */
	if (run("cd '%s' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem "
		"-out cert.pem -subj /CN=store-copy -days 2 2> /dev/null && echo placeholder > module.so && "
		"echo 123456 > user.pin && chmod 600 user.pin key.pem",
		dir) != 0)
		return -1;
	return start_cluster();
}

static int teardown(void **state)
{
	(void)state;
	if (cluster_up)
		(void)run("runuser -u postgres -- %s/pg_ctl -D '%s/pg' -m fast -w stop > /dev/null", PG_BIN, dir);
	EVP_PKEY_free(key);
	json_decref(jwks);
	return run("rm -rf '%s'", dir) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init),
		cmocka_unit_test(test_migrate),
		cmocka_unit_test(test_migrate_refuses_tampered_log),
		cmocka_unit_test(test_copy_refuses_other_schema),
		cmocka_unit_test(test_copy_failures),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
