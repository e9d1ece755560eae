// SPDX-License-Identifier: GPL-2.0-only
/*
 * Hypercall dispatcher (x64 convention, spec §3.1), HvPostMessage / HvSignalEvent, and the
 * registry of message ports and event connections that VMBus attaches to.
 */
#include "hv/hv_hypercall.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hv/hv_internal.h"
#include "hv/hv_msr.h"
#include "hv/hv_synic.h"
#include "lib/log.h"
#include "vid/layout.h"

bool hv_hypercall_exit_match(bool is_out, uint16_t port, uint8_t size, uint32_t count,
			     const void *data)
{
	uint32_t v;

	if (!is_out || port != LAYOUT_HV_HYPERCALL_PORT || size != 4 || count != 1 || !data)
		return false;
	memcpy(&v, data, sizeof(v));
	return v == HV_HYPERCALL_MAGIC;
}

static uint64_t hv_hc_result(uint16_t status, uint32_t reps_done)
{
	return (uint64_t)status | ((uint64_t)reps_done << HV_HC_REPS_DONE_SHIFT);
}

/* Looks up a connection (conn_lock held). */
static struct hv_conn *hv_conn_find_locked(struct hv_partition *part, uint32_t id)
{
	for (unsigned i = 0; i < part->nconns; i++)
		if (part->conns[i].kind != HV_CONN_FREE && part->conns[i].id == id)
			return &part->conns[i];
	return NULL;
}

static int hv_conn_add(struct hv_partition *part, const struct hv_conn *c)
{
	struct hv_conn *slot = NULL;
	int ret = 0;

	if (c->id & ~HV_CONNECTION_ID_MASK)
		return -EINVAL;
	pthread_mutex_lock(&part->conn_lock);
	if (hv_conn_find_locked(part, c->id)) {
		ret = -EEXIST;
		goto out;
	}
	for (unsigned i = 0; i < part->nconns; i++)
		if (part->conns[i].kind == HV_CONN_FREE) {
			slot = &part->conns[i];
			break;
		}
	if (!slot) {
		if (part->nconns >= HV_MAX_CONNECTIONS) {
			ret = -ENOSPC;
			goto out;
		}
		slot = &part->conns[part->nconns++];
	}
	*slot = *c;
out:
	pthread_mutex_unlock(&part->conn_lock);
	return ret;
}

int hv_message_port_register(struct hv_partition *part, uint32_t connection_id,
			     hv_message_handler handler, void *opaque)
{
	struct hv_conn c = {.id = connection_id,
			    .kind = HV_CONN_MESSAGE,
			    .msg_handler = handler,
			    .opaque = opaque,
			    .fd = -1};

	if (!handler)
		return -EINVAL;
	return hv_conn_add(part, &c);
}

int hv_event_connection_register(struct hv_partition *part, uint32_t connection_id,
				 hv_event_handler handler, void *opaque)
{
	struct hv_conn c = {.id = connection_id,
			    .kind = HV_CONN_EVENT,
			    .event_handler = handler,
			    .opaque = opaque,
			    .fd = -1};

	if (!handler)
		return -EINVAL;
	return hv_conn_add(part, &c);
}

int hv_event_connection_register_eventfd(struct hv_partition *part, uint32_t connection_id,
					 int eventfd)
{
	struct hv_conn c = {.id = connection_id, .kind = HV_CONN_EVENTFD, .fd = eventfd};

	if (eventfd < 0)
		return -EINVAL;
	return hv_conn_add(part, &c);
}

void hv_connection_unregister(struct hv_partition *part, uint32_t connection_id)
{
	struct hv_conn *c;

	pthread_mutex_lock(&part->conn_lock);
	c = hv_conn_find_locked(part, connection_id);
	if (c)
		c->kind = HV_CONN_FREE;
	pthread_mutex_unlock(&part->conn_lock);
}

static uint16_t hv_echo_handler(void *opaque, unsigned vp, uint32_t message_type,
				const void *payload, uint32_t size)
{
	struct hv_partition *part = opaque;
	struct hv_message m;
	int ret;

	memset(&m.header, 0, sizeof(m.header));
	m.header.message_type = message_type;
	m.header.payload_size = (uint8_t)size;
	memcpy(m.payload, payload, size);
	ret = hv_synic_post_message(part, vp, VMBUS_MESSAGE_SINT, &m);
	if (ret == -ENOSPC || ret == -ENOMEM)
		return HV_STATUS_INSUFFICIENT_BUFFERS;
	return ret ? HV_STATUS_INVALID_PARAMETER : HV_STATUS_SUCCESS;
}

int hv_echo_port_enable(struct hv_partition *part, uint32_t connection_id)
{
	return hv_message_port_register(part, connection_id, hv_echo_handler, part);
}

