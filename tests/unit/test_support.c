/* test_support: see test_support.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>


void ts_write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

int ts_verify_der(EVP_PKEY *pub, const uint8_t digest[32], const uint8_t *der, size_t der_len)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pub, NULL);
	assert_non_null(ctx);
	assert_int_equal(EVP_PKEY_verify_init(ctx), 1);
	int ok = EVP_PKEY_verify(ctx, der, der_len, digest, 32);
	EVP_PKEY_CTX_free(ctx);
	return ok == 1;
}

cs_preset_set *ts_presets_load(const char *path)
{
	cs_preset_set *set = NULL;
	cs_config_diag diag;
	cs_err r = cs_presets_load(path, NULL, &set, &diag);
	for (size_t i = 0; i < diag.count; i++)
		fprintf(stderr, "%s\n", diag.messages[i]);
	cs_config_diag_free(&diag);
	return r == CS_OK ? set : NULL;
}

int ts_token_fixture(const char **module, const char **dir, char *pin, size_t pin_len)
{
	*module = getenv("CREDSIGN_TEST_MODULE");
	*dir = getenv("CREDSIGN_TEST_TOKEN_DIR");
	if (*module == NULL || *dir == NULL) {
		fprintf(stderr, "CREDSIGN_TEST_MODULE and CREDSIGN_TEST_TOKEN_DIR must be set\n");
		return -1;
	}
	snprintf(pin, pin_len, "%s/user.pin", *dir);
	return 0;
}
