// SPDX-License-Identifier: GPL-2.0-only
/*
 * storvsp: synthetic SCSI controller over VMBus (spec vmbus-devices.md §2), a vmbus_device on
 * top of scsi.c and the blockdev queues.
 *
 * Per channel (primary or sub-channel, each on its own I/O thread): a pool of requests, one
 * blockdev queue per LUN created on first use with its eventfd in the channel's epoll loop,
 * and a FIFO of requests that found their queue full. Completions go back on the channel the
 * request came from, in whatever order the I/O finishes. Every reply is one 64-byte vstor
 * packet in a COMP packet (the guest's 80-byte bounce buffer: §1.2, §2.4).
 *
 * Everything in a guest packet is copied out of the ring once, then validated; a bad field
 * gets an error status (or SRB status / sense) in the reply, never a crash, and every request
 * that asked for a completion gets one (the guest never times out, §2.6).
 */
#include "vsp/storvsp.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "lib/crc32c.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/util.h"
#include "vmbus/device.h"
#include "vsp/scsi.h"
#include "vsp/storvsp_proto.h"

/* One GPA-direct buffer of STORVSP_MAX_TRANSFER bytes at any page offset spans this many
 * pages; the iovec array cannot need more (adjacent pages are merged, never split). */
#define STORVSP_MAX_IOV (STORVSP_MAX_TRANSFER / 4096u + 1u)
#define STORVSP_QUEUE_DEPTH 256u

struct storvsp_lun {
	struct blockdev *bd;
	bool owned;
	struct scsi_disk *disk;
};

struct storvsp {
	struct vmbus_device dev;
	/* LUNs [0, nluns) are fully set up (release on hot-add, acquire on use) */
	_Atomic unsigned nluns;
	pthread_mutex_t add_lock; /* hot-adds */
	int notify_efd; /* hot-add -> the primary channel sends ENUMERATE_BUS */
	struct storvsp_lun luns[STORVSP_MAX_LUNS];
	uint16_t lun_ids[STORVSP_MAX_LUNS];
	/* protocol state: written on the primary channel's thread, read by sub-channels */
	_Atomic int state;
	uint16_t version;
	/* stats */
	_Atomic uint64_t srbs, completions, errors, bad_packets, queue_full;
};

enum storvsp_state {
	STORVSP_IDLE, /* channel opened, waiting for BEGIN_INITIALIZATION */
	STORVSP_BEGUN, /* BEGIN seen: version query */
	STORVSP_VERSION, /* version agreed: properties, END */
	STORVSP_READY, /* END seen: I/O */
};

struct storvsp_chan;

struct storvsp_req {
	struct scsi_req sreq; /* first: scsi callbacks get it */
	struct storvsp_chan *ch;
	struct storvsp_req *next;
	uint64_t trans_id;
	bool reply; /* the guest asked for a completion */
	uint8_t lun;
	struct vstor_packet pkt; /* the request as copied in; the reply is built over it */
	struct iovec iov[STORVSP_MAX_IOV];
};

struct storvsp_chan {
	struct storvsp *sv;
	struct vmbus_chan *chan;
	struct blockdev_queue *q[STORVSP_MAX_LUNS];
	struct storvsp_req *free_list;
	struct storvsp_req *wait_head, *wait_tail;
	unsigned allocated, inflight;
	bool closing;
	/*
	 * Submission batching: the requests of a burst (packets the guest wrote together) queue
	 * plugged and go to the kernel in one io_uring_enter at the burst's end (batch_end).
	 * touched: queues with submissions whose completions may not have been signalled (see
	 * blockdev_queue_fd): reaped before the callback that submitted returns.
	 */
	uint64_t plugged[(STORVSP_MAX_LUNS + 63) / 64];
	uint64_t touched[(STORVSP_MAX_LUNS + 63) / 64];
	/* One fd in the server's loop per channel (it has a few slots only): an epoll set of
	 * every LUN queue's completion eventfd and the hot-add notifier. */
	int epfd;
	/* RESET_* waiting for the channel's I/O to drain */
	unsigned resets_pending;
	uint64_t reset_ids[4];
};

static struct storvsp *to_sv(struct vmbus_device *dev)
{
	return dev->priv;
}

