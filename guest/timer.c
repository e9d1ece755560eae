/*
 * TSC calibration over 10 ms against the ACPI PM timer (3.579545 MHz) when the FADT has
 * one, else PIT channel 0 (1.193182 MHz) read back with latch commands. Polling loops
 * are short: on emulated hosts each port read costs microseconds.
 */
#include "timer.h"
#include "acpi.h"
#include "arch/x86.h"
#include "lib/printf.h"

#define PM_TIMER_HZ 3579545u
#define PIT_HZ 1193182u
#define CAL_MS 10u
#define FALLBACK_KHZ 2000000u

uint64_t tsc_khz = FALLBACK_KHZ;
const char *timer_source = "none (assumed 2 GHz)";

static uint64_t cal_pm_timer(void)
{
	uint32_t mask = acpi.pm_tmr_32bit ? 0xffffffffu : 0xffffffu;
	uint32_t want = PM_TIMER_HZ / 1000 * CAL_MS, start, now = 0;
	uint64_t t0, t1;

	start = (uint32_t)acpi_gas_read(&acpi.pm_tmr, 32) & mask;
	t0 = rdtsc();
	for (unsigned int i = 0; i < 2000000; i++) {
		now = (uint32_t)acpi_gas_read(&acpi.pm_tmr, 32) & mask;
		if (((now - start) & mask) >= want)
			break;
	}
	t1 = rdtsc();
	if (((now - start) & mask) < want)
		return 0;
	return (t1 - t0) * PM_TIMER_HZ / (1000ull * ((now - start) & mask));
}

static uint16_t pit0_read(void)
{
	uint8_t lo, hi;

	outb(0x43, 0x00); /* latch channel 0 */
	lo = inb(0x40);
	hi = inb(0x40);
	return (uint16_t)(lo | (hi << 8));
}

/*
 * PIT channel 0 as a free-running down-counter (mode 2, reload 65536): port 0x61 and so
 * channel 2's gate do not exist on every machine model (QEMU microvm), channel 0 does.
 * Samples come every few microseconds, far inside the 55 ms wrap.
 */
static uint64_t cal_pit(void)
{
	uint32_t want = PIT_HZ / 1000 * CAL_MS, elapsed = 0;
	uint16_t prev, now;
	uint64_t t0, t1;
	unsigned int i;

	outb(0x43, 0x34); /* channel 0, lo/hi, mode 2, binary */
	outb(0x40, 0);
	outb(0x40, 0);
	prev = pit0_read();
	for (i = 0; i < 100000 && (now = pit0_read()) == prev; i++)
		;
	if (i == 100000)
		return 0; /* counter does not move: no PIT */
	prev = now;
	t0 = rdtsc();
	for (i = 0; i < 2000000 && elapsed < want; i++) {
		now = pit0_read();
		elapsed += (uint16_t)(prev - now);
		prev = now;
	}
	t1 = rdtsc();
	outb(0x43, 0x30); /* back to one-shot mode 0 so it stops raising IRQ0 */
	outb(0x40, 0xff);
	outb(0x40, 0xff);
	if (elapsed < want)
		return 0;
	return (t1 - t0) * PIT_HZ / (1000ull * elapsed);
}

void timer_init(void)
{
	uint64_t khz = 0;

	if (acpi.pm_tmr.addr && !acpi.hw_reduced) {
		khz = cal_pm_timer();
		if (khz)
			timer_source = "ACPI PM timer";
	}
	if (!khz) {
		khz = cal_pit();
		if (khz)
			timer_source = "PIT channel 0";
	}
	/* Anything outside 50 MHz..20 GHz is a broken timer, not a real TSC. */
	if (khz >= 50000 && khz <= 20000000)
		tsc_khz = khz;
	else
		timer_source = "none (assumed 2 GHz)";
}

uint64_t timer_deadline_us(uint64_t us)
{
	return rdtsc() + us * tsc_khz / 1000;
}

bool timer_expired(uint64_t deadline)
{
	return (int64_t)(rdtsc() - deadline) >= 0;
}

void udelay(uint64_t us)
{
	uint64_t d = timer_deadline_us(us);

	while (!timer_expired(d))
		cpu_relax();
}
