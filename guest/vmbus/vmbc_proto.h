/*
 * VMBus wire formats as the guest sees them, transcribed from
 * shared/spec/hyperv-interface-and-vmbus.md §6 (channel messages) and §7 (rings, packets).
 * Little-endian, packed; sizes checked below.
 */
#ifndef TGUEST_VMBUS_VMBC_PROTO_H
#define TGUEST_VMBUS_VMBC_PROTO_H

#include <stdint.h>

#define VMBC_VERSION(maj, min) (((uint32_t)(maj) << 16) | (min))
#define VMBC_V5_3 VMBC_VERSION(5, 3)
#define VMBC_V5_0 VMBC_VERSION(5, 0)
#define VMBC_V4_1 VMBC_VERSION(4, 1)
#define VMBC_V3_0 VMBC_VERSION(3, 0)
#define VMBC_V2_4 VMBC_VERSION(2, 4)

#define VMBC_SINT 2u
#define VMBC_CONN_ID_LEGACY 1u /* INITIATE_CONTACT and everything else below 5.0 */
#define VMBC_CONN_ID_4 4u /* INITIATE_CONTACT from 5.0 on */
#define VMBC_MAX_RELID 2047u
#define VMBC_GPADL_FIRST 0xE1E10u

enum vmbc_msgtype {
	VMBC_MSG_INVALID = 0,
	VMBC_MSG_OFFERCHANNEL = 1,
	VMBC_MSG_RESCIND_OFFER = 2,
	VMBC_MSG_REQUESTOFFERS = 3,
	VMBC_MSG_ALLOFFERS_DELIVERED = 4,
	VMBC_MSG_OPENCHANNEL = 5,
	VMBC_MSG_OPENCHANNEL_RESULT = 6,
	VMBC_MSG_CLOSECHANNEL = 7,
	VMBC_MSG_GPADL_HEADER = 8,
	VMBC_MSG_GPADL_BODY = 9,
	VMBC_MSG_GPADL_CREATED = 10,
	VMBC_MSG_GPADL_TEARDOWN = 11,
	VMBC_MSG_GPADL_TORNDOWN = 12,
	VMBC_MSG_RELID_RELEASED = 13,
	VMBC_MSG_INITIATE_CONTACT = 14,
	VMBC_MSG_VERSION_RESPONSE = 15,
	VMBC_MSG_UNLOAD = 16,
	VMBC_MSG_UNLOAD_RESPONSE = 17,
	VMBC_MSG_TL_CONNECT_REQUEST = 21,
	VMBC_MSG_MODIFYCHANNEL = 22,
	VMBC_MSG_TL_CONNECT_RESULT = 23,
	VMBC_MSG_MODIFYCHANNEL_RESPONSE = 24,
	VMBC_MSG_COUNT = 25,
};

struct vmbc_hdr {
	uint32_t msgtype;
	uint32_t padding;
} __attribute__((packed));

struct vmbc_initiate_contact {
	struct vmbc_hdr hdr;
	uint32_t version;
	uint32_t target_vcpu;
	uint64_t interrupt_page_or_sint; /* < 5.0: int page GPA; >= 5.0: byte 0 = msg_sint */
	uint64_t monitor_page1;
	uint64_t monitor_page2;
} __attribute__((packed));

struct vmbc_version_response {
	struct vmbc_hdr hdr;
	uint8_t version_supported;
	uint8_t connection_state;
	uint16_t padding;
	uint32_t msg_conn_id;
} __attribute__((packed));

struct vmbc_offer {
	struct vmbc_hdr hdr;
	uint8_t if_type[16];
	uint8_t if_instance[16];
	uint64_t reserved1;
	uint64_t reserved2;
	uint16_t chn_flags;
	uint16_t mmio_megabytes;
	uint8_t user_def[120];
	uint16_t sub_channel_index;
	uint16_t reserved3;
	uint32_t child_relid;
	uint8_t monitorid;
	uint8_t monitor_allocated;
	uint16_t is_dedicated_interrupt;
	uint32_t connection_id;
} __attribute__((packed));

struct vmbc_relid_msg { /* RESCIND_CHANNELOFFER, CLOSECHANNEL, RELID_RELEASED */
	struct vmbc_hdr hdr;
	uint32_t child_relid;
} __attribute__((packed));

struct vmbc_open {
	struct vmbc_hdr hdr;
	uint32_t child_relid;
	uint32_t openid;
	uint32_t gpadl;
	uint32_t target_vp;
	uint32_t downstream_page_offset;
	uint8_t user_data[120];
} __attribute__((packed));

struct vmbc_open_result {
	struct vmbc_hdr hdr;
	uint32_t child_relid;
	uint32_t openid;
	uint32_t status;
} __attribute__((packed));

#define VMBC_GPADL_HEADER_PFNS 26u
#define VMBC_GPADL_BODY_PFNS 28u

