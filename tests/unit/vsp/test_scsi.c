// SPDX-License-Identifier: GPL-2.0-only
/* SCSI target over real images (raw, dynamic VHDX) in a temp dir: every command it offers,
 * the answers Linux's sd/scsi scan reads, and the error paths with their sense codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "disk/blockdev.h"
#include "disk/disk.h"
#include "lib/util.h"
#include "vsp/scsi.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MIB (1024u * 1024u)

struct fixture {
	char dir[64];
	char path[128];
	struct blockdev *bd;
	struct blockdev_queue *q;
	struct scsi_disk *d;
	unsigned done;
};

static bool no_inline_reads;

static struct fixture *fixture_new(enum disk_format fmt, uint64_t size, uint32_t lss, bool ro)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct disk_create_opts o = {0};
	struct scsi_disk_config cfg = {0};

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/viridian-scsi-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/disk.%s", f->dir,
		 fmt == DISK_FORMAT_RAW ? "img" : "vhdx");
	o.format = fmt;
	o.type = fmt == DISK_FORMAT_RAW ? DISK_TYPE_FIXED : DISK_TYPE_DYNAMIC;
	o.size = size;
	o.logical_sector_size = lss;
	if (fmt == DISK_FORMAT_VHDX)
		o.block_size = MIB;
	assert_int_equal(disk_create(f->path, &o), 0);
	assert_int_equal(disk_open(f->path, fmt, ro ? DISK_OPEN_RDONLY : 0, &f->bd), 0);
	f->q = blockdev_queue_create(f->bd, 4, BLOCKDEV_ENGINE_AUTO);
	assert_non_null(f->q);
	for (int i = 0; i < 16; i++)
		cfg.id[i] = (uint8_t)(0xa0 + i);
	cfg.max_transfer_bytes = MIB;
	cfg.no_inline_reads = no_inline_reads;
	cfg.unmap_granularity = fmt == DISK_FORMAT_VHDX ? MIB : 0;
	f->d = scsi_disk_create(f->bd, &cfg);
	assert_non_null(f->d);
	return f;
}

static void fixture_free(struct fixture *f)
{
	scsi_disk_destroy(f->d);
	blockdev_queue_destroy(f->q);
	assert_int_equal(blockdev_close(f->bd), 0);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
}

static void req_done(struct scsi_req *req)
{
	struct fixture *f = req->opaque;

	f->done++;
}

/* Runs one command to completion with buffer buf (len bytes, split into iovecs of at most
 * seg bytes, the first one unaligned by a few bytes when seg allows). */
static void run(struct fixture *f, struct scsi_req *req, enum scsi_dir dir, void *buf, uint64_t len,
		size_t seg)
{
	static struct iovec iov[512];
	uint8_t *p = buf;
	int n = 0, ret;

	for (uint64_t off = 0; off < len; n++) {
		size_t l = (size_t)(len - off < seg ? len - off : seg);

		if (off == 0 && seg > 100 && l == seg)
			l -= 100; /* first segment ends off a page boundary */
		assert_true(n < 512);
		iov[n].iov_base = p + off;
		iov[n].iov_len = l;
		off += l;
	}
	req->iov = iov;
	req->iovcnt = n;
	req->buf_len = len;
	req->dir = buf ? dir : SCSI_DIR_NONE;
	req->complete = req_done;
	req->opaque = f;
	f->done = 0;
	ret = scsi_disk_execute(f->d, f->q, req);
	assert_true(ret == 0 || ret == 1);
	if (ret == 1) {
		while (!f->done)
			blockdev_queue_wait(f->q);
		assert_int_equal(f->done, 1);
	}
}

static void cdb(struct scsi_req *req, const uint8_t *c, unsigned len)
{
	memset(req, 0, sizeof(*req));
	memcpy(req->cdb, c, len);
	req->cdb_len = (uint8_t)len;
}

