// SPDX-License-Identifier: GPL-2.0-only
/*
 * SynIC message and event delivery (spec §4). The SIM/SIEF pages are guest RAM that the guest
 * reads and clears while we write: slot ownership goes through message_type (store-release
 * last on delivery; the guest frees it with cmpxchg) and the msg_pending flag, with a full
 * barrier between setting msg_pending and re-checking the slot (§4.2). Event bits are set with
 * atomic OR (§4.3, §9.5). Host-side writers to one VP serialise on that VP's lock.
 */
#include "hv/hv_synic.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hv/hv_internal.h"
#include "lib/log.h"

/* Host pointer to a SynIC page, or NULL when disabled or not wholly guest RAM. */
static uint8_t *hv_synic_page(struct hv_partition *part, unsigned vp, uint64_t msr,
			      const char *what)
{
	uint64_t gpa = msr & HV_PAGE_MASK;
	uint8_t *p;

	if (!(msr & HV_PAGE_MSR_ENABLE))
		return NULL;
	if (!guest_mem_range_is_ram(part->gm, gpa, HV_PAGE_SIZE) ||
	    !(p = guest_mem_ptr(part->gm, gpa, HV_PAGE_SIZE))) {
		/* Hyper-V accepts the MSR; we simply never touch memory there. */
		log_warn_ratelimited(HV_LOG, "VP %u %s page 0x%llx is not guest RAM; not used", vp,
				     what, (unsigned long long)gpa);
		return NULL;
	}
	return p;
}

void hv_synic_remap_locked(struct hv_partition *part, unsigned vp, bool sim)
{
	struct hv_vp *v = &part->vps[vp];

	if (sim)
		v->sim = hv_synic_page(part, vp, v->simp, "SIMP");
	else
		v->sief = hv_synic_page(part, vp, v->siefp, "SIEFP");
}

static void hv_synic_inject_locked(struct hv_partition *part, unsigned vp, unsigned sint)
{
	uint64_t s = part->vps[vp].sint[sint];

	if (s & HV_SINT_POLLING)
		return; /* the guest polls this SINT: no interrupt */
	if (part->cb.inject_interrupt)
		part->cb.inject_interrupt(part->cb.opaque, vp, (uint8_t)(s & HV_SINT_VECTOR_MASK));
}

static bool hv_synic_sint_live(const struct hv_vp *v, unsigned sint)
{
	return (v->scontrol & HV_SCONTROL_ENABLE) && !(v->sint[sint] & HV_SINT_MASKED);
}

/*
 * Moves the head of the SINT's queue into the slot if it is free; if the slot is busy, leaves
 * msg_pending set so the guest's EOM brings us back here.
 */
static void hv_synic_deliver_locked(struct hv_partition *part, unsigned vp, unsigned sint)
{
	struct hv_vp *v = &part->vps[vp];
	struct hv_sint_queue *q = &v->q[sint];
	struct hv_message *slot;
	struct hv_msg_node *n = q->head;

	if (!n || !v->sim || !hv_synic_sint_live(v, sint))
		return;
	slot = (struct hv_message *)(v->sim + (size_t)sint * HV_MESSAGE_SIZE);
	if (__atomic_load_n(&slot->header.message_type, __ATOMIC_ACQUIRE) != HVMSG_NONE) {
		/*
		 * Busy: ask for an EOM, then re-check in case the guest freed it meanwhile. Both
		 * are seq_cst (a locked RMW, then a load), which is the full barrier the handshake
		 * needs against the guest's cmpxchg-then-read-flags.
		 */
		__atomic_fetch_or(&slot->header.message_flags, HV_MESSAGE_FLAG_PENDING,
				  __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&slot->header.message_type, __ATOMIC_SEQ_CST) != HVMSG_NONE)
			return;
	}
	/* The slot is ours until message_type becomes non-zero. */
	memcpy(slot->payload, n->msg.payload, n->msg.header.payload_size);
	slot->header.payload_size = n->msg.header.payload_size;
	slot->header.reserved = 0;
	slot->header.sender = n->msg.header.sender;
	/* More behind this one: the guest must EOM so we can deliver the next. */
	__atomic_store_n(&slot->header.message_flags, n->next ? HV_MESSAGE_FLAG_PENDING : 0,
			 __ATOMIC_RELAXED);
	__atomic_store_n(&slot->header.message_type, n->msg.header.message_type, __ATOMIC_SEQ_CST);
	q->head = n->next;
	if (!q->head)
		q->tail = NULL;
	q->count--;
	free(n);
	hv_synic_inject_locked(part, vp, sint);
}

