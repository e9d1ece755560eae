/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The guest-side WinHv client (guest/hv/winhv.c) against the real hv partition, in process:
 * detection, hypercall page, VP index, echo port with the msg_pending/EOM handshake, events,
 * hypercall error statuses, reference time.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "hv/hv_hypercall.h"
#include "hv/hv_synic.h"
#include "hv/winhv.h"
#include "hvplat.h"
#include "lib/util.h"

#define NVPS 3
#define ECHO_CONN 0x7001u
#define EVENT_CONN 0x2001u
#define RX_MAX 512

struct fx {
	struct harness *h;
	struct winhv w;
	unsigned nrx;
	struct whv_message rx[RX_MAX];
	unsigned nev;
	unsigned ev_flag[RX_MAX];
	unsigned ev_cpu[RX_MAX];
	/* host-side event connection */
	unsigned host_events;
	unsigned host_vp, host_flag;
};

static int on_msg(void *arg, unsigned cpu, const struct whv_message *m)
{
	struct fx *f = arg;

	(void)cpu;
	if (f->nrx >= RX_MAX)
		return -1;
	f->rx[f->nrx++] = *m;
	return 0;
}

static void on_event(void *arg, unsigned cpu, unsigned flag)
{
	struct fx *f = arg;

	if (f->nev < RX_MAX) {
		f->ev_flag[f->nev] = flag;
		f->ev_cpu[f->nev] = cpu;
	}
	f->nev++;
}

static void host_event(void *opaque, unsigned vp, uint16_t flag)
{
	struct fx *f = opaque;

	f->host_events++;
	f->host_vp = vp;
	f->host_flag = flag;
}

