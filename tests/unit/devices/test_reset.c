// SPDX-License-Identifier: GPL-2.0-only
#include "devices/reset.h"
#include "vid/layout.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

static int resets;

static void on_reset(void *opaque, const char *why)
{
	resets++;
}

static void test_cf9(void **state)
{
	struct dev_event ev = {.fn = on_reset};
	struct reset_cf9 rc;
	struct iobus pio;
	uint8_t v;

	resets = 0;
	reset_cf9_init(&rc, &ev);
	iobus_init(&pio, "pio");
	assert_int_equal(reset_cf9_register(&rc, &pio), 0);
	/* Bit 1 alone selects a hard reset but does not start one (what OSes write first). */
	v = 0x02;
	assert_true(iobus_dispatch(&pio, LAYOUT_RESET_PORT, &v, 1, true));
	assert_int_equal(resets, 0);
	assert_true(iobus_dispatch(&pio, LAYOUT_RESET_PORT, &v, 1, false));
	assert_int_equal(v, 0x02);
	/* Bits 1 and 2: hard reset. */
	v = 0x06;
	assert_true(iobus_dispatch(&pio, LAYOUT_RESET_PORT, &v, 1, true));
	assert_int_equal(resets, 1);
	/* RST_CPU self-clears. */
	assert_true(iobus_dispatch(&pio, LAYOUT_RESET_PORT, &v, 1, false));
	assert_int_equal(v & RESET_CF9_RST_CPU, 0);
	v = 0x00;
	assert_true(iobus_dispatch(&pio, LAYOUT_RESET_PORT, &v, 1, true));
	assert_int_equal(resets, 1);
	reset_cf9_destroy(&rc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cf9),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
