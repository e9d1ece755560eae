/*
 * Test guest main: copy what the PVH start info holds, find ACPI, calibrate the timer,
 * print the TAP plan for the scenarios named by tests=, run them, power off.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "acpi.h"
#include "arch/idt.h"
#include "arch/x86.h"
#include "lib/printf.h"
#include "lib/serial.h"
#include "lib/string.h"
#include "power.h"
#include "pvh.h"
#include "scenario.h"
#include "tap.h"
#include "timer.h"

#define MAX_TESTS 32

struct boot_info boot;

void kmain(uint32_t start_info);

int boot_range_is_ram(uint64_t addr, uint64_t len)
{
	for (unsigned int i = 0; i < boot.memmap_count; i++) {
		const struct hvm_memmap_entry *e = &boot.memmap[i];

		if (e->type == E820_RAM && addr >= e->addr && e->addr + e->size >= e->addr &&
		    len <= e->addr + e->size - addr && addr + len >= addr)
			return 1;
	}
	return 0;
}

static bool below_4g(uint64_t addr, uint64_t len)
{
	return addr && len <= (4ull << 30) && addr <= (4ull << 30) - len;
}

static bool pvh_copy(uint32_t paddr)
{
	const struct hvm_start_info *si = (const struct hvm_start_info *)(uintptr_t)paddr;

	boot.start_info_paddr = paddr;
	if (!paddr || si->magic != PVH_START_MAGIC)
		return false;
	boot.version = si->version;
	boot.rsdp_paddr = si->rsdp_paddr;
	if (si->cmdline_paddr && below_4g(si->cmdline_paddr, 1)) {
		const char *s = (const char *)(uintptr_t)si->cmdline_paddr;
		size_t i;

		for (i = 0;
		     i + 1 < sizeof(boot.cmdline) && below_4g(si->cmdline_paddr, i + 1) && s[i];
		     i++)
			boot.cmdline[i] = s[i];
		boot.cmdline[i] = '\0';
	}
	if (si->version >= 1 && si->memmap_paddr) {
		uint32_t n = si->memmap_entries;

		boot.memmap_total = n;
		if (n > PVH_MAX_MEMMAP)
			n = PVH_MAX_MEMMAP;
		if (below_4g(si->memmap_paddr, (uint64_t)n * sizeof(struct hvm_memmap_entry))) {
			memcpy(boot.memmap, (const void *)(uintptr_t)si->memmap_paddr,
			       n * sizeof(struct hvm_memmap_entry));
			boot.memmap_count = n;
		}
	}
	return true;
}

/* Finds "tests=" as a whole word; returns its value (up to the next space) or NULL. */
static const char *cmdline_tests(size_t *len)
{
	const char *p = boot.cmdline;

	while (*p) {
		while (*p == ' ')
			p++;
		if (!strncmp(p, "tests=", 6)) {
			const char *v = p + 6;

			*len = 0;
			while (v[*len] && v[*len] != ' ')
				(*len)++;
			return v;
		}
		while (*p && *p != ' ')
			p++;
	}
	return NULL;
}

static const struct scenario *scenario_find(const char *name)
{
	for (const struct scenario *const *s = __scenarios_start; s < __scenarios_end; s++)
		if (!strcmp((*s)->name, name))
			return *s;
	return NULL;
}

void kmain(uint32_t start_info)
{
	static char names[MAX_TESTS][32];
	const struct scenario *sel[MAX_TESTS];
	unsigned int nsel = 0, plan = 0;
	bool pvh_ok;
	const char *v;
	size_t vlen = 0;

	serial_init();
	idt_init();
	pvh_ok = pvh_copy(start_info);
	printf("# viridian test guest, start info %#x, cmdline '%s'\n", start_info, boot.cmdline);
	acpi_init(pvh_ok ? boot.rsdp_paddr : 0);
	if (!pvh_ok) {
		printf("Bail out! no PVH start info at %#x (magic must be %#x)\n", start_info,
		       PVH_START_MAGIC);
		power_off();
	}
	timer_init();
	printf("# tsc %lu kHz via %s\n", (unsigned long)tsc_khz, timer_source);

	v = cmdline_tests(&vlen);
	if (!v) {
		/* No tests= at all: run every registered scenario. */
		for (const struct scenario *const *s = __scenarios_start;
		     s < __scenarios_end && nsel < MAX_TESTS; s++) {
			if ((*s)->explicit_only)
				continue;
			snprintf(names[nsel], sizeof(names[0]), "%s", (*s)->name);
			sel[nsel++] = *s;
		}
	} else {
		for (size_t i = 0; i < vlen && nsel < MAX_TESTS;) {
			size_t j = i, k = 0;

			while (j < vlen && v[j] != ',')
				j++;
			if (j > i) {
				for (k = 0; k < j - i && k + 1 < sizeof(names[0]); k++)
					names[nsel][k] = v[i + k];
				names[nsel][k] = '\0';
				sel[nsel] = scenario_find(names[nsel]);
				nsel++;
			}
			i = j + 1;
		}
	}
	for (unsigned int i = 0; i < nsel; i++)
		plan += sel[i] ? sel[i]->count() : 1;
	tap_plan(plan);
	for (unsigned int i = 0; i < nsel; i++) {
		unsigned int before = tap_emitted(), want;

		if (!sel[i]) {
			char what[64];

			snprintf(what, sizeof(what), "unknown scenario '%s'", names[i]);
			tap_not_ok(what, "%s", "");
			continue;
		}
		want = sel[i]->count();
		tap_set_current(sel[i]->name);
		sel[i]->run();
		/* A scenario that reports fewer lines than it promised still fills the plan. */
		while (tap_emitted() - before < want)
			tap_not_ok(sel[i]->name, "scenario reported fewer results than planned");
	}
	power_off();
}
