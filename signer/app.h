/*
 * app: what every request handler shares, built once at start-up by
 * credsignd and read-only afterwards (the token and signer are thread-safe).
 * Each worker thread adds its own store connection.
 */
#ifndef CS_APP_H
#define CS_APP_H

#include <stdatomic.h>

#include <jansson.h>
#include <openssl/types.h>

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
	json_t *entropy_source; /* the certificate's entropy_source claim */
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
	/* the server's connection counts for /metrics (NULL until it runs) */
	void (*read_gauges)(void *arg, cs_metrics_gauges *gauges);
	void *gauges_arg;
	atomic_long request_counter;
	atomic_long requests_in_flight;
} cs_app;

/* Build the entropy_source claim from the token and configuration, and
 * check pkcs11.validation against the token: sets entropy_source,
 * validated_program and validation_problem, and logs the outcome. */
cs_err cs_app_describe_token(cs_app *app);

/* The entropy_source.validation claim for a token that reports `info`:
 * {"validated", "program", "certificate", "module", "level",
 *  "checked_versions": {NAME: {"configured", "token", "match"}}}, where NAME
 * is each of hardware_version, firmware_version (CK_TOKEN_INFO) and
 * library_version (CK_INFO) the configuration sets. validated is true only
 * when a program other than "none" is configured and every configured
 * version equals the token's. problem[cap] gets why not when a program was
 * configured ("" otherwise). Pure: no token call, no log. */
cs_err cs_app_validation_claim(const cs_config *cfg, const cs_token_info *info, json_t **claim,
			       char *problem, size_t cap) __attribute__((warn_unused_result));

/* Whether a token validated under `validated` (NULL: not validated) meets a
 * preset's requires_validation (NULL: no requirement). FIPS 140-3 meets
 * "FIPS 140-2" as well; FIPS 140-2 does not meet "FIPS 140-3". */
int cs_validation_meets(const char *validated, const char *required);

#endif
