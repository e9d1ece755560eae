// SPDX-License-Identifier: GPL-2.0-only
/*
 * SCSI block target over a blockdev (see scsi.h). Written from SPC-3/SBC-3 and the command
 * list in spec vmbus-devices.md §2.7. Every CDB field is read from the caller's copy of the CDB
 * and checked before use; the data buffer is only ever accessed through its iovecs.
 */
#include "vsp/scsi.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "lib/err.h"
#include "lib/log.h"
#include "lib/util.h"

struct scsi_disk {
	struct blockdev *bd;
	uint64_t nblocks;
	uint32_t block; /* logical block size */
	uint8_t phys_exp; /* log2(physical / logical) */
	bool read_only;
	bool can_discard;
	bool inline_reads;
	uint32_t max_xfer_blocks;
	uint32_t unmap_gran_blocks;
	uint8_t id[16];
	char serial[33]; /* 32 hex digits */
};

static const char scsi_vendor[8] = {'M', 's', 'f', 't', ' ', ' ', ' ', ' '};
static const char scsi_product[16] = {'V', 'i', 'r', 't', 'u', 'a', 'l', ' ',
				      'D', 'i', 's', 'k', ' ', ' ', ' ', ' '};
static const char scsi_revision[4] = {'1', '.', '0', ' '};

/* Big-endian helpers for CDBs and SCSI data. */
static uint16_t get_be16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t get_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static uint64_t get_be64(const uint8_t *p)
{
	return ((uint64_t)get_be32(p) << 32) | get_be32(p + 4);
}

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

unsigned scsi_cdb_len(uint8_t opcode)
{
	switch (opcode >> 5) {
	case 0:
		return 6;
	case 1:
	case 2:
		return 10;
	case 4:
		return 16;
	case 5:
		return 12;
	default:
		return 0; /* 3: variable length, 6/7: vendor specific */
	}
}

void scsi_req_set_good(struct scsi_req *req)
{
	req->status = SCSI_STATUS_GOOD;
	req->sense_len = 0;
}

void scsi_req_set_sense(struct scsi_req *req, uint8_t key, uint16_t asc_ascq)
{
	memset(req->sense, 0, sizeof(req->sense));
	req->sense[0] = 0x70; /* current error, fixed format */
	req->sense[2] = key & 0xf;
	req->sense[7] = SCSI_SENSE_LEN - 8; /* additional sense length */
	req->sense[12] = (uint8_t)(asc_ascq >> 8);
	req->sense[13] = (uint8_t)asc_ascq;
	req->sense_len = SCSI_SENSE_LEN;
	req->status = SCSI_STATUS_CHECK_CONDITION;
	req->xfer_len = 0;
}

static void set_illegal(struct scsi_req *req, uint16_t asc)
{
	scsi_req_set_sense(req, SCSI_SENSE_ILLEGAL_REQUEST, asc);
}

/* Copies len bytes of data to the (read) buffer, at most the buffer's size. */
static void req_put_data(struct scsi_req *req, const void *data, uint64_t len)
{
	const uint8_t *src = data;
	uint64_t done = 0;

	if (req->dir != SCSI_DIR_FROM_DEV)
		len = 0;
	len = MIN(len, req->buf_len);
	for (int i = 0; i < req->iovcnt && done < len; i++) {
		size_t n = (size_t)MIN((uint64_t)req->iov[i].iov_len, len - done);

		memcpy(req->iov[i].iov_base, src + done, n);
		done += n;
	}
	req->xfer_len = (uint32_t)done;
	scsi_req_set_good(req);
}

/* Copies up to len bytes from the (write) buffer; returns the bytes copied. */
static uint64_t req_get_data(struct scsi_req *req, void *data, uint64_t len)
{
	uint8_t *dst = data;
	uint64_t done = 0;

	if (req->dir != SCSI_DIR_TO_DEV)
		return 0;
	len = MIN(len, req->buf_len);
	for (int i = 0; i < req->iovcnt && done < len; i++) {
		size_t n = (size_t)MIN((uint64_t)req->iov[i].iov_len, len - done);

		memcpy(dst + done, req->iov[i].iov_base, n);
		done += n;
	}
	return done;
}