int hv_hypercall_register(struct hv_partition *part, const struct hv_hypercall_desc *desc)
{
	int ret = 0;

	if (!desc || !desc->handler || desc->code == HVCALL_POST_MESSAGE ||
	    desc->code == HVCALL_SIGNAL_EVENT || desc->fixed_size > HV_PAGE_SIZE ||
	    desc->fixed_size % 8 || desc->rep_size % 8 || (desc->fast_ok && desc->rep_size) ||
	    (desc->fast_ok && desc->fixed_size > 16))
		return -EINVAL;
	pthread_mutex_lock(&part->conn_lock);
	for (unsigned i = 0; i < part->nextra; i++)
		if (part->extra[i].code == desc->code)
			ret = -EEXIST;
	if (!ret && part->nextra >= HV_MAX_EXTRA_HYPERCALLS)
		ret = -ENOSPC;
	if (!ret)
		part->extra[part->nextra++] = *desc;
	pthread_mutex_unlock(&part->conn_lock);
	return ret;
}

static uint16_t hv_post_message(struct hv_partition *part, unsigned vp,
				const struct hv_input_post_message *in)
{
	hv_message_handler handler = NULL;
	void *opaque = NULL;
	struct hv_conn *c;

	if (in->connection_id & ~HV_CONNECTION_ID_MASK)
		return HV_STATUS_INVALID_CONNECTION_ID;
	/* Guests may not forge hypervisor message types (>= 0x80000000) or HVMSG_NONE. */
	if (in->message_type == HVMSG_NONE || in->message_type >= HVMSG_HYPERVISOR_FIRST ||
	    in->payload_size > HV_MESSAGE_PAYLOAD_MAX)
		return HV_STATUS_INVALID_PARAMETER;
	pthread_mutex_lock(&part->conn_lock);
	c = hv_conn_find_locked(part, in->connection_id);
	if (c && c->kind == HV_CONN_MESSAGE) {
		handler = c->msg_handler;
		opaque = c->opaque;
	}
	pthread_mutex_unlock(&part->conn_lock);
	if (!handler)
		return HV_STATUS_INVALID_CONNECTION_ID;
	return handler(opaque, vp, in->message_type, in->payload, in->payload_size);
}

static uint16_t hv_signal_event(struct hv_partition *part, unsigned vp, uint64_t param)
{
	uint32_t id = (uint32_t)param;
	uint16_t flag = (uint16_t)(param >> 32);
	struct hv_conn copy = {.kind = HV_CONN_FREE};
	struct hv_conn *c;

	if (param >> 48)
		return HV_STATUS_INVALID_HYPERCALL_INPUT;
	if (id & ~HV_CONNECTION_ID_MASK)
		return HV_STATUS_INVALID_CONNECTION_ID;
	pthread_mutex_lock(&part->conn_lock);
	c = hv_conn_find_locked(part, id);
	if (c && (c->kind == HV_CONN_EVENT || c->kind == HV_CONN_EVENTFD))
		copy = *c;
	pthread_mutex_unlock(&part->conn_lock);
	if (copy.kind == HV_CONN_FREE)
		return HV_STATUS_INVALID_CONNECTION_ID;
	/* Each connection has exactly one flag (VMBus uses flag 0), as KVM's own SynIC does. */
	if (flag != 0)
		return HV_STATUS_INVALID_PORT_ID;
	if (copy.kind == HV_CONN_EVENT) {
		copy.event_handler(copy.opaque, vp, flag);
	} else {
		uint64_t one = 1;

		if (write(copy.fd, &one, sizeof(one)) != sizeof(one))
			log_warn_ratelimited(HV_LOG, "event connection 0x%x: eventfd write failed",
					     id);
	}
	return HV_STATUS_SUCCESS;
}

/*
 * Checks and copies a slow hypercall's input block: 8-byte aligned, at most a page, not
 * crossing a page boundary, entirely guest RAM.
 */
static uint16_t hv_hc_read_input(struct hv_partition *part, uint64_t gpa, uint64_t size, void *buf)
{
	if (size > HV_PAGE_SIZE)
		return HV_STATUS_INVALID_HYPERCALL_INPUT; /* rep count / header too big */
	if (size == 0)
		return HV_STATUS_SUCCESS;
	if (gpa & 7)
		return HV_STATUS_INVALID_ALIGNMENT;
	if ((gpa & ~HV_PAGE_MASK) + size > HV_PAGE_SIZE)
		return HV_STATUS_INVALID_ALIGNMENT; /* TLFS: parameter lists must not span pages */
	if (!guest_mem_range_is_ram(part->gm, gpa, size) ||
	    guest_mem_read(part->gm, gpa, buf, size) < 0)
		return HV_STATUS_INVALID_PARAMETER;
	return HV_STATUS_SUCCESS;
}

