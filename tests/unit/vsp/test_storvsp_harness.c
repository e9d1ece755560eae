// SPDX-License-Identifier: GPL-2.0-only
/*
 * storvsp behind the real VMBus channel server, driven by the guest-side VMBus client
 * (guest/vmbus) in the in-process harness: the storvsc handshake exactly as Linux 6.1 does it
 * (init trans_id, 64-byte packets, every reply an 80-byte COMP), sub-channels offered and
 * opened, pattern writes from unaligned multi-page GPA-direct buffers on every channel and
 * LUN kind read back equal, 32 requests in flight with out-of-order completions, and malformed
 * requests over the real ring. The storvsc half here is a small test client written from the
 * spec (vmbus-devices.md §2), not from storvsp.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disk/disk.h"
#include "harness.h"
#include "hv/winhv.h"
#include "hvplat.h"
#include "vmbus/vmbc.h"
#include "vmbus/vmbus.h"
#include "vsp/storvsp.h"

#define MIB (1024u * 1024u)
#define RING_DATA (124u * 1024u) /* 128 KiB with the header page */
#define INIT_ID 0xfffffffffffffffdull
#define NSUB 2u

static const uint8_t scsi_class[16] = {0xd9, 0x63, 0x61, 0xba, 0xa1, 0x04, 0x29, 0x4d,
				       0xb6, 0x05, 0x72, 0xe2, 0xff, 0xb1, 0xdc, 0x7f};

/* The guest's view of the wire structs, from the spec tables (§2.2, §2.3). */
struct g_srb {
	uint16_t length;
	uint8_t srb_status, scsi_status, port, path, target, lun;
	uint8_t cdb_length, sense_len, data_in, reserved;
	uint32_t xfer;
	uint8_t cdb_sense[20];
	uint8_t win8[16];
} __attribute__((packed));

struct g_vstor {
	uint32_t op, flags, status;
	union {
		struct g_srb srb;
		uint8_t raw[52];
	};
} __attribute__((packed));

_Static_assert(sizeof(struct g_vstor) == 64, "64-byte vstor packet");

struct fx {
	struct harness *h;
	struct vmbus_server *srv;
	struct vmbus_device *dev;
	struct winhv w;
	struct vmbc c;
	struct vmbc_channel *ch[1 + NSUB];
	unsigned nch;
	char dir[64];
	unsigned nluns;
	char path[STORVSP_MAX_LUNS][128];
	uint8_t buf[8192];
};

static unsigned setup_nluns = 2;

static int setup(void **state)
{
	struct harness_config hc = {.nvps = 2};
	struct fx *f = calloc(1, sizeof(*f));
	struct storvsp_lun_config luns[STORVSP_MAX_LUNS] = {0};
	struct storvsp_config cfg = {0};
	struct disk_create_opts o = {0};
	const char *why = NULL;

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/viridian-storvsp-h-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	f->nluns = setup_nluns;
	for (unsigned i = 0; i < f->nluns; i++) {
		bool vhdx = i % 2 == 1;

		snprintf(f->path[i], sizeof(f->path[i]), "%s/d%u.%s", f->dir, i,
			 vhdx ? "vhdx" : "img");
		o.format = vhdx ? DISK_FORMAT_VHDX : DISK_FORMAT_RAW;
		o.type = vhdx ? DISK_TYPE_DYNAMIC : DISK_TYPE_FIXED;
		o.size = (i < 2 ? 16 : 1) * MIB;
		o.block_size = vhdx ? MIB : 0;
		if (disk_create(f->path[i], &o))
			return -1;
		luns[i].path = f->path[i];
	}
	cfg.luns = luns;
	cfg.nluns = f->nluns;
	cfg.max_subchannels = NSUB;
	f->h = harness_create(&hc);
	if (!f->h)
		return -1;
	f->srv = vmbus_server_create(harness_part(f->h), harness_gm(f->h));
	f->dev = vsp_storvsp_create(&cfg);
	if (!f->srv || !f->dev || vmbus_server_add_device(f->srv, f->dev))
		return -1;
	harness_bind(f->h, 0);
	if (harness_guest_boot(f->h, &f->w, true, &why)) {
		fprintf(stderr, "boot: %s\n", why);
		return -1;
	}
	if (vmbc_init(&f->c, &f->w))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	vmbus_server_destroy(f->srv);
	vsp_storvsp_destroy(f->dev);
	harness_unbind();
	harness_destroy(f->h);
	for (unsigned i = 0; i < f->nluns; i++)
		unlink(f->path[i]);
	rmdir(f->dir);
	free(f);
	return 0;
}