/* Shortens the iovec list to exactly len bytes (len <= buf_len). */
static void req_trim(struct scsi_req *req, uint64_t len)
{
	uint64_t left = len;
	int i;

	for (i = 0; i < req->iovcnt && left; i++) {
		if (req->iov[i].iov_len >= left) {
			req->iov[i].iov_len = (size_t)left;
			left = 0;
		} else {
			left -= req->iov[i].iov_len;
		}
	}
	req->iovcnt = i;
	req->buf_len = len;
}

struct scsi_disk *scsi_disk_create(struct blockdev *bd, const struct scsi_disk_config *cfg)
{
	struct scsi_disk *d;
	uint32_t phys, gran;

	if (!bd || !bd->logical_sector_size || bd->size < bd->logical_sector_size ||
	    bd->size % bd->logical_sector_size) {
		err_set("disk size is not a whole number of sectors: cannot attach it as a SCSI disk");
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		err_set("out of memory");
		return NULL;
	}
	d->bd = bd;
	d->block = bd->logical_sector_size;
	d->nblocks = bd->size / d->block;
	phys = MAX(bd->physical_sector_size, d->block);
	while (d->phys_exp < 15 && ((uint64_t)d->block << (d->phys_exp + 1)) <= phys)
		d->phys_exp++;
	d->read_only = bd->read_only || cfg->read_only;
	d->can_discard = bd->ops->discard != NULL;
	/* Only buffered files: with O_DIRECT a read would wait for the device. */
	d->inline_reads = !cfg->no_inline_reads && bd->ops->map && bd->data_fd >= 0 &&
			  !(fcntl(bd->data_fd, F_GETFL) & O_DIRECT);
	d->max_xfer_blocks = cfg->max_transfer_bytes / d->block;
	gran = cfg->unmap_granularity ? cfg->unmap_granularity : phys;
	d->unmap_gran_blocks = MAX(gran / d->block, 1u);
	memcpy(d->id, cfg->id, sizeof(d->id));
	for (int i = 0; i < 16; i++)
		snprintf(d->serial + 2 * i, 3, "%02x", d->id[i]);
	return d;
}

void scsi_disk_destroy(struct scsi_disk *d)
{
	free(d);
}

struct blockdev *scsi_disk_blockdev(const struct scsi_disk *d)
{
	return d->bd;
}

/* ---- INQUIRY ---- */

static void inquiry_std(uint8_t *b)
{
	memset(b, 0, 36);
	b[0] = 0x00; /* PQ 0, direct access block device */
	b[2] = 0x05; /* SPC-3 */
	b[3] = 0x12; /* HiSup, response data format 2 */
	b[4] = 36 - 5;
	b[7] = 0x02; /* CmdQue */
	memcpy(b + 8, scsi_vendor, 8);
	memcpy(b + 16, scsi_product, 16);
	memcpy(b + 32, scsi_revision, 4);
}

void scsi_inquiry_absent(struct scsi_req *req)
{
	uint8_t b[36];
	unsigned alloc;

	if (req->cdb_len < 6) {
		set_illegal(req, SCSI_ASC_INVALID_FIELD_IN_CDB);
		return;
	}
	alloc = get_be16(req->cdb + 3);
	inquiry_std(b);
	b[0] = 0x7f; /* PQ 3: no device can be attached at this LUN */
	if (req->cdb[1] & 1) {
		/* VPD: an empty page 0 says which pages exist (none) */
		uint8_t v[5] = {0x7f, 0x00, 0x00, 0x01, 0x00};

		if (req->cdb[2] != 0) {
			set_illegal(req, SCSI_ASC_INVALID_FIELD_IN_CDB);
			return;
		}
		req_put_data(req, v, MIN(alloc, sizeof(v)));
		return;
	}
	req_put_data(req, b, MIN(alloc, sizeof(b)));
}

static const uint8_t vpd_pages[] = {0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2};