static void sv_stat_inc(_Atomic uint64_t *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* ---- replies ---- */

static void chan_send_reply(struct storvsp_chan *ch, uint64_t trans_id, struct vstor_packet *pkt)
{
	int ret;

	pkt->operation = VSTOR_OP_COMPLETE_IO;
	pkt->flags = 0;
	/* Always 64 bytes: Linux rejects shorter, its buffer takes no more (§2.4). */
	ret = vmbus_chan_send_completion(ch->chan, trans_id, pkt, VSTOR_PACKET_SIZE);
	if (ret < 0 && ret != -EPIPE)
		log_warn_ratelimited("vsp", "storvsp: completion for %#llx not sent: %s",
				     (unsigned long long)trans_id, strerror(-ret));
}

static void chan_reply_status(struct storvsp_chan *ch, uint64_t trans_id, struct vstor_packet *pkt,
			      uint32_t status)
{
	pkt->status = status;
	chan_send_reply(ch, trans_id, pkt);
}

/* ---- request pool ---- */

static struct storvsp_req *req_get(struct storvsp_chan *ch)
{
	struct storvsp_req *r = ch->free_list;

	if (r) {
		ch->free_list = r->next;
	} else {
		if (ch->allocated >= STORVSP_MAX_INFLIGHT)
			return NULL;
		r = malloc(sizeof(*r));
		if (!r)
			return NULL;
		ch->allocated++;
	}
	r->ch = ch;
	r->next = NULL;
	return r;
}

static void req_put(struct storvsp_chan *ch, struct storvsp_req *r)
{
	r->next = ch->free_list;
	ch->free_list = r;
}

static void chan_check_resets(struct storvsp_chan *ch)
{
	struct vstor_packet pkt;

	if (!ch->resets_pending || ch->inflight || ch->closing)
		return;
	for (unsigned i = 0; i < ch->resets_pending; i++) {
		memset(&pkt, 0, sizeof(pkt));
		chan_reply_status(ch, ch->reset_ids[i], &pkt, VSTOR_STATUS_SUCCESS);
	}
	ch->resets_pending = 0;
}

/* Fills the SRB part of the reply from the SCSI result and sends it. */
static void req_finish(struct storvsp_req *r)
{
	struct storvsp_chan *ch = r->ch;
	struct storvsp *sv = ch->sv;
	struct vstor_srb *srb = &r->pkt.srb;
	struct scsi_req *s = &r->sreq;
	uint8_t sense_max = srb->sense_info_length;
	uint32_t status = VSTOR_STATUS_SUCCESS;

	srb->scsi_status = s->status;
	srb->data_transfer_length = s->xfer_len;
	memset(srb->sense_data, 0, sizeof(srb->sense_data));
	srb->sense_info_length = 0;
	if (s->status == SCSI_STATUS_GOOD) {
		srb->srb_status = SRB_STATUS_SUCCESS;
	} else {
		srb->srb_status = SRB_STATUS_ERROR;
		srb->data_transfer_length = 0;
		status = VSTOR_STATUS_IO_DEVICE_ERROR;
		if (s->sense_len) {
			uint8_t n = MIN(s->sense_len, sense_max);

			n = MIN(n, (uint8_t)VSTOR_SENSE_SIZE);
			memcpy(srb->sense_data, s->sense, n);
			srb->sense_info_length = n;
			if (n)
				srb->srb_status |= SRB_STATUS_AUTOSENSE_VALID;
		}
		sv_stat_inc(&sv->errors);
	}
	if (r->reply && !ch->closing) {
		chan_reply_status(ch, r->trans_id, &r->pkt, status);
		sv_stat_inc(&sv->completions);
	}
	req_put(ch, r);
}

/* Completion of a request that was not run by the SCSI target (bad packet, bad address). */
static void req_fail(struct storvsp_req *r, uint8_t srb_status, uint8_t scsi_status,
		     uint32_t status)
{
	struct storvsp_chan *ch = r->ch;
	struct vstor_srb *srb = &r->pkt.srb;

	srb->srb_status = srb_status;
	srb->scsi_status = scsi_status;
	srb->data_transfer_length = 0;
	srb->sense_info_length = 0;
	memset(srb->sense_data, 0, sizeof(srb->sense_data));
	sv_stat_inc(&ch->sv->errors);
	if (r->reply) {
		chan_reply_status(ch, r->trans_id, &r->pkt, status);
		sv_stat_inc(&ch->sv->completions);
	}
	req_put(ch, r);
}

/* ---- I/O ---- */

static void req_scsi_done(struct scsi_req *s)
{
	struct storvsp_req *r = (struct storvsp_req *)s;
	struct storvsp_chan *ch = r->ch;

	ch->inflight--;
	req_finish(r);
}

/* Per-LUN bitmaps of a channel (plugged, touched). */
static bool lun_bit(const uint64_t *map, unsigned lun)
{
	return map[lun / 64] & (1ull << (lun % 64));
}

static void lun_set(uint64_t *map, unsigned lun)
{
	map[lun / 64] |= 1ull << (lun % 64);
}

static void chan_unplug_all(struct storvsp_chan *ch)
{
	for (unsigned i = 0; i < STORVSP_MAX_LUNS; i++) {
		if (lun_bit(ch->plugged, i)) {
			ch->plugged[i / 64] &= ~(1ull << (i % 64));
			blockdev_queue_unplug(ch->q[i]);
		}
	}
}

static void chan_run_waiting(struct storvsp_chan *ch);

/*
 * Runs the completions of every queue this channel submitted to (reads the page cache holds
 * finished inside the submit call), then requests that waited for room, until nothing new.
 */
static void chan_reap(struct storvsp_chan *ch)
{
	bool again;

	do {
		again = false;
		for (unsigned w = 0; w < ARRAY_SIZE(ch->touched); w++) {
			uint64_t bits = ch->touched[w];

			ch->touched[w] = 0;
			while (bits) {
				unsigned i = w * 64 + (unsigned)__builtin_ctzll(bits);

				bits &= bits - 1;
				blockdev_queue_complete(ch->q[i]);
			}
		}
		if (ch->wait_head) {
			chan_run_waiting(ch);
			chan_unplug_all(ch);
		}
		for (unsigned w = 0; w < ARRAY_SIZE(ch->touched); w++)
			again = again || ch->touched[w];
	} while (again);
}

/* End of a burst: one io_uring_enter per queue for what it batched, then the replies. */
static void storvsp_batch_end(struct vmbus_device *dev, struct vmbus_chan *chan)
{
	struct storvsp_chan *ch = vmbus_chan_priv(chan);

	(void)dev;
	if (!ch)
		return;
	chan_unplug_all(ch);
	chan_reap(ch);
	chan_check_resets(ch);
}

/*
 * A request of a burst (more packets follow, or earlier ones of this burst are queued)
 * waits plugged until the burst ends. true = plugged: the request should queue rather than
 * run at submit.
 */
static bool chan_maybe_plug(struct storvsp_chan *ch, unsigned lun, bool more)
{
	if (lun_bit(ch->plugged, lun))
		return true;
	if (!more)
		return false;
	lun_set(ch->plugged, lun);
	blockdev_queue_plug(ch->q[lun]);
	return true;
}

/* 0 = finished or queued for later, never fails. more: another request follows at once. */
static void req_submit(struct storvsp_chan *ch, struct storvsp_req *r, bool more)
{
	struct storvsp_lun *lun = &ch->sv->luns[r->lun];
	int ret;

	r->sreq.batched = chan_maybe_plug(ch, r->lun, more);
	ret = scsi_disk_execute(lun->disk, ch->q[r->lun], &r->sreq);

	if (ret == 1) {
		ch->inflight++;
		lun_set(ch->touched, r->lun);
		return;
	}
	if (ret == -EAGAIN) {
		sv_stat_inc(&ch->sv->queue_full);
		r->next = NULL;
		if (ch->wait_tail)
			ch->wait_tail->next = r;
		else
			ch->wait_head = r;
		ch->wait_tail = r;
		return;
	}
	req_finish(r);
}

static void chan_run_waiting(struct storvsp_chan *ch)
{
	struct storvsp_req *list = ch->wait_head;

	ch->wait_head = ch->wait_tail = NULL;
	while (list) {
		struct storvsp_req *r = list;

		list = r->next;
		req_submit(ch, r, list != NULL);
	}
}

#define STORVSP_TAG_NOTIFY UINT32_MAX

/* Unsolicited ENUMERATE_BUS (trans_id 0, no completion): the guest rescans (§2.6). */
static void chan_send_enumerate(struct storvsp_chan *ch)
{
	struct vstor_packet p;
	int ret;

	if (atomic_load_explicit(&ch->sv->state, memory_order_acquire) != STORVSP_READY)
		return; /* the guest scans anyway when it finishes the handshake */
	memset(&p, 0, sizeof(p));
	p.operation = VSTOR_OP_ENUMERATE_BUS;
	ret = vmbus_chan_send_inband(ch->chan, 0, &p, VSTOR_PACKET_SIZE, false);
	if (ret < 0)
		log_warn_ratelimited("vsp", "storvsp: ENUMERATE_BUS not sent: %s", strerror(-ret));
}

/* The channel's epoll set is readable: end of a packet pass and/or I/O completions. */
static void chan_events(struct vmbus_chan *chan, int fd, void *opaque)
{
	struct storvsp_chan *ch = opaque;
	struct epoll_event evs[16];
	int n;

	do {
		n = epoll_wait(ch->epfd, evs, ARRAY_SIZE(evs), 0);
		for (int i = 0; i < n; i++) {
			uint32_t tag = (uint32_t)evs[i].data.u64;
			uint64_t v;

			if (tag == STORVSP_TAG_NOTIFY) {
				if (read(ch->sv->notify_efd, &v, sizeof(v)) == sizeof(v))
					chan_send_enumerate(ch);
			} else if (tag < STORVSP_MAX_LUNS && ch->q[tag]) {
				lun_set(ch->touched, (unsigned)tag);
			}
		}
	} while (n == (int)ARRAY_SIZE(evs));
	chan_reap(ch);
	chan_check_resets(ch);
}

static struct blockdev_queue *chan_lun_queue(struct storvsp_chan *ch, unsigned lun)
{
	struct blockdev_queue *q = ch->q[lun];
	struct epoll_event ev;
	int ret;

	if (q)
		return q;
	q = blockdev_queue_create(ch->sv->luns[lun].bd, STORVSP_QUEUE_DEPTH, BLOCKDEV_ENGINE_AUTO);
	if (!q) {
		log_warn_ratelimited("vsp", "storvsp: no I/O queue for LUN %u: %s", lun, err_msg());
		return NULL;
	}
	ev.events = EPOLLIN;
	ev.data.u64 = lun;
	ret = epoll_ctl(ch->epfd, EPOLL_CTL_ADD, blockdev_queue_fd(q), &ev);
	if (ret < 0) {
		log_warn_ratelimited("vsp", "storvsp: cannot watch the I/O queue of LUN %u: %s",
				     lun, strerror(errno));
		blockdev_queue_destroy(q);
		return NULL;
	}
	ch->q[lun] = q;
	return q;
}

/*
 * EXECUTE_SRB. r->pkt holds the guest's 64 bytes (copied). pkt is the ring packet (for its
 * GPA-direct ranges).
 */
static void handle_srb(struct storvsp_chan *ch, struct storvsp_req *r, const struct vmbus_pkt *pkt)
{
	struct storvsp *sv = ch->sv;
	struct vstor_srb *srb = &r->pkt.srb;
	struct scsi_req *s = &r->sreq;
	uint32_t want = srb->data_transfer_length;
	unsigned nluns;
	bool present;

	sv_stat_inc(&sv->srbs);
	memset(s, 0, sizeof(*s));
	if (atomic_load_explicit(&sv->state, memory_order_acquire) != STORVSP_READY) {
		req_fail(r, SRB_STATUS_ERROR, 0, VSTOR_STATUS_INVALID_DEVICE_STATE);
		return;
	}
	if (srb->cdb_length == 0 || srb->cdb_length > VSTOR_CDB_SIZE ||
	    srb->data_in > VSTOR_DATA_NONE) {
		sv_stat_inc(&sv->bad_packets);
		req_fail(r, SRB_STATUS_INVALID_REQUEST, 0, VSTOR_STATUS_INVALID_PARAMETER);
		return;
	}
	memcpy(s->cdb, srb->cdb, srb->cdb_length);
	s->cdb_len = srb->cdb_length;
	s->dir = srb->data_in == VSTOR_DATA_WRITE  ? SCSI_DIR_TO_DEV
		 : srb->data_in == VSTOR_DATA_READ ? SCSI_DIR_FROM_DEV
						   : SCSI_DIR_NONE;
	s->iov = r->iov;
	s->complete = req_scsi_done;
	s->opaque = r;

	/* Data buffer: only in a GPA-direct packet; its ranges are checked against guest RAM. */
	if (pkt->type == VMBUS_PKT_DATA_USING_GPA_DIRECT) {
		uint64_t total = 0;
		int n = vmbus_pkt_gpa_direct_iov(vmbus_chan_guest_mem(ch->chan), pkt, r->iov,
						 (int)STORVSP_MAX_IOV, STORVSP_MAX_TRANSFER,
						 &total);

		if (n < 0 || want > total) {
			sv_stat_inc(&sv->bad_packets);
			req_fail(r, SRB_STATUS_INVALID_REQUEST, 0, VSTOR_STATUS_INVALID_PARAMETER);
			return;
		}
		s->iovcnt = n;
		s->buf_len = total;
		/* The SRB's length is what the guest means to move: never more than the buffer. */
		if (want < total) {
			uint64_t left = want;
			int i;

			for (i = 0; i < n && left; i++) {
				if (r->iov[i].iov_len >= left) {
					r->iov[i].iov_len = (size_t)left;
					left = 0;
				} else {
					left -= r->iov[i].iov_len;
				}
			}
			s->iovcnt = i;
			s->buf_len = want;
		}
	} else if (want && s->dir != SCSI_DIR_NONE) {
		sv_stat_inc(&sv->bad_packets);
		req_fail(r, SRB_STATUS_INVALID_REQUEST, 0, VSTOR_STATUS_INVALID_PARAMETER);
		return;
	}
	if (s->dir == SCSI_DIR_NONE)
		s->buf_len = 0;

	/* Addressing: every disk is at path 0, target 0, LUN = slot (§2.7). */
	nluns = atomic_load_explicit(&sv->nluns, memory_order_acquire);
	present = srb->path_id == 0 && srb->target_id == 0 && srb->lun < nluns;
	if (s->cdb[0] == SCSI_OP_REPORT_LUNS) {
		bool ours = srb->path_id == 0 && srb->target_id == 0;

		scsi_report_luns(s, sv->lun_ids, ours ? nluns : 0);
		req_finish(r);
		return;
	}
	if (!present) {
		if (s->cdb[0] == SCSI_OP_INQUIRY) {
			scsi_inquiry_absent(s);
			req_finish(r);
		} else {
			req_fail(r, SRB_STATUS_INVALID_LUN, SCSI_STATUS_CHECK_CONDITION,
				 VSTOR_STATUS_DEVICE_DOES_NOT_EXIST);
		}
		return;
	}
	r->lun = srb->lun;
	if (!chan_lun_queue(ch, r->lun)) {
		req_fail(r, SRB_STATUS_BUSY, SCSI_STATUS_BUSY, VSTOR_STATUS_DEVICE_BUSY);
		return;
	}
	if (ch->wait_head) {
		/* keep the order: requests already waiting go first */
		sv_stat_inc(&sv->queue_full);
		r->next = NULL;
		ch->wait_tail->next = r;
		ch->wait_tail = r;
		return;
	}
	req_submit(ch, r, pkt->more);
}

/* ---- control operations ---- */

static bool version_supported(uint16_t v)
{
	return v == VSTOR_VERSION_WIN10 || v == VSTOR_VERSION_WIN8_1 || v == VSTOR_VERSION_WIN8;
}

static void handle_control(struct storvsp_chan *ch, uint64_t trans_id, bool reply,
			   struct vstor_packet *p)
{
	struct storvsp *sv = ch->sv;
	bool primary = vmbus_chan_index(ch->chan) == 0;
	int state = atomic_load_explicit(&sv->state, memory_order_acquire);
	uint32_t status = VSTOR_STATUS_SUCCESS;

	switch (p->operation) {
	case VSTOR_OP_BEGIN_INITIALIZATION:
		if (!primary) {
			status = VSTOR_STATUS_INVALID_DEVICE_STATE;
			break;
		}
		sv->version = 0;
		atomic_store_explicit(&sv->state, STORVSP_BEGUN, memory_order_release);
		break;
	case VSTOR_OP_QUERY_PROTOCOL_VERSION:
		if (!primary || state != STORVSP_BEGUN) {
			status = VSTOR_STATUS_INVALID_DEVICE_STATE;
		} else if (!version_supported(p->version.major_minor)) {
			status = VSTOR_STATUS_REVISION_MISMATCH;
		} else {
			sv->version = p->version.major_minor;
			atomic_store_explicit(&sv->state, STORVSP_VERSION, memory_order_release);
		}
		break;
	case VSTOR_OP_QUERY_PROPERTIES:
		if (!primary || state != STORVSP_VERSION) {
			status = VSTOR_STATUS_INVALID_DEVICE_STATE;
			break;
		}
		memset(&p->props, 0, sizeof(p->props));
		p->props.max_channel_cnt = sv->dev.max_subchannels;
		p->props.flags = sv->dev.max_subchannels ? VSTOR_PROP_FLAG_MULTI_CHANNEL : 0;
		p->props.max_transfer_bytes = STORVSP_MAX_TRANSFER;
		break;
	case VSTOR_OP_END_INITIALIZATION:
		if (!primary || state != STORVSP_VERSION) {
			status = VSTOR_STATUS_INVALID_DEVICE_STATE;
			break;
		}
		atomic_store_explicit(&sv->state, STORVSP_READY, memory_order_release);
		break;
	case VSTOR_OP_CREATE_SUB_CHANNELS: {
		uint16_t n = p->sub_channel_count;
		int ret;

		if (!primary || state != STORVSP_READY) {
			status = VSTOR_STATUS_INVALID_DEVICE_STATE;
			break;
		}
		if (n == 0 || n > sv->dev.max_subchannels) {
			status = VSTOR_STATUS_INVALID_PARAMETER;
			break;
		}
		/* Answer first: the guest handles the offers once this completes (§2.5). */
		if (reply)
			chan_reply_status(ch, trans_id, p, VSTOR_STATUS_SUCCESS);
		ret = vmbus_device_offer_subchannels(&sv->dev, n);
		if (ret < 0)
			log_warn_ratelimited("vsp", "storvsp: offering %u sub-channels: %s", n,
					     strerror(-ret));
		return;
	}
	case VSTOR_OP_RESET_LUN:
	case VSTOR_OP_RESET_ADAPTER:
	case VSTOR_OP_RESET_BUS:
		/* Nothing to abort; answer once this channel's I/O has drained (§2.6). */
		if (reply && (ch->inflight || ch->wait_head)) {
			if (ch->resets_pending < ARRAY_SIZE(ch->reset_ids)) {
				ch->reset_ids[ch->resets_pending++] = trans_id;
				return;
			}
			status = VSTOR_STATUS_DEVICE_BUSY;
		}
		break;
	default:
		/* FCHBA_DATA (not an FC adapter), host-to-guest operations, unknown ones */
		sv_stat_inc(&sv->bad_packets);
		status = VSTOR_STATUS_INVALID_DEVICE_REQUEST;
		break;
	}
	if (reply)
		chan_reply_status(ch, trans_id, p, status);
}

static int storvsp_packet(struct vmbus_device *dev, struct vmbus_chan *chan,
			  const struct vmbus_pkt *pkt)
{
	struct storvsp_chan *ch = vmbus_chan_priv(chan);
	struct storvsp *sv = to_sv(dev);
	bool reply = pkt->flags & VSTOR_FLAG_REQUEST_COMPLETION;
	struct vstor_packet p;
	uint32_t len;

	if (!ch)
		return 0;
	if (pkt->type != VMBUS_PKT_DATA_INBAND && pkt->type != VMBUS_PKT_DATA_USING_GPA_DIRECT) {
		/* the guest sends no completions or transfer-page packets to storvsp */
		sv_stat_inc(&sv->bad_packets);
		log_warn_ratelimited("vsp", "storvsp: packet type %u ignored", pkt->type);
		return 0;
	}
	/* One copy: the guest can rewrite the ring under us. */
	memset(&p, 0, sizeof(p));
	len = MIN(pkt->payload_len, (uint32_t)VSTOR_PACKET_SIZE);
	memcpy(&p, pkt->payload, len);
	if (len < VSTOR_PACKET_SIZE) {
		/* pre-Win8 sized or truncated: not a protocol we negotiate */
		sv_stat_inc(&sv->bad_packets);
		if (reply) {
			if (p.operation == VSTOR_OP_EXECUTE_SRB) {
				memset(&p.srb.sense_data, 0, sizeof(p.srb.sense_data));
				p.srb.srb_status = SRB_STATUS_INVALID_REQUEST;
				p.srb.data_transfer_length = 0;
			}
			chan_reply_status(ch, pkt->trans_id, &p, VSTOR_STATUS_INVALID_PARAMETER);
		}
		return 0;
	}
	if (p.operation == VSTOR_OP_EXECUTE_SRB) {
		struct storvsp_req *r = req_get(ch);

		if (!r) {
			/* more requests than any driver keeps in flight: push back */
			if (reply) {
				memset(&p.srb.sense_data, 0, sizeof(p.srb.sense_data));
				p.srb.srb_status = SRB_STATUS_BUSY;
				p.srb.scsi_status = SCSI_STATUS_BUSY;
				p.srb.data_transfer_length = 0;
				chan_reply_status(ch, pkt->trans_id, &p, VSTOR_STATUS_DEVICE_BUSY);
			}
			return 0;
		}
		r->trans_id = pkt->trans_id;
		r->reply = reply;
		r->pkt = p;
		handle_srb(ch, r, pkt);
		/* The guest's claim is only a hint here: a lie costs it its own batching. */
		return p.srb.data_transfer_length >= STORVSP_PIECE_BYTES ? VMBUS_PKT_END_PIECE : 0;
	}
	if (pkt->type != VMBUS_PKT_DATA_INBAND) {
		sv_stat_inc(&sv->bad_packets);
		if (reply)
			chan_reply_status(ch, pkt->trans_id, &p, VSTOR_STATUS_INVALID_PARAMETER);
		return 0;
	}
	handle_control(ch, pkt->trans_id, reply, &p);
	return 0;
}

static void chan_free_fds(struct storvsp_chan *ch)
{
	if (ch->epfd >= 0)
		close(ch->epfd);
}

static int storvsp_open(struct vmbus_device *dev, struct vmbus_chan *chan, const uint8_t *user_data)
{
	struct storvsp_chan *ch = calloc(1, sizeof(*ch));
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = STORVSP_TAG_NOTIFY};
	int ret;

	if (!ch)
		return -ENOMEM;
	ch->sv = to_sv(dev);
	ch->chan = chan;
	ch->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (ch->epfd < 0) {
		ret = -errno;
		log_warn("vsp", "storvsp: channel %u: %s", vmbus_chan_index(chan), strerror(-ret));
		chan_free_fds(ch);
		free(ch);
		return ret;
	}
	/* the primary channel also carries hot-add notifications */
	if (vmbus_chan_index(chan) == 0 && ch->sv->notify_efd >= 0 &&
	    epoll_ctl(ch->epfd, EPOLL_CTL_ADD, ch->sv->notify_efd, &ev) < 0)
		log_warn("vsp", "storvsp: hot-add notifications off: %s", strerror(errno));
	ret = vmbus_chan_add_fd(chan, ch->epfd, chan_events, ch);
	if (ret < 0) {
		log_warn("vsp", "storvsp: channel %u: cannot watch its I/O: %s",
			 vmbus_chan_index(chan), strerror(-ret));
		chan_free_fds(ch);
		free(ch);
		return ret;
	}
	/* storvsc's receive buffer holds exactly one 64-byte vstor packet (§1.2) */
	vmbus_chan_set_max_pkt(chan, STORVSP_MAX_PKT_SIZE);
	if (vmbus_chan_index(chan) == 0) {
		/* a (re)opened primary channel starts the handshake again (resume, reload) */
		ch->sv->version = 0;
		atomic_store_explicit(&ch->sv->state, STORVSP_IDLE, memory_order_release);
	}
	vmbus_chan_set_priv(chan, ch);
	return 0;
}

