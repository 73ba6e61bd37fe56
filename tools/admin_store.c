/*
 * credsign-admin store: the PostgreSQL store's schema and moving an
 * appliance's SQLite store into it.
 *
 *   credsign-admin [--config FILE] store init [--owner-connection CONNINFO]
 *                  [--owner-password-file FILE]
 *   credsign-admin [--config FILE] store migrate --from sqlite:PATH --to postgresql
 *                  [--owner-connection CONNINFO] [--owner-password-file FILE] [--jwks FILE]
 *
 * Both act on the PostgreSQL store of the configuration (store.backend =
 * "postgresql", store.postgresql), connected to as the configuration says
 * or, with --owner-connection, as the schema's owner (the connection
 * replaced, its password from --owner-password-file, none otherwise: the
 * nodes' password file is not the owner's).
 *
 * store init creates the schema (or migrates it to this program's
 * version), granting the node role (store.postgresql.node_role) what a
 * node needs, and prints the schema version and the grants the role holds.
 *
 * store migrate verifies the SQLite store's audit chain (as audit verify
 * does; against --jwks, else the store's own key table), refuses a
 * PostgreSQL store that holds any record, copies every row of every table
 * in one transaction under the nodes' write lock (store_copy.h), verifies
 * the chain again in PostgreSQL and compares the counts of every table;
 * then records store.migrate in the new store's audit log. Stop the
 * appliance first: what it writes after the copy's snapshot stays behind.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "admin.h"
#include "audit.h"
#include "audit_verify.h"
#include "cs_secret.h"
#include "ledger.h"
#include "store.h"
#include "store_copy.h"
#include "store_target.h"

typedef struct {
	const char *config_path;
	const char *owner_connection, *owner_password_file;
	const char *from, *to, *jwks;
	cs_log_level level;
	const char *words[3];
	int nwords;
} store_opts;

enum { OPT_OWNER_CONN = 1000, OPT_OWNER_PW, OPT_FROM, OPT_TO, OPT_JWKS };

static void usage(FILE *f)
{
	fprintf(f, "usage: credsign-admin [--config FILE] store init [--owner-connection CONNINFO]\n"
		   "                      [--owner-password-file FILE]\n"
		   "       credsign-admin [--config FILE] store migrate --from sqlite:PATH --to postgresql\n"
		   "                      [--owner-connection CONNINFO] [--owner-password-file FILE] [--jwks FILE]\n");
}

int admin_store_command(int argc, char **argv)
{
	static const char *const with_value[] = {"--config", "-c", "--owner-connection", "--owner-password-file",
						 "--from", "--to", "--jwks"};
	for (int i = 1; i < argc; i++) {
		int skip = 0;
		for (size_t k = 0; k < sizeof(with_value) / sizeof(with_value[0]); k++)
			skip |= strcmp(argv[i], with_value[k]) == 0;
		if (skip) {
			i++;
			continue;
		}
		if (argv[i][0] == '-')
			continue;
		return strcmp(argv[i], "store") == 0; /* the first word */
	}
	return 0;
}

static int parse_args(int argc, char **argv, store_opts *op)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"owner-connection", required_argument, NULL, OPT_OWNER_CONN},
		{"owner-password-file", required_argument, NULL, OPT_OWNER_PW},
		{"from", required_argument, NULL, OPT_FROM},
		{"to", required_argument, NULL, OPT_TO},
		{"jwks", required_argument, NULL, OPT_JWKS},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;
	memset(op, 0, sizeof(*op));
	op->config_path = getenv("CREDSIGN_CONF");
	op->level = CS_LOG_WARN;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:hv", opts, NULL)) != -1) {
		switch (c) {
		case 'c': op->config_path = optarg; break;
		case OPT_OWNER_CONN: op->owner_connection = optarg; break;
		case OPT_OWNER_PW: op->owner_password_file = optarg; break;
		case OPT_FROM: op->from = optarg; break;
		case OPT_TO: op->to = optarg; break;
		case OPT_JWKS: op->jwks = optarg; break;
		case 'v': op->level = CS_LOG_DEBUG; break;
		case 'h': usage(stdout); return -1;
		default: usage(stderr); return 2;
		}
	}
	for (int i = optind; i < argc; i++) {
		if (op->nwords == 3) {
			usage(stderr);
			return 2;
		}
		op->words[op->nwords++] = argv[i];
	}
	int init = op->nwords == 2 && strcmp(op->words[1], "init") == 0;
	int migrate = op->nwords == 2 && strcmp(op->words[1], "migrate") == 0;
	if (!init && !migrate) {
		usage(stderr);
		return 2;
	}
	if (init && (op->from != NULL || op->to != NULL || op->jwks != NULL)) {
		fprintf(stderr, "credsign-admin: store init takes no --from, --to or --jwks\n");
		return 2;
	}
	if (migrate && (op->from == NULL || op->to == NULL)) {
		fprintf(stderr, "credsign-admin: store migrate needs --from sqlite:PATH and --to postgresql\n");
		return 2;
	}
	if (migrate && (strncmp(op->from, "sqlite:", 7) != 0 || op->from[7] == '\0')) {
		fprintf(stderr, "credsign-admin: --from %s: give the SQLite store as sqlite:PATH\n", op->from);
		return 2;
	}
	if (migrate && strcmp(op->to, "postgresql") != 0) {
		fprintf(stderr, "credsign-admin: --to %s: the destination is \"postgresql\" (the configuration's "
				"store.postgresql)\n", op->to);
		return 2;
	}
	if (op->owner_password_file != NULL && op->owner_connection == NULL) {
		fprintf(stderr, "credsign-admin: --owner-password-file goes with --owner-connection\n");
		return 2;
	}
	return 0;
}

