// SPDX-License-Identifier: GPL-2.0-only
/* Synthetic MSRs (spec §2.1): partition-wide ones under part->lock, per-VP ones under vp->lock. */
#include "hv/hv_msr.h"

#include <string.h>

#include "hv/hv_internal.h"
#include "lib/log.h"
#include "vid/layout.h"

_Static_assert(LAYOUT_HV_HYPERCALL_PORT == 0x5658, "stub below encodes the port");

const uint8_t hv_hypercall_stub[HV_HYPERCALL_STUB_LEN] = {
	0x49, 0x89, 0xD2, /* mov r10, rdx */
	0xBA, 0x58, 0x56, 0x00, 0x00, /* mov edx, LAYOUT_HV_HYPERCALL_PORT */
	0xB8, 0x48, 0x76, 0x43, 0x6C, /* mov eax, HV_HYPERCALL_MAGIC ("HvCl") */
	0xEF, /* out dx, eax */
	0xC3, /* ret */
	0x0F, 0x0B, /* ud2: never reached; stops a guest that falls through */
};

/* Enable with a page in RAM: write the stub through the host mapping (guest maps it RO). */
static void hv_hypercall_page_install(struct hv_partition *part)
{
	uint64_t gpa = part->hypercall_msr & HV_PAGE_MASK;

	if (!guest_mem_range_is_ram(part->gm, gpa, HV_PAGE_SIZE) ||
	    guest_mem_write(part->gm, gpa, hv_hypercall_stub, sizeof(hv_hypercall_stub)) < 0) {
		log_warn_ratelimited(HV_LOG, "hypercall page 0x%llx is not guest RAM; not written",
				     (unsigned long long)gpa);
		return;
	}
	log_info(HV_LOG, "hypercall page enabled at 0x%llx", (unsigned long long)gpa);
}

static int hv_msr_write_partition(struct hv_partition *part, unsigned vp, uint32_t msr,
				  uint64_t val)
{
	uint64_t params[5];

	switch (msr) {
	case HV_MSR_GUEST_OS_ID:
		if (val != part->guest_os_id)
			log_info(HV_LOG, "guest OS ID 0x%016llx", (unsigned long long)val);
		part->guest_os_id = val;
		/* OS ID 0 disables the hypercall page (TLFS). */
		if (!val)
			part->hypercall_msr &= ~HV_HYPERCALL_ENABLE;
		return HV_MSR_OK;
	case HV_MSR_HYPERCALL:
		if (val & HV_HYPERCALL_RSVD)
			return HV_MSR_GP;
		if (part->hypercall_msr & HV_HYPERCALL_LOCKED)
			return HV_MSR_OK; /* locked until reset: writes ignored */
		/* Hyper-V ignores enabling while the guest OS ID is still 0 (§9.9). */
		if (!part->guest_os_id)
			val &= ~HV_HYPERCALL_ENABLE;
		part->hypercall_msr = val;
		if (val & HV_HYPERCALL_ENABLE)
			hv_hypercall_page_install(part);
		return HV_MSR_OK;
	case HV_MSR_REFERENCE_TSC:
		part->ref_tsc_msr = val; /* bits 11:1 preserved for the guest (§2.1) */
		hv_ref_tsc_page_update(part);
		return HV_MSR_OK;
	case HV_MSR_TSC_INVARIANT_CONTROL:
		if (val & ~HV_TSC_INVARIANT_ENABLE)
			return HV_MSR_GP;
		part->tsc_invariant_ctl = val;
		return HV_MSR_OK;
	case HV_MSR_CRASH_CTL:
		if (val & ~(HV_CRASH_CTL_NOTIFY | HV_CRASH_CTL_NOTIFY_MSG))
			return HV_MSR_GP;
		if (val & HV_CRASH_CTL_NOTIFY) {
			memcpy(params, part->crash_p, sizeof(params));
			log_error(
				HV_LOG,
				"guest crash on VP %u: P0..P4 = 0x%llx 0x%llx 0x%llx 0x%llx 0x%llx",
				vp, (unsigned long long)params[0], (unsigned long long)params[1],
				(unsigned long long)params[2], (unsigned long long)params[3],
				(unsigned long long)params[4]);
			if (part->cb.guest_crash)
				part->cb.guest_crash(part->cb.opaque, vp, params);
		}
		return HV_MSR_OK;
	default:
		if (msr >= HV_MSR_CRASH_P0 && msr <= HV_MSR_CRASH_P4) {
			part->crash_p[msr - HV_MSR_CRASH_P0] = val;
			return HV_MSR_OK;
		}
		return HV_MSR_UNHANDLED;
	}
}

