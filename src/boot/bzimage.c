// SPDX-License-Identifier: GPL-2.0-only
/*
 * Linux bzImage loader, 64-bit boot protocol (>= 2.12): the protected-mode
 * kernel goes to LAYOUT_KERNEL_GPA (or pref_address for a kernel that cannot
 * move), the zero page to LAYOUT_BOOT_PARAMS_GPA, and the vCPU starts in long
 * mode at startup_64 (load address + 0x200) with RSI pointing at the zero page.
 */
#include "boot/boot.h"
#include "boot/boot_internal.h"
#include "lib/err.h"
#include "lib/util.h"
#include "vid/layout.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MIB (1024ull * 1024)
#define BOOT_PROTO_MIN 0x020c
#define BOOT_PROTO_RSDP 0x020e /* acpi_rsdp_addr in the zero page from 2.14 */
#define INITRD_ADDR_MAX_DEFAULT 0x37ffffffull
#define PT_PAGES 6 /* PML4, PDPT, 4 page directories of 2 MiB pages */

#define X86_CR0_PE (1ull << 0)
#define X86_CR0_MP (1ull << 1)
#define X86_CR0_ET (1ull << 4)
#define X86_CR0_NE (1ull << 5)
#define X86_CR0_PG (1ull << 31)
#define X86_CR4_PAE (1ull << 5)
#define X86_EFER_LME (1ull << 8)
#define X86_EFER_LMA (1ull << 10)

static int bz_write_page_tables(struct guest_mem *gm)
{
	uint64_t *pt = calloc(PT_PAGES, 4096);
	const uint64_t base = LAYOUT_PAGE_TABLES_GPA;
	int ret;

	if (!pt) {
		err_set("out of memory building page tables");
		return -ENOMEM;
	}
	/* Present + writable; PDEs also PS (2 MiB pages). */
	pt[0] = (base + 0x1000) | 0x3;
	for (unsigned i = 0; i < 4; i++)
		pt[512 + i] = (base + 0x2000 + 0x1000ull * i) | 0x3;
	for (unsigned i = 0; i < 4 * 512; i++)
		pt[1024 + i] = ((uint64_t)i << 21) | 0x83;
	ret = guest_mem_write(gm, base, pt, PT_PAGES * 4096);
	free(pt);
	if (ret) {
		err_set("guest RAM too small for the boot page tables");
		return -ENOSPC;
	}
	return 0;
}

static void put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

