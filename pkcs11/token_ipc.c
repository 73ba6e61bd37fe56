/*
 * token_ipc: the key process's frame codec (see token_ipc.h for the format).
 *
 * Decoding reads through a bounded reader that refuses to read past the
 * frame; encoding writes through a bounded writer that records an overflow
 * instead of writing past the capacity. Both check the same field rules, so
 * whatever the encoder produces the decoder accepts, and the reverse.
 */
#include "token_ipc.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

/* ---- bounded reader ---------------------------------------------------- */

typedef struct {
	const uint8_t *p;
	size_t left;
} ipc_rd;

static int rd_bytes(ipc_rd *r, size_t n, const uint8_t **out)
{
	if (n > r->left)
		return -1;
	*out = r->p;
	r->p += n;
	r->left -= n;
	return 0;
}

static int rd_uint(ipc_rd *r, size_t n, uint64_t *v)
{
	const uint8_t *b;

	if (rd_bytes(r, n, &b) != 0)
		return -1;
	*v = 0;
	for (size_t i = 0; i < n; i++)
		*v = (*v << 8) | b[i];
	return 0;
}

static int rd_u8(ipc_rd *r, uint8_t *v)
{
	uint64_t x;

	if (rd_uint(r, 1, &x) != 0)
		return -1;
	*v = (uint8_t)x;
	return 0;
}

static int rd_u32(ipc_rd *r, uint32_t *v)
{
	uint64_t x;

	if (rd_uint(r, 4, &x) != 0)
		return -1;
	*v = (uint32_t)x;
	return 0;
}

static int rd_ulong(ipc_rd *r, unsigned long *v)
{
	uint64_t x;

	if (rd_uint(r, 8, &x) != 0 || x > ULONG_MAX)
		return -1;
	*v = (unsigned long)x;
	return 0;
}

/* u8 into an unsigned field of cs_token_info */
static int rd_u8_uint(ipc_rd *r, unsigned *v)
{
	uint8_t x;

	if (rd_u8(r, &x) != 0)
		return -1;
	*v = x;
	return 0;
}

/* str8 into dst[size]: at most size - 1 bytes, none of them NUL */
static int rd_str8(ipc_rd *r, char *dst, size_t size)
{
	uint8_t n;
	const uint8_t *b;

	if (rd_u8(r, &n) != 0 || (size_t)n >= size || rd_bytes(r, n, &b) != 0 ||
	    memchr(b, 0, n) != NULL)
		return -1;
	memcpy(dst, b, n);
	dst[n] = '\0';
	return 0;
}

/* ---- bounded writer ---------------------------------------------------- */

typedef struct {
	uint8_t *p;
	size_t cap, len;
	int overflow;
} ipc_wr;

static void wr_bytes(ipc_wr *w, const void *b, size_t n)
{
	if (w->overflow || n > w->cap - w->len) {
		w->overflow = 1;
		return;
	}
	if (n > 0)
		memcpy(w->p + w->len, b, n);
	w->len += n;
}

static void wr_uint(ipc_wr *w, uint64_t v, size_t n)
{
	uint8_t b[8];

	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	wr_bytes(w, b, n);
}

/* Validates before writing: CS_E_INVALID_ARG for text that does not fit
 * dst_size (with its NUL) or that is not terminated within it. */
static cs_err wr_str8(ipc_wr *w, const char *s, size_t dst_size)
{
	size_t n = strnlen(s, dst_size);

	if (n >= dst_size || n > UINT8_MAX)
		return CS_E_INVALID_ARG;
	wr_uint(w, n, 1);
	wr_bytes(w, s, n);
	return CS_OK;
}

static cs_err wr_u8_field(ipc_wr *w, unsigned v)
{
	if (v > UINT8_MAX)
		return CS_E_INVALID_ARG;
	wr_uint(w, v, 1);
	return CS_OK;
}

/* ---- shared fields ----------------------------------------------------- */

static int profile_char_ok(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
	       c == '-';
}

static int profile_name_ok(const uint8_t *name, size_t n)
{
	if (n < 1 || n > CS_KEY_PROFILE_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!profile_char_ok(name[i]))
			return 0;
	return 1;
}

