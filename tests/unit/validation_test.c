/*
 * validation_test: the token's FIPS 140 validation is checked, not typed
 * (app.h: cs_app_validation_claim, cs_validation_meets; preset.h:
 * requires_validation).
 *
 * - program "none" (and no validation group at all) is never validated and
 *   claims no certificate, module or level (null);
 * - a program counts only when every configured version equals what the
 *   token reports; each check is recorded (configured, token, match) and a
 *   mismatch says which version differs;
 * - FIPS 140-3 meets a FIPS 140-2 requirement, not the reverse; nothing
 *   meets a requirement on a token that is not validated;
 * - the built-in fips-140-3 preset requires FIPS 140-3, in its canonical
 *   definition too; other presets require nothing; an unknown program in
 *   requires_validation is refused with FILE:LINE: setting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "test_support.h"

/* What SoftHSM2 2.6.1 reports. */
static cs_token_info softhsm(void)
{
	cs_token_info info;
	memset(&info, 0, sizeof(info));
	info.hw_major = 2;
	info.hw_minor = 6;
	info.fw_major = 2;
	info.fw_minor = 6;
	info.module_major = 2;
	info.module_minor = 6;
	return info;
}

static cs_config fips(const char *hw, const char *fw, const char *lib)
{
	cs_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.pkcs11.validation.program = (char *)"FIPS 140-3";
	cfg.pkcs11.validation.certificate = (char *)"4745";
	cfg.pkcs11.validation.module = (char *)"Test HSM";
	cfg.pkcs11.validation.level = 3;
	cfg.pkcs11.validation.hardware_version = (char *)hw;
	cfg.pkcs11.validation.firmware_version = (char *)fw;
	cfg.pkcs11.validation.library_version = (char *)lib;
	return cfg;
}

static json_t *claim_of(const cs_config *cfg, const cs_token_info *info, char *problem, size_t cap)
{
	json_t *claim = NULL;
	assert_int_equal(cs_app_validation_claim(cfg, info, "2026-11-30", &claim, problem, cap), CS_OK);
	assert_non_null(claim);
	return claim;
}

static void test_none_is_not_validated(void **state)
{
	(void)state;
	cs_token_info info = softhsm();
	char problem[320];
	for (int absent = 0; absent < 2; absent++) {
		cs_config cfg;
		memset(&cfg, 0, sizeof(cfg));
		/* absent: no group at all (the loader's default is "none" too) */
		cfg.pkcs11.validation.program = absent ? NULL : (char *)"none";
		json_t *c = claim_of(&cfg, &info, problem, sizeof(problem));
		assert_true(json_is_false(json_object_get(c, "validated")));
		assert_string_equal(json_string_value(json_object_get(c, "program")), "none");
		assert_true(json_is_null(json_object_get(c, "certificate")));
		assert_true(json_is_null(json_object_get(c, "module")));
		assert_true(json_is_null(json_object_get(c, "level")));
		assert_int_equal(json_object_size(json_object_get(c, "checked_versions")), 0);
		assert_string_equal(problem, "");
		json_decref(c);
	}
}

static void test_matching_versions_validate(void **state)
{
	(void)state;
	cs_token_info info = softhsm();
	cs_config cfg = fips("2.6", "2.6", NULL);
	char problem[320];
	json_t *c = claim_of(&cfg, &info, problem, sizeof(problem));
	assert_true(json_is_true(json_object_get(c, "validated")));
	assert_string_equal(json_string_value(json_object_get(c, "program")), "FIPS 140-3");
	assert_string_equal(json_string_value(json_object_get(c, "certificate")), "4745");
	assert_string_equal(json_string_value(json_object_get(c, "module")), "Test HSM");
	assert_int_equal(json_integer_value(json_object_get(c, "level")), 3);
	json_t *checked = json_object_get(c, "checked_versions");
	assert_int_equal(json_object_size(checked), 2); /* library_version not configured */
	json_t *hw = json_object_get(checked, "hardware_version");
	assert_string_equal(json_string_value(json_object_get(hw, "configured")), "2.6");
	assert_string_equal(json_string_value(json_object_get(hw, "token")), "2.6");
	assert_true(json_is_true(json_object_get(hw, "match")));
	assert_non_null(json_object_get(checked, "firmware_version"));
	assert_string_equal(problem, "");
	json_decref(c);

	cfg = fips("2.6", "2.6", "2.6");
	c = claim_of(&cfg, &info, problem, sizeof(problem));
	assert_true(json_is_true(json_object_get(c, "validated")));
	assert_int_equal(json_object_size(json_object_get(c, "checked_versions")), 3);
	json_decref(c);
}

