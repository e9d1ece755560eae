// SPDX-License-Identifier: GPL-2.0-only
/*
 * The e820 map both loaders hand to the guest: conventional memory up to the
 * EBDA, the BIOS area reserved (its ACPI window typed ACPI), then every RAM
 * region from 1 MiB up, including RAM above the MMIO hole.
 */
#include "boot/boot.h"
#include "boot/boot_internal.h"
#include "vid/layout.h"

static unsigned e820_add(struct boot_e820_entry *out, unsigned n, unsigned max, uint64_t addr,
			 uint64_t size, uint32_t type)
{
	if (!size)
		return n;
	/* Merge with the previous entry when contiguous and of the same type. */
	if (n && out[n - 1].type == type && out[n - 1].addr + out[n - 1].size == addr) {
		out[n - 1].size += size;
		return n;
	}
	if (n >= max)
		return n;
	out[n].addr = addr;
	out[n].size = size;
	out[n].type = type;
	return n + 1;
}

unsigned boot_e820_build(const struct guest_mem *gm, struct boot_e820_entry *out, unsigned max)
{
	unsigned n = 0;
	bool low_ram = guest_mem_range_is_ram(gm, 0, BOOT_LOW_MEM_END);

	if (low_ram) {
		n = e820_add(out, n, max, 0, LAYOUT_EBDA_START, BOOT_E820_RAM);
		n = e820_add(out, n, max, LAYOUT_EBDA_START, LAYOUT_ACPI_GPA - LAYOUT_EBDA_START,
			     BOOT_E820_RESERVED);
		n = e820_add(out, n, max, LAYOUT_ACPI_GPA, LAYOUT_ACPI_MAX, BOOT_E820_ACPI);
		if (LAYOUT_ACPI_GPA + LAYOUT_ACPI_MAX < BOOT_LOW_MEM_END)
			n = e820_add(out, n, max, LAYOUT_ACPI_GPA + LAYOUT_ACPI_MAX,
				     BOOT_LOW_MEM_END - LAYOUT_ACPI_GPA - LAYOUT_ACPI_MAX,
				     BOOT_E820_RESERVED);
	}
	for (unsigned i = 0; i < gm->nregions && i < GUEST_MEM_MAX_REGIONS; i++) {
		const struct guest_mem_region *r = &gm->regions[i];
		uint64_t start = r->gpa, end = r->gpa + r->size;

		if (low_ram && start < BOOT_LOW_MEM_END)
			start = BOOT_LOW_MEM_END;
		if (end <= start)
			continue;
		n = e820_add(out, n, max, start, end - start,
			     r->kind == GUEST_MEM_RAM ? BOOT_E820_RAM : BOOT_E820_RESERVED);
	}
	/* Regions are not necessarily in address order (ROM is added last): sort. */
	for (unsigned i = 1; i < n; i++) {
		struct boot_e820_entry e = out[i];
		unsigned j = i;

		while (j && out[j - 1].addr > e.addr) {
			out[j] = out[j - 1];
			j--;
		}
		out[j] = e;
	}
	return n;
}

uint64_t boot_low_ram_end(const struct guest_mem *gm)
{
	uint64_t end = 0;
	bool grew = true;

	/* Follow contiguous RAM regions up from address 0. */
	while (grew) {
		grew = false;
		for (unsigned i = 0; i < gm->nregions && i < GUEST_MEM_MAX_REGIONS; i++) {
			const struct guest_mem_region *r = &gm->regions[i];

			if (r->kind == GUEST_MEM_RAM && r->gpa <= end && r->gpa + r->size > end) {
				end = r->gpa + r->size;
				grew = true;
			}
		}
	}
	return end < LAYOUT_MMIO_HOLE_START ? end : LAYOUT_MMIO_HOLE_START;
}