static int rd_purpose(ipc_rd *r, cs_key_purpose *p)
{
	uint8_t kind, n;
	const uint8_t *name;

	if (rd_u8(r, &kind) != 0 || kind < CS_KEY_PURPOSE_CERTIFICATE ||
	    kind > CS_KEY_PURPOSE_PROFILE || rd_u8(r, &n) != 0 || rd_bytes(r, n, &name) != 0)
		return -1;
	if (kind == CS_KEY_PURPOSE_PROFILE ? !profile_name_ok(name, n) : n != 0)
		return -1;
	p->kind = (cs_key_purpose_kind)kind;
	memcpy(p->profile, name, n);
	p->profile[n] = '\0';
	return 0;
}

static cs_err wr_purpose(ipc_wr *w, const cs_key_purpose *p)
{
	size_t n = strnlen(p->profile, sizeof(p->profile));

	if (p->kind < CS_KEY_PURPOSE_CERTIFICATE || p->kind > CS_KEY_PURPOSE_PROFILE ||
	    n >= sizeof(p->profile))
		return CS_E_INVALID_ARG;
	if (p->kind == CS_KEY_PURPOSE_PROFILE ? !profile_name_ok((const uint8_t *)p->profile, n)
					      : n != 0)
		return CS_E_INVALID_ARG;
	wr_uint(w, (uint64_t)p->kind, 1);
	wr_uint(w, n, 1);
	wr_bytes(w, p->profile, n);
	return CS_OK;
}

static int rd_keyref(ipc_rd *r, cs_key_ref *k)
{
	uint8_t n;
	const uint8_t *b;

	if (rd_str8(r, k->label, sizeof(k->label)) != 0)
		return -1;
	if (rd_u8(r, &n) != 0 || n > CS_KEY_ID_MAX || rd_bytes(r, n, &b) != 0)
		return -1;
	memcpy(k->id, b, n);
	k->id_len = n;
	return 0;
}

static cs_err wr_keyref(ipc_wr *w, const cs_key_ref *k)
{
	if (k->id_len > CS_KEY_ID_MAX || wr_str8(w, k->label, sizeof(k->label)) != CS_OK)
		return CS_E_INVALID_ARG;
	wr_uint(w, k->id_len, 1);
	wr_bytes(w, k->id, k->id_len);
	return CS_OK;
}

