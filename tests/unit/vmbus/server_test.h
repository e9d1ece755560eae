/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * In-process guest for the channel-server tests: real guest_mem, real hv partition, SynIC
 * enabled through the MSRs, messages posted with the HvPostMessage hypercall from an input
 * page in guest RAM, replies read from SIM slot 2 (with EOM), signals through HvSignalEvent.
 * The guest half of the ring protocol is written here from spec §7, independently of ring.c.
 */
#ifndef VIRIDIAN_TESTS_VMBUS_SERVER_TEST_H
#define VIRIDIAN_TESTS_VMBUS_SERVER_TEST_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "hv/hv.h"
#include "hv/hv_hypercall.h"
#include "hv/hv_msr.h"
#include "hv/hv_proto.h"
#include "lib/util.h"
#include "vid/guest_mem.h"
#include "vmbus/vmbus.h"
#include "vmbus/vmbus_msg.h"
#include "vmbus/vmbus_proto.h"

#define T_RAM (32ull << 20)
#define T_NVPS 2u
#define T_VEC 0xF3
#define T_SIMP(vp) (0x100000ull + (uint64_t)(vp)*0x10000)
#define T_SIEFP(vp) (0x101000ull + (uint64_t)(vp)*0x10000)
#define T_INPUT(vp) (0x102000ull + (uint64_t)(vp)*0x10000)
#define T_INTPAGE 0x180000ull
#define T_ALLOC_BASE (2ull << 20)

struct tf {
	struct guest_mem gm;
	struct hv_partition *part;
	struct vmbus_server *srv;
	unsigned nirq[T_NVPS];
	uint64_t next_gpa;
	uint32_t next_gpadl;
	unsigned ctl_vp;
	unsigned nsignals; /* HvSignalEvent calls the guest made */
};

static inline void tf_inject(void *opaque, unsigned vp, uint8_t vector)
{
	struct tf *f = opaque;

	(void)vector;
	if (vp < T_NVPS)
		__atomic_fetch_add(&f->nirq[vp], 1, __ATOMIC_SEQ_CST);
}

static inline void tf_sleep_us(unsigned us)
{
	struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000};

	nanosleep(&ts, NULL);
}

static inline struct tf *tf_new(void)
{
	struct tf *f = calloc(1, sizeof(*f));
	struct hv_callbacks cb = {.opaque = f, .inject_interrupt = tf_inject};

	assert_non_null(f);
	assert_int_equal(guest_mem_init(&f->gm, T_RAM, 0), 0);
	f->part = hv_partition_create(&f->gm, T_NVPS, &cb);
	assert_non_null(f->part);
	for (unsigned vp = 0; vp < T_NVPS; vp++) {
		assert_int_equal(hv_msr_write(f->part, vp, HV_MSR_SIMP, T_SIMP(vp) | 1), HV_MSR_OK);
		assert_int_equal(hv_msr_write(f->part, vp, HV_MSR_SIEFP, T_SIEFP(vp) | 1),
				 HV_MSR_OK);
		assert_int_equal(hv_msr_write(f->part, vp, HV_MSR_SINT0 + 2, T_VEC), HV_MSR_OK);
		assert_int_equal(hv_msr_write(f->part, vp, HV_MSR_SCONTROL, 1), HV_MSR_OK);
	}
	f->srv = vmbus_server_create(f->part, &f->gm);
	assert_non_null(f->srv);
	f->next_gpa = T_ALLOC_BASE;
	f->next_gpadl = 0xE1E10;
	return f;
}

static inline void tf_free(struct tf *f)
{
	vmbus_server_destroy(f->srv);
	hv_partition_destroy(f->part);
	guest_mem_destroy(&f->gm);
	free(f);
}

/* Bump allocator of zeroed guest pages. */
static inline uint64_t tf_alloc(struct tf *f, unsigned pages)
{
	uint64_t gpa = f->next_gpa;
	void *p;

	f->next_gpa += (uint64_t)pages * 4096;
	assert_true(f->next_gpa <= T_RAM);
	p = guest_mem_ptr(&f->gm, gpa, (uint64_t)pages * 4096);
	assert_non_null(p);
	memset(p, 0, (size_t)pages * 4096);
	return gpa;
}

static inline void *tf_ptr(struct tf *f, uint64_t gpa, uint64_t len)
{
	void *p = guest_mem_ptr(&f->gm, gpa, len);

	assert_non_null(p);
	return p;
}