static int inquiry_vpd(struct scsi_disk *d, uint8_t page, uint8_t *b)
{
	unsigned len = 0;

	memset(b, 0, 128);
	b[1] = page;
	switch (page) {
	case 0x00:
		memcpy(b + 4, vpd_pages, sizeof(vpd_pages));
		len = sizeof(vpd_pages);
		break;
	case 0x80: /* unit serial number */
		memcpy(b + 4, d->serial, 32);
		len = 32;
		break;
	case 0x83: { /* device identification */
		uint8_t *p = b + 4;

		/* NAA 6 (IEEE registered extended): OUI 00-15-5D, then 100 bits of the id. */
		p[0] = 0x01; /* binary */
		p[1] = 0x03; /* LU association, NAA */
		p[3] = 16;
		p[4] = 0x60;
		p[5] = 0x01;
		p[6] = 0x55;
		p[7] = 0xd0 | (d->id[0] & 0x0f);
		memcpy(p + 8, d->id + 1, 12);
		p += 4 + 16;
		/* T10 vendor id: vendor + serial */
		p[0] = 0x02; /* ASCII */
		p[1] = 0x01; /* LU association, T10 vendor id */
		p[3] = 8 + 32;
		memcpy(p + 4, scsi_vendor, 8);
		memcpy(p + 12, d->serial, 32);
		p += 4 + 8 + 32;
		len = (unsigned)(p - (b + 4));
		break;
	}
	case 0xb0: /* block limits */
		len = 0x3c;
		b[4] = 0x01; /* WSNZ: WRITE SAME with 0 blocks is not "to the end" */
		put_be16(b + 6, (uint16_t)MIN(1u << d->phys_exp, 0xffffu));
		put_be32(b + 8, d->max_xfer_blocks);
		put_be32(b + 12, d->max_xfer_blocks);
		if (d->can_discard && !d->read_only) {
			put_be32(b + 20, SCSI_MAX_UNMAP_BLOCKS);
			put_be32(b + 24, SCSI_MAX_UNMAP_DESCRIPTORS);
			put_be32(b + 28, d->unmap_gran_blocks);
			put_be64(b + 36, SCSI_MAX_UNMAP_BLOCKS);
		}
		break;
	case 0xb1: /* block device characteristics */
		len = 0x3c;
		put_be16(b + 4, 1); /* non-rotating medium */
		break;
	case 0xb2: /* logical block provisioning */
		len = 4;
		if (d->can_discard && !d->read_only) {
			b[5] = 0xc0; /* LBPU (UNMAP), LBPWS (WRITE SAME(16) UNMAP); LBPRZ 0 */
			b[6] = 0x02; /* thin provisioned */
		}
		break;
	default:
		return -1;
	}
	put_be16(b + 2, (uint16_t)len);
	return (int)len + 4;
}

static void cmd_inquiry(struct scsi_disk *d, struct scsi_req *req)
{
	uint8_t b[128];
	unsigned alloc = get_be16(req->cdb + 3);
	int len;

	if (req->cdb[1] & 0x01) {
		len = inquiry_vpd(d, req->cdb[2], b);
		if (len < 0) {
			set_illegal(req, SCSI_ASC_INVALID_FIELD_IN_CDB);
			return;
		}
	} else {
		if (req->cdb[2] != 0 || (req->cdb[1] & 0x02)) {
			set_illegal(req, SCSI_ASC_INVALID_FIELD_IN_CDB);
			return;
		}
		inquiry_std(b);
		len = 36;
	}
	req_put_data(req, b, MIN(alloc, (unsigned)len));
}

/* ---- capacity, mode pages ---- */

static void cmd_read_capacity10(struct scsi_disk *d, struct scsi_req *req)
{
	uint8_t b[8];
	uint64_t last = d->nblocks - 1;

	put_be32(b, last > 0xffffffffu ? 0xffffffffu : (uint32_t)last);
	put_be32(b + 4, d->block);
	req_put_data(req, b, sizeof(b));
}