/* A cause's function name: "C_" and one or more ASCII letters. */
static int cause_function_ok(const uint8_t *name, size_t n)
{
	if (n < 3 || n > CS_IPC_CAUSE_FUNCTION_MAX || name[0] != 'C' || name[1] != '_')
		return 0;
	for (size_t i = 2; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z')))
			return 0;
	return 1;
}

static int rd_cause(ipc_rd *r, cs_ipc_reply *y)
{
	uint8_t n;
	const uint8_t *name;

	if (rd_u8(r, &n) != 0 || rd_bytes(r, n, &name) != 0 || !cause_function_ok(name, n) ||
	    rd_uint(r, 8, &y->cause_rv) != 0 || y->cause_rv == 0)
		return -1;
	memcpy(y->cause_function, name, n);
	y->cause_function[n] = '\0';
	return 0;
}

/* Validates before writing: CS_E_INVALID_ARG unless the reply's cause is
 * none ("" and 0) or one the decoder accepts; a CS_OK reply has none. */
static cs_err wr_cause(ipc_wr *w, const cs_ipc_reply *y)
{
	size_t n = strnlen(y->cause_function, sizeof(y->cause_function));

	if (n == 0)
		return y->cause_rv == 0 ? CS_OK : CS_E_INVALID_ARG;
	if (y->status == CS_OK || n >= sizeof(y->cause_function) ||
	    !cause_function_ok((const uint8_t *)y->cause_function, n) || y->cause_rv == 0)
		return CS_E_INVALID_ARG;
	wr_uint(w, n, 1);
	wr_bytes(w, y->cause_function, n);
	wr_uint(w, y->cause_rv, 8);
	return CS_OK;
}

static int type_known(unsigned type)
{
	return type >= CS_IPC_HELLO && type <= CS_IPC_BIND;
}

/* The header: CS_OK with the type and a reader over exactly the payload. */
static cs_err rd_header(const uint8_t *frame, size_t len, unsigned *type, ipc_rd *payload)
{
	ipc_rd r = {frame, len};
	uint64_t t, flags, plen;

	if (frame == NULL || len < CS_IPC_HEADER_LEN || len > CS_IPC_FRAME_MAX)
		return CS_E_IPC;
	if (rd_uint(&r, 2, &t) != 0 || rd_uint(&r, 2, &flags) != 0 || rd_uint(&r, 4, &plen) != 0)
		return CS_E_IPC;
	if (flags != 0 || plen != r.left)
		return CS_E_IPC;
	*type = (unsigned)t;
	*payload = r;
	return CS_OK;
}

/* Writes the header with a zero length; wr_finish fills it in. */
static void wr_header(ipc_wr *w, unsigned type)
{
	wr_uint(w, type, 2);
	wr_uint(w, 0, 2);
	wr_uint(w, 0, 4);
}

static cs_err wr_finish(ipc_wr *w, cs_err err, size_t *len)
{
	if (err == CS_OK && (w->overflow || w->len > CS_IPC_FRAME_MAX))
		err = CS_E_BUFFER_TOO_SMALL;
	if (err != CS_OK) {
		if (w->p != NULL)
			memset(w->p, 0, w->cap < CS_IPC_FRAME_MAX ? w->cap : CS_IPC_FRAME_MAX);
		*len = 0;
		return err;
	}
	uint32_t plen = (uint32_t)(w->len - CS_IPC_HEADER_LEN);
	for (size_t i = 0; i < 4; i++)
		w->p[4 + i] = (uint8_t)(plen >> (8 * (3 - i)));
	*len = w->len;
	return CS_OK;
}

/* ---- requests ---------------------------------------------------------- */

static int rd_request_payload(ipc_rd *r, cs_ipc_request *q)
{
	const uint8_t *d;

	switch (q->type) {
	case CS_IPC_HELLO:
		return rd_u32(r, &q->version) != 0 || q->version != CS_IPC_VERSION ? -1 : 0;
	case CS_IPC_INFO:
	case CS_IPC_MECHANISMS:
		return 0;
	case CS_IPC_RANDOM:
		return rd_u32(r, &q->n) != 0 || q->n < 1 || q->n > CS_IPC_RANDOM_MAX ? -1 : 0;
	case CS_IPC_FIND_KEY:
	case CS_IPC_PUBLIC_KEY:
		return rd_keyref(r, &q->key);
	case CS_IPC_SIGN:
	case CS_IPC_BIND:
		if (rd_purpose(r, &q->purpose) != 0 || rd_keyref(r, &q->key) != 0)
			return -1;
		q->key.purpose = q->purpose;
		if (q->type == CS_IPC_BIND)
			return 0;
		if (rd_bytes(r, sizeof(q->digest), &d) != 0)
			return -1;
		memcpy(q->digest, d, sizeof(q->digest));
		return 0;
	}
	return -1;
}

cs_err cs_ipc_decode_request(const uint8_t *frame, size_t len, cs_ipc_request *out)
{
	ipc_rd r;
	unsigned type = 0;
	cs_err err;

	if (out == NULL)
		return CS_E_INVALID_ARG;
	memset(out, 0, sizeof(*out));
	err = rd_header(frame, len, &type, &r);
	if (err != CS_OK)
		return err;
	if (type & CS_IPC_REPLY)
		return CS_E_IPC;
	if (!type_known(type))
		return CS_E_NOT_FOUND;
	out->type = (cs_ipc_type)type;
	if (rd_request_payload(&r, out) != 0 || r.left != 0) {
		memset(out, 0, sizeof(*out));
		return CS_E_IPC;
	}
	return CS_OK;
}

static cs_err wr_request_payload(ipc_wr *w, const cs_ipc_request *q)
{
	cs_err err;

	switch (q->type) {
	case CS_IPC_HELLO:
		if (q->version != CS_IPC_VERSION)
			return CS_E_INVALID_ARG;
		wr_uint(w, q->version, 4);
		return CS_OK;
	case CS_IPC_INFO:
	case CS_IPC_MECHANISMS:
		return CS_OK;
	case CS_IPC_RANDOM:
		if (q->n < 1 || q->n > CS_IPC_RANDOM_MAX)
			return CS_E_INVALID_ARG;
		wr_uint(w, q->n, 4);
		return CS_OK;
	case CS_IPC_FIND_KEY:
	case CS_IPC_PUBLIC_KEY:
		return wr_keyref(w, &q->key);
	case CS_IPC_SIGN:
	case CS_IPC_BIND:
		err = wr_purpose(w, &q->purpose);
		if (err == CS_OK)
			err = wr_keyref(w, &q->key);
		if (err == CS_OK && q->type == CS_IPC_SIGN)
			wr_bytes(w, q->digest, sizeof(q->digest));
		return err;
	}
	return CS_E_INVALID_ARG;
}

cs_err cs_ipc_encode_request(const cs_ipc_request *req, uint8_t *frame, size_t cap, size_t *len)
{
	ipc_wr w = {frame, cap, 0, 0};

	if (len == NULL)
		return CS_E_INVALID_ARG;
	if (req == NULL || frame == NULL || !type_known((unsigned)req->type))
		return wr_finish(&w, CS_E_INVALID_ARG, len);
	wr_header(&w, (unsigned)req->type);
	return wr_finish(&w, wr_request_payload(&w, req), len);
}

/* ---- replies ----------------------------------------------------------- */

static int rd_info(ipc_rd *r, cs_ipc_reply *y)
{
	cs_token_info *i = &y->info;

	if (rd_str8(r, i->label, sizeof(i->label)) != 0 ||
	    rd_str8(r, i->manufacturer, sizeof(i->manufacturer)) != 0 ||
	    rd_str8(r, i->model, sizeof(i->model)) != 0 ||
	    rd_str8(r, i->serial, sizeof(i->serial)) != 0)
		return -1;
	if (rd_u8_uint(r, &i->hw_major) != 0 || rd_u8_uint(r, &i->hw_minor) != 0 ||
	    rd_u8_uint(r, &i->fw_major) != 0 || rd_u8_uint(r, &i->fw_minor) != 0 ||
	    rd_ulong(r, &i->flags) != 0)
		return -1;
	if (rd_str8(r, i->module_manufacturer, sizeof(i->module_manufacturer)) != 0 ||
	    rd_str8(r, i->module_description, sizeof(i->module_description)) != 0)
		return -1;
	if (rd_u8_uint(r, &i->module_major) != 0 || rd_u8_uint(r, &i->module_minor) != 0 ||
	    rd_u8_uint(r, &i->cryptoki_major) != 0 || rd_u8_uint(r, &i->cryptoki_minor) != 0 ||
	    rd_ulong(r, &i->slot_id) != 0)
		return -1;
	return rd_uint(r, 8, &y->recoveries) != 0 || rd_uint(r, 8, &y->reinitializations) != 0 ? -1
												 : 0;
}

static int rd_mechanisms(ipc_rd *r, cs_ipc_reply *y)
{
	uint8_t count, listed;

	if (rd_u8(r, &count) != 0 || count != CS_TOKEN_MECHANISMS)
		return -1;
	for (size_t k = 0; k < CS_TOKEN_MECHANISMS; k++) {
		cs_token_mechanism *m = &y->mech[k];

		if (rd_ulong(r, &m->type) != 0 || rd_u8(r, &listed) != 0 || listed > 1 ||
		    rd_ulong(r, &m->flags) != 0 || rd_ulong(r, &m->min_key_size) != 0 ||
		    rd_ulong(r, &m->max_key_size) != 0 ||
		    rd_str8(r, m->problem, sizeof(m->problem)) != 0)
			return -1;
		m->listed = listed;
	}
	return 0;
}

static int rd_sig(ipc_rd *r, cs_es256_sig *s)
{
	const uint8_t *b;
	uint8_t n;

	if (rd_bytes(r, sizeof(s->raw), &b) != 0)
		return -1;
	memcpy(s->raw, b, sizeof(s->raw));
	if (rd_u8(r, &n) != 0 || n < 8 || n > sizeof(s->der) || rd_bytes(r, n, &b) != 0)
		return -1;
	memcpy(s->der, b, n);
	s->der_len = n;
	return 0;
}

static int rd_reply_payload(ipc_rd *r, uint32_t expect_n, cs_ipc_reply *y)
{
	uint64_t n;

	switch (y->type) {
	case CS_IPC_HELLO:
		return rd_u32(r, &y->version) != 0 || y->version != CS_IPC_VERSION ||
				       rd_u32(r, &y->random_max) != 0 || y->random_max < 1 ||
				       y->random_max > CS_IPC_RANDOM_MAX
			       ? -1
			       : 0;
	case CS_IPC_INFO:
		return rd_info(r, y);
	case CS_IPC_RANDOM:
		y->data_len = expect_n;
		return rd_bytes(r, expect_n, &y->data);
	case CS_IPC_FIND_KEY:
		return rd_keyref(r, &y->key);
	case CS_IPC_PUBLIC_KEY:
		if (rd_uint(r, 2, &n) != 0 || n < 1 || n > CS_IPC_SPKI_MAX)
			return -1;
		y->data_len = (size_t)n;
		return rd_bytes(r, y->data_len, &y->data);
	case CS_IPC_SIGN:
		return rd_sig(r, &y->sig);
	case CS_IPC_MECHANISMS:
		return rd_mechanisms(r, y);
	case CS_IPC_BIND:
		return 0;
	}
	return -1;
}

cs_err cs_ipc_decode_reply(const uint8_t *frame, size_t len, cs_ipc_type expect, uint32_t expect_n,
			   cs_ipc_reply *out)
{
	ipc_rd r;
	unsigned type = 0;
	uint32_t status;
	cs_err err;

	if (out == NULL)
		return CS_E_INVALID_ARG;
	memset(out, 0, sizeof(*out));
	if (!type_known((unsigned)expect) ||
	    (expect == CS_IPC_RANDOM) != (expect_n >= 1 && expect_n <= CS_IPC_RANDOM_MAX))
		return CS_E_INVALID_ARG;
	err = rd_header(frame, len, &type, &r);
	if (err != CS_OK)
		return err;
	if (type != ((unsigned)expect | CS_IPC_REPLY) || rd_u32(&r, &status) != 0 ||
	    status >= (uint32_t)CS_ERR_COUNT)
		return CS_E_IPC;
	out->type = expect;
	out->status = (cs_err)status;
	if (status == CS_OK ? rd_reply_payload(&r, expect_n, out) != 0
			    : r.left != 0 && rd_cause(&r, out) != 0) {
		memset(out, 0, sizeof(*out));
		return CS_E_IPC;
	}
	if (r.left != 0) {
		memset(out, 0, sizeof(*out));
		return CS_E_IPC;
	}
	return CS_OK;
}

static cs_err wr_info(ipc_wr *w, const cs_ipc_reply *y)
{
	const cs_token_info *i = &y->info;

	if (wr_str8(w, i->label, sizeof(i->label)) != CS_OK ||
	    wr_str8(w, i->manufacturer, sizeof(i->manufacturer)) != CS_OK ||
	    wr_str8(w, i->model, sizeof(i->model)) != CS_OK ||
	    wr_str8(w, i->serial, sizeof(i->serial)) != CS_OK)
		return CS_E_INVALID_ARG;
	if (wr_u8_field(w, i->hw_major) != CS_OK || wr_u8_field(w, i->hw_minor) != CS_OK ||
	    wr_u8_field(w, i->fw_major) != CS_OK || wr_u8_field(w, i->fw_minor) != CS_OK)
		return CS_E_INVALID_ARG;
	wr_uint(w, i->flags, 8);
	if (wr_str8(w, i->module_manufacturer, sizeof(i->module_manufacturer)) != CS_OK ||
	    wr_str8(w, i->module_description, sizeof(i->module_description)) != CS_OK)
		return CS_E_INVALID_ARG;
	if (wr_u8_field(w, i->module_major) != CS_OK || wr_u8_field(w, i->module_minor) != CS_OK ||
	    wr_u8_field(w, i->cryptoki_major) != CS_OK || wr_u8_field(w, i->cryptoki_minor) != CS_OK)
		return CS_E_INVALID_ARG;
	wr_uint(w, i->slot_id, 8);
	wr_uint(w, y->recoveries, 8);
	wr_uint(w, y->reinitializations, 8);
	return CS_OK;
}

static cs_err wr_mechanisms(ipc_wr *w, const cs_ipc_reply *y)
{
	wr_uint(w, CS_TOKEN_MECHANISMS, 1);
	for (size_t k = 0; k < CS_TOKEN_MECHANISMS; k++) {
		const cs_token_mechanism *m = &y->mech[k];

		wr_uint(w, m->type, 8);
		wr_uint(w, m->listed != 0, 1);
		wr_uint(w, m->flags, 8);
		wr_uint(w, m->min_key_size, 8);
		wr_uint(w, m->max_key_size, 8);
		if (wr_str8(w, m->problem, sizeof(m->problem)) != CS_OK)
			return CS_E_INVALID_ARG;
	}
	return CS_OK;
}

static cs_err wr_reply_payload(ipc_wr *w, const cs_ipc_reply *y)
{
	switch (y->type) {
	case CS_IPC_HELLO:
		if (y->version != CS_IPC_VERSION || y->random_max < 1 ||
		    y->random_max > CS_IPC_RANDOM_MAX)
			return CS_E_INVALID_ARG;
		wr_uint(w, y->version, 4);
		wr_uint(w, y->random_max, 4);
		return CS_OK;
	case CS_IPC_INFO:
		return wr_info(w, y);
	case CS_IPC_RANDOM:
		if (y->data == NULL || y->data_len < 1 || y->data_len > CS_IPC_RANDOM_MAX)
			return CS_E_INVALID_ARG;
		wr_bytes(w, y->data, y->data_len);
		return CS_OK;
	case CS_IPC_FIND_KEY:
		return wr_keyref(w, &y->key);
	case CS_IPC_PUBLIC_KEY:
		if (y->data == NULL || y->data_len < 1 || y->data_len > CS_IPC_SPKI_MAX)
			return CS_E_INVALID_ARG;
		wr_uint(w, y->data_len, 2);
		wr_bytes(w, y->data, y->data_len);
		return CS_OK;
	case CS_IPC_SIGN:
		if (y->sig.der_len < 8 || y->sig.der_len > sizeof(y->sig.der))
			return CS_E_INVALID_ARG;
		wr_bytes(w, y->sig.raw, sizeof(y->sig.raw));
		wr_uint(w, y->sig.der_len, 1);
		wr_bytes(w, y->sig.der, y->sig.der_len);
		return CS_OK;
	case CS_IPC_MECHANISMS:
		return wr_mechanisms(w, y);
	case CS_IPC_BIND:
		return CS_OK;
	}
	return CS_E_INVALID_ARG;
}

cs_err cs_ipc_encode_reply(const cs_ipc_reply *reply, uint8_t *frame, size_t cap, size_t *len)
{
	ipc_wr w = {frame, cap, 0, 0};

	if (len == NULL)
		return CS_E_INVALID_ARG;
	if (reply == NULL || frame == NULL || !type_known((unsigned)reply->type) ||
	    (unsigned)reply->status >= (unsigned)CS_ERR_COUNT)
		return wr_finish(&w, CS_E_INVALID_ARG, len);
	wr_header(&w, (unsigned)reply->type | CS_IPC_REPLY);
	wr_uint(&w, (uint64_t)reply->status, 4);
	cs_err err = wr_cause(&w, reply);
	if (err == CS_OK && reply->status == CS_OK)
		err = wr_reply_payload(&w, reply);
	return wr_finish(&w, err, len);
}

/* ---- names ------------------------------------------------------------- */

const char *cs_ipc_type_name(unsigned type)
{
	static const char *const names[] = {
		[CS_IPC_HELLO] = "HELLO",
		[CS_IPC_INFO] = "INFO",
		[CS_IPC_RANDOM] = "RANDOM",
		[CS_IPC_FIND_KEY] = "FIND_KEY",
		[CS_IPC_PUBLIC_KEY] = "PUBLIC_KEY",
		[CS_IPC_SIGN] = "SIGN",
		[CS_IPC_MECHANISMS] = "MECHANISMS",
		[CS_IPC_BIND] = "BIND",
	};

	return type_known(type) ? names[type] : "?";
}

const char *cs_key_purpose_text(const cs_key_purpose *p, char *buf, size_t len)
{
	if (buf == NULL || len == 0)
		return "";
	if (p == NULL) {
		snprintf(buf, len, "?");
		return buf;
	}
	switch (p->kind) {
	case CS_KEY_PURPOSE_NONE:
		snprintf(buf, len, "none");
		break;
	case CS_KEY_PURPOSE_CERTIFICATE:
		snprintf(buf, len, "certificate");
		break;
	case CS_KEY_PURPOSE_TLS:
		snprintf(buf, len, "tls");
		break;
	case CS_KEY_PURPOSE_PROFILE:
		snprintf(buf, len, "profile %.*s", CS_KEY_PROFILE_NAME_MAX, p->profile);
		break;
	default:
		snprintf(buf, len, "?");
		break;
	}
	return buf;
}
