/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * VHD (v1) driver: fixed, dynamic and differencing images behind the
 * disk_driver / blockdev contract.
 *
 * Size rule: the virtual size is the footer's CurrentSize (what Hyper-V uses);
 * check warns when an old creator (vpc, vs, qemu, vbox) disagrees with its CHS.
 * New images are written with creator "win " so qemu reports CurrentSize too.
 * discard is a no-op (the format has no way to free a block in place).
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
