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
	struct cs_audit *audit;
	struct cs_ledger *ledger; /* every write, one writer thread (ledger.h) */
	/* the server's connection counts for /metrics (NULL until it runs) */
	void (*read_gauges)(void *arg, cs_metrics_gauges *gauges);
	void *gauges_arg;
	atomic_long request_counter;
	atomic_long requests_in_flight;
} cs_app;

/* Build the entropy_source claim from the token and configuration. */
cs_err cs_app_describe_token(cs_app *app);

#endif
