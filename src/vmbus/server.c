// SPDX-License-Identifier: GPL-2.0-only
/*
 * VMBus channel server (spec/hyperv-interface-and-vmbus.md §6-8): channel messages from
 * HvPostMessage, version negotiation, offers, GPADLs, open/close/rescind, and the outbox that
 * keeps replies the SynIC queue could not take yet.
 *
 * Policy decisions (see also vmbus.h):
 *  - Every INITIATE_CONTACT and UNLOAD resets the bus (channels closed, GPADLs and queued
 *    replies dropped, devices reset); UNLOAD_RESPONSE is posted after the reset.
 *  - GPADL_TEARDOWN of the ring GPADL of an open channel is answered when that channel closes
 *    (CLOSECHANNEL, rescind or reset), never refused.
 *  - Closing a primary channel rescinds its sub-channels; the device offers them again when
 *    the guest asks (storvsc/netvsc do after every open).
 *  - GPADLs of a rescinded channel (the guest does not tear them down, §6.3) are freed at its
 *    RELID_RELEASED.
 *  - Malformed or unexpected messages are dropped with a rate-limited warning; the hypercall
 *    still succeeds (the guest cannot fix a message by retrying it).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "hv/hv_hypercall.h"
#include "hv/hv_synic.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/util.h"
#include "vmbus/server_internal.h"

static const uint32_t vmbus_versions[] = {
	VMBUS_VERSION(5, 3), VMBUS_VERSION(5, 2), VMBUS_VERSION(5, 1), VMBUS_VERSION(5, 0),
	VMBUS_VERSION(4, 1), VMBUS_VERSION(4, 0), VMBUS_VERSION(3, 0), VMBUS_VERSION(2, 4),
};

#define VMBUS_MAX_SUBCHANNELS 64u

/* ---- outbox: replies in order, retried while the SynIC queue is full ---- */

/* Caller holds srv->lock. */
static void srv_flush_locked(struct vmbus_server *srv)
{
	struct vmbus_outmsg *m;
	int r;

	while ((m = srv->out_head)) {
		r = hv_synic_post_message(srv->part, m->vp, VMBUS_MESSAGE_SINT, &m->msg);
		if (r == -ENOSPC)
			return;
		if (r < 0)
			log_warn_ratelimited(VMBUS_LOG, "reply to VP %u dropped (%d)", m->vp, r);
		srv->out_head = m->next;
		if (!srv->out_head)
			srv->out_tail = &srv->out_head;
		srv->out_len--;
		free(m);
	}
}

static void srv_drop_outbox_locked(struct vmbus_server *srv)
{
	struct vmbus_outmsg *m, *next;

	for (m = srv->out_head; m; m = next) {
		next = m->next;
		free(m);
	}
	srv->out_head = NULL;
	srv->out_tail = &srv->out_head;
	srv->out_len = 0;
}

/* Posts a channel message to VP vp, SINT 2. Caller holds srv->lock. */
static void srv_post_vp_locked(struct vmbus_server *srv, unsigned vp, const void *payload,
			       uint32_t size)
{
	struct vmbus_outmsg *m;
	struct hv_message msg;
	int r;

	memset(&msg.header, 0, sizeof(msg.header));
	msg.header.message_type = VMBUS_HVMSG_CHANNEL;
	msg.header.payload_size = (uint8_t)size;
	memcpy(msg.payload, payload, size);
	if (!srv->out_head) {
		r = hv_synic_post_message(srv->part, vp, VMBUS_MESSAGE_SINT, &msg);
		if (r == 0)
			return;
		if (r != -ENOSPC) {
			log_warn_ratelimited(VMBUS_LOG, "reply to VP %u failed (%d)", vp, r);
			return;
		}
	}
	/* The guest waits for every reply without a timeout: never drop one, retry later. */
	m = malloc(sizeof(*m));
	if (!m) {
		log_error(VMBUS_LOG, "out of memory: channel message to VP %u lost", vp);
		return;
	}
	m->next = NULL;
	m->vp = vp;
	m->msg = msg;
	*srv->out_tail = m;
	srv->out_tail = &m->next;
	srv->out_len++;
	pthread_cond_signal(&srv->out_cond);
}

static void srv_post_locked(struct vmbus_server *srv, const void *payload, uint32_t size)
{
	srv_post_vp_locked(srv, srv->target_vcpu, payload, size);
}

static void srv_post(struct vmbus_server *srv, const void *payload, uint32_t size)
{
	pthread_mutex_lock(&srv->lock);
	srv_post_locked(srv, payload, size);
	pthread_mutex_unlock(&srv->lock);
}

static void *srv_flusher_main(void *arg)
{
	struct vmbus_server *srv = arg;

	pthread_mutex_lock(&srv->lock);
	while (!srv->flusher_stop) {
		if (!srv->out_head) {
			pthread_cond_wait(&srv->out_cond, &srv->lock);
			continue;
		}
		srv_flush_locked(srv);
		if (srv->out_head) {
			/* The guest frees slots at its own pace (EOM): poll gently. */
			pthread_mutex_unlock(&srv->lock);
			nanosleep(&(struct timespec){.tv_nsec = 500000}, NULL);
			pthread_mutex_lock(&srv->lock);
		}
	}
	pthread_mutex_unlock(&srv->lock);
	return NULL;
}

/* ---- channels ---- */

