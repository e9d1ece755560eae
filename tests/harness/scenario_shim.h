/* SPDX-License-Identifier: GPL-2.0-only */
/* Hosted runtime for the test guest's Hyper-V scenarios: see scenario_shim.c. */
#ifndef VIRIDIAN_TESTS_HARNESS_SCENARIO_SHIM_H
#define VIRIDIAN_TESTS_HARNESS_SCENARIO_SHIM_H

#include <stdint.h>

#include "scenario.h"

struct shim_counts {
	unsigned lines, ok, not_ok, skipped;
	char first_failure[300];
};

extern struct shim_counts shim;

/* Memory map = [0, ram_size), acpi.ncpus = ncpus, boot.cmdline = cmdline; counts cleared. */
void shim_setup(unsigned ncpus, uint64_t ram_size, const char *cmdline);

extern const struct scenario *const scenario_ptr_hv_scenario;
extern const struct scenario *const scenario_ptr_hv_bench_scenario;
extern const struct scenario *const scenario_ptr_synic_scenario;
extern const struct scenario *const scenario_ptr_stimer_scenario;
extern const struct scenario *const scenario_ptr_vmbus_scenario;
extern const struct scenario *const scenario_ptr_vmbus_versions_scenario;

#endif
