/* test_support: small helpers shared by the cmocka tests. */
#ifndef CS_TEST_SUPPORT_H
#define CS_TEST_SUPPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/evp.h>

#include "preset.h"

/* Write text to path with the given mode; fails the test on error. */
void ts_write_file(const char *path, const char *text, mode_t mode);
/* The SoftHSM2 token fixture's module and directory (CREDSIGN_TEST_MODULE,
 * CREDSIGN_TEST_TOKEN_DIR) and its PIN file's path into pin[pin_len]; 0,
 * or -1 (said on stderr) when the environment lacks them. */
int ts_token_fixture(const char **module, const char **dir, char *pin, size_t pin_len);
/* Verify a DER ECDSA signature over a SHA-256 digest with OpenSSL alone. */
int ts_verify_der(EVP_PKEY *pub, const uint8_t digest[32], const uint8_t *der, size_t der_len);

/* Load a presets file (cs_presets_load), printing its diagnostics to
 * stderr; NULL when it does not load. */
cs_preset_set *ts_presets_load(const char *path);

#endif
