/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * vmbus_device: what a VSP implements (ARCHITECTURE.md "Narrow interfaces"). A VSP is one file
 * that fills struct vmbus_device and uses the vmbus_chan_* calls below; it never touches SynIC,
 * GPADL or ring internals. Implemented by the channel server (src/vmbus/server.c).
 *
 * Threads: every channel (primary or sub-channel) has one I/O thread with an epoll loop. The
 * callbacks of one channel (open, packet, close and its fd callbacks) never run concurrently,
 * so per-channel VSP state needs no lock; but they may run on the channel thread or on a VP
 * thread, inside the guest's HvSignalEvent (an idle channel is drained right there, so a
 * request finished at submit is answered without a thread wake-up). They must not block for
 * long (that VP's guest waits), must not call the host API of vmbus.h, and must not rely on
 * thread-local state between calls. Callbacks of different channels run concurrently. reset
 * runs on the thread that handles channel messages (a VP thread) after every channel of the
 * device has been closed and its thread stopped.
 */
#ifndef VIRIDIAN_VMBUS_DEVICE_H
#define VIRIDIAN_VMBUS_DEVICE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "lib/guid.h"
#include "vid/guest_mem.h"
#include "vmbus/ring.h"

struct vmbus_device;
struct vmbus_chan;

/* Size of the offer's user-defined area and of the open message's user data (spec §6.3). */
#define VMBUS_OFFER_USER_DEF_SIZE 120u
#define VMBUS_OPEN_USER_DATA_SIZE 120u

/* ops->packet: hand the burst over after this packet (see there). */
#define VMBUS_PKT_END_PIECE 1

struct vmbus_device_ops {
	/*
	 * The guest opened a channel of this device (index 0 = primary, else the sub-channel
	 * index). user_data = the OPENCHANNEL user data (120 bytes). Return 0 to accept, or a
	 * negative errno to fail the open (OPENCHANNEL_RESULT with a non-zero status).
	 */
	int (*open)(struct vmbus_device *dev, struct vmbus_chan *chan, const uint8_t *user_data);
	/*
	 * One call per packet the guest wrote. pkt is valid only during the call (see struct
	 * vmbus_pkt: pkt->data may point into guest memory, which the guest can change under
	 * you: copy fields before validating them). Return 0, or -EPROTO for a protocol error:
	 * the server logs it (rate limited) and resets the channel (closes it; the guest sees
	 * its ring stop). Packets the VSP does not understand should be dropped (return 0) or
	 * answered with the device's own error status, as the device protocol says.
	 * A device with batch_end may return VMBUS_PKT_END_PIECE: this packet started enough
	 * work (a large transfer) that the burst is handed over after it (batch_end, then the
	 * guest signalled if owed) at once rather than after a fixed number of packets, so the
	 * guest gets its answer and refills while the rest of the burst runs.
	 */
	int (*packet)(struct vmbus_device *dev, struct vmbus_chan *chan,
		      const struct vmbus_pkt *pkt);
	/*
	 * Optional. The packets handed over since the last call were a burst that has ended
	 * (the guest's ring ran empty, or the pass stopped): submit the work they batched and
	 * answer what has finished, before the server polls for more or unmasks. Runs on the
	 * thread that ran packet().
	 */
	void (*batch_end)(struct vmbus_device *dev, struct vmbus_chan *chan);
	/* The channel is going away (guest CLOSECHANNEL, rescind, reset, VM stop). */
	void (*close)(struct vmbus_device *dev, struct vmbus_chan *chan);
	/* Bus reset (UNLOAD, a new INITIATE_CONTACT, VM reboot): forget negotiated state. */
	void (*reset)(struct vmbus_device *dev);
};

struct vmbus_device {
	const struct vmbus_device_ops *ops;
	const char *name; /* for logs: "echo", "storvsp" */
	struct guid class_id; /* offer if_type */
	struct guid instance_id; /* offer if_instance: unique per device */
	uint16_t chn_flags; /* offer chn_flags, usually 0 */
	uint16_t mmio_megabytes;
	uint8_t user_def[VMBUS_OFFER_USER_DEF_SIZE];
	uint16_t max_subchannels; /* cap for vmbus_device_offer_subchannels() */
	void *priv; /* the VSP's own state */
	struct vmbus_server *server; /* set by vmbus_server_add_device() */
};

/*
 * Offers count sub-channels (indices 1..count) to the guest, e.g. on storvsc
 * CREATE_SUB_CHANNELS. Sub-channels already offered are kept; count is capped by
 * max_subchannels. Callable from the device's channel callbacks. Returns the number of
 * sub-channels now offered, or -errno.
 */
int vmbus_device_offer_subchannels(struct vmbus_device *dev, unsigned count);

/* --- Channel calls for VSPs (from the channel's own callbacks only, unless noted) --- */

/* 0 for the primary channel, else the sub-channel index. Any thread. */
unsigned vmbus_chan_index(const struct vmbus_chan *chan);
/* The VP the guest asked to be interrupted on (OPENCHANNEL / MODIFYCHANNEL target_vp). */
unsigned vmbus_chan_target_vp(const struct vmbus_chan *chan);
struct vmbus_device *vmbus_chan_device(const struct vmbus_chan *chan);
struct guest_mem *vmbus_chan_guest_mem(const struct vmbus_chan *chan);
/* Per-channel VSP state. */
void vmbus_chan_set_priv(struct vmbus_chan *chan, void *priv);
void *vmbus_chan_priv(const struct vmbus_chan *chan);

/*
 * Sends one packet to the guest (host→guest ring): descriptor with type/flags/trans_id, then
 * hdr_len bytes of type-specific header and the payload, both gathered in order from iov (see
 * vmbus_ring_write). When the ring is full the packet is copied to the channel's backlog and
 * sent when the guest frees space; while a backlog exists the server reads no new packets from
 * the guest (backpressure bounds the backlog). The guest is signalled once per batch, only
 * when the ring rules say it must be. 0, -EMSGSIZE (over the guest's max packet size),
 * -EINVAL, -ENOMEM, -EPIPE (channel closing).
 */
int vmbus_chan_send(struct vmbus_chan *chan, uint16_t type, uint16_t flags, uint64_t trans_id,
		    uint32_t hdr_len, const struct iovec *iov, int iovcnt);
/*
 * The guest driver's receive buffer for this channel (max_pkt_size: descriptor included,
 * trailer excluded; 4096 unless the driver is known to use another size, e.g. 80 for storvsc).
 * Larger packets fail with -EMSGSIZE instead of desynchronising the guest's ring (§7.3).
 */
void vmbus_chan_set_max_pkt(struct vmbus_chan *chan, uint32_t bytes);
/* Convenience: an inband (type 6) packet, or a completion (type 11) for trans_id. */
int vmbus_chan_send_inband(struct vmbus_chan *chan, uint64_t trans_id, const void *data,
			   uint32_t len, bool completion_requested);
int vmbus_chan_send_completion(struct vmbus_chan *chan, uint64_t trans_id, const void *data,
			       uint32_t len);

/*
 * Adds fd to the channel thread's epoll loop (EPOLLIN): cb runs when it is readable (e.g. a
 * blockdev queue's completion eventfd), on the channel thread. Work that finishes while a
 * packet is handled belongs in batch_end, not behind an fd. Removed automatically at close.
 */
typedef void (*vmbus_chan_fd_cb)(struct vmbus_chan *chan, int fd, void *opaque);
int vmbus_chan_add_fd(struct vmbus_chan *chan, int fd, vmbus_chan_fd_cb cb, void *opaque);
void vmbus_chan_del_fd(struct vmbus_chan *chan, int fd);

/*
 * The data buffer of a GPA-direct packet (type 9) as host iovecs: every range's PFNs are
 * checked against guest RAM, byte_offset < 4096, byte counts and PFN counts against the packet
 * length, and the total against max_bytes. Adjacent guest pages that are adjacent in host memory
 * are merged into one iovec. Returns the number of iovecs (<= max_iov) with *total set, or
 * -EPROTO (malformed packet), -EFAULT (a page outside guest RAM), -E2BIG (over max_bytes or
 * max_iov).
 */
int vmbus_pkt_gpa_direct_iov(struct guest_mem *gm, const struct vmbus_pkt *pkt, struct iovec *iov,
			     int max_iov, uint64_t max_bytes, uint64_t *total);

#endif
