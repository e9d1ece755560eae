// SPDX-License-Identifier: GPL-2.0-only
/* Guest-physical memory: memfd-backed RAM around the MMIO hole, ROM regions, checked access. */
#include "vid/guest_mem.h"

#include "lib/err.h"
#include "lib/log.h"
#include "lib/util.h"
#include "vid/layout.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define GUEST_MEM_PAGE 4096ull
#define GUEST_MEM_HUGE 0x200000ull

static int guest_mem_map(struct guest_mem *gm, uint64_t size, bool huge)
{
	unsigned mfd_flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
	int fd;
	void *p;

	if (huge)
		mfd_flags = MFD_CLOEXEC | MFD_HUGETLB;
	fd = memfd_create("viridian-ram", mfd_flags);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	/*
	 * Normal pages: MAP_NORESERVE, RAM the guest never touches costs nothing. Hugepages:
	 * reserve at mmap time so a shortage fails here, not as SIGBUS on first touch.
	 */
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | (huge ? 0 : MAP_NORESERVE), fd,
		 0);
	if (p == MAP_FAILED) {
		int e = -errno;

		close(fd);
		return e;
	}
	gm->memfd = fd;
	gm->base = p;
	gm->map_size = size;
	return 0;
}

int guest_mem_init(struct guest_mem *gm, uint64_t ram_size, unsigned flags)
{
	uint64_t low, high;
	int r;

	memset(gm, 0, sizeof(*gm));
	gm->memfd = -1;
	if (ram_size == 0 || !IS_ALIGNED(ram_size, GUEST_MEM_PAGE)) {
		err_set("guest RAM size %llu is not a non-zero multiple of 4 KiB",
			(unsigned long long)ram_size);
		return -EINVAL;
	}
	if (ram_size > (1ull << 46)) {
		err_set("guest RAM size %llu is larger than 64 TiB", (unsigned long long)ram_size);
		return -EINVAL;
	}
	r = -EINVAL;
	if ((flags & GUEST_MEM_HUGEPAGES) && IS_ALIGNED(ram_size, GUEST_MEM_HUGE))
		r = guest_mem_map(gm, ram_size, true);
	if (r == 0) {
		gm->hugepages = true;
	} else {
		if (flags & GUEST_MEM_HUGEPAGES)
			log_warn("vid", "hugepages unavailable (%s); using normal pages",
				 r == -EINVAL ? "size not a multiple of 2 MiB" : strerror(-r));
		r = guest_mem_map(gm, ram_size, false);
		if (r < 0) {
			err_set("cannot allocate %llu bytes of guest RAM: %s",
				(unsigned long long)ram_size, strerror(-r));
			return r;
		}
	}
	gm->ram_size = ram_size;
	low = MIN(ram_size, LAYOUT_MMIO_HOLE_START);
	high = ram_size - low;
	gm->regions[0] = (struct guest_mem_region){
		.gpa = 0, .size = low, .hva = gm->base, .kind = GUEST_MEM_RAM, .fd_offset = 0};
	gm->nregions = 1;
	if (high) {
		gm->regions[1] = (struct guest_mem_region){.gpa = LAYOUT_HIGH_RAM_START,
							   .size = high,
							   .hva = gm->base + low,
							   .kind = GUEST_MEM_RAM,
							   .fd_offset = low};
		gm->nregions = 2;
	}
	return 0;
}

