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

/* names: preset names; unknown ones give CS_E_NOT_FOUND with `why`. */
cs_err cs_policy_build(const cs_preset_set *set, const cs_wordlist *wordlist,
		       const char *const *names, size_t count, json_t **out, char *why,
		       size_t why_len);
/* The policy as Markdown (malloc'd). */
char *cs_policy_markdown(const json_t *policy);

#endif