/* --owner-connection: libpq's syntax, and no password in it (admin.h). */
int admin_owner_connection_ok(const char *conninfo)
{
	char *err = NULL;
	PQconninfoOption *o = PQconninfoParse(conninfo, &err);
	if (o == NULL) {
		char why[320];
		cs_config_conninfo_error(conninfo, err != NULL ? err : "out of memory", why, sizeof(why));
		fprintf(stderr, "credsign-admin: --owner-connection: %s\n", why);
		PQfreemem(err);
		return 0;
	}
	int has_password = 0;
	for (PQconninfoOption *p = o; p->keyword != NULL; p++)
		has_password |= strcmp(p->keyword, "password") == 0 && p->val != NULL;
	PQconninfoFree(o);
	if (has_password) {
		fprintf(stderr, "credsign-admin: --owner-connection holds a password: use --owner-password-file "
				"(a command line is visible to every user of this machine)\n");
		return 0;
	}
	return 1;
}

/* The configuration's PostgreSQL store, with the owner's connection when
 * given. 0, or the exit status. */
static int store_target(admin_ctx *a, const store_opts *op, cs_store_target *t)
{
	const char *what = op->words[1];
	if (!cs_store_target_is_pg(a->cfg)) {
		if (strcmp(what, "init") == 0)
			fprintf(stderr, "credsign-admin: store init: the configured store is SQLite (store.path %s): "
					"nothing to init (credsignd creates it at its first start)\n", a->cfg->store.path);
		else
			fprintf(stderr, "credsign-admin: store migrate: the configuration's store is SQLite: give a "
					"configuration whose store.backend is \"postgresql\" (the destination)\n");
		return 1;
	}
	return admin_owner_target(a, op->owner_connection, op->owner_password_file, t);
}

/* The configuration's PostgreSQL store as the schema owner (admin.h). */
int admin_owner_target(admin_ctx *a, const char *owner_connection, const char *owner_password_file,
		       cs_store_target *t)
{
	if (owner_password_file != NULL && owner_connection == NULL) {
		fprintf(stderr, "credsign-admin: --owner-password-file goes with --owner-connection\n");
		return 2;
	}
	if (cs_store_target_from_config(a->cfg, t) != CS_OK)
		return admin_fail("the configuration's store", CS_E_CONFIG);
	t->application_name = "credsign-admin";
	t->statement_timeout_ms = 0; /* reading a whole audit log may take longer than a node's statement */
	if (owner_connection != NULL) {
		if (!admin_owner_connection_ok(owner_connection))
			return 2;
		t->conninfo = owner_connection;
		t->password_file = owner_password_file;
	}
	const char *why = NULL;
	if (owner_password_file != NULL && cs_secret_check_file(owner_password_file, &why) != CS_OK) {
		fprintf(stderr, "credsign-admin: --owner-password-file: %s\n", why);
		return 1;
	}
	return 0;
}

/* ---- store init ---------------------------------------------------------------- */

typedef struct {
	const char *role;
	int count;
} grant_listing;

static void print_grant(void *arg, const char *object, const char *privileges)
{
	grant_listing *g = arg;
	if (g->count++ == 0)
		printf("granted to %s:\n", g->role);
	printf("  %-22s %s\n", object, privileges);
}

