// SPDX-License-Identifier: GPL-2.0-only
/* The one Hyper-V CPUID table. Bit choices follow spec §1.3/§1.5 and §9. */
#include "hv/hv_cpuid.h"

#include <errno.h>
#include <stddef.h>

#include "hv/hv_internal.h"
#include "hv/hv_proto.h"

/*
 * Max leaf 0x40000006: Linux needs >= 0x40000005 and reads the nested leaf 0x4000000A only
 * when max >= 0xA, which we keep out of reach (§1.2). Leaves 7..A are still emitted as zeros
 * so KVM never substitutes out-of-range data for them.
 */
#define HV_CPUID_MAX_LEAF HV_CPUID_HW_FEATURES

int hv_cpuid_fill(struct hv_cpuid_entry *out, unsigned max, const struct hv_cpuid_config *cfg)
{
	uint32_t priv_a;

	if (!out || !cfg || cfg->nvps == 0)
		return -EINVAL;
	if (max < HV_CPUID_NLEAVES)
		return -ENOSPC;

	priv_a = HV_PRIV_SYNIC | /* hv_vmbus uses SynIC MSRs; Windows checks it */
		 HV_PRIV_HYPERCALL | /* required by ms_hyperv_platform */
		 HV_PRIV_VP_INDEX | /* required by ms_hyperv_platform */
		 HV_PRIV_TSC_INVARIANT; /* guest keeps the TSC as clocksource (MSR 0x118) */
	/* TSC/APIC Hz known: no calibration loops. Needs the TSC rate; EDX bit 8 goes along. */
	if (cfg->freq_msrs)
		priv_a |= HV_PRIV_FREQUENCY_MSRS;
	/*
	 * TIME_REF_COUNT and REFERENCE_TSC only together with a valid TSC page: otherwise every
	 * sched_clock() would be an MSR exit to user space (§1.3, §9.6). SYNTIMER (bit 3, with
	 * direct mode EDX bit 19) only on request: the stimer clockevent (rating 1000) replaces
	 * the LAPIC timer, and every timer arm becomes an MSR exit here (§9.6). No APIC_ACCESS
	 * (4): MSRs 0x70-0x72 are not handled. No VP_RUNTIME/RESET/GUEST_IDLE: not implemented.
	 */
	if (cfg->ref_tsc)
		priv_a |= HV_PRIV_TIME_REF_COUNT | HV_PRIV_REFERENCE_TSC;
	if (cfg->stimers)
		priv_a |= HV_PRIV_SYNTIMER;

	const struct hv_cpuid_entry table[HV_CPUID_NLEAVES] = {
		/* Vendor "Microsoft Hv"; max leaf. */
		{HV_CPUID_VENDOR, HV_CPUID_MAX_LEAF, HV_CPUID_SIG_EBX, HV_CPUID_SIG_ECX,
		 HV_CPUID_SIG_EDX},
		/* "Hv#1": Linux does not read it, Windows needs it (§1.1). */
		{HV_CPUID_INTERFACE, HV_CPUID_INTERFACE_HV1, 0, 0, 0},
		/* Version: only printed by Linux; build 20348 of 10.0. */
		{HV_CPUID_VERSION, 20348, 0x000A0000, 0, 0},
		/*
		 * EBX: PostMessages|SignalEvents only. Never PARTITION_ID (1: NULL output page
		 * in a child), CPU_MANAGEMENT (12: root partition, no VMBus), EXT_HYPERCALLS
		 * (20: 0x8001 unimplemented) or ISOLATION (22: confidential-VM paths).
		 * EDX: frequency MSRs (with EAX bit 11) and crash MSRs (panic text, exit 4). No
		 * XMM hypercall input/output. Stimer direct mode along with stimers.
		 */
		{HV_CPUID_FEATURES, priv_a, HV_PRIVB_POST_MESSAGES | HV_PRIVB_SIGNAL_EVENTS, 0,
		 (cfg->freq_msrs ? HV_FEAT_FREQUENCY_MSRS : 0) | HV_FEAT_CRASH_MSRS |
			 (cfg->stimers ? HV_FEAT_STIMER_DIRECT : 0)},
		/*
		 * EAX: DEPRECATING_AEOI only: KVM's LAPIC has no auto-EOI for a user-space SynIC,
		 * so the guest must EOI itself (§4.4, mandatory). No APIC_ACCESS hint (3): every
		 * EOI would become an MSR exit. No TLB-flush/cluster-IPI hints: hypercalls absent.
		 * EBX: spin-wait retries 0xFFFFFFFF = never notify.
		 */
		{HV_CPUID_HINTS, HV_HINT_DEPRECATING_AEOI, 0xFFFFFFFFu, 0, 0},
		/* Limits: max virtual and logical processors = the partition's VP count. */
		{HV_CPUID_LIMITS, cfg->nvps, cfg->nvps, 0, 0},
		/* Hardware features used by the hypervisor: nothing the guest acts on. */
		{HV_CPUID_HW_FEATURES, 0, 0, 0, 0},
		/* 0x40000007-9: CPU management / SVM / nested leaves: not offered. */
		{0x40000007u, 0, 0, 0, 0},
		{0x40000008u, 0, 0, 0, 0},
		{0x40000009u, 0, 0, 0, 0},
		/* Nested features: none (also beyond the max leaf). No 0x4000000C isolation leaf.
		 */
		{HV_CPUID_NESTED, 0, 0, 0, 0},
	};

	for (unsigned i = 0; i < HV_CPUID_NLEAVES; i++)
		out[i] = table[i];
	return HV_CPUID_NLEAVES;
}

int hv_partition_cpuid_fill(const struct hv_partition *part, struct hv_cpuid_entry *out,
			    unsigned max)
{
	struct hv_cpuid_config cfg = {
		.nvps = part->nvps,
		.ref_tsc = part->ref_tsc,
		.freq_msrs = part->cb.guest_tsc_hz != 0,
	};

	return hv_cpuid_fill(out, max, &cfg);
}
