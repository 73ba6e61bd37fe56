/* test_token_ipc: the key process's frame codec (token_ipc.h): every request
 * and reply type round-trips to the same bytes; every malformed frame is
 * refused (CS_E_IPC, or CS_E_NOT_FOUND for an unknown request type); the
 * encoders refuse what the decoders would; an error reply's optional cause
 * (the failing PKCS#11 call) likewise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "token_ipc.h"

/* ---- helpers ----------------------------------------------------------- */

typedef struct {
	uint8_t b[CS_IPC_FRAME_MAX + 16];
	size_t len;
} frame;

/* A frame by hand: header with `declared` as the payload length (SIZE_MAX:
 * the true one), then the payload. */
static frame raw_frame(unsigned type, unsigned flags, const uint8_t *payload, size_t plen,
		       size_t declared)
{
	frame f;
	memset(&f, 0, sizeof(f));
	assert_true(plen + CS_IPC_HEADER_LEN <= sizeof(f.b));
	if (declared == SIZE_MAX)
		declared = plen;
	f.b[0] = (uint8_t)(type >> 8);
	f.b[1] = (uint8_t)type;
	f.b[2] = (uint8_t)(flags >> 8);
	f.b[3] = (uint8_t)flags;
	f.b[4] = (uint8_t)(declared >> 24);
	f.b[5] = (uint8_t)(declared >> 16);
	f.b[6] = (uint8_t)(declared >> 8);
	f.b[7] = (uint8_t)declared;
	if (plen > 0)
		memcpy(f.b + CS_IPC_HEADER_LEN, payload, plen);
	f.len = CS_IPC_HEADER_LEN + plen;
	return f;
}

static frame enc_req(const cs_ipc_request *q)
{
	frame f;
	memset(&f, 0, sizeof(f));
	assert_int_equal(cs_ipc_encode_request(q, f.b, sizeof(f.b), &f.len), CS_OK);
	assert_true(f.len >= CS_IPC_HEADER_LEN && f.len <= CS_IPC_FRAME_MAX);
	return f;
}

static frame enc_rep(const cs_ipc_reply *y)
{
	frame f;
	memset(&f, 0, sizeof(f));
	assert_int_equal(cs_ipc_encode_reply(y, f.b, sizeof(f.b), &f.len), CS_OK);
	assert_true(f.len >= CS_IPC_HEADER_LEN && f.len <= CS_IPC_FRAME_MAX);
	return f;
}

static cs_err dec_req(const frame *f)
{
	cs_ipc_request q;
	return cs_ipc_decode_request(f->b, f->len, &q);
}

static cs_err dec_rep(const frame *f, cs_ipc_type expect, uint32_t n)
{
	cs_ipc_reply y;
	return cs_ipc_decode_reply(f->b, f->len, expect, n, &y);
}

/* Decode a request frame, check it encodes to the same bytes, and that no
 * proper prefix of its payload (with the header's length adjusted) decodes. */
static cs_ipc_request round_trip_req(const cs_ipc_request *in)
{
	frame f = enc_req(in);
	cs_ipc_request q;
	assert_int_equal(cs_ipc_decode_request(f.b, f.len, &q), CS_OK);
	assert_int_equal(q.type, in->type);
	frame g = enc_req(&q);
	assert_int_equal(g.len, f.len);
	assert_memory_equal(g.b, f.b, f.len);
	for (size_t cut = CS_IPC_HEADER_LEN; cut < f.len; cut++) {
		frame t = raw_frame(in->type, 0, f.b + CS_IPC_HEADER_LEN, cut - CS_IPC_HEADER_LEN,
				    SIZE_MAX);
		assert_int_equal(dec_req(&t), CS_E_IPC);
	}
	return q;
}

static cs_ipc_reply round_trip_rep(const cs_ipc_reply *in, uint32_t n, frame *keep)
{
	frame f = enc_rep(in);
	cs_ipc_reply y;
	assert_int_equal(cs_ipc_decode_reply(f.b, f.len, in->type, n, &y), CS_OK);
	assert_int_equal(y.type, in->type);
	assert_int_equal(y.status, in->status);
	frame g = enc_rep(&y);
	assert_int_equal(g.len, f.len);
	assert_memory_equal(g.b, f.b, f.len);
	for (size_t cut = CS_IPC_HEADER_LEN; cut < f.len; cut++) {
		frame t = raw_frame(in->type | CS_IPC_REPLY, 0, f.b + CS_IPC_HEADER_LEN,
				    cut - CS_IPC_HEADER_LEN, SIZE_MAX);
		assert_int_equal(dec_rep(&t, in->type, n), CS_E_IPC);
	}
	*keep = f;
	/* y.data points into f, which is gone: the caller re-decodes if needed */
	y.data = NULL;
	return y;
}

static cs_key_ref key_ref(const char *label, const uint8_t *id, size_t id_len)
{
	cs_key_ref k;
	memset(&k, 0, sizeof(k));
	snprintf(k.label, sizeof(k.label), "%s", label);
	if (id_len > 0)
		memcpy(k.id, id, id_len);
	k.id_len = id_len;
	return k;
}

static cs_key_purpose purpose(cs_key_purpose_kind kind, const char *name)
{
	cs_key_purpose p;
	memset(&p, 0, sizeof(p));
	p.kind = kind;
	snprintf(p.profile, sizeof(p.profile), "%s", name);
	return p;
}

/* A SIGN request payload by hand: purpose kind/name, keyref "k" id {1},
 * then dlen digest bytes. */
static frame sign_frame(uint8_t kind, const char *name, size_t name_len, size_t dlen)
{
	uint8_t p[128];
	size_t n = 0;
	p[n++] = kind;
	p[n++] = (uint8_t)name_len;
	memcpy(p + n, name, name_len);
	n += name_len;
	p[n++] = 1;
	p[n++] = 'k';
	p[n++] = 1;
	p[n++] = 0x01;
	memset(p + n, 0xab, dlen);
	n += dlen;
	return raw_frame(CS_IPC_SIGN, 0, p, n, SIZE_MAX);
}

/* ---- round trips ------------------------------------------------------- */