static void chan_offer_msg(const struct vmbus_chan *chan, struct vmbus_msg_offer *o)
{
	const struct vmbus_device *dev = chan->dev;

	memset(o, 0, sizeof(*o));
	o->hdr.msgtype = VMBUS_MSG_OFFERCHANNEL;
	o->if_type = dev->class_id;
	o->if_instance = dev->instance_id;
	o->chn_flags = dev->chn_flags;
	o->mmio_megabytes = dev->mmio_megabytes;
	memcpy(o->user_def, dev->user_def, sizeof(o->user_def));
	o->sub_channel_index = (uint16_t)chan->index;
	o->child_relid = chan->relid;
	o->monitorid = 0xFF;
	o->monitor_allocated = 0;
	o->is_dedicated_interrupt = 1;
	o->connection_id = chan->conn_id;
}

/* Allocates a channel with the lowest free relid and offers it. Caller holds srv->lock. */
static struct vmbus_chan *chan_create_locked(struct vmbus_server *srv, struct vmbus_dev_entry *de,
					     unsigned index)
{
	struct vmbus_msg_offer o;
	struct vmbus_chan *chan;
	uint32_t relid = 0;

	for (uint32_t r = 1; r <= VMBUS_MAX_RELID; r++)
		if (!srv->relids[r]) {
			relid = r;
			break;
		}
	if (!relid) {
		log_warn_ratelimited(VMBUS_LOG, "%s: no free relid for channel %u", de->dev->name,
				     index);
		return NULL;
	}
	if (srv->slots[relid].fd < 0) {
		srv->slots[relid].fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (srv->slots[relid].fd < 0)
			return NULL;
	}
	chan = calloc(1, sizeof(*chan));
	if (!chan)
		return NULL;
	chan->srv = srv;
	chan->de = de;
	chan->dev = de->dev;
	chan->index = index;
	chan->relid = relid;
	chan->conn_id = VMBUS_CHAN_CONN_ID_BASE + relid;
	chan->state = VMBUS_CHAN_OFFERED;
	chan->epfd = chan->ctlfd = chan->guestfd = -1;
	chan->backlog_tail = &chan->backlog;
	srv->relids[relid] = chan;
	de->chans[index] = chan;
	chan_offer_msg(chan, &o);
	srv_post_locked(srv, &o, sizeof(o));
	return chan;
}

static void gpadl_free(struct vmbus_server *srv, struct vmbus_gpadl *g)
{
	struct vmbus_gpadl **pp;

	for (pp = &srv->gpadls; *pp; pp = &(*pp)->next)
		if (*pp == g) {
			*pp = g->next;
			srv->ngpadls--;
			srv->gpadl_pages -= g->announced;
			break;
		}
	free(g->buf);
	free(g->pfns);
	free(g);
}

static struct vmbus_gpadl *gpadl_find(struct vmbus_server *srv, uint32_t handle)
{
	for (struct vmbus_gpadl *g = srv->gpadls; g; g = g->next)
		if (g->handle == handle)
			return g;
	return NULL;
}

static void post_torndown(struct vmbus_server *srv, uint32_t handle)
{
	struct vmbus_msg_gpadl_torndown t = {.hdr.msgtype = VMBUS_MSG_GPADL_TORNDOWN,
					     .gpadl = handle};

	srv_post(srv, &t, sizeof(t));
}

/*
 * Stops an open channel (device close runs on its thread) and unmaps its rings. A teardown
 * the guest asked for meanwhile is answered now, unless the bus is being reset.
 */
static void chan_close(struct vmbus_server *srv, struct vmbus_chan *chan, bool answer_teardown)
{
	struct vmbus_gpadl *g = chan->gpadl;

	if (chan->state != VMBUS_CHAN_OPEN)
		return;
	hv_connection_unregister(srv->part, chan->conn_id);
	vmbus_chan_stop(chan);
	vmbus_ring_destroy(&chan->g2h);
	vmbus_ring_destroy(&chan->h2g);
	chan->gpadl = NULL;
	pthread_mutex_lock(&srv->lock);
	chan->state = VMBUS_CHAN_OFFERED;
	pthread_mutex_unlock(&srv->lock);
	if (g) {
		g->user = NULL;
		if (g->teardown_pending && answer_teardown) {
			uint32_t handle = g->handle;

			gpadl_free(srv, g);
			post_torndown(srv, handle);
		}
	}
}

/* Host-side removal of one channel: closed if open, RESCIND sent, relid held until released. */
static void chan_rescind(struct vmbus_server *srv, struct vmbus_chan *chan)
{
	struct vmbus_msg_relid m = {.hdr.msgtype = VMBUS_MSG_RESCIND_CHANNELOFFER,
				    .child_relid = chan->relid};

	chan_close(srv, chan, true);
	pthread_mutex_lock(&srv->lock);
	if (chan->de)
		chan->de->chans[chan->index] = NULL;
	chan->de = NULL;
	chan->state = VMBUS_CHAN_RESCINDED;
	srv_post_locked(srv, &m, sizeof(m));
	pthread_mutex_unlock(&srv->lock);
}

/*
 * Rescinds the device's channels with index >= first, sub-channels before the primary. The
 * list is taken under lock: channel threads of the device may be adding sub-channels (they
 * are refused once the primary is closed or the device rescinded).
 */
static void dev_rescind_chans(struct vmbus_server *srv, struct vmbus_dev_entry *de, unsigned first)
{
	struct vmbus_chan *list[1 + VMBUS_MAX_SUBCHANNELS];
	unsigned n = 0;

	pthread_mutex_lock(&srv->lock);
	for (unsigned i = de->nchans; i-- > first;)
		if (de->chans[i])
			list[n++] = de->chans[i];
	pthread_mutex_unlock(&srv->lock);
	for (unsigned i = 0; i < n; i++)
		chan_rescind(srv, list[i]);
}

