/* SPDX-License-Identifier: GPL-2.0-only */
/* Shared by the loaders (bzimage.c, pvh.c, boot.c) and their tests/fuzzers. */
#ifndef VIRIDIAN_BOOT_BOOT_INTERNAL_H
#define VIRIDIAN_BOOT_BOOT_INTERNAL_H

#include "boot/boot.h"

#include <stddef.h>
#include <stdint.h>

/* Boot GDT selectors (Linux expects __BOOT_CS 0x10 and __BOOT_DS 0x18). */
#define BOOT_GDT_CS32 0x08
#define BOOT_GDT_CS64 0x10
#define BOOT_GDT_DS 0x18
#define BOOT_GDT_ENTRIES 4

/* Everything below 1 MiB belongs to the loader, the BIOS area and ACPI. */
#define BOOT_LOW_MEM_END 0x100000ull

/* hvm_start_info (Xen PVH ABI, version 1). */
#define PVH_START_MAGIC 0x336ec578u
#define PVH_ELFNOTE_PHYS32_ENTRY 18

struct pvh_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
} __attribute__((packed));
_Static_assert(sizeof(struct pvh_start_info) == 56, "hvm_start_info size");

struct pvh_modlist_entry {
	uint64_t paddr, size, cmdline_paddr, reserved;
} __attribute__((packed));
_Static_assert(sizeof(struct pvh_modlist_entry) == 32, "hvm_modlist_entry size");

struct pvh_memmap_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
} __attribute__((packed));
_Static_assert(sizeof(struct pvh_memmap_entry) == 24, "hvm_memmap_table_entry size");

/* Offsets inside the page at LAYOUT_PVH_START_INFO_GPA. */
#define PVH_MODLIST_OFF 0x40
#define PVH_MEMMAP_OFF 0x80

/* Linux zero page (boot_params) offsets used by the bzImage loader. */
#define BP_ACPI_RSDP_ADDR 0x070
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_SENTINEL 0x1ef
#define BP_HDR 0x1f1
#define BP_HDR_MAX_END 0x290 /* the setup header area ends where the EDD buffers start */
#define BP_E820_TABLE 0x2d0
#define BP_E820_MAX 128

#define HDR_SETUP_SECTS 0x1f1
#define HDR_SYSSIZE 0x1f4
#define HDR_BOOT_FLAG 0x1fe
#define HDR_JUMP 0x200
#define HDR_MAGIC 0x202
#define HDR_VERSION 0x206
#define HDR_TYPE_OF_LOADER 0x210
#define HDR_LOADFLAGS 0x211
#define HDR_RAMDISK_IMAGE 0x218
#define HDR_RAMDISK_SIZE 0x21c
#define HDR_HEAP_END_PTR 0x224
#define HDR_CMD_LINE_PTR 0x228
#define HDR_INITRD_ADDR_MAX 0x22c
#define HDR_KERNEL_ALIGNMENT 0x230
#define HDR_RELOCATABLE 0x234
#define HDR_XLOADFLAGS 0x236
#define HDR_CMDLINE_SIZE 0x238
#define HDR_PREF_ADDRESS 0x258
#define HDR_INIT_SIZE 0x260
#define HDR_MIN_SIZE 0x268 /* protocol 2.12 header ends before here */

#define LOADFLAG_LOADED_HIGH 0x01
#define LOADFLAG_CAN_USE_HEAP 0x80
#define XLF_KERNEL_64 0x01

/* Loads an in-memory kernel image; name is only used in messages. */
int boot_load_image(struct guest_mem *gm, const uint8_t *img, size_t len, const char *name,
		    const struct boot_config *cfg, struct boot_result *out);
int boot_load_bzimage(struct guest_mem *gm, const uint8_t *img, size_t len, const char *name,
		      const struct boot_config *cfg, struct boot_result *out);
int boot_load_pvh(struct guest_mem *gm, const uint8_t *img, size_t len, const char *name,
		  const struct boot_config *cfg, struct boot_result *out);

/* End of the RAM that starts at 0 (where the initrd and command line go). */
uint64_t boot_low_ram_end(const struct guest_mem *gm);
/*
 * Reads the initrd (cfg->initrd_path) into RAM below min(max_end, low RAM end),
 * page aligned, above min_start. Sets out->initrd_*; no initrd: 0 and size 0.
 */
int boot_load_initrd(struct guest_mem *gm, const struct boot_config *cfg, uint64_t min_start,
		     uint64_t max_end, struct boot_result *out);
/* Copies the command line to LAYOUT_CMDLINE_GPA; max_len excludes the NUL. */
int boot_write_cmdline(struct guest_mem *gm, const struct boot_config *cfg, uint64_t max_len);
/* Writes the boot GDT at LAYOUT_GDT_GPA. */
int boot_write_gdt(struct guest_mem *gm);

static inline uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t rd64(const uint8_t *p)
{
	return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

#endif
