// SPDX-License-Identifier: GPL-2.0-only
/*
 * Loads a real kernel (bzImage or PVH vmlinux) into 256 MiB of guest memory
 * with the same calls `viridian run` makes and checks what the loader reports
 * against the file itself. Usage: loadcheck bzimage|vmlinux PATH
 */
#include "boot/acpi.h"
#include "boot/boot.h"
#include "boot/boot_internal.h"
#include "lib/err.h"
#include "vid/guest_mem.h"
#include "vid/layout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what)
{
	fprintf(stderr, "loadcheck: %s\n", what);
	return 1;
}

static int read_head(const char *path, uint8_t *buf, size_t len, long off)
{
	FILE *fp = fopen(path, "rb");
	int ok;

	if (!fp)
		return -1;
	ok = fseek(fp, off, SEEK_SET) == 0 && fread(buf, 1, len, fp) == len;
	fclose(fp);
	return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct guest_mem gm;
	struct acpi_config acfg = { .ncpus = 2, .apic_ids = { 0, 1 } };
	struct boot_config cfg = { .cmdline = "console=ttyS0 earlyprintk=ttyS0" };
	struct boot_result r;
	uint8_t hdr[0x300];

	if (argc != 3 || (strcmp(argv[1], "bzimage") && strcmp(argv[1], "vmlinux")))
		return fail("usage: loadcheck bzimage|vmlinux PATH");
	cfg.kernel_path = argv[2];
	if (guest_mem_init(&gm, 256ull << 20, 0))
		return fail(err_msg());
	if (acpi_tables_build(&gm, &acfg, &cfg.rsdp_gpa))
		return fail(err_msg());
	if (boot_load(&gm, &cfg, &r))
		return fail(err_msg());
	if (read_head(argv[2], hdr, sizeof(hdr), 0))
		return fail("cannot read the kernel header");
	printf("# kind=%s kernel=0x%llx-0x%llx rip=0x%llx long_mode=%d\n",
	       r.kind == BOOT_KIND_BZIMAGE ? "bzImage" : "pvh", (unsigned long long)r.kernel_start,
	       (unsigned long long)r.kernel_end, (unsigned long long)r.cpu.rip, r.cpu.long_mode);

	if (!strcmp(argv[1], "bzimage")) {
		uint16_t ver = rd16(hdr + HDR_VERSION);
		unsigned sects = hdr[HDR_SETUP_SECTS] ? hdr[HDR_SETUP_SECTS] : 4;
		uint8_t first[64];
		const uint8_t *bp = guest_mem_ptr(&gm, LAYOUT_BOOT_PARAMS_GPA, 4096);

		printf("# boot protocol %u.%02u, setup_sects %u, init_size 0x%x\n", ver >> 8,
		       ver & 0xff, sects, rd32(hdr + HDR_INIT_SIZE));
		if (r.kind != BOOT_KIND_BZIMAGE || ver < 0x020c)
			return fail("not loaded as a 64-bit bzImage");
		if (!r.cpu.long_mode || r.cpu.rip != r.kernel_start + 0x200 ||
		    r.cpu.rsi != LAYOUT_BOOT_PARAMS_GPA)
			return fail("64-bit entry state is wrong");
		if (read_head(argv[2], first, sizeof(first), (long)(sects + 1) * 512) ||
		    memcmp(guest_mem_ptr(&gm, r.kernel_start, 64), first, 64))
			return fail("protected-mode kernel is not at the load address");
		if (!bp || memcmp(bp + HDR_MAGIC, "HdrS", 4) || bp[HDR_TYPE_OF_LOADER] != 0xff ||
		    rd64(bp + BP_ACPI_RSDP_ADDR) != cfg.rsdp_gpa || bp[BP_E820_ENTRIES] < 3)
			return fail("zero page is incomplete");
	} else {
		const struct pvh_start_info *si =
			guest_mem_ptr(&gm, LAYOUT_PVH_START_INFO_GPA, sizeof(*si));

		if (r.kind != BOOT_KIND_PVH || r.cpu.long_mode)
			return fail("not loaded as a PVH kernel");
		if (r.cpu.rip < r.kernel_start || r.cpu.rip >= r.kernel_end)
			return fail("PVH entry outside the loaded segments");
		if (!si || si->magic != PVH_START_MAGIC || si->rsdp_paddr != cfg.rsdp_gpa ||
		    si->memmap_entries < 3)
			return fail("hvm_start_info is incomplete");
		printf("# PVH entry 0x%llx, %u memmap entries\n", (unsigned long long)r.cpu.rip,
		       si->memmap_entries);
	}
	guest_mem_destroy(&gm);
	return 0;
}
