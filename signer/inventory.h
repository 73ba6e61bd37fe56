/*
 * inventory: the credential register (issue 19). One record per
 * certificate, keyed by its claims' (project, environment, system); the
 * newest certificate of a key with a system is current, the older ones
 * superseded (superseded_by: the next newer one), a revoked certificate
 * revoked whatever its position; a certificate without a system is a
 * record of its own. Rotation due dates come from the preset in force
 * (by the certificate's preset name) and the configuration
 * (inventory.pci_password_change_days): see docs/design.md, "Inventory".
 *
 * Record (JSON object, members in this order; CSV columns the same):
 *   project, environment, system|null, state ("current" | "superseded" |
 *   "revoked"), cert_id, cert_url, type, preset, standards [strings],
 *   certified_at, requester, rotation_due|null, rotation_rule|null,
 *   rotation|null, superseded_by|null, revoked_at|null,
 *   revocation_reason|null.
 * Records are ordered by project, environment, system (null first),
 * certified_at, cert_id.
 *
 * Pure functions but cs_inventory_collect (one snapshot read of the
 * store). Thread-safe. Errors: CS_E_NOMEM, CS_E_TOO_LARGE (more than
 * CS_INVENTORY_MAX_RECORDS), CS_E_STORE (the store's, or claims that do
 * not parse), CS_E_INVALID_ARG.
 */
#ifndef CS_INVENTORY_H
#define CS_INVENTORY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cs_error.h"
#include "preset.h"
#include "store.h"

/* records one answer holds at most (GET /api/inventory: 413 beyond) */
#define CS_INVENTORY_MAX_RECORDS 100000
/* inventory.pci_password_change_days: PCI DSS v4.0.1 8.3.9's maximum */
#define CS_INVENTORY_PCI_DAYS_MAX 90
#define CS_INVENTORY_DUE_SOON_MAX 365
/* rotation_rule of the PCI DSS password-only change */
#define CS_INVENTORY_PCI_RULE "PCI DSS v4.0.1 8.3.9 (password-only accounts: change at least every 90 days)"
/* appended (after "; ") to the preset's rotation text of a record the
 * 8.3.9 change applies to; %d: inventory.pci_password_change_days */
#define CS_INVENTORY_PCI_ROTATION                                                                              \
	"password-only accounts: at least every %d days (PCI DSS v4.0.1 8.3.9, inventory.pci_password_change_days)"

typedef struct {
	int pci_password_change_days; /* 0: not used */
	int due_soon_days;            /* >= 1 */
} cs_inventory_rules;

/* The records (JSON array, members as above) of the certificates of
 * project/environment (NULL: any), read from the store in one snapshot;
 * presets: the set in force. *records is NULL on error. */
cs_err cs_inventory_collect(cs_store *store, const cs_preset_set *presets, const cs_inventory_rules *rules,
			    const char *project, const char *environment, json_t **records)
	__attribute__((warn_unused_result));

/* The records of rows (any order; every row of each key must be among
 * them for the states to be right), as cs_inventory_collect builds them:
 * for tests and the evidence export. n <= CS_INVENTORY_MAX_RECORDS.
 * CS_E_STORE when a row's claims do not parse as a JSON object. */
cs_err cs_inventory_records(const cs_inventory_row *rows, size_t n, const cs_preset_set *presets,
			    const cs_inventory_rules *rules, json_t **records) __attribute__((warn_unused_result));

/* RFC 4180 CSV of records (header row first, CRLF line ends, every field
 * quoted, `"` doubled, null an empty unquoted field, standards joined
 * with "; "); a field beginning with = + - @ TAB or CR gets a leading '
 * (spreadsheet formula injection). malloc'd; NULL on no memory or when
 * records is not an array of objects. */
char *cs_inventory_csv(const json_t *records);

typedef struct {
	int64_t current, superseded, revoked, overdue, due_soon;
} cs_inventory_counts;
/* Counts over records at now_ms: overdue = current records whose
 * rotation_due is before now; due_soon = current records due within
 * rules->due_soon_days (not overdue). CS_E_INVALID_ARG when records is not
 * an array. */
cs_err cs_inventory_count(const json_t *records, const cs_inventory_rules *rules, int64_t now_ms,
			  cs_inventory_counts *out) __attribute__((warn_unused_result));

/* cs_inventory_count over every certificate in the store, streamed: no
 * record list is built and there is no CS_INVENTORY_MAX_RECORDS limit
 * (for /metrics). The store's order (created_ms within a key) decides
 * which certificate of a key is the newest. */
cs_err cs_inventory_count_store(cs_store *store, const cs_preset_set *presets, const cs_inventory_rules *rules,
				int64_t now_ms, cs_inventory_counts *out) __attribute__((warn_unused_result));

/* Keep only the current records whose rotation_due is before before_ms
 * (records without a due date go, and so do superseded and revoked ones:
 * they are no longer due, though they keep the date they had). */
cs_err cs_inventory_filter_due_before(json_t *records, int64_t before_ms) __attribute__((warn_unused_result));

/* A time: "YYYY-MM-DD" (00:00:00.000Z that day) or RFC 3339 UTC
 * "YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z" (milliseconds kept). CS_E_INVALID_ARG
 * otherwise (a day that does not exist included). */
cs_err cs_inventory_time_parse(const char *s, int64_t *ms) __attribute__((warn_unused_result));
/* ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" */
void cs_inventory_time_format(int64_t ms, char out[32]);

#endif
