/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Port-I/O and MMIO buses. A device registers its ranges at init (kvmtool style); the exit
 * dispatcher hands every guest access to the one range that contains it. Registration happens
 * before the vCPUs run; dispatch is lock-free reads of a sorted array after that.
 */
#ifndef VIRIDIAN_VID_IOBUS_H
#define VIRIDIAN_VID_IOBUS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * One access: offset is relative to the start of the registered range, size is 1, 2, 4 or 8,
 * data holds size bytes (little-endian). A handler fills data on reads.
 */
typedef void iobus_handler_fn(void *opaque, uint64_t offset, uint8_t *data, unsigned size,
			      bool is_write);

struct iobus_range {
	uint64_t base, len;
	iobus_handler_fn *fn;
	void *opaque;
	const char *name;
};

#define IOBUS_MAX_RANGES 64

struct iobus {
	const char *name; /* "pio" or "mmio", for the log */
	unsigned nranges;
	struct iobus_range ranges[IOBUS_MAX_RANGES]; /* sorted by base */
	_Atomic uint64_t unhandled; /* count of accesses nobody claimed */
};

void iobus_init(struct iobus *bus, const char *name);
/* 0, or -EEXIST (overlap) / -EINVAL / -ENOSPC with err_set(). */
int iobus_register(struct iobus *bus, uint64_t base, uint64_t len, iobus_handler_fn *fn,
		   void *opaque, const char *name);
/*
 * Dispatches one access. Returns true when a device handled it. An unclaimed access (or one
 * that straddles a range boundary) is logged rate-limited; reads of it return all ones.
 */
bool iobus_dispatch(struct iobus *bus, uint64_t addr, uint8_t *data, unsigned size, bool is_write);

#endif
