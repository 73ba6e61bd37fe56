/* audit_chain: see audit_chain.h. */
#include "audit_chain.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

/* One length-prefixed field; returns 1 on success. */
static int put_field(EVP_MD_CTX *c, const char *v)
{
	uint8_t len[4] = {0xff, 0xff, 0xff, 0xff};
	if (v == NULL)
		return EVP_DigestUpdate(c, len, 4);
	size_t n = strlen(v);
	len[0] = (uint8_t)(n >> 24);
	len[1] = (uint8_t)(n >> 16);
	len[2] = (uint8_t)(n >> 8);
	len[3] = (uint8_t)n;
	return EVP_DigestUpdate(c, len, 4) && EVP_DigestUpdate(c, v, n);
}

cs_err cs_audit_hash(EVP_MD_CTX *scratch, const uint8_t prev[32], const cs_audit_entry *e,
		     uint8_t out[32])
{
	char seq[24];
	EVP_MD_CTX *c = scratch != NULL ? scratch : EVP_MD_CTX_new();
	if (c == NULL)
		return CS_E_NOMEM;
	snprintf(seq, sizeof(seq), "%lld", (long long)e->seq);
	const char *const fields[] = {seq, e->ts, e->node, e->actor, e->actor_cert_sha256, e->role,
				      e->action, e->object, e->project, e->environment, e->outcome,
				      e->error_code, e->request_id};
	int ok = EVP_DigestInit_ex(c, EVP_sha256(), NULL) && EVP_DigestUpdate(c, prev, 32);
	for (size_t i = 0; ok && i < sizeof(fields) / sizeof(fields[0]); i++)
		ok = put_field(c, fields[i]);
	unsigned int n = 0;
	ok = ok && EVP_DigestFinal_ex(c, out, &n) && n == 32;
	if (scratch == NULL)
		EVP_MD_CTX_free(c);
	return ok ? CS_OK : CS_E_CRYPTO;
}

void cs_audit_now(char out[32])
{
	struct timespec now;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	char date[24];
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, 32, "%.19s.%03dZ", date, (int)(now.tv_nsec / 1000000) % 1000);
}

void cs_audit_sanitize(char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			*s = '?';
}
