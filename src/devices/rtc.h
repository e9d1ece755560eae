/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * MC146818-style CMOS RTC at ports 0x70 (index; bit 7 is the NMI mask and ignored) and 0x71
 * (data). The clock follows the host's wall clock plus an offset the guest sets by writing the
 * time registers. Register A's update-in-progress bit is set for the last 244 us of every
 * second, as on the real part. No periodic/alarm interrupts.
 */
#ifndef VIRIDIAN_DEVICES_RTC_H
#define VIRIDIAN_DEVICES_RTC_H

#include "devices/dev.h"
#include "vid/iobus.h"

#include <pthread.h>
#include <stdint.h>

#define RTC_SECONDS 0x00
#define RTC_MINUTES 0x02
#define RTC_HOURS 0x04
#define RTC_DAY_OF_WEEK 0x06
#define RTC_DAY_OF_MONTH 0x07
#define RTC_MONTH 0x08
#define RTC_YEAR 0x09
#define RTC_REG_A 0x0a
#define RTC_REG_B 0x0b
#define RTC_REG_C 0x0c
#define RTC_REG_D 0x0d
#define RTC_CENTURY 0x32

#define RTC_A_UIP 0x80
#define RTC_B_SET 0x80
#define RTC_B_DM_BINARY 0x04
#define RTC_B_24H 0x02
#define RTC_D_VRT 0x80

/* Wall-clock source in nanoseconds since the epoch (tests inject a fake one). */
typedef uint64_t rtc_clock_fn(void *opaque);

struct rtc {
	pthread_mutex_t lock;
	rtc_clock_fn *clock;
	void *clock_opaque;
	int64_t offset_s; /* guest time minus host time */
	uint8_t index;
	uint8_t cmos[128];
};

/* clock NULL: CLOCK_REALTIME. */
void rtc_init(struct rtc *rtc, rtc_clock_fn *clock, void *clock_opaque);
void rtc_destroy(struct rtc *rtc);
int rtc_register(struct rtc *rtc, struct iobus *pio);
iobus_handler_fn rtc_io; /* offset 0 = index, 1 = data */

#endif