static int recv_wait(struct fx *f, struct vmbc_channel *ch, struct vmbc_pkt *p)
{
	uint64_t end = hvplat_now_ns() + 5000000000ull;

	for (;;) {
		int r = vmbc_recv(ch, f->buf, sizeof(f->buf), p);

		if (r != VMBC_EAGAIN)
			return r;
		if (hvplat_now_ns() > end)
			return VMBC_ETIME;
		hvplat_wait();
		vmbc_poll(&f->c);
	}
}

/* Every storvsp reply: a COMP of exactly 16 + 64 bytes, operation COMPLETE_IO. */
static struct g_vstor reply_wait(struct fx *f, struct vmbc_channel *ch, uint64_t *id)
{
	struct vmbc_pkt p;
	struct g_vstor v;

	assert_int_equal(recv_wait(f, ch, &p), 0);
	assert_int_equal(p.type, VMBC_PKT_COMP);
	assert_int_equal(p.len, 80);
	assert_int_equal(p.data_offset, 16);
	memcpy(&v, f->buf + 16, 64);
	assert_int_equal(v.op, 1);
	*id = p.trans_id;
	return v;
}

static uint32_t init_op(struct fx *f, uint32_t op, uint16_t arg, struct g_vstor *out)
{
	struct g_vstor v = {0};
	uint64_t id;

	v.op = op;
	v.flags = 1;
	memcpy(v.raw, &arg, 2);
	assert_int_equal(vmbc_send_inband(&f->c, f->ch[0], INIT_ID, &v, 64, true), 0);
	v = reply_wait(f, f->ch[0], &id);
	assert_true(id == INIT_ID);
	if (out)
		*out = v;
	return v.status;
}

/* Linux's storvsc_connect_to_vsp + storvsc_channel_init + handle_multichannel_storage. */
static void storvsc_probe(struct fx *f)
{
	static const uint8_t user[24];
	struct g_vstor v;
	uint16_t max_ch;
	uint32_t flags, max_xfer, st = 0;
	uint64_t end;

	assert_int_equal(vmbc_connect(&f->c, 0), 0);
	assert_int_equal(vmbc_request_offers(&f->c), 0);
	f->ch[0] = vmbc_find(&f->c, scsi_class, 0);
	assert_non_null(f->ch[0]);
	assert_int_equal(vmbc_open(&f->c, f->ch[0], RING_DATA, RING_DATA, user, 24, 0, &st), 0);
	f->nch = 1;
	assert_int_equal(init_op(f, 7, 0, NULL), 0);
	assert_int_equal(init_op(f, 9, 0x0602, &v), 0);
	assert_int_equal(init_op(f, 10, 0, &v), 0);
	memcpy(&max_ch, v.raw + 4, 2);
	memcpy(&flags, v.raw + 8, 4);
	memcpy(&max_xfer, v.raw + 12, 4);
	assert_int_equal(max_ch, NSUB);
	assert_int_equal(flags & 1, 1);
	assert_true(max_xfer && max_xfer % 4096 == 0);
	assert_int_equal(init_op(f, 8, 0, NULL), 0);
	/* one sub-channel per other CPU, capped by max_channel_cnt */
	assert_int_equal(init_op(f, 13, NSUB, NULL), 0);
	end = hvplat_now_ns() + 5000000000ull;
	while (vmbc_channel_count(&f->c) < 1 + NSUB && hvplat_now_ns() < end) {
		hvplat_wait();
		vmbc_poll(&f->c);
	}
	for (unsigned i = 1; i <= NSUB; i++) {
		f->ch[i] = vmbc_find(&f->c, scsi_class, i);
		assert_non_null(f->ch[i]);
		assert_int_not_equal(f->ch[i]->offer.sub_channel_index, 0);
		assert_int_equal(vmbc_open(&f->c, f->ch[i], RING_DATA, RING_DATA, user, 24, 0, &st),
				 0);
		f->nch++;
	}
}