static void test_requests_round_trip(void **state)
{
	(void)state;
	const uint8_t id[] = {0xde, 0xad, 0xbe, 0xef};
	cs_ipc_request in, q;

	memset(&in, 0, sizeof(in));
	in.type = CS_IPC_HELLO;
	in.version = CS_IPC_VERSION;
	q = round_trip_req(&in);
	assert_int_equal(q.version, CS_IPC_VERSION);

	memset(&in, 0, sizeof(in));
	in.type = CS_IPC_INFO;
	frame f = enc_req(&in);
	assert_int_equal(f.len, CS_IPC_HEADER_LEN);
	round_trip_req(&in);
	in.type = CS_IPC_MECHANISMS;
	round_trip_req(&in);

	for (uint32_t n = 1; n <= CS_IPC_RANDOM_MAX; n += CS_IPC_RANDOM_MAX - 1) {
		memset(&in, 0, sizeof(in));
		in.type = CS_IPC_RANDOM;
		in.n = n;
		q = round_trip_req(&in);
		assert_int_equal(q.n, n);
	}

	/* keyrefs: label and id, label only, id only, both at their bounds */
	char longest[CS_KEY_LABEL_MAX + 1];
	memset(longest, 'L', CS_KEY_LABEL_MAX);
	longest[CS_KEY_LABEL_MAX] = '\0';
	uint8_t id64[CS_KEY_ID_MAX];
	memset(id64, 0x5a, sizeof(id64));
	const cs_key_ref refs[] = {key_ref("cert-key", id, sizeof(id)), key_ref("only-label", NULL, 0),
				   key_ref("", id, 1), key_ref(longest, id64, sizeof(id64))};
	for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++) {
		for (cs_ipc_type t = CS_IPC_FIND_KEY; t <= CS_IPC_PUBLIC_KEY; t++) {
			memset(&in, 0, sizeof(in));
			in.type = t;
			in.key = refs[i];
			q = round_trip_req(&in);
			assert_string_equal(q.key.label, refs[i].label);
			assert_int_equal(q.key.id_len, refs[i].id_len);
			assert_memory_equal(q.key.id, refs[i].id, refs[i].id_len);
			assert_int_equal(q.key.purpose.kind, CS_KEY_PURPOSE_NONE);
		}
	}

	/* SIGN and BIND with each purpose; key.purpose mirrors purpose */
	const cs_key_purpose purposes[] = {
		purpose(CS_KEY_PURPOSE_CERTIFICATE, ""), purpose(CS_KEY_PURPOSE_TLS, ""),
		purpose(CS_KEY_PURPOSE_PROFILE, "rel"),
		purpose(CS_KEY_PURPOSE_PROFILE, "a.b_c-9"),
		purpose(CS_KEY_PURPOSE_PROFILE, "abcdefghijklmnopqrstuvwxyz012345")};
	for (size_t i = 0; i < sizeof(purposes) / sizeof(purposes[0]); i++) {
		memset(&in, 0, sizeof(in));
		in.type = CS_IPC_SIGN;
		in.purpose = purposes[i];
		in.key = refs[0];
		for (size_t k = 0; k < 32; k++)
			in.digest[k] = (uint8_t)(k * 7 + i);
		q = round_trip_req(&in);
		assert_int_equal(q.purpose.kind, purposes[i].kind);
		assert_string_equal(q.purpose.profile, purposes[i].profile);
		assert_int_equal(q.key.purpose.kind, purposes[i].kind);
		assert_string_equal(q.key.purpose.profile, purposes[i].profile);
		assert_string_equal(q.key.label, "cert-key");
		assert_memory_equal(q.digest, in.digest, 32);

		in.type = CS_IPC_BIND;
		memset(in.digest, 0, sizeof(in.digest));
		q = round_trip_req(&in);
		assert_int_equal(q.purpose.kind, purposes[i].kind);
		assert_string_equal(q.key.purpose.profile, purposes[i].profile);
		for (size_t k = 0; k < 32; k++)
			assert_int_equal(q.digest[k], 0);
	}
}

static void test_replies_round_trip(void **state)
{
	(void)state;
	cs_ipc_reply in, y;
	frame f;

	memset(&in, 0, sizeof(in));
	in.type = CS_IPC_HELLO;
	in.version = CS_IPC_VERSION;
	in.random_max = 256;
	y = round_trip_rep(&in, 0, &f);
	assert_int_equal(y.version, CS_IPC_VERSION);
	assert_int_equal(y.random_max, 256);

	memset(&in, 0, sizeof(in));
	in.type = CS_IPC_INFO;
	snprintf(in.info.label, sizeof(in.info.label), "%s", "cstest-label-of-32-bytes-exactly");
	snprintf(in.info.manufacturer, sizeof(in.info.manufacturer), "SoftHSM project");
	snprintf(in.info.model, sizeof(in.info.model), "SoftHSM v2");
	snprintf(in.info.serial, sizeof(in.info.serial), "0123456789abcdef");
	in.info.hw_major = 2;
	in.info.hw_minor = 6;
	in.info.fw_major = 255;
	in.info.fw_minor = 0;
	in.info.flags = 0x40d;
	snprintf(in.info.module_manufacturer, sizeof(in.info.module_manufacturer), "SoftHSM");
	snprintf(in.info.module_description, sizeof(in.info.module_description), "Implementation of PKCS11");
	in.info.module_major = 2;
	in.info.module_minor = 6;
	in.info.cryptoki_major = 3;
	in.info.cryptoki_minor = 0;
	in.info.slot_id = 0x12345678ul;
	in.recoveries = 7;
	in.reinitializations = UINT64_MAX;
	y = round_trip_rep(&in, 0, &f);
	assert_memory_equal(&y.info, &in.info, sizeof(in.info));
	assert_int_equal(y.recoveries, 7);
	assert_true(y.reinitializations == UINT64_MAX);

	uint8_t bytes[CS_IPC_RANDOM_MAX];
	for (size_t i = 0; i < sizeof(bytes); i++)
		bytes[i] = (uint8_t)(i * 31);
	const uint32_t ns[] = {1, 32, CS_IPC_RANDOM_MAX};
	for (size_t i = 0; i < 3; i++) {
		memset(&in, 0, sizeof(in));
		in.type = CS_IPC_RANDOM;
		in.data = bytes;
		in.data_len = ns[i];
		round_trip_rep(&in, ns[i], &f);
		assert_int_equal(f.len, CS_IPC_HEADER_LEN + 4 + ns[i]);
		assert_int_equal(cs_ipc_decode_reply(f.b, f.len, CS_IPC_RANDOM, ns[i], &y), CS_OK);
		assert_int_equal(y.data_len, ns[i]);
		assert_ptr_equal(y.data, f.b + CS_IPC_HEADER_LEN + 4);
		assert_memory_equal(y.data, bytes, ns[i]);
	}

	memset(&in, 0, sizeof(in));
	in.type = CS_IPC_FIND_KEY;
	const uint8_t id[] = {1, 2, 3};
	in.key = key_ref("resolved label", id, sizeof(id));
	y = round_trip_rep(&in, 0, &f);
	assert_string_equal(y.key.label, "resolved label");
	assert_int_equal(y.key.id_len, 3);
	assert_memory_equal(y.key.id, id, 3);

	const size_t spki_lens[] = {1, 91, CS_IPC_SPKI_MAX};
	for (size_t i = 0; i < 3; i++) {
		memset(&in, 0, sizeof(in));
		in.type = CS_IPC_PUBLIC_KEY;
		in.data = bytes;
		in.data_len = spki_lens[i];
		round_trip_rep(&in, 0, &f);
		assert_int_equal(cs_ipc_decode_reply(f.b, f.len, CS_IPC_PUBLIC_KEY, 0, &y), CS_OK);
		assert_int_equal(y.data_len, spki_lens[i]);
		assert_memory_equal(y.data, bytes, spki_lens[i]);
	}

	for (size_t der_len = 8; der_len <= 72; der_len += 64) {
		memset(&in, 0, sizeof(in));
		in.type = CS_IPC_SIGN;
		memcpy(in.sig.raw, bytes, 64);
		memcpy(in.sig.der, bytes + 64, der_len);
		in.sig.der_len = der_len;
		y = round_trip_rep(&in, 0, &f);
		assert_memory_equal(y.sig.raw, bytes, 64);
		assert_int_equal(y.sig.der_len, der_len);
		assert_memory_equal(y.sig.der, bytes + 64, der_len);
	}

	memset(&in, 0, sizeof(in));
	in.type = CS_IPC_MECHANISMS;
	in.mech[0].type = CKM_ECDSA;
	in.mech[0].listed = 1;
	in.mech[0].flags = CKF_SIGN | CKF_VERIFY;
	in.mech[0].min_key_size = 256;
	in.mech[0].max_key_size = 521;
	in.mech[1].type = CKM_EC_KEY_PAIR_GEN;
	memset(in.mech[1].problem, 'p', sizeof(in.mech[1].problem) - 1);
	y = round_trip_rep(&in, 0, &f);
	for (size_t i = 0; i < CS_TOKEN_MECHANISMS; i++) {
		assert_null(y.mech[i].name);
		assert_int_equal(y.mech[i].type, in.mech[i].type);
		assert_int_equal(y.mech[i].listed, in.mech[i].listed);
		assert_int_equal(y.mech[i].flags, in.mech[i].flags);
		assert_int_equal(y.mech[i].min_key_size, in.mech[i].min_key_size);
		assert_int_equal(y.mech[i].max_key_size, in.mech[i].max_key_size);
		assert_string_equal(y.mech[i].problem, in.mech[i].problem);
	}

	memset(&in, 0, sizeof(in));
	in.type = CS_IPC_BIND;
	round_trip_rep(&in, 0, &f);
	assert_int_equal(f.len, CS_IPC_HEADER_LEN + 4);

	/* an error reply of each type carries only its status */
	for (cs_ipc_type t = CS_IPC_HELLO; t <= CS_IPC_BIND; t++) {
		memset(&in, 0, sizeof(in));
		in.type = t;
		in.status = CS_E_KEY_PURPOSE;
		in.sig.der_len = 72; /* ignored */
		y = round_trip_rep(&in, t == CS_IPC_RANDOM ? 16 : 0, &f);
		assert_int_equal(f.len, CS_IPC_HEADER_LEN + 4);
		assert_int_equal(y.status, CS_E_KEY_PURPOSE);
		assert_int_equal(y.sig.der_len, 0);
	}
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(cs_ipc_type_name(CS_IPC_HELLO), "HELLO");
	assert_string_equal(cs_ipc_type_name(CS_IPC_PUBLIC_KEY), "PUBLIC_KEY");
	assert_string_equal(cs_ipc_type_name(CS_IPC_BIND), "BIND");
	assert_string_equal(cs_ipc_type_name(0), "?");
	assert_string_equal(cs_ipc_type_name(9), "?");
	assert_string_equal(cs_ipc_type_name(CS_IPC_SIGN | CS_IPC_REPLY), "?");
	char buf[64];
	cs_key_purpose p = purpose(CS_KEY_PURPOSE_PROFILE, "rel");
	assert_string_equal(cs_key_purpose_text(&p, buf, sizeof(buf)), "profile rel");
	p = purpose(CS_KEY_PURPOSE_CERTIFICATE, "");
	assert_string_equal(cs_key_purpose_text(&p, buf, sizeof(buf)), "certificate");
	p = purpose(CS_KEY_PURPOSE_TLS, "");
	assert_string_equal(cs_key_purpose_text(&p, buf, sizeof(buf)), "tls");
	p = purpose(CS_KEY_PURPOSE_NONE, "");
	assert_string_equal(cs_key_purpose_text(&p, buf, sizeof(buf)), "none");
	p = purpose(CS_KEY_PURPOSE_PROFILE, "rel");
	assert_string_equal(cs_key_purpose_text(&p, buf, 5), "prof");
}