/* Full bus reset. Caller holds msg_lock. */
static void srv_reset(struct vmbus_server *srv, bool reset_devices)
{
	struct vmbus_gpadl *g, *gn;

	pthread_mutex_lock(&srv->lock);
	/* First, so that sub-channel requests from closing channels are refused. */
	srv->offers_requested = false;
	__atomic_store_n(&srv->version, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&srv->lock);
	for (uint32_t r = 1; r <= VMBUS_MAX_RELID; r++)
		if (srv->relids[r])
			chan_close(srv, srv->relids[r], false);
	for (g = srv->gpadls; g; g = gn) {
		gn = g->next;
		gpadl_free(srv, g);
	}
	pthread_mutex_lock(&srv->lock);
	for (uint32_t r = 1; r <= VMBUS_MAX_RELID; r++) {
		free(srv->relids[r]);
		srv->relids[r] = NULL;
	}
	for (unsigned i = 0; i < srv->ndevs; i++)
		memset(srv->devs[i].chans, 0, srv->devs[i].nchans * sizeof(srv->devs[i].chans[0]));
	srv_drop_outbox_locked(srv);
	pthread_mutex_unlock(&srv->lock);
	if (reset_devices)
		for (unsigned i = 0; i < srv->ndevs; i++)
			if (srv->devs[i].dev->ops->reset)
				srv->devs[i].dev->ops->reset(srv->devs[i].dev);
}

/* ---- message handlers (msg_lock held) ---- */

#define MSG_WARN(fmt, ...) log_warn_ratelimited(VMBUS_LOG, "channel message: " fmt, ##__VA_ARGS__)

static void on_initiate_contact(struct vmbus_server *srv, unsigned vp, const void *msg,
				uint32_t size, uint16_t *status)
{
	struct vmbus_msg_version_response resp = {.hdr.msgtype = VMBUS_MSG_VERSION_RESPONSE};
	struct vmbus_msg_initiate_contact ic;
	bool ok = false;

	(void)vp;
	if (size < sizeof(ic)) {
		MSG_WARN("INITIATE_CONTACT of %u bytes dropped", size);
		return;
	}
	memcpy(&ic, msg, sizeof(ic));
	if (ic.target_vcpu >= hv_partition_nvps(srv->part)) {
		/* Nowhere to answer: fail the post so the guest does not wait forever. */
		MSG_WARN("INITIATE_CONTACT names VP %u, the VM has %u", ic.target_vcpu,
			 hv_partition_nvps(srv->part));
		*status = HV_STATUS_INVALID_PARAMETER;
		return;
	}
	srv_reset(srv, true);
	for (unsigned i = 0; i < ARRAY_SIZE(vmbus_versions); i++)
		if (ic.version == vmbus_versions[i])
			ok = true;
	/* Before 5.0 the guest hands over its interrupt page: it must be a page of RAM. */
	if (ok && ic.version < VMBUS_VERSION(5, 0) &&
	    (ic.interrupt_page == 0 || ic.interrupt_page % HV_PAGE_SIZE ||
	     !guest_mem_range_is_ram(srv->gm, ic.interrupt_page, HV_PAGE_SIZE))) {
		MSG_WARN("INITIATE_CONTACT %u.%u: interrupt page 0x%llx is not guest RAM",
			 ic.version >> 16, ic.version & 0xFFFF,
			 (unsigned long long)ic.interrupt_page);
		ok = false;
	}
	pthread_mutex_lock(&srv->lock);
	srv->target_vcpu = ic.target_vcpu;
	resp.version_supported = ok;
	resp.msg_conn_id = VMBUS_MSG_CONN_ID;
	if (ok)
		__atomic_store_n(&srv->version, ic.version, __ATOMIC_RELAXED);
	srv_post_locked(srv, &resp, sizeof(resp));
	pthread_mutex_unlock(&srv->lock);
	if (ok)
		log_info(VMBUS_LOG, "guest connected, VMBus version %u.%u, control VP %u",
			 ic.version >> 16, ic.version & 0xFFFF, ic.target_vcpu);
}

static void on_unload(struct vmbus_server *srv, unsigned vp)
{
	struct vmbus_msg_hdr resp = {.msgtype = VMBUS_MSG_UNLOAD_RESPONSE};
	unsigned target = srv->version ? srv->target_vcpu : vp;

	srv_reset(srv, true);
	pthread_mutex_lock(&srv->lock);
	srv_post_vp_locked(srv, target, &resp, sizeof(resp));
	pthread_mutex_unlock(&srv->lock);
}

static void on_request_offers(struct vmbus_server *srv)
{
	struct vmbus_msg_hdr done = {.msgtype = VMBUS_MSG_ALLOFFERS_DELIVERED};

	pthread_mutex_lock(&srv->lock);
	if (!srv->offers_requested) {
		srv->offers_requested = true;
		for (unsigned i = 0; i < srv->ndevs; i++)
			if (!srv->devs[i].rescinded && !srv->devs[i].chans[0])
				chan_create_locked(srv, &srv->devs[i], 0);
	}
	srv_post_locked(srv, &done, sizeof(done));
	pthread_mutex_unlock(&srv->lock);
}

static struct vmbus_chan *chan_lookup(struct vmbus_server *srv, uint32_t relid)
{
	struct vmbus_chan *chan = NULL;

