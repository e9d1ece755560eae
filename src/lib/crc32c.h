/* SPDX-License-Identifier: GPL-2.0-only */
/* CRC-32C (Castagnoli), as VHDX uses it: init ~0, final xor ~0. */
#ifndef VIRIDIAN_LIB_CRC32C_H
#define VIRIDIAN_LIB_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC: crc32c(0, ...) starts one; chaining calls equals one call. */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

#endif
