// SPDX-License-Identifier: GPL-2.0-only
/* Partition lifetime, VP reset and reference time (TIME_REF_COUNT and the reference TSC page). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hv/hv_internal.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/util.h"

struct hv_partition *hv_partition_create(struct guest_mem *gm, unsigned nvps,
					 const struct hv_callbacks *cb)
{
	struct hv_partition *part;

	if (!gm || nvps == 0 || nvps > HV_MAX_VPS) {
		err_set("hv: invalid partition parameters (need guest memory and 1..%u VPs)",
			HV_MAX_VPS);
		return NULL;
	}
	part = calloc(1, sizeof(*part) + (size_t)nvps * sizeof(part->vps[0]));
	if (!part) {
		err_set("hv: out of memory for %u VPs", nvps);
		return NULL;
	}
	part->gm = gm;
	part->nvps = nvps;
	if (cb)
		part->cb = *cb;
	pthread_mutex_init(&part->lock, NULL);
	pthread_mutex_init(&part->conn_lock, NULL);
	part->start_ns = util_now_ns();
	/*
	 * scale = 10^7 * 2^64 / tsc_hz: 100 ns ticks per TSC tick in 64.64 fixed point (§2.3).
	 * Below 10 MHz the scale would not fit 64 bits; such a TSC is not worth a page.
	 */
	if (part->cb.read_guest_tsc && part->cb.guest_tsc_hz >= 10000000ull) {
		unsigned __int128 s =
			((unsigned __int128)10000000ull << 64) / part->cb.guest_tsc_hz;
		uint64_t tsc0 = part->cb.read_guest_tsc(part->cb.opaque, 0);

		part->tsc_scale = (uint64_t)s;
		/* Reference time starts at 0 when the partition is created. */
		part->tsc_offset = -(int64_t)(((unsigned __int128)tsc0 * part->tsc_scale) >> 64);
		part->ref_tsc = true;
	}
	hv_stimer_init(part);
	for (unsigned i = 0; i < nvps; i++) {
		for (unsigned n = 0; n < HV_STIMER_COUNT; n++)
			part->vps[i].st[n].fd = -1;
		pthread_mutex_init(&part->vps[i].lock, NULL);
		hv_vp_reset(part, i);
	}
	return part;
}

void hv_partition_destroy(struct hv_partition *part)
{
	if (!part)
		return;
	hv_stimer_destroy(part); /* stops the timer thread before VP state goes away */
	for (unsigned i = 0; i < part->nvps; i++) {
		pthread_mutex_lock(&part->vps[i].lock);
		hv_synic_reset_locked(&part->vps[i]);
		pthread_mutex_unlock(&part->vps[i].lock);
		pthread_mutex_destroy(&part->vps[i].lock);
	}
	pthread_mutex_destroy(&part->lock);
	pthread_mutex_destroy(&part->conn_lock);
	free(part);
}

unsigned hv_partition_nvps(const struct hv_partition *part)
{
	return part->nvps;
}

int hv_partition_has_ref_tsc(const struct hv_partition *part)
{
	return part->ref_tsc;
}

void hv_vp_reset(struct hv_partition *part, unsigned vp)
{
	struct hv_vp *v = hv_vp_get(part, vp);

	if (!v)
		return;
	pthread_mutex_lock(&v->lock);
	hv_synic_reset_locked(v);
	v->vp_assist = 0;
	hv_stimer_reset_locked(v);
	pthread_mutex_unlock(&v->lock);
}

void hv_partition_reset(struct hv_partition *part)
{
	pthread_mutex_lock(&part->lock);
	part->guest_os_id = 0;
	part->hypercall_msr = 0;
	part->ref_tsc_msr = 0;
	part->tsc_invariant_ctl = 0;
	memset(part->crash_p, 0, sizeof(part->crash_p));
	pthread_mutex_unlock(&part->lock);
	for (unsigned i = 0; i < part->nvps; i++)
		hv_vp_reset(part, i);
}

uint64_t hv_ref_time_now(struct hv_partition *part, unsigned vp)
{
	if (part->ref_tsc) {
		uint64_t tsc = part->cb.read_guest_tsc(part->cb.opaque, vp);
		/* Same formula as the guest applies to the page, so both agree exactly. */
		int64_t t = (int64_t)(((unsigned __int128)tsc * part->tsc_scale) >> 64) +
			    part->tsc_offset;

		/* A VP whose TSC lags the one read at creation must not see time wrap. */
		return t < 0 ? 0 : (uint64_t)t;
	}
	return (util_now_ns() - part->start_ns) / 100;
}

/*
 * Writes the reference TSC page (part->lock held). TLFS sequence protocol: invalidate
 * (sequence 0), write scale/offset, then publish a new non-zero sequence; the guest re-reads the
 * sequence around its computation. 0xFFFFFFFF is skipped as well: older guests treat it as
 * invalid too.
 */
void hv_ref_tsc_page_update(struct hv_partition *part)
{
	struct hv_ref_tsc_page *pg;
	uint64_t gpa = part->ref_tsc_msr & HV_PAGE_MASK;

	if (!(part->ref_tsc_msr & HV_PAGE_MSR_ENABLE))
		return;
	if (!guest_mem_range_is_ram(part->gm, gpa, HV_PAGE_SIZE) ||
	    !(pg = guest_mem_ptr(part->gm, gpa, sizeof(*pg)))) {
		log_warn_ratelimited(HV_LOG, "REFERENCE_TSC page 0x%llx is not guest RAM; ignored",
				     (unsigned long long)gpa);
		return;
	}
	__atomic_store_n(&pg->sequence, 0, __ATOMIC_SEQ_CST);
	if (!part->ref_tsc)
		return; /* sequence 0: the guest uses TIME_REF_COUNT */
	__atomic_store_n(&pg->scale, part->tsc_scale, __ATOMIC_RELAXED);
	__atomic_store_n(&pg->offset, part->tsc_offset, __ATOMIC_RELAXED);
	do {
		part->tsc_seq++;
	} while (part->tsc_seq == 0 || part->tsc_seq == 0xFFFFFFFFu);
	__atomic_store_n(&pg->sequence, part->tsc_seq, __ATOMIC_RELEASE);
}
