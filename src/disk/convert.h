/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Format-neutral copy between two blockdevs (convert, compact, merge). Stays
 * sparse: ranges the source does not store, and runs of >= 4 KiB of zeros, are
 * not written when the target reads as zeros already.
 */
#ifndef VIRIDIAN_DISK_CONVERT_H
#define VIRIDIAN_DISK_CONVERT_H

#include "disk/blockdev.h"

#include <stdbool.h>
#include <stdint.h>

/* Zero runs shorter than this are written anyway. */
#define DISK_CONVERT_ZERO_GRAIN 4096u

enum disk_convert_src {
	/* Copy what the source reads as, parents included (flatten). */
	DISK_CONVERT_SRC_ALL,
	/* Copy only what the top image itself stores (DATA and ZERO runs); merge,
	 * compact of a differencing image. */
	DISK_CONVERT_SRC_TOP,
};

struct disk_convert_opts {
	enum disk_convert_src src_mode;
	/* The target reads as zeros wherever nothing is written (fresh raw,
	 * fresh dynamic/fixed image without a parent): zero runs are skipped. */
	bool target_zero;
	/* The source has no parent, so its UNALLOCATED ranges read as zeros. */
	bool src_no_parent;
	uint32_t buf_size; /* bytes per request, 0 = 2 MiB (rounded to 64 KiB) */
	unsigned depth; /* requests in flight, 0 = 4; 1 = synchronous */
	bool flush; /* flush the target at the end */
	/* Called now and then from the caller's thread; done <= total. */
	void (*progress)(uint64_t done, uint64_t total, void *opaque);
	void *opaque;
};

struct disk_convert_stats {
	uint64_t bytes_read;
	uint64_t bytes_written;
	uint64_t bytes_skipped; /* not written: unallocated or zero */
};

/*
 * Copies [0, src->size) of src into dst (dst->size >= src->size). Returns 0 or
 * -errno with err_set(). stats may be NULL.
 */
int disk_convert(struct blockdev *src, struct blockdev *dst, const struct disk_convert_opts *opts,
		 struct disk_convert_stats *stats);

/*
 * Rewrites path into a temporary image of the same format, type, block size,
 * sector sizes and parent in the same directory, keeping only stored non-zero
 * data, then renames it over path (fsync of file and directory first).
 */
int disk_compact(const char *path, void (*progress)(uint64_t done, uint64_t total, void *opaque),
		 void *opaque, uint64_t *before, uint64_t *after);

/*
 * Writes every range the child itself stores into its parent (opened
 * read-write separately), then flushes the parent. Used when the driver has no
 * merge op. *parent_out (PATH_MAX) gets the parent path.
 */
int disk_merge_generic(const char *child_path,
		       void (*progress)(uint64_t done, uint64_t total, void *opaque), void *opaque,
		       char *parent_out);

#endif
