/*
 * store_copy: moving an appliance's SQLite store into a PostgreSQL store
 * (credsign-admin store migrate), and what credsign-admin store init
 * reports of a PostgreSQL schema.
 *
 * The copy reads the SQLite file read-only, in one snapshot, and writes
 * every row of every table of the schema (version 10) as it is: ids, seqs,
 * hashes, times, store_meta's values; in ONE PostgreSQL transaction that
 * holds the write lock every node takes (store.h), so a node writing
 * meanwhile waits and nothing half-copied is ever seen. It refuses a
 * PostgreSQL store that holds any row already (but store_meta's), checked
 * inside that transaction. The identity sequences are set past the copied
 * ids. The audit chain is not checked here: the caller verifies it before
 * and after (audit_verify.h), through the stores themselves.
 *
 * The PostgreSQL schema must exist (cs_store_connect makes it): the copy
 * connects with the target's own settings (conninfo, sslmode, ca_file,
 * password_file, connect_timeout_s), the password read from its file and
 * wiped, never logged.
 *
 * Errors: CS_E_CONFLICT when the PostgreSQL store is not empty (why names
 * the table, nothing written); CS_E_STORE_SCHEMA when the SQLite store is
 * not at the schema version this program copies (why says which);
 * CS_E_STORE when either database fails (logged once, here, as
 * "store copy: WHAT: MESSAGE"; the transaction rolled back); CS_E_IO when
 * the SQLite file cannot be opened; CS_E_INVALID_ARG when the target is
 * not PostgreSQL; CS_E_NOMEM.
 */
#ifndef CS_STORE_COPY_H
#define CS_STORE_COPY_H

#include <stddef.h>
#include <stdint.h>

#include "cs_error.h"
#include "store.h"

/* The tables copied, in the order copied (references before referrers). */
#define CS_STORE_COPY_TABLES 14

typedef struct {
	const char *table; /* static */
	int64_t source;    /* rows in the SQLite store (the snapshot copied) */
	int64_t target;    /* rows in the PostgreSQL store (store_meta: of the
	                      source's names, those holding the source's value) */
} cs_store_copy_count;

typedef struct {
	cs_store_copy_count tables[CS_STORE_COPY_TABLES];
	size_t ntables;
} cs_store_copy_report;

/* Copy the SQLite store at sqlite_path into the (empty) PostgreSQL store
 * target names; report->tables[i].source counts what was read, .target
 * what the PostgreSQL transaction wrote. why: a reason for CS_E_CONFLICT
 * and CS_E_STORE_SCHEMA ("" otherwise). */
cs_err cs_store_copy_sqlite_to_pg(const char *sqlite_path, const cs_store_target *target,
				  cs_store_copy_report *report, char why[256])
	__attribute__((warn_unused_result, nonnull));

/* Count again, after the copy committed: every table in both stores
 * (.source: SQLite, .target: PostgreSQL; store_meta as above). *equal 1
 * when every table's counts agree. */
cs_err cs_store_copy_compare(const char *sqlite_path, const cs_store_target *target,
			     cs_store_copy_report *report, int *equal) __attribute__((warn_unused_result, nonnull));

/* What a PostgreSQL schema is: its version (credsign.schema_version; 0:
 * none) and whether role exists; fn (may be NULL) gets, per table of the
 * schema, the privileges role holds on it ("DELETE,INSERT,SELECT",
 * sorted; tables without any: not called), then "schema" with USAGE and
 * each function (by name) with EXECUTE when held. role NULL:
 * credsign_node. */
typedef void (*cs_store_grant_fn)(void *arg, const char *object, const char *privileges);
typedef struct {
	int version;
	int role_exists;
	char role[64];
} cs_store_pg_schema;
cs_err cs_store_pg_describe(const cs_store_target *target, const char *role, cs_store_pg_schema *out,
			    cs_store_grant_fn fn, void *arg) __attribute__((warn_unused_result, nonnull(1, 3)));

#endif