static int cmd_init(admin_ctx *a, const store_opts *op)
{
	cs_store_target t;
	cs_store *store = NULL;
	cs_store_pg_schema schema;
	char name[256];
	int rc = store_target(a, op, &t);
	if (rc != 0)
		return rc;
	cs_store_target_name(&t, name, sizeof(name));
	cs_err r = cs_store_connect(&t, &store); /* creates or migrates the schema, grants */
	cs_store_close(store);
	if (r != CS_OK) {
		fprintf(stderr, "credsign-admin: store init: %s: %s (%s); the cause is logged above\n", name,
			cs_strerror(r), cs_err_name(r));
		return 1;
	}
	grant_listing g = {.role = t.node_role != NULL ? t.node_role : "credsign_node"};
	if ((r = cs_store_pg_describe(&t, g.role, &schema, print_grant, &g)) != CS_OK)
		return admin_fail("reading the schema", r);
	printf("store %s: schema version %d\n", name, schema.version);
	if (!schema.role_exists)
		printf("warning: role %s does not exist: nothing granted. Create it (CREATE ROLE %s NOLOGIN), make "
		       "each node's login role a member, and run store init again\n", g.role, g.role);
	else if (g.count == 0)
		printf("warning: role %s holds no privilege on the schema: the nodes cannot use it (was the schema "
		       "made before the role? grant as docs/deployment.md says)\n", g.role);
	return 0;
}

/* ---- store migrate --------------------------------------------------------------- */

/* The certificate keys of a store's key table (checkpoints are signed with
 * them), or the JWKS file given. */
static void add_key(void *arg, const cs_key_info *key)
{
	if (key->profile != NULL)
		return;
	json_t *k = json_loads(key->jwk_json, 0, NULL);
	if (k != NULL)
		json_array_append_new(arg, k);
}

static json_t *load_jwks(const char *path, cs_store *store)
{
	if (path != NULL) {
		json_error_t err;
		json_t *j = json_load_file(path, 0, &err);
		if (j == NULL || !json_is_array(json_object_get(j, "keys"))) {
			fprintf(stderr, "credsign-admin: %s is not a JWKS\n", path);
			json_decref(j);
			return NULL;
		}
		return j;
	}
	json_t *keys = json_array();
	if (keys == NULL || cs_store_keys_info(store, add_key, keys) != CS_OK) {
		json_decref(keys);
		fprintf(stderr, "credsign-admin: the store's key table could not be read\n");
		return NULL;
	}
	return json_pack("{s:o}", "keys", keys);
}

static void print_verification(const char *which, const char *name, const cs_audit_report *rep)
{
	if (!rep->intact) {
		printf("%s %s: audit log NOT intact at seq %lld: %s\n", which, name, (long long)rep->bad_seq,
		       rep->reason);
		return;
	}
	printf("%s %s: audit log intact: %lld entries (seq %lld..%lld), %lld checkpoints verified, "
	       "%lld entries authenticated\n",
	       which, name, (long long)rep->entries, (long long)rep->first_seq, (long long)rep->last_seq,
	       (long long)rep->checkpoints, (long long)rep->authenticated);
}

/* audit verify of one store: 0 intact, 1 not (or unreadable). */
static int verify_store(cs_store *store, const char *jwks_path, const char *which, const char *name,
			cs_audit_report *rep)
{
	json_t *jwks = load_jwks(jwks_path, store);
	if (jwks == NULL)
		return 1;
	cs_err r = cs_audit_verify_pinned(store, jwks, 0, NULL, rep);
	json_decref(jwks);
	if (r != CS_OK) {
		char what[400];
		snprintf(what, sizeof(what), "%s %s: reading the audit log", which, name);
		return admin_fail(what, r);
	}
	print_verification(which, name, rep);
	return rep->intact ? 0 : 1;
}

static void print_counts(const cs_store_copy_report *rep)
{
	printf("  %-22s %10s %10s\n", "table", "sqlite", "postgresql");
	for (size_t i = 0; i < rep->ntables; i++)
		printf("  %-22s %10lld %10lld%s\n", rep->tables[i].table, (long long)rep->tables[i].source,
		       (long long)rep->tables[i].target, rep->tables[i].source != rep->tables[i].target ? "  DIFFER" : "");
}

/* The same log on both sides: entries, range, checkpoints, authenticated. */
static int same_log(const cs_audit_report *x, const cs_audit_report *y)
{
	return x->entries == y->entries && x->first_seq == y->first_seq && x->last_seq == y->last_seq &&
	       x->checkpoints == y->checkpoints && x->authenticated == y->authenticated &&
	       x->base_seq == y->base_seq;
}

