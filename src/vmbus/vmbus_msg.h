/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * VMBus channel messages (spec/hyperv-interface-and-vmbus.md §6.1, §6.3): the payloads of
 * HvPostMessage (guest→host) and of SIM slot 2 (host→guest). Packed little-endian wire structs.
 */
#ifndef VIRIDIAN_VMBUS_VMBUS_MSG_H
#define VIRIDIAN_VMBUS_VMBUS_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "lib/guid.h"

enum vmbus_msg_type {
	VMBUS_MSG_INVALID = 0,
	VMBUS_MSG_OFFERCHANNEL = 1,
	VMBUS_MSG_RESCIND_CHANNELOFFER = 2,
	VMBUS_MSG_REQUESTOFFERS = 3,
	VMBUS_MSG_ALLOFFERS_DELIVERED = 4,
	VMBUS_MSG_OPENCHANNEL = 5,
	VMBUS_MSG_OPENCHANNEL_RESULT = 6,
	VMBUS_MSG_CLOSECHANNEL = 7,
	VMBUS_MSG_GPADL_HEADER = 8,
	VMBUS_MSG_GPADL_BODY = 9,
	VMBUS_MSG_GPADL_CREATED = 10,
	VMBUS_MSG_GPADL_TEARDOWN = 11,
	VMBUS_MSG_GPADL_TORNDOWN = 12,
	VMBUS_MSG_RELID_RELEASED = 13,
	VMBUS_MSG_INITIATE_CONTACT = 14,
	VMBUS_MSG_VERSION_RESPONSE = 15,
	VMBUS_MSG_UNLOAD = 16,
	VMBUS_MSG_UNLOAD_RESPONSE = 17,
	VMBUS_MSG_TL_CONNECT_REQUEST = 21,
	VMBUS_MSG_MODIFYCHANNEL = 22,
	VMBUS_MSG_TL_CONNECT_RESULT = 23,
	VMBUS_MSG_MODIFYCHANNEL_RESPONSE = 24,
	VMBUS_MSG_COUNT = 25,
};

/* HvPostMessage connection ids of the message port (§4.5), and the SynIC message type. */
#define VMBUS_MSG_CONN_ID 1u /* < 5.0, and msg_conn_id returned for >= 5.0 */
#define VMBUS_MSG_CONN_ID_4 4u /* INITIATE_CONTACT for >= 5.0 */
#define VMBUS_HVMSG_CHANNEL 1u
/* Event connection ids for channels: base + relid (unique, clear of ids 1..4). */
#define VMBUS_CHAN_CONN_ID_BASE 0x2000u
#define VMBUS_MAX_RELID 2047u /* relids 1..2047: SIEF bits of SINT 2 (§4.3) */

struct vmbus_msg_hdr {
	uint32_t msgtype;
	uint32_t padding;
} __attribute__((packed));

