/*
 * fault: executes ud2 on purpose to check the exception path end to end (the guest must
 * print "not ok", "Bail out!" and still power off). Only runs when named explicitly.
 */
#include "scenario.h"

static unsigned int fault_count(void)
{
	return 1;
}

static void fault_run(void)
{
	__asm__ volatile("ud2");
}

static const struct scenario fault_scenario = {
	.name = "fault",
	.count = fault_count,
	.run = fault_run,
	.explicit_only = 1,
};
SCENARIO_REGISTER(fault_scenario);
