// SPDX-License-Identifier: GPL-2.0-only
/*
 * storvsp's vstor packet handling, driven packet by packet through its vmbus_device ops with
 * the stub channel of vmbus_stub.h (real guest_mem, real images, real blockdev queues): the
 * handshake Linux 6.1 does, LUN scan answers, I/O with GPA-direct buffers at unaligned
 * offsets, out-of-order completions, resets, and malformed packets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "disk/disk.h"
#include "lib/err.h"
#include "lib/util.h"
#include "vid/guest_mem.h"
#include "vsp/scsi.h"
#include "vsp/storvsp.h"
#include "vsp/storvsp_proto.h"

#include "vmbus_stub.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define MIB (1024u * 1024u)
#define RAM (64u * MIB)
#define INIT_ID 0xfffffffffffffffdull

struct env {
	struct guest_mem gm;
	struct vmbus_device *dev;
	struct vmbus_chan *chan;
	char dir[64];
	char path[4][128];
	uint8_t buf[16384] __attribute__((aligned(8)));
};

static struct env *env_new(unsigned max_sub)
{
	struct env *e = calloc(1, sizeof(*e));
	struct storvsp_lun_config luns[3] = {0};
	struct storvsp_config cfg = {0};
	struct disk_create_opts o = {0};

	assert_non_null(e);
	assert_int_equal(guest_mem_init(&e->gm, RAM, 0), 0);
	snprintf(e->dir, sizeof(e->dir), "/tmp/viridian-storvsp-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	/* LUN 0 raw, LUN 1 dynamic VHDX, LUN 2 raw read-only */
	for (int i = 0; i < 3; i++) {
		snprintf(e->path[i], sizeof(e->path[i]), "%s/d%d.%s", e->dir, i,
			 i == 1 ? "vhdx" : "img");
		o.format = i == 1 ? DISK_FORMAT_VHDX : DISK_FORMAT_RAW;
		o.type = i == 1 ? DISK_TYPE_DYNAMIC : DISK_TYPE_FIXED;
		o.size = 8 * MIB;
		o.block_size = i == 1 ? MIB : 0;
		assert_int_equal(disk_create(e->path[i], &o), 0);
		luns[i].path = e->path[i];
		luns[i].read_only = i == 2;
	}
	cfg.luns = luns;
	cfg.nluns = 3;
	cfg.max_subchannels = max_sub;
	e->dev = vsp_storvsp_create(&cfg);
	assert_non_null(e->dev);
	e->chan = calloc(1, sizeof(*e->chan));
	assert_non_null(e->chan);
	e->chan->dev = e->dev;
	e->chan->gm = &e->gm;
	assert_int_equal(e->dev->ops->open(e->dev, e->chan, (uint8_t[120]){0}), 0);
	assert_int_equal(e->chan->max_pkt, 80);
	return e;
}

static void env_free(struct env *e)
{
	e->dev->ops->close(e->dev, e->chan);
	e->dev->ops->reset(e->dev);
	vsp_storvsp_destroy(e->dev);
	for (int i = 0; i < 4; i++)
		if (e->path[i][0])
			unlink(e->path[i]);
	rmdir(e->dir);
	guest_mem_destroy(&e->gm);
	free(e->chan);
	free(e);
}