/* Sends one SRB; data (if len) at va/gpa as one GPA-direct range. */
static int srb_send(struct fx *f, struct vmbc_channel *ch, uint64_t id, uint8_t lun,
		    const uint8_t *cdb, uint8_t cdb_len, uint8_t data_in, uint64_t gpa,
		    uint32_t len)
{
	struct g_vstor v = {0};
	uint64_t pfns[300];
	struct vmbc_gpa_range rg = {len, (uint32_t)(gpa & 4095), pfns};
	int r;

	v.op = 3;
	v.flags = 1;
	v.srb.length = 52;
	v.srb.lun = lun;
	v.srb.cdb_length = cdb_len;
	v.srb.sense_len = 20;
	v.srb.data_in = data_in;
	v.srb.xfer = len;
	memcpy(v.srb.cdb_sense, cdb, cdb_len);
	for (uint32_t i = 0; i < ((gpa & 4095) + len + 4095) / 4096 && i < 300; i++)
		pfns[i] = gpa / 4096 + i;
	do {
		if (len)
			r = vmbc_send_gpa_direct(ch, id, VMBC_PKT_FLAG_COMPLETION, &rg, 1, &v, 64);
		else
			r = vmbc_send(ch, VMBC_PKT_INBAND, VMBC_PKT_FLAG_COMPLETION, id, NULL, 0,
				      &v, 64);
		if (r == VMBC_EAGAIN)
			hvplat_wait();
	} while (r == VMBC_EAGAIN);
	return r;
}

static void rw10(uint8_t *c, bool write, uint32_t lba, uint16_t n)
{
	memset(c, 0, 10);
	c[0] = write ? 0x2a : 0x28;
	c[2] = (uint8_t)(lba >> 24);
	c[3] = (uint8_t)(lba >> 16);
	c[4] = (uint8_t)(lba >> 8);
	c[5] = (uint8_t)lba;
	c[7] = (uint8_t)(n >> 8);
	c[8] = (uint8_t)n;
}

static void test_probe_and_scan(void **state)
{
	struct fx *f = *state;
	uint8_t inq[6] = {0x12, 0, 0, 0, 36, 0}, rl[12] = {0xa0, [8] = 0x10};
	struct hvplat_pages pg;
	struct g_vstor v;
	uint64_t id;
	uint8_t *b;

	storvsc_probe(f);
	assert_int_equal(hvplat_pages_alloc(2, &pg), 0);
	b = pg.va;
	/* scan: INQUIRY LUN 0, REPORT LUNS, INQUIRY of an absent LUN */
	assert_int_equal(srb_send(f, f->ch[0], 1, 0, inq, 6, 1, pg.gpa, 36), 0);
	v = reply_wait(f, f->ch[0], &id);
	assert_int_equal(id, 1);
	assert_int_equal(v.srb.srb_status, 1);
	assert_int_equal(v.srb.xfer, 36);
	assert_memory_equal(b + 8, "Msft    Virtual Disk    ", 24);
	assert_int_equal(srb_send(f, f->ch[0], 2, 0, rl, 12, 1, pg.gpa, 4096), 0);
	v = reply_wait(f, f->ch[0], &id);
	assert_int_equal(v.srb.xfer, 8 + 2 * 8);
	assert_int_equal(b[3], 16);
	assert_int_equal(srb_send(f, f->ch[0], 3, 9, inq, 6, 1, pg.gpa, 36), 0);
	v = reply_wait(f, f->ch[0], &id);
	assert_int_equal(b[0], 0x7f);
	hvplat_pages_free(&pg);
}

