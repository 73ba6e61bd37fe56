/*
 * token_ipc: the frame codec between a cs_token client (the network process)
 * and the key process that holds the PKCS#11 token. Pure: no I/O, no
 * allocation, no logging; thread-safe.
 *
 * One frame = one SOCK_SEQPACKET message of at most CS_IPC_FRAME_MAX bytes.
 * All integers are big-endian.
 *
 *   header (8 bytes): u16 type | u16 flags (must be 0) | u32 payload length
 *                     (== frame length - 8)
 *
 *   requests (client -> key process), payload:
 *     HELLO      1  u32 version (== CS_IPC_VERSION)
 *     INFO       2  empty
 *     RANDOM     3  u32 n, 1..CS_IPC_RANDOM_MAX
 *     FIND_KEY   4  keyref
 *     PUBLIC_KEY 5  keyref
 *     SIGN       6  purpose keyref digest (32 bytes exactly)
 *     MECHANISMS 7  empty
 *     BIND       8  purpose keyref
 *
 *   replies: type = request type | CS_IPC_REPLY; payload u32 status (a
 *   cs_err), then only when status == CS_OK:
 *     HELLO      u32 version (== CS_IPC_VERSION), u32 random_max
 *                (1..CS_IPC_RANDOM_MAX)
 *     INFO       str8 label, str8 manufacturer, str8 model, str8 serial,
 *                u8 hw_major u8 hw_minor u8 fw_major u8 fw_minor, u64 flags,
 *                str8 module_manufacturer, str8 module_description,
 *                u8 module_major u8 module_minor u8 cryptoki_major
 *                u8 cryptoki_minor, u64 slot_id, u64 recoveries,
 *                u64 reinitializations
 *     RANDOM     the n bytes asked for (payload length 4 + n)
 *     FIND_KEY   keyref (the resolved key)
 *     PUBLIC_KEY u16 len (1..CS_IPC_SPKI_MAX) + DER SubjectPublicKeyInfo
 *     SIGN       raw r||s (64 bytes), u8 der_len (8..72), der
 *     MECHANISMS u8 count (== CS_TOKEN_MECHANISMS), then per mechanism:
 *                u64 type, u8 listed (0 or 1), u64 flags, u64 min_key_size,
 *                u64 max_key_size, str8 problem (< 128 bytes)
 *     BIND       empty
 *   An error reply (status != CS_OK, a known cs_err) carries the status
 *   and, optionally, the PKCS#11 call that caused it (the key process's
 *   last failing call, token_meter.h), nothing else:
 *     cause      str8 function (1..CS_IPC_CAUSE_FUNCTION_MAX bytes: "C_"
 *                and one or more ASCII letters), u64 CK_RV (not CKR_OK)
 *
 *   keyref:  u8 label_len (0..CS_KEY_LABEL_MAX) label | u8 id_len
 *            (0..CS_KEY_ID_MAX) id
 *   purpose: u8 kind (1..3) | u8 name_len | name: for PROFILE 1..
 *            CS_KEY_PROFILE_NAME_MAX bytes of [a-z0-9._-]; other kinds 0
 *   str8:    u8 len + bytes, bounded by the destination array (room for
 *            the terminating NUL)
 *   Labels, names and str8 text never contain a NUL byte.
 *
 * Decoding is strict: every length is checked against the bytes remaining
 * and against its bound before use; trailing bytes, flags != 0, values out
 * of range and a wrong version are refused. Every valid frame has exactly
 * one encoding: decoding a frame and encoding the result gives the same
 * bytes back. Encoders check their input against the same rules
 * (CS_E_INVALID_ARG) and the capacity (CS_E_BUFFER_TOO_SMALL); on failure
 * *len is 0. Decoders zero *out first, and again on failure.
 */
#ifndef CS_TOKEN_IPC_H
#define CS_TOKEN_IPC_H

#include <stddef.h>
#include <stdint.h>

#include "cs_error.h"
#include "token.h"