/* Hands one packet to the device: descriptor, optional GPA-direct range, payload. */
static int deliver(struct env *e, uint16_t type, uint16_t flags, uint64_t id, const void *payload,
		   uint32_t plen, uint64_t gpa, uint32_t dlen)
{
	uint32_t hdr = 16;
	struct vmbus_pkt pkt = {0};
	uint8_t *b = e->buf;
	int ret;

	memset(b, 0, sizeof(e->buf));
	if (type == VMBUS_PKT_DATA_USING_GPA_DIRECT) {
		uint32_t off = (uint32_t)(gpa & 4095), npfn = (off + dlen + 4095) / 4096;
		uint32_t one = 1;

		memcpy(b + 20, &one, 4);
		memcpy(b + 24, &dlen, 4);
		memcpy(b + 28, &off, 4);
		for (uint32_t i = 0; i < npfn; i++) {
			uint64_t pfn = (gpa >> 12) + i;

			memcpy(b + 32 + 8 * i, &pfn, 8);
		}
		hdr = 32 + 8 * npfn;
	}
	memcpy(b + hdr, payload, plen);
	pkt.type = type;
	pkt.flags = flags;
	pkt.trans_id = id;
	pkt.data = b;
	pkt.len = hdr + ALIGN_UP(plen, 8u);
	pkt.hdr_len = hdr;
	pkt.payload = b + hdr;
	pkt.payload_len = pkt.len - hdr;
	ret = e->dev->ops->packet(e->dev, e->chan, &pkt);
	/* One packet per burst, as the server ends it. */
	if (ret >= 0 && e->dev->ops->batch_end)
		e->dev->ops->batch_end(e->dev, e->chan);
	return ret;
}

static const struct stub_reply *find_reply(struct env *e, uint64_t id)
{
	for (unsigned i = 0; i < e->chan->nreplies; i++)
		if (e->chan->replies[i].trans_id == id)
			return &e->chan->replies[i];
	return NULL;
}

/* Waits until a reply with this id exists; checks the rules every reply must follow. */
static struct vstor_packet reply_of(struct env *e, uint64_t id)
{
	const struct stub_reply *r;
	struct vstor_packet p;

	for (int tries = 0; !(r = find_reply(e, id)) && tries < 500; tries++)
		stub_poll(e->chan, 10);
	assert_non_null(r);
	assert_int_equal(r->type, 11);
	assert_int_equal(r->len, 64);
	memcpy(&p, r->data, 64);
	assert_int_equal(p.operation, VSTOR_OP_COMPLETE_IO);
	assert_int_equal(p.flags, 0);
	return p;
}

static struct vstor_packet control(struct env *e, uint32_t op, uint16_t arg, uint64_t id)
{
	struct vstor_packet p = {0};

	p.operation = op;
	p.flags = VSTOR_FLAG_REQUEST_COMPLETION;
	p.version.major_minor = arg; /* same offset as sub_channel_count */
	assert_int_equal(deliver(e, VMBUS_PKT_DATA_INBAND, 1, id, &p, 64, 0, 0), 0);
	return reply_of(e, id);
}

static uint64_t next_id = 1;

static void handshake(struct env *e)
{
	struct vstor_packet r;

	assert_int_equal(control(e, VSTOR_OP_BEGIN_INITIALIZATION, 0, INIT_ID).status, 0);
	e->chan->nreplies = 0;
	r = control(e, VSTOR_OP_QUERY_PROTOCOL_VERSION, 0x0602, INIT_ID);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.version.major_minor, 0x0602);
	e->chan->nreplies = 0;
	r = control(e, VSTOR_OP_QUERY_PROPERTIES, 0, INIT_ID);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.props.max_transfer_bytes, STORVSP_MAX_TRANSFER);
	assert_int_equal(r.props.max_transfer_bytes % 4096, 0);
	e->chan->nreplies = 0;
	assert_int_equal(control(e, VSTOR_OP_END_INITIALIZATION, 0, INIT_ID).status, 0);
	e->chan->nreplies = 0;
}

/* Sends an SRB; data (if dlen) at guest address gpa. Returns its trans_id. */
static uint64_t srb_send(struct env *e, uint8_t lun, const uint8_t *cdb, uint8_t cdb_len,
			 uint8_t data_in, uint64_t gpa, uint32_t dlen)
{
	struct vstor_packet p = {0};
	uint64_t id = next_id++;

	p.operation = VSTOR_OP_EXECUTE_SRB;
	p.flags = VSTOR_FLAG_REQUEST_COMPLETION;
	p.srb.length = sizeof(struct vstor_srb);
	p.srb.lun = lun;
	p.srb.cdb_length = cdb_len;
	p.srb.sense_info_length = 20;
	p.srb.data_in = data_in;
	p.srb.data_transfer_length = dlen;
	p.srb.srb_flags = 0x08;
	memcpy(p.srb.cdb, cdb, cdb_len);
	/* a large transfer asks the server to hand its burst over at once */
	assert_int_equal(deliver(e, dlen ? VMBUS_PKT_DATA_USING_GPA_DIRECT : VMBUS_PKT_DATA_INBAND,
				 1, id, &p, 64, gpa, dlen),
			 dlen >= STORVSP_PIECE_BYTES ? VMBUS_PKT_END_PIECE : 0);
	return id;
}