struct vmbus_msg_offer {
	struct vmbus_msg_hdr hdr;
	struct guid if_type;
	struct guid if_instance;
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

struct vmbus_msg_relid {
	struct vmbus_msg_hdr hdr;
	uint32_t child_relid;
} __attribute__((packed)); /* RESCIND_CHANNELOFFER, CLOSECHANNEL, RELID_RELEASED */

struct vmbus_msg_open {
	struct vmbus_msg_hdr hdr;
	uint32_t child_relid;
	uint32_t openid;
	uint32_t ringbuffer_gpadl;
	uint32_t target_vp;
	uint32_t downstream_pageoffset;
	uint8_t user_data[120];
} __attribute__((packed));

struct vmbus_msg_open_result {
	struct vmbus_msg_hdr hdr;
	uint32_t child_relid;
	uint32_t openid;
	uint32_t status;
} __attribute__((packed));

struct vmbus_msg_gpadl_header {
	struct vmbus_msg_hdr hdr;
	uint32_t child_relid;
	uint32_t gpadl;
	uint16_t range_buflen;
	uint16_t rangecount;
	/* range array (byte_count, byte_offset, pfns...) */
} __attribute__((packed));

struct vmbus_msg_gpadl_body {
	struct vmbus_msg_hdr hdr;
	uint32_t msgnumber;
	uint32_t gpadl;
	/* more of the range array */
} __attribute__((packed));

struct vmbus_msg_gpadl_created {
	struct vmbus_msg_hdr hdr;
	uint32_t child_relid;
	uint32_t gpadl;
	uint32_t creation_status;
} __attribute__((packed));

struct vmbus_msg_gpadl_teardown {
	struct vmbus_msg_hdr hdr;
	uint32_t child_relid;
	uint32_t gpadl;
} __attribute__((packed));

struct vmbus_msg_gpadl_torndown {
	struct vmbus_msg_hdr hdr;
	uint32_t gpadl;
} __attribute__((packed));

struct vmbus_msg_initiate_contact {
	struct vmbus_msg_hdr hdr;
	uint32_t version;
	uint32_t target_vcpu;
	uint64_t interrupt_page; /* >= 5.0: byte 0 = msg_sint */
	uint64_t monitor_page1;
	uint64_t monitor_page2;
} __attribute__((packed));

struct vmbus_msg_version_response {
	struct vmbus_msg_hdr hdr;
	uint8_t version_supported;
	uint8_t connection_state;
	uint16_t padding;
	uint32_t msg_conn_id;
} __attribute__((packed));

struct vmbus_msg_modify {
	struct vmbus_msg_hdr hdr;
	uint32_t child_relid;
	uint32_t target_vp;
} __attribute__((packed));

struct vmbus_msg_modify_response {
	struct vmbus_msg_hdr hdr;
	uint32_t child_relid;
	uint32_t status;
} __attribute__((packed));

_Static_assert(sizeof(struct vmbus_msg_hdr) == 8, "message header");
_Static_assert(sizeof(struct vmbus_msg_offer) == 196, "OFFERCHANNEL");
_Static_assert(offsetof(struct vmbus_msg_offer, chn_flags) == 56, "offer chn_flags");
_Static_assert(offsetof(struct vmbus_msg_offer, user_def) == 60, "offer user_def");
_Static_assert(offsetof(struct vmbus_msg_offer, sub_channel_index) == 180, "offer subchannel");
_Static_assert(offsetof(struct vmbus_msg_offer, child_relid) == 184, "offer relid");
_Static_assert(offsetof(struct vmbus_msg_offer, monitorid) == 188, "offer monitorid");
_Static_assert(offsetof(struct vmbus_msg_offer, is_dedicated_interrupt) == 190, "offer dedicated");
_Static_assert(offsetof(struct vmbus_msg_offer, connection_id) == 192, "offer connection_id");
_Static_assert(sizeof(struct vmbus_msg_relid) == 12, "relid message");
_Static_assert(sizeof(struct vmbus_msg_open) == 148, "OPENCHANNEL");
_Static_assert(offsetof(struct vmbus_msg_open, downstream_pageoffset) == 24, "open downstream");
_Static_assert(sizeof(struct vmbus_msg_open_result) == 20, "OPENCHANNEL_RESULT");
_Static_assert(sizeof(struct vmbus_msg_gpadl_header) == 20, "GPADL_HEADER");
_Static_assert(sizeof(struct vmbus_msg_gpadl_body) == 16, "GPADL_BODY");
_Static_assert(sizeof(struct vmbus_msg_gpadl_created) == 20, "GPADL_CREATED");
_Static_assert(sizeof(struct vmbus_msg_gpadl_teardown) == 16, "GPADL_TEARDOWN");
_Static_assert(sizeof(struct vmbus_msg_gpadl_torndown) == 12, "GPADL_TORNDOWN");
_Static_assert(sizeof(struct vmbus_msg_initiate_contact) == 40, "INITIATE_CONTACT");
_Static_assert(sizeof(struct vmbus_msg_version_response) == 16, "VERSION_RESPONSE");
_Static_assert(offsetof(struct vmbus_msg_version_response, msg_conn_id) == 12, "msg_conn_id");
_Static_assert(sizeof(struct vmbus_msg_modify) == 16, "MODIFYCHANNEL");
_Static_assert(sizeof(struct vmbus_msg_modify_response) == 16, "MODIFYCHANNEL_RESPONSE");

/* Non-zero statuses the server puts in GPADL_CREATED / OPENCHANNEL_RESULT / MODIFY replies. */
#define VMBUS_STATUS_UNSUCCESSFUL 0xC0000001u
#define VMBUS_STATUS_INVALID_PARAMETER 0xC000000Du
#define VMBUS_STATUS_INSUFFICIENT_RESOURCES 0xC000009Au

#endif