static void storvsp_close(struct vmbus_device *dev, struct vmbus_chan *chan)
{
	struct storvsp_chan *ch = vmbus_chan_priv(chan);
	struct storvsp_req *r;

	if (!ch)
		return;
	/* In-flight I/O finishes (callbacks free the requests without replying). */
	ch->closing = true;
	chan_unplug_all(ch);
	vmbus_chan_del_fd(chan, ch->epfd);
	for (unsigned i = 0; i < STORVSP_MAX_LUNS; i++)
		if (ch->q[i])
			blockdev_queue_destroy(ch->q[i]);
	chan_free_fds(ch);
	while ((r = ch->wait_head)) {
		ch->wait_head = r->next;
		free(r);
	}
	while ((r = ch->free_list)) {
		ch->free_list = r->next;
		free(r);
	}
	vmbus_chan_set_priv(chan, NULL);
	free(ch);
}

static void storvsp_reset(struct vmbus_device *dev)
{
	struct storvsp *sv = to_sv(dev);

	sv->version = 0;
	atomic_store_explicit(&sv->state, STORVSP_IDLE, memory_order_release);
}

static const struct vmbus_device_ops storvsp_ops = {
	.open = storvsp_open,
	.packet = storvsp_packet,
	.batch_end = storvsp_batch_end,
	.close = storvsp_close,
	.reset = storvsp_reset,
};

