/* SPDX-License-Identifier: GPL-2.0-only */
/* Shared by the disk-format fuzzers: exercise an opened image's read, map and status paths. */
#ifndef VIRIDIAN_TESTS_FUZZ_DISK_H
#define VIRIDIAN_TESTS_FUZZ_DISK_H

#include "disk/blockdev.h"

/* Reads at the start, middle, a third and the end, aligned to the image's own sector size. */
static inline void fuzz_disk_touch(struct blockdev *bd)
{
	static uint8_t buf[8192];
	uint64_t offs[4] = {0, bd->size / 2, bd->size > sizeof(buf) ? bd->size - sizeof(buf) : 0,
			    bd->size / 3};
	uint64_t align = bd->logical_sector_size ? bd->logical_sector_size : 512;

	for (int i = 0; i < 4; i++) {
		uint64_t off = offs[i] / align * align;
		uint64_t len = bd->size - off < sizeof(buf) ? bd->size - off : sizeof(buf);
		struct blockdev_extent ext;
		uint64_t run;
		int st;

		if (!len)
			continue;
		blockdev_read(bd, buf, len, off);
		if (bd->ops->map)
			bd->ops->map(bd, off, len, i & 1, &ext);
		if (bd->ops->block_status)
			bd->ops->block_status(bd, off, len, &st, &run);
	}
}

#endif
