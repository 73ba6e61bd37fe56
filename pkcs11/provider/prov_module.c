/* prov_module: the entry point of credsign-pkcs11.so for OpenSSL's loader. */
#include "provider.h"

__attribute__((visibility("default"))) OSSL_provider_init_fn OSSL_provider_init;

int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
		       const OSSL_DISPATCH **out, void **provctx)
{
	return cs_provider_init(handle, in, out, provctx);
}
