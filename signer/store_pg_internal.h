/*
 * store_pg_internal: what the two files of the PostgreSQL backend share
 * (store_pg.c: connections, queries, transactions, the schema, sessions,
 * certificates, keys, node ids; store_pg_records.c: ceremonies, rollovers,
 * revocations, signatures, the audit log and its checkpoints). Nothing
 * outside store_pg*.c includes it.
 *
 * Queries go through pg_query/pg_exec only: they reconnect a broken
 * connection between transactions, keep a write inside its deadline, map
 * errors (unique violation: CS_E_CONFLICT, unlogged; anything else:
 * CS_E_STORE, logged once here as "store: WHAT: MESSAGE"), count changed
 * rows and prepare each statement once per connection (statements are
 * string literals: the cache is keyed by the text's address).
 *
 * Parameters are text (NULL: SQL NULL); results come back as text. Hashes
 * travel as bytea in hex form (pg_hash_param, pg_hash); other binary data
 * through pg_query_bin's binary parameters.
 */
#ifndef CS_STORE_PG_INTERNAL_H
#define CS_STORE_PG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "store_backend.h"

/* The schema's version after the migrations of this program. Versioned
 * per backend, the same intent: 9 is the SQLite backend's version 9;
 * 10 (PostgreSQL only) makes the audit purge the schema owner's alone
 * (store_pg.c's schema_v10); 11 is the SQLite backend's version 10 (the
 * inventory's derived columns and index, store_pg.c's schema_v11). */
#define PG_SCHEMA_VERSION 11

typedef struct pg_stmt_cache pg_stmt_cache;

typedef struct {
	cs_store base; /* the ops: first */
	PGconn *conn;
	char *name;         /* for messages: postgresql://USER@HOST:PORT/DB */
	int readonly;       /* opened by cs_store_connect_existing_readonly */
	int in_tx;          /* 0: none, 1: a read snapshot, 2: a write */
	int tx_failed;      /* a statement of the open transaction failed */
	int64_t deadline_ms; /* of the open write (CLOCK_MONOTONIC ms), 0: none */
	int64_t changes;    /* rows inserted, updated or deleted since open */
	uint64_t several_active; /* as the SQLite backend's: logged once per state */
	int outage_logged;  /* the loss of the connection was logged */
	int opening;        /* running the statement that begins a transaction */
	int no_retry;       /* opening the store (migrations, the guards): a broken
	                       connection fails the open, never retried on a new one */
	/* the audit head (PG_AUDIT_HEAD's rows), read in the round trip that
	 * took the write lock; given to the first cs_store_audit_last of the
	 * write, dropped by an append, a purge and the transaction's end */
	PGresult *head;
	int counted;        /* counted in the process's open connections (the pool cap) */
	pg_stmt_cache *stmts;
	struct pg_target_copy *target; /* to reconnect */
} pg_store;

/* Run sql (a string literal) with n parameters. CS_OK: *res holds the
 * rows (PGRES_TUPLES_OK or PGRES_COMMAND_OK; PQclear it), else *res NULL. */
cs_err pg_query(pg_store *s, const char *what, const char *sql, int n, const char *const *params, PGresult **res)
	__attribute__((warn_unused_result));
/* The same with each parameter's length and format (1: binary). */
cs_err pg_query_bin(pg_store *s, const char *what, const char *sql, int n, const char *const *params,
		    const int *lengths, const int *formats, PGresult **res) __attribute__((warn_unused_result));
/* A statement without rows; *affected (may be NULL): the rows it changed. */
cs_err pg_exec(pg_store *s, const char *what, const char *sql, int n, const char *const *params, int64_t *affected)
	__attribute__((warn_unused_result));

/* Column col of row: text (never NULL unless optional: a NULL where the
 * schema forbids one is CS_E_STORE, logged naming the column). Valid
 * until PQclear. */
cs_err pg_text(PGresult *res, int row, int col, int optional, const char **out);
/* A malloc'd copy of a text column that must not be NULL. */
cs_err pg_dup(PGresult *res, int row, int col, char **out);
/* An integer column (bigint); NULL or not a number: CS_E_STORE, logged. */
cs_err pg_int(PGresult *res, int row, int col, int64_t *out);
/* A bytea column holding exactly 32 bytes; anything else: CS_E_STORE. */
cs_err pg_hash(PGresult *res, int row, int col, uint8_t out[32]);
/* A bytea column, malloc'd (*out NULL, *len 0 when NULL; an empty value
 * is a buffer of no bytes, never NULL). */
cs_err pg_bytea(PGresult *res, int row, int col, unsigned char **out, size_t *len);
/* Parameters: an integer, and a hash as bytea's hex input. */
const char *pg_i64(char buf[24], int64_t v);
const char *pg_hash_param(char buf[67], const uint8_t hash[32]);

/* The audit head: the newest entry's seq, entry_hash and ts. */
#define PG_AUDIT_HEAD "SELECT seq, entry_hash, ts FROM audit_log ORDER BY seq DESC LIMIT 1"
/* The head read with the write lock, when it is still valid (the caller
 * owns it; NULL: read it), and dropping it. */
PGresult *pg_head_take(pg_store *s);
void pg_head_drop(pg_store *s);

/* Several reads of one call in one snapshot, unless a transaction is open
 * (then nothing is begun): *began says whether snapshot_end must end it. */
cs_err pg_snapshot_begin(pg_store *s, int *began) __attribute__((warn_unused_result));
void pg_snapshot_end(pg_store *s, int began);

/* store_pg_records.c fills its part of the ops table. */
void pg_records_ops(cs_store_ops *ops);

#endif