/* ---- refusals: requests ------------------------------------------------ */

static void test_header_refusals(void **state)
{
	(void)state;
	cs_ipc_request in;
	memset(&in, 0, sizeof(in));
	in.type = CS_IPC_HELLO;
	in.version = CS_IPC_VERSION;
	frame good = enc_req(&in);
	assert_int_equal(dec_req(&good), CS_OK);

	/* a truncated header */
	cs_ipc_request q;
	for (size_t len = 0; len < CS_IPC_HEADER_LEN; len++)
		assert_int_equal(cs_ipc_decode_request(good.b, len, &q), CS_E_IPC);
	assert_int_equal(cs_ipc_decode_request(NULL, 0, &q), CS_E_IPC);

	/* flags set, in either byte */
	const uint8_t v1[] = {0, 0, 0, 1};
	frame f = raw_frame(CS_IPC_HELLO, 1, v1, 4, SIZE_MAX);
	assert_int_equal(dec_req(&f), CS_E_IPC);
	f = raw_frame(CS_IPC_HELLO, 0x8000, v1, 4, SIZE_MAX);
	assert_int_equal(dec_req(&f), CS_E_IPC);

	/* the payload length does not match the frame */
	f = raw_frame(CS_IPC_HELLO, 0, v1, 4, 3);
	assert_int_equal(dec_req(&f), CS_E_IPC);
	f = raw_frame(CS_IPC_HELLO, 0, v1, 4, 5);
	assert_int_equal(dec_req(&f), CS_E_IPC);
	f = raw_frame(CS_IPC_HELLO, 0, v1, 4, 0xffffffffu);
	assert_int_equal(dec_req(&f), CS_E_IPC);
	f = raw_frame(CS_IPC_INFO, 0, NULL, 0, 1);
	assert_int_equal(dec_req(&f), CS_E_IPC);

	/* unknown request types: well-formed, CS_E_NOT_FOUND */
	const unsigned unknown[] = {0, 9, 0x100, 0x7fff};
	for (size_t i = 0; i < 4; i++) {
		f = raw_frame(unknown[i], 0, NULL, 0, SIZE_MAX);
		assert_int_equal(dec_req(&f), CS_E_NOT_FOUND);
	}
	/* ... but malformed first: an unknown type with flags is CS_E_IPC */
	f = raw_frame(9, 1, NULL, 0, SIZE_MAX);
	assert_int_equal(dec_req(&f), CS_E_IPC);

	/* a reply type sent as a request */
	f = raw_frame(CS_IPC_HELLO | CS_IPC_REPLY, 0, v1, 4, SIZE_MAX);
	assert_int_equal(dec_req(&f), CS_E_IPC);
	f = raw_frame(CS_IPC_INFO | CS_IPC_REPLY, 0, NULL, 0, SIZE_MAX);
	assert_int_equal(dec_req(&f), CS_E_IPC);
	f = raw_frame(0xffff, 0, NULL, 0, SIZE_MAX);
	assert_int_equal(dec_req(&f), CS_E_IPC);

	/* trailing bytes */
	const uint8_t v1x[] = {0, 0, 0, 1, 0};
	f = raw_frame(CS_IPC_HELLO, 0, v1x, 5, SIZE_MAX);
	assert_int_equal(dec_req(&f), CS_E_IPC);
	f = raw_frame(CS_IPC_INFO, 0, v1x, 1, SIZE_MAX);
	assert_int_equal(dec_req(&f), CS_E_IPC);
	f = raw_frame(CS_IPC_MECHANISMS, 0, v1x, 1, SIZE_MAX);
	assert_int_equal(dec_req(&f), CS_E_IPC);

	/* another version */
	const uint8_t v2[] = {0, 0, 0, 2};
	f = raw_frame(CS_IPC_HELLO, 0, v2, 4, SIZE_MAX);
	assert_int_equal(dec_req(&f), CS_E_IPC);

	/* longer than CS_IPC_FRAME_MAX, even with a consistent header */
	uint8_t big[CS_IPC_FRAME_MAX];
	memset(big, 0, sizeof(big));
	f = raw_frame(CS_IPC_INFO, 0, big, CS_IPC_FRAME_MAX - CS_IPC_HEADER_LEN + 1, SIZE_MAX);
	assert_int_equal(dec_req(&f), CS_E_IPC);

	/* the decoder zeroes its output on failure */
	f = raw_frame(CS_IPC_RANDOM, 0, v1x, 5, SIZE_MAX);
	memset(&q, 0x77, sizeof(q));
	assert_int_equal(cs_ipc_decode_request(f.b, f.len, &q), CS_E_IPC);
	assert_int_equal(q.type, 0);
	assert_int_equal(q.n, 0);
}

