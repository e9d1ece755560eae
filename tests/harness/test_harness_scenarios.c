/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The test guest's Hyper-V scenarios (guest/scenarios/{hv,synic,stimer,vmbus}.c), compiled
 * unchanged against hosted stand-ins (shim/) and run in one "boot" on the harness: the real hv
 * partition with 4 VPs, its echo port, the VMBus server and the echo device. They cannot run
 * as a guest on this machine (no /dev/kvm), so this is where their logic and TAP counts get
 * checked. Every scenario must print exactly count() lines, none of them "not ok".
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "hv/hv_hypercall.h"
#include "scenario_shim.h"
#include "vmbus/vmbus.h"
#include "vsp/echo.h"

#define NVPS 4
#define RAM (64ull << 20)

static void run_one(const struct scenario *s, unsigned want_skips)
{
	unsigned want = s->count();

	printf("# scenario %s (%u lines)\n", s->name, want);
	shim.lines = shim.ok = shim.not_ok = shim.skipped = 0;
	shim.first_failure[0] = '\0';
	s->run();
	if (shim.not_ok)
		fail_msg("%s: %u not ok; first: %s", s->name, shim.not_ok, shim.first_failure);
	assert_int_equal(shim.lines, want);
	assert_int_equal(shim.skipped, want_skips);
}

static void test_guest_scenarios_in_process(void **state)
{
	struct harness_config cfg = {.nvps = NVPS, .ram_size = RAM, .stimers = true};
	struct harness *h = harness_create(&cfg);
	struct vmbus_server *srv;
	struct vmbus_device *echo;

	(void)state;
	assert_non_null(h);
	srv = vmbus_server_create(harness_part(h), harness_gm(h));
	echo = vsp_echo_create();
	assert_non_null(srv);
	assert_non_null(echo);
	assert_int_equal(vmbus_server_add_device(srv, echo), 0);
	/* The synic scenario's echo port (what `viridian run` would enable for tests). */
	assert_int_equal(hv_echo_port_enable(harness_part(h), 0x7001), 0);
	harness_bind(h, 0);
	shim_setup(NVPS, RAM, "tests=hv,synic,stimer,vmbus,vmbus-versions vmbus.packets=2000");

	run_one(scenario_ptr_hv_scenario, 0);
	run_one(scenario_ptr_synic_scenario, 0);
	run_one(scenario_ptr_stimer_scenario, 0);
	run_one(scenario_ptr_vmbus_scenario, 0);
	run_one(scenario_ptr_vmbus_versions_scenario, 0);

	vmbus_server_destroy(srv);
	vsp_echo_destroy(echo);
	harness_unbind();
	harness_destroy(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_guest_scenarios_in_process),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