static struct vstor_packet srb(struct env *e, uint8_t lun, const uint8_t *cdb, uint8_t cdb_len,
			       uint8_t data_in, uint64_t gpa, uint32_t dlen)
{
	return reply_of(e, srb_send(e, lun, cdb, cdb_len, data_in, gpa, dlen));
}

static void rw10(uint8_t *c, bool write, uint32_t lba, uint16_t n, bool fua)
{
	memset(c, 0, 10);
	c[0] = write ? SCSI_OP_WRITE10 : SCSI_OP_READ10;
	c[1] = fua ? 0x08 : 0;
	c[2] = (uint8_t)(lba >> 24);
	c[3] = (uint8_t)(lba >> 16);
	c[4] = (uint8_t)(lba >> 8);
	c[5] = (uint8_t)lba;
	c[7] = (uint8_t)(n >> 8);
	c[8] = (uint8_t)n;
}

static void test_handshake(void **state)
{
	struct env *e = env_new(3);
	struct vstor_packet r;
	uint8_t tur[6] = {0};

	/* out of order: properties and I/O before the handshake */
	r = control(e, VSTOR_OP_QUERY_PROPERTIES, 0, INIT_ID);
	assert_int_equal(r.status, VSTOR_STATUS_INVALID_DEVICE_STATE);
	e->chan->nreplies = 0;
	r = srb(e, 0, tur, 6, VSTOR_DATA_NONE, 0, 0);
	assert_int_not_equal(r.status, 0);
	assert_int_not_equal(r.srb.srb_status, SRB_STATUS_SUCCESS);
	e->chan->nreplies = 0;

	assert_int_equal(control(e, VSTOR_OP_BEGIN_INITIALIZATION, 0, INIT_ID).status, 0);
	/* Linux's order: 6.2 first; older ones refused */
	e->chan->nreplies = 0;
	r = control(e, VSTOR_OP_QUERY_PROTOCOL_VERSION, 0x0402, INIT_ID);
	assert_int_equal(r.status, VSTOR_STATUS_REVISION_MISMATCH);
	e->chan->nreplies = 0;
	r = control(e, VSTOR_OP_QUERY_PROTOCOL_VERSION, 0x0602, INIT_ID);
	assert_int_equal(r.status, 0);
	e->chan->nreplies = 0;
	r = control(e, VSTOR_OP_QUERY_PROPERTIES, 0, INIT_ID);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.props.max_channel_cnt, 3);
	assert_int_equal(r.props.flags & VSTOR_PROP_FLAG_MULTI_CHANNEL, 1);
	e->chan->nreplies = 0;
	assert_int_equal(control(e, VSTOR_OP_END_INITIALIZATION, 0, INIT_ID).status, 0);
	e->chan->nreplies = 0;
	stub_offered = 0;
	r = control(e, VSTOR_OP_CREATE_SUB_CHANNELS, 2, INIT_ID);
	assert_int_equal(r.status, 0);
	assert_int_equal(stub_offered, 2);
	e->chan->nreplies = 0;
	r = control(e, VSTOR_OP_CREATE_SUB_CHANNELS, 9, INIT_ID);
	assert_int_equal(r.status, VSTOR_STATUS_INVALID_PARAMETER);
	e->chan->nreplies = 0;
	/* unknown / host-only operations */
	r = control(e, VSTOR_OP_FCHBA_DATA, 0, INIT_ID);
	assert_int_equal(r.status, VSTOR_STATUS_INVALID_DEVICE_REQUEST);
	e->chan->nreplies = 0;
	r = control(e, 0x1234, 0, INIT_ID);
	assert_int_equal(r.status, VSTOR_STATUS_INVALID_DEVICE_REQUEST);
	e->chan->nreplies = 0;
	/* a reopened primary channel starts over */
	e->dev->ops->close(e->dev, e->chan);
	assert_int_equal(e->dev->ops->open(e->dev, e->chan, (uint8_t[120]){0}), 0);
	r = srb(e, 0, tur, 6, VSTOR_DATA_NONE, 0, 0);
	assert_int_equal(r.status, VSTOR_STATUS_INVALID_DEVICE_STATE);
	e->chan->nreplies = 0;
	handshake(e);
	r = srb(e, 0, tur, 6, VSTOR_DATA_NONE, 0, 0);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.srb.srb_status, SRB_STATUS_SUCCESS);
	env_free(e);
}

