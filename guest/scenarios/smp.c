/* smp: every enabled CPU in the MADT (BSP included) starts and runs a small task. */
#include <stdint.h>

#include "acpi.h"
#include "lib/printf.h"
#include "scenario.h"
#include "smp.h"
#include "tap.h"

static unsigned int smp_count(void)
{
	/* One line per MADT CPU; if the MADT is missing, one failing line. */
	return acpi.ncpus ? acpi.ncpus : 1;
}

static void smp_run(void)
{
	unsigned int i;

	if (!acpi.ncpus) {
		tap_not_ok("smp", "no CPUs from the MADT: %s",
			   acpi.problem[0] ? acpi.problem : "no MADT");
		return;
	}
	smp_start_all();
	for (i = 0; i < ncpus && i < acpi.ncpus; i++) {
		const struct cpu *c = &cpus[i];
		char name[64];

		snprintf(name, sizeof(name), "smp: cpu %u apic id %u", i, c->apic_id);
		if (c->error)
			tap_not_ok(name, "%s", c->error);
		else if (c->state != CPU_DONE)
			tap_not_ok(name, "task not done");
		else if (c->seen_apic != c->apic_id)
			tap_not_ok(name, "CPUID reports apic id %u", c->seen_apic);
		else if (c->result != smp_task_expected(i))
			tap_not_ok(name, "task result %lu, expected %lu", (unsigned long)c->result,
				   (unsigned long)smp_task_expected(i));
		else
			tap_ok("%s ran task", name);
	}
	/* Keep the plan honest if the BSP is missing from the MADT (ncpus < acpi.ncpus). */
	for (; i < acpi.ncpus; i++)
		tap_not_ok("smp", "cpu %u: MADT entry not started", i);
}

static const struct scenario smp_scenario = {
	.name = "smp",
	.count = smp_count,
	.run = smp_run,
};
SCENARIO_REGISTER(smp_scenario);