int guest_mem_add_rom(struct guest_mem *gm, uint64_t gpa, uint64_t size)
{
	struct guest_mem_region *r;
	void *p;

	if (gm->nregions >= GUEST_MEM_MAX_REGIONS) {
		err_set("too many guest memory regions (max %d)", GUEST_MEM_MAX_REGIONS);
		return -ENOSPC;
	}
	if (size == 0 || !IS_ALIGNED(gpa, GUEST_MEM_PAGE) || !IS_ALIGNED(size, GUEST_MEM_PAGE) ||
	    gpa < LAYOUT_MMIO_HOLE_START || gpa >= LAYOUT_MMIO_HOLE_END ||
	    size > LAYOUT_MMIO_HOLE_END - gpa) {
		err_set("ROM at 0x%llx size 0x%llx must be page-aligned and inside the MMIO hole",
			(unsigned long long)gpa, (unsigned long long)size);
		return -EINVAL;
	}
	for (unsigned i = 0; i < gm->nregions; i++) {
		const struct guest_mem_region *o = &gm->regions[i];

		if (gpa < o->gpa + o->size && o->gpa < gpa + size) {
			err_set("ROM at 0x%llx overlaps guest memory at 0x%llx",
				(unsigned long long)gpa, (unsigned long long)o->gpa);
			return -EEXIST;
		}
	}
	/* Separate anonymous mapping: ROM is small and never shared with another process. */
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		err_set("cannot allocate %llu bytes of ROM: %s", (unsigned long long)size,
			strerror(errno));
		return -ENOMEM;
	}
	r = &gm->regions[gm->nregions++];
	*r = (struct guest_mem_region){
		.gpa = gpa, .size = size, .hva = p, .kind = GUEST_MEM_ROM, .fd_offset = 0};
	return 0;
}

void guest_mem_destroy(struct guest_mem *gm)
{
	for (unsigned i = 0; i < gm->nregions; i++)
		if (gm->regions[i].kind == GUEST_MEM_ROM)
			munmap(gm->regions[i].hva, gm->regions[i].size);
	if (gm->base)
		munmap(gm->base, gm->map_size);
	if (gm->memfd >= 0)
		close(gm->memfd);
	memset(gm, 0, sizeof(*gm));
	gm->memfd = -1;
}

static const struct guest_mem_region *guest_mem_find(const struct guest_mem *gm, uint64_t gpa)
{
	for (unsigned i = 0; i < gm->nregions; i++) {
		const struct guest_mem_region *r = &gm->regions[i];

		if (gpa >= r->gpa && gpa - r->gpa < r->size)
			return r;
	}
	return NULL;
}

void *guest_mem_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	const struct guest_mem_region *r;
	uint64_t off;

	if (len == 0)
		return NULL;
	r = guest_mem_find(gm, gpa);
	if (!r)
		return NULL;
	off = gpa - r->gpa;
	/* Written so that no sum can wrap: off < size holds here. */
	if (len > r->size - off)
		return NULL;
	return r->hva + off;
}

static int guest_mem_copy(const struct guest_mem *gm, uint64_t gpa, uint8_t *buf, size_t len,
			  bool to_guest)
{
	/* Check the whole range first so that a failing copy has no partial effect. */
	if (len && !guest_mem_range_is_ram(gm, gpa, len)) {
		uint64_t g = gpa;
		size_t left = len;

		/* ROM counts too: the host may read and fill it. */
		while (left) {
			const struct guest_mem_region *r = guest_mem_find(gm, g);
			uint64_t n;

			if (!r)
				return -EFAULT;
			n = MIN((uint64_t)left, r->size - (g - r->gpa));
			left -= n;
			if (left && g + n < g)
				return -EFAULT;
			g += n;
		}
	}
	while (len) {
		const struct guest_mem_region *r = guest_mem_find(gm, gpa);
		uint64_t off = gpa - r->gpa;
		size_t n = (size_t)MIN((uint64_t)len, r->size - off);

		if (to_guest)
			memcpy(r->hva + off, buf, n);
		else
			memcpy(buf, r->hva + off, n);
		buf += n;
		len -= n;
		gpa += n;
	}
	return 0;
}

int guest_mem_read(const struct guest_mem *gm, uint64_t gpa, void *buf, size_t len)
{
	return guest_mem_copy(gm, gpa, buf, len, false);
}

int guest_mem_write(const struct guest_mem *gm, uint64_t gpa, const void *buf, size_t len)
{
	return guest_mem_copy(gm, gpa, (uint8_t *)buf, len, true);
}

bool guest_mem_range_is_ram(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	if (len == 0)
		return false;
	while (len) {
		const struct guest_mem_region *r = guest_mem_find(gm, gpa);
		uint64_t n;

		if (!r || r->kind != GUEST_MEM_RAM)
			return false;
		n = MIN(len, r->size - (gpa - r->gpa));
		len -= n;
		if (len && gpa + n < gpa)
			return false;
		gpa += n;
	}
	return true;
}
