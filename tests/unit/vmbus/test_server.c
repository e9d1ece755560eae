// SPDX-License-Identifier: GPL-2.0-only
/*
 * Channel server against an in-process guest (server_test.h): version negotiation, offers,
 * GPADLs, open/close, echo traffic (inband and GPA-direct), rescind/re-offer, UNLOAD,
 * MODIFYCHANNEL, sub-channels, the reply outbox, and malformed input.
 */
#include <pthread.h>

#include "server_test.h"
#include "hv/hv_synic.h"
#include "vmbus/device.h"
#include "vsp/echo.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 16);
}

static void fill_rand(uint8_t *p, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		p[i] = (uint8_t)rnd();
}

struct fx {
	struct tf *f;
	struct vmbus_device *echo;
};

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));

	x->f = tf_new();
	x->echo = vsp_echo_create();
	assert_non_null(x->echo);
	assert_int_equal(vmbus_server_add_device(x->f->srv, x->echo), 0);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;

	tf_free(x->f);
	vsp_echo_destroy(x->echo);
	free(x);
	return 0;
}

/* Connects at 5.3, takes the offers, returns the echo device's offer. */
static void connect_echo(struct fx *x, struct vmbus_msg_offer *echo_offer)
{
	struct vmbus_msg_offer offers[TF_MAX_OFFERS];
	unsigned n;

	tf_connect(x->f);
	n = tf_request_offers(x->f, offers);
	for (unsigned i = 0; i < n; i++)
		if (guid_equal(&offers[i].if_instance, &x->echo->instance_id)) {
			*echo_offer = offers[i];
			return;
		}
	fail_msg("no echo offer");
}

/* ---- connection ---- */

static void test_versions(void **state)
{
	struct fx *x = *state;
	static const uint32_t linux_order[] = {0x50003, 0x50002, 0x50001, 0x50000,
					       0x40001, 0x40000, 0x30000, 0x20004};
	struct vmbus_msg_initiate_contact ic = {.hdr.msgtype = VMBUS_MSG_INITIATE_CONTACT};
	struct vmbus_msg_version_response vr;

	for (unsigned i = 0; i < ARRAY_SIZE(linux_order); i++) {
		assert_int_equal(tf_initiate(x->f, linux_order[i], 0), 1);
		assert_int_equal(vmbus_server_version(x->f->srv), linux_order[i]);
	}
	/* Versions Linux 6.1 no longer tries, and future ones: refused, not connected. */
	assert_int_equal(tf_initiate(x->f, 0x10001, 0), 0);
	assert_int_equal(vmbus_server_version(x->f->srv), 0);
	assert_int_equal(tf_initiate(x->f, 0x0000D, 0), 0);
	assert_int_equal(tf_initiate(x->f, 0x60000, 0), 0);
	/* < 5.0 with an interrupt page outside RAM (or unaligned) is refused. */
	ic.version = 0x40000;
	ic.interrupt_page = T_RAM + 0x10000;
	tf_post(x->f, &ic, sizeof(ic));
	tf_expect(x->f, VMBUS_MSG_VERSION_RESPONSE, &vr);
	assert_int_equal(vr.version_supported, 0);
	ic.interrupt_page = T_INTPAGE + 8;
	tf_post(x->f, &ic, sizeof(ic));
	tf_expect(x->f, VMBUS_MSG_VERSION_RESPONSE, &vr);
	assert_int_equal(vr.version_supported, 0);
	/* A control VP the VM does not have: the post fails instead of a reply to nowhere. */
	ic.version = 0x50003;
	ic.target_vcpu = T_NVPS;
	assert_int_equal(tf_post_conn(x->f, 0, VMBUS_MSG_CONN_ID_4, &ic, sizeof(ic)),
			 HV_STATUS_INVALID_PARAMETER);
	/* Replies go to the VP the guest named, whoever posted. */
	assert_int_equal(tf_initiate(x->f, 0x50003, 1), 1);
	assert_int_equal(tf_recv_vp(x->f, 0, NULL, NULL, 20), -1);
	/* Anything but INITIATE_CONTACT/UNLOAD before connecting is dropped. */
	assert_int_equal(tf_initiate(x->f, 0x10001, 0), 0);
	{
		struct vmbus_msg_hdr h = {.msgtype = VMBUS_MSG_REQUESTOFFERS};

		tf_post(x->f, &h, sizeof(h));
		tf_expect_none(x->f, 30);
	}
}

static void test_offers_and_hot_add(void **state)
{
	struct fx *x = *state;
	struct vmbus_device *e2 = vsp_echo_create(), *e3 = vsp_echo_create(), dup;
	struct vmbus_msg_offer offers[TF_MAX_OFFERS], o;
	struct guid cls;
	unsigned n;

	assert_int_equal(vmbus_server_add_device(x->f->srv, e2), 0);
	/* Same instance GUID twice is refused. */
	dup = *e2;
	assert_int_equal(vmbus_server_add_device(x->f->srv, &dup), -EEXIST);
	tf_connect(x->f);
	tf_expect_none(x->f, 20); /* nothing before REQUESTOFFERS */
	n = tf_request_offers(x->f, offers);
	assert_int_equal(n, 2);
	assert_int_equal(guid_parse(VSP_ECHO_CLASS_GUID, &cls), 0);
	for (unsigned i = 0; i < n; i++) {
		assert_true(guid_equal(&offers[i].if_type, &cls));
		assert_true(offers[i].child_relid >= 1 && offers[i].child_relid <= 2047);
		assert_int_equal(offers[i].monitor_allocated, 0);
		assert_int_equal(offers[i].is_dedicated_interrupt, 1);
		assert_int_equal(offers[i].sub_channel_index, 0);
		assert_true(offers[i].connection_id > 4 && offers[i].connection_id < (1u << 24));
	}
	assert_int_not_equal(offers[0].child_relid, offers[1].child_relid);
	assert_int_not_equal(offers[0].connection_id, offers[1].connection_id);
	assert_false(guid_equal(&offers[0].if_instance, &offers[1].if_instance));
	/* Hot-add after enumeration: offered at once. */
	assert_int_equal(vmbus_server_add_device(x->f->srv, e3), 0);
	tf_expect(x->f, VMBUS_MSG_OFFERCHANNEL, &o);
	assert_true(guid_equal(&o.if_instance, &e3->instance_id));
	assert_int_not_equal(o.child_relid, offers[0].child_relid);
	assert_int_not_equal(o.child_relid, offers[1].child_relid);
	/* The devices outlive the server: free them after teardown. */
	tf_free(x->f);
	x->f = tf_new();
	vsp_echo_destroy(e2);
	vsp_echo_destroy(e3);
	assert_int_equal(vmbus_server_add_device(x->f->srv, x->echo), 0);
}

/* ---- GPADLs ---- */