static void test_mismatch_is_not_validated(void **state)
{
	(void)state;
	cs_token_info info = softhsm();
	char problem[320];
	struct {
		const char *hw, *fw, *lib, *said;
	} cases[] = {
		{"2.7", "2.6", NULL, "the token reports hardware_version 2.6, validated at 2.7"},
		{"2.6", "3.0", NULL, "the token reports firmware_version 2.6, validated at 3.0"},
		{"2.6", "2.6", "2.5", "the token reports library_version 2.6, validated at 2.5"},
		/* 2.60 is not 2.6: CK_VERSION minor 60 */
		{"2.60", "2.6", NULL, "hardware_version 2.6, validated at 2.60"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cs_config cfg = fips(cases[i].hw, cases[i].fw, cases[i].lib);
		json_t *c = claim_of(&cfg, &info, problem, sizeof(problem));
		assert_true(json_is_false(json_object_get(c, "validated")));
		/* what was configured stays visible, with the failed check */
		assert_string_equal(json_string_value(json_object_get(c, "program")), "FIPS 140-3");
		assert_non_null(strstr(problem, cases[i].said));
		int mismatches = 0;
		const char *key;
		json_t *v;
		json_object_foreach(json_object_get(c, "checked_versions"), key, v)
			mismatches += json_is_false(json_object_get(v, "match"));
		assert_int_equal(mismatches, 1);
		json_decref(c);
	}
	/* two at once: both named */
	cs_config cfg = fips("1.0", "1.0", NULL);
	json_t *c = claim_of(&cfg, &info, problem, sizeof(problem));
	assert_non_null(strstr(problem, "hardware_version 2.6, validated at 1.0; "));
	assert_non_null(strstr(problem, "firmware_version 2.6, validated at 1.0"));
	json_decref(c);
}

/* FIPS 140-2 validations are historical after their sunset (2026-09-21):
 * matching versions no longer make an active validation */
static void test_fips_140_2_is_historical_after_its_sunset(void **state)
{
	(void)state;
	cs_token_info info = softhsm();
	cs_config cfg = fips("2.6", "2.6", NULL);
	cfg.pkcs11.validation.program = (char *)"FIPS 140-2";
	char problem[320];
	static const struct {
		const char *today;
		int validated;
	} days[] = {{"2026-09-01", 1}, {"2026-09-21", 1}, {"2026-09-22", 0}, {"2026-11-30", 0}};
	for (size_t i = 0; i < sizeof(days) / sizeof(days[0]); i++) {
		json_t *claim = NULL;
		assert_int_equal(cs_app_validation_claim(&cfg, &info, days[i].today, &claim, problem, sizeof(problem)),
				 CS_OK);
		assert_int_equal(json_is_true(json_object_get(claim, "validated")), days[i].validated);
		if (days[i].validated)
			assert_string_equal(problem, "");
		else
			assert_non_null(strstr(problem, "historical"));
		json_decref(claim);
	}
	/* FIPS 140-3 has no such date */
	cfg.pkcs11.validation.program = (char *)"FIPS 140-3";
	json_t *claim = NULL;
	assert_int_equal(cs_app_validation_claim(&cfg, &info, "2030-01-01", &claim, problem, sizeof(problem)), CS_OK);
	assert_true(json_is_true(json_object_get(claim, "validated")));
	json_decref(claim);
}

static void test_meets(void **state)
{
	(void)state;
	assert_true(cs_validation_meets(NULL, NULL));
	assert_true(cs_validation_meets("FIPS 140-2", NULL));
	assert_false(cs_validation_meets(NULL, "FIPS 140-3"));
	assert_false(cs_validation_meets(NULL, "FIPS 140-2"));
	assert_true(cs_validation_meets("FIPS 140-3", "FIPS 140-3"));
	assert_true(cs_validation_meets("FIPS 140-3", "FIPS 140-2"));
	assert_true(cs_validation_meets("FIPS 140-2", "FIPS 140-2"));
	assert_false(cs_validation_meets("FIPS 140-2", "FIPS 140-3"));
}

static void test_presets_require(void **state)
{
	(void)state;
	cs_preset_set *set = ts_presets_load(CREDSIGN_SOURCE_DIR "/conf/presets.conf");
	assert_non_null(set);
	const cs_preset *p = cs_preset_find(set, "fips-140-3");
	assert_non_null(p);
	assert_string_equal(p->requires_validation, "FIPS 140-3");
	/* part of what preset_sha256 covers */
	assert_string_equal(json_string_value(json_object_get(p->definition, "requires_validation")),
			    "FIPS 140-3");
	for (size_t i = 0; i < set->count; i++)
		if (strcmp(set->items[i].name, "fips-140-3") != 0) {
			assert_null(set->items[i].requires_validation);
			assert_true(json_is_null(json_object_get(set->items[i].definition, "requires_validation")));
		}
	cs_presets_free(set);

	/* an operator preset asking for an unknown program is refused */
	const char *base = getenv("CREDSIGN_TEST_TMP");
	char path[512];
	snprintf(path, sizeof(path), "%s/validation-presets-%d.conf", base != NULL ? base : "/tmp",
		 (int)getpid());
	ts_write_file(path,
		      "version = 1;\n"
		      "presets = {\n"
		      "  p = { title = \"t\"; standards = [ \"s\" ]; types = [ \"hex\" ]; charset = \"alnum\";\n"
		      "    classes = [ ]; min_length = 32; default_length = 32; strength_bits = 128;\n"
		      "    rotation = \"r\";\n"
		      "    requires_validation = \"FIPS 140\"; };\n"
		      "};\n",
		      0600);
	cs_config_diag diag;
	assert_int_equal(cs_presets_load(path, NULL, &set, &diag), CS_E_CONFIG);
	int found = 0;
	for (size_t i = 0; i < diag.count; i++)
		found |= strstr(diag.messages[i], ":6: setting 'presets.p.requires_validation': must be "
						  "\"FIPS 140-3\" or \"FIPS 140-2\"") != NULL;
	if (!found)
		for (size_t i = 0; i < diag.count; i++)
			fprintf(stderr, "%s\n", diag.messages[i]);
	assert_true(found);
	cs_config_diag_free(&diag);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_none_is_not_validated),
		cmocka_unit_test(test_matching_versions_validate),
		cmocka_unit_test(test_mismatch_is_not_validated),
		cmocka_unit_test(test_fips_140_2_is_historical_after_its_sunset),
		cmocka_unit_test(test_meets),
		cmocka_unit_test(test_presets_require),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
