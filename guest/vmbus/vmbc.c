/* VMBus client: connection, offers, GPADLs, channels. See vmbc.h; spec §6. */
#include "vmbus/vmbc.h"

#define VMBC_DEFAULT_TIMEOUT_NS 5000000000ull
#define VMBC_POST_RETRIES 100

const uint32_t vmbc_versions[8] = {
	VMBC_VERSION(5, 3), VMBC_VERSION(5, 2), VMBC_VERSION(5, 1), VMBC_VERSION(5, 0),
	VMBC_VERSION(4, 1), VMBC_VERSION(4, 0), VMBC_VERSION(3, 0), VMBC_VERSION(2, 4),
};

/* Minimum payload per host->guest message type (§6.1); 0 = not a host->guest message. */
static uint8_t min_len(uint32_t type)
{
	switch (type) {
	case VMBC_MSG_OFFERCHANNEL:
		return sizeof(struct vmbc_offer);
	case VMBC_MSG_RESCIND_OFFER:
		return sizeof(struct vmbc_relid_msg);
	case VMBC_MSG_ALLOFFERS_DELIVERED:
	case VMBC_MSG_UNLOAD_RESPONSE:
		return sizeof(struct vmbc_hdr);
	case VMBC_MSG_OPENCHANNEL_RESULT:
		return sizeof(struct vmbc_open_result);
	case VMBC_MSG_GPADL_CREATED:
		return sizeof(struct vmbc_gpadl_created);
	case VMBC_MSG_GPADL_TORNDOWN:
		return sizeof(struct vmbc_gpadl_torndown);
	case VMBC_MSG_VERSION_RESPONSE:
		return sizeof(struct vmbc_version_response);
	case VMBC_MSG_MODIFYCHANNEL_RESPONSE:
		return sizeof(struct vmbc_modify_response);
	case VMBC_MSG_TL_CONNECT_RESULT:
		return sizeof(struct vmbc_hdr);
	default:
		return 0;
	}
}

/* SynIC handler (inside hvplat_wait): copy to the queue, or leave it in the slot if full. */
static int vmbc_on_message(void *arg, unsigned cpu, const struct whv_message *m)
{
	struct vmbc *c = arg;
	unsigned head = c->qhead, tail = c->qtail;

	(void)cpu;
	if (tail - head >= VMBC_MSGQ)
		return -1;
	c->q[tail % VMBC_MSGQ] = *m;
	c->qtail = tail + 1;
	return 0;
}

static void vmbc_on_event(void *arg, unsigned cpu, unsigned flag)
{
	struct vmbc *c = arg;
	struct vmbc_channel *ch = vmbc_find_relid(c, flag);

	(void)cpu;
	if (ch)
		ch->events++;
	else
		c->stray_events++;
}

int vmbc_init(struct vmbc *c, struct winhv *w)
{
	memset(c, 0, sizeof(*c));
	c->w = w;
	c->cpu = hvplat_cpu();
	c->timeout_ns = VMBC_DEFAULT_TIMEOUT_NS;
	c->next_gpadl = VMBC_GPADL_FIRST;
	if (hvplat_pages_alloc(3, &c->pages))
		return VMBC_ENOMEM;
	winhv_set_msg_handler(w, VMBC_SINT, vmbc_on_message, c);
	winhv_set_event_handler(w, VMBC_SINT, vmbc_on_event, c);
	return 0;
}

static void chan_free_rings(struct vmbc_channel *ch)
{
	if (ch->ring_pages.npages)
		hvplat_pages_free(&ch->ring_pages);
	ch->open = false;
	ch->out.ctl = ch->in.ctl = NULL;
}

void vmbc_reset(struct vmbc *c)
{
	for (unsigned i = 0; i < VMBC_MAX_CHANNELS; i++) {
		chan_free_rings(&c->chan[i]);
		memset(&c->chan[i], 0, sizeof(c->chan[i]));
	}
	memset(c->gw, 0, sizeof(c->gw));
	c->connected = false;
	c->version = 0;
	c->offers_done = false;
}