	if (relid == 0 || relid > VMBUS_MAX_RELID)
		return NULL;
	pthread_mutex_lock(&srv->lock);
	chan = srv->relids[relid];
	pthread_mutex_unlock(&srv->lock);
	return chan;
}

static uint32_t open_channel(struct vmbus_server *srv, struct vmbus_chan *chan,
			     const struct vmbus_msg_open *m)
{
	struct vmbus_gpadl *g = gpadl_find(srv, m->ringbuffer_gpadl);
	uint64_t drain;
	int r;

	if (!chan || chan->state != VMBUS_CHAN_OFFERED) {
		MSG_WARN("OPENCHANNEL relid %u: no such closed channel", m->child_relid);
		return VMBUS_STATUS_INVALID_PARAMETER;
	}
	if (!g || !g->complete || g->user || g->teardown_pending || g->rangecount != 1 ||
	    g->first_offset != 0) {
		MSG_WARN("OPENCHANNEL relid %u: GPADL 0x%x is not a usable ring", m->child_relid,
			 m->ringbuffer_gpadl);
		return VMBUS_STATUS_INVALID_PARAMETER;
	}
	if (m->target_vp >= hv_partition_nvps(srv->part)) {
		MSG_WARN("OPENCHANNEL relid %u: target VP %u out of range", m->child_relid,
			 m->target_vp);
		return VMBUS_STATUS_INVALID_PARAMETER;
	}
	if (m->downstream_pageoffset == 0 || m->downstream_pageoffset >= g->npfns) {
		MSG_WARN("OPENCHANNEL relid %u: ring split at page %u of %u", m->child_relid,
			 m->downstream_pageoffset, g->npfns);
		return VMBUS_STATUS_INVALID_PARAMETER;
	}
	if (vmbus_ring_pair_init(&chan->g2h, &chan->h2g, srv->gm, g->pfns, g->npfns,
				 m->downstream_pageoffset) < 0) {
		MSG_WARN("OPENCHANNEL relid %u: %s", m->child_relid, err_msg());
		return VMBUS_STATUS_INVALID_PARAMETER;
	}
	chan->openid = m->openid;
	memcpy(chan->user_data, m->user_data, sizeof(chan->user_data));
	__atomic_store_n(&chan->target_vp, m->target_vp, __ATOMIC_RELAXED);
	chan->slot = &srv->slots[chan->relid];
	chan->guestfd = chan->slot->fd;
	/* Stale signals from an earlier open of this relid mean nothing now. */
	if (read(chan->guestfd, &drain, sizeof(drain)) < 0 && errno != EAGAIN)
		log_debug(VMBUS_LOG, "relid %u: eventfd drain failed", chan->relid);
	/* A handler, not the eventfd: an idle channel is drained on the signalling VP's thread. */
	r = hv_event_connection_register(srv->part, chan->conn_id, vmbus_chan_on_guest_signal,
					 chan->slot);
	if (r < 0) {
		MSG_WARN("OPENCHANNEL relid %u: event connection 0x%x: %d", chan->relid,
			 chan->conn_id, r);
		goto fail;
	}
	chan->gpadl = g;
	g->user = chan;
	/* Open before the device's open() runs: it may offer sub-channels from there. */
	pthread_mutex_lock(&srv->lock);
	chan->state = VMBUS_CHAN_OPEN;
	pthread_mutex_unlock(&srv->lock);
	r = vmbus_chan_start(chan);
	if (r < 0) {
		pthread_mutex_lock(&srv->lock);
		chan->state = VMBUS_CHAN_OFFERED;
		pthread_mutex_unlock(&srv->lock);
		hv_connection_unregister(srv->part, chan->conn_id);
		g->user = NULL;
		chan->gpadl = NULL;
		log_info(VMBUS_LOG, "%s relid %u: device refused the open (%d)",
			 chan->dev->name ? chan->dev->name : "device", chan->relid, r);
		goto fail;
	}
	return 0;
fail:
	vmbus_ring_destroy(&chan->g2h);
	vmbus_ring_destroy(&chan->h2g);
	return VMBUS_STATUS_UNSUCCESSFUL;
}

static void on_open(struct vmbus_server *srv, const void *msg, uint32_t size)
{
	struct vmbus_msg_open_result res = {.hdr.msgtype = VMBUS_MSG_OPENCHANNEL_RESULT};
	struct vmbus_msg_open m;

	if (size < sizeof(m)) {
		MSG_WARN("OPENCHANNEL of %u bytes dropped", size);
		return;
	}
	memcpy(&m, msg, sizeof(m));
	res.child_relid = m.child_relid;
	res.openid = m.openid;
	res.status = open_channel(srv, chan_lookup(srv, m.child_relid), &m);
	srv_post(srv, &res, sizeof(res));
}

static void on_close(struct vmbus_server *srv, const void *msg, uint32_t size)
{
	struct vmbus_msg_relid m;
	struct vmbus_chan *chan;

	if (size < sizeof(m)) {
		MSG_WARN("CLOSECHANNEL of %u bytes dropped", size);
		return;
	}
	memcpy(&m, msg, sizeof(m));
	chan = chan_lookup(srv, m.child_relid);
	if (!chan || chan->state == VMBUS_CHAN_OFFERED) {
		MSG_WARN("CLOSECHANNEL relid %u: not open", m.child_relid);
		return;
	}
	if (chan->state == VMBUS_CHAN_RESCINDED)
		return; /* closed when it was rescinded */
	chan_close(srv, chan, true);
	if (chan->index == 0 && chan->de)
		dev_rescind_chans(srv, chan->de, 1);
}

