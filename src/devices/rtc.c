// SPDX-License-Identifier: GPL-2.0-only
/* CMOS real-time clock. */
#include "devices/rtc.h"

#include "vid/layout.h"

#include <string.h>
#include <time.h>

#define RTC_UIP_NS 244000ull /* update cycle length on the MC146818 at 32.768 kHz */

static uint64_t rtc_host_clock(void *opaque)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void rtc_init(struct rtc *rtc, rtc_clock_fn *clock, void *clock_opaque)
{
	memset(rtc, 0, sizeof(*rtc));
	pthread_mutex_init(&rtc->lock, NULL);
	rtc->clock = clock ? clock : rtc_host_clock;
	rtc->clock_opaque = clock_opaque;
	rtc->cmos[RTC_REG_A] = 0x26; /* 32.768 kHz time base, 1024 Hz rate */
	rtc->cmos[RTC_REG_B] = RTC_B_24H;
	rtc->cmos[RTC_REG_D] = RTC_D_VRT;
}

void rtc_destroy(struct rtc *rtc)
{
	pthread_mutex_destroy(&rtc->lock);
}

static uint8_t rtc_to_bcd(const struct rtc *rtc, unsigned v)
{
	if (rtc->cmos[RTC_REG_B] & RTC_B_DM_BINARY)
		return (uint8_t)v;
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}

static unsigned rtc_from_bcd(const struct rtc *rtc, uint8_t v)
{
	if (rtc->cmos[RTC_REG_B] & RTC_B_DM_BINARY)
		return v;
	return (v >> 4) * 10 + (v & 0x0f);
}

static void rtc_now(const struct rtc *rtc, struct tm *tm, uint64_t *ns_in_second)
{
	uint64_t ns = rtc->clock(rtc->clock_opaque);
	time_t t = (time_t)(ns / 1000000000ull) + rtc->offset_s;

	gmtime_r(&t, tm);
	if (ns_in_second)
		*ns_in_second = ns % 1000000000ull;
}

static uint8_t rtc_hour(const struct rtc *rtc, int hour)
{
	unsigned h;

	if (rtc->cmos[RTC_REG_B] & RTC_B_24H)
		return rtc_to_bcd(rtc, (unsigned)hour);
	/* 12-hour mode: 12, 1..11 and bit 7 for PM. */
	h = (unsigned)hour % 12;
	if (h == 0)
		h = 12;
	return rtc_to_bcd(rtc, h) | (hour >= 12 ? 0x80 : 0);
}

static uint8_t rtc_read(struct rtc *rtc, unsigned reg)
{
	struct tm tm;
	uint64_t ns;
	uint8_t v;

	rtc_now(rtc, &tm, &ns);
	switch (reg) {
	case RTC_SECONDS:
		return rtc_to_bcd(rtc, (unsigned)tm.tm_sec % 60);
	case RTC_MINUTES:
		return rtc_to_bcd(rtc, (unsigned)tm.tm_min);
	case RTC_HOURS:
		return rtc_hour(rtc, tm.tm_hour);
	case RTC_DAY_OF_WEEK:
		return rtc_to_bcd(rtc, (unsigned)tm.tm_wday + 1);
	case RTC_DAY_OF_MONTH:
		return rtc_to_bcd(rtc, (unsigned)tm.tm_mday);
	case RTC_MONTH:
		return rtc_to_bcd(rtc, (unsigned)tm.tm_mon + 1);
	case RTC_YEAR:
		return rtc_to_bcd(rtc, (unsigned)(tm.tm_year + 1900) % 100);
	case RTC_CENTURY:
		return rtc_to_bcd(rtc, (unsigned)(tm.tm_year + 1900) / 100);
	case RTC_REG_A:
		v = rtc->cmos[RTC_REG_A] & 0x7f;
		if (!(rtc->cmos[RTC_REG_B] & RTC_B_SET) && ns >= 1000000000ull - RTC_UIP_NS)
			v |= RTC_A_UIP;
		return v;
	case RTC_REG_C:
		v = rtc->cmos[RTC_REG_C];
		rtc->cmos[RTC_REG_C] = 0; /* flags clear on read */
		return v;
	case RTC_REG_D:
		return RTC_D_VRT;
	default:
		return rtc->cmos[reg & 0x7f];
	}
}