static void test_field_refusals(void **state)
{
	(void)state;
	frame f;

	/* RANDOM n = 0 and n = 2049 (2048 is fine) */
	const uint8_t n0[] = {0, 0, 0, 0}, n2049[] = {0, 0, 0x08, 0x01}, n2048[] = {0, 0, 0x08, 0};
	f = raw_frame(CS_IPC_RANDOM, 0, n0, 4, SIZE_MAX);
	assert_int_equal(dec_req(&f), CS_E_IPC);
	f = raw_frame(CS_IPC_RANDOM, 0, n2049, 4, SIZE_MAX);
	assert_int_equal(dec_req(&f), CS_E_IPC);
	f = raw_frame(CS_IPC_RANDOM, 0, n2048, 4, SIZE_MAX);
	assert_int_equal(dec_req(&f), CS_OK);

	/* digests: 32 bytes exactly */
	f = sign_frame(CS_KEY_PURPOSE_CERTIFICATE, "", 0, 32);
	assert_int_equal(dec_req(&f), CS_OK);
	f = sign_frame(CS_KEY_PURPOSE_CERTIFICATE, "", 0, 31);
	assert_int_equal(dec_req(&f), CS_E_IPC);
	f = sign_frame(CS_KEY_PURPOSE_CERTIFICATE, "", 0, 33);
	assert_int_equal(dec_req(&f), CS_E_IPC);
	f = sign_frame(CS_KEY_PURPOSE_CERTIFICATE, "", 0, 0);
	assert_int_equal(dec_req(&f), CS_E_IPC);

	/* purposes: kind 1..3, names only for PROFILE, [a-z0-9._-], 1..32 */
	f = sign_frame(0, "", 0, 32);
	assert_int_equal(dec_req(&f), CS_E_IPC);
	f = sign_frame(4, "", 0, 32);
	assert_int_equal(dec_req(&f), CS_E_IPC);
	f = sign_frame(0xff, "", 0, 32);
	assert_int_equal(dec_req(&f), CS_E_IPC);
	f = sign_frame(CS_KEY_PURPOSE_PROFILE, "rel", 3, 32);
	assert_int_equal(dec_req(&f), CS_OK);
	f = sign_frame(CS_KEY_PURPOSE_PROFILE, "", 0, 32);
	assert_int_equal(dec_req(&f), CS_E_IPC);
	f = sign_frame(CS_KEY_PURPOSE_PROFILE, "re/l", 4, 32);
	assert_int_equal(dec_req(&f), CS_E_IPC);
	f = sign_frame(CS_KEY_PURPOSE_PROFILE, "Rel", 3, 32);
	assert_int_equal(dec_req(&f), CS_E_IPC);
	f = sign_frame(CS_KEY_PURPOSE_PROFILE, "re\0l", 4, 32);
	assert_int_equal(dec_req(&f), CS_E_IPC);
	f = sign_frame(CS_KEY_PURPOSE_PROFILE, "re l", 4, 32);
	assert_int_equal(dec_req(&f), CS_E_IPC);
	char name33[34];
	memset(name33, 'a', 33);
	name33[33] = '\0';
	f = sign_frame(CS_KEY_PURPOSE_PROFILE, name33, 32, 32);
	assert_int_equal(dec_req(&f), CS_OK);
	f = sign_frame(CS_KEY_PURPOSE_PROFILE, name33, 33, 32);
	assert_int_equal(dec_req(&f), CS_E_IPC);
	f = sign_frame(CS_KEY_PURPOSE_CERTIFICATE, "rel", 3, 32);
	assert_int_equal(dec_req(&f), CS_E_IPC);
	f = sign_frame(CS_KEY_PURPOSE_TLS, "x", 1, 32);
	assert_int_equal(dec_req(&f), CS_E_IPC);

	/* keyrefs: id 0..64, labels without NUL; BIND with a digest is trailing */
	uint8_t p[400];
	size_t n;
	for (size_t id_len = 64; id_len <= 65; id_len++) {
		n = 0;
		p[n++] = 0; /* label_len */
		p[n++] = (uint8_t)id_len;
		memset(p + n, 7, id_len);
		n += id_len;
		f = raw_frame(CS_IPC_FIND_KEY, 0, p, n, SIZE_MAX);
		assert_int_equal(dec_req(&f), id_len == 64 ? CS_OK : CS_E_IPC);
	}
	n = 0;
	p[n++] = 3;
	p[n++] = 'a';
	p[n++] = 0;
	p[n++] = 'b';
	p[n++] = 0;
	f = raw_frame(CS_IPC_PUBLIC_KEY, 0, p, n, SIZE_MAX);
	assert_int_equal(dec_req(&f), CS_E_IPC);
	p[2] = 'x';
	f = raw_frame(CS_IPC_PUBLIC_KEY, 0, p, n, SIZE_MAX);
	assert_int_equal(dec_req(&f), CS_OK);
	/* a label of 255 bytes is the most a u8 says; a label_len past the end */
	n = 0;
	p[n++] = 255;
	memset(p + n, 'l', 255);
	n += 255;
	p[n++] = 0;
	f = raw_frame(CS_IPC_FIND_KEY, 0, p, n, SIZE_MAX);
	assert_int_equal(dec_req(&f), CS_OK);
	f = raw_frame(CS_IPC_FIND_KEY, 0, p, n - 2, SIZE_MAX);
	assert_int_equal(dec_req(&f), CS_E_IPC);
	f = sign_frame(CS_KEY_PURPOSE_TLS, "", 0, 0);
	f.b[1] = CS_IPC_BIND;
	assert_int_equal(dec_req(&f), CS_OK);
	f = sign_frame(CS_KEY_PURPOSE_TLS, "", 0, 32);
	f.b[1] = CS_IPC_BIND;
	assert_int_equal(dec_req(&f), CS_E_IPC);
}

