// SPDX-License-Identifier: GPL-2.0-only
/* The parts of vCPU and KVM setup that run without /dev/kvm. */
#include "lib/err.h"
#include "vid/cpu.h"
#include "vid/kvm.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void test_cpuid_apic_ids(void **state)
{
	struct kvm_cpuid_entry2 e[6] = {
		{.function = 1, .ebx = 0xff0a0800, .ecx = 0, .edx = 0},
		{.function = 4,
		 .index = 0,
		 .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
		 .eax = 0xfc004121},
		{.function = 0xb, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX},
		{.function = 0xb, .index = 1, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX},
		{.function = 0xb, .index = 2, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX},
		{.function = 0x1f, .index = 1, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX},
	};

	vid_cpuid_fixup(e, 6, 37, 64);
	assert_int_equal(e[0].ebx >> 24, 37);
	assert_int_equal((e[0].ebx >> 16) & 0xff, 64);
	assert_int_equal(e[0].ebx & 0xffff, 0x0800); /* CLFLUSH size etc. untouched */
	assert_true(e[0].ecx & (1u << 31)); /* hypervisor present */
	assert_true(e[0].edx & (1u << 28)); /* HTT: more than one logical CPU */
	assert_int_equal(e[1].eax >> 26, 63);
	assert_int_equal(e[1].eax & 0x3fff, 0x0121);
	for (int i = 2; i < 6; i++)
		assert_int_equal(e[i].edx, 37); /* x2APIC ID in every subleaf */
	assert_int_equal(e[2].ebx, 1);
	assert_int_equal((e[2].ecx >> 8) & 0xff, 1); /* SMT */
	assert_int_equal(e[3].eax, 6); /* 64 cores: 6 bits */
	assert_int_equal(e[3].ebx, 64);
	assert_int_equal((e[3].ecx >> 8) & 0xff, 2); /* core */
	assert_int_equal((e[4].ecx >> 8) & 0xff, 0); /* end of levels */
	assert_int_equal(e[5].ebx, 64);
	assert_ptr_equal(vid_cpuid_find(e, 6, 0xb, 1), &e[3]);
	assert_null(vid_cpuid_find(e, 6, 0x40000000, 0));

	/* One vCPU: no HTT, leaf 1 still carries APIC ID 0. */
	e[0].ebx = 0xff000000;
	vid_cpuid_fixup(e, 6, 0, 1);
	assert_int_equal(e[0].ebx >> 24, 0);
	assert_false(e[0].edx & (1u << 28));
	assert_int_equal(e[3].eax, 0);
}

static void test_sregs_long_mode(void **state)
{
	struct boot_cpu_state b = {
		.long_mode = true,
		.rip = 0x1000200,
		.rsp = 0x8ff0,
		.rsi = 0x7000,
		.cr0 = 0x80050033,
		.cr3 = 0x9000,
		.cr4 = 0x20,
		.efer = 0x500,
		.gdt_base = 0x500,
		.gdt_limit = 0x1f,
		.code_selector = 0x10,
		.data_selector = 0x18,
	};
	struct kvm_sregs s;
	struct kvm_regs r;

	memset(&s, 0xee, sizeof(s));
	s.apic_base = 0xfee00900;
	vid_sregs_from_boot(&b, &s);
	assert_int_equal(s.cs.selector, 0x10);
	assert_true(s.cs.l == 1 && s.cs.db == 0 && s.cs.present && s.cs.s && s.cs.type == 0xb);
	assert_true(s.ds.selector == 0x18 && s.ss.selector == 0x18 && s.gs.type == 3);
	assert_true(s.ds.base == 0 && s.ds.limit == 0xffffffff && s.ds.g);
	assert_true(s.tr.present && s.tr.type == 0xb);
	assert_true(s.gdt.base == 0x500 && s.gdt.limit == 0x1f);
	assert_true(s.cr0 == 0x80050033 && s.cr3 == 0x9000 && s.cr4 == 0x20);
	assert_true((s.efer & 0x500) == 0x500);
	assert_true(s.apic_base == 0xfee00900); /* left alone */
	vid_regs_from_boot(&b, &r);
	assert_true(r.rip == 0x1000200 && r.rsp == 0x8ff0 && r.rsi == 0x7000 && r.rbx == 0);
	assert_int_equal(r.rflags, 2);
}

static void test_sregs_pvh_32bit(void **state)
{
	struct boot_cpu_state b = {
		.long_mode = false,
		.rip = 0x100000,
		.rbx = 0x6000,
		.cr0 = 0x11,
		.gdt_base = 0x500,
		.gdt_limit = 0x1f,
		.code_selector = 0x8,
		.data_selector = 0x10,
	};
	struct kvm_sregs s = {0};
	struct kvm_regs r;

	s.efer = 0x500;
	vid_sregs_from_boot(&b, &s);
	assert_true(s.cs.l == 0 && s.cs.db == 1);
	assert_int_equal(s.efer & 0x500, 0); /* no long mode */
	assert_int_equal(s.cr0, 0x11);
	vid_regs_from_boot(&b, &r);
	assert_true(r.rbx == 0x6000 && r.rip == 0x100000);
}

static void test_kvm_open_errors(void **state)
{
	struct vid_kvm kvm;

	setenv(VID_KVM_DEVICE_ENV, "/nonexistent/kvm", 1);
	assert_string_equal(vid_kvm_device_path(), "/nonexistent/kvm");
	assert_int_equal(vid_kvm_open(&kvm), -ENOENT);
	assert_non_null(strstr(err_msg(), "/nonexistent/kvm"));
	assert_non_null(strstr(err_msg(), "KVM is not available"));
	assert_null(strchr(err_msg(), '\n'));
	/* Something that opens but is no KVM device. */
	setenv(VID_KVM_DEVICE_ENV, "/dev/null", 1);
	assert_int_equal(vid_kvm_open(&kvm), -ENOTTY);
	assert_non_null(strstr(err_msg(), "not a KVM device"));
	unsetenv(VID_KVM_DEVICE_ENV);
	assert_string_equal(vid_kvm_device_path(), "/dev/kvm");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cpuid_apic_ids),
		cmocka_unit_test(test_sregs_long_mode),
		cmocka_unit_test(test_sregs_pvh_32bit),
		cmocka_unit_test(test_kvm_open_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
