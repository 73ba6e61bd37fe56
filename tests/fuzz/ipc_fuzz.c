/* ipc_fuzz: the key process's frame codec (token_ipc.h) on arbitrary bytes,
 * as a request and as the reply to each request type. Whatever decodes must
 * encode back to the very same bytes (every valid frame has one encoding)
 * and decode again to the same values (an error reply's cause included);
 * whatever is refused leaves the output zeroed (never a partial result).
 * Any mismatch aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "token_ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i] != 0)
			return 0;
	return 1;
}

static void check_request(const uint8_t *data, size_t size)
{
	static uint8_t again[CS_IPC_FRAME_MAX];
	cs_ipc_request q, r;
	size_t len = 0;

	cs_err err = cs_ipc_decode_request(data, size, &q);
	if (err != CS_OK) {
		if ((err != CS_E_IPC && err != CS_E_NOT_FOUND) || !all_zero(&q, sizeof(q)))
			abort();
		return;
	}
	if (size > CS_IPC_FRAME_MAX || (q.type == CS_IPC_SIGN && q.purpose.kind == CS_KEY_PURPOSE_NONE))
		abort();
	if (cs_ipc_encode_request(&q, again, sizeof(again), &len) != CS_OK || len != size ||
	    memcmp(again, data, size) != 0)
		abort();
	if (cs_ipc_decode_request(again, len, &r) != CS_OK || memcmp(&q, &r, sizeof(q)) != 0)
		abort();
}

/* Compare two decoded replies: the data pointers point into different
 * frames, their bytes must be equal. */
static int replies_equal(const cs_ipc_reply *a, const cs_ipc_reply *b)
{
	cs_ipc_reply x = *a, y = *b;

	if (x.data_len != y.data_len || (x.data_len > 0 && memcmp(x.data, y.data, x.data_len) != 0))
		return 0;
	x.data = y.data = NULL;
	return memcmp(&x, &y, sizeof(x)) == 0;
}

static void check_reply(const uint8_t *data, size_t size, cs_ipc_type expect, uint32_t n)
{
	static uint8_t again[CS_IPC_FRAME_MAX];
	cs_ipc_reply y, z;
	size_t len = 0;

	cs_err err = cs_ipc_decode_reply(data, size, expect, n, &y);
	if (err != CS_OK) {
		if (err != CS_E_IPC || !all_zero(&y, sizeof(y)))
			abort();
		return;
	}
	if (y.type != expect ||
	    (y.status == CS_OK && expect == CS_IPC_RANDOM && y.data_len != n) ||
	    /* a cause only on an error reply, its name and value together */
	    (y.status == CS_OK && (y.cause_function[0] != '\0' || y.cause_rv != 0)) ||
	    ((y.cause_function[0] != '\0') != (y.cause_rv != 0)) ||
	    (y.cause_function[0] != '\0' && strncmp(y.cause_function, "C_", 2) != 0) ||
	    (y.data != NULL && (y.data < data || y.data + y.data_len > data + size)))
		abort();
	if (cs_ipc_encode_reply(&y, again, sizeof(again), &len) != CS_OK || len != size ||
	    memcmp(again, data, size) != 0)
		abort();
	if (cs_ipc_decode_reply(again, len, expect, n, &z) != CS_OK || !replies_equal(&y, &z))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_request(data, size);
	/* RANDOM: the n the frame would carry if it were well formed, and a
	 * neighbour, so that both the match and the mismatch are reached */
	uint32_t n = size >= CS_IPC_HEADER_LEN + 4 + 1 ? (uint32_t)(size - CS_IPC_HEADER_LEN - 4) : 1;
	if (n > CS_IPC_RANDOM_MAX)
		n = CS_IPC_RANDOM_MAX;
	for (cs_ipc_type t = CS_IPC_HELLO; t <= CS_IPC_BIND; t++)
		check_reply(data, size, t, t == CS_IPC_RANDOM ? n : 0);
	check_reply(data, size, CS_IPC_RANDOM, n > 1 ? n - 1 : 2);
	return 0;
}
