/* store_pg: placeholder until the PostgreSQL backend lands (issue 17). */
#include "cs_log.h"
#include "store_pg_internal.h"

cs_err cs_store_pg_open(const cs_store_target *target, int readonly, cs_store **out)
{
	(void)target;
	(void)readonly;
	*out = NULL;
	cs_log_error("store: the PostgreSQL backend is not built yet");
	return CS_E_STORE;
}
