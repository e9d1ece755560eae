// SPDX-License-Identifier: GPL-2.0-only
/*
 * VHDX parser fuzzer. A real VHDX spreads its structures over the first few
 * MiB, so the input is cut into pieces that land where the structures live
 * (file id, both headers, both region tables, log, metadata table and items,
 * BAT, a data block); the rest of the file is a sparse hole. Unless the first
 * input byte says otherwise, the harness fixes the CRCs of the headers, region
 * tables and first log entry so the fuzzer gets past them. The image is then
 * opened read-only (with and without DISK_OPEN_NO_REPLAY), read, mapped and
 * checked without repair.
 */
#include "disk/disk.h"
#include "fuzz_disk.h"
#include "disk/vhdx.h"
#include "lib/crc32c.h"
#include "lib/log.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char img[96];

struct piece {
	uint64_t off;
	uint32_t len;
	uint32_t crc_len; /* 0: no CRC at +4 to fix */
};

static const struct piece pieces[] = {
	{0, 1024, 0},
	{64 * 1024, 4096, 4096},
	{128 * 1024, 4096, 4096},
	{192 * 1024, 1024, 64 * 1024},
	{256 * 1024, 1024, 64 * 1024},
	{1024 * 1024, 8192, 8192}, /* log: first entry of up to 8 KiB */
	{2 * 1024 * 1024, 1024, 0}, /* metadata table */
	{2 * 1024 * 1024 + 65536, 1024, 0}, /* metadata items */
	{3 * 1024 * 1024, 1024, 0}, /* BAT */
	{4 * 1024 * 1024, 4096, 0}, /* data / sector bitmap */
};

static void fix_crc(int fd, const struct piece *p)
{
	static uint8_t buf[64 * 1024];
	if (pread(fd, buf, p->crc_len, (off_t)p->off) != (ssize_t)p->crc_len)
		return;
	memset(buf + 4, 0, 4);
	uint32_t c = crc32c(0, buf, p->crc_len);
	if (pwrite(fd, &c, 4, (off_t)p->off + 4) != 4)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct disk_check_result res;
	struct disk_info info;
	struct blockdev *bd;

	if (!img[0]) {
		char dir[] = "/tmp/fuzz_vhdx.XXXXXX";

		if (!mkdtemp(dir))
			abort();
		snprintf(img, sizeof(img), "%s/img.vhdx", dir);
		log_set_level(LOG_ERROR);
	}
	if (!size)
		return 0;
	bool fix = !(data[0] & 1);
	data++;
	size--;
	int fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		abort();
	uint64_t end = 5 * 1024 * 1024;
	for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]) && size; i++) {
		size_t n = size < pieces[i].len ? size : pieces[i].len;
		if (pwrite(fd, data, n, (off_t)pieces[i].off) != (ssize_t)n)
			abort();
		data += n;
		size -= n;
	}
	/* Trailing input decides the file size (truncation cases). */
	if (size >= 2)
		end = (uint64_t)(data[0] | data[1] << 8) * 4096;
	if (ftruncate(fd, (off_t)end))
		abort();
	if (fix)
		for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++)
			if (pieces[i].crc_len && pieces[i].off + pieces[i].crc_len <= end)
				fix_crc(fd, &pieces[i]);
	close(fd);

	if (disk_open(img, DISK_FORMAT_VHDX, DISK_OPEN_RDONLY, &bd) == 0) {
		fuzz_disk_touch(bd);
		disk_info_get(bd, &info);
		blockdev_close(bd);
	}
	if (disk_open(img, DISK_FORMAT_VHDX, DISK_OPEN_RDONLY | DISK_OPEN_NO_REPLAY, &bd) == 0) {
		fuzz_disk_touch(bd);
		disk_info_get(bd, &info);
		blockdev_close(bd);
	}
	vhdx_driver.check(img, false, &res, NULL);
	return 0;
}
