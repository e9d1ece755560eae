/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Hyper-V CPUID leaves 0x40000000-0x4000000A (spec §1.5), for the vCPU code to merge into the
 * table it gives KVM_SET_CPUID2 (replacing any entry with the same leaf).
 *
 * What the vCPU code must do itself (not part of this table):
 *  - set CPUID.1:ECX[31] (hypervisor present); Linux ignores leaf 0x40000000 without it;
 *  - set CPUID.0x80000007:EDX[8] (invariant TSC) when the host TSC is invariant;
 *  - publish no KVM signature ("KVMKVMKVM") at any 0x40000x00 leaf: KVM would win detection
 *    and hv_vmbus would never load (§1.1);
 *  - use the KVM MSR filter on 0x40000000-0x400001FF so "Hv#1" below does not switch on any
 *    in-kernel Hyper-V emulation (§9.2).
 */
#ifndef VIRIDIAN_HV_HV_CPUID_H
#define VIRIDIAN_HV_HV_CPUID_H

#include <stdbool.h>
#include <stdint.h>

struct hv_cpuid_entry {
	uint32_t leaf; /* subleaf is always 0 */
	uint32_t eax, ebx, ecx, edx;
};

struct hv_cpuid_config {
	unsigned nvps;
	bool ref_tsc; /* a valid reference TSC page is kept (hv_partition_has_ref_tsc) */
	bool freq_msrs; /* TSC_FREQUENCY can be answered (guest_tsc_hz known) */
	bool stimers; /* offer synthetic timers (off by default: see hv_cpuid.c) */
};

struct hv_partition;

#define HV_CPUID_NLEAVES 11u

/* Fills up to max entries; returns the number filled (HV_CPUID_NLEAVES) or -ENOSPC/-EINVAL. */
int hv_cpuid_fill(struct hv_cpuid_entry *out, unsigned max, const struct hv_cpuid_config *cfg);
/* Same, with the configuration taken from the partition (what the vCPU code should call). */
int hv_partition_cpuid_fill(const struct hv_partition *part, struct hv_cpuid_entry *out,
			    unsigned max);

#endif
