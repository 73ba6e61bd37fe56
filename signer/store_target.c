/* store_target: see store_target.h. */
#include "store_target.h"

#include <string.h>

#include "ledger.h"

int cs_store_target_is_pg(const cs_config *cfg)
{
	return cfg->store.backend == CS_CONFIG_STORE_POSTGRESQL;
}

cs_err cs_store_target_from_config(const cs_config *cfg, cs_store_target *out)
{
	memset(out, 0, sizeof(*out));
	if (!cs_store_target_is_pg(cfg)) {
		if (cfg->store.path == NULL || cfg->store.path[0] == '\0')
			return CS_E_CONFIG;
		out->backend = CS_STORE_SQLITE;
		out->path = cfg->store.path;
		return CS_OK;
	}
	if (cfg->store.postgresql.connection == NULL || cfg->store.postgresql.connection[0] == '\0')
		return CS_E_CONFIG;
	out->backend = CS_STORE_POSTGRESQL;
	out->conninfo = cfg->store.postgresql.connection;
	out->sslmode = cfg->store.postgresql.sslmode;
	out->ca_file = cfg->store.postgresql.ca_file;
	out->password_file = cfg->store.postgresql.password_file;
	out->application_name = cfg->server.node_id;
	out->statement_timeout_ms = cfg->store.postgresql.statement_timeout_ms;
	out->connect_timeout_s = cfg->store.postgresql.connect_timeout_seconds;
	out->pool_size = cfg->store.postgresql.pool_size;
	out->node_role = cfg->store.postgresql.node_role;
	return CS_OK;
}

cs_err cs_store_connect_config(const cs_config *cfg, cs_store **out)
{
	cs_store_target t;
	*out = NULL;
	cs_err r = cs_store_target_from_config(cfg, &t);
	return r == CS_OK ? cs_store_connect(&t, out) : r;
}

cs_err cs_ledger_connect_config(const cs_config *cfg, cs_ledger **out)
{
	cs_store_target t;
	*out = NULL;
	cs_err r = cs_store_target_from_config(cfg, &t);
	return r == CS_OK ? cs_ledger_connect(&t, cfg->audit.write_timeout_ms, out) : r;
}