static void cmd_read_capacity16(struct scsi_disk *d, struct scsi_req *req)
{
	uint8_t b[32];
	uint32_t alloc = get_be32(req->cdb + 10);

	memset(b, 0, sizeof(b));
	put_be64(b, d->nblocks - 1);
	put_be32(b + 8, d->block);
	b[13] = d->phys_exp & 0x0f;
	if (d->can_discard && !d->read_only)
		b[14] = 0x80; /* LBPME */
	req_put_data(req, b, MIN(alloc, sizeof(b)));
}

/* Caching mode page: write cache on (the host page cache), so the guest sends SYNCHRONIZE
 * CACHE and FUA for what must be durable. pc = page control (0 current, 1 changeable). */
static unsigned mode_page_caching(uint8_t *p, unsigned pc)
{
	memset(p, 0, 20);
	p[0] = 0x08;
	p[1] = 0x12;
	if (pc != 1)
		p[2] = 0x04; /* WCE */
	return 20;
}

static void cmd_mode_sense(struct scsi_disk *d, struct scsi_req *req, bool ten)
{
	uint8_t b[64];
	unsigned hdr = ten ? 8 : 4, len, pc = req->cdb[2] >> 6, page = req->cdb[2] & 0x3f;
	bool dbd = req->cdb[1] & 0x08;
	uint32_t alloc = ten ? get_be16(req->cdb + 7) : req->cdb[4];

	if (pc == 3) {
		set_illegal(req, SCSI_ASC_SAVING_NOT_SUPPORTED);
		return;
	}
	if ((page != 0x08 && page != 0x3f) || req->cdb[3] != 0) {
		set_illegal(req, SCSI_ASC_INVALID_FIELD_IN_CDB);
		return;
	}
	memset(b, 0, sizeof(b));
	len = hdr;
	if (!dbd) {
		uint64_t n = d->nblocks > 0xffffff ? 0xffffff : d->nblocks;

		/* short block descriptor: density 0, block count, block length */
		b[len + 1] = (uint8_t)(n >> 16);
		b[len + 2] = (uint8_t)(n >> 8);
		b[len + 3] = (uint8_t)n;
		b[len + 5] = (uint8_t)(d->block >> 16);
		b[len + 6] = (uint8_t)(d->block >> 8);
		b[len + 7] = (uint8_t)d->block;
		len += 8;
	}
	len += mode_page_caching(b + len, pc);
	/* device-specific parameter: WP, DPOFUA (FUA honoured) */
	if (ten) {
		put_be16(b, (uint16_t)(len - 2));
		b[3] = (d->read_only ? 0x80 : 0) | 0x10;
		put_be16(b + 6, dbd ? 0 : 8);
	} else {
		b[0] = (uint8_t)(len - 1);
		b[2] = (d->read_only ? 0x80 : 0) | 0x10;
		b[3] = dbd ? 0 : 8;
	}
	req_put_data(req, b, MIN(alloc, len));
}

/* ---- reads and writes ---- */

static void bd_error_sense(struct scsi_req *req, int result, bool write)
{
	if (result == -ENOSPC)
		scsi_req_set_sense(req, SCSI_SENSE_DATA_PROTECT, SCSI_ASC_SPACE_ALLOC_FAILED);
	else if (result == -EROFS)
		scsi_req_set_sense(req, SCSI_SENSE_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED);
	else if (write)
		scsi_req_set_sense(req, SCSI_SENSE_MEDIUM_ERROR, SCSI_ASC_WRITE_ERROR);
	else
		scsi_req_set_sense(req, SCSI_SENSE_MEDIUM_ERROR, SCSI_ASC_UNRECOVERED_READ_ERROR);
}

static int submit(struct scsi_req *req)
{
	int ret = blockdev_queue_submit(req->q_, &req->bd_);

	if (ret == -EAGAIN)
		return -EAGAIN;
	if (ret < 0) {
		bd_error_sense(req, ret, req->bd_.op != BLOCKDEV_OP_READ);
		return 0;
	}
	return 1;
}