static void test_encoder_refusals(void **state)
{
	(void)state;
	uint8_t buf[CS_IPC_FRAME_MAX];
	size_t len = 99;
	cs_ipc_request q;

	/* label 256: not terminated within cs_key_ref.label */
	memset(&q, 0, sizeof(q));
	q.type = CS_IPC_FIND_KEY;
	memset(q.key.label, 'x', sizeof(q.key.label));
	assert_int_equal(cs_ipc_encode_request(&q, buf, sizeof(buf), &len), CS_E_INVALID_ARG);
	assert_int_equal(len, 0);
	q.key.label[CS_KEY_LABEL_MAX] = '\0';
	assert_int_equal(cs_ipc_encode_request(&q, buf, sizeof(buf), &len), CS_OK);
	/* id 65 */
	q.key.id_len = CS_KEY_ID_MAX + 1;
	assert_int_equal(cs_ipc_encode_request(&q, buf, sizeof(buf), &len), CS_E_INVALID_ARG);
	/* RANDOM 0 and 2049, HELLO version 2, unknown and reply types */
	memset(&q, 0, sizeof(q));
	q.type = CS_IPC_RANDOM;
	assert_int_equal(cs_ipc_encode_request(&q, buf, sizeof(buf), &len), CS_E_INVALID_ARG);
	q.n = CS_IPC_RANDOM_MAX + 1;
	assert_int_equal(cs_ipc_encode_request(&q, buf, sizeof(buf), &len), CS_E_INVALID_ARG);
	q.type = CS_IPC_HELLO;
	q.version = 2;
	assert_int_equal(cs_ipc_encode_request(&q, buf, sizeof(buf), &len), CS_E_INVALID_ARG);
	q.type = (cs_ipc_type)9;
	assert_int_equal(cs_ipc_encode_request(&q, buf, sizeof(buf), &len), CS_E_INVALID_ARG);
	q.type = (cs_ipc_type)(CS_IPC_SIGN | CS_IPC_REPLY);
	assert_int_equal(cs_ipc_encode_request(&q, buf, sizeof(buf), &len), CS_E_INVALID_ARG);
	/* purposes: NONE, 4, a bad or overlong profile, a name on CERTIFICATE */
	memset(&q, 0, sizeof(q));
	q.type = CS_IPC_SIGN;
	snprintf(q.key.label, sizeof(q.key.label), "k");
	assert_int_equal(cs_ipc_encode_request(&q, buf, sizeof(buf), &len), CS_E_INVALID_ARG);
	q.purpose = purpose((cs_key_purpose_kind)4, "");
	assert_int_equal(cs_ipc_encode_request(&q, buf, sizeof(buf), &len), CS_E_INVALID_ARG);
	q.purpose = purpose(CS_KEY_PURPOSE_PROFILE, "a/b");
	assert_int_equal(cs_ipc_encode_request(&q, buf, sizeof(buf), &len), CS_E_INVALID_ARG);
	q.purpose = purpose(CS_KEY_PURPOSE_PROFILE, "Rel");
	assert_int_equal(cs_ipc_encode_request(&q, buf, sizeof(buf), &len), CS_E_INVALID_ARG);
	q.purpose = purpose(CS_KEY_PURPOSE_PROFILE, "");
	memset(q.purpose.profile, 'a', sizeof(q.purpose.profile));
	assert_int_equal(cs_ipc_encode_request(&q, buf, sizeof(buf), &len), CS_E_INVALID_ARG);
	q.purpose = purpose(CS_KEY_PURPOSE_CERTIFICATE, "rel");
	assert_int_equal(cs_ipc_encode_request(&q, buf, sizeof(buf), &len), CS_E_INVALID_ARG);
	q.purpose = purpose(CS_KEY_PURPOSE_CERTIFICATE, "");
	assert_int_equal(cs_ipc_encode_request(&q, buf, sizeof(buf), &len), CS_OK);
	assert_int_equal(len, CS_IPC_HEADER_LEN + 2 + 2 + 1 + 32);
	/* too small a buffer: refused, nothing half-written */
	assert_int_equal(cs_ipc_encode_request(&q, buf, len - 1, &len), CS_E_BUFFER_TOO_SMALL);
	assert_int_equal(len, 0);
	for (size_t i = 0; i < CS_IPC_HEADER_LEN + 36; i++)
		assert_int_equal(buf[i], 0);

	/* replies */
	cs_ipc_reply y;
	uint8_t data[CS_IPC_RANDOM_MAX + 1];
	memset(data, 1, sizeof(data));
	memset(&y, 0, sizeof(y));
	y.type = CS_IPC_SIGN;
	y.sig.der_len = 73 - 1;
	assert_int_equal(cs_ipc_encode_reply(&y, buf, sizeof(buf), &len), CS_OK);
	y.sig.der_len = 73;
	assert_int_equal(cs_ipc_encode_reply(&y, buf, sizeof(buf), &len), CS_E_INVALID_ARG);
	y.sig.der_len = 7;
	assert_int_equal(cs_ipc_encode_reply(&y, buf, sizeof(buf), &len), CS_E_INVALID_ARG);
	y.type = CS_IPC_RANDOM;
	y.data = data;
	y.data_len = CS_IPC_RANDOM_MAX + 1;
	assert_int_equal(cs_ipc_encode_reply(&y, buf, sizeof(buf), &len), CS_E_INVALID_ARG);
	y.data_len = 0;
	assert_int_equal(cs_ipc_encode_reply(&y, buf, sizeof(buf), &len), CS_E_INVALID_ARG);
	y.type = CS_IPC_PUBLIC_KEY;
	y.data_len = CS_IPC_SPKI_MAX + 1;
	assert_int_equal(cs_ipc_encode_reply(&y, buf, sizeof(buf), &len), CS_E_INVALID_ARG);
	y.type = CS_IPC_INFO;
	y.data_len = 0;
	y.info.hw_major = 256;
	assert_int_equal(cs_ipc_encode_reply(&y, buf, sizeof(buf), &len), CS_E_INVALID_ARG);
	y.info.hw_major = 0;
	memset(y.info.model, 'm', sizeof(y.info.model));
	assert_int_equal(cs_ipc_encode_reply(&y, buf, sizeof(buf), &len), CS_E_INVALID_ARG);
	y.type = CS_IPC_HELLO;
	y.version = CS_IPC_VERSION;
	y.random_max = 0;
	assert_int_equal(cs_ipc_encode_reply(&y, buf, sizeof(buf), &len), CS_E_INVALID_ARG);
	y.status = CS_ERR_COUNT;
	assert_int_equal(cs_ipc_encode_reply(&y, buf, sizeof(buf), &len), CS_E_INVALID_ARG);
}

/* ---- refusals: replies ------------------------------------------------- */