/* ---- creation ---- */

/* The unit serial and NAA id: the image's own id (VHD/VHDX), else a hash of its path. */
static void lun_identity(struct blockdev *bd, const char *path, unsigned index, uint8_t id[16])
{
	struct disk_info info;
	char real[PATH_MAX];
	const char *src = path;
	uint32_t h;

	memset(&info, 0, sizeof(info));
	if (disk_info_get(bd, &info) == 0 && !guid_is_zero(&info.disk_id)) {
		memcpy(id, info.disk_id.b, 16);
		return;
	}
	if (path && realpath(path, real))
		src = real;
	if (!src) {
		/* no path, no id: stable for the VM's lifetime only */
		memset(id, 0, 16);
		id[15] = (uint8_t)index;
		return;
	}
	for (unsigned i = 0; i < 4; i++) {
		h = crc32c(0x9e3779b9u * (i + 1), src, strlen(src));
		memcpy(id + 4 * i, &h, 4);
	}
}

static int lun_open(struct storvsp *sv, unsigned i, const struct storvsp_lun_config *lc)
{
	struct storvsp_lun *lun = &sv->luns[i];
	struct scsi_disk_config sc;
	struct disk_info info;
	int ret;

	if (lc->bd) {
		lun->bd = lc->bd;
	} else {
		if (!lc->path) {
			err_set("disk %u has no image path", i);
			return -EINVAL;
		}
		ret = disk_open(lc->path, lc->format, lc->read_only ? DISK_OPEN_RDONLY : 0,
				&lun->bd);
		if (ret < 0) {
			err_prefix("disk %s", lc->path);
			return ret;
		}
		lun->owned = true;
	}
	memset(&sc, 0, sizeof(sc));
	lun_identity(lun->bd, lc->path, i, sc.id);
	sc.max_transfer_bytes = STORVSP_MAX_TRANSFER;
	sc.read_only = lc->read_only;
	memset(&info, 0, sizeof(info));
	if (disk_info_get(lun->bd, &info) == 0)
		sc.unmap_granularity = info.block_size;
	lun->disk = scsi_disk_create(lun->bd, &sc);
	if (!lun->disk) {
		if (lc->path)
			err_prefix("disk %s", lc->path);
		if (lun->owned)
			blockdev_close(lun->bd);
		memset(lun, 0, sizeof(*lun));
		return -EINVAL;
	}
	return 0;
}

