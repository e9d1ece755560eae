// SPDX-License-Identifier: GPL-2.0-only
/* SynIC: pending/EOM handshake, masked SINTs, event flags, concurrent posting. */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>

#include "hv_test.h"
#include "hv/hv_hypercall.h"
#include "hv/hv_synic.h"

static struct hv_message mk(uint32_t type, uint32_t seq)
{
	struct hv_message m;

	memset(&m, 0, sizeof(m));
	m.header.message_type = type;
	m.header.payload_size = 8;
	memcpy(m.payload, &seq, 4);
	memcpy(m.payload + 4, &type, 4);
	return m;
}

static uint32_t seq_of(const struct hv_message *m)
{
	uint32_t s;

	memcpy(&s, m->payload, 4);
	return s;
}

static void test_burst_in_order(void **state)
{
	struct hv_fixture *f = *state;
	struct hv_message m;
	unsigned got = 0;

	hv_test_synic_on(f, 0);
	for (uint32_t i = 0; i < 100; i++) {
		m = mk(1, i);
		assert_int_equal(hv_synic_post_message(f->part, 0, 2, &m), 0);
	}
	assert_int_equal(hv_test_nirq(f), 1); /* one in the slot, one interrupt */
	assert_int_equal(hv_synic_queued(f->part, 0, 2), 99);
	assert_int_equal(hv_test_slot(f, 0, 2)->header.message_flags & 1, 1);
	while (hv_test_consume(f, 0, 2, &m)) {
		assert_int_equal(seq_of(&m), got);
		got++;
		/* Each delivery has its own interrupt (the guest handles one per interrupt). */
		assert_int_equal(hv_test_nirq(f), got < 100 ? got + 1 : 100);
	}
	assert_int_equal(got, 100);
	assert_int_equal(hv_synic_queued(f->part, 0, 2), 0);
	assert_int_equal(hv_test_slot(f, 0, 2)->header.message_flags, 0); /* last: no pending */
	for (unsigned i = 0; i < f->nirq && i < T_MAX_IRQ; i++)
		assert_int_equal(f->irq[i].vector, T_VEC);
}

static void test_late_pending(void **state)
{
	struct hv_fixture *f = *state;
	struct hv_message m = mk(1, 1), out;

	/* Slot occupied by the guest's unread message; a new post sets msg_pending. */
	hv_test_synic_on(f, 0);
	assert_int_equal(hv_synic_post_message(f->part, 0, 2, &m), 0);
	assert_int_equal(hv_test_slot(f, 0, 2)->header.message_flags, 0);
	m = mk(1, 2);
	assert_int_equal(hv_synic_post_message(f->part, 0, 2, &m), 0);
	assert_int_equal(hv_test_slot(f, 0, 2)->header.message_flags, 1);
	assert_int_equal(hv_test_consume(f, 0, 2, &out), 1); /* EOMs -> delivers #2 */
	assert_int_equal(seq_of(&out), 1);
	assert_int_equal(hv_test_consume(f, 0, 2, &out), 1);
	assert_int_equal(seq_of(&out), 2);
	assert_int_equal(hv_test_nirq(f), 2);
	/* An EOM with nothing queued is harmless. */
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_EOM, 0), HV_MSR_OK);
	assert_int_equal(hv_test_nirq(f), 2);
}

