// SPDX-License-Identifier: GPL-2.0-only
/* Hypercall dispatcher: control-word and GPA validation, PostMessage/echo, SignalEvent. */
#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "hv_test.h"
#include "hv/hv_hypercall.h"
#include "hv/hv_synic.h"
#include "vid/layout.h"

#define ECHO_ID 0x4242

static uint64_t hc(struct hv_fixture *f, unsigned vp, uint64_t rcx, uint64_t rdx, uint64_t r8)
{
	struct hv_hypercall_regs r = {.rcx = rcx, .rdx = rdx, .r8 = r8};

	return hv_hypercall(f->part, vp, &r);
}

static void put_post(struct hv_fixture *f, uint64_t gpa, uint32_t conn, uint32_t type,
		     uint32_t size, uint8_t fill)
{
	struct hv_input_post_message in = {
		.connection_id = conn, .message_type = type, .payload_size = size};

	memset(in.payload, fill, sizeof(in.payload));
	assert_int_equal(guest_mem_write(&f->gm, gpa, &in, sizeof(in)), 0);
}

static void test_exit_match(void **state)
{
	uint32_t magic = HV_HYPERCALL_MAGIC, other = 0x12345678;

	assert_true(hv_hypercall_exit_match(true, LAYOUT_HV_HYPERCALL_PORT, 4, 1, &magic));
	assert_false(hv_hypercall_exit_match(false, LAYOUT_HV_HYPERCALL_PORT, 4, 1, &magic));
	assert_false(hv_hypercall_exit_match(true, 0x5659, 4, 1, &magic));
	assert_false(hv_hypercall_exit_match(true, LAYOUT_HV_HYPERCALL_PORT, 1, 1, &magic));
	assert_false(hv_hypercall_exit_match(true, LAYOUT_HV_HYPERCALL_PORT, 4, 2, &magic));
	assert_false(hv_hypercall_exit_match(true, LAYOUT_HV_HYPERCALL_PORT, 4, 1, &other));
	assert_false(hv_hypercall_exit_match(true, LAYOUT_HV_HYPERCALL_PORT, 4, 1, NULL));
}

static void test_control_word(void **state)
{
	struct hv_fixture *f = *state;

	assert_int_equal(hc(f, 0, 0x0001, 0, 0), HV_STATUS_INVALID_HYPERCALL_CODE);
	assert_int_equal(hc(f, 0, 0x0046, 0, 0), HV_STATUS_INVALID_HYPERCALL_CODE);
	assert_int_equal(hc(f, 0, 0x8001, 0, 0), HV_STATUS_INVALID_HYPERCALL_CODE);
	assert_int_equal(hc(f, 0, 0xFFFF | HV_HC_FAST, 0, 0), HV_STATUS_INVALID_HYPERCALL_CODE);
	/* Each reserved field: 31:27, 47:44, 63:60. */
	assert_int_equal(hc(f, 0, HVCALL_POST_MESSAGE | 1ull << 27, T_IN_GPA, 0),
			 HV_STATUS_INVALID_HYPERCALL_INPUT);
	assert_int_equal(hc(f, 0, 0x1005D | 1ull << 31, ECHO_ID, 0),
			 HV_STATUS_INVALID_HYPERCALL_INPUT);
	assert_int_equal(hc(f, 0, 0x0001 | 1ull << 44, 0, 0), HV_STATUS_INVALID_HYPERCALL_INPUT);
	assert_int_equal(hc(f, 0, 0x0001 | 1ull << 63, 0, 0), HV_STATUS_INVALID_HYPERCALL_INPUT);
	/* Simple calls with a rep count or variable header; rep start beyond count. */
	assert_int_equal(hc(f, 0, HVCALL_POST_MESSAGE | 1ull << 32, T_IN_GPA, 0),
			 HV_STATUS_INVALID_HYPERCALL_INPUT);
	assert_int_equal(hc(f, 0, HVCALL_POST_MESSAGE | 1ull << 17, T_IN_GPA, 0),
			 HV_STATUS_INVALID_HYPERCALL_INPUT);
	assert_int_equal(hc(f, 0, 0x0001 | 1ull << 32 | 2ull << 48, 0, 0),
			 HV_STATUS_INVALID_HYPERCALL_INPUT);
	/* PostMessage has no fast form here (no XMM input offered). */
	assert_int_equal(hc(f, 0, HVCALL_POST_MESSAGE | HV_HC_FAST, 0, 0),
			 HV_STATUS_INVALID_HYPERCALL_INPUT);
}

