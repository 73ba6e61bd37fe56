/* cs_log: see cs_log.h. */
#include "cs_log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int log_min_level = CS_LOG_INFO;
static _Atomic int log_format = CS_LOG_LOGFMT;
static _Atomic int log_fd = STDERR_FILENO;

void cs_log_configure(cs_log_level min_level, cs_log_format format, int fd)
{
	log_min_level = (int)min_level;
	log_format = (int)format;
	log_fd = fd;
}

int cs_log_level_parse(const char *name)
{
	static const char *const names[] = {"debug", "info", "warn", "error"};
	for (int i = 0; i < 4; i++)
		if (strcmp(name, names[i]) == 0)
			return i;
	return -1;
}

int cs_log_format_parse(const char *name)
{
	if (strcmp(name, "logfmt") == 0)
		return CS_LOG_LOGFMT;
	if (strcmp(name, "json") == 0)
		return CS_LOG_JSON;
	return -1;
}

/* Append s to buf[*len..cap) escaping quotes, backslashes and controls. */
static void append_escaped(char *buf, size_t *len, size_t cap, const char *s)
{
	for (; *s != '\0' && *len + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			buf[(*len)++] = '\\';
			buf[(*len)++] = (char)c;
		} else if (c == '\n') {
			buf[(*len)++] = '\\';
			buf[(*len)++] = 'n';
		} else if (c < 0x20 || c == 0x7f) {
			*len += (size_t)snprintf(buf + *len, cap - *len, "\\u%04x", c);
		} else {
			buf[(*len)++] = (char)c;
		}
	}
}

/* Append s to buf[*len..cap) for a person to read (CS_LOG_TEXT): quotes
 * kept, control characters escaped so that an event stays one line. */
static void append_text(char *buf, size_t *len, size_t cap, const char *s)
{
	for (; *s != '\0' && *len + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c == 0x7f)
			*len += (size_t)snprintf(buf + *len, cap - *len, "\\u%04x", c);
		else
			buf[(*len)++] = (char)c;
	}
}

/* Append s to buf[*len..cap), cut to leave one byte free; nothing once the
 * line is full (*len >= cap - 1). */
static void append_raw(char *buf, size_t *len, size_t cap, const char *s)
{
	if (*len + 1 >= cap)
		return;
	size_t room = cap - *len - 1, n = strnlen(s, room);
	memcpy(buf + *len, s, n);
	*len += n;
}

int cs_log_enabled(cs_log_level level)
{
	return (int)level >= log_min_level;
}

/* One line: the common head, msg, then the fields. */
static void write_line(cs_log_level level, const char *fn, const char *msg,
		       const cs_log_field *fields, size_t nfields)
{
	static const char *const level_names[] = {"debug", "info", "warn", "error"};
	struct timespec now;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	char ts[96];
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 now.tv_nsec / 1000000);

	char line[4096], number[32];
	size_t len = 0;
	const size_t cap = sizeof(line) - 2;
	int json = log_format == CS_LOG_JSON;
	if (log_format == CS_LOG_TEXT) { /* "warning: msg key=value" */
		static const char *const text_names[] = {"debug", "note", "warning", "error"};
		append_raw(line, &len, cap, text_names[level]);
		append_raw(line, &len, cap, ": ");
		append_text(line, &len, cap, msg);
		for (size_t i = 0; i < nfields; i++) {
			append_raw(line, &len, cap, " ");
			append_raw(line, &len, cap, fields[i].key);
			append_raw(line, &len, cap, "=");
			if (fields[i].text == NULL)
				snprintf(number, sizeof(number), "%.15g", fields[i].number);
			append_text(line, &len, cap, fields[i].text != NULL ? fields[i].text : number);
		}
		line[len++] = '\n';
		ssize_t ignored = write(log_fd, line, len);
		(void)ignored;
		return;
	}
	append_raw(line, &len, cap, json ? "{\"ts\":\"" : "ts=");
	append_raw(line, &len, cap, ts);
	append_raw(line, &len, cap, json ? "\",\"level\":\"" : " level=");
	append_raw(line, &len, cap, level_names[level]);
	append_raw(line, &len, cap, json ? "\",\"fn\":\"" : " fn=");
	if (json)
		append_escaped(line, &len, cap, fn);
	else
		append_raw(line, &len, cap, fn);
	append_raw(line, &len, cap, json ? "\",\"msg\":\"" : " msg=\"");
	append_escaped(line, &len, cap, msg);
	append_raw(line, &len, cap, "\"");
	for (size_t i = 0; i < nfields; i++) {
		append_raw(line, &len, cap, json ? ",\"" : " ");
		append_raw(line, &len, cap, fields[i].key);
		append_raw(line, &len, cap, json ? "\":" : "=");
		if (fields[i].text != NULL) {
			append_raw(line, &len, cap, "\"");
			append_escaped(line, &len, cap, fields[i].text);
			append_raw(line, &len, cap, "\"");
		} else {
			snprintf(number, sizeof(number), "%.15g", fields[i].number);
			append_raw(line, &len, cap, number);
		}
	}
	if (json)
		append_raw(line, &len, cap, "}");
	line[len++] = '\n';
	ssize_t ignored = write(log_fd, line, len);
	(void)ignored;
}

void cs_log_vwrite(cs_log_level level, const char *fn, const char *fmt, va_list ap)
{
	if ((int)level < log_min_level)
		return;
	char msg[2048];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	write_line(level, fn, msg, NULL, 0);
}

void cs_log_fields(cs_log_level level, const char *fn, const char *msg, const cs_log_field *fields,
		   size_t n)
{
	if ((int)level < log_min_level)
		return;
	write_line(level, fn, msg, fields, n);
}

void cs_log_write(cs_log_level level, const char *fn, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cs_log_vwrite(level, fn, fmt, ap);
	va_end(ap);
}