static void test_reply_refusals(void **state)
{
	(void)state;
	cs_ipc_reply in, y;
	uint8_t bytes[CS_IPC_RANDOM_MAX + 1];
	memset(bytes, 0x42, sizeof(bytes));

	/* a reply to another request, or a request type */
	memset(&in, 0, sizeof(in));
	in.type = CS_IPC_BIND;
	frame f = enc_rep(&in);
	assert_int_equal(dec_rep(&f, CS_IPC_BIND, 0), CS_OK);
	assert_int_equal(dec_rep(&f, CS_IPC_INFO, 0), CS_E_IPC);
	assert_int_equal(dec_rep(&f, CS_IPC_SIGN, 0), CS_E_IPC);
	f.b[0] = 0; /* BIND as a request type, payload 4 bytes */
	assert_int_equal(dec_rep(&f, CS_IPC_BIND, 0), CS_E_IPC);
	f = enc_rep(&in);
	f.b[3] = 1; /* flags */
	assert_int_equal(dec_rep(&f, CS_IPC_BIND, 0), CS_E_IPC);
	/* the caller's expectation must be a request type (and n for RANDOM) */
	f = enc_rep(&in);
	assert_int_equal(dec_rep(&f, (cs_ipc_type)0, 0), CS_E_INVALID_ARG);
	assert_int_equal(dec_rep(&f, CS_IPC_RANDOM, 0), CS_E_INVALID_ARG);
	assert_int_equal(dec_rep(&f, CS_IPC_BIND, 5), CS_E_INVALID_ARG);

	/* RANDOM: exactly the n asked for */
	memset(&in, 0, sizeof(in));
	in.type = CS_IPC_RANDOM;
	in.data = bytes;
	in.data_len = 32;
	f = enc_rep(&in);
	assert_int_equal(dec_rep(&f, CS_IPC_RANDOM, 32), CS_OK);
	assert_int_equal(dec_rep(&f, CS_IPC_RANDOM, 31), CS_E_IPC);
	assert_int_equal(dec_rep(&f, CS_IPC_RANDOM, 33), CS_E_IPC);

	/* SIGN: der_len 8..72, raw 64 */
	uint8_t p[400];
	size_t n;
	const size_t der_lens[] = {7, 8, 72, 73, 255};
	for (size_t i = 0; i < 5; i++) {
		n = 0;
		memset(p, 0, 4);
		n += 4;
		memset(p + n, 0x11, 64);
		n += 64;
		p[n++] = (uint8_t)der_lens[i];
		memset(p + n, 0x30, der_lens[i]);
		n += der_lens[i];
		f = raw_frame(CS_IPC_SIGN | CS_IPC_REPLY, 0, p, n, SIZE_MAX);
		int ok = der_lens[i] >= 8 && der_lens[i] <= 72;
		assert_int_equal(cs_ipc_decode_reply(f.b, f.len, CS_IPC_SIGN, 0, &y), ok ? CS_OK : CS_E_IPC);
		/* nothing of a refused signature is left in the output */
		if (!ok) {
			assert_int_equal(y.sig.der_len, 0);
			assert_int_equal(y.sig.raw[0], 0);
		}
	}

	/* status: a known cs_err; an error reply with a payload is refused */
	memset(p, 0, sizeof(p));
	p[3] = (uint8_t)CS_ERR_COUNT;
	f = raw_frame(CS_IPC_INFO | CS_IPC_REPLY, 0, p, 4, SIZE_MAX);
	assert_int_equal(dec_rep(&f, CS_IPC_INFO, 0), CS_E_IPC);
	p[3] = (uint8_t)CS_E_TOKEN_UNAVAILABLE;
	f = raw_frame(CS_IPC_INFO | CS_IPC_REPLY, 0, p, 4, SIZE_MAX);
	assert_int_equal(dec_rep(&f, CS_IPC_INFO, 0), CS_OK);
	f = raw_frame(CS_IPC_SIGN | CS_IPC_REPLY, 0, p, 4 + 64 + 1 + 8, SIZE_MAX);
	assert_int_equal(dec_rep(&f, CS_IPC_SIGN, 0), CS_E_IPC);
	f = raw_frame(CS_IPC_BIND | CS_IPC_REPLY, 0, p, 3, SIZE_MAX); /* no status */
	assert_int_equal(dec_rep(&f, CS_IPC_BIND, 0), CS_E_IPC);

	/* PUBLIC_KEY 1..512 */
	const size_t spki[] = {0, 1, 512, 513};
	uint8_t q[4 + 2 + 513];
	for (size_t i = 0; i < 4; i++) {
		memset(q, 0, sizeof(q));
		q[4] = (uint8_t)(spki[i] >> 8);
		q[5] = (uint8_t)spki[i];
		f = raw_frame(CS_IPC_PUBLIC_KEY | CS_IPC_REPLY, 0, q, 6 + spki[i], SIZE_MAX);
		assert_int_equal(dec_rep(&f, CS_IPC_PUBLIC_KEY, 0),
				 spki[i] >= 1 && spki[i] <= 512 ? CS_OK : CS_E_IPC);
	}

	/* HELLO: version 1, random_max 1..2048 */
	const uint8_t hello_bad_version[] = {0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 1, 0};
	const uint8_t hello_bad_max[] = {0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0};
	f = raw_frame(CS_IPC_HELLO | CS_IPC_REPLY, 0, hello_bad_version, 12, SIZE_MAX);
	assert_int_equal(dec_rep(&f, CS_IPC_HELLO, 0), CS_E_IPC);
	f = raw_frame(CS_IPC_HELLO | CS_IPC_REPLY, 0, hello_bad_max, 12, SIZE_MAX);
	assert_int_equal(dec_rep(&f, CS_IPC_HELLO, 0), CS_E_IPC);

	/* INFO: a str8 longer than its destination, a NUL inside */
	memset(&in, 0, sizeof(in));
	in.type = CS_IPC_INFO;
	snprintf(in.info.model, sizeof(in.info.model), "model-16-bytes!!");
	f = enc_rep(&in);
	assert_int_equal(dec_rep(&f, CS_IPC_INFO, 0), CS_OK);
	/* payload: status(4) label(1) manufacturer(1) model(1 + 16) */
	assert_int_equal(f.b[CS_IPC_HEADER_LEN + 6], 16);
	f.b[CS_IPC_HEADER_LEN + 6] = 17; /* one byte more than model[17] holds */
	assert_int_equal(dec_rep(&f, CS_IPC_INFO, 0), CS_E_IPC);
	f = enc_rep(&in);
	f.b[CS_IPC_HEADER_LEN + 7 + 3] = 0;
	assert_int_equal(dec_rep(&f, CS_IPC_INFO, 0), CS_E_IPC);

	/* MECHANISMS: count == 2, listed 0/1, problem < 128 */
	memset(&in, 0, sizeof(in));
	in.type = CS_IPC_MECHANISMS;
	f = enc_rep(&in);
	assert_int_equal(dec_rep(&f, CS_IPC_MECHANISMS, 0), CS_OK);
	f.b[CS_IPC_HEADER_LEN + 4] = 1;
	assert_int_equal(dec_rep(&f, CS_IPC_MECHANISMS, 0), CS_E_IPC);
	f = enc_rep(&in);
	f.b[CS_IPC_HEADER_LEN + 4 + 1 + 8] = 2; /* listed */
	assert_int_equal(dec_rep(&f, CS_IPC_MECHANISMS, 0), CS_E_IPC);
	memset(in.mech[0].problem, 'x', 127);
	f = enc_rep(&in);
	assert_int_equal(dec_rep(&f, CS_IPC_MECHANISMS, 0), CS_OK);
	f.b[CS_IPC_HEADER_LEN + 4 + 1 + 8 + 1 + 24] = 128; /* problem length */
	assert_int_equal(dec_rep(&f, CS_IPC_MECHANISMS, 0), CS_E_IPC);

	/* FIND_KEY: id 65 */
	memset(p, 0, sizeof(p));
	p[4] = 0;
	p[5] = 65;
	f = raw_frame(CS_IPC_FIND_KEY | CS_IPC_REPLY, 0, p, 6 + 65, SIZE_MAX);
	assert_int_equal(dec_rep(&f, CS_IPC_FIND_KEY, 0), CS_E_IPC);
	p[5] = 64;
	f = raw_frame(CS_IPC_FIND_KEY | CS_IPC_REPLY, 0, p, 6 + 64, SIZE_MAX);
	assert_int_equal(dec_rep(&f, CS_IPC_FIND_KEY, 0), CS_OK);

	/* trailing byte after a good reply */
	memset(&in, 0, sizeof(in));
	in.type = CS_IPC_HELLO;
	in.version = CS_IPC_VERSION;
	in.random_max = 16;
	f = enc_rep(&in);
	f = raw_frame(CS_IPC_HELLO | CS_IPC_REPLY, 0, f.b + CS_IPC_HEADER_LEN,
		      f.len - CS_IPC_HEADER_LEN + 1, SIZE_MAX);
	assert_int_equal(dec_rep(&f, CS_IPC_HELLO, 0), CS_E_IPC);
}

