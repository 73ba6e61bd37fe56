/* ec_util: see ec_util.h. */
#include "ec_util.h"

#include <string.h>

#include <openssl/asn1.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

/* OBJECT IDENTIFIER 1.2.840.10045.3.1.7 (prime256v1) */
const uint8_t cs_p256_ec_params[10] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};

/* A curve named in a PrintableString: the names OpenSSL knows for a
 * group ("prime256v1", "P-256"), and the SEC 2 name it does not. */
static int named_p256(const ASN1_STRING *name)
{
	char text[64];
	int n = ASN1_STRING_length(name);
	if (n <= 0 || (size_t)n >= sizeof(text) || memchr(ASN1_STRING_get0_data(name), '\0', (size_t)n))
		return 0;
	memcpy(text, ASN1_STRING_get0_data(name), (size_t)n);
	text[n] = '\0';
	if (strcmp(text, "secp256r1") == 0)
		return 1;
	OSSL_PARAM params[2] = {OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, text, 0),
				OSSL_PARAM_construct_end()};
	EC_GROUP *g = EC_GROUP_new_from_params(params, NULL, NULL);
	int p256 = g != NULL && EC_GROUP_get_curve_name(g) == NID_X9_62_prime256v1;
	EC_GROUP_free(g);
	return p256;
}

cs_err cs_ec_params_is_p256(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	int p256 = 0;
	if (der == NULL || len == 0 || len > 4096)
		return CS_E_KEY_TYPE;
	ERR_set_mark(); /* a value that does not parse is an answer, not an error */
	if (der[0] == V_ASN1_PRINTABLESTRING) {
		ASN1_PRINTABLESTRING *name = d2i_ASN1_PRINTABLESTRING(NULL, &p, (long)len);
		p256 = name != NULL && p == der + len && named_p256(name);
		ASN1_PRINTABLESTRING_free(name);
	} else {
		/* the OID or explicit parameters (ECPKParameters) */
		EC_GROUP *g = d2i_ECPKParameters(NULL, &p, (long)len);
		EC_GROUP *want = g != NULL ? EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1) : NULL;
		p256 = g != NULL && want != NULL && p == der + len &&
		       (EC_GROUP_get_curve_name(g) == NID_X9_62_prime256v1 || EC_GROUP_cmp(g, want, NULL) == 0);
		EC_GROUP_free(want);
		EC_GROUP_free(g);
	}
	ERR_pop_to_mark();
	return p256 ? CS_OK : CS_E_KEY_TYPE;
}

static cs_err pkey_from_point(const uint8_t *point, size_t len, EVP_PKEY **out)
{
	cs_err r = CS_E_TOKEN_DATA;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL, *check = NULL;
	EVP_PKEY *pkey = NULL;

	if (len != 65 || point[0] != 0x04)
		return CS_E_TOKEN_DATA; /* only uncompressed P-256 points */
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, len) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL) {
		r = CS_E_CRYPTO;
		goto out;
	}
	/* never our own provider's keymgmt: its keys live in the token */
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", CS_NOT_TOKEN_PROVIDER)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		goto out;
	/* the point must lie on the curve */
	if ((check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, CS_NOT_TOKEN_PROVIDER)) == NULL ||
	    EVP_PKEY_public_check(check) <= 0)
		goto out;
	*out = pkey;
	pkey = NULL;
	r = CS_OK;
out:
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(check);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	return r;
}

cs_err cs_ec_point_to_pkey(const uint8_t *attr, size_t len, EVP_PKEY **out)
{
	*out = NULL;
	if (attr == NULL || len == 0 || len > 1024)
		return CS_E_TOKEN_DATA;
	if (len == 65 && attr[0] == 0x04)
		return pkey_from_point(attr, len, out); /* bare point */

	const unsigned char *p = attr;
	ASN1_OCTET_STRING *os = d2i_ASN1_OCTET_STRING(NULL, &p, (long)len);
	if (os == NULL)
		return CS_E_TOKEN_DATA;
	cs_err r = CS_E_TOKEN_DATA;
	if (p == attr + len) /* no trailing bytes */
		r = pkey_from_point(ASN1_STRING_get0_data(os), (size_t)ASN1_STRING_length(os), out);
	ASN1_OCTET_STRING_free(os);
	return r;
}

