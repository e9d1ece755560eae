/* Minimal printf: %d %i %u %x %X %p %s %c %%, flags '0' '-' '#', width, l/ll/z. */
#include <stdbool.h>
#include <stdint.h>

#include "lib/printf.h"
#include "lib/serial.h"
#include "lib/spinlock.h"
#include "lib/string.h"

struct out {
	char *buf;
	size_t size;
	size_t len;
};

static void out_c(struct out *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static void out_num(struct out *o, uint64_t v, unsigned int base, bool neg, bool upper, int width,
		    bool zero, bool left, const char *prefix)
{
	char tmp[24];
	int n = 0, plen = (int)strlen(prefix) + (neg ? 1 : 0);
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";

	do {
		tmp[n++] = digits[v % base];
		v /= base;
	} while (v);
	int pad = width - n - plen;

	if (!left && !zero)
		for (; pad > 0; pad--)
			out_c(o, ' ');
	if (neg)
		out_c(o, '-');
	for (const char *p = prefix; *p; p++)
		out_c(o, *p);
	if (!left && zero)
		for (; pad > 0; pad--)
			out_c(o, '0');
	while (n)
		out_c(o, tmp[--n]);
	if (left)
		for (; pad > 0; pad--)
			out_c(o, ' ');
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct out o = {buf, size, 0};

	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			out_c(&o, *fmt);
			continue;
		}
		bool zero = false, left = false, alt = false;
		int width = 0, lng = 0;

		for (fmt++;; fmt++) {
			if (*fmt == '0')
				zero = true;
			else if (*fmt == '-')
				left = true;
			else if (*fmt == '#')
				alt = true;
			else
				break;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l' || *fmt == 'z') {
			lng++;
			fmt++;
		}
		switch (*fmt) {
		case 'd':
		case 'i': {
			int64_t v = lng ? va_arg(ap, long) : va_arg(ap, int);
			bool neg = v < 0;

			out_num(&o, neg ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, 10, neg, false,
				width, zero, left, "");
			break;
		}
		case 'u':
		case 'x':
		case 'X': {
			uint64_t v = lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int);
			unsigned int base = *fmt == 'u' ? 10 : 16;

			out_num(&o, v, base, false, *fmt == 'X', width, zero, left,
				alt && base == 16 ? "0x" : "");
			break;
		}
		case 'p':
			out_num(&o, (uint64_t)(uintptr_t)va_arg(ap, void *), 16, false, false,
				width, zero, left, "0x");
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);
			int n;

			if (!s)
				s = "(null)";
			n = (int)strlen(s);
			if (!left)
				for (int i = n; i < width; i++)
					out_c(&o, ' ');
			while (*s)
				out_c(&o, *s++);
			if (left)
				for (int i = n; i < width; i++)
					out_c(&o, ' ');
			break;
		}
		case 'c':
			out_c(&o, (char)va_arg(ap, int));
			break;
		case '%':
			out_c(&o, '%');
			break;
		case '\0':
			fmt--;
			break;
		default:
			out_c(&o, '%');
			out_c(&o, *fmt);
			break;
		}
	}
	if (size)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return (int)o.len;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

static struct spinlock console_lock;

void console_force_unlock(void)
{
	spin_unlock(&console_lock);
}

int vprintf(const char *fmt, va_list ap)
{
	char line[256];
	int n = vsnprintf(line, sizeof(line), fmt, ap);

	spin_lock(&console_lock);
	for (const char *p = line; *p; p++)
		serial_putc(*p);
	spin_unlock(&console_lock);
	return n;
}

int printf(const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vprintf(fmt, ap);
	va_end(ap);
	return n;
}