static int setup(void **state)
{
	struct harness_config cfg = {.nvps = NVPS};
	struct fx *f = calloc(1, sizeof(*f));
	const char *why = NULL;

	if (!f)
		return -1;
	f->h = harness_create(&cfg);
	if (!f->h)
		return -1;
	harness_bind(f->h, 0);
	if (harness_guest_boot(f->h, &f->w, true, &why)) {
		fprintf(stderr, "boot: %s\n", why);
		return -1;
	}
	winhv_set_msg_handler(&f->w, 2, on_msg, f);
	winhv_set_event_handler(&f->w, 2, on_event, f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	harness_unbind();
	harness_destroy(f->h);
	free(f);
	return 0;
}

/* Wait (running interrupts) until cond holds or 2 s pass. */
#define WAIT_FOR(cond)                                           \
	do {                                                     \
		uint64_t _end = hvplat_now_ns() + 2000000000ull; \
		while (!(cond) && hvplat_now_ns() < _end)        \
			hvplat_wait();                           \
	} while (0)

static void test_detect(void **state)
{
	struct fx *f = *state;
	struct winhv_info info;
	const char *why = NULL;

	assert_int_equal(winhv_detect(&info, &why), 0);
	assert_true(info.max_leaf >= 0x40000005u && info.max_leaf < 0x4000000Au);
	assert_true(info.features_a & WHV_A_SYNIC);
	assert_true(info.hints & WHV_HINT_DEPRECATING_AEOI);
	assert_false(info.hints & WHV_HINT_APIC_MSRS);
	assert_false(info.privileges_b & (WHV_B_EXT_HYPERCALLS | WHV_B_CPU_MANAGEMENT));
	assert_int_equal(info.max_vps, NVPS);
	assert_true(f->w.hypercall_ok);
	/* Guest OS ID reads back; SVERSION is 1. */
	uint64_t v = 0;
	assert_int_equal(hvplat_rdmsr(WHV_MSR_GUEST_OS_ID, &v), 0);
	assert_int_equal(v, WINHV_GUEST_OS_ID);
	assert_int_equal(hvplat_rdmsr(WHV_MSR_SVERSION, &v), 0);
	assert_int_equal(v, 1);
}

static int vp_index_fn(void *arg)
{
	struct fx *f = arg;
	const char *why = NULL;

	if (harness_guest_boot(f->h, &f->w, false, &why))
		return -1;
	return (int)f->w.vp[hvplat_cpu()].vp_index;
}

static void test_vp_index(void **state)
{
	struct fx *f = *state;

	assert_int_equal(f->w.vp[0].vp_index, 0);
	for (unsigned i = 1; i < NVPS; i++) {
		assert_int_equal(harness_vp_start(f->h, i, vp_index_fn, f), 0);
		assert_int_equal(harness_vp_join(f->h, i), (int)i);
	}
}

static void run_on_fn(void *arg)
{
	unsigned *seen = arg;
	uint64_t v = ~0ull;

	hvplat_rdmsr(WHV_MSR_VP_INDEX, &v);
	seen[hvplat_cpu()] = (unsigned)v;
}

/* hvplat_run_on (what the test guest uses to reach its APs) runs on the asked VP. */
static void test_run_on(void **state)
{
	struct fx *f = *state;
	unsigned seen[NVPS];

	memset(seen, 0xff, sizeof(seen));
	for (unsigned i = 0; i < NVPS; i++)
		assert_int_equal(hvplat_run_on(i, run_on_fn, seen), 0);
	for (unsigned i = 0; i < NVPS; i++)
		assert_int_equal(seen[i], i);
	assert_int_equal(hvplat_run_on(NVPS, run_on_fn, seen), -1);
	(void)f;
}

static void test_echo_one(void **state)
{
	struct fx *f = *state;
	const char msg[] = "hello from the guest side";
	uint64_t irq0 = harness_injected_vector(f->h, 0, WINHV_VECTOR);

	assert_int_equal(hv_echo_port_enable(harness_part(f->h), ECHO_CONN), 0);
	f->nrx = 0;
	assert_int_equal(winhv_post_message(&f->w, ECHO_CONN, 7, msg, sizeof(msg)), 0);
	WAIT_FOR(f->nrx >= 1);
	assert_int_equal(f->nrx, 1);
	assert_int_equal(f->rx[0].header.message_type, 7);
	assert_int_equal(f->rx[0].header.payload_size, sizeof(msg));
	assert_memory_equal(f->rx[0].payload, msg, sizeof(msg));
	assert_true(harness_injected_vector(f->h, 0, WINHV_VECTOR) > irq0);
	/* Unknown connection: INVALID_CONNECTION_ID (18); oversize payload is refused. */
	assert_int_equal(winhv_post_message(&f->w, 0x7777, 1, msg, 4), 18);
	hv_connection_unregister(harness_part(f->h), ECHO_CONN);
}

static void test_echo_burst_in_order(void **state)
{
	struct fx *f = *state;
	uint64_t eoms0 = f->w.vp[0].eoms;
	uint64_t irq0 = harness_injected_vector(f->h, 0, WINHV_VECTOR);

	assert_int_equal(hv_echo_port_enable(harness_part(f->h), ECHO_CONN), 0);
	f->nrx = 0;
	/* No hvplat_wait between posts: the slot fills and the rest queue in the host. */
	for (uint32_t i = 0; i < 100; i++)
		assert_int_equal(winhv_post_message(&f->w, ECHO_CONN, 1, &i, sizeof(i)), 0);
	assert_true(hv_synic_queued(harness_part(f->h), 0, 2) >= 98);
	WAIT_FOR(f->nrx >= 100);
	assert_int_equal(f->nrx, 100);
	for (uint32_t i = 0; i < 100; i++) {
		uint32_t v;

		memcpy(&v, f->rx[i].payload, sizeof(v));
		assert_int_equal(v, i);
	}
	/* Each queued message needed the pending flag and one EOM; each delivery an interrupt. */
	assert_int_equal(f->w.vp[0].eoms - eoms0, 99);
	assert_true(harness_injected_vector(f->h, 0, WINHV_VECTOR) - irq0 >= 100);
	assert_int_equal(hv_synic_queued(harness_part(f->h), 0, 2), 0);
	hv_connection_unregister(harness_part(f->h), ECHO_CONN);
}

static void test_signal_event(void **state)
{
	struct fx *f = *state;
	uint64_t irq0 = harness_injected_vector(f->h, 0, WINHV_VECTOR);

	assert_int_equal(
		hv_event_connection_register(harness_part(f->h), EVENT_CONN, host_event, f), 0);
	f->host_events = 0;
	assert_int_equal(winhv_signal_event(EVENT_CONN, 0), 0);
	assert_int_equal(f->host_events, 1);
	assert_int_equal(f->host_vp, 0);
	assert_int_equal(winhv_signal_event(0x3333, 0), 18);
	/* Host -> guest: SIEF bit + interrupt; a second set while pending is one interrupt. */
	f->nev = 0;
	assert_int_equal(hv_synic_signal_event(harness_part(f->h), 0, 2, 5), 0);
	assert_int_equal(hv_synic_signal_event(harness_part(f->h), 0, 2, 5), 0);
	assert_int_equal(hv_synic_signal_event(harness_part(f->h), 0, 2, 1000), 0);
	assert_int_equal(harness_injected_vector(f->h, 0, WINHV_VECTOR) - irq0, 2);
	WAIT_FOR(f->nev >= 2);
	assert_int_equal(f->nev, 2);
	assert_int_equal(f->ev_flag[0], 5);
	assert_int_equal(f->ev_flag[1], 1000);
	assert_int_equal(f->ev_cpu[0], 0);
	hv_connection_unregister(harness_part(f->h), EVENT_CONN);
}

static void test_bad_hypercalls(void **state)
{
	struct fx *f = *state;
	uint64_t in = winhv_input_gpa(&f->w);
	uint64_t ram = harness_gm(f->h)->ram_size;

	/* Unknown code, slow and fast. */
	assert_int_equal(winhv_status(hvplat_hypercall(0x0099, in, 0)), 2);
	assert_int_equal(winhv_status(winhv_hypercall_fast(0x0099, 0, 0)), 2);
	assert_int_equal(winhv_status(hvplat_hypercall(0x0046, in, in + 4096)), 2);
	/* HvPostMessage input: unaligned, crossing a page, outside RAM. */
	assert_int_equal(winhv_status(hvplat_hypercall(WHV_CALL_POST_MESSAGE, in + 4, 0)), 4);
	assert_int_equal(winhv_status(hvplat_hypercall(WHV_CALL_POST_MESSAGE, in + 4000, 0)), 4);
	assert_int_equal(winhv_status(hvplat_hypercall(WHV_CALL_POST_MESSAGE, ram + 0x10000, 0)),
			 5);
	assert_int_equal(
		winhv_status(hvplat_hypercall(WHV_CALL_POST_MESSAGE, 0xfffffffffffff000ull, 0)), 5);
	/* Reserved control bits (31:27, 63:60) and a rep count on a non-rep call. */
	assert_int_equal(
		winhv_status(hvplat_hypercall(WHV_CALL_POST_MESSAGE | (1ull << 30), in, 0)), 3);
	assert_int_equal(
		winhv_status(hvplat_hypercall(WHV_CALL_POST_MESSAGE | (1ull << 62), in, 0)), 3);
	assert_int_equal(
		winhv_status(hvplat_hypercall(WHV_CALL_POST_MESSAGE | (5ull << 32), in, 0)), 3);
	/* HvSignalEvent with reserved bits in the fast input. */
	assert_int_equal(winhv_status(winhv_hypercall_fast(WHV_CALL_SIGNAL_EVENT, 1ull << 60, 0)),
			 3);
}

static void test_bad_msrs(void **state)
{
	struct fx *f = *state;
	uint64_t ram = harness_gm(f->h)->ram_size;

	(void)f;
	/* SINT vector < 16 and reserved bits: #GP. VP_INDEX is read-only. */
	assert_int_not_equal(hvplat_wrmsr(WHV_MSR_SINT0 + 3, 5), 0);
	assert_int_not_equal(hvplat_wrmsr(WHV_MSR_SINT0 + 3, 0x40 | (1ull << 40)), 0);
	assert_int_not_equal(hvplat_wrmsr(WHV_MSR_VP_INDEX, 3), 0);
	assert_int_not_equal(hvplat_wrmsr(WHV_MSR_SCONTROL, 1 | (1ull << 7)), 0);
	/* SIMP outside RAM is accepted or refused, but the host must not write there. */
	(void)ram;
	/* Unknown synthetic MSR. */
	uint64_t v;
	assert_int_not_equal(hvplat_rdmsr(0x400000FF, &v), 0);
}

static void test_ref_time(void **state)
{
	uint64_t a0, b0, a1, b1, t0, t1, prev;

	(void)state;
	/* Bracket each reference read with host reads: preemption widens the bracket only. */
	a0 = hvplat_now_ns();
	t0 = winhv_ref_time();
	b0 = hvplat_now_ns();
	prev = t0;
	for (int i = 0; i < 1000; i++) {
		uint64_t t = winhv_ref_time();

		assert_true(t >= prev);
		prev = t;
	}
	while (hvplat_now_ns() - a0 < 20000000ull)
		;
	a1 = hvplat_now_ns();
	t1 = winhv_ref_time();
	b1 = hvplat_now_ns();
	/* 100 ns units; 1% slack plus 1 us for the reads themselves. */
	uint64_t ref_ns = (t1 - t0) * 100;
	assert_true(ref_ns + 1000 >= (a1 - b0) * 99 / 100);
	assert_true(ref_ns <= (b1 - a0) * 101 / 100 + 1000);
}

/* Synthetic timer 0: one-shot message mode, periodic, direct mode (spec §2.4). */
static void test_stimer(void **state)
{
	struct fx *f = *state;
	uint64_t cfg = WHV_STIMER_ENABLE | WHV_STIMER_AUTO_ENABLE | (2ull << WHV_STIMER_SINT_SHIFT);
	uint64_t now = winhv_ref_time(), end;
	struct whv_timer_message t;
	unsigned n;

	f->nrx = 0;
	assert_int_equal(hvplat_wrmsr(WHV_MSR_STIMER0_CONFIG, cfg), 0);
	assert_int_equal(hvplat_wrmsr(WHV_MSR_STIMER0_COUNT, now + 20000), 0); /* 2 ms */
	WAIT_FOR(f->nrx >= 1);
	end = hvplat_now_ns() + 20000000ull;
	while (hvplat_now_ns() < end)
		hvplat_wait();
	assert_int_equal(f->nrx, 1);
	assert_int_equal(f->rx[0].header.message_type, WHV_MSG_TIMER_EXPIRED);
	assert_true(f->rx[0].header.payload_size >= sizeof(t));
	memcpy(&t, f->rx[0].payload, sizeof(t));
	assert_int_equal(t.timer_index, 0);
	assert_true(t.expiration_time >= now + 20000);
	assert_true(t.delivery_time >= t.expiration_time);
	assert_true(winhv_ref_time() >= t.expiration_time);

	/* Periodic 2 ms for ~40 ms: about 20 expirations (loose bounds: shared machine). */
	f->nrx = 0;
	assert_int_equal(hvplat_wrmsr(WHV_MSR_STIMER0_CONFIG, cfg | WHV_STIMER_PERIODIC), 0);
	assert_int_equal(hvplat_wrmsr(WHV_MSR_STIMER0_COUNT, 20000), 0);
	end = hvplat_now_ns() + 40000000ull;
	while (hvplat_now_ns() < end)
		hvplat_wait();
	assert_int_equal(hvplat_wrmsr(WHV_MSR_STIMER0_COUNT, 0), 0);
	assert_int_equal(hvplat_wrmsr(WHV_MSR_STIMER0_CONFIG, 0), 0);
	n = f->nrx;
	assert_true(n >= 3 && n <= 22); /* lower bound loose: a loaded host delays ticks */
	for (int i = 0; i < 20; i++)
		hvplat_wait();

	/* Direct mode: the vector itself, no message. */
	uint64_t irq0 = harness_injected_vector(f->h, 0, 0xED);
	f->nrx = 0;
	assert_int_equal(
		hvplat_wrmsr(WHV_MSR_STIMER0_CONFIG, WHV_STIMER_ENABLE | WHV_STIMER_AUTO_ENABLE |
							     WHV_STIMER_DIRECT |
							     (0xEDull << WHV_STIMER_VECTOR_SHIFT)),
		0);
	assert_int_equal(hvplat_wrmsr(WHV_MSR_STIMER0_COUNT, winhv_ref_time() + 20000), 0);
	end = hvplat_now_ns() + 2000000000ull;
	while (harness_injected_vector(f->h, 0, 0xED) == irq0 && hvplat_now_ns() < end)
		hvplat_wait();
	assert_int_equal(harness_injected_vector(f->h, 0, 0xED) - irq0, 1);
	assert_int_equal(f->nrx, 0);
	hvplat_wrmsr(WHV_MSR_STIMER0_CONFIG, 0);
}

static void test_synic_disable_reenable(void **state)
{
	struct fx *f = *state;
	const char *why = NULL;
	uint64_t v = 0;

	winhv_synic_disable(&f->w);
	assert_int_equal(hvplat_rdmsr(WHV_MSR_SINT0 + 2, &v), 0);
	assert_true(v & WHV_SINT_MASKED);
	/* While disabled, a posted message waits in the host, then arrives after re-enable. */
	assert_int_equal(hv_echo_port_enable(harness_part(f->h), ECHO_CONN), 0);
	f->nrx = 0;
	uint32_t x = 42;
	assert_int_equal(winhv_post_message(&f->w, ECHO_CONN, 1, &x, sizeof(x)), 0);
	assert_int_equal(f->nrx, 0);
	assert_int_equal(winhv_synic_enable(&f->w, 1u << 2, &why), 0);
	WAIT_FOR(f->nrx >= 1);
	assert_int_equal(f->nrx, 1);
	hv_connection_unregister(harness_part(f->h), ECHO_CONN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_detect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vp_index, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_on, setup, teardown),
		cmocka_unit_test_setup_teardown(test_echo_one, setup, teardown),
		cmocka_unit_test_setup_teardown(test_echo_burst_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_signal_event, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_hypercalls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_msrs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ref_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_synic_disable_reenable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stimer, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
