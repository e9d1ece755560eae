// SPDX-License-Identifier: GPL-2.0-only
/* Fuzzes the ELF/PVH loader: any bytes with the ELF magic forced in. */
#include "boot/boot.h"
#include "boot/boot_internal.h"
#include "vid/guest_mem.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct guest_mem gm;
	static bool ready;
	struct boot_config cfg = {.cmdline = "console=ttyS0", .rsdp_gpa = 0xe0000};
	struct boot_result r;
	uint8_t *img;

	if (!ready) {
		if (guest_mem_init(&gm, 64ull << 20, 0))
			abort();
		ready = true;
	}
	if (size > (64u << 20))
		return 0;
	img = malloc(size ? size : 1);
	if (!img)
		return 0;
	memcpy(img, data, size);
	if (size >= 4)
		memcpy(img,
		       "\x7f"
		       "ELF",
		       4);
	(void)boot_load_image(&gm, img, size, "fuzz", &cfg, &r);
	free(img);
	return 0;
}
