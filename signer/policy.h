/*
 * policy: a written credential policy for a set of standards (presets),
 * taking the strictest value of each rule across them: minimum length per
 * credential kind (human accounts, service accounts, production databases,
 * API keys), character classes, run limits, security strength, generation
 * method and entropy source, storage, rotation (the shortest maximum
 * lifetime, and each framework's own guidance), off-boarding and evidence.
 * Every rule cites the requirement it comes from.
 *
 * cs_policy_build returns {"standards":[...],"rules":[{"id","title","rule",
 * "value"?,"cites":[...],"from":[...]}]}; cs_policy_markdown renders it.
 * Pure functions of the loaded presets; thread-safe.
 */
#ifndef CS_POLICY_H
#define CS_POLICY_H

#include <jansson.h>

#include "preset.h"

#define CS_POLICY_STANDARDS_MAX 32

/* presets: 1 to CS_POLICY_STANDARDS_MAX distinct presets of `set`
 * (CS_E_INVALID_ARG with `why` otherwise). The client's names are resolved
 * by the caller (api.c), so no client text reaches this module. */
cs_err cs_policy_build(const cs_preset_set *set, const cs_wordlist *wordlist,
		       const cs_preset *const *presets, size_t count, json_t **out, char *why,
		       size_t why_len);
/* The policy as Markdown (malloc'd). */
char *cs_policy_markdown(const json_t *policy);

#endif
