/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * VHDX on-disk structures ([MS-VHDX], notes in spec/disk-formats.md §2).
 * Everything is little-endian; this code only builds on little-endian hosts.
 * GUIDs are in Windows wire order (struct guid).
 */
#ifndef VIRIDIAN_DISK_VHDX_FORMAT_H
#define VIRIDIAN_DISK_VHDX_FORMAT_H

#include "lib/guid.h"

#include <stddef.h>
#include <stdint.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "VHDX structures are accessed in place: little-endian host required"
#endif

#define VHDX_KIB 1024ull
#define VHDX_MIB (1024ull * 1024)

/* Header section layout (first 1 MiB). */
#define VHDX_FILE_ID_OFF 0
#define VHDX_HEADER1_OFF (64 * VHDX_KIB)
#define VHDX_HEADER2_OFF (128 * VHDX_KIB)
#define VHDX_REGION1_OFF (192 * VHDX_KIB)
#define VHDX_REGION2_OFF (256 * VHDX_KIB)
#define VHDX_HEADER_SECTION (1 * VHDX_MIB)

#define VHDX_HEADER_SIZE 4096
#define VHDX_REGION_TABLE_SIZE (64 * VHDX_KIB)
#define VHDX_METADATA_TABLE_SIZE (64 * VHDX_KIB)
#define VHDX_LOG_SECTOR 4096

/* Limits (spec §2.9). */
#define VHDX_MAX_REGION_ENTRIES 2047
#define VHDX_MAX_METADATA_ENTRIES 2047
#define VHDX_MAX_USER_METADATA 1024
#define VHDX_MAX_METADATA_ITEM (1 * VHDX_MIB)
#define VHDX_MIN_BLOCK_SIZE (1 * VHDX_MIB)
#define VHDX_MAX_BLOCK_SIZE (256 * VHDX_MIB)
#define VHDX_MAX_DISK_SIZE (64ull * 1024 * 1024 * 1024 * 1024)
#define VHDX_MAX_BAT_ENTRIES (1ull << 30)
#define VHDX_MAX_LOG_LENGTH (1024 * VHDX_MIB)

#define VHDX_FILE_SIGNATURE "vhdxfile"
#define VHDX_HEADER_SIGNATURE 0x64616568u /* "head" */
#define VHDX_REGION_SIGNATURE 0x69676572u /* "regi" */
#define VHDX_METADATA_SIGNATURE "metadata"
#define VHDX_LOG_SIGNATURE 0x65676f6cu /* "loge" */
#define VHDX_ZERO_SIGNATURE 0x6f72657au /* "zero" */
#define VHDX_DESC_SIGNATURE 0x63736564u /* "desc" */
#define VHDX_DATA_SIGNATURE 0x61746164u /* "data" */

struct vhdx_file_id {
	char signature[8];
	uint16_t creator[256]; /* UTF-16LE, diagnostic only */
};
_Static_assert(sizeof(struct vhdx_file_id) == 520, "file id size");

struct vhdx_header {
	uint32_t signature;
	uint32_t checksum;
	uint64_t sequence_number;
	struct guid file_write_guid;
	struct guid data_write_guid;
	struct guid log_guid;
	uint16_t log_version;
	uint16_t version;
	uint32_t log_length;
	uint64_t log_offset;
	uint8_t reserved[4016];
} __attribute__((packed));
_Static_assert(sizeof(struct vhdx_header) == VHDX_HEADER_SIZE, "header size");
_Static_assert(offsetof(struct vhdx_header, log_guid) == 48, "log guid offset");
_Static_assert(offsetof(struct vhdx_header, log_version) == 64, "log version offset");
_Static_assert(offsetof(struct vhdx_header, log_offset) == 72, "log offset offset");

struct vhdx_region_table_header {
	uint32_t signature;
	uint32_t checksum;
	uint32_t entry_count;
	uint32_t reserved;
};
_Static_assert(sizeof(struct vhdx_region_table_header) == 16, "region header size");

#define VHDX_REGION_REQUIRED 1u

struct vhdx_region_entry {
	struct guid guid;
	uint64_t file_offset;
	uint32_t length;
	uint32_t flags; /* bit 0 Required */
} __attribute__((packed));
_Static_assert(sizeof(struct vhdx_region_entry) == 32, "region entry size");
_Static_assert(offsetof(struct vhdx_region_entry, file_offset) == 16, "region entry offset");

