// SPDX-License-Identifier: GPL-2.0-only
/* Synthetic MSRs: values, reserved-bit #GP, hypercall page, reference time, crash, reset. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "hv_test.h"
#include "hv/hv_cpuid.h"
#include "hv/hv_synic.h"
#include "vid/layout.h"

#define OK HV_MSR_OK
#define GP HV_MSR_GP

static uint64_t rd(struct hv_fixture *f, unsigned vp, uint32_t msr)
{
	uint64_t v = 0xdeadbeef;

	assert_int_equal(hv_msr_read(f->part, vp, msr, &v), OK);
	return v;
}

static void test_basic(void **state)
{
	struct hv_fixture *f = *state;
	uint64_t v;

	struct hv_cpuid_entry e[HV_CPUID_NLEAVES];

	/* The partition offers what it can back: TSC page and frequency MSRs here. */
	assert_int_equal(hv_partition_cpuid_fill(f->part, e, HV_CPUID_NLEAVES), 11);
	assert_int_equal(e[3].leaf, 0x40000003);
	assert_int_equal(e[3].eax, 0x00008A66);
	assert_int_equal(e[5].eax, 2);
	assert_int_equal(rd(f, 0, HV_MSR_GUEST_OS_ID), 0);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_GUEST_OS_ID, 0x8100000601C00000ull), OK);
	assert_true(rd(f, 1, HV_MSR_GUEST_OS_ID) == 0x8100000601C00000ull); /* partition-wide */
	assert_int_equal(rd(f, 0, HV_MSR_VP_INDEX), 0);
	assert_int_equal(rd(f, 1, HV_MSR_VP_INDEX), 1);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_VP_INDEX, 1), GP);
	assert_true(rd(f, 0, HV_MSR_TSC_FREQUENCY) == T_TSC_HZ);
	assert_true(rd(f, 0, HV_MSR_APIC_FREQUENCY) == 1000000000ull);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_TSC_FREQUENCY, 1), GP);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_APIC_FREQUENCY, 1), GP);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_TIME_REF_COUNT, 1), GP);
	assert_int_equal(rd(f, 0, HV_MSR_SVERSION), 1);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_SVERSION, 1), GP);
	/* Invariant-TSC control: bit 0 only. */
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_TSC_INVARIANT_CONTROL, 1), OK);
	assert_int_equal(rd(f, 0, HV_MSR_TSC_INVARIANT_CONTROL), 1);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_TSC_INVARIANT_CONTROL, 2), GP);
	/* VP assist page: stored; bits 11:1 reserved. */
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_VP_ASSIST_PAGE, 0x200001), OK);
	assert_int_equal(rd(f, 0, HV_MSR_VP_ASSIST_PAGE), 0x200001);
	assert_int_equal(rd(f, 1, HV_MSR_VP_ASSIST_PAGE), 0);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_VP_ASSIST_PAGE, 0x200003), GP);
	/* Unimplemented MSRs in the range and bad VP numbers are left to the VMM (#GP). */
	assert_int_equal(hv_msr_read(f->part, 0, 0x40000070, &v), HV_MSR_UNHANDLED);
	assert_int_equal(hv_msr_write(f->part, 0, 0x400000F0, 0), HV_MSR_UNHANDLED);
	assert_int_equal(hv_msr_read(f->part, 2, HV_MSR_VP_INDEX, &v), HV_MSR_UNHANDLED);
	assert_int_equal(hv_msr_write(f->part, 99, HV_MSR_EOM, 0), HV_MSR_UNHANDLED);
}

