/* test_support: small helpers shared by the cmocka tests. */
#ifndef CS_TEST_SUPPORT_H
#define CS_TEST_SUPPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/evp.h>

#include "preset.h"
#include "store.h"

/* Write text to path with the given mode; fails the test on error. */
void ts_write_file(const char *path, const char *text, mode_t mode);
/* The SoftHSM2 token fixture's module and directory (CREDSIGN_TEST_MODULE,
 * CREDSIGN_TEST_TOKEN_DIR) and its PIN file's path into pin[pin_len]; 0,
 * or -1 (said on stderr) when the environment lacks them. */
int ts_token_fixture(const char **module, const char **dir, char *pin, size_t pin_len);
/* Verify a DER ECDSA signature over a SHA-256 digest with OpenSSL alone. */
int ts_verify_der(EVP_PKEY *pub, const uint8_t digest[32], const uint8_t *der, size_t der_len);

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

#endif