static bool range_ok(struct scsi_disk *d, struct scsi_req *req, uint64_t lba, uint64_t n)
{
	if (lba > d->nblocks || n > d->nblocks - lba) {
		set_illegal(req, SCSI_ASC_LBA_OUT_OF_RANGE);
		return false;
	}
	return true;
}

static void rw_done(struct blockdev_req *bdr, int result)
{
	struct scsi_req *req = bdr->opaque;

	if (result < 0) {
		log_warn_ratelimited("vsp", "scsi: %s at byte %llu failed: %s",
				     bdr->op == BLOCKDEV_OP_READ ? "read" : "write",
				     (unsigned long long)bdr->offset, strerror(-result));
		bd_error_sense(req, result, bdr->op != BLOCKDEV_OP_READ);
	} else {
		scsi_req_set_good(req);
		if (bdr->op != BLOCKDEV_OP_READ && bdr->op != BLOCKDEV_OP_WRITE)
			req->xfer_len = 0;
	}
	req->complete(req);
}

/*
 * A read that the page cache can serve right now, done in the caller's thread: saves the
 * queue's completion round trip (eventfd, epoll) on the latency path. false = use the queue.
 */
#define SCSI_INLINE_READ_MAX (256u << 10)

static bool read_inline(struct scsi_disk *d, struct scsi_req *req, uint64_t off, uint64_t len)
{
	struct blockdev *bd = d->bd;
	struct blockdev_extent ext;
	ssize_t n;

	if (!d->inline_reads || len > SCSI_INLINE_READ_MAX ||
	    bd->ops->map(bd, off, len, false, &ext) < 0 || ext.len < len)
		return false;
	if (ext.kind == BLOCKDEV_EXTENT_ZERO) {
		for (int i = 0; i < req->iovcnt; i++)
			memset(req->iov[i].iov_base, 0, req->iov[i].iov_len);
		return true;
	}
	if (ext.kind != BLOCKDEV_EXTENT_DATA || ext.file_offset > (uint64_t)INT64_MAX - len)
		return false;
	n = preadv2(bd->data_fd, req->iov, req->iovcnt, (off_t)ext.file_offset, RWF_NOWAIT);
	/* EAGAIN (not cached), short read, anything odd: the queue does it properly */
	return n >= 0 && (uint64_t)n == len;
}

static int cmd_rw(struct scsi_disk *d, struct scsi_req *req, bool write)
{
	const uint8_t *c = req->cdb;
	uint64_t lba, bytes;
	uint32_t n;
	bool fua = false;

	switch (c[0]) {
	case SCSI_OP_READ6:
	case SCSI_OP_WRITE6:
		lba = ((uint32_t)(c[1] & 0x1f) << 16) | get_be16(c + 2);
		n = c[4] ? c[4] : 256;
		break;
	case SCSI_OP_READ10:
	case SCSI_OP_WRITE10:
		lba = get_be32(c + 2);
		n = get_be16(c + 7);
		fua = c[1] & 0x08;
		break;
	case SCSI_OP_READ12:
	case SCSI_OP_WRITE12:
		lba = get_be32(c + 2);
		n = get_be32(c + 6);
		fua = c[1] & 0x08;
		break;
	default: /* 16 */
		lba = get_be64(c + 2);
		n = get_be32(c + 10);
		fua = c[1] & 0x08;
		break;
	}
	if (write && d->read_only) {
		scsi_req_set_sense(req, SCSI_SENSE_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED);
		return 0;
	}
	if (!range_ok(d, req, lba, n))
		return 0;
	if (n == 0) {
		scsi_req_set_good(req);
		req->xfer_len = 0;
		return 0;
	}
	bytes = (uint64_t)n * d->block;
	/* The buffer must match the command: direction and at least the bytes it moves. */
	if (req->dir != (write ? SCSI_DIR_TO_DEV : SCSI_DIR_FROM_DEV) || req->buf_len < bytes ||
	    (d->max_xfer_blocks && n > d->max_xfer_blocks)) {
		set_illegal(req, SCSI_ASC_INVALID_FIELD_IN_CDB);
		return 0;
	}
	req_trim(req, bytes);
	if (!write && !req->batched && read_inline(d, req, lba * d->block, bytes)) {
		scsi_req_set_good(req);
		req->xfer_len = (uint32_t)bytes;
		return 0;
	}
	memset(&req->bd_, 0, sizeof(req->bd_));
	req->bd_.op = write ? BLOCKDEV_OP_WRITE : BLOCKDEV_OP_READ;
	req->bd_.flags = (write && fua) ? BLOCKDEV_WRITE_FUA : 0;
	req->bd_.offset = lba * d->block;
	req->bd_.iov = req->iov;
	req->bd_.iovcnt = req->iovcnt;
	req->bd_.complete = rw_done;
	req->bd_.opaque = req;
	req->xfer_len = (uint32_t)bytes;
	return submit(req);
}