int boot_load_bzimage(struct guest_mem *gm, const uint8_t *img, size_t len, const char *name,
		      const struct boot_config *cfg, struct boot_result *out)
{
	uint8_t *bp = NULL;
	struct boot_e820_entry e820[BOOT_E820_MAX];
	uint64_t setup_sects, setup_size, sys_size, load, init_size, kend, align, initrd_max;
	uint64_t cmdline_max = 255;
	uint16_t version;
	uint32_t hdr_end;
	unsigned n;
	int ret;

	if (len < HDR_MIN_SIZE) {
		err_set("'%s' is truncated: its bzImage setup header is incomplete", name);
		return -ENOEXEC;
	}
	version = rd16(img + HDR_VERSION);
	if (version < BOOT_PROTO_MIN) {
		err_set("'%s' uses Linux boot protocol %u.%02u; 2.12 or newer is needed "
			"(Linux 3.8+)",
			name, version >> 8, version & 0xff);
		return -ENOEXEC;
	}
	if (!(img[HDR_XLOADFLAGS] & XLF_KERNEL_64) ||
	    !(img[HDR_LOADFLAGS] & LOADFLAG_LOADED_HIGH)) {
		err_set("'%s' has no 64-bit entry point (XLF_KERNEL_64); use a 64-bit kernel",
			name);
		return -ENOEXEC;
	}
	setup_sects = img[HDR_SETUP_SECTS] ? img[HDR_SETUP_SECTS] : 4;
	setup_size = (setup_sects + 1) * 512;
	sys_size = (uint64_t)rd32(img + HDR_SYSSIZE) * 16;
	if (setup_size >= len) {
		err_set("'%s' is truncated: setup_sects %llu points past the end of the file", name,
			(unsigned long long)setup_sects);
		return -ENOEXEC;
	}
	/* syssize is rounded to 16 bytes, so allow up to 15 bytes of slack. */
	if (sys_size == 0 || sys_size > len - setup_size + 15) {
		err_set("'%s' is truncated: syssize says %llu bytes of kernel, the file has %llu",
			name, (unsigned long long)sys_size, (unsigned long long)(len - setup_size));
		return -ENOEXEC;
	}
	sys_size = MIN(sys_size, len - setup_size);

	init_size = rd32(img + HDR_INIT_SIZE);
	align = rd32(img + HDR_KERNEL_ALIGNMENT);
	if (img[HDR_RELOCATABLE]) {
		load = LAYOUT_KERNEL_GPA;
		if (align && (align & (align - 1)) == 0 && align <= (1ull << 30))
			load = ALIGN_UP(load, align);
	} else {
		/* A kernel that cannot relocate runs only where it was linked. */
		load = rd64(img + HDR_PREF_ADDRESS);
	}
	kend = MAX(init_size, sys_size);
	if (load < BOOT_LOW_MEM_END) {
		err_set("'%s' is not relocatable and must load at 0x%llx, inside the first MiB "
			"the loader uses; use a relocatable kernel",
			name, (unsigned long long)load);
		return -ENOEXEC;
	}
	if (load >= UINT64_MAX - kend || !guest_mem_range_is_ram(gm, load, kend)) {
		err_set("kernel too large for %lluM of guest RAM (needs 0x%llx..0x%llx)",
			(unsigned long long)(gm->ram_size / MIB), (unsigned long long)load,
			(unsigned long long)(load + kend));
		return -ENOSPC;
	}
	kend += load;

	bp = calloc(1, 4096);
	if (!bp) {
		err_set("out of memory");
		return -ENOMEM;
	}
	/* Setup header: 0x1f1 up to the end its jump instruction implies. */
	hdr_end = HDR_MAGIC + img[HDR_JUMP + 1];
	hdr_end = MIN(hdr_end, BP_HDR_MAX_END);
	hdr_end = MAX(hdr_end, HDR_MIN_SIZE);
	hdr_end = MIN(hdr_end, len);
	memcpy(bp + BP_HDR, img + BP_HDR, hdr_end - BP_HDR);

	bp[HDR_TYPE_OF_LOADER] = 0xff;
	bp[HDR_LOADFLAGS] |= LOADFLAG_CAN_USE_HEAP;
	/* Heap end as an offset from the real-mode code base (0xfe00 by convention). */
	put16(bp + HDR_HEAP_END_PTR, 0xfe00);
	if (version >= 0x0206)
		cmdline_max = rd32(img + HDR_CMDLINE_SIZE);
	ret = boot_write_cmdline(gm, cfg, cmdline_max);
	if (ret)
		goto out;
	put32(bp + HDR_CMD_LINE_PTR, (uint32_t)LAYOUT_CMDLINE_GPA);
	put32(bp + BP_EXT_CMD_LINE_PTR, (uint32_t)(LAYOUT_CMDLINE_GPA >> 32));

	initrd_max = rd32(img + HDR_INITRD_ADDR_MAX);
	if (!initrd_max)
		initrd_max = INITRD_ADDR_MAX_DEFAULT;
	ret = boot_load_initrd(gm, cfg, kend, initrd_max + 1, out);
	if (ret)
		goto out;
	put32(bp + HDR_RAMDISK_IMAGE, (uint32_t)out->initrd_start);
	put32(bp + HDR_RAMDISK_SIZE, (uint32_t)out->initrd_size);
	put32(bp + BP_EXT_RAMDISK_IMAGE, (uint32_t)(out->initrd_start >> 32));
	put32(bp + BP_EXT_RAMDISK_SIZE, (uint32_t)(out->initrd_size >> 32));

	n = boot_e820_build(gm, e820, BOOT_E820_MAX);
	for (unsigned i = 0; i < n; i++) {
		uint8_t *e = bp + BP_E820_TABLE + 20 * i;

		put64(e, e820[i].addr);
		put64(e + 8, e820[i].size);
		put32(e + 16, e820[i].type);
	}
	bp[BP_E820_ENTRIES] = (uint8_t)n;
	if (version >= BOOT_PROTO_RSDP)
		put64(bp + BP_ACPI_RSDP_ADDR, cfg->rsdp_gpa);

	if (guest_mem_write(gm, load, img + setup_size, sys_size) ||
	    guest_mem_write(gm, LAYOUT_BOOT_PARAMS_GPA, bp, 4096)) {
		err_set("kernel too large for %lluM of guest RAM",
			(unsigned long long)(gm->ram_size / MIB));
		ret = -ENOSPC;
		goto out;
	}
	ret = bz_write_page_tables(gm);
	if (!ret)
		ret = boot_write_gdt(gm);
	if (ret)
		goto out;

	out->kind = BOOT_KIND_BZIMAGE;
	out->kernel_start = load;
	out->kernel_end = kend;
	out->cpu = (struct boot_cpu_state){
		.long_mode = true,
		.rip = load + 0x200,
		.rsp = LAYOUT_BOOT_STACK_TOP,
		.rsi = LAYOUT_BOOT_PARAMS_GPA,
		.rflags = 0x2,
		.cr0 = X86_CR0_PE | X86_CR0_MP | X86_CR0_ET | X86_CR0_NE | X86_CR0_PG,
		.cr3 = LAYOUT_PAGE_TABLES_GPA,
		.cr4 = X86_CR4_PAE,
		.efer = X86_EFER_LME | X86_EFER_LMA,
		.gdt_base = LAYOUT_GDT_GPA,
		.gdt_limit = BOOT_GDT_ENTRIES * 8 - 1,
		.code_selector = BOOT_GDT_CS64,
		.data_selector = BOOT_GDT_DS,
	};
out:
	free(bp);
	return ret;
}
