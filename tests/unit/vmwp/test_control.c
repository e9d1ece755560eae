// SPDX-License-Identifier: GPL-2.0-only
/* The worker's control protocol against a control handle with no VM behind it. */
#include "vmwp/vmwp.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static struct json_object *handle(struct run_ctl *ctl, const char *line)
{
	char reply[1024];
	size_t n;
	struct json_object *o;

	vmwp_control_handle(ctl, line, reply, sizeof(reply));
	n = strlen(reply);
	/* One line, newline-terminated, nothing else. */
	assert_true(n > 1);
	assert_int_equal(reply[n - 1], '\n');
	assert_null(memchr(reply, '\n', n - 1));
	o = json_tokener_parse(reply);
	assert_non_null(o);
	return o;
}

static const char *field(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : NULL;
}

static void test_status(void **state)
{
	struct run_ctl ctl;
	struct json_object *o;
	char pid[32];

	run_ctl_init(&ctl);
	ctl.state = RUN_STATE_STARTING;
	o = handle(&ctl, "{\"id\": 41, \"cmd\": \"status\"}");
	assert_string_equal(field(o, "ok"), "true");
	assert_string_equal(field(o, "id"), "41");
	assert_string_equal(field(o, "state"), "Starting");
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	assert_string_equal(field(o, "pid"), pid);
	json_object_put(o);
	run_ctl_destroy(&ctl);
}

static void test_commands_refused_without_vm(void **state)
{
	static const char *const cmds[] = {"stop", "shutdown", "pause", "resume", "reset"};
	struct run_ctl ctl;

	run_ctl_init(&ctl);
	for (size_t i = 0; i < 5; i++) {
		char line[80];
		struct json_object *o;

		snprintf(line, sizeof(line), "{\"id\":\"x%zu\",\"cmd\":\"%s\"}", i, cmds[i]);
		o = handle(&ctl, line);
		assert_string_equal(field(o, "ok"), "false");
		assert_non_null(strstr(field(o, "error"), "the VM is Off"));
		assert_non_null(strstr(field(o, "error"), cmds[i]));
		assert_non_null(field(o, "id"));
		json_object_put(o);
	}
	/* A running state with no partition behind it (between boots) still refuses. */
	ctl.state = RUN_STATE_RUNNING;
	{
		struct json_object *o = handle(&ctl, "{\"cmd\":\"pause\"}");

		assert_string_equal(field(o, "ok"), "false");
		assert_null(field(o, "id"));
		assert_non_null(strstr(field(o, "error"), "while the VM reboots"));
		json_object_put(o);
	}
	run_ctl_destroy(&ctl);
}

/* A stop before the partition exists is remembered: the VM ends before guest code runs. */
static void test_stop_while_starting(void **state)
{
	struct run_ctl ctl;
	struct json_object *o;

	run_ctl_init(&ctl);
	ctl.state = RUN_STATE_STARTING;
	o = handle(&ctl, "{\"id\":9,\"cmd\":\"stop\"}");
	assert_string_equal(field(o, "ok"), "true");
	assert_string_equal(field(o, "state"), "Stopping");
	assert_true(ctl.stop_requested);
	json_object_put(o);
	/* Anything but stop still needs a running partition. */
	o = handle(&ctl, "{\"id\":10,\"cmd\":\"resume\"}");
	assert_string_equal(field(o, "ok"), "false");
	json_object_put(o);
	run_ctl_destroy(&ctl);
}

static void test_bad_requests(void **state)
{
	static const struct {
		const char *line, *msg;
	} cases[] = {
		{"not json", "not a JSON object"},
		{"[1,2]", "not a JSON object"},
		{"\"status\"", "not a JSON object"},
		{"{\"id\":1}", "no \"cmd\""},
		{"{\"id\":1,\"cmd\":5}", "no \"cmd\""},
		{"{\"id\":1,\"cmd\":\"format-disk\"}", "unknown cmd 'format-disk'"},
		{"{\"id\":1,\"cmd\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
		 "unknown cmd"},
	};
	struct run_ctl ctl;

	run_ctl_init(&ctl);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct json_object *o = handle(&ctl, cases[i].line);

		assert_string_equal(field(o, "ok"), "false");
		if (!strstr(field(o, "error"), cases[i].msg))
			fail_msg("case %zu: '%s'", i, field(o, "error"));
		json_object_put(o);
	}
	run_ctl_destroy(&ctl);
}

static void test_event_line(void **state)
{
	char line[1024];
	struct json_object *o;

	vmwp_control_event(RUN_STATE_OFF, "cannot open /dev/kvm: \"x\"\n", line, sizeof(line));
	assert_int_equal(line[strlen(line) - 1], '\n');
	assert_null(memchr(line, '\n', strlen(line) - 1));
	o = json_tokener_parse(line);
	assert_string_equal(field(o, "event"), "state");
	assert_string_equal(field(o, "state"), "Off");
	assert_string_equal(field(o, "reason"), "cannot open /dev/kvm: \"x\"\n");
	json_object_put(o);
	assert_string_equal(run_state_name(RUN_STATE_PAUSED), "Paused");
	assert_string_equal(run_state_name((enum run_state)99), "Unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_commands_refused_without_vm),
		cmocka_unit_test(test_stop_while_starting),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_event_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
