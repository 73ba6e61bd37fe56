/*
 * app: what every request handler shares, built once at start-up by
 * credsignd and read-only afterwards (the token and signer are thread-safe;
 * the access rules change only by an atomic swap). Each worker thread adds
 * its own store connection. app.c: the token's description.
 */
#ifndef CS_APP_H
#define CS_APP_H

#include <pthread.h>
#include <stdatomic.h>

#include <jansson.h>
#include <openssl/types.h>

#include "access.h"
#include "certsign.h"
#include "metrics.h"
#include "config.h"
#include "preset.h"
#include "store.h"
#include "token.h"

#define CS_SESSION_TTL_SECONDS 60

typedef struct {
	const cs_config *cfg;
	cs_token *token;
	OSSL_LIB_CTX *libctx;
	cs_preset_set *presets;
	cs_wordlist *wordlist; /* passphrases */
	cs_signer *signer;
	/* the certificate's entropy_source claim, validated_program and
	 * validation_problem below: read through cs_app_entropy_source (under
	 * token_lock), which describes the token again after the pool
	 * recovered (a module re-initialised may find another token: a network
	 * HSM's partner, a replaced unit) */
	json_t *entropy_source;
	pthread_mutex_t token_lock;
	unsigned long described_recoveries; /* cs_token_recoveries when described */
	char described_serial[17];          /* the token's serial then */
	/* pkcs11.validation as checked at start (cs_app_describe_token): the
	 * program the token counts as validated under ("FIPS 140-3" or
	 * "FIPS 140-2"), or NULL when it does not (program "none", or versions
	 * that differ from what the token reports) */
	const char *validated_program;
	/* why a configured program does not hold ("" when it holds or none was
	 * configured): logged, and audited as token.validation */
	char validation_problem[320];
	struct cs_audit *audit;
	struct cs_ledger *ledger; /* every write, one writer thread (ledger.h) */
	/* the access rules in force (access.h): each request takes its own
	 * reference at its start; SIGHUP swaps in rules built from the
	 * configuration file read again (server.c) */
	cs_access_slot *access;
	/* certificates.public in force: any authenticated client reads
	 * certificates (swapped with the rules) */
	atomic_int certificates_public;
	/* refusals of requests counted per (certificate, action, code): the
	 * first of each per interval audited, the rest summarised
	 * (cs_service_flush_refusals) */
	struct cs_request_refusals *refusals;
	/* the server's connection counts for /metrics (NULL until it runs) */
	void (*read_gauges)(void *arg, cs_metrics_gauges *gauges);
	void *gauges_arg;
	atomic_long request_counter;
	atomic_long requests_in_flight;
} cs_app;

/* Build the entropy_source claim from the token and configuration, and
 * check pkcs11.validation against the token: sets entropy_source,
 * validated_program and validation_problem, and logs the outcome. At
 * start (token_lock initialised here); cs_app_entropy_source does it
 * again after every recovery of the pool. */
cs_err cs_app_describe_token(cs_app *app);
/* The entropy_source claim as of now (a new reference) and what
 * validation holds (program or NULL, and why not into problem[cap]):
 * when the pool recovered since the token was last described, it is
 * described again, and a change of the token (serial, versions,
 * validation) is logged and audited (token.changed). NULL on failure. */
json_t *cs_app_entropy_source(cs_app *app, const char **validated_program, char *problem, size_t cap);

/* The entropy_source.validation claim for a token that reports `info`:
 * {"validated", "program", "certificate", "module", "level",
 *  "checked_versions": {NAME: {"configured", "token", "match"}}}, where NAME
 * is each of hardware_version, firmware_version (CK_TOKEN_INFO) and
 * library_version (CK_INFO) the configuration sets. validated is true only
 * when a program other than "none" is configured and every configured
 * version equals the token's, and, for "FIPS 140-2", today (YYYY-MM-DD)
 * is not after the sunset of FIPS 140-2 validations (2026-09-21: they are
 * historical since, no longer active). problem[cap] gets why not when a
 * program was configured ("" otherwise). Pure: no token call, no clock,
 * no log. */
#define CS_FIPS_140_2_SUNSET "2026-09-21"
cs_err cs_app_validation_claim(const cs_config *cfg, const cs_token_info *info, const char *today,
			       json_t **claim, char *problem, size_t cap) __attribute__((warn_unused_result));

/* Whether a token validated under `validated` (NULL: not validated) meets a
 * preset's requires_validation (NULL: no requirement). FIPS 140-3 meets
 * "FIPS 140-2" as well; FIPS 140-2 does not meet "FIPS 140-3". */
int cs_validation_meets(const char *validated, const char *required);

#endif
