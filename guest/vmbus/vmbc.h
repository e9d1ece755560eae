/*
 * VMBus client (guest side), written from shared/spec/hyperv-interface-and-vmbus.md §6-8:
 * version negotiation in Linux's order (or one forced version), offers, GPADLs, channel
 * open/close/modify, rescind handling, UNLOAD, and ring I/O with the §7.5 signalling rules.
 *
 * One struct vmbc per bus, driven from one CPU (the one that called vmbc_init: control messages
 * go to it). Incoming channel messages are copied to a queue by the SynIC handler and processed
 * by vmbc_poll(), which every blocking call runs while it waits. Host mistakes (short
 * messages, unknown types, bad relids, ring indices out of range) are counted in bad_msgs /
 * ring errors and make the call fail; they never make the client trust a host value.
 */
#ifndef TGUEST_VMBUS_VMBC_H
#define TGUEST_VMBUS_VMBC_H

#include <stdbool.h>
#include <stdint.h>

#include "hv/winhv.h"
#include "hvplat.h"
#include "vmbus/vmbc_proto.h"

/* Error codes (negative returns). */
#define VMBC_EAGAIN (-11) /* ring full / empty: try again */
#define VMBC_EINVAL (-22)
#define VMBC_ENOMEM (-12)
#define VMBC_ETIME (-62) /* the host did not answer in time */
#define VMBC_EPROTO (-71) /* the host broke the protocol */
#define VMBC_EMSGSIZE (-90) /* packet larger than the caller's buffer */
#define VMBC_EHOST (-113) /* the host answered with a failure status (see *status) */
#define VMBC_ENODEV (-19) /* channel rescinded / not offered */

#define VMBC_MAX_CHANNELS 64u
#define VMBC_MSGQ 128u
#define VMBC_MAX_GPADL_WAIT 8u

/* Versions in the order Linux 6.1 tries them (§6.2). */
extern const uint32_t vmbc_versions[8];

struct vmbc_ring {
	struct vmbc_ring_ctl *ctl;
	uint8_t *data;
	uint32_t size; /* data bytes */
};

struct vmbc_channel {
	bool in_use;
	bool rescinded;
	bool open;
	uint32_t relid;
	uint32_t conn_id;
	struct vmbc_offer offer;
	/* Open state. */
	uint32_t gpadl;
	struct hvplat_pages ring_pages;
	uint32_t send_pages; /* downstream offset */
	struct vmbc_ring out, in; /* guest->host, host->guest */
	uint32_t target_vp;
	bool open_done;
	uint32_t open_status;
	bool modify_done;
	uint32_t modify_status;
	/* Counters. */
	uint8_t *legacy_send_bits; /* int_page + 2048: set for non-dedicated interrupts */
	uint8_t *monitor_page; /* monitor_page2 (child -> parent): monitored offers */
	uint64_t signals; /* notifications sent to the host */
	uint64_t events; /* SIEF bits seen for this relid */
	uint64_t ring_errors;
	/* Signalling decisions of the last writes (for diagnosing hosts that stop reading). */
	struct {
		uint32_t write, read_seen, mask_seen, signalled;
	} trace[32];
	uint32_t ntrace;
};

struct vmbc_pkt {
	uint16_t type;
	uint16_t flags;
	uint64_t trans_id;
	uint32_t len; /* whole packet (descriptor included), without trailer */
	uint32_t data_offset; /* offset8 * 8 */
};

struct vmbc_gpadl_wait {
	bool used;
	uint32_t handle;
	uint32_t relid;
	bool created;
	uint32_t status;
	bool torndown;
};

struct vmbc {
	struct winhv *w;
	unsigned cpu; /* CPU that drives the client and gets control messages */
	uint64_t timeout_ns;
	/* Filled by the SynIC handler. */
	struct whv_message q[VMBC_MSGQ];
	volatile unsigned qhead, qtail;
	/* Connection. */
	bool connected;
	uint32_t version;
	uint32_t msg_conn_id;
	bool version_done;
	uint8_t version_supported;
	uint32_t version_conn_id;
	bool offers_done;
	bool unload_done;
	struct hvplat_pages pages; /* interrupt page + two monitor pages */
	struct vmbc_channel chan[VMBC_MAX_CHANNELS];
	struct vmbc_gpadl_wait gw[VMBC_MAX_GPADL_WAIT];
	uint32_t next_gpadl;
	/* Statistics and host-error accounting. */
	uint64_t msgs, bad_msgs, offers, rescinds, stray_events;
	uint32_t last_bad_type;
};

/* Registers the SINT 2 handlers on w; the calling CPU drives the client. 0 or VMBC_ENOMEM. */
int vmbc_init(struct vmbc *c, struct winhv *w);
/* Forgets all channel state (after UNLOAD or before a new INITIATE_CONTACT); frees rings. */
void vmbc_reset(struct vmbc *c);

/*
 * INITIATE_CONTACT: version 0 walks vmbc_versions until the host accepts one; otherwise only
 * that version is tried. 0 (c->version set), VMBC_EHOST (all refused), VMBC_ETIME.
 */
