// SPDX-License-Identifier: GPL-2.0-only
#include "lib/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static __thread char err_buf[512];

void err_set(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err_buf, sizeof(err_buf), fmt, ap);
	va_end(ap);
}

void err_prefix(const char *fmt, ...)
{
	char old[sizeof(err_buf)];
	char pre[sizeof(err_buf)];
	va_list ap;

	memcpy(old, err_buf, sizeof(old));
	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	/* Truncation is acceptable: the message is for people, the start matters most. */
	size_t n = strnlen(pre, sizeof(pre) - 1);

	memcpy(err_buf, pre, n);
	if (old[0] && n + 2 < sizeof(err_buf)) {
		memcpy(err_buf + n, ": ", 2);
		n += 2;
		size_t m = strnlen(old, sizeof(err_buf) - 1 - n);

		memcpy(err_buf + n, old, m);
		n += m;
	}
	err_buf[n] = '\0';
}

const char *err_msg(void)
{
	return err_buf[0] ? err_buf : "unknown error";
}

void err_clear(void)
{
	err_buf[0] = '\0';
}
