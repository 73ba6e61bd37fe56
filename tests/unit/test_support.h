/* test_support: small helpers shared by the cmocka tests. */
#ifndef CS_TEST_SUPPORT_H
#define CS_TEST_SUPPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/evp.h>
#include <sqlite3.h>

#include "preset.h"
#include "store.h"
#include "token.h"

/* Write text to path with the given mode; fails the test on error. */
void ts_write_file(const char *path, const char *text, mode_t mode);
/* The SoftHSM2 token fixture's module and directory (CREDSIGN_TEST_MODULE,
 * CREDSIGN_TEST_TOKEN_DIR) and its PIN file's path into pin[pin_len]; 0,
 * or -1 (said on stderr) when the environment lacks them. */
int ts_token_fixture(const char **module, const char **dir, char *pin, size_t pin_len);
/* Verify a DER ECDSA signature over a SHA-256 digest with OpenSSL alone. */
int ts_verify_der(EVP_PKEY *pub, const uint8_t digest[32], const uint8_t *der, size_t der_len);
/* ES256 in software, as a cs_jws_es256_sign signer (jose.h): the raw r||s
 * signature of input by the P-256 key ctx (an EVP_PKEY *); CS_OK, or
 * CS_E_CRYPTO when OpenSSL fails. For a JWS a test can tamper with. */
cs_err ts_soft_sign(void *ctx, const uint8_t *input, size_t len, uint8_t raw[64]);

/* Load a presets file (cs_presets_load), printing its diagnostics to
 * stderr; NULL when it does not load. */
cs_preset_set *ts_presets_load(const char *path);

/* ---- a throwaway PostgreSQL cluster (issue 17) ---------------------------------
 * initdb into a fresh directory under /tmp, served on a Unix socket in that
 * directory only (no TCP; the port, from a free-port probe, names the
 * socket), run as an unprivileged account when the test runs as root
 * (postgres, else credsign): PostgreSQL refuses root. Roles: the superuser
 * "pgsuper"; database "credsign". Authentication: trust, but a role
 * named "pw_user" (the test creates it) must give its password
 * (scram-sha-256). Binaries from
 * CREDSIGN_PG_BINDIR or /usr/lib/postgresql/NN/bin. ts_pg_stop (also run
 * at exit for a cluster still up) stops it and removes the directory. */
typedef struct {
	char dir[64];   /* the cluster's directory; data/ and the socket in it */
	char bindir[256];
	int port;
	uid_t uid;      /* the account the server runs as */
	gid_t gid;
	int running;
} ts_pg;
/* 0, or -1 (said on stderr) when no cluster could start. */
int ts_pg_start(ts_pg *pg);
/* pg_ctl ACTION ("stop" and "restart" in fast mode, "start"); 0 or -1. */
int ts_pg_ctl(ts_pg *pg, const char *action);
void ts_pg_stop(ts_pg *pg);
/* The conninfo of user (NULL: the superuser) to database credsign. */
const char *ts_pg_conninfo(const ts_pg *pg, const char *user, char *buf, size_t size);
/* Run sql (several statements allowed) as the superuser; 0, or -1 with
 * the server's message on stderr. */
int ts_pg_sql(const ts_pg *pg, const char *sql);
/* One value (row 0, column 0) of a query run as the superuser, into buf
 * ("" for NULL or no row); 0 or -1. */
int ts_pg_value(const ts_pg *pg, const char *sql, char *buf, size_t size);
/* A PostgreSQL store target for user (NULL: the superuser), sslmode
 * disable, the conninfo written into conninfo (which *t points into). */
void ts_pg_target(const ts_pg *pg, const char *user, char *conninfo, size_t size, cs_store_target *t);

/* ---- scratch stores (issue 18) --------------------------------------------------
 * A directory of throwaway SQLite stores, and raw SQLite on them for what
 * the store's API does not show (row counts, rows edited behind its back). */
/* Make a fresh directory base/name-XXXXXX into dir[size]: base is /dev/shm
 * when tmpfs is set and the machine has it (thousands of fsyncs cost
 * nothing there), else CREDSIGN_TEST_TMP, else /tmp; base, if missing, is
 * made with base_mode. 0, or -1 when it cannot be made. */
