/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * vstor wire protocol (synthetic SCSI over VMBus), spec vmbus-devices.md §2. Constants and
 * packed little-endian wire structs only.
 */
#ifndef VIRIDIAN_VSP_STORVSP_PROTO_H
#define VIRIDIAN_VSP_STORVSP_PROTO_H

#include <stddef.h>
#include <stdint.h>

/* Interface GUID of the synthetic SCSI controller (wire order). */
#define STORVSP_SCSI_CLASS_GUID                                                                 \
	{                                                                                       \
		{                                                                               \
			0xd9, 0x63, 0x61, 0xba, 0xa1, 0x04, 0x29, 0x4d, 0xb6, 0x05, 0x72, 0xe2, \
				0xff, 0xb1, 0xdc, 0x7f                                          \
		}                                                                               \
	}

/* The guest's bounce buffer: 16-byte descriptor + one 64-byte vstor packet (§1.2). */
#define STORVSP_MAX_PKT_SIZE 80u
#define STORVSP_RING_SIZE (128u * 1024u)

/* enum vstor_packet_operation */
#define VSTOR_OP_COMPLETE_IO 1u
#define VSTOR_OP_REMOVE_DEVICE 2u
#define VSTOR_OP_EXECUTE_SRB 3u
#define VSTOR_OP_RESET_LUN 4u
#define VSTOR_OP_RESET_ADAPTER 5u
#define VSTOR_OP_RESET_BUS 6u
#define VSTOR_OP_BEGIN_INITIALIZATION 7u
#define VSTOR_OP_END_INITIALIZATION 8u
#define VSTOR_OP_QUERY_PROTOCOL_VERSION 9u
#define VSTOR_OP_QUERY_PROPERTIES 10u
#define VSTOR_OP_ENUMERATE_BUS 11u
#define VSTOR_OP_FCHBA_DATA 12u
#define VSTOR_OP_CREATE_SUB_CHANNELS 13u

#define VSTOR_FLAG_REQUEST_COMPLETION 1u

/* Protocol versions (major << 8 | minor) */
#define VSTOR_VERSION_WIN8 0x0501u
#define VSTOR_VERSION_WIN8_1 0x0600u
#define VSTOR_VERSION_WIN10 0x0602u

/* QUERY_PROPERTIES flags */
#define VSTOR_PROP_FLAG_MULTI_CHANNEL 1u

/* NTSTATUS values in vstor_packet.status */
#define VSTOR_STATUS_SUCCESS 0x00000000u
#define VSTOR_STATUS_DEVICE_BUSY 0x80000011u
#define VSTOR_STATUS_UNSUCCESSFUL 0xc0000001u
#define VSTOR_STATUS_INVALID_PARAMETER 0xc000000du
#define VSTOR_STATUS_INVALID_DEVICE_REQUEST 0xc0000010u
#define VSTOR_STATUS_REVISION_MISMATCH 0xc0000059u
#define VSTOR_STATUS_DEVICE_DOES_NOT_EXIST 0xc00000c0u
#define VSTOR_STATUS_INVALID_DEVICE_STATE 0xc0000184u
#define VSTOR_STATUS_IO_DEVICE_ERROR 0xc0000185u

/* SRB status byte: code in the low 6 bits + flags */
#define SRB_STATUS_SUCCESS 0x01u
#define SRB_STATUS_ABORTED 0x02u
#define SRB_STATUS_ERROR 0x04u
#define SRB_STATUS_BUSY 0x05u
#define SRB_STATUS_INVALID_REQUEST 0x06u
#define SRB_STATUS_DATA_OVERRUN 0x12u
#define SRB_STATUS_INVALID_LUN 0x20u
#define SRB_STATUS_QUEUE_FROZEN 0x40u
#define SRB_STATUS_AUTOSENSE_VALID 0x80u

/* vmscsi_request.data_in */
#define VSTOR_DATA_WRITE 0u
#define VSTOR_DATA_READ 1u
#define VSTOR_DATA_NONE 2u

#define VSTOR_CDB_SIZE 16u
#define VSTOR_SENSE_SIZE 20u

/* vmscsi_request, 52 bytes (protocol >= 5.1). */
struct vstor_srb {
	uint16_t length;
	uint8_t srb_status;
	uint8_t scsi_status;
	uint8_t port_number;
	uint8_t path_id;
	uint8_t target_id;
	uint8_t lun;
	uint8_t cdb_length;
	uint8_t sense_info_length;
	uint8_t data_in;
	uint8_t reserved;
	uint32_t data_transfer_length;
	union {
		uint8_t cdb[VSTOR_CDB_SIZE];
		uint8_t sense_data[VSTOR_SENSE_SIZE];
	};
	/* Win8 extension */
	uint16_t reserve;
	uint8_t queue_tag;
	uint8_t queue_action;
	uint32_t srb_flags;
	uint32_t time_out_value;
	uint32_t queue_sort_key;
} __attribute__((packed));

/* vmstorage_channel_properties, 24 bytes */
struct vstor_properties {
	uint32_t reserved;
	uint16_t max_channel_cnt;
	uint16_t reserved1;
	uint32_t flags;
	uint32_t max_transfer_bytes;
	uint64_t reserved2;
} __attribute__((packed));

struct vstor_version {
	uint16_t major_minor;
	uint16_t revision;
} __attribute__((packed));

/* vstor_packet, 64 bytes (48 before protocol 5.1: the srb without its Win8 extension). */
struct vstor_packet {
	uint32_t operation;
	uint32_t flags;
	uint32_t status;
	union {
		struct vstor_srb srb;
		struct vstor_properties props;
		struct vstor_version version;
		uint16_t sub_channel_count;
		uint8_t raw[52];
	};
} __attribute__((packed));

#define VSTOR_PACKET_SIZE 64u
#define VSTOR_PACKET_SIZE_PRE_WIN8 48u

_Static_assert(sizeof(struct vstor_srb) == 52, "vmscsi_request is 52 bytes");
_Static_assert(offsetof(struct vstor_srb, data_transfer_length) == 12, "srb layout");
_Static_assert(offsetof(struct vstor_srb, cdb) == 16, "srb layout");
_Static_assert(offsetof(struct vstor_srb, reserve) == 36, "srb Win8 extension");
_Static_assert(offsetof(struct vstor_srb, srb_flags) == 40, "srb layout");
_Static_assert(sizeof(struct vstor_properties) == 24, "channel properties are 24 bytes");
_Static_assert(offsetof(struct vstor_properties, max_transfer_bytes) == 12, "properties");
_Static_assert(sizeof(struct vstor_packet) == VSTOR_PACKET_SIZE, "vstor_packet is 64 bytes");
_Static_assert(offsetof(struct vstor_packet, srb) == 12, "payload at 12");

#endif
