// SPDX-License-Identifier: GPL-2.0-only
/* The vid<->hv glue's CPUID merge: what a guest will see, without KVM. */
#include "cli/run_hv.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>

#define CAP 64

static struct kvm_cpuid2 *cpuid_alloc(void)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + CAP * sizeof(struct kvm_cpuid_entry2));

	assert_non_null(c);
	return c;
}

static void cpuid_add(struct kvm_cpuid2 *c, uint32_t fn, uint32_t a, uint32_t b, uint32_t cx,
		      uint32_t d)
{
	c->entries[c->nent++] =
		(struct kvm_cpuid_entry2){.function = fn, .eax = a, .ebx = b, .ecx = cx, .edx = d};
}

static void test_hyperv_leaves_replace_kvm(void **state)
{
	struct guest_mem gm;
	struct run_hv rh;
	struct kvm_cpuid2 *c = cpuid_alloc();
	char vendor[13] = {0};
	char iface[5] = {0};
	struct kvm_cpuid_entry2 *e;

	assert_int_equal(guest_mem_init(&gm, 16 << 20, 0), 0);
	assert_int_equal(run_hv_create(&rh, &gm, 2), 0);
	/* What KVM_GET_SUPPORTED_CPUID typically reports: basic leaves and KVM's own. */
	cpuid_add(c, 0, 0xd, 0x756e6547, 0x6c65746e, 0x49656e69);
	cpuid_add(c, 0x40000000, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d); /* "KVMKVMKVM" */
	cpuid_add(c, 0x40000001, 0x01007afb, 0, 0, 0);
	cpuid_add(c, 0x40000100, 0x40000101, 0x4b4d564b, 0x564b4d56, 0x4d);
	assert_int_equal(run_hv_cpuid_hook(&rh, c, CAP, 1), 0);

	e = vid_cpuid_find(c->entries, c->nent, 0x40000000, 0);
	assert_non_null(e);
	memcpy(vendor, &e->ebx, 4);
	memcpy(vendor + 4, &e->ecx, 4);
	memcpy(vendor + 8, &e->edx, 4);
	assert_string_equal(vendor, "Microsoft Hv");
	assert_true(e->eax >= 0x40000005);
	e = vid_cpuid_find(c->entries, c->nent, 0x40000001, 0);
	assert_non_null(e);
	memcpy(iface, &e->eax, 4);
	assert_string_equal(iface, "Hv#1");
	/* No KVM signature left at any 0x100 step. */
	for (uint32_t fn = 0x40000000; fn < 0x40010000; fn += 0x100)
		if ((e = vid_cpuid_find(c->entries, c->nent, fn, 0)))
			assert_int_not_equal(e->ebx, 0x4b4d564b);
	/* The basic leaves are untouched. */
	e = vid_cpuid_find(c->entries, c->nent, 0, 0);
	assert_non_null(e);
	assert_int_equal(e->ebx, 0x756e6547);
	run_hv_destroy(&rh);
	guest_mem_destroy(&gm);
	free(c);
}

static void test_full_table_is_an_error(void **state)
{
	struct guest_mem gm;
	struct run_hv rh;
	struct kvm_cpuid2 *c = cpuid_alloc();

	assert_int_equal(guest_mem_init(&gm, 16 << 20, 0), 0);
	assert_int_equal(run_hv_create(&rh, &gm, 1), 0);
	cpuid_add(c, 0, 0xd, 0, 0, 0);
	assert_int_equal(run_hv_cpuid_hook(&rh, c, 2, 0), -ENOSPC);
	run_hv_destroy(&rh);
	guest_mem_destroy(&gm);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hyperv_leaves_replace_kvm),
		cmocka_unit_test(test_full_table_is_an_error),
	};

	return cmocka_run_group_tests_name("cli_run_hv", tests, NULL, NULL);
}
