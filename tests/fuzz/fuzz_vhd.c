// SPDX-License-Identifier: GPL-2.0-only
/*
 * VHD parser fuzzer: the input becomes an image file in a private temp dir,
 * which is opened read-only, read at a few places, mapped, and checked
 * without repair.
 */
#include "disk/disk.h"
#include "fuzz_disk.h"
#include "disk/vhd.h"
#include "lib/log.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char img[96];
static char img_dir[64];

static void fuzz_vhd_cleanup(void)
{
	unlink(img);
	rmdir(img_dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct disk_check_result res;
	struct disk_info info;
	struct blockdev *bd;
	int fd;

	if (!img[0]) {
		snprintf(img_dir, sizeof(img_dir), "/tmp/fuzz_vhd.XXXXXX");
		if (!mkdtemp(img_dir))
			abort();
		snprintf(img, sizeof(img), "%s/img.vhd", img_dir);
		atexit(fuzz_vhd_cleanup);
		log_set_level(LOG_ERROR);
	}
	fd = open(img, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		abort();
	if (size && write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);

	if (disk_open(img, DISK_FORMAT_VHD, DISK_OPEN_RDONLY, &bd) == 0) {
		fuzz_disk_touch(bd);
		disk_info_get(bd, &info);
		blockdev_close(bd);
	}
	vhd_driver.check(img, false, &res, NULL);
	return 0;
}
