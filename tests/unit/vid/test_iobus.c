// SPDX-License-Identifier: GPL-2.0-only
#include "vid/iobus.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct probe {
	unsigned calls;
	uint64_t offset;
	unsigned size;
	bool is_write;
	uint8_t last[8];
};

static void probe_fn(void *opaque, uint64_t offset, uint8_t *data, unsigned size, bool is_write)
{
	struct probe *p = opaque;

	p->calls++;
	p->offset = offset;
	p->size = size;
	p->is_write = is_write;
	if (is_write)
		memcpy(p->last, data, size);
	else
		for (unsigned i = 0; i < size; i++)
			data[i] = (uint8_t)(0x10 + offset + i);
}

static void test_register_and_overlap(void **state)
{
	struct iobus bus;
	struct probe a = {0}, b = {0};

	iobus_init(&bus, "pio");
	assert_int_equal(iobus_register(&bus, 0x3f8, 8, probe_fn, &a, "uart"), 0);
	assert_int_equal(iobus_register(&bus, 0x70, 2, probe_fn, &b, "rtc"), 0);
	assert_int_equal(iobus_register(&bus, 0x3ff, 1, probe_fn, &b, "x"), -EEXIST);
	assert_int_equal(iobus_register(&bus, 0x3f0, 9, probe_fn, &b, "x"), -EEXIST);
	assert_int_equal(iobus_register(&bus, 0x3f0, 0x20, probe_fn, &b, "x"), -EEXIST);
	assert_int_equal(iobus_register(&bus, 0x3f0, 8, probe_fn, &b, "adjacent"), 0);
	assert_int_equal(iobus_register(&bus, 0x100, 0, probe_fn, &b, "empty"), -EINVAL);
	assert_int_equal(iobus_register(&bus, UINT64_MAX, 2, probe_fn, &b, "wrap"), -EINVAL);
	assert_int_equal(bus.nranges, 3);
	/* Kept sorted for the binary search. */
	assert_true(bus.ranges[0].base == 0x70 && bus.ranges[1].base == 0x3f0 &&
		    bus.ranges[2].base == 0x3f8);
}

static void test_dispatch(void **state)
{
	struct iobus bus;
	struct probe a = {0}, b = {0};
	uint8_t d[8];

	iobus_init(&bus, "pio");
	assert_int_equal(iobus_register(&bus, 0x3f8, 8, probe_fn, &a, "uart"), 0);
	assert_int_equal(iobus_register(&bus, 0x600, 4, probe_fn, &b, "pm"), 0);
	d[0] = 'x';
	assert_true(iobus_dispatch(&bus, 0x3f8, d, 1, true));
	assert_int_equal(a.calls, 1);
	assert_true(a.is_write && a.offset == 0 && a.size == 1 && a.last[0] == 'x');
	assert_true(iobus_dispatch(&bus, 0x3fd, d, 1, false));
	assert_int_equal(a.offset, 5);
	assert_int_equal(d[0], 0x15);
	/* Width: a 4-byte access at offset 0 fits; at offset 2 it would cross the end. */
	assert_true(iobus_dispatch(&bus, 0x600, d, 4, false));
	assert_true(b.size == 4 && d[3] == 0x13);
	memset(d, 0, sizeof(d));
	assert_false(iobus_dispatch(&bus, 0x602, d, 4, false));
	assert_int_equal(b.calls, 1);
	assert_true(d[0] == 0xff && d[3] == 0xff);
	assert_true(iobus_dispatch(&bus, 0x602, d, 2, true));
	assert_int_equal(b.calls, 2);
	/* Odd widths are refused. */
	assert_false(iobus_dispatch(&bus, 0x600, d, 3, false));
}

static void test_unhandled(void **state)
{
	struct iobus bus;
	uint8_t d[4] = {0};
	char tmpl[] = "/tmp/test_iobus_XXXXXX", logbuf[65536];
	int fd = mkstemp(tmpl), saved = dup(2);
	ssize_t n;
	unsigned lines = 0;

	assert_true(fd >= 0 && saved >= 0);
	unlink(tmpl);
	dup2(fd, 2);
	iobus_init(&bus, "mmio");
	/* Many unclaimed accesses: reads give all ones, counted, the log stays rate-limited. */
	for (int i = 0; i < 1000; i++) {
		memset(d, 0, sizeof(d));
		assert_false(iobus_dispatch(&bus, 0xd0000000 + (uint64_t)i, d, 4, false));
		assert_true(d[0] == 0xff && d[1] == 0xff && d[2] == 0xff && d[3] == 0xff);
	}
	assert_false(iobus_dispatch(&bus, 0x80, d, 1, true));
	dup2(saved, 2);
	close(saved);
	assert_int_equal(bus.unhandled, 1001);
	n = pread(fd, logbuf, sizeof(logbuf) - 1, 0);
	close(fd);
	assert_true(n > 0);
	logbuf[n] = 0;
	for (char *p = logbuf; (p = strstr(p, "unhandled mmio")); p++)
		lines++;
	/* Logged, but a flood is cut to the rate limit's burst. */
	assert_true(lines >= 1 && lines <= 11);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_register_and_overlap),
		cmocka_unit_test(test_dispatch),
		cmocka_unit_test(test_unhandled),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