static void test_synic_msrs(void **state)
{
	struct hv_fixture *f = *state;

	for (unsigned i = 0; i < 16; i++)
		assert_int_equal(rd(f, 0, HV_MSR_SINT0 + i), 0x10000); /* reset: masked */
	assert_int_equal(rd(f, 0, HV_MSR_SCONTROL), 0);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_SCONTROL, 1), OK);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_SCONTROL, 3), GP);
	assert_int_equal(rd(f, 0, HV_MSR_SCONTROL), 1);
	/* SIMP/SIEFP: bits 11:1 preserved. */
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_SIMP, 0x100000 | 0x7f1), OK);
	assert_int_equal(rd(f, 0, HV_MSR_SIMP), 0x1007f1);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_SIEFP, 0x101001), OK);
	assert_int_equal(rd(f, 0, HV_MSR_SIEFP), 0x101001);
	/* Outside RAM (the MMIO hole and far above): accepted, never touched. */
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_SIMP, LAYOUT_LAPIC_BASE | 1), OK);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_SIEFP, 0xFFFFFFFFFFFFF001ull), OK);
	assert_int_equal(rd(f, 0, HV_MSR_EOM), 0);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_EOM, 0), OK);
	/* SINTs: vector < 16 unmasked -> #GP; masked with any vector is fine. */
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_SINT0 + 2, 0xF3), OK);
	assert_int_equal(rd(f, 0, HV_MSR_SINT0 + 2), 0xF3);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_SINT0 + 3, 15), GP);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_SINT0 + 3, 0), GP);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_SINT0 + 3, 16), OK);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_SINT0 + 4, 0x10005), OK);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_SINT0 + 15, 0x40000 | 0x20), OK);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_SINT0 + 5, 0x1F3), GP); /* 15:8 */
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_SINT0 + 5, 1ull << 20 | 0xF3), GP);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_SINT0 + 5, 1ull << 63 | 0xF3), GP);
	assert_int_equal(rd(f, 0, HV_MSR_SINT0 + 5), 0x10000);
	/* Stimers: config validated and stored, count stored. */
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_STIMER0_CONFIG, 0x20009), OK);
	assert_int_equal(rd(f, 0, HV_MSR_STIMER0_CONFIG), 0x20009);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_STIMER0_CONFIG + 2, 0x1ED9), OK);
	assert_int_equal(rd(f, 0, HV_MSR_STIMER0_CONFIG + 2), 0x1ED9);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_STIMER0_CONFIG + 6, 1ull << 13), GP);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_STIMER0_CONFIG + 6, 1ull << 20), GP);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_STIMER3_COUNT, 12345), OK);
	assert_int_equal(rd(f, 0, HV_MSR_STIMER3_COUNT), 12345);
}

static void test_hypercall_page(void **state)
{
	struct hv_fixture *f = *state;
	uint8_t page[32];
	const uint64_t gpa = 0x300000;
	uint8_t *p = guest_mem_ptr(&f->gm, gpa, 4096);

	memset(p, 0x90, 4096);
	/* Enabling before the guest OS ID is set is ignored (§9.9). */
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_HYPERCALL, gpa | 1), OK);
	assert_int_equal(rd(f, 0, HV_MSR_HYPERCALL), gpa);
	assert_int_equal(p[0], 0x90);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_GUEST_OS_ID, 0x8100000601C00000ull), OK);
	/* Reserved bits 11:2 -> #GP. */
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_HYPERCALL, gpa | 1 | 4), GP);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_HYPERCALL, gpa | 1), OK);
	assert_int_equal(rd(f, 1, HV_MSR_HYPERCALL), gpa | 1); /* reads back with bit 0 set */
	assert_int_equal(guest_mem_read(&f->gm, gpa, page, sizeof(page)), 0);
	/* Decode the stub instruction by instruction. */
	/* mov r10, rdx: REX.W|REX.B, 89 /r, ModRM 11 010(rdx) 010(r10) */
	assert_int_equal(page[0], 0x49);
	assert_int_equal(page[1], 0x89);
	assert_int_equal(page[2], 0xD2);
	/* mov edx, imm32 = the hypercall port */
	assert_int_equal(page[3], 0xBA);
	uint32_t imm;
	memcpy(&imm, page + 4, 4);
	assert_int_equal(imm, LAYOUT_HV_HYPERCALL_PORT);
	/* mov eax, imm32 = magic */
	assert_int_equal(page[8], 0xB8);
	memcpy(&imm, page + 9, 4);
	assert_int_equal(imm, HV_HYPERCALL_MAGIC);
	assert_int_equal(page[13], 0xEF); /* out dx, eax */
	assert_int_equal(page[14], 0xC3); /* ret */
	assert_int_equal(page[15], 0x0F); /* ud2, unreachable */
	assert_int_equal(page[16], 0x0B);
	assert_int_equal(page[17], 0x90); /* rest untouched */
	/* A page outside RAM: MSR accepted, nothing written anywhere. */
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_HYPERCALL, LAYOUT_LAPIC_BASE | 1), OK);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_HYPERCALL, (T_RAM - 0x1000) | 1), OK);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_HYPERCALL, 0xFFFFFFFFFFFFF001ull), OK);
	/* Locked: further writes are ignored until the partition is reset. */
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_HYPERCALL, gpa | 3), OK);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_HYPERCALL, 0), OK);
	assert_int_equal(rd(f, 0, HV_MSR_HYPERCALL), gpa | 3);
	hv_partition_reset(f->part);
	assert_int_equal(rd(f, 0, HV_MSR_HYPERCALL), 0);
	assert_int_equal(rd(f, 0, HV_MSR_GUEST_OS_ID), 0);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_GUEST_OS_ID, 1), OK);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_HYPERCALL, gpa | 1), OK);
	/* OS ID 0 disables it. */
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_GUEST_OS_ID, 0), OK);
	assert_int_equal(rd(f, 0, HV_MSR_HYPERCALL) & 1, 0);
}