#define CS_IPC_VERSION 1
#define CS_IPC_FRAME_MAX 4096
#define CS_IPC_HEADER_LEN 8
#define CS_IPC_RANDOM_MAX 2048
#define CS_IPC_SPKI_MAX 512
#define CS_IPC_REPLY 0x8000u
#define CS_IPC_CAUSE_FUNCTION_MAX 47 /* bytes of a cause's function name */

typedef enum {
	CS_IPC_HELLO = 1,
	CS_IPC_INFO,
	CS_IPC_RANDOM,
	CS_IPC_FIND_KEY,
	CS_IPC_PUBLIC_KEY,
	CS_IPC_SIGN,
	CS_IPC_MECHANISMS,
	CS_IPC_BIND
} cs_ipc_type;

/* A decoded request; fields beyond the type's are zero. */
typedef struct {
	cs_ipc_type type;
	uint32_t version;       /* HELLO */
	uint32_t n;             /* RANDOM */
	cs_key_purpose purpose; /* SIGN, BIND */
	/* FIND_KEY, PUBLIC_KEY, SIGN, BIND (key.purpose = purpose for SIGN/BIND;
	 * the encoder sends `purpose`, not key.purpose) */
	cs_key_ref key;
	uint8_t digest[32]; /* SIGN */
} cs_ipc_request;

/* A decoded reply; pointers point into the frame given to the decoder. */
typedef struct {
	cs_ipc_type type;
	cs_err status;
	uint32_t version, random_max; /* HELLO */
	cs_token_info info;           /* INFO */
	uint64_t recoveries, reinitializations; /* INFO */
	const uint8_t *data;                    /* RANDOM bytes, PUBLIC_KEY DER */
	size_t data_len;
	cs_key_ref key;    /* FIND_KEY (purpose NONE) */
	cs_es256_sig sig;  /* SIGN */
	/* MECHANISMS (name left NULL and needs 0: the client fills them) */
	cs_token_mechanism mech[CS_TOKEN_MECHANISMS];
	/* An error reply's cause: the failing PKCS#11 call ("C_Sign") and its
	 * CK_RV; "" and 0 for none (always so on a CS_OK reply). */
	char cause_function[CS_IPC_CAUSE_FUNCTION_MAX + 1];
	uint64_t cause_rv;
} cs_ipc_reply;

/* CS_OK; CS_E_IPC for any malformed frame (header, lengths, bounds,
 * trailing bytes, a reply type); CS_E_NOT_FOUND for a well-formed header
 * with an unknown request type (the key process then closes the channel). */
cs_err cs_ipc_decode_request(const uint8_t *frame, size_t len, cs_ipc_request *out)
	__attribute__((warn_unused_result));
cs_err cs_ipc_encode_request(const cs_ipc_request *req, uint8_t *frame, size_t cap, size_t *len)
	__attribute__((warn_unused_result));
/* expect: the request type it answers; expect_n: the RANDOM n asked (else 0).
 * CS_OK (out->status may still be an error the key process sent); CS_E_IPC
 * for a malformed frame or one that does not answer `expect`. */
cs_err cs_ipc_decode_reply(const uint8_t *frame, size_t len, cs_ipc_type expect, uint32_t expect_n,
			   cs_ipc_reply *out) __attribute__((warn_unused_result));
/* An error reply (status != CS_OK) carries only the status and its cause
 * (when cause_function is not ""); a cause on a CS_OK reply, a cause_rv
 * without a function, or a function name or CK_RV out of the rules above:
 * CS_E_INVALID_ARG. */
cs_err cs_ipc_encode_reply(const cs_ipc_reply *reply, uint8_t *frame, size_t cap, size_t *len)
	__attribute__((warn_unused_result));
/* "HELLO", "SIGN", ...; "?" for others. */
const char *cs_ipc_type_name(unsigned type);
/* "none", "certificate", "tls", "profile NAME" ("?" for an unknown kind)
 * into buf (truncated to len); returns buf. */
const char *cs_key_purpose_text(const cs_key_purpose *p, char *buf, size_t len);

#endif