/* Pattern writes from unaligned multi-page buffers on every channel and both LUNs. */
static void test_io_every_channel(void **state)
{
	struct fx *f = *state;
	struct hvplat_pages wp, rp;
	const uint32_t len = 48 * 1024 + 1536;
	uint64_t id;

	storvsc_probe(f);
	assert_int_equal(hvplat_pages_alloc(16, &wp), 0);
	assert_int_equal(hvplat_pages_alloc(16, &rp), 0);
	for (unsigned c = 0; c < f->nch; c++) {
		for (uint8_t lun = 0; lun < 2; lun++) {
			uint32_t woff = 0x123 + 8 * c, roff = 0xe00 - 8 * lun;
			uint8_t *w = (uint8_t *)wp.va + woff, *r = (uint8_t *)rp.va + roff;
			uint32_t lba = MIB / 512 - 5 + c * 200;
			uint8_t cdb[10];
			struct g_vstor v;

			for (uint32_t k = 0; k < len; k++)
				w[k] = (uint8_t)(k * 13 + c * 7 + lun + (k >> 9));
			rw10(cdb, true, lba, len / 512);
			assert_int_equal(
				srb_send(f, f->ch[c], 100 + c, lun, cdb, 10, 0, wp.gpa + woff, len),
				0);
			v = reply_wait(f, f->ch[c], &id);
			assert_int_equal(id, 100 + c);
			assert_int_equal(v.srb.srb_status, 1);
			assert_int_equal(v.srb.xfer, len);
			memset(r, 0, len);
			rw10(cdb, false, lba, len / 512);
			assert_int_equal(
				srb_send(f, f->ch[c], 200 + c, lun, cdb, 10, 1, rp.gpa + roff, len),
				0);
			v = reply_wait(f, f->ch[c], &id);
			assert_int_equal(v.srb.srb_status, 1);
			assert_int_equal(v.srb.xfer, len);
			assert_memory_equal(w, r, len);
		}
	}
	hvplat_pages_free(&wp);
	hvplat_pages_free(&rp);
}

/* 32 requests in flight on one channel; every id answered once. */
static void test_queue_depth_32(void **state)
{
	struct fx *f = *state;
	struct hvplat_pages pg;
	bool seen[32] = {0};
	uint64_t id;

	storvsc_probe(f);
	assert_int_equal(hvplat_pages_alloc(32, &pg), 0);
	for (unsigned round = 0; round < 4; round++) {
		for (unsigned i = 0; i < 32; i++) {
			uint8_t cdb[10];

			rw10(cdb, i & 1, (i * 97 + round * 13) % 4000 * 8, 8);
			assert_int_equal(srb_send(f, f->ch[0], 1000 + i, i % 2, cdb, 10,
						  (i & 1) ? 0 : 1, pg.gpa + i * 4096ull, 4096),
					 0);
		}
		memset(seen, 0, sizeof(seen));
		for (unsigned i = 0; i < 32; i++) {
			struct g_vstor v = reply_wait(f, f->ch[0], &id);

			assert_true(id >= 1000 && id < 1032);
			assert_false(seen[id - 1000]);
			seen[id - 1000] = true;
			assert_int_equal(v.srb.srb_status, 1);
			assert_int_equal(v.srb.xfer, 4096);
		}
	}
	hvplat_pages_free(&pg);
}

