/* service_audit: the audit log for auditors (service.h). */
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "service_internal.h"

typedef struct {
	json_t *entries, *checkpoints;
	const char *project; /* NULL: the whole log */
} page_builder;

/* The export's objects into the page (cs_audit_export): a filtered page
 * keeps its project's entries and no checkpoint. */
static int add_export_object(void *arg, json_t *j)
{
	page_builder *b = arg;
	const char *type = json_string_value(json_object_get(j, "type"));
	int entry = type != NULL && strcmp(type, "entry") == 0;
	if (b->project != NULL) {
		const char *project = json_string_value(json_object_get(j, "project"));
		if (!entry || project == NULL || strcmp(project, b->project) != 0) {
			json_decref(j);
			return 0;
		}
	}
	return json_array_append_new(entry ? b->entries : b->checkpoints, j) != 0; /* never skip one silently */
}

void cs_audit_page_free(cs_audit_page *page)
{
	json_decref(page->entries);
	json_decref(page->checkpoints);
	memset(page, 0, sizeof(*page));
}

cs_err cs_service_audit_export(cs_service_req *rq, const cs_audit_query *q, cs_audit_page *out)
{
	memset(out, 0, sizeof(*out));
	const char *project = q->project[0] ? q->project : NULL;
	cs_access_scope scope = {project, NULL, NULL, NULL};
	cs_err r = cs_service_authorize(rq, CS_ACTION_AUDIT_READ, &scope);
	if (r != CS_OK)
		return r;
	/* the objects of credsign-admin audit export, one format (audit.h) */
	page_builder b = {json_array(), json_array(), project};
	r = b.entries != NULL && b.checkpoints != NULL
		    ? cs_audit_export(rq->store, q->from_seq, NULL, q->limit, add_export_object, &b, &out->next_from_seq)
		    : CS_E_NOMEM;
	if (r != CS_OK) {
		json_decref(b.entries);
		json_decref(b.checkpoints);
		return cs_service_fail(rq, r, NULL, "audit log");
	}
	out->entries = b.entries;
	out->checkpoints = b.checkpoints;
	return CS_OK;
}

cs_err cs_service_audit_checkpoint(cs_service_req *rq, char **jws)
{
	*jws = NULL;
	cs_err r = cs_service_authorize(rq, CS_ACTION_AUDIT_READ, NULL);
	if (r != CS_OK)
		return r;
	if ((r = cs_audit_newest_checkpoint(rq->store, jws)) != CS_OK) /* the one to keep */
		return cs_service_fail(rq, r, NULL, "audit checkpoint");
	return CS_OK;
}