static int cmd_sync_cache(struct scsi_disk *d, struct scsi_req *req)
{
	if (d->read_only) {
		scsi_req_set_good(req);
		return 0;
	}
	memset(&req->bd_, 0, sizeof(req->bd_));
	req->bd_.op = BLOCKDEV_OP_FLUSH;
	req->bd_.complete = rw_done;
	req->bd_.opaque = req;
	req->xfer_len = 0;
	return submit(req);
}

static void unmap_done(struct blockdev_req *bdr, int result);

/*
 * UNMAP / WRITE SAME(UNMAP): one discard per descriptor, one after the other. Returns 1 when a
 * discard is in flight, 0 when finished (results set), -EAGAIN when the first one found the
 * queue full.
 */
static int unmap_step(struct scsi_req *req, int result)
{
	struct scsi_disk *d = req->disk_;

	while (result >= 0 && req->unmap_next_ < req->unmap_count_) {
		unsigned i = req->unmap_next_;
		int ret;

		memset(&req->bd_, 0, sizeof(req->bd_));
		req->bd_.op = BLOCKDEV_OP_DISCARD;
		req->bd_.offset = req->unmap_lba_[i] * d->block;
		req->bd_.len = (uint64_t)req->unmap_nblocks_[i] * d->block;
		req->bd_.complete = unmap_done;
		req->bd_.opaque = req;
		ret = blockdev_queue_submit(req->q_, &req->bd_);
		if (ret == -EAGAIN && i == 0)
			return -EAGAIN;
		if (ret == -EAGAIN)
			ret = -EBUSY; /* cannot happen: a completion just freed a slot */
		req->unmap_next_++;
		if (ret == 0)
			return 1;
		result = ret;
	}
	if (result < 0) {
		log_warn_ratelimited("vsp", "scsi: unmap failed: %s", strerror(-result));
		bd_error_sense(req, result, true);
	} else {
		scsi_req_set_good(req);
	}
	return 0;
}

static void unmap_done(struct blockdev_req *bdr, int result)
{
	struct scsi_req *req = bdr->opaque;

	if (unmap_step(req, result) == 0)
		req->complete(req);
}

static int unmap_start(struct scsi_req *req)
{
	int ret;

	req->unmap_next_ = 0;
	req->xfer_len = 0;
	ret = unmap_step(req, 0);
	return ret;
}

static bool unmap_allowed(struct scsi_disk *d, struct scsi_req *req)
{
	if (d->read_only) {
		scsi_req_set_sense(req, SCSI_SENSE_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED);
		return false;
	}
	if (!d->can_discard) {
		/* not advertised (no LBPME): the command is not there */
		set_illegal(req, SCSI_ASC_INVALID_OPCODE);
		return false;
	}
	return true;
}