static void gpadl_reply(struct vmbus_server *srv, uint32_t relid, uint32_t handle, uint32_t status)
{
	struct vmbus_msg_gpadl_created c = {.hdr.msgtype = VMBUS_MSG_GPADL_CREATED,
					    .child_relid = relid,
					    .gpadl = handle,
					    .creation_status = status};

	srv_post(srv, &c, sizeof(c));
}

/* The whole range array has arrived: parse and check it. 0 or a failure status. */
static uint32_t gpadl_finish(struct vmbus_server *srv, struct vmbus_gpadl *g)
{
	uint32_t off = 0, total = (g->buflen - 8u * g->rangecount) / 8u;

	g->pfns = malloc((size_t)total * sizeof(uint64_t));
	if (!g->pfns)
		return VMBUS_STATUS_INSUFFICIENT_RESOURCES;
	for (unsigned ri = 0; ri < g->rangecount; ri++) {
		struct vmbus_gpa_range rg;
		uint64_t npfn;

		if (g->buflen - off < sizeof(rg))
			return VMBUS_STATUS_INVALID_PARAMETER;
		memcpy(&rg, g->buf + off, sizeof(rg));
		off += sizeof(rg);
		if (rg.byte_offset >= HV_PAGE_SIZE || rg.byte_count == 0)
			return VMBUS_STATUS_INVALID_PARAMETER;
		npfn = DIV_ROUND_UP((uint64_t)rg.byte_offset + rg.byte_count, HV_PAGE_SIZE);
		if (npfn > (g->buflen - off) / 8 || npfn > total - g->npfns)
			return VMBUS_STATUS_INVALID_PARAMETER;
		if (ri == 0) {
			g->first_offset = rg.byte_offset;
			g->first_count = rg.byte_count;
		}
		for (uint64_t p = 0; p < npfn; p++) {
			uint64_t pfn;

			memcpy(&pfn, g->buf + off, 8);
			off += 8;
			if (pfn >= (1ull << 52) ||
			    !guest_mem_range_is_ram(srv->gm, pfn * HV_PAGE_SIZE, HV_PAGE_SIZE))
				return VMBUS_STATUS_INVALID_PARAMETER;
			g->pfns[g->npfns++] = pfn;
		}
	}
	if (off != g->buflen)
		return VMBUS_STATUS_INVALID_PARAMETER;
	free(g->buf);
	g->buf = NULL;
	g->complete = true;
	return 0;
}

static void gpadl_try_complete(struct vmbus_server *srv, struct vmbus_gpadl *g)
{
	uint32_t relid = g->relid, handle = g->handle, st;

	if (g->have < g->buflen)
		return;
	st = gpadl_finish(srv, g);
	if (st) {
		MSG_WARN("GPADL 0x%x: bad range array or page outside guest RAM", handle);
		gpadl_free(srv, g);
	}
	gpadl_reply(srv, relid, handle, st);
}

static void on_gpadl_header(struct vmbus_server *srv, const uint8_t *msg, uint32_t size)
{
	struct vmbus_msg_gpadl_header h;
	struct vmbus_chan *chan;
	struct vmbus_gpadl *g;
	uint32_t data, st = VMBUS_STATUS_INVALID_PARAMETER;

	if (size < sizeof(h)) {
		MSG_WARN("GPADL_HEADER of %u bytes dropped", size);
		return;
	}
	memcpy(&h, msg, sizeof(h));
	data = size - (uint32_t)sizeof(h);
	chan = chan_lookup(srv, h.child_relid);
	if (!chan || chan->state == VMBUS_CHAN_RESCINDED) {
		MSG_WARN("GPADL_HEADER 0x%x: relid %u is not offered", h.gpadl, h.child_relid);
		goto fail;
	}
	if (gpadl_find(srv, h.gpadl)) {
		MSG_WARN("GPADL_HEADER 0x%x: handle already in use", h.gpadl);
		goto fail;
	}
	if (srv->ngpadls >= VMBUS_MAX_GPADLS) {
		MSG_WARN("GPADL_HEADER 0x%x: more than %u GPADLs", h.gpadl, VMBUS_MAX_GPADLS);
		st = VMBUS_STATUS_INSUFFICIENT_RESOURCES;
		goto fail;
	}
	/* Every range needs its 8-byte head and at least one PFN. */
	if (h.rangecount == 0 || h.range_buflen % 8 || h.range_buflen < 16u * h.rangecount ||
	    data > h.range_buflen) {
		MSG_WARN("GPADL_HEADER 0x%x: %u ranges in %u bytes (%u sent)", h.gpadl,
			 h.rangecount, h.range_buflen, data);
		goto fail;
	}
	if ((h.range_buflen - 8u * h.rangecount) / 8u > VMBUS_MAX_GPADL_PAGES) {
		MSG_WARN("GPADL_HEADER 0x%x: over %u pages", h.gpadl, VMBUS_MAX_GPADL_PAGES);
		goto fail;
	}
	if (srv->gpadl_pages + (h.range_buflen - 8u * h.rangecount) / 8u >
	    VMBUS_MAX_GPADL_TOTAL_PAGES) {
		MSG_WARN("GPADL_HEADER 0x%x: the bus already maps %llu pages", h.gpadl,
			 (unsigned long long)srv->gpadl_pages);
		st = VMBUS_STATUS_INSUFFICIENT_RESOURCES;
		goto fail;
	}
	g = calloc(1, sizeof(*g));
	if (!g || !(g->buf = malloc(h.range_buflen))) {
		free(g);
		st = VMBUS_STATUS_INSUFFICIENT_RESOURCES;
		goto fail;
	}
	g->handle = h.gpadl;
	g->relid = h.child_relid;
	g->buflen = h.range_buflen;
	g->rangecount = h.rangecount;
	g->announced = (h.range_buflen - 8u * h.rangecount) / 8u;
	memcpy(g->buf, msg + sizeof(h), data);
	g->have = data;
	g->next = srv->gpadls;
	srv->gpadls = g;
	srv->ngpadls++;
	srv->gpadl_pages += g->announced;
	gpadl_try_complete(srv, g);
	return;
fail:
	gpadl_reply(srv, h.child_relid, h.gpadl, st);
}

