// SPDX-License-Identifier: GPL-2.0-only
#include "lib/guid.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

/* Text position of each wire byte: Data1..3 are stored byte-reversed. */
static const uint8_t guid_text_order[16] = { 3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15 };

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int guid_parse(const char *s, struct guid *out)
{
	uint8_t text[16];
	size_t len = strlen(s);
	unsigned n = 0;

	if (len == GUID_STR_LEN + 2 && s[0] == '{' && s[len - 1] == '}') {
		s++;
		len -= 2;
	}
	if (len != GUID_STR_LEN)
		return -1;
	for (size_t i = 0; i < len;) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return -1;
			i++;
			continue;
		}
		int hi = hexval((unsigned char)s[i]), lo = hexval((unsigned char)s[i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		text[n++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	for (unsigned i = 0; i < 16; i++)
		out->b[i] = text[guid_text_order[i]];
	return 0;
}

char *guid_format(const struct guid *g, char *buf)
{
	uint8_t t[16];

	for (unsigned i = 0; i < 16; i++)
		t[guid_text_order[i]] = g->b[i];
	snprintf(buf, GUID_STR_LEN + 1,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", t[0], t[1],
		 t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9], t[10], t[11], t[12], t[13], t[14],
		 t[15]);
	return buf;
}

void guid_generate(struct guid *out)
{
	size_t got = 0;

	while (got < sizeof(out->b)) {
		ssize_t r = getrandom(out->b + got, sizeof(out->b) - got, 0);

		if (r > 0)
			got += (size_t)r;
	}
	/* Version 4 lives in the top nibble of Data3 (wire byte 7), variant in Data4[0]. */
	out->b[7] = (uint8_t)((out->b[7] & 0x0f) | 0x40);
	out->b[8] = (uint8_t)((out->b[8] & 0x3f) | 0x80);
}

bool guid_equal(const struct guid *a, const struct guid *b)
{
	return memcmp(a->b, b->b, sizeof(a->b)) == 0;
}

bool guid_is_zero(const struct guid *g)
{
	static const struct guid zero;

	return guid_equal(g, &zero);
}
