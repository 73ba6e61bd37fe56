/*
 * store_target: where the configuration says the store is, as a
 * cs_store_target (store.h) for cs_store_connect and the ledger.
 *
 * cs_store_target_from_config fills *out from cfg's store group
 * (store.backend, store.path, store.postgresql.*) and server.node_id (the
 * PostgreSQL application_name). The strings point into cfg: the target is
 * valid as long as cfg is, and owns nothing (nothing to free). The
 * configuration loader has already checked every value; this only
 * converts, and refuses (CS_E_CONFIG, nothing logged) a configuration
 * whose store is incomplete (no path for SQLite, no connection for
 * PostgreSQL), which a loaded configuration never is.
 */
#ifndef CS_STORE_TARGET_H
#define CS_STORE_TARGET_H

#include "config.h"
#include "cs_error.h"
#include "store.h"

cs_err cs_store_target_from_config(const cs_config *cfg, cs_store_target *out)
	__attribute__((warn_unused_result, nonnull));

/* cs_store_connect / cs_ledger_connect (write_timeout_ms
 * audit.write_timeout_ms) on cfg's store: the tools' and the daemon's
 * threads' way to open it. CS_E_CONFIG as above. */
cs_err cs_store_connect_config(const cs_config *cfg, cs_store **out) __attribute__((warn_unused_result, nonnull));
struct cs_ledger;
cs_err cs_ledger_connect_config(const cs_config *cfg, struct cs_ledger **out)
	__attribute__((warn_unused_result, nonnull));

/* Whether cfg's store is PostgreSQL (a database shared by several nodes,
 * reached over the network) rather than a SQLite file of this machine. */
int cs_store_target_is_pg(const cs_config *cfg) __attribute__((nonnull));

#endif