static void test_gpadl(void **state)
{
	struct fx *x = *state;
	struct tf *f = x->f;
	struct vmbus_msg_offer o;
	uint64_t pfns[200];
	uint64_t base;
	uint8_t msg[240];

	connect_echo(x, &o);
	base = tf_alloc(f, 200) / 4096;
	for (unsigned i = 0; i < 200; i++)
		pfns[i] = base + (i * 7) % 200; /* scattered order */
	/* 200 PFNs: header + 7 bodies. */
	assert_int_equal(tf_gpadl_pfns(f, o.child_relid, 0x100, pfns, 200, 200 * 4096), 0);
	/* Duplicate handle. */
	assert_int_not_equal(tf_gpadl_pfns(f, o.child_relid, 0x100, pfns, 3, 3 * 4096), 0);
	/* A PFN outside RAM, in the middle of a body. */
	pfns[100] = T_RAM / 4096 + 5;
	assert_int_not_equal(tf_gpadl_pfns(f, o.child_relid, 0x101, pfns, 200, 200 * 4096), 0);
	pfns[100] = (1ull << 60);
	assert_int_not_equal(tf_gpadl_pfns(f, o.child_relid, 0x101, pfns, 200, 200 * 4096), 0);
	pfns[100] = base;
	/* byte_count that needs more PFNs than sent (overflowing count). */
	assert_int_not_equal(tf_gpadl_pfns(f, o.child_relid, 0x102, pfns, 2, 0xFFFFFFFFu), 0);
	/* byte_count that needs fewer PFNs than range_buflen announces. */
	assert_int_not_equal(tf_gpadl_pfns(f, o.child_relid, 0x103, pfns, 4, 4096), 0);
	/* Unknown relid. */
	assert_int_not_equal(tf_gpadl_pfns(f, 999, 0x104, pfns, 2, 8192), 0);
	/* Inconsistent headers: zero ranges, odd buflen, more data than buflen. */
	{
		struct vmbus_msg_gpadl_header h = {.hdr.msgtype = VMBUS_MSG_GPADL_HEADER,
						   .child_relid = o.child_relid,
						   .gpadl = 0x105};
		struct vmbus_msg_gpadl_created c;

		memset(msg, 0, sizeof(msg));
		h.range_buflen = 16;
		h.rangecount = 0;
		memcpy(msg, &h, sizeof(h));
		tf_post(f, msg, 36);
		tf_expect(f, VMBUS_MSG_GPADL_CREATED, &c);
		assert_int_not_equal(c.creation_status, 0);
		h.rangecount = 1;
		h.range_buflen = 20;
		memcpy(msg, &h, sizeof(h));
		tf_post(f, msg, 40);
		tf_expect(f, VMBUS_MSG_GPADL_CREATED, &c);
		assert_int_not_equal(c.creation_status, 0);
		h.range_buflen = 16;
		memcpy(msg, &h, sizeof(h));
		tf_post(f, msg, 44);
		tf_expect(f, VMBUS_MSG_GPADL_CREATED, &c);
		assert_int_not_equal(c.creation_status, 0);
		/* byte_offset >= 4096 */
		h.range_buflen = 16;
		memcpy(msg, &h, sizeof(h));
		memcpy(msg + 20, &(struct vmbus_gpa_range){.byte_count = 1, .byte_offset = 4096},
		       8);
		memcpy(msg + 28, &base, 8);
		tf_post(f, msg, 36);
		tf_expect(f, VMBUS_MSG_GPADL_CREATED, &c);
		assert_int_not_equal(c.creation_status, 0);
		/* Two ranges with unaligned offsets: valid. */
		h.range_buflen = 40;
		h.rangecount = 2;
		memcpy(msg, &h, sizeof(h));
		memcpy(msg + 20, &(struct vmbus_gpa_range){.byte_count = 5000, .byte_offset = 100},
		       8);
		memcpy(msg + 28, &base, 8);
		memcpy(msg + 36, &base, 8);
		memcpy(msg + 44, &(struct vmbus_gpa_range){.byte_count = 10, .byte_offset = 9}, 8);
		memcpy(msg + 52, &base, 8);
		tf_post(f, msg, 60);
		tf_expect(f, VMBUS_MSG_GPADL_CREATED, &c);
		assert_int_equal(c.creation_status, 0);
		tf_gpadl_teardown(f, o.child_relid, 0x105, true);
	}
	/* A body that overruns the announced size fails the GPADL; later bodies are dropped. */
	{
		struct vmbus_msg_gpadl_header h = {.hdr.msgtype = VMBUS_MSG_GPADL_HEADER,
						   .child_relid = o.child_relid,
						   .gpadl = 0x106,
						   .range_buflen = 8 + 8 * 30,
						   .rangecount = 1};
		struct vmbus_msg_gpadl_body b = {.hdr.msgtype = VMBUS_MSG_GPADL_BODY,
						 .gpadl = 0x106};
		struct vmbus_msg_gpadl_created c;

		memcpy(msg, &h, sizeof(h));
		memcpy(msg + 20, &(struct vmbus_gpa_range){.byte_count = 30 * 4096}, 8);
		memcpy(msg + 28, pfns, 8 * 26);
		tf_post(f, msg, 28 + 8 * 26);
		tf_expect_none(f, 20);
		memcpy(msg, &b, sizeof(b));
		memcpy(msg + 16, pfns, 8 * 28);
		tf_post(f, msg, 16 + 8 * 28);
		tf_expect(f, VMBUS_MSG_GPADL_CREATED, &c);
		assert_int_equal(c.gpadl, 0x106);
		assert_int_not_equal(c.creation_status, 0);
		tf_post(f, msg, 16 + 8 * 2);
		tf_expect_none(f, 20);
	}
	/* Teardown: unknown handle is dropped; a good one answers. */
	tf_gpadl_teardown(f, o.child_relid, 0x999, false);
	tf_expect_none(f, 20);
	tf_gpadl_teardown(f, o.child_relid, 0x100, true);
	tf_gpadl_teardown(f, o.child_relid, 0x100, false);
	tf_expect_none(f, 20);
}

static void test_gpadl_limit(void **state)
{
	struct fx *x = *state;
	struct tf *f = x->f;
	struct vmbus_msg_offer o;
	uint64_t pfn;

	connect_echo(x, &o);
	pfn = tf_alloc(f, 1) / 4096;
	for (unsigned i = 0; i < VMBUS_MAX_GPADLS; i++)
		assert_int_equal(tf_gpadl_pfns(f, o.child_relid, 0x1000 + i, &pfn, 1, 4096), 0);
	assert_int_equal(tf_gpadl_pfns(f, o.child_relid, 0x9000, &pfn, 1, 4096),
			 VMBUS_STATUS_INSUFFICIENT_RESOURCES);
	tf_gpadl_teardown(f, o.child_relid, 0x1000, true);
	assert_int_equal(tf_gpadl_pfns(f, o.child_relid, 0x9000, &pfn, 1, 4096), 0);
}

/* ---- echo traffic ---- */

#define WINDOW 24

struct pending_pkt {
	uint64_t id;
	uint32_t len;
	uint8_t data[4000];
};

