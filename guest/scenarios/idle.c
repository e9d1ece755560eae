/*
 * idle: the management tests' guest. Prints "ready", then sleeps in HLT (woken every 10 ms by
 * the local APIC timer, so an idle VM costs its host almost nothing) until the ACPI power
 * button is pressed (PWRBTN_STS in PM1a status), then reports and powers off like an ACPI OS.
 */
#include <stdint.h>

#include "acpi.h"
#include "arch/x86.h"
#include "hvplat.h"
#include "lib/printf.h"
#include "scenario.h"
#include "tap.h"
#include "timer.h"

#define LAPIC_LVT_TIMER 0x320
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_CUR 0x390
#define LAPIC_TIMER_DIV 0x3e0
#define LVT_MASKED (1u << 16)
#define LVT_PERIODIC (1u << 17)
#define IDLE_TICK_VECTOR 0xec
#define IDLE_TICK_US 10000u
#define PM1_PWRBTN_STS 0x0100

static void idle_tick(void *arg, uint8_t vector)
{
	(void)arg;
	(void)vector; /* only here to end the HLT; the EOI is hvplat's */
}

/* Periodic LAPIC timer at IDLE_TICK_US, its rate measured against the calibrated TSC. */
static int idle_timer_start(void)
{
	uint64_t base = acpi.lapic_addr;
	uint32_t ticks;

	if (!base || hvplat_irq_register(IDLE_TICK_VECTOR, idle_tick, 0))
		return -1;
	mmio_write32(base + LAPIC_TIMER_DIV, 0xb); /* divide by 1 */
	mmio_write32(base + LAPIC_LVT_TIMER, LVT_MASKED | IDLE_TICK_VECTOR);
	mmio_write32(base + LAPIC_TIMER_INIT, 0xffffffffu);
	udelay(IDLE_TICK_US);
	ticks = 0xffffffffu - mmio_read32(base + LAPIC_TIMER_CUR);
	if (!ticks)
		return -1;
	mmio_write32(base + LAPIC_LVT_TIMER, LVT_PERIODIC | IDLE_TICK_VECTOR);
	mmio_write32(base + LAPIC_TIMER_INIT, ticks);
	return 0;
}

static unsigned int idle_count(void)
{
	return 1;
}

static void idle_run(void)
{
	uint64_t sts;
	int timer;

	if (!acpi.pm1a_sts.addr) {
		tap_not_ok("idle: power button", "the FADT has no PM1a event block");
		return;
	}
	/*
	 * Clear a stale press (write 1 to clear) and enable the event as an ACPI OS does: some
	 * platforms latch PWRBTN_STS only while PWRBTN_EN is set. The SCI itself stays unused
	 * (the 8259s are masked); the status bit is polled on every timer tick.
	 */
	acpi_gas_write(&acpi.pm1a_sts, 16, PM1_PWRBTN_STS);
	acpi_gas_write(&acpi.pm1a_en, 16, acpi_gas_read(&acpi.pm1a_en, 16) | PM1_PWRBTN_STS);
	hvplat_wait(); /* masks the 8259s and enables the local APIC for our vector */
	timer = idle_timer_start() == 0;
	if (!timer)
		printf("# idle: no local APIC timer, polling\n");
	printf("# idle: ready\n");
	for (;;) {
		sts = acpi_gas_read(&acpi.pm1a_sts, 16);
		if (sts & PM1_PWRBTN_STS)
			break;
		if (timer)
			__asm__ volatile("sti; hlt; cli" ::: "memory");
		else
			udelay(IDLE_TICK_US);
	}
	acpi_gas_write(&acpi.pm1a_sts, 16, PM1_PWRBTN_STS);
	if (timer)
		mmio_write32(acpi.lapic_addr + LAPIC_LVT_TIMER, LVT_MASKED | IDLE_TICK_VECTOR);
	tap_ok("idle: ready, power button pressed");
}

static const struct scenario idle = {
	.name = "idle",
	.count = idle_count,
	.run = idle_run,
	.explicit_only = 1,
};
SCENARIO_REGISTER(idle);
