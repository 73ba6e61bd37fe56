/* audit_chain: see audit_chain.h. */
#include "audit_chain.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

static void put_field(EVP_MD_CTX *c, const char *v)
{
	uint8_t len[4] = {0xff, 0xff, 0xff, 0xff};
	if (v == NULL) {
		EVP_DigestUpdate(c, len, 4);
		return;
	}
	size_t n = strlen(v);
	len[0] = (uint8_t)(n >> 24);
	len[1] = (uint8_t)(n >> 16);
	len[2] = (uint8_t)(n >> 8);
	len[3] = (uint8_t)n;
	EVP_DigestUpdate(c, len, 4);
	EVP_DigestUpdate(c, v, n);
}

void cs_audit_hash(EVP_MD_CTX *scratch, const uint8_t prev[32], const cs_audit_entry *e,
		   uint8_t out[32])
{
	char seq[24];
	EVP_MD_CTX *c = scratch != NULL ? scratch : EVP_MD_CTX_new();
	snprintf(seq, sizeof(seq), "%lld", (long long)e->seq);
	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	EVP_DigestUpdate(c, prev, 32);
	put_field(c, seq);
	put_field(c, e->ts);
	put_field(c, e->node);
	put_field(c, e->actor);
	put_field(c, e->actor_cert_sha256);
	put_field(c, e->role);
	put_field(c, e->action);
	put_field(c, e->object);
	put_field(c, e->project);
	put_field(c, e->environment);
	put_field(c, e->outcome);
	put_field(c, e->error_code);
	put_field(c, e->request_id);
	unsigned int n = 0;
	EVP_DigestFinal_ex(c, out, &n);
	if (scratch == NULL)
		EVP_MD_CTX_free(c);
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