static void test_echo_inband(void **state)
{
	struct fx *x = *state;
	struct tf *f = x->f;
	static struct pending_pkt q[WINDOW];
	unsigned head = 0, tail = 0, sent = 0, got = 0, sig0;
	struct vmbus_msg_offer o;
	struct gchan c;
	static uint8_t buf[8192];

	connect_echo(x, &o);
	assert_int_equal(gchan_open(f, &c, &o, 8, 8, 0), 0);
	sig0 = f->nsignals;
	while (got < 1000) {
		if (sent < 1000 && sent - got < WINDOW) {
			struct pending_pkt *p = &q[tail % WINDOW];

			p->id = 1000 + sent;
			p->len = 1 + rnd() % 4000;
			fill_rand(p->data, p->len);
			if (gchan_write(f, &c, VMBUS_PKT_DATA_INBAND, 1, p->id, NULL, 0, p->data,
					p->len) == 0) {
				tail++;
				sent++;
				continue;
			}
		}
		{
			uint32_t n = gchan_read_wait(f, &c, buf, sizeof(buf), 2000);
			struct vmbus_pkt_desc d;
			struct pending_pkt *p = &q[head % WINDOW];

			assert_true(n > 0);
			memcpy(&d, buf, 16);
			assert_int_equal(d.type, VMBUS_PKT_DATA_INBAND);
			assert_int_equal(d.offset8, 2);
			assert_int_equal(d.trans_id, p->id);
			/* The payload comes back as the ring carried it: padded to 8. */
			assert_int_equal(n - 16, ALIGN_UP(p->len, 8u));
			assert_memory_equal(buf + 16, p->data, p->len);
			head++;
			got++;
		}
	}
	/* Informational: how often the host had its mask down when the guest wrote. */
	print_message("# 1000 echoes: %u guest->host signals\n", f->nsignals - sig0);
	/* The host signalled us (SIEF bit relid on VP 0) at least once. */
	assert_true(tf_sief_wait(f, 0, c.relid, 2000));
	assert_true(__atomic_load_n(&f->nirq[0], __ATOMIC_SEQ_CST) > 0);
	gchan_close(f, &c);
}

/* Builds a GPA-direct packet body (reserved, range_count, one range) for buf at gpa. */
static uint32_t gpa_direct_hdr(uint8_t *hdr, const uint64_t *page_gpas, uint32_t off, uint32_t len)
{
	uint32_t npfn = DIV_ROUND_UP(off + len, 4096u), rc = 1, zero = 0;
	struct vmbus_gpa_range rg = {.byte_count = len, .byte_offset = off};

	memcpy(hdr, &zero, 4);
	memcpy(hdr + 4, &rc, 4);
	memcpy(hdr + 8, &rg, 8);
	for (uint32_t i = 0; i < npfn; i++) {
		uint64_t pfn = page_gpas[i] / 4096;

		memcpy(hdr + 16 + 8 * i, &pfn, 8);
	}
	return 16 + 8 * npfn; /* header bytes after the descriptor (multiple of 8) */
}

static void test_echo_gpa_direct(void **state)
{
	struct fx *x = *state;
	struct tf *f = x->f;
	struct vmbus_msg_offer o;
	struct gchan c;
	uint64_t pages[8], area;
	static uint8_t want[8 * 4096], got[8 * 4096], buf[8192];
	uint8_t hdr[16 + 8 * 8];

	connect_echo(x, &o);
	assert_int_equal(gchan_open(f, &c, &o, 16, 8, 0), 0);
	area = tf_alloc(f, 16);
	/* Pages out of order, so guest-contiguous data is not host-contiguous. */
	for (unsigned i = 0; i < 8; i++)
		pages[i] = area + (uint64_t)((i * 5) % 16) * 4096;
	for (unsigned it = 0; it < 300; it++) {
		uint32_t off = rnd() % 4096, len = 1 + rnd() % (7 * 4096 - off), hl, have = 0;

		fill_rand(want, len);
		for (uint32_t done = 0; done < len;) {
			uint32_t pg = (off + done) / 4096, in = (off + done) % 4096;
			uint32_t n = MIN(len - done, 4096 - in);

			memcpy(tf_ptr(f, pages[pg] + in, n), want + done, n);
			done += n;
		}
		hl = gpa_direct_hdr(hdr, pages, off, len);
		while (gchan_write(f, &c, VMBUS_PKT_DATA_USING_GPA_DIRECT, 1, 5000 + it, hdr, hl,
				   NULL, 0) == -EAGAIN)
			tf_sleep_us(50);
		while (have < len) {
			uint32_t n = gchan_read_wait(f, &c, buf, sizeof(buf), 2000);
			struct vmbus_pkt_desc d;

			assert_true(n > 16);
			assert_true(n <= VMBUS_DEFAULT_MAX_PKT_SIZE);
			memcpy(&d, buf, 16);
			assert_int_equal(d.type, VMBUS_PKT_DATA_INBAND);
			assert_int_equal(d.trans_id, 5000 + it);
			n = MIN(n - 16, len - have); /* last chunk padded */
			memcpy(got + have, buf + 16, n);
			have += n;
		}
		assert_memory_equal(got, want, len);
	}
	gchan_close(f, &c);
}

/* A guest that stops reading: the host backlogs, then catches up through pending_send_sz. */
static void test_backlog(void **state)
{
	struct fx *x = *state;
	struct tf *f = x->f;
	struct vmbus_msg_offer o;
	struct gchan c;
	static uint8_t data[16][3000], buf[8192];

	connect_echo(x, &o);
	assert_int_equal(gchan_open(f, &c, &o, 16, 4, 0), 0); /* 12 KiB host→guest */
	for (unsigned i = 0; i < 16; i++) {
		fill_rand(data[i], 3000);
		assert_int_equal(
			gchan_write(f, &c, VMBUS_PKT_DATA_INBAND, 0, i, NULL, 0, data[i], 3000), 0);
	}
	/* Host waits for room: pending_send_sz set on the host→guest ring. */
	for (unsigned i = 0; i < 2000; i++) {
		if (__atomic_load_n(&c.in.ctrl->pending_send_sz, __ATOMIC_SEQ_CST))
			break;
		tf_sleep_us(1000);
	}
	assert_int_not_equal(__atomic_load_n(&c.in.ctrl->pending_send_sz, __ATOMIC_SEQ_CST), 0);
	for (unsigned i = 0; i < 16; i++) {
		uint32_t n = gchan_read_wait(f, &c, buf, sizeof(buf), 2000);
		struct vmbus_pkt_desc d;

		assert_int_equal(n, 16 + 3000);
		memcpy(&d, buf, 16);
		assert_int_equal(d.trans_id, i);
		assert_memory_equal(buf + 16, data[i], 3000);
	}
	gchan_close(f, &c);
}

static void echo_once(struct tf *f, struct gchan *c, uint64_t id)
{
	uint8_t buf[256], p[40];
	struct vmbus_pkt_desc d;

	fill_rand(p, sizeof(p));
	assert_int_equal(gchan_write(f, c, VMBUS_PKT_DATA_INBAND, 0, id, NULL, 0, p, sizeof(p)), 0);
	assert_int_equal(gchan_read_wait(f, c, buf, sizeof(buf), 2000), 16 + 40);
	memcpy(&d, buf, 16);
	assert_int_equal(d.trans_id, id);
	assert_memory_equal(buf + 16, p, sizeof(p));
}

static void test_close_reopen(void **state)
{
	struct fx *x = *state;
	struct tf *f = x->f;
	struct vmbus_msg_offer o;
	struct vmbus_msg_relid cl = {.hdr.msgtype = VMBUS_MSG_CLOSECHANNEL};
	struct gchan c;

	connect_echo(x, &o);
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(gchan_open(f, &c, &o, 4, 4, 0), 0);
		echo_once(f, &c, 77 + i);
		/* A second open of an open channel fails. */
		{
			struct gchan c2;

			assert_int_not_equal(gchan_open(f, &c2, &o, 4, 4, 0), 0);
			tf_gpadl_teardown(f, c2.relid, c2.gpadl, true);
		}
		gchan_close(f, &c);
	}
	/* Teardown of the ring GPADL while open: answered when the channel closes. */
	assert_int_equal(gchan_open(f, &c, &o, 4, 4, 0), 0);
	tf_gpadl_teardown(f, c.relid, c.gpadl, false);
	tf_expect_none(f, 30);
	echo_once(f, &c, 5);
	cl.child_relid = c.relid;
	tf_post(f, &cl, sizeof(cl));
	tf_expect0(f, VMBUS_MSG_GPADL_TORNDOWN);
	/* Closing a closed channel: dropped. */
	tf_post(f, &cl, sizeof(cl));
	tf_expect_none(f, 20);
}

