/* metrics_test: the Prometheus text of the metrics module, and log lines
 * with fields in both formats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "cs_log.h"
#include "metrics.h"

/* The value of the line that starts with prefix (-1 when absent). */
static double value_of(const char *text, const char *prefix)
{
	for (const char *line = text; line != NULL && *line; line = strchr(line, '\n')) {
		if (*line == '\n')
			line++;
		if (strncmp(line, prefix, strlen(prefix)) == 0)
			return strtod(line + strlen(prefix), NULL);
	}
	return -1;
}

static void test_requests_and_histograms(void **state)
{
	(void)state;
	cs_metrics_reset();
	for (int i = 0; i < 10; i++)
		cs_metrics_request("generate", 200, 800000); /* 0.8 ms */
	cs_metrics_request("generate", 503, 30000000);     /* 30 ms */
	cs_metrics_request("certify", 201, 2000000);
	cs_metrics_request("made-up-route", 999, 1000); /* -> other/other */
	cs_metrics_gauges g = {.handshaking = 3, .authenticated = 7, .evicted = 11, .timed_out = 2,
			       .active_kid = "kid-1"};
	char *text = NULL;
	assert_int_equal(cs_metrics_render(&g, &text), CS_OK);
	assert_true(value_of(text, "credsign_requests_total{route=\"generate\",code=\"200\"} ") == 10);
	assert_true(value_of(text, "credsign_requests_total{route=\"generate\",code=\"503\"} ") == 1);
	assert_true(value_of(text, "credsign_requests_total{route=\"certify\",code=\"201\"} ") == 1);
	assert_true(value_of(text, "credsign_requests_total{route=\"other\",code=\"other\"} ") == 1);
	assert_null(strstr(text, "made-up-route"));
	/* cumulative buckets: 10 at or below 1 ms, all 11 at +Inf */
	assert_true(value_of(text, "credsign_request_duration_seconds_bucket{route=\"generate\",le=\"0.0005\"} ") == 0);
	assert_true(value_of(text, "credsign_request_duration_seconds_bucket{route=\"generate\",le=\"0.001\"} ") == 10);
	assert_true(value_of(text, "credsign_request_duration_seconds_bucket{route=\"generate\",le=\"0.025\"} ") == 10);
	assert_true(value_of(text, "credsign_request_duration_seconds_bucket{route=\"generate\",le=\"0.05\"} ") == 11);
	assert_true(value_of(text, "credsign_request_duration_seconds_bucket{route=\"generate\",le=\"+Inf\"} ") == 11);
	assert_true(value_of(text, "credsign_request_duration_seconds_count{route=\"generate\"} ") == 11);
	double sum = value_of(text, "credsign_request_duration_seconds_sum{route=\"generate\"} ");
	assert_true(sum > 0.0379 && sum < 0.0381);
	assert_true(value_of(text, "credsign_connections{state=\"handshaking\"} ") == 3);
	assert_true(value_of(text, "credsign_connections{state=\"authenticated\"} ") == 7);
	assert_true(value_of(text, "credsign_connections_evicted_total ") == 11);
	assert_true(value_of(text, "credsign_signing_key_info{kid=\"kid-1\"} ") == 1);
	free(text);
}

static void test_token_commit_audit(void **state)
{
	(void)state;
	cs_metrics_reset();
	cs_metrics_token_call("C_Sign", 40000, 0);
	cs_metrics_token_call("C_Sign", 40000, 0);
	cs_metrics_token_call("C_GenerateRandom", 12000, 0x30 /* CKR_DEVICE_ERROR */);
	cs_metrics_token_call("C_Bogus", 1, 0);
	cs_metrics_commit(700000, 5);
	cs_metrics_commit(900000, 1);
	cs_metrics_audit_entry();
	cs_metrics_gauges g = {0};
	char *text = NULL;
	assert_int_equal(cs_metrics_render(&g, &text), CS_OK);
	assert_true(value_of(text, "credsign_token_calls_total{function=\"C_Sign\",result=\"ok\"} ") == 2);
	assert_true(value_of(text, "credsign_token_calls_total{function=\"C_GenerateRandom\",result=\"error\"} ") == 1);
	assert_true(value_of(text, "credsign_token_calls_total{function=\"other\",result=\"ok\"} ") == 1);
	assert_true(value_of(text, "credsign_token_call_duration_seconds_bucket{function=\"C_Sign\",le=\"5e-05\"} ") == 2);
	assert_true(value_of(text, "credsign_store_commit_batch_size_bucket{le=\"1\"} ") == 1);
	assert_true(value_of(text, "credsign_store_commit_batch_size_bucket{le=\"8\"} ") == 2);
	assert_true(value_of(text, "credsign_store_commit_batch_size_sum ") == 6);
	assert_true(value_of(text, "credsign_audit_entries_total ") == 1);
	assert_null(strstr(text, "credsign_signing_key_info"));
	free(text);
}