cs_err cs_spki_to_pkey(const uint8_t *der, size_t len, EVP_PKEY **out)
{
	*out = NULL;
	if (der == NULL || len == 0 || len > 4096)
		return CS_E_TOKEN_DATA;
	const unsigned char *p = der;
	cs_err r = CS_E_TOKEN_DATA;
	uint8_t point[133];
	size_t point_len = 0;
	char group[32] = "";
	ERR_set_mark(); /* a value that does not parse is an answer, not an error */
	EVP_PKEY *spki = d2i_PUBKEY_ex(NULL, &p, (long)len, NULL, CS_NOT_TOKEN_PROVIDER);
	if (spki != NULL && p == der + len) {
		r = CS_E_KEY_TYPE;
		/* the point, rebuilt and checked on the curve as CKA_EC_POINT is */
		if (EVP_PKEY_is_a(spki, "EC") &&
		    EVP_PKEY_get_group_name(spki, group, sizeof(group), NULL) &&
		    OBJ_txt2nid(group) == NID_X9_62_prime256v1 &&
		    EVP_PKEY_get_octet_string_param(spki, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
						    sizeof(point), &point_len))
			r = pkey_from_point(point, point_len, out);
	}
	EVP_PKEY_free(spki);
	ERR_pop_to_mark();
	return r;
}

cs_err cs_ecdsa_der_to_raw(const uint8_t *der, size_t der_len, uint8_t raw[64])
{
	const unsigned char *p = der;
	if (der_len == 0 || der_len > 72)
		return CS_E_TOKEN_DATA;
	ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
	if (sig == NULL)
		return CS_E_TOKEN_DATA;
	cs_err r = CS_E_TOKEN_DATA;
	const BIGNUM *br = NULL, *bs = NULL;
	ECDSA_SIG_get0(sig, &br, &bs);
	if (p == der + der_len && BN_num_bytes(br) <= 32 && BN_num_bytes(bs) <= 32 &&
	    BN_bn2binpad(br, raw, 32) == 32 && BN_bn2binpad(bs, raw + 32, 32) == 32)
		r = CS_OK;
	ECDSA_SIG_free(sig);
	return r;
}

cs_err cs_ecdsa_sig_to_raw(const uint8_t *sig, size_t len, uint8_t raw[64])
{
	if (len == 64) {
		memcpy(raw, sig, 64);
		return CS_OK;
	}
	if (len > 2 && sig[0] == 0x30) /* DER SEQUENCE from some HSMs */
		return cs_ecdsa_der_to_raw(sig, len, raw);
	return CS_E_TOKEN_DATA;
}

cs_err cs_ecdsa_raw_to_der(const uint8_t raw[64], uint8_t der[72], size_t *der_len)
{
	cs_err r = CS_E_CRYPTO;
	ECDSA_SIG *sig = ECDSA_SIG_new();
	BIGNUM *br = BN_bin2bn(raw, 32, NULL);
	BIGNUM *bs = BN_bin2bn(raw + 32, 32, NULL);
	unsigned char *p = der;
	*der_len = 0;
	if (sig == NULL || br == NULL || bs == NULL || BN_is_zero(br) || BN_is_zero(bs))
		goto out;
	(void)ECDSA_SIG_set0(sig, br, bs); /* fails only given a NULL r or s: checked above */
	br = bs = NULL;                    /* owned by sig */
	/* r and s of 32 bytes take at most 72 bytes (the guard of der[72]);
	 * the encoder fails only when out of memory */
	int n = i2d_ECDSA_SIG(sig, NULL);
	if (n <= 0 || n > 72 || i2d_ECDSA_SIG(sig, &p) != n)
		goto out;
	*der_len = (size_t)n;
	r = CS_OK;
out:
	BN_free(br);
	BN_free(bs);
	ECDSA_SIG_free(sig);
	return r;
}
