/* SPDX-License-Identifier: GPL-2.0-only */
/* Raw images: the file (or block device) is the disk, byte for byte. */
#ifndef VIRIDIAN_DISK_RAW_H
#define VIRIDIAN_DISK_RAW_H

#include "disk/disk.h"

extern const struct disk_driver raw_driver;

#endif