static void test_masked_and_disabled(void **state)
{
	struct hv_fixture *f = *state;
	struct hv_message m = mk(1, 9), out;

	/* Before the SynIC is enabled: queued. */
	assert_int_equal(hv_synic_post_message(f->part, 0, 2, &m), 0);
	assert_int_equal(hv_synic_queued(f->part, 0, 2), 1);
	hv_test_synic_on(f, 0); /* SCONTROL enable retries delivery */
	assert_int_equal(hv_synic_queued(f->part, 0, 2), 0);
	assert_int_equal(hv_test_nirq(f), 1);
	assert_int_equal(hv_test_consume(f, 0, 2, &out), 1);
	/* Masked SINT: queued, no interrupt, until unmasked. */
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_SINT0 + 2, 0x10000 | T_VEC), HV_MSR_OK);
	assert_int_equal(hv_synic_post_message(f->part, 0, 2, &m), 0);
	assert_int_equal(hv_synic_queued(f->part, 0, 2), 1);
	assert_int_equal(hv_test_consume(f, 0, 2, &out), 0);
	assert_int_equal(hv_test_nirq(f), 1);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_SINT0 + 2, T_VEC), HV_MSR_OK);
	assert_int_equal(hv_test_nirq(f), 2);
	assert_int_equal(hv_test_consume(f, 0, 2, &out), 1);
	assert_int_equal(seq_of(&out), 9);
	/* Polling SINT: delivered into the slot, no interrupt. */
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_SINT0 + 2, HV_SINT_POLLING | T_VEC),
			 HV_MSR_OK);
	assert_int_equal(hv_synic_post_message(f->part, 0, 2, &m), 0);
	assert_int_equal(hv_test_nirq(f), 2);
	assert_int_equal(hv_test_consume(f, 0, 2, &out), 1);
	/* SIMP outside RAM: kept queued, memory never touched. */
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_SIMP, 0xFEE00001ull), HV_MSR_OK);
	assert_int_equal(hv_synic_post_message(f->part, 0, 2, &m), 0);
	assert_int_equal(hv_synic_queued(f->part, 0, 2), 1);
	/* Invalid arguments. */
	assert_int_equal(hv_synic_post_message(f->part, 2, 2, &m), -EINVAL);
	assert_int_equal(hv_synic_post_message(f->part, 0, 16, &m), -EINVAL);
	m.header.payload_size = 241;
	assert_int_equal(hv_synic_post_message(f->part, 0, 2, &m), -EINVAL);
	m = mk(0, 0);
	assert_int_equal(hv_synic_post_message(f->part, 0, 2, &m), -EINVAL);
}

static void test_signal_event(void **state)
{
	struct hv_fixture *f = *state;
	uint32_t *sief = guest_mem_ptr(&f->gm, T_SIEFP_GPA, 4096);

	assert_int_equal(hv_synic_signal_event(f->part, 0, 2, 5), -EAGAIN); /* SynIC off */
	hv_test_synic_on(f, 0);
	assert_int_equal(hv_synic_signal_event(f->part, 0, 2, 5), 0);
	assert_int_equal(sief[512 / 4], 1u << 5);
	assert_int_equal(hv_test_nirq(f), 1);
	assert_int_equal(f->irq[0].vector, T_VEC);
	/* Already set: no second interrupt. */
	assert_int_equal(hv_synic_signal_event(f->part, 0, 2, 5), 0);
	assert_int_equal(hv_test_nirq(f), 1);
	/* Other bits, including the last one. */
	assert_int_equal(hv_synic_signal_event(f->part, 0, 2, 2047), 0);
	assert_int_equal(sief[(512 + 255) / 4], 1u << 31);
	assert_int_equal(hv_test_nirq(f), 2);
	assert_int_equal(hv_synic_signal_event(f->part, 0, 2, 2048), -EINVAL);
	/* Guest clears; masked SINT: bit set, interrupt only when unmasked. */
	sief[512 / 4] = 0;
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_SINT0 + 2, 0x10000 | T_VEC), HV_MSR_OK);
	assert_int_equal(hv_synic_signal_event(f->part, 0, 2, 5), 0);
	assert_int_equal(sief[512 / 4], 1u << 5);
	assert_int_equal(hv_test_nirq(f), 2);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_SINT0 + 2, T_VEC), HV_MSR_OK);
	assert_int_equal(hv_test_nirq(f), 3);
	/* SINT 3 bitmap lives at 768. */
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_SINT0 + 3, 0x40), HV_MSR_OK);
	assert_int_equal(hv_synic_signal_event(f->part, 0, 3, 0), 0);
	assert_int_equal(sief[768 / 4], 1);
	assert_int_equal(f->irq[3].vector, 0x40);
}