static void test_rescind_reoffer(void **state)
{
	struct fx *x = *state;
	struct tf *f = x->f;
	struct vmbus_msg_offer o, o2;
	struct vmbus_msg_relid m;
	struct gchan c;

	connect_echo(x, &o);
	assert_int_equal(gchan_open(f, &c, &o, 4, 4, 0), 0);
	echo_once(f, &c, 1);
	assert_int_equal(vmbus_server_rescind(f->srv, x->echo), 0);
	tf_expect(f, VMBUS_MSG_RESCIND_CHANNELOFFER, &m);
	assert_int_equal(m.child_relid, o.child_relid);
	/* The guest closes (ignored: already closed) and does not tear the GPADL down. */
	m.hdr.msgtype = VMBUS_MSG_CLOSECHANNEL;
	tf_post(f, &m, sizeof(m));
	tf_expect_none(f, 20);
	/* Re-offer before the release: a different relid. */
	assert_int_equal(vmbus_server_reoffer(f->srv, x->echo), 0);
	tf_expect(f, VMBUS_MSG_OFFERCHANNEL, &o2);
	assert_int_not_equal(o2.child_relid, o.child_relid);
	assert_true(guid_equal(&o2.if_instance, &x->echo->instance_id));
	m.hdr.msgtype = VMBUS_MSG_RELID_RELEASED;
	tf_post(f, &m, sizeof(m));
	tf_expect_none(f, 20);
	/* A second release, or one for a live channel, is dropped. */
	tf_post(f, &m, sizeof(m));
	m.child_relid = o2.child_relid;
	tf_post(f, &m, sizeof(m));
	tf_expect_none(f, 20);
	assert_int_equal(gchan_open(f, &c, &o2, 4, 4, 0), 0);
	echo_once(f, &c, 2);
	/* Rescind + release, then a re-offer may reuse the relid. */
	assert_int_equal(vmbus_server_rescind(f->srv, x->echo), 0);
	tf_expect(f, VMBUS_MSG_RESCIND_CHANNELOFFER, &m);
	m.hdr.msgtype = VMBUS_MSG_RELID_RELEASED;
	tf_post(f, &m, sizeof(m));
	assert_int_equal(vmbus_server_reoffer(f->srv, x->echo), 0);
	tf_expect(f, VMBUS_MSG_OFFERCHANNEL, &o2);
	assert_int_equal(gchan_open(f, &c, &o2, 4, 4, 0), 0);
	echo_once(f, &c, 3);
	gchan_close(f, &c);
}

static void test_unload_reinitiate(void **state)
{
	struct fx *x = *state;
	struct tf *f = x->f;
	struct vmbus_msg_offer o;
	struct vmbus_msg_hdr u = {.msgtype = VMBUS_MSG_UNLOAD};
	struct gchan c;

	for (unsigned round = 0; round < 3; round++) {
		connect_echo(x, &o);
		assert_int_equal(gchan_open(f, &c, &o, 4, 4, 0), 0);
		echo_once(f, &c, round);
		if (round == 1) {
			/* A new INITIATE_CONTACT alone resets too (kexec). */
			continue;
		}
		tf_post(f, &u, sizeof(u));
		tf_expect0(f, VMBUS_MSG_UNLOAD_RESPONSE);
		assert_int_equal(vmbus_server_version(f->srv), 0);
	}
	/* Host reset (VM reboot): everything gone without a message. */
	vmbus_server_reset(f->srv);
	assert_int_equal(vmbus_server_version(f->srv), 0);
	tf_expect_none(f, 20);
	connect_echo(x, &o);
	assert_int_equal(gchan_open(f, &c, &o, 4, 4, 0), 0);
	echo_once(f, &c, 9);
	gchan_close(f, &c);
}

static void test_modify(void **state)
{
	struct fx *x = *state;
	struct tf *f = x->f;
	struct vmbus_msg_offer o;
	struct vmbus_msg_modify m = {.hdr.msgtype = VMBUS_MSG_MODIFYCHANNEL};
	struct vmbus_msg_modify_response r;
	struct gchan c;
	unsigned irq1;

	connect_echo(x, &o);
	assert_int_equal(gchan_open(f, &c, &o, 4, 4, 0), 0);
	m.child_relid = c.relid;
	m.target_vp = 1;
	tf_post(f, &m, sizeof(m));
	tf_expect(f, VMBUS_MSG_MODIFYCHANNEL_RESPONSE, &r);
	assert_int_equal(r.child_relid, c.relid);
	assert_int_equal(r.status, 0);
	tf_sief_take(f, 0, c.relid);
	tf_sief_take(f, 1, c.relid);
	irq1 = __atomic_load_n(&f->nirq[1], __ATOMIC_SEQ_CST);
	echo_once(f, &c, 1);
	assert_true(tf_sief_wait(f, 1, c.relid, 2000));
	assert_false(tf_sief_take(f, 0, c.relid));
	for (unsigned i = 0; i < 2000 && __atomic_load_n(&f->nirq[1], __ATOMIC_SEQ_CST) == irq1;
	     i++)
		tf_sleep_us(1000);
	assert_true(__atomic_load_n(&f->nirq[1], __ATOMIC_SEQ_CST) > irq1);
	/* Bad VP or relid: non-zero status. */
	m.target_vp = 9;
	tf_post(f, &m, sizeof(m));
	tf_expect(f, VMBUS_MSG_MODIFYCHANNEL_RESPONSE, &r);
	assert_int_not_equal(r.status, 0);
	m.child_relid = 1234;
	m.target_vp = 0;
	tf_post(f, &m, sizeof(m));
	tf_expect(f, VMBUS_MSG_MODIFYCHANNEL_RESPONSE, &r);
	assert_int_not_equal(r.status, 0);
	gchan_close(f, &c);
	/* Below 5.3 there is no response. */
	assert_int_equal(tf_initiate(f, 0x40001, 0), 1);
	m.child_relid = 1;
	tf_post(f, &m, sizeof(m));
	tf_expect_none(f, 30);
}

/* ---- sub-channels: a device that offers two when the primary gets a packet (as storvsc) ---- */

static int sub_packet(struct vmbus_device *dev, struct vmbus_chan *chan,
		      const struct vmbus_pkt *pkt)
{
	uint8_t idx = (uint8_t)vmbus_chan_index(chan);

	if (idx == 0 && vmbus_device_offer_subchannels(dev, 2) != 2)
		return -EPROTO;
	return vmbus_chan_send_inband(chan, pkt->trans_id, &idx, 1, false);
}

static const struct vmbus_device_ops sub_ops = {.packet = sub_packet};