struct vmbc_channel *vmbc_find_relid(struct vmbc *c, uint32_t relid)
{
	for (unsigned i = 0; i < VMBC_MAX_CHANNELS; i++)
		if (c->chan[i].in_use && c->chan[i].relid == relid)
			return &c->chan[i];
	return NULL;
}

struct vmbc_channel *vmbc_find(struct vmbc *c, const uint8_t class_guid[16], unsigned nth)
{
	for (unsigned i = 0; i < VMBC_MAX_CHANNELS; i++) {
		struct vmbc_channel *ch = &c->chan[i];

		if (ch->in_use && !ch->rescinded && !memcmp(ch->offer.if_type, class_guid, 16) &&
		    nth-- == 0)
			return ch;
	}
	return NULL;
}

struct vmbc_channel *vmbc_find_subchannel(struct vmbc *c, const struct vmbc_channel *primary,
					  uint16_t index)
{
	for (unsigned i = 0; i < VMBC_MAX_CHANNELS; i++) {
		struct vmbc_channel *ch = &c->chan[i];

		if (ch->in_use && !ch->rescinded && ch->offer.sub_channel_index == index &&
		    !memcmp(ch->offer.if_type, primary->offer.if_type, 16) &&
		    !memcmp(ch->offer.if_instance, primary->offer.if_instance, 16))
			return ch;
	}
	return NULL;
}

unsigned vmbc_channel_count(const struct vmbc *c)
{
	unsigned n = 0;

	for (unsigned i = 0; i < VMBC_MAX_CHANNELS; i++)
		n += c->chan[i].in_use && !c->chan[i].rescinded;
	return n;
}

/* HvPostMessage with the retry rule of §3.3 (11 and 19 mean "try again"). */
static uint16_t vmbc_post(struct vmbc *c, uint32_t conn, const void *msg, uint32_t len)
{
	uint16_t st = WHV_STATUS_INSUFFICIENT_BUFFERS;

	for (int i = 0; i < VMBC_POST_RETRIES; i++) {
		st = winhv_post_message(c->w, conn, WHV_MSG_VMBUS, msg, len);
		if (st != WHV_STATUS_INSUFFICIENT_BUFFERS && st != WHV_STATUS_INSUFFICIENT_MEMORY)
			break;
		hvplat_wait();
		vmbc_poll(c);
	}
	if (st)
		hvplat_log("vmbus: post of msgtype %u failed with status %u",
			   ((const struct vmbc_hdr *)msg)->msgtype, st);
	return st;
}

static int post_msg(struct vmbc *c, const void *msg, uint32_t len)
{
	return vmbc_post(c, c->msg_conn_id, msg, len) ? VMBC_EHOST : 0;
}

static void bad(struct vmbc *c, uint32_t type, const char *what)
{
	c->bad_msgs++;
	c->last_bad_type = type;
	/* A broken host can send thousands: the first few and then a sample. */
	if (c->bad_msgs <= 8 || c->bad_msgs % 1024 == 0)
		hvplat_log("vmbus: host message type %u: %s (%llu bad so far)", type, what,
			   (unsigned long long)c->bad_msgs);
}

static void on_offer(struct vmbc *c, const struct vmbc_offer *o)
{
	struct vmbc_channel *ch = NULL;

	if (!o->child_relid || o->child_relid > VMBC_MAX_RELID) {
		bad(c, VMBC_MSG_OFFERCHANNEL, "relid outside 1..2047");
		return;
	}
	if (vmbc_find_relid(c, o->child_relid)) {
		bad(c, VMBC_MSG_OFFERCHANNEL, "duplicate relid");
		return;
	}
	for (unsigned i = 0; i < VMBC_MAX_CHANNELS && !ch; i++)
		if (!c->chan[i].in_use)
			ch = &c->chan[i];
	if (!ch) {
		bad(c, VMBC_MSG_OFFERCHANNEL, "more offers than the client tracks");
		return;
	}
	memset(ch, 0, sizeof(*ch));
	ch->in_use = true;
	ch->relid = o->child_relid;
	ch->conn_id = o->connection_id;
	ch->offer = *o;
	c->offers++;
}

