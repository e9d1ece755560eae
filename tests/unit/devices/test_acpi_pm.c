// SPDX-License-Identifier: GPL-2.0-only
#include "devices/acpi_pm.h"
#include "lib/util.h"
#include "vid/layout.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <time.h>

static int poweroffs, sci_level, sci_changes;
static uint64_t fake_ns;

static void on_poweroff(void *opaque, const char *why)
{
	poweroffs++;
}

static void on_sci(void *opaque, unsigned irq, int level)
{
	sci_level = level;
	sci_changes++;
}

static uint64_t fake_clock(void *opaque)
{
	return fake_ns;
}

static void setup(struct acpi_pm *pm, struct iobus *pio, bool fake)
{
	struct dev_irq sci = {.set = on_sci, .irq = LAYOUT_ACPI_SCI_IRQ};
	struct dev_event ev = {.fn = on_poweroff};

	poweroffs = sci_level = sci_changes = 0;
	fake_ns = 1000;
	acpi_pm_init(pm, &sci, &ev, fake ? fake_clock : NULL, NULL);
	iobus_init(pio, "pio");
	assert_int_equal(acpi_pm_register(pm, pio), 0);
}

static uint32_t in(struct iobus *pio, uint16_t port, unsigned size)
{
	uint8_t d[4] = {0};

	assert_true(iobus_dispatch(pio, port, d, size, false));
	return d[0] | d[1] << 8 | d[2] << 16 | (uint32_t)d[3] << 24;
}

static void out(struct iobus *pio, uint16_t port, unsigned size, uint32_t v)
{
	uint8_t d[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

	assert_true(iobus_dispatch(pio, port, d, size, true));
}

static void test_timer_rate(void **state)
{
	struct acpi_pm pm;
	struct iobus pio;
	uint32_t a, b;

	setup(&pm, &pio, true);
	a = in(&pio, LAYOUT_ACPI_PM_TMR, 4);
	fake_ns += 1000000000ull; /* one second: 3579545 ticks */
	b = in(&pio, LAYOUT_ACPI_PM_TMR, 4);
	assert_int_equal((b - a) & 0xffffff, 3579545);
	assert_true(b <= 0xffffff); /* 24-bit counter */
	fake_ns += 10000000ull; /* 10 ms */
	a = in(&pio, LAYOUT_ACPI_PM_TMR, 4);
	assert_int_equal((a - b) & 0xffffff, 35795);
	acpi_pm_destroy(&pm);
}

static void test_timer_real_clock(void **state)
{
	struct acpi_pm pm;
	struct iobus pio;
	uint32_t prev, t0, t1;
	uint64_t n0, n1;
	struct timespec ts = {0, 50000000};
	double hz;

	setup(&pm, &pio, false);
	n0 = util_now_ns();
	t0 = prev = in(&pio, LAYOUT_ACPI_PM_TMR, 4);
	for (int i = 0; i < 1000; i++) {
		uint32_t t = in(&pio, LAYOUT_ACPI_PM_TMR, 4);

		assert_true(((t - prev) & 0xffffff) < 0x800000); /* monotonic mod 2^24 */
		prev = t;
	}
	nanosleep(&ts, NULL);
	t1 = in(&pio, LAYOUT_ACPI_PM_TMR, 4);
	n1 = util_now_ns();
	hz = (double)((t1 - t0) & 0xffffff) * 1e9 / (double)(n1 - n0);
	/* Within 5% of 3.579545 MHz (the reads bracket the sleep closely). */
	assert_true(hz > 3579545 * 0.95 && hz < 3579545 * 1.05);
	acpi_pm_destroy(&pm);
}

static void test_s5_poweroff(void **state)
{
	struct acpi_pm pm;
	struct iobus pio;

	setup(&pm, &pio, true);
	/* SLP_TYP = S5 without SLP_EN: nothing happens. */
	out(&pio, LAYOUT_ACPI_PM1A_CNT, 2, LAYOUT_ACPI_S5_SLP_TYP << 10);
	assert_int_equal(poweroffs, 0);
	/* Another sleep type with SLP_EN: not supported, ignored. */
	out(&pio, LAYOUT_ACPI_PM1A_CNT, 2, (1 << 10) | ACPI_PM1_CNT_SLP_EN);
	assert_int_equal(poweroffs, 0);
	out(&pio, LAYOUT_ACPI_PM1A_CNT, 2, (3 << 10) | ACPI_PM1_CNT_SLP_EN);
	assert_int_equal(poweroffs, 0);
	/* SLP_EN reads back as 0 (write-only). */
	assert_int_equal(in(&pio, LAYOUT_ACPI_PM1A_CNT, 2) & ACPI_PM1_CNT_SLP_EN, 0);
	out(&pio, LAYOUT_ACPI_PM1A_CNT, 2,
	    (LAYOUT_ACPI_S5_SLP_TYP << 10) | ACPI_PM1_CNT_SLP_EN | ACPI_PM1_CNT_SCI_EN);
	assert_int_equal(poweroffs, 1);
	/* Byte-wide write of the high byte (SLP_EN | SLP_TYP) works too. */
	out(&pio, LAYOUT_ACPI_PM1A_CNT + 1, 1, ((LAYOUT_ACPI_S5_SLP_TYP << 10) | 0x2000) >> 8);
	assert_int_equal(poweroffs, 2);
	acpi_pm_destroy(&pm);
}

static void test_sci_en_and_pwrbtn(void **state)
{
	struct acpi_pm pm;
	struct iobus pio;

	setup(&pm, &pio, true);
	/* No SMI port: ACPI mode from the start, SCI_EN set and stays set. */
	assert_int_equal(in(&pio, LAYOUT_ACPI_PM1A_CNT, 2) & ACPI_PM1_CNT_SCI_EN, 1);
	out(&pio, LAYOUT_ACPI_PM1A_CNT, 2, 0);
	assert_int_equal(in(&pio, LAYOUT_ACPI_PM1A_CNT, 2) & ACPI_PM1_CNT_SCI_EN, 1);
	/* Power button: status set, SCI only once enabled, cleared by writing 1. */
	acpi_pm_power_button(&pm);
	assert_int_equal(in(&pio, LAYOUT_ACPI_PM1A_EVT, 2) & ACPI_PM1_PWRBTN_STS,
			 ACPI_PM1_PWRBTN_STS);
	assert_int_equal(sci_level, 0);
	out(&pio, LAYOUT_ACPI_PM1A_EVT + 2, 2, ACPI_PM1_PWRBTN_STS);
	assert_int_equal(sci_level, 1);
	assert_int_equal(in(&pio, LAYOUT_ACPI_PM1A_EVT, 4) >> 16, ACPI_PM1_PWRBTN_STS);
	out(&pio, LAYOUT_ACPI_PM1A_EVT, 2, ACPI_PM1_PWRBTN_STS);
	assert_int_equal(sci_level, 0);
	assert_int_equal(in(&pio, LAYOUT_ACPI_PM1A_EVT, 2) & ACPI_PM1_PWRBTN_STS, 0);
	assert_int_equal(poweroffs, 0);
	acpi_pm_destroy(&pm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timer_rate),
		cmocka_unit_test(test_timer_real_clock),
		cmocka_unit_test(test_s5_poweroff),
		cmocka_unit_test(test_sci_en_and_pwrbtn),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
