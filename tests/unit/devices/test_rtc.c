// SPDX-License-Identifier: GPL-2.0-only
#include "devices/rtc.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <time.h>

static uint64_t fake_ns;

static uint64_t fake_clock(void *opaque)
{
	return fake_ns;
}

static uint8_t rd(struct rtc *r, uint8_t idx)
{
	uint8_t v;

	rtc_io(r, 0, &idx, 1, true);
	rtc_io(r, 1, &v, 1, false);
	return v;
}

static void wr(struct rtc *r, uint8_t idx, uint8_t v)
{
	rtc_io(r, 0, &idx, 1, true);
	rtc_io(r, 1, &v, 1, true);
}

static unsigned bcd(uint8_t v)
{
	return (v >> 4) * 10 + (v & 15);
}

/* 2026-03-14 15:09:26 UTC, a Saturday. */
#define T0 1773500966ull

static void test_bcd_and_binary(void **state)
{
	struct rtc r;

	fake_ns = T0 * 1000000000ull;
	rtc_init(&r, fake_clock, NULL);
	assert_int_equal(rd(&r, RTC_SECONDS), 0x26);
	assert_int_equal(rd(&r, RTC_MINUTES), 0x09);
	assert_int_equal(rd(&r, RTC_HOURS), 0x15);
	assert_int_equal(rd(&r, RTC_DAY_OF_MONTH), 0x14);
	assert_int_equal(rd(&r, RTC_MONTH), 0x03);
	assert_int_equal(rd(&r, RTC_YEAR), 0x26);
	assert_int_equal(rd(&r, RTC_CENTURY), 0x20);
	assert_int_equal(rd(&r, RTC_DAY_OF_WEEK), 7);
	wr(&r, RTC_REG_B, RTC_B_24H | RTC_B_DM_BINARY);
	assert_int_equal(rd(&r, RTC_SECONDS), 26);
	assert_int_equal(rd(&r, RTC_HOURS), 15);
	assert_int_equal(rd(&r, RTC_YEAR), 26);
	assert_int_equal(rd(&r, RTC_REG_D), RTC_D_VRT);
	/* Register C and D are read-only; C reads 0 (no interrupt flags, nothing pending). */
	wr(&r, RTC_REG_C, 0xff);
	wr(&r, RTC_REG_D, 0x00);
	assert_int_equal(rd(&r, RTC_REG_C), 0);
	assert_int_equal(rd(&r, RTC_REG_D), RTC_D_VRT);
	rtc_destroy(&r);
}

static void test_12h(void **state)
{
	struct rtc r;

	fake_ns = T0 * 1000000000ull;
	rtc_init(&r, fake_clock, NULL);
	wr(&r, RTC_REG_B, 0); /* 12 h, BCD */
	assert_int_equal(rd(&r, RTC_HOURS), 0x80 | 0x03); /* 3 PM */
	fake_ns = (T0 - 15 * 3600) * 1000000000ull; /* 00:09 */
	assert_int_equal(rd(&r, RTC_HOURS), 0x12); /* 12 AM */
	fake_ns = (T0 - 3 * 3600) * 1000000000ull; /* 12:09 */
	assert_int_equal(rd(&r, RTC_HOURS), 0x80 | 0x12); /* 12 PM */
	rtc_destroy(&r);
}

static void test_update_in_progress(void **state)
{
	struct rtc r;

	rtc_init(&r, fake_clock, NULL);
	fake_ns = T0 * 1000000000ull + 500000000ull;
	assert_int_equal(rd(&r, RTC_REG_A) & RTC_A_UIP, 0);
	fake_ns = T0 * 1000000000ull + 999900000ull; /* last 244 us of the second */
	assert_int_equal(rd(&r, RTC_REG_A) & RTC_A_UIP, RTC_A_UIP);
	assert_int_equal(rd(&r, RTC_REG_A) & 0x7f, 0x26);
	rtc_destroy(&r);
}

static void test_host_time(void **state)
{
	struct rtc r;
	struct tm tm;
	time_t now = time(NULL), got;

	rtc_init(&r, NULL, NULL);
	wr(&r, RTC_REG_B, RTC_B_24H | RTC_B_DM_BINARY);
	tm = (struct tm){0};
	tm.tm_year = rd(&r, RTC_CENTURY) * 100 + rd(&r, RTC_YEAR) - 1900;
	tm.tm_mon = rd(&r, RTC_MONTH) - 1;
	tm.tm_mday = rd(&r, RTC_DAY_OF_MONTH);
	tm.tm_hour = rd(&r, RTC_HOURS);
	tm.tm_min = rd(&r, RTC_MINUTES);
	tm.tm_sec = rd(&r, RTC_SECONDS);
	got = timegm(&tm);
	assert_true(got - now <= 2 && now - got <= 2);
	rtc_destroy(&r);
}

static void test_index_nmi_bit_and_ram(void **state)
{
	struct rtc r;

	fake_ns = T0 * 1000000000ull;
	rtc_init(&r, fake_clock, NULL);
	/* Bit 7 of the index is the NMI mask: 0x80|0x04 selects register 4. */
	assert_int_equal(rd(&r, 0x80 | RTC_HOURS), 0x15);
	wr(&r, 0x80 | 0x40, 0x77);
	assert_int_equal(rd(&r, 0x40), 0x77);
	/* Guest sets the clock: minutes follow the new value from then on. */
	wr(&r, RTC_REG_B, RTC_B_SET | RTC_B_24H);
	wr(&r, RTC_MINUTES, 0x30);
	wr(&r, RTC_REG_B, RTC_B_24H);
	assert_int_equal(bcd(rd(&r, RTC_MINUTES)), 30);
	fake_ns += 60 * 1000000000ull;
	assert_int_equal(bcd(rd(&r, RTC_MINUTES)), 31);
	rtc_destroy(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bcd_and_binary),	      cmocka_unit_test(test_12h),
		cmocka_unit_test(test_update_in_progress),    cmocka_unit_test(test_host_time),
		cmocka_unit_test(test_index_nmi_bit_and_ram),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