/* Linux: close if open (no GPADL teardown once rescinded), then RELID_RELEASED (§6.3). */
static void on_rescind(struct vmbc *c, uint32_t relid)
{
	struct vmbc_channel *ch = vmbc_find_relid(c, relid);
	struct vmbc_relid_msg m = {.hdr.msgtype = VMBC_MSG_RELID_RELEASED, .child_relid = relid};

	if (!ch) {
		bad(c, VMBC_MSG_RESCIND_OFFER, "unknown relid");
		return;
	}
	c->rescinds++;
	ch->rescinded = true;
	if (ch->open) {
		struct vmbc_relid_msg cl = {.hdr.msgtype = VMBC_MSG_CLOSECHANNEL,
					    .child_relid = relid};

		post_msg(c, &cl, sizeof(cl));
		chan_free_rings(ch);
	}
	post_msg(c, &m, sizeof(m));
	ch->in_use = false;
}

static struct vmbc_gpadl_wait *gw_find(struct vmbc *c, uint32_t handle)
{
	for (unsigned i = 0; i < VMBC_MAX_GPADL_WAIT; i++)
		if (c->gw[i].used && c->gw[i].handle == handle)
			return &c->gw[i];
	return NULL;
}

static void dispatch(struct vmbc *c, const struct whv_message *m)
{
	struct vmbc_hdr h;
	uint8_t need;

	if (m->header.payload_size > WHV_MSG_PAYLOAD_MAX || m->header.payload_size < sizeof(h)) {
		bad(c, 0, "payload_size outside 8..240");
		return;
	}
	memcpy(&h, m->payload, sizeof(h));
	if (h.msgtype >= VMBC_MSG_COUNT) {
		bad(c, h.msgtype, "unknown type");
		return;
	}
	need = min_len(h.msgtype);
	if (!need) {
		bad(c, h.msgtype, "not a host-to-guest message");
		return;
	}
	if (m->header.payload_size < need) {
		bad(c, h.msgtype, "message too short");
		return;
	}
	c->msgs++;
	switch (h.msgtype) {
	case VMBC_MSG_VERSION_RESPONSE: {
		const struct vmbc_version_response *r = (const void *)m->payload;

		c->version_supported = r->version_supported;
		c->version_conn_id = r->msg_conn_id;
		c->version_done = true;
		break;
	}
	case VMBC_MSG_OFFERCHANNEL:
		on_offer(c, (const void *)m->payload);
		break;
	case VMBC_MSG_ALLOFFERS_DELIVERED:
		c->offers_done = true;
		break;
	case VMBC_MSG_RESCIND_OFFER:
		on_rescind(c, ((const struct vmbc_relid_msg *)m->payload)->child_relid);
		break;
	case VMBC_MSG_OPENCHANNEL_RESULT: {
		const struct vmbc_open_result *r = (const void *)m->payload;
		struct vmbc_channel *ch = vmbc_find_relid(c, r->child_relid);

		/* Linux matches relid and openid (= relid). */
		if (!ch || r->openid != r->child_relid) {
			bad(c, h.msgtype, "result for an unknown relid/openid");
			break;
		}
		ch->open_status = r->status;
		ch->open_done = true;
		break;
	}
	case VMBC_MSG_GPADL_CREATED: {
		const struct vmbc_gpadl_created *r = (const void *)m->payload;
		struct vmbc_gpadl_wait *g = gw_find(c, r->gpadl);

		if (!g || g->relid != r->child_relid) {
			bad(c, h.msgtype, "GPADL_CREATED for an unknown relid/handle");
			break;
		}
		g->status = r->status;
		g->created = true;
		break;
	}
	case VMBC_MSG_GPADL_TORNDOWN: {
		struct vmbc_gpadl_wait *g =
			gw_find(c, ((const struct vmbc_gpadl_torndown *)m->payload)->gpadl);

		if (!g) {
			bad(c, h.msgtype, "GPADL_TORNDOWN for an unknown handle");
			break;
		}
		g->torndown = true;
		break;
	}
	case VMBC_MSG_UNLOAD_RESPONSE:
		c->unload_done = true;
		break;
	case VMBC_MSG_MODIFYCHANNEL_RESPONSE: {
		const struct vmbc_modify_response *r = (const void *)m->payload;
		struct vmbc_channel *ch = vmbc_find_relid(c, r->child_relid);

		if (!ch) {
			bad(c, h.msgtype, "response for an unknown relid");
			break;
		}
		ch->modify_status = r->status;
		ch->modify_done = true;
		break;
	}
	default:
		break; /* TL_CONNECT_RESULT: ignored, as Linux does */
	}
}