static int cmd_migrate(admin_ctx *a, const store_opts *op)
{
	const char *path = op->from + strlen("sqlite:");
	cs_store_target t;
	cs_store *src = NULL, *dst = NULL;
	cs_store_copy_report copied, counted;
	cs_audit_report before, after;
	char name[256], why[256];
	int equal = 0;
	int rc = store_target(a, op, &t);
	if (rc != 0)
		return rc;
	cs_store_target_name(&t, name, sizeof(name));
	/* 1. the source's chain, before anything is written */
	cs_err r = cs_store_open_existing_readonly(path, &src);
	if (r != CS_OK) {
		fprintf(stderr, "credsign-admin: store migrate: the SQLite store %s: %s (%s); nothing written\n", path,
			cs_strerror(r), cs_err_name(r));
		return 1;
	}
	rc = verify_store(src, op->jwks, "source", op->from, &before);
	cs_store_close(src);
	if (rc != 0) {
		fprintf(stderr, "credsign-admin: store migrate: the SQLite store's audit log does not verify: nothing "
				"written\n");
		return 1;
	}
	/* 2. the destination's schema, then the copy */
	if ((r = cs_store_connect(&t, &dst)) != CS_OK) {
		fprintf(stderr, "credsign-admin: store migrate: %s: %s (%s); nothing written\n", name, cs_strerror(r),
			cs_err_name(r));
		return 1;
	}
	cs_store_close(dst);
	dst = NULL;
	r = cs_store_copy_sqlite_to_pg(path, &t, &copied, why);
	if (r != CS_OK) {
		fprintf(stderr, "credsign-admin: store migrate: %s%s%s (%s); nothing written\n",
			why[0] != '\0' ? why : "the copy failed", why[0] != '\0' ? "" : ": ",
			why[0] != '\0' ? "" : cs_strerror(r), cs_err_name(r));
		return 1;
	}
	printf("copied %s into %s in one transaction\n", op->from, name);
	/* 3. the destination's chain and counts, read again */
	if ((r = cs_store_connect(&t, &dst)) != CS_OK) {
		fprintf(stderr, "credsign-admin: store migrate: the copy committed, but %s cannot be reopened: %s\n",
			name, cs_strerror(r));
		return 1;
	}
	rc = verify_store(dst, op->jwks, "destination", name, &after);
	cs_store_close(dst);
	if (rc == 0 && !same_log(&before, &after)) {
		fprintf(stderr, "credsign-admin: store migrate: the audit log in %s differs from the SQLite store's\n",
			name);
		rc = 1;
	}
	if ((r = cs_store_copy_compare(path, &t, &counted, &equal)) != CS_OK) {
		admin_fail("counting the rows", r);
		return 1;
	}
	print_counts(&counted);
	if (!equal) {
		fprintf(stderr, "credsign-admin: store migrate: the row counts differ (above)\n");
		rc = 1;
	}
	if (rc != 0) {
		fprintf(stderr, "credsign-admin: store migrate: the copy in %s is NOT the SQLite store's; do not start "
				"nodes on it\n", name);
		return 1;
	}
	/* 4. on record in the store that now holds the log */
	cs_ledger *ledger = NULL;
	char actor[96], now[32];
	admin_actor(actor);
	cs_audit_now(now);
	cs_audit_entry e = {.ts = now, .node = a->cfg->server.node_id, .actor = actor, .role = "admin",
			    .action = "store.migrate", .object = op->from, .outcome = "success"};
	if ((r = cs_ledger_connect(&t, a->cfg->audit.write_timeout_ms, &ledger)) == CS_OK)
		r = cs_ledger_audit_append(ledger, &e);
	cs_ledger_close(ledger);
	if (r != CS_OK) {
		fprintf(stderr, "credsign-admin: the audit log could not record store.migrate: %s\n", cs_strerror(r));
		return 1;
	}
	printf("migrated: every table's rows copied and counted; the audit chain verified before and after "
	       "(store.migrate recorded as seq %lld)\n", (long long)e.seq);
	return 0;
}

int admin_store_main(int argc, char **argv)
{
	store_opts op;
	umask(077);
	int rc = parse_args(argc, argv, &op);
	if (rc != 0)
		return rc < 0 ? 0 : rc; /* -1: --help answered */
	admin_ctx a = {0};
	if ((rc = admin_load(&a, op.config_path, op.level)) == 0)
		rc = strcmp(op.words[1], "init") == 0 ? cmd_init(&a, &op) : cmd_migrate(&a, &op);
	admin_close(&a);
	return rc;
}