/* HvPostMessage through the hypercall path. Returns the hypercall status. */
static inline uint16_t tf_post_conn(struct tf *f, unsigned vp, uint32_t conn, const void *msg,
				    uint32_t size)
{
	struct hv_input_post_message in = {
		.connection_id = conn, .message_type = VMBUS_HVMSG_CHANNEL, .payload_size = size};
	struct hv_hypercall_regs r = {.rcx = HVCALL_POST_MESSAGE, .rdx = T_INPUT(vp)};

	assert_true(size <= sizeof(in.payload));
	memcpy(in.payload, msg, size);
	assert_int_equal(guest_mem_write(&f->gm, T_INPUT(vp), &in, sizeof(in)), 0);
	return (uint16_t)hv_hypercall(f->part, vp, &r);
}

static inline void tf_post(struct tf *f, const void *msg, uint32_t size)
{
	assert_int_equal(tf_post_conn(f, 0, VMBUS_MSG_CONN_ID, msg, size), HV_STATUS_SUCCESS);
}

static inline uint16_t tf_signal(struct tf *f, unsigned vp, uint32_t conn_id)
{
	struct hv_hypercall_regs r = {.rcx = HVCALL_SIGNAL_EVENT | HV_HC_FAST, .rdx = conn_id};

	f->nsignals++;
	return (uint16_t)hv_hypercall(f->part, vp, &r);
}

/*
 * Takes the message in SIM slot 2 of vp as Linux does (copy, free the slot, EOM when pending),
 * waiting up to timeout_ms. Returns the channel message type, or -1 when none came.
 */
