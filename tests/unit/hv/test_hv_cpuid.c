// SPDX-License-Identifier: GPL-2.0-only
/* CPUID table vs spec §1.2/§1.5. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "hv/hv_cpuid.h"
#include "hv/hv_proto.h"

static const struct hv_cpuid_entry *find(const struct hv_cpuid_entry *e, int n, uint32_t leaf)
{
	for (int i = 0; i < n; i++)
		if (e[i].leaf == leaf)
			return &e[i];
	return NULL;
}

static void test_values(void **state)
{
	struct hv_cpuid_entry e[16];
	struct hv_cpuid_config cfg = {.nvps = 4, .ref_tsc = false, .freq_msrs = true};
	const struct hv_cpuid_entry *l;
	char sig[13];
	int n = hv_cpuid_fill(e, 16, &cfg);

	assert_int_equal(n, 11);
	/* Exactly leaves 0x40000000..0x4000000A, each once. */
	for (uint32_t leaf = 0x40000000; leaf <= 0x4000000A; leaf++)
		assert_non_null(find(e, n, leaf));

	l = find(e, n, 0x40000000);
	assert_true(l->eax >= 0x40000005 && l->eax < 0x4000000A); /* no nested leaf read */
	memcpy(sig, &l->ebx, 4);
	memcpy(sig + 4, &l->ecx, 4);
	memcpy(sig + 8, &l->edx, 4);
	sig[12] = 0;
	assert_string_equal(sig, "Microsoft Hv");

	l = find(e, n, 0x40000001);
	assert_int_equal(l->eax, 0x31237648); /* "Hv#1" */
	assert_true(l->ebx == 0 && l->ecx == 0 && l->edx == 0);

	l = find(e, n, 0x40000002);
	assert_int_equal(l->eax, 20348);
	assert_int_equal(l->ebx, 0x000A0000);

	l = find(e, n, 0x40000003);
	assert_int_equal(l->eax, 0x00008864); /* §1.5 without the TSC page */
	assert_int_equal(l->ebx, 0x00000030);
	assert_int_equal(l->ecx, 0);
	assert_int_equal(l->edx, 0x00000500);
	assert_int_equal(l->ebx & ((1u << 1) | (1u << 12) | (1u << 20) | (1u << 22)), 0);
	assert_int_equal(l->eax & HV_PRIV_SYNTIMER, 0);

	l = find(e, n, 0x40000004);
	assert_int_equal(l->eax, 0x00000200); /* DEPRECATING_AEOI only; no APIC-MSR hint */
	assert_int_equal(l->ebx, 0xFFFFFFFFu);

	l = find(e, n, 0x40000005);
	assert_int_equal(l->eax, 4);
	assert_int_equal(l->ebx, 4);

	for (uint32_t leaf = 0x40000006; leaf <= 0x4000000A; leaf++) {
		l = find(e, n, leaf);
		assert_true(l->eax == 0 && l->ebx == 0 && l->ecx == 0 && l->edx == 0);
	}
	/* No KVM signature: nothing at any 0x100 step above the base. */
	for (int i = 0; i < n; i++)
		assert_true(e[i].leaf < 0x40000100);
}

static void test_ref_tsc(void **state)
{
	struct hv_cpuid_entry e[11];
	struct hv_cpuid_config cfg = {.nvps = 1, .ref_tsc = true, .freq_msrs = true};

	assert_int_equal(hv_cpuid_fill(e, 11, &cfg), 11);
	assert_int_equal(find(e, 11, 0x40000003)->eax, 0x00008A66);
	cfg.stimers = true;
	assert_int_equal(hv_cpuid_fill(e, 11, &cfg), 11);
	assert_int_equal(find(e, 11, 0x40000003)->eax, 0x00008A6E);
	assert_int_equal(find(e, 11, 0x40000003)->edx, 0x00080500);
}

static void test_no_tsc_rate(void **state)
{
	struct hv_cpuid_entry e[11];
	struct hv_cpuid_config cfg = {.nvps = 1};

	assert_int_equal(hv_cpuid_fill(e, 11, &cfg), 11);
	assert_int_equal(find(e, 11, 0x40000003)->eax, 0x00008064);
	assert_int_equal(find(e, 11, 0x40000003)->edx, 0x00000400);
}

static void test_errors(void **state)
{
	struct hv_cpuid_entry e[11];
	struct hv_cpuid_config cfg = {.nvps = 1};
	struct hv_cpuid_config bad = {.nvps = 0};

	assert_int_equal(hv_cpuid_fill(e, 10, &cfg), -ENOSPC);
	assert_int_equal(hv_cpuid_fill(e, 11, &bad), -EINVAL);
	assert_int_equal(hv_cpuid_fill(NULL, 11, &cfg), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_ref_tsc),
		cmocka_unit_test(test_no_tsc_rate),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
