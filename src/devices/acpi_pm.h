/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * ACPI fixed hardware (ACPI spec, "ACPI Hardware Specification"): PM1a event block (status
 * and enable, 2 bytes each), PM1a control block, and the 3.579545 MHz PM timer. Writing
 * PM1a_CNT with SLP_EN and SLP_TYP = LAYOUT_ACPI_S5_SLP_TYP powers the VM off. The platform
 * has no SMI command port, so the OS finds SCI_EN already set (always in ACPI mode).
 */
#ifndef VIRIDIAN_DEVICES_ACPI_PM_H
#define VIRIDIAN_DEVICES_ACPI_PM_H

#include "devices/dev.h"
#include "vid/iobus.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define ACPI_PM_TIMER_HZ 3579545ull

#define ACPI_PM1_TMR_STS 0x0001
#define ACPI_PM1_PWRBTN_STS 0x0100
#define ACPI_PM1_WAK_STS 0x8000
#define ACPI_PM1_CNT_SCI_EN 0x0001
#define ACPI_PM1_CNT_SLP_TYP_SHIFT 10
#define ACPI_PM1_CNT_SLP_TYP_MASK (7u << 10)
#define ACPI_PM1_CNT_SLP_EN 0x2000

/* Monotonic nanoseconds (tests inject a fake clock). */
typedef uint64_t acpi_pm_clock_fn(void *opaque);

struct acpi_pm {
	pthread_mutex_t lock;
	struct dev_irq sci;
	struct dev_event poweroff;
	acpi_pm_clock_fn *clock;
	void *clock_opaque;
	uint64_t t0_ns;
	bool timer_32bit; /* FADT TMR_VAL_EXT; else the counter is 24 bits */
	uint16_t sts, en, cnt;
	bool sci_level;
};

/* clock NULL: CLOCK_MONOTONIC. */
void acpi_pm_init(struct acpi_pm *pm, const struct dev_irq *sci, const struct dev_event *poweroff,
		  acpi_pm_clock_fn *clock, void *clock_opaque);
void acpi_pm_destroy(struct acpi_pm *pm);
/* Registers PM1a_EVT (4 ports), PM1a_CNT (2) and PM_TMR (4) from layout.h. */
int acpi_pm_register(struct acpi_pm *pm, struct iobus *pio);
/* Sets PWRBTN_STS (and raises the SCI when enabled): an ACPI OS then shuts down. */
void acpi_pm_power_button(struct acpi_pm *pm);
uint32_t acpi_pm_timer_read(struct acpi_pm *pm);
iobus_handler_fn acpi_pm_evt_io, acpi_pm_cnt_io, acpi_pm_tmr_io;

#endif
