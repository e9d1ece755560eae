// SPDX-License-Identifier: GPL-2.0-only
/* Synthetic timers: one-shot/periodic, message and direct mode, stop, reset, #GP. */
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "hv_test.h"
#include "hv/hv_synic.h"

#define CFG_MSG_ONESHOT 0x20009ull /* enable|auto_enable|sintx=2, as Linux writes it */
#define CFG_DIRECT 0x1ED9ull /* enable|auto_enable|direct|vector 0xED */
#define CFG_MSG_PERIODIC 0x2000Bull

static uint64_t now_ref(struct hv_fixture *f)
{
	uint64_t v;

	assert_int_equal(hv_msr_read(f->part, 0, HV_MSR_TIME_REF_COUNT, &v), HV_MSR_OK);
	return v;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Waits up to 2 s for a message in (vp 0, SINT 2). */
static int wait_msg(struct hv_fixture *f, struct hv_message *m)
{
	for (int i = 0; i < 2000; i++) {
		if (hv_test_consume(f, 0, 2, m))
			return 1;
		sleep_ms(1);
	}
	return 0;
}

static void test_oneshot_message(void **state)
{
	struct hv_fixture *f = *state;
	struct hv_message m;
	uint64_t count, cfg, exp, del;
	uint32_t idx;

	hv_test_synic_on(f, 0);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_STIMER0_CONFIG, CFG_MSG_ONESHOT),
			 HV_MSR_OK);
	count = now_ref(f) + 20000; /* 2 ms */
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_STIMER0_CONFIG + 1, count), HV_MSR_OK);
	assert_int_equal(wait_msg(f, &m), 1);
	assert_int_equal(m.header.message_type, HVMSG_TIMER_EXPIRED);
	assert_int_equal(m.header.payload_size, 24);
	memcpy(&idx, m.payload, 4);
	memcpy(&exp, m.payload + 8, 8);
	memcpy(&del, m.payload + 16, 8);
	assert_int_equal(idx, 0);
	assert_true(exp == count);
	assert_true(del >= exp);
	assert_true(now_ref(f) >= count);
	assert_int_equal(hv_test_irq_vector(f, 0, NULL), T_VEC);
	/* One-shot: disabled after expiry, fires once. */
	assert_int_equal(hv_msr_read(f->part, 0, HV_MSR_STIMER0_CONFIG, &cfg), HV_MSR_OK);
	assert_int_equal(cfg & HV_STIMER_ENABLE, 0);
	sleep_ms(10);
	assert_int_equal(hv_test_consume(f, 0, 2, &m), 0);
	/* COUNT in the past fires right away (auto_enable re-enables). */
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_STIMER0_CONFIG + 1, 1), HV_MSR_OK);
	assert_int_equal(wait_msg(f, &m), 1);
	assert_int_equal(m.header.message_type, HVMSG_TIMER_EXPIRED);
}

static void test_direct(void **state)
{
	struct hv_fixture *f = *state;

	/* Direct mode needs no SynIC pages. Vector < 16 with enable: #GP. */
	assert_int_equal(hv_msr_write(f->part, 1, HV_MSR_STIMER0_CONFIG + 2, 0x1009), HV_MSR_GP);
	assert_int_equal(hv_msr_write(f->part, 1, HV_MSR_STIMER0_CONFIG + 2, CFG_DIRECT),
			 HV_MSR_OK);
	assert_int_equal(hv_msr_write(f->part, 1, HV_MSR_STIMER0_CONFIG + 3, now_ref(f) + 10000),
			 HV_MSR_OK);
	for (int i = 0; i < 2000 && hv_test_nirq(f) == 0; i++)
		sleep_ms(1);
	assert_int_equal(hv_test_nirq(f), 1);
	unsigned vp;

	assert_int_equal(hv_test_irq_vector(f, 0, &vp), 0xED);
	assert_int_equal(vp, 1);
}

static void test_periodic_and_stop(void **state)
{
	struct hv_fixture *f = *state;
	struct hv_message m;
	unsigned got = 0;

	hv_test_synic_on(f, 0);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_STIMER0_CONFIG + 6, CFG_MSG_PERIODIC),
			 HV_MSR_OK);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_STIMER3_COUNT, 20000), HV_MSR_OK);
	while (got < 3 && wait_msg(f, &m)) {
		uint32_t idx;

		memcpy(&idx, m.payload, 4);
		assert_int_equal(idx, 3);
		got++;
	}
	assert_int_equal(got, 3);
	/* Linux's shutdown: COUNT = 0, then CONFIG = 0. Nothing fires afterwards. */
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_STIMER3_COUNT, 0), HV_MSR_OK);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_STIMER0_CONFIG + 6, 0), HV_MSR_OK);
	sleep_ms(5);
	while (hv_test_consume(f, 0, 2, &m)) /* drain one that raced with the stop */
		;
	sleep_ms(10);
	assert_int_equal(hv_test_consume(f, 0, 2, &m), 0);
}

static void test_reset_disarms(void **state)
{
	struct hv_fixture *f = *state;

	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_STIMER0_CONFIG, CFG_DIRECT), HV_MSR_OK);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_STIMER0_CONFIG + 1, now_ref(f) + 300000),
			 HV_MSR_OK);
	hv_vp_reset(f->part, 0); /* well before the 30 ms expiry */
	sleep_ms(40);
	assert_int_equal(hv_test_nirq(f), 0);
	/* Message mode with SINTx 0 never fires. */
	hv_test_synic_on(f, 0);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_STIMER0_CONFIG, 0x9), HV_MSR_OK);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_STIMER0_CONFIG + 1, 1), HV_MSR_OK);
	sleep_ms(5);
	assert_int_equal(hv_test_nirq(f), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_oneshot_message, hv_test_setup,
						hv_test_teardown),
		cmocka_unit_test_setup_teardown(test_direct, hv_test_setup, hv_test_teardown),
		cmocka_unit_test_setup_teardown(test_periodic_and_stop, hv_test_setup,
						hv_test_teardown),
		cmocka_unit_test_setup_teardown(test_reset_disarms, hv_test_setup,
						hv_test_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