/* What the guest's scan sees: three LUNs at 0/0, nothing elsewhere. */
static void test_scan(void **state)
{
	struct env *e = env_new(0);
	uint8_t inq[6] = {SCSI_OP_INQUIRY, 0, 0, 0, 36, 0};
	uint8_t rl[12] = {SCSI_OP_REPORT_LUNS, 0, 0, 0, 0, 0, 0, 0, 0x10, 0};
	uint8_t tur[6] = {0}, rc16[16] = {SCSI_OP_SERVICE_ACTION_IN16, 0x10, [13] = 32};
	uint8_t *g = guest_mem_ptr(&e->gm, 0x10000, 4096);
	struct vstor_packet r;

	handshake(e);
	r = srb(e, 0, inq, 6, VSTOR_DATA_READ, 0x10000, 36);
	assert_int_equal(r.srb.srb_status, SRB_STATUS_SUCCESS);
	assert_int_equal(r.srb.data_transfer_length, 36);
	assert_int_equal(g[0], 0);
	assert_memory_equal(g + 8, "Msft    Virtual Disk", 20);
	/* LUN 5 does not exist: PQ 3 for INQUIRY, INVALID_LUN otherwise */
	r = srb(e, 5, inq, 6, VSTOR_DATA_READ, 0x10000, 36);
	assert_int_equal(r.srb.srb_status, SRB_STATUS_SUCCESS);
	assert_int_equal(g[0], 0x7f);
	r = srb(e, 5, tur, 6, VSTOR_DATA_NONE, 0, 0);
	assert_int_equal(r.srb.srb_status, SRB_STATUS_INVALID_LUN);
	/* REPORT LUNS on target 0 */
	r = srb(e, 0, rl, 12, VSTOR_DATA_READ, 0x10000, 4096);
	assert_int_equal(r.srb.srb_status, SRB_STATUS_SUCCESS);
	assert_int_equal(r.srb.data_transfer_length, 8 + 3 * 8);
	assert_int_equal(g[3], 24);
	assert_int_equal(g[8 + 2 * 8 + 1], 2);
	/* path 1 / target 1: absent, REPORT LUNS empty */
	{
		struct vstor_packet p = {0};
		uint64_t id = next_id++;

		p.operation = VSTOR_OP_EXECUTE_SRB;
		p.srb.path_id = 1;
		p.srb.cdb_length = 6;
		p.srb.data_in = VSTOR_DATA_NONE;
		memcpy(p.srb.cdb, tur, 6);
		deliver(e, VMBUS_PKT_DATA_INBAND, 1, id, &p, 64, 0, 0);
		r = reply_of(e, id);
		assert_int_equal(r.srb.srb_status, SRB_STATUS_INVALID_LUN);
	}
	/* capacity of the VHDX LUN */
	r = srb(e, 1, rc16, 16, VSTOR_DATA_READ, 0x10000, 32);
	assert_int_equal(r.srb.srb_status, SRB_STATUS_SUCCESS);
	assert_int_equal(g[4] << 24 | g[5] << 16 | g[6] << 8 | g[7], 8 * MIB / 512 - 1);
	/* an unsupported VPD page: error with no data (the guest masks INQUIRY errors) */
	inq[1] = 1;
	inq[2] = 0xc0;
	r = srb(e, 0, inq, 6, VSTOR_DATA_READ, 0x10000, 36);
	assert_int_equal(r.srb.srb_status, SRB_STATUS_ERROR | SRB_STATUS_AUTOSENSE_VALID);
	assert_int_equal(r.srb.scsi_status, SCSI_STATUS_CHECK_CONDITION);
	assert_int_equal(r.srb.data_transfer_length, 0);
	assert_int_equal(r.srb.sense_info_length, 18);
	assert_int_equal(r.srb.sense_data[2], SCSI_SENSE_ILLEGAL_REQUEST);
	assert_int_equal(r.srb.sense_data[12], 0x24);
	env_free(e);
}