static int hv_msr_read_partition(struct hv_partition *part, uint32_t msr, uint64_t *val)
{
	switch (msr) {
	case HV_MSR_GUEST_OS_ID:
		*val = part->guest_os_id;
		return HV_MSR_OK;
	case HV_MSR_HYPERCALL:
		*val = part->hypercall_msr;
		return HV_MSR_OK;
	case HV_MSR_REFERENCE_TSC:
		*val = part->ref_tsc_msr;
		return HV_MSR_OK;
	case HV_MSR_TSC_INVARIANT_CONTROL:
		*val = part->tsc_invariant_ctl;
		return HV_MSR_OK;
	case HV_MSR_CRASH_CTL:
		/* Both capabilities: the guest then hands over its kmsg tail in P3/P4 (§2.5). */
		*val = HV_CRASH_CTL_NOTIFY | HV_CRASH_CTL_NOTIFY_MSG;
		return HV_MSR_OK;
	default:
		if (msr >= HV_MSR_CRASH_P0 && msr <= HV_MSR_CRASH_P4) {
			*val = part->crash_p[msr - HV_MSR_CRASH_P0];
			return HV_MSR_OK;
		}
		return HV_MSR_UNHANDLED;
	}
}

static bool hv_msr_is_stimer(uint32_t msr)
{
	return msr >= HV_MSR_STIMER0_CONFIG && msr <= HV_MSR_STIMER3_COUNT;
}

/* Per-VP MSRs, vp->lock held. */
static int hv_msr_write_vp(struct hv_partition *part, unsigned vp, struct hv_vp *v, uint32_t msr,
			   uint64_t val)
{
	switch (msr) {
	case HV_MSR_VP_ASSIST_PAGE:
		if (val & HV_PAGE_MSR_LOW_BITS)
			return HV_MSR_GP;
		/* Stored only: nothing offered needs the page (we never set apic_assist). */
		v->vp_assist = val;
		return HV_MSR_OK;
	case HV_MSR_SCONTROL:
		if (val & ~HV_SCONTROL_ENABLE)
			return HV_MSR_GP;
		v->scontrol = val;
		hv_synic_retry_locked(part, vp);
		return HV_MSR_OK;
	case HV_MSR_SIEFP:
		v->siefp = val;
		hv_synic_remap_locked(part, vp, false);
		hv_synic_retry_locked(part, vp);
		return HV_MSR_OK;
	case HV_MSR_SIMP:
		v->simp = val;
		hv_synic_remap_locked(part, vp, true);
		hv_synic_retry_locked(part, vp);
		return HV_MSR_OK;
	case HV_MSR_EOM:
		/* Any value; the slot was freed by the guest: deliver the next queued message. */
		hv_synic_retry_locked(part, vp);
		return HV_MSR_OK;
	default:
		break;
	}
	if (msr >= HV_MSR_SINT0 && msr <= HV_MSR_SINT15) {
		if (val & ~HV_SINT_VALID_BITS)
			return HV_MSR_GP;
		/* An unmasked SINT must name a vector the LAPIC can deliver. */
		if (!(val & HV_SINT_MASKED) &&
		    (val & HV_SINT_VECTOR_MASK) < HV_SYNIC_FIRST_VALID_VECTOR)
			return HV_MSR_GP;
		if (val & HV_SINT_AUTO_EOI)
			log_warn_ratelimited(HV_LOG,
					     "VP %u SINT%u: auto-EOI requested but not offered "
					     "(guest ignored the DEPRECATING_AEOI hint)",
					     vp, msr - HV_MSR_SINT0);
		v->sint[msr - HV_MSR_SINT0] = val;
		hv_synic_retry_locked(part, vp);
		return HV_MSR_OK;
	}
	if (hv_msr_is_stimer(msr)) {
		unsigned n = (msr - HV_MSR_STIMER0_CONFIG) / 2;

		return hv_stimer_write_locked(part, vp, n, (msr - HV_MSR_STIMER0_CONFIG) % 2, val);
	}
	return HV_MSR_UNHANDLED;
}