static void on_gpadl_body(struct vmbus_server *srv, const uint8_t *msg, uint32_t size)
{
	struct vmbus_msg_gpadl_body b;
	struct vmbus_gpadl *g;
	uint32_t data;

	if (size < sizeof(b)) {
		MSG_WARN("GPADL_BODY of %u bytes dropped", size);
		return;
	}
	memcpy(&b, msg, sizeof(b));
	data = size - (uint32_t)sizeof(b);
	g = gpadl_find(srv, b.gpadl);
	if (!g || g->complete) {
		MSG_WARN("GPADL_BODY for 0x%x: no GPADL under construction", b.gpadl);
		return;
	}
	/* msgnumber is always 0 from Linux: completion goes by the byte count alone. */
	if (data > g->buflen - g->have) {
		uint32_t relid = g->relid;

		MSG_WARN("GPADL_BODY 0x%x: %u bytes beyond the announced %u", b.gpadl,
			 data - (g->buflen - g->have), g->buflen);
		gpadl_free(srv, g);
		gpadl_reply(srv, relid, b.gpadl, VMBUS_STATUS_INVALID_PARAMETER);
		return;
	}
	memcpy(g->buf + g->have, msg + sizeof(b), data);
	g->have += data;
	gpadl_try_complete(srv, g);
}

static void on_gpadl_teardown(struct vmbus_server *srv, const void *msg, uint32_t size)
{
	struct vmbus_msg_gpadl_teardown t;
	struct vmbus_gpadl *g;

	if (size < sizeof(t)) {
		MSG_WARN("GPADL_TEARDOWN of %u bytes dropped", size);
		return;
	}
	memcpy(&t, msg, sizeof(t));
	g = gpadl_find(srv, t.gpadl);
	if (!g) {
		MSG_WARN("GPADL_TEARDOWN 0x%x: unknown handle", t.gpadl);
		return;
	}
	if (g->user) {
		/* Hyper-V answers once the channel using it is closed; so do we. */
		g->teardown_pending = true;
		return;
	}
	gpadl_free(srv, g);
	post_torndown(srv, t.gpadl);
}

static void on_relid_released(struct vmbus_server *srv, const void *msg, uint32_t size)
{
	struct vmbus_msg_relid m;
	struct vmbus_chan *chan;
	struct vmbus_gpadl *g, *gn;

	if (size < sizeof(m)) {
		MSG_WARN("RELID_RELEASED of %u bytes dropped", size);
		return;
	}
	memcpy(&m, msg, sizeof(m));
	chan = chan_lookup(srv, m.child_relid);
	if (!chan || chan->state != VMBUS_CHAN_RESCINDED) {
		MSG_WARN("RELID_RELEASED %u: channel was not rescinded", m.child_relid);
		return;
	}
	for (g = srv->gpadls; g; g = gn) {
		gn = g->next;
		if (g->relid == chan->relid && !g->user)
			gpadl_free(srv, g);
	}
	pthread_mutex_lock(&srv->lock);
	srv->relids[chan->relid] = NULL;
	pthread_mutex_unlock(&srv->lock);
	free(chan);
}

static void on_modify(struct vmbus_server *srv, const void *msg, uint32_t size)
{
	struct vmbus_msg_modify_response resp = {.hdr.msgtype = VMBUS_MSG_MODIFYCHANNEL_RESPONSE};
	struct vmbus_msg_modify m;
	struct vmbus_chan *chan;

	if (size < sizeof(m)) {
		MSG_WARN("MODIFYCHANNEL of %u bytes dropped", size);
		return;
	}
	memcpy(&m, msg, sizeof(m));
	chan = chan_lookup(srv, m.child_relid);
	resp.child_relid = m.child_relid;
	if (!chan || chan->state == VMBUS_CHAN_RESCINDED ||
	    m.target_vp >= hv_partition_nvps(srv->part)) {
		MSG_WARN("MODIFYCHANNEL relid %u to VP %u refused", m.child_relid, m.target_vp);
		resp.status = VMBUS_STATUS_INVALID_PARAMETER;
	} else {
		__atomic_store_n(&chan->target_vp, m.target_vp, __ATOMIC_RELAXED);
	}
	if (srv->version >= VMBUS_VERSION(5, 3))
		srv_post(srv, &resp, sizeof(resp));
}

