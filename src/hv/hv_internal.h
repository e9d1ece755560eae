/* SPDX-License-Identifier: GPL-2.0-only */
/* State shared by the hv modules; not for other layers. */
#ifndef VIRIDIAN_HV_HV_INTERNAL_H
#define VIRIDIAN_HV_HV_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "hv/hv.h"
#include "hv/hv_hypercall.h"
#include "hv/hv_proto.h"

#define HV_LOG "hv"
#define HV_MAX_CONNECTIONS 4096u
#define HV_MAX_EXTRA_HYPERCALLS 16u

struct hv_msg_node {
	struct hv_msg_node *next;
	struct hv_message msg;
};

struct hv_sint_queue {
	struct hv_msg_node *head, *tail;
	unsigned count;
	bool event_pending; /* an event flag was set while the SINT was masked */
};

struct hv_stimer {
	uint64_t config, count;
	int fd; /* timerfd, created on first arm; -1 before */
	bool armed;
	uint64_t expiry; /* reference time (100 ns) of the next expiration */
};

struct hv_vp {
	pthread_mutex_t lock; /* SynIC registers, page pointers and queues of this VP */
	uint64_t vp_assist;
	uint64_t scontrol, siefp, simp;
	uint64_t sint[HV_SINT_COUNT];
	uint8_t *sim; /* host view of the SIM page, NULL unless enabled and in RAM */
	uint8_t *sief; /* same for SIEF */
	struct hv_sint_queue q[HV_SINT_COUNT];
	struct hv_stimer st[HV_STIMER_COUNT];
};

enum hv_conn_kind {
	HV_CONN_FREE,
	HV_CONN_MESSAGE,
	HV_CONN_EVENT,
	HV_CONN_EVENTFD,
};

struct hv_conn {
	uint32_t id;
	enum hv_conn_kind kind;
	hv_message_handler msg_handler;
	hv_event_handler event_handler;
	void *opaque;
	int fd;
};

struct hv_partition {
	struct guest_mem *gm;
	unsigned nvps;
	struct hv_callbacks cb;
	bool ref_tsc;

	pthread_mutex_t lock; /* partition-wide MSRs */
	uint64_t guest_os_id;
	uint64_t hypercall_msr;
	uint64_t ref_tsc_msr;
	uint64_t tsc_invariant_ctl;
	uint64_t crash_p[5];
	uint32_t tsc_seq;

	/* Reference time = ((guest_tsc * tsc_scale) >> 64) + tsc_offset (100 ns units). */
	uint64_t tsc_scale;
	int64_t tsc_offset;
	uint64_t start_ns; /* fallback clock origin */

	pthread_mutex_t conn_lock;
	struct hv_conn conns[HV_MAX_CONNECTIONS];
	unsigned nconns;
	struct hv_hypercall_desc extra[HV_MAX_EXTRA_HYPERCALLS];
	unsigned nextra;

	pthread_mutex_t timer_lock; /* starts the timer thread once */
	bool timer_thread_started;
	int timer_epfd, timer_stopfd;
	pthread_t timer_thread;

	struct hv_vp vps[];
};

static inline struct hv_vp *hv_vp_get(struct hv_partition *part, unsigned vp)
{
	return vp < part->nvps ? &part->vps[vp] : NULL;
}

/* hv_synic.c, called with vp->lock held. */
/* Re-resolves the SIM (sim) or SIEF page after its MSR changed. */
void hv_synic_remap_locked(struct hv_partition *part, unsigned vp, bool sim);
void hv_synic_retry_locked(struct hv_partition *part, unsigned vp);
void hv_synic_reset_locked(struct hv_vp *v);

int hv_synic_post_locked(struct hv_partition *part, unsigned vp, unsigned sint,
			 const struct hv_message *msg);

/* hv_stimer.c: MSR access (vp->lock held), per-VP reset, partition teardown. */
int hv_stimer_write_locked(struct hv_partition *part, unsigned vp, unsigned n, bool count,
			   uint64_t val);
void hv_stimer_reset_locked(struct hv_vp *v);
void hv_stimer_init(struct hv_partition *part);
void hv_stimer_destroy(struct hv_partition *part);

/* hv_partition.c */
void hv_ref_tsc_page_update(struct hv_partition *part);

#endif
