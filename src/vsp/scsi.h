/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A SCSI block target (SBC-3/SPC-3 subset) over one blockdev, independent of any transport.
 * A request is a CDB plus a data buffer as iovecs; the answer is a SAM status, fixed-format
 * sense and the number of bytes moved. Reads and writes go straight between the caller's
 * iovecs and the blockdev queue (no copy). Commands that the guest sees (spec vmbus-devices.md
 * §2.7): INQUIRY (+ VPD 00/80/83/B0/B1/B2), READ CAPACITY 10/16, MODE SENSE 6/10, TEST UNIT
 * READY, READ/WRITE 6/10/12/16, VERIFY 10/16, SYNCHRONIZE CACHE 10/16, UNMAP, WRITE SAME(16)
 * with UNMAP, START STOP UNIT, PREVENT ALLOW, RESERVE/RELEASE, REQUEST SENSE. REPORT LUNS
 * needs the bus's LUN list: the transport answers it with scsi_report_luns().
 */
#ifndef VIRIDIAN_VSP_SCSI_H
#define VIRIDIAN_VSP_SCSI_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "disk/blockdev.h"

#define SCSI_CDB_MAX 16u
#define SCSI_SENSE_LEN 18u /* fixed format */

/* SAM status codes */
#define SCSI_STATUS_GOOD 0x00
#define SCSI_STATUS_CHECK_CONDITION 0x02
#define SCSI_STATUS_BUSY 0x08

/* Sense keys */
#define SCSI_SENSE_NO_SENSE 0x0
#define SCSI_SENSE_NOT_READY 0x2
#define SCSI_SENSE_MEDIUM_ERROR 0x3
#define SCSI_SENSE_HARDWARE_ERROR 0x4
#define SCSI_SENSE_ILLEGAL_REQUEST 0x5
#define SCSI_SENSE_DATA_PROTECT 0x7
#define SCSI_SENSE_ABORTED_COMMAND 0xb

/* Additional sense codes (ASC << 8 | ASCQ) */
#define SCSI_ASC_WRITE_ERROR 0x0c00
#define SCSI_ASC_UNRECOVERED_READ_ERROR 0x1100
#define SCSI_ASC_PARAM_LIST_LENGTH_ERROR 0x1a00
#define SCSI_ASC_INVALID_OPCODE 0x2000
#define SCSI_ASC_LBA_OUT_OF_RANGE 0x2100
#define SCSI_ASC_INVALID_FIELD_IN_CDB 0x2400
#define SCSI_ASC_LUN_NOT_SUPPORTED 0x2500
#define SCSI_ASC_INVALID_FIELD_IN_PARAM 0x2600
#define SCSI_ASC_WRITE_PROTECTED 0x2700
#define SCSI_ASC_SPACE_ALLOC_FAILED 0x2707
#define SCSI_ASC_SAVING_NOT_SUPPORTED 0x3900
#define SCSI_ASC_INTERNAL_FAILURE 0x4400

/* Opcodes (only those named in code) */
#define SCSI_OP_TEST_UNIT_READY 0x00
#define SCSI_OP_REQUEST_SENSE 0x03
#define SCSI_OP_READ6 0x08
#define SCSI_OP_WRITE6 0x0a
#define SCSI_OP_INQUIRY 0x12
#define SCSI_OP_RESERVE6 0x16
#define SCSI_OP_RELEASE6 0x17
#define SCSI_OP_MODE_SENSE6 0x1a
#define SCSI_OP_START_STOP_UNIT 0x1b
#define SCSI_OP_PREVENT_ALLOW 0x1e
#define SCSI_OP_READ_CAPACITY10 0x25
#define SCSI_OP_READ10 0x28
#define SCSI_OP_WRITE10 0x2a
#define SCSI_OP_VERIFY10 0x2f
#define SCSI_OP_SYNC_CACHE10 0x35
#define SCSI_OP_UNMAP 0x42
#define SCSI_OP_MODE_SENSE10 0x5a
#define SCSI_OP_READ16 0x88
#define SCSI_OP_WRITE16 0x8a
#define SCSI_OP_VERIFY16 0x8f
#define SCSI_OP_SYNC_CACHE16 0x91
#define SCSI_OP_WRITE_SAME16 0x93
#define SCSI_OP_SERVICE_ACTION_IN16 0x9e
#define SCSI_OP_REPORT_LUNS 0xa0
#define SCSI_OP_READ12 0xa8
#define SCSI_OP_WRITE12 0xaa