/* Pattern writes from unaligned multi-page guest buffers on every LUN kind, read back. */
static void test_io(void **state)
{
	struct env *e = env_new(0);
	const uint64_t wgpa = 0x200000 + 0x234, rgpa = 0x400000 + 0x9a8;
	const uint32_t len = 64 * 1024 + 512 * 3;
	uint8_t *w = guest_mem_ptr(&e->gm, wgpa, len), *rd = guest_mem_ptr(&e->gm, rgpa, len);
	uint8_t c[10];
	struct vstor_packet r;

	handshake(e);
	for (uint8_t lun = 0; lun < 2; lun++) {
		/* across the VHDX 1 MiB block boundary */
		uint32_t lba = MIB / 512 - 7;

		for (uint32_t k = 0; k < len; k++)
			w[k] = (uint8_t)(k ^ (k >> 8) ^ lun);
		rw10(c, true, lba, len / 512, lun == 1);
		r = srb(e, lun, c, 10, VSTOR_DATA_WRITE, wgpa, len);
		assert_int_equal(r.status, 0);
		assert_int_equal(r.srb.srb_status, SRB_STATUS_SUCCESS);
		assert_int_equal(r.srb.data_transfer_length, len);
		memset(rd, 0, len);
		rw10(c, false, lba, len / 512, false);
		r = srb(e, lun, c, 10, VSTOR_DATA_READ, rgpa, len);
		assert_int_equal(r.srb.srb_status, SRB_STATUS_SUCCESS);
		assert_int_equal(r.srb.data_transfer_length, len);
		assert_memory_equal(w, rd, len);
	}
	/* 512 KiB each way (the piece ends after each): the data still arrives */
	{
		const uint32_t big = 512 * 1024;
		uint8_t *bw = guest_mem_ptr(&e->gm, 0x800000, big);
		uint8_t *br = guest_mem_ptr(&e->gm, 0x900000, big);

		for (uint32_t k = 0; k < big; k++)
			bw[k] = (uint8_t)(k * 7 + (k >> 12));
		rw10(c, true, 64, big / 512, false);
		r = srb(e, 0, c, 10, VSTOR_DATA_WRITE, 0x800000, big);
		assert_int_equal(r.srb.srb_status, SRB_STATUS_SUCCESS);
		memset(br, 0, big);
		rw10(c, false, 64, big / 512, false);
		r = srb(e, 0, c, 10, VSTOR_DATA_READ, 0x900000, big);
		assert_int_equal(r.srb.srb_status, SRB_STATUS_SUCCESS);
		assert_int_equal(r.srb.data_transfer_length, big);
		assert_memory_equal(bw, br, big);
	}
	/* the read-only LUN refuses writes with DATA PROTECT */
	rw10(c, true, 0, 8, false);
	r = srb(e, 2, c, 10, VSTOR_DATA_WRITE, wgpa, 4096);
	assert_int_equal(r.srb.srb_status, SRB_STATUS_ERROR | SRB_STATUS_AUTOSENSE_VALID);
	assert_int_equal(r.srb.scsi_status, SCSI_STATUS_CHECK_CONDITION);
	assert_int_equal(r.srb.sense_data[2], SCSI_SENSE_DATA_PROTECT);
	assert_int_equal(r.srb.sense_data[12], 0x27);
	/* a sense buffer smaller than ours is respected */
	{
		struct vstor_packet p = {0};
		uint64_t id = next_id++;

		p.operation = VSTOR_OP_EXECUTE_SRB;
		p.srb.lun = 2;
		p.srb.cdb_length = 10;
		p.srb.sense_info_length = 14;
		p.srb.data_in = VSTOR_DATA_WRITE;
		p.srb.data_transfer_length = 4096;
		memcpy(p.srb.cdb, c, 10);
		deliver(e, VMBUS_PKT_DATA_USING_GPA_DIRECT, 1, id, &p, 64, wgpa, 4096);
		r = reply_of(e, id);
		assert_int_equal(r.srb.sense_info_length, 14);
	}
	env_free(e);
}