unsigned vmbc_poll(struct vmbc *c)
{
	unsigned n = 0;

	for (;;) {
		while (c->qhead != c->qtail) {
			struct whv_message m = c->q[c->qhead % VMBC_MSGQ];

			c->qhead++;
			dispatch(c, &m);
			n++;
		}
		/*
		 * A message left in the slot while the queue was full gets no new interrupt (the
		 * host waits for our EOM): pull it now that there is room.
		 */
		if (hvplat_cpu() != c->cpu || !winhv_drain_messages(c->w, VMBC_SINT))
			break;
	}
	return n;
}

/* Runs the client until *flag is set (or, with want_false, cleared) or the timeout passes. */
static int wait_flag(struct vmbc *c, volatile bool *flag)
{
	uint64_t end = hvplat_now_ns() + c->timeout_ns;

	for (;;) {
		vmbc_poll(c);
		if (*flag)
			return 0;
		if (hvplat_now_ns() > end)
			return VMBC_ETIME;
		hvplat_wait();
	}
}

static int try_version(struct vmbc *c, uint32_t version)
{
	struct vmbc_initiate_contact m;
	uint32_t conn = version >= VMBC_V5_0 ? VMBC_CONN_ID_4 : VMBC_CONN_ID_LEGACY;
	uint16_t st;
	int ret;

	memset(&m, 0, sizeof(m));
	m.hdr.msgtype = VMBC_MSG_INITIATE_CONTACT;
	m.version = version;
	m.target_vcpu = c->w->vp[c->cpu].vp_index;
	if (version >= VMBC_V5_0)
		m.interrupt_page_or_sint = VMBC_SINT;
	else
		m.interrupt_page_or_sint = c->pages.gpa;
	m.monitor_page1 = c->pages.gpa + HVPLAT_PAGE_SIZE;
	m.monitor_page2 = c->pages.gpa + 2 * HVPLAT_PAGE_SIZE;
	c->version_done = false;
	st = vmbc_post(c, conn, &m, sizeof(m));
	if (st == WHV_STATUS_INVALID_CONNECTION_ID)
		return VMBC_EHOST; /* Linux: next version at once */
	if (st)
		return VMBC_EPROTO;
	ret = wait_flag(c, &c->version_done);
	if (ret)
		return ret;
	if (!c->version_supported)
		return VMBC_EHOST;
	c->version = version;
	c->msg_conn_id = version >= VMBC_V5_0 ? c->version_conn_id : VMBC_CONN_ID_LEGACY;
	c->connected = true;
	return 0;
}

int vmbc_connect(struct vmbc *c, uint32_t version)
{
	int ret = VMBC_EHOST;

	vmbc_reset(c);
	if (version)
		return try_version(c, version);
	for (unsigned i = 0; i < 8; i++) {
		ret = try_version(c, vmbc_versions[i]);
		if (ret != VMBC_EHOST)
			return ret;
	}
	return ret;
}

int vmbc_request_offers(struct vmbc *c)
{
	struct vmbc_hdr m = {.msgtype = VMBC_MSG_REQUESTOFFERS};
	int ret;

	c->offers_done = false;
	ret = post_msg(c, &m, sizeof(m));
	return ret ? ret : wait_flag(c, &c->offers_done);
}