struct vmbc_gpadl_header {
	struct vmbc_hdr hdr;
	uint32_t child_relid;
	uint32_t gpadl;
	uint16_t range_buflen;
	uint16_t rangecount;
	uint32_t byte_count;
	uint32_t byte_offset;
	uint64_t pfn[VMBC_GPADL_HEADER_PFNS];
} __attribute__((packed));

struct vmbc_gpadl_body {
	struct vmbc_hdr hdr;
	uint32_t msgnumber;
	uint32_t gpadl;
	uint64_t pfn[VMBC_GPADL_BODY_PFNS];
} __attribute__((packed));

struct vmbc_gpadl_created {
	struct vmbc_hdr hdr;
	uint32_t child_relid;
	uint32_t gpadl;
	uint32_t status;
} __attribute__((packed));

struct vmbc_gpadl_teardown {
	struct vmbc_hdr hdr;
	uint32_t child_relid;
	uint32_t gpadl;
} __attribute__((packed));

struct vmbc_gpadl_torndown {
	struct vmbc_hdr hdr;
	uint32_t gpadl;
} __attribute__((packed));

struct vmbc_modify {
	struct vmbc_hdr hdr;
	uint32_t child_relid;
	uint32_t target_vp;
} __attribute__((packed));

struct vmbc_modify_response {
	struct vmbc_hdr hdr;
	uint32_t child_relid;
	uint32_t status;
} __attribute__((packed));

_Static_assert(sizeof(struct vmbc_initiate_contact) == 40, "INITIATE_CONTACT is 40 bytes");
_Static_assert(sizeof(struct vmbc_version_response) == 16, "VERSION_RESPONSE is 16 bytes");
_Static_assert(sizeof(struct vmbc_offer) == 196, "OFFERCHANNEL is 196 bytes");
_Static_assert(__builtin_offsetof(struct vmbc_offer, child_relid) == 184, "offer relid at 184");
_Static_assert(__builtin_offsetof(struct vmbc_offer, connection_id) == 192, "offer conn at 192");
_Static_assert(sizeof(struct vmbc_relid_msg) == 12, "relid messages are 12 bytes");
_Static_assert(sizeof(struct vmbc_open) == 148, "OPENCHANNEL is 148 bytes");
_Static_assert(sizeof(struct vmbc_open_result) == 20, "OPENCHANNEL_RESULT is 20 bytes");
_Static_assert(sizeof(struct vmbc_gpadl_header) == 28 + 8 * 26, "GPADL_HEADER holds 26 PFNs");
_Static_assert(sizeof(struct vmbc_gpadl_header) <= 240, "GPADL_HEADER fits a message");
_Static_assert(sizeof(struct vmbc_gpadl_body) == 16 + 8 * 28, "GPADL_BODY holds 28 PFNs");
_Static_assert(sizeof(struct vmbc_gpadl_created) == 20, "GPADL_CREATED is 20 bytes");
_Static_assert(sizeof(struct vmbc_gpadl_teardown) == 16, "GPADL_TEARDOWN is 16 bytes");
_Static_assert(sizeof(struct vmbc_gpadl_torndown) == 12, "GPADL_TORNDOWN is 12 bytes");
_Static_assert(sizeof(struct vmbc_modify) == 16, "MODIFYCHANNEL is 16 bytes");
_Static_assert(sizeof(struct vmbc_modify_response) == 16, "MODIFYCHANNEL_RESPONSE is 16 bytes");

/* Rings (§7.1): a 4 KiB control page, then the data area. */
struct vmbc_ring_ctl {
	uint32_t write_index;
	uint32_t read_index;
	uint32_t interrupt_mask;
	uint32_t pending_send_sz;
	uint32_t reserved1[12];
	uint32_t feature_bits;
};

#define VMBC_RING_FEAT_PENDING_SEND_SZ 1u

_Static_assert(__builtin_offsetof(struct vmbc_ring_ctl, feature_bits) == 64, "features at 64");

/* Packets (§7.2). */
enum vmbc_pkt_type {
	VMBC_PKT_INBAND = 6,
	VMBC_PKT_XFER_PAGES = 7,
	VMBC_PKT_GPA_DIRECT = 9,
	VMBC_PKT_COMP = 11,
};

#define VMBC_PKT_FLAG_COMPLETION 1u
#define VMBC_PKT_TRAILER 8u

struct vmbc_pkt_desc {
	uint16_t type;
	uint16_t offset8;
	uint16_t len8;
	uint16_t flags;
	uint64_t trans_id;
} __attribute__((packed));

_Static_assert(sizeof(struct vmbc_pkt_desc) == 16, "packet descriptor is 16 bytes");

/* GPA-direct header after the descriptor: reserved, rangecount, then variable ranges. */
struct vmbc_gpa_direct_hdr {
	uint32_t reserved;
	uint32_t rangecount;
} __attribute__((packed));

struct vmbc_gpa_range_hdr {
	uint32_t byte_count;
	uint32_t byte_offset;
} __attribute__((packed));

#endif
