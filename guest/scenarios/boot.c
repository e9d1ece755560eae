/* boot: memory map from the start info, ACPI tables, and the RTC. */
#include <stdbool.h>
#include <stdint.h>

#include "acpi.h"
#include "arch/x86.h"
#include "lib/printf.h"
#include "lib/string.h"
#include "pvh.h"
#include "scenario.h"
#include "tap.h"
#include "timer.h"

static void boot_memmap(void)
{
	uint64_t usable = 0;
	uint64_t start = (uint64_t)(uintptr_t)__image_start;
	uint64_t len = (uint64_t)(uintptr_t)__image_end - start;

	if (boot.version < 1 || !boot.memmap_count) {
		tap_not_ok("boot: memory map", "start info version %u has no memory map",
			   boot.version);
		return;
	}
	for (unsigned int i = 0; i < boot.memmap_count; i++) {
		const struct hvm_memmap_entry *e = &boot.memmap[i];

		printf("# memmap %u: %#lx +%#lx type %u\n", i, (unsigned long)e->addr,
		       (unsigned long)e->size, e->type);
		if (!e->size)
			continue; /* padding some loaders leave at the end: harmless */
		if (e->addr + e->size < e->addr) {
			tap_not_ok("boot: memory map", "entry %u [%#lx +%#lx] wraps", i,
				   (unsigned long)e->addr, (unsigned long)e->size);
			return;
		}
		if (e->type == E820_RAM)
			usable += e->size;
	}
	if (!boot_range_is_ram(start, len)) {
		tap_not_ok("boot: memory map", "image [%#lx +%#lx] is not inside usable RAM",
			   (unsigned long)start, (unsigned long)len);
		return;
	}
	if (usable < (1u << 20)) {
		tap_not_ok("boot: memory map", "only %lu KiB usable",
			   (unsigned long)(usable >> 10));
		return;
	}
	tap_ok("boot: memory map: %u entries, %lu MiB usable, image inside RAM", boot.memmap_count,
	       (unsigned long)(usable >> 20));
}

static void boot_acpi(void)
{
	if (acpi.problem[0]) {
		tap_not_ok("boot: acpi tables", "%s", acpi.problem);
		return;
	}
	if (!acpi.fadt || !acpi.madt || !acpi.dsdt) {
		tap_not_ok("boot: acpi tables", "missing FADT, MADT or DSDT");
		return;
	}
	tap_ok("boot: acpi tables: RSDP rev %u, %s with %u tables, FADT rev %u%s, MADT %u cpus, "
	       "DSDT, \\_S5 %s",
	       acpi.rsdp_revision, acpi.use_xsdt ? "XSDT" : "RSDT", acpi.ntables,
	       acpi.fadt_revision, acpi.hw_reduced ? " hw-reduced" : "", acpi.ncpus,
	       acpi.s5_found ? "found" : "absent");
}

static uint8_t cmos_read(uint8_t reg)
{
	outb(0x70, reg);
	return inb(0x71);
}

static bool bcd_ok(uint8_t v)
{
	return (v & 0x0f) <= 9 && (v >> 4) <= 9;
}

static uint8_t bcd_to_bin(uint8_t v)
{
	return (uint8_t)((v >> 4) * 10 + (v & 0x0f));
}

static void boot_rtc(void)
{
	uint8_t r[7], prev[7], regb;
	unsigned int year, mon, day, hour, min, sec;
	bool binary, stable = false;

	/* Read until two passes agree and no update was in progress (UIP, register A bit 7). */
	for (int tries = 0; tries < 5 && !stable; tries++) {
		uint64_t d = timer_deadline_us(10000);

		while ((cmos_read(0x0a) & 0x80) && !timer_expired(d))
			cpu_relax();
		r[0] = cmos_read(0x00);
		r[1] = cmos_read(0x02);
		r[2] = cmos_read(0x04);
		r[3] = cmos_read(0x07);
		r[4] = cmos_read(0x08);
		r[5] = cmos_read(0x09);
		r[6] = acpi.century && acpi.century < 0x80 ? cmos_read(acpi.century) : 0;
		stable = tries > 0 && !memcmp(r, prev, sizeof(r));
		memcpy(prev, r, sizeof(r));
	}
	regb = cmos_read(0x0b);
	binary = regb & 0x04;
	if (r[0] == 0xff && r[4] == 0xff) {
		tap_not_ok("boot: rtc", "CMOS reads 0xff (no RTC at ports 0x70/0x71)");
		return;
	}
	uint8_t pm = 0;

	if (!(regb & 0x02)) { /* 12-hour mode: bit 7 of the hour is PM */
		pm = r[2] & 0x80;
		r[2] &= 0x7f;
	}
	if (!binary) {
		for (int i = 0; i < 7; i++) {
			if (i == 6 && !r[6])
				continue;
			if (!bcd_ok(r[i])) {
				tap_not_ok("boot: rtc", "register value %#x is not BCD (reg B %#x)",
					   r[i], regb);
				return;
			}
			r[i] = bcd_to_bin(r[i]);
		}
	}
	sec = r[0];
	min = r[1];
	hour = r[2];
	if (!(regb & 0x02))
		hour = (hour % 12) + (pm ? 12 : 0);
	day = r[3];
	mon = r[4];
	year = r[5] + (r[6] ? r[6] * 100u : 2000u);
	if (sec > 59 || min > 59 || hour > 23 || day < 1 || day > 31 || mon < 1 || mon > 12 ||
	    year < 2024 || year > 2199) {
		tap_not_ok("boot: rtc", "implausible date %u-%02u-%02u %02u:%02u:%02u (reg B %#x)",
			   year, mon, day, hour, min, sec, regb);
		return;
	}
	tap_ok("boot: rtc %u-%02u-%02u %02u:%02u:%02u (%s)", year, mon, day, hour, min, sec,
	       binary ? "binary" : "BCD");
}

static unsigned int boot_count(void)
{
	return 3;
}

static void boot_run(void)
{
	boot_memmap();
	boot_acpi();
	boot_rtc();
}

static const struct scenario boot_scenario = {
	.name = "boot",
	.count = boot_count,
	.run = boot_run,
};
SCENARIO_REGISTER(boot_scenario);