#define SCSI_SAI_READ_CAPACITY16 0x10

/* Limits advertised in VPD B0 and enforced. */
#define SCSI_MAX_UNMAP_DESCRIPTORS 16u
#define SCSI_MAX_UNMAP_BLOCKS 0x400000u /* per descriptor / WRITE SAME: 2 GiB at 512 */

enum scsi_dir {
	SCSI_DIR_NONE,
	SCSI_DIR_TO_DEV, /* write: the buffer holds data for the device */
	SCSI_DIR_FROM_DEV, /* read: the device fills the buffer */
};

struct scsi_disk_config {
	/* Stable identity of the medium (VHD/VHDX disk id, or a hash of the image path). */
	uint8_t id[16];
	/* Largest data buffer the transport passes, bytes (VPD B0 maximum transfer length). */
	uint32_t max_transfer_bytes;
	/* Discard granularity in bytes (VHDX/VHD block size), 0 = the physical sector size. */
	uint32_t unmap_granularity;
	bool read_only; /* in addition to the blockdev's own read_only */
	/* Every read through the blockdev queue (tests): no page-cache fast path. */
	bool no_inline_reads;
};

struct scsi_disk;

struct scsi_req {
	/* --- filled by the caller --- */
	uint8_t cdb[SCSI_CDB_MAX];
	uint8_t cdb_len; /* bytes of cdb the initiator sent; shorter than the opcode's CDB = error
			  */
	enum scsi_dir dir;
	/* Data buffer. scsi_disk_execute may shorten iovcnt / the last iov_len to the bytes the
	 * command moves; the array must stay valid until completion. */
	struct iovec *iov;
	int iovcnt;
	uint64_t buf_len; /* total bytes in iov (0 with no buffer) */
	/* The transport has a burst in flight: a read goes to the (plugged) queue rather than
	 * being served at submit, so a burst costs one system call instead of one per read. */
	bool batched;
	/* Called (from blockdev_queue_complete on the queue's thread) for requests that went
	 * asynchronous (scsi_disk_execute returned 1). */
	void (*complete)(struct scsi_req *req);
	void *opaque;

	/* --- results --- */
	uint8_t status; /* SAM status */
	uint8_t sense_len; /* 0 or SCSI_SENSE_LEN */
	uint8_t sense[SCSI_SENSE_LEN];
	uint32_t xfer_len; /* bytes moved to or from the buffer */

	/* --- private --- */
	struct scsi_disk *disk_;
	struct blockdev_queue *q_;
	struct blockdev_req bd_;
	unsigned unmap_next_, unmap_count_;
	uint64_t unmap_lba_[SCSI_MAX_UNMAP_DESCRIPTORS];
	uint32_t unmap_nblocks_[SCSI_MAX_UNMAP_DESCRIPTORS];
};

/* The blockdev stays the caller's (not closed by destroy). NULL + err_set(). */
struct scsi_disk *scsi_disk_create(struct blockdev *bd, const struct scsi_disk_config *cfg);
void scsi_disk_destroy(struct scsi_disk *d);
struct blockdev *scsi_disk_blockdev(const struct scsi_disk *d);

/*
 * Runs one command. q is the blockdev queue (of this disk's blockdev) the I/O goes to. A read
 * whose data is already in the page cache is copied straight into the buffer at submit
 * (preadv2 RWF_NOWAIT on the mapped range: never blocks) and finishes at once.
 * Returns 0: finished, results in req (complete() is not called); 1: in flight, complete() is
 * called later from blockdev_queue_complete(q); -EAGAIN: q is full, nothing was done (submit
 * again after a completion).
 */
int scsi_disk_execute(struct scsi_disk *d, struct blockdev_queue *q, struct scsi_req *req);

/* Helpers for the transport (they fill req's results, status GOOD or CHECK CONDITION). */
void scsi_req_set_sense(struct scsi_req *req, uint8_t key, uint16_t asc_ascq);
void scsi_req_set_good(struct scsi_req *req);
/* INQUIRY for a LUN that does not exist: peripheral qualifier 3 (no device at this LUN). */
void scsi_inquiry_absent(struct scsi_req *req);
/* REPORT LUNS (single-level LUN addressing) over the given list. */
void scsi_report_luns(struct scsi_req *req, const uint16_t *luns, unsigned nluns);
/* CDB length an opcode needs (from its group code); 0 for unknown groups. */
unsigned scsi_cdb_len(uint8_t opcode);

#endif
