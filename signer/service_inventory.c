/* service_inventory: the credential register for auditors and generators,
 * and its /metrics gauges (service.h, inventory.h). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cs_log.h"
#include "inventory.h"
#include "service_internal.h"

static cs_inventory_rules rules_of(const cs_app *app)
{
	cs_inventory_rules rules = {0, 14};
	if (app->cfg != NULL) {
		rules.pci_password_change_days = app->cfg->inventory.pci_password_change_days;
		if (app->cfg->inventory.due_soon_days > 0)
			rules.due_soon_days = app->cfg->inventory.due_soon_days;
	}
	return rules;
}

/* Without a project: keep the records the caller may read (decided per
 * record, no rate charged: the request's admission was its decision). */
static cs_err keep_readable(cs_service_req *rq, json_t *records)
{
	for (size_t i = json_array_size(records); i-- > 0;) {
		const json_t *rec = json_array_get(records, i);
		cs_access_scope scope = {json_string_value(json_object_get(rec, "project")),
					 json_string_value(json_object_get(rec, "environment")), NULL, NULL};
		cs_access_decision d;
		cs_access_decide(rq->access, rq->caller->identity, CS_ACTION_INVENTORY_READ, &scope, 0, 0, &d);
		if (!d.allowed && json_array_remove(records, i) != 0)
			return CS_E_INTERNAL;
	}
	return CS_OK;
}

static int64_t monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The query's admission, charged to the caller's rate once. With project
 * and environment: the exact decision. Otherwise an auditor of the project
 * (without one: of any project), or a generator of it in any environment;
 * its records are then decided one by one (keep_readable). */
static cs_err admit(cs_service_req *rq, const char *project, const char *environment)
{
	cs_access_scope scope = {project, environment, NULL, NULL};
	if (environment != NULL || rq->caller == NULL)
		return cs_service_authorize(rq, CS_ACTION_INVENTORY_READ, &scope);
	cs_access_decision d;
	cs_access_inventory_scope(rq->access, rq->caller->identity, project, 1, monotonic_ms(), &d);
	if (d.allowed) {
		snprintf(rq->role, sizeof(rq->role), "%s", d.role);
		return CS_OK;
	}
	if (d.retry_after > 0)
		return cs_service_refuse(rq, "rate_limited", d.retry_after, "%s", d.reason);
	return cs_service_refuse(rq, "forbidden", 0, "%s", d.reason);
}

static json_t *counts_json(const cs_inventory_counts *n)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I}", "current", (json_int_t)n->current, "superseded",
			 (json_int_t)n->superseded, "revoked", (json_int_t)n->revoked, "overdue", (json_int_t)n->overdue,
			 "due_soon", (json_int_t)n->due_soon);
}

cs_err cs_service_inventory(cs_service_req *rq, const cs_inventory_query *q, json_t **doc)
{
	*doc = NULL;
	const char *project = q->project[0] ? q->project : NULL;
	const char *environment = q->environment[0] ? q->environment : NULL;
	cs_service_set_scope(rq, project, environment);
	cs_err r = admit(rq, project, environment);
	if (r != CS_OK)
		return r;
	cs_inventory_rules rules = rules_of(rq->app);
	json_t *records = NULL;
	r = cs_inventory_collect(rq->store, rq->app->presets, &rules, project, environment, &records);
	if (r == CS_E_TOO_LARGE)
		return cs_service_fail(rq, r, "inventory_too_large",
				       "the inventory holds more than %d records for this query: narrow it with "
				       "project and environment",
				       CS_INVENTORY_MAX_RECORDS);
	if (r != CS_OK)
		return cs_service_fail(rq, r, NULL, "inventory");
	if (environment == NULL)
		r = keep_readable(rq, records);
	if (r == CS_OK && q->has_due_before)
		r = cs_inventory_filter_due_before(records, q->due_before_ms);
	int64_t now = cs_service_now_ms();
	cs_inventory_counts n;
	if (r == CS_OK)
		r = cs_inventory_count(records, &rules, now, &n);
	if (r != CS_OK) {
		json_decref(records);
		return cs_service_fail(rq, r, "internal_error", "inventory: %s", cs_strerror(r));
	}
	char generated[32];
	cs_inventory_time_format(now, generated);
	*doc = json_pack("{s:o, s:o, s:s, s:s?, s:s?, s:s?}", "records", records, "counts", counts_json(&n),
			 "generated_at", generated, "project", project, "environment", environment, "due_before",
			 q->has_due_before ? q->due_before : NULL);
	if (*doc == NULL)
		return cs_service_fail(rq, CS_E_NOMEM, "internal_error", "out of memory");
	/* s:s? leaves a member out: the answer names all three, null when not asked */
	int bad = 0;
	static const char *const optional[] = {"project", "environment", "due_before"};
	for (size_t i = 0; i < 3; i++)
		if (json_object_get(*doc, optional[i]) == NULL)
			bad |= json_object_set_new(*doc, optional[i], json_null());
	if (bad) {
		json_decref(*doc);
		*doc = NULL;
		return cs_service_fail(rq, CS_E_NOMEM, "internal_error", "out of memory");
	}
	return CS_OK;
}

/* ---- /metrics ---------------------------------------------------------------------- */

static struct {
	pthread_mutex_t lock;
	int known;
	int64_t at_ms; /* when last computed (or attempted); 0: never */
	cs_inventory_counts counts;
} gauge_cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

void cs_service_inventory_gauges(cs_service_req *rq, cs_metrics_gauges *gauges)
{
	int64_t now = cs_service_now_ms();
	pthread_mutex_lock(&gauge_cache.lock);
	/* one scrape recomputes at a time; the others wait for its figures */
	if (gauge_cache.at_ms == 0 || now - gauge_cache.at_ms >= CS_SERVICE_INVENTORY_METRICS_MS ||
	    now < gauge_cache.at_ms) {
		cs_inventory_rules rules = rules_of(rq->app);
		cs_inventory_counts n;
		cs_err r = cs_inventory_count_store(rq->store, rq->app->presets, &rules, now, &n);
		gauge_cache.at_ms = now;
		if (r == CS_OK) {
			gauge_cache.counts = n;
			gauge_cache.known = 1;
		} else {
			cs_log_warn("metrics: the inventory could not be read: %s", cs_strerror(r));
		}
	}
	gauges->inventory_known = gauge_cache.known;
	gauges->inventory_current = gauge_cache.counts.current;
	gauges->inventory_superseded = gauge_cache.counts.superseded;
	gauges->inventory_revoked = gauge_cache.counts.revoked;
	gauges->inventory_overdue = gauge_cache.counts.overdue;
	gauges->inventory_due_soon = gauge_cache.counts.due_soon;
	pthread_mutex_unlock(&gauge_cache.lock);
}
