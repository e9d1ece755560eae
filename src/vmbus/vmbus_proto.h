/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * VMBus ring-buffer wire format (spec/hyperv-interface-and-vmbus.md §7, vmbus-devices.md §1).
 * All fields little-endian; the host is x86-64, so structs map the bytes directly.
 */
#ifndef VIRIDIAN_VMBUS_VMBUS_PROTO_H
#define VIRIDIAN_VMBUS_VMBUS_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define VMBUS_PAGE_SIZE 4096u

/* Ring control page: the first page of each ring, data pages follow. */
struct vmbus_ring_ctrl {
	uint32_t write_index; /* byte offset into the data area, owned by the producer */
	uint32_t read_index; /* owned by the consumer */
	uint32_t interrupt_mask; /* consumer: 1 = "don't signal me, I am draining" */
	uint32_t pending_send_sz; /* producer: blocked, wants this many bytes free */
	uint32_t reserved1[12];
	uint32_t feature_bits; /* VMBUS_RING_FEAT_* */
	uint8_t reserved2[4028];
};

#define VMBUS_RING_FEAT_PENDING_SEND_SZ (1u << 0)

_Static_assert(sizeof(struct vmbus_ring_ctrl) == 4096, "ring control page is one page");
_Static_assert(offsetof(struct vmbus_ring_ctrl, write_index) == 0, "write_index");
_Static_assert(offsetof(struct vmbus_ring_ctrl, read_index) == 4, "read_index");
_Static_assert(offsetof(struct vmbus_ring_ctrl, interrupt_mask) == 8, "interrupt_mask");
_Static_assert(offsetof(struct vmbus_ring_ctrl, pending_send_sz) == 12, "pending_send_sz");
_Static_assert(offsetof(struct vmbus_ring_ctrl, feature_bits) == 64, "feature_bits");

enum vmbus_pkt_type {
	VMBUS_PKT_INVALID = 0,
	VMBUS_PKT_SYNCH = 1,
	VMBUS_PKT_ADD_XFER_PAGESET = 2,
	VMBUS_PKT_RM_XFER_PAGESET = 3,
	VMBUS_PKT_ESTABLISH_GPADL = 4,
	VMBUS_PKT_TEARDOWN_GPADL = 5,
	VMBUS_PKT_DATA_INBAND = 6,
	VMBUS_PKT_DATA_USING_XFER_PAGES = 7,
	VMBUS_PKT_DATA_USING_GPADL = 8,
	VMBUS_PKT_DATA_USING_GPA_DIRECT = 9,
	VMBUS_PKT_CANCEL_REQUEST = 10,
	VMBUS_PKT_COMP = 11,
	VMBUS_PKT_DATA_USING_ADDITIONAL_PKT = 12,
	VMBUS_PKT_ADDITIONAL_DATA = 13,
};

#define VMBUS_PKT_FLAG_COMPLETION_REQUESTED (1u << 0)

/* Starts every packet; lengths in 8-byte units, len8 excludes the trailer. */
struct vmbus_pkt_desc {
	uint16_t type;
	uint16_t offset8; /* payload offset from the packet start; 2 for a plain packet */
	uint16_t len8; /* descriptor + headers + payload + padding */
	uint16_t flags;
	uint64_t trans_id;
};

_Static_assert(sizeof(struct vmbus_pkt_desc) == 16, "packet descriptor is 16 bytes");
_Static_assert(offsetof(struct vmbus_pkt_desc, offset8) == 2, "offset8");
_Static_assert(offsetof(struct vmbus_pkt_desc, len8) == 4, "len8");
_Static_assert(offsetof(struct vmbus_pkt_desc, flags) == 6, "flags");
_Static_assert(offsetof(struct vmbus_pkt_desc, trans_id) == 8, "trans_id");

/* Every packet is followed by 8 bytes: the packet's start offset in the upper 32 bits. */
#define VMBUS_PKT_TRAILER_SIZE 8u

/* Default guest bounce-buffer size for host→guest packets, descriptor included. */
#define VMBUS_DEFAULT_MAX_PKT_SIZE 4096u

/* GPA-direct (type 9): ranges of variable size follow the header. */
struct vmbus_gpa_direct_hdr {
	struct vmbus_pkt_desc desc;
	uint32_t reserved;
	uint32_t range_count;
	/* struct vmbus_gpa_range ranges[range_count], each followed by its PFNs */
};

struct vmbus_gpa_range {
	uint32_t byte_count;
	uint32_t byte_offset; /* < 4096: offset of the first byte in pfn[0] */
	/* uint64_t pfn[DIV_ROUND_UP(byte_offset + byte_count, 4096)] */
};

_Static_assert(sizeof(struct vmbus_gpa_direct_hdr) == 24, "GPA-direct header");
_Static_assert(offsetof(struct vmbus_gpa_direct_hdr, range_count) == 20, "range_count");
_Static_assert(sizeof(struct vmbus_gpa_range) == 8, "GPA range head");

/* Transfer-page packet (type 7, host→guest netvsc receive). */
struct vmbus_xfer_range {
	uint32_t byte_count;
	uint32_t byte_offset;
};

struct vmbus_xfer_page_hdr {
	struct vmbus_pkt_desc desc;
	uint16_t xfer_pageset_id;
	uint8_t sender_owns_set;
	uint8_t reserved;
	uint32_t range_cnt;
	/* struct vmbus_xfer_range ranges[range_cnt] */
};

_Static_assert(sizeof(struct vmbus_xfer_page_hdr) == 24, "transfer-page header");
_Static_assert(offsetof(struct vmbus_xfer_page_hdr, xfer_pageset_id) == 16, "xfer_pageset_id");
_Static_assert(offsetof(struct vmbus_xfer_page_hdr, sender_owns_set) == 18, "sender_owns_set");
_Static_assert(offsetof(struct vmbus_xfer_page_hdr, range_cnt) == 20, "range_cnt");
_Static_assert(sizeof(struct vmbus_xfer_range) == 8, "transfer-page range");

/* Completion (type 11): descriptor only, then the device's payload at offset8 (= 2). */
struct vmbus_comp_hdr {
	struct vmbus_pkt_desc desc;
};

_Static_assert(sizeof(struct vmbus_comp_hdr) == 16, "completion header");

#endif