static inline int tf_recv_vp(struct tf *f, unsigned vp, void *out, unsigned *size,
			     unsigned timeout_ms)
{
	struct hv_message *s = tf_ptr(f, T_SIMP(vp) + 2 * 256, 256);
	uint64_t deadline = util_now_ns() + (uint64_t)timeout_ms * 1000000;
	struct hv_message m;
	uint32_t type;

	for (;;) {
		type = __atomic_load_n(&s->header.message_type, __ATOMIC_ACQUIRE);
		if (type)
			break;
		if (util_now_ns() > deadline)
			return -1;
		tf_sleep_us(100);
	}
	memcpy(&m, s, sizeof(m));
	assert_int_equal(type, VMBUS_HVMSG_CHANNEL);
	assert_true(__atomic_compare_exchange_n(&s->header.message_type, &type, 0, false,
						__ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
	if (__atomic_load_n(&s->header.message_flags, __ATOMIC_SEQ_CST) & HV_MESSAGE_FLAG_PENDING)
		assert_int_equal(hv_msr_write(f->part, vp, HV_MSR_EOM, 0), HV_MSR_OK);
	assert_true(m.header.payload_size >= 8);
	if (out)
		memcpy(out, m.payload, m.header.payload_size);
	if (size)
		*size = m.header.payload_size;
	return (int)((struct vmbus_msg_hdr *)m.payload)->msgtype;
}

static inline int tf_recv(struct tf *f, void *out, unsigned timeout_ms)
{
	return tf_recv_vp(f, f->ctl_vp, out, NULL, timeout_ms);
}

/* Expects exactly this message type next on the control VP; copies <= outsize bytes. */
static inline void tf_expect_sz(struct tf *f, uint32_t type, void *out, size_t outsize)
{
	uint8_t buf[HV_MESSAGE_PAYLOAD_MAX];
	unsigned size = 0;

	assert_int_equal(tf_recv_vp(f, f->ctl_vp, buf, &size, 2000), (int)type);
	if (out)
		memcpy(out, buf, MIN(outsize, (size_t)size));
}

#define tf_expect(f, type, out) tf_expect_sz(f, type, out, sizeof(*(out)))
#define tf_expect0(f, type) tf_expect_sz(f, type, NULL, 0)

static inline void tf_expect_none(struct tf *f, unsigned ms)
{
	assert_int_equal(tf_recv(f, NULL, ms), -1);
}

/* Atomically takes SIEF bit relid of SINT 2 on vp, as the guest ISR does. */
static inline bool tf_sief_take(struct tf *f, unsigned vp, uint32_t relid)
{
	uint32_t *w = tf_ptr(f, T_SIEFP(vp) + 2 * 256 + relid / 32 * 4, 4);
	uint32_t bit = 1u << (relid % 32);

	return __atomic_fetch_and(w, ~bit, __ATOMIC_SEQ_CST) & bit;
}

static inline bool tf_sief_wait(struct tf *f, unsigned vp, uint32_t relid, unsigned ms)
{
	uint64_t deadline = util_now_ns() + (uint64_t)ms * 1000000;

	while (!tf_sief_take(f, vp, relid)) {
		if (util_now_ns() > deadline)
			return false;
		tf_sleep_us(100);
	}
	return true;
}

/* ---- connection and offers ---- */

static inline int tf_initiate(struct tf *f, uint32_t version, unsigned vp)
{
	struct vmbus_msg_initiate_contact ic = {
		.hdr.msgtype = VMBUS_MSG_INITIATE_CONTACT, .version = version, .target_vcpu = vp};
	struct vmbus_msg_version_response vr;
	bool v5 = version >= VMBUS_VERSION(5, 0);

	ic.interrupt_page = v5 ? 2 : T_INTPAGE;
	ic.monitor_page1 = T_INTPAGE + 4096;
	ic.monitor_page2 = T_INTPAGE + 8192;
	f->ctl_vp = vp;
	assert_int_equal(
		tf_post_conn(f, 0, v5 ? VMBUS_MSG_CONN_ID_4 : VMBUS_MSG_CONN_ID, &ic, sizeof(ic)),
		HV_STATUS_SUCCESS);
	tf_expect(f, VMBUS_MSG_VERSION_RESPONSE, &vr);
	if (vr.version_supported)
		assert_int_equal(vr.msg_conn_id, VMBUS_MSG_CONN_ID);
	return vr.version_supported;
}

#define TF_MAX_OFFERS 32

/* REQUESTOFFERS; collects the offers until ALLOFFERS_DELIVERED. Returns their number. */
static inline unsigned tf_request_offers(struct tf *f, struct vmbus_msg_offer *offers)
{
	struct vmbus_msg_hdr h = {.msgtype = VMBUS_MSG_REQUESTOFFERS};
	uint8_t buf[HV_MESSAGE_PAYLOAD_MAX];
	unsigned n = 0;
	int t;

	tf_post(f, &h, sizeof(h));
	while ((t = tf_recv(f, buf, 2000)) == VMBUS_MSG_OFFERCHANNEL) {
		assert_true(n < TF_MAX_OFFERS);
		memcpy(&offers[n++], buf, sizeof(offers[0]));
	}
	assert_int_equal(t, VMBUS_MSG_ALLOFFERS_DELIVERED);
	return n;
}

static inline void tf_connect(struct tf *f)
{
	assert_true(tf_initiate(f, VMBUS_VERSION_MAX, 0));
}

/* ---- GPADLs ---- */

/* GPADL_HEADER + as many GPADL_BODY messages as needed; returns GPADL_CREATED's status. */
static inline uint32_t tf_gpadl_pfns(struct tf *f, uint32_t relid, uint32_t handle,
				     const uint64_t *pfns, unsigned n, uint32_t byte_count)
{
	uint8_t msg[HV_MESSAGE_PAYLOAD_MAX];
	struct vmbus_msg_gpadl_header h = {.hdr.msgtype = VMBUS_MSG_GPADL_HEADER,
					   .child_relid = relid,
					   .gpadl = handle,
					   .range_buflen = (uint16_t)(8 + 8 * n),
					   .rangecount = 1};
	struct vmbus_gpa_range rg = {.byte_count = byte_count, .byte_offset = 0};
	struct vmbus_msg_gpadl_created c;
	unsigned in_hdr = MIN(n, 26u), i = in_hdr;

	memcpy(msg, &h, sizeof(h));
	memcpy(msg + 20, &rg, 8);
	memcpy(msg + 28, pfns, 8 * in_hdr);
	tf_post(f, msg, 28 + 8 * in_hdr);
	while (i < n) {
		struct vmbus_msg_gpadl_body b = {.hdr.msgtype = VMBUS_MSG_GPADL_BODY,
						 .gpadl = handle};
		unsigned k = MIN(n - i, 28u);

		memcpy(msg, &b, sizeof(b));
		memcpy(msg + 16, pfns + i, 8 * k);
		tf_post(f, msg, 16 + 8 * k);
		i += k;
	}
	tf_expect(f, VMBUS_MSG_GPADL_CREATED, &c);
	assert_int_equal(c.child_relid, relid);
	assert_int_equal(c.gpadl, handle);
	return c.creation_status;
}

static inline void tf_gpadl_teardown(struct tf *f, uint32_t relid, uint32_t handle, bool expect)
{
	struct vmbus_msg_gpadl_teardown t = {
		.hdr.msgtype = VMBUS_MSG_GPADL_TEARDOWN, .child_relid = relid, .gpadl = handle};
	struct vmbus_msg_gpadl_torndown d;

	tf_post(f, &t, sizeof(t));
	if (expect) {
		tf_expect(f, VMBUS_MSG_GPADL_TORNDOWN, &d);
		assert_int_equal(d.gpadl, handle);
	}
}

/* ---- guest rings (spec §7), guest side ---- */

struct gring {
	struct vmbus_ring_ctrl *ctrl;
	uint8_t *data;
	uint32_t size;
};

struct gchan {
	uint32_t relid, conn_id, gpadl, target_vp;
	uint64_t gpa;
	unsigned g2h_pages, h2g_pages;
	struct gring out, in; /* guest→host, host→guest */
};

static inline void gring_copy_in(struct gring *r, uint32_t off, const void *src, uint32_t len)
{
	uint32_t first = MIN(len, r->size - off);

	if (!len)
		return;
	memcpy(r->data + off, src, first);
	memcpy(r->data, (const uint8_t *)src + first, len - first);
}

static inline void gring_copy_out(struct gring *r, uint32_t off, void *dst, uint32_t len)
{
	uint32_t first = MIN(len, r->size - off);

	memcpy(dst, r->data + off, first);
	memcpy((uint8_t *)dst + first, r->data, len - first);
}

/*
 * Writes one packet (descriptor, hdr, payload) as Linux's hv_ringbuffer_write does and signals
 * when the rules say so. Returns 0, or -EAGAIN when the ring lacks space.
 */
static inline int gchan_write(struct tf *f, struct gchan *c, uint16_t type, uint16_t flags,
			      uint64_t trans_id, const void *hdr, uint32_t hdr_len,
			      const void *payload, uint32_t len)
{
	struct gring *r = &c->out;
	struct vmbus_pkt_desc d;
	uint32_t pktlen = ALIGN_UP(16 + hdr_len + len, 8u), wr, rd, used;
	uint64_t trailer;
	static const uint8_t zero[8];

	wr = __atomic_load_n(&r->ctrl->write_index, __ATOMIC_RELAXED);
	rd = __atomic_load_n(&r->ctrl->read_index, __ATOMIC_ACQUIRE);
	used = wr >= rd ? wr - rd : r->size - rd + wr;
	if (r->size - used <= pktlen + 8)
		return -EAGAIN;
	d.type = type;
	d.offset8 = (uint16_t)((16 + hdr_len) / 8);
	d.len8 = (uint16_t)(pktlen / 8);
	d.flags = flags;
	d.trans_id = trans_id;
	gring_copy_in(r, wr, &d, 16);
	gring_copy_in(r, (wr + 16) % r->size, hdr, hdr_len);
	gring_copy_in(r, (wr + 16 + hdr_len) % r->size, payload, len);
	gring_copy_in(r, (wr + 16 + hdr_len + len) % r->size, zero, pktlen - 16 - hdr_len - len);
	trailer = (uint64_t)wr << 32;
	gring_copy_in(r, (wr + pktlen) % r->size, &trailer, 8);
	__atomic_store_n(&r->ctrl->write_index, (wr + pktlen + 8) % r->size, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!__atomic_load_n(&r->ctrl->interrupt_mask, __ATOMIC_SEQ_CST) &&
	    __atomic_load_n(&r->ctrl->read_index, __ATOMIC_SEQ_CST) == wr)
		assert_int_equal(tf_signal(f, 0, c->conn_id), HV_STATUS_SUCCESS);
	return 0;
}

/*
 * Reads one host→guest packet into buf (whole packet, descriptor included). Returns its length,
 * 0 when the ring is empty. Signals the host when its pending_send_sz is crossed (§7.5).
 */
static inline uint32_t gchan_read(struct tf *f, struct gchan *c, void *buf, uint32_t max)
{
	struct gring *r = &c->in;
	struct vmbus_pkt_desc d;
	uint32_t wr, rd, len, pend, newrd;

	rd = __atomic_load_n(&r->ctrl->read_index, __ATOMIC_RELAXED);
	wr = __atomic_load_n(&r->ctrl->write_index, __ATOMIC_ACQUIRE);
	if (rd == wr)
		return 0;
	gring_copy_out(r, rd, &d, 16);
	len = d.len8 * 8u;
	assert_true(len >= 16 && len <= max);
	gring_copy_out(r, rd, buf, len);
	newrd = (rd + len + 8) % r->size;
	__atomic_store_n(&r->ctrl->read_index, newrd, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	pend = __atomic_load_n(&r->ctrl->pending_send_sz, __ATOMIC_SEQ_CST);
	if (pend) {
		/* Free space now, from the host's current write_index, as Linux computes it. */
		uint32_t w = __atomic_load_n(&r->ctrl->write_index, __ATOMIC_SEQ_CST);
		uint32_t used = w >= newrd ? w - newrd : r->size - newrd + w;
		uint32_t free_after = r->size - used, free_before = free_after - (len + 8);

		if (free_before <= pend && free_after > pend)
			assert_int_equal(tf_signal(f, 0, c->conn_id), HV_STATUS_SUCCESS);
	}
	return len;
}

/* Waits up to timeout_ms for a host→guest packet. */
static inline uint32_t gchan_read_wait(struct tf *f, struct gchan *c, void *buf, uint32_t max,
				       unsigned timeout_ms)
{
	uint64_t deadline = util_now_ns() + (uint64_t)timeout_ms * 1000000;
	uint32_t n;

	while (!(n = gchan_read(f, c, buf, max))) {
		if (util_now_ns() > deadline)
			return 0;
		tf_sleep_us(20);
	}
	return n;
}

/* GPADL for a fresh ring allocation (contiguous pages) + OPENCHANNEL. Returns the status. */
static inline uint32_t gchan_open(struct tf *f, struct gchan *c, const struct vmbus_msg_offer *o,
				  unsigned g2h_pages, unsigned h2g_pages, unsigned target_vp)
{
	struct vmbus_msg_open m = {.hdr.msgtype = VMBUS_MSG_OPENCHANNEL};
	struct vmbus_msg_open_result res;
	unsigned n = g2h_pages + h2g_pages;
	uint64_t *pfns = calloc(n, 8);

	assert_non_null(pfns);
	memset(c, 0, sizeof(*c));
	c->relid = o->child_relid;
	c->conn_id = o->connection_id;
	c->gpadl = f->next_gpadl++;
	c->target_vp = target_vp;
	c->g2h_pages = g2h_pages;
	c->h2g_pages = h2g_pages;
	c->gpa = tf_alloc(f, n);
	for (unsigned i = 0; i < n; i++)
		pfns[i] = c->gpa / 4096 + i;
	/* Linux sets feat_pending_send_sz on both rings. */
	c->out.ctrl = tf_ptr(f, c->gpa, 4096);
	c->out.data = tf_ptr(f, c->gpa + 4096, (g2h_pages - 1) * 4096ull);
	c->out.size = (g2h_pages - 1) * 4096;
	c->in.ctrl = tf_ptr(f, c->gpa + g2h_pages * 4096ull, 4096);
	c->in.data = tf_ptr(f, c->gpa + (g2h_pages + 1) * 4096ull, (h2g_pages - 1) * 4096ull);
	c->in.size = (h2g_pages - 1) * 4096;
	c->out.ctrl->feature_bits = 1;
	c->in.ctrl->feature_bits = 1;
	assert_int_equal(tf_gpadl_pfns(f, c->relid, c->gpadl, pfns, n, n * 4096), 0);
	free(pfns);
	m.child_relid = c->relid;
	m.openid = c->relid;
	m.ringbuffer_gpadl = c->gpadl;
	m.target_vp = target_vp;
	m.downstream_pageoffset = g2h_pages;
	tf_post(f, &m, sizeof(m));
	tf_expect(f, VMBUS_MSG_OPENCHANNEL_RESULT, &res);
	assert_int_equal(res.child_relid, c->relid);
	assert_int_equal(res.openid, c->relid);
	return res.status;
}

/* CLOSECHANNEL + GPADL_TEARDOWN (answered with TORNDOWN), as Linux's vmbus_close does. */
static inline void gchan_close(struct tf *f, struct gchan *c)
{
	struct vmbus_msg_relid m = {.hdr.msgtype = VMBUS_MSG_CLOSECHANNEL, .child_relid = c->relid};

	tf_post(f, &m, sizeof(m));
	tf_gpadl_teardown(f, c->relid, c->gpadl, true);
}

#endif