static void test_subchannels(void **state)
{
	struct fx *x = *state;
	struct tf *f = x->f;
	struct vmbus_device dev = {.ops = &sub_ops, .name = "sub", .max_subchannels = 4};
	struct vmbus_msg_offer offers[TF_MAX_OFFERS], prim, subs[2];
	struct vmbus_msg_relid m;
	struct gchan c, sc[2];
	uint8_t buf[64], p = 0;
	unsigned n;

	guid_generate(&dev.instance_id);
	guid_generate(&dev.class_id);
	assert_int_equal(vmbus_server_add_device(f->srv, &dev), 0);
	/* Not connected: refused. */
	assert_int_equal(vmbus_device_offer_subchannels(&dev, 1), -ENOTCONN);
	tf_connect(f);
	n = tf_request_offers(f, offers);
	assert_int_equal(n, 2);
	prim = guid_equal(&offers[0].if_instance, &dev.instance_id) ? offers[0] : offers[1];
	assert_int_equal(gchan_open(f, &c, &prim, 4, 4, 0), 0);
	assert_int_equal(gchan_write(f, &c, VMBUS_PKT_DATA_INBAND, 0, 1, NULL, 0, &p, 1), 0);
	assert_int_equal(gchan_read_wait(f, &c, buf, sizeof(buf), 2000), 24);
	assert_int_equal(buf[16], 0);
	for (unsigned i = 0; i < 2; i++) {
		tf_expect(f, VMBUS_MSG_OFFERCHANNEL, &subs[i]);
		assert_int_equal(subs[i].sub_channel_index, i + 1);
		assert_true(guid_equal(&subs[i].if_instance, &dev.instance_id));
		assert_true(guid_equal(&subs[i].if_type, &dev.class_id));
		assert_int_not_equal(subs[i].child_relid, prim.child_relid);
	}
	for (unsigned i = 0; i < 2; i++) {
		assert_int_equal(gchan_open(f, &sc[i], &subs[i], 4, 4, 1), 0);
		assert_int_equal(
			gchan_write(f, &sc[i], VMBUS_PKT_DATA_INBAND, 0, 1, NULL, 0, &p, 1), 0);
		assert_int_equal(gchan_read_wait(f, &sc[i], buf, sizeof(buf), 2000), 24);
		assert_int_equal(buf[16], i + 1);
	}
	/* Guest closes the sub-channels, then the primary: the sub-channels are rescinded. */
	for (unsigned i = 0; i < 2; i++)
		gchan_close(f, &sc[i]);
	m.hdr.msgtype = VMBUS_MSG_CLOSECHANNEL;
	m.child_relid = c.relid;
	tf_post(f, &m, sizeof(m));
	for (unsigned i = 0; i < 2; i++) {
		tf_expect(f, VMBUS_MSG_RESCIND_CHANNELOFFER, &m);
		assert_int_equal(m.child_relid, subs[1 - i].child_relid); /* highest index first */
		m.hdr.msgtype = VMBUS_MSG_RELID_RELEASED;
		tf_post(f, &m, sizeof(m));
	}
	tf_gpadl_teardown(f, c.relid, c.gpadl, true);
	tf_expect_none(f, 20);
	/* Reopen: offered again. */
	assert_int_equal(gchan_open(f, &c, &prim, 4, 4, 0), 0);
	assert_int_equal(gchan_write(f, &c, VMBUS_PKT_DATA_INBAND, 0, 1, NULL, 0, &p, 1), 0);
	assert_int_equal(gchan_read_wait(f, &c, buf, sizeof(buf), 2000), 24);
	tf_expect(f, VMBUS_MSG_OFFERCHANNEL, &subs[0]);
	tf_expect(f, VMBUS_MSG_OFFERCHANNEL, &subs[1]);
	/* Rescinded sub-channels that are open are closed by the server (guest left them). */
	assert_int_equal(gchan_open(f, &sc[0], &subs[0], 4, 4, 1), 0);
	m.hdr.msgtype = VMBUS_MSG_CLOSECHANNEL;
	m.child_relid = c.relid;
	tf_post(f, &m, sizeof(m));
	tf_expect0(f, VMBUS_MSG_RESCIND_CHANNELOFFER);
	tf_expect0(f, VMBUS_MSG_RESCIND_CHANNELOFFER);
	tf_gpadl_teardown(f, c.relid, c.gpadl, true);
	/* Server before the stack device. */
	tf_free(x->f);
	x->f = tf_new();
	assert_int_equal(vmbus_server_add_device(x->f->srv, x->echo), 0);
}

/* ---- bursts: pkt->more and batch_end (a device batches a burst's work until it ends) ---- */

struct burst_rec {
	uint8_t n, more[31];
};

static int burst_packet(struct vmbus_device *dev, struct vmbus_chan *chan,
			const struct vmbus_pkt *pkt)
{
	struct burst_rec *b = dev->priv;

	(void)chan;
	if (b->n < ARRAY_SIZE(b->more))
		b->more[b->n++] = pkt->more;
	/* A payload of 0xBB plays a large transfer: the piece ends after it. */
	return pkt->payload_len && pkt->payload[0] == 0xBB ? VMBUS_PKT_END_PIECE : 0;
}

/* One reply per burst: how many packets it had and what more said for each. */
static void burst_end(struct vmbus_device *dev, struct vmbus_chan *chan)
{
	struct burst_rec *b = dev->priv;

	assert_int_equal(vmbus_chan_send_inband(chan, 7, b, 1u + b->n, false), 0);
	b->n = 0;
}

/*
 * The guest writes count packets while the host cannot look (interrupt mask set), then signals:
 * one burst. Packet heavy (count: none) carries 0xBB.
 */
static void burst_send(struct tf *f, struct gchan *c, unsigned count, unsigned heavy)
{
	__atomic_store_n(&c->out.ctrl->interrupt_mask, 1, __ATOMIC_SEQ_CST);
	for (unsigned i = 0; i < count; i++) {
		uint8_t v = i == heavy ? 0xBB : 0;

		assert_int_equal(gchan_write(f, c, VMBUS_PKT_DATA_INBAND, 0, i, NULL, 0, &v, 1), 0);
	}
	__atomic_store_n(&c->out.ctrl->interrupt_mask, 0, __ATOMIC_SEQ_CST);
	assert_int_equal(tf_signal(f, 0, c->conn_id), HV_STATUS_SUCCESS);
}

static const struct vmbus_device_ops burst_ops = {.packet = burst_packet, .batch_end = burst_end};

