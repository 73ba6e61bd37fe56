/*
 * preset: compliance presets are data (conf/presets.conf, libconfig), loaded
 * and validated at start-up into an immutable set.
 *
 * A preset names the standards it satisfies and sets the credential types
 * allowed, the password character set and required classes, the minimum and
 * default length, and the minimum security strength (never below 112 bits,
 * SP 800-131A). Lengths actually enforced are raised to whatever reaches the
 * strength with the character set (cs_preset_min_length). Each preset has a
 * SHA-256 over its canonical JSON definition, recorded in certificates.
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
} cs_cred_type;

typedef struct {
	char *name;
	char *title;
	char **standards; /* requirement ids with their source, e.g. "PCI DSS v4.0 8.3.6" */
	size_t nstandards;
	unsigned types;   /* cs_cred_type bits */
	char *charset_name;
	char charset[CS_CHARSET_MAX + 1];
	unsigned classes; /* CS_CLASS_* bits required in passwords */
	int min_length, default_length;
	int strength_bits;
	char *rotation;
	char *basis; /* where the numbers come from */
	char sha256[65];  /* of the canonical JSON definition */
	json_t *definition; /* canonical definition (for /api/presets) */
} cs_preset;

typedef struct {
	int version; /* of the presets file */
	cs_preset *items;
	size_t count;
} cs_preset_set;

cs_err cs_presets_load(const char *path, cs_preset_set **out, cs_config_diag *diag)
	__attribute__((warn_unused_result));
void cs_presets_free(cs_preset_set *set);
const cs_preset *cs_preset_find(const cs_preset_set *set, const char *name);

/* Type names: "password", "api-key", "hex", "base64url". */
const char *cs_type_name(cs_cred_type type);
int cs_type_parse(const char *name); /* -1 if unknown */
/* The character set of a type under a preset (passwords: the preset's). */
const char *cs_type_charset(const cs_preset *preset, cs_cred_type type);
/* Smallest length allowed for a type under a preset and a strength target:
 * the preset's minimum (passwords) raised until the exact entropy reaches
 * max(strength_bits, preset strength, 112). */
int cs_preset_min_length(const cs_preset *preset, cs_cred_type type, int strength_bits);

#endif
