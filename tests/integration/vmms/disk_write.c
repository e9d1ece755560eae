// SPDX-License-Identifier: GPL-2.0-only
/*
 * Test helper: `disk_write IMAGE OFFSET LENGTH BYTE` fills a range of any image
 * the disk library opens (differencing VHD/VHDX included, which qemu-io cannot
 * write), standing in for a guest writing to its disk.
 */
#include "disk/disk.h"
#include "lib/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	struct blockdev *bd;
	unsigned long long off, len;
	unsigned byte;
	char *buf;
	int r;

	if (argc != 5 || sscanf(argv[2], "%llu", &off) != 1 || sscanf(argv[3], "%llu", &len) != 1 ||
	    sscanf(argv[4], "%i", &byte) != 1 || len > (64u << 20)) {
		fprintf(stderr, "usage: disk_write IMAGE OFFSET LENGTH BYTE\n");
		return 2;
	}
	if (disk_open(argv[1], DISK_FORMAT_AUTO, 0, &bd) < 0) {
		fprintf(stderr, "disk_write: %s\n", err_msg());
		return 1;
	}
	buf = malloc(len);
	if (!buf)
		return 1;
	memset(buf, (int)byte, len);
	r = blockdev_write(bd, buf, len, off, 0);
	if (!r)
		r = blockdev_flush(bd);
	if (r < 0)
		fprintf(stderr, "disk_write: write failed: %s\n", err_msg());
	free(buf);
	return blockdev_close(bd) < 0 || r < 0;
}