static uint64_t tsc_page_read(struct hv_ref_tsc_page *pg, uint32_t *seq_out)
{
	uint32_t seq;
	uint64_t t;

	do {
		seq = __atomic_load_n(&pg->sequence, __ATOMIC_ACQUIRE);
		t = (uint64_t)(((unsigned __int128)hv_test_tsc(NULL, 0) * pg->scale) >> 64) +
		    (uint64_t)pg->offset;
	} while (seq != __atomic_load_n(&pg->sequence, __ATOMIC_ACQUIRE));
	*seq_out = seq;
	return t;
}

static void test_ref_time(void **state)
{
	struct hv_fixture *f = *state;
	const uint64_t gpa = 0x400000;
	struct hv_ref_tsc_page *pg = guest_mem_ptr(&f->gm, gpa, 4096);
	uint64_t prev = 0, a, b, c, best = UINT64_MAX;
	uint32_t seq, seq2;

	assert_true(hv_partition_has_ref_tsc(f->part));
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_REFERENCE_TSC, gpa | 1), OK);
	assert_int_equal(rd(f, 0, HV_MSR_REFERENCE_TSC), gpa | 1);
	assert_int_not_equal(pg->sequence, 0);
	assert_int_not_equal(pg->sequence, 0xFFFFFFFFu);
	/* scale = 10^7 * 2^64 / tsc_hz */
	assert_true(pg->scale == (uint64_t)(((unsigned __int128)10000000 << 64) / T_TSC_HZ));
	for (int i = 0; i < 1000; i++) {
		a = rd(f, 0, HV_MSR_TIME_REF_COUNT);
		b = tsc_page_read(pg, &seq);
		c = rd(f, 1, HV_MSR_TIME_REF_COUNT);
		assert_true(a >= prev); /* monotonic */
		assert_true(a <= b + 1 && b <= c + 1);
		if (c - a < best)
			best = c - a;
		prev = c;
	}
	/*
	 * The page agrees with the MSR to within 20 µs (200 ticks): the tightest bracket shows
	 * it; single samples may be preempted (ASan, loaded CI), so not every one is tight.
	 */
	assert_true(best < 200);
	/* Starts near 0 at partition creation (well under a minute of 100 ns ticks). */
	assert_true(prev < 600000000ull);
	/* Re-enable: new sequence, same time base. */
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_REFERENCE_TSC, gpa | 1), OK);
	b = tsc_page_read(pg, &seq2);
	assert_int_not_equal(seq2, seq);
	assert_true(b >= prev);
	/* Disable: the page is left alone; outside RAM: accepted, not written. */
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_REFERENCE_TSC, gpa), OK);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_REFERENCE_TSC, LAYOUT_LAPIC_BASE | 1), OK);
}