static void storvsp_free(struct storvsp *sv)
{
	if (sv->notify_efd >= 0)
		close(sv->notify_efd);
	pthread_mutex_destroy(&sv->add_lock);
	for (unsigned i = 0; i < STORVSP_MAX_LUNS; i++) {
		struct storvsp_lun *lun = &sv->luns[i];

		scsi_disk_destroy(lun->disk);
		if (lun->owned && lun->bd)
			blockdev_close(lun->bd);
	}
	free(sv);
}

struct vmbus_device *vsp_storvsp_create(const struct storvsp_config *cfg)
{
	static const struct guid scsi_class = STORVSP_SCSI_CLASS_GUID;
	struct storvsp *sv;

	if (!cfg->nluns || cfg->nluns > STORVSP_MAX_LUNS || !cfg->luns) {
		err_set("a SCSI controller takes 1 to %u disks, not %u", STORVSP_MAX_LUNS,
			cfg->nluns);
		return NULL;
	}
	sv = calloc(1, sizeof(*sv));
	if (!sv) {
		err_set("out of memory");
		return NULL;
	}
	pthread_mutex_init(&sv->add_lock, NULL);
	sv->notify_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	for (unsigned i = 0; i < STORVSP_MAX_LUNS; i++)
		sv->lun_ids[i] = (uint16_t)i;
	for (unsigned i = 0; i < cfg->nluns; i++) {
		if (lun_open(sv, i, &cfg->luns[i]) < 0) {
			storvsp_free(sv);
			return NULL;
		}
	}
	atomic_init(&sv->nluns, cfg->nluns);
	sv->dev.ops = &storvsp_ops;
	sv->dev.name = "storvsp";
	sv->dev.class_id = scsi_class;
	if (guid_is_zero(&cfg->instance_id))
		guid_generate(&sv->dev.instance_id);
	else
		sv->dev.instance_id = cfg->instance_id;
	sv->dev.max_subchannels = (uint16_t)MIN(cfg->max_subchannels, 64u);
	sv->dev.priv = sv;
	atomic_init(&sv->state, STORVSP_IDLE);
	return &sv->dev;
}

