/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The emulated Hyper-V partition: synthetic MSRs, hypercalls and SynIC for one VM, as pure
 * logic over guest_mem. The vCPU loop (src/vid) calls in on MSR exits and on port I/O to
 * LAYOUT_HV_HYPERCALL_PORT; the hv layer calls out through struct hv_callbacks.
 *
 * Wiring (vCPU loop, src/vid):
 *  - setup: hv_partition_create(gm, nvcpus, &cb) with cb.read_guest_tsc/guest_tsc_hz from
 *    KVM_GET_TSC_KHZ; merge hv_partition_cpuid_fill() into KVM_SET_CPUID2 (+ CPUID.1:ECX[31]);
 *    KVM_CAP_X86_USER_SPACE_MSR (KVM_MSR_EXIT_REASON_FILTER) and a KVM_X86_SET_MSR_FILTER that
 *    denies read+write on 0x40000000-0x400001FF;
 *  - KVM_EXIT_X86_RDMSR/WRMSR in that range: hv_msr_read/hv_msr_write (hv_msr.h);
 *  - KVM_EXIT_IO matching hv_hypercall_exit_match() (out, port LAYOUT_HV_HYPERCALL_PORT,
 *    size 4, data HV_HYPERCALL_MAGIC): hv_hypercall (hv_hypercall.h), RIP left as KVM
 *    reports it;
 *  - cb.inject_interrupt(vp, vector): KVM_SIGNAL_MSI, address 0xFEE00000 | apic_id(vp) << 12,
 *    data = vector (fixed, edge);  cb.guest_crash: stop the VM with exit code 4;
 *  - vCPU INIT/reset: hv_vp_reset; VM reboot: hv_partition_reset.
 * Callbacks run with hv locks held (and inject_interrupt also on the timer thread): they must
 * not call back into hv.
 *
 * Threads: hv_msr_* and hv_hypercall for VP n are called from VP n's thread only.
 * hv_synic_post_message / hv_synic_signal_event may be called from any thread at any time
 * (they take the target VP's lock and use atomics on the guest pages).
 */
#ifndef VIRIDIAN_HV_HV_H
#define VIRIDIAN_HV_HV_H

#include <stdint.h>

#include "vid/guest_mem.h"

struct hv_partition;

struct hv_callbacks {
	void *opaque;
	/*
	 * Raise a fixed, edge-triggered interrupt with this vector on VP vp (the VMM maps it to
	 * KVM_SIGNAL_MSI at the VP's APIC ID). Called with the VP's SynIC lock held, from any
	 * thread: it must not call back into hv. NULL: interrupts are dropped.
	 */
	void (*inject_interrupt)(void *opaque, unsigned vp, uint8_t vector);
	/* Guest wrote CRASH_CTL with the notify bit; params = CRASH_P0..P4 (§2.5). -> exit 4. */
	void (*guest_crash)(void *opaque, unsigned vp, const uint64_t params[5]);
	/*
	 * Guest TSC now (as RDTSC in the guest would read it) and its rate. With both set, the
	 * reference TSC page is offered and TIME_REF_COUNT is derived from this same clock, so
	 * the two agree exactly. Without them, TIME_REF_COUNT runs from CLOCK_MONOTONIC and the
	 * TSC page is never made valid (sequence stays 0).
	 */
	uint64_t (*read_guest_tsc)(void *opaque, unsigned vp); /* any thread (timers) */
	uint64_t guest_tsc_hz;
};

/* NULL + err_set() on failure. nvps 1..HV_MAX_VPS. gm must outlive the partition. */
#define HV_MAX_VPS 1024u
struct hv_partition *hv_partition_create(struct guest_mem *gm, unsigned nvps,
					 const struct hv_callbacks *cb);
void hv_partition_destroy(struct hv_partition *part);
unsigned hv_partition_nvps(const struct hv_partition *part);
/* True when REFERENCE_TSC can be offered (pass to hv_cpuid_fill). */
int hv_partition_has_ref_tsc(const struct hv_partition *part);

/*
 * Per-VP architectural reset (INIT/reset): SINTs masked, SCONTROL/SIMP/SIEFP/VP-assist 0,
 * queued messages dropped, stimers stopped and cleared.
 */
void hv_vp_reset(struct hv_partition *part, unsigned vp);

/*
 * Whole-VM reset (reboot): partition-wide MSRs (guest OS ID, hypercall page, reference TSC page,
 * crash, invariant-TSC control) cleared and every VP reset. Registered ports stay. VPs stopped.
 */
void hv_partition_reset(struct hv_partition *part);

/* Current reference time (100 ns units since partition creation), as TIME_REF_COUNT reads. */
uint64_t hv_ref_time_now(struct hv_partition *part, unsigned vp);

#endif