static void assert_sense(const struct scsi_req *req, uint8_t key, uint16_t asc)
{
	assert_int_equal(req->status, SCSI_STATUS_CHECK_CONDITION);
	assert_int_equal(req->sense_len, SCSI_SENSE_LEN);
	assert_int_equal(req->sense[0], 0x70);
	assert_int_equal(req->sense[2], key);
	assert_int_equal(req->sense[12], asc >> 8);
	assert_int_equal(req->sense[13], asc & 0xff);
	assert_int_equal(req->xfer_len, 0);
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

static uint32_t get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void inquiry(struct fixture *f, struct scsi_req *req, bool evpd, uint8_t page,
		    uint16_t alloc, uint8_t *buf)
{
	uint8_t c[6] = {SCSI_OP_INQUIRY, evpd, page, (uint8_t)(alloc >> 8), (uint8_t)alloc, 0};

	cdb(req, c, 6);
	run(f, req, SCSI_DIR_FROM_DEV, buf, 255, 4096);
}

static void test_inquiry(void **state)
{
	struct fixture *f = fixture_new(DISK_FORMAT_RAW, 8 * MIB, 0, false);
	struct scsi_req req;
	uint8_t b[255];

	inquiry(f, &req, false, 0, 36, b);
	assert_int_equal(req.status, SCSI_STATUS_GOOD);
	assert_int_equal(req.xfer_len, 36);
	assert_int_equal(b[0], 0);
	assert_int_equal(b[2], 5);
	assert_int_equal(b[4], 31);
	assert_memory_equal(b + 8, "Msft    Virtual Disk    1.0 ", 28);
	/* the allocation length is honoured */
	inquiry(f, &req, false, 0, 4, b);
	assert_int_equal(req.xfer_len, 4);
	inquiry(f, &req, false, 0, 0, b);
	assert_int_equal(req.status, SCSI_STATUS_GOOD);
	assert_int_equal(req.xfer_len, 0);
	/* page code without EVPD */
	inquiry(f, &req, false, 0x80, 36, b);
	assert_sense(&req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);

	/* VPD 0: list, honouring a 4-byte allocation then the full one */
	inquiry(f, &req, true, 0, 4, b);
	assert_int_equal(req.xfer_len, 4);
	assert_int_equal(b[1], 0);
	assert_int_equal(b[3], 6);
	inquiry(f, &req, true, 0, 255, b);
	assert_int_equal(req.xfer_len, 10);
	assert_memory_equal(b + 4, "\x00\x80\x83\xb0\xb1\xb2", 6);
	/* every listed page answers with its code and length */
	for (int i = 0; i < 6; i++) {
		uint8_t page = b[4 + i], v[255];

		inquiry(f, &req, true, page, 255, v);
		assert_int_equal(req.status, SCSI_STATUS_GOOD);
		assert_int_equal(v[1], page);
		assert_int_equal(req.xfer_len, 4 + ((v[2] << 8) | v[3]));
	}
	inquiry(f, &req, true, 0x80, 255, b);
	assert_int_equal(req.xfer_len, 36);
	assert_memory_equal(b + 4, "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf", 32);
	inquiry(f, &req, true, 0x83, 255, b);
	assert_int_equal(b[5] & 0x0f, 3); /* NAA first */
	assert_int_equal(b[8] >> 4, 6);
	inquiry(f, &req, true, 0xb0, 255, b);
	assert_int_equal(get32(b + 8), MIB / 512); /* max transfer, blocks */
	assert_int_equal(get32(b + 20), SCSI_MAX_UNMAP_BLOCKS); /* raw can discard */
	inquiry(f, &req, true, 0xb2, 255, b);
	assert_int_equal(b[5] & 0xc0, 0xc0);
	inquiry(f, &req, true, 0x89, 255, b);
	assert_sense(&req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	fixture_free(f);
}

static void test_capacity(void **state)
{
	struct fixture *f = fixture_new(DISK_FORMAT_VHDX, 64 * MIB, 512, false);
	uint8_t rc10[10] = {SCSI_OP_READ_CAPACITY10};
	uint8_t rc16[16] = {SCSI_OP_SERVICE_ACTION_IN16, SCSI_SAI_READ_CAPACITY16};
	uint8_t b[64];
	struct scsi_req req;

	cdb(&req, rc10, 10);
	run(f, &req, SCSI_DIR_FROM_DEV, b, 8, 4096);
	assert_int_equal(req.status, SCSI_STATUS_GOOD);
	assert_int_equal(get32(b), 64 * MIB / 512 - 1);
	assert_int_equal(get32(b + 4), 512);

	put32(rc16 + 10, 32);
	cdb(&req, rc16, 16);
	run(f, &req, SCSI_DIR_FROM_DEV, b, 32, 4096);
	assert_int_equal(req.status, SCSI_STATUS_GOOD);
	assert_int_equal(req.xfer_len, 32);
	assert_int_equal(get32(b), 0);
	assert_int_equal(get32(b + 4), 64 * MIB / 512 - 1);
	assert_int_equal(get32(b + 8), 512);
	/* VHDX reports a 4 KiB physical sector: 2^3 logical blocks */
	assert_int_equal(b[13] & 0x0f, 3);
	/* a short CDB for RC16 is refused */
	cdb(&req, rc16, 10);
	run(f, &req, SCSI_DIR_FROM_DEV, b, 32, 4096);
	assert_sense(&req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	/* another service action */
	rc16[1] = 0x11;
	cdb(&req, rc16, 16);
	run(f, &req, SCSI_DIR_FROM_DEV, b, 32, 4096);
	assert_sense(&req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	fixture_free(f);

	/* 4K logical sectors */
	f = fixture_new(DISK_FORMAT_VHDX, 64 * MIB, 4096, false);
	rc16[1] = SCSI_SAI_READ_CAPACITY16;
	cdb(&req, rc16, 16);
	run(f, &req, SCSI_DIR_FROM_DEV, b, 32, 4096);
	assert_int_equal(get32(b + 4), 64 * MIB / 4096 - 1);
	assert_int_equal(get32(b + 8), 4096);
	assert_int_equal(b[13] & 0x0f, 0);
	fixture_free(f);
}

static void test_mode_sense(void **state)
{
	struct fixture *f = fixture_new(DISK_FORMAT_RAW, 8 * MIB, 0, false);
	uint8_t ms6[6] = {SCSI_OP_MODE_SENSE6, 0, 0x3f, 0, 4, 0};
	uint8_t ms10[10] = {SCSI_OP_MODE_SENSE10, 0x08, 0x08, 0, 0, 0, 0, 0, 255, 0};
	uint8_t b[255];
	struct scsi_req req;

	cdb(&req, ms6, 6);
	run(f, &req, SCSI_DIR_FROM_DEV, b, 255, 4096);
	assert_int_equal(req.status, SCSI_STATUS_GOOD);
	assert_int_equal(req.xfer_len, 4);
	assert_int_equal(b[2] & 0x80, 0); /* write enabled */
	assert_int_equal(b[0] + 1, 4 + 8 + 20);
	ms6[2] = 0x08;
	ms6[4] = 255;
	cdb(&req, ms6, 6);
	run(f, &req, SCSI_DIR_FROM_DEV, b, 255, 4096);
	assert_int_equal(req.xfer_len, 32);
	assert_int_equal(b[3], 8);
	assert_int_equal(b[12], 0x08); /* caching page after the block descriptor */
	assert_int_equal(b[14] & 0x04, 0x04); /* WCE */
	assert_int_equal(b[2] & 0x10, 0x10); /* DPOFUA */
	/* MODE SENSE(10), DBD: header + caching page */
	cdb(&req, ms10, 10);
	run(f, &req, SCSI_DIR_FROM_DEV, b, 255, 4096);
	assert_int_equal(req.xfer_len, 28);
	assert_int_equal((b[0] << 8 | b[1]) + 2, 28);
	assert_int_equal(b[8], 0x08);
	/* unsupported page, saved values */
	ms6[2] = 0x0a;
	cdb(&req, ms6, 6);
	run(f, &req, SCSI_DIR_FROM_DEV, b, 255, 4096);
	assert_sense(&req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	ms6[2] = 0xc8;
	cdb(&req, ms6, 6);
	run(f, &req, SCSI_DIR_FROM_DEV, b, 255, 4096);
	assert_sense(&req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_SAVING_NOT_SUPPORTED);
	fixture_free(f);

	/* read-only disk: WP set */
	f = fixture_new(DISK_FORMAT_RAW, 8 * MIB, 0, true);
	ms6[2] = 0x3f;
	cdb(&req, ms6, 6);
	run(f, &req, SCSI_DIR_FROM_DEV, b, 255, 4096);
	assert_int_equal(b[2] & 0x80, 0x80);
	fixture_free(f);
}

/* READ/WRITE of every size class with a pattern, read back through the target and the
 * blockdev itself. */
static void rw_cdb(struct scsi_req *req, uint8_t size, bool write, uint64_t lba, uint32_t n,
		   bool fua)
{
	uint8_t c[16] = {0};

	switch (size) {
	case 6:
		c[0] = write ? SCSI_OP_WRITE6 : SCSI_OP_READ6;
		c[1] = (uint8_t)(lba >> 16) & 0x1f;
		c[2] = (uint8_t)(lba >> 8);
		c[3] = (uint8_t)lba;
		c[4] = (uint8_t)n;
		break;
	case 10:
		c[0] = write ? SCSI_OP_WRITE10 : SCSI_OP_READ10;
		put32(c + 2, (uint32_t)lba);
		c[7] = (uint8_t)(n >> 8);
		c[8] = (uint8_t)n;
		break;
	case 12:
		c[0] = write ? SCSI_OP_WRITE12 : SCSI_OP_READ12;
		put32(c + 2, (uint32_t)lba);
		put32(c + 6, n);
		break;
	default:
		c[0] = write ? SCSI_OP_WRITE16 : SCSI_OP_READ16;
		put64(c + 2, lba);
		put32(c + 10, n);
		break;
	}
	if (fua)
		c[1] |= 0x08;
	cdb(req, c, size);
}

static void rw_roundtrip(enum disk_format fmt)
{
	struct fixture *f = fixture_new(fmt, 16 * MIB, 512, false);
	static const uint8_t sizes[] = {6, 10, 12, 16};
	uint8_t *w = malloc(MIB), *r = malloc(MIB), *direct = malloc(MIB);
	struct scsi_req req;

	assert_non_null(w);
	assert_non_null(r);
	assert_non_null(direct);
	for (unsigned i = 0; i < ARRAY_SIZE(sizes); i++) {
		/* straddles the 1 MiB VHDX block boundary */
		uint64_t lba = MIB / 512 - 8 + i * 3;
		uint32_t n = sizes[i] == 6 ? 200 : 700;
		uint64_t len = (uint64_t)n * 512;

		for (uint64_t k = 0; k < len; k++)
			w[k] = (uint8_t)(k * 7 + i + (k >> 9));
		rw_cdb(&req, sizes[i], true, lba, n, i & 1);
		run(f, &req, SCSI_DIR_TO_DEV, w, len, 4096);
		assert_int_equal(req.status, SCSI_STATUS_GOOD);
		assert_int_equal(req.xfer_len, len);
		memset(r, 0, len);
		rw_cdb(&req, sizes[i], false, lba, n, false);
		/* a buffer larger than the command is trimmed to the command */
		run(f, &req, SCSI_DIR_FROM_DEV, r, len + 4096, 1000);
		assert_int_equal(req.status, SCSI_STATUS_GOOD);
		assert_int_equal(req.xfer_len, len);
		assert_memory_equal(w, r, len);
		assert_int_equal(blockdev_read(f->bd, direct, len, lba * 512), 0);
		assert_memory_equal(w, direct, len);
	}
	/* READ(6) with length 0 means 256 blocks */
	rw_cdb(&req, 6, false, 0, 0, false);
	run(f, &req, SCSI_DIR_FROM_DEV, r, 256 * 512, 4096);
	assert_int_equal(req.xfer_len, 256 * 512);
	/* READ(10) of 0 blocks: nothing */
	rw_cdb(&req, 10, false, 5, 0, false);
	run(f, &req, SCSI_DIR_FROM_DEV, r, 4096, 4096);
	assert_int_equal(req.status, SCSI_STATUS_GOOD);
	assert_int_equal(req.xfer_len, 0);
	free(w);
	free(r);
	free(direct);
	fixture_free(f);
}

static void test_rw_raw(void **state)
{
	rw_roundtrip(DISK_FORMAT_RAW);
}

static void test_rw_vhdx(void **state)
{
	rw_roundtrip(DISK_FORMAT_VHDX);
}

/* The same through the queue only (no page-cache fast path for reads). */
static void test_rw_queued(void **state)
{
	no_inline_reads = true;
	rw_roundtrip(DISK_FORMAT_RAW);
	rw_roundtrip(DISK_FORMAT_VHDX);
	no_inline_reads = false;
}

static void test_rw_errors(void **state)
{
	struct fixture *f = fixture_new(DISK_FORMAT_RAW, 8 * MIB, 0, false);
	uint64_t nblk = 8 * MIB / 512;
	uint8_t *b = calloc(1, 2 * MIB);
	struct scsi_req req;

	assert_non_null(b);
	/* past the end, starting past the end, 64-bit wrap */
	rw_cdb(&req, 10, false, nblk - 1, 2, false);
	run(f, &req, SCSI_DIR_FROM_DEV, b, 1024, 4096);
	assert_sense(&req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
	rw_cdb(&req, 16, true, nblk + 1, 0, false);
	run(f, &req, SCSI_DIR_TO_DEV, b, 512, 4096);
	assert_sense(&req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
	rw_cdb(&req, 16, false, UINT64_MAX - 1, 4, false);
	run(f, &req, SCSI_DIR_FROM_DEV, b, 2048, 4096);
	assert_sense(&req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
	/* last block is fine */
	rw_cdb(&req, 16, false, nblk - 1, 1, false);
	run(f, &req, SCSI_DIR_FROM_DEV, b, 512, 4096);
	assert_int_equal(req.status, SCSI_STATUS_GOOD);
	/* buffer shorter than the command, wrong direction, no buffer */
	rw_cdb(&req, 10, false, 0, 8, false);
	run(f, &req, SCSI_DIR_FROM_DEV, b, 4095, 4096);
	assert_sense(&req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	rw_cdb(&req, 10, false, 0, 8, false);
	run(f, &req, SCSI_DIR_TO_DEV, b, 4096, 4096);
	assert_sense(&req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	rw_cdb(&req, 10, true, 0, 8, false);
	run(f, &req, SCSI_DIR_NONE, NULL, 0, 4096);
	assert_sense(&req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	/* over the maximum transfer length */
	rw_cdb(&req, 16, false, 0, 2 * MIB / 512, false);
	run(f, &req, SCSI_DIR_FROM_DEV, b, 2 * MIB, 65536);
	assert_sense(&req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	/* the CDB length lies: READ(16) sent as 10 bytes */
	rw_cdb(&req, 16, false, 0, 1, false);
	req.cdb_len = 10;
	run(f, &req, SCSI_DIR_FROM_DEV, b, 512, 4096);
	assert_sense(&req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	req.cdb_len = 17;
	run(f, &req, SCSI_DIR_FROM_DEV, b, 512, 4096);
	assert_sense(&req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	/* unknown and unsupported opcodes */
	for (unsigned op = 0; op < 256; op++) {
		static const uint8_t known[] = {0x00, 0x03, 0x08, 0x0a, 0x12, 0x16, 0x17,
						0x1a, 0x1b, 0x1e, 0x25, 0x28, 0x2a, 0x2f,
						0x35, 0x42, 0x5a, 0x88, 0x8a, 0x8f, 0x91,
						0x93, 0x9e, 0xa8, 0xaa};
		bool k = false;

		for (unsigned j = 0; j < sizeof(known); j++)
			k |= known[j] == op;
		if (k)
			continue;
		memset(&req, 0, sizeof(req));
		req.cdb[0] = (uint8_t)op;
		req.cdb_len = 16;
		run(f, &req, SCSI_DIR_FROM_DEV, b, 512, 4096);
		assert_sense(&req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_OPCODE);
	}
	free(b);
	fixture_free(f);
}

static void test_read_only(void **state)
{
	struct fixture *f = fixture_new(DISK_FORMAT_RAW, 8 * MIB, 0, true);
	uint8_t b[4096] = {0}, unmap[10] = {SCSI_OP_UNMAP, 0, 0, 0, 0, 0, 0, 0, 24, 0};
	uint8_t ws[16] = {SCSI_OP_WRITE_SAME16, 0x08}, sc[10] = {SCSI_OP_SYNC_CACHE10};
	struct scsi_req req;

	rw_cdb(&req, 10, true, 0, 8, false);
	run(f, &req, SCSI_DIR_TO_DEV, b, 4096, 4096);
	assert_sense(&req, SCSI_SENSE_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED);
	cdb(&req, unmap, 10);
	run(f, &req, SCSI_DIR_TO_DEV, b, 24, 4096);
	assert_sense(&req, SCSI_SENSE_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED);
	put32(ws + 10, 8);
	cdb(&req, ws, 16);
	run(f, &req, SCSI_DIR_TO_DEV, b, 512, 4096);
	assert_sense(&req, SCSI_SENSE_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED);
	cdb(&req, sc, 10);
	run(f, &req, SCSI_DIR_NONE, NULL, 0, 4096);
	assert_int_equal(req.status, SCSI_STATUS_GOOD);
	rw_cdb(&req, 10, false, 0, 8, false);
	run(f, &req, SCSI_DIR_FROM_DEV, b, 4096, 4096);
	assert_int_equal(req.status, SCSI_STATUS_GOOD);
	/* read-only: no LBPME, no unmap limits */
	inquiry(f, &req, true, 0xb2, 255, b);
	assert_int_equal(b[5], 0);
	fixture_free(f);
}

static void unmap_and_check(enum disk_format fmt)
{
	struct fixture *f = fixture_new(fmt, 16 * MIB, 512, false);
	uint8_t *w = malloc(4 * MIB), *r = malloc(4 * MIB);
	uint8_t pl[8 + 32] = {0}, unmap[10] = {SCSI_OP_UNMAP, 0, 0, 0, 0, 0, 0, 0, sizeof(pl), 0};
	uint8_t ws[16] = {SCSI_OP_WRITE_SAME16, 0x08}, sc[16] = {SCSI_OP_SYNC_CACHE16};
	struct scsi_req req;

	assert_non_null(w);
	assert_non_null(r);
	memset(w, 0x5a, 4 * MIB);
	assert_int_equal(blockdev_write(f->bd, w, 4 * MIB, 0, 0), 0);
	/* UNMAP two whole 1 MiB blocks (descriptor list of 2) */
	pl[1] = sizeof(pl) - 2;
	pl[3] = 32;
	put64(pl + 8, 0);
	put32(pl + 16, MIB / 512);
	put64(pl + 24, 2 * MIB / 512);
	put32(pl + 32, MIB / 512);
	cdb(&req, unmap, 10);
	run(f, &req, SCSI_DIR_TO_DEV, pl, sizeof(pl), 4096);
	assert_int_equal(req.status, SCSI_STATUS_GOOD);
	/* WRITE SAME(16) UNMAP over the 4th MiB */
	put64(ws + 2, 3 * MIB / 512);
	put32(ws + 10, MIB / 512);
	cdb(&req, ws, 16);
	memset(r, 0, 512);
	run(f, &req, SCSI_DIR_TO_DEV, r, 512, 4096);
	assert_int_equal(req.status, SCSI_STATUS_GOOD);
	cdb(&req, sc, 16);
	run(f, &req, SCSI_DIR_NONE, NULL, 0, 4096);
	assert_int_equal(req.status, SCSI_STATUS_GOOD);
	/* data outside the discarded ranges survives; raw and VHDX both read zeros back there */
	assert_int_equal(blockdev_read(f->bd, r, 4 * MIB, 0), 0);
	assert_memory_equal(r + MIB, w + MIB, MIB);
	for (unsigned k = 0; k < MIB; k += 512) {
		assert_int_equal(r[k], 0);
		assert_int_equal(r[2 * MIB + k], 0);
		assert_int_equal(r[3 * MIB + k], 0);
	}
	/* bad descriptors: out of range, over the limit, lengths that lie */
	put64(pl + 8, 16 * MIB / 512 - 1);
	put32(pl + 16, 2);
	cdb(&req, unmap, 10);
	run(f, &req, SCSI_DIR_TO_DEV, pl, sizeof(pl), 4096);
	assert_sense(&req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
	put64(pl + 8, 0);
	put32(pl + 16, SCSI_MAX_UNMAP_BLOCKS + 1);
	put32(pl + 32, 0);
	cdb(&req, unmap, 10);
	run(f, &req, SCSI_DIR_TO_DEV, pl, sizeof(pl), 4096);
	assert_sense(&req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
	put32(pl + 16, 8);
	pl[3] = 48; /* more descriptors than the parameter list holds */
	cdb(&req, unmap, 10);
	run(f, &req, SCSI_DIR_TO_DEV, pl, sizeof(pl), 4096);
	assert_sense(&req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_PARAM_LIST_LENGTH_ERROR);
	pl[3] = 32;
	unmap[8] = 4; /* parameter list shorter than its header */
	cdb(&req, unmap, 10);
	run(f, &req, SCSI_DIR_TO_DEV, pl, sizeof(pl), 4096);
	assert_sense(&req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_PARAM_LIST_LENGTH_ERROR);
	unmap[8] = sizeof(pl);
	cdb(&req, unmap, 10); /* data sent shorter than the list length says */
	run(f, &req, SCSI_DIR_TO_DEV, pl, 20, 4096);
	assert_sense(&req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_PARAM_LIST_LENGTH_ERROR);
	/* WRITE SAME without UNMAP, with 0 blocks */
	ws[1] = 0;
	cdb(&req, ws, 16);
	run(f, &req, SCSI_DIR_TO_DEV, r, 512, 4096);
	assert_sense(&req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	ws[1] = 0x08;
	put32(ws + 10, 0);
	cdb(&req, ws, 16);
	run(f, &req, SCSI_DIR_TO_DEV, r, 512, 4096);
	assert_sense(&req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	free(w);
	free(r);
	fixture_free(f);
}

static void test_unmap_raw(void **state)
{
	unmap_and_check(DISK_FORMAT_RAW);
}

static void test_unmap_vhdx(void **state)
{
	unmap_and_check(DISK_FORMAT_VHDX);
}

static void test_misc(void **state)
{
	struct fixture *f = fixture_new(DISK_FORMAT_RAW, 8 * MIB, 0, false);
	uint8_t tur[6] = {SCSI_OP_TEST_UNIT_READY}, ssu[6] = {SCSI_OP_START_STOP_UNIT, 0, 0, 0, 1};
	uint8_t rl[12] = {SCSI_OP_REPORT_LUNS, 0, 0, 0, 0, 0, 0, 0, 0, 0x10};
	uint8_t v16[16] = {SCSI_OP_VERIFY16};
	uint16_t luns[3] = {0, 1, 63};
	uint8_t b[4096];
	struct scsi_req req;

	cdb(&req, tur, 6);
	run(f, &req, SCSI_DIR_NONE, NULL, 0, 4096);
	assert_int_equal(req.status, SCSI_STATUS_GOOD);
	cdb(&req, ssu, 6);
	run(f, &req, SCSI_DIR_NONE, NULL, 0, 4096);
	assert_int_equal(req.status, SCSI_STATUS_GOOD);
	put32(v16 + 10, 8);
	cdb(&req, v16, 16);
	run(f, &req, SCSI_DIR_NONE, NULL, 0, 4096);
	assert_int_equal(req.status, SCSI_STATUS_GOOD);
	put64(v16 + 2, 8 * MIB / 512);
	cdb(&req, v16, 16);
	run(f, &req, SCSI_DIR_NONE, NULL, 0, 4096);
	assert_sense(&req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);

	/* REPORT LUNS: header + 3 entries, clipped to the allocation length */
	cdb(&req, rl, 12);
	req.dir = SCSI_DIR_FROM_DEV;
	req.iov = &(struct iovec){b, sizeof(b)};
	req.iovcnt = 1;
	req.buf_len = sizeof(b);
	scsi_report_luns(&req, luns, 3);
	assert_int_equal(req.status, SCSI_STATUS_GOOD);
	assert_int_equal(req.xfer_len, 16);
	assert_int_equal(get32(b), 24);
	rl[9] = 0x20;
	cdb(&req, rl, 12);
	req.dir = SCSI_DIR_FROM_DEV;
	req.iov = &(struct iovec){b, sizeof(b)};
	req.iovcnt = 1;
	req.buf_len = sizeof(b);
	scsi_report_luns(&req, luns, 3);
	assert_int_equal(req.xfer_len, 32);
	assert_int_equal(b[8 + 16 + 1], 63);
	rl[9] = 8; /* allocation length under 16 */
	cdb(&req, rl, 12);
	scsi_report_luns(&req, luns, 3);
	assert_sense(&req, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);

	/* INQUIRY at a LUN that does not exist: PQ 3 */
	memset(&req, 0, sizeof(req));
	req.cdb[0] = SCSI_OP_INQUIRY;
	req.cdb[4] = 36;
	req.cdb_len = 6;
	req.dir = SCSI_DIR_FROM_DEV;
	req.iov = &(struct iovec){b, sizeof(b)};
	req.iovcnt = 1;
	req.buf_len = sizeof(b);
	scsi_inquiry_absent(&req);
	assert_int_equal(req.xfer_len, 36);
	assert_int_equal(b[0], 0x7f);
	fixture_free(f);
}

/* A full queue gives -EAGAIN and nothing is done; the request works when resubmitted. */
static void test_queue_full(void **state)
{
	struct fixture *f;

	no_inline_reads = true; /* every read must take a queue slot */
	f = fixture_new(DISK_FORMAT_RAW, 8 * MIB, 0, false);
	no_inline_reads = false;
	struct scsi_req req[5];
	struct iovec iov[5];
	uint8_t *b = calloc(5, 4096);
	unsigned submitted = 0;
	int ret;

	assert_non_null(b);
	for (int i = 0; i < 5; i++) {
		rw_cdb(&req[i], 10, false, (uint64_t)i * 8, 8, false);
		iov[i] = (struct iovec){b + i * 4096, 4096};
		req[i].iov = &iov[i];
		req[i].iovcnt = 1;
		req[i].buf_len = 4096;
		req[i].dir = SCSI_DIR_FROM_DEV;
		req[i].complete = req_done;
		req[i].opaque = f;
	}
	f->done = 0;
	for (int i = 0; i < 4; i++) {
		assert_int_equal(scsi_disk_execute(f->d, f->q, &req[i]), 1);
		submitted++;
	}
	ret = scsi_disk_execute(f->d, f->q, &req[4]);
	assert_int_equal(ret, -EAGAIN);
	while (f->done < 1)
		blockdev_queue_wait(f->q);
	assert_int_equal(scsi_disk_execute(f->d, f->q, &req[4]), 1);
	submitted++;
	while (f->done < submitted)
		blockdev_queue_wait(f->q);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(req[i].status, SCSI_STATUS_GOOD);
		assert_int_equal(req[i].xfer_len, 4096);
	}
	free(b);
	fixture_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inquiry),	   cmocka_unit_test(test_capacity),
		cmocka_unit_test(test_mode_sense), cmocka_unit_test(test_rw_raw),
		cmocka_unit_test(test_rw_vhdx),	   cmocka_unit_test(test_rw_errors),
		cmocka_unit_test(test_read_only),  cmocka_unit_test(test_unmap_raw),
		cmocka_unit_test(test_unmap_vhdx), cmocka_unit_test(test_misc),
		cmocka_unit_test(test_queue_full), cmocka_unit_test(test_rw_queued),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