struct vhdx_metadata_table_header {
	char signature[8];
	uint16_t reserved;
	uint16_t entry_count;
	uint8_t reserved2[20];
} __attribute__((packed));
_Static_assert(sizeof(struct vhdx_metadata_table_header) == 32, "metadata header size");
_Static_assert(offsetof(struct vhdx_metadata_table_header, entry_count) == 10, "md count");

#define VHDX_META_IS_USER (1u << 0)
#define VHDX_META_IS_VIRTUAL_DISK (1u << 1)
#define VHDX_META_IS_REQUIRED (1u << 2)

struct vhdx_metadata_entry {
	struct guid item_id;
	uint32_t offset;
	uint32_t length;
	uint32_t flags;
	uint32_t reserved;
} __attribute__((packed));
_Static_assert(sizeof(struct vhdx_metadata_entry) == 32, "metadata entry size");
_Static_assert(offsetof(struct vhdx_metadata_entry, flags) == 24, "metadata entry flags");

#define VHDX_PARAM_LEAVE_BLOCKS_ALLOCATED (1u << 0)
#define VHDX_PARAM_HAS_PARENT (1u << 1)

struct vhdx_file_parameters {
	uint32_t block_size;
	uint32_t flags;
};
_Static_assert(sizeof(struct vhdx_file_parameters) == 8, "file parameters size");

/* BAT entry: state in bits 0-2, file offset in MiB in bits 20-63. */
#define VHDX_BAT_STATE_MASK 0x7ull
#define VHDX_BAT_RESERVED_MASK 0xffff8ull
#define VHDX_BAT_OFFSET_MASK (~0xfffffull)

enum vhdx_block_state {
	VHDX_PAYLOAD_NOT_PRESENT = 0,
	VHDX_PAYLOAD_UNDEFINED = 1,
	VHDX_PAYLOAD_ZERO = 2,
	VHDX_PAYLOAD_UNMAPPED = 3,
	VHDX_PAYLOAD_UNMAPPED_V095 = 5, /* draft value, still accepted */
	VHDX_PAYLOAD_FULLY_PRESENT = 6,
	VHDX_PAYLOAD_PARTIALLY_PRESENT = 7,
};
#define VHDX_SB_NOT_PRESENT 0
#define VHDX_SB_PRESENT 6

#define VHDX_SB_BLOCK_SIZE (1 * VHDX_MIB)

struct vhdx_log_entry_header {
	uint32_t signature;
	uint32_t checksum;
	uint32_t entry_length;
	uint32_t tail;
	uint64_t sequence_number;
	uint32_t descriptor_count;
	uint32_t reserved;
	struct guid log_guid;
	uint64_t flushed_file_offset;
	uint64_t last_file_offset;
} __attribute__((packed));
_Static_assert(sizeof(struct vhdx_log_entry_header) == 64, "log entry header size");
_Static_assert(offsetof(struct vhdx_log_entry_header, log_guid) == 32, "log guid");

/* Zero and data descriptors share the layout; the signature tells them apart. */
struct vhdx_log_descriptor {
	uint32_t signature;
	uint32_t trailing_bytes; /* data: bytes 4092..4095; zero: reserved */
	uint64_t leading_bytes; /* data: bytes 0..7; zero: ZeroLength */
	uint64_t file_offset;
	uint64_t sequence_number;
} __attribute__((packed));
_Static_assert(sizeof(struct vhdx_log_descriptor) == 32, "log descriptor size");

#define VHDX_LOG_DESC_FIRST_SECTOR 126
#define VHDX_LOG_DESC_PER_SECTOR 128

struct vhdx_log_data_sector {
	uint32_t signature;
	uint32_t sequence_high;
	uint8_t data[4084];
	uint32_t sequence_low;
} __attribute__((packed));
_Static_assert(sizeof(struct vhdx_log_data_sector) == VHDX_LOG_SECTOR, "log data sector");

struct vhdx_parent_locator_header {
	struct guid locator_type;
	uint16_t reserved;
	uint16_t key_value_count;
} __attribute__((packed));
_Static_assert(sizeof(struct vhdx_parent_locator_header) == 20, "locator header size");