static int cmd_unmap(struct scsi_disk *d, struct scsi_req *req)
{
	uint8_t pl[8 + 16 * SCSI_MAX_UNMAP_DESCRIPTORS];
	unsigned plen = get_be16(req->cdb + 7), bdlen, n;
	uint64_t got;

	if (!unmap_allowed(d, req))
		return 0;
	if (req->cdb[1] & 0x01) { /* ANCHOR: not supported (ANC_SUP 0) */
		set_illegal(req, SCSI_ASC_INVALID_FIELD_IN_CDB);
		return 0;
	}
	if (plen == 0) {
		scsi_req_set_good(req);
		return 0;
	}
	if (plen < 8) {
		set_illegal(req, SCSI_ASC_PARAM_LIST_LENGTH_ERROR);
		return 0;
	}
	memset(pl, 0, sizeof(pl));
	got = req_get_data(req, pl, MIN(plen, sizeof(pl)));
	if (got < 8) {
		set_illegal(req, SCSI_ASC_PARAM_LIST_LENGTH_ERROR);
		return 0;
	}
	bdlen = get_be16(pl + 2);
	/* Descriptors must lie inside what the initiator said it sent and what arrived. */
	if (bdlen % 16 || 8 + (uint64_t)bdlen > plen || 8 + (uint64_t)bdlen > got) {
		if (8 + (uint64_t)bdlen > sizeof(pl) && bdlen % 16 == 0)
			set_illegal(req, SCSI_ASC_INVALID_FIELD_IN_PARAM);
		else
			set_illegal(req, SCSI_ASC_PARAM_LIST_LENGTH_ERROR);
		return 0;
	}
	n = bdlen / 16;
	req->unmap_count_ = 0;
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *desc = pl + 8 + 16 * i;
		uint64_t lba = get_be64(desc);
		uint32_t cnt = get_be32(desc + 8);

		if (!range_ok(d, req, lba, cnt))
			return 0;
		if (cnt > SCSI_MAX_UNMAP_BLOCKS) {
			set_illegal(req, SCSI_ASC_INVALID_FIELD_IN_PARAM);
			return 0;
		}
		if (!cnt)
			continue;
		req->unmap_lba_[req->unmap_count_] = lba;
		req->unmap_nblocks_[req->unmap_count_] = cnt;
		req->unmap_count_++;
	}
	return unmap_start(req);
}

static int cmd_write_same16(struct scsi_disk *d, struct scsi_req *req)
{
	uint64_t lba = get_be64(req->cdb + 2);
	uint32_t cnt = get_be32(req->cdb + 10);

	if (d->read_only) {
		scsi_req_set_sense(req, SCSI_SENSE_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED);
		return 0;
	}
	/* Only the UNMAP form (what Linux's discard sends); writing a pattern is not offered. */
	if (!(req->cdb[1] & 0x08) || (req->cdb[1] & 0x10) || cnt == 0 ||
	    cnt > SCSI_MAX_UNMAP_BLOCKS) {
		set_illegal(req, SCSI_ASC_INVALID_FIELD_IN_CDB);
		return 0;
	}
	if (!unmap_allowed(d, req) || !range_ok(d, req, lba, cnt))
		return 0;
	req->unmap_lba_[0] = lba;
	req->unmap_nblocks_[0] = cnt;
	req->unmap_count_ = 1;
	return unmap_start(req);
}

static void cmd_verify(struct scsi_disk *d, struct scsi_req *req, bool sixteen)
{
	uint64_t lba = sixteen ? get_be64(req->cdb + 2) : get_be32(req->cdb + 2);
	uint32_t n = sixteen ? get_be32(req->cdb + 10) : get_be16(req->cdb + 7);

	/* BYTCHK (compare with the data-out buffer) is not offered */
	if (req->cdb[1] & 0x06) {
		set_illegal(req, SCSI_ASC_INVALID_FIELD_IN_CDB);
		return;
	}
	if (range_ok(d, req, lba, n))
		scsi_req_set_good(req);
}

