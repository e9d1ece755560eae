/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * VHD (v1) driver: fixed, dynamic and differencing images behind the
 * disk_driver / blockdev contract.
 *
 * Size rule: the virtual size is the footer's CurrentSize (what Hyper-V uses);
 * check warns when an old creator (vpc, vs, qemu, vbox) disagrees with its CHS.
 * New images are written with creator "win " so qemu reports CurrentSize too.
 *
 * Contract details:
 * - discard is a no-op (the format has no way to free a block in place).
 * - Writes that allocate keep the BAT entry in memory until the next flush (or
 *   FUA write): flush = fdatasync, BAT/bitmap writes, fdatasync. map(for_write)
 *   answers SLOW for such blocks until then; map() never waits for the lock.
 * - DISK_OPEN_DIRECT: data_fd (for the queue's mapped I/O) is an O_DIRECT fd;
 *   the driver's own I/O stays buffered.
 * - check() returns 0 once it ran (findings in res; lines starting "error: " are
 *   errors, others warnings/notes), < 0 only when the file cannot be read.
 *   repair rewrites a damaged footer copy and cuts unreferenced space at EOF.
 * - merge(child) writes the child's sectors into its parent through a new RW
 *   open of the parent; close the child afterwards (its RO parent view is stale).
 * - resize grows only: fixed always; dynamic grows the BAT in place when the
 *   space after it is free, else moves it to the end of the file (one-sector
 *   header switch); differencing never.
 * - disk_info.disk_id holds the footer's unique id bytes as stored;
 *   creator is "<app> <major>.<minor>", e.g. "win 10.0", "qemu 5.3".
 */
#ifndef VIRIDIAN_DISK_VHD_H
#define VIRIDIAN_DISK_VHD_H

#include "disk/disk.h"

#include <stdint.h>

extern const struct disk_driver vhd_driver;

/* CHS geometry for size bytes per the VHD specification's algorithm. */
void vhd_chs_geometry(uint64_t size, uint16_t *cylinders, uint8_t *heads, uint8_t *sectors);
/* One's complement of the byte sum of buf with the 4 bytes at csum_off taken as zero. */
uint32_t vhd_checksum(const void *buf, size_t len, size_t csum_off);

#endif
