/* jose_fuzz: JWS compact parsing and verification, base64url decoding, and
 * the EC point / ECDSA signature decoders, on arbitrary input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>

#include "ec_util.h"
#include "jose.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static EVP_PKEY *key;
	if (key == NULL)
		key = EVP_EC_gen("P-256");
	char *text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	json_t *h = NULL, *p = NULL;
	if (cs_jws_peek_header(text, &h) == CS_OK)
		json_decref(h);
	if (cs_jws_es256_verify(text, key, &h, &p) == CS_OK) {
		json_decref(h);
		json_decref(p);
	}
	uint8_t *out = NULL;
	size_t n = 0;
	if (cs_b64url_decode(text, &out, &n) == CS_OK)
		free(out);
	EVP_PKEY *pk = NULL;
	if (cs_ec_point_to_pkey(data, size, &pk) == CS_OK)
		EVP_PKEY_free(pk);
	uint8_t raw[64];
	(void)cs_ecdsa_sig_to_raw(data, size, raw);
	free(text);
	return 0;
}