void scsi_report_luns(struct scsi_req *req, const uint16_t *luns, unsigned nluns)
{
	uint8_t *b;
	uint32_t alloc;
	size_t len = 8 + 8 * (size_t)nluns;

	if (req->cdb_len < 12) {
		set_illegal(req, SCSI_ASC_INVALID_FIELD_IN_CDB);
		return;
	}
	alloc = get_be32(req->cdb + 6);
	if (alloc < 16 || req->cdb[2] > 2) {
		set_illegal(req, SCSI_ASC_INVALID_FIELD_IN_CDB);
		return;
	}
	b = calloc(1, len);
	if (!b) {
		scsi_req_set_sense(req, SCSI_SENSE_HARDWARE_ERROR, SCSI_ASC_INTERNAL_FAILURE);
		return;
	}
	put_be32(b, (uint32_t)(8 * nluns));
	for (unsigned i = 0; i < nluns; i++) {
		/* single level, peripheral device addressing */
		b[8 + 8 * i] = (uint8_t)((luns[i] >> 8) & 0x3f);
		b[8 + 8 * i + 1] = (uint8_t)luns[i];
	}
	req_put_data(req, b, MIN((uint64_t)alloc, len));
	free(b);
}

int scsi_disk_execute(struct scsi_disk *d, struct blockdev_queue *q, struct scsi_req *req)
{
	uint8_t op = req->cdb[0];
	unsigned need = scsi_cdb_len(op);

	req->disk_ = d;
	req->q_ = q;
	req->xfer_len = 0;
	req->sense_len = 0;
	if (req->iovcnt < 0 || (!req->iov && req->iovcnt) || req->cdb_len > SCSI_CDB_MAX) {
		set_illegal(req, SCSI_ASC_INVALID_FIELD_IN_CDB);
		return 0;
	}
	if (!need) {
		set_illegal(req, SCSI_ASC_INVALID_OPCODE);
		return 0;
	}
	if (req->cdb_len < need) {
		/* the initiator's CDB is shorter than its opcode needs */
		set_illegal(req, SCSI_ASC_INVALID_FIELD_IN_CDB);
		return 0;
	}
	switch (op) {
	case SCSI_OP_TEST_UNIT_READY:
	case SCSI_OP_START_STOP_UNIT:
	case SCSI_OP_PREVENT_ALLOW:
	case SCSI_OP_RESERVE6:
	case SCSI_OP_RELEASE6:
		scsi_req_set_good(req);
		return 0;
	case SCSI_OP_REQUEST_SENSE: {
		uint8_t s[SCSI_SENSE_LEN] = {0x70, 0, 0, 0, 0, 0, 0, SCSI_SENSE_LEN - 8};

		req_put_data(req, s, MIN((unsigned)req->cdb[4], sizeof(s)));
		return 0;
	}
	case SCSI_OP_INQUIRY:
		cmd_inquiry(d, req);
		return 0;
	case SCSI_OP_READ_CAPACITY10:
		cmd_read_capacity10(d, req);
		return 0;
	case SCSI_OP_SERVICE_ACTION_IN16:
		if ((req->cdb[1] & 0x1f) != SCSI_SAI_READ_CAPACITY16) {
			set_illegal(req, SCSI_ASC_INVALID_FIELD_IN_CDB);
			return 0;
		}
		cmd_read_capacity16(d, req);
		return 0;
	case SCSI_OP_MODE_SENSE6:
		cmd_mode_sense(d, req, false);
		return 0;
	case SCSI_OP_MODE_SENSE10:
		cmd_mode_sense(d, req, true);
		return 0;
	case SCSI_OP_READ6:
	case SCSI_OP_READ10:
	case SCSI_OP_READ12:
	case SCSI_OP_READ16:
		return cmd_rw(d, req, false);
	case SCSI_OP_WRITE6:
	case SCSI_OP_WRITE10:
	case SCSI_OP_WRITE12:
	case SCSI_OP_WRITE16:
		return cmd_rw(d, req, true);
	case SCSI_OP_VERIFY10:
	case SCSI_OP_VERIFY16:
		cmd_verify(d, req, op == SCSI_OP_VERIFY16);
		return 0;
	case SCSI_OP_SYNC_CACHE10:
	case SCSI_OP_SYNC_CACHE16:
		return cmd_sync_cache(d, req);
	case SCSI_OP_UNMAP:
		return cmd_unmap(d, req);
	case SCSI_OP_WRITE_SAME16:
		return cmd_write_same16(d, req);
	default:
		set_illegal(req, SCSI_ASC_INVALID_OPCODE);
		return 0;
	}
}
