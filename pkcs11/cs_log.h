/*
 * cs_log: one line per event on stderr (or a configured stream), logfmt or
 * JSON, with an RFC 3339 UTC timestamp, level and the reporting function.
 *
 *   ts=2026-11-23T10:00:00.123Z level=error fn=token_login msg="token PIN rejected"
 *
 * cs_log_fields() adds named fields after msg: in logfmt as key=value
 * (strings quoted), in JSON as members of their own (numbers as numbers):
 *
 *   {"ts":"...","level":"info","fn":"on_request","msg":"request","method":"GET","status":200,...}
 *
 * Log once, where an error is handled. Never pass secrets (PINs, credentials,
 * salts) to these functions. Thread-safe: each line is written with a single
 * write(2) call.
 */
#ifndef CS_LOG_H
#define CS_LOG_H

#include <stdarg.h>
#include <stddef.h>

typedef enum { CS_LOG_DEBUG, CS_LOG_INFO, CS_LOG_WARN, CS_LOG_ERROR } cs_log_level;
/* CS_LOG_TEXT: "warning: msg key=value", no time stamp or function, for a
 * person reading a command's output (credsignd --check-config); the
 * configuration offers logfmt and json only. */
typedef enum { CS_LOG_LOGFMT, CS_LOG_JSON, CS_LOG_TEXT } cs_log_format;

void cs_log_configure(cs_log_level min_level, cs_log_format format, int fd);
/* Parse "debug"/"info"/"warn"/"error" (returns -1 on anything else). */
int cs_log_level_parse(const char *name);
int cs_log_format_parse(const char *name);

void cs_log_write(cs_log_level level, const char *fn, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void cs_log_vwrite(cs_log_level level, const char *fn, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

typedef struct {
	const char *key; /* [a-z_]+ */
	const char *text; /* a string value, or NULL for number */
	double number;
} cs_log_field;
void cs_log_fields(cs_log_level level, const char *fn, const char *msg, const cs_log_field *fields,
		   size_t n);
/* Whether a line at this level would be written. */
int cs_log_enabled(cs_log_level level);

#define cs_log_debug(...) cs_log_write(CS_LOG_DEBUG, __func__, __VA_ARGS__)
#define cs_log_info(...) cs_log_write(CS_LOG_INFO, __func__, __VA_ARGS__)
#define cs_log_warn(...) cs_log_write(CS_LOG_WARN, __func__, __VA_ARGS__)
#define cs_log_error(...) cs_log_write(CS_LOG_ERROR, __func__, __VA_ARGS__)

#endif
