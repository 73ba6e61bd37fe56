/* store_pg_records: placeholder until the PostgreSQL backend lands. */
#include "store_pg_internal.h"

void pg_records_ops(cs_store_ops *ops)
{
	(void)ops;
}