static uint64_t hv_hc_extra(struct hv_partition *part, unsigned vp,
			    const struct hv_hypercall_desc *d, const struct hv_hypercall_regs *r,
			    bool fast, uint32_t varhead, uint32_t rep_count, uint32_t rep_start)
{
	uint8_t buf[HV_PAGE_SIZE];
	uint64_t size;
	uint32_t done = rep_start;
	uint16_t st;

	if ((d->rep_size == 0) != (rep_count == 0) || (fast ? !d->fast_ok : !d->slow_ok))
		return hv_hc_result(HV_STATUS_INVALID_HYPERCALL_INPUT, 0);
	if (fast) {
		uint64_t in[2] = {r->rdx, r->r8};

		if (varhead)
			return hv_hc_result(HV_STATUS_INVALID_HYPERCALL_INPUT, 0);
		st = d->handler(part, vp, in, d->fixed_size, 0, 0, &done, d->opaque);
		return hv_hc_result(st, 0);
	}
	size = (uint64_t)d->fixed_size + 8ull * varhead + (uint64_t)rep_count * d->rep_size;
	st = hv_hc_read_input(part, r->rdx, size, buf);
	if (st != HV_STATUS_SUCCESS)
		return hv_hc_result(st, rep_start);
	if (r->r8 & 7)
		return hv_hc_result(HV_STATUS_INVALID_ALIGNMENT, rep_start);
	st = d->handler(part, vp, buf, (uint32_t)size, r->r8, rep_count, &done, d->opaque);
	/* A handler that reports success must have made progress (§3.1: else the guest spins). */
	if (done > rep_count || (st == HV_STATUS_SUCCESS && rep_count && done == rep_start))
		done = rep_count;
	return hv_hc_result(st, done);
}

uint64_t hv_hypercall(struct hv_partition *part, unsigned vp, struct hv_hypercall_regs *r)
{
	uint64_t ctl = r->rcx;
	uint16_t code = ctl & HV_HC_CODE_MASK;
	bool fast = ctl & HV_HC_FAST;
	uint32_t varhead = (ctl >> HV_HC_VARHEAD_SHIFT) & HV_HC_VARHEAD_MASK;
	uint32_t rep_count = (ctl >> HV_HC_REP_COUNT_SHIFT) & HV_HC_REP_MASK;
	uint32_t rep_start = (ctl >> HV_HC_REP_START_SHIFT) & HV_HC_REP_MASK;
	struct hv_input_post_message pm;
	struct hv_hypercall_desc desc;
	bool found = false;
	uint64_t param;
	uint16_t st;

	if (!hv_vp_get(part, vp))
		return hv_hc_result(HV_STATUS_INVALID_PARAMETER, 0);
	if (ctl & HV_HC_RSVD_MASK)
		return hv_hc_result(HV_STATUS_INVALID_HYPERCALL_INPUT, 0);
	if (rep_start > rep_count || (rep_count == 0 && rep_start))
		return hv_hc_result(HV_STATUS_INVALID_HYPERCALL_INPUT, 0);

	switch (code) {
	case HVCALL_POST_MESSAGE:
		/* Simple, memory input only (256 bytes do not fit registers without XMM). */
		if (fast || rep_count || varhead)
			return hv_hc_result(HV_STATUS_INVALID_HYPERCALL_INPUT, 0);
		st = hv_hc_read_input(part, r->rdx, sizeof(pm), &pm);
		if (st == HV_STATUS_SUCCESS)
			st = hv_post_message(part, vp, &pm);
		return hv_hc_result(st, 0);
	case HVCALL_SIGNAL_EVENT:
		if (rep_count || varhead)
			return hv_hc_result(HV_STATUS_INVALID_HYPERCALL_INPUT, 0);
		if (fast) {
			param = r->rdx;
		} else {
			st = hv_hc_read_input(part, r->rdx, sizeof(param), &param);
			if (st != HV_STATUS_SUCCESS)
				return hv_hc_result(st, 0);
		}
		return hv_hc_result(hv_signal_event(part, vp, param), 0);
	default:
		break;
	}
	pthread_mutex_lock(&part->conn_lock);
	for (unsigned i = 0; i < part->nextra; i++)
		if (part->extra[i].code == code) {
			desc = part->extra[i];
			found = true;
		}
	pthread_mutex_unlock(&part->conn_lock);
	if (found)
		return hv_hc_extra(part, vp, &desc, r, fast, varhead, rep_count, rep_start);
	log_debug(HV_LOG, "VP %u: unsupported hypercall 0x%04x", vp, code);
	return hv_hc_result(HV_STATUS_INVALID_HYPERCALL_CODE, 0);
}