int vsp_storvsp_add_lun(struct vmbus_device *dev, const struct storvsp_lun_config *lc)
{
	struct storvsp *sv = to_sv(dev);
	uint64_t one = 1;
	unsigned n;
	int ret;

	pthread_mutex_lock(&sv->add_lock);
	n = atomic_load_explicit(&sv->nluns, memory_order_relaxed);
	if (n >= STORVSP_MAX_LUNS) {
		pthread_mutex_unlock(&sv->add_lock);
		err_set("the SCSI controller already has %u disks (the most it takes)", n);
		return -ENOSPC;
	}
	ret = lun_open(sv, n, lc);
	if (ret < 0) {
		pthread_mutex_unlock(&sv->add_lock);
		return ret;
	}
	/* the slot is complete before any channel thread can see it */
	atomic_store_explicit(&sv->nluns, n + 1, memory_order_release);
	pthread_mutex_unlock(&sv->add_lock);
	if (sv->notify_efd >= 0 && write(sv->notify_efd, &one, sizeof(one)) != sizeof(one))
		log_warn("vsp", "storvsp: hot-add of LUN %u not announced", n);
	return (int)n;
}

void vsp_storvsp_destroy(struct vmbus_device *dev)
{
	if (dev)
		storvsp_free(to_sv(dev));
}

void vsp_storvsp_stats(struct vmbus_device *dev, struct storvsp_stats *out)
{
	struct storvsp *sv = to_sv(dev);

	out->srbs = atomic_load_explicit(&sv->srbs, memory_order_relaxed);
	out->completions = atomic_load_explicit(&sv->completions, memory_order_relaxed);
	out->errors = atomic_load_explicit(&sv->errors, memory_order_relaxed);
	out->bad_packets = atomic_load_explicit(&sv->bad_packets, memory_order_relaxed);
	out->queue_full = atomic_load_explicit(&sv->queue_full, memory_order_relaxed);
}
