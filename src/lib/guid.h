/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * GUIDs in Windows wire order: Data1/Data2/Data3 little-endian, Data4 as bytes.
 * This is the layout VMBus offers, VHDX and VHD parent links all use.
 */
#ifndef VIRIDIAN_LIB_GUID_H
#define VIRIDIAN_LIB_GUID_H

#include <stdbool.h>
#include <stdint.h>

struct guid {
	uint8_t b[16];
};

#define GUID_STR_LEN 36 /* without the NUL */

/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", braces optional; 0 or -1. */
int guid_parse(const char *s, struct guid *out);
/* buf must hold GUID_STR_LEN + 1 bytes; lower case, no braces. */
char *guid_format(const struct guid *g, char *buf);
/* Random (version 4) GUID from getrandom(). */
void guid_generate(struct guid *out);
bool guid_equal(const struct guid *a, const struct guid *b);
bool guid_is_zero(const struct guid *g);

#endif
