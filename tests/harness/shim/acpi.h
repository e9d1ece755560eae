/* Hosted stand-in for guest/acpi.h: only what the Hyper-V scenarios read. */
#ifndef HARNESS_SHIM_ACPI_H
#define HARNESS_SHIM_ACPI_H

#include <stdint.h>

#define ACPI_MAX_CPUS 64

struct acpi_info {
	unsigned int ncpus;
	uint64_t lapic_addr;
};

extern struct acpi_info acpi;

#endif
