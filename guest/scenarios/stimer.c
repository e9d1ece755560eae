/*
 * stimer: synthetic timer 0 (spec §2.4) in message mode (one-shot and periodic, timer-expired
 * messages on SINT 2) and direct mode (vector 0xED), counted against the TSC. Skipped when the
 * host does not offer timers (0x40000003.EAX bit 3). Explicit only.
 */
#include <stdint.h>

#include "hv/tguest_hv.h"
#include "hv/winhv.h"
#include "lib/printf.h"
#include "scenario.h"
#include "tap.h"

#define STIMER_LINES 3u
#define DIRECT_VECTOR 0xEDu

static struct {
	unsigned n, other;
	uint32_t index;
	uint64_t expiration, delivery;
} tm;
static volatile unsigned direct_hits;

static unsigned int stimer_count(void)
{
	return STIMER_LINES;
}

static int on_msg(void *arg, unsigned cpu, const struct whv_message *m)
{
	(void)arg;
	(void)cpu;
	if (m->header.message_type == WHV_MSG_TIMER_EXPIRED &&
	    m->header.payload_size >= sizeof(struct whv_timer_message)) {
		struct whv_timer_message t;

		memcpy(&t, m->payload, sizeof(t));
		tm.index = t.timer_index;
		tm.expiration = t.expiration_time;
		tm.delivery = t.delivery_time;
		tm.n++;
	} else {
		tm.other++;
	}
	return 0;
}

static void on_direct(void *arg, uint8_t vector)
{
	(void)arg;
	(void)vector;
	direct_hits++;
}

static void run_for_ms(uint64_t ms)
{
	uint64_t end = hvplat_now_ns() + ms * 1000000ull;

	while (hvplat_now_ns() < end)
		hvplat_wait();
}

static void timer_stop(void)
{
	hvplat_wrmsr(WHV_MSR_STIMER0_COUNT, 0);
	hvplat_wrmsr(WHV_MSR_STIMER0_CONFIG, 0);
}

static void stimer_run(void)
{
	const char *why = NULL;
	struct winhv *w = tguest_hv(&why);
	uint64_t cfg_msg =
		WHV_STIMER_ENABLE | WHV_STIMER_AUTO_ENABLE | (2ull << WHV_STIMER_SINT_SHIFT);
	uint64_t now;
	int e;

	if (!w || tguest_hv_synic(&why)) {
		for (unsigned i = 0; i < STIMER_LINES; i++)
			tap_not_ok("stimer", "setup failed: %s", why);
		return;
	}
	if (!(w->info.features_a & WHV_A_SYNTIMER)) {
		tap_ok("stimer: one-shot # SKIP synthetic timers not offered");
		tap_ok("stimer: periodic # SKIP synthetic timers not offered");
		tap_ok("stimer: direct mode # SKIP synthetic timers not offered");
		return;
	}
	winhv_set_msg_handler(w, 2, on_msg, NULL);

	/* One-shot, 10 ms ahead: exactly one message, not early. */
	memset(&tm, 0, sizeof(tm));
	now = winhv_ref_time();
	e = hvplat_wrmsr(WHV_MSR_STIMER0_CONFIG, cfg_msg);
	e |= hvplat_wrmsr(WHV_MSR_STIMER0_COUNT, now + 100000);
	run_for_ms(60);
	timer_stop();
	if (e || tm.n != 1 || tm.index != 0 || tm.expiration < now + 100000 ||
	    tm.delivery < tm.expiration)
		tap_not_ok("stimer: one-shot message mode",
			   "msr fault %d, %u messages, index %u, "
			   "expiration %+ld ticks",
			   e, tm.n, tm.index, (long)(tm.expiration - (now + 100000)));
	else
		tap_ok("stimer: one-shot message mode fired once, %lu us after its deadline",
		       (unsigned long)((tm.delivery - tm.expiration) / 10));

	/* Periodic, 5 ms: ~20 expirations in 100 ms (within 25%). */
	memset(&tm, 0, sizeof(tm));
	e = hvplat_wrmsr(WHV_MSR_STIMER0_CONFIG, cfg_msg | WHV_STIMER_PERIODIC);
	e |= hvplat_wrmsr(WHV_MSR_STIMER0_COUNT, 50000);
	run_for_ms(100);
	timer_stop();
	if (e || tm.n < 15 || tm.n > 25)
		tap_not_ok("stimer: periodic 5 ms", "msr fault %d, %u expirations in 100 ms", e,
			   tm.n);
	else
		tap_ok("stimer: periodic 5 ms fired %u times in 100 ms", tm.n);

	if (!(w->info.features_d & WHV_D_STIMER_DIRECT)) {
		tap_ok("stimer: direct mode # SKIP not offered (0x40000003.EDX bit 19)");
	} else if (hvplat_irq_register(DIRECT_VECTOR, on_direct, NULL)) {
		tap_not_ok("stimer: direct mode", "no IRQ slot for vector %#x", DIRECT_VECTOR);
	} else {
		direct_hits = 0;
		memset(&tm, 0, sizeof(tm));
		now = winhv_ref_time();
		e = hvplat_wrmsr(WHV_MSR_STIMER0_CONFIG,
				 WHV_STIMER_ENABLE | WHV_STIMER_AUTO_ENABLE | WHV_STIMER_DIRECT |
					 ((uint64_t)DIRECT_VECTOR << WHV_STIMER_VECTOR_SHIFT));
		e |= hvplat_wrmsr(WHV_MSR_STIMER0_COUNT, now + 100000);
		run_for_ms(60);
		timer_stop();
		if (e || direct_hits != 1 || tm.n)
			tap_not_ok("stimer: direct mode",
				   "msr fault %d, %u interrupts, %u messages", e, direct_hits,
				   tm.n);
		else
			tap_ok("stimer: direct mode raised vector %#x once, no message",
			       DIRECT_VECTOR);
	}
	winhv_set_msg_handler(w, 2, NULL, NULL);
}

static const struct scenario stimer_scenario = {
	.name = "stimer",
	.count = stimer_count,
	.run = stimer_run,
	.explicit_only = 1,
};
SCENARIO_REGISTER(stimer_scenario);