static void test_batch_end(void **state)
{
	struct fx *x = *state;
	struct tf *f = x->f;
	struct burst_rec rec = {0};
	struct vmbus_device dev = {.ops = &burst_ops, .name = "burst", .priv = &rec};
	struct vmbus_msg_offer offers[TF_MAX_OFFERS], o;
	struct gchan c;
	uint8_t buf[64], p = 0;
	unsigned n;

	guid_generate(&dev.instance_id);
	guid_generate(&dev.class_id);
	assert_int_equal(vmbus_server_add_device(f->srv, &dev), 0);
	tf_connect(f);
	n = tf_request_offers(f, offers);
	assert_int_equal(n, 2);
	o = guid_equal(&offers[0].if_instance, &dev.instance_id) ? offers[0] : offers[1];
	assert_int_equal(gchan_open(f, &c, &o, 4, 4, 0), 0);
	/* Four packets in the ring before the host looks: one burst, more = 1, 1, 1, 0. */
	burst_send(f, &c, 4, 4);
	assert_int_equal(gchan_read_wait(f, &c, buf, sizeof(buf), 2000), 24);
	assert_memory_equal(buf + 16, ((uint8_t[]){4, 1, 1, 1, 0}), 5);
	/* A long burst comes in pieces of 16 (the guest gets answers while the rest runs). */
	burst_send(f, &c, 20, 20);
	assert_int_equal(gchan_read_wait(f, &c, buf, sizeof(buf), 2000), 40);
	assert_int_equal(buf[16], 16);
	for (unsigned i = 0; i < 16; i++)
		assert_int_equal(buf[17 + i], 1);
	assert_int_equal(gchan_read_wait(f, &c, buf, sizeof(buf), 2000), 24);
	assert_memory_equal(buf + 16, ((uint8_t[]){4, 1, 1, 1, 0}), 5);
	/* A packet that asks for it (VMBUS_PKT_END_PIECE) ends its piece: 6 with the third one
	 * heavy come as 3 + 3. */
	burst_send(f, &c, 6, 2);
	assert_int_equal(gchan_read_wait(f, &c, buf, sizeof(buf), 2000), 24);
	assert_memory_equal(buf + 16, ((uint8_t[]){3, 1, 1, 1}), 4);
	assert_int_equal(gchan_read_wait(f, &c, buf, sizeof(buf), 2000), 24);
	assert_memory_equal(buf + 16, ((uint8_t[]){3, 1, 1, 0}), 4);
	/* A lone packet is a burst of one. */
	assert_int_equal(gchan_write(f, &c, VMBUS_PKT_DATA_INBAND, 0, 9, NULL, 0, &p, 1), 0);
	assert_int_equal(gchan_read_wait(f, &c, buf, sizeof(buf), 2000), 24);
	assert_memory_equal(buf + 16, ((uint8_t[]){1, 0}), 2);
	assert_int_equal(gchan_read(f, &c, buf, sizeof(buf)), 0);
	gchan_close(f, &c);
	/* The device goes before the stack variables it points to. */
	tf_free(x->f);
	x->f = tf_new();
	assert_int_equal(vmbus_server_add_device(x->f->srv, x->echo), 0);
}

/* ---- device open callback: refusal, and sub-channels offered from open() ---- */

static int picky_open(struct vmbus_device *dev, struct vmbus_chan *chan, const uint8_t *ud)
{
	if (ud[0] == 0xEE)
		return -EINVAL;
	if (vmbus_chan_index(chan) == 0 && ud[0] == 0x5C)
		return vmbus_device_offer_subchannels(dev, 1) == 1 ? 0 : -EIO;
	return 0;
}

static int picky_packet(struct vmbus_device *dev, struct vmbus_chan *chan,
			const struct vmbus_pkt *pkt)
{
	(void)dev;
	return vmbus_chan_send_completion(chan, pkt->trans_id, NULL, 0);
}

static const struct vmbus_device_ops picky_ops = {.open = picky_open, .packet = picky_packet};

static void test_device_open(void **state)
{
	struct fx *x = *state;
	struct tf *f = x->f;
	struct vmbus_device dev = {.ops = &picky_ops, .name = "picky", .max_subchannels = 1};
	struct vmbus_msg_offer offers[TF_MAX_OFFERS], prim, sub;
	struct vmbus_msg_open m = {.hdr.msgtype = VMBUS_MSG_OPENCHANNEL};
	struct vmbus_msg_open_result res;
	uint64_t pfns[8], base;
	struct gchan c;
	uint8_t buf[64];
	struct vmbus_pkt_desc d;

	guid_generate(&dev.instance_id);
	assert_int_equal(vmbus_server_add_device(f->srv, &dev), 0);
	tf_connect(f);
	assert_int_equal(tf_request_offers(f, offers), 2);
	prim = guid_equal(&offers[0].if_instance, &dev.instance_id) ? offers[0] : offers[1];
	base = tf_alloc(f, 8) / 4096;
	for (unsigned i = 0; i < 8; i++)
		pfns[i] = base + i;
	assert_int_equal(tf_gpadl_pfns(f, prim.child_relid, 0x42, pfns, 8, 8 * 4096), 0);
	m.child_relid = prim.child_relid;
	m.openid = 3;
	m.ringbuffer_gpadl = 0x42;
	m.downstream_pageoffset = 4;
	/* The device refuses: non-zero status, the GPADL is free again. */
	m.user_data[0] = 0xEE;
	tf_post(f, &m, sizeof(m));
	tf_expect(f, VMBUS_MSG_OPENCHANNEL_RESULT, &res);
	assert_int_equal(res.openid, 3);
	assert_int_not_equal(res.status, 0);
	/* Sub-channel offered from open(): the offer comes before the open result. */
	m.user_data[0] = 0x5C;
	tf_post(f, &m, sizeof(m));
	tf_expect(f, VMBUS_MSG_OFFERCHANNEL, &sub);
	assert_int_equal(sub.sub_channel_index, 1);
	tf_expect(f, VMBUS_MSG_OPENCHANNEL_RESULT, &res);
	assert_int_equal(res.status, 0);
	assert_int_equal(gchan_open(f, &c, &sub, 4, 4, 1), 0);
	assert_int_equal(gchan_write(f, &c, VMBUS_PKT_DATA_INBAND, 1, 0xABC, NULL, 0, buf, 8), 0);
	assert_int_equal(gchan_read_wait(f, &c, buf, sizeof(buf), 2000), 16);
	memcpy(&d, buf, 16);
	assert_int_equal(d.type, VMBUS_PKT_COMP);
	assert_int_equal(d.trans_id, 0xABC);
	/* Host rescind of the device: the open sub-channel goes first, then the primary. */
	assert_int_equal(vmbus_server_rescind(f->srv, &dev), 0);
	{
		struct vmbus_msg_relid r1, r2;

		tf_expect(f, VMBUS_MSG_RESCIND_CHANNELOFFER, &r1);
		tf_expect(f, VMBUS_MSG_RESCIND_CHANNELOFFER, &r2);
		assert_int_equal(r1.child_relid, sub.child_relid);
		assert_int_equal(r2.child_relid, prim.child_relid);
	}
	assert_int_equal(vmbus_device_offer_subchannels(&dev, 1), -ENOTCONN);
	tf_free(x->f);
	x->f = tf_new();
	assert_int_equal(vmbus_server_add_device(x->f->srv, x->echo), 0);
}

/* ---- outbox: more replies than the SynIC queue holds ---- */

