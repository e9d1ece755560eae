/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Kernel loaders: Linux bzImage (64-bit boot protocol) and ELF kernels with a
 * Xen PVH entry note. The loader writes everything into guest memory and
 * describes the boot CPU's initial state; vid turns that into KVM registers.
 */
#ifndef VIRIDIAN_BOOT_BOOT_H
#define VIRIDIAN_BOOT_BOOT_H

#include "vid/guest_mem.h"

#include <stdbool.h>
#include <stdint.h>

struct boot_config {
	const char *kernel_path;
	const char *initrd_path; /* NULL: none */
	const char *cmdline; /* NULL: "" */
	uint64_t rsdp_gpa; /* from acpi_tables_build(), 0 if none */
};

enum boot_kind {
	BOOT_KIND_BZIMAGE, /* 64-bit entry at startup_64, RSI = boot_params */
	BOOT_KIND_PVH, /* 32-bit protected mode, paging off, EBX = hvm_start_info */
};

/* Initial state of the boot vCPU, in architectural terms. */
struct boot_cpu_state {
	bool long_mode; /* true: CR0.PG, EFER.LME/LMA, 64-bit CS; false: 32-bit flat */
	uint64_t rip, rsp, rsi, rbx, rflags;
	uint64_t cr0, cr3, cr4, efer;
	uint64_t gdt_base;
	uint16_t gdt_limit;
	uint16_t code_selector, data_selector; /* flat segments from the boot GDT */
};

struct boot_result {
	enum boot_kind kind;
	struct boot_cpu_state cpu;
	uint64_t kernel_start, kernel_end; /* guest-physical range the kernel occupies */
	uint64_t initrd_start, initrd_size;
};

/* Detects the kernel format and loads it. 0 or -errno with err_set() ("not a kernel", ...). */
int boot_load(struct guest_mem *gm, const struct boot_config *cfg, struct boot_result *out);

/* e820 as the loaders report it (RAM split around reserved low memory and the ACPI area). */
enum boot_e820_type {
	BOOT_E820_RAM = 1,
	BOOT_E820_RESERVED = 2,
	BOOT_E820_ACPI = 3,
};

struct boot_e820_entry {
	uint64_t addr, size;
	uint32_t type;
};

#define BOOT_E820_MAX 16
unsigned boot_e820_build(const struct guest_mem *gm, struct boot_e820_entry *out, unsigned max);

#endif