int vmbc_unload(struct vmbc *c)
{
	struct vmbc_hdr m = {.msgtype = VMBC_MSG_UNLOAD};
	int ret;

	c->unload_done = false;
	ret = post_msg(c, &m, sizeof(m));
	if (!ret)
		ret = wait_flag(c, &c->unload_done);
	if (!ret)
		vmbc_reset(c);
	return ret;
}

int vmbc_gpadl_create(struct vmbc *c, uint32_t relid, const uint64_t *pfns, uint32_t npfn,
		      uint32_t *handle, uint32_t *status)
{
	struct vmbc_gpadl_header hm;
	struct vmbc_gpadl_body bm;
	struct vmbc_gpadl_wait *g = NULL;
	uint32_t first, done;
	int ret;

	*status = 0;
	/* range_buflen = 8 + 8n is a u16; byte_count = 4096n a u32. */
	if (!npfn || npfn > (0xffffu - 8) / 8)
		return VMBC_EINVAL;
	for (unsigned i = 0; i < VMBC_MAX_GPADL_WAIT && !g; i++)
		if (!c->gw[i].used)
			g = &c->gw[i];
	if (!g)
		return VMBC_ENOMEM;
	memset(g, 0, sizeof(*g));
	g->used = true;
	g->handle = c->next_gpadl++;
	g->relid = relid;

	first = npfn < VMBC_GPADL_HEADER_PFNS ? npfn : VMBC_GPADL_HEADER_PFNS;
	memset(&hm, 0, sizeof(hm));
	hm.hdr.msgtype = VMBC_MSG_GPADL_HEADER;
	hm.child_relid = relid;
	hm.gpadl = g->handle;
	hm.range_buflen = (uint16_t)(8 + 8 * npfn);
	hm.rangecount = 1;
	hm.byte_count = npfn * HVPLAT_PAGE_SIZE;
	hm.byte_offset = 0;
	memcpy(hm.pfn, pfns, first * 8);
	ret = post_msg(c, &hm, 28 + 8 * first);
	for (done = first; !ret && done < npfn;) {
		uint32_t n =
			npfn - done < VMBC_GPADL_BODY_PFNS ? npfn - done : VMBC_GPADL_BODY_PFNS;

		memset(&bm, 0, sizeof(bm));
		bm.hdr.msgtype = VMBC_MSG_GPADL_BODY;
		bm.msgnumber = 0; /* Linux always sends 0 */
		bm.gpadl = g->handle;
		memcpy(bm.pfn, pfns + done, n * 8);
		ret = post_msg(c, &bm, 16 + 8 * n);
		done += n;
	}
	if (!ret)
		ret = wait_flag(c, &g->created);
	if (!ret && g->status) {
		*status = g->status;
		ret = VMBC_EHOST;
	}
	if (!ret)
		*handle = g->handle;
	else
		g->used = false;
	return ret;
}

int vmbc_gpadl_teardown(struct vmbc *c, uint32_t relid, uint32_t handle)
{
	struct vmbc_gpadl_teardown m = {
		.hdr.msgtype = VMBC_MSG_GPADL_TEARDOWN, .child_relid = relid, .gpadl = handle};
	struct vmbc_gpadl_wait *g = gw_find(c, handle);
	int ret;

	if (!g)
		return VMBC_EINVAL;
	g->torndown = false;
	ret = post_msg(c, &m, sizeof(m));
	if (!ret)
		ret = wait_flag(c, &g->torndown);
	g->used = false;
	return ret;
}