/* Many requests in flight at once on two LUNs: every one completes exactly once. */
static void test_many_inflight(void **state)
{
	struct env *e = env_new(0);
	enum { N = 300 };
	uint8_t c[10];
	unsigned good = 0;

	handshake(e);
	for (unsigned i = 0; i < N; i++) {
		rw10(c, i & 1, i * 8, 8, false);
		srb_send(e, (uint8_t)(i % 2), c, 10, (i & 1) ? VSTOR_DATA_WRITE : VSTOR_DATA_READ,
			 0x100000 + (uint64_t)i * 4096, 4096);
	}
	for (int tries = 0; e->chan->nreplies < N && tries < 1000; tries++)
		stub_poll(e->chan, 10);
	assert_int_equal(e->chan->nreplies, N);
	for (unsigned i = 0; i < N; i++) {
		struct vstor_packet p;

		memcpy(&p, e->chan->replies[i].data, 64);
		good += p.srb.srb_status == SRB_STATUS_SUCCESS &&
			p.srb.data_transfer_length == 4096;
	}
	assert_int_equal(good, N);
	/* each id once */
	for (unsigned i = 0; i < N; i++)
		for (unsigned j = i + 1; j < N; j++)
			assert_true(e->chan->replies[i].trans_id != e->chan->replies[j].trans_id);
	env_free(e);
}

/* RESET_BUS is answered after the channel's outstanding I/O. */
static void test_reset_drains(void **state)
{
	struct env *e = env_new(0);
	struct vstor_packet p = {0};
	uint8_t c[10];
	uint64_t ids[16];

	handshake(e);
	for (unsigned i = 0; i < 16; i++) {
		rw10(c, false, i * 128, 128, false);
		ids[i] = srb_send(e, 0, c, 10, VSTOR_DATA_READ, 0x100000 + i * 65536ull, 65536);
	}
	p.operation = VSTOR_OP_RESET_BUS;
	p.flags = 1;
	deliver(e, VMBUS_PKT_DATA_INBAND, 1, 0xfffffffffffffffcull, &p, 64, 0, 0);
	p = reply_of(e, 0xfffffffffffffffcull);
	assert_int_equal(p.status, 0);
	/* by the time the reset is answered, all 16 reads are */
	for (unsigned i = 0; i < 16; i++)
		assert_non_null(find_reply(e, ids[i]));
	env_free(e);
}

