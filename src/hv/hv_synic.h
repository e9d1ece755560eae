/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Synthetic interrupt controller: per-VP message (SIM) and event-flag (SIEF) pages in guest
 * RAM, per-SINT message queues with the msg_pending/EOM handshake (spec §4). Safe to call from
 * any thread while the target VP runs.
 */
#ifndef VIRIDIAN_HV_HV_SYNIC_H
#define VIRIDIAN_HV_HV_SYNIC_H

#include <stdint.h>

#include "hv/hv.h"
#include "hv/hv_proto.h"

/* Max messages queued per (VP, SINT) behind a busy slot. */
#define HV_SYNIC_QUEUE_MAX 256u

/*
 * Delivers msg into the SINT's SIM slot, or queues it while the slot is busy, the SINT is
 * masked or the SynIC/SIMP is not enabled yet. 0, -ENOSPC (queue full: the guest should
 * retry, HV_STATUS_INSUFFICIENT_BUFFERS), -EINVAL (bad vp/sint/type/size).
 */
int hv_synic_post_message(struct hv_partition *part, unsigned vp, unsigned sint,
			  const struct hv_message *msg);
/*
 * Sets flag_number in the SINT's SIEF bitmap atomically and injects the SINT vector if the bit
 * was clear (a masked SINT gets the interrupt when it is unmasked). 0; -EAGAIN when SCONTROL or
 * SIEFP is not enabled (nothing set); -EINVAL on bad arguments.
 */
int hv_synic_signal_event(struct hv_partition *part, unsigned vp, unsigned sint,
			  unsigned flag_number);

/* Messages currently queued (not yet in the slot) for (vp, sint); for tests and stats. */
unsigned hv_synic_queued(struct hv_partition *part, unsigned vp, unsigned sint);

#endif