static int hv_msr_read_vp(struct hv_vp *v, uint32_t msr, uint64_t *val)
{
	switch (msr) {
	case HV_MSR_VP_ASSIST_PAGE:
		*val = v->vp_assist;
		return HV_MSR_OK;
	case HV_MSR_SCONTROL:
		*val = v->scontrol;
		return HV_MSR_OK;
	case HV_MSR_SVERSION:
		*val = HV_SVERSION;
		return HV_MSR_OK;
	case HV_MSR_SIEFP:
		*val = v->siefp;
		return HV_MSR_OK;
	case HV_MSR_SIMP:
		*val = v->simp;
		return HV_MSR_OK;
	case HV_MSR_EOM:
		*val = 0; /* write-only; reads return 0 */
		return HV_MSR_OK;
	default:
		break;
	}
	if (msr >= HV_MSR_SINT0 && msr <= HV_MSR_SINT15) {
		*val = v->sint[msr - HV_MSR_SINT0];
		return HV_MSR_OK;
	}
	if (hv_msr_is_stimer(msr)) {
		unsigned n = (msr - HV_MSR_STIMER0_CONFIG) / 2;

		*val = (msr - HV_MSR_STIMER0_CONFIG) % 2 ? v->st[n].count : v->st[n].config;
		return HV_MSR_OK;
	}
	return HV_MSR_UNHANDLED;
}

int hv_msr_read(struct hv_partition *part, unsigned vp, uint32_t msr, uint64_t *val)
{
	struct hv_vp *v = hv_vp_get(part, vp);
	int ret;

	if (!v || !val)
		return HV_MSR_UNHANDLED;
	switch (msr) {
	case HV_MSR_VP_INDEX:
		*val = vp; /* VP index == vCPU number; the VMM maps it to the APIC ID */
		return HV_MSR_OK;
	case HV_MSR_TIME_REF_COUNT:
		*val = hv_ref_time_now(part, vp);
		return HV_MSR_OK;
	case HV_MSR_TSC_FREQUENCY:
		if (!part->cb.guest_tsc_hz)
			return HV_MSR_UNHANDLED;
		*val = part->cb.guest_tsc_hz;
		return HV_MSR_OK;
	case HV_MSR_APIC_FREQUENCY:
		*val = HV_APIC_FREQUENCY_HZ;
		return HV_MSR_OK;
	default:
		break;
	}
	pthread_mutex_lock(&part->lock);
	ret = hv_msr_read_partition(part, msr, val);
	pthread_mutex_unlock(&part->lock);
	if (ret != HV_MSR_UNHANDLED)
		return ret;
	pthread_mutex_lock(&v->lock);
	ret = hv_msr_read_vp(v, msr, val);
	pthread_mutex_unlock(&v->lock);
	return ret;
}

int hv_msr_write(struct hv_partition *part, unsigned vp, uint32_t msr, uint64_t val)
{
	struct hv_vp *v = hv_vp_get(part, vp);
	int ret;

	if (!v)
		return HV_MSR_UNHANDLED;
	switch (msr) {
	case HV_MSR_VP_INDEX:
	case HV_MSR_TIME_REF_COUNT:
	case HV_MSR_TSC_FREQUENCY:
	case HV_MSR_APIC_FREQUENCY:
	case HV_MSR_SVERSION:
		return HV_MSR_GP; /* read-only */
	default:
		break;
	}
	pthread_mutex_lock(&part->lock);
	ret = hv_msr_write_partition(part, vp, msr, val);
	pthread_mutex_unlock(&part->lock);
	if (ret != HV_MSR_UNHANDLED)
		return ret;
	pthread_mutex_lock(&v->lock);
	ret = hv_msr_write_vp(part, vp, v, msr, val);
	pthread_mutex_unlock(&v->lock);
	return ret;
}
