/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * ACPI tables generated at VM start: RSDP, XSDT, FADT (with FACS), MADT, DSDT.
 * The DSDT comes from a small AML builder (aml.h) and describes COM1, the RTC,
 * the PS/2 controller, the \_S5 sleep state and the VMBus device.
 */
#ifndef VIRIDIAN_BOOT_ACPI_H
#define VIRIDIAN_BOOT_ACPI_H

#include "vid/guest_mem.h"

#include <stdint.h>

#define ACPI_MAX_CPUS 256

struct acpi_config {
	unsigned ncpus;
	uint32_t apic_ids[ACPI_MAX_CPUS]; /* APIC ID of vCPU i */
};

/* Writes the tables at LAYOUT_ACPI_GPA; *rsdp_gpa gets the RSDP address. 0 or -errno. */
int acpi_tables_build(struct guest_mem *gm, const struct acpi_config *cfg, uint64_t *rsdp_gpa);

#endif