/* ---- an error reply's cause ------------------------------------------- */

/* An error reply's payload by hand: status, then (name_len >= 0) the cause
 * str8 name[name_len] and u64 rv. */
static frame cause_frame(cs_ipc_type type, cs_err status, const char *name, int name_len, uint64_t rv)
{
	uint8_t p[4 + 1 + 255 + 8];
	size_t n = 0;
	p[n++] = 0;
	p[n++] = 0;
	p[n++] = 0;
	p[n++] = (uint8_t)status;
	if (name_len >= 0) {
		p[n++] = (uint8_t)name_len;
		memcpy(p + n, name, (size_t)name_len);
		n += (size_t)name_len;
		for (int i = 7; i >= 0; i--)
			p[n++] = (uint8_t)(rv >> (8 * i));
	}
	return raw_frame(type | CS_IPC_REPLY, 0, p, n, SIZE_MAX);
}

static void test_error_cause_round_trip(void **state)
{
	(void)state;
	static const struct {
		cs_ipc_type type;
		cs_err status;
		const char *fn;
		uint64_t rv;
	} cases[] = {
		{CS_IPC_SIGN, CS_E_NOT_LOGGED_IN, "C_Sign", 0x101},
		{CS_IPC_INFO, CS_E_TOKEN_UNAVAILABLE, "C_GetTokenInfo", 0x32},
		{CS_IPC_RANDOM, CS_E_TOKEN_FAILED, "C_GenerateRandom", 0x80000001ull},
		{CS_IPC_BIND, CS_E_KEY_NOT_FOUND, "C_FindObjectsInit", UINT64_MAX},
		/* the longest name: "C_" and 45 letters */
		{CS_IPC_MECHANISMS, CS_E_TOKEN_FAILED, "C_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRS", 6},
		{CS_IPC_PUBLIC_KEY, CS_E_TOKEN_FAILED, "C_X", 1},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cs_ipc_reply in, y;
		size_t fn_len = strlen(cases[i].fn);
		memset(&in, 0, sizeof(in));
		in.type = cases[i].type;
		in.status = cases[i].status;
		snprintf(in.cause_function, sizeof(in.cause_function), "%s", cases[i].fn);
		in.cause_rv = cases[i].rv;
		frame f = enc_rep(&in);
		assert_int_equal(f.len, CS_IPC_HEADER_LEN + 4 + 1 + fn_len + 8);
		/* the bytes as the format says */
		frame want = cause_frame(cases[i].type, cases[i].status, cases[i].fn, (int)fn_len, cases[i].rv);
		assert_int_equal(f.len, want.len);
		assert_memory_equal(f.b, want.b, f.len);
		uint32_t n = cases[i].type == CS_IPC_RANDOM ? 16 : 0;
		assert_int_equal(cs_ipc_decode_reply(f.b, f.len, cases[i].type, n, &y), CS_OK);
		assert_int_equal(y.status, cases[i].status);
		assert_string_equal(y.cause_function, cases[i].fn);
		assert_true(y.cause_rv == cases[i].rv);
		/* encodes back to the same bytes */
		frame g = enc_rep(&y);
		assert_int_equal(g.len, f.len);
		assert_memory_equal(g.b, f.b, f.len);
		/* every cut but the one after the status (an error without a
		 * cause) is refused */
		for (size_t cut = CS_IPC_HEADER_LEN; cut < f.len; cut++) {
			frame t = raw_frame(cases[i].type | CS_IPC_REPLY, 0, f.b + CS_IPC_HEADER_LEN,
					    cut - CS_IPC_HEADER_LEN, SIZE_MAX);
			cs_err r = cs_ipc_decode_reply(t.b, t.len, cases[i].type, n, &y);
			if (cut == CS_IPC_HEADER_LEN + 4) {
				assert_int_equal(r, CS_OK);
				assert_string_equal(y.cause_function, "");
				assert_true(y.cause_rv == 0);
			} else {
				assert_int_equal(r, CS_E_IPC);
				assert_string_equal(y.cause_function, "");
			}
		}
		/* a byte more is refused */
		frame t = raw_frame(cases[i].type | CS_IPC_REPLY, 0, f.b + CS_IPC_HEADER_LEN,
				    f.len - CS_IPC_HEADER_LEN + 1, SIZE_MAX);
		assert_int_equal(cs_ipc_decode_reply(t.b, t.len, cases[i].type, n, &y), CS_E_IPC);
	}

	/* an error without a cause: the status alone, as before */
	cs_ipc_reply in, y;
	memset(&in, 0, sizeof(in));
	in.type = CS_IPC_SIGN;
	in.status = CS_E_KEY_PURPOSE;
	frame f = enc_rep(&in);
	assert_int_equal(f.len, CS_IPC_HEADER_LEN + 4);
	assert_int_equal(dec_rep(&f, CS_IPC_SIGN, 0), CS_OK);
	assert_int_equal(cs_ipc_decode_reply(f.b, f.len, CS_IPC_SIGN, 0, &y), CS_OK);
	assert_string_equal(y.cause_function, "");
	assert_true(y.cause_rv == 0);
}