static void test_outbox(void **state)
{
	struct fx *x = *state;
	struct tf *f = x->f;
	struct vmbus_msg_offer o;
	struct vmbus_msg_gpadl_teardown t = {.hdr.msgtype = VMBUS_MSG_GPADL_TEARDOWN};
	struct vmbus_msg_gpadl_created c;
	uint64_t pfn;
	uint8_t msg[40];
	unsigned n = 0;
	uint16_t st;

	connect_echo(x, &o);
	pfn = tf_alloc(f, 1) / 4096;
	/* Slot + SynIC queue + outbox fill up; then the guest is told to retry (status 19). */
	for (;;) {
		struct vmbus_msg_gpadl_header h = {.hdr.msgtype = VMBUS_MSG_GPADL_HEADER,
						   .child_relid = o.child_relid,
						   .gpadl = 0x5000 + n,
						   .range_buflen = 16,
						   .rangecount = 1};

		memcpy(msg, &h, sizeof(h));
		memcpy(msg + 20, &(struct vmbus_gpa_range){.byte_count = 4096}, 8);
		memcpy(msg + 28, &pfn, 8);
		st = tf_post_conn(f, 0, VMBUS_MSG_CONN_ID, msg, 36);
		if (st != HV_STATUS_SUCCESS)
			break;
		n++;
		assert_true(n < 3000);
	}
	assert_int_equal(st, HV_STATUS_INSUFFICIENT_BUFFERS);
	assert_int_equal(n, 1 + HV_SYNIC_QUEUE_MAX + 1024);
	for (unsigned i = 0; i < n; i++) {
		tf_expect(f, VMBUS_MSG_GPADL_CREATED, &c);
		assert_int_equal(c.gpadl, 0x5000 + i);
		assert_int_equal(c.creation_status, 0);
	}
	tf_expect_none(f, 20);
	t.child_relid = o.child_relid;
	t.gpadl = 0x5000;
	tf_post(f, &t, sizeof(t));
	tf_expect0(f, VMBUS_MSG_GPADL_TORNDOWN);
}

/* ---- malformed input ---- */

static void test_malformed_messages(void **state)
{
	struct fx *x = *state;
	struct tf *f = x->f;
	static const struct {
		uint32_t type, min;
	} types[] = {
		{VMBUS_MSG_INITIATE_CONTACT, 40}, {VMBUS_MSG_OPENCHANNEL, 148},
		{VMBUS_MSG_CLOSECHANNEL, 12},	  {VMBUS_MSG_GPADL_HEADER, 20},
		{VMBUS_MSG_GPADL_BODY, 16},	  {VMBUS_MSG_GPADL_TEARDOWN, 16},
		{VMBUS_MSG_RELID_RELEASED, 12},	  {VMBUS_MSG_MODIFYCHANNEL, 16},
	};
	struct vmbus_msg_offer o;
	struct vmbus_msg_open op = {.hdr.msgtype = VMBUS_MSG_OPENCHANNEL};
	struct vmbus_msg_open_result res;
	uint8_t msg[240];

	connect_echo(x, &o);
	memset(msg, 0, sizeof(msg));
	/* Truncated messages of every guest→host type: dropped, no reply. */
	for (unsigned i = 0; i < ARRAY_SIZE(types); i++)
		for (uint32_t sz = 0; sz < types[i].min; sz++) {
			((struct vmbus_msg_hdr *)msg)->msgtype = types[i].type;
			tf_post(f, msg, sz);
		}
	tf_expect_none(f, 20);
	assert_int_equal(vmbus_server_version(f->srv), VMBUS_VERSION_MAX);
	/* Unknown types and host→guest types. */
	for (uint32_t t = 0; t < 40; t++) {
		if (t == VMBUS_MSG_INITIATE_CONTACT || t == VMBUS_MSG_UNLOAD ||
		    t == VMBUS_MSG_REQUESTOFFERS || t == VMBUS_MSG_OPENCHANNEL ||
		    t == VMBUS_MSG_GPADL_HEADER || t == VMBUS_MSG_MODIFYCHANNEL)
			continue;
		memset(msg, 0xFF, sizeof(msg));
		((struct vmbus_msg_hdr *)msg)->msgtype = t;
		tf_post(f, msg, 240);
	}
	((struct vmbus_msg_hdr *)msg)->msgtype = 0xFFFFFFFF;
	tf_post(f, msg, 240);
	tf_expect_none(f, 20);
	/* Other SynIC message types on the port are dropped too. */
	{
		struct hv_input_post_message in = {
			.connection_id = 1, .message_type = 7, .payload_size = 8};
		struct hv_hypercall_regs r = {.rcx = HVCALL_POST_MESSAGE, .rdx = T_INPUT(0)};

		((struct vmbus_msg_hdr *)in.payload)->msgtype = VMBUS_MSG_REQUESTOFFERS;
		assert_int_equal(guest_mem_write(&f->gm, T_INPUT(0), &in, sizeof(in)), 0);
		assert_int_equal((uint16_t)hv_hypercall(f->part, 0, &r), 0);
		tf_expect_none(f, 20);
	}
	/* OPENCHANNEL with bad relids, unknown GPADL, bad split, bad VP: failure replies. */
	{
		static const uint32_t relids[] = {0, 2048, 5000, 0xFFFFFFFF, 77};

		for (unsigned i = 0; i < ARRAY_SIZE(relids); i++) {
			op.child_relid = relids[i];
			op.openid = relids[i];
			tf_post(f, &op, sizeof(op));
			tf_expect(f, VMBUS_MSG_OPENCHANNEL_RESULT, &res);
			assert_int_equal(res.child_relid, relids[i]);
			assert_int_not_equal(res.status, 0);
		}
	}
	{
		uint64_t base = tf_alloc(f, 8) / 4096, pfns[8];

		for (unsigned i = 0; i < 8; i++)
			pfns[i] = base + i;
		assert_int_equal(tf_gpadl_pfns(f, o.child_relid, 0x77, pfns, 8, 8 * 4096), 0);
		op.child_relid = o.child_relid;
		op.openid = 1;
		op.ringbuffer_gpadl = 0x78; /* unknown */
		op.downstream_pageoffset = 4;
		tf_post(f, &op, sizeof(op));
		tf_expect(f, VMBUS_MSG_OPENCHANNEL_RESULT, &res);
		assert_int_not_equal(res.status, 0);
		op.ringbuffer_gpadl = 0x77;
		for (uint32_t d = 0; d <= 9; d += 8) { /* 0 and 8 of 8 pages */
			op.downstream_pageoffset = d;
			tf_post(f, &op, sizeof(op));
			tf_expect(f, VMBUS_MSG_OPENCHANNEL_RESULT, &res);
			assert_int_not_equal(res.status, 0);
		}
		op.downstream_pageoffset = 4;
		op.target_vp = T_NVPS;
		tf_post(f, &op, sizeof(op));
		tf_expect(f, VMBUS_MSG_OPENCHANNEL_RESULT, &res);
		assert_int_not_equal(res.status, 0);
		/* Ring control page with a read_index beyond the ring: refused at open. */
		*(uint32_t *)tf_ptr(f, base * 4096 + 4, 4) = 0x100000;
		op.target_vp = 0;
		tf_post(f, &op, sizeof(op));
		tf_expect(f, VMBUS_MSG_OPENCHANNEL_RESULT, &res);
		assert_int_not_equal(res.status, 0);
		*(uint32_t *)tf_ptr(f, base * 4096 + 4, 4) = 0;
		tf_gpadl_teardown(f, o.child_relid, 0x77, true);
	}
}