uint16_t vmbus_server_handle_message(struct vmbus_server *srv, unsigned vp, const void *msg,
				     uint32_t size)
{
	struct vmbus_msg_hdr h;
	uint16_t status = HV_STATUS_SUCCESS;

	if (size < sizeof(h) || size > HV_MESSAGE_PAYLOAD_MAX) {
		MSG_WARN("%u-byte message dropped", size);
		return HV_STATUS_SUCCESS;
	}
	memcpy(&h, msg, sizeof(h));
	pthread_mutex_lock(&srv->msg_lock);
	/* A guest that leaves its replies unread gets backpressure, not unbounded memory use. */
	pthread_mutex_lock(&srv->lock);
	if (srv->out_len >= VMBUS_OUTBOX_MAX)
		status = HV_STATUS_INSUFFICIENT_BUFFERS;
	pthread_mutex_unlock(&srv->lock);
	if (status != HV_STATUS_SUCCESS)
		goto out;
	if (!srv->version && h.msgtype != VMBUS_MSG_INITIATE_CONTACT &&
	    h.msgtype != VMBUS_MSG_UNLOAD) {
		MSG_WARN("type %u before INITIATE_CONTACT dropped", h.msgtype);
		goto out;
	}
	switch (h.msgtype) {
	case VMBUS_MSG_INITIATE_CONTACT:
		on_initiate_contact(srv, vp, msg, size, &status);
		break;
	case VMBUS_MSG_UNLOAD:
		on_unload(srv, vp);
		break;
	case VMBUS_MSG_REQUESTOFFERS:
		on_request_offers(srv);
		break;
	case VMBUS_MSG_OPENCHANNEL:
		on_open(srv, msg, size);
		break;
	case VMBUS_MSG_CLOSECHANNEL:
		on_close(srv, msg, size);
		break;
	case VMBUS_MSG_GPADL_HEADER:
		on_gpadl_header(srv, msg, size);
		break;
	case VMBUS_MSG_GPADL_BODY:
		on_gpadl_body(srv, msg, size);
		break;
	case VMBUS_MSG_GPADL_TEARDOWN:
		on_gpadl_teardown(srv, msg, size);
		break;
	case VMBUS_MSG_RELID_RELEASED:
		on_relid_released(srv, msg, size);
		break;
	case VMBUS_MSG_MODIFYCHANNEL:
		on_modify(srv, msg, size);
		break;
	case VMBUS_MSG_TL_CONNECT_REQUEST:
		/* hv_sock is not offered: the guest's connect() times out on its own. */
		log_debug(VMBUS_LOG, "TL_CONNECT_REQUEST ignored");
		break;
	default:
		MSG_WARN("unexpected type %u dropped", h.msgtype);
		break;
	}
out:
	pthread_mutex_unlock(&srv->msg_lock);
	return status;
}

static uint16_t srv_port_handler(void *opaque, unsigned vp, uint32_t message_type,
				 const void *payload, uint32_t size)
{
	if (message_type != VMBUS_HVMSG_CHANNEL) {
		MSG_WARN("SynIC message type %u on the VMBus port dropped", message_type);
		return HV_STATUS_SUCCESS;
	}
	return vmbus_server_handle_message(opaque, vp, payload, size);
}

/* ---- public API ---- */

struct vmbus_server *vmbus_server_create(struct hv_partition *part, struct guest_mem *gm)
{
	struct vmbus_server *srv;
	int r;

	if (!part || !gm) {
		err_set("vmbus: no partition or guest memory");
		return NULL;
	}
	srv = calloc(1, sizeof(*srv));
	if (!srv) {
		err_set("vmbus: out of memory");
		return NULL;
	}
	srv->part = part;
	srv->gm = gm;
	pthread_mutex_init(&srv->msg_lock, NULL);
	pthread_mutex_init(&srv->lock, NULL);
	pthread_cond_init(&srv->out_cond, NULL);
	srv->out_tail = &srv->out_head;
	for (unsigned i = 0; i <= VMBUS_MAX_RELID; i++) {
		srv->slots[i].fd = -1;
		pthread_mutex_init(&srv->slots[i].drain, NULL);
	}
	r = hv_message_port_register(part, VMBUS_MSG_CONN_ID, srv_port_handler, srv);
	if (r == 0) {
		r = hv_message_port_register(part, VMBUS_MSG_CONN_ID_4, srv_port_handler, srv);
		if (r < 0)
			hv_connection_unregister(part, VMBUS_MSG_CONN_ID);
	}
	if (r < 0) {
		err_set("vmbus: cannot register the message ports 1 and 4 (%s): is another VMBus "
			"server attached to this partition?",
			strerror(-r));
		goto fail;
	}
	srv->ports_registered = true;
	r = pthread_create(&srv->flusher, NULL, srv_flusher_main, srv);
	if (r) {
		err_set("vmbus: cannot start the reply thread: %s", strerror(r));
		hv_connection_unregister(part, VMBUS_MSG_CONN_ID);
		hv_connection_unregister(part, VMBUS_MSG_CONN_ID_4);
		goto fail;
	}
	return srv;
fail:
	for (unsigned i = 0; i <= VMBUS_MAX_RELID; i++)
		pthread_mutex_destroy(&srv->slots[i].drain);
	pthread_cond_destroy(&srv->out_cond);
	pthread_mutex_destroy(&srv->lock);
	pthread_mutex_destroy(&srv->msg_lock);
	free(srv);
	return NULL;
}