/* Malformed requests over the real ring get error replies; the channel keeps working. */
static void test_bad_requests(void **state)
{
	struct fx *f = *state;
	struct harness *h = f->h;
	uint64_t ram = harness_gm(h)->ram_size, id;
	uint8_t cdb[16], short_pkt[40] = {3, 0, 0, 0, 1};
	struct hvplat_pages pg;
	struct g_vstor v;

	storvsc_probe(f);
	assert_int_equal(hvplat_pages_alloc(1, &pg), 0);
	/* a 40-byte vstor packet */
	assert_int_equal(vmbc_send(f->ch[0], VMBC_PKT_INBAND, 1, 7, NULL, 0, short_pkt, 40), 0);
	v = reply_wait(f, f->ch[0], &id);
	assert_int_equal(id, 7);
	assert_int_not_equal(v.status, 0);
	/* a buffer past the end of guest RAM */
	rw10(cdb, false, 0, 8);
	assert_int_equal(srb_send(f, f->ch[0], 8, 0, cdb, 10, 1, ram + 4096 * 10, 4096), 0);
	v = reply_wait(f, f->ch[0], &id);
	assert_int_equal(v.srb.srb_status, 0x06);
	assert_int_equal(v.srb.xfer, 0);
	/* CDB length shorter than the opcode */
	memset(cdb, 0, sizeof(cdb));
	cdb[0] = 0x88;
	cdb[13] = 1;
	assert_int_equal(srb_send(f, f->ch[0], 9, 0, cdb, 10, 1, pg.gpa, 512), 0);
	v = reply_wait(f, f->ch[0], &id);
	assert_int_equal(v.srb.srb_status, 0x84);
	assert_int_equal(v.srb.cdb_sense[2], 5);
	/* bad target */
	assert_int_equal(srb_send(f, f->ch[0], 10, 70, cdb, 16, 2, 0, 0), 0);
	v = reply_wait(f, f->ch[0], &id);
	assert_int_equal(v.srb.srb_status, 0x20);
	/* still fine */
	rw10(cdb, false, 0, 8);
	assert_int_equal(srb_send(f, f->ch[0], 11, 0, cdb, 10, 1, pg.gpa, 4096), 0);
	v = reply_wait(f, f->ch[0], &id);
	assert_int_equal(v.srb.srb_status, 1);
	hvplat_pages_free(&pg);
}

/* All 64 LUNs: REPORT LUNS lists them, and I/O reaches each (one queue per LUN per channel). */
static void test_64_luns(void **state)
{
	struct fx *f = *state;
	uint8_t rl[12] = {0xa0, [8] = 0x10}, cdb[10];
	struct hvplat_pages pg;
	struct g_vstor v;
	uint64_t id;

	storvsc_probe(f);
	assert_int_equal(hvplat_pages_alloc(2, &pg), 0);
	assert_int_equal(srb_send(f, f->ch[0], 1, 0, rl, 12, 1, pg.gpa, 4096), 0);
	v = reply_wait(f, f->ch[0], &id);
	assert_int_equal(v.srb.xfer, 8 + 64 * 8);
	for (unsigned c = 0; c < f->nch; c++) {
		for (unsigned lun = 0; lun < f->nluns; lun++) {
			rw10(cdb, lun & 1, 8, 8);
			assert_int_equal(srb_send(f, f->ch[c], 100 + lun, (uint8_t)lun, cdb, 10,
						  (lun & 1) ? 0 : 1, pg.gpa, 4096),
					 0);
			v = reply_wait(f, f->ch[c], &id);
			assert_int_equal(id, 100 + lun);
			assert_int_equal(v.srb.srb_status, 1);
		}
	}
	hvplat_pages_free(&pg);
}

static int setup64(void **state)
{
	int r;

	setup_nluns = STORVSP_MAX_LUNS;
	r = setup(state);
	setup_nluns = 2;
	return r;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_probe_and_scan, setup, teardown),
		cmocka_unit_test_setup_teardown(test_io_every_channel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_depth_32, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_64_luns, setup64, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