static void test_bad_packets(void **state)
{
	struct env *e = env_new(0);
	uint8_t c[16], tur[6] = {0};
	struct vstor_packet p, r;
	uint64_t id;

	handshake(e);
	/* short vstor packet: error reply, still 64 bytes */
	memset(&p, 0, sizeof(p));
	p.operation = VSTOR_OP_EXECUTE_SRB;
	id = next_id++;
	deliver(e, VMBUS_PKT_DATA_INBAND, 1, id, &p, 40, 0, 0);
	r = reply_of(e, id);
	assert_int_equal(r.status, VSTOR_STATUS_INVALID_PARAMETER);
	assert_int_equal(r.srb.srb_status, SRB_STATUS_INVALID_REQUEST);
	/* empty payload */
	id = next_id++;
	deliver(e, VMBUS_PKT_DATA_INBAND, 1, id, &p, 0, 0, 0);
	r = reply_of(e, id);
	assert_int_not_equal(r.status, 0);
	/* CDB length lies: 0, 17, shorter than the opcode */
	for (int k = 0; k < 3; k++) {
		static const uint8_t lens[3] = {0, 17, 6};

		rw10(c, false, 0, 1, false);
		c[0] = SCSI_OP_READ16;
		r = srb(e, 0, c, lens[k] > 16 ? 16 : lens[k], VSTOR_DATA_READ, 0x10000, 512);
		if (k == 1) {
			memset(&p, 0, sizeof(p));
			p.operation = VSTOR_OP_EXECUTE_SRB;
			p.srb.cdb_length = 17;
			id = next_id++;
			deliver(e, VMBUS_PKT_DATA_INBAND, 1, id, &p, 64, 0, 0);
			r = reply_of(e, id);
			assert_int_equal(r.srb.srb_status, SRB_STATUS_INVALID_REQUEST);
			continue;
		}
		assert_int_not_equal(r.srb.srb_status, SRB_STATUS_SUCCESS);
	}
	/* data length beyond the buffer the packet describes */
	memset(&p, 0, sizeof(p));
	p.operation = VSTOR_OP_EXECUTE_SRB;
	p.srb.cdb_length = 10;
	p.srb.data_in = VSTOR_DATA_READ;
	p.srb.data_transfer_length = 8192;
	rw10(p.srb.cdb, false, 0, 16, false);
	id = next_id++;
	deliver(e, VMBUS_PKT_DATA_USING_GPA_DIRECT, 1, id, &p, 64, 0x10000, 4096);
	r = reply_of(e, id);
	assert_int_equal(r.srb.srb_status, SRB_STATUS_INVALID_REQUEST);
	assert_int_equal(r.srb.data_transfer_length, 0);
	/* a data length with no buffer at all */
	id = next_id++;
	deliver(e, VMBUS_PKT_DATA_INBAND, 1, id, &p, 64, 0, 0);
	r = reply_of(e, id);
	assert_int_equal(r.srb.srb_status, SRB_STATUS_INVALID_REQUEST);
	/* pages outside guest RAM */
	p.srb.data_transfer_length = 4096;
	rw10(p.srb.cdb, false, 0, 8, false);
	id = next_id++;
	deliver(e, VMBUS_PKT_DATA_USING_GPA_DIRECT, 1, id, &p, 64, RAM - 2048, 4096);
	r = reply_of(e, id);
	assert_int_equal(r.srb.srb_status, SRB_STATUS_INVALID_REQUEST);
	/* beyond the transfer limit */
	p.srb.data_transfer_length = STORVSP_MAX_TRANSFER + 4096;
	id = next_id++;
	deliver(e, VMBUS_PKT_DATA_USING_GPA_DIRECT, 1, id, &p, 64, 0x100000,
		STORVSP_MAX_TRANSFER + 4096);
	r = reply_of(e, id);
	assert_int_equal(r.srb.srb_status, SRB_STATUS_INVALID_REQUEST);
	/* bad data direction */
	p.srb.data_transfer_length = 4096;
	p.srb.data_in = 7;
	id = next_id++;
	deliver(e, VMBUS_PKT_DATA_USING_GPA_DIRECT, 1, id, &p, 64, 0x10000, 4096);
	r = reply_of(e, id);
	assert_int_equal(r.srb.srb_status, SRB_STATUS_INVALID_REQUEST);
	/* bad target / LUN numbers */
	r = srb(e, 200, tur, 6, VSTOR_DATA_NONE, 0, 0);
	assert_int_equal(r.srb.srb_status, SRB_STATUS_INVALID_LUN);
	/* packets of other types are ignored; no completion without the flag */
	e->chan->nreplies = 0;
	memset(&p, 0, sizeof(p));
	p.operation = VSTOR_OP_BEGIN_INITIALIZATION;
	deliver(e, VMBUS_PKT_DATA_USING_XFER_PAGES, 1, 77, &p, 64, 0, 0);
	deliver(e, 11, 0, 78, &p, 64, 0, 0);
	p.operation = VSTOR_OP_EXECUTE_SRB;
	p.srb.cdb_length = 6;
	p.srb.data_in = VSTOR_DATA_NONE;
	deliver(e, VMBUS_PKT_DATA_INBAND, 0, 79, &p, 64, 0, 0);
	stub_poll(e->chan, 10);
	assert_int_equal(e->chan->nreplies, 0);
	/* the channel still works */
	r = srb(e, 0, tur, 6, VSTOR_DATA_NONE, 0, 0);
	assert_int_equal(r.srb.srb_status, SRB_STATUS_SUCCESS);
	env_free(e);
}

