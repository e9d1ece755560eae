// SPDX-License-Identifier: GPL-2.0-only
#include "cli/run_hv.h"

#include "hv/hv_cpuid.h"
#include "hv/hv_hypercall.h"
#include "hv/hv_msr.h"
#include "lib/err.h"
#include "lib/util.h"
#include "vid/layout.h"
#include "vsp/echo.h"

#include <errno.h>
#include <string.h>

/* Synthetic MSRs live in 0x40000000-0x400001FF (spec §2.1). */
#define RUN_HV_MSR_BASE 0x40000000u
#define RUN_HV_MSR_COUNT 0x200u
#define RUN_HV_MAX_LEAVES 16

static void run_hv_inject(void *opaque, unsigned vp, uint8_t vector)
{
	struct run_hv *rh = opaque;

	/* VP index = vCPU index = APIC ID (run.c gives vCPU i APIC ID i). */
	if (rh->part)
		vid_partition_signal_msi(rh->part, vp, vector);
}

static void run_hv_crash(void *opaque, unsigned vp, const uint64_t params[5])
{
	struct run_hv *rh = opaque;

	if (rh->part)
		vid_partition_request_stop(
			rh->part, VID_STOP_GUEST_CRASH,
			"vCPU %u reported a crash: P0=%#llx P1=%#llx P2=%#llx "
			"P3=%#llx P4=%#llx",
			vp, (unsigned long long)params[0], (unsigned long long)params[1],
			(unsigned long long)params[2], (unsigned long long)params[3],
			(unsigned long long)params[4]);
}

int run_hv_create(struct run_hv *rh, struct guest_mem *gm, unsigned ncpus)
{
	/*
	 * No guest-TSC source yet: TIME_REF_COUNT then runs from CLOCK_MONOTONIC and the
	 * reference TSC page is left invalid, which Linux handles by reading the MSR.
	 */
	struct hv_callbacks cb = {
		.opaque = rh,
		.inject_interrupt = run_hv_inject,
		.guest_crash = run_hv_crash,
	};

	memset(rh, 0, sizeof(*rh));
	rh->hv = hv_partition_create(gm, ncpus, &cb);
	return rh->hv ? 0 : -EINVAL;
}

int run_hv_cpuid_hook(void *opaque, struct kvm_cpuid2 *cpuid, unsigned capacity,
		      unsigned vcpu_index)
{
	struct run_hv *rh = opaque;
	struct hv_cpuid_entry leaves[RUN_HV_MAX_LEAVES];
	struct hv_cpuid_config cfg = {
		.nvps = hv_partition_nvps(rh->hv),
		.ref_tsc = hv_partition_has_ref_tsc(rh->hv),
		.stimers = rh->stimers,
	};
	int n = hv_cpuid_fill(leaves, ARRAY_SIZE(leaves), &cfg);

	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		/* Replace KVM's own 0x4000xxxx leaves so no KVM signature stays visible. */
		struct kvm_cpuid_entry2 *e =
			vid_cpuid_find(cpuid->entries, cpuid->nent, leaves[i].leaf, 0);

		if (!e) {
			if (cpuid->nent >= capacity) {
				err_set("CPUID table full adding Hyper-V leaf %#x", leaves[i].leaf);
				return -ENOSPC;
			}
			e = &cpuid->entries[cpuid->nent++];
		}
		*e = (struct kvm_cpuid_entry2){
			.function = leaves[i].leaf,
			.eax = leaves[i].eax,
			.ebx = leaves[i].ebx,
			.ecx = leaves[i].ecx,
			.edx = leaves[i].edx,
		};
	}
	/* Drop KVM's paravirt leaves beyond ours (0x40000100... would advertise KVM). */
	for (unsigned i = 0; i < cpuid->nent;) {
		uint32_t fn = cpuid->entries[i].function;
		bool ours = false;

		for (int k = 0; k < n; k++)
			ours |= leaves[k].leaf == fn;
		if (fn >= 0x40000000u && fn < 0x50000000u && !ours)
			cpuid->entries[i] = cpuid->entries[--cpuid->nent];
		else
			i++;
	}
	return 0;
}

static int run_hv_msr(void *opaque, unsigned vp, bool is_write, uint32_t index, uint64_t *data)
{
	struct run_hv *rh = opaque;
	int r = is_write ? hv_msr_write(rh->hv, vp, index, *data)
			 : hv_msr_read(rh->hv, vp, index, data);

	/* HV_MSR_GP and HV_MSR_UNHANDLED both give the guest #GP, as Hyper-V does. */
	return r == HV_MSR_OK ? 0 : -1;
}

static void run_hv_hypercall_port(void *opaque, uint64_t offset, uint8_t *data, unsigned size,
				  bool is_write)
{
	struct run_hv *rh = opaque;
	struct vid_vcpu *v = vid_vcpu_current();
	struct hv_hypercall_regs hregs;
	struct kvm_regs regs;

	if (!is_write) {
		memset(data, 0xff, size);
		return;
	}
	if (!v || !hv_hypercall_exit_match(true, LAYOUT_HV_HYPERCALL_PORT, (uint8_t)size, 1, data))
		return;
	if (vid_vcpu_get_regs(v, &regs) < 0)
		return;
	/* The stub moved the guest's RDX to R10 before loading the port into DX. */
	hregs = (struct hv_hypercall_regs){.rcx = regs.rcx, .rdx = regs.r10, .r8 = regs.r8};
	regs.rax = hv_hypercall(rh->hv, v->index, &hregs);
	vid_vcpu_set_regs(v, &regs);
}

int run_hv_attach(struct run_hv *rh, struct vid_partition *part)
{
	int r;

	rh->part = part;
	r = vid_partition_trap_msrs(part, RUN_HV_MSR_BASE, RUN_HV_MSR_COUNT, run_hv_msr, rh);
	if (r < 0)
		return r;
	return iobus_register(&part->pio, LAYOUT_HV_HYPERCALL_PORT, 4, run_hv_hypercall_port, rh,
			      "hv-hypercall");
}

int run_hv_add_vmbus(struct run_hv *rh, struct guest_mem *gm, unsigned ncpus,
		     const struct run_hv_devices *devs)
{
	int r;

	rh->vmbus = vmbus_server_create(rh->hv, gm);
	if (!rh->vmbus)
		return -EINVAL;
	if (devs->nluns) {
		struct storvsp_config sc = {
			.luns = devs->luns,
			.nluns = devs->nluns,
			.max_subchannels = ncpus - 1,
		};

		rh->storvsp = vsp_storvsp_create(&sc);
		if (!rh->storvsp)
			return -EINVAL;
		r = vmbus_server_add_device(rh->vmbus, rh->storvsp);
		if (r < 0)
			return r;
	}
	if (devs->echo) {
		r = hv_echo_port_enable(rh->hv, RUN_HV_ECHO_PORT);
		if (r < 0)
			return r;
		rh->echo = vsp_echo_create();
		if (!rh->echo)
			return -EINVAL;
		r = vmbus_server_add_device(rh->vmbus, rh->echo);
		if (r < 0)
			return r;
	}
	return 0;
}

void run_hv_destroy(struct run_hv *rh)
{
	/* The server first: it closes the channels, whose devices then close their images. */
	if (rh->vmbus)
		vmbus_server_destroy(rh->vmbus);
	if (rh->storvsp)
		vsp_storvsp_destroy(rh->storvsp);
	if (rh->echo)
		vsp_echo_destroy(rh->echo);
	if (rh->hv)
		hv_partition_destroy(rh->hv);
	memset(rh, 0, sizeof(*rh));
}