void vmbus_server_destroy(struct vmbus_server *srv)
{
	if (!srv)
		return;
	hv_connection_unregister(srv->part, VMBUS_MSG_CONN_ID);
	hv_connection_unregister(srv->part, VMBUS_MSG_CONN_ID_4);
	pthread_mutex_lock(&srv->msg_lock);
	srv_reset(srv, false);
	pthread_mutex_unlock(&srv->msg_lock);
	pthread_mutex_lock(&srv->lock);
	srv->flusher_stop = true;
	pthread_cond_signal(&srv->out_cond);
	pthread_mutex_unlock(&srv->lock);
	pthread_join(srv->flusher, NULL);
	for (unsigned i = 0; i <= VMBUS_MAX_RELID; i++) {
		if (srv->slots[i].fd >= 0)
			close(srv->slots[i].fd);
		pthread_mutex_destroy(&srv->slots[i].drain);
	}
	for (unsigned i = 0; i < srv->ndevs; i++) {
		srv->devs[i].dev->server = NULL;
		free(srv->devs[i].chans);
	}
	pthread_cond_destroy(&srv->out_cond);
	pthread_mutex_destroy(&srv->lock);
	pthread_mutex_destroy(&srv->msg_lock);
	free(srv);
}

void vmbus_server_reset(struct vmbus_server *srv)
{
	pthread_mutex_lock(&srv->msg_lock);
	srv_reset(srv, true);
	pthread_mutex_unlock(&srv->msg_lock);
}

static struct vmbus_dev_entry *dev_entry(struct vmbus_server *srv, struct vmbus_device *dev)
{
	for (unsigned i = 0; i < srv->ndevs; i++)
		if (srv->devs[i].dev == dev)
			return &srv->devs[i];
	return NULL;
}

int vmbus_server_add_device(struct vmbus_server *srv, struct vmbus_device *dev)
{
	struct vmbus_dev_entry *de;
	int r = 0;

	if (!srv || !dev || !dev->ops || !dev->ops->packet) {
		err_set("vmbus: device without a packet handler");
		return -EINVAL;
	}
	pthread_mutex_lock(&srv->msg_lock);
	pthread_mutex_lock(&srv->lock);
	for (unsigned i = 0; i < srv->ndevs; i++)
		if (srv->devs[i].dev == dev ||
		    guid_equal(&srv->devs[i].dev->instance_id, &dev->instance_id)) {
			err_set("vmbus: device %s: instance GUID already used by %s",
				dev->name ? dev->name : "?",
				srv->devs[i].dev->name ? srv->devs[i].dev->name : "?");
			r = -EEXIST;
			goto out;
		}
	if (srv->ndevs >= VMBUS_MAX_DEVICES) {
		err_set("vmbus: more than %u devices", VMBUS_MAX_DEVICES);
		r = -ENOSPC;
		goto out;
	}
	de = &srv->devs[srv->ndevs];
	memset(de, 0, sizeof(*de));
	de->nchans = 1 + MIN((unsigned)dev->max_subchannels, VMBUS_MAX_SUBCHANNELS);
	de->chans = calloc(de->nchans, sizeof(de->chans[0]));
	if (!de->chans) {
		err_set("vmbus: out of memory");
		r = -ENOMEM;
		goto out;
	}
	de->dev = dev;
	dev->server = srv;
	srv->ndevs++;
	/* Hot-add: a guest that already enumerated gets the offer at once. */
	if (srv->offers_requested)
		chan_create_locked(srv, de, 0);
out:
	pthread_mutex_unlock(&srv->lock);
	pthread_mutex_unlock(&srv->msg_lock);
	return r;
}

int vmbus_server_rescind(struct vmbus_server *srv, struct vmbus_device *dev)
{
	struct vmbus_dev_entry *de;

	pthread_mutex_lock(&srv->msg_lock);
	de = dev_entry(srv, dev);
	if (!de) {
		pthread_mutex_unlock(&srv->msg_lock);
		err_set("vmbus: rescind of a device that was never added");
		return -ENOENT;
	}
	pthread_mutex_lock(&srv->lock);
	de->rescinded = true;
	pthread_mutex_unlock(&srv->lock);
	dev_rescind_chans(srv, de, 0);
	pthread_mutex_unlock(&srv->msg_lock);
	return 0;
}

int vmbus_server_reoffer(struct vmbus_server *srv, struct vmbus_device *dev)
{
	struct vmbus_dev_entry *de;

	pthread_mutex_lock(&srv->msg_lock);
	de = dev_entry(srv, dev);
	if (!de) {
		pthread_mutex_unlock(&srv->msg_lock);
		err_set("vmbus: re-offer of a device that was never added");
		return -ENOENT;
	}
	pthread_mutex_lock(&srv->lock);
	de->rescinded = false;
	if (srv->offers_requested && !de->chans[0])
		chan_create_locked(srv, de, 0);
	pthread_mutex_unlock(&srv->lock);
	pthread_mutex_unlock(&srv->msg_lock);
	return 0;
}

uint32_t vmbus_server_version(const struct vmbus_server *srv)
{
	return __atomic_load_n(&srv->version, __ATOMIC_RELAXED);
}

int vmbus_device_offer_subchannels(struct vmbus_device *dev, unsigned count)
{
	struct vmbus_server *srv = dev ? dev->server : NULL;
	struct vmbus_dev_entry *de;
	int n = 0;

	if (!srv)
		return -EINVAL;
	pthread_mutex_lock(&srv->lock);
	de = dev_entry(srv, dev);
	if (!de || de->rescinded || !srv->offers_requested || !de->chans[0] ||
	    de->chans[0]->state != VMBUS_CHAN_OPEN) {
		pthread_mutex_unlock(&srv->lock);
		return -ENOTCONN;
	}
	count = MIN(count, de->nchans - 1);
	for (unsigned i = 1; i <= count; i++)
		if (!de->chans[i])
			chan_create_locked(srv, de, i);
	for (unsigned i = 1; i < de->nchans; i++)
		n += de->chans[i] != NULL;
	pthread_mutex_unlock(&srv->lock);
	return n;
}
