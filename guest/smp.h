/* Application processor bring-up with INIT-SIPI-SIPI through the xAPIC (Intel SDM 8.4.4). */
#ifndef TGUEST_SMP_H
#define TGUEST_SMP_H

#include <stdint.h>

#include "acpi.h"

enum cpu_state {
	CPU_ABSENT = 0,
	CPU_STARTED = 1, /* AP reached 64-bit C code */
	CPU_DONE = 2, /* task finished, result valid */
};

struct cpu {
	uint32_t apic_id; /* from the MADT */
	uint32_t seen_apic; /* what the CPU itself reported via CPUID */
	volatile uint32_t state;
	uint64_t result;
	const char *error; /* why it did not start, NULL if it did */
};

/* cpus[0] is the BSP, the rest follow MADT order. */
extern struct cpu cpus[ACPI_MAX_CPUS];
extern unsigned int ncpus;

/* Starts every enabled AP once; later calls do nothing. */
void smp_start_all(void);
uint64_t smp_task_expected(unsigned int idx);

#endif