static void test_error_cause_refusals(void **state)
{
	(void)state;
	static const char *const bad_names[] = {
		"C_",       /* no letters */
		"C",        /* no underscore */
		"X_Sign",   /* not C_ */
		"c_Sign",   /* lower-case c */
		"C_Sign2",  /* a digit */
		"C_Sign ",  /* a space */
		"C_Si_gn",  /* an underscore after C_ */
		"C_Sign\x01", /* a control byte */
		"C_Sign\xc3\xa9", /* not ASCII */
		" C_Sign",  /* a leading space */
	};
	char n47[48], n48[49];
	frame f;
	cs_ipc_reply in, y;
	memcpy(n47, "C_", 2);
	memset(n47 + 2, 'a', 45);
	n47[47] = '\0';
	memcpy(n48, "C_", 2);
	memset(n48 + 2, 'a', 46);
	n48[48] = '\0';

	/* the decoder: 47 bytes is the most, 48 refused; an empty name; a
	 * name out of the rules; CKR_OK; a NUL inside */
	f = cause_frame(CS_IPC_SIGN, CS_E_TOKEN_FAILED, n47, 47, 0x101);
	assert_int_equal(dec_rep(&f, CS_IPC_SIGN, 0), CS_OK);
	f = cause_frame(CS_IPC_SIGN, CS_E_TOKEN_FAILED, n48, 48, 0x101);
	assert_int_equal(dec_rep(&f, CS_IPC_SIGN, 0), CS_E_IPC);
	f = cause_frame(CS_IPC_SIGN, CS_E_TOKEN_FAILED, "", 0, 0x101);
	assert_int_equal(dec_rep(&f, CS_IPC_SIGN, 0), CS_E_IPC);
	f = cause_frame(CS_IPC_SIGN, CS_E_TOKEN_FAILED, "C_Sign", 6, 0);
	assert_int_equal(dec_rep(&f, CS_IPC_SIGN, 0), CS_E_IPC);
	f = cause_frame(CS_IPC_SIGN, CS_E_TOKEN_FAILED, "C_Si\0n", 6, 0x101);
	assert_int_equal(dec_rep(&f, CS_IPC_SIGN, 0), CS_E_IPC);
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		f = cause_frame(CS_IPC_SIGN, CS_E_TOKEN_FAILED, bad_names[i], (int)strlen(bad_names[i]), 0x101);
		assert_int_equal(cs_ipc_decode_reply(f.b, f.len, CS_IPC_SIGN, 0, &y), CS_E_IPC);
		assert_string_equal(y.cause_function, "");
		assert_true(y.cause_rv == 0);
	}
	/* a length byte that runs past the frame */
	f = cause_frame(CS_IPC_SIGN, CS_E_TOKEN_FAILED, "C_Sign", 6, 0x101);
	f.b[CS_IPC_HEADER_LEN + 4] = 20;
	assert_int_equal(dec_rep(&f, CS_IPC_SIGN, 0), CS_E_IPC);

	/* a cause on a CS_OK reply: as trailing bytes, refused */
	memset(&in, 0, sizeof(in));
	in.type = CS_IPC_BIND;
	f = cause_frame(CS_IPC_BIND, CS_OK, "C_Sign", 6, 0x101);
	assert_int_equal(dec_rep(&f, CS_IPC_BIND, 0), CS_E_IPC);
	f = cause_frame(CS_IPC_BIND, CS_OK, NULL, -1, 0);
	assert_int_equal(dec_rep(&f, CS_IPC_BIND, 0), CS_OK);
	memset(&in, 0, sizeof(in));
	in.type = CS_IPC_HELLO;
	in.version = CS_IPC_VERSION;
	in.random_max = 16;
	frame ok = enc_rep(&in);
	uint8_t p[64];
	memcpy(p, ok.b + CS_IPC_HEADER_LEN, ok.len - CS_IPC_HEADER_LEN);
	size_t n = ok.len - CS_IPC_HEADER_LEN;
	p[n++] = 6;
	memcpy(p + n, "C_Sign", 6);
	n += 6;
	memset(p + n, 0, 7);
	n += 7;
	p[n++] = 1;
	f = raw_frame(CS_IPC_HELLO | CS_IPC_REPLY, 0, p, n, SIZE_MAX);
	assert_int_equal(dec_rep(&f, CS_IPC_HELLO, 0), CS_E_IPC);

	/* the encoder refuses what the decoder would */
	size_t len = 99;
	uint8_t out[CS_IPC_FRAME_MAX];
	memset(&in, 0, sizeof(in));
	in.type = CS_IPC_SIGN;
	in.status = CS_E_TOKEN_FAILED;
	in.cause_rv = 0x101;
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		snprintf(in.cause_function, sizeof(in.cause_function), "%s", bad_names[i]);
		len = 99;
		assert_int_equal(cs_ipc_encode_reply(&in, out, sizeof(out), &len), CS_E_INVALID_ARG);
		assert_int_equal(len, 0);
	}
	/* a name filling the array without a NUL (48 bytes) */
	memcpy(in.cause_function, n48, sizeof(in.cause_function));
	assert_int_equal(cs_ipc_encode_reply(&in, out, sizeof(out), &len), CS_E_INVALID_ARG);
	assert_int_equal(len, 0);
	snprintf(in.cause_function, sizeof(in.cause_function), "%s", n47);
	assert_int_equal(cs_ipc_encode_reply(&in, out, sizeof(out), &len), CS_OK);
	/* CKR_OK as a cause; a value without a name */
	snprintf(in.cause_function, sizeof(in.cause_function), "C_Sign");
	in.cause_rv = 0;
	assert_int_equal(cs_ipc_encode_reply(&in, out, sizeof(out), &len), CS_E_INVALID_ARG);
	in.cause_function[0] = '\0';
	in.cause_rv = 0x101;
	assert_int_equal(cs_ipc_encode_reply(&in, out, sizeof(out), &len), CS_E_INVALID_ARG);
	/* a cause on a CS_OK reply */
	memset(&in, 0, sizeof(in));
	in.type = CS_IPC_BIND;
	snprintf(in.cause_function, sizeof(in.cause_function), "C_Sign");
	in.cause_rv = 0x101;
	assert_int_equal(cs_ipc_encode_reply(&in, out, sizeof(out), &len), CS_E_INVALID_ARG);
	assert_int_equal(len, 0);
	in.cause_rv = 0;
	assert_int_equal(cs_ipc_encode_reply(&in, out, sizeof(out), &len), CS_E_INVALID_ARG);
	in.cause_function[0] = '\0';
	in.cause_rv = 0x101;
	assert_int_equal(cs_ipc_encode_reply(&in, out, sizeof(out), &len), CS_E_INVALID_ARG);
	in.cause_rv = 0;
	assert_int_equal(cs_ipc_encode_reply(&in, out, sizeof(out), &len), CS_OK);
	/* no room for the cause */
	memset(&in, 0, sizeof(in));
	in.type = CS_IPC_SIGN;
	in.status = CS_E_TOKEN_FAILED;
	snprintf(in.cause_function, sizeof(in.cause_function), "C_Sign");
	in.cause_rv = 0x101;
	assert_int_equal(cs_ipc_encode_reply(&in, out, CS_IPC_HEADER_LEN + 4 + 1 + 6 + 7, &len),
			 CS_E_BUFFER_TOO_SMALL);
	assert_int_equal(len, 0);
	assert_int_equal(cs_ipc_encode_reply(&in, out, CS_IPC_HEADER_LEN + 4 + 1 + 6 + 8, &len), CS_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_requests_round_trip),
		cmocka_unit_test(test_replies_round_trip),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_header_refusals),
		cmocka_unit_test(test_field_refusals),
		cmocka_unit_test(test_encoder_refusals),
		cmocka_unit_test(test_reply_refusals),
		cmocka_unit_test(test_error_cause_round_trip),
		cmocka_unit_test(test_error_cause_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