/* The supervisor's restarts (privsep.h), counted in the shared mapping
 * before a fork, are seen by the process that renders. */
static void test_process_restarts(void **state)
{
	(void)state;
	cs_metrics_reset();
	char *text = NULL;
	cs_metrics_gauges g = {0};
	assert_int_equal(cs_metrics_render(&g, &text), CS_OK);
	assert_true(value_of(text, "credsign_process_restarts_total{process=\"key\"} ") == 0);
	assert_true(value_of(text, "credsign_process_restarts_total{process=\"network\"} ") == 0);
	free(text);
	assert_int_equal(cs_metrics_share(), CS_OK);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		cs_metrics_process_restart(CS_METRICS_KEY_PROCESS);
		cs_metrics_process_restart(CS_METRICS_KEY_PROCESS);
		cs_metrics_process_restart(CS_METRICS_NETWORK_PROCESS);
		cs_metrics_process_restart((cs_metrics_process)7); /* not a process: ignored */
		_exit(0);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(cs_metrics_render(&g, &text), CS_OK);
	assert_non_null(strstr(text, "# TYPE credsign_process_restarts_total counter\n"));
	assert_true(value_of(text, "credsign_process_restarts_total{process=\"key\"} ") == 2);
	assert_true(value_of(text, "credsign_process_restarts_total{process=\"network\"} ") == 1);
	free(text);
}

/* Log lines written to a pipe, read back. */
static void read_line(int fd, char *buf, size_t cap)
{
	ssize_t n = read(fd, buf, cap - 1);
	assert_true(n > 0);
	buf[n] = '\0';
}

static void test_log_fields(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	cs_log_field fields[] = {{"method", "GET", 0}, {"path", "/a\"b\nc", 0}, {"status", NULL, 200},
				 {"ms", NULL, 1.25}};
	cs_log_configure(CS_LOG_INFO, CS_LOG_JSON, p[1]);
	cs_log_fields(CS_LOG_INFO, "on_request", "request", fields, 4);
	char line[1024];
	read_line(p[0], line, sizeof(line));
	json_error_t err;
	json_t *j = json_loads(line, 0, &err);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "msg")), "request");
	assert_string_equal(json_string_value(json_object_get(j, "path")), "/a\"b\nc");
	assert_true(json_is_integer(json_object_get(j, "status")) || json_is_real(json_object_get(j, "status")));
	assert_true(json_number_value(json_object_get(j, "status")) == 200);
	assert_true(json_number_value(json_object_get(j, "ms")) == 1.25);
	json_decref(j);
	cs_log_configure(CS_LOG_INFO, CS_LOG_LOGFMT, p[1]);
	cs_log_fields(CS_LOG_INFO, "on_request", "request", fields, 4);
	read_line(p[0], line, sizeof(line));
	assert_non_null(strstr(line, " msg=\"request\" method=\"GET\" path=\"/a\\\"b\\nc\" status=200 ms=1.25\n"));
	/* below the level: nothing */
	cs_log_configure(CS_LOG_WARN, CS_LOG_LOGFMT, p[1]);
	assert_false(cs_log_enabled(CS_LOG_INFO));
	cs_log_fields(CS_LOG_INFO, "x", "dropped", fields, 1);
	cs_log_write(CS_LOG_WARN, "x", "kept");
	read_line(p[0], line, sizeof(line));
	assert_null(strstr(line, "dropped"));
	assert_non_null(strstr(line, "kept"));
	cs_log_configure(CS_LOG_INFO, CS_LOG_LOGFMT, 2);
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_requests_and_histograms),
		cmocka_unit_test(test_token_commit_audit),
		cmocka_unit_test(test_process_restarts),
		cmocka_unit_test(test_log_fields),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