/* Event connection that signals the channel's VP, as VMBus will. */
static struct hv_fixture *ev_f;
static void ev_to_synic(void *opaque, unsigned vp, uint16_t flag)
{
	hv_synic_signal_event(ev_f->part, 1, 2, 7);
}

static void test_signal_event_via_hypercall(void **state)
{
	struct hv_fixture *f = *state;
	struct hv_hypercall_regs r = {.rcx = 0x1005D, .rdx = 0x33};
	uint32_t *sief = guest_mem_ptr(&f->gm, T_SIEFP_GPA + 0x10000, 4096);

	ev_f = f;
	hv_test_synic_on(f, 1);
	assert_int_equal(hv_event_connection_register(f->part, 0x33, ev_to_synic, NULL), 0);
	assert_int_equal(hv_hypercall(f->part, 0, &r), 0);
	assert_int_equal(sief[512 / 4], 1u << 7);
	assert_int_equal(hv_test_nirq(f), 1);
	assert_int_equal(f->irq[0].vp, 1);
}

/* 4 host threads post 500 messages each to VP 0 while a "VP" thread drains with EOM. */
#define NPOST 4
#define PER 500
struct poster {
	struct hv_fixture *f;
	uint32_t id;
};

static void *poster_fn(void *arg)
{
	struct poster *p = arg;

	for (uint32_t i = 0; i < PER; i++) {
		struct hv_message m = mk(p->id + 1, i);
		int r;

		while ((r = hv_synic_post_message(p->f->part, 0, 2, &m)) == -ENOSPC)
			sched_yield();
		if (r)
			return (void *)1;
	}
	return NULL;
}

static void test_concurrent(void **state)
{
	struct hv_fixture *f = *state;
	struct poster p[NPOST];
	pthread_t th[NPOST];
	uint32_t next[NPOST] = {0};
	unsigned total = 0, spins = 0;
	struct hv_message m;

	hv_test_synic_on(f, 0);
	for (unsigned i = 0; i < NPOST; i++) {
		p[i].f = f;
		p[i].id = i;
		assert_int_equal(pthread_create(&th[i], NULL, poster_fn, &p[i]), 0);
	}
	while (total < NPOST * PER) {
		if (hv_test_consume(f, 0, 2, &m)) {
			uint32_t who = m.header.message_type - 1;

			assert_true(who < NPOST);
			/* Per sender, in order, none lost or duplicated. */
			assert_int_equal(seq_of(&m), next[who]);
			next[who]++;
			total++;
			spins = 0;
		} else {
			assert_true(++spins < 50000000); /* a stall would mean a lost wakeup */
			sched_yield();
		}
	}
	for (unsigned i = 0; i < NPOST; i++) {
		void *ret;

		pthread_join(th[i], &ret);
		assert_null(ret);
		assert_int_equal(next[i], PER);
	}
	assert_int_equal(hv_test_consume(f, 0, 2, &m), 0);
	assert_int_equal(hv_synic_queued(f->part, 0, 2), 0);
	assert_int_equal(hv_test_nirq(f), NPOST * PER); /* one interrupt per delivery */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_burst_in_order, hv_test_setup,
						hv_test_teardown),
		cmocka_unit_test_setup_teardown(test_late_pending, hv_test_setup, hv_test_teardown),
		cmocka_unit_test_setup_teardown(test_masked_and_disabled, hv_test_setup,
						hv_test_teardown),
		cmocka_unit_test_setup_teardown(test_signal_event, hv_test_setup, hv_test_teardown),
		cmocka_unit_test_setup_teardown(test_signal_event_via_hypercall, hv_test_setup,
						hv_test_teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, hv_test_setup, hv_test_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