int ts_scratch_dir(char *dir, size_t size, const char *name, int tmpfs, mode_t base_mode);
/* Remove dir and everything in it; 0 or -1. */
int ts_scratch_remove(const char *dir);
/* A connection of raw SQLite to path (busy timeout 5 s); fails the test
 * when it cannot open. */
sqlite3 *ts_sqlite_open(const char *path);
/* Run sql (several statements allowed); fails the test with SQLite's
 * message on error. */
void ts_sqlite_exec(sqlite3 *db, const char *sql);
/* Column 0 of the first row of sql as an integer; fails the test when sql
 * does not prepare or gives no row. */
int64_t ts_sqlite_int(sqlite3 *db, const char *sql);
/* The same on a connection of its own to path, closed afterwards. */
int64_t ts_sqlite_path_int(const char *path, const char *sql);
/* CLOCK_MONOTONIC in milliseconds. */
int64_t ts_mono_ms(void);
/* A cs_store_audit_each callback (store.h) counting the entries into the
 * int at arg; 0 (go on). */
int ts_count_entry(void *arg, const cs_audit_entry *e, const uint8_t prev[32], const uint8_t hash[32]);
/* What a certification that failed leaves: the session stored, unclaimed,
 * with these claims; no certificate cert_id. Fails the test otherwise. */
void ts_assert_unclaimed(cs_store *s, const char *session, const char *claims, const char *cert_id);
/* The tables of a version-3 store, as issue 4 created them (no rows, no
 * user_version): the start of a store the migrations upgrade. */
extern const char ts_store_v3_schema[];

/* ---- the fault module's token (tests/fault/fault_pkcs11.c, issue 18) -----------
 * ctest runs the token tests on the SoftHSM2 test token seen through the
 * fault module: CREDSIGN_TEST_TOKEN_DIR (the token's directory, with its
 * PIN file user.pin), CREDSIGN_TEST_FAULT_MODULE (the module),
 * CREDSIGN_FAULT_CONTROL (the file of fault rules the module follows). */
typedef struct {
	char dir[512];       /* CREDSIGN_TEST_TOKEN_DIR */
	const char *module;  /* CREDSIGN_TEST_FAULT_MODULE */
	char pin[600];       /* dir/user.pin */
	char counts[600];    /* dir/fault.counts ("" unless counting) */
} ts_fault_token;
/* Read the environment into *ft; with count_calls, also set
 * CREDSIGN_FAULT_COUNTS to dir/fault.counts, where the module counts the
 * calls it is given once it is loaded (read by ts_fault_calls). 0, or -1
 * (said on stderr) when the test was not run through ctest. */
int ts_fault_token_init(ts_fault_token *ft, int count_calls);
/* Replace the fault rules; "" clears them. Waits 10 ms: the module notices
 * changes by size and mtime. */
void ts_faults(const char *rules);
/* Calls of fn the fault module of this process has counted since it was
 * loaded; fails the test when fn is not counted. */
unsigned long ts_fault_calls(const char *fn);
/* cs_token_open of the test token (pkcs11:token=cstest, read-write)
 * through module (NULL: the fault module) with PIN file pin, pool_size
 * pool and C_Initialize arguments init_args (NULL: none). */
cs_err ts_fault_open(const char *module, const char *pin, unsigned pool, const char *init_args, cs_token **out);
/* cs_token_random of len bytes into buf, again every 20 ms (2 s at the
 * most) while it answers CS_E_TOKEN_UNAVAILABLE (the re-initialisation
 * backoff after a failure); its last answer. */
cs_err ts_random_after_backoff(cs_token *t, uint8_t *buf, size_t len);

/* Send this process's log (cs_log, INFO, logfmt) to path, truncated, from
 * now on; fails the test when path cannot be written. */
void ts_log_capture(const char *path);
/* Back to stderr; 1 when the log captured since ts_log_capture (its first
 * 64 KiB) contains text, else 0 with the log printed on stderr. */
int ts_log_release(const char *text);

#endif