int vmbc_open(struct vmbc *c, struct vmbc_channel *ch, uint32_t send_bytes, uint32_t recv_bytes,
	      const void *user_data, uint32_t user_len, uint32_t target_vp, uint32_t *status)
{
	uint32_t sp = send_bytes / HVPLAT_PAGE_SIZE + 1, rp = recv_bytes / HVPLAT_PAGE_SIZE + 1;
	uint64_t pfns[256];
	struct vmbc_open m;
	uint32_t st = 0;
	int ret;

	*status = 0;
	if (!ch->in_use || ch->rescinded)
		return VMBC_ENODEV;
	if (ch->open || !send_bytes || !recv_bytes || send_bytes % HVPLAT_PAGE_SIZE ||
	    recv_bytes % HVPLAT_PAGE_SIZE || sp + rp > 256 || user_len > sizeof(m.user_data))
		return VMBC_EINVAL;
	if (hvplat_pages_alloc(sp + rp, &ch->ring_pages))
		return VMBC_ENOMEM;
	for (uint32_t i = 0; i < sp + rp; i++)
		pfns[i] = ch->ring_pages.gpa / HVPLAT_PAGE_SIZE + i;
	ch->send_pages = sp;
	ch->out.ctl = ch->ring_pages.va;
	ch->out.data = (uint8_t *)ch->ring_pages.va + HVPLAT_PAGE_SIZE;
	ch->out.size = send_bytes;
	ch->in.ctl = (struct vmbc_ring_ctl *)((uint8_t *)ch->ring_pages.va + sp * HVPLAT_PAGE_SIZE);
	ch->in.data = (uint8_t *)ch->in.ctl + HVPLAT_PAGE_SIZE;
	ch->in.size = recv_bytes;
	ch->legacy_send_bits = (uint8_t *)c->pages.va + 2048;
	ch->monitor_page = (uint8_t *)c->pages.va + 2 * HVPLAT_PAGE_SIZE;
	/* Linux advertises pending_send_sz support on both rings (§7.1). */
	ch->out.ctl->feature_bits = VMBC_RING_FEAT_PENDING_SEND_SZ;
	ch->in.ctl->feature_bits = VMBC_RING_FEAT_PENDING_SEND_SZ;

	ret = vmbc_gpadl_create(c, ch->relid, pfns, sp + rp, &ch->gpadl, &st);
	if (ret) {
		*status = st;
		hvplat_pages_free(&ch->ring_pages);
		return ret;
	}
	memset(&m, 0, sizeof(m));
	m.hdr.msgtype = VMBC_MSG_OPENCHANNEL;
	m.child_relid = ch->relid;
	m.openid = ch->relid;
	m.gpadl = ch->gpadl;
	m.target_vp = target_vp;
	m.downstream_page_offset = sp;
	if (user_len)
		memcpy(m.user_data, user_data, user_len);
	ch->open_done = false;
	ch->target_vp = target_vp;
	ret = post_msg(c, &m, sizeof(m));
	if (!ret)
		ret = wait_flag(c, &ch->open_done);
	if (!ret && ch->open_status) {
		*status = ch->open_status;
		ret = VMBC_EHOST;
	}
	if (ret) {
		vmbc_gpadl_teardown(c, ch->relid, ch->gpadl);
		hvplat_pages_free(&ch->ring_pages);
		return ret;
	}
	ch->open = true;
	return 0;
}

int vmbc_close(struct vmbc *c, struct vmbc_channel *ch)
{
	struct vmbc_relid_msg m = {.hdr.msgtype = VMBC_MSG_CLOSECHANNEL, .child_relid = ch->relid};
	int ret;

	if (!ch->open)
		return VMBC_EINVAL;
	ret = post_msg(c, &m, sizeof(m));
	if (!ret && !ch->rescinded)
		ret = vmbc_gpadl_teardown(c, ch->relid, ch->gpadl);
	chan_free_rings(ch);
	return ret;
}

int vmbc_modify(struct vmbc *c, struct vmbc_channel *ch, uint32_t target_vp)
{
	struct vmbc_modify m = {.hdr.msgtype = VMBC_MSG_MODIFYCHANNEL,
				.child_relid = ch->relid,
				.target_vp = target_vp};
	int ret;

	if (!ch->in_use || c->version < VMBC_V4_1)
		return VMBC_EINVAL;
	ch->modify_done = false;
	ret = post_msg(c, &m, sizeof(m));
	if (!ret && c->version >= VMBC_V5_3) {
		ret = wait_flag(c, &ch->modify_done);
		if (!ret && ch->modify_status)
			ret = VMBC_EHOST;
	}
	if (!ret)
		ch->target_vp = target_vp;
	return ret;
}