static void test_ref_time_no_tsc(void **state)
{
	struct hv_fixture *f = NULL;
	struct hv_ref_tsc_page *pg;
	uint64_t a, b, v;

	assert_int_equal(hv_test_setup_n((void **)&f, 1, 0), 0);
	assert_false(hv_partition_has_ref_tsc(f->part));
	pg = guest_mem_ptr(&f->gm, 0x400000, 4096);
	pg->sequence = 7;
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_REFERENCE_TSC, 0x400001), OK);
	assert_int_equal(pg->sequence, 0); /* invalid: guest falls back to the MSR */
	assert_int_equal(hv_msr_read(f->part, 0, HV_MSR_TSC_FREQUENCY, &v), HV_MSR_UNHANDLED);
	a = rd(f, 0, HV_MSR_TIME_REF_COUNT);
	usleep(2000);
	b = rd(f, 0, HV_MSR_TIME_REF_COUNT);
	assert_true(b >= a + 19000 && b - a < 2000000); /* ~2 ms in 100 ns ticks */
	void *s = f;
	hv_test_teardown(&s);
}

static void test_crash(void **state)
{
	struct hv_fixture *f = *state;

	assert_true(rd(f, 0, HV_MSR_CRASH_CTL) == 0xC000000000000000ull);
	for (unsigned i = 0; i < 5; i++)
		assert_int_equal(hv_msr_write(f->part, 1, HV_MSR_CRASH_P0 + i, 100 + i), OK);
	assert_int_equal(rd(f, 0, HV_MSR_CRASH_P0 + 4), 104);
	assert_int_equal(hv_msr_write(f->part, 1, HV_MSR_CRASH_CTL, 1), GP);
	assert_int_equal(hv_msr_write(f->part, 1, HV_MSR_CRASH_CTL, 1ull << 62), OK);
	assert_int_equal(f->ncrash, 0); /* notify bit not set */
	assert_int_equal(hv_msr_write(f->part, 1, HV_MSR_CRASH_CTL, 3ull << 62), OK);
	assert_int_equal(f->ncrash, 1);
	for (unsigned i = 0; i < 5; i++)
		assert_int_equal(f->crash[i], 100 + i);
}

static void test_vp_reset(void **state)
{
	struct hv_fixture *f = *state;
	struct hv_message m = {.header = {.message_type = 1, .payload_size = 8}};

	hv_test_synic_on(f, 0);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_VP_ASSIST_PAGE, 0x5000 | 1), OK);
	assert_int_equal(hv_msr_write(f->part, 0, HV_MSR_STIMER0_CONFIG, 0x20009), OK);
	assert_int_equal(hv_synic_post_message(f->part, 0, 2, &m), 0);
	assert_int_equal(hv_synic_post_message(f->part, 0, 2, &m), 0);
	assert_int_equal(hv_synic_queued(f->part, 0, 2), 1);
	hv_vp_reset(f->part, 0);
	assert_int_equal(hv_synic_queued(f->part, 0, 2), 0);
	assert_int_equal(rd(f, 0, HV_MSR_SCONTROL), 0);
	assert_int_equal(rd(f, 0, HV_MSR_SIMP), 0);
	assert_int_equal(rd(f, 0, HV_MSR_SIEFP), 0);
	assert_int_equal(rd(f, 0, HV_MSR_VP_ASSIST_PAGE), 0);
	assert_int_equal(rd(f, 0, HV_MSR_STIMER0_CONFIG), 0);
	for (unsigned i = 0; i < 16; i++)
		assert_int_equal(rd(f, 0, HV_MSR_SINT0 + i), 0x10000);
	/* Pages disabled: nothing is delivered until the guest re-enables them. */
	unsigned n = hv_test_nirq(f);
	assert_int_equal(hv_synic_post_message(f->part, 0, 2, &m), 0);
	assert_int_equal(hv_test_nirq(f), n);
	assert_int_equal(hv_synic_signal_event(f->part, 0, 2, 5), -EAGAIN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_basic, hv_test_setup, hv_test_teardown),
		cmocka_unit_test_setup_teardown(test_synic_msrs, hv_test_setup, hv_test_teardown),
		cmocka_unit_test_setup_teardown(test_hypercall_page, hv_test_setup,
						hv_test_teardown),
		cmocka_unit_test_setup_teardown(test_ref_time, hv_test_setup, hv_test_teardown),
		cmocka_unit_test(test_ref_time_no_tsc),
		cmocka_unit_test_setup_teardown(test_crash, hv_test_setup, hv_test_teardown),
		cmocka_unit_test_setup_teardown(test_vp_reset, hv_test_setup, hv_test_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
