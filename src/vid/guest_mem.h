/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Guest-physical memory: the only way any layer reads or writes guest memory.
 * RAM is one memfd (so another process can map it later), mapped once and
 * split into regions around the MMIO hole below 4 GiB.
 */
#ifndef VIRIDIAN_VID_GUEST_MEM_H
#define VIRIDIAN_VID_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUEST_MEM_MAX_REGIONS 8

enum guest_mem_kind {
	GUEST_MEM_RAM,
	GUEST_MEM_ROM, /* read-only to the guest (KVM_MEM_READONLY) */
};

struct guest_mem_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *hva;
	enum guest_mem_kind kind;
	uint64_t fd_offset; /* offset of this region in guest_mem.memfd */
};

#define GUEST_MEM_HUGEPAGES (1u << 0)

struct guest_mem {
	int memfd;
	uint64_t ram_size; /* bytes of RAM the guest has, all regions together */
	uint8_t *base; /* the one host mapping of the memfd */
	uint64_t map_size;
	unsigned nregions;
	struct guest_mem_region regions[GUEST_MEM_MAX_REGIONS];
	bool hugepages; /* true when GUEST_MEM_HUGEPAGES was asked for and granted */
};

/* Lays out ram_size bytes of RAM below and above the MMIO hole. 0 or -errno + err_set(). */
int guest_mem_init(struct guest_mem *gm, uint64_t ram_size, unsigned flags);
void guest_mem_destroy(struct guest_mem *gm);
/*
 * Adds a read-only (to the guest) region of size bytes at gpa, zero-filled; the host fills it
 * with guest_mem_write(). It must lie in the MMIO hole and overlap nothing. 0 or -errno.
 */
int guest_mem_add_rom(struct guest_mem *gm, uint64_t gpa, uint64_t size);

/*
 * Host pointer for [gpa, gpa + len) when the whole range lies in one region,
 * else NULL. Overflow-safe for any gpa/len a guest can pass. len 0 is invalid.
 */
void *guest_mem_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len);
/* Copies that may span regions; -EFAULT when any byte is outside guest memory. */
int guest_mem_read(const struct guest_mem *gm, uint64_t gpa, void *buf, size_t len);
int guest_mem_write(const struct guest_mem *gm, uint64_t gpa, const void *buf, size_t len);
/* True when [gpa, gpa + len) is entirely RAM (any number of regions). */
bool guest_mem_range_is_ram(const struct guest_mem *gm, uint64_t gpa, uint64_t len);

#endif
