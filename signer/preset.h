/*
 * preset: compliance presets are data (conf/presets.conf, libconfig), loaded
 * and validated at start-up into an immutable set; operators add their own
 * in the `presets` group of the main configuration (built-in names cannot be
 * redefined).
 *
 * A preset names the standards it satisfies and sets the credential types
 * allowed, the password character set and required classes, run limits, the
 * minimum and default length, the minimum security strength (never below 112
 * bits, SP 800-131A), rotation guidance and the audit retention its
 * standard needs. The required classes hold for every type: a password has
 * each of them, an api-key, hex or base64url credential each one its
 * alphabet has (hex: lower and digit). The length actually enforced is
 * the larger of the preset's minimum and the length at which the exact
 * entropy reaches the strength (cs_preset_plan). Each preset has a version
 * and a SHA-256 over its canonical JSON definition, recorded in
 * certificates.
 *
 * Plans of the string types are cached per preset (the exact-entropy
 * dynamic programme is the costly part of a request): see cs_preset_plan.
 *
 * Errors are reported like configuration errors: FILE:LINE: setting: reason.
 * A loaded set is read-only and may be shared between threads.
 */
#ifndef CS_PRESET_H
#define CS_PRESET_H

#include <stddef.h>

#include <jansson.h>

#include "config.h"
#include "generate.h"

#define CS_STRENGTH_FLOOR 112

typedef enum {
	CS_TYPE_PASSWORD = 1,
	CS_TYPE_API_KEY = 2,
	CS_TYPE_HEX = 4,
	CS_TYPE_BASE64URL = 8,
	CS_TYPE_PASSPHRASE = 16,
} cs_cred_type;

typedef struct cs_plan_cache cs_plan_cache;

typedef struct {
	char *name;
	char *title;
	int version;
	char **standards; /* requirement ids with their source, e.g. "PCI DSS v4.0.1 8.3.6" */
	size_t nstandards;
	unsigned types;   /* cs_cred_type bits */
	char *charset_name;
	char charset[CS_CHARSET_MAX + 1];
	unsigned classes; /* CS_CLASS_* bits required in passwords */
	unsigned max_identical_run, max_class_run; /* 0 = none */
	int min_length, default_length;
	int strength_bits;
	char *rotation;
	int rotation_days; /* maximum lifetime for privileged accounts, 0 = none set */
	int audit_retention_days; /* audit records the standard keeps, 0 = none set */
	char *basis; /* where the numbers come from */
	/* "FIPS 140-3" or "FIPS 140-2": generation under this preset is refused
	 * (422 token_not_validated) unless the token's pkcs11.validation held at
	 * start (cs_validation_meets); NULL = no requirement */
	char *requires_validation;
	json_t *cites; /* rule -> requirement: length, classes, runs, rotation, retention */
	char *source; /* "built-in" or the configuration file */
	char sha256[65];    /* of the canonical JSON definition */
	json_t *definition; /* canonical definition (for /api/presets) */
	cs_plan_cache *plan_cache; /* made by cs_presets_load; NULL: plans are not cached */
} cs_preset;

typedef struct {
	int version; /* of the built-in presets file */
	cs_preset *items;
	size_t count;
	json_t *policy; /* the file's `policy` group: rule texts and citations */
} cs_preset_set;

/* Load the built-in presets file and, when config_file is not NULL, the
 * operator presets in its `presets` group. CS_E_CONFIG with the reasons in
 * diag; CS_E_NOMEM when memory ran out (nothing is returned: a preset
 * loaded in part would certify under a wrong digest). */
cs_err cs_presets_load(const char *builtin_file, const char *config_file, cs_preset_set **out,
		       cs_config_diag *diag) __attribute__((warn_unused_result));
void cs_presets_free(cs_preset_set *set);
const cs_preset *cs_preset_find(const cs_preset_set *set, const char *name);

/* Type names: "password", "api-key", "hex", "base64url", "passphrase". */
const char *cs_type_name(cs_cred_type type);
int cs_type_parse(const char *name); /* -1 if unknown */

/* What a request asks for; zero fields take the preset's defaults. */
typedef struct {
	int type;          /* cs_cred_type, 0 = the preset's first */
	int length;        /* characters, or words for passphrases */
	int strength_bits;
	int exclude_ambiguous; /* drop 0 O 1 l I | from the character set */
} cs_plan_request;

/* What will be generated, and its exact entropy. */
typedef struct {
	cs_cred_type type;
	char charset[CS_CHARSET_MAX + 1];
	cs_string_spec spec;    /* string types; spec.charset points at charset */
	int length;             /* characters, or words */
	int min_length;         /* enforced minimum, same unit */
	int strength_bits;      /* the target reached */
	double entropy_bits;
} cs_plan;

/* Resolve a request under a preset. CS_E_INVALID_ARG: type not allowed or
 * no wordlist; CS_E_UNPROCESSABLE: below a minimum, or the strength cannot
 * be reached within the limits (CS_PASSPHRASE_WORDS_MAX words,
 * CS_CREDENTIAL_MAX - 1 characters). `why` says which rule, citing the
 * preset's standard. A plan returned with CS_OK always has entropy_bits >=
 * strength_bits.
 *
 * The outcome for a string type (plan, or error and reason) is cached in
 * the preset, keyed by (type, length, strength_bits, exclude_ambiguous):
 * CS_PLAN_CACHE_MAX keys per preset, the oldest replaced when full;
 * thread-safe (a read-write lock, held only to copy). cs_presets_check
 * fills it with every preset's defaults at start-up. Passphrase plans are
 * not cached: they depend on the wordlist, and cost no more than a lookup. */
#define CS_PLAN_CACHE_MAX 32
cs_err cs_preset_plan(const cs_preset *preset, const cs_wordlist *wordlist,
		      const cs_plan_request *request, cs_plan *plan, char *why, size_t why_len);

/* Cache figures of one preset, for tests and benchmarks. */
void cs_preset_plan_cache_stats(const cs_preset *preset, unsigned long *hits, unsigned long *misses,
				size_t *entries);

/* The longest audit retention (days) a preset of the set needs, 0 when none
 * sets one; *which (may be NULL) is the first preset that needs it. The
 * daemon warns when audit.retention_days is shorter. */
int cs_presets_audit_retention(const cs_preset_set *set, const cs_preset **which);

/* Start-up check: every type each preset allows can be planned with the
 * preset's defaults (e.g. a passphrase preset whose strength a small
 * wordlist cannot reach within CS_PASSPHRASE_WORDS_MAX words).
 * CS_E_CONFIG with the preset, the type and the reason in why. */
cs_err cs_presets_check(const cs_preset_set *set, const cs_wordlist *wordlist, char *why,
			size_t why_len);

#endif
