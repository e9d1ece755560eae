/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Disk images: open any supported format as a blockdev, create, inspect and
 * check images. One driver per format (raw.c, vhd.c, vhdx.c) registered in
 * disk.c; everything format-neutral (detection, chains, convert) lives here.
 */
#ifndef VIRIDIAN_DISK_DISK_H
#define VIRIDIAN_DISK_DISK_H

#include "disk/blockdev.h"
#include "lib/guid.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum disk_format {
	DISK_FORMAT_AUTO,
	DISK_FORMAT_RAW,
	DISK_FORMAT_VHD,
	DISK_FORMAT_VHDX,
};

enum disk_type {
	DISK_TYPE_FIXED,
	DISK_TYPE_DYNAMIC,
	DISK_TYPE_DIFFERENCING,
};

#define DISK_OPEN_RDONLY (1u << 0)
#define DISK_OPEN_DIRECT (1u << 1) /* O_DIRECT on the data file */
/* Open even with a dirty log/bad secondary structures, read-only, for check/info. */
#define DISK_OPEN_NO_REPLAY (1u << 2)
/*
 * The image need not be consistent before the caller's final flush (a convert target nobody
 * else can see yet): allocation and metadata updates skip their intermediate write barriers;
 * blockdev_flush() still makes everything durable. Formats without barriers ignore it.
 */
#define DISK_OPEN_UNORDERED (1u << 3)

#define DISK_MAX_CHAIN_DEPTH 64

struct disk_create_opts {
	enum disk_format format;
	enum disk_type type;
	uint64_t size;                 /* bytes; 0 with a parent = the parent's size */
	uint32_t block_size;           /* 0 = format default */
	uint32_t logical_sector_size;  /* 0 = 512 */
	uint32_t physical_sector_size; /* 0 = format default */
	const char *parent;            /* differencing only: parent path as given */
};

struct disk_info {
	enum disk_format format;
	enum disk_type type;
	uint64_t virtual_size;
	uint64_t file_size;       /* apparent size of this file */
	uint64_t allocated_bytes; /* bytes actually stored by this file (st_blocks * 512) */
	uint32_t block_size;      /* 0 for raw */
	uint32_t logical_sector_size;
	uint32_t physical_sector_size;
	char parent_path[4096];   /* resolved parent, "" when none */
	char log_state[32];       /* VHDX: "clean", "dirty"; others: "" */
	struct guid disk_id;      /* VHD unique id / VHDX page 83 data; zero for raw */
	char creator[32];         /* VHD creator app, VHDX creator string; "" for raw */
};

struct disk_check_result {
	unsigned errors;   /* problems found (and not repaired) */
	unsigned repaired; /* problems fixed with repair = true */
	unsigned leaks;    /* space allocated but unused (not an error) */
	char first_error[256];
};

/* Per-format driver; disk.c holds the table. */
struct disk_driver {
	enum disk_format format;
	const char *name;
	/* head = first bytes of the file (up to 64 KiB), tail = last 512 bytes. */
	bool (*probe)(const uint8_t *head, size_t head_len, const uint8_t *tail,
		      uint64_t file_size);
	int (*open)(const char *path, unsigned flags, struct blockdev **out);
	int (*create)(const char *path, const struct disk_create_opts *opts);
	int (*info)(struct blockdev *bd, struct disk_info *info);
	int (*check)(const char *path, bool repair, struct disk_check_result *res, FILE *report);
	/* Optional. Write every sector the child stores into its parent. */
	int (*merge)(struct blockdev *child);
	/* Optional. Grow the virtual size. */
	int (*resize)(const char *path, uint64_t new_size);
	/* Optional, differencing: the parent this image names (opened read-only). */
	struct blockdev *(*parent)(struct blockdev *bd);
};

const struct disk_driver *disk_driver_get(enum disk_format format);
/*
 * Tests and fuzzers: drv (or NULL to remove it) is probed first and replaces
 * the built-in driver of the same format. Not thread-safe; set before use.
 */
void disk_driver_override(const struct disk_driver *drv);
const char *disk_format_name(enum disk_format format);
int disk_format_parse(const char *s, enum disk_format *out);
const char *disk_type_name(enum disk_type type);
int disk_type_parse(const char *s, enum disk_type *out);

/* Detects the format from the file's content; 0 or -errno with err_set(). */
int disk_probe(const char *path, enum disk_format *out);
/* Opens any format (DISK_FORMAT_AUTO detects); differencing parents are opened read-only. */
int disk_open(const char *path, enum disk_format format, unsigned flags, struct blockdev **out);
int disk_create(const char *path, const struct disk_create_opts *opts);
int disk_info_get(struct blockdev *bd, struct disk_info *info);
int disk_check(const char *path, enum disk_format format, bool repair,
	       struct disk_check_result *res, FILE *report);

/*
 * Chains: a differencing driver calls this from its open() to open the parent
 * it names. Candidates are tried in order (relative ones resolved against the
 * child's directory); the first that exists is opened read-only with
 * DISK_FORMAT_AUTO. Loops (same dev/inode already open in this chain, kept in a
 * thread-local stack by disk_open) and chains deeper than DISK_MAX_CHAIN_DEPTH
 * are errors. *resolved (PATH_MAX bytes) receives the path that was opened.
 * The parent gets the child's DISK_OPEN_DIRECT and DISK_OPEN_NO_REPLAY flags.
 * Backslashes in candidates are read as '/'.
 */
int disk_open_parent(const char *child_path, const char *const *candidates, unsigned ncandidates,
		     struct blockdev **out, char *resolved);

#endif