static void test_post_gpa_checks(void **state)
{
	struct hv_fixture *f = *state;

	assert_int_equal(hv_echo_port_enable(f->part, ECHO_ID), 0);
	put_post(f, T_IN_GPA, ECHO_ID, 1, 8, 0xAA);
	/* Unaligned, crossing a page, outside RAM (MMIO hole, past the end, wrap). */
	assert_int_equal(hc(f, 0, HVCALL_POST_MESSAGE, T_IN_GPA + 4, 0),
			 HV_STATUS_INVALID_ALIGNMENT);
	assert_int_equal(hc(f, 0, HVCALL_POST_MESSAGE, T_IN_GPA + 4096 - 128, 0),
			 HV_STATUS_INVALID_ALIGNMENT);
	assert_int_equal(hc(f, 0, HVCALL_POST_MESSAGE, LAYOUT_LAPIC_BASE, 0),
			 HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(hc(f, 0, HVCALL_POST_MESSAGE, T_RAM, 0), HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(hc(f, 0, HVCALL_POST_MESSAGE, 0xFFFFFFFFFFFFF000ull, 0),
			 HV_STATUS_INVALID_PARAMETER);
	/* Unknown connection, reserved connection bits, bad type / size. */
	put_post(f, T_IN_GPA, 0x999, 1, 8, 0);
	assert_int_equal(hc(f, 0, HVCALL_POST_MESSAGE, T_IN_GPA, 0),
			 HV_STATUS_INVALID_CONNECTION_ID);
	put_post(f, T_IN_GPA, ECHO_ID | 0x1000000, 1, 8, 0);
	assert_int_equal(hc(f, 0, HVCALL_POST_MESSAGE, T_IN_GPA, 0),
			 HV_STATUS_INVALID_CONNECTION_ID);
	put_post(f, T_IN_GPA, ECHO_ID, 0, 8, 0);
	assert_int_equal(hc(f, 0, HVCALL_POST_MESSAGE, T_IN_GPA, 0), HV_STATUS_INVALID_PARAMETER);
	put_post(f, T_IN_GPA, ECHO_ID, 0x80000010u, 8, 0);
	assert_int_equal(hc(f, 0, HVCALL_POST_MESSAGE, T_IN_GPA, 0), HV_STATUS_INVALID_PARAMETER);
	put_post(f, T_IN_GPA, ECHO_ID, 1, 241, 0);
	assert_int_equal(hc(f, 0, HVCALL_POST_MESSAGE, T_IN_GPA, 0), HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(hv_synic_queued(f->part, 0, 2), 0);
}

static void test_echo(void **state)
{
	struct hv_fixture *f = *state;
	struct hv_message m;

	assert_int_equal(hv_echo_port_enable(f->part, ECHO_ID), 0);
	assert_int_equal(hv_echo_port_enable(f->part, ECHO_ID), -EEXIST);
	hv_test_synic_on(f, 1);
	put_post(f, T_IN_GPA + 256, ECHO_ID, 7, 240, 0x5A);
	assert_int_equal(hc(f, 1, HVCALL_POST_MESSAGE, T_IN_GPA + 256, 0), HV_STATUS_SUCCESS);
	/* Delivered on the sender (VP 1), SINT 2, with one interrupt at the SINT's vector. */
	assert_int_equal(hv_test_nirq(f), 1);
	assert_int_equal(f->irq[0].vp, 1);
	assert_int_equal(f->irq[0].vector, T_VEC);
	assert_int_equal(hv_test_consume(f, 1, 2, &m), 1);
	assert_int_equal(m.header.message_type, 7);
	assert_int_equal(m.header.payload_size, 240);
	assert_int_equal(m.header.message_flags, 0);
	for (unsigned i = 0; i < 240; i++)
		assert_int_equal(m.payload[i], 0x5A);
	assert_int_equal(hv_test_consume(f, 0, 2, &m), 0); /* nothing on VP 0 */
	/* Unregistered: gone. */
	hv_connection_unregister(f->part, ECHO_ID);
	assert_int_equal(hc(f, 1, HVCALL_POST_MESSAGE, T_IN_GPA + 256, 0),
			 HV_STATUS_INVALID_CONNECTION_ID);
}

static void test_echo_queue_full(void **state)
{
	struct hv_fixture *f = *state;
	unsigned ok = 0;

	assert_int_equal(hv_echo_port_enable(f->part, ECHO_ID), 0);
	hv_test_synic_on(f, 0);
	put_post(f, T_IN_GPA, ECHO_ID, 1, 16, 1);
	for (unsigned i = 0; i < HV_SYNIC_QUEUE_MAX + 10; i++) {
		uint64_t st = hc(f, 0, HVCALL_POST_MESSAGE, T_IN_GPA, 0);

		if (st == HV_STATUS_SUCCESS)
			ok++;
		else
			assert_int_equal(st, HV_STATUS_INSUFFICIENT_BUFFERS); /* guest retries */
	}
	assert_int_equal(ok, HV_SYNIC_QUEUE_MAX + 1); /* one in the slot, the rest queued */
}

static unsigned ev_count;
static uint16_t ev_flag;
static void ev_handler(void *opaque, unsigned vp, uint16_t flag)
{
	ev_count++;
	ev_flag = flag;
}

static void test_signal_event_hypercall(void **state)
{
	struct hv_fixture *f = *state;
	int efd = eventfd(0, EFD_NONBLOCK);
	uint64_t v = 0, param = 0x77;

	ev_count = 0;
	assert_true(efd >= 0);
	assert_int_equal(hv_event_connection_register(f->part, 0x77, ev_handler, NULL), 0);
	assert_int_equal(hv_event_connection_register_eventfd(f->part, 0x78, efd), 0);
	assert_int_equal(hv_event_connection_register(f->part, 0x77, ev_handler, NULL), -EEXIST);
	assert_int_equal(hc(f, 0, 0x1005D, 0x77, 0), HV_STATUS_SUCCESS);
	assert_int_equal(ev_count, 1);
	assert_int_equal(ev_flag, 0);
	assert_int_equal(hc(f, 1, 0x1005D, 0x78, 0xdead /* fast8: R8 ignored */),
			 HV_STATUS_SUCCESS);
	assert_int_equal(read(efd, &v, sizeof(v)), 8);
	assert_int_equal(v, 1);
	assert_int_equal(hc(f, 0, 0x1005D, 0x79, 0), HV_STATUS_INVALID_CONNECTION_ID);
	assert_int_equal(hc(f, 0, 0x1005D, 0x77 | 1ull << 32, 0), HV_STATUS_INVALID_PORT_ID);
	assert_int_equal(hc(f, 0, 0x1005D, 0x77 | 1ull << 48, 0),
			 HV_STATUS_INVALID_HYPERCALL_INPUT);
	/* Slow form reads the 8-byte parameter from memory. */
	assert_int_equal(guest_mem_write(&f->gm, T_IN_GPA, &param, 8), 0);
	assert_int_equal(hc(f, 0, 0x5D, T_IN_GPA, 0), HV_STATUS_SUCCESS);
	assert_int_equal(ev_count, 2);
	assert_int_equal(hc(f, 0, 0x5D, T_IN_GPA + 4092, 0), HV_STATUS_INVALID_ALIGNMENT);
	assert_int_equal(hc(f, 0, 0x5D, LAYOUT_LAPIC_BASE, 0), HV_STATUS_INVALID_PARAMETER);
	/* A message port is not an event connection and vice versa. */
	assert_int_equal(hv_echo_port_enable(f->part, 0x80), 0);
	assert_int_equal(hc(f, 0, 0x1005D, 0x80, 0), HV_STATUS_INVALID_CONNECTION_ID);
	put_post(f, T_IN_GPA, 0x77, 1, 8, 0);
	assert_int_equal(hc(f, 0, HVCALL_POST_MESSAGE, T_IN_GPA, 0),
			 HV_STATUS_INVALID_CONNECTION_ID);
	close(efd);
}

/* A rep hypercall registered by a test: sums 8-byte elements. */
static uint64_t rep_sum;
static uint16_t rep_handler(struct hv_partition *part, unsigned vp, const void *input,
			    uint32_t size, uint64_t out_gpa, uint32_t rep_count, uint32_t *done,
			    void *opaque)
{
	const uint64_t *el = (const uint64_t *)((const uint8_t *)input + 8);

	for (; *done < rep_count; (*done)++)
		rep_sum += el[*done];
	return HV_STATUS_SUCCESS;
}

static void test_rep_limits(void **state)
{
	struct hv_fixture *f = *state;
	struct hv_hypercall_desc d = {.code = 0x0003,
				      .slow_ok = 1,
				      .fixed_size = 8,
				      .rep_size = 8,
				      .handler = rep_handler};
	uint64_t buf[512];

	assert_int_equal(hv_hypercall_register(f->part, &d), 0);
	for (unsigned i = 0; i < 512; i++)
		buf[i] = i;
	assert_int_equal(guest_mem_write(&f->gm, T_IN_GPA, buf, sizeof(buf)), 0);
	/* 511 reps + 8 fixed bytes = exactly one page. */
	rep_sum = 0;
	assert_true(hc(f, 0, 0x0003 | 511ull << 32, T_IN_GPA, 0) == (511ull << 32));
	assert_true(rep_sum == 511ull * 512 / 2);
	/* Resume from rep start 500: 11 more. */
	rep_sum = 0;
	assert_true(hc(f, 0, 0x0003 | 511ull << 32 | 500ull << 48, T_IN_GPA, 0) == (511ull << 32));
	assert_true(rep_sum == 11ull * (501 + 511) / 2);
	/* 512 reps do not fit any page; 10 reps at the page end cross it. */
	assert_true(hc(f, 0, 0x0003 | 512ull << 32, T_IN_GPA, 0) ==
		    HV_STATUS_INVALID_HYPERCALL_INPUT);
	assert_true(hc(f, 0, 0x0003 | 4095ull << 32, T_IN_GPA, 0) ==
		    HV_STATUS_INVALID_HYPERCALL_INPUT);
	assert_true(hc(f, 0, 0x0003 | 10ull << 32, T_IN_GPA + 4096 - 64, 0) ==
		    HV_STATUS_INVALID_ALIGNMENT);
	/* A rep call without a rep count, and a fast form it does not accept. */
	assert_true(hc(f, 0, 0x0003, T_IN_GPA, 0) == HV_STATUS_INVALID_HYPERCALL_INPUT);
	assert_true(hc(f, 0, 0x0003 | HV_HC_FAST | 1ull << 32, 0, 0) ==
		    HV_STATUS_INVALID_HYPERCALL_INPUT);
	/* Registration rules. */
	assert_int_equal(hv_hypercall_register(f->part, &d), -EEXIST);
	d.code = HVCALL_POST_MESSAGE;
	assert_int_equal(hv_hypercall_register(f->part, &d), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exit_match),
		cmocka_unit_test_setup_teardown(test_control_word, hv_test_setup, hv_test_teardown),
		cmocka_unit_test_setup_teardown(test_post_gpa_checks, hv_test_setup,
						hv_test_teardown),
		cmocka_unit_test_setup_teardown(test_echo, hv_test_setup, hv_test_teardown),
		cmocka_unit_test_setup_teardown(test_echo_queue_full, hv_test_setup,
						hv_test_teardown),
		cmocka_unit_test_setup_teardown(test_signal_event_hypercall, hv_test_setup,
						hv_test_teardown),
		cmocka_unit_test_setup_teardown(test_rep_limits, hv_test_setup, hv_test_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
