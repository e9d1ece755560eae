/* Hosted stand-in for guest/smp.h: the harness VPs need no start-up. */
#ifndef HARNESS_SHIM_SMP_H
#define HARNESS_SHIM_SMP_H

#include "acpi.h"

void smp_start_all(void);

#endif
