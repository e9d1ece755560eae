// SPDX-License-Identifier: GPL-2.0-only
/* Fuzzes the bzImage loader: any bytes with the "HdrS" magic forced in. */
#include "fuzz_boot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_boot_load(data, size, HDR_MAGIC, "HdrS", 4);
}
