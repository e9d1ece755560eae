/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Host side of one VMBus ring (spec §7). A ring is 1 control page + N-1 data pages in guest
 * memory, given as guest PFNs (from the channel's GPADL); the pages need not be contiguous.
 * The host reads the guest→host ("outbound") ring and writes the host→guest ("inbound") one.
 *
 * One thread per ring object. Every guest-written index and length is loaded once and validated;
 * a malformed ring yields -EPROTO (the channel layer resets the channel) and nothing is accessed
 * outside the ring's pages.
 */
#ifndef VIRIDIAN_VMBUS_RING_H
#define VIRIDIAN_VMBUS_RING_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vid/guest_mem.h"
#include "vmbus/vmbus_proto.h"

/* Largest ring accepted: 256 MiB, so all index arithmetic fits in 32 bits. */
#define VMBUS_RING_MAX_PAGES 65536u

enum vmbus_ring_dir {
	VMBUS_RING_GUEST_TO_HOST, /* host reads */
	VMBUS_RING_HOST_TO_GUEST, /* host writes */
};

struct vmbus_ring {
	struct vmbus_ring_ctrl *ctrl;
	uint8_t **page; /* host address of each data page */
	uint32_t *run; /* bytes host-contiguous from the start of data page i (<= end of data) */
	uint32_t size; /* data bytes = (npages - 1) * 4096 */
	enum vmbus_ring_dir dir;
	/* reader */
	uint32_t rd; /* next packet to read (private until read_done publishes it) */
	uint32_t rd_pub; /* last read_index published */
	uint32_t wr_seen; /* last validated guest write_index */
	uint32_t cur_len; /* bytes (with trailer) of the packet peek returned, 0 = none */
	uint8_t *bounce; /* wrapped packets are copied here (size bytes) */
	bool always_copy; /* vmbus_ring_set_copy() */
	uint32_t nap_ns; /* vmbus_ring_poll(): time between looks at write_index */
	/* writer */
	uint32_t wr; /* our write_index (the guest's copy is never read back) */
	uint32_t max_pkt; /* guest bounce-buffer size, descriptor included, trailer excluded */
};

/* A packet seen by the reader. Header fields are validated copies. */
struct vmbus_pkt {
	uint16_t type;
	uint16_t flags;
	uint64_t trans_id;
	/*
	 * The whole packet (descriptor, type-specific header, payload, padding): len bytes.
	 * Points into guest memory when the packet is contiguous there (zero copy; the guest can
	 * still change these bytes: copy a field before validating it), else into the ring's
	 * private bounce buffer. Valid until the next peek/consume.
	 */
	const uint8_t *data;
	uint32_t len; /* len8 * 8 */
	uint32_t hdr_len; /* offset8 * 8: the payload starts at data + hdr_len */
	const uint8_t *payload;
	uint32_t payload_len; /* len - hdr_len (includes the sender's padding) */
	/*
	 * Another packet already sat behind this one when it was read: the sender is sending a
	 * burst, so a consumer may batch work until vmbus_device_ops.batch_end. A hint only.
	 */
	bool more;
};

/*
 * Maps the ring described by npages guest PFNs (pfns[0] = control page). Every page must be
 * guest RAM. Sets feat_pending_send_sz. Takes the current indices from the control page (both
 * validated). 0, or -EINVAL / -EFAULT / -EPROTO / -ENOMEM with err_set().
 */
int vmbus_ring_init(struct vmbus_ring *r, struct guest_mem *gm, const uint64_t *pfns,
		    unsigned npages, enum vmbus_ring_dir dir);
void vmbus_ring_destroy(struct vmbus_ring *r);
/*
 * Both rings of a channel from its ring GPADL (§7.1): pages [0, downstream) are the
 * guest→host ring the host reads, [downstream, npfns) the host→guest ring it writes
 * (downstream = the open message's downstream_ringbuffer_pageoffset). 0 or -errno + err_set().
 */
int vmbus_ring_pair_init(struct vmbus_ring *g2h, struct vmbus_ring *h2g, struct guest_mem *gm,
			 const uint64_t *pfns, unsigned npfns, unsigned downstream);

/* --- Reader (guest→host ring) --- */

/*
 * Next unconsumed packet. 0 with *pkt filled, -EAGAIN when the ring is empty, -EPROTO when the
 * guest's index or the packet descriptor is malformed. Calling it twice without consume
 * returns the same packet.
 */
int vmbus_ring_peek(struct vmbus_ring *r, struct vmbus_pkt *pkt);
/*
 * true: peek always copies the packet into the private buffer, so pkt->data cannot change
 * under the caller (for parsers that cannot read each field exactly once). Default false.
 */
void vmbus_ring_set_copy(struct vmbus_ring *r, bool always);
/* Drops the packet peek returned (private: the guest sees it at vmbus_ring_read_done()). */
void vmbus_ring_consume(struct vmbus_ring *r);
/*
 * Publishes read_index once per batch (release). Returns true when the guest must be signalled:
 * it set pending_send_sz and the free space just went from <= pending to > pending.
 */
bool vmbus_ring_read_done(struct vmbus_ring *r);
/*
 * After a drain to empty, with interrupt_mask still set (so the guest is not signalling):
 * waits up to budget_ns for more packets, looking at write_index once per nap (see
 * vmbus_ring_set_nap) instead of spinning on it. The guest writes that cache line for every
 * packet; a reader spinning on it turns each of those writes into a cross-core transfer and
 * slows the guest down (bench/ring: 1.3-1.5x fewer packets/s than with a 2 us nap). true = there is
 * something for peek (a packet, or a malformed index peek will report), false = still empty: unmask
 * and wait for a signal. Publishes nothing: call vmbus_ring_read_done() first so the guest sees the
 * space.
 */
bool vmbus_ring_poll(struct vmbus_ring *r, uint64_t budget_ns);
/* Time between looks in vmbus_ring_poll (default VMBUS_RING_NAP_NS); 0 = look continuously. */
void vmbus_ring_set_nap(struct vmbus_ring *r, uint32_t ns);
#define VMBUS_RING_NAP_NS 2000u
/* Sets interrupt_mask while the host drains, so the guest does not signal. */
void vmbus_ring_mask(struct vmbus_ring *r);
/*
 * Clears interrupt_mask, then (full barrier) re-checks the ring. true = data arrived meanwhile:
 * keep draining (the guest may not have signalled it). Call only after a drain to empty.
 */
bool vmbus_ring_unmask(struct vmbus_ring *r);

/* --- Writer (host→guest ring) --- */

/* Guest driver's max_pkt_size (descriptor included, trailer excluded); default 4096. */
void vmbus_ring_set_max_pkt(struct vmbus_ring *r, uint32_t bytes);
/* Bytes of ring space a packet with this many header + payload bytes needs (with trailer). */
uint32_t vmbus_ring_pkt_space(uint32_t hdr_len, uint32_t payload_len);

/*
 * Writes one packet: the 16-byte descriptor, then hdr_len bytes of type-specific header (after
 * the descriptor; multiple of 8) and the payload, both taken in order from iov (the first
 * hdr_len bytes are the header), zero padding to 8, and the trailer; then publishes
 * write_index (release). Returns 1 = signal the guest (interrupt_mask clear and the ring was
 * empty before this packet), 0 = no signal needed, -EAGAIN when the ring lacks space (nothing
 * written; see vmbus_ring_wait_space), -EMSGSIZE over the guest's max_pkt_size, -EINVAL for bad
 * arguments, -EPROTO when the guest's read_index is malformed.
 */
int vmbus_ring_write(struct vmbus_ring *r, uint16_t type, uint16_t flags, uint64_t trans_id,
		     uint32_t hdr_len, const struct iovec *iov, int iovcnt);
/*
 * Flow control after -EAGAIN: sets pending_send_sz = need (from vmbus_ring_pkt_space) and
 * re-checks. Returns 1 when the space is already there (pending cleared: retry now), 0 when the
 * caller must wait for the guest's signal and then call vmbus_ring_clear_pending and retry,
 * -EPROTO when the guest's read_index is malformed.
 */
int vmbus_ring_wait_space(struct vmbus_ring *r, uint32_t need);
void vmbus_ring_clear_pending(struct vmbus_ring *r);
/* Free bytes from the writer's view (with the one-byte-empty rule applied: usable bytes). */
int vmbus_ring_write_avail(struct vmbus_ring *r, uint32_t *avail);

#endif
