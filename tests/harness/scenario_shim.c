/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Hosted runtime for the test guest's Hyper-V scenarios (guest/scenarios/{hv,synic,stimer,
 * vmbus}.c, compiled unchanged against the stand-in headers in shim/): TAP lines are counted
 * and printed as diagnostics, the guest TSC is the harness's, the memory map is the harness's.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "acpi.h"
#include "hvplat.h"
#include "pvh.h"
#include "scenario_shim.h"
#include "smp.h"
#include "tap.h"
#include "timer.h"

struct boot_info boot;
struct acpi_info acpi;
uint64_t tsc_khz = 2000000; /* harness guest TSC: 2 GHz */
struct shim_counts shim;

void shim_setup(unsigned ncpus, uint64_t ram_size, const char *cmdline)
{
	memset(&boot, 0, sizeof(boot));
	memset(&shim, 0, sizeof(shim));
	snprintf(boot.cmdline, sizeof(boot.cmdline), "%s", cmdline ? cmdline : "");
	boot.memmap_count = 1;
	boot.memmap[0].addr = 0;
	boot.memmap[0].size = ram_size;
	boot.memmap[0].type = 1;
	acpi.ncpus = ncpus;
	acpi.lapic_addr = 0xfee00000;
}

void smp_start_all(void)
{
}

uint64_t timer_deadline_us(uint64_t us)
{
	return hvplat_rdtsc() + us * (tsc_khz / 1000);
}

bool timer_expired(uint64_t deadline)
{
	return hvplat_rdtsc() >= deadline;
}

void udelay(uint64_t us)
{
	uint64_t end = timer_deadline_us(us);

	while (!timer_expired(end))
		;
}

void tap_ok(const char *fmt, ...)
{
	char line[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	shim.lines++;
	if (strstr(line, "# SKIP"))
		shim.skipped++;
	else
		shim.ok++;
	printf("# guest: ok - %s\n", line);
}

void tap_not_ok(const char *name, const char *reason_fmt, ...)
{
	char reason[256];
	va_list ap;

	va_start(ap, reason_fmt);
	vsnprintf(reason, sizeof(reason), reason_fmt, ap);
	va_end(ap);
	shim.lines++;
	shim.not_ok++;
	snprintf(shim.first_failure, sizeof(shim.first_failure), "%s # %s", name, reason);
	printf("# guest: not ok - %s # %s\n", name, reason);
}