/* The guest sets the clock: keep the difference from host time. */
static void rtc_set_field(struct rtc *rtc, unsigned reg, uint8_t v)
{
	struct tm tm;
	uint64_t host_s = rtc->clock(rtc->clock_opaque) / 1000000000ull;
	unsigned val;
	time_t t;

	rtc_now(rtc, &tm, NULL);
	if (reg == RTC_HOURS && !(rtc->cmos[RTC_REG_B] & RTC_B_24H)) {
		val = rtc_from_bcd(rtc, v & 0x7f) % 12;
		if (v & 0x80)
			val += 12;
	} else {
		val = rtc_from_bcd(rtc, v);
	}
	switch (reg) {
	case RTC_SECONDS:
		tm.tm_sec = (int)(val % 60);
		break;
	case RTC_MINUTES:
		tm.tm_min = (int)(val % 60);
		break;
	case RTC_HOURS:
		tm.tm_hour = (int)(val % 24);
		break;
	case RTC_DAY_OF_MONTH:
		if (val >= 1 && val <= 31)
			tm.tm_mday = (int)val;
		break;
	case RTC_MONTH:
		if (val >= 1 && val <= 12)
			tm.tm_mon = (int)val - 1;
		break;
	case RTC_YEAR:
		tm.tm_year = (tm.tm_year + 1900) / 100 * 100 + (int)(val % 100) - 1900;
		break;
	case RTC_CENTURY:
		tm.tm_year = (int)(val % 100) * 100 + (tm.tm_year + 1900) % 100 - 1900;
		break;
	default:
		return;
	}
	t = timegm(&tm);
	if (t != (time_t)-1)
		rtc->offset_s = (int64_t)t - (int64_t)host_s;
}

static void rtc_write(struct rtc *rtc, unsigned reg, uint8_t v)
{
	switch (reg) {
	case RTC_SECONDS:
	case RTC_MINUTES:
	case RTC_HOURS:
	case RTC_DAY_OF_MONTH:
	case RTC_MONTH:
	case RTC_YEAR:
	case RTC_CENTURY:
		rtc_set_field(rtc, reg, v);
		break;
	case RTC_DAY_OF_WEEK:
		break; /* derived from the date */
	case RTC_REG_A:
		rtc->cmos[RTC_REG_A] = v & 0x7f; /* UIP is read-only */
		break;
	case RTC_REG_C:
	case RTC_REG_D:
		break; /* read-only */
	default:
		rtc->cmos[reg & 0x7f] = v;
		break;
	}
}

void rtc_io(void *opaque, uint64_t offset, uint8_t *data, unsigned size, bool is_write)
{
	struct rtc *rtc = opaque;

	pthread_mutex_lock(&rtc->lock);
	for (unsigned i = 0; i < size; i++) {
		uint64_t port = offset + i;

		if (port == 0) {
			if (is_write)
				rtc->index = data[i] & 0x7f; /* bit 7: NMI mask, not ours */
			else
				data[i] = 0xff; /* the index port is write-only */
		} else if (port == 1) {
			if (is_write)
				rtc_write(rtc, rtc->index, data[i]);
			else
				data[i] = rtc_read(rtc, rtc->index);
		} else if (!is_write) {
			data[i] = 0xff;
		}
	}
	pthread_mutex_unlock(&rtc->lock);
}

int rtc_register(struct rtc *rtc, struct iobus *pio)
{
	return iobus_register(pio, LAYOUT_RTC_PORT, 2, rtc_io, rtc, "rtc");
}
