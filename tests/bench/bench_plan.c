/*
 * bench_plan: what the per-preset plan cache saves on each generate.
 *
 *   bench_plan PRESETS_FILE [ROUNDS]
 *
 * For the default plan of every string type of every preset (what a
 * generate request without options asks for), times cs_preset_plan with
 * the cache (as the daemon runs it) and without it (the preset copied with
 * no cache: the exact-entropy dynamic programme runs each time), and prints
 * microseconds per plan. Prints figures, asserts nothing about speed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "preset.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Seconds per plan of `rounds` default plans over every preset and type. */
static double time_plans(const cs_preset_set *set, int cached, int rounds, int *plans)
{
	double start = now_s();
	*plans = 0;
	for (int round = 0; round < rounds; round++)
		for (size_t i = 0; i < set->count; i++) {
			cs_preset p = set->items[i];
			if (!cached)
				p.plan_cache = NULL;
			for (int t = 1; t < CS_TYPE_PASSPHRASE; t <<= 1) {
				if (!(p.types & (unsigned)t))
					continue;
				cs_plan_request q = {.type = t};
				cs_plan plan;
				char why[300];
				if (cs_preset_plan(&p, NULL, &q, &plan, why, sizeof(why)) != CS_OK) {
					fprintf(stderr, "bench_plan: %s %s: %s\n", p.name, cs_type_name((cs_cred_type)t),
						why);
					exit(1);
				}
				(*plans)++;
			}
		}
	return (now_s() - start) / *plans;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_plan PRESETS_FILE [ROUNDS]\n");
		return 2;
	}
	int rounds = argc > 2 ? atoi(argv[2]) : 200;
	if (rounds < 1)
		rounds = 1;
	cs_preset_set *set = NULL;
	cs_config_diag diag;
	cs_err r = cs_presets_load(argv[1], NULL, &set, &diag);
	for (size_t i = 0; i < diag.count; i++)
		fprintf(stderr, "%s\n", diag.messages[i]);
	cs_config_diag_free(&diag);
	if (r != CS_OK)
		return 1;
	int plans = 0;
	(void)time_plans(set, 1, 1, &plans); /* fills the cache, as start-up does */
	double uncached = time_plans(set, 0, rounds, &plans);
	double cached = time_plans(set, 1, rounds * 20, &plans);
	printf("default plans of %d preset/type pairs: planned afresh %.1f us, from the cache %.2f us "
	       "(%.0fx)\n",
	       plans / (rounds * 20), uncached * 1e6, cached * 1e6, uncached / cached);
	cs_presets_free(set);
	return 0;
}