int vmbc_connect(struct vmbc *c, uint32_t version);
/* REQUESTOFFERS, then wait for ALLOFFERS_DELIVERED. 0 or VMBC_ETIME. */
int vmbc_request_offers(struct vmbc *c);
/* UNLOAD, wait for UNLOAD_RESPONSE, then vmbc_reset. */
int vmbc_unload(struct vmbc *c);

/* Processes queued channel messages. Returns how many. */
unsigned vmbc_poll(struct vmbc *c);

/*
 * The n-th (from 0) offered channel with this class GUID (wire order), sub-channels included,
 * in offer-table order, or NULL. (Callers rely on this; vmbc_find_subchannel is exact.)
 */
struct vmbc_channel *vmbc_find(struct vmbc *c, const uint8_t class_guid[16], unsigned nth);
struct vmbc_channel *vmbc_find_relid(struct vmbc *c, uint32_t relid);
/* Sub-channel `index` (>= 1) of primary: same class and instance GUIDs (spec §6.3). */
struct vmbc_channel *vmbc_find_subchannel(struct vmbc *c, const struct vmbc_channel *primary,
					  uint16_t index);
unsigned vmbc_channel_count(const struct vmbc *c);

/*
 * GPADL over npfn 4 KiB frames: GPADL_HEADER with up to 26 PFNs, GPADL_BODY messages for the
 * rest, then wait for GPADL_CREATED. 0 (*handle set), VMBC_EHOST (*status = creation status).
 */
int vmbc_gpadl_create(struct vmbc *c, uint32_t relid, const uint64_t *pfns, uint32_t npfn,
		      uint32_t *handle, uint32_t *status);
int vmbc_gpadl_teardown(struct vmbc *c, uint32_t relid, uint32_t handle);

/*
 * Allocates both rings (send_bytes/recv_bytes of data each, multiples of 4 KiB), creates their
 * GPADL and opens the channel with target_vp. 0, VMBC_EHOST (*status = open status), ...
 */
int vmbc_open(struct vmbc *c, struct vmbc_channel *ch, uint32_t send_bytes, uint32_t recv_bytes,
	      const void *user_data, uint32_t user_len, uint32_t target_vp, uint32_t *status);
/* CLOSECHANNEL, GPADL teardown (skipped once rescinded), rings freed. */
int vmbc_close(struct vmbc *c, struct vmbc_channel *ch);
/* MODIFYCHANNEL; waits for MODIFYCHANNEL_RESPONSE from 5.3 on. */
int vmbc_modify(struct vmbc *c, struct vmbc_channel *ch, uint32_t target_vp);

/*
 * Ring I/O (vmbc_ring.c). vmbc_send writes one packet: descriptor (type, flags, trans_id,
 * offset8 = (16 + hdr_len) / 8), hdr_len bytes of header (a multiple of 8), then len bytes of
 * payload, padded; signals the host per §7.5. VMBC_EAGAIN when the ring lacks room.
 */
int vmbc_send(struct vmbc_channel *ch, uint16_t type, uint16_t flags, uint64_t trans_id,
	      const void *hdr, uint32_t hdr_len, const void *data, uint32_t len);
/* Inband packet; waits (running vmbc_poll and draining nothing) up to the timeout for room. */
int vmbc_send_inband(struct vmbc *c, struct vmbc_channel *ch, uint64_t trans_id, const void *data,
		     uint32_t len, bool completion);

struct vmbc_gpa_range {
	uint32_t byte_count;
	uint32_t byte_offset; /* < 4096 */
	const uint64_t *pfns; /* DIV_ROUND_UP(byte_offset + byte_count, 4096) of them */
};
/* GPA-direct (type 9) packet: ranges, then inband payload. Same returns as vmbc_send. */
int vmbc_send_gpa_direct(struct vmbc_channel *ch, uint64_t trans_id, uint16_t flags,
			 const struct vmbc_gpa_range *ranges, unsigned nranges, const void *data,
			 uint32_t len);

/*
 * Reads one packet into buf (the whole packet, descriptor first). 0 with *pkt filled,
 * VMBC_EAGAIN (empty), VMBC_EMSGSIZE (packet bigger than bufsize: left in the ring),
 * VMBC_EPROTO (bad indices or descriptor: the ring is not touched).
 */
int vmbc_recv(struct vmbc_channel *ch, void *buf, uint32_t bufsize, struct vmbc_pkt *pkt);
/* Batched reading (§7.5): mask host signals while draining; end returns true if data arrived. */
void vmbc_recv_begin(struct vmbc_channel *ch);
bool vmbc_recv_end(struct vmbc_channel *ch);
/* Bytes the guest->host ring can take now (strictly less than free space). */
uint32_t vmbc_send_space(const struct vmbc_channel *ch);
/*
 * Notifies the host as Linux's vmbus_setevent does: the legacy send bit when the offer has no
 * dedicated interrupt, then the monitor page bit if the offer is monitored (no hypercall),
 * else HvSignalEvent(connection_id).
 */
void vmbc_signal_host(struct vmbc_channel *ch);

#endif