/* Closing with I/O in flight: nothing leaks, no reply is attempted afterwards. */
static void test_close_inflight(void **state)
{
	struct env *e = env_new(0);
	uint8_t c[10];

	handshake(e);
	for (unsigned i = 0; i < 64; i++) {
		rw10(c, i & 1, i * 16, 16, false);
		srb_send(e, 1, c, 10, (i & 1) ? VSTOR_DATA_WRITE : VSTOR_DATA_READ,
			 0x100000 + i * 8192ull, 8192);
	}
	env_free(e);
}

/* Hot-add: the LUN appears at once and the guest is told to rescan. */
static void test_hot_add(void **state)
{
	struct env *e = env_new(0);
	struct storvsp_lun_config l = {0};
	struct disk_create_opts o = {.format = DISK_FORMAT_RAW, .size = 4 * MIB};
	uint8_t inq[6] = {SCSI_OP_INQUIRY, 0, 0, 0, 36, 0};
	uint8_t rl[12] = {SCSI_OP_REPORT_LUNS, [8] = 0x10};
	uint8_t *g = guest_mem_ptr(&e->gm, 0x10000, 4096);
	const struct stub_reply *r = NULL;
	struct vstor_packet p;

	handshake(e);
	snprintf(e->path[3], sizeof(e->path[3]), "%s/hot.img", e->dir);
	assert_int_equal(disk_create(e->path[3], &o), 0);
	l.path = e->path[3];
	assert_int_equal(vsp_storvsp_add_lun(e->dev, &l), 3);
	for (int tries = 0; tries < 100 && !r; tries++) {
		stub_poll(e->chan, 10);
		r = find_reply(e, 0);
	}
	assert_non_null(r);
	assert_int_equal(r->type, VMBUS_PKT_DATA_INBAND);
	assert_int_equal(r->len, 64);
	memcpy(&p, r->data, 64);
	assert_int_equal(p.operation, VSTOR_OP_ENUMERATE_BUS);
	p = srb(e, 3, inq, 6, VSTOR_DATA_READ, 0x10000, 36);
	assert_int_equal(p.srb.srb_status, SRB_STATUS_SUCCESS);
	assert_int_equal(g[0], 0);
	p = srb(e, 0, rl, 12, VSTOR_DATA_READ, 0x10000, 4096);
	assert_int_equal(p.srb.data_transfer_length, 8 + 4 * 8);
	/* a bad image is refused and nothing changes */
	l.path = "/nonexistent.img";
	assert_true(vsp_storvsp_add_lun(e->dev, &l) < 0);
	p = srb(e, 4, inq, 6, VSTOR_DATA_READ, 0x10000, 36);
	assert_int_equal(g[0], 0x7f);
	env_free(e);
}

static void test_create_errors(void **state)
{
	struct storvsp_lun_config l = {.path = "/nonexistent/disk.vhdx"};
	struct storvsp_config cfg = {.luns = &l, .nluns = 1};

	assert_null(vsp_storvsp_create(&cfg));
	assert_non_null(strstr(err_msg(), "/nonexistent/disk.vhdx"));
	cfg.nluns = 0;
	assert_null(vsp_storvsp_create(&cfg));
	cfg.nluns = STORVSP_MAX_LUNS + 1;
	assert_null(vsp_storvsp_create(&cfg));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handshake),
		cmocka_unit_test(test_scan),
		cmocka_unit_test(test_io),
		cmocka_unit_test(test_many_inflight),
		cmocka_unit_test(test_reset_drains),
		cmocka_unit_test(test_bad_packets),
		cmocka_unit_test(test_close_inflight),
		cmocka_unit_test(test_create_errors),
		cmocka_unit_test(test_hot_add),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
