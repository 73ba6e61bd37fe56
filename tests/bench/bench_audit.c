/*
 * bench_audit: audit-log verification speed. Builds a log of N entries
 * (default 1,000,000) with a signed checkpoint every 1,000 entries, then
 * times cs_audit_verify over all of it on one core and prints entries/s
 * (target >= 500,000/s). The log is written directly with the documented
 * schema in one transaction (appending through the daemon commits each
 * entry durably, which is not what is measured here).
 *
 *   bench_audit [N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "audit_verify.h"
#include "certsign.h"
#include "ec_util.h"
#include "jose.h"
#include "store.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static cs_err soft_sign(void *ctx, const uint8_t *input, size_t len, uint8_t raw[64])
{
	uint8_t der[80];
	size_t der_len = sizeof(der);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok = EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, ctx) == 1 &&
		 EVP_DigestSign(md, der, &der_len, input, len) == 1;
	EVP_MD_CTX_free(md);
	return ok ? cs_ecdsa_der_to_raw(der, der_len, raw) : CS_E_CRYPTO;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	char dir[] = "/tmp/bench-audit-XXXXXX", path[64];
	if (n < 1000 || mkdtemp(dir) == NULL)
		return 2;
	snprintf(path, sizeof(path), "%s/audit.db", dir);
	cs_store *store = NULL;
	if (cs_store_open(path, &store) != CS_OK)
		return 1;
	EVP_PKEY *key = EVP_EC_gen("P-256");
	char kid[44];
	json_t *jwk = NULL;
	if (key == NULL || cs_jwk_thumbprint(key, kid) != CS_OK || cs_jwk_from_pkey(key, &jwk) != CS_OK)
		return 1;

	sqlite3 *db = NULL;
	sqlite3_open(path, &db);
	sqlite3_exec(db, "PRAGMA synchronous = OFF; BEGIN", NULL, NULL, NULL);
	sqlite3_stmt *ins = NULL, *cp = NULL;
	sqlite3_prepare_v2(db, "INSERT INTO audit_log VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", -1, &ins, NULL);
	sqlite3_prepare_v2(db, "INSERT INTO audit_checkpoints (first_seq, last_seq, head_hash, ts, node, kind, jws) "
			       "VALUES (?,?,?,?,?,?,?)", -1, &cp, NULL);
	uint8_t prev[32] = {0}, hash[32];
	char ts[32], object[32], rid[32];
	static const char *const actions[] = {"generate", "certify", "cert.read", "jwks.read"};
	double t0 = now();
	for (long seq = 1; seq <= n; seq++) {
		cs_audit_now(ts);
		snprintf(object, sizeof(object), "obj%020ld", seq);
		snprintf(rid, sizeof(rid), "bench-%ld", seq);
		cs_audit_entry e = {.seq = seq, .ts = ts, .node = "bench-1",
				    .actor = "spiffe://credsign.test/ci-deployer",
				    .actor_cert_sha256 =
					    "f814f9981ea6f604c4155947ac0956642a740a27f7e3a340cf968a9b7281dc20",
				    .role = "client", .action = actions[seq % 4], .object = object,
				    .project = "payments", .environment = "production", .outcome = "success",
				    .request_id = rid};
		if (cs_audit_hash(NULL, prev, &e, hash) != CS_OK) {
			fprintf(stderr, "bench_audit: hashing failed\n");
			return 1;
		}
		const char *v[] = {e.ts, e.node, e.actor, e.actor_cert_sha256, e.role, e.action, e.object,
				   e.project, e.environment, e.outcome, e.error_code, e.request_id};
		sqlite3_bind_int64(ins, 1, seq);
		for (int i = 0; i < 12; i++)
			if (v[i] != NULL)
				sqlite3_bind_text(ins, i + 2, v[i], -1, SQLITE_STATIC);
			else
				sqlite3_bind_null(ins, i + 2);
		sqlite3_bind_blob(ins, 14, prev, 32, SQLITE_STATIC);
		sqlite3_bind_blob(ins, 15, hash, 32, SQLITE_STATIC);
		sqlite3_step(ins);
		sqlite3_reset(ins);
		memcpy(prev, hash, 32);
		if (seq % 1000 == 0) {
			char *h = cs_b64url_encode(hash, 32), *jws = NULL;
			json_t *claims = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s}", "first_seq",
						   (json_int_t)(seq - 999), "last_seq", (json_int_t)seq,
						   "head_hash", h, "time", ts, "node", "bench-1", "kind", "periodic");
			json_t *header = json_pack("{s:s, s:s, s:s}", "alg", "ES256", "typ", CS_CHECKPOINT_TYP,
						   "kid", kid);
			if (cs_jws_es256_sign(header, claims, soft_sign, key, &jws) != CS_OK)
				return 1;
			sqlite3_bind_int64(cp, 1, seq - 999);
			sqlite3_bind_int64(cp, 2, seq);
			sqlite3_bind_blob(cp, 3, hash, 32, SQLITE_STATIC);
			sqlite3_bind_text(cp, 4, ts, -1, SQLITE_STATIC);
			sqlite3_bind_text(cp, 5, "bench-1", -1, SQLITE_STATIC);
			sqlite3_bind_text(cp, 6, "periodic", -1, SQLITE_STATIC);
			sqlite3_bind_text(cp, 7, jws, -1, SQLITE_STATIC);
			sqlite3_step(cp);
			sqlite3_reset(cp);
			free(h);
			free(jws);
			json_decref(claims);
			json_decref(header);
		}
	}
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_finalize(ins);
	sqlite3_finalize(cp);
	sqlite3_close(db);
	double built = now() - t0;

	json_t *jwks = json_pack("{s:[O]}", "keys", jwk);
	cs_audit_report rep;
	double t1 = now();
	cs_err r = cs_audit_verify(store, jwks, 0, &rep);
	double took = now() - t1;
	printf("audit log of %ld entries and %lld checkpoints built in %.1f s\n", n,
	       (long long)rep.checkpoints, built);
	printf("verified (chain + %lld ES256 checkpoint signatures) in %.2f s: %.0f entries/s "
	       "(target >= 500000): %s\n",
	       (long long)rep.checkpoints, took, (double)rep.entries / took,
	       r == CS_OK && rep.intact ? "intact" : rep.reason);
	json_decref(jwks);
	json_decref(jwk);
	EVP_PKEY_free(key);
	cs_store_close(store);
	unlink(path);
	char wal[80];
	snprintf(wal, sizeof(wal), "%s-wal", path);
	unlink(wal);
	snprintf(wal, sizeof(wal), "%s-shm", path);
	unlink(wal);
	rmdir(dir);
	return r == CS_OK && rep.intact ? 0 : 1;
}
