/* Xen PVH boot ABI: hvm_start_info (arch-x86/hvm/start_info.h layout) and our copy of it. */
#ifndef TGUEST_PVH_H
#define TGUEST_PVH_H

#include <stdint.h>

#define PVH_START_MAGIC 0x336ec578
#define E820_RAM 1
#define PVH_MAX_MEMMAP 128
#define PVH_MAX_CMDLINE 1024

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr; /* version >= 1 */
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_memmap_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info v1 is 56 bytes");
_Static_assert(sizeof(struct hvm_memmap_entry) == 24, "memmap entry is 24 bytes");

/* What kmain copied out of the start info before anything else could overwrite it. */
struct boot_info {
	uint32_t start_info_paddr;
	uint32_t version;
	uint64_t rsdp_paddr;
	char cmdline[PVH_MAX_CMDLINE];
	unsigned int memmap_count;
	unsigned int memmap_total; /* as announced, may exceed what we kept */
	struct hvm_memmap_entry memmap[PVH_MAX_MEMMAP];
};

extern struct boot_info boot;
extern char __image_start[], __image_end[];

/* True if [addr, addr + len) lies entirely inside one usable RAM range of the memory map. */
int boot_range_is_ram(uint64_t addr, uint64_t len);

#endif
