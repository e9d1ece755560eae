// SPDX-License-Identifier: GPL-2.0-only
#include "devices/i8042.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

static int resets, irq_level, irq_changes;

static void on_reset(void *opaque, const char *why)
{
	resets++;
}

static void on_irq(void *opaque, unsigned irq, int level)
{
	irq_level = level;
	irq_changes++;
}

static void setup(struct i8042 *k)
{
	struct dev_irq irq = {.set = on_irq, .irq = 1};
	struct dev_event ev = {.fn = on_reset};

	resets = irq_level = irq_changes = 0;
	i8042_init(k, &irq, &ev);
}

static uint8_t status(struct i8042 *k)
{
	uint8_t v;

	i8042_cmd_io(k, 0, &v, 1, false);
	return v;
}

static void cmd(struct i8042 *k, uint8_t c)
{
	i8042_cmd_io(k, 0, &c, 1, true);
}

static uint8_t data_rd(struct i8042 *k)
{
	uint8_t v;

	i8042_data_io(k, 0, &v, 1, false);
	return v;
}

static void data_wr(struct i8042 *k, uint8_t v)
{
	i8042_data_io(k, 0, &v, 1, true);
}

static void test_self_test(void **state)
{
	struct i8042 k;

	setup(&k);
	assert_int_equal(status(&k) & I8042_STS_OBF, 0);
	cmd(&k, 0xaa);
	assert_int_equal(status(&k) & (I8042_STS_OBF | I8042_STS_SYS | I8042_STS_CMD),
			 I8042_STS_OBF | I8042_STS_SYS | I8042_STS_CMD);
	assert_int_equal(data_rd(&k), 0x55);
	assert_int_equal(status(&k) & I8042_STS_OBF, 0);
	cmd(&k, 0xab);
	assert_int_equal(data_rd(&k), 0x00);
	assert_int_equal(resets, 0);
	i8042_destroy(&k);
}

static void test_reset_fe(void **state)
{
	struct i8042 k;

	setup(&k);
	cmd(&k, 0xfe);
	assert_int_equal(resets, 1);
	/* 0xFF pulses no line: no reset. */
	cmd(&k, 0xff);
	assert_int_equal(resets, 1);
	/* Writing the output port with bit 0 clear also asserts reset. */
	cmd(&k, 0xd1);
	data_wr(&k, 0xdf);
	assert_int_equal(resets, 1);
	cmd(&k, 0xd1);
	data_wr(&k, 0xde);
	assert_int_equal(resets, 2);
	i8042_destroy(&k);
}

static void test_config_byte_and_irq(void **state)
{
	struct i8042 k;

	setup(&k);
	cmd(&k, 0x20);
	assert_int_equal(irq_level, 1); /* KBDINT is on by default */
	{
		uint8_t ctr = data_rd(&k);

		assert_true(ctr & I8042_CTR_KBDINT);
		assert_true(ctr & I8042_CTR_AUXDIS);
	}
	assert_int_equal(irq_level, 0);
	/* Turn the keyboard interrupt off: replies arrive without an IRQ. */
	cmd(&k, 0x60);
	assert_int_equal(status(&k) & I8042_STS_CMD, I8042_STS_CMD);
	data_wr(&k, I8042_CTR_SYS);
	assert_int_equal(status(&k) & I8042_STS_CMD, 0);
	cmd(&k, 0x20);
	assert_int_equal(irq_level, 0);
	/* No aux device: AUXDIS cannot be cleared. */
	assert_int_equal(data_rd(&k), I8042_CTR_SYS | I8042_CTR_AUXDIS);
	cmd(&k, 0xa8);
	cmd(&k, 0x20);
	assert_true(data_rd(&k) & I8042_CTR_AUXDIS);
	i8042_destroy(&k);
}

static void test_keyboard_replies(void **state)
{
	struct i8042 k;

	setup(&k);
	data_wr(&k, 0xff);
	assert_int_equal(data_rd(&k), 0xfa);
	assert_int_equal(data_rd(&k), 0xaa);
	data_wr(&k, 0xf2);
	assert_int_equal(data_rd(&k), 0xfa);
	assert_int_equal(data_rd(&k), 0xab);
	assert_int_equal(data_rd(&k), 0x83);
	data_wr(&k, 0xed); /* LEDs + argument: two ACKs */
	assert_int_equal(data_rd(&k), 0xfa);
	data_wr(&k, 0x02);
	assert_int_equal(data_rd(&k), 0xfa);
	assert_int_equal(status(&k) & I8042_STS_OBF, 0);
	i8042_destroy(&k);
}

static void test_output_port_and_echo(void **state)
{
	struct i8042 k;

	setup(&k);
	cmd(&k, 0xd0);
	assert_int_equal(data_rd(&k) & 0x01, 0x01); /* reset line not asserted */
	cmd(&k, 0xd2); /* next data byte comes back as if typed */
	data_wr(&k, 0x1c);
	assert_int_equal(status(&k) & I8042_STS_OBF, I8042_STS_OBF);
	assert_int_equal(data_rd(&k), 0x1c);
	/* Reading an empty buffer gives 0 and keeps OBF clear. */
	assert_int_equal(data_rd(&k), 0x00);
	assert_int_equal(status(&k) & I8042_STS_OBF, 0);
	assert_int_equal(resets, 0);
	i8042_destroy(&k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_self_test),
		cmocka_unit_test(test_reset_fe),
		cmocka_unit_test(test_config_byte_and_irq),
		cmocka_unit_test(test_keyboard_replies),
		cmocka_unit_test(test_output_port_and_echo),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