/* A channel whose guest corrupts the ring is reset; close and re-open bring it back. */
static void corrupt_and_recover(struct fx *x, struct vmbus_msg_offer *o, int how)
{
	struct tf *f = x->f;
	struct gchan c;
	uint8_t buf[64], hdr[24];
	struct vmbus_pkt_desc d;
	uint32_t wr;

	assert_int_equal(gchan_open(f, &c, o, 4, 4, 0), 0);
	echo_once(f, &c, 1);
	wr = __atomic_load_n(&c.out.ctrl->write_index, __ATOMIC_SEQ_CST);
	switch (how) {
	case 0: /* write_index out of range */
		__atomic_store_n(&c.out.ctrl->write_index, c.out.size + 8, __ATOMIC_SEQ_CST);
		break;
	case 1: /* offset8 > len8 */
		d = (struct vmbus_pkt_desc){.type = 6, .offset8 = 9, .len8 = 4, .trans_id = 1};
		gring_copy_in(&c.out, wr, &d, 16);
		__atomic_store_n(&c.out.ctrl->write_index, (wr + 40) % c.out.size,
				 __ATOMIC_SEQ_CST);
		break;
	case 2: /* zero-length packet */
		d = (struct vmbus_pkt_desc){.type = 6, .offset8 = 2, .len8 = 0};
		gring_copy_in(&c.out, wr, &d, 16);
		__atomic_store_n(&c.out.ctrl->write_index, (wr + 24) % c.out.size,
				 __ATOMIC_SEQ_CST);
		break;
	case 3: /* packet longer than the data written */
		d = (struct vmbus_pkt_desc){.type = 6, .offset8 = 2, .len8 = 1000};
		gring_copy_in(&c.out, wr, &d, 16);
		__atomic_store_n(&c.out.ctrl->write_index, (wr + 32) % c.out.size,
				 __ATOMIC_SEQ_CST);
		break;
	case 4: { /* GPA-direct with a page outside guest RAM: the echo device resets */
		uint64_t pg[1] = {T_RAM + 4096};
		uint32_t hl = gpa_direct_hdr(hdr, pg, 0, 100);

		assert_int_equal(
			gchan_write(f, &c, VMBUS_PKT_DATA_USING_GPA_DIRECT, 0, 9, hdr, hl, NULL, 0),
			0);
		break;
	}
	}
	if (how != 4)
		assert_int_equal(tf_signal(f, 0, c.conn_id), 0);
	/* Dead: the corruption stays in place, so whenever the host looks it stops again. */
	tf_sleep_us(20000);
	assert_int_equal(tf_signal(f, 0, c.conn_id), 0);
	assert_int_equal(gchan_read_wait(f, &c, buf, sizeof(buf), 50), 0);
	gchan_close(f, &c);
	assert_int_equal(gchan_open(f, &c, o, 4, 4, 0), 0);
	echo_once(f, &c, 3);
	gchan_close(f, &c);
}

static void test_malformed_rings(void **state)
{
	struct fx *x = *state;
	struct vmbus_msg_offer o;

	connect_echo(x, &o);
	for (int how = 0; how < 5; how++)
		corrupt_and_recover(x, &o, how);
}

/* ---- vmbus_pkt_gpa_direct_iov on crafted packets ---- */

static void test_gpa_direct_iov(void **state)
{
	struct fx *x = *state;
	struct guest_mem *gm = &x->f->gm;
	uint8_t raw[256];
	struct vmbus_pkt pkt = {.type = VMBUS_PKT_DATA_USING_GPA_DIRECT, .data = raw};
	struct iovec iov[8];
	uint64_t total, pfn = 0x300;
	uint32_t rc;
	struct vmbus_gpa_range rg;

	memset(raw, 0, sizeof(raw));
	/* Two ranges: 3 contiguous pages at offset 100 (one iovec), then 10 bytes. */
	rc = 2;
	memcpy(raw + 20, &rc, 4);
	rg = (struct vmbus_gpa_range){.byte_count = 8000, .byte_offset = 100};
	memcpy(raw + 24, &rg, 8);
	for (unsigned i = 0; i < 2; i++) {
		uint64_t p = pfn + i;

		memcpy(raw + 32 + 8 * i, &p, 8);
	}
	rg = (struct vmbus_gpa_range){.byte_count = 10, .byte_offset = 4000};
	memcpy(raw + 48, &rg, 8);
	memcpy(raw + 56, &pfn, 8);
	pkt.hdr_len = 64;
	pkt.len = 64;
	assert_int_equal(vmbus_pkt_gpa_direct_iov(gm, &pkt, iov, 8, 1 << 20, &total), 2);
	assert_int_equal(total, 8010);
	assert_int_equal(iov[0].iov_len, 8000);
	assert_ptr_equal(iov[0].iov_base, guest_mem_ptr(gm, pfn * 4096 + 100, 1));
	assert_int_equal(iov[1].iov_len, 10);
	/* Limits. */
	assert_int_equal(vmbus_pkt_gpa_direct_iov(gm, &pkt, iov, 1, 1 << 20, &total), -E2BIG);
	assert_int_equal(vmbus_pkt_gpa_direct_iov(gm, &pkt, iov, 8, 8009, &total), -E2BIG);
	/* Ranges beyond the header, bad offsets, PFNs outside RAM, wrong type. */
	pkt.hdr_len = 56;
	assert_int_equal(vmbus_pkt_gpa_direct_iov(gm, &pkt, iov, 8, 1 << 20, &total), -EPROTO);
	pkt.hdr_len = 64;
	pkt.len = 48;
	assert_int_equal(vmbus_pkt_gpa_direct_iov(gm, &pkt, iov, 8, 1 << 20, &total), -EPROTO);
	pkt.len = 64;
	rg.byte_offset = 4096;
	memcpy(raw + 48, &rg, 8);
	assert_int_equal(vmbus_pkt_gpa_direct_iov(gm, &pkt, iov, 8, 1 << 20, &total), -EPROTO);
	rg.byte_offset = 0;
	rg.byte_count = 0xFFFFFFFF;
	memcpy(raw + 48, &rg, 8);
	assert_int_equal(vmbus_pkt_gpa_direct_iov(gm, &pkt, iov, 8, UINT64_MAX, &total), -EPROTO);
	rg.byte_count = 10;
	memcpy(raw + 48, &rg, 8);
	pfn = T_RAM / 4096;
	memcpy(raw + 56, &pfn, 8);
	assert_int_equal(vmbus_pkt_gpa_direct_iov(gm, &pkt, iov, 8, 1 << 20, &total), -EFAULT);
	pfn = UINT64_MAX;
	memcpy(raw + 56, &pfn, 8);
	assert_int_equal(vmbus_pkt_gpa_direct_iov(gm, &pkt, iov, 8, 1 << 20, &total), -EFAULT);
	pfn = 0x300;
	memcpy(raw + 56, &pfn, 8);
	rc = 0xFFFFFFFF;
	memcpy(raw + 20, &rc, 4);
	assert_int_equal(vmbus_pkt_gpa_direct_iov(gm, &pkt, iov, 8, 1 << 20, &total), -EPROTO);
	pkt.type = VMBUS_PKT_DATA_INBAND;
	assert_int_equal(vmbus_pkt_gpa_direct_iov(gm, &pkt, iov, 8, 1 << 20, &total), -EPROTO);
	pkt.type = VMBUS_PKT_DATA_USING_GPA_DIRECT;
	pkt.hdr_len = 16;
	assert_int_equal(vmbus_pkt_gpa_direct_iov(gm, &pkt, iov, 8, 1 << 20, &total), -EPROTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_versions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_offers_and_hot_add, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gpadl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gpadl_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_echo_inband, setup, teardown),
		cmocka_unit_test_setup_teardown(test_echo_gpa_direct, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backlog, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rescind_reoffer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unload_reinitiate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_modify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_subchannels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_device_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outbox, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_messages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_rings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gpa_direct_iov, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