void hv_synic_retry_locked(struct hv_partition *part, unsigned vp)
{
	struct hv_vp *v = &part->vps[vp];

	for (unsigned s = 0; s < HV_SINT_COUNT; s++) {
		hv_synic_deliver_locked(part, vp, s);
		if (v->q[s].event_pending && hv_synic_sint_live(v, s)) {
			v->q[s].event_pending = false;
			hv_synic_inject_locked(part, vp, s);
		}
	}
}

void hv_synic_reset_locked(struct hv_vp *v)
{
	for (unsigned s = 0; s < HV_SINT_COUNT; s++) {
		struct hv_msg_node *n = v->q[s].head;

		while (n) {
			struct hv_msg_node *next = n->next;

			free(n);
			n = next;
		}
		memset(&v->q[s], 0, sizeof(v->q[s]));
		v->sint[s] = HV_SINT_RESET;
	}
	v->scontrol = 0;
	v->simp = 0;
	v->siefp = 0;
	v->sim = NULL;
	v->sief = NULL;
}

int hv_synic_post_locked(struct hv_partition *part, unsigned vp, unsigned sint,
			 const struct hv_message *msg)
{
	struct hv_vp *v = &part->vps[vp];
	struct hv_sint_queue *q = &v->q[sint];
	struct hv_msg_node *n;

	if (q->count >= HV_SYNIC_QUEUE_MAX)
		return -ENOSPC;
	n = malloc(sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->next = NULL;
	n->msg.header = msg->header;
	memcpy(n->msg.payload, msg->payload, msg->header.payload_size);
	/* Always through the queue: keeps order with messages already waiting. */
	if (q->tail)
		q->tail->next = n;
	else
		q->head = n;
	q->tail = n;
	q->count++;
	hv_synic_deliver_locked(part, vp, sint);
	return 0;
}

int hv_synic_post_message(struct hv_partition *part, unsigned vp, unsigned sint,
			  const struct hv_message *msg)
{
	struct hv_vp *v = hv_vp_get(part, vp);
	int ret;

	if (!v || sint >= HV_SINT_COUNT || !msg || msg->header.message_type == HVMSG_NONE ||
	    msg->header.payload_size > HV_MESSAGE_PAYLOAD_MAX)
		return -EINVAL;
	pthread_mutex_lock(&v->lock);
	ret = hv_synic_post_locked(part, vp, sint, msg);
	pthread_mutex_unlock(&v->lock);
	return ret;
}

int hv_synic_signal_event(struct hv_partition *part, unsigned vp, unsigned sint,
			  unsigned flag_number)
{
	struct hv_vp *v = hv_vp_get(part, vp);
	uint32_t *word, bit, old;
	int ret = 0;

	if (!v || sint >= HV_SINT_COUNT || flag_number >= HV_EVENT_FLAGS_PER_SINT)
		return -EINVAL;
	pthread_mutex_lock(&v->lock);
	if (!v->sief || !(v->scontrol & HV_SCONTROL_ENABLE)) {
		ret = -EAGAIN;
		goto out;
	}
	word = (uint32_t *)(v->sief + (size_t)sint * (HV_EVENT_FLAGS_PER_SINT / 8)) +
	       flag_number / 32;
	bit = 1u << (flag_number % 32);
	old = __atomic_fetch_or(word, bit, __ATOMIC_SEQ_CST);
	if (old & bit)
		goto out; /* already pending: the guest has an interrupt coming */
	if (v->sint[sint] & HV_SINT_MASKED)
		v->q[sint].event_pending = true; /* injected on unmask */
	else
		hv_synic_inject_locked(part, vp, sint);
out:
	pthread_mutex_unlock(&v->lock);
	return ret;
}

unsigned hv_synic_queued(struct hv_partition *part, unsigned vp, unsigned sint)
{
	struct hv_vp *v = hv_vp_get(part, vp);
	unsigned n;

	if (!v || sint >= HV_SINT_COUNT)
		return 0;
	pthread_mutex_lock(&v->lock);
	n = v->q[sint].count;
	pthread_mutex_unlock(&v->lock);
	return n;
}
