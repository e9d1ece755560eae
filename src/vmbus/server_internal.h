/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Private state of the VMBus channel server, shared by server.c (channel messages, offers,
 * GPADLs) and chan.c (per-channel I/O threads and the vmbus_chan_* calls).
 *
 * Locking: msg_lock serialises channel-message handling and the host API (add_device, rescind,
 * reset...); only those paths create-and-free channels and GPADLs, and they may join channel
 * threads while holding it. lock (short sections, never held across a join) protects the relid
 * table, the device entries' channel arrays and the outbox; channel threads take only lock
 * (vmbus_device_offer_subchannels), so a join under msg_lock cannot deadlock.
 *
 * Each relid's slot has a drain mutex that serialises everything done for the channel open on
 * it: ring access and every device callback (open, packet, fd callbacks, close). The channel
 * thread holds it while it works (not while it sleeps); a VP thread whose HvSignalEvent finds
 * the channel idle takes it with trylock and drains the ring itself (chan.c). Lock order:
 * msg_lock > drain > lock; nothing under drain may take msg_lock (device callbacks cannot).
 */
#ifndef VIRIDIAN_VMBUS_SERVER_INTERNAL_H
#define VIRIDIAN_VMBUS_SERVER_INTERNAL_H

#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdint.h>

#include "hv/hv.h"
#include "hv/hv_proto.h"
#include "vmbus/device.h"
#include "vmbus/ring.h"
#include "vmbus/vmbus.h"
#include "vmbus/vmbus_msg.h"

#define VMBUS_LOG "vmbus"
#define VMBUS_CHAN_MAX_FDS 16
/* Replies held back for a guest that does not read its SIM: beyond this it must retry posts. */
#define VMBUS_OUTBOX_MAX 1024u
/* PFNs held by all GPADLs of the bus (4 GiB worth; 8 MiB of host memory at most). */
#define VMBUS_MAX_GPADL_TOTAL_PAGES (1u << 20)

enum vmbus_chan_state {
	VMBUS_CHAN_OFFERED, /* offer sent (or pending until REQUESTOFFERS) */
	VMBUS_CHAN_OPEN,
	VMBUS_CHAN_RESCINDED, /* waiting for RELID_RELEASED */
};

struct vmbus_backlog {
	struct vmbus_backlog *next;
	uint16_t type, flags;
	uint32_t hdr_len, len;
	uint64_t trans_id;
	uint8_t data[];
};

struct vmbus_chan_fd {
	int fd;
	vmbus_chan_fd_cb cb;
	void *opaque;
};

struct vmbus_gpadl;
struct vmbus_dev_entry;
struct vmbus_chan;

/*
 * Per relid, kept for the server's life: an hv event handler may still run after its
 * connection is unregistered (hv_hypercall.h), so what it touches must outlive channels.
 */
struct vmbus_relid_slot {
	int fd; /* the guest-signal eventfd: hand-off to the channel thread */
	pthread_mutex_t drain;
	struct vmbus_chan *chan; /* under drain: the channel being served, NULL when none */
};

struct vmbus_chan {
	struct vmbus_server *srv;
	struct vmbus_dev_entry *de; /* NULL once rescinded */
	struct vmbus_device *dev;
	unsigned index;
	uint32_t relid;
	uint32_t conn_id;
	enum vmbus_chan_state state;
	unsigned target_vp; /* atomic: MODIFYCHANNEL changes it while the thread runs */
	void *priv;

	/* Open channel: the message thread sets these up before the I/O thread starts. */
	struct vmbus_gpadl *gpadl;
	uint32_t openid;
	uint8_t user_data[VMBUS_OPEN_USER_DATA_SIZE];
	struct vmbus_ring g2h, h2g;
	int epfd, ctlfd, guestfd; /* guestfd: the server's per-relid eventfd (borrowed) */
	struct vmbus_relid_slot *slot; /* &srv->slots[relid] */
	pthread_t thread;
	bool thread_started;
	sem_t opened; /* the thread posts it after ops->open */
	int open_result;
	bool stop; /* atomic */
	bool dev_open; /* ops->open succeeded, ops->close not called yet */
	bool failed; /* ring or device protocol error: the channel is dead until closed */
	bool need_signal; /* host→guest signal owed at the end of this pass */
	struct vmbus_backlog *backlog, **backlog_tail;
	bool waiting_space; /* pending_send_sz set for the backlog head */
	struct vmbus_chan_fd fds[VMBUS_CHAN_MAX_FDS];
	unsigned nfds;
	uint64_t thread_traffic_ns; /* under drain: when the thread last read guest packets */
	uint64_t stat_signals;
	uint64_t stat_vp_drains; /* signals served on the signalling VP's thread */
};

struct vmbus_dev_entry {
	struct vmbus_device *dev;
	bool rescinded;
	unsigned nchans; /* 1 + max_subchannels */
	struct vmbus_chan **chans; /* [index]: NULL = not offered */
};

struct vmbus_gpadl {
	struct vmbus_gpadl *next;
	uint32_t handle;
	uint32_t relid;
	bool complete;
	bool teardown_pending; /* TEARDOWN arrived while a channel used it: answer at close */
	struct vmbus_chan *user; /* open channel using it as its ring */
	/* While incomplete: the range array as it arrives. */
	uint8_t *buf;
	uint32_t buflen, have;
	uint16_t rangecount;
	uint32_t announced; /* PFNs range_buflen makes room for (counted in gpadl_pages) */
	/* Complete: all PFNs in order, and the first range's offset/count. */
	uint64_t *pfns;
	uint32_t npfns;
	uint32_t first_offset, first_count;
};

struct vmbus_outmsg {
	struct vmbus_outmsg *next;
	unsigned vp;
	struct hv_message msg;
};

struct vmbus_server {
	struct hv_partition *part;
	struct guest_mem *gm;
	pthread_mutex_t msg_lock;
	pthread_mutex_t lock;

	uint32_t version; /* 0: not connected */
	unsigned target_vcpu;
	bool offers_requested;

	struct vmbus_dev_entry devs[VMBUS_MAX_DEVICES];
	unsigned ndevs;
	struct vmbus_chan *relids[VMBUS_MAX_RELID + 1];
	struct vmbus_relid_slot slots[VMBUS_MAX_RELID + 1];

	struct vmbus_gpadl *gpadls;
	unsigned ngpadls;
	uint64_t gpadl_pages; /* PFNs announced by all GPADLs, complete or not */

	/* Replies the SynIC queue could not take yet (-ENOSPC), retried in order. */
	struct vmbus_outmsg *out_head, **out_tail;
	unsigned out_len;
	pthread_t flusher;
	pthread_cond_t out_cond;
	bool flusher_stop;
	bool ports_registered;
};

/* chan.c */
int vmbus_chan_start(struct vmbus_chan *chan);
void vmbus_chan_stop(struct vmbus_chan *chan);
void vmbus_chan_signal_guest(struct vmbus_chan *chan);
/* hv event handler of an open channel's connection (opaque: its struct vmbus_relid_slot). */
void vmbus_chan_on_guest_signal(void *opaque, unsigned vp, uint16_t flag);

/* server.c: message entry point (also used by the fuzz target). */
uint16_t vmbus_server_handle_message(struct vmbus_server *srv, unsigned vp, const void *msg,
				     uint32_t size);

#endif