struct vhdx_parent_locator_entry {
	uint32_t key_offset;
	uint32_t value_offset;
	uint16_t key_length;
	uint16_t value_length;
} __attribute__((packed));
_Static_assert(sizeof(struct vhdx_parent_locator_entry) == 12, "locator entry size");

/* GUID initialisers in wire order (Data1..3 little-endian). */
#define VHDX_GUID_BAT                                                                           \
	{                                                                                       \
		{                                                                               \
			0x66, 0x77, 0xc2, 0x2d, 0x23, 0xf6, 0x00, 0x42, 0x9d, 0x64, 0x11, 0x5e, \
				0x9b, 0xfd, 0x4a, 0x08                                          \
		}                                                                               \
	}
#define VHDX_GUID_METADATA                                                                      \
	{                                                                                       \
		{                                                                               \
			0x06, 0xa2, 0x7c, 0x8b, 0x90, 0x47, 0x9a, 0x4b, 0xb8, 0xfe, 0x57, 0x5f, \
				0x05, 0x0f, 0x88, 0x6e                                          \
		}                                                                               \
	}
#define VHDX_GUID_FILE_PARAMETERS                                                               \
	{                                                                                       \
		{                                                                               \
			0x37, 0x67, 0xa1, 0xca, 0x36, 0xfa, 0x43, 0x4d, 0xb3, 0xb6, 0x33, 0xf0, \
				0xaa, 0x44, 0xe7, 0x6b                                          \
		}                                                                               \
	}
#define VHDX_GUID_VIRTUAL_DISK_SIZE                                                             \
	{                                                                                       \
		{                                                                               \
			0x24, 0x42, 0xa5, 0x2f, 0x1b, 0xcd, 0x76, 0x48, 0xb2, 0x11, 0x5d, 0xbe, \
				0xd8, 0x3b, 0xf4, 0xb8                                          \
		}                                                                               \
	}
#define VHDX_GUID_PAGE83                                                                        \
	{                                                                                       \
		{                                                                               \
			0xab, 0x12, 0xca, 0xbe, 0xe6, 0xb2, 0x23, 0x45, 0x93, 0xef, 0xc3, 0x09, \
				0xe0, 0x00, 0xc7, 0x46                                          \
		}                                                                               \
	}
#define VHDX_GUID_LOGICAL_SECTOR                                                                \
	{                                                                                       \
		{                                                                               \
			0x1d, 0xbf, 0x41, 0x81, 0x6f, 0xa9, 0x09, 0x47, 0xba, 0x47, 0xf2, 0x33, \
				0xa8, 0xfa, 0xab, 0x5f                                          \
		}                                                                               \
	}
#define VHDX_GUID_PHYSICAL_SECTOR                                                               \
	{                                                                                       \
		{                                                                               \
			0xc7, 0x48, 0xa3, 0xcd, 0x5d, 0x44, 0x71, 0x44, 0x9c, 0xc9, 0xe9, 0x88, \
				0x52, 0x51, 0xc5, 0x56                                          \
		}                                                                               \
	}
#define VHDX_GUID_PARENT_LOCATOR                                                                \
	{                                                                                       \
		{                                                                               \
			0x2d, 0x5f, 0xd3, 0xa8, 0x0b, 0xb3, 0x4d, 0x45, 0xab, 0xf7, 0xd3, 0xd8, \
				0x48, 0x34, 0xab, 0x0c                                          \
		}                                                                               \
	}
/* Metadata item marking a file that is still being created: not openable. */
#define VHDX_GUID_INCOMPLETE_FILE                                                               \
	{                                                                                       \
		{                                                                               \
			0xf0, 0x85, 0xcc, 0x71, 0x69, 0x1b, 0x28, 0x4e, 0x95, 0x58, 0xc3, 0xbf, \
				0x83, 0xae, 0x75, 0xd3                                          \
		}                                                                               \
	}
#define VHDX_GUID_PARENT_TYPE_VHDX                                                              \
	{                                                                                       \
		{                                                                               \
			0xb7, 0xef, 0x4a, 0xb0, 0x9e, 0xd1, 0x81, 0x4a, 0xb7, 0x89, 0x25, 0xb8, \
				0xe9, 0x44, 0x59, 0x13                                          \
		}                                                                               \
	}

#endif
