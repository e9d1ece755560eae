/* Hosted stand-in for guest/pvh.h: command line and memory map of the harness partition. */
#ifndef HARNESS_SHIM_PVH_H
#define HARNESS_SHIM_PVH_H

#include <stdint.h>

#define PVH_MAX_CMDLINE 512
#define PVH_MAX_MEMMAP 16

struct hvm_memmap_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

struct boot_info {
	char cmdline[PVH_MAX_CMDLINE];
	unsigned int memmap_count;
	struct hvm_memmap_entry memmap[PVH_MAX_MEMMAP];
};

extern struct boot_info boot;

#endif
