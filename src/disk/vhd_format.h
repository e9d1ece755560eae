/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * VHD (v1, "conectix") on-disk structures. Every multi-byte field is
 * big-endian on disk; these structs hold the raw wire image, convert with
 * be*toh()/htobe*() when reading or writing a field.
 */
#ifndef VIRIDIAN_DISK_VHD_FORMAT_H
#define VIRIDIAN_DISK_VHD_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#define VHD_SECTOR 512u
#define VHD_FOOTER_SIZE 512u
#define VHD_HEADER_SIZE 1024u
#define VHD_FOOTER_COOKIE "conectix"
#define VHD_HEADER_COOKIE "cxsparse"
#define VHD_VERSION 0x00010000u
#define VHD_FEATURES_RESERVED 0x00000002u
#define VHD_NO_DATA_OFFSET 0xFFFFFFFFFFFFFFFFull
#define VHD_NO_DATA_OFFSET32 0xFFFFFFFFull
#define VHD_BAT_UNUSED 0xFFFFFFFFu
#define VHD_EPOCH_OFFSET 946684800u /* 2000-01-01T00:00:00Z in unix seconds */

#define VHD_TYPE_FIXED 2u
#define VHD_TYPE_DYNAMIC 3u
#define VHD_TYPE_DIFF 4u

#define VHD_OS_WI2K 0x5769326Bu
#define VHD_CREATOR_APP "win "
#define VHD_CREATOR_VERSION 0x000A0000u

#define VHD_PLAT_NONE 0u
#define VHD_PLAT_W2RU 0x57327275u /* relative path, UTF-16LE */
#define VHD_PLAT_W2KU 0x57326B75u /* absolute path, UTF-16LE */

#define VHD_DEFAULT_BLOCK_SIZE (2u << 20)
#define VHD_MIN_BLOCK_SIZE 512u
#define VHD_MAX_BLOCK_SIZE (1u << 31)
/* 2040 GiB: the Hyper-V and qemu limit for dynamic and differencing disks. */
#define VHD_MAX_DYNAMIC_SIZE (2040ull << 30)
/* BAT entries are 32-bit sector numbers: the file cannot grow past 2 TiB. */
#define VHD_MAX_FILE_SIZE (0xFFFFFFFFull * VHD_SECTOR)
#define VHD_MAX_CHS_SECTORS (65535ull * 16 * 255)
/* Longest parent locator we accept (a PATH_MAX path in UTF-16 fits). */
#define VHD_MAX_LOCATOR_LEN 32768u

struct vhd_footer {
	char cookie[8];
	uint32_t features;
	uint32_t version;
	uint64_t data_offset;
	uint32_t timestamp;
	char creator_app[4];
	uint32_t creator_version;
	uint32_t creator_os;
	uint64_t original_size;
	uint64_t current_size;
	uint16_t cylinders;
	uint8_t heads;
	uint8_t sectors;
	uint32_t disk_type;
	uint32_t checksum;
	uint8_t unique_id[16];
	uint8_t saved_state;
	uint8_t reserved[427];
} __attribute__((packed));

struct vhd_parent_locator {
	uint32_t platform_code;
	uint32_t data_space; /* bytes in practice, sectors per the 2006 text */
	uint32_t data_length;
	uint32_t reserved;
	uint64_t data_offset;
} __attribute__((packed));

struct vhd_dyn_header {
	char cookie[8];
	uint64_t data_offset;
	uint64_t table_offset;
	uint32_t version;
	uint32_t max_table_entries;
	uint32_t block_size;
	uint32_t checksum;
	uint8_t parent_unique_id[16];
	uint32_t parent_timestamp;
	uint32_t reserved1;
	uint16_t parent_name[256]; /* UTF-16BE */
	struct vhd_parent_locator locators[8];
	uint8_t reserved2[256];
} __attribute__((packed));

_Static_assert(sizeof(struct vhd_footer) == 512, "VHD footer is 512 bytes");
_Static_assert(offsetof(struct vhd_footer, data_offset) == 16, "footer data offset");
_Static_assert(offsetof(struct vhd_footer, timestamp) == 24, "footer timestamp");
_Static_assert(offsetof(struct vhd_footer, creator_app) == 28, "footer creator");
_Static_assert(offsetof(struct vhd_footer, original_size) == 40, "footer original size");
_Static_assert(offsetof(struct vhd_footer, current_size) == 48, "footer current size");
_Static_assert(offsetof(struct vhd_footer, cylinders) == 56, "footer geometry");
_Static_assert(offsetof(struct vhd_footer, disk_type) == 60, "footer disk type");
_Static_assert(offsetof(struct vhd_footer, checksum) == 64, "footer checksum");
_Static_assert(offsetof(struct vhd_footer, unique_id) == 68, "footer unique id");
_Static_assert(offsetof(struct vhd_footer, saved_state) == 84, "footer saved state");
_Static_assert(sizeof(struct vhd_parent_locator) == 24, "parent locator is 24 bytes");
_Static_assert(sizeof(struct vhd_dyn_header) == 1024, "dynamic header is 1024 bytes");
_Static_assert(offsetof(struct vhd_dyn_header, table_offset) == 16, "header table offset");
_Static_assert(offsetof(struct vhd_dyn_header, max_table_entries) == 28, "header max entries");
_Static_assert(offsetof(struct vhd_dyn_header, block_size) == 32, "header block size");
_Static_assert(offsetof(struct vhd_dyn_header, checksum) == 36, "header checksum");
_Static_assert(offsetof(struct vhd_dyn_header, parent_unique_id) == 40, "header parent id");
_Static_assert(offsetof(struct vhd_dyn_header, parent_timestamp) == 56, "header parent time");
_Static_assert(offsetof(struct vhd_dyn_header, parent_name) == 64, "header parent name");
_Static_assert(offsetof(struct vhd_dyn_header, locators) == 576, "header locators");
_Static_assert(offsetof(struct vhd_dyn_header, reserved2) == 768, "header reserved");

#endif
