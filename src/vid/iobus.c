// SPDX-License-Identifier: GPL-2.0-only
/* Port-I/O and MMIO range registration and dispatch. */
#include "vid/iobus.h"

#include "lib/err.h"
#include "lib/log.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>

void iobus_init(struct iobus *bus, const char *name)
{
	memset(bus, 0, sizeof(*bus));
	bus->name = name;
}

int iobus_register(struct iobus *bus, uint64_t base, uint64_t len, iobus_handler_fn *fn,
		   void *opaque, const char *name)
{
	unsigned pos;

	if (len == 0 || base + len < base || !fn) {
		err_set("%s: invalid range 0x%llx+0x%llx for %s", bus->name,
			(unsigned long long)base, (unsigned long long)len, name);
		return -EINVAL;
	}
	if (bus->nranges >= IOBUS_MAX_RANGES) {
		err_set("%s: too many ranges (max %d)", bus->name, IOBUS_MAX_RANGES);
		return -ENOSPC;
	}
	for (pos = 0; pos < bus->nranges; pos++) {
		const struct iobus_range *r = &bus->ranges[pos];

		if (base < r->base + r->len && r->base < base + len) {
			err_set("%s: %s at 0x%llx+0x%llx overlaps %s at 0x%llx+0x%llx", bus->name,
				name, (unsigned long long)base, (unsigned long long)len, r->name,
				(unsigned long long)r->base, (unsigned long long)r->len);
			return -EEXIST;
		}
		if (r->base > base)
			break;
	}
	memmove(&bus->ranges[pos + 1], &bus->ranges[pos],
		(bus->nranges - pos) * sizeof(bus->ranges[0]));
	bus->ranges[pos] = (struct iobus_range){
		.base = base, .len = len, .fn = fn, .opaque = opaque, .name = name};
	bus->nranges++;
	return 0;
}

static const struct iobus_range *iobus_find(const struct iobus *bus, uint64_t addr)
{
	unsigned lo = 0, hi = bus->nranges;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		const struct iobus_range *r = &bus->ranges[mid];

		if (addr < r->base)
			hi = mid;
		else if (addr - r->base >= r->len)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

bool iobus_dispatch(struct iobus *bus, uint64_t addr, uint8_t *data, unsigned size, bool is_write)
{
	const struct iobus_range *r = NULL;

	if (size == 1 || size == 2 || size == 4 || size == 8)
		r = iobus_find(bus, addr);
	/* The whole access must lie in the one range: a device never sees bytes it did not claim.
	 */
	if (r && size <= r->len - (addr - r->base)) {
		r->fn(r->opaque, addr - r->base, data, size, is_write);
		return true;
	}
	atomic_fetch_add_explicit(&bus->unhandled, 1, memory_order_relaxed);
	log_warn_ratelimited("vid", "unhandled %s %s at 0x%llx size %u", bus->name,
			     is_write ? "write" : "read", (unsigned long long)addr, size);
	if (!is_write && size <= 8)
		memset(data, 0xff, size);
	return false;
}
