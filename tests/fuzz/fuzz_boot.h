/* SPDX-License-Identifier: GPL-2.0-only */
/* Shared body of the loader fuzzers: the input as a kernel image, with its format magic forced. */
#ifndef VIRIDIAN_TESTS_FUZZ_BOOT_H
#define VIRIDIAN_TESTS_FUZZ_BOOT_H

#include "boot/boot.h"
#include "boot/boot_internal.h"
#include "vid/guest_mem.h"

#include <stdlib.h>
#include <string.h>

static inline int fuzz_boot_load(const uint8_t *data, size_t size, size_t magic_off,
				 const char *magic, size_t magic_len)
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
	/* Forcing the magic lets the fuzzer spend its time past format detection. */
	if (size >= magic_off + magic_len)
		memcpy(img + magic_off, magic, magic_len);
	(void)boot_load_image(&gm, img, size, "fuzz", &cfg, &r);
	free(img);
	return 0;
}

#endif
